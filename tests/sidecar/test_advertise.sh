#!/bin/sh
# advertise_url: where agents reach novad. Two novads on one database; B
# advertises A (as a load balancer's name would be advertised). A sidecar
# started against B is told by B's first heartbeat answer to go to A, goes
# there, and keeps beating when B is killed. A bad advertise_url stops novad
# before it starts, naming the key.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=300 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad A starts" "see log"; exit 0; }
A_URL=$NOVA_URL
A_PORT=${A_URL##*:}
# A under another name, the one B advertises.
ADV="http://localhost:$A_PORT"
B_STATE="$T_WORK/state-b"
mkdir -p "$B_STATE"
NOVA_STATE_DIR="$B_STATE" NOVA_LISTEN=127.0.0.1:0 NOVA_ADMIN_TOKEN="$(cat "$NOVA_STATE_DIR/admin_token")" \
	NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova" NOVA_ENABLE_FAKE_PROVIDER=1 \
	NOVA_ADVERTISE_URL="$ADV" NOVA_WORKERS=0 "$B/novad" >"$T_WORK/novad-b.log" 2>&1 &
B_PID=$!
SC_PID=
trap 'kill -9 $B_PID $SC_PID 2>/dev/null; pkill -f "$B/nova-mock-engine --port" 2>/dev/null; t_cleanup' EXIT
i=0; while [ ! -s "$B_STATE/novad.url" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
B_URL=$(cat "$B_STATE/novad.url" 2>/dev/null)
[ -n "$B_URL" ] && t_pass "novad B starts advertising A" || { t_fail "novad B starts" "$(cat "$T_WORK/novad-b.log")"; exit 0; }

t_fake_deploy || { t_fail "placed" "no"; exit 0; }
# B's answer carries the advertised URL; A's, with none configured, does not.
ans=$(curl -s -H "Authorization: Bearer $T_TOKEN" -d '{"seq":1}' "$B_URL/v1/nodes/$T_NODE/heartbeat")
case "$ans" in *"\"gateway_url\":\"$ADV\""*) t_pass "a heartbeat answer names the advertised URL" ;;
*) t_fail "answer names the advertised URL" "$ans" ;; esac
ans=$(curl -s -H "Authorization: Bearer $T_TOKEN" -d '{"seq":2}' "$A_URL/v1/nodes/$T_NODE/heartbeat")
case "$ans" in *gateway_url*) t_fail "no gateway_url without advertise_url" "$ans" ;;
*) t_pass "no gateway_url without advertise_url" ;; esac

"$B/nova-sidecar" --gateway "$B_URL" --node-id "$T_NODE" --token "$T_TOKEN" \
	--mock-engine "$B/nova-mock-engine" >>"$T_WORK/sidecar.log" 2>&1 &
SC_PID=$!
i=0; while ! grep -q '"gateway changed"' "$T_WORK/sidecar.log" && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
if grep '"gateway changed"' "$T_WORK/sidecar.log" | grep -q "\"to\":\"$ADV\""; then
	t_pass "the sidecar follows the answer to the advertised URL"
else
	t_fail "the sidecar follows the answer" "$(tail -5 "$T_WORK/sidecar.log")"
fi
if t_wait_sql "SELECT state FROM deployments" running 20; then t_pass "the replica runs"
else t_fail "replica runs" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments")"; fi
# B goes away: the heartbeats were going to A, so the node stays ready and
# keeps beating.
kill -9 "$B_PID"; wait "$B_PID" 2>/dev/null
sleep 1
after=$(t_sql "SELECT now()")
if t_wait_sql "SELECT count(*) FROM node_heartbeats WHERE last_heartbeat_at > '$after'" 1 10; then
	t_pass "heartbeats reach A after B is gone"
else
	t_fail "heartbeats reach A after B is gone" "$(tail -3 "$T_WORK/sidecar.log")"
fi
[ "$(t_sql "SELECT state FROM nodes")" = ready ] && t_pass "the node stays ready" ||
	t_fail "the node stays ready" "$(t_sql "SELECT state || ': ' || state_reason FROM nodes")"
grep -q "heartbeat failed" "$T_WORK/sidecar.log" && t_fail "no heartbeat failed" "$(grep "heartbeat failed" "$T_WORK/sidecar.log" | head -2)" ||
	t_pass "no heartbeat failed"

# A bad advertise_url is refused before novad starts, naming it.
for bad in "ftp://x" "http://user:pw@lb:80" "http://lb/?q=1" "not a url" "http://"; do
	NOVA_STATE_DIR="$T_WORK/state-c" NOVA_LISTEN=127.0.0.1:0 NOVA_ADVERTISE_URL="$bad" \
		NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$T_DB user=nova" \
		"$B/novad" >"$T_WORK/novad-c.log" 2>&1
	rc=$?
	if [ "$rc" -eq 2 ] && grep -q "NOVA_ADVERTISE_URL" "$T_WORK/novad-c.log" &&
		! grep -q "pw@" "$T_WORK/novad-c.log"; then
		t_pass "advertise_url \"$bad\" is refused at start"
	else
		t_fail "advertise_url \"$bad\" is refused at start" "exit $rc: $(head -c 300 "$T_WORK/novad-c.log")"
	fi
done
exit 0
