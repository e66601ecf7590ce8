#include "deployments/deployment.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "deployments/dep_int.h"
#include "deployments/placement.h"
#include "models/model.h"
#include "pools/pool.h"

/* Decode a body whose "autoscale" member (fields' *autoscale) is a policy,
 * or null for none: null is taken out before the strict decode (which
 * refuses nulls), *off says it was there; an object is parsed into
 * *policy, *has says so. The strings fields point at stay the body's. */
static int dep_decode_with_policy(const json_t *body, const struct json_field *fields, size_t n,
				  json_t *const *autoscale, struct autoscale_policy *policy,
				  bool *has, bool *off, struct nova_err *err)
{
	json_t *copy = NULL;
	int rc;
	*has = *off = false;
	if (json_is_object(body) && json_is_null(json_object_get(body, "autoscale"))) {
		*off = true;
		if (!(copy = json_copy((json_t *)body)))
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		json_object_del(copy, "autoscale");
		body = copy;
	}
	rc = json_decode_object(body, fields, n, "", err);
	if (rc == 0 && *autoscale) {
		*has = true;
		rc = autoscale_policy_parse(policy, *autoscale, DEPLOYMENT_MAX_REPLICAS, err);
	}
	json_decref(copy); /* copy shares body's values: what fields took stays valid */
	return rc;
}

int deployment_spec_from_json(struct deployment_spec *out, const json_t *body,
			      struct nova_err *err)
{
	json_t *labels = NULL, *autoscale = NULL;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .out = &out->name, .max_len = 63},
		{.name = "model", .kind = JSON_KIND_STRING, .required = true, .out = &out->model,
		 .max_len = 200},
		{.name = "pool", .kind = JSON_KIND_STRING, .required = true, .out = &out->pool,
		 .max_len = 63},
		{.name = "replicas", .kind = JSON_KIND_INT, .out = &out->replicas,
		 .present = &out->replicas_given, .min = 0, .max = DEPLOYMENT_MAX_REPLICAS},
		{.name = "standby_replicas", .kind = JSON_KIND_INT, .out = &out->standby_replicas,
		 .min = 0, .max = DEPLOYMENT_MAX_REPLICAS},
		{.name = "placement", .kind = JSON_KIND_STRING, .out = &out->placement, .max_len = 16},
		{.name = "labels", .kind = JSON_KIND_OBJECT, .out = &labels},
		{.name = "autoscale", .kind = JSON_KIND_ANY, .out = &autoscale},
	};
	bool ok, off;
	int rc;
	memset(out, 0, sizeof(*out));
	out->replicas = 1;
	/* null: scaled by hand, as when it is absent. */
	if ((rc = dep_decode_with_policy(body, fields, sizeof(fields) / sizeof(fields[0]), &autoscale,
					 &out->autoscale, &out->has_autoscale, &off, err)))
		return rc;
	if (out->name && !ids_is_dns_label(out->name))
		return nova_err_set(err, NOVA_EINVAL, "name",
				    "deployment name must be 1 to 63 lower-case letters, digits or '-'");
	placement_policy_parse(out->placement, &ok);
	if (!ok)
		return nova_err_set(err, NOVA_EINVAL, "placement", "placement must be binpack or spread");
	if (labels && (rc = json_check_labels(labels, "labels", err)))
		return rc;
	out->labels = labels;
	if (out->has_autoscale) {
		const struct autoscale_policy *a = &out->autoscale;
		if (out->replicas_given && (out->replicas < a->min_replicas || out->replicas > a->max_replicas))
			return nova_err_set(err, NOVA_EINVAL, "replicas",
					    "replicas (%lld) must lie within autoscale.min_replicas (%lld) "
					    "and autoscale.max_replicas (%lld)",
					    out->replicas, a->min_replicas, a->max_replicas);
		if (!out->replicas_given)
			out->replicas = a->min_replicas > 1 ? a->min_replicas : 1;
	}
	if (out->replicas + out->standby_replicas > DEPLOYMENT_MAX_REPLICAS)
		return nova_err_set(err, NOVA_EINVAL, "standby_replicas",
				    "replicas and standby_replicas together must be at most %d",
				    DEPLOYMENT_MAX_REPLICAS);
	return 0;
}

/* --- states ------------------------------------------------------------------ */

static const char *const dep_state_names[DEPLOYMENT_STATE_COUNT] = {
	[DEPLOYMENT_PENDING] = "pending",   [DEPLOYMENT_DEPLOYING] = "deploying",
	[DEPLOYMENT_RUNNING] = "running",   [DEPLOYMENT_DEGRADED] = "degraded",
	[DEPLOYMENT_STOPPING] = "stopping", [DEPLOYMENT_STOPPED] = "stopped",
	[DEPLOYMENT_FAILED] = "failed",
};
static const char *const dep_replica_state_names[REPLICA_STATE_COUNT] = {
	[REPLICA_PENDING] = "pending",   [REPLICA_PLACED] = "placed",
	[REPLICA_STARTING] = "starting", [REPLICA_READY] = "ready",
	[REPLICA_FAILED] = "failed",     [REPLICA_STOPPING] = "stopping",
	[REPLICA_STOPPED] = "stopped",
};

const char *deployment_state_name(enum deployment_state s)
{
	return (unsigned)s < DEPLOYMENT_STATE_COUNT ? dep_state_names[s] : "unknown";
}

const char *deployment_replica_state_name(enum replica_state s)
{
	return (unsigned)s < REPLICA_STATE_COUNT ? dep_replica_state_names[s] : "unknown";
}

static int dep_name_index(unsigned *out, const char *const *names, unsigned n, const char *name)
{
	for (unsigned i = 0; name && i < n; i++)
		if (!strcmp(names[i], name)) {
			*out = i;
			return 0;
		}
	return NOVA_EINVAL;
}

int deployment_state_parse(enum deployment_state *out, const char *name)
{
	unsigned i;
	int rc = dep_name_index(&i, dep_state_names, DEPLOYMENT_STATE_COUNT, name);
	if (rc == 0)
		*out = (enum deployment_state)i;
	return rc;
}

int deployment_replica_state_parse(enum replica_state *out, const char *name)
{
	unsigned i;
	int rc = dep_name_index(&i, dep_replica_state_names, REPLICA_STATE_COUNT, name);
	if (rc == 0)
		*out = (enum replica_state)i;
	return rc;
}

/* --- the record ---------------------------------------------------------------- */

/* The one place that decodes a deployments row into the record: by column
 * name, so a column added to the SELECT cannot shift the others. */
static int dep_decode(struct deployment *out, const PGresult *res, int row, struct nova_err *err)
{
	json_t *constraints;
	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", db_value(res, row, "id"));
	snprintf(out->name, sizeof(out->name), "%s", db_value(res, row, "name"));
	snprintf(out->model_id, sizeof(out->model_id), "%s", db_value(res, row, "model_id"));
	snprintf(out->pool_id, sizeof(out->pool_id), "%s", db_value(res, row, "pool_id"));
	snprintf(out->placement, sizeof(out->placement), "%s", db_value(res, row, "placement"));
	out->replicas = atoll(db_value(res, row, "replicas"));
	out->standby_replicas = atoll(db_value(res, row, "standby_replicas"));
	out->generation = atoll(db_value(res, row, "generation"));
	out->revision = atoll(db_value(res, row, "revision"));
	constraints = json_loads(db_value(res, row, "constraints"), 0, NULL);
	out->labels = json_incref(json_object_get(constraints, "labels"));
	json_decref(constraints);
	if (!out->labels)
		out->labels = json_object();
	if (*db_value(res, row, "autoscale")) {
		/* A policy this novad cannot read (a newer novad's) leaves the
		 * record usable: the worker needs none of it, the API shows the
		 * stored text, and the autoscaler skips it. */
		struct nova_err ignored;
		json_t *a = json_loads(db_value(res, row, "autoscale"), 0, NULL);
		out->autoscaled = true;
		if (!a || autoscale_policy_parse(&out->autoscale, a, DEPLOYMENT_MAX_REPLICAS, &ignored))
			memset(&out->autoscale, 0, sizeof(out->autoscale));
		json_decref(a);
	}
	if (deployment_state_parse(&out->state, db_value(res, row, "state")) != 0 || !out->labels) {
		deployment_finish(out);
		return nova_err_set(err, NOVA_EINTERNAL, "", "stored deployment unreadable");
	}
	return 0;
}

int deployment_load(struct deployment *out, struct db_pool *db, const char *id,
		    struct nova_err *err)
{
	const char *params[1] = {id};
	PGresult *res = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	rc = db_pool_exec(&res, db,
			  "SELECT id, name, model_id, pool_id, state, replicas, standby_replicas, "
			  "generation, revision, placement, "
			  "constraints::text AS constraints, coalesce(autoscale::text, '') AS autoscale "
			  "FROM deployments WHERE id = $1::uuid",
			  1, params, err);
	if (rc == 0 && PQntuples(res) == 0)
		rc = nova_err_set(err, NOVA_ENOTFOUND, "deployment", "no deployment with id %s", id);
	if (rc == 0)
		rc = dep_decode(out, res, 0, err);
	PQclear(res);
	return rc;
}

