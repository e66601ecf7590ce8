#!/bin/sh
# Engine trouble is reported at once (issue 20): with heartbeats 20 s apart,
# as novad tells a big fleet, an engine whose health probe fails leaves the
# routes within 2 s and is back as soon after it answers again; an engine
# killed with -9 leaves the routes within 2 s (its sidecar beats early
# instead of up to 22 s later), its exit is in the deployment's events as
# soon, and the restarted engine is routed again within a few seconds of
# its restart (1 s of backoff), not at the next regular beat. Real
# processes: novad, an lpu pool with mock agents (nova-sidecar running
# nova-mock-engine, which inherits the admin token through novad and its
# agent), the model "demo" on one replica.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=20000 NOVA_NODE_FAILED_AFTER_MS=600000
ADMIN=beat-early-admin-$$-token
export NOVA_MOCK_ADMIN_TOKEN=$ADMIN
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
# One regular interval (the agent learns its assignment from the answer to
# its second beat) and some.
if t_demo_on_racks c1r1 1 60 && t_wait_routed 30 demo 1; then t_pass "a replica runs on an agent and is routed"
else t_fail "replica routed" "$(t_sql "SELECT state || ': ' || state_reason FROM deployments") $(cat "$T_WORK/err")"; exit 0; fi

# The engine: the child of this novad's agent that serves the replica's port
# (engines of other tests' agents may run on this machine).
EP=$(t_sql "SELECT endpoint FROM replicas")
port=${EP##*:}
EPID=
for sc in $(pgrep -f "nova-sidecar --gateway $NOVA_URL "); do
	EPID=$EPID$(pgrep -P "$sc" -f -- "nova-mock-engine --port $port( |\$)")
done
case "$EPID" in ''|*[!0-9]*) t_fail "the engine" "no single engine on port $port: '$EPID'"; exit 0 ;; esac

routed() {
	"$C" -o json routes --model demo >"$T_WORK/out" 2>"$T_WORK/err" &&
		[ "$(grep -c '"url"' "$T_WORK/out")" -eq "$1" ]
}
# Past the bound on early beats, which the beat that reported it ready took.
sleep 1.2
routed 1 || { t_fail "still routed" "$(cat "$T_WORK/out" "$T_WORK/err")"; exit 0; }

health() {
	curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN" \
		-d "{\"healthy\":$1}" "$EP/admin/health"
}
code=$(health false)
start=$(date +%s%N)
i=0; until routed 0 || [ $i -gt 200 ]; do i=$((i + 1)); sleep 0.05; done
took=$((($(date +%s%N) - start) / 1000000))
if [ "$code" = 200 ] && routed 0 && [ $took -lt 2000 ]; then
	t_pass "an engine whose health probe fails left the routes in $took ms"
else
	t_fail "unhealthy left the routes within 2 s" "admin $code, $took ms: $(head -c 400 "$T_WORK/out")"
fi
code=$(health true)
start=$(date +%s%N)
i=0; until routed 1 || [ $i -gt 200 ]; do i=$((i + 1)); sleep 0.05; done
took=$((($(date +%s%N) - start) / 1000000))
if [ "$code" = 200 ] && routed 1 && [ $took -lt 2500 ]; then
	t_pass "healthy again, it is routed again in $took ms"
else
	t_fail "healthy routed again within 2.5 s" "admin $code, $took ms: $(head -c 400 "$T_WORK/out")"
fi
sleep 1.2

kill -9 "$EPID"
start=$(date +%s%N)
i=0; until routed 0 || [ $i -gt 200 ]; do i=$((i + 1)); sleep 0.05; done
took=$((($(date +%s%N) - start) / 1000000))
if routed 0 && [ $took -lt 2000 ]; then
	t_pass "the killed engine's replica left the routes in $took ms (interval 20 s)"
else
	t_fail "left the routes within 2 s" "$took ms: $(head -c 400 "$T_WORK/out")"
fi
"$C" events --deployment demo >"$T_WORK/events" 2>&1
took=$((($(date +%s%N) - start) / 1000000))
grep -q 'replica 0 killed by signal SIGKILL' "$T_WORK/events" && [ $took -lt 3000 ] &&
	t_pass "the exit is in the deployment's events ($took ms after the kill)" ||
	t_fail "kill event" "$took ms: $(tail -5 "$T_WORK/events")"

# The engine restarts after 1 s and is reported as soon as it answers.
i=0; until routed 1 || [ $i -gt 200 ]; do i=$((i + 1)); sleep 0.05; done
took=$((($(date +%s%N) - start) / 1000000))
if routed 1 && [ $took -lt 5000 ]; then
	t_pass "the restarted engine is routed again $took ms after the kill"
else
	t_fail "routed again within 5 s" "$took ms: $(head -c 400 "$T_WORK/out")"
fi
exit 0
