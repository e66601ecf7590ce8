#include "inventory/inventory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "deployments/deployment.h"

/* How long a cached token hash is trusted before it is read again (so a
 * revoked token stops working within this time even on a busy node). The
 * flusher re-reads every known node's hash and state in one query twice per
 * TTL, so on a healthy database no heartbeat waits for a read of its own;
 * only a node seen for the first time (or after the database was away) is
 * read on the request's path, and that read holds no lock.
 *
 * Rejected: a read per node when its TTL runs out, under the table lock
 * (what this replaced). The nodes first seen together expire together, and
 * 10,000 serial reads under the one lock stalled every heartbeat for over a
 * second every 10 s (docs/PERFORMANCE.md has the numbers). */
#define INV_TOKEN_TTL_MS 10000
#define INV_TOKEN_REFRESH_MS (INV_TOKEN_TTL_MS / 2)
/* A token that does not match a hash read this long ago has the hash read
 * again before it is refused. */
#define INV_TOKEN_RECHECK_MS 1000

struct inv_node {
	char id[IDS_UUID_LEN];          /* "" : free slot */
	char token_hash[SECRET_HEX_SHA256_LEN];
	char state[16];
	long long token_checked_ms;
	long long last_seq;
	long long seen_unix_ms;         /* wall clock of the last accepted heartbeat */
	bool dirty;
	/* Reported since the last flush, as compact JSON text (owned), handed
	 * to the flush, which writes it (a heartbeat without one keeps the
	 * database's). Rejected: keeping the last jansson object of every node,
	 * a few hundred bytes each, for nothing but the next flush. */
	char *capacity;
	json_t *replicas;               /* last reported, owned */
	bool replicas_dirty;
	bool replicas_changed;          /* a replica's state or endpoint changed */
};

struct inventory {
	struct db_pool *db;
	struct inventory_config cfg;
	pthread_mutex_t lock;
	struct inv_node *slots;
	size_t cap, used;
	json_t *digests;                /* node id -> assignment digest */
	pthread_t flusher, sweeper;
	bool started, sweeping;
	bool (*is_leader)(void *ctx);
	void *leader_ctx;
	atomic_bool stop;
	atomic_ullong loads_gen;        /* +1 for every heartbeat with replica reports */
	/* The wall clock of the oldest last heartbeat among the ready nodes
	 * this novad takes heartbeats from (0: none), as of the last flush:
	 * the sweeper wakes when that node would be silent for
	 * missed_intervals, not only on its period. */
	atomic_llong oldest_seen_ms;
	/* A heartbeat changed a replica's state or endpoint: the flusher
	 * writes at its next 10 ms step rather than at the end of flush_ms,
	 * and then tells on_health, so a replica that became ready is routed
	 * (or one that failed leaves) within milliseconds. */
	atomic_bool flush_soon;
	void (*on_health)(void *ctx);   /* the sweep or a flush changed what is routable */
	void *health_ctx;
};

void inventory_config_defaults(struct inventory_config *cfg)
{
	cfg->interval_ms = 2000;
	cfg->missed_intervals = 3;
	cfg->failed_after_ms = 30000;
	cfg->flush_ms = 500;
}

