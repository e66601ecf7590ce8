#!/bin/sh
# An ssh host that goes away, through novad: two namespace hosts with fake
# GPUs, a deployment of two replicas; the network of a host holding a replica
# is cut (its veth set down: sshd and the sidecar are unreachable, nothing on
# it is killed). Its node goes unhealthy, then failed; its replicas are placed
# on the other host and the routes follow. Its deprovisioning cannot reach
# the host: the node stays terminating, its reason saying so, and is retried
# every pass; once the link is up again the sidecar is stopped, the marker
# removed and the node terminated. Needs root.
set -u
. tests/support/lib.sh
. tests/support/sshhosts.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=3000
ssh_hosts_setup 2 "1 2" >"$T_WORK/setup.log" 2>&1 || { t_fail "ssh test hosts" "$(cat "$T_WORK/setup.log")"; exit 0; }
T_LISTEN="10.77.$SSH_SUBNET.1:0"
nova_start || { t_fail "novad starts" "$(tail -3 "$T_WORK/novad.log")"; exit 0; }
C="$B/novactl"
# Sidecars of node $2 on host $1, counted in its network namespace.
sidecars_of() {
	for p in $(ip netns pids "$(ssh_host_ns "$1")"); do
		{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "^[^ ]*nova-sidecar .*--node-id $2" && echo "$p"
	done | wc -l
}

ssh_fleet_deploy 2 2 1000 3000 >"$T_WORK/fleet.log" || { t_fail "pool create" "$(cat "$T_WORK/fleet.log")"; exit 0; }
if t_wait_sql "SELECT state FROM deployments" running 90; then t_pass "two replicas run on the ssh hosts"
else t_fail "replicas run" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; exit 0; fi

node=$(t_sql "SELECT node_id FROM replica_placements ORDER BY node_id LIMIT 1")
v=1; o=2
[ "$(t_sql "SELECT handle FROM nodes WHERE id = '$node'")" = "$(ssh_host_addr 2):22" ] && { v=2; o=1; }
VADDR=$(ssh_host_addr $v); OADDR=$(ssh_host_addr $o)
[ "$(sidecars_of $v "$node")" -eq 1 ] && t_pass "the victim's sidecar runs on host $v" ||
	t_fail "victim sidecar" "$(sidecars_of $v "$node") on host $v"

ip link set "nvs${SSH_SUBNET}h$v" down || { t_fail "cut host $v's link" "ip link failed"; exit 0; }
if t_wait_sql "SELECT count(*) FROM node_events WHERE node_id = '$node' AND to_state IN ('unhealthy', 'failed')" 2 30
then t_pass "the unreachable host's node went unhealthy, then failed"
else t_fail "unhealthy then failed" "$(t_sql "SELECT string_agg(to_state || ' (' || reason || ')', ', ' ORDER BY at) FROM node_events WHERE node_id = '$node'")"; fi
if t_wait_sql "SELECT count(*) FROM replicas r JOIN replica_placements rp ON rp.replica_id = r.id
	JOIN nodes n ON n.id = rp.node_id WHERE r.state = 'ready' AND n.handle = '$OADDR:22'" 2 60
then t_pass "both replicas are ready on the other host"
else t_fail "replicas moved" "$(t_sql "SELECT string_agg(r.state || '@' || coalesce(n.handle, '-'), ', ') FROM replicas r
	LEFT JOIN replica_placements rp ON rp.replica_id = r.id LEFT JOIN nodes n ON n.id = rp.node_id")"; fi
i=0
while "$C" -o json routes >"$T_WORK/out" 2>"$T_WORK/err" &&
	{ grep -q "http://$VADDR:" "$T_WORK/out" || [ "$(grep -o "http://$OADDR:" "$T_WORK/out" | wc -l)" -lt 2 ]; } &&
	[ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
! grep -q "http://$VADDR:" "$T_WORK/out" && [ "$(grep -o "http://$OADDR:" "$T_WORK/out" | wc -l)" -eq 2 ] &&
	t_pass "routes follow: two endpoints on the other host, none on the lost one" ||
	t_fail "routes follow" "$(cat "$T_WORK/out")"

# Deprovisioning cannot reach the host: reported on the node, retried.
if t_wait_sql "SELECT state FROM nodes WHERE id = '$node'" terminating 30; then
	t_pass "the lost host's node is terminating"
else t_fail "terminating" "$(t_sql "SELECT state || ': ' || state_reason FROM nodes WHERE id = '$node'")"; fi
if t_wait_sql "SELECT state_reason LIKE '%deprovisioning failed, retrying: host $VADDR:22%' FROM nodes WHERE id = '$node'" t 30
then t_pass "its reason says deprovisioning is retried, and why"
else t_fail "reason" "$(t_sql "SELECT state_reason FROM nodes WHERE id = '$node'")"; fi
sleep 6 # another reconcile pass, the host still away
[ "$(t_sql "SELECT state FROM nodes WHERE id = '$node'")" = terminating ] &&
	t_pass "still terminating while the host is away, not forgotten" ||
	t_fail "still terminating" "$(t_sql "SELECT state || ': ' || state_reason FROM nodes WHERE id = '$node'")"
[ -d "$(ssh_host_dir $v)/install/nodes/$node" ] && [ "$(sidecars_of $v "$node")" -eq 1 ] &&
	t_pass "(the host's sidecar and marker are still there, out of reach)" ||
	t_fail "marker out of reach" "dir or sidecar missing already"

ip link set "nvs${SSH_SUBNET}h$v" up
if t_wait_sql "SELECT state FROM nodes WHERE id = '$node'" terminated 40; then
	t_pass "the host back, its node is terminated"
else t_fail "terminated" "$(t_sql "SELECT state || ': ' || state_reason FROM nodes WHERE id = '$node'")"; fi
i=0; while [ "$(sidecars_of $v "$node")" -gt 0 ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(sidecars_of $v "$node")" -eq 0 ] && [ ! -e "$(ssh_host_dir $v)/install/nodes/$node" ] &&
	t_pass "its sidecar is stopped and its marker removed" ||
	t_fail "host cleaned" "$(sidecars_of $v "$node") sidecars; $(ls "$(ssh_host_dir $v)/install/nodes")"
[ "$(t_sql "SELECT count(*) FROM replicas WHERE state = 'ready'")" = 2 ] && t_pass "the replicas stayed ready" ||
	t_fail "replicas ready" "$(t_sql "SELECT string_agg(state, ',') FROM replicas")"

ssh_fleet_remove
exit 0
