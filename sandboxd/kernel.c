/* kernel.c — the stateful interpreter of a slot ("kernel", as Jupyter says).
 *
 * Theory of operation. A slot created with "interpreter": true gets a fourth
 * cgroup, kernel/, limited like one run of its language ([limits] memory and
 * pids). Once the slot's init is ready, init starts the language's
 * `interpreter` command there (PROTO_RUN, group 2) with the slot's uid,
 * seccomp filter and no_new_privs, like every run, plus
 * LD_PRELOAD=/opt/warmpool/nodump.so: the interpreter is not dumpable, so a
 * judged run (same uid) cannot write its memory through /proc; the language's
 * command starts it isolated (python3 -I), so a restart runs nothing a run
 * planted in HOME (/tmp) or /mnt/data. It gets five fds:
 *
 *   0  /dev/null
 *   1  stdout: a memfd sandboxd keeps too, opened O_APPEND
 *   2  stderr: another such memfd
 *   3  requests, one JSON line each: {"code": "...", "max_output": N}
 *   4  replies, one JSON line each: first {"ready": true}, then per request
 *      {"status": "ok"|"error", "result": "<repr>"|null, "value": V}, V
 *      (optional) the value as Azure answers it: a string, number, boolean,
 *      null or an object of strings (an image), passed on as is
 *
 * The driver (sandboxd/runtimes/pykernel.py, jskernel.js) never writes the
 * program's output into the protocol: everything the execution prints, its
 * child processes included, lands in the memfds, which sandboxd empties
 * before each execution and reads back (at most max_output bytes each) after
 * the reply, or after a timeout or crash, when the partial output is all
 * there is. So output cannot corrupt the protocol, and nothing the program
 * prints is lost to a crash. The interpreter counts as hostile: every line
 * is bounded and validated; anything unexpected is a protocol error.
 *
 * The slot is ready once the driver says {"ready": true}: the interpreter is
 * up before the first execution. An execution that passes its timeout, an
 * interpreter that dies (exit, signal, OOM) or breaks the protocol: the
 * whole kernel group is killed (background processes of earlier executions
 * too), a fresh interpreter started, and then the execution is answered
 * ("timeout" / "crashed", state_lost). Between executions, processes an
 * execution left in the background keep running in the kernel group, bounded
 * by its limits; judged runs (run.c) never touch that group. */
#include "kernel.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "json.h"
#include "launch.h"
#include "log.h"
#include "proto.h"

#define KERNEL_START_TIMEOUT	20.0  /* s: from PROTO_RUN to the ready line */
#define KERNEL_KILL_TIMEOUT	10.0  /* s: from the kill to an empty group and a reaped interpreter */
#define KERNEL_LINE_BASE	65536 /* a protocol line, plus 6 bytes per byte of result */
#define EXEC_TIMEOUT_DEFAULT	30000
#define EXEC_MAX_OUTPUT_DEFAULT (1u << 20)
#define EXEC_MAX_OUTPUT_MAX	(16u << 20)
#define REPLY_MAX_DEPTH		4

enum kernel_state {
	K_STARTING, /* started, waiting for its ready line */
	K_IDLE,
	K_EXEC,	   /* an execution was sent, waiting for its reply */
	K_KILLING, /* the group is being killed; a fresh start follows */
	K_DEAD,	   /* could not be (re)started, or the slot is going */
};

enum kill_reason { KILL_TIMEOUT, KILL_DIED, KILL_PROTOCOL };

struct kexec {
	struct http_request *req;
	char *msg; /* the request line */
	size_t msg_len, msg_off;
	uint64_t timeout_ms;
	size_t max_output;
	bool sent;
	bool state_lost;
	double started, ended;
	const char *status; /* "ok" "error" "timeout" "crashed", once known */
	json_t *result;	    /* string or null, from the reply */
	json_t *value;	    /* the reply's "value", or NULL */
	char pre[512];	    /* said at the start of stderr (state lost before this execution) */
	char note[512];	    /* said at the end of stderr (timeout, crash) */
	char *out[2];	    /* stdout, stderr as captured */
	size_t len[2];
	uint64_t total[2];
};

