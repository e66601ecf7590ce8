/* The deployment worker against the fake provider and a real database:
 * placement and provisioning, static and ephemeral pools, quotas, faults
 * (transient, permanent, a lost answer, a slow call), stop, and fencing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "adapters/fake/fake.h"
#include "deployments/deployment.h"
#include "deployments/worker.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static struct worker_config cfg;

static int setup(void **state)
{
	if (testenv_setup(state) != 0)
		return -1;
	struct testenv *env = *state;
	worker_config_defaults(&cfg);
	snprintf(cfg.owner, sizeof(cfg.owner), "test-a");
	cfg.base_backoff_ms = 10;
	cfg.max_backoff_ms = 40;
	cfg.wait_ms = 20;
	cfg.lease_ms = 10000;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"one\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"), 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"gang\",\"kind\":\"spec_decode\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"draft\",\"accelerators\":1},"
				      "{\"name\":\"target\",\"accelerators\":2}]}"), 201);
	*state = env;
	return 0;
}

/* The pool the test made last: fake_* calls take its id, deploy() its name. */
static char pool_id[64], pool_name[64];

static void make_pool(struct testenv *env, const char *body)
{
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN, body), 201);
	snprintf(pool_id, sizeof(pool_id), "%s", json_string_value(json_object_get(b, "id")));
	snprintf(pool_name, sizeof(pool_name), "%s", json_string_value(json_object_get(b, "name")));
	json_decref(b);
}

/* A fake static pool of nodes with per_node accelerators each. */
static void static_pool(struct testenv *env, const char *name, int nodes, int per_node)
{
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"name\":\"%s\",\"provider\":\"fake\",\"config\":{\"mode\":\"static\","
		 "\"nodes\":%d,\"accelerators_per_node\":%d}}", name, nodes, per_node);
	make_pool(env, body);
}

/* Deployment name of model on the last pool; replicas < 0 leaves the
 * count to the API's default. */
static void deploy(struct testenv *env, const char *name, const char *model, int replicas)
{
	char body[256], count[32] = "";
	if (replicas >= 0)
		snprintf(count, sizeof(count), ",\"replicas\":%d", replicas);
	snprintf(body, sizeof(body), "{\"model\":\"%s\",\"pool\":\"%s\"%s,\"name\":\"%s\"}", model,
		 pool_name, count, name);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN, body), 201);
}

static void scale(struct testenv *env, const char *name, int replicas)
{
	char path[128], body[64];
	snprintf(path, sizeof(path), "/v1/deployments/%s", name);
	snprintf(body, sizeof(body), "{\"replicas\":%d}", replicas);
	assert_int_equal(testenv_http(NULL, env, "PATCH", path, ADMIN, body), 200);
}

static json_t *get_dep(struct testenv *env, const char *name)
{
	char path[128];
	json_t *b;
	snprintf(path, sizeof(path), "/v1/deployments/%s", name);
	assert_int_equal(testenv_http(&b, env, "GET", path, ADMIN, NULL), 200);
	return b;
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void test_ephemeral_pool_gets_nodes_and_binpacked_replicas(void **state)
{
	struct testenv *env = *state;
	make_pool(env, "{\"name\":\"eph\",\"provider\":\"fake\",\"config\":{\"accelerators_per_node\":2,"
		       "\"nodes\":8}}");
	deploy(env, "d", "one", 3);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 3);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 2);
	assert_int_equal(fake_resource_count(pool_id), 2);
	json_t *d = get_dep(env, "d");
	assert_string_equal(str(d, "state"), "deploying");
	assert_string_equal(str(d, "state_reason"), "0 of 3 replicas ready");
	json_decref(d);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued'"), 0);
	/* Scale down: replicas go, the nodes stay for reuse. */
	scale(env, "d", 1);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replica_placements"), 1);
	/* Stop: every replica goes and the deployment is stopped. */
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments/d/stop", ADMIN, NULL), 200);
	d = get_dep(env, "d");
	assert_string_equal(str(d, "state"), "stopping");
	json_decref(d);
	testenv_worker_drain(env, &cfg);
	d = get_dep(env, "d");
	assert_string_equal(str(d, "state"), "stopped");
	json_decref(d);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas"), 0);
}

