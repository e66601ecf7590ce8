/* novactl's building blocks, one behaviour per test: table output and
 * table cells, argument handling (flags, --flag=value, repeatable flags,
 * positionals, usage errors), path escaping, and where the server and the
 * token come from (flag > environment > config file > a local novad's state
 * directory > the default), with temp directories standing in for
 * $XDG_CONFIG_HOME and $NOVA_STATE_DIR. */
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

/* ---- table output -------------------------------------------------------- */

static char *table(const char *const *headers, size_t ncols, const char *const *cells,
		   size_t nrows)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	cli_table_print(f, headers, ncols, cells, nrows);
	fclose(f);
	return buf;
}

static void test_table_pads_columns_to_the_widest_cell_or_header(void **state)
{
	static const char *const headers[] = {"NAME", "PROVIDER", "NODES"};
	static const char *const cells[] = {
		"gpu-pool-long", "k8s", "3",
		"a", "fake", "12",
	};
	(void)state;
	char *out = table(headers, 3, cells, 2);
	assert_string_equal(out, "NAME           PROVIDER  NODES\n"
				 "gpu-pool-long  k8s       3\n"
				 "a              fake      12\n");
	free(out);
}

static void test_table_last_column_is_never_padded(void **state)
{
	static const char *const headers[] = {"ID", "DESCRIPTION"};
	static const char *const cells[] = {
		"1", "a much longer description",
		"2", "x",
	};
	(void)state;
	char *out = table(headers, 2, cells, 2);
	assert_string_equal(out, "ID  DESCRIPTION\n"
				 "1   a much longer description\n"
				 "2   x\n");
	/* No line ends in white space. */
	for (size_t i = 1; out[i]; i++)
		if (out[i] == '\n')
			assert_true(out[i - 1] != ' ');
	free(out);
}

static void test_table_prints_dash_for_null_and_empty_cells(void **state)
{
	static const char *const headers[] = {"A", "B", "C"};
	static const char *const cells[] = {
		NULL, "", "x",
		"y", NULL, "",
	};
	(void)state;
	char *out = table(headers, 3, cells, 2);
	assert_string_equal(out, "A  B  C\n"
				 "-  -  x\n"
				 "y  -  -\n");
	free(out);
}

static void test_table_without_rows_prints_the_header_line_only(void **state)
{
	static const char *const headers[] = {"NAME", "STATE"};
	(void)state;
	char *out = table(headers, 2, NULL, 0);
	assert_string_equal(out, "NAME  STATE\n");
	free(out);
}

/* ---- table cells --------------------------------------------------------- */

static void test_cell_string_is_printed_as_is(void **state)
{
	char buf[64];
	json_t *v = json_string("gpu-a \"quoted\"");
	(void)state;
	assert_string_equal(cli_cell(buf, sizeof(buf), v), "gpu-a \"quoted\"");
	json_decref(v);
}

static void test_cell_integer_is_printed_in_decimal(void **state)
{
	char buf[64];
	json_t *neg = json_integer(-42), *big = json_integer(9007199254740993LL);
	(void)state;
	assert_string_equal(cli_cell(buf, sizeof(buf), neg), "-42");
	assert_string_equal(cli_cell(buf, sizeof(buf), big), "9007199254740993");
	json_decref(neg);
	json_decref(big);
}

