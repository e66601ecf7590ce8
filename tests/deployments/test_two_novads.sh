#!/bin/sh
# Two novad processes on one database: the work is not done twice, and when
# the reconciler's holder dies the other takes over (the autoscaler too).
set -u
. tests/support/lib.sh
nova_start || { t_fail "first novad starts" "see log"; exit 0; }
A_PID=$T_PID
B_STATE="$T_WORK/state-b"
mkdir -p "$B_STATE" "$NOVA_STATE_DIR/fake"
ln -s "$NOVA_STATE_DIR/fake" "$B_STATE/fake"
NOVA_STATE_DIR="$B_STATE" NOVA_LISTEN=127.0.0.1:0 NOVA_ADMIN_TOKEN="$(cat "$NOVA_STATE_DIR/admin_token")" \
	NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova" NOVA_ENABLE_FAKE_PROVIDER=1 \
	"$B/novad" >"$T_WORK/novad-b.log" 2>&1 &
B_PID=$!
trap 'kill -9 $B_PID 2>/dev/null; t_cleanup' EXIT
i=0; while [ ! -s "$B_STATE/novad.url" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
[ -s "$B_STATE/novad.url" ] && t_pass "second novad starts on the same database" || t_fail "second novad" "no url"

C="$B/novactl"
# The fake's state file is a name under each novad's state directory: the
# two share their fake/ as two machines would share the provider.
prov="$NOVA_STATE_DIR/fake/provider.json"
"$C" model register -f etc/models/single.yaml >/dev/null
"$C" pool create shared --provider fake --config \
	"{\"accelerator_type\":\"A100-80G\",\"nodes\":16,\"state_file\":\"provider.json\"}" >/dev/null
"$C" deploy llama-3-8b-instruct --pool shared --replicas 6 --name many >/dev/null
if t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 6; then t_pass "six replicas placed"
else t_fail "six replicas placed" "$(t_sql "SELECT count(*) FROM replicas WHERE state = 'placed'")"; fi
sleep 1
[ "$(t_sql "SELECT count(*) FROM nodes")" = 6 ] && t_pass "six nodes, not twelve" ||
	t_fail "six nodes, not twelve" "$(t_sql "SELECT count(*) FROM nodes")"
n=$(grep -o '"node_id":"[^"]*"' "$prov" | wc -l)
u=$(grep -o '"node_id":"[^"]*"' "$prov" | sort -u | wc -l)
[ "$n" -eq 6 ] && [ "$u" -eq 6 ] && t_pass "the provider holds six resources, no twins" ||
	t_fail "the provider holds six resources, no twins" "$n resources, $u distinct"

# The autoscaler ticks in the holder of the singleton duties only: one
# decision for one demand, not two.
ROUTER_KEY=$("$C" apikey create r --scope router 2>/dev/null)
demand() { # URL WAITING: a router's report that WAITING requests wait
	curl -s -o /dev/null -w '%{http_code}' -X POST "$1/v1/router/demand" -H "Authorization: Bearer $ROUTER_KEY" \
		-H 'Content-Type: application/json' \
		-d "{\"router\":\"t\",\"models\":{\"llama-3-8b-instruct\":{\"waiting\":$2,\"in_flight\":0}}}"
}
"$C" deploy llama-3-8b-instruct --pool shared --name auto --replicas 0 \
	--autoscale min=0,max=6,target-queue=1 >/dev/null
demand "$NOVA_URL" 2 >/dev/null
if t_wait_sql "SELECT replicas FROM deployments WHERE name = 'auto'" 2; then
	t_pass "a router's demand scales the autoscaled deployment 0 -> 2"
else t_fail "autoscale 0 -> 2" "$(t_sql "SELECT replicas FROM deployments WHERE name = 'auto'")"; fi
sleep 2
[ "$(t_sql "SELECT count(*) FROM deployment_events WHERE kind = 'scaled'")" = 1 ] &&
	t_pass "one decision, taken by one novad" ||
	t_fail "one decision" "$(t_sql "SELECT reason FROM deployment_events WHERE kind = 'scaled'")"

la=$(grep -c "now runs the reconciler" "$T_WORK/novad.log")
lb=$(grep -c "now runs the reconciler" "$T_WORK/novad-b.log")
[ $((la + lb)) -eq 1 ] && t_pass "exactly one novad runs the reconciler" ||
	t_fail "exactly one novad runs the reconciler" "a=$la b=$lb"
if [ "$la" -eq 1 ]; then dead=$A_PID; other="$T_WORK/novad-b.log"; T_PID=$B_PID; else
	dead=$B_PID; other="$T_WORK/novad.log"; fi
kill -KILL "$dead"; wait "$dead" 2>/dev/null
i=0; while ! grep -q "now runs the reconciler" "$other" && [ $i -lt 150 ]; do i=$((i + 1)); sleep 0.1; done
grep -q "now runs the reconciler" "$other" && t_pass "the other novad takes over the reconciler" ||
	t_fail "the other novad takes over the reconciler" "not within 15 s"
# ... and the autoscaler with it, from the stored state.
demand "$(cat "$([ "$other" = "$T_WORK/novad.log" ] && echo "$NOVA_STATE_DIR" || echo "$B_STATE")/novad.url")" 4 >/dev/null
if t_wait_sql "SELECT replicas FROM deployments WHERE name = 'auto'" 4 15; then
	t_pass "the surviving novad's autoscaler goes on: 2 -> 4"
else t_fail "autoscale after takeover" "$(t_sql "SELECT reason FROM deployment_events WHERE kind = 'scaled'")"; fi
exit 0
