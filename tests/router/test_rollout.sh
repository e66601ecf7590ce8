#!/bin/sh
# Rollouts with real processes (issue 18): novad, an lpu pool of mock
# agents (nova-sidecar running nova-mock-engine per replica), nova-router in
# front, and four clients sending requests the whole time.
#   - A rolling update 1 -> 2 of 3 replicas (max surge 1, max unavailable 0):
#     it completes, every replica runs version 2, and no request fails.
#   - A canary of version 3 at 20%: the share of requests the router sends
#     to version 3 (its own per-version counters) is 20% within a tolerance;
#     promote finishes it, and no request fails.
#   - A rollback of that complete rollout: back to version 2, no failure.
#   - novad killed (kill -9) in the middle of a rolling update and started
#     again: the rollout goes on and completes, no twin replica (the
#     agents' engines are counted), none lost, no request failed.
#   - Automatic rollback: a canary of version 4, whose engines fail half of
#     their requests, is rolled back by the guard, and the event says why;
#     so is a canary of version 5, whose first token comes 3 s late (its
#     TTFT p95 against the previous version's).
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_WORKER_LEASE_MS=3000
RPID=
CLIENTS=
trap 'kill $RPID $CLIENTS 2>/dev/null; pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"

model() { # model VERSION [MOCK...]
	cat >"$T_WORK/model$1.yaml" <<EOM
name: demo
version: "$1"
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"], mock: {tokens_per_second: 100${2:+, $2}}}
stages: [{name: main, accelerator_type: LPU, accelerators: 1}]
EOM
	"$C" model register -f "$T_WORK/model$1.yaml" >/dev/null
}
"$C" pool create racks --provider lpu --config \
	"{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r1,c1r2\",\"mock_agents\":true}" \
	>/dev/null && model 1 && model 2 && model 3 && model 4 "error_percent: 50" &&
	model 5 "latency_ms: 3000" &&
	"$C" deploy demo:1 --pool racks --replicas 3 --name demo >/dev/null
if t_wait_sql "SELECT state FROM deployments" running 30 && t_wait_routed 10 demo 3; then
	t_pass "three replicas of version 1 run and are routed"
else t_fail "replicas run" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; exit 0; fi

ROUTER_KEY=$("$C" apikey create router --scope router 2>/dev/null)
INF=$("$C" apikey create app --scope inference 2>/dev/null)
OPS=$("$C" apikey create ops --scope write 2>/dev/null)
NOVA_TOKEN=$ROUTER_KEY "$B/nova-router" --gateway "$NOVA_URL" --listen 127.0.0.1:0 --threads 2 \
	>"$T_WORK/router.port" 2>"$T_WORK/router.log" &
RPID=$!
i=0; while [ ! -s "$T_WORK/router.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
R="http://127.0.0.1:$(head -1 "$T_WORK/router.port")"
CHAT='{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":8}'
i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' "$R/v1/chat/completions" -H "Authorization: Bearer $INF" \
	-H 'Content-Type: application/json' -d "$CHAT")" = 200 ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done

patch() {
	curl -s -o "$T_WORK/patch.body" -w '%{http_code}' -X PATCH "$NOVA_URL/v1/deployments/demo" \
		-H "Authorization: Bearer $OPS" -H 'Content-Type: application/json' -d "$1"
}
post() {
	curl -s -o "$T_WORK/post.body" -w '%{http_code}' -X POST "$NOVA_URL/v1/deployments/demo/$1" \
		-H "Authorization: Bearer $OPS"
}
rollout_state() { t_sql "SELECT state FROM rollouts ORDER BY id DESC LIMIT 1"; }
events() { t_sql "SELECT reason FROM deployment_events WHERE kind = 'rollout' ORDER BY id"; }
versions() {
	t_sql "SELECT string_agg(m.version, ',' ORDER BY m.version) FROM replicas r JOIN models m ON m.id = r.model_id WHERE r.state = 'ready'"
}

# Four clients, back to back, for the whole test: each status with the
# phase it fell in (the file $T_WORK/phase).
echo setup >"$T_WORK/phase"
client() {
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$R/v1/chat/completions" \
			-H "Authorization: Bearer $INF" -H 'Content-Type: application/json' -d "$CHAT")
		echo "$(cat "$T_WORK/phase") $code"
	done >"$T_WORK/client.$1"
}
for n in 1 2 3 4; do client $n & CLIENTS="$CLIENTS $!"; done
# failed PHASE: the requests of PHASE not answered 200, and how many there were.
failed() {
	cat "$T_WORK"/client.* | awk -v p="$1" '$1 == p { n++; if ($2 != "200") f++ } END { printf "%d of %d", f, n }'
}
no_failure() { # no_failure PHASE WHAT
	f=$(failed "$1")
	case $f in "0 of 0") t_fail "$2" "no request ran";; "0 of "*) t_pass "$2 ($f requests failed)";;
	*) t_fail "$2" "$f requests failed: $(cat "$T_WORK"/client.* | awk -v p="$1" '$1 == p' | sort | uniq -c | tr '\n' ' ')";; esac
}
sleep 1

