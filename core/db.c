/* PostgreSQL access: pool, statements, transactions, migrations.
 *
 * The pool is a fixed array of slots guarded by one mutex and a condition
 * variable. Slots connect lazily (only the first at create, so a wrong URL is
 * reported at start-up rather than on the first request). A pool of at most a
 * few dozen connections makes a linear scan cheaper and simpler than a free
 * list. Rejected: a connection per thread (thread-local PGconn), because
 * worker counts would then dictate database connections.
 *
 * Deadlines. A database that stops answering without closing anything (the
 * server paused by SIGSTOP or a frozen VM, a partition that drops packets)
 * leaves libpq's blocking calls waiting forever: PQexecParams on a stopped
 * backend, PQconnectdbParams and PQreset on a stopped postmaster. Every
 * thread that touched the database then stuck there, the pool drained, and
 * novad stopped answering even the requests a 503 would have served
 * (issue 13: a sidecar's heartbeat gives up after 5 s). So nothing here
 * blocks in libpq: connections are non-blocking, a statement is sent with
 * PQsendQueryParams and its results awaited with poll() on the socket
 * against a deadline (2 s by default), and connecting is PQconnectStartParams
 * and a PQconnectPoll loop against the same deadline. A statement past its
 * deadline gets NOVA_EUNAVAIL and its connection is closed (PQfinish); the
 * next acquirer opens a new one.
 *
 * Rejected: cancelling the late statement with PQcancel and keeping the
 * session. PQcancel opens a new connection to the postmaster and (libpq 15)
 * waits for the postmaster to close it, which a stopped postmaster never
 * does: the cancel hangs exactly when it is needed. Losing the session costs
 * one reconnect. Rejected: libpq's connect_timeout (whole seconds, at least
 * 2, and applied to each address in turn, so a host name with two addresses
 * doubles it) and TCP keepalives alone (they notice a dead peer, not a live
 * kernel in front of a stopped process, which still acknowledges every
 * packet); keepalives are still set so an idle pooled connection to a dead
 * host is noticed before it is handed out. Rejected: a server-side
 * statement_timeout alone, which a stopped server cannot enforce. It is set
 * as well, a tenth (at least 100 ms) shorter than the client's deadline, so
 * that a lock wait on a live server ends there with 57014 and the session
 * is kept. At the same value the client would always fire first, since the
 * server's clock starts only when the statement arrives, and every lock wait
 * would cost a connection. It is a SET after connecting, not the "options"
 * keyword, which would replace options the user's conninfo sets.
 *
 * What may legitimately take longer (the migrations: waiting for another
 * novad's migrations, a slow ALTER) lifts the deadline for one borrowing
 * with db_conn_set_deadline; release puts it back. Nothing on a request's
 * path needs more than a fraction of the default on a healthy database (the
 * heartbeat flush of 100,000 nodes takes 100-300 ms, the fleet read is
 * 5,000-row FETCHes). */
#include "core/db.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/notify.h"
#include "core/secret.h" /* secret_sha256_hex: OpenSSL EVP SHA-256 */

struct db_conn {
	PGconn *pg;         /* NULL once closed for a missed deadline */
	struct db_pool *pool;
	bool broken;        /* reconnect before the next hand-out */
	bool in_use;
	unsigned adv_locks; /* session advisory locks taken through this API */
	unsigned deadline_ms; /* this borrowing's statement deadline; 0: none */
	bool probe;           /* this borrower tries a database the breaker holds down */
	/* A listener's connection (db_listen_open): its own conninfo (NULL:
	 * the pool's), and outside the breaker, whose state is the pool's. */
	bool own;
	char *conninfo;
};

