/* The database layer against a real PostgreSQL: parameters only, SQLSTATE
 * mapping, transactions, the pool under threads, reconnect after a server
 * restart, and the migrations runner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "core/db.h"
#include "core/pg_embedded.h"
#include "tests/support/testdb.h"

static struct db_pool *open_pool(unsigned size)
{
	char conninfo[512];
	struct db_pool *p;
	struct nova_err err;
	assert_int_equal(testdb_create(conninfo, sizeof(conninfo)), 0);
	if (db_pool_create(&p, conninfo, size, 500, &err))
		fail_msg("pool: %s", err.message);
	return p;
}

static void exec_ok(struct db_pool *p, const char *sql)
{
	struct db_conn *c;
	struct nova_err err;
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	if (db_exec(NULL, c, sql, 0, NULL, &err))
		fail_msg("%s: %s", sql, err.message);
	db_conn_release(p, c);
}

static void test_db_params_carry_sql_metacharacters_verbatim(void **state)
{
	struct db_pool *p = open_pool(2);
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	const char *evil = "'; DROP TABLE t; --\\ $1 \"x\"";
	const char *params[2] = {evil, NULL};
	(void)state;
	exec_ok(p, "CREATE TABLE t (a text, b text)");
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO t VALUES ($1, $2)", 2, params, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT a, b IS NULL FROM t", 0, NULL, &err), 0);
	assert_string_equal(PQgetvalue(res, 0, 0), evil);
	assert_string_equal(PQgetvalue(res, 0, 1), "t");
	PQclear(res);
	db_conn_release(p, c);
	db_pool_destroy(p);
}

static void test_db_sqlstates_map_to_codes(void **state)
{
	struct db_pool *p = open_pool(2);
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	(void)state;
	exec_ok(p, "CREATE TABLE parent (id int PRIMARY KEY, n int CHECK (n > 0))");
	exec_ok(p, "CREATE TABLE child (pid int REFERENCES parent (id))");
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO parent VALUES (1, 1)", 0, NULL, &err), 0);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO parent VALUES (1, 1)", 0, NULL, &err), NOVA_EEXISTS);
	assert_non_null(strstr(err.message, "23505"));
	assert_int_equal(db_exec(NULL, c, "INSERT INTO child VALUES (9)", 0, NULL, &err), NOVA_ECONFLICT);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO parent VALUES (2, 0)", 0, NULL, &err), NOVA_EINVAL);
	assert_int_equal(db_exec(NULL, c, "SELECT 'x'::integer", 0, NULL, &err), NOVA_EINVAL);
	assert_int_equal(db_exec(NULL, c, "SELEC 1", 0, NULL, &err), NOVA_EINTERNAL);
	assert_int_equal(db_exec_one(&res, c, "SELECT 1 WHERE false", 0, NULL, &err), NOVA_ENOTFOUND);
	assert_null(res);
	db_conn_release(p, c);
	db_pool_destroy(p);
}

static int insert_then_fail(struct db_conn *c, void *ctx, struct nova_err *err)
{
	(void)ctx;
	int rc = db_exec(NULL, c, "INSERT INTO t VALUES (1)", 0, NULL, err);
	return rc ? rc : nova_err_set(err, NOVA_ECONFLICT, "", "changed my mind");
}

static int insert_ok(struct db_conn *c, void *ctx, struct nova_err *err)
{
	(void)ctx;
	return db_exec(NULL, c, "INSERT INTO t VALUES (2)", 0, NULL, err);
}

static long long count_rows(struct db_pool *p, const char *sql)
{
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	assert_int_equal(db_exec_one(&res, c, sql, 0, NULL, &err), 0);
	long long n = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	db_conn_release(p, c);
	return n;
}

static void test_db_tx_rolls_back_on_failure_and_commits_on_success(void **state)
{
	struct db_pool *p = open_pool(1);
	struct nova_err err;
	(void)state;
	exec_ok(p, "CREATE TABLE t (a int)");
	assert_int_equal(db_tx_run(p, insert_then_fail, NULL, &err), NOVA_ECONFLICT);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM t"), 0);
	assert_int_equal(db_tx_run(p, insert_ok, NULL, &err), 0);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM t"), 1);
	db_pool_destroy(p);
}

static void test_db_release_inside_transaction_rolls_back(void **state)
{
	struct db_pool *p = open_pool(1);
	struct db_conn *c;
	struct nova_err err;
	(void)state;
	exec_ok(p, "CREATE TABLE t (a int)");
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	assert_int_equal(db_tx_begin(c, &err), 0);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO t VALUES (1)", 0, NULL, &err), 0);
	db_conn_release(p, c);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM t"), 0);
	db_pool_destroy(p);
}

struct worker_arg {
	struct db_pool *pool;
	int failures;
};

static void *worker(void *arg)
{
	struct worker_arg *w = arg;
	for (int i = 0; i < 25; i++) {
		struct nova_err err;
		if (db_tx_run(w->pool, insert_ok, NULL, &err))
			w->failures++;
	}
	return NULL;
}

static void test_db_pool_serves_many_threads(void **state)
{
	struct db_pool *p;
	char conninfo[512];
	struct nova_err err;
	pthread_t th[8];
	struct worker_arg args[8];
	(void)state;
	assert_int_equal(testdb_create(conninfo, sizeof(conninfo)), 0);
	assert_int_equal(db_pool_create(&p, conninfo, 2, 0, &err), 0);
	exec_ok(p, "CREATE TABLE t (a int)");
	for (int i = 0; i < 8; i++) {
		args[i] = (struct worker_arg){p, 0};
		pthread_create(&th[i], NULL, worker, &args[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].failures, 0);
	}
	assert_int_equal(count_rows(p, "SELECT count(*) FROM t"), 200);
	db_pool_destroy(p);
}

static void test_db_pool_exhausted_times_out(void **state)
{
	struct db_pool *p = open_pool(1);
	struct db_conn *c, *c2;
	struct nova_err err;
	(void)state;
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	assert_int_equal(db_conn_acquire(&c2, p, &err), NOVA_EUNAVAIL);
	assert_non_null(strstr(err.message, "exhausted"));
	db_conn_release(p, c);
	assert_int_equal(db_conn_acquire(&c2, p, &err), 0);
	db_conn_release(p, c2);
	db_pool_destroy(p);
}

static void test_db_bad_conninfo_is_unavailable_and_not_echoed(void **state)
{
	struct db_pool *p;
	struct nova_err err;
	(void)state;
	assert_int_equal(db_pool_create(&p, "host=/nonexistent dbname=x password=hunter2", 1, 0, &err),
			 NOVA_EUNAVAIL);
	assert_null(p);
	assert_null(strstr(err.message, "hunter2"));
}

static void test_db_advisory_lock_is_exclusive(void **state)
{
	struct db_pool *p = open_pool(2);
	struct db_conn *a, *b;
	struct nova_err err;
	bool got;
	(void)state;
	assert_int_equal(db_conn_acquire(&a, p, &err), 0);
	assert_int_equal(db_conn_acquire(&b, p, &err), 0);
	assert_int_equal(db_advisory_try_lock(&got, a, 42, &err), 0);
	assert_true(got);
	assert_int_equal(db_advisory_try_lock(&got, b, 42, &err), 0);
	assert_false(got);
	assert_int_equal(db_advisory_unlock(a, 42, &err), 0);
	assert_int_equal(db_advisory_try_lock(&got, b, 42, &err), 0);
	assert_true(got);
	db_advisory_unlock(b, 42, &err);
	db_conn_release(p, a);
	db_conn_release(p, b);
	db_pool_destroy(p);
}

/* --- migrations --------------------------------------------------------- */

