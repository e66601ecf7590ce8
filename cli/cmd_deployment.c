#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define DEPLOY_USAGE                                                                          \
	"novactl deploy MODEL --pool POOL [--replicas N] [--placement binpack|spread] "       \
	"[--label k=v ...] [--name NAME]"
#define DEPLOYMENT_USAGE                                                                      \
	"novactl deployment list|get|scale|stop|start|delete ...\n"                          \
	"  novactl deployment list\n"                                                         \
	"  novactl deployment get NAME|ID\n"                                                  \
	"  novactl deployment scale NAME|ID --replicas N\n"                                   \
	"  novactl deployment stop NAME|ID\n"                                                 \
	"  novactl deployment start NAME|ID\n"                                                \
	"  novactl deployment delete NAME|ID"

static void dep_print(struct cli_ctx *ctx, const json_t *d)
{
	char b[11][256]; /* one per cell of a printf: they are all read at once */
	json_t *r, *e;
	size_t i;
	if (ctx->json) {
		cli_doc_print(ctx, d);
		return;
	}
	json_t *m = json_object_get(d, "model");
	fprintf(ctx->out,
		"id:        %s\nname:      %s\nmodel:     %s:%s (%s)\npool:      %s\n"
		"replicas:  %s ready of %s\nplacement: %s\nstate:     %s (%s)\n",
		cli_cell(b[0], 256, json_object_get(d, "id")),
		cli_cell(b[1], 256, json_object_get(d, "name")),
		cli_cell(b[2], 256, json_object_get(m, "name")),
		cli_cell(b[3], 256, json_object_get(m, "version")),
		cli_cell(b[4], 256, json_object_get(m, "kind")),
		cli_cell(b[5], 256, json_object_get(json_object_get(d, "pool"), "name")),
		cli_cell(b[6], 256, json_object_get(d, "ready_replicas")),
		cli_cell(b[7], 256, json_object_get(d, "replicas")),
		cli_cell(b[8], 256, json_object_get(d, "placement")),
		cli_cell(b[9], 256, json_object_get(d, "state")),
		cli_cell(b[10], 256, json_object_get(d, "state_reason")));
	json_array_foreach(json_object_get(d, "replica_list"), i, r)
		fprintf(ctx->out, "replica %s: %s %s\n", cli_cell(b[0], 256, json_object_get(r, "ordinal")),
			cli_cell(b[1], 256, json_object_get(r, "state")),
			*cli_cell(b[2], 256, json_object_get(r, "endpoint")) ? b[2] : "");
	json_array_foreach(json_object_get(d, "events"), i, e)
		fprintf(ctx->out, "event:     %s %s -> %s: %s\n", cli_cell(b[0], 256, json_object_get(e, "at")),
			*cli_cell(b[1], 256, json_object_get(e, "from")) ? b[1] : "-",
			cli_cell(b[2], 256, json_object_get(e, "to")),
			cli_cell(b[3], 256, json_object_get(e, "reason")));
}

static int dep_replicas_arg(long long *out, const char *val, struct cli_ctx *ctx, const char *usage)
{
	char *end;
	errno = 0;
	*out = strtoll(val, &end, 10);
	if (errno || !*val || *end || *out < 0)
		return cli_usage_error(ctx, usage, "--replicas must be a non-negative integer, not \"%s\"",
				       val);
	return 0;
}

int cli_cmd_deploy(struct cli_ctx *ctx, const char *model, struct cli_args *a)
{
	if (ctx->complete)
		return cli_complete_usage(ctx, DEPLOY_USAGE);
	const char *pool = cli_arg_value(a, "--pool"), *replicas = cli_arg_value(a, "--replicas");
	const char *placement = cli_arg_value(a, "--placement"), *name = cli_arg_value(a, "--name");
	json_t *body = json_object(), *labels = json_object(), *res = NULL;
	const char *label;
	long long n = 1;
	int rc = 0;
	if (!model || !strcmp(model, "--help") || !strcmp(model, "-h") || cli_args_wants_help(a)) {
		fprintf(model ? ctx->out : ctx->errout, "usage: %s\n", DEPLOY_USAGE);
		rc = model ? 0 : CLI_EXIT_USAGE;
		goto out;
	}
	while (!rc && (label = cli_arg_value_next(a, "--label"))) {
		const char *eq = strchr(label, '=');
		if (!eq || eq == label)
			rc = cli_usage_error(ctx, DEPLOY_USAGE, "--label must be key=value, not \"%s\"", label);
		else
			json_object_setn_new(labels, label, (size_t)(eq - label), json_string(eq + 1));
	}
	if (rc || (rc = cli_args_finish(a, ctx, DEPLOY_USAGE)))
		goto out;
	if (!pool) {
		rc = cli_usage_error(ctx, DEPLOY_USAGE, "--pool is required");
		goto out;
	}
	if (replicas && (rc = dep_replicas_arg(&n, replicas, ctx, DEPLOY_USAGE)))
		goto out;
	json_object_set_new(body, "model", json_string(model));
	json_object_set_new(body, "pool", json_string(pool));
	json_object_set_new(body, "replicas", json_integer(n));
	if (placement)
		json_object_set_new(body, "placement", json_string(placement));
	if (name)
		json_object_set_new(body, "name", json_string(name));
	if (json_object_size(labels))
		json_object_set(body, "labels", labels);
	if ((rc = cli_request(&res, ctx, "POST", "/v1/deployments", body)) == 0)
		dep_print(ctx, res);
out:
	json_decref(res);
	json_decref(body);
	json_decref(labels);
	return rc;
}

