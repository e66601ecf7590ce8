#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gw_int.h"
#include "inventory/routes.h"

/* Every answer says how old the table is (ms since it was last read from
 * the database), so a client can tell a table served from memory while
 * the database is away; past INVENTORY_ROUTES_STALE_MS the body says so
 * too. */
static void gw_routes_age_header(struct http_response *res, struct inventory_routes *routes)
{
	char age[24];
	snprintf(age, sizeof(age), "%lld", inventory_routes_age_ms(routes, NULL));
	http_response_header_add(res, "Nova-Routes-Age-Ms", age);
}

void gw_routes_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		   struct http_response *res)
{
	char etag[INVENTORY_ROUTES_ETAG_LEN], *text = NULL;
	struct nova_err err;
	const char *inm = http_request_header(req, "If-None-Match");
	const char *model = http_request_query(req, "model");
	(void)call;
	nova_err_clear(&err);
	/* The usual poll of an unchanged table: 304 without rendering it. */
	if (inm && !model && inventory_routes_etag(etag, gw->deps.routes) &&
	    http_etag_match(inm, etag)) {
		gw_routes_age_header(res, gw->deps.routes);
		http_response_header_add(res, "ETag", etag);
		http_response_header_add(res, "Cache-Control", "no-cache");
		res->status = 304;
		return;
	}
	if (inventory_routes_get(&text, etag, gw->deps.routes, model, &err)) {
		http_response_error(res, &err);
		return;
	}
	gw_routes_age_header(res, gw->deps.routes);
	http_response_header_add(res, "ETag", etag);
	http_response_header_add(res, "Cache-Control", "no-cache");
	if (http_etag_match(inm, etag)) {
		res->status = 304;
		free(text);
		return;
	}
	http_response_text(res, 200, "application/json", text);
	free(text);
}

/* One watcher: the version it has seen, what is left to send of the
 * current event, and when it last sent anything (for keep-alives). */
struct gw_watch {
	struct inventory_routes *routes;
	long long seen;
	char *pending;
	size_t off, len;
	time_t last_write;
	time_t stale_told;   /* when it was last told the table is stale (0: not since fresh) */
};

#define GW_WATCH_KEEPALIVE_S 15

static long gw_watch_read(void *arg, char *buf, size_t max)
{
	struct gw_watch *w = arg;
	if (w->off == w->len) {
		long long next;
		free(w->pending);
		w->pending = inventory_routes_next_event(w->routes, w->seen, &next);
		w->off = 0;
		w->len = w->pending ? strlen(w->pending) : 0;
		long long age = inventory_routes_age_ms(w->routes, NULL);
		if (age <= INVENTORY_ROUTES_STALE_MS)
			w->stale_told = 0;
		if (w->pending) {
			w->seen = next;
		} else if (age > INVENTORY_ROUTES_STALE_MS &&
			   time(NULL) - w->stale_told >= GW_WATCH_KEEPALIVE_S) {
			/* The database is away: what it has is all there is, and
			 * it may be old. Said when it turns stale, then with every
			 * keep-alive; the next update or snapshot ends it. */
			if (asprintf(&w->pending, "event: stale\ndata: {\"stale\":true,\"age_ms\":%lld}\n\n",
				     age) < 0)
				w->pending = NULL;
			w->len = w->pending ? strlen(w->pending) : 0;
			w->stale_told = time(NULL);
		} else if (time(NULL) - w->last_write >= GW_WATCH_KEEPALIVE_S) {
			/* A comment line: keeps proxies from timing the stream out,
			 * and a write to a client that left ends the stream. */
			w->pending = strdup(": keep-alive\n\n");
			w->len = w->pending ? strlen(w->pending) : 0;
		}
		if (!w->len)
			return HTTP_STREAM_WAIT;
	}
	size_t n = w->len - w->off;
	if (n > max)
		n = max;
	memcpy(buf, w->pending + w->off, n);
	w->off += n;
	w->last_write = time(NULL);
	return (long)n;
}

static void gw_watch_free(void *arg)
{
	struct gw_watch *w = arg;
	free(w->pending);
	free(w);
}

void gw_routes_watch(struct gw *gw, struct gw_call *call, struct http_request *req,
		     struct http_response *res)
{
	const char *last = http_request_header(req, "Last-Event-ID");
	struct gw_watch *w = calloc(1, sizeof(*w));
	(void)call;
	if (inventory_routes_age_ms(gw->deps.routes, NULL) < 0) {
		/* No table yet (started while the database is away): a stream
		 * would open with an empty snapshot, which routers take as
		 * "nothing is routable". */
		free(w);
		http_response_errorf(res, NOVA_EUNAVAIL, "",
				     "the routing table has not been read from the database yet");
		return;
	}
	if (!w) {
		http_response_errorf(res, NOVA_EINTERNAL, "", "out of memory");
		return;
	}
	w->routes = gw->deps.routes;
	w->seen = -1; /* a snapshot first */
	if (last && *last) {
		char *end;
		long long v = strtoll(last, &end, 10);
		if (!*end && v >= 0)
			w->seen = v;
	}
	w->last_write = time(NULL);
	http_response_stream(res, 200, "text/event-stream", gw_watch_read, w, gw_watch_free);
	http_response_header_add(res, "Cache-Control", "no-cache");
}
