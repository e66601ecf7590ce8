/* GET /metrics: Prometheus text exposition (format 0.0.4).
 *
 * Two halves. What novad knows in memory is read at the scrape: the HTTP
 * server's requests and connections, heartbeats by result, the inventory
 * (database reachability, heartbeats held, flushes, the brake), the
 * routing table, the database pool, the reconciler's doings and whether
 * this novad holds the singleton duties. What the fleet is (nodes by pool
 * and state, deployments, replicas desired and ready, the load their
 * replicas report, the work queue) is read from the database by a thread
 * of its own every refresh (gw_fleet_metrics_start) and kept as text, so a
 * scrape never waits on the database and costs the same at any fleet size;
 * nova_fleet_metrics_age_seconds says how old that half is. During a
 * database outage the page still answers, and says so.
 *
 * Labels are bounded by what an operator names (pools, deployments,
 * models, route templates, statuses, states), never per node or request.
 * Rejected: reading the fleet at each scrape, whose aggregate over 100,000
 * nodes takes tens of milliseconds and would put every Prometheus server's
 * scrape interval on the database. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autoscaler/autoscaler.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/textbuf.h"
#include "deployments/deployment.h"
#include "deployments/reconciler.h"
#include "deployments/worker.h"
#include "events/events.h"
#include "gateway/gw_int.h"
#include "inventory/demand.h"
#include "inventory/inventory.h"
#include "inventory/routes.h"
#include "pools/pool.h"

const char *const gw_hb_result_names[GW_HB_RESULTS] = {
	"accepted", "no_token", "unauthenticated", "invalid", "unavailable", "error",
};

struct gw_fleet_metrics {
	struct gw *gw;
	bool (*is_leader)(void *ctx);
	void *leader_ctx;
	unsigned refresh_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;  /* on CLOCK_MONOTONIC */
	bool stop;
	char *text;           /* the fleet's families, as last read (under lock) */
	long long read_ms;    /* CLOCK_MONOTONIC of that read; 0: never */
	unsigned long long reads_failed;
};

static long long gw_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds as seconds, -1 kept as "never". */
static double gw_seconds(long long ms)
{
	return ms < 0 ? -1.0 : (double)ms / 1000.0;
}

/* --- the fleet, read from the database --------------------------------------- */

struct gw_load_sum {
	double queue, tps, ttft_ms, kv;
	unsigned n, n_kv;
};

/* The load the ready replicas of each deployment last reported (to this
 * novad: heartbeats taken elsewhere are not in its memory), summed. */
static void gw_fleet_loads(struct textbuf *t, const json_t *deps, json_t *loads)
{
	size_t i, j;
	const json_t *d, *id;
	static const struct {
		const char *name, *help;
	} fam[] = {
		{"nova_deployment_queue_depth",
		 "Requests waiting or running on the deployment's ready replicas, as their engines "
		 "last reported (heartbeats taken by this novad)."},
		{"nova_deployment_tokens_per_second",
		 "Tokens per second the deployment's ready replicas last reported, summed."},
		{"nova_deployment_time_to_first_token_seconds",
		 "Time to first token the deployment's ready replicas last reported, their mean."},
		{"nova_deployment_kv_cache_usage_ratio",
		 "KV-cache use the deployment's ready replicas last reported, their mean (0..1)."},
	};
	size_t n = json_array_size(deps);
	struct gw_load_sum *sums = calloc(n ? n : 1, sizeof(*sums));
	if (!sums) {
		t->failed = true;
		return;
	}
	json_array_foreach(deps, i, d) {
		json_array_foreach(json_object_get(d, "replica_ids"), j, id) {
			const json_t *l = json_object_get(loads, json_string_value(id));
			if (!json_is_object(l))
				continue;
			sums[i].queue += json_number_value(json_object_get(l, "queue_depth"));
			sums[i].tps += json_number_value(json_object_get(l, "tokens_per_second"));
			sums[i].ttft_ms += json_number_value(json_object_get(l, "ttft_ms"));
			sums[i].n++;
			const json_t *kv = json_object_get(l, "kv_cache_usage");
			if (json_is_number(kv)) {
				sums[i].kv += json_number_value(kv);
				sums[i].n_kv++;
			}
		}
	}
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		metrics_head(t, fam[f].name, "gauge", fam[f].help);
		json_array_foreach(deps, i, d) {
			char dep[256], model[256], labels[600];
			if (!sums[i].n || (f == 3 && !sums[i].n_kv))
				continue;
			metrics_label_escape(dep, sizeof(dep), json_string_value(json_object_get(d, "name")));
			metrics_label_escape(model, sizeof(model),
					     json_string_value(json_object_get(d, "model")));
			snprintf(labels, sizeof(labels), "deployment=\"%s\",model=\"%s\"", dep, model);
			double v = f == 0   ? sums[i].queue
				   : f == 1 ? sums[i].tps
				   : f == 2 ? sums[i].ttft_ms / 1000.0 / sums[i].n
					    : sums[i].kv / sums[i].n_kv;
			metrics_sample(t, fam[f].name, labels, v);
		}
	}
	free(sums);
}

