/* The event plane (events/events.h, sql/0022) against a real PostgreSQL:
 * ids in commit order without gaps whatever the insert order, the kinds a
 * reader asks for, the models a route change names, retention and its
 * bound, and the listener woken by NOTIFY (or, without a LISTEN, by its
 * poll). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "events/events.h"
#include "tests/support/testdb.h"

struct fx {
	char conninfo[512];
	struct db_pool *db;
	PGconn *a, *b; /* two sessions of our own, for transactions side by side */
	char pool_id[40];
};

static PGconn *fx_connect(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	return c;
}

static void sql_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

static char *sql_value(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	char *v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nova_err err;
	nova_log_set_level(NOVA_LOG_ERROR);
	if (!f || testdb_create(f->conninfo, sizeof(f->conninfo)) != 0)
		return -1;
	if (db_pool_create(&f->db, f->conninfo, &(struct db_pool_config){.size = 3}, &err) ||
	    db_migrate(f->db, db_migrations_builtin, db_migrations_builtin_count, &err)) {
		fprintf(stderr, "database: %s\n", err.message);
		return -1;
	}
	f->a = fx_connect(f->conninfo);
	f->b = fx_connect(f->conninfo);
	char *id = sql_value(f->a, "INSERT INTO pools (name, provider) VALUES ('p', 'fake') RETURNING id");
	snprintf(f->pool_id, sizeof(f->pool_id), "%s", id);
	free(id);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	PQfinish(f->a);
	PQfinish(f->b);
	db_pool_destroy(f->db);
	free(f);
	return 0;
}

static void pool_event(PGconn *c, struct fx *f, const char *message)
{
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "INSERT INTO pool_events (pool_id, kind, message) VALUES ('%s', 'test', '%s')",
		 f->pool_id, message);
	sql_ok(c, sql);
}

static json_t *read_after(struct fx *f, long long after, unsigned mask, struct events_position *pos)
{
	json_t *list;
	struct nova_err err;
	if (events_read(&list, pos, f->db, after, mask, 100, &err))
		fail_msg("events_read: %s", err.message);
	return list;
}

static const char *message_of(json_t *ev)
{
	return json_string_value(json_object_get(json_object_get(ev, "data"), "message"));
}

static long long id_of(json_t *ev)
{
	return (long long)json_integer_value(json_object_get(ev, "id"));
}

/* A transaction that inserted first but commits last gets the later id; a
 * reader never sees a hole that a late commit fills. */
static void test_ids_follow_commit_order(void **state)
{
	struct fx *f = *state;
	struct events_position pos;
	json_t *list = read_after(f, 0, EVENTS_POOL, &pos);
	long long start = pos.head;
	json_decref(list);

	sql_ok(f->a, "BEGIN");
	pool_event(f->a, f, "first inserted");
	pool_event(f->b, f, "first committed"); /* autocommit: done at once */
	list = read_after(f, start, EVENTS_POOL, &pos);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(message_of(json_array_get(list, 0)), "first committed");
	assert_int_equal(id_of(json_array_get(list, 0)), start + 1);
	assert_int_equal(pos.head, start + 1);
	json_decref(list);

	pool_event(f->a, f, "second inserted");
	sql_ok(f->a, "COMMIT");
	list = read_after(f, start + 1, EVENTS_POOL, &pos);
	assert_int_equal(json_array_size(list), 2);
	assert_string_equal(message_of(json_array_get(list, 0)), "first inserted");
	assert_string_equal(message_of(json_array_get(list, 1)), "second inserted");
	assert_int_equal(id_of(json_array_get(list, 0)), start + 2);
	assert_int_equal(id_of(json_array_get(list, 1)), start + 3);
	assert_int_equal(pos.head, start + 3);
	json_decref(list);

	/* A rollback gives its ids back: no gap. */
	sql_ok(f->a, "BEGIN");
	pool_event(f->a, f, "rolled back");
	sql_ok(f->a, "ROLLBACK");
	pool_event(f->b, f, "after the rollback");
	list = read_after(f, start + 3, EVENTS_POOL, &pos);
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(id_of(json_array_get(list, 0)), start + 4);
	assert_string_equal(message_of(json_array_get(list, 0)), "after the rollback");
	json_decref(list);
}

