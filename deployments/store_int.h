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

/* The deployment's replicas of version model_id become ordinals
 * 0..want-1: those beyond go (not a draining one: its drain ends it),
 * missing ones are written pending with the deployment's revision (two
 * fenced writes). */
int store_replicas_resize(struct store_lease *l, const char *dep_id, const char *model_id,
			  long long revision, long long want, struct nova_err *err);
/* Every replica of the deployment goes at once, draining or not (a
 * deployment stopping). */
int store_replicas_clear(struct store_lease *l, const char *dep_id, struct nova_err *err);
/* Replicas of the other versions than model_id are retired: those not
 * serving (not ready, or standby: ordinal >= serving) are deleted at once
 * unless keep_unready (a canary keeps the previous version as it is, its
 * standby aside), and up to drain_n ready ones (the highest ordinals
 * first) start draining: state stopping, out of the routes.
 * *marked: how many began draining. */
int store_replicas_retire(long long *marked, struct store_lease *l, const char *dep_id,
			  const char *model_id, long long serving, bool keep_unready,
			  long long drain_n, const char *reason, struct nova_err *err);
/* Ids of the deployment's pending replicas of version model_id in ordinal
 * order (*ids freed with free()). */
int store_replicas_pending(char (**ids)[DEPLOYMENT_ID_LEN], size_t *n, struct db_pool *db,
			   const char *dep_id, const char *model_id, struct nova_err *err);

/* The deployment's replicas by version: the target's (model_id) and the
 * others', for the rollout (draining ones counted apart). serving: the
 * deployment's count (ordinals below it are routed). */
struct store_sets {
	long long t_live, t_ready, t_pending, t_serving_ready;
	long long o_total, o_live, o_ready_serving;
	long long draining;
};
int store_replica_sets(struct store_sets *out, struct db_pool *db, const char *dep_id,
		       const char *model_id, long long serving, struct nova_err *err);
/* The deployment's draining replicas: each with the node of its serving
 * stage and how long it has drained. */
struct store_drain {
	char id[DEPLOYMENT_ID_LEN];
	char node_id[DEPLOYMENT_ID_LEN];
	long long elapsed_ms;
};
int store_drains(struct store_drain **out, size_t *n, struct db_pool *db, const char *dep_id,
		 struct nova_err *err);
/* A drained replica goes (only while it is still draining). */
int store_drain_end(struct store_lease *l, const char *replica_id, struct nova_err *err);

/* The deployment's active rollout (rolling, canary, rolling_back). */
struct store_rollout {
	bool active;
	long long id;
	char id_s[24];
	char state[16];
	char from_version[65], to_version[65];
	struct deployment_rollout_spec spec; /* the knobs */
	char waiting_for[512];
};
int store_rollout_active(struct store_rollout *out, struct db_pool *db, const char *dep_id,
			 struct nova_err *err);
/* What the rollout waits for now (written only when it changed). */
int store_rollout_waiting(struct store_lease *l, const struct store_rollout *ro,
			  const char *waiting_for, struct nova_err *err);
/* The rollout finished (state "complete" or "rolled_back"), with its
 * event, in one fenced write. */
int store_rollout_finish(struct store_lease *l, const struct store_rollout *ro, const char *state,
			 const char *event, struct nova_err *err);
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
