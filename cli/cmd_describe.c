/* novactl describe: one object in one screen, kubectl-describe style,
 * composed from the GETs that exist (the object, its nodes or replicas or
 * deployments, GET /v1/events), so no endpoint exists only for it. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define DESCRIBE_USAGE                                                                        \
	"novactl describe pool|node|deployment|model NAME|ID [--events N]\n"                  \
	"  the object, its config (secrets masked), its nodes, replicas or deployments,\n"   \
	"  and its last --events N events (default 20)"
#define DESCRIBE_EVENTS_DEFAULT 20
#define DESCRIBE_MASK "********"

/* A config key whose value is a credential: printed masked. Names, not
 * values, decide (a token looks like any string). */
static bool describe_secret_key(const char *key)
{
	static const char *const words[] = {"token", "password", "passwd", "secret", "passphrase",
					    "credential", "private", "kubeconfig", "client_key",
					    "api_key", "apikey"};
	char low[128];
	size_t i;
	for (i = 0; key[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)key[i]);
	low[i] = '\0';
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(low, words[i]))
			return true;
	/* "key" alone, or ending a name ("ssh_key"), but not "key_file": a
	 * path names where the secret is, and is worth seeing. */
	size_t n = strlen(low);
	return !strcmp(low, "key") || (n > 4 && !strcmp(low + n - 4, "_key"));
}

/* A copy of v with the values of secret keys replaced, at any depth. */
static json_t *describe_mask(const json_t *v)
{
	if (json_is_object(v)) {
		json_t *o = json_object(), *x;
		const char *k;
		json_object_foreach((json_t *)v, k, x)
			json_object_set_new(o, k, describe_secret_key(k) && !json_is_null(x)
							  ? json_string(DESCRIBE_MASK)
							  : describe_mask(x));
		return o;
	}
	if (json_is_array(v)) {
		json_t *a = json_array(), *x;
		size_t i;
		json_array_foreach(v, i, x)
			json_array_append_new(a, describe_mask(x));
		return a;
	}
	return json_deep_copy(v);
}

/* A string member, or dflt. */
static const char *describe_str(const json_t *o, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v ? v : dflt;
}

static void describe_field(struct cli_ctx *ctx, const char *label, const json_t *v)
{
	char b[CLI_CELL_MAX];
	fprintf(ctx->out, "%-14s%s\n", label, *cli_cell(b, sizeof(b), v) ? b : "-");
}

/* "Labels:  a=b" then one a line, aligned. */
static void describe_labels(struct cli_ctx *ctx, const char *label, const json_t *labels)
{
	const char *k;
	json_t *v;
	bool first = true;
	json_object_foreach((json_t *)labels, k, v) {
		fprintf(ctx->out, "%-14s%s=%s\n", first ? label : "", k,
			json_is_string(v) ? json_string_value(v) : "?");
		first = false;
	}
	if (first)
		fprintf(ctx->out, "%-14s<none>\n", label);
}

/* A section: its title, then a table indented by two spaces (or <none>). */
static void describe_section(struct cli_ctx *ctx, const char *title, const char *const *headers,
			     size_t ncols, const json_t *items, cli_row_fn row)
{
	struct cli_table t;
	size_t i;
	json_t *x;
	fprintf(ctx->out, "\n%s:\n", title);
	if (!json_array_size(items)) {
		fputs("  <none>\n", ctx->out);
		return;
	}
	if (cli_table_init(&t, headers, ncols, json_array_size(items)))
		return;
	json_array_foreach(items, i, x)
		row(&t, i, x);
	/* Indent: print into memory, then each line with two spaces. */
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	if (!mem) {
		cli_table_finish(&t, ctx);
		return;
	}
	struct cli_ctx sub = *ctx;
	sub.out = mem;
	sub.no_headers = false;
	cli_table_finish(&t, &sub);
	fclose(mem);
	for (char *line = buf, *nl; line && *line; line = nl + 1) {
		nl = strchr(line, '\n');
		if (!nl)
			nl = line + strlen(line) - 1;
		fprintf(ctx->out, "  %.*s\n", (int)(nl - line + (*nl == '\n' ? 0 : 1)), line);
	}
	free(buf);
}