struct kernel {
	struct slot *slot;
	enum kernel_state state;
	bool creating;	  /* first start, part of the slot's creation */
	bool launched;	  /* PROTO_RUN sent, and neither EXITED nor FAILED since */
	bool group_empty; /* K_KILLING: the kill found the group empty */
	bool have_status;
	int wstatus;	 /* of the last interpreter, from EXITED */
	int start_errno; /* from FAILED */
	enum kill_reason reason;
	char why[160];	    /* what the protocol error was */
	int req_fd, rep_fd; /* our ends of the pipes */
	int out_fd[2];	    /* the memfds: the interpreter's fds 1 and 2 */
	int null_fd;
	ev_io req_io, rep_io;
	ev_timer timer;	     /* start deadline, execution timeout or kill deadline */
	ev_timer kill_timer; /* retries a kill that left processes behind */
	char *line;
	size_t line_len, line_cap;
	uint64_t oom_before;
	uint64_t starts;
	bool lost; /* the state was lost since the last answered execution */
	char lost_note[512];
	struct kexec *ex; /* the execution in flight, or waiting for a restart */
};

static const char STATE_LOST[] = "It was restarted: its state (variables, functions, imports, working directory) "
				 "was lost; files in /mnt/data are kept.";

static void kernel_rep_cb(struct ev_loop *loop, ev_io *w, int revents);
static void kernel_req_cb(struct ev_loop *loop, ev_io *w, int revents);
static void kernel_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void kernel_kill_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void kernel_kill(struct kernel *k, enum kill_reason reason, const char *why);

static void kexec_free(struct kexec *ex)
{
	if (!ex)
		return;
	free(ex->msg);
	json_decref(ex->result);
	json_decref(ex->value);
	free(ex->out[0]);
	free(ex->out[1]);
	free(ex);
}

static void kernel_close_pipes(struct kernel *k)
{
	struct ev_loop *loop = EV_DEFAULT;
	ev_io_stop(loop, &k->req_io);
	ev_io_stop(loop, &k->rep_io);
	cleanup_closep(&k->req_fd);
	cleanup_closep(&k->rep_fd);
	k->req_fd = k->rep_fd = -1;
	k->line_len = 0;
}

