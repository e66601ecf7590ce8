/* Shared load (sql/0024, inventory.h): two inventories on one database, as
 * two novads behind a load balancer. A replica report one of them took
 * reaches the other's loads with its read; the newest heartbeat sequence
 * wins and an older report changes nothing; an unchanged report is not
 * written again; a read touches only rows the others wrote since the last;
 * and a row committed late by a transaction that began before a read is
 * not skipped by the cursor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/ids.h"
#include "inventory/inventory.h"
#include "inventory/inventory_int.h"
#include "pools/pool.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN
#define R1 "00000000-0000-4000-8000-000000000021"

struct fx {
	struct testenv env;
	struct inventory *other; /* the second novad's inventory */
	char pool_id[64];
	char node[POOL_ID_LEN], token[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct inventory_config cfg;
	struct nova_err err;
	json_t *b;
	if (!f || testenv_gateway_start(&f->env, 64 * 1024) != 0)
		return -1;
	assert_int_equal(testenv_http(&b, &f->env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"p\",\"provider\":\"fake\"}"), 201);
	snprintf(f->pool_id, sizeof(f->pool_id), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	struct pool_node_spec sa = {.name = "a"};
	assert_int_equal(pool_node_add(f->node, f->token, sizeof(f->token), f->env.db, f->pool_id, &sa, &err), 0);
	assert_int_equal(pool_node_transition(f->env.db, f->node, POOL_NODE_READY, "provisioned", &err), 0);
	assert_int_equal(db_pool_exec(NULL, f->env.db, "UPDATE nodes SET endpoint = '127.0.0.1'", 0, NULL,
				      &err), 0);
	inventory_config_defaults(&cfg);
	if (inventory_create(&f->other, f->env.db, &cfg, &err))
		fail_msg("second inventory: %s", err.message);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	inventory_destroy(f->other);
	testenv_close(&f->env);
	free(f);
	return 0;
}

/* A heartbeat of the node with one ready replica R1 whose queue_depth is
 * qd, taken by inv. */
static void beat(struct inventory *inv, struct fx *f, long long seq, int qd)
{
	char text[512];
	struct nova_err err;
	char *answer = NULL;
	snprintf(text, sizeof(text),
		 "{\"seq\":%lld,\"replicas\":[{\"replica_id\":\"" R1 "\",\"state\":\"ready\","
		 "\"endpoint\":\"http://127.0.0.1:9000\",\"load\":{\"queue_depth\":%d},"
		 "\"adapters_loaded\":[\"a%d\"]}]}",
		 seq, qd, qd);
	json_t *body = json_loads(text, 0, NULL);
	assert_non_null(body);
	if (inventory_heartbeat(&answer, inv, f->node, f->token, body, &err))
		fail_msg("heartbeat: %s", err.message);
	free(answer);
	json_decref(body);
}

static void flush(struct inventory *inv)
{
	struct nova_err err;
	if (inventory_flush(inv, &err))
		fail_msg("flush: %s", err.message);
}

static void read_loads(struct inventory *inv)
{
	struct nova_err err;
	if (inventory_loads_read(inv, &err))
		fail_msg("read: %s", err.message);
}

/* R1's queue_depth in inv's loads_of (-1: none). */
static int qd_of(struct fx *f, struct inventory *inv)
{
	json_t *ask = json_pack("{s:s}", R1, f->node);
	json_t *got = inventory_loads_of(inv, ask);
	json_t *v = json_object_get(json_object_get(got, R1), "queue_depth");
	int qd = json_is_integer(v) ? (int)json_integer_value(v) : -1;
	json_decref(got);
	json_decref(ask);
	return qd;
}

static long long q(struct fx *f, const char *sql)
{
	return testenv_query_int(&f->env, sql);
}

static unsigned long long stat_read(struct inventory *inv)
{
	struct inventory_status st;
	inventory_status_get(&st, inv);
	return st.loads_read;
}

static unsigned long long stat_written(struct inventory *inv)
{
	struct inventory_status st;
	inventory_status_get(&st, inv);
	return st.loads_written;
}

/* The other novad took the heartbeat; this one never heard of the node
 * (it has not read the fleet since it was added), yet after its read its
 * loads, loads_of (the drain's check) and loaded adapters show it. */
static void test_a_load_another_novad_took_is_read_here(void **state)
{
	struct fx *f = *state;
	beat(f->other, f, 10, 7);
	flush(f->other);
	assert_int_equal(qd_of(f, f->env.inventory), -1);
	read_loads(f->env.inventory);
	assert_int_equal(qd_of(f, f->env.inventory), 7);
	json_t *loads = inventory_loads(f->env.inventory);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(loads, R1), "queue_depth")), 7);
	json_decref(loads);
	json_t *ad = inventory_adapters_loaded(f->env.inventory);
	assert_string_equal(json_string_value(json_array_get(json_object_get(ad, R1), 0)), "a7");
	json_decref(ad);
	/* And back: the load falls to 0 through the other novad, and this one
	 * no longer shows the 7 it read (nor one it took itself). */
	beat(f->other, f, 11, 0);
	flush(f->other);
	read_loads(f->env.inventory);
	assert_int_equal(qd_of(f, f->env.inventory), 0);
}

