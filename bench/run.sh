#!/bin/sh
# `make bench`: every benchmark of this tree in one run, each figure against
# a ceiling measured in the same run on the same machine, printed as a table
# and written as JSON to $BENCH_BUILD/results.json (raw results beside it).
# Benchmarks are not tests: a missed target prints "miss", and the run still
# exits 0; only a benchmark that could not run at all makes it exit 1.
#
# Knobs (environment):
#   BENCH_BUILD       the release build directory (default build/bench)
#   BENCH_SECONDS     measured seconds per HTTP run (default 10)
#   BENCH_WARMUP      seconds before measuring (default 2)
#   BENCH_ROUTE_MODELS, BENCH_ROUTE_REPLICAS   route table size (1000 x 10)
#   BENCH_ROUTE_CONNS connections for route reads (default 32)
#   BENCH_HB_NODES    simulated nodes for heartbeats, a list (default "10000 100000")
#   BENCH_HB_CONNS    connections for heartbeats (default 256)
#   BENCH_ONLY        run only benchmarks whose name contains this word
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
BENCH_BUILD=${BENCH_BUILD:-build/bench}
B=$(cd "$BENCH_BUILD" && pwd) || exit 1
SECS=${BENCH_SECONDS:-10}
WARM=${BENCH_WARMUP:-2}
ROUTE_MODELS=${BENCH_ROUTE_MODELS:-1000}
ROUTE_REPLICAS=${BENCH_ROUTE_REPLICAS:-10}
ROUTE_CONNS=${BENCH_ROUTE_CONNS:-32}
HB_NODES=${BENCH_HB_NODES:-10000 100000}
HB_CONNS=${BENCH_HB_CONNS:-256}
HB_INTERVAL_MS=2000 # novad's default heartbeat interval (NOVA_HEARTBEAT_INTERVAL_MS)
ONLY=${BENCH_ONLY:-}
LG="$B/bench/loadgen"
OUT="$B/results"
rm -rf "$OUT"; mkdir -p "$OUT"
umask 077
W=$(mktemp -d /tmp/nova-bench.XXXXXX)
chmod 0755 "$W"
ROWS="$OUT/rows.tsv"
: >"$ROWS"
broken=0

. tests/support/pg.sh
. bench/nginx.sh

NOVA_PID=
cleanup() {
	nova_bench_stop
	nginx_bench_stop
	pg_test_stop
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

want() { case "$1" in *"$ONLY"*) return 0 ;; esac; return 1; }
# jnum FILE KEY: a number from one of loadgen's (or bench_placement's) JSON lines.
jnum() { sed -n "s/.*\"$2\": \([0-9.][0-9.]*\).*/\1/p" "$1" | head -n 1; }
# row BENCHMARK FIGURE VALUE UNIT CEILING RATIO TARGET RESULT
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$ROWS"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 < b + 0) }'; }
verdict() { if "$@"; then echo pass; else echo miss; fi; }
psql_db() { db=$1; shift; psql -h "$NOVA_TEST_PGHOST" -U nova -d "$db" -v ON_ERROR_STOP=1 -qAt "$@"; }

