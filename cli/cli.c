#include "cli/cli.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "core/config.h"
#include "core/http_client.h"
#include "core/ydoc.h"

/* --- arguments ------------------------------------------------------------- */

void cli_args_init(struct cli_args *a, int argc, char **argv)
{
	memset(a, 0, sizeof(*a));
	a->n = argc;
	a->v = argv;
	/* Dropping the words past the limit would run a different command
	 * than the one typed; refuse it instead. */
	if (argc > CLI_ARGS_MAX) {
		a->n = CLI_ARGS_MAX;
		a->bad = true;
		snprintf(a->bad_msg, sizeof(a->bad_msg), "too many arguments (at most %d)",
			 CLI_ARGS_MAX);
	}
}

static const char *cli_arg_find(struct cli_args *a, const char *flag, bool need_value)
{
	size_t fl = strlen(flag);
	for (int i = 0; i < a->n; i++) {
		if (a->used[i] || strncmp(a->v[i], flag, fl) != 0)
			continue;
		if (a->v[i][fl] == '=' && need_value) {
			a->used[i] = true;
			return a->v[i] + fl + 1;
		}
		if (a->v[i][fl] != '\0')
			continue;
		a->used[i] = true;
		if (!need_value)
			return a->v[i];
		if (i + 1 >= a->n) {
			if (!a->bad)
				snprintf(a->bad_msg, sizeof(a->bad_msg), "%s needs a value", flag);
			a->bad = true;
			return NULL;
		}
		a->used[i + 1] = true;
		return a->v[i + 1];
	}
	return NULL;
}

const char *cli_arg_value(struct cli_args *a, const char *flag)
{
	return cli_arg_find(a, flag, true);
}

const char *cli_arg_value_next(struct cli_args *a, const char *flag)
{
	return cli_arg_find(a, flag, true);
}

bool cli_arg_flag(struct cli_args *a, const char *flag)
{
	return cli_arg_find(a, flag, false) != NULL;
}

const char *cli_arg_positional(struct cli_args *a, int idx)
{
	int seen = 0;
	/* Commands take their flags (and flag values) first, so what is left
	 * unused and not dash-led is positional. */
	for (int i = 0; i < a->n; i++) {
		if ((a->used[i] && !a->positional[i]) || (a->v[i][0] == '-' && a->v[i][1] != '\0'))
			continue;
		if (seen++ == idx) {
			a->used[i] = a->positional[i] = true;
			return a->v[i];
		}
	}
	return NULL;
}

bool cli_args_wants_help(const struct cli_args *a)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->v[i], "--help") || !strcmp(a->v[i], "-h"))
			return true;
	return false;
}

int cli_usage_error(struct cli_ctx *ctx, const char *usage, const char *fmt, ...)
{
	va_list ap;
	fputs("novactl: ", ctx->errout);
	va_start(ap, fmt);
	vfprintf(ctx->errout, fmt, ap);
	va_end(ap);
	fprintf(ctx->errout, "\nusage: %s\n", usage);
	return CLI_EXIT_USAGE;
}

/* Was the flag named by arg ("--x" or "--x=v") consumed elsewhere? Then a
 * leftover one is a repeat of a single-valued flag, not an unknown one. */
static bool cli_arg_seen(const struct cli_args *a, int skip, const char *arg)
{
	size_t l = strcspn(arg, "=");
	for (int i = 0; i < a->n; i++)
		if (i != skip && a->used[i] && strncmp(a->v[i], arg, l) == 0 &&
		    (a->v[i][l] == '\0' || a->v[i][l] == '='))
			return true;
	return false;
}

int cli_args_finish(struct cli_args *a, struct cli_ctx *ctx, const char *usage)
{
	if (a->bad)
		return cli_usage_error(ctx, usage, "%s", a->bad_msg);
	for (int i = 0; i < a->n; i++) {
		if (a->used[i])
			continue;
		if (a->v[i][0] == '-' && a->v[i][1] != '\0') {
			if (cli_arg_seen(a, i, a->v[i]))
				return cli_usage_error(ctx, usage, "%.*s given more than once",
						       (int)strcspn(a->v[i], "="), a->v[i]);
			return cli_usage_error(ctx, usage, "unknown flag %s", a->v[i]);
		}
		return cli_usage_error(ctx, usage, "unexpected argument %s", a->v[i]);
	}
	return 0;
}

/* --- configuration ---------------------------------------------------------- */

void cli_config_path(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(buf, len, "%s/nova/config.yaml", xdg);
	else
		snprintf(buf, len, "%s/.config/nova/config.yaml", home ? home : "");
}

/* The first line of a small file, without surrounding white space; false
 * when unreadable or blank (buf is then ""). */
