#include "core/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/hex.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/notify.h"

#define HTTP_MAX_ROUTES 128
#define HTTP_MAX_SEGMENTS 16
#define HTTP_DRAIN_TIMEOUT_MS 10000
/* How long MHD_stop_daemon gets, after the drain, to join its threads
 * before stop gives up on them (and again in destroy before it frees). */
#define HTTP_STOP_JOIN_MS 1000

/* The statuses counted one by one; the rest are counted by class. */
static const short http_status_slots[] = {
	200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406, 408, 409,
	410, 411, 412, 413, 414, 415, 416, 422, 429, 431, 500, 501, 502, 503, 504,
};
#define HTTP_STATUS_SLOTS (sizeof(http_status_slots) / sizeof(http_status_slots[0]))

/* What a route (or, for requests no route took, the server) answered. */
struct http_route_stats {
	atomic_ullong by_status[HTTP_STATUS_SLOTS + 5]; /* then 1xx..5xx others */
	struct metrics_hist duration;
};

struct http_route {
	char method[8];
	bool quiet;                   /* access log at debug */
	struct http_route_stats stats;
	char *pattern;
	char *segs[HTTP_MAX_SEGMENTS]; /* point into a private copy */
	char *copy;
	size_t n_segs;
	size_t n_literals;
	http_handler_fn fn;
	void *ctx;
};

struct http_server {
	struct http_server_config cfg;
	char listen[256];
	struct MHD_Daemon *daemon;
	int listen_fd;
	uint16_t port;
	struct http_route routes[HTTP_MAX_ROUTES];
	size_t n_routes;
	struct http_route_stats unrouted; /* 404, 405, refused before routing */
	bool started, stopped;
	atomic_int in_flight;
	/* Streams suspended on HTTP_STREAM_WAIT; resumed under the same lock,
	 * so a stream is never resumed before it was suspended. */
	pthread_mutex_t wait_lock;
	struct http_stream *waiting;
	atomic_bool stopping;
	/* MHD_stop_daemon runs on a thread of its own (stopper), so that a
	 * handler blocked for good cannot hold stop past its bound: stop_done
	 * is set under stop_lock when it returned. stop_stuck: stop gave up
	 * waiting; destroy then leaves the server allocated rather than free
	 * what a stuck thread may still touch. */
	pthread_t stopper;
	bool stopper_started, stopper_joined, stop_stuck;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop_done;
	/* Every open connection, oldest first (http.h: "Connections under a
	 * flood"); the reaper shuts down those past their deadline. */
	pthread_mutex_t track_lock;
	pthread_cond_t track_cond;   /* on CLOCK_MONOTONIC */
	struct http_track *track_head, *track_tail;
	unsigned long n_open;        /* tracked and not shed */
	unsigned long n_timed_out, n_shed;
	long long reaper_wake_ms;    /* when the reaper wakes next (LLONG_MAX: when told) */
	pthread_t reaper;
	bool reaper_started, reaper_stop;
	atomic_llong limit_logged_ms; /* MHD's "limit reached", rate-limited */
	atomic_ulong limit_refused;
};

enum http_phase { HTTP_PHASE_HEAD, HTTP_PHASE_BODY, HTTP_PHASE_BUSY };

/* One open connection: from MHD's "started" notification to "closed"
 * (which MHD sends before it closes the socket, so fd is ours to shut
 * down while the entry is linked). */
struct http_track {
	struct http_track *prev, *next;
	int fd;
	enum http_phase phase;
	bool served;             /* answered a request (kept alive since) */
	bool shed;               /* shut down by us; MHD has yet to close it */
	long long deadline_ms;   /* CLOCK_MONOTONIC; LLONG_MAX: none */
	char owner[HTTP_OWNER_MAX + 1]; /* who its requests came as ("": nobody yet) */
};

/* Per request: lives from MHD's first call to its completion callback. */
struct http_conn_ctx {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct timespec start;
	char *body;
	size_t body_len, body_cap;
	bool too_big;
	bool answered;
	const struct http_route *route;
	char *param_names[HTTP_MAX_PARAMS];
	char *param_values[HTTP_MAX_PARAMS];
	size_t n_params;
	char *path_copy;
	size_t discarded;            /* body bytes dropped past the cap */
	struct http_owned *owned;    /* decoded query values handed out */
	char request_id[HTTP_REQUEST_ID_MAX + 1];
};

/* A string handed to a handler that lives until the request completes. */
struct http_owned {
	struct http_owned *next;
	char s[];
};

/* Decode %xx in place. A malformed escape stays as it is; so does %00, which
 * would cut a C string short: the return value says one was seen. */
static bool http_pct_decode(char *s)
{
	bool nul = false;
	char *w = s;
	for (const char *r = s; *r; r++) {
		unsigned char byte;
		if (r[0] != '%' || !hex_decode(&byte, r + 1, 1)) {
			*w++ = *r;
			continue;
		}
		char c = (char)byte;
		if (c == '\0') {
			nul = true;
			*w++ = *r;
			continue;
		}
		*w++ = c;
		r += 2;
	}
	*w = '\0';
	return !nul;
}

/* Each connection's memory pool in libmicrohttpd: the request line and
 * headers (up to about half of it), the header table and the answer's
 * headers. libmicrohttpd clears the pool between the requests of a
 * keep-alive connection, so its size is paid on every request: at 64 KiB,
 * clearing was 7-13% of novad's time under heartbeats, and 256 connections
 * held 16 MiB. Bodies do not live in it (handlers copy them out). */
#define HTTP_CONNECTION_MEMORY (16 * 1024)

/* MHD is told not to unescape anything (MHD_OPTION_UNESCAPE_CALLBACK): it
 * would decode the whole path before routing, turning "a%2Fb" into two
 * segments, and model names ("meta-llama/Llama-3") travel as one encoded
 * segment. Segments are decoded after the split, query values on lookup. */
static size_t http_unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls, (void)conn;
	return strlen(s);
}

/* --- request accessors -------------------------------------------------- */

/* One entity tag from *p (after spaces and commas): its opaque part,
 * quotes included, without W/. false at the end. */
static bool http_etag_next(const char **p, const char **tag, size_t *len)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t' || *s == ',')
		s++;
	if (!*s)
		return false;
	if (s[0] == 'W' && s[1] == '/')
		s += 2;
	const char *start = s;
	if (*s == '"') {
		const char *close = strchr(s + 1, '"');
		s = close ? close + 1 : s + strlen(s);
	} else {
		s += strcspn(s, ", \t");
	}
	*tag = start;
	*len = (size_t)(s - start);
	*p = s;
	return true;
}

bool http_etag_match(const char *if_none_match, const char *etag)
{
	const char *want, *got, *p = etag;
	size_t want_len, got_len;
	if (!if_none_match || !etag || !http_etag_next(&p, &want, &want_len))
		return false;
	p = if_none_match;
	while (http_etag_next(&p, &got, &got_len)) {
		if ((got_len == 1 && *got == '*') ||
		    (got_len == want_len && memcmp(got, want, want_len) == 0))
			return true;
	}
	return false;
}

