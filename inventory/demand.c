/* The routers' demand reports (inventory/demand.h). */
#include "inventory/demand.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes a field may have: printable, no control character (a route key
 * is a model name, or model/adapter: what the table holds). */
static bool dm_text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* "models.KEY.name", the key cut to fit the error's field. */
static void dm_field(char *out, size_t len, const char *key, const char *name)
{
	snprintf(out, len, "models.%.*s%s%s", (int)(len > 24 ? len - 24 : 1), key, name ? "." : "",
		 name ? name : "");
}

static int dm_count(const json_t *v, const char *key, const char *name, struct nova_err *err)
{
	char field[NOVA_ERR_FIELD_MAX];
	dm_field(field, sizeof(field), key, name);
	if (!v)
		return nova_err_set(err, NOVA_EINVAL, field, "%s is required", field);
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > INVENTORY_DEMAND_COUNT_MAX)
		return nova_err_set(err, NOVA_EINVAL, field, "%s must be an integer from 0 to %lld",
				    field, INVENTORY_DEMAND_COUNT_MAX);
	return 0;
}

const double inventory_ttft_bounds_ms[INVENTORY_TTFT_BUCKETS] = {
	10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, INFINITY};

/* "versions.MODEL.VERSION.name", cut to fit. */
static void dm_vfield(char *out, size_t len, const char *model, const char *version,
		      const char *name)
{
	snprintf(out, len, "versions.%.40s%s%.64s%s%s", model, version ? "." : "",
		 version ? version : "", name ? "." : "", name ? name : "");
}

static bool dm_version_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > 64)
		return false;
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* The report's "versions" (absent: none): {MODEL: {VERSION: {"window_s",
 * "requests", "errors", "ttft_buckets": [INVENTORY_TTFT_BUCKETS counts]}}}. */
static int dm_versions_check(const json_t *versions, struct nova_err *err)
{
	char field[NOVA_ERR_FIELD_MAX];
	const char *model, *version, *k;
	json_t *per, *e, *v;
	size_t total = 0;
	if (!versions)
		return 0;
	if (!json_is_object(versions))
		return nova_err_set(err, NOVA_EINVAL, "versions",
				    "versions must be an object of model -> version -> counts");
	json_object_foreach((json_t *)versions, model, per) {
		dm_vfield(field, sizeof(field), model, NULL, NULL);
		if (!dm_text_ok(model, INVENTORY_DEMAND_KEY_MAX))
			return nova_err_set(err, NOVA_EINVAL, "versions",
					    "a key of versions is not a model name");
		if (!json_is_object(per))
			return nova_err_set(err, NOVA_EINVAL, field, "%s must be an object", field);
		json_object_foreach(per, version, e) {
			dm_vfield(field, sizeof(field), model, version, NULL);
			if (++total > INVENTORY_DEMAND_MODELS_MAX)
				return nova_err_set(err, NOVA_EINVAL, "versions",
						    "versions holds more than %d entries",
						    INVENTORY_DEMAND_MODELS_MAX);
			if (!dm_version_ok(version))
				return nova_err_set(err, NOVA_EINVAL, field,
						    "a version is 1 to 64 bytes of [A-Za-z0-9._-]");
			if (!json_is_object(e))
				return nova_err_set(err, NOVA_EINVAL, field, "%s must be an object", field);
			json_object_foreach(e, k, v) {
				dm_vfield(field, sizeof(field), model, version, k);
				if (!strcmp(k, "ttft_buckets")) {
					size_t i;
					json_t *b;
					if (!json_is_array(v) || json_array_size(v) != INVENTORY_TTFT_BUCKETS)
						return nova_err_set(err, NOVA_EINVAL, field,
								    "%s must be an array of %d counts",
								    field, INVENTORY_TTFT_BUCKETS);
					json_array_foreach(v, i, b)
						if (!json_is_integer(b) || json_integer_value(b) < 0 ||
						    json_integer_value(b) > INVENTORY_DEMAND_COUNT_MAX)
							return nova_err_set(err, NOVA_EINVAL, field,
									    "%s holds a count that is "
									    "not an integer from 0 to %lld",
									    field,
									    INVENTORY_DEMAND_COUNT_MAX);
				} else if (!strcmp(k, "requests") || !strcmp(k, "errors") ||
					   !strcmp(k, "window_s")) {
					long long lo = strcmp(k, "window_s") ? 0 : 1;
					long long hi = strcmp(k, "window_s") ? INVENTORY_DEMAND_COUNT_MAX : 3600;
					if (!json_is_integer(v) || json_integer_value(v) < lo ||
					    json_integer_value(v) > hi)
						return nova_err_set(err, NOVA_EINVAL, field,
								    "%s must be an integer from %lld to %lld",
								    field, lo, hi);
				} else {
					return nova_err_set(err, NOVA_EINVAL, field, "unknown field %s", field);
				}
			}
			static const char *const need[] = {"window_s", "requests", "errors", "ttft_buckets"};
			for (size_t i = 0; i < 4; i++)
				if (!json_object_get(e, need[i])) {
					dm_vfield(field, sizeof(field), model, version, need[i]);
					return nova_err_set(err, NOVA_EINVAL, field, "%s is required", field);
				}
			if (json_integer_value(json_object_get(e, "errors")) >
			    json_integer_value(json_object_get(e, "requests"))) {
				dm_vfield(field, sizeof(field), model, version, "errors");
				return nova_err_set(err, NOVA_EINVAL, field,
						    "%s cannot exceed the requests", field);
			}
		}
	}
	return 0;
}

