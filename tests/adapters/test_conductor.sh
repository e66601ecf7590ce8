#!/bin/sh
# The Nova conductor command line on novad: -d -m --allocation
# --instance-model-name --mock-agents brings a model up on the racks; a
# second start reuses what the first made; bad flags are refused.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
trap 'pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
C="$B/novactl"
nova_start -d etc/datacenter.yaml -m etc/models/lpu_demo.yaml --allocation c1r2 \
	--instance-model-name conductor-demo --mock-agents || { t_fail "novad starts" "$(tail -3 "$T_WORK/novad.log")"; exit 0; }
if t_wait_sql "SELECT state FROM deployments" running 30; then t_pass "the model runs on the allocated racks"
else t_fail "model runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
t_expect_exit 0 "pool lpu-c1r2 exists" "$C" pool get lpu-c1r2
# The routing table follows the database on its own period: wait for it.
if t_wait_routed 10 conductor-demo; then t_pass "routes for the instance name"
else t_fail "routes for the instance name" "$(cat "$T_WORK/err")"; fi
t_expect_out "c1r2n1" "served from the allocated rack's node"
nova_stop
nova_start -d etc/datacenter.yaml -m etc/models/lpu_demo.yaml --allocation c1r2 \
	--instance-model-name conductor-demo --mock-agents || { t_fail "novad restarts with the same flags" "$(tail -3 "$T_WORK/novad.log")"; exit 0; }
t_pass "a second start with the same flags reuses pool, model and deployment"
[ "$(t_sql "SELECT count(*) FROM deployments")" = 1 ] && t_pass "one deployment" || t_fail "one deployment" "$(t_sql "SELECT count(*) FROM deployments")"
nova_stop
# A multi-stage model from the examples: a stage group of racks per stage.
nova_start -d etc/datacenter.yaml -m etc/models/lpu/spec_decode.yaml --allocation c2r1:c2r2 \
	--mock-agents || { t_fail "novad starts with a spec-decode model" "$(tail -3 "$T_WORK/novad.log")"; exit 0; }
if t_wait_sql "SELECT state FROM deployments WHERE name = 'lpu-spec-decode'" running 30; then
	t_pass "a spec-decode model runs on two stage groups"
else t_fail "spec-decode runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
if t_wait_routed 10 lpu-spec-decode; then t_pass "and is routed"
else t_fail "spec-decode routed" "$(cat "$T_WORK/err")"; fi
t_expect_out "c2r2n1" "at the target stage's node (second group)"
nova_stop
t_expect_exit 2 "racks held by another pool are refused" env NOVA_LISTEN=127.0.0.1:0 \
	NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova" "$B/novad" \
	-d etc/datacenter.yaml -m etc/models/lpu_demo.yaml --allocation c1r1,c1r2 \
	--instance-model-name other --mock-agents
t_expect_out 'rack c1r2 is already claimed by pool "lpu-c1r2"' "naming the rack and its holder"
t_expect_exit 2 "a spec-decode model on one rack group is refused" env NOVA_LISTEN=127.0.0.1:0 \
	NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova" "$B/novad" \
	-d etc/datacenter.yaml -m etc/models/spec_decode.yaml --allocation c2r1
t_expect_out "1 stage group, the model needs 2" "saying why"
t_expect_exit 2 "conductor flags go together" "$B/novad" -d etc/datacenter.yaml
exit 0
