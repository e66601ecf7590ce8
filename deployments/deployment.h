/* Deployments: a registered model on a pool, with a replica count and a
 * placement policy.
 *
 * States (enforced and recorded with reasons by the database):
 *   pending -> deploying -> running <-> degraded -> stopping -> stopped,
 *   plus failed; stopped -> pending starts it again.
 * Every change that needs work (create, scale, stop, start) writes the
 * intent and enqueues one work item for the deployment in the same
 * transaction; the deployment worker (deployments/worker.h, next increment)
 * drives replicas towards it.
 *
 * A deployment that can never fit its pool (a stage larger than any node
 * the provider can offer, an accelerator type the pool's quota forbids) is
 * refused at creation with the reason.
 *
 * The changes (create, scale, stop, start, delete) take the request's audit
 * note (audit/audit.h) and record it in the change's own transaction; NULL
 * for none. Those that queue work (create, scale, stop, start) take the
 * notifier the deployment workers of this process wait on (worker_config's
 * wake) and signal it once the change is committed, so an idle worker looks
 * at once; NULL when this process runs no workers (the work waits for
 * another novad's poll). Passed in rather than set once at start-up: the
 * caller (the gateway's deps, the conductor) holds what novad's main
 * handed it, and two novads in one test process keep theirs apart. */
#ifndef NOVA_DEPLOYMENTS_DEPLOYMENT_H
#define NOVA_DEPLOYMENTS_DEPLOYMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "audit/audit.h"
#include "core/db.h"
#include "core/err.h"
#include "core/notify.h"
#include "deployments/autoscale.h"
#include "pools/pool.h"

#define DEPLOYMENT_MAX_REPLICAS 1000

/* A deployment's state (deployments.state); the transitions allowed are
 * the database's to enforce (above). */
enum deployment_state {
	DEPLOYMENT_PENDING = 0,
	DEPLOYMENT_DEPLOYING,
	DEPLOYMENT_RUNNING,
	DEPLOYMENT_DEGRADED,
	DEPLOYMENT_STOPPING,
	DEPLOYMENT_STOPPED,
	DEPLOYMENT_FAILED,
};
#define DEPLOYMENT_STATE_COUNT 7

/* A replica's state (replicas.state): pending (no placement), placed, then
 * as its sidecar reports it (starting, ready, failed); stopping, stopped. */
enum replica_state {
	REPLICA_PENDING = 0,
	REPLICA_PLACED,
	REPLICA_STARTING,
	REPLICA_READY,
	REPLICA_FAILED,
	REPLICA_STOPPING,
	REPLICA_STOPPED,
};
#define REPLICA_STATE_COUNT 7

/* The state's name as stored and shown ("running"). */
const char *deployment_state_name(enum deployment_state s);
const char *deployment_replica_state_name(enum replica_state s);
/* NOVA_EINVAL for a name that is no state. */
int deployment_state_parse(enum deployment_state *out, const char *name);
int deployment_replica_state_parse(enum replica_state *out, const char *name);

#define DEPLOYMENT_ID_LEN 37
#define DEPLOYMENT_NAME_MAX 64

/* A deployment as the engine works on it (the worker's pass). Its model
 * and pool are the models and pools modules' records, loaded through
 * them by id. */
struct deployment {
	char id[DEPLOYMENT_ID_LEN];
	char name[DEPLOYMENT_NAME_MAX];
	char model_id[DEPLOYMENT_ID_LEN];
	char pool_id[DEPLOYMENT_ID_LEN];
	enum deployment_state state;
	long long replicas;        /* wanted, serving */
	long long standby_replicas;/* started and ready beyond them, not routed */
	long long generation;      /* bumped by every change of the wanted state */
	long long revision;        /* bumped by every change of version (a rollout) */
	char placement[16];        /* "binpack" | "spread" */
	json_t *labels;            /* node selector, object of strings (owned) */
	bool autoscaled;           /* autoscale holds its policy */
	struct autoscale_policy autoscale;
};

