/* novactl internals: argument handling, table output, path escaping, and
 * where the server and token come from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "core/config.h"

static char *capture_table(const char *const *headers, size_t ncols, const char *const *cells,
			   size_t nrows)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cli_table_print(f, headers, ncols, cells, nrows);
	fclose(f);
	return buf;
}

static void test_table_aligns_columns_and_marks_empty_cells(void **state)
{
	static const char *const headers[] = {"NAME", "STATE", "NODES"};
	static const char *const cells[] = {"gpu-a", "active", "12", "b", NULL, ""};
	(void)state;
	char *out = capture_table(headers, 3, cells, 2);
	assert_string_equal(out, "NAME   STATE   NODES\n"
				 "gpu-a  active  12\n"
				 "b      -       -\n");
	free(out);
}

static void test_table_builder_fills_cells_and_cuts_long_text(void **state)
{
	static const char *const headers[] = {"NAME", "READY"};
	struct cli_table t;
	char long_name[400], *buf = NULL;
	size_t len = 0;
	json_t *name = json_string("pool-a");
	(void)state;
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(cli_table_init(&t, headers, 2, 2), 0);
	cli_table_json(&t, 0, 0, name);
	cli_table_fmt(&t, 0, 1, "%d/%d", 1, 3);
	cli_table_fmt(&t, 1, 0, "%s", long_name);
	/* Row 1, column 1 left unset: printed as "-". */
	assert_int_equal(strlen(t.cells[2]), CLI_CELL_MAX - 1);
	FILE *f = open_memstream(&buf, &len);
	struct cli_ctx ctx = {.out = f, .errout = stderr};
	cli_table_finish(&t, &ctx);
	fclose(f);
	assert_null(t.cells);
	assert_non_null(strstr(buf, "pool-a"));
	assert_non_null(strstr(buf, "1/3\n"));
	assert_non_null(strstr(buf, "  -\n"));
	free(buf);
	json_decref(name);
}

static void test_cell_renders_each_json_type(void **state)
{
	char buf[64];
	json_t *o = json_pack("{s:i}", "a", 1);
	(void)state;
	json_t *sv = json_string("x"), *i = json_integer(42), *r = json_real(1.5), *t = json_true(),
	       *n = json_null();
	assert_string_equal(cli_cell(buf, sizeof(buf), sv), "x");
	assert_string_equal(cli_cell(buf, sizeof(buf), i), "42");
	assert_string_equal(cli_cell(buf, sizeof(buf), r), "1.5");
	assert_string_equal(cli_cell(buf, sizeof(buf), t), "true");
	assert_string_equal(cli_cell(buf, sizeof(buf), n), "");
	assert_string_equal(cli_cell(buf, sizeof(buf), NULL), "");
	assert_string_equal(cli_cell(buf, sizeof(buf), o), "{\"a\":1}");
	json_decref(sv);
	json_decref(i);
	json_decref(r);
	json_decref(o);
}

static struct cli_ctx quiet_ctx(char **errbuf, size_t *errlen)
{
	struct cli_ctx ctx = {.out = stdout};
	ctx.errout = open_memstream(errbuf, errlen);
	return ctx;
}

static void test_args_flags_positionals_and_leftovers(void **state)
{
	char *argv[] = {"gpu-a", "--provider", "fake", "--label=a=1", "--label", "b=2", "--force"};
	struct cli_args a;
	char *err = NULL;
	size_t len = 0;
	struct cli_ctx ctx = quiet_ctx(&err, &len);
	(void)state;
	cli_args_init(&a, 7, argv);
	assert_string_equal(cli_arg_value(&a, "--provider"), "fake");
	assert_string_equal(cli_arg_value_next(&a, "--label"), "a=1");
	assert_string_equal(cli_arg_value_next(&a, "--label"), "b=2");
	assert_null(cli_arg_value_next(&a, "--label"));
	assert_string_equal(cli_arg_positional(&a, 0), "gpu-a");
	/* --force was not asked for: it is left over, a usage error. */
	assert_int_equal(cli_args_finish(&a, &ctx, "usage"), CLI_EXIT_USAGE);
	fflush(ctx.errout);
	assert_non_null(strstr(err, "unknown flag --force"));
	fclose(ctx.errout);
	free(err);
}

