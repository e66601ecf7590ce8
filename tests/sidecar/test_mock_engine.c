/* nova-mock-engine over real HTTP: the OpenAI-compatible surface, SSE
 * streaming, pacing, LoRA adapters, vision parts, health, metrics and
 * injected errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/http_client.h"
#include "sidecar/mock_engine.h"

static struct mock_engine *eng;
#define ADMIN_TOKEN "mock-admin-token-for-tests"
static bool with_admin_token = true;

static int start_with(void **state, const char *kind, bool fail_health)
{
	struct mock_engine_config cfg;
	struct nova_err err;
	(void)state;
	mock_engine_config_defaults(&cfg);
	snprintf(cfg.model, sizeof(cfg.model), "base");
	snprintf(cfg.kind, sizeof(cfg.kind), "%s", kind);
	snprintf(cfg.loras[0], sizeof(cfg.loras[0]), "sql");
	cfg.n_loras = 1;
	cfg.max_loras = 1;
	cfg.tokens_per_second = 100;
	cfg.latency_ms = 50;
	cfg.fail_health = fail_health;
	if (with_admin_token)
		snprintf(cfg.admin_token, sizeof(cfg.admin_token), "%s", ADMIN_TOKEN);
	return mock_engine_start(&eng, &cfg, &err);
}

static int setup(void **state)
{
	return start_with(state, "single", false);
}

static int setup_vision(void **state)
{
	return start_with(state, "vision", false);
}

static int setup_sick(void **state)
{
	return start_with(state, "single", true);
}

/* An engine serving "base" whose first token comes at once, at the rate
 * given; the caller sets what else its test needs. */
static void quick_config(struct mock_engine_config *cfg, unsigned tokens_per_second)
{
	mock_engine_config_defaults(cfg);
	snprintf(cfg->model, sizeof(cfg->model), "base");
	cfg->latency_ms = 0;
	cfg->tokens_per_second = tokens_per_second;
}

static int start_config(const struct mock_engine_config *cfg)
{
	struct nova_err err;
	return mock_engine_start(&eng, cfg, &err);
}

/* A prefix cache of 4 blocks of 8 bytes, 20 ms per block computed. */
static int setup_cache(void **state)
{
	struct mock_engine_config cfg;
	(void)state;
	quick_config(&cfg, 1000);
	cfg.prefix_block_bytes = 8;
	cfg.prefix_cache_blocks = 4;
	cfg.uncached_block_us = 20000;
	return start_config(&cfg);
}

/* Dynamic LoRA: "a", "b" and "c" resolvable, 2 held at once, 100 ms per
 * load, first tokens at once otherwise. */
static int setup_resolve(void **state)
{
	struct mock_engine_config cfg;
	(void)state;
	quick_config(&cfg, 1000);
	cfg.max_loras = 2;
	cfg.lora_load_ms = 100;
	for (int i = 0; i < 3; i++)
		snprintf(cfg.resolve[cfg.n_resolve++], sizeof(cfg.resolve[0]), "%c", 'a' + i);
	return start_config(&cfg);
}

/* The capacity model: 2 sequences at once, 20 tokens/s each, the first
 * token at once. */
static int setup_capacity(void **state)
{
	struct mock_engine_config cfg;
	(void)state;
	quick_config(&cfg, 20);
	cfg.max_num_seqs = 2;
	return start_config(&cfg);
}

/* One sequence at a time, its first token 300 ms after admission. */
static int setup_one_slow_seq(void **state)
{
	struct mock_engine_config cfg;
	(void)state;
	quick_config(&cfg, 1000);
	cfg.max_num_seqs = 1;
	cfg.latency_ms = 300;
	return start_config(&cfg);
}

/* 100 tokens/s a sequence, 20 tokens/s for the whole engine. */
static int setup_shared_rate(void **state)
{
	struct mock_engine_config cfg;
	(void)state;
	quick_config(&cfg, 100);
	cfg.total_tokens_per_second = 20;
	return start_config(&cfg);
}

/* error_percent set, the admin token on, a token at once: quick requests. */
static int setup_errors_at(unsigned percent)
{
	struct mock_engine_config cfg;
	quick_config(&cfg, 1000);
	cfg.max_tokens = 1;
	cfg.error_percent = percent;
	snprintf(cfg.admin_token, sizeof(cfg.admin_token), "%s", ADMIN_TOKEN);
	return start_config(&cfg);
}

static int setup_errors_0(void **state)
{
	(void)state;
	return setup_errors_at(0);
}

static int setup_errors_10(void **state)
{
	(void)state;
	return setup_errors_at(10);
}

static int setup_errors_100(void **state)
{
	(void)state;
	return setup_errors_at(100);
}

static int setup_no_admin(void **state)
{
	with_admin_token = false;
	int rc = start_with(state, "single", false);
	with_admin_token = true;
	return rc;
}

static int teardown(void **state)
{
	(void)state;
	mock_engine_stop(eng);
	eng = NULL;
	return 0;
}

