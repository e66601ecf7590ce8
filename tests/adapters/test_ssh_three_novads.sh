#!/bin/sh
# Three novads on one database behind nginx, on the ssh test hosts' bridge,
# all advertising nginx: an ssh pool of three hosts (mock agents) deployed
# through A, scaled through B and C. After each step: one sidecar per node
# on the hosts (counted from /proc in their namespaces), one engine per
# replica, no refused heartbeat in any agent's log, one ETag on all three.
# Then each novad is killed (-9) in turn and started again: no node leaves
# ready, the route never disappears through nginx, no twin. Needs root.
set -u
. tests/support/lib.sh
. tests/support/sshhosts.sh
. bench/nginx.sh
. tests/support/novads.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
nginx_bench_ensure || { t_fail "nginx is available" "not installed"; exit 0; }
ssh_hosts_setup 3 "1 2 3" >"$T_WORK/setup.log" 2>&1 || { t_fail "ssh test hosts" "$(cat "$T_WORK/setup.log")"; exit 0; }
BR="10.77.$SSH_SUBNET.1"
novads_ports "$BR"
novads_nginx "$BR" || { t_fail "nginx starts" "$(cat "$T_WORK/nginx/start.err")"; exit 0; }
novads_start_a "$BR" || { t_fail "novad A starts" "see log"; exit 0; }
B_PID= C_PID=
trap 'novads_stop; ssh_hosts_exit' EXIT # ssh_hosts_exit ends with t_cleanup
novads_start B "$BR" "$MN_PB" && novads_start C "$BR" "$MN_PC" && t_pass "three novads on one database" ||
	{ t_fail "three novads" "$(tail -3 "$T_WORK"/novad-*.log)"; exit 0; }
export NOVA_TOKEN="$MN_TOKEN" # to novactl by its environment, not its command line
CB="$B/novactl --server http://$BR:$MN_PB"
CC="$B/novactl --server http://$BR:$MN_PC"

# Sidecars per node, on every host: "count" lines per node id.
sidecars_per_node() {
	for h in 1 2 3; do
		for p in $(ip netns pids "$(ssh_host_ns "$h")"); do
			{ tr '\0' ' ' <"/proc/$p/cmdline"; echo; } 2>/dev/null | grep '^[^ ]*nova-sidecar ' |
				sed -n 's/.*--node-id \([^ ]*\).*/\1/p'
		done
	done | sort | uniq -c
}
engines() {
	n=0
	for h in 1 2 3; do
		for p in $(ip netns pids "$(ssh_host_ns "$h")"); do
			{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "^$SSH_INSTALL_DIR/bin/nova-mock-engine " &&
				n=$((n + 1))
		done
	done
	echo "$n"
}
check() { # WHAT REPLICAS
	nodes=$(t_sql "SELECT count(*) FROM nodes WHERE state <> 'terminated'")
	per=$(sidecars_per_node)
	twins=$(echo "$per" | awk '$1 > 1' | wc -l)
	running=$(echo "$per" | grep -c .)
	if [ "$twins" -eq 0 ] && [ "$running" -eq "$nodes" ]; then t_pass "$1: one sidecar per node ($nodes)"
	else t_fail "$1: one sidecar per node" "$nodes nodes; sidecars: $per"; fi
	[ "$(engines)" -eq "$2" ] && t_pass "$1: one engine per replica ($2)" ||
		t_fail "$1: one engine per replica" "$(engines) engines, $2 replicas"
	logs=$(ls "$(ssh_host_dir 1)"/install/nodes/*/log "$(ssh_host_dir 2)"/install/nodes/*/log \
		"$(ssh_host_dir 3)"/install/nodes/*/log 2>/dev/null)
	refused=$(cat $logs /dev/null | grep "heartbeat failed" | grep -c '40[13]')
	if [ "$(echo "$logs" | grep -c .)" -ge "$nodes" ] && [ "$refused" -eq 0 ]; then
		t_pass "$1: no agent's heartbeat refused ($(echo "$logs" | grep -c .) agent logs read)"
	else
		t_fail "$1: no agent's heartbeat refused" "$refused refusals in: $logs"
	fi
	for port in $MN_PA $MN_PB $MN_PC; do
		curl -s -o /dev/null -D - -H "Authorization: Bearer $MN_TOKEN" "http://$BR:$port/v1/routes" |
			sed -n 's/^ETag: \(.*\)\r$/\1/p'
	done | sort -u >"$T_WORK/etags"
	[ "$(wc -l <"$T_WORK/etags")" -eq 1 ] && t_pass "$1: one ETag on all three" ||
		t_fail "$1: one ETag on all three" "$(cat "$T_WORK/etags")"
}
settle() { # REPLICAS
	t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'ready'" "$1" 90 ||
		t_fail "$1 replicas ready" "$(t_sql "SELECT string_agg(state || ' ' || state_reason, '; ') FROM replicas")"
	sleep 6
}

# Through A (lib.sh's novactl finds A by its state directory).
ssh_fleet_deploy 3 2 2000 10000 >"$T_WORK/deploy.log" 2>&1 || { t_fail "deploy through A" "$(cat "$T_WORK/deploy.log")"; exit 0; }
settle 2
check "deployed through A" 2
$CB deployment scale demo --replicas 3 >/dev/null 2>"$T_WORK/err" || t_fail "scale through B" "$(cat "$T_WORK/err")"
settle 3
check "scaled to 3 through B" 3
$CC deployment scale demo --replicas 2 >/dev/null 2>"$T_WORK/err" || t_fail "scale through C" "$(cat "$T_WORK/err")"
settle 2
i=0; while [ "$(engines)" -gt 2 ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.2; done
check "scaled to 2 through C" 2

# Each novad killed and started again while the route is polled.
novads_kill_each "$BR" demo
check "after each novad was killed and started again" 2
exit 0
