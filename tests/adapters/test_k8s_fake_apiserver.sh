#!/bin/sh
# The fake Kubernetes API server (tests/k8s/fake_apiserver.py) is faithful
# enough for the real kubectl: Debian's kubernetes-client drives it through
# version, get (tables, jsonpath, selectors), apply, create, get -w, delete,
# with a bearer token and with a client certificate; a wrong token is
# refused. Then the wire details the kubernetes adapter relies on, with curl:
# Status objects (401, 404, 409 AlreadyExists and Conflict, 422, 403 quota),
# list resourceVersions, watch streams from a resourceVersion and 410 Expired
# for a compacted one, merge patches, the unschedulable condition.
# When another kubectl is on PATH (a newer one), the kubectl part runs with it
# too.
set -u
. tests/support/lib.sh
. tests/support/k8s.sh
trap 'k8s_stop; t_cleanup' EXIT

if ! KDEB=$(k8s_kubectl_path 2>"$T_WORK/kubectl.err"); then
	t_fail "Debian's kubectl (kubernetes-client) is available" "$(cat "$T_WORK/kubectl.err")"
	exit 1
fi
if ! k8s_start --auto-run --nodes "gpu-1=8,gpu-2=4"; then
	t_fail "the fake API server starts" "$(cat "$T_WORK/k8s/server.log" 2>/dev/null)"
	exit 1
fi
t_pass "the fake API server starts"
export HOME="$T_WORK/home"   # kubectl's discovery cache stays in the test
mkdir -p "$HOME"

# wait_for FILE PATTERN SECONDS
wait_for() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -gt $(($3 * 10)) ] && return 1
		sleep 0.1
	done
}

# The GPU count is quoted, as the server serializes quantities: an integer
# there makes every kubectl apply send a (no-op) patch and say "configured".
pod_yaml() { # NAME APP GPUS
	cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  labels: {app: $2, nova.io/pool: p1}
spec:
  containers:
  - name: model
    image: registry.example/vllm:0.6
    resources:
      limits: {nvidia.com/gpu: "$3"}
EOF
}

