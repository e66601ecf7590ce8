/* The embedded PostgreSQL: real servers in fresh directories under /tmp
 * (the postgres user must reach them when the tests run as root). Each test
 * owns its directory; the teardown stops whatever still runs there and
 * removes it, also after a failed assertion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/db.h"
#include "core/log.h"
#include "core/pg_embedded.h"

struct emb {
	char top[64]; /* mkdtemp result */
	char dir[96]; /* top/pg: what pg_embedded_start gets */
	struct pg_embedded *pg, *pg2;
	struct db_pool *pool;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* The postmaster's pid from its lock file, or 0. */
static pid_t postmaster_pid(const struct emb *e)
{
	char path[160];
	long pid = 0;
	FILE *f;
	snprintf(path, sizeof(path), "%s/data/postmaster.pid", e->dir);
	if (!(f = fopen(path, "r")))
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* Gone or a zombie: no longer a server. */
static bool pid_dead(pid_t pid)
{
	char path[64], line[256];
	FILE *f;
	bool dead = true;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if (!(f = fopen(path, "r")))
		return true;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "State:", 6) == 0)
			dead = strchr(line, 'Z') != NULL;
	fclose(f);
	return dead;
}

static bool wait_gone(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (kill(pid, 0) != 0 && errno == ESRCH)
			return true;
		usleep(20 * 1000);
	}
	return pid_dead(pid);
}

static int emb_setup(void **state)
{
	struct emb *e = calloc(1, sizeof(*e));
	if (!e)
		return -1;
	snprintf(e->top, sizeof(e->top), "/tmp/nova-pgemb-XXXXXX");
	if (!mkdtemp(e->top)) {
		free(e);
		return -1;
	}
	snprintf(e->dir, sizeof(e->dir), "%s/pg", e->top);
	*state = e;
	return 0;
}

static int emb_teardown(void **state)
{
	struct emb *e = *state;
	pid_t pid;
	db_pool_destroy(e->pool);
	pg_embedded_stop(e->pg2);
	pg_embedded_stop(e->pg);
	/* Whatever a failed test left running: immediate shutdown. */
	if ((pid = postmaster_pid(e)) > 0 && !pid_dead(pid) && kill(pid, SIGQUIT) == 0)
		wait_gone(pid, 10000);
	int rc = nftw(e->top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(e);
	return rc;
}

static int quiet(void **state)
{
	(void)state;
	nova_log_set_level(NOVA_LOG_ERROR); /* "did not stop cleanly" is expected in places */
	return 0;
}

static void start_ok(struct pg_embedded **out, const char *dir)
{
	struct nova_err err;
	if (pg_embedded_start(out, dir, &err))
		fail_msg("start %s: %s (%s)", dir, err.message, err.hint);
}

/* Run sql on conninfo; the first value of the first row into out. */
static void query(char *out, size_t len, const char *conninfo, const char *sql)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r;
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("connect: %s", PQerrorMessage(c));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	snprintf(out, len, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	PQfinish(c);
}

static bool server_answers(const char *conninfo)
{
	return PQping(conninfo) == PQPING_OK;
}

static void test_start_serves_the_nova_database_on_a_socket_only(void **state)
{
	struct emb *e = *state;
	char v[128];
	start_ok(&e->pg, e->dir);
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "SELECT 1");
	assert_string_equal(v, "1");
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "SELECT current_database()");
	assert_string_equal(v, "nova");
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "SHOW listen_addresses");
	assert_string_equal(v, "");
}

static void test_stop_shuts_the_server_down(void **state)
{
	struct emb *e = *state;
	char conninfo[256];
	start_ok(&e->pg, e->dir);
	snprintf(conninfo, sizeof(conninfo), "%s", pg_embedded_conninfo(e->pg));
	assert_true(server_answers(conninfo));
	pg_embedded_stop(e->pg);
	e->pg = NULL;
	assert_false(server_answers(conninfo));
}

