#include "inventory/inventory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hex.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "deployments/deployment.h"

/* How long a cached token hash is trusted before it is read again (so a
 * revoked token stops working within this time even on a busy node). The
 * flusher reads the whole fleet's hashes and states (inventory_refresh)
 * twice per TTL, and inventory_start once, so on a healthy database no
 * heartbeat waits for a read of its own; only a node provisioned since the
 * last refresh (or every node, after the database was away) is read on the
 * request's path, and that read holds no lock.
 *
 * Rejected: a read per node when its TTL runs out, under the table lock
 * (10,000 serial reads stalled every heartbeat for over a second every
 * 10 s); and a read per node on its first heartbeat, without the lock
 * (a novad started under a fleet of 100,000 spent minutes, one query per
 * node, before every node got in). docs/PERFORMANCE.md has the numbers. */
#define INV_TOKEN_TTL_MS 10000
#define INV_TOKEN_REFRESH_MS (INV_TOKEN_TTL_MS / 2)
/* A token that does not match a hash read this long ago has the hash read
 * again before it is refused. */
#define INV_TOKEN_RECHECK_MS 1000
/* Rows per FETCH when the whole fleet is read (each batch is parsed
 * outside the lock and applied under it in well under a millisecond). */
#define INV_REFRESH_BATCH 5000

/* A node's state as the database has it (sql/0001_init.sql). */
enum inv_state {
	INV_PROVISIONING,
	INV_READY,
	INV_UNHEALTHY,
	INV_DRAINING,
	INV_TERMINATING,
	INV_TERMINATED,
	INV_FAILED,
};

static const char *const inv_state_names[] = {
	[INV_PROVISIONING] = "provisioning", [INV_READY] = "ready",
	[INV_UNHEALTHY] = "unhealthy",       [INV_DRAINING] = "draining",
	[INV_TERMINATING] = "terminating",   [INV_TERMINATED] = "terminated",
	[INV_FAILED] = "failed",
};

static uint8_t inv_state_parse(const char *s)
{
	for (uint8_t i = 0; i < (uint8_t)(sizeof(inv_state_names) / sizeof(inv_state_names[0])); i++)
		if (!strcmp(inv_state_names[i], s))
			return i;
	return INV_PROVISIONING; /* the table's CHECK allows no other */
}

/* One node, 104 bytes: the id and token hash as bytes, not text, since a
 * novad keeps every node of the fleet (100,000 nodes: 10 MiB of nodes and
 * a 1 MiB index, where 176-byte slots of text took 44 MiB). */
struct inv_node {
	unsigned char id[16];
	unsigned char token_hash[32];   /* SHA-256 of the node's token */
	uint8_t state;                  /* enum inv_state */
	bool has_hash;                  /* false: revoked, or not read yet */
	bool dirty;
	bool replicas_dirty;
	bool replicas_changed;          /* a replica's state or endpoint changed */
	long long token_checked_ms;
	long long last_seq;
	long long seen_unix_ms;         /* wall clock of the last accepted heartbeat */
	/* A checksum of the last capacity taken for the database (0: none): a
	 * heartbeat that reports the same again keeps nothing, and the flush
	 * leaves the database's as it is. */
	uint64_t cap_sum;
	/* Reported since the last flush, as compact JSON text (owned), handed
	 * to the flush, which writes it (a heartbeat without one keeps the
	 * database's). Rejected: keeping the last jansson object of every node,
	 * a few hundred bytes each, for nothing but the next flush. */
	char *capacity;
	json_t *replicas;               /* last reported, owned */
};

