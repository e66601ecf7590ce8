/* The database layer against a real PostgreSQL (the run's test cluster, a
 * fresh database per test): parameters only, SQLSTATE mapping,
 * transactions, the pool under threads, reconnecting a terminated session,
 * deadlines against a server that stops answering (a backend stopped with
 * SIGSTOP, a socket that never accepts, a lock never released), advisory
 * locks and the migrations runner. The embedded server has its own
 * file (test_pg_embedded.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/db.h"
#include "core/log.h"
#include "tests/support/testdb.h"

static const struct db_pool_config one = {.size = 1};

#define MIG(name, sql) {name, sql, sizeof(sql) - 1}

/* The migrations advisory lock key documented in core/db.c ("NOVAMIGR"). */
#define MIGRATION_LOCK_KEY "5642823696588031826"

struct fx {
	char conninfo[512];
	struct db_pool *pool;
};

static int quiet_setup(void **state)
{
	(void)state;
	nova_log_set_level(NOVA_LOG_WARN); /* "migration applied" lines are noise here */
	return 0;
}

static int fx_setup_config(void **state, const struct db_pool_config *cfg)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nova_err err;
	if (!f || testdb_create(f->conninfo, sizeof(f->conninfo)) != 0)
		return -1;
	if (db_pool_create(&f->pool, f->conninfo, cfg, &err)) {
		fprintf(stderr, "pool: %s\n", err.message);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_setup(void **state)
{
	return fx_setup_config(state, &(struct db_pool_config){.size = 2, .acquire_timeout_ms = 2000});
}

static int fx_setup_one(void **state)
{
	return fx_setup_config(state, &(struct db_pool_config){.size = 1, .acquire_timeout_ms = 300});
}

/* Short statement deadlines, so the tests of a database that does not
 * answer take a second, not the default's two. */
#define SHORT_DEADLINE_MS 500

static int fx_setup_short(void **state)
{
	return fx_setup_config(state, &(struct db_pool_config){
					      .size = 2, .statement_timeout_ms = SHORT_DEADLINE_MS});
}

static int fx_setup_short_one(void **state)
{
	return fx_setup_config(state, &(struct db_pool_config){
					      .size = 1, .statement_timeout_ms = SHORT_DEADLINE_MS});
}

/* A backend stopped with SIGSTOP (the tests run as root, the server as
 * postgres); thawed in teardown too, so a failed assertion never leaves a
 * stopped backend behind. */
static pid_t stopped_pid;

static void freeze_backend(pid_t pid)
{
	assert_true(pid > 0);
	if (kill(pid, SIGSTOP) != 0)
		fail_msg("cannot stop backend %d (the tests must run as root)", (int)pid);
	stopped_pid = pid;
}

static void thaw_backend(void)
{
	if (stopped_pid > 0)
		kill(stopped_pid, SIGCONT);
	stopped_pid = 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	thaw_backend();
	if (f)
		db_pool_destroy(f->pool);
	free(f);
	return 0;
}

static void exec_ok(struct db_pool *p, const char *sql)
{
	struct nova_err err;
	if (db_pool_exec(NULL, p, sql, 0, NULL, &err))
		fail_msg("%s: %s", sql, err.message);
}

/* The single value of a one-row query, as a number. */
static long long query_ll(struct db_pool *p, const char *sql, int n, const char *const *params)
{
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	long long v;
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	if (db_exec_one(&res, c, sql, n, params, &err))
		fail_msg("%s: %s", sql, err.message);
	v = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	db_conn_release(p, c);
	return v;
}

static long long count_rows(struct db_pool *p, const char *sql)
{
	return query_ll(p, sql, 0, NULL);
}

static bool table_exists(struct db_pool *p, const char *name)
{
	const char *params[1] = {name};
	return query_ll(p, "SELECT (to_regclass($1) IS NOT NULL)::int", 1, params) == 1;
}

/* Past the breaker's first wait (core/db.c: 250 ms after a missed deadline). */
static void breaker_wait(void)
{
	struct timespec ts = {0, 300 * 1000000L};
	nanosleep(&ts, NULL);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/* --- statements ------------------------------------------------------------ */

static void test_exec_params_keep_sql_metacharacters_verbatim(void **state)
{
	struct fx *f = *state;
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	const char *evil = "'; DROP TABLE x; --\\ $1 \"x\" \x01";
	const char *params[1] = {evil};
	exec_ok(f->pool, "CREATE TABLE x (a text)");
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO x VALUES ($1)", 1, params, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT a FROM x", 0, NULL, &err), 0);
	assert_string_equal(PQgetvalue(res, 0, 0), evil);
	PQclear(res);
	db_conn_release(f->pool, c);
	assert_true(table_exists(f->pool, "x"));
}

static void test_exec_null_param_is_sql_null(void **state)
{
	struct fx *f = *state;
	const char *params[2] = {"v", NULL};
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE x (a text, b text)");
	assert_int_equal(db_pool_exec(NULL, f->pool, "INSERT INTO x VALUES ($1, $2)", 2, params, &err), 0);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM x WHERE a = 'v' AND b IS NULL"), 1);
}

static void test_exec_unique_violation_is_exists_with_constraint_and_sqlstate(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE pools (name text UNIQUE)");
	exec_ok(f->pool, "INSERT INTO pools VALUES ('a')");
	assert_int_equal(db_pool_exec(NULL, f->pool, "INSERT INTO pools VALUES ('a')", 0, NULL, &err),
			 NOVA_EEXISTS);
	assert_string_equal(err.message,
			    "duplicate key value violates unique constraint \"pools_name_key\" (23505)");
}

static void test_exec_foreign_key_violation_is_conflict(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE parent (id int PRIMARY KEY)");
	exec_ok(f->pool, "CREATE TABLE child (pid int REFERENCES parent (id))");
	assert_int_equal(db_pool_exec(NULL, f->pool, "INSERT INTO child VALUES (9)", 0, NULL, &err),
			 NOVA_ECONFLICT);
	assert_non_null(strstr(err.message, "(23503)"));
}

