#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/http_client.h"

#define ROUTES_USAGE                                                                          \
	"novactl routes [--model NAME] [--watch]\n"                                           \
	"  --watch --model NAME: the stream's snapshot and changes of that model (and its\n"  \
	"  adapters) only; the stream carries every model, and novactl drops the rest"

static void routes_print(struct cli_ctx *ctx, const json_t *body)
{
	static const char *const headers[] = {"MODEL", "ADAPTER", "VERSION", "ENDPOINT", "NODE", "QUEUE"};
	const json_t *routes = json_object_get(body, "routes"), *r, *ep;
	struct cli_table t;
	size_t i, j, rows = 0, row = 0;
	/* A route with no endpoint (its model scaled to zero, or its replicas
	 * all failed) is one row with "-" for the endpoint: the model is known,
	 * and a router holds its requests. */
	json_array_foreach(routes, i, r) {
		size_t n = json_array_size(json_object_get(r, "endpoints"));
		rows += n ? n : 1;
	}
	if (cli_table_init(&t, headers, 6, rows) != 0) {
		fprintf(ctx->errout, "novactl: out of memory\n");
		return;
	}
	json_array_foreach(routes, i, r) {
		if (json_array_size(json_object_get(r, "endpoints")) == 0) {
			cli_table_json(&t, row, 0, json_object_get(r, "model"));
			cli_table_json(&t, row, 1, json_object_get(r, "adapter"));
			cli_table_json(&t, row, 2, json_object_get(r, "version"));
			for (size_t c = 3; c < 6; c++)
				cli_table_json(&t, row, c, NULL);
			row++;
			continue;
		}
		json_array_foreach(json_object_get(r, "endpoints"), j, ep) {
			cli_table_json(&t, row, 0, json_object_get(r, "model"));
			cli_table_json(&t, row, 1, json_object_get(r, "adapter"));
			cli_table_json(&t, row, 2, json_object_get(r, "version"));
			cli_table_json(&t, row, 3, json_object_get(ep, "url"));
			cli_table_json(&t, row, 4, json_object_get(ep, "node"));
			cli_table_json(&t, row, 5, json_object_get(json_object_get(ep, "load"), "queue_depth"));
			row++;
		}
	}
	cli_table_finish(&t, ctx);
}

/* Server-Sent Events, parsed line by line across chunks. */
struct routes_watch {
	struct cli_ctx *ctx;
	const char *model;   /* --model: only its routes, else NULL */
	char line[65536];
	size_t len;
	char event[32];
	char id[32];
	char *data;
};

/* A route (or a change's key) of what --model names: a model (with its
 * adapters' routes), or one adapter ("model" is the base model, "adapter"
 * the adapter's name; a change's key is "MODEL" or "MODEL/ADAPTER"). */
static bool routes_wanted(const struct routes_watch *w, const char *key, const json_t *route)
{
	const char *m = json_string_value(json_object_get(route, "model"));
	const char *ad = json_string_value(json_object_get(route, "adapter"));
	if (!w->model)
		return true;
	size_t l = strlen(w->model);
	if ((m && !strcmp(m, w->model)) || (ad && !strcmp(ad, w->model)))
		return true;
	if (!key)
		return false;
	/* A removed route's change is null: its key alone says whose it was. */
	size_t kl = strlen(key);
	return !strcmp(key, w->model) || (!strncmp(key, w->model, l) && key[l] == '/') ||
	       (kl > l && key[kl - l - 1] == '/' && !strcmp(key + kl - l, w->model));
}

/* The event's data with only the wanted routes: a snapshot's "routes"
 * array, an update's "changes" object. */
static void routes_filter(struct routes_watch *w, json_t *d)
{
	json_t *routes = json_object_get(d, "routes"), *changes = json_object_get(d, "changes");
	const char *key;
	json_t *r, *tmp;
	if (!w->model || !d)
		return;
	for (size_t i = json_array_size(routes); i-- > 0;)
		if (!routes_wanted(w, NULL, json_array_get(routes, i)))
			json_array_remove(routes, i);
	json_object_foreach_safe(changes, tmp, key, r)
		if (!routes_wanted(w, key, r))
			json_object_del(changes, key);
}

