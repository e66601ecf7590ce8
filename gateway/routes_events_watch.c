/* GET /v1/events/watch: the event plane's stream (events/events.h) as
 * Server-Sent Events, one per event, each with its id.
 *
 * The ids are the stream's, given at commit in commit order without gaps
 * and the same on every novad, so a client resumes with Last-Event-ID on
 * any novad and misses nothing: the stream sends every event after its
 * cursor whose kind was asked for, in id order, and moves the cursor past
 * what it sent (at-least-once: a client that reconnects may see again what
 * it had not acknowledged by its Last-Event-ID). Where the stream begins:
 * Last-Event-ID (what an EventSource sends when it reconnects, so it wins
 * over the URL), else ?after=N (for clients that cannot send headers), else
 * the head when the watch opens (only what comes next). after=0 means from
 * the oldest event kept. A cursor older than the retention (pruned_through)
 * gets a `snapshot` event saying events were lost, then the stream goes on
 * from what is kept; so does a cursor beyond the head (an id from another
 * database, or one restored from a backup).
 *
 * When to read: a suspended stream is woken by every move of the head
 * (novad's listener, whichever novad committed) and by the keep-alive tick.
 * It reads only when the listener's head is beyond its cursor, so a wake
 * for others' news costs a comparison, not a query; the cursor moves to
 * the head read when nothing of the asked kinds follows, so a filtered
 * stream that is idle does not query again at every head. Without a
 * listener (before novad started it) a woken stream reads at most every
 * GW_EVW_POLL_MS. Rejected: a thread per stream polling the table (a
 * query per stream per period, for streams idle most of the time), and
 * one reader fanning events out to every stream (streams with different
 * cursors and kinds would each need a buffer of their own; a query per
 * stream per head move is cheap against event_stream's primary key).
 *
 * The read runs in the stream's callback on the server's thread pool,
 * bounded by the database pool's deadlines. While the database is away the
 * read fails: the stream keeps its cursor, sends keep-alive comments only,
 * and tries again at the next wake (at most every GW_EVW_RETRY_MS). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/notify.h"
#include "events/events.h"
#include "gateway/gw_int.h"

/* Events read at once: one page, sent as one buffer; a full page reads the
 * next at once. */
#define GW_EVW_PAGE 200
#define GW_EVW_POLL_MS 250
#define GW_EVW_RETRY_MS 1000

struct gw_evwatch {
	struct gw *gw;
	char cred[AUTH_ID_LEN];
	unsigned mask;
	/* The last id this stream has sent or skipped (nothing of its kinds up
	 * to there); -1: the head, not known yet (the database was away when
	 * it opened). */
	long long cursor;
	bool oldest;         /* after=0: from the oldest kept, no snapshot */
	bool read_now;       /* the first read, or the last was a full page */
	long long read_ms;   /* when it last read (monotonic) */
	long long retry_ms;  /* after a failed read: not before */
	struct gw_sse out;
};

static bool gw_evw_due(struct gw_evwatch *w, long long now)
{
	if (now < w->retry_ms)
		return false;
	if (w->read_now || w->cursor < 0)
		return true;
	struct events_listener *l = atomic_load(&w->gw->events);
	if (l) {
		struct events_listener_status st;
		events_listener_status(&st, l);
		if (st.head >= 0)
			return st.head > w->cursor;
	}
	return now - w->read_ms >= GW_EVW_POLL_MS;
}

/* The snapshot event: events after `after` are gone (or the cursor is
 * beyond the stream); the client lists the state again. Its id is where
 * the stream goes on from. */
static void gw_evw_snapshot(FILE *f, long long after, const struct events_position *pos,
			    long long from)
{
	fprintf(f,
		"id: %lld\nevent: snapshot\ndata: {\"expired\":true,\"after\":%lld,"
		"\"pruned_through\":%lld,\"head\":%lld}\n\n",
		from, after, pos->pruned_through, pos->head);
}

