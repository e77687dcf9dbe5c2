#!/bin/sh
# poold in a container: its config is /etc/warmpool/poold.conf (a ConfigMap)
# followed by every /etc/warmpool/auth/*.conf (the Secret with the [auth]
# token lines: SHA-256 digests, see docs/operations.md). The joined file is
# written to /run/warmpool (a tmpfs; the root filesystem stays read-only),
# then poold replaces this shell. Changing the Secret: restart the pod
# (no session is lost: poold rebuilds its lease table from the nodes).
set -eu
conf=${POOLD_CONFIG:-/etc/warmpool/poold.conf}
out=${POOLD_RUNTIME_CONFIG:-/run/warmpool/poold.conf}
umask 077
mkdir -p "$(dirname "$out")"
cat "$conf" >"$out"
for f in /etc/warmpool/auth/*.conf; do
	[ -f "$f" ] || continue
	printf '\n; from %s\n' "$f" >>"$out"
	cat "$f" >>"$out"
done
exec /usr/local/bin/poold --config "$out" "$@"