static void test_args_flag_without_value_is_usage_error(void **state)
{
	char *argv[] = {"x", "--replicas"};
	struct cli_args a;
	char *err = NULL;
	size_t len = 0;
	struct cli_ctx ctx = quiet_ctx(&err, &len);
	(void)state;
	cli_args_init(&a, 2, argv);
	assert_null(cli_arg_value(&a, "--replicas"));
	assert_int_equal(cli_args_finish(&a, &ctx, "usage"), CLI_EXIT_USAGE);
	fflush(ctx.errout);
	assert_non_null(strstr(err, "--replicas needs a value"));
	fclose(ctx.errout);
	free(err);
	char *help[] = {"--help"};
	cli_args_init(&a, 1, help);
	assert_true(cli_args_wants_help(&a));
}

static void test_path_escape(void **state)
{
	char buf[128];
	(void)state;
	cli_path_escape(buf, sizeof(buf), "a b/c'd");
	assert_string_equal(buf, "a%20b%2Fc%27d");
	cli_path_escape(buf, sizeof(buf), "llama-3:1.0_x~");
	assert_string_equal(buf, "llama-3%3A1.0_x~");
	cli_path_escape(buf, sizeof(buf), "\xc3\xa9");
	assert_string_equal(buf, "%C3%A9");
}

static char dir[] = "/tmp/nova-cli-XXXXXX";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int env_setup(void **state)
{
	char p[256];
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/nova", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/state", dir);
	mkdir(p, 0700);
	setenv("XDG_CONFIG_HOME", dir, 1);
	setenv("NOVA_STATE_DIR", p, 1);
	unsetenv("NOVA_SERVER");
	unsetenv("NOVA_TOKEN");
	return 0;
}

static int env_teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("NOVA_STATE_DIR");
	unsetenv("NOVA_SERVER");
	unsetenv("NOVA_TOKEN");
	strcpy(dir, "/tmp/nova-cli-XXXXXX");
	return system(cmd) == 0 ? 0 : -1;
}

static void test_config_precedence(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err;
	char p[256];
	(void)state;
	/* Nothing anywhere: the default server, no token. */
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, CFG_DEFAULT_SERVER);
	assert_string_equal(ctx.token, "");
	/* A local novad's state directory. */
	snprintf(p, sizeof(p), "%s/state/novad.url", dir);
	write_file(p, "http://127.0.0.1:9999\n");
	snprintf(p, sizeof(p), "%s/state/admin_token", dir);
	write_file(p, "  state-token \n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://127.0.0.1:9999");
	assert_string_equal(ctx.token, "state-token"); /* trimmed */
	/* The config file beats the state directory. */
	snprintf(p, sizeof(p), "%s/nova/config.yaml", dir);
	write_file(p, "server: http://file:1/\ntoken: file-token\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://file:1"); /* trailing slash trimmed */
	assert_string_equal(ctx.token, "file-token");
	/* The environment beats the file; flags beat everything. */
	setenv("NOVA_SERVER", "http://env:2", 1);
	setenv("NOVA_TOKEN", "env-token", 1);
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://env:2");
	assert_string_equal(ctx.token, "env-token");
	assert_int_equal(cli_config_resolve(&ctx, "http://flag:3", "flag-token", NULL, &err), 0);
	assert_string_equal(ctx.server, "http://flag:3");
	assert_string_equal(ctx.token, "flag-token");
}