int http_request_owner_claim(const struct http_request *req, const char *owner, unsigned limit,
			     struct nova_err *err)
{
	const struct http_conn_ctx *c = req->priv;
	struct http_server *srv = c->srv;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct http_track *t = ci ? ci->socket_context : NULL;
	unsigned held = 0;
	int rc = 0;
	if (!t || !limit || !owner || !*owner)
		return 0;
	pthread_mutex_lock(&srv->track_lock);
	if (strncmp(t->owner, owner, HTTP_OWNER_MAX) != 0) {
		/* The first request of this connection as owner (or as another
		 * owner than before): count what owner holds. Linear, once per
		 * connection and owner, under the lock every accept takes too. */
		for (struct http_track *o = srv->track_head; o; o = o->next)
			if (o != t && !o->shed && strncmp(o->owner, owner, HTTP_OWNER_MAX) == 0)
				held++;
		if (held >= limit)
			rc = nova_err_set(err, NOVA_ETOOMANY, "",
					  "this credential holds %u connections, the most one may", held);
		else
			snprintf(t->owner, sizeof(t->owner), "%s", owner);
	}
	pthread_mutex_unlock(&srv->track_lock);
	return rc;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	const struct http_conn_ctx *c = req->priv;
	return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

const char *http_request_query(const struct http_request *req, const char *name)
{
	struct http_conn_ctx *c = req->priv;
	/* '+' is already a space (MHD does that before its unescape hook). */
	const char *raw = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
	if (!raw)
		return NULL;
	size_t n = strlen(raw);
	struct http_owned *o = malloc(sizeof(*o) + n + 1);
	if (!o)
		return NULL;
	memcpy(o->s, raw, n + 1);
	http_pct_decode(o->s);
	o->next = c->owned;
	c->owned = o;
	return o->s;
}

const char *http_request_param(const struct http_request *req, const char *name)
{
	const struct http_conn_ctx *c = req->priv;
	for (size_t i = 0; i < c->n_params; i++)
		if (strcmp(c->param_names[i], name) == 0)
			return c->param_values[i];
	return NULL;
}

/* --- responses ------------------------------------------------------------ */

static void http_response_set_body(struct http_response *res, char *body, size_t len,
				   const char *content_type)
{
	free(res->body);
	free(res->content_type);
	res->body = body;
	res->body_len = body ? len : 0;
	res->content_type = content_type ? strdup(content_type) : NULL;
}

void http_response_json(struct http_response *res, int status, json_t *body_stolen)
{
	/* A NULL body means building it failed (out of memory, or a json_pack
	 * format that does not match its arguments): say so, never 200 empty. */
	char *text = body_stolen ? json_dumps(body_stolen, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(body_stolen);
	http_response_json_text(res, status, text);
}

void http_response_json_text(struct http_response *res, int status, char *text)
{
	res->status = status;
	if (!text) {
		res->status = 500;
		nova_log(NOVA_LOG_ERROR, "http", "response body for status %d could not be built", status);
		text = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"response could not be "
			      "built\",\"field\":\"\"}}");
		if (!text) {
			http_response_set_body(res, NULL, 0, NULL);
			return;
		}
	}
	size_t n = strlen(text);
	char *with_nl = realloc(text, n + 2);
	if (with_nl) {
		with_nl[n] = '\n';
		with_nl[n + 1] = '\0';
		text = with_nl;
		n++;
	}
	http_response_set_body(res, text, n, "application/json");
}

void http_response_text(struct http_response *res, int status, const char *content_type,
			const char *text)
{
	char *copy = strdup(text ? text : "");
	res->status = status;
	http_response_set_body(res, copy, copy ? strlen(copy) : 0,
			       content_type ? content_type : "text/plain; charset=utf-8");
}

static size_t http_utf8_len(const unsigned char *p)
{
	uint32_t cp;
	size_t n;
	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xE0) == 0xC0)
		n = 2, cp = p[0] & 0x1Fu;
	else if ((p[0] & 0xF0) == 0xE0)
		n = 3, cp = p[0] & 0x0Fu;
	else if ((p[0] & 0xF8) == 0xF0)
		n = 4, cp = p[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3Fu);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0; /* overlong, surrogate or out of range: jansson refuses these too */
	return n;
}

/* Copy s with every byte that is not part of valid UTF-8 replaced by '?':
 * jansson refuses invalid UTF-8, and an error text may carry bytes from a
 * request path or a provider's output. Without this the whole error body
 * fails to build and a 404 or 502 turns into a 500. */
static void http_utf8_sanitize(char *out, size_t out_len, const char *s)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)s;
	while (*p && o + 1 < out_len) {
		size_t n = http_utf8_len(p);
		if (n == 0) {
			out[o++] = '?';
			p++;
			continue;
		}
		if (o + n >= out_len)
			break;
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
}

void http_response_error(struct http_response *res, const struct nova_err *err)
{
	char message[NOVA_ERR_MESSAGE_MAX], field[NOVA_ERR_FIELD_MAX], hint[NOVA_ERR_HINT_MAX];
	http_utf8_sanitize(message, sizeof(message),
			   err->message[0] ? err->message : nova_code_name(err->code));
	http_utf8_sanitize(field, sizeof(field), err->field);
	http_utf8_sanitize(hint, sizeof(hint), err->hint);
	json_t *e = json_pack("{s:s, s:s, s:s}", "code", nova_code_name(err->code), "message",
			      message, "field", field);
	if (e && hint[0])
		json_object_set_new(e, "hint", json_string(hint));
	if (e && res->request_id && res->request_id[0])
		json_object_set_new(e, "request_id", json_string(res->request_id));
	http_response_json(res, nova_code_http_status(err->code), json_pack("{s:o}", "error", e));
	/* A dependency that is down or a transient failure: tell the client
	 * when to come back (RFC 9110 10.2.3, delay-seconds), once. One second
	 * is about when the database deadlines have run again; a client that
	 * knows better backs off further. */
	if (err->code == NOVA_EUNAVAIL || err->code == NOVA_EAGAIN || err->code == NOVA_ETOOMANY) {
		bool has = false;
		for (size_t i = 0; i < res->n_headers && !has; i++)
			has = !strcasecmp(res->headers[i].name, "Retry-After");
		if (!has)
			http_response_header_add(res, "Retry-After", "1");
	}
}

void http_response_errorf(struct http_response *res, int code, const char *field,
			  const char *fmt, ...)
{
	struct nova_err err;
	va_list ap;
	va_start(ap, fmt);
	nova_err_vset(&err, code, field, fmt, ap);
	va_end(ap);
	http_response_error(res, &err);
}

void http_response_header_add(struct http_response *res, const char *name, const char *value)
{
	if (res->n_headers == HTTP_MAX_RESPONSE_HEADERS)
		return;
	struct http_response_header *h = &res->headers[res->n_headers];
	h->name = strdup(name);
	h->value = strdup(value);
	if (h->name && h->value) {
		res->n_headers++;
	} else {
		free(h->name);
		free(h->value);
	}
}

void http_response_stream(struct http_response *res, int status, const char *content_type,
			  http_stream_fn fn, void *ctx, void (*ctx_free)(void *ctx))
{
	http_response_set_body(res, NULL, 0, content_type ? content_type : "text/event-stream");
	res->status = status;
	res->stream = fn;
	res->stream_ctx = ctx;
	res->stream_ctx_free = ctx_free;
}

struct http_waker {
	pthread_mutex_t lock;        /* over stream (and, taken first, wait_lock) */
	atomic_int refs;
	atomic_bool pending;         /* woken while not suspended */
	struct http_stream *stream;  /* NULL: not sent yet, or ended */
};

