#!/bin/sh
# nova-router's picking policies with real processes: novad, an lpu pool
# with mock agents (a nova-sidecar running nova-mock-engine per node), a
# model on three replicas, and routers in front of it.
#   prefix (the default): requests sharing a long system prompt follow the
#     replica that served it first, and that engine's prefix cache hits;
#   session: requests of one X-Session-Id (or body "user") stay on one
#     replica while several sessions spread;
#   least-loaded and round-robin: the same requests spread.
# Which replica served is read from each engine's own /metrics
# (nova_engine_requests_total), never from the router.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
RPIDS=
trap 'kill $RPIDS 2>/dev/null; pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
if t_demo_on_racks c1r1,c1r2 3 40; then t_pass "three replicas run on agents"
else t_fail "replicas run" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; exit 0; fi
i=0; until [ "$("$C" -o json routes --model demo 2>/dev/null | grep -c '"url"')" -eq 3 ] || [ $i -gt 100 ]; do
	i=$((i + 1)); sleep 0.1; done
ENGINES=$("$C" -o json routes --model demo | tr ',' '\n' | sed -n 's/.*"url": *"\([^"]*\)".*/\1/p' | sort -u)
[ "$(echo "$ENGINES" | wc -l)" -eq 3 ] || { t_fail "three engines in the routes" "$ENGINES"; exit 0; }

ROUTER_KEY=$("$C" apikey create router --scope router 2>/dev/null)
INF=$("$C" apikey create app --scope inference 2>/dev/null)

# router POLICY: starts one, its URL in $R.
router() {
	NOVA_TOKEN=$ROUTER_KEY "$B/nova-router" --gateway "$NOVA_URL" --listen 127.0.0.1:0 --threads 2 \
		--policy "$1" >"$T_WORK/router-$1.port" 2>"$T_WORK/router-$1.log" &
	RPIDS="$RPIDS $!"
	i=0; while [ ! -s "$T_WORK/router-$1.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
	R="http://127.0.0.1:$(head -1 "$T_WORK/router-$1.port")"
	i=0; until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $INF" \
		-H 'Content-Type: application/json' "$R/v1/chat/completions" \
		--data-binary '{"model":"demo","messages":[{"role":"user","content":"warm"}],"max_tokens":1}')" = 200 ]; do
		i=$((i + 1)); [ $i -gt 100 ] && break; sleep 0.1; done
}
# counts NAME: each engine's value of the metric NAME, one per line, in
# $ENGINES' order.
counts() {
	for e in $ENGINES; do
		curl -s "$e/metrics" | sed -n "s/^$1 //p" | cut -d. -f1
	done
}
# delta BEFORE AFTER: the per-engine differences, space separated.
delta() {
	printf '%s\n' "$1" >"$T_WORK/a"; printf '%s\n' "$2" >"$T_WORK/b"
	paste "$T_WORK/a" "$T_WORK/b" | awk '{printf "%d ", $2 - $1}'
}
# chat [HEADER] BODY: one request through $R; fails the test on non-200.
chat() {
	code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $INF" \
		-H 'Content-Type: application/json' ${2:+-H "$1"} "$R/v1/chat/completions" \
		--data-binary "${2:-$1}")
	[ "$code" = 200 ] || t_fail "a request through the router" "$code $(cat "$T_WORK/body")"
}
# A system prompt of about 4 KB (fifteen of the router's 256-byte blocks,
# sixty of the engine's 64-byte ones) after a tenant's name: tenants share
# nothing from their first block on.
SYS=$(awk 'BEGIN { for (i = 0; i < 100; i++) printf "Rule %02d: answer precisely, in English. ", i }')
body() { printf '{"model":"demo","max_tokens":2,"messages":[{"role":"system","content":"Tenant %s. %s"},{"role":"user","content":"%s"}]}' "$1" "$SYS" "$2"; }

