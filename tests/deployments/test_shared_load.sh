#!/bin/sh
# Shared load (issue 20): three novads on one database behind nginx (round
# robin), agents advertised nginx, so each heartbeat of a node lands on any
# of them. An engine made busy (requests queued behind max_num_seqs 1) shows
# its load in every novad's /v1/routes, read on each novad's own port,
# within one heartbeat interval (and a flush period) of the first novad
# that shows it, rising and falling; without shared load the last of the
# three would wait for a heartbeat of its own, two intervals at least.
# Then a soak: NOVA_SHARED_LOAD_SOAK_S seconds (default 600, the issue's
# 10 minutes) of heartbeats spread over the three, with some traffic, in
# which no node leaves ready and no replica leaves any novad's routes.
# The default soak and the setup take over run.sh's usual 600 s; a longer
# soak needs a longer limit here too:
# run.sh timeout: 1080
set -u
. tests/support/lib.sh
. bench/nginx.sh
export NOVA_HEARTBEAT_INTERVAL_MS=${NOVA_HEARTBEAT_INTERVAL_MS:-2000}
IV=$NOVA_HEARTBEAT_INTERVAL_MS
FLUSH_MS=500 # the inventory's flush period (inventory_config_defaults)
SOAK=${NOVA_SHARED_LOAD_SOAK_S:-600}
nginx_bench_ensure || { t_fail "nginx is available" "not installed"; exit 0; }

. tests/support/novads.sh
novads_ports 127.0.0.1
PA=$MN_PA PB=$MN_PB PC=$MN_PC
novads_nginx 127.0.0.1 || { t_fail "nginx starts" "$(cat "$T_WORK/nginx/start.err")"; exit 0; }
LB=$MN_LB
# Which novad took each request, in nginx's access log (the shared
# nginx.conf has none), so the soak can check that every node's heartbeats
# were spread over the three.
NG=$T_WORK/nginx
sed -i "s|access_log off;|log_format up '\$upstream_addr \$request_uri'; access_log $NG/access.log up;|" "$NG/nginx.conf"
"$(nginx_bench_bin)" -p "$NG" -c "$NG/nginx.conf" -s reload 2>"$NG/reload.err" ||
	{ t_fail "nginx logs its upstreams" "$(cat "$NG/reload.err")"; exit 0; }
novads_start_a 127.0.0.1 || { t_fail "novad A starts" "see log"; exit 0; }
TOKEN=$MN_TOKEN
B_PID= C_PID= NOISE_PID=
# The agents are this test's alone: they beat to its nginx's port.
trap 'kill ${NOISE_PID:-} 2>/dev/null; novads_stop; pkill -f "nova-sidecar --gateway $LB " 2>/dev/null; t_cleanup' EXIT
novads_start B 127.0.0.1 "$PB" && novads_start C 127.0.0.1 "$PC" && t_pass "three novads on one database" ||
	{ t_fail "three novads" "$(tail -3 "$T_WORK"/novad-*.log)"; exit 0; }

