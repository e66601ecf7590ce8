#!/bin/sh
# The rolling update's benchmark (issue 18), sourced by bench/run.sh:
# `BENCH_ONLY=rollout make bench`. Run directly, `sh bench/rollout.sh
# [BUILD]` is a shortcut for it on an already built tree (default
# build/bench).
#
# Real processes, as tests/router/test_rollout.sh, set up with
# bench/fleet.sh as the autoscaler's benchmarks are: a release novad on a
# fresh database of the run's cluster, an lpu pool over racks c1r1,c1r2 of
# etc/datacenter.yaml (three 8-chip nodes) with mock agents, a model of 1
# LPU per replica in two versions with the same engine.mock settings (a
# 1 s start standing for loading weights, BENCH_RO_STARTUP_MS; 50 ms to
# the first token, then 100 tokens/s; 8 sequences at a time), a deployment
# of BENCH_RO_REPLICAS (4) replicas of version 1 spread over the nodes,
# nova-router in front, and bench/loadgen behind it sending streamed chat
# completions of 8 tokens (about 130 ms each) paced at BENCH_RO_RATE (50/s,
# about a fifth of what 4 replicas take), over BENCH_RO_CONNECTIONS (32).
#
#   rollout   one loadgen for the whole run: BENCH_WARMUP (2 s) of warm-up,
#             BENCH_RO_BEFORE_SECONDS (15) before the update; then PATCH
#             {"model": "ro-demo:2", "rollout": {"max_surge": 1,
#             "max_unavailable": 0}} and GET /v1/deployments/ro every 100 ms
#             until its "rollout" says "complete" (BENCH_RO_TIMEOUT, 120 s,
#             at most); then BENCH_RO_AFTER_SECONDS (10) more, and the
#             loadgen is stopped (SIGTERM) 2 s after that, so a request of
#             the last window left unanswered has waited at least 2 s.
#             Requests are put in a phase by when they were due (loadgen
#             --times). Figures: failed requests during the update (an
#             error status, a stream not ending in [DONE], a broken
#             connection, or no answer by the end), target 0; the time from
#             the PATCH to the state complete, beside its floor (the engine
#             starts one after the other with a surge of 1, and the last old
#             replica's drain, which cannot end before one heartbeat
#             interval and a second: worker_config.drain_min_ms); the p99
#             (and p50) of the time to the end of the stream, counted from
#             when the request was due, during the update against the 15 s
#             before it (the ceiling column): target p99 during <= 2.0 x
#             before; the p99 after; the endpoints /v1/routes held for the
#             model (sampled every 100 ms), at least the count throughout
#             (max_unavailable 0).
#
# Heartbeats every BENCH_FD_INTERVAL_MS (500, as the deploy, failure and
# autoscale benchmarks): a new replica is learned at a heartbeat's answer
# and reported ready at the next, and a drain ends at a heartbeat, so the
# interval is part of the rollout's time.

if [ -z "${NOVA_BENCH_RUN:-}" ]; then
	cd "$(dirname "$0")/.." || exit 1
	exec env BENCH_ONLY="${BENCH_ONLY:-rollout}" BENCH_BUILD="${1:-build/bench}" sh bench/run.sh
fi

RO_REPLICAS=${BENCH_RO_REPLICAS:-4}
RO_RATE=${BENCH_RO_RATE:-50}
RO_CONNS=${BENCH_RO_CONNECTIONS:-32}
RO_BEFORE=${BENCH_RO_BEFORE_SECONDS:-15}
RO_AFTER=${BENCH_RO_AFTER_SECONDS:-10}
RO_STARTUP_MS=${BENCH_RO_STARTUP_MS:-1000}
RO_TIMEOUT=${BENCH_RO_TIMEOUT:-120}
# The target on the p99 during the update, as a multiple of the p99
# before it. Not a knob: a miss is reported as one, never loosened.
RO_P99_CEILING=2.0
RO_MOCK="startup_ms: $RO_STARTUP_MS, latency_ms: 50, tokens_per_second: 100, max_num_seqs: 8"
RO_LG_PID= RO_SAMPLER_PID=

ro_stop() {
	[ -d "$W" ] && : >"$W/ro-sampler.stop"
	for ro_p in $RO_LG_PID $RO_SAMPLER_PID; do kill -TERM "$ro_p" 2>/dev/null; done
	for ro_p in $RO_LG_PID $RO_SAMPLER_PID; do wait "$ro_p" 2>/dev/null; done
	RO_LG_PID= RO_SAMPLER_PID=
	fl_router_stop
}

