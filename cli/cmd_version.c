#include "cli/cli.h"

int cli_cmd_version(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *res = NULL;
	int rc = cli_args_finish(a, ctx, "novactl version");
	if (rc)
		return rc;
	fprintf(ctx->out, "novactl %s\n", NOVA_VERSION);
	if ((rc = cli_request(&res, ctx, "GET", "/healthz", NULL)) == 0)
		fprintf(ctx->out, "novad   %s (%s)\n",
			json_string_value(json_object_get(res, "version")) ? json_string_value(json_object_get(res, "version")) : "unknown",
			ctx->server);
	json_decref(res);
	return rc;
}
