/* Prometheus text exposition (format 0.0.4) for every program's /metrics:
 * HELP and TYPE lines, samples with escaped labels, and histograms whose
 * counts are atomics, so a hot path observes without a lock and a scrape
 * reads without stopping it.
 *
 * Label sets are the caller's, already formatted (`route="/v1/pools",
 * status="200"`, values passed through metrics_label_escape): the module
 * does not intern label sets, so cardinality stays what each caller bounds
 * (per pool, deployment, model, route template, status: never per request
 * or node). Rejected: a registry of named metrics with lookups by label
 * values on the hot path (prometheus-client-c's design), which costs a hash
 * and a lock per observation for what fixed arrays do here. */
#ifndef NOVA_CORE_METRICS_H
#define NOVA_CORE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>

#include "core/textbuf.h"

/* "# HELP name help\n# TYPE name type\n" (help must not hold a newline). */
void metrics_head(struct textbuf *t, const char *name, const char *type, const char *help);
/* "name{labels} value\n"; labels NULL or "" for none. */
void metrics_sample(struct textbuf *t, const char *name, const char *labels, double value);
/* metrics_head, then one unlabelled sample. */
void metrics_one(struct textbuf *t, const char *name, const char *type, const char *help,
		 double value);
/* v (NULL: "") with \, " and newline escaped, cut to fit len (never in the
 * middle of an escape or of a UTF-8 character). */
void metrics_label_escape(char *out, size_t len, const char *v);

/* A histogram of durations in seconds over fixed bounds (METRICS_BUCKETS:
 * 0.5 ms to 10 s), each count and the sum an atomic. Zero-initialised
 * storage is an empty histogram. */
#define METRICS_BUCKETS 14
struct metrics_hist {
	atomic_ullong count[METRICS_BUCKETS + 1]; /* the last: above every bound */
	atomic_ullong sum_us;
};
void metrics_hist_observe(struct metrics_hist *h, double seconds);
/* The _bucket (cumulative, le="+Inf" last), _sum and _count samples of
 * name, each with labels (NULL or "" for none) before le. No HELP/TYPE. */
void metrics_hist_write(struct textbuf *t, const char *name, const char *labels,
			const struct metrics_hist *h);
/* How many observations h holds. */
unsigned long long metrics_hist_total(const struct metrics_hist *h);

#endif
