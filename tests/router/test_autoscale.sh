#!/bin/sh
# The autoscaler with real processes: novad, an lpu pool of three racks'
# nodes with mock agents (nova-sidecar running nova-mock-engine, one
# sequence at a time, so requests queue in the engine as in a real one),
# nova-router in front, and a load of clients.
#   - A load step raises the count (1 -> 3), the event says why (the queue
#     depth per replica against the target), and the new replicas are
#     routed while the load runs; every request of the load succeeds.
#   - The load ends: the count stays for the stabilization window and falls
#     after it, not before.
#   - min 0 with idle_s: the deployment goes to zero when idle; a request
#     through the router wakes it (0 -> 1, the event says a request waited)
#     and is answered 200.
#   - standby_replicas: a standby runs ready out of the routes; a scale-up
#     routes that same replica, and a new standby starts behind it.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
RPID=
trap 'kill $RPID 2>/dev/null; pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"

# One sequence at a time, 40 tokens a second: a 20-token request holds its
# engine for half a second, and the others wait in its queue.
cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"], mock: {max_num_seqs: 1, tokens_per_second: 40}}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
"$C" pool create racks --provider lpu --config \
	"{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r1,c1r2\",\"mock_agents\":true}" >/dev/null &&
	"$C" model register -f "$T_WORK/model.yaml" >/dev/null &&
	"$C" deploy demo --pool racks --replicas 1 --name demo >/dev/null
if t_wait_sql "SELECT state FROM deployments" running 30 && t_wait_routed 10 demo 1; then
	t_pass "one replica runs and is routed"
else t_fail "replica runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; exit 0; fi

ROUTER_KEY=$("$C" apikey create router --scope router 2>/dev/null)
INF=$("$C" apikey create app --scope inference 2>/dev/null)
OPS=$("$C" apikey create ops --scope write 2>/dev/null)
READ=$("$C" apikey create reader --scope read 2>/dev/null)
patch() {
	curl -s -o "$T_WORK/patch.body" -w '%{http_code}' -X PATCH "$NOVA_URL/v1/deployments/demo" \
		-H "Authorization: Bearer $OPS" -H 'Content-Type: application/json' -d "$1"
}
replicas() { t_sql "SELECT replicas FROM deployments WHERE name = 'demo'"; }
scaled_events() { t_sql "SELECT reason FROM deployment_events WHERE kind = 'scaled' ORDER BY id"; }

code=$(patch '{"autoscale":{"min_replicas":1,"max_replicas":3,"target_queue_depth":1,"scale_down_window_s":8}}')
[ "$code" = 200 ] && t_pass "PATCH sets the policy" || t_fail "PATCH autoscale" "$code $(cat "$T_WORK/patch.body")"

NOVA_TOKEN=$ROUTER_KEY "$B/nova-router" --gateway "$NOVA_URL" --listen 127.0.0.1:0 --threads 2 \
	>"$T_WORK/router.port" 2>"$T_WORK/router.log" &
