#!/bin/sh
# nova-router against a stand-in for novad (tests/router/fake_novad.py) whose
# route watch and key answers the test writes: malformed events are
# ignored, a stream that ends is resumed with Last-Event-ID, a resumed
# stream whose updates do not match novad's table (event ids are per novad
# process) is started over from a snapshot, malformed keys keep the last
# ones, an expired key is refused.
set -u
. tests/support/lib.sh
PIDS=
trap 'kill $PIDS 2>/dev/null; t_cleanup' EXIT
KEY=sk-nova-watch-test-0123456789
HASH=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
S="$T_WORK/state.json"

engine() { # engine NAME: a mock engine serving model m; its URL in $T_WORK/NAME.url
	"$B/nova-mock-engine" --model m --latency-ms 0 --tokens-per-second 1000 >"$T_WORK/$1.port" 2>/dev/null &
	PIDS="$PIDS $!"
	i=0; while [ ! -s "$T_WORK/$1.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
	echo "http://127.0.0.1:$(head -1 "$T_WORK/$1.port")" >"$T_WORK/$1.url"
}
engine u1; engine u2
U1=$(cat "$T_WORK/u1.url"); U2=$(cat "$T_WORK/u2.url")
route() { # route MODEL URL REPLICA
	echo "{\"model\":\"$1\",\"adapter\":null,\"endpoints\":[{\"url\":\"$2\",\"replica\":\"$3\"}]}"
}
keys() { echo "{\"keys\":[{\"hash\":\"$HASH\",\"scopes\":[\"inference\"],\"expires_at\":${1:-null}}]}"; }
cat >"$S" <<EOF
{"keys": $(keys),
 "routes": {"version": 7, "routes": [$(route m "$U1" r1), $(route m2 "$U1" r1)]},
 "watch": [{"id": 5, "event": "snapshot", "data": {"version": 5, "routes": [$(route m "$U1" r1)]}},
           {"id": 6, "event": "update", "data": "{not json"},
           {"id": 6, "event": "update", "data": {"version": 6, "changes": {"x": 3, "y": {"model": 4}}}},
           {"id": 7, "event": "update", "data": {"version": 7, "changes": {"m2": $(route m2 "$U1" r1)}}}]}
EOF
python3 tests/router/fake_novad.py "$S" >"$T_WORK/fake.port" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$T_WORK/fake.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
NOVA_TOKEN=router-key NOVA_GATEWAY="http://127.0.0.1:$(cat "$T_WORK/fake.port")" \
	"$B/nova-router" --listen 127.0.0.1:0 --threads 1 >"$T_WORK/router.port" 2>"$T_WORK/router.log" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$T_WORK/router.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
R="http://127.0.0.1:$(head -1 "$T_WORK/router.port")"
req() { curl -s -o "$T_WORK/body" -w '%{http_code}' "$R$1" -H "Authorization: Bearer $KEY" ${2:+-d "$2"}; }
served() { curl -s "$1/metrics" | sed -n 's/^nova_engine_requests_total //p'; }
metric() { curl -s "$R/metrics" | sed -n "s/^$1 //p"; }
CHAT='{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1}'

i=0; until [ "$(req /v1/models)" = 200 ] && grep -q '"id":"m2"' "$T_WORK/body"; do
	i=$((i + 1)); [ $i -gt 50 ] && break; sleep 0.1; done
grep -q '"id":"m"' "$T_WORK/body" && grep -q '"id":"m2"' "$T_WORK/body" &&
	t_pass "malformed events are skipped and the valid ones after them applied" ||
	t_fail "events" "$(cat "$T_WORK/body") $(tail -3 "$T_WORK/router.log")"
grep -q "did not parse" "$T_WORK/router.log" && t_pass "a malformed event is logged" || t_fail "malformed logged" "no"
kill -0 $(echo $PIDS | awk '{print $NF}') && t_pass "the router is still up" || t_fail "router up" "gone"
b1=$(served "$U1")
code=$(req /v1/chat/completions "$CHAT")
[ "$code" = 200 ] && [ "$(served "$U1")" -gt "$b1" ] && t_pass "m is served by its replica" ||
	t_fail "m served" "$code $(cat "$T_WORK/body")"

# The stream ends; novad (another process now, say) resumes it with updates
# that say nothing of m, while its table has m on another replica.
python3 - "$S" "$U1" "$U2" <<'EOPY'
import json, sys
s = json.load(open(sys.argv[1]))
m_new = {"model": "m", "adapter": None, "endpoints": [{"url": sys.argv[3], "replica": "r2"}]}
m2 = {"model": "m2", "adapter": None, "endpoints": [{"url": sys.argv[2], "replica": "r1"}]}
s["routes"] = {"version": 8, "routes": [m_new, m2]}
s["watch"] = [{"id": 1, "event": "snapshot", "data": {"version": 1, "routes": [m_new, m2]}}]
s["watch_resume"] = [{"id": 8, "event": "update", "data": {"version": 8, "changes": {}}}]
s["end_watch"] = True
json.dump(s, open(sys.argv[1], "w"))
EOPY
i=0; until grep -q '^7$' "$T_WORK/lastids" 2>/dev/null || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
sed -i 's/"end_watch": true/"end_watch": false/' "$S"
grep -q '^7$' "$T_WORK/lastids" && t_pass "a stream that ended is resumed with Last-Event-ID" ||
	t_fail "Last-Event-ID" "$(cat "$T_WORK/lastids" 2>/dev/null)"
# Three polls (1 s each) disagreeing: a snapshot from the start (waited for
# up to 30 s: the polls, the reconnect and its backoff, on a loaded machine).
# The counter moves before the new stream connects: wait for both.
i=0; until { [ "$(metric nova_router_watch_resyncs_total)" -ge 1 ] 2>/dev/null &&
	tail -1 "$T_WORK/lastids" | grep -q '^-$'; } || [ $i -gt 300 ]; do
	i=$((i + 1)); sleep 0.1; done
[ "$(metric nova_router_watch_resyncs_total)" -ge 1 ] && tail -1 "$T_WORK/lastids" | grep -q '^-$' &&
	t_pass "a table that differs from novad's is watched again from a snapshot" ||
	t_fail "resync" "lastids $(tr '\n' ' ' <"$T_WORK/lastids"); $(grep -c differs "$T_WORK/router.log")"
b2=$(served "$U2")
i=0; until [ "$(req /v1/chat/completions "$CHAT")" = 200 ] && [ "$(served "$U2")" -gt "$b2" ]; do
	i=$((i + 1)); [ $i -gt 30 ] && break; sleep 0.1; done
[ "$(served "$U2")" -gt "$b2" ] && t_pass "and m goes to its new replica" || t_fail "new replica" "$(cat "$T_WORK/body")"

# A replica that dies mid-stream: no retry after the first byte; the
# stream ends with an error event.
curl -sN "$R/v1/chat/completions" -H "Authorization: Bearer $KEY" \
	-d '{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":100000,"stream":true}' \
	>"$T_WORK/stream" 2>/dev/null &
cpid=$!
sleep 0.7
kill -9 "$(echo $PIDS | awk '{print $2}')" # u2's engine
i=0; while kill -0 $cpid 2>/dev/null && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
kill $cpid 2>/dev/null
grep -q '"chat.completion.chunk"' "$T_WORK/stream" && tail -2 "$T_WORK/stream" | grep -q 'data: {"error":.*upstream_failed' &&
	t_pass "a replica dying mid-stream: the stream ends with an error event" ||
	t_fail "mid-stream failure" "$(tail -c 300 "$T_WORK/stream")"

# Keys: a malformed answer keeps the last keys; an expired key is refused.
python3 - "$S" <<'EOPY'
import json, sys
s = json.load(open(sys.argv[1])); s["keys"] = "{\"keys\": 7"; json.dump(s, open(sys.argv[1], "w"))
EOPY
sleep 1.5
code=$(req /v1/models) # (m's replica is dead now: the models list checks the key alone)
[ "$code" = 200 ] && grep -q "reading the API keys failed" "$T_WORK/router.log" &&
	t_pass "malformed keys from novad: the last ones serve, and the log says so" ||
	t_fail "malformed keys" "$code $(tail -2 "$T_WORK/router.log")"
python3 - "$S" "$HASH" <<'EOPY'
import json, sys
s = json.load(open(sys.argv[1]))
s["keys"] = {"keys": [{"hash": sys.argv[2], "scopes": ["inference"], "expires_at": 1000}]}
json.dump(s, open(sys.argv[1], "w"))
EOPY
i=0; until [ "$(req /v1/models)" = 401 ] || [ $i -gt 30 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(req /v1/models)" = 401 ] && grep -q expired "$T_WORK/body" &&
	t_pass "an expired key is refused" || t_fail "expired key" "$(cat "$T_WORK/body")"

rpid=$(echo $PIDS | awk '{print $NF}')
kill -TERM "$rpid"; wait "$rpid"; rc=$?
[ $rc -eq 0 ] && t_pass "SIGTERM stops the router cleanly" || t_fail "router stop" "exit $rc: $(tail -5 "$T_WORK/router.log")"
exit 0
