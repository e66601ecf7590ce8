/* The deployments API over real HTTP: create (with the can-never-fit check),
 * get with events, scale, stop, start, delete; bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "deployments/deployment.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static int setup(void **state)
{
	if (testenv_setup(state) != 0)
		return -1;
	struct testenv *env = *state;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"gpus\",\"provider\":\"fake\",\"config\":{"
				      "\"accelerator_type\":\"A100-80G\",\"accelerators_per_node\":2},"
				      "\"quotas\":{\"accelerator_types\":[\"A100-80G\"]}}"), 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"small\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerator_type\":\"A100-80G\","
				      "\"accelerators\":1}]}"), 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"huge\",\"kind\":\"spec_decode\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"draft\",\"accelerators\":1},"
				      "{\"name\":\"target\",\"accelerator_type\":\"A100-80G\",\"accelerators\":4}]}"),
			 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"h100\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerator_type\":\"H100\","
				      "\"accelerators\":1}]}"), 201);
	*state = env;
	return 0;
}

static void test_deploy_creates_a_pending_deployment_with_work(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"replicas\":3,"
				      "\"placement\":\"spread\",\"labels\":{\"zone\":\"a\"}}"), 201);
	assert_string_equal(json_string_value(json_object_get(b, "name")), "small-gpus");
	assert_string_equal(json_string_value(json_object_get(b, "state")), "pending");
	assert_int_equal(json_integer_value(json_object_get(b, "replicas")), 3);
	assert_string_equal(json_string_value(json_object_get(b, "placement")), "spread");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "labels"), "zone")), "a");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "model"), "name")), "small");
	json_t *ev = json_array_get(json_object_get(b, "events"), 0);
	assert_string_equal(json_string_value(json_object_get(ev, "to")), "pending");
	assert_string_equal(json_string_value(json_object_get(ev, "reason")), "created");
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued'"), 1);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/deployments", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(b), 1);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\"}"), 409);
	assert_string_equal(testenv_error_field(b), "name");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small:latest\",\"pool\":\"gpus\",\"name\":\"second\"}"),
			 201);
}

/* The record the worker works on, loaded by id, with its states spelled
 * as the table stores them. */
static void test_deployment_load_and_state_names(void **state)
{
	struct testenv *env = *state;
	struct deployment d;
	struct nova_err err;
	json_t *b;
	char id[64];
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"replicas\":2,"
				      "\"name\":\"rec\",\"placement\":\"spread\",\"labels\":{\"zone\":\"b\"}}"),
			 201);
	snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	assert_int_equal(deployment_load(&d, env->db, id, &err), 0);
	assert_string_equal(d.id, id);
	assert_string_equal(d.name, "rec");
	assert_int_equal(d.state, DEPLOYMENT_PENDING);
	assert_int_equal(d.replicas, 2);
	assert_int_equal(d.generation, 1);
	assert_string_equal(d.placement, "spread");
	assert_string_equal(json_string_value(json_object_get(d.labels, "zone")), "b");
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM deployments d JOIN pools p "
					   "ON p.id = d.pool_id JOIN models m ON m.id = d.model_id "
					   "WHERE d.name = 'rec' AND p.name = 'gpus' AND m.name = 'small'"),
			 1);
	deployment_finish(&d);
	assert_null(d.labels);
	deployment_finish(NULL);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments/rec/stop", ADMIN, "{}"), 200);
	assert_int_equal(deployment_load(&d, env->db, id, &err), 0);
	assert_int_equal(d.state, DEPLOYMENT_STOPPED);
	deployment_finish(&d);
	assert_int_equal(deployment_load(&d, env->db, "00000000-0000-0000-0000-000000000000", &err),
			 NOVA_ENOTFOUND);
	assert_string_equal(err.field, "deployment");

	for (unsigned s = 0; s < DEPLOYMENT_STATE_COUNT; s++) {
		enum deployment_state back;
		assert_int_equal(deployment_state_parse(&back, deployment_state_name(s)), 0);
		assert_int_equal(back, s);
	}
	for (unsigned s = 0; s < REPLICA_STATE_COUNT; s++) {
		enum replica_state back;
		assert_int_equal(deployment_replica_state_parse(&back, deployment_replica_state_name(s)), 0);
		assert_int_equal(back, s);
	}
	enum deployment_state ds = DEPLOYMENT_RUNNING;
	assert_int_equal(deployment_state_parse(&ds, "paused"), NOVA_EINVAL);
	assert_int_equal(deployment_state_parse(&ds, NULL), NOVA_EINVAL);
	assert_int_equal(ds, DEPLOYMENT_RUNNING);
	assert_string_equal(deployment_state_name((enum deployment_state)42), "unknown");
	assert_string_equal(deployment_replica_state_name(REPLICA_PLACED), "placed");
	/* Every name is one the table's CHECK allows. */
	for (unsigned s = 0; s < DEPLOYMENT_STATE_COUNT; s++) {
		char sql[200];
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM pg_constraint WHERE conrelid = 'deployments'::regclass "
			 "AND pg_get_constraintdef(oid) LIKE '%%''%s''%%'", deployment_state_name(s));
		assert_int_equal(testenv_query_int(env, sql), 1);
	}
}

