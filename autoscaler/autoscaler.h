/* The autoscaler: every tick, for each autoscaled deployment, gathers what
 * its replicas and the routers report and applies the decision of its
 * policy (deployments/autoscale.h).
 *
 * One novad at a time ticks: the holder of the singleton duties (the
 * reconciler's lock; is_leader), so two novads never fight over a count.
 * It keeps nothing in memory between ticks: each tick reads the
 * deployments with their stored memory (autoscale_state: the window's
 * recommendations and the last activity) and writes back what changed, in
 * the same transaction as the count it sets, so a novad that restarts, or
 * another that takes the duty over, continues the same window and idle
 * clock. The last activity is written when it moved by AUTOSCALER_ACTIVE_SAVE_MS
 * or more (a busy deployment is not a write per tick); a restart may so
 * start an idle clock up to that much early.
 *
 * Signals, per deployment, each tick:
 *   - the load its ready replicas' sidecars reported in their newest
 *     heartbeat, through any novad (inventory_loads_of, shared load: each on its node, the serving
 *     stage's for a multi-stage replica): queue_depth, running,
 *     inflight_tokens, ttft_p95_ms (else ttft_ms), tokens_per_second;
 *   - the routers' demand for its model (inventory_demand_read, every
 *     router's report through any novad): requests waiting for a replica
 *     (the scale-from-zero signal) and in flight, for the model's route key
 *     and its adapters' (model/adapter). Several autoscaled deployments of
 *     one model share it equally.
 * Heartbeats taken by another novad are not yet seen here (issue 20 shares
 * the load between novads): behind a load balancer the engines' part of
 * the signals is this novad's share of the fleet's heartbeats.
 *
 * A decision is applied through deployment_autoscale_record: the new count,
 * a "scaled" event with its reason and a work item, committed together and
 * only if the deployment still wants the count the tick read (a PATCH in
 * between wins); the workers are woken at once.
 *
 * Automatic rollback (issue 18; deployments/deployment.h, "Rollouts"): each
 * tick also judges every rollout rolling or in canary with auto_rollback
 * on, from what the routers measured of each version over their window
 * (inventory_version_stats_read: every router's report, through any
 * novad): once the new version had min_requests, its error rate above the
 * previous version's by more than max_error_rate_increase, or its TTFT
 * p95 above max_ttft_ratio times the previous version's (when that one
 * had min_requests answered too; judged on the histograms' bucket bounds:
 * the least the new p95 can be against the most the previous one can),
 * rolls the rollout back, the reason in its event. A rollout is judged
 * only while it runs: a complete one is not undone. */
#ifndef NOVA_AUTOSCALER_AUTOSCALER_H
#define NOVA_AUTOSCALER_AUTOSCALER_H

#include <stdbool.h>

#include "core/db.h"
#include "core/err.h"
#include "core/notify.h"
#include "deployments/deployment.h"
#include "inventory/demand.h"
#include "inventory/inventory.h"

#define AUTOSCALER_ACTIVE_SAVE_MS 10000
/* While something is autoscaled: how often the thread looks for new loads
 * (an atomic read, no database), and the least time between two ticks. */
#define AUTOSCALER_LOADS_POLL_MS 100
#define AUTOSCALER_MIN_TICK_MS 200

struct autoscaler_config {
	/* Between ticks, default 1000; sooner when a heartbeat brought new
	 * loads (at most every AUTOSCALER_MIN_TICK_MS) or a router reported
	 * requests waiting (at once). */
	unsigned tick_ms;
	/* The workers' notifier (the runtime's work): signalled when a tick
	 * changed a count. NULL: no workers in this process. */
	struct notify *work;
	/* The routing table's notifier (the runtime's routes): signalled with
	 * work, so a count that promoted a standby replica (or dropped a
	 * serving one to standby) reaches the routes at once rather than at
	 * the table's next read. NULL: none. */
	struct notify *routes;
	/* What the thread sleeps on: a signal ticks at once (a router's demand
	 * report with requests waiting; the stop). Required by autoscaler_start. */
	struct notify *wake;
	bool (*is_leader)(void *ctx); /* NULL: always (tests) */
	void *leader_ctx;
};

void autoscaler_config_defaults(struct autoscaler_config *cfg);

struct autoscaler;

/* inv: where the replicas' loads are read (NULL: none, the routers' demand
 * alone). */
int autoscaler_create(struct autoscaler **out, struct db_pool *db, struct inventory *inv,
		      const struct autoscaler_config *cfg, struct nova_err *err);
/* One tick at now_ms (epoch milliseconds), whoever calls it (tests; the
 * thread). *scaled (may be NULL): the counts it changed. */
int autoscaler_tick(int *scaled, struct autoscaler *a, long long now_ms, struct nova_err *err);
int autoscaler_start(struct autoscaler *a, struct nova_err *err);
/* Stops the thread if started, then frees. Accepts NULL. */
void autoscaler_destroy(struct autoscaler *a);

/* The guard's judgement (a pure function): true, with the reason, when
 * the new version's numbers (now; NULL: none) call for a rollback against
 * the previous version's (old; NULL: none). */
bool autoscaler_rollout_judge(char *reason, size_t len, const struct deployment_rollout_spec *spec,
			      const char *new_version, const struct inventory_version_stats *now,
			      const char *old_version, const struct inventory_version_stats *old);
/* One pass of the guard over the active rollouts (the tick runs it);
 * *rolled_back: rollouts it rolled back. work and routes as in the config. */
int autoscaler_guard_tick(int *rolled_back, struct db_pool *db, struct notify *work,
			  struct notify *routes, struct nova_err *err);

struct autoscaler_counters {
	unsigned long long ticks, ticks_failed;
	unsigned long long scaled_up, scaled_down; /* decisions applied */
	unsigned long long rollbacks;              /* rollouts the guard rolled back */
};
void autoscaler_counters_get(struct autoscaler_counters *out, const struct autoscaler *a);

#endif
