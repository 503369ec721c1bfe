#!/bin/sh
# The integration suites again, with every read sluice makes (TLS and
# backend) capped at a few bytes: frames and their 6-byte prefixes then
# split across reads and evbuffer chains at every offset.
#
# Every suite must be there: a missing one fails this script rather than
# being skipped. That the cap takes effect is checked where sluice starts:
# with SLUICE_MAX_READ set, fixture_up (tests/fixture.c) fails any test
# whose sluice does not log "SLUICE_MAX_READ=7: reads are capped".
set -u
dir=${SLUICE_BUILDDIR:-.}/tests/integration
status=0
for t in check_proxy check_limits check_reload check_admin check_tls check_security check_dns check_routes; do
	if [ ! -x "$dir/$t" ]; then
		echo "tiny_reads.sh: $dir/$t is missing or not executable" >&2
		status=1
		continue
	fi
	echo "== $t with SLUICE_MAX_READ=7"
	SLUICE_MAX_READ=7 "$dir/$t" || status=1
done
exit $status
