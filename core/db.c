/* PostgreSQL access: pool, statements, transactions, migrations.
 *
 * The pool is a fixed array of slots guarded by one mutex and a condition
 * variable. Slots connect lazily (only the first at create, so a wrong URL is
 * reported at start-up rather than on the first request). A pool of at most a
 * few dozen connections makes a linear scan cheaper and simpler than a free
 * list. Rejected: a connection per thread (thread-local PGconn), because
 * worker counts would then dictate database connections. */
#include "core/db.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/secret.h" /* secret_sha256_hex: OpenSSL EVP SHA-256 */

struct db_conn {
	PGconn *pg;
	bool broken;        /* reset before the next hand-out */
	bool in_use;
	unsigned adv_locks; /* session advisory locks taken through this API */
};

struct db_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled on release; waits use CLOCK_MONOTONIC */
	char *conninfo;
	struct db_conn *conns;
	unsigned size;
	unsigned acquire_timeout_ms;
};

#define DB_DEFAULT_ACQUIRE_TIMEOUT_MS 10000u

/* Server notices (NOTICE/WARNING, e.g. "relation already exists, skipping")
 * would otherwise go to stderr as raw text, outside the JSON log. They carry
 * nothing a caller acts on; debug level keeps them findable. */
static void db_notice(void *arg, const char *message)
{
	(void)arg;
	nova_log(NOVA_LOG_DEBUG, "db", "server notice: %.*s", (int)strcspn(message, "\n"), message);
}

/* First line of a libpq message, trailing blanks removed. libpq messages
 * end in a newline and may continue with a hint we do not want in one-line
 * errors. */
static void db_first_line(char *out, size_t len, const char *msg)
{
	size_t n;
	if (!msg)
		msg = "";
	n = strcspn(msg, "\r\n");
	while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\t'))
		n--;
	snprintf(out, len, "%.*s", (int)n, msg);
}

int db_pool_create(struct db_pool **out, const char *conninfo, unsigned size,
		   unsigned acquire_timeout_ms, struct nova_err *err)
{
	struct db_pool *p;
	struct db_conn *c;
	pthread_condattr_t ca;
	PQconninfoOption *opts;
	char *perr = NULL;
	int rc;
	*out = NULL;
	if (!conninfo || !*conninfo || size == 0)
		return nova_err_set(err, NOVA_EINVAL, "database_url", "no database connection given");
	/* libpq's parse errors quote the offending part of the string, which
	 * may be a password: say that it is malformed, not what libpq said. */
	opts = PQconninfoParse(conninfo, &perr);
	PQconninfoFree(opts);
	if (!opts) {
		PQfreemem(perr);
		nova_err_set(err, NOVA_EINVAL, "database_url",
			     "database_url is not a valid libpq connection string or URL");
		nova_err_set_hint(err, "use postgresql://user@host:port/dbname or "
				       "\"host=... dbname=... user=...\"");
		return NOVA_EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto oom;
	p->conninfo = strdup(conninfo);
	p->conns = calloc(size, sizeof(*p->conns));
	if (!p->conninfo || !p->conns)
		goto oom;
	/* A wall-clock step must not stretch or cut the acquire timeout. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&p->lock, NULL);
	p->size = size;
	p->acquire_timeout_ms = acquire_timeout_ms ? acquire_timeout_ms : DB_DEFAULT_ACQUIRE_TIMEOUT_MS;
	if ((rc = db_conn_acquire(&c, p, err))) {
		db_pool_destroy(p);
		return rc;
	}
	db_conn_release(p, c);
	*out = p;
	return 0;
oom:
	if (p) {
		free(p->conninfo);
		free(p->conns);
		free(p);
	}
	return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

void db_pool_destroy(struct db_pool *pool)
{
	if (!pool)
		return;
	/* Every connection must be released by now (a borrowed one would be
	 * freed under its user). Not asserted: a test that failed half-way
	 * still gets its pool torn down. */
	for (unsigned i = 0; i < pool->size; i++)
		if (pool->conns[i].pg)
			PQfinish(pool->conns[i].pg);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool->conns);
	/* The conninfo may hold a password. */
	explicit_bzero(pool->conninfo, strlen(pool->conninfo));
	free(pool->conninfo);
	free(pool);
}

/* An idle connection has nothing to read (Nova never LISTENs) unless the
 * server said goodbye: a restart sends a FATAL and closes, a killed server
 * leaves EOF. Either makes the socket readable. A spurious wake-up (a
 * ParameterStatus after a configuration reload) costs one reconnect, which
 * is cheaper than parsing the protocol here. */