/* Read what follows the cursor into w->out (may stay empty). */
static void gw_evw_fill(struct gw_evwatch *w)
{
	struct nova_err err;
	struct events_position pos;
	json_t *list = NULL, *ev;
	char *buf = NULL;
	size_t len = 0, i;
	long long now = notify_now_ms();
	nova_err_clear(&err);
	w->read_ms = now;
	if (w->cursor < 0) {
		/* Opened while the database was away: the stream begins at the
		 * head as first read. */
		if (events_position(&pos, w->gw->deps.db, &err) != 0)
			goto failed;
		w->cursor = pos.head;
		return;
	}
	long long after = w->cursor;
	if (events_read(&list, &pos, w->gw->deps.db, after, w->mask, GW_EVW_PAGE, &err) != 0)
		goto failed;
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		json_decref(list);
		return;
	}
	if (after > pos.head) {
		gw_evw_snapshot(f, after, &pos, pos.head);
		w->cursor = pos.head;
	} else if (after < pos.pruned_through && !w->oldest) {
		gw_evw_snapshot(f, after, &pos, pos.pruned_through);
		w->cursor = pos.pruned_through;
	}
	w->oldest = false;
	json_array_foreach(list, i, ev) {
		char *text = json_dumps(ev, JSON_COMPACT);
		long long id = (long long)json_integer_value(json_object_get(ev, "id"));
		if (!text)
			break; /* out of memory: the rest at the next read */
		fprintf(f, "id: %lld\nevent: %s\ndata: %s\n\n", id,
			json_string_value(json_object_get(ev, "kind")), text);
		free(text);
		w->cursor = id;
	}
	/* A short page: nothing more of these kinds up to the head read in the
	 * same statement, so the cursor skips to it. */
	w->read_now = i == GW_EVW_PAGE;
	if (i == json_array_size(list) && !w->read_now && pos.head > w->cursor)
		w->cursor = pos.head;
	json_decref(list);
	if (fclose(f) != 0) {
		free(buf);
		return;
	}
	gw_sse_set(&w->out, buf);
	return;
failed:
	nova_log_kv(NOVA_LOG_DEBUG, "gateway", "an event watch could not read the stream", "error",
		    err.message, NULL);
	w->retry_ms = now + GW_EVW_RETRY_MS;
}

static long gw_evw_read(void *arg, char *buf, size_t max)
{
	struct gw_evwatch *w = arg;
	if (gw_sse_done(&w->out)) {
		gw_sse_set(&w->out, NULL);
		if (gw_evw_due(w, notify_now_ms()))
			gw_evw_fill(w);
		gw_sse_keepalive(&w->out);
	}
	return gw_sse_send(&w->out, buf, max);
}

static void gw_evw_free(void *arg)
{
	struct gw_evwatch *w = arg;
	gw_watch_give(w->gw, w->cred);
	free(w->out.pending);
	free(w);
}

/* An event id: digits only (18 at most), or NOVA_EINVAL naming field. */
static int gw_evw_cursor_parse(long long *out, const char *s, const char *field,
			       struct nova_err *err)
{
	size_t n = strlen(s);
	if (n == 0 || n > 18 || strspn(s, "0123456789") != n)
		return nova_err_set(err, NOVA_EINVAL, field,
				    "%s must be an event id (a non-negative integer)", field);
	*out = strtoll(s, NULL, 10);
	return 0;
}

void gw_events_watch(struct gw *gw, struct gw_call *call, struct http_request *req,
		     struct http_response *res)
{
	const char *last = http_request_header(req, "Last-Event-ID");
	const char *after_s = http_request_query(req, "after");
	struct gw_evwatch *w = NULL;
	struct events_position pos;
	struct nova_err err;
	unsigned mask;
	long long cursor = -1;
	nova_err_clear(&err);
	if (events_kinds_parse(&mask, http_request_query(req, "kind"), "kind", &err) ||
	    (last && *last && gw_evw_cursor_parse(&cursor, last, "Last-Event-ID", &err)) ||
	    (!(last && *last) && after_s && gw_evw_cursor_parse(&cursor, after_s, "after", &err))) {
		http_response_error(res, &err);
		return;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		http_response_errorf(res, NOVA_EINTERNAL, "", "out of memory");
		return;
	}
	w->gw = gw;
	w->mask = mask;
	if (!gw_watch_open(gw, call, w->cred, res)) {
		free(w);
		return;
	}
	w->oldest = cursor == 0;
	if (cursor < 0) {
		/* No cursor: only what comes next, from the head now. The
		 * database away: the listener's last head (events committed
		 * since may be sent: at-least-once), else the head as first read
		 * (see gw_evw_fill). */
		struct events_listener *l = atomic_load(&gw->events);
		struct events_listener_status st = {.head = -1};
		if (events_position(&pos, gw->deps.db, &err) == 0)
			cursor = pos.head;
		else if (l && (events_listener_status(&st, l), st.head >= 0))
			cursor = st.head;
	}
	w->cursor = cursor;
	/* Read once at the start whatever the listener's head says: a
	 * cursor beyond the head, or older than the retention, is told so at
	 * once. */
	w->read_now = true;
	w->read_ms = notify_now_ms() - GW_EVW_POLL_MS;
	/* A first comment, so the client has the headers and knows where the
	 * stream begins without waiting for an event. */
	char *first = NULL;
	if (cursor >= 0 ? asprintf(&first, ": after %lld\n\n", cursor) < 0
			: !(first = strdup(": after the head\n\n")))
		first = NULL;
	gw_sse_set(&w->out, first);
	w->out.last_write = time(NULL);
	http_response_stream(res, 200, "text/event-stream", gw_evw_read, w, gw_evw_free);
	http_response_header_add(res, "Cache-Control", "no-cache");
}
