/* slot.h — a slot as sandboxd sees it: its init process, its cgroups, its
 * work dir, its state. Slots live in one list owned by this module; a slot is
 * freed only from the reaper (never inside one of its own callbacks). */
#ifndef SANDBOXD_SLOT_H
#define SANDBOXD_SLOT_H

#include <ev.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "language.h"
#include "settings.h"

enum slot_state { SLOT_CREATING, SLOT_READY, SLOT_BUSY, SLOT_DESTROYING };

struct cgroup;
struct cgroup_root;
struct kernel;
struct prestart;
struct run;
struct slot;

/* Called once when a slot being created becomes ready (err == NULL) or fails. */
typedef void (*slot_ready_fn)(struct slot *s, const struct wp_error *err, void *data);

struct slot {
	char id[17];
	struct language *lang; /* not owned */
	enum slot_state state;
	char *label;
	double created;
	double last_used;
	uint64_t runs;
	uint64_t execs;	  /* executions in the interpreter */
	bool interpreter; /* created with a stateful interpreter (kernel.c) */
	bool used;	  /* ever labelled, ran code, executed or had a file written */
	unsigned idx;	  /* uid = uid_base + idx */
	uid_t uid;

	pid_t init_pid;
	int ctl_fd;
	int data_fd;				 /* O_DIRECTORY on the work dir's tmpfs (/mnt/data in the slot) */
	char *dir;				 /* <state_dir>/slots/<id> */
	struct cgroup *cg, *cg_init, *cg_run[2]; /* runs alternate between two groups */
	struct cgroup *cg_kernel;		 /* the interpreter and what it starts; NULL without */
	unsigned next_group;
	bool run_used[2]; /* cg_run[g] held a run since it was made (run.c renews it) */
	unsigned run_gen; /* names renewed run groups: run<g>-<gen> */
	/* run.c: a fresh group made ahead, off a run's path, for cg_run[g]'s
	 * next renewal, or NULL (freed with cg, as cg_run) */
	struct cgroup *run_spare[2];
	bool run_stub_gone[2]; /* run.c: init keeps no stub waiting in cg_run[g] */

	ev_io ctl_watcher;
	ev_child child_watcher;
	ev_timer create_timer;
	bool init_reaped;

	slot_ready_fn on_ready; /* creation callback, cleared once called */
	void *on_ready_data;
	struct run *run;	   /* run in progress, owned by run.c */
	struct kernel *kernel;	   /* the interpreter, owned by kernel.c; NULL without */
	struct prestart *prestart; /* the pre-started helper, owned by prestart.c; NULL without */
	bool dead;		   /* init gone: no more runs */
	bool setup_pending;	   /* created, host-side set-up not done yet */

	struct slot *next;
};

/* Module set-up: the cgroup root (settings: sandboxd_settings; the loop:
 * libev's default, as every module of sandboxd). */
int slots_init(struct cgroup_root *cg, struct wp_error *err);
/* Begin creating a slot (non-blocking: the set-up runs in the child);
 * on_ready is called later. With `interpreter`, the language's interpreter
 * is started before the slot is ready (lang->interpreter_ok must hold).
 * -EAGAIN when at capacity. */
int slot_create(struct language *lang, const char *label, bool interpreter, slot_ready_fn on_ready, void *data,
		struct slot **out, struct wp_error *err);
/* From run.c and kernel.c: a run or an exec starts / ends (ready again
 * unless a destroy came meanwhile). Only slot.c writes a slot's state. */
void slot_busy(struct slot *s);
void slot_idle(struct slot *s);
/* From kernel.c: the interpreter of a slot being created is up (the slot is
 * ready), or could not be started (the slot fails and is destroyed). */
void slot_created(struct slot *s);
void slot_create_failed(struct slot *s, const char *why);
/* Kill everything and free asynchronously. Idempotent. */
void slot_destroy(struct slot *s);
struct slot *slot_find(const char *id);
struct slot *slot_first(void);
size_t slot_count(enum slot_state state);
size_t slot_total(void);
size_t slot_labelled(void);
const char *slot_state_name(enum slot_state st);
json_t *slot_to_json(const struct slot *s);
/* NULL clears. Labelling marks the slot used; clearing or changing the
 * label of a used slot is the caller's to refuse (see slot_fresh). */
int slot_set_label(struct slot *s, const char *label);
/* A slot that has served anyone (labelled, ran code, executed in its
 * interpreter, had a file written) is used for good: never fresh again,
 * never handed to another session; it can only be destroyed. */
void slot_mark_used(struct slot *s);
bool slot_fresh(const struct slot *s);
bool slot_label_valid(const char *label);
/* Send a message (with up to PROTO_MAX_FDS fds) to the slot's init. */
int slot_send(struct slot *s, const void *msg, size_t len, const int *fds, int nfds);
/* Destroy every slot; `done` is called once none remain. */
void slots_shutdown(void (*done)(void *data), void *data);

#endif
