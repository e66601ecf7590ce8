#!/bin/sh
# Agent and engine logs are capped (issue 23): the lpu agent's log grew
# without bound, about 62 MiB a day per idle node (an access line per health
# probe of its engine). nova-sidecar --log-file writes its own log and its
# engines' output there, rotated at --log-max-bytes into at most --log-keep
# older files. Here a 4 KiB cap and 2 kept: the probes' access lines of the
# mock engine fill it within seconds; the files stay within the cap, none
# beyond .2 appears, and the engine's lines are in them.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
t_fake_deploy || { t_fail "placed" "no"; exit 0; }
SC_PID=
trap 'kill $SC_PID 2>/dev/null; t_cleanup' EXIT
log="$T_WORK/agent.log"
NOVA_NODE_TOKEN=$T_TOKEN "$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" \
	--mock-engine "$B/nova-mock-engine" --log-file "$log" --log-max-bytes 4096 --log-keep 2 \
	>"$T_WORK/sidecar.out" 2>&1 &
SC_PID=$!
t_wait_sql "SELECT state FROM deployments" running 20 && t_pass "the node runs its replica with a capped log" ||
	t_fail "replica running" "$(cat "$T_WORK/sidecar.out")"
# Rotated twice over at least: .2 exists and has been replaced since.
i=0; while [ ! -e "$log.2" ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
[ -e "$log.2" ] && t_pass "the log is rotated" || t_fail "rotated" "$(ls -l "$T_WORK")"
sleep 3
over=0; for f in "$log" "$log.1" "$log.2"; do
	[ -e "$f" ] && [ "$(stat -c %s "$f")" -gt 4096 ] && over=1
done
[ $over -eq 0 ] && t_pass "no log file is over the cap" || t_fail "cap" "$(ls -l "$T_WORK")"
[ ! -e "$log.3" ] && t_pass "no more than --log-keep rotated files are kept" || t_fail "keep" "$(ls "$T_WORK")"
cat "$log" "$log.1" "$log.2" 2>/dev/null | grep -q '"path":"/health"' &&
	t_pass "the engine's output is in the capped log" || t_fail "engine output in the log" "$(head -c 600 "$log")"
[ "$(stat -c %a "$log")" = 600 ] && t_pass "the log file is 0600" || t_fail "log mode" "$(stat -c %a "$log")"
[ ! -s "$T_WORK/sidecar.out" ] && t_pass "nothing is written beside the capped log" ||
	t_fail "stderr beside the log" "$(head -c 300 "$T_WORK/sidecar.out")"
# Bad settings are refused naming the flag.
out=$("$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token x --log-file "$log" --log-max-bytes 10 2>&1)
case "$out" in *--log-max-bytes*) t_pass "a too small cap is refused naming the flag" ;;
*) t_fail "bad cap refused" "$out" ;; esac
grep -qF -- "$T_TOKEN" "$log" "$log.1" "$log.2" 2>/dev/null && t_fail "the token is never logged" "found" ||
	t_pass "the token is never logged"