# prove KUBECTL LABEL: the kubectl part, with one kubectl binary.
prove() {
	kc=$1; L=$2
	k() { "$kc" --kubeconfig "$K8S_KUBECONFIG_TOKEN" "$@"; }
	p=web-$L
	t_expect_exit 0 "$L: kubectl version reaches the server" k version
	t_expect_out "v1.28.0-nova-fake" "$L: kubectl version shows the server's version"

	t_expect_exit 0 "$L: get nodes" k get nodes
	t_expect_out "gpu-1 *Ready" "$L: get nodes prints the server-side table"
	out=$(k get nodes -o jsonpath='{.items[*].status.allocatable.nvidia\.com/gpu}' 2>&1)
	[ "$out" = "8 4" ] && t_pass "$L: get nodes -o jsonpath shows allocatable GPUs" ||
		t_fail "$L: jsonpath allocatable GPUs" "got: $out"

	pod_yaml "$p" x 2 >"$T_WORK/$p.yaml"
	t_expect_exit 0 "$L: apply -f creates the pod" k apply -f "$T_WORK/$p.yaml"
	t_expect_out "pod/$p created" "$L: apply says created"
	t_expect_exit 0 "$L: apply -f again" k apply -f "$T_WORK/$p.yaml"
	t_expect_out "pod/$p unchanged" "$L: the second apply is unchanged"
	sed 's/app: x/app: x2/' "$T_WORK/$p.yaml" >"$T_WORK/$p-2.yaml"
	t_expect_exit 0 "$L: apply -f a changed label" k apply -f "$T_WORK/$p-2.yaml"
	t_expect_out "pod/$p configured" "$L: apply of a change says configured (strategic merge patch)"
	t_expect_exit 0 "$L: get -l app=x2 after the patch" k get pods -l app=x2 -o name
	t_expect_out "pod/$p" "$L: the patched label selects the pod"
	t_expect_exit 0 "$L: apply back" k apply -f "$T_WORK/$p.yaml"

	if t_wait_cmd 5 sh -c "'$kc' --kubeconfig '$K8S_KUBECONFIG_TOKEN' get pods | grep -q '^$p .*Running'"; then
		t_pass "$L: get pods shows the pod Running (auto-run)"
	else t_fail "$L: get pods shows the pod Running" "$(k get pods 2>&1)"; fi
	t_expect_exit 0 "$L: get pods -l app=x" k get pods -l app=x --show-labels
	t_expect_out "app=x,nova.io/pool=p1" "$L: labels shown"
	t_expect_exit 0 "$L: get pods -l 'app in (x,z),nova.io/pool,!gone'" \
		k get pods -l 'app in (x,z),nova.io/pool,!gone' -o name
	t_expect_out "pod/$p" "$L: set-based selector matches"
	out=$(k get pods -l 'app notin (x)' -o name 2>&1)
	case "$out" in *"pod/$p"*) t_fail "$L: notin excludes" "$out" ;; *) t_pass "$L: notin excludes" ;; esac
	out=$(k get pods --field-selector status.phase=Running,metadata.name="$p" -o name 2>&1)
	[ "$out" = "pod/$p" ] && t_pass "$L: field selector status.phase and metadata.name" ||
		t_fail "$L: field selector" "$out"

	t_expect_exit 0 "$L: get pod -o json" k get pod "$p" -o json
	t_expect_out '"nvidia.com/gpu": "2"' "$L: the GPU request is visible"
	out=$(k get pod "$p" -o jsonpath='{.spec.containers[0].resources.requests.nvidia\.com/gpu} {.spec.nodeName} {.status.podIP}')
	[ "$out" = "2 gpu-1 127.0.0.1" ] && t_pass "$L: requests, node and IP by jsonpath" ||
		t_fail "$L: requests, node and IP" "$out"
	t_expect_exit 0 "$L: custom columns" k get pods \
		-o 'custom-columns=NAME:.metadata.name,GPUS:.spec.containers[*].resources.requests.nvidia\.com/gpu,POOL:.metadata.labels.nova\.io/pool'
	t_expect_out "^$p *2 *p1" "$L: custom columns show name, GPUs and pool label"

	t_expect_exit 0 "$L: describe pod" k describe pod "$p"
	t_expect_out "^Node: *gpu-1/127.0.0.1" "$L: describe shows the node"
	t_expect_out "nvidia.com/gpu: *2" "$L: describe shows the GPU limit"
	t_expect_exit 0 "$L: label" k label pod "$p" nova.io/node=n-1
	t_expect_exit 0 "$L: patch --type=merge" k patch pod "$p" --type=merge -p '{"metadata":{"annotations":{"a":"1"}}}'
	t_expect_exit 0 "$L: patch --type=json" k patch pod "$p" --type=json \
		-p '[{"op":"add","path":"/metadata/labels/j","value":"2"}]'
	out=$(k get pod "$p" -o jsonpath='{.metadata.labels.nova\.io/node} {.metadata.annotations.a} {.metadata.labels.j}')
	[ "$out" = "n-1 1 2" ] && t_pass "$L: label and both patches took" || t_fail "$L: label and patches" "$out"
	t_expect_exit 0 "$L: create secret generic" k create secret generic "tok-$L" --from-literal=token=abc
	out=$(k get secret "tok-$L" -o jsonpath='{.data.token}')
	[ "$out" = YWJj ] && t_pass "$L: the secret's data is base64" || t_fail "$L: secret data" "$out"
	t_expect_exit 0 "$L: expose pod" k expose pod "$p" --port 8000 --name "svc-$L"
	t_expect_exit 0 "$L: get svc" k get svc "svc-$L"
	t_expect_out "ClusterIP .*8000/TCP" "$L: the service has a cluster IP and its port"
	t_expect_exit 0 "$L: delete svc and secret" k delete "svc/svc-$L" "secret/tok-$L"
	t_expect_exit 0 "$L: api-resources" k api-resources
	t_expect_out "^pods  *po  *v1  *true  *Pod" "$L: api-resources lists pods"
	k8s_curl "/_fake/pods/default/$p/status" -o /dev/null -X POST -d '{"phase":"Running","log":"model loaded\n"}'
	t_expect_exit 0 "$L: logs" k logs "$p"
	t_expect_out "model loaded" "$L: logs shows the pod's log"

	t_expect_exit 0 "$L: client-certificate kubeconfig works" \
		"$kc" --kubeconfig "$K8S_KUBECONFIG_CERT" get pods -n default
	t_expect_out "$p" "$L: and sees the pod"
	sed "s/token: .*/token: not-the-token/" "$K8S_KUBECONFIG_TOKEN" >"$T_WORK/kc-bad"
	t_expect_exit 1 "$L: a wrong token is refused" "$kc" --kubeconfig "$T_WORK/kc-bad" get pods
	t_expect_out "Unauthorized" "$L: saying Unauthorized"

	# get -w sees a status change made with the switch.
	"$kc" --kubeconfig "$K8S_KUBECONFIG_TOKEN" get pods -w >"$T_WORK/watch-$L" 2>&1 &
	wpid=$!
	if wait_for "$T_WORK/watch-$L" "^$p .*Running" 10; then
		k8s_pod_status default "$p" Failed
		if wait_for "$T_WORK/watch-$L" "^$p .*Error" 10; then t_pass "$L: get -w shows the pod failing"
		else t_fail "$L: get -w shows the pod failing" "$(cat "$T_WORK/watch-$L")"; fi
	else
		t_fail "$L: get -w lists the pod" "$(cat "$T_WORK/watch-$L")"
	fi
	kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null

	t_expect_exit 0 "$L: delete pod" k delete pod "$p"
	t_expect_out "pod \"$p\" deleted" "$L: delete says deleted"
	t_expect_exit 1 "$L: get after delete exits 1" k get pod "$p"
	t_expect_out "(NotFound): pods \"$p\" not found" "$L: with NotFound"

	t_expect_exit 0 "$L: create -f" k create -f "$T_WORK/$p.yaml"
	t_expect_exit 1 "$L: create -f twice" k create -f "$T_WORK/$p.yaml"
	t_expect_out "(AlreadyExists)" "$L: the second create is AlreadyExists"
	t_expect_exit 0 "$L: delete -f" k delete -f "$T_WORK/$p.yaml"
}