int inventory_demand_check(const json_t *report, struct nova_err *err)
{
	const char *k, *key;
	json_t *v, *e;
	int rc;
	if (!json_is_object(report))
		return nova_err_set(err, NOVA_EINVAL, "", "the body must be a JSON object");
	json_object_foreach((json_t *)report, k, v) {
		if (strcmp(k, "router") && strcmp(k, "models") && strcmp(k, "versions"))
			return nova_err_set(err, NOVA_EINVAL, k, "unknown field %.100s", k);
	}
	if ((rc = dm_versions_check(json_object_get(report, "versions"), err)))
		return rc;
	const json_t *router = json_object_get(report, "router");
	if (!router)
		return nova_err_set(err, NOVA_EINVAL, "router", "router is required");
	if (!json_is_string(router) ||
	    !dm_text_ok(json_string_value(router), INVENTORY_DEMAND_ROUTER_MAX))
		return nova_err_set(err, NOVA_EINVAL, "router",
				    "router must be a string of 1 to %d printable bytes",
				    INVENTORY_DEMAND_ROUTER_MAX);
	const json_t *models = json_object_get(report, "models");
	if (!models)
		return nova_err_set(err, NOVA_EINVAL, "models", "models is required");
	if (!json_is_object(models))
		return nova_err_set(err, NOVA_EINVAL, "models",
				    "models must be an object of route key -> counts");
	if (json_object_size(models) > INVENTORY_DEMAND_MODELS_MAX)
		return nova_err_set(err, NOVA_EINVAL, "models", "models holds more than %d keys",
				    INVENTORY_DEMAND_MODELS_MAX);
	json_object_foreach((json_t *)models, key, e) {
		char field[NOVA_ERR_FIELD_MAX];
		dm_field(field, sizeof(field), key, NULL);
		if (!dm_text_ok(key, INVENTORY_DEMAND_KEY_MAX))
			return nova_err_set(err, NOVA_EINVAL, "models",
					    "a key of models is not a route key (1 to %d printable "
					    "bytes)", INVENTORY_DEMAND_KEY_MAX);
		if (!json_is_object(e))
			return nova_err_set(err, NOVA_EINVAL, field,
					    "%s must be an object {\"waiting\", \"in_flight\"}", field);
		json_object_foreach(e, k, v) {
			if (strcmp(k, "waiting") && strcmp(k, "in_flight")) {
				char unknown[NOVA_ERR_FIELD_MAX];
				dm_field(unknown, sizeof(unknown), key, k);
				return nova_err_set(err, NOVA_EINVAL, unknown, "unknown field %s", unknown);
			}
		}
		if ((rc = dm_count(json_object_get(e, "waiting"), key, "waiting", err)) ||
		    (rc = dm_count(json_object_get(e, "in_flight"), key, "in_flight", err)))
			return rc;
	}
	return 0;
}

