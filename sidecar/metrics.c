/* The Prometheus text format and the engines' load: see sidecar/metrics.h. */
#include "sidecar/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MX_NAME_MAX 256 /* a metric or label name; engines use under 100 */
#define MX_VALUE_MAX 64 /* a value or timestamp token */

struct mx_parser {
	const char *p, *end; /* the line being read, without its line end */
	char name[MX_NAME_MAX + 1];
	char store[SIDECAR_METRICS_MAX_LABEL_BYTES]; /* label names and values, each with its NUL */
	size_t used;
	struct sidecar_metric_label labels[SIDECAR_METRICS_MAX_LABELS];
	char family[MX_NAME_MAX + 1]; /* the last TYPE line's */
	enum sidecar_metric_type family_type;
	const char *why; /* why the line is bad */
};

static bool mx_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void mx_skip_blanks(struct mx_parser *x)
{
	while (x->p < x->end && mx_blank(*x->p))
		x->p++;
}

static bool mx_name_start(char c, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool mx_name_char(char c, bool colon)
{
	return mx_name_start(c, colon) || (c >= '0' && c <= '9');
}

static bool mx_bad(struct mx_parser *x, const char *why)
{
	x->why = why;
	return false;
}

/* Copy n bytes into the line's label store, NUL-terminated. */
static char *mx_keep(struct mx_parser *x, const char *s, size_t n)
{
	if (n + 1 > sizeof(x->store) - x->used)
		return NULL;
	char *d = x->store + x->used;
	memcpy(d, s, n);
	d[n] = '\0';
	x->used += n + 1;
	return d;
}

/* A metric name (colons allowed) or label name at x->p. */
static const char *mx_name(struct mx_parser *x, bool colon, size_t *len)
{
	const char *s = x->p;
	if (x->p >= x->end || !mx_name_start(*x->p, colon))
		return NULL;
	while (x->p < x->end && mx_name_char(*x->p, colon))
		x->p++;
	*len = (size_t)(x->p - s);
	return *len <= MX_NAME_MAX ? s : NULL;
}

/* A quoted label value at x->p (the opening quote), escapes undone into
 * the store. */
static bool mx_label_value(struct mx_parser *x, struct sidecar_metric_label *l)
{
	char *d = x->store + x->used;
	size_t room = sizeof(x->store) - x->used, n = 0;
	x->p++; /* the quote */
	for (;;) {
		if (x->p >= x->end)
			return mx_bad(x, "label value without its closing quote");
		char c = *x->p++;
		if (c == '"')
			break;
		if (c == '\\') {
			if (x->p >= x->end)
				return mx_bad(x, "label value without its closing quote");
			c = *x->p++;
			if (c == 'n')
				c = '\n';
			else if (c != '\\' && c != '"')
				return mx_bad(x, "label value with an escape other than \\\\, \\\" or \\n");
		}
		if (n + 1 >= room)
			return mx_bad(x, "labels longer than the limit");
		d[n++] = c;
	}
	d[n] = '\0';
	l->value = d;
	l->value_len = n;
	x->used += n + 1;
	return true;
}

static bool mx_labels(struct mx_parser *x, size_t *n_out)
{
	size_t n = 0, len;
	x->p++; /* { */
	for (;;) {
		mx_skip_blanks(x);
		if (x->p < x->end && *x->p == '}') {
			x->p++;
			break;
		}
		const char *name = mx_name(x, false, &len);
		if (!name)
			return mx_bad(x, "label name expected");
		if (n == SIDECAR_METRICS_MAX_LABELS)
			return mx_bad(x, "more labels than the limit");
		struct sidecar_metric_label *l = &x->labels[n];
		if (!(l->name = mx_keep(x, name, len)))
			return mx_bad(x, "labels longer than the limit");
		for (size_t i = 0; i < n; i++)
			if (!strcmp(x->labels[i].name, l->name))
				return mx_bad(x, "a label name given twice");
		mx_skip_blanks(x);
		if (x->p >= x->end || *x->p != '=')
			return mx_bad(x, "= expected after a label name");
		x->p++;
		mx_skip_blanks(x);
		if (x->p >= x->end || *x->p != '"')
			return mx_bad(x, "a quoted label value expected");
		if (!mx_label_value(x, l))
			return false;
		n++;
		mx_skip_blanks(x);
		if (x->p < x->end && *x->p == ',') {
			x->p++;
			continue;
		}
		if (x->p < x->end && *x->p == '}') {
			x->p++;
			break;
		}
		return mx_bad(x, ", or } expected after a label");
	}
	*n_out = n;
	return true;
}

/* The next blank-delimited token, copied (NUL-terminated) into buf. */
static bool mx_token(struct mx_parser *x, char *buf, size_t cap, size_t *len)
{
	const char *s = x->p;
	while (x->p < x->end && !mx_blank(*x->p))
		x->p++;
	*len = (size_t)(x->p - s);
	if (*len == 0 || *len >= cap)
		return false;
	memcpy(buf, s, *len);
	buf[*len] = '\0';
	return true;
}

/* A value as the format writes it: a decimal with an optional exponent,
 * or NaN, Inf, +Inf, -Inf (any case; "infinity" too). No hex floats, no
 * underscores: strtod would take "0x1p3", engines write neither. */
static bool mx_value(double *out, const char *s)
{
	const char *q = s;
	bool digits = false;
	if (*q == '+' || *q == '-')
		q++;
	if (!strcasecmp(q, "inf") || !strcasecmp(q, "infinity")) {
		*out = *s == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (!strcasecmp(s, "nan")) {
		*out = NAN;
		return true;
	}
	while (*q >= '0' && *q <= '9')
		q++, digits = true;
	if (*q == '.')
		for (q++; *q >= '0' && *q <= '9'; q++)
			digits = true;
	if (!digits)
		return false;
	if (*q == 'e' || *q == 'E') {
		q++;
		if (*q == '+' || *q == '-')
			q++;
		if (!(*q >= '0' && *q <= '9'))
			return false;
		while (*q >= '0' && *q <= '9')
			q++;
	}
	if (*q)
		return false;
	/* Out of a double's range: +-Inf or 0, as the text meant. */
	*out = strtod(s, NULL);
	return true;
}

static bool mx_timestamp(long long *out, const char *s)
{
	const char *q = s + (*s == '-');
	char *end;
	if (!*q)
		return false;
	for (const char *c = q; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno == 0 && !*end;
}

static enum sidecar_metric_type mx_type_of(const struct mx_parser *x, const char *name)
{
	size_t f = strlen(x->family);
	if (!f || strncmp(name, x->family, f) != 0)
		return SIDECAR_METRIC_UNTYPED;
	const char *suffix = name + f;
	if (!*suffix)
		return x->family_type;
	switch (x->family_type) {
	case SIDECAR_METRIC_HISTOGRAM:
		if (!strcmp(suffix, "_bucket") || !strcmp(suffix, "_sum") || !strcmp(suffix, "_count"))
			return x->family_type;
		break;
	case SIDECAR_METRIC_SUMMARY:
		if (!strcmp(suffix, "_sum") || !strcmp(suffix, "_count"))
			return x->family_type;
		break;
	case SIDECAR_METRIC_COUNTER:
		if (!strcmp(suffix, "_total"))
			return x->family_type;
		break;
	default:
		break;
	}
	return SIDECAR_METRIC_UNTYPED;
}

/* "# HELP name text", "# TYPE name type", or a comment. */
static bool mx_comment(struct mx_parser *x)
{
	static const struct {
		const char *name;
		enum sidecar_metric_type type;
	} types[] = {
		{"counter", SIDECAR_METRIC_COUNTER},     {"gauge", SIDECAR_METRIC_GAUGE},
		{"histogram", SIDECAR_METRIC_HISTOGRAM}, {"summary", SIDECAR_METRIC_SUMMARY},
		{"untyped", SIDECAR_METRIC_UNTYPED},
	};
	char word[16], type[16];
	size_t len;
	const char *name;
	x->p++; /* # */
	mx_skip_blanks(x);
	const char *w = x->p;
	while (x->p < x->end && !mx_blank(*x->p))
		x->p++;
	len = (size_t)(x->p - w);
	if (len != 4 || x->p >= x->end)
		return true; /* a comment */
	memcpy(word, w, 4);
	word[4] = '\0';
	if (strcmp(word, "HELP") && strcmp(word, "TYPE"))
		return true;
	mx_skip_blanks(x);
	if (!(name = mx_name(x, true, &len)))
		return mx_bad(x, "metric name expected after HELP or TYPE");
	if (x->p < x->end && !mx_blank(*x->p))
		return mx_bad(x, "metric name expected after HELP or TYPE");
	if (word[0] == 'H')
		return true; /* the docstring is anything */
	char fam[MX_NAME_MAX + 1];
	memcpy(fam, name, len);
	fam[len] = '\0';
	mx_skip_blanks(x);
	if (!mx_token(x, type, sizeof(type), &len))
		return mx_bad(x, "TYPE without a known type");
	mx_skip_blanks(x);
	if (x->p != x->end)
		return mx_bad(x, "text after the type");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (!strcmp(type, types[i].name)) {
			snprintf(x->family, sizeof(x->family), "%s", fam);
			x->family_type = types[i].type;
			return true;
		}
	}
	return mx_bad(x, "TYPE without a known type");
}

/* One sample line into s. */
static bool mx_sample(struct mx_parser *x, struct sidecar_metric_sample *s)
{
	char tok[MX_VALUE_MAX];
	size_t len, n_labels = 0;
	const char *name = mx_name(x, true, &len);
	memset(s, 0, sizeof(*s));
	if (!name)
		return mx_bad(x, "metric name expected");
	memcpy(x->name, name, len);
	x->name[len] = '\0';
	s->name = x->name;
	mx_skip_blanks(x);
	if (x->p < x->end && *x->p == '{') {
		if (!mx_labels(x, &n_labels))
			return false;
	} else if (x->p == name + len) {
		return mx_bad(x, "a blank expected after the metric name");
	}
	mx_skip_blanks(x);
	if (!mx_token(x, tok, sizeof(tok), &len) || !mx_value(&s->value, tok))
		return mx_bad(x, "a number, NaN, +Inf or -Inf expected as the value");
	mx_skip_blanks(x);
	if (x->p < x->end) {
		if (!mx_token(x, tok, sizeof(tok), &len) || !mx_timestamp(&s->timestamp_ms, tok))
			return mx_bad(x, "an integer timestamp in milliseconds expected after the value");
		s->has_timestamp = true;
		mx_skip_blanks(x);
		if (x->p < x->end)
			return mx_bad(x, "text after the timestamp");
	}
	s->labels = x->labels;
	s->n_labels = n_labels;
	s->type = mx_type_of(x, s->name);
	return true;
}

int sidecar_metrics_parse(struct sidecar_metrics_stats *stats, const char *text, size_t len,
			  sidecar_metrics_fn fn, void *ctx, struct nova_err *err)
{
	struct sidecar_metrics_stats local;
	struct mx_parser *x;
	size_t pos = 0, line = 0;
	int rc = 0;
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	if (len > SIDECAR_METRICS_MAX_BYTES)
		return nova_err_set(err, NOVA_ETOOBIG, "", "metrics text of %zu bytes is over the limit of %u",
				    len, SIDECAR_METRICS_MAX_BYTES);
	/* About 20 KiB: off the stack of whatever thread scrapes. */
	if (!(x = calloc(1, sizeof(*x))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	while (pos < len && rc == 0) {
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - start) : len - pos;
		struct sidecar_metric_sample s;
		bool ok = true;
		pos += n + (nl ? 1 : 0);
		line++;
		if (n && start[n - 1] == '\r')
			n--;
		x->p = start;
		x->end = start + n;
		x->used = 0;
		x->why = NULL;
		if (n > SIDECAR_METRICS_MAX_LINE)
			ok = mx_bad(x, "line longer than the limit");
		else if (memchr(start, '\0', n))
			ok = mx_bad(x, "a NUL byte in the line");
		if (ok) {
			mx_skip_blanks(x);
			if (x->p == x->end)
				continue; /* an empty line */
			if (*x->p == '#') {
				ok = mx_comment(x);
			} else if ((ok = mx_sample(x, &s))) {
				s.line = line;
				stats->samples++;
				if (fn)
					rc = fn(ctx, &s);
			}
		}
		if (!ok) {
			if (!stats->bad_lines++) {
				stats->first_bad_line = line;
				snprintf(stats->first_bad_reason, sizeof(stats->first_bad_reason), "%s",
					 x->why ? x->why : "unreadable line");
			}
		}
	}
	stats->lines = line;
	free(x);
	return rc;
}

/* --- the engines' load ----------------------------------------------------- */

enum mx_field {
	MX_QUEUE,
	MX_RUNNING,
	MX_KV,
	MX_TPS,
	MX_TOKENS_TOTAL,
	MX_TTFT_SUM,
	MX_TTFT_COUNT,
	MX_TTFT_BUCKET, /* by its le label */
	MX_INFLIGHT,
	MX_VLLM_CACHE_INFO, /* labels only: block_size, num_gpu_blocks */
	MX_FIELDS,
};

static const struct {
	const char *name;
	enum mx_field field;
	const char *engine;
} mx_series[] = {
	{"nova_engine_queue_depth", MX_QUEUE, "nova-mock-engine"},
	{"nova_engine_requests_running", MX_RUNNING, "nova-mock-engine"},
	{"nova_engine_tokens_per_second", MX_TPS, "nova-mock-engine"},
	{"nova_engine_time_to_first_token_seconds_sum", MX_TTFT_SUM, "nova-mock-engine"},
	{"nova_engine_time_to_first_token_seconds_count", MX_TTFT_COUNT, "nova-mock-engine"},
	{"nova_engine_time_to_first_token_seconds_bucket", MX_TTFT_BUCKET, "nova-mock-engine"},
	{"nova_engine_inflight_tokens", MX_INFLIGHT, "nova-mock-engine"},
	{"vllm:num_requests_waiting", MX_QUEUE, "vllm"},
	{"vllm:num_requests_running", MX_RUNNING, "vllm"},
	{"vllm:kv_cache_usage_perc", MX_KV, "vllm"},
	{"vllm:gpu_cache_usage_perc", MX_KV, "vllm"},
	{"vllm:generation_tokens_total", MX_TOKENS_TOTAL, "vllm"},
	{"vllm:time_to_first_token_seconds_sum", MX_TTFT_SUM, "vllm"},
	{"vllm:time_to_first_token_seconds_count", MX_TTFT_COUNT, "vllm"},
	{"vllm:time_to_first_token_seconds_bucket", MX_TTFT_BUCKET, "vllm"},
	{"vllm:cache_config_info", MX_VLLM_CACHE_INFO, "vllm"},
	{"sglang:num_queue_reqs", MX_QUEUE, "sglang"},
	{"sglang:num_running_reqs", MX_RUNNING, "sglang"},
	{"sglang:token_usage", MX_KV, "sglang"},
	{"sglang:gen_throughput", MX_TPS, "sglang"},
	{"sglang:generation_tokens_total", MX_TOKENS_TOTAL, "sglang"},
	{"sglang:time_to_first_token_seconds_sum", MX_TTFT_SUM, "sglang"},
	{"sglang:time_to_first_token_seconds_count", MX_TTFT_COUNT, "sglang"},
	{"sglang:time_to_first_token_seconds_bucket", MX_TTFT_BUCKET, "sglang"},
	{"sglang:num_used_tokens", MX_INFLIGHT, "sglang"},
	{"llamacpp:requests_deferred", MX_QUEUE, "llama.cpp"},
	{"llamacpp:requests_processing", MX_RUNNING, "llama.cpp"},
	{"llamacpp:kv_cache_usage_ratio", MX_KV, "llama.cpp"},
	{"llamacpp:predicted_tokens_seconds", MX_TPS, "llama.cpp"},
	{"llamacpp:kv_cache_tokens", MX_INFLIGHT, "llama.cpp"},
};

/* vLLM's tokens in the KV cache, per engine (its engine="N" label; "" when
 * unlabelled): the fraction of blocks in use, and the cache's size in
 * tokens (num_gpu_blocks x block_size, the labels of its
 * vllm:cache_config_info). At most MX_ENGINES engines; more, or an engine
 * label longer than the key, and the tokens are not known. */
#define MX_ENGINES 16
#define MX_ENGINE_KEY 32
struct mx_vllm_engine {
	char key[MX_ENGINE_KEY];
	double value;      /* the fraction in use; or the blocks */
	double block_size; /* the cache's: tokens per block */
};

static const char *mx_label(const struct sidecar_metric_sample *s, const char *name)
{
	for (size_t i = 0; i < s->n_labels; i++)
		if (!strcmp(s->labels[i].name, name))
			return s->labels[i].value;
	return NULL;
}

struct mx_acc {
	double v[MX_FIELDS];
	bool seen[MX_FIELDS];
	const char *engine;
	struct mx_vllm_engine usage[MX_ENGINES], size[MX_ENGINES];
	size_t n_usage, n_size;
	bool vllm_unknown;
	/* The TTFT histogram's buckets summed by bound over the label sets
	 * (Prometheus's sum by (le)), in the order first seen. */
	double le[SIDECAR_TTFT_BUCKETS_MAX], cum[SIDECAR_TTFT_BUCKETS_MAX];
	size_t n_le;
	bool le_bad; /* a bucket without a bound, or more bounds than kept */
};

static void mx_ttft_bucket(struct mx_acc *a, const struct sidecar_metric_sample *s)
{
	const char *text = mx_label(s, "le");
	double le;
	size_t i;
	if (!text || !mx_value(&le, text) || isnan(le)) {
		a->le_bad = true;
		return;
	}
	for (i = 0; i < a->n_le && a->le[i] != le; i++)
		;
	if (i == a->n_le) {
		if (a->n_le == SIDECAR_TTFT_BUCKETS_MAX) {
			a->le_bad = true;
			return;
		}
		a->le[i] = le;
		a->cum[i] = 0;
		a->n_le++;
	}
	a->cum[i] += s->value;
}

/* The q-quantile of the observations of a histogram given as cumulative
 * counts cum[] at ascending bounds le[], the last +Inf, as Prometheus's
 * histogram_quantile answers it: the bucket holding the rank q x total,
 * linear inside it (the first bucket starting at 0), and the +Inf bucket
 * answering the highest finite bound, the most a histogram can say. Counts
 * that fall with the bound (a scrape between two buckets' updates) are
 * raised to the one before, as Prometheus does. -1 when there is no
 * observation. */
static double mx_quantile(double q, const double *le, double *cum, size_t n)
{
	size_t b = 0;
	for (size_t i = 1; i < n; i++)
		if (cum[i] < cum[i - 1])
			cum[i] = cum[i - 1];
	if (n < 2 || cum[n - 1] <= 0)
		return -1;
	double rank = q * cum[n - 1];
	while (b < n - 1 && cum[b] < rank)
		b++;
	if (b == n - 1)
		return le[n - 2];
	if (b == 0 && le[0] <= 0)
		return le[0];
	double start = b ? le[b - 1] : 0, below = b ? cum[b - 1] : 0;
	return start + (le[b] - start) * ((rank - below) / (cum[b] - below));
}

/* Record value for the sample's engine in t: the largest, if the engine is
 * there already (vLLM 0.9 and later serve kv_cache_usage_perc and the
 * older gpu_cache_usage_perc both, with one value). */
static void mx_vllm_put(struct mx_acc *a, struct mx_vllm_engine *t, size_t *n,
			const struct sidecar_metric_sample *s, double value, double block_size)
{
	const char *key = mx_label(s, "engine");
	size_t i;
	if (!key)
		key = "";
	if (strlen(key) >= MX_ENGINE_KEY) {
		a->vllm_unknown = true;
		return;
	}
	for (i = 0; i < *n && strcmp(t[i].key, key); i++)
		;
	if (i == *n) {
		if (*n == MX_ENGINES) {
			a->vllm_unknown = true;
			return;
		}
		snprintf(t[i].key, sizeof(t[i].key), "%s", key);
		t[i].value = value;
		t[i].block_size = block_size;
		(*n)++;
	} else if (value > t[i].value) {
		t[i].value = value;
		t[i].block_size = block_size;
	}
}

/* The cache's size in tokens from a vllm:cache_config_info sample, whose
 * labels are the engine's CacheConfig fields as text ("None" for a size
 * not yet known). */
static void mx_vllm_cache_info(struct mx_acc *a, const struct sidecar_metric_sample *s)
{
	const char *blocks = mx_label(s, "num_gpu_blocks"), *bs = mx_label(s, "block_size");
	double nb, b;
	if (!blocks || !bs || !mx_value(&nb, blocks) || !mx_value(&b, bs) || !isfinite(nb) ||
	    !isfinite(b) || nb <= 0 || b <= 0)
		return;
	mx_vllm_put(a, a->size, &a->n_size, s, nb, b);
}

/* The tokens in vLLM's KV cache: over its engines, the blocks in use
 * (the fraction of the engine's blocks, to the nearest block) times the
 * tokens a block holds. An engine's size is its own cache_config_info's,
 * else the only one served (before V1 it has no engine label). -1 when an
 * engine's size is not known. */
static double mx_vllm_inflight(const struct mx_acc *a)
{
	double sum = 0;
	if (a->vllm_unknown || a->n_usage == 0)
		return -1;
	for (size_t i = 0; i < a->n_usage; i++) {
		const struct mx_vllm_engine *size = a->n_size == 1 ? &a->size[0] : NULL;
		for (size_t j = 0; j < a->n_size; j++)
			if (!strcmp(a->size[j].key, a->usage[i].key))
				size = &a->size[j];
		if (!size)
			return -1;
		double usage = a->usage[i].value > 1 ? 1 : a->usage[i].value;
		sum += floor(usage * size->value + 0.5) * size->block_size;
	}
	return sum;
}

static int mx_load_sample(void *ctx, const struct sidecar_metric_sample *s)
{
	struct mx_acc *a = ctx;
	if (!isfinite(s->value) || s->value < 0)
		return 0;
	for (size_t i = 0; i < sizeof(mx_series) / sizeof(mx_series[0]); i++) {
		if (strcmp(s->name, mx_series[i].name) != 0)
			continue;
		enum mx_field f = mx_series[i].field;
		if (!a->engine)
			a->engine = mx_series[i].engine;
		if (f == MX_VLLM_CACHE_INFO) {
			mx_vllm_cache_info(a, s);
			break;
		}
		if (f == MX_TTFT_BUCKET) {
			mx_ttft_bucket(a, s);
			break;
		}
		if (f == MX_KV && !strncmp(s->name, "vllm:", 5))
			mx_vllm_put(a, a->usage, &a->n_usage, s, s->value, 0);
		if (f == MX_KV)
			a->v[f] = a->seen[f] && a->v[f] > s->value ? a->v[f] : s->value;
		else
			a->v[f] += s->value;
		a->seen[f] = true;
		break;
	}
	return 0;
}

static double mx_finite(double v)
{
	return isfinite(v) && v >= 0 ? v : -1;
}

/* The p95 of time to first token over the requests that had their first
 * token since the previous scrape: the quantile of the buckets' growth.
 * As the mean: the whole histogram's on a first scrape and after a reset
 * (a count lower than before, or other bounds), the last value while no
 * request came. */
static void mx_ttft_p95(struct sidecar_load *out, struct sidecar_load_history *hist,
			struct mx_acc *a)
{
	double le[SIDECAR_TTFT_BUCKETS_MAX], cum[SIDECAR_TTFT_BUCKETS_MAX];
	size_t n = a->n_le, i, j;
	bool same;
	/* Ascending bounds, the last +Inf: else no quantile (Prometheus's NaN). */
	for (i = 0; i < n; i++) {
		double l = a->le[i], c = a->cum[i];
		for (j = i; j > 0 && le[j - 1] > l; j--) {
			le[j] = le[j - 1];
			cum[j] = cum[j - 1];
		}
		le[j] = l;
		cum[j] = c;
	}
	if (a->le_bad || n < 2 || !isinf(le[n - 1]) || le[n - 1] < 0) {
		hist->ttft_buckets = 0;
		hist->ttft_p95_ms = -1;
		return;
	}
	same = hist->ttft_buckets == n;
	for (i = 0; same && i < n; i++)
		same = hist->ttft_le[i] == le[i] && cum[i] >= hist->ttft_cum[i];
	if (same && cum[n - 1] > hist->ttft_cum[n - 1]) {
		double d[SIDECAR_TTFT_BUCKETS_MAX];
		for (i = 0; i < n; i++)
			d[i] = cum[i] - hist->ttft_cum[i];
		out->ttft_p95_ms = mx_finite(mx_quantile(0.95, le, d, n) * 1000);
	} else if (same) {
		out->ttft_p95_ms = hist->ttft_p95_ms;
	} else if (cum[n - 1] > 0) {
		double c[SIDECAR_TTFT_BUCKETS_MAX];
		memcpy(c, cum, n * sizeof(c[0]));
		out->ttft_p95_ms = mx_finite(mx_quantile(0.95, le, c, n) * 1000);
	} else if (hist->ttft_buckets) {
		out->ttft_p95_ms = hist->ttft_p95_ms;
	}
	hist->ttft_buckets = n;
	memcpy(hist->ttft_le, le, n * sizeof(le[0]));
	memcpy(hist->ttft_cum, cum, n * sizeof(cum[0]));
	hist->ttft_p95_ms = out->ttft_p95_ms;
}

int sidecar_load_read(struct sidecar_load *out, struct sidecar_load_history *hist,
		      const char *text, size_t len, long long now_ms, struct nova_err *err)
{
	struct mx_acc a;
	memset(&a, 0, sizeof(a));
	out->queue_depth = out->running = out->kv_cache_usage = -1;
	out->tokens_per_second = out->ttft_ms = out->ttft_p95_ms = out->inflight_tokens = -1;
	out->engine = NULL;
	int rc = sidecar_metrics_parse(NULL, text, len, mx_load_sample, &a, err);
	if (rc)
		return rc;
	out->engine = a.engine;
	if (a.seen[MX_QUEUE])
		out->queue_depth = mx_finite(a.v[MX_QUEUE]);
	if (a.seen[MX_RUNNING])
		out->running = mx_finite(a.v[MX_RUNNING]);
	if (a.seen[MX_KV])
		out->kv_cache_usage = a.v[MX_KV] > 1 ? 1 : a.v[MX_KV];
	if (a.seen[MX_INFLIGHT])
		out->inflight_tokens = mx_finite(a.v[MX_INFLIGHT]);
	else if (a.n_usage)
		out->inflight_tokens = mx_finite(mx_vllm_inflight(&a));
	/* Tokens per second: the engine's own gauge, else the counter's rate
	 * since the previous scrape. */
	double dt = hist->have && now_ms > hist->at_ms ? (double)(now_ms - hist->at_ms) / 1000 : 0;
	if (a.seen[MX_TPS])
		out->tokens_per_second = mx_finite(a.v[MX_TPS]);
	else if (a.seen[MX_TOKENS_TOTAL] && dt > 0 && hist->tokens_total >= 0 &&
		 a.v[MX_TOKENS_TOTAL] >= hist->tokens_total)
		out->tokens_per_second = mx_finite((a.v[MX_TOKENS_TOTAL] - hist->tokens_total) / dt);
	/* Time to first token: the histogram's mean over the requests that
	 * had their first token since the previous scrape. */
	if (a.seen[MX_TTFT_SUM] && a.seen[MX_TTFT_COUNT]) {
		double sum = a.v[MX_TTFT_SUM], count = a.v[MX_TTFT_COUNT];
		if (hist->have && count > hist->ttft_count && sum >= hist->ttft_sum)
			out->ttft_ms = mx_finite((sum - hist->ttft_sum) / (count - hist->ttft_count) * 1000);
		else if ((!hist->have || count < hist->ttft_count) && count > 0)
			out->ttft_ms = mx_finite(sum / count * 1000); /* first scrape, or a reset */
		else if (hist->have)
			out->ttft_ms = hist->ttft_ms;
		hist->ttft_sum = sum;
		hist->ttft_count = count;
	}
	hist->have = true;
	hist->at_ms = now_ms;
	hist->tokens_total = a.seen[MX_TOKENS_TOTAL] ? a.v[MX_TOKENS_TOTAL] : -1;
	hist->ttft_ms = out->ttft_ms;
	mx_ttft_p95(out, hist, &a);
	return 0;
}

json_t *sidecar_adapters_read(const char *text, size_t len, size_t *dropped)
{
	json_t *doc, *data, *e, *out;
	size_t i, skip = 0;
	if (dropped)
		*dropped = 0;
	if (!text || len > SIDECAR_MODELS_MAX_BYTES)
		return NULL;
	doc = json_loadb(text, len, 0, NULL);
	data = json_object_get(doc, "data");
	if (!json_is_array(data) || !(out = json_array())) {
		json_decref(doc);
		return NULL;
	}
	json_array_foreach(data, i, e) {
		json_t *id = json_object_get(e, "id");
		bool seen = false;
		size_t j;
		json_t *x;
		if (!json_is_string(json_object_get(e, "parent")))
			continue;
		if (!json_is_string(id) || json_string_length(id) == 0 ||
		    json_string_length(id) > SIDECAR_ADAPTER_NAME_MAX ||
		    strlen(json_string_value(id)) != json_string_length(id) ||
		    json_array_size(out) == SIDECAR_ADAPTERS_MAX) {
			skip++;
			continue;
		}
		json_array_foreach(out, j, x)
			seen |= json_equal(x, id);
		if (!seen)
			json_array_append(out, id);
	}
	json_decref(doc);
	if (dropped)
		*dropped = skip;
	return out;
}
