# deploy/deps.sh: sourced by deploy/up and deploy/check.  Installs, with
# apt-get, whatever of the build and run dependencies is missing.
QR_BUILD_PKGS="build-essential autoconf automake pkg-config libfcgi-dev
 libcurl4-openssl-dev libjson-c-dev liblmdb-dev libssl-dev"
QR_RUN_PKGS="lighttpd curl"
# What the test suite starts or drives besides lighttpd: the other web
# servers (conformance tests), headless Chromium (admin page), promtool
# (metrics format), clang with its sanitizer runtimes (libFuzzer), wrk.
QR_TEST_PKGS="nginx apache2 libapache2-mod-fcgid chromium prometheus
 clang libclang-rt-14-dev wrk"
# The tests need these commands; each is "command:package".  Checked by
# command, not package: a NodeSource nodejs brings its own npm, and asking
# apt for Debian's npm beside it fails.
QR_TEST_CMDS="python3:python3 node:nodejs npm:npm"

qr_install() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "qwenrelay: missing packages:$missing" >&2
		echo "qwenrelay: run as root, or: sudo apt-get install$missing" >&2
		exit 1
	fi
	echo "==> installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || true
	# shellcheck disable=SC2086
	if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null; then
		echo "qwenrelay: apt-get could not install:$missing" >&2
		exit 1
	fi
}

# Install the package of every "command:package" whose command is missing.
qr_need_cmds() {
	pkgs=""
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null 2>&1 || pkgs="$pkgs ${pair#*:}"
	done
	# shellcheck disable=SC2086
	[ -z "$pkgs" ] || qr_install $pkgs
}

# Configure (once) and build in the source tree.
qr_build() {
	cd "$QR_TOP" || exit 1
	if [ ! -x configure ] || [ configure.ac -nt configure ]; then
		echo "==> autogen"
		./autogen.sh >/dev/null 2>&1 || { ./autogen.sh; exit 1; }
	fi
	# The flags the tree is configured with, as config.status records
	# them (a hand-run ./configure counts too), against the wanted ones.
	have=$(./config.status --config 2>/dev/null | tr -d "'")
	if [ ! -f Makefile ] || [ "$have" != "$*" ]; then
		echo "==> configure $*"
		# Other flags (--enable-sanitizers, say) need every object
		# rebuilt: make alone only looks at the sources' times.
		[ -f Makefile ] && make clean >/dev/null 2>&1
		# shellcheck disable=SC2068
		./configure -q $@ || exit 1
	fi
	echo "==> make"
	make -j"$(nproc)" >/dev/null || make || exit 1
}
