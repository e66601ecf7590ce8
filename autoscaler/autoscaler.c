/* The autoscaler's loop (autoscaler/autoscaler.h). */
#include "autoscaler/autoscaler.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "deployments/deployment.h"
#include "inventory/demand.h"

struct autoscaler {
	struct db_pool *db;
	struct inventory *inv;
	struct autoscaler_config cfg;
	pthread_t tid;
	bool started;
	size_t last_autoscaled; /* deployments the last tick saw (the thread's) */
	atomic_bool stop;
	atomic_ullong ticks, ticks_failed, scaled_up, scaled_down, rollbacks;
};

void autoscaler_config_defaults(struct autoscaler_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tick_ms = 1000;
}

int autoscaler_create(struct autoscaler **out, struct db_pool *db, struct inventory *inv,
		      const struct autoscaler_config *cfg, struct nova_err *err)
{
	struct autoscaler *a = calloc(1, sizeof(*a));
	*out = NULL;
	if (!a)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	a->db = db;
	a->inv = inv;
	a->cfg = *cfg;
	if (!a->cfg.tick_ms)
		a->cfg.tick_ms = 1000;
	*out = a;
	return 0;
}

/* A load field, or -1 when the replica did not report it. */
static double as_load(const json_t *load, const char *name)
{
	const json_t *v = json_object_get(load, name);
	return json_is_number(v) ? json_number_value(v) : -1;
}

/* Add v (>= 0) to *sum, which stays -1 until something is added. */
static void as_add(double *sum, double v)
{
	if (v < 0)
		return;
	*sum = *sum < 0 ? v : *sum + v;
}

/* The engines' part of the signals: the loads of the ready replicas. */
static void as_engine_signals(struct autoscale_signals *s, const struct deployment_autoscaled *d,
			      const json_t *loads)
{
	const char *id;
	json_t *node;
	s->inflight_tokens = s->ttft_p95_ms = s->tokens_per_second = -1;
	json_object_foreach(d->ready, id, node) {
		const json_t *load = json_object_get(loads, id);
		if (!json_is_object(load))
			continue;
		s->reporting++;
		double q = as_load(load, "queue_depth"), r = as_load(load, "running");
		s->waiting += q > 0 ? q : 0;
		s->running += r > 0 ? r : 0;
		as_add(&s->inflight_tokens, as_load(load, "inflight_tokens"));
		as_add(&s->tokens_per_second, as_load(load, "tokens_per_second"));
		/* An idle engine reports its last TTFT until a new request
		 * finishes (sidecar/metrics.h): stale, and no reason to keep
		 * replicas. Only a replica with work says what TTFT is now. */
		if (q <= 0 && r <= 0)
			continue;
		double t = as_load(load, "ttft_p95_ms");
		if (t < 0)
			t = as_load(load, "ttft_ms");
		if (t > s->ttft_p95_ms)
			s->ttft_p95_ms = t;
	}
}

/* The routers' part: demand on the model's route key and its adapters'
 * keys ("model/adapter"), shared by the autoscaled deployments of the
 * model. */
static void as_router_signals(struct autoscale_signals *s, const char *model, unsigned sharing,
			      const struct inventory_demand *dm, size_t n_dm)
{
	size_t len = strlen(model);
	double waiting = 0, in_flight = 0;
	for (size_t i = 0; i < n_dm; i++) {
		if (strncmp(dm[i].model, model, len) != 0 ||
		    (dm[i].model[len] != '\0' && dm[i].model[len] != '/'))
			continue;
		waiting += (double)dm[i].waiting;
		in_flight += (double)dm[i].in_flight;
	}
	if (sharing > 1) {
		waiting /= sharing;
		in_flight /= sharing;
	}
	s->waiting += waiting;
	s->router_in_flight = in_flight;
}

static bool as_memory_moved(const struct autoscale_memory *was, const struct autoscale_memory *now)
{
	if (was->n != now->n ||
	    memcmp(was->at_ms, now->at_ms, now->n * sizeof(now->at_ms[0])) != 0 ||
	    memcmp(was->recs, now->recs, now->n * sizeof(now->recs[0])) != 0)
		return true;
	return now->active_ms - was->active_ms >= AUTOSCALER_ACTIVE_SAVE_MS ||
	       (was->active_ms == 0) != (now->active_ms == 0);
}