# --- prefix (the default policy) -------------------------------------------
router prefix
before=$(counts nova_engine_requests_total); hb=$(counts nova_engine_prefix_cache_hits_total)
for q in one two three four five six seven eight; do chat "$(body A "question $q")"; done
d=$(delta "$before" "$(counts nova_engine_requests_total)")
dh=$(delta "$hb" "$(counts nova_engine_prefix_cache_hits_total)")
if echo "$d" | tr ' ' '\n' | grep -qx 8 && [ "$(echo "$d" | tr ' ' '\n' | grep -cx 0)" -eq 2 ]
then t_pass "eight requests sharing a prefix all land on one replica ($d)"
else t_fail "prefix affinity" "requests per engine: $d"; fi
# The seven after the first hit the engine's cache for the shared prompt.
hits=$(echo "$dh" | tr ' ' '\n' | sort -n | tail -1)
[ "$hits" -ge $((7 * 50)) ] && t_pass "the prefix's replica found it cached ($hits blocks hit)" ||
	t_fail "prefix cache hits" "hits per engine: $dh"
# Three other tenants, the first request of each alone, then three rounds
# of the three at once: each tenant's four requests stay on one replica.
before=$(counts nova_engine_requests_total)
for t in B C D; do chat "$(body "$t" "first")"; done
for round in 1 2 3; do
	cp=
	for t in B C D; do chat "$(body "$t" "round $round")" & cp="$cp $!"; done
	wait $cp
done
d=$(delta "$before" "$(counts nova_engine_requests_total)")
echo "$d" | tr ' ' '\n' | awk '$1 % 4 != 0 { bad = 1 } END { exit bad }' &&
	t_pass "each tenant's requests stay together (per engine: $d)" ||
	t_fail "tenants stay on their replicas" "per engine: $d"
# Embeddings have no prompt to follow: least loaded, still answered.
code=$(curl -s -o "$T_WORK/body" -w '%{http_code}' -H "Authorization: Bearer $INF" \
	-H 'Content-Type: application/json' "$R/v1/embeddings" --data-binary '{"model":"demo","input":"x"}')
[ "$code" = 200 ] && t_pass "embeddings under the prefix policy" || t_fail "embeddings" "$code $(cat "$T_WORK/body")"

# --- session ---------------------------------------------------------------
router session
before=$(counts nova_engine_requests_total)
for i in 1 2 3 4 5 6; do chat "X-Session-Id: alice" "$(body "s$i" "q")"; done
d=$(delta "$before" "$(counts nova_engine_requests_total)")
echo "$d" | tr ' ' '\n' | grep -qx 6 && t_pass "one X-Session-Id stays on one replica ($d)" ||
	t_fail "session stickiness" "per engine: $d"
before=$(counts nova_engine_requests_total)
for i in 1 2 3 4 5; do
	chat "$(printf '{"model":"demo","max_tokens":1,"user":"bob","messages":[{"role":"user","content":"%s"}]}' "$i")"
done
d=$(delta "$before" "$(counts nova_engine_requests_total)")
echo "$d" | tr ' ' '\n' | grep -qx 5 && t_pass "the body's user field is the session key too ($d)" ||
	t_fail "user as session" "per engine: $d"
before=$(counts nova_engine_requests_total)
for s in $(seq 1 30); do chat "X-Session-Id: user-$s" "$(body x q)"; done
d=$(delta "$before" "$(counts nova_engine_requests_total)")
[ "$(echo "$d" | tr ' ' '\n' | grep -c '^[1-9]')" -eq 3 ] && t_pass "thirty sessions spread over the three replicas ($d)" ||
	t_fail "sessions spread" "per engine: $d"

# --- round-robin and least-loaded: the same prompt spreads -------------------
for p in round-robin least-loaded; do
	router "$p"
	before=$(counts nova_engine_requests_total)
	cp=
	for i in 1 2 3 4 5 6; do chat "$(body A "q$i")" & cp="$cp $!"; done
	wait $cp
	d=$(delta "$before" "$(counts nova_engine_requests_total)")
	[ "$(echo "$d" | tr ' ' '\n' | grep -c '^[1-9]')" -ge 2 ] && t_pass "$p spreads one prefix's requests ($d)" ||
		t_fail "$p spreads" "per engine: $d"
done
[ "$(echo "$d" | tr ' ' '\n' | awk '{ s += $1 } END { print s }')" -eq 6 ] ||
	t_fail "the engines' counts add up" "$d"

# A bad policy is refused at start, naming the flag.
out=$(NOVA_TOKEN=x "$B/nova-router" --gateway "$NOVA_URL" --policy fastest 2>&1)
echo "$out" | grep -q -- "--policy" && echo "$out" | grep -q "round-robin" &&
	t_pass "an unknown --policy is refused naming the choices" || t_fail "bad policy" "$out"
