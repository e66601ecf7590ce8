/* Nodes and their state machine, enforced by the database: allowed
 * transitions recorded with reason and time, forbidden ones refused, the
 * token revoked on termination. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "adapters/adapter.h"
#include "core/secret.h"
#include "pools/pool.h"
#include "tests/support/testenv.h"

struct fixture {
	struct testenv env;
	char pool_id[POOL_ID_LEN];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pool *p;
	struct nova_err err;
	if (!f || testenv_db_open(&f->env) != 0)
		return -1;
	adapter_registry_reset();
	if (adapters_register_builtin(true, &err))
		return -1;
	struct pool_spec spec = {.name = "nodes", .provider = "fake",
				 .quotas = {.max_nodes = -1, .max_accelerators = -1}};
	if (pool_create(&p, f->env.db, &spec, NULL, &err)) {
		fprintf(stderr, "%s\n", err.message);
		return -1;
	}
	snprintf(f->pool_id, sizeof(f->pool_id), "%s", p->id);
	pool_free(p);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	testenv_close(&f->env);
	free(f);
	return 0;
}

static PGresult *query1(struct testenv *env, const char *sql, const char *param)
{
	struct db_conn *c;
	PGresult *res = NULL;
	struct nova_err err;
	const char *params[1] = {param};
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	assert_int_equal(db_exec(&res, c, sql, 1, params, &err), 0);
	db_conn_release(env->db, c);
	return res;
}

static void test_node_lifecycle_records_every_transition(void **state)
{
	struct fixture *f = *state;
	char id[POOL_ID_LEN], token[128];
	struct nova_err err;
	struct pool_node_spec spec = {.name = "n1", .accelerator_type = "A100-80G",
				      .accelerator_count = 8, .accelerator_memory_mib = 81920};
	assert_int_equal(pool_node_add(id, token, sizeof(token), f->env.db, f->pool_id, &spec, &err), 0);
	assert_memory_equal(token, "nova-node-", 10);
	static const char *const path[][2] = {
		{"ready", "sidecar up"}, {"unhealthy", "silent 3 intervals"}, {"ready", "heartbeat"},
		{"draining", "operator drain"}, {"terminating", "scale down"}, {"terminated", "gone"},
	};
	for (size_t i = 0; i < 6; i++) {
		enum pool_node_state to;
		assert_int_equal(pool_node_state_parse(&to, path[i][0]), 0);
		assert_string_equal(pool_node_state_name(to), path[i][0]);
		assert_int_equal(pool_node_transition(f->env.db, id, to, path[i][1], &err), 0);
	}
	PGresult *res = query1(&f->env,
			       "SELECT coalesce(from_state, '-'), to_state, reason, at IS NOT NULL "
			       "FROM node_events WHERE node_id = $1::uuid ORDER BY id", id);
	assert_int_equal(PQntuples(res), 7);
	assert_string_equal(PQgetvalue(res, 0, 1), "provisioning");
	for (int i = 1; i < 7; i++) {
		assert_string_equal(PQgetvalue(res, i, 1), path[i - 1][0]);
		assert_string_equal(PQgetvalue(res, i, 2), path[i - 1][1]);
		assert_string_equal(PQgetvalue(res, i, 3), "t");
	}
	assert_string_equal(PQgetvalue(res, 3, 0), "unhealthy");
	PQclear(res);
	res = query1(&f->env, "SELECT token_hash IS NULL FROM nodes WHERE id = $1::uuid", id);
	assert_string_equal(PQgetvalue(res, 0, 0), "t");
	PQclear(res);
}

static void test_node_forbidden_transitions_are_refused(void **state)
{
	struct fixture *f = *state;
	char id[POOL_ID_LEN];
	struct nova_err err;
	struct pool_node_spec spec = {.name = "n2"};
	assert_int_equal(pool_node_add(id, NULL, 0, f->env.db, f->pool_id, &spec, &err), 0);
	/* provisioning -> unhealthy skips ready */
	assert_int_equal(pool_node_transition(f->env.db, id, POOL_NODE_UNHEALTHY, "x", &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "cannot go from provisioning to unhealthy"));
	/* A value that is no state: its name is "unknown", which the table's
	 * CHECK refuses. */
	assert_int_equal(pool_node_transition(f->env.db, id, (enum pool_node_state)99, "x", &err),
			 NOVA_EINVAL);
	enum pool_node_state parsed = POOL_NODE_READY;
	assert_int_equal(pool_node_state_parse(&parsed, "bogus"), NOVA_EINVAL);
	assert_int_equal(parsed, POOL_NODE_READY);
	assert_int_equal(pool_node_state_parse(&parsed, "Ready"), NOVA_EINVAL);
	assert_int_equal(pool_node_transition(f->env.db, id, POOL_NODE_READY, "", &err), NOVA_EINVAL);
	assert_int_equal(pool_node_transition(f->env.db, id, POOL_NODE_TERMINATING, "abort", &err), 0);
	assert_int_equal(pool_node_transition(f->env.db, id, POOL_NODE_TERMINATED, "gone", &err), 0);
	/* terminated is final */
	assert_int_equal(pool_node_transition(f->env.db, id, POOL_NODE_READY, "revive", &err), NOVA_EINVAL);
	PGresult *res = query1(&f->env, "SELECT state FROM nodes WHERE id = $1::uuid", id);
	assert_string_equal(PQgetvalue(res, 0, 0), "terminated");
	PQclear(res);
	assert_int_equal(pool_node_transition(f->env.db, "00000000-0000-0000-0000-000000000000",
					      POOL_NODE_READY, "x", &err), NOVA_ENOTFOUND);
}

