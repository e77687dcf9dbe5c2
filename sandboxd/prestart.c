/* prestart.c — see prestart.h. The helper gets five fds from init:
 *
 *   0  an empty sealed memfd   1, 2  pipes nobody reads
 *   3  a SOCK_SEQPACKET socket to sandboxd   4  /dev/null
 *
 * fds 0-2 are of the kinds a step's are (a memfd, pipes), so the streams the
 * interpreter set up at its start behave in the step as in an exec'd run.
 * On fd 3, sandboxd sends one datagram per step: init's PROTO_RUN message,
 * with the step's stdin, stdout, stderr and the run group's cgroup.procs fds
 * attached. The helper answers with JSON datagrams: {"ready": true} once up;
 * then per step {"started": pid} (sent by the child, once in the run group
 * with its limits) and {"exited": pid, "status": …, "maxrss_kb": …,
 * "utime_us": …, "stime_us": …} (sent by the helper, which reaps it), or
 * {"failed": errno, "where": "…"}.
 *
 * A helper that cannot fork (a JVM: JavacServer.java) does the step itself:
 * it moves itself into the run group, takes the step's rlimits, reports
 * {"started": pid, "self": true} and closes its socket. From then on its
 * process is the step: init's report of its exit is the step's exit (the
 * socket's end of file is expected), and it is started again, fresh, for
 * the next step.
 *
 * A run helper (`prestart_for = run`: it forks) also gets a PREFORK
 * datagram ("WPPREFRK", a 64-bit tag) with the cgroup.procs fds of the run
 * group the next step will use, once right after its start (it says ready
 * only when that child sits in the group), with each step that has another
 * step of its request after it, and PRESTART_AHEAD_DELAY after a request
 * was answered on a slot that is still there: it forks that step's child
 * ahead, into the group, so the step itself pays neither the fork nor the
 * cgroup move (which can wait for an RCU grace period). Tag 0 and no fds:
 * no child ahead this time. The step's datagram carries the tag after its
 * strings when the group is still the one the child joined (run.c renews
 * groups), else 0: then the helper forks afresh as without it. */
#include "prestart.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "cgroup.h"
#include "cleanup.h"
#include "launch.h"
#include "log.h"
#include "proto.h"
#include "run.h"
#include "settings.h"

#define PRESTART_START_TIMEOUT 30.0 /* the helper's own start-up (a JVM warming javac on a busy host) */
#define PRESTART_STEP_TIMEOUT  2.0  /* a step sent until the child says it started */
#define PRESTART_MAX_STARTS    50   /* per slot: then steps go the usual way */
#define PRESTART_MAX_FDS       (3 + 8)
#define PRESTART_WARM_WEIGHT   1 /* cpu weight of a slot whose helper warms up (default 100) */
#define PRESTART_AHEAD_DELAY   0.2 /* after a request: fork the next child ahead if the slot is kept */
#define PRESTART_QUIET         0.1 /* a compile helper starts once no run slot was short this long */

/* Compile helpers in their warm-up now (counted from their start to their
 * "warmed" report, their step or their end). At most run_slots at once: a
 * warm-up uses CPU no run wants, and more at once only share it, each
 * slower; in a contest burst every slot taken before its warm-up is done
 * would have had its share for nothing (a node keeping dozens of warm Java
 * slots refills them all at once after a burst). */
static unsigned warm_ups;

/* PS_DEFERRED: a compile helper not started yet, its slot made while every
 * run slot was busy; its timer looks every PRESTART_QUIET (prestart_start). */
enum ps_state { PS_DEAD, PS_DEFERRED, PS_STARTING, PS_READY, PS_BUSY };

struct prestart {
	struct slot *slot;
	enum ps_state state;
	bool launched; /* init has the helper (until it reports its exit) */
	bool self;     /* the helper itself is the step in flight ("self") */
	bool warming;  /* the slot's cgroup has PRESTART_WARM_WEIGHT */
	bool warm_up;  /* a compile helper counted in warm_ups */
	unsigned starts;
	int sock;
	ev_io io;
	ev_timer timer;
	ev_timer ahead; /* after a request: the next request's child */
	uint64_t tag_gen;
	uint64_t tag; /* the last PREFORK's (0: none waits) */
	unsigned pre_group;
	char *pre_path; /* the group its child joined, as cgroup_path said */
};

