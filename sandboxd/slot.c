/* slot.c — creating and destroying slots, and routing what their init says.
 *
 * Creation never blocks the loop for long: sandboxd does the few host-side
 * steps (cgroups, the work dir's tmpfs, a socketpair) and clone()s; the
 * child builds the slot's root and drops privileges on its own time, then
 * says PROTO_READY. Destruction is the reverse: SIGKILL init (the kernel then
 * kills the whole pid namespace), wait for libev to reap it, remove the
 * cgroups, unmount the work dir, free the uid. Nothing is freed inside one of
 * the slot's own callbacks: a slot to free is marked and collected by the
 * ev_prepare reaper.
 *
 * A slot created with an interpreter has a fourth group, "kernel", limited
 * like one run of its language ([limits] memory and pids), where kernel.c
 * starts the interpreter once init is ready; the slot is ready when the
 * interpreter is. Messages from init about that group go to kernel.c, the
 * others to the run in progress. */
#include "slot.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup.h"
#include "cleanup.h"
#include "kernel.h"
#include "log.h"
#include "prestart.h"
#include "proto.h"
#include "run.h"
#include "slot_init.h"

#define SLOT_CREATE_TIMEOUT 30.0

static struct cgroup_root *cgroot;
static struct slot *slots;
static bool *uid_used;
static ev_prepare reaper;
static void (*shutdown_done)(void *);
static void *shutdown_data;
static bool warned_limits;
static ev_idle setup_idle;
static size_t n_setup_pending;

static void slot_reap_cb(struct ev_loop *l, ev_prepare *w, int revents);
static void setup_cb(struct ev_loop *l, ev_idle *w, int revents);

int slots_init(struct cgroup_root *cg, struct wp_error *err)
{
	char path[4096];

	cgroot = cg;
	uid_used = calloc(sandboxd_settings->capacity, sizeof(*uid_used));
	if (!uid_used)
		return wp_error_set(err, ENOMEM, "out of memory");
	snprintf(path, sizeof(path), "%s/slots", sandboxd_settings->state_dir);
	if (mkdir(path, 0711) < 0 && errno != EEXIST)
		return wp_error_errno(err, "mkdir `%s`", path);
	ev_idle_init(&setup_idle, setup_cb);
	ev_set_priority(&setup_idle, EV_MAXPRI); /* one set-up per iteration even when busy */
	ev_prepare_init(&reaper, slot_reap_cb);
	ev_prepare_start(EV_DEFAULT, &reaper);
	ev_unref(EV_DEFAULT); /* the reaper alone does not keep the loop alive */
	return 0;
}

const char *slot_state_name(enum slot_state st)
{
	static const char *const names[] = {"creating", "ready", "busy", "destroying"};
	return names[st];
}

struct slot *slot_find(const char *id)
{
	for (struct slot *s = slots; s; s = s->next)
		if (strcmp(s->id, id) == 0)
			return s;
	return NULL;
}

struct slot *slot_first(void)
{
	return slots;
}

size_t slot_count(enum slot_state state)
{
	size_t n = 0;
	for (struct slot *s = slots; s; s = s->next)
		n += s->state == state;
	return n;
}

size_t slot_total(void)
{
	size_t n = 0;
	for (struct slot *s = slots; s; s = s->next)
		n++;
	return n;
}

size_t slot_labelled(void)
{
	size_t n = 0;
	for (struct slot *s = slots; s; s = s->next)
		n += s->label != NULL && s->state != SLOT_DESTROYING;
	return n;
}

bool slot_label_valid(const char *label)
{
	size_t n = strlen(label);
	if (n < 1 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)label[i] < 0x21 || (unsigned char)label[i] > 0x7e)
			return false;
	return true;
}

int slot_set_label(struct slot *s, const char *label)
{
	char *n = NULL;
	if (label && !(n = strdup(label)))
		return -ENOMEM;
	free(s->label);
	s->label = n;
	if (n)
		s->used = true;
	return 0;
}

void slot_mark_used(struct slot *s)
{
	s->used = true;
}

bool slot_fresh(const struct slot *s)
{
	return !s->used && !s->label && s->runs == 0 && s->execs == 0;
}