static void test_second_start_reuses_the_cluster_and_its_data(void **state)
{
	struct emb *e = *state;
	char v[64];
	start_ok(&e->pg, e->dir);
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "CREATE TABLE kept (a int)");
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "INSERT INTO kept VALUES (7)");
	pg_embedded_stop(e->pg);
	e->pg = NULL;
	start_ok(&e->pg, e->dir);
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "SELECT a FROM kept");
	assert_string_equal(v, "7");
}

static void test_pool_reconnects_after_the_server_restarts(void **state)
{
	struct emb *e = *state;
	struct nova_err err;
	struct db_conn *c;
	start_ok(&e->pg, e->dir);
	struct db_pool_config pc = {.size = 2};
	assert_int_equal(db_pool_create(&e->pool, pg_embedded_conninfo(e->pg), &pc, &err), 0);
	assert_int_equal(db_pool_exec(NULL, e->pool, "CREATE TABLE kept (a int)", 0, NULL, &err), 0);
	pg_embedded_stop(e->pg);
	e->pg = NULL;
	start_ok(&e->pg, e->dir);
	/* The pooled session died with the old server: acquire notices and
	 * reconnects, so the very first statement works. */
	assert_int_equal(db_conn_acquire(&c, e->pool, &err), 0);
	if (db_exec(NULL, c, "SELECT count(*) FROM kept", 0, NULL, &err))
		fail_msg("first statement after the restart: %s", err.message);
	db_conn_release(e->pool, c);
}

static void test_a_server_left_running_is_adopted(void **state)
{
	struct emb *e = *state;
	char v[16];
	pid_t before;
	start_ok(&e->pg, e->dir);
	before = postmaster_pid(e);
	assert_true(before > 0);
	/* e->pg is never stopped before the next start: as if its novad
	 * had been killed. */
	start_ok(&e->pg2, e->dir);
	assert_int_equal(postmaster_pid(e), before); /* the same server, not a second one */
	query(v, sizeof(v), pg_embedded_conninfo(e->pg2), "SELECT 1");
	assert_string_equal(v, "1");
}

static void test_an_adopted_server_is_stopped_by_its_adopter(void **state)
{
	struct emb *e = *state;
	char conninfo[256];
	start_ok(&e->pg, e->dir);
	start_ok(&e->pg2, e->dir);
	snprintf(conninfo, sizeof(conninfo), "%s", pg_embedded_conninfo(e->pg2));
	pg_embedded_stop(e->pg2);
	e->pg2 = NULL;
	assert_false(server_answers(conninfo));
}

static void test_start_after_the_server_was_killed(void **state)
{
	struct emb *e = *state;
	char v[16];
	pid_t pid;
	start_ok(&e->pg, e->dir);
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "CREATE TABLE kept (a int)");
	pid = postmaster_pid(e);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(wait_gone(pid, 10000));
	pg_embedded_stop(e->pg); /* nothing to stop: only frees */
	e->pg = NULL;
	/* postmaster.pid is stale now; the start must see through it. */
	start_ok(&e->pg, e->dir);
	assert_int_not_equal(postmaster_pid(e), pid);
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "SELECT count(*) FROM kept");
	assert_string_equal(v, "0");
}

static void test_a_relative_dir_is_made_absolute(void **state)
{
	struct emb *e = *state;
	char cwd[512], want[160], v[16];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(e->top), 0);
	struct nova_err err;
	int rc = pg_embedded_start(&e->pg, "pg", &err);
	assert_int_equal(chdir(cwd), 0);
	if (rc)
		fail_msg("start: %s", err.message);
	snprintf(want, sizeof(want), "host=%s dbname=nova user=nova", e->dir);
	assert_string_equal(pg_embedded_conninfo(e->pg), want);
	query(v, sizeof(v), pg_embedded_conninfo(e->pg), "SELECT 1");
	assert_string_equal(v, "1");
}

