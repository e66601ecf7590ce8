/* The Prometheus text parser and the engines' load (sidecar/metrics.h):
 * the format's corners, bad and hostile input, and each engine's /metrics
 * as that project documents it (tests/sidecar/metrics/\*.prom). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sidecar/metrics.h"

#define MAX_SEEN 32

struct seen {
	size_t n;
	struct {
		char name[128];
		char labels[512]; /* name=value;... with values as parsed */
		double value;
		bool has_ts;
		long long ts;
		enum sidecar_metric_type type;
		size_t line;
	} s[MAX_SEEN];
};

static int collect(void *ctx, const struct sidecar_metric_sample *s)
{
	struct seen *w = ctx;
	if (w->n == MAX_SEEN)
		return 0;
	snprintf(w->s[w->n].name, sizeof(w->s[w->n].name), "%s", s->name);
	size_t o = 0;
	w->s[w->n].labels[0] = '\0';
	for (size_t i = 0; i < s->n_labels; i++)
		o += (size_t)snprintf(w->s[w->n].labels + o, sizeof(w->s[w->n].labels) - o, "%s=%s;",
				      s->labels[i].name, s->labels[i].value);
	w->s[w->n].value = s->value;
	w->s[w->n].has_ts = s->has_timestamp;
	w->s[w->n].ts = s->timestamp_ms;
	w->s[w->n].type = s->type;
	w->s[w->n].line = s->line;
	w->n++;
	return 0;
}

static int parse(struct seen *w, struct sidecar_metrics_stats *st, const char *text)
{
	struct nova_err err;
	memset(w, 0, sizeof(*w));
	return sidecar_metrics_parse(st, text, strlen(text), collect, w, &err);
}

static char *fixture(size_t *len, const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "tests/sidecar/metrics/%s", name);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static void load_of(struct sidecar_load *l, const char *name)
{
	struct sidecar_load_history h;
	struct nova_err err;
	size_t len;
	char *text = fixture(&len, name);
	memset(&h, 0, sizeof(h));
	assert_int_equal(sidecar_load_read(l, &h, text, len, 1000, &err), 0);
	free(text);
}

static void test_the_format_labels_escapes_numbers_and_timestamps_are_read(void **state)
{
	struct seen w;
	struct sidecar_metrics_stats st;
	(void)state;
	const char *text =
		"# a comment, then HELP and TYPE\n"
		"# HELP http_requests_total The total number of HTTP requests.\n"
		"# TYPE http_requests_total counter\n"
		"http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
		"http_requests_total{ method = \"post\" , code=\"400\", } 3 1395066363000\r\n"
		"\n"
		"msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
		"metric_without_timestamp_and_labels 12.47\n"
		"   indented\t-Inf\n"
		"something_weird{problem=\"division by zero\"} +Inf -3982045\n"
		"nan_value NaN\n"
		"# TYPE rpc_duration_seconds summary\n"
		"rpc_duration_seconds{quantile=\"0.99\"} 76656\n"
		"rpc_duration_seconds_sum 1.7560473e+07\n"
		"# TYPE latency histogram\n"
		"latency_bucket{le=\"+Inf\"} 144320\n"
		"latency_count 144320\n"
		"latency_other 1\n"
		"small .5E-3\n"
		"last_line_without_newline{a=\"\"} 0";
	assert_int_equal(parse(&w, &st, text), 0);
	assert_int_equal(st.bad_lines, 0);
	assert_int_equal(w.n, 14);
	assert_int_equal(st.samples, 14);
	assert_string_equal(w.s[0].name, "http_requests_total");
	assert_string_equal(w.s[0].labels, "method=post;code=200;");
	assert_true(w.s[0].value == 1027 && w.s[0].has_ts && w.s[0].ts == 1395066363000LL);
	assert_int_equal(w.s[0].type, SIDECAR_METRIC_COUNTER);
	assert_string_equal(w.s[1].labels, "method=post;code=400;"); /* blanks, trailing comma, CRLF */
	assert_true(w.s[1].value == 3);
	assert_string_equal(w.s[2].labels, "path=C:\\DIR\\FILE.TXT;error=Cannot find file:\n\"FILE.TXT\";");
	assert_true(w.s[2].value == 1.458255915e9 && !w.s[2].has_ts);
	assert_int_equal(w.s[2].line, 7);
	assert_true(w.s[3].value == 12.47 && w.s[3].labels[0] == '\0');
	assert_string_equal(w.s[4].name, "indented");
	assert_true(isinf(w.s[4].value) && w.s[4].value < 0);
	assert_true(isinf(w.s[5].value) && w.s[5].value > 0 && w.s[5].ts == -3982045);
	assert_true(isnan(w.s[6].value));
	assert_int_equal(w.s[7].type, SIDECAR_METRIC_SUMMARY);
	assert_int_equal(w.s[8].type, SIDECAR_METRIC_SUMMARY);
	assert_int_equal(w.s[9].type, SIDECAR_METRIC_HISTOGRAM);
	assert_int_equal(w.s[10].type, SIDECAR_METRIC_HISTOGRAM);
	assert_int_equal(w.s[11].type, SIDECAR_METRIC_UNTYPED);
	assert_true(w.s[12].value == 0.0005);
	assert_string_equal(w.s[13].labels, "a=;");
}

