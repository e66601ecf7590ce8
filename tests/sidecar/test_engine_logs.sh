#!/bin/sh
# Engine logs (issue 19) with real processes: novad, an lpu pool with mock
# agents (nova-sidecar running nova-mock-engine per node), the model "demo"
# on one replica. The engine's lines are kept on the node in capped files
# and read through novad: `novactl logs demo --tail 5` shows them, `-f`
# shows the line of a new request within two seconds, the read scope is
# required (403 without it), bad input is refused naming the field, and an
# engine killed with -9 keeps its last output while the deployment's events
# say "killed by signal SIGKILL".
set -u
. tests/support/lib.sh
# The default place of engine logs, beside the agent's --log-file.
unset NOVA_SIDECAR_ENGINE_LOG_DIR
export NOVA_HEARTBEAT_INTERVAL_MS=500
FPID=
trap 'kill $FPID 2>/dev/null; pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
if t_demo_on_racks c1r1 1 30; then t_pass "a replica runs on an agent"
else t_fail "replica runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; exit 0; fi
t_wait_routed 20 demo 1 || t_fail "routed" "$(cat "$T_WORK/err")"
EP=$(t_sql "SELECT endpoint FROM replicas")
READ=$("$C" apikey create reader --scope read 2>/dev/null)
ROUTES=$("$C" apikey create routes-only --scope routes 2>/dev/null)
L="$NOVA_URL/v1/deployments/demo/replicas/0/logs"

# A request the engine logs (its access line names the path).
complete() {
	curl -s -o /dev/null "$EP/v1/completions" -H 'Content-Type: application/json' \
		-d "{\"model\":\"demo\",\"prompt\":\"$1\",\"max_tokens\":2}"
}
complete first

# The sidecar offers its log server with a heartbeat and gets novad's key
# with the answer: within a few beats the route serves.
i=0; until [ "$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $READ" "$L?tail=5")" = 200 ] ||
	[ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
lines=$(grep -c . "$T_WORK/body")
if [ "$lines" -eq 5 ] && grep -q '"path":' "$T_WORK/body"; then
	t_pass "GET .../replicas/0/logs?tail=5 answers the engine's last 5 lines"
else t_fail "tail 5" "$lines lines: $(head -c 600 "$T_WORK/body")"; fi
ct=$(curl -s -o /dev/null -w '%{content_type}' -H "Authorization: Bearer $READ" "$L?tail=1")
case "$ct" in text/plain*) t_pass "the answer is text/plain" ;; *) t_fail "content type" "$ct" ;; esac

if "$C" logs demo --tail 5 >"$T_WORK/out" 2>"$T_WORK/err" && [ "$(grep -c . "$T_WORK/out")" -eq 5 ]; then
	t_pass "novactl logs demo --tail 5 shows 5 lines of the engine"
else t_fail "novactl logs --tail 5" "$(cat "$T_WORK/out" "$T_WORK/err" | head -c 600)"; fi
"$C" logs demo --tail 10000 >"$T_WORK/out" 2>"$T_WORK/err"
grep -q '/v1/completions' "$T_WORK/out" && t_pass "the engine's access line of a completion is in its log" ||
	t_fail "completion line" "$(tail -c 600 "$T_WORK/out") $(cat "$T_WORK/err")"

# -f: a request's line shows within two seconds.
"$C" logs demo -f --tail 0 >"$T_WORK/follow" 2>"$T_WORK/follow.err" &
FPID=$!
sleep 1
start=$(date +%s%N)
complete followed
i=0; until grep -q '/v1/completions' "$T_WORK/follow" || [ $i -gt 40 ]; do i=$((i + 1)); sleep 0.05; done
took=$((($(date +%s%N) - start) / 1000000))
if grep -q '/v1/completions' "$T_WORK/follow" && [ $took -lt 2000 ]; then
	t_pass "novactl logs -f shows a new request's line within 2 s ($took ms)"
else t_fail "follow" "$took ms: $(tail -c 400 "$T_WORK/follow") $(cat "$T_WORK/follow.err")"; fi
kill $FPID 2>/dev/null; wait $FPID 2>/dev/null; FPID=

# The read scope: none, another scope, then the read key.
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' "$L")
[ "$code" = 401 ] && t_pass "no credential: 401" || t_fail "no credential" "$code"
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $ROUTES" "$L")
[ "$code" = 403 ] && grep -q 'read' "$T_WORK/body" && t_pass "a key without the read scope: 403 naming it" ||
	t_fail "403" "$code $(cat "$T_WORK/body")"

