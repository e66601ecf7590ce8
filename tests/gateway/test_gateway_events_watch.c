/* GET /v1/events/watch over real HTTP on a real database, with the event
 * listener novad runs (its head moves wake the streams): every event of
 * the asked kinds in id order without a gap, the kind filter (and an idle
 * filtered stream that still sees the next event of its kind), resuming
 * from Last-Event-ID or ?after= with exactly the rest, the snapshot event
 * after retention pruned past the cursor (and for a cursor beyond the
 * head), 400 for a bad kind or cursor, the shared watcher caps, and a
 * stream without a listener reading when woken. Expected events are read
 * back from event_stream itself, so the test holds whatever triggers fire. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/notify.h"
#include "events/events.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

struct fx {
	struct testenv env;
	struct events_listener *listener;
	char pool_id[40];
};

static void fx_wake(void *ctx, long long head)
{
	(void)head;
	http_server_streams_wake(ctx);
}

static int fx_start(void **state, bool listener, unsigned per_key)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nova_err err;
	json_t *b = NULL;
	nova_log_set_level(NOVA_LOG_ERROR);
	if (!f || testenv_gateway_start_watch_caps(&f->env, 65536, 0, per_key))
		return -1;
	if (listener) {
		struct events_listener_config cfg = {.on_change = fx_wake, .ctx = f->env.srv};
		if (events_listener_start(&f->listener, f->env.db, &cfg, &err))
			return -1;
		gw_events_set(f->env.gw, f->listener);
	}
	if (testenv_http(&b, &f->env, "POST", "/v1/pools", ADMIN,
			 "{\"name\":\"p\",\"provider\":\"fake\",\"config\":{\"nodes\":0}}") != 201)
		return -1;
	snprintf(f->pool_id, sizeof(f->pool_id), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return fx_start(state, true, 0);
}

static int setup_no_listener(void **state)
{
	return fx_start(state, false, 0);
}

static int setup_one_per_key(void **state)
{
	return fx_start(state, true, 1);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	/* The server first: its streams read the listener's status. */
	http_server_stop(f->env.srv);
	gw_events_set(f->env.gw, NULL);
	events_listener_stop(f->listener);
	testenv_close(&f->env);
	free(f);
	return 0;
}

