/* novactl events: node, deployment and pool events (GET /v1/events),
 * newest last; --watch polls with the answer's cursor. --watch --kind
 * follows the event plane's stream instead (GET /v1/events/watch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/http_client.h"

#define EVENTS_USAGE                                                                          \
	"novactl events [--pool POOL] [--deployment NAME] [--node NODE] [--since RFC3339] "   \
	"[--limit N] [--watch]\n"                                                              \
	"       novactl events --watch --kind all|node,deployment,pool,route\n"               \
	"  without --since, the newest --limit events (default 200); --watch then polls\n"   \
	"  novad every 2 s with the answer's cursor and prints new events as they come,\n"   \
	"  until interrupted. --watch --kind follows the event stream (GET\n"                 \
	"  /v1/events/watch) from now: one line per event of those kinds (route events\n"    \
	"  too), resumed after the last one shown when novad goes away"
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

/* --- --watch --kind: the event stream --------------------------------------- */

struct events_stream {
	struct cli_ctx *ctx;
	long status;
	char line[65536];
	size_t len;
	char event[32];
	char id[24];         /* the last id received: Last-Event-ID on reconnect */
	char *data;
	char *error;         /* a refusal's body */
	size_t error_len;
	bool gone;           /* stdout's reader left */
};

/* One line per event: ID AT KIND SUBJECT and what happened. */
static void events_stream_line(struct events_stream *w, const char *id, json_t *ev)
{
	FILE *out = w->ctx->out;
	json_t *d = json_object_get(ev, "data");
	if (w->ctx->json) {
		char *text = json_dumps(ev, JSON_COMPACT);
		fprintf(out, "%s\n", text ? text : "null");
		free(text);
		return;
	}
	const char *kind = json_string_value(json_object_get(ev, "kind"));
	const char *name = json_string_value(json_object_get(d, "name"));
	const char *from = json_string_value(json_object_get(d, "from"));
	const char *to = json_string_value(json_object_get(d, "to"));
	const char *reason = json_string_value(json_object_get(d, "reason"));
	const char *dkind = json_string_value(json_object_get(d, "kind"));
	const char *at = json_string_value(json_object_get(ev, "at"));
	const char *subject = json_string_value(json_object_get(ev, "subject"));
	fprintf(out, "%s  %s  %-10s  %s", id, at ? at : "-", kind ? kind : "-",
		name ? name : subject ? subject : "-");
	if (to && (!dkind || !strcmp(dkind, "transition") || !kind || strcmp(kind, "deployment")))
		fprintf(out, "  %s -> %s", from ? from : "(new)", to);
	else if (dkind)
		fprintf(out, "  %s", dkind);
	if (kind && !strcmp(kind, "pool")) {
		const char *msg = json_string_value(json_object_get(d, "message"));
		if (msg && *msg)
			fprintf(out, ": %s", msg);
	} else if (kind && !strcmp(kind, "route")) {
		json_t *rest = json_deep_copy(d);
		json_object_del(rest, "model");
		json_object_del(rest, "deployment");
		json_object_del(rest, "name");
		char *text = json_dumps(rest, JSON_COMPACT);
		fprintf(out, "  %s", text ? text : "");
		free(text);
		json_decref(rest);
	}
	if (reason && *reason)
		fprintf(out, " (%s)", reason);
	fputc('\n', out);
}

static void events_stream_event(struct events_stream *w)
{
	json_t *d = w->data ? json_loads(w->data, 0, NULL) : NULL;
	if (!strcmp(w->event, "snapshot")) {
		/* Events were lost (retention): said on stderr, and in -o json
		 * as the snapshot's own line so a program sees it in order. */
		json_int_t after = json_integer_value(json_object_get(d, "after"));
		json_int_t kept = json_integer_value(json_object_get(d, "pruned_through"));
		fprintf(w->ctx->errout,
			"novactl: events after %lld are gone (kept from %lld on): list the state again\n",
			(long long)after, (long long)kept + 1);
		if (w->ctx->json) {
			json_t *s = json_pack("{s:O}", "snapshot", d);
			char *text = s ? json_dumps(s, JSON_COMPACT) : NULL;
			fprintf(w->ctx->out, "%s\n", text ? text : "null");
			free(text);
			json_decref(s);
		}
	} else if (d) {
		events_stream_line(w, w->id, d);
	}
	json_decref(d);
	free(w->data);
	w->data = NULL;
	w->event[0] = '\0';
	if (!cli_out_ok(w->ctx))
		w->gone = true;
}

