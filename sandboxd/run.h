/* run.h — one judged submission in a slot: optional compile, then one
 * execution per test case, each limited, measured and judged. Answers its
 * HTTP request when done. */
#ifndef SANDBOXD_RUN_H
#define SANDBOXD_RUN_H

#include <jansson.h>
#include <stddef.h>

#include "http_server.h"
#include "slot.h"

/* Validate `body` and start. On a validation error the request is answered
 * (400/409/…) here. */
void run_start(struct slot *s, struct http_request *req, json_t *body);
/* From slot.c: a message from the slot's init. */
void run_on_message(struct slot *s, const void *msg, size_t len);
/* From slot.c: the slot died or is being destroyed with a run in progress;
 * the run answers its request and frees itself. */
/* From prestart.c: the pre-started helper died or was abandoned with a step
 * of the run in flight; the step is started again the usual way. */
void run_helper_lost(struct slot *s);
void run_abort(struct slot *s, int status, const char *code, const char *why);

#endif
