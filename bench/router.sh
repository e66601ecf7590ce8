#!/bin/sh
# The router's benchmarks (issue 15), sourced by bench/run.sh: `BENCH_ONLY=router
# make bench` runs them all, `BENCH_ONLY=router-prefix make bench` one. Run
# directly, `sh bench/router.sh [BUILD]` is a shortcut for the former on an
# already built tree (default build/bench).
#
# Everything is private and on loopback: nova-router's table and keys come
# from tests/router/fake_novad.py (no novad, no database), its replicas are
# nova-mock-engine processes or, where the proxy itself is measured, a
# private nginx answering POST /v1/chat/completions with a fixed
# chat.completion (the fastest engine there can be, so the proxy in front
# is what is measured, not the engine); the ceiling is nginx `proxy_pass`
# to the same upstream, keep-alive both sides (bench/nginx.sh's
# nginx_proxy_start), and a request straight to the upstream. One loop
# each (nova-router --threads 1, nginx worker_processes 1) unless
# BENCH_ROUTER_THREADS says otherwise, so the comparison is per core.
#
#   router-proxy   closed loop (median of BENCH_ROUTER_REPEAT runs each,
#                  alternating): router / nginx req/s, target >= 0.8; then
#                  paced at BENCH_ROUTER_RATE (5,000/s): p99 through the
#                  router minus p99 direct, target < 1 ms
#   router-ttft    streamed (SSE) from one mock engine, paced: p99 of the
#                  time to the first body byte (the first token) through the
#                  router minus direct, target < 1 ms
#   router-large   220 KB prompts, closed loop: req/s through the router,
#                  target >= 2,000/s; through nginx and direct beside it
#   router-conc    BENCH_ROUTER_STREAMS (5,000) streams opened at once (one
#                  per connection) over 8 mock engines: all complete, the
#                  router's VmHWM < 200 MiB
#   router-prefix  150 tenants, a 6,000-token prefix each, 8 mock engines
#                  with a prefix cache for a fraction of them: P90 TTFT with
#                  --policy round-robin / prefix >= 10; with no shared
#                  prefixes, prefix / least-loaded <= 1
#   router-kill    one of 4 replicas SIGKILLed under load: no failure among
#                  requests started after the kill; ejected (the router's
#                  nova_router_ejections_total), and from its first failure
#                  (the router's log: nothing else fails on it until its
#                  1 s backoff runs out)

if [ -z "${NOVA_BENCH_RUN:-}" ]; then
	cd "$(dirname "$0")/.." || exit 1
	exec env BENCH_ONLY="${BENCH_ONLY:-router}" BENCH_BUILD="${1:-build/bench}" sh bench/run.sh
fi

RT_SECS=${BENCH_ROUTER_SECONDS:-5}
RT_CONNS=${BENCH_ROUTER_CONNECTIONS:-64}
RT_THREADS=${BENCH_ROUTER_THREADS:-1}
RT_REPEAT=${BENCH_ROUTER_REPEAT:-3}
RT_RATE=${BENCH_ROUTER_RATE:-5000}
RT_TTFT_RATE=${BENCH_ROUTER_TTFT_RATE:-500}
RT_STREAMS=${BENCH_ROUTER_STREAMS:-5000}
RT_TENANTS=${BENCH_ROUTER_TENANTS:-150}
RT_PREFIX_RATE=${BENCH_ROUTER_PREFIX_RATE:-40}
RT_KEY=sk-nova-bench-router-0123456789abcdef
RT_FAKE_PID= RT_ROUTER_PID= RT_ENGINE_PIDS= RT_NGINX_PIDS=
RT_NGINX_WORKERS=$RT_THREADS
[ "$RT_THREADS" = 0 ] && RT_NGINX_WORKERS=auto

rt_stop_all() {
	rt_router_stop
	rt_engines_stop
	for rt_p in $RT_NGINX_PIDS; do kill -QUIT "$rt_p" 2>/dev/null; done
	RT_NGINX_PIDS=
	[ -n "$RT_FAKE_PID" ] && kill "$RT_FAKE_PID" 2>/dev/null
	RT_FAKE_PID=
}

rt_port() { echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000)); }