static void test_cell_real_is_printed_shortest(void **state)
{
	char buf[64];
	json_t *a = json_real(1.5), *b = json_real(0.25), *c = json_real(2.0);
	(void)state;
	assert_string_equal(cli_cell(buf, sizeof(buf), a), "1.5");
	assert_string_equal(cli_cell(buf, sizeof(buf), b), "0.25");
	assert_string_equal(cli_cell(buf, sizeof(buf), c), "2");
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void test_cell_bool_is_true_or_false(void **state)
{
	char buf[64];
	(void)state;
	assert_string_equal(cli_cell(buf, sizeof(buf), json_true()), "true");
	assert_string_equal(cli_cell(buf, sizeof(buf), json_false()), "false");
}

static void test_name_output_is_kind_slash_name_and_a_routes_key(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	(void)state;
	FILE *f = open_memstream(&buf, &len);
	struct cli_ctx ctx = {.out = f, .errout = stderr, .output = CLI_OUTPUT_NAME, .kind = "pool"};
	json_t *pools = json_loads("[{\"name\":\"a\",\"id\":\"1\"},{\"id\":\"2\"}]", 0, NULL);
	cli_doc_print(&ctx, pools);
	ctx.kind = "route";
	json_t *routes = json_loads("{\"version\":3,\"routes\":[{\"model\":\"m\",\"adapter\":null},"
				    "{\"model\":\"m\",\"adapter\":\"sql\"}]}", 0, NULL);
	cli_doc_print(&ctx, routes);
	fclose(f);
	assert_string_equal(buf, "pool/a\npool/2\nroute/m\nroute/m/sql\n");
	free(buf);
	json_decref(pools);
	json_decref(routes);
}

static void test_cell_null_and_absent_are_empty(void **state)
{
	char buf[64];
	json_t *o = json_pack("{s:n}", "revoked_at");
	(void)state;
	strcpy(buf, "stale");
	assert_string_equal(cli_cell(buf, sizeof(buf), json_object_get(o, "revoked_at")), "");
	strcpy(buf, "stale");
	assert_string_equal(cli_cell(buf, sizeof(buf), json_object_get(o, "missing")), "");
	json_decref(o);
}

static void test_cell_object_and_array_are_compact_json(void **state)
{
	char buf[64];
	json_t *o = json_pack("{s:s}", "zone", "a");
	json_t *a = json_pack("[i,s]", 1, "x");
	(void)state;
	assert_string_equal(cli_cell(buf, sizeof(buf), o), "{\"zone\":\"a\"}");
	assert_string_equal(cli_cell(buf, sizeof(buf), a), "[1,\"x\"]");
	json_decref(o);
	json_decref(a);
}

static void test_cell_longer_than_buffer_is_truncated_not_overflowed(void **state)
{
	char buf[8];
	json_t *v = json_string("abcdefghijkl");
	(void)state;
	assert_string_equal(cli_cell(buf, sizeof(buf), v), "abcdefg");
	json_decref(v);
}

/* ---- arguments ----------------------------------------------------------- */

struct errcap {
	struct cli_ctx ctx;
	char *text;
	size_t len;
};

static void errcap_open(struct errcap *c)
{
	memset(c, 0, sizeof(*c));
	c->ctx.out = stdout;
	c->ctx.errout = open_memstream(&c->text, &c->len);
	assert_non_null(c->ctx.errout);
}

/* Close the stream; c->text holds what was written (caller frees). */
static void errcap_close(struct errcap *c)
{
	fclose(c->ctx.errout);
	c->ctx.errout = NULL;
}

static void test_args_positional_is_found_after_flags_are_consumed(void **state)
{
	char *argv[] = {"--provider", "fake", "gpu-a", "--max-nodes", "3"};
	struct cli_args a;
	struct errcap e;
	(void)state;
	errcap_open(&e);
	cli_args_init(&a, 5, argv);
	assert_string_equal(cli_arg_value(&a, "--provider"), "fake");
	assert_string_equal(cli_arg_value(&a, "--max-nodes"), "3");
	/* "fake" and "3" are flag values, not positionals. */
	assert_string_equal(cli_arg_positional(&a, 0), "gpu-a");
	assert_null(cli_arg_positional(&a, 1));
	assert_int_equal(cli_args_finish(&a, &e.ctx, "usage"), 0);
	errcap_close(&e);
	assert_string_equal(e.text, "");
	free(e.text);
}

static void test_args_equals_form_gives_the_value(void **state)
{
	char *argv[] = {"--provider=fake", "--label=zone=a", "--description="};
	struct cli_args a;
	struct errcap e;
	(void)state;
	errcap_open(&e);
	cli_args_init(&a, 3, argv);
	assert_string_equal(cli_arg_value(&a, "--provider"), "fake");
	assert_string_equal(cli_arg_value(&a, "--label"), "zone=a"); /* split at the first '=' */
	assert_string_equal(cli_arg_value(&a, "--description"), "");
	assert_int_equal(cli_args_finish(&a, &e.ctx, "usage"), 0);
	errcap_close(&e);
	free(e.text);
}

static void test_args_flag_missing_its_value_makes_finish_return_2(void **state)
{
	char *argv[] = {"gpu-a", "--provider"};
	struct cli_args a;
	struct errcap e;
	(void)state;
	errcap_open(&e);
	cli_args_init(&a, 2, argv);
	assert_null(cli_arg_value(&a, "--provider"));
	assert_string_equal(cli_arg_positional(&a, 0), "gpu-a");
	assert_int_equal(cli_args_finish(&a, &e.ctx, "novactl pool create NAME"), CLI_EXIT_USAGE);
	errcap_close(&e);
	assert_non_null(strstr(e.text, "novactl: --provider needs a value\n"));
	assert_non_null(strstr(e.text, "usage: novactl pool create NAME\n"));
	free(e.text);
}

static void test_args_unknown_flag_makes_finish_return_2(void **state)
{
	char *argv[] = {"gpu-a", "--provider", "fake", "--bogus"};
	struct cli_args a;
	struct errcap e;
	(void)state;
	errcap_open(&e);
	cli_args_init(&a, 4, argv);
	assert_string_equal(cli_arg_value(&a, "--provider"), "fake");
	assert_string_equal(cli_arg_positional(&a, 0), "gpu-a");
	assert_int_equal(cli_args_finish(&a, &e.ctx, "usage"), CLI_EXIT_USAGE);
	errcap_close(&e);
	assert_non_null(strstr(e.text, "unknown flag --bogus"));
	free(e.text);
}

static void test_args_leftover_positional_makes_finish_return_2(void **state)
{
	char *argv[] = {"gpu-a", "extra"};
	struct cli_args a;
	struct errcap e;
	(void)state;
	errcap_open(&e);
	cli_args_init(&a, 2, argv);
	assert_string_equal(cli_arg_positional(&a, 0), "gpu-a");
	assert_int_equal(cli_args_finish(&a, &e.ctx, "usage"), CLI_EXIT_USAGE);
	errcap_close(&e);
	assert_non_null(strstr(e.text, "unexpected argument extra"));
	free(e.text);
}

static void test_args_repeatable_flag_yields_every_value_in_order(void **state)
{
	char *argv[] = {"--label", "a=1", "gpu-a", "--label=b=2", "--label", "c=3"};
	struct cli_args a;
	struct errcap e;
	(void)state;
	errcap_open(&e);
	cli_args_init(&a, 6, argv);
	assert_string_equal(cli_arg_value_next(&a, "--label"), "a=1");
	assert_string_equal(cli_arg_value_next(&a, "--label"), "b=2");
	assert_string_equal(cli_arg_value_next(&a, "--label"), "c=3");
	assert_null(cli_arg_value_next(&a, "--label"));
	assert_string_equal(cli_arg_positional(&a, 0), "gpu-a");
	assert_int_equal(cli_args_finish(&a, &e.ctx, "usage"), 0);
	errcap_close(&e);
	free(e.text);
}

static void test_args_flag_does_not_match_a_longer_flag_it_prefixes(void **state)
{
	char *argv[] = {"--labels", "x", "--label-selector=y"};
	struct cli_args a;
	struct errcap e;
	(void)state;
	errcap_open(&e);
	cli_args_init(&a, 3, argv);
	assert_null(cli_arg_value(&a, "--label"));
	assert_false(cli_arg_flag(&a, "--label"));
	assert_int_equal(cli_args_finish(&a, &e.ctx, "usage"), CLI_EXIT_USAGE);
	errcap_close(&e);
	assert_non_null(strstr(e.text, "unknown flag --labels"));
	free(e.text);
}

static void test_args_boolean_flag_is_seen_once_and_absent_is_false(void **state)
{
	char *argv[] = {"gpu-a", "--force"};
	struct cli_args a;
	struct errcap e;
	(void)state;
	errcap_open(&e);
	cli_args_init(&a, 2, argv);
	assert_true(cli_arg_flag(&a, "--force"));
	assert_false(cli_arg_flag(&a, "--wait"));
	assert_string_equal(cli_arg_positional(&a, 0), "gpu-a");
	assert_int_equal(cli_args_finish(&a, &e.ctx, "usage"), 0);
	errcap_close(&e);
	free(e.text);
}

/* KNOWN BUG (disabled): cli_arg_positional (cli/cli.c) counts only the
 * positionals not yet used, while cli.h promises "the i-th positional". Once
 * positional 0 has been taken (and marked used), index 1 skips it and returns
 * the THIRD positional ("c" below), and positional 2 returns NULL. No
 * command asks for index 1 today (they all take index 0), so nothing breaks
 * yet; the first two-positional command would read the wrong word. Re-enable
 * by setting CLI_POSITIONAL_INDEX_IS_STABLE to 1 once the index counts used
 * positionals too (or the contract is changed to "the next positional"). */
#define CLI_POSITIONAL_INDEX_IS_STABLE 1

static void test_args_positional_index_does_not_shift_after_taking_one(void **state)
{
	char *argv[] = {"a", "b", "c"};
	struct cli_args a;
	(void)state;
	if (!CLI_POSITIONAL_INDEX_IS_STABLE)
		skip();
	cli_args_init(&a, 3, argv);
	assert_string_equal(cli_arg_positional(&a, 0), "a");
	assert_string_equal(cli_arg_positional(&a, 1), "b");
	assert_string_equal(cli_arg_positional(&a, 2), "c");
}

/* ---- path escaping ------------------------------------------------------- */

static void test_path_escape_encodes_space_as_percent_20(void **state)
{
	char buf[64];
	(void)state;
	assert_int_equal(cli_path_escape(buf, sizeof(buf), "gpu pool a"), 0);
	assert_string_equal(buf, "gpu%20pool%20a");
}

static void test_path_escape_encodes_slash_so_it_stays_one_segment(void **state)
{
	char buf[64];
	(void)state;
	assert_int_equal(cli_path_escape(buf, sizeof(buf), "meta-llama/Llama-3"), 0);
	assert_string_equal(buf, "meta-llama%2FLlama-3");
}

static void test_path_escape_encodes_quotes_and_reserved_characters(void **state)
{
	char buf[128];
	(void)state;
	assert_int_equal(cli_path_escape(buf, sizeof(buf), "a\"b'c?d#e%f&g+h"), 0);
	assert_string_equal(buf, "a%22b%27c%3Fd%23e%25f%26g%2Bh");
}

static void test_path_escape_encodes_each_utf8_byte(void **state)
{
	char buf[64];
	(void)state;
	assert_int_equal(cli_path_escape(buf, sizeof(buf), "caf\xc3\xa9-\xe6\x97\xa5"), 0);
	assert_string_equal(buf, "caf%C3%A9-%E6%97%A5");
}

static void test_path_escape_keeps_unreserved_characters(void **state)
{
	char buf[128];
	const char *plain = "AZaz09-_.~";
	(void)state;
	assert_int_equal(cli_path_escape(buf, sizeof(buf), plain), 0);
	assert_string_equal(buf, plain);
	assert_int_equal(cli_path_escape(buf, sizeof(buf), ""), 0);
	assert_string_equal(buf, "");
}

static void test_path_escape_exact_fit_succeeds_and_one_less_fails(void **state)
{
	char buf[16];
	(void)state;
	/* "a b" -> "a%20b": 5 bytes and the NUL. */
	assert_int_equal(cli_path_escape(buf, 6, "a b"), 0);
	assert_string_equal(buf, "a%20b");
	assert_int_equal(cli_path_escape(buf, 5, "a b"), -1);
	assert_string_equal(buf, "");
}

/* ---- where the server and token come from -------------------------------- */

static char tmpdir[64];
static char *saved_home;
static char cfg_path[128], url_path[128], token_path[128];

static void mkdir_p(const char *path)
{
	assert_true(mkdir(path, 0700) == 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int env_setup(void **state)
{
	char p[128];
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/nova-cli-out-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(p, sizeof(p), "%s/xdg", tmpdir);
	mkdir_p(p);
	setenv("XDG_CONFIG_HOME", p, 1);
	snprintf(p, sizeof(p), "%s/xdg/nova", tmpdir);
	mkdir_p(p);
	snprintf(p, sizeof(p), "%s/state", tmpdir);
	mkdir_p(p);
	setenv("NOVA_STATE_DIR", p, 1);
	free(saved_home);
	saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", tmpdir, 1); /* nothing of the real home is read */
	unsetenv("NOVA_SERVER");
	unsetenv("NOVA_TOKEN");
	snprintf(cfg_path, sizeof(cfg_path), "%s/xdg/nova/config.yaml", tmpdir);
	snprintf(url_path, sizeof(url_path), "%s/state/novad.url", tmpdir);
	snprintf(token_path, sizeof(token_path), "%s/state/%s", tmpdir, CFG_ADMIN_TOKEN_FILE);
	return 0;
}

static int env_teardown(void **state)
{
	char cmd[160];
	(void)state;
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("NOVA_STATE_DIR");
	unsetenv("NOVA_SERVER");
	unsetenv("NOVA_TOKEN");
	if (saved_home)
		setenv("HOME", saved_home, 1);
	else
		unsetenv("HOME");
	free(saved_home);
	saved_home = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The sources, from weakest to strongest. Each test switches on every
 * source up to one level and checks that level wins. */
enum source { SRC_DEFAULT, SRC_STATE, SRC_FILE, SRC_ENV, SRC_FLAG };

static void resolve_with(struct cli_ctx *ctx, enum source upto)
{
	struct nova_err err = {0};
	memset(ctx, 0, sizeof(*ctx));
	if (upto >= SRC_STATE) {
		write_file(url_path, "http://state:1\n");
		write_file(token_path, "state-token\n");
	}
	if (upto >= SRC_FILE)
		write_file(cfg_path, "server: http://file:2\ntoken: file-token\n");
	if (upto >= SRC_ENV) {
		setenv("NOVA_SERVER", "http://env:3", 1);
		setenv("NOVA_TOKEN", "env-token", 1);
	}
	int rc = upto >= SRC_FLAG ? cli_config_resolve(ctx, "http://flag:4", "flag-token", NULL, &err)
				  : cli_config_resolve(ctx, NULL, NULL, NULL, &err);
	if (rc != 0)
		fail_msg("cli_config_resolve: %d %s", rc, err.message);
}

static void test_config_server_is_the_default_when_nothing_is_set(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_DEFAULT);
	assert_string_equal(ctx.server, CFG_DEFAULT_SERVER);
}

static void test_config_server_comes_from_state_dir_novad_url(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_STATE);
	assert_string_equal(ctx.server, "http://state:1");
}

static void test_config_server_from_config_file_beats_state_dir(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_FILE);
	assert_string_equal(ctx.server, "http://file:2");
}

static void test_config_server_from_env_beats_config_file(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_ENV);
	assert_string_equal(ctx.server, "http://env:3");
}

