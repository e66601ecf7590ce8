#include "inventory/inventory.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/hex.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/secret.h"
#include "core/textbuf.h"
#include "deployments/deployment.h"
#include "inventory/inventory_int.h"
#include "pools/pool.h"

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
 * node, before every node got in). docs/PERFORMANCE.md has the numbers.
 *
 * Under a heartbeat budget the TTL is at least the interval told
 * (inv_token_ttl_ms): reading 1,000,000 rows every 5 s took more of the
 * database than the heartbeats it served (the refresh's statements timed
 * out, every heartbeat then read its own node, and nothing was flushed),
 * so a fleet told 100 s is read every 50 s, about as many rows a second as
 * the budget lets heartbeats write, and a revoked token stops working
 * within one told interval there (10 s below 100,000 nodes at the
 * default budget, as before). */
#define INV_TOKEN_TTL_MS 10000
/* The refresh is a background read of the whole fleet, not a request: its
 * statements may take longer than the requests' deadline (a FETCH that
 * first builds a join of 1,000,000 rows). Not much longer: the flusher
 * waits for it, and on a paused database it waits the whole deadline. */
#define INV_REFRESH_DEADLINE_MS 10000
/* Rows per FETCH when the whole fleet is read (each batch is parsed
 * outside the lock and applied under it in well under a millisecond). */
#define INV_REFRESH_BATCH 5000
/* Walks over the whole table (the flush's, the refresh's removals) give
 * the lock up after this many nodes (2 MiB of entries), so a fleet of
 * 1,000,000 (128 MB of entries) does not hold every heartbeat for a whole
 * walk every flush. What moves meanwhile (a node forgotten, its place
 * taken by the last one) is at worst seen by the next walk. */
#define INV_WALK_CHUNK 16384
/* At most this many heartbeats in one flush's statement (about 0.1 s of
 * the database's time); the rest stay pending and the flusher goes again
 * at once. Unbounded, the backlog of a 10 s fleet read at 1,000,000 nodes
 * (100,000 beats) was one statement past the 2 s deadline: it failed, gave
 * everything back, and the next, larger still, failed too. */
#define INV_FLUSH_MAX_ROWS 25000

/* A node's state as the database has it, in pools' spelling (a byte in
 * struct inv_node). */
static uint8_t inv_state_parse(const char *s)
{
	enum pool_node_state st = POOL_NODE_PROVISIONING; /* the table's CHECK allows no other */
	(void)pool_node_state_parse(&st, s);
	return (uint8_t)st;
}

/* One node, 160 bytes: the id, token hash and address as bytes, not text,
 * since a novad keeps every node of the fleet (100,000 nodes: 16 MiB of nodes and
 * a 1 MiB index, where 176-byte slots of text took 44 MiB). */
struct inv_node {
	unsigned char id[16];
	unsigned char token_hash[32];   /* SHA-256 of the node's token */
	uint8_t state;                  /* enum pool_node_state */
	struct inv_addr addr;           /* where its endpoints may point (inventory_int.h) */
	/* Flags in one byte, so told_ms fits before the next 8-byte field. */
	bool has_hash : 1;              /* false: revoked, or not read yet */
	bool dirty : 1;
	bool replicas_dirty : 1;
	bool replicas_changed : 1;      /* a replica's state or endpoint changed */
	/* The interval the last answer told it (0: none yet): written with its
	 * heartbeat (sql/0023), and what the sweep judges it by. */
	uint32_t told_ms;
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
	struct inv_logs *logs;          /* its log server, once reported (owned) */
	/* Shared load (sql/0024): replicas is the newest report this novad
	 * knows of, taken here or read from node_loads (another novad took
	 * it), and loads_seq its heartbeat's sequence (-1: none); loads_sum
	 * is the checksum of its text as its taker dumped it, and db_sum what
	 * node_loads holds (or will once this novad's flush in flight lands;
	 * 0: unknown). A report whose sum differs from db_sum waits in
	 * loads_text (owned) for the flush; one the table holds already is
	 * not written again. */
	long long loads_seq;
	uint64_t loads_sum, db_sum;
	char *loads_text;
};

/* Where a node's sidecar serves its engines' logs, and the key this novad
 * minted for it (sidecar/logs.h): in memory only, never logged. A novad
 * that restarts mints a new one at the node's next heartbeat. Rejected:
 * storing keys (hashed) in the database for every novad to use, which
 * could not work (a hash cannot be presented) and a key in the clear in
 * the database would be a credential at rest. */
struct inv_logs {
	char url[201];
	char key[INVENTORY_LOGS_KEY_HEX + 1];
	char key_id[INVENTORY_LOGS_KEY_ID_HEX + 1];
};

static void inv_logs_free(struct inv_logs *l)
{
	if (!l)
		return;
	explicit_bzero(l, sizeof(*l));
	free(l);
}

static bool inv_json_plain(const char *s);

/* Where the reader of node_loads is (inventory_loads_read): a pass reads
 * the rows after (xid, node) in that order, a page at a time; the next
 * pass starts at next_xid, the oldest transaction still running when the
 * pass's first page was read (0 before it). */
struct inv_loads_cursor {
	unsigned long long xid, next_xid;
	unsigned char node[16];
};

struct inventory {
	struct db_pool *db;
	struct inventory_config cfg;
	bool advertise_plain; /* cfg.advertise_url goes into JSON as it is */
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
	/* As of the last flush, among the nodes this novad takes heartbeats
	 * from: the wall clock at which the first of them turns silent (a
	 * ready node past missed_intervals of its told interval, an unhealthy
	 * one past its failure bound; 0: none), so the sweeper wakes then,
	 * not only on its period; and the shortest interval told to a ready
	 * one (0: none), whose quarter is that period. */
	atomic_llong next_silent_ms;
	atomic_uint shortest_told_ms;
	atomic_bool flush_more;         /* the last flush left pending rows behind */
	void (*on_health)(void *ctx);   /* the sweep or a flush changed what is routable */
	void *health_ctx;
	/* This novad as a recorder of heartbeats (sql/0009): its id, and
	 * whether a flush has written its row yet (no sweep judges before). */
	char recorder_id[IDS_UUID_LEN];
	char recorder_host[128];
	atomic_bool recorded;
	/* How the last flush went (database_ok), and when one last worked
	 * (CLOCK_MONOTONIC ms, 0: never): the heartbeat path reads the
	 * database only while it works, and /readyz tells. */
	atomic_bool database_ok;
	atomic_llong flush_ok_ms;
	char database_error[160];       /* under lock */
	atomic_ullong from_memory;      /* heartbeats taken on a stale cached hash */
	struct metrics_hist flush_seconds; /* every flush, written or not */
	atomic_ullong rows_flushed, flushes_failed;
	/* Shared load (sql/0024): rows of node_loads this novad's flushes
	 * sent, rows it read of the others', and those that were newer than
	 * what it held; the reader's cursor (inventory_loads_read). */
	atomic_ullong loads_written, loads_read, loads_merged;
	struct inv_loads_cursor cursor;
	bool loads_read_failing;
	/* The brake, as of the last sweep (under lock): pool id -> {"pool",
	 * "pool_id", "silent", "nodes", "since"}. */
	json_t *brakes;
	unsigned long long brake_engagements;
};

void inventory_config_defaults(struct inventory_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg)); /* every field, those added later too */
	cfg->interval_ms = 2000;
	cfg->max_heartbeats_per_second = INVENTORY_MAX_HEARTBEATS_PER_SECOND_DEFAULT;
	cfg->missed_intervals = 3;
	cfg->failed_after_ms = 30000;
	cfg->flush_ms = 500;
	cfg->blind_after_ms = 0;
	cfg->departed_after_ms = 0;
	cfg->brake_share = 0.5;
	cfg->brake_min_nodes = 3;
}

unsigned inventory_interval_for(unsigned interval_ms, unsigned budget, size_t nodes)
{
	unsigned long long need, step = 1;
	if (!budget)
		return interval_ms;
	need = ((unsigned long long)nodes * 1000ull + budget - 1) / budget;
	/* Two significant digits: 10,000 nodes at 3,000/s is 3,400 ms, not
	 * 3,334, so the interval does not change with every node added, and
	 * the rate stays at 90-100% of the budget. */
	while (need / step >= 100)
		step *= 10;
	need = (need + step - 1) / step * step;
	if (need > INVENTORY_INTERVAL_MAX_MS)
		need = INVENTORY_INTERVAL_MAX_MS; /* past 600,000 nodes per 1/s of budget: exceeded */
	return need > interval_ms ? (unsigned)need : interval_ms;
}

/* A node's unhealthy and failed bounds at the interval it was told. */
static long long inv_unhealthy_after_ms(const struct inventory_config *cfg, unsigned told)
{
	return (long long)cfg->missed_intervals * told;
}

static long long inv_failed_after_ms(const struct inventory_config *cfg, unsigned told)
{
	long long own = (long long)INVENTORY_FAILED_INTERVALS * told;
	return own > cfg->failed_after_ms ? own : cfg->failed_after_ms;
}

/* The bounds that default to 0 get their values from the others. Blind
 * after half the unhealthy threshold: a database blip shorter than that
 * leaves the stored heartbeats at most half a threshold (plus a flush
 * period) behind, which cannot make a beating node look silent; a longer
 * one starts a new run, and so a fresh grace. */
static void inv_config_resolve(struct inventory_config *cfg)
{
	unsigned silent = cfg->interval_ms * cfg->missed_intervals;
	if (!cfg->blind_after_ms) {
		cfg->blind_after_ms = silent / 2;
		if (cfg->blind_after_ms < 2 * cfg->flush_ms)
			cfg->blind_after_ms = 2 * cfg->flush_ms;
	}
	if (!cfg->departed_after_ms) {
		cfg->departed_after_ms = 2 * cfg->blind_after_ms;
		if (cfg->departed_after_ms < silent)
			cfg->departed_after_ms = silent;
	}
	if (!cfg->brake_min_nodes)
		cfg->brake_min_nodes = 3;
	if (!(cfg->brake_share > 0 && cfg->brake_share <= 1))
		cfg->brake_share = 0.5;
}

static long long inv_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long inv_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
	inv_config_resolve(&inv->cfg);
	inv->advertise_plain = inv_json_plain(inv->cfg.advertise_url);
	if (!(inv->brakes = json_object())) {
		free(inv->nodes);
		free(inv->index);
		free(inv);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	ids_uuid_generate(inv->recorder_id);
	{
		char host[64] = "";
		gethostname(host, sizeof(host) - 1);
		snprintf(inv->recorder_host, sizeof(inv->recorder_host), "%s pid %ld", host, (long)getpid());
	}
	atomic_init(&inv->recorded, false);
	atomic_init(&inv->database_ok, true);
	atomic_init(&inv->flush_ok_ms, 0);
	atomic_init(&inv->from_memory, 0);
	pthread_mutex_init(&inv->lock, NULL);
	atomic_init(&inv->stop, false);
	atomic_init(&inv->loads_gen, 0);
	atomic_init(&inv->next_silent_ms, 0);
	atomic_init(&inv->shortest_told_ms, 0);
	atomic_init(&inv->flush_more, false);
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
	e->loads_seq = -1;
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
	free(inv->nodes[pos].loads_text);
	json_decref(inv->nodes[pos].replicas);
	inv_logs_free(inv->nodes[pos].logs);
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
	struct inv_addr addr;
};

