#!/bin/sh
# Issue 13: PostgreSQL paused for 40 s (SIGSTOP on the postmaster and every
# backend), longer than the 30 s failure grace, under two routed
# deployments with traffic. Nothing may be failed, replaced or
# deprovisioned; the routing table stays readable and full; completions
# keep succeeding; within one reconcile period of the resume everything is
# consistent.
. tests/faults/lib.sh
f_setup
f_start_observers 150
F_FAULT_START=$(f_now)
f_pg_pause
sleep 10
# While it is paused: the probes answer at once, /readyz says what is down,
# and a request that needs the database is a 503 with Retry-After within
# the database's deadlines (2 s statement, 1 s acquire), not a hang.
# The admin token (checked in memory, as a known key is): the routes
# reader's key has the routes scope only, and /v1/pools needs read.
key=$(cat "$NOVA_STATE_DIR/admin_token")
probe() { # probe NAME PATH: status, seconds, and the Retry-After header
	curl -s -o "$T_WORK/probe.body" -D "$T_WORK/probe.head" -m 10 -w '%{http_code} %{time_total}' \
		-H "Authorization: Bearer $key" "$NOVA_URL$1"
}
out=$(probe /healthz)
case "$out" in "200 "0.[0-4]*) t_pass "/healthz answers at once while the database is paused ($out)" ;;
	*) t_fail "/healthz answers at once while the database is paused" "$out" ;; esac
out=$(probe /readyz)
if [ "${out%% *}" = 200 ] && grep -q '"status":"degraded"' "$T_WORK/probe.body" &&
	grep -q '"database":{[^}]*"ok":false' "$T_WORK/probe.body"; then
	t_pass "/readyz says degraded, the database down ($out)"
else
	t_fail "/readyz says degraded, the database down" "$out $(cat "$T_WORK/probe.body")"
fi
for i in 1 2 3; do
	out=$(probe /v1/pools)
	secs=${out#* }
	if [ "${out%% *}" = 503 ] && grep -qi '^Retry-After: 1' "$T_WORK/probe.head" &&
		awk -v s="$secs" 'BEGIN { exit !(s < 3.5) }'; then
		t_pass "GET /v1/pools is 503 with Retry-After within the deadlines (try $i: $out)"
	else
		t_fail "GET /v1/pools is 503 with Retry-After within the deadlines (try $i)" \
			"$out $(cat "$T_WORK/probe.head" "$T_WORK/probe.body" | tr '\r\n' '  ')"
	fi
done
sleep 27
f_pg_resume
f_finish
exit 0