/* A bad line costs that line: the ones around it are read, the first bad
 * one is named by number with a reason that does not quote it. */
static void test_bad_lines_are_skipped_counted_and_named(void **state)
{
	static const char *bad[] = {
		"no_value",
		"no_value{a=\"b\"}",
		"1starts_with_digit 1",
		"x{a=b} 1",
		"x{a=\"b} 1",
		"x{a=\"b\\t\"} 1",
		"x{a=\"1\",a=\"2\"} 1",
		"x{a=\"1\" b=\"2\"} 1",
		"x{\"a\"=\"1\"} 1",
		"x{a:b=\"1\"} 1",
		"x 0x1p3",
		"x 1e",
		"x 1_000",
		"x 12abc",
		"x -",
		"x infinit",
		"x 1 2 3",
		"x 1 1.5",
		"x 1 99999999999999999999",
		"x-y 1",
		"# TYPE x bogus",
		"# TYPE x counter extra",
		"# TYPE 1x gauge",
		"# HELP",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512];
		struct seen w;
		struct sidecar_metrics_stats st;
		snprintf(text, sizeof(text), "before 1\n%s\nafter 2\n", bad[i]);
		assert_int_equal(parse(&w, &st, text), 0);
		bool help_only = !strcmp(bad[i], "# HELP"); /* a comment, as Prometheus reads it */
		if (st.bad_lines != (help_only ? 0u : 1u) || w.n != 2 || strcmp(w.s[1].name, "after"))
			fail_msg("case %zu \"%s\": %zu bad, %zu samples", i, bad[i], st.bad_lines, w.n);
		if (!help_only) {
			assert_int_equal(st.first_bad_line, 2);
			assert_true(st.first_bad_reason[0] != '\0');
			assert_null(strstr(st.first_bad_reason, bad[i]));
		}
	}
}

/* Input from a hostile engine is bounded: too much text is refused whole,
 * over-long lines and label sets are bad lines, a NUL byte spoils only its
 * line. */
