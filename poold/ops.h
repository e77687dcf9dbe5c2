/* ops.h — what a session can be asked to do, as lease operations: a judged
 * run (the original /execute contract and the native /v1 one), and plain
 * proxying of file and info calls to the slot's node. Each op answers its
 * HTTP request itself. */
#ifndef POOLD_OPS_H
#define POOLD_OPS_H

#include <ev.h>
#include <jansson.h>

#include "http_server.h"

struct pool;
struct psettings;
struct metrics;

/* A random RFC 4122 version 4 UUID, for execution ids. */
void ops_uuid4(char out[37]);

void ops_init(struct ev_loop *loop, const struct psettings *st, struct metrics *m);
/* SIGTERM: queued judged submissions are answered 503; running ones finish. */
void ops_stop(void);
/* SIGHUP: the judged queue's bounds. */
void ops_reload(void);
/* For metrics: judged runs poold has on a node, the queue, its drain rate. */
struct node;
size_t ops_node_runs(const struct node *n);
size_t ops_queue_length(void);
double ops_queue_drain_rate(void);

/* POST /execute: one judged submission in a fresh slot, through the fair
 * queue and the nodes' run admission (ops.c); body already parsed (stolen). */
void ops_execute(struct http_request *req, json_t *body);
/* POST /v1/sessions/{id}/run: native shape (docs/api.md), body stolen. */
void ops_session_run(struct http_request *req, struct pool *p, const char *ident, json_t *body);
/* Forward a files call to the session's slot: name is the file's decoded
 * name, already checked (http_path_name_invalid), or NULL for the list;
 * the node's path is built from the slot id and the encoded name only.
 * The request body is passed through. */
void ops_session_files(struct http_request *req, struct pool *p, const char *ident, const char *name, bool create);
/* A judged run holds slot_id on n right now (node read-backs leave it alone). */
bool ops_judged_holds(const struct node *n, const char *slot_id);
/* DELETE /v1/sessions/{id}: end the lease (waits for a running op). */
void ops_session_release(struct http_request *req, struct pool *p, const char *ident);

#endif
