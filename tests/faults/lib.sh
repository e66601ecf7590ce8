# Sourced by the fault cases (tests/faults/test_*.sh), run through
# tests/run.sh. Each case gets a PostgreSQL cluster of its own (the run's
# shared cluster is never paused or stopped), a novad on it, an lpu pool
# with mock agents over every node of etc/datacenter.yaml (its five racks
# c1r1,c1r2,c2r1,c2r2,c2r3 hold six nodes), and two deployments of two
# replicas each:
#   base-a  demo (etc/models/lpu_demo.yaml, 8 chips: a whole node each)
#   base-b  lpu-single (etc/models/lpu/single.yaml, 4 chips), spread
# A traffic driver and a monitor (tests/faults/faultdrv.py) run in the
# background for the whole case; f_check turns their findings and the
# before/after snapshots into PASS/FAIL lines.
set -u
. tests/support/lib.sh
. tests/support/pg.sh

F_PY="python3 tests/faults/faultdrv.py"
F_PG=
F_DRIVER=
F_MONITOR=
F_DEPLOYS=base-a,base-b
F_MODELS=demo,lpu-single
F_WANT='{"base-a":{"state":"running","replicas":2},"base-b":{"state":"running","replicas":2}}'
F_FAULT_START=0
F_DOWN_FLAG="$T_WORK/novad.down"
F_DB_DOWN_FLAG="$T_WORK/db.down"
F_STOP="$T_WORK/driver.stop"
C="$B/novactl"
# novactl reads no developer's config file: only the state directory's url
# and admin token.
export XDG_CONFIG_HOME="$T_WORK/xdg" HOME="$T_WORK"

f_now() { date +%s.%N; }
f_log() { echo "# $(date +%T.%N | cut -c1-12) $*"; }

# --- the case's own PostgreSQL cluster --------------------------------------

F_PG_OPTS="-c listen_addresses= -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"