/* Load one deployment by id (NOVA_ENOTFOUND when there is none). out is
 * the caller's; deployment_finish releases what it holds. */
int deployment_load(struct deployment *out, struct db_pool *db, const char *id,
		    struct nova_err *err);
void deployment_finish(struct deployment *d);

struct deployment_spec {
	const char *name;      /* NULL: "<model>-<pool>" */
	const char *model;     /* id, NAME:VERSION or NAME */
	const char *pool;      /* id or name */
	long long replicas;
	/* Replicas kept started and ready beyond the count and out of the
	 * routes: replicas with ordinals from `replicas` up serve as the
	 * standby, so raising the count promotes one at once (no engine
	 * start) and the worker starts a new one behind it. 0: none. */
	long long standby_replicas;
	const char *placement; /* "binpack" (default) | "spread" */
	const json_t *labels;  /* node selector, object of strings; may be NULL */
	/* The autoscaling policy (deployments/autoscale.h); has_autoscale false:
	 * scaled by hand. With one, replicas (when given: replicas_given) must
	 * lie within its bounds; not given, the deployment starts at
	 * min_replicas, at least 1 (a new deployment answers its first request
	 * warm; idle_s takes it to zero after). */
	bool has_autoscale;
	struct autoscale_policy autoscale;
	bool replicas_given;
};

int deployment_spec_from_json(struct deployment_spec *out, const json_t *body,
			      struct nova_err *err);

/* The API's JSON for a deployment, with its replicas and recent events.
 * NOVA_EINVAL for bad input or a model that can never fit, NOVA_ENOTFOUND
 * for an unknown model or pool, NOVA_EEXISTS for a taken name. */
int deployment_create(json_t **out, struct db_pool *db, struct notify *work,
		      const struct deployment_spec *spec, struct audit_note *audit,
		      struct nova_err *err);
int deployment_get(json_t **out, struct db_pool *db, const char *ref, struct nova_err *err);
int deployment_list(json_t **out, struct db_pool *db, struct nova_err *err);
/* Recorded deployment transitions (GET /v1/events), each as
 * {"source": "deployment", "seq", "object", "object_id", "pool", "kind":
 * "transition", "from", "to", "reason", "at", "at_us"} (pools/pool.h's
 * pool_events_read gives the same shape for nodes and pools): in seq
 * order; with newest, the newest `limit`, else the first `limit` past
 * `after`. An unknown deployment is NOVA_ENOTFOUND. */
struct deployment_events_query {
	const char *pool_id;    /* NULL: every pool */
	const char *deployment; /* id or name; NULL: every deployment */
	long long since_s;      /* 0: no bound; else at >= since (epoch seconds) */
	long long after;        /* the cursor: the last seq seen */
	bool newest;
	int limit;
};
int deployment_events_read(json_t **out, struct db_pool *db,
			   const struct deployment_events_query *q, struct nova_err *err);
/* Every deployment with its replicas desired and ready, for /metrics: an
 * array of {"name", "model", "pool", "state", "desired", "ready",
 * "replica_ids": the ready ones'} (one aggregate query). */
int deployment_counts(json_t **out, struct db_pool *db, struct nova_err *err);
/* A new replica count. An autoscaled deployment refuses it (NOVA_ECONFLICT,
 * naming "replicas", the hint saying how to change the policy). */
int deployment_scale(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		     long long replicas, struct audit_note *audit, struct nova_err *err);
/* PATCH /v1/deployments/{d}: {"replicas"?, "standby_replicas"?,
 * "autoscale"?: policy | null} (at least one; nothing else; the standby
 * count changes on an autoscaled deployment too). Setting a policy clamps the count into
 * [min_replicas, max_replicas] (or sets it to "replicas" when both are
 * given, which must lie within), records an "autoscale" event saying so,
 * and starts the autoscaler's memory afresh; null turns it off and leaves
 * the count where the autoscaler had it. */
