#!/bin/sh
# Every model kind on LPU racks, with real processes: the example configs
# under etc/models/lpu/ deployed on two lpu pools of a small topology (one
# pool with one stage group, one with two), each routed and answering a
# request through its routed endpoint; multi-stage replicas have each stage
# on its own group of racks and are routable only while every stage is
# healthy; a deployment scales up and down on the racks.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
# The mock engines' admin routes take this token only (novad's environment
# reaches the agents and their engines).
export NOVA_MOCK_ADMIN_TOKEN=lpu-kinds-mock-admin-token
agents() { pgrep -f "$B/nova-sidecar --gateway" | wc -l; }
engines() { pgrep -f "$B/nova-mock-engine --port" | wc -l; }
trap 'pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; t_cleanup' EXIT
C="$B/novactl"

# Five racks of one node each (8 chips), in novad's state directory: one
# of the directories pools may name files in by default.
mkdir -p "$T_WORK/state"
topo="$T_WORK/state/dc.yaml"
{
	echo "clusters:"
	echo "  - id: 1"
	echo "    name: test"
	echo "    racks:"
	for r in 1 2 3 4 5; do
		echo "      - id: $r"
		echo "        nodes: [{name: r${r}n1, chips: 8, accelerator_type: LPU, memory_mib: 230}]"
	done
} >"$topo"

nova_start || { t_fail "novad starts" "see log"; exit 0; }
t_expect_exit 0 "a pool with one stage group" "$C" pool create flat --provider lpu \
	--config "{\"topology\":\"$topo\",\"allocation\":\"c1r1,c1r2\",\"mock_agents\":true}"
t_expect_exit 0 "a pool with two stage groups" "$C" pool create staged --provider lpu \
	--config "{\"topology\":\"$topo\",\"allocation\":\"c1r3:c1r4,c1r5\",\"mock_agents\":true}"
t_expect_exit 4 "a rack already held is refused" "$C" pool create again --provider lpu \
	--config "{\"topology\":\"$topo\",\"allocation\":\"c1r5\",\"mock_agents\":true}"
t_expect_out 'rack c1r5 is already claimed by pool "staged"' "naming the holder"

for kind in single lora_static lora_dynamic spec_decode vision; do
	"$C" model register -f "etc/models/lpu/$kind.yaml" >/dev/null 2>"$T_WORK/err" ||
		t_fail "register $kind" "$(cat "$T_WORK/err")"
done
deploy() { # NAME MODEL POOL
	t_expect_exit 0 "deploy $2 on pool $3" "$C" deploy "$2" --pool "$3" --name "$1"
}
deploy single lpu-single flat
deploy lora-static lpu-lora-static flat
deploy lora-dynamic lpu-lora-dynamic flat
deploy spec lpu-spec-decode staged
deploy vision lpu-vision staged
if t_wait_sql "SELECT count(*) FROM deployments WHERE state = 'running'" 5 90; then
	t_pass "every kind runs on the racks"
else
	t_fail "every kind runs" "$(t_sql "SELECT string_agg(name || '=' || state || ' (' || state_reason || ')', '; ') FROM deployments")"
fi
[ "$(agents)" -eq 5 ] && t_pass "an agent on each of the five rack nodes" || t_fail "five agents" "$(agents)"
[ "$(engines)" -eq 7 ] && t_pass "an engine per stage (3 one-stage + 2 x 2 stages)" ||
	t_fail "seven engines" "$(engines)"

# Stages on their own groups: stage 0 on c1r3's node, stage 1 on c1r4/c1r5's.
placed=$(t_sql "SELECT string_agg(d.name || ':' || rp.stage || '@' || n.name, ' ' ORDER BY d.name, rp.stage)
	FROM replica_placements rp JOIN replicas r ON r.id = rp.replica_id
	JOIN deployments d ON d.id = r.deployment_id JOIN nodes n ON n.id = rp.node_id
	WHERE d.name IN ('spec', 'vision')")
case "$placed" in
"spec:0@r3n1 spec:1@r"[45]"n1 vision:0@r3n1 vision:1@r"[45]"n1") t_pass "each stage on its own stage group ($placed)" ;;
*) t_fail "stage groups" "$placed" ;; esac

# The routed endpoint of MODEL (first one).
route_url() {
	t_wait_routed 10 "$1" || return 1
	sed -n 's/.*"url": "\(http[^"]*\)".*/\1/p' "$T_WORK/out" | head -1
}
chat() { # NAME URL MODEL [CONTENT-JSON]
	content=${4:-'"hi"'}
	out=$(curl -s -m 5 "$2/v1/chat/completions" \
		-d "{\"model\":\"$3\",\"messages\":[{\"role\":\"user\",\"content\":$content}],\"max_tokens\":3}")
	case "$out" in *'"content":"the model answers"'*) t_pass "$1" ;;
	*) t_fail "$1" "$2: $out" ;; esac
}
for m in lpu-single lpu-spec-decode; do
	url=$(route_url "$m") && chat "$m answers through its routed endpoint" "$url" "$m" ||
		t_fail "$m routed" "$(cat "$T_WORK/err")"
done
url=$(route_url lpu-vision) && chat "lpu-vision answers an image with text" "$url" lpu-vision \
	'[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]'