/* A request with a bearer token (NULL: none); returns the status and the
 * raw body (caller frees). */
static long call_as(char **body, const char *bearer, const char *method, const char *path,
		    const char *payload)
{
	char url[128];
	struct http_client_response res;
	struct nova_err err;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", mock_engine_port(eng), path);
	struct http_client_request req = {.method = method, .url = url, .body = payload,
					  .body_len = payload ? strlen(payload) : 0,
					  .bearer_token = bearer};
	if (http_client_do(&res, &req, &err))
		return -1;
	*body = res.body;
	res.body = NULL;
	long st = res.status;
	http_client_response_finish(&res);
	return st;
}

static long call(char **body, const char *method, const char *path, const char *payload)
{
	return call_as(body, NULL, method, path, payload);
}

static json_t *call_json(long *status, const char *method, const char *path, const char *payload)
{
	char *body = NULL;
	*status = call(&body, method, path, payload);
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	free(body);
	return j;
}

static void test_models_lists_base_and_adapters(void **state)
{
	long st;
	(void)state;
	json_t *j = call_json(&st, "GET", "/v1/models", NULL);
	assert_int_equal(st, 200);
	json_t *data = json_object_get(j, "data");
	assert_int_equal(json_array_size(data), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "id")), "base");
	assert_string_equal(json_string_value(json_object_get(json_array_get(data, 1), "id")), "sql");
	json_decref(j);
}

static void test_chat_completion_returns_tokens_at_the_configured_pace(void **state)
{
	long st;
	struct timespec t0, t1;
	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_t *j = call_json(&st, "POST", "/v1/chat/completions",
			      "{\"model\":\"base\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
			      "\"max_tokens\":6}");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(st, 200);
	assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
	json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
	assert_string_equal(json_string_value(json_object_get(msg, "role")), "assistant");
	assert_string_equal(json_string_value(json_object_get(msg, "content")),
			    "the model answers with mock tokens");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"),
							    "completion_tokens")), 6);
	json_decref(j);
	/* 50 ms to the first token, then 5 gaps of 10 ms: at least 100 ms. */
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms >= 95);
}

static void test_streamed_completion_is_sse_ending_with_done(void **state)
{
	char *body = NULL;
	(void)state;
	assert_int_equal(call(&body, "POST", "/v1/completions",
			      "{\"model\":\"sql\",\"prompt\":\"x\",\"max_tokens\":3,\"stream\":true}"), 200);
	int events = 0;
	for (char *p = strstr(body, "data: "); p; p = strstr(p + 1, "data: "))
		events++;
	assert_int_equal(events, 4);
	assert_non_null(strstr(body, "\"object\":\"text_completion\""));
	assert_non_null(strstr(body, "\"finish_reason\":\"length\""));
	assert_non_null(strstr(body, "data: [DONE]\n\n"));
	free(body);
	assert_int_equal(call(&body, "POST", "/v1/chat/completions",
			      "{\"model\":\"base\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
			      "\"stream\":true,\"max_tokens\":2}"), 200);
	assert_non_null(strstr(body, "\"object\":\"chat.completion.chunk\""));
	assert_non_null(strstr(body, "\"delta\":{\"content\":\"the\"}"));
	free(body);
}

static void test_bad_requests_get_openai_errors(void **state)
{
	long st;
	(void)state;
	json_t *j = call_json(&st, "POST", "/v1/chat/completions",
			      "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
	assert_int_equal(st, 404);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
			    "not_found_error");
	json_decref(j);
	j = call_json(&st, "POST", "/v1/chat/completions", "{\"model\":\"base\",\"messages\":[]}");
	assert_int_equal(st, 400);
	json_decref(j);
	j = call_json(&st, "POST", "/v1/completions", "not json");
	assert_int_equal(st, 400);
	json_decref(j);
	j = call_json(&st, "POST", "/v1/completions", "{\"model\":\"base\",\"prompt\":\"x\",\"max_tokens\":0}");
	assert_int_equal(st, 400);
	json_decref(j);
	/* Images only for vision models. */
	j = call_json(&st, "POST", "/v1/chat/completions",
		      "{\"model\":\"base\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
		      "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AA==\"}}]}]}");
	assert_int_equal(st, 400);
	json_decref(j);
}

static void test_vision_model_accepts_image_parts(void **state)
{
	long st;
	(void)state;
	json_t *j = call_json(&st, "POST", "/v1/chat/completions",
			      "{\"model\":\"base\",\"max_tokens\":1,\"messages\":[{\"role\":\"user\",\"content\":"
			      "[{\"type\":\"text\",\"text\":\"what is this\"},{\"type\":\"image_url\","
			      "\"image_url\":{\"url\":\"data:image/png;base64,AA==\"}}]}]}");
	assert_int_equal(st, 200);
	json_decref(j);
}