prove "$KDEB" debian
other=$(command -v kubectl || true)
if [ -n "$other" ] && [ "$(readlink -f "$other")" != "$(readlink -f "$KDEB")" ]; then
	prove "$other" path
fi

# ---- the wire, with curl
code() { cp=$1; shift; k8s_curl "$cp" -o "$T_WORK/body" -w '%{http_code}' "$@" 2>/dev/null; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T_WORK/body" "$1"; }

c=$(curl -s -o "$T_WORK/body" -w '%{http_code}' --cacert "$K8S_CA" "$K8S_URL/api/v1/pods")
[ "$c" = 401 ] && [ "$(jget 'd["kind"], d["reason"], d["code"]')" = "('Status', 'Unauthorized', 401)" ] &&
	t_pass "no credentials: 401 with a Status" || t_fail "401 Status" "$c $(cat "$T_WORK/body")"
c=$(curl -s -o "$T_WORK/body" -w '%{http_code}' --cacert "$K8S_CA" --cert "$K8S_CLIENT_CERT" \
	--key "$K8S_CLIENT_KEY" "$K8S_URL/api/v1/nodes")
[ "$c" = 200 ] && t_pass "a client certificate alone authenticates" || t_fail "client cert" "$c"
c=$(code /openapi/v2 -D "$T_WORK/headers")
grep -qi '^content-type: application/com.github.proto-openapi.spec.v2.v1.0+protobuf' "$T_WORK/headers" &&
	[ "$c" = 200 ] && [ ! -s "$T_WORK/body" ] && t_pass "/openapi/v2 is an empty protobuf document" ||
	t_fail "/openapi/v2" "$c $(cat "$T_WORK/headers")"

pod_json() { # NAME [GPUS]
	printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","labels":{"app":"wire"}},"spec":{"containers":[{"name":"m","image":"img:1","resources":{"limits":{"nvidia.com/gpu":"%s"}}}]}}' "$1" "${2:-1}"
}
post() { code "$1" -X POST -H 'Content-Type: application/json' -d "$2"; }
# wait_pod NAME PYEXPR: poll (5 s) until PYEXPR on the pod d is True; the
# pod stays in $T_WORK/body.
wait_pod() {
	i=0
	while [ $i -lt 50 ]; do
		code "/api/v1/namespaces/default/pods/$1" >/dev/null
		[ "$(jget "$2" 2>/dev/null)" = True ] && return 0
		i=$((i + 1)); sleep 0.1
	done
	return 1
}

c=$(code /api/v1/namespaces/default/pods)
rv0=$(jget 'd["metadata"]["resourceVersion"]')
[ "$c" = 200 ] && [ "$(jget 'd["kind"]')" = PodList ] && [ -n "$rv0" ] &&
	t_pass "a list carries metadata.resourceVersion" || t_fail "list rv" "$c $(cat "$T_WORK/body")"

# A watch from that resourceVersion sees what happens after it, in order.
k8s_curl "/api/v1/namespaces/default/pods?watch=1&resourceVersion=$rv0&timeoutSeconds=3&labelSelector=app%3Dwire" \
	-N >"$T_WORK/watch-wire" 2>&1 &
wpid=$!
sleep 0.3
c=$(post /api/v1/namespaces/default/pods "$(pod_json w1)")
[ "$c" = 201 ] && [ "$(jget 'd["status"]["phase"]')" = Pending ] &&
	t_pass "create answers 201 with the pod Pending" || t_fail "create 201" "$c $(cat "$T_WORK/body")"
uid=$(jget 'd["metadata"]["uid"]')
c=$(post /api/v1/namespaces/default/pods "$(pod_json w1)")
[ "$c" = 409 ] && [ "$(jget 'd["reason"], d["details"]["name"], d["details"]["kind"]')" = "('AlreadyExists', 'w1', 'pods')" ] &&
	t_pass "create twice: 409 AlreadyExists with details" || t_fail "409 AlreadyExists" "$c $(cat "$T_WORK/body")"
wait "$wpid"
python3 - "$T_WORK/watch-wire" "$uid" >"$T_WORK/out" 2>&1 <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
types = [(e["type"], e["object"]["metadata"]["name"]) for e in ev]
assert types[:2] == [("ADDED", "w1"), ("MODIFIED", "w1")], types
assert ev[0]["object"]["metadata"]["uid"] == sys.argv[2]
assert ev[1]["object"]["status"]["phase"] == "Running", ev[1]["object"]["status"]
rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in ev]
assert rvs == sorted(rvs), rvs
EOF
rc=$?
[ $rc -eq 0 ] && t_pass "watch from a resourceVersion: ADDED then MODIFIED Running, in order, ends at timeoutSeconds" ||
	t_fail "watch from a resourceVersion" "$(cat "$T_WORK/out" "$T_WORK/watch-wire")"

