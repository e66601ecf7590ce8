/* Inventory: what is alive, from the heartbeats of the nodes' sidecars.
 *
 * A heartbeat is authenticated by its node's token only, the token first:
 * an unknown or malformed node id, another node's token, a revoked or a
 * made-up one are all refused alike (401 "invalid node id or node token"),
 * along the same path (a token the in-memory table does not vouch for is
 * looked up once by its hash, through sql/0012's index), so node ids cannot
 * be enumerated without a token; the body is checked (400 naming the
 * field) only once the token is the node's. Tokens are stored hashed by pools/ and
 * revoked when the node is terminated. It is soft state: applied in memory
 * at once, and written to the database in batches by a flusher (one
 * statement per batch), so the database is not the bottleneck of a large
 * fleet. A heartbeat whose sequence number is not above the last one seen is
 * ignored, so a late message never revives a node; sidecars number their
 * heartbeats from the wall clock, so a restarted sidecar keeps going up.
 *
 * Health is judged from what novads saw. Every novad that takes heartbeats
 * records with each flush that it is recording (sql/0009: the database's
 * time of its last flush, and the start of its unbroken run of flushes).
 * One novad at a time (the reconciler's holder) sweeps: a node that has
 * heartbeated and then stays silent for missed_intervals of the interval it
 * was last told (sql/0023) becomes `unhealthy`, and after failed_after_ms
 * (or INVENTORY_FAILED_INTERVALS of its interval) `failed` (the reconciler then
 * replaces its replicas). Silence counts only while every novad was
 * recording: from the newest start of a run (a novad that could not reach
 * the database, was stopped or has just started begins a new one, so every
 * node gets a fresh grace), and only up to the oldest last flush while some
 * novad is blind (its heartbeats may be waiting in its memory). A novad
 * silent past the departure bound is forgotten, and every node gets a fresh
 * grace from then (its sidecars may be moving to another novad).
 *
 * The brake: when, in one pool of at least brake_min_nodes heartbeating
 * nodes, more than brake_share of them are silent at once, the sweep holds
 * that pool's nodes as they are (nothing more goes unhealthy or failed; the
 * routers' own ejection of failing replicas is all that acts), logs it,
 * records a pool event and counts it; the brake lifts when enough of them
 * beat again. A whole pool going quiet at once is far likelier a fault
 * between the nodes and novad than the death of every node.
 *
 * A heartbeat from an unhealthy node makes it `ready` again with the next
 * flush (flush_ms). A failed node's heartbeats are recorded but not
 * accepted: the reconciler makes a node failed for silence ready again
 * when its agent beats after the failure (it was judged wrongly); one
 * failed for any other reason stays failed. Health is tracked from a
 * node's first heartbeat: before it, provisioning and its timeout apply.
 *
 * While the database is away, heartbeats of known nodes are taken into
 * memory from the cached token hashes (the latest sequence per node, so
 * memory stays one entry per node), and their flushes are retried with
 * backoff; a node never seen before is answered 503. */
#ifndef NOVA_INVENTORY_INVENTORY_H
#define NOVA_INVENTORY_INVENTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/db.h"
#include "core/err.h"
#include "core/notify.h"