static void test_hostile_input_is_bounded(void **state)
{
	struct sidecar_metrics_stats st;
	struct nova_err err;
	struct seen w;
	(void)state;
	size_t big = SIDECAR_METRICS_MAX_BYTES + 1;
	char *text = malloc(big + 1);
	assert_non_null(text);
	memset(text, '\n', big);
	assert_int_equal(sidecar_metrics_parse(&st, text, big, collect, &w, &err), NOVA_ETOOBIG);
	assert_int_equal(st.samples, 0);
	/* A line longer than the limit, between two good ones. */
	size_t n = 0;
	n += (size_t)sprintf(text + n, "a 1\nlong{v=\"");
	memset(text + n, 'x', SIDECAR_METRICS_MAX_LINE);
	n += SIDECAR_METRICS_MAX_LINE;
	n += (size_t)sprintf(text + n, "\"} 1\nb 2\n");
	memset(&w, 0, sizeof(w));
	assert_int_equal(sidecar_metrics_parse(&st, text, n, collect, &w, &err), 0);
	assert_int_equal(st.bad_lines, 1);
	assert_int_equal(w.n, 2);
	/* More labels than the limit; label text over the limit in a line
	 * under the line limit. */
	n = (size_t)sprintf(text, "many{");
	for (int i = 0; i <= SIDECAR_METRICS_MAX_LABELS; i++)
		n += (size_t)sprintf(text + n, "l%d=\"v\",", i);
	n += (size_t)sprintf(text + n, "} 1\nwide{a=\"");
	memset(text + n, 'y', SIDECAR_METRICS_MAX_LABEL_BYTES);
	n += SIDECAR_METRICS_MAX_LABEL_BYTES;
	n += (size_t)sprintf(text + n, "\"} 1\nok 3");
	memset(&w, 0, sizeof(w));
	assert_int_equal(sidecar_metrics_parse(&st, text, n, collect, &w, &err), 0);
	assert_int_equal(st.bad_lines, 2);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.s[0].name, "ok");
	/* Exactly the limit of labels is fine. */
	n = (size_t)sprintf(text, "many{");
	for (int i = 0; i < SIDECAR_METRICS_MAX_LABELS; i++)
		n += (size_t)sprintf(text + n, "l%d=\"v\",", i);
	n += (size_t)sprintf(text + n, "} 1\n");
	memset(&w, 0, sizeof(w));
	assert_int_equal(sidecar_metrics_parse(&st, text, n, collect, &w, &err), 0);
	assert_int_equal(st.bad_lines, 0);
	assert_int_equal(w.n, 1);
	/* A NUL byte. */
	memcpy(text, "a 1\nb\0 2\nc 3\n", 13);
	memset(&w, 0, sizeof(w));
	assert_int_equal(sidecar_metrics_parse(&st, text, 13, collect, &w, &err), 0);
	assert_int_equal(st.bad_lines, 1);
	assert_int_equal(w.n, 2);
	free(text);
}

static void test_vllm_labelled_series_are_summed_and_the_fullest_cache_taken(void **state)
{
	struct sidecar_load l;
	(void)state;
	load_of(&l, "vllm.prom");
	assert_string_equal(l.engine, "vllm");
	assert_true(l.queue_depth == 4);  /* 3 + 1 over the two engines */
	assert_true(l.running == 12);
	assert_true(l.kv_cache_usage == 0.8125);
	/* 4 s over 40 first tokens: the running mean on a first scrape. */
	assert_true(fabs(l.ttft_ms - 100) < 1e-9);
	assert_true(l.tokens_per_second == -1); /* a rate needs two scrapes */
	/* Each engine's blocks in use (to the nearest block) times 16 tokens,
	 * the one cache_config_info's size for both: 12089 and 22452 of 27633
	 * blocks. */
	assert_true(l.inflight_tokens == (12089 + 22452) * 16);
	/* The buckets summed by bound over both engines: 0 by 1 ms, 4 by
	 * 100 ms, 40 in all; the 38th is past the last finite bound, which
	 * is then the answer. */
	assert_true(fabs(l.ttft_p95_ms - 100) < 1e-9);
}

static void test_vllm_before_v1_reads_the_older_cache_gauge(void **state)
{
	struct sidecar_load l;
	(void)state;
	load_of(&l, "vllm_v0.prom");
	assert_true(l.queue_depth == 6);
	assert_true(l.running == 2);
	assert_true(l.kv_cache_usage == 0.25);
	assert_true(fabs(l.ttft_ms - 250) < 1e-9);
	assert_true(l.inflight_tokens == 500 * 16); /* a quarter of 2000 blocks */
	assert_true(fabs(l.ttft_p95_ms - 500) < 1e-9); /* 3 of 4 past 0.5 s, the last bound */
}