c=$(post /api/v1/namespaces/default/pods "$(pod_json Bad_Name)")
[ "$c" = 422 ] && [ "$(jget 'd["reason"], d["details"]["causes"][0]["field"]')" = "('Invalid', 'metadata.name')" ] &&
	t_pass "a bad name: 422 Invalid naming metadata.name" || t_fail "422 bad name" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/pods '{"apiVersion":"v1","kind":"Pod","metadata":{},"spec":{"containers":[{"name":"m","image":"i"}]}}')
[ "$c" = 422 ] && grep -q 'metadata.name: Required value: name or generateName is required' "$T_WORK/body" &&
	t_pass "a missing name: 422 Required value" || t_fail "422 missing name" "$c $(cat "$T_WORK/body")"

c=$(post /api/v1/namespaces/default/pods '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"t1","labels":{"n":1}},"spec":{"containers":[{"name":"m","image":"i"}]}}')
[ "$c" = 400 ] && [ "$(jget 'd["reason"]')" = BadRequest ] &&
	t_pass "a field of the wrong JSON type: 400 BadRequest" || t_fail "400 type" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/pods "$(pod_json t2 lots)")
[ "$c" = 400 ] && grep -q 'quantities must match' "$T_WORK/body" &&
	t_pass "a malformed quantity: 400 BadRequest" || t_fail "400 quantity" "$c $(cat "$T_WORK/body")"

code /api/v1/namespaces/default/pods/w1 >/dev/null
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["metadata"]["resourceVersion"]="1"; d["metadata"]["labels"]["x"]="y"; print(json.dumps(d))' \
	"$T_WORK/body" >"$T_WORK/stale.json"
c=$(code /api/v1/namespaces/default/pods/w1 -X PUT -H 'Content-Type: application/json' -d @"$T_WORK/stale.json")
[ "$c" = 409 ] && [ "$(jget 'd["reason"]')" = Conflict ] &&
	t_pass "PUT with a stale resourceVersion: 409 Conflict" || t_fail "409 Conflict" "$c $(cat "$T_WORK/body")"
code /api/v1/namespaces/default/pods/w1 >/dev/null
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["metadata"]["labels"]["x"]="y"; print(json.dumps(d))' \
	"$T_WORK/body" >"$T_WORK/fresh.json"
