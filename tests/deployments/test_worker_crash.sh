#!/bin/sh
# A novad killed (-9) while its worker is in the middle of provisioning: the
# provider's resource exists, the database has not recorded it. After the
# restart the item completes and the provider holds no twin.
set -u
. tests/support/lib.sh
export NOVA_WORKERS=1 NOVA_WORKER_LEASE_MS=3000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
prov="$NOVA_STATE_DIR/fake/provider.json"
"$C" model register -f etc/models/single.yaml >/dev/null
"$C" pool create crashy --provider fake --config \
	"{\"accelerator_type\":\"A100-80G\",\"state_file\":\"provider.json\",\"faults\":{\"provision\":{\"kind\":\"slow\",\"delay_ms\":4000,\"times\":1}}}" >/dev/null
"$C" deploy llama-3-8b-instruct --pool crashy --name web >/dev/null

# Wait until the node row exists and the provider holds its resource, while
# the provision call is still "booting".
i=0; node=
while [ $i -lt 100 ]; do
	node=$(t_sql "SELECT id FROM nodes WHERE state = 'provisioning'")
	[ -n "$node" ] && grep -q "$node" "$prov" 2>/dev/null && break
	i=$((i + 1)); sleep 0.1
done
if [ -n "$node" ] && grep -q "$node" "$prov"; then t_pass "provision in flight: resource exists, row provisioning"
else t_fail "provision in flight: resource exists, row provisioning" "node=$node"; fi

kill -KILL "$T_PID"; wait "$T_PID" 2>/dev/null; T_PID=
t_pass "novad killed in the middle of the item"

nova_start || { t_fail "novad restarts" "see log"; exit 0; }
# The dead worker's lease expires (3 s), the new one claims the item.
if t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 1 30; then
	t_pass "the item completes after the restart"
else
	t_fail "the item completes after the restart" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"
fi
n=$(grep -o '"node_id":"[^"]*"' "$prov" | wc -l)
[ "$n" -eq 1 ] && t_pass "the provider holds one resource, no twin" || t_fail "no twin" "$n resources"
[ "$(t_sql "SELECT count(*) FROM nodes")" = 1 ] && t_pass "one node row" || t_fail "one node row" "$(t_sql "SELECT count(*) FROM nodes")"
[ "$(t_sql "SELECT id FROM nodes WHERE state = 'ready'")" = "$node" ] && t_pass "the same node became ready" ||
	t_fail "the same node became ready" "$(t_sql "SELECT id || ' ' || state FROM nodes")"
exit 0
