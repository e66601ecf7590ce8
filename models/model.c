#include "models/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"

static const struct {
	const char *kind;
	size_t n_stages;
	const char *stage_names[2]; /* NULL: any name */
} model_kinds[] = {
	{"single", 1, {NULL, NULL}},
	{"spec_decode", 2, {"draft", "target"}},
	{"vision", 2, {"encoder", "llm"}},
	{"lora_static", 1, {NULL, NULL}},
	{"lora_dynamic", 1, {NULL, NULL}},
};
#define MODEL_N_KINDS (sizeof(model_kinds) / sizeof(model_kinds[0]))

static bool model_name_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || !strchr(extra, c)))
			return false;
	}
	return true;
}

static int model_strings_check(const json_t *arr, const char *field, size_t max_items,
			       struct nova_err *err)
{
	size_t i;
	json_t *v;
	if (!json_is_array(arr) || json_array_size(arr) > max_items)
		return nova_err_set(err, NOVA_EINVAL, field, "%s must be an array of at most %zu strings",
				    field, max_items);
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 512) {
			char f[NOVA_ERR_FIELD_MAX];
			snprintf(f, sizeof(f), "%s[%zu]", field, i);
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be a non-empty string", f);
		}
	}
	return 0;
}

/* Adapter names: strings as model_strings_check takes them, each once
 * and none the base model's own name (either would make two routes with
 * one key). */
static int model_adapters_check(const json_t *adapters, const char *model, struct nova_err *err)
{
	size_t i, j;
	json_t *v;
	int rc = model_strings_check(adapters, "adapters", 256, err);
	if (rc)
		return rc;
	json_array_foreach(adapters, i, v) {
		const char *a = json_string_value(v);
		bool dup = strcmp(a, model) == 0;
		for (j = 0; j < i && !dup; j++)
			dup = strcmp(a, json_string_value(json_array_get(adapters, j))) == 0;
		if (dup) {
			char f[NOVA_ERR_FIELD_MAX];
			snprintf(f, sizeof(f), "adapters[%zu]", i);
			return nova_err_set(err, NOVA_EINVAL, f,
					    "%s names the model itself or an adapter listed before", f);
		}
	}
	return 0;
}

/* engine.mock: nova-mock-engine's flags, by the flag's name with '_' for
 * '-' and within the range the engine takes (sidecar/mock_engine.c). The
 * sidecar turns each member into its flag as it comes, so what is refused
 * here is what the engine would refuse at start, when it is cheap to say
 * which field. Left out: the flags the sidecar sets from the assignment
 * (port, model, kind, the adapters, max_loras), the port file, and the
 * admin token (a secret has no place in a registry entry anyone with read
 * access lists). Rejected: a total_tokens_per_second of any positive
 * number: the engine takes whole tokens per second up to 10^7, and a spec
 * it would refuse would fail every replica at start instead of here. */
static int model_mock_check(const json_t *mock, struct nova_err *err)
{
	long long v = 0;
	bool b = false;
	const struct json_field fields[] = {
		{.name = "startup_ms", .kind = JSON_KIND_INT, .out = &v, .min = 0, .max = 600000},
		{.name = "max_num_seqs", .kind = JSON_KIND_INT, .out = &v, .min = 0, .max = 100000},
		{.name = "total_tokens_per_second", .kind = JSON_KIND_INT, .out = &v, .min = 1,
		 .max = 10000000},
		{.name = "tokens_per_second", .kind = JSON_KIND_INT, .out = &v, .min = 1, .max = 100000},
		{.name = "latency_ms", .kind = JSON_KIND_INT, .out = &v, .min = 0, .max = 600000},
		{.name = "max_tokens", .kind = JSON_KIND_INT, .out = &v, .min = 1, .max = 100000},
		{.name = "crash_after", .kind = JSON_KIND_INT, .out = &v, .min = 0, .max = 1000000000},
		{.name = "fail_health", .kind = JSON_KIND_BOOL, .out = &b},
		{.name = "error_percent", .kind = JSON_KIND_INT, .out = &v, .min = 0, .max = 100},
		{.name = "lora_load_ms", .kind = JSON_KIND_INT, .out = &v, .min = 0, .max = 600000},
		{.name = "prefix_block_bytes", .kind = JSON_KIND_INT, .out = &v, .min = 1,
		 .max = 1 << 20},
		{.name = "prefix_cache_blocks", .kind = JSON_KIND_INT, .out = &v, .min = 0,
		 .max = 1 << 24},
		{.name = "uncached_block_us", .kind = JSON_KIND_INT, .out = &v, .min = 0,
		 .max = 10000000},
		{.name = "embedding_dims", .kind = JSON_KIND_INT, .out = &v, .min = 1, .max = 4096},
	};
	return json_decode_object(mock, fields, sizeof(fields) / sizeof(fields[0]), "engine.mock",
				  err);
}

