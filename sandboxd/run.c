/* run.c — a judged submission: compile once, then each test case.
 *
 * One execution ("exec") at a time per slot. For each one sandboxd prepares
 * the run cgroup (limits, counters), hands init the command and three fds
 * (stdin as a sealed memfd, stdout/stderr as pipes whose read ends stay
 * here), and watches: the pipes (output limit), a wall timer and a CPU poll
 * of the run cgroup. When init reports the child's exit, the whole run cgroup
 * is killed — background and double-forked processes included — and the exec
 * completes once both pipes are at EOF, i.e. once every process that could
 * write is dead. Then the measurements are read from the cgroup and judged. */
#include "run.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "cgroup.h"
#include "checker.h"
#include "cleanup.h"
#include "compare.h"
#include "files.h"
#include "json.h"
#include "launch.h"
#include "log.h"
#include "pch.h"
#include "prestart.h"
#include "proto.h"
#include "verdict.h"

#define CPU_POLL_INTERVAL 0.05
#define LAUNCH_GRACE	  10.0
#define WALL_WAIT_MAX	  4 /* CPU waits extend a wall limit by at most 4 limits */
#define MAX_TESTS	  1000
#define REPORT_GRACE	  0.5 /* a helper-started step: its output ended, its exit not reported */

struct obuf {
	char *data;
	size_t len;	/* bytes kept */
	uint64_t total; /* bytes seen */
};

struct exec {
	const struct limits *lim;
	int fd[2]; /* stdout, stderr read ends */
	ev_io io[2];
	struct obuf out[2];
	size_t keep[2]; /* how much of each stream to keep */
	bool eof[2];
	ev_timer wall_timer;
	ev_timer cpu_timer;
	ev_timer kill_timer; /* retries a kill that left processes behind */
	double started;
	struct cgroup_stats before;
	bool launched;	    /* init reported PROTO_STARTED */
	uint64_t wait0_ns;  /* cgroup_cpu_wait_ns() when it started */
	uint64_t waited_ns; /* wall time already added for CPU waits */
	bool exited;
	struct cgroup *cg; /* the run group of this exec (they alternate) */
	unsigned group;
	bool all_dead; /* the run cgroup was seen empty after the exit */
	int64_t maxrss_kb;
	uint64_t rusage_cpu_us;
	struct run_outcome o;
	bool helper;	       /* started by the slot's pre-started helper (prestart.c) */
	bool helper_lost;      /* …which failed it: the step is started again the usual way */
	ev_timer report_timer; /* the helper's exit report is late */
};

enum run_phase { PHASE_CHECKER_BUILD, PHASE_COMPILE, PHASE_TEST, PHASE_CHECK };

struct run {
	struct slot *slot;
	struct http_request *req;
	json_t *tests; /* borrowed from body */
	json_t *body;
	json_t *results;
	json_t *compile; /* result of the compile step or NULL */
	struct limits lim, clim;
	struct compare_spec cmp;
	size_t max_output;
	bool stop_on_failure;
	enum run_phase phase;
	size_t test;
	size_t passed;
	const char *verdict; /* first failure */
	char *message;	     /* what the first failure was, for the answer's "message" */
	double started;
	bool active;		  /* an exec is in flight */
	struct checker *ck;	  /* compare.mode checker */
	json_t *pending;	  /* a test's result waiting for the checker */
	char pending_note[256];	  /* its truncation note */
	bool do_compile;	  /* compile the submission (the request's "compile") */
	bool helper_next;	  /* the next exec_begin goes through the pre-started helper */
	struct cgroup *old_group; /* replaced by the last renewal; run_tidy removes it */
	struct exec ex;
};

static void exec_kill(struct run *r);
static void exec_try_finish(struct run *r);
static void run_next(struct run *r);
static void run_compile(struct run *r);
static void exec_rerun(struct run *r);
static void run_submission(struct run *r);
static void run_fail(struct run *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void run_finish(struct run *r);

static void exec_close(struct exec *e)
{
	struct ev_loop *loop = EV_DEFAULT;
	for (int i = 0; i < 2; i++) {
		if (e->fd[i] >= 0) {
			ev_io_stop(loop, &e->io[i]);
			close(e->fd[i]);
			e->fd[i] = -1;
		}
		free(e->out[i].data);
		e->out[i].data = NULL;
	}
	ev_timer_stop(loop, &e->wall_timer);
	ev_timer_stop(loop, &e->cpu_timer);
	ev_timer_stop(loop, &e->kill_timer);
	ev_timer_stop(loop, &e->report_timer);
}

static void exec_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct run *r = w->data;
	struct exec *e = &r->ex;
	int i = w == &e->io[0] ? 0 : 1;
	char buf[65536];

	for (;;) {
		ssize_t n = read(e->fd[i], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			ev_io_stop(loop, w);
			e->eof[i] = true;
			exec_try_finish(r);
			return;
		}
		struct obuf *b = &e->out[i];
		b->total += (uint64_t)n;
		if (b->len < e->keep[i]) {
			size_t take = (size_t)n < e->keep[i] - b->len ? (size_t)n : e->keep[i] - b->len;
			char *nd = realloc(b->data, b->len + take + 1);
			if (nd) {
				b->data = nd;
				memcpy(b->data + b->len, buf, take);
				b->len += take;
				b->data[b->len] = '\0';
			}
		}
		if (b->total > e->lim->output_bytes && !e->o.output_exceeded) {
			e->o.output_exceeded = true;
			exec_kill(r);
		}
	}
}

