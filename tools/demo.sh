#!/bin/bash
# Quick start: installs missing build dependencies (as root), builds, creates
# a demo certificate, starts the bundled echo backend and sluice on
# config/sluice.yaml, and sends frames through them. Then it keeps both
# running (Ctrl-C stops them) when run from a terminal, or stops them when
# given --once or run without one.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh

once=0
[ "${1:-}" = "--once" ] && once=1
[ -t 0 ] || once=1

sluice_install_deps
sluice_build
sh config/gen-demo-cert.sh

mkdir -p run
pids=""
cleanup() {
	# shellcheck disable=SC2086
	[ -n "$pids" ] && kill -TERM $pids 2>/dev/null && wait 2>/dev/null
	pids=""
}
trap cleanup EXIT INT TERM

for port in 9000 8443; do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "port $port on 127.0.0.1 is already in use: stop what runs there first" >&2
		exit 1
	fi
done 2>/dev/null

echo "==> starting sluice-echo on 127.0.0.1:9000 (log: run/echo.log)"
./tools/sluice-echo -p 9000 >run/echo.log 2>&1 &
pids="$!"
echo "==> starting sluice -c config/sluice.yaml on 127.0.0.1:8443 (log: run/sluice.log)"
./proxy/sluice -c config/sluice.yaml >run/sluice.log 2>&1 &
pids="$pids $!"

# Wait (bounded) until sluice answers.
i=0
until ./tools/sluice-client -q -n 1 127.0.0.1:8443 >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -ge 50 ]; then
		echo "sluice did not come up; its log:" >&2
		cat run/sluice.log >&2
		exit 1
	fi
	sleep 0.1
done

echo "==> three frames through sluice (TLS) to the echo backend and back"
./tools/sluice-client 127.0.0.1:8443 "hello" "frames go through sluice" "and come back in order"
echo "==> 100000 pipelined 64-byte frames over 8 TLS connections, each response verified"
./tools/sluice-client -q --verify -C 8 -P 32 -n 12500 -s 64 127.0.0.1:8443
echo "==> sluice's log"
cat run/sluice.log

if [ "$once" -eq 1 ]; then
	echo "==> stopping (run from a terminal to keep sluice running)"
	exit 0
fi
echo "==> sluice is running on 127.0.0.1:8443; try: ./tools/sluice-client 127.0.0.1:8443 hi"
echo "    Ctrl-C stops sluice and the echo backend."
tail -f run/sluice.log &
pids="$pids $!"
wait
