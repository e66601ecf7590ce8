/* The reconciler: orphans deprovisioned, replicas on failed nodes replaced,
 * idle ephemeral nodes removed, one leader at a time with takeover. */
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
#include "core/ids.h"
#include "deployments/reconciler.h"
#include "deployments/worker.h"
#include "pools/pool.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static struct worker_config wcfg;
static struct reconciler_config rcfg;
static char pool_id[64];

static int setup(void **state)
{
	json_t *b;
	if (testenv_setup(state) != 0)
		return -1;
	struct testenv *env = *state;
	worker_config_defaults(&wcfg);
	wcfg.base_backoff_ms = 10;
	wcfg.wait_ms = 20;
	reconciler_config_defaults(&rcfg);
	rcfg.idle_node_grace_s = 0;
	rcfg.interval_ms = 100;
	rcfg.failed_wait_ms = 0;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"one\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"), 201);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"eph\",\"provider\":\"fake\",\"config\":{\"nodes\":8}}"), 201);
	snprintf(pool_id, sizeof(pool_id), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	*state = env;
	return 0;
}

static void pass(struct testenv *env)
{
	struct nova_err err;
	if (reconciler_pass(env->db, &rcfg, &err))
		fail_msg("reconciler: %s", err.message);
}

/* The id of the pool's one node. */
static void the_node_id(char *buf, size_t len, struct testenv *env)
{
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT id FROM nodes", 0, NULL, &err), 0);
	snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	db_conn_release(env->db, c);
}

static void test_orphan_resource_is_deprovisioned(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(fake_resource_count(pool_id), 1);
	/* A resource created by a novad that crashed before its commit. */
	assert_int_equal(fake_resource_plant(pool_id, "0badc0de-0000-4000-8000-000000000001", &err), 0);
	assert_int_equal(fake_resource_count(pool_id), 2);
	pass(env);
	assert_int_equal(fake_resource_count(pool_id), 1);
	assert_int_equal(fake_resource_count_for(pool_id, "0badc0de-0000-4000-8000-000000000001"), 0);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
}

static void test_twin_resource_is_deprovisioned_and_the_real_one_kept(void **state)
{
	struct testenv *env = *state;
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	char node[64], handle[256];
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT id, handle FROM nodes", 0, NULL, &err), 0);
	snprintf(node, sizeof(node), "%s", PQgetvalue(res, 0, 0));
	snprintf(handle, sizeof(handle), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	db_conn_release(env->db, c);
	/* A second resource carrying the same node id: a twin. */
	assert_int_equal(fake_resource_plant(pool_id, node, &err), 0);
	assert_int_equal(fake_resource_count_for(pool_id, node), 2);
	pass(env);
	assert_int_equal(fake_resource_count_for(pool_id, node), 1);
	struct adapter_node_info info;
	struct adapter *ad;
	json_t *cfg = json_object();
	assert_int_equal(adapter_create(&ad, &fake_adapter_ops, pool_id, cfg, &err), 0);
	struct adapter_node_ref ref = {.node_id = node, .handle = handle};
	assert_int_equal(adapter_node_status(&info, ad, &ref, &err), 0);
	assert_string_equal(info.handle, handle); /* the recorded one survived */
	adapter_destroy(ad);
	json_decref(cfg);
}

/* A static node whose resource this novad sees as gone is provisioned
 * again only once it has gone silent: while it is ready its agent beats,
 * wherever it runs (another novad's view may be the right one). */
static void test_a_static_node_is_provisioned_again_only_once_silent(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	json_t *b;
	char spool[64], node[64];
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"racks\",\"provider\":\"fake\",\"config\":{\"mode\":"
				      "\"static\",\"nodes\":1,\"accelerators_per_node\":2}}"), 201);
	snprintf(spool, sizeof(spool), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"racks\",\"name\":\"s\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes n JOIN pools p ON "
						"p.id = n.pool_id WHERE p.name = 'racks' AND n.state = 'ready'"), 1);
	struct db_conn *c;
	PGresult *res;
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT n.id FROM nodes n JOIN pools p ON "
					      "p.id = n.pool_id WHERE p.name = 'racks'", 0, NULL, &err), 0);
	snprintf(node, sizeof(node), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	db_conn_release(env->db, c);
	assert_int_equal(fake_resource_set_state(spool, node, ADAPTER_NODE_GONE, &err), 0);
	unsigned before = fake_calls(spool, FAKE_OP_PROVISION);
	snprintf(rcfg.gateway_url, sizeof(rcfg.gateway_url), "http://127.0.0.1:1");
	pass(env);
	assert_int_equal(fake_calls(spool, FAKE_OP_PROVISION), before);
	assert_int_equal(pool_node_transition(env->db, node, POOL_NODE_UNHEALTHY, "silent", &err), 0);
	pass(env);
	assert_int_equal(fake_calls(spool, FAKE_OP_PROVISION), before + 1);
	rcfg.gateway_url[0] = '\0';
}

