/* Configuration: YAML file, positioned errors, environment overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/config.h"
#include "core/ydoc.h"

static char path[64];

static const char *write_yaml(const char *text)
{
	snprintf(path, sizeof(path), "/tmp/nova-cfg-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	unsetenv("NOVA_LISTEN");
	unsetenv("NOVA_MAX_HEARTBEATS_PER_SECOND");
	unsetenv("NOVA_HTTP_THREADS");
	unsetenv("NOVA_STATE_DIR");
	unsetenv("NOVA_DB_STATEMENT_TIMEOUT_MS");
	unsetenv("NOVA_DB_ACQUIRE_TIMEOUT_MS");
	unsetenv("NOVA_PROVIDER_FILES_TIMEOUT_MS");
	return 0;
}

/* The file novad (and nova-router) read: -c, else the variable, else the
 * default when it exists; a missing default means built-in defaults. */
static void test_config_file_flag_wins_over_variable_and_default(void **state)
{
	char out[256], dflt[64];
	const char *src;
	struct nova_err err;
	(void)state;
	snprintf(dflt, sizeof(dflt), "%s", write_yaml("listen: 127.0.0.1:1\n"));
	setenv("NOVA_CONFIG", "/tmp/from-env.yaml", 1);
	assert_int_equal(cfg_file_pick(out, sizeof(out), &src, "/tmp/flag.yaml", "NOVA_CONFIG",
				       dflt, &err), 0);
	assert_string_equal(out, "/tmp/flag.yaml");
	assert_string_equal(src, "flag");
	assert_int_equal(cfg_file_pick(out, sizeof(out), &src, NULL, "NOVA_CONFIG", dflt, &err), 0);
	assert_string_equal(out, "/tmp/from-env.yaml");
	assert_string_equal(src, "NOVA_CONFIG");
	unsetenv("NOVA_CONFIG");
	assert_int_equal(cfg_file_pick(out, sizeof(out), &src, NULL, "NOVA_CONFIG", dflt, &err), 0);
	assert_string_equal(out, dflt);
	assert_string_equal(src, "default");
}

static void test_config_file_default_absent_means_builtin_defaults(void **state)
{
	char out[256] = "x";
	const char *src;
	struct nova_err err;
	(void)state;
	unsetenv("NOVA_CONFIG");
	setenv("NOVA_CONFIG", "", 1); /* empty: as unset */
	assert_int_equal(cfg_file_pick(out, sizeof(out), &src, NULL, "NOVA_CONFIG",
				       "/nonexistent/nova/novad.yaml", &err), 0);
	assert_string_equal(out, "");
	assert_string_equal(src, "none");
	unsetenv("NOVA_CONFIG");
}

static void test_config_file_named_but_missing_fails_at_load(void **state)
{
	char out[256];
	struct cfg c;
	struct nova_err err;
	(void)state;
	setenv("NOVA_CONFIG", "/nonexistent/novad.yaml", 1);
	assert_int_equal(cfg_file_pick(out, sizeof(out), NULL, NULL, "NOVA_CONFIG", NULL, &err), 0);
	unsetenv("NOVA_CONFIG");
	cfg_defaults(&c);
	assert_int_not_equal(cfg_load_file(&c, out, &err), 0);
	assert_non_null(strstr(err.message, "/nonexistent/novad.yaml"));
	/* /dev/null: a file that sets nothing */
	assert_int_equal(cfg_load_file(&c, "/dev/null", &err), 0);
	assert_string_equal(c.listen, CFG_DEFAULT_LISTEN);
}

static void test_config_default_state_dir_follows_systemd_state_directory(void **state)
{
	char buf[256];
	(void)state;
	unsetenv("NOVA_STATE_DIR");
	setenv("STATE_DIRECTORY", "/var/lib/nova:/var/lib/other", 1);
	cfg_default_state_dir(buf, sizeof(buf));
	assert_string_equal(buf, "/var/lib/nova");
	setenv("NOVA_STATE_DIR", "/srv/nova", 1); /* the explicit one still wins */
	cfg_default_state_dir(buf, sizeof(buf));
	assert_string_equal(buf, "/srv/nova");
	unsetenv("STATE_DIRECTORY");
}