void deployment_finish(struct deployment *d)
{
	if (!d)
		return;
	json_decref(d->labels);
	memset(d, 0, sizeof(*d));
}

static int dep_count_on_pool(long long *out, struct db_conn *c, const char *pool_id,
			     struct nova_err *err)
{
	const char *params[1] = {pool_id};
	PGresult *res = NULL;
	int rc = db_exec_one(&res, c, "SELECT count(*) FROM deployments WHERE pool_id = $1::uuid", 1,
			     params, err);
	*out = rc == 0 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	PQclear(res);
	return rc;
}

const struct pool_users deployment_pool_users = {
	.noun = "deployment",
	.hint = "delete its deployments first",
	.count = dep_count_on_pool,
};

/* --- reading ---------------------------------------------------------------- */

/* A deployment row with what the API shows beside it: dep_decode's names
 * (the record) and the model's, the pool's, the times and the ready count. */
#define DEP_COLS                                                                            \
	"d.id, d.name, d.model_id, d.pool_id, d.replicas, d.standby_replicas, d.placement, " \
	"d.constraints::text AS constraints, d.state, d.state_reason, d.generation, "       \
	"d.revision, "                                                                      \
	"m.name AS model_name, m.version AS model_version, m.kind AS model_kind, "          \
	"p.name AS pool_name, " DB_TS("d.created_at") " AS created_at, "                    \
	DB_TS("d.updated_at") " AS updated_at, "                                            \
	"(SELECT count(*) FROM replicas r WHERE r.deployment_id = d.id AND r.state = 'ready') " \
	"AS ready_replicas, coalesce(d.autoscale::text, '') AS autoscale, "                 \
	"coalesce(s.recommended, -1) AS as_recommended, coalesce(s.last_reason, '') AS as_reason, " \
	"coalesce(" DB_TS("s.decided_at") ", '') AS as_decided_at "                         \
	"FROM deployments d JOIN models m ON m.id = d.model_id JOIN pools p ON p.id = d.pool_id " \
	"LEFT JOIN autoscale_state s ON s.deployment_id = d.id "

static json_t *dep_row_json(const PGresult *res, int row)
{
	struct deployment d;
	struct nova_err ignored;
	if (dep_decode(&d, res, row, &ignored))
		return NULL;
	json_t *j = json_pack(
		"{s:s, s:s, s:I, s:s, s:O, s:s, s:s, s:I, s:{s:s, s:s, s:s, s:s}, s:{s:s, s:s}, "
		"s:s, s:s, s:I}",
		"id", d.id, "name", d.name, "replicas", (json_int_t)d.replicas, "placement",
		d.placement, "labels", d.labels, "state", deployment_state_name(d.state),
		"state_reason", db_value(res, row, "state_reason"), "generation",
		(json_int_t)d.generation, "model", "id", d.model_id, "name",
		db_value(res, row, "model_name"), "version", db_value(res, row, "model_version"),
		"kind", db_value(res, row, "model_kind"), "pool", "id", d.pool_id, "name",
		db_value(res, row, "pool_name"), "created_at", db_value(res, row, "created_at"),
		"updated_at", db_value(res, row, "updated_at"), "ready_replicas",
		(json_int_t)atoll(db_value(res, row, "ready_replicas")));
	if (j) {
		json_object_set_new(j, "standby_replicas", json_integer(d.standby_replicas));
		json_object_set_new(j, "revision", json_integer(d.revision));
	}
	if (j && d.autoscaled) {
		/* The policy, and what the autoscaler last made of it. */
		long long rec = atoll(db_value(res, row, "as_recommended"));
		const char *at = db_value(res, row, "as_decided_at");
		json_t *stored = json_loads(db_value(res, row, "autoscale"), 0, NULL);
		json_object_set_new(j, "autoscale", stored ? stored : json_null());
		json_object_set_new(
			j, "autoscaler",
			json_pack("{s:o, s:o, s:o}", "recommended",
				  rec >= 0 && *at ? json_integer(rec) : json_null(), "last_decision",
				  *db_value(res, row, "as_reason") ? json_string(db_value(res, row, "as_reason"))
								   : json_null(),
				  "decided_at", *at ? json_string(at) : json_null()));
	} else if (j) {
		json_object_set_new(j, "autoscale", json_null());
	}
	deployment_finish(&d);
	return j;
}

/* Attach replicas and the recent events to a deployment's JSON. */
static int dep_details(json_t *d, struct db_conn *c, struct nova_err *err)
{
	const char *params[1] = {json_string_value(json_object_get(d, "id"))};
	PGresult *res = NULL;
	json_t *arr;
	int rc = db_exec(&res, c,
			 "SELECT r.id, r.ordinal, r.state, r.state_reason, coalesce(r.endpoint, ''), "
			 "coalesce((SELECT json_agg(json_build_object('stage', rp.stage, 'node', n.name, "
			 "'node_id', n.id, 'accelerators', rp.accelerators) ORDER BY rp.stage) "
			 "FROM replica_placements rp JOIN nodes n ON n.id = rp.node_id "
			 "WHERE rp.replica_id = r.id), '[]')::text, m.version, r.revision "
			 "FROM replicas r JOIN models m ON m.id = r.model_id "
			 "WHERE r.deployment_id = $1::uuid ORDER BY r.ordinal, r.revision",
			 1, params, err);
	if (rc)
		return rc;
	arr = json_array();
	/* Ordinals from the count up are the standby (kept out of the routes). */
	long long serving = json_integer_value(json_object_get(d, "replicas"));
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *placements = json_loads(PQgetvalue(res, i, 5), 0, NULL);
		long long ordinal = atoll(PQgetvalue(res, i, 1));
		json_array_append_new(
			arr, json_pack("{s:s, s:I, s:s, s:s, s:o, s:o, s:b, s:s, s:I}", "id",
				       PQgetvalue(res, i, 0), "ordinal", (json_int_t)ordinal, "state",
				       PQgetvalue(res, i, 2), "reason", PQgetvalue(res, i, 3), "endpoint",
				       *PQgetvalue(res, i, 4) ? json_string(PQgetvalue(res, i, 4))
							      : json_null(),
				       "placements", placements ? placements : json_array(), "standby",
				       ordinal >= serving, "version", PQgetvalue(res, i, 6), "revision",
				       (json_int_t)atoll(PQgetvalue(res, i, 7))));
	}
	PQclear(res);
	json_object_set_new(d, "replica_list", arr);
	rc = db_exec(&res, c,
		     "SELECT coalesce(from_state, ''), to_state, reason, " DB_TS("at") ", kind FROM "
		     "(SELECT * FROM deployment_events WHERE deployment_id = $1::uuid "
		     "ORDER BY id DESC LIMIT 20) e ORDER BY id",
		     1, params, err);
	if (rc)
		return rc;
	arr = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr, json_pack("{s:o, s:s, s:s, s:s, s:s}", "from",
						     *PQgetvalue(res, i, 0) ? json_string(PQgetvalue(res, i, 0))
									    : json_null(),
						     "to", PQgetvalue(res, i, 1), "reason",
						     PQgetvalue(res, i, 2), "at", PQgetvalue(res, i, 3),
						     "kind", PQgetvalue(res, i, 4)));
	PQclear(res);
	json_object_set_new(d, "events", arr);
	json_t *ro = NULL;
	if ((rc = dep_rollout_json(&ro, c, params[0], err)))
		return rc;
	json_object_set_new(d, "rollout", ro);
	return 0;
}

int dep_fetch(json_t **out, struct db_conn *c, const char *ref, bool details,
		     struct nova_err *err)
{
	const char *params[1] = {ref};
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	rc = db_exec(&res, c,
		     ids_is_uuid(ref) ? "SELECT " DEP_COLS "WHERE d.id = $1::uuid"
				      : "SELECT " DEP_COLS "WHERE d.name = $1",
		     1, params, err);
	if (rc == 0 && PQntuples(res) == 0)
		rc = nova_err_set(err, NOVA_ENOTFOUND, "deployment", "no deployment named or with id \"%s\"",
				  ref);
	if (rc == 0 && !(*out = dep_row_json(res, 0)))
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	PQclear(res);
	if (rc == 0 && details && (rc = dep_details(*out, c, err))) {
		json_decref(*out);
		*out = NULL;
	}
	return rc;
}

int deployment_get(json_t **out, struct db_pool *db, const char *ref, struct nova_err *err)
{
	struct db_conn *c;
	int rc;
	*out = NULL;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = dep_fetch(out, c, ref, true, err);
	db_conn_release(db, c);
	return rc;
}