static bool cli_read_first_line(char *buf, size_t len, const char *path)
{
	FILE *f = fopen(path, "r");
	size_t start = 0, end;
	buf[0] = '\0';
	if (!f)
		return false;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	end = strcspn(buf, "\r\n");
	while (end > 0 && (buf[end - 1] == ' ' || buf[end - 1] == '\t'))
		end--;
	while (start < end && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	memmove(buf, buf + start, end - start);
	buf[end - start] = '\0';
	return buf[0] != '\0';
}

/* The config file's server and token: the top ones, or those of the
 * context `want` (NULL: the file's current-context, if any); *context gets
 * the context's name ("" for none). A context named by want that the file
 * lacks is NOVA_ENOTFOUND. */
static int cli_config_file(char *server, size_t slen, char *token, size_t tlen, char *context,
			   size_t clen, const char *want, struct nova_err *err)
{
	static const char *const keys[] = {"server", "token", "contexts", "current-context", NULL};
	static const char *const ctx_keys[] = {"name", "server", "token", NULL};
	char path[1024], current[128] = "";
	struct ydoc *d;
	yaml_node_t *root, *n;
	int rc;
	context[0] = '\0';
	cli_config_path(path, sizeof(path));
	rc = ydoc_load_file(&d, path, err);
	if (rc == NOVA_ENOTFOUND && !(want && *want))
		return 0;
	if (rc == NOVA_ENOTFOUND)
		return nova_err_set(err, NOVA_ENOTFOUND, "context",
				    "no context \"%s\": %s does not exist", want, path);
	if (rc)
		return rc;
	root = ydoc_root(d);
	if (root && (rc = ydoc_map_check_keys(d, root, "", keys, err)) == 0) {
		if ((n = ydoc_map_get(d, root, "server")))
			rc = ydoc_copy_string(server, slen, d, n, "server", err);
		if (!rc && (n = ydoc_map_get(d, root, "token")))
			rc = ydoc_copy_string(token, tlen, d, n, "token", err);
		if (!rc && (n = ydoc_map_get(d, root, "current-context")))
			rc = ydoc_copy_string(current, sizeof(current), d, n, "current-context", err);
	}
	const char *name = want && *want ? want : current[0] ? current : NULL;
	yaml_node_t *list = !rc && root ? ydoc_map_get(d, root, "contexts") : NULL;
	bool found = false;
	if (list && list->type != YAML_SEQUENCE_NODE)
		rc = ydoc_err(d, list, err, NOVA_EINVAL, "contexts", "contexts: expected a list");
	for (yaml_node_item_t *it = list && !rc ? list->data.sequence.items.start : NULL;
	     it && it < list->data.sequence.items.top && !rc; it++) {
		yaml_node_t *c = ydoc_node(d, *it);
		char cname[128] = "";
		if (!c || c->type != YAML_MAPPING_NODE) {
			rc = ydoc_err(d, c, err, NOVA_EINVAL, "contexts",
				      "a context is a mapping with name, server and token");
			break;
		}
		if ((rc = ydoc_map_check_keys(d, c, "contexts[].", ctx_keys, err)))
			break;
		if (!(n = ydoc_map_get(d, c, "name"))) {
			rc = ydoc_err(d, c, err, NOVA_EINVAL, "contexts[].name", "a context needs a name");
			break;
		}
		if ((rc = ydoc_copy_string(cname, sizeof(cname), d, n, "contexts[].name", err)))
			break;
		if (!name || strcmp(cname, name) != 0 || found)
			continue;
		found = true;
		snprintf(context, clen, "%s", cname);
		/* The context's own values stand for the top ones. */
		if ((n = ydoc_map_get(d, c, "server")))
			rc = ydoc_copy_string(server, slen, d, n, "contexts[].server", err);
		if (!rc && (n = ydoc_map_get(d, c, "token")))
			rc = ydoc_copy_string(token, tlen, d, n, "contexts[].token", err);
	}
	if (!rc && name && !found)
		rc = nova_err_set(err, NOVA_ENOTFOUND, "context", "no context \"%s\" in %s", name,
				  path);
	if (!rc && name && !found)
		nova_err_set_hint(err, "novactl config get-contexts lists them");
	ydoc_destroy(d);
	return rc;
}

int cli_config_resolve(struct cli_ctx *ctx, const char *flag_server, const char *flag_token,
		       const char *flag_context, struct nova_err *err)
{
	char file_server[1024] = "", file_token[512] = "", state[1024], path[1100];
	const char *env_server = getenv("NOVA_SERVER"), *env_token = getenv("NOVA_TOKEN");
	const char *want = flag_context ? flag_context : getenv("NOVA_CONTEXT");
	int rc = cli_config_file(file_server, sizeof(file_server), file_token, sizeof(file_token),
				 ctx->context, sizeof(ctx->context), want, err);
	if (rc) {
		explicit_bzero(file_token, sizeof(file_token));
		return rc;
	}
	cfg_default_state_dir(state, sizeof(state));
	if (flag_server)
		snprintf(ctx->server, sizeof(ctx->server), "%s", flag_server);
	else if (env_server && *env_server)
		snprintf(ctx->server, sizeof(ctx->server), "%s", env_server);
	else if (file_server[0])
		snprintf(ctx->server, sizeof(ctx->server), "%s", file_server);
	else if (snprintf(path, sizeof(path), "%s/novad.url", state) > 0 &&
		 cli_read_first_line(ctx->server, sizeof(ctx->server), path))
		;
	else
		snprintf(ctx->server, sizeof(ctx->server), "%s", CFG_DEFAULT_SERVER);
	size_t sl = strlen(ctx->server);
	while (sl > 0 && ctx->server[sl - 1] == '/')
		ctx->server[--sl] = '\0';

	if (flag_token)
		snprintf(ctx->token, sizeof(ctx->token), "%s", flag_token);
	else if (env_token && *env_token)
		snprintf(ctx->token, sizeof(ctx->token), "%s", env_token);
	else if (file_token[0])
		snprintf(ctx->token, sizeof(ctx->token), "%s", file_token);
	else if (snprintf(path, sizeof(path), "%s/%s", state, CFG_ADMIN_TOKEN_FILE) > 0 &&
		 cli_read_first_line(ctx->token, sizeof(ctx->token), path))
		;
	else
		ctx->token[0] = '\0';
	explicit_bzero(file_token, sizeof(file_token));
	return 0;
}

/* --- requests ---------------------------------------------------------------- */

int cli_path_escape(char *buf, size_t len, const char *segment)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	assert(len > 0);
	for (const unsigned char *p = (const unsigned char *)segment; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' ||
			     *p == '~';
		if (o + (plain ? 1 : 3) >= len) {
			buf[0] = '\0';
			return -1;
		}
		if (plain) {
			buf[o++] = (char)*p;
		} else {
			buf[o++] = '%';
			buf[o++] = hex[*p >> 4];
			buf[o++] = hex[*p & 15];
		}
	}
	buf[o] = '\0';
	return 0;
}

