#!/bin/sh
# An engine whose load series carry labels, as vLLM's do
# (vllm:num_requests_waiting{engine="0",model_name="..."}): the sidecar reads
# them, summed over the label sets (the fullest KV cache taken), and the
# load reaches the heartbeat and /v1/routes. Before, only unlabelled series
# were matched and every hint read 0. The engine is a small stand-in that
# serves /health and a vLLM-shaped /metrics, run in mock-agent mode.
set -u
. tests/support/lib.sh
export NOVA_HEARTBEAT_INTERVAL_MS=500 NOVA_NODE_FAILED_AFTER_MS=60000
nova_start || { t_fail "novad starts" "see log"; exit 0; }
C="$B/novactl"
t_fake_deploy || { t_fail "placed" "no"; exit 0; }

ENGINE="$T_WORK/vllm-like-engine"
cat >"$ENGINE" <<'EOF'
#!/usr/bin/env python3
# A stand-in for vLLM's OpenAI server: /health, and /metrics with vLLM's
# series names and labels (two data-parallel engines), CRLF line ends.
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port = int(sys.argv[sys.argv.index("--port") + 1])
M = 'model_name="/models/Llama-3.1-8B-Instruct"'
TEXT = "\r\n".join([
    "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
    "# TYPE vllm:num_requests_waiting gauge",
    'vllm:num_requests_waiting{engine="0",%s} 5.0' % M,
    'vllm:num_requests_waiting{engine="1",%s} 2.0' % M,
    "# TYPE vllm:num_requests_running gauge",
    'vllm:num_requests_running{engine="0",%s} 3.0' % M,
    "# TYPE vllm:kv_cache_usage_perc gauge",
    'vllm:kv_cache_usage_perc{engine="0",%s} 0.5' % M,
    'vllm:kv_cache_usage_perc{engine="1",%s} 0.625' % M,
    "# TYPE vllm:cache_config_info gauge",
    'vllm:cache_config_info{block_size="16",cache_dtype="auto",num_gpu_blocks="1000"} 1.0',
    "# TYPE vllm:time_to_first_token_seconds histogram",
    'vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",%s} 4.0' % M,
    'vllm:time_to_first_token_seconds_sum{engine="0",%s} 1.0' % M,
    'vllm:time_to_first_token_seconds_count{engine="0",%s} 4.0' % M,
    ""]).encode()
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status":"ok"}' if self.path == "/health" else TEXT
        self.send_response(200 if self.path in ("/health", "/metrics") else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
chmod +x "$ENGINE"

"$B/nova-sidecar" --gateway "$NOVA_URL" --node-id "$T_NODE" --token "$T_TOKEN" \
	--mock-engine "$ENGINE" >>"$T_WORK/sidecar.log" 2>&1 &
SC_PID=$!
trap 'kill -9 $SC_PID 2>/dev/null; pkill -f "$ENGINE --port" 2>/dev/null; t_cleanup' EXIT

load() { "$C" -o json routes 2>/dev/null | tr -d ' \n' | sed -n 's/.*"load":{\([^}]*\)}.*/\1/p' | head -1; }
i=0; l=; while ! echo "$l" | grep -q '"queue_depth":7' && [ $i -lt 100 ]; do l=$(load); i=$((i + 1)); sleep 0.2; done
case "$l" in *'"queue_depth":7'*) t_pass "the labelled waiting series of both engines reach the routes, summed (5 + 2)" ;;
*) t_fail "labelled queue depth" "load {$l}; $(tail -3 "$T_WORK/sidecar.log")" ;; esac
case "$l" in *'"kv_cache_usage":0.625'*) t_pass "KV-cache use is the fullest engine's (0.625)" ;;
*) t_fail "kv_cache_usage" "load {$l}" ;; esac
case "$l" in *'"running":3'*) t_pass "running requests are reported" ;;
*) t_fail "running" "load {$l}" ;; esac
case "$l" in *'"inflight_tokens":18000'*) t_pass "tokens in flight are the blocks in use times the block size ((500 + 625) x 16)" ;;
*) t_fail "inflight_tokens" "load {$l}" ;; esac
case "$l" in *'"ttft_ms":250'*) t_pass "time to first token is the histogram's mean (1 s over 4)" ;;
*) t_fail "ttft_ms" "load {$l}" ;; esac
# novad keeps the heartbeat's load as it came: the node's replica report.
[ "$(t_sql "SELECT count(*) FROM replicas WHERE state = 'ready'")" = 1 ] &&
	t_pass "the replica is ready on the stand-in engine" ||
	t_fail "ready" "$(t_sql "SELECT state FROM replicas")"
kill -TERM $SC_PID; wait $SC_PID
exit 0
