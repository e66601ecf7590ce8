#!/bin/sh
# Nova as a service: the man pages pass mandoc's lint; `make install`
# honours PREFIX and DESTDIR and installs units, /etc/nova and man pages;
# systemd-analyze accepts the units; `make deb` builds a package that
# installs into a throwaway root (dpkg --root, the maintainer scripts run
# chrootless under DPKG_ROOT: the user nova, /var/lib/nova, the units
# enabled), and novad started from the installed unit's ExecStart line,
# as the unit's user, answers /healthz having read /etc/nova/novad.yaml by
# itself, and nova-router from its unit, its key from its EnvironmentFile,
# serves /v1/models having read /etc/nova/nova-router.yaml. Nothing of the
# running system is changed: the root is a temp directory, and the
# services see the package's /usr and /etc through read-only overlays in
# mount namespaces of their own (where those are unavailable, said with a
# SKIP line, the files are named by NOVA_CONFIG and NOVA_ROUTER_CONFIG).
set -u
. tests/support/lib.sh

svc_pid=
router_pid=
svc_cleanup() {
	for p in $router_pid $svc_pid; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	t_cleanup
}
trap svc_cleanup EXIT

# t_check NAME CONDITION-COMMAND... : PASS when it succeeds.
t_check() {
	name=$1; shift
	if "$@"; then t_pass "$name"; else t_fail "$name" "${why:-failed}"; fi
	why=
}
why=

# --- man pages ---------------------------------------------------------
if ! command -v mandoc >/dev/null 2>&1; then
	t_fail "man pages lint" "mandoc is not installed (make deps installs it)"
else
	for page in man/novad.8 man/novactl.1 man/nova-sidecar.8 man/nova-router.8; do
		out=$(mandoc -T lint -W warning "$page" 2>&1); rc=$?
		why="$out (exit $rc)"
		t_check "man page $page passes mandoc -T lint" test "$rc" -eq 0 -a -z "$out"
	done
fi

# --- make install ------------------------------------------------------
inst="$T_WORK/inst"
if make -s --no-print-directory BUILD="$B" install DESTDIR="$inst" PREFIX=/opt/nova \
	>"$T_WORK/install.log" 2>&1; then
	t_pass "make install with PREFIX and DESTDIR"
else
	t_fail "make install with PREFIX and DESTDIR" "$(tail -5 "$T_WORK/install.log")"
fi
missing=
for f in opt/nova/bin/novad opt/nova/bin/novactl opt/nova/bin/nova-sidecar \
	opt/nova/bin/nova-router opt/nova/bin/nova-mock-engine \
	opt/nova/lib/systemd/system/novad.service opt/nova/lib/systemd/system/nova-router.service \
	etc/nova/novad.yaml etc/nova/nova-router.yaml \
	opt/nova/share/man/man8/novad.8 opt/nova/share/man/man1/novactl.1 \
	opt/nova/share/man/man8/nova-sidecar.8 opt/nova/share/man/man8/nova-router.8 \
	opt/nova/share/nova/etc/datacenter.yaml opt/nova/share/nova/etc/models/single.yaml \
	opt/nova/share/nova/etc/models/lpu/single.yaml; do
	[ -f "$inst/$f" ] || missing="$missing $f"