/* What the routers report waiting and in flight, per route key, summed
 * over the routers whose report is younger than its TTL
 * (inventory/demand.h): the autoscaler's signal, to see beside it. */
static int gw_fleet_demand(struct textbuf *t, struct gw *gw, struct nova_err *err)
{
	struct inventory_demand *d = NULL;
	size_t n = 0;
	int rc = inventory_demand_read(&d, &n, gw->deps.db, err);
	if (rc)
		return rc;
	metrics_head(t, "nova_router_waiting_requests", "gauge",
		     "Requests the routers hold waiting for a replica of a model (none ready), as "
		     "they last reported.");
	for (size_t i = 0; i < n; i++) {
		char model[INVENTORY_DEMAND_KEY_MAX * 2 + 1], labels[sizeof(model) + 16];
		metrics_label_escape(model, sizeof(model), d[i].model);
		snprintf(labels, sizeof(labels), "model=\"%s\"", model);
		metrics_sample(t, "nova_router_waiting_requests", labels, (double)d[i].waiting);
	}
	metrics_head(t, "nova_router_in_flight_requests", "gauge",
		     "Requests the routers have in flight to a model's replicas, as they last reported.");
	for (size_t i = 0; i < n; i++) {
		char model[INVENTORY_DEMAND_KEY_MAX * 2 + 1], labels[sizeof(model) + 16];
		metrics_label_escape(model, sizeof(model), d[i].model);
		snprintf(labels, sizeof(labels), "model=\"%s\"", model);
		metrics_sample(t, "nova_router_in_flight_requests", labels, (double)d[i].in_flight);
	}
	free(d);
	return 0;
}