static void test_dynamic_lora_load_and_unload(void **state)
{
	char *body = NULL;
	long st;
	(void)state;
	assert_int_equal(call(&body, "POST", "/v1/load_lora_adapter",
			      "{\"lora_name\":\"support\",\"lora_path\":\"/x\"}"), 200);
	free(body);
	json_t *j = call_json(&st, "POST", "/v1/completions",
			      "{\"model\":\"support\",\"prompt\":\"x\",\"max_tokens\":1}");
	assert_int_equal(st, 200);
	json_decref(j);
	/* At most one dynamic adapter. */
	assert_int_equal(call(&body, "POST", "/v1/load_lora_adapter", "{\"lora_name\":\"more\"}"), 400);
	free(body);
	assert_int_equal(call(&body, "POST", "/v1/unload_lora_adapter", "{\"lora_name\":\"support\"}"), 200);
	free(body);
	j = call_json(&st, "POST", "/v1/completions", "{\"model\":\"support\",\"prompt\":\"x\"}");
	assert_int_equal(st, 404);
	json_decref(j);
	assert_int_equal(call(&body, "POST", "/v1/unload_lora_adapter", "{\"lora_name\":\"support\"}"), 404);
	free(body);
}

static void test_health_switches_and_metrics_count(void **state)
{
	char *body = NULL;
	(void)state;
	assert_int_equal(call(&body, "GET", "/health", NULL), 200);
	free(body);
	assert_int_equal(call_as(&body, ADMIN_TOKEN, "POST", "/admin/health", "{\"healthy\":false}"), 200);
	free(body);
	assert_int_equal(call(&body, "GET", "/health", NULL), 503);
	free(body);
	assert_int_equal(call_as(&body, ADMIN_TOKEN, "POST", "/admin/health", "{\"healthy\":\"no\"}"), 400);
	free(body);
	assert_int_equal(call(&body, "POST", "/v1/completions",
			      "{\"model\":\"base\",\"prompt\":\"x\",\"max_tokens\":2}"), 200);
	free(body);
	assert_int_equal(call(&body, "GET", "/metrics", NULL), 200);
	assert_non_null(strstr(body, "\nnova_engine_queue_depth 0\n"));
	assert_non_null(strstr(body, "\nnova_engine_requests_total 1\n"));
	assert_non_null(strstr(body, "\nnova_engine_tokens_total 2\n"));
	/* Time to first token as vLLM serves it: a histogram with its
	 * buckets; the one request's first token came after its 50 ms. */
	assert_non_null(strstr(body, "# TYPE nova_engine_time_to_first_token_seconds histogram"));
	assert_non_null(strstr(body, "\nnova_engine_time_to_first_token_seconds_bucket{le=\"0.001\"} 0\n"));
	assert_non_null(strstr(body, "\nnova_engine_time_to_first_token_seconds_bucket{le=\"0.04\"} 0\n"));
	assert_non_null(strstr(body, "\nnova_engine_time_to_first_token_seconds_bucket{le=\"1.0\"} 1\n"));
	assert_non_null(strstr(body, "\nnova_engine_time_to_first_token_seconds_bucket{le=\"2560.0\"} 1\n"));
	assert_non_null(strstr(body, "\nnova_engine_time_to_first_token_seconds_bucket{le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(body, "\nnova_engine_time_to_first_token_seconds_count 1\n"));
	double ttft = -1;
	char *p = strstr(body, "\nnova_engine_time_to_first_token_seconds_sum ");
	assert_non_null(p);
	sscanf(p + strlen("\nnova_engine_time_to_first_token_seconds_sum "), "%lf", &ttft);
	assert_true(ttft >= 0.045 && ttft < 1);
	int buckets = 0;
	for (p = body; (p = strstr(p, "nova_engine_time_to_first_token_seconds_bucket{")); p++)
		buckets++;
	assert_int_equal(buckets, 23); /* vLLM's 22 bounds and +Inf */
	free(body);
}

static double metric(const char *name)
{
	char *body = NULL, key[128];
	double v = -1;
	assert_int_equal(call(&body, "GET", "/metrics", NULL), 200);
	snprintf(key, sizeof(key), "\n%s ", name);
	char *p = strstr(body, key);
	assert_non_null(p);
	sscanf(p + strlen(key), "%lf", &v);
	free(body);
	return v;
}

/* The first token of a completion of PROMPT (max_tokens 1), in ms. */
static double ttft_ms(const char *prompt)
{
	char payload[512], *body = NULL;
	struct timespec t0, t1;
	snprintf(payload, sizeof(payload), "{\"model\":\"base\",\"prompt\":\"%s\",\"max_tokens\":1}", prompt);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(call(&body, "POST", "/v1/completions", payload), 200);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(body);
	return (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

/* The first token of a chat completion of MODEL, in ms (-1: not 200). */
static double chat_ms(const char *model)
{
	char payload[256], *body = NULL;
	struct timespec t0, t1;
	snprintf(payload, sizeof(payload),
		 "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
		 "\"max_tokens\":1}", model);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long st = call(&body, "POST", "/v1/chat/completions", payload);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	free(body);
	return st != 200 ? -1 : (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
}

/* The ids /v1/models lists with a parent, comma-separated. */
static void loaded(char *out, size_t len)
{
	long st;
	json_t *j = call_json(&st, "GET", "/v1/models", NULL), *m;
	size_t i, o = 0;
	out[0] = '\0';
	assert_int_equal(st, 200);
	json_array_foreach(json_object_get(j, "data"), i, m) {
		if (json_is_null(json_object_get(m, "parent")))
			continue;
		assert_string_equal(json_string_value(json_object_get(m, "parent")), "base");
		o += (size_t)snprintf(out + o, len - o, "%s%s", o ? "," : "",
				      json_string_value(json_object_get(m, "id")));
	}
	json_decref(j);
}

/* As vLLM with a LoRA resolver: an adapter the engine may resolve is
 * loaded by the first request naming it (which waits for the load), then
 * listed in /v1/models with the base as parent; past max_loras the least
 * recently used goes; a name it cannot resolve is 404. */
static void test_resolvable_adapters_load_on_first_use_and_evict_the_least_recent(void **state)
{
	char list[256];
	(void)state;
	loaded(list, sizeof(list));
	assert_string_equal(list, "");
	double first = chat_ms("a"), again = chat_ms("a");
	assert_true(first >= 100);
	assert_true(again >= 0 && again < 90);
	loaded(list, sizeof(list));
	assert_string_equal(list, "a");
	assert_true(chat_ms("b") >= 100);
	assert_true(chat_ms("a") < 90); /* a is now the more recent */
	assert_true(chat_ms("c") >= 100); /* evicts b */
	loaded(list, sizeof(list));
	assert_string_equal(list, "a,c");
	assert_true(chat_ms("b") >= 100); /* loaded again, evicting a */
	assert_true(chat_ms("nope") < 0);
	assert_true(chat_ms("base") >= 0);
	assert_int_equal((int)metric("nova_engine_lora_loads_total"), 4);
	assert_int_equal((int)metric("nova_engine_lora_evictions_total"), 2);
}

/* Leading blocks seen before are hits and cost nothing; the rest (a
 * partial tail included) are misses at 20 ms each; the LRU keeps 4. */
static void test_prefix_cache_hits_skip_the_prefill(void **state)
{
	(void)state;
	/* 3 whole blocks of 8 and a partial one: 4 misses, 80 ms. */
	double cold = ttft_ms("aaaaaaaabbbbbbbbccccccccdd");
	assert_true(cold >= 78);
	assert_int_equal((int)metric("nova_engine_prefix_cache_misses_total"), 4);
	assert_int_equal((int)metric("nova_engine_prefix_cache_hits_total"), 0);
	/* The same 2 leading blocks, then different ones: 2 hits, 2 misses. */
	double warm = ttft_ms("aaaaaaaabbbbbbbbzzzzzzzz");
	assert_true(warm >= 18 && warm < cold - 30);
	assert_int_equal((int)metric("nova_engine_prefix_cache_hits_total"), 2);
	assert_int_equal((int)metric("nova_engine_prefix_cache_misses_total"), 5);
	/* A block equal to a cached one but after a different head is a miss:
	 * a block is named with everything before it. */
	ttft_ms("xxxxxxxxbbbbbbbb");
	assert_int_equal((int)metric("nova_engine_prefix_cache_hits_total"), 2);
	assert_int_equal((int)metric("nova_engine_prefix_cache_misses_total"), 7);
	/* Four blocks at most: the cache is full, and the oldest tails went. */
	assert_true(metric("nova_engine_kv_cache_usage_ratio") == 1.0);
	/* The most recent prompt's blocks are all there. */
	ttft_ms("xxxxxxxxbbbbbbbb");
	assert_int_equal((int)metric("nova_engine_prefix_cache_hits_total"), 4);
}

static void test_embeddings_float_and_base64(void **state)
{
	long st;
	(void)state;
	json_t *j = call_json(&st, "POST", "/v1/embeddings",
			      "{\"model\":\"base\",\"input\":[\"one\",\"two\"],\"encoding_format\":\"float\"}");
	assert_int_equal(st, 200);
	assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
	json_t *data = json_object_get(j, "data");
	assert_int_equal(json_array_size(data), 2);
	json_t *v0 = json_object_get(json_array_get(data, 0), "embedding");
	assert_int_equal(json_array_size(v0), 16);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(data, 1), "index")), 1);
	double first = json_real_value(json_array_get(v0, 0));
	assert_true(first >= -1 && first < 1);
	json_decref(j);
	/* The same input, base64 of little-endian float32s: the same numbers. */
	j = call_json(&st, "POST", "/v1/embeddings",
		      "{\"model\":\"base\",\"input\":\"one\",\"encoding_format\":\"base64\"}");
	assert_int_equal(st, 200);
	const char *b64 = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0),
							    "embedding"));
	assert_non_null(b64);
	assert_int_equal(strlen(b64), (16 * 4 + 2) / 3 * 4);
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char raw[4];
	unsigned v = 0;
	for (int k = 0; k < 4; k++)
		v = v << 6 | (unsigned)(strchr(al, b64[k]) - al);
	raw[0] = (unsigned char)(v >> 16), raw[1] = (unsigned char)(v >> 8), raw[2] = (unsigned char)v;
	v = 0;
	for (int k = 4; k < 8; k++)
		v = v << 6 | (unsigned)(strchr(al, b64[k]) - al);
	raw[3] = (unsigned char)(v >> 16);
	uint32_t u = (uint32_t)raw[0] | (uint32_t)raw[1] << 8 | (uint32_t)raw[2] << 16 | (uint32_t)raw[3] << 24;
	float f;
	memcpy(&f, &u, 4);
	assert_true(f == (float)first);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), 1);
	json_decref(j);
	j = call_json(&st, "POST", "/v1/embeddings", "{\"model\":\"base\",\"input\":{}}");
	assert_int_equal(st, 400);
	json_decref(j);
	j = call_json(&st, "POST", "/v1/embeddings", "{\"model\":\"nope\",\"input\":\"x\"}");
	assert_int_equal(st, 404);
	json_decref(j);
}

