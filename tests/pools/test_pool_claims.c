/* Exclusive claims: a rack belongs to one lpu pool at a time. Driven through
 * the real gateway: the second claim is refused with 409 naming the rack and
 * its holder, nothing of the refused pool is left behind, and the rack is
 * free again once its pool is deleted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/files.h"
#include "tests/support/testenv.h"

static char topology[PATH_MAX];

static long create_lpu_pool(json_t **body, struct testenv *env, const char *name,
			    const char *allocation)
{
	char req[PATH_MAX + 256];
	snprintf(req, sizeof(req),
		 "{\"name\": \"%s\", \"provider\": \"lpu\", \"config\": {\"topology\": \"%s\", "
		 "\"allocation\": \"%s\", \"mock_agents\": true}}",
		 name, topology, allocation);
	return testenv_http(body, env, "POST", "/v1/pools", TESTENV_ADMIN_TOKEN, req);
}

static void test_second_claim_names_the_holder(void **state)
{
	struct testenv *env = *state;
	json_t *body = NULL;
	assert_int_equal(create_lpu_pool(&body, env, "east", "c1r1:c2r2"), 201);
	json_decref(body);
	/* c2r2 is held by "east" (its second stage group). */
	assert_int_equal(create_lpu_pool(&body, env, "west", "c2r1,c2r2"), 409);
	assert_string_equal(testenv_error_code(body), "conflict");
	assert_string_equal(testenv_error_field(body), "config");
	const char *msg = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
	assert_non_null(msg);
	assert_non_null(strstr(msg, "rack c2r2"));
	assert_non_null(strstr(msg, "\"east\""));
	json_decref(body);
	/* Nothing of the refused pool: no row, no claim on c2r1. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pools WHERE name = 'west'"), 0);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pool_claims "
						"WHERE resource = 'rack c2r1'"),
			 0);
	/* A disjoint allocation is fine, and takes its racks. */
	assert_int_equal(create_lpu_pool(&body, env, "west", "c2r1,c2r3"), 201);
	json_decref(body);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pool_claims c JOIN pools p "
						"ON p.id = c.pool_id WHERE p.name = 'west'"),
			 2);
}

static void test_rack_is_free_after_its_pool_is_deleted(void **state)
{
	struct testenv *env = *state;
	json_t *body = NULL;
	assert_int_equal(create_lpu_pool(&body, env, "first", "c1r2"), 201);
	json_decref(body);
	assert_int_equal(create_lpu_pool(&body, env, "second", "c1r2"), 409);
	json_decref(body);
	assert_int_equal(testenv_http(&body, env, "DELETE", "/v1/pools/first", TESTENV_ADMIN_TOKEN,
				      NULL),
			 204);
	json_decref(body);
	assert_int_equal(create_lpu_pool(&body, env, "second", "c1r2"), 201);
	json_decref(body);
}

static void test_same_rack_twice_in_one_pool_is_a_parse_error(void **state)
{
	struct testenv *env = *state;
	json_t *body = NULL;
	/* Not a claim conflict with itself: the allocation is refused first. */
	assert_int_equal(create_lpu_pool(&body, env, "twice", "c1r1:c1r1"), 400);
	assert_string_equal(testenv_error_field(body), "config.allocation");
	json_decref(body);
}

static void test_providers_without_claims_share_nothing(void **state)
{
	struct testenv *env = *state;
	json_t *body = NULL;
	assert_int_equal(testenv_http(&body, env, "POST", "/v1/pools", TESTENV_ADMIN_TOKEN,
				      "{\"name\": \"f1\", \"provider\": \"fake\"}"),
			 201);
	json_decref(body);
	assert_int_equal(testenv_http(&body, env, "POST", "/v1/pools", TESTENV_ADMIN_TOKEN,
				      "{\"name\": \"f2\", \"provider\": \"fake\"}"),
			 201);
	json_decref(body);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pool_claims"), 0);
}

int main(void)
{
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return 1;
	snprintf(topology, sizeof(topology), "%.4000s/etc/datacenter.yaml", cwd);
	/* As novad does by default: the source tree's etc/ may be named. */
	char etc[PATH_MAX + 8];
	snprintf(etc, sizeof(etc), "%.4000s/etc", cwd);
	const char *dirs[] = {etc};
	struct nova_err err;
	if (files_allowed_set(dirs, 1, "provider_files", &err))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_second_claim_names_the_holder, testenv_setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_rack_is_free_after_its_pool_is_deleted,
						testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_same_rack_twice_in_one_pool_is_a_parse_error,
						testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_providers_without_claims_share_nothing,
						testenv_setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
