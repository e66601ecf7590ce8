#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define APIKEY_USAGE                                                                          \
	"novactl apikey create|list|revoke ...\n"                                            \
	"  novactl apikey create NAME --scope SCOPE [--scope SCOPE ...] [--expires RFC3339]\n" \
	"      scopes: admin, write, read, routes, router, inference (at least one)\n"       \
	"  novactl apikey list\n"                                                             \
	"  novactl apikey revoke ID"

#define APIKEY_CREATE_USAGE \
	"novactl apikey create NAME --scope SCOPE [--scope SCOPE ...] [--expires RFC3339]"

/* The scopes go to novad as given: it names a bad one ("scopes[1]"), so
 * the CLI keeps no second list of them to fall out of date. */
static int apikey_create(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *scopes = json_array(), *body = NULL, *res = NULL;
	const char *scope, *expires = cli_arg_value(a, "--expires"), *name;
	int rc;
	while ((scope = cli_arg_value_next(a, "--scope")))
		json_array_append_new(scopes, json_string(scope));
	name = cli_arg_positional(a, 0);
	if ((rc = cli_args_finish(a, ctx, APIKEY_CREATE_USAGE)))
		goto out;
	if (!name) {
		rc = cli_usage_error(ctx, APIKEY_CREATE_USAGE, "NAME is required");
		goto out;
	}
	if (json_array_size(scopes) == 0) {
		rc = cli_usage_error(ctx, APIKEY_CREATE_USAGE,
				     "--scope is required (admin, write, read, routes, router, inference)");
		goto out;
	}
	body = json_pack("{s:s, s:O}", "name", name, "scopes", scopes);
	if (expires)
		json_object_set_new(body, "expires_at", json_string(expires));
	if ((rc = cli_request(&res, ctx, "POST", "/v1/apikeys", body)) == 0) {
		if (ctx->json) {
			cli_doc_print(ctx, res);
		} else {
			/* The key alone on stdout, so KEY=$(novactl apikey create ci) works. */
			fprintf(ctx->out, "%s\n", json_string_value(json_object_get(res, "key")));
			fprintf(ctx->errout, "api key %s (%s) created; it is shown once: store it now\n",
				json_string_value(json_object_get(res, "name")),
				json_string_value(json_object_get(res, "id")));
		}
	}
out:
	json_decref(res);
	json_decref(body);
	json_decref(scopes);
	return rc;
}

static void apikey_row(struct cli_table *t, size_t row, const json_t *k)
{
	static const char *const keys[] = {"id", "name", "prefix", "scopes", "created_at",
					   "last_used_at", "expires_at", "revoked_at"};
	for (size_t c = 0; c < 8; c++) {
		const json_t *v = json_object_get(k, keys[c]);
		if (json_is_array(v)) {
			char buf[128] = "";
			size_t i, used = 0;
			json_t *s;
			json_array_foreach(v, i, s) {
				int n = snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "",
						 json_string_value(s) ? json_string_value(s) : "?");
				if (n < 0 || (size_t)n >= sizeof(buf) - used)
					break;
				used += (size_t)n;
			}
			cli_table_fmt(t, row, c, "%s", buf); /* "write,read", not JSON */
		} else {
			cli_table_json(t, row, c, v);
		}
	}
}

static int apikey_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const headers[] = {"ID", "NAME", "PREFIX", "SCOPES", "CREATED",
					      "LAST-USED", "EXPIRES", "REVOKED"};
	int rc = cli_args_finish(a, ctx, "novactl apikey list");
	return rc ? rc : cli_list(ctx, "/v1/apikeys", headers, 8, apikey_row, NULL);
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
		{"create", apikey_create, APIKEY_CREATE_USAGE},
		{"list", apikey_list, "novactl apikey list"},
		{"revoke", apikey_revoke, "novactl apikey revoke ID"},
	};
	return cli_verb_dispatch(ctx, "apikey", APIKEY_USAGE, verbs, sizeof(verbs) / sizeof(verbs[0]), verb, a);
}