/* stream_options.include_usage: OpenAI's last chunk, no choices, usage. */
static void test_streamed_usage_chunk_when_asked(void **state)
{
	char *body = NULL;
	(void)state;
	assert_int_equal(call(&body, "POST", "/v1/chat/completions",
			      "{\"model\":\"base\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}],"
			      "\"stream\":true,\"max_tokens\":2,\"stream_options\":{\"include_usage\":true}}"), 200);
	char *u = strstr(body, "\"choices\":[],\"usage\":{");
	assert_non_null(u);
	assert_non_null(strstr(u, "\"completion_tokens\":2"));
	assert_non_null(strstr(u, "\"prompt_tokens\":5")); /* "user" 0x1f "hello there" 0x1e: 17 bytes, a token per 4 */
	assert_true(strstr(body, "data: [DONE]") > u);
	free(body);
}

/* The admin routes take the engine's own admin token only (they took
 * requests from anyone who could reach the engine's routed port). */
static void test_admin_routes_need_the_engine_admin_token(void **state)
{
	char *body = NULL;
	(void)state;
	assert_int_equal(call(&body, "POST", "/admin/health", "{\"healthy\":false}"), 401);
	free(body);
	assert_int_equal(call_as(&body, "not-the-admin-token-at-all", "POST", "/admin/health",
				 "{\"healthy\":false}"), 401);
	free(body);
	assert_int_equal(call(&body, "GET", "/health", NULL), 200); /* unchanged */
	free(body);
	assert_int_equal(call_as(&body, ADMIN_TOKEN, "POST", "/admin/health", "{\"healthy\":false}"), 200);
	free(body);
	assert_int_equal(call(&body, "GET", "/health", NULL), 503);
	free(body);
}

