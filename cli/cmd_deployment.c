#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define DEPLOY_USAGE                                                                          \
	"novactl deploy MODEL --pool POOL [--replicas N] [--standby N] "                      \
	"[--placement binpack|spread] "                                                       \
	"[--label k=v ...] [--name NAME] [--autoscale min=N,max=N,target-queue=N,...] "      \
	"[--wait [--timeout S]]"
/* What the keys of a policy mean: deploy --help and deployment --help. */
#define AUTOSCALE_HELP                                                                        \
	"An autoscaling policy is key=value pairs joined by commas: min and max\n"            \
	"(replicas; min 0 allowed), one or more targets per replica: target-queue\n"         \
	"(requests waiting), target-tokens (in-flight tokens), target-ttft-ms (time to\n"    \
	"first token, p95), target-tps (tokens/s); window (seconds before scaling down,\n"   \
	"300 by default; 90s, 5m, 1h) and idle (to zero after that long without a\n"        \
	"request; needs min=0). The API's names (min_replicas, target_queue_depth, ...)\n"  \
	"work too. An autoscaled deployment starts at min (at least 1) unless --replicas\n" \
	"says otherwise; 'deployment autoscale NAME off' hands it back to scale."
#define DEP_LIST_USAGE "novactl deployment list [-l|--selector key=value,...]"
#define DEP_GET_USAGE "novactl deployment get NAME|ID... [--watch]"
#define DEP_SCALE_USAGE                                                                       \
	"novactl deployment scale NAME|ID [--replicas N] [--standby N] [--wait [--timeout S]]"
#define DEP_STOP_USAGE "novactl deployment stop NAME|ID [--wait [--timeout S]]"
#define DEP_START_USAGE "novactl deployment start NAME|ID [--wait [--timeout S]]"
#define DEP_DELETE_USAGE "novactl deployment delete NAME|ID"
#define DEP_AUTOSCALE_USAGE                                                                   \
	"novactl deployment autoscale NAME|ID min=N,max=N,target-queue=N,...|off "            \
	"[--replicas N] [--wait [--timeout S]]"
#define DEP_UPDATE_USAGE                                                                      \
	"novactl deployment update NAME|ID --model NAME:VERSION [--max-surge N] "             \
	"[--max-unavailable N] [--canary PCT] [--drain-timeout S] [--no-auto-rollback] "     \
	"[--max-error-rate-increase X] [--max-ttft-ratio X] [--min-requests N]"
#define DEP_PROMOTE_USAGE "novactl deployment promote NAME|ID"
#define DEP_ROLLBACK_USAGE "novactl deployment rollback NAME|ID"
/* What a rollout does with its flags: deployment --help. */
#define ROLLOUT_HELP                                                                          \
	"update rolls the deployment over to another version of its model: new replicas\n"   \
	"start at most --max-surge (default 1) beyond the count, ready ones stay at least\n" \
	"the count less --max-unavailable (default 0), and each old one drains its\n"       \
	"requests for up to --drain-timeout S (default 30) before it stops. --canary PCT\n"  \
	"holds at that share of the traffic on the new version until promote (or\n"         \
	"rollback). The new version is rolled back by itself when its error rate is\n"      \
	"--max-error-rate-increase (0.05) above the old's or its TTFT p95\n"                \
	"--max-ttft-ratio (2.0) times the old's, judged after --min-requests (20);\n"       \
	"--no-auto-rollback leaves it to you. rollback reverses the rollout in\n"           \
	"progress, or undoes the last one. get shows the rollout and each replica's\n"      \
	"version; while one runs, list's REASON says where it is."
#define DEPLOYMENT_USAGE                                                                      \
	"novactl deployment list|get|scale|autoscale|update|promote|rollback|stop|start|"     \
	"delete ...\n"                                                                        \
	"  " DEP_LIST_USAGE "\n"                                                              \
	"  " DEP_GET_USAGE "\n"                                                               \
	"  " DEP_SCALE_USAGE "\n"                                                             \
	"  " DEP_AUTOSCALE_USAGE "\n"                                                         \
	"  " DEP_UPDATE_USAGE "\n"                                                            \
	"  " DEP_PROMOTE_USAGE "\n"                                                           \
	"  " DEP_ROLLBACK_USAGE "\n"                                                          \
	"  " DEP_STOP_USAGE "\n"                                                              \
	"  " DEP_START_USAGE "\n"                                                             \
	"  " DEP_DELETE_USAGE "\n"                                                            \
	"--wait: until the deployment runs with every replica ready (stop: until it is\n"    \
	"stopped), with a progress line; --timeout S (default 300) then exits 7; a\n"        \
	"deployment that failed exits 8 with its reason. get --watch re-prints it\n"         \
	"when it changes (polled every 2 s) until interrupted. list -o wide adds the\n"       \
	"AUTOSCALE bounds (min-max, or - when scaled by hand). --standby N keeps N\n"        \
	"replicas started and ready beyond the count, out of the routes: a scale-up\n"      \
	"promotes one at once and a new one starts behind it (autoscaled too).\n"           \
	AUTOSCALE_HELP "\n" ROLLOUT_HELP

