/* proto.h — messages between sandboxd and a slot's init over their
 * SOCK_SEQPACKET pair: one message per datagram, fixed headers, strings
 * NUL-separated after the header. init is outside our trust once the slot
 * has run code (it shares the uid), so sandboxd validates every field. */
#ifndef SANDBOXD_PROTO_H
#define SANDBOXD_PROTO_H

#include <stdint.h>

#define PROTO_MAX 65536

enum proto_type {
	PROTO_READY = 1, /* init → sandboxd: the slot is set up and waits */
	PROTO_RUN,       /* sandboxd → init: fork and exec; fds: stdin, stdout, stderr */
	PROTO_STARTED,   /* init → sandboxd: the child exists (pid in the slot's ns) */
	PROTO_EXITED,    /* init → sandboxd: the child was reaped */
	PROTO_FAILED,    /* init → sandboxd: set-up or exec failed (errno + where) */
};

struct proto_hdr {
	uint32_t type;
};

struct proto_run {
	struct proto_hdr hdr;
	uint32_t group;       /* run cgroup 0 or 1 (they alternate, see slot_init.c) */
	uint32_t argc;
	uint32_t envc;
	uint64_t rlim_cpu_s;  /* RLIMIT_CPU soft; hard = soft + 1 */
	uint64_t rlim_fsize;
	uint64_t rlim_stack;
	uint64_t rlim_nofile;
	uint32_t strings_len; /* argv…, envp…, then cwd: all NUL-terminated */
	char strings[];
};

struct proto_started {
	struct proto_hdr hdr;
	int32_t pid;
};

struct proto_exited {
	struct proto_hdr hdr;
	int32_t status;    /* wait status */
	int64_t maxrss_kb; /* ru_maxrss of the child and what it reaped */
	int64_t utime_us;
	int64_t stime_us;
};

struct proto_failed {
	struct proto_hdr hdr;
	int32_t err;
	char where[120];
};

#endif