/* Without an admin token configured the admin routes are off. */
static void test_admin_routes_are_off_without_a_token(void **state)
{
	char *body = NULL;
	(void)state;
	assert_int_equal(call(&body, "POST", "/admin/health", "{\"healthy\":false}"), 404);
	free(body);
	assert_int_equal(call_as(&body, "", "POST", "/admin/health", "{\"healthy\":false}"), 404);
	free(body);
	assert_int_equal(call_as(&body, ADMIN_TOKEN, "POST", "/admin/errors", "{\"percent\":100}"), 404);
	free(body);
	assert_int_equal(call(&body, "POST", "/v1/completions", "{\"model\":\"base\",\"prompt\":\"x\",\"max_tokens\":1}"),
			 200);
	free(body);
	assert_int_equal(call(&body, "GET", "/health", NULL), 200);
	free(body);
}

static void test_fail_health_flag(void **state)
{
	char *body = NULL;
	(void)state;
	assert_int_equal(call(&body, "GET", "/health", NULL), 503);
	free(body);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void *completion_thread(void *arg)
{
	char *body = NULL;
	long st = call(&body, "POST", "/v1/completions", (const char *)arg);
	free(body);
	return (void *)(intptr_t)st;
}

/* N valid requests, the k-th (from 0) a completion, a chat completion or
 * an embeddings request in turn; returns how many were answered with the
 * injected error, marking each in failed (NULL: not kept). Any other answer
 * than 200 or that error, or an error body not OpenAI's, fails the test. */
static int send_valid(int n, bool *failed)
{
	static const char *const reqs[][2] = {
		{"/v1/completions", "{\"model\":\"base\",\"prompt\":\"x\"}"},
		{"/v1/chat/completions", "{\"model\":\"base\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"},
		{"/v1/embeddings", "{\"model\":\"base\",\"input\":\"x\"}"},
	};
	int fails = 0;
	for (int k = 0; k < n; k++) {
		long st;
		json_t *j = call_json(&st, "POST", reqs[k % 3][0], reqs[k % 3][1]);
		json_t *e = json_object_get(j, "error");
		if (st == 500) {
			assert_string_equal(json_string_value(json_object_get(e, "message")), "injected failure");
			assert_string_equal(json_string_value(json_object_get(e, "type")), "server_error");
			assert_true(json_is_null(json_object_get(e, "param")));
			assert_string_equal(json_string_value(json_object_get(e, "code")), "injected");
			fails++;
		} else {
			assert_int_equal(st, 200);
			assert_null(e);
		}
		if (failed)
			failed[k] = st == 500;
		json_decref(j);
	}
	return fails;
}

/* --error-percent 10: request k (from 1) fails when floor(k/10) steps up,
 * so the 10th, 20th, ... fail, and any 100 in a row hold exactly 10;
 * /metrics counts them apart from the completions served. */
static void test_error_percent_fails_exactly_n_of_every_100(void **state)
{
	bool failed[250];
	int served = 0;
	(void)state;
	assert_int_equal(send_valid(250, failed), 25);
	for (int k = 1; k <= 250; k++)
		if (failed[k - 1] != (k % 10 == 0))
			fail_msg("request %d: failed %d", k, failed[k - 1]);
	for (int from = 0; from + 100 <= 250; from += 25) {
		int n = 0;
		for (int k = from; k < from + 100; k++)
			n += failed[k];
		assert_int_equal(n, 10);
	}
	for (int k = 0; k < 250; k++)
		served += !failed[k] && k % 3 != 2; /* completions and chats, not embeddings */
	assert_int_equal((long)metric("nova_engine_request_errors_total"), 25);
	assert_int_equal((long)metric("nova_engine_requests_total"), served);
}

static void test_error_percent_0_fails_none(void **state)
{
	(void)state;
	assert_int_equal(send_valid(30, NULL), 0);
	assert_int_equal((long)metric("nova_engine_request_errors_total"), 0);
	assert_int_equal((long)metric("nova_engine_requests_total"), 20);
}

/* At 100 every valid request fails, and only those: a bad request still
 * gets its own 4xx, uncounted. */
static void test_error_percent_100_fails_every_valid_request(void **state)
{
	char *body = NULL;
	(void)state;
	assert_int_equal(send_valid(30, NULL), 30);
	assert_int_equal(call(&body, "POST", "/v1/completions", "{\"model\":\"nope\",\"prompt\":\"x\"}"), 404);
	free(body);
	assert_int_equal(call(&body, "POST", "/v1/chat/completions", "{\"model\":\"base\",\"messages\":[]}"), 400);
	free(body);
	assert_int_equal(call(&body, "POST", "/v1/embeddings", "{\"model\":\"base\",\"input\":{}}"), 400);
	free(body);
	assert_int_equal((long)metric("nova_engine_request_errors_total"), 30);
	assert_int_equal((long)metric("nova_engine_requests_total"), 0);
}

/* POST /admin/errors sets the share from the next request on, counting
 * requests from the switch; a bad body or no admin token changes nothing. */
static void test_admin_errors_switches_the_share_at_run_time(void **state)
{
	static const char *const bad[] = {"{\"percent\":101}", "{\"percent\":-1}", "{\"percent\":\"10\"}",
					  "{\"percent\":10.5}", "{}", "not json"};
	bool failed[100];
	char *body = NULL;
	(void)state;
	assert_int_equal(send_valid(7, NULL), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(call_as(&body, ADMIN_TOKEN, "POST", "/admin/errors", bad[i]), 400);
		free(body);
	}
	assert_int_equal(call(&body, "POST", "/admin/errors", "{\"percent\":100}"), 401);
	free(body);
	assert_int_equal(send_valid(3, NULL), 0);
	assert_int_equal(call_as(&body, ADMIN_TOKEN, "POST", "/admin/errors", "{\"percent\":100}"), 200);
	json_t *j = json_loads(body, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "percent")), 100);
	json_decref(j);
	free(body);
	assert_int_equal(send_valid(5, NULL), 5);
	/* 10: the 10th request after the switch is the first to fail. */
	assert_int_equal(call_as(&body, ADMIN_TOKEN, "POST", "/admin/errors", "{\"percent\":10}"), 200);
	free(body);
	assert_int_equal(send_valid(100, failed), 10);
	for (int k = 1; k <= 100; k++)
		if (failed[k - 1] != (k % 10 == 0))
			fail_msg("request %d after the switch: failed %d", k, failed[k - 1]);
	assert_int_equal(call_as(&body, ADMIN_TOKEN, "POST", "/admin/errors", "{\"percent\":0}"), 200);
	free(body);
	assert_int_equal(send_valid(20, NULL), 0);
	assert_int_equal((long)metric("nova_engine_request_errors_total"), 15);
}

