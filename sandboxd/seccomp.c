/* seccomp.c — the slot's system call filter (libseccomp).
 *
 * A deny list over a default of "allow": the runtimes we host (CPython,
 * Node, the JVM, gcc) use a wide and changing set of calls, and what a slot
 * must not do is a short, stable list (docs/security.md). Each rule
 * says why. Calls answer an errno rather than killing, so a runtime that
 * probes a feature degrades instead of crashing; nothing here is a verdict.
 * Foreign ABIs (i386 int 0x80, x32) are killed by libseccomp's bad-arch
 * action, so no rule can be bypassed through another syscall table. */
#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "slot_init.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

struct deny {
	const char *name;
	int err;
	const char *why;
};

/* Plain denials: the whole call is refused. */
static const struct deny deny_list[] = {
    /* new namespaces would let it build a private world (user ns → root in it) */
    {"unshare", EPERM, "no new namespaces"},
    {"setns", EPERM, "no joining other namespaces"},
    /* clone3 hides its flags in a struct seccomp cannot read: ENOSYS makes
     * glibc fall back to clone(), whose flags we can check (Docker does this) */
    {"clone3", ENOSYS, "flags unreadable by seccomp; glibc falls back to clone"},
    /* the filesystem view is fixed at set-up */
    {"mount", EPERM, "no mounts"},
    {"umount2", EPERM, "no unmounts"},
    {"pivot_root", EPERM, "root is fixed"},
    {"chroot", EPERM, "root is fixed"},
    {"fsopen", EPERM, "new mount API"},
    {"fsconfig", EPERM, "new mount API"},
    {"fsmount", EPERM, "new mount API"},
    {"fspick", EPERM, "new mount API"},
    {"move_mount", EPERM, "new mount API"},
    {"open_tree", EPERM, "new mount API"},
    {"mount_setattr", EPERM, "new mount API"},
    /* reading or steering other processes */
    {"ptrace", EPERM, "no debugging of anything"},
    {"process_vm_readv", EPERM, "cross-process memory access"},
    {"process_vm_writev", EPERM, "cross-process memory access"},
    {"kcmp", EPERM, "probes other processes' kernel objects"},
    {"pidfd_getfd", EPERM, "steals another process's fds"},
    /* kernel attack surface with a long CVE history and no use in a judge */
    {"bpf", EPERM, "eBPF programs"},
    {"perf_event_open", EPERM, "perf: side channels, kernel surface"},
    {"io_uring_setup", EPERM, "io_uring bypasses seccomp for its operations"},
    {"io_uring_enter", EPERM, "io_uring"},
    {"io_uring_register", EPERM, "io_uring"},
    {"userfaultfd", EPERM, "used to widen kernel race windows"},
    {"keyctl", EPERM, "kernel keyrings are not namespaced"},
    {"add_key", EPERM, "kernel keyrings are not namespaced"},
    {"request_key", EPERM, "kernel keyrings are not namespaced"},
    {"open_by_handle_at", EPERM, "opens files by handle, past mount boundaries"},
    {"name_to_handle_at", EPERM, "pairs with open_by_handle_at"},
    /* the machine itself */
    {"reboot", EPERM, "host power"},
    {"kexec_load", EPERM, "replaces the kernel"},
    {"kexec_file_load", EPERM, "replaces the kernel"},
    {"init_module", EPERM, "kernel modules"},
    {"finit_module", EPERM, "kernel modules"},
    {"delete_module", EPERM, "kernel modules"},
    {"swapon", EPERM, "host swap"},
    {"swapoff", EPERM, "host swap"},
    {"acct", EPERM, "host process accounting"},
    {"quotactl", EPERM, "host quotas"},
    {"syslog", EPERM, "kernel log can leak addresses"},
    {"settimeofday", EPERM, "host clock"},
    {"clock_settime", EPERM, "host clock"},
    {"clock_adjtime", EPERM, "host clock"},
    {"adjtimex", EPERM, "host clock"},
    {"iopl", EPERM, "raw port I/O"},
    {"ioperm", EPERM, "raw port I/O"},
    {"lookup_dcookie", EPERM, "kernel internals"},
    {"vhangup", EPERM, "terminals"},
};

int seccomp_setup(struct wp_error *err)
{
	cleanup_seccomp scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	static const unsigned long clone_ns[] = {CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
						 CLONE_NEWIPC, CLONE_NEWUTS,  CLONE_NEWCGROUP, CLONE_NEWTIME};
	int r;

	if (!ctx)
		return wp_error_set(err, ENOMEM, "seccomp_init failed");
	/* i386 and x32 entry points are not in this filter's table: kill */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS)) < 0)
		return wp_error_set(err, -r, "seccomp bad-arch action: %s", strerror(-r));

	for (size_t i = 0; i < ARRAY_SIZE(deny_list); i++) {
		int nr = seccomp_syscall_resolve_name(deny_list[i].name);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(deny_list[i].err), nr, 0);
		if (r < 0)
			return wp_error_set(err, -r, "seccomp rule `%s`: %s", deny_list[i].name, strerror(-r));
	}
	/* clone() with any namespace flag: same reason as unshare. One rule per
	 * flag because a masked compare can only test "equal". */
	for (size_t i = 0; i < ARRAY_SIZE(clone_ns); i++) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns[i], clone_ns[i]));
		if (r < 0)
			return wp_error_set(err, -r, "seccomp rule clone: %s", strerror(-r));
	}
	/* Sockets: AF_UNIX only. The slot's network namespace is empty already;
	 * this also closes AF_NETLINK, AF_PACKET, AF_VSOCK, AF_ALG… kernel surface.
	 * socketpair is AF_UNIX by nature but checked the same way. */
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
	if (r == 0)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), 1,
				     SCMP_A0(SCMP_CMP_NE, AF_UNIX));
	if (r < 0)
		return wp_error_set(err, -r, "seccomp socket rules: %s", strerror(-r));

	if ((r = seccomp_load(ctx)) < 0)
		return wp_error_set(err, -r, "seccomp_load: %s", strerror(-r));
	return 0;
}