static void describe_event_row(struct cli_table *t, size_t row, const json_t *e)
{
	const char *kind = json_string_value(json_object_get(e, "kind"));
	const char *from = json_string_value(json_object_get(e, "from"));
	const char *to = json_string_value(json_object_get(e, "to"));
	cli_table_json(t, row, 0, json_object_get(e, "at"));
	cli_table_fmt(t, row, 1, "%s/%s", describe_str(e, "source", ""),
		      describe_str(e, "object", ""));
	if (kind && strcmp(kind, "transition") != 0)
		cli_table_fmt(t, row, 2, "%s", kind);
	else
		cli_table_fmt(t, row, 2, "%s -> %s", from ? from : "(new)", to ? to : "?");
	cli_table_json(t, row, 3, json_object_get(e, "reason"));
}

static const char *const describe_event_headers[] = {"AT", "OBJECT", "EVENT", "REASON"};

/* The last n events of GET /v1/events?FILTER=NAME, as a section. */
static int describe_events(struct cli_ctx *ctx, const char *filter, const char *name, int n)
{
	char esc[512], path[700];
	json_t *res = NULL;
	if (cli_path_escape(esc, sizeof(esc), name))
		return CLI_EXIT_USAGE;
	snprintf(path, sizeof(path), "/v1/events?%s=%s&limit=%d", filter, esc, n);
	int rc = cli_request(&res, ctx, "GET", path, NULL);
	if (rc)
		return rc;
	describe_section(ctx, "Events", describe_event_headers, 4, json_object_get(res, "events"),
			 describe_event_row);
	json_decref(res);
	return 0;
}

static void describe_node_row(struct cli_table *t, size_t row, const json_t *n)
{
	const json_t *acc = json_object_get(n, "accelerators");
	const char *type = json_string_value(json_object_get(acc, "type"));
	cli_table_json(t, row, 0, json_object_get(n, "name"));
	cli_table_fmt(t, row, 1, "%s%s", describe_str(n, "state", "?"),
		      json_is_true(json_object_get(n, "cordoned")) ? ",cordoned" : "");
	cli_table_fmt(t, row, 2, "%lld x %s",
		      (long long)json_integer_value(json_object_get(acc, "count")), type ? type : "any");
	cli_table_json(t, row, 3, json_object_get(n, "last_heartbeat_at"));
	cli_table_json(t, row, 4, json_object_get(n, "state_reason"));
}

static void describe_dep_row(struct cli_table *t, size_t row, const json_t *d)
{
	const json_t *m = json_object_get(d, "model");
	cli_table_json(t, row, 0, json_object_get(d, "name"));
	cli_table_fmt(t, row, 1, "%s:%s", describe_str(m, "name", ""),
		      describe_str(m, "version", ""));
	cli_table_json(t, row, 2, json_object_get(json_object_get(d, "pool"), "name"));
	cli_table_fmt(t, row, 3, "%lld/%lld",
		      (long long)json_integer_value(json_object_get(d, "ready_replicas")),
		      (long long)json_integer_value(json_object_get(d, "replicas")));
	cli_table_json(t, row, 4, json_object_get(d, "state"));
	cli_table_json(t, row, 5, json_object_get(d, "state_reason"));
}

static void describe_replica_row(struct cli_table *t, size_t row, const json_t *r)
{
	char nodes[CLI_CELL_MAX] = "";
	size_t i, used = 0;
	json_t *p;
	json_array_foreach(json_object_get(r, "placements"), i, p) {
		int k = snprintf(nodes + used, sizeof(nodes) - used, "%s%s", i ? "," : "",
				 describe_str(p, "node", "?"));
		if (k < 0 || (size_t)k >= sizeof(nodes) - used)
			break;
		used += (size_t)k;
	}
	cli_table_json(t, row, 0, json_object_get(r, "ordinal"));
	cli_table_json(t, row, 1, json_object_get(r, "version"));
	cli_table_json(t, row, 2, json_object_get(r, "state"));
	cli_table_fmt(t, row, 3, "%s", nodes);
	cli_table_json(t, row, 4, json_object_get(r, "endpoint"));
	cli_table_json(t, row, 5, json_object_get(r, "reason"));
}

static void describe_node_replica_row(struct cli_table *t, size_t row, const json_t *r)
{
	cli_table_json(t, row, 0, json_object_get(r, "deployment"));
	cli_table_json(t, row, 1, json_object_get(r, "ordinal"));
	cli_table_json(t, row, 2, json_object_get(r, "stage"));
	cli_table_json(t, row, 3, json_object_get(r, "state"));
	cli_table_json(t, row, 4, json_object_get(r, "accelerators"));
}

