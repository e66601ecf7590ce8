/* Per (model, version) request statistics over a sliding window, for
 * novad's comparison of a canary with the version it replaces (issue 18).
 *
 * The registry is a fixed number of entries, allocated as first used and
 * found by (model, version) through a jansson object index under one
 * mutex, taken only at table build (once per new replica object) and at
 * the report (once per demand period); the request path touches only its
 * entry, through the replica's pointer, under the entry's own mutex.
 * Rejected: a linear scan of the entries per new replica (a first snapshot
 * of thousands of endpoints against thousands of entries is millions of
 * compares in the watch thread), and freeing an entry when its last
 * replica leaves (the window of a version whose replicas were all replaced
 * a second ago is exactly what the rollback must still see). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/router_int.h"

/* A route's model name longer than this gets no statistics (novad's model
 * names are far shorter). */
#define RT_VSTAT_MODEL_MAX 256
/* The report's counts are capped here (novad takes 0..1e9). */
#define RT_VSTAT_COUNT_CAP 1000000000ULL

const long long router_ttft_bounds_ms[ROUTER_TTFT_BUCKETS - 1] = {
	10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
};

struct rt_vslot {
	long long epoch;            /* -1: never used */
	unsigned long long requests, errors;
	unsigned long long ttft[ROUTER_TTFT_BUCKETS];
};

struct router_vstat {
	pthread_mutex_t lock;       /* the slots and totals */
	atomic_int refs;            /* replica objects pointing here */
	bool in_use;                /* under the registry's lock */
	size_t index;               /* in the registry */
	char model[RT_VSTAT_MODEL_MAX];
	char version[ROUTER_VERSION_MAX + 1];
	struct rt_vslot slot[ROUTER_VSTATS_SLOTS];
	unsigned long long total_requests, total_errors;
};

struct router_vstats {
	pthread_mutex_t lock;       /* the index, the entries' in_use and names */
	size_t max, n;              /* entries allocated so far, at most max */
	struct router_vstat **e;
	json_t *index;              /* "version/model" -> index (a version has no '/') */
};

