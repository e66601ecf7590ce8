/* The event plane: one durable, ordered stream of what changed in the fleet,
 * shared by every novad on the database (sql/0022_event_stream.sql).
 *
 * Node state transitions, deployment events, pool events and route changes
 * are written to `event_stream` by triggers, in the transaction of the
 * change they record, and numbered at commit in commit order without gaps:
 * an id means the same event on every novad, and a reader that has seen id
 * n has seen every id below it. Each commit that appended NOTIFYs
 * `nova_events`. Events up to `pruned_through` may be gone (retention, see
 * events_prune): a cursor below it has missed some.
 *
 * Kinds and their data (JSON objects; every event also has "id", "kind",
 * "subject" and "at"):
 *   node        {node, pool, name, from, to, reason}
 *   deployment  {deployment, name, model, kind, from, to, reason}
 *   pool        {pool, kind, message}
 *   route       {model, deployment, and what changed: replica, state,
 *               endpoint, ordinal; or replicas, name; or rollout,
 *               rollout_state, canary_percent}
 * Events that may change the routing table name the models whose routes
 * they touch (route keys are a model's name and "name/adapter"), which a
 * novad reads back for a route watcher that resumes from an id it never
 * saw (events_route_models).
 *
 * The listener (events_listener_start) is each novad's ear on the stream:
 * a connection of its own LISTENs on nova_events, and each notification
 * (or, without one, a poll of the head) that shows a new head calls
 * on_change, which wakes the route refresher, the workers and the event
 * watchers at once, whichever novad committed the change. */
#ifndef NOVA_EVENTS_EVENTS_H
#define NOVA_EVENTS_EVENTS_H

#include <jansson.h>
#include <stdbool.h>

#include "core/db.h"
#include "core/err.h"

enum events_kind {
	EVENTS_NODE = 1u << 0,
	EVENTS_DEPLOYMENT = 1u << 1,
	EVENTS_POOL = 1u << 2,
	EVENTS_ROUTE = 1u << 3,
	EVENTS_ALL = (1u << 4) - 1,
};

/* "node,route" -> a mask of enum events_kind; NULL or "" -> EVENTS_ALL.
 * An unknown name is NOVA_EINVAL naming field. */
int events_kinds_parse(unsigned *mask, const char *list, const char *field, struct nova_err *err);

/* Where the stream stands: the last id given, and the id up to which
 * events may have been pruned. */
struct events_position {
	long long head;
	long long pruned_through;
};
int events_position(struct events_position *out, struct db_pool *db, struct nova_err *err);

/* Up to limit (1..1000) events after `after` whose kind is in mask, oldest
 * first: a JSON array of {"id", "kind", "subject", "at", "data"} (at in
 * RFC 3339 UTC with microseconds). *pos (may be NULL) receives the
 * position read in the same statement: when after < pos->pruned_through
 * some events after `after` are gone. */
int events_read(json_t **out, struct events_position *pos, struct db_pool *db, long long after,
		unsigned mask, int limit, struct nova_err *err);

/* The models whose routes the events in (after, upto] may have changed: a
 * JSON array of names, sorted. *pruned is true when some of those events
 * are gone (after < pruned_through): the caller cannot tell, and sends a
 * snapshot. */
int events_route_models(json_t **out, bool *pruned, struct db_pool *db, long long after,
			long long upto, struct nova_err *err);

/* Retention: delete events older than keep_hours, and all but the newest
 * keep_count, and raise pruned_through to match. *removed (may be NULL)
 * receives the count. Any novad may run it; running it twice is harmless. */
int events_prune(long long *removed, struct db_pool *db, long long keep_count, unsigned keep_hours,
		 struct nova_err *err);

#define EVENTS_KEEP_COUNT_DEFAULT 1000000LL
#define EVENTS_KEEP_HOURS_DEFAULT 168u

struct events_listener_config {
	/* Where to LISTEN: NULL for the pool's database; a direct URL when
	 * the pool's goes through a proxy that cuts idle sessions (the
	 * listener's session is idle between notifications). */
	const char *listen_url;
	/* How often the head is read without a notification: while
	 * listening (to catch a lost one), default 1000 ms; while not (a
	 * pooler, the database away), default 100 ms. */
	unsigned listening_poll_ms, polling_ms;
	/* Retention, applied every minute; 0: the defaults above. */
	long long keep_count;
	unsigned keep_hours;
	/* Called from the listener's thread with the new head each time it
	 * moves (and once at start). Must not block. */
	void (*on_change)(void *ctx, long long head);
	void *ctx;
};

struct events_listener;

/* Starts the thread; the database may be away (it keeps trying). */
int events_listener_start(struct events_listener **out, struct db_pool *db,
			  const struct events_listener_config *cfg, struct nova_err *err);
/* Stops and frees. Accepts NULL. */
void events_listener_stop(struct events_listener *l);

struct events_listener_status {
	long long head;          /* the last head read; -1 before the first */
	bool listening;          /* a LISTEN connection is open */
	unsigned long long notifications, wakes, connects;
};
void events_listener_status(struct events_listener_status *out, struct events_listener *l);

#endif