/* A pool bound to another machine (its nodes are that machine's
 * processes): this novad's worker takes none of its deployments' work and
 * its reconciler touches none of its nodes; bound to this machine, both
 * do. */
static void test_a_pool_bound_to_another_machine_is_left_alone(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	char here[IDS_MACHINE_LEN], sql[256];
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"far\",\"provider\":\"fake\",\"config\":{\"nodes\":4}}"), 201);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pools WHERE machine IS NULL"), 2);
	db_pool_exec(NULL, env->db, "UPDATE pools SET machine = 'elsewhere-1' WHERE name = 'far'", 0,
		     NULL, &err);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"far\",\"name\":\"f\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 0);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued' "
						"AND attempts = 0"), 1);
	/* Its machine's now: the work is taken. */
	ids_machine_id(here);
	snprintf(sql, sizeof(sql), "UPDATE pools SET machine = '%s' WHERE name = 'far'", here);
	assert_int_equal(db_pool_exec(NULL, env->db, sql, 0, NULL, &err), 0);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	/* Elsewhere again, its node failed: the reconciler neither moves the
	 * replica nor removes the node. */
	db_pool_exec(NULL, env->db, "UPDATE pools SET machine = 'elsewhere-1' WHERE name = 'far'", 0,
		     NULL, &err);
	char node[64];
	struct db_conn *c;
	PGresult *res;
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT n.id FROM nodes n JOIN pools p ON p.id = n.pool_id "
					      "WHERE p.name = 'far'", 0, NULL, &err), 0);
	snprintf(node, sizeof(node), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	db_conn_release(env->db, c);
	assert_int_equal(pool_node_transition(env->db, node, POOL_NODE_FAILED, "test", &err), 0);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'failed'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	/* A forced delete of such a pool (a node, no deployment) is refused
	 * here: its nodes cannot be stopped from this machine. */
	json_t *b;
	char far2[64], nid[POOL_ID_LEN];
	struct pool_node_spec ns = {.name = "n"};
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"far2\",\"provider\":\"fake\"}"), 201);
	snprintf(far2, sizeof(far2), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	assert_int_equal(pool_node_add(nid, NULL, 0, env->db, far2, &ns, &err), 0);
	db_pool_exec(NULL, env->db, "UPDATE pools SET machine = 'elsewhere-1' WHERE name = 'far2'", 0,
		     NULL, &err);
	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/pools/far2?force=true", ADMIN, NULL), 409);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "error"), "message")),
			       "machine elsewhere-1"));
	json_decref(b);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pools WHERE name = 'far2' "
						"AND state = 'active'"), 1);
	/* Bound here: the failed node's replica moves and the node goes. */
	assert_int_equal(db_pool_exec(NULL, env->db, sql, 0, NULL, &err), 0);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'failed'"), 0);
}

static void test_node_stuck_provisioning_times_out(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	char id[POOL_ID_LEN];
	struct pool_node_spec spec = {.name = "stuck"};
	assert_int_equal(pool_node_add(id, NULL, 0, env->db, pool_id, &spec, &err), 0);
	struct reconciler_config quick = rcfg;
	quick.provision_timeout_s = 0;
	struct timespec ts = {0, 20 * 1000000L};
	nanosleep(&ts, NULL);
	if (reconciler_pass(env->db, &quick, &err))
		fail_msg("%s", err.message);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM node_events WHERE to_state = 'failed' "
				"AND reason = 'provisioning timed out'"), 1);
	/* A failed ephemeral node is then removed. */
	if (reconciler_pass(env->db, &quick, &err))
		fail_msg("%s", err.message);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'terminated'"), 1);
}

static void test_replicas_on_a_failed_node_are_replaced(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	char failed[64];
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	the_node_id(failed, sizeof(failed), env);
	assert_int_equal(pool_node_transition(env->db, failed, POOL_NODE_FAILED, "heartbeats stopped", &err), 0);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'pending'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'terminated'"), 1);
	assert_int_equal(fake_resource_count(pool_id), 0);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 1);
	assert_int_equal(fake_resource_count(pool_id), 1);
}