static void test_exec_check_violation_is_invalid(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE x (n int CHECK (n > 0))");
	assert_int_equal(db_pool_exec(NULL, f->pool, "INSERT INTO x VALUES (0)", 0, NULL, &err),
			 NOVA_EINVAL);
	assert_non_null(strstr(err.message, "(23514)"));
}

static void test_exec_not_null_violation_is_invalid(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE x (n int NOT NULL)");
	assert_int_equal(db_pool_exec(NULL, f->pool, "INSERT INTO x VALUES (NULL)", 0, NULL, &err),
			 NOVA_EINVAL);
}

static void test_exec_bad_input_syntax_is_invalid(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	const char *params[1] = {"twelve"};
	assert_int_equal(db_pool_exec(NULL, f->pool, "SELECT $1::integer", 1, params, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "(22P02)"));
}

static void test_exec_sql_syntax_error_is_internal(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	assert_int_equal(db_pool_exec(NULL, f->pool, "SELEC 1", 0, NULL, &err), NOVA_EINTERNAL);
	assert_non_null(strstr(err.message, "(42601)"));
}

static void test_exec_one_without_a_row_is_not_found(void **state)
{
	struct fx *f = *state;
	struct db_conn *c;
	struct nova_err err;
	PGresult *res = (PGresult *)1;
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT 1 WHERE false", 0, NULL, &err), NOVA_ENOTFOUND);
	assert_null(res);
	db_conn_release(f->pool, c);
}

static void test_exec_one_with_two_rows_is_internal(void **state)
{
	struct fx *f = *state;
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT generate_series(1, 2)", 0, NULL, &err),
			 NOVA_EINTERNAL);
	assert_null(res);
	db_conn_release(f->pool, c);
}

/* --- transactions ---------------------------------------------------------- */

static int tx_insert_then_fail(struct db_conn *c, void *ctx, struct nova_err *err)
{
	(void)ctx;
	int rc = db_exec(NULL, c, "INSERT INTO t VALUES (1)", 0, NULL, err);
	return rc ? rc : nova_err_set(err, NOVA_ECONFLICT, "", "changed my mind");
}

static int tx_insert(struct db_conn *c, void *ctx, struct nova_err *err)
{
	(void)ctx;
	return db_exec(NULL, c, "INSERT INTO t VALUES (2)", 0, NULL, err);
}

static int tx_insert_and_swallow_an_error(struct db_conn *c, void *ctx, struct nova_err *err)
{
	struct nova_err ignored;
	(void)ctx;
	int rc = db_exec(NULL, c, "INSERT INTO t VALUES (3)", 0, NULL, err);
	db_exec(NULL, c, "SELECT 1/0", 0, NULL, &ignored);
	return rc;
}

static void test_tx_run_rolls_back_when_fn_fails(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE t (a int)");
	assert_int_equal(db_tx_run(f->pool, tx_insert_then_fail, NULL, &err), NOVA_ECONFLICT);
	assert_string_equal(err.message, "changed my mind");
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM t"), 0);
}

static void test_tx_run_commits_when_fn_succeeds(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE t (a int)");
	assert_int_equal(db_tx_run(f->pool, tx_insert, NULL, &err), 0);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM t WHERE a = 2"), 1);
}

static void test_tx_run_fails_when_fn_ignored_an_error(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE t (a int)");
	assert_int_not_equal(db_tx_run(f->pool, tx_insert_and_swallow_an_error, NULL, &err), 0);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM t"), 0);
}

static void test_tx_commit_makes_rows_visible_to_other_connections(void **state)
{
	struct fx *f = *state;
	struct db_conn *a, *b;
	struct nova_err err;
	PGresult *res;
	exec_ok(f->pool, "CREATE TABLE t (a int)");
	assert_int_equal(db_conn_acquire(&a, f->pool, &err), 0);
	assert_int_equal(db_conn_acquire(&b, f->pool, &err), 0);
	assert_int_equal(db_tx_begin(a, &err), 0);
	assert_int_equal(db_exec(NULL, a, "INSERT INTO t VALUES (1)", 0, NULL, &err), 0);
	assert_int_equal(db_exec_one(&res, b, "SELECT count(*) FROM t", 0, NULL, &err), 0);
	assert_string_equal(PQgetvalue(res, 0, 0), "0");
	PQclear(res);
	assert_int_equal(db_tx_commit(a, &err), 0);
	assert_int_equal(db_exec_one(&res, b, "SELECT count(*) FROM t", 0, NULL, &err), 0);
	assert_string_equal(PQgetvalue(res, 0, 0), "1");
	PQclear(res);
	db_conn_release(f->pool, a);
	db_conn_release(f->pool, b);
}

static void test_release_inside_a_transaction_rolls_it_back(void **state)
{
	struct fx *f = *state;
	struct db_conn *c;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE t (a int)");
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_tx_begin(c, &err), 0);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO t VALUES (1)", 0, NULL, &err), 0);
	db_conn_release(f->pool, c);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM t"), 0);
	/* And the connection came back usable, outside any transaction. */
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(PQtransactionStatus(db_conn_pg(c)), PQTRANS_IDLE);
	db_conn_release(f->pool, c);
}

/* --- the pool -------------------------------------------------------------- */

struct worker_arg {
	struct db_pool *pool;
	int failures;
};

static void *pool_worker(void *arg)
{
	struct worker_arg *w = arg;
	for (int i = 0; i < 25; i++) {
		struct nova_err err;
		if (db_tx_run(w->pool, tx_insert, NULL, &err))
			w->failures++;
	}
	return NULL;
}