#define PRESTART_PREFORK_MAGIC "WPPREFRK"

/* The helper's warm-up is over (done, stopped by a step, or the helper
 * gone): another compile helper may start (ps_timer_cb). */
static void ps_warm_up_over(struct prestart *p)
{
	if (!p->warm_up)
		return;
	p->warm_up = false;
	warm_ups--;
}

/* The slot's CPU weight: the lowest while its helper warms up in the
 * background, the default otherwise (and its warm-up, if counted, is over:
 * a step took the helper, or it is gone). Best effort (no cpu controller:
 * the warm-up runs at the usual weight). */
static void ps_set_warming(struct prestart *p, bool warming)
{
	struct wp_error err = {0};

	if (!warming)
		ps_warm_up_over(p);
	if (p->warming == warming)
		return;
	p->warming = warming;
	if (cgroup_set_cpu_weight(p->slot->cg, warming ? PRESTART_WARM_WEIGHT : 100, &err) < 0 &&
	    err.code != EOPNOTSUPP)
		log_warn("slot %s: cpu weight while warming up: %s", p->slot->id, err.msg);
}

/* May a compile helper start now: the node's run slots not all busy for
 * PRESTART_QUIET, and fewer than run_slots helpers warming up? */
static bool ps_compile_may_start(void)
{
	return admit_quiet_for() >= PRESTART_QUIET && warm_ups < sandboxd_settings->run_slots;
}

/* The child of the next step forked ahead into run group g (see above).
 * Best effort: without it, the next step forks as usual. */
static void ps_prefork(struct prestart *p, unsigned g)
{
	struct slot *s = p->slot;
	struct wp_error err = {0};
	int fds[8];
	char msg[16], cbuf[CMSG_SPACE(8 * sizeof(int))] = {0};
	struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	uint64_t tag = 0;
	int n = 0, rc;

	p->tag = 0;
	free(p->pre_path);
	p->pre_path = NULL;
	if (p->sock < 0 || s->lang->prestart_compile)
		return;
	memset(fds, -1, sizeof(fds));
	if (g > 1 || !s->cg_run[g])
		log_debug("slot %s: pre-started helper: no child ahead: no run group %u", s->id, g);
	else if (cgroup_open_join(s->cg_run[g], fds, &err) < 0)
		log_debug("slot %s: pre-started helper: no child ahead: %s", s->id, err.msg);
	while (n < 8 && fds[n] >= 0)
		n++;
	if (n > 0) {
		tag = ++p->tag_gen;
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)n * sizeof(int));
	}
	/* sent without fds too: a helper starting waits for this datagram */
	memcpy(msg, PRESTART_PREFORK_MAGIC, 8);
	memcpy(msg + 8, &tag, sizeof(tag));
	rc = sendmsg(p->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	int e = errno;
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (rc < 0) {
		log_debug("slot %s: pre-started helper: no child ahead: %s", s->id, strerror(e));
		return;
	}
	if (n == 0 || !(p->pre_path = strdup(cgroup_path(s->cg_run[g]))))
		return;
	p->tag = tag;
	p->pre_group = g;
}

static void ps_close_sock(struct prestart *p)
{
	if (p->sock >= 0) {
		ev_io_stop(EV_DEFAULT, &p->io);
		close(p->sock);
		p->sock = -1;
	}
	p->tag = 0; /* a child forked ahead dies with its helper */
	ev_timer_stop(EV_DEFAULT, &p->timer);
	ev_timer_stop(EV_DEFAULT, &p->ahead);
}

/* Stop the helper: its socket and timers, its slot's warm-up weight, and a
 * SIGKILL to its group. A compile helper (a JVM: it does not fork) takes
 * one signal, with nothing frozen or waited for in the loop; a run helper
 * forks, so its group is frozen and emptied (cgroup_kill_all, bounded). */