static int model_engine_check(const json_t *engine, struct nova_err *err)
{
	const char *image = NULL, *health = NULL;
	json_t *command = NULL, *env = NULL, *args = NULL, *mock = NULL;
	long long port = 0;
	const struct json_field fields[] = {
		{.name = "image", .kind = JSON_KIND_STRING, .out = &image, .max_len = 512},
		{.name = "command", .kind = JSON_KIND_ARRAY, .out = &command},
		{.name = "args", .kind = JSON_KIND_ARRAY, .out = &args},
		{.name = "env", .kind = JSON_KIND_OBJECT, .out = &env},
		{.name = "health_path", .kind = JSON_KIND_STRING, .out = &health, .max_len = 256},
		{.name = "port", .kind = JSON_KIND_INT, .out = &port, .min = 1, .max = 65535},
		{.name = "mock", .kind = JSON_KIND_OBJECT, .out = &mock},
	};
	const char *k;
	json_t *v;
	int rc = json_decode_object(engine, fields, sizeof(fields) / sizeof(fields[0]), "engine", err);
	if (rc)
		return rc;
	if (mock && (rc = model_mock_check(mock, err)))
		return rc;
	if (!image && !command)
		return nova_err_set(err, NOVA_EINVAL, "engine",
				    "engine needs an image, a command, or both");
	if (command && (rc = model_strings_check(command, "engine.command", 64, err)))
		return rc;
	if (command && json_array_size(command) == 0)
		return nova_err_set(err, NOVA_EINVAL, "engine.command", "engine.command must not be empty");
	if (args && (rc = model_strings_check(args, "engine.args", 64, err)))
		return rc;
	if (health && health[0] != '/')
		return nova_err_set(err, NOVA_EINVAL, "engine.health_path",
				    "engine.health_path must start with /");
	json_object_foreach((json_t *)env, k, v) {
		char f[NOVA_ERR_FIELD_MAX];
		snprintf(f, sizeof(f), "engine.env.%s", k);
		if (!model_name_ok(k, 128, "_") || !json_is_string(v))
			return nova_err_set(err, NOVA_EINVAL, f,
					    "%s: names are letters, digits and _; values strings", f);
	}
	return 0;
}

static int model_stage_parse(struct model_stage *st, const json_t *obj, size_t idx,
			     struct nova_err *err)
{
	char path[32];
	const char *name = NULL, *type = NULL;
	long long accels = 0, mem = 0;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .required = true, .out = &name, .max_len = 31},
		{.name = "accelerator_type", .kind = JSON_KIND_STRING, .out = &type, .max_len = 63},
		{.name = "accelerators", .kind = JSON_KIND_INT, .required = true, .out = &accels,
		 .min = 1, .max = 64},
		{.name = "memory_mib", .kind = JSON_KIND_INT, .out = &mem, .min = 0,
		 .max = 64LL * 1024 * 1024},
	};
	snprintf(path, sizeof(path), "stages[%zu]", idx);
	int rc = json_decode_object(obj, fields, 4, path, err);
	if (rc)
		return rc;
	if (!model_name_ok(name, 31, "_-")) {
		char f[NOVA_ERR_FIELD_MAX];
		snprintf(f, sizeof(f), "%s.name", path);
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be letters, digits, _ or -", f);
	}
	snprintf(st->name, sizeof(st->name), "%s", name);
	snprintf(st->accelerator_type, sizeof(st->accelerator_type), "%s", type ? type : "");
	st->accelerators = (unsigned)accels;
	st->memory_mib = (unsigned long long)mem;
	return 0;
}