int deployment_list(json_t **out, struct db_pool *db, struct nova_err *err)
{
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = db_exec(&res, c, "SELECT " DEP_COLS "ORDER BY d.name", 0, NULL, err);
	db_conn_release(db, c);
	if (rc)
		return rc;
	*out = json_array();
	for (int i = 0; *out && i < PQntuples(res); i++)
		json_array_append_new(*out, dep_row_json(res, i));
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

#define DEP_EVENTS_SQL(dir)                                                                    \
	"SELECT e.id, d.id, d.name, p.name, coalesce(e.from_state, ''), e.to_state, e.reason, " \
	DB_TS("e.at") ", (extract(epoch FROM e.at) * 1000000)::bigint, e.kind "                 \
	"FROM deployment_events e JOIN deployments d ON d.id = e.deployment_id "                \
	"JOIN pools p ON p.id = d.pool_id "                                                     \
	"WHERE ($1::uuid IS NULL OR d.pool_id = $1::uuid) "                                     \
	"AND ($2::uuid IS NULL OR d.id = $2::uuid) AND e.id > $3::bigint "                     \
	"AND ($4::bigint = 0 OR e.at >= to_timestamp($4::bigint)) "                             \
	"ORDER BY e.id " dir " LIMIT $5::int"

int deployment_events_read(json_t **out, struct db_pool *db,
			   const struct deployment_events_query *q, struct nova_err *err)
{
	char after_s[24], since_s[24], limit_s[16], id[40] = "";
	PGresult *res = NULL;
	struct db_conn *c;
	int rc;
	*out = NULL;
	snprintf(after_s, sizeof(after_s), "%lld", q->newest ? 0 : q->after);
	snprintf(since_s, sizeof(since_s), "%lld", q->since_s);
	snprintf(limit_s, sizeof(limit_s), "%d", q->limit);
	const char *params[5] = {q->pool_id, NULL, after_s, since_s, limit_s};
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	if (q->deployment) {
		/* An unknown name is an error, not an empty story. */
		json_t *d = NULL;
		if ((rc = dep_fetch(&d, c, q->deployment, false, err)) == 0) {
			snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(d, "id")));
			params[1] = id;
		}
		json_decref(d);
	}
	if (!rc)
		rc = db_exec(&res, c, q->newest ? DEP_EVENTS_SQL("DESC") : DEP_EVENTS_SQL("ASC"), 5,
			     params, err);
	db_conn_release(db, c);
	if (rc)
		return rc;
	*out = json_array();
	int n = PQntuples(res);
	for (int i = 0; *out && i < n; i++) {
		int r = q->newest ? n - 1 - i : i;
		const char *from = PQgetvalue(res, r, 4);
		json_t *e = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:I}",
				      "source", "deployment", "seq",
				      (json_int_t)atoll(PQgetvalue(res, r, 0)), "object_id",
				      PQgetvalue(res, r, 1), "object", PQgetvalue(res, r, 2), "pool",
				      PQgetvalue(res, r, 3), "kind", PQgetvalue(res, r, 9), "from",
				      *from ? json_string(from) : json_null(), "to",
				      PQgetvalue(res, r, 5), "reason", PQgetvalue(res, r, 6), "at",
				      PQgetvalue(res, r, 7), "at_us",
				      (json_int_t)atoll(PQgetvalue(res, r, 8)));
		if (!e || json_array_append_new(*out, e)) {
			json_decref(*out);
			*out = NULL;
		}
	}
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

int deployment_counts(json_t **out, struct db_pool *db, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if ((rc = db_pool_exec(&res, db,
			       "SELECT d.name, m.name, p.name, d.state, d.replicas, "
			       "count(r.id) FILTER (WHERE r.state = 'ready'), "
			       "coalesce(json_agg(r.id) FILTER (WHERE r.state = 'ready'), '[]')::text "
			       "FROM deployments d JOIN models m ON m.id = d.model_id "
			       "JOIN pools p ON p.id = d.pool_id "
			       "LEFT JOIN replicas r ON r.deployment_id = d.id "
			       "GROUP BY d.id, m.name, p.name ORDER BY d.name",
			       0, NULL, err)))
		return rc;
	*out = json_array();
	for (int i = 0; *out && i < PQntuples(res); i++)
		json_array_append_new(*out, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:o}", "name",
						      PQgetvalue(res, i, 0), "model", PQgetvalue(res, i, 1),
						      "pool", PQgetvalue(res, i, 2), "state",
						      PQgetvalue(res, i, 3), "desired",
						      (json_int_t)strtoll(PQgetvalue(res, i, 4), NULL, 10),
						      "ready",
						      (json_int_t)strtoll(PQgetvalue(res, i, 5), NULL, 10),
						      "replica_ids",
						      json_loads(PQgetvalue(res, i, 6), 0, NULL)));
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

/* --- feasibility ---------------------------------------------------------------- */

/* What the pool could ever offer, as placement nodes: the provider's static
 * nodes, or for ephemeral providers one node per accelerator type of the
 * largest size it creates. From the pool's instance's cached discovery
 * (adapter_instance_resources), never a probe per request: an ssh pool's
 * discovery connects to every host, and it ran on the HTTP thread. A pool
 * never discovered yet is waited for at most DEP_DISCOVERY_WAIT_MS; past
 * that the capacity is unknown and the deployment admitted, as when the
 * provider is down. */
#define DEP_DISCOVERY_WAIT_MS 5000
int dep_feasible(const struct model *m, const struct pool *p, const json_t *labels,
			enum placement_policy policy, struct nova_err *err)
{
	struct placement_stage stages[PLACEMENT_MAX_STAGES];
	struct placement_label sel[PLACEMENT_MAX_LABELS];
	size_t n_sel = 0, per_replica = 0;
	const char *k;
	json_t *v;
	for (size_t i = 0; i < m->n_stages; i++) {
		const struct model_stage *s = &m->stages[i];
		stages[i] = (struct placement_stage){s->name, s->accelerator_type, s->accelerators,
						     s->memory_mib};
		per_replica += s->accelerators;
		if (s->accelerator_type[0] && json_array_size(p->quotas.accelerator_types) > 0) {
			bool allowed = false;
			size_t j;
			json_array_foreach(p->quotas.accelerator_types, j, v)
				allowed |= strcmp(json_string_value(v), s->accelerator_type) == 0;
			if (!allowed)
				return nova_err_set(err, NOVA_EINVAL, "model",
						    "can never fit: pool %s does not allow %s accelerators",
						    p->name, s->accelerator_type);
		}
	}
	if (p->quotas.max_accelerators >= 0 && (long long)per_replica > p->quotas.max_accelerators)
		return nova_err_set(err, NOVA_EINVAL, "model",
				    "can never fit: one replica needs %zu accelerators, pool %s allows %lld",
				    per_replica, p->name, p->quotas.max_accelerators);
	json_object_foreach((json_t *)labels, k, v) {
		if (n_sel < PLACEMENT_MAX_LABELS)
			sel[n_sel++] = (struct placement_label){k, json_string_value(v)};
	}

	const struct adapter_ops *ops = adapter_find(p->provider);
	struct adapter *ad = NULL;
	struct adapter_resources res;
	struct nova_err derr;
	if (!ops || adapter_instance_get(&ad, ops, p->id, p->config, &derr) ||
	    adapter_instance_resources(&res, ad, DEP_DISCOVERY_WAIT_MS, &derr)) {
		/* Capacity unknown (provider down, no discovery): admit it; the
		 * worker keeps it pending with the reason if it does not fit. */
		nova_log_kv(NOVA_LOG_INFO, "deployments", "capacity unknown at deploy", "pool", p->name,
			    NULL);
		adapter_instance_put(ad);
		return 0;
	}
	size_t n = res.n_nodes ? res.n_nodes : res.n_capacity;
	struct placement_node *nodes = calloc(n ? n : 1, sizeof(*nodes));
	int rc = 0;
	if (!nodes) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct placement_node *pn = &nodes[i];
		if (res.n_nodes) {
			const struct adapter_static_node *sn = &res.nodes[i];
			pn->accelerator_type = sn->accelerator_type;
			pn->memory_mib = sn->memory_mib;
			pn->total = sn->accelerator_count;
			json_object_foreach(sn->labels, k, v) {
				if (pn->n_labels < PLACEMENT_MAX_LABELS && json_is_string(v))
					pn->labels[pn->n_labels++] =
						(struct placement_label){k, json_string_value(v)};
			}
		} else {
			/* Ephemeral nodes carry the labels Nova gives them. */
			pn->accelerator_type = res.capacity[i].accelerator_type;
			pn->memory_mib = res.capacity[i].memory_mib;
			pn->total = res.capacity[i].max_per_node;
			for (size_t j = 0; j < n_sel; j++)
				pn->labels[pn->n_labels++] = sel[j];
		}
	}
	struct placement_request req = {stages, m->n_stages, policy, sel, n_sel};
	rc = placement_check_feasible(nodes, n, &req, err);
	free(nodes);
out:
	adapter_resources_finish(&res);
	adapter_instance_put(ad);
	return rc;
}

/* --- writing ------------------------------------------------------------------- */

/* Work for the deployment; the request asking for it (its id, when the
 * change came through the API) rides in the payload, so the worker's log
 * lines for it carry the same request id. */
