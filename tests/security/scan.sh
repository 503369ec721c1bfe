#!/bin/sh
# Scans a running sluice with the TLS scanners operators use, sslscan and
# testssl.sh (installed from Debian when missing, as root), and fails if
# either shows SSLv2, SSLv3, TLS 1.0 or 1.1, a cipher suite without forward
# secrecy or AEAD, compression, insecure renegotiation or a known
# vulnerability. docs/SECURITY.md summarises its last report.
#
#   tests/security/scan.sh [BUILDDIR]
#
# BUILDDIR holds proxy/sluice and tools/sluice-echo; without it, the
# in-tree build is used when there is one, else sluice is built out of tree
# in the scratch folder. Reports go to $SCAN_DIR (default: a new
# /tmp/sluice-scan.XXXXXX): sslscan-*.txt, testssl-*.txt and .csv,
# sluice.log, verdict.txt. Not part of make check: it needs the scanners
# and a few minutes (testssl.sh --full takes most of them).
#
# What is scanned: one sluice on 127.0.0.1 running config/sluice.yaml as
# shipped — ports moved to free ones, demo certificate from
# config/gen-demo-cert.sh — plus a second listener with the same (default)
# TLS settings that also has an RSA certificate, so that the RSA suites are
# judged too. Only the TLS configuration is judged: the certificates are
# self-signed demo ones, and the scanners' certificate findings (trust,
# expiry, revocation) are reported but ignored.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
scan_dir=${SCAN_DIR:-$(mktemp -d /tmp/sluice-scan.XXXXXX)}
mkdir -p "$scan_dir"
verdict="$scan_dir/verdict.txt"
: >"$verdict"
pids=""

say() {
	echo "$*" | tee -a "$verdict"
}

# Only the processes this script started, by pid.
cleanup() {
	for pid in $pids; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	pids=""
}
trap cleanup EXIT INT TERM

need_package() {
	# $1: command, $2: Debian package
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "$1 is missing: apt-get install -y $2 (as root)" >&2
		exit 1
	fi
	echo "==> installing $2"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >"$scan_dir/apt-$2.log" 2>&1 ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2"; }
}

need_package sslscan sslscan
need_package testssl testssl.sh
need_package openssl openssl

# ---- the binaries ----------------------------------------------------------------

if [ $# -ge 1 ]; then
	build=$(cd "$1" && pwd)
elif [ -x "$src/proxy/sluice" ] && [ -x "$src/tools/sluice-echo" ]; then
	build=$src
else
	build="$scan_dir/build"
	echo "==> building sluice in $build"
	mkdir -p "$build"
	(cd "$build" && "$src/configure" -q && make -s -j"$(nproc)") >"$scan_dir/build.log" 2>&1 ||
		{ tail -n 30 "$scan_dir/build.log" >&2; exit 1; }
fi
sluice="$build/proxy/sluice"
echo_bin="$build/tools/sluice-echo"
if [ ! -x "$sluice" ] || [ ! -x "$echo_bin" ]; then
	echo "no sluice or sluice-echo under $build" >&2
	exit 1
fi

# ---- certificates, ports, configuration --------------------------------------------

sh "$src/config/gen-demo-cert.sh" "$scan_dir/demo" >/dev/null
if [ ! -s "$scan_dir/rsa/server.crt" ]; then
	mkdir -p "$scan_dir/rsa"
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$scan_dir/rsa/server.key" -out "$scan_dir/rsa/server.crt" 2>/dev/null
fi

# A port in 20000-32767 (below the ephemeral range) that nothing listens on.
used_ports=""
free_port() {
	for _ in $(seq 1 200); do
		p=$(shuf -i 20000-32767 -n 1)
		case " $used_ports " in *" $p "*) continue ;; esac
		if [ -z "$(ss -Hltn "sport = :$p")" ]; then
			used_ports="$used_ports $p"
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	exit 1
}
port=$(free_port)
port_rsa=$(free_port)
echo_port=$(free_port)

# config/sluice.yaml with its two addresses moved, and one more listener
# right after the first one's tls section (whose last line is min_version).
conf="$scan_dir/sluice.yaml"
sed -e "s/127\.0\.0\.1:8443/127.0.0.1:$port/" -e "s/127\.0\.0\.1:9000/127.0.0.1:$echo_port/" \
	-e "/^      min_version: TLSv1.2\$/a\\
  - address: 127.0.0.1:$port_rsa\\
    backend: echo\\
    tls:\\
      certificates:\\
        - cert: demo/server.crt\\
          key: demo/server.key\\
        - cert: rsa/server.crt\\
          key: rsa/server.key" \
	"$src/config/sluice.yaml" >"$conf"
diff -u "$src/config/sluice.yaml" "$conf" >"$scan_dir/config.diff" || true
grep -q "127.0.0.1:$port_rsa" "$conf" || { echo "could not derive the configuration" >&2; exit 1; }
"$sluice" -t -c "$conf" >"$scan_dir/sluice-t.log" 2>&1 || { cat "$scan_dir/sluice-t.log" >&2; exit 1; }

