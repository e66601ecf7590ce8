#!/bin/sh
# The event plane across three novads on one database behind nginx (issue
# 20): a change committed through one novad reaches the others' routing
# tables and workers by NOTIFY, not at their next poll; a route watcher that
# moves to another novad with Last-Event-ID misses nothing and gets no
# snapshot (checked event by event, tests/deployments/watch_check.py); all
# three serve one table; and kill -9 of the novad holding the singleton
# duties moves them to another within the reconciler's period.
set -u
. tests/support/lib.sh
. bench/nginx.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500
nginx_bench_ensure || { t_fail "nginx is available" "not installed"; exit 0; }

. tests/support/novads.sh
novads_ports 127.0.0.1
PA=$MN_PA PB=$MN_PB PC=$MN_PC
novads_nginx 127.0.0.1 || { t_fail "nginx starts" "$(cat "$T_WORK/nginx/start.err")"; exit 0; }
LB=$MN_LB
novads_start_a 127.0.0.1 || { t_fail "novad A starts" "see log"; exit 0; }
TOKEN=$MN_TOKEN
B_PID= C_PID= W_PIDS=
trap 'kill $W_PIDS 2>/dev/null; novads_stop;
	pkill -f "$B/nova-sidecar --gateway" 2>/dev/null; pkill -f "$B/nova-mock-engine --port" 2>/dev/null; t_cleanup' EXIT
novads_start B 127.0.0.1 "$PB" && novads_start C 127.0.0.1 "$PC" && t_pass "three novads on one database" ||
	{ t_fail "three novads" "$(tail -3 "$T_WORK"/novad-*.log)"; exit 0; }

