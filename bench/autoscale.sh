#!/bin/sh
# The autoscaler's benchmarks (issue 17), sourced by bench/run.sh:
# `BENCH_ONLY=autoscale make bench` runs them all, `BENCH_ONLY=autoscale-zero
# make bench` one. Run directly, `sh bench/autoscale.sh [BUILD]` is a
# shortcut for the former on an already built tree (default build/bench).
#
# Real processes, as tests/router/test_autoscale.sh, set up with the
# helpers of bench/fleet.sh (shared with bench/rollout.sh): a release
# novad on a fresh database of the run's cluster, an lpu pool of ten
# 8-chip nodes (five racks, topology_inline) with mock agents
# (nova-sidecar running nova-mock-engine per node), models of 8
# accelerators (one replica a node) whose engine has the capacity model of
# issue 17 (engine.mock: a 2 s startup standing for loading weights, 4
# sequences at a time with a queue behind them, 100 ms to the first token,
# then 20 tokens/s), nova-router in front and bench/loadgen behind it
# sending streamed chat completions of 16 tokens (about 0.85 s each: one
# replica serves about 4.7 a second).
#
#   autoscale-step   paced load through the router, 1x (BENCH_AS_RATE, 2/s)
#                    for BENCH_AS_BEFORE_SECONDS (10), then 10x for
#                    BENCH_AS_STEP_SECONDS (60): the 1x stream goes on and a
#                    second loadgen adds the other 9x (its start is the
#                    step). Twice, each on a deployment of its own:
#                      Nova: autoscale {min 1, max BENCH_AS_MAX_REPLICAS (8),
#                      target_queue_depth 2}, the default 300 s window;
#                      the baseline: a deployment without autoscale, scaled
#                      by an external controller (as_baseline below) with
#                      the peers' default policy (SkyServe, dstack): every
#                      20 s, desired = ceil(requests/s over the last 60 s /
#                      BENCH_AS_BASELINE_RPS per replica), PATCH {"replicas"}.
#                    Figures, Nova's with the baseline's beside it (the
#                    ceiling column) and their ratio: the time from the step
#                    to the new replicas routable (the count of the first
#                    scale-up after the step in /v1/routes, sampled every
#                    100 ms), target the engine's start + < 2 s; SLO
#                    violations, the share of the 10x phase's requests whose
#                    time to the first token is over 2 x the unloaded TTFT
#                    (the 1x phase's median in Nova's run; BENCH_AS_SLO_MS
#                    sets it), target < 5%; failed requests, target 0; scale
#                    oscillations (direction changes of the count, from the
#                    deployment's 'scaled' events; the baseline's from its
#                    own decisions); TTFT p99 and replica-seconds routed over
#                    the 10x phase (what the capacity cost).
#   autoscale-zero   a deployment {min 0, max 1, idle_s 2, window 2 s} left to
#                    go to zero BENCH_AS_WAKES (5) times; each time one
#                    streamed request through the router: from its start to
#                    its first token (median, max), target the engine's
#                    start + 2 s, 0 failed; the floor beside it (ceiling
#                    column) is the engine's start plus the warm TTFT.
#   (autoscale-standby: see bench_autoscale at the end.)
#
# Heartbeats every BENCH_AS_INTERVAL_MS (500, as the deploy and failure
# benchmarks): a new replica is learned by its sidecar at a heartbeat's
# answer and reported ready at the next, so the interval is part of every
# figure here; with novad's default (2 s) expect up to 3 s more.

if [ -z "${NOVA_BENCH_RUN:-}" ]; then
	cd "$(dirname "$0")/.." || exit 1
	exec env BENCH_ONLY="${BENCH_ONLY:-autoscale}" BENCH_BUILD="${1:-build/bench}" sh bench/run.sh
fi