static void test_static_pool_nodes_are_discovered_claimed_and_filled(void **state)
{
	struct testenv *env = *state;
	static_pool(env, "racks", 2, 2);
	deploy(env, "s", "one", 5);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 2);
	assert_int_equal(fake_resource_count(pool_id), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 4);
	json_t *d = get_dep(env, "s");
	assert_string_equal(str(d, "state"), "deploying");
	assert_non_null(strstr(str(d, "state_reason"), "4 of 5 replicas placed; no capacity"));
	json_decref(d);
	/* It keeps waiting, without failing, until capacity appears. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued' AND attempts < 2"), 1);
	scale(env, "s", 4);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued'"), 0);
}

/* A running deployment whose replicas all lost their nodes, with nothing
 * to place them on now, waits (deploying, then pending) with the reason:
 * it does not fail (the state machine has no running -> pending). */
static void test_a_running_deployment_with_nothing_placed_waits_without_failing(void **state)
{
	struct testenv *env = *state;
	static_pool(env, "one-rack", 1, 1);
	deploy(env, "r", "one", 1);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	struct nova_err err;
	assert_int_equal(db_pool_exec(NULL, env->db, "UPDATE replicas SET state = 'ready', endpoint = 'http://x'",
				      0, NULL, &err), 0);
	scale(env, "r", 1);
	testenv_worker_drain(env, &cfg);
	json_t *d = get_dep(env, "r");
	assert_string_equal(str(d, "state"), "running");
	json_decref(d);
	/* Its node is cordoned and its replica loses its place (as the
	 * reconciler does for a failed node). */
	assert_int_equal(db_pool_exec(NULL, env->db, "UPDATE nodes SET cordoned = true", 0, NULL, &err), 0);
	assert_int_equal(db_pool_exec(NULL, env->db, "DELETE FROM replica_placements", 0, NULL, &err), 0);
	assert_int_equal(db_pool_exec(NULL, env->db, "UPDATE replicas SET state = 'pending', endpoint = NULL",
				      0, NULL, &err), 0);
	scale(env, "r", 1);
	testenv_worker_drain(env, &cfg);
	d = get_dep(env, "r");
	assert_string_equal(str(d, "state"), "pending"); /* by way of deploying */
	assert_non_null(strstr(str(d, "state_reason"), "no capacity"));
	json_decref(d);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM deployment_events WHERE "
				"from_state = 'running' AND to_state = 'deploying'"), 1);
	/* Room again: placed. */
	assert_int_equal(db_pool_exec(NULL, env->db, "UPDATE nodes SET cordoned = false", 0, NULL, &err), 0);
	scale(env, "r", 1);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
}

/* A pending deployment whose replicas are all ready when a pass runs (they
 * became ready after the pass that left it pending) goes to running by way
 * of deploying: pending -> running is no step of the state machine, and
 * the refused write used to fail the deployment. */
static void test_a_pending_deployment_with_every_replica_ready_runs(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	static_pool(env, "one-rack", 1, 1);
	deploy(env, "r", "one", 1);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE replicas SET state = 'ready', endpoint = 'http://x'", 0, NULL,
				      &err), 0);
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE deployments SET state = 'pending', state_reason = 'test: back "
				      "to pending' WHERE state <> 'pending' AND state <> 'running'",
				      0, NULL, &err), 0);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM deployments WHERE state = 'pending'"), 1);
	scale(env, "r", 1);
	testenv_worker_drain(env, &cfg);
	json_t *d = get_dep(env, "r");
	assert_string_equal(str(d, "state"), "running");
	json_decref(d);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM deployment_events WHERE "
				"from_state = 'pending' AND to_state = 'deploying' AND reason = 'all replicas ready'"), 1);
}

/* Another worker takes the room between this one's view and its write:
 * the write finds the node full and does not overcommit; the replica is
 * placed on the other node instead. */
static bool race_done;

static void take_the_room(void *ctx, const char *node_id)
{
	struct testenv *race_env = ctx;
	struct db_conn *c;
	struct nova_err err;
	const char *params[1] = {node_id};
	if (race_done)
		return;
	race_done = true;
	assert_int_equal(db_conn_acquire(&c, race_env->db, &err), 0);
	/* A replica of another deployment fills the node. */
	assert_int_equal(db_exec(NULL, c,
				 "WITH d AS (SELECT id FROM deployments WHERE name = 'other'), "
				 "r AS (INSERT INTO replicas (deployment_id, ordinal, state) "
				 "SELECT id, 99, 'placed' FROM d RETURNING id) "
				 "INSERT INTO replica_placements (replica_id, stage, node_id, accelerators) "
				 "SELECT r.id, 0, $1::uuid, n.accelerator_count FROM r, nodes n WHERE n.id = $1::uuid",
				 1, params, &err), 0);
	db_conn_release(race_env->db, c);
}