f_pg_init() {
	F_PG_BIN=$(pg_bindir)
	[ -n "$F_PG_BIN" ] && [ -x "$F_PG_BIN/initdb" ] || { echo "no postgresql server binaries" >&2; return 1; }
	F_PG=$(mktemp -d /tmp/nova-fault-pg.XXXXXX)
	chmod 0755 "$F_PG"
	[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$F_PG"
	pg_as "$F_PG_BIN/initdb" -D "$F_PG/data" -U nova --auth=trust -E UTF8 --no-instructions \
		>"$F_PG/initdb.log" 2>&1 || { cat "$F_PG/initdb.log" >&2; return 1; }
	f_pg_start
}

f_pg_start() {
	pg_as "$F_PG_BIN/pg_ctl" -D "$F_PG/data" -l "$F_PG/server.log" -w -t 30 \
		-o "-k $F_PG $F_PG_OPTS" start >/dev/null 2>&1 || { tail -20 "$F_PG/server.log" >&2; return 1; }
	# nova_start, t_sql and t_wait_sql (tests/support/lib.sh) use this
	# cluster from now on.
	export NOVA_TEST_PGHOST="$F_PG"
}

# Every process of the cluster: the postmaster and its children.
f_pg_pids() {
	pm=$(head -1 "$F_PG/data/postmaster.pid" 2>/dev/null)
	[ -n "$pm" ] || return 0
	echo "$pm"
	pgrep -P "$pm"
}

f_pg_pause() {
	touch "$F_DB_DOWN_FLAG"
	pm=$(head -1 "$F_PG/data/postmaster.pid")
	kill -STOP "$pm"          # first, so it forks no new backend
	for p in $(pgrep -P "$pm"); do kill -STOP "$p"; done
	for p in $(pgrep -P "$pm"); do kill -STOP "$p"; done   # one forked meanwhile
	F_PAUSED_PIDS=$(f_pg_pids | tr '\n' ' ')
	f_log "database paused: $F_PAUSED_PIDS"
}

# F_RESUMED: the moment just before the first SIGCONT (the earliest the
# database could have done anything again).
f_pg_resume() {
	F_RESUMED=$(f_now)
	for p in $F_PAUSED_PIDS; do kill -CONT "$p" 2>/dev/null; done
	for p in $(f_pg_pids); do kill -CONT "$p" 2>/dev/null; done
	rm -f "$F_DB_DOWN_FLAG"
	f_log "database resumed"
}

f_pg_stop_hard() {
	touch "$F_DB_DOWN_FLAG"
	pg_as "$F_PG_BIN/pg_ctl" -D "$F_PG/data" -m immediate -w stop >/dev/null 2>&1
	f_log "database stopped (immediate)"
}

f_pg_start_again() {
	f_pg_start; rc=$?
	rm -f "$F_DB_DOWN_FLAG"
	f_log "database started again (rc $rc)"
	return $rc
}

f_pg_restart() {
	touch "$F_DB_DOWN_FLAG"
	pg_as "$F_PG_BIN/pg_ctl" -D "$F_PG/data" -l "$F_PG/server.log" -m fast -w -t 30 \
		-o "-k $F_PG $F_PG_OPTS" restart >/dev/null 2>&1; rc=$?
	rm -f "$F_DB_DOWN_FLAG"
	f_log "database restarted (rc $rc)"
	return $rc
}

# --- novad and its agents ---------------------------------------------------

# The agents the adapter recorded (pidfiles) and every nova-sidecar that
# names this case's novad: killed with their engines.
f_kill_agents() {
	for f in "$T_WORK"/state/lpu/*/*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f" 2>/dev/null)
		[ -n "$p" ] && kill -0 "$p" 2>/dev/null || continue
		pkill -KILL -P "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	if [ -n "${NOVA_URL:-}" ]; then
		for p in $(pgrep -f "nova-sidecar --gateway $NOVA_URL "); do
			pkill -KILL -P "$p" 2>/dev/null
			kill -KILL "$p" 2>/dev/null
		done
	fi
}

f_novad_kill9() {
	[ -n "$T_PID" ] || return 0
	kill -KILL "$T_PID" 2>/dev/null
	wait "$T_PID" 2>/dev/null
	T_PID=
}

# After a stop or a kill: the same database, state directory and address.
f_novad_restart() {
	i=0
	until nova_start; do
		i=$((i + 1)); [ $i -ge 5 ] && return 1
		sleep 0.5
	done
}

f_cleanup() {
	touch "$F_STOP"
	for p in $F_DRIVER $F_MONITOR; do kill "$p" 2>/dev/null; done
	[ -n "$T_PID" ] && kill -KILL "$T_PID" 2>/dev/null
	T_PID=
	f_kill_agents
	if [ -n "$F_PG" ]; then
		for p in $(f_pg_pids); do kill -CONT "$p" 2>/dev/null; done
		pg_as "$F_PG_BIN/pg_ctl" -D "$F_PG/data" -m immediate stop >/dev/null 2>&1
		rm -rf "$F_PG"
	fi
	t_cleanup
}
trap f_cleanup EXIT

# The case's failure report: what the driver saw first, novad's last words.
f_report() {
	echo "--- traffic summary"
	[ -f "$T_WORK/traffic.json" ] && python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
for k in sorted(s):
    if k not in ("chat_ok_by_url", "first_endpoints", "last_endpoints"):
        print("  %s: %s" % (k, s[k]))
' "$T_WORK/traffic.json"
	echo "--- novad log (last 40 lines but request lines)"
	grep -v '"msg":"request"' "$T_WORK/novad.log" | tail -40
	echo "--- node events"
	timeout 5 psql -h "$F_PG" -U nova -d "$T_DB" -X -tAc "SELECT to_char(e.at, 'HH24:MI:SS.MS'), n.name, e.from_state, e.to_state, e.reason FROM node_events e JOIN nodes n ON n.id = e.node_id ORDER BY e.id" 2>&1 | tail -40
}

# --- set-up ----------------------------------------------------------------

# f_setup [POOL-CONFIG-EXTRA]: cluster, novad, pool, two deployments, 4
# routed replicas, six ready nodes. Exits the case (with a FAIL) if any
# step does not happen in time.
f_setup() {
	f_pg_init || { t_fail "the case's PostgreSQL starts" "see above"; exit 0; }
	nova_start || { t_fail "novad starts" "$(tail -20 "$T_WORK/novad.log")"; exit 0; }
	# Restarts must come back on the same address: the agents keep it.
	T_LISTEN=${NOVA_URL#http://}
	F_STATE="$NOVA_STATE_DIR"
	"$C" model register -f etc/models/lpu_demo.yaml >/dev/null &&
		"$C" model register -f etc/models/lpu/single.yaml >/dev/null ||
		{ t_fail "models registered" "$(cat "$T_WORK/err" 2>/dev/null)"; exit 0; }
	cfg="{\"topology\":\"$PWD/etc/datacenter.yaml\",\"allocation\":\"c1r1,c1r2,c2r1,c2r2,c2r3\",\"mock_agents\":true${1:-}}"
	"$C" pool create racks --provider lpu --config "$cfg" >"$T_WORK/out" 2>&1 ||
		{ t_fail "lpu pool created" "$(cat "$T_WORK/out")"; exit 0; }
	"$C" deploy demo --pool racks --replicas 2 --name base-a >"$T_WORK/out" 2>&1 &&
		"$C" deploy lpu-single --pool racks --replicas 2 --placement spread --name base-b >"$T_WORK/out" 2>&1 ||
		{ t_fail "deployed" "$(cat "$T_WORK/out")"; exit 0; }
	F_POOL=$(t_sql "SELECT id FROM pools WHERE name = 'racks'")
	# The routes reader uses an API key, as an inference gateway would,
	# with the one scope it needs: while the database is away it is
	# checked from novad's memory.
	"$C" -o json apikey create fault-traffic --scope routes >"$T_WORK/out" 2>&1 &&
		sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' "$T_WORK/out" >"$T_WORK/apikey" &&
		[ -s "$T_WORK/apikey" ] || { t_fail "an API key for the routes reader" "$(cat "$T_WORK/out")"; exit 0; }
	if ! out=$(f_consistent 60); then
		t_fail "set-up: 4 replicas routed, 6 nodes ready within 60 s" "$out"
		f_report; exit 0
	fi
	t_pass "set-up: 4 replicas routed, 6 nodes ready (in $out s)"
}

f_args() {
	echo --url "$NOVA_URL" --gateway "$NOVA_URL" --state-dir "$F_STATE" --pghost "$F_PG" --db "$T_DB"
}

# f_consistent SECONDS [WANT]: poll until consistent; prints the seconds it
# took, or why not.
f_consistent() {
	$F_PY consistent $(f_args) --deadline "$1" --want "${2:-$F_WANT}"
}

f_snapshot() { $F_PY snapshot $(f_args) >"$T_WORK/$1.json"; }

# f_start_observers SECONDS: the driver and the monitor, bounded by SECONDS.
f_start_observers() {
	rm -f "$F_STOP" "$T_WORK/traffic.ready"
	f_snapshot before
	$F_PY traffic $(f_args) --token-file "$T_WORK/apikey" --duration "$1" --out "$T_WORK/traffic.json" --stop-file "$F_STOP" \
		--ready-file "$T_WORK/traffic.ready" \
		--down-flag "$F_DOWN_FLAG" --models "$F_MODELS" --deployments "$F_DEPLOYS" \
		--expect-endpoints 4 >"$T_WORK/driver.log" 2>&1 &
	F_DRIVER=$!
	$F_PY monitor $(f_args) --duration "$1" --out "$T_WORK/monitor.jsonl" --stop-file "$F_STOP" \
		--db-down-flag "$F_DB_DOWN_FLAG" >"$T_WORK/monitor.log" 2>&1 &
	F_MONITOR=$!
	# A few reads of the healthy table before the fault, the first one
	# answered: the reader's key has then been checked once against the
	# database, as an inference gateway's has before any outage. On a
	# loaded machine the driver's start alone can take longer than the
	# fixed 2 s that was here, and a key first used during the outage is
	# rightly refused (nothing in novad's memory vouches for it).
	i=0
	while [ ! -e "$T_WORK/traffic.ready" ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
	sleep 2
}

f_stop_observers() {
	touch "$F_STOP"
	wait "$F_DRIVER" 2>/dev/null; F_DRIVER=
	wait "$F_MONITOR" 2>/dev/null; F_MONITOR=
	[ -s "$T_WORK/traffic.json" ] || { t_fail "the traffic driver wrote its summary" "$(tail -5 "$T_WORK/driver.log")"; }
}

# f_consistency_after SECONDS NAME: full consistency within SECONDS of the
# fault's end (the caller's moment), as an assertion.
f_consistency_after() {
	if out=$(f_consistent "$1"); then
		t_pass "${2:-full consistency within $1 s of the fault's end} (took $out s)"
		F_CONSISTENT_S=$out
	else
		t_fail "${2:-full consistency within $1 s of the fault's end}" "$out"
		F_CONSISTENT_S=
	fi
}

# f_check [check args...]: the snapshot after, then every assertion.
f_check() {
	f_snapshot after
	python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print("# traffic: %d routes reads (%d ok, %d failed, %d while novad was down, %d empty, %d short of 4 endpoints), "
      "p50 %s ms, p99 %s ms, max %s ms; %d completions (%d ok, %d failed)" % (
      s["routes_reads"], s["routes_ok"], s["routes_failed"], s["routes_while_down"], s["routes_empty"],
      s["routes_short"], s["routes_lat_ms_p50"], s["routes_lat_ms_p99"], s["routes_lat_ms_max"],
      s["chat_sent"], s["chat_ok"], s["chat_failed"]))
' "$T_WORK/traffic.json" 2>/dev/null
	$F_PY check --before "$T_WORK/before.json" --after "$T_WORK/after.json" \
		--traffic "$T_WORK/traffic.json" --monitor "$T_WORK/monitor.jsonl" \
		--fault-start "$F_FAULT_START" --deployments "$F_DEPLOYS" "$@" >"$T_WORK/check.out" 2>&1
	failed=0
	while IFS="$(printf '\t')" read -r verdict name why; do
		case "$verdict" in
		PASS) t_pass "$name" ;;
		FAIL) t_fail "$name" "$why"; failed=1 ;;
		*) echo "$verdict $name $why" ;;
		esac
	done <"$T_WORK/check.out"
	grep -q '^PASS\|^FAIL' "$T_WORK/check.out" || { t_fail "the checker ran" "$(tail -5 "$T_WORK/check.out")"; failed=1; }
	[ "$failed" -eq 0 ] || f_report
}

# f_finish: after the fault's end, full consistency within one reconcile
# period and still 10 s later (the sweep and the reconciler have run on
# whatever the fault left by then), then the observers' checks.
f_finish() {
	f_consistency_after 5
	sleep 10
	f_consistency_after 1 "still consistent 10 s later"
	f_stop_observers
	f_check
}