/* One read of the fleet as exposition text (caller frees), or NULL. */
static char *gw_fleet_read(struct gw *gw, struct nova_err *err)
{
	struct textbuf t = {0};
	json_t *nodes = NULL, *deps = NULL, *loads = NULL;
	struct worker_queue_stats q;
	size_t i;
	const json_t *x;
	char *out = NULL;
	if (pool_node_counts(&nodes, gw->deps.db, err) || deployment_counts(&deps, gw->deps.db, err) ||
	    worker_queue_stats(&q, gw->deps.db, err))
		goto out;

	metrics_head(&t, "nova_nodes", "gauge", "Live nodes by pool and state.");
	json_array_foreach(nodes, i, x) {
		char pool[256], labels[400];
		metrics_label_escape(pool, sizeof(pool), json_string_value(json_object_get(x, "pool")));
		snprintf(labels, sizeof(labels), "pool=\"%s\",state=\"%s\"", pool,
			 json_string_value(json_object_get(x, "state")));
		metrics_sample(&t, "nova_nodes", labels,
			       (double)json_integer_value(json_object_get(x, "n")));
	}

	unsigned by_state[DEPLOYMENT_STATE_COUNT] = {0};
	json_array_foreach(deps, i, x) {
		enum deployment_state s;
		if (deployment_state_parse(&s, json_string_value(json_object_get(x, "state"))) == 0)
			by_state[s]++;
	}
	metrics_head(&t, "nova_deployments", "gauge", "Deployments by state.");
	for (unsigned s = 0; s < DEPLOYMENT_STATE_COUNT; s++) {
		char labels[48];
		snprintf(labels, sizeof(labels), "state=\"%s\"",
			 deployment_state_name((enum deployment_state)s));
		metrics_sample(&t, "nova_deployments", labels, by_state[s]);
	}
	static const char *const rep_fams[][2] = {
		{"nova_deployment_replicas_desired", "Replicas each deployment asks for."},
		{"nova_deployment_replicas_ready", "Replicas of each deployment that are ready."},
	};
	for (size_t f = 0; f < 2; f++) {
		metrics_head(&t, rep_fams[f][0], "gauge", rep_fams[f][1]);
		json_array_foreach(deps, i, x) {
			char dep[256], model[256], pool[256], labels[900];
			metrics_label_escape(dep, sizeof(dep), json_string_value(json_object_get(x, "name")));
			metrics_label_escape(model, sizeof(model),
					     json_string_value(json_object_get(x, "model")));
			metrics_label_escape(pool, sizeof(pool), json_string_value(json_object_get(x, "pool")));
			snprintf(labels, sizeof(labels), "deployment=\"%s\",model=\"%s\",pool=\"%s\"", dep,
				 model, pool);
			metrics_sample(&t, rep_fams[f][0], labels,
				       (double)json_integer_value(json_object_get(x, f ? "ready" : "desired")));
		}
	}
	loads = inventory_loads(gw->deps.inventory);
	gw_fleet_loads(&t, deps, loads);
	if (gw_fleet_demand(&t, gw, err))
		goto out;

	metrics_one(&t, "nova_work_items_queued", "gauge", "Work items waiting for a worker (fleet).",
		    (double)q.queued);
	metrics_one(&t, "nova_work_items_oldest_age_seconds", "gauge",
		    "Age of the oldest queued work item (0: none queued).", q.oldest_s);
	metrics_one(&t, "nova_work_items_queued_attempts", "gauge",
		    "Attempts already spent on the queued work items (retries in progress).",
		    (double)q.attempts);
	metrics_one(&t, "nova_work_items_failed", "gauge",
		    "Work items that failed for good (their attempts used up).", (double)q.failed);
	if (!t.failed) {
		out = t.p;
		t.p = NULL;
	} else {
		nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
out:
	textbuf_finish(&t);
	json_decref(nodes);
	json_decref(deps);
	json_decref(loads);
	return out;
}

static void *gw_fleet_main(void *arg)
{
	struct gw_fleet_metrics *f = arg;
	pthread_mutex_lock(&f->lock);
	while (!f->stop) {
		pthread_mutex_unlock(&f->lock);
		struct nova_err err;
		nova_err_clear(&err);
		char *text = gw_fleet_read(f->gw, &err);
		pthread_mutex_lock(&f->lock);
		if (text) {
			free(f->text);
			f->text = text;
			f->read_ms = gw_mono_ms();
		} else {
			f->reads_failed++;
			nova_log_kv(NOVA_LOG_DEBUG, "gateway", "reading the fleet for /metrics failed",
				    "error", err.message, NULL);
		}
		long long next = gw_mono_ms() + f->refresh_ms;
		struct timespec until = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000L};
		while (!f->stop && gw_mono_ms() < next)
			pthread_cond_timedwait(&f->wake, &f->lock, &until);
	}
	pthread_mutex_unlock(&f->lock);
	return NULL;
}

int gw_fleet_metrics_start(struct gw *gw, bool (*is_leader)(void *ctx), void *ctx,
			   unsigned refresh_ms, struct nova_err *err)
{
	struct gw_fleet_metrics *f = calloc(1, sizeof(*f));
	pthread_condattr_t ca;
	if (!f)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	f->gw = gw;
	f->is_leader = is_leader;
	f->leader_ctx = ctx;
	f->refresh_ms = refresh_ms ? refresh_ms : 5000;
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&f->thread, NULL, gw_fleet_main, f) != 0) {
		pthread_cond_destroy(&f->wake);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the metrics thread");
	}
	gw->fleet = f;
	return 0;
}

void gw_fleet_metrics_stop(struct gw *gw)
{
	struct gw_fleet_metrics *f = gw->fleet;
	if (!f)
		return;
	pthread_mutex_lock(&f->lock);
	f->stop = true;
	pthread_cond_signal(&f->wake);
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->wake);
	pthread_mutex_destroy(&f->lock);
	free(f->text);
	free(f);
	gw->fleet = NULL;
}

/* --- the scrape ------------------------------------------------------------------ */