struct inventory_config {
	/* The shortest heartbeat interval told to sidecars, default 2000. */
	unsigned interval_ms;
	/* The heartbeat budget: what every novad together takes at most, per
	 * second (0: none). The interval told in each answer is
	 * inventory_interval_for(interval_ms, this, the fleet's node count),
	 * so a growing fleet beats less often instead of faster. */
	unsigned max_heartbeats_per_second;
	unsigned missed_intervals; /* silent intervals (the node's own) before unhealthy, default 3 */
	/* Silence before failed, default 30000; a node told a long interval
	 * gets at least INVENTORY_FAILED_INTERVALS of its own intervals. */
	unsigned failed_after_ms;
	unsigned flush_ms;         /* batch write period, default 500 */
	/* A novad whose flushes are further apart than this is blind: its
	 * next flush starts a new run (a fresh grace for every node), and
	 * while it is, the sweep judges silence only up to its last flush.
	 * 0: missed_intervals * interval_ms / 2, at least 2 * flush_ms. */
	unsigned blind_after_ms;
	/* A novad silent this long has departed (0: twice blind_after_ms, at
	 * least missed_intervals * interval_ms). */
	unsigned departed_after_ms;
	/* The brake (see above): share of a pool's heartbeating nodes, default
	 * 0.5, and the smallest count it takes, default 3. */
	double brake_share;
	unsigned brake_min_nodes;
	/* When set, every heartbeat answer carries it as "gateway_url": where
	 * the agent is to send its next heartbeats (novad's advertise_url). */
	char advertise_url[256];
	/* What the flusher and the sweeper sleep on (the runtime's, owned by
	 * the caller and outliving the inventory). A signal makes the flusher
	 * flush and read the assignment digests at once: the worker signals
	 * it when it placed a replica (worker_config's placed), and a
	 * heartbeat whose replicas changed state or endpoint does; the
	 * sweeper keeps to its own times. Required by inventory_start; NULL
	 * when the inventory's threads are never started (tests). */
	struct notify *wake;
};

void inventory_config_defaults(struct inventory_config *cfg);

/* The default budget: at 100,000 nodes, one novad on two cores (shared)
 * answered 10,000/s with the same p99 as 2,500/s, i.e. without queueing
 * of its own, and queued from 15,000/s (docs/PERFORMANCE.md, "The
 * heartbeat budget": about a fifth of what it takes in a closed loop). */
#define INVENTORY_MAX_HEARTBEATS_PER_SECOND_DEFAULT 10000
/* The longest interval a sidecar accepts (sidecar/sidecar.c). */
#define INVENTORY_INTERVAL_MAX_MS 600000
/* A node is failed after max(failed_after_ms, this many of its own
 * intervals) of silence: twice the unhealthy threshold at the default
 * missed_intervals, so a node told a long interval is never failed before
 * it was unhealthy for as long again. */
#define INVENTORY_FAILED_INTERVALS 6

/* The interval to tell a node when the fleet has `nodes` nodes: the
 * configured one, or nodes / budget seconds when that is longer (rounded
 * up to two significant digits, so it moves in steps of at most 10% as
 * the fleet changes and the rate stays within the budget), at most
 * INVENTORY_INTERVAL_MAX_MS. A budget of 0 is none. */
unsigned inventory_interval_for(unsigned interval_ms, unsigned budget, size_t nodes);

struct inventory;

int inventory_create(struct inventory **out, struct db_pool *db,
		     const struct inventory_config *cfg, struct nova_err *err);
/* Flushes what is pending, then frees. Accepts NULL. */
void inventory_destroy(struct inventory *inv);

/* Apply one heartbeat. Body: {"seq": N, "capacity": {...}, "replicas":
 * [{"replica_id": UUID, "state": "starting|ready|failed", "endpoint": URL,
 *   "load": {"queue_depth": N, "running": N, "kv_cache_usage": X,
 *            "tokens_per_second": X, "ttft_ms": X, "ttft_p95_ms": X,
 *            "inflight_tokens": N, "restarts": N}}]}: load
 *   values are numbers >= 0 (kv_cache_usage at most 1, restarts an
 *   integer), at most 16 of them; names other than these are passed
 *   through to /v1/routes as they are (a newer sidecar's hint);
 *   "adapters_loaded": ["name", ...] (optional): the LoRA adapters the
 *   engine has loaded now, at most INVENTORY_ADAPTERS_LOADED_MAX names of
 *   1 to INVENTORY_ADAPTER_NAME_MAX bytes; kept in memory with the load
 *   and shown with it in /v1/routes (inventory/routes.h).
 * *answer: the JSON text (malloc'd; the caller frees it) of {"accepted":
 * bool, "reason"?: "...", "interval_ms": N (inventory_interval_ms, which
 * the node is then judged by: recorded with its heartbeat), "gateway_url"?: URL,
 * "assignment_generation": "DIGEST", "assignments"?: [...], "refused"?:
 * [...]}: the assignments (see
 * deployment_node_assignments) come when the sidecar's generation is not
 * the current one ("none" when the node runs nothing); "refused" names each
 * replica report whose endpoint was not taken ({"replica_id", "stage",
 * "field": "replicas[N].endpoint", "reason"}: not http(s)://host:port, or
 * not on the node's address as its provider recorded it; see
 * inventory/inventory_int.h), which then counts as "starting" without an
 * endpoint, so it is never routed. Refusals of the token are one 401 for
 * any id (see above); the body is checked (400 naming the field) after. */