int cli_query_add(char *path, size_t len, size_t *used, const char *name, const char *value,
		  struct cli_ctx *ctx, const char *usage)
{
	char esc[512];
	if (!value)
		return 0;
	if (cli_path_escape(esc, sizeof(esc), value))
		return cli_usage_error(ctx, usage, "--%s is too long", name);
	int n = snprintf(path + *used, len - *used, "%c%s=%s", strchr(path, '?') ? '&' : '?', name,
			 esc);
	if (n < 0 || (size_t)n >= len - *used)
		return cli_usage_error(ctx, usage, "the filters are too long");
	*used += (size_t)n;
	return 0;
}

int cli_request(json_t **out, struct cli_ctx *ctx, const char *method, const char *path,
		const json_t *body)
{
	char url[2048];
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct http_client_response res;
	struct nova_err err;
	int rc;
	if (out)
		*out = NULL;
	snprintf(url, sizeof(url), "%s%s", ctx->server, path);
	struct http_client_request req = {
		.method = method, .url = url, .bearer_token = ctx->token[0] ? ctx->token : NULL,
		.body = text, .body_len = text ? strlen(text) : 0, .timeout_ms = 60000,
	};
	rc = http_client_do(&res, &req, &err);
	free(text);
	if (rc) {
		fprintf(ctx->errout, "novactl: cannot reach novad at %s: %s\n", ctx->server, err.message);
		fprintf(ctx->errout, "hint: is novad running? set --server or NOVA_SERVER\n");
		return nova_code_exit_status(rc);
	}
	json_t *j = res.body_len ? json_loadb(res.body, res.body_len, JSON_DECODE_ANY, NULL) : NULL;
	if (res.status >= 200 && res.status < 300 && res.body_len && !j) {
		/* Not novad, or a proxy's page: say so rather than print blanks. */
		fprintf(ctx->errout, "novactl: %s answered %s with HTTP %ld and a body that is not JSON\n",
			ctx->server, path, res.status);
		fprintf(ctx->errout, "hint: is %s a novad gateway?\n", ctx->server);
		http_client_response_finish(&res);
		return 1;
	}
	if (res.status >= 200 && res.status < 300) {
		http_client_response_finish(&res);
		if (out)
			*out = j;
		else
			json_decref(j);
		return 0;
	}
	int exit_status = cli_error_print(ctx, res.status, j);
	json_decref(j);
	http_client_response_finish(&res);
	return exit_status;
}

int cli_error_print(struct cli_ctx *ctx, long status, const json_t *j)
{
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *field = json_string_value(json_object_get(e, "field"));
	const char *hint = json_string_value(json_object_get(e, "hint"));
	int ncode = code ? nova_code_from_name(code) : nova_code_from_http_status((int)status);
	if (ncode == NOVA_OK)
		ncode = NOVA_EINTERNAL;
	fprintf(ctx->errout, "novactl: %s", msg ? msg : "request failed");
	if (field && *field)
		fprintf(ctx->errout, " (field: %s)", field);
	if (!msg)
		fprintf(ctx->errout, " (HTTP %ld)", status);
	fputc('\n', ctx->errout);
	if (hint && *hint)
		fprintf(ctx->errout, "hint: %s\n", hint);
	if (ncode == NOVA_EUNAUTH && !ctx->token[0])
		fprintf(ctx->errout, "hint: no token found; set --token or NOVA_TOKEN\n");
	return nova_code_exit_status(ncode);
}

/* --- output ---------------------------------------------------------------------- */

int cli_output_parse(enum cli_output *out, const char *name)
{
	static const char *const names[] = {"table", "wide", "json", "yaml", "name"};
	for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i])) {
			*out = (enum cli_output)i;
			return 0;
		}
	return -1;
}