struct db_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled on release; waits use CLOCK_MONOTONIC */
	char *conninfo;
	struct db_conn *conns;
	unsigned size;
	unsigned acquire_timeout_ms;
	unsigned statement_timeout_ms; /* also the deadline for connecting */
	/* The breaker (under lock). A database that missed a deadline or could
	 * not be connected to is down: borrowers fail at once until down_until,
	 * then one borrower at a time (the probe) tries it; any answer from the
	 * server closes the breaker. Without it every request that needs the
	 * database held one of libmicrohttpd's threads, and every connection
	 * on that thread's event loop (heartbeats, route reads), for a whole
	 * deadline, over and over, for as long as the outage lasted. The wait
	 * doubles from DB_BREAKER_MIN_MS to DB_BREAKER_MAX_MS. */
	long long down_until;          /* CLOCK_MONOTONIC ms; 0: the breaker is closed */
	unsigned down_wait_ms;
	bool probing;
	char down_reason[160];
	/* For db_pool_stats (under lock). */
	unsigned long long waits, wait_timeouts, breaker_refusals;
	struct metrics_hist wait_seconds;
};

#define DB_BREAKER_MIN_MS 250u
#define DB_BREAKER_MAX_MS 2000u

/* TCP keepalive defaults (seconds): an idle pooled connection to a host
 * that vanished is noticed within about 25 s (idle + count * interval),
 * by the acquire probe, instead of at its next statement's deadline. */
#define DB_KEEPALIVES_IDLE "10"
#define DB_KEEPALIVES_INTERVAL "5"
#define DB_KEEPALIVES_COUNT "3"

static long long db_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The database did not answer (a missed deadline, a failed connect): open
 * the breaker, or keep it open a while longer when the probe failed. */
static void db_breaker_trip(struct db_conn *c, const char *why)
{
	struct db_pool *p = c->pool;
	if (c->own)
		return;
	pthread_mutex_lock(&p->lock);
	bool was_closed = !p->down_until;
	p->down_wait_ms = p->down_wait_ms ? p->down_wait_ms * 2 : DB_BREAKER_MIN_MS;
	if (p->down_wait_ms > DB_BREAKER_MAX_MS)
		p->down_wait_ms = DB_BREAKER_MAX_MS;
	p->down_until = db_now_ms() + p->down_wait_ms;
	snprintf(p->down_reason, sizeof(p->down_reason), "%.159s", why);
	if (c->probe) {
		p->probing = false;
		c->probe = false;
	}
	pthread_mutex_unlock(&p->lock);
	if (was_closed)
		nova_log_kv(NOVA_LOG_WARN, "db", "the database is not answering: failing fast, "
			    "trying it again one request at a time", "error", why, NULL);
}

/* The server answered: close the breaker. */
static void db_breaker_reset(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	bool was_open;
	if (c->own)
		return;
	pthread_mutex_lock(&p->lock);
	was_open = p->down_until != 0;
	p->down_until = 0;
	p->down_wait_ms = 0;
	if (c->probe) {
		p->probing = false;
		c->probe = false;
	}
	pthread_mutex_unlock(&p->lock);
	if (was_open)
		nova_log(NOVA_LOG_INFO, "db", "the database answers again");
}

/* Wait until fd is ready for events or the deadline (CLOCK_MONOTONIC ms;
 * 0: none) passes: 1 ready (or in error, which the caller's next libpq call
 * reports), 0 deadline passed, -1 no socket or poll failed. */