#define DEP_WAIT_DEFAULT_S 300

static void dep_print(struct cli_ctx *ctx, const json_t *d)
{
	char b[11][256]; /* one per cell of a printf: they are all read at once */
	json_t *r, *e;
	size_t i;
	if (ctx->json) {
		cli_doc_print(ctx, d);
		return;
	}
	json_t *m = json_object_get(d, "model");
	fprintf(ctx->out,
		"id:        %s\nname:      %s\nmodel:     %s:%s (%s)\npool:      %s\n"
		"replicas:  %s ready of %s\nplacement: %s\nstate:     %s (%s)\n",
		cli_cell(b[0], 256, json_object_get(d, "id")),
		cli_cell(b[1], 256, json_object_get(d, "name")),
		cli_cell(b[2], 256, json_object_get(m, "name")),
		cli_cell(b[3], 256, json_object_get(m, "version")),
		cli_cell(b[4], 256, json_object_get(m, "kind")),
		cli_cell(b[5], 256, json_object_get(json_object_get(d, "pool"), "name")),
		cli_cell(b[6], 256, json_object_get(d, "ready_replicas")),
		cli_cell(b[7], 256, json_object_get(d, "replicas")),
		cli_cell(b[8], 256, json_object_get(d, "placement")),
		cli_cell(b[9], 256, json_object_get(d, "state")),
		cli_cell(b[10], 256, json_object_get(d, "state_reason")));
	if (json_integer_value(json_object_get(d, "standby_replicas")) > 0)
		fprintf(ctx->out, "standby:   %s (started, out of the routes)\n",
			cli_cell(b[0], 256, json_object_get(d, "standby_replicas")));
	fprintf(ctx->out, "autoscale: %s\n",
		cli_autoscale_summary(b[0], 256, json_object_get(d, "autoscale")));
	if (*cli_autoscaler_summary(b[0], 256, json_object_get(d, "autoscaler")))
		fprintf(ctx->out, "autoscaler: %s\n", b[0]);
	cli_rollout_print(ctx->out, "rollout:", 11, json_object_get(d, "rollout"));
	json_array_foreach(json_object_get(d, "replica_list"), i, r) {
		fprintf(ctx->out, "replica %s: %s", cli_cell(b[0], 256, json_object_get(r, "ordinal")),
			cli_cell(b[1], 256, json_object_get(r, "state")));
		/* Two versions side by side while a rollout runs. */
		if (*cli_cell(b[2], 256, json_object_get(r, "version")))
			fprintf(ctx->out, " version %s", b[2]);
		if (*cli_cell(b[3], 256, json_object_get(r, "endpoint")))
			fprintf(ctx->out, " %s", b[3]);
		fprintf(ctx->out, "%s\n", json_is_true(json_object_get(r, "standby")) ? " (standby)" : "");
	}
	json_array_foreach(json_object_get(d, "events"), i, e) {
		/* A "scaled" or "autoscale" event changes no state: its kind
		 * says more than "running -> running". */
		const char *kind = json_string_value(json_object_get(e, "kind"));
		if (kind && strcmp(kind, "transition") != 0)
			fprintf(ctx->out, "event:     %s %s: %s\n",
				cli_cell(b[0], 256, json_object_get(e, "at")), kind,
				cli_cell(b[3], 256, json_object_get(e, "reason")));
		else
			fprintf(ctx->out, "event:     %s %s -> %s: %s\n",
				cli_cell(b[0], 256, json_object_get(e, "at")),
				*cli_cell(b[1], 256, json_object_get(e, "from")) ? b[1] : "-",
				cli_cell(b[2], 256, json_object_get(e, "to")),
				cli_cell(b[3], 256, json_object_get(e, "reason")));
	}
}

/* A policy typed on the command line (--autoscale, deployment autoscale):
 * *out the API's "autoscale" member, or a usage error naming the key,
 * before any request. */
static int dep_autoscale_arg(json_t **out, const char *spec, const char *what,
			     struct cli_ctx *ctx, const char *usage)
{
	struct nova_err err;
	nova_err_clear(&err);
	if (cli_autoscale_parse(out, spec, &err) == 0)
		return 0;
	return cli_usage_error(ctx, usage, "%s: %s%s%s%s", what, err.message, err.hint[0] ? " (" : "",
			       err.hint, err.hint[0] ? ")" : "");
}

static int dep_count_arg(long long *out, const char *flag, const char *val, struct cli_ctx *ctx,
			 const char *usage)
{
	char *end;
	errno = 0;
	*out = strtoll(val, &end, 10);
	if (errno || !*val || *end || *out < 0)
		return cli_usage_error(ctx, usage, "%s must be a non-negative integer, not \"%s\"", flag,
				       val);
	return 0;
}

