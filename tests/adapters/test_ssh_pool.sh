#!/bin/sh
# An ssh pool end to end, through novad and novactl: two namespace hosts
# with fake GPUs (tests/support/sshhosts.sh); novad listens on the hosts'
# bridge so their sidecars reach it. A bad config is refused naming the
# field; a deployment's nodes get nova-sidecar and nova-mock-engine (mock
# agents) installed and started on the hosts over SSH, its replicas run
# there and become routes; a killed sidecar is started again;
# a forced pool delete stops the sidecars and leaves the hosts clean. Needs
# root: without it the hosts cannot be made, and that is a failure.
set -u
. tests/support/lib.sh
. tests/support/sshhosts.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
ssh_hosts_setup 2 "1 2" >"$T_WORK/setup.log" 2>&1 || { t_fail "ssh test hosts" "$(cat "$T_WORK/setup.log")"; exit 0; }
H1=$(ssh_host_addr 1); H2=$(ssh_host_addr 2)
T_LISTEN="10.77.$SSH_SUBNET.1:0"
nova_start || { t_fail "novad starts" "$(tail -3 "$T_WORK/novad.log")"; exit 0; }
C="$B/novactl"
# Sidecars on host I, counted in its network namespace.
sidecars() {
	for p in $(ip netns pids "$(ssh_host_ns "$1")"); do
		{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q '^[^ ]*nova-sidecar ' && echo "$p"
	done | wc -l
}

t_expect_exit 2 "a bad port is refused" "$C" pool create bad --provider ssh \
	--config '{"hosts":[{"address":"a","user":"u","port":70000}],"known_hosts_inline":""}'
t_expect_out "field: config.hosts\[0\].port" "naming the field"
cat >"$T_WORK/hosts.yaml" <<EOH
- {address: "$H1", user: root, key: "$SSH_CLIENT_KEY", labels: {rack: r1}}
- {address: "$H2", user: root, key: "$SSH_CLIENT_KEY"}
EOH
cfg="{\"known_hosts\":\"$SSH_KNOWN_HOSTS\",\"install_dir\":\"$SSH_INSTALL_DIR\",
 \"mock_agents\":true,\"connect_timeout_ms\":2000}"
t_expect_exit 2 "hosts twice are refused" "$C" pool create twice --provider ssh --hosts "$T_WORK/hosts.yaml" \
	--config '{"hosts":[]}'
t_expect_out "in --hosts or in the config, not both" "saying so"
t_expect_exit 0 "ssh pool create --hosts hosts.yaml" "$C" pool create fleet --provider ssh \
	--hosts "$T_WORK/hosts.yaml" --config "$cfg"

cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: A100-80G, accelerators: 1}]
EOM
"$C" model register -f "$T_WORK/model.yaml" >/dev/null
t_expect_exit 0 "deploy on the fleet" "$C" deploy demo --pool fleet --replicas 2 --name demo
if t_wait_sql "SELECT state FROM deployments" running 90; then t_pass "both replicas run on the ssh hosts"
else t_fail "replicas run" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments"; tail -5 "$T_WORK/novad.log")"; fi
n1=$(sidecars 1); n2=$(sidecars 2)
[ $((n1 + n2)) -ge 1 ] && [ "$n1" -le 1 ] && [ "$n2" -le 1 ] && t_pass "one sidecar per used host" ||
	t_fail "one sidecar per used host" "host 1: $n1, host 2: $n2"
