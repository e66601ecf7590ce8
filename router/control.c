/* What the router learns from novad, off the request path: the routing
 * table from GET /v1/routes/watch (one thread, a blocking stream), and the
 * API keys and load hints from polls (another thread). Both keep what they
 * had when novad is away, and say so once in the log.
 *
 * Load hints come from a poll of GET /v1/routes because the watch carries
 * none (its events are endpoint changes only: hints change with every
 * heartbeat, and an event per heartbeat would be a storm). So do the LoRA
 * adapters each replica has loaded (an endpoint's "adapters_loaded"),
 * which change as engines load and evict them. Rejected for
 * now: a periodic "load" event on the watch, which would save the poll;
 * a change to novad's stream format that can come with the autoscaling
 * demand report (issue 15).
 *
 * Demand goes the other way, from a third thread: how many requests wait
 * for a replica and how many are being answered, per model, posted to
 * novad's POST /v1/router/demand every demand_ms while any count is not
 * zero, once more when they fell to zero, and at once when a request
 * starts waiting where none did (the autoscaler's scale from zero should
 * not wait a period). Its own thread, so a poll held up by a slow novad
 * never delays a report, nor a report the polls. The per-version window
 * (router_vstats_report) rides on the same report, every demand_ms while
 * a version had requests in the last 30 s and once more when none has:
 * novad's rollback compares a canary with the version it replaces from
 * it. Rejected: a report of its own (a second POST per period, a second
 * table in novad keyed by router, for the same cadence and lifetime). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/http_client.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/textbuf.h"
#include "router/router_int.h"

/* Wait up to ms, or until stop, or until *wake is set (when wake is not
 * NULL: the demand thread's "report now"); true when stopping. */
static bool rt_sleep_or(struct router *r, long long ms, atomic_bool *wake)
{
	struct timespec until;
	notify_deadline(&until, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&r->stop_lock);
	while (!atomic_load(&r->stop) && !(wake && atomic_load(wake)) &&
	       pthread_cond_timedwait(&r->stop_cond, &r->stop_lock, &until) == 0)
		;
	pthread_mutex_unlock(&r->stop_lock);
	return atomic_load(&r->stop) != 0;
}

static bool rt_sleep(struct router *r, long long ms)
{
	return rt_sleep_or(r, ms, NULL);
}

void rt_control_poke(struct router *r)
{
	pthread_mutex_lock(&r->stop_lock);
	pthread_cond_broadcast(&r->stop_cond);
	pthread_mutex_unlock(&r->stop_lock);
}

/* --- the watch -------------------------------------------------------------- */

struct rt_watch {
	struct router *r;
	json_t *routes;          /* key -> route, as the events built it */
	long long last_id;       /* -1: none yet */
	struct textbuf line;     /* the line being read */
	struct textbuf data;     /* the event's data lines */
	char event[32];
	long long id;
	bool have_id;
	bool got_event;          /* in this connection */
};

static void rt_watch_install(struct rt_watch *w, long long version)
{
	struct router_table *prev = rt_table_get(w->r);
	size_t skipped = 0;
	struct router_table *t = router_table_build(w->routes, version, prev, w->r->vstats, &skipped);
	router_table_unref(prev);
	if (!t) {
		nova_log(NOVA_LOG_ERROR, "router", "out of memory building the table: keeping the last");
		return;
	}
	if (skipped)
		nova_log(NOVA_LOG_WARN, "router", "%zu routes, endpoints or splits of version %lld were "
			 "malformed and left out", skipped, version);
	size_t eps = 0;
	for (size_t i = 0; i < t->n; i++)
		eps += t->routes[i].n;
	nova_log(NOVA_LOG_DEBUG, "router", "routing table version %lld: %zu routes, %zu endpoints",
		 version, t->n, eps);
	rt_table_set(w->r, t);
}