static void test_sglang_series_are_read(void **state)
{
	struct sidecar_load l;
	(void)state;
	load_of(&l, "sglang.prom");
	assert_string_equal(l.engine, "sglang");
	assert_true(l.queue_depth == 2826);
	assert_true(l.running == 162);
	assert_true(l.kv_cache_usage == 0.28);
	assert_true(fabs(l.tokens_per_second - 86.50814177726902) < 1e-9); /* its own gauge */
	assert_true(fabs(l.ttft_ms - 2351.8979474117756) < 1e-6);
	assert_true(l.inflight_tokens == 123859);
	assert_true(fabs(l.ttft_p95_ms - 5) < 1e-9);
}

static void test_llamacpp_series_are_read(void **state)
{
	struct sidecar_load l;
	(void)state;
	load_of(&l, "llamacpp.prom");
	assert_string_equal(l.engine, "llama.cpp");
	assert_true(l.queue_depth == 2);
	assert_true(l.running == 3);
	assert_true(l.kv_cache_usage == 0.0625);
	assert_true(l.tokens_per_second == 24.5);
	assert_true(l.ttft_ms == -1); /* llama.cpp serves no time to first token */
	assert_true(l.inflight_tokens == 512);
	assert_true(l.ttft_p95_ms == -1);
}

static void test_mock_engine_series_are_read_with_crlf(void **state)
{
	struct sidecar_load l;
	(void)state;
	load_of(&l, "mock_crlf.prom");
	assert_string_equal(l.engine, "nova-mock-engine");
	assert_true(l.queue_depth == 4);
	assert_true(l.tokens_per_second == 49.875);
	assert_true(fabs(l.ttft_ms - 52) < 1e-9);
	assert_true(l.running == -1 && l.kv_cache_usage == -1);
	assert_true(l.inflight_tokens == 96);
	/* 12 first tokens between 40 and 60 ms: the 11.4th is 57% of the way. */
	assert_true(fabs(l.ttft_p95_ms - 59) < 1e-9);
}

/* vLLM's tokens in flight: each engine's share of its own cache (by its
 * engine label), the older usage gauge beside the newer counted once, and
 * unknown while a cache's size is not served. */
static void test_vllm_inflight_tokens_are_each_engines_blocks_in_use(void **state)
{
	struct sidecar_load_history h;
	struct sidecar_load l;
	struct nova_err err;
	(void)state;
	memset(&h, 0, sizeof(h));
	const char *text =
		"vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n"
		"vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n"
		"vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.25\n"
		"vllm:gpu_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.25\n"
		"vllm:cache_config_info{block_size=\"16\",engine=\"0\",num_gpu_blocks=\"1000\"} 1.0\n"
		"vllm:cache_config_info{block_size=\"32\",engine=\"1\",num_gpu_blocks=\"400\"} 1.0\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 1, &err), 0);
	assert_true(l.inflight_tokens == 500 * 16 + 100 * 32);
	/* No size for engine 1 among two: unknown, not a guess. */
	text = "vllm:kv_cache_usage_perc{engine=\"0\"} 0.5\n"
	       "vllm:kv_cache_usage_perc{engine=\"1\"} 0.5\n"
	       "vllm:cache_config_info{block_size=\"16\",engine=\"0\",num_gpu_blocks=\"1000\"} 1.0\n"
	       "vllm:cache_config_info{block_size=\"16\",engine=\"2\",num_gpu_blocks=\"1000\"} 1.0\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 2, &err), 0);
	assert_true(l.inflight_tokens == -1);
	/* Before the engine profiled its memory: num_gpu_blocks "None". */
	text = "vllm:kv_cache_usage_perc 0\n"
	       "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"None\"} 1.0\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 3, &err), 0);
	assert_true(l.kv_cache_usage == 0 && l.inflight_tokens == -1);
	/* No info gauge at all. */
	text = "vllm:kv_cache_usage_perc 0.5\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 4, &err), 0);
	assert_true(l.inflight_tokens == -1);
	/* An idle engine holds none; a usage over 1 counts as a full cache. */
	text = "vllm:kv_cache_usage_perc 0\n"
	       "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\"} 1.0\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 5, &err), 0);
	assert_true(l.inflight_tokens == 0);
	text = "vllm:kv_cache_usage_perc 1.5\n"
	       "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\"} 1.0\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 6, &err), 0);
	assert_true(l.inflight_tokens == 16000);
	/* More engines than the bound: unknown. */
	char big[4096];
	size_t o = 0;
	for (int i = 0; i < 17; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o,
				      "vllm:kv_cache_usage_perc{engine=\"%d\"} 0.5\n", i);
	snprintf(big + o, sizeof(big) - o,
		 "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"1000\"} 1.0\n");
	assert_int_equal(sidecar_load_read(&l, &h, big, strlen(big), 7, &err), 0);
	assert_true(l.inflight_tokens == -1);
}