static void test_config_file_sets_values(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("listen: 0.0.0.0:9000\n"
						      "log_level: debug\n"
						      "http:\n  threads: 16\n  max_body_bytes: 4096\n"
						      "providers:\n  fake: true\n"),
				       &err), 0);
	assert_string_equal(c.listen, "0.0.0.0:9000");
	assert_int_equal(c.log_level, NOVA_LOG_DEBUG);
	assert_int_equal(c.http_threads, 16);
	assert_int_equal(c.max_body_bytes, 4096);
	assert_true(c.enable_fake_provider);
}

static void test_config_unknown_key_has_file_line_column(void **state)
{
	struct cfg c;
	struct nova_err err;
	char want[128];
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("listen: x:1\nhttp:\n  thread: 4\n"), &err),
			 NOVA_EINVAL);
	snprintf(want, sizeof(want), "%s:3:3:", path);
	assert_memory_equal(err.message, want, strlen(want));
	/* The mapping, not the unknown key: a YAML error never echoes the
	 * file's text (core/ydoc.h). */
	assert_string_equal(err.field, "http");
	assert_null(strstr(err.message, "thread:"));
	assert_non_null(strstr(err.message, "threads")); /* says what was expected */
}

static void test_config_wrong_type_and_range_are_positioned(void **state)
{
	struct cfg c;
	struct nova_err err;
	char want[128];
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("http:\n  threads: many\n"), &err), NOVA_EINVAL);
	snprintf(want, sizeof(want), "%s:2:12:", path);
	assert_memory_equal(err.message, want, strlen(want));
	assert_string_equal(err.field, "http.threads");
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("database_pool_size: 0\n"), &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "from 1 to 256"));
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("log_level: loud\n"), &err), NOVA_EINVAL);
	assert_string_equal(err.field, "log_level");
}

static void test_config_malformed_yaml_is_positioned(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("listen: [1, 2\n"), &err), NOVA_EINVAL);
	assert_memory_equal(err.message, path, strlen(path));
	assert_int_equal(cfg_load_file(&c, write_yaml("listen: a\nlisten: b\n"), &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "duplicate"));
	assert_int_equal(cfg_load_file(&c, "/nonexistent/novad.yaml", &err), NOVA_ENOTFOUND);
}

static void test_config_environment_overrides_file(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("listen: 127.0.0.1:1\n"), &err), 0);
	setenv("NOVA_LISTEN", "127.0.0.1:2", 1);
	setenv("NOVA_HTTP_THREADS", "3", 1);
	assert_int_equal(cfg_apply_env(&c, &err), 0);
	assert_string_equal(c.listen, "127.0.0.1:2");
	assert_int_equal(c.http_threads, 3);
	setenv("NOVA_HTTP_THREADS", "zero", 1);
	assert_int_equal(cfg_apply_env(&c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "NOVA_HTTP_THREADS");
}

