/* Strict JSON decoding: wrong types, missing and unknown fields are errors
 * that name the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/json.h"

struct sample {
	const char *name;
	long long replicas;
	bool replicas_set;
	bool enabled;
	json_t *labels;
};

static int decode(struct sample *s, const char *text, struct nova_err *err)
{
	json_t *obj;
	int rc = json_parse_object(&obj, text, strlen(text), err);
	if (rc)
		return rc;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .required = true, .out = &s->name, .max_len = 8},
		{.name = "replicas", .kind = JSON_KIND_INT, .out = &s->replicas, .present = &s->replicas_set,
		 .min = 0, .max = 100},
		{.name = "enabled", .kind = JSON_KIND_BOOL, .out = &s->enabled},
		{.name = "labels", .kind = JSON_KIND_OBJECT, .out = &s->labels},
	};
	memset(s, 0, sizeof(*s));
	rc = json_decode_object(obj, fields, 4, "spec", err);
	json_decref(obj);
	return rc;
}

static void test_json_valid_body_decodes_every_field(void **state)
{
	struct sample s;
	struct nova_err err;
	json_t *obj;
	(void)state;
	const char *text = "{\"name\":\"a\",\"replicas\":3,\"enabled\":true,\"labels\":{}}";
	assert_int_equal(json_parse_object(&obj, text, strlen(text), &err), 0);
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .required = true, .out = &s.name},
		{.name = "replicas", .kind = JSON_KIND_INT, .out = &s.replicas, .present = &s.replicas_set},
		{.name = "enabled", .kind = JSON_KIND_BOOL, .out = &s.enabled},
		{.name = "labels", .kind = JSON_KIND_OBJECT, .out = &s.labels},
	};
	assert_int_equal(json_decode_object(obj, fields, 4, "", &err), 0);
	assert_string_equal(s.name, "a");
	assert_int_equal(s.replicas, 3);
	assert_true(s.replicas_set);
	assert_true(s.enabled);
	assert_true(json_is_object(s.labels));
	json_decref(obj);
}

static void test_json_missing_required_field_is_named(void **state)
{
	struct sample s;
	struct nova_err err;
	(void)state;
	assert_int_equal(decode(&s, "{\"replicas\":1}", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "spec.name");
	assert_non_null(strstr(err.message, "required"));
}

static void test_json_wrong_type_is_named(void **state)
{
	struct sample s;
	struct nova_err err;
	(void)state;
	assert_int_equal(decode(&s, "{\"name\":\"a\",\"replicas\":\"3\"}", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "spec.replicas");
	assert_non_null(strstr(err.message, "integer"));
	assert_int_equal(decode(&s, "{\"name\":5}", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "spec.name");
	assert_int_equal(decode(&s, "{\"name\":\"a\",\"enabled\":1}", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "spec.enabled");
}

static void test_json_unknown_field_is_refused(void **state)
{
	struct sample s;
	struct nova_err err;
	(void)state;
	assert_int_equal(decode(&s, "{\"name\":\"a\",\"replica\":3}", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "spec.replica");
	assert_non_null(strstr(err.message, "unknown field"));
}

static void test_json_range_and_length_are_checked(void **state)
{
	struct sample s;
	struct nova_err err;
	(void)state;
	assert_int_equal(decode(&s, "{\"name\":\"a\",\"replicas\":101}", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "spec.replicas");
	assert_int_equal(decode(&s, "{\"name\":\"a\",\"replicas\":-1}", &err), NOVA_EINVAL);
	assert_int_equal(decode(&s, "{\"name\":\"toolongname\"}", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "spec.name");
	assert_int_equal(decode(&s, "{\"name\":\"\"}", &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "empty"));
}

static void test_json_malformed_and_non_object_bodies_are_refused(void **state)
{
	struct nova_err err;
	json_t *obj;
	(void)state;
	assert_int_equal(json_parse_object(&obj, "{\"name\":", 8, &err), NOVA_EINVAL);
	assert_null(obj);
	assert_non_null(strstr(err.message, "malformed JSON"));
	assert_int_equal(json_parse_object(&obj, "[1,2]", 5, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "object"));
	assert_int_equal(json_parse_object(&obj, "", 0, &err), NOVA_EINVAL);
	assert_int_equal(json_parse_object(&obj, "{\"a\":1,\"a\":2}", 13, &err), NOVA_EINVAL);
	/* A NUL byte inside a string is refused by the parser. */
	assert_int_equal(json_parse_object(&obj, "{\"a\":\"x\\u0000y\"}", 16, &err), NOVA_EINVAL);
}

/* jansson refuses integers past 64 bits (and reals past double) with "too
 * big integer" and no field: the field is named from where it stopped. */