static struct kernel *kernel_new(struct slot *s, struct wp_error *err)
{
	struct kernel *k = calloc(1, sizeof(*k));
	if (!k) {
		wp_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	k->slot = s;
	k->req_fd = k->rep_fd = k->out_fd[0] = k->out_fd[1] = k->null_fd = -1;
	ev_init(&k->req_io, kernel_req_cb);
	ev_init(&k->rep_io, kernel_rep_cb);
	ev_init(&k->timer, kernel_timer_cb);
	ev_init(&k->kill_timer, kernel_kill_timer_cb);
	k->req_io.data = k->rep_io.data = k->timer.data = k->kill_timer.data = k;
	/* no MFD_ALLOW_SEALING: the program cannot seal them under us */
	for (int i = 0; i < 2; i++) {
		k->out_fd[i] = memfd_create(i ? "stderr" : "stdout", MFD_CLOEXEC);
		/* O_APPEND: after we truncate, every writer writes at the new end */
		if (k->out_fd[i] < 0 || fcntl(k->out_fd[i], F_SETFL, O_APPEND) < 0) {
			wp_error_errno(err, "memfd");
			kernel_free(k);
			return NULL;
		}
	}
	k->null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (k->null_fd < 0) {
		wp_error_errno(err, "open /dev/null");
		kernel_free(k);
		return NULL;
	}
	return k;
}

void kernel_free(struct kernel *k)
{
	if (!k)
		return;
	kernel_close_pipes(k);
	ev_timer_stop(EV_DEFAULT, &k->timer);
	ev_timer_stop(EV_DEFAULT, &k->kill_timer);
	for (int i = 0; i < 2; i++)
		cleanup_closep(&k->out_fd[i]);
	cleanup_closep(&k->null_fd);
	kexec_free(k->ex);
	free(k->line);
	free(k);
}

static void kernel_timer_set(struct kernel *k, double after)
{
	ev_timer_stop(EV_DEFAULT, &k->timer);
	ev_timer_set(&k->timer, after, 0);
	ev_timer_start(EV_DEFAULT, &k->timer);
}

static uint64_t kernel_oom_kills(struct kernel *k)
{
	struct cgroup_stats st;
	return cgroup_read_stats(k->slot->cg_kernel, &st) == 0 ? st.oom_kills : 0;
}

/* What the interpreter gets besides the base and the language's variables:
 * nodump.so makes it non-dumpable before its main() (runtimes/nodump.c), so
 * that a judged run of the same uid cannot write its memory through
 * /proc/<pid>/mem; the drivers refuse to serve without it. */
static const char *const kernel_env[] = {"LD_PRELOAD=/opt/warmpool/nodump.so", NULL};

/* Ask init to start a fresh interpreter. */
static int kernel_spawn(struct kernel *k, struct wp_error *err)
{
	struct slot *s = k->slot;
	int req[2] = {-1, -1}, rep[2] = {-1, -1};
	cleanup_free char *msg = NULL;
	size_t len;
	int r;

	if ((r = launch_message_env(s->lang, s->lang->interpreter_argv, NULL, kernel_env, NULL, &s->lang->limits,
				    PROTO_GROUP_KERNEL, true, &msg, &len)) < 0)
		return wp_error_set(err, -r, "interpreter command: %s", strerror(-r));
	if (pipe2(req, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
		r = wp_error_errno(err, "pipe");
		goto fail;
	}
	/* only our ends are non-blocking: the driver reads and writes plainly */
	fcntl(req[1], F_SETFL, O_NONBLOCK);
	fcntl(rep[0], F_SETFL, O_NONBLOCK);
	for (int i = 0; i < 2; i++)
		if (ftruncate(k->out_fd[i], 0) < 0) {
			r = wp_error_errno(err, "truncate output");
			goto fail;
		}
	k->oom_before = kernel_oom_kills(k);
	int fds[PROTO_MAX_FDS] = {k->null_fd, k->out_fd[0], k->out_fd[1], req[0], rep[1]};
	if ((r = slot_send(s, msg, len, fds, PROTO_MAX_FDS)) < 0) {
		wp_error_set(err, -r, "send to init: %s", strerror(-r));
		goto fail;
	}
	close(req[0]);
	close(rep[1]);
	k->req_fd = req[1];
	k->rep_fd = rep[0];
	k->line_len = 0;
	k->launched = true;
	k->have_status = false;
	k->start_errno = 0;
	k->group_empty = false;
	k->state = K_STARTING;
	k->starts++;
	ev_io_set(&k->rep_io, k->rep_fd, EV_READ);
	ev_io_start(EV_DEFAULT, &k->rep_io);
	ev_io_set(&k->req_io, k->req_fd, EV_WRITE);
	kernel_timer_set(k, KERNEL_START_TIMEOUT);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		cleanup_closep(&req[i]);
		cleanup_closep(&rep[i]);
	}
	return r;
}

int kernel_start(struct slot *s, struct wp_error *err)
{
	struct kernel *k = s->kernel;
	int r;

	if (!k && !(k = s->kernel = kernel_new(s, err)))
		return -ENOMEM;
	k->creating = true;
	if ((r = kernel_spawn(k, err)) < 0)
		k->state = K_DEAD;
	return r;
}

/* The first bytes of what the interpreter wrote on stderr, for a log line. */
static void kernel_stderr_head(struct kernel *k, char *buf, size_t size)
{
	ssize_t n = pread(k->out_fd[1], buf, size - 1, 0);
	n = n < 0 ? 0 : n;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
}

/* Read back one stream of the execution: at most max_output bytes. */
static void kernel_capture(struct kernel *k, struct kexec *ex)
{
	for (int i = 0; i < 2; i++) {
		struct stat st;
		size_t want = 0, got = 0;
		if (fstat(k->out_fd[i], &st) == 0 && st.st_size > 0)
			ex->total[i] = (uint64_t)st.st_size;
		want = ex->total[i] < ex->max_output ? (size_t)ex->total[i] : ex->max_output;
		free(ex->out[i]);
		ex->out[i] = malloc(want + 1);
		if (!ex->out[i]) {
			ex->len[i] = 0;
			continue;
		}
		while (got < want) {
			ssize_t n = pread(k->out_fd[i], ex->out[i] + got, want - got, (off_t)got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		ex->len[i] = got;
	}
}

/* stderr as answered: the note of a state lost before, what the program
 * wrote, the note of a timeout or crash. */
static json_t *kexec_stderr(const struct kexec *ex)
{
	size_t pre = strlen(ex->pre), note = strlen(ex->note), n = ex->len[1];
	cleanup_free char *buf = malloc(pre + n + note + 4);
	size_t o = 0;

	if (!buf)
		return json_string("");
	if (pre) {
		memcpy(buf, ex->pre, pre);
		o = pre;
		buf[o++] = '\n';
	}
	if (n) {
		memcpy(buf + o, ex->out[1], n);
		o += n;
	}
	if (note) {
		if (o && buf[o - 1] != '\n')
			buf[o++] = '\n';
		memcpy(buf + o, ex->note, note);
		o += note;
		buf[o++] = '\n';
	}
	return launch_json_text(buf, o);
}

/* Answer the execution and make the slot ready for the next. */
static void kernel_answer(struct kernel *k)
{
	struct kexec *ex = k->ex;
	struct slot *s = k->slot;
	double wall = ex->sent ? (ex->ended - ex->started) * 1000.0 : 0;
	json_t *j = json_pack("{s:s, s:o, s:o, s:O, s:I, s:b, s:b, s:b}", "status", ex->status, "stdout",
			      launch_json_text(ex->out[0] ? ex->out[0] : "", ex->len[0]), "stderr", kexec_stderr(ex),
			      "result", ex->result ? ex->result : json_null(), "wall_ms",
			      (json_int_t)(wall < 0 ? 0 : wall), "state_lost", ex->state_lost, "stdout_truncated",
			      ex->total[0] > ex->len[0], "stderr_truncated", ex->total[1] > ex->len[1]);
	if (j && ex->value && json_object_set(j, "value", ex->value) < 0) {
		json_decref(j);
		j = NULL;
	}
	log_debug("slot %s: exec %s in %.1f ms%s", s->id, ex->status, wall, ex->state_lost ? " (state lost)" : "");
	k->ex = NULL;
	if (j)
		http_respond_json(ex->req, 200, j);
	else
		http_respond_error(ex->req, 500, "InternalError", "out of memory");
	kexec_free(ex);
	s->execs++;
	s->last_used = ev_now(EV_DEFAULT);
	slot_idle(s);
}

/* The interpreter cannot be (re)started: the sandbox failed. The slot goes. */
static void kernel_broken(struct kernel *k, const char *why)
{
	struct slot *s = k->slot;
	char head[200];

	kernel_stderr_head(k, head, sizeof(head));
	k->state = K_DEAD;
	kernel_close_pipes(k);
	ev_timer_stop(EV_DEFAULT, &k->timer);
	ev_timer_stop(EV_DEFAULT, &k->kill_timer);
	if (k->creating) {
		char msg[400];
		k->creating = false;
		snprintf(msg, sizeof(msg), "interpreter: %s%s%.150s", why, head[0] ? "; its stderr: " : "", head);
		slot_create_failed(s, msg);
		return;
	}
	log_error("slot %s (%s): the interpreter cannot be restarted: %s%s%.150s", s->id, s->lang->name, why,
		  head[0] ? "; its stderr: " : "", head);
	if (k->ex) {
		struct kexec *ex = k->ex;
		k->ex = NULL;
		http_respond_error(ex->req, 500, "InternalError", "the interpreter could not be restarted: %s", why);
		kexec_free(ex);
	}
	slot_destroy(s);
}

/* What happened to the interpreter, for the note in stderr. */
static void kernel_cause(struct kernel *k, char *buf, size_t size)
{
	if (k->reason == KILL_TIMEOUT) {
		snprintf(buf, size, "timed out");
	} else if (k->reason == KILL_PROTOCOL) {
		snprintf(buf, size, "broke its protocol with sandboxd (%s) and was stopped", k->why);
	} else if (kernel_oom_kills(k) > k->oom_before) {
		snprintf(buf, size, "was killed: out of memory (limit %llu MiB)",
			 (unsigned long long)(k->slot->lang->limits.memory_kb / 1024));
	} else if (k->have_status && WIFSIGNALED(k->wstatus)) {
		snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(k->wstatus),
			 strsignal(WTERMSIG(k->wstatus)));
	} else if (k->have_status && WIFEXITED(k->wstatus)) {
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(k->wstatus));
	} else {
		snprintf(buf, size, "died");
	}
}

/* Once the group is empty and init has reaped the interpreter: note what
 * happened and start afresh. */
static void kernel_maybe_restart(struct kernel *k)
{
	struct wp_error err = {0};
	struct kexec *ex = k->ex;
	char cause[256];

	if (k->state != K_KILLING || !k->group_empty || k->launched)
		return;
	ev_timer_stop(EV_DEFAULT, &k->timer);
	kernel_cause(k, cause, sizeof(cause));
	if (ex && ex->sent) {
		kernel_capture(k, ex);
		if (k->reason == KILL_TIMEOUT)
			snprintf(ex->note, sizeof(ex->note),
				 "[warmpool] The execution timed out after %llu ms and the interpreter was stopped. %s",
				 (unsigned long long)ex->timeout_ms, STATE_LOST);
		else
			snprintf(ex->note, sizeof(ex->note), "[warmpool] The interpreter %s during this execution. %s",
				 cause, STATE_LOST);
	} else {
		/* between executions: the next one is told */
		k->lost = true;
		snprintf(k->lost_note, sizeof(k->lost_note),
			 "[warmpool] The interpreter %s after the previous execution. %s", cause, STATE_LOST);
	}
	log_info("slot %s: interpreter %s; restarting it", k->slot->id, cause);
	if (kernel_spawn(k, &err) < 0)
		kernel_broken(k, err.msg);
}

static void kernel_kill_step(struct kernel *k)
{
	if (cgroup_kill_all(k->slot->cg_kernel) == -EAGAIN) {
		if (!ev_is_active(&k->kill_timer)) {
			ev_timer_set(&k->kill_timer, 0.01, 0.01);
			ev_timer_start(EV_DEFAULT, &k->kill_timer);
		}
		return;
	}
	ev_timer_stop(EV_DEFAULT, &k->kill_timer);
	k->group_empty = true;
	kernel_maybe_restart(k);
}

static void kernel_kill_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	kernel_kill_step(w->data);
}

