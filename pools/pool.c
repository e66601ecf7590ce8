#include "pools/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"

/* A pool row as pool_from_row decodes it, by these names. */
#define POOL_COLS                                                                        \
	"p.id, p.name, p.provider, p.config::text AS config, p.labels::text AS labels, "   \
	"coalesce(p.max_nodes, -1) AS max_nodes, "                                        \
	"coalesce(p.max_accelerators, -1) AS max_accelerators, "                          \
	"to_json(p.accelerator_types)::text AS accelerator_types, p.state, "              \
	"(SELECT count(*) FROM nodes n WHERE n.pool_id = p.id AND n.state <> 'terminated') " \
	"AS node_count, " DB_TS("p.created_at") " AS created_at, "                       \
	DB_TS("p.updated_at") " AS updated_at, coalesce(p.machine, '') AS machine, "      \
	"p.warm_nodes"

/* --- validation ------------------------------------------------------- */

static int pool_name_check(const char *name, struct nova_err *err)
{
	if (!ids_is_dns_label(name)) {
		nova_err_set(err, NOVA_EINVAL, "name",
			     "pool name must be 1 to 63 lower-case letters, digits or '-', "
			     "starting and ending with a letter or digit");
		nova_err_set_hint(err, "for example \"gpu-a100\"");
		return NOVA_EINVAL;
	}
	return 0;
}

/* A quota is an integer >= 0 or null (unlimited). */
static int pool_quota_value(long long *out, const json_t *v, const char *field,
			    struct nova_err *err)
{
	if (json_is_null(v)) {
		*out = -1;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
		return nova_err_set(err, NOVA_EINVAL, field,
				    "%s must be an integer from 0 to 1000000, or null for unlimited",
				    field);
	*out = json_integer_value(v);
	return 0;
}

static int pool_types_check(const json_t *types, struct nova_err *err)
{
	size_t i;
	json_t *v;
	if (!json_is_array(types) || json_array_size(types) > 32)
		return nova_err_set(err, NOVA_EINVAL, "quotas.accelerator_types",
				    "quotas.accelerator_types must be an array of at most 32 strings");
	json_array_foreach(types, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 63)
			return nova_err_set(err, NOVA_EINVAL, "quotas.accelerator_types",
					    "quotas.accelerator_types[%zu] must be a string of 1 to 63 bytes",
					    i);
	}
	return 0;
}

static int pool_quotas_decode(struct pool_patch *out, const json_t *q, struct nova_err *err)
{
	json_t *mn = NULL, *ma = NULL, *types = NULL;
	const struct json_field fields[] = {
		{.name = "max_nodes", .kind = JSON_KIND_ANY, .out = &mn,
		 .present = &out->has_max_nodes},
		{.name = "max_accelerators", .kind = JSON_KIND_ANY, .out = &ma,
		 .present = &out->has_max_accelerators},
		{.name = "accelerator_types", .kind = JSON_KIND_ANY, .out = &types,
		 .present = &out->has_accelerator_types},
	};
	int rc;
	/* JSON_KIND_ANY refuses null, but null is how a quota is lifted. */
	json_t *copy = json_deep_copy(q);
	const char *k;
	json_t *v;
	void *tmp;
	if (!json_is_object(q))
		return nova_err_set(err, NOVA_EINVAL, "quotas", "quotas must be an object");
	if (!copy)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	json_object_foreach_safe(copy, tmp, k, v) {
		if (json_is_null(v))
			json_object_set_new(copy, k, json_integer(-1));
	}
	rc = json_decode_object(copy, fields, 3, "quotas", err);
	out->quotas.max_nodes = out->quotas.max_accelerators = -1;
	out->quotas.accelerator_types = NULL;
	if (!rc && out->has_max_nodes)
		rc = pool_quota_value(&out->quotas.max_nodes, json_object_get(q, "max_nodes"),
				      "quotas.max_nodes", err);
	if (!rc && out->has_max_accelerators)
		rc = pool_quota_value(&out->quotas.max_accelerators,
				      json_object_get(q, "max_accelerators"),
				      "quotas.max_accelerators", err);
	if (!rc && out->has_accelerator_types) {
		out->quotas.accelerator_types = json_object_get(q, "accelerator_types");
		rc = pool_types_check(out->quotas.accelerator_types, err);
	}
	json_decref(copy);
	return rc;
}

int pool_spec_from_json(struct pool_spec *out, const json_t *body, struct nova_err *err)
{
	json_t *config = NULL, *labels = NULL, *quotas = NULL;
	long long warm = 0;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .required = true, .out = &out->name,
		 .max_len = 63},
		{.name = "provider", .kind = JSON_KIND_STRING, .required = true,
		 .out = &out->provider, .max_len = 32},
		{.name = "config", .kind = JSON_KIND_OBJECT, .out = &config},
		{.name = "labels", .kind = JSON_KIND_OBJECT, .out = &labels},
		{.name = "quotas", .kind = JSON_KIND_OBJECT, .out = &quotas},
		{.name = "warm_nodes", .kind = JSON_KIND_INT, .out = &warm, .min = 0,
		 .max = POOL_WARM_NODES_MAX},
	};
	struct pool_patch qp = {0};
	int rc;
	memset(out, 0, sizeof(*out));
	out->quotas.max_nodes = out->quotas.max_accelerators = -1;
	if ((rc = json_decode_object(body, fields, 6, "", err)))
		return rc;
	out->warm_nodes = (unsigned)warm;
	if ((rc = pool_name_check(out->name, err)))
		return rc;
	if (labels && (rc = json_check_labels(labels, "labels", err)))
		return rc;
	if (quotas) {
		if ((rc = pool_quotas_decode(&qp, quotas, err)))
			return rc;
		out->quotas = qp.quotas;
	}
	out->config = config;
	out->labels = labels;
	return 0;
}

int pool_patch_from_json(struct pool_patch *out, const json_t *body, struct nova_err *err)
{
	json_t *quotas = NULL;
	long long warm = 0;
	const struct json_field fields[] = {
		{.name = "quotas", .kind = JSON_KIND_OBJECT, .out = &quotas},
		{.name = "warm_nodes", .kind = JSON_KIND_INT, .out = &warm,
		 .present = &out->has_warm_nodes, .min = 0, .max = POOL_WARM_NODES_MAX},
	};
	int rc;
	memset(out, 0, sizeof(*out));
	out->quotas.max_nodes = out->quotas.max_accelerators = -1;
	if ((rc = json_decode_object(body, fields, 2, "", err)))
		return rc;
	out->warm_nodes = (unsigned)warm;
	if (!quotas && !out->has_warm_nodes) {
		nova_err_set(err, NOVA_EINVAL, "quotas", "nothing to change: give quotas or warm_nodes");
		nova_err_set_hint(err, "for example {\"warm_nodes\": 2} or {\"quotas\": {\"max_nodes\": 8}}");
		return NOVA_EINVAL;
	}
	return quotas ? pool_quotas_decode(out, quotas, err) : 0;
}

/* --- rows --------------------------------------------------------------- */

static const char *const pool_state_names[] = {[POOL_ACTIVE] = "active",
					       [POOL_DELETING] = "deleting"};
static const char *const pool_node_state_names[POOL_NODE_STATE_COUNT] = {
	[POOL_NODE_PROVISIONING] = "provisioning", [POOL_NODE_READY] = "ready",
	[POOL_NODE_UNHEALTHY] = "unhealthy",       [POOL_NODE_DRAINING] = "draining",
	[POOL_NODE_TERMINATING] = "terminating",   [POOL_NODE_TERMINATED] = "terminated",
	[POOL_NODE_FAILED] = "failed",
};

const char *pool_state_name(enum pool_state s)
{
	return (unsigned)s < sizeof(pool_state_names) / sizeof(pool_state_names[0])
		       ? pool_state_names[s]
		       : "unknown";
}

const char *pool_node_state_name(enum pool_node_state s)
{
	return (unsigned)s < POOL_NODE_STATE_COUNT ? pool_node_state_names[s] : "unknown";
}

int pool_state_parse(enum pool_state *out, const char *name)
{
	for (unsigned i = 0; i < sizeof(pool_state_names) / sizeof(pool_state_names[0]); i++)
		if (!strcmp(pool_state_names[i], name)) {
			*out = (enum pool_state)i;
			return 0;
		}
	return NOVA_EINVAL;
}

