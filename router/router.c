#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "router/router_int.h"

long long rt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const double rt_hist_bounds[RT_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
						1,     2.5,  5,     10,   30,  60};

static size_t rt_metrics_entry(struct rt_metrics *mx, const char *key);

size_t rt_metrics_begin(struct rt_metrics *mx, const char *key)
{
	pthread_mutex_lock(&mx->lock);
	size_t idx = rt_metrics_entry(mx, key);
	if (idx)
		mx->m[idx - 1].in_flight++;
	pthread_mutex_unlock(&mx->lock);
	return idx;
}

static void rt_hist_add(struct rt_hist *h, double v)
{
	size_t i = 0;
	while (i < RT_HIST_BUCKETS && v > rt_hist_bounds[i])
		i++;
	h->b[i]++;
	h->sum += v;
	h->count++;
}

void rt_metrics_end(struct rt_metrics *mx, size_t idx, int status, long long duration_ms,
		    long long first_byte_ms)
{
	if (!idx)
		return;
	pthread_mutex_lock(&mx->lock);
	struct rt_model_stats *m = &mx->m[idx - 1];
	m->in_flight--;
	m->by_class[status >= 100 && status < 600 ? status / 100 : 0]++;
	rt_hist_add(&m->duration, (double)duration_ms / 1000.0);
	if (first_byte_ms >= 0)
		rt_hist_add(&m->first_byte, (double)first_byte_ms / 1000.0);
	pthread_mutex_unlock(&mx->lock);
}

/* The entry of key, created (caller holds the lock): its index + 1, or 0. */
static size_t rt_metrics_entry(struct rt_metrics *mx, const char *key)
{
	for (size_t i = 0; i < mx->n; i++)
		if (!strcmp(mx->m[i].key, key))
			return i + 1;
	if (mx->n >= RT_MODELS_MAX || strlen(key) >= sizeof(mx->m[0].key))
		return 0;
	if (mx->n == mx->cap) {
		size_t cap = mx->cap ? mx->cap * 2 : 16;
		struct rt_model_stats *m = realloc(mx->m, cap * sizeof(*m));
		if (!m)
			return 0;
		mx->m = m;
		mx->cap = cap;
	}
	memset(&mx->m[mx->n], 0, sizeof(mx->m[0]));
	snprintf(mx->m[mx->n].key, sizeof(mx->m[0].key), "%s", key);
	return ++mx->n;
}

int rt_metrics_wait_enter(size_t *idx, struct rt_metrics *mx, const char *key, unsigned max)
{
	int rc = 0;
	pthread_mutex_lock(&mx->lock);
	*idx = rt_metrics_entry(mx, key);
	if (*idx) {
		struct rt_model_stats *m = &mx->m[*idx - 1];
		if (m->waiting >= (long long)max) {
			m->queue_rejected++;
			m->by_class[4]++;
			rc = -1;
		} else {
			m->waiting++;
		}
	} else {
		rc = -1; /* no entry to count the wait in: refused as full */
	}
	pthread_mutex_unlock(&mx->lock);
	return rc;
}

void rt_metrics_wait_leave(struct rt_metrics *mx, size_t idx, enum rt_wait_end why, int status)
{
	if (!idx)
		return;
	pthread_mutex_lock(&mx->lock);
	struct rt_model_stats *m = &mx->m[idx - 1];
	m->waiting--;
	if (why == RT_WAIT_TIMED_OUT)
		m->queue_timeouts++;
	else if (why == RT_WAIT_ABANDONED)
		m->queue_abandoned++;
	if (why != RT_WAIT_STARTED)
		m->by_class[status >= 100 && status < 600 ? status / 100 : 0]++;
	pthread_mutex_unlock(&mx->lock);
}

void rt_metrics_tokens(struct rt_metrics *mx, size_t idx, long long prompt, long long completion)
{
	if (!idx || (prompt <= 0 && completion <= 0))
		return;
	pthread_mutex_lock(&mx->lock);
	mx->m[idx - 1].prompt_tokens += (unsigned long long)(prompt > 0 ? prompt : 0);
	mx->m[idx - 1].completion_tokens += (unsigned long long)(completion > 0 ? completion : 0);
	pthread_mutex_unlock(&mx->lock);
}