static void sql(struct fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sql(struct fx *f, const char *fmt, ...)
{
	char q[1024];
	struct nova_err err;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	if (db_pool_exec(NULL, f->env.db, q, 0, NULL, &err))
		fail_msg("%s: %s", q, err.message);
}

static long long head(struct fx *f)
{
	return testenv_query_int(&f->env, "SELECT last_id FROM event_stream_head");
}

/* n pool events, each in a transaction of its own. */
static void pool_events(struct fx *f, int n)
{
	for (int i = 0; i < n; i++)
		sql(f, "INSERT INTO pool_events (pool_id, kind, message) VALUES ('%s', 'test', 'm%d')",
		    f->pool_id, i);
}

/* --- a Server-Sent Events client over a raw socket ---------------------- */

struct sse {
	int fd;
	long status;
	char raw[1 << 18];   /* as received, after the headers: chunked */
	size_t rlen, rpos;
	char txt[1 << 18];   /* the body, de-chunked */
	size_t tlen, tpos;
	bool ended;
	long long after;     /* from the first comment ": after N"; -2: not seen */
};

struct sse_event {
	long long id;        /* -1: none */
	char event[32];
	json_t *data;
};

static void sse_dechunk(struct sse *s)
{
	for (;;) {
		char *crlf = memmem(s->raw + s->rpos, s->rlen - s->rpos, "\r\n", 2);
		if (!crlf)
			return;
		size_t size = strtoul(s->raw + s->rpos, NULL, 16);
		size_t start = (size_t)(crlf - s->raw) + 2;
		if (size == 0) {
			s->ended = true;
			return;
		}
		if (s->rlen < start + size + 2)
			return;
		assert_true(s->tlen + size < sizeof(s->txt));
		memcpy(s->txt + s->tlen, s->raw + start, size);
		s->tlen += size;
		s->rpos = start + size + 2;
	}
}

/* Read what comes within ms; false when the connection closed. */
static bool sse_recv(struct sse *s, int ms)
{
	struct pollfd p = {.fd = s->fd, .events = POLLIN};
	if (poll(&p, 1, ms) <= 0)
		return true;
	if (s->rlen == sizeof(s->raw)) {
		memmove(s->raw, s->raw + s->rpos, s->rlen - s->rpos);
		s->rlen -= s->rpos;
		s->rpos = 0;
	}
	ssize_t r = recv(s->fd, s->raw + s->rlen, sizeof(s->raw) - s->rlen, 0);
	if (r <= 0)
		return false;
	s->rlen += (size_t)r;
	return true;
}

/* Open a watch; the status is in s->status, a 200's body is then read with
 * sse_next, another's left in s->raw. */
static struct sse *sse_open(struct fx *f, const char *query, const char *last_event_id)
{
	struct sse *s = calloc(1, sizeof(*s));
	unsigned port = (unsigned)atoi(strrchr(f->env.url, ':') + 1);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	char req[1024], hdr[128] = "";
	assert_non_null(s);
	s->after = -2;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (last_event_id)
		snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s\r\n", last_event_id);
	int n = snprintf(req, sizeof(req),
			 "GET /v1/events/watch%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
			 "Accept: text/event-stream\r\n%s\r\n",
			 query, ADMIN, hdr);
	assert_int_equal(send(s->fd, req, (size_t)n, 0), n);
	long long until = notify_now_ms() + 5000;
	char *end = NULL;
	while (!(end = memmem(s->raw, s->rlen, "\r\n\r\n", 4)) && notify_now_ms() < until)
		if (!sse_recv(s, 100))
			break;
	if (!end)
		fail_msg("no answer to the watch %s", query);
	s->status = strtol(s->raw + 9, NULL, 10);
	if (s->status == 200) {
		if (!memmem(s->raw, (size_t)(end - s->raw), "text/event-stream", 17))
			fail_msg("not an event stream: %.*s", (int)(end - s->raw), s->raw);
		s->rpos = (size_t)(end - s->raw) + 4;
		sse_dechunk(s);
	} else {
		/* An error's body, whole: Content-Length says how long. */
		char *cl = strcasestr(s->raw, "\r\nContent-Length:");
		size_t body_at = (size_t)(end - s->raw) + 4, want = cl ? strtoul(cl + 17, NULL, 10) : 0;
		while (s->rlen < body_at + want && notify_now_ms() < until)
			if (!sse_recv(s, 100))
				break;
		s->raw[s->rlen < sizeof(s->raw) ? s->rlen : sizeof(s->raw) - 1] = '\0';
		s->rpos = body_at;
	}
	return s;
}

static void sse_close(struct sse *s)
{
	if (!s)
		return;
	close(s->fd);
	free(s);
}

static void sse_event_clear(struct sse_event *ev)
{
	json_decref(ev->data);
	memset(ev, 0, sizeof(*ev));
}

/* The next event within ms: true and *ev filled, or false. Comments are
 * skipped (the first one's "after N" is kept in s->after). */
static bool sse_next(struct sse *s, struct sse_event *ev, int ms)
{
	long long until = notify_now_ms() + ms;
	memset(ev, 0, sizeof(*ev));
	ev->id = -1;
	for (;;) {
		char *blk = s->txt + s->tpos;
		char *end = memmem(blk, s->tlen - s->tpos, "\n\n", 2);
		if (end) {
			bool any = false;
			*end = '\0';
			for (char *line = blk; line && *line;) {
				char *nl = strchr(line, '\n');
				if (nl)
					*nl = '\0';
				if (line[0] == ':') {
					if (s->after == -2)
						s->after = !strncmp(line, ": after ", 8) &&
								   line[8] >= '0' && line[8] <= '9'
							   ? strtoll(line + 8, NULL, 10) : -1;
				} else if (!strncmp(line, "id: ", 4)) {
					ev->id = strtoll(line + 4, NULL, 10);
					any = true;
				} else if (!strncmp(line, "event: ", 7)) {
					snprintf(ev->event, sizeof(ev->event), "%s", line + 7);
					any = true;
				} else if (!strncmp(line, "data: ", 6)) {
					ev->data = json_loads(line + 6, 0, NULL);
					if (!ev->data)
						fail_msg("data is not JSON: %s", line + 6);
					any = true;
				} else {
					fail_msg("an unexpected line in the stream: %s", line);
				}
				line = nl ? nl + 1 : NULL;
			}
			s->tpos = (size_t)(end - s->txt) + 2;
			if (any)
				return true;
			continue;
		}
		long long left = until - notify_now_ms();
		if (left <= 0 || s->ended)
			return false;
		if (!sse_recv(s, (int)(left > 100 ? 100 : left)))
			return false;
		sse_dechunk(s);
	}
}

/* The ids of event_stream after `after` of the kinds in `kinds` (an SQL
 * list, e.g. 'node','pool'), up to `upto`, in order. */
static size_t expected_ids(struct fx *f, long long *ids, size_t cap, long long after,
			   long long upto, const char *kinds)
{
	char q[512];
	PGresult *r;
	struct nova_err err;
	snprintf(q, sizeof(q),
		 "SELECT id FROM event_stream WHERE id > %lld AND id <= %lld AND kind IN (%s) "
		 "ORDER BY id", after, upto, kinds);
	if (db_pool_exec(&r, f->env.db, q, 0, NULL, &err))
		fail_msg("%s: %s", q, err.message);
	size_t n = (size_t)PQntuples(r);
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
	PQclear(r);
	return n;
}

/* Receive events until the one with id `last`; check each is the next of
 * want[] (its id, its kind as event name and in data, the data's fields).
 * Returns how many came. */
static size_t receive_exactly(struct sse *s, const long long *want, size_t n, const char *kinds)
{
	struct sse_event ev;
	size_t got = 0;
	while (got < n) {
		if (!sse_next(s, &ev, 5000))
			fail_msg("event %zu of %zu (id %lld) did not come", got + 1, n, want[got]);
		if (ev.id != want[got])
			fail_msg("event %zu: id %lld, want %lld", got + 1, ev.id, want[got]);
		const char *kind = json_string_value(json_object_get(ev.data, "kind"));
		if (!kind || strcmp(kind, ev.event) || !strstr(kinds, kind))
			fail_msg("event %lld: event %s, data kind %s, asked %s", ev.id, ev.event,
				 kind ? kind : "(none)", kinds);
		assert_int_equal(json_integer_value(json_object_get(ev.data, "id")), ev.id);
		assert_non_null(json_string_value(json_object_get(ev.data, "subject")));
		assert_non_null(json_string_value(json_object_get(ev.data, "at")));
		assert_true(json_is_object(json_object_get(ev.data, "data")));
		sse_event_clear(&ev);
		got++;
	}
	return got;
}

/* Nothing more comes within ms. */
static void receive_nothing(struct sse *s, int ms)
{
	struct sse_event ev;
	if (sse_next(s, &ev, ms))
		fail_msg("an event more: id %lld %s", ev.id, ev.event);
}

/* --- the tests ------------------------------------------------------------ */

static void test_every_event_comes_in_id_order_without_a_gap(void **state)
{
	struct fx *f = *state;
	long long ids[64];
	long long h0 = head(f);
	struct sse *s = sse_open(f, "", NULL);
	assert_int_equal(s->status, 200);
	/* Nothing from before the watch: it begins at the head. */
	receive_nothing(s, 300);
	assert_int_equal(s->after, h0);
	/* Pool events, node transitions (a node made, then ready) and a pool
	 * change through the API, each its own commit. */
	pool_events(f, 3);
	sql(f, "INSERT INTO nodes (pool_id, name) VALUES ('%s', 'n1'), ('%s', 'n2')", f->pool_id,
	    f->pool_id);
	sql(f, "UPDATE nodes SET state = 'ready', state_reason = 'up' WHERE name = 'n1'");
	pool_events(f, 2);
	assert_int_equal(testenv_http(NULL, &f->env, "PATCH", "/v1/pools/p", ADMIN,
				      "{\"quotas\":{\"max_nodes\":4}}"), 200);
	long long h1 = head(f);
	size_t n = expected_ids(f, ids, 64, h0, h1, "'node','deployment','pool','route'");
	assert_true(n >= 8);
	/* Ids without gaps: every id after the head the watch began at. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], h0 + 1 + (long long)i);
	receive_exactly(s, ids, n, "node,deployment,pool,route");
	receive_nothing(s, 300);
	/* And what comes next. */
	pool_events(f, 1);
	ids[0] = h1 + 1;
	receive_exactly(s, ids, 1, "pool");
	sse_close(s);
}

static void test_a_kind_filter_sends_only_those_kinds(void **state)
{
	struct fx *f = *state;
	long long ids[64];
	long long h0 = head(f);
	struct sse *nodes = sse_open(f, "?kind=node", NULL);
	struct sse *both = sse_open(f, "?kind=pool,node", NULL);
	assert_int_equal(nodes->status, 200);
	assert_int_equal(both->status, 200);
	pool_events(f, 2);
	sql(f, "INSERT INTO nodes (pool_id, name) VALUES ('%s', 'n1')", f->pool_id);
	pool_events(f, 2);
	sql(f, "UPDATE nodes SET state = 'ready', state_reason = 'up' WHERE name = 'n1'");
	long long h1 = head(f);
	size_t n = expected_ids(f, ids, 64, h0, h1, "'node'");
	assert_int_equal(n, 2);
	receive_exactly(nodes, ids, n, "node");
	n = expected_ids(f, ids, 64, h0, h1, "'node','pool'");
	assert_int_equal(n, 6);
	receive_exactly(both, ids, n, "pool,node");
	/* Idle for its kind while other kinds come (its cursor skips them),
	 * then the next node event still comes, alone. */
	pool_events(f, 5);
	receive_nothing(nodes, 500);
	sql(f, "UPDATE nodes SET state = 'unhealthy', state_reason = 'silent' WHERE name = 'n1'");
	long long h2 = head(f);
	n = expected_ids(f, ids, 64, h1, h2, "'node'");
	assert_int_equal(n, 1);
	receive_exactly(nodes, ids, n, "node");
	receive_nothing(nodes, 300);
	sse_close(nodes);
	sse_close(both);
}

static void test_a_watch_resumes_after_the_last_event_id(void **state)
{
	struct fx *f = *state;
	long long ids[64];
	char mid_s[24];
	long long h0 = head(f);
	pool_events(f, 10);
	long long h1 = head(f);
	assert_int_equal(h1, h0 + 10);
	long long mid = h0 + 4;
	snprintf(mid_s, sizeof(mid_s), "%lld", mid);
	size_t n = expected_ids(f, ids, 64, mid, h1, "'pool'");
	assert_int_equal(n, 6);
	/* Last-Event-ID: exactly the rest, then nothing. */
	struct sse *s = sse_open(f, "", mid_s);
	assert_int_equal(s->status, 200);
	receive_exactly(s, ids, n, "pool");
	receive_nothing(s, 300);
	sse_close(s);
	/* ?after= for clients that cannot send the header. */
	char q[64];
	snprintf(q, sizeof(q), "?after=%lld", mid);
	s = sse_open(f, q, NULL);
	receive_exactly(s, ids, n, "pool");
	receive_nothing(s, 300);
	sse_close(s);
	/* Both: the header wins (an EventSource reconnecting sends it to the
	 * URL it opened). */
	snprintf(q, sizeof(q), "?after=%lld", h0);
	s = sse_open(f, q, mid_s);
	receive_exactly(s, ids, n, "pool");
	sse_close(s);
	/* after=0: from the oldest kept. */
	n = expected_ids(f, ids, 64, 0, h1, "'node','deployment','pool','route'");
	s = sse_open(f, "?after=0", NULL);
	receive_exactly(s, ids, n, "node,deployment,pool,route");
	receive_nothing(s, 300);
	sse_close(s);
}

static void test_a_cursor_older_than_the_retention_gets_a_snapshot(void **state)
{
	struct fx *f = *state;
	long long ids[64], removed = 0;
	struct nova_err err;
	struct sse_event ev;
	pool_events(f, 10);
	long long h = head(f);
	assert_int_equal(events_prune(&removed, f->env.db, 3, 0, &err), 0);
	assert_true(removed > 0);
	long long p = testenv_query_int(&f->env, "SELECT pruned_through FROM event_stream_head");
	assert_int_equal(p, h - 3);
	/* Last-Event-ID 2 is older than what is kept: the snapshot first, with
	 * its id where the stream goes on, then the events kept. */
	struct sse *s = sse_open(f, "", "2");
	assert_true(sse_next(s, &ev, 5000));
	assert_string_equal(ev.event, "snapshot");
	assert_int_equal(ev.id, p);
	json_t *want = json_pack("{s:b, s:I, s:I, s:I}", "expired", 1, "after", (json_int_t)2,
				 "pruned_through", (json_int_t)p, "head", (json_int_t)h);
	if (!json_equal(ev.data, want))
		fail_msg("snapshot data: %s", json_dumps(ev.data, JSON_COMPACT));
	json_decref(want);
	sse_event_clear(&ev);
	size_t n = expected_ids(f, ids, 64, 2, h, "'node','deployment','pool','route'");
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], p + 1);
	receive_exactly(s, ids, n, "pool");
	receive_nothing(s, 300);
	sse_close(s);
	/* Resuming from the snapshot's id: no snapshot again. */
	char p_s[24];
	snprintf(p_s, sizeof(p_s), "%lld", p);
	s = sse_open(f, "", p_s);
	receive_exactly(s, ids, n, "pool");
	sse_close(s);
	/* after=0 asks for the oldest kept: no snapshot. */
	s = sse_open(f, "?after=0", NULL);
	receive_exactly(s, ids, n, "pool");
	sse_close(s);
	/* A cursor beyond the head (another database's id): a snapshot too,
	 * then what comes next. */
	s = sse_open(f, "", "100000");
	assert_true(sse_next(s, &ev, 5000));
	assert_string_equal(ev.event, "snapshot");
	assert_int_equal(ev.id, h);
	assert_int_equal(json_integer_value(json_object_get(ev.data, "after")), 100000);
	sse_event_clear(&ev);
	pool_events(f, 1);
	ids[0] = h + 1;
	receive_exactly(s, ids, 1, "pool");
	sse_close(s);
}

