#!/bin/sh
# sandboxd in a container: make sure it may write its cgroup subtree, then
# become sandboxd (PID 1: it gets SIGTERM and removes every slot itself).
#
# Docker and Kubernetes mount /sys/fs/cgroup read-only unless the container is
# privileged. sandboxd creates a group per slot and per run there, so with
# CAP_SYS_ADMIN (and no AppArmor profile forbidding mount) the mount is made
# writable; with a private cgroup namespace that is the container's own
# subtree only, never the host's.
set -eu
cg=/sys/fs/cgroup
if [ -f "$cg/cgroup.controllers" ]; then
	probe=$cg        # cgroup v2: one hierarchy
else
	probe=$cg/memory # cgroup v1: the memory hierarchy stands for the others
fi
writable() {
	mkdir "$probe/.warmpool-probe.$$" 2>/dev/null && rmdir "$probe/.warmpool-probe.$$"
}
if ! writable; then
	for m in "$cg" "$cg"/*; do
		if mountpoint -q "$m"; then
			mount -o remount,rw "$m" 2>/dev/null || true
		fi
	done
fi
if ! writable; then
	echo "sandboxd-entrypoint: $probe is read-only; run the container with --privileged, or with" \
		"CAP_SYS_ADMIN, --security-opt apparmor=unconfined and --cgroupns private (docs/operations.md)" >&2
	exit 1
fi
mkdir -p /run/warmpool
exec /usr/local/bin/sandboxd "$@"