c=$(code /api/v1/namespaces/default/pods/w1 -X PUT -H 'Content-Type: application/json' -d @"$T_WORK/fresh.json")
[ "$c" = 200 ] && [ "$(jget 'd["metadata"]["labels"]["x"]')" = y ] &&
	t_pass "PUT with the current resourceVersion replaces" || t_fail "PUT current" "$c $(cat "$T_WORK/body")"
c=$(code /api/v1/namespaces/default/pods/w1 -X PATCH -H 'Content-Type: application/merge-patch+json' \
	-d '{"metadata":{"labels":{"x":null,"nova.io/node":"n1"}}}')
[ "$c" = 200 ] && [ "$(jget 'sorted(d["metadata"]["labels"].items())')" = "[('app', 'wire'), ('nova.io/node', 'n1')]" ] &&
	t_pass "merge patch sets and removes labels" || t_fail "merge patch" "$c $(cat "$T_WORK/body")"

c=$(code /api/v1/namespaces/default/pods/w1 -X PATCH -H 'Content-Type: application/strategic-merge-patch+json' \
	-d '{"spec":{"restartPolicy":"Never"}}')
[ "$c" = 422 ] && grep -q 'spec: Forbidden: pod updates may not change fields' "$T_WORK/body" &&
	t_pass "a pod's spec is immutable but for images: 422 Forbidden" || t_fail "pod spec immutable" "$c $(cat "$T_WORK/body")"
c=$(code /api/v1/namespaces/default/pods/w1 -X PATCH -H 'Content-Type: application/strategic-merge-patch+json' \
	-d '{"spec":{"containers":[{"name":"m","image":"img:2"}]}}')
[ "$c" = 200 ] && [ "$(jget 'd["spec"]["containers"][0]["image"], d["metadata"]["generation"]')" = "('img:2', 2)" ] &&
	t_pass "an image update is allowed and bumps metadata.generation" || t_fail "image update" "$c $(cat "$T_WORK/body")"

# A watch with a field selector: the pod enters it (ADDED) when it runs and
# leaves it (DELETED) when it fails, as the real watch cache reports.
code /api/v1/namespaces/default/pods >/dev/null
rvs=$(jget 'd["metadata"]["resourceVersion"]')
k8s_curl "/api/v1/namespaces/default/pods?watch=1&resourceVersion=$rvs&timeoutSeconds=4&fieldSelector=status.phase%3DRunning" \
	-N >"$T_WORK/watch-phase" 2>&1 &
wpid=$!
post /api/v1/namespaces/default/pods "$(pod_json w2)" >/dev/null
wait_pod w2 'd["status"]["phase"] == "Running"'
k8s_pod_status default w2 Failed Error "exit 1"
wait "$wpid"
python3 - "$T_WORK/watch-phase" >"$T_WORK/out" 2>&1 <<'EOF2'
import json, sys
ev = [(e["type"], e["object"]["metadata"]["name"], e["object"]["status"]["phase"])
      for e in map(json.loads, filter(str.strip, open(sys.argv[1])))]
assert ev == [("ADDED", "w2", "Running"), ("DELETED", "w2", "Failed")], ev
EOF2
rc=$?
[ $rc -eq 0 ] && t_pass "a field-selector watch: ADDED on entering, DELETED on leaving" ||
	t_fail "field-selector watch" "$(cat "$T_WORK/out")"
code /api/v1/namespaces/default/pods/w2 >/dev/null
rvw=$(jget 'd["metadata"]["resourceVersion"]')
c=$(code /api/v1/namespaces/default/pods/w2 -X PATCH -H 'Content-Type: application/strategic-merge-patch+json' \
	-d '{"metadata":{"labels":{"app":"wire"}}}')
[ "$c" = 200 ] && [ "$(jget 'd["metadata"]["resourceVersion"]')" = "$rvw" ] &&
	t_pass "a no-op patch keeps the resourceVersion" || t_fail "no-op patch" "$c $rvw $(cat "$T_WORK/body")"
code /api/v1/namespaces/default/pods/w2 -X DELETE >/dev/null