/* A rollout's knobs (PATCH's "rollout"; see "Rollouts" below). */
struct deployment_rollout_spec {
	long long max_surge;          /* replicas above the count while rolling, default 1 */
	long long max_unavailable;    /* ready replicas below the count allowed, default 0 */
	long long canary_percent;     /* 1..99: a canary holding that share; 0: none */
	long long drain_timeout_s;    /* the most a replacement's drain waits, default 30 */
	bool auto_rollback;           /* default true */
	double max_error_rate_increase; /* new minus previous error rate, default 0.05 */
	double max_ttft_ratio;        /* new over previous TTFT p95, default 2.0 */
	long long min_requests;       /* to the new version in the window before judging, 20 */
};
void deployment_rollout_spec_defaults(struct deployment_rollout_spec *s);
/* The rollout's knobs as stored and shown: {"max_surge", ..., "auto_rollback":
 * {"enabled", "max_error_rate_increase", "max_ttft_ratio", "min_requests"}}. */
int deployment_rollout_spec_parse(struct deployment_rollout_spec *out, const json_t *obj,
				  struct nova_err *err);

struct deployment_patch {
	/* A new version of the deployment's model: "model" (an id or
	 * NAME:VERSION, NAME its own model's) or "model_version" (a version of
	 * its model); NULL both: none. With "rollout" (has_rollout) the knobs,
	 * else the defaults. */
	const char *model;
	const char *model_version;
	bool has_rollout;
	struct deployment_rollout_spec rollout;
	bool has_replicas;
	long long replicas;
	bool has_standby;
	long long standby_replicas;
	bool has_autoscale;
	bool autoscale_off;                /* "autoscale": null */
	struct autoscale_policy autoscale; /* when has_autoscale && !autoscale_off */
};
int deployment_patch_from_json(struct deployment_patch *out, const json_t *body,
			       struct nova_err *err);
/* (The patch's strings point into body: it outlives the patch's use.) */
int deployment_update(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		      const struct deployment_patch *patch, struct audit_note *audit,
		      struct nova_err *err);

/* --- Rollouts ------------------------------------------------------------------------
 *
 * A PATCH with a new version of the deployment's model ("model" or
 * "model_version") starts a rollout: the deployment's model becomes the new
 * version (its target; deployments.revision is bumped and written on each
 * replica made from then on), and a rollouts row (sql/0021) keeps the
 * versions, the knobs and where it stands. Refused, naming the field: an
 * unknown version or one of another model (400 "model"/"model_version"),
 * the version it runs, one that can never fit the pool, max_surge and
 * max_unavailable both 0 ("rollout.max_surge"), and a second rollout while
 * one is active (409 "model"). A stopped deployment just takes the new
 * version (no replicas to replace).
 *
 * Each replica runs the version it was made for (replicas.model_id); the
 * worker (deployments/worker.h) drives the sets:
 *   rolling       new replicas up to the count, at most max_surge above it
 *                 in all; a previous version's ready replica is taken out
 *                 only while the ready ones stay at least count -
 *                 max_unavailable (its not-ready ones go at once). New
 *                 replicas enter the routes when their sidecar reports them
 *                 ready (inventory/routes.h); one taken out leaves the
 *                 routes first and drains: state "stopping", its engine kept
 *                 running until it reports nothing running or waiting (after
 *                 the routers learned: worker_config.drain_min_ms) or until
 *                 drain_timeout_s, then stopped. Quotas and capacity as for
 *                 any replica: a new replica that does not fit waits, and
 *                 the rollout says so in "waiting_for".
 *   canary        ceil(count x canary_percent / 100) (at least 1) new
 *                 replicas beside the previous version's full count; the
 *                 routing table carries the split ("split": {version:
 *                 percent}) and nova-router sends that share of the
 *                 model's traffic to the new version. It holds until
 *                 promoted (deployment_rollout_promote: it goes on rolling)
 *                 or rolled back.
 *   rolling_back  the deployment's model is the previous version again; its
 *                 replicas are restored and the new ones drained, the
 *                 rolling way.
 * Finished: "complete" (every replica of the count ready at the new
 * version, none of another left) or "rolled_back". Each step is an event of
 * kind "rollout". Everything is in the database, so a novad killed midway
 * leaves a rollout another pass (of any novad) goes on with: no twin
 * replica (one row per version and ordinal), none lost. */