static int dep_ref(char *path, size_t len, struct cli_ctx *ctx, struct cli_args *a,
		   const char *usage, const char *suffix)
{
	char esc[512];
	const char *ref = cli_arg_positional(a, 0);
	int rc = cli_args_finish(a, ctx, usage);
	if (rc)
		return rc;
	if (!ref)
		return cli_usage_error(ctx, usage, "NAME or ID is required");
	if (cli_path_escape(esc, sizeof(esc), ref))
		return cli_usage_error(ctx, usage, "NAME or ID is too long");
	snprintf(path, len, "/v1/deployments/%s%s", esc, suffix);
	return 0;
}

static void dep_row(struct cli_table *t, size_t row, const json_t *d)
{
	const json_t *m = json_object_get(d, "model");
	cli_table_json(t, row, 0, json_object_get(d, "name"));
	cli_table_fmt(t, row, 1, "%s:%s", json_string_value(json_object_get(m, "name")),
		      json_string_value(json_object_get(m, "version")));
	cli_table_json(t, row, 2, json_object_get(json_object_get(d, "pool"), "name"));
	cli_table_fmt(t, row, 3, "%lld/%lld",
		      (long long)json_integer_value(json_object_get(d, "ready_replicas")),
		      (long long)json_integer_value(json_object_get(d, "replicas")));
	cli_table_json(t, row, 4, json_object_get(d, "state"));
	cli_table_json(t, row, 5, json_object_get(d, "state_reason"));
}

static int dep_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const headers[] = {"NAME", "MODEL", "POOL", "READY", "STATE", "REASON"};
	int rc = cli_args_finish(a, ctx, "novactl deployment list");
	return rc ? rc : cli_list(ctx, "/v1/deployments", headers, 6, dep_row);
}

/* get, stop, start: a reference, one request, print the deployment. */
static int dep_simple(struct cli_ctx *ctx, struct cli_args *a, const char *usage,
		      const char *method, const char *suffix)
{
	char path[640];
	json_t *res = NULL;
	int rc = dep_ref(path, sizeof(path), ctx, a, usage, suffix);
	if (!rc && (rc = cli_request(&res, ctx, method, path, NULL)) == 0)
		dep_print(ctx, res);
	json_decref(res);
	return rc;
}

static int dep_get(struct cli_ctx *ctx, struct cli_args *a)
{
	return dep_simple(ctx, a, "novactl deployment get NAME|ID", "GET", "");
}

static int dep_stop(struct cli_ctx *ctx, struct cli_args *a)
{
	return dep_simple(ctx, a, "novactl deployment stop NAME|ID", "POST", "/stop");
}

static int dep_start(struct cli_ctx *ctx, struct cli_args *a)
{
	return dep_simple(ctx, a, "novactl deployment start NAME|ID", "POST", "/start");
}

static int dep_scale(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *usage = "novactl deployment scale NAME|ID --replicas N";
	const char *replicas = cli_arg_value(a, "--replicas");
	char path[640];
	long long n;
	json_t *body, *res = NULL;
	int rc = dep_ref(path, sizeof(path), ctx, a, usage, "");
	if (rc)
		return rc;
	if (!replicas)
		return cli_usage_error(ctx, usage, "--replicas is required");
	if ((rc = dep_replicas_arg(&n, replicas, ctx, usage)))
		return rc;
	body = json_pack("{s:I}", "replicas", (json_int_t)n);
	if ((rc = cli_request(&res, ctx, "PATCH", path, body)) == 0)
		dep_print(ctx, res);
	json_decref(body);
	json_decref(res);
	return rc;
}

static int dep_delete(struct cli_ctx *ctx, struct cli_args *a)
{
	char path[640];
	const char *usage = "novactl deployment delete NAME|ID";
	int rc = dep_ref(path, sizeof(path), ctx, a, usage, "");
	if (!rc && (rc = cli_request(NULL, ctx, "DELETE", path, NULL)) == 0 && !ctx->json)
		fprintf(ctx->out, "deployment deleted\n");
	return rc;
}

int cli_cmd_deployment(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const struct cli_verb verbs[] = {
		{"list", dep_list, "novactl deployment list"},
		{"get", dep_get, "novactl deployment get NAME|ID"},
		{"scale", dep_scale, "novactl deployment scale NAME|ID --replicas N"},
		{"stop", dep_stop, "novactl deployment stop NAME|ID"},
		{"start", dep_start, "novactl deployment start NAME|ID"},
		{"delete", dep_delete, "novactl deployment delete NAME|ID"},
	};
	return cli_verb_dispatch(ctx, "deployment", DEPLOYMENT_USAGE, verbs,
				 sizeof(verbs) / sizeof(verbs[0]), verb, a);
}