/* Kill everything in the run cgroup; what survives a few rounds (a fork
 * bomb racing us) is retried from a timer. Once the main process has exited
 * and the group is empty, nothing of the run is left. */
static void exec_kill(struct run *r)
{
	struct exec *e = &r->ex;
	if (cgroup_kill_all(r->ex.cg) == -EAGAIN) {
		if (!ev_is_active(&e->kill_timer)) {
			ev_timer_set(&e->kill_timer, 0.01, 0.01);
			ev_timer_start(EV_DEFAULT, &e->kill_timer);
		}
	} else if (e->exited) {
		e->all_dead = true;
	}
}

static void exec_kill_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct run *r = w->data;
	if (cgroup_kill_all(r->ex.cg) != -EAGAIN) {
		ev_timer_stop(loop, w);
		if (r->ex.exited) {
			r->ex.all_dead = true;
			exec_try_finish(r);
		}
	}
}

/* How long the run has been held back waiting for a CPU since it started
 * (cgroup_cpu_wait_ns: pressure stall time), at most WALL_WAIT_MAX wall
 * limits; 0 when it cannot be read. */
static uint64_t cpu_wait_so_far(const struct exec *e)
{
	uint64_t now, cap = (uint64_t)e->lim->wall_ms * 1000000ull * WALL_WAIT_MAX;

	if (cgroup_cpu_wait_ns(e->cg, &now) < 0 || now <= e->wait0_ns)
		return 0;
	return now - e->wait0_ns < cap ? now - e->wait0_ns : cap;
}

static void exec_wall_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct run *r = w->data;
	if (!r->ex.launched && r->ex.helper) {
		prestart_abandon(r->slot); /* started again the usual way */
		return;
	}
	if (!r->ex.launched) {
		/* init never started the program: the slot is broken, not the program */
		log_error("slot %s: the run did not start within %.0f s; destroying the slot", r->slot->id,
			  (double)r->ex.lim->wall_ms / 1000.0 + LAUNCH_GRACE);
		slot_destroy(r->slot);
		return;
	}
	/* The wall limit is for programs that sleep or block, not for the host
	 * being busy: time the run was held back waiting for a CPU is added to
	 * the limit (cpu_wait_so_far). The CPU limit is unaffected. */
	struct exec *e = &r->ex;
	uint64_t wait = cpu_wait_so_far(e);
	if (wait > e->waited_ns + 1000000) {
		ev_timer_set(w, (double)(wait - e->waited_ns) / 1e9, 0);
		ev_timer_start(loop, w);
		e->waited_ns = wait;
		return;
	}
	r->ex.o.killed_wall = true;
	exec_kill(r);
}

static void exec_cpu_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct run *r = w->data;
	uint64_t ns;
	if (cgroup_read_cpu_ns(r->ex.cg, &ns) == 0 && ns - r->ex.before.cpu_ns > r->ex.lim->cpu_ms * 1000000ull) {
		r->ex.o.killed_cpu = true;
		ev_timer_stop(loop, w);
		exec_kill(r);
	}
}

/* A helper-started step whose output ended but whose exit the helper did
 * not report: the helper is stopped or lost it. */
static void exec_report_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct run *r = w->data;
	if (r->active && r->ex.helper && !r->ex.exited)
		prestart_abandon(r->slot);
}

/* Pages a run writes into a tmpfs (/tmp, /dev/shm, /mnt/data) stay charged
 * to the memory cgroup it ran in after it exits: the next run there would
 * start with them counted against its own limit (memory_limit_exceeded, or
 * EBUSY setting a limit below them). So a run group that held a run is
 * replaced by a fresh one before a run can use it again: when a run starts
 * in one group, the other (the last run's, empty now) is renewed and init
 * gets its cgroup.procs fds (PROTO_GROUP, before PROTO_RUN: init pre-forks
 * the next run's stub into it right after this run starts). The old group
 * is removed; its pages stay charged to it, offline, and so to the slot's
 * group above, whose limit bounds the slot as a whole, until the files go.
 * A failure here keeps the old group (logged): runs still work, only with
 * the old charges.
 *
 * Making and removing cgroup directories is the slow part (0.2 ms each on a
 * quiet host, up to 15 ms on a busy one), so neither happens between a
 * request and its run's start when it can be helped: the fresh group is made
 * ahead (run_spare_make: while a step runs that others follow, or once a
 * session's request was answered) and the old one is removed once the run
 * that replaced it has started or been answered (run_tidy). On the path
 * stays only what must precede PROTO_RUN: opening the spare's cgroup.procs
 * and the PROTO_GROUP message. Without a spare (a session's second request,
 * a failed mkdir) the group is made there, as before. */

/* PROTO_GROUP to init: group g is `cg` from now on (init drops a stub
 * waiting in g: a spare given for a used group, or the same group again,
 * which only drops its stub). 0 or -errno with err set. */
static int run_group_send(struct slot *s, unsigned g, struct cgroup *cg, struct wp_error *err)
{
	struct proto_new_group m = {.hdr.type = PROTO_GROUP, .group = g};
	int fds[8] = {-1, -1, -1, -1, -1, -1, -1, -1}, n = 0, rc;

	if ((rc = cgroup_open_join(cg, fds, err)) < 0)
		return rc;
	while (n < 8 && fds[n] >= 0)
		n++;
	if ((rc = slot_send(s, &m, sizeof(m), fds, n)) < 0)
		wp_error_set(err, -rc, "send the group to init: %s", strerror(-rc));
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (rc == 0)
		s->run_stub_gone[g] = true;
	return rc;
}