int dep_enqueue(struct db_conn *c, const char *id, const struct audit_note *audit,
		       struct nova_err *err)
{
	const char *params[2] = {id, audit && audit->request_id ? audit->request_id : ""};
	return db_exec(NULL, c,
		       "INSERT INTO work_items (kind, subject_id, payload) VALUES ('deployment', "
		       "$1::uuid, CASE WHEN $2 = '' THEN '{}'::jsonb "
		       "ELSE jsonb_build_object('request_id', $2::text) END) "
		       "ON CONFLICT (kind, subject_id) WHERE state = 'queued' "
		       "DO UPDATE SET run_after = least(work_items.run_after, now()), "
		       "requests = work_items.requests + 1, updated_at = now(), "
		       "payload = CASE WHEN $2 = '' THEN work_items.payload "
		       "ELSE work_items.payload || jsonb_build_object('request_id', $2::text) END",
		       2, params, err);
}

/* "<model>-<pool>", lower-cased, as a DNS label. */
static void dep_default_name(char *out, size_t len, const char *model, const char *pool)
{
	char raw[256];
	size_t o = 0;
	snprintf(raw, sizeof(raw), "%s-%s", model, pool);
	for (size_t i = 0; raw[i] && o + 1 < len && o < 63; i++) {
		char ch = (char)tolower((unsigned char)raw[i]);
		if (!isalnum((unsigned char)ch))
			ch = '-';
		if (ch == '-' && (o == 0 || out[o - 1] == '-'))
			continue;
		out[o++] = ch;
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	out[o] = '\0';
}

int deployment_create(json_t **out, struct db_pool *db, struct notify *work,
		      const struct deployment_spec *spec, struct audit_note *audit,
		      struct nova_err *err)
{
	struct model *m = NULL;
	struct pool *p = NULL;
	struct db_conn *c = NULL;
	PGresult *res = NULL;
	char name[64], replicas[16], standby[16], *constraints = NULL, *autoscale = NULL;
	bool ok;
	enum placement_policy policy = placement_policy_parse(spec->placement, &ok);
	int rc;
	*out = NULL;
	if ((rc = model_get(&m, db, spec->model, err)) || (rc = pool_get(&p, db, spec->pool, err)))
		goto out;
	if (p->state != POOL_ACTIVE) {
		rc = nova_err_set(err, NOVA_ECONFLICT, "pool", "pool %s is being deleted", p->name);
		goto out;
	}
	if ((rc = dep_feasible(m, p, spec->labels, policy, err)))
		goto out;
	if (spec->name)
		snprintf(name, sizeof(name), "%s", spec->name);
	else
		dep_default_name(name, sizeof(name), m->name, p->name);
	snprintf(replicas, sizeof(replicas), "%lld", spec->replicas);
	snprintf(standby, sizeof(standby), "%lld", spec->standby_replicas);
	json_t *cons = spec->labels ? json_pack("{s:O}", "labels", spec->labels)
				    : json_pack("{s:{}}", "labels");
	constraints = json_dump_compact(cons);
	json_decref(cons);
	if (spec->has_autoscale) {
		json_t *a = autoscale_policy_json(&spec->autoscale);
		autoscale = a ? json_dump_compact(a) : NULL;
		json_decref(a);
		if (!autoscale) {
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
			goto out;
		}
	}
	const char *params[8] = {name, m->id, p->id, replicas, placement_policy_name(policy),
				 constraints, autoscale, standby};
	if ((rc = db_conn_acquire(&c, db, err)) || (rc = db_tx_begin(c, err)))
		goto out;
	rc = db_exec_one(&res, c,
			 "INSERT INTO deployments (name, model_id, pool_id, replicas, placement, "
			 "constraints, autoscale, standby_replicas, state_reason) VALUES ($1, $2::uuid, "
			 "$3::uuid, $4::integer, $5, $6::jsonb, $7::jsonb, $8::integer, 'created') "
			 "RETURNING id::text",
			 8, params, err);
	if (rc == NOVA_EEXISTS) {
		nova_err_set(err, NOVA_EEXISTS, "name", "a deployment named %s already exists", name);
		nova_err_set_hint(err, "choose another with \"name\"");
	}
	if (rc == 0)
		rc = dep_enqueue(c, PQgetvalue(res, 0, 0), audit, err);
	if (rc == 0 && audit && (!audit->object || !*audit->object)) {
		/* Unnamed in the request: the row names what it was given. The
		 * name is this function's, so the note forgets it after. */
		const char *asked = audit->object;
		audit->object = name;
		rc = audit_record_tx(c, audit, PQgetvalue(res, 0, 0), err);
		audit->object = asked;
	} else if (rc == 0) {
		rc = audit_record_tx(c, audit, PQgetvalue(res, 0, 0), err);
	}
	if (rc == 0)
		rc = db_tx_commit(c, err);
	else
		db_tx_rollback(c);
	if (rc == 0) {
		notify_signal(work);
		nova_log_kv(NOVA_LOG_INFO, "deployments", "deployment created", "deployment", name,
			    "model", m->name, "pool", p->name, "replicas", replicas, NULL);
		rc = dep_fetch(out, c, PQgetvalue(res, 0, 0), true, err);
	}
out:
	PQclear(res);
	if (c)
		db_conn_release(db, c);
	free(constraints);
	free(autoscale);
	model_free(m);
	pool_free(p);
	return rc;
}

/* One state-changing operation on a locked deployment row. */
enum dep_op { DEP_SCALE, DEP_STOP, DEP_START, DEP_PATCH };

struct dep_change {
	const char *ref;
	enum dep_op op;
	long long replicas;
	struct audit_note *audit;
	char id[37];
	const struct deployment_patch *patch; /* DEP_PATCH */
	const struct dep_new_model *new_model; /* DEP_PATCH with a new version */
};

/* An event that is no transition (kind "scaled", "autoscale"), in the
 * caller's transaction, the state as it stands on both sides. */
int dep_event_note(struct db_conn *c, const char *id, const char *kind, const char *reason,
			  struct nova_err *err)
{
	const char *params[3] = {id, kind, reason};
	return db_exec(NULL, c,
		       "INSERT INTO deployment_events (deployment_id, from_state, to_state, reason, kind) "
		       "SELECT id, state, state, $3, $2 FROM deployments WHERE id = $1::uuid",
		       3, params, err);
}

static int dep_autoscaled_refusal(const char *name, struct nova_err *err)
{
	int rc = nova_err_set(err, NOVA_ECONFLICT, "replicas",
			      "deployment %s is autoscaled: its replica count is the autoscaler's",
			      name);
	nova_err_set_hint(err,
				 "change the policy's bounds (PATCH {\"autoscale\": {...}}, novactl "
				 "deployment autoscale %s min=N,max=N,...) or turn it off "
				 "({\"autoscale\": null}, novactl deployment autoscale %s off) first",
				 name, name);
	return rc;
}

/* The PATCH of a locked deployment row: the policy and the count it
 * implies, or the count alone. */
static int dep_patch_tx(struct db_conn *c, struct dep_change *ch, const char *name, bool autoscaled,
			long long current, struct nova_err *err)
{
	const struct deployment_patch *pt = ch->patch;
	char n[16], reason[320];
	const char *params[3] = {ch->id, NULL, n};
	long long want = current;
	int rc;
	if (ch->new_model) {
		struct deployment_rollout_spec defaults;
		deployment_rollout_spec_defaults(&defaults);
		if ((rc = dep_rollout_start_tx(c, ch->id, ch->new_model,
					       pt->has_rollout ? &pt->rollout : &defaults, err)))
			return rc;
		if (!pt->has_standby && !pt->has_autoscale && !pt->has_replicas)
			return 0;
	}
	if (pt->has_standby) {
		/* The total checked against the count this PATCH leaves (or
		 * the current one); a standby change records no event, as a
		 * manual scale records none. */
		long long serving = pt->has_replicas ? pt->replicas : current;
		char sb[16];
		if (serving + pt->standby_replicas > DEPLOYMENT_MAX_REPLICAS)
			return nova_err_set(err, NOVA_EINVAL, "standby_replicas",
					    "replicas and standby_replicas together must be at most %d",
					    DEPLOYMENT_MAX_REPLICAS);
		snprintf(sb, sizeof(sb), "%lld", pt->standby_replicas);
		if ((rc = db_exec(NULL, c,
				  "UPDATE deployments SET standby_replicas = $2::integer, "
				  "generation = generation + CASE WHEN standby_replicas = $2::integer "
				  "THEN 0 ELSE 1 END, updated_at = now() WHERE id = $1::uuid",
				  2, (const char *[2]){ch->id, sb}, err)))
			return rc;
		if (!pt->has_autoscale && !pt->has_replicas)
			return 0;
	}
	if (!pt->has_autoscale && !pt->has_replicas)
		return 0;
	if (!pt->has_autoscale) {
		if (autoscaled)
			return dep_autoscaled_refusal(name, err);
		ch->op = DEP_SCALE;
		ch->replicas = pt->replicas;
		return 1; /* the caller scales */
	}
	if (pt->autoscale_off) {
		if (!autoscaled && !pt->has_replicas)
			return 0; /* already off: nothing to record */
		if (pt->has_replicas)
			want = pt->replicas;
		snprintf(n, sizeof(n), "%lld", want);
		if ((rc = db_exec(NULL, c,
				  "UPDATE deployments SET autoscale = NULL, replicas = $2::integer, "
				  "generation = generation + CASE WHEN replicas = $2::integer THEN 0 "
				  "ELSE 1 END, updated_at = now() WHERE id = $1::uuid",
				  2, (const char *[2]){ch->id, n}, err)))
			return rc;
		snprintf(reason, sizeof(reason), "autoscale off: replicas %lld -> %lld", current, want);
		if (want == current)
			snprintf(reason, sizeof(reason), "autoscale off: replicas stay at %lld", want);
	} else {
		const struct autoscale_policy *a = &pt->autoscale;
		json_t *pj = autoscale_policy_json(a);
		char *policy = pj ? json_dump_compact(pj) : NULL, why[64] = "";
		json_decref(pj);
		if (!policy)
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		if (pt->has_replicas) {
			if (pt->replicas < a->min_replicas || pt->replicas > a->max_replicas) {
				free(policy);
				return nova_err_set(err, NOVA_EINVAL, "replicas",
						    "replicas (%lld) must lie within autoscale.min_replicas "
						    "(%lld) and autoscale.max_replicas (%lld)",
						    pt->replicas, a->min_replicas, a->max_replicas);
			}
			want = pt->replicas;
			snprintf(why, sizeof(why), " (as asked)");
		} else if (current < a->min_replicas) {
			want = a->min_replicas;
			snprintf(why, sizeof(why), " (min_replicas)");
		} else if (current > a->max_replicas) {
			want = a->max_replicas;
			snprintf(why, sizeof(why), " (max_replicas)");
		}
		snprintf(n, sizeof(n), "%lld", want);
		params[1] = policy;
		rc = db_exec(NULL, c,
			     "UPDATE deployments SET autoscale = $2::jsonb, replicas = $3::integer, "
			     "generation = generation + CASE WHEN replicas = $3::integer THEN 0 ELSE 1 END, "
			     "updated_at = now() WHERE id = $1::uuid",
			     3, params, err);
		free(policy);
		if (rc)
			return rc;
		if (want == current)
			snprintf(reason, sizeof(reason), "autoscale %s: min %lld, max %lld; replicas %lld",
				 autoscaled ? "changed" : "on", a->min_replicas, a->max_replicas, want);
		else
			snprintf(reason, sizeof(reason),
				 "autoscale %s: min %lld, max %lld; replicas %lld -> %lld%s",
				 autoscaled ? "changed" : "on", a->min_replicas, a->max_replicas, current,
				 want, why);
	}
	/* A new policy starts with a fresh window and idle clock. */
	if ((rc = db_exec(NULL, c, "DELETE FROM autoscale_state WHERE deployment_id = $1::uuid", 1,
			  params, err)))
		return rc;
	return dep_event_note(c, ch->id, "autoscale", reason, err);
}

static int dep_change_tx(struct db_conn *c, void *arg, struct nova_err *err)
{
	struct dep_change *ch = arg;
	const char *params[2];
	PGresult *res = NULL;
	json_t *d;
	int rc;
	/* Lock the row first, then read the state the decision rests on. */
	params[0] = ch->ref;
	if ((rc = db_exec(NULL, c,
			  ids_is_uuid(ch->ref) ? "SELECT 1 FROM deployments WHERE id = $1::uuid FOR UPDATE"
					       : "SELECT 1 FROM deployments WHERE name = $1 FOR UPDATE",
			  1, params, err)))
		return rc;
	if ((rc = dep_fetch(&d, c, ch->ref, false, err)))
		return rc;
	snprintf(ch->id, sizeof(ch->id), "%s", json_string_value(json_object_get(d, "id")));
	char state[16], name[64];
	enum deployment_state st = DEPLOYMENT_PENDING;
	snprintf(state, sizeof(state), "%s", json_string_value(json_object_get(d, "state")));
	(void)deployment_state_parse(&st, state);
	snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(d, "name")));
	bool autoscaled = json_is_object(json_object_get(d, "autoscale"));
	long long current = json_integer_value(json_object_get(d, "replicas"));
	long long standby = json_integer_value(json_object_get(d, "standby_replicas"));
	json_decref(d);
	params[0] = ch->id;
	if (ch->op == DEP_PATCH) {
		rc = dep_patch_tx(c, ch, name, autoscaled, current, err);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			if ((rc = audit_record_tx(c, ch->audit, ch->id, err)))
				return rc;
			return dep_enqueue(c, ch->id, ch->audit, err);
		}
		/* rc 1: a count alone, scaled below (against the standby count
		 * this PATCH just set, if it set one). */
		if (ch->patch->has_standby)
			standby = ch->patch->standby_replicas;
	} else if (ch->op == DEP_SCALE && autoscaled) {
		return dep_autoscaled_refusal(name, err);
	}
	switch (ch->op) {
	case DEP_PATCH:
		break;
	case DEP_SCALE: {
		char n[16];
		if (ch->replicas + standby > DEPLOYMENT_MAX_REPLICAS)
			return nova_err_set(err, NOVA_EINVAL, "replicas",
					    "replicas and standby_replicas (%lld) together must be at most %d",
					    standby, DEPLOYMENT_MAX_REPLICAS);
		snprintf(n, sizeof(n), "%lld", ch->replicas);
		params[1] = n;
		rc = db_exec(NULL, c,
			     "UPDATE deployments SET replicas = $2::integer, generation = generation + 1, "
			     "updated_at = now() WHERE id = $1::uuid",
			     2, params, err);
		break;
	}
	case DEP_STOP:
		if (st == DEPLOYMENT_STOPPING || st == DEPLOYMENT_STOPPED)
			return nova_err_set(err, NOVA_ECONFLICT, "deployment", "deployment %s is already %s",
					    name, state);
		rc = db_exec(NULL, c,
			     "UPDATE deployments SET state = 'stopping', state_reason = 'stop requested', "
			     "generation = generation + 1 WHERE id = $1::uuid",
			     1, params, err);
		if (rc)
			return rc;
		/* With no replica left to stop, stopping is already done. */
		if ((rc = db_exec_one(&res, c,
				      "SELECT count(*) FROM replicas WHERE deployment_id = $1::uuid "
				      "AND state <> 'stopped'", 1, params, err)))
			return rc;
		bool idle = atoll(PQgetvalue(res, 0, 0)) == 0;
		PQclear(res);
		if (idle)
			rc = db_exec(NULL, c,
				     "UPDATE deployments SET state = 'stopped', state_reason = "
				     "'no replicas running' WHERE id = $1::uuid",
				     1, params, err);
		break;
	case DEP_START:
		if (st != DEPLOYMENT_STOPPED)
			return nova_err_set(err, NOVA_ECONFLICT, "deployment",
					    "deployment %s is %s; only a stopped deployment starts", name,
					    state);
		rc = db_exec(NULL, c,
			     "UPDATE deployments SET state = 'pending', state_reason = 'start requested', "
			     "generation = generation + 1 WHERE id = $1::uuid",
			     1, params, err);
		break;
	}
	if (rc == 0)
		rc = audit_record_tx(c, ch->audit, ch->id, err);
	return rc ? rc : dep_enqueue(c, ch->id, ch->audit, err);
}