RPID=$!
i=0; while [ ! -s "$T_WORK/router.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
R="http://127.0.0.1:$(head -1 "$T_WORK/router.port")"
CHAT='{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":20}'
i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' "$R/v1/chat/completions" -H "Authorization: Bearer $INF" \
	-H 'Content-Type: application/json' -d "$CHAT")" = 200 ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done

# client N SECONDS: requests back to back for SECONDS; each status on a line
# of $T_WORK/client.N.
client() {
	end=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$end" ]; do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "$R/v1/chat/completions" \
			-H "Authorization: Bearer $INF" -H 'Content-Type: application/json' -d "$CHAT"
	done >"$T_WORK/client.$1"
}

# The step: eight clients for 14 s on one replica that takes one at a time.
step_at=$(date +%s%N)
CLIENTS=
for n in 1 2 3 4 5 6 7 8; do client $n 14 & CLIENTS="$CLIENTS $!"; done
if t_wait_sql "SELECT replicas FROM deployments WHERE name = 'demo'" 3 10; then
	t_pass "the load step raises the count to 3 within $((($(date +%s%N) - step_at) / 1000000)) ms"
else t_fail "scale up" "replicas $(replicas); events: $(scaled_events); $(tail -3 "$T_WORK/novad.log")"; fi
scaled_events | grep -q '^scaled 1 -> 3: queue depth [0-9.]* per replica > target 1' &&
	t_pass "the event says why: $(scaled_events | head -1)" ||
	t_fail "the scale-up event" "$(scaled_events)"
if t_wait_routed 20 demo 3; then
	t_pass "the new replicas are routed $((($(date +%s%N) - step_at) / 1000000)) ms after the step"
else t_fail "three routed" "$(cat "$T_WORK/out")"; fi
wait $CLIENTS
ended_at=$(date +%s)
total=$(cat "$T_WORK"/client.* | wc -l); ok=$(cat "$T_WORK"/client.* | grep -c '^200$')
[ "$total" -gt 20 ] && [ "$ok" = "$total" ] && t_pass "every request of the load succeeded ($ok of $total)" ||
	t_fail "the load's requests" "$ok of $total: $(sort "$T_WORK"/client.* | uniq -c | tr '\n' ' ')"
# Served by more than the first replica.
t_sql "SELECT count(*) FROM deployment_events WHERE kind = 'scaled' AND reason LIKE 'scaled 3 -> %'" |
	grep -q '^0$' && t_pass "no scale-down while the load ran" || t_fail "flapping" "$(scaled_events)"

# The window (8 s) keeps the count after the load, then it falls.
sleep 4
[ "$(replicas)" = 3 ] && t_pass "4 s after the load, within the window, the count holds" ||
	t_fail "held in the window" "replicas $(replicas): $(scaled_events)"
if t_wait_sql "SELECT replicas FROM deployments WHERE name = 'demo'" 1 15; then
	t_pass "after the window the count falls to 1, $(($(date +%s) - ended_at)) s after the load"
else t_fail "scale down" "replicas $(replicas): $(scaled_events)"; fi
# In one step or two: the load's last clients end at different times, and
# what the window needed falls with them.
scaled_events | grep -q '^scaled 3 -> [12]: the most the last 8 s needed' &&
	t_pass "the scale-down event names the window" || t_fail "scale-down event" "$(scaled_events)"

# Scale to zero when idle, and back on the first request.
code=$(patch '{"autoscale":{"min_replicas":0,"max_replicas":2,"target_queue_depth":1,"idle_s":2,"scale_down_window_s":2}}')
[ "$code" = 200 ] || t_fail "PATCH min 0" "$code $(cat "$T_WORK/patch.body")"
if t_wait_sql "SELECT replicas FROM deployments WHERE name = 'demo'" 0 15 &&
   t_wait_sql "SELECT count(*) FROM replicas r JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'demo' AND r.state <> 'stopped'" 0 15 &&
   t_wait_routed 10 demo 0; then
	t_pass "idle for idle_s: scaled to zero ($(scaled_events | tail -1))"
else t_fail "scale to zero" "replicas $(replicas): $(scaled_events)"; fi
woke_at=$(date +%s%N)
code=$(curl -s -o "$T_WORK/wake.body" -w '%{http_code}' --max-time 60 "$R/v1/chat/completions" \
	-H "Authorization: Bearer $INF" -H 'Content-Type: application/json' -d "$CHAT")
if [ "$code" = 200 ] && grep -q '"chat.completion"' "$T_WORK/wake.body"; then
	t_pass "a request at zero waits, wakes the deployment and is answered 200 in $((($(date +%s%N) - woke_at) / 1000000)) ms"
else t_fail "wake from zero" "$code $(cat "$T_WORK/wake.body"); $(scaled_events)"; fi
scaled_events | grep -q '^scaled 0 -> 1: 1 request waiting' &&
	t_pass "the wake's event says a request waited" || t_fail "wake event" "$(scaled_events)"
curl -s "$NOVA_URL/metrics" -H "Authorization: Bearer $READ" >"$T_WORK/metrics" 2>/dev/null
up=$(sed -n 's/^nova_autoscaler_decisions_total{direction="up"} //p' "$T_WORK/metrics")
down=$(sed -n 's/^nova_autoscaler_decisions_total{direction="down"} //p' "$T_WORK/metrics")
[ "${up:-0}" -ge 2 ] && [ "${down:-0}" -ge 2 ] &&
	t_pass "/metrics counts the decisions (up $up, down $down)" || t_fail "decision metrics" "up '$up' down '$down'"

# Standby: a replica started and ready beyond the count, out of the routes;
# a scale-up promotes it (the same replica, no engine start) and a new
# standby starts behind it.
code=$(patch '{"autoscale":null,"replicas":1,"standby_replicas":1}')
[ "$code" = 200 ] || t_fail "PATCH standby" "$code $(cat "$T_WORK/patch.body")"
ready_sql="SELECT count(*) FROM replicas r JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'demo' AND r.state = 'ready'"
if t_wait_sql "$ready_sql" 2 30 && t_wait_routed 10 demo 1; then
	t_pass "one replica serves and one stands by, started and ready but not routed"
else t_fail "standby ready" "$(t_sql "$ready_sql") ready; $(cat "$T_WORK/out")"; fi
standby_id=$(t_sql "SELECT r.id FROM replicas r JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'demo' AND r.ordinal = 1")
grep -q "$standby_id" "$T_WORK/out" && t_fail "the standby is not routed" "it is" || true
promoted_at=$(date +%s%N)
code=$(patch '{"replicas":2}')
if [ "$code" = 200 ] && t_wait_routed 10 demo 2; then
	t_pass "scaled 1 -> 2: the standby is routed $((($(date +%s%N) - promoted_at) / 1000000)) ms after the PATCH"
else t_fail "promotion" "$code $(cat "$T_WORK/out")"; fi
grep -q "$standby_id" "$T_WORK/out" && t_pass "the promoted replica is the standby that was running (no new engine)" ||
	t_fail "promoted replica" "$standby_id not in $(cat "$T_WORK/out")"
if t_wait_sql "$ready_sql" 3 30; then t_pass "a new standby starts behind it"
else t_fail "new standby" "$(t_sql "$ready_sql") ready"; fi
code=$(req_status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$R/v1/chat/completions" \
	-H "Authorization: Bearer $INF" -H 'Content-Type: application/json' -d "$CHAT"); echo "$req_status")
[ "$code" = 200 ] && t_pass "requests are answered after the promotion" || t_fail "request after promotion" "$code"
