#!/bin/sh
# nova-router and a canary (issue 18), with real processes: a stand-in
# novad (tests/router/fake_novad.py) gives a model two replicas, a real
# nova-mock-engine each, one running version 1 and one version 2, with a
# split of 50/50.
#   - 200 requests without a session key reach each engine about half the
#     time (each engine's own request count is the witness);
#   - one X-Session-Id keeps to one engine, whatever the policy;
#   - the demand report posted to novad carries "versions" with each
#     version's requests; with version 2's engine gone, requests still
#     succeed (on version 1) and its errors are reported;
#   - /metrics counts both since start;
#   - once the 30 s window has emptied, one report without "versions",
#     then none.
set -u
. tests/support/lib.sh
PIDS=
trap 'kill $PIDS 2>/dev/null; t_cleanup' EXIT
KEY=sk-nova-canary-test-0123456789
HASH=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
S="$T_WORK/state.json"

engine() { # engine NAME: a mock engine serving model m; its URL in $T_WORK/NAME.url, pid in NAME.pid
	"$B/nova-mock-engine" --model m --latency-ms 0 --tokens-per-second 1000 >"$T_WORK/$1.port" 2>/dev/null &
	PIDS="$PIDS $!"
	echo $! >"$T_WORK/$1.pid"
	i=0; while [ ! -s "$T_WORK/$1.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
	echo "http://127.0.0.1:$(head -1 "$T_WORK/$1.port")" >"$T_WORK/$1.url"
}
engine v1; engine v2
U1=$(cat "$T_WORK/v1.url"); U2=$(cat "$T_WORK/v2.url")
ROUTE="{\"model\":\"m\",\"adapter\":null,\"split\":{\"1\":50,\"2\":50},\"endpoints\":[
 {\"url\":\"$U1\",\"replica\":\"r1\",\"version\":\"1\"},{\"url\":\"$U2\",\"replica\":\"r2\",\"version\":\"2\"}]}"
cat >"$S" <<EOF
{"keys": {"keys":[{"hash":"$HASH","scopes":["inference"],"expires_at":null}]},
 "routes": {"version": 1, "routes": [$ROUTE]},
 "watch": [{"id": 1, "event": "snapshot", "data": {"version": 1, "routes": [$ROUTE]}}]}
EOF
python3 tests/router/fake_novad.py "$S" >"$T_WORK/fake.port" &
PIDS="$PIDS $!"
i=0; while [ ! -s "$T_WORK/fake.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
NOVA_TOKEN=router-key NOVA_GATEWAY="http://127.0.0.1:$(cat "$T_WORK/fake.port")" \
	"$B/nova-router" --listen 127.0.0.1:0 --threads 2 >"$T_WORK/router.port" 2>"$T_WORK/router.log" &
RPID=$!
PIDS="$PIDS $RPID"
i=0; while [ ! -s "$T_WORK/router.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
R="http://127.0.0.1:$(head -1 "$T_WORK/router.port")"
served() { curl -s "$1/metrics" | sed -n 's/^nova_engine_requests_total //p' | cut -d. -f1; }
CHAT='{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1}'
chat() { # chat [HEADER]: one request; its status
	curl -s -o "$T_WORK/body" -w '%{http_code}' "$R/v1/chat/completions" \
		-H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' ${1:+-H "$1"} -d "$CHAT"
}
i=0; until [ "$(chat)" = 200 ] || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(chat)" = 200 ] || { t_fail "the router serves m" "$(cat "$T_WORK/body") $(tail -3 "$T_WORK/router.log")"; exit 0; }

# --- the split -------------------------------------------------------------
b1=$(served "$U1"); b2=$(served "$U2")
bad=0
for n in $(seq 200); do [ "$(chat)" = 200 ] || bad=$((bad + 1)); done
d1=$(($(served "$U1") - b1)); d2=$(($(served "$U2") - b2))
[ $bad -eq 0 ] && [ $((d1 + d2)) -eq 200 ] && [ $d1 -ge 80 ] && [ $d1 -le 120 ] &&
	t_pass "a 50/50 split: 200 requests, $d1 on version 1 and $d2 on version 2" ||
	t_fail "50/50 split" "$bad failed; version 1: $d1, version 2: $d2"

b1=$(served "$U1"); b2=$(served "$U2")
for n in $(seq 20); do chat "X-Session-Id: canary-session-7" >/dev/null; done
d1=$(($(served "$U1") - b1)); d2=$(($(served "$U2") - b2))
{ [ $d1 -eq 20 ] && [ $d2 -eq 0 ]; } || { [ $d1 -eq 0 ] && [ $d2 -eq 20 ]; } &&
	t_pass "one session's twenty requests keep to one version ($d1 | $d2)" ||
	t_fail "session keeps its version" "version 1: $d1, version 2: $d2"

# --- the report to novad -----------------------------------------------------
# vcount VERSION FIELD: in the last demand report that has "versions", the
# model m's VERSION's FIELD ("" when none has).
vcount() {
	python3 - "$T_WORK/demand" "$1" "$2" <<'EOPY'
import json, sys
last = None
try:
    for line in open(sys.argv[1]):
        line = line.strip()
        if line:
            doc = json.loads(line)
            if "versions" in doc:
                last = doc
except FileNotFoundError:
    pass
e = (last or {}).get("versions", {}).get("m", {}).get(sys.argv[2])
if e is not None:
    assert e["window_s"] == 30 and len(e["ttft_buckets"]) == 12, e
    print(e[sys.argv[3]])
EOPY
}
i=0; until [ "$(($(vcount 1 requests) + $(vcount 2 requests)))" -ge 220 ] 2>/dev/null || [ $i -gt 50 ]; do
	i=$((i + 1)); sleep 0.1; done
r1=$(vcount 1 requests); r2=$(vcount 2 requests)
echo "a report: $(grep '"versions"' "$T_WORK/demand" | tail -1)"
[ -n "$r1" ] && [ -n "$r2" ] && [ $((r1 + r2)) -ge 220 ] && [ "$(vcount 2 errors)" = 0 ] &&
	t_pass "the demand report carries each version's requests in the window ($r1 | $r2), no errors" ||
	t_fail "versions in the report" "$(tail -1 "$T_WORK/demand" 2>/dev/null | head -c 600)"

# Version 2's engine dies: its requests fail over to version 1 (the
# client sees none of it), and its failures are reported.
kill -9 "$(cat "$T_WORK/v2.pid")"
bad=0
for n in $(seq 40); do [ "$(chat)" = 200 ] || bad=$((bad + 1)); done
[ $bad -eq 0 ] && t_pass "with version 2's engine gone, every request is answered by version 1" ||
	t_fail "fallback to version 1" "$bad of 40 failed: $(cat "$T_WORK/body")"
i=0; until [ "$(vcount 2 errors)" -ge 1 ] 2>/dev/null || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
e2=$(vcount 2 errors)
[ "${e2:-0}" -ge 1 ] && [ "$(vcount 1 errors)" = 0 ] &&
	t_pass "the report counts version 2's failed attempts ($e2), none of version 1's" ||
	t_fail "errors in the report" "$(tail -1 "$T_WORK/demand" | head -c 600)"
m=$(curl -s "$R/metrics")
echo "$m" | grep -q '^nova_router_version_requests_total{model="m",version="1"} [1-9]' &&
	echo "$m" | grep -q '^nova_router_version_errors_total{model="m",version="2"} [1-9]' &&
	echo "$m" | grep -q '^# TYPE nova_router_version_errors_total counter' &&
	t_pass "/metrics counts each version's attempts and failures" ||
	t_fail "/metrics" "$(echo "$m" | grep nova_router_version)"
echo "$m" >"$T_WORK/metrics"
promtool=$(t_deb_tool prometheus usr/bin/promtool 2>/dev/null) &&
	{ "$promtool" check metrics <"$T_WORK/metrics" >"$T_WORK/promtool" 2>&1 &&
	  t_pass "promtool check metrics is clean with the version counters" ||
	  t_fail "promtool" "$(cat "$T_WORK/promtool")"; }

# --- the window empties --------------------------------------------------------
# No request for 30 s (and a period): one report without "versions", then
# no more.
sleep 33
lines=$(wc -l <"$T_WORK/demand")
sleep 3
last=$(tail -1 "$T_WORK/demand")
[ "$(wc -l <"$T_WORK/demand")" -eq "$lines" ] && ! echo "$last" | grep -q '"versions"' &&
	tail -2 "$T_WORK/demand" | head -1 | grep -q '"versions"' &&
	t_pass "once the window is empty, one report without versions, then none" ||
	t_fail "the last report" "$(tail -3 "$T_WORK/demand" | cut -c1-200)"

kill -TERM "$RPID"; wait "$RPID"; rc=$?
[ $rc -eq 0 ] && t_pass "SIGTERM stops the router cleanly" || t_fail "router stop" "exit $rc"
exit 0