/* A canary's replicas for a count: ceil(replicas x percent / 100), at
 * least 1 (0 for a count of 0). */
long long deployment_canary_replicas(long long replicas, long long percent);

/* POST /v1/deployments/{d}/promote: a canary goes on rolling out.
 * NOVA_ECONFLICT (field "deployment") when there is no canary. */
int deployment_rollout_promote(json_t **out, struct db_pool *db, struct notify *work,
			       const char *ref, struct audit_note *audit, struct nova_err *err);
/* POST /v1/deployments/{d}/rollback: the active rollout is reversed (its
 * state rolling_back, the deployment's model its previous version); with
 * none active, the last complete rollout is undone by a new rollout back
 * to its previous version. reason (NULL: "rollback requested") goes in the
 * event. NOVA_ECONFLICT (field "deployment") when there is nothing to roll
 * back (none, rolling back already, or the previous version was deleted). */
int deployment_rollout_rollback(json_t **out, struct db_pool *db, struct notify *work,
				const char *ref, const char *reason, struct audit_note *audit,
				struct nova_err *err);

/* An active rollout with automatic rollback, as the guard (autoscaler/)
 * judges it. */
struct deployment_rollout_active {
	long long rollout_id;
	char deployment_id[DEPLOYMENT_ID_LEN];
	char name[DEPLOYMENT_NAME_MAX];
	char model[129];          /* the model's name: its route key */
	char from_version[65];
	char to_version[65];
	struct deployment_rollout_spec spec;
};
/* Every rollout rolling or in canary with auto_rollback (*out NULL when
 * none). */
int deployment_rollouts_guarded(struct deployment_rollout_active **out, size_t *n,
				struct db_pool *db, struct nova_err *err);
/* Roll back rollout_id of deployment_id because of reason, only while it
 * is still rolling or in canary (*applied false otherwise). */
int deployment_rollout_auto_rollback(bool *applied, struct db_pool *db, struct notify *work,
				     const char *deployment_id, long long rollout_id,
				     const char *reason, struct nova_err *err);

/* --- for the autoscaler (autoscaler/autoscaler.h) --------------------------------- */

/* An autoscaled deployment as one tick sees it. */
struct deployment_autoscaled {
	char id[DEPLOYMENT_ID_LEN];
	char name[DEPLOYMENT_NAME_MAX];
	char model[129];            /* the model's name: its route key */
	long long replicas;         /* wanted now (serving) */
	long long quota_max;        /* replicas the pool's accelerator quota leaves it (beside its
				     * standby); -1: no bound */
	struct autoscale_policy policy;
	struct autoscale_memory memory;
	json_t *ready;              /* its ready serving replicas: object replica id -> the
				     * node of its serving (last) stage (owned) */
};
/* Every autoscaled deployment that is not stopping, stopped or failed, by
 * name, in one query (*out NULL when none). */
int deployment_autoscaled_list(struct deployment_autoscaled **out, size_t *n,
			       struct db_pool *db, struct nova_err *err);
void deployment_autoscaled_free(struct deployment_autoscaled *list, size_t n);
/* Record a tick: the memory and the recommendation; and when
 * decision->desired differs from expect_replicas, the new count with the
 * decision's reason as a "scaled" event and a work item, all in one
 * transaction. Only while the deployment is still autoscaled, still wants
 * expect_replicas and its row is not locked (a PATCH or stop in flight):
 * otherwise nothing is written and *applied is false (the next tick
 * decides again). work as for deployment_scale. */
