/* libFuzzer target: an engine's /metrics text through the sidecar's
 * Prometheus parser and the load read from it (sidecar/metrics.h), twice,
 * so rates and means over two scrapes run too. Every sample handed out must
 * be well formed, every load field -1 or a finite number >= 0 (KV-cache use
 * at most 1): the heartbeat refuses anything else. Seeds:
 * fuzz/corpus/metrics/. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fz_name_ok(const char *s, bool colon)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
		      (*s >= '0' && *s <= '9') || (colon && *s == ':')))
			return false;
	return true;
}

static int fz_sample(void *ctx, const struct sidecar_metric_sample *s)
{
	size_t *n = ctx;
	if (!fz_name_ok(s->name, true) || s->n_labels > SIDECAR_METRICS_MAX_LABELS || s->line == 0)
		abort();
	for (size_t i = 0; i < s->n_labels; i++) {
		if (!fz_name_ok(s->labels[i].name, false) ||
		    strlen(s->labels[i].value) > s->labels[i].value_len ||
		    s->labels[i].value_len >= SIDECAR_METRICS_MAX_LABEL_BYTES)
			abort();
		for (size_t j = 0; j < i; j++)
			if (!strcmp(s->labels[i].name, s->labels[j].name))
				abort();
	}
	(*n)++;
	return 0;
}

static void fz_field(double v, double max)
{
	if (v != -1 && (!isfinite(v) || v < 0 || v > max))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sidecar_metrics_stats st;
	struct sidecar_load_history h;
	struct sidecar_load l;
	struct nova_err err;
	size_t n = 0;
	const char *text = (const char *)data;
	if (sidecar_metrics_parse(&st, text, size, fz_sample, &n, &err))
		abort(); /* under the size cap: never refused whole */
	if (n != st.samples || st.samples + st.bad_lines > st.lines ||
	    (st.bad_lines && (!st.first_bad_line || !st.first_bad_reason[0])))
		abort();
	memset(&h, 0, sizeof(h));
	for (long long at = 1000; at <= 3000; at += 1000) {
		if (sidecar_load_read(&l, &h, text, size, at, &err))
			abort();
		fz_field(l.queue_depth, INFINITY);
		fz_field(l.running, INFINITY);
		fz_field(l.kv_cache_usage, 1);
		fz_field(l.tokens_per_second, INFINITY);
		fz_field(l.ttft_ms, INFINITY);
		fz_field(l.inflight_tokens, INFINITY);
	}
	return 0;
}
