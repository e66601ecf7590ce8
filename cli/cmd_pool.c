#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define POOL_CREATE_USAGE                                                                     \
	"novactl pool create NAME --provider P [--config JSON | --config-file FILE] "         \
	"[--hosts FILE] [--max-nodes N] [--max-accelerators N] [--accelerator-types T1,T2] "  \
	"[--warm-nodes N] [--label k=v ...]"
#define POOL_UPDATE_USAGE                                                                     \
	"novactl pool update NAME|ID [--max-nodes N|none] [--max-accelerators N|none] "       \
	"[--accelerator-types T1,T2] [--warm-nodes N]"
#define POOL_LIST_USAGE "novactl pool list [-l|--selector key=value,...]"
#define POOL_GET_USAGE "novactl pool get NAME|ID..."
#define POOL_USAGE                                                                            \
	"novactl pool create|list|get|update|delete ...\n"                                   \
	"  " POOL_CREATE_USAGE "\n"                                                           \
	"  " POOL_LIST_USAGE "\n"                                                             \
	"  " POOL_GET_USAGE "\n"                                                              \
	"  " POOL_UPDATE_USAGE "\n"                                                           \
	"  novactl pool delete NAME|ID [--force]"

/* "N" -> integer, "none" -> null (unlimited). */
static int pool_quota_arg(json_t *quotas, const char *key, const char *val, struct cli_ctx *ctx,
			  const char *usage, const char *flag)
{
	char *end;
	long long v;
	if (!val)
		return 0;
	if (strcmp(val, "none") == 0) {
		json_object_set_new(quotas, key, json_null());
		return 0;
	}
	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno || !*val || *end || v < 0)
		return cli_usage_error(ctx, usage, "%s must be a non-negative integer or none, not \"%s\"",
				       flag, val);
	json_object_set_new(quotas, key, json_integer(v));
	return 0;
}

static json_t *pool_types_arg(const char *val)
{
	json_t *arr = json_array();
	char *copy = strdup(val), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(arr, json_string(t));
	free(copy);
	return arr;
}

/* Quota flags shared by create and update. */
static int pool_quota_flags(json_t *quotas, struct cli_args *a, struct cli_ctx *ctx,
			    const char *usage)
{
	int rc;
	if ((rc = pool_quota_arg(quotas, "max_nodes", cli_arg_value(a, "--max-nodes"), ctx, usage,
				 "--max-nodes")) ||
	    (rc = pool_quota_arg(quotas, "max_accelerators", cli_arg_value(a, "--max-accelerators"),
				 ctx, usage, "--max-accelerators")))
		return rc;
	const char *types = cli_arg_value(a, "--accelerator-types");
	if (types)
		json_object_set_new(quotas, "accelerator_types", pool_types_arg(types));
	return 0;
}

/* --warm-nodes N into body's warm_nodes (the server checks the bounds and
 * the provider, naming the field). */
static int pool_warm_flag(json_t *body, struct cli_args *a, struct cli_ctx *ctx, const char *usage)
{
	const char *val = cli_arg_value(a, "--warm-nodes");
	char *end;
	long long v;
	if (!val)
		return 0;
	errno = 0;
	v = strtoll(val, &end, 10);
	if (errno || !*val || *end || v < 0)
		return cli_usage_error(ctx, usage, "--warm-nodes must be a non-negative integer, not \"%s\"",
				       val);
	json_object_set_new(body, "warm_nodes", json_integer(v));
	return 0;
}

static void pool_print(struct cli_ctx *ctx, const json_t *p)
{
	char b[10][256];
	json_t *q = json_object_get(p, "quotas");
	if (ctx->json) {
		cli_doc_print(ctx, p);
		return;
	}
	fprintf(ctx->out,
		"id:                %s\nname:              %s\nprovider:          %s\n"
		"state:             %s\nnodes:             %s\nmax nodes:         %s\n"
		"max accelerators:  %s\naccelerator types: %s\nwarm nodes:        %s\n"
		"labels:            %s\n",
		cli_cell(b[0], 256, json_object_get(p, "id")),
		cli_cell(b[1], 256, json_object_get(p, "name")),
		cli_cell(b[2], 256, json_object_get(p, "provider")),
		cli_cell(b[3], 256, json_object_get(p, "state")),
		cli_cell(b[4], 256, json_object_get(p, "node_count")),
		*cli_cell(b[5], 256, json_object_get(q, "max_nodes")) ? b[5] : "unlimited",
		*cli_cell(b[6], 256, json_object_get(q, "max_accelerators")) ? b[6] : "unlimited",
		json_array_size(json_object_get(q, "accelerator_types"))
			? cli_cell(b[7], 256, json_object_get(q, "accelerator_types")) : "any",
		*cli_cell(b[9], 256, json_object_get(p, "warm_nodes")) ? b[9] : "0",
		cli_cell(b[8], 256, json_object_get(p, "labels")));
	char *cfg = json_dumps(json_object_get(p, "config"), JSON_COMPACT);
	fprintf(ctx->out, "config:            %s\n", cfg ? cfg : "{}");
	free(cfg);
	fprintf(ctx->out, "created:           %s\nupdated:           %s\n",
		cli_cell(b[0], 256, json_object_get(p, "created_at")),
		cli_cell(b[1], 256, json_object_get(p, "updated_at")));
}

