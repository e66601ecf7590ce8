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

static void add_node(struct fixture *f, char id[POOL_ID_LEN], const char *name,
		     enum pool_node_state to)
{
	struct nova_err err;
	struct pool_node_spec spec = {.name = name, .accelerator_count = 4};
	assert_int_equal(pool_node_add(id, NULL, 0, f->env.db, f->pool_id, &spec, &err), 0);
	if (to != POOL_NODE_PROVISIONING)
		assert_int_equal(pool_node_transition(f->env.db, id, POOL_NODE_READY, "up", &err), 0);
	if (to != POOL_NODE_PROVISIONING && to != POOL_NODE_READY)
		assert_int_equal(pool_node_transition(f->env.db, id, to, "set", &err), 0);
}

static const char *node_state(struct fixture *f, const char *id, char *buf, size_t len)
{
	PGresult *res = query1(&f->env, "SELECT state || ':' || state_reason FROM nodes WHERE id = $1::uuid", id);
	snprintf(buf, len, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	return buf;
}

/* The health writes other modules make through pools: the sweep's marks
 * (only from the states the machine allows, each with its reason) and the
 * flush's pool_nodes_heard (unhealthy -> ready, failed untouched). */
static void test_node_health_marks(void **state)
{
	struct fixture *f = *state;
	char a[POOL_ID_LEN], b[POOL_ID_LEN], u[POOL_ID_LEN], x[POOL_ID_LEN], prov[POOL_ID_LEN];
	char lit[256], buf[128];
	struct pool_node_mark *marks;
	size_t n;
	struct db_conn *c;
	struct nova_err err;
	add_node(f, a, "a", POOL_NODE_READY);
	add_node(f, b, "b", POOL_NODE_READY);
	add_node(f, u, "u", POOL_NODE_UNHEALTHY);
	add_node(f, x, "x", POOL_NODE_DRAINING);
	add_node(f, prov, "p", POOL_NODE_PROVISIONING);
	assert_int_equal(db_conn_acquire(&c, f->env.db, &err), 0);
	assert_int_equal(db_tx_begin(c, &err), 0);
	/* a: ready -> unhealthy; u is already unhealthy (no change); b: ready ->
	 * failed; x (draining) and p (provisioning) are in no state a sweep
	 * moves. */
	snprintf(lit, sizeof(lit), "{%s,%s,%s}", a, u, x);
	char failed_lit[128];
	snprintf(failed_lit, sizeof(failed_lit), "{%s,%s}", b, prov);
	assert_int_equal(pool_nodes_mark_silent(&marks, &n, c, lit, "no heartbeat for 6000 ms",
						failed_lit, "no heartbeat for 30000 ms", &err), 0);
	assert_int_equal(db_tx_commit(c, &err), 0);
	db_conn_release(f->env.db, c);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(marks[i].id, a))
			assert_int_equal(marks[i].state, POOL_NODE_UNHEALTHY);
		else
			assert_true(!strcmp(marks[i].id, b) && marks[i].state == POOL_NODE_FAILED);
	}
	free(marks);
	assert_string_equal(node_state(f, a, buf, sizeof(buf)), "unhealthy:no heartbeat for 6000 ms");
	assert_string_equal(node_state(f, b, buf, sizeof(buf)), "failed:no heartbeat for 30000 ms");
	assert_string_equal(node_state(f, x, buf, sizeof(buf)), "draining:set");
	assert_string_equal(node_state(f, prov, buf, sizeof(buf)), "provisioning:created");

	/* A row another transaction holds is skipped, not waited for. */
	struct db_conn *holder;
	char one[64];
	snprintf(one, sizeof(one), "{%s}", u);
	const char *hp[1] = {u};
	assert_int_equal(db_conn_acquire(&holder, f->env.db, &err), 0);
	assert_int_equal(db_tx_begin(holder, &err), 0);
	assert_int_equal(db_exec(NULL, holder, "SELECT 1 FROM nodes WHERE id = $1::uuid FOR UPDATE",
				 1, hp, &err), 0);
	assert_int_equal(db_conn_acquire(&c, f->env.db, &err), 0);
	assert_int_equal(db_tx_begin(c, &err), 0);
	assert_int_equal(pool_nodes_mark_silent(&marks, &n, c, "{}", "r1", one, "r2", &err), 0);
	assert_int_equal(n, 0);
	free(marks);
	db_tx_rollback(c);
	db_conn_release(f->env.db, c);
	db_tx_rollback(holder);
	db_conn_release(f->env.db, holder);

	/* The flush's side: unhealthy nodes that beat are ready again; a
	 * failed one is not. */
	snprintf(lit, sizeof(lit), "{%s,%s,%s}", a, b, u);
	PGresult *res = query1(&f->env, "SELECT pool_nodes_heard($1::uuid[])", lit);
	assert_string_equal(PQgetvalue(res, 0, 0), "2");
	PQclear(res);
	assert_string_equal(node_state(f, a, buf, sizeof(buf)), "ready:heartbeat resumed");
	assert_string_equal(node_state(f, u, buf, sizeof(buf)), "ready:heartbeat resumed");
	assert_string_equal(node_state(f, b, buf, sizeof(buf)), "failed:no heartbeat for 30000 ms");
	res = query1(&f->env, "SELECT count(*) FROM node_events WHERE node_id = $1::uuid "
			      "AND to_state = 'ready' AND reason = 'heartbeat resumed'", a);
	assert_string_equal(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
}

