#!/bin/sh
# An lpu pool belongs to the machine of the novad that made it (its agents
# are that machine's processes). Two novads on one database play two
# machines (NOVA_MACHINE_ID, each its own lpu run directory): the pool made
# through A is A's machine's; deployed through B, its agents are started on
# A's machine only; with A killed, B starts none and stops none; A back, the
# nodes come back ready with the agents they had, no twin.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
RUN_A="$T_WORK/run-a" RUN_B="$T_WORK/run-b"
agents() { pgrep -f "$B/nova-sidecar --gateway" | wc -l; }
in_dir() { ls "$1"/*/*.pid 2>/dev/null | wc -l; }
NOVA_MACHINE_ID=machine-a NOVA_LPU_RUN_DIR="$RUN_A" nova_start ||
	{ t_fail "novad A starts" "see log"; exit 0; }
A_PID=$T_PID
A_URL=$NOVA_URL
TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
DBURL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova"
mkdir -p "$T_WORK/state-b"
NOVA_STATE_DIR="$T_WORK/state-b" NOVA_LISTEN=127.0.0.1:0 NOVA_ADMIN_TOKEN="$TOKEN" NOVA_DATABASE_URL="$DBURL" \
	NOVA_MACHINE_ID=machine-b NOVA_LPU_RUN_DIR="$RUN_B" "$B/novad" >"$T_WORK/novad-b.log" 2>&1 &
B_PID=$!
trap 'kill -9 $B_PID 2>/dev/null; pkill -f "$B/nova-sidecar --gateway" 2>/dev/null;
	pkill -f "$B/nova-mock-engine --port" 2>/dev/null; t_cleanup' EXIT
i=0; while [ ! -s "$T_WORK/state-b/novad.url" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
B_URL=$(cat "$T_WORK/state-b/novad.url")
export NOVA_TOKEN="$TOKEN" # to novactl by its environment, not its command line
CA="$B/novactl --server $A_URL"
CB="$B/novactl --server $B_URL"

cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
topo=$(python3 -c 'import json; print(json.dumps(open("etc/datacenter.yaml").read()))')
$CA pool create racks --provider lpu \
	--config "{\"topology_inline\":$topo,\"allocation\":\"c1r1\",\"mock_agents\":true}" >/dev/null 2>"$T_WORK/err" ||
	{ t_fail "lpu pool through A" "$(cat "$T_WORK/err")"; exit 0; }
$CB -o json pool get racks >"$T_WORK/pool.json"
grep -q '"machine": "machine-a"' "$T_WORK/pool.json" && t_pass "the pool records A's machine" ||
	t_fail "the pool records A's machine" "$(cat "$T_WORK/pool.json")"
$CB model register -f "$T_WORK/model.yaml" >/dev/null
$CB deploy demo --pool racks --replicas 2 --name demo >/dev/null 2>"$T_WORK/err" || t_fail "deploy through B" "$(cat "$T_WORK/err")"
if t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'ready'" 2 40; then t_pass "two replicas run"
else t_fail "two replicas run" "$(t_sql "SELECT string_agg(state || ' ' || state_reason, '; ') FROM replicas")"; fi
[ "$(in_dir "$RUN_A")" -eq 2 ] && [ "$(in_dir "$RUN_B")" -eq 0 ] && [ "$(agents)" -eq 2 ] &&
	t_pass "the agents were started on A's machine only" ||
	t_fail "agents on A's machine only" "A: $(in_dir "$RUN_A"), B: $(in_dir "$RUN_B"), running: $(agents)"

# A goes away: its machine's nodes fall silent, and B, elsewhere, starts
# nothing for them and stops nothing.
kill -9 "$A_PID"; wait "$A_PID" 2>/dev/null
t_wait_sql "SELECT count(*) FROM nodes WHERE state IN ('unhealthy', 'failed')" 2 20 ||
	t_fail "nodes go silent" "$(t_sql "SELECT string_agg(state, ',') FROM nodes")"
sleep 7 # past a reconciler period of B's
[ "$(in_dir "$RUN_B")" -eq 0 ] && [ "$(agents)" -eq 2 ] &&
	t_pass "B, on another machine, starts no agent for them" ||
	t_fail "B starts no agent" "B: $(in_dir "$RUN_B"), running: $(agents)"
grep -q "this novad now reconciles the pools bound to this machine" "$T_WORK/novad-b.log" &&
	t_pass "B reconciles its own machine's pools (none)" || t_fail "B's machine role" "not taken"

# A back: the agents it had beat to it again; no twin.
NOVA_MACHINE_ID=machine-a NOVA_LPU_RUN_DIR="$RUN_A" T_LISTEN=${A_URL#http://} nova_start ||
	{ t_fail "novad A restarts" "see log"; exit 0; }
if t_wait_sql "SELECT count(*) FROM nodes WHERE state = 'ready'" 2 30; then t_pass "the nodes are ready again"
else t_fail "nodes ready again" "$(t_sql "SELECT string_agg(state || ' ' || state_reason, '; ') FROM nodes")"; fi
sleep 6
[ "$(agents)" -eq 2 ] && [ "$(in_dir "$RUN_A")" -eq 2 ] && t_pass "with the agents they had: no twin" ||
	t_fail "no twin" "running: $(agents), A: $(in_dir "$RUN_A")"
exit 0
