/* aca_exec.c — see aca_exec.h. A list in creation order: a few hundred
 * records per busy session at most (per_session), scanned per request. */
#include "aca_exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct aca_exec *head;
static double keep_s = 600.0;
static size_t max_per_session = 100;
static size_t kept_bytes; /* of every kept answer, as JSON */

void aca_exec_setup(double ttl, size_t per_session)
{
	keep_s = ttl;
	max_per_session = per_session;
}

static void exec_free(struct aca_exec *e)
{
	kept_bytes -= e->bytes;
	json_decref(e->answer);
	free(e->session);
	free(e);
}

static bool expired(const struct aca_exec *e, double now)
{
	return e->done && now - e->finished >= keep_s;
}

void aca_exec_prune(double now)
{
	struct aca_exec **pp = &head;
	while (*pp) {
		struct aca_exec *e = *pp;
		if (expired(e, now) || (e->done && e->forgotten)) {
			*pp = e->next;
			exec_free(e);
		} else {
			pp = &e->next;
		}
	}
}

size_t aca_exec_count(const char *session, double now)
{
	size_t n = 0;
	aca_exec_prune(now);
	for (struct aca_exec *e = head; e; e = e->next)
		n += !e->forgotten && strcmp(e->session, session) == 0;
	return n;
}

bool aca_exec_memory_full(double now)
{
	aca_exec_prune(now);
	return kept_bytes >= ACA_EXEC_MAX_BYTES;
}

bool aca_exec_full(const char *session, double now)
{
	return aca_exec_count(session, now) >= max_per_session;
}

struct aca_exec *aca_exec_find(const char *session, const char *id, double now)
{
	aca_exec_prune(now);
	for (struct aca_exec *e = head; e; e = e->next)
		if (!e->forgotten && strcmp(e->id, id) == 0 && strcmp(e->session, session) == 0)
			return e;
	return NULL;
}

struct aca_exec *aca_exec_add(const char *pool, const char *ident, const char *id, double now)
{
	struct aca_exec *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	if (asprintf(&e->session, "%s/%s", pool, ident) < 0) {
		free(e);
		return NULL;
	}
	e->ident = e->session + strlen(pool) + 1;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->created = now;
	/* at the end: the list stays in creation order */
	struct aca_exec **pp = &head;
	while (*pp)
		pp = &(*pp)->next;
	*pp = e;
	return e;
}

void aca_exec_finish(struct aca_exec *e, json_t *answer, double now)
{
	e->done = true;
	e->finished = now;
	json_decref(e->answer);
	e->answer = answer;
	kept_bytes -= e->bytes;
	e->bytes = json_dumpb(answer, NULL, 0, JSON_COMPACT);
	kept_bytes += e->bytes;
}

void aca_exec_forget(const char *session)
{
	for (struct aca_exec *e = head; e; e = e->next)
		if (strcmp(e->session, session) == 0)
			e->forgotten = true;
}

bool aca_exec_id_valid(const char *id)
{
	size_t n = strlen(id);
	return n >= 1 && n <= ACA_EXEC_ID_MAX &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}