/* A fresh group for cg_run[g]'s next renewal, made now (off a run's path). */
static void run_spare_make(struct slot *s, unsigned g)
{
	struct wp_error err = {0};
	char name[32];

	if (s->run_spare[g] || !s->run_used[g] || !s->cg_run[g])
		return;
	snprintf(name, sizeof(name), "run%u-%u", g, ++s->run_gen);
	if (cgroup_create_sibling(s->cg_run[g], name, &s->run_spare[g], &err) < 0) {
		log_warn("slot %s: a fresh run group %u ahead of need: %s", s->id, g, err.msg);
		s->run_spare[g] = NULL;
	}
}

/* Renew run group g if it held a run: the spare made ahead takes its place
 * (made now if there is none). Returns the old group, which the caller
 * removes once the step is on its way (run_tidy), or NULL. */
static struct cgroup *run_group_renew(struct slot *s, unsigned g)
{
	struct wp_error err = {0};
	struct cgroup *fresh, *old = s->cg_run[g];
	char name[32];

	if (!s->run_used[g])
		return NULL;
	fresh = steal_pointer(&s->run_spare[g]);
	if (!fresh) {
		snprintf(name, sizeof(name), "run%u-%u", g, ++s->run_gen);
		if (cgroup_create_sibling(old, name, &fresh, &err) < 0)
			fresh = NULL;
	}
	if (!fresh || run_group_send(s, g, fresh, &err) < 0) {
		log_warn("slot %s: run group %u not renewed (its pages stay charged to it): %s", s->id, g, err.msg);
		if (fresh)
			cgroup_destroy(fresh, NULL);
		return NULL;
	}
	s->cg_run[g] = fresh;
	s->run_used[g] = false;
	return old;
}

/* After a step started (more follow) or the request was answered: the
 * group the last renewal replaced goes, and the group the next renewal
 * replaces (the latest step's) gets its spare. Once answered, only a slot
 * that served a request before gets one (a session's: runs come again): a
 * judged slot is destroyed after its one request, and a spare made for it
 * would be a mkdir (up to 15 ms on a busy host) holding up other slots. */
static void run_tidy(struct run *r, bool answered)
{
	struct wp_error err = {0};
	struct slot *s = r->slot;

	if (r->old_group && cgroup_destroy(r->old_group, &err) < 0)
		log_warn("slot %s: removing an old run group: %s", s->id, err.msg);
	r->old_group = NULL;
	if (!s->dead && (!answered || s->runs > 0))
		run_spare_make(s, s->next_group ^ 1);
}

/* Does the request have a step after the one starting now? */
static bool run_more_steps(const struct run *r)
{
	if (r->phase == PHASE_CHECKER_BUILD || r->phase == PHASE_COMPILE)
		return true;
	if (r->phase == PHASE_TEST && r->ck)
		return true; /* its check */
	return r->test + 1 < json_array_size(r->tests);
}