# Nothing fits 16 GPUs: Pending, with the scheduler's message.
post /api/v1/namespaces/default/pods "$(pod_json big 16)" >/dev/null
wait_pod big 'any(c["type"] == "PodScheduled" for c in d["status"].get("conditions", []))'
[ "$(jget '[(c["reason"], c["message"]) for c in d["status"]["conditions"] if c["type"] == "PodScheduled"][0]')" = \
	"('Unschedulable', '0/2 nodes are available: 2 Insufficient nvidia.com/gpu.')" ] &&
	[ "$(jget 'd["status"]["phase"]')" = Pending ] &&
	t_pass "an unschedulable pod stays Pending with the scheduler's message" ||
	t_fail "unschedulable" "$(cat "$T_WORK/body")"
k8s_pod_status default big Pending ImagePullBackOff 'Back-off pulling image "img:1"'
code /api/v1/namespaces/default/pods/big >/dev/null
[ "$(jget 'd["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]')" = ImagePullBackOff ] &&
	t_pass "the switch sets an image pull failure" || t_fail "image pull switch" "$(cat "$T_WORK/body")"

c=$(post /_fake/quota '{"pods": 2}')
c=$(post /api/v1/namespaces/default/pods "$(pod_json over)")
[ "$c" = 403 ] && [ "$(jget 'd["reason"], d["message"]')" = \
	"('Forbidden', 'pods \"over\" is forbidden: exceeded quota: compute-resources, requested: pods=1, used: pods=2, limited: pods=2')" ] &&
	t_pass "over the pod quota: 403 Forbidden with the quota message" || t_fail "quota" "$c $(cat "$T_WORK/body")"
post /_fake/quota '{"pods": null}' >/dev/null

c=$(code /api/v1/namespaces/default/pods/nope -X DELETE)
[ "$c" = 404 ] && [ "$(jget 'd["reason"], d["details"]["name"]')" = "('NotFound', 'nope')" ] &&
	t_pass "delete of a missing pod: 404 NotFound" || t_fail "404 delete" "$c $(cat "$T_WORK/body")"
code "/api/v1/namespaces/default/pods" >/dev/null
rv1=$(jget 'd["metadata"]["resourceVersion"]')
c=$(code /api/v1/namespaces/default/pods/w1 -X DELETE)
[ "$c" = 200 ] && t_pass "delete answers 200 with the object" || t_fail "delete" "$c"
c=$(code "/api/v1/namespaces/default/pods?watch=true&resourceVersion=$rv1&timeoutSeconds=1")
grep -q '"type": "DELETED"' "$T_WORK/body" && t_pass "the deletion is a DELETED event" ||
	t_fail "DELETED event" "$(cat "$T_WORK/body")"

# Pagination: limit and continue walk the whole list; kubectl follows it.
for n in pg-a pg-b pg-c; do post /api/v1/namespaces/default/pods "$(pod_json $n 0)" >/dev/null; done
c=$(code "/api/v1/namespaces/default/pods?limit=2&labelSelector=app%3Dwire")
names=$(jget '" ".join(i["metadata"]["name"] for i in d["items"])')
cont=$(jget 'd["metadata"]["continue"]')
left=$(jget 'd["metadata"]["remainingItemCount"]')
c2=$(code "/api/v1/namespaces/default/pods?limit=2&labelSelector=app%3Dwire&continue=$cont")
names="$names $(jget '" ".join(i["metadata"]["name"] for i in d["items"])')"
[ "$c$c2" = 200200 ] && [ "$names" = "big pg-a pg-b pg-c" ] && [ "$left" = 2 ] &&
	[ "$(jget 'd["metadata"].get("continue", "none")')" = none ] &&
	t_pass "limit and continue page through a list" || t_fail "pagination" "$c $c2 [$names] $left"
out=$("$KDEB" --kubeconfig "$K8S_KUBECONFIG_TOKEN" get pods -l app=wire --chunk-size=1 -o name 2>&1 | tr '\n' ' ')
[ "$out" = "pod/big pod/pg-a pod/pg-b pod/pg-c " ] && t_pass "kubectl get --chunk-size=1 follows continue" ||
	t_fail "kubectl chunked list" "$out"

# Compaction: a watch from before it gets the ERROR event with 410 Expired,
# and so does a continue token from before it.
# A write after the token was issued, so compaction passes its version
# (with none, the token's version is the compacted one, still valid: the
# check raced the auto-run scheduler's last status write).
post /api/v1/namespaces/default/secrets '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"after-token"}}' >/dev/null
post /_fake/compact '' >/dev/null
c=$(code "/api/v1/namespaces/default/pods?limit=2&labelSelector=app%3Dwire&continue=$cont")
[ "$c" = 410 ] && [ "$(jget 'd["reason"]')" = Expired ] && t_pass "a continue token from before compaction: 410 Expired" ||
	t_fail "continue 410" "$c $(cat "$T_WORK/body")"