int deployment_autoscale_record(bool *applied, struct db_pool *db, struct notify *work,
				const char *id, long long expect_replicas,
				const struct autoscale_decision *decision,
				const struct autoscale_memory *memory, struct nova_err *err);
/* NOVA_ECONFLICT when the state does not allow it. */
int deployment_stop(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		    struct audit_note *audit, struct nova_err *err);
int deployment_start(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		     struct audit_note *audit, struct nova_err *err);
/* Replicas placed on a node: [{deployment, replica, ordinal, state, stage,
 * accelerators}], for the node view. */
int deployment_replicas_on_node(json_t **out, struct db_pool *db, const char *node_id,
				struct nova_err *err);
/* Replica states as a node's sidecar reports them (a JSON array of
 * {"replica_id", "stage"?, "state": "starting|ready|failed", "endpoint"}),
 * one report per stage it runs (no stage: every stage of that replica on
 * the node), in its heartbeat numbered seq. Only placements on that node
 * change, and only when seq is the newest heartbeat the database has of
 * the node (node_heartbeats, written by the flush before its reports): a
 * novad flushing an older heartbeat's report after another novad wrote a
 * newer one changes nothing. Rejected: a sequence column per placement
 * written on every report, a write per placement per flush to guard
 * against something the node's own newest sequence already tells. A replica is then ready
 * when every stage is, failed when any stage is, starting otherwise; its
 * endpoint is its last (serving) stage's. A deployment whose replicas
 * changed gets a work item, so its state follows (running, degraded).
 * A report's "exit" ({"at_ms", "code" | "signal", "restarts"}: how the
 * engine last ended unasked) becomes one event of kind "replica" ("replica
 * 0 killed by signal SIGKILL; restart 1"), recorded once per exit time and
 * placement (sql/0020), however often the report repeats it. */
int deployment_replicas_report(struct db_pool *db, const char *node_id, long long seq,
			       const json_t *reports, struct nova_err *err);
/* Where a replica's stage runs, for reading its engine's logs. */
struct deployment_replica_place {
	char replica_id[DEPLOYMENT_ID_LEN];
	char node_id[DEPLOYMENT_ID_LEN];
	long long ordinal;
	long long stage;   /* the one found */
	long long stages;  /* placed stages */
	char state[16];
};
/* By deployment (id or name), ordinal (-1: its lowest, the first or only
 * replica) and stage (-1: the last, serving, one). NOVA_ENOTFOUND naming
 * "deployment", "replica" or "stage"; NOVA_EUNAVAIL (field "replica") for
 * a replica not placed on a node. */
int deployment_replica_locate(struct deployment_replica_place *out, struct db_pool *db,
			      const char *ref, long long ordinal, long long stage,
			      struct nova_err *err);
/* What each node should run: an object node id -> digest of its replicas
 * (ids and their deployments' generations), for every node with any. A
 * node whose sidecar holds another digest is sent its assignments. (A
 * worker that placed a replica signals the inventory's notifier,
 * worker_config's placed, so the digests are read again at once.) */
int deployment_assignment_digests(json_t **out, struct db_pool *db, struct nova_err *err);
/* A node's assignments: [{"replica_id", "deployment", "model", "version",
 * "kind", "stage", "stages" (the model's count: the last serves),
 * "stage_name", "accelerators", "engine", "adapters"?,
 * "max_adapters"?}], replicas not stopping, ordered by replica. */
int deployment_node_assignments(json_t **out, struct db_pool *db, const char *node_id,
				struct nova_err *err);
/* The deployments that use a pool, for pools/pool.h's pool_delete. */
extern const struct pool_users deployment_pool_users;

/* Only a stopped deployment is deleted. */
int deployment_delete(struct db_pool *db, const char *ref, struct audit_note *audit,
		      struct nova_err *err);

#endif
