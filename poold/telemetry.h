/* telemetry.h — poold's Prometheus metrics (names in docs/api.md#metrics).
 * Gauges of pools and nodes are computed at scrape time; events are
 * observed where they happen. */
#ifndef POOLD_TELEMETRY_H
#define POOLD_TELEMETRY_H

#include "metrics.h"

struct metrics *telemetry_init(void);
/* An answer of the route (a pattern, never the client's path), seconds after
 * the whole request was received. */
void telemetry_http(const char *route, int status, double seconds);
/* A judged execution's verdict (accepted, wrong_answer, ...). */
void telemetry_execution(const char *language, const char *verdict, double seconds);
/* An interpreter execution's status (ok, error, timeout). */
void telemetry_interpreter(const char *language, const char *status, double seconds);
/* A lease, execution or submission refused for lack of room or time (429,
 * 503); reason: the error code answered. */
void telemetry_refused(const char *pool, const char *reason);
void telemetry_lease_wait(const char *pool, double seconds);
/* A judged submission's wait in the fair queue, until its run started. */
void telemetry_queue_wait(const char *pool, double seconds);

#endif
