#!/bin/sh
# Install the Debian packages warmpool builds, tests and runs with, when missing.
# Idempotent and quiet when everything is there (make test / make run call it).
# clang-14 and libclang-rt-14-dev: libFuzzer and the sanitizers for the fuzz
# targets (tests/fuzz/; libfuzzer-14-dev is not needed: clang's
# -fsanitize=fuzzer takes libFuzzer from libclang-rt-14-dev). jq: the tests
# run the jq examples of poolctl --help as written. python3-numpy, -pandas,
# -matplotlib: the python-ds pool (docs/packages.md).
set -eu
pkgs="build-essential pkg-config libev-dev libjansson-dev libcurl4-openssl-dev libseccomp-dev
libhttp-parser-dev libinih-dev libssl-dev libcmocka-dev python3 python3-pytest
nodejs openjdk-17-jdk-headless g++ iproute2 prometheus curl
python3-yaml shellcheck
clang-14 libclang-rt-14-dev jq
python3-numpy python3-pandas python3-matplotlib"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null 2>&1 || apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
