#!/bin/sh
# make run: the embedded single-host default, in the foreground.
# sandboxd on /run/warmpool/sandboxd.sock (config/sandboxd.conf), then poold
# on http://127.0.0.1:8080 (config/poold.conf). Ctrl-C stops both; sandboxd
# removes its slots, mounts, cgroups and state dir on the way out, poold
# leaves nothing. If either daemon dies, the other is stopped too (exit 1).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "make run: sandboxd needs root (namespaces, cgroups, mounts); try: sudo make run" >&2
	exit 1
fi
sock=/run/warmpool/sandboxd.sock
sandboxd_pid=""
poold_pid=""
# Stops whichever daemon still runs. Not under set -e: a kill of a daemon
# that already exited fails, and must not skip stopping the other one.
# shellcheck disable=SC2317 # called from the traps below
stop() {
	rc=$1
	trap - INT TERM HUP EXIT
	set +e
	[ -n "$poold_pid" ] && kill -TERM "$poold_pid" 2>/dev/null
	[ -n "$poold_pid" ] && wait "$poold_pid" 2>/dev/null
	[ -n "$sandboxd_pid" ] && kill -TERM "$sandboxd_pid" 2>/dev/null
	[ -n "$sandboxd_pid" ] && wait "$sandboxd_pid" 2>/dev/null
	exit "$rc"
}
trap 'stop 0' INT TERM HUP
trap 'stop $?' EXIT
# Each daemon in a session of its own (setsid: no job control without a
# tty): Ctrl-C reaches this script only, which sends each daemon one
# SIGTERM. Had the terminal's SIGINT reached them too, that SIGTERM would be
# their second signal, on which they exit at once and sandboxd leaves its
# cgroups behind. (A background child of this shell is no group leader, so
# setsid execs the daemon itself and $! is the daemon.)
setsid bin/sandboxd --config config/sandboxd.conf &
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
setsid bin/poold --config config/poold.conf &
poold_pid=$!
echo "warmpool: poold on http://127.0.0.1:8080, sandboxd on $sock — Ctrl-C stops both" >&2
# return when either daemon exits
while kill -0 "$sandboxd_pid" 2>/dev/null && kill -0 "$poold_pid" 2>/dev/null; do
	sleep 0.5
done
echo "make run: a daemon exited; stopping the other" >&2
exit 1