AS_RATE=${BENCH_AS_RATE:-2}
AS_FACTOR=${BENCH_AS_FACTOR:-10}
AS_BEFORE=${BENCH_AS_BEFORE_SECONDS:-10}
AS_STEP_S=${BENCH_AS_STEP_SECONDS:-60}
AS_MAX=${BENCH_AS_MAX_REPLICAS:-8}
AS_STARTUP_MS=${BENCH_AS_STARTUP_MS:-2000}
AS_TARGET_QUEUE=${BENCH_AS_TARGET_QUEUE:-2}
AS_BASE_RPS=${BENCH_AS_BASELINE_RPS:-3}
AS_BASE_WINDOW=${BENCH_AS_BASELINE_WINDOW:-60}
AS_BASE_TICK=${BENCH_AS_BASELINE_TICK:-20}
AS_WAKES=${BENCH_AS_WAKES:-5}
AS_INTERVAL_MS=${BENCH_AS_INTERVAL_MS:-500}
AS_SLO_MS=${BENCH_AS_SLO_MS:-}
# Connections of each loadgen: paced with one request in flight each, a
# connection still waiting for an answer when its next request is due
# sends that one late (and charges it the wait, as it must), so a request
# stuck in the first replica's queue would make the next one of its
# connection late even where a new replica would answer it at once. By
# default each stream has a connection per request it sends (the 9x one
# 1,080): every request goes out when due, an open loop.
AS_CONNS=${BENCH_AS_CONNECTIONS:-}
AS_SAMPLER_PID= AS_CTL_PID= AS_LG_PIDS=

as_stop() {
	for as_p in $AS_LG_PIDS $AS_SAMPLER_PID $AS_CTL_PID; do kill -TERM "$as_p" 2>/dev/null; done
	for as_p in $AS_LG_PIDS $AS_SAMPLER_PID $AS_CTL_PID; do wait "$as_p" 2>/dev/null; done
	AS_LG_PIDS= AS_SAMPLER_PID= AS_CTL_PID=
	fl_router_stop
}

as_ready() { [ "$(fl_sql "SELECT count(*) FROM replicas r JOIN deployments d ON d.id = r.deployment_id
	WHERE d.name = '$1' AND r.state = 'ready'")" = "$2" ]; }
as_dep_at() { [ "$(fl_sql "SELECT replicas FROM deployments WHERE name = '$1'")" = "$2" ] &&
	[ "$(fl_sql "SELECT count(*) FROM replicas r JOIN deployments d ON d.id = r.deployment_id
		WHERE d.name = '$1' AND r.state <> 'stopped'")" = "$2" ]; }

# as_model NAME: a model with the capacity model above.
as_model() {
	fl_model "$1" "" 8 "startup_ms: $AS_STARTUP_MS, max_num_seqs: 4, latency_ms: 100, tokens_per_second: 20"
}

# as_deploy NAME MODEL REPLICAS [MEMBERS [ROUTED]]: POST /v1/deployments
# with any further members (',"autoscale":{...}'), then until ROUTED
# (default REPLICAS) endpoints are routed.
as_deploy() {
	fl_api POST /v1/deployments "{\"name\":\"$1\",\"model\":\"$2\",\"pool\":\"as\",\"replicas\":$3${4:-}}" \
		>"$OUT/as-deploy-$1.json"
	case $(cat "$W/fl.code") in 2*) ;; *) return 1 ;; esac
	fl_wait 60 fl_has_routes "$2" "${5:-$3}"
}

# as_sampler MODEL FILE: "epoch endpoints" every 100 ms, in the background.
as_sampler() {
	(
		while :; do
			printf '%s %s\n' "$(fl_now)" "$(fl_routed "$1")"
			sleep 0.1
		done
	) >"$2" &
	AS_SAMPLER_PID=$!
}

# as_events DEPLOYMENT: its 'scaled' events as "epoch from to" lines.
as_events() {
	fl_sql "SELECT extract(epoch FROM e.at) || ' ' || e.reason FROM deployment_events e
		JOIN deployments d ON d.id = e.deployment_id
		WHERE d.name = '$1' AND e.kind = 'scaled' ORDER BY e.id" |
		sed -n 's/^\([0-9.]*\) scaled \([0-9]*\) -> \([0-9]*\):.*/\1 \2 \3/p'
}

