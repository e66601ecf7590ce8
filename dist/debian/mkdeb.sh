#!/bin/sh
# `make deb`: the Debian package nova_VERSION-1_ARCH.deb in $BUILD, built
# with dpkg-deb from the tree `make install` stages (PREFIX=/usr,
# SYSCONFDIR=/etc, the units where this Debian keeps them), plus the
# maintainer scripts beside this file. Rejected: dpkg-buildpackage and
# debhelper, which want a debian/ directory at the top of the tree and
# rebuild from a clean source; this packs the build `make` already did.
# Its dependencies come from dpkg-shlibdeps (dpkg-dev), as debhelper's
# would; the file owners are root (dpkg-deb --root-owner-group), so no
# fakeroot is needed.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$top/$BUILD" ;; esac
MAKE=${MAKE:-make}
version="$(cat VERSION)-1"
arch=$(dpkg --print-architecture)
work="$BUILD/deb-build"
stage="$work/debian/nova"
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
[ -n "$unitdir" ] || unitdir=/lib/systemd/system
out="$BUILD/nova_${version}_${arch}.deb"

rm -rf "$work"
mkdir -p "$stage/DEBIAN"
$MAKE --no-print-directory -s BUILD="$BUILD" install DESTDIR="$stage" PREFIX=/usr \
	SYSCONFDIR=/etc UNITDIR="$unitdir" >/dev/null

# Debian's layout: man pages compressed, binaries stripped, the copyright.
gzip -9n "$stage"/usr/share/man/man*/*
for b in "$stage"/usr/bin/*; do
	strip --remove-section=.comment --remove-section=.note --strip-unneeded "$b"
done
install -d "$stage/usr/share/doc/nova"
printf '%s\n' "Nova: LLM-inference provisioning (novad, novactl, nova-sidecar, nova-router," \
	"nova-mock-engine). Built from the Nova source tree, version $(cat VERSION)." \
	>"$stage/usr/share/doc/nova/copyright"
chmod 0644 "$stage/usr/share/doc/nova/copyright"

deps=$(cd "$work" && printf 'Source: nova\n\nPackage: nova\nArchitecture: any\n' >debian/control &&
	dpkg-shlibdeps -O debian/nova/usr/bin/* 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$deps" ] || { echo "mkdeb: dpkg-shlibdeps gave no dependencies (is dpkg-dev installed?)" >&2; exit 1; }
size=$(du -sk "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@DEPENDS@|$deps|" \
	-e "s|@SIZE@|$size|" dist/debian/control.in >"$stage/DEBIAN/control"
# Every file under /etc is a conffile: an admin's edits survive upgrades.
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') >"$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "dist/debian/$s" "$stage/DEBIAN/$s"
done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
	xargs md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "  DEB     $out"