struct http_waker *http_waker_create(void)
{
	struct http_waker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	atomic_init(&w->refs, 1);
	return w;
}

void http_waker_release(struct http_waker *w)
{
	if (!w || atomic_fetch_sub(&w->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void http_response_stream_waker(struct http_response *res, struct http_waker *w)
{
	if (!w || !res->stream)
		return;
	http_waker_release(res->stream_waker);
	atomic_fetch_add(&w->refs, 1);
	res->stream_waker = w;
}

static void http_response_finish(struct http_response *res)
{
	if (res->stream && res->stream_ctx_free)
		res->stream_ctx_free(res->stream_ctx);
	http_waker_release(res->stream_waker);
	free(res->body);
	free(res->content_type);
	for (size_t i = 0; i < res->n_headers; i++) {
		free(res->headers[i].name);
		free(res->headers[i].value);
	}
	memset(res, 0, sizeof(*res));
}

/* --- routing --------------------------------------------------------------- */

/* Split a path into segments in place; "" segments (from "//" or a trailing
 * slash) are dropped. Returns the count, or -1 if there are too many. */
static int http_split(char *path, char **segs, size_t max)
{
	size_t n = 0;
	char *save = NULL;
	for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (n == max)
			return -1;
		segs[n++] = s;
	}
	return (int)n;
}

int http_server_route_add(struct http_server *srv, const char *method, const char *pattern,
			  http_handler_fn fn, void *ctx, struct nova_err *err)
{
	struct http_route *r;
	int n;
	if (srv->started)
		return nova_err_set(err, NOVA_ECONFLICT, "", "routes must be added before start");
	if (srv->n_routes == HTTP_MAX_ROUTES)
		return nova_err_set(err, NOVA_EINTERNAL, "", "too many routes");
	if (!method || strlen(method) >= sizeof(r->method) || !pattern || pattern[0] != '/')
		return nova_err_set(err, NOVA_EINVAL, "pattern", "bad route %s %s",
				    method ? method : "?", pattern ? pattern : "?");
	r = &srv->routes[srv->n_routes];
	memset(r, 0, sizeof(*r));
	snprintf(r->method, sizeof(r->method), "%s", method);
	r->pattern = strdup(pattern);
	r->copy = strdup(pattern);
	if (!r->pattern || !r->copy) {
		free(r->pattern);
		free(r->copy);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	n = http_split(r->copy, r->segs, HTTP_MAX_SEGMENTS);
	if (n < 0) {
		free(r->pattern);
		free(r->copy);
		return nova_err_set(err, NOVA_EINVAL, "pattern", "route %s has too many segments",
				    pattern);
	}
	r->n_segs = (size_t)n;
	for (size_t i = 0; i < r->n_segs; i++)
		r->n_literals += r->segs[i][0] != '{';
	r->fn = fn;
	r->ctx = ctx;
	srv->n_routes++;
	return 0;
}

static bool http_route_matches(const struct http_route *r, char **segs, size_t n)
{
	if (r->n_segs != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (r->segs[i][0] != '{' && strcmp(r->segs[i], segs[i]) != 0)
			return false;
	return true;
}

/* The best route for the path and method: the most literal segments win.
 * *path_known says whether some route matched the path at all (for 405). */
static const struct http_route *http_route_find(struct http_server *srv, const char *method,
						char **segs, size_t n, bool *path_known, char *allow,
						size_t allow_len)
{
	const struct http_route *best = NULL;
	size_t best_literals = 0, allow_n = 0;
	bool head = strcmp(method, "HEAD") == 0;
	*path_known = false;
	allow[0] = '\0';
	/* The most specific pattern decides which methods the path has. */
	size_t most = 0;
	bool any = false;
	for (size_t i = 0; i < srv->n_routes; i++) {
		if (http_route_matches(&srv->routes[i], segs, n)) {
			if (!any || srv->routes[i].n_literals > most)
				most = srv->routes[i].n_literals;
			any = true;
		}
	}
	for (size_t i = 0; i < srv->n_routes; i++) {
		const struct http_route *r = &srv->routes[i];
		if (!http_route_matches(r, segs, n) || r->n_literals != most)
			continue;
		*path_known = true;
		if (allow_n < allow_len)
			allow_n += (size_t)snprintf(allow + allow_n, allow_len - allow_n, "%s%s",
						    allow_n ? ", " : "", r->method);
		if ((strcmp(r->method, method) == 0 || (head && strcmp(r->method, "GET") == 0)) &&
		    (!best || r->n_literals > best_literals)) {
			best = r;
			best_literals = r->n_literals;
		}
	}
	return best;
}

int http_server_route_quiet(struct http_server *srv, const char *method, const char *pattern)
{
	for (size_t i = 0; i < srv->n_routes; i++)
		if (!strcmp(srv->routes[i].method, method) && !strcmp(srv->routes[i].pattern, pattern)) {
			srv->routes[i].quiet = true;
			return 0;
		}
	return NOVA_ENOTFOUND;
}

static void http_route_stats_write(struct textbuf *t, const char *prefix, const char *method,
				   const char *route, const struct http_route_stats *st)
{
	char name[96], labels[640], esc[512];
	unsigned long long any = 0;
	for (size_t i = 0; i < HTTP_STATUS_SLOTS + 5; i++)
		any += atomic_load_explicit(&st->by_status[i], memory_order_relaxed);
	if (!any)
		return;
	metrics_label_escape(esc, sizeof(esc), route);
	snprintf(name, sizeof(name), "%s_http_requests_total", prefix);
	for (size_t i = 0; i < HTTP_STATUS_SLOTS + 5; i++) {
		unsigned long long n = atomic_load_explicit(&st->by_status[i], memory_order_relaxed);
		if (!n)
			continue;
		if (i < HTTP_STATUS_SLOTS)
			snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",status=\"%d\"", method,
				 esc, http_status_slots[i]);
		else
			snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\",status=\"%zuxx\"",
				 method, esc, i - HTTP_STATUS_SLOTS + 1);
		metrics_sample(t, name, labels, (double)n);
	}
}

void http_server_metrics_write(struct textbuf *t, struct http_server *srv, const char *prefix)
{
	char name[96], labels[640], esc[512];
	snprintf(name, sizeof(name), "%s_http_requests_total", prefix);
	metrics_head(t, name, "counter",
		     "HTTP requests answered, by method, route template and status (route "
		     "\"unrouted\": no route took them).");
	for (size_t i = 0; i < srv->n_routes; i++)
		http_route_stats_write(t, prefix, srv->routes[i].method, srv->routes[i].pattern,
				       &srv->routes[i].stats);
	http_route_stats_write(t, prefix, "any", "unrouted", &srv->unrouted);
	snprintf(name, sizeof(name), "%s_http_request_duration_seconds", prefix);
	metrics_head(t, name, "histogram",
		     "Time from a request's arrival to its answer's start (a stream's first byte), "
		     "by method and route template.");
	for (size_t i = 0; i <= srv->n_routes; i++) {
		const struct http_route_stats *st = i < srv->n_routes ? &srv->routes[i].stats : &srv->unrouted;
		if (!metrics_hist_total(&st->duration))
			continue;
		metrics_label_escape(esc, sizeof(esc), i < srv->n_routes ? srv->routes[i].pattern : "unrouted");
		snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\"",
			 i < srv->n_routes ? srv->routes[i].method : "any", esc);
		metrics_hist_write(t, name, labels, &st->duration);
	}
}

/* --- connection limits and deadlines ------------------------------------- */

/* Why shedding, and one listener. Before this, 2,000 idle sockets (no
 * credential needed) took every one of MHD's ~1,020 connections: /healthz
 * and heartbeats answered 0 of 8 and the fleet was failed within 40 s.
 * A connection cannot be told apart before its request arrives, so room
 * for probes and heartbeats cannot be a count of their own; it is kept by
 * closing, for each newcomer past the soft cap, the oldest connection that
 * has asked nothing. A client that asks at once is then served (its
 * request is in within a millisecond of its accept), and an attacker's
 * idle sockets turn over instead of filling the server. The deadlines
 * bound what a slow sender holds even below the cap.
 * Rejected: a second listener for probes and heartbeats (node_listen):
 * every sidecar, probe and firewall would need the second port, and a
 * flood that reaches one port of novad reaches the other, where it would
 * need the same defence again. Rejected too: MHD's accept policy callback
 * (it sees an address, not a request) and a lower idle timeout (a byte
 * every few seconds resets it). */

/* The reaper's granularity: deadlines are met within this, and a flood of
 * connections with deadlines a microsecond apart wakes it once per tick,
 * not once per connection. */
#define HTTP_REAPER_TICK_MS 100
#define HTTP_LIMIT_LOG_MS 10000

static long long http_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long http_deadline(unsigned timeout_ms, long long now)
{
	return timeout_ms ? now + timeout_ms : LLONG_MAX;
}

static void http_track_unlink(struct http_server *srv, struct http_track *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		srv->track_head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		srv->track_tail = t->prev;
	t->prev = t->next = NULL;
}

static void http_track_append(struct http_server *srv, struct http_track *t)
{
	t->prev = srv->track_tail;
	t->next = NULL;
	if (srv->track_tail)
		srv->track_tail->next = t;
	else
		srv->track_head = t;
	srv->track_tail = t;
}

/* Under track_lock. shutdown, not close: the socket stays MHD's, which
 * sees the end of the stream, closes it and says so (http_notify). */
static void http_track_shed(struct http_server *srv, struct http_track *t)
{
	shutdown(t->fd, SHUT_RDWR);
	t->shed = true;
	srv->n_open--;
}

/* Under track_lock: a new deadline; the reaper is woken when it would
 * sleep past it. */
static void http_track_arm(struct http_server *srv, struct http_track *t, long long deadline)
{
	t->deadline_ms = deadline;
	if (deadline < srv->reaper_wake_ms)
		pthread_cond_signal(&srv->track_cond);
}

/* Whether a request's bytes wait in the socket for MHD to read them. */
static bool http_track_pending(const struct http_track *t)
{
	int n = 0;
	return ioctl(t->fd, FIONREAD, &n) == 0 && n > 0;
}

/* Under track_lock: past the soft cap, close the oldest connection waiting
 * for a request, never the newcomer: first those never served, then those
 * kept alive, in both with nothing sent yet; only then those whose request
 * has arrived but not been read. A client that asks at once is so kept
 * even when the server is too busy to read it before the next newcomers
 * arrive (seen in CI: 302 of 1,000 watchers shed, their requests unread,
 * by an idle flood turning over). */
static void http_track_make_room(struct http_server *srv, const struct http_track *newcomer)
{
	unsigned long soft = srv->cfg.max_connections - srv->cfg.reserved_connections;
	for (int pass = 0; pass < 3 && srv->n_open > soft; pass++) {
		for (struct http_track *t = srv->track_head; t && srv->n_open > soft; t = t->next) {
			if (t == newcomer || t->shed || t->phase != HTTP_PHASE_HEAD ||
			    (pass < 2 && t->served != (pass == 1)) ||
			    (pass < 2 && http_track_pending(t)))
				continue;
			http_track_shed(srv, t);
			srv->n_shed++;
		}
	}
}

static void http_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			enum MHD_ConnectionNotificationCode toe)
{
	struct http_server *srv = cls;
	struct http_track *t = *socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci || !(t = calloc(1, sizeof(*t))))
			return; /* untracked: MHD's own limits still hold */
		t->fd = ci->connect_fd;
		t->phase = HTTP_PHASE_HEAD;
		pthread_mutex_lock(&srv->track_lock);
		http_track_append(srv, t);
		srv->n_open++;
		http_track_arm(srv, t, http_deadline(srv->cfg.header_timeout_ms, http_now_ms()));
		if (srv->cfg.reserved_connections)
			http_track_make_room(srv, t);
		pthread_mutex_unlock(&srv->track_lock);
		*socket_context = t;
		return;
	}
	if (!t)
		return;
	pthread_mutex_lock(&srv->track_lock);
	http_track_unlink(srv, t);
	if (!t->shed)
		srv->n_open--;
	pthread_mutex_unlock(&srv->track_lock);
	free(t);
	*socket_context = NULL;
}

