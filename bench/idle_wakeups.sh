#!/bin/sh
# Idle wake-ups of novad: how often an idle novad's threads wake, per second.
#
# A novad on a fresh database (of the run's cluster, or one of its own) with
# the fake provider, one pool and one deployment of one replica; once the
# replica is placed and the work is done, the context switches of all its
# threads (voluntary + involuntary, summed over /proc/PID/task/*/status) are
# read IDLE_SECONDS apart. A voluntary switch is a sleep, so each counts one
# wake-up; the involuntary ones are few on an idle machine. No sidecar
# beats, no client asks: what is left is the threads' own timers.
#
# Sourced by bench/run.sh (idle_wakeups_run, which writes a row), or run on
# its own:  NOVA_BUILD=build sh bench/idle_wakeups.sh  (prints the JSON line).
# Knobs: IDLE_SECONDS (default 10), IDLE_SETTLE (seconds after the placement
# before measuring, default 3).
#
# Where perf may (root, or perf_event_paranoid <= -1), perf stat -e
# sched:sched_switch -p PID counts the same switches from the kernel's side
# over the same window (perf_sched_switch_per_s).

# idle_wakeups_measure NOVAD NOVACTL PGHOST DB WORKDIR OUTFILE: the JSON line
# {"wakeups_per_s", "voluntary", "involuntary", "threads", "seconds"} into
# OUTFILE, and each thread's counts beside it (OUTFILE.threads).
idle_wakeups_measure() {
	iw_novad=$1 iw_ctl=$2 iw_pghost=$3 iw_db=$4 iw_w=$5 iw_out=$6
	iw_secs=${IDLE_SECONDS:-10}
	psql -h "$iw_pghost" -U nova -d postgres -qc "CREATE DATABASE $iw_db" >/dev/null || return 1
	iw_state="$iw_w/state-$iw_db"
	mkdir -p "$iw_state"
	NOVA_STATE_DIR=$iw_state NOVA_LPU_RUN_DIR="$iw_state/lpu" NOVA_ENABLE_FAKE_PROVIDER=1 \
		NOVA_LISTEN=127.0.0.1:0 NOVA_DATABASE_URL="host=$iw_pghost dbname=$iw_db user=nova" \
		NOVA_LOG_LEVEL=warn NOVA_CONFIG=/dev/null "$iw_novad" >>"$iw_out.log" 2>&1 &
	IW_PID=$!
	iw_i=0
	while [ ! -s "$iw_state/novad.url" ]; do
		kill -0 "$IW_PID" 2>/dev/null || return 1
		iw_i=$((iw_i + 1)); [ $iw_i -gt 300 ] && return 1
		sleep 0.1
	done
	# One static node of eight A100s, one replica on it.
	iw_pool='{"mode": "static", "nodes": 1, "accelerator_type": "A100-80G",
		"accelerators_per_node": 8, "memory_mib": 81920}'
	iw_novactl() { NOVA_STATE_DIR=$iw_state "$iw_ctl" "$@" >/dev/null; }
	iw_novactl model register -f etc/models/single.yaml &&
		iw_novactl pool create idle --provider fake --config "$iw_pool" &&
		iw_novactl deploy llama-3-8b-instruct --pool idle --replicas 1 --name idle || return 1
	iw_i=0
	until [ "$(psql -h "$iw_pghost" -U nova -d "$iw_db" -qAt -c \
		"SELECT count(*) FROM replicas WHERE state = 'placed'")" = 1 ]; do
		iw_i=$((iw_i + 1)); [ $iw_i -gt 300 ] && return 1
		sleep 0.1
	done
	sleep "${IDLE_SETTLE:-3}"
	# Each thread: "tid name voluntary involuntary".
	iw_snap() {
		for t in /proc/"$IW_PID"/task/*; do
			printf '%s %s %s\n' "${t##*/}" "$(cat "$t/comm" 2>/dev/null)" \
				"$(awk '/^voluntary_ctxt/ { v = $2 } /^nonvoluntary_ctxt/ { n = $2 }
					END { print v + 0, n + 0 }' "$t/status" 2>/dev/null)"
		done
	}
	# The kernel's count of the same switches, over the same window, where
	# perf may (root, or perf_event_paranoid <= -1).
	iw_perf=
	rm -f "$iw_out.perf"
	if command -v perf >/dev/null 2>&1; then
		perf stat -x, -e sched:sched_switch -p "$IW_PID" -o "$iw_out.perf" -- \
			sleep "$iw_secs" >/dev/null 2>&1 &
		iw_perf=$!
	fi
	iw_snap >"$iw_out.before"
	sleep "$iw_secs"
	iw_snap >"$iw_out.after"
	[ -n "$iw_perf" ] && wait "$iw_perf"
	# Per thread, what it did in the interval (a thread that came or went
	# counts from 0); the totals are their sums.
	awk 'NR == FNR { v[$1] = $3; n[$1] = $4; next }
		{ printf "%s %s %d %d\n", $1, $2, $3 - v[$1], $4 - n[$1] }' \
		"$iw_out.before" "$iw_out.after" >"$iw_out.threads"
	iw_sw=$(sed -n 's/^\([0-9][0-9]*\),.*sched:sched_switch.*/\1/p' "$iw_out.perf" 2>/dev/null)
	kill -TERM "$IW_PID" 2>/dev/null
	wait "$IW_PID" 2>/dev/null
	IW_PID=
	awk -v secs="$iw_secs" -v sw="${iw_sw:-}" '{ v += $3; n += $4; t++ } END {
		printf "{\"wakeups_per_s\": %.1f, \"voluntary\": %d, \"involuntary\": %d, \"threads\": %d, \"seconds\": %d",
			(v + n) / secs, v, n, t, secs
		if (sw != "") printf ", \"perf_sched_switch_per_s\": %.1f", sw / secs
		print "}" }' "$iw_out.threads" >"$iw_out"
}

