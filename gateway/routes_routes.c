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
	struct gw *gw;
	char cred[AUTH_ID_LEN];      /* whose stream, for the per-key count */
	struct inventory_routes *routes;
	long long seen;
	struct gw_sse out;
	time_t stale_told;   /* when it was last told the table is stale (0: not since fresh) */
};


void gw_sse_set(struct gw_sse *o, char *text)
{
	free(o->pending);
	o->pending = text;
	o->off = 0;
	o->len = text ? strlen(text) : 0;
}

void gw_sse_keepalive(struct gw_sse *o)
{
	if (!o->len && time(NULL) - o->last_write >= GW_WATCH_KEEPALIVE_S)
		gw_sse_set(o, strdup(": keep-alive\n\n"));
}

long gw_sse_send(struct gw_sse *o, char *buf, size_t max)
{
	if (!o->len)
		return HTTP_STREAM_WAIT;
	size_t n = o->len - o->off;
	if (n > max)
		n = max;
	memcpy(buf, o->pending + o->off, n);
	o->off += n;
	o->last_write = time(NULL);
	return (long)n;
}

static long gw_watch_read(void *arg, char *buf, size_t max)
{
	struct gw_watch *w = arg;
	if (gw_sse_done(&w->out)) {
		long long next;
		gw_sse_set(&w->out, inventory_routes_next_event(w->routes, w->seen, &next));
		w->seen = next;
		long long age = inventory_routes_age_ms(w->routes, NULL);
		if (age <= INVENTORY_ROUTES_STALE_MS)
			w->stale_told = 0;
		if (!w->out.len && age > INVENTORY_ROUTES_STALE_MS &&
		    time(NULL) - w->stale_told >= GW_WATCH_KEEPALIVE_S) {
			/* The database is away: what it has is all there is, and
			 * it may be old. Said when it turns stale, then with every
			 * keep-alive; the next update or snapshot ends it. */
			char *text = NULL;
			if (asprintf(&text, "event: stale\ndata: {\"stale\":true,\"age_ms\":%lld}\n\n",
				     age) < 0)
				text = NULL;
			gw_sse_set(&w->out, text);
			w->stale_told = time(NULL);
		}
		gw_sse_keepalive(&w->out);
	}
	return gw_sse_send(&w->out, buf, max);
}

/* Counted in memory under one lock: a stream is opened rarely (a router's
 * start or reconnect), so the lock is never hot. Rejected: counting per
 * novad in the database (a watch is this process's connection; no other
 * novad can hold or free it). */
int gw_watch_take(struct gw *gw, const char *cred, struct nova_err *err)
{
	struct gw_watch_count *wc = NULL;
	int rc = 0;
	pthread_mutex_lock(&gw->watch_lock);
	for (size_t i = 0; i < gw->n_watch_counts && !wc; i++)
		if (!strcmp(gw->watch_counts[i].cred, cred))
			wc = &gw->watch_counts[i];
	if (gw->deps.max_watchers && gw->watchers >= gw->deps.max_watchers) {
		rc = nova_err_set(err, NOVA_ETOOMANY, "", "%u watch streams are open, the most "
				  "this server takes", gw->watchers);
		goto out;
	}
	if (gw->deps.max_watchers_per_key && wc && wc->n >= gw->deps.max_watchers_per_key) {
		rc = nova_err_set(err, NOVA_ETOOMANY, "", "this credential has %u watch streams "
				  "open, the most one may hold", wc->n);
		nova_err_set_hint(err, "close a stream, or give each router a key of its own");
		goto out;
	}
	if (!wc) {
		if (gw->n_watch_counts == gw->cap_watch_counts) {
			size_t cap = gw->cap_watch_counts ? 2 * gw->cap_watch_counts : 8;
			struct gw_watch_count *a = realloc(gw->watch_counts, cap * sizeof(*a));
			if (!a) {
				rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
				goto out;
			}
			gw->watch_counts = a;
			gw->cap_watch_counts = cap;
		}
		wc = &gw->watch_counts[gw->n_watch_counts++];
		snprintf(wc->cred, sizeof(wc->cred), "%s", cred);
		wc->n = 0;
	}
	wc->n++;
	gw->watchers++;
out:
	pthread_mutex_unlock(&gw->watch_lock);
	return rc;
}

bool gw_watch_open(struct gw *gw, const struct gw_call *call, char cred[AUTH_ID_LEN],
		   struct http_response *res)
{
	struct nova_err err;
	snprintf(cred, AUTH_ID_LEN, "%s", call->who->kind == AUTH_APIKEY ? call->who->id : "admin");
	if (gw_watch_take(gw, cred, &err) == 0)
		return true;
	/* Closed, so the refused client frees its connection too. */
	http_response_header_add(res, "Retry-After", GW_WATCH_RETRY_AFTER);
	http_response_header_add(res, "Connection", "close");
	http_response_error(res, &err);
	return false;
}

void gw_watch_give(struct gw *gw, const char *cred)
{
	pthread_mutex_lock(&gw->watch_lock);
	for (size_t i = 0; i < gw->n_watch_counts; i++) {
		if (strcmp(gw->watch_counts[i].cred, cred) != 0)
			continue;
		if (--gw->watch_counts[i].n == 0)
			gw->watch_counts[i] = gw->watch_counts[--gw->n_watch_counts];
		gw->watchers--;
		break;
	}
	pthread_mutex_unlock(&gw->watch_lock);
}

unsigned gw_watchers_open(struct gw *gw)
{
	pthread_mutex_lock(&gw->watch_lock);
	unsigned n = gw->watchers;
	pthread_mutex_unlock(&gw->watch_lock);
	return n;
}

static void gw_watch_free(void *arg)
{
	struct gw_watch *w = arg;
	gw_watch_give(w->gw, w->cred);
	free(w->out.pending);
	free(w);
}

void gw_routes_watch(struct gw *gw, struct gw_call *call, struct http_request *req,
		     struct http_response *res)
{
	const char *last = http_request_header(req, "Last-Event-ID");
	struct gw_watch *w = calloc(1, sizeof(*w));
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
	w->gw = gw;
	if (!gw_watch_open(gw, call, w->cred, res)) {
		free(w);
		return;
	}
	w->routes = gw->deps.routes;
	w->seen = -1; /* a snapshot first */
	if (last && *last) {
		/* A position of the event stream, from this novad or another:
		 * what the watcher missed since, or nothing, or a snapshot. */
		char *end;
		long long v = strtoll(last, &end, 10);
		if (!*end && v >= 0) {
			char *text = inventory_routes_resume(w->routes, v, &w->seen);
			/* Nothing missed: said at once in a comment, so the client
			 * knows the stream is up without waiting for a change or a
			 * keep-alive. */
			if (!text && w->seen >= 0 && asprintf(&text, ": resumed at %lld\n\n", v) < 0)
				text = NULL;
			gw_sse_set(&w->out, text);
		}
	}
	w->out.last_write = time(NULL);
	http_response_stream(res, 200, "text/event-stream", gw_watch_read, w, gw_watch_free);
	http_response_header_add(res, "Cache-Control", "no-cache");
}