# nova_bench_start DB: a release novad on a fresh database of the run's
# cluster, logging warnings only (the nginx ceiling has its access log off).
nova_bench_start() {
	psql -h "$NOVA_TEST_PGHOST" -U nova -d postgres -qc "CREATE DATABASE $1" >/dev/null || return 1
	NOVA_DB=$1
	export NOVA_STATE_DIR="$W/state-$1"
	mkdir -p "$NOVA_STATE_DIR"
	NOVA_LISTEN=127.0.0.1:0 NOVA_DATABASE_URL="host=$NOVA_TEST_PGHOST dbname=$1 user=nova" \
		NOVA_LOG_LEVEL=warn "$B/novad" >>"$OUT/novad-$1.log" 2>&1 &
	NOVA_PID=$!
	i=0
	while [ ! -s "$NOVA_STATE_DIR/novad.url" ]; do
		kill -0 "$NOVA_PID" 2>/dev/null || { tail -n 20 "$OUT/novad-$1.log" >&2; return 1; }
		i=$((i + 1)); [ $i -gt 300 ] && return 1
		sleep 0.1
	done
	NOVA_URL=$(cat "$NOVA_STATE_DIR/novad.url")
	NOVA_PORT=${NOVA_URL##*:}
	# The admin token goes to loadgen in a file (never on a command line).
	printf 'admin %s\n' "$(cat "$NOVA_STATE_DIR/admin_token")" >"$W/admin.nodes"
	printf 'header = "Authorization: Bearer %s"\n' "$(cat "$NOVA_STATE_DIR/admin_token")" >"$W/admin.curl"
}

nova_bench_stop() {
	[ -n "$NOVA_PID" ] || return 0
	kill -TERM "$NOVA_PID" 2>/dev/null
	wait "$NOVA_PID" 2>/dev/null
	NOVA_PID=
}

# --- the ceiling -----------------------------------------------------------------
NGINX=0
if want routes || want heartbeat; then
	if nginx_bench_ensure && nginx_bench_start "$W/nginx"; then
		NGINX=1
		echo "bench: nginx ceiling on 127.0.0.1:$NGINX_BENCH_PORT"
	else
		echo "bench: no nginx ceiling; HTTP ratios are left empty" >&2
	fi
	pg_test_start || { echo "bench: no PostgreSQL" >&2; exit 1; }
fi

# --- placement -----------------------------------------------------------------------
if want placement; then
	echo "bench: placement (10,000 nodes, 100,000 replicas, in process)"
	"$B/bench/bench_placement" --nodes 10000 --replicas 100000 >"$OUT/placement.json"
	v=$(jnum "$OUT/placement.json" placements_per_s)
	if [ -n "$v" ]; then
		row placement "placements/s, 10,000 nodes" "$v" "/s" "" "" ">= 100000/s" "$(verdict ge "$v" 100000)"
	else
		broken=1; row placement "placements/s" "" "" "" "" ">= 100000/s" "broken"
	fi
fi

# --- route reads ---------------------------------------------------------------------
if want routes; then
	echo "bench: route reads ($ROUTE_MODELS models x $ROUTE_REPLICAS replicas)"
	if nova_bench_start bench_routes &&
	   psql_db "$NOVA_DB" -v models="$ROUTE_MODELS" -v replicas="$ROUTE_REPLICAS" \
		-f bench/fixture_routes.sql >/dev/null; then
		# The routes thread rebuilds every 250 ms: wait for the whole table.
		i=0
		while :; do
			curl -s -K "$W/admin.curl" -D "$W/routes.head" -o "$W/routes.json" "$NOVA_URL/v1/routes"
			n=$(grep -o '"model":' "$W/routes.json" | wc -l)
			[ "$n" -ge "$ROUTE_MODELS" ] && break
			i=$((i + 1)); [ $i -gt 600 ] && break
			sleep 0.1
		done
		etag=$(sed -n 's/^[Ee][Tt]ag: *\(.*\)\r$/\1/p' "$W/routes.head")
		size=$(wc -c <"$W/routes.json")
		echo "bench: routing table ready: $n routes, $size bytes"
		common="-c $ROUTE_CONNS -d $SECS -w $WARM"
		"$LG" -T "127.0.0.1:$NOVA_PORT" $common -n "$W/admin.nodes" -p /v1/routes \
			-H 'Authorization: Bearer {token}' -l novad-routes -o "$OUT/routes-novad.json"
		"$LG" -T "127.0.0.1:$NOVA_PORT" $common -n "$W/admin.nodes" -p /v1/routes \
			-H 'Authorization: Bearer {token}' -H "If-None-Match: $etag" \
			-l novad-routes-304 -o "$OUT/routes-novad-304.json"
		c200= c304=
		if [ $NGINX = 1 ]; then
			cp "$W/routes.json" "$W/nginx/www/routes.json"
			chmod 0644 "$W/nginx/www/routes.json"
			netag=$(curl -sI "http://127.0.0.1:$NGINX_BENCH_PORT/routes.json" |
				sed -n 's/^[Ee][Tt]ag: *\(.*\)\r$/\1/p')
			"$LG" -T "127.0.0.1:$NGINX_BENCH_PORT" $common -p /routes.json \
				-l nginx-static -o "$OUT/routes-nginx.json"
			"$LG" -T "127.0.0.1:$NGINX_BENCH_PORT" $common -p /routes.json \
				-H "If-None-Match: $netag" -l nginx-static-304 -o "$OUT/routes-nginx-304.json"
			c200=$(jnum "$OUT/routes-nginx.json" rps)
			c304=$(jnum "$OUT/routes-nginx-304.json" rps)
		fi
		v=$(jnum "$OUT/routes-novad.json" rps); r=$(ratio "$v" "$c200")
		e=$(jnum "$OUT/routes-novad.json" errors)
		res=$(verdict ge "$r" 0.5); [ "$e" = 0 ] || res="miss ($e errors)"
		row routes "GET /v1/routes, $size B, req/s" "$v" "/s" "$c200" "$r" ">= 0.5 x nginx" "$res"
		row routes "GET /v1/routes, p99" "$(jnum "$OUT/routes-novad.json" p99_ms)" "ms" \
			"$(jnum "$OUT/routes-nginx.json" p99_ms 2>/dev/null)" "" "" ""
		v=$(jnum "$OUT/routes-novad-304.json" rps); r=$(ratio "$v" "$c304")
		e=$(jnum "$OUT/routes-novad-304.json" errors)
		res=$(verdict ge "$r" 0.5); [ "$e" = 0 ] || res="miss ($e errors)"
		n304=$(sed -n 's/.*"304": \([0-9]*\).*/\1/p' "$OUT/routes-novad-304.json")
		[ -n "$n304" ] || res="miss (no 304)"
		row routes "GET /v1/routes If-None-Match (304), req/s" "$v" "/s" "$c304" "$r" ">= 0.5 x nginx" "$res"
	else
		broken=1; row routes "GET /v1/routes" "" "" "" "" "" "broken: see $OUT"
	fi
	nova_bench_stop
fi

# --- heartbeat ingest -------------------------------------------------------------------
# Two runs per fleet size, on novad and on nginx alike: a closed loop (every
# connection sends again as soon as it has its answer) gives the most each
# can take, for the throughput ratio; a paced run at the fleet's real rate
# (N nodes every interval, 2 s) gives the p99 a fleet of that size would see.
if want heartbeat; then
	for N in $HB_NODES; do
		echo "bench: heartbeat ingest ($N nodes over $HB_CONNS connections)"
		rate=$((N * 1000 / HB_INTERVAL_MS))
		body='{"seq":{seq},"assignment_generation":"none","capacity":{"accelerator_type":"A100-80G","accelerators":8}}'
		hb() { # hb PORT LABEL [loadgen options]
			port=$1 label=$2; shift 2
			"$LG" -T "127.0.0.1:$port" -c "$HB_CONNS" -d "$SECS" -w "$WARM" -n "$W/hb.nodes" \
				-m POST -p '/v1/nodes/{id}/heartbeat' -H 'Authorization: Bearer {token}' \
				-b "$body" -l "$label" -o "$OUT/heartbeat-$N-$label.json" "$@"
		}
		if nova_bench_start "bench_hb_$N" &&
		   psql_db "$NOVA_DB" -v nodes="$N" -F ' ' -f bench/fixture_heartbeats.sql \
			-o "$W/hb.nodes" >/dev/null; then
			t0=$(psql_db "$NOVA_DB" -c "SELECT now()")
			hb "$NOVA_PORT" novad
			hb "$NOVA_PORT" novad-paced -r "$rate"
			# One flush period (500 ms) and some: every node must have advanced.
			sleep 2
			adv=$(psql_db "$NOVA_DB" -c \
				"SELECT count(*) FROM nodes WHERE last_heartbeat_at >= '$t0'::timestamptz")
			nova_bench_stop
			c= cp99=
			if [ $NGINX = 1 ]; then
				hb "$NGINX_BENCH_PORT" nginx
				hb "$NGINX_BENCH_PORT" nginx-paced -r "$rate"
				c=$(jnum "$OUT/heartbeat-$N-nginx.json" rps)
				cp99=$(jnum "$OUT/heartbeat-$N-nginx-paced.json" p99_ms)
			fi
			f="$OUT/heartbeat-$N-novad.json"
			v=$(jnum "$f" rps); r=$(ratio "$v" "$c")
			row heartbeat "$N nodes, closed loop, req/s" "$v" "/s" "$c" "$r" ">= 0.5 x nginx" \
				"$(verdict ge "$r" 0.5)"
			row heartbeat "$N nodes, closed loop, p99" "$(jnum "$f" p99_ms)" "ms" \
				"$(jnum "$OUT/heartbeat-$N-nginx.json" p99_ms 2>/dev/null)" "" "" ""
			fp="$OUT/heartbeat-$N-novad-paced.json"
			p=$(jnum "$fp" p99_ms)
			row heartbeat "$N nodes, paced $rate/s, p99" "$p" "ms" "$cp99" "" "< 5 ms" "$(verdict lt "$p" 5)"
			e=$(awk -v a="$(jnum "$f" errors)" -v b="$(jnum "$fp" errors)" \
				'BEGIN { if (a == "" || b == "") print ""; else print a + b }')
			row heartbeat "$N nodes, errors (both runs)" "$e" "" "" "" "0" "$(verdict [ "$e" = 0 ])"
			row heartbeat "$N nodes, last_heartbeat_at advanced" "$adv" "nodes" "" "" "$N" \
				"$(verdict [ "$adv" = "$N" ])"
			rm -f "$W/hb.nodes"
		else
			broken=1; row heartbeat "$N nodes" "" "" "" "" "" "broken: see $OUT"
			nova_bench_stop
		fi
	done
fi

# --- the table and the JSON ---------------------------------------------------------------
{
	printf '%-10s %-46s %12s %-6s %12s %7s %-16s %s\n' benchmark figure value unit ceiling ratio target result
	awk -F '\t' '{ printf "%-10s %-46s %12s %-6s %12s %7s %-16s %s\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$ROWS"
} | tee "$OUT/table.txt"
machine="$(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
# JSON by hand (awk), so the benchmark needs no jq: numbers stay numbers,
# empty cells are null.
awk -F '\t' -v machine="$machine" -v date="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	-v commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" -v seconds="$SECS" '
	function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
	function v(s) { if (s == "") return "null"; if (s ~ /^-?[0-9]+(\.[0-9]+)?$/) return s; return q(s) }
	BEGIN { printf "{\"date\": %s, \"commit\": %s, \"machine\": %s, \"seconds_per_run\": %s, \"results\": [", q(date), q(commit), q(machine), seconds }
	{ printf "%s\n  {\"benchmark\": %s, \"figure\": %s, \"value\": %s, \"unit\": %s, \"ceiling\": %s, \"ratio\": %s, \"target\": %s, \"result\": %s}", (NR > 1 ? "," : ""), q($1), q($2), v($3), q($4), v($5), v($6), q($7), q($8) }
	END { print "\n]}" }' "$ROWS" >"$B/results.json"
echo "bench: results in $B/results.json (raw loadgen output in $OUT/)"
exit $broken
