/* Warm capacity (pools/pool.h warm_nodes): the reconciler keeps that many
 * idle nodes of an ephemeral pool provisioned, a replica takes one before
 * anything is provisioned and one is provisioned behind it, the idle duty
 * spares them and lets them go when the number is lowered, trouble is a
 * pool event retried next pass, and bad input is refused naming the field.
 * With the call-counting fake provider (ephemeral by default); the same
 * against the fake Kubernetes API server is tests/adapters/
 * test_kubernetes_warm.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "adapters/fake/fake.h"
#include "core/notify.h"
#include "deployments/reconciler.h"
#include "deployments/worker.h"
#include "pools/pool.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static struct worker_config wcfg;
static struct reconciler_config rcfg;
static struct notify warm_taken;
static char pool_id[64];

#define IDLE_SQL                                                                          \
	"SELECT count(*) FROM nodes n WHERE n.state = 'ready' AND NOT EXISTS "            \
	"(SELECT 1 FROM replica_placements rp WHERE rp.node_id = n.id)"

static int setup(void **state)
{
	json_t *b;
	struct nova_err err;
	if (testenv_setup(state) != 0)
		return -1;
	struct testenv *env = *state;
	worker_config_defaults(&wcfg);
	wcfg.base_backoff_ms = 10;
	wcfg.wait_ms = 20;
	if (notify_init(&warm_taken, &err) != 0)
		return -1;
	wcfg.warm_taken = &warm_taken;
	reconciler_config_defaults(&rcfg);
	rcfg.idle_node_grace_s = 0;
	rcfg.failed_wait_ms = 0;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"one\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"), 201);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"eph\",\"provider\":\"fake\",\"config\":{\"nodes\":8},"
				      "\"quotas\":{\"max_nodes\":6},\"warm_nodes\":2}"), 201);
	snprintf(pool_id, sizeof(pool_id), "%s", json_string_value(json_object_get(b, "id")));
	assert_int_equal(json_integer_value(json_object_get(b, "warm_nodes")), 2);
	json_decref(b);
	return 0;
}

static int teardown(void **state)
{
	notify_finish(&warm_taken);
	return testenv_teardown(state);
}

static void pass(struct testenv *env)
{
	struct nova_err err;
	if (reconciler_pass(env->db, &rcfg, &err))
		fail_msg("reconciler: %s", err.message);
}

static void test_a_pool_with_warm_nodes_gets_them_provisioned_and_idle(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	pass(env);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replica_placements"), 0);
	assert_int_equal(fake_resource_count(pool_id), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM node_events WHERE "
				"to_state = 'ready' AND reason = 'provisioned warm (warm_nodes 2)'"), 2);
	/* Kept, not made again, and said so on each. */
	unsigned provisions = fake_calls(pool_id, FAKE_OP_PROVISION);
	pass(env);
	pass(env);
	assert_int_equal(fake_calls(pool_id, FAKE_OP_PROVISION), provisions);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready' "
				"AND state_reason = 'kept warm (warm_nodes 2)'"), 2);
	assert_int_equal(fake_resource_count(pool_id), 2);
	/* Shown by the pool and its create's event. */
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/pools/eph", ADMIN, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "warm_nodes")), 2);
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pool_events WHERE "
				"kind = 'warm_nodes' AND message = 'warm_nodes 2'"), 1);
}

static void test_a_replica_takes_a_warm_node_and_one_is_provisioned_behind_it(void **state)
{
	struct testenv *env = *state;
	pass(env);
	unsigned provisions = fake_calls(pool_id, FAKE_OP_PROVISION);
	unsigned long long seen = notify_seq(&warm_taken);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	/* Placed on a warm node: nothing provisioned for it. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	assert_int_equal(fake_calls(pool_id, FAKE_OP_PROVISION), provisions);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state <> 'terminated'"), 2);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 1);
	/* The worker told the reconciler. */
	assert_true(notify_seq(&warm_taken) > seen);
	/* Its pass provisions one behind it: two idle again. */
	pass(env);
	assert_int_equal(fake_calls(pool_id, FAKE_OP_PROVISION), provisions + 1);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 3);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE "
				"state_reason = 'taken from the warm nodes'"), 1);
	/* A second replica takes the other warm node first, and so on. */
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/d", ADMIN,
				      "{\"replicas\":2}"), 200);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 2);
	assert_int_equal(fake_calls(pool_id, FAKE_OP_PROVISION), provisions + 1);
	pass(env);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
}

static void test_a_node_the_worker_makes_is_not_taken_for_a_warm_one(void **state)
{
	struct testenv *env = *state;
	/* No warm node yet (no pass): the worker makes one for the replica. */
	unsigned long long seen = notify_seq(&warm_taken);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	assert_int_equal(notify_seq(&warm_taken), seen);
	pass(env);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
}

static void test_lowering_warm_nodes_lets_the_idle_ones_go_after_the_grace(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	rcfg.idle_node_grace_s = 1;
	pass(env);
	pass(env);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/pools/eph", ADMIN, "{\"warm_nodes\":0}"), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "warm_nodes")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "quotas"), "max_nodes")), 6);
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pool_events WHERE "
				"kind = 'warm_nodes' AND message = 'warm_nodes 2 -> 0'"), 1);
	/* Kept until now, so their grace starts now. */
	pass(env);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE "
				"state_reason = 'idle; no longer kept warm'"), 2);
	struct timespec ts = {1, 300 * 1000000L};
	nanosleep(&ts, NULL);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state <> 'terminated'"), 0);
	assert_int_equal(fake_resource_count(pool_id), 0);
	rcfg.idle_node_grace_s = 0;
}