c=$(code "/api/v1/namespaces/default/pods?watch=1&resourceVersion=$rv1&timeoutSeconds=2")
python3 - "$T_WORK/body" >"$T_WORK/out" 2>&1 <<'EOF'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(ev) == 1 and ev[0]["type"] == "ERROR", ev
o = ev[0]["object"]
assert (o["kind"], o["status"], o["code"], o["reason"]) == ("Status", "Failure", 410, "Expired"), o
EOF
rc=$?
[ "$c" = 200 ] && [ $rc -eq 0 ] && t_pass "a watch from a compacted resourceVersion: ERROR event, Status 410 Expired" ||
	t_fail "410 Expired" "$c $(cat "$T_WORK/out" "$T_WORK/body")"

# ---- strict pods: what a real server refuses in a pod's labels, node
# selector and tolerations, it refuses here, with one cause per error.
pod_with() { # NAME SPEC-MEMBERS [LABELS]
	printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","labels":{%s}},"spec":{"containers":[{"name":"m","image":"img:1"}]%s}}' \
		"$1" "${3:-}" "$2"
}
c=$(post /api/v1/namespaces/default/pods "$(pod_with st1 ',"tolerations":[{"key":"a","operator":"Exists"},{"key":"b","operator":"Sometimes","effect":"NoRun"}]')")
[ "$c" = 422 ] && [ "$(jget '[(x["reason"], x["field"]) for x in d["details"]["causes"]]')" = \
	"[('FieldValueNotSupported', 'spec.tolerations[1].operator'), ('FieldValueNotSupported', 'spec.tolerations[1].effect')]" ] &&
	grep -q 'Unsupported value: \\"Sometimes\\": supported values: \\"Equal\\", \\"Exists\\"' "$T_WORK/body" &&
	t_pass "an unknown toleration operator and effect: 422 Invalid, a cause for each" ||
	t_fail "422 toleration operator" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/pods "$(pod_with st2 ',"tolerations":[{"key":"a","operator":"Exists","effect":"NoSchedule","tolerationSeconds":30}]')")
[ "$c" = 422 ] && [ "$(jget 'd["details"]["causes"][0]["field"]')" = "spec.tolerations[0].effect" ] &&
	grep -q "effect must be 'NoExecute' when" "$T_WORK/body" &&
	t_pass "tolerationSeconds without NoExecute: 422 Invalid" || t_fail "422 tolerationSeconds" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/pods "$(pod_with st3 ',"tolerations":[{"key":"a","operator":"Exists","effect":"NoExecute","tolerationSeconds":"30"}]')")
[ "$c" = 400 ] && grep -q 'cannot unmarshal str into Go struct field Toleration.spec.tolerations.tolerationSeconds of type int64' "$T_WORK/body" &&
	t_pass "a string tolerationSeconds: 400 from the decoder" || t_fail "400 tolerationSeconds" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/pods "$(pod_with st4 ',"tolerations":[{"operator":"Exists","value":"x"}]')")
[ "$c" = 422 ] && grep -q "value must be empty when" "$T_WORK/body" &&
	t_pass "Exists with a value: 422 Invalid" || t_fail "422 Exists value" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/pods "$(pod_with st5 ',"nodeSelector":{"gpu":"a100 80g"}')")
[ "$c" = 422 ] && [ "$(jget 'd["details"]["causes"][0]["field"]')" = spec.nodeSelector ] &&
	t_pass "a bad node selector value: 422 Invalid on spec.nodeSelector" || t_fail "422 nodeSelector" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/pods "$(pod_with st6 '' '"bad key!":"x"')")
[ "$c" = 422 ] && [ "$(jget 'd["details"]["causes"][0]["field"]')" = metadata.labels ] &&
	t_pass "a bad label key: 422 Invalid on metadata.labels" || t_fail "422 label key" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/pods "$(pod_with st7 ',"nodeSelector":{"example.com/gpu":""},"tolerations":[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoExecute","tolerationSeconds":60},{"operator":"Exists"}]' '"example.com/team":"a_1.b-2"')")