export NOVA_TOKEN="$TOKEN" # to novactl and sse_watch.py by the environment
CA="$B/novactl --server http://127.0.0.1:$PA"
CB="$B/novactl --server http://127.0.0.1:$PB"
CC="$B/novactl --server http://127.0.0.1:$PC"
topo=$(python3 -c 'import json
racks = "".join("      - id: %d\n        nodes:\n" % r + "".join(
    "          - {name: r%dn%d, chips: 8, accelerator_type: LPU, memory_mib: 230}\n" % (r, n)
    for n in (1, 2)) for r in (1, 2, 3))
print(json.dumps("clusters:\n  - id: 1\n    name: t\n    racks:\n" + racks))')
cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"]}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
$CA pool create racks --provider lpu \
	--config "{\"topology_inline\":$topo,\"allocation\":\"c1r1,c1r2,c1r3\",\"mock_agents\":true}" >/dev/null 2>"$T_WORK/err" &&
	$CA model register -f "$T_WORK/model.yaml" >/dev/null 2>>"$T_WORK/err" &&
	t_pass "an lpu pool and a model through A" || { t_fail "pool and model" "$(cat "$T_WORK/err")"; exit 0; }

routes_of() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/v1/routes"; }
etag_of() { curl -s -o /dev/null -D - -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/v1/routes" |
	sed -n 's/^ETag: \(.*\)\r$/\1/p'; }
urls_on() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/v1/routes?model=demo" | grep -o '"url"' | wc -l; }
# agree WHAT N: every novad routes N endpoints of demo, with one ETag.
agree() {
	i=0
	while [ $i -lt 150 ]; do
		if [ "$(urls_on "$PA")" -eq "$2" ] && [ "$(urls_on "$PB")" -eq "$2" ] && [ "$(urls_on "$PC")" -eq "$2" ]; then
			ea=$(etag_of "$PA") eb=$(etag_of "$PB") ec=$(etag_of "$PC")
			[ -n "$ea" ] && [ "$ea" = "$eb" ] && [ "$eb" = "$ec" ] && { t_pass "$1: all three route $2 with one ETag"; return 0; }
		fi
		i=$((i + 1)); sleep 0.2
	done
	t_fail "$1: all three route $2" "A=$(urls_on "$PA") B=$(urls_on "$PB") C=$(urls_on "$PC"); $(etag_of "$PA") $(etag_of "$PB") $(etag_of "$PC")"
	return 1
}

# A route watcher on A from the start, and an event watcher on B from the
# stream's head now.
H0=$(t_sql "SELECT last_id FROM event_stream_head")
python3 tests/support/sse_watch.py "http://127.0.0.1:$PA/v1/routes/watch" "$T_WORK/w1.jsonl" &
W1=$!; W_PIDS="$W1"
python3 tests/support/sse_watch.py "http://127.0.0.1:$PB/v1/events/watch?after=$H0" "$T_WORK/e1.jsonl" &
E1=$!; W_PIDS="$W_PIDS $E1"
i=0; while ! grep -q '"open"' "$T_WORK/w1.jsonl" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done
$CB deploy demo --pool racks --replicas 2 --name demo >/dev/null 2>"$T_WORK/err" ||
	t_fail "deploy through B" "$(cat "$T_WORK/err")"
agree "deployed through B" 2
n=0
for port in $PA $PB $PC; do
	curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/metrics" | grep -q '^nova_events_listening 1$' &&
		n=$((n + 1))
done
[ "$n" -eq 3 ] && t_pass "all three LISTEN for the stream (nova_events_listening 1)" ||
	t_fail "all three LISTEN" "$n of 3 say nova_events_listening 1"
$CC deployment scale demo --replicas 3 >/dev/null 2>"$T_WORK/err" || t_fail "scale through C" "$(cat "$T_WORK/err")"
agree "scaled to 3 through C" 3
sleep 1
kill "$W1" "$E1" 2>/dev/null; wait "$W1" "$E1" 2>/dev/null
last_id() { python3 -c 'import json, sys
ids = [json.loads(l).get("id") for l in open(sys.argv[1]) if l.strip()]
print([i for i in ids if i][-1])' "$1"; }
L=$(last_id "$T_WORK/w1.jsonl")
LE=$(last_id "$T_WORK/e1.jsonl")

# While no one watches: down to 2 through A, then 4 through B.
$CA deployment scale demo --replicas 2 >/dev/null 2>"$T_WORK/err" || t_fail "scale through A" "$(cat "$T_WORK/err")"
agree "scaled to 2 through A" 2
$CB deployment scale demo --replicas 4 >/dev/null 2>"$T_WORK/err" || t_fail "scale through B" "$(cat "$T_WORK/err")"
agree "scaled to 4 through B" 4

# The watcher comes back on C with the last id A gave it.
python3 tests/support/sse_watch.py "http://127.0.0.1:$PC/v1/routes/watch" "$T_WORK/w2.jsonl" "$L" &
W2=$!; W_PIDS="$W_PIDS $W2"
python3 tests/support/sse_watch.py "http://127.0.0.1:$PC/v1/events/watch" "$T_WORK/e2.jsonl" "$LE" &
E2=$!; W_PIDS="$W_PIDS $E2"
# open FILE: wait until that watcher's stream was answered.
opened() { i=0; while ! grep -q '"open"' "$1" 2>/dev/null && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.1; done; }
opened "$T_WORK/w2.jsonl"; opened "$T_WORK/e2.jsonl"
sleep 1
# One more change while it watches C, made through A: C hears of it by
# NOTIFY. Measured from the commit of the replica's readiness (the stream's
# own time of it) to the update on C's stream.
$CA deployment scale demo --replicas 5 >/dev/null 2>"$T_WORK/err" || t_fail "scale through A" "$(cat "$T_WORK/err")"
agree "scaled to 5 through A" 5
sleep 1
kill "$W2" "$E2" 2>/dev/null; wait "$W2" "$E2" 2>/dev/null
routes_of "$PC" >"$T_WORK/final.json"
# The event watcher, B then C: every event of the stream after H0 up to the
# head, once each, in order (its reconnection repeats nothing: its
# Last-Event-ID is exact).
HE=$(t_sql "SELECT last_id FROM event_stream_head")
got=$(python3 - "$T_WORK/e1.jsonl" "$T_WORK/e2.jsonl" "$H0" "$HE" <<'PY'
import json, sys
ids = []
for path in sys.argv[1:3]:
    for l in open(path):
        if l.strip():
            e = json.loads(l)
            if e.get("event") == "open":
                continue
            if e.get("event") == "snapshot" or e.get("status"):
                print("unexpected %s" % e); sys.exit(0)
            ids.append(int(e["id"]))
h0, he = int(sys.argv[3]), int(sys.argv[4])
want = list(range(h0 + 1, he + 1))
print("ok %d" % len(ids) if ids == want else "got %d ids %s..%s, want %d..%d (missing %s, repeated %s)" % (
    len(ids), ids[:1], ids[-1:], h0 + 1, he, sorted(set(want) - set(ids))[:5],
    sorted(i for i in set(ids) if ids.count(i) > 1)[:5]))
PY
)
case $got in
ok*) t_pass "an event watcher moved from B to C with Last-Event-ID $LE got each of the stream's events once, in order (${got#ok } events)" ;;
*) t_fail "an event watcher moved from B to C" "$got" ;;
esac
if python3 tests/deployments/watch_check.py "$T_WORK/w1.jsonl" "$T_WORK/w2.jsonl" "$T_WORK/final.json" >"$T_WORK/check.out" 2>&1; then
	t_pass "a watcher that moved from A to C with Last-Event-ID $L missed nothing, without a snapshot ($(head -2 "$T_WORK/check.out" | tr '\n' ' '))"
