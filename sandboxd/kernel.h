/* kernel.h — the stateful interpreter of a slot (docs/architecture.md, pre-warming
 * level 2): a long-lived Python or Node process started at warm-up in the
 * slot's "kernel" cgroup, that runs one execution at a time and keeps its
 * state (variables, imports, cwd) between them. kernel.c drives it over a
 * line-delimited JSON protocol (sandboxd/runtimes/README.md), times each
 * execution out, and restarts it fresh after a timeout or a crash. */
#ifndef SANDBOXD_KERNEL_H
#define SANDBOXD_KERNEL_H

#include <jansson.h>

#include "error.h"
#include "http_server.h"
#include "slot.h"

struct kernel;

/* During slot creation, once init is ready: start the interpreter. The slot
 * becomes ready (slot_created) when the interpreter says it is, or fails
 * (slot_create_failed). Returns -errno when it could not even be asked. */
int kernel_start(struct slot *s, struct wp_error *err);
/* POST /v1/slots/{id}/exec: validate `body` (taken) and run it; the request
 * is answered here, now (4xx) or when the execution ends. */
void kernel_exec(struct slot *s, struct http_request *req, json_t *body);
/* From slot.c: a message from init about the kernel group. */
void kernel_on_message(struct slot *s, const void *msg, size_t len);
/* From slot.c: the slot is being destroyed. Answers an execution in flight
 * with 410 and stops every watcher; the processes die with the slot. */
void kernel_abort(struct slot *s);
/* From the slot reaper. Accepts NULL. */
void kernel_free(struct kernel *k);

#endif