static void test_config_file_errors_are_positioned(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err;
	char p[256];
	(void)state;
	snprintf(p, sizeof(p), "%s/nova/config.yaml", dir);
	write_file(p, "server: x\ntokn: y\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), NOVA_EINVAL);
	/* Positioned; the key itself is not echoed (core/ydoc.h). */
	assert_non_null(strstr(err.message, "config.yaml:2:1: unknown key"));
}

static void test_json_print_is_pretty_with_two_spaces(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *v = json_pack("{s:s, s:n, s:[i]}", "name", "gpu-a", "max_nodes", "types", 1);
	FILE *f = open_memstream(&buf, &len);
	(void)state;
	cli_json_print(f, v);
	fclose(f);
	assert_string_equal(buf, "{\n  \"name\": \"gpu-a\",\n  \"max_nodes\": null,\n  \"types\": [\n    1\n  ]\n}\n");
	free(buf);
	json_decref(v);
}

/* A JSON null from the server becomes "-" in a table, as an absent key does. */
static void test_table_shows_json_null_as_dash(void **state)
{
	static const char *const headers[] = {"ID", "LAST-USED", "REVOKED"};
	char b[3][64];
	json_t *k = json_pack("{s:s, s:n}", "id", "k1", "last_used_at");
	(void)state;
	const char *cells[] = {cli_cell(b[0], 64, json_object_get(k, "id")),
			       cli_cell(b[1], 64, json_object_get(k, "last_used_at")),
			       cli_cell(b[2], 64, json_object_get(k, "revoked_at"))};
	char *out = capture_table(headers, 3, cells, 1);
	assert_string_equal(out, "ID  LAST-USED  REVOKED\n"
				 "k1  -          -\n");
	free(out);
	json_decref(k);
}

/* Run a command group with argv after "GROUP VERB"; its stderr into *err
 * (caller frees), its stdout into *out when out is not NULL. */
static int run_group(char **out, char **err,
		     int (*fn)(struct cli_ctx *, const char *, struct cli_args *), const char *verb,
		     int argc, char **argv)
{
	size_t elen = 0, olen = 0;
	struct cli_args a;
	struct cli_ctx ctx = {.server = "http://127.0.0.1:1"};
	char *obuf = NULL;
	int rc;
	*err = NULL;
	ctx.errout = open_memstream(err, &elen);
	ctx.out = open_memstream(&obuf, &olen);
	cli_args_init(&a, argc, argv);
	rc = fn(&ctx, verb, &a);
	fclose(ctx.errout);
	fclose(ctx.out);
	if (out)
		*out = obuf;
	else
		free(obuf);
	return rc;
}

static void test_usage_errors_exit_2_with_message_and_usage(void **state)
{
	static const struct {
		const char *verb;
		int argc;
		char *argv[4];
		const char *want;
	} cases[] = {
		{"create", 1, {"gpu-a"}, "novactl: --provider is required"},
		{"create", 2, {"--provider", "fake"}, "novactl: NAME is required"},
		{"create", 4, {"x", "--provider", "a", "--provider=b"}, "novactl: --provider given more than once"},
		{"create", 4, {"x", "--provider", "fake", "--label"}, "novactl: --label needs a value"},
		{"create", 4, {"x", "--provider", "fake", "--label=novalue"}, "--label must be key=value"},
		{"create", 4, {"x", "--provider", "fake", "--config=[1]"}, "--config must be a JSON object"},
		{"create", 4, {"x", "--provider", "fake", "--max-nodes=-1"}, "--max-nodes must be a non-negative integer or none"},
		{"create", 4, {"x", "--provider", "fake", "--bogus"}, "novactl: unknown flag --bogus"},
		{"get", 0, {NULL}, "novactl: NAME or ID is required"},
		/* "get a b" is two names now (issue 19): a flag get lacks is the error. */
		{"get", 2, {"a", "--bogus"}, "novactl: unknown flag --bogus"},
		{"update", 1, {"a"}, "novactl: nothing to update"},
		{"update", 3, {"a", "--max-nodes", "lots"}, "--max-nodes must be a non-negative integer or none, not \"lots\""},
		{"frob", 0, {NULL}, "novactl: unknown command \"pool frob\""},
		{NULL, 0, {NULL}, "novactl: pool needs a command"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err;
		int rc = run_group(NULL, &err, cli_cmd_pool, cases[i].verb, cases[i].argc,
				   (char **)cases[i].argv);
		if (rc != CLI_EXIT_USAGE || !strstr(err, cases[i].want) || !strstr(err, "\nusage: novactl pool"))
			fail_msg("case %zu (%s): exit %d, stderr: %s", i, cases[i].want, rc, err);
		free(err);
	}
}

static void test_help_on_group_and_verb_goes_to_stdout(void **state)
{
	char *out, *err;
	char *help[] = {"--help"};
	char *verb_help[] = {"gpu-a", "-h"};
	(void)state;
	assert_int_equal(run_group(&out, &err, cli_cmd_pool, "--help", 0, help), 0);
	assert_non_null(strstr(out, "usage: novactl pool create|list|get|update|delete"));
	assert_string_equal(err, "");
	free(out);
	free(err);
	assert_int_equal(run_group(&out, &err, cli_cmd_apikey, "revoke", 2, verb_help), 0);
	assert_string_equal(out, "usage: novactl apikey revoke ID\n");
	assert_string_equal(err, "");
	free(out);
	free(err);
}

static void test_too_many_arguments_are_refused_not_dropped(void **state)
{
	char *argv[CLI_ARGS_MAX + 2];
	char *err;
	(void)state;
	argv[0] = "x";
	for (int i = 1; i < CLI_ARGS_MAX + 2; i++)
		argv[i] = i % 2 ? "--label" : "k=v";
	argv[CLI_ARGS_MAX + 1] = "--provider";
	assert_int_equal(run_group(NULL, &err, cli_cmd_pool, "create", CLI_ARGS_MAX + 2, argv),
			 CLI_EXIT_USAGE);
	assert_non_null(strstr(err, "too many arguments"));
	free(err);
}

static void test_path_escape_refuses_what_does_not_fit(void **state)
{
	char buf[8], *err;
	char longname[400];
	char *argv[] = {longname};
	(void)state;
	assert_int_equal(cli_path_escape(buf, sizeof(buf), "abcdefg"), 0);
	assert_string_equal(buf, "abcdefg");
	assert_int_equal(cli_path_escape(buf, sizeof(buf), "abcdefgh"), -1);
	assert_string_equal(buf, "");
	assert_int_equal(cli_path_escape(buf, sizeof(buf), "abcd/"), 0);
	assert_string_equal(buf, "abcd%2F");
	assert_int_equal(cli_path_escape(buf, sizeof(buf), "abcde/"), -1);
	memset(longname, '/', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(run_group(NULL, &err, cli_cmd_pool, "get", 1, argv), CLI_EXIT_USAGE);
	assert_non_null(strstr(err, "too long"));
	free(err);
}

static void test_config_file_yaml_becomes_json(void **state)
{
	char p[256];
	json_t *v;
	struct nova_err err;
	(void)state;
	snprintf(p, sizeof(p), "%s/pool.yaml", dir);
	write_file(p, "# a fake pool\n"
		      "mode: static\n"
		      "nodes: 2\n"
		      "memory_mib: -5\n"
		      "trust: true\n"
		      "off: false\n"
		      "zip: \"10\"\n"
		      "version: 1.5.2\n"
		      "racks:\n"
		      "  - c1r1\n"
		      "  - {name: c1r2, chips: 8}\n"
		      "empty: {}\n");
	assert_int_equal(cli_load_json_or_yaml(&v, p, &err), 0);
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"empty\":{},\"memory_mib\":-5,\"mode\":\"static\",\"nodes\":2,"
				  "\"off\":false,\"racks\":[\"c1r1\",{\"chips\":8,\"name\":\"c1r2\"}],"
				  "\"trust\":true,\"version\":\"1.5.2\",\"zip\":\"10\"}");
	free(text);
	json_decref(v);
}

static void test_config_file_json_is_read_as_is(void **state)
{
	char p[256];
	json_t *v;
	struct nova_err err;
	(void)state;
	snprintf(p, sizeof(p), "%s/pool.json", dir);
	write_file(p, "{\"nodes\": 3, \"labels\": {\"a\": \"x'; DROP TABLE pools; --\"}, \"l\": [true, null]}\n");
	assert_int_equal(cli_load_json_or_yaml(&v, p, &err), 0);
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"l\":[true,null],\"labels\":{\"a\":\"x'; DROP TABLE pools; --\"},\"nodes\":3}");
	free(text);
	json_decref(v);
}

static void test_config_file_errors_name_the_file_and_position(void **state)
{
	char p[256];
	json_t *v = NULL;
	struct nova_err err;
	(void)state;
	snprintf(p, sizeof(p), "%s/bad.yaml", dir);
	write_file(p, "mode: static\nracks: [c1r1\n");
	assert_int_equal(cli_load_json_or_yaml(&v, p, &err), NOVA_EINVAL);
	assert_null(v);
	assert_non_null(strstr(err.message, "bad.yaml:"));
	snprintf(p, sizeof(p), "%s/empty.yaml", dir);
	write_file(p, "");
	assert_int_equal(cli_load_json_or_yaml(&v, p, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "empty.yaml is empty"));
	snprintf(p, sizeof(p), "%s/missing.yaml", dir);
	assert_int_not_equal(cli_load_json_or_yaml(&v, p, &err), 0);
	assert_null(v);
}

/* The policy as compact JSON with sorted keys, or the error's field and
 * message as "!field: message". */
static char *autoscale_parse_text(const char *spec)
{
	struct nova_err err;
	json_t *j = NULL;
	char *out;
	nova_err_clear(&err);
	int rc = cli_autoscale_parse(&j, spec, &err);
	if (rc) {
		assert_int_equal(rc, NOVA_EINVAL);
		assert_null(j);
		size_t n = strlen(err.field) + strlen(err.message) + 4;
		out = malloc(n);
		snprintf(out, n, "!%s: %s", err.field, err.message);
		return out;
	}
	out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(j);
	return out;
}

#define assert_autoscale(spec, want)                                                          \
	do {                                                                                      \
		char *got_ = autoscale_parse_text(spec);                                          \
		assert_string_equal(got_, want);                                                  \
		free(got_);                                                                       \
	} while (0)

static void test_autoscale_short_keys_become_the_api_members(void **state)
{
	(void)state;
	assert_autoscale("min=0,max=8,target-queue=4",
			 "{\"max_replicas\":8,\"min_replicas\":0,\"target_queue_depth\":4}");
	assert_autoscale("max=3,target-tokens=2000,target-ttft-ms=450.5,target-tps=12.25,window=60,"
			 "idle=600",
			 "{\"idle_s\":600,\"max_replicas\":3,\"scale_down_window_s\":60,"
			 "\"target_inflight_tokens\":2000,\"target_tokens_per_second\":12.25,"
			 "\"target_ttft_p95_ms\":450.5}");
	/* Integers stay integers; a fraction is a real. */
	assert_autoscale("max=2,target-queue=0.5", "{\"max_replicas\":2,\"target_queue_depth\":0.5}");
	assert_autoscale("max=2,target-queue=1e3", "{\"max_replicas\":2,\"target_queue_depth\":1000}");
}

static void test_autoscale_takes_the_api_names_and_units(void **state)
{
	(void)state;
	/* Copied from the docs: the API's names, '-' or '_'. */
	assert_autoscale("min_replicas=1,max_replicas=4,target_queue_depth=2,scale_down_window_s=30",
			 "{\"max_replicas\":4,\"min_replicas\":1,\"scale_down_window_s\":30,"
			 "\"target_queue_depth\":2}");
	assert_autoscale("max-replicas=4,target-tokens-per-second=9",
			 "{\"max_replicas\":4,\"target_tokens_per_second\":9}");
	assert_autoscale("max=4,target-queue=2,window=5m,idle=1h",
			 "{\"idle_s\":3600,\"max_replicas\":4,\"scale_down_window_s\":300,"
			 "\"target_queue_depth\":2}");
	assert_autoscale("max=4,target-queue=2,window=90s",
			 "{\"max_replicas\":4,\"scale_down_window_s\":90,\"target_queue_depth\":2}");
	/* off is the API's null; bounds are the server's (it names
	 * autoscale.min_replicas), so min above max passes here. */
	assert_autoscale("off", "null");
	assert_autoscale("min=5,max=2", "{\"max_replicas\":2,\"min_replicas\":5}");
	assert_autoscale("min=-1,max=2", "{\"max_replicas\":2,\"min_replicas\":-1}");
}

static void test_autoscale_bad_syntax_names_the_key(void **state)
{
	(void)state;
	assert_autoscale("min=0,max", "!max: \"max\" is not key=value");
	assert_autoscale("min=0,,max=2", "!: \"\" is not key=value");
	assert_autoscale("min=0,", "!: \"\" is not key=value");
	assert_autoscale("", "!: the policy is empty");
	assert_autoscale("min=0,maxx=3", "!maxx: unknown key \"maxx\"");
	assert_autoscale("=3", "!: unknown key \"\"");
	assert_autoscale("min=zero", "!min: min must be an integer, not \"zero\"");
	assert_autoscale("max=2.5", "!max: max must be an integer, not \"2.5\"");
	assert_autoscale("max=", "!max: max must be an integer, not \"\"");
	assert_autoscale("max= 2", "!max: max must be an integer, not \" 2\"");
	assert_autoscale("max=99999999999999999999", "!max: max must be an integer, not "
						     "\"99999999999999999999\"");
	assert_autoscale("target-queue=four", "!target-queue: target-queue must be a number, not \"four\"");
	assert_autoscale("target-queue=nan", "!target-queue: target-queue must be a number, not \"nan\"");
	assert_autoscale("target-queue=inf", "!target-queue: target-queue must be a number, not \"inf\"");
	assert_autoscale("target-queue=0x10", "!target-queue: target-queue must be a number, not \"0x10\"");
	assert_autoscale("target-queue=1e999", "!target-queue: target-queue must be a number, not "
					       "\"1e999\"");
	assert_autoscale("window=5d", "!window: window must be whole seconds (300, or 90s, 5m, 1h), "
				      "not \"5d\"");
	assert_autoscale("idle=1hh", "!idle: idle must be whole seconds (300, or 90s, 5m, 1h), "
				     "not \"1hh\"");
	assert_autoscale("min=1,min_replicas=2",
			 "!min_replicas: min_replicas is given more than once");
	assert_autoscale("max=1,max=1", "!max: max (max_replicas) is given more than once");
	char long_value[200];
	snprintf(long_value, sizeof(long_value), "max=%0150d", 1);
	assert_autoscale(long_value, "!max: max: the value is too long");
}

static char *autoscale_summary_of(const char *text)
{
	char buf[256];
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	cli_autoscale_summary(buf, sizeof(buf), j);
	json_decref(j);
	return strdup(buf);
}

static void test_autoscale_summary_is_one_line(void **state)
{
	(void)state;
	char *s = autoscale_summary_of("{\"min_replicas\":0,\"max_replicas\":8,\"scale_down_window_s\":300,"
				       "\"idle_s\":600,\"target_queue_depth\":4.0}");
	assert_string_equal(s, "min 0, max 8, target queue depth 4, window 300s, idle 600s");
	free(s);
	s = autoscale_summary_of("{\"min_replicas\":1,\"max_replicas\":3,\"scale_down_window_s\":60,"
				 "\"idle_s\":0,\"target_inflight_tokens\":2000.0,"
				 "\"target_ttft_p95_ms\":450.5,\"target_tokens_per_second\":12.0}");
	assert_string_equal(s, "min 1, max 3, target in-flight tokens 2000, target TTFT p95 450.5ms, "
			       "target tokens/s 12, window 60s");
	free(s);
	s = autoscale_summary_of("null");
	assert_string_equal(s, "off");
	free(s);
	char buf[256];
	assert_string_equal(cli_autoscale_summary(buf, sizeof(buf), NULL), "off");
	/* The autoscaler's line: its last decision and when, or none yet. */
	json_t *a = json_pack("{s:i, s:s, s:s}", "recommended", 3, "last_decision",
			      "scaled 0 -> 3: 5 requests waiting", "decided_at", "2026-12-07T17:00:00Z");
	assert_string_equal(cli_autoscaler_summary(buf, sizeof(buf), a),
			    "scaled 0 -> 3: 5 requests waiting (at 2026-12-07T17:00:00Z; recommends 3)");
	json_decref(a);
	a = json_pack("{s:n, s:n, s:n}", "recommended", "last_decision", "decided_at");
	assert_string_equal(cli_autoscaler_summary(buf, sizeof(buf), a), "no decision yet");
	json_decref(a);
	assert_string_equal(cli_autoscaler_summary(buf, sizeof(buf), NULL), "");
	/* Cut, never overrun, in a small buffer. */
	char small[16];
	a = json_loads("{\"min_replicas\":10,\"max_replicas\":800,\"scale_down_window_s\":300,"
		       "\"target_queue_depth\":4}", 0, NULL);
	assert_string_equal(cli_autoscale_summary(small, sizeof(small), a), "min 10, max 800");
	json_decref(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_aligns_columns_and_marks_empty_cells),
		cmocka_unit_test(test_table_builder_fills_cells_and_cuts_long_text),
		cmocka_unit_test(test_cell_renders_each_json_type),
		cmocka_unit_test(test_args_flags_positionals_and_leftovers),
		cmocka_unit_test(test_args_flag_without_value_is_usage_error),
		cmocka_unit_test(test_path_escape),
		cmocka_unit_test(test_json_print_is_pretty_with_two_spaces),
		cmocka_unit_test(test_table_shows_json_null_as_dash),
		cmocka_unit_test(test_usage_errors_exit_2_with_message_and_usage),
		cmocka_unit_test(test_help_on_group_and_verb_goes_to_stdout),
		cmocka_unit_test(test_too_many_arguments_are_refused_not_dropped),
		cmocka_unit_test(test_path_escape_refuses_what_does_not_fit),
		cmocka_unit_test(test_autoscale_short_keys_become_the_api_members),
		cmocka_unit_test(test_autoscale_takes_the_api_names_and_units),
		cmocka_unit_test(test_autoscale_bad_syntax_names_the_key),
		cmocka_unit_test(test_autoscale_summary_is_one_line),
		cmocka_unit_test_setup_teardown(test_config_file_yaml_becomes_json, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_config_file_json_is_read_as_is, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_config_file_errors_name_the_file_and_position, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_config_precedence, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_config_file_errors_are_positioned, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