/* Past max_num_seqs requests wait: /metrics shows 2 running and 2 waiting
 * (queue depth, as vLLM's num_requests_waiting), and the second pair's
 * answers come a whole generation after the first's. */
static void test_capacity_queues_past_max_num_seqs(void **state)
{
	static const char *req = "{\"model\":\"base\",\"prompt\":\"x\",\"max_tokens\":20}";
	pthread_t t[4];
	struct timespec t0;
	(void)state;
	assert_int_equal((long)metric("nova_engine_queue_depth"), 0);
	assert_int_equal((long)metric("nova_engine_requests_running"), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, completion_thread, (void *)req), 0);
	long in_progress = 0;
	for (int i = 0; i < 100 && in_progress < 4; i++) {
		in_progress = (long)metric("nova_engine_requests_in_progress");
		if (in_progress < 4)
			usleep(5000);
	}
	assert_int_equal(in_progress, 4);
	/* 19 gaps of 50 ms: the first pair runs for 950 ms. */
	if (ms_since(&t0) < 800) {
		assert_int_equal((long)metric("nova_engine_requests_running"), 2);
		assert_int_equal((long)metric("nova_engine_queue_depth"), 2);
		/* The two running hold their prompt token each and what they
		 * generated (under 20 each); the waiting hold none. */
		double held = metric("nova_engine_inflight_tokens");
		assert_true(held >= 2 && held <= 2 + 2 * 20);
	}
	for (int i = 0; i < 4; i++) {
		void *st;
		pthread_join(t[i], &st);
		assert_int_equal((intptr_t)st, 200);
	}
	assert_true(ms_since(&t0) >= 1800); /* two generations of 950 ms, one after the other */
	assert_int_equal((long)metric("nova_engine_queue_depth"), 0);
	assert_int_equal((long)metric("nova_engine_requests_running"), 0);
	assert_int_equal((long)metric("nova_engine_requests_in_progress"), 0);
	assert_int_equal((long)metric("nova_engine_inflight_tokens"), 0);
}