# Bad input, refused naming the field.
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $READ" "$L?tail=many")
[ "$code" = 400 ] && grep -q '"field":"tail"' "$T_WORK/body" && t_pass "tail not a number: 400 naming tail" ||
	t_fail "tail" "$code $(cat "$T_WORK/body")"
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $READ" "$L?tail=100001")
[ "$code" = 400 ] && grep -q '"field":"tail"' "$T_WORK/body" && t_pass "tail over the bound: 400" ||
	t_fail "tail bound" "$code $(cat "$T_WORK/body")"
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $READ" "$L?follow=maybe")
[ "$code" = 400 ] && grep -q '"field":"follow"' "$T_WORK/body" && t_pass "follow not a boolean: 400 naming follow" ||
	t_fail "follow" "$code $(cat "$T_WORK/body")"
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $READ" \
	"$NOVA_URL/v1/deployments/demo/replicas/7/logs")
[ "$code" = 404 ] && grep -q '"field":"replica"' "$T_WORK/body" && t_pass "an unknown replica: 404 naming replica" ||
	t_fail "unknown replica" "$code $(cat "$T_WORK/body")"
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $READ" \
	"$NOVA_URL/v1/deployments/nope/replicas/0/logs")
[ "$code" = 404 ] && grep -q '"field":"deployment"' "$T_WORK/body" && t_pass "an unknown deployment: 404" ||
	t_fail "unknown deployment" "$code $(cat "$T_WORK/body")"
t_expect_exit 3 "novactl logs --replica 7 is a clear error (exit 3)" "$C" logs demo --replica 7
grep -q 'no replica 7' "$T_WORK/err" && t_pass "the error names the replica" || t_fail "replica error" "$(cat "$T_WORK/err")"
t_expect_exit 2 "novactl logs --tail many is a usage error (exit 2)" "$C" logs demo --tail many
grep -q -- '--tail' "$T_WORK/err" && t_pass "the usage error names --tail" || t_fail "--tail error" "$(cat "$T_WORK/err")"

# The engine killed with -9: its last output stays, its end is in the log
# and in the deployment's events.
complete "before the kill"
port=${EP##*:}
EPID=$(pgrep -f "nova-mock-engine --port $port" | head -1)
if [ -n "$EPID" ]; then
	kill -9 "$EPID"
	i=0; until "$C" events --deployment demo 2>/dev/null | grep -q 'killed by signal SIGKILL' || [ $i -gt 100 ]; do
		i=$((i + 1)); sleep 0.1; done
	"$C" events --deployment demo >"$T_WORK/events" 2>&1
	grep -q 'replica 0 killed by signal SIGKILL' "$T_WORK/events" &&
		t_pass "the deployment's events say replica 0 was killed by signal SIGKILL" ||
		t_fail "kill event" "$(tail -5 "$T_WORK/events")"
	n=$(t_sql "SELECT count(*) FROM deployment_events WHERE kind = 'replica'")
	sleep 2
	[ "$(t_sql "SELECT count(*) FROM deployment_events WHERE kind = 'replica'")" = "$n" ] && [ "$n" = 1 ] &&
		t_pass "the exit is recorded once while heartbeats repeat it" || t_fail "once" "$n"
	"$C" logs demo --tail 10000 >"$T_WORK/out" 2>"$T_WORK/err"
	grep -q 'killed by signal SIGKILL' "$T_WORK/out" && grep -q '/v1/completions' "$T_WORK/out" &&
		t_pass "the killed engine's last output and its end are in its log" ||
		t_fail "log after kill" "$(tail -c 600 "$T_WORK/out") $(cat "$T_WORK/err")"
else
	t_fail "the engine's process" "none on port $port"
fi

# Files on the node: capped and private; no key in any log.
# (A rack has several nodes, each with its sidecar: the replica's is the
# one whose directory holds a log.)
f=$(find "$T_WORK/state" -path '*.engines/*.0.log' | head -1)
d=${f%/*}
if [ -n "$f" ] && [ "$(stat -c %a "$d")" = 700 ] && [ "$(stat -c %a "$f")" = 600 ]; then
	t_pass "the engine's log is a file of its own on the node (0600), in a private directory (0700)"
else t_fail "log files" "$f: $(ls -la "$d" 2>&1)"; fi
grep -rq 'logs_key' "$T_WORK"/*.log "$T_WORK/state" 2>/dev/null && t_fail "no log key in any log" "found" ||
	t_pass "no log key in any log"