static void rt_watch_dispatch(struct rt_watch *w)
{
	json_t *doc = w->data.p ? json_loads(w->data.p, 0, NULL) : NULL;
	bool snapshot = !strcmp(w->event, "snapshot"), update = !strcmp(w->event, "update");
	if ((snapshot || update) && !doc) {
		nova_log(NOVA_LOG_WARN, "router", "a route watch event did not parse: ignored");
	} else if (snapshot) {
		json_t *list = json_object_get(doc, "routes"), *route;
		size_t i;
		json_t *fresh = json_object();
		json_array_foreach(list, i, route) {
			char key[700];
			if (router_route_key(key, sizeof(key), route))
				json_object_set(fresh, key, route);
		}
		json_decref(w->routes);
		w->routes = fresh;
		rt_watch_install(w, json_integer_value(json_object_get(doc, "version")));
	} else if (update) {
		json_t *changes = json_object_get(doc, "changes"), *route;
		const char *key;
		json_object_foreach(changes, key, route) {
			if (json_is_object(route))
				json_object_set(w->routes, key, route);
			else
				json_object_del(w->routes, key);
		}
		rt_watch_install(w, json_integer_value(json_object_get(doc, "version")));
	} else if (!strcmp(w->event, "stale")) {
		nova_log(NOVA_LOG_WARN, "router", "novad says its table is stale (its database is away): "
			 "routing on it as it is");
	}
	if ((snapshot || update) && doc && w->have_id)
		w->last_id = w->id;
	if (snapshot || update) {
		if (!w->got_event)
			nova_log(NOVA_LOG_INFO, "router", "route watch connected at version %lld",
				 w->last_id);
		w->got_event = true;
		atomic_store(&w->r->watch_connected, true);
	}
	json_decref(doc);
	textbuf_finish(&w->data);
	w->event[0] = '\0';
	w->have_id = false;
}

static void rt_watch_line(struct rt_watch *w, char *line)
{
	size_t n = strlen(line);
	if (n && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0) {
		if (w->data.len || w->event[0])
			rt_watch_dispatch(w);
		return;
	}
	if (line[0] == ':')
		return; /* a keep-alive */
	char *v = strchr(line, ':');
	if (v) {
		*v++ = '\0';
		if (*v == ' ')
			v++;
	} else {
		v = line + n;
	}
	if (!strcmp(line, "event"))
		snprintf(w->event, sizeof(w->event), "%s", v);
	else if (!strcmp(line, "id")) {
		char *end;
		long long id = strtoll(v, &end, 10);
		if (!*end && end != v) {
			w->id = id;
			w->have_id = true;
		}
	} else if (!strcmp(line, "data")) {
		if (w->data.len)
			textbuf_add(&w->data, "\n", 1);
		textbuf_adds(&w->data, v);
	}
}

/* Event data is the whole table at most; a line past this is not novad. */
#define RT_WATCH_LINE_MAX (256u << 20)

static int rt_watch_on_data(void *ctx, const char *data, size_t len)
{
	struct rt_watch *w = ctx;
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n') {
			size_t j = i;
			while (j < len && data[j] != '\n')
				j++;
			textbuf_add(&w->line, data + i, j - i);
			i = j - 1;
			if (w->line.failed || w->line.len > RT_WATCH_LINE_MAX)
				return 1;
			continue;
		}
		rt_watch_line(w, w->line.p ? w->line.p : (char[]){""});
		if (w->line.p)
			w->line.p[0] = '\0';
		w->line.len = 0;
	}
	return atomic_load(&w->r->watch_cancel) ? 1 : 0;
}

/* The stream opened. A resumed one (Last-Event-ID) is connected from here:
 * novad sends what we missed, or nothing when we missed nothing (our table
 * stands; it says so in a comment, so these bytes come at once), and no
 * snapshot follows. A new one waits for its snapshot. */
static void rt_watch_on_status(void *ctx, long status)
{
	struct rt_watch *w = ctx;
	if (status != 200 || w->last_id < 0)
		return;
	nova_log(NOVA_LOG_INFO, "router", "route watch resumed after version %lld", w->last_id);
	w->got_event = true;
	atomic_store(&w->r->watch_connected, true);
}