static void describe_stage_row(struct cli_table *t, size_t row, const json_t *s)
{
	cli_table_json(t, row, 0, json_object_get(s, "name"));
	cli_table_json(t, row, 1, json_object_get(s, "accelerators"));
	cli_table_json(t, row, 2, json_object_get(s, "accelerator_type"));
	cli_table_json(t, row, 3, json_object_get(s, "memory_mib"));
}

/* Deployments whose key (pool.name or model.name) is name. */
static json_t *describe_deployments_of(struct cli_ctx *ctx, const char *key, const char *name,
				       int *rc)
{
	json_t *all = NULL, *out = json_array(), *d;
	size_t i;
	if ((*rc = cli_request(&all, ctx, "GET", "/v1/deployments", NULL)))
		return out;
	json_array_foreach(all, i, d) {
		const char *v = json_string_value(json_object_get(json_object_get(d, key), "name"));
		if (v && !strcmp(v, name))
			json_array_append(out, d);
	}
	json_decref(all);
	return out;
}

static void describe_config(struct cli_ctx *ctx, const json_t *config)
{
	json_t *masked = describe_mask(config);
	fputs("Config:       (secrets masked)\n", ctx->out);
	if (json_object_size(masked) == 0) {
		fputs("  {}\n", ctx->out);
	} else {
		char *buf = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&buf, &len);
		if (mem) {
			cli_yaml_print(mem, masked);
			fclose(mem);
			for (char *line = buf, *nl; line && *line; line = nl + 1) {
				if (!(nl = strchr(line, '\n')))
					break;
				if (strncmp(line, "---", 3) != 0 && strncmp(line, "...", 3) != 0)
					fprintf(ctx->out, "  %.*s\n", (int)(nl - line), line);
			}
			free(buf);
		}
	}
	json_decref(masked);
}