static void test_kinds(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	unsigned mask;
	assert_int_equal(events_kinds_parse(&mask, "node,route", "kind", &err), 0);
	assert_int_equal(mask, EVENTS_NODE | EVENTS_ROUTE);
	assert_int_equal(events_kinds_parse(&mask, NULL, "kind", &err), 0);
	assert_int_equal(mask, EVENTS_ALL);
	assert_int_equal(events_kinds_parse(&mask, "node,nodes", "kind", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "kind");
	assert_non_null(strstr(err.message, "\"nodes\""));

	char sql[256];
	snprintf(sql, sizeof(sql), "INSERT INTO nodes (pool_id, name) VALUES ('%s', 'n1')", f->pool_id);
	sql_ok(f->a, sql);
	pool_event(f->a, f, "a pool event");
	json_t *nodes = read_after(f, 0, EVENTS_NODE, NULL), *pools = read_after(f, 0, EVENTS_POOL, NULL);
	assert_int_equal(json_array_size(nodes), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(nodes, 0), "kind")), "node");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(nodes, 0), "data"), "to")),
			    "provisioning");
	assert_int_equal(json_array_size(pools), 1);
	assert_true(id_of(json_array_get(pools, 0)) > id_of(json_array_get(nodes, 0)));
	json_decref(nodes);
	json_decref(pools);
}

/* A replica turning ready, a node leaving ready and a stop each name the
 * model; a node's own provisioning does not. */
static void test_route_models(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	struct events_position pos;
	json_t *models;
	bool pruned;
	char sql[768];
	snprintf(sql, sizeof(sql), "INSERT INTO nodes (pool_id, name, state) VALUES ('%s', 'n1', 'ready') "
		 "RETURNING id", f->pool_id);
	char *node = sql_value(f->a, sql);
	char *model = sql_value(f->a, "INSERT INTO models (name, kind, spec) VALUES ('llama', 'single', "
				      "'{}') RETURNING id");
	snprintf(sql, sizeof(sql), "INSERT INTO deployments (name, model_id, pool_id, replicas) "
		 "VALUES ('d', '%s', '%s', 1) RETURNING id", model, f->pool_id);
	char *dep = sql_value(f->a, sql);
	assert_int_equal(events_position(&pos, f->db, &err), 0);
	long long before = pos.head;
	snprintf(sql, sizeof(sql), "INSERT INTO replicas (deployment_id, ordinal, state) VALUES ('%s', 0, "
		 "'starting') RETURNING id", dep);
	char *rep = sql_value(f->a, sql);
	snprintf(sql, sizeof(sql), "INSERT INTO replica_placements (replica_id, stage, node_id, "
		 "accelerators) VALUES ('%s', 0, '%s', 1)", rep, node);
	sql_ok(f->a, sql);
	assert_int_equal(events_position(&pos, f->db, &err), 0);
	assert_int_equal(events_route_models(&models, &pruned, f->db, before, pos.head, &err), 0);
	assert_int_equal(json_array_size(models), 0); /* nothing routable changed */
	json_decref(models);

	snprintf(sql, sizeof(sql), "UPDATE replicas SET state = 'ready', endpoint = 'http://127.0.0.1:9' "
		 "WHERE id = '%s'", rep);
	sql_ok(f->a, sql);
	assert_int_equal(events_position(&pos, f->db, &err), 0);
	assert_int_equal(events_route_models(&models, &pruned, f->db, before, pos.head, &err), 0);
	assert_false(pruned);
	assert_int_equal(json_array_size(models), 1);
	assert_string_equal(json_string_value(json_array_get(models, 0)), "llama");
	json_decref(models);

	long long ready_at = pos.head;
	snprintf(sql, sizeof(sql), "UPDATE nodes SET state = 'unhealthy', state_reason = 'silent' "
		 "WHERE id = '%s'", node);
	sql_ok(f->a, sql);
	assert_int_equal(events_position(&pos, f->db, &err), 0);
	assert_int_equal(events_route_models(&models, &pruned, f->db, ready_at, pos.head, &err), 0);
	assert_int_equal(json_array_size(models), 1);
	json_decref(models);
	json_t *route = read_after(f, before, EVENTS_ROUTE, NULL);
	assert_true(json_array_size(route) >= 1);
	json_t *d = json_object_get(json_array_get(route, 0), "data");
	assert_string_equal(json_string_value(json_object_get(d, "state")), "ready");
	assert_string_equal(json_string_value(json_object_get(d, "model")), "llama");
	json_decref(route);
	free(node);
	free(model);
	free(dep);
	free(rep);
}

