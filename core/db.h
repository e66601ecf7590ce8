/* PostgreSQL access: a connection pool, parameterized statements only,
 * transactions, and the migrations runner.
 *
 * There is deliberately no function that runs a statement with interpolated
 * values: every statement is sent with PQsendQueryParams and text
 * parameters. SQLSTATEs map to Nova codes so callers can tell "exists" from
 * "down":
 *   23505 unique_violation         -> NOVA_EEXISTS
 *   23503 foreign_key_violation    -> NOVA_ECONFLICT
 *   23514/23502/22xxx check, null, data exceptions -> NOVA_EINVAL
 *   40001/40P01 serialization, deadlock            -> NOVA_EAGAIN
 *   08xxx, 57P0x, or a connection gone bad         -> NOVA_EUNAVAIL
 *   57014 query_canceled (the server's statement_timeout) -> NOVA_EUNAVAIL
 *   anything else                                  -> NOVA_EINTERNAL
 * The SQLSTATE itself is kept in the message so logs stay precise.
 *
 * Nothing here waits on the database without a deadline, so a database
 * that stops answering turns into NOVA_EUNAVAIL (a 503) instead of blocked
 * threads: every statement, connecting, and waiting for a pooled
 * connection are bounded (see db_pool_config). A statement that misses its
 * deadline fails with NOVA_EUNAVAIL ("the database did not answer within
 * 2000 ms") and its connection is closed: db_conn_pg then returns NULL,
 * every later statement on it fails at once with NOVA_EUNAVAIL, and the
 * next acquirer gets a new connection. The same deadline, shortened by a
 * tenth (at least 100 ms), is the session's statement_timeout on the
 * server, so a statement waiting for a lock on a live server ends there
 * (57014) and keeps its connection. */
#ifndef NOVA_CORE_DB_H
#define NOVA_CORE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/textbuf.h"

struct db_pool;
struct db_conn;

/* SQL expression rendering a timestamptz column as RFC 3339 UTC text
 * ("2026-11-23T05:18:35Z"); '' for NULL. For use in SELECT lists only. */
#define DB_TS(col)                                                                  \
	"coalesce(to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"

#define DB_DEFAULT_ACQUIRE_TIMEOUT_MS 1000u
#define DB_DEFAULT_STATEMENT_TIMEOUT_MS 2000u

struct db_pool_config {
	unsigned size;               /* connections at most, opened lazily; >= 1 */
	/* How long an acquirer waits for a free connection before
	 * NOVA_EUNAVAIL; 0: DB_DEFAULT_ACQUIRE_TIMEOUT_MS. */
	unsigned acquire_timeout_ms;
	/* Deadline of each statement, and of opening a connection;
	 * 0: DB_DEFAULT_STATEMENT_TIMEOUT_MS. */
	unsigned statement_timeout_ms;
};

/* conninfo is a libpq URL or key=value string; it is never logged, and its
 * keywords win over the pool's defaults (application_name=novad, TCP
 * keepalives). The first connection is opened here, so an unreachable
 * database is NOVA_EUNAVAIL at start-up. */
int db_pool_create(struct db_pool **out, const char *conninfo, const struct db_pool_config *cfg,
		   struct nova_err *err);
void db_pool_destroy(struct db_pool *pool);

/* The pool as /metrics shows it. */
struct metrics_hist;
struct db_pool_stats {
	unsigned size, open, in_use;
	unsigned long long waits;            /* acquirers that found no free connection */
	unsigned long long wait_timeouts;    /* ... and gave up after acquire_timeout_ms */
	unsigned long long breaker_refusals; /* refused at once, the database being down */
	bool breaker_open;
	const struct metrics_hist *wait_seconds; /* those waits' durations (the pool's) */
};
void db_pool_stats(struct db_pool_stats *out, struct db_pool *pool);

/* A connection found broken (server restarted, deadline missed) is replaced
 * before it is handed out, so callers see a working connection or
 * NOVA_EUNAVAIL: the pool exhausted for acquire_timeout_ms, or no new
 * connection within statement_timeout_ms. */
int db_conn_acquire(struct db_conn **out, struct db_pool *pool, struct nova_err *err);
/* A connection released inside an open transaction is rolled back first,
 * its advisory locks dropped and its deadline restored; each of these is
 * bounded by the pool's statement deadline, and a connection that cannot
 * be cleaned is closed, so release never blocks for longer. */
void db_conn_release(struct db_pool *pool, struct db_conn *conn);
/* The libpq connection; NULL after a missed deadline closed it. */
PGconn *db_conn_pg(struct db_conn *conn);