/* The tokens in flight are the running sequences' prompts (a token per 4
 * bytes) and what they generated: while the one running waits for its
 * first token it holds its 10 prompt tokens, the one waiting none; when
 * both are answered, nothing is held. */
static void test_inflight_tokens_are_the_running_prompts_and_outputs(void **state)
{
	static const char *req = "{\"model\":\"base\",\"prompt\":\"0123456789012345678901234567890123456789\","
				  "\"max_tokens\":2}";
	pthread_t t[2];
	struct timespec t0;
	(void)state;
	assert_int_equal((long)metric("nova_engine_inflight_tokens"), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, completion_thread, (void *)req), 0);
	long running = 0, waiting = 0;
	for (int i = 0; i < 100 && (running < 1 || waiting < 1); i++) {
		running = (long)metric("nova_engine_requests_running");
		waiting = (long)metric("nova_engine_queue_depth");
		if (running < 1 || waiting < 1)
			usleep(5000);
	}
	assert_int_equal(running, 1);
	assert_int_equal(waiting, 1);
	if (ms_since(&t0) < 250) /* the first token comes at 300 ms */
		assert_int_equal((long)metric("nova_engine_inflight_tokens"), 10);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal((long)metric("nova_engine_inflight_tokens"), 0);
}

/* The engine's rate is shared: alone a sequence gets the whole 20 tokens/s
 * (5 gaps of 50 ms), two at once 10 tokens/s each (5 gaps of 100 ms). */
static void test_capacity_shares_the_total_rate(void **state)
{
	static const char *req = "{\"model\":\"base\",\"prompt\":\"x\",\"max_tokens\":6}";
	pthread_t t[2];
	struct timespec t0;
	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal((intptr_t)completion_thread((void *)req), 200);
	double alone = ms_since(&t0);
	assert_true(alone >= 240);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, completion_thread, (void *)req), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_true(ms_since(&t0) >= 450);
}

/* The weights loading: the port opens only after the startup delay. */
static void test_startup_delay_holds_the_port(void **state)
{
	struct mock_engine_config cfg;
	struct mock_engine *e = NULL;
	struct nova_err err;
	struct timespec t0;
	(void)state;
	mock_engine_config_defaults(&cfg);
	cfg.startup_ms = 300;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(mock_engine_start(&e, &cfg, &err), 0);
	assert_true(ms_since(&t0) >= 295);
	assert_true(mock_engine_port(e) > 0);
	mock_engine_stop(e);
}

