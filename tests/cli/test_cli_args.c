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
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, CFG_DEFAULT_SERVER);
	assert_string_equal(ctx.token, "");
	/* A local novad's state directory. */
	snprintf(p, sizeof(p), "%s/state/novad.url", dir);
	write_file(p, "http://127.0.0.1:9999\n");
	snprintf(p, sizeof(p), "%s/state/admin_token", dir);
	write_file(p, "state-token\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://127.0.0.1:9999");
	assert_string_equal(ctx.token, "state-token");
	/* The config file beats the state directory. */
	snprintf(p, sizeof(p), "%s/nova/config.yaml", dir);
	write_file(p, "server: http://file:1/\ntoken: file-token\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://file:1"); /* trailing slash trimmed */
	assert_string_equal(ctx.token, "file-token");
	/* The environment beats the file; flags beat everything. */
	setenv("NOVA_SERVER", "http://env:2", 1);
	setenv("NOVA_TOKEN", "env-token", 1);
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://env:2");
	assert_string_equal(ctx.token, "env-token");
	assert_int_equal(cli_config_resolve(&ctx, "http://flag:3", "flag-token", &err), 0);
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
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "config.yaml:2:1: tokn: unknown key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_aligns_columns_and_marks_empty_cells),
		cmocka_unit_test(test_cell_renders_each_json_type),
		cmocka_unit_test(test_args_flags_positionals_and_leftovers),
		cmocka_unit_test(test_args_flag_without_value_is_usage_error),
		cmocka_unit_test(test_path_escape),
		cmocka_unit_test_setup_teardown(test_config_precedence, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_config_file_errors_are_positioned, env_setup, env_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