static void test_pool_of_two_serves_eight_threads(void **state)
{
	struct fx *f = *state;
	pthread_t th[8];
	struct worker_arg args[8];
	exec_ok(f->pool, "CREATE TABLE t (a int)");
	for (int i = 0; i < 8; i++) {
		args[i] = (struct worker_arg){f->pool, 0};
		assert_int_equal(pthread_create(&th[i], NULL, pool_worker, &args[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 8; i++)
		assert_int_equal(args[i].failures, 0);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM t"), 200);
	/* Never more sessions than the pool's size. */
	assert_in_range(count_rows(f->pool, "SELECT count(*) FROM pg_stat_activity "
					    "WHERE datname = current_database()"),
			1, 2);
}

static void test_acquire_times_out_when_the_pool_is_exhausted(void **state)
{
	struct fx *f = *state; /* size 1, 300 ms */
	struct db_conn *c, *c2 = (struct db_conn *)1;
	struct nova_err err;
	struct timespec t0;
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(db_conn_acquire(&c2, f->pool, &err), NOVA_EUNAVAIL);
	assert_in_range(ms_since(&t0), 250, 5000);
	assert_null(c2);
	assert_non_null(strstr(err.message, "database connection pool exhausted"));
	db_conn_release(f->pool, c);
}

struct waiter_arg {
	struct db_pool *pool;
	int rc;
	long waited_ms;
};

static void *pool_waiter(void *arg)
{
	struct waiter_arg *w = arg;
	struct db_conn *c;
	struct nova_err err;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	w->rc = db_conn_acquire(&c, w->pool, &err);
	w->waited_ms = ms_since(&t0);
	if (w->rc == 0)
		db_conn_release(w->pool, c);
	return NULL;
}

static void test_release_hands_the_connection_to_a_waiting_acquirer(void **state)
{
	struct db_pool *p;
	struct db_conn *c;
	struct nova_err err;
	char conninfo[512];
	pthread_t th;
	struct waiter_arg w;
	(void)state;
	assert_int_equal(testdb_create(conninfo, sizeof(conninfo)), 0);
	assert_int_equal(db_pool_create(&p, conninfo,
					&(struct db_pool_config){.size = 1, .acquire_timeout_ms = 10000},
					&err),
			 0);
	assert_int_equal(db_conn_acquire(&c, p, &err), 0);
	w = (struct waiter_arg){p, -1, 0};
	assert_int_equal(pthread_create(&th, NULL, pool_waiter, &w), 0);
	usleep(200 * 1000);
	db_conn_release(p, c);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	assert_in_range(w.waited_ms, 150, 5000); /* it waited, and was woken well before 10 s */
	db_pool_destroy(p);
}

static void test_pool_create_unreachable_is_unavailable_without_the_secret(void **state)
{
	struct db_pool *p = (struct db_pool *)1;
	struct nova_err err;
	(void)state;
	assert_int_equal(db_pool_create(&p, "host=/nonexistent dbname=x password=hunter2", &one, &err),
			 NOVA_EUNAVAIL);
	assert_null(p);
	assert_null(strstr(err.message, "hunter2"));
}

static void test_pool_create_malformed_conninfo_is_invalid_without_the_secret(void **state)
{
	struct db_pool *p = (struct db_pool *)1;
	struct nova_err err;
	(void)state;
	assert_int_equal(db_pool_create(&p, "host=/tmp hunter2", &one, &err), NOVA_EINVAL);
	assert_null(p);
	assert_string_equal(err.field, "database_url");
	assert_null(strstr(err.message, "hunter2"));
}

/* A backend killed from outside (as a server restart or an administrator
 * would): the pool notices at acquire and hands out a fresh session. */
static void terminate_backend(const char *pid)
{
	char admin[512];
	const char *params[1] = {pid};
	PGconn *c;
	PGresult *r;
	assert_int_equal(testdb_admin_conninfo(admin, sizeof(admin)), 0);
	c = PQconnectdb(admin);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexecParams(c, "SELECT pg_terminate_backend($1::int, 5000)", 1, NULL, params, NULL, NULL,
			 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	PQfinish(c);
}

static void test_acquire_reconnects_a_connection_the_server_closed(void **state)
{
	struct fx *f = *state; /* size 1: the same slot comes back */
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	char old_pid[16];
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT pg_backend_pid()", 0, NULL, &err), 0);
	snprintf(old_pid, sizeof(old_pid), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	db_conn_release(f->pool, c);
	terminate_backend(old_pid);
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	if (db_exec_one(&res, c, "SELECT pg_backend_pid()", 0, NULL, &err))
		fail_msg("first statement after the session was closed: %s", err.message);
	assert_string_not_equal(PQgetvalue(res, 0, 0), old_pid);
	PQclear(res);
	db_conn_release(f->pool, c);
}

static void test_exec_on_a_closed_connection_is_unavailable_then_recovers(void **state)
{
	struct fx *f = *state; /* size 1 */
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	char pid[16];
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SELECT pg_backend_pid()", 0, NULL, &err), 0);
	snprintf(pid, sizeof(pid), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	terminate_backend(pid);
	assert_int_equal(db_exec(NULL, c, "SELECT 1", 0, NULL, &err), NOVA_EUNAVAIL);
	db_conn_release(f->pool, c);
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_exec(NULL, c, "SELECT 1", 0, NULL, &err), 0);
	db_conn_release(f->pool, c);
}

static void test_ping_answers(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	assert_int_equal(db_ping(f->pool, &err), 0);
}

/* --- deadlines ------------------------------------------------------------- */

static pid_t backend_pid(struct db_conn *c)
{
	struct nova_err err;
	PGresult *res;
	pid_t pid;
	if (db_exec_one(&res, c, "SELECT pg_backend_pid()", 0, NULL, &err))
		fail_msg("pg_backend_pid: %s", err.message);
	pid = (pid_t)atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return pid;
}

static void thaw_rescue(void *unused)
{
	(void)unused;
	thaw_backend();
}

/* Run fn(arg) on a thread and wait at most ms for it. Past that, rescue
 * (which must make fn return: thaw the server, release a lock) runs and the
 * answer is false, so code that blocks fails its test instead of hanging
 * the run. Assertions stay in the test's own thread. */
static bool returns_within(unsigned ms, void *(*fn)(void *), void *arg, void (*rescue)(void *),
			   void *rescue_arg)
{
	pthread_t th;
	struct timespec until;
	assert_int_equal(pthread_create(&th, NULL, fn, arg), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(th, NULL, &until) == 0)
		return true;
	rescue(rescue_arg);
	pthread_join(th, NULL);
	return false;
}

struct exec_arg {
	struct db_pool *pool; /* release_thread */
	struct db_conn *c;
	const char *sql;
	int rc;
	long ms;
	char message[NOVA_ERR_MESSAGE_MAX];
};

static void *exec_thread(void *p)
{
	struct exec_arg *a = p;
	struct nova_err err;
	struct timespec t0;
	nova_err_clear(&err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	a->rc = db_exec(NULL, a->c, a->sql, 0, NULL, &err);
	a->ms = ms_since(&t0);
	snprintf(a->message, sizeof(a->message), "%s", err.message);
	return NULL;
}

/* The server has closed the backend's session (it exits once it runs). */
static void assert_backend_gone(struct db_pool *p, pid_t pid)
{
	char v[16];
	const char *params[1] = {v};
	snprintf(v, sizeof(v), "%d", (int)pid);
	for (int i = 0; i < 100; i++) {
		if (query_ll(p, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1, params) == 0)
			return;
		usleep(30 * 1000);
	}
	fail_msg("backend %d still has its session", (int)pid);
}

static void test_a_statement_on_a_stopped_backend_is_unavailable_within_the_deadline(void **state)
{
	struct fx *f = *state; /* size 1, SHORT_DEADLINE_MS */
	struct db_conn *c;
	struct nova_err err;
	pid_t pid, fresh;
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	pid = backend_pid(c);
	freeze_backend(pid);
	struct exec_arg a = {.c = c, .sql = "SELECT 1"};
	bool returned = returns_within(SHORT_DEADLINE_MS + 3000, exec_thread, &a, thaw_rescue, NULL);
	thaw_backend();
	if (!returned)
		fail_msg("the statement waited for the stopped backend (rc %d after %ld ms)", a.rc, a.ms);
	assert_int_equal(a.rc, NOVA_EUNAVAIL);
	assert_in_range(a.ms, SHORT_DEADLINE_MS - 20, SHORT_DEADLINE_MS + 1500);
	assert_string_equal(a.message, "the database did not answer within 500 ms");
	/* Dropped, not cancelled: later statements on it fail at once... */
	assert_null(db_conn_pg(c));
	assert_int_equal(db_exec(NULL, c, "SELECT 1", 0, NULL, &err), NOVA_EUNAVAIL);
	db_conn_release(f->pool, c);
	/* ...the breaker fails the next borrowers at once for a moment... */
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), NOVA_EUNAVAIL);
	assert_in_range(ms_since(&t0), 0, 100);
	assert_string_equal(err.message,
			    "the database is unavailable: the database did not answer within 500 ms");
	breaker_wait();
	/* ...then the next borrower gets a new session, and the old one is closed. */
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	fresh = backend_pid(c);
	assert_int_not_equal(fresh, pid);
	db_conn_release(f->pool, c);
	assert_backend_gone(f->pool, pid);
}

static void *release_thread(void *p)
{
	struct exec_arg *a = p;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	db_conn_release(a->pool, a->c);
	a->ms = ms_since(&t0);
	return NULL;
}

static void test_release_inside_a_transaction_of_a_stopped_backend_returns_within_the_deadline(
	void **state)
{
	struct fx *f = *state; /* size 1, SHORT_DEADLINE_MS */
	struct db_conn *c;
	struct nova_err err;
	pid_t pid;
	exec_ok(f->pool, "CREATE TABLE t (a int)");
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_tx_begin(c, &err), 0);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO t VALUES (1)", 0, NULL, &err), 0);
	pid = backend_pid(c);
	freeze_backend(pid);
	struct exec_arg a = {.pool = f->pool, .c = c};
	bool returned = returns_within(SHORT_DEADLINE_MS + 3000, release_thread, &a, thaw_rescue, NULL);
	thaw_backend();
	if (!returned)
		fail_msg("release waited for the stopped backend");
	assert_in_range(a.ms, 0, SHORT_DEADLINE_MS + 1500);
	/* The pool is usable (once the breaker lets a borrower try), and the
	 * transaction died with its session. */
	breaker_wait();
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM t"), 0);
	assert_backend_gone(f->pool, pid);
}

struct connect_arg {
	const char *conninfo;
	int rc;
	long ms;
	struct db_pool *pool;
	struct nova_err err;
};

static void *connect_thread(void *p)
{
	struct connect_arg *a = p;
	struct timespec t0;
	nova_err_clear(&a->err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	a->rc = db_pool_create(
		&a->pool, a->conninfo,
		&(struct db_pool_config){.size = 1, .statement_timeout_ms = SHORT_DEADLINE_MS}, &a->err);
	a->ms = ms_since(&t0);
	return NULL;
}

/* Closing a listening socket resets the connections waiting in its queue. */
static void close_rescue(void *p)
{
	int *s = p;
	close(*s);
	*s = -1;
}

static void test_connecting_to_a_server_that_never_answers_is_unavailable_within_the_deadline(
	void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	char conninfo[256];
	int s;
	(void)state;
	/* Listening but never accepting: the kernel completes the handshake,
	 * and then nothing ever answers (a stopped postmaster). */
	s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s, 8), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d dbname=x user=x password=hunter2",
		 ntohs(sa.sin_port));
	struct connect_arg a = {.conninfo = conninfo, .pool = (struct db_pool *)1};
	bool returned = returns_within(SHORT_DEADLINE_MS + 3000, connect_thread, &a, close_rescue, &s);
	if (s >= 0)
		close(s);
	if (!returned)
		fail_msg("connecting waited for the silent server (rc %d after %ld ms)", a.rc, a.ms);
	assert_int_equal(a.rc, NOVA_EUNAVAIL);
	assert_null(a.pool);
	assert_in_range(a.ms, SHORT_DEADLINE_MS - 20, SHORT_DEADLINE_MS + 1500);
	assert_string_equal(a.err.message, "cannot connect to the database: no answer within 500 ms");
	assert_null(strstr(a.err.message, "hunter2"));
}

static void release_rescue(void *p)
{
	struct exec_arg *holder = p;
	db_tx_rollback(holder->c);
}

static void test_a_lock_wait_past_the_deadline_is_unavailable_and_the_pool_stays_usable(void **state)
{
	struct fx *f = *state; /* size 2, SHORT_DEADLINE_MS */
	struct db_conn *a, *b;
	struct nova_err err;
	exec_ok(f->pool, "CREATE TABLE t (id int PRIMARY KEY, v int)");
	exec_ok(f->pool, "INSERT INTO t VALUES (1, 0)");
	assert_int_equal(db_conn_acquire(&a, f->pool, &err), 0);
	assert_int_equal(db_conn_acquire(&b, f->pool, &err), 0);
	assert_int_equal(db_tx_begin(a, &err), 0);
	assert_int_equal(db_exec(NULL, a, "UPDATE t SET v = 1 WHERE id = 1", 0, NULL, &err), 0);
	struct exec_arg holder = {.c = a};
	struct exec_arg w = {.c = b, .sql = "UPDATE t SET v = 2 WHERE id = 1"};
	bool returned = returns_within(SHORT_DEADLINE_MS + 3000, exec_thread, &w, release_rescue, &holder);
	if (!returned)
		fail_msg("the statement waited for the lock past its deadline");
	assert_int_equal(w.rc, NOVA_EUNAVAIL);
	assert_in_range(w.ms, 0, SHORT_DEADLINE_MS + 1500);
	db_conn_release(f->pool, b);
	assert_int_equal(db_tx_commit(a, &err), 0);
	db_conn_release(f->pool, a);
	/* Both connections serve again; the lock holder's update stands. */
	exec_ok(f->pool, "UPDATE t SET v = v + 10 WHERE id = 1");
	assert_int_equal(count_rows(f->pool, "SELECT v FROM t WHERE id = 1"), 11);
	assert_int_equal(db_conn_acquire(&a, f->pool, &err), 0);
	assert_int_equal(db_conn_acquire(&b, f->pool, &err), 0);
	assert_int_equal(db_exec(NULL, a, "SELECT 1", 0, NULL, &err), 0);
	assert_int_equal(db_exec(NULL, b, "SELECT 1", 0, NULL, &err), 0);
	db_conn_release(f->pool, a);
	db_conn_release(f->pool, b);
}

static void test_a_statement_the_server_times_out_is_unavailable_and_keeps_its_session(void **state)
{
	struct fx *f = *state; /* size 1, SHORT_DEADLINE_MS */
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	pid_t pid;
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	/* The pool sets the server's side a little shorter than its own. */
	assert_int_equal(db_exec_one(&res, c, "SHOW statement_timeout", 0, NULL, &err), 0);
	assert_string_equal(PQgetvalue(res, 0, 0), "400ms");
	PQclear(res);
	pid = backend_pid(c);
	/* Far shorter than the client's, so the server answers first. */
	assert_int_equal(db_exec(NULL, c, "SET statement_timeout = 50", 0, NULL, &err), 0);
	assert_int_equal(db_exec(NULL, c, "SELECT pg_sleep(5)", 0, NULL, &err), NOVA_EUNAVAIL);
	assert_non_null(strstr(err.message, "(57014)"));
	assert_non_null(db_conn_pg(c));
	assert_int_equal(backend_pid(c), pid);
	db_conn_release(f->pool, c);
}

static void test_set_deadline_lifts_it_until_release(void **state)
{
	struct fx *f = *state; /* size 1, SHORT_DEADLINE_MS */
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_conn_set_deadline(c, 0, &err), 0);
	if (db_exec(NULL, c, "SELECT pg_sleep(0.7)", 0, NULL, &err))
		fail_msg("without a deadline: %s", err.message);
	db_conn_release(f->pool, c);
	/* The same connection (size 1), with the pool's deadline again, on
	 * both sides. */
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	assert_int_equal(db_exec_one(&res, c, "SHOW statement_timeout", 0, NULL, &err), 0);
	assert_string_equal(PQgetvalue(res, 0, 0), "400ms");
	PQclear(res);
	assert_int_equal(db_exec(NULL, c, "SELECT pg_sleep(0.7)", 0, NULL, &err), NOVA_EUNAVAIL);
	db_conn_release(f->pool, c);
}

static int fx_setup_tiny_deadline(void **state)
{
	return fx_setup_config(state, &(struct db_pool_config){.size = 1, .statement_timeout_ms = 200});
}

static void test_migrations_longer_than_the_deadline_still_apply(void **state)
{
	struct fx *f = *state; /* size 1, 200 ms */
	struct nova_err err;
	static const struct db_migration slow[] = {
		MIG("0001_slow.sql", "SELECT pg_sleep(0.5);\nCREATE TABLE slow (x int);\n"),
	};
	if (db_migrate(f->pool, slow, 1, &err))
		fail_msg("migrate: %s", err.message);
	assert_true(table_exists(f->pool, "slow"));
	/* Only the migrations: the next statement has its deadline again. */
	assert_int_equal(db_pool_exec(NULL, f->pool, "SELECT pg_sleep(0.5)", 0, NULL, &err),
			 NOVA_EUNAVAIL);
}

static void test_acquire_gives_up_after_a_second_by_default(void **state)
{
	struct fx *f = *state; /* size 1, default acquire timeout */
	struct db_conn *c, *c2 = (struct db_conn *)1;
	struct nova_err err;
	struct timespec t0;
	assert_int_equal(db_conn_acquire(&c, f->pool, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(db_conn_acquire(&c2, f->pool, &err), NOVA_EUNAVAIL);
	assert_in_range(ms_since(&t0), 950, 2500);
	assert_null(c2);
	db_conn_release(f->pool, c);
}

/* --- advisory locks -------------------------------------------------------- */

static void test_advisory_lock_held_by_one_connection_is_refused_to_another(void **state)
{
	struct fx *f = *state;
	struct db_conn *a, *b;
	struct nova_err err;
	bool got = false;
	assert_int_equal(db_conn_acquire(&a, f->pool, &err), 0);
	assert_int_equal(db_conn_acquire(&b, f->pool, &err), 0);
	assert_int_equal(db_advisory_try_lock(&got, a, 42, &err), 0);
	assert_true(got);
	assert_int_equal(db_advisory_try_lock(&got, b, 42, &err), 0);
	assert_false(got);
	assert_int_equal(db_advisory_unlock(a, 42, &err), 0);
	assert_int_equal(db_advisory_try_lock(&got, b, 42, &err), 0);
	assert_true(got);
	assert_int_equal(db_advisory_unlock(b, 42, &err), 0);
	db_conn_release(f->pool, a);
	db_conn_release(f->pool, b);
}

static void test_release_drops_advisory_locks_left_held(void **state)
{
	struct fx *f = *state;
	struct db_conn *a;
	struct nova_err err;
	bool got = false;
	PGconn *other;
	PGresult *r;
	assert_int_equal(db_conn_acquire(&a, f->pool, &err), 0);
	assert_int_equal(db_advisory_try_lock(&got, a, 43, &err), 0);
	assert_true(got);
	db_conn_release(f->pool, a); /* still holding 43 */
	other = PQconnectdb(f->conninfo);
	assert_int_equal(PQstatus(other), CONNECTION_OK);
	r = PQexec(other, "SELECT pg_try_advisory_lock(43)");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	PQfinish(other);
}

/* --- migrations ------------------------------------------------------------ */

static const struct db_migration migs_ab[] = {
	MIG("0001_a.sql", "CREATE TABLE a (x int);\nCREATE TABLE a2 (y int);\n"),
	MIG("0002_b.sql", "ALTER TABLE a ADD COLUMN z int;\nINSERT INTO a VALUES (1, 2);\n"),
};

static void test_migrate_applies_in_order_and_records_checksums(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	if (db_migrate(f->pool, migs_ab, 2, &err))
		fail_msg("migrate: %s", err.message);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM a WHERE x = 1 AND z = 2"), 1);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM nova_migrations"), 2);
	for (int i = 0; i < 2; i++) {
		char v[16];
		const char *params[3] = {v, migs_ab[i].name, migs_ab[i].sql};
		snprintf(v, sizeof(v), "%d", i + 1);
		/* The checksum is SHA-256 of the text, computed here by the
		 * server so the test does not share db.c's code. */
		assert_int_equal(query_ll(f->pool,
					  "SELECT count(*) FROM nova_migrations WHERE version = $1::int "
					  "AND name = $2 AND checksum = "
					  "encode(sha256(convert_to($3, 'UTF8')), 'hex') "
					  "AND applied_at <= now()",
					  3, params),
				 1);
	}
}

/* sql/0007 moves the heartbeat columns of nodes to node_heartbeats: what a
 * database of version 6 had is kept, and a node made afterwards gets its
 * row (the flush only updates). */
static void test_builtin_0007_keeps_heartbeats_and_gives_new_nodes_a_row(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	size_t upto6 = 0;
	while (upto6 < db_migrations_builtin_count &&
	       strncmp(db_migrations_builtin[upto6].name, "0007", 4) != 0)
		upto6++;
	assert_int_equal(upto6, 6);
	if (db_migrate(f->pool, db_migrations_builtin, upto6, &err))
		fail_msg("migrate to 6: %s", err.message);
	exec_ok(f->pool, "INSERT INTO pools (name, provider) VALUES ('p', 'fake')");
	exec_ok(f->pool, "INSERT INTO nodes (pool_id, name, state, last_seq, last_heartbeat_at, capacity) "
			 "SELECT id, 'a', 'ready', 41, '2026-01-02 03:04:05+00', '{\"gpus\": 8}' FROM pools");
	if (db_migrate(f->pool, db_migrations_builtin, db_migrations_builtin_count, &err))
		fail_msg("migrate: %s", err.message);
	assert_int_equal(count_rows(f->pool,
				    "SELECT count(*) FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id "
				    "WHERE n.name = 'a' AND h.last_seq = 41 AND (h.capacity->>'gpus')::int = 8 "
				    "AND h.last_heartbeat_at = '2026-01-02 03:04:05+00'"),
			 1);
	exec_ok(f->pool, "INSERT INTO nodes (pool_id, name) SELECT id, 'b' FROM pools");
	assert_int_equal(count_rows(f->pool,
				    "SELECT count(*) FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id "
				    "WHERE n.name = 'b' AND h.last_seq IS NULL"),
			 1);
	exec_ok(f->pool, "DELETE FROM nodes");
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM node_heartbeats"), 0);
}

static void test_migrate_again_is_a_noop(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	long long first;
	assert_int_equal(db_migrate(f->pool, migs_ab, 2, &err), 0);
	first = count_rows(f->pool, "SELECT max(extract(epoch FROM applied_at) * 1e6)::bigint "
				    "FROM nova_migrations");
	if (db_migrate(f->pool, migs_ab, 2, &err))
		fail_msg("second migrate: %s", err.message);
	/* 0002 inserts a row: run twice, there would be two. */
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM a"), 1);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM nova_migrations"), 2);
	assert_int_equal(count_rows(f->pool, "SELECT max(extract(epoch FROM applied_at) * 1e6)::bigint "
					     "FROM nova_migrations"),
			 first);
}

