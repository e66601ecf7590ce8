/* Structured logging: JSON lines, levels, replaceable sink, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/log.h"

static char last[4096];
static int lines;

static void sink(void *ctx, enum nova_log_level level, const char *line)
{
	(void)ctx, (void)level;
	strncpy(last, line, sizeof(last) - 1);
	lines++;
}

static int setup(void **state)
{
	(void)state;
	nova_log_set_sink(sink, NULL);
	nova_log_set_level(NOVA_LOG_INFO);
	lines = 0;
	last[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nova_log_set_sink(NULL, NULL);
	return 0;
}

static void test_log_line_is_one_json_object_with_fields(void **state)
{
	json_error_t jerr;
	(void)state;
	nova_log_kv(NOVA_LOG_WARN, "pools", "pool \"x\"\nfailed", "pool", "a\tb", "node", NULL, NULL);
	json_t *j = json_loads(last, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(j, "component")), "pools");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "pool \"x\"\nfailed");
	assert_string_equal(json_string_value(json_object_get(j, "pool")), "a\tb");
	assert_true(json_is_null(json_object_get(j, "node")));
	assert_non_null(json_object_get(j, "ts"));
	assert_null(strchr(last, '\n'));
	json_decref(j);
}

static void test_log_below_level_is_dropped(void **state)
{
	(void)state;
	nova_log(NOVA_LOG_DEBUG, "x", "hidden %d", 1);
	assert_int_equal(lines, 0);
	nova_log(NOVA_LOG_ERROR, "x", "shown %d", 2);
	assert_int_equal(lines, 1);
	assert_non_null(strstr(last, "shown 2"));
}

static void test_log_overlong_line_stays_valid_json(void **state)
{
	char big[8000];
	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	nova_log_kv(NOVA_LOG_INFO, "x", "big", "v", big, "after", "dropped", NULL);
	json_t *j = json_loads(last, 0, NULL);
	/* Cut inside the value, but still one valid JSON object. */
	assert_non_null(j);
	assert_true(strlen(last) < 4096);
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "big");
	assert_true(json_string_length(json_object_get(j, "v")) > 3000);
	json_decref(j);
	/* A quote right at the cut is never split from its backslash. */
	memset(big, '"', sizeof(big) - 1);
	nova_log_kv(NOVA_LOG_INFO, "x", "quotes", "v", big, NULL);
	j = json_loads(last, 0, NULL);
	assert_non_null(j);
	json_decref(j);
}

static void test_log_redact_url_hides_passwords(void **state)
{
	char out[256];
	(void)state;
	nova_log_redact_url(out, sizeof(out), "postgresql://nova:s3cret@db:5432/nova");
	assert_null(strstr(out, "s3cret"));
	assert_string_equal(out, "postgresql://nova:***@db:5432/nova");
	nova_log_redact_url(out, sizeof(out), "host=/tmp dbname=x password=hunter2 user=y");
	assert_null(strstr(out, "hunter2"));
	nova_log_redact_url(out, sizeof(out), "postgresql://h/db?sslmode=require&password=pw");
	assert_null(strstr(out, "=pw"));
}

static void test_log_level_names_parse(void **state)
{
	enum nova_log_level l;
	(void)state;
	assert_int_equal(nova_log_level_parse(&l, "warn"), 0);
	assert_int_equal(l, NOVA_LOG_WARN);
	assert_int_equal(nova_log_level_parse(&l, "verbose"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_log_line_is_one_json_object_with_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_below_level_is_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_overlong_line_stays_valid_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_redact_url_hides_passwords, setup, teardown),
		cmocka_unit_test(test_log_level_names_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
