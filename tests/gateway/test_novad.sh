#!/bin/sh
# novad as a real process: the embedded PostgreSQL (created, reused across
# restarts, stopped on exit), the generated admin token, bad configuration,
# graceful shutdown. Prints PASS:/FAIL: lines for tests/run.sh.
set -u
B=${NOVA_BUILD:?run through tests/run.sh}
work=$(mktemp -d /tmp/nova-novad-test.XXXXXX)
chmod 0755 "$work"
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }

start() { # start novad with the embedded database; wait for its URL
	rm -f "$work/state/novad.url"
	env -u NOVA_DATABASE_URL NOVA_STATE_DIR="$work/state" NOVA_LISTEN=127.0.0.1:0 \
		NOVA_ENABLE_FAKE_PROVIDER=1 "$B/novad" "$@" >>"$work/novad.log" 2>&1 &
	pid=$!
	i=0
	while [ ! -s "$work/state/novad.url" ]; do
		kill -0 "$pid" 2>/dev/null || { pid=; return 1; }
		i=$((i + 1)); [ $i -gt 600 ] && return 1
		sleep 0.1
	done
	URL=$(cat "$work/state/novad.url")
}
stop() {
	kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
	return $rc
}
ctl() { NOVA_STATE_DIR="$work/state" "$B/novactl" "$@"; }
postmasters() { pgrep -f "postgres -D $work/state/postgres" | wc -l; }

# 1. First start creates the cluster and the admin token.
if start; then pass "novad starts with an embedded database"; else
	fail "novad starts with an embedded database" "$(tail -5 "$work/novad.log")"; exit 0; fi
if [ "$(stat -c %a "$work/state/admin_token")" = 600 ]; then pass "admin token file is 0600"
else fail "admin token file is 0600" "mode $(stat -c %a "$work/state/admin_token")"; fi
tok=$(cat "$work/state/admin_token")
if grep -q -- "$tok" "$work/novad.log"; then fail "admin token never logged" "found in log"
else pass "admin token never logged"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")
[ "$code" = 200 ] && pass "readyz is 200 on the embedded database" || fail "readyz" "$code"
if ctl pool create keep --provider fake >/dev/null 2>&1; then pass "novactl finds the local admin token"
else fail "novactl finds the local admin token" "create failed"; fi

# 2. Graceful stop stops the database too.
if stop; then pass "SIGTERM exits 0"; else fail "SIGTERM exits 0" "exit $rc"; fi
n=$(postmasters)
[ "$n" -eq 0 ] && pass "database stopped with novad" || fail "database stopped with novad" "$n left"

# 3. A second start reuses the cluster: the pool is still there.
if start && ctl pool get keep >/dev/null 2>&1; then pass "restart reuses the cluster"
else fail "restart reuses the cluster" "pool lost"; fi
# A killed novad leaves its database running; the next start adopts it.
kill -KILL "$pid"; wait "$pid" 2>/dev/null; pid=
if start && ctl pool get keep >/dev/null 2>&1; then pass "start after kill -9 adopts the running cluster"
else fail "start after kill -9 adopts the running cluster" "$(tail -3 "$work/novad.log")"; fi
stop
n=$(postmasters)
[ "$n" -eq 0 ] && pass "no postgres left after adopt and stop" || fail "no postgres left after adopt and stop" "$n"

# 4. Bad configuration is refused with file:line:column, exit 2, nothing started.
printf 'listen: 127.0.0.1:0\nhttp:\n  threads: lots\n' >"$work/bad.yaml"
out=$("$B/novad" -c "$work/bad.yaml" 2>&1); rc=$?
case "$out" in
*"$work/bad.yaml:3:12:"*) [ $rc -eq 2 ] && pass "bad config file names file:line:column" ||
	fail "bad config file names file:line:column" "exit $rc" ;;
*) fail "bad config file names file:line:column" "$out" ;;
esac
out=$("$B/novad" --no-such-flag 2>&1); rc=$?
[ $rc -eq 2 ] && pass "unknown flag exits 2" || fail "unknown flag exits 2" "exit $rc: $out"
out=$(NOVA_HTTP_THREADS=abc "$B/novad" 2>&1); rc=$?
case "$out" in *NOVA_HTTP_THREADS*) [ $rc -eq 2 ] && pass "bad environment value exits 2" ||
	fail "bad environment value exits 2" "exit $rc";; *) fail "bad environment value exits 2" "$out";; esac

# 4b. The configuration's checks run before the database is touched: a
# too-short admin token (configured, or in the token file) and a bad listen
# address exit 2 with the error, and no cluster is created under
# <state_dir>/postgres.
refused_early() { # refused_early NAME WANT_TEXT STATE_DIR [ENV...]
	name=$1; want=$2; sd=$3; shift 3
	out=$(env -u NOVA_DATABASE_URL -u NOVA_ADMIN_TOKEN NOVA_STATE_DIR="$sd" NOVA_LISTEN=127.0.0.1:0 \
		"$@" "$B/novad" 2>&1); rc=$?
	case "$out" in
	*"$want"*)
		if [ $rc -eq 2 ] && [ ! -e "$sd/postgres" ]; then pass "$name"
		else fail "$name" "exit $rc, postgres dir: $(ls -d "$sd/postgres" 2>&1)"; fi ;;
	*) fail "$name" "exit $rc: $out" ;;
	esac
}
refused_early "a short admin token is refused before initdb" "at least 16 characters" \
	"$work/state3" NOVA_ADMIN_TOKEN=short
mkdir -p "$work/state4" && chmod 0700 "$work/state4" && printf 'short\n' >"$work/state4/admin_token"
refused_early "a short admin token file is refused before initdb" "at least 16 characters" \
	"$work/state4"
refused_early "a bad listen address is refused before initdb" "not HOST:PORT" \
	"$work/state5" NOVA_LISTEN=no-port-here

# 5. An external database URL is used instead of the embedded one.
if [ -n "${NOVA_TEST_PGHOST:-}" ]; then
	db=novad_ext_$$
	psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "CREATE DATABASE $db" >/dev/null
	rm -rf "$work/state2"; mkdir -p "$work/state2"
	NOVA_STATE_DIR="$work/state2" NOVA_LISTEN=127.0.0.1:0 \
	NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$db user=nova" "$B/novad" >>"$work/novad2.log" 2>&1 &
	pid=$!
	i=0; while [ ! -s "$work/state2/novad.url" ] && [ $i -lt 300 ]; do i=$((i+1)); sleep 0.1; done
	n=$(psql -h "$NOVA_TEST_PGHOST" -U nova -d "$db" -tAc "SELECT count(*) FROM nova_migrations")
	if [ ! -d "$work/state2/postgres" ] && [ "$n" -ge 1 ]; then pass "database url is used, no embedded cluster"
	else fail "database url is used, no embedded cluster" "migrations=$n"; fi
	stop
fi
exit 0