/* A request's connection moves to phase: body (headers in), busy (handler
 * called), head (answered, kept alive: moved to the back, the youngest). */
static void http_track_phase(struct http_server *srv, struct MHD_Connection *conn,
			     enum http_phase phase)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct http_track *t = ci ? ci->socket_context : NULL;
	if (!t)
		return;
	pthread_mutex_lock(&srv->track_lock);
	t->phase = phase;
	if (phase == HTTP_PHASE_BODY) {
		http_track_arm(srv, t, http_deadline(srv->cfg.body_timeout_ms, http_now_ms()));
	} else if (phase == HTTP_PHASE_HEAD) {
		t->served = true;
		http_track_unlink(srv, t);
		http_track_append(srv, t);
		http_track_arm(srv, t, http_deadline(srv->cfg.header_timeout_ms, http_now_ms()));
	}
	pthread_mutex_unlock(&srv->track_lock);
}

static void *http_reaper_main(void *arg)
{
	struct http_server *srv = arg;
	pthread_mutex_lock(&srv->track_lock);
	while (!srv->reaper_stop) {
		long long now = http_now_ms(), next = LLONG_MAX;
		for (struct http_track *t = srv->track_head; t; t = t->next) {
			if (t->shed || t->phase == HTTP_PHASE_BUSY)
				continue;
			if (t->deadline_ms <= now) {
				http_track_shed(srv, t);
				srv->n_timed_out++;
			} else if (t->deadline_ms < next) {
				next = t->deadline_ms;
			}
		}
		if (next == LLONG_MAX) {
			srv->reaper_wake_ms = LLONG_MAX;
			pthread_cond_wait(&srv->track_cond, &srv->track_lock);
			continue;
		}
		if (next < now + HTTP_REAPER_TICK_MS)
			next = now + HTTP_REAPER_TICK_MS;
		srv->reaper_wake_ms = next;
		struct timespec until = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000L};
		pthread_cond_timedwait(&srv->track_cond, &srv->track_lock, &until);
	}
	pthread_mutex_unlock(&srv->track_lock);
	return NULL;
}

void http_server_stats(struct http_server_stats *out, struct http_server *srv)
{
	memset(out, 0, sizeof(*out));
	if (!srv)
		return;
	pthread_mutex_lock(&srv->track_lock);
	out->open = srv->n_open;
	out->timed_out = srv->n_timed_out;
	out->shed = srv->n_shed;
	pthread_mutex_unlock(&srv->track_lock);
}

/* --- the MHD side ------------------------------------------------------ */

