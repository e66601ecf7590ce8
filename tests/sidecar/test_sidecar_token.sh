#!/bin/sh
# Engines never see the node token (issue 23): a sidecar given its token in
# the environment, on the command line or in a --token-file runs an engine
# (nova-mock-engine) whose /proc/PID/environ holds no trace of it; the
# sidecar's own environ and command line show it no more either, and the
# token file is gone once read.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
t_fake_deploy || { t_fail "placed" "no"; exit 0; }
SC_PID=
trap 'kill $SC_PID 2>/dev/null; t_cleanup' EXIT
# The engine the current sidecar runs (its child), within 10 s.
engine_of() {
	i=0; e=
	while [ -z "$e" ] && [ $i -lt 100 ]; do e=$(pgrep -P "$1" -f nova-mock-engine | head -1); i=$((i + 1)); sleep 0.1; done
	echo "$e"
}
holds_token() { tr '\0' '\n' <"$1" 2>/dev/null | grep -qF -- "$T_TOKEN"; }
stop_sidecar() { kill "$SC_PID" 2>/dev/null; wait "$SC_PID" 2>/dev/null; SC_PID=; }
check() { # how
	eng=$(engine_of "$SC_PID")
	if [ -z "$eng" ]; then t_fail "$1: an engine runs" "none (see $T_WORK/sidecar.log)"; return; fi
	if [ ! -r "/proc/$eng/environ" ]; then t_fail "$1: the engine's environ is readable" "no"; return; fi
	if holds_token "/proc/$eng/environ"; then t_fail "$1: the engine's environment has no token" "found"
	elif tr '\0' '\n' <"/proc/$eng/environ" | grep -q '^NOVA_NODE_TOKEN'; then
		t_fail "$1: the engine's environment has no token variable" "$(tr '\0' '\n' <"/proc/$eng/environ" | grep NOVA_NODE_TOKEN)"
	else t_pass "$1: the engine's /proc/PID/environ holds no token"; fi
	if holds_token "/proc/$SC_PID/environ" || holds_token "/proc/$SC_PID/cmdline"; then
		t_fail "$1: the sidecar's environ and cmdline show no token" "found"
	else t_pass "$1: the sidecar's own environ and cmdline show no token"; fi
}

NOVA_NODE_TOKEN=$T_TOKEN NOVA_ADMIN_TOKEN=novad-admin-secret-1234 \
NOVA_DATABASE_URL="host=db password=db-secret-5678" PGPASSWORD=pg-secret-9012 \
	"$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" \
	--mock-engine "$B/nova-mock-engine" >>"$T_WORK/sidecar.log" 2>&1 &
SC_PID=$!
check "token in the environment"
# Credentials of novad an lpu agent inherits never reach its engines.
eng=$(engine_of "$SC_PID")
if [ -n "$eng" ] && ! tr '\0' '\n' <"/proc/$eng/environ" | grep -qE 'admin-secret|db-secret|pg-secret' &&
   ! tr '\0' '\n' <"/proc/$SC_PID/environ" | grep -qE 'admin-secret|db-secret|pg-secret'; then
	t_pass "novad's credentials inherited by the agent never reach the engine"
else t_fail "inherited credentials" "$(tr '\0' '\n' <"/proc/$eng/environ" 2>/dev/null | grep -E 'NOVA_|PG')"; fi
# The heartbeat still works with the token taken out of the environment.
t_wait_sql "SELECT state FROM deployments" running 20 && t_pass "the node heartbeats with its token" ||
	t_fail "heartbeats" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"
stop_sidecar

"$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token "$T_TOKEN" \
	--mock-engine "$B/nova-mock-engine" >>"$T_WORK/sidecar.log" 2>&1 &
SC_PID=$!
check "token on the command line"
stop_sidecar

tf="$T_WORK/node.token"
(umask 077; printf '%s\n' "$T_TOKEN" >"$tf")
before=$(t_sql "SELECT last_heartbeat_at FROM node_heartbeats")
NOVA_NODE_TOKEN_FILE=$tf "$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" \
	--mock-engine "$B/nova-mock-engine" >>"$T_WORK/sidecar.log" 2>&1 &
SC_PID=$!
check "token in a file"
[ ! -e "$tf" ] && t_pass "the token file is removed once read" || t_fail "token file removed" "still there"
t_wait_sql "SELECT count(*) FROM node_heartbeats WHERE last_heartbeat_at > '$before'" 1 20 &&
	t_pass "a token read from a file heartbeats" || t_fail "token file heartbeats" "no heartbeat"
stop_sidecar
grep -qF -- "$T_TOKEN" "$T_WORK/sidecar.log" && t_fail "the token is never logged" "found" || t_pass "the token is never logged"
