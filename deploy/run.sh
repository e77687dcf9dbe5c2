#!/bin/sh
# make run: the embedded single-host default, in the foreground.
# Starts sandboxd on its unix socket with config/sandboxd.conf (and poold on
# http://127.0.0.1:8080 once bin/poold exists). Ctrl-C stops everything;
# sandboxd removes its slots, mounts, cgroups and state dir on the way out.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "make run: sandboxd needs root (namespaces, cgroups, mounts); try: sudo make run" >&2
	exit 1
fi
pids=""
stop() {
	trap - INT TERM EXIT
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap stop INT TERM EXIT
bin/sandboxd --config config/sandboxd.conf &
pids="$!"
if [ -x bin/poold ]; then
	i=0
	while [ ! -S /run/warmpool/sandboxd.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	bin/poold --config config/poold.conf &
	pids="$pids $!"
	echo "warmpool: poold on http://127.0.0.1:8080, sandboxd on /run/warmpool/sandboxd.sock (Ctrl-C stops)" >&2
else
	echo "warmpool: sandboxd on /run/warmpool/sandboxd.sock (Ctrl-C stops); poold is not built yet" >&2
fi
wait
