#!/bin/sh
# The lpu adapter with real processes: an lpu pool on etc/datacenter.yaml
# with mock agents; a deployment's nodes get detached nova-sidecar agents
# running nova-mock-engine; routes appear and serve a completion; a restarted
# novad finds the agents again (no twins); a forced pool delete stops them.
set -u
. tests/support/lib.sh
# The default place of engine logs, beside the agent's --log-file.
unset NOVA_SIDECAR_ENGINE_LOG_DIR
export NOVA_HEARTBEAT_INTERVAL_MS=500
# Agents' logs capped small, so the engines' probe lines rotate them here
# (the agents inherit novad's environment).
export NOVA_SIDECAR_LOG_MAX_BYTES=4096 NOVA_SIDECAR_LOG_KEEP=1 NOVA_SIDECAR_ENGINE_LOG_MAX_BYTES=16384
agents() { pgrep -f "$B/nova-sidecar --gateway" | wc -l; }
trap 'pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
t_expect_exit 0 "lpu pool create" "$C" pool create racks --provider lpu \
	--config "{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r1\",\"mock_agents\":true}"
t_expect_exit 2 "an unknown rack is refused" "$C" pool create bad --provider lpu \
	--config "{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r9\"}"
t_expect_out "at 1: rack c1r9 is not in the datacenter topology" "naming the rack and position"
t_expect_exit 2 "a malformed allocation is refused" "$C" pool create bad --provider lpu \
	--config "{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r1,\"}"
t_expect_out "field: config.allocation" "naming the field"
"$C" model register -f "$T_WORK/model.yaml" >/dev/null
t_expect_exit 0 "deploy on the racks" "$C" deploy demo --pool racks --replicas 2 --name demo
if t_wait_sql "SELECT state FROM deployments" running 30; then t_pass "both replicas run on agents"
else t_fail "replicas run" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
[ "$(agents)" -eq 2 ] && t_pass "one agent per node" || t_fail "one agent per node" "$(agents)"
# The routing table follows the database on its own period: wait for it.
t_wait_routed 10 demo
url=$(sed -n 's/.*"url": "\(http[^"]*\)".*/\1/p' "$T_WORK/out" | head -1)
out=$(curl -s "$url/v1/chat/completions" -d '{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":2}')
case "$out" in *'"content":"the model"'*) t_pass "a completion through the routed endpoint" ;;
*) t_fail "completion" "$url: $out" ;; esac

# Each agent writes a capped log of its own under the state directory,
# and each engine's output goes to a file of the engine's own beside it
# (PATH.engines/), rotated at half the engine cap into one older file.
logs=$(ls "$NOVA_STATE_DIR"/lpu/*/*.log 2>/dev/null | wc -l)
[ "$logs" -eq 2 ] && t_pass "each agent writes its own log" || t_fail "agent logs" "$(ls -R "$NOVA_STATE_DIR/lpu")"
i=0; while [ "$(ls "$NOVA_STATE_DIR"/lpu/*/*.log.engines/*.log.1 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 300 ]; do
	i=$((i + 1)); sleep 0.1; done
big=$(find "$NOVA_STATE_DIR/lpu" -name '*.log*' -type f -size +8192c | wc -l)
if [ "$(ls "$NOVA_STATE_DIR"/lpu/*/*.log.engines/*.log.1 2>/dev/null | wc -l)" -eq 2 ] && [ "$big" -eq 0 ] &&
   [ -z "$(ls "$NOVA_STATE_DIR"/lpu/*/*.log.engines/*.log.2 2>/dev/null)" ]; then
	t_pass "engine logs are rotated at their cap"
else t_fail "engine logs rotated" "$(ls -lR "$NOVA_STATE_DIR"/lpu/)"; fi
cat "$NOVA_STATE_DIR"/lpu/*/*.log.engines/* | grep -q '"path":"/health"' &&
	t_pass "the engines' output is in their own logs on the node" || t_fail "engine output in engine logs" "none"

# An agent dies: the reconciler provisions its node again (within its 5 s
# period) and the replica comes back.
victim=$(pgrep -f "$B/nova-sidecar --gateway" | head -1)
kill -9 "$victim"
sleep 0.5
[ "$(agents)" -eq 1 ] && t_pass "one agent killed" || t_fail "one agent killed" "$(agents)"
i=0; while [ "$(agents)" -lt 2 ] && [ $i -lt 150 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(agents)" -eq 2 ] && t_pass "the dead agent is started again" || t_fail "agent restarted" "$(agents)"
if t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'ready'" 2 20; then t_pass "its replica is ready again"
else t_fail "replica ready again" "$(t_sql "SELECT string_agg(state, ',') FROM replicas")"; fi

# novad restarts: the agents live on, and are found again, not twinned.
nova_stop
[ "$(agents)" -eq 2 ] && t_pass "agents outlive novad" || t_fail "agents outlive novad" "$(agents)"
nova_start || { t_fail "novad restarts" "see log"; exit 0; }
"$C" deployment scale demo --replicas 2 >/dev/null  # gives the worker a pass
sleep 3
[ "$(agents)" -eq 2 ] && t_pass "no twin agents after the restart" || t_fail "no twins" "$(agents)"
[ "$(t_sql "SELECT state FROM deployments")" = running ] && t_pass "still running" ||
	t_fail "still running" "$(t_sql "SELECT state FROM deployments")"

"$C" deployment stop demo >/dev/null
t_wait_sql "SELECT state FROM deployments" stopped 15 >/dev/null
"$C" deployment delete demo >/dev/null
t_expect_exit 0 "forced pool delete" "$C" pool delete racks --force
i=0; while [ "$(agents)" -gt 0 ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(agents)" -eq 0 ] && t_pass "deprovisioning stops the agents" || t_fail "agents stopped" "$(agents) left"
exit 0