static void test_node_names_are_unique_within_a_pool(void **state)
{
	struct fixture *f = *state;
	char id[POOL_ID_LEN];
	struct nova_err err;
	long long live;
	struct pool_node_spec spec = {.name = "same"};
	assert_int_equal(pool_node_add(id, NULL, 0, f->env.db, f->pool_id, &spec, &err), 0);
	assert_int_equal(pool_node_add(id, NULL, 0, f->env.db, f->pool_id, &spec, &err), NOVA_EEXISTS);
	assert_int_equal(pool_node_count_live(&live, f->env.db, f->pool_id, &err), 0);
	assert_int_equal(live, 1);
}

static void test_node_token_hash_matches_issued_token(void **state)
{
	struct fixture *f = *state;
	char id[POOL_ID_LEN], token[128];
	struct nova_err err;
	struct pool_node_spec spec = {.name = "tok"};
	assert_int_equal(pool_node_add(id, token, sizeof(token), f->env.db, f->pool_id, &spec, &err), 0);
	PGresult *res = query1(&f->env, "SELECT token_hash FROM nodes WHERE id = $1::uuid", id);
	assert_true(secret_matches_hash(token, PQgetvalue(res, 0, 0)));
	assert_false(secret_matches_hash("nova-node-wrong", PQgetvalue(res, 0, 0)));
	PQclear(res);
}

/* One provisioner at a time per node: the lease is exclusive until given
 * back or expired, and only for the state asked for. */
static void test_provision_lease_is_exclusive_and_expires(void **state)
{
	struct fixture *f = *state;
	char id[POOL_ID_LEN];
	struct nova_err err;
	bool got;
	struct pool_node_spec spec = {.name = "leased"};
	assert_int_equal(pool_node_add(id, NULL, 0, f->env.db, f->pool_id, &spec, &err), 0);
	assert_int_equal(pool_node_lease_take(&got, f->env.db, id, POOL_NODE_PROVISIONING, 60000, &err), 0);
	assert_true(got);
	assert_int_equal(pool_node_lease_take(&got, f->env.db, id, POOL_NODE_PROVISIONING, 60000, &err), 0);
	assert_false(got);
	assert_int_equal(pool_node_lease_release(f->env.db, id, &err), 0);
	assert_int_equal(pool_node_lease_take(&got, f->env.db, id, POOL_NODE_PROVISIONING, 1, &err), 0);
	assert_true(got);
	/* A 1 ms lease is over by the next statement's now(). */
	struct timespec ts = {0, 20 * 1000000L};
	nanosleep(&ts, NULL);
	assert_int_equal(pool_node_lease_take(&got, f->env.db, id, POOL_NODE_PROVISIONING, 60000, &err), 0);
	assert_true(got);
	assert_int_equal(pool_node_lease_release(f->env.db, id, &err), 0);
	assert_int_equal(pool_node_lease_take(&got, f->env.db, id, POOL_NODE_READY, 60000, &err), 0);
	assert_false(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_node_lifecycle_records_every_transition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_forbidden_transitions_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_names_are_unique_within_a_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_token_hash_matches_issued_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provision_lease_is_exclusive_and_expires, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
