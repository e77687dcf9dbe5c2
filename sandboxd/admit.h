/* admit.h — run admission: how many judged runs (POST /v1/slots/{id}/run)
 * this node runs at once. At most `run_slots` (default: the CPUs sandboxd
 * may use), and only while the sum of their memory limits (the larger of
 * the run's and, when it compiles, the compile's) fits `run_memory`. A run
 * beyond the budget is refused before it touches the slot: 503 NodeBusy
 * with Retry-After, which poold takes as "queue it again". A run that alone
 * exceeds the memory budget still runs when nothing else does. The slot
 * stays as it was (not labelled, nothing written). */
#ifndef SANDBOXD_ADMIT_H
#define SANDBOXD_ADMIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http_server.h"
#include "slot.h"

/* Room for this run on slot s? Answers 503 NodeBusy itself when not; sets
 * *need_kb to the memory the run is counted with. */
bool admit_run(struct http_request *req, struct slot *s, json_t *body, uint64_t *need_kb);
/* After run_start(): count the run while s->run is the run just started
 * (a run refused as invalid leaves s->run NULL and is not counted; one
 * refused because the slot is busy leaves the run going on counted as it
 * was). */
void admit_track(struct slot *s, uint64_t need_kb);
/* Seconds since a look (this, admit_track) last found every run slot in
 * use; 0 while they are. A helper that only pays off on idle CPU (a compile
 * server: prestart.c) starts once the node has been quiet a while. */
double admit_quiet_for(void);
/* GET /v1/info: {"slots", "active", "memory_kb", "memory_in_use_kb"}. */
json_t *admit_info(void);
/* How a counted run's slot is looked up by id: slot_find, unless a unit
 * test (tests/unit/test_admit.c) puts its own slots in its place; NULL puts
 * slot_find back. */
typedef struct slot *(*admit_find_fn)(const char *id);
void admit_set_find(admit_find_fn fn);
/* The clock of admit_quiet_for: ev_now, unless a unit test puts its own
 * in its place; NULL puts ev_now back. */
typedef double (*admit_clock_fn)(void);
void admit_set_clock(admit_clock_fn fn);

#endif