/* The mock engine with its capacity model reports the running apart from
 * the waiting, as vLLM does. */
static void test_mock_engine_running_and_waiting(void **state)
{
	static const char text[] = "nova_engine_queue_depth 2\n"
				   "nova_engine_requests_running 3\n"
				   "nova_engine_requests_in_progress 5\n";
	struct sidecar_load l;
	struct sidecar_load_history h;
	struct nova_err err;
	(void)state;
	memset(&h, 0, sizeof(h));
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 1000, &err), 0);
	assert_string_equal(l.engine, "nova-mock-engine");
	assert_true(l.queue_depth == 2);
	assert_true(l.running == 3);
}

/* Counters become rates and histograms means over the interval between two
 * scrapes; a reset starts over; no finished request keeps the last mean. */
static void test_counter_rates_and_histogram_means_span_two_scrapes(void **state)
{
	struct sidecar_load_history h;
	struct sidecar_load l;
	struct nova_err err;
	char text[512];
	(void)state;
	memset(&h, 0, sizeof(h));
#define SCRAPE(tokens, sum, count, at)                                                         \
	do {                                                                                   \
		snprintf(text, sizeof(text),                                                   \
			 "vllm:generation_tokens_total{model_name=\"m\"} %s\n"                 \
			 "vllm:time_to_first_token_seconds_sum{model_name=\"m\"} %s\n"          \
			 "vllm:time_to_first_token_seconds_count{model_name=\"m\"} %s\n",       \
			 tokens, sum, count);                                                   \
		assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), at, &err), 0); \
	} while (0)
	SCRAPE("1000", "10", "100", 5000);
	assert_true(l.tokens_per_second == -1);
	assert_true(fabs(l.ttft_ms - 100) < 1e-9);
	SCRAPE("1500", "12", "104", 7000); /* 500 tokens in 2 s; 2 s over 4 requests */
	assert_true(fabs(l.tokens_per_second - 250) < 1e-9);
	assert_true(fabs(l.ttft_ms - 500) < 1e-9);
	SCRAPE("1500", "12", "104", 9000); /* idle: no tokens, the last mean kept */
	assert_true(l.tokens_per_second == 0);
	assert_true(fabs(l.ttft_ms - 500) < 1e-9);
	SCRAPE("20", "1", "10", 10000); /* the engine restarted: counters reset */
	assert_true(l.tokens_per_second == -1);
	assert_true(fabs(l.ttft_ms - 100) < 1e-9);
	SCRAPE("NaN", "+Inf", "-1", 11000); /* not load */
	assert_true(l.tokens_per_second == -1 && l.ttft_ms == -1);
#undef SCRAPE
}

