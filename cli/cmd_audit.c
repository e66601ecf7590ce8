#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define AUDIT_USAGE                                                                        \
	"novactl audit [--since RFC3339] [--until RFC3339] [--key ID|NAME|admin] "        \
	"[--object NAME|ID] [--kind KIND] [--limit N] [--before ID]"

static void audit_row(struct cli_table *t, size_t row, const json_t *e)
{
	const char *name = json_string_value(json_object_get(e, "api_key_name"));
	const char *actor = json_string_value(json_object_get(e, "actor"));
	cli_table_json(t, row, 0, json_object_get(e, "id"));
	cli_table_json(t, row, 1, json_object_get(e, "at"));
	cli_table_fmt(t, row, 2, "%s", name ? name : actor ? actor : "?");
	cli_table_fmt(t, row, 3, "%s %s", json_string_value(json_object_get(e, "method")),
		      json_string_value(json_object_get(e, "route")));
	cli_table_json(t, row, 4, json_object_get(e, "object"));
	cli_table_json(t, row, 5, json_object_get(e, "status"));
	cli_table_json(t, row, 6, json_object_get(e, "error_code"));
	cli_table_json(t, row, 7, json_object_get(e, "request_id"));
}

/* "novactl audit": the audit trail, newest first (admin only). */
int cli_cmd_audit(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	if (ctx->complete)
		return cli_complete_usage(ctx, AUDIT_USAGE);
	static const char *const flags[] = {"since", "until", "key", "object", "kind", "limit",
					    "before"};
	static const char *const headers[] = {"ID", "AT", "WHO", "REQUEST", "OBJECT",
					      "STATUS", "ERROR", "REQUEST-ID"};
	const char *vals[sizeof(flags) / sizeof(flags[0])];
	char path[2048] = "/v1/audit";
	size_t used = strlen(path);
	(void)verb;
	if (cli_args_wants_help(a)) {
		fputs("usage: " AUDIT_USAGE "\n", ctx->out);
		return 0;
	}
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		char flag[16];
		snprintf(flag, sizeof(flag), "--%s", flags[i]);
		vals[i] = cli_arg_value(a, flag);
	}
	int rc = cli_args_finish(a, ctx, AUDIT_USAGE);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if ((rc = cli_query_add(path, sizeof(path), &used, flags[i], vals[i], ctx,
					AUDIT_USAGE)))
			return rc;
	json_t *res = NULL, *events, *item;
	if ((rc = cli_request(&res, ctx, "GET", path, NULL)))
		return rc;
	if (ctx->json) {
		cli_doc_print(ctx, res);
		json_decref(res);
		return 0;
	}
	struct cli_table t;
	size_t i;
	events = json_object_get(res, "events");
	if (cli_table_init(&t, headers, 8, json_array_size(events)) != 0) {
		fprintf(ctx->errout, "novactl: out of memory\n");
		json_decref(res);
		return 1;
	}
	json_array_foreach(events, i, item)
		audit_row(&t, i, item);
	cli_table_finish(&t, ctx);
	json_t *next = json_object_get(res, "next_before");
	if (json_is_integer(next))
		fprintf(ctx->errout, "older events: novactl audit --before %lld\n",
			(long long)json_integer_value(next));
	json_decref(res);
	return 0;
}