struct inventory {
	struct db_pool *db;
	struct inventory_config cfg;
	pthread_mutex_t lock;
	/* The nodes, dense (n_nodes of nodes_cap), and an open-addressing
	 * index on the id: each entry a position in nodes + 1, 0 empty; a
	 * power of two, at most 3/4 full. Rejected: the nodes themselves as
	 * the open-addressing slots, which at 3/4 full leaves a third of a
	 * large table empty. */
	struct inv_node *nodes;
	size_t n_nodes, nodes_cap;
	uint32_t *index;
	size_t index_cap;
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
	if (!inv || !(inv->nodes = calloc(768, sizeof(*inv->nodes))) ||
	    !(inv->index = calloc(1024, sizeof(*inv->index)))) {
		if (inv)
			free(inv->nodes);
		free(inv);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	inv->nodes_cap = 768;
	inv->index_cap = 1024;
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

/* --- the table (caller holds the lock) ----------------------------------------- */

static size_t inv_hash(const unsigned char id[16])
{
	/* Version 4 ids are random already; mixing keeps other versions
	 * (time-based ones share their high bytes) spread too. */
	uint64_t a, b;
	memcpy(&a, id, 8);
	memcpy(&b, id + 8, 8);
	uint64_t h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
	return (size_t)(h ^ (h >> 32));
}

/* The index entry holding id, or the empty one where it would go. */
static size_t inv_probe(const struct inventory *inv, const unsigned char id[16])
{
	size_t mask = inv->index_cap - 1, i = inv_hash(id) & mask;
	while (inv->index[i] && memcmp(inv->nodes[inv->index[i] - 1].id, id, 16) != 0)
		i = (i + 1) & mask;
	return i;
}

static int inv_index_rebuild(struct inventory *inv, size_t cap)
{
	uint32_t *ix = calloc(cap, sizeof(*ix));
	if (!ix)
		return -1;
	free(inv->index);
	inv->index = ix;
	inv->index_cap = cap;
	for (size_t k = 0; k < inv->n_nodes; k++)
		inv->index[inv_probe(inv, inv->nodes[k].id)] = (uint32_t)(k + 1);
	return 0;
}

/* The node with this id; with create, a new one when there is none (NULL
 * only when out of memory). Creating may move every node: pointers taken
 * before do not survive it. */
static struct inv_node *inv_get(struct inventory *inv, const unsigned char id[16], bool create)
{
	size_t i = inv_probe(inv, id);
	if (inv->index[i])
		return &inv->nodes[inv->index[i] - 1];
	if (!create)
		return NULL;
	if (inv->n_nodes == UINT32_MAX - 1)
		return NULL;
	if (inv->n_nodes == inv->nodes_cap) {
		size_t nc = inv->nodes_cap * 2;
		struct inv_node *n = realloc(inv->nodes, nc * sizeof(*n));
		if (!n)
			return NULL;
		inv->nodes = n;
		inv->nodes_cap = nc;
	}
	if ((inv->n_nodes + 1) * 4 > inv->index_cap * 3) {
		if (inv_index_rebuild(inv, inv->index_cap * 2))
			return NULL;
		i = inv_probe(inv, id);
	}
	struct inv_node *e = &inv->nodes[inv->n_nodes];
	memset(e, 0, sizeof(*e));
	memcpy(e->id, id, 16);
	e->last_seq = -1;
	inv->index[i] = (uint32_t)++inv->n_nodes;
	return e;
}

/* Forget a node: its index entry goes by backward shift (what follows it
 * in its cluster moves up when that keeps it reachable), and the last node
 * takes its place in the array. */
static void inv_remove(struct inventory *inv, size_t pos)
{
	size_t mask = inv->index_cap - 1, i = inv_probe(inv, inv->nodes[pos].id), j = i;
	free(inv->nodes[pos].capacity);
	json_decref(inv->nodes[pos].replicas);
	inv->index[i] = 0;
	for (;;) {
		j = (j + 1) & mask;
		if (!inv->index[j])
			break;
		size_t home = inv_hash(inv->nodes[inv->index[j] - 1].id) & mask;
		/* It stays when its home lies cyclically in (i, j]. */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		inv->index[i] = inv->index[j];
		inv->index[j] = 0;
		i = j;
	}
	size_t last = inv->n_nodes - 1;
	if (pos != last) {
		inv->nodes[pos] = inv->nodes[last];
		inv->index[inv_probe(inv, inv->nodes[pos].id)] = (uint32_t)(pos + 1);
	}
	inv->n_nodes--;
}

/* --- authentication -------------------------------------------------------- */

/* What the database says of a node: its token hash, state, last sequence. */
struct inv_node_row {
	unsigned char id[16];
	unsigned char token_hash[32];
	bool has_hash;
	uint8_t state;
	long long last_seq;
};

/* Columns: id, token hash (hex or ''), state, last_seq (or -1). */
static bool inv_row_parse(struct inv_node_row *row, const PGresult *res, int i)
{
	if (!ids_uuid_parse(row->id, PQgetvalue(res, i, 0)))
		return false;
	row->has_hash = secret_sha256_from_hex(row->token_hash, PQgetvalue(res, i, 1));
	row->state = inv_state_parse(PQgetvalue(res, i, 2));
	row->last_seq = atoll(PQgetvalue(res, i, 3));
	return true;
}

/* Copy a database row into the cached entry (caller holds the lock). */
static void inv_node_apply(struct inv_node *e, const struct inv_node_row *row, long long now_ms)
{
	memcpy(e->token_hash, row->token_hash, sizeof(e->token_hash));
	e->has_hash = row->has_hash;
	e->state = row->state;
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
			 "SELECT n.id::text, coalesce(n.token_hash, ''), n.state, coalesce(h.last_seq, -1) "
			 "FROM nodes n LEFT JOIN node_heartbeats h ON h.node_id = n.id WHERE n.id = $1::uuid",
			 1, params, err);
	db_conn_release(inv->db, c);
	if (rc == NOVA_ENOTFOUND)
		return nova_err_set(err, NOVA_ENOTFOUND, "node", "no node with id %s", id);
	if (rc)
		return rc;
	if (!inv_row_parse(row, res, 0))
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "the database gave a node id that is not a uuid");
	PQclear(res);
	return rc;
}

