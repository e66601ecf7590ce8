#include "inventory/routes.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "events/events.h"

/* How old the load hints of a cached table may get while heartbeats keep
 * changing them: the refresh period of the table itself. */
#define ROUTES_CACHE_MAX_AGE_MS 250
/* "model/adapter": a model name (128) and an adapter's (512). */
#define ROUTES_KEY_MAX 700

struct routes_event {
	long long version;  /* this process's count of changes: watchers' cursors */
	long long position; /* the event stream's head it was read at: the SSE id */
	char *data;         /* {"version": position, "changes": {key: route or null}} */
};

struct inventory_routes {
	struct db_pool *db;
	struct inventory *inv;
	pthread_mutex_t lock;
	/* Versions: `version` counts this process's changes (the ring's index
	 * and the watchers' cursors); `position` is the event stream's head
	 * (events/events.h) read in the same snapshot as the table when it
	 * last changed, and `head` the one read last (the table is the
	 * stream's state at every position read since `position`). Positions
	 * mean the same on every novad: two tables read at one head are one
	 * table. */
	long long version, position, head;
	bool gap_told;      /* a change with no event was logged */
	json_t *table;      /* key -> route object (without load) */
	struct routes_event ring[INVENTORY_ROUTES_HISTORY];
	size_t ring_next;
	pthread_t thread;
	bool running;
	atomic_bool stop;
	/* The thread waits on wake (the runtime's notifier) for its period,
	 * or until stop or a poke (inventory_routes_refresh_soon) ends the
	 * wait at once. Rejected:
	 * sleeping in 10 ms steps and polling a flag, which made a change the
	 * health sweep had just found wait up to a whole period (250 ms) for
	 * the watchers (docs/PERFORMANCE.md). */
	struct notify *wake;
	unsigned refresh_ms, keepalive_ms;
	void (*on_change)(void *ctx);
	void *ctx;
	/* The whole table as last rendered, with its ETag: a read is a copy
	 * while neither the table's version nor the load hints changed (and
	 * while the hints are younger than ROUTES_CACHE_MAX_AGE_MS when they
	 * keep changing). Rejected: rendering every read, a deep copy and a
	 * sorted dump of the whole table under the lock, which served 1,000
	 * models x 10 replicas at 30 reads/s (docs/PERFORMANCE.md). */
	char *cache_text;
	/* The table's ETag: a hash of the routes alone (as built from the
	 * database, without this process's version or load hints), so every
	 * novad gives one table one ETag. Weak (W/"..."): two answers with
	 * the same routes but other load hints are equivalent, not identical
	 * (RFC 9110 8.8.1). "" before the first read. */
	char table_etag[INVENTORY_ROUTES_ETAG_LEN];
	long long cache_version;
	unsigned long long cache_loads_gen;
	long long cache_at_ms;
	/* The last successful read (CLOCK_MONOTONIC ms; 0: never) and the
	 * last refresh's error ("" when it worked), under lock. */
	long long read_ms;
	char error[160];
};

