/* proto.h — messages between sandboxd and a slot's init over their
 * SOCK_SEQPACKET pair: one message per datagram, fixed headers, strings
 * NUL-separated after the header. init is outside our trust once the slot
 * has run code (it shares the uid), so sandboxd validates every field. */
#ifndef SANDBOXD_PROTO_H
#define SANDBOXD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAX      65536
#define PROTO_MAX_FDS  5   /* a kernel start passes five: stdin, stdout, stderr, requests, replies */
#define PROTO_MAX_ARGS 256 /* argv and envp entries of a PROTO_RUN, each */
/* utime_us and stime_us of PROTO_EXITED: 100 years, so that their sum fits */
#define PROTO_MAX_RUSAGE_US (100ll * 365 * 24 * 3600 * 1000000)

/* Process groups of a slot, each its own cgroup under the slot's: judged runs
 * alternate between RUN0 and RUN1; KERNEL holds the slot's long-lived
 * interpreter (kernel.c) and whatever it starts. */
enum proto_group { PROTO_GROUP_NONE = -1, PROTO_GROUP_RUN0 = 0, PROTO_GROUP_RUN1 = 1, PROTO_GROUP_KERNEL = 2 };

enum proto_type {
	PROTO_READY = 1, /* init → sandboxd: the slot is set up and waits */
	PROTO_RUN,	 /* sandboxd → init: fork and exec; fds: stdin, stdout, stderr
			    (a kernel: also fds 3 and 4, its request and reply pipes) */
	PROTO_STARTED,	 /* init → sandboxd: the child exists (pid in the slot's ns) */
	PROTO_EXITED,	 /* init → sandboxd: the child was reaped */
	PROTO_FAILED,	 /* init → sandboxd: set-up or exec failed (errno + where) */
	PROTO_GROUP,	 /* sandboxd → init: run group 0 or 1 was made afresh (its
			    last run's tmpfs pages stay charged to the old one);
			    fds: the new group's cgroup.procs, one per hierarchy */
};

struct proto_hdr {
	uint32_t type;
};

struct proto_run {
	struct proto_hdr hdr;
	uint32_t group; /* enum proto_group: run cgroup 0 or 1 (they alternate, see
			   slot_init.c), or 2: the kernel */
	uint32_t argc;
	uint32_t envc;
	uint64_t rlim_cpu_s; /* RLIMIT_CPU soft; hard = soft + 1; RLIM_INFINITY: none */
	uint64_t rlim_fsize;
	uint64_t rlim_stack;
	uint64_t rlim_nofile;
	uint32_t strings_len; /* argv…, envp…, then cwd: all NUL-terminated */
	char strings[];
};

struct proto_new_group {
	struct proto_hdr hdr;
	uint32_t group; /* PROTO_GROUP_RUN0 or PROTO_GROUP_RUN1 */
};
/* STARTED, EXITED and FAILED say which group they are about (enum
 * proto_group; NONE for set-up and malformed requests). */
struct proto_started {
	struct proto_hdr hdr;
	int32_t group;
	int32_t pid;
};

struct proto_exited {
	struct proto_hdr hdr;
	int32_t group;
	int32_t status;	   /* wait status */
	int64_t maxrss_kb; /* ru_maxrss of the child and what it reaped */
	int64_t utime_us;
	int64_t stime_us;
};

struct proto_failed {
	struct proto_hdr hdr;
	int32_t group;
	int32_t err;
	char where[120];
};

/* Split a PROTO_RUN message of len bytes (init's side): argv (PROTO_MAX_ARGS
 * + 1 entries) and envp (the same) NULL-terminated, pointing into buf, and
 * the cwd. 0, or -EINVAL when any field or string runs off the message. */
int proto_run_parse(char *buf, size_t len, char **argv, char **envp, const char **cwd);

/* sandboxd's side: a message from init is one of READY, STARTED, EXITED or
 * FAILED, exactly the size of its struct, with a group in NONE..KERNEL, a
 * pid > 0, rusage fields in [0, PROTO_MAX_RUSAGE_US] (maxrss >= 0), an errno
 * in [0, 4096) and a NUL inside `where`. 0 or -EINVAL: anything else means
 * init misbehaves, and the slot is destroyed. */
int proto_init_msg_check(const void *buf, size_t len);

#endif
