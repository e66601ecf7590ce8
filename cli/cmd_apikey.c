#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define APIKEY_USAGE                                                                          \
	"novactl apikey create|list|revoke ...\n"                                            \
	"  novactl apikey create NAME\n"                                                      \
	"  novactl apikey list\n"                                                             \
	"  novactl apikey revoke ID"

static int apikey_create(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *name = cli_arg_positional(a, 0);
	json_t *body, *res = NULL;
	int rc = cli_args_finish(a, ctx, "novactl apikey create NAME");
	if (rc)
		return rc;
	if (!name)
		return cli_usage_error(ctx, "novactl apikey create NAME", "NAME is required");
	body = json_pack("{s:s}", "name", name);
	if ((rc = cli_request(&res, ctx, "POST", "/v1/apikeys", body)) == 0) {
		if (ctx->json) {
			cli_json_print(ctx->out, res);
		} else {
			/* The key alone on stdout, so KEY=$(novactl apikey create ci) works. */
			fprintf(ctx->out, "%s\n", json_string_value(json_object_get(res, "key")));
			fprintf(ctx->errout, "api key %s (%s) created; it is shown once: store it now\n",
				json_string_value(json_object_get(res, "name")),
				json_string_value(json_object_get(res, "id")));
		}
	}
	json_decref(res);
	json_decref(body);
	return rc;
}

static void apikey_row(struct cli_table *t, size_t row, const json_t *k)
{
	static const char *const keys[] = {"id", "name", "prefix", "created_at", "last_used_at", "revoked_at"};
	for (size_t c = 0; c < 6; c++)
		cli_table_json(t, row, c, json_object_get(k, keys[c]));
}

static int apikey_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const headers[] = {"ID", "NAME", "PREFIX", "CREATED", "LAST-USED", "REVOKED"};
	int rc = cli_args_finish(a, ctx, "novactl apikey list");
	return rc ? rc : cli_list(ctx, "/v1/apikeys", headers, 6, apikey_row);
}

static int apikey_revoke(struct cli_ctx *ctx, struct cli_args *a)
{
	char path[600], esc[512];
	const char *id = cli_arg_positional(a, 0);
	int rc = cli_args_finish(a, ctx, "novactl apikey revoke ID");
	if (rc)
		return rc;
	if (!id)
		return cli_usage_error(ctx, "novactl apikey revoke ID", "ID is required");
	if (cli_path_escape(esc, sizeof(esc), id))
		return cli_usage_error(ctx, "novactl apikey revoke ID", "ID is too long");
	snprintf(path, sizeof(path), "/v1/apikeys/%s", esc);
	if ((rc = cli_request(NULL, ctx, "DELETE", path, NULL)) == 0 && !ctx->json)
		fprintf(ctx->out, "api key %s revoked\n", id);
	return rc;
}

int cli_cmd_apikey(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const struct cli_verb verbs[] = {
		{"create", apikey_create, "novactl apikey create NAME"},
		{"list", apikey_list, "novactl apikey list"},
		{"revoke", apikey_revoke, "novactl apikey revoke ID"},
	};
	return cli_verb_dispatch(ctx, "apikey", APIKEY_USAGE, verbs, sizeof(verbs) / sizeof(verbs[0]), verb, a);
}