int model_spec_parse(struct model *out, const json_t *spec, struct nova_err *err)
{
	const char *name = NULL, *version = "latest", *kind = NULL, *desc = NULL;
	json_t *engine = NULL, *stages = NULL, *adapters = NULL;
	long long max_adapters = 0;
	bool has_max = false;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .required = true, .out = &name, .max_len = 128},
		{.name = "version", .kind = JSON_KIND_STRING, .out = &version, .max_len = 64},
		{.name = "kind", .kind = JSON_KIND_STRING, .required = true, .out = &kind, .max_len = 16},
		{.name = "description", .kind = JSON_KIND_STRING, .out = &desc, .max_len = 1024,
		 .allow_empty = true},
		{.name = "engine", .kind = JSON_KIND_OBJECT, .required = true, .out = &engine},
		{.name = "stages", .kind = JSON_KIND_ARRAY, .required = true, .out = &stages},
		{.name = "adapters", .kind = JSON_KIND_ARRAY, .out = &adapters},
		{.name = "max_adapters", .kind = JSON_KIND_INT, .out = &max_adapters,
		 .present = &has_max, .min = 1, .max = 1024},
	};
	struct model tmp;
	size_t k, i;
	json_t *v;
	int rc;
	memset(&tmp, 0, sizeof(tmp));
	if ((rc = json_decode_object(spec, fields, 8, "", err)))
		return rc;
	/* No '/': a model is addressed as /v1/models/NAME[:VERSION]. */
	if (!model_name_ok(name, 128, "._-"))
		return nova_err_set(err, NOVA_EINVAL, "name",
				    "name must start with a letter or digit and hold only letters, "
				    "digits, '.', '_' or '-'");
	if (!model_name_ok(version, 64, "._-"))
		return nova_err_set(err, NOVA_EINVAL, "version",
				    "version must be letters, digits, '.', '_' or '-'");
	for (k = 0; k < MODEL_N_KINDS; k++)
		if (strcmp(model_kinds[k].kind, kind) == 0)
			break;
	if (k == MODEL_N_KINDS)
		return nova_err_set(err, NOVA_EINVAL, "kind",
				    "kind must be one of single, spec_decode, vision, lora_static, "
				    "lora_dynamic");
	if ((rc = model_engine_check(engine, err)))
		return rc;
	if (json_array_size(stages) != model_kinds[k].n_stages)
		return nova_err_set(err, NOVA_EINVAL, "stages", "a %s model has %zu stage%s, not %zu",
				    kind, model_kinds[k].n_stages,
				    model_kinds[k].n_stages == 1 ? "" : "s", json_array_size(stages));
	json_array_foreach(stages, i, v) {
		if ((rc = model_stage_parse(&tmp.stages[i], v, i, err)))
			return rc;
		const char *want = model_kinds[k].stage_names[i];
		if (want && strcmp(tmp.stages[i].name, want) != 0) {
			char f[NOVA_ERR_FIELD_MAX];
			snprintf(f, sizeof(f), "stages[%zu].name", i);
			return nova_err_set(err, NOVA_EINVAL, f, "stage %zu of a %s model is \"%s\"", i,
					    kind, want);
		}
	}
	tmp.n_stages = json_array_size(stages);
	bool is_static = strcmp(kind, "lora_static") == 0, is_dyn = strcmp(kind, "lora_dynamic") == 0;
	if (adapters && !is_static && !is_dyn)
		return nova_err_set(err, NOVA_EINVAL, "adapters",
				    "adapters are for lora_static and lora_dynamic models");
	if (is_static && (!adapters || json_array_size(adapters) == 0))
		return nova_err_set(err, NOVA_EINVAL, "adapters", "a lora_static model lists its adapters");
	/* A lora_dynamic model's adapters are the ones its engines can load
	 * on demand (each gets a route); none listed: no adapter routes, the
	 * engines load what they are told through their own API. */
	if (adapters && (rc = model_adapters_check(adapters, name, err)))
		return rc;
	if (has_max && !is_dyn)
		return nova_err_set(err, NOVA_EINVAL, "max_adapters",
				    "max_adapters is for lora_dynamic models");
	if (is_dyn && !has_max)
		return nova_err_set(err, NOVA_EINVAL, "max_adapters",
				    "a lora_dynamic model sets max_adapters");
	if (out) {
		*out = tmp;
		snprintf(out->name, sizeof(out->name), "%s", name);
		snprintf(out->version, sizeof(out->version), "%s", version);
		snprintf(out->kind, sizeof(out->kind), "%s", kind);
		out->spec = json_deep_copy(spec);
		if (!out->spec)
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		json_object_set_new(out->spec, "version", json_string(version));
	}
	return 0;
}