idle_wakeups_stop() {
	[ -n "${IW_PID:-}" ] || return 0
	kill -TERM "$IW_PID" 2>/dev/null
	wait "$IW_PID" 2>/dev/null
	IW_PID=
}

# From bench/run.sh: one row, against the ceiling of the threads' own
# periods (see docs/PERFORMANCE.md, idle wake-ups): the worker's two
# threads every 500 ms, the flusher and the sweeper every 500 ms, the routes
# thread every 250 ms, the reconciler and the fleet metrics every 5 s, and
# libmicrohttpd's and the pool's own (measured, not counted here).
idle_wakeups_run() {
	echo "bench: idle wake-ups (novad with one deployment, ${IDLE_SECONDS:-10} s)"
	if idle_wakeups_measure "$B/novad" "$C" "$NOVA_TEST_PGHOST" bench_idle "$W" "$OUT/idle.json"; then
		v=$(jnum "$OUT/idle.json" wakeups_per_s)
		row idle "wake-ups/s, idle novad, one deployment" "$v" "/s" "" "" "<= 50/s" \
			"$(verdict ge 50 "$v")"
		p=$(jnum "$OUT/idle.json" perf_sched_switch_per_s)
		[ -n "$p" ] && row idle "sched:sched_switch/s (perf), same window" "$p" "/s" "" "" "" ""
	else
		broken=1; row idle "idle wake-ups" "" "" "" "" "" "broken: see $OUT/idle.json.log"
		idle_wakeups_stop
	fi
}

if [ -z "${NOVA_BENCH_RUN:-}" ]; then
	set -u
	top=$(cd "$(dirname "$0")/.." && pwd)
	cd "$top" || exit 1
	NB=$(cd "${NOVA_BUILD:-build}" && pwd) || exit 1
	IW_W=$(mktemp -d /tmp/nova-idle.XXXXXX)
	chmod 0755 "$IW_W"
	. tests/support/pg.sh
	trap 'idle_wakeups_stop; pg_test_stop; rm -rf "$IW_W"' EXIT
	trap 'exit 1' INT TERM
	pg_test_start || exit 1
	if idle_wakeups_measure "$NB/novad" "$NB/novactl" "$NOVA_TEST_PGHOST" idle "$IW_W" "$IW_W/idle.json"; then
		cat "$IW_W/idle.json"
		[ -n "${IDLE_THREADS:-}" ] && cat "$IW_W/idle.json.threads"
		exit 0
	fi
	tail -n 20 "$IW_W/idle.json.log" >&2
	exit 1
fi
