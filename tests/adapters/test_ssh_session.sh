#!/bin/sh
# ssh_session (adapters/ssh/ssh_session.h) against real sshd hosts: two
# network-namespace hosts from tests/support/sshhosts.sh, driven by the
# cmocka program build/tests/adapters/driver_ssh_session (t_cmocka: each
# of its tests becomes a PASS/FAIL line here). Needs root: without it the
# hosts cannot be made, and that is a failure, not a skip.
set -u
. tests/support/lib.sh
. tests/support/sshhosts.sh
AGENT_PID=
trap '[ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null; ssh_hosts_exit' EXIT

ssh_hosts_setup 2 >"$T_WORK/setup.log" 2>&1 || { t_fail "ssh test hosts" "$(cat "$T_WORK/setup.log")"; exit 0; }
t_pass "two sshd hosts in their own network namespaces"

ssh-keygen -q -t ecdsa -b 256 -N '' -f "$T_WORK/ecdsa" &&
ssh-keygen -q -t ed25519 -N '' -f "$T_WORK/wrong" &&
ssh-keygen -q -t rsa -b 2048 -N '' -f "$T_WORK/rsa" || { t_fail "client keys" "ssh-keygen failed"; exit 0; }
cat "$T_WORK/ecdsa.pub" "$T_WORK/rsa.pub" >>"$SSH_AUTH_KEYS"

# An agent holding the authorized ed25519 key, for the agent test only.
eval "$(ssh-agent -s)" >/dev/null && AGENT_PID=$SSH_AGENT_PID &&
	ssh-add -q "$SSH_CLIENT_KEY" 2>/dev/null || { t_fail "ssh-agent" "cannot start it"; exit 0; }

mkdir -p "$T_WORK/scratch"
ssh_host_tmpfs 1 small 1m || { t_fail "a small tmpfs on host 1" "mount failed"; exit 0; }
ssh_host_kill_script 1 "$T_WORK/kill1"
printf '#!/bin/sh\nip link set %s down\n' "nvs${SSH_SUBNET}h1" >"$T_WORK/cut1"
printf '#!/bin/sh\nip link set %s up\n' "nvs${SSH_SUBNET}h1" >"$T_WORK/uncut1"
chmod +x "$T_WORK/cut1" "$T_WORK/uncut1"
# Under make asan: libssh2's own ECDSA leak is suppressed, nothing else.
# The suppression matches a libssh2 frame above libcrypto, which has no
# frame pointers: only the slow unwinder sees past it.
LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$PWD/tests/support/lsan_libssh2.supp"
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS ASAN_OPTIONS
NOVA_SSH_HOST1=$(ssh_host_addr 1) NOVA_SSH_HOST2=$(ssh_host_addr 2) \
NOVA_SSH_KEY=$SSH_CLIENT_KEY NOVA_SSH_ECDSA_KEY=$T_WORK/ecdsa NOVA_SSH_WRONG_KEY=$T_WORK/wrong \
NOVA_SSH_RSA_KEY=$T_WORK/rsa NOVA_SSH_KNOWN_HOSTS=$SSH_KNOWN_HOSTS NOVA_SSH_UNUSED=$SSH_UNUSED_ADDR \
NOVA_SSH_INSTALL1=$(ssh_host_dir 1)/install NOVA_SSH_WORK=$T_WORK/scratch \
NOVA_SSH_SMALL1=$(ssh_host_dir 1)/small NOVA_SSH_KILL1=$T_WORK/kill1 \
NOVA_SSH_CUT1=$T_WORK/cut1 NOVA_SSH_UNCUT1=$T_WORK/uncut1 \
	t_cmocka "$B/tests/adapters/driver_ssh_session"
exit 0