# Mock agents: the engines run from the host's install dir, uploaded there.
engines=0
for p in $(ip netns pids "$(ssh_host_ns 1)") $(ip netns pids "$(ssh_host_ns 2)"); do
	{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "^$SSH_INSTALL_DIR/bin/nova-mock-engine " && engines=$((engines + 1))
done
[ "$engines" -eq 2 ] && t_pass "the engines run from the hosts' install dirs" ||
	t_fail "engines on the hosts" "$engines running from $SSH_INSTALL_DIR/bin"
# The routing table is rebuilt every 250 ms: poll, don't race it.
i=0
while "$C" -o json routes >"$T_WORK/out" 2>"$T_WORK/err" &&
	! grep -q "http://10.77.$SSH_SUBNET" "$T_WORK/out" && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
t_expect_out "http://10.77.$SSH_SUBNET" "routes name the hosts' addresses"

# Reconcile passes (every 5 s: status and list_nodes on every host) reuse
# the pooled connections: two passes, and neither sshd accepts another.
accepted() { grep -c "Accepted publickey" "$(ssh_host_dir "$1")/sshd.log"; }
established() { ip netns exec "$(ssh_host_ns "$1")" ss -Htn state established '( sport = :22 )' | wc -l; }
a1=$(accepted 1); a2=$(accepted 2)
sleep 11
[ "$(accepted 1)" -eq "$a1" ] && [ "$(accepted 2)" -eq "$a2" ] &&
	t_pass "reconcile passes reuse pooled connections (no new ones in 11 s)" ||
	t_fail "connections reused" "host 1: $a1 -> $(accepted 1), host 2: $a2 -> $(accepted 2) accepted"
e1=$(established 1); e2=$(established 2)
[ "$e1" -ge 1 ] && [ "$e1" -le 4 ] && [ "$e2" -ge 1 ] && [ "$e2" -le 4 ] &&
	t_pass "at most 4 connections per host, kept open" || t_fail "connections per host" "host 1: $e1, host 2: $e2"

# A sidecar killed: the reconciler (every 5 s) finds its node's resource
# gone and starts it again over SSH; the replica comes back.
victim_host=1; [ "$(sidecars 1)" -eq 0 ] && victim_host=2
victim=$(cat "$(ssh_host_dir $victim_host)"/install/nodes/*/pid | head -1)
kill -9 "$victim"
i=0; while [ "$(sidecars $victim_host)" -lt 1 ] && [ $i -lt 200 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(sidecars $victim_host)" -eq 1 ] && t_pass "a killed sidecar is started again" ||
	t_fail "sidecar restarted" "$(sidecars $victim_host) on host $victim_host"
if t_wait_sql "SELECT count(*) FROM nodes WHERE state <> 'ready'" 0 30; then t_pass "its node is ready again"
else t_fail "node ready again" "$(t_sql "SELECT string_agg(state, ',') FROM nodes")"; fi
if t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'ready'" 2 30; then t_pass "both replicas are ready"
else t_fail "replicas ready" "$(t_sql "SELECT string_agg(state, ',') FROM replicas")"; fi

node_dirs() {
	find "$(ssh_host_dir 1)/install/nodes" "$(ssh_host_dir 2)/install/nodes" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}
nodes=$(t_sql "SELECT count(*) FROM nodes WHERE state = 'ready'")
[ "$(node_dirs)" -eq "$nodes" ] && [ "$nodes" -ge 1 ] && t_pass "a marker directory per node on the hosts" ||
	t_fail "markers" "$(node_dirs) directories for $nodes ready nodes"

"$C" deployment stop demo >/dev/null
if t_wait_sql "SELECT state FROM deployments" stopped 60; then t_pass "the deployment stops"
else t_fail "deployment stopped" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
t_expect_exit 0 "the deployment is deleted" "$C" deployment delete demo
t_expect_exit 0 "forced pool delete" "$C" pool delete fleet --force
i=0; while [ $(($(sidecars 1) + $(sidecars 2))) -gt 0 ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
[ $(($(sidecars 1) + $(sidecars 2))) -eq 0 ] && t_pass "deprovisioning stops the sidecars" ||
	t_fail "sidecars stopped" "$(sidecars 1) + $(sidecars 2) left"
left=$(node_dirs)
[ "$left" -eq 0 ] && t_pass "no node directory left on the hosts" || t_fail "hosts clean" "$left node dirs left"
exit 0
