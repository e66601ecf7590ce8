#include "events/events.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/notify.h"

static const char *const events_kind_names[] = {"node", "deployment", "pool", "route"};
#define EVENTS_N_KINDS (sizeof(events_kind_names) / sizeof(events_kind_names[0]))

int events_kinds_parse(unsigned *mask, const char *list, const char *field, struct nova_err *err)
{
	*mask = 0;
	if (!list || !*list) {
		*mask = EVENTS_ALL;
		return 0;
	}
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		bool known = false;
		for (size_t k = 0; k < EVENTS_N_KINDS; k++) {
			if (n == strlen(events_kind_names[k]) && !strncmp(p, events_kind_names[k], n)) {
				*mask |= 1u << k;
				known = true;
			}
		}
		if (!known) {
			nova_err_set(err, NOVA_EINVAL, field, "unknown event kind \"%.*s\"",
				     (int)(n > 40 ? 40 : n), p);
			nova_err_set_hint(err, "kinds: node, deployment, pool, route (comma-separated)");
			return NOVA_EINVAL;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* The kinds of mask as a PostgreSQL array literal. */
static void events_kinds_array(char *out, size_t len, unsigned mask)
{
	size_t o = 0;
	out[o++] = '{';
	for (size_t k = 0; k < EVENTS_N_KINDS && o + 16 < len; k++)
		if (mask & (1u << k))
			o += (size_t)snprintf(out + o, len - o, "%s%s", o > 1 ? "," : "", events_kind_names[k]);
	snprintf(out + o, len - o, "}");
}

int events_position(struct events_position *out, struct db_pool *db, struct nova_err *err)
{
	PGresult *res;
	int rc = db_pool_exec(&res, db, "SELECT last_id, pruned_through FROM event_stream_head", 0, NULL,
			      err);
	if (rc)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "the event stream has no head row");
	}
	out->head = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	out->pruned_through = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return 0;
}

int events_read(json_t **out, struct events_position *pos, struct db_pool *db, long long after,
		unsigned mask, int limit, struct nova_err *err)
{
	char after_s[24], limit_s[16], kinds[64];
	const char *params[3] = {after_s, kinds, limit_s};
	PGresult *res;
	int rc;
	*out = NULL;
	if (limit < 1)
		limit = 1;
	if (limit > 1000)
		limit = 1000;
	snprintf(after_s, sizeof(after_s), "%lld", after < 0 ? 0 : after);
	snprintf(limit_s, sizeof(limit_s), "%d", limit);
	events_kinds_array(kinds, sizeof(kinds), mask ? mask : EVENTS_ALL);
	/* The head's row joined to the events, so both come from one
	 * snapshot (a LEFT JOIN: the position even when no event follows). */
	rc = db_pool_exec(&res, db,
		"SELECT h.last_id, h.pruned_through, e.id, e.kind, e.subject, e.data::text AS data, "
		"to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS at "
		"FROM event_stream_head h LEFT JOIN LATERAL (SELECT * FROM event_stream "
		"WHERE id > $1::bigint AND kind = ANY($2::text[]) ORDER BY id LIMIT $3::int) e ON true "
		"ORDER BY e.id",
		3, params, err);
	if (rc)
		return rc;
	json_t *list = json_array();
	for (int i = 0; list && i < PQntuples(res); i++) {
		if (pos && i == 0) {
			pos->head = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			pos->pruned_through = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		}
		if (PQgetisnull(res, i, 2))
			continue;
		json_t *data = json_loads(PQgetvalue(res, i, 5), 0, NULL);
		json_t *ev = json_pack("{s:I, s:s, s:s, s:s, s:o}", "id",
				       (json_int_t)strtoll(PQgetvalue(res, i, 2), NULL, 10), "kind",
				       PQgetvalue(res, i, 3), "subject", PQgetvalue(res, i, 4), "at",
				       PQgetvalue(res, i, 6), "data", data ? data : json_object());
		if (!ev || json_array_append_new(list, ev)) {
			json_decref(list);
			list = NULL;
		}
	}
	PQclear(res);
	if (!list)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	*out = list;
	return 0;
}