export NOVA_TOKEN="$TOKEN"
CA="$B/novactl --server http://127.0.0.1:$PA"
# Five nodes (racks of 2, 2 and 1), not six: agents beating at one period
# in a round robin over three novads would, six of them, each hit the same
# novad every time.
topo=$(python3 -c 'import json
racks = "".join("      - id: %d\n        nodes:\n" % r + "".join(
    "          - {name: r%dn%d, chips: 8, accelerator_type: LPU, memory_mib: 230}\n" % (r, n)
    for n in ((1, 2) if r < 3 else (1,))) for r in (1, 2, 3))
print(json.dumps("clusters:\n  - id: 1\n    name: t\n    racks:\n" + racks))')
# One sequence at a time, 5 tokens a second: three requests of 50 tokens
# keep the engine running one and queueing two for 10 s, then one, then none.
cat >"$T_WORK/model.yaml" <<EOM
name: demo
kind: single
engine: {command: [nova-mock-engine, --port, "{port}"], mock: {max_num_seqs: 1, tokens_per_second: 5}}
stages: [{name: main, accelerator_type: LPU, accelerators: 8}]
EOM
$CA pool create racks --provider lpu \
	--config "{\"topology_inline\":$topo,\"allocation\":\"c1r1,c1r2,c1r3\",\"mock_agents\":true}" >/dev/null 2>"$T_WORK/err" &&
	$CA model register -f "$T_WORK/model.yaml" >/dev/null 2>>"$T_WORK/err" &&
	$CA deploy demo --pool racks --replicas 4 --name demo >/dev/null 2>>"$T_WORK/err" &&
	t_pass "an lpu pool, a model and a deployment of 4 replicas" || { t_fail "pool, model, deployment" "$(cat "$T_WORK/err")"; exit 0; }
t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'ready'" 4 90 ||
	{ t_fail "4 replicas ready" "$(t_sql "SELECT string_agg(state || ' ' || state_reason, '; ') FROM replicas")"; exit 0; }

# The poller and prober of the three novads' routes, each on its own port.
cat >"$T_WORK/routes.py" <<'EOP'
import json, sys, threading, time, urllib.request
token, ports = sys.argv[1], sys.argv[2].split(",")
def routes(port):
    req = urllib.request.Request("http://127.0.0.1:%s/v1/routes?model=demo" % port,
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=2) as r:
        body = json.load(r)
    for route in body["routes"]:
        if route.get("model") == "demo" and not route.get("adapter"):
            return route["endpoints"]
    return []
def load_of(eps, replica):
    for ep in eps:
        if ep.get("replica") == replica:
            return ep.get("load") or {}
    return None
def post(url, tokens):
    req = urllib.request.Request(url + "/v1/completions", method="POST",
        data=json.dumps({"model": "demo", "prompt": "x", "max_tokens": tokens}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=120).read()
    except Exception as e:
        print("request failed: %s" % e, file=sys.stderr)

def spread():
    """Busy one engine, then time when each novad shows the queue rise
    and fall: prints the spreads (ms) between the first and the last."""
    eps = routes(ports[0])
    replica, url = eps[0]["replica"], eps[0]["url"]
    t0 = time.time()
    for _ in range(3):
        threading.Thread(target=post, args=(url, 50), daemon=True).start()
        time.sleep(0.05)
    def first_times(pred, deadline):
        seen = {}
        while len(seen) < len(ports) and time.time() < deadline:
            for p in ports:
                if p in seen:
                    continue
                try:
                    l = load_of(routes(p), replica)
                except Exception:
                    continue
                if l is not None and pred(l):
                    seen[p] = time.time()
            time.sleep(0.05)
        return seen
    rise = first_times(lambda l: l.get("queue_depth", 0) >= 1, t0 + 20)
    fall = first_times(lambda l: l.get("queue_depth", 1) == 0 and l.get("running", 1) == 0, t0 + 60)
    def show(seen):
        if len(seen) < len(ports):
            return "-1 -1 missing:" + ",".join(p for p in ports if p not in seen)
        v = sorted(seen.values())
        return "%d %d %s" % ((v[-1] - v[0]) * 1000, (v[-1] - t0) * 1000,
                             ",".join("%s:+%d" % (p, (seen[p] - t0) * 1000) for p in ports))
    print(show(rise))
    print(show(fall))

def soak(seconds, want):
    """Poll every novad's routes each second for seconds, with a short
    request to some engine every 2 s: print the gaps (fewer than want
    endpoints on some novad) and the polls made."""
    end, polls, gaps, n = time.time() + seconds, 0, [], 0
    while time.time() < end:
        for p in ports:
            try:
                eps = routes(p)
            except Exception as e:
                gaps.append("%s %s error %s" % (time.strftime("%T"), p, e))
                continue
            polls += 1
            if len(eps) < want:
                gaps.append("%s %s %d endpoints" % (time.strftime("%T"), p, len(eps)))
            if n % 2 == 0 and eps:
                threading.Thread(target=post, args=(eps[n % len(eps)]["url"], 2), daemon=True).start()
        n += 1
        time.sleep(1)
    print("%d %d %s" % (polls, len(gaps), "; ".join(gaps[:3])))

if sys.argv[3] == "spread":
    spread()
else:
    soak(float(sys.argv[4]), int(sys.argv[5]))
EOP
PORTS="$PA,$PB,$PC"
# Every replica routed on all three first.
i=0
while [ $i -lt 100 ]; do
	ok=0
	for p in $PA $PB $PC; do
		n=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$p/v1/routes?model=demo" | grep -o '"url"' | wc -l)
		[ "$n" -eq 4 ] && ok=$((ok + 1))
	done
	[ $ok -eq 3 ] && break
	i=$((i + 1)); sleep 0.2
done
[ $ok -eq 3 ] && t_pass "4 replicas routed on each novad" || { t_fail "4 replicas routed on each novad" "$ok of 3 novads"; exit 0; }
sleep $((IV * 2 / 1000 + 1)) # a few heartbeats through every novad

BOUND=$((IV + FLUSH_MS))
python3 "$T_WORK/routes.py" "$TOKEN" "$PORTS" spread >"$T_WORK/spread" 2>"$T_WORK/spread.err"
set -- $(sed -n 1p "$T_WORK/spread")
rise_spread=${1:--1} rise_all=${2:--1} rise_detail=${3:-}
[ "$rise_spread" -ge 0 ] && [ "$rise_spread" -le "$BOUND" ] &&
	t_pass "a queue that rose is on every novad's routes within $BOUND ms of the first ($rise_spread ms; $rise_detail)" ||
	t_fail "a queue that rose is on every novad's routes within $BOUND ms of the first" "$(sed -n 1p "$T_WORK/spread") $(cat "$T_WORK/spread.err")"
[ "$rise_all" -ge 0 ] && [ "$rise_all" -le $((2 * IV + 1500)) ] &&
	t_pass "and on all three within two intervals of the requests ($rise_all ms)" ||
	t_fail "on all three within two intervals of the requests" "$rise_all ms"
set -- $(sed -n 2p "$T_WORK/spread")
fall_spread=${1:--1} fall_detail=${3:-}
[ "$fall_spread" -ge 0 ] && [ "$fall_spread" -le "$BOUND" ] &&
	t_pass "the engine idle again is on every novad's routes within $BOUND ms of the first ($fall_spread ms; $fall_detail)" ||
	t_fail "the engine idle again is on every novad's routes within $BOUND ms of the first" "$(sed -n 2p "$T_WORK/spread")"

metric() { # PORT NAME: the value of an unlabelled metric
	curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print int($2)}'
}
# The soak: heartbeats of every node over the three, for SOAK seconds.
before=$(t_sql "SELECT count(*) FROM node_events WHERE to_state <> 'ready'")
for p in $PA $PB $PC; do eval "rows0_$p=\$(metric $p nova_inventory_flush_rows_total)"; done
: >"$NG/access.log.soak"
lines0=$(wc -l <"$NG/access.log")
# Other requests through nginx too, at their own period, as an operator's
# checks and CLIs would: they keep the round robin from settling in step.
( while :; do curl -s -o /dev/null "$LB/healthz"; sleep 0.7; done ) &
NOISE_PID=$!
python3 "$T_WORK/routes.py" "$TOKEN" "$PORTS" soak "$SOAK" 4 >"$T_WORK/soak" 2>"$T_WORK/soak.err"
set -- $(cat "$T_WORK/soak")
polls=${1:-0} gaps=${2:--1}
kill "$NOISE_PID" 2>/dev/null; wait "$NOISE_PID" 2>/dev/null
after=$(t_sql "SELECT count(*) FROM node_events WHERE to_state <> 'ready'")
notready=$(t_sql "SELECT count(*) FROM nodes WHERE state NOT IN ('ready', 'terminated')")
[ "$before" = "$after" ] && [ "$notready" -eq 0 ] &&
	t_pass "no node left ready in $SOAK s of heartbeats spread over three novads" ||
	t_fail "no node left ready in $SOAK s" "$(t_sql "SELECT string_agg(from_state || '->' || to_state || ' ' || reason, '; ') FROM node_events WHERE to_state <> 'ready'")"
[ "$gaps" -eq 0 ] && [ "$polls" -gt 0 ] &&
	t_pass "no replica left any novad's routes ($polls polls)" ||
	t_fail "no replica left any novad's routes" "$(cat "$T_WORK/soak")"
# Each node's heartbeats in the soak, by the novad that took them: every
# node's on all three, none taking more than 3/4 of one node's beats.
tail -n +$((lines0 + 1)) "$NG/access.log" | grep '/heartbeat' >"$NG/access.log.soak"
spread=$(python3 -c 'import collections, sys
by = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    up, uri = line.split()[:2]
    by[uri.split("/")[3]][up] += 1
bad = [n for n, c in by.items() if len(c) < 3 or max(c.values()) > 0.75 * sum(c.values())]
print(len(by), len(bad), " ".join("%s:%s" % (n[:8], "/".join(str(v) for v in c.values())) for n, c in by.items()))' "$NG/access.log.soak")
set -- $spread
[ "${1:-0}" -ge 5 ] && [ "${2:-1}" -eq 0 ] &&
	t_pass "every node's heartbeats were spread over the three novads ($spread)" ||
	t_fail "every node's heartbeats were spread over the three novads" "$spread"
spread_ok=0 costs=
for p in $PA $PB $PC; do
	eval "r0=\$rows0_$p"
	r=$(metric $p nova_inventory_flush_rows_total)
	w=$(metric $p nova_inventory_loads_written_total)
	rd=$(metric $p nova_inventory_loads_read_total)
	mg=$(metric $p nova_inventory_loads_merged_total)
	[ $((r - r0)) -gt 0 ] && [ "$rd" -gt 0 ] && spread_ok=$((spread_ok + 1))
	costs="$costs $p: heartbeat rows $r, load rows written $w, read $rd, merged $mg;"
done
[ $spread_ok -eq 3 ] && t_pass "every novad took heartbeats and read the others' loads ($costs )" ||
	t_fail "every novad took heartbeats and read the others' loads" "$costs"
exit 0