static bool db_conn_looks_dead(PGconn *pg)
{
	struct pollfd pfd = {PQsocket(pg), POLLIN, 0};
	if (pfd.fd < 0)
		return true;
	return poll(&pfd, 1, 0) != 0;
}

/* Make c->pg a working connection: open it, or reset it when broken. Runs
 * without the pool lock held (connecting can take seconds). */
static int db_conn_ready(struct db_pool *pool, struct db_conn *c, struct nova_err *err)
{
	char line[256];
	if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK && !db_conn_looks_dead(c->pg))
		return 0;
	if (c->pg) {
		PQreset(c->pg);
	} else {
		/* A default connect timeout, so a dead host cannot hang a worker;
		 * keywords from the conninfo (expanded from "dbname" because it
		 * comes after) win over these defaults. */
		const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
		const char *const vals[] = {"10", "novad", pool->conninfo, NULL};
		c->pg = PQconnectdbParams(keys, vals, 1);
		if (!c->pg)
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		PQsetNoticeProcessor(c->pg, db_notice, NULL); /* survives PQreset */
	}
	/* Whatever the old session held is gone with it. */
	c->adv_locks = 0;
	if (PQstatus(c->pg) != CONNECTION_OK) {
		db_first_line(line, sizeof(line), PQerrorMessage(c->pg));
		c->broken = true;
		nova_err_set(err, NOVA_EUNAVAIL, "database_url", "cannot connect to the database: %s",
			     line);
		return NOVA_EUNAVAIL;
	}
	c->broken = false;
	return 0;
}

int db_conn_acquire(struct db_conn **out, struct db_pool *pool, struct nova_err *err)
{
	struct timespec deadline;
	struct db_conn *c = NULL;
	int rc;
	*out = NULL;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += pool->acquire_timeout_ms / 1000;
	deadline.tv_nsec += (long)(pool->acquire_timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&pool->lock);
	for (;;) {
		/* Prefer an open connection, then a slot to open one in. */
		for (unsigned i = 0; i < pool->size && !c; i++)
			if (!pool->conns[i].in_use && pool->conns[i].pg)
				c = &pool->conns[i];
		for (unsigned i = 0; i < pool->size && !c; i++)
			if (!pool->conns[i].in_use)
				c = &pool->conns[i];
		if (c)
			break;
		if (pthread_cond_timedwait(&pool->cond, &pool->lock, &deadline) == ETIMEDOUT) {
			pthread_mutex_unlock(&pool->lock);
			nova_err_set(err, NOVA_EUNAVAIL, "",
				     "database connection pool exhausted (%u connections busy for %u ms)",
				     pool->size, pool->acquire_timeout_ms);
			nova_err_set_hint(err, "raise database_pool_size, or look for slow queries");
			return NOVA_EUNAVAIL;
		}
	}
	c->in_use = true;
	pthread_mutex_unlock(&pool->lock);
	if ((rc = db_conn_ready(pool, c, err))) {
		db_conn_release(pool, c);
		return rc;
	}
	*out = c;
	return 0;
}