static void test_a_bad_kind_or_cursor_is_400_naming_it(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *query, *last, *field;
	} cases[] = {
		{"?kind=nodes", NULL, "kind"},
		{"?kind=node,", NULL, NULL}, /* a trailing comma is no kind: allowed */
		{"?kind=node,bogus", NULL, "kind"},
		{"?after=-1", NULL, "after"},
		{"?after=1x", NULL, "after"},
		{"", "abc", "Last-Event-ID"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sse *s = sse_open(f, cases[i].query, cases[i].last);
		if (!cases[i].field) {
			assert_int_equal(s->status, 200);
		} else {
			json_t *b = json_loads(s->raw + s->rpos, 0, NULL);
			const char *field = json_string_value(
				json_object_get(json_object_get(b, "error"), "field"));
			bool ok = s->status == 400 && field && !strcmp(field, cases[i].field);
			json_decref(b);
			if (!ok)
				fail_msg("%s %s: %ld, want 400 naming %s: %s", cases[i].query,
					 cases[i].last ? cases[i].last : "", s->status, cases[i].field,
					 s->raw);
		}
		sse_close(s);
	}
}

/* The caps count route watches and event watches together. */
static void test_event_watches_count_in_the_watcher_caps(void **state)
{
	struct fx *f = *state;
	struct sse *a = sse_open(f, "", NULL);
	assert_int_equal(a->status, 200);
	struct sse *b = sse_open(f, "?kind=pool", NULL);
	assert_int_equal(b->status, 429);
	assert_non_null(strstr(b->raw, "Retry-After"));
	sse_close(b);
	/* A route watch of the same credential meets the same cap. */
	json_t *body;
	assert_int_equal(testenv_http(&body, &f->env, "GET", "/v1/routes/watch", ADMIN, NULL), 429);
	json_decref(body);
	sse_close(a);
	/* Freed when the stream ends (found at a wake). */
	long long until = notify_now_ms() + 5000;
	long st = 0;
	while (notify_now_ms() < until) {
		http_server_streams_wake(f->env.srv);
		b = sse_open(f, "", NULL);
		st = b->status;
		sse_close(b);
		if (st == 200)
			break;
		usleep(100 * 1000);
	}
	assert_int_equal(st, 200);
}