static void test_retention(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	struct events_position pos;
	long long removed;
	json_t *models;
	bool pruned;
	for (int i = 0; i < 5; i++)
		pool_event(f->a, f, "e");
	assert_int_equal(events_position(&pos, f->db, &err), 0);
	long long head = pos.head;
	assert_int_equal(events_prune(&removed, f->db, 2, 0, &err), 0);
	assert_int_equal(removed, head - 2);
	assert_int_equal(events_position(&pos, f->db, &err), 0);
	assert_int_equal(pos.pruned_through, head - 2);
	assert_int_equal(pos.head, head);
	json_t *list = read_after(f, 0, EVENTS_ALL, NULL);
	assert_int_equal(json_array_size(list), 2);
	assert_int_equal(id_of(json_array_get(list, 0)), head - 1);
	json_decref(list);
	assert_int_equal(events_route_models(&models, &pruned, f->db, head - 3, head, &err), 0);
	assert_true(pruned);
	json_decref(models);
	assert_int_equal(events_route_models(&models, &pruned, f->db, head - 2, head, &err), 0);
	assert_false(pruned);
	json_decref(models);
	/* Again: nothing more to remove, and the bound stays. */
	assert_int_equal(events_prune(&removed, f->db, 2, 0, &err), 0);
	assert_int_equal(removed, 0);
}

static atomic_llong heard;

static void on_change(void *ctx, long long head)
{
	(void)ctx;
	atomic_store(&heard, head);
}

static long long wait_heard(long long want, int ms)
{
	for (int i = 0; i < ms / 5 && atomic_load(&heard) < want; i++)
		usleep(5000);
	return atomic_load(&heard);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Woken by NOTIFY well before its 1 s poll; with a LISTEN it cannot open,
 * the 100 ms poll still hears every commit. */
static void test_listener(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	struct events_position pos;
	struct events_listener *l;
	struct events_listener_status st;
	atomic_store(&heard, -1);
	assert_int_equal(events_listener_start(&l, f->db,
					       &(struct events_listener_config){
						       .listening_poll_ms = 5000, .on_change = on_change},
					       &err),
			 0);
	assert_int_equal(wait_heard(0, 2000), 0); /* the head at start */
	for (int i = 0; i < 50; i++) { /* until the LISTEN is open */
		events_listener_status(&st, l);
		if (st.listening)
			break;
		usleep(20000);
	}
	assert_true(st.listening);
	for (int round = 1; round <= 3; round++) {
		long long t0 = now_ms();
		pool_event(f->b, f, "wake");
		assert_int_equal(wait_heard(round, 2000), round);
		assert_true(now_ms() - t0 < 1000); /* not the 5 s poll */
	}
	events_listener_status(&st, l);
	assert_true(st.notifications >= 3);
	events_listener_stop(l);

	char bad[600];
	snprintf(bad, sizeof(bad), "%s port=1", f->conninfo);
	assert_int_equal(events_listener_start(&l, f->db,
					       &(struct events_listener_config){
						       .listen_url = bad, .on_change = on_change},
					       &err),
			 0);
	assert_int_equal(events_position(&pos, f->db, &err), 0);
	assert_int_equal(wait_heard(pos.head, 2000), pos.head);
	pool_event(f->b, f, "polled");
	assert_int_equal(wait_heard(pos.head + 1, 2000), pos.head + 1);
	events_listener_status(&st, l);
	assert_false(st.listening);
	assert_int_equal(st.notifications, 0);
	events_listener_stop(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ids_follow_commit_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_models, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listener, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
