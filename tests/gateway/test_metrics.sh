#!/bin/sh
# /metrics as Prometheus reads it: Debian's promtool (package prometheus,
# unpacked privately when not installed) checks novad's page, with a
# deployment and a heartbeat in it, with the database up and with it gone;
# the fleet's families (nodes, deployments, replicas, their load, the work
# queue), requests by route and status, heartbeats by result; heartbeats
# not in the access log at info; no credential is 401, unless
# metrics_public.
. tests/support/lib.sh
export NOVA_METRICS_REFRESH_MS=500
nova_start || { t_fail "novad starts" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
if ! PROMTOOL=$(t_deb_tool prometheus usr/bin/promtool); then
	t_fail "promtool is available" "see above"; exit 0
fi
metrics() { curl -s -H "Authorization: Bearer $TOKEN" "$NOVA_URL/metrics"; }
metrics >"$T_WORK/m1"
if "$PROMTOOL" check metrics <"$T_WORK/m1" >"$T_WORK/out" 2>&1; then
	t_pass "promtool check metrics accepts /metrics"
else
	t_fail "promtool check metrics accepts /metrics" "$(cat "$T_WORK/out")"
fi
grep -q '^nova_database_up 1$' "$T_WORK/m1" && t_pass "nova_database_up is 1" ||
	t_fail "nova_database_up is 1" "$(grep database_up "$T_WORK/m1")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$NOVA_URL/metrics")
[ "$code" = 401 ] && t_pass "/metrics without a credential is 401" || t_fail "/metrics without a credential" "$code"

# A deployment, its node heartbeating with a load: the fleet's families.
export NOVA_TOKEN="$TOKEN"
t_fake_deploy || { t_fail "a replica placed" "no"; exit 0; }
replica=$(t_sql "SELECT id FROM replicas")
curl -s -o /dev/null -H "Authorization: Bearer wrong-token" "$NOVA_URL/v1/nodes/$T_NODE/heartbeat" -d '{"seq":1}'
# The node beats every 300 ms until the page is read (it would turn
# unhealthy after three silent intervals).
(
	s=0
	while [ $s -lt 200 ]; do
		s=$((s + 1))
		curl -s -o /dev/null -H "Authorization: Bearer $T_TOKEN" "$NOVA_URL/v1/nodes/$T_NODE/heartbeat" \
			-d "{\"seq\":$s,\"replicas\":[{\"replica_id\":\"$replica\",\"state\":\"ready\",\"endpoint\":\"http://127.0.0.1:7001\",\"load\":{\"queue_depth\":3,\"tokens_per_second\":40,\"ttft_ms\":250}}]}"
		sleep 0.3
	done
) &
beater=$!
t_wait_sql "SELECT state FROM replicas" ready || t_fail "the replica is ready" "$(t_sql "SELECT state FROM replicas")"
want='nova_deployment_replicas_ready{deployment="web",model="mistral-7b-lora",pool="p"} 1'
# The model and its two adapters: three routes, one endpoint each.
i=0
while [ $i -lt 50 ]; do
	metrics >"$T_WORK/m3"
	grep -qF "$want" "$T_WORK/m3" && grep -q '^nova_singleton_leader 1$' "$T_WORK/m3" &&
		grep -q '^nova_routes_endpoints 3$' "$T_WORK/m3" &&
		grep -qF 'nova_deployments{state="running"} 1' "$T_WORK/m3" && break
	i=$((i + 1)); sleep 0.2
