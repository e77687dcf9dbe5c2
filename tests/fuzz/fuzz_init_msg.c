/* fuzz_init_msg.c — the messages over a slot's control socket
 * (sandboxd/proto.c). Byte 0 picks the direction:
 *  - even: a message from init, as sandboxd's slot_ctl_cb receives it
 *    (init is not trusted once the slot ran code): what the check accepts
 *    must be safe for run.c and kernel.c to use as they do (group indexes,
 *    rusage sums, `where` as a C string);
 *  - odd: a PROTO_RUN as init receives it: argv, envp and cwd inside the
 *    message.
 * The message sits in a buffer of its exact size (8-aligned, as both
 * receivers' buffers are), so a read past it is an ASan report. */
#include "fuzz.h"

#include "proto.h"

#include <stdlib.h>
#include <string.h>

static void from_init(const char *buf, size_t n)
{
	if (proto_init_msg_check(buf, n) < 0)
		return;
	const struct proto_hdr *h = (const void *)buf;
	int64_t sum;

	switch (h->type) {
	case PROTO_READY: break;
	case PROTO_STARTED: {
		const struct proto_started *m = (const void *)buf;
		assert(m->group >= PROTO_GROUP_NONE && m->group <= PROTO_GROUP_KERNEL && m->pid > 0);
		break;
	}
	case PROTO_EXITED: {
		const struct proto_exited *m = (const void *)buf;
		assert(m->group >= PROTO_GROUP_NONE && m->group <= PROTO_GROUP_KERNEL);
		/* run.c: rusage_cpu_us = utime_us + stime_us */
		assert(!__builtin_add_overflow(m->utime_us, m->stime_us, &sum) && sum >= 0);
		assert(m->maxrss_kb >= 0);
		break;
	}
	case PROTO_FAILED: {
		const struct proto_failed *m = (const void *)buf;
		assert(strlen(m->where) < sizeof(m->where));
		assert(m->err >= 0);
		break;
	}
	default: assert(!"an unknown type passed the check");
	}
}

static void to_init(char *buf, size_t n)
{
	char *argv[PROTO_MAX_ARGS + 1], *envp[PROTO_MAX_ARGS + 1];
	const char *cwd;
	size_t i;

	if (proto_run_parse(buf, n, argv, envp, &cwd) < 0)
		return;
	for (i = 0; argv[i]; i++)
		assert(argv[i] >= buf && argv[i] + strlen(argv[i]) < buf + n);
	assert(i >= 1 && i <= PROTO_MAX_ARGS);
	for (i = 0; envp[i]; i++)
		assert(envp[i] >= buf && envp[i] + strlen(envp[i]) < buf + n);
	assert(i <= PROTO_MAX_ARGS);
	assert(cwd >= buf && cwd + strlen(cwd) < buf + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;

	if (size < 1 || size - 1 > PROTO_MAX)
		return 0;
	buf = malloc(size - 1 ? size - 1 : 1); /* ASan's malloc: 8-aligned, exact size */
	assert(buf);
	memcpy(buf, data + 1, size - 1);
	if (data[0] % 2 == 0)
		from_init(buf, size - 1);
	else
		to_init(buf, size - 1);
	free(buf);
	return 0;
}