int inventory_heartbeat(char **answer, struct inventory *inv, const char *node_id,
			const char *token, const json_t *body, struct nova_err *err);

/* Read the token hash and state of every node that has a token (the whole
 * fleet, in batches through a cursor) into the table heartbeats are checked
 * against, and forget the nodes no longer there. inventory_start calls it
 * once and the flusher every 5 s (every half of the interval told, when
 * longer: a fleet of 1,000,000 is not read every 5 s), so no heartbeat of a
 * known node waits for the database. */
int inventory_refresh(struct inventory *inv, struct nova_err *err);
/* How many nodes the table holds. */
size_t inventory_nodes_known(struct inventory *inv);
/* The interval this novad tells sidecars now: inventory_interval_for its
 * configuration and inventory_nodes_known (every novad reads the whole
 * fleet, so every novad tells the same). */
unsigned inventory_interval_ms(struct inventory *inv);

/* Write the pending heartbeats to the database, with the record that this
 * novad is recording (the flusher calls it). On failure nothing taken is
 * lost: the nodes stay pending for the next flush. */
int inventory_flush(struct inventory *inv, struct nova_err *err);
/* One health sweep, judged as above (the sweeper calls it while this novad
 * holds the singleton duties). Nothing is judged before this novad's own
 * first flush. *marked (may be NULL) counts the nodes it changed. */
int inventory_sweep(int *marked, struct inventory *inv, struct nova_err *err);

/* What the inventory can say of itself without the database. */
struct metrics_hist;
struct inventory_status {
	bool database_ok;          /* the last flush reached the database */
	long long flush_age_ms;    /* since the last successful flush (-1: none yet) */
	char database_error[160];  /* the last flush's error, "" when it worked */
	size_t nodes_known;
	unsigned interval_ms;      /* told in answers now (inventory_interval_ms) */
	size_t nodes_pending;      /* heartbeats taken and not yet written */
	unsigned brakes_engaged;   /* pools held by the brake, as of the last sweep */
	unsigned long long brake_engagements; /* times a brake engaged, since start */
	unsigned long long heartbeats_from_memory; /* taken without the database */
	const struct metrics_hist *flush_seconds;  /* each flush's duration (the inventory's) */
	unsigned long long rows_flushed;   /* heartbeat rows written, since start */
	unsigned long long flushes_failed;
	/* Shared load (inventory_loads_read), since start: replica reports
	 * this novad's flushes sent to node_loads (only those that changed),
	 * rows it read of the other novads' writes, and those of them newer
	 * than what it held. */
	unsigned long long loads_written, loads_read, loads_merged;
};
void inventory_status_get(struct inventory_status *out, struct inventory *inv);
/* The pools the brake holds, as of this novad's last sweep: an array of
 * {"pool", "pool_id", "silent", "nodes", "since"} (a new reference). */
json_t *inventory_brakes(struct inventory *inv);

