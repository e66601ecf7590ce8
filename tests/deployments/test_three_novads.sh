#!/bin/sh
# Three novads on one database behind nginx (round robin, keep-alive), all
# advertising nginx to agents, with an lpu pool of mock agents made through
# A, deployed through B and scaled through C. After every step: exactly one
# agent per node (counted from /proc), one engine per replica, no refused
# heartbeat in any agent's log, one ETag on all three with 304 to each
# other's. Then each novad is killed (-9) in turn, the reconciler's holder
# included, and started again: no node leaves ready, the route never
# disappears (polled through nginx), and still no twin.
set -u
. tests/support/lib.sh
. bench/nginx.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
nginx_bench_ensure || { t_fail "nginx is available" "not installed"; exit 0; }

. tests/support/novads.sh
novads_ports 127.0.0.1
PA=$MN_PA PB=$MN_PB PC=$MN_PC
novads_nginx 127.0.0.1 || { t_fail "nginx starts" "$(cat "$T_WORK/nginx/start.err")"; exit 0; }
LB=$MN_LB
novads_start_a 127.0.0.1 || { t_fail "novad A starts" "see log"; exit 0; }
TOKEN=$MN_TOKEN
B_PID= C_PID=
trap 'novads_stop;
	pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; pkill -f "$B/nova-mock-engine --port" 2>/dev/null; t_cleanup' EXIT
novads_start B 127.0.0.1 "$PB" && novads_start C 127.0.0.1 "$PC" && t_pass "three novads on one database" ||
	{ t_fail "three novads" "$(tail -3 "$T_WORK"/novad-*.log)"; exit 0; }

export NOVA_TOKEN="$TOKEN" # to novactl by its environment, not its command line
CA="$B/novactl --server http://127.0.0.1:$PA"
CB="$B/novactl --server http://127.0.0.1:$PB"
CC="$B/novactl --server http://127.0.0.1:$PC"
# Three racks of two 8-chip nodes, inline (each novad reads the pool's
# config; a file would have to be under every novad's allowed directories).
topo=$(python3 -c 'import json
racks = "".join("      - id: %d\n        nodes:\n" % r + "".join(
    "          - {name: r%dn%d, chips: 8, accelerator_type: LPU, memory_mib: 230}\n" % (r, n)
    for n in (1, 2)) for r in (1, 2, 3))
print(json.dumps("clusters:\n  - id: 1\n    name: t\n    racks:\n" + racks))')
cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
$CA pool create racks --provider lpu \
	--config "{\"topology_inline\":$topo,\"allocation\":\"c1r1,c1r2,c1r3\",\"mock_agents\":true}" >/dev/null 2>"$T_WORK/err" &&
	$CA model register -f "$T_WORK/model.yaml" >/dev/null 2>>"$T_WORK/err" &&
	t_pass "an lpu pool and a model through A" || { t_fail "pool and model" "$(cat "$T_WORK/err")"; exit 0; }

agents_per_node() { # node-id counts of running agents, "id count" per line
	for p in $(pgrep -f "$B/nova-sidecar --gateway"); do
		{ tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null; echo; } | sed -n 's/.*--node-id \([^ ]*\).*/\1/p'
	done | sort | uniq -c
}
engines() { pgrep -f "$B/nova-mock-engine --port" | wc -l; }
# check WHAT REPLICAS: one agent per live node, one engine per replica, no
# refused heartbeat, one ETag everywhere.
check() {
	nodes=$(t_sql "SELECT count(*) FROM nodes WHERE state NOT IN ('terminated')")
	per=$(agents_per_node)
	twins=$(echo "$per" | awk '$1 > 1' | wc -l)
	running=$(echo "$per" | grep -c .)
	if [ "$twins" -eq 0 ] && [ "$running" -eq "$nodes" ]; then t_pass "$1: one agent per node ($nodes)"
	else t_fail "$1: one agent per node" "$nodes nodes; agents: $per"; fi
	[ "$(engines)" -eq "$2" ] && t_pass "$1: one engine per replica ($2)" ||
		t_fail "$1: one engine per replica" "$(engines) engines, $2 replicas"
	nlogs=$(ls "$NOVA_LPU_RUN_DIR"/*/*.log 2>/dev/null | wc -l)
	refused=$(cat "$NOVA_LPU_RUN_DIR"/*/*.log 2>/dev/null | grep "heartbeat failed" | grep -c '40[13]')
	[ "$nlogs" -ge "$nodes" ] && [ "$refused" -eq 0 ] && t_pass "$1: no agent's heartbeat refused ($nlogs logs)" ||
		t_fail "$1: no agent's heartbeat refused" "$(cat "$NOVA_LPU_RUN_DIR"/*/*.log | grep "heartbeat failed" | grep '40[13]' | head -2)"
	ea=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PA/v1/routes" | sed -n 's/^ETag: \(.*\)\r$/\1/p')
	eb=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PB/v1/routes" | sed -n 's/^ETag: \(.*\)\r$/\1/p')
	ec=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PC/v1/routes" | sed -n 's/^ETag: \(.*\)\r$/\1/p')
	c304=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "If-None-Match: $ea" "http://127.0.0.1:$PC/v1/routes")
	if [ -n "$ea" ] && [ "$ea" = "$eb" ] && [ "$eb" = "$ec" ] && [ "$c304" = 304 ]; then
		t_pass "$1: one ETag on all three, 304 to another's"
	else
		t_fail "$1: one ETag" "A=$ea B=$eb C=$ec; C answers $c304 to A's"
	fi
}
# settle WANT: WANT replicas ready and routed on all three, then a few
# reconciler periods for twins to show.
settle() {
	t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'ready'" "$1" 60 ||
		t_fail "$1 replicas ready" "$(t_sql "SELECT string_agg(state || ' ' || state_reason, '; ') FROM replicas")"
	i=0
	while [ $i -lt 50 ]; do
		n=$(curl -s -H "Authorization: Bearer $TOKEN" "$LB/v1/routes?model=demo" | grep -o '"url"' | wc -l)
		[ "$n" -eq "$1" ] && break
		i=$((i + 1)); sleep 0.2
	done
	sleep 6
}

$CB deploy demo --pool racks --replicas 2 --name demo >/dev/null 2>"$T_WORK/err" ||
	t_fail "deploy through B" "$(cat "$T_WORK/err")"
settle 2
check "deployed through B" 2
$CC deployment scale demo --replicas 4 >/dev/null 2>"$T_WORK/err" || t_fail "scale through C" "$(cat "$T_WORK/err")"
settle 4
check "scaled to 4 through C" 4
$CA deployment scale demo --replicas 3 >/dev/null 2>"$T_WORK/err" || t_fail "scale through A" "$(cat "$T_WORK/err")"
settle 3
i=0; while [ "$(engines)" -gt 3 ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.2; done
check "scaled to 3 through A" 3

# Each novad killed and started again while the route is polled.
novads_kill_each 127.0.0.1 demo
check "after each novad was killed and started again" 3
exit 0
