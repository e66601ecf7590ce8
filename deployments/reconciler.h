/* The reconciler: compares what is asked with what exists, and repairs the
 * drift. One novad at a time runs it: the holder of a PostgreSQL advisory
 * lock, held on a session of its own, so when that novad dies its session
 * ends, the lock is free, and another novad takes over on its next try.
 * Pools bound to a machine (pools.h: lpu agents are that machine's
 * processes) are reconciled by one novad on that machine instead, the
 * holder of that machine's lock (the same session); the fleet's reconciler
 * leaves them alone when it runs elsewhere.
 *
 * One pass:
 *   - a node failed for silence whose agent beat again after the failure
 *     is ready again, its replicas where they were (it was judged wrongly,
 *     say while the database or novad was away); one failed for silence
 *     within failed_wait_ms is left for this pass, to hear from its agent;
 *   - replicas on other failed or draining nodes go back to pending (the worker
 *     places them again elsewhere); failed nodes (of any pool: a static
 *     host is then discovered again as a new node) and drained nodes of
 *     ephemeral pools are deprovisioned;
 *   - a node whose deprovisioning failed (its host unreachable) stays
 *     terminating, its reason saying why, and is tried again every pass
 *     until it succeeds; one such node does not stop the pass;
 *   - ephemeral nodes idle (ready, nothing placed) for longer than the grace
 *     period are drained and deprovisioned, but for up to the pool's
 *     warm_nodes of them, kept warm (pools/pool.h; their reason says so);
 *   - a pool with warm_nodes gets that many idle nodes: the idle ones and
 *     those provisioning are counted, the missing ones provisioned (the
 *     worker's path: the row, then pool_node_provision) within max_nodes
 *     and max_accelerators; what stops it is a pool event
 *     ("warm_nodes_failed", once while it lasts) and is tried again next
 *     pass. A worker that places a replica on a warm node signals wake,
 *     so the one behind it is provisioned at once;
 *   - nodes stuck provisioning past the timeout fail, with that reason;
 *   - a static node that has gone silent (unhealthy) and whose provider
 *     resource is gone (an lpu agent that died) is provisioned again, with
 *     a fresh token; never a ready one, whose agent beats wherever it runs;
 *   - provider resources that carry a Nova node id with no live node row
 *     (orphans: a crash between create and commit, a deleted pool's
 *     leftovers) are deprovisioned, found through list_nodes, and so are
 *     twins (a second resource for a node whose row records another handle);
 *   - work items stuck at their last attempt with an expired lease fail;
 *   - every deployment not yet where it should be gets a work item. */
#ifndef NOVA_DEPLOYMENTS_RECONCILER_H
#define NOVA_DEPLOYMENTS_RECONCILER_H

#include <stdbool.h>

#include "core/db.h"
#include "core/err.h"
#include "core/notify.h"

/* Advisory lock key of the singleton ('NOVARECO' as ASCII). */
#define RECONCILER_LOCK_KEY 0x4E4F56415245434FLL

struct reconciler_config {
	unsigned interval_ms;        /* between passes, default 5000 */
	unsigned idle_node_grace_s;  /* default 60 */
	unsigned provision_timeout_s;/* a node provisioning longer fails, default 600 */
	char gateway_url[256];       /* for re-provisioning static nodes' agents */
	/* How long a node failed for silence is given to beat again before it
	 * is replaced, default 6000 (three 2 s heartbeat intervals). */
	unsigned failed_wait_ms;
	/* Audit events older than this many days are removed, at most once
	 * an hour; 0 keeps them all. Default AUDIT_DEFAULT_RETENTION_DAYS. */
	unsigned audit_retention_days;
	/* What the thread sleeps on between passes (the runtime's, owned by
	 * the caller and outliving the reconciler): a signal runs a pass at
	 * once; reconciler_stop signals it, and so do the workers when they
	 * take a warm node (worker_config.warm_taken). Required by
	 * reconciler_start. Other findings wait for the period. */
	struct notify *wake;
};

void reconciler_config_defaults(struct reconciler_config *cfg);

/* One pass, whoever calls it (tests; the thread below holds the lock):
 * every pool but those bound to another machine. */
int reconciler_pass(struct db_pool *db, const struct reconciler_config *cfg,
		    struct nova_err *err);

struct reconciler;
int reconciler_start(struct reconciler **out, struct db_pool *db,
		     const struct reconciler_config *cfg, struct nova_err *err);
/* What passes did in this process since it started, whoever ran them (the
 * thread below or reconciler_pass), for /metrics. */
struct reconciler_counters {
	unsigned long long passes, passes_failed;
	unsigned long long orphans_removed, twins_removed; /* provider resources */
	unsigned long long stuck_failed;       /* nodes failed past provision_timeout_s */
	unsigned long long work_items_expired; /* failed at their last attempt, lease gone */
};
void reconciler_counters_get(struct reconciler_counters *out);

/* Whether this novad holds the fleet's reconciler lock. */
bool reconciler_is_leader(const struct reconciler *r);
/* Stop, join, and release the locks. Accepts NULL. */
void reconciler_stop(struct reconciler *r);

#endif
