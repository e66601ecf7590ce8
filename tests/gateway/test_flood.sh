#!/bin/sh
# A connection flood on loopback (issue 23): 3,000 connections that never
# send a byte (reopened when closed, from 30 addresses) and 2,000 route
# watchers (six keys) held for 60 s (FLOOD_SECONDS) while a node
# heartbeats: /healthz answers every probe within 2 s (the heartbeat interval), every heartbeat is
# taken and the node never leaves ready, the watchers past the caps get
# 429 with Retry-After, and novad's open files come back to where they
# were once the flood is gone. Bounded: the helper (tests/gateway/flood.py)
# stops by itself; novad runs with its connection caps from a file.
set -u
. tests/support/lib.sh
SECONDS_FLOOD=${FLOOD_SECONDS:-60}
# The flood's sockets and novad's: both need more than the usual 1024.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 8000 ]; then
	t_fail "enough open files for the flood" "ulimit -n is $(ulimit -n)"; exit 0
fi
cat >"$T_WORK/novad.yaml" <<YAML
http:
  max_connections: 2048
  max_connections_per_ip: 256
  reserved_connections: 64
  header_timeout_ms: 10000
  max_watchers: 1000
  max_watchers_per_key: 200
YAML
nova_start -c "$T_WORK/novad.yaml" || { t_fail "novad starts" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
t_fake_deploy || { t_fail "replica placed" "no"; exit 0; }
replica=$(t_sql "SELECT id FROM replicas")
keys=""
for i in 1 2 3 4 5 6; do
	k=$(curl -s -H "Authorization: Bearer $TOKEN" "$NOVA_URL/v1/apikeys" \
		-d "{\"name\":\"router-$i\",\"scopes\":[\"routes\"]}" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
	[ -n "$k" ] || { t_fail "routes keys created" "key $i"; exit 0; }
	keys="$keys --key $k"
done
port=${NOVA_URL##*:}
# The node beats for a few intervals before the flood, so it is ready and
# heard; the helper keeps beating through it.
for s in 1 2 3 4 5; do
	curl -s -o /dev/null -H "Authorization: Bearer $T_TOKEN" "$NOVA_URL/v1/nodes/$T_NODE/heartbeat" \
		-d "{\"seq\":$s,\"replicas\":[{\"replica_id\":\"$replica\",\"state\":\"ready\",\"endpoint\":\"http://127.0.0.1:7001\"}]}"
	sleep 0.3
done
if t_wait_sql "SELECT state FROM nodes" ready; then t_pass "the node is ready before the flood"
else t_fail "the node is ready before the flood" "$(t_sql "SELECT state FROM nodes")"; exit 0; fi
fds() { ls "/proc/$T_PID/fd" | wc -l; }
fds_before=$(fds)
start=$(t_sql "SELECT now()")

# shellcheck disable=SC2086
timeout $((SECONDS_FLOOD + 120)) python3 tests/gateway/flood.py --port "$port" --seconds "$SECONDS_FLOOD" \
	--node "$T_NODE" --token "$T_TOKEN" --replica "$replica" $keys >"$T_WORK/flood.json" 2>"$T_WORK/flood.err"
j() { python3 -c "import json,sys; d=json.load(open('$T_WORK/flood.json')); print($1)"; }
if [ ! -s "$T_WORK/flood.json" ]; then
	t_fail "the flood ran" "$(tail -5 "$T_WORK/flood.err")"; exit 0
fi
t_pass "the flood ran for ${SECONDS_FLOOD}s: $(cat "$T_WORK/flood.json" | head -c 600)"

[ "$(j "d['probes'] > 0 and not d['probe_failures']")" = True ] &&
	t_pass "/healthz answered every probe within 2 s (the heartbeat interval) ($(j "d['probes']") probes, slowest $(j "round(d['probe_max_s'], 3)") s)" ||
	t_fail "/healthz answered every probe within 2 s (the heartbeat interval)" "$(j "d['probes'], d['probe_failures']")"
[ "$(j "d['beats'] > 0 and not d['beat_failures']")" = True ] &&
	t_pass "every heartbeat was taken within 2 s ($(j "d['beats']") beats)" ||
	t_fail "every heartbeat was taken within 2 s" "$(j "d['beats'], d['beat_failures']")"
[ "$(j "d['idle_closed_by_server'] > 0")" = True ] &&
	t_pass "idle connections were closed by novad ($(j "d['idle_closed_by_server']") of $(j "d['idle_opened']") opened)" ||
	t_fail "idle connections were closed by novad" "$(j "d['idle_closed_by_server'], d['idle_opened']")"
[ "$(j "d['watch_streams']")" = 1000 ] && [ "$(j "d['watch_streams_held_at_end']")" = 1000 ] &&
	t_pass "1,000 watchers (the total cap) got a stream and kept it" ||
	t_fail "1,000 watchers got a stream and kept it" "$(j "d['watch_streams'], d['watch_streams_held_at_end'], d['watch_other']")"
[ "$(j "d['watch_429']")" = 1000 ] && [ "$(j "d['watch_429_retry_after']")" = 1000 ] &&
	[ "$(j "len(d['watch_other']) + d['watch_unanswered']")" = 0 ] &&
	t_pass "the 1,000 watchers past the caps got 429 with Retry-After" ||
	t_fail "the watchers past the caps got 429 with Retry-After" "$(j "d['watch_429'], d['watch_429_retry_after'], d['watch_unanswered'], d['watch_other']")"

# Until the helper stopped beating: after it, the node is silent and in
# time rightly unhealthy (the checks below take seconds on a loaded host).
stopped=$(j "d['beats_stopped_at']")
left=$(t_sql "SELECT count(*) FROM node_events WHERE node_id = '$T_NODE' AND at >= '$start' AND at <= to_timestamp($stopped) AND to_state <> 'ready'")
[ "$left" = 0 ] && t_pass "the node never left ready while the flood lasted" ||
	t_fail "the node never left ready while the flood lasted" "$(t_sql "SELECT string_agg(to_state || ' ' || reason || ' at ' || at, '; ') FROM node_events WHERE node_id = '$T_NODE' AND at >= '$start'")"

# Everything closed by the client: novad lets go of every socket (watchers
# are found gone at the next wake: a table change or a 15 s keep-alive).
i=0
while [ "$(fds)" -gt $((fds_before + 8)) ] && [ $i -lt 400 ]; do i=$((i + 1)); sleep 0.1; done
fds_after=$(fds)
[ "$fds_after" -le $((fds_before + 8)) ] && t_pass "novad's open files are back to normal ($fds_before before, $fds_after after)" ||
	t_fail "novad's open files are back to normal" "$fds_before before, $fds_after after"
curl -s -H "Authorization: Bearer $TOKEN" "$NOVA_URL/metrics" >"$T_WORK/metrics"
shed=$(sed -n 's/^nova_http_connections_shed_total //p' "$T_WORK/metrics")
[ -n "$shed" ] && [ "$shed" -gt 0 ] && t_pass "/metrics counts the connections shed ($shed)" ||
	t_fail "/metrics counts the connections shed" "$(grep nova_http "$T_WORK/metrics")"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 "$NOVA_URL/healthz")
[ "$code" = 200 ] && t_pass "novad answers after the flood" || t_fail "novad answers after the flood" "$code"
exit 0
