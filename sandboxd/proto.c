/* proto.c — see proto.h: the checks on the messages between sandboxd and a
 * slot's init, in both directions. Pure functions on a buffer and its
 * length (tests/unit/test_proto.c, tests/fuzz/fuzz_init_msg.c). */
#include "proto.h"

#include <errno.h>
#include <string.h>

int proto_run_parse(char *buf, size_t len, char **argv, char **envp, const char **cwd)
{
	struct proto_run *m = (struct proto_run *)buf;
	char *p, *end = buf + len;

	if (len < sizeof(*m) || len > PROTO_MAX || m->hdr.type != PROTO_RUN || m->argc < 1 ||
	    m->argc > PROTO_MAX_ARGS || m->envc > PROTO_MAX_ARGS || m->strings_len != len - sizeof(*m) ||
	    m->strings_len == 0 || buf[len - 1] != '\0')
		return -EINVAL;
	p = m->strings;
	for (uint32_t i = 0; i < m->argc; i++, p += strlen(p) + 1) {
		if (p >= end)
			return -EINVAL;
		argv[i] = p;
	}
	argv[m->argc] = NULL;
	for (uint32_t i = 0; i < m->envc; i++, p += strlen(p) + 1) {
		if (p >= end)
			return -EINVAL;
		envp[i] = p;
	}
	envp[m->envc] = NULL;
	if (p >= end)
		return -EINVAL;
	*cwd = p;
	return 0;
}

static bool group_valid(int32_t g)
{
	return g >= PROTO_GROUP_NONE && g <= PROTO_GROUP_KERNEL;
}

int proto_init_msg_check(const void *buf, size_t len)
{
	struct proto_hdr h;

	if (len < sizeof(h))
		return -EINVAL;
	memcpy(&h, buf, sizeof(h));
	switch (h.type) {
	case PROTO_READY: return len == sizeof(h) ? 0 : -EINVAL;
	case PROTO_STARTED: {
		struct proto_started m;
		if (len != sizeof(m))
			return -EINVAL;
		memcpy(&m, buf, sizeof(m));
		return group_valid(m.group) && m.pid > 0 ? 0 : -EINVAL;
	}
	case PROTO_EXITED: {
		struct proto_exited m;
		if (len != sizeof(m))
			return -EINVAL;
		memcpy(&m, buf, sizeof(m));
		if (!group_valid(m.group) || m.maxrss_kb < 0)
			return -EINVAL;
		return m.utime_us >= 0 && m.utime_us <= PROTO_MAX_RUSAGE_US && m.stime_us >= 0 &&
			       m.stime_us <= PROTO_MAX_RUSAGE_US
			   ? 0
			   : -EINVAL;
	}
	case PROTO_FAILED: {
		struct proto_failed m;
		if (len != sizeof(m))
			return -EINVAL;
		memcpy(&m, buf, sizeof(m));
		return group_valid(m.group) && m.err >= 0 && m.err < 4096 && memchr(m.where, '\0', sizeof(m.where))
			   ? 0
			   : -EINVAL;
	}
	default: return -EINVAL;
	}
}
