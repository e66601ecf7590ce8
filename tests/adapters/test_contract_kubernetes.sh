#!/bin/sh
# The adapter contract (tests/adapters/driver_contract.c) against the
# kubernetes provider, through the fake API server (tests/k8s/, pods run at
# once: --auto-run) with the kubelet stand-in running each Running pod's
# sidecar as a local process, as test_kubernetes.sh sets them up. A
# kubeconfig naming a port where nothing listens is the unreachable
# provider. The witness for twins counts the pods labelled with the node
# id that are not being deleted, asking the API server directly.
set -u
. tests/support/lib.sh
. tests/support/k8s.sh
KUBELET_PID=
k8s_contract_cleanup() {
	# The kubelet stops the sidecars it runs on TERM.
	[ -n "$KUBELET_PID" ] && kill "$KUBELET_PID" 2>/dev/null && wait "$KUBELET_PID" 2>/dev/null
	k8s_stop
	t_cleanup
}
trap k8s_contract_cleanup EXIT
k8s_start --nodes "gpu-1=2,gpu-2=2" --auto-run || { t_fail "fake API server starts" "$(cat "$T_WORK/k8s/server.log" 2>/dev/null)"; exit 0; }
mkdir -p "$T_WORK/kubelet"
python3 tests/k8s/kubelet.py --server "$K8S_URL" --token "$K8S_TOKEN" --cacert "$K8S_CA" \
	--namespace nova --sidecar "$B/nova-sidecar" --mock-engine "$B/nova-mock-engine" \
	--log-dir "$T_WORK/kubelet" >"$T_WORK/kubelet.log" 2>&1 &
KUBELET_PID=$!
export NOVA_STATE_DIR="$T_WORK/state" NOVA_PROVIDER_FILES="$K8S_DIR"
mkdir -p "$NOVA_STATE_DIR"
# The same cluster's credentials at a port where nothing listens.
dead=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s|server: $K8S_URL|server: https://127.0.0.1:$dead|" "$K8S_KUBECONFIG_TOKEN" >"$K8S_DIR/kubeconfig-dead"
cat >"$T_WORK/count" <<EOC
#!/bin/sh
curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $K8S_TOKEN" \\
	"$K8S_URL/api/v1/namespaces/nova/pods?labelSelector=nova.dev%2Fnode-id%3D\$1" |
	python3 -c 'import json, sys; print(sum(1 for p in json.load(sys.stdin)["items"] if not p["metadata"].get("deletionTimestamp")))'
EOC
chmod 0755 "$T_WORK/count"
common="\"namespace\": \"nova\", \"accelerators_per_pod\": 1, \"accelerator_type\": \"A100-80G\", \"watch_timeout_s\": 2"
cat >"$T_WORK/case.json" <<EOC
{"config": {"kubeconfig": "$K8S_KUBECONFIG_TOKEN", $common},
 "ephemeral": true,
 "count": "$T_WORK/count",
 "wait_s": 20,
 "unreachable": {"config": {"kubeconfig": "$K8S_DIR/kubeconfig-dead", $common}},
 "bad": [{"config": {"kubeconfig": "$K8S_KUBECONFIG_TOKEN", "namespace": "Not_A_Label"}, "field": "config.namespace"},
         {"config": {"kubeconfig": "/nonexistent/kubeconfig"}, "field": "config.kubeconfig"},
         {"config": {"kubeconfig": "$K8S_KUBECONFIG_TOKEN", "image_pull_policy": "Sometimes"},
          "field": "config.image_pull_policy"}]}
EOC
t_cmocka "$B/tests/adapters/driver_contract" kubernetes "$T_WORK/case.json"
exit 0