/* The p95 of time to first token is that of the requests whose first
 * token came since the previous scrape: the buckets' growth, interpolated
 * inside the bucket as Prometheus's histogram_quantile; on a first scrape
 * or after a reset, the whole histogram's; the last value while none
 * came. */
static void test_ttft_p95_is_the_quantile_of_the_buckets_growth(void **state)
{
	struct sidecar_load_history h;
	struct sidecar_load l;
	struct nova_err err;
	char text[2048];
	(void)state;
	memset(&h, 0, sizeof(h));
#define SCRAPE(b1, b2, b3, inf, at)                                                            \
	do {                                                                                   \
		snprintf(text, sizeof(text),                                                   \
			 "# TYPE vllm:time_to_first_token_seconds histogram\n"                  \
			 "vllm:time_to_first_token_seconds_bucket{le=\"0.1\",engine=\"0\"} %d\n" \
			 "vllm:time_to_first_token_seconds_bucket{le=\"0.25\",engine=\"0\"} %d\n" \
			 "vllm:time_to_first_token_seconds_bucket{le=\"0.5\",engine=\"0\"} %d\n" \
			 "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",engine=\"0\"} %d\n" \
			 "vllm:time_to_first_token_seconds_sum{engine=\"0\"} 1\n"                 \
			 "vllm:time_to_first_token_seconds_count{engine=\"0\"} %d\n",             \
			 b1, b2, b3, inf, inf);                                                 \
		assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), at, &err), 0); \
	} while (0)
	SCRAPE(0, 0, 0, 0, 1000); /* none yet */
	assert_true(l.ttft_p95_ms == -1);
	/* 10 in (0, 0.1], 10 in (0.1, 0.25]: the 19th is 9/10 of the way
	 * through the second bucket. */
	SCRAPE(10, 20, 20, 20, 2000);
	assert_true(fabs(l.ttft_p95_ms - 235) < 1e-9);
	/* The interval's 40 are all in (0.25, 0.5]: the 38th is 95% of it. */
	SCRAPE(10, 20, 60, 60, 3000);
	assert_true(fabs(l.ttft_p95_ms - 487.5) < 1e-9);
	SCRAPE(10, 20, 60, 60, 4000); /* none came: the last value kept */
	assert_true(fabs(l.ttft_p95_ms - 487.5) < 1e-9);
	/* 10 past the last bound: it answers. */
	SCRAPE(10, 20, 60, 70, 5000);
	assert_true(fabs(l.ttft_p95_ms - 500) < 1e-9);
	/* All 20 in the first bucket, which starts at 0. */
	SCRAPE(30, 40, 80, 90, 6000);
	assert_true(fabs(l.ttft_p95_ms - 95) < 1e-9);
	/* The engine restarted: the whole histogram again. */
	SCRAPE(1, 2, 2, 2, 7000);
	assert_true(fabs(l.ttft_p95_ms - 235) < 1e-9);
	/* A scrape between two buckets' updates (a bound with fewer than the
	 * one before) counts as the one before. */
	SCRAPE(11, 7, 22, 22, 8000); /* grew by 10, 5 (as 10), 20, 20 */
	assert_true(fabs(l.ttft_p95_ms - 475) < 1e-9);
