#!/bin/sh
# nova-sidecar --metrics-listen: its own /metrics (promtool clean) counts
# heartbeats by result with their round trips, its engines by model and
# state, an engine's crash and restart; novad gone shows as failed beats.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
export NOVA_TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
t_fake_deploy || { t_fail "placed" "no"; exit 0; }
PROMTOOL=$(t_deb_tool prometheus usr/bin/promtool) || { t_fail "promtool is available" "see above"; exit 0; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '%s' "$T_TOKEN" >"$T_WORK/node.token"
"$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token-file "$T_WORK/node.token" \
	--mock-engine "$B/nova-mock-engine" --metrics-listen "127.0.0.1:$port" >>"$T_WORK/sidecar.log" 2>&1 &
SC_PID=$!
trap 'kill -9 $SC_PID 2>/dev/null; pkill -f "$B/nova-mock-engine --port" 2>/dev/null; t_cleanup' EXIT
t_wait_sql "SELECT state FROM deployments" running 20 || t_fail "the replica becomes ready" "$(t_sql "SELECT state FROM deployments")"
m() { curl -s "http://127.0.0.1:$port/metrics" >"$T_WORK/m"; }
val() { sed -n "s/^$1 //p" "$T_WORK/m"; }
i=0; while [ $i -lt 50 ]; do
	m; [ "$(val 'nova_sidecar_engines{model="mistral-7b-lora",state="ready"}')" = 1 ] && break
	i=$((i + 1)); sleep 0.1
done
[ "$(val 'nova_sidecar_engines{model="mistral-7b-lora",state="ready"}')" = 1 ] &&
	t_pass "the ready engine is counted by model and state" || t_fail "the ready engine is counted" "$(cat "$T_WORK/m")"
ok=$(val 'nova_sidecar_heartbeats_total{result="ok"}')
[ "${ok:-0}" -ge 1 ] && t_pass "heartbeats answered are counted ($ok)" || t_fail "heartbeats counted" "${ok:-none}"
grep -q '^nova_sidecar_heartbeat_duration_seconds_count [1-9]' "$T_WORK/m" &&
	t_pass "heartbeat round trips are a histogram" || t_fail "round trip histogram" "$(grep duration "$T_WORK/m")"
"$PROMTOOL" check metrics <"$T_WORK/m" >"$T_WORK/out" 2>&1 && t_pass "promtool check metrics accepts it" ||
	t_fail "promtool check metrics accepts it" "$(cat "$T_WORK/out")"

# The engine crashes: an exit and, once it is started again, a restart.
pkill -9 -f "$B/nova-mock-engine --port"
i=0; while [ $i -lt 100 ]; do
	m; [ "$(val 'nova_sidecar_engine_restarts{model="mistral-7b-lora"}')" = 1 ] && break
	i=$((i + 1)); sleep 0.1
done
[ "$(val nova_sidecar_engine_exits_total)" = 1 ] && [ "$(val 'nova_sidecar_engine_restarts{model="mistral-7b-lora"}')" = 1 ] &&
	t_pass "a crashed engine counts an exit and a restart" ||
	t_fail "a crashed engine counts an exit and a restart" "$(grep engine "$T_WORK/m")"

# novad away: the beats fail, and say so.
nova_stop
i=0; while [ $i -lt 50 ]; do
	m; f=$(val 'nova_sidecar_heartbeats_total{result="failed"}'); [ "${f:-0}" -ge 1 ] && break
	i=$((i + 1)); sleep 0.2
done
[ "${f:-0}" -ge 1 ] && t_pass "heartbeats to a novad that is away are counted failed ($f)" ||
	t_fail "failed heartbeats counted" "$(grep heartbeats_total "$T_WORK/m")"
t_expect_exit 2 "--metrics-listen without a port exits 2" "$B/nova-sidecar" --gateway http://x --node-id y \
	--token t --metrics-listen nowhere
exit 0