/* Columns: id, token hash (hex or ''), state, last_seq (or -1), the
 * address the provider recorded (nodes.endpoint, or ''). */
static bool inv_row_parse(struct inv_node_row *row, const PGresult *res, int i)
{
	if (!ids_uuid_parse(row->id, PQgetvalue(res, i, 0)))
		return false;
	row->has_hash = secret_sha256_from_hex(row->token_hash, PQgetvalue(res, i, 1));
	row->state = inv_state_parse(PQgetvalue(res, i, 2));
	row->last_seq = atoll(PQgetvalue(res, i, 3));
	inv_addr_from_provider(&row->addr, PQgetvalue(res, i, 4));
	return true;
}

/* Copy a database row into the cached entry (caller holds the lock). */
static void inv_node_apply(struct inv_node *e, const struct inv_node_row *row, long long now_ms)
{
	memcpy(e->token_hash, row->token_hash, sizeof(e->token_hash));
	e->has_hash = row->has_hash;
	e->state = row->state;
	e->addr = row->addr;
	if (row->last_seq > e->last_seq) /* another novad may have taken heartbeats */
		e->last_seq = row->last_seq;
	e->token_checked_ms = now_ms;
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
	if ((rc = db_conn_set_deadline(c, INV_REFRESH_DEADLINE_MS, err)) == 0 &&
	    (rc = db_tx_begin(c, err)) == 0)
		rc = db_exec(NULL, c,
			     "DECLARE inv_fleet NO SCROLL CURSOR FOR SELECT n.id::text, n.token_hash, "
			     "n.state, coalesce(h.last_seq, -1), coalesce(n.endpoint, '') FROM nodes n "
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
	for (size_t k = inv->n_nodes, walked = 0; k-- > 0; walked++) {
		if (walked % INV_WALK_CHUNK == INV_WALK_CHUNK - 1) {
			pthread_mutex_unlock(&inv->lock);
			pthread_mutex_lock(&inv->lock);
			if (k >= inv->n_nodes) { /* nodes went meanwhile: go on from the end */
				if (!inv->n_nodes)
					break;
				k = inv->n_nodes - 1;
			}
		}
		if (inv->nodes[k].token_checked_ms < started)
			inv_remove(inv, k);
	}
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

/* Under the lock: the interval to tell now. The whole fleet's count, not
 * the nodes that beat to this novad: every novad reads every node, so
 * each tells the same and all of them together stay under the budget,
 * however the sidecars spread over them. */
static unsigned inv_told_locked(const struct inventory *inv)
{
	return inventory_interval_for(inv->cfg.interval_ms, inv->cfg.max_heartbeats_per_second,
				      inv->n_nodes);
}

/* Under the lock (reading n_nodes, which the heartbeat path holds it for
 * anyway): how long a cached token hash is trusted, and twice the refresh
 * period. */
static long long inv_token_ttl_ms_locked(const struct inventory *inv)
{
	unsigned told = inv_told_locked(inv);
	return told > INV_TOKEN_TTL_MS ? told : INV_TOKEN_TTL_MS;
}

unsigned inventory_interval_ms(struct inventory *inv)
{
	pthread_mutex_lock(&inv->lock);
	unsigned told = inv_told_locked(inv);
	pthread_mutex_unlock(&inv->lock);
	return told;
}

/* Read the node that holds this token hash, if any (without the table
 * lock): the one lookup every token the table cannot vouch for costs,
 * through sql/0012's index, whatever node id it came with. */
static int inv_node_read_by_token(struct inv_node_row *row, struct inventory *inv,
				  const unsigned char presented[32], struct nova_err *err)
{
	char hash[SECRET_HEX_SHA256_LEN];
	const char *params[1] = {hash};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	hex_encode(hash, presented, 32);
	if ((rc = db_conn_acquire(&c, inv->db, err)))
		return rc;
	rc = db_exec_one(&res, c,
			 "SELECT n.id::text, coalesce(n.token_hash, ''), n.state, coalesce(h.last_seq, -1), "
			 "coalesce(n.endpoint, '') FROM nodes n "
			 "LEFT JOIN node_heartbeats h ON h.node_id = n.id WHERE n.token_hash = $1",
			 1, params, err);
	db_conn_release(inv->db, c);
	if (rc)
		return rc; /* NOVA_ENOTFOUND: nobody's token */
	if (!inv_row_parse(row, res, 0))
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "the database gave a node id that is not a uuid");
	PQclear(res);
	return rc;
}

/* One answer for every refusal: an unknown node id, a malformed one, a
 * revoked token, another node's token and a made-up one all read alike, so
 * the answer tells nothing of which node ids exist. */
static int inv_refused(struct nova_err *err)
{
	return nova_err_set(err, NOVA_EUNAUTH, "", "invalid node id or node token");
}

/* --- heartbeats ---------------------------------------------------------------- */

/* A replica's load hints, served as they came in /v1/routes: numbers only,
 * at most INV_LOAD_MAX of them; the known ones in their range (queue_depth,
 * running, tokens_per_second, ttft_ms, ttft_p95_ms, inflight_tokens,
 * restarts: >= 0;
 * kv_cache_usage: 0 to 1). Rejected: refusing unknown names as the rest of the body does: a
 * sidecar newer than its novad, with a hint this one does not know, would
 * lose its whole heartbeat (and its node) for a hint; an unknown number is
 * passed through to routers, which ignore what they do not know. */
#define INV_LOAD_MAX 16
static int inv_load_check(const json_t *load, const char *path, struct nova_err *err)
{
	static const struct {
		const char *name;
		double max;
		bool integer;
	} known[] = {
		{"queue_depth", 0, false},     {"running", 0, false}, {"kv_cache_usage", 1, false},
		{"tokens_per_second", 0, false}, {"ttft_ms", 0, false}, {"restarts", 0, true},
		{"inflight_tokens", 0, false}, {"ttft_p95_ms", 0, false},
	};
	char f[NOVA_ERR_FIELD_MAX];
	const char *k;
	json_t *v;
	if (json_object_size(load) > INV_LOAD_MAX) {
		snprintf(f, sizeof(f), "%s.load", path);
		return nova_err_set(err, NOVA_EINVAL, f, "%s has more than %d entries", f, INV_LOAD_MAX);
	}
	json_object_foreach((json_t *)load, k, v) {
		snprintf(f, sizeof(f), "%s.load.%s", path, k);
		if (!*k || strlen(k) > 63)
			return nova_err_set(err, NOVA_EINVAL, f, "%s.load keys must be 1 to 63 characters",
					    path);
		if (!json_is_number(v) || json_number_value(v) < 0)
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be a number of at least 0", f);
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			if (strcmp(k, known[i].name) != 0)
				continue;
			if (known[i].integer && !json_is_integer(v))
				return nova_err_set(err, NOVA_EINVAL, f, "%s must be an integer", f);
			if (known[i].max > 0 && json_number_value(v) > known[i].max)
				return nova_err_set(err, NOVA_EINVAL, f, "%s must be between 0 and %g", f,
						    known[i].max);
		}
	}
	return 0;
}

/* The LoRA adapters a replica's engine has loaded (as its sidecar read
 * them from the engine's GET /v1/models), kept with the load hints and
 * shown with them in /v1/routes. Bounded like them: at most
 * INVENTORY_ADAPTERS_LOADED_MAX names of 1 to INVENTORY_ADAPTER_NAME_MAX
 * bytes (a model spec's adapter names are at most that long). */
static int inv_adapters_check(const json_t *list, const char *path, struct nova_err *err)
{
	char f[NOVA_ERR_FIELD_MAX];
	size_t i;
	json_t *v;
	if (json_array_size(list) > INVENTORY_ADAPTERS_LOADED_MAX) {
		snprintf(f, sizeof(f), "%s.adapters_loaded", path);
		return nova_err_set(err, NOVA_EINVAL, f, "%s has more than %d names", f,
				    INVENTORY_ADAPTERS_LOADED_MAX);
	}
	json_array_foreach(list, i, v) {
		if (json_is_string(v) && json_string_length(v) > 0 &&
		    json_string_length(v) <= INVENTORY_ADAPTER_NAME_MAX &&
		    strlen(json_string_value(v)) == json_string_length(v))
			continue;
		snprintf(f, sizeof(f), "%s.adapters_loaded[%zu]", path, i);
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be a string of 1 to %d bytes", f,
				    INVENTORY_ADAPTER_NAME_MAX);
	}
	return 0;
}

/* A replica report's "exit": {"at_ms", "code" | "signal", "restarts"}. */
static int inv_exit_check(const json_t *x, const char *path, struct nova_err *err)
{
	char p[48];
	long long at = 0, code = -1, sig = 0, restarts = 0;
	bool has_code = false, has_sig = false;
	const struct json_field xf[] = {
		{.name = "at_ms", .kind = JSON_KIND_INT, .required = true, .out = &at, .min = 1,
		 .max = 9000000000000000000LL},
		{.name = "code", .kind = JSON_KIND_INT, .out = &code, .present = &has_code, .min = 0, .max = 255},
		{.name = "signal", .kind = JSON_KIND_INT, .out = &sig, .present = &has_sig, .min = 1, .max = 64},
		{.name = "restarts", .kind = JSON_KIND_INT, .out = &restarts, .min = 0, .max = 1000000000},
	};
	int rc;
	snprintf(p, sizeof(p), "%s.exit", path);
	if ((rc = json_decode_object(x, xf, 4, p, err)))
		return rc;
	if (has_code == has_sig)
		return nova_err_set(err, NOVA_EINVAL, p, "%s needs either code or signal", p);
	return 0;
}

/* "logs": {"url": the sidecar's log server, "keys": [ids of the log keys
 * it holds]} (sidecar/logs.h). */