static void http_remote(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	buf[0] = '\0';
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr,
			  buf, (socklen_t)len);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr, buf,
			  (socklen_t)len);
}

struct http_stream {
	http_stream_fn fn;
	void *ctx;
	void (*ctx_free)(void *ctx);
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct http_stream *next_waiting;
	bool is_waiting;
	bool resumed;                /* woken since its last wait */
	int fd;                      /* the connection's socket; -1 unknown */
	struct http_waker *waker;    /* NULL: woken only with the others */
};

static ssize_t http_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_stream *st = cls;
	struct http_server *srv = st->srv;
	long n;
	(void)pos;
	if (atomic_load(&srv->stopping))
		return MHD_CONTENT_READER_END_OF_STREAM;
	/* A client that left while its stream waited is found on the wake,
	 * not at the next write (up to a keep-alive period later), so what
	 * its stream holds (a place under a watcher cap) comes back at once. */
	if (st->resumed && st->fd >= 0) {
		char b;
		ssize_t r = recv(st->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		st->resumed = false;
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
again:
	n = st->fn(st->ctx, buf, max);
	if (n == HTTP_STREAM_WAIT) {
		/* MHD allows suspending from a content reader; returning 0 after
		 * it does not spin: the connection leaves the event loop. */
		pthread_mutex_lock(&srv->wait_lock);
		if (atomic_load(&srv->stopping)) {
			pthread_mutex_unlock(&srv->wait_lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		/* Its waker was called since fn looked: look again. */
		if (st->waker && atomic_exchange(&st->waker->pending, false)) {
			pthread_mutex_unlock(&srv->wait_lock);
			goto again;
		}
		MHD_suspend_connection(st->conn);
		st->is_waiting = true;
		st->next_waiting = srv->waiting;
		srv->waiting = st;
		pthread_mutex_unlock(&srv->wait_lock);
		return 0;
	}
	if (n == HTTP_STREAM_END)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)n;
}

void http_server_streams_wake(struct http_server *srv)
{
	if (!srv)
		return;
	pthread_mutex_lock(&srv->wait_lock);
	for (struct http_stream *st = srv->waiting, *next; st; st = next) {
		next = st->next_waiting;
		st->is_waiting = false;
		st->resumed = true;
		st->next_waiting = NULL;
		MHD_resume_connection(st->conn);
	}
	srv->waiting = NULL;
	pthread_mutex_unlock(&srv->wait_lock);
}

void http_waker_wake(struct http_waker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	struct http_stream *st = w->stream;
	if (st) {
		struct http_server *srv = st->srv;
		atomic_store(&w->pending, true);
		pthread_mutex_lock(&srv->wait_lock);
		if (st->is_waiting) {
			for (struct http_stream **pp = &srv->waiting; *pp; pp = &(*pp)->next_waiting)
				if (*pp == st) {
					*pp = st->next_waiting;
					break;
				}
			st->is_waiting = false;
			st->resumed = true;
			st->next_waiting = NULL;
			atomic_store(&w->pending, false);
			MHD_resume_connection(st->conn);
		}
		pthread_mutex_unlock(&srv->wait_lock);
	}
	pthread_mutex_unlock(&w->lock);
}

static void http_stream_free(void *cls)
{
	struct http_stream *st = cls;
	if (st->waker) {
		pthread_mutex_lock(&st->waker->lock);
		st->waker->stream = NULL;
		pthread_mutex_unlock(&st->waker->lock);
		http_waker_release(st->waker);
	}
	if (st->ctx_free)
		st->ctx_free(st->ctx);
	free(st);
}

/* The client's X-Request-Id when it is 1 to HTTP_REQUEST_ID_MAX of
 * [A-Za-z0-9._:-] (so it can go into a log line or a header as it is),
 * else 32 fresh hex digits. Rejected: always generating, which would cut
 * the thread a proxy or a client started. */
static void http_request_id_set(struct http_conn_ctx *c)
{
	const char *v = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "X-Request-Id");
	size_t n = v ? strlen(v) : 0;
	bool ok = n > 0 && n <= HTTP_REQUEST_ID_MAX;
	for (size_t i = 0; ok && i < n; i++) {
		char ch = v[i];
		ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		     ch == '.' || ch == '_' || ch == ':' || ch == '-';
	}
	if (ok) {
		memcpy(c->request_id, v, n + 1);
		return;
	}
	unsigned char raw[16];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		/* Not a secret: a clock and a counter are unique enough. */
		static atomic_ulong seq;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		unsigned long long a = (unsigned long long)ts.tv_sec * 1000000000ull +
				       (unsigned long long)ts.tv_nsec;
		unsigned long long b = atomic_fetch_add(&seq, 1);
		memcpy(raw, &a, 8);
		memcpy(raw + 8, &b, 8);
	}
	hex_encode(c->request_id, raw, sizeof(raw));
}

static void http_route_stats_add(struct http_route_stats *st, int status, double seconds)
{
	size_t slot = HTTP_STATUS_SLOTS + 4; /* 5xx */
	for (size_t i = 0; i < HTTP_STATUS_SLOTS; i++)
		if (http_status_slots[i] == status) {
			slot = i;
			goto found;
		}
	if (status >= 100 && status < 600)
		slot = HTTP_STATUS_SLOTS + (size_t)(status / 100 - 1);
found:
	atomic_fetch_add_explicit(&st->by_status[slot], 1, memory_order_relaxed);
	metrics_hist_observe(&st->duration, seconds);
}

static enum MHD_Result http_send(struct http_conn_ctx *c, const char *method, const char *path,
				 struct http_response *res)
{
	struct MHD_Response *mr;
	enum MHD_Result ok;
	struct timespec now;
	char status[8], ms[32], bytes[24], remote[64];
	if (res->status == 0)
		res->status = 200;
	if (res->stream) {
		struct http_stream *st = malloc(sizeof(*st));
		if (st) {
			memset(st, 0, sizeof(*st));
			st->srv = c->srv;
			st->conn = c->conn;
			st->fn = res->stream;
			st->ctx = res->stream_ctx;
			st->ctx_free = res->stream_ctx_free;
			const union MHD_ConnectionInfo *ci =
				MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
			st->fd = ci ? ci->connect_fd : -1;
		}
		mr = st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, http_stream_read,
							     st, http_stream_free)
			: NULL;
		if (!mr) {
			free(st);
		} else {
			res->stream = NULL; /* st owns the context now */
			if ((st->waker = res->stream_waker)) {
				res->stream_waker = NULL;
				pthread_mutex_lock(&st->waker->lock);
				st->waker->stream = st;
				pthread_mutex_unlock(&st->waker->lock);
			}
		}
	} else {
		mr = MHD_create_response_from_buffer(res->body_len, res->body, MHD_RESPMEM_MUST_FREE);
		if (mr)
			res->body = NULL; /* owned by MHD now */
	}
	if (!mr) {
		http_response_finish(res);
		return MHD_NO;
	}
	if (res->content_type && (res->body_len || !res->body))
		MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
	for (size_t i = 0; i < res->n_headers; i++)
		MHD_add_response_header(mr, res->headers[i].name, res->headers[i].value);
	MHD_add_response_header(mr, "X-Request-Id", c->request_id);
	ok = MHD_queue_response(c->conn, (unsigned)res->status, mr);
	MHD_destroy_response(mr);
	c->answered = true;

	clock_gettime(CLOCK_MONOTONIC, &now);
	double elapsed = (double)(now.tv_sec - c->start.tv_sec) * 1e3 +
			 (double)(now.tv_nsec - c->start.tv_nsec) / 1e6;
	http_route_stats_add(c->route ? &((struct http_route *)c->route)->stats : &c->srv->unrouted,
			     res->status, elapsed / 1e3);
	/* The access log line, only when it will be written: formatting it
	 * costs more than a heartbeat's own work. */
	enum nova_log_level level = c->route && c->route->quiet ? NOVA_LOG_DEBUG : NOVA_LOG_INFO;
	if (nova_log_get_level() <= level) {
		snprintf(status, sizeof(status), "%d", res->status);
		snprintf(ms, sizeof(ms), "%.3f", elapsed);
		snprintf(bytes, sizeof(bytes), "%zu", res->body_len);
		http_remote(c->conn, remote, sizeof(remote));
		/* Never headers, query strings or bodies: they carry credentials. */
		nova_log_kv(level, "http", "request", "method", method, "path", path,
			    "status", status, "duration_ms", ms, "bytes", bytes, "remote", remote,
			    "request_id", c->request_id, NULL);
	}
	http_response_finish(res);
	return ok;
}