int inventory_demand_report(struct db_pool *db, const json_t *report, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc;
	if ((rc = inventory_demand_check(report, err)))
		return rc;
	char *models = json_dumps(json_object_get(report, "models"), JSON_COMPACT);
	if (!models)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	const char *params[2] = {json_string_value(json_object_get(report, "router")), models};
	/* One statement: the router's rows become the report (those it no
	 * longer names deleted, the others upserted), and rows of routers
	 * silent for an hour go, skipping rows another report holds (two
	 * reports never wait on each other for them, so never deadlock). */
	rc = db_pool_exec(&res, db,
			  "WITH r AS (SELECT key AS model, (value->>'waiting')::integer AS waiting, "
			  "(value->>'in_flight')::integer AS in_flight FROM jsonb_each($2::jsonb)), "
			  "mine AS (DELETE FROM router_demand d WHERE d.router = $1 "
			  "AND NOT EXISTS (SELECT 1 FROM r WHERE r.model = d.model)), "
			  "old AS (DELETE FROM router_demand WHERE (router, model) IN "
			  "(SELECT router, model FROM router_demand WHERE router <> $1 "
			  "AND reported_at < now() - interval '1 hour' FOR UPDATE SKIP LOCKED)) "
			  "INSERT INTO router_demand (router, model, waiting, in_flight, reported_at) "
			  "SELECT $1, model, waiting, in_flight, now() FROM r "
			  "ON CONFLICT (router, model) DO UPDATE SET waiting = EXCLUDED.waiting, "
			  "in_flight = EXCLUDED.in_flight, reported_at = EXCLUDED.reported_at",
			  2, params, err);
	PQclear(res);
	free(models);
	if (rc)
		return rc;
	/* The versions the router measured: its rows become the report's
	 * (a report without any clears them). */
	json_t *rows = json_array();
	const char *model, *version;
	json_t *per, *e;
	json_object_foreach(json_object_get(report, "versions"), model, per) {
		json_object_foreach(per, version, e)
			json_array_append_new(rows, json_pack("{s:s, s:s, s:O, s:O, s:O, s:O}", "model",
							      model, "version", version, "window_s",
							      json_object_get(e, "window_s"), "requests",
							      json_object_get(e, "requests"), "errors",
							      json_object_get(e, "errors"), "ttft",
							      json_object_get(e, "ttft_buckets")));
	}
	char *vt = rows ? json_dumps(rows, JSON_COMPACT) : NULL;
	json_decref(rows);
	if (!vt)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	params[1] = vt;
	rc = db_pool_exec(NULL, db,
			  "WITH v AS (SELECT e->>'model' AS model, e->>'version' AS version, "
			  "(e->>'window_s')::integer AS window_s, (e->>'requests')::bigint AS requests, "
			  "(e->>'errors')::bigint AS errors, "
			  "ARRAY(SELECT b::bigint FROM jsonb_array_elements_text(e->'ttft') b) AS ttft "
			  "FROM jsonb_array_elements($2::jsonb) e), "
			  "mine AS (DELETE FROM router_version_stats s WHERE s.router = $1 "
			  "AND NOT EXISTS (SELECT 1 FROM v WHERE v.model = s.model "
			  "AND v.version = s.version)) "
			  "INSERT INTO router_version_stats (router, model, version, window_s, requests, "
			  "errors, ttft_buckets, reported_at) "
			  "SELECT $1, model, version, window_s, requests, errors, ttft, now() FROM v "
			  "ON CONFLICT (router, model, version) DO UPDATE SET window_s = EXCLUDED.window_s, "
			  "requests = EXCLUDED.requests, errors = EXCLUDED.errors, "
			  "ttft_buckets = EXCLUDED.ttft_buckets, reported_at = EXCLUDED.reported_at",
			  2, params, err);
	free(vt);
	return rc;
}

int inventory_version_stats_read(struct inventory_version_stats **out, size_t *n,
				 struct db_pool *db, const char *model, struct nova_err *err)
{
	PGresult *res = NULL;
	char ttl[32];
	int rc;
	*out = NULL;
	*n = 0;
	snprintf(ttl, sizeof(ttl), "%.3f", INVENTORY_DEMAND_TTL_MS / 1000.0);
	const char *params[2] = {ttl, model};
	rc = db_pool_exec(&res, db,
			  "SELECT version, requests, errors, array_to_string(ttft_buckets, ',') AS ttft "
			  "FROM router_version_stats WHERE model = $2 "
			  "AND reported_at > now() - make_interval(secs => $1::float8) ORDER BY version",
			  2, params, err);
	if (rc)
		return rc;
	int rows = PQntuples(res);
	struct inventory_version_stats *v = rows ? calloc((size_t)rows, sizeof(*v)) : NULL;
	if (rows && !v) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	size_t k = 0;
	for (int i = 0; i < rows; i++) {
		const char *ver = db_value(res, i, "version");
		if (k == 0 || strcmp(v[k - 1].version, ver) != 0)
			snprintf(v[k++].version, sizeof(v[0].version), "%s", ver);
		struct inventory_version_stats *s = &v[k - 1];
		s->requests += atoll(db_value(res, i, "requests"));
		s->errors += atoll(db_value(res, i, "errors"));
		s->routers++;
		const char *p = db_value(res, i, "ttft");
		for (int b = 0; b < INVENTORY_TTFT_BUCKETS && *p; b++) {
			char *end;
			s->ttft[b] += strtoll(p, &end, 10);
			p = *end == ',' ? end + 1 : end;
		}
	}
	PQclear(res);
	*out = v;
	*n = k;
	return 0;
}

