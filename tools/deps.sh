# Shared by tools/demo.sh and tools/check.sh (sourced, not run): makes sure
# the Debian packages sluice needs to build and test are installed.
# As root it installs what is missing; otherwise it prints the exact
# apt-get line and stops.
SLUICE_PACKAGES="gcc make autoconf automake libtool pkg-config libevent-dev libssl-dev libyaml-dev check openssl haproxy"

sluice_missing_packages() {
	missing=""
	for p in $SLUICE_PACKAGES; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing="$missing $p"
		fi
	done
	echo "$missing"
}

sluice_install_deps() {
	missing=$(sluice_missing_packages)
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "sluice needs these Debian packages:$missing" >&2
		echo "install them as root with:" >&2
		echo "  apt-get update && apt-get install -y$missing" >&2
		exit 1
	fi
	echo "==> installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q $missing
}

# Configures (once) and builds in the source tree.
sluice_build() {
	configure_flags="$*"
	if [ ! -x ./configure ]; then
		echo "==> ./autogen.sh"
		./autogen.sh >/dev/null
	fi
	if [ ! -f Makefile ] || [ "$(cat .configure-flags 2>/dev/null)" != "$configure_flags" ]; then
		# Objects built with other flags (sanitizers, say) must go:
		# make alone would keep them, as their sources did not change.
		[ -f Makefile ] && make -s clean >/dev/null 2>&1
		echo "==> ./configure $configure_flags"
		# shellcheck disable=SC2086
		./configure -q $configure_flags
		echo "$configure_flags" > .configure-flags
	fi
	echo "==> make"
	make -s -j"$(nproc)"
}
