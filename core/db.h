/* PostgreSQL access: a connection pool, parameterized statements only,
 * transactions, and the migrations runner.
 *
 * There is deliberately no function that runs a statement with interpolated
 * values: every statement goes through PQexecParams with text parameters.
 * SQLSTATEs map to Nova codes so callers can tell "exists" from "down":
 *   23505 unique_violation         -> NOVA_EEXISTS
 *   23503 foreign_key_violation    -> NOVA_ECONFLICT
 *   23514/23502/22xxx check, null, data exceptions -> NOVA_EINVAL
 *   40001/40P01 serialization, deadlock            -> NOVA_EAGAIN
 *   08xxx, 57P0x, or a connection gone bad         -> NOVA_EUNAVAIL
 *   anything else                                  -> NOVA_EINTERNAL
 * The SQLSTATE itself is kept in the message so logs stay precise. */
#ifndef NOVA_CORE_DB_H
#define NOVA_CORE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct db_pool;
struct db_conn;

/* SQL expression rendering a timestamptz column as RFC 3339 UTC text
 * ("2026-11-23T05:18:35Z"); '' for NULL. For use in SELECT lists only. */
#define DB_TS(col)                                                                  \
	"coalesce(to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"

/* conninfo is a libpq URL or key=value string; it is never logged. The pool
 * opens connections lazily, up to size, and blocks acquirers when all are in
 * use (for at most acquire_timeout_ms; 0 means 10000). */
int db_pool_create(struct db_pool **out, const char *conninfo, unsigned size,
		   unsigned acquire_timeout_ms, struct nova_err *err);
void db_pool_destroy(struct db_pool *pool);

/* A connection found broken (server restarted) is reset before it is handed
 * out, so callers see a working connection or NOVA_EUNAVAIL. */
int db_conn_acquire(struct db_conn **out, struct db_pool *pool, struct nova_err *err);
/* A connection released inside an open transaction is rolled back first. */
void db_conn_release(struct db_pool *pool, struct db_conn *conn);
PGconn *db_conn_pg(struct db_conn *conn);

/* Run one parameterized statement. On success *out (if out is not NULL)
 * receives the result, which the caller PQclear()s; with out == NULL the
 * result is discarded. params may contain NULLs for SQL NULL. */
int db_exec(PGresult **out, struct db_conn *conn, const char *sql, int n_params,
	    const char *const *params, struct nova_err *err);

/* One statement on a pooled connection: acquire, db_exec, release. */
int db_pool_exec(PGresult **out, struct db_pool *pool, const char *sql, int n_params,
		 const char *const *params, struct nova_err *err);

/* Convenience: run and require exactly one row; 0 rows is NOVA_ENOTFOUND. */
int db_exec_one(PGresult **out, struct db_conn *conn, const char *sql, int n_params,
		const char *const *params, struct nova_err *err);

int db_tx_begin(struct db_conn *conn, struct nova_err *err);
int db_tx_commit(struct db_conn *conn, struct nova_err *err);
void db_tx_rollback(struct db_conn *conn);

/* Acquire, BEGIN, fn, COMMIT (or ROLLBACK when fn fails), release. A
 * connection found dead at BEGIN is reset and BEGIN retried once; nothing is
 * retried after fn ran, because its effects may have committed. */
typedef int (*db_tx_fn)(struct db_conn *conn, void *ctx, struct nova_err *err);
int db_tx_run(struct db_pool *pool, db_tx_fn fn, void *ctx, struct nova_err *err);

/* Session-level advisory locks (singleton duties). try_lock sets *got. */
int db_advisory_try_lock(bool *got, struct db_conn *conn, long long key, struct nova_err *err);
int db_advisory_unlock(struct db_conn *conn, long long key, struct nova_err *err);

/* Cheap liveness probe (SELECT 1) on a pooled connection. */
int db_ping(struct db_pool *pool, struct nova_err *err);

/* --- migrations ------------------------------------------------------- */

struct db_migration {
	const char *name;   /* "0001_init.sql": the version is the leading digits */
	const char *sql;
	size_t len;
};

/* Migrations compiled into the binary from sql/ (generated at build time). */
extern const struct db_migration db_migrations_builtin[];
extern const size_t db_migrations_builtin_count;

/* Apply, in order, every migration not yet recorded in nova_migrations, each
 * in its own transaction, all under one advisory lock (so concurrent novad
 * start-ups apply each exactly once). Refuses (NOVA_ECONFLICT) when an
 * applied migration's SHA-256 differs from the file's, or when the database
 * has a migration this binary does not know (it is newer than we are). */
int db_migrate(struct db_pool *pool, const struct db_migration *migs, size_t n,
	       struct nova_err *err);
/* 0 when every migration is applied with a matching checksum; otherwise
 * NOVA_EUNAVAIL (pending) or NOVA_ECONFLICT (edited), with the name. */
int db_migrations_check(struct db_pool *pool, const struct db_migration *migs, size_t n,
			struct nova_err *err);

#endif
