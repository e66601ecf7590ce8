/* Autoscaling over the API and the autoscaler's tick on a real database:
 * the policy on create and PATCH (bad input named, manual scale refused,
 * null turns it off), a router's waiting request scaling a deployment up
 * from zero with the reason in an event, and the window surviving a new
 * autoscaler (a restarted novad). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autoscaler/autoscaler.h"
#include "deployments/deployment.h"
#include "deployments/worker.h"
#include "inventory/demand.h"
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
				      "\"quotas\":{\"max_accelerators\":6}}"), 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"small\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"), 201);
	return 0;
}

static const char *reason_of_last(const json_t *d, const char *kind)
{
	const json_t *evs = json_object_get(d, "events");
	for (size_t i = json_array_size(evs); i-- > 0;) {
		const json_t *e = json_array_get(evs, i);
		if (!strcmp(json_string_value(json_object_get(e, "kind")), kind))
			return json_string_value(json_object_get(e, "reason"));
	}
	return "";
}

static void test_policy_on_create_and_patch(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	/* Bad input names the field. */
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"autoscale\":{"
				      "\"min_replicas\":3,\"max_replicas\":2,\"target_queue_depth\":4}}"),
			 400);
	assert_string_equal(testenv_error_field(b), "autoscale.min_replicas");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"autoscale\":{"
				      "\"max_replicas\":2,\"target_qeue_depth\":4}}"), 400);
	assert_string_equal(testenv_error_field(b), "autoscale.target_qeue_depth");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"replicas\":5,\"autoscale\":{"
				      "\"max_replicas\":2,\"target_queue_depth\":4}}"), 400);
	assert_string_equal(testenv_error_field(b), "replicas");
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM deployments"), 0);

	/* Created autoscaled: it starts at min_replicas (at least one). */
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"name\":\"auto\",\"autoscale\":{"
				      "\"min_replicas\":2,\"max_replicas\":4,\"target_queue_depth\":4}}"),
			 201);
	assert_int_equal(json_integer_value(json_object_get(b, "replicas")), 2);
	json_t *a = json_object_get(b, "autoscale");
	assert_int_equal(json_integer_value(json_object_get(a, "max_replicas")), 4);
	assert_int_equal(json_integer_value(json_object_get(a, "scale_down_window_s")), 300);
	assert_true(json_real_value(json_object_get(a, "target_queue_depth")) == 4);
	assert_true(json_is_null(json_object_get(json_object_get(b, "autoscaler"), "last_decision")));
	json_decref(b);

	/* A manual scale is refused, saying how to change the policy. */
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/auto", ADMIN,
				      "{\"replicas\":3}"), 409);
	assert_string_equal(testenv_error_field(b), "replicas");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "error"), "hint")),
			       "novactl deployment autoscale auto"));
	json_decref(b);

	/* A manual deployment gets a policy: its count is clamped, and says so. */
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"name\":\"manual\","
				      "\"replicas\":4}"), 201);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/manual", ADMIN,
				      "{\"autoscale\":{\"min_replicas\":0,\"max_replicas\":2,"
				      "\"target_tokens_per_second\":50,\"idle_s\":600}}"), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "replicas")), 2);
	assert_string_equal(reason_of_last(b, "autoscale"),
			    "autoscale on: min 0, max 2; replicas 4 -> 2 (max_replicas)");
	json_decref(b);
	/* Both at once: the count given, within the bounds. */
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/manual", ADMIN,
				      "{\"replicas\":1,\"autoscale\":{\"max_replicas\":3,"
				      "\"target_queue_depth\":2}}"), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "replicas")), 1);
	json_decref(b);
	/* Off: the count stays, and a manual scale works again. */
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/manual", ADMIN,
				      "{\"autoscale\":null}"), 200);
	assert_true(json_is_null(json_object_get(b, "autoscale")));
	assert_int_equal(json_integer_value(json_object_get(b, "replicas")), 1);
	assert_string_equal(reason_of_last(b, "autoscale"), "autoscale off: replicas stay at 1");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/manual", ADMIN,
				      "{\"replicas\":3}"), 200);
	/* An empty PATCH and an unknown member are refused by name. */
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/manual", ADMIN, "{}"), 400);
	assert_string_equal(testenv_error_field(b), "replicas");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/manual", ADMIN,
				      "{\"autoscale\":{\"max_replicas\":3,\"target_queue_depth\":2,"
				      "\"window\":5}}"), 400);
	assert_string_equal(testenv_error_field(b), "autoscale.window");
	json_decref(b);
	/* The events feed carries the kind. */
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/events?deployment=manual", ADMIN, NULL), 200);
	bool seen = false;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(b, "events"), i, e)
		seen = seen || !strcmp(json_string_value(json_object_get(e, "kind")), "autoscale");
	assert_true(seen);
	json_decref(b);
}

static void demand(struct testenv *env, const char *text)
{
	struct nova_err err;
	json_t *j = json_loads(text, 0, NULL);
	nova_err_clear(&err);
	assert_int_equal(inventory_demand_report(env->db, j, &err), 0);
	json_decref(j);
}

static struct autoscaler *autoscaler(struct testenv *env)
{
	struct autoscaler_config cfg;
	struct autoscaler *a = NULL;
	struct nova_err err;
	autoscaler_config_defaults(&cfg);
	assert_int_equal(autoscaler_create(&a, env->db, NULL, &cfg, &err), 0);
	return a;
}

