#!/bin/sh
# Warm capacity on the kubernetes adapter, against the fake API server and
# the kubelet stand-in (as test_kubernetes.sh): a pool with warm_nodes 2
# gets two pods whose sidecars beat with nothing assigned; a deployment of
# one replica lands on one of them with no pod made for it, and a pod is
# made behind it so two are idle again; warm_nodes 0 lets the idle pods go
# after the idle grace; warm_nodes is refused, naming the field, on an lpu
# pool and above max_nodes.
set -u
. tests/support/lib.sh
. tests/support/k8s.sh
export NOVA_HEARTBEAT_INTERVAL_MS=300 NOVA_NODE_FAILED_AFTER_MS=20000 NOVA_IDLE_NODE_GRACE_S=2
C="$B/novactl"
KUBELET_PID=
cleanup_k8s() {
	[ -n "$KUBELET_PID" ] && kill "$KUBELET_PID" 2>/dev/null && wait "$KUBELET_PID" 2>/dev/null
	pkill -f "$B/nova-sidecar --gateway" 2>/dev/null
	k8s_stop
	t_cleanup
}
trap cleanup_k8s EXIT
k8s_start --nodes "gpu-1=2,gpu-2=2" --auto-run || { t_fail "fake API server starts" "see $T_WORK"; exit 0; }
export NOVA_PROVIDER_FILES="$K8S_DIR:$PWD/etc"
nova_start || { t_fail "novad starts" "see log"; exit 0; }

pods() {
	k8s_curl "/api/v1/namespaces/nova/pods?labelSelector=nova.dev/pool-id%3D$pool_id" |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'
}
IDLE="SELECT count(*) FROM nodes n WHERE n.state = 'ready' AND NOT EXISTS
	(SELECT 1 FROM replica_placements rp WHERE rp.node_id = n.id)"
creates() { grep -c " POST /api/v1/namespaces/nova/pods " "$K8S_DIR/requests.log"; }

# Refused, naming the field: an lpu pool's racks exist anyway; above max nodes.
t_expect_exit 2 "warm nodes on an lpu pool are refused" "$C" pool create racks --provider lpu \
	--config "{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r1\",\"mock_agents\":true}" \
	--warm-nodes 1
t_expect_out "field: warm_nodes" "naming warm_nodes"
cfg="{\"kubeconfig\":\"$K8S_KUBECONFIG_TOKEN\",\"namespace\":\"nova\",\"accelerators_per_pod\":1,"
cfg="$cfg\"accelerator_type\":\"A100-80G\",\"watch_timeout_s\":2}"
t_expect_exit 2 "warm nodes above max nodes are refused" "$C" pool create gpus --provider kubernetes \
	--config "$cfg" --max-nodes 1 --warm-nodes 2
t_expect_out "field: warm_nodes" "naming warm_nodes"
[ "$(t_sql "SELECT count(*) FROM pools")" = 0 ] && t_pass "nothing created" || t_fail "nothing created" "$(t_sql "SELECT name FROM pools")"

t_expect_exit 0 "a kubernetes pool with warm_nodes 2" "$C" pool create gpus --provider kubernetes \
	--config "$cfg" --max-nodes 4 --warm-nodes 2
t_expect_out "warm nodes:        2" "shown by the pool"
pool_id=$(t_sql "SELECT id FROM pools WHERE name = 'gpus'")

mkdir -p "$T_WORK/kubelet"
python3 tests/k8s/kubelet.py --server "$K8S_URL" --token "$K8S_TOKEN" --cacert "$K8S_CA" \
	--namespace nova --sidecar "$B/nova-sidecar" --mock-engine "$B/nova-mock-engine" \
	--log-dir "$T_WORK/kubelet" >"$T_WORK/kubelet.log" 2>&1 &
KUBELET_PID=$!

# Two pods, nothing assigned, their sidecars beating.
if t_wait_sql "$IDLE" 2 30 && t_wait_sql "SELECT count(*) FROM nodes n JOIN node_heartbeats h
	ON h.node_id = n.id WHERE n.state = 'ready' AND h.last_heartbeat_at IS NOT NULL" 2 30; then
	t_pass "two warm nodes, ready and beating"
else t_fail "two warm nodes" "$(t_sql "SELECT string_agg(name || ':' || state || ':' || state_reason, '; ') FROM nodes")"; fi
[ "$(pods)" = 2 ] && t_pass "two pods in the cluster" || t_fail "two pods" "$(pods)"
[ "$(t_sql "SELECT count(*) FROM replica_placements")" = 0 ] && t_pass "nothing assigned to them" ||
	t_fail "nothing assigned" "$(t_sql "SELECT count(*) FROM replica_placements")"
