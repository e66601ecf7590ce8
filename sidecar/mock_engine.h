/* nova-mock-engine: a small OpenAI-compatible inference engine simulator,
 * the "mock agent" demos and tests run where no real model server can.
 *
 * Serves /v1/models, /v1/chat/completions and /v1/completions (plain JSON or
 * Server-Sent Events with stream: true; stream_options.include_usage adds
 * OpenAI's last chunk with usage), /v1/embeddings (float or base64, as the
 * OpenAI SDKs ask), /health, /metrics (Prometheus text: queue depth,
 * tokens per second, time to first token as a histogram with vLLM's
 * buckets (nova_engine_time_to_first_token_seconds_bucket, _sum, _count),
 * prefix cache hits, misses and use, LoRA loads and evictions), and vLLM's dynamic LoRA endpoints
 * /v1/load_lora_adapter and /v1/unload_lora_adapter. /v1/models lists the
 * base model ("parent": null) and every adapter loaded ("parent": the
 * base model), as vLLM does. Adapters named by --lora-resolve are loaded on
 * first use, as vLLM's LoRA resolver plugins do (see struct
 * mock_engine_config). Tokens come at a configured rate after a
 * configured first-token latency. Faults
 * on demand: exit after N completions (a crash the sidecar must notice),
 * a failing /health (also switchable at run time, POST /admin/health), and
 * a share of failing requests (error_percent: a completion, chat
 * completion or embeddings request otherwise valid is answered 500 with an
 * OpenAI error body, "code": "injected"; also switchable at run time, POST
 * /admin/errors {"percent": N}). The share is spread, not drawn: request k,
 * counted from the start or from the last switch, fails when
 * floor(k*N/100) > floor((k-1)*N/100), so any 100 requests in a row hold
 * exactly N failures and a test asserts counts, not odds. Rejected: a
 * random draw, whose count over a test's hundred requests varies by a
 * handful either way. /metrics counts them in
 * nova_engine_request_errors_total (not in nova_engine_requests_total,
 * which counts the completions served, as crash_after does).
 *
 * A capacity model, so that queue depth and time to first token answer load
 * as a real engine's do: the port opens only after a startup delay (the
 * weights loading: vLLM's server listens once its model is loaded), at most
 * max_num_seqs sequences generate at once (vLLM's --max-num-seqs) while
 * the rest wait in arrival order, their first token after the wait, and
 * the engine's whole token rate (total_tokens_per_second) is shared by the
 * running sequences. /metrics reports the running and the waiting
 * (nova_engine_requests_running; nova_engine_queue_depth is the waiting,
 * as vLLM's num_requests_waiting) and the tokens the running hold
 * (nova_engine_inflight_tokens: each running sequence's prompt tokens,
 * counted as usage counts them, plus the tokens it generated so far; what a
 * real engine's KV cache holds for them). The defaults keep the old
 * engine: no delay, no limit, every sequence at tokens_per_second.
 *
 * A prefix cache, so that routing by prompt prefix has a measurable gain:
 * the prompt's canonical text (core/prompt.h) in blocks of
 * prefix_block_bytes, an LRU of prefix_cache_blocks block hashes; a
 * request's leading blocks found in it are hits, the rest (a trailing
 * partial block included) misses, and the first token waits latency_ms
 * plus uncached_block_us per miss. Usage counts a token per 4 prompt bytes.
 *
 * The admin routes (/admin/...) take only the engine's own admin token
 * (--admin-token, NOVA_MOCK_ADMIN_TOKEN) as "Authorization: Bearer"; 401
 * without it, and without one configured they are off (404). The engine's
 * port is its routed endpoint, open to every client of the router. */
#ifndef NOVA_SIDECAR_MOCK_ENGINE_H
#define NOVA_SIDECAR_MOCK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

#define MOCK_MAX_LORAS 64
#define MOCK_MAX_RESOLVE 256
#define MOCK_LORA_NAME_MAX 128 /* bytes with the NUL */

struct mock_engine_config {
	char listen[128];           /* default 127.0.0.1:0 */
	char model[128];            /* served model id, default "mock-model" */
	char kind[16];              /* model kind; "vision" accepts image parts */
	unsigned tokens_per_second; /* default 50 */
	unsigned latency_ms;        /* time to first token, default 20 */
	unsigned max_tokens;        /* default when a request sets none: 16 */
	unsigned crash_after;       /* exit(3) after this many completions; 0 never */
	bool fail_health;
	unsigned error_percent;     /* requests answered 500, 0..100; default 0 */
	char loras[MOCK_MAX_LORAS][64]; /* static adapters */
	unsigned n_loras;
	unsigned max_loras;         /* dynamic adapters allowed at once; 0: none */
	/* What the engine loads on first use (vLLM's LoRA resolver plugins): a
	 * request naming one of these as its model, not loaded, loads it
	 * first, taking lora_load_ms (the request waits; so do those for the
	 * same adapter meanwhile), and evicts the least recently used dynamic
	 * adapter when max_loras are loaded. Needs max_loras > 0. */
	char resolve[MOCK_MAX_RESOLVE][MOCK_LORA_NAME_MAX];
	unsigned n_resolve;
	unsigned lora_load_ms;      /* default 200 */
	char admin_token[128];      /* "": the admin routes are off */
	unsigned prefix_block_bytes;  /* default 64 (16 tokens of 4 bytes) */
	unsigned prefix_cache_blocks; /* default 16384; 0: no cache, every block a miss */
	unsigned uncached_block_us;   /* prefill time per missed block, default 0 */
	unsigned embedding_dims;      /* default 16 */
	char port_file[512];          /* "": none; else the bound port is written there */
	unsigned startup_ms;          /* before the port opens (weights loading); default 0 */
	unsigned max_num_seqs;        /* sequences generating at once; 0: no limit */
	unsigned total_tokens_per_second; /* shared by the running; 0: each at tokens_per_second */
};

void mock_engine_config_defaults(struct mock_engine_config *cfg);
/* Parse the command line (see mock_engine_usage) into cfg. Returns 0, 1 for
 * --help (usage printed), or NOVA_EINVAL with err naming the flag. */
int mock_engine_config_parse(struct mock_engine_config *cfg, int argc, char **argv,
			     struct nova_err *err);
extern const char mock_engine_usage[];

struct mock_engine;
int mock_engine_start(struct mock_engine **out, const struct mock_engine_config *cfg,
		      struct nova_err *err);
uint16_t mock_engine_port(const struct mock_engine *e);
void mock_engine_stop(struct mock_engine *e);

#endif