static void test_a_node_filled_meanwhile_is_not_overcommitted(void **state)
{
	struct testenv *env = *state;
	static_pool(env, "racks", 2, 1);
	deploy(env, "other", "one", 0);
	testenv_worker_drain(env, &cfg);
	race_done = false;
	struct worker_config racing = cfg;
	racing.test_before_placement_write = take_the_room;
	racing.test_ctx = env;
	deploy(env, "s", "one", 1);
	testenv_worker_drain(env, &racing);
	assert_true(race_done);
	/* No node holds more than it has, and the replica found the other. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes n WHERE n.accelerator_count < "
				"(SELECT coalesce(sum(accelerators), 0) FROM replica_placements rp WHERE rp.node_id = n.id)"), 0);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas r JOIN deployments d "
				"ON d.id = r.deployment_id WHERE d.name = 's' AND r.state = 'placed'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(DISTINCT node_id) FROM replica_placements"), 2);
}

/* A replica reports ready while a pass over its deployment is running (the
 * pass read the replicas before): the pass must not end the deployment's
 * work item, or the report is never looked at (the deployment stayed at
 * "1 of 2 replicas ready"). The item is queued again (sql/0008), and the
 * next pass sees the replica ready. */
static void report_first_replica_ready(void *ctx, const char *node_id)
{
	struct testenv *race_env = ctx;
	struct nova_err err;
	PGresult *res = NULL;
	(void)node_id;
	if (race_done)
		return;
	race_done = true;
	assert_int_equal(db_pool_exec(&res, race_env->db,
				      "SELECT r.id::text, rp.node_id::text FROM replicas r "
				      "JOIN replica_placements rp ON rp.replica_id = r.id "
				      "WHERE r.ordinal = 0", 0, NULL, &err), 0);
	assert_int_equal(PQntuples(res), 1);
	json_t *reports = json_pack("[{s:s, s:s, s:s}]", "replica_id", PQgetvalue(res, 0, 0), "state",
				    "ready", "endpoint", "http://127.0.0.1:1");
	if (deployment_replicas_report(race_env->db, PQgetvalue(res, 0, 1), 0, reports, &err))
		fail_msg("report: %s", err.message);
	json_decref(reports);
	PQclear(res);
}

static void test_a_report_during_a_pass_gets_another_pass(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	bool did;
	static_pool(env, "rp", 2, 1);
	deploy(env, "rd", "one", 1);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	race_done = false;
	struct worker_config racing = cfg;
	racing.test_before_placement_write = report_first_replica_ready;
	racing.test_ctx = env;
	scale(env, "rd", 2);
	assert_int_equal(worker_run_once(&did, env->db, &racing, &err), 0);
	assert_true(did);
	assert_true(race_done);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items w JOIN deployments d "
				"ON d.id = w.subject_id WHERE d.name = 'rd' AND w.state = 'queued'"), 1);
	testenv_worker_drain(env, &cfg);
	json_t *d = get_dep(env, "rd");
	assert_non_null(strstr(str(d, "state_reason"), "1 of 2"));
	json_decref(d);
}

static void test_gang_places_every_stage_or_none(void **state)
{
	struct testenv *env = *state;
	static_pool(env, "g", 2, 2);
	deploy(env, "gd", "gang", 2);
	testenv_worker_drain(env, &cfg);
	/* 4 accelerators: the first gang takes 3 (draft 1 + target 2); the
	 * second has room for its draft but not its target, so takes nothing. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replica_placements"), 2);
	assert_int_equal(testenv_query_int(env, "SELECT coalesce(sum(accelerators), 0) FROM replica_placements"), 3);
	json_t *d = get_dep(env, "gd");
	assert_non_null(strstr(str(d, "state_reason"), "stage target needs 2"));
	json_decref(d);
}

static void test_quota_keeps_deployment_pending_with_reason(void **state)
{
	struct testenv *env = *state;
	make_pool(env, "{\"name\":\"small\",\"provider\":\"fake\",\"config\":{\"nodes\":8},"
		       "\"quotas\":{\"max_nodes\":1}}");
	deploy(env, "q", "one", 2);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	json_t *d = get_dep(env, "q");
	assert_non_null(strstr(str(d, "state_reason"), "quota of 1 nodes"));
	json_decref(d);
	/* Raising the quota lets it proceed. */
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/pools/small", ADMIN,
				      "{\"quotas\":{\"max_nodes\":2}}"), 200);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 2);
}

