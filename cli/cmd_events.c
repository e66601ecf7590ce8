/* novactl events: node, deployment and pool events (GET /v1/events),
 * newest last; --watch polls with the answer's cursor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define EVENTS_USAGE                                                                          \
	"novactl events [--pool POOL] [--deployment NAME] [--node NODE] [--since RFC3339] "   \
	"[--limit N] [--watch]\n"                                                              \
	"  without --since, the newest --limit events (default 200); --watch then polls\n"   \
	"  novad every 2 s with the answer's cursor and prints new events as they come,\n"   \
	"  until interrupted"
/* The poll period of --watch: events are human-paced (a transition takes
 * seconds), and each poll is one indexed query per source. */
#define EVENTS_POLL_MS 2000

static const char *const events_headers[] = {"AT", "SOURCE", "OBJECT", "POOL", "EVENT", "REASON"};

static void events_row(struct cli_table *t, size_t row, const json_t *e)
{
	const char *kind = json_string_value(json_object_get(e, "kind"));
	const char *from = json_string_value(json_object_get(e, "from"));
	const char *to = json_string_value(json_object_get(e, "to"));
	cli_table_json(t, row, 0, json_object_get(e, "at"));
	cli_table_json(t, row, 1, json_object_get(e, "source"));
	cli_table_json(t, row, 2, json_object_get(e, "object"));
	cli_table_json(t, row, 3, json_object_get(e, "pool"));
	if (kind && strcmp(kind, "transition") != 0)
		cli_table_fmt(t, row, 4, "%s", kind);
	else
		cli_table_fmt(t, row, 4, "%s -> %s", from ? from : "(new)", to ? to : "?");
	cli_table_json(t, row, 5, json_object_get(e, "reason"));
}

/* A batch of events: a table (its header once, over the first rows), or
 * as -o asks (with --watch, -o json is one event per line). */
static void events_print(struct cli_ctx *ctx, const json_t *events, bool watch, bool *header_done)
{
	struct cli_table t;
	size_t i;
	json_t *e;
	if (ctx->output == CLI_OUTPUT_NAME) {
		/* An event has no name: its source and seq identify it. */
		json_array_foreach(events, i, e)
			fprintf(ctx->out, "event/%s-%lld\n",
				json_string_value(json_object_get(e, "source")),
				(long long)json_integer_value(json_object_get(e, "seq")));
		return;
	}
	if (ctx->json) {
		if (watch && ctx->output == CLI_OUTPUT_JSON) {
			json_array_foreach(events, i, e) {
				char *line = json_dumps(e, JSON_COMPACT);
				if (line)
					fprintf(ctx->out, "%s\n", line);
				free(line);
			}
		} else if (!watch || json_array_size(events)) {
			cli_doc_print(ctx, events);
		}
		return;
	}
	if (!json_array_size(events)) {
		if (!watch)
			fprintf(ctx->errout, "no events\n");
		return;
	}
	if (cli_table_init(&t, events_headers, 6, json_array_size(events)) != 0) {
		fprintf(ctx->errout, "novactl: out of memory\n");
		return;
	}
	json_array_foreach(events, i, e)
		events_row(&t, i, e);
	bool no_headers = ctx->no_headers;
	if (*header_done)
		ctx->no_headers = true;
	*header_done = true;
	cli_table_finish(&t, ctx);
	ctx->no_headers = no_headers;
}

int cli_cmd_events(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const char *const flags[] = {"pool", "deployment", "node", "since", "limit"};
	const char *vals[sizeof(flags) / sizeof(flags[0])];
	char path[2048] = "/v1/events";
	size_t used = strlen(path), base;
	int rc = 0;
	(void)verb;
	if (ctx->complete)
		return cli_complete_usage(ctx, EVENTS_USAGE);
	if (cli_args_wants_help(a)) {
		fputs("usage: " EVENTS_USAGE "\n", ctx->out);
		return 0;
	}
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		char flag[16];
		snprintf(flag, sizeof(flag), "--%s", flags[i]);
		vals[i] = cli_arg_value(a, flag);
	}
	bool watch = cli_arg_flag(a, "--watch");
	if ((rc = cli_args_finish(a, ctx, EVENTS_USAGE)))
		return rc;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if ((rc = cli_query_add(path, sizeof(path), &used, flags[i], vals[i], ctx,
					EVENTS_USAGE)))
			return rc;
	base = used;
	if (watch)
		cli_watch_begin();
	json_t *res = NULL;
	if ((rc = cli_request(&res, ctx, "GET", path, NULL)))
		return rc;
	if (!watch) {
		if (ctx->json && ctx->output != CLI_OUTPUT_NAME)
			cli_doc_print(ctx, res);
		else
			events_print(ctx, json_object_get(res, "events"), false, &(bool){false});
		json_decref(res);
		return 0;
	}
	/* The watch: each answer's cursor asks for what came after it; the
	 * filters stay, --since is already behind the cursor. */
	bool header_done = false;
	for (;;) {
		char cursor[96];
		const char *c = json_string_value(json_object_get(res, "cursor"));
		events_print(ctx, json_object_get(res, "events"), true, &header_done);
		snprintf(cursor, sizeof(cursor), "%s", c ? c : "0-0-0");
		bool more = json_is_true(json_object_get(res, "more"));
		json_decref(res);
		res = NULL;
		if (!cli_out_ok(ctx) || (!more && !cli_watch_sleep(EVENTS_POLL_MS)) || cli_interrupted())
			return 0;
		used = base;
		path[used] = '\0';
		if ((rc = cli_query_add(path, sizeof(path), &used, "after", cursor, ctx, EVENTS_USAGE)))
			return rc;
		while ((rc = cli_request(&res, ctx, "GET", path, NULL)) == 6) {
			/* novad away (a restart): the cursor keeps our place. */
			fprintf(ctx->errout, "novactl: retrying in %d s\n", EVENTS_POLL_MS / 1000);
			if (!cli_watch_sleep(EVENTS_POLL_MS))
				return 0;
		}
		if (rc)
			return cli_interrupted() ? 0 : rc;
	}
}