#define MODEL_COLS "id, spec::text, " DB_TS("created_at")

static struct model *model_from_row(PGresult *res, int row)
{
	struct nova_err err;
	struct model *m = calloc(1, sizeof(*m));
	json_t *spec = json_loads(PQgetvalue(res, row, 1), 0, NULL);
	if (!m || !spec || model_spec_parse(m, spec, &err) != 0) {
		/* Only specs that parsed are ever stored. */
		json_decref(spec);
		free(m);
		return NULL;
	}
	json_decref(spec);
	snprintf(m->id, sizeof(m->id), "%s", PQgetvalue(res, row, 0));
	snprintf(m->created_at, sizeof(m->created_at), "%s", PQgetvalue(res, row, 2));
	return m;
}

void model_free(struct model *m)
{
	if (!m)
		return;
	json_decref(m->spec);
	free(m);
}

void model_list_free(struct model **models, size_t n)
{
	for (size_t i = 0; models && i < n; i++)
		model_free(models[i]);
	free(models);
}

json_t *model_to_json(const struct model *m)
{
	json_t *j = json_deep_copy(m->spec);
	if (!j)
		return NULL;
	json_object_set_new(j, "id", json_string(m->id));
	json_object_set_new(j, "created_at", json_string(m->created_at));
	return j;
}

int model_register(struct model **out, struct db_pool *db, const json_t *spec,
		   struct audit_note *audit, struct nova_err *err)
{
	struct model parsed;
	struct db_conn *c = NULL;
	PGresult *res = NULL;
	char *text = NULL;
	int rc;
	*out = NULL;
	if ((rc = model_spec_parse(&parsed, spec, err)))
		return rc;
	text = json_dump_compact(parsed.spec);
	const char *params[4] = {parsed.name, parsed.version, parsed.kind, text};
	if (!text) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		goto out;
	}
	if ((rc = db_conn_acquire(&c, db, err)) || (rc = db_tx_begin(c, err)))
		goto out;
	rc = db_exec_one(&res, c,
			 "INSERT INTO models (name, version, kind, spec) VALUES ($1, $2, $3, $4::jsonb) "
			 "RETURNING " MODEL_COLS, 4, params, err);
	if (rc == NOVA_EEXISTS)
		nova_err_set(err, NOVA_EEXISTS, "name", "model %s:%s is already registered",
			     parsed.name, parsed.version);
	if (rc == 0 && !(*out = model_from_row(res, 0)))
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if (rc == 0)
		rc = audit_record_tx(c, audit, (*out)->id, err);
	if (rc == 0)
		rc = db_tx_commit(c, err);
	if (rc) {
		model_free(*out);
		*out = NULL;
	}
	if (rc == 0)
		nova_log_kv(NOVA_LOG_INFO, "models", "model registered", "model", parsed.name,
			    "version", parsed.version, "kind", parsed.kind, NULL);