static void gw_metrics_inventory(struct textbuf *t, struct gw *gw)
{
	struct inventory_status st;
	inventory_status_get(&st, gw->deps.inventory);
	metrics_one(t, "nova_database_up", "gauge",
		    "Whether this novad's last write of heartbeats reached the database.",
		    st.database_ok ? 1 : 0);
	metrics_one(t, "nova_inventory_flush_age_seconds", "gauge",
		    "Seconds since this novad last wrote heartbeats to the database (-1: never).",
		    gw_seconds(st.flush_age_ms));
	metrics_head(t, "nova_inventory_flush_duration_seconds", "histogram",
		     "Time each flush of heartbeats to the database took, written or not.");
	metrics_hist_write(t, "nova_inventory_flush_duration_seconds", NULL, st.flush_seconds);
	metrics_one(t, "nova_inventory_flush_rows_total", "counter",
		    "Heartbeat rows this novad wrote to the database.", (double)st.rows_flushed);
	metrics_one(t, "nova_inventory_flush_failures_total", "counter",
		    "Flushes of heartbeats that did not reach the database.", (double)st.flushes_failed);
	metrics_one(t, "nova_inventory_loads_written_total", "counter",
		    "Replica reports (changed ones only) this novad's flushes sent to node_loads.",
		    (double)st.loads_written);
	metrics_one(t, "nova_inventory_loads_read_total", "counter",
		    "Rows of node_loads written by other novads that this novad read.",
		    (double)st.loads_read);
	metrics_one(t, "nova_inventory_loads_merged_total", "counter",
		    "Replica reports of other novads newer than what this novad held, taken.",
		    (double)st.loads_merged);
	metrics_one(t, "nova_inventory_nodes", "gauge",
		    "Nodes whose heartbeats this novad can check from memory.", (double)st.nodes_known);
	metrics_one(t, "nova_inventory_heartbeat_interval_seconds", "gauge",
		    "The heartbeat interval this novad tells sidecars now: the configured one, "
		    "or the fleet over max_heartbeats_per_second when longer.",
		    (double)st.interval_ms / 1000.0);
	metrics_one(t, "nova_inventory_heartbeats_pending", "gauge",
		    "Nodes with a heartbeat taken and not yet written to the database.",
		    (double)st.nodes_pending);
	metrics_one(t, "nova_inventory_heartbeats_from_memory_total", "counter",
		    "Heartbeats taken on a cached node token because the database was away.",
		    (double)st.heartbeats_from_memory);
	metrics_one(t, "nova_inventory_brake_engagements_total", "counter",
		    "Times the brake on mass failure engaged on a pool (this novad's sweeps).",
		    (double)st.brake_engagements);
	metrics_head(t, "nova_inventory_brake_engaged", "gauge",
		     "Pools whose nodes' states the brake on mass failure holds, as of this novad's "
		     "last sweep.");
	json_t *brakes = inventory_brakes(gw->deps.inventory);
	size_t i;
	json_t *b;
	json_array_foreach(brakes, i, b) {
		char pool[512], labels[540];
		metrics_label_escape(pool, sizeof(pool), json_string_value(json_object_get(b, "pool")));
		snprintf(labels, sizeof(labels), "pool=\"%s\"", pool);
		metrics_sample(t, "nova_inventory_brake_engaged", labels, 1);
	}
	json_decref(brakes);
	metrics_head(t, "nova_heartbeats_total", "counter",
		     "Heartbeats this novad answered, by result (accepted, or why refused).");
	for (int r = 0; r < GW_HB_RESULTS; r++) {
		char labels[48];
		snprintf(labels, sizeof(labels), "result=\"%s\"", gw_hb_result_names[r]);
		metrics_sample(t, "nova_heartbeats_total", labels,
			       (double)atomic_load(&gw->heartbeats[r]));
	}
}

static void gw_metrics_routes(struct textbuf *t, struct gw *gw)
{
	size_t routes, endpoints;
	inventory_routes_size(&routes, &endpoints, gw->deps.routes);
	metrics_one(t, "nova_routes_age_seconds", "gauge",
		    "Seconds since the routing table was last read from the database (-1: never).",
		    gw_seconds(inventory_routes_age_ms(gw->deps.routes, NULL)));
	metrics_one(t, "nova_routes_version", "gauge", "The routing table's version in this novad.",
		    (double)inventory_routes_version(gw->deps.routes));
	metrics_one(t, "nova_routes", "gauge", "Routes (models and adapters) in the routing table.",
		    (double)routes);
	metrics_one(t, "nova_routes_endpoints", "gauge", "Endpoints in the routing table.",
		    (double)endpoints);
	metrics_one(t, "nova_routes_watchers", "gauge", "Watch streams open on this novad (route watches and event watches).",
		    (double)gw_watchers_open(gw));
}

