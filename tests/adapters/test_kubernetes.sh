#!/bin/sh
# The kubernetes adapter end to end, against the fake API server (proven
# faithful by kubectl in test_k8s_fake_apiserver.sh), with a kubelet
# stand-in that runs each Running pod's sidecar as a local process: pods
# created with the right requests and labels, sidecars heartbeat, routes
# appear and answer, scale down deletes pods, a failed pod is replaced, an
# unschedulable pod says why on its node, an orphan pod is deleted, and a
# novad killed between creating a pod and recording it leaves no twin.
set -u
. tests/support/lib.sh
. tests/support/k8s.sh
# A node silent for 20 s fails; a failed pod is seen sooner, by the
# reconciler (every 5 s), which must be the one to fail its node.
export NOVA_HEARTBEAT_INTERVAL_MS=300 NOVA_NODE_FAILED_AFTER_MS=20000 NOVA_IDLE_NODE_GRACE_S=1
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
KUBECTL=$(k8s_kubectl_path) || { t_fail "kubectl" "Debian's kubernetes-client is not available"; exit 0; }
K="$KUBECTL --kubeconfig $K8S_KUBECONFIG_TOKEN -n nova"
# ev_check PYEXPR: true when PYEXPR holds for the namespace's events (ev, a
# list) and the pool's pods (pods, by name; uid[name] their uids).
ev_check() {
	$K get events -o json >"$T_WORK/events.json" &&
		$K get pods -o json >"$T_WORK/pods.json" &&
		python3 -c 'import json, sys
ev = json.load(open(sys.argv[1]))["items"]
pods = {p["metadata"]["name"]: p for p in json.load(open(sys.argv[2]))["items"]}
uid = {n: p["metadata"]["uid"] for n, p in pods.items()}
sys.exit(0 if eval(sys.argv[3]) else 1)' "$T_WORK/events.json" "$T_WORK/pods.json" "$1"
}
# The kubeconfigs a pool names must lie under a directory novad allows.
export NOVA_PROVIDER_FILES="$K8S_DIR"
nova_start || { t_fail "novad starts" "see log"; exit 0; }

# Bad configs are refused at pool creation, naming the field.
t_expect_exit 2 "a kubeconfig that does not exist is refused" "$C" pool create bad --provider kubernetes \
	--config '{"kubeconfig":"/nonexistent/kubeconfig"}'
t_expect_out "config.kubeconfig" "naming the field"
t_expect_exit 2 "a bad namespace is refused" "$C" pool create bad --provider kubernetes \
	--config "{\"kubeconfig\":\"$K8S_KUBECONFIG_TOKEN\",\"namespace\":\"Not_A_Label\"}"
t_expect_out "config.namespace" "naming the field"
t_expect_exit 2 "a toleration the API server would refuse is refused" "$C" pool create bad \
	--provider kubernetes --config "{\"kubeconfig\":\"$K8S_KUBECONFIG_TOKEN\",\"tolerations\":[{\"operator\":\"Exists\"},{\"key\":\"gpu\",\"operator\":\"Sometimes\"}]}"
t_expect_out "config.tolerations\[1\].operator" "naming the toleration's field"

cfg="{\"kubeconfig\":\"$K8S_KUBECONFIG_TOKEN\",\"namespace\":\"nova\",\"accelerators_per_pod\":1,"
cfg="$cfg\"accelerator_type\":\"A100-80G\",\"labels\":{\"team\":\"inference\"},\"watch_timeout_s\":2}"
t_expect_exit 0 "a kubernetes pool" "$C" pool create gpus --provider kubernetes --config "$cfg"
pool_id=$(t_sql "SELECT id FROM pools WHERE name = 'gpus'")

mkdir -p "$T_WORK/kubelet"
python3 tests/k8s/kubelet.py --server "$K8S_URL" --token "$K8S_TOKEN" --cacert "$K8S_CA" \
	--namespace nova --sidecar "$B/nova-sidecar" --mock-engine "$B/nova-mock-engine" \
	--log-dir "$T_WORK/kubelet" >"$T_WORK/kubelet.log" 2>&1 &
KUBELET_PID=$!

cat >"$T_WORK/model.yaml" <<EOM
name: k8s-model
kind: single
engine: {image: "vllm/vllm-openai:v0.6.3", command: [vllm, serve, x, --port, "{port}"]}
stages: [{name: main, accelerator_type: A100-80G, accelerators: 1}]
EOM
"$C" model register -f "$T_WORK/model.yaml" >/dev/null
t_expect_exit 0 "deploy two replicas" "$C" deploy k8s-model --pool gpus --replicas 2 --name web
if t_wait_sql "SELECT state FROM deployments" running 40; then t_pass "pods run and their sidecars report ready"
else t_fail "running" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi

