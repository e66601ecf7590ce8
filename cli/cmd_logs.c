/* novactl logs: a replica's engine output (GET /v1/deployments/{d}/replicas/
 * {r}/logs), the last --tail lines and, with -f, each new line as it comes
 * until interrupted or the replica stops. Lines are printed as they
 * arrive (stdout flushed per chunk), whatever -o says: they are the
 * engine's text, not a document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/http_client.h"

#define LOGS_USAGE                                                                            \
	"novactl logs DEPLOYMENT [--replica N] [-f|--follow] [--tail N] [--stage N]\n"         \
	"  the engine output (stdout and stderr) of one replica: its last --tail lines\n"      \
	"  (default 100, at most 10000), then with -f each new line until interrupted or\n"    \
	"  the replica stops. --replica is the replica's number (default: the first);\n"      \
	"  --stage one stage of a multi-stage replica (default: the serving one)"
#define LOGS_TAIL_MAX 10000
/* A refusal's body kept to print (an error object is small). */
#define LOGS_ERROR_MAX 65536

struct logs_stream {
	struct cli_ctx *ctx;
	long status;
	char *error;
	size_t error_len;
	bool broken; /* stdout went away */
};

static void logs_on_status(void *arg, long status)
{
	((struct logs_stream *)arg)->status = status;
}

static int logs_on_data(void *arg, const char *data, size_t len)
{
	struct logs_stream *s = arg;
	if (s->status != 200) {
		if (s->error_len + len > LOGS_ERROR_MAX)
			return 1;
		char *e = realloc(s->error, s->error_len + len + 1);
		if (!e)
			return 1;
		memcpy(e + s->error_len, data, len);
		s->error = e;
		s->error_len += len;
		e[s->error_len] = '\0';
		return 0;
	}
	if (fwrite(data, 1, len, s->ctx->out) != len || fflush(s->ctx->out) != 0) {
		s->broken = true;
		return 1;
	}
	return 0;
}

/* A count flag: digits only, at most max. */
static int logs_count(const char **out, const char *v, const char *flag, long long max,
		      struct cli_ctx *ctx)
{
	char *end;
	*out = v;
	if (!v)
		return 0;
	long long n = strtoll(v, &end, 10);
	if (!*v || *end || *v < '0' || *v > '9' || n > max)
		return cli_usage_error(ctx, LOGS_USAGE, "%s must be a number from 0 to %lld", flag, max);
	return 0;
}

/* The replica to read when none is named: the first (lowest number). */
static int logs_first_replica(char *out, size_t len, struct cli_ctx *ctx, const char *dep_path,
			      const char *name)
{
	json_t *d = NULL, *r;
	size_t i;
	long long best = -1;
	int rc;
	if ((rc = cli_request(&d, ctx, "GET", dep_path, NULL)))
		return rc;
	json_array_foreach(json_object_get(d, "replica_list"), i, r) {
		long long o = json_integer_value(json_object_get(r, "ordinal"));
		if (best < 0 || o < best)
			best = o;
	}
	json_decref(d);
	if (best < 0) {
		fprintf(ctx->errout, "novactl: deployment %s has no replicas\n", name);
		return 3;
	}
	snprintf(out, len, "%lld", best);
	return 0;
}

int cli_cmd_logs(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	char esc[512], path[1200], url[2300], first[24];
	const char *replica, *tail, *stage;
	size_t used;
	int rc;
	(void)verb;
	if (ctx->complete)
		return cli_complete_usage(ctx, LOGS_USAGE);
	if (cli_args_wants_help(a)) {
		fputs("usage: " LOGS_USAGE "\n", ctx->out);
		return 0;
	}
	const char *name = cli_arg_positional(a, 0);
	bool follow = cli_arg_flag(a, "-f") | cli_arg_flag(a, "--follow");
	if ((rc = logs_count(&replica, cli_arg_value(a, "--replica"), "--replica", 100000, ctx)) ||
	    (rc = logs_count(&tail, cli_arg_value(a, "--tail"), "--tail", LOGS_TAIL_MAX, ctx)) ||
	    (rc = logs_count(&stage, cli_arg_value(a, "--stage"), "--stage", 15, ctx)) ||
	    (rc = cli_args_finish(a, ctx, LOGS_USAGE)))
		return rc;
	if (!name)
		return cli_usage_error(ctx, LOGS_USAGE, "which deployment? (novactl deployment list)");
	if (cli_path_escape(esc, sizeof(esc), name))
		return cli_usage_error(ctx, LOGS_USAGE, "the deployment name is too long");
	snprintf(path, sizeof(path), "/v1/deployments/%s", esc);
	if (!replica) {
		if ((rc = logs_first_replica(first, sizeof(first), ctx, path, name)))
			return rc;
		replica = first;
	}
	used = (size_t)snprintf(path, sizeof(path), "/v1/deployments/%s/replicas/%s/logs", esc, replica);
	if ((rc = cli_query_add(path, sizeof(path), &used, "tail", tail, ctx, LOGS_USAGE)) ||
	    (rc = cli_query_add(path, sizeof(path), &used, "stage", stage, ctx, LOGS_USAGE)) ||
	    (rc = cli_query_add(path, sizeof(path), &used, "follow", follow ? "true" : NULL, ctx,
				LOGS_USAGE)))
		return rc;
	snprintf(url, sizeof(url), "%s%s", ctx->server, path);
	struct logs_stream s = {.ctx = ctx};
	/* A follow may be quiet for hours: no silence limit (novad ends it
	 * when the replica stops; ^C ends it here). */
	struct http_client_request req = {.method = "GET", .url = url,
					  .bearer_token = ctx->token[0] ? ctx->token : NULL,
					  .timeout_ms = follow ? 0 : 60000, .no_idle_limit = follow,
					  .on_status = logs_on_status};
	struct nova_err err;
	long status = 0;
	rc = http_client_stream(&status, &req, logs_on_data, &s, &err);
	if (s.broken) {
		free(s.error);
		return 0;
	}
	if (rc && !status) {
		fprintf(ctx->errout, "novactl: cannot reach novad at %s: %s\n", ctx->server, err.message);
		fprintf(ctx->errout, "hint: is novad running? set --server or NOVA_SERVER\n");
		free(s.error);
		return nova_code_exit_status(rc);
	}
	if (status != 200) {
		json_t *j = s.error ? json_loads(s.error, 0, NULL) : NULL;
		rc = cli_error_print(ctx, status, j);
		json_decref(j);
		free(s.error);
		return rc;
	}
	free(s.error);
	if (rc) {
		fprintf(ctx->errout, "novactl: the log stream broke off: %s\n", err.message);
		return nova_code_exit_status(rc);
	}
	return 0;
}