void db_conn_release(struct db_pool *pool, struct db_conn *conn)
{
	if (!conn)
		return;
	/* The next borrower must get a clean session: no open transaction and
	 * no advisory lock it did not take. If cleaning fails, reset it. */
	if (conn->pg && !conn->broken) {
		if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
			PQclear(PQexec(conn->pg, "ROLLBACK"));
		if (conn->adv_locks > 0) {
			PQclear(PQexec(conn->pg, "SELECT pg_advisory_unlock_all()"));
			conn->adv_locks = 0;
		}
		if (PQstatus(conn->pg) != CONNECTION_OK ||
		    PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
			conn->broken = true;
	}
	pthread_mutex_lock(&pool->lock);
	conn->in_use = false;
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

PGconn *db_conn_pg(struct db_conn *conn)
{
	return conn->pg;
}

static int db_code_for_state(const char *sqlstate)
{
	if (!sqlstate)
		return NOVA_EUNAVAIL; /* no SQLSTATE: libpq lost the connection */
	if (!strcmp(sqlstate, "23505"))
		return NOVA_EEXISTS;
	if (!strcmp(sqlstate, "23503"))
		return NOVA_ECONFLICT;
	if (!strcmp(sqlstate, "23514") || !strcmp(sqlstate, "23502") || !strncmp(sqlstate, "22", 2))
		return NOVA_EINVAL;
	if (!strcmp(sqlstate, "40001") || !strcmp(sqlstate, "40P01"))
		return NOVA_EAGAIN;
	if (!strncmp(sqlstate, "08", 2) || !strncmp(sqlstate, "57P0", 4))
		return NOVA_EUNAVAIL;
	return NOVA_EINTERNAL;
}

/* Turn a failed result into an error: PostgreSQL's primary message and the
 * SQLSTATE, e.g. 'duplicate key value violates unique constraint
 * "pools_name_key" (23505)'. A failure of the connection itself marks it
 * broken, so the pool resets it before the next borrower. */
static int db_result_error(struct db_conn *conn, const PGresult *res, struct nova_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[384];
	int code = db_code_for_state(state);
	if (code == NOVA_EUNAVAIL || PQstatus(conn->pg) != CONNECTION_OK) {
		conn->broken = true;
		code = NOVA_EUNAVAIL;
	}
	if (primary)
		db_first_line(line, sizeof(line), primary);
	else
		db_first_line(line, sizeof(line), PQerrorMessage(conn->pg));
	if (!line[0])
		snprintf(line, sizeof(line), "database connection lost");
	return nova_err_set(err, code, "", "%s (%s)", line, state ? state : "connection");
}

static bool db_result_ok(const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

int db_exec(PGresult **out, struct db_conn *conn, const char *sql, int n_params,
	    const char *const *params, struct nova_err *err)
{
	PGresult *res;
	if (out)
		*out = NULL;
	/* Text parameters only (NULL types, lengths and formats). */
	res = PQexecParams(conn->pg, sql, n_params, NULL, params, NULL, NULL, 0);
	if (!db_result_ok(res)) {
		int rc = db_result_error(conn, res, err);
		PQclear(res);
		return rc;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

int db_pool_exec(PGresult **out, struct db_pool *pool, const char *sql, int n_params,
		 const char *const *params, struct nova_err *err)
{
	struct db_conn *c;
	int rc;
	if (out)
		*out = NULL;
	if ((rc = db_conn_acquire(&c, pool, err)))
		return rc;
	rc = db_exec(out, c, sql, n_params, params, err);
	db_conn_release(pool, c);
	return rc;
}

int db_exec_one(PGresult **out, struct db_conn *conn, const char *sql, int n_params,
		const char *const *params, struct nova_err *err)
{
	PGresult *res;
	int n, rc;
	if (out)
		*out = NULL;
	if ((rc = db_exec(&res, conn, sql, n_params, params, err)))
		return rc;
	n = PQntuples(res);
	if (n != 1) {
		PQclear(res);
		if (n == 0)
			return nova_err_set(err, NOVA_ENOTFOUND, "", "not found");
		return nova_err_set(err, NOVA_EINTERNAL, "", "expected one row, got %d", n);
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

int db_tx_begin(struct db_conn *conn, struct nova_err *err)
{
	return db_exec(NULL, conn, "BEGIN", 0, NULL, err);
}

int db_tx_commit(struct db_conn *conn, struct nova_err *err)
{
	/* COMMIT of a transaction an earlier statement aborted "succeeds" as a
	 * ROLLBACK; a caller that ignored that statement's error must not
	 * believe its work was saved. */
	if (PQtransactionStatus(conn->pg) == PQTRANS_INERROR) {
		db_tx_rollback(conn);
		return nova_err_set(err, NOVA_EINTERNAL, "",
				    "transaction was aborted by an earlier error and rolled back");
	}
	return db_exec(NULL, conn, "COMMIT", 0, NULL, err);
}

void db_tx_rollback(struct db_conn *conn)
{
	struct nova_err ignored;
	if (conn->pg && PQtransactionStatus(conn->pg) != PQTRANS_IDLE &&
	    PQtransactionStatus(conn->pg) != PQTRANS_UNKNOWN)
		db_exec(NULL, conn, "ROLLBACK", 0, NULL, &ignored);
}

int db_tx_run(struct db_pool *pool, db_tx_fn fn, void *ctx, struct nova_err *err)
{
	struct db_conn *c;
	int rc;
	if ((rc = db_conn_acquire(&c, pool, err)))
		return rc;
	rc = db_tx_begin(c, err);
	if (rc == NOVA_EUNAVAIL && c->broken) {
		/* The connection died while idle in the pool (the acquire probe
		 * cannot see every death, e.g. a silent network): nothing ran, so
		 * one retry on a fresh session is safe. */
		if ((rc = db_conn_ready(pool, c, err)) == 0)
			rc = db_tx_begin(c, err);
	}
	if (rc == 0) {
		rc = fn(c, ctx, err);
		if (rc == 0)
			rc = db_tx_commit(c, err);
		else
			db_tx_rollback(c);
	}
	db_conn_release(pool, c);
	return rc;
}

int db_advisory_try_lock(bool *got, struct db_conn *conn, long long key, struct nova_err *err)
{
	char k[24];
	const char *params[1] = {k};
	PGresult *res;
	int rc;
	*got = false;
	snprintf(k, sizeof(k), "%lld", key);
	if ((rc = db_exec_one(&res, conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, err)))
		return rc;
	*got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (*got)
		conn->adv_locks++;
	return 0;
}

int db_advisory_unlock(struct db_conn *conn, long long key, struct nova_err *err)
{
	char k[24];
	const char *params[1] = {k};
	PGresult *res;
	int rc;
	snprintf(k, sizeof(k), "%lld", key);
	if ((rc = db_exec_one(&res, conn, "SELECT pg_advisory_unlock($1::bigint)", 1, params, err)))
		return rc;
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0 && conn->adv_locks > 0)
		conn->adv_locks--;
	PQclear(res);
	return 0;
}

int db_ping(struct db_pool *pool, struct nova_err *err)
{
	return db_pool_exec(NULL, pool, "SELECT 1", 0, NULL, err);
}

/* --- migrations ----------------------------------------------------------- */

/* Advisory lock key serializing migrations across novad processes: the
 * ASCII bytes of "NOVAMIGR". Other Nova advisory keys must differ. */
#define DB_MIGRATION_LOCK_KEY 0x4E4F56414D494752LL

/* The version number of "NNNN_name.sql", or NOVA_EINVAL. */
static int db_migration_version(const struct db_migration *m, struct nova_err *err)
{
	const char *n = m->name;
	if (!n || strlen(n) < 6 || n[4] != '_')
		goto bad;
	for (int i = 0; i < 4; i++)
		if (n[i] < '0' || n[i] > '9')
			goto bad;
	return (n[0] - '0') * 1000 + (n[1] - '0') * 100 + (n[2] - '0') * 10 + (n[3] - '0');
bad:
	nova_err_set(err, NOVA_EINVAL, "", "migration name %s is not NNNN_name.sql", n ? n : "(null)");
	nova_err_set_hint(err, "name migrations with four digits and an underscore: 0001_init.sql");
	return NOVA_EINVAL;
}

/* Names well formed, versions strictly ascending. */
static int db_migrations_validate(const struct db_migration *migs, size_t n, struct nova_err *err)
{
	int prev = -1;
	for (size_t i = 0; i < n; i++) {
		int v = db_migration_version(&migs[i], err);
		if (v < 0)
			return v;
		if (v <= prev)
			return nova_err_set(err, NOVA_EINVAL, "",
					    "migration %s is out of order (versions must ascend)",
					    migs[i].name);
		prev = v;
	}
	return 0;
}

/* Compare the recorded rows with the given migrations. applied[i] (n
 * entries, may be NULL) tells whether migs[i] is recorded; *pending counts
 * those that are not. Refuses an edited migration and a recorded version
 * this binary does not know. */
static int db_migrations_verify(struct db_conn *c, const struct db_migration *migs, size_t n,
				bool *applied, size_t *pending, struct nova_err *err)
{
	PGresult *res;
	size_t found = 0;
	int rc;
	*pending = n;
	if ((rc = db_exec(&res, c, "SELECT version, checksum FROM nova_migrations ORDER BY version",
			  0, NULL, err)))
		return rc;
	for (int r = 0; r < PQntuples(res); r++) {
		int v = atoi(PQgetvalue(res, r, 0));
		char sum[SECRET_HEX_SHA256_LEN];
		size_t i;
		for (i = 0; i < n; i++)
			if (db_migration_version(&migs[i], NULL) == v)
				break;
		if (i == n) {
			rc = nova_err_set(err, NOVA_ECONFLICT, "",
					  "database schema version %d is newer than this novad", v);
			nova_err_set_hint(err, "run a novad at least as new as the one that last "
					       "migrated this database");
			goto out;
		}
		secret_sha256_hex(sum, migs[i].sql, migs[i].len);
		if (strcmp(sum, PQgetvalue(res, r, 1)) != 0) {
			rc = nova_err_set(err, NOVA_ECONFLICT, "",
					  "migration %s was edited after it was applied (checksum differs)",
					  migs[i].name);
			nova_err_set_hint(err, "never edit an applied migration; add a new one");
			goto out;
		}
		if (applied)
			applied[i] = true;
		found++;
	}
	*pending = n - found;
out:
	PQclear(res);
	return rc;
}

/* Run one migration and record it, in one transaction. */
static int db_migration_apply(struct db_conn *c, const struct db_migration *m, struct nova_err *err)
{
	char v[16], sum[SECRET_HEX_SHA256_LEN], msg[NOVA_ERR_MESSAGE_MAX];
	const char *params[3] = {v, m->name, sum};
	PGresult *res;
	int rc;
	snprintf(v, sizeof(v), "%d", db_migration_version(m, NULL));
	secret_sha256_hex(sum, m->sql, m->len);
	if ((rc = db_tx_begin(c, err)))
		return rc;
	/* The one statement not run through PQexecParams: a migration body is
	 * several statements, which only the simple query protocol accepts,
	 * and its text is our own file compiled into the binary, never
	 * anything built from input. (So a migration cannot use statements
	 * refused inside a transaction, e.g. CREATE INDEX CONCURRENTLY.) */
	res = PQexec(c->pg, m->sql);
	if (!db_result_ok(res)) {
		struct nova_err inner;
		rc = db_result_error(c, res, &inner);
		PQclear(res);
		db_tx_rollback(c);
		snprintf(msg, sizeof(msg), "%s", inner.message);
		return nova_err_set(err, rc, "", "migration %s failed: %s", m->name, msg);
	}
	PQclear(res);
	if ((rc = db_exec(NULL, c,
			  "INSERT INTO nova_migrations (version, name, checksum) "
			  "VALUES ($1::integer, $2, $3)",
			  3, params, err))) {
		db_tx_rollback(c);
		return rc;
	}
	if ((rc = db_tx_commit(c, err)))
		return rc;
	nova_log_kv(NOVA_LOG_INFO, "db", "migration applied", "name", m->name, "version", v, NULL);
	return 0;
}

int db_migrate(struct db_pool *pool, const struct db_migration *migs, size_t n,
	       struct nova_err *err)
{
	struct db_conn *c;
	struct nova_err ignored;
	char key[24];
	const char *params[1] = {key};
	bool *applied;
	size_t pending;
	int rc;
	if ((rc = db_migrations_validate(migs, n, err)))
		return rc;
	applied = calloc(n ? n : 1, sizeof(*applied));
	if (!applied)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = db_conn_acquire(&c, pool, err))) {
		free(applied);
		return rc;
	}
	/* Session-level and blocking: a second novad starting at the same time
	 * waits here, then finds everything applied. Taken outside this API's
	 * lock count on purpose: it is released below on every path, and a
	 * lost session releases it by itself. */
	snprintf(key, sizeof(key), "%lld", DB_MIGRATION_LOCK_KEY);
	if ((rc = db_exec(NULL, c, "SELECT pg_advisory_lock($1::bigint)", 1, params, err)))
		goto out;
	rc = db_exec(NULL, c,
		     "CREATE TABLE IF NOT EXISTS nova_migrations ("
		     " version integer PRIMARY KEY,"
		     " name text NOT NULL,"
		     " checksum text NOT NULL,"
		     " applied_at timestamptz NOT NULL DEFAULT now())",
		     0, NULL, err);
	if (rc == 0)
		rc = db_migrations_verify(c, migs, n, applied, &pending, err);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (!applied[i])
			rc = db_migration_apply(c, &migs[i], err);
	db_exec(NULL, c, "SELECT pg_advisory_unlock($1::bigint)", 1, params, &ignored);
out:
	db_conn_release(pool, c);
	free(applied);
	return rc;
}

int db_migrations_check(struct db_pool *pool, const struct db_migration *migs, size_t n,
			struct nova_err *err)
{
	struct db_conn *c;
	PGresult *res;
	size_t pending = n;
	int rc;
	if ((rc = db_migrations_validate(migs, n, err)))
		return rc;
	if ((rc = db_conn_acquire(&c, pool, err)))
		return rc;
	/* Read-only: a database never migrated has no table yet, and /readyz
	 * must not create it. */
	rc = db_exec_one(&res, c, "SELECT to_regclass('nova_migrations') IS NOT NULL", 0, NULL, err);
	if (rc == 0) {
		bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (exists)
			rc = db_migrations_verify(c, migs, n, NULL, &pending, err);
	}
	db_conn_release(pool, c);
	if (rc == 0 && pending > 0)
		rc = nova_err_set(err, NOVA_EUNAVAIL, "", "%zu migration%s not applied yet", pending,
				  pending == 1 ? "" : "s");
	return rc;
}