# ro_state: the state of the deployment's rollout as GET /v1/deployments/ro
# has it ("rollout" is its last member, so its first "state" after it).
ro_state() {
	curl -s -K "$W/admin.curl" "$NOVA_URL/v1/deployments/ro" | awk '{
		i = index($0, "\"rollout\":"); if (i == 0) exit
		s = substr($0, i)
		if (match(s, /"state": *"[a-z_]*"/)) { s = substr(s, RSTART, RLENGTH); sub(/.*: *"/, "", s); sub(/"$/, "", s); print s }
	}'
}

# ro_sampler ROUTES REPLICAS: two loops in the background until
# $W/ro-sampler.stop exists, each sampling every 100 ms or so (the same
# before and during the update): "epoch endpoints-of-version-1
# endpoints-of-version-2" in /v1/routes to ROUTES (an endpoint's "version"
# is the first after its "url"; the route's own comes before them), and
# "epoch version:state..." of the deployment's replicas to REPLICAS (where
# the update's time goes).
ro_sampler() {
	rm -f "$W/ro-sampler.stop"
	(
		while [ ! -e "$W/ro-sampler.stop" ]; do
			printf '%s %s\n' "$(fl_now)" "$(curl -s -K "$W/admin.curl" "$NOVA_URL/v1/routes?model=ro-demo" |
				awk -F '"url"' '{ for (i = 2; i <= NF; i++) if (match($i, /"version": *"[^"]*"/)) {
						v = substr($i, RSTART, RLENGTH); sub(/.*: *"/, "", v); sub(/"$/, "", v); n[v]++ } }
					END { printf "%d %d", n["1"], n["2"] }')"
			sleep 0.1
		done
	) >"$1" &
	RO_SAMPLER_PID=$!
	(
		while [ ! -e "$W/ro-sampler.stop" ]; do
			printf '%s %s\n' "$(fl_now)" "$(fl_sql "SELECT string_agg(m.version || ':' || r.state, ' '
				ORDER BY m.version, r.ordinal) FROM replicas r JOIN models m ON m.id = r.model_id
				JOIN deployments d ON d.id = r.deployment_id WHERE d.name = 'ro'")"
			sleep 0.1
		done
	) >"$2" &
	RO_SAMPLER_PID="$RO_SAMPLER_PID $!"
}

# ro_phase FROM TO: the requests due in [FROM, TO) of the run, as loadgen
# wrote them (START TTFB_MS TOTAL_MS STATUS WHAT).
ro_phase() { awk -v a="$1" -v b="$2" '$1 >= a && $1 < b' "$OUT/ro-load-times.txt"; }
# ro_latency: "count p50 p99 max" of the answered requests' times to the
# end of the stream (on stdin, as ro_phase gives them).
ro_latency() { awk '$5 == "ok" { print $3 }' | stats; }
ro_failed() { awk '$5 != "ok" { n++ } END { print n + 0 }'; }
# ro_failures: what failed, counted ("2 x status 502, 1 x body"), on stdin.
ro_failures() {
	awk '$5 != "ok" { k = $5 ($5 == "status" ? " " $4 : ""); if (!(k in n)) o[++m] = k; n[k]++ }
		END { for (i = 1; i <= m; i++) printf "%s%d x %s", (i > 1 ? ", " : ""), n[o[i]], o[i] }'
}

