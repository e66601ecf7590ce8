#!/bin/sh
# A model's engine.mock (models/model.h) reaches nova-mock-engine: a sidecar
# in mock-agent mode passes each member as the engine's flag, and the engine
# behaves so (max_num_seqs 1: of two requests one runs and one waits, as
# its /metrics says; error_percent 34: the third request is answered 500).
# A spec the engine would refuse is refused at registration, naming the
# field.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"

cat >"$T_WORK/bad.yaml" <<EOM
name: mock-cap
kind: single
engine: {command: [serve], mock: {max_num_seqs: 100001}}
stages: [{name: main, accelerators: 1}]
EOM
"$C" model register -f "$T_WORK/bad.yaml" >"$T_WORK/out" 2>&1 && t_fail "out of range refused" "registered" ||
	{ grep -q "engine.mock.max_num_seqs" "$T_WORK/out" && t_pass "an engine.mock value out of range is refused naming it" ||
		t_fail "out of range names the field" "$(cat "$T_WORK/out")"; }
sed -i 's/max_num_seqs: 100001/error_percent: 101/' "$T_WORK/bad.yaml"
"$C" model register -f "$T_WORK/bad.yaml" >"$T_WORK/out" 2>&1 && t_fail "error_percent 101 refused" "registered" ||
	{ grep -q "engine.mock.error_percent" "$T_WORK/out" && t_pass "error_percent over 100 is refused naming it" ||
		t_fail "error_percent 101 names the field" "$(cat "$T_WORK/out")"; }

cat >"$T_WORK/model.yaml" <<EOM
name: mock-cap
kind: single
engine:
  command: [serve]
  mock: {max_num_seqs: 1, total_tokens_per_second: 40, startup_ms: 100, latency_ms: 30, error_percent: 34}
stages: [{name: main, accelerators: 1}]
EOM
"$C" model register -f "$T_WORK/model.yaml" >/dev/null || { t_fail "register" "$(cat "$T_WORK/model.yaml")"; exit 0; }
"$C" pool create p --provider fake --config '{"state_file":"provider.json"}' >/dev/null
"$C" deploy mock-cap --pool p --name cap >/dev/null
t_wait_sql "SELECT count(*) FROM replicas WHERE state = 'placed'" 1 || { t_fail "placed" "no"; exit 0; }
T_NODE=$(t_sql "SELECT id FROM nodes")
T_TOKEN=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$NOVA_STATE_DIR/fake/provider.json")

"$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token "$T_TOKEN" \
	--mock-engine "$B/nova-mock-engine" >>"$T_WORK/sidecar.log" 2>&1 &
SC_PID=$!
# Its engine dies with it (PR_SET_PDEATHSIG).
trap 'kill -9 $SC_PID 2>/dev/null; t_cleanup' EXIT

t_wait_routed 20 mock-cap || { t_fail "routed" "$(tail -3 "$T_WORK/sidecar.log")"; exit 0; }
url=$(sed -n 's/.*"url": "\(http[^"]*\)".*/\1/p' "$T_WORK/out" | head -1)
args=$(pgrep -af "$B/nova-mock-engine --port .* --model mock-cap")
for f in "--max-num-seqs 1" "--total-tokens-per-second 40" "--startup-ms 100" "--latency-ms 30" \
	"--error-percent 34"; do
	case "$args" in *"$f"*) t_pass "the engine is started with $f" ;;
	*) t_fail "engine flag $f" "$args" ;; esac
done

# Two requests of 40 tokens at 40 tokens/s: with one sequence at a time,
# one runs about a second while the other waits.
CURLS=
for i in 1 2; do
	curl -s "$url/v1/completions" -d '{"model":"mock-cap","prompt":"hello there","max_tokens":40}' \
		>"$T_WORK/c$i" 2>&1 &
	CURLS="$CURLS $!"
done
# The load reaches the routes: the tokens the running request holds while
# the two are served, then the p95 of their times to first token.
lf() { "$C" -o json routes --model mock-cap 2>/dev/null | sed -n "s/.*\"$1\": \([0-9.e+]*\).*/\1/p" | head -1; }
held=
(i=0; while [ $i -lt 40 ]; do v=$(lf inflight_tokens); case "$v" in ''|0|0.0) ;; *) echo "$v"; exit 0 ;; esac
	i=$((i + 1)); sleep 0.05; done) >"$T_WORK/held" &
HELD=$!
i=0; m=
while [ $i -lt 40 ]; do
	m=$(curl -s "$url/metrics")
	echo "$m" | grep -qx "nova_engine_requests_running 1" && echo "$m" | grep -qx "nova_engine_queue_depth 1" && break
	i=$((i + 1)); sleep 0.05
done
echo "$m" | grep -qx "nova_engine_requests_running 1" && echo "$m" | grep -qx "nova_engine_queue_depth 1" &&
	t_pass "max_num_seqs 1 holds: one request runs, the other waits" ||
	t_fail "one runs, one waits" "$(echo "$m" | grep -e running -e queue_depth)"
wait $CURLS
wait $HELD
held=$(cat "$T_WORK/held")
[ -n "$held" ] && t_pass "the heartbeat's load carries the tokens in flight ($held)" ||
	t_fail "inflight_tokens in the routes" "$("$C" -o json routes --model mock-cap | grep -A9 '"load"')"
i=0; p95=
while [ $i -lt 40 ]; do p95=$(lf ttft_p95_ms); [ -n "$p95" ] && break; i=$((i + 1)); sleep 0.1; done
case "$p95" in ''|0|0.0) t_fail "ttft_p95_ms in the routes" "$("$C" -o json routes --model mock-cap | grep -A9 '"load"')" ;;
*) t_pass "and the p95 of the time to first token ($p95 ms)" ;; esac
grep -q '"completion_tokens":40' "$T_WORK/c1" && grep -q '"completion_tokens":40' "$T_WORK/c2" &&
	t_pass "both requests complete" || t_fail "both complete" "$(cat "$T_WORK/c1" "$T_WORK/c2")"
# error_percent 34: request k fails when floor(34k/100) steps up, first at
# k = 3 (1.02), so the two above pass and the next one fails.
code=$(curl -s -o "$T_WORK/c3" -w '%{http_code}' "$url/v1/completions" \
	-d '{"model":"mock-cap","prompt":"x","max_tokens":1}')
[ "$code" = 500 ] && grep -q '"code": *"injected"' "$T_WORK/c3" &&
	t_pass "error_percent reaches the engine: the third request is answered 500" ||
	t_fail "the third request fails" "$code $(cat "$T_WORK/c3")"
curl -s "$url/metrics" | grep -qx "nova_engine_request_errors_total 1" &&
	t_pass "and counted in nova_engine_request_errors_total" ||
	t_fail "errors counted" "$(curl -s "$url/metrics" | grep errors)"

kill -TERM $SC_PID; wait $SC_PID
exit 0