static void test_raising_warm_nodes_is_kept_within_the_quota(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	pass(env);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/pools/eph", ADMIN,
				      "{\"warm_nodes\":3,\"quotas\":{\"max_nodes\":3}}"), 200);
	json_decref(b);
	pass(env);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 3);
	/* Taken: no room for another behind it, which the pool's events say
	 * once, however many passes meet it. */
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	pass(env);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state <> 'terminated'"), 3);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pool_events WHERE "
				"kind = 'warm_nodes_failed' AND message LIKE '2 of 3 warm nodes: the pool "
				"is at its quota of 3 nodes'"), 1);
}

static void test_a_warm_node_that_fails_to_provision_is_an_event_and_retried(void **state)
{
	struct testenv *env = *state;
	fake_inject(pool_id, FAKE_OP_PROVISION, FAKE_FAULT_TRANSIENT, 1, 0);
	pass(env);
	/* The first failed and stopped the pass's provisioning. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'provisioning'"), 1);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 0);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pool_events WHERE "
				"kind = 'warm_nodes_failed' AND message LIKE 'a warm node could not be "
				"provisioned, retrying: %'"), 1);
	/* Next pass: the same node is provisioned again (no twin), and the
	 * other one made. */
	pass(env);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes"), 2);
	assert_int_equal(fake_resource_count(pool_id), 2);
	/* A permanent failure fails the node; it is replaced, never in a loop:
	 * one provision call per pass at most for it. */
	pass(env);
	unsigned provisions = fake_calls(pool_id, FAKE_OP_PROVISION);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/pools/eph", ADMIN, "{\"warm_nodes\":3}"), 200);
	fake_inject(pool_id, FAKE_OP_PROVISION, FAKE_FAULT_PERMANENT, 100, 0);
	pass(env);
	assert_int_equal(fake_calls(pool_id, FAKE_OP_PROVISION), provisions + 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'failed'"), 1);
	pass(env);
	assert_int_equal(fake_calls(pool_id, FAKE_OP_PROVISION), provisions + 2);
	assert_int_equal(testenv_query_int(env, IDLE_SQL), 2);
}

static void expect_refused(struct testenv *env, const char *method, const char *path,
			   const char *body, const char *field)
{
	json_t *b = NULL;
	long status = testenv_http(&b, env, method, path, ADMIN, body);
	if (status != 400 || strcmp(testenv_error_field(b), field) != 0)
		fail_msg("%s %s %s: %ld, field \"%s\" (want 400, \"%s\")", method, path, body, status,
			 testenv_error_field(b), field);
	json_decref(b);
}

static void test_bad_warm_nodes_are_refused_naming_the_field(void **state)
{
	struct testenv *env = *state;
	expect_refused(env, "POST", "/v1/pools",
		       "{\"name\":\"w1\",\"provider\":\"fake\",\"warm_nodes\":-1}", "warm_nodes");
	expect_refused(env, "POST", "/v1/pools",
		       "{\"name\":\"w1\",\"provider\":\"fake\",\"warm_nodes\":101}", "warm_nodes");
	expect_refused(env, "POST", "/v1/pools",
		       "{\"name\":\"w1\",\"provider\":\"fake\",\"warm_nodes\":\"2\"}", "warm_nodes");
	/* Static nodes exist anyway. */
	expect_refused(env, "POST", "/v1/pools",
		       "{\"name\":\"w1\",\"provider\":\"fake\",\"config\":{\"mode\":\"static\"},"
		       "\"warm_nodes\":1}", "warm_nodes");
	expect_refused(env, "POST", "/v1/pools",
		       "{\"name\":\"w1\",\"provider\":\"fake\",\"quotas\":{\"max_nodes\":1},"
		       "\"warm_nodes\":2}", "warm_nodes");
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pools WHERE name = 'w1'"), 0);
	/* 0 is fine on a static pool, as is leaving it out. */
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"st\",\"provider\":\"fake\",\"config\":{\"mode\":\"static\"},"
				      "\"warm_nodes\":0}"), 201);
	expect_refused(env, "PATCH", "/v1/pools/st", "{\"warm_nodes\":1}", "warm_nodes");
	expect_refused(env, "PATCH", "/v1/pools/eph", "{\"warm_nodes\":-3}", "warm_nodes");
	expect_refused(env, "PATCH", "/v1/pools/eph", "{\"warm_nodes\":7}", "warm_nodes");
	expect_refused(env, "PATCH", "/v1/pools/eph", "{\"quotas\":{\"max_nodes\":1}}", "quotas.max_nodes");
	expect_refused(env, "PATCH", "/v1/pools/eph", "{\"warm_nodes\":3,\"quotas\":{\"max_nodes\":2}}",
		       "warm_nodes");
	expect_refused(env, "PATCH", "/v1/pools/eph", "{}", "quotas");
	/* Nothing changed, nothing recorded. */
	assert_int_equal(testenv_query_int(env, "SELECT warm_nodes FROM pools WHERE name = 'eph'"), 2);
	assert_int_equal(testenv_query_int(env, "SELECT max_nodes FROM pools WHERE name = 'eph'"), 6);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pool_events WHERE kind = 'warm_nodes'"), 1);
	/* Both at once, consistent: taken. */
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/pools/eph", ADMIN,
				      "{\"warm_nodes\":1,\"quotas\":{\"max_nodes\":1}}"), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_pool_with_warm_nodes_gets_them_provisioned_and_idle,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_replica_takes_a_warm_node_and_one_is_provisioned_behind_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_node_the_worker_makes_is_not_taken_for_a_warm_one,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lowering_warm_nodes_lets_the_idle_ones_go_after_the_grace,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_raising_warm_nodes_is_kept_within_the_quota, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_warm_node_that_fails_to_provision_is_an_event_and_retried,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_warm_nodes_are_refused_naming_the_field, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
