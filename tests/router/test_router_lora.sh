#!/bin/sh
# LoRA routing with real processes: novad, an lpu pool with mock agents
# (nova-sidecar running nova-mock-engine), a lora_static model on one
# replica and a lora_dynamic one on two, and a router in front.
#  - static: a request naming the adapter (or model/adapter) reaches an
#    engine serving it;
#  - dynamic: the engines load an adapter on first use (--lora-resolve, as
#    vLLM's LoRA resolver); requests for it keep going to the replica that
#    loaded it, so it is loaded once; a second adapter works too; the
#    sidecars report what each engine has loaded (adapters_loaded on GET
#    /v1/routes); a second router, which sent nothing yet, follows those
#    reports; GET /v1/models lists every model and adapter with "parent".
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
RPID= R2PID=
stop_all() {
	kill $RPID $R2PID 2>/dev/null
	# The agents (detached by the lpu adapter) by the pid files it keeps;
	# their engines die with them.
	for f in "$NOVA_LPU_RUN_DIR"/*/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
	t_cleanup
}
trap stop_all EXIT
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
cat >"$T_WORK/static.yaml" <<EOM
name: ls
kind: lora_static
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
adapters: [sql-expert, support-tone]
EOM
cat >"$T_WORK/dynamic.yaml" <<EOM
name: ld
kind: lora_dynamic
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
max_adapters: 2
adapters: [sql, chat, code]
EOM
"$C" pool create racks --provider lpu \
	--config "{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r1,c1r2\",\"mock_agents\":true}" \
	>"$T_WORK/out" 2>&1 || t_fail "pool create" "$(cat "$T_WORK/out")"
"$C" model register -f "$T_WORK/static.yaml" >/dev/null
"$C" model register -f "$T_WORK/dynamic.yaml" >"$T_WORK/out" 2>&1 &&
	t_pass "a lora_dynamic model lists the adapters it can load" || t_fail "register lora_dynamic" "$(cat "$T_WORK/out")"
"$C" deploy ls --pool racks --replicas 1 --name ls >/dev/null
"$C" deploy ld --pool racks --replicas 2 --name ld >/dev/null
if t_wait_sql "SELECT count(*) FROM deployments WHERE state = 'running'" 2 60; then t_pass "both models run on agents"
else t_fail "deployments run" "$(t_sql "SELECT name || ' ' || state || ': ' || state_reason FROM deployments")"; exit 0; fi

ROUTER_KEY=$("$C" apikey create router --scope router 2>/dev/null)
INF=$("$C" apikey create app --scope inference 2>/dev/null)
start_router() {
	NOVA_TOKEN=$ROUTER_KEY "$B/nova-router" --gateway "$NOVA_URL" --listen 127.0.0.1:0 --threads 2 \
		${T_ROUTER_DEBUG:+--log-level debug} >"$T_WORK/$1.port" 2>"$T_WORK/$1.log" &
	LAST_PID=$!
	i=0; while [ ! -s "$T_WORK/$1.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
	LAST_URL="http://127.0.0.1:$(head -1 "$T_WORK/$1.port")"
}
start_router router; RPID=$LAST_PID; R=$LAST_URL

# chat URL MODEL: the status; the body in $T_WORK/body.
chat() {
	curl -s -o "$T_WORK/body" -w '%{http_code}' "$1/v1/chat/completions" -H "Authorization: Bearer $INF" \
		-H 'Content-Type: application/json' \
		--data-binary "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}"
}
# The endpoints of a route (both replicas of ld once ready).
urls() { "$C" -o json routes --model "$1" 2>/dev/null | jq -r '.routes[0].endpoints[].url' | sort; }
i=0; until [ "$(urls ld/sql | wc -l)" -eq 2 ] || [ $i -gt 150 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(urls ld/sql | wc -l)" -eq 2 ] || t_fail "two replicas of ld routed" "$("$C" -o json routes 2>&1 | head -c 600)"
"$C" -o json routes --model ld/sql | jq -e '.routes[0].dynamic == true' >/dev/null &&
	t_pass "a dynamic adapter's route is marked dynamic" || t_fail "dynamic route" "$("$C" -o json routes --model ld/sql)"
i=0; until [ "$(curl -s -o "$T_WORK/models" -w '%{http_code}' "$R/v1/models" -H "Authorization: Bearer $INF")" = 200 ] &&
	[ "$(jq '.data | length' "$T_WORK/models")" -ge 7 ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
sleep 1.5 # the router's first loads poll

# GET /v1/models: every model and adapter, adapters with their parent.
got=$(jq -r '[.data[] | .id + ":" + (.parent // "-")] | sort | join(",")' "$T_WORK/models")
[ "$got" = "chat:ld,code:ld,ld:-,ls:-,sql-expert:ls,sql:ld,support-tone:ls" ] &&
	t_pass "GET /v1/models lists the models and every static and dynamic adapter with its parent" ||
	t_fail "models list" "$got"

# Static: by the adapter's name, and as model/adapter (the engine is sent
# the adapter's own name).
code=$(chat "$R" sql-expert)
[ "$code" = 200 ] && jq -e '.model == "sql-expert"' "$T_WORK/body" >/dev/null &&
	t_pass "a static adapter is routed by its name" || t_fail "static adapter" "$code $(cat "$T_WORK/body")"
code=$(chat "$R" ls/support-tone)
[ "$code" = 200 ] && jq -e '.model == "support-tone"' "$T_WORK/body" >/dev/null &&
	t_pass "a static adapter is routed as model/adapter" || t_fail "model/adapter" "$code $(cat "$T_WORK/body")"
code=$(chat "$R" nope-lora)
[ "$code" = 404 ] && t_pass "an adapter no model lists: 404" || t_fail "unknown adapter" "$code"

# metric URL NAME: an engine's counter.
metric() { curl -s "$1/metrics" | sed -n "s/^$2 //p"; }
loads() { t=0; for u in $(urls ld/sql); do t=$((t + $(metric "$u" nova_engine_lora_loads_total))); done; echo $t; }
where() { for u in $(urls ld/sql); do echo "$(metric "$u" nova_engine_lora_loads_total)"; done | tr '\n' ' '; }

# Dynamic: the first request loads "sql" on one replica; the next ones go
# there (it has it loaded), so it is loaded once in all.
ok=0
for n in 1 2 3 4 5 6; do [ "$(chat "$R" sql)" = 200 ] && ok=$((ok + 1)); done
jq -e '.model == "sql"' "$T_WORK/body" >/dev/null || t_fail "dynamic adapter answer" "$(cat "$T_WORK/body")"
[ $ok -eq 6 ] && [ "$(loads)" -eq 1 ] &&
	t_pass "a dynamic adapter loads on first use and its requests stay on that replica (6 requests, 1 load)" ||
	t_fail "dynamic adapter" "$ok of 6 answered, loads per replica: $(where)"
for n in 1 2 3 4; do chat "$R" ld/chat >/dev/null; done
code=$(chat "$R" chat)
[ "$code" = 200 ] && jq -e '.model == "chat"' "$T_WORK/body" >/dev/null && [ "$(loads)" -eq 2 ] &&
	t_pass "a second dynamic adapter works too, loaded once (by name and as model/adapter)" ||
	t_fail "second adapter" "$code, loads per replica: $(where) $(cat "$T_WORK/body")"

# The sidecars report what their engines loaded: GET /v1/routes shows the
# list on the endpoints of the model's own route, and on each dynamic
# adapter's route whether the endpoint has that one.
base='.routes[] | select(.adapter == null) | .endpoints[]'
i=0; until "$C" -o json routes --model ld | jq -e "[$base | .adapters_loaded // [] | .[]] | sort == [\"chat\",\"sql\"]" >/dev/null 2>&1 || [ $i -gt 100 ]; do
	i=$((i + 1)); sleep 0.1; done
"$C" -o json routes --model ld >"$T_WORK/routes.json"
for u in $(urls ld/sql); do
	want=$(curl -s "$u/v1/models" | jq -c '[.data[] | select(.parent != null) | .id] | sort')
	have=$(jq -c --arg u "$u" "[$base | select(.url == \$u) | .adapters_loaded // [] | .[]] | sort" "$T_WORK/routes.json")
	flags=$(jq -c --arg u "$u" '[.routes[] | select(.dynamic) | .adapter as $a | .endpoints[] | select(.url == $u) | select(.adapter_loaded) | $a] | sort' "$T_WORK/routes.json")
	[ "$want" = "$have" ] && [ "$want" = "$flags" ] ||
		t_fail "adapters_loaded of $u" "engine: $want, routes: $have, adapter_loaded on: $flags"
done
jq -e "[$base | .adapters_loaded // [] | .[]] | sort == [\"chat\",\"sql\"]" "$T_WORK/routes.json" >/dev/null &&
	t_pass "GET /v1/routes shows each replica's loaded adapters as its sidecar reported them" ||
	t_fail "adapters_loaded" "$(cat "$T_WORK/routes.json")"

# A second router, which sent nothing anywhere, follows the reports.
start_router router2; R2PID=$LAST_PID; R2=$LAST_URL
i=0; until [ "$(chat "$R2" ld)" = 200 ] || [ $i -gt 100 ]; do i=$((i + 1)); sleep 0.1; done
sleep 1.5 # its first loads poll
for n in 1 2 3 4 5 6; do chat "$R2" sql >/dev/null; chat "$R2" chat >/dev/null; done
[ "$(loads)" -eq 2 ] &&
	t_pass "another router sends each adapter to the replica that reported it loaded (no new load)" ||
	t_fail "second router" "loads per replica: $(where)"

# A third adapter: loaded where the pick sends it (evicting the least
# recently used there when that replica holds max_adapters already).
code=$(chat "$R" code)
[ "$code" = 200 ] && [ "$(loads)" -eq 3 ] && t_pass "a third adapter loads too" ||
	t_fail "third adapter" "$code loads $(where)"
exit 0
