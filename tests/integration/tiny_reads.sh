#!/bin/sh
# The integration suites again, with every read sluice makes (TLS and
# backend) capped at a few bytes: frames and their 6-byte prefixes then
# split across reads and evbuffer chains at every offset.
set -u
dir=${SLUICE_BUILDDIR:-.}/tests/integration
status=0
for t in check_proxy check_limits check_reload check_admin check_tls check_security; do
	[ -x "$dir/$t" ] || continue
	echo "== $t with SLUICE_MAX_READ=7"
	SLUICE_MAX_READ=7 "$dir/$t" || status=1
done
exit $status
