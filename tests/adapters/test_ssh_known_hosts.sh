#!/bin/sh
# ssh pools with a named known_hosts and host_key_policy accept-new (issue
# 23): a host key learned is recorded only in the pool's own
# <state>/ssh/<pool id>/known_hosts (seeded from the named file's lines),
# never appended to the named file, which stays byte-identical; the pool's
# directory goes when the pool is deleted. Real sshd hosts
# (tests/support/sshhosts.sh): needs root, and without it that is a failure.
set -u
. tests/support/lib.sh
. tests/support/sshhosts.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
ssh_hosts_setup 1 "1" >"$T_WORK/setup.log" 2>&1 || { t_fail "ssh test hosts" "$(cat "$T_WORK/setup.log")"; exit 0; }
H1=$(ssh_host_addr 1)
T_LISTEN="10.77.$SSH_SUBNET.1:0"
nova_start || { t_fail "novad starts" "$(tail -3 "$T_WORK/novad.log")"; exit 0; }
C="$B/novactl"

# The named file knows another address (with host 1's key) and has a
# comment, but not host 1 itself: accept-new has to learn it.
NAMED="$SSH_RUN/named_known_hosts"
{
	echo "# operator's file"
	echo "[$SSH_UNUSED_ADDR]:22 $(cut -d' ' -f1,2 "$(ssh_host_dir 1)/host_ed25519.pub")"
} >"$NAMED"
chmod 0644 "$NAMED"
before=$(sha256sum "$NAMED" | cut -d' ' -f1)
mtime=$(stat -c %Y.%s "$NAMED")
echo "- {address: \"$H1\", user: root, key: \"$SSH_CLIENT_KEY\"}" >"$T_WORK/hosts.yaml"
t_expect_exit 0 "a pool with a named known_hosts and accept-new" "$C" pool create fleet --provider ssh \
	--hosts "$T_WORK/hosts.yaml" --config "{\"known_hosts\":\"$NAMED\",\"host_key_policy\":\"accept-new\",
 \"install_dir\":\"$SSH_INSTALL_DIR\",\"mock_agents\":true,\"connect_timeout_ms\":3000}"
POOL=$(t_sql "SELECT id FROM pools WHERE name = 'fleet'")
OWN="$NOVA_STATE_DIR/ssh/$POOL/known_hosts"
cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: A100-80G, accelerators: 1}]
EOM
"$C" model register -f "$T_WORK/model.yaml" >/dev/null
t_expect_exit 0 "deploy on the host" "$C" deploy demo --pool fleet --replicas 1 --name demo
if t_wait_sql "SELECT state FROM deployments" running 60; then t_pass "the replica runs (the host key was accepted)"
else t_fail "the replica runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments"; tail -5 "$T_WORK/novad.log")"; fi

[ "$(sha256sum "$NAMED" | cut -d' ' -f1)" = "$before" ] && [ "$(stat -c %Y.%s "$NAMED")" = "$mtime" ] &&
	t_pass "the named known_hosts is byte-identical" ||
	t_fail "the named known_hosts is byte-identical" "now: $(cat "$NAMED")"
grep -q "^\[$H1\]:22 " "$NAMED" && t_fail "no key appended to the named file" "$(cat "$NAMED")"
learned="[$H1]:22 $(cut -d' ' -f1,2 "$(ssh_host_dir 1)/host_ed25519.pub")"
if [ -f "$OWN" ] && grep -qxF "$learned" "$OWN"; then t_pass "the pool's own known_hosts has the learned key"
else t_fail "the pool's own known_hosts has the learned key" "$(ls -la "$NOVA_STATE_DIR/ssh/$POOL" 2>&1; cat "$OWN" 2>&1)"; fi
grep -qxF "# operator's file" "$OWN" && grep -q "^\[$SSH_UNUSED_ADDR\]:22 " "$OWN" &&
	t_pass "it is seeded from the named file's lines" || t_fail "seeded from the named file" "$(cat "$OWN" 2>&1)"
[ "$(stat -c %a "$OWN" 2>/dev/null)" = 600 ] && t_pass "the pool's own file is 0600" ||
	t_fail "the pool's own file is 0600" "$(stat -c %a "$OWN" 2>&1)"
grep -q "recorded new host key .* in $OWN" "$T_WORK/novad.log" && t_pass "the log says where the key went" ||
	t_fail "the log says where the key went" "$(grep "recorded new host key" "$T_WORK/novad.log")"

ssh_fleet_remove
if t_wait_sql "SELECT count(*) FROM pools" 0 30; then t_pass "the pool is deleted"
else t_fail "the pool is deleted" "$(t_sql "SELECT state FROM pools"; tail -3 "$T_WORK/novad.log")"; fi
[ ! -e "$NOVA_STATE_DIR/ssh/$POOL" ] && t_pass "the pool's own directory is removed with it" ||
	t_fail "the pool's own directory is removed with it" "$(ls -la "$NOVA_STATE_DIR/ssh/$POOL" 2>&1)"
[ "$(sha256sum "$NAMED" | cut -d' ' -f1)" = "$before" ] && t_pass "the named file is still byte-identical" ||
	t_fail "the named file is still byte-identical" "$(cat "$NAMED")"
exit 0