/* Start one execution. Returns 0 or -errno (an internal error). */
static int exec_begin(struct run *r, const struct language *lang, char *const *argv, const char *const *extra,
		      const char *cwd, const char *in, size_t in_len, const struct limits *lim, size_t keep_out)
{
	struct slot *s = r->slot;
	struct exec *e = &r->ex;
	struct ev_loop *loop = EV_DEFAULT;
	cleanup_close int memfd = -1;
	int out[2] = {-1, -1}, err[2] = {-1, -1};
	cleanup_free char *msg = NULL;
	size_t msg_len;
	int rc;

	/* a checker is started by checker.c, not init, in the group the last
	 * run left empty (init's stub for the next run waits in the other) */
	bool ck = r->ck && (r->phase == PHASE_CHECK || r->phase == PHASE_CHECKER_BUILD);

	memset(e, 0, sizeof(*e));
	e->fd[0] = e->fd[1] = -1;
	e->helper = r->helper_next && !ck;
	r->helper_next = false;
	if (ck) {
		/* a checker: the group the program just left (init's next stub
		 * waits in next_group, which a checker's end must not kill) */
		e->group = s->next_group ^ 1;
	} else {
		if (r->old_group) /* the last step did not start: not tidied */
			run_tidy(r, false);
		e->group = s->next_group;
		s->next_group ^= 1;
		r->old_group = run_group_renew(s, e->group ^ 1);
		s->run_used[e->group] = true;
	}
	e->cg = s->cg_run[e->group];
	e->lim = lim;
	e->keep[0] = keep_out;
	e->keep[1] = r->max_output;

	rc = cgroup_set_memory(e->cg, lim->memory_kb * 1024, NULL);
	if (rc == 0 || rc == -EOPNOTSUPP)
		rc = cgroup_set_pids(e->cg, lim->pids, NULL);
	if (rc < 0 && rc != -EOPNOTSUPP)
		return rc;
	cgroup_reset_peak(e->cg);
	if ((rc = cgroup_read_stats(e->cg, &e->before)) < 0)
		return rc;

	memfd = memfd_create("stdin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0)
		return -errno;
	for (size_t off = 0; off < in_len;) {
		ssize_t n = write(memfd, in + off, in_len - off);
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	if (lseek(memfd, 0, SEEK_SET) < 0 ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		return -errno;
	if ((rc = launch_message(lang, argv, extra, cwd, lim, e->group, false, &msg, &msg_len)) < 0)
		return rc;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail;
	}
	/* only our ends are non-blocking: the program writes to a normal pipe */
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(err[0], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETPIPE_SZ, 1 << 20);

	int fds[3] = {memfd, out[1], err[1]};
	e->started = ev_time();
	struct wp_error lerr = {0};
	if (e->helper && prestart_send(s, msg, msg_len, fds, e->group, run_more_steps(r)) < 0)
		e->helper = false; /* the usual way, through init */
	if (e->helper)
		rc = 0;
	else if (ck)
		rc = checker_launch(r->ck, s, e->cg, msg, msg_len, fds, &lerr);
	else
		rc = slot_send(s, msg, msg_len, fds, 3);
	if (rc < 0) {
		if (ck)
			log_error("slot %s: checker: %s", s->id, lerr.msg);
		goto fail;
	}
	close(out[1]);
	close(err[1]);
	e->fd[0] = out[0];
	e->fd[1] = err[0];
	for (int i = 0; i < 2; i++) {
		ev_io_init(&e->io[i], exec_io_cb, e->fd[i], EV_READ);
		e->io[i].data = r;
		ev_io_start(loop, &e->io[i]);
	}
	/* Until init says the program started, the timer only guards the
	 * launch; the wall limit counts from PROTO_STARTED, so a launch
	 * delayed by a loaded host is not the program's time. */
	ev_timer_init(&e->wall_timer, exec_wall_cb, (double)lim->wall_ms / 1000.0 + LAUNCH_GRACE, 0);
	e->wall_timer.data = r;
	ev_timer_start(loop, &e->wall_timer);
	ev_timer_init(&e->cpu_timer, exec_cpu_cb, CPU_POLL_INTERVAL, CPU_POLL_INTERVAL);
	e->cpu_timer.data = r;
	ev_timer_start(loop, &e->cpu_timer);
	ev_init(&e->kill_timer, exec_kill_timer_cb);
	e->kill_timer.data = r;
	ev_init(&e->report_timer, exec_report_timer_cb);
	e->report_timer.data = r;
	r->active = true;
	if (!ck && !e->helper) { /* init's stub here took it; init forks one into the other group */
		s->run_stub_gone[e->group] = true;
		s->run_stub_gone[e->group ^ 1] = false;
	}
	/* The helper's child took the step: a stub of init waiting in this
	 * group will not, and killing it at the step's end (freeze, kill, wait
	 * for its exit) would delay the answer by a millisecond. Init drops it
	 * now, while the step runs. */
	if (e->helper && !s->run_stub_gone[e->group] && run_group_send(s, e->group, e->cg, &lerr) < 0)
		log_warn("slot %s: init's stub in run group %u not dropped: %s", s->id, e->group, lerr.msg);
	if (!ck && run_more_steps(r))
		run_tidy(r, false);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		cleanup_closep(&out[i]);
		cleanup_closep(&err[i]);
	}
	return rc;
}

/* "stdout: N bytes written, only the first K returned…" for each stream cut
 * by max_output, in `buf` ("" when none was). A run stopped at its output
 * limit is not told to ask for more: its verdict says what happened. */
static void exec_truncation_note(struct run *r, size_t n0, char *buf, size_t len)
{
	struct exec *e = &r->ex;
	uint64_t max = sandboxd_settings->max.output_bytes;
	char one[2][200] = {"", ""};

	buf[0] = '\0';
	if (e->o.output_exceeded)
		return;
	if (e->out[0].total > n0)
		verdict_explain_truncation("stdout", n0, e->out[0].total, max, one[0], sizeof(one[0]));
	if (e->out[1].total > e->out[1].len)
		verdict_explain_truncation("stderr", e->out[1].len, e->out[1].total, max, one[1], sizeof(one[1]));
	snprintf(buf, len, "%s%s%s", one[0], one[0][0] && one[1][0] ? "; " : "", one[1]);
}

/* The answer's "message": what the verdict means, then the truncation
 * note; null when there is nothing to say. */
static void set_message(json_t *j, const char *what, const char *note)
{
	char msg[1024];

	if (!what[0] && !note[0]) {
		json_object_set_new(j, "message", json_null());
		return;
	}
	snprintf(msg, sizeof(msg), "%s%s%s", what, what[0] && note[0] ? ". " : "", note);
	json_object_set_new(j, "message", json_string(msg));
}

/* A program's output in an answer, every byte carried: `key` is the text,
 * NUL bytes included (\u0000), with U+FFFD for each byte that is not part of
 * valid UTF-8; when there is such a byte, `<key>_base64` holds the exact
 * bytes as well. The verdict never looks at this: it compared the bytes. */
static void output_set(json_t *j, const char *key, const char *p, size_t n)
{
	json_t *text;
	char name[32];

	if (!p) {
		p = "";
		n = 0;
	}
	if ((text = json_stringn(p, n))) { /* valid UTF-8 (jansson checks) */
		json_object_set_new(j, key, text);
		return;
	}
	json_object_set_new(j, key, launch_json_text(p, n));
	cleanup_free char *b64 = n < INT_MAX / 2 ? malloc(4 * ((n + 2) / 3) + 1) : NULL;
	if (!b64)
		return; /* out of memory: the text alone */
	int len = EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)p, (int)n);
	snprintf(name, sizeof(name), "%s_base64", key);
	json_object_set_new(j, name, json_stringn(b64, (size_t)len));
}