static enum MHD_Result http_dispatch(struct http_conn_ctx *c, const char *method, const char *url)
{
	struct http_server *srv = c->srv;
	struct http_response res = {.request_id = c->request_id};
	char *segs[HTTP_MAX_SEGMENTS], allow[128];
	bool path_known;
	int n;
	if (c->too_big) {
		http_response_errorf(&res, NOVA_ETOOBIG, "", "request body exceeds %zu bytes",
				     srv->cfg.max_body);
		http_response_header_add(&res, "Connection", "close");
		return http_send(c, method, url, &res);
	}
	c->path_copy = strdup(url);
	if (!c->path_copy)
		return MHD_NO;
	http_track_phase(srv, c->conn, HTTP_PHASE_BUSY);
	n = http_split(c->path_copy, segs, HTTP_MAX_SEGMENTS);
	for (int i = 0; i < n; i++) {
		if (!http_pct_decode(segs[i])) {
			http_response_errorf(&res, NOVA_EINVAL, "path",
					     "a path segment must not contain %%00");
			return http_send(c, method, url, &res);
		}
	}
	const struct http_route *r =
		n < 0 ? NULL : http_route_find(srv, method, segs, (size_t)n, &path_known, allow, sizeof(allow));
	if (!r) {
		if (n >= 0 && path_known) {
			http_response_errorf(&res, NOVA_ENOMETHOD, "", "method %s is not allowed on %s",
					     method, url);
			http_response_header_add(&res, "Allow", allow);
		} else {
			http_response_errorf(&res, NOVA_ENOTFOUND, "", "no route for %s", url);
		}
		return http_send(c, method, url, &res);
	}
	for (size_t i = 0; i < r->n_segs && c->n_params < HTTP_MAX_PARAMS; i++) {
		if (r->segs[i][0] != '{')
			continue;
		c->param_names[c->n_params] = strndup(r->segs[i] + 1, strlen(r->segs[i]) - 2);
		c->param_values[c->n_params] = segs[i];
		if (!c->param_names[c->n_params])
			return MHD_NO;
		c->n_params++;
	}
	struct http_request req = {
		.method = method, .path = url, .body = c->body, .body_len = c->body_len,
		.route = r->pattern, .request_id = c->request_id, .priv = c,
	};
	res.status = 200;
	c->route = r;
	nova_log_request_set(c->request_id);
	r->fn(&req, &res, r->ctx);
	nova_log_request_set(NULL); /* the access line names it itself */
	return http_send(c, method, url, &res);
}

/* Framing headers as a request carries them: MHD looks at the first of
 * each only, so a second one must be seen here. */
struct http_framing {
	unsigned n_te, n_cl, n_host;
	const char *te;
	const char *cl;
	bool cl_differs;
};

static enum MHD_Result http_framing_add(void *cls, enum MHD_ValueKind kind, const char *key,
					const char *value)
{
	struct http_framing *f = cls;
	(void)kind;
	if (!value)
		value = "";
	if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
		f->n_te++;
		f->te = value;
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
		if (f->cl && strcmp(f->cl, value) != 0)
			f->cl_differs = true;
		f->n_cl++;
		f->cl = value;
	} else if (!strcasecmp(key, MHD_HTTP_HEADER_HOST)) {
		f->n_host++;
	}
	return MHD_YES;
}

/* Requests that two HTTP parsers could frame differently, refused before
 * their body is read (RFC 9112 3.2, 6.1, 6.3): Transfer-Encoding with
 * Content-Length (a proxy trusting the length and this server reading the
 * chunks disagree on where the request ends: request smuggling), a
 * transfer coding other than chunked alone (MHD 0.9.75 then reads the body
 * to the end of the connection and never answers), Content-Length twice
 * with different values, and HTTP/1.1 without exactly one Host. The field
 * named is the header at fault. Rejected: MHD_OPTION_STRICT_FOR_CLIENT,
 * which covers Host only and answers with an HTML page. */
static const char *http_framing_refusal(char *msg, size_t len, struct MHD_Connection *conn,
					const char *version)
{
	struct http_framing f = {0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, http_framing_add, &f);
	if (f.n_te && f.n_cl) {
		snprintf(msg, len, "a request must not carry both Transfer-Encoding and "
				   "Content-Length");
		return MHD_HTTP_HEADER_TRANSFER_ENCODING;
	}
	if (f.n_te > 1 || (f.n_te && strcasecmp(f.te, "chunked") != 0)) {
		snprintf(msg, len, "unsupported transfer coding: only a single \"chunked\" is "
				   "accepted");
		return MHD_HTTP_HEADER_TRANSFER_ENCODING;
	}
	if (f.cl_differs) {
		snprintf(msg, len, "Content-Length is given twice with different values");
		return MHD_HTTP_HEADER_CONTENT_LENGTH;
	}
	if (version && !strcmp(version, MHD_HTTP_VERSION_1_1) && f.n_host != 1) {
		snprintf(msg, len, f.n_host ? "a request must carry one Host header, not %u"
					    : "an HTTP/1.1 request must carry a Host header",
			 f.n_host);
		return MHD_HTTP_HEADER_HOST;
	}
	return NULL;
}