/* Kill the interpreter and everything in its group; a fresh one follows. */
static void kernel_kill(struct kernel *k, enum kill_reason reason, const char *why)
{
	struct kexec *ex = k->ex;

	if (k->state == K_KILLING || k->state == K_DEAD)
		return;
	if (k->state == K_STARTING) {
		/* a fresh interpreter that misbehaves at once would do so again:
		 * no restart loop, the start failed */
		char msg[200];
		snprintf(msg, sizeof(msg), "it broke its protocol during start-up (%s)", why ? why : "");
		kernel_broken(k, msg);
		return;
	}
	k->state = K_KILLING;
	k->reason = reason;
	snprintf(k->why, sizeof(k->why), "%s", why ? why : "");
	kernel_close_pipes(k);
	if (ex && ex->sent && !ex->status) {
		ex->ended = ev_time();
		ex->status = reason == KILL_TIMEOUT ? "timeout" : "crashed";
		ex->state_lost = true;
		json_decref(ex->result);
		ex->result = NULL;
		json_decref(ex->value);
		ex->value = NULL;
	}
	kernel_timer_set(k, KERNEL_KILL_TIMEOUT);
	kernel_kill_step(k);
}

/* Hand the waiting execution to the interpreter. */
static void kernel_send(struct kernel *k)
{
	struct kexec *ex = k->ex;

	for (int i = 0; i < 2; i++)
		if (ftruncate(k->out_fd[i], 0) < 0)
			log_warn("slot %s: truncate output: %m", k->slot->id);
	if (k->lost) {
		ex->state_lost = true;
		snprintf(ex->pre, sizeof(ex->pre), "%s", k->lost_note);
		k->lost = false;
	}
	ex->sent = true;
	ex->started = ev_time();
	k->state = K_EXEC;
	kernel_timer_set(k, (double)ex->timeout_ms / 1000.0);
	kernel_req_cb(EV_DEFAULT, &k->req_io, EV_WRITE);
}