static json_t *exec_json(struct run *r, enum verdict v)
{
	struct exec *e = &r->ex;
	size_t n0 = e->out[0].len < r->max_output ? e->out[0].len : r->max_output;
	char what[768], note[256];
	json_t *j =
	    json_pack("{s:s, s:I, s:I, s:I, s:b, s:b}", "verdict", verdict_name(v), "time_ms", (json_int_t)e->o.cpu_ms,
		      "wall_ms", (json_int_t)e->o.wall_ms, "memory_kb", (json_int_t)e->o.memory_kb, "stdout_truncated",
		      e->out[0].total > n0, "stderr_truncated", e->out[1].total > e->out[1].len);
	output_set(j, "stdout", e->out[0].data, n0);
	output_set(j, "stderr", e->out[1].data, e->out[1].len);
	json_object_set_new(j, "exit_code", e->o.exited ? json_integer(e->o.exit_code) : json_null());
	json_object_set_new(j, "signal", !e->o.exited && e->o.signal ? json_integer(e->o.signal) : json_null());
	verdict_explain(v, &e->o, e->lim, what, sizeof(what));
	exec_truncation_note(r, n0, note, sizeof(note));
	set_message(j, what, note);
	return j;
}

/* The first failure of the request, for the top-level "message". */
static void run_note_failure(struct run *r, const char *prefix, const json_t *j)
{
	const char *m = json_string_value(json_object_get(j, "message"));

	if (r->message || !m)
		return;
	if (asprintf(&r->message, "%s%s", prefix, m) < 0)
		r->message = NULL;
}

/* A test is judged: record it, then the next test or the end. */
static void test_done(struct run *r, json_t *j, enum verdict v)
{
	json_object_set_new(j, "verdict", json_string(verdict_name(v)));
	json_object_set_new(j, "test", json_integer((json_int_t)r->test + 1));
	json_array_append_new(r->results, j);
	if (v == VERDICT_ACCEPTED) {
		r->passed++;
	} else if (!r->verdict) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "test %zu: ", r->test + 1);
		r->verdict = verdict_name(v);
		run_note_failure(r, prefix, j);
	}
	if (v == VERDICT_INTERNAL_ERROR)
		log_error("slot %s: test %zu: internal error", r->slot->id, r->test + 1);
	r->test++;
	if (v != VERDICT_ACCEPTED && (r->stop_on_failure || v == VERDICT_INTERNAL_ERROR))
		run_finish(r);
	else
		run_next(r);
}

static void test_ran(struct run *r, enum verdict v)
{
	struct exec *e = &r->ex;
	json_t *t = json_array_get(r->tests, r->test);
	json_t *expected = json_object_get(t, "expected");
	const char *out = e->out[0].data ? e->out[0].data : "";

	if (v == VERDICT_ACCEPTED && r->ck) {
		/* the program is dead: stage its output for the checker */
		json_t *in = json_object_get(t, "stdin");
		struct wp_error err = {0};
		const char *cwd;
		static const char *const args[] = {"input", "output", "answer", NULL};
		const struct language *cl = checker_language(r->ck);
		r->pending = exec_json(r, v);
		exec_truncation_note(r, e->out[0].len < r->max_output ? e->out[0].len : r->max_output, r->pending_note,
				     sizeof(r->pending_note));
		int rc = checker_stage(r->ck, r->slot, in ? json_string_value(in) : "", in ? json_string_length(in) : 0,
				       out, e->out[0].len, expected ? json_string_value(expected) : "",
				       expected ? json_string_length(expected) : 0, &cwd, &err);
		exec_close(e);
		r->phase = PHASE_CHECK;
		if (rc < 0 ||
		    (rc = exec_begin(r, cl, cl->run_argv, args, cwd, "", 0, &cl->limits, r->max_output)) < 0) {
			log_error("slot %s: checker: %s", r->slot->id, err.msg[0] ? err.msg : strerror(-rc));
			exec_close(e);
			json_t *j = steal_pointer(&r->pending);
			checker_unstage(r->ck, r->slot);
			test_done(r, j, VERDICT_INTERNAL_ERROR);
		}
		return;
	}
	if (v == VERDICT_ACCEPTED && json_is_string(expected) &&
	    !compare_output(&r->cmp, out, e->out[0].len, json_string_value(expected), json_string_length(expected)))
		v = VERDICT_WRONG_ANSWER;
	json_t *j = exec_json(r, v);
	exec_close(e);
	test_done(r, j, v);
}

static void test_checked(struct run *r, enum verdict cv)
{
	struct exec *e = &r->ex;
	enum verdict v = checker_verdict(&e->o);
	json_t *j = steal_pointer(&r->pending);
	size_t n0 = e->out[0].len < r->max_output ? e->out[0].len : r->max_output;

	if (v == VERDICT_INTERNAL_ERROR)
		log_error("slot %s: test %zu: the checker failed (%s, exit %d, signal %d)", r->slot->id, r->test + 1,
			  verdict_name(cv), e->o.exited ? e->o.exit_code : -1, e->o.signal);
	json_t *ck = json_pack("{s:o}", "exit_code", e->o.exited ? json_integer(e->o.exit_code) : json_null());
	output_set(ck, "stdout", e->out[0].data, n0);
	output_set(ck, "stderr", e->out[1].data, e->out[1].len);
	json_object_set_new(j, "checker", ck);
	/* the message is the checker's verdict on the program's output */
	char what[768];
	struct run_outcome none = {.exited = true};
	verdict_explain(v, &none, &r->lim, what, sizeof(what));
	if (v == VERDICT_WRONG_ANSWER)
		snprintf(what, sizeof(what),
			 "the program ran without error, but the checker judged its output wrong (exit code %d): "
			 "see checker.stdout and checker.stderr",
			 e->o.exit_code);
	set_message(j, what, r->pending_note);
	exec_close(e);
	checker_unstage(r->ck, r->slot);
	test_done(r, j, v);
}

