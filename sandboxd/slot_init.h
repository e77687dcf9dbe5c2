/* slot_init.h — the code that runs inside a slot: set-up (as root, in the
 * new namespaces, right after clone) and then the slot's init (pid 1 of the
 * slot, as the slot's uid) that forks runs on sandboxd's request. */
#ifndef SANDBOXD_SLOT_INIT_H
#define SANDBOXD_SLOT_INIT_H

#include <stdint.h>
#include <sys/types.h>
#include "error.h"

struct slot_init_args {
	const char *slot_dir; /* <state_dir>/slots/<id>, holds root/ */
	uid_t uid;
	gid_t gid;
	uint64_t tmp_size;
	uint64_t shm_size;
	char *const *paths;    /* the language's extra read-only paths */
	const char *runtimes;  /* the runtimes' tmpfs copy (mounts_runtimes_copy), bound
				  read-only at /opt/warmpool, or NULL */
	const char *pch_dir;   /* the language's precompiled headers (pch.c), bound
				  read-only at /opt/warmpool-pch, or NULL */
	int ctl_fd;	       /* SOCK_SEQPACKET to sandboxd */
	int data_mnt_fd;       /* the work dir's tmpfs, a detached mount: attached at /mnt/data */
	int init_procs_fds[8]; /* cgroup.procs of the init group: we move ourselves in first */
	int procs_fds[3][8];   /* cgroup.procs of the two run groups and of the kernel
				  group (empty for a slot without interpreter), -1 terminated */
};

/* sandboxd's argv area (main.c): wiped in the slot so that /proc/1/cmdline
 * does not tell the program how sandboxd was started. */
extern char *slot_init_argv_area;
extern size_t slot_init_argv_len;

/* Never returns: exits 0 when sandboxd closes the control socket, 1 (after a
 * PROTO_FAILED message) when set-up fails. */
_Noreturn void slot_init_main(struct slot_init_args *a);

/* mounts.c: build the slot's root under slot_dir/root, pivot into it, mount
 * /proc. Must run as root in the new mount and pid namespaces. */
int mounts_setup_root(const struct slot_init_args *a, struct wp_error *err);
/* At start, in sandboxd's namespace: copy the runtimes dir `src` into a
 * read-only tmpfs at <state_dir>/runtimes (*out, malloc'd), which every
 * slot binds at /opt/warmpool. */
int mounts_runtimes_copy(const char *state_dir, const char *src, char **out, struct wp_error *err);

/* seccomp.c: load the slot's filter (inherited by everything it forks). */
int seccomp_setup(struct wp_error *err);

#endif