/* Change this borrowing's statement deadline, client side and server side
 * (statement_timeout), until release; 0 means none. For work that may
 * legitimately run long (the migrations runner); never on a request's path.
 * Call it outside a transaction: a rolled-back transaction would undo the
 * server's half. */
int db_conn_set_deadline(struct db_conn *conn, unsigned ms, struct nova_err *err);

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

#define DB_UUID_TEXT_LEN 37 /* a uuid's text and its NUL */

/* A PostgreSQL array literal built element by element in t ("{a,b}";
 * "{}" when none was added), for a parameter such as $1::uuid[]. *n counts
 * the elements added. Elements go in as they are, so they must need no
 * quoting (uuids read from the database, numbers); t->failed says whether
 * the literal is whole. */
void db_array_add(struct textbuf *t, size_t *n, const char *elem);
void db_array_end(struct textbuf *t, size_t n);

/* The first column of every row of res (uuids as text) in a new array,
 * *out (freed with free()), *n_out rows. res is cleared either way;
 * NOVA_EINTERNAL when out of memory. */
int db_result_uuids(char (**out)[DB_UUID_TEXT_LEN], size_t *n_out, PGresult *res,
		    struct nova_err *err);

/* A result's value by column name (the SELECT's name or alias, lower
 * case): a decoder that reads by name does not break when a column is
 * added before the one it wants. A name the result lacks is a programming
 * error (asserted); "" for NULL, as PQgetvalue. */
const char *db_value(const PGresult *res, int row, const char *column);

int db_tx_begin(struct db_conn *conn, struct nova_err *err);
int db_tx_commit(struct db_conn *conn, struct nova_err *err);
void db_tx_rollback(struct db_conn *conn);

/* Acquire, BEGIN, fn, COMMIT (or ROLLBACK when fn fails), release. A
 * connection found dead at BEGIN is replaced and BEGIN retried once (not
 * after a missed deadline); nothing is retried after fn ran, because its
 * effects may have committed. */
typedef int (*db_tx_fn)(struct db_conn *conn, void *ctx, struct nova_err *err);
int db_tx_run(struct db_pool *pool, db_tx_fn fn, void *ctx, struct nova_err *err);

/* Session-level advisory locks (singleton duties). try_lock sets *got. */
int db_advisory_try_lock(bool *got, struct db_conn *conn, long long key, struct nova_err *err);
int db_advisory_unlock(struct db_conn *conn, long long key, struct nova_err *err);

/* Cheap liveness probe (SELECT 1) on a pooled connection. */
int db_ping(struct db_pool *pool, struct nova_err *err);

/* --- listening ----------------------------------------------------------
 * A connection of its own for LISTEN (the event plane's wake-ups): opened
 * against conninfo (NULL: the pool's; a direct URL when the pool's goes
 * through a proxy that cuts idle sessions or does not keep a session's
 * LISTEN), within the pool's statement deadline, then listen_sql run (a
 * literal, "LISTEN channel": a channel is an identifier, never a
 * parameter). It is never handed out by the pool, and its failures leave
 * the pool's breaker alone. One thread uses it. */
struct db_listener;
int db_listen_open(struct db_listener **out, struct db_pool *pool, const char *conninfo,
		   const char *listen_sql, struct nova_err *err);
/* Wait up to timeout_ms for notifications: *got counts those that came
 * (all of them consumed; 0 when the time ran out). NOVA_EUNAVAIL when the
 * connection is lost (a restarted server, a dropped link): close it and
 * open another. */
int db_listen_wait(unsigned *got, struct db_listener *l, unsigned timeout_ms, struct nova_err *err);
/* Accepts NULL. */
void db_listen_close(struct db_listener *l);

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
 * start-ups apply each exactly once). Runs without a statement deadline
 * (waiting for the lock and a long migration are legitimate); acquiring and
 * connecting keep theirs. Refuses (NOVA_ECONFLICT) when an
 * applied migration's SHA-256 differs from the file's, or when the database
 * has a migration this binary does not know (it is newer than we are). */
int db_migrate(struct db_pool *pool, const struct db_migration *migs, size_t n,
	       struct nova_err *err);
/* 0 when every migration is applied with a matching checksum; otherwise
 * NOVA_EUNAVAIL (pending) or NOVA_ECONFLICT (edited), with the name. */
int db_migrations_check(struct db_pool *pool, const struct db_migration *migs, size_t n,
			struct nova_err *err);

#endif