#define MIG(name, sql) {name, sql, sizeof(sql) - 1}

static const struct db_migration migs_v2[] = {
	MIG("0001_a.sql", "CREATE TABLE a (x int); CREATE TABLE a2 (y int);"),
	MIG("0002_b.sql", "CREATE TABLE b (x int);"),
};

static void test_migrations_apply_in_order_once(void **state)
{
	struct db_pool *p = open_pool(2);
	struct nova_err err;
	(void)state;
	assert_int_equal(db_migrations_check(p, migs_v2, 2, &err), NOVA_EUNAVAIL);
	assert_int_equal(db_migrate(p, migs_v2, 1, &err), 0);
	assert_int_equal(db_migrations_check(p, migs_v2, 2, &err), NOVA_EUNAVAIL);
	assert_non_null(strstr(err.message, "1 migration not applied"));
	assert_int_equal(db_migrate(p, migs_v2, 2, &err), 0);
	assert_int_equal(db_migrate(p, migs_v2, 2, &err), 0); /* again: nothing to do */
	assert_int_equal(count_rows(p, "SELECT count(*) FROM nova_migrations"), 2);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM nova_migrations WHERE length(checksum) = 64"), 2);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM b"), 0);
	assert_int_equal(db_migrations_check(p, migs_v2, 2, &err), 0);
	db_pool_destroy(p);
}