static int pool_create(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *provider = cli_arg_value(a, "--provider");
	const char *config = cli_arg_value(a, "--config");
	const char *config_file = cli_arg_value(a, "--config-file");
	/* ssh pools: the fleet in a file of its own (YAML or JSON: a list of
	 * hosts, or an object with a hosts list), merged into the config. */
	const char *hosts_file = cli_arg_value(a, "--hosts");
	json_t *body = json_object(), *quotas = json_object(), *labels = json_object(), *cfg = NULL;
	json_t *res = NULL;
	const char *label;
	int rc = 0;
	while (!rc && (label = cli_arg_value_next(a, "--label"))) {
		const char *eq = strchr(label, '=');
		if (!eq || eq == label)
			rc = cli_usage_error(ctx, POOL_CREATE_USAGE, "--label must be key=value, not \"%s\"",
					     label);
		else
			json_object_setn_new(labels, label, (size_t)(eq - label), json_string(eq + 1));
	}
	if (rc || (rc = pool_quota_flags(quotas, a, ctx, POOL_CREATE_USAGE)) ||
	    (rc = pool_warm_flag(body, a, ctx, POOL_CREATE_USAGE)))
		goto out;
	const char *name = cli_arg_positional(a, 0);
	if ((rc = cli_args_finish(a, ctx, POOL_CREATE_USAGE)))
		goto out;
	if (!name || !provider) {
		rc = cli_usage_error(ctx, POOL_CREATE_USAGE, "%s is required", !name ? "NAME" : "--provider");
		goto out;
	}
	if (config && config_file) {
		rc = cli_usage_error(ctx, POOL_CREATE_USAGE, "give --config or --config-file, not both");
		goto out;
	}
	if (config) {
		json_error_t jerr;
		cfg = json_loads(config, 0, &jerr);
		if (!json_is_object(cfg)) {
			rc = cli_usage_error(ctx, POOL_CREATE_USAGE, "--config must be a JSON object: %s",
					     cfg ? "not an object" : jerr.text);
			goto out;
		}
	} else if (config_file) {
		struct nova_err err;
		if (cli_load_json_or_yaml(&cfg, config_file, &err)) {
			fprintf(ctx->errout, "novactl: %s\n", err.message);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
	}
	if (hosts_file) {
		struct nova_err err;
		json_t *hosts = NULL;
		if (cli_load_json_or_yaml(&hosts, hosts_file, &err)) {
			fprintf(ctx->errout, "novactl: %s\n", err.message);
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		if (json_is_object(hosts) && json_is_array(json_object_get(hosts, "hosts"))) {
			json_t *list = json_incref(json_object_get(hosts, "hosts"));
			json_decref(hosts);
			hosts = list;
		}
		if (!json_is_array(hosts)) {
			json_decref(hosts);
			rc = cli_usage_error(ctx, POOL_CREATE_USAGE,
					     "--hosts %s must hold a list of hosts (or {hosts: [...]})",
					     hosts_file);
			goto out;
		}
		if (!cfg)
			cfg = json_object();
		if (json_object_get(cfg, "hosts")) {
			json_decref(hosts);
			rc = cli_usage_error(ctx, POOL_CREATE_USAGE,
					     "give the hosts in --hosts or in the config, not both");
			goto out;
		}
		json_object_set_new(cfg, "hosts", hosts);
	}
	json_object_set_new(body, "name", json_string(name));
	json_object_set_new(body, "provider", json_string(provider));
	json_object_set_new(body, "config", cfg ? cfg : json_object());
	cfg = NULL;
	if (json_object_size(quotas))
		json_object_set(body, "quotas", quotas);
	if (json_object_size(labels))
		json_object_set(body, "labels", labels);
	if ((rc = cli_request(&res, ctx, "POST", "/v1/pools", body)) == 0)
		pool_print(ctx, res);
out:
	json_decref(res);
	json_decref(cfg);
	json_decref(body);
	json_decref(quotas);
	json_decref(labels);
	return rc;
}

static void pool_row(struct cli_table *t, size_t row, const json_t *p)
{
	const json_t *mn = json_object_get(json_object_get(p, "quotas"), "max_nodes");
	cli_table_json(t, row, 0, json_object_get(p, "name"));
	cli_table_json(t, row, 1, json_object_get(p, "provider"));
	cli_table_json(t, row, 2, json_object_get(p, "state"));
	cli_table_json(t, row, 3, json_object_get(p, "node_count"));
	if (json_is_null(mn))
		cli_table_fmt(t, row, 4, "unlimited");
	else
		cli_table_json(t, row, 4, mn);
	cli_table_json(t, row, 5, json_object_get(p, "created_at"));
}

static int pool_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const headers[] = {"NAME", "PROVIDER", "STATE", "NODES", "MAX-NODES", "CREATED"};
	struct cli_selector sel;
	int rc = cli_selector_take(&sel, a, ctx, POOL_LIST_USAGE);
	if (!rc)
		rc = cli_args_finish(a, ctx, POOL_LIST_USAGE);
	return rc ? rc : cli_list(ctx, "/v1/pools", headers, 6, pool_row, &sel);
}

static int pool_ref_path(char *path, size_t len, struct cli_ctx *ctx, struct cli_args *a,
			 const char *usage, const char **ref_out)
{
	char esc[512];
	const char *ref = cli_arg_positional(a, 0);
	int rc = cli_args_finish(a, ctx, usage);
	if (ref_out)
		*ref_out = ref;
	if (rc)
		return rc;
	if (!ref)
		return cli_usage_error(ctx, usage, "NAME or ID is required");
	if (cli_path_escape(esc, sizeof(esc), ref))
		return cli_usage_error(ctx, usage, "NAME or ID is too long");
	snprintf(path, len, "/v1/pools/%s", esc);
	return 0;
}

static int pool_get(struct cli_ctx *ctx, struct cli_args *a)
{
	return cli_get_each(ctx, a, POOL_GET_USAGE, "/v1/pools/", pool_print);
}

static int pool_update(struct cli_ctx *ctx, struct cli_args *a)
{
	char path[600];
	json_t *quotas = json_object(), *res = NULL, *body = json_object();
	int rc = pool_quota_flags(quotas, a, ctx, POOL_UPDATE_USAGE);
	if (!rc)
		rc = pool_warm_flag(body, a, ctx, POOL_UPDATE_USAGE);
	if (!rc)
		rc = pool_ref_path(path, sizeof(path), ctx, a, POOL_UPDATE_USAGE, NULL);
	if (!rc && json_object_size(quotas) == 0 && json_object_size(body) == 0)
		rc = cli_usage_error(ctx, POOL_UPDATE_USAGE, "nothing to update");
	if (!rc && json_object_size(quotas))
		json_object_set(body, "quotas", quotas);
	json_decref(quotas);
	if (rc) {
		json_decref(body);
		return rc;
	}
	if ((rc = cli_request(&res, ctx, "PATCH", path, body)) == 0)
		pool_print(ctx, res);
	json_decref(res);
	json_decref(body);
	return rc;
}

static int pool_delete(struct cli_ctx *ctx, struct cli_args *a)
{
	char path[640];
	bool force = cli_arg_flag(a, "--force");
	const char *ref = NULL;
	int rc = pool_ref_path(path, sizeof(path) - 16, ctx, a, "novactl pool delete NAME|ID [--force]",
			       &ref);
	if (rc)
		return rc;
	if (force)
		strcat(path, "?force=true");
	if ((rc = cli_request(NULL, ctx, "DELETE", path, NULL)) == 0 && !ctx->json)
		fprintf(ctx->out, "pool %s deleted\n", ref);
	return rc;
}

int cli_cmd_pool(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const struct cli_verb verbs[] = {
		{"create", pool_create, POOL_CREATE_USAGE},
		{"list", pool_list, POOL_LIST_USAGE},
		{"get", pool_get, POOL_GET_USAGE},
		{"update", pool_update, POOL_UPDATE_USAGE},
		{"delete", pool_delete, "novactl pool delete NAME|ID [--force]"},
	};
	return cli_verb_dispatch(ctx, "pool", POOL_USAGE, verbs, sizeof(verbs) / sizeof(verbs[0]), verb, a);
}