# rt_nginx_engine DIR: the upstream, an nginx answering every request with a
# fixed chat.completion (the body of a request is read and dropped); sets
# RT_UP.
rt_nginx_engine() {
	d=$1
	mkdir -p "$d/tmp"
	chmod 0755 "$d" "$d/tmp"
	body='{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
	for try in 1 2 3 4 5; do
		RT_UP=$(rt_port)
		cat >"$d/nginx.conf" <<EOF
$([ "$(id -u)" -eq 0 ] && echo "user nobody nogroup;")
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_max_body_size 8m;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    default_type application/json;
    server {
        listen 127.0.0.1:$RT_UP;
        location / { return 200 '$body'; }
    }
}
EOF
		rm -f "$d/nginx.pid"
		if "$(nginx_bench_bin)" -p "$d" -c "$d/nginx.conf" 2>"$d/start.err"; then
			i=0; while [ ! -s "$d/nginx.pid" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
			RT_NGINX_PIDS="$RT_NGINX_PIDS $(cat "$d/nginx.pid")"
			return 0
		fi
	done
	return 1
}

# rt_nginx_proxy DIR UPSTREAM [LOCATION]: nginx proxy_pass to the upstream
# block's body UPSTREAM on a free port, keep-alive both sides; sets RT_PX
# and RT_PX_PID.
rt_nginx_proxy() {
	for try in 1 2 3 4 5; do
		RT_PX=$(rt_port)
		if NGINX_PROXY_WORKERS=$RT_NGINX_WORKERS nginx_proxy_start "$1" "127.0.0.1:$RT_PX" \
			"$2 keepalive_requests 100000000;" \
			"keepalive_requests 100000000; keepalive_timeout 300s; client_max_body_size 8m; client_body_buffer_size 1m; ${3:-}"; then
			chmod 0755 "$1" "$1/tmp"
			RT_PX_PID=$NGINX_PROXY_PID
			RT_NGINX_PIDS="$RT_NGINX_PIDS $NGINX_PROXY_PID"
			return 0
		fi
	done
	return 1
}

# rt_nginx_stop PID: that nginx stopped (its workers done), and forgotten.
rt_nginx_stop() {
	kill -QUIT "$1" 2>/dev/null
	i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
	kill -KILL "$1" 2>/dev/null
	rt_left=
	for rt_p in $RT_NGINX_PIDS; do [ "$rt_p" = "$1" ] || rt_left="$rt_left $rt_p"; done
	RT_NGINX_PIDS=$rt_left
}

# rt_engines_start N [nova-mock-engine flags]: N mock engines serving model
# m; RT_ENGINE_PORTS and RT_ENGINE_PIDS in order.
rt_engines_start() {
	n=$1; shift
	RT_ENGINE_PORTS= RT_ENGINE_PIDS=
	for rt_k in $(seq "$n"); do
		rm -f "$W/engine-$rt_k.port"
		NOVA_LOG_LEVEL=warn "$B/nova-mock-engine" --model m --port-file "$W/engine-$rt_k.port" "$@" \
			>/dev/null 2>>"$OUT/router-engines.log" &
		RT_ENGINE_PIDS="$RT_ENGINE_PIDS $!"
	done
	for rt_k in $(seq "$n"); do
		wait_file "$W/engine-$rt_k.port" 10 || return 1
		RT_ENGINE_PORTS="$RT_ENGINE_PORTS $(cat "$W/engine-$rt_k.port")"
	done
}

rt_engines_stop() {
	for rt_p in $RT_ENGINE_PIDS; do kill -TERM "$rt_p" 2>/dev/null; done
	for rt_p in $RT_ENGINE_PIDS; do wait "$rt_p" 2>/dev/null; done
	RT_ENGINE_PIDS= RT_ENGINE_PORTS=
}

# rt_table PORT...: the stand-in novad's state, model m on those replicas
# (the watch's snapshot is what a router starting now learns).
rt_table() {
	eps= rt_k=0
	for rt_p in "$@"; do
		rt_k=$((rt_k + 1))
		eps="$eps${eps:+, }{\"url\": \"http://127.0.0.1:$rt_p\", \"replica\": \"r$rt_k\", \"load\": null}"
	done
	hash=$(printf '%s' "$RT_KEY" | sha256sum | cut -d' ' -f1)
	cat >"$W/fake-state.json.tmp" <<EOF
{"keys": {"keys": [{"hash": "$hash", "scopes": ["inference"], "expires_at": null}]},
 "routes": {"version": 1, "routes": [{"model": "m", "adapter": null, "endpoints": [$eps]}]},
 "watch": [{"id": 1, "event": "snapshot", "data": {"version": 1, "routes": [{"model": "m", "adapter": null, "endpoints": [$eps]}]}}]}
EOF
	mv "$W/fake-state.json.tmp" "$W/fake-state.json"
	if [ -z "$RT_FAKE_PID" ]; then
		rm -f "$W/fake.port"
		python3 tests/router/fake_novad.py "$W/fake-state.json" >"$W/fake.port" 2>>"$OUT/router-fake.log" &
		RT_FAKE_PID=$!
		i=0; while [ ! -s "$W/fake.port" ] && [ $i -lt 100 ]; do i=$((i + 1)); sleep 0.05; done
		[ -s "$W/fake.port" ] || return 1
	fi
}