static void cli_table_print_opt(FILE *f, const char *const *headers, size_t ncols,
				const char *const *cells, size_t nrows, bool no_headers);

void cli_table_print(FILE *f, const char *const *headers, size_t ncols, const char *const *cells,
		     size_t nrows)
{
	cli_table_print_opt(f, headers, ncols, cells, nrows, false);
}

static void cli_table_print_opt(FILE *f, const char *const *headers, size_t ncols,
				const char *const *cells, size_t nrows, bool no_headers)
{
	size_t width[16] = {0};
	if (ncols > 16)
		ncols = 16;
	for (size_t c = 0; c < ncols; c++)
		width[c] = strlen(headers[c]);
	for (size_t r = 0; r < nrows; r++)
		for (size_t c = 0; c < ncols; c++) {
			const char *s = cells[r * ncols + c];
			size_t l = s && *s ? strlen(s) : 1;
			if (l > width[c])
				width[c] = l;
		}
	for (size_t c = 0; c < ncols && !no_headers; c++) {
		if (c + 1 < ncols)
			fprintf(f, "%-*s  ", (int)width[c], headers[c]);
		else
			fprintf(f, "%s\n", headers[c]);
	}
	for (size_t r = 0; r < nrows; r++)
		for (size_t c = 0; c < ncols; c++) {
			const char *s = cells[r * ncols + c];
			if (!s || !*s)
				s = "-";
			if (c + 1 < ncols)
				fprintf(f, "%-*s  ", (int)width[c], s);
			else
				fprintf(f, "%s\n", s);
		}
}

int cli_table_init(struct cli_table *t, const char *const *headers, size_t ncols, size_t nrows)
{
	t->headers = headers;
	t->ncols = ncols;
	t->nrows = nrows;
	t->cells = calloc(nrows * ncols + 1, sizeof(*t->cells));
	t->ptrs = calloc(nrows * ncols + 1, sizeof(*t->ptrs));
	if (!t->cells || !t->ptrs) {
		free(t->cells);
		free(t->ptrs);
		return -1;
	}
	for (size_t i = 0; i < nrows * ncols; i++)
		t->ptrs[i] = t->cells[i];
	return 0;
}

void cli_table_json(struct cli_table *t, size_t row, size_t col, const json_t *v)
{
	cli_cell(t->cells[row * t->ncols + col], CLI_CELL_MAX, v);
}

void cli_table_fmt(struct cli_table *t, size_t row, size_t col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->cells[row * t->ncols + col], CLI_CELL_MAX, fmt, ap);
	va_end(ap);
}

void cli_table_finish(struct cli_table *t, const struct cli_ctx *ctx)
{
	cli_table_print_opt(ctx->out, t->headers, t->ncols, t->ptrs, t->nrows, ctx->no_headers);
	free(t->cells);
	free(t->ptrs);
	t->cells = NULL;
	t->ptrs = NULL;
}

int cli_list(struct cli_ctx *ctx, const char *path, const char *const *headers, size_t ncols,
	     cli_row_fn row, const struct cli_selector *sel)
{
	struct cli_table t;
	json_t *res = NULL, *item;
	size_t i;
	int rc = cli_request(&res, ctx, "GET", path, NULL);
	if (rc)
		return rc;
	if (sel && sel->n && json_is_array(res)) {
		json_t *kept = json_array();
		json_array_foreach(res, i, item)
			if (cli_selector_match(sel, json_object_get(item, "labels")))
				json_array_append(kept, item);
		json_decref(res);
		res = kept;
	}
	bool wide = ctx->output == CLI_OUTPUT_WIDE && ncols + 2 <= 16;
	const char *wide_headers[16];
	if (wide) {
		memcpy(wide_headers, headers, ncols * sizeof(*headers));
		wide_headers[ncols] = "ID";
		wide_headers[ncols + 1] = "CREATED";
	}
	if (ctx->json) {
		cli_doc_print(ctx, res);
	} else if (cli_table_init(&t, wide ? wide_headers : headers, wide ? ncols + 2 : ncols,
				  json_array_size(res)) != 0) {
		fprintf(ctx->errout, "novactl: out of memory\n");
		rc = 1;
	} else {
		json_array_foreach(res, i, item) {
			row(&t, i, item);
			if (wide) {
				cli_table_json(&t, i, ncols, json_object_get(item, "id"));
				cli_table_json(&t, i, ncols + 1, json_object_get(item, "created_at"));
			}
		}
		cli_table_finish(&t, ctx);
	}
	json_decref(res);
	return rc;
}

/* --- YAML and names ------------------------------------------------------------ */

/* A plain scalar YAML would read back as the same string: not empty, no
 * leading or trailing space, not a word YAML 1.1 gives another type
 * (null, booleans, numbers), no indicator where it would mean one. Else
 * the string goes double quoted. */
