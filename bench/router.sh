#!/bin/sh
# The router benchmark, first cut (issue 15; not yet part of `make bench`):
# nova-router against nginx proxy_pass, both in front of the same upstream
# (a private nginx answering POST /v1/chat/completions with a small JSON
# body, as fast as an engine can be), the same load generator, keep-alive,
# non-streamed; each proxy with one worker (nginx worker_processes 1,
# nova-router --threads 1) so the comparison is per core. The router's table
# and keys come from tests/router/fake_novad.py, so no database is involved.
#
#   sh bench/router.sh [BUILD]      (default build/bench, else build)
# Prints one JSON line per run and the ratio of requests/s.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
B=${1:-build/bench}
[ -x "$B/nova-router" ] || B=build
. bench/nginx.sh
DUR=${BENCH_ROUTER_SECONDS:-5}
CONNS=${BENCH_ROUTER_CONNECTIONS:-64}
W=$(mktemp -d /tmp/nova-bench-router.XXXXXX)
chmod 0755 "$W"
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	for d in up px; do [ -s "$W/$d/nginx.pid" ] && kill -QUIT "$(cat "$W/$d/nginx.pid")" 2>/dev/null; done
	sleep 0.3
	rm -rf "$W"
}
trap cleanup EXIT INT TERM
bin=$(nginx_bench_bin) || { echo "bench: nginx is not installed" >&2; exit 1; }
user_line=
[ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
# nginx_conf DIR PORT LOCATION-BODY [EXTRA-HTTP]
nginx_conf() {
	mkdir -p "$1/tmp"
	cat >"$1/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $1/tmp/body;
    proxy_temp_path $1/tmp/proxy;
    fastcgi_temp_path $1/tmp/fastcgi;
    uwsgi_temp_path $1/tmp/uwsgi;
    scgi_temp_path $1/tmp/scgi;
    default_type application/json;
    ${4:-}
    server {
        listen 127.0.0.1:$2;
        location / { $3 }
    }
}
EOF
	"$bin" -p "$1" -e "$1/error.log" -c "$1/nginx.conf"
}
port() { echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000)); }
UP=$(port); PX=$(port)
BODY='{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
nginx_conf "$W/up" "$UP" "client_body_buffer_size 64k; return 200 '$BODY';" || exit 1
nginx_conf "$W/px" "$PX" "proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\";" \
	"upstream up { server 127.0.0.1:$UP; keepalive 256; }" || exit 1

KEY=sk-nova-bench-0123456789
HASH=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
cat >"$W/state.json" <<EOF
{"keys": {"keys": [{"hash": "$HASH", "scopes": ["inference"], "expires_at": null}]},
 "routes": {"version": 1, "routes": [{"model": "m", "adapter": null, "endpoints": [{"url": "http://127.0.0.1:$UP", "replica": "r1", "load": null}]}]},
 "watch": [{"id": 1, "event": "snapshot", "data": {"version": 1, "routes": [{"model": "m", "adapter": null, "endpoints": [{"url": "http://127.0.0.1:$UP", "replica": "r1"}]}]}}]}
EOF
python3 tests/router/fake_novad.py "$W/state.json" >"$W/fake.port" &
pids="$pids $!"
i=0; while [ ! -s "$W/fake.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
NOVA_TOKEN=x "$B/nova-router" --gateway "http://127.0.0.1:$(cat "$W/fake.port")" --listen 127.0.0.1:0 \
	--threads "${BENCH_ROUTER_THREADS:-1}" --log-level warn >"$W/router.port" 2>"$W/router.log" &
pids="$pids $!"
i=0; while [ ! -s "$W/router.port" ] && [ $i -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
RT=$(head -1 "$W/router.port")
REQ='{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}'
i=0; until curl -sf -o /dev/null "http://127.0.0.1:$RT/v1/chat/completions" -H "Authorization: Bearer $KEY" -d "$REQ"; do
	i=$((i + 1)); [ $i -gt 50 ] && { echo "bench: the router does not answer" >&2; cat "$W/router.log" >&2; exit 1; }; sleep 0.1
done
run() { # LABEL PORT
	"$B/bench/loadgen" --target "127.0.0.1:$2" --connections "$CONNS" --threads 1 --duration "$DUR" \
		--warmup 1 --method POST --path /v1/chat/completions --body "$REQ" \
		--header "Authorization: Bearer $KEY" --header "Content-Type: application/json" --label "$1"
}
run direct "$UP" | tee "$W/direct.json"
run nginx "$PX" | tee "$W/nginx.json"
if [ -n "${BENCH_ROUTER_STRACE:-}" ]; then
	timeout -s INT 3 strace -c -f -o "$BENCH_ROUTER_STRACE" -p "$(echo $pids | awk '{print $2}')" >/dev/null 2>&1 &
fi
if [ -n "${BENCH_ROUTER_PERF:-}" ]; then
	perf record -g -o "$BENCH_ROUTER_PERF" -p "$(echo $pids | awk '{print $2}')" -- sleep "$DUR" >/dev/null 2>&1 &
	perfpid=$!
fi
run router "$RT" | tee "$W/router.json"
[ -n "${BENCH_ROUTER_PERF:-}" ] && wait $perfpid
rps() { sed -n 's/.*"rps": *\([0-9.]*\).*/\1/p' "$1"; }
echo "router/nginx requests/s: $(echo "$(rps "$W/router.json") $(rps "$W/nginx.json")" | awk '{printf "%.2f", $1 / $2}')"
echo "router RSS: $(ps -o rss= -p "$(echo $pids | awk '{print $2}')") KiB"