int pool_node_state_parse(enum pool_node_state *out, const char *name)
{
	for (unsigned i = 0; i < POOL_NODE_STATE_COUNT; i++)
		if (!strcmp(pool_node_state_names[i], name)) {
			*out = (enum pool_node_state)i;
			return 0;
		}
	return NOVA_EINVAL;
}

static json_t *pool_json_col(const PGresult *res, int row, const char *col, json_t *fallback)
{
	json_t *v = json_loads(db_value(res, row, col), JSON_DECODE_ANY, NULL);
	if (!v)
		return fallback;
	json_decref(fallback);
	return v;
}

/* The one decoder of a pools row (POOL_COLS), by column name. */
static struct pool *pool_from_row(const PGresult *res, int row)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	snprintf(p->id, sizeof(p->id), "%s", db_value(res, row, "id"));
	snprintf(p->name, sizeof(p->name), "%s", db_value(res, row, "name"));
	snprintf(p->provider, sizeof(p->provider), "%s", db_value(res, row, "provider"));
	p->config = pool_json_col(res, row, "config", json_object());
	p->labels = pool_json_col(res, row, "labels", json_object());
	p->quotas.max_nodes = strtoll(db_value(res, row, "max_nodes"), NULL, 10);
	p->quotas.max_accelerators = strtoll(db_value(res, row, "max_accelerators"), NULL, 10);
	p->quotas.accelerator_types = pool_json_col(res, row, "accelerator_types", json_array());
	/* The table's CHECK allows no other state. */
	(void)pool_state_parse(&p->state, db_value(res, row, "state"));
	p->node_count = strtoll(db_value(res, row, "node_count"), NULL, 10);
	snprintf(p->created_at, sizeof(p->created_at), "%s", db_value(res, row, "created_at"));
	snprintf(p->updated_at, sizeof(p->updated_at), "%s", db_value(res, row, "updated_at"));
	snprintf(p->machine, sizeof(p->machine), "%s", db_value(res, row, "machine"));
	p->warm_nodes = (unsigned)strtoul(db_value(res, row, "warm_nodes"), NULL, 10);
	if (!p->config || !p->labels || !p->quotas.accelerator_types) {
		pool_free(p);
		return NULL;
	}
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	json_decref(p->config);
	json_decref(p->labels);
	json_decref(p->quotas.accelerator_types);
	free(p);
}

void pool_list_free(struct pool **pools, size_t n)
{
	for (size_t i = 0; pools && i < n; i++)
		pool_free(pools[i]);
	free(pools);
}

static json_t *pool_quota_json(long long v)
{
	return v < 0 ? json_null() : json_integer(v);
}

json_t *pool_to_json(const struct pool *p)
{
	return json_pack("{s:s, s:s, s:s, s:O, s:O, s:{s:o, s:o, s:O}, s:I, s:s, s:I, s:s, s:s, s:o}",
			 "id", p->id, "name", p->name, "provider", p->provider, "config", p->config,
			 "labels", p->labels, "quotas", "max_nodes",
			 pool_quota_json(p->quotas.max_nodes), "max_accelerators",
			 pool_quota_json(p->quotas.max_accelerators), "accelerator_types",
			 p->quotas.accelerator_types, "warm_nodes", (json_int_t)p->warm_nodes, "state",
			 pool_state_name(p->state), "node_count",
			 (json_int_t)p->node_count, "created_at", p->created_at, "updated_at",
			 p->updated_at, "machine", p->machine[0] ? json_string(p->machine) : json_null());
}

bool pool_is_here(const struct pool *p)
{
	char here[IDS_MACHINE_LEN];
	if (!p->machine[0])
		return true;
	ids_machine_id(here);
	return strcmp(p->machine, here) == 0;
}

static int pool_one_from_result(struct pool **out, PGresult *res, struct nova_err *err)
{
	*out = pool_from_row(res, 0);
	if (!*out)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	return 0;
}

static void pool_quota_param(char *buf, size_t len, const char **param, long long v)
{
	if (v < 0) {
		*param = NULL;
	} else {
		snprintf(buf, len, "%lld", v);
		*param = buf;
	}
}

/* --- operations --------------------------------------------------------- */

/* warm_nodes against the pool's provider and quotas.max_nodes; field: the
 * one to name when warm_nodes passes max_nodes (the one the caller set). */
static int pool_warm_check(const struct adapter_ops *ops, const char *provider,
			   const json_t *config, unsigned warm, long long max_nodes,
			   const char *field, struct nova_err *err)
{
	if (warm == 0)
		return 0;
	if (!adapter_config_ephemeral(ops, config)) {
		nova_err_set(err, NOVA_EINVAL, "warm_nodes",
			     "warm_nodes needs a provider that makes nodes on demand; the nodes of "
			     "a %s pool like this one exist anyway", provider);
		nova_err_set_hint(err, "leave warm_nodes out or set it to 0 (kubernetes pools "
				       "take it)");
		return NOVA_EINVAL;
	}
	if (max_nodes >= 0 && (long long)warm > max_nodes) {
		nova_err_set(err, NOVA_EINVAL, field, "warm_nodes %u is above quotas.max_nodes %lld",
			     warm, max_nodes);
		nova_err_set_hint(err, "lower warm_nodes or raise quotas.max_nodes");
		return NOVA_EINVAL;
	}
	return 0;
}

/* A change of warm_nodes as a pool event, in the change's transaction. */
static int pool_warm_event_tx(struct db_conn *c, const char *pool_id, const char *message,
			      struct nova_err *err)
{
	const char *params[2] = {pool_id, message};
	return db_exec(NULL, c,
		       "INSERT INTO pool_events (pool_id, kind, message) "
		       "VALUES ($1::uuid, 'warm_nodes', $2)", 2, params, err);
}

/* Record the resources the new pool p holds alone (inside the creating
 * transaction). Rows are inserted with ON CONFLICT DO NOTHING: a resource
 * another pool holds (committed, or being created now: the insert waits for
 * that transaction) comes back missing, and the holder is named. */
static int pool_claims_take(struct db_conn *c, const struct pool *p, const char *claims,
			    struct nova_err *err)
{
	const char *params[3] = {p->provider, claims, p->id};
	PGresult *res = NULL;
	int rc;
	rc = db_exec(&res, c,
		     "WITH want AS (SELECT DISTINCT r FROM jsonb_array_elements_text($2::jsonb) AS w(r)), "
		     "ins AS (INSERT INTO pool_claims (provider, resource, pool_id) "
		     "SELECT $1, r, $3::uuid FROM want ON CONFLICT DO NOTHING RETURNING resource) "
		     "SELECT w.r, h.name FROM want w LEFT JOIN pool_claims c "
		     "ON c.provider = $1 AND c.resource = w.r LEFT JOIN pools h ON h.id = c.pool_id "
		     "WHERE w.r NOT IN (SELECT resource FROM ins) ORDER BY w.r LIMIT 1",
		     3, params, err);
	if (rc)
		return rc;
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 1)) {
		rc = nova_err_set(err, NOVA_ECONFLICT, "config", "%s is already claimed by pool \"%s\"",
				  PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		nova_err_set_hint(err, "a resource belongs to one pool at a time: choose others, or "
				       "delete pool %s first", PQgetvalue(res, 0, 1));
	} else if (PQntuples(res) > 0) {
		/* Claimed by a pool committed after this statement began. */
		rc = nova_err_set(err, NOVA_ECONFLICT, "config",
				  "%s was just claimed by another pool", PQgetvalue(res, 0, 0));
	}
	PQclear(res);
	return rc;
}

