/* aca_exec.c — see aca_exec.h. A list in creation order: a few hundred
 * records per busy session at most (per_session), scanned per request. */
#include "aca_exec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

static struct aca_exec *head;
static double keep_s = 600.0;
static size_t max_per_session = 100;
static size_t kept_bytes; /* of every kept answer, as JSON */
static int store_fd = -1; /* the results dir (aca_exec_store), or -1 */

/* A record's file: FNV-1a 64 of its session and id, in hex. */
static void file_name(const struct aca_exec *e, char out[32])
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = e->session; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h = (h ^ '\n') * 1099511628211ULL;
	for (const char *s = e->id; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	snprintf(out, 32, "%016llx.json", (unsigned long long)h);
}

/* Write the record's file anew (a temporary file renamed over it: a crash
 * leaves the old one or the new one). Its answer is at most what the
 * record keeps in memory (ACA_EXEC_MAX_BYTES in all); a failure is logged
 * and the record lives on in memory. */
static void store_write(struct aca_exec *e)
{
	char name[32], tmp[40];
	cleanup_close int fd = -1;
	json_t *j;

	if (store_fd < 0 || e->forgotten)
		return;
	file_name(e, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	j = json_pack("{s:s, s:s, s:f, s:b, s:f, s:O?}", "session", e->session, "id", e->id, "created", e->created,
		      "done", e->done, "finished", e->finished, "answer", e->answer);
	if (j && (fd = openat(store_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0 &&
	    json_dumpfd(j, fd, JSON_COMPACT) == 0 && close(steal_fd(&fd)) == 0 &&
	    renameat(store_fd, tmp, store_fd, name) == 0)
		e->stored = true;
	else
		log_warn("async results: could not keep `%s` of %s in its dir: %s", e->id, e->session,
			 j ? strerror(errno) : "out of memory");
	json_decref(j);
}

static void store_remove(struct aca_exec *e)
{
	char name[32];

	if (store_fd < 0 || !e->stored)
		return;
	file_name(e, name);
	if (unlinkat(store_fd, name, 0) < 0 && errno != ENOENT)
		log_warn("async results: could not remove %s: %s", name, strerror(errno));
	e->stored = false;
}

void aca_exec_setup(double ttl, size_t per_session)
{
	keep_s = ttl;
	max_per_session = per_session;
}

static void exec_free(struct aca_exec *e)
{
	store_remove(e);
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
	store_write(e);
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
	store_write(e);
}

void aca_exec_forget(const char *session)
{
	for (struct aca_exec *e = head; e; e = e->next)
		if (strcmp(e->session, session) == 0) {
			store_remove(e); /* a restart does not bring it back */
			e->forgotten = true;
		}
}

/* One file of the results dir as a record, or NULL (not one of ours,
 * broken, or past its time: the caller removes it). */
static struct aca_exec *store_load(int fd, double now)
{
	cleanup_json json_t *j = json_loadfd(fd, 0, NULL);
	const char *session = json_string_value(json_object_get(j, "session"));
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *slash = session ? strchr(session, '/') : NULL;
	json_t *answer = json_object_get(j, "answer");
	bool done = json_is_true(json_object_get(j, "done"));
	double finished = json_number_value(json_object_get(j, "finished"));
	struct aca_exec *e;

	if (!slash || slash == session || !slash[1] || !id || !aca_exec_id_valid(id) ||
	    (done && !json_is_object(answer)))
		return NULL;
	if (done && now - finished >= keep_s)
		return NULL;
	if (!(e = calloc(1, sizeof(*e))) || !(e->session = strdup(session))) {
		free(e);
		return NULL;
	}
	e->ident = e->session + (slash - session) + 1;
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->created = json_number_value(json_object_get(j, "created"));
	if (done) {
		e->done = true;
		e->finished = finished;
		e->answer = json_incref(answer);
		e->bytes = json_dumpb(answer, NULL, 0, JSON_COMPACT);
		kept_bytes += e->bytes;
		return e;
	}
	/* running when poold stopped: nothing will finish it now */
	json_t *failed = json_pack(
	    "{s:s, s:s, s:s, s:s, s:{s:s, s:s}}", "id", e->id, "identifier", e->ident, "executionType", "Asynchronous",
	    "status", "Failed", "error", "code", "PooldRestarted", "message",
	    "poold restarted while this execution ran: its outcome is unknown (the session may hold part of its "
	    "effects); run it again");
	if (!failed) {
		free(e->session);
		free(e);
		return NULL;
	}
	aca_exec_finish(e, failed, now);
	return e;
}

void aca_exec_close(void)
{
	while (head) {
		struct aca_exec *e = head;
		head = e->next;
		e->stored = false; /* its file stays */
		exec_free(e);
	}
	if (store_fd >= 0)
		close(store_fd);
	store_fd = -1;
}

int aca_exec_store(const char *dir, double now, struct wp_error *err)
{
	cleanup_dir DIR *d = NULL;
	struct dirent *de;
	int fd, n = 0;

	/* its parents as root would make them (/var/lib/warmpool), itself 0700 */
	char parent[4096];
	if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent))
		return wp_error_set(err, ENAMETOOLONG, "async_results_dir %s: path too long", dir);
	for (char *p = strchr(parent + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdir(parent, 0755) < 0 && errno != EEXIST)
			return wp_error_errno(err, "make %s for async_results_dir", parent);
		*p = '/';
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return wp_error_errno(err, "make async_results_dir %s", dir);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return wp_error_errno(err, "open async_results_dir %s", dir);
	if (!(d = fdopendir(fd))) {
		close(fd);
		return wp_error_errno(err, "read async_results_dir %s", dir);
	}
	if ((store_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return wp_error_errno(err, "dup async_results_dir %s", dir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct aca_exec *e = NULL, **pp;
		bool ours = (len == 21 || len == 25) && strspn(de->d_name, "0123456789abcdef") == 16 &&
			    strncmp(de->d_name + 16, ".json", 5) == 0 &&
			    (len == 21 || strcmp(de->d_name + 21, ".tmp") == 0);
		if (!ours) /* not a file of ours: left alone */
			continue;
		if (len == 21 && kept_bytes < ACA_EXEC_MAX_BYTES) {
			cleanup_close int rfd = openat(store_fd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			e = rfd >= 0 ? store_load(rfd, now) : NULL;
		}
		if (!e) { /* past its time, broken, or a leftover temporary file */
			unlinkat(store_fd, de->d_name, 0);
			continue;
		}
		/* in creation order, as the list is kept */
		for (pp = &head; *pp && (*pp)->created <= e->created; pp = &(*pp)->next)
			;
		e->next = *pp;
		*pp = e;
		e->stored = true;
		store_write(e); /* a running one is now Failed, in its file too */
		n++;
	}
	return n;
}

bool aca_exec_id_valid(const char *id)
{
	size_t n = strlen(id);
	return n >= 1 && n <= ACA_EXEC_ID_MAX &&
	       strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}