int inventory_refresh(struct inventory *inv, struct nova_err *err)
{
	long long started = inv_mono_ms();
	struct inv_node_row *rows = malloc(INV_REFRESH_BATCH * sizeof(*rows));
	struct db_conn *c;
	int rc;
	if (!rows)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = db_conn_acquire(&c, inv->db, err))) {
		free(rows);
		return rc;
	}
	/* A cursor, so a fleet of 100,000 is never one 20 MB result. */
	if ((rc = db_tx_begin(c, err)) == 0)
		rc = db_exec(NULL, c,
			     "DECLARE inv_fleet NO SCROLL CURSOR FOR SELECT n.id::text, n.token_hash, "
			     "n.state, coalesce(h.last_seq, -1) FROM nodes n "
			     "LEFT JOIN node_heartbeats h ON h.node_id = n.id WHERE n.token_hash IS NOT NULL",
			     0, NULL, err);
	char fetch[48];
	snprintf(fetch, sizeof(fetch), "FETCH %d FROM inv_fleet", INV_REFRESH_BATCH);
	for (int got = INV_REFRESH_BATCH; rc == 0 && got == INV_REFRESH_BATCH;) {
		PGresult *res = NULL;
		size_t n = 0;
		if ((rc = db_exec(&res, c, fetch, 0, NULL, err)))
			break;
		got = PQntuples(res);
		for (int i = 0; i < got; i++)
			if (inv_row_parse(&rows[n], res, i))
				n++;
		PQclear(res);
		long long now = inv_mono_ms();
		pthread_mutex_lock(&inv->lock);
		for (size_t i = 0; i < n; i++) {
			struct inv_node *e = inv_get(inv, rows[i].id, true);
			if (!e) {
				rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
				break;
			}
			/* Read on a request's path since this refresh began (a
			 * token just issued, say): that read is the fresher. */
			if (e->token_checked_ms >= started)
				continue;
			inv_node_apply(e, &rows[i], now);
		}
		pthread_mutex_unlock(&inv->lock);
	}
	if (rc == 0)
		rc = db_tx_commit(c, err);
	else
		db_tx_rollback(c);
	db_conn_release(inv->db, c);
	free(rows);
	if (rc)
		return rc;
	/* Not in the fleet any more (deleted, or its token revoked): forgotten,
	 * so its next heartbeat reads its row and is refused. An entry read on
	 * a request's path meanwhile (checked after we started) is left alone.
	 * Downwards, since a removal moves the last node into the hole. */
	pthread_mutex_lock(&inv->lock);
	for (size_t k = inv->n_nodes; k-- > 0;)
		if (inv->nodes[k].token_checked_ms < started)
			inv_remove(inv, k);
	pthread_mutex_unlock(&inv->lock);
	return 0;
}

size_t inventory_nodes_known(struct inventory *inv)
{
	pthread_mutex_lock(&inv->lock);
	size_t n = inv->n_nodes;
	pthread_mutex_unlock(&inv->lock);
	return n;
}

/* A token that is not this node's: another node's (403) or nobody's (401). */
static int inv_token_refused(struct inventory *inv, const unsigned char presented[32],
			     struct nova_err *err)
{
	char hash[SECRET_HEX_SHA256_LEN];
	const char *params[1] = {hash};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	hex_encode(hash, presented, 32);
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
 * table may have grown and moved meanwhile) and apply it; a node with no
 * row gets no entry. Called and returns with the lock held; on error the
 * lock is released. */
