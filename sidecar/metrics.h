/* The Prometheus text exposition format (0.0.4) as model servers serve it
 * on /metrics, and the load a sidecar reads from it.
 *
 * The parser takes the whole text and calls back once per sample, with
 * its name, its labels (escapes undone), its value and its optional
 * timestamp; it allocates nothing. It reads what the format allows:
 * `# HELP name text` and `# TYPE name counter|gauge|histogram|summary|
 * untyped` (other `#` lines are comments), labels in braces with `\\`,
 * `\"` and `\n` escapes and an optional trailing comma, blanks around the
 * label tokens, values with exponents, NaN, +Inf and -Inf (case as Go's
 * ParseFloat takes them), an optional integer timestamp in milliseconds,
 * LF or CRLF line ends, a last line without one. A line that is not one of
 * these is skipped and counted (the first one's number and reason kept), so
 * one odd line from an engine costs that line, not every hint; Prometheus
 * refuses the whole scrape instead, which would read as an idle replica.
 * Hostile input is bounded: at most SIDECAR_METRICS_MAX_BYTES of text (more
 * is refused whole), lines of at most SIDECAR_METRICS_MAX_LINE bytes, at
 * most SIDECAR_METRICS_MAX_LABELS labels and SIDECAR_METRICS_MAX_LABEL_BYTES
 * of label text per sample (longer lines and larger label sets are bad
 * lines); one pass, no recursion, no allocation.
 *
 * The load is read from the series each engine documents, labels and all:
 *
 * | load field | nova-mock-engine | vLLM | SGLang | llama.cpp server |
 * |---|---|---|---|---|
 * | queue_depth (waiting) | nova_engine_queue_depth | vllm:num_requests_waiting | sglang:num_queue_reqs | llamacpp:requests_deferred |
 * | running | - | vllm:num_requests_running | sglang:num_running_reqs | llamacpp:requests_processing |
 * | kv_cache_usage (0..1) | - | vllm:kv_cache_usage_perc, vllm:gpu_cache_usage_perc (older name) | sglang:token_usage | llamacpp:kv_cache_usage_ratio |
 * | tokens_per_second | nova_engine_tokens_per_second | rate of vllm:generation_tokens_total | sglang:gen_throughput, else rate of sglang:generation_tokens_total | llamacpp:predicted_tokens_seconds |
 * | ttft_ms | nova_engine_time_to_first_token_seconds (histogram) | vllm:time_to_first_token_seconds (histogram) | sglang:time_to_first_token_seconds (histogram) | - |
 * | ttft_p95_ms | the same histograms' buckets | the same | the same | - |
 * | inflight_tokens | nova_engine_inflight_tokens | vllm:kv_cache_usage_perc (or vllm:gpu_cache_usage_perc) x num_gpu_blocks x block_size of vllm:cache_config_info | sglang:num_used_tokens | llamacpp:kv_cache_tokens |
 *
 * Label sets are summed (queue, running, token rates; a vLLM with several
 * engines labels each engine="N", SGLang labels ranks), except KV-cache use,
 * a fraction, whose largest label set is taken (the fullest engine is the
 * one that refuses work first).
 *
 * inflight_tokens: the tokens the running requests hold in the KV cache
 * (prompt and generated so far). vLLM serves no such count: it is each
 * engine's fraction of blocks in use, to the nearest block, times that
 * engine's blocks and tokens per block, which its vllm:cache_config_info
 * info gauge carries as labels (num_gpu_blocks, block_size; the engine's
 * own by its engine label, else the only one served), summed over the
 * engines; a block counts whole, so it is a bound from above by less than a
 * block per request. Unknown (-1) when an engine's cache size is not
 * served (num_gpu_blocks "None" before the engine profiled its memory),
 * and with more than 16 engines. SGLang's and llama.cpp's counts are summed
 * over label sets as the rest. Rejected: keeping only the label set whose
 * model_name is the assigned model's name: the engine labels what it was
 * started with (a path, "/models/llama-3", or an alias), not Nova's model
 * name, so a mismatch would read 0 again, the very bug this replaces.
 * Histograms give the mean over the interval since the previous scrape
 * (the growth of _sum over that of _count; the running mean on the first
 * scrape; the last value while no request finished), counters a rate over
 * it (none on the first scrape or after a reset).
 *
 * ttft_p95_ms: the 0.95 quantile of time to first token over the same
 * interval, from the growth of each bucket (the buckets summed by their
 * le bound over the label sets first, as Prometheus's sum by (le)),
 * computed as Prometheus's histogram_quantile does: linear inside the
 * bucket holding the rank, the first bucket starting at 0, and a rank in
 * the +Inf bucket answering the highest finite bound. Like the mean: the
 * whole histogram's on the first scrape and after a reset (a bucket lower
 * than before, or other bounds), the last value while no request had its
 * first token (it is -1 only until the first one). The previous scrape's
 * buckets are kept for it, at most SIDECAR_TTFT_BUCKETS_MAX bounds (vLLM
 * serves 23 with +Inf, and the mock engine the same); a histogram with
 * more bounds, a bucket without a bound, or no +Inf bucket has no p95. NaN, infinities and
 * negative values are not load and are ignored. */