static void compile_done(struct run *r, enum verdict v)
{
	struct exec *e = &r->ex;
	json_t *j = exec_json(r, v);
	char what[1024];

	json_object_del(j, "verdict");
	json_object_set_new(j, "status", json_string(v == VERDICT_ACCEPTED ? "ok" : "error"));
	if (v != VERDICT_ACCEPTED) {
		/* a limit of the judge is told apart from the code's own errors */
		json_object_set_new(j, "reason", json_string(verdict_compile_reason(v)));
		verdict_explain_compile(v, &e->o, e->lim, what, sizeof(what));
		for (int i = 1; i >= 0; i--)
			if (e->out[i].data &&
			    verdict_compile_hint(e->out[i].data, r->slot->lang->source, what, sizeof(what)))
				break;
		json_object_set_new(j, "message", json_string(what));
		run_note_failure(r, "compile: ", j);
	}
	r->compile = j;
	if (v == VERDICT_INTERNAL_ERROR)
		r->verdict = verdict_name(v);
	else if (v != VERDICT_ACCEPTED)
		r->verdict = verdict_name(VERDICT_COMPILATION_ERROR);
	exec_close(&r->ex);
	if (r->verdict)
		run_finish(r);
	else
		run_next(r);
}

/* The checker compiled (or not): keep its artifacts, go on with the submission. */
static void checker_built(struct run *r, enum verdict v)
{
	struct wp_error err = {0};
	struct exec *e = &r->ex;

	if (v != VERDICT_ACCEPTED) {
		json_t *msg = launch_json_text(e->out[1].data ? e->out[1].data : "", e->out[1].len);
		exec_close(e);
		checker_unstage(r->ck, r->slot);
		run_fail(r, 422, "CheckerCompilationError", "the checker did not compile (%s): %.300s", verdict_name(v),
			 json_string_value(msg));
		json_decref(msg);
		return;
	}
	exec_close(e);
	if (checker_collect(r->ck, r->slot, &err) < 0) {
		run_fail(r, 422, "CheckerError", "%s", err.msg);
		return;
	}
	run_submission(r);
}

/* Both pipes at EOF and the child reaped (or the exec failed): judge it. */
static void exec_try_finish(struct run *r)
{
	struct exec *e = &r->ex;
	struct cgroup_stats after;
	enum verdict v;

	if (r->active && e->helper && e->eof[0] && e->eof[1] && !e->exited && !ev_is_active(&e->report_timer)) {
		ev_timer_set(&e->report_timer, REPORT_GRACE, 0);
		ev_timer_start(EV_DEFAULT, &e->report_timer);
	}
	if (!r->active || !e->eof[0] || !e->eof[1] || (!e->all_dead && !e->o.internal_error))
		return;
	r->active = false;
	if (e->helper_lost) {
		exec_rerun(r);
		return;
	}
	e->o.wall_ms = (uint64_t)ceil((ev_time() - e->started) * 1000.0); /* a run that ran took time: never 0 */
	/* ended past its wall limit before the (late: the loop is busy) timer
	 * looked at the waits: look now */
	if (!e->o.killed_wall && e->o.wall_ms > e->lim->wall_ms) {
		uint64_t wait = cpu_wait_so_far(e);
		if (wait > e->waited_ns)
			e->waited_ns = wait;
	}
	e->o.wall_waited_ms = (e->waited_ns + 999999) / 1000000;
	if (cgroup_read_stats(r->ex.cg, &after) == 0) {
		e->o.cpu_ms = (after.cpu_ns - e->before.cpu_ns) / 1000000;
		e->o.oom_killed = after.oom_kills > e->before.oom_kills;
	} else {
		e->o.cpu_ms = e->rusage_cpu_us / 1000;
	}
	e->o.memory_kb = e->maxrss_kb > 0 ? (uint64_t)e->maxrss_kb : 0;
	v = verdict_of_run(&e->o, e->lim);
	/* a runtime that enforces its own heap (the JVM under MaxRAM) fails
	 * with an error of its own before the cgroup's OOM killer would */
	const char *merr = r->slot->lang->memory_error;
	if (v == VERDICT_RUNTIME_ERROR && merr && e->out[1].data && strstr(e->out[1].data, merr))
		v = VERDICT_MEMORY_LIMIT;

	switch (r->phase) {
	case PHASE_CHECKER_BUILD: checker_built(r, v); return;
	case PHASE_COMPILE: compile_done(r, v); return;
	case PHASE_TEST: test_ran(r, v); return;
	case PHASE_CHECK: test_checked(r, v); return;
	}
}

/* The helper failed the step in flight; everything of it is dead: start
 * the same step again, the usual way (the helper is not usable now). */
static void exec_rerun(struct run *r)
{
	log_info("slot %s: %s started again without the pre-started helper", r->slot->id,
		 r->phase == PHASE_COMPILE ? "the compile" : "a test case");
	exec_close(&r->ex);
	if (r->phase == PHASE_COMPILE)
		run_compile(r);
	else
		run_next(r);
}

void run_helper_lost(struct slot *s)
{
	struct run *r = s->run;
	struct exec *e;

	if (!r || !r->active || !r->ex.helper || r->ex.helper_lost)
		return;
	e = &r->ex;
	e->helper_lost = true;
	e->exited = true; /* no report will come: the run group is killed instead */
	ev_timer_stop(EV_DEFAULT, &e->wall_timer);
	ev_timer_stop(EV_DEFAULT, &e->cpu_timer);
	ev_timer_stop(EV_DEFAULT, &e->report_timer);
	exec_kill(r);
	exec_try_finish(r);
}