static void test_tick_scales_from_zero_and_keeps_its_window(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	struct autoscaler *a = autoscaler(env);
	json_t *b;
	int scaled = 0;
	long long t = 1700000000000LL;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"name\":\"z\",\"replicas\":0,"
				      "\"autoscale\":{\"min_replicas\":0,\"max_replicas\":8,"
				      "\"target_queue_depth\":2}}"), 201);
	/* Quiet: nothing to do, nothing written. */
	assert_int_equal(autoscaler_tick(&scaled, a, t, &err), 0);
	assert_int_equal(scaled, 0);
	/* Five requests wait at a router: ceil(5 / 2) = 3. */
	demand(env, "{\"router\":\"r1\",\"models\":{\"small\":{\"waiting\":4,\"in_flight\":0},"
		    "\"small/sql-lora\":{\"waiting\":1,\"in_flight\":0},"
		    "\"other\":{\"waiting\":9,\"in_flight\":0}}}");
	assert_int_equal(autoscaler_tick(&scaled, a, t + 1000, &err), 0);
	assert_int_equal(scaled, 1);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/deployments/z", ADMIN, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "replicas")), 3);
	assert_string_equal(reason_of_last(b, "scaled"), "scaled 0 -> 3: 5 requests waiting");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "autoscaler"),
							      "last_decision")),
			    "scaled 0 -> 3: 5 requests waiting");
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = "
						"'queued'"), 1);
	/* Above the pool's quota (6 accelerators, one a replica): capped. */
	demand(env, "{\"router\":\"r1\",\"models\":{\"small\":{\"waiting\":40,\"in_flight\":3}}}");
	assert_int_equal(autoscaler_tick(&scaled, a, t + 2000, &err), 0);
	assert_int_equal(testenv_query_int(env, "SELECT replicas FROM deployments WHERE name = 'z'"), 6);
	/* The demand ends; a new autoscaler (a restarted novad) goes on with
	 * the stored window: nothing falls before it passed. */
	demand(env, "{\"router\":\"r1\",\"models\":{}}");
	assert_int_equal(autoscaler_tick(&scaled, a, t + 3000, &err), 0);
	autoscaler_destroy(a);
	a = autoscaler(env);
	assert_int_equal(autoscaler_tick(&scaled, a, t + 10000, &err), 0);
	assert_int_equal(scaled, 0);
	assert_int_equal(testenv_query_int(env, "SELECT replicas FROM deployments WHERE name = 'z'"), 6);
	/* The stored window ends 300 s after the 6 was last asked for (t + 3 s);
	 * a memory started afresh at t + 10 s would hold until t + 310 s. */
	assert_int_equal(autoscaler_tick(&scaled, a, t + 303500, &err), 0);
	assert_int_equal(scaled, 1);
	/* min 0 without idle_s: one stays. */
	assert_int_equal(testenv_query_int(env, "SELECT replicas FROM deployments WHERE name = 'z'"), 1);
	struct autoscaler_counters c;
	autoscaler_counters_get(&c, a);
	assert_int_equal(c.scaled_down, 1);
	autoscaler_destroy(a);
	/* A stopped deployment is left alone. */
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments/z/stop", ADMIN, NULL), 200);
	a = autoscaler(env);
	demand(env, "{\"router\":\"r1\",\"models\":{\"small\":{\"waiting\":40,\"in_flight\":3}}}");
	assert_int_equal(autoscaler_tick(&scaled, a, t + 400000, &err), 0);
	assert_int_equal(scaled, 0);
	autoscaler_destroy(a);
}

/* Standby replicas: started beyond the count (the worker makes them),
 * marked in the replica list, counted against the quota; bad input named. */
static void test_standby_replicas(void **state)
{
	struct testenv *env = *state;
	struct worker_config wcfg;
	json_t *b;
	worker_config_defaults(&wcfg);
	wcfg.base_backoff_ms = 10;
	wcfg.wait_ms = 20;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"standby_replicas\":-1}"),
			 400);
	assert_string_equal(testenv_error_field(b), "standby_replicas");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"replicas\":600,"
				      "\"standby_replicas\":600}"), 400);
	assert_string_equal(testenv_error_field(b), "standby_replicas");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"small\",\"pool\":\"gpus\",\"name\":\"s\",\"replicas\":1,"
				      "\"standby_replicas\":2}"), 201);
	assert_int_equal(json_integer_value(json_object_get(b, "standby_replicas")), 2);
	json_decref(b);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/deployments/s", ADMIN, NULL), 200);
	json_t *list = json_object_get(b, "replica_list");
	assert_int_equal(json_array_size(list), 3);
	assert_false(json_is_true(json_object_get(json_array_get(list, 0), "standby")));
	assert_true(json_is_true(json_object_get(json_array_get(list, 1), "standby")));
	assert_true(json_is_true(json_object_get(json_array_get(list, 2), "standby")));
	json_decref(b);
	/* A scale-up makes the standby numbered 1 serve; one more is made. */
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/s", ADMIN,
				      "{\"replicas\":2}"), 200);
	assert_false(json_is_true(json_object_get(json_array_get(json_object_get(b, "replica_list"), 1),
						  "standby")));
	json_decref(b);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas r JOIN deployments d "
						"ON d.id = r.deployment_id WHERE d.name = 's'"), 4);
	/* Autoscaled: the standby count still changes; the quota (6
	 * accelerators, one a replica) less the 1 standby leaves 5 to the autoscaler. */
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/s", ADMIN,
				      "{\"autoscale\":{\"max_replicas\":8,\"target_queue_depth\":1}}"), 200);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/s", ADMIN,
				      "{\"standby_replicas\":1}"), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "standby_replicas")), 1);
	json_decref(b);
	struct deployment_autoscaled *as = NULL;
	size_t n = 0;
	struct nova_err err;
	assert_int_equal(deployment_autoscaled_list(&as, &n, env->db, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(as[0].quota_max, 5);
	deployment_autoscaled_free(as, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_policy_on_create_and_patch, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_tick_scales_from_zero_and_keeps_its_window, setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_standby_replicas, setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