int pool_create(struct pool **out, struct db_pool *db, const struct pool_spec *spec,
		struct audit_note *audit, struct nova_err *err)
{
	const struct adapter_ops *ops;
	char *config = NULL, *labels = NULL, *types = NULL, *claims_text = NULL, mn[24], ma[24];
	char machine[IDS_MACHINE_LEN], warm[16];
	const char *params[9];
	json_t *empty = json_object(), *no_types = json_array(), *claims = NULL;
	struct db_conn *c = NULL;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if ((rc = pool_name_check(spec->name, err)))
		goto done;
	if (!(ops = adapter_find(spec->provider))) {
		char names[256];
		adapter_names(names, sizeof(names));
		rc = nova_err_set(err, NOVA_EINVAL, "provider", "unknown provider \"%s\"", spec->provider);
		nova_err_set_hint(err, "registered providers: %s", *names ? names : "none");
		goto done;
	}
	if ((rc = adapter_validate(ops, spec->config ? spec->config : empty, err)))
		goto done;
	if ((rc = pool_warm_check(ops, spec->provider, spec->config ? spec->config : empty,
				  spec->warm_nodes, spec->quotas.max_nodes, "warm_nodes", err)))
		goto done;
	if (spec->labels && (rc = json_check_labels(spec->labels, "labels", err)))
		goto done;
	if (spec->quotas.accelerator_types && (rc = pool_types_check(spec->quotas.accelerator_types, err)))
		goto done;
	config = json_dump_compact(spec->config ? spec->config : empty);
	labels = json_dump_compact(spec->labels ? spec->labels : empty);
	types = json_dump_compact(spec->quotas.accelerator_types ? spec->quotas.accelerator_types
								 : no_types);
	if (!config || !labels || !types) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		goto done;
	}
	params[0] = spec->name;
	params[1] = spec->provider;
	params[2] = config;
	params[3] = labels;
	pool_quota_param(mn, sizeof(mn), &params[4], spec->quotas.max_nodes);
	pool_quota_param(ma, sizeof(ma), &params[5], spec->quotas.max_accelerators);
	params[6] = types;
	/* Nodes that are this machine's processes: the pool is this machine's. */
	ids_machine_id(machine);
	params[7] = adapter_machine_bound(ops) ? machine : NULL;
	snprintf(warm, sizeof(warm), "%u", spec->warm_nodes);
	params[8] = warm;
	if ((rc = adapter_claims(&claims, ops, spec->config ? spec->config : empty, err)) ||
	    !(claims_text = json_dump_compact(claims))) {
		if (!rc)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		goto done;
	}
	if ((rc = db_conn_acquire(&c, db, err)) || (rc = db_tx_begin(c, err)))
		goto done;
	rc = db_exec_one(&res, c,
			 "WITH p AS (INSERT INTO pools (name, provider, config, labels, max_nodes, "
			 "max_accelerators, accelerator_types, machine, warm_nodes) VALUES ($1, $2, "
			 "$3::jsonb, $4::jsonb, $5::integer, $6::integer, "
			 "ARRAY(SELECT jsonb_array_elements_text($7::jsonb)), $8, $9::integer) "
			 "RETURNING *) SELECT " POOL_COLS " FROM p",
			 9, params, err);
	if (rc == NOVA_EEXISTS) {
		nova_err_set(err, NOVA_EEXISTS, "name", "a pool named \"%s\" already exists", spec->name);
		goto done;
	}
	if (rc == 0)
		rc = pool_one_from_result(out, res, err);
	if (rc == 0 && json_array_size(claims) > 0)
		rc = pool_claims_take(c, *out, claims_text, err);
	if (rc == 0 && spec->warm_nodes > 0) {
		char msg[64];
		snprintf(msg, sizeof(msg), "warm_nodes %u", spec->warm_nodes);
		rc = pool_warm_event_tx(c, (*out)->id, msg, err);
	}
	if (rc == 0)
		rc = audit_record_tx(c, audit, (*out)->id, err);
	if (rc == 0)
		rc = db_tx_commit(c, err);
	if (rc == 0)
		nova_log_kv(NOVA_LOG_INFO, "pools", "pool created", "pool", spec->name, "provider",
			    spec->provider, "id", (*out)->id, NULL);
done:
	if (rc) {
		pool_free(*out);
		*out = NULL;
	}
	PQclear(res);
	if (c) {
		db_tx_rollback(c);
		db_conn_release(db, c);
	}
	json_decref(claims);
	free(claims_text);
	free(config);
	free(labels);
	free(types);
	json_decref(empty);
	json_decref(no_types);
	return rc;
}

/* A reference is looked up as an id when it has a uuid's shape, then as a
 * name: a valid pool name can itself look like a uuid. */
static int pool_fetch(struct pool **out, struct db_conn *c, const char *ref, bool for_update,
		      struct nova_err *err)
{
	const char *params[1] = {ref};
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if (ids_is_uuid(ref))
		rc = db_exec(&res, c,
			     for_update ? "SELECT " POOL_COLS " FROM pools p WHERE p.id = $1::uuid FOR UPDATE"
					: "SELECT " POOL_COLS " FROM pools p WHERE p.id = $1::uuid",
			     1, params, err);
	else
		rc = db_exec(&res, c,
			     for_update ? "SELECT " POOL_COLS " FROM pools p WHERE p.name = $1 FOR UPDATE"
					: "SELECT " POOL_COLS " FROM pools p WHERE p.name = $1",
			     1, params, err);
	if (rc == 0 && PQntuples(res) == 0 && ids_is_uuid(ref)) {
		PQclear(res);
		res = NULL;
		rc = db_exec(&res, c,
			     for_update ? "SELECT " POOL_COLS " FROM pools p WHERE p.name = $1 FOR UPDATE"
					: "SELECT " POOL_COLS " FROM pools p WHERE p.name = $1",
			     1, params, err);
	}
	if (rc == 0 && PQntuples(res) == 0)
		rc = nova_err_set(err, NOVA_ENOTFOUND, "pool", "no pool named or with id \"%s\"", ref);
	if (rc == 0)
		rc = pool_one_from_result(out, res, err);
	PQclear(res);
	return rc;
}

int pool_get(struct pool **out, struct db_pool *db, const char *ref, struct nova_err *err)
{
	struct db_conn *c;
	int rc;
	*out = NULL;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = pool_fetch(out, c, ref, false, err);
	db_conn_release(db, c);
	return rc;
}

int pool_list(struct pool ***out, size_t *n_out, struct db_pool *db, struct nova_err *err)
{
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n_out = 0;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = db_exec(&res, c, "SELECT " POOL_COLS " FROM pools p ORDER BY p.name", 0, NULL, err);
	if (rc == 0 && PQntuples(res) > 0) {
		size_t n = (size_t)PQntuples(res);
		struct pool **v = calloc(n, sizeof(*v));
		for (size_t i = 0; v && i < n; i++) {
			if (!(v[i] = pool_from_row(res, (int)i))) {
				pool_list_free(v, i);
				v = NULL;
			}
		}
		if (!v)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		*out = v;
		*n_out = v ? n : 0;
	}
	PQclear(res);
	db_conn_release(db, c);
	return rc;
}

struct pool_update_ctx {
	const char *ref;
	const struct pool_patch *patch;
	struct audit_note *audit;
	struct pool *result;
};

static int pool_update_tx(struct db_conn *c, void *arg, struct nova_err *err)
{
	struct pool_update_ctx *ctx = arg;
	const struct pool_patch *patch = ctx->patch;
	struct pool *cur = NULL;
	char mn[24], ma[24], warm[16], *types = NULL;
	const char *params[9];
	PGresult *res = NULL;
	int rc;
	if ((rc = pool_fetch(&cur, c, ctx->ref, true, err)))
		return rc;
	if (cur->state != POOL_ACTIVE) {
		rc = nova_err_set(err, NOVA_ECONFLICT, "pool", "pool %s is being deleted", cur->name);
		goto done;
	}
	unsigned new_warm = patch->has_warm_nodes ? patch->warm_nodes : cur->warm_nodes;
	if ((rc = pool_warm_check(adapter_find(cur->provider), cur->provider, cur->config, new_warm,
				  patch->has_max_nodes ? patch->quotas.max_nodes
						       : cur->quotas.max_nodes,
				  patch->has_warm_nodes ? "warm_nodes" : "quotas.max_nodes", err)))
		goto done;
	types = json_dump_compact(patch->quotas.accelerator_types ? patch->quotas.accelerator_types
								  : cur->quotas.accelerator_types);
	params[0] = cur->id;
	params[1] = patch->has_max_nodes ? "1" : "0";
	pool_quota_param(mn, sizeof(mn), &params[2], patch->quotas.max_nodes);
	params[3] = patch->has_max_accelerators ? "1" : "0";
	pool_quota_param(ma, sizeof(ma), &params[4], patch->quotas.max_accelerators);
	params[5] = patch->has_accelerator_types ? "1" : "0";
	params[6] = types;
	params[7] = patch->has_warm_nodes ? "1" : "0";
	snprintf(warm, sizeof(warm), "%u", new_warm);
	params[8] = warm;
	rc = db_exec(NULL, c,
		     "UPDATE pools SET "
		     "warm_nodes = CASE WHEN $8 = '1' THEN $9::integer ELSE warm_nodes END, "
		     "max_nodes = CASE WHEN $2 = '1' THEN $3::integer ELSE max_nodes END, "
		     "max_accelerators = CASE WHEN $4 = '1' THEN $5::integer ELSE max_accelerators END, "
		     "accelerator_types = CASE WHEN $6 = '1' "
		     "THEN ARRAY(SELECT jsonb_array_elements_text($7::jsonb)) ELSE accelerator_types END, "
		     "updated_at = now() WHERE id = $1::uuid",
		     9, params, err);
	if (rc == 0 && new_warm != cur->warm_nodes) {
		char msg[64];
		snprintf(msg, sizeof(msg), "warm_nodes %u -> %u", cur->warm_nodes, new_warm);
		rc = pool_warm_event_tx(c, cur->id, msg, err);
	}
	if (rc == 0)
		rc = audit_record_tx(c, ctx->audit, cur->id, err);
	if (rc == 0) {
		char id[POOL_ID_LEN];
		snprintf(id, sizeof(id), "%s", cur->id);
		rc = pool_fetch(&ctx->result, c, id, false, err);
	}
done:
	free(types);
	PQclear(res);
	pool_free(cur);
	return rc;
}