static void test_migrate_refuses_an_edited_migration_and_names_it(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	static const struct db_migration edited[] = {
		MIG("0001_init.sql", "CREATE TABLE a (x bigint);\n"),
		MIG("0002_b.sql", "CREATE TABLE b (x int);\n"),
	};
	static const struct db_migration original[] = {MIG("0001_init.sql", "CREATE TABLE a (x int);\n")};
	assert_int_equal(db_migrate(f->pool, original, 1, &err), 0);
	assert_int_equal(db_migrate(f->pool, edited, 2, &err), NOVA_ECONFLICT);
	assert_string_equal(err.message,
			    "migration 0001_init.sql was edited after it was applied (checksum differs)");
	assert_false(table_exists(f->pool, "b")); /* nothing after the refusal ran */
}

static void test_migrate_failing_migration_rolls_back_and_is_not_recorded(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	static const struct db_migration bad[] = {
		MIG("0001_a.sql", "CREATE TABLE a (x int);\n"),
		MIG("0002_half.sql", "CREATE TABLE half (x int);\nCREATE TABLE broken (;\n"),
	};
	static const struct db_migration fixed[] = {
		MIG("0001_a.sql", "CREATE TABLE a (x int);\n"),
		MIG("0002_half.sql", "CREATE TABLE half (x int);\n"),
	};
	assert_int_equal(db_migrate(f->pool, bad, 2, &err), NOVA_EINTERNAL);
	assert_non_null(strstr(err.message, "migration 0002_half.sql failed"));
	assert_false(table_exists(f->pool, "half"));
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM nova_migrations WHERE version = 2"), 0);
	/* Not recorded, so the corrected file applies (no checksum refusal). */
	if (db_migrate(f->pool, fixed, 2, &err))
		fail_msg("fixed migrate: %s", err.message);
	assert_true(table_exists(f->pool, "half"));
}

