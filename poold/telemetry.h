/* telemetry.h — poold's Prometheus metrics (names in docs/api.md#metrics).
 * Gauges of pools and nodes are computed at scrape time; events are
 * observed where they happen. */
#ifndef POOLD_TELEMETRY_H
#define POOLD_TELEMETRY_H

#include "metrics.h"

struct metrics *telemetry_init(void);
void telemetry_http(const char *route, int status);
void telemetry_execution(const char *language, const char *verdict, double seconds);
void telemetry_lease_wait(const char *pool, double seconds);
/* A judged submission's wait in the fair queue, until its run started. */
void telemetry_queue_wait(const char *pool, double seconds);

#endif
