/* The rollout guard (autoscaler/autoscaler.h, "Automatic rollback"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoscaler/autoscaler.h"
#include "core/log.h"
#include "deployments/deployment.h"
#include "inventory/demand.h"

static const struct inventory_version_stats *ag_find(const struct inventory_version_stats *v,
						     size_t n, const char *version)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].version, version) == 0)
			return &v[i];
	return NULL;
}

bool autoscaler_rollout_judge(char *reason, size_t len, const struct deployment_rollout_spec *spec,
			      const char *new_version, const struct inventory_version_stats *now,
			      const char *old_version, const struct inventory_version_stats *old)
{
	if (!now || now->requests < spec->min_requests)
		return false; /* too little traffic to the new version to judge */
	double new_rate = (double)now->errors / (double)now->requests;
	double old_rate = old && old->requests > 0 ? (double)old->errors / (double)old->requests : 0;
	if (new_rate - old_rate > spec->max_error_rate_increase) {
		snprintf(reason, len,
			 "automatic rollback: error rate of version %s %.3f (%lld of %lld requests) > "
			 "version %s's %.3f + %.3f",
			 new_version, new_rate, now->errors, now->requests, old_version, old_rate,
			 spec->max_error_rate_increase);
		return true;
	}
	long long old_answered = 0;
	for (int b = 0; old && b < INVENTORY_TTFT_BUCKETS; b++)
		old_answered += old->ttft[b];
	if (old_answered < spec->min_requests)
		return false; /* no baseline to compare the TTFT with */
	/* Judged on what the histograms prove, not on the interpolation
	 * within a bucket (the buckets are 2 to 2.5 x apart): the least the
	 * new version's p95 can be against the most the previous one's can.
	 * Rejected: the interpolated p95s (a rolling update of an equal
	 * version was rolled back, 197 ms against 98 ms, on a loaded machine
	 * where both lay at a bucket's edge). */
	double new_lo, new_hi, old_lo, old_hi;
	if (!inventory_ttft_quantile_bucket(&new_lo, &new_hi, now->ttft, 0.95) ||
	    !inventory_ttft_quantile_bucket(&old_lo, &old_hi, old->ttft, 0.95))
		return false;
	if (new_lo > spec->max_ttft_ratio * old_hi) {
		snprintf(reason, len,
			 "automatic rollback: TTFT p95 of version %s at least %.0f ms (about %.0f) > "
			 "%.2f x version %s's at most %.0f ms (about %.0f)",
			 new_version, new_lo, inventory_ttft_quantile(now->ttft, 0.95),
			 spec->max_ttft_ratio, old_version, old_hi,
			 inventory_ttft_quantile(old->ttft, 0.95));
		return true;
	}
	return false;
}

int autoscaler_guard_tick(int *rolled_back, struct db_pool *db, struct notify *work,
			  struct notify *routes, struct nova_err *err)
{
	struct deployment_rollout_active *ro = NULL;
	size_t n = 0;
	int rc;
	*rolled_back = 0;
	if ((rc = deployment_rollouts_guarded(&ro, &n, db, err)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct inventory_version_stats *v = NULL;
		size_t nv = 0;
		char reason[400];
		bool applied = false;
		struct nova_err e;
		nova_err_clear(&e);
		if (inventory_version_stats_read(&v, &nv, db, ro[i].model, &e) == 0 &&
		    autoscaler_rollout_judge(reason, sizeof(reason), &ro[i].spec, ro[i].to_version,
					     ag_find(v, nv, ro[i].to_version), ro[i].from_version,
					     ag_find(v, nv, ro[i].from_version)) &&
		    deployment_rollout_auto_rollback(&applied, db, work, ro[i].deployment_id,
						     ro[i].rollout_id, reason, &e) == 0 &&
		    applied) {
			(*rolled_back)++;
			notify_signal(routes);
			nova_log_kv(NOVA_LOG_WARN, "autoscaler", "rollout rolled back", "deployment",
				    ro[i].name, "reason", reason, NULL);
		}
		if (e.code)
			rc = nova_err_set(err, e.code, e.field, "%s", e.message);
		free(v);
	}
	free(ro);
	return rc;
}
