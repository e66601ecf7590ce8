#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define NODE_LIST_USAGE "novactl node list [--pool POOL] [-l|--selector key=value,...]"
#define NODE_GET_USAGE "novactl node get NODE..."
#define NODE_USAGE                                                                            \
	"novactl node list|get|cordon|uncordon|drain ...\n"                                  \
	"  " NODE_LIST_USAGE "\n"                                                 \
	"  " NODE_GET_USAGE "\n"                                                           \
	"  novactl node cordon NODE\n"                                                        \
	"  novactl node uncordon NODE\n"                                                      \
	"  novactl node drain NODE"

static void node_print(struct cli_ctx *ctx, const json_t *n)
{
	char b[12][256];
	json_t *acc = json_object_get(n, "accelerators"), *r, *e;
	size_t i;
	if (ctx->json) {
		cli_doc_print(ctx, n);
		return;
	}
	fprintf(ctx->out,
		"id:             %s\nname:           %s\npool:           %s\nstate:          %s (%s)\n"
		"cordoned:       %s\naccelerators:   %s x %s\nhandle:         %s\nendpoint:       %s\n"
		"last heartbeat: %s\n",
		cli_cell(b[0], 256, json_object_get(n, "id")), cli_cell(b[1], 256, json_object_get(n, "name")),
		cli_cell(b[2], 256, json_object_get(json_object_get(n, "pool"), "name")),
		cli_cell(b[3], 256, json_object_get(n, "state")),
		cli_cell(b[4], 256, json_object_get(n, "state_reason")),
		cli_cell(b[5], 256, json_object_get(n, "cordoned")),
		cli_cell(b[6], 256, json_object_get(acc, "count")),
		*cli_cell(b[7], 256, json_object_get(acc, "type")) ? b[7] : "any",
		*cli_cell(b[8], 256, json_object_get(n, "handle")) ? b[8] : "-",
		*cli_cell(b[9], 256, json_object_get(n, "endpoint")) ? b[9] : "-",
		*cli_cell(b[10], 256, json_object_get(n, "last_heartbeat_at")) ? b[10] : "never");
	json_array_foreach(json_object_get(n, "replicas"), i, r)
		fprintf(ctx->out, "replica:        %s #%s stage %s: %s (%s accelerators)\n",
			cli_cell(b[0], 256, json_object_get(r, "deployment")),
			cli_cell(b[1], 256, json_object_get(r, "ordinal")),
			cli_cell(b[2], 256, json_object_get(r, "stage")),
			cli_cell(b[3], 256, json_object_get(r, "state")),
			cli_cell(b[4], 256, json_object_get(r, "accelerators")));
	json_array_foreach(json_object_get(n, "events"), i, e)
		fprintf(ctx->out, "event:          %s %s -> %s: %s\n",
			cli_cell(b[0], 256, json_object_get(e, "at")),
			*cli_cell(b[1], 256, json_object_get(e, "from")) ? b[1] : "-",
			cli_cell(b[2], 256, json_object_get(e, "to")),
			cli_cell(b[3], 256, json_object_get(e, "reason")));
}

static void node_row(struct cli_table *t, size_t row, const json_t *n)
{
	const json_t *acc = json_object_get(n, "accelerators");
	const char *type = json_string_value(json_object_get(acc, "type"));
	cli_table_json(t, row, 0, json_object_get(n, "name"));
	cli_table_json(t, row, 1, json_object_get(json_object_get(n, "pool"), "name"));
	cli_table_json(t, row, 2, json_object_get(n, "state"));
	cli_table_json(t, row, 3, json_object_get(n, "cordoned"));
	cli_table_fmt(t, row, 4, "%lld x %s", (long long)json_integer_value(json_object_get(acc, "count")),
		      type ? type : "any");
	cli_table_json(t, row, 5, json_object_get(n, "last_heartbeat_at"));
}

static int node_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const headers[] = {"NAME", "POOL", "STATE", "CORDONED", "ACCELERATORS",
					      "LAST-HEARTBEAT"};
	const char *pool = cli_arg_value(a, "--pool");
	char path[600], esc[512];
	struct cli_selector sel;
	int rc = cli_selector_take(&sel, a, ctx, NODE_LIST_USAGE);
	if (rc || (rc = cli_args_finish(a, ctx, NODE_LIST_USAGE)))
		return rc;
	if (pool) {
		if (cli_path_escape(esc, sizeof(esc), pool))
			return cli_usage_error(ctx, NODE_LIST_USAGE, "--pool is too long");
		snprintf(path, sizeof(path), "/v1/nodes?pool=%s", esc);
	} else {
		snprintf(path, sizeof(path), "/v1/nodes");
	}
	return cli_list(ctx, path, headers, 6, node_row, &sel);
}

/* get, cordon, uncordon, drain: a node reference, one request. */
static int node_simple(struct cli_ctx *ctx, struct cli_args *a, const char *usage,
		       const char *method, const char *suffix)
{
	char path[640], esc[512];
	const char *ref = cli_arg_positional(a, 0);
	json_t *res = NULL;
	int rc = cli_args_finish(a, ctx, usage);
	if (rc)
		return rc;
	if (!ref)
		return cli_usage_error(ctx, usage, "NODE is required");
	if (cli_path_escape(esc, sizeof(esc), ref))
		return cli_usage_error(ctx, usage, "NODE is too long");
	snprintf(path, sizeof(path), "/v1/nodes/%s%s", esc, suffix);
	if ((rc = cli_request(&res, ctx, method, path, NULL)) == 0)
		node_print(ctx, res);
	json_decref(res);
	return rc;
}

static int node_get(struct cli_ctx *ctx, struct cli_args *a)
{
	return cli_get_each(ctx, a, NODE_GET_USAGE, "/v1/nodes/", node_print);
}

static int node_cordon(struct cli_ctx *ctx, struct cli_args *a)
{
	return node_simple(ctx, a, "novactl node cordon NODE", "POST", "/cordon");
}

static int node_uncordon(struct cli_ctx *ctx, struct cli_args *a)
{
	return node_simple(ctx, a, "novactl node uncordon NODE", "POST", "/uncordon");
}

static int node_drain(struct cli_ctx *ctx, struct cli_args *a)
{
	return node_simple(ctx, a, "novactl node drain NODE", "POST", "/drain");
}

int cli_cmd_node(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const struct cli_verb verbs[] = {
		{"list", node_list, NODE_LIST_USAGE},
		{"get", node_get, NODE_GET_USAGE},
		{"cordon", node_cordon, "novactl node cordon NODE"},
		{"uncordon", node_uncordon, "novactl node uncordon NODE"},
		{"drain", node_drain, "novactl node drain NODE"},
	};
	return cli_verb_dispatch(ctx, "node", NODE_USAGE, verbs, sizeof(verbs) / sizeof(verbs[0]),
				 verb, a);
}