static void kernel_ready(struct kernel *k)
{
	k->state = K_IDLE;
	ev_timer_stop(EV_DEFAULT, &k->timer);
	if (k->creating) {
		k->creating = false;
		slot_created(k->slot);
		return;
	}
	if (!k->ex)
		return;
	if (k->ex->status)
		kernel_answer(k); /* timed out or crashed: answered once the restart is done */
	else
		kernel_send(k);
}

static void kernel_req_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct kernel *k = w->data;
	struct kexec *ex = k->ex;

	if (k->state != K_EXEC || !ex || k->req_fd < 0) {
		ev_io_stop(loop, w);
		return;
	}
	while (ex->msg_off < ex->msg_len) {
		ssize_t n = write(k->req_fd, ex->msg + ex->msg_off, ex->msg_len - ex->msg_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ev_io_start(loop, w);
			return;
		}
		if (n < 0) {
			/* the interpreter closed its request pipe: it is dying (its
			 * exit follows) or broken (the timeout follows) */
			break;
		}
		ex->msg_off += (size_t)n;
	}
	ev_io_stop(loop, w);
	free(ex->msg);
	ex->msg = NULL;
}

/* A reply's "value" when of the allowed shape (a scalar, or an object of
 * strings such as {"type": "image", ...}), else NULL: not passed on. */