int pool_update(struct pool **out, struct db_pool *db, const char *ref,
		const struct pool_patch *patch, struct audit_note *audit, struct nova_err *err)
{
	struct pool_update_ctx ctx = {ref, patch, audit, NULL};
	int rc = db_tx_run(db, pool_update_tx, &ctx, err);
	*out = rc ? NULL : ctx.result;
	if (rc)
		pool_free(ctx.result);
	return rc;
}

/* --- delete ------------------------------------------------------------- */

struct pool_delete_ctx {
	const char *ref;
	bool force;
	struct audit_note *audit;
	const struct pool_users *users;
	struct pool *pool;     /* out: the pool, now marked deleting */
	long long live;        /* out: live nodes */
};

/* Phase 1, in one transaction: check and record the intent. */
static int pool_delete_mark_tx(struct db_conn *c, void *arg, struct nova_err *err)
{
	struct pool_delete_ctx *ctx = arg;
	const char *params[1];
	long long users = 0;
	int rc;
	if ((rc = pool_fetch(&ctx->pool, c, ctx->ref, true, err)))
		return rc;
	params[0] = ctx->pool->id;
	if (ctx->users && (rc = ctx->users->count(&users, c, ctx->pool->id, err)))
		return rc;
	if (users > 0) {
		nova_err_set(err, NOVA_ECONFLICT, "pool", "pool %s is used by %lld %s%s",
			     ctx->pool->name, users, ctx->users->noun, users == 1 ? "" : "s");
		nova_err_set_hint(err, "%s", ctx->users->hint);
		return NOVA_ECONFLICT;
	}
	ctx->live = ctx->pool->node_count;
	if (ctx->live > 0 && ctx->force && !pool_is_here(ctx->pool)) {
		nova_err_set(err, NOVA_ECONFLICT, "pool",
			     "pool %s's nodes are processes of machine %s; this novad cannot stop them",
			     ctx->pool->name, ctx->pool->machine);
		nova_err_set_hint(err, "delete it with force through a novad on that machine");
		return NOVA_ECONFLICT;
	}
	if (ctx->live > 0 && !ctx->force) {
		nova_err_set(err, NOVA_ECONFLICT, "pool", "pool %s has %lld node%s", ctx->pool->name,
			     ctx->live, ctx->live == 1 ? "" : "s");
		nova_err_set_hint(err, "drain its nodes first, or delete with force to drain and "
				       "deprovision them");
		return NOVA_ECONFLICT;
	}
	if ((rc = audit_record_tx(c, ctx->audit, ctx->pool->id, err)))
		return rc;
	return db_exec(NULL, c, "UPDATE pools SET state = 'deleting', updated_at = now() "
				"WHERE id = $1::uuid", 1, params, err);
}

int pool_node_retire(struct db_pool *db, struct adapter *ad, const struct pool_node *n,
		     const char *reason, struct nova_err *err)
{
	/* A failed node's replicas have moved to new nodes: its resource is
	 * replaced, not just removed. */
	struct adapter_node_ref ref = {.node_id = n->id, .handle = n->handle[0] ? n->handle : NULL,
				       .reason = reason, .replaced = n->state == POOL_NODE_FAILED};
	int rc = 0;
	if (n->state == POOL_NODE_READY || n->state == POOL_NODE_UNHEALTHY)
		rc = pool_node_transition(db, n->id, POOL_NODE_DRAINING, reason, err);
	if (!rc && n->state != POOL_NODE_TERMINATING)
		rc = pool_node_transition(db, n->id, POOL_NODE_TERMINATING, reason, err);
	if (!rc)
		rc = adapter_deprovision_node(ad, &ref, err);
	if (!rc)
		rc = pool_node_transition(db, n->id, POOL_NODE_TERMINATED, reason, err);
	if (!rc)
		nova_log_kv(NOVA_LOG_INFO, "pools", "node deprovisioned", "node", n->name, "reason",
			    reason, NULL);
	return rc;
}

static int pool_node_provision_leased(struct db_pool *db, struct adapter *ad,
				      const struct pool_node *n, const char *gateway_url,
				      const char *reason, struct nova_err *err)
{
	struct adapter_node_info info;
	char token[128];
	int rc = pool_node_token_issue(token, sizeof(token), db, n->id, err);
	if (rc)
		return rc;
	struct adapter_provision_request req = {
		.node_id = n->id, .node_name = n->name, .node_token = token,
		.gateway_url = gateway_url, .handle = n->handle[0] ? n->handle : NULL,
		.accelerator_type = n->accelerator_type, .accelerator_count = n->accelerator_count,
		.labels = n->labels,
	};
	rc = adapter_provision_node(&info, ad, &req, err);
	explicit_bzero(token, sizeof(token));
	if (rc == NOVA_EFAILED) {
		struct nova_err e2;
		pool_node_transition(db, n->id, POOL_NODE_FAILED, err->message, &e2);
		return rc;
	}
	if (rc)
		return rc;
	if ((rc = pool_node_set_provider_info(db, n->id, info.handle, info.endpoint, err)))
		return rc;
	nova_log_kv(NOVA_LOG_INFO, "pools", "node provisioned", "node", n->name, "id", n->id,
		    "handle", info.handle, NULL);
	return pool_node_transition(db, n->id, POOL_NODE_READY, reason, err);
}

int pool_node_provision(struct db_pool *db, struct adapter *ad, const struct pool_node *n,
			const char *gateway_url, unsigned lease_ms, const char *reason,
			struct nova_err *err)
{
	struct nova_err ignored;
	bool got;
	int rc = pool_node_lease_take(&got, db, n->id, POOL_NODE_PROVISIONING, lease_ms, err);
	if (rc || !got)
		return rc;
	rc = pool_node_provision_leased(db, ad, n, gateway_url, reason, err);
	pool_node_lease_release(db, n->id, &ignored);
	return rc;
}

int pool_delete(struct db_pool *db, const char *ref, bool force, const struct pool_users *users,
		struct audit_note *audit, struct nova_err *err)
{
	struct pool_delete_ctx ctx = {ref, force, audit, users, NULL, 0};
	struct adapter *ad = NULL;
	struct db_conn *c = NULL;
	struct pool_node *nodes = NULL;
	size_t n_nodes = 0;
	const char *params[1];
	int rc = db_tx_run(db, pool_delete_mark_tx, &ctx, err);
	if (rc)
		goto done;
	params[0] = ctx.pool->id;
	if (ctx.live > 0) {
		const struct adapter_ops *ops = adapter_find(ctx.pool->provider);
		if (!ops) {
			rc = nova_err_set(err, NOVA_EUNAVAIL, "provider",
					  "provider %s is not available in this novad; its nodes "
					  "cannot be deprovisioned", ctx.pool->provider);
			goto done;
		}
		if ((rc = adapter_instance_get(&ad, ops, ctx.pool->id, ctx.pool->config, err)))
			goto done;
		rc = pool_nodes_list(&nodes, &n_nodes, db, ctx.pool->id, err);
		for (size_t i = 0; rc == 0 && i < n_nodes; i++)
			rc = pool_node_retire(db, ad, &nodes[i], "pool deleted with force", err);
		if (rc) {
			nova_log_kv(NOVA_LOG_WARN, "pools", "forced pool delete incomplete", "pool",
				    ctx.pool->name, "error", err ? err->message : "", NULL);
			goto done;
		}
	}
	if ((rc = db_conn_acquire(&c, db, err)))
		goto done;
	rc = db_exec(NULL, c, "DELETE FROM pools WHERE id = $1::uuid AND state = 'deleting'", 1,
		     params, err);
	if (rc == 0) {
		adapter_forget(adapter_find(ctx.pool->provider), ctx.pool->id);
		nova_log_kv(NOVA_LOG_INFO, "pools", "pool deleted", "pool", ctx.pool->name, "id",
			    ctx.pool->id, "forced", force ? "true" : "false", NULL);
	}
done:
	pool_nodes_free(nodes, n_nodes);
	if (c)
		db_conn_release(db, c);
	adapter_instance_put(ad);
	pool_free(ctx.pool);
	return rc;
}