static enum MHD_Result http_access(void *cls, struct MHD_Connection *conn, const char *url,
				   const char *method, const char *version, const char *upload_data,
				   size_t *upload_data_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_conn_ctx *c = *con_cls;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		c->srv = srv;
		c->conn = conn;
		clock_gettime(CLOCK_MONOTONIC, &c->start);
		http_request_id_set(c);
		atomic_fetch_add(&srv->in_flight, 1);
		*con_cls = c;
		http_track_phase(srv, conn, HTTP_PHASE_BODY);
		char why[160];
		const char *field = http_framing_refusal(why, sizeof(why), conn, version);
		if (field) {
			/* Answered before any body byte is read: MHD then
			 * discards the rest and closes the connection, so
			 * nothing after this request runs as another. */
			struct http_response res = {.request_id = c->request_id};
			http_response_errorf(&res, NOVA_EINVAL, field, "%s", why);
			http_response_header_add(&res, "Connection", "close");
			return http_send(c, method, url, &res);
		}
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > srv->cfg.max_body) {
			/* Answer before reading the body: MHD then closes the
			 * connection instead of taking the upload. */
			c->too_big = true;
			return http_dispatch(c, method, url);
		}
		return MHD_YES;
	}
	if (c->answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (c->too_big || c->body_len + n > srv->cfg.max_body) {
			/* Chunked past the cap: keep nothing, answer at the end
			 * (MHD 0.9.75 refuses MHD_queue_response while a body is
			 * still arriving). Reading on costs bandwidth, not memory;
			 * it is bounded all the same: past another max_body the
			 * connection is cut, and that client sees a reset, not
			 * the 413. */
			c->discarded += c->too_big ? n : c->body_len + n - srv->cfg.max_body;
			c->too_big = true;
			free(c->body);
			c->body = NULL;
			c->body_len = c->body_cap = 0;
			return c->discarded > srv->cfg.max_body ? MHD_NO : MHD_YES;
		}
		if (c->body_len + n + 1 > c->body_cap) {
			size_t cap = c->body_cap ? c->body_cap : 4096;
			while (cap < c->body_len + n + 1)
				cap *= 2;
			char *b = realloc(c->body, cap);
			if (!b)
				return MHD_NO;
			c->body = b;
			c->body_cap = cap;
		}
		memcpy(c->body + c->body_len, upload_data, n);
		c->body_len += n;
		c->body[c->body_len] = '\0';
		return MHD_YES;
	}
	return http_dispatch(c, method, url);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			   enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct http_conn_ctx *c = *con_cls;
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK)
		http_track_phase(srv, conn, HTTP_PHASE_HEAD);
	if (!c)
		return;
	for (size_t i = 0; i < c->n_params; i++)
		free(c->param_names[i]);
	while (c->owned) {
		struct http_owned *next = c->owned->next;
		free(c->owned);
		c->owned = next;
	}
	free(c->path_copy);
	free(c->body);
	free(c);
	*con_cls = NULL;
	atomic_fetch_sub(&srv->in_flight, 1);
}

/* MHD's printf format (clang's -Wformat-nonliteral wants it said). */
__attribute__((format(printf, 2, 0))) static void http_mhd_log(void *cls, const char *fmt,
								 va_list ap)
{
	struct http_server *srv = cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	/* Under a flood MHD says this for every connection it refuses (at a
	 * cap): once per HTTP_LIMIT_LOG_MS here, with the count, so the log
	 * does not become the flood's amplifier. */
	if (!strncmp(msg, "Server reached connection limit", 31)) {
		long long now = http_now_ms(), last = atomic_load(&srv->limit_logged_ms);
		unsigned long n = atomic_fetch_add(&srv->limit_refused, 1) + 1;
		if (now - last < HTTP_LIMIT_LOG_MS ||
		    !atomic_compare_exchange_strong(&srv->limit_logged_ms, &last, now))
			return;
		atomic_fetch_sub(&srv->limit_refused, n);
		nova_log(NOVA_LOG_WARN, "http", "connections refused at a connection limit (total or "
			 "per address): %lu since the last report", n);
		return;
	}
	nova_log(NOVA_LOG_WARN, "http", "%s", msg);
}

/* --- lifecycle -------------------------------------------------------------- */

/* "HOST:PORT", "[V6]:PORT". */
static int http_parse_listen(struct sockaddr_storage *ss, socklen_t *len, const char *listen,
			     struct nova_err *err)
{
	char host[256];
	const char *port;
	struct addrinfo hints = {0}, *ai = NULL;
	if (!listen || !*listen)
		goto bad;
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');
		if (!end || end[1] != ':')
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(end - listen - 1), listen + 1);
		port = end + 2;
	} else {
		const char *colon = strrchr(listen, ':');
		if (!colon || strchr(listen, ':') != colon)
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
		port = colon + 1;
	}
	char *end;
	long p = strtol(port, &end, 10);
	if (!*port || *end || p < 0 || p > 65535 || !*host)
		goto bad;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai) {
		return nova_err_set(err, NOVA_EINVAL, "listen", "listen address %s: unknown host %s",
				    listen, host);
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
bad:
	nova_err_set(err, NOVA_EINVAL, "listen", "listen address \"%s\" is not HOST:PORT",
		     listen ? listen : "");
	nova_err_set_hint(err, "for example 127.0.0.1:8420 or [::1]:8420");
	return NOVA_EINVAL;
}

int http_listen_check(const char *listen, struct nova_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	return http_parse_listen(&ss, &len, listen, err);
}

int http_server_create(struct http_server **out, const struct http_server_config *cfg,
		       struct nova_err *err)
{
	struct http_server *srv;
	struct sockaddr_storage ss;
	socklen_t len;
	int rc;
	*out = NULL;
	if ((rc = http_parse_listen(&ss, &len, cfg->listen, err)))
		return rc;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	srv->cfg = *cfg;
	snprintf(srv->listen, sizeof(srv->listen), "%s", cfg->listen);
	srv->cfg.listen = srv->listen;
	if (!srv->cfg.threads)
		srv->cfg.threads = 4;
	if (!srv->cfg.max_body)
		srv->cfg.max_body = 1024 * 1024;
	if (!srv->cfg.connection_timeout_s)
		srv->cfg.connection_timeout_s = 60;
	srv->listen_fd = -1;
	atomic_init(&srv->in_flight, 0);
	atomic_init(&srv->stopping, false);
	if (!srv->cfg.stop_timeout_ms)
		srv->cfg.stop_timeout_ms = HTTP_DRAIN_TIMEOUT_MS;
	pthread_mutex_init(&srv->wait_lock, NULL);
	pthread_mutex_init(&srv->stop_lock, NULL);
	pthread_cond_init(&srv->stop_cond, NULL);
	pthread_mutex_init(&srv->track_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->track_cond, &ca);
	pthread_condattr_destroy(&ca);
	srv->reaper_wake_ms = LLONG_MAX;
	atomic_init(&srv->limit_logged_ms, LLONG_MIN / 2);
	atomic_init(&srv->limit_refused, 0);
	if (srv->cfg.reserved_connections >= srv->cfg.max_connections)
		srv->cfg.reserved_connections = 0; /* nothing to reserve from */
	*out = srv;
	return 0;
}

