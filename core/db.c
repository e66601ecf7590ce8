#include "core/db.h"

#include <errno.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/secret.h"

struct db_conn {
	PGconn *pg;
	bool broken;
	bool in_use;
};

struct db_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *conninfo;
	struct db_conn *conns;
	unsigned size;
	unsigned acquire_timeout_ms;
};

static void db_notice_ignore(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* First line of libpq's message, without the "ERROR:  " noise. */
static void db_first_line(char *out, size_t len, const char *msg)
{
	if (!msg)
		msg = "";
	snprintf(out, len, "%.*s", (int)strcspn(msg, "\n"), msg);
}

int db_pool_create(struct db_pool **out, const char *conninfo, unsigned size,
		   unsigned acquire_timeout_ms, struct nova_err *err)
{
	struct db_pool *p;
	*out = NULL;
	if (!conninfo || size == 0)
		return nova_err_set(err, NOVA_EINVAL, "database_url", "no database connection given");
	p = calloc(1, sizeof(*p));
	if (!p || !(p->conninfo = strdup(conninfo)) || !(p->conns = calloc(size, sizeof(*p->conns)))) {
		if (p)
			free(p->conninfo);
		free(p);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->size = size;
	p->acquire_timeout_ms = acquire_timeout_ms ? acquire_timeout_ms : 10000;
	/* Connect one now, so a wrong URL is reported at start-up. */
	struct db_conn *c;
	int rc = db_conn_acquire(&c, p, err);
	if (rc) {
		db_pool_destroy(p);
		return rc;
	}
	db_conn_release(p, c);
	*out = p;
	return 0;
}

void db_pool_destroy(struct db_pool *pool)
{
	if (!pool)
		return;
	for (unsigned i = 0; i < pool->size; i++)
		if (pool->conns[i].pg)
			PQfinish(pool->conns[i].pg);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool->conns);
	explicit_bzero(pool->conninfo, strlen(pool->conninfo));
	free(pool->conninfo);
	free(pool);
}

/* Make c->pg a working connection: open it, or reset it when broken. */
static int db_conn_ready(struct db_pool *pool, struct db_conn *c, struct nova_err *err)
{
	char line[256];
	if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK) {
		/* An idle connection has nothing to read (Nova never LISTENs)
		 * unless the server said goodbye: a restart sends a FATAL and
		 * closes. Reconnect now rather than fail the caller's first
		 * statement. */
		struct pollfd pfd = {PQsocket(c->pg), POLLIN, 0};
		if (poll(&pfd, 1, 0) <= 0)
			return 0;
		c->broken = true;
	}
	if (c->pg) {
		PQreset(c->pg);
	} else {
		/* A default connect timeout, so a dead host cannot hang a worker;
		 * the conninfo's own connect_timeout, if any, wins (it is
		 * expanded after). */
		const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
		const char *const vals[] = {"10", "novad", pool->conninfo, NULL};
		c->pg = PQconnectdbParams(keys, vals, 1);
		if (c->pg)
			PQsetNoticeProcessor(c->pg, db_notice_ignore, NULL);
	}
	if (!c->pg)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if (PQstatus(c->pg) != CONNECTION_OK) {
		db_first_line(line, sizeof(line), PQerrorMessage(c->pg));
		nova_err_set(err, NOVA_EUNAVAIL, "database_url", "cannot connect to the database: %s",
			     line);
		c->broken = true;
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
	clock_gettime(CLOCK_REALTIME, &deadline);
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
			return nova_err_set(err, NOVA_EUNAVAIL, "",
					    "database connection pool exhausted (%u connections busy)",
					    pool->size);
		}
	}
	c->in_use = true;
	pthread_mutex_unlock(&pool->lock);
	/* Connecting happens outside the lock: it can take a while. */
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
	if (conn->pg && !conn->broken && PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
		PGresult *r = PQexec(conn->pg, "ROLLBACK");
		PQclear(r);
		if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
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
		return NOVA_EUNAVAIL; /* no SQLSTATE: the connection failed */
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

/* Turn a failed result into an error; marks the connection broken when the
 * failure was the connection's. */
static int db_result_error(struct db_conn *conn, PGresult *res, struct nova_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[384];
	int code = db_code_for_state(state);
	if (PQstatus(conn->pg) != CONNECTION_OK || code == NOVA_EUNAVAIL)
		conn->broken = PQstatus(conn->pg) != CONNECTION_OK;
	if (primary)
		snprintf(line, sizeof(line), "%s", primary);
	else
		db_first_line(line, sizeof(line), PQerrorMessage(conn->pg));
	if (PQstatus(conn->pg) != CONNECTION_OK) {
		conn->broken = true;
		code = NOVA_EUNAVAIL;
	}
	return nova_err_set(err, code, "", "%s (%s)", line, state ? state : "connection");
}

int db_exec(PGresult **out, struct db_conn *conn, const char *sql, int n_params,
	    const char *const *params, struct nova_err *err)
{
	PGresult *res;
	if (out)
		*out = NULL;
	res = PQexecParams(conn->pg, sql, n_params, NULL, params, NULL, NULL, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
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
	int rc = db_exec(&res, conn, sql, n_params, params, err);
	*out = NULL;
	if (rc)
		return rc;
	if (PQntuples(res) != 1) {
		int n = PQntuples(res);
		PQclear(res);
		if (n == 0)
			return nova_err_set(err, NOVA_ENOTFOUND, "", "not found");
		return nova_err_set(err, NOVA_EINTERNAL, "", "expected one row, got %d", n);
	}
	*out = res;
	return 0;
}

int db_tx_begin(struct db_conn *conn, struct nova_err *err)
{
	return db_exec(NULL, conn, "BEGIN", 0, NULL, err);
}

int db_tx_commit(struct db_conn *conn, struct nova_err *err)
{
	return db_exec(NULL, conn, "COMMIT", 0, NULL, err);
}

void db_tx_rollback(struct db_conn *conn)
{
	struct nova_err ignored;
	if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
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
		/* The server restarted under an idle connection: nothing ran yet,
		 * so one retry on a fresh connection is safe. */
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
	return 0;
}

int db_advisory_unlock(struct db_conn *conn, long long key, struct nova_err *err)
{
	char k[24];
	const char *params[1] = {k};
	snprintf(k, sizeof(k), "%lld", key);
	return db_exec(NULL, conn, "SELECT pg_advisory_unlock($1::bigint)", 1, params, err);
}

int db_ping(struct db_pool *pool, struct nova_err *err)
{
	struct db_conn *c;
	int rc = db_conn_acquire(&c, pool, err);
	if (rc)
		return rc;
	rc = db_exec(NULL, c, "SELECT 1", 0, NULL, err);
	db_conn_release(pool, c);
	return rc;
}

/* --- migrations ----------------------------------------------------------- */

/* Advisory lock key serializing migrations across novad processes
 * ('NOVAMIGR' as ASCII). */
#define DB_MIGRATION_LOCK_KEY 0x4E4F56414D494752LL

static int db_migration_version(const struct db_migration *m, struct nova_err *err)
{
	const char *n = m->name;
	if (!n || strlen(n) < 6 || n[4] != '_')
		goto bad;
	for (int i = 0; i < 4; i++)
		if (n[i] < '0' || n[i] > '9')
			goto bad;
	return atoi(n);
bad:
	return nova_err_set(err, NOVA_EINVAL, "", "migration name %s is not NNNN_name.sql",
			    n ? n : "(null)");
}

static int db_migrations_ensure_table(struct db_conn *c, struct nova_err *err)
{
	return db_exec(NULL, c,
		       "CREATE TABLE IF NOT EXISTS nova_migrations ("
		       " version integer PRIMARY KEY, name text NOT NULL,"
		       " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
		       0, NULL, err);
}

/* Compare the applied rows with the given migrations. *pending receives the
 * number not applied yet. */
static int db_migrations_verify(struct db_conn *c, const struct db_migration *migs, size_t n,
				size_t *pending, struct nova_err *err)
{
	PGresult *res;
	int rc;
	*pending = 0;
	if ((rc = db_exec(&res, c, "SELECT version, name, checksum FROM nova_migrations ORDER BY version",
			  0, NULL, err)))
		return rc;
	for (int r = 0; r < PQntuples(res); r++) {
		int v = atoi(PQgetvalue(res, r, 0));
		size_t i;
		for (i = 0; i < n; i++) {
			int mv = db_migration_version(&migs[i], err);
			if (mv < 0) {
				PQclear(res);
				return mv;
			}
			if (mv == v)
				break;
		}
		if (i == n) {
			rc = nova_err_set(err, NOVA_ECONFLICT, "",
					  "database schema version %d (%s) is newer than this novad", v,
					  PQgetvalue(res, r, 1));
			PQclear(res);
			return rc;
		}
		char sum[SECRET_HEX_SHA256_LEN];
		secret_sha256_hex(sum, migs[i].sql, migs[i].len);
		if (strcmp(sum, PQgetvalue(res, r, 2)) != 0) {
			rc = nova_err_set(err, NOVA_ECONFLICT, "",
					  "migration %s was edited after it was applied (checksum differs)",
					  migs[i].name);
			nova_err_set_hint(err, "never edit an applied migration; add a new one");
			PQclear(res);
			return rc;
		}
	}
	*pending = n - (size_t)PQntuples(res);
	PQclear(res);
	return 0;
}

static int db_migration_apply(struct db_conn *c, const struct db_migration *m, int version,
			      struct nova_err *err)
{
	char v[16], sum[SECRET_HEX_SHA256_LEN];
	const char *params[3] = {v, m->name, sum};
	PGresult *res;
	int rc;
	snprintf(v, sizeof(v), "%d", version);
	secret_sha256_hex(sum, m->sql, m->len);
	if ((rc = db_tx_begin(c, err)))
		return rc;
	/* The one statement not run through PQexecParams: a migration is many
	 * statements, and its text is our own file compiled into the binary,
	 * never anything built from input. */
	res = PQexec(c->pg, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		rc = db_result_error(c, res, err);
		PQclear(res);
		db_tx_rollback(c);
		char msg[NOVA_ERR_MESSAGE_MAX];
		snprintf(msg, sizeof(msg), "%s", err ? err->message : "");
		return nova_err_set(err, rc, "", "migration %s failed: %s", m->name, msg);
	}
	PQclear(res);
	if ((rc = db_exec(NULL, c,
			  "INSERT INTO nova_migrations (version, name, checksum) VALUES ($1::integer, $2, $3)",
			  3, params, err))) {
		db_tx_rollback(c);
		return rc;
	}
	if ((rc = db_tx_commit(c, err)))
		return rc;
	nova_log_kv(NOVA_LOG_INFO, "db", "migration applied", "name", m->name, NULL);
	return 0;
}

int db_migrate(struct db_pool *pool, const struct db_migration *migs, size_t n,
	       struct nova_err *err)
{
	struct db_conn *c;
	char key[24];
	const char *params[1] = {key};
	size_t pending;
	int rc, prev = -1;
	for (size_t i = 0; i < n; i++) {
		int v = db_migration_version(&migs[i], err);
		if (v < 0)
			return v;
		if (v <= prev)
			return nova_err_set(err, NOVA_EINVAL, "", "migration %s is out of order",
					    migs[i].name);
		prev = v;
	}
	if ((rc = db_conn_acquire(&c, pool, err)))
		return rc;
	snprintf(key, sizeof(key), "%lld", DB_MIGRATION_LOCK_KEY);
	if ((rc = db_exec(NULL, c, "SELECT pg_advisory_lock($1::bigint)", 1, params, err)))
		goto out;
	if ((rc = db_migrations_ensure_table(c, err)) ||
	    (rc = db_migrations_verify(c, migs, n, &pending, err)))
		goto unlock;
	for (size_t i = n - pending; i < n && rc == 0; i++)
		rc = db_migration_apply(c, &migs[i], db_migration_version(&migs[i], err), err);
unlock:;
	struct nova_err ignored;
	db_exec(NULL, c, "SELECT pg_advisory_unlock($1::bigint)", 1, params, &ignored);
out:
	db_conn_release(pool, c);
	return rc;
}

int db_migrations_check(struct db_pool *pool, const struct db_migration *migs, size_t n,
			struct nova_err *err)
{
	struct db_conn *c;
	PGresult *res;
	size_t pending = n;
	int rc;
	if ((rc = db_conn_acquire(&c, pool, err)))
		return rc;
	rc = db_exec_one(&res, c, "SELECT to_regclass('nova_migrations') IS NOT NULL", 0, NULL, err);
	if (rc == 0) {
		bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (exists)
			rc = db_migrations_verify(c, migs, n, &pending, err);
	}
	db_conn_release(pool, c);
	if (rc == 0 && pending > 0)
		rc = nova_err_set(err, NOVA_EUNAVAIL, "", "%zu migration%s not applied yet", pending,
				  pending == 1 ? "" : "s");
	return rc;
}