static void test_deploy_refuses_what_can_never_fit(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"huge\",\"pool\":\"gpus\"}"), 400);
	const char *msg = json_string_value(json_object_get(json_object_get(b, "error"), "message"));
	assert_non_null(strstr(msg, "can never fit"));
	assert_non_null(strstr(msg, "stage target needs 4 x A100-80G"));
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"h100\",\"pool\":\"gpus\"}"), 400);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "error"), "message")),
			       "does not allow H100"));
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued'"), 0);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/deployments", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(b), 0);
	json_decref(b);
}

static void test_deploy_bad_input(void **state)
{
	struct testenv *env = *state;
	static const struct {
		const char *body;
		long status;
		const char *field;
	} cases[] = {
		{"{\"pool\":\"gpus\"}", 400, "model"},
		{"{\"model\":\"small\"}", 400, "pool"},
		{"{\"model\":\"nope\",\"pool\":\"gpus\"}", 404, "model"},
		{"{\"model\":\"small\",\"pool\":\"nope\"}", 404, "pool"},
		{"{\"model\":\"small\",\"pool\":\"gpus\",\"replicas\":-1}", 400, "replicas"},
		{"{\"model\":\"small\",\"pool\":\"gpus\",\"replicas\":1001}", 400, "replicas"},
		{"{\"model\":\"small\",\"pool\":\"gpus\",\"replicas\":\"2\"}", 400, "replicas"},
		{"{\"model\":\"small\",\"pool\":\"gpus\",\"placement\":\"random\"}", 400, "placement"},
		{"{\"model\":\"small\",\"pool\":\"gpus\",\"name\":\"x'; DROP TABLE deployments;--\"}", 400, "name"},
		{"{\"model\":\"small\",\"pool\":\"gpus\",\"labels\":{\"a\":1}}", 400, "labels.a"},
		{"{\"model\":\"small\",\"pool\":\"gpus\",\"replica\":2}", 400, "replica"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *b;
		long st = testenv_http(&b, env, "POST", "/v1/deployments", ADMIN, cases[i].body);
		if (st != cases[i].status || strcmp(testenv_error_field(b), cases[i].field) != 0)
			fail_msg("case %zu: %ld \"%s\", want %ld \"%s\"", i, st, testenv_error_field(b),
				 cases[i].status, cases[i].field);
		json_decref(b);
	}
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued'"), 0);
}

static const char *state_of(struct testenv *env, const char *path, json_t **keep)
{
	assert_int_equal(testenv_http(keep, env, "GET", path, ADMIN, NULL), 200);
	return json_string_value(json_object_get(*keep, "state"));
}

static void test_deployment_scale_stop_start_delete(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"name\":\"web\"}"), 201);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/web", ADMIN,
				      "{\"replicas\":5}"), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "replicas")), 5);
	assert_int_equal(json_integer_value(json_object_get(b, "generation")), 2);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/web", ADMIN,
				      "{\"replicas\":-2}"), 400);
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued'"), 1); /* one open item per deployment */

	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/deployments/web", ADMIN, NULL), 409);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "error"), "hint")),
			       "stop it first"));
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/web/start", ADMIN, NULL), 409);
	json_decref(b);

	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/web/stop", ADMIN, NULL), 200);
	/* No replica runs yet, so stopping completes at once; both steps are recorded. */
	assert_string_equal(json_string_value(json_object_get(b, "state")), "stopped");
	json_t *events = json_object_get(b, "events");
	size_t n = json_array_size(events);
	assert_string_equal(json_string_value(json_object_get(json_array_get(events, n - 2), "to")), "stopping");
	assert_string_equal(json_string_value(json_object_get(json_array_get(events, n - 1), "reason")),
			    "no replicas running");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/web/stop", ADMIN, NULL), 409);
	json_decref(b);

	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/web/start", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "state")), "pending");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments/web/stop", ADMIN, NULL), 200);
	assert_string_equal(state_of(env, "/v1/deployments/web", &b), "stopped");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/deployments/web", ADMIN, NULL), 204);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/deployments/web", ADMIN, NULL), 404);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued'"), 0);
	/* The model is free to delete again. */
	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/models/small", ADMIN, NULL), 204);
}

static void test_pool_with_deployment_is_not_deleted(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\"}"), 201);
	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/pools/gpus?force=true", ADMIN, NULL), 409);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "error"), "message")),
			       "used by 1 deployment"));
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_deploy_creates_a_pending_deployment_with_work, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_deployment_load_and_state_names, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_deploy_refuses_what_can_never_fit, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_deploy_bad_input, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_deployment_scale_stop_start_delete, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_with_deployment_is_not_deleted, setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
