#!/bin/sh
# The ssh adapter against real sshd hosts (discovery; a nova-sidecar
# installed, started detached, kept, replaced, listed, stopped): four hosts
# (tests/support/sshhosts.sh), 1 and 3 with a fake nvidia-smi reporting two
# A100s, host 4 missing from known_hosts, plus an address where nothing
# answers; driven by build/tests/adapters/driver_ssh_adapter. Needs root:
# without it the hosts cannot be made, and that is a failure, not a skip.
set -u
. tests/support/lib.sh
. tests/support/sshhosts.sh
# Sidecars a failed assertion leaves behind run in a host's network
# namespace: the harness's teardown kills every process there.
ssh_hosts_setup 4 "1 3" >"$T_WORK/setup.log" 2>&1 || { t_fail "ssh test hosts" "$(cat "$T_WORK/setup.log")"; exit 0; }
t_pass "four sshd hosts in their own network namespaces"
ssh_host_kill_script 1 "$T_WORK/kill1"
# Host 2 stops answering this machine (the bridge's address), not host 1.
printf '#!/bin/sh\nexec ip -n %s route add blackhole 10.77.%s.1/32\n' "$(ssh_host_ns 2)" "$SSH_SUBNET" >"$T_WORK/isolate2"
chmod 0755 "$T_WORK/isolate2"
grep -v "^\[$(ssh_host_addr 4)\]:22 " "$SSH_KNOWN_HOSTS" >"$T_WORK/known_hosts"
# libssh2's own ECDSA leak is not exercised here; no suppressions needed.
NOVA_SSH_HOST1=$(ssh_host_addr 1) NOVA_SSH_HOST2=$(ssh_host_addr 2) \
NOVA_SSH_HOST3=$(ssh_host_addr 3) NOVA_SSH_HOST4=$(ssh_host_addr 4) \
NOVA_SSH_UNUSED=$SSH_UNUSED_ADDR NOVA_SSH_KEY=$SSH_CLIENT_KEY NOVA_SSH_KNOWN_HOSTS=$T_WORK/known_hosts \
NOVA_SSH_LOG1=$(ssh_host_dir 1)/sshd.log NOVA_SSH_KILL1=$T_WORK/kill1 NOVA_SSH_ISOLATE2=$T_WORK/isolate2 NOVA_SSH_INSTALL_DIR=$SSH_INSTALL_DIR NOVA_SSH_INSTALL1=$(ssh_host_dir 1)/install NOVA_SSH_AGENT=$B/nova-sidecar NOVA_PROVIDER_FILES=$SSH_RUN:$T_WORK NOVA_STATE_DIR=$T_WORK/state \
	t_cmocka "$B/tests/adapters/driver_ssh_adapter"
exit 0