/* A node failed for silence whose agent beats after the failure (it was
 * judged wrongly: the database or novad was away) is ready again with its
 * replica where it was and its resource kept; one failed for silence that
 * stays silent is left while it may still be heard from, then replaced. */
static void test_a_node_failed_for_silence_that_beats_again_is_kept(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	char node[64];
	const char *params[1] = {node};
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	the_node_id(node, sizeof(node), env);
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE node_heartbeats SET last_seq = 1, last_heartbeat_at = now() - "
				      "interval '1 minute' WHERE node_id = $1::uuid", 1, params, &err), 0);
	assert_int_equal(pool_node_transition(env->db, node, POOL_NODE_FAILED, "no heartbeat for 30000 ms", &err), 0);
	/* Within the wait, nothing is done to it. */
	rcfg.failed_wait_ms = 60000;
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'failed'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replica_placements"), 1);
	/* Its agent beats after the failure: ready, nothing replaced. */
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE node_heartbeats SET last_seq = 2, last_heartbeat_at = clock_timestamp() "
				      "WHERE node_id = $1::uuid", 1, params, &err), 0);
	pass(env);
	rcfg.failed_wait_ms = 0;
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM node_events WHERE from_state = 'failed' "
				"AND to_state = 'ready'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replica_placements"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	assert_int_equal(fake_resource_count(pool_id), 1);
	/* Failed for silence again, and silent past the wait: replaced. */
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '1 minute' "
				      "WHERE node_id = $1::uuid", 1, params, &err), 0);
	assert_int_equal(pool_node_transition(env->db, node, POOL_NODE_FAILED, "no heartbeat for 30000 ms", &err), 0);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'terminated'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'pending'"), 1);
	assert_int_equal(fake_resource_count(pool_id), 0);
}

/* A node failed for silence is waited for at least 3 of the heartbeat
 * intervals it was last told (sql/0023): one told 100 s may beat 100 s
 * after its last, long after the configured wait. */
static void test_a_node_told_a_long_interval_is_waited_for_three_of_them(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	enum pool_failed_fate fate = POOL_FAILED_REVIVED;
	char node[64];
	const char *params[1] = {node};
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	the_node_id(node, sizeof(node), env);
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE node_heartbeats SET last_seq = 1, last_heartbeat_at = now() - "
				      "interval '10 minutes', interval_ms = 100000 WHERE node_id = $1::uuid",
				      1, params, &err), 0);
	assert_int_equal(pool_node_transition(env->db, node, POOL_NODE_FAILED, "no heartbeat for 600000 ms",
					      &err), 0);
	/* Failed 2 minutes ago: past the configured wait (1 s), within 3 x 100 s. */
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE node_events SET at = now() - interval '2 minutes' "
				      "WHERE node_id = $1::uuid AND to_state = 'failed'", 1, params, &err), 0);
	assert_int_equal(pool_node_failed_fate(&fate, env->db, node, 1000, &err), 0);
	assert_int_equal(fate, POOL_FAILED_WAIT);
	/* Told the configured interval (or nothing recorded): the wait alone. */
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE node_heartbeats SET interval_ms = NULL WHERE node_id = $1::uuid",
				      1, params, &err), 0);
	assert_int_equal(pool_node_failed_fate(&fate, env->db, node, 1000, &err), 0);
	assert_int_equal(fate, POOL_FAILED_RETIRE);
}

/* The provider says a node's resource failed (a pod Failed): the node
 * fails with the provider's words, its replica moves and a new node takes
 * it. */
static void test_a_resource_the_provider_reports_failed_fails_its_node(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	char node[64];
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	the_node_id(node, sizeof(node), env);
	/* Running: nothing happens. */
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 1);
	assert_int_equal(fake_resource_set_state(pool_id, node, ADAPTER_NODE_FAILED, &err), 0);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM node_events WHERE to_state = 'failed' "
				"AND reason LIKE '%failed%'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'pending'"), 1);
	pass(env); /* the failed node is retired */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'terminated'"), 1);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 1);
}