# rt_router_start LABEL [nova-router flags]: a router on the current table;
# waits until a request through it is answered. Sets RT_PORT; 1 when it
# did not start (its log's last lines in RT_ROUTER_ERR).
rt_router_start() {
	label=$1; shift
	rm -f "$W/router.port"
	NOVA_TOKEN=x "$B/nova-router" --gateway "http://127.0.0.1:$(cat "$W/fake.port")" \
		--listen 127.0.0.1:0 --log-level warn "$@" >"$W/router.port" 2>"$OUT/router-$label.log" &
	RT_ROUTER_PID=$!
	i=0
	while [ ! -s "$W/router.port" ]; do
		if ! kill -0 "$RT_ROUTER_PID" 2>/dev/null || [ $i -gt 100 ]; then
			RT_ROUTER_ERR=$(head -n 1 "$OUT/router-$label.log")
			rt_router_stop
			return 1
		fi
		i=$((i + 1)); sleep 0.05
	done
	RT_PORT=$(head -n 1 "$W/router.port")
	i=0
	until curl -sf -o /dev/null -H "Authorization: Bearer $RT_KEY" -H 'Content-Type: application/json' \
		-d '{"model":"m","messages":[{"role":"user","content":"warm"}],"max_tokens":1}' \
		"http://127.0.0.1:$RT_PORT/v1/chat/completions"; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			RT_ROUTER_ERR="no answer through the router: $(head -n 1 "$OUT/router-$label.log")"
			rt_router_stop
			return 1
		fi
		sleep 0.1
	done
}

rt_router_stop() {
	[ -n "$RT_ROUTER_PID" ] || return 0
	kill -TERM "$RT_ROUTER_PID" 2>/dev/null
	wait "$RT_ROUTER_PID" 2>/dev/null
	RT_ROUTER_PID=
}