int http_server_start(struct http_server *srv, struct nova_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd, rc;
	if (srv->started)
		return nova_err_set(err, NOVA_ECONFLICT, "", "server already started");
	if ((rc = http_parse_listen(&ss, &len, srv->listen, err)))
		return rc;
	/* Bind ourselves so a failure says why (MHD would only say "failed"). */
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return nova_err_set(err, NOVA_EUNAVAIL, "listen", "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0) {
		rc = nova_err_set(err, NOVA_EUNAVAIL, "listen", "cannot listen on %s: %s", srv->listen,
				  strerror(errno));
		close(fd);
		return rc;
	}
	len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						   : ((struct sockaddr_in *)&ss)->sin_port);
	unsigned flags = MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	flags |= srv->cfg.thread_per_connection
			 ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD
			 : MHD_USE_EPOLL_INTERNAL_THREAD;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger first, so MHD's own messages all go through it; the pool
	 * size only when there is a pool (MHD warns about a zero), the total
	 * cap only when one is set (0 is not "MHD's default" to MHD). */
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)http_mhd_log, srv},
		{MHD_OPTION_LISTEN_SOCKET, fd, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)srv->cfg.connection_timeout_s, NULL},
		{MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)HTTP_CONNECTION_MEMORY, NULL},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http_completed, srv},
		{MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http_notify, srv},
		{MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)srv->cfg.max_connections_per_ip, NULL},
		{MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)http_unescape_none, NULL},
		{MHD_OPTION_END, 0, NULL}, /* the connection cap, when set */
		{MHD_OPTION_END, 0, NULL}, /* the pool size, when there is a pool */
		{MHD_OPTION_END, 0, NULL},
	};
	size_t n_opts = sizeof(opts) / sizeof(opts[0]) - 3;
	/* With shedding, max_connections is kept by closing the oldest idle
	 * connection for each newcomer past the soft cap; a shed one is MHD's
	 * until its event loop sees the end of the stream, and under a flood
	 * hundreds can be on their way out. MHD's own cap, which refuses the
	 * newest (a probe, a heartbeat) rather than the oldest, stands above
	 * by that headroom, a quarter more (64 at least): it is reached only
	 * when shedding cannot keep up. Seen before: 10 of 1,000 watchers
	 * closed unanswered by MHD at the cap while the flood turned over. */
	if (srv->cfg.max_connections) {
		unsigned hard = srv->cfg.max_connections;
		if (srv->cfg.reserved_connections)
			hard += hard / 4 > 64 ? hard / 4 : 64;
		opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, (intptr_t)hard,
							 NULL};
	}
	if (!srv->cfg.thread_per_connection)
		opts[n_opts++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
							 (intptr_t)srv->cfg.threads, NULL};
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, http_access, srv, MHD_OPTION_ARRAY, opts,
				       MHD_OPTION_END);
	if (!srv->daemon) {
		close(fd);
		return nova_err_set(err, NOVA_EUNAVAIL, "listen", "cannot start the http server on %s",
				    srv->listen);
	}
	srv->listen_fd = fd;
	srv->started = true;
	if ((srv->cfg.header_timeout_ms || srv->cfg.body_timeout_ms) &&
	    pthread_create(&srv->reaper, NULL, http_reaper_main, srv) == 0)
		srv->reaper_started = true;
	else if (srv->cfg.header_timeout_ms || srv->cfg.body_timeout_ms)
		nova_log(NOVA_LOG_ERROR, "http", "no thread for connection deadlines: only idle "
			 "connections time out");
	return 0;
}

static void http_reaper_stop(struct http_server *srv)
{
	if (!srv->reaper_started)
		return;
	pthread_mutex_lock(&srv->track_lock);
	srv->reaper_stop = true;
	pthread_cond_signal(&srv->track_cond);
	pthread_mutex_unlock(&srv->track_lock);
	pthread_join(srv->reaper, NULL);
	srv->reaper_started = false;
}

uint16_t http_server_port(const struct http_server *srv)
{
	return srv ? srv->port : 0;
}

static void *http_stopper_main(void *arg)
{
	struct http_server *srv = arg;
	MHD_stop_daemon(srv->daemon);
	pthread_mutex_lock(&srv->stop_lock);
	srv->stop_done = true;
	pthread_cond_broadcast(&srv->stop_cond);
	pthread_mutex_unlock(&srv->stop_lock);
	return NULL;
}

/* Wait up to ms for the stopper; join it when it is done. */
static bool http_stopper_wait(struct http_server *srv, unsigned ms)
{
	struct timespec until;
	bool done;
	notify_deadline(&until, CLOCK_REALTIME, ms);
	pthread_mutex_lock(&srv->stop_lock);
	while (!srv->stop_done &&
	       pthread_cond_timedwait(&srv->stop_cond, &srv->stop_lock, &until) == 0)
		;
	done = srv->stop_done;
	pthread_mutex_unlock(&srv->stop_lock);
	if (done && !srv->stopper_joined) {
		pthread_join(srv->stopper, NULL);
		srv->stopper_joined = true;
		srv->daemon = NULL;
	}
	return done;
}

/* Bounded whatever a handler does: the drain waits up to stop_timeout_ms,
 * then MHD_stop_daemon (which joins every MHD thread, so it waits for a
 * handler blocked in a read for good) gets HTTP_STOP_JOIN_MS on a thread
 * of its own; past that, stop logs and returns, and the stuck threads are
 * left to the process's exit. Rejected: pthread_cancel of MHD's threads
 * (MHD holds locks and is not cancellation-safe) and closing the stuck
 * connections' sockets (a handler blocked in a file read does not notice). */
void http_server_stop(struct http_server *srv)
{
	if (!srv || !srv->started || srv->stopped)
		return;
	srv->stopped = true;
	/* Stop accepting, let requests in progress finish, then stop. */
	MHD_socket lfd = MHD_quiesce_daemon(srv->daemon);
	/* Stop listening now: while draining, a new client must be refused (a
	 * proxy retries elsewhere), not accepted by the kernel and then reset.
	 * shutdown() takes a Linux socket out of LISTEN (connects are refused)
	 * and leaves the descriptor open; it is closed after MHD_stop_daemon.
	 * Rejected: close() here, which raced libmicrohttpd 0.9.75's own thread
	 * taking the quiesced socket out of its epoll set (its epoll_ctl then
	 * got EBADF and it aborted the process: "Failed to remove listen FD
	 * from epoll set", seen once in CI). */
	if (lfd != MHD_INVALID_SOCKET) {
		shutdown(lfd, SHUT_RDWR);
		srv->listen_fd = lfd;
	}
	/* Streams never end on their own: tell them, and wake the waiting
	 * ones (MHD must not be stopped with suspended connections). */
	atomic_store(&srv->stopping, true);
	http_server_streams_wake(srv);
	for (unsigned waited = 0;
	     atomic_load(&srv->in_flight) > 0 && waited < srv->cfg.stop_timeout_ms; waited += 10) {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (pthread_create(&srv->stopper, NULL, http_stopper_main, srv) != 0) {
		MHD_stop_daemon(srv->daemon); /* no thread to spare: unbounded, as before */
		srv->daemon = NULL;
	} else {
		srv->stopper_started = true;
		if (!http_stopper_wait(srv, HTTP_STOP_JOIN_MS)) {
			char n[16];
			srv->stop_stuck = true;
			snprintf(n, sizeof(n), "%d", atomic_load(&srv->in_flight));
			nova_log_kv(NOVA_LOG_ERROR, "http",
				    "requests still running past the stop deadline; leaving them",
				    "requests", n, "listen", srv->listen, NULL);
		}
	}
	if (!srv->stop_stuck)
		http_reaper_stop(srv);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	srv->listen_fd = -1;
}

void http_server_destroy(struct http_server *srv)
{
	if (!srv)
		return;
	http_server_stop(srv);
	if (srv->stop_stuck && !http_stopper_wait(srv, HTTP_STOP_JOIN_MS))
		return; /* a thread may still use srv and its routes: leave them */
	http_reaper_stop(srv);
	for (size_t i = 0; i < srv->n_routes; i++) {
		free(srv->routes[i].pattern);
		free(srv->routes[i].copy);
	}
	pthread_mutex_destroy(&srv->wait_lock);
	pthread_mutex_destroy(&srv->stop_lock);
	pthread_cond_destroy(&srv->stop_cond);
	pthread_mutex_destroy(&srv->track_lock);
	pthread_cond_destroy(&srv->track_cond);
	free(srv);
}