static void gw_metrics_http(struct textbuf *t, struct gw *gw)
{
	struct http_server_stats hs;
	if (!gw->srv)
		return;
	http_server_stats(&hs, gw->srv);
	metrics_one(t, "nova_http_connections", "gauge", "HTTP connections open on this novad.",
		    (double)hs.open);
	metrics_one(t, "nova_http_connections_timed_out_total", "counter",
		    "HTTP connections closed because a request's headers or body missed its deadline.",
		    (double)hs.timed_out);
	metrics_one(t, "nova_http_connections_shed_total", "counter",
		    "Idle HTTP connections closed to keep room for new ones at the connection cap.",
		    (double)hs.shed);
	http_server_metrics_write(t, gw->srv, "nova");
}

static void gw_metrics_db(struct textbuf *t, struct gw *gw)
{
	struct db_pool_stats ds;
	db_pool_stats(&ds, gw->deps.db);
	metrics_one(t, "nova_db_pool_connections", "gauge",
		    "Database connections this novad may hold at most.", ds.size);
	metrics_one(t, "nova_db_pool_connections_open", "gauge", "Database connections open.",
		    ds.open);
	metrics_one(t, "nova_db_pool_connections_in_use", "gauge", "Database connections lent out.",
		    ds.in_use);
	metrics_one(t, "nova_db_pool_waits_total", "counter",
		    "Borrowers that found no free database connection and waited.", (double)ds.waits);
	metrics_one(t, "nova_db_pool_wait_timeouts_total", "counter",
		    "Borrowers that waited for a database connection in vain.",
		    (double)ds.wait_timeouts);
	metrics_head(t, "nova_db_pool_wait_duration_seconds", "histogram",
		     "How long borrowers that waited for a database connection waited.");
	metrics_hist_write(t, "nova_db_pool_wait_duration_seconds", NULL, ds.wait_seconds);
	metrics_one(t, "nova_db_breaker_open", "gauge",
		    "Whether the database is taken for down (borrowers refused at once).",
		    ds.breaker_open ? 1 : 0);
	metrics_one(t, "nova_db_breaker_refusals_total", "counter",
		    "Borrowers refused at once while the database was taken for down.",
		    (double)ds.breaker_refusals);
}

static void gw_metrics_reconciler(struct textbuf *t, struct gw *gw)
{
	struct reconciler_counters rc;
	reconciler_counters_get(&rc);
	bool leader = gw->fleet && gw->fleet->is_leader && gw->fleet->is_leader(gw->fleet->leader_ctx);
	metrics_one(t, "nova_singleton_leader", "gauge",
		    "Whether this novad holds the singleton duties (the reconciler, the health sweep).",
		    leader ? 1 : 0);
	metrics_one(t, "nova_reconciler_passes_total", "counter",
		    "Reconciler passes this novad ran.", (double)rc.passes);
	metrics_one(t, "nova_reconciler_pass_failures_total", "counter",
		    "Reconciler passes that did not complete.", (double)rc.passes_failed);
	metrics_head(t, "nova_reconciler_resources_removed_total", "counter",
		     "Provider resources the reconciler removed: orphans (no live node) and twins "
		     "(a second resource for one node).");
	metrics_sample(t, "nova_reconciler_resources_removed_total", "kind=\"orphan\"",
		       (double)rc.orphans_removed);
	metrics_sample(t, "nova_reconciler_resources_removed_total", "kind=\"twin\"",
		       (double)rc.twins_removed);
	metrics_head(t, "nova_reconciler_timed_out_total", "counter",
		     "Things stuck past their time that the reconciler failed: nodes provisioning, "
		     "work items whose last attempt's lease expired.");
	metrics_sample(t, "nova_reconciler_timed_out_total", "kind=\"node_provisioning\"",
		       (double)rc.stuck_failed);
	metrics_sample(t, "nova_reconciler_timed_out_total", "kind=\"work_item\"",
		       (double)rc.work_items_expired);
}

void gw_autoscaler_set(struct gw *gw, struct autoscaler *a)
{
	atomic_store(&gw->autoscaler, a);
}

