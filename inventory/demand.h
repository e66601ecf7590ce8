/* Demand: what the routers (nova-router) say is waiting for each model.
 *
 * Every router posts, about once a second while any of its counts is not
 * zero and once more when they fell to zero, how many requests wait for a
 * replica (its bounded per-model queue: the model has no ready replica)
 * and how many it has in flight, per route key (a model, or model/adapter):
 * POST /v1/router/demand, the router scope. The report is the router's
 * whole state: it replaces that router's rows in router_demand (sql/0015),
 * which this module alone writes, in one parameterised statement; a model
 * it no longer names is no longer its demand. A row older than
 * INVENTORY_DEMAND_TTL_MS is not counted: a router that died or lost novad
 * stops counting within the TTL, with nothing to clean up first (rows of
 * routers silent for an hour are deleted by later reports).
 *
 * Kept in PostgreSQL, not in the memory of the novad that took the report,
 * because routers may reach any novad behind a load balancer, and the
 * autoscaler (issue 17: a request for a model at zero replicas waits at a
 * router, the router reports it, the autoscaler scales 0 -> 1) may run in
 * any other: inventory_demand_read gives every novad the sum over routers.
 * Rejected: a novad-to-novad exchange of reports (NOTIFY with the counts),
 * which would be lost by a novad that was restarting, and a demand column
 * on deployments (a write per report to a row the worker locks).
 *
 * Both calls go to the database: a database away is NOVA_EUNAVAIL (503),
 * as with the other routes; the router logs once and retries. */
#ifndef NOVA_INVENTORY_DEMAND_H
#define NOVA_INVENTORY_DEMAND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/db.h"
#include "core/err.h"

#define INVENTORY_DEMAND_TTL_MS 10000
#define INVENTORY_DEMAND_MODELS_MAX 4096  /* route keys in one report */
#define INVENTORY_DEMAND_ROUTER_MAX 200   /* bytes of a router's id */
#define INVENTORY_DEMAND_KEY_MAX 600      /* bytes of a route key */
#define INVENTORY_DEMAND_COUNT_MAX 1000000000LL

/* A report, checked strictly (NOVA_EINVAL naming the field: "router",
 * "models", "models.KEY.waiting", ...): {"router": ID, "models": {KEY:
 * {"waiting": N, "in_flight": N}}}, ID 1..200 printable bytes, at most
 * INVENTORY_DEMAND_MODELS_MAX keys of 1..600 bytes without control
 * characters, counts integers 0..1e9, no other member anywhere. */
int inventory_demand_check(const json_t *report, struct nova_err *err);

/* Check, then store it as that router's demand now. */
int inventory_demand_report(struct db_pool *db, const json_t *report, struct nova_err *err);

/* Per model version (issue 18's automatic rollback): a report may carry
 * "versions": {MODEL: {VERSION: {"window_s", "requests", "errors",
 * "ttft_buckets"}}}, what the router measured of the requests it sent to
 * that version's replicas over its sliding window of window_s seconds
 * (nova-router: router/router.h): attempts finished, those that failed
 * (no connection, a reset, a status of 500 or more, a stream broken), and
 * the time to the first byte of each answer as counts per bucket, whose
 * upper bounds in ms are inventory_ttft_bounds_ms (the last +Inf). MODEL
 * as a route key, VERSION 1..64 bytes of [A-Za-z0-9._-], counts 0..1e9,
 * errors at most the requests, window_s 1..3600, at most
 * INVENTORY_DEMAND_MODELS_MAX entries. Stored as the router's rows of
 * router_version_stats (sql/0021), replaced by each report like its
 * demand; a report without "versions" clears them. (A novad older than
 * this refuses such reports: upgrade novad before the routers.) */
#define INVENTORY_TTFT_BUCKETS 12
extern const double inventory_ttft_bounds_ms[INVENTORY_TTFT_BUCKETS];
struct inventory_version_stats {
	char version[65];
	long long requests, errors;
	long long ttft[INVENTORY_TTFT_BUCKETS];
	unsigned routers;     /* routers reporting it */
};
/* One model's versions: the sums over the routers whose report is younger
 * than the TTL, sorted by version (*out NULL when none). */
int inventory_version_stats_read(struct inventory_version_stats **out, size_t *n,
				 struct db_pool *db, const char *model, struct nova_err *err);
/* The q-quantile (0..1) of a histogram in ms, linear within its bucket as
 * Prometheus' histogram_quantile; -1 when empty. */
double inventory_ttft_quantile(const long long ttft[INVENTORY_TTFT_BUCKETS], double q);
/* The bounds (ms) of the bucket the q-quantile falls in: all a histogram
 * knows of it for sure. false when empty. */
bool inventory_ttft_quantile_bucket(double *lo, double *hi,
				    const long long ttft[INVENTORY_TTFT_BUCKETS], double q);

/* One route key's demand: the sums over the routers whose report on it is
 * younger than the TTL and not all zero. */
struct inventory_demand {
	char model[INVENTORY_DEMAND_KEY_MAX + 1];
	long long waiting;
	long long in_flight;
	unsigned routers;     /* routers reporting it */
};

/* Every route key with demand, sorted by key (*out NULL when none; the
 * caller frees it). For the autoscaler and for GET /v1/router/demand. */
int inventory_demand_read(struct inventory_demand **out, size_t *n, struct db_pool *db,
			  struct nova_err *err);

/* The same as GET /v1/router/demand's body: {"models": {KEY: {"waiting",
 * "in_flight", "routers"}}, "ttl_ms": N} (a new reference). */
int inventory_demand_json(json_t **out, struct db_pool *db, struct nova_err *err);

#endif