#undef SCRAPE
	/* No +Inf bucket, a bucket without a bound, more bounds than kept:
	 * no p95. */
	const char *bad[] = {
		"vllm:time_to_first_token_seconds_bucket{le=\"0.1\"} 3\n"
		"vllm:time_to_first_token_seconds_bucket{le=\"0.5\"} 4\n",
		"vllm:time_to_first_token_seconds_bucket{le=\"0.1\"} 3\n"
		"vllm:time_to_first_token_seconds_bucket 4\n"
		"vllm:time_to_first_token_seconds_bucket{le=\"+Inf\"} 4\n",
		"vllm:time_to_first_token_seconds_bucket{le=\"soon\"} 3\n"
		"vllm:time_to_first_token_seconds_bucket{le=\"+Inf\"} 4\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&h, 0, sizeof(h));
		assert_int_equal(sidecar_load_read(&l, &h, bad[i], strlen(bad[i]), 1000, &err), 0);
		if (l.ttft_p95_ms != -1)
			fail_msg("case %zu: p95 %g", i, l.ttft_p95_ms);
	}
	size_t o = 0;
	for (int i = 0; i < SIDECAR_TTFT_BUCKETS_MAX + 1; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
				      "sglang:time_to_first_token_seconds_bucket{le=\"%d\"} 1\n", i + 1);
	snprintf(text + o, sizeof(text) - o, "sglang:time_to_first_token_seconds_bucket{le=\"+Inf\"} 1\n");
	memset(&h, 0, sizeof(h));
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 1000, &err), 0);
	assert_true(l.ttft_p95_ms == -1);
	/* Exactly the bound: kept, the +Inf among them. */
	o = 0;
	for (int i = 0; i < SIDECAR_TTFT_BUCKETS_MAX - 1; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
				      "sglang:time_to_first_token_seconds_bucket{le=\"%d\"} %d\n", i + 1,
				      i < 10 ? 0 : 20);
	snprintf(text + o, sizeof(text) - o, "sglang:time_to_first_token_seconds_bucket{le=\"+Inf\"} 20\n");
	memset(&h, 0, sizeof(h));
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 1000, &err), 0);
	assert_true(fabs(l.ttft_p95_ms - 10950) < 1e-6); /* all 20 in (10, 11] s */
}

/* Load values that are not load (NaN, infinities, negatives, a fraction
 * over 1) are never reported as they are. */
static void test_values_that_are_not_load_are_dropped_or_clamped(void **state)
{
	struct sidecar_load_history h;
	struct sidecar_load l;
	struct nova_err err;
	(void)state;
	memset(&h, 0, sizeof(h));
	const char *text = "vllm:num_requests_waiting{engine=\"0\"} NaN\n"
			   "vllm:num_requests_waiting{engine=\"1\"} -3\n"
			   "vllm:num_requests_running +Inf\n"
			   "vllm:kv_cache_usage_perc 1.5\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 1, &err), 0);
	assert_true(l.queue_depth == -1 && l.running == -1);
	assert_true(l.kv_cache_usage == 1);
	/* Sums past a double's range are not load either. */
	text = "sglang:num_queue_reqs{r=\"0\"} 1e308\nsglang:num_queue_reqs{r=\"1\"} 1e308\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 2, &err), 0);
	assert_true(l.queue_depth == -1);
	/* Nothing known: every field -1, no engine. */
	text = "process_cpu_seconds_total 12\n";
	assert_int_equal(sidecar_load_read(&l, &h, text, strlen(text), 3, &err), 0);
	assert_null(l.engine);
	assert_true(l.queue_depth == -1 && l.tokens_per_second == -1 && l.ttft_ms == -1);
}

/* GET /v1/models as vLLM answers it with LoRA adapters loaded: the base
 * model with "parent": null, each adapter with the base as parent. */