static bool cli_yaml_plain_ok(const char *s)
{
	static const char *const words[] = {"null", "Null", "NULL", "~", "true", "True", "TRUE",
					    "false", "False", "FALSE", "yes", "Yes", "YES", "no",
					    "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
					    "y", "Y", "n", "N", ".nan", ".NaN", ".NAN", ".inf",
					    ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf"};
	size_t len = strlen(s);
	if (!len || s[0] == ' ' || s[len - 1] == ' ' || strchr("-?:,[]{}#&*!|>'\"%@`", s[0]))
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(s, words[i]))
			return false;
	char *end;
	errno = 0;
	(void)strtod(s, &end);
	if (*end == '\0')
		return false; /* a number */
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (p[0] == ':' && (p[1] == ' ' || !p[1])) ||
		    (p[0] == ' ' && p[1] == '#'))
			return false;
	return true;
}

static int cli_yaml_scalar(yaml_emitter_t *em, const char *text, bool string)
{
	yaml_event_t ev;
	yaml_scalar_style_t style = !string || cli_yaml_plain_ok(text) ? YAML_PLAIN_SCALAR_STYLE
									: YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1,
					  1, style))
		return -1;
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int cli_yaml_node(yaml_emitter_t *em, const json_t *v)
{
	yaml_event_t ev;
	char num[64];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		json_object_foreach((json_t *)v, k, x)
			if (cli_yaml_scalar(em, k, true) || cli_yaml_node(em, x))
				return -1;
		return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev) ? 0 : -1;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *x;
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
							  YAML_BLOCK_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(em, &ev))
			return -1;
		json_array_foreach(v, i, x)
			if (cli_yaml_node(em, x))
				return -1;
		return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(em, &ev) ? 0 : -1;
	}
	case JSON_STRING:
		return cli_yaml_scalar(em, json_string_value(v), true);
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return cli_yaml_scalar(em, num, false);
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		return cli_yaml_scalar(em, num, false);
	case JSON_TRUE:
		return cli_yaml_scalar(em, "true", false);
	case JSON_FALSE:
		return cli_yaml_scalar(em, "false", false);
	default:
		return cli_yaml_scalar(em, "null", false);
	}
}

static int cli_yaml_write(void *data, unsigned char *buf, size_t size)
{
	return fwrite(buf, 1, size, data) == size;
}

int cli_yaml_print(FILE *f, const json_t *v)
{
	yaml_emitter_t em;
	yaml_event_t ev;
	int rc = -1;
	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output(&em, cli_yaml_write, f);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	if (yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
	    yaml_emitter_emit(&em, &ev) &&
	    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
	    yaml_emitter_emit(&em, &ev) && cli_yaml_node(&em, v) == 0 &&
	    yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&em, &ev) &&
	    yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&em, &ev))
		rc = 0;
	yaml_emitter_delete(&em);
	return rc;
}

static void cli_name_print(const struct cli_ctx *ctx, const json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	const char *adapter = NULL;
	if (!name)
		name = json_string_value(json_object_get(o, "id"));
	if (!name) { /* a route: its key, the model or model/adapter */
		name = json_string_value(json_object_get(o, "model"));
		adapter = json_string_value(json_object_get(o, "adapter"));
	}
	if (name)
		fprintf(ctx->out, "%s/%s%s%s\n", ctx->kind ? ctx->kind : "object", name,
			adapter ? "/" : "", adapter ? adapter : "");
}

void cli_doc_print(const struct cli_ctx *ctx, const json_t *v)
{
	size_t i;
	json_t *x;
	if (ctx->output == CLI_OUTPUT_YAML) {
		if (cli_yaml_print(ctx->out, v))
			fprintf(ctx->errout, "novactl: cannot print the answer as YAML\n");
	} else if (ctx->output == CLI_OUTPUT_NAME) {
		if (json_is_array(v))
			json_array_foreach(v, i, x)
				cli_name_print(ctx, x);
		else if (json_is_array(json_object_get(v, "routes")))
			json_array_foreach(json_object_get(v, "routes"), i, x)
				cli_name_print(ctx, x);
		else
			cli_name_print(ctx, v);
	} else {
		cli_json_print(ctx->out, v);
	}
}

/* --- completion --------------------------------------------------------------- */

int cli_complete_usage(const struct cli_ctx *ctx, const char *usage)
{
	for (const char *p = usage; (p = strstr(p, "--")) != NULL;) {
		size_t n = 2;
		while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '-')
			n++;
		/* Once each: a usage's prose may name a flag again. */
		bool seen = false;
		for (const char *q = usage; !seen && (q = strstr(q, "--")) != NULL && q < p; q += 2)
			seen = !strncmp(q, p, n) && !((q[n] >= 'a' && q[n] <= 'z') ||
						      (q[n] >= '0' && q[n] <= '9') || q[n] == '-');
		if (n > 2 && !seen)
			fprintf(ctx->out, "%.*s\n", (int)n, p);
		p += n;
	}
	return 0;
}

/* --- autoscaling policies ----------------------------------------------------- */

enum cli_as_kind { CLI_AS_INT, CLI_AS_SECONDS, CLI_AS_NUMBER };