int events_route_models(json_t **out, bool *pruned, struct db_pool *db, long long after,
			long long upto, struct nova_err *err)
{
	char a[24], b[24];
	const char *params[2] = {a, b};
	PGresult *res;
	int rc;
	*out = NULL;
	*pruned = false;
	snprintf(a, sizeof(a), "%lld", after < 0 ? 0 : after);
	snprintf(b, sizeof(b), "%lld", upto);
	rc = db_pool_exec(&res, db,
		"SELECT $1::bigint < pruned_through, coalesce((SELECT json_agg(m ORDER BY m) FROM "
		"(SELECT DISTINCT unnest(models) AS m FROM event_stream WHERE id > $1::bigint "
		"AND id <= $2::bigint AND models IS NOT NULL) x), '[]')::text FROM event_stream_head",
		2, params, err);
	if (rc)
		return rc;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "the event stream has no head row");
	}
	*pruned = PQgetvalue(res, 0, 0)[0] == 't';
	*out = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

int events_prune(long long *removed, struct db_pool *db, long long keep_count, unsigned keep_hours,
		 struct nova_err *err)
{
	char count[24], hours[16];
	const char *params[2] = {count, hours};
	PGresult *res;
	int rc;
	if (removed)
		*removed = 0;
	snprintf(count, sizeof(count), "%lld", keep_count > 0 ? keep_count : EVENTS_KEEP_COUNT_DEFAULT);
	snprintf(hours, sizeof(hours), "%u", keep_hours ? keep_hours : EVENTS_KEEP_HOURS_DEFAULT);
	/* The bound: the newest id past the age, or the count below the head,
	 * whichever is higher. The head's row is taken last (its lock is the
	 * appenders'), and only when the bound moves. */
	rc = db_pool_exec(&res, db,
		"WITH b AS (SELECT greatest("
		"(SELECT last_id FROM event_stream_head) - $1::bigint, "
		"coalesce((SELECT max(id) FROM event_stream WHERE id > 0 AND "
		"at < now() - make_interval(hours => $2::int)), 0)) AS upto), "
		"gone AS (DELETE FROM event_stream WHERE id > 0 AND id <= (SELECT upto FROM b) "
		"RETURNING 1), "
		"moved AS (UPDATE event_stream_head SET pruned_through = (SELECT upto FROM b) "
		"WHERE pruned_through < (SELECT upto FROM b) RETURNING 1) "
		"SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM moved)",
		2, params, err);
	if (rc)
		return rc;
	if (removed && PQntuples(res) == 1)
		*removed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/* --- the listener -------------------------------------------------------- */

#define EVENTS_PRUNE_EVERY_MS 60000
#define EVENTS_RECONNECT_MIN_MS 500
#define EVENTS_RECONNECT_MAX_MS 10000
/* How long one wait on the socket lasts, so a stop is heard within it. */
#define EVENTS_WAIT_SLICE_MS 200

struct events_listener {
	struct db_pool *db;
	struct events_listener_config cfg;
	char *listen_url;
	pthread_t thread;
	atomic_bool stop;
	struct notify stopped; /* signalled by stop, so a polling wait ends */
	pthread_mutex_t lock;  /* status */
	struct events_listener_status st;
};

static void events_head_check(struct events_listener *l, long long *last, bool *failing)
{
	struct events_position pos;
	struct nova_err err;
	if (events_position(&pos, l->db, &err) != 0) {
		if (!*failing)
			nova_log_kv(NOVA_LOG_WARN, "events", "reading the event stream's head failed",
				    "error", err.message, NULL);
		*failing = true;
		return;
	}
	*failing = false;
	if (pos.head == *last)
		return;
	*last = pos.head;
	pthread_mutex_lock(&l->lock);
	l->st.head = pos.head;
	l->st.wakes++;
	pthread_mutex_unlock(&l->lock);
	if (l->cfg.on_change)
		l->cfg.on_change(l->cfg.ctx, pos.head);
}

static void *events_listener_thread(void *arg)
{
	struct events_listener *l = arg;
	struct db_listener *conn = NULL;
	unsigned long long seen = notify_seq(&l->stopped);
	long long last = -1, next_connect = 0, next_poll = 0;
	long long next_prune = notify_now_ms() + EVENTS_PRUNE_EVERY_MS / 4;
	unsigned backoff = EVENTS_RECONNECT_MIN_MS;
	bool failing = false, warned = false;
	while (!atomic_load(&l->stop)) {
		struct nova_err err;
		long long now = notify_now_ms();
		if (!conn && now >= next_connect) {
			if (db_listen_open(&conn, l->db, l->listen_url, "LISTEN nova_events", &err) == 0) {
				backoff = EVENTS_RECONNECT_MIN_MS;
				if (warned)
					nova_log(NOVA_LOG_INFO, "events", "listening to the event stream again");
				warned = false;
				next_poll = 0; /* what came while nobody listened */
			} else {
				if (!warned)
					nova_log_kv(NOVA_LOG_WARN, "events",
						    "cannot LISTEN for events: polling the stream's head",
						    "error", err.message, NULL);
				warned = true;
				next_connect = now + backoff;
				backoff = backoff * 2 > EVENTS_RECONNECT_MAX_MS ? EVENTS_RECONNECT_MAX_MS
										: backoff * 2;
			}
			pthread_mutex_lock(&l->lock);
			l->st.listening = conn != NULL;
			l->st.connects += conn != NULL;
			pthread_mutex_unlock(&l->lock);
		}
		if (now >= next_poll) {
			events_head_check(l, &last, &failing);
			next_poll = now + (conn ? l->cfg.listening_poll_ms : l->cfg.polling_ms);
		}
		if (now >= next_prune) {
			long long gone = 0;
			if (events_prune(&gone, l->db, l->cfg.keep_count, l->cfg.keep_hours, &err) == 0 && gone)
				nova_log(NOVA_LOG_DEBUG, "events", "pruned %lld events", gone);
			next_prune = now + EVENTS_PRUNE_EVERY_MS;
		}
		long long until = next_poll - notify_now_ms();
		unsigned slice = until <= 0 ? 0 : until > EVENTS_WAIT_SLICE_MS ? EVENTS_WAIT_SLICE_MS
									 : (unsigned)until;
		if (conn) {
			unsigned got = 0;
			if (db_listen_wait(&got, conn, slice, &err) != 0) {
				nova_log_kv(NOVA_LOG_WARN, "events", "the LISTEN connection was lost",
					    "error", err.message, NULL);
				db_listen_close(conn);
				conn = NULL;
				warned = true;
				next_connect = notify_now_ms() + EVENTS_RECONNECT_MIN_MS;
				next_poll = 0;
				pthread_mutex_lock(&l->lock);
				l->st.listening = false;
				pthread_mutex_unlock(&l->lock);
			} else if (got) {
				pthread_mutex_lock(&l->lock);
				l->st.notifications += got;
				pthread_mutex_unlock(&l->lock);
				next_poll = 0; /* read the head now */
			}
		} else if (slice) {
			notify_wait(&l->stopped, &seen, slice);
		}
	}
	db_listen_close(conn);
	return NULL;
}

int events_listener_start(struct events_listener **out, struct db_pool *db,
			  const struct events_listener_config *cfg, struct nova_err *err)
{
	struct events_listener *l = calloc(1, sizeof(*l));
	*out = NULL;
	if (!l)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	l->db = db;
	l->cfg = *cfg;
	l->cfg.listen_url = NULL;
	if (!l->cfg.listening_poll_ms)
		l->cfg.listening_poll_ms = 1000;
	if (!l->cfg.polling_ms)
		l->cfg.polling_ms = 100;
	l->st.head = -1;
	if ((cfg->listen_url && *cfg->listen_url && !(l->listen_url = strdup(cfg->listen_url))) ||
	    notify_init(&l->stopped, err) != 0) {
		free(l->listen_url);
		free(l);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	pthread_mutex_init(&l->lock, NULL);
	atomic_init(&l->stop, false);
	if (pthread_create(&l->thread, NULL, events_listener_thread, l) != 0) {
		notify_finish(&l->stopped);
		pthread_mutex_destroy(&l->lock);
		free(l->listen_url);
		free(l);
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the event listener");
	}
	*out = l;
	return 0;
}

void events_listener_stop(struct events_listener *l)
{
	if (!l)
		return;
	atomic_store(&l->stop, true);
	notify_signal(&l->stopped);
	pthread_join(l->thread, NULL);
	notify_finish(&l->stopped);
	pthread_mutex_destroy(&l->lock);
	if (l->listen_url) {
		explicit_bzero(l->listen_url, strlen(l->listen_url));
		free(l->listen_url);
	}
	free(l);
}

void events_listener_status(struct events_listener_status *out, struct events_listener *l)
{
	pthread_mutex_lock(&l->lock);
	*out = l->st;
	pthread_mutex_unlock(&l->lock);
}