struct router_table *rt_table_get(struct router *r)
{
	pthread_mutex_lock(&r->lock);
	struct router_table *t = r->table;
	if (t)
		atomic_fetch_add(&t->refs, 1);
	pthread_mutex_unlock(&r->lock);
	return t;
}

struct router_keys *rt_keys_get(struct router *r)
{
	pthread_mutex_lock(&r->lock);
	struct router_keys *k = router_keys_ref(r->keys);
	pthread_mutex_unlock(&r->lock);
	return k;
}

void rt_table_set(struct router *r, struct router_table *t)
{
	pthread_mutex_lock(&r->lock);
	struct router_table *old = r->table;
	r->table = t;
	r->table_at_ms = rt_now_ms();
	pthread_mutex_unlock(&r->lock);
	router_table_unref(old);
	atomic_fetch_add(&r->table_gen, 1);
	if (atomic_load(&r->stats.waiting) > 0)
		rt_loops_table_changed(r);
}

void rt_keys_set(struct router *r, struct router_keys *k)
{
	pthread_mutex_lock(&r->lock);
	struct router_keys *old = r->keys;
	r->keys = k;
	r->keys_at_ms = rt_now_ms();
	pthread_mutex_unlock(&r->lock);
	router_keys_unref(old);
}

int router_create(struct router **out, const struct router_config *cfg, struct nova_err *err)
{
	int rc;
	*out = NULL;
	if ((rc = router_config_check(cfg, err)))
		return rc;
	struct router *r = calloc(1, sizeof(*r));
	if (!r)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	r->cfg = *cfg;
	if (!r->cfg.threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		r->cfg.threads = n < 1 ? 1 : n > 8 ? 8 : (unsigned)n;
	}
	r->listen_fd = -1;
	if (r->cfg.policy == ROUTER_POLICY_PREFIX &&
	    !(r->prefixes = router_prefix_map_create(r->cfg.prefix_memory))) {
		free(r);
		return nova_err_set(err, NOVA_EINTERNAL, "prefix_memory",
				    "out of memory for %u prefix blocks", cfg->prefix_memory);
	}
	if (!(r->vstats = router_vstats_create(ROUTER_VSTATS_MAX))) {
		router_prefix_map_destroy(r->prefixes);
		free(r);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->stop_lock, NULL);
	pthread_mutex_init(&r->metrics.lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->stop_cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = r;
	return 0;
}

int router_start(struct router *r, struct nova_err *err)
{
	int rc;
	if ((rc = rt_loops_start(r, err)))
		return rc;
	/* Stable for this process's life, unique among routers reporting to
	 * one novad: two on one host differ by port or pid. */
	char host[64] = "";
	if (gethostname(host, sizeof(host)) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(r->id, sizeof(r->id), "%s:%u:%ld", host, (unsigned)r->port, (long)getpid());
	if ((rc = rt_control_start(r, err))) {
		rt_loops_stop(r);
		return rc;
	}
	return 0;
}

uint16_t router_port(const struct router *r)
{
	return r->port;
}

void router_stop(struct router *r)
{
	if (!r)
		return;
	rt_control_stop(r);
	rt_loops_stop(r);
}

void router_destroy(struct router *r)
{
	if (!r)
		return;
	router_stop(r);
	router_table_unref(r->table);
	router_keys_unref(r->keys);
	router_prefix_map_destroy(r->prefixes);
	router_vstats_destroy(r->vstats); /* after the tables: their replicas reference it */
	explicit_bzero(r->cfg.token, sizeof(r->cfg.token));
	free(r->metrics.m);
	pthread_mutex_destroy(&r->metrics.lock);
	pthread_cond_destroy(&r->stop_cond);
	pthread_mutex_destroy(&r->stop_lock);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