static void *rt_watch_thread(void *arg)
{
	struct router *r = arg;
	struct rt_watch w = {.r = r, .routes = json_object(), .last_id = -1};
	char url[300];
	long long backoff = 500;
	bool tried = false;
	snprintf(url, sizeof(url), "%s/v1/routes/watch", r->cfg.gateway);
	while (!atomic_load(&r->stop)) {
		char last[48];
		const char *headers[3] = {"Accept: text/event-stream", NULL, NULL};
		if (w.last_id >= 0) {
			snprintf(last, sizeof(last), "Last-Event-ID: %lld", w.last_id);
			headers[1] = last;
		}
		struct http_client_request req = {
			.method = "GET", .url = url, .bearer_token = r->cfg.token, .headers = headers,
			.timeout_ms = 0, .cancel = &r->watch_cancel, .on_status = rt_watch_on_status,
		};
		struct nova_err err;
		long status = 0;
		nova_err_clear(&err);
		w.got_event = false;
		textbuf_finish(&w.line);
		textbuf_finish(&w.data);
		w.event[0] = '\0';
		int rc = http_client_stream(&status, &req, rt_watch_on_data, &w, &err);
		if (atomic_load(&r->stop))
			break;
		if (atomic_exchange(&r->watch_resync, false)) {
			/* Our table and novad's differ (rt_loads_apply): start over
			 * from a snapshot, at once. */
			atomic_store(&r->watch_cancel, 0);
			w.last_id = -1;
			continue;
		}
		bool had = atomic_exchange(&r->watch_connected, false);
		atomic_fetch_add(&r->stats.watch_reconnects, 1);
		if (w.got_event) {
			backoff = 500;
			tried = false;
		}
		char why[160];
		if (rc)
			snprintf(why, sizeof(why), "%.159s", err.message);
		else if (status != 200)
			snprintf(why, sizeof(why), "novad answered %ld%s", status,
				 status == 401 || status == 403 ? " (is the token a key with the router "
								  "scope?)" : "");
		else
			snprintf(why, sizeof(why), "the stream ended");
		/* Said once when lost (and once at start when novad is not
		 * there); each further attempt only at debug. */
		struct router_table *t = rt_table_get(r);
		nova_log_kv(had || !tried ? NOVA_LOG_WARN : NOVA_LOG_DEBUG, "router",
			    t ? "route watch lost: serving the last table"
			      : "route watch not connected: no table yet", "error", why, NULL);
		tried = true;
		router_table_unref(t);
		/* Jittered, so routers that lost novad together do not come back
		 * in step. */
		long long wait = backoff / 2 + (long long)(rand() % (int)(backoff / 2 + 1));
		if (rt_sleep(r, wait))
			break;
		backoff = backoff * 2 > 10000 ? 10000 : backoff * 2;
	}
	json_decref(w.routes);
	textbuf_finish(&w.line);
	textbuf_finish(&w.data);
	return NULL;
}

/* --- the polls ----------------------------------------------------------------- */

/* Whether novad's table (a GET /v1/routes body) has the same routes and
 * endpoints as ours. */
static bool rt_table_matches(const struct router_table *t, json_t *doc)
{
	json_t *routes = json_object_get(doc, "routes"), *route, *ep;
	size_t i, j, n = 0;
	json_array_foreach(routes, i, route) {
		char key[700];
		const struct router_route *rt;
		json_t *eps = json_object_get(route, "endpoints");
		if (!router_route_key(key, sizeof(key), route))
			continue;
		n++;
		if (!(rt = router_table_find(t, key)) || rt->n != json_array_size(eps))
			return false;
		json_array_foreach(eps, j, ep) {
			const char *id = json_string_value(json_object_get(ep, "replica"));
			bool found = false;
			for (size_t k = 0; id && k < rt->n && !found; k++)
				found = !strcmp(rt->replicas[k]->id, id);
			if (!found)
				return false;
		}
	}
	return n == t->n;
}

/* Event ids are positions of novad's event stream, the same on every novad
 * (inventory/routes.h), so a watch resumed with Last-Event-ID on another
 * novad behind a load balancer, or on one restarted, goes on from there.
 * A safety net all the same, against what the stream cannot tell (a novad
 * older than the event stream, whose ids were its own count; a change
 * that wrote no event): the poll that brings the load hints brings novad's
 * whole table too, and when it and ours differ on RT_MISMATCH_POLLS polls
 * in a row (one differing poll is the usual race with an update on its
 * way), the watch starts over from a snapshot. */
#define RT_MISMATCH_POLLS 3