static void test_config_server_from_flag_beats_env(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_FLAG);
	assert_string_equal(ctx.server, "http://flag:4");
}

static void test_config_token_is_empty_when_nothing_is_set(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_DEFAULT);
	assert_string_equal(ctx.token, "");
}

static void test_config_token_comes_from_state_dir_admin_token(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_STATE);
	assert_string_equal(ctx.token, "state-token");
}

static void test_config_token_from_config_file_beats_state_dir(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_FILE);
	assert_string_equal(ctx.token, "file-token");
}

static void test_config_token_from_env_beats_config_file(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_ENV);
	assert_string_equal(ctx.token, "env-token");
}

static void test_config_token_from_flag_beats_env(void **state)
{
	struct cli_ctx ctx;
	(void)state;
	resolve_with(&ctx, SRC_FLAG);
	assert_string_equal(ctx.token, "flag-token");
}

static void test_config_empty_env_values_fall_through_to_the_file(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err = {0};
	(void)state;
	write_file(cfg_path, "server: http://file:2\ntoken: file-token\n");
	setenv("NOVA_SERVER", "", 1);
	setenv("NOVA_TOKEN", "", 1);
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://file:2");
	assert_string_equal(ctx.token, "file-token");
}

static void test_config_server_and_token_may_come_from_different_sources(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err = {0};
	(void)state;
	write_file(token_path, "state-token\n");
	write_file(cfg_path, "server: http://file:2\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://file:2");
	assert_string_equal(ctx.token, "state-token");
}