static void events_stream_status(void *arg, long status)
{
	((struct events_stream *)arg)->status = status;
}

static int events_stream_on_data(void *arg, const char *data, size_t len)
{
	struct events_stream *w = arg;
	if (w->status != 200) {
		/* A refusal: its JSON body, for the message. */
		char *e = realloc(w->error, w->error_len + len + 1);
		if (!e)
			return 1;
		memcpy(e + w->error_len, data, len);
		w->error = e;
		w->error_len += len;
		e[w->error_len] = '\0';
		return 0;
	}
	for (size_t i = 0; i < len && !w->gone; i++) {
		if (data[i] != '\n') {
			if (w->len + 1 < sizeof(w->line))
				w->line[w->len++] = data[i];
			continue;
		}
		w->line[w->len] = '\0';
		w->len = 0;
		const char *line = w->line;
		if (!*line) {
			if (w->event[0] || w->data)
				events_stream_event(w);
		} else if (!strncmp(line, "event: ", 7)) {
			snprintf(w->event, sizeof(w->event), "%s", line + 7);
		} else if (!strncmp(line, "id: ", 4)) {
			snprintf(w->id, sizeof(w->id), "%s", line + 4);
		} else if (!strncmp(line, "data: ", 6)) {
			free(w->data);
			w->data = strdup(line + 6);
		} /* else a comment: where it begins, or a keep-alive */
	}
	return w->gone || cli_interrupted();
}

/* Follow the stream until interrupted (or stdout's reader leaves);
 * reconnect with the last id shown, so nothing is missed nor shown twice. */
static int events_stream_watch(struct cli_ctx *ctx, const char *kinds)
{
	struct events_stream w = {.ctx = ctx};
	char url[1400], last[64], esc[256];
	if (cli_path_escape(esc, sizeof(esc), kinds))
		return cli_usage_error(ctx, EVENTS_USAGE, "--kind is too long");
	snprintf(url, sizeof(url), "%s/v1/events/watch%s%s", ctx->server,
		 strcmp(kinds, "all") ? "?kind=" : "", strcmp(kinds, "all") ? esc : "");
	cli_watch_begin();
	for (unsigned backoff = 1;; backoff = backoff < 16 ? backoff * 2 : 16) {
		const char *const hdr[] = {last, NULL};
		snprintf(last, sizeof(last), "Last-Event-ID: %s", w.id);
		struct http_client_request req = {.method = "GET", .url = url,
						  .bearer_token = ctx->token[0] ? ctx->token : NULL,
						  .headers = w.id[0] ? hdr : NULL,
						  .cancel = cli_interrupt_flag(),
						  .on_status = events_stream_status};
		struct nova_err err;
		long status = 0;
		w.len = 0;
		w.status = 0;
		free(w.data);
		w.data = NULL;
		w.event[0] = '\0';
		int rc = http_client_stream(&status, &req, events_stream_on_data, &w, &err);
		if (w.gone || cli_interrupted())
			break;
		if (status >= 400 && status < 500 && status != 429) {
			json_t *body = w.error ? json_loads(w.error, 0, NULL) : NULL;
			int exit_status = cli_error_print(ctx, status, body);
			json_decref(body);
			free(w.error);
			free(w.data);
			return exit_status;
		}
		free(w.error);
		w.error = NULL;
		w.error_len = 0;
		if (status == 200)
			backoff = 1;
		fprintf(ctx->errout, "novactl: watch interrupted (%s); reconnecting in %u s\n",
			rc ? err.message : status && status != 200 ? "refused" : "stream ended", backoff);
		if (!cli_watch_sleep(backoff * 1000))
			break;
	}
	free(w.error);
	free(w.data);
	return 0;
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
	const char *kinds = cli_arg_value(a, "--kind");
	if ((rc = cli_args_finish(a, ctx, EVENTS_USAGE)))
		return rc;
	if (kinds) {
		/* The stream has its own ids and filters by kind only. */
		if (!watch)
			return cli_usage_error(ctx, EVENTS_USAGE, "--kind goes with --watch");
		for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
			if (vals[i])
				return cli_usage_error(ctx, EVENTS_USAGE,
						       "--kind follows the event stream, which takes no "
						       "--%s", flags[i]);
		return events_stream_watch(ctx, kinds);
	}
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