static int dep_replicas_arg(long long *out, const char *val, struct cli_ctx *ctx, const char *usage)
{
	return dep_count_arg(out, "--replicas", val, ctx, usage);
}

/* --wait and --timeout S: *timeout_s 0 when not waiting. */
static int dep_wait_args(unsigned *timeout_s, struct cli_args *a, struct cli_ctx *ctx,
			 const char *usage)
{
	bool wait = cli_arg_flag(a, "--wait");
	const char *t = cli_arg_value(a, "--timeout");
	char *end;
	*timeout_s = 0;
	if (t && !wait)
		return cli_usage_error(ctx, usage, "--timeout needs --wait");
	if (!wait)
		return 0;
	if (!t) {
		*timeout_s = DEP_WAIT_DEFAULT_S;
		return 0;
	}
	errno = 0;
	long v = strtol(t, &end, 10);
	if (errno || !*t || *end || v < 1 || v > 86400)
		return cli_usage_error(ctx, usage, "--timeout must be 1 to 86400 seconds, not \"%s\"", t);
	*timeout_s = (unsigned)v;
	return 0;
}

static double dep_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What a wait is at: "2/3 ready, deploying: 2 of 3 replicas ready". The
 * state's reason says what the worker waits for (a node provisioning, a
 * replica to report ready); absent, the last event's. */
static void dep_progress(char *buf, size_t len, const json_t *d)
{
	const char *reason = json_string_value(json_object_get(d, "state_reason"));
	json_t *events = json_object_get(d, "events");
	json_t *last = json_array_get(events, json_array_size(events) - 1);
	const char *state = json_string_value(json_object_get(d, "state"));
	if ((!reason || !*reason) && last)
		reason = json_string_value(json_object_get(last, "reason"));
	snprintf(buf, len, "%lld/%lld ready, %s%s%s",
		 (long long)json_integer_value(json_object_get(d, "ready_replicas")),
		 (long long)json_integer_value(json_object_get(d, "replicas")),
		 state ? state : "?", reason && *reason ? ": " : "",
		 reason ? reason : "");
}