# kubectl sees the pods Nova made, with their labels and GPU requests.
t_expect_exit 0 "kubectl get pods" $K get pods -l "nova.dev/pool-id=$pool_id" -L nova.dev/node-id
[ "$(grep -c '^nova-' "$T_WORK/out")" -eq 2 ] && t_pass "two pods named nova-<node id>" ||
	t_fail "two pods" "$(cat "$T_WORK/out")"
t_expect_exit 0 "their GPU requests" $K get pods -l "nova.dev/pool-id=$pool_id" \
	-o 'jsonpath={range .items[*]}{.spec.containers[0].resources.requests.nvidia\.com/gpu}{" "}{.metadata.labels.team}{"\n"}{end}'
[ "$(grep -c '^1 inference$' "$T_WORK/out")" -eq 2 ] && t_pass "each pod requests 1 nvidia.com/gpu and carries the pool's labels" ||
	t_fail "requests" "$(cat "$T_WORK/out")"
t_expect_exit 0 "the token is in a secret" $K get pods -l "nova.dev/pool-id=$pool_id" -o json
if grep -q "nova-node-" "$T_WORK/out"; then t_fail "no token in the pod spec" "found"
else t_pass "no token in the pod spec"; fi
grep -q '"secretKeyRef"' "$T_WORK/out" && t_pass "the token comes from a secretKeyRef" || t_fail "secretKeyRef" "none"
t_expect_exit 0 "secrets and headless services exist" $K get secrets,services -l "nova.dev/pool-id=$pool_id"
[ "$(grep -c 'nova-' "$T_WORK/out")" -eq 4 ] && t_pass "a secret and a service per pod" || t_fail "secrets and services" "$(cat "$T_WORK/out")"

# Kubernetes events tell what Nova did: a NovaCreated event on each pod,
# secret and service, with the fields kubectl and the API server expect.
created="[e for e in ev if e['reason'] == 'NovaCreated']"
if ev_check "len(pods) == 2 and all(any(
	e['involvedObject'] == {'kind': 'Pod', 'apiVersion': 'v1', 'namespace': 'nova', 'name': n, 'uid': uid[n]}
	and e['type'] == 'Normal' and e['count'] == 1 and e['source'] == {'component': 'nova'}
	and e['reportingComponent'] == 'nova' and e['reportingInstance'].startswith('novad-')
	and e['firstTimestamp'] == e['lastTimestamp'] and e['metadata']['name'].startswith(n + '.')
	and pods[n]['metadata']['labels']['nova.dev/node-id'] in e['message'] for e in $created) for n in pods)"; then
	t_pass "a NovaCreated event on each pod, naming its node, with its uid"
else t_fail "NovaCreated on pods" "$(cat "$T_WORK/events.json")"; fi
if ev_check "sorted(e['involvedObject']['kind'] for e in $created) == ['Pod'] * 2 + ['Secret'] * 2 + ['Service'] * 2"; then
	t_pass "and on each secret and service"
else t_fail "NovaCreated on secrets and services" "$(cat "$T_WORK/events.json")"; fi
grep -q "nova-node-" "$T_WORK/events.json" && t_fail "no token in events" "found" || t_pass "no token in events"
one=$($K get pods -l "nova.dev/pool-id=$pool_id" -o 'jsonpath={.items[0].metadata.name}')
t_expect_exit 0 "kubectl describe pod" $K describe pod "$one"
t_expect_out "Normal  *NovaCreated .* nova  *Nova created this pod for node" "kubectl describe pod shows Nova's event"

# Routes and a request through a routed endpoint.
if t_wait_routed 15 k8s-model; then
	url=$(sed -n 's/.*"url": "\(http[^"]*\)".*/\1/p' "$T_WORK/out" | head -1)
	out=$(curl -s -m 5 "$url/v1/chat/completions" -d '{"model":"k8s-model","messages":[{"role":"user","content":"hi"}],"max_tokens":2}')
	case "$out" in *'"content":"the model"'*) t_pass "a completion through the routed endpoint" ;;
	*) t_fail "completion" "$url: $out" ;; esac
else t_fail "routes" "$(cat "$T_WORK/err")"; fi

# A pod fails: its node fails with the Kubernetes words, and a new pod
# takes the replica.
# First the API server forgets its history past a change the pool's watch
# does not see: the watch, renewed every 2 s, resumes from a version now too
# old, is told 410 Expired and must list again to see what follows.
$K create secret generic unrelated --from-literal=a=b >/dev/null
k8s_curl /_fake/compact -X POST >/dev/null
sleep 3
victim=$($K get pods -l "nova.dev/pool-id=$pool_id" -o 'jsonpath={.items[0].metadata.name}')
k8s_pod_status nova "$victim" Failed OOMKilled "container model was OOM killed"
if t_wait_sql "SELECT count(*) FROM node_events WHERE to_state = 'failed' AND reason LIKE '%OOMKilled%'" 1 20; then
	t_pass "a failed pod fails its node with the Kubernetes reason"