static json_t *kernel_value(json_t *v)
{
	const char *key;
	json_t *m;

	if (!v || json_is_array(v))
		return NULL;
	if (json_is_object(v)) {
		json_object_foreach (v, key, m)
			if (!json_is_string(m))
				return NULL;
	}
	return json_incref(v);
}

/* One reply line (without its newline). */
static void kernel_line(struct kernel *k, char *line, size_t len)
{
	struct wp_error err = {0};
	json_t *j;

	if (k->state != K_STARTING && k->state != K_EXEC) {
		kernel_kill(k, KILL_PROTOCOL, "it wrote while no execution was in flight");
		return;
	}
	if (!(j = json_parse_body(line, len, REPLY_MAX_DEPTH, &err))) {
		kernel_kill(k, KILL_PROTOCOL, "a reply is not a JSON object");
		return;
	}
	if (k->state == K_STARTING) {
		bool ok = json_is_true(json_object_get(j, "ready"));
		json_decref(j);
		if (ok)
			kernel_ready(k);
		else
			kernel_kill(k, KILL_PROTOCOL, "its first line is not {\"ready\": true}");
		return;
	}
	struct kexec *ex = k->ex;
	const char *st = json_string_value(json_object_get(j, "status"));
	json_t *res = json_object_get(j, "result");
	if (!st || (strcmp(st, "ok") != 0 && strcmp(st, "error") != 0) || !(json_is_null(res) || json_is_string(res))) {
		json_decref(j);
		kernel_kill(k, KILL_PROTOCOL, "a reply without a valid status or result");
		return;
	}
	ex->ended = ev_time();
	ex->status = strcmp(st, "ok") == 0 ? "ok" : "error";
	ex->result = json_is_string(res) ? launch_json_text(json_string_value(res), json_string_length(res)) : NULL;
	ex->value = kernel_value(json_object_get(j, "value"));
	json_decref(j);
	ev_timer_stop(EV_DEFAULT, &k->timer);
	ev_io_stop(EV_DEFAULT, &k->req_io);
	k->state = K_IDLE;
	kernel_capture(k, ex);
	kernel_answer(k);
}