[ "$c" = 201 ] && t_pass "a pod with good labels, node selector and tolerations is created" ||
	t_fail "good pod" "$c $(cat "$T_WORK/body")"

# ---- events: created, validated, listed by the object they are about,
# shown by kubectl get events and describe pod.
code /api/v1/namespaces/default/pods/st7 >/dev/null
st7uid=$(jget 'd["metadata"]["uid"]')
ev_json() { # NAME INVOLVED-OBJECT [REASON [TYPE]]
	printf '{"apiVersion":"v1","kind":"Event","metadata":{"name":"%s","namespace":"default"},"involvedObject":%s,"reason":"%s","message":"Nova created this pod for node n-1","type":"%s","firstTimestamp":"2026-01-01T00:00:00Z","lastTimestamp":"2026-01-01T00:00:00Z","count":1,"source":{"component":"nova"},"reportingComponent":"nova","reportingInstance":"novad-test"}' \
		"$1" "$2" "${3-NovaCreated}" "${4-Normal}"
}
ref="{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"namespace\":\"default\",\"name\":\"st7\",\"uid\":\"$st7uid\"}"
c=$(post /api/v1/namespaces/default/events "$(ev_json st7.1 "$ref")")
[ "$c" = 201 ] && [ "$(jget 'd["kind"], d["involvedObject"]["name"], d["reason"]')" = "('Event', 'st7', 'NovaCreated')" ] &&
	t_pass "an event is created: 201" || t_fail "event 201" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/events "$(ev_json st7.2 '{"kind":"pod","apiVersion":"apps/v1","name":"st7","namespace":"default"}')")
[ "$c" = 422 ] && [ "$(jget '[x["field"] for x in d["details"]["causes"]]')" = "['involvedObject.kind', 'involvedObject.apiVersion']" ] &&
	t_pass "an event about a wrong kind and apiVersion: 422 Invalid" || t_fail "422 event kind" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/events "$(ev_json st7.3 '{"kind":"Pod","apiVersion":"v1","name":"st7","namespace":"other"}' '' Info)")
[ "$c" = 422 ] && [ "$(jget '[x["field"] for x in d["details"]["causes"]]')" = "['involvedObject.namespace', 'reason', 'type']" ] &&
	t_pass "an event in another namespace than its object's, without a reason, of an unknown type: 422" ||
	t_fail "422 event namespace" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/events '{"apiVersion":"v1","kind":"Event","metadata":{"name":"st7.4"},"reason":"X","message":"m","type":"Normal"}')
[ "$c" = 422 ] && [ "$(jget 'd["details"]["causes"][0]["reason"], d["details"]["causes"][0]["field"]')" = "('FieldValueRequired', 'involvedObject')" ] &&
	t_pass "an event without involvedObject: 422 Required" || t_fail "422 involvedObject" "$c $(cat "$T_WORK/body")"
c=$(post /api/v1/namespaces/default/events "$(ev_json st7.5 '"st7"')")
[ "$c" = 400 ] && t_pass "an involvedObject that is not an object: 400" || t_fail "400 involvedObject" "$c $(cat "$T_WORK/body")"
post /api/v1/namespaces/default/events "$(ev_json big.1 '{"kind":"Pod","apiVersion":"v1","name":"big","namespace":"default"}' NovaDeleted)" >/dev/null
c=$(code "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dst7")
[ "$c" = 200 ] && [ "$(jget 'd["kind"], [i["metadata"]["name"] for i in d["items"]]')" = "('EventList', ['st7.1'])" ] &&
	t_pass "events listed by fieldSelector=involvedObject.name" || t_fail "event list" "$c $(cat "$T_WORK/body")"
out=$("$KDEB" --kubeconfig "$K8S_KUBECONFIG_TOKEN" get events 2>&1)
printf '%s\n' "$out" | grep -q "Normal *NovaCreated *pod/st7 *Nova created this pod for node n-1" &&
	t_pass "kubectl get events shows the event" || t_fail "kubectl get events" "$out"
out=$("$KDEB" --kubeconfig "$K8S_KUBECONFIG_TOKEN" describe pod st7 2>&1)
printf '%s\n' "$out" | grep -q "Normal *NovaCreated .* nova *Nova created this pod for node n-1" &&
	! printf '%s\n' "$out" | grep -q NovaDeleted &&
	t_pass "kubectl describe pod shows the pod's events, not another's" || t_fail "kubectl describe events" "$out"
exit 0