static int dep_change(json_t **out, struct db_pool *db, struct notify *work, struct dep_change *ch,
		      struct nova_err *err)
{
	int rc = db_tx_run(db, dep_change_tx, ch, err);
	*out = NULL;
	if (rc == 0)
		notify_signal(work);
	return rc ? rc : deployment_get(out, db, ch->id, err);
}

int deployment_scale(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		     long long replicas, struct audit_note *audit, struct nova_err *err)
{
	struct dep_change ch = {ref, DEP_SCALE, replicas, audit, "", NULL, NULL};
	*out = NULL;
	if (replicas < 0 || replicas > DEPLOYMENT_MAX_REPLICAS)
		return nova_err_set(err, NOVA_EINVAL, "replicas", "replicas must be between 0 and %d",
				    DEPLOYMENT_MAX_REPLICAS);
	return dep_change(out, db, work, &ch, err);
}

int deployment_patch_from_json(struct deployment_patch *out, const json_t *body,
			       struct nova_err *err)
{
	json_t *autoscale = NULL, *rollout = NULL;
	const struct json_field fields[] = {
		{.name = "model", .kind = JSON_KIND_STRING, .out = &out->model, .max_len = 200},
		{.name = "model_version", .kind = JSON_KIND_STRING, .out = &out->model_version,
		 .max_len = 64},
		{.name = "rollout", .kind = JSON_KIND_OBJECT, .out = &rollout},
		{.name = "replicas", .kind = JSON_KIND_INT, .out = &out->replicas,
		 .present = &out->has_replicas, .min = 0, .max = DEPLOYMENT_MAX_REPLICAS},
		{.name = "standby_replicas", .kind = JSON_KIND_INT, .out = &out->standby_replicas,
		 .present = &out->has_standby, .min = 0, .max = DEPLOYMENT_MAX_REPLICAS},
		{.name = "autoscale", .kind = JSON_KIND_ANY, .out = &autoscale},
	};
	bool has;
	int rc;
	memset(out, 0, sizeof(*out));
	rc = dep_decode_with_policy(body, fields, sizeof(fields) / sizeof(fields[0]), &autoscale,
				    &out->autoscale, &has, &out->autoscale_off, err);
	out->has_autoscale = has || out->autoscale_off;
	if (rc)
		return rc;
	if (out->model && out->model_version)
		return nova_err_set(err, NOVA_EINVAL, "model_version",
				    "give the new version as \"model\" or as \"model_version\", not both");
	if (rollout && !out->model && !out->model_version)
		return nova_err_set(err, NOVA_EINVAL, "rollout",
				    "\"rollout\" goes with a new version (\"model\" or \"model_version\")");
	if (rollout) {
		out->has_rollout = true;
		if ((rc = deployment_rollout_spec_parse(&out->rollout, rollout, err)))
			return rc;
	}
	if (!out->has_replicas && !out->has_autoscale && !out->has_standby && !out->model &&
	    !out->model_version)
		rc = nova_err_set(err, NOVA_EINVAL, "replicas",
				  "the body changes nothing: give \"model\", \"model_version\", "
				  "\"replicas\", \"standby_replicas\" or \"autoscale\"");
	return rc;
}