done
kill $beater 2>/dev/null
for line in "$want" \
	'nova_deployment_replicas_desired{deployment="web",model="mistral-7b-lora",pool="p"} 1' \
	'nova_nodes{pool="p",state="ready"} 1' \
	'nova_deployments{state="running"} 1' \
	'nova_deployment_queue_depth{deployment="web",model="mistral-7b-lora"} 3' \
	'nova_deployment_tokens_per_second{deployment="web",model="mistral-7b-lora"} 40' \
	'nova_deployment_time_to_first_token_seconds{deployment="web",model="mistral-7b-lora"} 0.25' \
	'nova_heartbeats_total{result="unauthenticated"} 1' \
	'nova_http_requests_total{method="POST",route="/v1/pools",status="201"} 1' \
	'nova_http_requests_total{method="GET",route="/metrics",status="401"} 1' \
	'nova_routes 3' 'nova_routes_endpoints 3' \
	'nova_singleton_leader 1' \
	"nova_build_info{version=\"$(cat VERSION)\"} 1"; do
	grep -qxF "$line" "$T_WORK/m3" && t_pass "/metrics has $line" ||
		t_fail "/metrics has $line" "$(grep -F "${line%%\{*}" "$T_WORK/m3" | head -5)"
done
n=$(sed -n 's/^nova_heartbeats_total{result="accepted"} //p' "$T_WORK/m3")
[ "${n:-0}" -ge 1 ] && t_pass "/metrics counts accepted heartbeats ($n)" || t_fail "/metrics counts accepted heartbeats" "${n:-none}"
for fam in nova_http_request_duration_seconds_bucket nova_inventory_flush_duration_seconds_count \
	nova_db_pool_connections_in_use nova_work_items_queued nova_work_items_oldest_age_seconds \
	nova_reconciler_passes_total nova_reconciler_resources_removed_total nova_fleet_metrics_age_seconds; do
	grep -q "^$fam[ {]" "$T_WORK/m3" && t_pass "/metrics has $fam" || t_fail "/metrics has $fam" "missing"
done
if "$PROMTOOL" check metrics <"$T_WORK/m3" >"$T_WORK/out" 2>&1; then
	t_pass "promtool check metrics accepts /metrics with a fleet in it"
else
	t_fail "promtool check metrics accepts /metrics with a fleet in it" "$(cat "$T_WORK/out")"
fi
# Heartbeats are at debug: not one access line for them at info.
if grep -q '"path":"/v1/nodes/[^"]*/heartbeat"' "$T_WORK/novad.log"; then
	t_fail "heartbeats are not in the access log at info" "$(grep -c heartbeat "$T_WORK/novad.log") lines"
else
	t_pass "heartbeats are not in the access log at info"
fi

# metrics_public: anyone may scrape.
nova_stop
NOVA_METRICS_PUBLIC=true nova_start || { t_fail "novad starts with metrics_public" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$NOVA_URL/metrics")
[ "$code" = 200 ] && t_pass "with metrics_public, /metrics without a credential is 200" ||
	t_fail "with metrics_public, /metrics without a credential" "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$NOVA_URL/v1/pools")
[ "$code" = 401 ] && t_pass "with metrics_public, other routes still need a credential" ||
	t_fail "with metrics_public, other routes still need a credential" "$code"
# The database gone (this test's own database dropped under novad): the
# page still answers, from memory, and says so.
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc \
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$T_DB'" >/dev/null
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "ALTER DATABASE $T_DB ALLOW_CONNECTIONS false" >/dev/null
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc \
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$T_DB'" >/dev/null
i=0
while [ $i -lt 50 ]; do
	metrics >"$T_WORK/m2"
	grep -q '^nova_database_up 0$' "$T_WORK/m2" && break
	i=$((i + 1)); sleep 0.2
done
if grep -q '^nova_database_up 0$' "$T_WORK/m2" && "$PROMTOOL" check metrics <"$T_WORK/m2" >"$T_WORK/out" 2>&1; then
	t_pass "without the database /metrics answers, nova_database_up 0, and promtool accepts it"
else
	t_fail "without the database /metrics answers with nova_database_up 0" "$(head -c 400 "$T_WORK/m2") $(cat "$T_WORK/out")"
fi
psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "ALTER DATABASE $T_DB ALLOW_CONNECTIONS true" >/dev/null
exit 0
