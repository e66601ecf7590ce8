/* The routers' demand reports (inventory/demand.h). */
#include "inventory/demand.h"

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

int inventory_demand_check(const json_t *report, struct nova_err *err)
{
	const char *k, *key;
	json_t *v, *e;
	int rc;
	if (!json_is_object(report))
		return nova_err_set(err, NOVA_EINVAL, "", "the body must be a JSON object");
	json_object_foreach((json_t *)report, k, v) {
		if (strcmp(k, "router") && strcmp(k, "models"))
			return nova_err_set(err, NOVA_EINVAL, k, "unknown field %.100s", k);
	}
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
	return rc;
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