int deployment_update(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		      const struct deployment_patch *patch, struct audit_note *audit,
		      struct nova_err *err)
{
	struct dep_change ch = {ref, DEP_PATCH, 0, audit, "", patch, NULL};
	struct dep_new_model nm;
	int rc;
	*out = NULL;
	if (patch->model || patch->model_version) {
		/* Resolved and checked before the transaction: the can-never-fit
		 * check may ask the provider, not under the row's lock. */
		if ((rc = dep_rollout_resolve(&nm, db, ref, patch, err)))
			return rc;
		ch.new_model = &nm;
	}
	return dep_change(out, db, work, &ch, err);
}

int deployment_stop(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		    struct audit_note *audit, struct nova_err *err)
{
	struct dep_change ch = {ref, DEP_STOP, 0, audit, "", NULL, NULL};
	return dep_change(out, db, work, &ch, err);
}

int deployment_start(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		     struct audit_note *audit, struct nova_err *err)
{
	struct dep_change ch = {ref, DEP_START, 0, audit, "", NULL, NULL};
	return dep_change(out, db, work, &ch, err);
}

struct dep_delete {
	const char *ref;
	struct audit_note *audit;
};

static int dep_delete_tx(struct db_conn *c, void *arg, struct nova_err *err)
{
	struct dep_delete *dd = arg;
	PGresult *res = NULL;
	json_t *d = NULL;
	int rc = dep_fetch(&d, c, dd->ref, false, err);
	if (rc)
		return rc;
	const char *params[1] = {json_string_value(json_object_get(d, "id"))};
	rc = db_exec(&res, c,
		     "DELETE FROM deployments WHERE id = $1::uuid AND state = 'stopped' RETURNING id",
		     1, params, err);
	if (rc == 0 && PQntuples(res) == 0) {
		rc = nova_err_set(err, NOVA_ECONFLICT, "deployment", "deployment %s is %s",
				  json_string_value(json_object_get(d, "name")),
				  json_string_value(json_object_get(d, "state")));
		nova_err_set_hint(err, "stop it first; only a stopped deployment is deleted");
	}
	if (rc == 0)
		rc = db_exec(NULL, c, "DELETE FROM work_items WHERE kind = 'deployment' AND "
				      "subject_id = $1::uuid", 1, params, err);
	if (rc == 0)
		rc = audit_record_tx(c, dd->audit, params[0], err);
	PQclear(res);
	json_decref(d);
	return rc;
}

int deployment_delete(struct db_pool *db, const char *ref, struct audit_note *audit,
		      struct nova_err *err)
{
	struct dep_delete dd = {ref, audit};
	return db_tx_run(db, dep_delete_tx, &dd, err);
}