static int db_wait(int fd, short events, long long deadline)
{
	struct pollfd pfd = {fd, events, 0};
	if (fd < 0)
		return -1;
	for (;;) {
		int timeout = -1, n;
		if (deadline) {
			long long left = deadline - db_now_ms();
			if (left <= 0)
				return 0;
			timeout = left > 60000 ? 60000 : (int)left;
		}
		n = poll(&pfd, 1, timeout);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

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

int db_pool_create(struct db_pool **out, const char *conninfo, const struct db_pool_config *cfg,
		   struct nova_err *err)
{
	struct db_pool *p;
	struct db_conn *c;
	pthread_condattr_t ca;
	PQconninfoOption *opts;
	char *perr = NULL;
	int rc;
	*out = NULL;
	if (!conninfo || !*conninfo || cfg->size == 0)
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
	p->conns = calloc(cfg->size, sizeof(*p->conns));
	if (!p->conninfo || !p->conns)
		goto oom;
	/* A wall-clock step must not stretch or cut the acquire timeout. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&p->lock, NULL);
	p->size = cfg->size;
	p->acquire_timeout_ms = cfg->acquire_timeout_ms ? cfg->acquire_timeout_ms
							: DB_DEFAULT_ACQUIRE_TIMEOUT_MS;
	p->statement_timeout_ms = cfg->statement_timeout_ms ? cfg->statement_timeout_ms
							    : DB_DEFAULT_STATEMENT_TIMEOUT_MS;
	for (unsigned i = 0; i < p->size; i++) {
		p->conns[i].pool = p;
		p->conns[i].deadline_ms = p->statement_timeout_ms;
	}
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
	/* 57014: our statement_timeout (or an administrator's cancel) ended the
	 * statement; the session itself is fine. */
	if (!strncmp(sqlstate, "08", 2) || !strncmp(sqlstate, "57P0", 4) || !strcmp(sqlstate, "57014"))
		return NOVA_EUNAVAIL;
	return NOVA_EINTERNAL;
}

/* The session is gone or unusable (not merely a statement that failed). */
static bool db_state_loses_session(const char *sqlstate)
{
	return !sqlstate || !strncmp(sqlstate, "08", 2) || !strncmp(sqlstate, "57P0", 4);
}

/* Turn a failed result into an error: PostgreSQL's primary message and the
 * SQLSTATE, e.g. 'duplicate key value violates unique constraint
 * "pools_name_key" (23505)'. A failure of the connection itself marks it
 * broken, so the pool reconnects it before the next borrower. */
static int db_result_error(struct db_conn *conn, const PGresult *res, struct nova_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char line[384];
	int code = db_code_for_state(state);
	if (!conn->pg || db_state_loses_session(state) || PQstatus(conn->pg) != CONNECTION_OK) {
		conn->broken = true;
		code = NOVA_EUNAVAIL;
	}
	if (primary)
		db_first_line(line, sizeof(line), primary);
	else if (conn->pg)
		db_first_line(line, sizeof(line), PQerrorMessage(conn->pg));
	else
		line[0] = '\0';
	if (!line[0])
		snprintf(line, sizeof(line), "database connection lost");
	return nova_err_set(err, code, "", "%s (%s)", line, state ? state : "connection");
}

static bool db_result_ok(const PGresult *res)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* Close the session now; the next acquirer connects a new one. Never
 * blocks: the connection is non-blocking, so PQfinish's goodbye message is
 * dropped rather than waited for when the socket is full. */
static void db_conn_close(struct db_conn *c)
{
	PQfinish(c->pg);
	c->pg = NULL;
	c->broken = true;
	c->adv_locks = 0;
}

/* Wait for the statement just sent on c and return its result in *res
 * (NULL when the connection failed under it: db_result_error says why).
 * Like PQexec, the last result is kept, except that a failure is never
 * replaced by what follows it. On a missed deadline the connection is
 * closed and NOVA_EUNAVAIL returned. */
static int db_collect(PGresult **res, struct db_conn *c, struct nova_err *err)
{
	long long deadline = c->deadline_ms ? db_now_ms() + c->deadline_ms : 0;
	PGresult *kept = NULL, *r;
	int rc, w = 1;
	*res = NULL;
	/* A statement larger than the socket buffer (the heartbeat flush's
	 * arrays) goes out in pieces; the server may talk meanwhile. */
	while ((rc = PQflush(c->pg)) == 1) {
		if ((w = db_wait(PQsocket(c->pg), POLLIN | POLLOUT, deadline)) <= 0)
			goto wait_failed;
		if (!PQconsumeInput(c->pg))
			return 0;
	}
	if (rc < 0)
		return 0;
	for (;;) {
		ExecStatusType st;
		while (PQisBusy(c->pg)) {
			if ((w = db_wait(PQsocket(c->pg), POLLIN, deadline)) <= 0)
				goto wait_failed;
			if (!PQconsumeInput(c->pg)) {
				PQclear(kept);
				return 0;
			}
		}
		if (!(r = PQgetResult(c->pg)))
			break;
		st = PQresultStatus(r);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
			/* Nova never copies; the protocol would wait for data. */
			PQclear(r);
			PQclear(kept);
			db_conn_close(c);
			return nova_err_set(err, NOVA_EINTERNAL, "", "COPY is not supported here");
		}
		if (kept && PQresultStatus(kept) == PGRES_FATAL_ERROR) {
			PQclear(r);
		} else {
			PQclear(kept);
			kept = r;
		}
	}
	*res = kept;
	return 0;
wait_failed:
	rc = errno;
	PQclear(kept);
	db_conn_close(c);
	if (w < 0)
		return nova_err_set(err, NOVA_EUNAVAIL, "", "database connection lost: %s",
				    strerror(rc));
	nova_err_set(err, NOVA_EUNAVAIL, "", "the database did not answer within %u ms",
		     c->deadline_ms);
	nova_err_set_hint(err, "the database server is stopped, overloaded or unreachable");
	db_breaker_trip(c, err->message);
	return NOVA_EUNAVAIL;
}

/* Send through send_ok (a PQsend* call's result), then collect. */
static int db_finish(PGresult **out, struct db_conn *c, int send_ok, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc;
	if (send_ok && (rc = db_collect(&res, c, err)))
		return rc;
	if (res) /* the server answered, whatever it said */
		db_breaker_reset(c);
	if (!db_result_ok(res)) {
		rc = db_result_error(c, res, err);
		PQclear(res);
		return rc;
	}
	if (out)
		*out = res;
	else
		PQclear(res);
	return 0;
}

int db_exec(PGresult **out, struct db_conn *conn, const char *sql, int n_params,
	    const char *const *params, struct nova_err *err)
{
	if (out)
		*out = NULL;
	if (!conn->pg)
		return db_result_error(conn, NULL, err);
	/* Text parameters only (NULL types, lengths and formats). */
	return db_finish(out, conn,
			 PQsendQueryParams(conn->pg, sql, n_params, NULL, params, NULL, NULL, 0),
			 err);
}

/* The server's half of a deadline (see the opening comment), 0 for none:
 * a tenth shorter, and at least 100 ms shorter when the deadline allows, so
 * its answer comes back before the client's deadline on a busy machine. */
static int db_set_server_timeout(struct db_conn *c, unsigned deadline_ms, struct nova_err *err)
{
	char ms[16];
	const char *params[1] = {ms};
	unsigned margin = deadline_ms / 10;
	if (margin < 100)
		margin = deadline_ms / 2 < 100 ? deadline_ms / 2 : 100;
	snprintf(ms, sizeof(ms), "%u", deadline_ms - margin);
	return db_exec(NULL, c, "SELECT set_config('statement_timeout', $1, false)", 1, params, err);
}

int db_conn_set_deadline(struct db_conn *conn, unsigned ms, struct nova_err *err)
{
	int rc;
	/* The server's timeout first, under the deadline in force. */
	if ((rc = db_set_server_timeout(conn, ms, err)))
		return rc;
	conn->deadline_ms = ms;
	return 0;
}

/* Open c->pg against the pool's deadline. Keywords from the conninfo
 * (expanded from "dbname" because it comes last) win over these defaults;
 * keepalives are ignored on a unix socket. */
static int db_connect(struct db_conn *c, struct nova_err *err)
{
	const struct db_pool *pool = c->pool;
	const char *const keys[] = {"application_name", "keepalives", "keepalives_idle",
				    "keepalives_interval", "keepalives_count", "dbname", NULL};
	const char *const vals[] = {"novad", "1", DB_KEEPALIVES_IDLE, DB_KEEPALIVES_INTERVAL,
				    DB_KEEPALIVES_COUNT, c->conninfo ? c->conninfo : pool->conninfo,
				    NULL};
	long long deadline = db_now_ms() + pool->statement_timeout_ms;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	char line[256];
	PGconn *pg;
	int rc;
	c->adv_locks = 0;
	c->deadline_ms = pool->statement_timeout_ms;
	if (!(pg = PQconnectStartParams(keys, vals, 1)))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	PQsetNoticeProcessor(pg, db_notice, NULL);
	if (PQstatus(pg) == CONNECTION_BAD)
		st = PGRES_POLLING_FAILED;
	/* As libpq's documentation has it: start as if PQconnectPoll had said
	 * WRITING; the socket may change between calls (several addresses). */
	while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		int w = db_wait(PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
		if (w == 0) {
			PQfinish(pg);
			c->broken = true;
			nova_err_set(err, NOVA_EUNAVAIL, "database_url",
				     "cannot connect to the database: no answer within %u ms",
				     pool->statement_timeout_ms);
			nova_err_set_hint(err, "the database server is stopped, overloaded or unreachable");
			db_breaker_trip(c, err->message);
			return NOVA_EUNAVAIL;
		}
		if (w < 0)
			break; /* no socket: libpq's message says why */
		st = PQconnectPoll(pg);
	}
	if (st != PGRES_POLLING_OK || PQstatus(pg) != CONNECTION_OK || PQsetnonblocking(pg, 1)) {
		db_first_line(line, sizeof(line), PQerrorMessage(pg));
		PQfinish(pg);
		c->broken = true;
		nova_err_set(err, NOVA_EUNAVAIL, "database_url", "cannot connect to the database: %s",
			     line[0] ? line : "connection failed");
		db_breaker_trip(c, err->message);
		return NOVA_EUNAVAIL;
	}
	c->pg = pg;
	c->broken = false;
	if ((rc = db_set_server_timeout(c, c->deadline_ms, err))) {
		if (c->pg)
			db_conn_close(c);
		return rc;
	}
	return 0;
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

/* Make c->pg a working connection: keep it, or open a new one. Runs without
 * the pool lock held (connecting takes up to the deadline). Rejected:
 * PQreset, which connects blocking and has no deadline. */
static int db_conn_ready(struct db_conn *c, struct nova_err *err)
{
	if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK && !db_conn_looks_dead(c->pg))
		return 0;
	if (c->pg)
		db_conn_close(c); /* whatever the old session held is gone with it */
	return db_connect(c, err);
}

int db_conn_acquire(struct db_conn **out, struct db_pool *pool, struct nova_err *err)
{
	struct timespec deadline;
	struct db_conn *c = NULL;
	int rc;
	*out = NULL;
	notify_deadline(&deadline, CLOCK_MONOTONIC, pool->acquire_timeout_ms);
	pthread_mutex_lock(&pool->lock);
	bool probe = false;
	if (pool->down_until) {
		/* The breaker is open: fail at once, or be the one probe. */
		if (db_now_ms() < pool->down_until || pool->probing) {
			char why[sizeof(pool->down_reason)];
			memcpy(why, pool->down_reason, sizeof(why));
			pool->breaker_refusals++;
			pthread_mutex_unlock(&pool->lock);
			nova_err_set(err, NOVA_EUNAVAIL, "", "the database is unavailable: %s", why);
			nova_err_set_hint(err, "it is tried again within %u ms", DB_BREAKER_MAX_MS);
			return NOVA_EUNAVAIL;
		}
		pool->probing = probe = true;
	}
	struct timespec wait_start = {0};
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
		if (!wait_start.tv_sec) {
			clock_gettime(CLOCK_MONOTONIC, &wait_start);
			pool->waits++;
		}
		if (pthread_cond_timedwait(&pool->cond, &pool->lock, &deadline) == ETIMEDOUT) {
			if (probe)
				pool->probing = false;
			pool->wait_timeouts++;
			pthread_mutex_unlock(&pool->lock);
			nova_err_set(err, NOVA_EUNAVAIL, "",
				     "database connection pool exhausted (%u connections busy for %u ms)",
				     pool->size, pool->acquire_timeout_ms);
			nova_err_set_hint(err, "raise database_pool_size, or look for slow queries");
			return NOVA_EUNAVAIL;
		}
	}
	c->in_use = true;
	c->probe = probe;
	if (wait_start.tv_sec) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		metrics_hist_observe(&pool->wait_seconds,
				     (double)(now.tv_sec - wait_start.tv_sec) +
					     (double)(now.tv_nsec - wait_start.tv_nsec) / 1e9);
	}
	pthread_mutex_unlock(&pool->lock);
	if ((rc = db_conn_ready(c, err))) {
		db_conn_release(pool, c);
		return rc;
	}
	*out = c;
	return 0;
}