/* The short keys, kubectl style, and the API's members they stand for. */
static const struct {
	const char *key, *member;
	enum cli_as_kind kind;
} cli_as_keys[] = {
	{"min", "min_replicas", CLI_AS_INT},
	{"max", "max_replicas", CLI_AS_INT},
	{"target-queue", "target_queue_depth", CLI_AS_NUMBER},
	{"target-tokens", "target_inflight_tokens", CLI_AS_NUMBER},
	{"target-ttft-ms", "target_ttft_p95_ms", CLI_AS_NUMBER},
	{"target-tps", "target_tokens_per_second", CLI_AS_NUMBER},
	{"window", "scale_down_window_s", CLI_AS_SECONDS},
	{"idle", "idle_s", CLI_AS_SECONDS},
};
#define CLI_AS_NKEYS (sizeof(cli_as_keys) / sizeof(cli_as_keys[0]))
#define CLI_AS_KEY_LIST                                                                      \
	"min, max, target-queue, target-tokens, target-ttft-ms, target-tps, window, idle"

/* typed[0..len) is name, '-' and '_' alike (target-queue-depth and
 * target_queue_depth both name the API's member). */
static bool cli_as_key_is(const char *typed, size_t len, const char *name)
{
	size_t i;
	for (i = 0; i < len && name[i]; i++) {
		char a = typed[i] == '-' ? '_' : typed[i], b = name[i] == '-' ? '_' : name[i];
		if (a != b)
			return false;
	}
	return i == len && name[i] == '\0';
}

/* A whole decimal integer, no space or sign games; for seconds a unit
 * s, m or h may follow. false when it is not one. */
static bool cli_as_integer(long long *out, const char *v, bool seconds)
{
	char *end;
	if (!((*v >= '0' && *v <= '9') || (*v == '-' && v[1] >= '0' && v[1] <= '9')))
		return false;
	errno = 0;
	*out = strtoll(v, &end, 10);
	if (errno)
		return false;
	if (*end == '\0')
		return true;
	if (!seconds || end[1] != '\0')
		return false;
	long long unit = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 0;
	if (!unit || *out > LLONG_MAX / unit || *out < LLONG_MIN / unit)
		return false;
	*out *= unit;
	return true;
}

json_t *cli_number_json(const char *text)
{
	char *end;
	double d;
	/* Not hex, nan or inf, which JSON cannot carry. */
	if (!*text || strpbrk(text, "xXnNiI") || isspace((unsigned char)*text))
		return NULL;
	errno = 0;
	d = strtod(text, &end);
	if (errno || *end != '\0' || !isfinite(d))
		return NULL;
	/* Integral values go as integers ("target_queue_depth": 4): what the
	 * docs show, and the server reads either. */
	if (d == floor(d) && fabs(d) < 9e15)
		return json_integer((json_int_t)d);
	return json_real(d);
}

int cli_autoscale_parse(json_t **out, const char *spec, struct nova_err *err)
{
	bool seen[CLI_AS_NKEYS] = {false};
	json_t *o;
	int rc = 0;
	*out = NULL;
	if (!strcmp(spec, "off")) {
		*out = json_null();
		return 0;
	}
	if (!*spec) {
		rc = nova_err_set(err, NOVA_EINVAL, "", "the policy is empty");
		nova_err_set_hint(err, "for example min=0,max=8,target-queue=4, or off");
		return rc;
	}
	o = json_object();
	for (const char *p = spec;; p++) {
		size_t len = strcspn(p, ","), klen = strcspn(p, "=");
		char val[64];
		/* The field is the key as typed: what the user finds on the
		 * command line. */
		char key[NOVA_ERR_FIELD_MAX];
		size_t k;
		snprintf(key, sizeof(key), "%.*s", (int)(klen < len ? klen : len), p);
		if (klen >= len) {
			rc = nova_err_set(err, NOVA_EINVAL, key, "\"%s\" is not key=value", key);
			nova_err_set_hint(err, "for example min=0,max=8,target-queue=4, or off");
			break;
		}
		for (k = 0; k < CLI_AS_NKEYS; k++)
			if (cli_as_key_is(p, klen, cli_as_keys[k].key) ||
			    cli_as_key_is(p, klen, cli_as_keys[k].member))
				break;
		if (k == CLI_AS_NKEYS) {
			rc = nova_err_set(err, NOVA_EINVAL, key, "unknown key \"%s\"", key);
			nova_err_set_hint(err, "the keys: " CLI_AS_KEY_LIST);
			break;
		}
		if (seen[k]) {
			if (!strcmp(key, cli_as_keys[k].member))
				rc = nova_err_set(err, NOVA_EINVAL, key, "%s is given more than once", key);
			else
				rc = nova_err_set(err, NOVA_EINVAL, key, "%s (%s) is given more than once",
						  key, cli_as_keys[k].member);
			break;
		}
		seen[k] = true;
		if (len - klen - 1 >= sizeof(val)) {
			rc = nova_err_set(err, NOVA_EINVAL, key, "%s: the value is too long", key);
			break;
		}
		snprintf(val, sizeof(val), "%.*s", (int)(len - klen - 1), p + klen + 1);
		long long i;
		json_t *v = NULL;
		switch (cli_as_keys[k].kind) {
		case CLI_AS_INT:
			if (cli_as_integer(&i, val, false))
				v = json_integer(i);
			else
				rc = nova_err_set(err, NOVA_EINVAL, key, "%s must be an integer, not \"%s\"",
						  key, val);
			break;
		case CLI_AS_SECONDS:
			if (cli_as_integer(&i, val, true))
				v = json_integer(i);
			else
				rc = nova_err_set(err, NOVA_EINVAL, key,
						  "%s must be whole seconds (300, or 90s, 5m, 1h), not \"%s\"",
						  key, val);
			break;
		case CLI_AS_NUMBER:
			if (!(v = cli_number_json(val)))
				rc = nova_err_set(err, NOVA_EINVAL, key, "%s must be a number, not \"%s\"", key,
						  val);
			break;
		}
		if (rc)
			break;
		json_object_set_new(o, cli_as_keys[k].member, v);
		p += len;
		if (*p == '\0')
			break;
	}
	if (rc) {
		json_decref(o);
		return rc;
	}
	*out = o;
	return 0;
}

