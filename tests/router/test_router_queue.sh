#!/bin/sh
# nova-router's wait for a replica, with real processes: novad, an lpu pool
# with mock agents, a model deployed, routers in front. Scaled to zero, the
# model keeps its route (no endpoint) and a request for it waits; novad's
# GET /v1/router/demand (and /metrics) shows it waiting; scaled back to one,
# the waiting requests are answered 200. Past queue_max the next is 429
# with Retry-After; past queue_timeout_ms 503 with Retry-After; a client
# that leaves while it waits is counted; a router stopped with a request
# waiting answers it and exits cleanly. Tokens are counted from a
# non-streamed answer's usage, a stream's usage chunk, and a stream's
# chunks.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_METRICS_REFRESH_MS=500
RPID= R2PID=
trap 'kill $RPID $R2PID 2>/dev/null; pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
if t_demo_on_racks c1r1 1 30 && t_wait_routed 10 demo; then
	t_pass "a replica runs on an agent and is routed"
else t_fail "replica runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; exit 0; fi

ROUTER_KEY=$("$C" apikey create router --scope router 2>/dev/null)
INF=$("$C" apikey create app --scope inference 2>/dev/null)
READ=$("$C" apikey create reader --scope read 2>/dev/null)

# router NAME ARGS...: a router on a free port; its URL in $T_WORK/NAME.url.
router() {
	name=$1; shift
	NOVA_TOKEN=$ROUTER_KEY "$B/nova-router" --gateway "$NOVA_URL" --listen 127.0.0.1:0 --threads 2 "$@" \
		>"$T_WORK/$name.port" 2>"$T_WORK/$name.log" &
	echo $! >"$T_WORK/$name.pid"
	i=0; while [ ! -s "$T_WORK/$name.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
	echo "http://127.0.0.1:$(head -1 "$T_WORK/$name.port")" >"$T_WORK/$name.url"
}
# One router waits long and holds two at most; the other waits 1.5 s.
router r1 --queue-max 2
RPID=$(cat "$T_WORK/r1.pid"); R=$(cat "$T_WORK/r1.url")
NOVA_ROUTER_QUEUE_TIMEOUT_MS=1500 router r2
R2PID=$(cat "$T_WORK/r2.pid"); R2=$(cat "$T_WORK/r2.url")

CHAT='{"model":"demo","messages":[{"role":"user","content":"hi there"}],"max_tokens":3}'
# chat URL OUTNAME [MAX_TIME]: a chat completion; "status seconds" in
# $T_WORK/OUTNAME.code, the headers in OUTNAME.head, the body in OUTNAME.body.
chat() {
	curl -s -o "$T_WORK/$2.body" -D "$T_WORK/$2.head" -w '%{http_code} %{time_total}\n' \
		--max-time "${3:-60}" "$1/v1/chat/completions" -H "Authorization: Bearer $INF" \
		-H 'Content-Type: application/json' -d "$CHAT" >"$T_WORK/$2.code" 2>/dev/null
}
metric() { curl -s "$1/metrics" | sed -n "s/^$2 //p"; }
demand() { # the model's entry in novad's GET /v1/router/demand
	curl -s -H "Authorization: Bearer $READ" "$NOVA_URL/v1/router/demand" |
		python3 -c 'import json,sys; d=json.load(sys.stdin)["models"].get("demo"); print("" if d is None else "%d %d %d" % (d["waiting"], d["in_flight"], d["routers"]))'
}

i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' "$R/v1/chat/completions" -H "Authorization: Bearer $INF" -d "$CHAT")" = 200 ] ||
	[ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
chat "$R" first
grep -q '^200' "$T_WORK/first.code" && t_pass "a request is answered while a replica runs" ||
	t_fail "first request" "$(cat "$T_WORK/first.code" "$T_WORK/first.body")"

# Tokens: the mock engine's usage (non-streamed: prompt and 3 completion
# tokens), a stream with include_usage (its usage chunk), a stream without
# (its 5 chunks).
tok() { metric "$R" "nova_router_tokens_total{model=\"demo\",kind=\"$1\"}"; }
p0=$(tok prompt); c0=$(tok completion)
curl -s -o /dev/null "$R/v1/chat/completions" -H "Authorization: Bearer $INF" -d "$CHAT"
p1=$(tok prompt); c1=$(tok completion)
[ "${p1:-0}" -gt "${p0:-0}" ] && [ $((c1 - c0)) -eq 3 ] &&
	t_pass "a non-streamed answer's usage is counted (prompt +$((p1 - p0)), completion +3)" ||
	t_fail "tokens non-streamed" "prompt $p0 -> $p1, completion $c0 -> $c1"
curl -sN -o /dev/null "$R/v1/chat/completions" -H "Authorization: Bearer $INF" \
	-d '{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}'
p2=$(tok prompt); c2=$(tok completion)
[ "${p2:-0}" -gt "${p1:-0}" ] && [ $((c2 - c1)) -eq 4 ] &&
	t_pass "a stream's usage chunk is counted (prompt +$((p2 - p1)), completion +4)" ||
	t_fail "tokens stream usage" "prompt $p1 -> $p2, completion $c1 -> $c2"
curl -sN -o /dev/null "$R/v1/chat/completions" -H "Authorization: Bearer $INF" \
	-d '{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true}'
p3=$(tok prompt); c3=$(tok completion)
[ "$p3" = "$p2" ] && [ $((c3 - c2)) -eq 5 ] &&
	t_pass "a stream without usage counts its chunks as completion tokens (+5)" ||
	t_fail "tokens stream chunks" "prompt $p2 -> $p3, completion $c2 -> $c3"

# Scaled to zero: the route stays, with no endpoint.
"$C" deployment scale demo --replicas 0 >/dev/null
if t_wait_cmd 20 sh -c "out=\$(\"$C\" -o json routes --model demo) && ! echo \"\$out\" | grep -q '\"url\"'"; then
	t_pass "scaled to zero, the model keeps a route with no endpoint"
else t_fail "route at zero" "$(cat "$T_WORK/out" "$T_WORK/err")"; fi
sleep 1 # the routers' watch

chat "$R" w1 & W1=$!
i=0; until [ "$(metric "$R" 'nova_router_queued_requests{model="demo"}')" = 1 ] || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(metric "$R" 'nova_router_queued_requests{model="demo"}')" = 1 ] && [ ! -s "$T_WORK/w1.code" ] &&
	t_pass "a request for the model at zero waits (the router's queued gauge is 1)" ||
	t_fail "request waits" "$(cat "$T_WORK/w1.code" 2>/dev/null) $(curl -s "$R/metrics" | grep queued)"
i=0; until [ "$(demand)" = "1 0 1" ] || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
d=$(demand)
[ "$d" = "1 0 1" ] && t_pass "novad's GET /v1/router/demand shows it waiting (1 waiting, 0 in flight, 1 router)" ||
	t_fail "demand" "got '$d'; $(tail -3 "$T_WORK/r1.log")"
i=0; until curl -s -H "Authorization: Bearer $READ" "$NOVA_URL/metrics" >"$T_WORK/nm" &&
	grep -q '^nova_router_waiting_requests{model="demo"} 1$' "$T_WORK/nm" || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
grep -q '^nova_router_waiting_requests{model="demo"} 1$' "$T_WORK/nm" &&
	t_pass "novad's /metrics: nova_router_waiting_requests{model=\"demo\"} 1" ||
	t_fail "novad metrics" "$(grep nova_router_ "$T_WORK/nm")"

# The second waits too; the third is over queue_max (2): 429, Retry-After.
chat "$R" w2 & W2=$!
i=0; until [ "$(metric "$R" 'nova_router_queued_requests{model="demo"}')" = 2 ] || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
chat "$R" over 10
if grep -q '^429' "$T_WORK/over.code" && grep -qi '^Retry-After: [0-9]' "$T_WORK/over.head" &&
   grep -q '"type":"rate_limit_error"' "$T_WORK/over.body"; then
	t_pass "past queue_max: 429 with Retry-After, in OpenAI's shape"
else t_fail "queue full" "$(cat "$T_WORK/over.code" "$T_WORK/over.head" "$T_WORK/over.body")"; fi

# The other router waits 1.5 s: then 503 with Retry-After.
chat "$R2" late 20
secs=$(cut -d' ' -f2 "$T_WORK/late.code")
if grep -q '^503' "$T_WORK/late.code" && grep -qi '^Retry-After: [0-9]' "$T_WORK/late.head" &&
   grep -q '"code":"no_replica"' "$T_WORK/late.body" &&
   awk -v s="$secs" 'BEGIN { exit !(s >= 1.4 && s < 5) }'; then
	t_pass "past queue_timeout_ms: 503 with Retry-After (after ${secs} s)"
else t_fail "queue timeout" "$(cat "$T_WORK/late.code" "$T_WORK/late.head" "$T_WORK/late.body")"; fi
[ "$(metric "$R2" 'nova_router_queue_timeouts_total{model="demo"}')" = 1 ] &&
	t_pass "the timeout is counted" || t_fail "timeout counter" "$(curl -s "$R2/metrics" | grep queue_)"

# A client that leaves while it waits is taken out of the queue and counted.
a0=$(metric "$R2" 'nova_router_queue_abandoned_total{model="demo"}')
curl -s -o /dev/null --max-time 0.5 "$R2/v1/chat/completions" -H "Authorization: Bearer $INF" -d "$CHAT"
sleep 0.3
a1=$(metric "$R2" 'nova_router_queue_abandoned_total{model="demo"}')
[ "$a1" -eq $((a0 + 1)) ] && [ "$(metric "$R2" 'nova_router_queued_requests{model="demo"}')" = 0 ] &&
	t_pass "a client gone while waiting leaves the queue and is counted" ||
	t_fail "abandoned" "$a0 -> $a1, queued $(metric "$R2" 'nova_router_queued_requests{model="demo"}')"

# A router stopped with a request waiting answers it and exits cleanly.
chat "$R2" stopping 20 & WS=$!
sleep 0.5
kill -TERM "$R2PID"; wait "$R2PID"; rc=$?; R2PID=
wait $WS
[ $rc -eq 0 ] && grep -q '^\(503\|000\)' "$T_WORK/stopping.code" &&
	t_pass "a router stopped with a request waiting answers it ($(cut -d' ' -f1 "$T_WORK/stopping.code")) and exits 0" ||
	t_fail "stop with a waiter" "exit $rc, $(cat "$T_WORK/stopping.code")"

# Scaled back to one: both waiting requests are answered 200.
t0=$(date +%s%N)
"$C" deployment scale demo --replicas 1 >/dev/null
wait $W1 $W2
ms=$((($(date +%s%N) - t0) / 1000000))
if grep -q '^200' "$T_WORK/w1.code" && grep -q '^200' "$T_WORK/w2.code" &&
   grep -q '"chat.completion"' "$T_WORK/w1.body"; then
	t_pass "scaled to one, the waiting requests are answered 200 (${ms} ms after the scale)"
else t_fail "answered after scale" "$(cat "$T_WORK/w1.code" "$T_WORK/w2.code" "$T_WORK/w1.body") $(tail -3 "$T_WORK/r1.log")"; fi
[ "$(metric "$R" 'nova_router_queued_requests{model="demo"}')" = 0 ] &&
	[ "$(metric "$R" 'nova_router_queue_rejected_total{model="demo"}')" = 1 ] &&
	t_pass "the queue is empty; one rejection counted" || t_fail "queue after" "$(curl -s "$R/metrics" | grep queue)"
# The drop to zero is reported once: the model leaves novad's demand.
i=0; until [ -z "$(demand)" ] || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
[ -z "$(demand)" ] && t_pass "once nothing waits nor runs, the model leaves novad's demand" ||
	t_fail "demand after" "$(demand)"

curl -s "$R/metrics" >"$T_WORK/rm"
promtool=$(t_deb_tool prometheus usr/bin/promtool 2>/dev/null) &&
	{ "$promtool" check metrics <"$T_WORK/rm" >"$T_WORK/promtool" 2>&1 && t_pass "promtool check metrics is clean (router)" ||
	  t_fail "promtool router" "$(cat "$T_WORK/promtool")"
	  curl -s -H "Authorization: Bearer $READ" "$NOVA_URL/metrics" >"$T_WORK/nm"
	  "$promtool" check metrics <"$T_WORK/nm" >"$T_WORK/promtool" 2>&1 && t_pass "promtool check metrics is clean (novad)" ||
	  t_fail "promtool novad" "$(cat "$T_WORK/promtool")"; }
! grep -q "$ROUTER_KEY\|$INF" "$T_WORK/r1.log" "$T_WORK/r2.log" && t_pass "no key in the routers' logs" ||
	t_fail "keys in the log" "found"

kill -TERM $RPID; wait $RPID; rc=$?
[ $rc -eq 0 ] && t_pass "SIGTERM stops the router cleanly" || t_fail "router stop" "exit $rc"
RPID=
exit 0