/* This novad took sequence 20 (not yet flushed); the other wrote 15 before
 * it: the older report read changes nothing here. Then the other takes 30:
 * the newer one wins, and this novad takes 25 as stale. */
static void test_an_older_report_changes_nothing_and_a_newer_one_wins(void **state)
{
	struct fx *f = *state;
	beat(f->other, f, 15, 9);
	flush(f->other);
	beat(f->env.inventory, f, 20, 1);
	read_loads(f->env.inventory);
	assert_int_equal(qd_of(f, f->env.inventory), 1);
	assert_true(stat_read(f->env.inventory) >= 1); /* it was read, and ignored */
	flush(f->env.inventory); /* 20 is the database's now */
	assert_int_equal(q(f, "SELECT seq FROM node_loads"), 20);
	beat(f->other, f, 30, 4);
	flush(f->other);
	read_loads(f->env.inventory);
	assert_int_equal(qd_of(f, f->env.inventory), 4);
	/* The other novad holds 30 too, having read 20 meanwhile or not. */
	read_loads(f->other);
	assert_int_equal(qd_of(f, f->other), 4);
	json_t *answer_body = json_loads("{\"seq\":25}", 0, NULL);
	char *answer = NULL;
	struct nova_err err;
	assert_int_equal(inventory_heartbeat(&answer, f->env.inventory, f->node, f->token, answer_body,
					     &err), 0);
	json_t *a = json_loads(answer, 0, NULL);
	assert_true(json_is_false(json_object_get(a, "accepted")));
	json_decref(a);
	free(answer);
	json_decref(answer_body);
}

/* The merge rule itself, on one inventory: newer sequence wins, equal and
 * older are ignored, whatever their content. */
static void test_the_merge_rule_newer_sequence_wins(void **state)
{
	struct fx *f = *state;
	unsigned char id[16];
	assert_true(ids_uuid_parse(id, f->node));
	json_t *r5 = json_pack("[{s:s, s:s, s:{s:i}}]", "replica_id", R1, "state", "ready", "load",
			       "queue_depth", 5);
	json_t *r6 = json_pack("[{s:s, s:s, s:{s:i}}]", "replica_id", R1, "state", "ready", "load",
			       "queue_depth", 6);
	json_t *r3 = json_pack("[{s:s, s:s, s:{s:i}}]", "replica_id", R1, "state", "ready", "load",
			       "queue_depth", 3);
	assert_true(inv_loads_merge(f->env.inventory, id, 100, 1, r5));
	assert_int_equal(qd_of(f, f->env.inventory), 5);
	assert_false(inv_loads_merge(f->env.inventory, id, 100, 2, r6)); /* equal */
	assert_int_equal(qd_of(f, f->env.inventory), 5);
	assert_false(inv_loads_merge(f->env.inventory, id, 99, 3, r3)); /* older */
	assert_int_equal(qd_of(f, f->env.inventory), 5);
	/* A heartbeat this novad takes is newer still: it wins. */
	beat(f->env.inventory, f, 101, 8);
	assert_int_equal(qd_of(f, f->env.inventory), 8);
	json_t *r2 = json_pack("[{s:s, s:s, s:{s:i}}]", "replica_id", R1, "state", "ready", "load",
			       "queue_depth", 2);
	assert_false(inv_loads_merge(f->env.inventory, id, 100, 4, r2));
	assert_int_equal(qd_of(f, f->env.inventory), 8);
}

/* Only a changed report is written, and a read touches only the rows the
 * other novads wrote since the last: none of its own, none twice once no
 * transaction is running. */