static void exec_internal_error(struct run *r, int err, const char *where)
{
	log_error("slot %s: %s: %s", r->slot->id, where, strerror(err));
	r->ex.o.internal_error = true;
	r->ex.eof[0] = r->ex.eof[1] = true;
	r->active = true;
	exec_try_finish(r);
}

void run_on_message(struct slot *s, const void *msg, size_t len)
{
	struct run *r = s->run;
	const struct proto_hdr *h = msg;

	if (!r || !r->active)
		return;
	if (h->type == PROTO_STARTED && !r->ex.launched) {
		struct exec *e = &r->ex;
		e->launched = true;
		e->started = ev_time();
		if (cgroup_cpu_wait_ns(e->cg, &e->wait0_ns) < 0)
			e->wait0_ns = UINT64_MAX; /* nothing to read: the plain wall limit */
		ev_timer_stop(EV_DEFAULT, &e->wall_timer);
		ev_timer_set(&e->wall_timer, (double)e->lim->wall_ms / 1000.0, 0);
		ev_timer_start(EV_DEFAULT, &e->wall_timer);
	} else if (h->type == PROTO_EXITED && len >= sizeof(struct proto_exited)) {
		const struct proto_exited *x = msg;
		struct exec *e = &r->ex;
		e->exited = true;
		e->maxrss_kb = x->maxrss_kb;
		e->rusage_cpu_us = (uint64_t)(x->utime_us + x->stime_us);
		if (WIFEXITED(x->status)) {
			e->o.exited = true;
			e->o.exit_code = WEXITSTATUS(x->status);
		} else if (WIFSIGNALED(x->status)) {
			e->o.signal = WTERMSIG(x->status);
		}
		ev_timer_stop(EV_DEFAULT, &e->wall_timer);
		ev_timer_stop(EV_DEFAULT, &e->cpu_timer);
		/* the main process is gone: so is everything it left behind */
		exec_kill(r);
		exec_try_finish(r);
	} else if (h->type == PROTO_FAILED && len >= sizeof(struct proto_failed)) {
		const struct proto_failed *f = msg;
		char where[130];
		snprintf(where, sizeof(where), "init: %.119s", f->where);
		exec_close(&r->ex);
		exec_internal_error(r, f->err, where);
	}
}

/* Start the next step, or finish. */
static void run_next(struct run *r)
{
	const struct language *lang = r->slot->lang;
	int rc;

	if (r->test >= json_array_size(r->tests)) {
		run_finish(r);
		return;
	}
	r->phase = PHASE_TEST;
	json_t *t = json_array_get(r->tests, r->test);
	json_t *in = json_object_get(t, "stdin");
	json_t *exp = json_object_get(t, "expected");
	/* keep enough stdout to compare (up to the output limit) */
	size_t keep = json_is_string(exp) || r->ck ? (size_t)r->lim.output_bytes + 1 : r->max_output;
	r->helper_next = prestart_usable(r->slot, false);
	rc = exec_begin(r, lang, lang->run_argv, NULL, NULL, in ? json_string_value(in) : "",
			in ? json_string_length(in) : 0, &r->lim, keep);
	if (rc < 0) {
		exec_close(&r->ex);
		exec_internal_error(r, -rc, "start run");
	}
}

static void run_free(struct run *r)
{
	exec_close(&r->ex);
	if (r->old_group) /* not tidied (the slot is going): empty, removed now */
		cgroup_destroy(r->old_group, NULL);
	if (r->ck) {
		checker_unstage(r->ck, r->slot);
		checker_free(r->ck);
	}
	json_decref(r->pending);
	json_decref(r->body);
	json_decref(r->results);
	json_decref(r->compile);
	free(r->message);
	free(r);
}

static void run_finish(struct run *r)
{
	struct slot *s = r->slot;
	json_t *ans = json_pack("{s:s, s:O?, s:O, s:I, s:I, s:I}", "verdict", r->verdict ? r->verdict : "accepted",
				"compile", r->compile, "tests", r->results, "passed", (json_int_t)r->passed, "total",
				(json_int_t)json_array_size(r->tests), "wall_ms",
				(json_int_t)((ev_time() - r->started) * 1000.0));
	json_object_set_new(ans, "message", r->message ? json_string(r->message) : json_null());
	http_respond_json(r->req, 200, ans);
	run_tidy(r, true); /* answered: off its path */
	s->run = NULL;
	prestart_request_done(s);
	s->runs++;
	s->last_used = ev_now(EV_DEFAULT);
	slot_idle(s);
	run_free(r);
}

void run_abort(struct slot *s, int status, const char *code, const char *why)
{
	struct run *r = s->run;
	if (!r)
		return;
	http_respond_error(r->req, status, code, "%s", why);
	s->run = NULL;
	run_free(r);
}

/* The request fails as a whole (after the slot went busy). */
static void run_fail(struct run *r, int status, const char *code, const char *fmt, ...)
{
	struct slot *s = r->slot;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	http_respond_error(r->req, status, code, "%s", msg);
	run_tidy(r, true);
	if (s->run == r) {
		s->run = NULL;
		slot_idle(s);
	}
	run_free(r);
}