static void test_migrate_refuses_a_database_newer_than_the_binary(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	assert_int_equal(db_migrate(f->pool, migs_ab, 2, &err), 0);
	assert_int_equal(db_migrate(f->pool, migs_ab, 1, &err), NOVA_ECONFLICT);
	assert_string_equal(err.message, "database schema version 2 is newer than this novad");
}

static void test_migrate_applies_a_missing_version_below_an_applied_one(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	static const struct db_migration without_2[] = {
		MIG("0001_a.sql", "CREATE TABLE a (x int);"),
		MIG("0003_c.sql", "CREATE TABLE c (x int);"),
	};
	static const struct db_migration with_2[] = {
		MIG("0001_a.sql", "CREATE TABLE a (x int);"),
		MIG("0002_b.sql", "CREATE TABLE b (x int);"),
		MIG("0003_c.sql", "CREATE TABLE c (x int);"),
	};
	assert_int_equal(db_migrate(f->pool, without_2, 2, &err), 0);
	if (db_migrate(f->pool, with_2, 3, &err))
		fail_msg("migrate: %s", err.message);
	assert_true(table_exists(f->pool, "b"));
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM nova_migrations"), 3);
}

static void test_migrate_rejects_badly_named_migrations_before_touching_the_database(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	static const char *const names[] = {"1_a.sql", "abcd_a.sql", "0001a.sql", "0001_", "00012_a.sql"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct db_migration m = {names[i], "SELECT 1;", 9};
		assert_int_equal(db_migrate(f->pool, &m, 1, &err), NOVA_EINVAL);
		assert_non_null(strstr(err.message, names[i]));
	}
	assert_false(table_exists(f->pool, "nova_migrations"));
}

