#!/bin/sh
# Creates a self-signed ECDSA P-256 demo certificate for localhost in
# config/demo/ (or the folder given), unless one is already there.
# For trying sluice out only: use a real certificate in production.
set -eu
dir=${1:-$(dirname "$0")/demo}
if [ -s "$dir/server.crt" ] && [ -s "$dir/server.key" ]; then
	echo "demo certificate: $dir/server.crt (already present)"
	exit 0
fi
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-days 365 -subj "/CN=localhost" \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$dir/server.key" -out "$dir/server.crt" 2>/dev/null
chmod 644 "$dir/server.crt"
echo "demo certificate: $dir/server.crt (created, valid 365 days)"