out:
	PQclear(res);
	if (c)
		db_conn_release(db, c);
	free(text);
	json_decref(parsed.spec);
	return rc;
}

static int model_fetch(struct model **out, struct db_conn *c, const char *ref, struct nova_err *err)
{
	char name[130];
	const char *colon = strrchr(ref, ':');
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	if (ids_is_uuid(ref)) {
		const char *params[1] = {ref};
		rc = db_exec(&res, c, "SELECT " MODEL_COLS " FROM models WHERE id = $1::uuid", 1, params,
			     err);
	} else if (colon) {
		snprintf(name, sizeof(name), "%.*s", (int)(colon - ref), ref);
		const char *params[2] = {name, colon + 1};
		rc = db_exec(&res, c, "SELECT " MODEL_COLS " FROM models WHERE name = $1 AND version = $2",
			     2, params, err);
	} else {
		const char *params[1] = {ref};
		rc = db_exec(&res, c,
			     "SELECT " MODEL_COLS " FROM models WHERE name = $1 "
			     "ORDER BY created_at DESC, id LIMIT 1", 1, params, err);
	}
	if (rc == 0 && PQntuples(res) == 0)
		rc = nova_err_set(err, NOVA_ENOTFOUND, "model", "no model \"%s\"", ref);
	if (rc == 0 && !(*out = model_from_row(res, 0)))
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "stored model %s does not parse", ref);
	PQclear(res);
	return rc;
}

int model_get(struct model **out, struct db_pool *db, const char *ref, struct nova_err *err)
{
	struct db_conn *c;
	int rc;
	*out = NULL;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = model_fetch(out, c, ref, err);
	db_conn_release(db, c);
	return rc;
}

int model_list(struct model ***out, size_t *n_out, struct db_pool *db, struct nova_err *err)
{
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n_out = 0;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = db_exec(&res, c, "SELECT " MODEL_COLS " FROM models ORDER BY name, created_at", 0, NULL,
		     err);
	db_conn_release(db, c);
	if (rc == 0 && PQntuples(res) > 0) {
		size_t n = (size_t)PQntuples(res);
		struct model **v = calloc(n, sizeof(*v));
		for (size_t i = 0; v && i < n; i++) {
			if (!(v[i] = model_from_row(res, (int)i))) {
				model_list_free(v, i);
				v = NULL;
			}
		}
		if (!v)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		*out = v;
		*n_out = v ? n : 0;
	}
	PQclear(res);
	return rc;
}

int model_delete(struct db_pool *db, const char *ref, struct audit_note *audit,
		 struct nova_err *err)
{
	struct model *m = NULL;
	struct db_conn *c;
	int rc;
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	if ((rc = db_tx_begin(c, err)) == 0 && (rc = model_fetch(&m, c, ref, err)) == 0) {
		const char *params[1] = {m->id};
		rc = db_exec(NULL, c, "DELETE FROM models WHERE id = $1::uuid", 1, params, err);
		if (rc == NOVA_ECONFLICT) {
			nova_err_set(err, NOVA_ECONFLICT, "model", "model %s:%s is used by a deployment",
				     m->name, m->version);
			nova_err_set_hint(err, "delete the deployments that use it first");
		}
		if (rc == 0 && (rc = audit_record_tx(c, audit, m->id, err)) == 0)
			rc = db_tx_commit(c, err);
	}
	db_conn_release(db, c); /* rolls back what did not commit */
	model_free(m);
	return rc;
}