/* A number as a person writes it: 4, 0.5, 2000000. */
static void cli_as_num(char *buf, size_t len, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%g", v);
}

const char *cli_autoscale_summary(char *buf, size_t len, const json_t *policy)
{
	static const struct {
		const char *member, *label, *unit;
	} targets[] = {
		{"target_queue_depth", "target queue depth", ""},
		{"target_inflight_tokens", "target in-flight tokens", ""},
		{"target_ttft_p95_ms", "target TTFT p95", "ms"},
		{"target_tokens_per_second", "target tokens/s", ""},
	};
	size_t used;
	int n;
	if (!json_is_object(policy)) {
		snprintf(buf, len, "off");
		return buf;
	}
	n = snprintf(buf, len, "min %lld, max %lld",
		     (long long)json_integer_value(json_object_get(policy, "min_replicas")),
		     (long long)json_integer_value(json_object_get(policy, "max_replicas")));
	used = n > 0 ? (size_t)n : 0;
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]) && used < len; i++) {
		const json_t *v = json_object_get(policy, targets[i].member);
		char num[64];
		if (!json_is_number(v))
			continue;
		cli_as_num(num, sizeof(num), json_number_value(v));
		n = snprintf(buf + used, len - used, ", %s %s%s", targets[i].label, num, targets[i].unit);
		used += n > 0 ? (size_t)n : 0;
	}
	const json_t *window = json_object_get(policy, "scale_down_window_s");
	long long idle = json_integer_value(json_object_get(policy, "idle_s"));
	if (used < len && json_is_integer(window)) {
		n = snprintf(buf + used, len - used, ", window %llds",
			     (long long)json_integer_value(window));
		used += n > 0 ? (size_t)n : 0;
	}
	/* idle_s 0 means never to zero for idleness: nothing to show. */
	if (used < len && idle > 0)
		snprintf(buf + used, len - used, ", idle %llds", idle);
	return buf;
}

const char *cli_autoscaler_summary(char *buf, size_t len, const json_t *autoscaler)
{
	const char *last = json_string_value(json_object_get(autoscaler, "last_decision"));
	const char *at = json_string_value(json_object_get(autoscaler, "decided_at"));
	const json_t *rec = json_object_get(autoscaler, "recommended");
	char recs[64] = "";
	if (!json_is_object(autoscaler)) {
		buf[0] = '\0';
		return buf;
	}
	if (json_is_integer(rec))
		snprintf(recs, sizeof(recs), "recommends %lld", (long long)json_integer_value(rec));
	if (last && *last)
		snprintf(buf, len, "%s (at %s%s%s)", last, at && *at ? at : "?", recs[0] ? "; " : "",
			 recs);
	else
		snprintf(buf, len, "no decision yet%s%s%s", recs[0] ? " (" : "", recs,
			 recs[0] ? ")" : "");
	return buf;
}

void cli_json_print(FILE *f, const json_t *v)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
	if (text) {
		fputs(text, f);
		fputc('\n', f);
		free(text);
	}
}

const char *cli_cell(char *buf, size_t len, const json_t *v)
{
	if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_object(v) || json_is_array(v)) {
		char *t = json_dumps(v, JSON_COMPACT);
		snprintf(buf, len, "%s", t ? t : "");
		free(t);
	} else
		buf[0] = '\0';
	return buf;
}

int cli_load_json_or_yaml(json_t **out, const char *path, struct nova_err *err)
{
	struct ydoc *d;
	int rc;
	*out = NULL;
	/* YAML 1.1 reads JSON documents too, with positions for errors. */
	if ((rc = ydoc_load_file(&d, path, err)))
		return rc;
	if (!ydoc_root(d))
		rc = nova_err_set(err, NOVA_EINVAL, "", "%s is empty", path);
	else
		rc = ydoc_to_json(out, d, ydoc_root(d), err);
	ydoc_destroy(d);
	return rc;
}