static int run_parse(struct run *r, json_t *body, struct wp_error *err)
{
	static const char *const keys[] = {"source",  "compile", "tests",	    "limits",	  "compile_limits",
					   "compare", "checker", "stop_on_failure", "max_output", NULL};
	const struct settings *cfg = sandboxd_settings;
	uint64_t max_output = 65536;
	int rc;

	if ((rc = json_check_keys(body, keys, err)) < 0)
		return rc;
	r->lim = r->slot->lang->limits;
	r->clim = r->slot->lang->compile_limits;
	if ((rc = limits_apply_json(&r->lim, json_object_get(body, "limits"), &cfg->max, err)) < 0 ||
	    (rc = limits_apply_json(&r->clim, json_object_get(body, "compile_limits"), &cfg->max, err)) < 0)
		return rc;
	compare_spec_default(&r->cmp);
	if ((rc = compare_spec_from_json(&r->cmp, json_object_get(body, "compare"), err)) < 0)
		return rc;
	if (r->cmp.mode == COMPARE_CHECKER) {
		if ((rc = checker_parse(json_object_get(body, "checker"), &r->ck, err)) < 0)
			return rc;
	} else if (json_object_get(body, "checker")) {
		return wp_error_set(err, EINVAL, "checker: given, but compare.mode is not \"checker\"");
	}
	if ((rc = json_get_bool(body, "stop_on_failure", false, &r->stop_on_failure, err)) < 0 ||
	    (rc = json_get_uint(body, "max_output", false, 0, cfg->max.output_bytes, &max_output, err)) < 0)
		return rc;
	r->max_output = (size_t)max_output;
	r->tests = json_object_get(body, "tests");
	if (!json_is_array(r->tests) || json_array_size(r->tests) < 1 || json_array_size(r->tests) > MAX_TESTS)
		return wp_error_set(err, EINVAL, "tests: an array of 1 to %d test objects is required", MAX_TESTS);
	for (size_t i = 0; i < json_array_size(r->tests); i++) {
		static const char *const tkeys[] = {"stdin", "expected", NULL};
		json_t *t = json_array_get(r->tests, i);
		const char *dummy;
		if (!json_is_object(t))
			return wp_error_set(err, EINVAL, "tests[%zu]: an object is required", i);
		if ((rc = json_check_keys(t, tkeys, err)) < 0 ||
		    (rc = json_get_bytes(t, "stdin", false, &dummy, NULL, err)) < 0 ||
		    (rc = json_get_bytes(t, "expected", false, &dummy, NULL, err)) < 0) {
			wp_error_prefix(err, "tests[%zu]", i);
			return rc;
		}
	}
	return 0;
}

/* The submission's own steps: its source, its compile, its tests. */
static void run_submission(struct run *r)
{
	struct slot *s = r->slot;
	struct wp_error err = {0};
	json_t *js = json_object_get(r->body, "source");
	int rc;

	if (json_is_string(js) &&
	    (rc = files_write(s, s->lang->source, json_string_value(js), json_string_length(js), &err)) < 0) {
		if (rc != -ENOSPC)
			log_error("slot %s: %s", s->id, err.msg);
		run_fail(r, rc == -ENOSPC ? 413 : 500, rc == -ENOSPC ? "PayloadTooLarge" : "InternalError", "%s",
			 err.msg);
		return;
	}
	if (r->do_compile && s->lang->compile_argv) {
		pch_prepare(s->lang);
		run_compile(r);
		return;
	}
	run_next(r);
}

static void run_compile(struct run *r)
{
	struct slot *s = r->slot;
	int rc;

	r->phase = PHASE_COMPILE;
	r->helper_next = prestart_usable(s, true);
	rc = exec_begin(r, s->lang, s->lang->compile_argv, NULL, NULL, "", 0, &r->clim, r->max_output);
	if (rc < 0) {
		exec_close(&r->ex);
		exec_internal_error(r, -rc, "start compile");
	}
}

void run_start(struct slot *s, struct http_request *req, json_t *body)
{
	struct wp_error err = {0};
	const char *source = NULL;
	struct run *r;
	int rc;

	if (s->state == SLOT_BUSY) {
		http_respond_error(req, 409, "SlotBusy", "slot %s is running something", s->id);
		json_decref(body);
		return;
	}
	if (s->state != SLOT_READY) {
		http_respond_error(req, 409, "SlotNotReady", "slot %s is %s", s->id, slot_state_name(s->state));
		json_decref(body);
		return;
	}
	if (!(r = calloc(1, sizeof(*r)))) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		json_decref(body);
		return;
	}
	r->slot = s;
	r->req = req;
	r->body = body;
	r->do_compile = true;
	r->ex.fd[0] = r->ex.fd[1] = -1;
	r->results = json_array();
	r->started = ev_time();
	if ((rc = run_parse(r, body, &err)) < 0 || (rc = json_get_string(body, "source", false, &source, &err)) < 0 ||
	    (rc = json_get_bool(body, "compile", false, &r->do_compile, &err)) < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		run_free(r);
		return;
	}
	slot_busy(s);
	s->run = r;
	if (!r->ck) {
		run_submission(r);
		return;
	}
	/* the checker first, in a directory of its own, before the submission's
	 * files are written */
	const struct language *cl = checker_language(r->ck);
	const char *cwd;
	if (checker_build_dir(r->ck, s, &cwd, &err) < 0) {
		run_fail(r, 500, "InternalError", "%s", err.msg);
		return;
	}
	if (!cl->compile_argv) {
		checker_built(r, VERDICT_ACCEPTED);
		return;
	}
	r->phase = PHASE_CHECKER_BUILD;
	rc = exec_begin(r, cl, cl->compile_argv, NULL, cwd, "", 0, &cl->compile_limits, r->max_output);
	if (rc < 0) {
		exec_close(&r->ex);
		run_fail(r, 500, "InternalError", "start the checker's compile: %s", strerror(-rc));
	}
}