int deployment_replicas_on_node(json_t **out, struct db_pool *db, const char *node_id,
				struct nova_err *err)
{
	const char *params[1] = {node_id};
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	rc = db_pool_exec(&res, db,
		     "SELECT d.name, r.id, r.ordinal, r.state, rp.stage, rp.accelerators "
		     "FROM replica_placements rp JOIN replicas r ON r.id = rp.replica_id "
		     "JOIN deployments d ON d.id = r.deployment_id WHERE rp.node_id = $1::uuid "
		     "ORDER BY d.name, r.ordinal, rp.stage",
		     1, params, err);
	if (rc)
		return rc;
	*out = json_array();
	for (int i = 0; *out && i < PQntuples(res); i++)
		json_array_append_new(*out, json_pack("{s:s, s:s, s:I, s:s, s:I, s:I}", "deployment",
						      PQgetvalue(res, i, 0), "replica", PQgetvalue(res, i, 1),
						      "ordinal", (json_int_t)atoll(PQgetvalue(res, i, 2)),
						      "state", PQgetvalue(res, i, 3), "stage",
						      (json_int_t)atoll(PQgetvalue(res, i, 4)), "accelerators",
						      (json_int_t)atoll(PQgetvalue(res, i, 5))));
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

static bool dep_reports_have_exit(const json_t *reports)
{
	size_t i;
	json_t *r;
	json_array_foreach(reports, i, r)
		if (json_object_get(r, "exit"))
			return true;
	return false;
}

/* {"SIGHUP",...}: signal names by number, for the events' reasons. */
static void dep_signal_names(char *out, size_t len)
{
	size_t o = 0;
	out[o++] = '{';
	for (int sig = 1; sig <= 64 && o + 16 < len; sig++) {
		const char *a = sigabbrev_np(sig);
		o += (size_t)snprintf(out + o, len - o, "%s\"%s%s\"", sig > 1 ? "," : "", a ? "SIG" : "",
				      a ? a : "");
	}
	snprintf(out + o, len - o, "}");
}

/* The engines' exits in the reports (sql/0020): each recorded once as a
 * 'replica' event of its deployment, in the report's transaction. */
static int dep_exits_record(struct db_conn *c, const char *node_id, const char *reports_text,
			    struct nova_err *err)
{
	char names[1024];
	dep_signal_names(names, sizeof(names));
	const char *params[3] = {node_id, reports_text, names};
	return db_exec(NULL, c,
		"WITH x AS (SELECT replica_id, stage, (exit->>'at_ms')::bigint AS at_ms, "
		"(exit->>'code')::int AS code, (exit->>'signal')::int AS sig, "
		"coalesce((exit->>'restarts')::int, 0) AS restarts "
		"FROM jsonb_to_recordset($2::jsonb) AS v(replica_id uuid, stage integer, exit jsonb) "
		"WHERE exit IS NOT NULL), "
		"up AS (UPDATE replica_placements rp SET last_exit_ms = x.at_ms FROM x "
		"WHERE rp.node_id = $1::uuid AND rp.replica_id = x.replica_id "
		"AND rp.stage = coalesce(x.stage, rp.stage) "
		"AND (rp.last_exit_ms IS NULL OR rp.last_exit_ms < x.at_ms) "
		"RETURNING rp.replica_id, rp.stage, x.code, x.sig, x.restarts, x.at_ms) "
		"INSERT INTO deployment_events (deployment_id, from_state, to_state, reason, kind) "
		"SELECT r.deployment_id, d.state, d.state, 'replica ' || r.ordinal || "
		"CASE WHEN up.stage > 0 THEN ' (stage ' || up.stage || ')' ELSE '' END || "
		"CASE WHEN up.sig IS NOT NULL THEN ' killed by signal ' || "
		"coalesce(nullif(($3::text[])[up.sig], ''), up.sig::text) "
		"ELSE ' exited with code ' || up.code END || '; restart ' || up.restarts, 'replica' "
		"FROM up JOIN replicas r ON r.id = up.replica_id "
		"JOIN deployments d ON d.id = r.deployment_id ORDER BY up.at_ms",
		3, params, err);
}

int deployment_replicas_report(struct db_pool *db, const char *node_id, long long seq,
			       const json_t *reports, struct nova_err *err)
{
	char *text, seq_text[24];
	struct db_conn *c;
	int rc;
	if (!json_is_array(reports) || json_array_size(reports) == 0)
		return 0;
	if (!(text = json_dump_compact(reports)))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	snprintf(seq_text, sizeof(seq_text), "%lld", seq);
	const char *params[3] = {node_id, text, seq_text};
	const char *lock_params[1] = {text};
	if ((rc = db_conn_acquire(&c, db, err)) == 0) {
		if ((rc = db_tx_begin(c, err))) {
			db_conn_release(db, c);
			free(text);
			return rc;
		}
		/* The replicas first, in id order, as the worker takes them
		 * (replicas, then their placements): a report and a stop of the
		 * same replica cannot deadlock. */
		rc = db_exec(NULL, c,
			     "SELECT 1 FROM replicas WHERE id IN (SELECT (e->>'replica_id')::uuid "
			     "FROM jsonb_array_elements($1::jsonb) AS e) ORDER BY id FOR UPDATE",
			     1, lock_params, err);
		/* Reports land on the reporting node's placements (a report
		 * without a stage: every stage there); the replica is then
		 * recomputed from all its stages, the new values laid over the
		 * stored ones (one statement: CTEs see the same snapshot). */
		if (rc == 0)
			rc = db_exec(NULL, c,
			     "WITH v AS (SELECT replica_id, stage, CASE state WHEN 'ready' THEN 'ready' "
			     "WHEN 'failed' THEN 'failed' ELSE 'starting' END AS state, endpoint "
			     "FROM jsonb_to_recordset($2::jsonb) "
			     "AS x(replica_id uuid, stage integer, state text, endpoint text)), "
			     "mine AS (SELECT DISTINCT ON (rp.replica_id, rp.stage) rp.replica_id, rp.stage, "
			     "v.state, v.endpoint FROM replica_placements rp JOIN v "
			     "ON v.replica_id = rp.replica_id AND (v.stage IS NULL OR v.stage = rp.stage) "
			     "WHERE rp.node_id = $1::uuid "
			     /* Only the newest heartbeat's report: another novad may have
			      * written a newer one (reports of one replica are taken one
			      * at a time, under the lock above, so this reads what the
			      * last report's flush wrote). */
			     "AND $3::bigint >= coalesce((SELECT h.last_seq FROM node_heartbeats h "
			     "WHERE h.node_id = $1::uuid), -1) "
			     "ORDER BY rp.replica_id, rp.stage, v.stage NULLS LAST), "
			     "pl AS (UPDATE replica_placements rp SET state = m.state, endpoint = m.endpoint "
			     "FROM mine m WHERE rp.replica_id = m.replica_id AND rp.stage = m.stage "
			     "AND rp.node_id = $1::uuid AND (rp.state IS DISTINCT FROM m.state "
			     "OR rp.endpoint IS DISTINCT FROM m.endpoint) RETURNING 1), "
			     "agg AS (SELECT rp.replica_id, CASE "
			     "WHEN bool_or(coalesce(m.state, rp.state) = 'failed') THEN 'failed' "
			     "WHEN bool_and(coalesce(m.state, rp.state) = 'ready') THEN 'ready' "
			     "ELSE 'starting' END AS state, "
			     "(array_agg(CASE WHEN m.replica_id IS NULL THEN rp.endpoint ELSE m.endpoint END "
			     "ORDER BY rp.stage DESC))[1] AS endpoint, count(*) AS stages "
			     "FROM replica_placements rp LEFT JOIN mine m ON m.replica_id = rp.replica_id "
			     "AND m.stage = rp.stage AND rp.node_id = $1::uuid "
			     "WHERE rp.replica_id IN (SELECT replica_id FROM mine) GROUP BY rp.replica_id), "
			     "changed AS (UPDATE replicas r SET state = a.state, "
			     "state_reason = CASE WHEN a.stages = 1 THEN 'reported by the node' "
			     "WHEN a.state = 'ready' THEN 'every stage reported ready' "
			     "WHEN a.state = 'failed' THEN 'a stage reported failed' "
			     "ELSE 'waiting for every stage to be ready' END, "
			     "endpoint = a.endpoint, updated_at = now() "
			     "FROM agg a WHERE r.id = a.replica_id AND r.state IN ('placed', 'starting', 'ready') "
			     "AND (r.state IS DISTINCT FROM a.state OR r.endpoint IS DISTINCT FROM a.endpoint) "
			     "RETURNING r.deployment_id) "
			     "INSERT INTO work_items (kind, subject_id) SELECT DISTINCT 'deployment', "
			     "deployment_id FROM changed "
			     /* A pass under way gets another (sql/0008). */
			     "ON CONFLICT (kind, subject_id) WHERE state = 'queued' "
			     "DO UPDATE SET requests = work_items.requests + 1",
			     3, params, err);
		if (rc == 0 && dep_reports_have_exit(reports))
			rc = dep_exits_record(c, node_id, text, err);
		if (rc == 0)
			rc = db_tx_commit(c, err);
		else
			db_tx_rollback(c);
		db_conn_release(db, c);
	}
	free(text);
	return rc;
}

int deployment_replica_locate(struct deployment_replica_place *out, struct db_pool *db,
			      const char *ref, long long ordinal, long long stage,
			      struct nova_err *err)
{
	char ord[24];
	PGresult *res = NULL;
	int rc, row = -1, n;
	memset(out, 0, sizeof(*out));
	snprintf(ord, sizeof(ord), "%lld", ordinal);
	const char *params[2] = {ref, ordinal >= 0 ? ord : NULL};
	/* The replica asked for (no ordinal: the lowest, the first or only
	 * one) and its placements, stage by stage; no replica row: none such. */
	rc = db_pool_exec(&res, db,
		ids_is_uuid(ref)
		? "SELECT d.name, r.id, r.ordinal, r.state, rp.stage, rp.node_id FROM deployments d "
		  "LEFT JOIN replicas r ON r.id = (SELECT id FROM replicas WHERE deployment_id = d.id "
		  "AND ordinal = coalesce($2::int, (SELECT min(ordinal) FROM replicas "
		  "WHERE deployment_id = d.id)) ORDER BY (model_id = d.model_id) DESC, revision DESC "
		  "LIMIT 1) "
		  "LEFT JOIN replica_placements rp ON rp.replica_id = r.id WHERE d.id = $1::uuid "
		  "ORDER BY rp.stage, rp.node_id"
		: "SELECT d.name, r.id, r.ordinal, r.state, rp.stage, rp.node_id FROM deployments d "
		  "LEFT JOIN replicas r ON r.id = (SELECT id FROM replicas WHERE deployment_id = d.id "
		  "AND ordinal = coalesce($2::int, (SELECT min(ordinal) FROM replicas "
		  "WHERE deployment_id = d.id)) ORDER BY (model_id = d.model_id) DESC, revision DESC "
		  "LIMIT 1) "
		  "LEFT JOIN replica_placements rp ON rp.replica_id = r.id WHERE d.name = $1 "
		  "ORDER BY rp.stage, rp.node_id",
		2, params, err);
	if (rc)
		return rc;
	n = PQntuples(res);
	if (n == 0) {
		PQclear(res);
		return nova_err_set(err, NOVA_ENOTFOUND, "deployment", "no deployment named or with id \"%s\"",
				    ref);
	}
	if (PQgetisnull(res, 0, 1)) {
		if (ordinal >= 0)
			rc = nova_err_set(err, NOVA_ENOTFOUND, "replica", "deployment %s has no replica %lld",
					  PQgetvalue(res, 0, 0), ordinal);
		else
			rc = nova_err_set(err, NOVA_ENOTFOUND, "replica", "deployment %s has no replicas",
					  PQgetvalue(res, 0, 0));
		nova_err_set_hint(err, "novactl deployment get %s lists its replicas", PQgetvalue(res, 0, 0));
		PQclear(res);
		return rc;
	}
	snprintf(out->replica_id, sizeof(out->replica_id), "%s", PQgetvalue(res, 0, 1));
	out->ordinal = atoll(PQgetvalue(res, 0, 2));
	snprintf(out->state, sizeof(out->state), "%s", PQgetvalue(res, 0, 3));
	for (int i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 4))
			continue;
		long long st = atoll(PQgetvalue(res, i, 4));
		out->stages = st + 1 > out->stages ? st + 1 : out->stages;
		if ((stage < 0 && (row < 0 || st > out->stage)) || (stage >= 0 && st == stage && row < 0)) {
			row = i;
			out->stage = st;
		}
	}
	if (row < 0) {
		if (out->stages == 0)
			rc = nova_err_set(err, NOVA_EUNAVAIL, "replica",
					  "replica %lld of %s is not placed on a node (it is %s)", out->ordinal,
					  PQgetvalue(res, 0, 0), out->state);
		else
			rc = nova_err_set(err, NOVA_ENOTFOUND, "stage", "replica %lld of %s has no stage %lld",
					  out->ordinal, PQgetvalue(res, 0, 0), stage);
		PQclear(res);
		return rc;
	}
	snprintf(out->node_id, sizeof(out->node_id), "%s", PQgetvalue(res, row, 5));
	PQclear(res);
	return 0;
}