static void test_transient_and_lost_answers_make_no_twins(void **state)
{
	struct testenv *env = *state;
	make_pool(env, "{\"name\":\"flaky\",\"provider\":\"fake\",\"config\":{\"nodes\":8,"
		       "\"faults\":{\"provision\":{\"kind\":\"lost_answer\",\"times\":1}}}}");
	fake_inject(pool_id, FAKE_OP_PROVISION, FAKE_FAULT_LOST_ANSWER, 1, 0);
	deploy(env, "f", "one", 2);
	testenv_worker_drain(env, &cfg);
	/* The answer was lost once: the retry found the same resource. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 2);
	assert_int_equal(fake_resource_count(pool_id), 2);
	assert_true(fake_calls(pool_id, FAKE_OP_PROVISION) >= 3);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE last_error LIKE '%lost in transit%'"
				" OR state = 'done'"), 1);

	fake_inject(pool_id, FAKE_OP_PROVISION, FAKE_FAULT_TRANSIENT, 2, 0);
	scale(env, "f", 3);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 3);
	assert_int_equal(fake_resource_count(pool_id), 3);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes"), 3);
}

static void test_permanent_error_fails_node_and_deployment_with_message(void **state)
{
	struct testenv *env = *state;
	make_pool(env, "{\"name\":\"broken\",\"provider\":\"fake\"}");
	fake_inject(pool_id, FAKE_OP_PROVISION, FAKE_FAULT_PERMANENT, 1, 0);
	deploy(env, "b", "one", -1);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'failed' AND "
				"state_reason LIKE '%injected permanent failure%'"), 1);
	json_t *d = get_dep(env, "b");
	assert_string_equal(str(d, "state"), "failed");
	assert_non_null(strstr(str(d, "state_reason"), "injected permanent failure"));
	json_decref(d);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'failed'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'failed' AND "
				"state_reason LIKE '%injected permanent failure%'"), 1);
}

static void test_transient_errors_are_bounded(void **state)
{
	struct testenv *env = *state;
	make_pool(env, "{\"name\":\"down\",\"provider\":\"fake\"}");
	fake_inject(pool_id, FAKE_OP_PROVISION, FAKE_FAULT_TRANSIENT, 1000, 0);
	deploy(env, "t", "one", -1);
	testenv_worker_drain(env, &cfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'failed' AND attempts = 8"), 1);
	assert_int_equal(fake_calls(pool_id, FAKE_OP_PROVISION), 8);
	json_t *d = get_dep(env, "t");
	assert_string_equal(str(d, "state"), "failed");
	json_decref(d);
	/* The node row written first is there, provisioning, never twinned. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes"), 1);
	assert_int_equal(fake_resource_count(pool_id), 0);
}

struct slow_arg {
	struct testenv *env;
	struct worker_config cfg;
	int rc;
};

static void *slow_worker(void *arg)
{
	struct slow_arg *a = arg;
	struct nova_err err;
	bool did;
	a->rc = worker_run_once(&did, a->env->db, &a->cfg, &err);
	return NULL;
}

/* A worker that stalls past its lease cannot commit: another takes the item
 * over, and the stalled one's writes are refused. */
static void test_fencing_a_stalled_worker_commits_nothing(void **state)
{
	struct testenv *env = *state;
	pthread_t th;
	static_pool(env, "slow", 1, 4);
	deploy(env, "sl", "one", 2);
	/* Armed after the deploy, whose feasibility check discovers too. */
	fake_inject(pool_id, FAKE_OP_DISCOVER, FAKE_FAULT_SLOW, 1, 600);
	struct slow_arg a = {env, cfg, 0};
	snprintf(a.cfg.owner, sizeof(a.cfg.owner), "stalled");
	a.cfg.lease_ms = 200;
	pthread_create(&th, NULL, slow_worker, &a);
	struct timespec ts = {0, 400 * 1000000L};
	nanosleep(&ts, NULL); /* the stalled worker's lease has expired by now */
	snprintf(cfg.owner, sizeof(cfg.owner), "rescuer");
	testenv_worker_drain(env, &cfg);
	pthread_join(th, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas"), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replica_placements"), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes"), 1);
	assert_int_equal(fake_resource_count(pool_id), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'done'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT fence FROM work_items"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ephemeral_pool_gets_nodes_and_binpacked_replicas, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_report_during_a_pass_gets_another_pass, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_static_pool_nodes_are_discovered_claimed_and_filled, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_node_filled_meanwhile_is_not_overcommitted, setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_pending_deployment_with_every_replica_ready_runs,
						setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_running_deployment_with_nothing_placed_waits_without_failing,
						setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_gang_places_every_stage_or_none, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_quota_keeps_deployment_pending_with_reason, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_transient_and_lost_answers_make_no_twins, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_permanent_error_fails_node_and_deployment_with_message, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_transient_errors_are_bounded, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_fencing_a_stalled_worker_commits_nothing, setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