else t_fail "failed pod" "$(t_sql "SELECT string_agg(to_state || ':' || reason, '; ') FROM node_events")"; fi
i=0; while [ $i -lt 300 ]; do
	$K get pods -l "nova.dev/pool-id=$pool_id" -o name >"$T_WORK/pods" 2>/dev/null
	! grep -q "$victim" "$T_WORK/pods" && [ "$(wc -l <"$T_WORK/pods")" -eq 2 ] && break
	i=$((i + 1)); sleep 0.1; done
! grep -q "$victim" "$T_WORK/pods" && [ "$(wc -l <"$T_WORK/pods")" -eq 2 ] &&
	t_pass "the failed pod is deleted and another takes its replica" || t_fail "replacement" "$(cat "$T_WORK/pods")"
if t_wait_cmd 10 ev_check "sorted(e['involvedObject']['kind'] for e in ev if e['reason'] == 'NovaReplaced'
	and e['involvedObject']['name'] == '$victim' and e['type'] == 'Warning'
	and 'failed node removed' in e['message']) == ['Pod', 'Secret', 'Service']"; then
	t_pass "the failed pod, its secret and service get a NovaReplaced warning with the reason"
else t_fail "NovaReplaced" "$(cat "$T_WORK/events.json")"; fi
t_expect_exit 0 "kubectl get events" $K get events
t_expect_out "Warning *NovaReplaced *pod/$victim *Nova replaced this pod of node .*: failed node removed" \
	"kubectl get events shows the replacement"
if t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'ready'" 2 30; then t_pass "both replicas ready again"
else t_fail "ready again" "$(t_sql "SELECT string_agg(state, ',') FROM replicas")"; fi

# An image that cannot be pulled: the node says so, in Kubernetes' words.
puller=$($K get pods -l "nova.dev/pool-id=$pool_id" -o 'jsonpath={.items[0].metadata.name}')
k8s_pod_status nova "$puller" Pending ImagePullBackOff 'Back-off pulling image "vllm/vllm-openai:v0.6.3"'
if t_wait_sql "SELECT count(*) FROM nodes WHERE state_reason LIKE '%ImagePullBackOff%Back-off pulling image%'" 1 20; then
	t_pass "an image pull failure is reported on its node"
else t_fail "image pull" "$(t_sql "SELECT string_agg(name || ':' || state || ':' || state_reason, '; ') FROM nodes")"; fi
k8s_pod_status nova "$puller" Running

# Scale down: the idle pod goes.
t_expect_exit 0 "scale down to 1" "$C" deployment scale web --replicas 1
i=0; while [ "$($K get pods -l "nova.dev/pool-id=$pool_id" -o name 2>/dev/null | wc -l)" -ne 1 ] && [ $i -lt 200 ]; do
	i=$((i + 1)); sleep 0.1; done
[ "$($K get pods -l "nova.dev/pool-id=$pool_id" -o name | wc -l)" -eq 1 ] && t_pass "scale down deletes a pod" ||
	t_fail "scale down" "$($K get pods 2>&1)"
if t_wait_cmd 10 ev_check "any(e['reason'] == 'NovaDeleted' and e['type'] == 'Normal' and e['involvedObject']['kind'] == 'Pod'
	and 'idle node removed' in e['message'] for e in ev)"; then t_pass "the idle pod gets a NovaDeleted event"
else t_fail "NovaDeleted" "$(cat "$T_WORK/events.json")"; fi

# An event that cannot be posted never fails what Nova does, and is
# logged once.
k8s_curl /_fake/fail -X POST -d '{"code": 403, "count": 4, "match": "POST /api/v1/namespaces/nova/events"}' >/dev/null

# More than the cluster holds: a pod stays Pending, and its node says why.
t_expect_exit 0 "scale up past the cluster" "$C" deployment scale web --replicas 6
if t_wait_sql "SELECT count(*) FROM nodes WHERE state_reason LIKE '%Unschedulable%'" 1 20 ||
	[ "$(t_sql "SELECT count(*) > 0 FROM nodes WHERE state_reason LIKE '%Unschedulable%'")" = t ]; then
	t_pass "an unschedulable pod's reason is on its node"
else t_fail "unschedulable" "$(t_sql "SELECT string_agg(name || ':' || state || ':' || state_reason, '; ') FROM nodes")"; fi
n=$(grep -c "cannot post Kubernetes events" "$T_WORK/novad.log")
[ "$n" -eq 1 ] && t_pass "events refused by the API server: the pods are made anyway, one warning logged" ||
	t_fail "event failures" "$n warnings"
t_expect_exit 0 "scale back to 1" "$C" deployment scale web --replicas 1