/* Where the q-quantile of a histogram falls: its bucket, the counts below
 * it and its rank; false when the histogram is empty. The one walk both
 * readings below share. */
static bool dm_ttft_rank(int *bucket, long long *below, double *rank,
			 const long long ttft[INVENTORY_TTFT_BUCKETS], double q)
{
	long long total = 0, seen = 0;
	for (int b = 0; b < INVENTORY_TTFT_BUCKETS; b++)
		total += ttft[b];
	if (total == 0)
		return false;
	*rank = q * (double)total;
	for (int b = 0; b < INVENTORY_TTFT_BUCKETS; b++) {
		if (ttft[b] > 0 && (double)(seen + ttft[b]) >= *rank) {
			*bucket = b;
			*below = seen;
			return true;
		}
		seen += ttft[b];
	}
	/* A q above 1 left the rank past the last count: the +Inf bucket. */
	*bucket = INVENTORY_TTFT_BUCKETS - 1;
	*below = seen;
	return true;
}

bool inventory_ttft_quantile_bucket(double *lo, double *hi,
				    const long long ttft[INVENTORY_TTFT_BUCKETS], double q)
{
	int b;
	long long below;
	double rank;
	if (!dm_ttft_rank(&b, &below, &rank, ttft, q))
		return false;
	*lo = b ? inventory_ttft_bounds_ms[b - 1] : 0;
	*hi = inventory_ttft_bounds_ms[b];
	return true;
}

double inventory_ttft_quantile(const long long ttft[INVENTORY_TTFT_BUCKETS], double q)
{
	int b;
	long long below;
	double rank;
	if (!dm_ttft_rank(&b, &below, &rank, ttft, q))
		return -1;
	/* Linear within the bucket, as Prometheus' histogram_quantile; the
	 * last (+Inf) bucket answers its lower bound. */
	double lo = b ? inventory_ttft_bounds_ms[b - 1] : 0;
	double hi = inventory_ttft_bounds_ms[b];
	if (isinf(hi))
		return lo;
	return lo + (hi - lo) * ((rank - (double)below) / (double)ttft[b]);
}

int inventory_demand_read(struct inventory_demand **out, size_t *n, struct db_pool *db,
			  struct nova_err *err)
{
	PGresult *res = NULL;
	char ttl[32];
	int rc;
	*out = NULL;
	*n = 0;
	snprintf(ttl, sizeof(ttl), "%.3f", INVENTORY_DEMAND_TTL_MS / 1000.0);
	const char *params[1] = {ttl};
	rc = db_pool_exec(&res, db,
			  "SELECT model, sum(waiting)::bigint, sum(in_flight)::bigint, count(*) "
			  "FROM router_demand WHERE reported_at > now() - make_interval(secs => $1::float8) "
			  "AND (waiting > 0 OR in_flight > 0) GROUP BY model ORDER BY model",
			  1, params, err);
	if (rc)
		return rc;
	int rows = PQntuples(res);
	if (rows > 0) {
		struct inventory_demand *d = calloc((size_t)rows, sizeof(*d));
		if (!d) {
			PQclear(res);
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		}
		for (int i = 0; i < rows; i++) {
			snprintf(d[i].model, sizeof(d[i].model), "%s", PQgetvalue(res, i, 0));
			d[i].waiting = strtoll(PQgetvalue(res, i, 1), NULL, 10);
			d[i].in_flight = strtoll(PQgetvalue(res, i, 2), NULL, 10);
			d[i].routers = (unsigned)strtoul(PQgetvalue(res, i, 3), NULL, 10);
		}
		*out = d;
		*n = (size_t)rows;
	}
	PQclear(res);
	return 0;
}

int inventory_demand_json(json_t **out, struct db_pool *db, struct nova_err *err)
{
	struct inventory_demand *d = NULL;
	size_t n = 0;
	int rc;
	*out = NULL;
	if ((rc = inventory_demand_read(&d, &n, db, err)))
		return rc;
	json_t *models = json_object();
	for (size_t i = 0; models && i < n; i++)
		json_object_set_new(models, d[i].model,
				    json_pack("{s:I, s:I, s:I}", "waiting", (json_int_t)d[i].waiting,
					      "in_flight", (json_int_t)d[i].in_flight, "routers",
					      (json_int_t)d[i].routers));
	free(d);
	*out = models ? json_pack("{s:o, s:i}", "models", models, "ttl_ms", INVENTORY_DEMAND_TTL_MS)
		      : NULL;
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}