static void kernel_rep_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct kernel *k = w->data;
	char buf[65536];

	while (k->rep_fd >= 0) {
		ssize_t n = read(k->rep_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* it closed its reply pipe: it is exiting (init reports
			 * that), or else the execution times out */
			ev_io_stop(loop, w);
			return;
		}
		size_t max = KERNEL_LINE_BASE + (k->state == K_EXEC && k->ex ? 6 * k->ex->max_output : 0);
		if (k->line_len + (size_t)n > max) {
			kernel_kill(k, KILL_PROTOCOL, "a reply line is too long");
			return;
		}
		if (k->line_len + (size_t)n > k->line_cap) {
			size_t cap = k->line_cap ? k->line_cap : 4096;
			while (cap < k->line_len + (size_t)n)
				cap *= 2;
			char *nl = realloc(k->line, cap);
			if (!nl) {
				kernel_kill(k, KILL_PROTOCOL, "out of memory");
				return;
			}
			k->line = nl;
			k->line_cap = cap;
		}
		memcpy(k->line + k->line_len, buf, (size_t)n);
		size_t scan = k->line_len;
		k->line_len += (size_t)n;
		char *nlp;
		while (k->rep_fd >= 0 && (nlp = memchr(k->line + scan, '\n', k->line_len - scan))) {
			size_t len = (size_t)(nlp - k->line);
			kernel_line(k, k->line, len);
			if (k->rep_fd < 0 || k->state == K_DEAD || k->state == K_KILLING)
				return; /* pipes closed (kill, failure): k->line was reset */
			memmove(k->line, nlp + 1, k->line_len - len - 1);
			k->line_len -= len + 1;
			scan = 0;
		}
	}
}

static void kernel_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct kernel *k = w->data;

	switch (k->state) {
	case K_STARTING: kernel_broken(k, "it did not say it was ready within 20 s"); break;
	case K_EXEC: kernel_kill(k, KILL_TIMEOUT, NULL); break;
	case K_KILLING: kernel_broken(k, "its group could not be emptied within 10 s"); break;
	default: break;
	}
}

void kernel_on_message(struct slot *s, const void *msg, size_t len)
{
	struct kernel *k = s->kernel;
	const struct proto_hdr *h = msg;
	char why[200];

	if (!k || k->state == K_DEAD)
		return;
	if (h->type == PROTO_STARTED) {
		log_debug("slot %s: interpreter started (pid %d in the slot)", s->id,
			  (int)((const struct proto_started *)msg)->pid);
		return;
	}
	if (h->type == PROTO_FAILED) {
		const struct proto_failed *f = msg;
		k->launched = false;
		k->start_errno = f->err;
		snprintf(why, sizeof(why), "start `%.100s`: %s", f->where, strerror(f->err));
		if (k->state == K_KILLING)
			kernel_maybe_restart(k); /* not expected: it was started */
		else
			kernel_broken(k, why);
		return;
	}
	if (h->type != PROTO_EXITED)
		return;
	k->launched = false;
	k->have_status = true;
	k->wstatus = ((const struct proto_exited *)msg)->status;
	switch (k->state) {
	case K_STARTING:
		if (WIFSIGNALED(k->wstatus))
			snprintf(why, sizeof(why), "it was killed by signal %d during start-up", WTERMSIG(k->wstatus));
		else
			snprintf(why, sizeof(why), "it exited with status %d during start-up", WEXITSTATUS(k->wstatus));
		kernel_broken(k, why);
		break;
	case K_IDLE:
	case K_EXEC: kernel_kill(k, KILL_DIED, NULL); break;
	case K_KILLING: kernel_maybe_restart(k); break;
	case K_DEAD: break;
	}
}

