/* The deployment worker's SQL (deployments/store.c), apart from its policy
 * (deployments/worker.c: what to place, when a deployment is running).
 * Internal to deployments/.
 *
 * Work items are leased: a worker claims one (store_item_claim), and every
 * write of its pass is fenced, run in a transaction after the lease is
 * proved still held and extended. A worker whose lease expired (it was
 * paused, another took the item) writes nothing: the write fails with
 * NOVA_ECONFLICT and lease->lost is set. */
#ifndef NOVA_DEPLOYMENTS_STORE_INT_H
#define NOVA_DEPLOYMENTS_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/db.h"
#include "core/err.h"
#include "deployments/deployment.h"
#include "deployments/worker.h"
#include "pools/pool.h"

/* A claimed work item. */
struct store_item {
	long long id;
	char kind[33];
	char subject[37];
	long long fence;
	int attempts, max_attempts;
	char fence_s[24], id_s[24];
	char requests_s[24];     /* work_items.requests when claimed */
	char request_id[65];     /* the API request that last asked for it, or "" */
};

/* The lease a pass writes under. */
struct store_lease {
	struct db_pool *db;
	const struct store_item *item;
	const char *owner;       /* worker_config.owner */
	unsigned lease_ms;
	bool lost;               /* set when a fenced write found the lease gone */
};

/* Claim the next item due (*got false when none): queued, its run_after
 * passed, under its attempts, not leased, and not a deployment on a pool
 * bound to another machine. */
int store_item_claim(bool *got, struct store_item *it, struct db_pool *db, const char *owner,
		     unsigned lease_ms, struct nova_err *err);

enum store_outcome {
	STORE_DONE,  /* done, or queued again at once when work was asked for meanwhile */
	STORE_RETRY, /* after delay_ms, an attempt spent */
	STORE_WAIT,  /* after delay_ms, no attempt spent (capacity is missing) */
	STORE_FAIL,  /* failed for good, with msg */
};
/* Give the item back with its outcome (msg: its last error, "" none). */
int store_item_finish(struct store_lease *l, enum store_outcome how, const char *msg,
		      unsigned delay_ms, struct nova_err *err);

/* The deployment's replicas become ordinals 0..want-1: those beyond go,
 * missing ones are written pending (two fenced writes). */
int store_replicas_resize(struct store_lease *l, const char *dep_id, long long want,
			  struct nova_err *err);
/* Ids of the deployment's pending replicas in ordinal order (*ids freed
 * with free()). */
int store_replicas_pending(char (**ids)[DEPLOYMENT_ID_LEN], size_t *n, struct db_pool *db,
			   const char *dep_id, struct nova_err *err);
struct store_replica_counts {
	long long pending, ready, total;
};
int store_replica_counts(struct store_replica_counts *out, struct db_pool *db, const char *dep_id,
			 struct nova_err *err);

/* used[i]: the accelerators placements take on nodes[i]. */
int store_nodes_used(unsigned *used, const struct pool_node *nodes, size_t n, struct db_pool *db,
		     struct nova_err *err);

/* One stage of a replica's gang: the node it goes on and what it takes. */
struct store_stage {
	const char *node_id;
	unsigned accelerators;
};
/* Write a replica's gang of placements in one fenced transaction, only if
 * each node is still schedulable with the room (pools_nodes_reserve locks
 * the nodes first, in id order, so two workers placing on one node
 * serialize and the second sees what the first committed) and the replica
 * is still pending; the replica is then placed. *written false: the room
 * is gone (look again) or *replica_gone (it is no longer pending). */
int store_placement_write(bool *written, bool *replica_gone, struct store_lease *l,
			  const char *replica_id, const struct store_stage *stages, size_t n_stages,
			  struct nova_err *err);

/* The deployment's state and reason, only for the generation the pass
 * worked on (a stop or a scale committed meanwhile is the next item's). */
int store_deployment_set_state(struct store_lease *l, const char *dep_id, long long generation,
			       enum deployment_state state, const char *reason,
			       struct nova_err *err);
/* The deployment failed with reason (unless stopped or failed already),
 * and its pending replicas with it. */
int store_deployment_fail(struct store_lease *l, const char *dep_id, const char *reason,
			  struct nova_err *err);
/* Queue work for the deployment when its generation moved past the one a
 * pass worked on (a change committed while it ran). */
int store_deployment_requeue_if_changed(struct db_pool *db, const char *dep_id,
					long long generation, struct nova_err *err);

int store_queue_stats(struct worker_queue_stats *out, struct db_pool *db, struct nova_err *err);

#endif
