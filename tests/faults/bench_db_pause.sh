#!/bin/sh
# The "database pause" benchmark of `make bench` (bench/run.sh runs it with
# NOVA_BUILD set to the release build): the fault suite's set-up
# (tests/faults/lib.sh: a PostgreSQL of its own, novad, an lpu pool of six
# nodes with mock agents, two deployments of two replicas), then
#   1. GET /v1/routes with bench/loadgen on the healthy system;
#   2. PostgreSQL paused (SIGSTOP, every process of the cluster) for
#      PAUSE_S seconds, GET /v1/routes with loadgen inside the pause (a
#      warm-up, then PAUSE_S - 10 s measured);
#   3. after the resume, the time to full consistency (deployments running,
#      4 replicas ready and routed, every node ready, one agent each).
# Usage: tests/faults/bench_db_pause.sh OUTDIR [CONNS] [SECONDS] [WARMUP]
# Writes OUTDIR/dbpause-{healthy,paused}.json (loadgen), dbpause-routes.json
# (the table, for the nginx ceiling) and dbpause-consistency.txt (seconds,
# or "never: why"). Not a test: it is not named test_*.
OUTDIR=${1:?usage: bench_db_pause.sh OUTDIR [CONNS] [SECONDS] [WARMUP]}
CONNS=${2:-32} SECS=${3:-10} WARM=${4:-2}
PAUSE_S=${BENCH_PAUSE_SECONDS:-40}
. tests/faults/lib.sh
LG="$B/bench/loadgen"
export NOVA_LOG_LEVEL=warn
f_setup
printf 'admin %s\n' "$(cat "$F_STATE/admin_token")" >"$T_WORK/admin.nodes"
port=${NOVA_URL##*:}
curl -s -H "Authorization: Bearer $(cat "$F_STATE/admin_token")" "$NOVA_URL/v1/routes" \
	>"$OUTDIR/dbpause-routes.json"
routes() { # routes LABEL SECONDS WARMUP
	"$LG" -T "127.0.0.1:$port" -c "$CONNS" -d "$2" -w "$3" -n "$T_WORK/admin.nodes" -p /v1/routes \
		-H 'Authorization: Bearer {token}' -l "$1" -o "$OUTDIR/$1.json"
}
routes dbpause-healthy "$SECS" "$WARM"
t0=$(date +%s)
f_pg_pause
routes dbpause-paused $((PAUSE_S - 10)) 5
while [ $(($(date +%s) - t0)) -lt "$PAUSE_S" ]; do sleep 0.2; done
f_pg_resume
if out=$(f_consistent 60); then echo "$out" >"$OUTDIR/dbpause-consistency.txt"
else echo "never: $out" >"$OUTDIR/dbpause-consistency.txt"; fi
cp "$T_WORK/novad.log" "$OUTDIR/dbpause-novad.log"
exit 0