static void test_config_file_unknown_key_is_an_error_at_line_1_column_1(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err = {0};
	(void)state;
	write_file(cfg_path, "sever: http://typo:1\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "config.yaml:1:1"));
	assert_non_null(strstr(err.message, "unknown key"));
	assert_null(strstr(err.message, "typo")); /* the file's text is not echoed */
}

static void test_config_empty_file_is_not_an_error(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err = {0};
	(void)state;
	write_file(cfg_path, "");
	write_file(url_path, "http://state:1\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://state:1");
}

static void test_config_trailing_slashes_are_trimmed_from_every_source(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err = {0};
	(void)state;
	write_file(url_path, "http://state:1///\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://state:1");
	write_file(cfg_path, "server: http://file:2/\n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://file:2");
	setenv("NOVA_SERVER", "http://env:3//", 1);
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://env:3");
	assert_int_equal(cli_config_resolve(&ctx, "http://flag:4/", NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://flag:4");
	/* Only trailing ones: a path prefix keeps its inner slashes. */
	assert_int_equal(cli_config_resolve(&ctx, "http://gw:5/nova/", NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://gw:5/nova");
}

static void test_config_state_files_are_read_without_surrounding_blanks(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err = {0};
	(void)state;
	write_file(url_path, "  http://state:1 \r\nsecond line\n");
	write_file(token_path, "\tstate-token  \n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, "http://state:1");
	assert_string_equal(ctx.token, "state-token");
}

static void test_config_blank_state_files_fall_through_to_the_default(void **state)
{
	struct cli_ctx ctx = {0};
	struct nova_err err = {0};
	(void)state;
	write_file(url_path, "\n");
	write_file(token_path, "   \n");
	assert_int_equal(cli_config_resolve(&ctx, NULL, NULL, NULL, &err), 0);
	assert_string_equal(ctx.server, CFG_DEFAULT_SERVER);
	assert_string_equal(ctx.token, "");
}

static void test_config_path_is_under_xdg_config_home_else_home(void **state)
{
	char want[160], got[256];
	(void)state;
	cli_config_path(got, sizeof(got));
	assert_string_equal(got, cfg_path);
	unsetenv("XDG_CONFIG_HOME");
	cli_config_path(got, sizeof(got));
	snprintf(want, sizeof(want), "%s/.config/nova/config.yaml", tmpdir);
	assert_string_equal(got, want);
}

#define ENV_TEST(t) cmocka_unit_test_setup_teardown(t, env_setup, env_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_pads_columns_to_the_widest_cell_or_header),
		cmocka_unit_test(test_table_last_column_is_never_padded),
		cmocka_unit_test(test_table_prints_dash_for_null_and_empty_cells),
		cmocka_unit_test(test_table_without_rows_prints_the_header_line_only),
		cmocka_unit_test(test_cell_string_is_printed_as_is),
		cmocka_unit_test(test_cell_integer_is_printed_in_decimal),
		cmocka_unit_test(test_cell_real_is_printed_shortest),
		cmocka_unit_test(test_cell_bool_is_true_or_false),
		cmocka_unit_test(test_name_output_is_kind_slash_name_and_a_routes_key),
		cmocka_unit_test(test_cell_null_and_absent_are_empty),
		cmocka_unit_test(test_cell_object_and_array_are_compact_json),
		cmocka_unit_test(test_cell_longer_than_buffer_is_truncated_not_overflowed),
		cmocka_unit_test(test_args_positional_is_found_after_flags_are_consumed),
		cmocka_unit_test(test_args_equals_form_gives_the_value),
		cmocka_unit_test(test_args_flag_missing_its_value_makes_finish_return_2),
		cmocka_unit_test(test_args_unknown_flag_makes_finish_return_2),
		cmocka_unit_test(test_args_leftover_positional_makes_finish_return_2),
		cmocka_unit_test(test_args_repeatable_flag_yields_every_value_in_order),
		cmocka_unit_test(test_args_flag_does_not_match_a_longer_flag_it_prefixes),
		cmocka_unit_test(test_args_boolean_flag_is_seen_once_and_absent_is_false),
		cmocka_unit_test(test_args_positional_index_does_not_shift_after_taking_one),
		cmocka_unit_test(test_path_escape_encodes_space_as_percent_20),
		cmocka_unit_test(test_path_escape_encodes_slash_so_it_stays_one_segment),
		cmocka_unit_test(test_path_escape_encodes_quotes_and_reserved_characters),
		cmocka_unit_test(test_path_escape_encodes_each_utf8_byte),
		cmocka_unit_test(test_path_escape_keeps_unreserved_characters),
		cmocka_unit_test(test_path_escape_exact_fit_succeeds_and_one_less_fails),
		ENV_TEST(test_config_server_is_the_default_when_nothing_is_set),
		ENV_TEST(test_config_server_comes_from_state_dir_novad_url),
		ENV_TEST(test_config_server_from_config_file_beats_state_dir),
		ENV_TEST(test_config_server_from_env_beats_config_file),
		ENV_TEST(test_config_server_from_flag_beats_env),
		ENV_TEST(test_config_token_is_empty_when_nothing_is_set),
		ENV_TEST(test_config_token_comes_from_state_dir_admin_token),
		ENV_TEST(test_config_token_from_config_file_beats_state_dir),
		ENV_TEST(test_config_token_from_env_beats_config_file),
		ENV_TEST(test_config_token_from_flag_beats_env),
		ENV_TEST(test_config_empty_env_values_fall_through_to_the_file),
		ENV_TEST(test_config_server_and_token_may_come_from_different_sources),
		ENV_TEST(test_config_file_unknown_key_is_an_error_at_line_1_column_1),
		ENV_TEST(test_config_empty_file_is_not_an_error),
		ENV_TEST(test_config_trailing_slashes_are_trimmed_from_every_source),
		ENV_TEST(test_config_state_files_are_read_without_surrounding_blanks),
		ENV_TEST(test_config_blank_state_files_fall_through_to_the_default),
		ENV_TEST(test_config_path_is_under_xdg_config_home_else_home),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