static void test_idle_ephemeral_nodes_are_removed(void **state)
{
	struct testenv *env = *state;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\",\"replicas\":2}"), 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(fake_resource_count(pool_id), 2);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/d", ADMIN,
				      "{\"replicas\":1}"), 200);
	testenv_worker_drain(env, &wcfg);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 1);
	assert_int_equal(fake_resource_count(pool_id), 1);
	/* The node still in use stays. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replica_placements rp JOIN nodes n "
				"ON n.id = rp.node_id WHERE n.state = 'ready'"), 1);
}

/* Heartbeats keep touching an idle node's row: it is still removed once
 * it has had nothing placed for the grace period. */
static void test_an_idle_node_that_heartbeats_is_still_removed(void **state)
{
	struct testenv *env = *state;
	struct db_conn *c;
	struct nova_err err;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\",\"replicas\":2}"), 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/d", ADMIN,
				      "{\"replicas\":1}"), 200);
	testenv_worker_drain(env, &wcfg);
	rcfg.idle_node_grace_s = 1;
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE idle_since IS NOT NULL"), 1);
	for (int i = 0; i < 3; i++) {
		struct timespec ts = {0, 400 * 1000000L};
		nanosleep(&ts, NULL);
		assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
		assert_int_equal(db_exec(NULL, c, "UPDATE node_heartbeats SET last_heartbeat_at = now()", 0, NULL, &err), 0);
		db_conn_release(env->db, c);
	}
	pass(env);
	rcfg.idle_node_grace_s = 0;
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 1);
	assert_int_equal(fake_resource_count(pool_id), 1);
}

static void test_stuck_item_fails_and_drift_gets_work(void **state)
{
	struct testenv *env = *state;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"eph\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(env, &wcfg);
	/* Someone removed a replica row behind the worker's back: drift. */
	struct db_conn *c;
	struct nova_err err;
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	assert_int_equal(db_exec(NULL, c, "DELETE FROM replicas", 0, NULL, &err), 0);
	/* And an item whose worker died on its last attempt. */
	assert_int_equal(db_exec(NULL, c,
				 "INSERT INTO work_items (kind, subject_id, attempts, max_attempts, "
				 "lock_owner, lock_expires_at) VALUES ('deployment', gen_random_uuid(), 8, 8, "
				 "'dead', now() - interval '1 minute')", 0, NULL, &err), 0);
	db_conn_release(env->db, c);
	pass(env);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'failed'"), 1);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM work_items WHERE state = 'queued'"), 1);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM replicas WHERE state = 'placed'"), 1);
}

static void test_one_leader_and_takeover(void **state)
{
	struct testenv *env = *state;
	struct db_pool *other;
	struct reconciler *a, *b;
	struct notify wake_a, wake_b;
	struct nova_err err;
	assert_int_equal(db_pool_create(&other, env->conninfo, &(struct db_pool_config){.size = 2}, &err), 0);
	/* Two novads: each its own runtime's notifier. */
	assert_int_equal(notify_init(&wake_a, &err), 0);
	assert_int_equal(notify_init(&wake_b, &err), 0);
	struct reconciler_config cfg_a = rcfg, cfg_b = rcfg;
	cfg_a.wake = &wake_a;
	cfg_b.wake = &wake_b;
	assert_int_equal(reconciler_start(&a, env->db, &cfg_a, &err), 0);
	for (int i = 0; i < 100 && !reconciler_is_leader(a); i++) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_true(reconciler_is_leader(a));
	assert_int_equal(reconciler_start(&b, other, &cfg_b, &err), 0);
	struct timespec wait = {0, 400 * 1000000L};
	nanosleep(&wait, NULL);
	assert_false(reconciler_is_leader(b));
	reconciler_stop(a); /* the holder goes away */
	for (int i = 0; i < 100 && !reconciler_is_leader(b); i++) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_true(reconciler_is_leader(b));
	reconciler_stop(b);
	notify_finish(&wake_a);
	notify_finish(&wake_b);
	db_pool_destroy(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_orphan_resource_is_deprovisioned, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_twin_resource_is_deprovisioned_and_the_real_one_kept, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_static_node_is_provisioned_again_only_once_silent,
						setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_pool_bound_to_another_machine_is_left_alone, setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_node_stuck_provisioning_times_out, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_replicas_on_a_failed_node_are_replaced, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_node_failed_for_silence_that_beats_again_is_kept,
						setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_node_told_a_long_interval_is_waited_for_three_of_them,
						setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_resource_the_provider_reports_failed_fails_its_node,
						setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_idle_ephemeral_nodes_are_removed, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_an_idle_node_that_heartbeats_is_still_removed, setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_stuck_item_fails_and_drift_gets_work, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_one_leader_and_takeover, setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