static void test_migrate_rejects_versions_out_of_order(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	static const struct db_migration unordered[] = {
		MIG("0002_b.sql", "CREATE TABLE b (x int);"),
		MIG("0001_a.sql", "CREATE TABLE a (x int);"),
	};
	static const struct db_migration duplicate[] = {
		MIG("0001_a.sql", "CREATE TABLE a (x int);"),
		MIG("0001_b.sql", "CREATE TABLE b (x int);"),
	};
	assert_int_equal(db_migrate(f->pool, unordered, 2, &err), NOVA_EINVAL);
	assert_int_equal(db_migrate(f->pool, duplicate, 2, &err), NOVA_EINVAL);
	assert_false(table_exists(f->pool, "a"));
	assert_false(table_exists(f->pool, "b"));
}

static void test_migrate_releases_its_lock_after_a_failure(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	static const struct db_migration bad[] = {MIG("0001_bad.sql", "SELECT 1/0;")};
	const char *params[1] = {MIGRATION_LOCK_KEY};
	PGconn *other;
	PGresult *r;
	assert_int_not_equal(db_migrate(f->pool, bad, 1, &err), 0);
	other = PQconnectdb(f->conninfo);
	assert_int_equal(PQstatus(other), CONNECTION_OK);
	r = PQexecParams(other, "SELECT pg_try_advisory_lock($1::bigint)", 1, NULL, params, NULL, NULL,
			 0);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "t");
	PQclear(r);
	PQfinish(other);
}