int cli_deployment_wait(json_t **final, struct cli_ctx *ctx, const char *ref, bool want_stopped,
			unsigned timeout_s)
{
	char esc[512], path[600], line[512], shown[512] = "";
	bool tty = isatty(fileno(ctx->errout)) == 1;
	double deadline = dep_now() + timeout_s;
	json_t *d = NULL;
	int rc;
	*final = NULL;
	if (cli_path_escape(esc, sizeof(esc), ref)) {
		fprintf(ctx->errout, "novactl: the deployment reference is too long\n");
		return CLI_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/deployments/%s", esc);
	cli_watch_begin();
	for (;;) {
		json_t *next = NULL;
		if ((rc = cli_request(&next, ctx, "GET", path, NULL)))
			break;
		json_decref(d);
		d = next;
		const char *state = json_string_value(json_object_get(d, "state"));
		const char *name = json_string_value(json_object_get(d, "name"));
		long long want = json_integer_value(json_object_get(d, "replicas"));
		long long ready = json_integer_value(json_object_get(d, "ready_replicas"));
		dep_progress(line, sizeof(line), d);
		if (strcmp(line, shown) != 0) {
			/* On a terminal one line, rewritten (\r, then erase to its
			 * end); in a log a line per change. */
			if (tty)
				fprintf(ctx->errout, "\r\033[Kwaiting for %s: %s", name ? name : ref, line);
			else
				fprintf(ctx->errout, "waiting for %s: %s\n", name ? name : ref, line);
			fflush(ctx->errout);
			snprintf(shown, sizeof(shown), "%s", line);
		}
		bool done = state && (want_stopped ? !strcmp(state, "stopped")
						   : ready == want && (!strcmp(state, "running") ||
								       (want == 0 && strcmp(state, "pending") &&
									strcmp(state, "deploying"))));
		if (done) {
			rc = 0;
			break;
		}
		if (state && !strcmp(state, "failed")) {
			if (tty)
				fputc('\n', ctx->errout);
			tty = false;
			const char *why = json_string_value(json_object_get(d, "state_reason"));
			fprintf(ctx->errout, "novactl: deployment %s failed: %s\n", name ? name : ref,
				why && *why ? why : "no reason given");
			rc = CLI_EXIT_FAILED;
			break;
		}
		double left = deadline - dep_now();
		if (left <= 0) {
			if (tty)
				fputc('\n', ctx->errout);
			tty = false;
			fprintf(ctx->errout,
				"novactl: timed out after %u s waiting for deployment %s (%s)\n", timeout_s,
				name ? name : ref, line);
			rc = CLI_EXIT_TIMEOUT;
			break;
		}
		if (!cli_watch_sleep(left < 1.0 ? (unsigned)(left * 1000) + 1 : 1000)) {
			rc = 130;
			break;
		}
	}
	if (tty && shown[0])
		fputc('\n', ctx->errout);
	*final = d;
	return rc;
}

/* After a change: with --wait, wait for it and print where it got (the
 * deployment as -o asks, or one line); else print the answer. */
static int dep_after_change(struct cli_ctx *ctx, const json_t *res, bool want_stopped,
			    unsigned timeout_s)
{
	json_t *final = NULL;
	if (!timeout_s) {
		dep_print(ctx, res);
		return 0;
	}
	if (!ctx->json)
		dep_print(ctx, res);
	const char *id = json_string_value(json_object_get(res, "id"));
	int rc = cli_deployment_wait(&final, ctx, id ? id : "", want_stopped, timeout_s);
	if (final && ctx->json)
		cli_doc_print(ctx, final);
	else if (rc == 0 && final)
		fprintf(ctx->out, "deployment %s %s: %lld of %lld replicas ready\n",
			json_string_value(json_object_get(final, "name")),
			json_string_value(json_object_get(final, "state")),
			(long long)json_integer_value(json_object_get(final, "ready_replicas")),
			(long long)json_integer_value(json_object_get(final, "replicas")));
	json_decref(final);
	return rc;
}

int cli_cmd_deploy(struct cli_ctx *ctx, const char *model, struct cli_args *a)
{
	if (ctx->complete)
		return cli_complete_usage(ctx, DEPLOY_USAGE);
	const char *pool = cli_arg_value(a, "--pool"), *replicas = cli_arg_value(a, "--replicas");
	const char *placement = cli_arg_value(a, "--placement"), *name = cli_arg_value(a, "--name");
	const char *autoscale = cli_arg_value(a, "--autoscale");
	const char *standby = cli_arg_value(a, "--standby");
	long long standby_n = 0;
	json_t *body = json_object(), *labels = json_object(), *res = NULL, *policy = NULL;
	const char *label;
	long long n = 1;
	unsigned timeout_s = 0;
	int rc = 0;
	if (!model || !strcmp(model, "--help") || !strcmp(model, "-h") || cli_args_wants_help(a)) {
		fprintf(model ? ctx->out : ctx->errout, "usage: %s\n", DEPLOY_USAGE);
		if (model)
			fputs(AUTOSCALE_HELP "\n", ctx->out);
		rc = model ? 0 : CLI_EXIT_USAGE;
		goto out;
	}
	while (!rc && (label = cli_arg_value_next(a, "--label"))) {
		const char *eq = strchr(label, '=');
		if (!eq || eq == label)
			rc = cli_usage_error(ctx, DEPLOY_USAGE, "--label must be key=value, not \"%s\"", label);
		else
			json_object_setn_new(labels, label, (size_t)(eq - label), json_string(eq + 1));
	}
	if (rc || (rc = dep_wait_args(&timeout_s, a, ctx, DEPLOY_USAGE)) ||
	    (rc = cli_args_finish(a, ctx, DEPLOY_USAGE)))
		goto out;
	if (!pool) {
		rc = cli_usage_error(ctx, DEPLOY_USAGE, "--pool is required");
		goto out;
	}
	if (replicas && (rc = dep_replicas_arg(&n, replicas, ctx, DEPLOY_USAGE)))
		goto out;
	if (autoscale &&
	    (rc = dep_autoscale_arg(&policy, autoscale, "--autoscale", ctx, DEPLOY_USAGE)))
		goto out;
	if (standby && (rc = dep_count_arg(&standby_n, "--standby", standby, ctx, DEPLOY_USAGE)))
		goto out;
	if (standby)
		json_object_set_new(body, "standby_replicas", json_integer(standby_n));
	json_object_set_new(body, "model", json_string(model));
	json_object_set_new(body, "pool", json_string(pool));
	/* Autoscaled, the server starts it at min_replicas unless told a
	 * count: the default 1 would be refused under a min of 2. */
	if (replicas || !json_is_object(policy))
		json_object_set_new(body, "replicas", json_integer(n));
	if (json_is_object(policy))
		json_object_set(body, "autoscale", policy);
	if (placement)
		json_object_set_new(body, "placement", json_string(placement));
	if (name)
		json_object_set_new(body, "name", json_string(name));
	if (json_object_size(labels))
		json_object_set(body, "labels", labels);
	if ((rc = cli_request(&res, ctx, "POST", "/v1/deployments", body)) == 0)
		rc = dep_after_change(ctx, res, false, timeout_s);
out:
	json_decref(res);
	json_decref(body);
	json_decref(labels);
	json_decref(policy);
	return rc;
}

/* --- rollouts ------------------------------------------------------------------ */

enum roll_kind { ROLL_COUNT, ROLL_PERCENT, ROLL_NUMBER };

/* The rollout's flags and the API's members they stand for (PATCH's
 * "rollout"); --no-auto-rollback is the one without a value. */
static const struct {
	const char *flag, *member;
	enum roll_kind kind;
} roll_flags[] = {
	{"--max-surge", "max_surge", ROLL_COUNT},
	{"--max-unavailable", "max_unavailable", ROLL_COUNT},
	{"--canary", "canary_percent", ROLL_PERCENT},
	{"--drain-timeout", "drain_timeout_s", ROLL_COUNT},
	{"--max-error-rate-increase", "max_error_rate_increase", ROLL_NUMBER},
	{"--max-ttft-ratio", "max_ttft_ratio", ROLL_NUMBER},
	{"--min-requests", "min_requests", ROLL_COUNT},
};

/* Digits only: strtoll alone would take " 1", "+1" and "-0". */
static bool roll_count(long long *out, const char *v)
{
	char *end;
	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	*out = strtoll(v, &end, 10);
	return !errno && *end == '\0';
}

/* One flag's value as its member, or err naming the flag. */
static int roll_value(json_t **out, const char *flag, enum roll_kind kind, const char *v,
		      struct nova_err *err)
{
	char pct[32];
	long long n;
	*out = NULL;
	switch (kind) {
	case ROLL_COUNT:
		if (roll_count(&n, v))
			*out = json_integer(n);
		else
			nova_err_set(err, NOVA_EINVAL, flag,
				     "%s must be a non-negative integer, not \"%s\"", flag, v);
		break;
	case ROLL_PERCENT:
		/* "10" or "10%", as people write a share. */
		snprintf(pct, sizeof(pct), "%s", v);
		if (*pct && pct[strlen(pct) - 1] == '%')
			pct[strlen(pct) - 1] = '\0';
		if (strlen(v) < sizeof(pct) && roll_count(&n, pct) && n >= 1 && n <= 99)
			*out = json_integer(n);
		else
			nova_err_set(err, NOVA_EINVAL, flag,
				     "%s must be a percentage from 1 to 99, not \"%s\"", flag, v);
		break;
	case ROLL_NUMBER:
		if (!(*out = cli_number_json(v)))
			nova_err_set(err, NOVA_EINVAL, flag, "%s must be a number, not \"%s\"", flag, v);
		break;
	}
	return *out ? 0 : NOVA_EINVAL;
}

int cli_rollout_body(json_t **out, struct cli_args *a, struct nova_err *err)
{
	enum { N = sizeof(roll_flags) / sizeof(roll_flags[0]) };
	const char *model = cli_arg_value(a, "--model"), *vals[N];
	json_t *rollout = json_object(), *body;
	int rc = 0;
	*out = NULL;
	/* Every flag is taken before any is checked: one left untaken would
	 * read as unknown to cli_args_finish. */
	for (size_t i = 0; i < N; i++)
		vals[i] = cli_arg_value(a, roll_flags[i].flag);
	if (cli_arg_flag(a, "--no-auto-rollback"))
		json_object_set_new(rollout, "auto_rollback", json_false());
	if (!model || !*model) {
		rc = nova_err_set(err, NOVA_EINVAL, "--model", "--model is required");
		nova_err_set_hint(err, "the version to roll out, NAME:VERSION of the deployment's model");
	}
	for (size_t i = 0; !rc && i < N; i++) {
		json_t *v;
		if (vals[i] && !(rc = roll_value(&v, roll_flags[i].flag, roll_flags[i].kind, vals[i], err)))
			json_object_set_new(rollout, roll_flags[i].member, v);
	}
	/* Only when both are given: the defaults are the server's, which
	 * names rollout.max_surge for --max-surge 0 alone. */
	json_t *surge = json_object_get(rollout, "max_surge");
	json_t *unavailable = json_object_get(rollout, "max_unavailable");
	if (!rc && surge && unavailable && !json_integer_value(surge) &&
	    !json_integer_value(unavailable)) {
		rc = nova_err_set(err, NOVA_EINVAL, "--max-surge",
				  "--max-surge and --max-unavailable are both 0: no replica could be "
				  "replaced");
		nova_err_set_hint(err, "--max-surge 1 starts each new replica before an old one stops");
	}
	if (rc) {
		json_decref(rollout);
		return rc;
	}
	body = json_pack("{s:s}", "model", model);
	if (json_object_size(rollout))
		json_object_set(body, "rollout", rollout);
	json_decref(rollout);
	*out = body;
	return 0;
}

void cli_rollout_print(FILE *f, const char *label, int width, const json_t *r)
{
	char b[3][CLI_CELL_MAX];
	const json_t *progress = json_object_get(r, "progress");
	const json_t *target = json_object_get(progress, "target");
	const json_t *previous = json_object_get(progress, "previous");
	const json_t *guard = json_object_get(r, "auto_rollback");
	const json_t *canary = json_object_get(r, "canary_percent");
	static const struct {
		const char *member, *label;
	} lines[] = {{"waiting_for", "waiting for"}, {"reason", "reason"}, {"finished_at", "finished"}};
	if (!json_is_object(r))
		return;
	fprintf(f, "%-*s%s -> %s %s", width, label,
		cli_cell(b[0], CLI_CELL_MAX, json_object_get(r, "from_version")),
		cli_cell(b[1], CLI_CELL_MAX, json_object_get(r, "to_version")),
		cli_cell(b[2], CLI_CELL_MAX, json_object_get(r, "state")));
	/* The share only while it holds: after a promote it is history. */
	if (!strcmp(b[2], "canary") && json_is_integer(canary))
		fprintf(f, " %lld%%", (long long)json_integer_value(canary));
	fprintf(f, " (max surge %s, max unavailable %s)\n",
		cli_cell(b[0], CLI_CELL_MAX, json_object_get(r, "max_surge")),
		cli_cell(b[1], CLI_CELL_MAX, json_object_get(r, "max_unavailable")));
	if (json_is_object(target)) {
		/* Ready of the count it is to reach (a novad without "wanted":
		 * of the replicas it has now). */
		const json_t *wanted = json_object_get(target, "wanted");
		fprintf(f, "  progress: version %s ready %lld/%lld",
			cli_cell(b[0], CLI_CELL_MAX, json_object_get(target, "version")),
			(long long)json_integer_value(json_object_get(target, "ready")),
			(long long)json_integer_value(json_is_integer(wanted)
							      ? wanted
							      : json_object_get(target, "total")));
		if (json_is_object(previous)) {
			long long draining = json_integer_value(json_object_get(previous, "draining"));
			fprintf(f, "; version %s %lld",
				cli_cell(b[0], CLI_CELL_MAX, json_object_get(previous, "version")),
				(long long)json_integer_value(json_object_get(previous, "total")));
			if (draining > 0)
				fprintf(f, " (%lld draining)", draining);
		}
		fputc('\n', f);
	}
	if (json_is_object(guard) && json_is_true(json_object_get(guard, "enabled")))
		fprintf(f, "  auto rollback: on (error rate +%s, TTFT p95 x%s, judged after %s requests)\n",
			cli_cell(b[0], CLI_CELL_MAX, json_object_get(guard, "max_error_rate_increase")),
			cli_cell(b[1], CLI_CELL_MAX, json_object_get(guard, "max_ttft_ratio")),
			cli_cell(b[2], CLI_CELL_MAX, json_object_get(guard, "min_requests")));
	else if (json_is_object(guard))
		fputs("  auto rollback: off\n", f);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		if (*cli_cell(b[0], CLI_CELL_MAX, json_object_get(r, lines[i].member)))
			fprintf(f, "  %s: %s\n", lines[i].label, b[0]);
}

static int dep_ref(char *path, size_t len, struct cli_ctx *ctx, struct cli_args *a,
		   const char *usage, const char *suffix)
{
	char esc[512];
	const char *ref = cli_arg_positional(a, 0);
	int rc = cli_args_finish(a, ctx, usage);
	if (rc)
		return rc;
	if (!ref)
		return cli_usage_error(ctx, usage, "NAME or ID is required");
	if (cli_path_escape(esc, sizeof(esc), ref))
		return cli_usage_error(ctx, usage, "NAME or ID is too long");
	snprintf(path, len, "/v1/deployments/%s%s", esc, suffix);
	return 0;
}

static void dep_row(struct cli_table *t, size_t row, const json_t *d)
{
	const json_t *m = json_object_get(d, "model");
	cli_table_json(t, row, 0, json_object_get(d, "name"));
	cli_table_fmt(t, row, 1, "%s:%s", json_string_value(json_object_get(m, "name")),
		      json_string_value(json_object_get(m, "version")));
	cli_table_json(t, row, 2, json_object_get(json_object_get(d, "pool"), "name"));
	cli_table_fmt(t, row, 3, "%lld/%lld",
		      (long long)json_integer_value(json_object_get(d, "ready_replicas")),
		      (long long)json_integer_value(json_object_get(d, "replicas")));
	cli_table_json(t, row, 4, json_object_get(d, "state"));
	cli_table_json(t, row, 5, json_object_get(d, "state_reason"));
}

/* -o wide: the policy's bounds after the table's columns ("0-8"; "-" for
 * a deployment scaled by hand). Not in the plain table: it is six columns
 * with a free-text REASON already, and READY shows the count the
 * autoscaler chose. No ROLLOUT column: the list's items carry no
 * "rollout" (only GET of one does), and a GET per row for it is not worth
 * it while REASON already says where a running rollout is. */
static void dep_row_wide(struct cli_table *t, size_t row, const json_t *d)
{
	const json_t *p = json_object_get(d, "autoscale");
	dep_row(t, row, d);
	if (json_is_object(p))
		cli_table_fmt(t, row, 6, "%lld-%lld",
			      (long long)json_integer_value(json_object_get(p, "min_replicas")),
			      (long long)json_integer_value(json_object_get(p, "max_replicas")));
}

/* Labels are the deployment's node selector ("labels" in its answer). */
static int dep_list(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const headers[] = {"NAME",  "MODEL",  "POOL",     "READY",
					      "STATE", "REASON", "AUTOSCALE"};
	bool wide = ctx->output == CLI_OUTPUT_WIDE;
	struct cli_selector sel;
	int rc = cli_selector_take(&sel, a, ctx, DEP_LIST_USAGE);
	if (!rc)
		rc = cli_args_finish(a, ctx, DEP_LIST_USAGE);
	return rc ? rc
		  : cli_list(ctx, "/v1/deployments", headers, wide ? 7 : 6,
			     wide ? dep_row_wide : dep_row, &sel);
}

/* stop, start: a reference, one request, print the deployment (and wait). */
static int dep_simple(struct cli_ctx *ctx, struct cli_args *a, const char *usage,
		      const char *method, const char *suffix)
{
	char path[640];
	unsigned timeout_s;
	json_t *res = NULL;
	int rc = dep_wait_args(&timeout_s, a, ctx, usage);
	if (!rc)
		rc = dep_ref(path, sizeof(path), ctx, a, usage, suffix);
	if (!rc && (rc = cli_request(&res, ctx, method, path, NULL)) == 0)
		rc = dep_after_change(ctx, res, !strcmp(suffix, "/stop"), timeout_s);
	json_decref(res);
	return rc;
}

/* get NAME --watch: poll every 2 s and print it again when anything but
 * its timestamps changed. One name only: several would interleave. */
static int dep_watch(struct cli_ctx *ctx, const char *path)
{
	char *shown = NULL;
	int rc = 0;
	cli_watch_begin();
	while (!cli_interrupted()) {
		json_t *d = NULL;
		rc = cli_request(&d, ctx, "GET", path, NULL);
		if (rc == 6 && shown) { /* unreachable for now: keep watching */
			cli_watch_sleep(2000);
			continue;
		}
		if (rc)
			break;
		json_object_del(d, "updated_at");
		char *text = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
		if (text && (!shown || strcmp(text, shown) != 0)) {
			if (shown && !ctx->json)
				fputc('\n', ctx->out);
			dep_print(ctx, d);
			free(shown);
			shown = text;
			text = NULL;
		}
		free(text);
		json_decref(d);
		if (!cli_out_ok(ctx))
			break;
		cli_watch_sleep(2000);
	}
	free(shown);
	return rc;
}

static int dep_get(struct cli_ctx *ctx, struct cli_args *a)
{
	char path[640];
	if (!cli_arg_flag(a, "--watch"))
		return cli_get_each(ctx, a, DEP_GET_USAGE, "/v1/deployments/", dep_print);
	int rc = dep_ref(path, sizeof(path), ctx, a, DEP_GET_USAGE, "");
	return rc ? rc : dep_watch(ctx, path);
}

static int dep_stop(struct cli_ctx *ctx, struct cli_args *a)
{
	return dep_simple(ctx, a, DEP_STOP_USAGE, "POST", "/stop");
}

static int dep_start(struct cli_ctx *ctx, struct cli_args *a)
{
	return dep_simple(ctx, a, DEP_START_USAGE, "POST", "/start");
}

static int dep_scale(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *usage = DEP_SCALE_USAGE;
	const char *replicas = cli_arg_value(a, "--replicas");
	const char *standby = cli_arg_value(a, "--standby");
	char path[640];
	long long n, sb;
	unsigned timeout_s;
	json_t *body, *res = NULL;
	int rc = dep_wait_args(&timeout_s, a, ctx, usage);
	if (!rc)
		rc = dep_ref(path, sizeof(path), ctx, a, usage, "");
	if (rc)
		return rc;
	if (!replicas && !standby)
		return cli_usage_error(ctx, usage, "--replicas or --standby is required");
	if (replicas && (rc = dep_replicas_arg(&n, replicas, ctx, usage)))
		return rc;
	if (standby && (rc = dep_count_arg(&sb, "--standby", standby, ctx, usage)))
		return rc;
	body = json_object();
	if (replicas)
		json_object_set_new(body, "replicas", json_integer(n));
	if (standby)
		json_object_set_new(body, "standby_replicas", json_integer(sb));
	if ((rc = cli_request(&res, ctx, "PATCH", path, body)) == 0)
		rc = dep_after_change(ctx, res, false, timeout_s);
	json_decref(body);
	json_decref(res);
	return rc;
}

/* PATCH {"autoscale": policy | null, "replicas"?: N}: the server clamps
 * the count into the new bounds (or takes --replicas, which must lie
 * within them) and records an "autoscale" event; off leaves the count
 * where the autoscaler had it. */
static int dep_autoscale(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *usage = DEP_AUTOSCALE_USAGE;
	const char *replicas = cli_arg_value(a, "--replicas");
	/* The policy is the second word: taken before dep_ref takes the
	 * first and checks that nothing is left over. */
	const char *spec = cli_arg_positional(a, 1);
	char path[640];
	long long n;
	unsigned timeout_s;
	json_t *body = NULL, *policy = NULL, *res = NULL;
	int rc = dep_wait_args(&timeout_s, a, ctx, usage);
	if (!rc)
		rc = dep_ref(path, sizeof(path), ctx, a, usage, "");
	if (rc)
		return rc;
	if (!spec)
		return cli_usage_error(ctx, usage,
				       "the policy is required: key=value,... (min=0,max=8,target-queue=4) "
				       "or off");
	if (replicas && (rc = dep_replicas_arg(&n, replicas, ctx, usage)))
		return rc;
	if ((rc = dep_autoscale_arg(&policy, spec, "the policy", ctx, usage)))
		return rc;
	body = json_object();
	json_object_set_new(body, "autoscale", policy);
	if (replicas)
		json_object_set_new(body, "replicas", json_integer(n));
	if ((rc = cli_request(&res, ctx, "PATCH", path, body)) == 0)
		rc = dep_after_change(ctx, res, false, timeout_s);
	json_decref(body);
	json_decref(res);
	return rc;
}

/* PATCH {"model", "rollout"?}: starts a rollout; the answer is the
 * deployment with it. No --wait: the deployment is running and ready
 * throughout, so the wait of scale would end at once; get --watch
 * follows a rollout. */
static int dep_update(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *usage = DEP_UPDATE_USAGE;
	char path[640];
	struct nova_err err;
	json_t *body = NULL, *res = NULL;
	nova_err_clear(&err);
	/* The flags are taken first; a leftover, a flag without its value or
	 * a missing NAME is said before a bad value. */
	int brc = cli_rollout_body(&body, a, &err);
	int rc = dep_ref(path, sizeof(path), ctx, a, usage, "");
	if (!rc && brc)
		rc = cli_usage_error(ctx, usage, "%s%s%s%s", err.message, err.hint[0] ? " (" : "",
				     err.hint, err.hint[0] ? ")" : "");
	if (!rc && (rc = cli_request(&res, ctx, "PATCH", path, body)) == 0)
		dep_print(ctx, res);
	json_decref(body);
	json_decref(res);
	return rc;
}

/* promote, rollback: POST without a body; 409 (exit 4) when there is no
 * canary to promote, or nothing to roll back. */
static int dep_rollout_post(struct cli_ctx *ctx, struct cli_args *a, const char *usage,
			    const char *suffix)
{
	char path[640];
	json_t *res = NULL;
	int rc = dep_ref(path, sizeof(path), ctx, a, usage, suffix);
	if (!rc && (rc = cli_request(&res, ctx, "POST", path, NULL)) == 0)
		dep_print(ctx, res);
	json_decref(res);
	return rc;
}

static int dep_promote(struct cli_ctx *ctx, struct cli_args *a)
{
	return dep_rollout_post(ctx, a, DEP_PROMOTE_USAGE, "/promote");
}

static int dep_rollback(struct cli_ctx *ctx, struct cli_args *a)
{
	return dep_rollout_post(ctx, a, DEP_ROLLBACK_USAGE, "/rollback");
}

static int dep_delete(struct cli_ctx *ctx, struct cli_args *a)
{
	char path[640];
	const char *usage = DEP_DELETE_USAGE;
	int rc = dep_ref(path, sizeof(path), ctx, a, usage, "");
	if (!rc && (rc = cli_request(NULL, ctx, "DELETE", path, NULL)) == 0 && !ctx->json)
		fprintf(ctx->out, "deployment deleted\n");
	return rc;
}

int cli_cmd_deployment(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const struct cli_verb verbs[] = {
		{"list", dep_list, DEP_LIST_USAGE},
		{"get", dep_get, DEP_GET_USAGE},
		{"scale", dep_scale, DEP_SCALE_USAGE},
		{"autoscale", dep_autoscale, DEP_AUTOSCALE_USAGE},
		{"update", dep_update, DEP_UPDATE_USAGE},
		{"promote", dep_promote, DEP_PROMOTE_USAGE},
		{"rollback", dep_rollback, DEP_ROLLBACK_USAGE},
		{"stop", dep_stop, DEP_STOP_USAGE},
		{"start", dep_start, DEP_START_USAGE},
		{"delete", dep_delete, DEP_DELETE_USAGE},
	};
	return cli_verb_dispatch(ctx, "deployment", DEPLOYMENT_USAGE, verbs,
				 sizeof(verbs) / sizeof(verbs[0]), verb, a);
}