static void routes_event(struct routes_watch *w)
{
	json_t *d = w->data ? json_loads(w->data, 0, NULL) : NULL;
	routes_filter(w, d);
	if (w->ctx->json && w->model && !strcmp(w->event, "update") &&
	    json_object_size(json_object_get(d, "changes")) == 0) {
		/* nothing of this model changed */
	} else if (w->ctx->json && w->model && d) {
		char *text = json_dumps(d, JSON_COMPACT);
		fprintf(w->ctx->out, "{\"id\":%s,\"event\":\"%s\",\"data\":%s}\n", w->id[0] ? w->id : "null",
			w->event, text ? text : "null");
		free(text);
	} else if (w->ctx->json) {
		fprintf(w->ctx->out, "{\"id\":%s,\"event\":\"%s\",\"data\":%s}\n", w->id[0] ? w->id : "null",
			w->event, w->data ? w->data : "null");
	} else if (!strcmp(w->event, "snapshot")) {
		fprintf(w->ctx->out, "snapshot (version %s)\n", w->id);
		routes_print(w->ctx, d);
	} else if (!strcmp(w->event, "update")) {
		const char *key;
		json_t *route;
		json_object_foreach(json_object_get(d, "changes"), key, route) {
			size_t n = json_array_size(json_object_get(route, "endpoints"));
			fprintf(w->ctx->out, "update %s: %s -> %zu endpoint%s\n", w->id, key, n,
				n == 1 ? "" : "s");
		}
	}
	fflush(w->ctx->out);
	json_decref(d);
	free(w->data);
	w->data = NULL;
	w->event[0] = '\0';
}

static void routes_line(struct routes_watch *w, const char *line)
{
	if (!*line) {
		if (w->event[0] || w->data)
			routes_event(w);
		return;
	}
	if (line[0] == ':')
		return; /* a keep-alive comment */
	if (!strncmp(line, "event: ", 7))
		snprintf(w->event, sizeof(w->event), "%s", line + 7);
	else if (!strncmp(line, "id: ", 4))
		snprintf(w->id, sizeof(w->id), "%s", line + 4);
	else if (!strncmp(line, "data: ", 6)) {
		free(w->data);
		w->data = strdup(line + 6);
	}
}

static int routes_on_data(void *arg, const char *data, size_t len)
{
	struct routes_watch *w = arg;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			w->line[w->len] = '\0';
			routes_line(w, w->line);
			w->len = 0;
		} else if (w->len + 1 < sizeof(w->line)) {
			w->line[w->len++] = data[i];
		}
	}
	return 0;
}

/* Watch until interrupted; reconnect (with the last event id, so nothing is
 * missed) when the server goes away. */
static int routes_watch(struct cli_ctx *ctx, const char *model)
{
	struct routes_watch w = {.ctx = ctx, .model = model};
	char url[1100], last[64];
	snprintf(url, sizeof(url), "%s/v1/routes/watch", ctx->server);
	for (unsigned backoff = 1;; backoff = backoff < 16 ? backoff * 2 : 16) {
		const char *const hdr[] = {last, NULL};
		snprintf(last, sizeof(last), "Last-Event-ID: %s", w.id);
		struct http_client_request req = {.method = "GET", .url = url,
						  .bearer_token = ctx->token[0] ? ctx->token : NULL,
						  .headers = w.id[0] ? hdr : NULL};
		struct nova_err err;
		long status = 0;
		w.len = 0;
		int rc = http_client_stream(&status, &req, routes_on_data, &w, &err);
		if (status == 401 || status == 403) {
			fprintf(ctx->errout, "novactl: not allowed to watch routes (HTTP %ld)\n", status);
			free(w.data);
			return 5;
		}
		if (status == 200)
			backoff = 1;
		fprintf(ctx->errout, "novactl: watch interrupted (%s); reconnecting in %u s\n",
			rc ? err.message : "stream ended", backoff);
		sleep(backoff);
	}
}

int cli_cmd_routes(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	if (ctx->complete)
		return cli_complete_usage(ctx, ROUTES_USAGE);
	const char *model = cli_arg_value(a, "--model");
	bool watch = cli_arg_flag(a, "--watch");
	char path[600], esc[512];
	json_t *res = NULL;
	int rc;
	(void)verb;
	if (cli_args_wants_help(a)) {
		fprintf(ctx->out, "usage: %s\n", ROUTES_USAGE);
		return 0;
	}
	if ((rc = cli_args_finish(a, ctx, ROUTES_USAGE)))
		return rc;
	if (model) {
		if (cli_path_escape(esc, sizeof(esc), model))
			return cli_usage_error(ctx, ROUTES_USAGE, "--model is too long");
		snprintf(path, sizeof(path), "/v1/routes?model=%s", esc);
	} else {
		snprintf(path, sizeof(path), "/v1/routes");
	}
	/* A watch of a model not deployed yet is allowed: its snapshot is
	 * empty and its first route arrives as a change. */
	if (watch)
		return routes_watch(ctx, model);
	if ((rc = cli_request(&res, ctx, "GET", path, NULL)))
		return rc;
	if (ctx->json)
		cli_doc_print(ctx, res);
	else
		routes_print(ctx, res);
	json_decref(res);
	return 0;
}