/* --- nodes -------------------------------------------------------------- */

int pool_node_add(char id_out[POOL_ID_LEN], char *token_out, size_t token_len,
		  struct db_pool *db, const char *pool_id, const struct pool_node_spec *spec,
		  struct nova_err *err)
{
	char token[128], hash[SECRET_HEX_SHA256_LEN], count[16], mem[24], *labels = NULL;
	const char *params[9];
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	json_t *empty = json_object();
	id_out[0] = '\0';
	ids_uuid_generate(id_out);
	if ((rc = secret_token_generate(token, sizeof(token), "nova-node-", err)))
		goto done;
	secret_sha256_hex(hash, token, strlen(token));
	labels = json_dump_compact(spec->labels ? spec->labels : empty);
	snprintf(count, sizeof(count), "%u", spec->accelerator_count);
	snprintf(mem, sizeof(mem), "%llu", spec->accelerator_memory_mib);
	params[0] = id_out;
	params[1] = pool_id;
	params[2] = spec->name;
	params[3] = spec->handle;
	params[4] = spec->accelerator_type;
	params[5] = count;
	params[6] = mem;
	params[7] = labels;
	params[8] = hash;
	if ((rc = db_conn_acquire(&c, db, err)))
		goto done;
	rc = db_exec(&res, c,
		     "INSERT INTO nodes (id, pool_id, name, handle, accelerator_type, accelerator_count, "
		     "accelerator_memory_mib, labels, token_hash, state_reason) "
		     "SELECT $1::uuid, $2::uuid, $3, $4, $5, $6::integer, $7::bigint, $8::jsonb, $9, "
		     "'created' FROM pools WHERE id = $2::uuid AND state = 'active' RETURNING id",
		     9, params, err);
	db_conn_release(db, c);
	if (rc == 0 && PQntuples(res) == 0)
		rc = nova_err_set(err, NOVA_ECONFLICT, "pool",
				  "pool %s does not exist or is being deleted", pool_id);
done:
	PQclear(res);
	free(labels);
	json_decref(empty);
	if (rc == 0 && token_out)
		snprintf(token_out, token_len, "%s", token);
	return rc;
}

int pool_node_transition(struct db_pool *db, const char *node_id, enum pool_node_state to,
			 const char *reason, struct nova_err *err)
{
	const char *params[3] = {node_id, pool_node_state_name(to), reason};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if (!reason || !*reason)
		return nova_err_set(err, NOVA_EINVAL, "reason", "a state change needs a reason");
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = db_exec_one(&res, c,
			 "UPDATE nodes SET state = $2, state_reason = $3, "
			 "token_hash = CASE WHEN $2 = 'terminated' THEN NULL ELSE token_hash END "
			 "WHERE id = $1::uuid RETURNING state",
			 3, params, err);
	if (rc == NOVA_ENOTFOUND)
		nova_err_set(err, NOVA_ENOTFOUND, "node", "no node with id %s", node_id);
	PQclear(res);
	db_conn_release(db, c);
	return rc;
}

int pool_nodes_mark_silent(struct pool_node_mark **out, size_t *n_out, struct db_conn *c,
			   const char *unhealthy, const char *unhealthy_reason, const char *failed,
			   const char *failed_reason, struct nova_err *err)
{
	const char *params[4] = {unhealthy, unhealthy_reason, failed, failed_reason};
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n_out = 0;
	rc = db_exec(&res, c,
		     "UPDATE nodes n SET state = CASE WHEN n.id = ANY($3::uuid[]) THEN 'failed' "
		     "ELSE 'unhealthy' END, state_reason = CASE WHEN n.id = ANY($3::uuid[]) THEN $4 "
		     "ELSE $2 END WHERE n.id IN (SELECT x.id FROM nodes x WHERE "
		     "(x.id = ANY($1::uuid[]) AND x.state = 'ready') OR "
		     "(x.id = ANY($3::uuid[]) AND x.state IN ('ready', 'unhealthy')) "
		     "FOR UPDATE SKIP LOCKED) RETURNING n.id::text, n.state",
		     4, params, err);
	if (rc)
		return rc;
	size_t n = (size_t)PQntuples(res);
	struct pool_node_mark *v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(v[i].id, sizeof(v[i].id), "%s", PQgetvalue(res, (int)i, 0));
		(void)pool_node_state_parse(&v[i].state, PQgetvalue(res, (int)i, 1));
	}
	PQclear(res);
	*out = v;
	*n_out = n;
	return 0;
}

int pool_nodes_idle_mark(char (**idle)[POOL_ID_LEN], size_t *n_idle, struct db_pool *db,
			 const char *pool_id, const char *busy, unsigned grace_s, unsigned keep,
			 struct nova_err *err)
{
	char grace[16], keep_s[16], kept[64];
	const char *params[5] = {pool_id, busy, grace, keep_s, kept};
	PGresult *res = NULL;
	int rc;
	*idle = NULL;
	*n_idle = 0;
	snprintf(grace, sizeof(grace), "%u", grace_s);
	snprintf(keep_s, sizeof(keep_s), "%u", keep);
	snprintf(kept, sizeof(kept), "kept warm (warm_nodes %u)", keep);
	/* Heartbeats keep updated_at fresh, so it cannot say since when. */
	rc = db_pool_exec(NULL, db,
			  "UPDATE nodes SET idle_since = CASE WHEN id = ANY($2::uuid[]) THEN NULL "
			  "ELSE now() END WHERE pool_id = $1::uuid AND state = 'ready' "
			  "AND (id = ANY($2::uuid[])) = (idle_since IS NOT NULL)",
			  2, params, err);
	/* One statement: the nodes kept warm are chosen, marked and left out
	 * of the retired in one snapshot (the SELECT sees the idle clocks as
	 * they were; with no grace it would take a node just kept). The
	 * oldest are kept, so the same ones stay warm pass after pass. A
	 * reason that said "kept warm" (or "provisioned warm", the warm
	 * duty's) and is no longer true is put right. A reason of another's
	 * (the provider's words on a pod still pending, which the watch duty
	 * wrote) is not overwritten: it says more.
	 * (PostgreSQL runs a data-modifying WITH to completion whether or not
	 * the main query reads it.) */
	if (rc == 0)
		rc = db_pool_exec(&res, db,
				  "WITH k AS (SELECT id FROM nodes WHERE pool_id = $1::uuid "
				  "AND state = 'ready' AND NOT cordoned AND NOT id = ANY($2::uuid[]) "
				  "ORDER BY created_at, id LIMIT $4::integer), "
				  "kept AS (UPDATE nodes SET idle_since = now(), state_reason = CASE "
				  "WHEN state_reason LIKE 'provisioned%' OR state_reason LIKE 'kept warm%' "
				  "OR state_reason IN ('idle; no longer kept warm', 'taken from the warm nodes') "
				  "THEN $5 ELSE state_reason END WHERE id IN (SELECT id FROM k) RETURNING id), "
				  "was AS (UPDATE nodes SET state_reason = CASE WHEN id = ANY($2::uuid[]) "
				  "THEN 'taken from the warm nodes' ELSE 'idle; no longer kept warm' END "
				  "WHERE pool_id = $1::uuid AND state = 'ready' "
				  "AND (state_reason LIKE 'kept warm%' OR state_reason LIKE 'provisioned warm%') "
				  "AND id NOT IN (SELECT id FROM k) "
				  "RETURNING id) "
				  "SELECT id::text FROM nodes WHERE pool_id = $1::uuid AND state = 'ready' "
				  "AND idle_since <= now() - $3::integer * interval '1 second' "
				  "AND NOT id = ANY($2::uuid[]) AND id NOT IN (SELECT id FROM k) "
				  "ORDER BY id",
				  5, params, err);
	if (rc)
		return rc;
	return db_result_uuids(idle, n_idle, res, err);
}