# 1. Rolling update 1 -> 2.
echo rolling >"$T_WORK/phase"
started=$(date +%s%N)
code=$(patch '{"model":"demo:2","rollout":{"max_surge":1,"max_unavailable":0}}')
[ "$code" = 200 ] && t_pass "PATCH starts a rolling update 1 -> 2" || t_fail "PATCH model" "$code $(cat "$T_WORK/patch.body")"
max_live=0
i=0
while [ "$(rollout_state)" = rolling ] && [ $i -lt 600 ]; do
	live=$(t_sql "SELECT count(*) FROM replicas WHERE state <> 'stopping'")
	[ "$live" -gt "$max_live" ] && max_live=$live
	i=$((i + 1)); sleep 0.1
done
if [ "$(rollout_state)" = complete ] && [ "$(versions)" = "2,2,2" ]; then
	t_pass "the rolling update completes in $((($(date +%s%N) - started) / 1000000)) ms: every replica runs version 2"
else t_fail "rolling update" "$(rollout_state): $(versions); $(t_sql "SELECT waiting_for FROM rollouts ORDER BY id DESC LIMIT 1")"; fi
[ "$max_live" -le 4 ] && t_pass "never more than 3 + max surge 1 replicas ($max_live)" || t_fail "surge" "$max_live live"
events | grep -q '^rollout to version 2 complete: 3 replicas ready$' && t_pass "the events tell the rollout" ||
	t_fail "events" "$(events)"
t_wait_routed 10 demo 3 && grep -q '"version": *"2"' "$T_WORK/out" && ! grep -q '"version": *"1"' "$T_WORK/out" &&
	t_pass "the routes name version 2 only" || t_fail "routes after the update" "$(cat "$T_WORK/out")"
sleep 1
no_failure rolling "no request failed during the rolling update"

# 2. A canary of version 3 at 20%, measured through the router.
echo canary >"$T_WORK/phase"
code=$(patch '{"model":"demo:3","rollout":{"canary_percent":20}}')
[ "$code" = 200 ] || t_fail "PATCH canary" "$code $(cat "$T_WORK/patch.body")"
if t_wait_sql "SELECT count(*) FROM replicas r JOIN models m ON m.id = r.model_id WHERE m.version = '3' AND r.state = 'ready'" 1 30 &&
   t_wait_routed 10 demo 4; then
	t_pass "the canary runs one replica of version 3 beside the 3 of version 2"
else t_fail "canary up" "$(versions)"; fi
sleep 1 # the router has the split
vreq() { curl -s "$R/metrics" | sed -n "s/^nova_router_version_requests_total{model=\"demo\",version=\"$1\"} //p"; }
a2=$(vreq 2); a3=$(vreq 3)
sleep 12
b2=$(vreq 2); b3=$(vreq 3)
n2=$((${b2:-0} - ${a2:-0})); n3=$((${b3:-0} - ${a3:-0}))
share=$(( n3 * 1000 / (n2 + n3 > 0 ? n2 + n3 : 1) ))
if [ $((n2 + n3)) -ge 100 ] && [ "$share" -ge 120 ] && [ "$share" -le 280 ]; then
	t_pass "the router sends $((share / 10)).$((share % 10))% of the requests to version 3 (20% asked; $n3 of $((n2 + n3)))"
else t_fail "canary share" "$n3 of $((n2 + n3)) ($share per mille)"; fi
code=$(post promote)
[ "$code" = 200 ] && t_pass "promote" || t_fail "promote" "$code $(cat "$T_WORK/post.body")"
if t_wait_sql "SELECT state FROM rollouts ORDER BY id DESC LIMIT 1" complete 60 && [ "$(versions)" = "3,3,3" ]; then
	t_pass "the promoted canary completes: every replica runs version 3"
else t_fail "promote completes" "$(rollout_state) $(versions)"; fi
sleep 1
no_failure canary "no request failed during the canary and its promotion"

# 3. Roll the complete rollout back: a rollout back to version 2.
echo rollback >"$T_WORK/phase"
code=$(post rollback)
[ "$code" = 200 ] && t_pass "rollback of the complete rollout" || t_fail "rollback" "$code $(cat "$T_WORK/post.body")"
if t_wait_sql "SELECT count(*) FROM rollouts WHERE state = 'complete' AND to_version = '2' AND from_version = '3'" 1 60 &&
   [ "$(versions)" = "2,2,2" ]; then
	t_pass "back at version 2"
