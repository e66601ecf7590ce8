#include <stdlib.h>

#include "cli/cli.h"

/* The client's version is printed before the server is asked, so it shows
 * even when novad is down (the exit status then says so: 6). */
int cli_cmd_version(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *res = NULL;
	const char *server_version;
	int rc = cli_args_finish(a, ctx, "novactl version");
	if (rc)
		return rc;
	if (!ctx->json)
		fprintf(ctx->out, "novactl %s\n", NOVA_VERSION);
	rc = cli_request(&res, ctx, "GET", "/healthz", NULL);
	server_version = json_string_value(json_object_get(res, "version"));
	if (ctx->json) {
		json_t *v = json_pack("{s:s, s:s, s:s?}", "client_version", NOVA_VERSION, "server",
				      ctx->server, "server_version", rc ? NULL : server_version);
		cli_doc_print(ctx, v);
		json_decref(v);
	} else if (rc == 0) {
		fprintf(ctx->out, "novad   %s (%s)\n", server_version ? server_version : "unknown",
			ctx->server);
	}
	json_decref(res);
	return rc;
}