/* Slow enough that the four starts overlap inside it. */
static const struct db_migration migs_counted[] = {
	MIG("0001_runs.sql", "CREATE TABLE runs (n int);\n"),
	MIG("0002_count.sql", "SELECT pg_sleep(0.2);\nINSERT INTO runs VALUES (1);\n"),
};

struct mig_arg {
	const char *conninfo;
	int rc;
	char message[NOVA_ERR_MESSAGE_MAX];
};

static void *mig_worker(void *arg)
{
	struct mig_arg *m = arg;
	struct db_pool *p = NULL;
	struct nova_err err;
	nova_err_clear(&err);
	m->rc = db_pool_create(&p, m->conninfo, &(struct db_pool_config){.size = 1}, &err);
	if (!m->rc)
		m->rc = db_migrate(p, migs_counted, 2, &err);
	snprintf(m->message, sizeof(m->message), "%s", err.message);
	db_pool_destroy(p);
	return NULL;
}

static void test_migrate_from_four_threads_applies_each_migration_once(void **state)
{
	struct fx *f = *state;
	pthread_t th[4];
	struct mig_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct mig_arg){f->conninfo, -1, ""};
		assert_int_equal(pthread_create(&th[i], NULL, mig_worker, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++)
		if (args[i].rc)
			fail_msg("thread %d: %s", i, args[i].message);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM runs"), 1);
	assert_int_equal(count_rows(f->pool, "SELECT count(*) FROM nova_migrations"), 2);
}