static void test_only_changes_are_written_and_read(void **state)
{
	struct fx *f = *state;
	beat(f->other, f, 1, 3);
	flush(f->other);
	assert_int_equal(stat_written(f->other), 1);
	beat(f->other, f, 2, 3); /* the same report */
	flush(f->other);
	assert_int_equal(stat_written(f->other), 1);
	assert_int_equal(q(f, "SELECT seq FROM node_loads"), 1);
	assert_int_equal(q(f, "SELECT last_seq FROM node_heartbeats"), 2);
	beat(f->other, f, 3, 4);
	flush(f->other);
	assert_int_equal(stat_written(f->other), 2);
	assert_int_equal(q(f, "SELECT seq FROM node_loads"), 3);
	/* Its own rows are not read back. */
	read_loads(f->other);
	assert_int_equal(stat_read(f->other), 0);
	read_loads(f->env.inventory);
	unsigned long long once = stat_read(f->env.inventory);
	assert_int_equal(once, 1);
	read_loads(f->env.inventory);
	read_loads(f->env.inventory);
	assert_int_equal(stat_read(f->env.inventory), once);
	/* What another novad holds (read from the table) is not written
	 * again by this one when a heartbeat it takes reports the same. */
	beat(f->env.inventory, f, 4, 4);
	flush(f->env.inventory);
	assert_int_equal(stat_written(f->env.inventory), 0);
	beat(f->env.inventory, f, 5, 6);
	flush(f->env.inventory);
	assert_int_equal(stat_written(f->env.inventory), 1);
	read_loads(f->other);
	assert_int_equal(qd_of(f, f->other), 6);
}

/* A transaction that wrote a row and commits only after a later one did
 * (its number is lower, its commit later) is still read: the cursor is the
 * oldest transaction running at the read, not the highest number read. */
static void test_a_row_committed_late_is_not_skipped(void **state)
{
	struct fx *f = *state;
	struct db_conn *c;
	struct nova_err err;
	char other_node[POOL_ID_LEN], other_token[128];
	struct pool_node_spec sb = {.name = "b"};
	assert_int_equal(pool_node_add(other_node, other_token, sizeof(other_token), f->env.db,
				       f->pool_id, &sb, &err), 0);
	const char *params[2] = {f->node, other_node};
	assert_int_equal(db_conn_acquire(&c, f->env.db, &err), 0);
	assert_int_equal(db_tx_begin(c, &err), 0);
	/* The slow writer: a row for node a, uncommitted. */
	assert_int_equal(db_exec(NULL, c,
				 "INSERT INTO node_loads (node_id, seq, reports, sum, written_by, written_xid) "
				 "VALUES ($1::uuid, 50, '[{\"replica_id\": \"" R1 "\", \"state\": \"ready\", "
				 "\"load\": {\"queue_depth\": 50}}]', 1, gen_random_uuid(), pg_current_xact_id())",
				 1, params, &err), 0);
	/* A later transaction, committed at once, for node b. */
	assert_int_equal(db_pool_exec(NULL, f->env.db,
				      "INSERT INTO node_loads (node_id, seq, reports, sum, written_by, written_xid) "
				      "VALUES ($1::uuid, 1, '[]', 2, gen_random_uuid(), pg_current_xact_id())",
				      1, params + 1, &err), 0);
	read_loads(f->env.inventory);
	assert_int_equal(stat_read(f->env.inventory), 1); /* b's */
	assert_int_equal(qd_of(f, f->env.inventory), -1);
	assert_int_equal(db_tx_commit(c, &err), 0);
	db_conn_release(f->env.db, c);
	read_loads(f->env.inventory);
	assert_int_equal(qd_of(f, f->env.inventory), 50);
}

/* A flush that fails gives its reports back: the next one writes them. */
static void test_a_failed_flush_writes_the_report_next_time(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	beat(f->other, f, 1, 3);
	assert_int_equal(db_pool_exec(NULL, f->env.db, "ALTER TABLE node_loads RENAME TO node_loads_away",
				      0, NULL, &err), 0);
	assert_int_not_equal(inventory_flush(f->other, &err), 0);
	assert_int_equal(db_pool_exec(NULL, f->env.db, "ALTER TABLE node_loads_away RENAME TO node_loads",
				      0, NULL, &err), 0);
	flush(f->other);
	assert_int_equal(q(f, "SELECT (reports -> 0 -> 'load' ->> 'queue_depth')::int FROM node_loads"), 3);
	read_loads(f->env.inventory);
	assert_int_equal(qd_of(f, f->env.inventory), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_load_another_novad_took_is_read_here, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_older_report_changes_nothing_and_a_newer_one_wins,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_merge_rule_newer_sequence_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_changes_are_written_and_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_row_committed_late_is_not_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_failed_flush_writes_the_report_next_time, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
