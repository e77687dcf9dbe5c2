#!/bin/sh
# make run: the embedded single-host default, in the foreground.
# sandboxd on /run/warmpool/sandboxd.sock (config/sandboxd.conf), then poold
# on http://127.0.0.1:8080 (config/poold.conf). Ctrl-C stops both; sandboxd
# removes its slots, mounts, cgroups and state dir on the way out, poold
# leaves nothing. If either daemon dies, the other is stopped too.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "make run: sandboxd needs root (namespaces, cgroups, mounts); try: sudo make run" >&2
	exit 1
fi
sock=/run/warmpool/sandboxd.sock
sandboxd_pid=""
poold_pid=""
stop() {
	trap - INT TERM EXIT
	[ -n "$poold_pid" ] && kill -TERM "$poold_pid" 2>/dev/null
	[ -n "$poold_pid" ] && wait "$poold_pid" 2>/dev/null
	[ -n "$sandboxd_pid" ] && kill -TERM "$sandboxd_pid" 2>/dev/null
	[ -n "$sandboxd_pid" ] && wait "$sandboxd_pid" 2>/dev/null
	exit 0
}
trap stop INT TERM EXIT
bin/sandboxd --config config/sandboxd.conf &
sandboxd_pid=$!
i=0
while [ ! -S "$sock" ]; do
	if ! kill -0 "$sandboxd_pid" 2>/dev/null; then
		echo "make run: sandboxd did not start (see its log above)" >&2
		exit 1
	fi
	[ $i -lt 100 ] || { echo "make run: no $sock after 10 s" >&2; exit 1; }
	sleep 0.1
	i=$((i + 1))
done
bin/poold --config config/poold.conf &
poold_pid=$!
echo "warmpool: poold on http://127.0.0.1:8080, sandboxd on $sock — Ctrl-C stops both" >&2
# return when either daemon exits
while kill -0 "$sandboxd_pid" 2>/dev/null && kill -0 "$poold_pid" 2>/dev/null; do
	sleep 0.5
done
echo "make run: a daemon exited; stopping the other" >&2