void db_pool_stats(struct db_pool_stats *out, struct db_pool *pool)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&pool->lock);
	out->size = pool->size;
	for (unsigned i = 0; i < pool->size; i++) {
		out->in_use += pool->conns[i].in_use;
		out->open += pool->conns[i].pg != NULL;
	}
	out->waits = pool->waits;
	out->wait_timeouts = pool->wait_timeouts;
	out->breaker_refusals = pool->breaker_refusals;
	out->breaker_open = pool->down_until != 0;
	pthread_mutex_unlock(&pool->lock);
	out->wait_seconds = &pool->wait_seconds;
}

void db_conn_release(struct db_pool *pool, struct db_conn *conn)
{
	struct nova_err ignored;
	bool overridden;
	if (!conn)
		return;
	/* The next borrower must get a clean session: no open transaction, no
	 * advisory lock it did not take, the pool's deadline. Cleaning runs
	 * under the pool's deadline whatever this borrower set, so a stopped
	 * server costs at most one deadline here; if cleaning fails, the
	 * connection is replaced. */
	overridden = conn->deadline_ms != pool->statement_timeout_ms;
	conn->deadline_ms = pool->statement_timeout_ms;
	if (conn->pg && !conn->broken) {
		if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE)
			db_exec(NULL, conn, "ROLLBACK", 0, NULL, &ignored);
		if (conn->pg && conn->adv_locks > 0) {
			db_exec(NULL, conn, "SELECT pg_advisory_unlock_all()", 0, NULL, &ignored);
			conn->adv_locks = 0;
		}
		if (conn->pg && overridden &&
		    db_set_server_timeout(conn, conn->deadline_ms, &ignored))
			conn->broken = true;
		if (conn->pg && (PQstatus(conn->pg) != CONNECTION_OK ||
				 PQtransactionStatus(conn->pg) != PQTRANS_IDLE))
			conn->broken = true;
	}
	pthread_mutex_lock(&pool->lock);
	conn->in_use = false;
	if (conn->probe) {
		/* It learnt nothing either way: the next borrower probes. */
		pool->probing = false;
		conn->probe = false;
	}
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