int pool_nodes_reserve(struct pool_node_room **out, size_t *n_out, struct db_conn *c,
		       const char *ids, struct nova_err *err)
{
	const char *params[1] = {ids};
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n_out = 0;
	rc = db_exec(&res, c,
		     "SELECT id::text, state = 'ready' AND NOT cordoned, accelerator_count FROM nodes "
		     "WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
		     1, params, err);
	if (rc)
		return rc;
	size_t n = (size_t)PQntuples(res);
	struct pool_node_room *v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(v[i].id, sizeof(v[i].id), "%s", PQgetvalue(res, (int)i, 0));
		v[i].schedulable = strcmp(PQgetvalue(res, (int)i, 1), "t") == 0;
		v[i].accelerator_count = (unsigned)strtoul(PQgetvalue(res, (int)i, 2), NULL, 10);
	}
	PQclear(res);
	*out = v;
	*n_out = n;
	return 0;
}

int pool_node_count_live(long long *out, struct db_pool *db, const char *pool_id,
			 struct nova_err *err)
{
	const char *params[1] = {pool_id};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = 0;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = db_exec_one(&res, c,
			 "SELECT count(*) FROM nodes WHERE pool_id = $1::uuid AND state <> 'terminated'",
			 1, params, err);
	if (rc == 0)
		*out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	db_conn_release(db, c);
	return rc;
}

/* A nodes row as pool_node_decode reads it, by these names (the node API
 * selects them too, beside its own). */
#define POOL_NODE_COLS                                                                   \
	"nodes.id, nodes.name, coalesce(nodes.handle, '') AS handle, nodes.state, "       \
	"nodes.state_reason, nodes.cordoned, "                                            \
	"coalesce(nodes.accelerator_type, '') AS accelerator_type, "                      \
	"nodes.accelerator_count, nodes.accelerator_memory_mib, "                         \
	"nodes.labels::text AS labels, coalesce(nodes.endpoint, '') AS endpoint"

/* The one decoder of a nodes row (POOL_NODE_COLS), by column name. */
static void pool_node_decode(struct pool_node *out, const PGresult *res, int r)
{
	snprintf(out->id, sizeof(out->id), "%s", db_value(res, r, "id"));
	snprintf(out->name, sizeof(out->name), "%s", db_value(res, r, "name"));
	snprintf(out->handle, sizeof(out->handle), "%s", db_value(res, r, "handle"));
	/* The table's CHECK allows no other state. */
	(void)pool_node_state_parse(&out->state, db_value(res, r, "state"));
	out->cordoned = strcmp(db_value(res, r, "cordoned"), "t") == 0;
	snprintf(out->accelerator_type, sizeof(out->accelerator_type), "%s",
		 db_value(res, r, "accelerator_type"));
	out->accelerator_count = (unsigned)strtoul(db_value(res, r, "accelerator_count"), NULL, 10);
	out->accelerator_memory_mib = strtoull(db_value(res, r, "accelerator_memory_mib"), NULL, 10);
	out->labels = json_loads(db_value(res, r, "labels"), 0, NULL);
	if (!out->labels)
		out->labels = json_object();
	snprintf(out->endpoint, sizeof(out->endpoint), "%s", db_value(res, r, "endpoint"));
}

int pool_nodes_list(struct pool_node **out, size_t *n_out, struct db_pool *db,
		    const char *pool_id, struct nova_err *err)
{
	const char *params[1] = {pool_id};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n_out = 0;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = db_exec(&res, c,
		     "SELECT " POOL_NODE_COLS " FROM nodes "
		     "WHERE pool_id = $1::uuid AND state <> 'terminated' ORDER BY created_at, id",
		     1, params, err);
	db_conn_release(db, c);
	if (rc)
		return rc;
	size_t n = (size_t)PQntuples(res);
	struct pool_node *v = calloc(n ? n : 1, sizeof(*v));
	if (!v) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		pool_node_decode(&v[i], res, (int)i);
	PQclear(res);
	*out = v;
	*n_out = n;
	return 0;
}

void pool_nodes_free(struct pool_node *nodes, size_t n)
{
	for (size_t i = 0; nodes && i < n; i++)
		json_decref(nodes[i].labels);
	free(nodes);
}

int pool_node_lease_take(bool *got, struct db_pool *db, const char *node_id,
			 enum pool_node_state state, unsigned lease_ms, struct nova_err *err)
{
	char ms[16];
	const char *params[3] = {node_id, pool_node_state_name(state), ms};
	PGresult *res = NULL;
	int rc;
	*got = false;
	snprintf(ms, sizeof(ms), "%u", lease_ms);
	rc = db_pool_exec(&res, db,
			  "UPDATE nodes SET provision_lease_until = now() + $3::integer * interval '1 ms' "
			  "WHERE id = $1::uuid AND state = $2 AND (provision_lease_until IS NULL "
			  "OR provision_lease_until < now()) RETURNING 1",
			  3, params, err);
	if (rc == 0)
		*got = PQntuples(res) == 1;
	PQclear(res);
	return rc;
}

int pool_node_lease_release(struct db_pool *db, const char *node_id, struct nova_err *err)
{
	const char *params[1] = {node_id};
	return db_pool_exec(NULL, db, "UPDATE nodes SET provision_lease_until = NULL WHERE id = $1::uuid",
			    1, params, err);
}

int pool_node_note(struct db_pool *db, const char *node_id, const char *reason,
		   struct nova_err *err)
{
	const char *params[2] = {node_id, reason};
	return db_pool_exec(NULL, db,
			    "UPDATE nodes SET state_reason = $2 WHERE id = $1::uuid "
			    "AND state_reason IS DISTINCT FROM $2",
			    2, params, err);
}

int pool_node_failed_fate(enum pool_failed_fate *out, struct db_pool *db, const char *node_id,
			  unsigned wait_ms, struct nova_err *err)
{
	char wait[16];
	const char *params[2] = {node_id, wait};
	PGresult *res = NULL;
	int rc;
	*out = POOL_FAILED_RETIRE;
	snprintf(wait, sizeof(wait), "%u", wait_ms);
	/* One statement: the revival (failed -> ready, which the transition
	 * trigger records) happens only when the row still says failed for
	 * silence and a heartbeat came after the failure; otherwise it says
	 * whether the failure is recent enough to wait for one: wait_ms, or 3
	 * of the intervals the node was told (sql/0023), when longer, so a
	 * node that beats every 50 s has the time to be heard. */
	rc = db_pool_exec(&res, db,
		"WITH f AS (SELECT n.id, n.state_reason LIKE 'no heartbeat%' AS silence, "
		"h.last_heartbeat_at, h.interval_ms, (SELECT max(e.at) FROM node_events e WHERE e.node_id = n.id "
		"AND e.to_state = 'failed') AS failed_at FROM nodes n "
		"LEFT JOIN node_heartbeats h ON h.node_id = n.id WHERE n.id = $1::uuid AND n.state = 'failed'), "
		"up AS (UPDATE nodes n SET state = 'ready', "
		"state_reason = 'heartbeat resumed after it was failed for silence' FROM f "
		"WHERE n.id = f.id AND f.silence AND f.last_heartbeat_at > f.failed_at RETURNING n.id) "
		"SELECT (SELECT count(*) FROM up), coalesce((SELECT silence AND failed_at > "
		"now() - greatest($2::integer, 3 * coalesce(f.interval_ms, 0)) * "
		"interval '1 millisecond' FROM f), false)",
		2, params, err);
	if (rc)
		return rc;
	if (atoi(PQgetvalue(res, 0, 0)) > 0)
		*out = POOL_FAILED_REVIVED;
	else if (!strcmp(PQgetvalue(res, 0, 1), "t"))
		*out = POOL_FAILED_WAIT;
	PQclear(res);
	return 0;
}

