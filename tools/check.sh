#!/bin/sh
# Runs the whole test suite: installs missing build dependencies (as root),
# builds with warnings as errors, and runs every Check program (unit and
# integration tests against the real binaries). Prints Check's summary of
# each program; exits non-zero if anything failed.
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
sluice_install_deps
sluice_build --enable-werror ${SLUICE_CONFIGURE_FLAGS:-}
echo "==> make check"
status=0
make -s -j"$(nproc)" check || status=$?
for log in tests/unit/*.log tests/integration/*.log; do
	[ -f "$log" ] || continue
	case "$log" in */test-suite.log) continue ;; esac
	grep -E '^[0-9]+%: Checks:' "$log" | while read -r line; do
		printf '%-36s %s\n' "${log%.log}:" "$line"
	done
done
if [ "$status" -ne 0 ]; then
	echo "==> FAILED; details:" >&2
	cat test-suite.log >&2 || true
	exit 1
fi
echo "==> all tests passed"