PGconn *db_conn_pg(struct db_conn *conn)
{
	return conn->pg;
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

void db_array_add(struct textbuf *t, size_t *n, const char *elem)
{
	textbuf_add(t, (*n)++ ? "," : "{", 1);
	textbuf_add(t, elem, strlen(elem));
}

void db_array_end(struct textbuf *t, size_t n)
{
	textbuf_add(t, n ? "}" : "{}", n ? 1 : 2);
}

int db_result_uuids(char (**out)[DB_UUID_TEXT_LEN], size_t *n_out, PGresult *res,
		    struct nova_err *err)
{
	size_t n = (size_t)PQntuples(res);
	char(*v)[DB_UUID_TEXT_LEN] = calloc(n ? n : 1, sizeof(*v));
	*out = NULL;
	*n_out = 0;
	if (!v) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		snprintf(v[i], sizeof(v[i]), "%s", PQgetvalue(res, (int)i, 0));
	PQclear(res);
	*out = v;
	*n_out = n;
	return 0;
}

const char *db_value(const PGresult *res, int row, const char *column)
{
	int col = PQfnumber(res, column);
	assert(col >= 0 && "column not in the result");
	if (col < 0)
		return "";
	return PQgetvalue(res, row, col);
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
	if (rc == NOVA_EUNAVAIL && c->broken && c->pg) {
		/* The connection died while idle in the pool (the acquire probe
		 * cannot see every death): nothing ran, so one retry on a fresh
		 * session is safe. Not after a missed deadline (c->pg closed):
		 * the server is not answering, and a retry would only double the
		 * caller's wait. */
		if ((rc = db_conn_ready(c, err)) == 0)
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

/* --- listening ------------------------------------------------------------ */

struct db_listener {
	struct db_conn c;
};

int db_listen_open(struct db_listener **out, struct db_pool *pool, const char *conninfo,
		   const char *listen_sql, struct nova_err *err)
{
	struct db_listener *l = calloc(1, sizeof(*l));
	int rc;
	*out = NULL;
	if (!l || (conninfo && !(l->c.conninfo = strdup(conninfo)))) {
		free(l);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	l->c.pool = pool;
	l->c.own = true;
	l->c.in_use = true;
	if ((rc = db_connect(&l->c, err)) || (rc = db_exec(NULL, &l->c, listen_sql, 0, NULL, err))) {
		db_listen_close(l);
		return rc;
	}
	*out = l;
	return 0;
}

int db_listen_wait(unsigned *got, struct db_listener *l, unsigned timeout_ms, struct nova_err *err)
{
	PGconn *pg = l->c.pg;
	long long deadline = db_now_ms() + timeout_ms;
	*got = 0;
	for (;;) {
		PGnotify *n;
		if (!pg || PQstatus(pg) != CONNECTION_OK || !PQconsumeInput(pg)) {
			char line[256];
			db_first_line(line, sizeof(line), pg ? PQerrorMessage(pg) : "");
			return nova_err_set(err, NOVA_EUNAVAIL, "", "the listening connection was lost: %s",
					    line[0] ? line : "closed");
		}
		while ((n = PQnotifies(pg))) {
			(*got)++;
			PQfreemem(n);
		}
		if (*got)
			return 0;
		int w = db_wait(PQsocket(pg), POLLIN, deadline);
		if (w == 0)
			return 0;
		if (w < 0)
			return nova_err_set(err, NOVA_EUNAVAIL, "", "the listening connection has no socket");
	}
}

void db_listen_close(struct db_listener *l)
{
	if (!l)
		return;
	PQfinish(l->c.pg);
	if (l->c.conninfo) {
		explicit_bzero(l->c.conninfo, strlen(l->c.conninfo));
		free(l->c.conninfo);
	}
	free(l);
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
	struct nova_err inner;
	int rc;
	snprintf(v, sizeof(v), "%d", db_migration_version(m, NULL));
	secret_sha256_hex(sum, m->sql, m->len);
	if ((rc = db_tx_begin(c, err)))
		return rc;
	/* The one statement not sent with parameters: a migration body is
	 * several statements, which only the simple query protocol accepts,
	 * and its text is our own file compiled into the binary, never
	 * anything built from input. (So a migration cannot use statements
	 * refused inside a transaction, e.g. CREATE INDEX CONCURRENTLY.) */
	if ((rc = db_finish(NULL, c, PQsendQuery(c->pg, m->sql), &inner))) {
		db_tx_rollback(c);
		snprintf(msg, sizeof(msg), "%s", inner.message);
		return nova_err_set(err, rc, "", "migration %s failed: %s", m->name, msg);
	}
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
	/* No deadline: the lock may wait for another novad's migrations, and
	 * a migration may rewrite a large table. Release restores it. */
	if ((rc = db_conn_set_deadline(c, 0, err)))
		goto out;
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