static void ps_stop(struct prestart *p)
{
	struct slot *s = p->slot;

	p->state = PS_DEAD;
	p->self = false;
	ps_set_warming(p, false);
	ps_close_sock(p);
	if (!s->cg_kernel)
		return;
	if (s->lang->prestart_compile)
		cgroup_signal_all(s->cg_kernel);
	else
		cgroup_kill_all(s->cg_kernel);
}

/* The helper is no use any more: stopped; a step in flight is run again the
 * usual way (run.c). */
static void ps_lost(struct prestart *p, const char *why)
{
	struct slot *s = p->slot;
	bool busy = p->state == PS_BUSY;

	if (p->state != PS_DEAD)
		log_info("slot %s: pre-started helper lost (%s)%s", s->id, why,
			 busy ? ": the step in flight is started again the usual way" : "");
	ps_stop(p);
	if (s->state == SLOT_CREATING)
		slot_created(s); /* usable without it */
	if (busy)
		run_helper_lost(s);
}

static int ps_spawn(struct prestart *p, struct wp_error *err);

static void ps_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct prestart *p = w->data;
	struct wp_error err = {0};

	if (p->state == PS_DEFERRED) {
		if (!ps_compile_may_start() || p->slot->run)
			return; /* it repeats */
		ev_timer_stop(loop, w);
		p->state = PS_DEAD;
		if (ps_spawn(p, &err) < 0)
			log_warn("slot %s: start the pre-started helper: %s", p->slot->id, err.msg);
		return;
	}
	ps_lost(p, p->state == PS_STARTING ? "not ready within 30 s" : "a step did not start within 2 s");
}

/* One JSON report from the helper (or its child). */
static void ps_report(struct prestart *p, const char *buf, size_t n)
{
	struct slot *s = p->slot;
	cleanup_json json_t *j = json_loadb(buf, n, 0, NULL);
	json_t *v;

	if (!json_is_object(j)) {
		ps_lost(p, "malformed report");
		return;
	}
	if (json_is_true(json_object_get(j, "warmed"))) {
		/* a compile helper's warm-up is done (sent before any step's
		 * report): it waits for its step, idle */
		if (p->warm_up)
			log_debug("slot %s: pre-started helper warmed up", s->id);
		ps_warm_up_over(p);
		return;
	}
	if (json_is_true(json_object_get(j, "ready")) && p->state == PS_STARTING) {
		ev_timer_stop(EV_DEFAULT, &p->timer);
		p->state = PS_READY;
		/* a helper started again for a run's compile comes up while
		 * that run's tests go on: the slot keeps its weight then */
		ps_set_warming(p, json_is_true(json_object_get(j, "warming")) && !s->run);
		log_debug("slot %s: pre-started helper ready%s", s->id, p->warming ? ", warming up" : "");
		if (s->state == SLOT_CREATING)
			slot_created(s); /* slot.c waited for this */
	} else if ((v = json_object_get(j, "started")) && p->state == PS_BUSY) {
		struct proto_started m = {.hdr.type = PROTO_STARTED, .pid = (int32_t)json_integer_value(v)};
		ev_timer_stop(EV_DEFAULT, &p->timer);
		p->self = json_is_true(json_object_get(j, "self"));
		run_on_message(s, &m, sizeof(m));
	} else if (p->self) {
		/* the helper is the step now: only init reports its end */
		ps_lost(p, "a report after it became the step");
	} else if ((v = json_object_get(j, "exited")) && p->state == PS_BUSY) {
		struct proto_exited m = {
		    .hdr.type = PROTO_EXITED,
		    .status = (int32_t)json_integer_value(json_object_get(j, "status")),
		    .maxrss_kb = json_integer_value(json_object_get(j, "maxrss_kb")),
		    .utime_us = json_integer_value(json_object_get(j, "utime_us")),
		    .stime_us = json_integer_value(json_object_get(j, "stime_us")),
		};
		ev_timer_stop(EV_DEFAULT, &p->timer);
		p->state = PS_READY;
		run_on_message(s, &m, sizeof(m));
	} else if (json_object_get(j, "failed")) {
		const char *where = json_string_value(json_object_get(j, "where"));
		log_warn("slot %s: pre-started helper: %s: %s", s->id, where ? where : "?",
			 strerror((int)json_integer_value(json_object_get(j, "failed"))));
		ps_lost(p, "a step failed to start");
	}
}