#ifndef NOVA_SIDECAR_METRICS_H
#define NOVA_SIDECAR_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define SIDECAR_METRICS_MAX_BYTES (8u << 20)
#define SIDECAR_METRICS_MAX_LINE (64u << 10)
#define SIDECAR_METRICS_MAX_LABELS 64
#define SIDECAR_METRICS_MAX_LABEL_BYTES (16u << 10)
#define SIDECAR_TTFT_BUCKETS_MAX 32

enum sidecar_metric_type {
	SIDECAR_METRIC_UNTYPED = 0,
	SIDECAR_METRIC_COUNTER,
	SIDECAR_METRIC_GAUGE,
	SIDECAR_METRIC_HISTOGRAM,
	SIDECAR_METRIC_SUMMARY,
};

struct sidecar_metric_label {
	const char *name;  /* NUL-terminated */
	const char *value; /* NUL-terminated, escapes undone (may hold none) */
	size_t value_len;
};

/* One sample; every pointer is valid during the callback only. */
struct sidecar_metric_sample {
	const char *name; /* NUL-terminated */
	const struct sidecar_metric_label *labels;
	size_t n_labels;
	double value;
	bool has_timestamp;
	long long timestamp_ms;
	/* The family's type as the last TYPE line declared it (a histogram's
	 * _bucket, _sum and _count samples and a summary's _sum and _count
	 * count as the family's). */
	enum sidecar_metric_type type;
	size_t line; /* 1-based */
};

struct sidecar_metrics_stats {
	size_t lines, samples, bad_lines;
	size_t first_bad_line;     /* 0: none */
	char first_bad_reason[96]; /* never quotes the text */
};

/* A non-zero return stops the parse and is returned. */
typedef int (*sidecar_metrics_fn)(void *ctx, const struct sidecar_metric_sample *s);

/* Parse text[0..len) (no NUL needed; a NUL byte makes its line bad).
 * stats may be NULL. Returns 0, NOVA_ETOOBIG when len is over
 * SIDECAR_METRICS_MAX_BYTES (nothing is parsed), or the callback's value. */
int sidecar_metrics_parse(struct sidecar_metrics_stats *stats, const char *text, size_t len,
			  sidecar_metrics_fn fn, void *ctx, struct nova_err *err);

/* What a scrape leaves for the next one (the counters behind rates and
 * means, the TTFT buckets behind the p95: about 550 bytes). Zero it before
 * the first scrape of an engine. */
struct sidecar_load_history {
	bool have;
	long long at_ms;
	double tokens_total;       /* < 0: the engine has no token counter */
	double ttft_sum, ttft_count;
	double ttft_ms;            /* the last mean */
	double ttft_p95_ms;        /* the last p95 */
	size_t ttft_buckets;       /* 0: no histogram kept */
	double ttft_le[SIDECAR_TTFT_BUCKETS_MAX];  /* ascending, the last +Inf */
	double ttft_cum[SIDECAR_TTFT_BUCKETS_MAX]; /* cumulative counts, as served */
};

/* Each field is -1 when the engine does not report it. */
struct sidecar_load {
	double queue_depth;
	double running;
	double kv_cache_usage;
	double tokens_per_second;
	double ttft_ms;
	double ttft_p95_ms;
	double inflight_tokens;
	const char *engine; /* "nova-mock-engine", "vllm", "sglang", "llama.cpp"; NULL: none known */
};

/* The load from one scrape of text taken at now_ms (a monotonic clock),
 * hist updated for the next. Returns what sidecar_metrics_parse returns. */
int sidecar_load_read(struct sidecar_load *out, struct sidecar_load_history *hist,
		      const char *text, size_t len, long long now_ms, struct nova_err *err);

/* --- the engine's loaded LoRA adapters -------------------------------------
 *
 * vLLM lists every LoRA adapter it has loaded in GET /v1/models, next to
 * the base model, as an entry whose "parent" is the base model's id (the
 * base model's own entry has "parent": null); nova-mock-engine does the
 * same. A sidecar of a lora_dynamic model reads it at each load probe and
 * reports the names in its heartbeat (novad: inventory/inventory.h), so
 * routers can prefer a replica that has an adapter loaded. Rejected:
 * vLLM's vllm:lora_requests_info gauge, whose labels name the adapters of
 * requests running and waiting now, not those loaded: an adapter loaded
 * and idle, the case worth routing to, is not in it. */
#define SIDECAR_ADAPTERS_MAX 64          /* novad's INVENTORY_ADAPTERS_LOADED_MAX */
#define SIDECAR_ADAPTER_NAME_MAX 512     /* novad's INVENTORY_ADAPTER_NAME_MAX */
#define SIDECAR_MODELS_MAX_BYTES (1u << 20)

/* The ids of the entries of a /v1/models body (OpenAI's list: {"data":
 * [{"id", "parent"?...}]}) with a string "parent", as a new JSON array in
 * the engine's order, each name once and at most SIDECAR_ADAPTERS_MAX of
 * them; ids that are not strings of 1 to SIDECAR_ADAPTER_NAME_MAX bytes
 * are left out. NULL when the text is not such a list (or is over
 * SIDECAR_MODELS_MAX_BYTES). *dropped (may be NULL): entries with a
 * parent left out, for the cap or their id. */
json_t *sidecar_adapters_read(const char *text, size_t len, size_t *dropped);

#endif