/* Without a listener (novad before it started one) a stream reads when it
 * is woken, at most every 250 ms. */
static void test_without_a_listener_a_woken_stream_reads(void **state)
{
	struct fx *f = *state;
	long long ids[8];
	struct sse *s = sse_open(f, "", NULL);
	long long h0 = head(f);
	pool_events(f, 2);
	size_t n = expected_ids(f, ids, 8, h0, head(f), "'pool'");
	assert_int_equal(n, 2);
	/* Woken as the keep-alive tick does; within the 250 ms of its last
	 * read it may wait for the next wake. */
	long long until = notify_now_ms() + 5000;
	struct sse_event ev;
	size_t got = 0;
	while (got < n && notify_now_ms() < until) {
		http_server_streams_wake(f->env.srv);
		while (got < n && sse_next(s, &ev, 300)) {
			assert_int_equal(ev.id, ids[got]);
			sse_event_clear(&ev);
			got++;
		}
	}
	assert_int_equal(got, n);
	sse_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_event_comes_in_id_order_without_a_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_kind_filter_sends_only_those_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_watch_resumes_after_the_last_event_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_cursor_older_than_the_retention_gets_a_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_bad_kind_or_cursor_is_400_naming_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_watches_count_in_the_watcher_caps, setup_one_per_key, teardown),
		cmocka_unit_test_setup_teardown(test_without_a_listener_a_woken_stream_reads, setup_no_listener, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