static void ps_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct prestart *p = w->data;
	char buf[4096];

	for (;;) {
		ssize_t n = recv(p->sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n == 0 && p->self) {
			ps_close_sock(p); /* it is the step: init reports its exit */
			return;
		}
		if (n <= 0) {
			ps_lost(p, n == 0 ? "it closed its socket" : strerror(errno));
			return;
		}
		ps_report(p, buf, (size_t)n);
		if (p->sock < 0)
			return;
	}
}

static void ps_ahead_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct prestart *p = w->data;
	struct slot *s = p->slot;

	if (p->state == PS_READY && !p->tag && !s->run && s->state != SLOT_DESTROYING)
		ps_prefork(p, s->next_group);
}

static struct prestart *ps_new(struct slot *s, struct wp_error *err)
{
	struct prestart *p = calloc(1, sizeof(*p));

	if (!p) {
		wp_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	p->slot = s;
	p->sock = -1;
	ev_init(&p->io, ps_io_cb);
	p->io.data = p;
	ev_init(&p->timer, ps_timer_cb);
	p->timer.data = p;
	ev_init(&p->ahead, ps_ahead_cb);
	p->ahead.data = p;
	return p;
}

static int ps_spawn(struct prestart *p, struct wp_error *err)
{
	struct slot *s = p->slot;
	cleanup_free char *msg = NULL;
	cleanup_close int memfd = -1, nul = -1;
	int sp[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
	struct limits hl = s->lang->limits;
	size_t len;
	int r;

	/* its rlimits are the most a step may ask for: a child can lower
	 * them to its step's, not raise them */
	hl.memory_kb = sandboxd_settings->max.memory_kb;
	hl.fsize_bytes = sandboxd_settings->max.fsize_bytes;
	if ((r = launch_message(s->lang, s->lang->prestart_argv, NULL, NULL, &hl, PROTO_GROUP_KERNEL, true, &msg,
				&len)) < 0)
		return wp_error_set(err, -r, "prestart command: %s", strerror(-r));
	memfd = memfd_create("prestart-stdin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (memfd < 0 || nul < 0 ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
	    pipe2(errp, O_CLOEXEC) < 0) {
		r = wp_error_errno(err, "prestart fds");
		goto out;
	}
	int fds[PROTO_MAX_FDS] = {memfd, out[1], errp[1], sp[1], nul};
	if ((r = slot_send(s, msg, len, fds, PROTO_MAX_FDS)) < 0) {
		wp_error_set(err, -r, "send to init: %s", strerror(-r));
		goto out;
	}
	p->sock = sp[0];
	sp[0] = -1;
	p->launched = true;
	p->state = PS_STARTING;
	p->starts++;
	/* a compile helper starts on CPU no run wants (see prestart_usable) */
	if (s->lang->prestart_compile && !s->run) {
		ps_set_warming(p, true);
		if (!p->warm_up) {
			p->warm_up = true;
			warm_ups++;
		}
	}
	ps_prefork(p, s->next_group); /* before it says ready (run helpers) */
	ev_io_set(&p->io, p->sock, EV_READ);
	ev_io_start(EV_DEFAULT, &p->io);
	ev_timer_set(&p->timer, PRESTART_START_TIMEOUT, 0);
	ev_timer_start(EV_DEFAULT, &p->timer);
	r = 0;
out:
	for (int i = 0; i < 2; i++) {
		cleanup_closep(&sp[i]);
		cleanup_closep(&out[i]);
		cleanup_closep(&errp[i]);
	}
	return r;
}

/* A compile helper costs its start (a JVM: ~0.08 s of CPU) and a warm-up,
 * and saves CPU only when the warm-up ran on CPU nothing else wanted: on a
 * node whose run slots are all busy (a contest burst) it starts later, once
 * they have not all been busy for PRESTART_QUIET; a compile that comes
 * first runs the usual way, which is cheaper than a cold server's. */
int prestart_start(struct slot *s, struct wp_error *err)
{
	if (!s->lang->prestart_argv || s->interpreter || !s->cg_kernel)
		return 0;
	if (!s->prestart && !(s->prestart = ps_new(s, err)))
		return -ENOMEM;
	if (s->lang->prestart_compile && !ps_compile_may_start()) {
		struct prestart *p = s->prestart;
		p->state = PS_DEFERRED;
		ev_timer_set(&p->timer, PRESTART_QUIET, PRESTART_QUIET);
		ev_timer_start(EV_DEFAULT, &p->timer);
		if (admit_quiet_for() < PRESTART_QUIET)
			log_debug("slot %s: every run slot is busy: its compile helper starts when they are not",
				  s->id);
		else
			log_debug("slot %s: %u compile helpers warm up (run_slots): its own starts after one of them",
				  s->id, warm_ups);
		return 0;
	}
	return ps_spawn(s->prestart, err);
}

bool prestart_usable(struct slot *s, bool compile)
{
	struct prestart *p = s->prestart;
	struct wp_error err = {0};

	if (!p || s->lang->prestart_compile != compile)
		return false;
	if (p->state == PS_DEFERRED) {
		log_debug("slot %s: the compile helper has not started (the node was busy, or other slots' warmed "
			  "up): the compile runs the usual way",
			  s->id);
		ev_timer_stop(EV_DEFAULT, &p->timer);
		p->state = PS_DEAD;
		return false;
	}
	if (compile && p->state == PS_STARTING) {
		/* A compile helper that is not ready yet is stopped, and the
		 * compile runs the usual way. It would do the compile cold,
		 * which costs what a plain compiler costs (javac: ~0.33 s of CPU
		 * either way), after its own start (~0.08 s): waiting for it
		 * only adds. So on a busy node (a contest burst), where it
		 * starts at the lowest weight and rarely gets there, every
		 * compile is plain; on an idle one it is ready, warm, long
		 * before a submission comes. */
		log_debug("slot %s: the compile helper was not ready: stopped; the compile runs the usual way", s->id);
		ps_stop(p);
		return false;
	}
	if (p->state == PS_DEAD && !p->launched && p->starts < PRESTART_MAX_STARTS && s->state != SLOT_DESTROYING) {
		if (ps_spawn(p, &err) < 0)
			log_warn("slot %s: restart the pre-started helper: %s", s->id, err.msg);
		else
			log_info("slot %s: pre-started helper restarted (start %u)", s->id, p->starts);
	}
	return p->state == PS_READY;
}

int prestart_send(struct slot *s, const void *msg, size_t len, const int fds[3], unsigned group, bool more)
{
	struct prestart *p = s->prestart;
	char cbuf[CMSG_SPACE(PRESTART_MAX_FDS * sizeof(int))] = {0};
	uint64_t tag = 0;
	struct iovec iov[2] = {{.iov_base = (void *)msg, .iov_len = len}, {.iov_base = &tag, .iov_len = sizeof(tag)}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2, .msg_control = cbuf};
	int all[PRESTART_MAX_FDS], n = 0;

	if (!p || p->state != PS_READY || group > 1)
		return -EAGAIN;
	ev_timer_stop(EV_DEFAULT, &p->ahead);
	/* the child forked ahead takes the step if it sits in this very group */
	if (s->lang->prestart_compile)
		mh.msg_iovlen = 1; /* a compile helper (a JVM) does steps itself: no tag */
	if (p->tag && p->pre_group == group && p->pre_path && strcmp(p->pre_path, cgroup_path(s->cg_run[group])) == 0)
		tag = p->tag;
	p->tag = 0;
	/* run.c makes a run group afresh for each run: hand over the group's
	 * cgroup.procs as it is now, opened for this step and closed once
	 * sent. sandboxd keeps no such fds per slot: every clone of a new
	 * slot's init copies sandboxd's fd table and init then closes it, so
	 * fds kept per slot made each creation cost more with the slots alive
	 * (13 fds per Python slot, 13 000 with 1 000 alive). */
	struct wp_error err = {0};
	int procs[8], rc;
	memset(procs, -1, sizeof(procs));
	/* a compile helper (a JVM, every thread) moves as a whole: cgroup.procs */
	if ((s->lang->prestart_compile ? cgroup_open_procs : cgroup_open_join)(s->cg_run[group], procs, &err) < 0) {
		log_warn("slot %s: pre-started helper: %s; the step runs the usual way", s->id, err.msg);
		return -EAGAIN;
	}
	for (int i = 0; i < 3; i++)
		all[n++] = fds[i];
	for (int i = 0; i < 8 && procs[i] >= 0; i++)
		all[n++] = procs[i];
	mh.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(c), all, (size_t)n * sizeof(int));
	ps_set_warming(p, false); /* the step has the slot's CPU */
	rc = sendmsg(p->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	int e = errno;
	for (int i = 0; i < 8 && procs[i] >= 0; i++)
		close(procs[i]);
	if (rc < 0) {
		ps_lost(p, strerror(e));
		return -e;
	}
	p->state = PS_BUSY;
	ev_timer_set(&p->timer, PRESTART_STEP_TIMEOUT, 0);
	ev_timer_start(EV_DEFAULT, &p->timer);
	/* run.c has flipped next_group and renewed it: the next step's group.
	 * Forked now only when this request has a step after this one: a
	 * fork beside the running step takes CPU from it (0.3-0.6 ms of a
	 * ~2 ms Python a+b test case on 2 cores), and a judged slot is destroyed
	 * after its one request, its last step's child never used. */
	if (more)
		ps_prefork(p, s->next_group);
	return 0;
}

void prestart_request_done(struct slot *s)
{
	struct prestart *p = s->prestart;

	if (p && p->sock >= 0 && !p->tag && !s->lang->prestart_compile) {
		ev_timer_set(&p->ahead, PRESTART_AHEAD_DELAY, 0);
		ev_timer_start(EV_DEFAULT, &p->ahead);
	}
}

void prestart_abandon(struct slot *s)
{
	if (s->prestart)
		ps_lost(s->prestart, "it did not report the step's end");
}

void prestart_on_message(struct slot *s, const void *msg, size_t len)
{
	struct prestart *p = s->prestart;
	const struct proto_hdr *h = msg;

	if (!p)
		return;
	if (h->type == PROTO_EXITED && p->self && p->state == PS_BUSY && len >= sizeof(struct proto_exited)) {
		/* the helper was the step: its exit is the step's; the next
		 * step gets a fresh helper (prestart_usable) */
		p->launched = false;
		p->state = PS_DEAD;
		p->self = false;
		ps_close_sock(p);
		log_debug("slot %s: pre-started helper did its step and exited", s->id);
		run_on_message(s, msg, len);
		return;
	}
	if (h->type == PROTO_EXITED || h->type == PROTO_FAILED) {
		p->launched = false;
		if (h->type == PROTO_FAILED && len >= sizeof(struct proto_failed))
			log_warn("slot %s: pre-started helper did not start: %.119s: %s", s->id,
				 ((const struct proto_failed *)msg)->where,
				 strerror(((const struct proto_failed *)msg)->err));
		ps_lost(p, h->type == PROTO_EXITED ? "it exited" : "it failed to start");
	}
}

void prestart_abort(struct slot *s)
{
	struct prestart *p = s->prestart;

	if (!p)
		return;
	p->state = PS_DEAD;
	p->starts = PRESTART_MAX_STARTS;
	ps_warm_up_over(p);
	ps_close_sock(p);
}

void prestart_free(struct prestart *p)
{
	if (!p)
		return;
	ps_warm_up_over(p);
	ps_close_sock(p);
	free(p->pre_path);
	free(p);
}