# --- the baseline controller ------------------------------------------------------
# as_baseline DEPLOYMENT MODEL T0 LOG: the peers' default policy as an
# external controller, in the background. Every 250 ms it reads the
# router's count of the model's requests (nova_router_model_requests_total,
# counted when a request ends, plus nova_router_model_in_flight: requests
# that arrived, as SkyServe's load balancer counts them at arrival; the
# completed count alone would read a backlog as a lull); every TICK s from
# T0 the rate over the last WINDOW s sets desired = ceil(rate / target per
# replica) within 1 and the maximum, PATCHed as {"replicas": N}. Before the
# run there was no history: the part of the window before T0 counts at the
# 1x rate (the steady state the step interrupts), so the baseline is not
# slowed by the benchmark's short warm-up. The ticks fall at T0 + k TICK, so
# the step (BEFORE s after T0) waits TICK - BEFORE s for the first (the
# mean wait, with the defaults). Down only after desired stayed lower for
# 300 s (SkyServe's default delay is 1200 s): never within a run. Its
# decisions go to LOG as "epoch from to rate".
as_baseline() {
	(
		dep=$1 model=$2 t0=$3 log=$4 cur=1 k=1 lower_since=
		: >"$W/as-base-samples.txt"
		while :; do
			c=$(curl -s "http://127.0.0.1:$FL_RPORT/metrics" | awk -v m="$model" '
				index($1, "nova_router_model_requests_total{model=\"" m "\"") == 1 ||
				index($1, "nova_router_model_in_flight{model=\"" m "\"") == 1 { s += $2 }
				END { print s + 0 }')
			now=$(fl_now)
			echo "$now $c" >>"$W/as-base-samples.txt"
			if awk -v n="$now" -v t="$t0" -v k="$k" -v p="$AS_BASE_TICK" 'BEGIN { exit !(n >= t + k * p) }'; then
				k=$((k + 1))
				set -- $(awk -v n="$now" -v w="$AS_BASE_WINDOW" -v r1="$AS_RATE" \
					-v per="$AS_BASE_RPS" -v max="$AS_MAX" '
					{ t[NR] = $1; c[NR] = $2 }
					END {
						from = 1
						for (i = 1; i <= NR; i++) if (t[i] <= n - w) from = i
						span = n - t[from]; missing = w - span; if (missing < 0) missing = 0
						rate = (c[NR] - c[from] + missing * r1) / w
						d = int(rate / per); if (d * per < rate) d++
						if (d < 1) d = 1; if (d > max) d = max
						printf "%d %.2f\n", d, rate
					}' "$W/as-base-samples.txt")
				desired=$1 rate=$2
				if [ "$desired" -gt "$cur" ]; then
					lower_since=
				elif [ "$desired" -lt "$cur" ]; then
					[ -n "$lower_since" ] || lower_since=$now
					awk -v n="$now" -v s="$lower_since" 'BEGIN { exit !(n - s >= 300) }' || desired=$cur
				else
					lower_since=
				fi
				if [ "$desired" != "$cur" ]; then
					curl -s -K "$W/admin.curl" -X PATCH -H 'Content-Type: application/json' \
						-d "{\"replicas\":$desired}" -o /dev/null "$NOVA_URL/v1/deployments/$dep"
					echo "$now $cur $desired $rate" >>"$log"
					cur=$desired
				fi
			fi
			sleep 0.25
		done
	) &
	AS_CTL_PID=$!
}

# --- autoscale-step ------------------------------------------------------------------
# as_step_run LABEL DEPLOYMENT MODEL POLICY [STANDBY]: the step on a new
# deployment (POLICY: its autoscale member, or "baseline"; STANDBY: its
# standby_replicas, all of them ready before the load starts); leaves the
# raw files as $OUT/as-LABEL-*, the step's time in AS_TS. 1 when it could
# not run.
as_step_run() {
	as_model "$3" || return 1
	fl_chat "$3" 16
	if [ "$4" = baseline ]; then
		as_deploy "$2" "$3" 1 || return 1
	else
		as_deploy "$2" "$3" 1 ",\"autoscale\":$4,\"standby_replicas\":${5:-0}" || return 1
	fi
	if [ "${5:-0}" -gt 0 ]; then
		fl_wait 60 as_ready "$2" $((1 + $5)) || return 1
	fi
	: >"$OUT/as-$1-events.txt"
	as_sampler "$3" "$OUT/as-$1-routes.txt"
	t0=$(fl_now)
	[ "$4" = baseline ] && as_baseline "$2" "$3" "$t0" "$OUT/as-$1-events.txt"
	fl_lg_bg "as-$1-1x" "$AS_RATE" "${AS_CONNS:-$((AS_RATE * (AS_BEFORE + AS_STEP_S) + 1))}" \
		$((AS_BEFORE + AS_STEP_S)) "$3"
	AS_LG_PIDS=$FL_LG_PID
	sleep "$AS_BEFORE"
	fl_lg_bg "as-$1-step" $((AS_RATE * (AS_FACTOR - 1))) \
		"${AS_CONNS:-$((AS_RATE * (AS_FACTOR - 1) * AS_STEP_S + 1))}" "$AS_STEP_S" "$3"
	AS_LG_PIDS="$AS_LG_PIDS $FL_LG_PID"
	for as_p in $AS_LG_PIDS; do wait "$as_p"; done
	AS_LG_PIDS=
	kill -TERM $AS_SAMPLER_PID $AS_CTL_PID 2>/dev/null
	wait $AS_SAMPLER_PID $AS_CTL_PID 2>/dev/null
	AS_SAMPLER_PID= AS_CTL_PID=
	[ "$4" = baseline ] || as_events "$2" >"$OUT/as-$1-events.txt"
	fl_sql "SELECT extract(epoch FROM e.at) || ' ' || e.kind || ' ' || e.to_state || ' ' || coalesce(e.reason, '')
		FROM deployment_events e JOIN deployments d ON d.id = e.deployment_id
		WHERE d.name = '$2' ORDER BY e.id" >"$OUT/as-$1-all-events.txt"
	AS_TS=$(jnum "$OUT/as-$1-step.json" started_at)
	AS_T0=$t0
	fl_undeploy "$2"
	[ -n "$AS_TS" ]
}

# as_step_figures LABEL TS SLO_MS: the run's figures as shell assignments
# (as_decide, as_first, as_routable, as_n1, as_nmax, as_all, as_repsec,
# as_total, as_viol, as_share, as_failed, as_p99, as_osc), times in ms
# after the step. The routable figure is the first sample at or after the
# first scale-up decision after the step holding that decision's count.
as_step_figures() {
	te=$(awk -v t="$2" -v s="$AS_STEP_S" 'BEGIN { printf "%.6f", t + s }')
	set -- "$1" "$2" "$3" "$te" $(awk -v ts="$2" '$1 >= ts && $3 > $2 { print $1, $3; exit }' \
		"$OUT/as-$1-events.txt")
	td=${5:-} n1=${6:-}
	echo "as_decide=$(fl_ms "$2" "$td") as_n1=$n1"
	awk -v ts="$2" -v te="$4" -v td="$td" -v n1="$n1" '
		$1 >= ts && $1 <= te && $2 > max { max = $2 }
		{ t[NR] = $1; c[NR] = $2 }
		END {
			for (i = 1; i <= NR; i++) {
				if (t[i] >= ts && first == "" && c[i] >= 2) first = (t[i] - ts) * 1000
				if (td != "" && t[i] >= td && rt == "" && c[i] >= n1) rt = (t[i] - ts) * 1000
				if (t[i] >= ts && t[i] <= te && all == "" && c[i] >= max) all = (t[i] - ts) * 1000
				if (i > 1 && t[i] > ts && t[i - 1] < te) {
					a = t[i - 1] < ts ? ts : t[i - 1]; b = t[i] > te ? te : t[i]
					rs += c[i - 1] * (b - a)
				}
			}
			printf "as_first=%s as_routable=%s as_nmax=%d as_all=%s as_repsec=%.0f\n",
				first == "" ? "" : sprintf("%.0f", first), rt == "" ? "" : sprintf("%.0f", rt),
				max, all == "" ? "" : sprintf("%.0f", all), rs
		}' "$OUT/as-$1-routes.txt"
	# The requests due in the phase; one unanswered at its end that had
	# waited less than the SLO is not known either way, and left out.
	cat "$OUT/as-$1-1x-times.txt" "$OUT/as-$1-step-times.txt" |
		awk -v ts="$2" -v te="$4" -v slo="$3" '$1 >= ts && $1 < te && !($5 == "unfinished" && $2 <= slo)' \
		>"$OUT/as-$1-phase-times.txt"
	awk -v slo="$3" '{ n++ } $5 != "ok" && $5 != "unfinished" { f++ } $5 != "ok" || $2 > slo { v++ }
		END { printf "as_total=%d as_viol=%d as_share=%s as_failed=%d\n", n, v,
			n ? sprintf("%.2f", 100 * v / n) : "", f }' "$OUT/as-$1-phase-times.txt"
	# p99 over the answered and the unfinished (their wait, a lower bound).
	echo "as_p99=$(awk '$5 == "ok" || $5 == "unfinished" { print $2 }' "$OUT/as-$1-phase-times.txt" |
		stats | awk '{ if ($3 != "") printf "%.0f", $3 }')"
	awk '{ d = $3 > $2 ? 1 : ($3 < $2 ? -1 : 0) } d != 0 && prev != 0 && d != prev { o++ }
		d != 0 { prev = d } END { printf "as_osc=%d\n", o }' "$OUT/as-$1-events.txt"
}

as_bench_step() {
	echo "bench: autoscale-step (1x = $AS_RATE/s for $AS_BEFORE s, then ${AS_FACTOR}x for $AS_STEP_S s;" \
		"Nova's autoscaler, then the baseline)"
	nova_pol="{\"min_replicas\":1,\"max_replicas\":$AS_MAX,\"target_queue_depth\":$AS_TARGET_QUEUE}"
	if ! as_step_run nova as-step-nova as-step "$nova_pol"; then
		broken=1; row autoscale-step "step under Nova's autoscaler" "" "" "" "" "" "broken: see $OUT/as-*"
		return
	fi
	nts=$AS_TS
	# The unloaded TTFT: the 1x phase's median, from its second second on.
	unl=$(awk -v t0="$AS_T0" -v ts="$nts" '$5 == "ok" && $1 >= t0 + 1 && $1 < ts { print $2 }' \
		"$OUT/as-nova-1x-times.txt" | stats)
	unl=$(echo "$unl" | awk '{ if ($2 != "") printf "%.0f", $2 }')
	slo=${AS_SLO_MS:-$(awk -v u="$unl" 'BEGIN { if (u != "") printf "%.0f", 2 * u }')}
	[ -n "$slo" ] || slo=1000
	eval "$(as_step_figures nova "$nts" "$slo")"
	n_decide=$as_decide n_first=$as_first n_rt=$as_routable n_n1=$as_n1 n_nmax=$as_nmax n_all=$as_all
	n_repsec=$as_repsec n_total=$as_total n_viol=$as_viol n_share=$as_share n_failed=$as_failed
	n_p99=$as_p99 n_osc=$as_osc
	AS_NOVA_FIRST=$n_first
	b_ok=1
	as_step_run base as-step-base as-base baseline || b_ok=0
	as_decide= as_first= as_routable= as_n1= as_nmax= as_all= as_repsec= as_total= as_viol= as_share=
	as_failed= as_p99= as_osc=
	[ $b_ok = 1 ] && eval "$(as_step_figures base "$AS_TS" "$slo")"
	bwhy=; [ $b_ok = 1 ] || bwhy="; the baseline did not run"
	target=$((AS_STARTUP_MS + 2000))
	res=$(verdict lt "$n_rt" "$target")
	[ -n "$n_rt" ] || res="miss (no scale-up routable)"
	row autoscale-step "step -> routable, 1st scale-up (1->$n_n1 / 1->$as_n1)" "$n_rt" "ms" "$as_routable" \
		"$(ratio "$as_routable" "$n_rt")" "< $target ms" "$res$bwhy"
	row autoscale-step "step -> scale-up decision" "$n_decide" "ms" "$as_decide" "$(ratio "$as_decide" "$n_decide")" "" ""
	row autoscale-step "step -> first new replica routable" "$n_first" "ms" "$as_first" \
		"$(ratio "$as_first" "$n_first")" "" ""
	row autoscale-step "step -> most replicas routable ($n_nmax / base $as_nmax)" "$n_all" "ms" "$as_all" \
		"$(ratio "$as_all" "$n_all")" "" ""
	row autoscale-step "SLO violations, TTFT > $slo ms" "$n_share" "%" "$as_share" \
		"$(ratio "$as_share" "$n_share")" "< 5%" \
		"$(verdict lt "$n_share" 5) ($n_viol of $n_total; base $as_viol of $as_total)"
	row autoscale-step "unloaded TTFT (1x phase, median; SLO = 2 x)" "$unl" "ms" "" "" "" ""
	row autoscale-step "failed requests in the ${AS_FACTOR}x phase" "$n_failed" "" "$as_failed" "" "0" \
		"$(verdict [ "${n_failed:-x}" = 0 ])"
	row autoscale-step "scale oscillations (direction changes)" "$n_osc" "" "$as_osc" "" "" ""
	row autoscale-step "TTFT p99 in the ${AS_FACTOR}x phase" "$n_p99" "ms" "$as_p99" "$(ratio "$as_p99" "$n_p99")" "" ""
	row autoscale-step "replica-seconds routed in the ${AS_FACTOR}x phase" "$n_repsec" "" "$as_repsec" \
		"$(ratio "$as_repsec" "$n_repsec")" "" ""
}

# --- autoscale-standby -------------------------------------------------------------------
# The same step on a deployment with one standby replica: the first
# scale-up promotes it (the count's change alone, no engine start), so the
# first new replica is routable within a heartbeat and a tick of the step;
# compared with the first new replica of the step without standby (above,
# when it ran in this run: an engine start later).
as_bench_standby() {
	echo "bench: autoscale-standby (the step above, one standby replica ready before it)"
	nova_pol="{\"min_replicas\":1,\"max_replicas\":$AS_MAX,\"target_queue_depth\":$AS_TARGET_QUEUE}"
	if ! as_step_run sb as-step-sb as-sb "$nova_pol" 1; then
		broken=1; row autoscale-standby "step with a standby" "" "" "" "" "" "broken: see $OUT/as-*"
		return
	fi
	unl=${unl:-}
	slo=${slo:-${AS_SLO_MS:-1000}}
	eval "$(as_step_figures sb "$AS_TS" "$slo")"
	row autoscale-standby "step -> standby routable (first new replica)" "$as_first" "ms" \
		"${AS_NOVA_FIRST:-}" "$(ratio "${AS_NOVA_FIRST:-}" "$as_first")" "< 500 ms" \
		"$(verdict lt "$as_first" 500)"
	row autoscale-standby "step -> scale-up decision" "$as_decide" "ms" "" "" "" ""
	row autoscale-standby "SLO violations, TTFT > $slo ms" "$as_share" "%" "${n_share:-}" \
		"$(ratio "${n_share:-}" "$as_share")" "< 5%" "$(verdict lt "$as_share" 5) ($as_viol of $as_total)"
	row autoscale-standby "failed requests" "$as_failed" "" "" "" "0" "$(verdict [ "${as_failed:-x}" = 0 ])"
}

# --- autoscale-zero ----------------------------------------------------------------------
as_bench_zero() {
	echo "bench: autoscale-zero ($AS_WAKES wakes from zero through the router)"
	pol='{"min_replicas":0,"max_replicas":1,"target_queue_depth":1,"idle_s":2,"scale_down_window_s":2}'
	# Not waited for: idle from its creation, it may go to zero before
	# its first replica is routed. The loop waits for zero.
	if ! as_model as-zero || ! as_deploy as-zero as-zero 1 ",\"autoscale\":$pol" 0; then
		broken=1; row autoscale-zero "wake from zero" "" "" "" "" "" "broken: see $OUT/as-*"
		return
	fi
	fl_chat as-zero 16
	warm=
	: >"$W/as-zero.ttft"
	: >"$OUT/as-zero-phases.txt"
	fails=0 done=0
	for k in $(seq "$AS_WAKES"); do
		if ! fl_wait 60 as_dep_at as-zero 0 || ! fl_wait 10 fl_has_routes as-zero 0; then
			echo "wake $k: never at zero" >>"$OUT/as-zero-phases.txt"
			break
		fi
		sleep 0.5
		tw=$(fl_now)
		"$LG" -T "127.0.0.1:$FL_RPORT" -m POST -p /v1/chat/completions -n "$W/fl-app.nodes" \
			-H 'Authorization: Bearer {token}' \
			-c 1 --once -d 60 -B "$W/chat-as-zero.json" -e '[DONE]' -l "as-zero-$k" \
			-o "$OUT/as-zero-$k.json" -x "$OUT/as-zero-$k-times.txt" 2>>"$OUT/as-zero.err"
		done=$((done + 1))
		e=$(jnum "$OUT/as-zero-$k.json" errors); u=$(jnum "$OUT/as-zero-$k.json" unfinished)
		fails=$((fails + ${e:-1} + ${u:-0}))
		awk '$5 == "ok" { print $2 }' "$OUT/as-zero-$k-times.txt" >>"$W/as-zero.ttft"
		if [ "$k" = 1 ]; then
			# The warm TTFT, the replica just woken and kept busy (idle_s
			# counts from the last request): three requests, the median.
			fl_lg as-zero-warm 1 1 3 as-zero
			warm=$(awk '$5 == "ok" { print $2 }' "$OUT/as-zero-warm-times.txt" | stats | cut -d ' ' -f 2)
		fi
		# Where the time went: the wake's decision after the request.
		dec=$(as_events as-zero | awk -v t="$tw" '$1 >= t && $2 == 0 { print $1; exit }')
		echo "wake $k: first token $(awk '{ print $2 }' "$OUT/as-zero-$k-times.txt") ms," \
			"scaled 0 -> 1 $(fl_ms "$tw" "$dec") ms after the request" >>"$OUT/as-zero-phases.txt"
	done
	as_events as-zero >"$OUT/as-zero-events.txt"
	set -- $(stats <"$W/as-zero.ttft")
	n=$1 med=${2:-} max=${4:-}
	target=$((AS_STARTUP_MS + 2000))
	floor=$(awk -v w="$warm" -v s="$AS_STARTUP_MS" 'BEGIN { if (w != "") printf "%.0f", s + w }')
	res=$(verdict lt "$max" "$target")
	[ "$n" = "$AS_WAKES" ] || res="miss ($n of $AS_WAKES wakes answered)"
	row autoscale-zero "request at zero -> first token, median of $n" "$med" "ms" "$floor" \
		"$(ratio "$med" "$floor")" "< $target ms" "$(verdict lt "$med" "$target")"
	row autoscale-zero "request at zero -> first token, max" "$max" "ms" "$floor" "$(ratio "$max" "$floor")" \
		"< $target ms" "$res"
	row autoscale-zero "failed requests across $done wakes" "$fails" "" "" "" "0" "$(verdict [ "$fails" = 0 ])"
	row autoscale-zero "request -> scaled 0 -> 1, median" \
		"$(sed -n 's/.*scaled 0 -> 1 \([0-9-]*\) ms.*/\1/p' "$OUT/as-zero-phases.txt" | stats | cut -d ' ' -f 2)" \
		"ms" "" "" "" ""
	row autoscale-zero "warm TTFT (the replica up)" "$warm" "ms" "" "" "" ""
	fl_undeploy as-zero
}

# --- the set-up and the benchmarks -------------------------------------------------------
# as_setup: novad, the pool (five racks of two 8-chip nodes, inline), the
# keys and a router. 1 when any of it did not start.
as_setup() {
	export NOVA_HEARTBEAT_INTERVAL_MS=$AS_INTERVAL_MS
	nova_bench_start bench_autoscale || return 1
	topo=$(awk 'BEGIN {
		printf "clusters:\\n  - id: 1\\n    name: as\\n    racks:\\n"
		for (r = 1; r <= 5; r++) {
			printf "      - id: %d\\n        nodes:\\n", r
			for (n = 1; n <= 2; n++)
				printf "          - {name: r%dn%d, chips: 8, accelerator_type: LPU, memory_mib: 230}\\n", r, n
		}
	}')
	"$C" pool create as --provider lpu --config \
		"{\"topology_inline\":\"$topo\",\"allocation\":\"c1r1,c1r2,c1r3,c1r4,c1r5\",\"mock_agents\":true}" \
		>/dev/null 2>>"$OUT/as-setup.err" || return 1
	fl_router_start as
}

# Each benchmark is a function as_bench_NAME, run when BENCH_ONLY matches
# autoscale-NAME, on the one set-up (novad, pool, router), each on
# deployments of its own that it deletes.
bench_autoscale() {
	if ! as_setup; then
		broken=1; row autoscale "set-up (novad, lpu pool, router)" "" "" "" "" "" "broken: see $OUT/as-setup.err"
	else
		for as_b in step standby zero; do
			if want "autoscale-$as_b"; then "as_bench_$as_b"; fi
		done
		"$C" pool delete as --force >/dev/null 2>&1
	fi
	as_stop
	lpu_agents_stop
	nova_bench_stop
	unset NOVA_HEARTBEAT_INTERVAL_MS
}