static int describe_get(json_t **out, struct cli_ctx *ctx, const char *prefix, const char *name)
{
	char esc[512], path[640];
	if (cli_path_escape(esc, sizeof(esc), name)) {
		fprintf(ctx->errout, "novactl: NAME is too long\n");
		return CLI_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s%s", prefix, esc);
	return cli_request(out, ctx, "GET", path, NULL);
}

static int describe_pool(struct cli_ctx *ctx, const char *name, int nev)
{
	static const char *const node_headers[] = {"NAME", "STATE", "ACCELERATORS", "LAST-HEARTBEAT",
						   "REASON"};
	static const char *const dep_headers[] = {"NAME", "MODEL", "POOL", "READY", "STATE", "REASON"};
	json_t *p = NULL, *nodes = NULL, *deps;
	char esc[512], path[640];
	int rc = describe_get(&p, ctx, "/v1/pools/", name);
	if (rc)
		return rc;
	const char *pname = json_string_value(json_object_get(p, "name"));
	json_t *q = json_object_get(p, "quotas");
	describe_field(ctx, "Name:", json_object_get(p, "name"));
	describe_field(ctx, "ID:", json_object_get(p, "id"));
	describe_field(ctx, "Provider:", json_object_get(p, "provider"));
	describe_field(ctx, "State:", json_object_get(p, "state"));
	describe_labels(ctx, "Labels:", json_object_get(p, "labels"));
	char b[3][CLI_CELL_MAX];
	fprintf(ctx->out, "%-14smax nodes %s, max accelerators %s, accelerator types %s\n", "Quotas:",
		*cli_cell(b[0], CLI_CELL_MAX, json_object_get(q, "max_nodes")) ? b[0] : "unlimited",
		*cli_cell(b[1], CLI_CELL_MAX, json_object_get(q, "max_accelerators")) ? b[1]
										: "unlimited",
		json_array_size(json_object_get(q, "accelerator_types"))
			? cli_cell(b[2], CLI_CELL_MAX, json_object_get(q, "accelerator_types"))
			: "any");
	describe_field(ctx, "Created:", json_object_get(p, "created_at"));
	describe_config(ctx, json_object_get(p, "config"));
	if (cli_path_escape(esc, sizeof(esc), pname ? pname : name) == 0) {
		snprintf(path, sizeof(path), "/v1/nodes?pool=%s", esc);
		if ((rc = cli_request(&nodes, ctx, "GET", path, NULL)) == 0)
			describe_section(ctx, "Nodes", node_headers, 5, nodes, describe_node_row);
	}
	deps = describe_deployments_of(ctx, "pool", pname ? pname : name, &rc);
	if (!rc)
		describe_section(ctx, "Deployments", dep_headers, 6, deps, describe_dep_row);
	if (!rc)
		rc = describe_events(ctx, "pool", pname ? pname : name, nev);
	json_decref(deps);
	json_decref(nodes);
	json_decref(p);
	return rc;
}

static int describe_node(struct cli_ctx *ctx, const char *name, int nev)
{
	static const char *const rep_headers[] = {"DEPLOYMENT", "REPLICA", "STAGE", "STATE",
						  "ACCELERATORS"};
	json_t *n = NULL;
	char b[2][CLI_CELL_MAX];
	int rc = describe_get(&n, ctx, "/v1/nodes/", name);
	if (rc)
		return rc;
	json_t *acc = json_object_get(n, "accelerators");
	describe_field(ctx, "Name:", json_object_get(n, "name"));
	describe_field(ctx, "ID:", json_object_get(n, "id"));
	describe_field(ctx, "Pool:", json_object_get(json_object_get(n, "pool"), "name"));
	fprintf(ctx->out, "%-14s%s (%s)\n", "State:",
		cli_cell(b[0], CLI_CELL_MAX, json_object_get(n, "state")),
		cli_cell(b[1], CLI_CELL_MAX, json_object_get(n, "state_reason")));
	describe_field(ctx, "Cordoned:", json_object_get(n, "cordoned"));
	describe_labels(ctx, "Labels:", json_object_get(n, "labels"));
	fprintf(ctx->out, "%-14s%s x %s, %s MiB\n", "Accelerators:",
		cli_cell(b[0], CLI_CELL_MAX, json_object_get(acc, "count")),
		describe_str(acc, "type", "any"),
		cli_cell(b[1], CLI_CELL_MAX, json_object_get(acc, "memory_mib")));
	describe_field(ctx, "Handle:", json_object_get(n, "handle"));
	describe_field(ctx, "Endpoint:", json_object_get(n, "endpoint"));
	describe_field(ctx, "Heartbeat:", json_object_get(n, "last_heartbeat_at"));
	describe_field(ctx, "Created:", json_object_get(n, "created_at"));
	describe_section(ctx, "Replicas", rep_headers, 5, json_object_get(n, "replicas"),
			 describe_node_replica_row);
	const char *id = json_string_value(json_object_get(n, "id"));
	rc = describe_events(ctx, "node", id ? id : name, nev);
	json_decref(n);
	return rc;
}

static int describe_deployment(struct cli_ctx *ctx, const char *name, int nev)
{
	static const char *const rep_headers[] = {"REPLICA", "VERSION",  "STATE",
						  "NODES",   "ENDPOINT", "REASON"};
	json_t *d = NULL;
	char b[4][CLI_CELL_MAX];
	int rc = describe_get(&d, ctx, "/v1/deployments/", name);
	if (rc)
		return rc;
	json_t *m = json_object_get(d, "model");
	describe_field(ctx, "Name:", json_object_get(d, "name"));
	describe_field(ctx, "ID:", json_object_get(d, "id"));
	fprintf(ctx->out, "%-14s%s:%s (%s)\n", "Model:",
		cli_cell(b[0], CLI_CELL_MAX, json_object_get(m, "name")),
		cli_cell(b[1], CLI_CELL_MAX, json_object_get(m, "version")),
		cli_cell(b[2], CLI_CELL_MAX, json_object_get(m, "kind")));
	describe_field(ctx, "Pool:", json_object_get(json_object_get(d, "pool"), "name"));
	fprintf(ctx->out, "%-14s%s (%s)\n", "State:",
		cli_cell(b[0], CLI_CELL_MAX, json_object_get(d, "state")),
		cli_cell(b[1], CLI_CELL_MAX, json_object_get(d, "state_reason")));
	fprintf(ctx->out, "%-14s%s wanted, %s ready\n", "Replicas:",
		cli_cell(b[2], CLI_CELL_MAX, json_object_get(d, "replicas")),
		cli_cell(b[3], CLI_CELL_MAX, json_object_get(d, "ready_replicas")));
	fprintf(ctx->out, "%-14s%s\n", "Autoscale:",
		cli_autoscale_summary(b[0], CLI_CELL_MAX, json_object_get(d, "autoscale")));
	if (*cli_autoscaler_summary(b[0], CLI_CELL_MAX, json_object_get(d, "autoscaler")))
		fprintf(ctx->out, "%-14s%s\n", "Autoscaler:", b[0]);
	cli_rollout_print(ctx->out, "Rollout:", 14, json_object_get(d, "rollout"));
	describe_field(ctx, "Placement:", json_object_get(d, "placement"));
	describe_labels(ctx, "Node labels:", json_object_get(d, "labels"));
	describe_field(ctx, "Generation:", json_object_get(d, "generation"));
	describe_field(ctx, "Created:", json_object_get(d, "created_at"));
	describe_field(ctx, "Updated:", json_object_get(d, "updated_at"));
	describe_section(ctx, "Replicas", rep_headers, 6, json_object_get(d, "replica_list"),
			 describe_replica_row);
	const char *id = json_string_value(json_object_get(d, "id"));
	rc = describe_events(ctx, "deployment", id ? id : name, nev);
	json_decref(d);
	return rc;
}

static int describe_model(struct cli_ctx *ctx, const char *name, int nev)
{
	static const char *const stage_headers[] = {"STAGE", "ACCELERATORS", "TYPE", "MEMORY-MIB"};
	static const char *const dep_headers[] = {"NAME", "MODEL", "POOL", "READY", "STATE", "REASON"};
	json_t *m = NULL, *deps;
	(void)nev; /* a model has no events of its own: its deployments show theirs */
	int rc = describe_get(&m, ctx, "/v1/models/", name);
	if (rc)
		return rc;
	describe_field(ctx, "Name:", json_object_get(m, "name"));
	describe_field(ctx, "Version:", json_object_get(m, "version"));
	describe_field(ctx, "ID:", json_object_get(m, "id"));
	describe_field(ctx, "Kind:", json_object_get(m, "kind"));
	describe_field(ctx, "Created:", json_object_get(m, "created_at"));
	json_t *spec = json_deep_copy(m);
	static const char *const shown[] = {"name", "version", "id", "kind", "created_at",
					    "updated_at", "stages"};
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
		json_object_del(spec, shown[i]);
	describe_config(ctx, spec);
	json_decref(spec);
	describe_section(ctx, "Stages", stage_headers, 4, json_object_get(m, "stages"),
			 describe_stage_row);
	deps = describe_deployments_of(ctx, "model",
				       describe_str(m, "name", name), &rc);
	if (!rc)
		describe_section(ctx, "Deployments", dep_headers, 6, deps, describe_dep_row);
	json_decref(deps);
	json_decref(m);
	return rc;
}

int cli_cmd_describe(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const struct {
		const char *kind;
		int (*fn)(struct cli_ctx *, const char *, int);
	} kinds[] = {{"pool", describe_pool},
		     {"node", describe_node},
		     {"deployment", describe_deployment},
		     {"model", describe_model}};
	if (ctx->complete) {
		if (verb)
			return cli_complete_usage(ctx, DESCRIBE_USAGE);
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			fprintf(ctx->out, "%s\n", kinds[i].kind);
		return 0;
	}
	if (!verb)
		return cli_usage_error(ctx, DESCRIBE_USAGE, "describe needs a kind: pool, node, "
						  "deployment or model");
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || cli_args_wants_help(a)) {
		fputs("usage: " DESCRIBE_USAGE "\n", ctx->out);
		return 0;
	}
	const char *nev_s = cli_arg_value(a, "--events");
	const char *name = cli_arg_positional(a, 0);
	int rc = cli_args_finish(a, ctx, DESCRIBE_USAGE), nev = DESCRIBE_EVENTS_DEFAULT;
	if (rc)
		return rc;
	if (nev_s) {
		char *end;
		long v = strtol(nev_s, &end, 10);
		if (!*nev_s || *end || v < 1 || v > 1000)
			return cli_usage_error(ctx, DESCRIBE_USAGE,
					       "--events must be 1 to 1000, not \"%s\"", nev_s);
		nev = (int)v;
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(kinds[i].kind, verb) != 0)
			continue;
		if (!name)
			return cli_usage_error(ctx, DESCRIBE_USAGE, "NAME is required");
		if (ctx->output != CLI_OUTPUT_TABLE && ctx->output != CLI_OUTPUT_WIDE)
			return cli_usage_error(ctx, DESCRIBE_USAGE,
					       "describe prints text; for a document use "
					       "'novactl %s get %s -o json|yaml'", verb, name);
		return kinds[i].fn(ctx, name, nev);
	}
	return cli_usage_error(ctx, DESCRIBE_USAGE,
			       "cannot describe \"%s\": give pool, node, deployment or model", verb);
}