# rt_metric NAME: a sample of the router's /metrics (no labels).
rt_metric() {
	curl -s "http://127.0.0.1:$RT_PORT/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'
}
# rt_kib FIELD: VmRSS or VmHWM of the router, in KiB.
rt_kib() { sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$RT_ROUTER_PID/status" 2>/dev/null; }
mib() { awk -v k="$1" 'BEGIN { if (k != "") printf "%.1f", k / 1024 }'; }
# why_join A B: the reasons that are not empty, joined by "; ".
why_join() {
	if [ -n "$1" ] && [ -n "$2" ]; then echo "$1; $2"; else echo "$1$2"; fi
}
# rt_minus A B: A - B, three decimals; empty when either is.
rt_minus() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.3f", a - b }'; }

# rt_lg LABEL PORT [loadgen options]: one loadgen run with the key, its
# JSON in $OUT/LABEL.json. Bodies go in files (-B): a JSON body in a
# variable expanded unquoted would be split and globbed.
rt_lg() {
	label=$1 port=$2; shift 2
	"$LG" -T "127.0.0.1:$port" -m POST -p /v1/chat/completions \
		-H "Authorization: Bearer $RT_KEY" -l "$label" -o "$OUT/$label.json" "$@" 2>>"$OUT/$label.err"
}

# --- router-proxy and router-large: the router against nginx proxy_pass ---------------
rt_bench_proxy() {
	echo "bench: router-proxy, router-large (nova-router vs nginx proxy_pass, $RT_CONNS connections," \
		"$RT_THREADS loop(s))"
	if ! rt_nginx_engine "$W/rt-up" ||
	   ! rt_nginx_proxy "$W/rt-px" "server 127.0.0.1:$RT_UP; keepalive 256;" || ! rt_table "$RT_UP" ||
	   ! rt_router_start proxy --threads "$RT_THREADS"; then
		broken=1; row router-proxy "router vs nginx proxy_pass" "" "" "" "" "" \
			"broken: ${RT_ROUTER_ERR:-nginx or the stand-in novad did not start}"
		rt_stop_all
		return
	fi
	want router-proxy && rt_proxy_rows
	want router-large && rt_large_rows
	rt_stop_all
}

rt_proxy_rows() {
	printf '%s' '{"model":"m","messages":[{"role":"user","content":"hi {seq}"}],"max_tokens":2}' >"$W/small.json"
	common="-c $RT_CONNS -d $RT_SECS -w 1 -B $W/small.json"
	# Closed loop, alternating, so a slow spell of the machine falls on
	# both; the medians are compared.
	for k in $(seq "$RT_REPEAT"); do
		rt_lg "router-proxy-nginx-$k" "$RT_PX" $common
		rt_lg "router-proxy-router-$k" "$RT_PORT" $common
	done
	rt_lg router-proxy-direct "$RT_UP" $common
	c=$(jmedian rps "$OUT/router-proxy-nginx-"[0-9]*.json)
	v=$(jmedian rps "$OUT/router-proxy-router-"[0-9]*.json); r=$(ratio "$v" "$c")
	e=$(cat "$OUT/router-proxy-router-"[0-9]*.json | sed -n 's/.*"errors": \([0-9]*\).*/\1/p' |
		awk '{ s += $1 } END { print s + 0 }')
	res=$(verdict ge "$r" 0.8); [ "$e" = 0 ] || res="miss ($e errors)"
	row router-proxy "closed loop, req/s (median of $RT_REPEAT)" "$v" "/s" "$c" "$r" ">= 0.8 x nginx" "$res"
	row router-proxy "closed loop, direct to the upstream, req/s" "$(jnum "$OUT/router-proxy-direct.json" rps)" \
		"/s" "" "" "" ""
	# Paced: the same offered load three ways; latency from when each
	# request was due (loadgen's --rate).
	paced="-c $RT_CONNS -d $RT_SECS -w 1 -r $RT_RATE -B $W/small.json"
	rt_lg router-proxy-paced-direct "$RT_UP" $paced
	rt_lg router-proxy-paced-nginx "$RT_PX" $paced
	rt_lg router-proxy-paced-router "$RT_PORT" $paced
	d=$(jnum "$OUT/router-proxy-paced-direct.json" p99_ms)
	pr=$(jnum "$OUT/router-proxy-paced-router.json" p99_ms)
	pn=$(jnum "$OUT/router-proxy-paced-nginx.json" p99_ms)
	a=$(rt_minus "$pr" "$d")
	e=$(jnum "$OUT/router-proxy-paced-router.json" errors)
	u=$(jnum "$OUT/router-proxy-paced-router.json" unfinished)
	res=$(verdict lt "$a" 1); [ "$e" = 0 ] && [ "$u" = 0 ] || res="miss ($e errors, $u unfinished)"
	row router-proxy "paced $RT_RATE/s, added p99 over direct" "$a" "ms" "$(rt_minus "$pn" "$d")" "" "< 1 ms" "$res"
	row router-proxy "paced $RT_RATE/s, p99 router / nginx / direct" "$pr" "ms" "$pn" "" "" "direct $d ms"
	if [ -n "${BENCH_ROUTER_PERF:-}" ]; then
		# 999 Hz: the default event has no PMU on a virtual machine.
		perf record -F 999 -g -o "$BENCH_ROUTER_PERF" -p "$RT_ROUTER_PID" -- sleep "$RT_SECS" \
			>/dev/null 2>&1 &
		rt_tool=$!
		rt_lg router-proxy-perf "$RT_PORT" $common
		wait "$rt_tool" # not a bare wait: the router and the stand-in novad are children too
	fi
	if [ -n "${BENCH_ROUTER_STRACE:-}" ]; then
		timeout -s INT 3 strace -c -f -o "$BENCH_ROUTER_STRACE" -p "$RT_ROUTER_PID" >/dev/null 2>&1 &
		rt_tool=$!
		rt_lg router-proxy-strace "$RT_PORT" $common
		wait "$rt_tool"
	fi
}

rt_large_rows() {
	# 220 KB of prompt (225,280 bytes of content), the same upstream
	# (it reads and drops the body), closed loop.
	awk 'BEGIN { printf "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"{seq} ";
		for (i = 0; i < 225280 / 64; i++) printf "%s", "the quick brown fox jumps over the lazy dog, and so it goes on: ";
		printf "\"}],\"max_tokens\":2}" }' >"$W/large.json"
	size=$(wc -c <"$W/large.json")
	large="-c $RT_CONNS -d $RT_SECS -w 1 -B $W/large.json"
	rt_lg router-large-nginx "$RT_PX" $large
	rt_lg router-large-router "$RT_PORT" $large
	rt_lg router-large-direct "$RT_UP" $large
	v=$(jnum "$OUT/router-large-router.json" rps)
	c=$(jnum "$OUT/router-large-nginx.json" rps)
	e=$(jnum "$OUT/router-large-router.json" errors)
	res=$(verdict ge "$v" 2000); [ "$e" = 0 ] || res="miss ($e errors)"
	row router-large "$size B bodies, req/s (ceiling: nginx)" "$v" "/s" "$c" "$(ratio "$v" "$c")" \
		">= 2000/s" "$res"
	row router-large "$size B bodies, direct to the upstream, req/s" \
		"$(jnum "$OUT/router-large-direct.json" rps)" "/s" "" "" "" ""
	row router-large "$size B bodies, p99 router / nginx" "$(jnum "$OUT/router-large-router.json" p99_ms)" \
		"ms" "$(jnum "$OUT/router-large-nginx.json" p99_ms)" "" "" ""
}