/* A replica's "adapters_loaded" (absent: none) into its adapter slots.
 * novad shows the list on the model's own route only (inventory/routes.c);
 * the replica's object is the same in each route of its model, so the
 * dynamic adapters' routes see it. */
static void rt_adapters_apply(struct router_replica *rep, json_t *list)
{
	const char *names[ROUTER_REPLICA_ADAPTERS];
	size_t n = 0, i;
	json_t *v;
	json_array_foreach(list, i, v) {
		if (n < ROUTER_REPLICA_ADAPTERS && json_is_string(v))
			names[n++] = json_string_value(v);
	}
	router_replica_adapters_set(rep, names, n);
}

static void rt_loads_apply(struct router *r, const char *text, size_t len)
{
	json_t *doc = json_loadb(text, len, 0, NULL), *route, *ep;
	size_t i, j;
	struct router_table *t = rt_table_get(r);
	if (!t || !doc) {
		router_table_unref(t);
		json_decref(doc);
		return;
	}
	if (rt_table_matches(t, doc)) {
		r->mismatches = 0;
	} else if (++r->mismatches >= RT_MISMATCH_POLLS && atomic_load(&r->watch_connected)) {
		nova_log(NOVA_LOG_WARN, "router", "the routing table differs from novad's: "
			 "watching again from a snapshot");
		r->mismatches = 0;
		atomic_fetch_add(&r->stats.resyncs, 1);
		atomic_store(&r->watch_resync, true);
		atomic_store(&r->watch_cancel, 1);
	}
	json_array_foreach(json_object_get(doc, "routes"), i, route) {
		char key[700];
		const struct router_route *rt;
		if (!router_route_key(key, sizeof(key), route) || !(rt = router_table_find(t, key)))
			continue;
		json_array_foreach(json_object_get(route, "endpoints"), j, ep) {
			const char *id = json_string_value(json_object_get(ep, "replica"));
			json_t *load = json_object_get(ep, "load");
			json_t *q = json_object_get(load, "queue_depth");
			json_t *kv = json_object_get(load, "kv_cache_usage");
			json_t *run = json_object_get(load, "running");
			double rn = json_is_number(run) ? json_number_value(run) : 0;
			double qd = json_is_number(q) ? json_number_value(q) : 0;
			double kvu = json_is_number(kv) ? json_number_value(kv) : 0;
			kvu = kvu < 0 ? 0 : kvu > 1 ? 1 : kvu;
			for (size_t k = 0; id && k < rt->n; k++)
				if (!strcmp(rt->replicas[k]->id, id)) {
					atomic_store(&rt->replicas[k]->queue_depth,
						     qd < 0 ? 0 : qd > 1e6 ? 1000000 : (int)(qd + 0.5));
					atomic_store(&rt->replicas[k]->kv_load,
						     (int)(kvu * ROUTER_KV_WEIGHT + 0.5));
					atomic_store(&rt->replicas[k]->running,
						     rn < 0 ? 0 : rn > 1e6 ? 1000000 : (int)(rn + 0.5));
					json_t *al = json_object_get(ep, "adapters_loaded");
					if (!rt->adapter &&
					    (al || atomic_load(&rt->replicas[k]->adapters[0])))
						rt_adapters_apply(rt->replicas[k], al);
				}
		}
	}
	router_table_unref(t);
	json_decref(doc);
}