sleep 6 # a pass or more: kept, not made again
[ "$(pods)" = 2 ] && t_pass "still two pods a pass later" || t_fail "still two" "$(pods)"
if t_wait_sql "SELECT count(*) FROM nodes WHERE state_reason = 'kept warm (warm_nodes 2)'" 2 10; then
	t_pass "their reason says they are kept warm"
else t_fail "kept warm" "$(t_sql "SELECT string_agg(state_reason, '; ') FROM nodes")"; fi

# A replica lands on a warm node: no pod is made for it.
warm=$(t_sql "SELECT string_agg(id::text, ' ') FROM nodes WHERE state = 'ready'")
made=$(creates)
cat >"$T_WORK/model.yaml" <<EOM
name: k8s-model
kind: single
engine: {image: "vllm/vllm-openai:v0.6.3", command: [vllm, serve, x, --port, "{port}"]}
stages: [{name: main, accelerator_type: A100-80G, accelerators: 1}]
EOM
"$C" model register -f "$T_WORK/model.yaml" >/dev/null
t_expect_exit 0 "deploy one replica" "$C" deploy k8s-model --pool gpus --replicas 1 --name web
if t_wait_sql "SELECT count(*) FROM replica_placements" 1 20; then
	on=$(t_sql "SELECT node_id FROM replica_placements")
	case " $warm " in *" $on "*) t_pass "the replica is placed on a warm node" ;;
	*) t_fail "placed on a warm node" "$on not in $warm" ;; esac
else t_fail "placed" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
# Placed with the pods as they were: the pod made since is the one behind.
[ "$(creates)" -le $((made + 1)) ] && t_pass "no pod made for the replica" ||
	t_fail "no pod made for the replica" "$made creates before, $(creates) after"
if t_wait_sql "SELECT state FROM deployments" running 30; then t_pass "the replica runs on the warm pod"
else t_fail "running" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
if t_wait_sql "$IDLE" 2 15; then t_pass "a warm node is provisioned behind it: two idle again"
else t_fail "two idle again" "$(t_sql "$IDLE")"; fi
[ "$(pods)" = 3 ] && t_pass "three pods: one serving, two warm" || t_fail "three pods" "$(pods)"
[ "$(creates)" = $((made + 1)) ] && t_pass "one pod made, behind the one taken" ||
	t_fail "one pod made" "$made creates before, $(creates) after"
if t_wait_routed 15 k8s-model; then t_pass "routed"; else t_fail "routed" "$(cat "$T_WORK/err")"; fi
# Engine logs on a kubernetes node come the same way as on the others:
# from its sidecar, through novad.
url=$(sed -n 's/.*"url": *"\([^"]*\)".*/\1/p' "$T_WORK/out" | head -1)
curl -s -o /dev/null --max-time 10 "$url/v1/completions" -H 'Content-Type: application/json' \
	-d '{"model":"k8s-model","prompt":"hi","max_tokens":2}'
if t_wait_cmd 10 sh -c "\"$C\" logs web --tail 20 | grep -q ." ; then
	t_pass "novactl logs shows the engine's output on a kubernetes pod"
else t_fail "logs on kubernetes" "$("$C" logs web --tail 20 2>&1 | head -5)"; fi

# warm_nodes 0: the idle pods go after the grace; the serving one stays.
t_expect_exit 0 "warm nodes lowered to 0" "$C" pool update gpus --warm-nodes 0
[ "$(t_sql "SELECT count(*) FROM pool_events WHERE kind = 'warm_nodes' AND message = 'warm_nodes 2 -> 0'")" = 1 ] &&
	t_pass "the change is a pool event" || t_fail "pool event" "$(t_sql "SELECT string_agg(message, '; ') FROM pool_events")"
i=0; while [ "$(pods)" != 1 ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(pods)" = 1 ] && t_pass "the idle pods are deleted after the grace" || t_fail "idle pods deleted" "$(pods)"
[ "$(t_sql "SELECT count(*) FROM nodes WHERE state = 'ready'")" = 1 ] &&
	[ "$(t_sql "SELECT count(*) FROM replica_placements rp JOIN nodes n ON n.id = rp.node_id WHERE n.state = 'ready'")" = 1 ] &&
	t_pass "the serving node stays" || t_fail "serving node" "$(t_sql "SELECT string_agg(name || ':' || state, '; ') FROM nodes")"

"$C" deployment stop web >/dev/null
t_wait_sql "SELECT state FROM deployments" stopped 20 >/dev/null
"$C" deployment delete web >/dev/null
t_expect_exit 0 "forced pool delete" "$C" pool delete gpus --force
exit 0
