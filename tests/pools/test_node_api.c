/* Nodes over HTTP: list, get (replicas, events), cordon, drain (replicas
 * move elsewhere), uncordon; bad references. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "adapters/fake/fake.h"
#include "deployments/reconciler.h"
#include "deployments/worker.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static struct worker_config wcfg;
static struct reconciler_config rcfg;

static int setup(void **state)
{
	if (testenv_setup(state) != 0)
		return -1;
	struct testenv *env = *state;
	worker_config_defaults(&wcfg);
	wcfg.base_backoff_ms = 10;
	wcfg.wait_ms = 20;
	reconciler_config_defaults(&rcfg);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"one\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"), 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"racks\",\"provider\":\"fake\",\"config\":{\"mode\":\"static\","
				      "\"nodes\":2,\"accelerators_per_node\":2}}"), 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"racks\",\"name\":\"d\",\"replicas\":1}"), 201);
	testenv_worker_drain(env, &wcfg);
	return 0;
}

static void reconcile(struct testenv *env)
{
	struct nova_err err;
	if (reconciler_pass(env->db, &rcfg, &err))
		fail_msg("%s", err.message);
	testenv_worker_drain(env, &wcfg);
}

/* The name of the node holding the one replica. */
static void busy_node(struct testenv *env, char *name, size_t len)
{
	json_t *list;
	size_t i;
	json_t *n;
	name[0] = '\0';
	assert_int_equal(testenv_http(&list, env, "GET", "/v1/nodes?pool=racks", ADMIN, NULL), 200);
	json_array_foreach(list, i, n) {
		char path[128];
		json_t *one;
		snprintf(path, sizeof(path), "/v1/nodes/%s", json_string_value(json_object_get(n, "id")));
		assert_int_equal(testenv_http(&one, env, "GET", path, ADMIN, NULL), 200);
		if (json_array_size(json_object_get(one, "replicas")) == 1)
			snprintf(name, len, "%s", json_string_value(json_object_get(one, "name")));
		json_decref(one);
	}
	json_decref(list);
	assert_true(name[0]);
}

static void test_node_list_and_get(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char name[64], path[128];
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/nodes", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(b), 2);
	json_t *n0 = json_array_get(b, 0);
	assert_string_equal(json_string_value(json_object_get(n0, "state")), "ready");
	assert_string_equal(json_string_value(json_object_get(json_object_get(n0, "pool"), "name")), "racks");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(n0, "accelerators"), "count")), 2);
	json_decref(b);
	busy_node(env, name, sizeof(name));
	snprintf(path, sizeof(path), "/v1/nodes/%s", name);
	assert_int_equal(testenv_http(&b, env, "GET", path, ADMIN, NULL), 200);
	json_t *r = json_array_get(json_object_get(b, "replicas"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "deployment")), "d");
	json_t *events = json_object_get(b, "events");
	assert_string_equal(json_string_value(json_object_get(json_array_get(events, 0), "to")), "provisioning");
	assert_string_equal(json_string_value(json_object_get(json_array_get(events, 1), "to")), "ready");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/nodes/nope", ADMIN, NULL), 404);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/nodes?pool=nope", ADMIN, NULL), 404);
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/nodes", NULL, NULL), 401);
}

static void test_cordoned_node_gets_no_new_replicas(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char name[64], path[128];
	busy_node(env, name, sizeof(name));
	snprintf(path, sizeof(path), "/v1/nodes/%s/cordon", name);
	assert_int_equal(testenv_http(&b, env, "POST", path, ADMIN, NULL), 200);
	assert_true(json_is_true(json_object_get(b, "cordoned")));
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/d", ADMIN, "{\"replicas\":3}"), 200);
	testenv_worker_drain(env, &wcfg);
	/* The other node takes two; the cordoned one keeps only its first. */
	snprintf(path, sizeof(path), "/v1/nodes/%s", name);
	assert_int_equal(testenv_http(&b, env, "GET", path, ADMIN, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(b, "replicas")), 1);
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 3);
}

static void test_drain_moves_replicas_and_uncordon_returns_the_node(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char name[64], path[128];
	busy_node(env, name, sizeof(name));
	snprintf(path, sizeof(path), "/v1/nodes/%s/drain", name);
	assert_int_equal(testenv_http(&b, env, "POST", path, ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "state")), "draining");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", path, ADMIN, NULL), 409); /* already */
	json_decref(b);
	reconcile(env);
	snprintf(path, sizeof(path), "/v1/nodes/%s", name);
	assert_int_equal(testenv_http(&b, env, "GET", path, ADMIN, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(b, "replicas")), 0);
	assert_string_equal(json_string_value(json_object_get(b, "state")), "draining"); /* static: waits */
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	snprintf(path, sizeof(path), "/v1/nodes/%s/uncordon", name);
	assert_int_equal(testenv_http(&b, env, "POST", path, ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "state")), "ready");
	assert_false(json_is_true(json_object_get(b, "cordoned")));
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_node_list_and_get, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_cordoned_node_gets_no_new_replicas, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_drain_moves_replicas_and_uncordon_returns_the_node, setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