else
	t_fail "a watcher that moved from A to C" "$(cat "$T_WORK/check.out")"
fi
t_sql "SELECT id || ' ' || extract(epoch FROM at) FROM event_stream WHERE models IS NOT NULL ORDER BY id" \
	>"$T_WORK/route-events.txt"
# For the last update C's watcher got (the fifth replica routed): the time
# since the commit of the last event that could change a route up to it.
lat=$(python3 - "$T_WORK/w2.jsonl" "$T_WORK/route-events.txt" <<'PY'
import json, sys
ups = [e for e in (json.loads(l) for l in open(sys.argv[1]) if l.strip()) if e["event"] == "update"]
evs = [(int(a), float(b)) for a, b in (l.split() for l in open(sys.argv[2]) if l.strip())]
if not ups:
    print("none"); sys.exit(0)
u = ups[-1]
cause = [at for i, at in evs if i <= int(u["id"])]
print("%.0f" % ((u["t"] - cause[-1]) * 1000) if cause else "none")
PY
)
case $lat in
none) t_fail "the last change reached C's watcher" "no update after the commit" ;;
*) [ "$lat" -lt 1000 ] && t_pass "a replica made ready through A's fleet reached C's watcher ${lat} ms after its commit" ||
	t_fail "C heard of the change at once" "${lat} ms after the commit" ;;
esac

# The singleton duties: kill -9 the holder; another takes them within the
# reconciler's period (5 s) and a second of slack.
leader_of() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/metrics" |
	sed -n 's/^nova_singleton_leader \([0-9]*\).*/\1/p'; }
holder=
for who in A B C; do
	eval "port=\$P$who"
	[ "$(leader_of "$port")" = 1 ] && holder=$who
done
[ -n "$holder" ] && t_pass "one novad holds the singleton duties ($holder)" || t_fail "a holder" "none of the three says so"
if [ -n "$holder" ]; then
	eval "pid=\$${holder}_PID"
	kill -9 "$pid"; wait "$pid" 2>/dev/null
	t0=$(date +%s%N)
	new=
	while [ -z "$new" ] && [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 10000 ]; do
		for who in A B C; do
			[ "$who" = "$holder" ] && continue
			eval "port=\$P$who"
			[ "$(leader_of "$port")" = 1 ] && new=$who
		done
		sleep 0.1
	done
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ -n "$new" ] && [ "$ms" -le 6000 ] && t_pass "after kill -9 of $holder, $new holds the duties ${ms} ms later" ||
		t_fail "the duties moved within the reconciler's period" "${new:-nobody} after ${ms} ms"
	case $holder in
	A) novads_restart_a 127.0.0.1 ;;
	B) novads_start B 127.0.0.1 "$PB" ;;
	C) novads_start C 127.0.0.1 "$PC" ;;
	esac
	agree "after $holder was killed and started again" 5
fi
exit 0