# ---- sluice and its backend ---------------------------------------------------------

"$echo_bin" -a 127.0.0.1 -p "$echo_port" >"$scan_dir/echo.log" 2>&1 &
pids="$!"
"$sluice" -c "$conf" >"$scan_dir/sluice.log" 2>&1 &
sluice_pid=$!
pids="$pids $sluice_pid"
# Poll (bounded) for the line sluice logs once it serves.
i=0
until grep -q " running: " "$scan_dir/sluice.log"; do
	i=$((i + 1))
	if [ "$i" -ge 150 ] || ! kill -0 "$sluice_pid" 2>/dev/null; then
		echo "sluice did not start; its log:" >&2
		cat "$scan_dir/sluice.log" >&2
		exit 1
	fi
	sleep 0.1
done

# ---- the scans ----------------------------------------------------------------------

fail=0
bad() {
	say "FAIL: $*"
	fail=1
}

# sslscan's report: protocols, every accepted suite, compression,
# renegotiation, heartbleed, fallback SCSV.
judge_sslscan() {
	f=$1
	for p in SSLv2 SSLv3 TLSv1.0 TLSv1.1; do
		grep -Eq "^$p +enabled" "$f" && bad "sslscan: $p enabled ($f)"
	done
	grep -Eq "^TLSv1\.2 +enabled" "$f" || bad "sslscan: TLS 1.2 not enabled ($f)"
	grep -Eq "^TLSv1\.3 +enabled" "$f" || bad "sslscan: TLS 1.3 not enabled ($f)"
	n=0
	# "Accepted  PROTOCOL  BITS bits  NAME ...": TLS 1.3 suites are all
	# AEAD with (EC)DHE; a TLS 1.2 one must be ECDHE with GCM or ChaCha20.
	awk '/^(Preferred|Accepted) / { print $2, $5 }' "$f" >"$f.suites"
	while read -r proto name; do
		n=$((n + 1))
		case "$proto,$name" in
		TLSv1.3,TLS_*) ;;
		TLSv1.2,ECDHE-*-AES*-GCM-SHA*|TLSv1.2,ECDHE-*-CHACHA20-POLY1305) ;;
		*) bad "sslscan: $proto $name accepted: not forward secret with AEAD ($f)" ;;
		esac
	done <"$f.suites"
	[ "$n" -gt 0 ] || bad "sslscan: no accepted cipher suite listed ($f)"
	grep -q "Compression enabled" "$f" && bad "sslscan: TLS compression enabled ($f)"
	grep -q "Insecure session renegotiation supported" "$f" && bad "sslscan: insecure renegotiation ($f)"
	grep -Eq "^TLSv[0-9.]+ vulnerable to heartbleed" "$f" && bad "sslscan: heartbleed ($f)"
	grep -q "Server supports TLS Fallback SCSV" "$f" || bad "sslscan: no TLS_FALLBACK_SCSV ($f)"
	return 0
}

# The value of one id in a testssl.sh CSV file ("finding" column).
csv_finding() {
	awk -F'","' -v id="$2" '$1 == "\"" id { print $5; exit }' "$1"
}

expect_finding() {
	# $1 csv, $2 id, $3 extended regex the finding must match
	got=$(csv_finding "$1" "$2")
	echo "$got" | grep -Eq "$3" || bad "testssl.sh: $2 is '$got', expected /$3/ ($1)"
}

# testssl.sh's CSV: the findings named here exactly, and no finding of
# severity LOW or worse outside the certificate checks.
judge_testssl() {
	f=$1
	for id in SSLv2 SSLv3 TLS1 TLS1_1; do
		expect_finding "$f" "$id" "^not offered"
	done
	expect_finding "$f" TLS1_2 "^offered"
	expect_finding "$f" TLS1_3 "^offered"
	for id in cipherlist_NULL cipherlist_aNULL cipherlist_EXPORT cipherlist_LOW \
		cipherlist_3DES_IDEA cipherlist_AVERAGE; do
		expect_finding "$f" "$id" "^not offered"
	done
	expect_finding "$f" PFS "^offered"
	expect_finding "$f" cipher_order "^server"
	expect_finding "$f" secure_renego "^supported"
	expect_finding "$f" secure_client_renego "^not vulnerable"
	expect_finding "$f" CRIME_TLS "^not vulnerable"
	for id in heartbleed CCS ROBOT POODLE_SSL SWEET32 FREAK DROWN LOGJAM BEAST LUCKY13 RC4; do
		expect_finding "$f" "$id" "^not vulnerable"
	done
	# Every suite offered, per protocol (-E): TLS 1.3 ones, or ECDHE + AEAD.
	awk -F'","' '$1 ~ /^"cipher-tls1_2_/ { print $5 }' "$f" | while read -r _ _ _ name _; do
		case "$name" in
		ECDHE-*-AES*-GCM-SHA*|ECDHE-*-CHACHA20-POLY1305) ;;
		*) echo "$name" ;;
		esac
	done >"$f.weak"
	[ -s "$f.weak" ] && bad "testssl.sh: TLS 1.2 suites without forward secrecy or AEAD: $(tr '\n' ' ' <"$f.weak")"
	awk -F'","' '$1 ~ /^"cipher-tls1_[01]_|^"cipher-ssl/ { print $1 }' "$f" | grep -q . &&
		bad "testssl.sh: suites offered below TLS 1.2 ($f)"
	awk -F'","' '$4 ~ /^(LOW|MEDIUM|HIGH|CRITICAL|WARN)$/ && $1 !~ /^"cert/ { print $1 "\",\"" $4 "\",\"" $5 }' \
		"$f" >"$f.findings"
	[ -s "$f.findings" ] && bad "testssl.sh: findings besides the certificate's: $(cat "$f.findings")"
	return 0
}

