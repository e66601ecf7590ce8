/* The deployment worker: drives each deployment's replicas towards what was
 * asked, one work item at a time.
 *
 * Work items live in the database. A worker claims one with FOR UPDATE SKIP
 * LOCKED, holding a lease (owner + expiry) and a fencing token that grows on
 * every claim; every write it makes re-checks and renews the lease in the
 * same transaction, so a worker whose lease expired (it stalled, another took
 * the item over) cannot commit anything. A worker that dies loses nothing:
 * its item is claimed again when the lease expires.
 *
 * One pass over a deployment:
 *   1. replicas beyond the wanted count (or all, when stopping) are removed;
 *   2. missing replica rows are written (pending);
 *   3. static providers: discovered nodes get a node row, then are claimed
 *      through the adapter; nodes left in `provisioning` by a crash are
 *      provisioned again (idempotent on the node id written first);
 *   4. pending replicas are placed (binpack or spread, gangs all or
 *      nothing) on the ready nodes with room, an idle one (a warm node)
 *      among them, before anything is provisioned; on an ephemeral
 *      provider, within the pool's quotas, a node is provisioned when
 *      nothing fits (row first, then pool_node_provision); a placement on
 *      a node the pool kept warm signals warm_taken;
 *   5. the deployment's state and reason are updated.
 * During a rollout (deployments/deployment.h, "Rollouts") steps 1 and 2
 * work on the target version's replicas, the previous version's are
 * retired within max_surge and max_unavailable (not-ready ones at once,
 * ready ones drained), drains that ended are stopped, only the target's
 * replicas are placed, and the rollout's progress ("waiting_for") or its
 * end is written; the item comes back every DRAIN_POLL_MS while a drain
 * runs. A pass deletes a replica only by its own fenced writes, and a
 * rollout's state lives in the database: a worker that dies midway leaves
 * nothing another pass cannot go on with.
 * Transient adapter errors requeue the item with exponential backoff and
 * jitter, up to max_attempts; permanent ones fail the node with the
 * provider's message. "No capacity" is not a failure: the item waits and
 * tries again, and the deployment stays pending with the reason. */
#ifndef NOVA_DEPLOYMENTS_WORKER_H
#define NOVA_DEPLOYMENTS_WORKER_H

#include <stdbool.h>

#include "core/db.h"
#include "core/err.h"
#include "core/notify.h"

struct worker_config {
	char owner[96];          /* unique per worker: "host:pid:n" */
	unsigned lease_ms;       /* default 30000 */
	/* Idle sleep between claims when nothing is signalled, default 500:
	 * work this process queues wakes the workers at once (wake, below);
	 * the period is for what only the database tells: items of other
	 * novads, and the retries and no-capacity waits every worker schedules
	 * there (run_after: backoff from base_backoff_ms, wait_ms), which no
	 * timer of this process knows of. A longer period delays those by as
	 * much; LISTEN/NOTIFY (a later issue) would let it grow. */
	unsigned poll_ms;
	unsigned base_backoff_ms;/* default 500 */
	unsigned max_backoff_ms; /* default 30000 */
	unsigned wait_ms;        /* retry delay while there is no capacity, default 2000 */
	unsigned threads;        /* worker threads in novad, default 2 */
	char gateway_url[256];   /* given to sidecars of provisioned nodes */
	/* The runtime's notifiers (core/notify.h), owned by the caller and
	 * outliving the worker. wake: what the threads wait on (signalled by
	 * whoever queued work: deployment_create and the other changes, and
	 * worker_stop); required by worker_start, unused by worker_run_once.
	 * placed: signalled when a replica was placed (a node's assignments
	 * changed), so the inventory refreshes the digests at once; NULL: no
	 * one to tell. */
	struct notify *wake;
	struct notify *placed;
	/* Signalled when a replica was placed on an idle node of a pool with
	 * warm_nodes (pools/pool.h): the reconciler's wake, so it provisions a
	 * warm node behind the one taken at once. NULL: its next period does. */
	struct notify *warm_taken;
	/* Drains (a rollout's replicas of the version being replaced; see
	 * deployments/deployment.h "Rollouts"): a draining replica is stopped
	 * once replica_idle says its engine runs and queues nothing, asked
	 * only after drain_min_ms (default 3000: the routers learned it left
	 * the routes, and a heartbeat since then brought its load), or at the
	 * rollout's drain timeout whatever it says. replica_idle(ctx, replica,
	 * node of its serving stage): 1 idle, 0 busy, -1 not known here (its
	 * heartbeats went to another novad); NULL: never known. */
	unsigned drain_min_ms;
	/* Signalled when replicas began draining (they left the routes): the
	 * routing table's thread, so the routers learn at once. NULL: its
	 * next period. */
	struct notify *unrouted;
	int (*replica_idle)(void *ctx, const char *replica_id, const char *node_id);
	void *replica_idle_ctx;
	/* Tests only (NULL otherwise): called after a replica's nodes were
	 * chosen and before its placements are written, with the first
	 * stage's node, so a test can take that room the way another worker
	 * would meanwhile. */
	void (*test_before_placement_write)(void *ctx, const char *node_id);
	void *test_ctx;
};

void worker_config_defaults(struct worker_config *cfg);

/* Claim and process at most one runnable item. *did_work says whether one
 * was found. Errors of the item itself are handled (requeued, failed) and
 * are not returned; only database trouble is. */
int worker_run_once(bool *did_work, struct db_pool *db, const struct worker_config *cfg,
		    struct nova_err *err);

struct worker;
/* Start cfg->threads threads that loop over worker_run_once, each
 * sleeping on cfg->wake for up to poll_ms when it found nothing. */
int worker_start(struct worker **out, struct db_pool *db, const struct worker_config *cfg,
		 struct nova_err *err);

/* Stop and join; an item in progress is finished first. Accepts NULL. */
void worker_stop(struct worker *w);

/* The work queue as /metrics shows it (the whole fleet's, from the
 * database): items queued, the oldest one's age (0 when none), the
 * attempts spent on queued items, and items that failed for good. */
struct worker_queue_stats {
	unsigned long long queued, attempts, failed;
	double oldest_s;
};
int worker_queue_stats(struct worker_queue_stats *out, struct db_pool *db, struct nova_err *err);

#endif