static void test_json_integer_out_of_range_names_the_field(void **state)
{
	static const struct {
		const char *text, *field, *what;
	} cases[] = {
		{"{\"name\":\"a\",\"replicas\":9223372036854775808}", "replicas", "integer"},
		{"{\"replicas\":-9223372036854775809,\"name\":\"a\"}", "replicas", "integer"},
		{"{\"quotas\":{\"max_nodes\":18446744073709551616}}", "quotas.max_nodes", "integer"},
		{"{\"a\":[1,\"-5\",{\"b\":true,\"c\":[0,[99999999999999999999999]]}]}",
		 "a[2].c[1][0]", "integer"},
		{"{\"s\":\"1e999, [\\\"{\",\"x\":1e999}", "x", "number"},
		{"{\"k\\\"q\":{},\"n\":[],\"m\":1,\"o\":{\"p\":-1E+99999}}", "o.p", "number"},
		{"{\"\":{\"\":[99999999999999999999]}}", "\"\".\"\"[0]", "integer"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *obj = NULL;
		struct nova_err err;
		int rc = json_parse_object(&obj, cases[i].text, strlen(cases[i].text), &err);
		if (rc != NOVA_EINVAL || strcmp(err.field, cases[i].field) != 0 ||
		    !strstr(err.message, cases[i].what) || !strstr(err.message, "out of range"))
			fail_msg("case %zu %s: rc %d field \"%s\" message \"%s\"", i, cases[i].text, rc,
				 err.field, err.message);
		assert_null(obj);
	}
	/* The largest and smallest 64-bit integers are taken. */
	const char *ok = "{\"a\":9223372036854775807,\"b\":-9223372036854775808}";
	json_t *obj;
	struct nova_err err;
	assert_int_equal(json_parse_object(&obj, ok, strlen(ok), &err), 0);
	assert_true(json_integer_value(json_object_get(obj, "b")) < 0);
	json_decref(obj);
}

/* A field or message echoing a request's key stays one line of valid
 * UTF-8: control bytes and a character cut at the buffer's end become '?'
 * (jansson would refuse to build the error body otherwise). */
static void test_err_is_one_line_of_valid_utf8(void **state)
{
	struct nova_err err;
	char key[NOVA_ERR_FIELD_MAX + 8];
	(void)state;
	nova_err_set(&err, NOVA_EINVAL, "a\nb", "unknown field %s\r\x7f\xff\xc0\x80", "a\nb");
	assert_string_equal(err.field, "a?b");
	assert_string_equal(err.message, "unknown field a?b?????");
	/* "é" (2 bytes) cut in half at the field's last byte. */
	memset(key, 'k', sizeof(key));
	memcpy(key + NOVA_ERR_FIELD_MAX - 2, "\xc3\xa9", 2);
	key[sizeof(key) - 1] = '\0';
	nova_err_set(&err, NOVA_EINVAL, key, "%s", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_int_equal(strlen(err.field), NOVA_ERR_FIELD_MAX - 1);
	assert_int_equal((unsigned char)err.field[NOVA_ERR_FIELD_MAX - 2], '?');
	assert_string_equal(err.message, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"); /* intact */
	json_t *j = json_string(err.field);
	assert_non_null(j);
	json_decref(j);
	nova_err_set_hint(&err, "x\ty");
	assert_string_equal(err.hint, "x?y");
}

static void test_err_codes_map_to_distinct_http_and_exit_statuses(void **state)
{
	(void)state;
	assert_int_equal(nova_code_http_status(NOVA_EINVAL), 400);
	assert_int_equal(nova_code_http_status(NOVA_EUNAUTH), 401);
	assert_int_equal(nova_code_http_status(NOVA_EFORBIDDEN), 403);
	assert_int_equal(nova_code_http_status(NOVA_ENOTFOUND), 404);
	assert_int_equal(nova_code_http_status(NOVA_EEXISTS), 409);
	assert_int_equal(nova_code_http_status(NOVA_ETOOBIG), 413);
	assert_int_equal(nova_code_http_status(NOVA_EUNAVAIL), 503);
	assert_int_equal(nova_code_exit_status(NOVA_EINVAL), 2);
	assert_int_equal(nova_code_exit_status(NOVA_ENOTFOUND), 3);
	assert_int_equal(nova_code_exit_status(NOVA_EEXISTS), 4);
	assert_int_equal(nova_code_exit_status(NOVA_EUNAUTH), 5);
	assert_int_equal(nova_code_exit_status(NOVA_EUNAVAIL), 6);
	assert_int_equal(nova_code_from_name(nova_code_name(NOVA_ECONFLICT)), NOVA_ECONFLICT);
	assert_int_equal(nova_code_from_name("no_such_code"), NOVA_EINTERNAL);
}

static void test_err_prefix_field_builds_a_path(void **state)
{
	struct nova_err err;
	(void)state;
	nova_err_set(&err, NOVA_EINVAL, "allocation", "bad");
	nova_err_prefix_field(&err, "config");
	assert_string_equal(err.field, "config.allocation");
	nova_err_set(&err, NOVA_EINVAL, "", "bad");
	nova_err_prefix_field(&err, "config");
	assert_string_equal(err.field, "config");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_valid_body_decodes_every_field),
		cmocka_unit_test(test_json_missing_required_field_is_named),
		cmocka_unit_test(test_json_wrong_type_is_named),
		cmocka_unit_test(test_json_unknown_field_is_refused),
		cmocka_unit_test(test_json_range_and_length_are_checked),
		cmocka_unit_test(test_json_malformed_and_non_object_bodies_are_refused),
		cmocka_unit_test(test_json_integer_out_of_range_names_the_field),
		cmocka_unit_test(test_err_is_one_line_of_valid_utf8),
		cmocka_unit_test(test_err_codes_map_to_distinct_http_and_exit_statuses),
		cmocka_unit_test(test_err_prefix_field_builds_a_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