json_t *slot_to_json(const struct slot *s)
{
	return json_pack("{s:s, s:s, s:s, s:s?, s:f, s:f, s:I, s:I, s:b, s:I, s:b}", "id", s->id, "language",
			 s->lang->name, "state", slot_state_name(s->state), "label", s->label, "created", s->created,
			 "last_used", s->last_used, "runs", (json_int_t)s->runs, "uid", (json_int_t)s->uid,
			 "interpreter", s->interpreter, "execs", (json_int_t)s->execs, "fresh", slot_fresh(s));
}

int slot_send(struct slot *s, const void *msg, size_t len, const int *fds, int nfds)
{
	char cbuf[CMSG_SPACE(PROTO_MAX_FDS * sizeof(int))] = {0};
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (s->ctl_fd < 0)
		return -EPIPE;
	if (nfds > PROTO_MAX_FDS)
		return -EINVAL;
	if (nfds > 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	if (sendmsg(s->ctl_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		return -errno;
	return 0;
}

static void slot_report_ready(struct slot *s, const struct wp_error *err)
{
	slot_ready_fn fn = s->on_ready;
	if (!fn)
		return;
	s->on_ready = NULL;
	fn(s, err, s->on_ready_data);
}

static void slot_fail(struct slot *s, const char *why, const char *detail)
{
	struct wp_error err = {.code = EIO};
	snprintf(err.msg, sizeof(err.msg), "%s%s", why, detail);
	log_error("slot %s (%s): %s", s->id, s->lang->name, err.msg);
	slot_report_ready(s, &err);
	slot_destroy(s);
}

void slot_create_failed(struct slot *s, const char *why)
{
	slot_fail(s, why, "");
}

/* A run or an interpreter exec holds the slot: it is busy until it ends,
 * then ready again unless a destroy came meanwhile. A slot's state changes
 * only here (creation, these two, destruction). */
void slot_busy(struct slot *s)
{
	s->state = SLOT_BUSY;
}

void slot_idle(struct slot *s)
{
	if (s->state == SLOT_BUSY)
		s->state = SLOT_READY;
}

void slot_created(struct slot *s)
{
	ev_timer_stop(EV_DEFAULT, &s->create_timer);
	s->state = SLOT_READY;
	log_info("slot %s ready (%s%s, uid %u, %.0f ms)", s->id, s->lang->name, s->interpreter ? " interpreter" : "",
		 (unsigned)s->uid, (ev_now(EV_DEFAULT) - s->created) * 1000);
	slot_report_ready(s, NULL);
}

/* The group a message from init is about (PROTO_GROUP_NONE when it names none). */
static int msg_group(const char *buf, size_t n)
{
	const struct proto_hdr *h = (const void *)buf;
	switch (h->type) {
	case PROTO_STARTED:
		return n >= sizeof(struct proto_started) ? ((const struct proto_started *)buf)->group
							 : PROTO_GROUP_NONE;
	case PROTO_EXITED:
		return n >= sizeof(struct proto_exited) ? ((const struct proto_exited *)buf)->group : PROTO_GROUP_NONE;
	case PROTO_FAILED:
		return n >= sizeof(struct proto_failed) ? ((const struct proto_failed *)buf)->group : PROTO_GROUP_NONE;
	default: return PROTO_GROUP_NONE;
	}
}

static void slot_ctl_cb(struct ev_loop *l, ev_io *w, int revents)
{
	struct slot *s = w->data;
	_Alignas(8) char buf[PROTO_MAX];
	ssize_t n = recv(s->ctl_fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* init is not trusted once the slot ran code: a malformed message ends the slot */
	if (n <= 0 || proto_init_msg_check(buf, (size_t)n) < 0) {
		char detail[80];
		snprintf(detail, sizeof(detail), " (%s)",
			 n < 0	  ? strerror(errno)
			 : n == 0 ? "end of file"
				  : "malformed message");
		ev_io_stop(l, w);
		s->dead = true;
		if (s->state == SLOT_CREATING)
			slot_fail(s, "init closed its control socket during set-up", detail);
		else if (s->state != SLOT_DESTROYING) {
			log_warn("slot %s: init went away%s", s->id, detail);
			slot_destroy(s);
		}
		return;
	}
	const struct proto_hdr *h = (const void *)buf;
	if (msg_group(buf, (size_t)n) == PROTO_GROUP_KERNEL) {
		if (s->kernel)
			kernel_on_message(s, buf, (size_t)n);
		else if (s->prestart)
			prestart_on_message(s, buf, (size_t)n);
		return;
	}
	if (s->state == SLOT_CREATING) {
		if (h->type == PROTO_READY && s->interpreter) {
			struct wp_error err = {0};
			if (kernel_start(s, &err) < 0)
				slot_fail(s, "start the interpreter: ", err.msg);
		} else if (h->type == PROTO_READY) {
			/* a slot with a run helper (a fork-server: it serves every
			 * test case) is ready when the helper is (or is lost: runs
			 * then go the usual way), so that a pool's ready slots are
			 * warm all through. A compile helper (a JVM with javac) is
			 * not waited for: it starts at the lowest CPU weight and a
			 * compile that comes first runs the usual way (prestart.c) */
			struct wp_error err = {0};
			int r = prestart_start(s, &err);
			if (r < 0)
				log_warn("slot %s: start the pre-started helper: %s", s->id, err.msg);
			if (r < 0 || !s->prestart || s->lang->prestart_compile)
				slot_created(s);
		} else if (h->type == PROTO_FAILED && (size_t)n >= sizeof(struct proto_failed)) {
			const struct proto_failed *f = (const void *)buf;
			char detail[200];
			snprintf(detail, sizeof(detail), "%.119s: %s", f->where, strerror(f->err));
			slot_fail(s, "set-up failed: ", detail);
		}
		return;
	}
	if (s->run)
		run_on_message(s, buf, (size_t)n);
}

static void slot_child_cb(struct ev_loop *l, ev_child *w, int revents)
{
	struct slot *s = w->data;
	ev_child_stop(l, w);
	s->init_reaped = true;
	s->dead = true;
	if (s->state == SLOT_CREATING) {
		char detail[64];
		snprintf(detail, sizeof(detail), "status 0x%x", w->rstatus);
		slot_fail(s, "init died during set-up: ", detail);
	} else if (s->state != SLOT_DESTROYING) {
		log_warn("slot %s: init exited (status 0x%x)", s->id, w->rstatus);
		slot_destroy(s);
	}
}

static void slot_create_timeout_cb(struct ev_loop *l, ev_timer *w, int revents)
{
	slot_fail(w->data, "set-up took longer than 30 s", "");
}

static void rand_id(char out[17])
{
	unsigned char b[8];
	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)random();
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Host-side part of the work dir: a tmpfs owned by the slot's uid, made as a
 * detached mount (fsopen/fsmount) that init attaches at /mnt/data in the
 * slot's own mount namespace. It is never attached in sandboxd's namespace:
 * every clone(CLONE_NEWNS) copies sandboxd's mount table, and with one work
 * dir mount per slot there, the Nth slot's set-up copied (and its pivot_root
 * then detached) N mounts: creation slowed down quadratically with the slots
 * alive (2.5 ms per slot with 64 slots alive, 18 ms with 1 000). sandboxd
 * keeps a directory fd on the tmpfs (files.c); it goes when that fd closes
 * and the slot's namespace is gone. *mnt_fd gets the mount's fd, for init. */
static int slot_make_dirs(struct slot *s, int *mnt_fd, struct wp_error *err)
{
	char path[4096], val[32];

	if (asprintf(&s->dir, "%s/slots/%s", sandboxd_settings->state_dir, s->id) < 0)
		return wp_error_set(err, ENOMEM, "out of memory");
	if (mkdir(s->dir, 0700) < 0)
		return wp_error_errno(err, "mkdir `%s`", s->dir);
	snprintf(path, sizeof(path), "%s/root", s->dir);
	if (mkdir(path, 0755) < 0)
		return wp_error_errno(err, "mkdir `%s`", path);
	cleanup_close int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return wp_error_errno(err, "fsopen tmpfs for the work dir");
	snprintf(val, sizeof(val), "%llu", (unsigned long long)sandboxd_settings->data_size);
	if (fsconfig(fs, FSCONFIG_SET_STRING, "size", val, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0)
		return wp_error_errno(err, "configure the work dir's tmpfs");
	snprintf(val, sizeof(val), "%u", (unsigned)s->uid);
	if (fsconfig(fs, FSCONFIG_SET_STRING, "uid", val, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "gid", val, 0) < 0)
		return wp_error_errno(err, "configure the work dir's tmpfs owner");
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return wp_error_errno(err, "create the work dir's tmpfs");
	*mnt_fd = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
	if (*mnt_fd < 0)
		return wp_error_errno(err, "fsmount the work dir");
	s->data_fd = openat(*mnt_fd, ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->data_fd < 0)
		return wp_error_errno(err, "open the work dir");
	return 0;
}

static int slot_make_cgroups(struct slot *s, struct wp_error *err)
{
	char name[32];
	int r;

	snprintf(name, sizeof(name), "slot-%s", s->id);
	if ((r = cgroup_create(cgroot, NULL, name, &s->cg, err)) < 0)
		return r;
	r = cgroup_set_memory(s->cg, sandboxd_settings->slot_memory, err);
	if (r == 0)
		r = cgroup_set_pids(s->cg, sandboxd_settings->slot_pids, err);
	if (r == -EOPNOTSUPP) {
		if (!warned_limits)
			log_warn("cgroup controllers missing (%s): slot limits not enforced",
				 cgroup_root_controllers(cgroot));
		warned_limits = true;
	} else if (r < 0) {
		return r;
	}
	if ((r = cgroup_create(cgroot, s->cg, "init", &s->cg_init, err)) < 0 ||
	    (r = cgroup_create(cgroot, s->cg, "run0", &s->cg_run[0], err)) < 0 ||
	    (r = cgroup_create(cgroot, s->cg, "run1", &s->cg_run[1], err)) < 0)
		return r;
	if (!s->interpreter && !s->lang->prestart_argv)
		return 0;
	/* the interpreter and its background processes, or the pre-started
	 * helper (prestart.c): bounded like one run */
	if ((r = cgroup_create(cgroot, s->cg, "kernel", &s->cg_kernel, err)) < 0)
		return r;
	r = cgroup_set_memory(s->cg_kernel, s->lang->limits.memory_kb * 1024, err);
	if (r == 0)
		r = cgroup_set_pids(s->cg_kernel, s->lang->limits.pids, err);
	return r == -EOPNOTSUPP ? 0 : r;
}

static void close_procs(int procs[3][8])
{
	for (int g = 0; g < 3; g++)
		for (int i = 0; i < 8 && procs[g][i] >= 0; i++)
			close(procs[g][i]);
}

int slot_create(struct language *lang, const char *label, bool interpreter, slot_ready_fn on_ready, void *data,
		struct slot **out, struct wp_error *err)
{
	struct slot *s;
	unsigned idx;

	for (idx = 0; idx < sandboxd_settings->capacity && uid_used[idx]; idx++)
		;
	if (idx == sandboxd_settings->capacity)
		return wp_error_set(err, EAGAIN, "at capacity (%llu slots)",
				    (unsigned long long)sandboxd_settings->capacity);
	if (!(s = calloc(1, sizeof(*s))))
		return wp_error_set(err, ENOMEM, "out of memory");
	if (label && slot_set_label(s, label) < 0) {
		free(s);
		return wp_error_set(err, ENOMEM, "out of memory");
	}
	uid_used[idx] = true;
	s->idx = idx;
	s->uid = (uid_t)(sandboxd_settings->uid_base + idx);
	s->lang = lang;
	s->interpreter = interpreter;
	s->state = SLOT_CREATING;
	s->ctl_fd = s->data_fd = -1;
	s->init_pid = -1;
	s->created = s->last_used = ev_now(EV_DEFAULT);
	s->on_ready = on_ready;
	s->on_ready_data = data;
	rand_id(s->id);
	s->next = slots;
	slots = s;
	/* the set-up proper waits its turn: see setup_cb */
	s->setup_pending = true;
	n_setup_pending++;
	if (!ev_is_active(&setup_idle))
		ev_idle_start(EV_DEFAULT, &setup_idle);
	if (out)
		*out = s;
	return 0;
}

/* One slot's host-side set-up and clone: a few ms of system calls (cgroup
 * directories, a tmpfs, a clone into new namespaces). Run one per loop
 * iteration from a top-priority idle watcher, so that a batch of 64 creates
 * never holds up the requests and runs of other slots for more than one
 * slot's worth. */
static int slot_setup(struct slot *s, struct wp_error *err)
{
	int ctl[2] = {-1, -1}, init_procs[8] = {-1}, procs[3][8] = {{-1}, {-1}, {-1}};
	cleanup_close int data_mnt = -1;
	pid_t pid;
	int r;

	if ((r = slot_make_dirs(s, &data_mnt, err)) < 0 || (r = slot_make_cgroups(s, err)) < 0 ||
	    (r = cgroup_open_join(s->cg_init, init_procs, err)) < 0 ||
	    (r = cgroup_open_join(s->cg_run[0], procs[0], err)) < 0 ||
	    (r = cgroup_open_join(s->cg_run[1], procs[1], err)) < 0 ||
	    (s->cg_kernel && (r = cgroup_open_join(s->cg_kernel, procs[2], err)) < 0))
		goto fail;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
		r = wp_error_errno(err, "socketpair");
		goto fail;
	}

	struct slot_init_args a = {
	    .slot_dir = s->dir,
	    .uid = s->uid,
	    .gid = s->uid,
	    .tmp_size = sandboxd_settings->tmp_size,
	    .shm_size = sandboxd_settings->shm_size,
	    .paths = s->lang->paths,
	    .runtimes = sandboxd_settings->runtimes_copy,
	    .pch_dir = s->lang->pch_dir,
	    .ctl_fd = ctl[1],
	    .data_mnt_fd = data_mnt,
	};
	memcpy(a.procs_fds, procs, sizeof(procs));
	memcpy(a.init_procs_fds, init_procs, sizeof(init_procs));
	/* Only the pid namespace is made here (init must be its pid 1); the
	 * child unshares the others itself (slot_init.c) before anything else,
	 * so that their cost (a network namespace with its loopback device,
	 * a copy of the mount table) runs beside the loop, not in it. */
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0);
	if (pid < 0) {
		r = wp_error_errno(err, "clone");
		goto fail;
	}
	if (pid == 0) {
		close(ctl[0]);
		slot_init_main(&a);
	}
	s->init_pid = pid;
	close(ctl[1]);
	close_procs(procs);
	for (int i = 0; i < 8 && init_procs[i] >= 0; i++)
		close(init_procs[i]);
	s->ctl_fd = ctl[0];
	ev_child_init(&s->child_watcher, slot_child_cb, pid, 0);
	s->child_watcher.data = s;
	ev_child_start(EV_DEFAULT, &s->child_watcher);
	ev_io_init(&s->ctl_watcher, slot_ctl_cb, s->ctl_fd, EV_READ);
	s->ctl_watcher.data = s;
	ev_io_start(EV_DEFAULT, &s->ctl_watcher);
	ev_timer_init(&s->create_timer, slot_create_timeout_cb, SLOT_CREATE_TIMEOUT, 0);
	s->create_timer.data = s;
	ev_timer_start(EV_DEFAULT, &s->create_timer);

	log_debug("slot %s creating (%s, uid %u, init pid %d)", s->id, s->lang->name, (unsigned)s->uid, (int)pid);
	return 0;

fail:
	for (int i = 0; i < 2; i++)
		cleanup_closep(&ctl[i]);
	for (int i = 0; i < 8 && init_procs[i] >= 0; i++)
		close(init_procs[i]);
	close_procs(procs);
	return r;
}

static void setup_cb(struct ev_loop *l, ev_idle *w, int revents)
{
	struct slot *s, *oldest = NULL;
	struct wp_error err = {0};

	/* the oldest pending first: slots are pushed at the list's head */
	for (s = slots; s; s = s->next)
		if (s->setup_pending)
			oldest = s;
	if (!oldest) {
		n_setup_pending = 0;
		ev_idle_stop(l, w);
		return;
	}
	oldest->setup_pending = false;
	if (--n_setup_pending == 0)
		ev_idle_stop(l, w);
	if (oldest->state != SLOT_CREATING)
		return; /* destroyed while it waited */
	if (slot_setup(oldest, &err) < 0)
		slot_fail(oldest, "set-up failed: ", err.msg);
}

void slot_destroy(struct slot *s)
{
	if (s->state == SLOT_DESTROYING)
		return;
	log_debug("slot %s destroying", s->id);
	s->state = SLOT_DESTROYING;
	if (s->on_ready) {
		struct wp_error e = {.code = ECANCELED};
		snprintf(e.msg, sizeof(e.msg), "slot destroyed during set-up");
		slot_report_ready(s, &e);
	}
	if (s->run)
		run_abort(s, 410, "SlotDestroyed", "the slot was destroyed during the run");
	if (s->kernel)
		kernel_abort(s);
	prestart_abort(s);
	ev_timer_stop(EV_DEFAULT, &s->create_timer);
	if (s->ctl_fd >= 0) {
		ev_io_stop(EV_DEFAULT, &s->ctl_watcher);
		close(s->ctl_fd);
		s->ctl_fd = -1;
	}
	/* init dies, and with it the whole pid namespace: the kernel kills
	 * every process in it and init is reaped only once they are all gone
	 * (slot_finish then removes the groups). One SIGKILL to whatever else
	 * the groups hold, but no wait here: freezing a dying slot and waiting
	 * for it to empty took ~11 ms per slot, with the loop asleep and every
	 * other run's events waiting behind it. */
	if (s->init_pid > 0 && !s->init_reaped)
		kill(s->init_pid, SIGKILL);
	if (s->cg)
		cgroup_signal_all(s->cg);
}

/* The last steps, once init is reaped. Returns true when s can be freed. */
static bool slot_finish(struct slot *s)
{
	struct wp_error err = {0};
	char path[4096];

	if (s->init_pid > 0 && !s->init_reaped)
		return false;
	if (s->cg) {
		if (cgroup_destroy(s->cg, &err) < 0)
			log_error("slot %s: %s", s->id, err.msg);
		s->cg = s->cg_init = s->cg_run[0] = s->cg_run[1] = s->cg_kernel = NULL; /* freed with their parent */
	}
	if (s->data_fd >= 0)
		close(s->data_fd);
	if (s->dir) {
		snprintf(path, sizeof(path), "%s/root", s->dir);
		rmdir(path);
		if (rmdir(s->dir) < 0 && errno != ENOENT)
			log_error("slot %s: rmdir `%s`: %m", s->id, s->dir);
	}
	uid_used[s->idx] = false;
	log_info("slot %s destroyed (%s, %llu runs)", s->id, s->lang->name, (unsigned long long)s->runs);
	return true;
}

static void slot_reap_cb(struct ev_loop *l, ev_prepare *w, int revents)
{
	for (struct slot **pp = &slots; *pp;) {
		struct slot *s = *pp;
		if (s->state != SLOT_DESTROYING || s->run || !slot_finish(s)) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		ev_child_stop(l, &s->child_watcher);
		kernel_free(s->kernel);
		prestart_free(s->prestart);
		free(s->label);
		free(s->dir);
		free(s);
	}
	if (!slots && shutdown_done) {
		void (*fn)(void *) = shutdown_done;
		shutdown_done = NULL;
		fn(shutdown_data);
	}
}

void slots_shutdown(void (*done)(void *data), void *data)
{
	shutdown_done = done;
	shutdown_data = data;
	for (struct slot *s = slots; s; s = s->next)
		slot_destroy(s);
	/* the reaper runs before the loop next sleeps */
	ev_ref(EV_DEFAULT);
	ev_prepare_stop(EV_DEFAULT, &reaper);
	ev_prepare_start(EV_DEFAULT, &reaper);
}