void gw_events_set(struct gw *gw, struct events_listener *l)
{
	atomic_store(&gw->events, l);
}

/* The event plane's listener (events/events.h): whether it LISTENs (else
 * it polls the stream's head), the head it last read, and how often it was
 * told and woke the threads. */
static void gw_metrics_events(struct textbuf *t, struct gw *gw)
{
	struct events_listener *l = atomic_load(&gw->events);
	struct events_listener_status st = {.head = -1};
	if (!l)
		return;
	events_listener_status(&st, l);
	metrics_one(t, "nova_events_listening", "gauge",
		    "Whether this novad LISTENs for the event stream's notifications (0: it polls the "
		    "stream's head every 100 ms).", st.listening ? 1 : 0);
	metrics_one(t, "nova_events_head", "gauge",
		    "The event stream's last id this novad read (-1: none yet).", (double)st.head);
	metrics_one(t, "nova_events_notifications_total", "counter",
		    "Notifications of commits to the event stream this novad received.",
		    (double)st.notifications);
	metrics_one(t, "nova_events_wakes_total", "counter",
		    "Times the stream's head moved and this novad woke its routes, workers and watchers.",
		    (double)st.wakes);
	metrics_one(t, "nova_events_listen_connects_total", "counter",
		    "LISTEN connections this novad opened (more than one: it lost and reopened them).",
		    (double)st.connects);
}

static void gw_metrics_autoscaler(struct textbuf *t, struct gw *gw)
{
	struct autoscaler_counters ac;
	autoscaler_counters_get(&ac, atomic_load(&gw->autoscaler));
	metrics_one(t, "nova_autoscaler_ticks_total", "counter",
		    "Autoscaler ticks this novad ran (while it holds the singleton duties).",
		    (double)ac.ticks);
	metrics_one(t, "nova_autoscaler_tick_failures_total", "counter",
		    "Autoscaler ticks that did not complete.", (double)ac.ticks_failed);
	metrics_head(t, "nova_autoscaler_decisions_total", "counter",
		     "Replica counts the autoscaler changed, by direction.");
	metrics_sample(t, "nova_autoscaler_decisions_total", "direction=\"up\"",
		       (double)ac.scaled_up);
	metrics_sample(t, "nova_autoscaler_decisions_total", "direction=\"down\"",
		       (double)ac.scaled_down);
	metrics_one(t, "nova_rollout_auto_rollbacks_total", "counter",
		    "Rollouts the guard rolled back on the routers' numbers (this novad's ticks).",
		    (double)ac.rollbacks);
}

void gw_metrics_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	struct textbuf t = {0};
	(void)call, (void)req;
	textbuf_reserve(&t, 32 * 1024);
	metrics_head(&t, "nova_build_info", "gauge", "The novad build: its version.");
	metrics_sample(&t, "nova_build_info", "version=\"" NOVA_VERSION "\"", 1);
	gw_metrics_inventory(&t, gw);
	gw_metrics_routes(&t, gw);
	gw_metrics_http(&t, gw);
	gw_metrics_db(&t, gw);
	gw_metrics_reconciler(&t, gw);
	gw_metrics_events(&t, gw);
	gw_metrics_autoscaler(&t, gw);
	if (gw->fleet) {
		pthread_mutex_lock(&gw->fleet->lock);
		long long at = gw->fleet->read_ms;
		unsigned long long failed = gw->fleet->reads_failed;
		if (gw->fleet->text)
			textbuf_adds(&t, gw->fleet->text);
		pthread_mutex_unlock(&gw->fleet->lock);
		metrics_one(&t, "nova_fleet_metrics_age_seconds", "gauge",
			    "Age of the fleet's families above (read from the database by this novad "
			    "every few seconds; -1: not read yet).",
			    at ? (double)(gw_mono_ms() - at) / 1000.0 : -1.0);
		metrics_one(&t, "nova_fleet_metrics_read_failures_total", "counter",
			    "Reads of the fleet for /metrics that failed (the database away).",
			    (double)failed);
	}
	if (t.failed) {
		textbuf_finish(&t);
		http_response_errorf(res, NOVA_EINTERNAL, "", "out of memory");
		return;
	}
	http_response_text(res, 200, "text/plain; version=0.0.4; charset=utf-8", t.p);
	textbuf_finish(&t);
}
