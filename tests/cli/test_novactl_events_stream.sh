#!/bin/sh
# novactl events --watch --kind against a real novad and PostgreSQL: one
# line per event of the kinds asked, in id order without a gap, from the
# moment the watch began; -o json lines are the events; a bad kind is
# refused by novad (400, exit 2), --kind without --watch by novactl; SIGINT
# ends the watch with 0 even while the stream is quiet.
set -u
. tests/support/lib.sh
unset NOVA_CONTEXT
export HOME="$T_WORK/home" XDG_CONFIG_HOME=
mkdir -p "$HOME"
nova_start || { t_fail "novad starts" "see log"; exit 0; }
export NOVA_SERVER="$NOVA_URL" NOVA_TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
C="$B/novactl"
BG=
trap 'for p in $BG; do kill $p 2>/dev/null; done; t_cleanup' EXIT

# wait_lines N FILE [SECONDS]: until FILE has N lines.
wait_lines() {
	wl_i=0
	while [ "$(wc -l <"$2" 2>/dev/null || echo 0)" -lt "$1" ]; do
		wl_i=$((wl_i + 1)); [ $wl_i -gt $((${3:-10} * 10)) ] && return 1; sleep 0.1
	done
}

t_expect_exit 0 "novactl creates a pool" "$C" pool create p --provider fake
pool_id=$(t_sql "SELECT id FROM pools WHERE name = 'p'")
t_sql "INSERT INTO pool_events (pool_id, kind, message) VALUES ('$pool_id', 'test', 'before')" >/dev/null
h0=$(t_sql "SELECT last_id FROM event_stream_head")

"$C" events --watch --kind pool -o json >"$T_WORK/pj" 2>"$T_WORK/pj.err" &
pj=$!; BG="$BG $pj"
"$C" events --watch --kind node,pool >"$T_WORK/np" 2>"$T_WORK/np.err" &
np=$!; BG="$BG $np"
# The watches begin at the head when they open: wait until both are open
# (novad counts them) before changing anything.
i=0
until curl -s -H "Authorization: Bearer $NOVA_TOKEN" "$NOVA_URL/metrics" | grep -q '^nova_routes_watchers 2$'; do
	i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1
done

for m in one two three; do
	t_sql "INSERT INTO pool_events (pool_id, kind, message) VALUES ('$pool_id', 'test', '$m')" >/dev/null
done
t_sql "INSERT INTO nodes (pool_id, name) VALUES ('$pool_id', 'n1')" >/dev/null
t_sql "INSERT INTO pool_events (pool_id, kind, message) VALUES ('$pool_id', 'test', 'four')" >/dev/null
h1=$(t_sql "SELECT last_id FROM event_stream_head")
pool_ids=$(t_sql "SELECT id FROM event_stream WHERE id > $h0 AND id <= $h1 AND kind = 'pool' ORDER BY id" | tr '\n' ' ')
np_ids=$(t_sql "SELECT id FROM event_stream WHERE id > $h0 AND id <= $h1 AND kind IN ('pool', 'node') ORDER BY id" | tr '\n' ' ')

wait_lines 4 "$T_WORK/pj" 10
got=$(sed -n 's/^{"id":\([0-9]*\),"kind":"pool".*/\1/p' "$T_WORK/pj" | tr '\n' ' ')
[ "$got" = "$pool_ids" ] && [ "$(wc -l <"$T_WORK/pj")" -eq 4 ] &&
	t_pass "-o json: one line per pool event, in order, none before the watch" ||
	t_fail "-o json: the pool events" "got [$got], want [$pool_ids]: $(cat "$T_WORK/pj" "$T_WORK/pj.err")"
grep -q '"message":"three"' "$T_WORK/pj" && t_pass "-o json lines carry the event's data" ||
	t_fail "-o json lines carry the event's data" "$(cat "$T_WORK/pj")"

wait_lines 5 "$T_WORK/np" 10
got=$(awk '{print $1}' "$T_WORK/np" | tr '\n' ' ')
[ "$got" = "$np_ids" ] && t_pass "--kind node,pool: a line per event of either kind, in id order" ||
	t_fail "--kind node,pool" "got [$got], want [$np_ids]: $(cat "$T_WORK/np" "$T_WORK/np.err")"
grep -q ' node  *n1  (new) -> provisioning' "$T_WORK/np" && t_pass "a node's line says its transition" ||
	t_fail "a node's line says its transition" "$(cat "$T_WORK/np")"
grep -q ' pool  .*test: four' "$T_WORK/np" && t_pass "a pool's line says its kind and message" ||
	t_fail "a pool's line says its kind and message" "$(cat "$T_WORK/np")"

# SIGINT while quiet: both end with 0.
kill -INT $pj; wait $pj; rc=$?
[ "$rc" -eq 0 ] && t_pass "events --watch --kind exits 0 on SIGINT" || t_fail "exits 0 on SIGINT" "exit $rc"
kill -INT $np; wait $np; rc=$?
[ "$rc" -eq 0 ] && t_pass "events --watch --kind node,pool exits 0 on SIGINT" || t_fail "exits 0 on SIGINT" "exit $rc"
BG=

t_expect_exit 2 "a bad kind is refused" timeout 10 "$C" events --watch --kind nodes
t_expect_out "unknown event kind" "the refusal names the kind"
t_expect_exit 2 "--kind without --watch is a usage error" "$C" events --kind node
t_expect_exit 2 "--kind with --pool is a usage error" "$C" events --watch --kind node --pool p
exit 0