/* Shared load. Every novad holds, per node, the newest replica report
 * (state, endpoint, load, loaded adapters) it knows of: one it took in a
 * heartbeat, or one another novad took and wrote to node_loads (sql/0024)
 * with its flush, in the same statement as the heartbeats and only when
 * the report changed from what the table holds. The flusher reads, after
 * each flush, the rows the other novads wrote since its last read (a
 * cursor on the writing transaction, so a read touches only those) and
 * keeps each node's report with the newest heartbeat sequence: an older
 * one changes nothing. So a load any novad took is in every novad's
 * /v1/routes within about two flush periods of its heartbeat. While the
 * database is away each novad serves what it holds; nothing waits for a
 * read. NOVA_EUNAVAIL and the like when the database fails. */
int inventory_loads_read(struct inventory *inv, struct nova_err *err);

/* The load each replica's node last reported (through any novad, as far
 * as this one knows; see above), as an object replica id -> load (a new
 * reference). */
json_t *inventory_loads(struct inventory *inv);
/* The same for some replicas only, each looked up on its node (an object
 * replica id -> the id of the node whose report to read: a multi-stage
 * replica's serving stage's), without a walk over the fleet: the
 * autoscaler's read, several times a second. Replicas without a load are
 * left out (a new reference). */
json_t *inventory_loads_of(struct inventory *inv, const json_t *replicas);
/* The LoRA adapters each replica's engine last reported loaded, as an
 * object replica id -> array of names (a new reference; replicas that
 * reported none are left out). Changes count in inventory_loads_generation. */
#define INVENTORY_ADAPTERS_LOADED_MAX 64
#define INVENTORY_ADAPTER_NAME_MAX 512
json_t *inventory_adapters_loaded(struct inventory *inv);
/* A number that changes whenever a heartbeat brings replica reports (and so
 * possibly new load hints): readers that render loads can tell, without
 * reading them, that what they rendered is still current. */
unsigned long long inventory_loads_generation(struct inventory *inv);

/* Engine logs (sidecar/logs.h). A heartbeat may carry "logs": {"url":
 * the sidecar's log server, "keys": [ids of the log keys it holds]}; the
 * URL is taken only on the node's own address (as endpoints are), and
 * when the sidecar does not hold this novad's key for the node (minted at
 * random on first sight, kept in this novad's memory only) the answer
 * carries it as "logs_key". Reading a node's logs goes through the novad
 * its sidecar beats to: another novad has no key for it (NOVA_EUNAVAIL,
 * the hint saying so). A replica report may carry "exit": {"at_ms",
 * "code" | "signal", "restarts"}: how its engine last ended unasked
 * (deployment_replicas_report records it once as an event). */
#define INVENTORY_LOGS_KEYS_MAX 8
#define INVENTORY_LOGS_KEY_ID_HEX 16
#define INVENTORY_LOGS_KEY_HEX 64
struct inventory_logs_access {
	char url[201];
	char key[INVENTORY_LOGS_KEY_HEX + 1]; /* a secret: zero it after use */
};
/* NOVA_ENOTFOUND for a malformed id, NOVA_EUNAVAIL when this novad knows
 * no log server of the node. */
int inventory_logs_access(struct inventory_logs_access *out, struct inventory *inv,
			  const char *node_id, struct nova_err *err);

/* Start and stop the background threads: the flusher, and the health
 * sweeper, which sweeps (every quarter of the shortest interval told) only while is_leader(ctx)
 * says this novad holds the singleton duties (pass NULL for no sweeper). */
int inventory_start(struct inventory *inv, bool (*is_leader)(void *ctx), void *leader_ctx,
		    struct nova_err *err);
void inventory_stop(struct inventory *inv);
/* Called (from the sweeper or the flusher) when a sweep changed nodes'
 * health or a flush wrote a replica's new state or endpoint, so the routing
 * table can follow at once (novad pokes the routes thread). Set before
 * inventory_start; never called from inventory_destroy. */
void inventory_on_health_change(struct inventory *inv, void (*fn)(void *ctx), void *ctx);

#endif