static void test_migrations_refuse_an_edited_migration(void **state)
{
	struct db_pool *p = open_pool(1);
	struct nova_err err;
	static const struct db_migration edited[] = {
		MIG("0001_a.sql", "CREATE TABLE a (x bigint); CREATE TABLE a2 (y int);"),
		MIG("0002_b.sql", "CREATE TABLE b (x int);"),
	};
	(void)state;
	assert_int_equal(db_migrate(p, migs_v2, 1, &err), 0);
	assert_int_equal(db_migrate(p, edited, 2, &err), NOVA_ECONFLICT);
	assert_non_null(strstr(err.message, "0001_a.sql was edited"));
	assert_int_equal(db_migrations_check(p, edited, 2, &err), NOVA_ECONFLICT);
	/* Nothing after the refusal was applied. */
	assert_int_equal(count_rows(p, "SELECT count(*) FROM nova_migrations"), 1);
	db_pool_destroy(p);
}

static void test_migrations_failing_one_rolls_back_whole(void **state)
{
	struct db_pool *p = open_pool(1);
	struct nova_err err;
	static const struct db_migration bad[] = {
		MIG("0001_a.sql", "CREATE TABLE a (x int); CREATE TABLE a2 (y int);"),
		MIG("0002_bad.sql", "CREATE TABLE half (x int); CREATE TABLE broken (;"),
	};
	(void)state;
	assert_int_equal(db_migrate(p, bad, 2, &err), NOVA_EINTERNAL);
	assert_non_null(strstr(err.message, "0002_bad.sql"));
	assert_int_equal(count_rows(p, "SELECT count(*) FROM nova_migrations"), 1);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM pg_tables WHERE tablename = 'half'"), 0);
	db_pool_destroy(p);
}

static void test_migrations_refuse_a_newer_database_and_bad_names(void **state)
{
	struct db_pool *p = open_pool(1);
	struct nova_err err;
	static const struct db_migration badname[] = {MIG("1_a.sql", "SELECT 1;")};
	static const struct db_migration unordered[] = {
		MIG("0002_b.sql", "SELECT 1;"), MIG("0001_a.sql", "SELECT 1;")};
	(void)state;
	assert_int_equal(db_migrate(p, migs_v2, 2, &err), 0);
	assert_int_equal(db_migrate(p, migs_v2, 1, &err), NOVA_ECONFLICT);
	assert_non_null(strstr(err.message, "newer than this novad"));
	assert_int_equal(db_migrate(p, badname, 1, &err), NOVA_EINVAL);
	assert_int_equal(db_migrate(p, unordered, 2, &err), NOVA_EINVAL);
	db_pool_destroy(p);
}

struct mig_arg {
	const char *conninfo;
	int rc;
};

static void *mig_worker(void *arg)
{
	struct mig_arg *m = arg;
	struct db_pool *p;
	struct nova_err err;
	m->rc = db_pool_create(&p, m->conninfo, 1, 0, &err);
	if (!m->rc)
		m->rc = db_migrate(p, migs_v2, 2, &err);
	db_pool_destroy(p);
	return NULL;
}