static void test_loaded_adapters_are_the_models_with_a_parent(void **state)
{
	static const char vllm[] =
		"{\"object\":\"list\",\"data\":["
		"{\"id\":\"meta-llama/Llama-2-7b-hf\",\"object\":\"model\",\"created\":1,"
		"\"owned_by\":\"vllm\",\"root\":\"meta-llama/Llama-2-7b-hf\",\"parent\":null,"
		"\"max_model_len\":4096,\"permission\":[]},"
		"{\"id\":\"sql-lora\",\"object\":\"model\",\"created\":1,\"owned_by\":\"vllm\","
		"\"root\":\"/adapters/sql-lora\",\"parent\":\"meta-llama/Llama-2-7b-hf\",\"permission\":[]},"
		"{\"id\":\"chat-lora\",\"object\":\"model\",\"parent\":\"meta-llama/Llama-2-7b-hf\"},"
		"{\"id\":\"sql-lora\",\"object\":\"model\",\"parent\":\"meta-llama/Llama-2-7b-hf\"},"
		"{\"id\":\"\",\"object\":\"model\",\"parent\":\"x\"},"
		"{\"id\":7,\"object\":\"model\",\"parent\":\"x\"}]}";
	size_t dropped = 9;
	(void)state;
	json_t *got = sidecar_adapters_read(vllm, strlen(vllm), &dropped);
	json_t *want = json_pack("[s,s]", "sql-lora", "chat-lora");
	assert_non_null(got);
	assert_true(json_equal(got, want));
	assert_int_equal(dropped, 2);
	json_decref(got);
	json_decref(want);
	/* No adapter: an empty list; not a model list: NULL. */
	static const char plain[] = "{\"object\":\"list\",\"data\":[{\"id\":\"m\",\"parent\":null}]}";
	got = sidecar_adapters_read(plain, strlen(plain), NULL);
	assert_non_null(got);
	assert_int_equal(json_array_size(got), 0);
	json_decref(got);
	assert_null(sidecar_adapters_read("{\"data\":{}}", 11, NULL));
	assert_null(sidecar_adapters_read("<html>", 6, NULL));
	assert_null(sidecar_adapters_read(NULL, 0, NULL));
}

static void test_loaded_adapters_are_bounded_in_count_and_length(void **state)
{
	size_t cap = 100 * 64 + 2000, o = 0, dropped = 0;
	char *text = malloc(cap);
	(void)state;
	assert_non_null(text);
	o += (size_t)snprintf(text + o, cap - o, "{\"data\":[{\"id\":\"");
	for (int i = 0; i < SIDECAR_ADAPTER_NAME_MAX + 1; i++)
		text[o++] = 'x';
	o += (size_t)snprintf(text + o, cap - o, "\",\"parent\":\"m\"}");
	for (int i = 0; i < SIDECAR_ADAPTERS_MAX + 5; i++)
		o += (size_t)snprintf(text + o, cap - o, ",{\"id\":\"a%d\",\"parent\":\"m\"}", i);
	o += (size_t)snprintf(text + o, cap - o, "]}");
	json_t *got = sidecar_adapters_read(text, o, &dropped);
	assert_non_null(got);
	assert_int_equal(json_array_size(got), SIDECAR_ADAPTERS_MAX);
	assert_string_equal(json_string_value(json_array_get(got, 0)), "a0");
	assert_int_equal(dropped, 6);
	json_decref(got);
	assert_null(sidecar_adapters_read(text, SIDECAR_MODELS_MAX_BYTES + 1, NULL));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_format_labels_escapes_numbers_and_timestamps_are_read),
		cmocka_unit_test(test_bad_lines_are_skipped_counted_and_named),
		cmocka_unit_test(test_hostile_input_is_bounded),
		cmocka_unit_test(test_vllm_labelled_series_are_summed_and_the_fullest_cache_taken),
		cmocka_unit_test(test_vllm_before_v1_reads_the_older_cache_gauge),
		cmocka_unit_test(test_sglang_series_are_read),
		cmocka_unit_test(test_llamacpp_series_are_read),
		cmocka_unit_test(test_mock_engine_series_are_read_with_crlf),
		cmocka_unit_test(test_mock_engine_running_and_waiting),
		cmocka_unit_test(test_vllm_inflight_tokens_are_each_engines_blocks_in_use),
		cmocka_unit_test(test_counter_rates_and_histogram_means_span_two_scrapes),
		cmocka_unit_test(test_ttft_p95_is_the_quantile_of_the_buckets_growth),
		cmocka_unit_test(test_values_that_are_not_load_are_dropped_or_clamped),
		cmocka_unit_test(test_loaded_adapters_are_the_models_with_a_parent),
		cmocka_unit_test(test_loaded_adapters_are_bounded_in_count_and_length),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
