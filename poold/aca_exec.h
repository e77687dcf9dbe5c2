/* aca_exec.h — the asynchronous executions of the Azure routes
 * (`executionType: Asynchronous`): one record per execution, found by
 * session and id (`GET executions/{id}`), running until its operation
 * finishes, then kept `ttl` seconds. A session holds at most `per_session`
 * records, running and kept alike. Time is passed in (`now`), never read
 * here, so the retention is tested with a clock of the test's own. */
#ifndef POOLD_ACA_EXEC_H
#define POOLD_ACA_EXEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define ACA_EXEC_ID_MAX 64

struct aca_exec {
	char id[ACA_EXEC_ID_MAX + 1];
	char *session; /* "<pool>/<identifier>" */
	char *ident;   /* points into session */
	bool done;
	bool forgotten; /* its session was deleted while it ran: freed when it finishes */
	json_t *answer; /* once done: the body GET executions/{id} answers */
	double created, finished;
	size_t bytes; /* of answer, as JSON */
	bool stored;  /* has its file in the results dir (aca_exec_store) */
	struct aca_exec *next;
};

void aca_exec_setup(double ttl, size_t per_session);
/* Records past their time go (running ones never do). */
void aca_exec_prune(double now);
size_t aca_exec_count(const char *session, double now);
/* The kept answers of all sessions hold ACA_EXEC_MAX_BYTES (as JSON):
 * outputs of up to 16 MiB each must not add up without bound. */
#define ACA_EXEC_MAX_BYTES (256u << 20)
bool aca_exec_memory_full(double now);
/* It holds per_session records already. */
bool aca_exec_full(const char *session, double now);
struct aca_exec *aca_exec_find(const char *session, const char *id, double now);
/* NULL: out of memory. The caller checked the count and that id is new. */
struct aca_exec *aca_exec_add(const char *pool, const char *ident, const char *id, double now);
/* Steals answer. */
void aca_exec_finish(struct aca_exec *e, json_t *answer, double now);
/* DELETE session: its records go (a running one once it finishes). */
void aca_exec_forget(const char *session);
/* Keep the records in dir as well (one file each, mode 0600, written when
 * a record is made and when it finishes, removed when it goes), so that
 * they outlive a restart: the files found there are loaded, those past
 * their time removed, and a record that was still running becomes Failed
 * (error code PooldRestarted: its outcome is unknown). The number loaded, or
 * -errno with err filled (the dir cannot be made or opened). */
int aca_exec_store(const char *dir, double now, struct wp_error *err);
/* poold's end: every record leaves memory, their files stay for the next
 * poold (aca_exec_store); no longer kept in the dir. */
void aca_exec_close(void);
/* An execution id a client may choose (operation-id): 1 to 64 of
 * A-Z a-z 0-9 - _ . */
bool aca_exec_id_valid(const char *id);

#endif