int pool_event_record(struct db_pool *db, const char *pool_id, const char *kind,
		      const char *message, struct nova_err *err)
{
	const char *params[3] = {pool_id, kind, message};
	return db_pool_exec(NULL, db,
			    "INSERT INTO pool_events (pool_id, kind, message) VALUES ($1::uuid, $2, $3)", 3,
			    params, err);
}

int pool_event_record_once(struct db_pool *db, const char *pool_id, const char *kind,
			   const char *message, struct nova_err *err)
{
	const char *params[3] = {pool_id, kind, message};
	return db_pool_exec(NULL, db,
			    "INSERT INTO pool_events (pool_id, kind, message) SELECT $1::uuid, $2, $3 "
			    "WHERE NOT EXISTS (SELECT 1 FROM (SELECT kind, message FROM pool_events "
			    "WHERE pool_id = $1::uuid ORDER BY id DESC LIMIT 1) l "
			    "WHERE l.kind = $2 AND l.message = $3)",
			    3, params, err);
}

int pool_node_set_provider_info(struct db_pool *db, const char *node_id, const char *handle,
				const char *endpoint, struct nova_err *err)
{
	const char *params[3] = {node_id, handle && *handle ? handle : NULL,
				 endpoint && *endpoint ? endpoint : NULL};
	struct db_conn *c;
	int rc;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = db_exec(NULL, c,
		     "UPDATE nodes SET handle = coalesce($2, handle), endpoint = coalesce($3, endpoint), "
		     "updated_at = now() WHERE id = $1::uuid",
		     3, params, err);
	db_conn_release(db, c);
	return rc;
}

int pool_nodes_fail_stuck(unsigned *failed, struct db_pool *db, const char *pool_id,
			  unsigned seconds, const char *reason, struct nova_err *err)
{
	char secs[16];
	const char *params[3] = {pool_id, secs, reason};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if (failed)
		*failed = 0;
	snprintf(secs, sizeof(secs), "%u", seconds);
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = db_exec(&res, c,
		     "UPDATE nodes SET state = 'failed', state_reason = $3 WHERE pool_id = $1::uuid "
		     "AND state = 'provisioning' AND updated_at < now() - $2::integer * interval '1 second'",
		     3, params, err);
	if (rc == 0 && failed)
		*failed = (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	db_conn_release(db, c);
	return rc;
}

int pool_node_counts(json_t **out, struct db_pool *db, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if ((rc = db_pool_exec(&res, db,
			       "SELECT p.name, n.state, count(*) FROM nodes n "
			       "JOIN pools p ON p.id = n.pool_id WHERE n.state <> 'terminated' "
			       "GROUP BY p.name, n.state ORDER BY p.name, n.state",
			       0, NULL, err)))
		return rc;
	*out = json_array();
	for (int i = 0; *out && i < PQntuples(res); i++)
		json_array_append_new(*out, json_pack("{s:s, s:s, s:I}", "pool", PQgetvalue(res, i, 0),
						      "state", PQgetvalue(res, i, 1), "n",
						      (json_int_t)strtoll(PQgetvalue(res, i, 2), NULL, 10)));
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

/* --- nodes in the API ------------------------------------------------------- */

/* The node API's row: a node (POOL_NODE_COLS) with its pool and times. */
#define NODE_JSON_COLS                                                                        \
	POOL_NODE_COLS ", p.id AS pool_id, p.name AS pool_name, "                              \
	DB_TS("h.last_heartbeat_at") " AS last_heartbeat_at, "                                 \
	DB_TS("nodes.created_at") " AS created_at "                                            \
	"FROM nodes JOIN pools p ON p.id = nodes.pool_id "                                     \
	"LEFT JOIN node_heartbeats h ON h.node_id = nodes.id "

static json_t *pool_str_or_null(const char *s)
{
	return *s ? json_string(s) : json_null();
}

static json_t *pool_node_row_json(const PGresult *res, int r)
{
	struct pool_node n = {0};
	pool_node_decode(&n, res, r);
	json_t *j = json_pack(
		"{s:s, s:s, s:{s:s, s:s}, s:o, s:s, s:s, s:b, s:{s:o, s:I, s:I}, s:O, s:o, s:o, s:s}",
		"id", n.id, "name", n.name, "pool", "id", db_value(res, r, "pool_id"), "name",
		db_value(res, r, "pool_name"), "handle", pool_str_or_null(n.handle), "state",
		pool_node_state_name(n.state), "state_reason", db_value(res, r, "state_reason"),
		"cordoned", n.cordoned, "accelerators", "type", pool_str_or_null(n.accelerator_type),
		"count", (json_int_t)n.accelerator_count, "memory_mib",
		(json_int_t)n.accelerator_memory_mib, "labels", n.labels, "endpoint",
		pool_str_or_null(n.endpoint), "last_heartbeat_at",
		pool_str_or_null(db_value(res, r, "last_heartbeat_at")), "created_at",
		db_value(res, r, "created_at"));
	json_decref(n.labels);
	return j;
}

int pool_nodes_json(json_t **out, struct db_pool *db, const char *pool_ref, struct nova_err *err)
{
	struct pool *p = NULL;
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if (pool_ref && (rc = pool_get(&p, db, pool_ref, err)))
		return rc;
	const char *params[1] = {p ? p->id : NULL};
	if ((rc = db_conn_acquire(&c, db, err)) == 0) {
		rc = db_exec(&res, c,
			     "SELECT " NODE_JSON_COLS "WHERE nodes.state <> 'terminated' "
			     "AND ($1::uuid IS NULL OR nodes.pool_id = $1::uuid) ORDER BY p.name, nodes.name",
			     1, params, err);
		db_conn_release(db, c);
	}
	pool_free(p);
	if (rc)
		return rc;
	*out = json_array();
	for (int r = 0; *out && r < PQntuples(res); r++)
		json_array_append_new(*out, pool_node_row_json(res, r));
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

/* Resolve a node reference (id, or a name unique among live nodes). */
static int pool_node_resolve(char id[POOL_ID_LEN], struct db_conn *c, const char *ref,
			     struct nova_err *err)
{
	const char *params[1] = {ref};
	PGresult *res = NULL;
	int rc = db_exec(&res, c,
			 ids_is_uuid(ref) ? "SELECT id FROM nodes WHERE id = $1::uuid"
					  : "SELECT id FROM nodes WHERE name = $1 AND state <> 'terminated'",
			 1, params, err);
	if (rc == 0 && PQntuples(res) == 0)
		rc = nova_err_set(err, NOVA_ENOTFOUND, "node", "no node named or with id \"%s\"", ref);
	else if (rc == 0 && PQntuples(res) > 1)
		rc = nova_err_set(err, NOVA_ECONFLICT, "node",
				  "%d nodes are named \"%s\"; use the node id", PQntuples(res), ref);
	if (rc == 0)
		snprintf(id, POOL_ID_LEN, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return rc;
}

int pool_node_json(json_t **out, struct db_pool *db, const char *ref, struct nova_err *err)
{
	char id[POOL_ID_LEN];
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	if ((rc = pool_node_resolve(id, c, ref, err)))
		goto out;
	const char *params[1] = {id};
	if ((rc = db_exec_one(&res, c, "SELECT " NODE_JSON_COLS "WHERE nodes.id = $1::uuid", 1, params,
			      err)))
		goto out;
	*out = pool_node_row_json(res, 0);
	PQclear(res);
	res = NULL;
	rc = db_exec(&res, c,
		     "SELECT coalesce(from_state, ''), to_state, reason, " DB_TS("at") " FROM "
		     "(SELECT * FROM node_events WHERE node_id = $1::uuid ORDER BY id DESC LIMIT 20) e "
		     "ORDER BY id", 1, params, err);
	if (rc == 0 && *out) {
		json_t *events = json_array();
		for (int r = 0; r < PQntuples(res); r++)
			json_array_append_new(events, json_pack("{s:o, s:s, s:s, s:s}", "from",
								pool_str_or_null(PQgetvalue(res, r, 0)),
								"to", PQgetvalue(res, r, 1), "reason",
								PQgetvalue(res, r, 2), "at",
								PQgetvalue(res, r, 3)));
		json_object_set_new(*out, "events", events);
	}
out:
	PQclear(res);
	db_conn_release(db, c);
	if (rc || !*out) {
		json_decref(*out);
		*out = NULL;
		if (!rc)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	return rc;
}

/* The columns every event source selects, in this order, decoded by
 * pool_event_row_json. */
#define POOL_EVENT_COLS(seq, oid, obj, pool, from, to, kind, reason, at)                     \
	seq ", " oid ", " obj ", " pool ", coalesce(" from ", ''), coalesce(" to ", ''), " kind \
	", " reason ", " DB_TS(at) ", (extract(epoch FROM " at ") * 1000000)::bigint "

static json_t *pool_event_row_json(PGresult *res, int r, const char *source)
{
	return json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:I}", "source", source,
			 "seq", (json_int_t)atoll(PQgetvalue(res, r, 0)), "object_id",
			 PQgetvalue(res, r, 1), "object", PQgetvalue(res, r, 2), "pool",
			 PQgetvalue(res, r, 3), "kind", PQgetvalue(res, r, 6), "from",
			 pool_str_or_null(PQgetvalue(res, r, 4)), "to",
			 pool_str_or_null(PQgetvalue(res, r, 5)), "reason", PQgetvalue(res, r, 7),
			 "at", PQgetvalue(res, r, 8), "at_us",
			 (json_int_t)atoll(PQgetvalue(res, r, 9)));
}

/* One source: the filters are parameters; only the ORDER BY direction is
 * chosen here (two constant statements, no text from the request). */
static int pool_events_source(json_t *out, struct db_conn *c, const char *sql_asc,
			      const char *sql_desc, const struct pool_events_query *q,
			      long long after, const char *source, struct nova_err *err)
{
	char after_s[24], since_s[24], limit_s[16];
	PGresult *res = NULL;
	snprintf(after_s, sizeof(after_s), "%lld", q->newest ? 0 : after);
	snprintf(since_s, sizeof(since_s), "%lld", q->since_s);
	snprintf(limit_s, sizeof(limit_s), "%d", q->limit);
	const char *params[5] = {q->pool_id, q->node_id, after_s, since_s, limit_s};
	int rc = db_exec(&res, c, q->newest ? sql_desc : sql_asc, 5, params, err);
	if (rc)
		return rc;
	int n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		int r = q->newest ? n - 1 - i : i;
		json_t *e = pool_event_row_json(res, r, source);
		if (!e || json_array_append_new(out, e)) {
			PQclear(res);
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		}
	}
	PQclear(res);
	return 0;
}

#define POOL_NODE_EVENTS_SQL(dir)                                                              \
	"SELECT " POOL_EVENT_COLS("e.id", "n.id", "n.name", "p.name", "e.from_state",          \
				  "e.to_state", "'transition'", "e.reason", "e.at")            \
	"FROM node_events e JOIN nodes n ON n.id = e.node_id JOIN pools p ON p.id = n.pool_id " \
	"WHERE ($1::uuid IS NULL OR n.pool_id = $1::uuid) "                                    \
	"AND ($2::uuid IS NULL OR e.node_id = $2::uuid) AND e.id > $3::bigint "               \
	"AND ($4::bigint = 0 OR e.at >= to_timestamp($4::bigint)) "                            \
	"ORDER BY e.id " dir " LIMIT $5::int"
/* $2 (a node) never matches a pool event: a node's events are its own. */
#define POOL_POOL_EVENTS_SQL(dir)                                                              \
	"SELECT " POOL_EVENT_COLS("e.id", "p.id", "p.name", "p.name", "NULL", "NULL",          \
				  "e.kind", "e.message", "e.at")                               \
	"FROM pool_events e JOIN pools p ON p.id = e.pool_id "                                 \
	"WHERE ($1::uuid IS NULL OR e.pool_id = $1::uuid) AND $2::uuid IS NULL "              \
	"AND e.id > $3::bigint AND ($4::bigint = 0 OR e.at >= to_timestamp($4::bigint)) "     \
	"ORDER BY e.id " dir " LIMIT $5::int"

int pool_events_read(json_t **out, struct db_pool *db, const struct pool_events_query *q,
		     struct nova_err *err)
{
	struct db_conn *c;
	int rc;
	*out = json_array();
	if (!*out)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = db_conn_acquire(&c, db, err)))
		goto fail;
	if (q->node_events)
		rc = pool_events_source(*out, c, POOL_NODE_EVENTS_SQL("ASC"),
					POOL_NODE_EVENTS_SQL("DESC"), q, q->after_node, "node", err);
	if (!rc && q->pool_events)
		rc = pool_events_source(*out, c, POOL_POOL_EVENTS_SQL("ASC"),
					POOL_POOL_EVENTS_SQL("DESC"), q, q->after_pool, "pool", err);
	db_conn_release(db, c);
	if (!rc)
		return 0;
fail:
	json_decref(*out);
	*out = NULL;
	return rc;
}

