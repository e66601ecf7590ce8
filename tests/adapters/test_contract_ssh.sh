#!/bin/sh
# The adapter contract (tests/adapters/driver_contract.c) against the ssh
# provider with real sshd hosts: two hosts in network namespaces
# (tests/support/sshhosts.sh; host 1 with a fake nvidia-smi), nova-sidecar
# and nova-mock-engine installed and started on them over SSH, known_hosts
# given inline (so create writes the pool's own copy under the state
# directory, and validate must not). An address where nothing answers is the
# unreachable provider. The witness for twins counts the sidecars whose
# command line names the node, in both hosts' namespaces. Needs root:
# without it the hosts cannot be made, and that is a failure, not a skip.
set -u
. tests/support/lib.sh
. tests/support/sshhosts.sh
ssh_hosts_setup 2 "1" >"$T_WORK/setup.log" 2>&1 || { t_fail "ssh test hosts" "$(cat "$T_WORK/setup.log")"; exit 0; }
H1=$(ssh_host_addr 1); H2=$(ssh_host_addr 2)
export NOVA_STATE_DIR="$T_WORK/state" NOVA_SSH_AGENT="$B/nova-sidecar"
mkdir -p "$NOVA_STATE_DIR"
cat >"$T_WORK/count" <<EOC
#!/bin/sh
n=0
for p in \$(ip netns pids $(ssh_host_ns 1)) \$(ip netns pids $(ssh_host_ns 2)); do
	{ tr '\\0' ' ' <"/proc/\$p/cmdline"; } 2>/dev/null | grep -q -- "^[^ ]*nova-sidecar .*--node-id \$1 " && n=\$((n + 1))
done
echo \$n
EOC
chmod 0755 "$T_WORK/count"
kh=$(awk '{printf "%s\\n", $0}' "$SSH_KNOWN_HOSTS")
host() { echo "{\"address\": \"$1\", \"user\": \"root\", \"key\": \"$SSH_CLIENT_KEY\"}"; }
common="\"install_dir\": \"$SSH_INSTALL_DIR\", \"mock_agents\": true, \"connect_timeout_ms\": 2000, \"command_timeout_ms\": 20000"
cat >"$T_WORK/case.json" <<EOC
{"config": {"hosts": [$(host "$H1"), $(host "$H2")], "known_hosts_inline": "$kh", $common},
 "ephemeral": false,
 "foreign_handle": "10.77.$SSH_SUBNET.99:22",
 "count": "$T_WORK/count",
 "unreachable": {"config": {"hosts": [$(host "$SSH_UNUSED_ADDR")], "known_hosts": "$SSH_KNOWN_HOSTS",
                            "install_dir": "$SSH_INSTALL_DIR", "connect_timeout_ms": 500},
                 "handle": "$SSH_UNUSED_ADDR:22"},
 "bad": [{"config": {"hosts": [{"address": "$H1", "user": "root", "port": 70000}], "known_hosts_inline": ""},
          "field": "config.hosts[0].port"},
         {"config": {"hosts": [$(host "$H1")], "known_hosts_inline": "", "host_key_policy": "trusting"},
          "field": "config.host_key_policy"},
         {"config": {"hosts": [$(host "$H1")]}, "field": "config.known_hosts"}]}
EOC
NOVA_PROVIDER_FILES=$SSH_RUN t_cmocka "$B/tests/adapters/driver_contract" ssh "$T_WORK/case.json"
exit 0
