/* Inventory: what is alive, from the heartbeats of the nodes' sidecars.
 *
 * A heartbeat is authenticated by its node's token only (another node's
 * token is 403, an unknown one 401; tokens are stored hashed by pools/ and
 * revoked when the node is terminated). It is soft state: applied in memory
 * at once, and written to the database in batches by a flusher (one
 * statement per batch), so the database is not the bottleneck of a large
 * fleet. A heartbeat whose sequence number is not above the last one seen is
 * ignored, so a late message never revives a node; sidecars number their
 * heartbeats from the wall clock, so a restarted sidecar keeps going up.
 *
 * Health is swept from the database by one novad at a time (the reconciler's
 * holder): a node that has heartbeated and then stays silent for
 * missed_intervals intervals becomes `unhealthy`, and after failed_after_ms
 * `failed` (the reconciler then replaces its replicas). A heartbeat from an
 * unhealthy node makes it `ready` again with the next flush (flush_ms); a
 * failed node stays failed whatever it sends. Health is tracked from a
 * node's first heartbeat: before it, provisioning and its timeout apply. */
#ifndef NOVA_INVENTORY_INVENTORY_H
#define NOVA_INVENTORY_INVENTORY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/db.h"
#include "core/err.h"

struct inventory_config {
	unsigned interval_ms;      /* heartbeat interval told to sidecars, default 2000 */
	unsigned missed_intervals; /* silent intervals before unhealthy, default 3 */
	unsigned failed_after_ms;  /* silence before failed, default 30000 */
	unsigned flush_ms;         /* batch write period, default 500 */
};

void inventory_config_defaults(struct inventory_config *cfg);

struct inventory;

int inventory_create(struct inventory **out, struct db_pool *db,
		     const struct inventory_config *cfg, struct nova_err *err);
/* Flushes what is pending, then frees. Accepts NULL. */
void inventory_destroy(struct inventory *inv);

/* Apply one heartbeat. Body: {"seq": N, "capacity": {...}, "replicas":
 * [{"replica_id": UUID, "state": "starting|ready|failed", "endpoint": URL,
 *   "load": {"queue_depth": N, "tokens_per_second": X, "ttft_ms": X}}]}.
 * *answer: the JSON text (malloc'd; the caller frees it) of {"accepted":
 * bool, "reason"?: "...", "interval_ms": N, "assignment_generation":
 * "DIGEST", "assignments"?: [...]}: the assignments (see
 * deployment_node_assignments) come when the sidecar's generation is not
 * the current one ("none" when the node runs nothing). */
int inventory_heartbeat(char **answer, struct inventory *inv, const char *node_id,
			const char *token, const json_t *body, struct nova_err *err);

/* Read the token hash and state of every node that has a token (the whole
 * fleet, in batches through a cursor) into the table heartbeats are checked
 * against, and forget the nodes no longer there. inventory_start calls it
 * once and the flusher every 5 s, so no heartbeat of a known node waits for
 * the database. */
int inventory_refresh(struct inventory *inv, struct nova_err *err);
/* How many nodes the table holds. */
size_t inventory_nodes_known(struct inventory *inv);

/* Write the pending heartbeats to the database (the flusher calls it). */
int inventory_flush(struct inventory *inv, struct nova_err *err);
/* One health sweep (the reconciler's holder calls it). */
int inventory_sweep(struct db_pool *db, const struct inventory_config *cfg, struct nova_err *err);

/* The load each replica's node last reported through this novad, as an
 * object replica id -> load (a new reference). */
json_t *inventory_loads(struct inventory *inv);
/* A number that changes whenever a heartbeat brings replica reports (and so
 * possibly new load hints): readers that render loads can tell, without
 * reading them, that what they rendered is still current. */
unsigned long long inventory_loads_generation(struct inventory *inv);

/* Start and stop the background threads: the flusher, and the health
 * sweeper, which sweeps (every interval_ms / 4) only while is_leader(ctx)
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