static void *rt_poll_thread(void *arg)
{
	struct router *r = arg;
	char keys_url[300], routes_url[300], etag[128] = "", inm[160];
	long long next_keys = 0, next_loads = 0;
	bool keys_failing = false, learned = false;
	snprintf(keys_url, sizeof(keys_url), "%s/v1/router/keys", r->cfg.gateway);
	snprintf(routes_url, sizeof(routes_url), "%s/v1/routes", r->cfg.gateway);
	while (!atomic_load(&r->stop)) {
		long long now = rt_now_ms();
		if (now >= next_keys) {
			const char *headers[2] = {NULL, NULL};
			if (etag[0]) {
				snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
				headers[0] = inm;
			}
			struct http_client_request req = {.method = "GET", .url = keys_url,
							  .bearer_token = r->cfg.token,
							  .headers = headers, .timeout_ms = 2000};
			struct http_client_response res = {0};
			struct nova_err err;
			nova_err_clear(&err);
			int rc = http_client_do(&res, &req, &err);
			bool ok = false;
			if (rc == 0 && res.status == 304) {
				pthread_mutex_lock(&r->lock);
				r->keys_at_ms = rt_now_ms();
				pthread_mutex_unlock(&r->lock);
				ok = true;
			} else if (rc == 0 && res.status == 200) {
				struct router_keys *k = router_keys_parse(res.body, res.body_len);
				if (k) {
					bool first = !learned;
					learned = true;
					rt_keys_set(r, k);
					snprintf(etag, sizeof(etag), "%s", res.etag ? res.etag : "");
					ok = true;
					if (first)
						nova_log(NOVA_LOG_INFO, "router", "API keys learned (%zu)",
							 router_keys_count(k));
				} else {
					snprintf(err.message, sizeof(err.message), "the keys did not parse");
				}
			} else if (rc == 0) {
				snprintf(err.message, sizeof(err.message), "novad answered %ld%s", res.status,
					 res.status == 401 || res.status == 403
						 ? " (is the token a key with the router scope?)" : "");
			}
			if (!ok) {
				atomic_fetch_add(&r->stats.keys_polls_failed, 1);
				if (!keys_failing)
					nova_log_kv(NOVA_LOG_WARN, "router",
						    "reading the API keys failed: checking with the last ones",
						    "error", err.message, NULL);
			} else if (keys_failing) {
				nova_log(NOVA_LOG_INFO, "router", "the API keys are read again");
			}
			keys_failing = !ok;
			http_client_response_finish(&res);
			next_keys = rt_now_ms() + r->cfg.keys_poll_ms;
		}
		if (now >= next_loads) {
			struct http_client_request req = {.method = "GET", .url = routes_url,
							  .bearer_token = r->cfg.token, .timeout_ms = 2000};
			struct http_client_response res = {0};
			struct nova_err err;
			if (http_client_do(&res, &req, &err) == 0 && res.status == 200)
				rt_loads_apply(r, res.body, res.body_len);
			http_client_response_finish(&res);
			next_loads = rt_now_ms() + r->cfg.loads_poll_ms;
		}
		long long wait = (next_keys < next_loads ? next_keys : next_loads) - rt_now_ms();
		if (wait > 0 && rt_sleep(r, wait))
			break;
	}
	return NULL;
}

/* --- the demand report ----------------------------------------------------------- */

/* The report of every model with a count, or that had one in the last
 * report (its zeros, once): {"router", "models": {key: {"waiting",
 * "in_flight"}}}, and "versions" (router_vstats_report) while any version
 * had requests in the window; NULL when there is nothing to say: no count,
 * no version in the window, and novad told so already. idx receives the
 * entries reported (n of them). */
static json_t *rt_demand_build(struct router *r, size_t **idx, size_t *n)
{
	struct rt_metrics *mx = &r->metrics;
	json_t *models = json_object();
	json_t *versions = router_vstats_report(r->vstats, rt_now_ms());
	*idx = NULL;
	*n = 0;
	pthread_mutex_lock(&mx->lock);
	for (size_t i = 0; models && i < mx->n; i++) {
		struct rt_model_stats *m = &mx->m[i];
		long long w = m->waiting > 0 ? m->waiting : 0, f = m->in_flight > 0 ? m->in_flight : 0;
		if (!w && !f && !m->demand_sent)
			continue;
		size_t *grown = realloc(*idx, (*n + 1) * sizeof(**idx));
		if (!grown)
			break;
		*idx = grown;
		(*idx)[(*n)++] = i;
		json_object_set_new(models, m->key, json_pack("{s:I, s:I}", "waiting", (json_int_t)w,
							     "in_flight", (json_int_t)f));
	}
	pthread_mutex_unlock(&mx->lock);
	/* After the window empties, one report without "versions" (novad
	 * replaces what a router said with its latest report). */
	if (!*n && !versions && !r->versions_sent) {
		json_decref(models);
		return NULL;
	}
	json_t *doc = json_pack("{s:s, s:o}", "router", r->id, "models", models);
	if (doc && versions)
		json_object_set_new(doc, "versions", versions);
	else
		json_decref(versions);
	return doc;
}

