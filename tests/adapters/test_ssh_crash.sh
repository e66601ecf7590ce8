#!/bin/sh
# A novad killed (-9) while it provisions an ssh node: the host's link is
# slowed (tc tbf, 800 kbit/s towards it) so the uploads take seconds;
# novad is killed the moment the node's sidecar runs on the host while the
# database still says provisioning (the sidecar is there, the commit is
# not). Restarted on the same database, the worker provisions the node again
# (a fresh token): exactly one sidecar runs for it on the host, its marker
# directory is the node's and its pid file names that sidecar. Needs root.
set -u
. tests/support/lib.sh
. tests/support/sshhosts.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_WORKERS=1 NOVA_WORKER_LEASE_MS=3000
ssh_hosts_setup 1 "1" >"$T_WORK/setup.log" 2>&1 || { t_fail "ssh test hosts" "$(cat "$T_WORK/setup.log")"; exit 0; }
T_LISTEN="10.77.$SSH_SUBNET.1:0"
nova_start || { t_fail "novad starts" "$(tail -3 "$T_WORK/novad.log")"; exit 0; }
NS=$(ssh_host_ns 1)
# Sidecar pids on the host (of node $1 when given).
sidecar_pids() {
	for p in $(ip netns pids "$NS"); do
		{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "^[^ ]*nova-sidecar .*--node-id ${1:-}" && echo "$p"
	done
}
# tbf, not netem: this kernel may lack sch_netem.
tc qdisc add dev "nvs${SSH_SUBNET}h1" root tbf rate 800kbit burst 4kb latency 400ms ||
	{ t_fail "slow link to the host" "tc tbf failed"; exit 0; }

ssh_fleet_deploy 1 1 5000 20000 >"$T_WORK/fleet.log" || { t_fail "pool create" "$(cat "$T_WORK/fleet.log")"; exit 0; }

# The sidecar runs, the row still says provisioning: kill novad there. The
# start script writes the sidecar's pid file, then waits 0.3 s to see it
# live before it answers novad: the window. Watched through the pid file on
# the host's directory (a stat), not by a query and a scan of the host's
# processes per turn, which took long enough to miss it now and then.
i=0; node=
while [ $i -lt 12000 ] && [ -z "$node" ]; do
	for f in "$(ssh_host_dir 1)"/install/nodes/*/pid; do
		[ -s "$f" ] && { node=$(basename "$(dirname "$f")"); break; }
	done
	i=$((i + 1)); sleep 0.002
done
kill -KILL "$T_PID"; wait "$T_PID" 2>/dev/null; T_PID=
state=$(t_sql "SELECT state FROM nodes WHERE id = '$node'")
if [ -n "$node" ] && [ -n "$(sidecar_pids "$node")" ] && [ "$state" = provisioning ]; then
	t_pass "novad killed with the sidecar started and the node not committed"
else t_fail "killed between start and commit" "node=$node state=$state sidecars=$(sidecar_pids "$node" | wc -l)"; fi
[ -d "$(ssh_host_dir 1)/install/nodes/$node" ] && t_pass "the marker directory is on the host" ||
	t_fail "marker" "no nodes/$node"

nova_start || { t_fail "novad restarts on the same database" "$(tail -3 "$T_WORK/novad.log")"; exit 0; }
if t_wait_sql "SELECT state FROM deployments" running 90; then t_pass "the deployment runs after the restart"
else t_fail "deployment runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
sleep 6 # a reconcile pass, which would find a twin or an orphan
[ "$(t_sql "SELECT count(*) FROM nodes WHERE state <> 'terminated'")" = 1 ] &&
	[ "$(t_sql "SELECT id FROM nodes WHERE state = 'ready'")" = "$node" ] &&
	t_pass "one node, the same one, ready" ||
	t_fail "one node" "$(t_sql "SELECT string_agg(id || ' ' || state, ', ') FROM nodes")"
n_all=$(sidecar_pids | wc -l); n_node=$(sidecar_pids "$node" | wc -l)
[ "$n_all" -eq 1 ] && [ "$n_node" -eq 1 ] && t_pass "exactly one sidecar on the host, the node's: no twin" ||
	t_fail "no twin" "$n_all sidecars on the host, $n_node for the node"
dirs=$(ls "$(ssh_host_dir 1)/install/nodes")
pid=$(cat "$(ssh_host_dir 1)/install/nodes/$node/pid" 2>/dev/null)
[ "$dirs" = "$node" ] && [ "$pid" = "$(sidecar_pids "$node")" ] &&
	t_pass "the one marker is the node's and its pid file names the running sidecar" ||
	t_fail "marker matches" "dirs: $dirs; pid file: $pid; running: $(sidecar_pids "$node")"
[ "$(t_sql "SELECT count(*) FROM replicas WHERE state = 'ready'")" = 1 ] && t_pass "the replica is ready" ||
	t_fail "replica ready" "$(t_sql "SELECT string_agg(state, ',') FROM replicas")"
tc qdisc del dev "nvs${SSH_SUBNET}h1" root 2>/dev/null
ssh_fleet_remove
exit 0