static void test_migrations_concurrent_starts_apply_each_once(void **state)
{
	char conninfo[512];
	pthread_t th[4];
	struct mig_arg args[4];
	struct db_pool *p;
	struct nova_err err;
	(void)state;
	assert_int_equal(testdb_create(conninfo, sizeof(conninfo)), 0);
	for (int i = 0; i < 4; i++) {
		args[i] = (struct mig_arg){conninfo, -1};
		pthread_create(&th[i], NULL, mig_worker, &args[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(args[i].rc, 0);
	}
	assert_int_equal(db_pool_create(&p, conninfo, 1, 0, &err), 0);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM nova_migrations"), 2);
	db_pool_destroy(p);
}

static void test_builtin_schema_applies(void **state)
{
	struct db_pool *p = open_pool(1);
	struct nova_err err;
	(void)state;
	assert_true(db_migrations_builtin_count >= 1);
	assert_int_equal(db_migrate(p, db_migrations_builtin, db_migrations_builtin_count, &err), 0);
	assert_int_equal(db_migrations_check(p, db_migrations_builtin, db_migrations_builtin_count, &err), 0);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM pg_tables WHERE tablename IN "
				       "('pools','nodes','node_events','models','deployments',"
				       "'replicas','work_items','api_keys')"), 8);
	db_pool_destroy(p);
}

/* --- embedded server: reuse and reconnect --------------------------------- */

/* What the embedded test started, so its teardown can stop it even when an
 * assertion ended the test early: a failed test must not leave a server. */
static struct {
	char dir[64];
	struct pg_embedded *pg;
	struct db_pool *pool;
} emb;

static int embedded_teardown(void **state)
{
	char cmd[128];
	(void)state;
	db_pool_destroy(emb.pool);
	pg_embedded_stop(emb.pg);
	if (emb.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", emb.dir);
		if (system(cmd) != 0)
			return -1;
	}
	memset(&emb, 0, sizeof(emb));
	return 0;
}

static void test_embedded_restart_and_pool_reconnects(void **state)
{
	char sub[128];
	struct nova_err err;
	(void)state;
	snprintf(emb.dir, sizeof(emb.dir), "/tmp/nova-pgemb-XXXXXX");
	assert_non_null(mkdtemp(emb.dir));
	char *dir = emb.dir;
	chmod(dir, 0755);
	snprintf(sub, sizeof(sub), "%s/pg", dir);
	if (pg_embedded_start(&emb.pg, sub, &err))
		fail_msg("start: %s", err.message);
	assert_int_equal(db_pool_create(&emb.pool, pg_embedded_conninfo(emb.pg), 2, 0, &err), 0);
	struct db_pool *p = emb.pool;
	exec_ok(p, "CREATE TABLE kept (a int)");
	/* Stop the server under the open pool, start it again. */
	pg_embedded_stop(emb.pg);
	emb.pg = NULL;
	if (pg_embedded_start(&emb.pg, sub, &err))
		fail_msg("restart: %s", err.message);
	/* The pooled connection died with the old server: acquiring it finds
	 * that out and reconnects, so the very first statement works. */
	struct db_conn *c;
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	if (db_exec(NULL, c, "SELECT count(*) FROM kept", 0, NULL, &err))
		fail_msg("first statement after restart: %s", err.message);
	db_conn_release(p, c);
	assert_int_equal(count_rows(p, "SELECT count(*) FROM kept"), 0);
}

static void test_embedded_refuses_a_dir_with_spaces(void **state)
{
	struct pg_embedded *pg;
	struct nova_err err;
	(void)state;
	assert_int_equal(pg_embedded_start(&pg, "/tmp/has space/pg", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "state_dir");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_db_params_carry_sql_metacharacters_verbatim),
		cmocka_unit_test(test_db_sqlstates_map_to_codes),
		cmocka_unit_test(test_db_tx_rolls_back_on_failure_and_commits_on_success),
		cmocka_unit_test(test_db_release_inside_transaction_rolls_back),
		cmocka_unit_test(test_db_pool_serves_many_threads),
		cmocka_unit_test(test_db_pool_exhausted_times_out),
		cmocka_unit_test(test_db_bad_conninfo_is_unavailable_and_not_echoed),
		cmocka_unit_test(test_db_advisory_lock_is_exclusive),
		cmocka_unit_test(test_migrations_apply_in_order_once),
		cmocka_unit_test(test_migrations_refuse_an_edited_migration),
		cmocka_unit_test(test_migrations_failing_one_rolls_back_whole),
		cmocka_unit_test(test_migrations_refuse_a_newer_database_and_bad_names),
		cmocka_unit_test(test_migrations_concurrent_starts_apply_each_once),
		cmocka_unit_test(test_builtin_schema_applies),
		cmocka_unit_test_teardown(test_embedded_restart_and_pool_reconnects, embedded_teardown),
		cmocka_unit_test(test_embedded_refuses_a_dir_with_spaces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
