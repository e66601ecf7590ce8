#!/bin/sh
# nova-sidecar with real processes: novad, the sidecar, nova-mock-engine.
# A replica becomes routable once its engine is healthy and serves a chat
# completion through the routed endpoint; a killed engine is restarted; a
# SIGKILLed sidecar takes its replicas out of the routes within 3 intervals
# plus a margin, and they come back with it; SIGTERM stops the engines.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
t_fake_deploy || { t_fail "placed" "no"; exit 0; }
SC_PID=
start_sidecar() {
	"$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token "$T_TOKEN" \
		--mock-engine "$B/nova-mock-engine" >>"$T_WORK/sidecar.log" 2>&1 &
	SC_PID=$!
}
trap 'kill -9 $SC_PID 2>/dev/null; pkill -f "$B/nova-mock-engine --port" 2>/dev/null; t_cleanup' EXIT
engines() { pgrep -f "$B/nova-mock-engine --port" | wc -l; }
routed() { "$C" -o json routes 2>/dev/null | sed -n 's/.*"url": "\(http[^"]*\)".*/\1/p' | head -1; }

start_sidecar
if t_wait_sql "SELECT state FROM deployments" running 20; then t_pass "the replica becomes ready once its engine is healthy"
else t_fail "replica ready" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
i=0; url=; while [ -z "$url" ] && [ $i -lt 50 ]; do url=$(routed); i=$((i + 1)); sleep 0.1; done
[ -n "$url" ] && t_pass "the routing table has the endpoint" || t_fail "routed endpoint" "none"
[ "$(t_sql "SELECT (capacity->>'cpus')::int > 0 FROM node_heartbeats")" = t ] && t_pass "the heartbeat carries the node's capacity" ||
	t_fail "capacity" "$(t_sql "SELECT capacity FROM node_heartbeats")"
out=$(curl -s "$url/v1/chat/completions" -d '{"model":"sql-expert","messages":[{"role":"user","content":"hi"}],"max_tokens":3}')
case "$out" in *'"content":"the model answers"'*) t_pass "a chat completion through the routed endpoint gets tokens" ;;
*) t_fail "completion through the route" "$out" ;; esac

# Kill the engine: the sidecar restarts it and reports the restart.
pkill -9 -f "$B/nova-mock-engine --port"
i=0; new=$url; while { [ "$new" = "$url" ] || [ -z "$new" ]; } && [ $i -lt 150 ]; do new=$(routed); i=$((i + 1)); sleep 0.1; done
if [ -n "$new" ] && [ "$new" != "$url" ]; then t_pass "a killed engine is restarted and routed again"
else t_fail "engine restart" "url=$url new=$new"; fi
"$C" -o json routes | grep -q '"restarts": 1' && t_pass "the restart is reported" || t_fail "restart reported" "$("$C" -o json routes)"

# The gateway goes away for a while: the engine keeps serving, and the
# sidecar reports again when the gateway is back (on the same address).
export T_LISTEN=${NOVA_URL#http://}
nova_stop
sleep 2
url=$new
out=$(curl -s "$url/health")
case "$out" in *'"ok"'*) t_pass "the engine keeps serving while the gateway is away" ;;
*) t_fail "engine serves while the gateway is away" "$out" ;; esac
back=$(t_sql "SELECT now()")
nova_start || { t_fail "novad restarts" "see log"; exit 0; }
if t_wait_sql "SELECT count(*) FROM node_heartbeats WHERE last_heartbeat_at > '$back'" 1 20; then
	t_pass "the sidecar reports again when the gateway returns"
else
	t_fail "sidecar reports again" "$(t_sql "SELECT n.state || ' ' || h.last_heartbeat_at FROM nodes n JOIN node_heartbeats h ON h.node_id = n.id")"
fi
i=0; while [ -z "$(routed)" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
[ -n "$(routed)" ] && t_pass "and its replica is routed" || t_fail "routed after the gateway returns" "none"

# SIGKILL the sidecar: its engine dies with it, and its replica leaves the
# routes within 3 intervals (1.5 s) plus a margin; a watcher hears of it.
"$C" routes --watch >"$T_WORK/watch" 2>&1 &
WATCH=$!
i=0; while ! grep -q "^snapshot" "$T_WORK/watch" && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
kill -9 $SC_PID; wait $SC_PID 2>/dev/null
t0=$(date +%s%N)
i=0; while [ -n "$(routed)" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ -z "$(routed)" ] && [ $ms -le 4000 ] && t_pass "a killed sidecar's replica leaves the routes (${ms} ms)" ||
	t_fail "killed sidecar leaves routes" "after ${ms} ms"
sleep 0.3
[ "$(engines)" -eq 0 ] && t_pass "its engine died with it" || t_fail "engine died with the sidecar" "$(engines) left"
grep -q "mistral-7b-lora -> 0 endpoints" "$T_WORK/watch" && t_pass "the watch stream reports it" ||
	t_fail "watch reports the loss" "$(cat "$T_WORK/watch")"
kill $WATCH 2>/dev/null; wait $WATCH 2>/dev/null

start_sidecar
i=0; while [ -z "$(routed)" ] && [ $i -lt 150 ]; do i=$((i + 1)); sleep 0.1; done
[ -n "$(routed)" ] && t_pass "the node comes back with its sidecar" || t_fail "comes back" "$(t_sql "SELECT state FROM nodes")"

kill -TERM $SC_PID; wait $SC_PID; rc=$?
[ $rc -eq 0 ] && t_pass "SIGTERM stops the sidecar cleanly" || t_fail "SIGTERM" "exit $rc"
[ "$(engines)" -eq 0 ] && t_pass "and stops its engines" || t_fail "engines stopped" "$(engines) left"
t_expect_exit 2 "nova-sidecar without a token exits 2" "$B/nova-sidecar" --gateway http://x --node-id y
exit 0
