#!/bin/sh
# Agent and engine logs are capped (issue 23): the lpu agent's log grew
# without bound, about 62 MiB a day per idle node (an access line per health
# probe of its engine). nova-sidecar --log-file writes its own log there,
# rotated at --log-max-bytes into at most --log-keep older files; each
# engine's output goes to a file of its own beside it (issue 19:
# PATH.engines/REPLICA.STAGE.log and its one predecessor .1, each half of
# --engine-log-max-bytes). Here a 16 KiB engine cap: the probes' access
# lines of the mock engine fill it within seconds; the files stay within the
# cap, none beyond .1 appears, and the engine's lines are in them.
set -u
. tests/support/lib.sh
# The default place of engine logs, beside the agent's --log-file.
unset NOVA_SIDECAR_ENGINE_LOG_DIR
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
t_fake_deploy || { t_fail "placed" "no"; exit 0; }
SC_PID=
trap 'kill $SC_PID 2>/dev/null; t_cleanup' EXIT
log="$T_WORK/agent.log"
NOVA_NODE_TOKEN=$T_TOKEN "$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" \
	--mock-engine "$B/nova-mock-engine" --log-file "$log" --log-max-bytes 4096 --log-keep 2 \
	--engine-log-max-bytes 16384 \
	>"$T_WORK/sidecar.out" 2>&1 &
SC_PID=$!
t_wait_sql "SELECT state FROM deployments" running 20 && t_pass "the node runs its replica with a capped log" ||
	t_fail "replica running" "$(cat "$T_WORK/sidecar.out")"
# The engine's log rotated: .1 exists, and it has been replaced since.
eng="$log.engines"
i=0; while ! ls "$eng" 2>/dev/null | grep -q '\.log\.1$' && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
ls "$eng" 2>/dev/null | grep -q '\.log\.1$' && t_pass "the engine's log is rotated" || t_fail "rotated" "$(ls -l "$eng")"
sleep 3
over=0; for f in "$eng"/*; do
	[ -e "$f" ] && [ "$(stat -c %s "$f")" -gt 8192 ] && over=1
done
[ $over -eq 0 ] && t_pass "no engine log file is over half the cap" || t_fail "cap" "$(ls -l "$eng")"
ls "$eng" | grep -q '\.log\.2$' && t_fail "keep" "$(ls "$eng")" ||
	t_pass "an engine keeps one rotated file"
[ "$(ls "$eng" | wc -l)" -eq 2 ] && t_pass "one engine, two files" || t_fail "files" "$(ls "$eng")"
cat "$eng"/* 2>/dev/null | grep -q '"path":"/health"' &&
	t_pass "the engine's output is in its capped log" || t_fail "engine output in the log" "$(head -c 600 "$eng"/*)"
cat "$log" "$log.1" "$log.2" 2>/dev/null | grep -q '"path":"/health"' &&
	t_fail "the engine's output is not in the sidecar's log" "it is" ||
	t_pass "the engine's output is not in the sidecar's log"
[ "$(stat -c %a "$eng")" = 700 ] && t_pass "the engine log directory is 0700" || t_fail "dir mode" "$(stat -c %a "$eng")"
[ "$(stat -c %a "$log")" = 600 ] && t_pass "the log file is 0600" || t_fail "log mode" "$(stat -c %a "$log")"
[ ! -s "$T_WORK/sidecar.out" ] && t_pass "nothing is written beside the capped log" ||
	t_fail "stderr beside the log" "$(head -c 300 "$T_WORK/sidecar.out")"
# Bad settings are refused naming the flag.
out=$("$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token x --log-file "$log" --log-max-bytes 10 2>&1)
case "$out" in *--log-max-bytes*) t_pass "a too small cap is refused naming the flag" ;;
*) t_fail "bad cap refused" "$out" ;; esac
grep -rqF -- "$T_TOKEN" "$log" "$log.1" "$log.2" "$eng" 2>/dev/null && t_fail "the token is never logged" "found" ||
	t_pass "the token is never logged"
out=$("$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token x --engine-log-max-bytes 100 2>&1)
case "$out" in *--engine-log-max-bytes*) t_pass "a too small engine log cap is refused naming the flag" ;;
*) t_fail "bad engine cap refused" "$out" ;; esac