int deployment_assignment_digests(json_t **out, struct db_pool *db, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	rc = db_pool_exec(&res, db,
		     "SELECT rp.node_id, md5(string_agg(r.id::text || ':' || rp.stage || ':' || "
		     "d.generation, ',' ORDER BY r.id, rp.stage)) "
		     "FROM replica_placements rp JOIN replicas r ON r.id = rp.replica_id "
		     "JOIN deployments d ON d.id = r.deployment_id "
		     "WHERE d.state NOT IN ('stopping', 'stopped') GROUP BY rp.node_id",
		     0, NULL, err);
	if (rc)
		return rc;
	*out = json_object();
	for (int i = 0; *out && i < PQntuples(res); i++)
		json_object_set_new(*out, PQgetvalue(res, i, 0), json_string(PQgetvalue(res, i, 1)));
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

int deployment_node_assignments(json_t **out, struct db_pool *db, const char *node_id,
				struct nova_err *err)
{
	const char *params[1] = {node_id};
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	rc = db_pool_exec(&res, db,
		     "SELECT r.id, d.name, m.name, m.version, m.kind, rp.stage, "
		     "m.spec->'stages'->rp.stage->>'name', rp.accelerators, m.spec::text, "
		     "jsonb_array_length(m.spec->'stages') "
		     "FROM replica_placements rp JOIN replicas r ON r.id = rp.replica_id "
		     /* Each replica runs its own version (a rollout mixes them). */
		     "JOIN deployments d ON d.id = r.deployment_id JOIN models m ON m.id = r.model_id "
		     "WHERE rp.node_id = $1::uuid AND d.state NOT IN ('stopping', 'stopped') "
		     "ORDER BY r.id, rp.stage",
		     1, params, err);
	if (rc)
		return rc;
	*out = json_array();
	for (int i = 0; *out && i < PQntuples(res); i++) {
		json_t *spec = json_loads(PQgetvalue(res, i, 8), 0, NULL);
		json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:O}", "replica_id",
				      PQgetvalue(res, i, 0), "deployment", PQgetvalue(res, i, 1), "model",
				      PQgetvalue(res, i, 2), "version", PQgetvalue(res, i, 3), "kind",
				      PQgetvalue(res, i, 4), "stage", (json_int_t)atoll(PQgetvalue(res, i, 5)),
				      "stages", (json_int_t)atoll(PQgetvalue(res, i, 9)), "stage_name", PQgetvalue(res, i, 6), "accelerators",
				      (json_int_t)atoll(PQgetvalue(res, i, 7)), "engine",
				      json_object_get(spec, "engine"));
		if (a && json_object_get(spec, "adapters"))
			json_object_set(a, "adapters", json_object_get(spec, "adapters"));
		if (a && json_object_get(spec, "max_adapters"))
			json_object_set(a, "max_adapters", json_object_get(spec, "max_adapters"));
		json_decref(spec);
		if (a)
			json_array_append_new(*out, a);
	}
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

/* --- for the autoscaler ------------------------------------------------------------- */

/* Accelerators one replica of the model takes: the sum over its stages. */
#define DEP_REPLICA_ACCELS(model) \
	"(SELECT coalesce(sum((st->>'accelerators')::bigint), 0) " \
	"FROM jsonb_array_elements(" model ".spec->'stages') st)"

int deployment_autoscaled_list(struct deployment_autoscaled **out, size_t *n,
			       struct db_pool *db, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n = 0;
	/* quota_max: what the pool's accelerator quota leaves after the other
	 * deployments' wanted and standby replicas and this one's standby, in
	 * this one's replicas. */
	rc = db_pool_exec(
		&res, db,
		"SELECT d.id, d.name, m.name AS model, d.replicas, d.autoscale::text AS autoscale, "
		"coalesce(s.memory::text, '{}') AS memory, "
		"coalesce((SELECT json_object_agg(r.id, (SELECT rp.node_id FROM replica_placements rp "
		"WHERE rp.replica_id = r.id ORDER BY rp.stage DESC LIMIT 1)) FROM replicas r "
		"WHERE r.deployment_id = d.id AND r.state = 'ready' AND r.ordinal < d.replicas), "
		"'{}')::text AS ready, "
		"CASE WHEN p.max_accelerators IS NULL OR per.n = 0 THEN -1 ELSE "
		"greatest(greatest(0, p.max_accelerators - coalesce((SELECT sum((o.replicas + "
		"o.standby_replicas) * "
		DEP_REPLICA_ACCELS("om") ") FROM deployments o JOIN models om ON om.id = o.model_id "
		"WHERE o.pool_id = d.pool_id AND o.id <> d.id AND o.state NOT IN ('stopping', 'stopped')), "
		"0)) / per.n - d.standby_replicas, 0) END AS quota_max "
		"FROM deployments d JOIN models m ON m.id = d.model_id JOIN pools p ON p.id = d.pool_id "
		"CROSS JOIN LATERAL (SELECT " DEP_REPLICA_ACCELS("m") " AS n) per "
		"LEFT JOIN autoscale_state s ON s.deployment_id = d.id "
		"WHERE d.autoscale IS NOT NULL "
		"AND d.state IN ('pending', 'deploying', 'running', 'degraded') ORDER BY d.name",
		0, NULL, err);
	if (rc)
		return rc;
	int rows = PQntuples(res);
	if (rows == 0) {
		PQclear(res);
		return 0;
	}
	struct deployment_autoscaled *list = calloc((size_t)rows, sizeof(*list));
	if (!list) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	size_t k = 0;
	for (int i = 0; i < rows; i++) {
		struct deployment_autoscaled *a = &list[k];
		struct nova_err ignored;
		json_t *policy = json_loads(db_value(res, i, "autoscale"), 0, NULL);
		json_t *memory = json_loads(db_value(res, i, "memory"), 0, NULL);
		bool ok = policy && autoscale_policy_parse(&a->policy, policy, DEPLOYMENT_MAX_REPLICAS,
							   &ignored) == 0;
		json_decref(policy);
		autoscale_memory_from_json(&a->memory, memory);
		json_decref(memory);
		a->ready = json_loads(db_value(res, i, "ready"), 0, NULL);
		if (!ok || !json_is_object(a->ready)) {
			/* A stored policy this novad cannot read (a newer novad's):
			 * left alone rather than scaled on a guess. */
			json_decref(a->ready);
			memset(a, 0, sizeof(*a));
			continue;
		}
		snprintf(a->id, sizeof(a->id), "%s", db_value(res, i, "id"));
		snprintf(a->name, sizeof(a->name), "%s", db_value(res, i, "name"));
		snprintf(a->model, sizeof(a->model), "%s", db_value(res, i, "model"));
		a->replicas = atoll(db_value(res, i, "replicas"));
		a->quota_max = atoll(db_value(res, i, "quota_max"));
		k++;
	}
	PQclear(res);
	if (k == 0) {
		free(list);
		return 0;
	}
	*out = list;
	*n = k;
	return 0;
}

void deployment_autoscaled_free(struct deployment_autoscaled *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		json_decref(list[i].ready);
	free(list);
}

struct dep_as_record {
	const char *id;
	long long expect;
	const struct autoscale_decision *d;
	const char *memory;
	bool applied, scaled;
};

static int dep_as_record_tx(struct db_conn *c, void *arg, struct nova_err *err)
{
	struct dep_as_record *r = arg;
	char expect[24], desired[24], rec[24];
	PGresult *res = NULL;
	int rc;
	snprintf(expect, sizeof(expect), "%lld", r->expect);
	snprintf(desired, sizeof(desired), "%lld", r->d->desired);
	snprintf(rec, sizeof(rec), "%lld", r->d->recommended);
	/* The row locked, or skipped: a PATCH, stop or the worker holds it,
	 * and the next tick decides on what they leave. */
	const char *p1[2] = {r->id, expect};
	if ((rc = db_exec(&res, c,
			  "SELECT 1 FROM deployments WHERE id = $1::uuid AND autoscale IS NOT NULL "
			  "AND replicas = $2::integer "
			  "AND state IN ('pending', 'deploying', 'running', 'degraded') "
			  "FOR UPDATE SKIP LOCKED",
			  2, p1, err)))
		return rc;
	bool ours = PQntuples(res) == 1;
	PQclear(res);
	if (!ours)
		return 0;
	bool scale = r->d->desired != r->expect;
	const char *p2[4] = {r->id, r->memory, rec, scale ? r->d->reason : ""};
	if ((rc = db_exec(NULL, c,
			  "INSERT INTO autoscale_state (deployment_id, memory, recommended, last_reason, "
			  "decided_at, updated_at) VALUES ($1::uuid, $2::jsonb, $3::integer, $4, "
			  "CASE WHEN $4 = '' THEN NULL ELSE now() END, now()) "
			  "ON CONFLICT (deployment_id) DO UPDATE SET memory = EXCLUDED.memory, "
			  "recommended = EXCLUDED.recommended, updated_at = now(), "
			  "last_reason = CASE WHEN $4 = '' THEN autoscale_state.last_reason ELSE $4 END, "
			  "decided_at = CASE WHEN $4 = '' THEN autoscale_state.decided_at ELSE now() END",
			  4, p2, err)))
		return rc;
	r->applied = true;
	if (!scale)
		return 0;
	const char *p3[2] = {r->id, desired};
	if ((rc = db_exec(NULL, c,
			  "UPDATE deployments SET replicas = $2::integer, generation = generation + 1, "
			  "updated_at = now() WHERE id = $1::uuid",
			  2, p3, err)) ||
	    (rc = dep_event_note(c, r->id, "scaled", r->d->reason, err)) ||
	    (rc = dep_enqueue(c, r->id, NULL, err)))
		return rc;
	r->scaled = true;
	return 0;
}

int deployment_autoscale_record(bool *applied, struct db_pool *db, struct notify *work,
				const char *id, long long expect_replicas,
				const struct autoscale_decision *decision,
				const struct autoscale_memory *memory, struct nova_err *err)
{
	json_t *mj = autoscale_memory_json(memory);
	char *mem = mj ? json_dump_compact(mj) : NULL;
	struct dep_as_record r = {id, expect_replicas, decision, mem, false, false};
	int rc;
	json_decref(mj);
	*applied = false;
	if (!mem)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	rc = db_tx_run(db, dep_as_record_tx, &r, err);
	free(mem);
	if (rc)
		return rc;
	*applied = r.applied;
	if (r.scaled)
		notify_signal(work);
	return 0;
}