static int inv_logs_check(const json_t *logs, struct nova_err *err)
{
	const char *url = NULL;
	json_t *keys = NULL, *k;
	size_t i;
	const struct json_field lf[] = {
		{.name = "url", .kind = JSON_KIND_STRING, .required = true, .out = &url, .max_len = 200},
		{.name = "keys", .kind = JSON_KIND_ARRAY, .out = &keys},
	};
	int rc = json_decode_object(logs, lf, 2, "logs", err);
	if (rc)
		return rc;
	if (json_array_size(keys) > INVENTORY_LOGS_KEYS_MAX)
		return nova_err_set(err, NOVA_EINVAL, "logs.keys", "logs.keys has more than %d ids",
				    INVENTORY_LOGS_KEYS_MAX);
	json_array_foreach(keys, i, k) {
		const char *v = json_string_value(k);
		bool ok = v && strlen(v) == INVENTORY_LOGS_KEY_ID_HEX;
		for (size_t j = 0; ok && v[j]; j++)
			ok = (v[j] >= '0' && v[j] <= '9') || (v[j] >= 'a' && v[j] <= 'f');
		if (!ok) {
			char f[32];
			snprintf(f, sizeof(f), "logs.keys[%zu]", i);
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be %d hex digits", f,
					    INVENTORY_LOGS_KEY_ID_HEX);
		}
	}
	return 0;
}

int inv_heartbeat_body_check(long long *seq, json_t **capacity, json_t **replicas,
			     const char **generation, json_t **logs, const json_t *body,
			     struct nova_err *err)
{
	const struct json_field fields[] = {
		{.name = "seq", .kind = JSON_KIND_INT, .required = true, .out = seq, .min = 0,
		 .max = 9000000000000000000LL},
		{.name = "capacity", .kind = JSON_KIND_OBJECT, .out = capacity},
		{.name = "replicas", .kind = JSON_KIND_ARRAY, .out = replicas},
		{.name = "assignment_generation", .kind = JSON_KIND_STRING, .out = generation,
		 .max_len = 64, .allow_empty = true},
		{.name = "logs", .kind = JSON_KIND_OBJECT, .out = logs},
	};
	size_t i;
	json_t *r;
	*logs = NULL;
	int rc = json_decode_object(body, fields, 5, "", err);
	if (rc)
		return rc;
	if (*logs && (rc = inv_logs_check(*logs, err)))
		return rc;
	if (*replicas && json_array_size(*replicas) > 256)
		return nova_err_set(err, NOVA_EINVAL, "replicas", "at most 256 replicas per node");
	json_array_foreach(*replicas, i, r) {
		char path[32];
		const char *id = NULL, *state = NULL, *endpoint = NULL;
		json_t *load = NULL, *adapters = NULL, *exit = NULL;
		long long stage = -1;
		const struct json_field rf[] = {
			{.name = "replica_id", .kind = JSON_KIND_STRING, .required = true, .out = &id,
			 .max_len = 36},
			{.name = "state", .kind = JSON_KIND_STRING, .required = true, .out = &state,
			 .max_len = 16},
			{.name = "endpoint", .kind = JSON_KIND_STRING, .out = &endpoint, .max_len = 512},
			{.name = "load", .kind = JSON_KIND_OBJECT, .out = &load},
			{.name = "stage", .kind = JSON_KIND_INT, .out = &stage, .min = 0, .max = 15},
			{.name = "adapters_loaded", .kind = JSON_KIND_ARRAY, .out = &adapters},
			{.name = "exit", .kind = JSON_KIND_OBJECT, .out = &exit},
		};
		snprintf(path, sizeof(path), "replicas[%zu]", i);
		if ((rc = json_decode_object(r, rf, 7, path, err)))
			return rc;
		if (exit && (rc = inv_exit_check(exit, path, err)))
			return rc;
		if (!ids_is_uuid(id)) {
			char f[NOVA_ERR_FIELD_MAX];
			snprintf(f, sizeof(f), "%s.replica_id", path);
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be a uuid", f);
		}
		enum replica_state rs;
		if (deployment_replica_state_parse(&rs, state) != 0 ||
		    (rs != REPLICA_STARTING && rs != REPLICA_READY && rs != REPLICA_FAILED)) {
			char f[NOVA_ERR_FIELD_MAX];
			snprintf(f, sizeof(f), "%s.state", path);
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be starting, ready or failed", f);
		}
		if (load && (rc = inv_load_check(load, path, err)))
			return rc;
		if (adapters && (rc = inv_adapters_check(adapters, path, err)))
			return rc;
	}
	return 0;
}

