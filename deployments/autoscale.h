/* Autoscaling: a deployment's policy, and the decision it makes from the
 * load its replicas and the routers report (issue 17).
 *
 * The policy is part of the deployment (deployments.autoscale, sql/0017;
 * NULL: scaled by hand): {"min_replicas", "max_replicas" and at least one
 * target: "target_queue_depth" (requests waiting per replica: the
 * engines' queues and the routers' waiting requests), "target_inflight_tokens"
 * (tokens the running sequences hold, per replica), "target_ttft_p95_ms"
 * (the slowest replica's time to first token, 95th percentile, over the
 * last heartbeat interval), "target_tokens_per_second" (generation per
 * replica); "scale_down_window_s" (default 300) and "idle_s" (0, the
 * default: never to zero for idleness)}.
 *
 * The decision (autoscale_decide) is a pure function of the policy, the
 * signals and what the autoscaler remembers, so it is tested without a
 * clock or a database; the loop that gathers the signals and applies the
 * decisions is the autoscaler module's (autoscaler/autoscaler.h).
 *
 * Each target recommends a count as Kubernetes' HPA does: the total over
 * the replicas divided by the target per replica (TTFT, which is not a
 * sum, as the current count times observed / target), rounded up, and the
 * current count while the ratio is within AUTOSCALE_TOLERANCE of 1 (no
 * churn on noise). The recommendation is the largest any target asks for,
 * within min and max, and never below 1 while a request runs or waits.
 *   - Up at once: a recommendation above the current count is taken at the
 *     next tick (the panic window is the tick itself: the first tick that
 *     sees a target exceeded scales).
 *   - Down only after the stabilization window: the count taken is the
 *     largest recommendation of the last scale_down_window_s, so a dip
 *     shorter than the window never removes a replica, and the count never
 *     falls below what any moment of the window needed.
 *   - To zero only when min_replicas is 0 and idle_s is set and no request
 *     ran, waited or was in flight at a router for idle_s.
 *   - From zero at once when a request waits (the routers' demand).
 * A queue target measures the excess, not the work a count carries: a load
 * that N replicas serve without queueing recommends one, so after a quiet
 * window the count falls to where queues form again (once per window at
 * most). Pair it with target_inflight_tokens or target_tokens_per_second,
 * which hold the count a steady load needs; the queue target then adds the
 * burst on top.
 * Rejected: Knative's separate stable and panic averages (a 60 s mean
 * that lags a load step by tens of seconds, and panic mode that then
 * holds for 60 s): the heartbeat's load is already a mean over its
 * interval, and the window's maximum gives the hysteresis. */
#ifndef NOVA_DEPLOYMENTS_AUTOSCALE_H
#define NOVA_DEPLOYMENTS_AUTOSCALE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define AUTOSCALE_TOLERANCE 0.10
#define AUTOSCALE_DEFAULT_DOWN_WINDOW_S 300
#define AUTOSCALE_MAX_DOWN_WINDOW_S 86400
#define AUTOSCALE_MAX_IDLE_S 604800

struct autoscale_policy {
	long long min_replicas, max_replicas;
	/* Targets per replica; 0: not a target. */
	double target_queue_depth;
	double target_inflight_tokens;
	double target_ttft_p95_ms;
	double target_tokens_per_second;
	long long scale_down_window_s;
	long long idle_s; /* 0: never to zero for idleness */
};

/* Decode and check a policy object (NOVA_EINVAL naming the field
 * "autoscale.X": an unknown member, a negative or out-of-range value,
 * min_replicas above max_replicas, max_replicas over max_allowed, no
 * target, idle_s with min_replicas above 0). */
int autoscale_policy_parse(struct autoscale_policy *out, const json_t *obj, long long max_allowed,
			   struct nova_err *err);
/* The policy as the API shows it, every member present (a new reference). */
json_t *autoscale_policy_json(const struct autoscale_policy *p);

/* What one tick sees of a deployment. A signal nobody reports is < 0: its
 * target recommends nothing. */
struct autoscale_signals {
	long long current;        /* replicas wanted now */
	long long reporting;      /* replicas whose load this tick has */
	double waiting;           /* engines' queues + routers' waiting requests */
	double running;           /* sequences the engines run */
	double router_in_flight;  /* requests the routers are answering */
	double inflight_tokens;   /* sum over the replicas; < 0: unknown */
	double ttft_p95_ms;       /* the highest replica's; < 0: unknown */
	double tokens_per_second; /* sum over the replicas; < 0: unknown */
	long long quota_max;      /* what the pool's quota leaves it; < 0: no bound */
};

/* What the autoscaler keeps of a deployment between ticks (and across
 * restarts: the autoscaler stores it). The history holds the
 * recommendations of the window as change points: recs[i] held from
 * at_ms[i] until at_ms[i + 1] (the last until now). */
#define AUTOSCALE_HISTORY_MAX 64
struct autoscale_memory {
	size_t n;
	long long at_ms[AUTOSCALE_HISTORY_MAX];
	long long recs[AUTOSCALE_HISTORY_MAX];
	long long active_ms; /* the last time a request ran or waited; 0: never */
};

struct autoscale_decision {
	long long desired;       /* == signals->current: no change */
	long long recommended;   /* this tick's recommendation, before the window */
	char reason[384];        /* "scaled 2 -> 4: queue depth 9.5 per replica > target 4" */
};

/* One tick at now_ms (epoch milliseconds): updates mem (the history
 * pruned to the window, the activity) and fills out. */
void autoscale_decide(struct autoscale_decision *out, struct autoscale_memory *mem,
		      const struct autoscale_policy *p, const struct autoscale_signals *s,
		      long long now_ms);

/* The memory as stored ({"at": [...], "recs": [...], "active_ms": N}) and
 * back; a stored value that does not parse is an empty memory. */
json_t *autoscale_memory_json(const struct autoscale_memory *m);
void autoscale_memory_from_json(struct autoscale_memory *out, const json_t *j);

#endif
