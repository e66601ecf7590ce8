#!/bin/sh
# Installs the Debian packages Nova needs to build, run and test, when any is
# missing. Quiet and fast when everything is present.
set -eu
PKGS="gcc make pkg-config libc6-dev libpq-dev libcurl4-openssl-dev libjansson-dev libssh2-1-dev
libyaml-dev uuid-dev libmicrohttpd-dev libssl-dev libcmocka-dev postgresql postgresql-client
util-linux procps curl openssh-server openssh-client iproute2"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
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
   $SUDO apt-get install -y -qq --no-install-recommends $missing >>"$log" 2>&1; then
	rm -f "$log"
	echo "deps: done"
else
	cat "$log" >&2
	rm -f "$log"
	echo "deps: apt-get failed" >&2
	exit 1
fi