done
why="missing:$missing"
t_check "make install installs programs, units, /etc/nova, man pages, examples" test -z "$missing"
why=$(grep '^ExecStart=' "$inst"/opt/nova/lib/systemd/system/*.service)
t_check "the units' ExecStart names the installed programs" \
	sh -c "grep -qx 'ExecStart=/opt/nova/bin/novad' '$inst/opt/nova/lib/systemd/system/novad.service' &&
	       grep -qx 'ExecStart=/opt/nova/bin/nova-router' '$inst/opt/nova/lib/systemd/system/nova-router.service'"
why=$(grep -i 'token\|secret\|password' "$inst"/opt/nova/lib/systemd/system/*.service | grep -v '^[^:]*:#')
t_check "no secret in the units, only root-only EnvironmentFiles" \
	sh -c "! grep -v '^#' '$inst'/opt/nova/lib/systemd/system/*.service | grep -qi 'token\|secret\|password' &&
	       grep -q '^EnvironmentFile=-/etc/nova/novad.env' '$inst/opt/nova/lib/systemd/system/novad.service' &&
	       grep -q '^EnvironmentFile=/etc/nova/nova-router.env' '$inst/opt/nova/lib/systemd/system/nova-router.service'"
echo "# an admin's edit" >>"$inst/etc/nova/novad.yaml"
make -s --no-print-directory BUILD="$B" install DESTDIR="$inst" PREFIX=/opt/nova >/dev/null 2>&1
t_check "make install keeps an existing /etc/nova/novad.yaml" \
	grep -q "^# an admin's edit" "$inst/etc/nova/novad.yaml"

# --- systemd-analyze verify --------------------------------------------
if command -v systemd-analyze >/dev/null 2>&1; then
	# The units as installed, their programs where DESTDIR put them (verify
	# checks they are executable) and man pages where it put them.
	mkdir -p "$T_WORK/verify"
	for u in novad nova-router; do
		sed "s|^ExecStart=/opt/nova|ExecStart=$inst/opt/nova|" \
			"$inst/opt/nova/lib/systemd/system/$u.service" >"$T_WORK/verify/$u.service"
	done
	out=$(MANPATH="$inst/opt/nova/share/man" systemd-analyze verify \
		"$T_WORK/verify/novad.service" "$T_WORK/verify/nova-router.service" 2>&1); rc=$?
	why="exit $rc: $out"
	t_check "systemd-analyze verify accepts novad.service and nova-router.service" \
		test "$rc" -eq 0 -a -z "$out"
else
	echo "SKIP: systemd-analyze verify (systemd-analyze is not installed)"
fi

# --- make deb ----------------------------------------------------------
rm -f "$B"/nova_*.deb
if make -s --no-print-directory BUILD="$B" deb >"$T_WORK/deb.log" 2>&1; then
	t_pass "make deb builds a package"
else
	t_fail "make deb builds a package" "$(tail -5 "$T_WORK/deb.log")"
fi
deb=$(ls "$B"/nova_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
	t_fail "the package" "no $B/nova_*.deb"
	exit 0
fi
why=$(dpkg-deb -f "$deb" Depends)
t_check "the package depends on the libraries it links" \
	sh -c "dpkg-deb -f '$deb' Depends | grep -q 'libpq5' && dpkg-deb -f '$deb' Depends | grep -q 'libmicrohttpd'"
why=$(dpkg-deb -I "$deb" conffiles 2>&1)
t_check "/etc/nova/novad.yaml and nova-router.yaml are conffiles" \
	sh -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/nova/novad.yaml &&
	       dpkg-deb -I '$deb' conffiles | grep -qx /etc/nova/nova-router.yaml"

# --- installed into a throwaway root ------------------------------------
root="$T_WORK/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
for f in passwd group shadow gshadow; do
	grep '^root:' "/etc/$f" >"$root/etc/$f" 2>/dev/null
done
chmod 0640 "$root/etc/shadow" "$root/etc/gshadow"
host_ids=$(cat /etc/passwd /etc/group | md5sum)
# Its libraries are the running system's (the throwaway root has no
# packages): hence --force-depends.
if dpkg --root="$root" --log="$T_WORK/dpkg.log" --force-script-chrootless --force-depends \
	-i "$deb" >"$T_WORK/dpkg.out" 2>&1; then
	t_pass "dpkg installs the package into a throwaway root"
else
	t_fail "dpkg installs the package into a throwaway root" "$(grep -v depend "$T_WORK/dpkg.out" | tail -5)"
fi
why=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' nova 2>&1)
t_check "the package is installed and configured" test "$why" = "install ok installed"
why=$(cat "$root/etc/passwd")
t_check "postinst made the system user nova (no login)" \
	sh -c "awk -F: '\$1 == \"nova\" && \$3 < 1000 && \$7 ~ /nologin/ { f = 1 } END { exit !f }' '$root/etc/passwd' &&
	       grep -q '^nova:' '$root/etc/group'"
nova_uid=$(awk -F: '$1 == "nova" { print $3 }' "$root/etc/passwd")
nova_gid=$(awk -F: '$1 == "nova" { print $4 }' "$root/etc/passwd")
why=$(ls -ldn "$root/var/lib/nova" 2>&1)
t_check "/var/lib/nova belongs to nova, mode 0750" \
	test -n "$nova_uid" -a "$(stat -c '%u:%g %a' "$root/var/lib/nova" 2>/dev/null)" = "$nova_uid:$nova_gid 750"
why=$(ls -l "$root/etc/systemd/system/multi-user.target.wants" 2>&1)
t_check "the units are enabled (multi-user.target wants them)" \
	sh -c "[ -L '$root/etc/systemd/system/multi-user.target.wants/novad.service' ] &&
	       [ -L '$root/etc/systemd/system/multi-user.target.wants/nova-router.service' ]"
why="/etc/passwd or /etc/group changed"
t_check "the running system's users and groups are untouched" \
	test "$(cat /etc/passwd /etc/group | md5sum)" = "$host_ids"

# --- novad from the installed unit's ExecStart line ----------------------
unit=
for d in lib/systemd/system usr/lib/systemd/system; do
	[ -f "$root/$d/novad.service" ] && unit="$root/$d/novad.service"
done
exec_line=$(sed -n 's/^ExecStart=//p' "$unit" 2>/dev/null)
user=$(sed -n 's/^User=//p' "$unit" 2>/dev/null)
envfile=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' "$unit" 2>/dev/null)
why="ExecStart='$exec_line' User='$user' EnvironmentFile='$envfile'"
t_check "novad.service runs the installed novad as nova, without -c" \
	test "$exec_line" = /usr/bin/novad -a "$user" = nova -a "$envfile" = /etc/nova/novad.env
T_DB=t_svc_$$_$(date +%s%N | tail -c 6)
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "CREATE DATABASE $T_DB" >/dev/null
# What an admin writes into the EnvironmentFile (root's, 0600); the listen
# address overrides the file's 8420, which another novad here may hold.
(umask 077; cat >"$root$envfile" <<EOT
NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova"
NOVA_LISTEN=127.0.0.1:0
EOT
)
# What StateDirectory= gives the unit.
state="$T_WORK/svc-state"
install -d -m 0750 "$state"
chown "$nova_uid:$nova_gid" "$state"
# systemd starts a service with a clean environment, the EnvironmentFile's
# variables and STATE_DIRECTORY, as the unit's user.
# (A sanitizer build's options go along: they are the run's, not the unit's.)
svc_env="PATH=/usr/sbin:/usr/bin:/sbin:/bin STATE_DIRECTORY=$state"
for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
	eval "val=\${$v:-}"
	[ -n "$val" ] && svc_env="$svc_env $v=$val"
done
export SVC_ENV="$svc_env"
if unshare -m sh -c "mount -t overlay nova-usr -o lowerdir='$root/usr':/usr /usr &&
	mount -t overlay nova-etc -o lowerdir='$root/etc':/etc /etc && [ -x /usr/bin/novad ]" 2>/dev/null; then
	how="namespace"
else
	echo "SKIP: the services under the package's own /etc/nova (no mount namespace or" \
		"overlayfs here): NOVA_CONFIG and NOVA_ROUTER_CONFIG name the root's files instead"
	how="root"
fi
# svc_start EXEC_LINE ENVFILE CONFIG_VARIABLE CONFIG_FILE OUT ERR: a unit's
# ExecStart as nova with the EnvironmentFile's variables, in the
# namespace where /usr and /etc are the package's; its pid in svc_last.
svc_start() {
	if [ "$how" = namespace ]; then
		unshare -m sh -c 'mount -t overlay nova-usr -o lowerdir="$1/usr":/usr /usr &&
			mount -t overlay nova-etc -o lowerdir="$1/etc":/etc /etc || exit 97
			envfile=$2 uid=$3 gid=$4; shift 4
			exec env -i $SVC_ENV sh -c "set -a; . $envfile; set +a;
				exec setpriv --reuid=$uid --regid=$gid --clear-groups $*"' \
			sh "$root" "$2" "$nova_uid" "$nova_gid" "$1" >"$5" 2>"$6" &
	else
		env -i $svc_env sh -c "set -a; . '$root$2'; $3='$root$4'; set +a;
			exec setpriv --reuid=$nova_uid --regid=$nova_gid --clear-groups $root$1" \
			>"$5" 2>"$6" &
	fi
	svc_last=$!
}
svc_start "$exec_line" "$envfile" NOVA_CONFIG /etc/nova/novad.yaml "$T_WORK/svc.log" "$T_WORK/svc.log"
svc_pid=$svc_last
i=0
while [ ! -s "$state/novad.url" ] && kill -0 "$svc_pid" 2>/dev/null && [ $i -lt 300 ]; do
	i=$((i + 1)); sleep 0.1
done
url=$(cat "$state/novad.url" 2>/dev/null)
why="no novad.url; log: $(tail -c 600 "$T_WORK/svc.log")"
t_check "novad from ExecStart comes up" test -n "$url"
code=$(curl -s -o "$T_WORK/healthz" -w '%{http_code}' "$url/healthz" 2>/dev/null)
why="status $code: $(head -c 200 "$T_WORK/healthz" 2>/dev/null)"
t_check "its /healthz answers 200" test "$code" = 200
if [ "$how" = namespace ]; then
	why=$(grep 'configuration' "$T_WORK/svc.log" | head -2)
	t_check "without -c it read /etc/nova/novad.yaml, its default" \
		grep -q '"msg":"configuration read".*"file":"/etc/nova/novad.yaml".*"from":"default"' \
		"$T_WORK/svc.log"
else
	why=$(grep 'configuration' "$T_WORK/svc.log" | head -2)
	t_check "without -c it read the file NOVA_CONFIG names" \
		grep -q '"msg":"configuration read".*"file":"[^"]*/etc/nova/novad.yaml".*"from":"NOVA_CONFIG"' \
		"$T_WORK/svc.log"
fi
why=$(ps -o uid= -p "$svc_pid" 2>&1)
t_check "it runs as the unit's user" test "$(ps -o uid= -p "$svc_pid" | tr -d ' ')" = "$nova_uid"
why=$(ls -ln "$state" 2>&1)
t_check "its state (generated admin token, 0600) is in STATE_DIRECTORY" \
	test "$(stat -c '%u %a' "$state/admin_token" 2>/dev/null)" = "$nova_uid 600"

# --- nova-router from its unit, with its key in the EnvironmentFile -----
runit=$(dirname "$unit")/nova-router.service
rexec=$(sed -n 's/^ExecStart=//p' "$runit" 2>/dev/null)
renv=$(sed -n 's/^EnvironmentFile=//p' "$runit" 2>/dev/null)
why="ExecStart='$rexec' EnvironmentFile='$renv' $(grep '^Condition' "$runit")"
t_check "nova-router.service runs the installed router, its key from a file it needs" \
	sh -c "[ '$rexec' = /usr/bin/nova-router ] && [ '$renv' = /etc/nova/nova-router.env ] &&
	       grep -qx 'ConditionPathExists=/etc/nova/nova-router.env' '$runit'"
rkey=$(NOVA_SERVER="$url" NOVA_STATE_DIR="$state" "$B/novactl" apikey create svc-router --scope router 2>/dev/null)
ckey=$(NOVA_SERVER="$url" NOVA_STATE_DIR="$state" "$B/novactl" apikey create svc-client --scope inference 2>/dev/null)
# The key as an admin writes it; the gateway and the listen address
# override the file's (this novad's port is not 8420, and 8430 may be taken).
(umask 077; printf 'NOVA_TOKEN=%s\nNOVA_GATEWAY=%s\nNOVA_ROUTER_LISTEN=127.0.0.1:0\n' \
	"$rkey" "$url" >"$root$renv")
(umask 077; printf 'Authorization: Bearer %s\n' "$ckey" >"$T_WORK/client-auth")
svc_start "$rexec" "$renv" NOVA_ROUTER_CONFIG /etc/nova/nova-router.yaml \
	"$T_WORK/router.port" "$T_WORK/router.log"
router_pid=$svc_last
i=0
while [ ! -s "$T_WORK/router.port" ] && kill -0 "$router_pid" 2>/dev/null && [ $i -lt 100 ]; do
	i=$((i + 1)); sleep 0.1
done
rport=$(head -1 "$T_WORK/router.port" 2>/dev/null)
code=
i=0
while [ -n "$rport" ] && [ "$code" != 200 ] && [ $i -lt 50 ]; do
	code=$(curl -s -o "$T_WORK/models" -w '%{http_code}' -H @"$T_WORK/client-auth" \
		"http://127.0.0.1:$rport/v1/models" 2>/dev/null)
	i=$((i + 1)); [ "$code" = 200 ] || sleep 0.1
done
why="port '$rport', status '$code'; log: $(tail -c 600 "$T_WORK/router.log")"
t_check "nova-router from ExecStart serves /v1/models with its key from the EnvironmentFile" \
	test "$code" = 200
if [ "$how" = namespace ]; then
	why=$(grep 'configuration' "$T_WORK/router.log" | head -2)
	t_check "without --config it read /etc/nova/nova-router.yaml, its default" \
		grep -q '"msg":"configuration read".*"file":"/etc/nova/nova-router.yaml".*"from":"default"' \
		"$T_WORK/router.log"
else
	why=$(grep 'configuration' "$T_WORK/router.log" | head -2)
	t_check "without --config it read the file NOVA_ROUTER_CONFIG names" \
		grep -q '"msg":"configuration read".*"from":"NOVA_ROUTER_CONFIG"' "$T_WORK/router.log"
fi
# (The variable's name stays in the environ block the kernel keeps; the
# router overwrote its value.)
why=$(tr '\0' ' ' </proc/"$router_pid"/environ 2>&1 | head -c 300)
t_check "the router's key is out of its environment and off its command line" \
	sh -c "[ -r /proc/$router_pid/environ ] && ! grep -aq 'sk-nova' /proc/$router_pid/environ &&
	       ! grep -aq 'sk-nova' /proc/$router_pid/cmdline"
kill -TERM "$router_pid" 2>/dev/null
wait "$router_pid"; rc=$?
why="exit $rc"
t_check "the router stops cleanly on SIGTERM" test "$rc" -eq 0

kill -TERM "$svc_pid" 2>/dev/null
wait "$svc_pid"; rc=$?
svc_pid=
why="exit $rc"
t_check "novad stops cleanly on SIGTERM" test "$rc" -eq 0

# --- purge -------------------------------------------------------------
if dpkg --root="$root" --log="$T_WORK/dpkg.log" --force-script-chrootless --force-depends \
	--purge nova >"$T_WORK/dpkg-purge.out" 2>&1; then
	t_pass "dpkg purges the package from the throwaway root"
else
	t_fail "dpkg purges the package from the throwaway root" "$(tail -5 "$T_WORK/dpkg-purge.out")"
fi
why=$(find "$root/etc/nova" "$root/etc/systemd" 2>&1)
t_check "a purge leaves no unit enabled and no /etc/nova" \
	sh -c "[ ! -e '$root/etc/systemd/system/multi-user.target.wants/novad.service' ] &&
	       [ ! -e '$root/etc/nova/novad.yaml' ]"
exit 0