url=$(route_url lpu-lora-static/sql-expert) && chat "a static LoRA adapter has its own route and answers" \
	"$url" sql-expert
url=$(route_url lpu-lora-dynamic)
out=$(curl -s -m 5 "$url/v1/load_lora_adapter" -d '{"lora_name":"fr-tone","lora_path":"/adapters/fr"}')
chat "a dynamic LoRA adapter loaded on the routed endpoint answers" "$url" fr-tone

# A multi-stage replica is routable only while every stage is healthy: the
# draft engine reports unhealthy, the route goes; healthy again, it returns.
draft=$(t_sql "SELECT rp.endpoint FROM replica_placements rp JOIN replicas r ON r.id = rp.replica_id
	JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'spec' AND rp.stage = 0")
serving=$(t_sql "SELECT r.endpoint FROM replicas r JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'spec'")
target=$(t_sql "SELECT rp.endpoint FROM replica_placements rp JOIN replicas r ON r.id = rp.replica_id
	JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'spec' AND rp.stage = 1")
[ -n "$draft" ] && [ "$serving" = "$target" ] && [ "$draft" != "$target" ] &&
	t_pass "the replica is served at its target stage's endpoint" ||
	t_fail "serving endpoint" "draft=$draft target=$target replica=$serving"
st=$(curl -s -o /dev/null -w '%{http_code}' -m 5 "$draft/admin/health" -d '{"healthy":false}')
[ "$st" = 401 ] && t_pass "an engine's admin route refuses a caller without its admin token" ||
	t_fail "admin route without the token" "$st"
curl -s -m 5 -H "Authorization: Bearer $NOVA_MOCK_ADMIN_TOKEN" "$draft/admin/health" -d '{"healthy":false}' >/dev/null
# (the model keeps its route, with no endpoint: routers hold its requests)
if t_wait_cmd 10 sh -c "out=\$(\"$C\" -o json routes --model lpu-spec-decode) && ! echo \"\$out\" | grep -q '\"url\"'"; then t_pass "an unhealthy draft stage takes the replica out of the routes"
else t_fail "draft unhealthy" "$(cat "$T_WORK/out")"; fi
[ "$(t_sql "SELECT r.state FROM replicas r JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'spec'")" = starting ] &&
	t_pass "the replica waits for every stage" || t_fail "replica starting" "$(t_sql "SELECT state FROM replicas")"
curl -s -m 5 -H "Authorization: Bearer $NOVA_MOCK_ADMIN_TOKEN" "$draft/admin/health" -d '{"healthy":true}' >/dev/null
if t_wait_routed 10 lpu-spec-decode; then t_pass "healthy again, it is routed again"
else t_fail "draft healthy again" "$(cat "$T_WORK/err")"; fi

# Scale up and down on the racks.
t_expect_exit 0 "scale up to 2" "$C" deployment scale single --replicas 2
if t_wait_sql "SELECT count(*) FROM replicas r JOIN deployments d ON d.id = r.deployment_id
	WHERE d.name = 'single' AND r.state = 'ready'" 2 20; then t_pass "two replicas ready"
else t_fail "two replicas" "$(t_sql "SELECT string_agg(state, ',') FROM replicas")"; fi
if t_wait_cmd 10 sh -c "\"$C\" -o json routes --model lpu-single | grep -c '\"url\"' | grep -qx 2"; then
	t_pass "two endpoints routed"
else t_fail "two endpoints" "$("$C" routes --model lpu-single 2>&1)"; fi
[ "$(engines)" -eq 8 ] && t_pass "one more engine" || t_fail "eight engines" "$(engines)"
t_expect_exit 0 "scale down to 1" "$C" deployment scale single --replicas 1
if t_wait_cmd 15 sh -c "\"$C\" -o json routes --model lpu-single | grep -c '\"url\"' | grep -qx 1"; then
	t_pass "one endpoint routed"
else t_fail "one endpoint" "$("$C" routes --model lpu-single 2>&1)"; fi
i=0; while [ "$(engines)" -gt 7 ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(engines)" -eq 7 ] && t_pass "the removed replica's engine is stopped" || t_fail "seven engines" "$(engines)"
[ "$(t_sql "SELECT coalesce(sum(rp.accelerators), 0) FROM replica_placements rp JOIN replicas r ON r.id = rp.replica_id
	JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'single'")" = 4 ] &&
	t_pass "its chips are free again" || t_fail "chips freed" "$(t_sql "SELECT count(*) FROM replica_placements")"

for d in single lora-static lora-dynamic spec vision; do "$C" deployment stop "$d" >/dev/null; done
t_wait_sql "SELECT count(*) FROM deployments WHERE state <> 'stopped'" 0 20 >/dev/null
for d in single lora-static lora-dynamic spec vision; do "$C" deployment delete "$d" >/dev/null; done
t_expect_exit 0 "forced delete of both pools" sh -c "\"$C\" pool delete flat --force && \"$C\" pool delete staged --force"
i=0; while [ "$(agents)" -gt 0 ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
[ "$(agents)" -eq 0 ] && [ "$(engines)" -eq 0 ] && t_pass "no agent and no engine left" ||
	t_fail "nothing left" "$(agents) agents, $(engines) engines"
exit 0