bool router_version_valid(const char *v)
{
	size_t n = 0;
	if (!v)
		return false;
	for (; v[n]; n++) {
		char c = v[n];
		if (n >= ROUTER_VERSION_MAX ||
		    !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

size_t router_ttft_bucket(long long ms)
{
	size_t i = 0;
	while (i < ROUTER_TTFT_BUCKETS - 1 && ms > router_ttft_bounds_ms[i])
		i++;
	return i;
}

struct router_vstats *router_vstats_create(size_t max)
{
	struct router_vstats *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->max = max;
	if (!(s->e = calloc(max ? max : 1, sizeof(*s->e))) || !(s->index = json_object())) {
		free(s->e);
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void router_vstats_destroy(struct router_vstats *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		pthread_mutex_destroy(&s->e[i]->lock);
		free(s->e[i]);
	}
	free(s->e);
	json_decref(s->index);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void vs_reset(struct router_vstat *e)
{
	for (size_t k = 0; k < ROUTER_VSTATS_SLOTS; k++) {
		memset(&e->slot[k], 0, sizeof(e->slot[k]));
		e->slot[k].epoch = -1;
	}
	e->total_requests = e->total_errors = 0;
}

struct router_vstat *rt_vstat_acquire(struct router_vstats *s, const char *model,
				      const char *version)
{
	char key[ROUTER_VERSION_MAX + 1 + RT_VSTAT_MODEL_MAX];
	struct router_vstat *e = NULL;
	if (!s || !model || !router_version_valid(version) || strlen(model) >= RT_VSTAT_MODEL_MAX)
		return NULL;
	snprintf(key, sizeof(key), "%s/%s", version, model);
	pthread_mutex_lock(&s->lock);
	json_t *v = json_object_get(s->index, key);
	if (v) {
		e = s->e[json_integer_value(v)];
		goto out;
	}
	/* A free entry (one the report let go), else a new one. */
	for (size_t i = 0; i < s->n && !e; i++)
		if (!s->e[i]->in_use)
			e = s->e[i];
	if (!e && s->n < s->max && (e = calloc(1, sizeof(*e)))) {
		pthread_mutex_init(&e->lock, NULL);
		e->index = s->n;
		s->e[s->n++] = e;
	}
	if (!e)
		goto out; /* full: this version is not counted */
	if (json_object_set_new(s->index, key, json_integer((json_int_t)e->index)) != 0) {
		e = NULL;
		goto out;
	}
	pthread_mutex_lock(&e->lock);
	vs_reset(e);
	pthread_mutex_unlock(&e->lock);
	snprintf(e->model, sizeof(e->model), "%s", model);
	snprintf(e->version, sizeof(e->version), "%s", version);
	e->in_use = true;
out:
	if (e)
		atomic_fetch_add(&e->refs, 1);
	pthread_mutex_unlock(&s->lock);
	return e;
}

/* Without the registry's lock: the count only falls here, and an entry is
 * reused only at 0, under the lock, where it also only rises. */
void rt_vstat_release(struct router_vstat *e)
{
	if (e)
		atomic_fetch_sub(&e->refs, 1);
}

void router_vstat_record(struct router_vstat *e, long long now_ms, bool failed, long long ttft_ms)
{
	if (!e)
		return;
	long long epoch = now_ms / ROUTER_VSTATS_SLOT_MS;
	pthread_mutex_lock(&e->lock);
	struct rt_vslot *sl = &e->slot[epoch % ROUTER_VSTATS_SLOTS];
	if (sl->epoch != epoch) {
		memset(sl, 0, sizeof(*sl));
		sl->epoch = epoch;
	}
	sl->requests++;
	e->total_requests++;
	if (failed) {
		sl->errors++;
		e->total_errors++;
	}
	if (ttft_ms >= 0)
		sl->ttft[router_ttft_bucket(ttft_ms)]++;
	pthread_mutex_unlock(&e->lock);
}

static json_int_t vs_cap(unsigned long long v)
{
	return (json_int_t)(v > RT_VSTAT_COUNT_CAP ? RT_VSTAT_COUNT_CAP : v);
}

json_t *router_vstats_report(struct router_vstats *s, long long now_ms)
{
	json_t *out = NULL;
	long long epoch = now_ms / ROUTER_VSTATS_SLOT_MS;
	if (!s)
		return NULL;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		struct router_vstat *e = s->e[i];
		struct rt_vslot sum = {0};
		if (!e->in_use)
			continue;
		pthread_mutex_lock(&e->lock);
		for (size_t k = 0; k < ROUTER_VSTATS_SLOTS; k++) {
			const struct rt_vslot *sl = &e->slot[k];
			if (sl->epoch < 0 || sl->epoch > epoch || sl->epoch <= epoch - ROUTER_VSTATS_SLOTS)
				continue;
			sum.requests += sl->requests;
			sum.errors += sl->errors;
			for (size_t b = 0; b < ROUTER_TTFT_BUCKETS; b++)
				sum.ttft[b] += sl->ttft[b];
		}
		pthread_mutex_unlock(&e->lock);
		if (!sum.requests) {
			if (atomic_load(&e->refs) == 0) { /* gone, and its window empty: free */
				char key[ROUTER_VERSION_MAX + 1 + RT_VSTAT_MODEL_MAX];
				snprintf(key, sizeof(key), "%s/%s", e->version, e->model);
				json_object_del(s->index, key);
				e->in_use = false;
			}
			continue;
		}
		json_t *buckets = json_array(), *model;
		for (size_t b = 0; buckets && b < ROUTER_TTFT_BUCKETS; b++)
			json_array_append_new(buckets, json_integer(vs_cap(sum.ttft[b])));
		if (!out)
			out = json_object();
		if (!out || !buckets) {
			json_decref(buckets);
			break;
		}
		if (!(model = json_object_get(out, e->model))) {
			model = json_object();
			json_object_set_new(out, e->model, model);
		}
		json_object_set_new(model, e->version,
				    json_pack("{s:i, s:I, s:I, s:o}", "window_s", ROUTER_VSTATS_WINDOW_S,
					      "requests", vs_cap(sum.requests), "errors",
					      vs_cap(sum.errors), "ttft_buckets", buckets));
	}
	pthread_mutex_unlock(&s->lock);
	return out;
}

void router_vstats_totals(struct router_vstats *s,
			  void (*fn)(void *ctx, const char *model, const char *version,
				     unsigned long long requests, unsigned long long errors),
			  void *ctx)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n; i++) {
		struct router_vstat *e = s->e[i];
		if (!e->in_use)
			continue;
		pthread_mutex_lock(&e->lock);
		unsigned long long req = e->total_requests, errs = e->total_errors;
		pthread_mutex_unlock(&e->lock);
		fn(ctx, e->model, e->version, req, errs);
	}
	pthread_mutex_unlock(&s->lock);
}