int cli_verb_dispatch(struct cli_ctx *ctx, const char *group, const char *group_usage,
		      const struct cli_verb *verbs, size_t n_verbs, const char *verb,
		      struct cli_args *a)
{
	if (ctx->complete) {
		for (size_t i = 0; verb && i < n_verbs; i++)
			if (!strcmp(verbs[i].verb, verb))
				return cli_complete_usage(ctx, verbs[i].usage);
		for (size_t i = 0; i < n_verbs; i++)
			fprintf(ctx->out, "%s\n", verbs[i].verb);
		return 0;
	}
	if (!verb)
		return cli_usage_error(ctx, group_usage, "%s needs a command", group);
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
		fprintf(ctx->out, "usage: %s\n", group_usage);
		return 0;
	}
	for (size_t i = 0; i < n_verbs; i++) {
		if (strcmp(verbs[i].verb, verb) != 0)
			continue;
		if (cli_args_wants_help(a)) {
			fprintf(ctx->out, "usage: %s\n", verbs[i].usage);
			return 0;
		}
		return verbs[i].fn(ctx, a);
	}
	return cli_usage_error(ctx, group_usage, "unknown command \"%s %s\"", group, verb);
}

/* --- selectors ------------------------------------------------------------------ */

int cli_selector_take(struct cli_selector *s, struct cli_args *a, struct cli_ctx *ctx,
		      const char *usage)
{
	const char *v;
	s->n = 0;
	for (int pass = 0; pass < 2; pass++) {
		const char *flag = pass ? "--selector" : "-l";
		while ((v = cli_arg_value_next(a, flag))) {
			const char *p = v;
			do {
				size_t len = strcspn(p, ","), klen = strcspn(p, "=");
				if (klen == 0 || klen >= len)
					return cli_usage_error(ctx, usage,
							       "%s must be key=value[,key=value], not \"%s\"",
							       flag, v);
				if (s->n == CLI_SELECTOR_MAX)
					return cli_usage_error(ctx, usage, "%s: at most %d pairs", flag,
							       CLI_SELECTOR_MAX);
				if (klen >= sizeof(s->key[0]) || len - klen - 1 >= sizeof(s->val[0]))
					return cli_usage_error(ctx, usage, "%s: \"%.*s\" is too long", flag,
							       (int)len, p);
				snprintf(s->key[s->n], sizeof(s->key[0]), "%.*s", (int)klen, p);
				snprintf(s->val[s->n], sizeof(s->val[0]), "%.*s", (int)(len - klen - 1),
					 p + klen + 1);
				s->n++;
				p += len;
			} while (*p++ == ',');
		}
	}
	return 0;
}

bool cli_selector_match(const struct cli_selector *s, const json_t *labels)
{
	for (size_t i = 0; i < s->n; i++) {
		const char *v = json_string_value(json_object_get(labels, s->key[i]));
		if (!v || strcmp(v, s->val[i]) != 0)
			return false;
	}
	return true;
}

/* --- get NAME... ------------------------------------------------------------------ */

int cli_get_each(struct cli_ctx *ctx, struct cli_args *a, const char *usage, const char *prefix,
		 cli_print_fn print)
{
	const char *names[CLI_ARGS_MAX];
	int n = 0, rc, first_rc = 0;
	while (n < CLI_ARGS_MAX && (names[n] = cli_arg_positional(a, n)))
		n++;
	if ((rc = cli_args_finish(a, ctx, usage)))
		return rc;
	if (n == 0)
		return cli_usage_error(ctx, usage, "NAME or ID is required");
	json_t *all = json_array();
	for (int i = 0; i < n; i++) {
		char esc[512], path[640];
		json_t *res = NULL;
		if (cli_path_escape(esc, sizeof(esc), names[i])) {
			fprintf(ctx->errout, "novactl: %.40s...: the name is too long\n", names[i]);
			rc = CLI_EXIT_USAGE;
		} else {
			snprintf(path, sizeof(path), "%s%s", prefix, esc);
			rc = cli_request(&res, ctx, "GET", path, NULL);
		}
		if (rc) {
			if (!first_rc)
				first_rc = rc;
			continue;
		}
		if (ctx->json) {
			json_array_append_new(all, res);
			continue;
		}
		if (json_array_size(all) || i > 0)
			fputc('\n', ctx->out);
		print(ctx, res);
		json_array_append_new(all, res);
	}
	if (ctx->json && json_array_size(all))
		cli_doc_print(ctx, n == 1 ? json_array_get(all, 0) : all);
	json_decref(all);
	return first_rc;
}

/* --- watching ------------------------------------------------------------------------ */

/* Lock-free (asserted), so the handler may set it: an _Atomic int rather
 * than sig_atomic_t, so a stream's cancel (core/http_client.h) can watch
 * it too. */
static _Atomic int cli_sigint;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the SIGINT flag must be lock-free");

static void cli_on_sigint(int sig)
{
	(void)sig;
	cli_sigint = 1;
}

void cli_watch_begin(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cli_on_sigint;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a sleep or a request in progress returns early. */
	sigaction(SIGINT, &sa, NULL);
}

bool cli_interrupted(void)
{
	return cli_sigint != 0;
}

const _Atomic int *cli_interrupt_flag(void)
{
	return &cli_sigint;
}

bool cli_watch_sleep(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (!cli_sigint && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return !cli_sigint;
}

bool cli_out_ok(struct cli_ctx *ctx)
{
	/* A pipe whose reader left polls POLLERR at once: a quiet watch piped
	 * into head ends without waiting for something to write. */
	struct pollfd p = {.fd = fileno(ctx->out), .events = 0};
	if (poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
		return false;
	return fflush(ctx->out) == 0 && !ferror(ctx->out);
}
