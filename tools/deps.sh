#!/bin/sh
# Installs the Debian packages Nova needs to build, run and test, when any is
# missing. Quiet and fast when everything is present.
set -eu
PKGS="gcc make pkg-config libc6-dev libpq-dev libcurl4-openssl-dev libjansson-dev libssh2-1-dev
libyaml-dev uuid-dev libmicrohttpd-dev libssl-dev libcmocka-dev postgresql postgresql-client
util-linux procps curl python3 python3-yaml openssl openssh-server openssh-client iproute2
mandoc dpkg-dev init-system-helpers passwd"
# mandoc checks the man pages, dpkg-dev's dpkg-shlibdeps gives `make deb`
# its dependencies, init-system-helpers (deb-systemd-helper) and passwd
# (useradd) are what the package's maintainer scripts call when the
# package test installs it into a throwaway root.
# Debian's kubectl drives the fake Kubernetes API server in the tests. When
# another package already owns /usr/bin/kubectl (Google's "kubectl"), the two
# clash, so it is left out and tests/support/k8s.sh unpacks it privately
# (apt-get download + dpkg -x). Its failure to install is reported, not
# fatal: the kubernetes tests then fetch it themselves or fail saying so.
OPT_PKGS=""
dpkg-query -S /usr/bin/kubectl >/dev/null 2>&1 || OPT_PKGS="kubernetes-client"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
missing=""
for p in $PKGS; do installed "$p" || missing="$missing $p"; done
opt_missing=""
for p in $OPT_PKGS; do installed "$p" || opt_missing="$opt_missing $p"; done
[ -z "$missing$opt_missing" ] && exit 0

echo "deps: installing$missing$opt_missing"
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "deps: run as root: apt-get install -y$missing" >&2; exit 1
	fi
else
	SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# postgresql's package starts a system cluster on port 5432; Nova never uses
# it (it runs private clusters on unix sockets), so it is left as installed.
# openssh-server is there for the ssh adapter's tests, which run their own
# sshd processes in network namespaces; a system sshd it may start is not used.
if $SUDO apt-get update -qq >"$log" 2>&1 &&
   { [ -z "$missing" ] || $SUDO apt-get install -y -qq --no-install-recommends $missing >>"$log" 2>&1; }; then
	if [ -n "$opt_missing" ] &&
	   ! $SUDO apt-get install -y -qq --no-install-recommends $opt_missing >>"$log" 2>&1; then
		echo "deps: could not install$opt_missing (the kubernetes tests fetch it themselves or fail):" >&2
		tail -3 "$log" >&2
	fi
	rm -f "$log"
	echo "deps: done"
else
	cat "$log" >&2
	rm -f "$log"
	echo "deps: apt-get failed" >&2
	exit 1
fi