# --- router-ttft: the first token through the router and direct -------------------------
rt_bench_ttft() {
	echo "bench: router-ttft (streamed, paced $RT_TTFT_RATE/s, one mock engine)"
	# 4 tokens, the first after 20 ms, then 100/s: a stream lasts ~50 ms.
	if ! rt_engines_start 1 --latency-ms 20 --tokens-per-second 100 || ! rt_table $RT_ENGINE_PORTS ||
	   ! rt_router_start ttft --threads "$RT_THREADS"; then
		broken=1; row router-ttft "streamed TTFT" "" "" "" "" "" "broken: ${RT_ROUTER_ERR:-see $OUT}"
		rt_stop_all
		return
	fi
	up=${RT_ENGINE_PORTS# }
	printf '%s' '{"model":"m","messages":[{"role":"user","content":"hi {seq}"}],"max_tokens":4,"stream":true}' \
		>"$W/ttft.json"
	ttft="-c $RT_CONNS -d $RT_SECS -w 1 -r $RT_TTFT_RATE -B $W/ttft.json"
	for k in $(seq "$RT_REPEAT"); do
		rt_lg "router-ttft-direct-$k" "$up" $ttft -e '[DONE]'
		rt_lg "router-ttft-router-$k" "$RT_PORT" $ttft -e '[DONE]'
	done
	d=$(jmedian ttfb_p99_ms "$OUT/router-ttft-direct-"[0-9]*.json)
	v=$(jmedian ttfb_p99_ms "$OUT/router-ttft-router-"[0-9]*.json)
	a=$(rt_minus "$v" "$d")
	e=$(cat "$OUT/router-ttft-router-"[0-9]*.json | sed -n 's/.*"errors": \([0-9]*\).*/\1/p' |
		awk '{ s += $1 } END { print s + 0 }')
	res=$(verdict lt "$a" 1); [ "$e" = 0 ] || res="miss ($e errors)"
	row router-ttft "added p99 TTFT over direct (medians of $RT_REPEAT)" "$a" "ms" "" "" "< 1 ms" "$res"
	row router-ttft "p99 TTFT, router / direct" "$v" "ms" "$d" "" "" ""
	row router-ttft "p50 TTFT, router / direct" "$(jmedian ttfb_p50_ms "$OUT/router-ttft-router-"[0-9]*.json)" \
		"ms" "$(jmedian ttfb_p50_ms "$OUT/router-ttft-direct-"[0-9]*.json)" "" "" ""
	rt_stop_all
}

# --- router-conc: thousands of streams open at once ---------------------------------------
rt_bench_conc() {
	echo "bench: router-conc ($RT_STREAMS streams at once over 8 mock engines)"
	# Descriptors: the router holds two per stream, loadgen one, the
	# engines one each; as root the hard limit is raised too.
	ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	# 20 tokens at 2/s: each stream lasts about 10 s, longer than opening
	# all of them takes, so all are open at once.
	printf 'max_upstream_connections: %d\nmax_connections: %d\n' $((RT_STREAMS * 2)) $((RT_STREAMS * 2)) \
		>"$W/router-conc.yaml"
	if ! rt_engines_start 8 --latency-ms 20 --tokens-per-second 2 || ! rt_table $RT_ENGINE_PORTS ||
	   ! rt_router_start conc --threads "$RT_THREADS" --config "$W/router-conc.yaml"; then
		broken=1; row router-conc "$RT_STREAMS concurrent streams" "" "" "" "" "" "broken: ${RT_ROUTER_ERR:-see $OUT}"
		rt_stop_all
		return
	fi
	idle=$(rt_kib VmRSS)
	printf '%s' '{"model":"m","messages":[{"role":"user","content":"stream {seq}"}],"max_tokens":20,"stream":true}' \
		>"$W/conc.json"
	rt_lg router-conc "$RT_PORT" -c "$RT_STREAMS" -d 60 --once -e '[DONE]' -B "$W/conc.json" &
	lgpid=$!
	: >"$OUT/router-conc-samples.txt"
	while kill -0 "$lgpid" 2>/dev/null; do
		printf '%s %s\n' "$(rt_metric nova_router_in_flight)" "$(rt_kib VmRSS)" >>"$OUT/router-conc-samples.txt"
		sleep 0.5
	done
	wait "$lgpid"
	hwm=$(rt_kib VmHWM)
	# Where it is: the router's largest mappings, with the streams over.
	awk '/^[0-9a-f]+-/ { m = $6 } /^Rss:/ { print $2, (m == "" ? "[anon]" : m) }' \
		"/proc/$RT_ROUTER_PID/smaps" | sort -rn | head -n 20 >"$OUT/router-conc-smaps.txt"
	peak=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$OUT/router-conc-samples.txt")
	ok=$(sed -n 's/.*"200": \([0-9]*\).*/\1/p' "$OUT/router-conc.json")
	e=$(jnum "$OUT/router-conc.json" errors)
	u=$(jnum "$OUT/router-conc.json" unfinished)
	be=$(jnum "$OUT/router-conc.json" body_errors)
	# A 200 whose stream did not end with [DONE] was cut short: not complete.
	ok=$(awk -v s="${ok:-0}" -v e="${be:-0}" 'BEGIN { print s - e }')
	row router-conc "streams completed of $RT_STREAMS" "$ok" "" "" "" "$RT_STREAMS" \
		"$(if [ "$ok" = "$RT_STREAMS" ]; then echo pass; else echo "miss ($e errors, $u unanswered)"; fi)"
	row router-conc "router VmHWM" "$(mib "$hwm")" "MiB" "" "" "< 200 MiB" "$(verdict lt "$(mib "$hwm")" 200)"
	row router-conc "streams open at once, peak (sampled)" "$peak" "" "" "" "" ""
	row router-conc "router VmRSS idle" "$(mib "$idle")" "MiB" "" "" "" ""
	rt_stop_all
}

# --- router-prefix: prefix affinity against round robin and least-loaded --------------------
# 150 tenants, each with its own 6,000-token system prompt (24,000 bytes:
# the mock engine counts 4 bytes a token), then a question of its own per
# request; tenants take turns ({i} of 150). The engines' prefix cache: 64-
# byte blocks (16 tokens, vLLM's block size), 1.6 ms of prefill per
# uncached block (10,000 prompt tokens/s: a 6,000-token prompt costs
# 600 ms uncached), room for 15,000 blocks (40 tenants' prefixes, 27% of
# them; spread by affinity each engine needs about 19). Paced at
# BENCH_ROUTER_PREFIX_RATE (40/s), streamed, 2 tokens; the figure is the P90
# of the time to the first token, after a warm-up in which every tenant
# has been seen. Fresh engines (cold caches) for every run.
rt_bench_prefix() {
	echo "bench: router-prefix ($RT_TENANTS tenants x 6,000-token prefixes, 8 mock engines)"
	filler=$(awk 'BEGIN { for (i = 0; i < 24000 / 48; i++) printf "%s", "shared system prompt of a tenant, 48 bytes long " }')
	printf '{"model":"m","messages":[{"role":"system","content":"tenant {i}: %s"},{"role":"user","content":"question {seq}"}],"max_tokens":2,"stream":true}' \
		"$filler" >"$W/prefix-shared.json"
	printf '{"model":"m","messages":[{"role":"system","content":"request {seq}: %s"},{"role":"user","content":"question"}],"max_tokens":2,"stream":true}' \
		"$filler" >"$W/prefix-unique.json"
	# rt_prefix_run LABEL POLICY BODY: P90 TTFT in $OUT/router-prefix-LABEL.json,
	# the engines' cache hit rate in RT_HITS; 1 when the router did not
	# start. POLICY nginx-hash or nginx-rr: nginx in the router's place,
	# hashing on the tenant (the affinity a perfect prefix policy would
	# have here) or round robin; the workload's own ceiling.
	rt_prefix_run() {
		RT_HITS=
		rt_engines_start 8 --latency-ms 20 --tokens-per-second 50 --prefix-block-bytes 64 \
			--uncached-block-us 1600 --prefix-cache-blocks 15000 || return 2
		case $2 in
		nginx-*)
			ups=
			for rt_p in $RT_ENGINE_PORTS; do ups="$ups server 127.0.0.1:$rt_p;"; done
			[ "$2" = nginx-hash ] && ups="$ups hash \$http_x_tenant consistent;"
			if ! rt_nginx_proxy "$W/prefix-$1" "$ups keepalive 64;" "proxy_buffering off;"; then
				rt_engines_stop
				return 2
			fi
			rt_to=$RT_PX
			;;
		*)
			rt_table $RT_ENGINE_PORTS || return 2
			if ! rt_router_start "prefix-$1" --threads "$RT_THREADS" --policy "$2"; then
				rt_engines_stop
				return 1
			fi
			rt_to=$RT_PORT
			;;
		esac
		rt_lg "router-prefix-$1" "$rt_to" -c 64 -N "$RT_TENANTS" -d $((RT_SECS * 2)) -w 5 \
			-r "$RT_PREFIX_RATE" -e '[DONE]' -H 'X-Tenant: {i}' -B "$3"
		for rt_p in $RT_ENGINE_PORTS; do curl -s "http://127.0.0.1:$rt_p/metrics"; done \
			>"$OUT/router-prefix-$1-engines.txt"
		RT_HITS=$(awk '$1 == "nova_engine_prefix_cache_hits_total" { h += $2 }
			$1 == "nova_engine_prefix_cache_misses_total" { m += $2 }
			END { if (h + m) printf "%.3f", h / (h + m) }' "$OUT/router-prefix-$1-engines.txt")
		case $2 in nginx-*) rt_nginx_stop "$RT_PX_PID" ;; *) rt_router_stop ;; esac
		rt_engines_stop
	}
	# rt_prefix_p90 LABEL POLICY BODY: the run, its P90 (RT_P90) or why not (RT_WHY).
	rt_prefix_p90() {
		RT_P90= RT_WHY= RT_ROUTER_ERR=
		rt_prefix_run "$@"
		case $? in
		0)
			e=$(jnum "$OUT/router-prefix-$1.json" errors)
			RT_P90=$(jnum "$OUT/router-prefix-$1.json" ttfb_p90_ms)
			[ "$e" = 0 ] || RT_WHY="$e errors"
			;;
		1) RT_WHY="not run: nova-router with --policy $2 did not start ($RT_ROUTER_ERR)" ;;
		*) RT_WHY="broken: the engines or the stand-in novad did not start"; broken=1 ;;
		esac
	}
	rt_prefix_p90 shared-prefix prefix "$W/prefix-shared.json"
	pf_p90=$RT_P90 pf_why=$RT_WHY pf_hits=$RT_HITS
	rt_prefix_p90 shared-round-robin round-robin "$W/prefix-shared.json"
	rr_p90=$RT_P90 rr_why=$RT_WHY rr_hits=$RT_HITS
	pf_r=$(ratio "$rr_p90" "$pf_p90")
	res=$(why_join "$pf_why" "$rr_why"); [ -n "$res" ] || res=$(verdict ge "$pf_r" 10)
	row router-prefix "shared prefixes, P90 TTFT, prefix (ceil: rr)" "$pf_p90" "ms" "$rr_p90" "$pf_r" \
		">= 10 x better" "$res"
	row router-prefix "shared prefixes, cache hit rate, prefix / rr" "$pf_hits" "" "$rr_hits" "" "" ""
	rt_prefix_p90 shared-nginx-hash nginx-hash "$W/prefix-shared.json"
	nh_p90=$RT_P90 nh_why=$RT_WHY nh_hits=$RT_HITS
	rt_prefix_p90 shared-nginx-rr nginx-rr "$W/prefix-shared.json"
	nr_p90=$RT_P90 nr_why=$RT_WHY nr_hits=$RT_HITS
	row router-prefix "the workload: P90, nginx by tenant (ceil: rr)" "$nh_p90" "ms" "$nr_p90" \
		"$(ratio "$nr_p90" "$nh_p90")" "" "$(why_join "$nh_why" "$nr_why")"
	row router-prefix "the workload: hit rate, nginx by tenant / rr" "$nh_hits" "" "$nr_hits" "" "" ""
	rt_prefix_p90 unique-prefix prefix "$W/prefix-unique.json"
	pf_p90=$RT_P90 pf_why=$RT_WHY
	rt_prefix_p90 unique-least-loaded least-loaded "$W/prefix-unique.json"
	ll_p90=$RT_P90 ll_why=$RT_WHY
	pf_r=$(ratio "$pf_p90" "$ll_p90")
	res=$(why_join "$pf_why" "$ll_why"); [ -n "$res" ] || res=$(verdict ge 1 "$pf_r")
	row router-prefix "no shared prefix, P90 TTFT, prefix (ceil: ll)" "$pf_p90" "ms" "$ll_p90" "$pf_r" \
		"<= 1.0 x ll" "$res"
	rt_stop_all
}