static void test_migrations_check_reports_pending_without_creating_anything(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	assert_int_equal(db_migrations_check(f->pool, migs_ab, 2, &err), NOVA_EUNAVAIL);
	assert_string_equal(err.message, "2 migrations not applied yet");
	assert_false(table_exists(f->pool, "nova_migrations"));
	assert_int_equal(db_migrate(f->pool, migs_ab, 1, &err), 0);
	assert_int_equal(db_migrations_check(f->pool, migs_ab, 2, &err), NOVA_EUNAVAIL);
	assert_string_equal(err.message, "1 migration not applied yet");
}

static void test_migrations_check_is_ok_when_all_are_applied(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	assert_int_equal(db_migrate(f->pool, migs_ab, 2, &err), 0);
	assert_int_equal(db_migrations_check(f->pool, migs_ab, 2, &err), 0);
}

static void test_migrations_check_reports_an_edited_migration(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	static const struct db_migration edited[] = {
		MIG("0001_a.sql", "CREATE TABLE a (x int); -- edited\nCREATE TABLE a2 (y int);\n"),
	};
	assert_int_equal(db_migrate(f->pool, migs_ab, 1, &err), 0);
	assert_int_equal(db_migrations_check(f->pool, edited, 1, &err), NOVA_ECONFLICT);
	assert_non_null(strstr(err.message, "0001_a.sql"));
}

/* The schema in sql/, as compiled into novad. */
static void test_builtin_schema_applies(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	assert_true(db_migrations_builtin_count >= 1);
	if (db_migrate(f->pool, db_migrations_builtin, db_migrations_builtin_count, &err))
		fail_msg("builtin: %s", err.message);
	assert_int_equal(db_migrations_check(f->pool, db_migrations_builtin,
					     db_migrations_builtin_count, &err),
			 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
#define T1(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_one, fx_teardown)
#define TS(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_short, fx_teardown)
#define TS1(fn) cmocka_unit_test_setup_teardown(fn, fx_setup_short_one, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_exec_params_keep_sql_metacharacters_verbatim),
		T(test_exec_null_param_is_sql_null),
		T(test_exec_unique_violation_is_exists_with_constraint_and_sqlstate),
		T(test_exec_foreign_key_violation_is_conflict),
		T(test_exec_check_violation_is_invalid),
		T(test_exec_not_null_violation_is_invalid),
		T(test_exec_bad_input_syntax_is_invalid),
		T(test_exec_sql_syntax_error_is_internal),
		T(test_exec_one_without_a_row_is_not_found),
		T(test_exec_one_with_two_rows_is_internal),
		T(test_tx_run_rolls_back_when_fn_fails),
		T(test_tx_run_commits_when_fn_succeeds),
		T(test_tx_run_fails_when_fn_ignored_an_error),
		T(test_tx_commit_makes_rows_visible_to_other_connections),
		T(test_release_inside_a_transaction_rolls_it_back),
		T(test_pool_of_two_serves_eight_threads),
		T1(test_acquire_times_out_when_the_pool_is_exhausted),
		cmocka_unit_test(test_release_hands_the_connection_to_a_waiting_acquirer),
		cmocka_unit_test(test_pool_create_unreachable_is_unavailable_without_the_secret),
		cmocka_unit_test(test_pool_create_malformed_conninfo_is_invalid_without_the_secret),
		T1(test_acquire_reconnects_a_connection_the_server_closed),
		T1(test_exec_on_a_closed_connection_is_unavailable_then_recovers),
		T(test_ping_answers),
		TS1(test_a_statement_on_a_stopped_backend_is_unavailable_within_the_deadline),
		TS1(test_release_inside_a_transaction_of_a_stopped_backend_returns_within_the_deadline),
		cmocka_unit_test(
			test_connecting_to_a_server_that_never_answers_is_unavailable_within_the_deadline),
		TS(test_a_lock_wait_past_the_deadline_is_unavailable_and_the_pool_stays_usable),
		TS1(test_a_statement_the_server_times_out_is_unavailable_and_keeps_its_session),
		TS1(test_set_deadline_lifts_it_until_release),
		cmocka_unit_test_setup_teardown(test_migrations_longer_than_the_deadline_still_apply,
						fx_setup_tiny_deadline, fx_teardown),
		TS1(test_acquire_gives_up_after_a_second_by_default),
		T(test_advisory_lock_held_by_one_connection_is_refused_to_another),
		T1(test_release_drops_advisory_locks_left_held),
		T(test_migrate_applies_in_order_and_records_checksums),
		T(test_migrate_again_is_a_noop),
		T(test_migrate_refuses_an_edited_migration_and_names_it),
		T(test_migrate_failing_migration_rolls_back_and_is_not_recorded),
		T(test_migrate_refuses_a_database_newer_than_the_binary),
		T(test_migrate_applies_a_missing_version_below_an_applied_one),
		T(test_migrate_rejects_badly_named_migrations_before_touching_the_database),
		T(test_migrate_rejects_versions_out_of_order),
		T(test_migrate_releases_its_lock_after_a_failure),
		T(test_migrate_from_four_threads_applies_each_migration_once),
		T(test_builtin_0007_keeps_heartbeats_and_gives_new_nodes_a_row),
		T(test_migrations_check_reports_pending_without_creating_anything),
		T(test_migrations_check_is_ok_when_all_are_applied),
		T(test_migrations_check_reports_an_edited_migration),
		T(test_builtin_schema_applies),
	};
	return cmocka_run_group_tests(tests, quiet_setup, NULL);
}