void kernel_abort(struct slot *s)
{
	struct kernel *k = s->kernel;

	if (!k)
		return;
	k->state = K_DEAD;
	k->creating = false;
	kernel_close_pipes(k);
	ev_timer_stop(EV_DEFAULT, &k->timer);
	ev_timer_stop(EV_DEFAULT, &k->kill_timer);
	if (k->ex) {
		struct kexec *ex = k->ex;
		k->ex = NULL;
		http_respond_error(ex->req, 410, "SlotDestroyed", "the slot was destroyed during the execution");
		kexec_free(ex);
	}
}

void kernel_exec(struct slot *s, struct http_request *req, json_t *body)
{
	static const char *const keys[] = {"code", "timeout_ms", "max_output", NULL};
	const struct settings *cfg = sandboxd_settings;
	struct kernel *k = s->kernel;
	struct wp_error err = {0};
	uint64_t timeout = EXEC_TIMEOUT_DEFAULT, max_output = EXEC_MAX_OUTPUT_DEFAULT;
	const char *code = NULL;
	struct kexec *ex;

	if (timeout > cfg->max.wall_ms)
		timeout = cfg->max.wall_ms;
	if (json_check_keys(body, keys, &err) < 0 || json_get_string(body, "code", true, &code, &err) < 0 ||
	    json_get_uint(body, "timeout_ms", false, 1, cfg->max.wall_ms, &timeout, &err) < 0 ||
	    json_get_uint(body, "max_output", false, 0, EXEC_MAX_OUTPUT_MAX, &max_output, &err) < 0) {
		http_respond_error(req, 400, "BadRequest", "%s", err.msg);
		goto out;
	}
	if (!s->interpreter || !k) {
		http_respond_error(req, 409, "NoInterpreter",
				   "slot %s has no interpreter (create it with \"interpreter\": true)", s->id);
		goto out;
	}
	if (s->state == SLOT_BUSY) {
		http_respond_error(req, 409, "SlotBusy", "slot %s is running something", s->id);
		goto out;
	}
	if (s->state != SLOT_READY || k->state == K_DEAD) {
		http_respond_error(req, 409, "SlotNotReady", "slot %s is %s", s->id, slot_state_name(s->state));
		goto out;
	}
	if (!(ex = calloc(1, sizeof(*ex)))) {
		http_respond_error(req, 500, "InternalError", "out of memory");
		goto out;
	}
	json_t *line =
	    json_pack("{s:O, s:I}", "code", json_object_get(body, "code"), "max_output", (json_int_t)max_output);
	ex->msg = line ? json_dumps(line, JSON_COMPACT) : NULL;
	json_decref(line);
	if (!ex->msg) {
		kexec_free(ex);
		http_respond_error(req, 500, "InternalError", "out of memory");
		goto out;
	}
	/* one line: JSON escapes every newline inside the code */
	ex->msg_len = strlen(ex->msg);
	char *m = realloc(ex->msg, ex->msg_len + 2);
	if (!m) {
		kexec_free(ex);
		http_respond_error(req, 500, "InternalError", "out of memory");
		goto out;
	}
	ex->msg = m;
	ex->msg[ex->msg_len++] = '\n';
	ex->msg[ex->msg_len] = '\0';
	ex->req = req;
	ex->timeout_ms = timeout;
	ex->max_output = (size_t)max_output;
	k->ex = ex;
	slot_busy(s);
	if (k->state == K_IDLE)
		kernel_send(k);
	/* else the interpreter is being restarted: kernel_ready sends it */
out:
	json_decref(body);
}
