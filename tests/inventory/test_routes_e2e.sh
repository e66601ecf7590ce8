#!/bin/sh
# Heartbeats and routes end to end: a real novad, a node's token as the
# provider holds it, heartbeats over HTTP with curl, `novactl routes` and
# `novactl routes --watch` seeing a replica arrive and leave when its node
# goes silent.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=200 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
t_fake_deploy || { t_fail "replica placed" "no"; exit 0; }
replica=$(t_sql "SELECT id FROM replicas")
node=$T_NODE token=$T_TOKEN
case "$token" in nova-node-*) t_pass "the provider holds the node's token" ;;
*) t_fail "the provider holds the node's token" "$token" ;; esac

beat() { # beat SEQ STATE [OUT]: the answer goes to OUT ($T_WORK/beat)
	curl -s -o "${3:-$T_WORK/beat}" -w '%{http_code}' -H "Authorization: Bearer $token" \
		"$NOVA_URL/v1/nodes/$node/heartbeat" \
		-d "{\"seq\":$1,\"replicas\":[{\"replica_id\":\"$replica\",\"state\":\"$2\",\"endpoint\":\"http://127.0.0.1:7001\",\"load\":{\"queue_depth\":2}}]}"
}
"$C" routes --watch >"$T_WORK/watch" 2>&1 &
trap 'kill $watch $beater 2>/dev/null; t_cleanup' EXIT
watch=$!
# The watch has its snapshot (no endpoint yet) before the first heartbeat,
# so the replica's arrival is an update it must see.
i=0; until grep -q "^snapshot" "$T_WORK/watch" 2>/dev/null || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
code=$(beat 1000 ready)
[ "$code" = 200 ] && t_pass "heartbeat with the node token accepted" || t_fail "heartbeat accepted" "$code $(cat "$T_WORK/beat")"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer nova-node-wrong" \
	"$NOVA_URL/v1/nodes/$node/heartbeat" -d '{"seq":1001}')
[ "$code" = 401 ] && t_pass "a wrong token is refused" || t_fail "a wrong token is refused" "$code"
# Keep heartbeating, as a sidecar does, while the routes are looked at.
( seq=1001; while :; do seq=$((seq + 1)); beat $seq ready /dev/null >/dev/null; sleep 0.1; done ) &
beater=$!
if t_wait_sql "SELECT state FROM deployments" running; then t_pass "the deployment is running"
else t_fail "the deployment is running" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi

i=0; until "$C" routes >"$T_WORK/out" 2>&1 && grep -q 7001 "$T_WORK/out"; do
	i=$((i + 1)); [ $i -gt 50 ] && break; sleep 0.1; done
t_expect_out "^mistral-7b-lora  *-  *1  *http://127.0.0.1:7001  *n-[0-9a-f-]*  *2" "novactl routes shows the endpoint with its load"
t_expect_out "^mistral-7b-lora  *sql-expert  *1  *http://127.0.0.1:7001" "and the static LoRA adapters"
t_expect_exit 0 "routes --model" "$C" routes --model support-tone
t_expect_exit 3 "routes for an unknown model exits 3" "$C" routes --model nope

# Silence: the node is unhealthy after 3 intervals and its replica leaves.
kill $beater; wait $beater 2>/dev/null
if t_wait_sql "SELECT state FROM nodes" unhealthy; then t_pass "a silent node becomes unhealthy"
else t_fail "a silent node becomes unhealthy" "$(t_sql "SELECT state FROM nodes")"; fi
i=0; while ! grep -q "mistral-7b-lora -> 0 endpoints" "$T_WORK/watch" && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
grep -q "^snapshot" "$T_WORK/watch" && t_pass "routes --watch starts with a snapshot" || t_fail "watch snapshot" "$(cat "$T_WORK/watch")"
grep -q "mistral-7b-lora -> 1 endpoint" "$T_WORK/watch" && t_pass "routes --watch saw the replica arrive" || t_fail "watch arrive" "$(cat "$T_WORK/watch")"
grep -q "mistral-7b-lora -> 0 endpoints" "$T_WORK/watch" && t_pass "routes --watch saw it leave" || t_fail "watch leave" "$(cat "$T_WORK/watch")"
# It speaks again, and keeps speaking (one beat alone would make it ready
# only until the next sweep, 3 intervals later): back.
( seq=2000000; while :; do seq=$((seq + 1)); beat $seq ready /dev/null >/dev/null; sleep 0.1; done ) &
beater=$!
if t_wait_sql "SELECT state FROM nodes" ready; then t_pass "the node comes back when it heartbeats"
else t_fail "the node comes back" "$(t_sql "SELECT state FROM nodes")"; fi
code=$(beat 1500000 ready)
grep -q '"accepted":false' "$T_WORK/beat" && t_pass "a late heartbeat is ignored" || t_fail "late heartbeat" "$(cat "$T_WORK/beat")"
kill $watch $beater 2>/dev/null; wait $watch $beater 2>/dev/null
exit 0