static void test_a_dir_with_blanks_or_quotes_is_refused(void **state)
{
	struct emb *e = *state;
	struct pg_embedded *pg = (struct pg_embedded *)1;
	struct nova_err err;
	char dir[160];
	static const char *const bad[] = {"has space", "quote'", "dq\"", "back\\slash", "tab\t"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(dir, sizeof(dir), "%s/%s", e->top, bad[i]);
		assert_int_equal(pg_embedded_start(&pg, dir, &err), NOVA_EINVAL);
		assert_null(pg);
		assert_string_equal(err.field, "state_dir");
		assert_int_not_equal(access(dir, F_OK), 0); /* refused before creating anything */
	}
}

static void test_a_dir_too_long_for_the_socket_is_refused(void **state)
{
	struct emb *e = *state;
	struct pg_embedded *pg = (struct pg_embedded *)1;
	struct nova_err err;
	char dir[200];
	snprintf(dir, sizeof(dir), "%s/%0100d", e->top, 0);
	assert_int_equal(pg_embedded_start(&pg, dir, &err), NOVA_EINVAL);
	assert_null(pg);
	assert_string_equal(err.field, "state_dir");
	assert_non_null(strstr(err.message, "too long"));
}

/* As root the server runs as postgres, which must pass through every
 * parent directory; mkdtemp made top 0700, and novad changes only the
 * immediate parent of the cluster directory. */
static void test_a_dir_the_postgres_user_cannot_reach_is_reported(void **state)
{
	struct emb *e = *state;
	struct pg_embedded *pg = (struct pg_embedded *)1;
	struct nova_err err;
	char dir[160];
	if (geteuid() != 0)
		skip();
	assert_int_equal(chmod(e->top, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/state/pg", e->top);
	assert_int_equal(pg_embedded_start(&pg, dir, &err), NOVA_EUNAVAIL);
	assert_null(pg);
	assert_string_equal(err.field, "state_dir");
	assert_non_null(strstr(err.message, "cannot enter"));
	assert_non_null(strstr(err.hint, "searchable"));
}

static void test_bindir_honours_nova_pg_bindir(void **state)
{
	char buf[512];
	struct nova_err err;
	(void)state;
	assert_int_equal(setenv("NOVA_PG_BINDIR", "/nonexistent/bin", 1), 0);
	assert_int_equal(pg_embedded_bindir(buf, sizeof(buf), &err), NOVA_EUNAVAIL);
	assert_string_equal(err.field, "NOVA_PG_BINDIR");
	unsetenv("NOVA_PG_BINDIR");
}

static void test_bindir_finds_the_installed_server(void **state)
{
	char buf[512], initdb[600];
	struct nova_err err;
	(void)state;
	unsetenv("NOVA_PG_BINDIR");
	assert_int_equal(pg_embedded_bindir(buf, sizeof(buf), &err), 0);
	snprintf(initdb, sizeof(initdb), "%s/initdb", buf);
	assert_int_equal(access(initdb, X_OK), 0);
}

static void test_stop_accepts_null(void **state)
{
	(void)state;
	pg_embedded_stop(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, emb_setup, emb_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_start_serves_the_nova_database_on_a_socket_only),
		T(test_stop_shuts_the_server_down),
		T(test_second_start_reuses_the_cluster_and_its_data),
		T(test_pool_reconnects_after_the_server_restarts),
		T(test_a_server_left_running_is_adopted),
		T(test_an_adopted_server_is_stopped_by_its_adopter),
		T(test_start_after_the_server_was_killed),
		T(test_a_relative_dir_is_made_absolute),
		T(test_a_dir_with_blanks_or_quotes_is_refused),
		T(test_a_dir_too_long_for_the_socket_is_refused),
		T(test_a_dir_the_postgres_user_cannot_reach_is_reported),
		cmocka_unit_test(test_bindir_honours_nova_pg_bindir),
		cmocka_unit_test(test_bindir_finds_the_installed_server),
		cmocka_unit_test(test_stop_accepts_null),
	};
	return cmocka_run_group_tests(tests, quiet, NULL);
}