# An orphan: a pod with this pool's label and a node id Nova never made.
cat >"$T_WORK/orphan.yaml" <<EOM
apiVersion: v1
kind: Pod
metadata:
  name: nova-00000000-0000-4000-8000-00000000beef
  labels: {app.kubernetes.io/managed-by: nova, nova.dev/pool-id: "$pool_id", nova.dev/node-id: 00000000-0000-4000-8000-00000000beef}
spec:
  containers: [{name: model, image: busybox}]
EOM
t_expect_exit 0 "an orphan pod applied with kubectl" $K apply -f "$T_WORK/orphan.yaml"
i=0; while $K get pod nova-00000000-0000-4000-8000-00000000beef >/dev/null 2>&1 && [ $i -lt 150 ]; do
	i=$((i + 1)); sleep 0.1; done
if $K get pod nova-00000000-0000-4000-8000-00000000beef >/dev/null 2>&1; then t_fail "orphan deleted" "still there"
else t_pass "the reconciler deletes the orphan pod"; fi
if t_wait_cmd 10 ev_check "any(e['reason'] == 'NovaDeleted' and e['involvedObject']['name'] == 'nova-00000000-0000-4000-8000-00000000beef'
	and 'orphan: pool gpus has no node' in e['message'] for e in ev)"; then t_pass "the orphan gets a NovaDeleted event saying why"
else t_fail "orphan event" "$(cat "$T_WORK/events.json")"; fi

# novad dies right after creating a pod, before recording it: after the
# restart the same pod (named by the node id) is taken, never a twin.
t_expect_exit 0 "scale to 2" "$C" deployment scale web --replicas 2
i=0; while [ "$($K get pods -l "nova.dev/pool-id=$pool_id" -o name 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 300 ]; do
	i=$((i + 1)); sleep 0.02; done
kill -9 "$T_PID"; wait "$T_PID" 2>/dev/null; T_PID=
export T_LISTEN=${NOVA_URL#http://} # the pods' sidecars know novad at its address
nova_start || { t_fail "novad restarts" "see log"; exit 0; }
if t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'ready'" 2 40; then t_pass "after the restart both replicas are ready"
else t_fail "ready after restart" "$(t_sql "SELECT string_agg(state || ':' || state_reason, '; ') FROM replicas")"; fi
# Nodes scaled away earlier may still be on their way out (terminating,
# their pods gone) on a loaded machine: the count settles within seconds;
# a twin (a pod more than the live nodes) never would.
i=0
while :; do
	live=$(t_sql "SELECT count(*) FROM nodes WHERE state NOT IN ('terminated', 'failed')")
	pods=$($K get pods -l "nova.dev/pool-id=$pool_id" -o name | wc -l)
	[ "$pods" -eq "$live" ] || [ $i -ge 150 ] && break
	i=$((i + 1)); sleep 0.2
done
[ "$pods" -eq "$live" ] && t_pass "one pod per live node ($pods), no twin" || t_fail "no twin" "$pods pods, $live live nodes"

# A namespace quota: the API server's refusal reaches the deployment with
# its reason and message.
curl -s --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" "$K8S_URL/_fake/quota" -d '{"pods": 0}' >/dev/null
t_expect_exit 0 "scale past the quota" "$C" deployment scale web --replicas 10
if t_wait_sql "SELECT count(*) FROM deployments WHERE state_reason LIKE '%exceeded quota%'" 1 30 ||
	t_wait_sql "SELECT count(*) FROM node_events WHERE reason LIKE '%exceeded quota%'" 1 5; then
	t_pass "quota exceeded is reported with the Kubernetes message"
else t_fail "quota" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi

# Status comes from a watch, not from polling each pod: reads of single
# pods are only those provisioning makes (one per pod created, and the
# odd retry), however long the test ran.
gets=$(grep " GET /api/v1/namespaces/nova/pods/nova-" "$K8S_DIR/requests.log" | grep -vc beef)  # not the orphan the test polls
posts=$(grep -c " POST /api/v1/namespaces/nova/pods " "$K8S_DIR/requests.log")
[ "$gets" -le $((posts * 2 + 4)) ] && t_pass "pod status is watched, not polled ($gets single-pod reads for $posts creates)" ||
	t_fail "watched, not polled" "$gets single-pod reads for $posts creates"

# Deleting the pool removes every pod, secret and service.
"$C" deployment stop web >/dev/null
t_wait_sql "SELECT state FROM deployments" stopped 20 >/dev/null
"$C" deployment delete web >/dev/null
t_expect_exit 0 "forced pool delete" "$C" pool delete gpus --force
t_expect_exit 0 "nothing of the pool left" $K get pods,secrets,services -l "nova.dev/pool-id=$pool_id" -o name
[ ! -s "$T_WORK/out" ] && t_pass "no pod, secret or service left" || t_fail "left over" "$(cat "$T_WORK/out")"
exit 0