scan() {
	# $1: label, $2: port
	echo "==> sslscan $1 (127.0.0.1:$2)"
	sslscan --no-colour --show-sigs --sni-name=localhost "127.0.0.1:$2" >"$scan_dir/sslscan-$1.txt" 2>&1 ||
		bad "sslscan $1 exited with status $?"
	judge_sslscan "$scan_dir/sslscan-$1.txt"
	echo "==> testssl.sh --full $1 (127.0.0.1:$2; a few minutes)"
	rm -f "$scan_dir/testssl-$1.csv" "$scan_dir/testssl-$1.txt"
	# Its exit status counts findings, certificate ones included: the CSV
	# is judged instead.
	testssl --quiet --color 0 --warnings batch --nodns none --full \
		--csvfile "$scan_dir/testssl-$1.csv" "127.0.0.1:$2" >"$scan_dir/testssl-$1.txt" 2>&1 || true
	[ -s "$scan_dir/testssl-$1.csv" ] || { bad "testssl.sh $1 wrote no report"; return 0; }
	judge_testssl "$scan_dir/testssl-$1.csv"
}

scan default "$port"
scan rsa "$port_rsa"

# ---- sluice after the scans ------------------------------------------------------------

kill -TERM "$sluice_pid"
status=0
wait "$sluice_pid" || status=$?
pids=${pids% "$sluice_pid"}
[ "$status" -eq 0 ] || bad "sluice exited with status $status after SIGTERM"
if grep -Eq '\[crit\]|AddressSanitizer|LeakSanitizer|runtime error:' "$scan_dir/sluice.log"; then
	bad "sluice's log shows a crash or a critical line"
fi

# ---- the summary ------------------------------------------------------------------------

summarise() {
	f="$scan_dir/sslscan-$1.txt"
	say "$1 listener (127.0.0.1:$2):"
	say "  sslscan: $(grep -E '^(SSLv[23]|TLSv1\.[0-3]) +(enabled|disabled)' "$f" | awk '{printf "%s %s; ", $1, $2}')"
	say "  sslscan: accepted: $(awk '/^(Preferred|Accepted) / { printf "%s %s; ", $2, $5 }' "$f")"
	say "  sslscan: $(grep -E 'Fallback SCSV|renegotiation|Compression|compression' "$f" | grep -v '^  ' | tr '\n' ';')"
	c="$scan_dir/testssl-$1.csv"
	if [ -s "$c" ]; then
		for id in SSLv2 SSLv3 TLS1 TLS1_1 TLS1_2 TLS1_3 cipherlist_NULL cipherlist_aNULL cipherlist_EXPORT \
			cipherlist_LOW cipherlist_3DES_IDEA cipherlist_AVERAGE PFS PFS_ECDHE_curves secure_renego \
			secure_client_renego CRIME_TLS fallback_SCSV heartbleed ROBOT; do
			say "  testssl.sh: $id: $(csv_finding "$c" "$id")"
		done
		say "  testssl.sh: certificate findings ignored (self-signed demo certificates):" \
			"$(awk -F'","' '$1 ~ /^"cert/ && $4 ~ /^(LOW|MEDIUM|HIGH|CRITICAL)$/' "$c" | wc -l)"
	fi
}
summarise default "$port"
summarise rsa "$port_rsa"
# (Both scanners colour their version banners whatever the options.)
nocolour() {
	sed 's/\x1b\[[0-9;]*m//g'
}
say "$("$sluice" -V 2>&1 | head -n 1); sslscan $(sslscan --version 2>&1 | nocolour | awk 'NF { print $1; exit }');" \
	"testssl.sh $(testssl --version 2>&1 | nocolour | grep -Eo 'testssl +[0-9.]+' | awk '{ print $2 }');" \
	"$(openssl version); reports in $scan_dir"
if [ "$fail" -ne 0 ]; then
	say "VERDICT: FAIL"
	exit 1
fi
say "VERDICT: PASS"