static int inv_node_reload(struct inv_node **e, struct inventory *inv, const char *node_id,
			   struct nova_err *err)
{
	struct inv_node_row row;
	int rc;
	pthread_mutex_unlock(&inv->lock);
	if ((rc = inv_node_read(&row, inv, node_id, err)))
		return rc;
	pthread_mutex_lock(&inv->lock);
	if (!(*e = inv_get(inv, row.id, true))) {
		pthread_mutex_unlock(&inv->lock);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	inv_node_apply(*e, &row, inv_mono_ms());
	return 0;
}

/* FNV-1a, never 0 (0 means "nothing taken"). */
static uint64_t inv_text_sum(const char *text)
{
	uint64_t h = 14695981039346656037ull;
	for (const char *p = text; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h ? h : 1;
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

/* An answer built with jansson, as text. */
static char *inv_answer_dump(json_t *a)
{
	char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return text;
}

/* Nothing in s that JSON would escape. */
static bool inv_json_plain(const char *s)
{
	for (; *s; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

int inventory_heartbeat(char **answer, struct inventory *inv, const char *node_id,
			const char *token, const json_t *body, struct nova_err *err)
{
	long long seq = 0;
	json_t *capacity = NULL, *replicas = NULL;
	const char *generation = NULL;
	struct inv_node *e;
	unsigned char id[16], presented[32];
	char reason[128], digest[64], id_text[IDS_UUID_LEN];
	int rc;
	*answer = NULL;
	if (!ids_uuid_parse(id, node_id))
		return nova_err_set(err, NOVA_ENOTFOUND, "node", "no node with id %s", node_id);
	if (!token || !*token)
		return nova_err_set(err, NOVA_EUNAUTH, "", "a node token is required");
	if ((rc = inv_body_check(&seq, &capacity, &replicas, &generation, body, err)))
		return rc;
	ids_uuid_format(id_text, id);
	secret_sha256(presented, token, strlen(token));

	pthread_mutex_lock(&inv->lock);
	e = inv_get(inv, id, false);
	/* A node not known yet (new since the last refresh of the fleet), or
	 * not refreshed within the TTL (the database was away): read it
	 * without the lock, so the other nodes' heartbeats go on meanwhile,
	 * then find the entry again (the table may have grown and moved). Two
	 * requests of one node may both read; the second write is the same.
	 * An id with no row gets no entry, so made-up ids cost no memory. */
	if (!e || !e->has_hash || inv_mono_ms() - e->token_checked_ms > INV_TOKEN_TTL_MS) {
		if ((rc = inv_node_reload(&e, inv, id_text, err)))
			return rc;
	} else if (!secret_equal(presented, e->token_hash, 32) &&
		   inv_mono_ms() - e->token_checked_ms > INV_TOKEN_RECHECK_MS) {
		/* A token issued since the hash was read (a node provisioned
		 * again gets a new one): read it again rather than refuse the
		 * new agent until the next refresh. At most once a second per
		 * node, so a wrong token cannot drive a read per request. */
		if ((rc = inv_node_reload(&e, inv, id_text, err)))
			return rc;
	}
	if (!e->has_hash || !secret_equal(presented, e->token_hash, 32)) {
		pthread_mutex_unlock(&inv->lock);
		return inv_token_refused(inv, presented, err);
	}
	if (e->state == INV_FAILED || e->state == INV_TERMINATING || e->state == INV_TERMINATED) {
		snprintf(reason, sizeof(reason), "node is %s", inv_state_names[e->state]);
		pthread_mutex_unlock(&inv->lock);
		*answer = inv_answer_dump(inv_answer(inv, false, reason));
		return *answer ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	if (seq <= e->last_seq) {
		snprintf(reason, sizeof(reason), "stale sequence number %lld (last seen %lld)", seq,
			 e->last_seq);
		pthread_mutex_unlock(&inv->lock);
		*answer = inv_answer_dump(inv_answer(inv, false, reason));
		return *answer ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	e->last_seq = seq;
	e->seen_unix_ms = inv_unix_ms();
	e->dirty = true;
	if (capacity) {
		/* Dumped under the lock (a small object, about a microsecond):
		 * the early returns above then have nothing to free. Most
		 * heartbeats report what the last one did: nothing to keep. */
		char *text = json_dump_compact(capacity);
		uint64_t sum = text ? inv_text_sum(text) : 0;
		if (text && sum != e->cap_sum) {
			free(e->capacity);
			e->capacity = text;
			e->cap_sum = sum;
		} else {
			free(text);
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
	const char *d = json_string_value(json_object_get(inv->digests, id_text));
	snprintf(digest, sizeof(digest), "%s", d ? d : "none");
	pthread_mutex_unlock(&inv->lock);
	/* The sidecar's view is current (nearly every heartbeat): the answer
	 * is written as it is, since building it with jansson cost more than
	 * the rest of the heartbeat. */
	if (generation && strcmp(generation, digest) == 0 && inv_json_plain(digest)) {
		enum { ANSWER_MAX = 176 }; /* the text below with a 63-byte digest */
		if (!(*answer = malloc(ANSWER_MAX)))
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		snprintf(*answer, ANSWER_MAX,
			 "{\"accepted\":true,\"interval_ms\":%u,\"assignment_generation\":\"%s\"}",
			 inv->cfg.interval_ms, digest);
		return 0;
	}
	json_t *a = inv_answer(inv, true, NULL);
	if (!a)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	json_object_set_new(a, "assignment_generation", json_string(digest));
	/* What to run, only when the sidecar's view is not the current one. */
	if (!generation || strcmp(generation, digest) != 0) {
		json_t *assignments;
		if ((rc = deployment_node_assignments(&assignments, inv->db, id_text, err))) {
			json_decref(a);
			return rc;
		}
		json_object_set_new(a, "assignments", assignments);
	}
	if (!(*answer = inv_answer_dump(a)))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
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
	 * text); the batch is then written as array literals directly,
	 * outside the lock. Rejected: a jansson array of one object per node,
	 * then dumped, which at 100,000 nodes built some 60 MiB of objects
	 * every flush (docs/PERFORMANCE.md, memory); and the batch as one
	 * JSON document, which the database took longer to take apart than
	 * to apply. Ids are uuids and numbers are numbers: nothing to escape;
	 * capacity is kept as jansson's text. */
	struct inv_row {
		unsigned char id[16];
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
	for (size_t i = 0; i < inv->n_nodes; i++) {
		struct inv_node *e = &inv->nodes[i];
		/* What the statement below does to an unhealthy node, so the
		 * cached state stays true until the next refresh. */
		if (e->dirty && e->state == INV_UNHEALTHY)
			e->state = INV_READY;
		if (e->seen_unix_ms && e->state == INV_READY &&
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
		if (e->replicas_dirty && e->replicas) {
			char id[IDS_UUID_LEN];
			ids_uuid_format(id, e->id);
			json_object_set(reports, id, e->replicas);
		}
		changed |= e->replicas_changed;
		e->dirty = e->replicas_dirty = e->replicas_changed = false;
	}
	pthread_mutex_unlock(&inv->lock);
	atomic_store(&inv->oldest_seen_ms, oldest);
	/* Three array literals (ids, sequences, times) and one object of the
	 * capacities that came (id -> capacity). */
	struct inv_text seqs = {0}, ats = {0}, caps = {0};
	size_t n_caps = 0;
	for (size_t i = 0; i < n_batch; i++) {
		char id[IDS_UUID_LEN], num[32];
		const char *sep = i ? "," : "{";
		int nn;
		ids_uuid_format(id, rows[i].id);
		inv_text_add(&batch, sep, 1);
		inv_text_add(&batch, id, IDS_UUID_LEN - 1);
		nn = snprintf(num, sizeof(num), "%s%lld", sep, rows[i].seq);
		inv_text_add(&seqs, num, (size_t)nn);
		nn = snprintf(num, sizeof(num), "%s%lld", sep, rows[i].at_ms);
		inv_text_add(&ats, num, (size_t)nn);
		if (rows[i].cap) {
			inv_text_add(&caps, n_caps++ ? ",\"" : "{\"", 2);
			inv_text_add(&caps, id, IDS_UUID_LEN - 1);
			inv_text_add(&caps, "\":", 2);
			inv_text_add(&caps, rows[i].cap, strlen(rows[i].cap));
		}
		free(rows[i].cap);
	}
	free(rows);
	inv_text_add(&batch, "}", 1);
	inv_text_add(&seqs, "}", 1);
	inv_text_add(&ats, "}", 1);
	inv_text_add(&caps, n_caps ? "}" : "{}", n_caps ? 1 : 2);
	if (n_batch > 0) {
		const char *params[4] = {batch.p, seqs.p, ats.p, caps.p};
		if (batch.failed || seqs.failed || ats.failed || caps.failed)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		/* One statement for the whole batch, into the narrow table
		 * node_heartbeats (sql/0007); a heartbeat flushed by another
		 * novad with a higher sequence number wins. An unhealthy node
		 * that speaks again is ready again (the trigger records it); a
		 * failed one stays failed. Two novads flushing the same nodes
		 * (a sidecar that moved) may deadlock on their rows: the one
		 * PostgreSQL cancels tries again. Rejected: locking the rows in
		 * id order first, which cost as much as the update itself. */
		for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
			rc = db_pool_exec(NULL, inv->db,
				"WITH beat AS (UPDATE node_heartbeats h SET last_seq = v.seq, "
				"last_heartbeat_at = to_timestamp(v.at_ms / 1000.0), "
				"capacity = coalesce($4::jsonb -> v.id::text, h.capacity) "
				"FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS v(id, seq, at_ms) "
				"WHERE h.node_id = v.id AND (h.last_seq IS NULL OR h.last_seq < v.seq) "
				"RETURNING h.node_id) "
				"UPDATE nodes n SET state = 'ready', state_reason = 'heartbeat resumed' "
				"FROM beat WHERE n.id = beat.node_id AND n.state = 'unhealthy'",
				4, params, err);
			if (rc != NOVA_EAGAIN)
				break;
			if (attempt < 2)
				rc = 0;
		}
		if (rc) {
			/* Capacities not written: send the next ones again. */
			pthread_mutex_lock(&inv->lock);
			for (size_t i = 0; i < inv->n_nodes; i++)
				inv->nodes[i].cap_sum = 0;
			pthread_mutex_unlock(&inv->lock);
		}
	}
	free(seqs.p);
	free(ats.p);
	free(caps.p);
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
		     "UPDATE nodes n SET state = CASE WHEN h.last_heartbeat_at < now() - $2::integer * "
		     "interval '1 millisecond' THEN 'failed' ELSE 'unhealthy' END, "
		     "state_reason = CASE WHEN h.last_heartbeat_at < now() - $2::integer * "
		     "interval '1 millisecond' THEN 'no heartbeat for ' || $2 || ' ms' "
		     "ELSE 'no heartbeat for ' || $1 || ' ms' END "
		     "FROM node_heartbeats h WHERE h.node_id = n.id AND n.id IN ("
		     "SELECT x.id FROM nodes x JOIN node_heartbeats y ON y.node_id = x.id "
		     "WHERE y.last_heartbeat_at IS NOT NULL AND "
		     "((x.state = 'ready' AND y.last_heartbeat_at < now() - $1::integer * interval '1 millisecond') "
		     "OR (x.state = 'unhealthy' AND y.last_heartbeat_at < now() - $2::integer * interval '1 millisecond')) "
		     /* A heartbeat row a flush holds is being written: not silent.
		      * Skipping it (and a node row someone holds), the sweep never
		      * waits, so it cannot deadlock with a flush or a placement. */
		     "FOR UPDATE OF x, y SKIP LOCKED) "
		     "RETURNING n.id, n.state",
		     2, params, err);
	if (marked)
		*marked = rc == 0 ? PQntuples(res) : 0;
	for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
		nova_log_kv(NOVA_LOG_WARN, "inventory", "node silent", "node", PQgetvalue(res, i, 0),
			    "state", PQgetvalue(res, i, 1), NULL);
		if (inv) {
			unsigned char id[16];
			pthread_mutex_lock(&inv->lock);
			struct inv_node *e = ids_uuid_parse(id, PQgetvalue(res, i, 0)) ? inv_get(inv, id, false)
										     : NULL;
			if (e)
				e->state = inv_state_parse(PQgetvalue(res, i, 1));
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
			if (inventory_refresh(inv, &err))
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
	struct nova_err rerr;
	/* The fleet first, so its heartbeats need no read each; without the
	 * database now, they are read one by one until the next refresh. */
	if (inventory_refresh(inv, &rerr))
		nova_log_kv(NOVA_LOG_WARN, "inventory", "reading the fleet failed", "error",
			    rerr.message, NULL);
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
	for (size_t i = 0; i < inv->n_nodes; i++) {
		free(inv->nodes[i].capacity);
		json_decref(inv->nodes[i].replicas);
	}
	free(inv->nodes);
	free(inv->index);
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
	for (size_t i = 0; out && i < inv->n_nodes; i++) {
		size_t j;
		json_t *r;
		json_array_foreach(inv->nodes[i].replicas, j, r) {
			json_t *load = json_object_get(r, "load");
			const char *id = json_string_value(json_object_get(r, "replica_id"));
			if (id && load)
				json_object_set_new(out, id, json_deep_copy(load));
		}
	}
	pthread_mutex_unlock(&inv->lock);
	return out;
}
