#include "core/metrics.h"

#include <stdio.h>
#include <string.h>

static const double metrics_bounds[METRICS_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void metrics_head(struct textbuf *t, const char *name, const char *type, const char *help)
{
	textbuf_addf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_sample(struct textbuf *t, const char *name, const char *labels, double value)
{
	if (labels && *labels)
		textbuf_addf(t, "%s{%s} %.15g\n", name, labels, value);
	else
		textbuf_addf(t, "%s %.15g\n", name, value);
}

void metrics_one(struct textbuf *t, const char *name, const char *type, const char *help,
		 double value)
{
	metrics_head(t, name, type, help);
	metrics_sample(t, name, NULL, value);
}

void metrics_label_escape(char *out, size_t len, const char *v)
{
	size_t o = 0;
	if (!len)
		return;
	for (; v && *v; v++) {
		unsigned char c = (unsigned char)*v;
		size_t need = (c == '\\' || c == '"' || c == '\n') ? 2 : 1;
		/* A UTF-8 lead byte: room for its whole sequence, or stop. */
		if (c >= 0xc0) {
			size_t seq = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
			need = seq;
		}
		if (o + need >= len)
			break;
		if (need == 2 && c < 0x80) {
			out[o++] = '\\';
			out[o++] = c == '\n' ? 'n' : (char)c;
			continue;
		}
		size_t k = 0;
		while (k < need && v[k])
			k++;
		if (k < need)
			break; /* the text ends inside a sequence */
		memcpy(out + o, v, need);
		o += need;
		v += need - 1;
	}
	out[o] = '\0';
}

void metrics_hist_observe(struct metrics_hist *h, double seconds)
{
	size_t i = 0;
	if (seconds < 0)
		seconds = 0;
	while (i < METRICS_BUCKETS && seconds > metrics_bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (unsigned long long)(seconds * 1e6),
				  memory_order_relaxed);
}

unsigned long long metrics_hist_total(const struct metrics_hist *h)
{
	unsigned long long n = 0;
	for (size_t i = 0; i <= METRICS_BUCKETS; i++)
		n += atomic_load_explicit(&h->count[i], memory_order_relaxed);
	return n;
}

void metrics_hist_write(struct textbuf *t, const char *name, const char *labels,
			const struct metrics_hist *h)
{
	const char *sep = labels && *labels ? "," : "";
	unsigned long long cum = 0;
	if (!labels)
		labels = "";
	for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->count[i], memory_order_relaxed);
		if (i < METRICS_BUCKETS)
			textbuf_addf(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
				     metrics_bounds[i], cum);
		else
			textbuf_addf(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, cum);
	}
	textbuf_addf(t, "%s_sum%s%s%s %.6f\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
		     (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
	textbuf_addf(t, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
		     *labels ? "}" : "", cum);
}
