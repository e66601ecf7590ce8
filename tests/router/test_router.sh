#!/bin/sh
# nova-router with real processes: novad, an lpu pool with mock agents (a
# nova-sidecar running nova-mock-engine per node), a model deployed on two
# replicas, and a router in front learning the table from the route watch
# and the keys from GET /v1/router/keys. Completions (plain and streamed,
# the chunks arriving before the stream ends), embeddings, the models list,
# the error shapes, a revoked key refused within 2 s, novad stopped while
# the router keeps serving, and a killed replica's requests retried on the
# other.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
RPID=
trap 'kill $RPID 2>/dev/null; pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
if t_demo_on_racks c1r1 2 30; then t_pass "two replicas run on agents"
else t_fail "replicas run" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; exit 0; fi

ROUTER_KEY=$("$C" apikey create router --scope router 2>/dev/null)
INF=$("$C" apikey create app --scope inference 2>/dev/null)
INF2=$("$C" apikey create app2 --scope inference 2>/dev/null)
READ=$("$C" apikey create reader --scope read 2>/dev/null)

# The router's key by the environment, never on its command line.
NOVA_TOKEN=$ROUTER_KEY "$B/nova-router" --gateway "$NOVA_URL" --listen 127.0.0.1:0 --threads 2 ${T_ROUTER_DEBUG:+--log-level debug} \
	>"$T_WORK/router.port" 2>"$T_WORK/router.log" &
