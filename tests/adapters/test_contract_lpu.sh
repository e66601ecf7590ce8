#!/bin/sh
# The adapter contract (tests/adapters/driver_contract.c) against the lpu
# provider with real processes: a pool of rack c1r1 of etc/datacenter.yaml
# (nodes c1r1n1 and c1r1n2) whose nodes get detached nova-sidecar agents
# with nova-mock-engine, recorded in the test's own run directory (lib.sh's
# NOVA_LPU_RUN_DIR), as test_lpu.sh sets them up. The witness for twins
# counts the agent processes whose command line names the node.
set -u
. tests/support/lib.sh
export NOVA_STATE_DIR="$T_WORK/state" NOVA_PROVIDER_FILES="$PWD/etc" NOVA_LPU_AGENT="$B/nova-sidecar"
mkdir -p "$NOVA_STATE_DIR"
# Agents a failed assertion leaves behind (a twin too, which no pidfile
# records): each one's --log-file lies in this test's run directory.
lpu_contract_cleanup() {
	for p in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "--log-file $NOVA_LPU_RUN_DIR/" &&
			kill -9 "${p#/proc/}" 2>/dev/null
	done
	t_cleanup
}
trap lpu_contract_cleanup EXIT
# The mock engine is found beside the running program, as beside an
# installed novad: the driver runs from a directory that has both.
mkdir -p "$T_WORK/bin"
cp "$B/tests/adapters/driver_contract" "$T_WORK/bin/"
ln -s "$B/nova-mock-engine" "$T_WORK/bin/nova-mock-engine"
cat >"$T_WORK/count" <<EOC
#!/bin/sh
n=0
for p in /proc/[0-9]*; do
	{ tr '\\0' ' ' <"\$p/cmdline"; } 2>/dev/null | grep -q -- "^$B/nova-sidecar .*--node-id \$1 " && n=\$((n + 1))
done
echo \$n
EOC
chmod 0755 "$T_WORK/count"
topo="$PWD/etc/datacenter.yaml"
cat >"$T_WORK/case.json" <<EOC
{"config": {"topology": "$topo", "allocation": "c1r1", "mock_agents": true},
 "ephemeral": false,
 "foreign_handle": "c1r2n1",
 "count": "$T_WORK/count",
 "bad": [{"config": {"topology": "$topo", "allocation": "c1r9"}, "field": "config.allocation"},
         {"config": {"topology": "$topo", "allocation": "c1r1", "agent": "/bin/sh"}, "field": "config.agent"},
         {"config": {"topology": "/nonexistent/datacenter.yaml", "allocation": "c1r1"}, "field": "config.topology"}]}
EOC
t_cmocka "$T_WORK/bin/driver_contract" lpu "$T_WORK/case.json"
exit 0