/* Idle marks: set on a ready node that holds nothing, cleared when it holds
 * something; listed once past the grace. */
static void test_node_idle_marks(void **state)
{
	struct fixture *f = *state;
	char a[POOL_ID_LEN], b[POOL_ID_LEN], d[POOL_ID_LEN], busy[64];
	char(*idle)[POOL_ID_LEN];
	size_t n;
	struct nova_err err;
	add_node(f, a, "a", POOL_NODE_READY);
	add_node(f, b, "b", POOL_NODE_READY);
	add_node(f, d, "d", POOL_NODE_DRAINING);
	snprintf(busy, sizeof(busy), "{%s}", b);
	assert_int_equal(pool_nodes_idle_mark(&idle, &n, f->env.db, f->pool_id, busy, 3600, 0, &err), 0);
	assert_int_equal(n, 0); /* a is idle since now: not past the grace */
	free(idle);
	PGresult *res = query1(&f->env, "SELECT string_agg(name, ',' ORDER BY name) FROM nodes "
			       "WHERE pool_id = $1::uuid AND idle_since IS NOT NULL", f->pool_id);
	assert_string_equal(PQgetvalue(res, 0, 0), "a");
	PQclear(res);
	assert_int_equal(pool_nodes_idle_mark(&idle, &n, f->env.db, f->pool_id, busy, 0, 0, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(idle[0], a);
	free(idle);
	/* a holds something now, b nothing. */
	snprintf(busy, sizeof(busy), "{%s}", a);
	assert_int_equal(pool_nodes_idle_mark(&idle, &n, f->env.db, f->pool_id, busy, 3600, 0, &err), 0);
	assert_int_equal(n, 0);
	free(idle);
	res = query1(&f->env, "SELECT string_agg(name, ',' ORDER BY name) FROM nodes "
			      "WHERE pool_id = $1::uuid AND idle_since IS NOT NULL", f->pool_id);
	assert_string_equal(PQgetvalue(res, 0, 0), "b");
	PQclear(res);
}

/* Locking for a placement: found nodes in id order with their room; a
 * cordoned or not-ready node takes nothing; an unknown id is absent. */
static void test_node_reserve(void **state)
{
	struct fixture *f = *state;
	char a[POOL_ID_LEN], b[POOL_ID_LEN], p[POOL_ID_LEN], lit[200];
	struct pool_node_room *rooms;
	size_t n;
	struct db_conn *c;
	struct nova_err err;
	json_t *out;
	add_node(f, a, "a", POOL_NODE_READY);
	add_node(f, b, "b", POOL_NODE_READY);
	add_node(f, p, "p", POOL_NODE_PROVISIONING);
	assert_int_equal(pool_node_cordon(&out, f->env.db, b, true, NULL, &err), 0);
	json_decref(out);
	snprintf(lit, sizeof(lit), "{%s,%s,%s,00000000-0000-0000-0000-000000000000}", a, b, p);
	assert_int_equal(db_conn_acquire(&c, f->env.db, &err), 0);
	assert_int_equal(db_tx_begin(c, &err), 0);
	assert_int_equal(pool_nodes_reserve(&rooms, &n, c, lit, &err), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		if (i)
			assert_true(strcmp(rooms[i - 1].id, rooms[i].id) < 0);
		assert_int_equal(rooms[i].accelerator_count, 4);
		assert_int_equal(rooms[i].schedulable, !strcmp(rooms[i].id, a));
	}
	free(rooms);
	/* Held: another transaction's lock on a waits (NOWAIT fails). */
	struct db_conn *other;
	const char *params[1] = {a};
	assert_int_equal(db_conn_acquire(&other, f->env.db, &err), 0);
	assert_int_not_equal(db_exec(NULL, other, "SELECT 1 FROM nodes WHERE id = $1::uuid FOR UPDATE NOWAIT",
				     1, params, &err), 0);
	db_conn_release(f->env.db, other);
	db_tx_rollback(c);
	db_conn_release(f->env.db, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_node_lifecycle_records_every_transition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_forbidden_transitions_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_names_are_unique_within_a_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_token_hash_matches_issued_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provision_lease_is_exclusive_and_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_health_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_idle_marks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_reserve, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