int autoscaler_tick(int *scaled, struct autoscaler *a, long long now_ms, struct nova_err *err)
{
	struct deployment_autoscaled *list = NULL;
	struct inventory_demand *dm = NULL;
	size_t n = 0, n_dm = 0;
	json_t *loads = NULL, *per_model = NULL;
	int rc, changed = 0;
	if (scaled)
		*scaled = 0;
	int rolled_back = 0;
	rc = autoscaler_guard_tick(&rolled_back, a->db, a->cfg.work, a->cfg.routes, err);
	atomic_fetch_add(&a->rollbacks, (unsigned long long)rolled_back);
	if (rc)
		goto out;
	if ((rc = deployment_autoscaled_list(&list, &n, a->db, err)))
		goto out;
	a->last_autoscaled = n;
	if (n == 0)
		goto out;
	if ((rc = inventory_demand_read(&dm, &n_dm, a->db, err)))
		goto out;
	/* Only the autoscaled deployments' replicas, each read on its node:
	 * not the whole fleet's loads copied several times a second. */
	json_t *wanted = json_object();
	per_model = json_object();
	for (size_t i = 0; wanted && i < n; i++)
		json_object_update(wanted, list[i].ready);
	/* How many autoscaled deployments share each model's demand: counted
	 * once, not by a scan of the list per deployment. */
	for (size_t i = 0; per_model && i < n; i++)
		json_object_set_new(per_model, list[i].model,
				    json_integer(json_integer_value(json_object_get(per_model, list[i].model)) + 1));
	loads = a->inv && wanted ? inventory_loads_of(a->inv, wanted) : json_object();
	json_decref(wanted);
	for (size_t i = 0; i < n; i++) {
		struct deployment_autoscaled *d = &list[i];
		struct autoscale_signals s = {.current = d->replicas, .quota_max = d->quota_max};
		struct autoscale_memory was = d->memory;
		struct autoscale_decision dec;
		json_int_t shared = json_integer_value(json_object_get(per_model, d->model));
		unsigned sharing = shared > 0 ? (unsigned)shared : 1;
		bool applied = false;
		as_engine_signals(&s, d, loads);
		as_router_signals(&s, d->model, sharing, dm, n_dm);
		autoscale_decide(&dec, &d->memory, &d->policy, &s, now_ms);
		if (dec.desired == d->replicas && !as_memory_moved(&was, &d->memory))
			continue;
		struct nova_err e;
		nova_err_clear(&e);
		if (deployment_autoscale_record(&applied, a->db, a->cfg.work, d->id, d->replicas, &dec,
						&d->memory, &e)) {
			/* One deployment's failure does not stop the others'. */
			nova_log_kv(NOVA_LOG_WARN, "autoscaler", "decision not recorded", "deployment",
				    d->name, "error", e.message, NULL);
			rc = nova_err_set(err, e.code, e.field, "%s", e.message);
			continue;
		}
		if (!applied || dec.desired == d->replicas)
			continue;
		changed++;
		notify_signal(a->cfg.routes);
		atomic_fetch_add(dec.desired > d->replicas ? &a->scaled_up : &a->scaled_down, 1);
		nova_log_kv(NOVA_LOG_INFO, "autoscaler", dec.reason, "deployment", d->name, NULL);
	}
out:
	json_decref(per_model);
	json_decref(loads);
	free(dm);
	deployment_autoscaled_free(list, n);
	atomic_fetch_add(&a->ticks, 1);
	if (rc)
		atomic_fetch_add(&a->ticks_failed, 1);
	if (scaled)
		*scaled = changed;
	return rc;
}

static long long as_epoch_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Ticks every tick_ms, at once when signalled (a router's waiting
 * request), and, while there are autoscaled deployments, as soon as new
 * loads came in a heartbeat (the inventory's loads generation, looked at
 * every AUTOSCALER_LOADS_POLL_MS, at most one tick per
 * AUTOSCALER_MIN_TICK_MS): a load step is decided on within a heartbeat
 * of reaching a replica's engine, not a heartbeat plus a tick. Rejected:
 * the heartbeat path signalling the autoscaler (a mutex per heartbeat on
 * the hottest path of a large fleet, for a reader that wants at most five
 * a second); polling costs ten wake-ups a second, and only while something
 * is autoscaled. */
static void *as_thread(void *arg)
{
	struct autoscaler *a = arg;
	unsigned long long seen = notify_seq(a->cfg.wake), loads_seen = 0;
	long long last_tick = 0;
	bool failing = false, ticked = false;
	while (!atomic_load(&a->stop)) {
		long long now = notify_now_ms();
		bool leader = !a->cfg.is_leader || a->cfg.is_leader(a->cfg.leader_ctx);
		unsigned long long loads = a->inv ? inventory_loads_generation(a->inv) : 0;
		bool due = !ticked || now - last_tick >= a->cfg.tick_ms ||
			   (loads != loads_seen && now - last_tick >= AUTOSCALER_MIN_TICK_MS);
		if (leader && due) {
			struct nova_err err;
			nova_err_clear(&err);
			loads_seen = loads;
			last_tick = now;
			ticked = true;
			int rc = autoscaler_tick(NULL, a, as_epoch_ms(), &err);
			if (rc && !failing)
				nova_log_kv(NOVA_LOG_WARN, "autoscaler", "tick failed", "error", err.message,
					    NULL);
			else if (!rc && failing)
				nova_log(NOVA_LOG_INFO, "autoscaler", "ticks work again");
			failing = rc != 0;
		}
		if (atomic_load(&a->stop))
			break;
		/* Until the next tick is due; in steps of the loads poll while
		 * something is autoscaled here. A signal ticks at once. */
		long long left = leader ? a->cfg.tick_ms - (notify_now_ms() - last_tick) : a->cfg.tick_ms;
		if (left < 1)
			left = 1;
		if (leader && a->inv && a->last_autoscaled > 0 && left > AUTOSCALER_LOADS_POLL_MS)
			left = AUTOSCALER_LOADS_POLL_MS;
		if (notify_wait(a->cfg.wake, &seen, (unsigned)left))
			ticked = false;
	}
	return NULL;
}

int autoscaler_start(struct autoscaler *a, struct nova_err *err)
{
	assert(a->cfg.wake);
	atomic_store(&a->stop, false);
	if (pthread_create(&a->tid, NULL, as_thread, a) != 0)
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the autoscaler thread");
	a->started = true;
	return 0;
}

void autoscaler_destroy(struct autoscaler *a)
{
	if (!a)
		return;
	if (a->started) {
		atomic_store(&a->stop, true);
		notify_signal(a->cfg.wake);
		pthread_join(a->tid, NULL);
	}
	free(a);
}

void autoscaler_counters_get(struct autoscaler_counters *out, const struct autoscaler *a)
{
	memset(out, 0, sizeof(*out));
	if (!a)
		return;
	out->ticks = atomic_load(&a->ticks);
	out->ticks_failed = atomic_load(&a->ticks_failed);
	out->scaled_up = atomic_load(&a->scaled_up);
	out->scaled_down = atomic_load(&a->scaled_down);
	out->rollbacks = atomic_load(&a->rollbacks);
}