RPID=$!
i=0; while [ ! -s "$T_WORK/router.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
R="http://127.0.0.1:$(head -1 "$T_WORK/router.port")"
grep -q "$ROUTER_KEY" "/proc/$RPID/cmdline" 2>/dev/null && t_fail "the key is not on the command line" "it is"
tr '\0' '\n' <"/proc/$RPID/environ" 2>/dev/null | grep -q "$ROUTER_KEY" &&
	t_fail "the key is wiped from the environment" "it is in /proc/PID/environ" ||
	t_pass "the key is neither on the command line nor in /proc/PID/environ"

# req METHOD PATH KEY [BODY]: the status; the body in $T_WORK/body.
req() {
	if [ -n "${4:-}" ]; then
		curl -s -o "$T_WORK/body" -w '%{http_code}' -X "$1" "$R$2" ${3:+-H "Authorization: Bearer $3"} \
			-H 'Content-Type: application/json' --data-binary "$4"
	else
		curl -s -o "$T_WORK/body" -w '%{http_code}' -X "$1" "$R$2" ${3:+-H "Authorization: Bearer $3"}
	fi
}
CHAT='{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":3}'

# The router learns the table and the keys: the models list shows the model.
i=0; until [ "$(req GET /v1/models "$INF")" = 200 ] && grep -q '"id":"demo"' "$T_WORK/body"; do
	i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
if grep -q '"object":"list"' "$T_WORK/body" && grep -q '"id":"demo"' "$T_WORK/body" &&
   grep -q '"object":"model"' "$T_WORK/body"; then t_pass "GET /v1/models lists the model (OpenAI list format)"
else t_fail "models list" "$(cat "$T_WORK/body") $(tail -3 "$T_WORK/router.log")"; fi
# Both replicas are in the table before the traffic starts.
i=0; until [ "$("$C" -o json routes --model demo 2>/dev/null | grep -c '"url"')" -eq 2 ] || [ $i -gt 100 ]; do
	i=$((i + 1)); sleep 0.1; done

code=$(req POST /v1/chat/completions "$INF" "$CHAT")
if [ "$code" = 200 ] && grep -q '"object":"chat.completion"' "$T_WORK/body" && grep -q '"content":"the model' "$T_WORK/body"
then t_pass "a chat completion through the router"
else t_fail "chat completion" "$code $(cat "$T_WORK/body")"; fi

code=$(req POST /v1/completions "$INF" '{"model":"demo","prompt":"hi","max_tokens":2}')
[ "$code" = 200 ] && grep -q '"object":"text_completion"' "$T_WORK/body" &&
	t_pass "a completion through the router" || t_fail "completion" "$code $(cat "$T_WORK/body")"

code=$(req POST /v1/embeddings "$INF" '{"model":"demo","input":["a","b"]}')
[ "$code" = 200 ] && grep -q '"object":"embedding"' "$T_WORK/body" && grep -q '"index":1' "$T_WORK/body" &&
	t_pass "embeddings through the router" || t_fail "embeddings" "$code $(cat "$T_WORK/body")"

# Streamed: 20 tokens at 50/s take about 400 ms; the first chunk must come
# long before the last (passed through as it arrives, not buffered).
curl -sN "$R/v1/chat/completions" -H "Authorization: Bearer $INF" -H 'Content-Type: application/json' \
	-d '{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":20,"stream":true}' |
	while IFS= read -r line; do
		[ -n "$line" ] && echo "$(date +%s%N) $line"
	done >"$T_WORK/stream"
first=$(head -1 "$T_WORK/stream" | cut -d' ' -f1); last=$(tail -1 "$T_WORK/stream" | cut -d' ' -f1)
chunks=$(grep -c '"chat.completion.chunk"' "$T_WORK/stream")
if [ "$chunks" -ge 20 ] && tail -1 "$T_WORK/stream" | grep -q 'data: \[DONE\]' &&
   [ $(((last - first) / 1000000)) -ge 200 ]; then
	t_pass "a streamed chat completion arrives chunk by chunk ($chunks chunks over $(((last - first) / 1000000)) ms)"
else t_fail "streamed chat completion" "$chunks chunks over $(((last - first) / 1000000)) ms: $(head -c 300 "$T_WORK/stream")"; fi

# Errors, in OpenAI's shape.
shape() { grep -q '"error":{' "$T_WORK/body" && grep -q '"message":' "$T_WORK/body" &&
	grep -q '"type":' "$T_WORK/body" && grep -q '"code":' "$T_WORK/body"; }
code=$(req POST /v1/chat/completions "" "$CHAT")
[ "$code" = 401 ] && shape && t_pass "no credential: 401 in OpenAI's shape" || t_fail "401" "$code $(cat "$T_WORK/body")"
code=$(req POST /v1/chat/completions "sk-nova-madeup0000000000000000000000000000000000" "$CHAT")
[ "$code" = 401 ] && shape && grep -q invalid_api_key "$T_WORK/body" &&
	t_pass "an unknown key: 401 invalid_api_key" || t_fail "unknown key 401" "$code $(cat "$T_WORK/body")"
code=$(req POST /v1/chat/completions "$READ" "$CHAT")
[ "$code" = 403 ] && shape && t_pass "a key without the inference scope: 403" || t_fail "403" "$code $(cat "$T_WORK/body")"
code=$(req POST /v1/chat/completions "$ROUTER_KEY" "$CHAT")
[ "$code" = 403 ] && t_pass "the router's own key cannot send inference: 403" || t_fail "router key 403" "$code"
code=$(req POST /v1/chat/completions "$INF" '{"model":"nope","messages":[]}')
[ "$code" = 404 ] && shape && grep -q model_not_found "$T_WORK/body" &&
	t_pass "an unknown model: 404 model_not_found" || t_fail "404" "$code $(cat "$T_WORK/body")"
code=$(req POST /v1/chat/completions "$INF" '{"model":"demo",')
[ "$code" = 400 ] && shape && t_pass "malformed JSON: 400" || t_fail "400" "$code $(cat "$T_WORK/body")"
code=$(req POST /v1/chat/completions "$INF" '["demo"]')
[ "$code" = 400 ] && shape && t_pass "a body that is not an object: 400" || t_fail "400 array" "$code $(cat "$T_WORK/body")"
code=$(req POST /v1/chat/completions "$INF" '{"model":7}')
[ "$code" = 400 ] && shape && grep -q '"param":"model"' "$T_WORK/body" &&
	t_pass "a model that is not a string: 400 naming it" || t_fail "400 model" "$code $(cat "$T_WORK/body")"
head -c 9000000 /dev/zero | tr '\0' 'a' >"$T_WORK/big"
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' "$R/v1/chat/completions" -H "Authorization: Bearer $INF" \
	-H 'Content-Type: application/json' --data-binary @"$T_WORK/big")
[ "$code" = 413 ] && shape && t_pass "a body over the cap: 413" || t_fail "413" "$code $(head -c 200 "$T_WORK/body")"
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' "$R/v1/chat/completions" -H "Authorization: Bearer $INF" \
	-H 'Transfer-Encoding: chunked' -H 'Content-Type: application/json' --data-binary @"$T_WORK/big")
[ "$code" = 413 ] && shape && t_pass "a chunked body over the cap: 413" || t_fail "413 chunked" "$code $(head -c 200 "$T_WORK/body")"
code=$(req GET /v1/nope "$INF")
[ "$code" = 404 ] && shape && t_pass "an unknown path: 404 in OpenAI's shape" || t_fail "404 path" "$code"
code=$(req GET /v1/chat/completions "$INF")
[ "$code" = 405 ] && shape && t_pass "a wrong method: 405" || t_fail "405" "$code"
code=$(req GET /metrics "")
[ "$code" = 200 ] && grep -q '^nova_router_watch_connected 1' "$T_WORK/body" &&
	t_pass "/metrics: the watch is connected" || t_fail "metrics" "$code $(head -c 300 "$T_WORK/body")"
grep -q '^nova_router_model_requests_total{model="demo",code="2xx"} [1-9]' "$T_WORK/body" &&
   grep -q '^nova_router_request_duration_seconds_count{model="demo"} [1-9]' "$T_WORK/body" &&
   grep -q '^nova_router_time_to_first_byte_seconds_bucket{model="demo",le="+Inf"} [1-9]' "$T_WORK/body" &&
   grep -q '^nova_router_model_in_flight{model="demo"} 0' "$T_WORK/body" &&
	t_pass "/metrics: requests, durations and time to first byte by model" ||
	t_fail "model metrics" "$(grep model "$T_WORK/body" | head -5)"
promtool=$(t_deb_tool prometheus usr/bin/promtool 2>/dev/null) &&
	{ "$promtool" check metrics <"$T_WORK/body" >"$T_WORK/promtool" 2>&1 && t_pass "promtool check metrics is clean" ||
	  t_fail "promtool" "$(cat "$T_WORK/promtool")"; }

# The official OpenAI Node SDK (npm "openai", installed here) against the
# router: a chat completion, a streamed one, a completion, the models list,
# embeddings, and an unknown model as the SDK's NotFoundError. The key is
# in its environment, not on its command line.
if command -v npm >/dev/null 2>&1 && command -v node >/dev/null 2>&1; then
	mkdir -p "$T_WORK/sdk"
	if (cd "$T_WORK/sdk" && timeout 300 npm install --no-audit --no-fund --silent openai >npm.log 2>&1); then
		cat >"$T_WORK/sdk/t.mjs" <<'EOJS'
import OpenAI from 'openai';
const client = new OpenAI({ baseURL: process.env.ROUTER + '/v1', apiKey: process.env.KEY, maxRetries: 0 });
const msgs = [{ role: 'user', content: 'hi' }];
const chat = await client.chat.completions.create({ model: 'demo', messages: msgs, max_tokens: 3 });
console.log('chat ' + chat.choices[0].message.content);
const stream = await client.chat.completions.create({ model: 'demo', messages: msgs, max_tokens: 5, stream: true });
let n = 0, text = '';
for await (const c of stream) { n++; text += c.choices[0]?.delta?.content ?? ''; }
console.log('stream ' + n + ' ' + text);
const comp = await client.completions.create({ model: 'demo', prompt: 'hi', max_tokens: 2 });
console.log('completion ' + comp.choices[0].text);
const ids = [];
for await (const m of client.models.list()) ids.push(m.id);
console.log('models ' + ids.join(','));
const emb = await client.embeddings.create({ model: 'demo', input: 'x', encoding_format: 'float' });
const emb64 = await client.embeddings.create({ model: 'demo', input: 'x' }); // the SDK's base64
console.log('embeddings ' + emb.data[0].embedding.length + ' ' + emb64.data[0].embedding.length);
try {
	await client.chat.completions.create({ model: 'nope', messages: msgs });
	console.log('unknown model accepted');
} catch (e) {
	console.log('error ' + e.constructor.name + ' ' + e.status + ' ' + e.code);
}
EOJS
		(cd "$T_WORK/sdk" && ROUTER=$R KEY=$INF timeout 60 node t.mjs) >"$T_WORK/sdk.out" 2>&1
		out=$(cat "$T_WORK/sdk.out")
		echo "$out" | grep -q '^chat the model' && t_pass "OpenAI Node SDK: a chat completion" || t_fail "SDK chat" "$out"
		echo "$out" | grep -q '^stream [5-9][0-9]* the model' && t_pass "OpenAI Node SDK: a streamed chat completion" ||
			t_fail "SDK stream" "$out"
		echo "$out" | grep -q '^completion the model' && t_pass "OpenAI Node SDK: a completion" || t_fail "SDK completion" "$out"
		echo "$out" | grep -q '^models demo$' && t_pass "OpenAI Node SDK: the models list" || t_fail "SDK models" "$out"
		echo "$out" | grep -q '^embeddings 16 16$' && t_pass "OpenAI Node SDK: embeddings" || t_fail "SDK embeddings" "$out"
		echo "$out" | grep -q '^error NotFoundError 404 model_not_found$' &&
			t_pass "OpenAI Node SDK: an unknown model is its NotFoundError" || t_fail "SDK 404" "$out"
	else
		t_fail "npm install openai" "$(tail -3 "$T_WORK/sdk/npm.log")"
	fi
else
	t_fail "the OpenAI Node SDK test needs node and npm" "not installed"
fi

# Routers share nothing: a second one, side by side, serves the same.
NOVA_TOKEN=$ROUTER_KEY "$B/nova-router" --gateway "$NOVA_URL" --listen 127.0.0.1:0 --threads 1 \
	>"$T_WORK/router2.port" 2>"$T_WORK/router2.log" &
R2PID=$!
i=0; while [ ! -s "$T_WORK/router2.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
R2="http://127.0.0.1:$(head -1 "$T_WORK/router2.port")"
i=0; until [ "$(curl -s -o "$T_WORK/body" -w '%{http_code}' "$R2/v1/chat/completions" \
	-H "Authorization: Bearer $INF" -d "$CHAT")" = 200 ] || [ $i -gt 50 ]; do i=$((i + 1)); sleep 0.1; done
grep -q '"chat.completion"' "$T_WORK/body" && t_pass "a second router beside the first serves the same" ||
	t_fail "second router" "$(cat "$T_WORK/body") $(tail -2 "$T_WORK/router2.log")"
kill -TERM $R2PID; wait $R2PID

# A revoked key is refused within 2 s.
code=$(req POST /v1/completions "$INF2" '{"model":"demo","prompt":"x","max_tokens":1}')
[ "$code" = 200 ] || t_fail "the second key works before its revocation" "$code"
id=$(t_sql "SELECT id FROM api_keys WHERE name = 'app2'")
"$C" apikey revoke "$id" >/dev/null
t0=$(date +%s%N)
while :; do
	code=$(req POST /v1/completions "$INF2" '{"model":"demo","prompt":"x","max_tokens":1}')
	[ "$code" = 401 ] && break
	[ $((($(date +%s%N) - t0) / 1000000)) -gt 5000 ] && break
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$code" = 401 ] && [ $ms -le 2000 ] && t_pass "a revoked key is refused within 2 s ($ms ms)" ||
	t_fail "revoked key" "$code after $ms ms"

# A replica is killed (its engine, SIGKILL) under load: requests go on,
# those in flight on it retried on the other replica, and the dead one is
# ejected by its first failure (before novad, told by its sidecar, takes
# it out of the table).
urls=$("$C" -o json routes --model demo | sed -n 's/.*"url": "\(http[^"]*\)".*/\1/p')
victim_port=$(echo "$urls" | head -1 | sed 's/.*://')
victim=$(pgrep -f "nova-mock-engine" | while read -r p; do
	tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "--port $victim_port" && echo "$p"; done 2>/dev/null | head -1)
if [ -n "$victim" ]; then
	before=$(req GET /metrics "" >/dev/null; sed -n 's/^nova_router_retries_total //p' "$T_WORK/body")
	# Under load: four clients, each sending one request (40 tokens,
	# about 800 ms, answered at its end) after another for 3 s; the engine
	# dies in the middle, with requests in flight on it.
	load() {
		end=$(($(date +%s%N) + 3000000000))
		while [ "$(date +%s%N)" -lt $end ]; do
			curl -s -o /dev/null -w '%{http_code}\n' "$R/v1/completions" -H "Authorization: Bearer $INF" \
				-d '{"model":"demo","prompt":"x","max_tokens":40}'
		done >"$T_WORK/kill.$1"
	}
	pids=
	for n in 1 2 3 4; do load $n & pids="$pids $!"; done
	sleep 1.2
	kill -9 "$victim"
	tk=$(date +%H:%M:%S.%N)
	wait $pids
	td=$(date +%H:%M:%S.%N)
	bad=$(cat "$T_WORK"/kill.* | grep -vc '^200$')
	req GET /metrics "" >/dev/null
	after=$(sed -n 's/^nova_router_retries_total //p' "$T_WORK/body")
	ej=$(sed -n 's/^nova_router_ejections_total //p' "$T_WORK/body")
	total=$(cat "$T_WORK"/kill.* | wc -l)
	[ $bad -eq 0 ] && [ $total -ge 4 ] && t_pass "a replica killed under load: none of $total requests failed" ||
		t_fail "killed replica" "$bad of $total failed"
	[ "$after" -gt "$before" ] && [ "$ej" -ge 1 ] && t_pass "they were retried on the other replica and it was ejected" ||
		t_fail "retry" "retries $before -> $after, ejections $ej (killed $victim on $victim_port of $(echo $urls) at $tk, done $td; codes $(cat "$T_WORK"/kill.* | tr '\n' ' '))"
else
	t_fail "a replica's engine to kill" "none on port $victim_port"
fi

# A client that goes away cancels its upstream request: while waiting for
# a non-streamed answer (the router sees its socket close), and in the
# middle of a stream (the engine stops generating).
metric() { req GET /metrics "" >/dev/null; sed -n "s/^$1 //p" "$T_WORK/body"; }
engines_busy() {
	n=0
	for u in $("$C" -o json routes --model demo | sed -n 's/.*"url": "\(http[^"]*\)".*/\1/p'); do
		q=$(curl -s "$u/metrics" | sed -n 's/^nova_engine_requests_in_progress //p'); n=$((n + ${q:-0}))
	done
	echo $n
}
c0=$(metric nova_router_cancelled_total)
curl -s -o /dev/null --max-time 0.5 "$R/v1/completions" -H "Authorization: Bearer $INF" \
	-d '{"model":"demo","prompt":"x","max_tokens":300}'
sleep 0.3
c1=$(metric nova_router_cancelled_total)
[ "$c1" -gt "$c0" ] && t_pass "a client gone while waiting: its upstream request is cancelled" ||
	t_fail "cancel while waiting" "cancelled $c0 -> $c1"
curl -sN -o /dev/null --max-time 1 "$R/v1/chat/completions" -H "Authorization: Bearer $INF" \
	-d '{"model":"demo","messages":[{"role":"user","content":"x"}],"max_tokens":300,"stream":true}'
i=0; while [ "$(engines_busy)" -gt 1 ] && [ $i -lt 20 ]; do i=$((i + 1)); sleep 0.1; done
busy=$(engines_busy)
c2=$(metric nova_router_cancelled_total)
# (the non-streamed one above may still be generating: the mock engine
# finds a gone client only when it writes)
[ "$c2" -gt "$c1" ] && [ "$busy" -le 1 ] && t_pass "a client gone mid-stream: the engine stops generating" ||
	t_fail "cancel mid-stream" "cancelled $c1 -> $c2, engines busy $busy"

# novad stopped: the router keeps serving the table and keys it has, and
# says so in its log and metrics.
nova_stop
sleep 1.5
code=$(req POST /v1/chat/completions "$INF" "$CHAT")
[ "$code" = 200 ] && t_pass "novad stopped: the router keeps serving" || t_fail "serving without novad" "$code $(cat "$T_WORK/body")"
code=$(req GET /v1/models "$INF")
[ "$code" = 200 ] && grep -q '"id":"demo"' "$T_WORK/body" && t_pass "and keeps its models list" || t_fail "models without novad" "$code"
grep -q 'route watch lost: serving the last table' "$T_WORK/router.log" && t_pass "the log says the watch is lost" ||
	t_fail "log of the lost watch" "$(tail -3 "$T_WORK/router.log")"
req GET /metrics "" >/dev/null
grep -q '^nova_router_watch_connected 0' "$T_WORK/body" && t_pass "/metrics says the watch is down" ||
	t_fail "metrics watch down" "$(grep watch "$T_WORK/body")"
! grep -q "$ROUTER_KEY\|$INF" "$T_WORK/router.log" && t_pass "no key in the router's log" || t_fail "keys in the log" "found"

# Back, on the same address: the watch reconnects.
T_LISTEN=${NOVA_URL#http://} nova_start || t_fail "novad restarts" "see log"
i=0; until req GET /metrics "" >/dev/null && grep -q '^nova_router_watch_connected 1' "$T_WORK/body"; do
	i=$((i + 1)); [ $i -gt 150 ] && break; sleep 0.1; done
grep -q '^nova_router_watch_connected 1' "$T_WORK/body" && t_pass "the watch reconnects when novad is back" ||
	t_fail "watch reconnect" "$(tail -3 "$T_WORK/router.log")"

kill -TERM $RPID; wait $RPID; rc=$?
[ $rc -eq 0 ] && t_pass "SIGTERM stops the router cleanly" || t_fail "router stop" "exit $rc"
RPID=
exit 0
