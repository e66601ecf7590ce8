#!/bin/sh
# Nova under a real Prometheus (Debian's package, unpacked privately when
# not installed): etc/prometheus's example config passes promtool check
# config, its alerting rules promtool check rules and their unit tests
# (nova-rules.test.yml); a Prometheus server run from that config against
# a live novad (with a read-scoped key, in a file) scrapes it, and PromQL
# through its HTTP API reads novad's values back. Bounded: 60 s at most.
. tests/support/lib.sh
nova_start || { t_fail "novad starts" "$(tail -5 "$T_WORK/novad.log")"; exit 0; }
export NOVA_TOKEN=$(cat "$NOVA_STATE_DIR/admin_token")
if ! PROMTOOL=$(t_deb_tool prometheus usr/bin/promtool) ||
   ! PROMETHEUS=$(t_deb_tool prometheus usr/bin/prometheus); then
	t_fail "prometheus and promtool are available" "see above"; exit 0
fi
"$PROMTOOL" check rules etc/prometheus/nova-rules.yml >"$T_WORK/out" 2>&1 &&
	t_pass "promtool check rules accepts nova-rules.yml" ||
	t_fail "promtool check rules accepts nova-rules.yml" "$(cat "$T_WORK/out")"
(cd etc/prometheus && "$PROMTOOL" test rules nova-rules.test.yml) >"$T_WORK/out" 2>&1 &&
	t_pass "the alerting rules' unit tests pass (promtool test rules)" ||
	t_fail "the alerting rules' unit tests pass" "$(cat "$T_WORK/out")"

# The example as an operator installs it: the key in its file, the target
# this novad.
key=$("$B/novactl" apikey create prometheus --scope read -o json | sed -n 's/.*"key": *"\([^"]*\)".*/\1/p')
[ -n "$key" ] || { t_fail "a read key for Prometheus" "$(cat "$T_WORK/novad.log" | tail -3)"; exit 0; }
mkdir -p "$T_WORK/prom"
printf '%s' "$key" >"$T_WORK/prom/nova-read.key"
chmod 0600 "$T_WORK/prom/nova-read.key"
hostport=${NOVA_URL#http://}
sed -e "s|/etc/prometheus/nova-read.key|$T_WORK/prom/nova-read.key|" \
	-e "s|\"127.0.0.1:7070\"|\"$hostport\"|" -e "s|scrape_interval: 15s|scrape_interval: 1s|" \
	-e "s|evaluation_interval: 15s|evaluation_interval: 1s|" etc/prometheus/prometheus.yml >"$T_WORK/prom/prometheus.yml"
cp etc/prometheus/nova-rules.yml "$T_WORK/prom/"
"$PROMTOOL" check config "$T_WORK/prom/prometheus.yml" >"$T_WORK/out" 2>&1 &&
	t_pass "promtool check config accepts the example (its key file in place)" ||
	t_fail "promtool check config accepts the example" "$(cat "$T_WORK/out")"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PROMETHEUS" --config.file="$T_WORK/prom/prometheus.yml" --storage.tsdb.path="$T_WORK/prom/data" \
	--web.listen-address="127.0.0.1:$port" >"$T_WORK/prom/log" 2>&1 &
PROM_PID=$!
trap 'kill $PROM_PID 2>/dev/null; wait $PROM_PID 2>/dev/null; t_cleanup' EXIT
# query EXPR: the first sample's value of an instant query, or nothing.
query() {
	curl -s -G "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$1" |
		python3 -c 'import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'
}
i=0 up= info=
while [ $i -lt 60 ]; do
	up=$(query 'up{job="novad"}')
	info=$(query "nova_build_info{version=\"$(cat VERSION)\"}")
	[ "$up" = 1 ] && [ "$info" = 1 ] && break
	kill -0 $PROM_PID 2>/dev/null || break
	i=$((i + 1)); sleep 1
done
[ "$up" = 1 ] && t_pass "Prometheus scrapes novad with the read key (up = 1)" ||
	t_fail "Prometheus scrapes novad" "up=$up; $(tail -5 "$T_WORK/prom/log")"
[ "$info" = 1 ] && t_pass "PromQL reads novad's nova_build_info back through Prometheus's API" ||
	t_fail "PromQL reads nova_build_info back" "'$info'"
# A scrape is counted once answered: the first one shows in the second.
i=0
while [ $i -lt 20 ]; do
	v=$(query 'sum(nova_http_requests_total{route="/metrics",status="200"})')
	[ -n "$v" ] && break
	i=$((i + 1)); sleep 1
done
[ -n "$v" ] && [ "${v%%.*}" -ge 1 ] && t_pass "PromQL sees novad count Prometheus's own scrapes ($v)" ||
	t_fail "PromQL sees the scrapes counted" "'$v'"

# nova-mock-engine's page passes promtool too, after a completion (a 5-byte prompt: one partial block, one miss).
"$B/nova-mock-engine" --port-file "$T_WORK/engine.port" >"$T_WORK/engine.log" 2>&1 &
ENGINE_PID=$!
trap 'kill $PROM_PID $ENGINE_PID 2>/dev/null; wait $PROM_PID $ENGINE_PID 2>/dev/null; t_cleanup' EXIT
i=0; while [ ! -s "$T_WORK/engine.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
eport=$(cat "$T_WORK/engine.port")
curl -s -o /dev/null "http://127.0.0.1:$eport/v1/completions" -d '{"model":"mock-model","prompt":"hello","max_tokens":2}'
curl -s "http://127.0.0.1:$eport/metrics" >"$T_WORK/engine.metrics"
grep -q '^nova_engine_prefix_cache_misses_total 1$' "$T_WORK/engine.metrics" &&
	"$PROMTOOL" check metrics <"$T_WORK/engine.metrics" >"$T_WORK/out" 2>&1 &&
	t_pass "nova-mock-engine's /metrics passes promtool check metrics" ||
	t_fail "nova-mock-engine's /metrics passes promtool check metrics" "$(cat "$T_WORK/out" "$T_WORK/engine.metrics" | head -20)"
exit 0