static void test_config_database_timeouts_default_load_and_are_range_checked(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(c.db_statement_timeout_ms, 2000);
	assert_int_equal(c.db_acquire_timeout_ms, 1000);
	assert_int_equal(cfg_load_file(&c, write_yaml("database_statement_timeout_ms: 1500\n"
						      "database_acquire_timeout_ms: 250\n"),
				       &err),
			 0);
	assert_int_equal(c.db_statement_timeout_ms, 1500);
	assert_int_equal(c.db_acquire_timeout_ms, 250);
	assert_int_equal(cfg_load_file(&c, write_yaml("database_statement_timeout_ms: 0\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "database_statement_timeout_ms");
	setenv("NOVA_DB_STATEMENT_TIMEOUT_MS", "700", 1);
	setenv("NOVA_DB_ACQUIRE_TIMEOUT_MS", "5", 1);
	assert_int_equal(cfg_apply_env(&c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "NOVA_DB_ACQUIRE_TIMEOUT_MS");
	setenv("NOVA_DB_ACQUIRE_TIMEOUT_MS", "300", 1);
	assert_int_equal(cfg_apply_env(&c, &err), 0);
	unsetenv("NOVA_DB_STATEMENT_TIMEOUT_MS");
	unsetenv("NOVA_DB_ACQUIRE_TIMEOUT_MS");
	assert_int_equal(c.db_statement_timeout_ms, 700);
	assert_int_equal(c.db_acquire_timeout_ms, 300);
}

static void test_config_provider_files_timeout_defaults_loads_and_is_range_checked(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(c.provider_files_timeout_ms, 2000);
	assert_int_equal(cfg_load_file(&c, write_yaml("provider_files_timeout_ms: 750\n"), &err), 0);
	assert_int_equal(c.provider_files_timeout_ms, 750);
	assert_int_equal(cfg_load_file(&c, write_yaml("provider_files_timeout_ms: 0\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "provider_files_timeout_ms");
	setenv("NOVA_PROVIDER_FILES_TIMEOUT_MS", "5", 1);
	assert_int_equal(cfg_apply_env(&c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "NOVA_PROVIDER_FILES_TIMEOUT_MS");
	setenv("NOVA_PROVIDER_FILES_TIMEOUT_MS", "300", 1);
	assert_int_equal(cfg_apply_env(&c, &err), 0);
	unsetenv("NOVA_PROVIDER_FILES_TIMEOUT_MS");
	assert_int_equal(c.provider_files_timeout_ms, 300);
}

static void test_config_brake_defaults_load_and_are_range_checked(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(c.node_brake_percent, 50);
	assert_int_equal(c.node_brake_min_nodes, 3);
	assert_int_equal(cfg_load_file(&c, write_yaml("node_brake_percent: 75\nnode_brake_min_nodes: 5\n"),
				       &err), 0);
	assert_int_equal(c.node_brake_percent, 75);
	assert_int_equal(c.node_brake_min_nodes, 5);
	assert_int_equal(cfg_load_file(&c, write_yaml("node_brake_percent: 101\n"), &err), NOVA_EINVAL);
	assert_string_equal(err.field, "node_brake_percent");
	assert_int_equal(cfg_load_file(&c, write_yaml("node_brake_min_nodes: 0\n"), &err), NOVA_EINVAL);
	assert_string_equal(err.field, "node_brake_min_nodes");
	setenv("NOVA_NODE_BRAKE_PERCENT", "0", 1);
	assert_int_equal(cfg_apply_env(&c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "NOVA_NODE_BRAKE_PERCENT");
	setenv("NOVA_NODE_BRAKE_PERCENT", "60", 1);
	assert_int_equal(cfg_apply_env(&c, &err), 0);
	unsetenv("NOVA_NODE_BRAKE_PERCENT");
	assert_int_equal(c.node_brake_percent, 60);
}

/* The heartbeat budget: a default, set by the file and the environment,
 * and a value out of range refused naming the setting. */
static void test_config_heartbeat_budget_loads_and_a_bad_one_is_refused_by_name(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(c.max_heartbeats_per_second, 10000);
	assert_int_equal(cfg_load_file(&c, write_yaml("max_heartbeats_per_second: 5000\n"), &err), 0);
	assert_int_equal(c.max_heartbeats_per_second, 5000);
	assert_int_equal(cfg_load_file(&c, write_yaml("max_heartbeats_per_second: 0\n"), &err), NOVA_EINVAL);
	assert_string_equal(err.field, "max_heartbeats_per_second");
	assert_non_null(strstr(err.message, "max_heartbeats_per_second"));
	assert_int_equal(cfg_load_file(&c, write_yaml("max_heartbeats_per_second: lots\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "max_heartbeats_per_second");
	assert_int_equal(cfg_load_file(&c, write_yaml("max_heartbeats_per_second: 10000001\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "max_heartbeats_per_second");
	assert_int_equal(c.max_heartbeats_per_second, 5000); /* refused values change nothing */
	setenv("NOVA_MAX_HEARTBEATS_PER_SECOND", "-3", 1);
	assert_int_equal(cfg_apply_env(&c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "NOVA_MAX_HEARTBEATS_PER_SECOND");
	assert_non_null(strstr(err.message, "NOVA_MAX_HEARTBEATS_PER_SECOND"));
	setenv("NOVA_MAX_HEARTBEATS_PER_SECOND", "750", 1);
	assert_int_equal(cfg_apply_env(&c, &err), 0);
	unsetenv("NOVA_MAX_HEARTBEATS_PER_SECOND");
	assert_int_equal(c.max_heartbeats_per_second, 750);
}

static void test_config_audit_retention_defaults_loads_and_is_range_checked(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(c.audit_retention_days, 90);
	assert_int_equal(cfg_load_file(&c, write_yaml("audit_retention_days: 0\n"), &err), 0);
	assert_int_equal(c.audit_retention_days, 0);
	assert_int_equal(cfg_load_file(&c, write_yaml("audit_retention_days: 400\n"), &err), 0);
	assert_int_equal(c.audit_retention_days, 400);
	assert_int_equal(cfg_load_file(&c, write_yaml("audit_retention_days: -1\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "audit_retention_days");
	setenv("NOVA_AUDIT_RETENTION_DAYS", "many", 1);
	assert_int_equal(cfg_apply_env(&c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "NOVA_AUDIT_RETENTION_DAYS");
	setenv("NOVA_AUDIT_RETENTION_DAYS", "30", 1);
	assert_int_equal(cfg_apply_env(&c, &err), 0);
	unsetenv("NOVA_AUDIT_RETENTION_DAYS");
	assert_int_equal(c.audit_retention_days, 30);
}

static void test_config_advertise_url_is_checked_where_it_stands(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_string_equal(c.advertise_url, "");
	assert_int_equal(cfg_load_file(&c, write_yaml("advertise_url: http://lb.internal:7070\n"), &err),
			 0);
	assert_string_equal(c.advertise_url, "http://lb.internal:7070");
	assert_int_equal(cfg_load_file(&c, write_yaml("workers: 2\nadvertise_url: ftp://lb\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "advertise_url");
	assert_non_null(strstr(err.message, ":2:"));
	assert_non_null(strstr(err.message, "http or https"));
	setenv("NOVA_ADVERTISE_URL", "http://u:pw@lb", 1);
	assert_int_equal(cfg_apply_env(&c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "NOVA_ADVERTISE_URL");
	assert_null(strstr(err.message, "pw"));
	setenv("NOVA_ADVERTISE_URL", "https://lb", 1);
	assert_int_equal(cfg_apply_env(&c, &err), 0);
	unsetenv("NOVA_ADVERTISE_URL");
	assert_string_equal(c.advertise_url, "https://lb");
}

static void test_config_connection_limits_default_load_and_are_checked_together(void **state)
{
	struct cfg c;
	struct nova_err err;
	(void)state;
	cfg_defaults(&c);
	assert_int_equal(c.http_max_connections, 2048);
	assert_int_equal(c.http_max_connections_per_ip, 256);
	assert_int_equal(c.http_reserved_connections, 64);
	assert_int_equal(c.http_header_timeout_ms, 10000);
	assert_int_equal(c.http_body_timeout_ms, 30000);
	assert_int_equal(c.http_max_watchers, 1024);
	assert_int_equal(c.http_max_watchers_per_key, 256);
	assert_int_equal(cfg_load_file(&c, write_yaml("http:\n  max_connections: 4000\n"
						      "  max_connections_per_ip: 0\n"
						      "  reserved_connections: 100\n"
						      "  header_timeout_ms: 2000\n"
						      "  body_timeout_ms: 5000\n"
						      "  max_watchers: 600\n"
						      "  max_watchers_per_key: 50\n"),
				       &err), 0);
	assert_int_equal(c.http_max_connections, 4000);
	assert_int_equal(c.http_max_connections_per_ip, 0);
	assert_int_equal(c.http_reserved_connections, 100);
	assert_int_equal(c.http_header_timeout_ms, 2000);
	assert_int_equal(c.http_body_timeout_ms, 5000);
	assert_int_equal(c.http_max_watchers, 600);
	assert_int_equal(c.http_max_watchers_per_key, 50);
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("http:\n  header_timeout_ms: 10\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "http.header_timeout_ms");
	assert_non_null(strstr(err.message, ":2:")); /* file:line:column */
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("http:\n  threads: 2\n  max_watchers: 2000\n"),
				       &err), NOVA_EINVAL);
	assert_string_equal(err.field, "http.max_watchers");
	assert_non_null(strstr(err.message, ":3:"));
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("http:\n  max_connections: 100\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "http.max_connections");
	cfg_defaults(&c);
	assert_int_equal(cfg_load_file(&c, write_yaml("http:\n  max_watchers: 10\n"
						      "  max_watchers_per_key: 11\n"), &err),
			 NOVA_EINVAL);
	assert_string_equal(err.field, "http.max_watchers_per_key");
	assert_non_null(strstr(err.message, ":3:"));
}

static void test_config_default_state_dir_follows_env(void **state)
{
	char buf[256];
	(void)state;
	setenv("NOVA_STATE_DIR", "/srv/nova", 1);
	cfg_default_state_dir(buf, sizeof(buf));
	assert_string_equal(buf, "/srv/nova");
	unsetenv("NOVA_STATE_DIR");
	cfg_default_state_dir(buf, sizeof(buf));
	if (geteuid() == 0)
		assert_string_equal(buf, "/var/lib/nova");
	else
		assert_non_null(strstr(buf, "nova"));
}

static void test_ydoc_to_json_keeps_types(void **state)
{
	struct ydoc *d;
	struct nova_err err;
	json_t *j;
	const char *y = "a: 1\nb: true\nc: \"1\"\nd: [x, 2.5]\ne: ~\n";
	(void)state;
	assert_int_equal(ydoc_load_string(&d, "t.yaml", y, strlen(y), &err), 0);
	assert_int_equal(ydoc_to_json(&j, d, ydoc_root(d), &err), 0);
	assert_true(json_is_integer(json_object_get(j, "a")));
	assert_true(json_is_true(json_object_get(j, "b")));
	assert_true(json_is_string(json_object_get(j, "c")));
	assert_true(json_is_real(json_array_get(json_object_get(j, "d"), 1)));
	assert_true(json_is_null(json_object_get(j, "e")));
	json_decref(j);
	ydoc_destroy(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_config_file_sets_values, teardown),
		cmocka_unit_test_teardown(test_config_heartbeat_budget_loads_and_a_bad_one_is_refused_by_name,
					  teardown),
		cmocka_unit_test_teardown(test_config_unknown_key_has_file_line_column, teardown),
		cmocka_unit_test_teardown(test_config_wrong_type_and_range_are_positioned, teardown),
		cmocka_unit_test_teardown(test_config_malformed_yaml_is_positioned, teardown),
		cmocka_unit_test_teardown(test_config_environment_overrides_file, teardown),
		cmocka_unit_test_teardown(test_config_database_timeouts_default_load_and_are_range_checked,
					  teardown),
		cmocka_unit_test_teardown(test_config_provider_files_timeout_defaults_loads_and_is_range_checked,
					  teardown),
		cmocka_unit_test_teardown(test_config_brake_defaults_load_and_are_range_checked, teardown),
		cmocka_unit_test_teardown(test_config_audit_retention_defaults_loads_and_is_range_checked,
					  teardown),
		cmocka_unit_test_teardown(test_config_advertise_url_is_checked_where_it_stands, teardown),
		cmocka_unit_test_teardown(test_config_connection_limits_default_load_and_are_checked_together, teardown),
		cmocka_unit_test_teardown(test_config_default_state_dir_follows_env, teardown),
		cmocka_unit_test_teardown(test_config_file_flag_wins_over_variable_and_default, teardown),
		cmocka_unit_test_teardown(test_config_file_default_absent_means_builtin_defaults, teardown),
		cmocka_unit_test_teardown(test_config_file_named_but_missing_fails_at_load, teardown),
		cmocka_unit_test_teardown(test_config_default_state_dir_follows_systemd_state_directory,
					  teardown),
		cmocka_unit_test(test_ydoc_to_json_keeps_types),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
