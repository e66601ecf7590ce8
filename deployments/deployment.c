#include "deployments/deployment.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "deployments/placement.h"
#include "models/model.h"
#include "pools/pool.h"

int deployment_spec_from_json(struct deployment_spec *out, const json_t *body,
			      struct nova_err *err)
{
	json_t *labels = NULL;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .out = &out->name, .max_len = 63},
		{.name = "model", .kind = JSON_KIND_STRING, .required = true, .out = &out->model,
		 .max_len = 200},
		{.name = "pool", .kind = JSON_KIND_STRING, .required = true, .out = &out->pool,
		 .max_len = 63},
		{.name = "replicas", .kind = JSON_KIND_INT, .out = &out->replicas, .min = 0,
		 .max = DEPLOYMENT_MAX_REPLICAS},
		{.name = "placement", .kind = JSON_KIND_STRING, .out = &out->placement, .max_len = 16},
		{.name = "labels", .kind = JSON_KIND_OBJECT, .out = &labels},
	};
	bool ok;
	int rc;
	memset(out, 0, sizeof(*out));
	out->replicas = 1;
	if ((rc = json_decode_object(body, fields, 6, "", err)))
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
	out->generation = atoll(db_value(res, row, "generation"));
	constraints = json_loads(db_value(res, row, "constraints"), 0, NULL);
	out->labels = json_incref(json_object_get(constraints, "labels"));
	json_decref(constraints);
	if (!out->labels)
		out->labels = json_object();
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
			  "SELECT id, name, model_id, pool_id, state, replicas, generation, placement, "
			  "constraints::text AS constraints FROM deployments WHERE id = $1::uuid",
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
	"d.id, d.name, d.model_id, d.pool_id, d.replicas, d.placement, "                    \
	"d.constraints::text AS constraints, d.state, d.state_reason, d.generation, "       \
	"m.name AS model_name, m.version AS model_version, m.kind AS model_kind, "          \
	"p.name AS pool_name, " DB_TS("d.created_at") " AS created_at, "                    \
	DB_TS("d.updated_at") " AS updated_at, "                                            \
	"(SELECT count(*) FROM replicas r WHERE r.deployment_id = d.id AND r.state = 'ready') " \
	"AS ready_replicas "                                                                \
	"FROM deployments d JOIN models m ON m.id = d.model_id JOIN pools p ON p.id = d.pool_id "

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
			 "WHERE rp.replica_id = r.id), '[]')::text "
			 "FROM replicas r WHERE r.deployment_id = $1::uuid ORDER BY r.ordinal",
			 1, params, err);
	if (rc)
		return rc;
	arr = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *placements = json_loads(PQgetvalue(res, i, 5), 0, NULL);
		json_array_append_new(
			arr, json_pack("{s:s, s:I, s:s, s:s, s:o, s:o}", "id", PQgetvalue(res, i, 0),
				       "ordinal", (json_int_t)atoll(PQgetvalue(res, i, 1)), "state",
				       PQgetvalue(res, i, 2), "reason", PQgetvalue(res, i, 3), "endpoint",
				       *PQgetvalue(res, i, 4) ? json_string(PQgetvalue(res, i, 4))
							      : json_null(),
				       "placements", placements ? placements : json_array()));
	}
	PQclear(res);
	json_object_set_new(d, "replica_list", arr);
	rc = db_exec(&res, c,
		     "SELECT coalesce(from_state, ''), to_state, reason, " DB_TS("at") " FROM "
		     "(SELECT * FROM deployment_events WHERE deployment_id = $1::uuid "
		     "ORDER BY id DESC LIMIT 20) e ORDER BY id",
		     1, params, err);
	if (rc)
		return rc;
	arr = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(arr, json_pack("{s:o, s:s, s:s, s:s}", "from",
						     *PQgetvalue(res, i, 0) ? json_string(PQgetvalue(res, i, 0))
									    : json_null(),
						     "to", PQgetvalue(res, i, 1), "reason",
						     PQgetvalue(res, i, 2), "at", PQgetvalue(res, i, 3)));
	PQclear(res);
	json_object_set_new(d, "events", arr);
	return 0;
}

static int dep_fetch(json_t **out, struct db_conn *c, const char *ref, bool details,
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
	DB_TS("e.at") ", (extract(epoch FROM e.at) * 1000000)::bigint "                         \
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
				      PQgetvalue(res, r, 3), "kind", "transition", "from",
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
static int dep_feasible(const struct model *m, const struct pool *p, const json_t *labels,
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
static int dep_enqueue(struct db_conn *c, const char *id, const struct audit_note *audit,
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
	char name[64], replicas[16], *constraints = NULL;
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
	json_t *cons = spec->labels ? json_pack("{s:O}", "labels", spec->labels)
				    : json_pack("{s:{}}", "labels");
	constraints = json_dump_compact(cons);
	json_decref(cons);
	const char *params[6] = {name, m->id, p->id, replicas, placement_policy_name(policy),
				 constraints};
	if ((rc = db_conn_acquire(&c, db, err)) || (rc = db_tx_begin(c, err)))
		goto out;
	rc = db_exec_one(&res, c,
			 "INSERT INTO deployments (name, model_id, pool_id, replicas, placement, "
			 "constraints, state_reason) VALUES ($1, $2::uuid, $3::uuid, $4::integer, $5, "
			 "$6::jsonb, 'created') RETURNING id::text",
			 6, params, err);
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
	model_free(m);
	pool_free(p);
	return rc;
}

/* One state-changing operation on a locked deployment row. */
enum dep_op { DEP_SCALE, DEP_STOP, DEP_START };

struct dep_change {
	const char *ref;
	enum dep_op op;
	long long replicas;
	struct audit_note *audit;
	char id[37];
};

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
	json_decref(d);
	params[0] = ch->id;
	switch (ch->op) {
	case DEP_SCALE: {
		char n[16];
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
	struct dep_change ch = {ref, DEP_SCALE, replicas, audit, ""};
	*out = NULL;
	if (replicas < 0 || replicas > DEPLOYMENT_MAX_REPLICAS)
		return nova_err_set(err, NOVA_EINVAL, "replicas", "replicas must be between 0 and %d",
				    DEPLOYMENT_MAX_REPLICAS);
	return dep_change(out, db, work, &ch, err);
}

int deployment_stop(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		    struct audit_note *audit, struct nova_err *err)
{
	struct dep_change ch = {ref, DEP_STOP, 0, audit, ""};
	return dep_change(out, db, work, &ch, err);
}

int deployment_start(json_t **out, struct db_pool *db, struct notify *work, const char *ref,
		     struct audit_note *audit, struct nova_err *err)
{
	struct dep_change ch = {ref, DEP_START, 0, audit, ""};
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
		if (rc == 0)
			rc = db_tx_commit(c, err);
		else
			db_tx_rollback(c);
		db_conn_release(db, c);
	}
	free(text);
	return rc;
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
		     "JOIN deployments d ON d.id = r.deployment_id JOIN models m ON m.id = d.model_id "
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
