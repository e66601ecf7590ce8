#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define MODEL_USAGE                                                                           \
	"novactl model register|list|get|delete ...\n"                                       \
	"  novactl model register -f MODEL.yaml   (JSON or YAML; see etc/models/)\n"          \
	"  novactl model list\n"                                                              \
	"  novactl model get NAME[:VERSION]|ID...\n"                                             \
	"  novactl model delete NAME[:VERSION]|ID"

static void model_print(struct cli_ctx *ctx, const json_t *m)
{
	char b[6][256];
	json_t *stages = json_object_get(m, "stages"), *s;
	size_t i;
	if (ctx->json) {
		cli_doc_print(ctx, m);
		return;
	}
	fprintf(ctx->out, "id:       %s\nname:     %s\nversion:  %s\nkind:     %s\n",
		cli_cell(b[0], 256, json_object_get(m, "id")),
		cli_cell(b[1], 256, json_object_get(m, "name")),
		cli_cell(b[2], 256, json_object_get(m, "version")),
		cli_cell(b[3], 256, json_object_get(m, "kind")));
	json_array_foreach(stages, i, s)
		fprintf(ctx->out, "stage:    %s: %s x %s\n", cli_cell(b[0], 256, json_object_get(s, "name")),
			cli_cell(b[1], 256, json_object_get(s, "accelerators")),
			*cli_cell(b[2], 256, json_object_get(s, "accelerator_type")) ? b[2] : "any");
	if (json_object_get(m, "adapters"))
		fprintf(ctx->out, "adapters: %s\n", cli_cell(b[4], 256, json_object_get(m, "adapters")));
	if (json_object_get(m, "max_adapters"))
		fprintf(ctx->out, "max adapters: %s\n", cli_cell(b[4], 256, json_object_get(m, "max_adapters")));
	fprintf(ctx->out, "created:  %s\n", cli_cell(b[5], 256, json_object_get(m, "created_at")));
}

static int model_register(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *usage = "novactl model register -f MODEL.yaml";
	const char *file = cli_arg_value(a, "-f");
	json_t *spec = NULL, *res = NULL;
	struct nova_err err;
	int rc;
	if (!file)
		file = cli_arg_value(a, "--file");
	if ((rc = cli_args_finish(a, ctx, usage)))
		return rc;
	if (!file)
		return cli_usage_error(ctx, usage, "-f FILE is required");
	if (cli_load_json_or_yaml(&spec, file, &err)) {
		fprintf(ctx->errout, "novactl: %s\n", err.message);
		return CLI_EXIT_USAGE;
	}
	if ((rc = cli_request(&res, ctx, "POST", "/v1/models", spec)) == 0)
		model_print(ctx, res);
	json_decref(res);
	json_decref(spec);
	return rc;
}

static void model_row(struct cli_table *t, size_t row, const json_t *m)
{
	cli_table_json(t, row, 0, json_object_get(m, "name"));
	cli_table_json(t, row, 1, json_object_get(m, "version"));
	cli_table_json(t, row, 2, json_object_get(m, "kind"));
	cli_table_fmt(t, row, 3, "%zu", json_array_size(json_object_get(m, "stages")));
	cli_table_json(t, row, 4, json_object_get(m, "created_at"));
}

static int model_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const headers[] = {"NAME", "VERSION", "KIND", "STAGES", "CREATED"};
	int rc = cli_args_finish(a, ctx, "novactl model list");
	return rc ? rc : cli_list(ctx, "/v1/models", headers, 5, model_row, NULL);
}

static int model_ref(char *path, size_t len, struct cli_ctx *ctx, struct cli_args *a,
		     const char *usage, const char **ref)
{
	char esc[512];
	int rc;
	*ref = cli_arg_positional(a, 0);
	if ((rc = cli_args_finish(a, ctx, usage)))
		return rc;
	if (!*ref)
		return cli_usage_error(ctx, usage, "NAME or ID is required");
	if (cli_path_escape(esc, sizeof(esc), *ref))
		return cli_usage_error(ctx, usage, "NAME or ID is too long");
	snprintf(path, len, "/v1/models/%s", esc);
	return 0;
}

static int model_get(struct cli_ctx *ctx, struct cli_args *a)
{
	return cli_get_each(ctx, a, "novactl model get NAME[:VERSION]|ID...", "/v1/models/",
			    model_print);
}

static int model_delete(struct cli_ctx *ctx, struct cli_args *a)
{
	char path[600];
	const char *ref;
	int rc = model_ref(path, sizeof(path), ctx, a, "novactl model delete NAME[:VERSION]|ID", &ref);
	if (!rc && (rc = cli_request(NULL, ctx, "DELETE", path, NULL)) == 0 && !ctx->json)
		fprintf(ctx->out, "model %s deleted\n", ref);
	return rc;
}

int cli_cmd_model(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const struct cli_verb verbs[] = {
		{"register", model_register, "novactl model register -f MODEL.yaml"},
		{"list", model_list, "novactl model list"},
		{"get", model_get, "novactl model get NAME[:VERSION]|ID..."},
		{"delete", model_delete, "novactl model delete NAME[:VERSION]|ID"},
	};
	return cli_verb_dispatch(ctx, "model", MODEL_USAGE, verbs, sizeof(verbs) / sizeof(verbs[0]), verb, a);
}