# --- router-kill: a replica SIGKILLed under load -----------------------------------------
rt_bench_kill() {
	echo "bench: router-kill (one of 4 mock engines SIGKILLed under load)"
	# Non-streamed, 100 ms each (the engine's first-token latency), 32
	# connections closed loop: about 8 requests in flight on each replica.
	if ! rt_engines_start 4 --latency-ms 100 || ! rt_table $RT_ENGINE_PORTS ||
	   ! rt_router_start kill --threads "$RT_THREADS"; then
		broken=1; row router-kill "replica killed" "" "" "" "" "" "broken: ${RT_ROUTER_ERR:-see $OUT}"
		rt_stop_all
		return
	fi
	ej0=$(rt_metric nova_router_ejections_total)
	printf '%s' '{"model":"m","messages":[{"role":"user","content":"hi {seq}"}],"max_tokens":1}' >"$W/kill.json"
	rt_lg router-kill "$RT_PORT" -c 32 -d $((RT_SECS + 2)) -B "$W/kill.json" -f "$OUT/router-kill-failures.txt" &
	lgpid=$!
	sleep 2
	victim=$(echo $RT_ENGINE_PIDS | cut -d' ' -f 1)
	tkill=$(date +%s.%N)
	kill -KILL "$victim"
	wait "$lgpid"
	ej=$(rt_metric nova_router_ejections_total)
	uf=$(rt_metric nova_router_upstream_failures_total)
	rtr=$(rt_metric nova_router_retries_total)
	after=$(awk -v t="$tkill" '$1 > t' "$OUT/router-kill-failures.txt" | wc -l)
	before=$(awk -v t="$tkill" '$1 <= t' "$OUT/router-kill-failures.txt" | wc -l)
	n=$(jnum "$OUT/router-kill.json" requests)
	row router-kill "failed among requests started after the kill" "$after" "" "" "" "0" \
		"$(verdict [ "$after" = 0 ])"
	row router-kill "failed among requests in flight at the kill" "$before" "" "" "" "" "of $n requests"
	ejd=$(awk -v a="$ej" -v b="${ej0:-0}" 'BEGIN { if (a != "") print a - b }')
	row router-kill "ejections (nova_router_ejections_total)" "$ejd" "" "" "" ">= 1" \
		"$(verdict ge "${ejd:-0}" 1)"
	# The router's log has a line per failed attempt ("replica failed"),
	# by replica: the victim's first failure ejects it when nothing more
	# fails on it until its first backoff (1 s) runs out, only the requests
	# already in flight, which fail together (within 50 ms).
	grep '"replica failed' "$OUT/router-kill.log" | grep '"replica":"r1"' |
		sed -n 's/.*"ts":"[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9.]*\)Z".*/\1 \2 \3/p' |
		awk '{ print ($1 * 3600 + $2 * 60 + $3) * 1000 }' >"$OUT/router-kill-victim-ms.txt"
	set -- $(awk 'NR == 1 { t0 = $1 } { d = $1 - t0 } d < 50 { burst++ } d >= 50 && d < 950 { mid++ }
		END { print burst + 0, mid + 0, NR }' "$OUT/router-kill-victim-ms.txt")
	res=$(verdict [ "${2:-x}" = 0 ]); [ "${3:-0}" -gt 0 ] || res="miss (no failure on the victim seen)"
	row router-kill "victim: failures 50-950 ms after its first" "${2:-}" "" "" "" "0" "$res"
	row router-kill "victim: failures within 50 ms of its first" "${1:-}" "" "" "" "" "in flight at the kill"
	row router-kill "victim: failures in all, router retries" "${3:-}" "" "$rtr" "" "" \
		"upstream failures $uf"
	rt_stop_all
}

bench_router() {
	RT_ROUTER_ERR=
	if want router-proxy || want router-large; then
		if nginx_bench_ensure; then
			rt_bench_proxy
		else
			broken=1; row router-proxy "router vs nginx proxy_pass" "" "" "" "" "" "broken: no nginx"
		fi
	fi
	if want router-ttft; then rt_bench_ttft; fi
	if want router-conc; then rt_bench_conc; fi
	if want router-prefix; then rt_bench_prefix; fi
	if want router-kill; then rt_bench_kill; fi
}