static json_t *inv_answer(struct inventory *inv, bool accepted, const char *reason, unsigned told)
{
	json_t *a = json_pack("{s:b, s:I}", "accepted", accepted, "interval_ms", (json_int_t)told);
	if (a && reason)
		json_object_set_new(a, "reason", json_string(reason));
	if (a && inv->cfg.advertise_url[0])
		json_object_set_new(a, "gateway_url", json_string(inv->cfg.advertise_url));
	return a;
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

/* The replica reports to keep, as a new reference: replicas itself when
 * every endpoint is taken, else a copy in which each report whose endpoint
 * is refused (inventory_int.h) says only "starting", without endpoint or
 * load: its replica is not routed (the flush keeps the stored endpoint
 * but the state is no longer ready), and an endpoint routed before does
 * not stay routed on a report that says the engine moved. *refused gets
 * {"replica_id", "stage", "field", "reason"} for each (NULL: none). */
static json_t *inv_endpoints_screen(json_t **refused, const json_t *replicas,
				    const struct inv_addr *addr)
{
	json_t *kept = NULL, *r;
	size_t i;
	*refused = NULL;
	json_array_foreach(replicas, i, r) {
		const char *ep = json_string_value(json_object_get(r, "endpoint"));
		const char *why = ep ? inv_endpoint_refusal(ep, addr) : NULL;
		if (!why)
			continue;
		if (!kept) {
			if (!(kept = json_deep_copy(replicas)) || !(*refused = json_array())) {
				json_decref(kept);
				return NULL;
			}
		}
		char field[48];
		json_t *stage = json_object_get(r, "stage");
		snprintf(field, sizeof(field), "replicas[%zu].endpoint", i);
		json_t *x = json_pack("{s:O, s:s}", "replica_id", json_object_get(r, "replica_id"),
				      "state", deployment_replica_state_name(REPLICA_STARTING));
		if (x && stage)
			json_object_set(x, "stage", stage);
		json_array_set_new(kept, i, x ? x : json_null());
		json_t *why_j = json_pack("{s:O, s:I, s:s, s:s}", "replica_id",
					  json_object_get(r, "replica_id"), "stage",
					  (json_int_t)(stage ? json_integer_value(stage) : 0), "field", field,
					  "reason", why);
		if (why_j)
			json_array_append_new(*refused, why_j);
	}
	return kept ? kept : json_incref((json_t *)replicas);
}

/* At most one log line a second for refused endpoints, whoever sends
 * them: a node that keeps reporting one would write a line per beat. */
static void inv_log_refused(const char *node, const json_t *refused)
{
	static atomic_llong last_ms;
	long long now = inv_mono_ms(), was = atomic_load(&last_ms);
	if (now - was < 1000 || !atomic_compare_exchange_strong(&last_ms, &was, now))
		return;
	json_t *x = json_array_get(refused, 0);
	char n[16];
	snprintf(n, sizeof(n), "%zu", json_array_size(refused));
	/* The endpoint itself is not logged: it is the sender's text (it may
	 * carry user information or control characters). */
	nova_log_kv(NOVA_LOG_WARN, "inventory", "replica endpoint refused", "node", node, "replica",
		    json_string_value(json_object_get(x, "replica_id")), "field",
		    json_string_value(json_object_get(x, "field")), "reason",
		    json_string_value(json_object_get(x, "reason")), "refused", n, NULL);
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

/* Under the lock, for an accepted heartbeat: where the node's log server
 * is (only an address the node's endpoints may use: a node token must not
 * point novad's requests elsewhere), and into send_key this novad's key
 * for it when the sidecar does not hold it yet. */
static void inv_logs_take(char send_key[INVENTORY_LOGS_KEY_HEX + 1], struct inv_node *e,
			  const json_t *logs, const char *id_text)
{
	const char *url = json_string_value(json_object_get(logs, "url"));
	const char *why = inv_endpoint_refusal(url, &e->addr);
	size_t i;
	json_t *k;
	if (why) {
		if (e->logs)
			nova_log_kv(NOVA_LOG_WARN, "inventory", "log server refused", "node", id_text,
				    "reason", why, NULL);
		inv_logs_free(e->logs);
		e->logs = NULL;
		return;
	}
	if (!e->logs) {
		unsigned char raw[32];
		if (!(e->logs = calloc(1, sizeof(*e->logs))))
			return;
		if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
			inv_logs_free(e->logs);
			e->logs = NULL;
			return;
		}
		hex_encode(e->logs->key, raw, sizeof(raw));
		explicit_bzero(raw, sizeof(raw));
		char full[SECRET_HEX_SHA256_LEN];
		secret_sha256_hex(full, e->logs->key, strlen(e->logs->key));
		memcpy(e->logs->key_id, full, INVENTORY_LOGS_KEY_ID_HEX);
		e->logs->key_id[INVENTORY_LOGS_KEY_ID_HEX] = '\0';
	}
	snprintf(e->logs->url, sizeof(e->logs->url), "%s", url);
	json_array_foreach(json_object_get(logs, "keys"), i, k)
		if (!strcmp(json_string_value(k), e->logs->key_id))
			return;
	memcpy(send_key, e->logs->key, INVENTORY_LOGS_KEY_HEX + 1);
}

int inventory_logs_access(struct inventory_logs_access *out, struct inventory *inv,
			  const char *node_id, struct nova_err *err)
{
	unsigned char id[16];
	struct inv_node *e;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	if (!ids_uuid_parse(id, node_id))
		return nova_err_set(err, NOVA_ENOTFOUND, "node", "no such node");
	pthread_mutex_lock(&inv->lock);
	if (!(e = inv_get(inv, id, false)) || !e->logs || !e->logs->key[0]) {
		rc = nova_err_set(err, NOVA_EUNAVAIL, "",
				  "this novad has not heard the node's sidecar offer its logs");
		nova_err_set_hint(err, "the node's sidecar reports its log server with each heartbeat "
				       "to the novad it beats to: ask that novad, or wait a heartbeat");
	} else {
		snprintf(out->url, sizeof(out->url), "%s", e->logs->url);
		memcpy(out->key, e->logs->key, sizeof(out->key));
	}
	pthread_mutex_unlock(&inv->lock);
	return rc;
}

/* Under the lock: the report just kept (text owned, taken) is the node's
 * newest. It waits for the flush unless node_loads holds the same already
 * (the last flush wrote it, or another novad's row says so). */
static void inv_loads_take(struct inv_node *e, long long seq, char *text)
{
	e->loads_seq = seq;
	e->loads_sum = inv_text_sum(text);
	free(e->loads_text);
	e->loads_text = NULL;
	if (e->loads_sum != e->db_sum)
		e->loads_text = text;
	else
		free(text);
}

int inventory_heartbeat(char **answer, struct inventory *inv, const char *node_id,
			const char *token, const json_t *body, struct nova_err *err)
{
	long long seq = 0;
	json_t *capacity = NULL, *replicas = NULL, *logs = NULL;
	const char *generation = NULL;
	struct inv_node *e;
	unsigned char id[16], presented[32];
	char send_key[INVENTORY_LOGS_KEY_HEX + 1] = "";
	char reason[128], digest[64], id_text[IDS_UUID_LEN];
	int rc;
	*answer = NULL;
	if (!token || !*token)
		return nova_err_set(err, NOVA_EUNAUTH, "", "a node token is required");
	/* The token first, then the id. A token the table holds for this node,
	 * read within the TTL, is taken from memory. Any other (a node new
	 * since the last read of the fleet, a rotated token, a stale entry, a
	 * made-up token, another node's, an id that is no node's or no uuid
	 * at all) costs one lookup by its hash (sql/0012's index) and is
	 * refused alike, 401, unless that lookup finds this very node. So an
	 * unknown node id and a wrong token on a known node take the same path
	 * and the same time, and node ids cannot be enumerated without a
	 * token. Rejected: reading the node by id first (the old way: 404 for
	 * an unknown id at the cost of a read, 401 or 403 for a known one from
	 * memory, so both the status and the time told which ids exist), and
	 * a per-node limit of one re-read a second for wrong tokens (an
	 * unknown id had no entry to limit, so it differed in time again). */
	bool id_ok = ids_uuid_parse(id, node_id);
	if (id_ok)
		ids_uuid_format(id_text, id);
	secret_sha256(presented, token, strlen(token));

	bool db_ok = atomic_load(&inv->database_ok);
	pthread_mutex_lock(&inv->lock);
	e = id_ok ? inv_get(inv, id, false) : NULL;
	bool match = e && e->has_hash && secret_equal(presented, e->token_hash, 32);
	bool fresh = e && inv_mono_ms() - e->token_checked_ms <= inv_token_ttl_ms_locked(inv);
	/* While the database is away, a node the table knows is taken on its
	 * cached hash however old (a revocation waits for the database, as it
	 * waits for the refresh anyway), and no request waits for a read that
	 * would time out: the fleet keeps beating and keeps its assignments.
	 * Any other token cannot be checked now, whatever the id: 503 alike. */
	if (match && !fresh && !db_ok)
		atomic_fetch_add(&inv->from_memory, 1);
	else if (!match && !db_ok) {
		pthread_mutex_unlock(&inv->lock);
		nova_err_set(err, NOVA_EUNAVAIL, "",
			     "the database is unavailable; this node token cannot be checked now");
		nova_err_set_hint(err, "heartbeat again; it is taken once the database is back");
		return NOVA_EUNAVAIL;
	} else if (!match || !fresh) {
		/* Read without the lock, so the other nodes' heartbeats go on
		 * meanwhile, then find the entry again (the table may have grown
		 * and moved). Two requests of one node may both read; the second
		 * write is the same. A token that is no node's, or another
		 * node's, gets no entry, so made-up ids cost no memory. */
		struct inv_node_row row;
		pthread_mutex_unlock(&inv->lock);
		rc = inv_node_read_by_token(&row, inv, presented, err);
		if (rc == NOVA_ENOTFOUND || (rc == 0 && (!id_ok || !secret_equal(row.id, id, 16)))) {
			if (rc == NOVA_ENOTFOUND && match) {
				/* The cached hash is nobody's any more (revoked or
				 * rotated): forget it, so the table stops taking it. */
				pthread_mutex_lock(&inv->lock);
				if ((e = inv_get(inv, id, false)) && e->has_hash &&
				    secret_equal(presented, e->token_hash, 32))
					e->has_hash = false;
				pthread_mutex_unlock(&inv->lock);
			}
			return inv_refused(err);
		}
		if (rc) {
			if (rc != NOVA_EUNAVAIL || !match)
				return rc;
			/* The database went away just now: the cached hash serves. */
			pthread_mutex_lock(&inv->lock);
			if (!(e = inv_get(inv, id, false)) || !e->has_hash ||
			    !secret_equal(presented, e->token_hash, 32)) {
				pthread_mutex_unlock(&inv->lock);
				return rc;
			}
			atomic_fetch_add(&inv->from_memory, 1);
		} else {
			pthread_mutex_lock(&inv->lock);
			if (!(e = inv_get(inv, row.id, true))) {
				pthread_mutex_unlock(&inv->lock);
				return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
			}
			inv_node_apply(e, &row, inv_mono_ms());
		}
	}
	/* The body only once the token is the node's: a caller without one
	 * gets 401 whatever it sent (and whichever id). Checked without the
	 * lock (up to 256 replicas), then the entry is found again: the table
	 * may have moved, or the node been forgotten, meanwhile. */
	pthread_mutex_unlock(&inv->lock);
	if ((rc = inv_heartbeat_body_check(&seq, &capacity, &replicas, &generation, &logs, body, err)))
		return rc;
	/* The report's text for node_loads (sql/0024), dumped before the
	 * lock: a few microseconds a beat that every other heartbeat would
	 * otherwise wait for. Dumped again under the lock only in the rare
	 * beat with a refused endpoint, whose kept report differs. */
	char *loads_text = replicas ? json_dump_compact(replicas) : NULL;
	pthread_mutex_lock(&inv->lock);
	if (!(e = inv_get(inv, id, false)) || !e->has_hash || !secret_equal(presented, e->token_hash, 32)) {
		pthread_mutex_unlock(&inv->lock);
		free(loads_text);
		return inv_refused(err);
	}
	/* Every answer tells the interval, and the node is judged by the last
	 * one it was told (written with its next flush). */
	unsigned told = inv_told_locked(inv);
	e->told_ms = told;
	if (e->state == POOL_NODE_TERMINATING || e->state == POOL_NODE_TERMINATED ||
	    (e->state == POOL_NODE_FAILED && seq <= e->last_seq)) {
		snprintf(reason, sizeof(reason), "node is %s", pool_node_state_name(e->state));
		pthread_mutex_unlock(&inv->lock);
		free(loads_text);
		*answer = inv_answer_dump(inv_answer(inv, false, reason, told));
		return *answer ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	if (seq <= e->last_seq) {
		snprintf(reason, sizeof(reason), "stale sequence number %lld (last seen %lld)", seq,
			 e->last_seq);
		pthread_mutex_unlock(&inv->lock);
		free(loads_text);
		*answer = inv_answer_dump(inv_answer(inv, false, reason, told));
		return *answer ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	e->last_seq = seq;
	e->seen_unix_ms = inv_unix_ms();
	e->dirty = true;
	if (e->state == POOL_NODE_FAILED) {
		/* Recorded, not accepted: the reconciler makes a node failed for
		 * silence ready again when its agent beats after the failure (it
		 * was judged wrongly), and keeps its replicas where they are. */
		pthread_mutex_unlock(&inv->lock);
		free(loads_text);
		*answer = inv_answer_dump(inv_answer(inv, false, "node is failed", told));
		return *answer ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
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
	json_t *refused = NULL;
	if (replicas) {
		json_t *kept = inv_endpoints_screen(&refused, replicas, &e->addr);
		if (kept && kept != replicas) {
			free(loads_text);
			loads_text = json_dump_compact(kept);
		}
		if (!kept || !loads_text) {
			pthread_mutex_unlock(&inv->lock);
			json_decref(kept);
			json_decref(refused);
			free(loads_text);
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		}
		if (inv_replicas_changed(e->replicas, kept)) {
			/* The flusher writes now rather than at the end of
			 * flush_ms, and then tells on_health, so a replica that
			 * became ready is routed (or one that failed leaves)
			 * within milliseconds. */
			e->replicas_changed = true;
			notify_signal(inv->cfg.wake);
		}
		json_decref(e->replicas);
		e->replicas = kept;
		e->replicas_dirty = true;
		inv_loads_take(e, seq, loads_text);
		loads_text = NULL;
		atomic_fetch_add(&inv->loads_gen, 1);
	}
	if (logs)
		inv_logs_take(send_key, e, logs, id_text);
	const char *d = json_string_value(json_object_get(inv->digests, id_text));
	snprintf(digest, sizeof(digest), "%s", d ? d : "none");
	pthread_mutex_unlock(&inv->lock);
	if (refused)
		inv_log_refused(id_text, refused);
	/* The sidecar's view is current (nearly every heartbeat): the answer
	 * is written as it is, since building it with jansson cost more than
	 * the rest of the heartbeat. */
	if (!refused && !send_key[0] && generation && strcmp(generation, digest) == 0 &&
	    inv_json_plain(digest) && inv->advertise_plain) {
		/* The text below with a 63-byte digest and a 255-byte URL. */
		enum { ANSWER_MAX = 176 + 272 };
		if (!(*answer = malloc(ANSWER_MAX)))
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		snprintf(*answer, ANSWER_MAX,
			 "{\"accepted\":true,\"interval_ms\":%u,%s%s%s\"assignment_generation\":\"%s\"}",
			 told, inv->cfg.advertise_url[0] ? "\"gateway_url\":\"" : "",
			 inv->cfg.advertise_url, inv->cfg.advertise_url[0] ? "\"," : "", digest);
		return 0;
	}
	json_t *a = inv_answer(inv, true, NULL, told);
	if (!a) {
		json_decref(refused);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	json_object_set_new(a, "assignment_generation", json_string(digest));
	if (refused)
		json_object_set_new(a, "refused", refused);
	if (send_key[0]) {
		json_object_set_new(a, "logs_key", json_string(send_key));
		explicit_bzero(send_key, sizeof(send_key));
	}
	/* What to run, only when the sidecar's view is not the current one. */
	if (!generation || strcmp(generation, digest) != 0) {
		json_t *assignments;
		struct nova_err aerr;
		/* Without the database the sidecar keeps what it runs: the answer
		 * has no assignments, and it asks again with its next beat. */
		if (db_ok && (rc = deployment_node_assignments(&assignments, inv->db, id_text, &aerr)) == 0)
			json_object_set_new(a, "assignments", assignments);
		else if (db_ok && rc != NOVA_EUNAVAIL) {
			json_decref(a);
			*err = aerr;
			return rc;
		}
	}
	if (!(*answer = inv_answer_dump(a)))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	return 0;
}

/* --- the flusher ------------------------------------------------------------------- */

/* A flush's row of one node, kept until the write is known to have worked
 * so that a failed one gives everything back. */
struct inv_flush_row {
	unsigned char id[16];
	long long seq, at_ms;
	unsigned told_ms;
	char *cap;
	bool reported, changed;
	char *loads;            /* the report's text for node_loads, or NULL */
	long long loads_seq;
};

/* Give a failed flush's rows back to their nodes: dirty again, their
 * capacity and replica reports pending again (unless a newer heartbeat
 * brought its own meanwhile), so the next flush writes the latest of each.
 * Memory stays one entry per node whatever the outage's length. */
static void inv_flush_restore(struct inventory *inv, struct inv_flush_row *rows, size_t n,
			      size_t reported_from)
{
	pthread_mutex_lock(&inv->lock);
	for (size_t i = 0; i < n; i++) {
		struct inv_node *e = inv_get(inv, rows[i].id, false);
		if (!e)
			continue;
		e->dirty = true;
		if (rows[i].cap && !e->capacity) {
			e->capacity = rows[i].cap;
			rows[i].cap = NULL;
		}
		if (rows[i].reported && i >= reported_from)
			e->replicas_dirty = true;
		e->replicas_changed |= rows[i].changed;
		if (rows[i].loads) {
			/* Whether node_loads holds it is unknown now: sent again
			 * (a row it holds already is not rewritten). */
			e->db_sum = 0;
			if (!e->loads_text && e->loads_seq == rows[i].loads_seq) {
				e->loads_text = rows[i].loads;
				rows[i].loads = NULL;
			}
		}
	}
	pthread_mutex_unlock(&inv->lock);
}

/* The flush's record that this novad is recording (sql/0009): a data-
 * modifying WITH of the batch statement, or a statement of its own when
 * there is no batch. Its parameters are the last three of the statement:
 * recorder id, host, blind bound (ms). The database decides whether this
 * flush continues the run: a previous flush longer ago than the bound (the
 * database or this novad was away, or this is its first) starts a new one.
 * The database's clock throughout, so a flush that waited on a paused
 * database is judged by when it landed, not when it was sent. */
#define INV_RECORD_SQL(id, host, blind)                                                      \
	"INSERT INTO inventory_recorders AS r (id, host, recording_since, last_flush_at) "   \
	"VALUES (" id "::uuid, " host ", clock_timestamp(), clock_timestamp()) "            \
	"ON CONFLICT (id) DO UPDATE SET last_flush_at = clock_timestamp(), "                 \
	"recording_since = CASE WHEN r.last_flush_at < clock_timestamp() - " blind           \
	"::integer * interval '1 millisecond' THEN clock_timestamp() ELSE r.recording_since END"

/* The flush's write of the replica reports that changed (sql/0024): a
 * data-modifying WITH of the batch statement after `beat`, whose rows it
 * joins, so only a node whose heartbeat this flush wrote gets its report
 * written (the newest sequence wins, as for the heartbeat; and a node
 * deleted meanwhile has no row to refer to, its heartbeat row being locked
 * by `beat`). Parameters: the object of reports (id -> {"q": sequence,
 * "s": checksum, "r": reports}) and this novad's recorder id. */
#define INV_LOADS_SQL(reports, by)                                                           \
	"INSERT INTO node_loads AS l (node_id, seq, reports, sum, written_by, written_xid) "     \
	"SELECT b.node_id, (x.r ->> 'q')::bigint, x.r -> 'r', (x.r ->> 's')::bigint, " by        \
	"::uuid, pg_current_xact_id() FROM beat b, LATERAL (SELECT " reports                      \
	"::jsonb -> b.node_id::text AS r) x WHERE x.r IS NOT NULL "                               \
	"ON CONFLICT (node_id) DO UPDATE SET seq = excluded.seq, reports = excluded.reports, "   \
	"sum = excluded.sum, written_by = excluded.written_by, written_xid = excluded.written_xid " \
	"WHERE l.seq < excluded.seq"

static void inv_flush_outcome(struct inventory *inv, int rc, const struct nova_err *err)
{
	if (rc == 0) {
		atomic_store(&inv->flush_ok_ms, inv_mono_ms());
		atomic_store(&inv->recorded, true);
	}
	bool was_ok = atomic_exchange(&inv->database_ok, rc == 0);
	pthread_mutex_lock(&inv->lock);
	snprintf(inv->database_error, sizeof(inv->database_error), "%.159s", rc ? err->message : "");
	pthread_mutex_unlock(&inv->lock);
	if (was_ok && rc)
		nova_log_kv(NOVA_LOG_WARN, "inventory",
			    "the database is away: heartbeats are kept in memory until it is back",
			    "error", err->message, NULL);
	else if (!was_ok && !rc)
		nova_log_kv(NOVA_LOG_INFO, "inventory", "the database is back: heartbeats written", NULL);
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
	struct inv_flush_row *rows = NULL;
	size_t n_batch = 0, rows_cap = 0;
	struct textbuf batch = {0};
	json_t *reports = json_object();
	long long next_silent = 0, now_ms = inv_unix_ms();
	unsigned shortest = 0;
	bool changed = false, more = false;
	char blind[16];
	int rc = 0;
	long long started_us = inv_mono_us();
	snprintf(blind, sizeof(blind), "%u", inv->cfg.blind_after_ms);
	pthread_mutex_lock(&inv->lock);
	for (size_t i = 0; i < inv->n_nodes; i++) {
		if (i % INV_WALK_CHUNK == INV_WALK_CHUNK - 1) {
			pthread_mutex_unlock(&inv->lock);
			pthread_mutex_lock(&inv->lock);
			if (i >= inv->n_nodes)
				break;
		}
		struct inv_node *e = &inv->nodes[i];
		bool take = e->dirty && n_batch < INV_FLUSH_MAX_ROWS;
		more |= e->dirty && !take;
		/* What the statement below does to an unhealthy node, so the
		 * cached state stays true until the next refresh. */
		if (take && e->state == POOL_NODE_UNHEALTHY)
			e->state = POOL_NODE_READY;
		if (e->seen_unix_ms && (e->state == POOL_NODE_READY || e->state == POOL_NODE_UNHEALTHY)) {
			/* When it turns silent at its own interval: a deadline
			 * already past is the sweep's on its period. */
			unsigned told = e->told_ms ? e->told_ms : inv->cfg.interval_ms;
			long long at = e->seen_unix_ms + (e->state == POOL_NODE_READY
							  ? inv_unhealthy_after_ms(&inv->cfg, told)
							  : inv_failed_after_ms(&inv->cfg, told));
			if (at > now_ms && (!next_silent || at < next_silent))
				next_silent = at;
			if (e->state == POOL_NODE_READY && (!shortest || told < shortest))
				shortest = told;
		}
		if (!take)
			continue;
		if (n_batch == rows_cap) {
			size_t nc = rows_cap ? rows_cap * 2 : 1024;
			struct inv_flush_row *nr = realloc(rows, nc * sizeof(*rows));
			if (!nr)
				break; /* the rest stay dirty for the next flush */
			rows = nr;
			rows_cap = nc;
		}
		struct inv_flush_row *row = &rows[n_batch++];
		memcpy(row->id, e->id, sizeof(row->id));
		row->seq = e->last_seq;
		row->at_ms = e->seen_unix_ms;
		row->told_ms = e->told_ms ? e->told_ms : inv->cfg.interval_ms;
		row->cap = e->capacity; /* moved: the database keeps it from here */
		e->capacity = NULL;
		row->reported = e->replicas_dirty && e->replicas;
		row->changed = e->replicas_changed;
		/* In flight: what node_loads will hold, so a heartbeat taken
		 * meanwhile compares with it (a failed flush makes it unknown). */
		row->loads = e->loads_text;
		row->loads_seq = e->loads_seq;
		if (e->loads_text)
			e->db_sum = e->loads_sum;
		e->loads_text = NULL;
		if (row->reported) {
			char id[IDS_UUID_LEN];
			ids_uuid_format(id, e->id);
			json_object_set(reports, id, e->replicas);
		}
		changed |= e->replicas_changed;
		e->dirty = e->replicas_dirty = e->replicas_changed = false;
	}
	pthread_mutex_unlock(&inv->lock);
	atomic_store(&inv->next_silent_ms, next_silent);
	atomic_store(&inv->flush_more, more);
	atomic_store(&inv->shortest_told_ms, shortest);
	/* Four array literals (ids, sequences, times, told intervals), one
	 * object of the capacities that came (id -> capacity), and one of the
	 * replica reports that changed (id -> {"q": sequence, "s": checksum,
	 * "r": reports}; sql/0024). */
	struct textbuf seqs = {0}, ats = {0}, ivs = {0}, caps = {0}, loads = {0};
	size_t n_caps = 0, n_loads = 0;
	for (size_t i = 0; i < n_batch; i++) {
		char id[IDS_UUID_LEN], num[32];
		const char *sep = i ? "," : "{";
		int nn;
		ids_uuid_format(id, rows[i].id);
		textbuf_add(&batch, sep, 1);
		textbuf_add(&batch, id, IDS_UUID_LEN - 1);
		nn = snprintf(num, sizeof(num), "%s%lld", sep, rows[i].seq);
		textbuf_add(&seqs, num, (size_t)nn);
		nn = snprintf(num, sizeof(num), "%s%lld", sep, rows[i].at_ms);
		textbuf_add(&ats, num, (size_t)nn);
		nn = snprintf(num, sizeof(num), "%s%u", sep, rows[i].told_ms);
		textbuf_add(&ivs, num, (size_t)nn);
		if (rows[i].cap) {
			textbuf_add(&caps, n_caps++ ? ",\"" : "{\"", 2);
			textbuf_add(&caps, id, IDS_UUID_LEN - 1);
			textbuf_add(&caps, "\":", 2);
			textbuf_add(&caps, rows[i].cap, strlen(rows[i].cap));
		}
		if (rows[i].loads) {
			textbuf_add(&loads, n_loads++ ? ",\"" : "{\"", 2);
			textbuf_add(&loads, id, IDS_UUID_LEN - 1);
			nn = snprintf(num, sizeof(num), "\":{\"q\":%lld,\"s\":", rows[i].loads_seq);
			textbuf_add(&loads, num, (size_t)nn);
			nn = snprintf(num, sizeof(num), "%lld,\"r\":",
				      (long long)inv_text_sum(rows[i].loads));
			textbuf_add(&loads, num, (size_t)nn);
			textbuf_add(&loads, rows[i].loads, strlen(rows[i].loads));
			textbuf_add(&loads, "}", 1);
		}
	}
	textbuf_add(&batch, "}", 1);
	textbuf_add(&seqs, "}", 1);
	textbuf_add(&ats, "}", 1);
	textbuf_add(&ivs, "}", 1);
	textbuf_add(&caps, n_caps ? "}" : "{}", n_caps ? 1 : 2);
	textbuf_add(&loads, n_loads ? "}" : "{}", n_loads ? 1 : 2);
	if (n_batch > 0) {
		const char *params[9] = {batch.p, seqs.p, ats.p, caps.p,
					 inv->recorder_id, inv->recorder_host, blind, loads.p, ivs.p};
		if (batch.failed || seqs.failed || ats.failed || ivs.failed || caps.failed ||
		    loads.failed)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		/* One statement for the whole batch, into the narrow table
		 * node_heartbeats (sql/0007); a heartbeat flushed by another
		 * novad with a higher sequence number wins. An unhealthy node
		 * that speaks again is ready again, by pools' own function
		 * (sql/0016: nodes is pools' table; the trigger records the
		 * transition); a failed one stays failed. Two novads flushing the same nodes
		 * (a sidecar that moved) may deadlock on their rows: the one
		 * PostgreSQL cancels tries again. Rejected: locking the rows in
		 * id order first, which cost as much as the update itself. */
		for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
			rc = db_pool_exec(NULL, inv->db,
				"WITH rec AS (" INV_RECORD_SQL("$5", "$6", "$7") "), "
				"beat AS (UPDATE node_heartbeats h SET last_seq = v.seq, "
				"last_heartbeat_at = to_timestamp(v.at_ms / 1000.0), interval_ms = v.iv, "
				"capacity = coalesce($4::jsonb -> v.id::text, h.capacity) "
				"FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $9::integer[]) "
				"AS v(id, seq, at_ms, iv) "
				"WHERE h.node_id = v.id AND (h.last_seq IS NULL OR h.last_seq < v.seq) "
				"RETURNING h.node_id), "
				"loads AS (" INV_LOADS_SQL("$8", "$5") ") "
				"SELECT pool_nodes_heard(array(SELECT node_id FROM beat))",
				9, params, err);
			if (rc != NOVA_EAGAIN)
				break;
			if (attempt < 2)
				rc = 0;
		}
	} else {
		const char *params[3] = {inv->recorder_id, inv->recorder_host, blind};
		rc = db_pool_exec(NULL, inv->db, INV_RECORD_SQL("$1", "$2", "$3"), 3, params, err);
	}
	textbuf_finish(&seqs);
	textbuf_finish(&ats);
	textbuf_finish(&ivs);
	textbuf_finish(&caps);
	textbuf_finish(&loads);
	textbuf_finish(&batch);
	size_t reported = 0;
	if (rc == 0) {
		/* What was written is the database's now; the reports follow. */
		for (size_t i = 0; i < n_batch; i++) {
			free(rows[i].cap);
			rows[i].cap = NULL;
		}
		for (; rc == 0 && reported < n_batch; reported++) {
			char id[IDS_UUID_LEN];
			if (!rows[reported].reported)
				continue;
			ids_uuid_format(id, rows[reported].id);
			if ((rc = deployment_replicas_report(inv->db, id, rows[reported].seq,
							     json_object_get(reports, id), err)))
				break;
		}
	}
	if (rc) {
		/* Nothing taken is lost: the rows not written go back to their
		 * nodes (all of them when the heartbeats were not written; the
		 * reports from the first that failed otherwise). Capacities are
		 * sent again in any case. */
		size_t from = reported;
		inv_flush_restore(inv, rows, n_batch, from);
		pthread_mutex_lock(&inv->lock);
		for (size_t i = 0; i < inv->n_nodes; i++)
			inv->nodes[i].cap_sum = 0;
		pthread_mutex_unlock(&inv->lock);
		for (size_t i = 0; i < n_batch; i++)
			free(rows[i].cap);
	}
	for (size_t i = 0; i < n_batch; i++)
		free(rows[i].loads);
	free(rows);
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
	inv_flush_outcome(inv, rc, err);
	metrics_hist_observe(&inv->flush_seconds, (double)(inv_mono_us() - started_us) / 1e6);
	if (rc == 0) {
		atomic_fetch_add(&inv->rows_flushed, n_batch);
		atomic_fetch_add(&inv->loads_written, n_loads);
	} else
		atomic_fetch_add(&inv->flushes_failed, 1);
	return rc;
}

/* --- shared load (sql/0024) -------------------------------------------------------- */

bool inv_loads_merge(struct inventory *inv, const unsigned char id[16], long long seq,
		     uint64_t sum, json_t *reports)
{
	pthread_mutex_lock(&inv->lock);
	/* A node this novad has not read yet (provisioned since the last
	 * refresh) gets an entry without a token, as a heartbeat's read
	 * would make; the refresh forgets it if it is no node of the fleet. */
	struct inv_node *e = inv_get(inv, id, true);
	if (e)
		/* node_loads holds this report, whichever is newer: a heartbeat
		 * taken here whose report differs from it is written. */
		e->db_sum = sum;
	if (!e || seq <= e->loads_seq) {
		pthread_mutex_unlock(&inv->lock);
		json_decref(reports);
		return false;
	}
	json_decref(e->replicas);
	e->replicas = reports;
	e->loads_seq = seq;
	e->loads_sum = sum;
	/* What waited here is older than what the table holds: the flush
	 * would not write it (nor its report to deployments, which the taker
	 * of the newer heartbeat made). */
	free(e->loads_text);
	e->loads_text = NULL;
	e->replicas_dirty = false;
	/* As the fleet refresh does with node_heartbeats' sequence: a
	 * heartbeat older than one another novad took is stale here too. */
	if (seq > e->last_seq)
		e->last_seq = seq;
	pthread_mutex_unlock(&inv->lock);
	atomic_fetch_add(&inv->loads_gen, 1);
	return true;
}

/* Rows per page of the read, and pages per read (the rest is read after
 * the next flush: a novad catching up after an outage does not hold its
 * flushes back for the whole fleet at once). */
#define INV_LOADS_PAGE 5000
#define INV_LOADS_PAGES_MAX 32
#define INV_STR_(x) #x
#define INV_STR(x) INV_STR_(x)

struct inv_loads_row {
	unsigned char id[16];
	long long seq;
	uint64_t sum;
	json_t *reports;
};

int inventory_loads_read(struct inventory *inv, struct nova_err *err)
{
	struct inv_loads_row *rows = malloc(INV_LOADS_PAGE * sizeof(*rows));
	struct db_conn *c;
	int rc;
	if (!rows)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = db_conn_acquire(&c, inv->db, err))) {
		free(rows);
		return rc;
	}
	for (int page = 0; page < INV_LOADS_PAGES_MAX; page++) {
		char xid[24], node[IDS_UUID_LEN];
		const char *params[3] = {xid, node, inv->recorder_id};
		PGresult *res = NULL;
		snprintf(xid, sizeof(xid), "%llu", inv->cursor.xid);
		ids_uuid_format(node, inv->cursor.node);
		/* The snapshot's xmin in the same statement as the rows, so it
		 * is the snapshot they were read in: every transaction below it
		 * had ended, and a row of one above it is read again next pass. */
		if ((rc = db_exec(&res, c,
				  "WITH page AS (SELECT node_id, seq, sum, written_xid, reports FROM node_loads "
				  "WHERE (written_xid, node_id) > ($1::xid8, $2::uuid) AND written_by <> $3::uuid "
				  "ORDER BY written_xid, node_id LIMIT " INV_STR(INV_LOADS_PAGE) ") "
				  "SELECT pg_snapshot_xmin(pg_current_snapshot())::text, p.node_id::text, p.seq, "
				  "p.sum, p.written_xid::text, p.reports::text FROM (VALUES (1)) AS one (x) "
				  "LEFT JOIN page p ON true ORDER BY p.written_xid, p.node_id",
				  3, params, err)))
			break;
		int got = 0;
		size_t n = 0;
		unsigned long long last_xid = 0;
		unsigned char last_node[16] = {0};
		if (!inv->cursor.next_xid)
			inv->cursor.next_xid = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		/* Parsed outside the lock; each applied under it. */
		for (int i = 0; i < PQntuples(res); i++) {
			if (PQgetisnull(res, i, 1))
				continue;
			got++;
			last_xid = strtoull(PQgetvalue(res, i, 4), NULL, 10);
			if (!ids_uuid_parse(last_node, PQgetvalue(res, i, 1)))
				continue;
			json_t *reports = json_loads(PQgetvalue(res, i, 5), 0, NULL);
			if (!json_is_array(reports)) {
				json_decref(reports);
				continue;
			}
			memcpy(rows[n].id, last_node, 16);
			rows[n].seq = atoll(PQgetvalue(res, i, 2));
			rows[n].sum = (uint64_t)atoll(PQgetvalue(res, i, 3));
			rows[n].reports = reports;
			n++;
		}
		PQclear(res);
		unsigned long long merged = 0;
		for (size_t i = 0; i < n; i++)
			merged += inv_loads_merge(inv, rows[i].id, rows[i].seq, rows[i].sum, rows[i].reports);
		atomic_fetch_add(&inv->loads_read, (unsigned long long)got);
		atomic_fetch_add(&inv->loads_merged, merged);
		if (got < INV_LOADS_PAGE) {
			/* The pass is done: the next starts where the oldest
			 * transaction running at its first page began. */
			inv->cursor.xid = inv->cursor.next_xid;
			inv->cursor.next_xid = 0;
			memset(inv->cursor.node, 0, sizeof(inv->cursor.node));
			break;
		}
		inv->cursor.xid = last_xid;
		memcpy(inv->cursor.node, last_node, 16);
	}
	db_conn_release(inv->db, c);
	free(rows);
	return rc;
}

/* --- the health sweep -------------------------------------------------------------- */

/* The window in which this sweep may count silence (sql/0009), as the
 * database's timestamps in text: from the newest start of a recorder's run
 * to now, or to the oldest last flush while some recorder is blind.
 * Recorders silent past the departure bound are forgotten first; then this
 * novad starts a run of its own again, so the nodes that beat through the
 * departed one get a fresh grace. *ok is false when this novad is not
 * recording itself (no judging then). */
static int inv_sweep_window(bool *ok, char since[40], char upto[40], struct inventory *inv,
			    struct db_conn *c, struct nova_err *err)
{
	char departed[16], blind[16];
	const char *params[3] = {inv->recorder_id, departed, blind};
	PGresult *res = NULL;
	int rc;
	*ok = false;
	snprintf(departed, sizeof(departed), "%u", inv->cfg.departed_after_ms);
	snprintf(blind, sizeof(blind), "%u", inv->cfg.blind_after_ms);
	if ((rc = db_exec(&res, c,
			  "DELETE FROM inventory_recorders WHERE id <> $1::uuid AND "
			  "last_flush_at < now() - $2::integer * interval '1 millisecond' RETURNING host",
			  2, params, err)))
		return rc;
	int gone = PQntuples(res);
	for (int i = 0; i < gone; i++)
		nova_log_kv(NOVA_LOG_WARN, "inventory",
			    "a novad stopped recording heartbeats: every node gets a fresh grace", "novad",
			    PQgetvalue(res, i, 0), NULL);
	PQclear(res);
	if (gone > 0 &&
	    (rc = db_exec(NULL, c, "UPDATE inventory_recorders SET recording_since = now() WHERE id = $1::uuid",
			  1, params, err)))
		return rc;
	if ((rc = db_exec(&res, c,
			  "SELECT max(recording_since)::text, (CASE WHEN min(last_flush_at) >= now() - "
			  "$2::integer * interval '1 millisecond' THEN now() ELSE min(last_flush_at) END)::text, "
			  "coalesce(bool_or(id = $1::uuid), false) FROM inventory_recorders",
			  2, (const char *const[]){inv->recorder_id, blind}, err)))
		return rc;
	if (!strcmp(PQgetvalue(res, 0, 2), "t")) {
		snprintf(since, 40, "%s", PQgetvalue(res, 0, 0));
		snprintf(upto, 40, "%s", PQgetvalue(res, 0, 1));
		*ok = true;
	}
	PQclear(res);
	return 0;
}

/* The brake's verdict on one pool: held or not, with an event when that
 * changes (caller holds no lock; runs on the sweep's connection). */
static bool inv_brake_judge(struct inventory *inv, json_t *now_held, const char *pool_id,
			    const char *pool_name, long long silent, long long nodes)
{
	bool hold = silent >= (long long)inv->cfg.brake_min_nodes &&
		    (double)silent > inv->cfg.brake_share * (double)nodes;
	if (!hold)
		return false;
	pthread_mutex_lock(&inv->lock);
	json_t *was = json_object_get(inv->brakes, pool_id);
	json_t *since = was ? json_object_get(was, "since") : NULL;
	long long since_ms = since ? (long long)json_integer_value(since) : inv_unix_ms();
	if (!was)
		inv->brake_engagements++;
	pthread_mutex_unlock(&inv->lock);
	json_object_set_new(now_held, pool_id,
			    json_pack("{s:s, s:s, s:I, s:I, s:I}", "pool", pool_name, "pool_id", pool_id,
				      "silent", (json_int_t)silent, "nodes", (json_int_t)nodes, "since",
				      (json_int_t)since_ms));
	if (!was) {
		char msg[256];
		struct nova_err e;
		snprintf(msg, sizeof(msg),
			 "brake engaged: %lld of %lld heartbeating nodes silent at once; their states "
			 "are held (brake_share %.2f, brake_min_nodes %u)",
			 silent, nodes, inv->cfg.brake_share, inv->cfg.brake_min_nodes);
		nova_log_kv(NOVA_LOG_WARN, "inventory", msg, "pool", pool_name, NULL);
		if (pool_event_record(inv->db, pool_id, "brake_engaged", msg, &e))
			nova_log_kv(NOVA_LOG_WARN, "inventory", "recording a pool event failed", "error",
				    e.message, NULL);
	}
	return true;
}

/* Replace the brake table with this sweep's; pools no longer held get
 * their release recorded. */
static void inv_brakes_settle(struct inventory *inv, json_t *now_held)
{
	const char *pool_id;
	json_t *b;
	pthread_mutex_lock(&inv->lock);
	json_t *before = inv->brakes;
	inv->brakes = now_held;
	pthread_mutex_unlock(&inv->lock);
	json_object_foreach(before, pool_id, b) {
		if (json_object_get(now_held, pool_id))
			continue;
		const char *name = json_string_value(json_object_get(b, "pool"));
		struct nova_err e;
		nova_log_kv(NOVA_LOG_INFO, "inventory", "brake released: heartbeats resumed", "pool",
			    name, NULL);
		if (pool_event_record(inv->db, pool_id, "brake_released",
				      "brake released: heartbeats resumed", &e))
			nova_log_kv(NOVA_LOG_WARN, "inventory", "recording a pool event failed", "error",
				    e.message, NULL);
	}
	json_decref(before);
}

int inventory_sweep(int *marked, struct inventory *inv, struct nova_err *err)
{
	char missed[16], iv[16], dead[16], dead_n[16], since[40], upto[40];
	struct db_conn *c;
	PGresult *res = NULL;
	bool ok;
	int rc;
	if (marked)
		*marked = 0;
	/* This novad has not recorded a flush yet (it has just started, or
	 * the database has been away since): it saw nothing to judge from. */
	if (!atomic_load(&inv->recorded))
		return 0;
	snprintf(missed, sizeof(missed), "%u", inv->cfg.missed_intervals);
	snprintf(iv, sizeof(iv), "%u", inv->cfg.interval_ms);
	snprintf(dead, sizeof(dead), "%u", inv->cfg.failed_after_ms);
	snprintf(dead_n, sizeof(dead_n), "%d", INVENTORY_FAILED_INTERVALS);
	if ((rc = db_conn_acquire(&c, inv->db, err)))
		return rc;
	/* A background pass over the whole fleet, not a request: the fleet
	 * read's deadline (its scan of 1,000,000 nodes missed the requests'
	 * 2 s on a busy machine, and then nothing was judged at all). */
	if ((rc = db_conn_set_deadline(c, INV_REFRESH_DEADLINE_MS, err)) ||
	    (rc = db_tx_begin(c, err)))
		goto out;
	if ((rc = inv_sweep_window(&ok, since, upto, inv, c, err)) || !ok)
		goto out;
	/* Every node silent in the window past its unhealthy threshold, with
	 * its pool's count of heartbeating nodes and of silent ones: few rows
	 * on a healthy fleet, so the brake can be judged per pool here. Each
	 * node by the interval it was last told (sql/0023; the configured one
	 * for a row written before it), so a fleet that grew or shrank since
	 * makes no node look silent: $3 intervals of it for unhealthy, and
	 * for failed the longer of $5 ms and $6 intervals of it. */
	const char *wparams[6] = {since, upto, missed, iv, dead, dead_n};
	rc = db_exec(&res, c,
		     "WITH s AS (SELECT x.id, x.pool_id, x.state, "
		     "$2::timestamptz - greatest(y.last_heartbeat_at, $1::timestamptz) AS quiet, "
		     "$3::integer * coalesce(y.interval_ms, $4::integer) * interval '1 millisecond' "
		     "AS unhealthy_after, greatest($5::integer, $6::integer * coalesce(y.interval_ms, "
		     "$4::integer)) * interval '1 millisecond' AS failed_after "
		     "FROM nodes x JOIN node_heartbeats y ON y.node_id = x.id "
		     "WHERE y.last_heartbeat_at IS NOT NULL AND x.state IN ('ready', 'unhealthy')), "
		     "q AS (SELECT pool_id, count(*) AS nodes, count(*) FILTER (WHERE quiet > "
		     "unhealthy_after) AS silent FROM s GROUP BY pool_id) "
		     "SELECT s.id::text, s.pool_id::text, p.name, q.silent, q.nodes, "
		     "(s.state = 'ready' OR s.quiet > s.failed_after) "
		     "FROM s JOIN q USING (pool_id) JOIN pools p ON p.id = s.pool_id "
		     "WHERE s.quiet > s.unhealthy_after ORDER BY s.pool_id",
		     6, wparams, err);
	if (rc)
		goto out;
	json_t *held = json_object();
	struct textbuf ids = {0};
	size_t n_ids = 0;
	const char *last_pool = "";
	bool pool_held = false;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *pool_id = PQgetvalue(res, i, 1);
		if (strcmp(pool_id, last_pool) != 0) {
			last_pool = pool_id;
			pool_held = inv_brake_judge(inv, held, pool_id, PQgetvalue(res, i, 2),
						    atoll(PQgetvalue(res, i, 3)),
						    atoll(PQgetvalue(res, i, 4)));
		}
		if (pool_held || strcmp(PQgetvalue(res, i, 5), "t") != 0)
			continue;
		db_array_add(&ids, &n_ids, PQgetvalue(res, i, 0));
	}
	PQclear(res);
	res = NULL;
	inv_brakes_settle(inv, held);
	struct pool_node_mark *marks = NULL;
	size_t n_marks = 0;
	if (n_ids > 0) {
		db_array_end(&ids, n_ids);
		const char *params[7] = {ids.p, since, upto, missed, iv, dead, dead_n};
		if (ids.failed)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		else
			/* Which are still silent, their heartbeat rows locked: a
			 * row a flush holds is being written, so that node is not
			 * silent and is skipped (the sweep never waits, so it
			 * cannot deadlock with a flush). Each with the bound it
			 * passed, in ms, for its reason; grouped by it. */
			rc = db_exec(&res, c,
			     "SELECT w.node_id, w.dead, CASE WHEN w.dead THEN w.failed_ms ELSE "
			     "w.unhealthy_ms END, CASE WHEN w.dead THEN 0 ELSE w.iv END FROM ("
			     "SELECT y.node_id::text AS node_id, coalesce(y.interval_ms, $5::integer) AS iv, "
			     "$4::integer * coalesce(y.interval_ms, $5::integer) AS unhealthy_ms, "
			     "greatest($6::integer, $7::integer * coalesce(y.interval_ms, $5::integer)) "
			     "AS failed_ms, $3::timestamptz - greatest(y.last_heartbeat_at, $2::timestamptz) > "
			     "greatest($6::integer, $7::integer * coalesce(y.interval_ms, $5::integer)) "
			     "* interval '1 millisecond' AS dead FROM node_heartbeats y "
			     "WHERE y.node_id = ANY($1::uuid[]) AND $3::timestamptz - "
			     "greatest(y.last_heartbeat_at, $2::timestamptz) > $4::integer * "
			     "coalesce(y.interval_ms, $5::integer) * interval '1 millisecond' "
			     "FOR UPDATE SKIP LOCKED) w ORDER BY 2, 3, 4",
			     7, params, err);
		/* One pool_nodes_mark_silent per bound: nodes told the same
		 * interval share one, so a pass makes one or two (a fleet that
		 * is changing size: the old interval and the new). */
		for (int i = 0, from = 0; rc == 0 && i <= PQntuples(res); i++) {
			if (i < PQntuples(res) && (i == from || (!strcmp(PQgetvalue(res, i, 1), PQgetvalue(res, from, 1)) &&
								   !strcmp(PQgetvalue(res, i, 2), PQgetvalue(res, from, 2)) &&
								   !strcmp(PQgetvalue(res, i, 3), PQgetvalue(res, from, 3)))))
				continue;
			if (i == from)
				break; /* none */
			struct textbuf group = {0};
			size_t n_group = 0;
			for (int k = from; k < i; k++)
				db_array_add(&group, &n_group, PQgetvalue(res, k, 0));
			db_array_end(&group, n_group);
			bool dead_now = strcmp(PQgetvalue(res, from, 1), "t") == 0;
			char why[96];
			if (dead_now)
				snprintf(why, sizeof(why), "no heartbeat for %s ms", PQgetvalue(res, from, 2));
			else
				snprintf(why, sizeof(why), "no heartbeat for %s ms (%u intervals of %s ms)",
					 PQgetvalue(res, from, 2), inv->cfg.missed_intervals,
					 PQgetvalue(res, from, 3));
			struct pool_node_mark *got = NULL;
			size_t n_got = 0;
			if (group.failed)
				rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
			else
				rc = pool_nodes_mark_silent(&got, &n_got, c, dead_now ? "{}" : group.p, why,
							    dead_now ? group.p : "{}", why, err);
			textbuf_finish(&group);
			if (rc == 0 && n_got > 0) {
				struct pool_node_mark *all = realloc(marks, (n_marks + n_got) * sizeof(*all));
				if (!all) {
					rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
				} else {
					memcpy(all + n_marks, got, n_got * sizeof(*got));
					marks = all;
					n_marks += n_got;
				}
			}
			free(got);
			from = i;
		}
		PQclear(res);
		res = NULL;
	}
	textbuf_finish(&ids);
	if (rc == 0)
		rc = db_tx_commit(c, err);
	for (size_t i = 0; rc == 0 && i < n_marks; i++) {
		unsigned char id[16];
		nova_log_kv(NOVA_LOG_WARN, "inventory", "node silent", "node", marks[i].id, "state",
			    pool_node_state_name(marks[i].state), NULL);
		pthread_mutex_lock(&inv->lock);
		struct inv_node *e = ids_uuid_parse(id, marks[i].id) ? inv_get(inv, id, false) : NULL;
		if (e)
			e->state = (uint8_t)marks[i].state;
		pthread_mutex_unlock(&inv->lock);
	}
	free(marks);
	if (marked && rc == 0)
		*marked = (int)n_marks;
out:
	PQclear(res);
	if (rc)
		db_tx_rollback(c);
	else if (!ok)
		db_tx_commit(c, err);
	db_conn_release(inv->db, c);
	return rc;
}

void inventory_status_get(struct inventory_status *out, struct inventory *inv)
{
	long long ok_ms = atomic_load(&inv->flush_ok_ms);
	memset(out, 0, sizeof(*out));
	out->database_ok = atomic_load(&inv->database_ok);
	out->flush_age_ms = ok_ms ? inv_mono_ms() - ok_ms : -1;
	out->heartbeats_from_memory = atomic_load(&inv->from_memory);
	out->flush_seconds = &inv->flush_seconds;
	out->rows_flushed = atomic_load(&inv->rows_flushed);
	out->flushes_failed = atomic_load(&inv->flushes_failed);
	out->loads_written = atomic_load(&inv->loads_written);
	out->loads_read = atomic_load(&inv->loads_read);
	out->loads_merged = atomic_load(&inv->loads_merged);
	pthread_mutex_lock(&inv->lock);
	memcpy(out->database_error, inv->database_error, sizeof(out->database_error));
	out->nodes_known = inv->n_nodes;
	out->interval_ms = inv_told_locked(inv);
	for (size_t i = 0; i < inv->n_nodes; i++)
		out->nodes_pending += inv->nodes[i].dirty;
	out->brakes_engaged = (unsigned)json_object_size(inv->brakes);
	out->brake_engagements = inv->brake_engagements;
	pthread_mutex_unlock(&inv->lock);
}

json_t *inventory_brakes(struct inventory *inv)
{
	json_t *out = json_array();
	const char *k;
	json_t *v;
	pthread_mutex_lock(&inv->lock);
	json_object_foreach(inv->brakes, k, v)
		json_array_append(out, v);
	pthread_mutex_unlock(&inv->lock);
	return out;
}

/* While the database is away, flushes are tried again after a growing
 * wait (flush_ms, doubling, at most this), each bounded by the database's
 * statement deadline; heartbeats keep being taken into memory meanwhile. */
#define INV_FLUSH_BACKOFF_MAX_MS 4000u

static void *inv_flusher(void *arg)
{
	struct inventory *inv = arg;
	long long refreshed = inv_mono_ms();
	unsigned wait = inv->cfg.flush_ms;
	unsigned long long seen = notify_seq(inv->cfg.wake);
	while (!atomic_load(&inv->stop)) {
		struct nova_err err;
		bool db_ok = atomic_load(&inv->database_ok);
		/* flush_ms, or less when signalled (a replica placed, a replica's
		 * state changed); while the database is away, the whole backoff,
		 * signals or not. A signal that came during the last flush ends
		 * the wait at once. Rejected: 10 ms naps that looked at a flag
		 * and a global generation each time (100 wake-ups a second). */
		long long until = inv_mono_ms() + wait;
		for (long long left = wait; left > 0 && !atomic_load(&inv->stop) &&
					    !(db_ok && atomic_load(&inv->flush_more));
		     left = until - inv_mono_ms())
			if (notify_wait(inv->cfg.wake, &seen, (unsigned)left) && db_ok)
				break;
		if (inventory_flush(inv, &err)) {
			if (db_ok)
				nova_log_kv(NOVA_LOG_WARN, "inventory", "flush failed", "error", err.message, NULL);
			wait = wait * 2 > INV_FLUSH_BACKOFF_MAX_MS ? INV_FLUSH_BACKOFF_MAX_MS : wait * 2;
			continue;
		}
		wait = inv->cfg.flush_ms;
		/* What the other novads wrote of their heartbeats' reports since
		 * the last read: within a flush period of their flush, so a load
		 * any novad took is in every novad's /v1/routes within about two
		 * flush periods. Heartbeats and routes never wait for it. */
		int lrc = inventory_loads_read(inv, &err);
		if (lrc && !inv->loads_read_failing)
			nova_log_kv(NOVA_LOG_WARN, "inventory",
				    "reading the other novads' load reports failed: serving what this "
				    "novad holds", "error", err.message, NULL);
		else if (!lrc && inv->loads_read_failing)
			nova_log_kv(NOVA_LOG_INFO, "inventory", "the other novads' load reports are read again",
				    NULL);
		inv->loads_read_failing = lrc != 0;
		/* Back from an outage: the cached hashes are old, so read the
		 * fleet now rather than one node per heartbeat. */
		unsigned told = inventory_interval_ms(inv);
		long long ttl = told > INV_TOKEN_TTL_MS ? told : INV_TOKEN_TTL_MS;
		if (!db_ok || inv_mono_ms() - refreshed >= ttl / 2) {
			refreshed = inv_mono_ms();
			if (inventory_refresh(inv, &err))
				nova_log_kv(NOVA_LOG_WARN, "inventory", "node token refresh failed", "error",
					    err.message, NULL);
		}
	}
	return NULL;
}

/* The sweeper wakes every quarter of the shortest interval told (to the
 * ready nodes this novad heard at its last flush, or now), and also just
 * after the first of those nodes turns silent at its own interval (a few
 * ms after, so the database's clock agrees): a dead node is found within a
 * few ms of being silent for missed_intervals of its interval, rather than
 * up to a quarter interval later. The period grows with the fleet's
 * interval, so a fleet of 1,000,000 told 100 s is not scanned every 500 ms.
 * Rejected: a shorter period (every sweep is a scan of the nodes table,
 * 100,000 rows at scale), and an index on last_heartbeat_at (every flush
 * would update it for every heartbeating node, losing heap-only updates).
 * Nodes that heartbeat through another novad are swept on the period. */
static void *inv_sweeper(void *arg)
{
	struct inventory *inv = arg;
	unsigned long long seen = notify_seq(inv->cfg.wake);
	while (!atomic_load(&inv->stop)) {
		struct nova_err err;
		unsigned shortest = inventory_interval_ms(inv), heard = atomic_load(&inv->shortest_told_ms);
		if (heard && heard < shortest)
			shortest = heard;
		long long now = inv_unix_ms(), wait = shortest / 4 ? shortest / 4 : 1;
		long long due = atomic_load(&inv->next_silent_ms);
		if (due && due + 5 > now && due + 5 - now < wait)
			wait = due + 5 - now;
		/* Until then, whatever is signalled (the flusher's wake-ups), but
		 * a stop. */
		long long until = inv_mono_ms() + wait;
		for (long long left = wait; left > 0 && !atomic_load(&inv->stop);
		     left = until - inv_mono_ms())
			notify_wait(inv->cfg.wake, &seen, (unsigned)left);
		if (atomic_load(&inv->stop) || !inv->is_leader(inv->leader_ctx))
			continue;
		int marked = 0;
		if (inventory_sweep(&marked, inv, &err))
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
	assert(inv->cfg.wake);
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
	notify_signal(inv->cfg.wake);
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
	if (inventory_flush(inv, &err) == 0) {
		/* Stopped cleanly with everything written: no longer recording.
		 * The sweep then judges without waiting for this novad to depart;
		 * its sidecars find another novad or fall silent for real. */
		const char *params[1] = {inv->recorder_id};
		db_pool_exec(NULL, inv->db, "DELETE FROM inventory_recorders WHERE id = $1::uuid", 1,
			     params, &err);
	}
	for (size_t i = 0; i < inv->n_nodes; i++) {
		free(inv->nodes[i].capacity);
		free(inv->nodes[i].loads_text);
		json_decref(inv->nodes[i].replicas);
		inv_logs_free(inv->nodes[i].logs);
	}
	free(inv->nodes);
	free(inv->index);
	json_decref(inv->digests);
	json_decref(inv->brakes);
	pthread_mutex_destroy(&inv->lock);
	free(inv);
}

json_t *inventory_loads_of(struct inventory *inv, const json_t *replicas)
{
	json_t *out = json_object();
	const char *rid;
	json_t *nid;
	pthread_mutex_lock(&inv->lock);
	json_object_foreach((json_t *)replicas, rid, nid) {
		unsigned char id[16];
		size_t j;
		json_t *r;
		struct inv_node *e = json_is_string(nid) && ids_uuid_parse(id, json_string_value(nid))
					     ? inv_get(inv, id, false)
					     : NULL;
		if (!out || !e)
			continue;
		json_array_foreach(e->replicas, j, r) {
			json_t *load = json_object_get(r, "load");
			const char *have = json_string_value(json_object_get(r, "replica_id"));
			if (json_is_object(load) && have && !strcmp(have, rid)) {
				json_object_set_new(out, rid, json_deep_copy(load));
				break;
			}
		}
	}
	pthread_mutex_unlock(&inv->lock);
	return out;
}

unsigned long long inventory_loads_generation(struct inventory *inv)
{
	return atomic_load(&inv->loads_gen);
}

/* Each live replica's `field` (an object, or a non-empty array), deep
 * copied, by replica id. */
static json_t *inv_replica_field_map(struct inventory *inv, const char *field)
{
	json_t *out = json_object();
	pthread_mutex_lock(&inv->lock);
	for (size_t i = 0; out && i < inv->n_nodes; i++) {
		size_t j;
		json_t *r;
		json_array_foreach(inv->nodes[i].replicas, j, r) {
			json_t *v = json_object_get(r, field);
			const char *id = json_string_value(json_object_get(r, "replica_id"));
			if (id && v && (!json_is_array(v) || json_array_size(v) > 0))
				json_object_set_new(out, id, json_deep_copy(v));
		}
	}
	pthread_mutex_unlock(&inv->lock);
	return out;
}

json_t *inventory_loads(struct inventory *inv)
{
	return inv_replica_field_map(inv, "load");
}

json_t *inventory_adapters_loaded(struct inventory *inv)
{
	return inv_replica_field_map(inv, "adapters_loaded");
}