int pool_node_id(char id[POOL_ID_LEN], struct db_pool *db, const char *ref, struct nova_err *err)
{
	struct db_conn *c;
	int rc;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = pool_node_resolve(id, c, ref, err);
	db_conn_release(db, c);
	return rc;
}

int pool_node_cordon(json_t **out, struct db_pool *db, const char *ref, bool cordoned,
		     struct audit_note *audit, struct nova_err *err)
{
	char id[POOL_ID_LEN];
	struct db_conn *c;
	int rc;
	*out = NULL;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	if ((rc = db_tx_begin(c, err)) == 0 && (rc = pool_node_resolve(id, c, ref, err)) == 0) {
		const char *params[2] = {id, cordoned ? "true" : "false"};
		/* Uncordoning a drained node also ends the drain. */
		rc = db_exec(NULL, c,
			     "UPDATE nodes SET cordoned = $2::boolean, updated_at = now(), "
			     "state = CASE WHEN NOT $2::boolean AND state = 'draining' THEN 'ready' ELSE state END, "
			     "state_reason = CASE WHEN NOT $2::boolean AND state = 'draining' "
			     "THEN 'uncordoned by operator' ELSE state_reason END WHERE id = $1::uuid",
			     2, params, err);
		if (rc == 0 && (rc = audit_record_tx(c, audit, id, err)) == 0)
			rc = db_tx_commit(c, err);
	}
	db_conn_release(db, c); /* rolls back what did not commit */
	return rc ? rc : pool_node_json(out, db, id, err);
}

int pool_node_drain(json_t **out, struct db_pool *db, const char *ref, struct audit_note *audit,
		    struct nova_err *err)
{
	char id[POOL_ID_LEN];
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	if ((rc = db_tx_begin(c, err)) == 0 && (rc = pool_node_resolve(id, c, ref, err)) == 0) {
		const char *params[1] = {id};
		rc = db_exec(&res, c,
			     "UPDATE nodes SET state = 'draining', state_reason = 'drained by operator', "
			     "cordoned = true WHERE id = $1::uuid AND state IN ('ready', 'unhealthy') "
			     "RETURNING id", 1, params, err);
		if (rc == 0 && PQntuples(res) == 0)
			rc = nova_err_set(err, NOVA_ECONFLICT, "node",
					  "only a ready or unhealthy node can be drained");
		PQclear(res);
		if (rc == 0 && (rc = audit_record_tx(c, audit, id, err)) == 0)
			rc = db_tx_commit(c, err);
	}
	db_conn_release(db, c); /* rolls back what did not commit */
	return rc ? rc : pool_node_json(out, db, id, err);
}

int pool_node_token_issue(char *token_out, size_t token_len, struct db_pool *db,
			  const char *node_id, struct nova_err *err)
{
	char token[128], hash[SECRET_HEX_SHA256_LEN];
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	if ((rc = secret_token_generate(token, sizeof(token), "nova-node-", err)))
		return rc;
	secret_sha256_hex(hash, token, strlen(token));
	const char *params[2] = {node_id, hash};
	if ((rc = db_conn_acquire(&c, db, err)) == 0) {
		rc = db_exec_one(&res, c,
				 "UPDATE nodes SET token_hash = $2, updated_at = now() WHERE id = $1::uuid "
				 "AND state <> 'terminated' RETURNING id",
				 2, params, err);
		db_conn_release(db, c);
		PQclear(res);
	}
	if (rc == NOVA_ENOTFOUND)
		nova_err_set(err, NOVA_ENOTFOUND, "node", "no live node with id %s", node_id);
	if (rc == 0)
		snprintf(token_out, token_len, "%s", token);
	explicit_bzero(token, sizeof(token));
	return rc;
}