static long long routes_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int inventory_routes_create(struct inventory_routes **out, struct db_pool *db,
			    struct inventory *inv, struct notify *wake, struct nova_err *err)
{
	struct inventory_routes *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (!r || !(r->table = json_object())) {
		free(r);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	r->db = db;
	r->inv = inv;
	r->wake = wake;
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

void inventory_routes_destroy(struct inventory_routes *r)
{
	if (!r)
		return;
	inventory_routes_stop(r);
	for (size_t i = 0; i < INVENTORY_ROUTES_HISTORY; i++)
		free(r->ring[i].data);
	json_decref(r->table);
	free(r->cache_text);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* The table as the database has it now: key (model, or model/adapter) ->
 * {"model", "version", "adapter", "endpoints": [{"url", "replica",
 * "deployment", "node", "version"}], "split"?}, endpoints sorted so equal
 * tables compare equal. An endpoint's version is its replica's (a rollout
 * mixes them); "split" ({version: percent}) is a canary's. */
static int routes_build(json_t **out, long long *head, struct inventory_routes *r,
			struct nova_err *err)
{
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if ((rc = db_conn_acquire(&c, r->db, err)))
		return rc;
	/* Every deployment not stopping or stopped, with its routable
	 * replicas: one row per replica, or one row of NULLs (the left join)
	 * when it has none, so a model scaled to zero or whose replicas all
	 * failed still has its route, with no endpoint (nova-router holds its
	 * requests rather than answering 404 for a model it would not know). */
	/* The event stream's head in the same statement, so in the same
	 * snapshot: the table is the stream's state at that position. A row
	 * of its own carries it too, so an empty table has its position.
	 * Rejected: the head's row LEFT JOIN LATERAL the table's query, which
	 * the planner costed high enough to compile with JIT (half a second
	 * a read on a table of one route). */
	rc = db_exec(&res, c,
		     "SELECT m.name AS mname, m.version AS mversion, "
		     "coalesce(m.spec->'adapters', '[]')::text AS adapters, d.name AS dname, "
		     "r.id AS rid, r.endpoint, (SELECT n.name FROM replica_placements rp JOIN nodes n "
		     "ON n.id = rp.node_id WHERE rp.replica_id = r.id ORDER BY rp.stage DESC LIMIT 1) "
		     "AS node, m.kind, rm.version AS rversion, "
		     /* A canary's split: {version: percent} (deployments/deployment.h). */
		     "CASE WHEN ro.id IS NOT NULL THEN json_build_object(ro.to_version, "
		     "ro.canary_percent, ro.from_version, 100 - ro.canary_percent)::text END AS split, "
		     "NULL::bigint AS head "
		     "FROM deployments d JOIN models m ON m.id = d.model_id "
		     "LEFT JOIN rollouts ro ON ro.deployment_id = d.id AND ro.state = 'canary' "
		     "LEFT JOIN replicas r ON r.deployment_id = d.id "
		     "AND r.state = 'ready' AND r.endpoint IS NOT NULL AND r.ordinal < d.replicas "
		     "AND EXISTS (SELECT 1 FROM replica_placements rp WHERE rp.replica_id = r.id) "
		     "AND NOT EXISTS (SELECT 1 FROM replica_placements rp JOIN nodes n ON n.id = rp.node_id "
		     "WHERE rp.replica_id = r.id AND n.state <> 'ready') "
		     "LEFT JOIN models rm ON rm.id = r.model_id "
		     "WHERE d.state NOT IN ('stopping', 'stopped') "
		     "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
		     "last_id FROM event_stream_head "
		     "ORDER BY mname, endpoint, rid, mversion",
		     0, NULL, err);
	db_conn_release(r->db, c);
	if (rc)
		return rc;
	json_t *t = json_object();
	*head = 0;
	for (int i = 0; t && i < PQntuples(res); i++) {
		if (!PQgetisnull(res, i, 10)) {
			*head = strtoll(PQgetvalue(res, i, 10), NULL, 10);
			continue; /* the row that carries the head */
		}
		json_t *adapters = json_loads(PQgetvalue(res, i, 2), 0, NULL), *a;
		bool dynamic = strcmp(PQgetvalue(res, i, 7), "lora_dynamic") == 0;
		bool none = PQgetisnull(res, i, 4); /* a deployment without a routable replica */
		json_t *ep = none ? NULL
				  : json_pack("{s:s, s:s, s:s, s:s?, s:s}", "url", PQgetvalue(res, i, 5),
					      "replica", PQgetvalue(res, i, 4), "deployment",
					      PQgetvalue(res, i, 3), "node", PQgetvalue(res, i, 6),
					      "version", PQgetvalue(res, i, 8));
		json_t *split = PQgetisnull(res, i, 9) ? NULL
						       : json_loads(PQgetvalue(res, i, 9), 0, NULL);
		/* The model itself, and each LoRA adapter it serves (static) or
		 * can load (dynamic: every replica of the model, marked so that
		 * routers prefer those that have it loaded). */
		for (ssize_t k = -1; k < (ssize_t)json_array_size(adapters); k++) {
			char key[ROUTES_KEY_MAX];
			const char *adapter = NULL;
			if (k >= 0) {
				a = json_array_get(adapters, (size_t)k);
				adapter = json_string_value(a);
				snprintf(key, sizeof(key), "%s/%s", PQgetvalue(res, i, 0), adapter);
			} else {
				snprintf(key, sizeof(key), "%s", PQgetvalue(res, i, 0));
			}
			json_t *route = json_object_get(t, key);
			if (!route) {
				route = json_pack("{s:s, s:s, s:o, s:[]}", "model", PQgetvalue(res, i, 0),
						  "version", PQgetvalue(res, i, 1), "adapter",
						  adapter ? json_string(adapter) : json_null(), "endpoints");
				if (route && adapter && dynamic)
					json_object_set_new(route, "dynamic", json_true());
				json_object_set_new(t, key, route);
			}
			if (route && split && !json_object_get(route, "split"))
				json_object_set(route, "split", split);
			if (ep)
				json_array_append(json_object_get(route, "endpoints"), ep);
		}
		json_decref(ep);
		json_decref(split);
		json_decref(adapters);
	}
	PQclear(res);
	if (!t)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	*out = t;
	return 0;
}

/* A weak ETag of routes as rendered without load hints: the same routes
 * give the same tag in every process. */
static void routes_etag_of(char etag[INVENTORY_ROUTES_ETAG_LEN], json_t *bare_list)
{
	char hash[SECRET_HEX_SHA256_LEN];
	char *text = json_dumps(bare_list, JSON_COMPACT | JSON_SORT_KEYS);
	secret_sha256_hex(hash, text ? text : "", text ? strlen(text) : 0);
	snprintf(etag, INVENTORY_ROUTES_ETAG_LEN, "W/\"%.32s\"", hash);
	free(text);
}

static json_t *routes_render(struct inventory_routes *r, const char *model, json_t *loads,
			     json_t *adapters);

/* The whole table's ETag, after the table changed (caller holds the lock). */
static void routes_table_etag_update(struct inventory_routes *r)
{
	json_t *none = json_object();
	json_t *bare = routes_render(r, NULL, none, NULL);
	routes_etag_of(r->table_etag, bare);
	json_decref(bare);
	json_decref(none);
}

int inventory_routes_refresh(bool *changed, struct inventory_routes *r, struct nova_err *err)
{
	json_t *fresh, *changes = json_object();
	const char *key;
	json_t *v;
	long long head;
	int rc;
	if (changed)
		*changed = false;
	if ((rc = routes_build(&fresh, &head, r, err))) {
		json_decref(changes);
		pthread_mutex_lock(&r->lock);
		snprintf(r->error, sizeof(r->error), "%.159s", err->message);
		pthread_mutex_unlock(&r->lock);
		return rc;
	}
	pthread_mutex_lock(&r->lock);
	if (r->read_ms && head < r->head) {
		/* Two refreshes crossed (the routes thread and a resuming
		 * watcher's): the older read is not laid over the newer. */
		pthread_mutex_unlock(&r->lock);
		json_decref(fresh);
		json_decref(changes);
		return 0;
	}
	bool first = r->read_ms == 0;
	r->read_ms = routes_mono_ms();
	r->error[0] = '\0';
	r->head = head;
	json_object_foreach(fresh, key, v) {
		if (!json_equal(v, json_object_get(r->table, key)))
			json_object_set(changes, key, v);
	}
	json_object_foreach(r->table, key, v) {
		if (!json_object_get(fresh, key))
			json_object_set_new(changes, key, json_null());
	}
	if (first) {
		/* The first read is the table at its position; watchers get it
		 * as a snapshot, so it is no change of its own. */
		json_decref(r->table);
		r->table = fresh;
		fresh = NULL;
		r->position = head;
		routes_table_etag_update(r);
	} else if (json_object_size(changes) > 0) {
		if (head == r->position && !r->gap_told) {
			/* Every change that can move a route writes an event
			 * (sql/0022); one that did not is a gap in the triggers. */
			nova_log(NOVA_LOG_WARN, "routes", "the routing table changed with no event in the "
				 "stream (position %lld): watchers resuming on another novad may miss it",
				 head);
			r->gap_told = true;
		}
		struct routes_event *ev = &r->ring[r->ring_next % INVENTORY_ROUTES_HISTORY];
		r->version++;
		r->position = head;
		free(ev->data);
		ev->version = r->version;
		ev->position = head;
		json_t *data = json_pack("{s:I, s:O}", "version", (json_int_t)head, "changes", changes);
		ev->data = data ? json_dump_compact(data) : NULL;
		json_decref(data);
		r->ring_next++;
		json_decref(r->table);
		r->table = fresh;
		fresh = NULL;
		routes_table_etag_update(r);
		if (changed)
			*changed = true;
	}
	pthread_mutex_unlock(&r->lock);
	json_decref(fresh);
	json_decref(changes);
	return 0;
}

long long inventory_routes_age_ms(struct inventory_routes *r, char *error)
{
	pthread_mutex_lock(&r->lock);
	long long age = r->read_ms ? routes_mono_ms() - r->read_ms : -1;
	if (error)
		memcpy(error, r->error, sizeof(r->error));
	pthread_mutex_unlock(&r->lock);
	return age;
}

/* The body of a stale table: the same text with its age in front. */
static char *routes_stale_text(const char *text, long long age)
{
	char *out = NULL;
	if (asprintf(&out, "{\"stale\":true,\"age_ms\":%lld,%s", age, text + 1) < 0)
		return NULL;
	return out;
}

long long inventory_routes_version(struct inventory_routes *r)
{
	pthread_mutex_lock(&r->lock);
	long long v = r->position;
	pthread_mutex_unlock(&r->lock);
	return v;
}

void inventory_routes_size(size_t *routes, size_t *endpoints, struct inventory_routes *r)
{
	const char *k;
	json_t *v;
	*routes = *endpoints = 0;
	pthread_mutex_lock(&r->lock);
	json_object_foreach(r->table, k, v) {
		(*routes)++;
		*endpoints += json_array_size(json_object_get(v, "endpoints"));
	}
	pthread_mutex_unlock(&r->lock);
}

/* The routes as the API shows them: a list, with load hints and the LoRA
 * adapters each replica's engine reported loaded (adapters: replica id ->
 * array, only replicas that reported some; NULL: none shown, as in the
 * ETag's render and the watch's). Caller holds the lock.
 * What engines have loaded goes with the load hints, not with the routes:
 * it changes as engines load and evict adapters, so it is in GET
 * /v1/routes (which routers poll for the load) and never in the watch's
 * events, whose changes are endpoints only (an event per adapter loaded
 * would be the storm that load in events would be).
 * The whole list, "adapters_loaded", is on the endpoints of the model's
 * own route only (a replica's object is one in every route of its model,
 * at a router too); a dynamic adapter's route says per endpoint whether
 * it has that adapter, "adapter_loaded": true or false. Rejected: the
 * list on every route's endpoints, which is adapters x replicas x loaded
 * names per poll of every router (256 adapters, 10 replicas with 64
 * loaded: megabytes a second for each router). */
static bool routes_list_has(json_t *list, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
			return true;
	return false;
}

static json_t *routes_render(struct inventory_routes *r, const char *model, json_t *loads,
			     json_t *adapters)
{
	json_t *list = json_array();
	const char *key;
	json_t *route;
	json_object_foreach(r->table, key, route) {
		const char *adapter = json_string_value(json_object_get(route, "adapter"));
		if (model && strcmp(json_string_value(json_object_get(route, "model")), model) != 0 &&
		    !(adapter && strcmp(adapter, model) == 0) && strcmp(key, model) != 0)
			continue;
		json_t *copy = json_deep_copy(route);
		size_t i;
		json_t *ep;
		json_array_foreach(json_object_get(copy, "endpoints"), i, ep) {
			json_t *load = json_object_get(loads, json_string_value(json_object_get(ep, "replica")));
			json_object_set(ep, "load", load ? load : json_null());
			json_t *al = json_object_get(adapters, json_string_value(json_object_get(ep, "replica")));
			if (al && !adapter)
				json_object_set(ep, "adapters_loaded", al);
			else if (adapters && adapter && json_is_true(json_object_get(route, "dynamic")))
				json_object_set_new(ep, "adapter_loaded",
						    json_boolean(routes_list_has(al, adapter)));
		}
		json_array_append_new(list, copy);
	}
	return list;
}

/* Whether the cached table is current (caller holds the lock). */
static bool routes_cache_valid(const struct inventory_routes *r, unsigned long long loads_gen)
{
	return r->cache_text && r->cache_version == r->version &&
	       (r->cache_loads_gen == loads_gen ||
		routes_mono_ms() - r->cache_at_ms < ROUTES_CACHE_MAX_AGE_MS);
}

bool inventory_routes_etag(char etag[INVENTORY_ROUTES_ETAG_LEN], struct inventory_routes *r)
{
	pthread_mutex_lock(&r->lock);
	bool ok = r->table_etag[0] != '\0';
	if (ok)
		snprintf(etag, INVENTORY_ROUTES_ETAG_LEN, "%s", r->table_etag);
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static int routes_get_plain(char **text, char etag[INVENTORY_ROUTES_ETAG_LEN],
			    struct inventory_routes *r, const char *model, struct nova_err *err)
{
	/* Read before the loads, so hints that change meanwhile make the
	 * cached copy look old rather than current. */
	unsigned long long loads_gen = r->inv ? inventory_loads_generation(r->inv) : 0;
	*text = NULL;
	if (!model) {
		pthread_mutex_lock(&r->lock);
		if (routes_cache_valid(r, loads_gen)) {
			*text = strdup(r->cache_text);
			snprintf(etag, INVENTORY_ROUTES_ETAG_LEN, "%s", r->table_etag);
		}
		pthread_mutex_unlock(&r->lock);
		if (*text)
			return 0;
	}
	json_t *loads = r->inv ? inventory_loads(r->inv) : json_object();
	json_t *adapters = r->inv ? inventory_adapters_loaded(r->inv) : json_object();
	json_t *none = model ? json_object() : NULL;
	pthread_mutex_lock(&r->lock);
	long long version = r->version;
	json_t *list = routes_render(r, model, loads, adapters);
	json_t *body = json_pack("{s:I, s:o}", "version", (json_int_t)r->position, "routes", list);
	if (model) {
		json_t *bare = routes_render(r, model, none, NULL);
		routes_etag_of(etag, bare);
		json_decref(bare);
	} else {
		snprintf(etag, INVENTORY_ROUTES_ETAG_LEN, "%s", r->table_etag);
	}
	pthread_mutex_unlock(&r->lock);
	json_decref(none);
	json_decref(loads);
	json_decref(adapters);
	if (model && json_array_size(json_object_get(body, "routes")) == 0) {
		json_decref(body);
		return nova_err_set(err, NOVA_ENOTFOUND, "model", "no routes for model \"%s\"", model);
	}
	*text = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(body);
	if (!*text)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if (!model) {
		char *copy = strdup(*text);
		pthread_mutex_lock(&r->lock);
		if (copy && version >= r->cache_version) {
			free(r->cache_text);
			r->cache_text = copy;
			copy = NULL;
			r->cache_version = version;
			r->cache_loads_gen = loads_gen;
			r->cache_at_ms = routes_mono_ms();
		}
		pthread_mutex_unlock(&r->lock);
		free(copy);
	}
	return 0;
}

int inventory_routes_get(char **text, char etag[INVENTORY_ROUTES_ETAG_LEN],
			 struct inventory_routes *r, const char *model, struct nova_err *err)
{
	long long age = inventory_routes_age_ms(r, NULL);
	*text = NULL;
	if (age < 0) {
		nova_err_set(err, NOVA_EUNAVAIL, "",
			     "the routing table has not been read from the database yet");
		nova_err_set_hint(err, "try again shortly");
		return NOVA_EUNAVAIL;
	}
	if (age <= INVENTORY_ROUTES_STALE_MS)
		return routes_get_plain(text, etag, r, model, err);
	/* Rendered as usual (the cached copy serves), then its age put in
	 * front; the ETag stays the table's. */
	char *plain = NULL;
	int rc = routes_get_plain(&plain, etag, r, model, err);
	if (rc)
		return rc;
	*text = routes_stale_text(plain, age);
	free(plain);
	return *text ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

/* The whole table as a snapshot event (caller holds the lock); with
 * expired >= 0, the position a resuming watcher gave, whose events are no
 * longer kept: the event says so. */
static char *routes_snapshot_event(struct inventory_routes *r, long long expired)
{
	char *out = NULL;
	json_t *empty = json_object();
	json_t *list = routes_render(r, NULL, empty, NULL);
	json_t *body = json_pack("{s:I, s:o}", "version", (json_int_t)r->position, "routes", list);
	if (body && expired >= 0) {
		json_object_set_new(body, "expired", json_true());
		json_object_set_new(body, "resumed_from", json_integer(expired));
	}
	char *data = body ? json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (data && asprintf(&out, "id: %lld\nevent: snapshot\ndata: %s\n\n", r->position, data) < 0)
		out = NULL;
	free(data);
	json_decref(body);
	json_decref(empty);
	return out;
}

char *inventory_routes_next_event(struct inventory_routes *r, long long seen, long long *next_seen)
{
	char *out = NULL;
	pthread_mutex_lock(&r->lock);
	*next_seen = seen;
	long long oldest = r->ring_next > INVENTORY_ROUTES_HISTORY
				   ? r->version - INVENTORY_ROUTES_HISTORY + 1 : 1;
	if (seen < 0 || seen > r->version || (seen < oldest - 1 && r->version > 0)) {
		/* New, or from before what the ring remembers: a snapshot. */
		out = routes_snapshot_event(r, -1);
		*next_seen = r->version;
	} else if (seen < r->version) {
		const struct routes_event *ev =
			&r->ring[(size_t)(seen) % INVENTORY_ROUTES_HISTORY]; /* version seen+1 */
		if (ev->version == seen + 1 && ev->data &&
		    asprintf(&out, "id: %lld\nevent: update\ndata: %s\n\n", ev->position, ev->data) < 0)
			out = NULL;
		*next_seen = seen + 1;
	}
	pthread_mutex_unlock(&r->lock);
	return out;
}

/* The local version whose table is the stream's state at position, when
 * this process read the table at exactly that position (caller holds the
 * lock): the current table's (where it changed, or the last read), or a
 * change the ring remembers; -1 otherwise. Not any position between two
 * reads that found one table: the table may have changed and changed back
 * between them, and a watcher from a novad that read in between holds the
 * other one. */
static long long routes_version_at(const struct inventory_routes *r, long long position)
{
	if (position == r->position || position == r->head)
		return r->version;
	size_t n = r->ring_next < INVENTORY_ROUTES_HISTORY ? r->ring_next : INVENTORY_ROUTES_HISTORY;
	for (size_t k = 0; k < n; k++) { /* newest first */
		const struct routes_event *ev =
			&r->ring[(r->ring_next - 1 - k) % INVENTORY_ROUTES_HISTORY];
		if (ev->position == position)
			return ev->version;
		if (ev->position < position)
			break;
	}
	return -1;
}

/* The route keys a resuming watcher may hold of the models named (each
 * model's name and "name/adapter" for the adapters any version of it
 * serves or can load), as a JSON array. */
static int routes_keys_of(json_t **out, struct inventory_routes *r, json_t *models,
			  struct nova_err *err)
{
	char *names = json_dumps(models, JSON_COMPACT);
	const char *params[1] = {names};
	PGresult *res;
	int rc;
	*out = NULL;
	if (!names)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	rc = db_pool_exec(&res, r->db,
		"SELECT n FROM json_array_elements_text($1::json) n UNION "
		"SELECT m.name || '/' || a FROM models m CROSS JOIN LATERAL jsonb_array_elements_text("
		"CASE WHEN jsonb_typeof(m.spec->'adapters') = 'array' THEN m.spec->'adapters' "
		"ELSE '[]' END) a WHERE m.name IN (SELECT json_array_elements_text($1::json))",
		1, params, err);
	free(names);
	if (rc)
		return rc;
	json_t *keys = json_array();
	for (int i = 0; keys && i < PQntuples(res); i++)
		json_array_append_new(keys, json_string(PQgetvalue(res, i, 0)));
	PQclear(res);
	if (!keys)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	*out = keys;
	return 0;
}

char *inventory_routes_resume(struct inventory_routes *r, long long position, long long *seen)
{
	struct nova_err err;
	char *out = NULL;
	*seen = -1; /* a snapshot, unless we know better */
	if (position < 0)
		return NULL;
	for (int attempt = 0; attempt < 3; attempt++) {
		pthread_mutex_lock(&r->lock);
		long long v = routes_version_at(r, position), head = r->head;
		pthread_mutex_unlock(&r->lock);
		if (v >= 0) {
			*seen = v;
			return NULL;
		}
		if (position > head) {
			/* From a novad that read the stream further than this one
			 * has: read it now, then look again. */
			if (attempt > 0 || inventory_routes_refresh(NULL, r, &err))
				return NULL;
			continue;
		}
		/* A position this process never read: the routes of the models
		 * the events since then touched, as they are now. */
		json_t *models = NULL, *keys = NULL;
		bool pruned = false;
		if (events_route_models(&models, &pruned, r->db, position, head, &err) ||
		    (!pruned && routes_keys_of(&keys, r, models, &err))) {
			json_decref(models);
			return NULL; /* the database is away: a snapshot */
		}
		pthread_mutex_lock(&r->lock);
		if (r->head != head) { /* read again meanwhile: once more */
			pthread_mutex_unlock(&r->lock);
			json_decref(models);
			json_decref(keys);
			continue;
		}
		if (pruned) {
			out = routes_snapshot_event(r, position);
		} else {
			json_t *changes = json_object();
			size_t i;
			json_t *k;
			json_array_foreach(keys, i, k) {
				json_t *route = json_object_get(r->table, json_string_value(k));
				json_object_set(changes, json_string_value(k), route ? route : json_null());
			}
			json_t *data = json_pack("{s:I, s:o, s:I}", "version", (json_int_t)head, "changes",
						 changes, "resumed_from", (json_int_t)position);
			char *text = data ? json_dump_compact(data) : NULL;
			if (text && json_object_size(changes) > 0 &&
			    asprintf(&out, "id: %lld\nevent: update\ndata: %s\n\n", head, text) < 0)
				out = NULL;
			free(text);
			json_decref(data);
		}
		*seen = r->version;
		pthread_mutex_unlock(&r->lock);
		json_decref(models);
		json_decref(keys);
		return out;
	}
	return NULL;
}

void inventory_routes_refresh_soon(struct inventory_routes *r)
{
	if (r)
		notify_signal(r->wake);
}

/* Wait up to ms for a poke or stop; how long it waited, in ms. */
static unsigned routes_wait(struct inventory_routes *r, unsigned long long *seen, unsigned ms)
{
	long long started = routes_mono_ms();
	if (!atomic_load(&r->stop))
		notify_wait(r->wake, seen, ms);
	return (unsigned)(routes_mono_ms() - started);
}

static void *routes_thread(void *arg)
{
	struct inventory_routes *r = arg;
	unsigned long long seen = notify_seq(r->wake);
	unsigned since_tick = 0;
	bool first = true, was_stale = false, failing = false;
	while (!atomic_load(&r->stop)) {
		struct nova_err err;
		bool changed = false;
		if (!first)
			since_tick += routes_wait(r, &seen, r->refresh_ms);
		first = false;
		if (atomic_load(&r->stop))
			break;
		/* The database away: the last table keeps being served; the
		 * streams still get their keep-alives, and hear that it is stale
		 * when it turns so. */
		int rc = inventory_routes_refresh(&changed, r, &err);
		if (rc && !failing)
			nova_log_kv(NOVA_LOG_WARN, "routes",
				    "reading the routing table failed: serving the last one", "error",
				    err.message, NULL);
		else if (!rc && failing)
			nova_log_kv(NOVA_LOG_INFO, "routes", "the routing table is read again", NULL);
		failing = rc != 0;
		bool stale = inventory_routes_age_ms(r, NULL) > INVENTORY_ROUTES_STALE_MS;
		if (changed || since_tick >= r->keepalive_ms || stale != was_stale) {
			since_tick = 0;
			r->on_change(r->ctx);
		}
		was_stale = stale;
	}
	return NULL;
}

int inventory_routes_start(struct inventory_routes *r, unsigned refresh_ms, unsigned keepalive_ms,
			   void (*on_change)(void *ctx), void *ctx, struct nova_err *err)
{
	assert(r->wake);
	r->refresh_ms = refresh_ms ? refresh_ms : 250;
	r->keepalive_ms = keepalive_ms ? keepalive_ms : 15000;
	r->on_change = on_change;
	r->ctx = ctx;
	atomic_init(&r->stop, false);
	if (pthread_create(&r->thread, NULL, routes_thread, r) != 0)
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the routes thread");
	r->running = true;
	return 0;
}

void inventory_routes_stop(struct inventory_routes *r)
{
	if (!r || !r->running)
		return;
	atomic_store(&r->stop, true);
	notify_signal(r->wake);
	pthread_join(r->thread, NULL);
	r->running = false;
}