else t_fail "rolled back" "$(rollout_state) $(versions)"; fi
sleep 1
no_failure rollback "no request failed during the rollback"

# 4. novad killed in the middle of a rolling update.
echo crash >"$T_WORK/phase"
code=$(patch '{"model":"demo:3","rollout":{"max_surge":1,"max_unavailable":0,"drain_timeout_s":5}}')
[ "$code" = 200 ] || t_fail "PATCH 2 -> 3" "$code $(cat "$T_WORK/patch.body")"
if t_wait_sql "SELECT count(*) > 0 FROM replicas r JOIN models m ON m.id = r.model_id WHERE m.version = '3' AND r.state = 'ready'" t 30; then
	kill -KILL "$T_PID"; wait "$T_PID" 2>/dev/null; T_PID=
	t_pass "novad killed with the rollout under way ($(versions))"
else t_fail "a new replica before the kill" "$(versions)"; fi
sleep 2
# On its port: the agents' sidecars keep the gateway they were given.
T_LISTEN="127.0.0.1:${NOVA_URL##*:}" nova_start || { t_fail "novad restarts" "see log"; exit 0; }
if t_wait_sql "SELECT state FROM rollouts ORDER BY id DESC LIMIT 1" complete 60 && [ "$(versions)" = "3,3,3" ]; then
	t_pass "after the restart the rollout goes on and completes"
else t_fail "resume" "$(rollout_state) $(versions) $(t_sql "SELECT waiting_for FROM rollouts ORDER BY id DESC LIMIT 1")"; fi
# One engine per replica: no twin left running, none lost.
sleep 2
# This test's engines: those whose sidecar reports to this novad.
engines=0
for pid in $(pgrep -f "nova-mock-engine --port" || true); do
	ppid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
	tr '\0' ' ' <"/proc/$ppid/cmdline" 2>/dev/null | grep -q -- "--gateway $NOVA_URL " && engines=$((engines + 1))
done
[ "$engines" = 3 ] && t_pass "three engines run, one per replica" ||
	t_fail "engines" "$engines engines for $(t_sql "SELECT count(*) FROM replicas")"
sleep 1
no_failure crash "no request failed across the kill and the restart"

# 5. Automatic rollback: version 4 fails half of its requests.
echo auto >"$T_WORK/phase"
code=$(patch '{"model":"demo:4","rollout":{"canary_percent":50,"min_requests":10}}')
[ "$code" = 200 ] || t_fail "PATCH canary 4" "$code $(cat "$T_WORK/patch.body")"
if t_wait_sql "SELECT state FROM rollouts ORDER BY id DESC LIMIT 1" rolled_back 60; then
	t_pass "the guard rolls the failing canary back"
else t_fail "auto rollback" "$(rollout_state): $(events | tail -2)"; fi
events | grep -q '^rolling back 4 -> 3: automatic rollback: error rate of version 4 ' &&
	t_pass "the event says why: $(events | grep 'automatic rollback' | tail -1)" || t_fail "auto rollback event" "$(events | tail -3)"
[ "$(versions)" = "3,3,3" ] && t_pass "version 3 serves on" || t_fail "after the rollback" "$(versions)"
t_wait_routed 10 demo 3 && ! grep -q '"version": *"4"' "$T_WORK/out" && t_pass "version 4 left the routes" ||
	t_fail "routes after the rollback" "$(cat "$T_WORK/out")"

# 6. Automatic rollback on time to first token: version 5 answers 3 s late.
echo slow >"$T_WORK/phase"
code=$(patch '{"model":"demo:5","rollout":{"canary_percent":50,"min_requests":10,"max_ttft_ratio":3}}')
[ "$code" = 200 ] || t_fail "PATCH canary 5" "$code $(cat "$T_WORK/patch.body")"
if t_wait_sql "SELECT count(*) FROM rollouts WHERE state = 'rolled_back' AND to_version = '5'" 1 90; then
	t_pass "the guard rolls the slow canary back"
else t_fail "TTFT rollback" "$(rollout_state): $(events | tail -2)"; fi
events | grep -q '^rolling back 5 -> 3: automatic rollback: TTFT p95 of version 5 at least [0-9]* ms (about [0-9]*) > 3.00 x version 3.s at most ' &&
	t_pass "the event says why: $(events | grep 'TTFT p95' | tail -1)" || t_fail "TTFT event" "$(events | tail -3)"
no_failure slow "a slow canary fails no request"
echo done >"$T_WORK/phase"
kill $CLIENTS 2>/dev/null
CLIENTS=