/* After a report reached novad: what it said is what novad holds. */
static void rt_demand_sent(struct router *r, json_t *doc, const size_t *idx, size_t n)
{
	struct rt_metrics *mx = &r->metrics;
	json_t *models = json_object_get(doc, "models");
	pthread_mutex_lock(&mx->lock);
	for (size_t k = 0; k < n; k++) {
		json_t *e = json_object_get(models, mx->m[idx[k]].key);
		mx->m[idx[k]].demand_sent = json_integer_value(json_object_get(e, "waiting")) > 0 ||
					    json_integer_value(json_object_get(e, "in_flight")) > 0;
	}
	pthread_mutex_unlock(&mx->lock);
	r->versions_sent = json_object_get(doc, "versions") != NULL;
}

static void *rt_demand_thread(void *arg)
{
	struct router *r = arg;
	char url[300];
	bool failing = false;
	snprintf(url, sizeof(url), "%s/v1/router/demand", r->cfg.gateway);
	while (!atomic_load(&r->stop)) {
		long long started = rt_now_ms();
		size_t *idx = NULL, n = 0;
		atomic_store(&r->demand_now, false);
		json_t *doc = rt_demand_build(r, &idx, &n);
		char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
		if (body) {
			struct http_client_request req = {.method = "POST", .url = url,
							  .bearer_token = r->cfg.token, .body = body,
							  .body_len = strlen(body), .timeout_ms = 2000};
			struct http_client_response res = {0};
			struct nova_err err;
			nova_err_clear(&err);
			int rc = http_client_do(&res, &req, &err);
			bool ok = rc == 0 && res.status >= 200 && res.status < 300;
			if (ok) {
				rt_demand_sent(r, doc, idx, n);
				atomic_fetch_add(&r->stats.demand_reports, 1);
				if (failing)
					nova_log(NOVA_LOG_INFO, "router", "demand reports reach novad again");
			} else {
				atomic_fetch_add(&r->stats.demand_reports_failed, 1);
				if (rc == 0)
					snprintf(err.message, sizeof(err.message), "novad answered %ld%s",
						 res.status, res.status == 401 || res.status == 403
							 ? " (is the token a key with the router scope?)" : "");
				/* Once when it starts failing; retried every period. */
				if (!failing)
					nova_log_kv(NOVA_LOG_WARN, "router",
						    "reporting demand to novad failed: retrying", "error",
						    err.message, NULL);
			}
			failing = !ok;
			http_client_response_finish(&res);
		}
		free(body);
		free(idx);
		json_decref(doc);
		long long wait = started + r->cfg.demand_ms - rt_now_ms();
		if (wait > 0 && rt_sleep_or(r, wait, &r->demand_now))
			break;
	}
	return NULL;
}

int rt_control_start(struct router *r, struct nova_err *err)
{
	atomic_store(&r->stop, 0);
	atomic_store(&r->watch_cancel, 0);
	if (pthread_create(&r->watch_thread, NULL, rt_watch_thread, r) != 0)
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the watch thread");
	if (pthread_create(&r->poll_thread, NULL, rt_poll_thread, r) != 0) {
		rt_control_stop(r);
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the poll thread");
	}
	r->control_started = true;
	if (pthread_create(&r->demand_thread, NULL, rt_demand_thread, r) != 0) {
		rt_control_stop(r);
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the demand thread");
	}
	r->demand_started = true;
	return 0;
}

void rt_control_stop(struct router *r)
{
	if (!r->control_started && !r->watch_thread)
		return;
	pthread_mutex_lock(&r->stop_lock);
	atomic_store(&r->stop, 1);
	atomic_store(&r->watch_cancel, 1);
	pthread_cond_broadcast(&r->stop_cond);
	pthread_mutex_unlock(&r->stop_lock);
	if (r->watch_thread)
		pthread_join(r->watch_thread, NULL);
	if (r->control_started)
		pthread_join(r->poll_thread, NULL);
	if (r->demand_started)
		pthread_join(r->demand_thread, NULL);
	r->demand_started = false;
	r->watch_thread = 0;
	r->control_started = false;
}