ro_setup() {
	export NOVA_HEARTBEAT_INTERVAL_MS=$FD_INTERVAL_MS
	nova_bench_start bench_rollout || return 1
	"$C" pool create ro --provider lpu --config \
		"{\"topology\":\"$top/etc/datacenter.yaml\",\"allocation\":\"c1r1,c1r2\",\"mock_agents\":true}" \
		>/dev/null 2>>"$OUT/ro-setup.err" || return 1
	fl_router_start ro || return 1
	fl_model ro-demo 1 1 "$RO_MOCK" 2>>"$OUT/ro-setup.err" || return 1
	fl_model ro-demo 2 1 "$RO_MOCK" 2>>"$OUT/ro-setup.err" || return 1
	fl_api POST /v1/deployments \
		"{\"name\":\"ro\",\"model\":\"ro-demo:1\",\"pool\":\"ro\",\"replicas\":$RO_REPLICAS,\"placement\":\"spread\"}" \
		>"$OUT/ro-deploy.json"
	case $(cat "$W/fl.code") in 2*) ;; *) return 1 ;; esac
	fl_wait 60 fl_has_routes ro-demo "$RO_REPLICAS" || return 1
	fl_chat ro-demo 8
	# The router has the table once a request is answered.
	fl_wait 10 ro_answered
}
ro_answered() {
	[ "$(curl -s -K "$W/fl-app.curl" -o /dev/null -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "@$W/chat-ro-demo.json" \
		"http://127.0.0.1:$FL_RPORT/v1/chat/completions")" = 200 ]
}

ro_bench() {
	echo "bench: rollout ($RO_REPLICAS replicas 1 -> 2, max surge 1, max unavailable 0, under" \
		"$RO_RATE req/s through the router: $RO_BEFORE s before, the update, $RO_AFTER s after)"
	ro_sampler "$OUT/ro-routes.txt" "$OUT/ro-replicas.txt"
	tl=$(fl_now)
	fl_lg_bg ro-load "$RO_RATE" "$RO_CONNS" $((WARM + RO_BEFORE + RO_TIMEOUT + RO_AFTER + 10)) ro-demo
	RO_LG_PID=$FL_LG_PID
	sleep $((WARM + RO_BEFORE))
	tp=$(fl_now)
	fl_api PATCH /v1/deployments/ro '{"model":"ro-demo:2","rollout":{"max_surge":1,"max_unavailable":0}}' \
		>"$OUT/ro-patch.json"
	code=$(cat "$W/fl.code")
	tc= state= why=
	if [ "$code" = 200 ]; then
		deadline=$(($(date +%s) + RO_TIMEOUT))
		while [ "$(date +%s)" -lt $deadline ]; do
			state=$(ro_state)
			case $state in complete | rolled_back) break ;; esac
			sleep 0.1
		done
		case $state in
		complete) tc=$(fl_now) ;;
		rolled_back) why="rolled back: $(fl_sql "SELECT reason FROM rollouts ORDER BY id DESC LIMIT 1")" ;;
		*) why="not complete after $RO_TIMEOUT s: $(fl_sql "SELECT state || ', ' || waiting_for
			FROM rollouts ORDER BY id DESC LIMIT 1")" ;;
		esac
	else
		why="PATCH answered $code: see $OUT/ro-patch.json"
	fi
	# Whatever happened, the after window runs from here.
	te=${tc:-$(fl_now)}
	sleep $((RO_AFTER + 2))
	kill -TERM "$RO_LG_PID" 2>/dev/null
	wait "$RO_LG_PID"
	RO_LG_PID=
	: >"$W/ro-sampler.stop"
	for ro_p in $RO_SAMPLER_PID; do wait "$ro_p"; done
	RO_SAMPLER_PID=
	curl -s -K "$W/admin.curl" "$NOVA_URL/v1/deployments/ro" >"$OUT/ro-deployment.json"
	# Where the time went: the rollout's events, and each change of the
	# replicas' states, in ms after the PATCH.
	fl_sql "SELECT round(((extract(epoch FROM e.at) - $tp) * 1000)::numeric) || ' ' || e.kind || ' ' ||
		e.to_state || ' ' || coalesce(e.reason, '') FROM deployment_events e
		JOIN deployments d ON d.id = e.deployment_id WHERE d.name = 'ro' AND e.at >= to_timestamp($tp)
		ORDER BY e.id" >"$OUT/ro-events.txt"
	awk -v t="$tp" '$1 >= t { s = $0; sub(/^[^ ]* /, "", s)
		if (s != prev) { printf "%.0f %s\n", ($1 - t) * 1000, s; prev = s } }' \
		"$OUT/ro-replicas.txt" >"$OUT/ro-replica-steps.txt"
	fl_sql "SELECT state || ' ' || round((extract(epoch FROM coalesce(finished_at, now()) - started_at) * 1000)::numeric)
		|| ' ms (novad) ' || waiting_for FROM rollouts ORDER BY id DESC LIMIT 1" >"$OUT/ro-rollout.txt"

	tb=$(awk -v t="$tl" -v w="$WARM" 'BEGIN { printf "%.6f", t + w }')
	ta=$(awk -v t="$te" -v a="$RO_AFTER" 'BEGIN { printf "%.6f", t + a }')
	ro_phase "$tb" "$tp" >"$OUT/ro-before-times.txt"
	ro_phase "$tp" "$te" >"$OUT/ro-during-times.txt"
	ro_phase "$te" "$ta" >"$OUT/ro-after-times.txt"
	set -- $(ro_latency <"$OUT/ro-before-times.txt"); b_p50=${2:-} b_p99=${3:-}
	set -- $(ro_latency <"$OUT/ro-during-times.txt"); d_p50=${2:-} d_p99=${3:-}
	set -- $(ro_latency <"$OUT/ro-after-times.txt"); a_p99=${3:-}
	d_n=$(wc -l <"$OUT/ro-during-times.txt")
	d_f=$(ro_failed <"$OUT/ro-during-times.txt")
	o_n=$(cat "$OUT/ro-before-times.txt" "$OUT/ro-after-times.txt" | wc -l)
	o_f=$(cat "$OUT/ro-before-times.txt" "$OUT/ro-after-times.txt" | ro_failed)
	# The endpoints routed from the PATCH to the end of the update.
	set -- $(awk -v a="$tp" -v b="$te" '$1 >= a && $1 < b { n = $2 + $3
		if (min == "" || n < min) min = n; if (n > max) max = n }
		END { print min, max + 0 }' "$OUT/ro-routes.txt")
	r_min=${1:-} r_max=${2:-}

	res=$(verdict [ "$d_f" = 0 ])
	[ "$d_f" = 0 ] || res="$res: $(ro_failures <"$OUT/ro-during-times.txt")"
	[ "$d_n" -gt 0 ] || res="miss (no request was due)"
	# Requests of an update that did not complete: the figure is for the
	# part that ran only.
	[ -n "$tc" ] || res="incomplete, $res"
	took=$(fl_ms "$tp" "$tc")
	# The floor: with a surge of 1 the new replicas start one after the
	# other, and the last old one drains at least an interval and a second.
	floor=$((RO_REPLICAS * RO_STARTUP_MS + FD_INTERVAL_MS + 1000))
	row rollout "failed requests during the rolling update" "$d_f" "" "" "" "0" \
		"$res ($d_f of $d_n)${why:+: $why}"
	row rollout "PATCH -> complete ($RO_REPLICAS replicas, 1 -> 2)" "$took" "ms" "$floor" "$(ratio "$took" "$floor")" \
		"" "${why:+miss: $why}"
	r99=$(ratio "$d_p99" "$b_p99")
	res=miss; [ -n "$r99" ] && ge "$RO_P99_CEILING" "$r99" && res=pass
	row rollout "p99 during the update (ceiling: $RO_BEFORE s before)" "$d_p99" "ms" "$b_p99" "$r99" \
		"<= $RO_P99_CEILING x before" "$res"
	row rollout "p50 during the update (ceiling: before)" "$d_p50" "ms" "$b_p50" "$(ratio "$d_p50" "$b_p50")" "" ""
	row rollout "p99 in the $RO_AFTER s after (ceiling: before)" "$a_p99" "ms" "$b_p99" "$(ratio "$a_p99" "$b_p99")" "" ""
	row rollout "requests due during the update ($RO_RATE/s)" "$d_n" "" "" "" "" ""
	res=$(verdict [ "$o_f" = 0 ])
	[ "$o_f" = 0 ] || res="$res: $(cat "$OUT/ro-before-times.txt" "$OUT/ro-after-times.txt" | ro_failures)"
	row rollout "failed requests before and after ($o_n due)" "$o_f" "" "" "" "0" "$res"
	row rollout "endpoints routed during the update, min" "$r_min" "" "" "" ">= $RO_REPLICAS" \
		"$(verdict [ "${r_min:-0}" -ge "$RO_REPLICAS" ])"
	row rollout "endpoints routed during the update, max" "$r_max" "" "" "" "<= $((RO_REPLICAS + 1))" \
		"$(verdict [ "${r_max:-99}" -le $((RO_REPLICAS + 1)) ])"
}

bench_rollout() {
	if ! ro_setup; then
		broken=1; row rollout "set-up (novad, lpu pool, router, $RO_REPLICAS replicas)" "" "" "" "" "" \
			"broken: see $OUT/ro-setup.err"
	else
		ro_bench
		fl_undeploy ro
		"$C" pool delete ro --force >/dev/null 2>&1
	fi
	ro_stop
	lpu_agents_stop
	nova_bench_stop
	unset NOVA_HEARTBEAT_INTERVAL_MS
}
