# Sourced by bench/run.sh (BENCH_ONLY=eventplane): how soon a change
# committed through one novad is visible on another (issue 20; target p99
# < 100 ms). Three novads on one database; a deployment (of no replica, on
# the fake provider, so no engine's start is measured) is stopped and
# started again through novad A, each a route that leaves and comes back,
# while a route watch (tests/support/sse_watch.py) is open on novad C.
# Measured per change: from the time the event stream gives the change's
# event (the database's clock_timestamp() as its transaction commits:
# sql/0022) to the time C's watch delivered the update (the watcher's clock;
# one machine, one clock). C learns of it by NOTIFY (events/events.h),
# reads its table and wakes its streams; without NOTIFY it would be its
# 250 ms poll.
#
#   EP_CHANGES (BENCH_EP_CHANGES, default 100)  stop/start pairs measured,
#   after EP_WARM (5) pairs of warm-up, whose worst is reported on its own
#   (the first changes after the novads start took 0.5-0.9 s: plans and
#   caches still cold, the start-up passes of workers and reconciler).
#   uses run.sh's W, OUT, B, row, ratio.

EP_CHANGES=${BENCH_EP_CHANGES:-100}
EP_WARM=5
EP_PIDS=

ep_stop() {
	for p in $EP_PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $EP_PIDS; do wait "$p" 2>/dev/null; done
	EP_PIDS=
}

bench_event_plane() {
	echo "bench: change on novad A -> visible on novad C's route watch ($EP_CHANGES stop/start pairs)"
	db=bench_ep
	psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "CREATE DATABASE $db" >/dev/null || return 1
	set -- $(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')
	pa=$1 pc=$3
	token=$(head -c 30 /dev/urandom | base64 | tr -d '/+=\n')
	for port in "$@"; do
		st="$W/ep-state-$port"
		mkdir -p "$st"
		NOVA_STATE_DIR="$st" NOVA_LPU_RUN_DIR="$st/lpu" NOVA_LISTEN="127.0.0.1:$port" \
			NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$db user=nova" NOVA_LOG_LEVEL=warn \
			NOVA_ENABLE_FAKE_PROVIDER=1 NOVA_ADMIN_TOKEN="$token" "$B/novad" >>"$OUT/novad-ep-$port.log" 2>&1 &
		EP_PIDS="$EP_PIDS $!"
		i=0; while [ ! -s "$st/novad.url" ] && [ $i -lt 300 ]; do i=$((i + 1)); sleep 0.1; done
		[ -s "$st/novad.url" ] || { ep_stop; return 1; }
	done
	cat >"$W/ep-model.yaml" <<EOM
name: ep
kind: single
engine: {image: x}
stages: [{name: main, accelerators: 1}]
EOM
	ca="$B/novactl --server http://127.0.0.1:$pa"
	export NOVA_TOKEN="$token"
	{ $ca pool create ep --provider fake && $ca model register -f "$W/ep-model.yaml" &&
		$ca deploy ep --pool ep --replicas 0 --name ep; } >"$OUT/eventplane.err" 2>&1 || { ep_stop; return 1; }
	python3 tests/support/sse_watch.py "http://127.0.0.1:$pc/v1/routes/watch" "$W/ep-watch.jsonl" &
	EP_PIDS="$EP_PIDS $!"
	i=0; while ! grep -q '"open"' "$W/ep-watch.jsonl" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
	sleep 1
	n=0
	while [ $n -lt $((EP_CHANGES + EP_WARM)) ]; do
		$ca deployment stop ep --wait --timeout 30 >/dev/null 2>>"$OUT/eventplane.err" || break
		sleep 0.1
		$ca deployment start ep >/dev/null 2>>"$OUT/eventplane.err" || break
		sleep 0.2
		n=$((n + 1))
	done
	sleep 1
	psql -h "$NOVA_TEST_PGHOST" -U nova -d "$db" -AtF ' ' -c "SELECT id, extract(epoch FROM at) FROM event_stream
		WHERE kind = 'deployment' AND data->>'to' IN ('stopping', 'pending') AND data->>'from' IS NOT NULL
		ORDER BY id" >"$W/ep-changes.txt"
	python3 - "$W/ep-changes.txt" "$W/ep-watch.jsonl" "$OUT/eventplane-latencies.txt" $((2 * EP_WARM)) \
		>"$OUT/eventplane.txt" <<'PY'
import json, sys
changes = [(int(a), float(b)) for a, b in (l.split() for l in open(sys.argv[1]) if l.strip())]
ups = [(int(e["id"]), e["t"]) for e in (json.loads(l) for l in open(sys.argv[2]) if l.strip())
       if e["event"] == "update"]
lat = []
for cid, at in changes:
    seen = [t for uid, t in ups if uid >= cid]
    if seen:
        lat.append((seen[0] - at) * 1000)
with open(sys.argv[3], "w") as f:
    f.write(" ".join("%.1f" % v for v in lat) + "\n")
warm = int(sys.argv[4])
warm_max = max(lat[:warm]) if lat[:warm] else -1
changes, lat = changes[warm:], lat[warm:]
lat.sort()
def q(p):
    return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else -1
print("%d %d %.1f %.1f %.1f %.1f" % (len(changes), len(lat), q(0.5), q(0.99), lat[-1] if lat else -1,
                                     warm_max))
PY
	ep_stop
	set -- $(cat "$OUT/eventplane.txt")
	[ $# -eq 6 ] || return 1
	row eventplane "changes committed through A" "$1" "" "" "" "" ""
	row eventplane "of them seen on C's route watch" "$2" "" "$1" "$(ratio "$2" "$1")" "= all" \
		"$([ "$2" = "$1" ] && echo pass || echo miss)"
	row eventplane "commit -> visible on C, p50" "$3" "ms" "" "" "" ""
	row eventplane "commit -> visible on C, p99" "$4" "ms" "100" "$(ratio "$4" 100)" "< 100 ms" \
		"$(awk -v v="$4" 'BEGIN { print (v < 100 ? "pass" : "miss") }')"
	row eventplane "commit -> visible on C, max" "$5" "ms" "" "" "" ""
	row eventplane "commit -> visible on C, warm-up max" "$6" "ms" "" "" "" ""
	return 0
}