static void test_command_line_parsing(void **state)
{
	struct mock_engine_config cfg;
	struct nova_err err;
	char *ok[] = {"x", "--port", "0", "--model", "m", "--lora", "a", "--lora", "b", "--crash-after", "3", NULL};
	char *bad[] = {"x", "--tokens-per-second", "0", NULL};
	char *unknown[] = {"x", "--turbo", NULL};
	(void)state;
	mock_engine_config_defaults(&cfg);
	assert_int_equal(mock_engine_config_parse(&cfg, 11, ok, &err), 0);
	assert_int_equal(cfg.n_loras, 2);
	assert_int_equal(cfg.crash_after, 3);
	assert_string_equal(cfg.listen, "127.0.0.1:0");
	assert_int_equal(mock_engine_config_parse(&cfg, 3, bad, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--tokens-per-second");
	assert_int_equal(mock_engine_config_parse(&cfg, 2, unknown, &err), NOVA_EINVAL);
	char *tok[] = {"x", "--admin-token", "short", NULL};
	assert_int_equal(mock_engine_config_parse(&cfg, 3, tok, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--admin-token");
	char *res[] = {"x", "--lora-resolve", "a", "--lora-resolve", "b", "--lora-load-ms", "5", NULL};
	mock_engine_config_defaults(&cfg);
	assert_int_equal(mock_engine_config_parse(&cfg, 7, res, &err), 0);
	assert_int_equal(cfg.n_resolve, 2);
	assert_string_equal(cfg.resolve[1], "b");
	assert_int_equal(cfg.lora_load_ms, 5);
	char *res_bad[] = {"x", "--lora-resolve", "", NULL};
	assert_int_equal(mock_engine_config_parse(&cfg, 3, res_bad, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--lora-resolve");
	char *cap[] = {"x", "--startup-ms", "1500", "--max-num-seqs", "8", "--total-tokens-per-second",
		       "400", NULL};
	mock_engine_config_defaults(&cfg);
	assert_int_equal(cfg.max_num_seqs, 0);
	assert_int_equal(mock_engine_config_parse(&cfg, 7, cap, &err), 0);
	assert_int_equal(cfg.startup_ms, 1500);
	assert_int_equal(cfg.max_num_seqs, 8);
	assert_int_equal(cfg.total_tokens_per_second, 400);
	char *cap_bad[] = {"x", "--max-num-seqs", "-1", NULL};
	assert_int_equal(mock_engine_config_parse(&cfg, 3, cap_bad, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--max-num-seqs");
	char *start_bad[] = {"x", "--startup-ms", "600001", NULL};
	assert_int_equal(mock_engine_config_parse(&cfg, 3, start_bad, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--startup-ms");
	mock_engine_config_defaults(&cfg);
	assert_int_equal(cfg.error_percent, 0);
	char *errs[] = {"x", "--error-percent", "100", NULL};
	assert_int_equal(mock_engine_config_parse(&cfg, 3, errs, &err), 0);
	assert_int_equal(cfg.error_percent, 100);
	char *errs_bad[] = {"x", "--error-percent", "101", NULL};
	assert_int_equal(mock_engine_config_parse(&cfg, 3, errs_bad, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--error-percent");
	char *errs_neg[] = {"x", "--error-percent", "-1", NULL};
	assert_int_equal(mock_engine_config_parse(&cfg, 3, errs_neg, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--error-percent");
	/* The usage names the flag and the admin route. */
	assert_non_null(strstr(mock_engine_usage, "[--error-percent N]"));
	assert_non_null(strstr(mock_engine_usage, "/admin/errors {\"percent\": N}"));
}

int main(void)
{
	struct nova_err err;
	http_client_global_init(&err);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_models_lists_base_and_adapters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chat_completion_returns_tokens_at_the_configured_pace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streamed_completion_is_sse_ending_with_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests_get_openai_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vision_model_accepts_image_parts, setup_vision, teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_lora_load_and_unload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolvable_adapters_load_on_first_use_and_evict_the_least_recent, setup_resolve, teardown),
		cmocka_unit_test_setup_teardown(test_health_switches_and_metrics_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_health_flag, setup_sick, teardown),
		cmocka_unit_test_setup_teardown(test_admin_routes_need_the_engine_admin_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_routes_are_off_without_a_token, setup_no_admin, teardown),
		cmocka_unit_test(test_command_line_parsing),
		cmocka_unit_test_setup_teardown(test_capacity_queues_past_max_num_seqs, setup_capacity, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_tokens_are_the_running_prompts_and_outputs,
						setup_one_slow_seq, teardown),
		cmocka_unit_test_setup_teardown(test_capacity_shares_the_total_rate, setup_shared_rate, teardown),
		cmocka_unit_test(test_startup_delay_holds_the_port),
		cmocka_unit_test_setup_teardown(test_prefix_cache_hits_skip_the_prefill, setup_cache, teardown),
		cmocka_unit_test_setup_teardown(test_embeddings_float_and_base64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streamed_usage_chunk_when_asked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_percent_fails_exactly_n_of_every_100, setup_errors_10, teardown),
		cmocka_unit_test_setup_teardown(test_error_percent_0_fails_none, setup_errors_0, teardown),
		cmocka_unit_test_setup_teardown(test_error_percent_100_fails_every_valid_request, setup_errors_100, teardown),
		cmocka_unit_test_setup_teardown(test_admin_errors_switches_the_share_at_run_time, setup_errors_0, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_client_global_cleanup();
	return rc;
}