static long long inv_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long inv_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int inventory_create(struct inventory **out, struct db_pool *db,
		     const struct inventory_config *cfg, struct nova_err *err)
{
	struct inventory *inv = calloc(1, sizeof(*inv));
	*out = NULL;
	if (!inv || !(inv->slots = calloc(1024, sizeof(*inv->slots)))) {
		free(inv);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	inv->cap = 1024;
	inv->db = db;
	inv->cfg = *cfg;
	pthread_mutex_init(&inv->lock, NULL);
	atomic_init(&inv->stop, false);
	atomic_init(&inv->loads_gen, 0);
	atomic_init(&inv->oldest_seen_ms, 0);
	atomic_init(&inv->flush_soon, false);
	*out = inv;
	return 0;
}

/* --- the table (open addressing on the id's hash; caller holds lock) ------------ */

static size_t inv_hash(const char *id)
{
	size_t h = 1469598103934665603ull;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h;
}

static struct inv_node *inv_find(struct inventory *inv, const char *id, bool create)
{
	if (create && (inv->used + 1) * 4 > inv->cap * 3) {
		/* Grow: rehash into twice the slots. */
		size_t ncap = inv->cap * 2;
		struct inv_node *n = calloc(ncap, sizeof(*n));
		if (!n)
			return NULL;
		for (size_t i = 0; i < inv->cap; i++) {
			if (!inv->slots[i].id[0])
				continue;
			size_t j = inv_hash(inv->slots[i].id) & (ncap - 1);
			while (n[j].id[0])
				j = (j + 1) & (ncap - 1);
			n[j] = inv->slots[i];
		}
		free(inv->slots);
		inv->slots = n;
		inv->cap = ncap;
	}
	size_t i = inv_hash(id) & (inv->cap - 1);
	while (inv->slots[i].id[0]) {
		if (strcmp(inv->slots[i].id, id) == 0)
			return &inv->slots[i];
		i = (i + 1) & (inv->cap - 1);
	}
	if (!create)
		return NULL;
	memset(&inv->slots[i], 0, sizeof(inv->slots[i]));
	snprintf(inv->slots[i].id, sizeof(inv->slots[i].id), "%s", id);
	inv->slots[i].last_seq = -1;
	inv->used++;
	return &inv->slots[i];
}

/* --- authentication -------------------------------------------------------- */

/* What the database says of a node: its token hash, state, last sequence. */
struct inv_node_row {
	char token_hash[SECRET_HEX_SHA256_LEN];
	char state[16];
	long long last_seq;
};

/* Copy a database row into the cached entry (caller holds the lock). */
static void inv_node_apply(struct inv_node *e, const struct inv_node_row *row, long long now_ms)
{
	snprintf(e->token_hash, sizeof(e->token_hash), "%s", row->token_hash);
	snprintf(e->state, sizeof(e->state), "%s", row->state);
	if (row->last_seq > e->last_seq) /* another novad may have taken heartbeats */
		e->last_seq = row->last_seq;
	e->token_checked_ms = now_ms;
}

/* Read one node's row (without the table lock). */
static int inv_node_read(struct inv_node_row *row, struct inventory *inv, const char *id,
			 struct nova_err *err)
{
	const char *params[1] = {id};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if ((rc = db_conn_acquire(&c, inv->db, err)))
		return rc;
	rc = db_exec_one(&res, c,
			 "SELECT coalesce(token_hash, ''), state, coalesce(last_seq, -1) FROM nodes "
			 "WHERE id = $1::uuid", 1, params, err);
	db_conn_release(inv->db, c);
	if (rc == NOVA_ENOTFOUND)
		return nova_err_set(err, NOVA_ENOTFOUND, "node", "no node with id %s", id);
	if (rc)
		return rc;
	snprintf(row->token_hash, sizeof(row->token_hash), "%s", PQgetvalue(res, 0, 0));
	snprintf(row->state, sizeof(row->state), "%s", PQgetvalue(res, 0, 1));
	row->last_seq = atoll(PQgetvalue(res, 0, 2));
	PQclear(res);
	return 0;
}

/* Re-read the hash and state of every node this novad knows, in one query
 * (the flusher calls it every INV_TOKEN_REFRESH_MS). A node whose row is
 * gone loses its cached hash, so its next heartbeat reads it and is refused. */
static int inv_tokens_refresh(struct inventory *inv, struct nova_err *err)
{
	json_t *ids = json_array();
	PGresult *res = NULL;
	int rc;
	long long started = inv_mono_ms();
	if (!ids)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	pthread_mutex_lock(&inv->lock);
	for (size_t i = 0; i < inv->cap; i++)
		if (inv->slots[i].id[0] && inv->slots[i].token_hash[0])
			json_array_append_new(ids, json_string(inv->slots[i].id));
	pthread_mutex_unlock(&inv->lock);
	if (json_array_size(ids) == 0) {
		json_decref(ids);
		return 0;
	}
	char *text = json_dump_compact(ids);
	json_decref(ids);
	if (!text)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	const char *params[1] = {text};
	rc = db_pool_exec(&res, inv->db,
			  "SELECT n.id::text, coalesce(n.token_hash, ''), n.state, coalesce(n.last_seq, -1) "
			  "FROM nodes n JOIN jsonb_array_elements_text($1::jsonb) AS k(id) "
			  "ON n.id = k.id::uuid",
			  1, params, err);
	free(text);
	if (rc)
		return rc;
	long long now = inv_mono_ms();
	pthread_mutex_lock(&inv->lock);
	for (int i = 0; i < PQntuples(res); i++) {
		struct inv_node *e = inv_find(inv, PQgetvalue(res, i, 0), false);
		struct inv_node_row row;
		if (!e)
			continue;
		snprintf(row.token_hash, sizeof(row.token_hash), "%s", PQgetvalue(res, i, 1));
		snprintf(row.state, sizeof(row.state), "%s", PQgetvalue(res, i, 2));
		row.last_seq = atoll(PQgetvalue(res, i, 3));
		inv_node_apply(e, &row, now);
	}
	/* Asked for and not answered: the node is gone. An entry read on a
	 * request's path meanwhile (checked after we started) is left alone. */
	for (size_t i = 0; i < inv->cap; i++) {
		struct inv_node *e = &inv->slots[i];
		if (e->id[0] && e->token_hash[0] && e->token_checked_ms < started)
			e->token_hash[0] = '\0';
	}
	pthread_mutex_unlock(&inv->lock);
	PQclear(res);
	return 0;
}

/* A token that is not this node's: another node's (403) or nobody's (401). */
static int inv_token_refused(struct inventory *inv, const char *token, struct nova_err *err)
{
	char hash[SECRET_HEX_SHA256_LEN];
	const char *params[1] = {hash};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	secret_sha256_hex(hash, token, strlen(token));
	if ((rc = db_conn_acquire(&c, inv->db, err)))
		return rc;
	rc = db_exec(&res, c, "SELECT 1 FROM nodes WHERE token_hash = $1", 1, params, err);
	db_conn_release(inv->db, c);
	if (rc == 0)
		rc = PQntuples(res) > 0
			     ? nova_err_set(err, NOVA_EFORBIDDEN, "", "this token belongs to another node")
			     : nova_err_set(err, NOVA_EUNAUTH, "", "invalid or revoked node token");
	PQclear(res);
	return rc;
}

/* --- heartbeats ---------------------------------------------------------------- */

static int inv_body_check(long long *seq, json_t **capacity, json_t **replicas,
			  const char **generation, const json_t *body, struct nova_err *err)
{
	const struct json_field fields[] = {
		{.name = "seq", .kind = JSON_KIND_INT, .required = true, .out = seq, .min = 0,
		 .max = 9000000000000000000LL},
		{.name = "capacity", .kind = JSON_KIND_OBJECT, .out = capacity},
		{.name = "replicas", .kind = JSON_KIND_ARRAY, .out = replicas},
		{.name = "assignment_generation", .kind = JSON_KIND_STRING, .out = generation,
		 .max_len = 64, .allow_empty = true},
	};
	size_t i;
	json_t *r;
	int rc = json_decode_object(body, fields, 4, "", err);
	if (rc)
		return rc;
	if (*replicas && json_array_size(*replicas) > 256)
		return nova_err_set(err, NOVA_EINVAL, "replicas", "at most 256 replicas per node");
	json_array_foreach(*replicas, i, r) {
		char path[32];
		const char *id = NULL, *state = NULL, *endpoint = NULL;
		json_t *load = NULL;
		long long stage = -1;
		const struct json_field rf[] = {
			{.name = "replica_id", .kind = JSON_KIND_STRING, .required = true, .out = &id,
			 .max_len = 36},
			{.name = "state", .kind = JSON_KIND_STRING, .required = true, .out = &state,
			 .max_len = 16},
			{.name = "endpoint", .kind = JSON_KIND_STRING, .out = &endpoint, .max_len = 512},
			{.name = "load", .kind = JSON_KIND_OBJECT, .out = &load},
			{.name = "stage", .kind = JSON_KIND_INT, .out = &stage, .min = 0, .max = 15},
		};
		snprintf(path, sizeof(path), "replicas[%zu]", i);
		if ((rc = json_decode_object(r, rf, 5, path, err)))
			return rc;
		if (!ids_is_uuid(id)) {
			char f[NOVA_ERR_FIELD_MAX];
			snprintf(f, sizeof(f), "%s.replica_id", path);
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be a uuid", f);
		}
		if (strcmp(state, "starting") && strcmp(state, "ready") && strcmp(state, "failed")) {
			char f[NOVA_ERR_FIELD_MAX];
			snprintf(f, sizeof(f), "%s.state", path);
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be starting, ready or failed", f);
		}
	}
	return 0;
}

static json_t *inv_answer(struct inventory *inv, bool accepted, const char *reason)
{
	json_t *a = json_pack("{s:b, s:I}", "accepted", accepted, "interval_ms",
			      (json_int_t)inv->cfg.interval_ms);
	if (a && reason)
		json_object_set_new(a, "reason", json_string(reason));
	return a;
}

/* Read a node's row without the lock, then find its entry again (the
 * table may have grown and moved meanwhile) and apply it. Called and
 * returns with the lock held; on error the lock is released. */
static int inv_node_reload(struct inv_node **e, struct inventory *inv, const char *node_id,
			   struct nova_err *err)
{
	struct inv_node_row row;
	int rc;
	pthread_mutex_unlock(&inv->lock);
	if ((rc = inv_node_read(&row, inv, node_id, err)))
		return rc;
	pthread_mutex_lock(&inv->lock);
	if (!(*e = inv_find(inv, node_id, true))) {
		pthread_mutex_unlock(&inv->lock);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	inv_node_apply(*e, &row, inv_mono_ms());
	return 0;
}

static bool inv_json_same(const json_t *a, const json_t *b)
{
	return (!a && !b) || (a && b && json_equal(a, b));
}

/* Whether a report changes what could be routed: a replica new, gone, or
 * with another state or endpoint (load alone does not). */
static bool inv_replicas_changed(const json_t *old, const json_t *fresh)
{
	size_t i, j;
	json_t *r, *o;
	if (json_array_size(old) != json_array_size(fresh))
		return true;
	json_array_foreach(fresh, i, r) {
		const char *id = json_string_value(json_object_get(r, "replica_id"));
		bool same = false;
		json_array_foreach(old, j, o) {
			const char *oid = json_string_value(json_object_get(o, "replica_id"));
			/* One report per stage of a replica on this node. */
			if (!id || !oid || strcmp(id, oid) != 0 ||
			    !inv_json_same(json_object_get(r, "stage"), json_object_get(o, "stage")))
				continue;
			same = inv_json_same(json_object_get(r, "state"), json_object_get(o, "state")) &&
			       inv_json_same(json_object_get(r, "endpoint"), json_object_get(o, "endpoint"));
			break;
		}
		if (!same)
			return true;
	}
	return false;
}

int inventory_heartbeat(json_t **answer, struct inventory *inv, const char *node_id,
			const char *token, const json_t *body, struct nova_err *err)
{
	long long seq = 0;
	json_t *capacity = NULL, *replicas = NULL;
	const char *generation = NULL;
	struct inv_node *e;
	char reason[128], digest[64];
	int rc;
	*answer = NULL;
	if (!ids_is_uuid(node_id))
		return nova_err_set(err, NOVA_ENOTFOUND, "node", "no node with id %s", node_id);
	if (!token || !*token)
		return nova_err_set(err, NOVA_EUNAUTH, "", "a node token is required");
	if ((rc = inv_body_check(&seq, &capacity, &replicas, &generation, body, err)))
		return rc;

	pthread_mutex_lock(&inv->lock);
	e = inv_find(inv, node_id, true);
	if (!e) {
		pthread_mutex_unlock(&inv->lock);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	/* A node not seen before, or not refreshed within the TTL (the
	 * database was away): read it without the lock, so the other nodes'
	 * heartbeats go on meanwhile, then find the entry again (the table may
	 * have grown and moved). Two requests of one node may both read; the
	 * second write is the same. */
	if (!e->token_hash[0] || inv_mono_ms() - e->token_checked_ms > INV_TOKEN_TTL_MS) {
		if ((rc = inv_node_reload(&e, inv, node_id, err)))
			return rc;
	} else if (!secret_matches_hash(token, e->token_hash) &&
		   inv_mono_ms() - e->token_checked_ms > INV_TOKEN_RECHECK_MS) {
		/* A token issued since the hash was read (a node provisioned
		 * again gets a new one): read it again rather than refuse the
		 * new agent until the next refresh. At most once a second per
		 * node, so a wrong token cannot drive a read per request. */
		if ((rc = inv_node_reload(&e, inv, node_id, err)))
			return rc;
	}
	if (!e->token_hash[0] || !secret_matches_hash(token, e->token_hash)) {
		pthread_mutex_unlock(&inv->lock);
		return inv_token_refused(inv, token, err);
	}
	if (!strcmp(e->state, "failed") || !strcmp(e->state, "terminating") ||
	    !strcmp(e->state, "terminated")) {
		snprintf(reason, sizeof(reason), "node is %s", e->state);
		pthread_mutex_unlock(&inv->lock);
		*answer = inv_answer(inv, false, reason);
		return 0;
	}
	if (seq <= e->last_seq) {
		snprintf(reason, sizeof(reason), "stale sequence number %lld (last seen %lld)", seq,
			 e->last_seq);
		pthread_mutex_unlock(&inv->lock);
		*answer = inv_answer(inv, false, reason);
		return 0;
	}
	e->last_seq = seq;
	e->seen_unix_ms = inv_unix_ms();
	e->dirty = true;
	if (capacity) {
		/* Dumped under the lock (a small object, about a microsecond):
		 * the early returns above then have nothing to free. */
		char *text = json_dump_compact(capacity);
		if (text) {
			free(e->capacity);
			e->capacity = text;
		}
	}
	if (replicas) {
		if (inv_replicas_changed(e->replicas, replicas)) {
			e->replicas_changed = true;
			atomic_store(&inv->flush_soon, true);
		}
		json_decref(e->replicas);
		e->replicas = json_incref((json_t *)replicas);
		e->replicas_dirty = true;
		atomic_fetch_add(&inv->loads_gen, 1);
	}
	const char *d = json_string_value(json_object_get(inv->digests, node_id));
	snprintf(digest, sizeof(digest), "%s", d ? d : "none");
	pthread_mutex_unlock(&inv->lock);
	*answer = inv_answer(inv, true, NULL);
	if (!*answer)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	json_object_set_new(*answer, "assignment_generation", json_string(digest));
	/* What to run, only when the sidecar's view is not the current one. */
	if (!generation || strcmp(generation, digest) != 0) {
		json_t *assignments;
		if ((rc = deployment_node_assignments(&assignments, inv->db, node_id, err))) {
			json_decref(*answer);
			*answer = NULL;
			return rc;
		}
		json_object_set_new(*answer, "assignments", assignments);
	}
	return 0;
}

/* --- the flusher ------------------------------------------------------------------- */

/* A growing text buffer for the flush batch. */
struct inv_text {
	char *p;
	size_t len, cap;
	bool failed;
};

static void inv_text_add(struct inv_text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 65536;
		while (nc < t->len + n + 1)
			nc *= 2;
		char *np = realloc(t->p, nc);
		if (!np) {
			t->failed = true;
			return;
		}
		t->p = np;
		t->cap = nc;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

int inventory_flush(struct inventory *inv, struct nova_err *err)
{
	/* Under the lock, a compact row per dirty node (taking its capacity
	 * text); the batch is then written as JSON text directly, outside
	 * the lock. Rejected: a jansson array of one object per node, then
	 * dumped, which at 100,000 nodes built some 60 MiB of objects every
	 * flush (docs/PERFORMANCE.md, memory). Ids are uuids and numbers are
	 * numbers: nothing to escape; capacity is kept as jansson's text. */
	struct inv_row {
		char id[IDS_UUID_LEN];
		long long seq, at_ms;
		char *cap;
	} *rows = NULL;
	size_t n_batch = 0, rows_cap = 0;
	struct inv_text batch = {0};
	json_t *reports = json_object();
	long long oldest = 0;
	bool changed = false;
	int rc = 0;
	atomic_store(&inv->flush_soon, false);
	pthread_mutex_lock(&inv->lock);
	for (size_t i = 0; i < inv->cap; i++) {
		struct inv_node *e = &inv->slots[i];
		if (!e->id[0])
			continue;
		/* What the statement below does to an unhealthy node, so the
		 * cached state stays true until the next refresh. */
		if (e->dirty && !strcmp(e->state, "unhealthy"))
			snprintf(e->state, sizeof(e->state), "ready");
		if (e->seen_unix_ms && !strcmp(e->state, "ready") &&
		    (!oldest || e->seen_unix_ms < oldest))
			oldest = e->seen_unix_ms;
		if (!e->dirty)
			continue;
		if (n_batch == rows_cap) {
			size_t nc = rows_cap ? rows_cap * 2 : 1024;
			struct inv_row *nr = realloc(rows, nc * sizeof(*rows));
			if (!nr)
				break; /* the rest stay dirty for the next flush */
			rows = nr;
			rows_cap = nc;
		}
		struct inv_row *row = &rows[n_batch++];
		memcpy(row->id, e->id, sizeof(row->id));
		row->seq = e->last_seq;
		row->at_ms = e->seen_unix_ms;
		row->cap = e->capacity; /* moved: the database keeps it from here */
		e->capacity = NULL;
		if (e->replicas_dirty && e->replicas)
			json_object_set(reports, e->id, e->replicas);
		changed |= e->replicas_changed;
		e->dirty = e->replicas_dirty = e->replicas_changed = false;
	}
	pthread_mutex_unlock(&inv->lock);
	atomic_store(&inv->oldest_seen_ms, oldest);
	for (size_t i = 0; i < n_batch; i++) {
		char head[160];
		const char *cap = rows[i].cap;
		int hn = snprintf(head, sizeof(head), "%s{\"id\":\"%s\",\"seq\":%lld,\"at_ms\":%lld,\"cap\":",
				  i ? "," : "[", rows[i].id, rows[i].seq, rows[i].at_ms);
		inv_text_add(&batch, head, (size_t)hn);
		inv_text_add(&batch, cap ? cap : "null", cap ? strlen(cap) : 4);
		inv_text_add(&batch, "}", 1);
		free(rows[i].cap);
	}
	free(rows);
	if (n_batch > 0)
		inv_text_add(&batch, "]", 1);
	if (n_batch > 0) {
		char *text = batch.failed ? NULL : batch.p;
		const char *params[1] = {text};
		struct db_conn *c;
		if (!text)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		else if ((rc = db_conn_acquire(&c, inv->db, err)) == 0) {
			/* One statement for the whole batch; a heartbeat flushed by
			 * another novad with a higher sequence number wins. */
			/* An unhealthy node that speaks again is ready again (the
			 * trigger records it); a failed one stays failed. */
			rc = db_exec(NULL, c,
				     "UPDATE nodes n SET last_seq = v.seq, capacity = coalesce(v.cap, n.capacity), "
				     "last_heartbeat_at = to_timestamp(v.at_ms / 1000.0), "
				     "state = CASE WHEN n.state = 'unhealthy' THEN 'ready' ELSE n.state END, "
				     "state_reason = CASE WHEN n.state = 'unhealthy' THEN 'heartbeat resumed' "
				     "ELSE n.state_reason END "
				     "FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, seq bigint, at_ms bigint, cap jsonb) "
				     "WHERE n.id = v.id AND (n.last_seq IS NULL OR n.last_seq < v.seq) "
				     /* Rows locked in id order first, as every writer of many
				      * node rows does (the sweep skips locked ones): two
				      * batches, or a batch and a placement, cannot deadlock. */
				     "AND n.id IN (SELECT x.id FROM nodes x WHERE x.id IN "
				     "(SELECT (e->>'id')::uuid FROM jsonb_array_elements($1::jsonb) AS e) "
				     "ORDER BY x.id FOR UPDATE)",
				     1, params, err);
			db_conn_release(inv->db, c);
		}
	}
	free(batch.p);
	const char *node;
	json_t *reps;
	json_object_foreach(reports, node, reps) {
		if (rc)
			break;
		rc = deployment_replicas_report(inv->db, node, reps, err);
	}
	json_decref(reports);
	if (rc == 0 && changed && inv->on_health)
		inv->on_health(inv->health_ctx);
	/* Refresh what every node should run: one query for the whole fleet. */
	json_t *digests;
	if (rc == 0 && (rc = deployment_assignment_digests(&digests, inv->db, err)) == 0) {
		pthread_mutex_lock(&inv->lock);
		json_decref(inv->digests);
		inv->digests = digests;
		pthread_mutex_unlock(&inv->lock);
	}
	return rc;
}

/* One sweep; *marked (may be NULL) counts the nodes it changed, and when
 * inv is not NULL their cached state follows. */
static int inv_sweep(int *marked, struct inventory *inv, struct db_pool *db,
		     const struct inventory_config *cfg, struct nova_err *err)
{
	char silent[24], dead[24];
	const char *params[2] = {silent, dead};
	PGresult *res = NULL;
	int rc;
	snprintf(silent, sizeof(silent), "%u", cfg->interval_ms * cfg->missed_intervals);
	snprintf(dead, sizeof(dead), "%u", cfg->failed_after_ms);
	rc = db_pool_exec(&res, db,
		     "UPDATE nodes SET state = CASE WHEN last_heartbeat_at < now() - $2::integer * "
		     "interval '1 millisecond' THEN 'failed' ELSE 'unhealthy' END, "
		     "state_reason = CASE WHEN last_heartbeat_at < now() - $2::integer * "
		     "interval '1 millisecond' THEN 'no heartbeat for ' || $2 || ' ms' "
		     "ELSE 'no heartbeat for ' || $1 || ' ms' END "
		     "WHERE id IN (SELECT id FROM nodes WHERE last_heartbeat_at IS NOT NULL AND "
		     "((state = 'ready' AND last_heartbeat_at < now() - $1::integer * interval '1 millisecond') "
		     "OR (state = 'unhealthy' AND last_heartbeat_at < now() - $2::integer * interval '1 millisecond')) "
		     /* A row a flush holds is being heartbeated: not silent. Skipping
		      * it, the sweep never waits, so it cannot deadlock with one. */
		     "FOR UPDATE SKIP LOCKED) "
		     "RETURNING id, state",
		     2, params, err);
	if (marked)
		*marked = rc == 0 ? PQntuples(res) : 0;
	for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
		nova_log_kv(NOVA_LOG_WARN, "inventory", "node silent", "node", PQgetvalue(res, i, 0),
			    "state", PQgetvalue(res, i, 1), NULL);
		if (inv) {
			pthread_mutex_lock(&inv->lock);
			struct inv_node *e = inv_find(inv, PQgetvalue(res, i, 0), false);
			if (e)
				snprintf(e->state, sizeof(e->state), "%s", PQgetvalue(res, i, 1));
			pthread_mutex_unlock(&inv->lock);
		}
	}
	PQclear(res);
	return rc;
}

int inventory_sweep(struct db_pool *db, const struct inventory_config *cfg, struct nova_err *err)
{
	return inv_sweep(NULL, NULL, db, cfg, err);
}

static void *inv_flusher(void *arg)
{
	struct inventory *inv = arg;
	long long refreshed = inv_mono_ms();
	while (!atomic_load(&inv->stop)) {
		struct nova_err err;
		unsigned placed = deployment_assignments_generation();
		for (unsigned w = 0; w < inv->cfg.flush_ms && !atomic_load(&inv->stop) &&
				     !atomic_load(&inv->flush_soon) &&
				     deployment_assignments_generation() == placed; w += 10) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (inventory_flush(inv, &err))
			nova_log_kv(NOVA_LOG_WARN, "inventory", "flush failed", "error", err.message, NULL);
		if (inv_mono_ms() - refreshed >= INV_TOKEN_REFRESH_MS) {
			refreshed = inv_mono_ms();
			if (inv_tokens_refresh(inv, &err))
				nova_log_kv(NOVA_LOG_WARN, "inventory", "node token refresh failed", "error",
					    err.message, NULL);
		}
	}
	return NULL;
}

/* The sweeper wakes every interval_ms / 4, and also just after the oldest
 * heartbeat it knows of turns silent (a few ms after, so the database's
 * clock agrees): a dead node is found within a few ms of being silent for
 * missed_intervals, rather than up to a quarter interval later. Rejected:
 * a shorter period (every sweep is a scan of the nodes table, 100,000 rows
 * at scale), and an index on last_heartbeat_at (every flush would update
 * it for every heartbeating node, losing heap-only updates). Nodes that
 * heartbeat through another novad are swept on the period. */
static void *inv_sweeper(void *arg)
{
	struct inventory *inv = arg;
	unsigned step = inv->cfg.interval_ms / 4 ? inv->cfg.interval_ms / 4 : 1;
	long long silent_ms = (long long)inv->cfg.interval_ms * inv->cfg.missed_intervals;
	while (!atomic_load(&inv->stop)) {
		struct nova_err err;
		long long now = inv_unix_ms(), wait = step;
		long long oldest = atomic_load(&inv->oldest_seen_ms);
		if (oldest && oldest + silent_ms + 5 > now && oldest + silent_ms + 5 - now < wait)
			wait = oldest + silent_ms + 5 - now;
		long long until = inv_mono_ms() + wait;
		for (long long left = wait; left > 0 && !atomic_load(&inv->stop);
		     left = until - inv_mono_ms()) {
			struct timespec ts = {0, (left < 10 ? left : 10) * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (atomic_load(&inv->stop) || !inv->is_leader(inv->leader_ctx))
			continue;
		int marked = 0;
		if (inv_sweep(&marked, inv, inv->db, &inv->cfg, &err))
			nova_log_kv(NOVA_LOG_WARN, "inventory", "health sweep failed", "error",
				    err.message, NULL);
		else if (marked > 0 && inv->on_health)
			inv->on_health(inv->health_ctx);
	}
	return NULL;
}

void inventory_on_health_change(struct inventory *inv, void (*fn)(void *ctx), void *ctx)
{
	inv->on_health = fn;
	inv->health_ctx = ctx;
}

int inventory_start(struct inventory *inv, bool (*is_leader)(void *ctx), void *leader_ctx,
		    struct nova_err *err)
{
	if (pthread_create(&inv->flusher, NULL, inv_flusher, inv) != 0)
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the inventory flusher");
	inv->started = true;
	if (is_leader) {
		inv->is_leader = is_leader;
		inv->leader_ctx = leader_ctx;
		if (pthread_create(&inv->sweeper, NULL, inv_sweeper, inv) != 0) {
			inventory_stop(inv);
			return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the health sweeper");
		}
		inv->sweeping = true;
	}
	return 0;
}

void inventory_stop(struct inventory *inv)
{
	if (!inv || !inv->started)
		return;
	atomic_store(&inv->stop, true);
	pthread_join(inv->flusher, NULL);
	if (inv->sweeping)
		pthread_join(inv->sweeper, NULL);
	inv->started = inv->sweeping = false;
}

void inventory_destroy(struct inventory *inv)
{
	struct nova_err err;
	if (!inv)
		return;
	inventory_stop(inv);
	inv->on_health = NULL; /* what it would tell may be gone already */
	inventory_flush(inv, &err);
	for (size_t i = 0; i < inv->cap; i++) {
		free(inv->slots[i].capacity);
		json_decref(inv->slots[i].replicas);
	}
	free(inv->slots);
	json_decref(inv->digests);
	pthread_mutex_destroy(&inv->lock);
	free(inv);
}

unsigned long long inventory_loads_generation(struct inventory *inv)
{
	return atomic_load(&inv->loads_gen);
}

json_t *inventory_loads(struct inventory *inv)
{
	json_t *out = json_object();
	pthread_mutex_lock(&inv->lock);
	for (size_t i = 0; out && i < inv->cap; i++) {
		size_t j;
		json_t *r;
		if (!inv->slots[i].id[0])
			continue;
		json_array_foreach(inv->slots[i].replicas, j, r) {
			json_t *load = json_object_get(r, "load");
			const char *id = json_string_value(json_object_get(r, "replica_id"));
			if (id && load)
				json_object_set_new(out, id, json_deep_copy(load));
		}
	}
	pthread_mutex_unlock(&inv->lock);
	return out;
}
