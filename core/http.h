/* HTTP server wrapper over libmicrohttpd.
 *
 * The gateway registers routes (method + path pattern with {name} segments)
 * and gets a parsed request and a response to fill; it never sees MHD types.
 * The server runs MHD's internal thread pool over epoll, caps request bodies
 * (413 with the standard error body), answers 404/405 for unknown paths and
 * methods, refuses requests whose framing is ambiguous (Transfer-Encoding
 * with Content-Length, a transfer coding other than chunked alone, two
 * different Content-Lengths, HTTP/1.1 without exactly one Host: 400 naming
 * the header as the field, and the connection closed before any of the
 * body is read), gives every request an id (X-Request-Id, kept from the client
 * when well formed), writes one access-log line per request (never headers
 * or bodies: they carry tokens), and stops gracefully: http_server_stop() quiesces the
 * listener and waits for in-flight handlers, for a bounded time. */
#ifndef NOVA_CORE_HTTP_H
#define NOVA_CORE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define HTTP_MAX_PARAMS 8
#define HTTP_MAX_RESPONSE_HEADERS 8
#define HTTP_REQUEST_ID_MAX 64
#define HTTP_OWNER_MAX 40

struct http_server;

struct http_request {
	const char *method;      /* "GET", "POST", ... */
	const char *path;        /* without the query string */
	const char *body;        /* NUL-terminated copy; NULL when empty */
	size_t body_len;
	const char *route;       /* the matched pattern, e.g. "/v1/pools/{id}" */
	/* This request's id: the client's X-Request-Id when well formed (1 to
	 * HTTP_REQUEST_ID_MAX of [A-Za-z0-9._:-]), else 32 fresh hex digits.
	 * The answer carries it as X-Request-Id, the access log line as
	 * request_id. */
	const char *request_id;
	void *priv;              /* server internals; do not touch */
};

struct http_response_header {
	char *name;
	char *value;
};

/* A streamed body: called again and again from the connection's thread to
 * write up to max bytes into buf; returns the count written, or
 * HTTP_STREAM_END when the body is complete, HTTP_STREAM_ERROR to cut the
 * connection. It may block (sleep between tokens, say) only on a server
 * created with thread_per_connection: on the shared thread pool a blocked
 * reader stalls every connection of its thread. */
#define HTTP_STREAM_END (-1L)
#define HTTP_STREAM_ERROR (-2L)
/* Nothing to send now: the connection is suspended (it costs no thread and
 * no polling) until http_server_streams_wake(), which calls fn again. For
 * event streams (Server-Sent Events) on the shared thread pool. A client
 * that hung up while its stream waited is found at the wake: the stream
 * ends (ctx_free runs) without fn being called. */
#define HTTP_STREAM_WAIT (-3L)
typedef long (*http_stream_fn)(void *ctx, char *buf, size_t max);

/* A waker resumes one stream rather than all of them: for a stream fed by
 * a thread of its own (a proxied log), whose news concern it alone, so
 * that a line for one reader does not resume every route watcher too.
 * Rejected: http_server_streams_wake for each line (each wake runs every
 * waiting stream's fn), and a wake by ctx pointer (a wake that comes while
 * the stream is between its fn's HTTP_STREAM_WAIT and its suspension was
 * lost, and a ctx outliving its stream could not be told from a new one).
 * A wake that comes while the stream is not suspended is kept and makes its
 * next HTTP_STREAM_WAIT call fn again at once, so none is lost. Reference
 * counted: the creator holds one, the response another; using it after the
 * stream ended (or was never sent) does nothing. */
struct http_waker;
struct http_waker *http_waker_create(void); /* NULL when out of memory */
void http_waker_wake(struct http_waker *w);
void http_waker_release(struct http_waker *w); /* accepts NULL */

struct http_response {
	int status;                 /* default 200 */
	char *content_type;         /* default "application/json" */
	char *body;                 /* malloc'd, owned by the response */
	size_t body_len;
	http_stream_fn stream;      /* set by http_response_stream */
	void *stream_ctx;
	void (*stream_ctx_free)(void *ctx);
	struct http_waker *stream_waker; /* http_response_stream_waker */
	struct http_response_header headers[HTTP_MAX_RESPONSE_HEADERS];
	size_t n_headers;
	/* The request's id (set by the server before the handler runs):
	 * http_response_error puts it in the error body as "request_id", so a
	 * user's report of an error names the log lines of its request. */
	const char *request_id;
};

typedef void (*http_handler_fn)(struct http_request *req, struct http_response *res, void *ctx);

struct http_server_config {
	const char *listen;        /* "HOST:PORT"; port 0 picks a free port */
	unsigned threads;          /* thread pool size; 0 means 4 */
	size_t max_body;           /* bytes; 0 means 1 MiB */
	unsigned connection_timeout_s; /* a connection silent this long is
					* closed (kept alive, or a reader too
					* slow for its answer); 0 means 60 */
	/* Connection limits (see "Connections under a flood" below); 0 means
	 * no limit of the wrapper's own, libmicrohttpd's default total cap
	 * (about 1,020) and no per-address cap. */
	unsigned max_connections;        /* open connections in total */
	unsigned max_connections_per_ip; /* open connections per client address */
	unsigned reserved_connections;   /* of max_connections (when set), kept for newcomers */
	unsigned header_timeout_ms;      /* a request's headers must be in by then */
	unsigned body_timeout_ms;        /* and its body this long after them */
	/* How long http_server_stop waits for requests in flight; 0 means
	 * 10000. Stop returns within this plus 1 s whatever a handler does. */
	unsigned stop_timeout_ms;
	bool thread_per_connection;    /* a thread per connection instead of the
					* epoll pool: for servers whose streams
					* block (nova-mock-engine), not novad */
};

/* Connections under a flood. libmicrohttpd's own timeout is idle-only: a
 * client that sends a byte every few seconds (or nothing, on a thousand
 * sockets) holds its connection for ever, and at the total cap nobody
 * else, probes and heartbeats included, gets in. So the wrapper tracks
 * every connection in a phase:
 *   head  accepted, or answered and kept alive, waiting for the next
 *         request: its headers must be complete within header_timeout_ms
 *         (from the accept, or from the previous answer: so a kept-alive
 *         connection idles at most that long);
 *   body  headers in: the body must be complete within body_timeout_ms;
 *   busy  a handler runs or an answer (a stream) is being sent: no
 *         deadline of ours (connection_timeout_s applies to sending).
 * A connection past its deadline is shut down (no answer: it has not
 * asked anything). When the open connections pass max_connections minus
 * reserved_connections, a new one makes the oldest connection in the head
 * phase close (one that never sent a request first, then kept-alive ones,
 * in both only those whose socket holds no unread bytes; a request that
 * has arrived but not yet been read goes last), never the newcomer: so up to the total cap there is always room for a
 * client that sends its request at once (a probe, a heartbeat), however
 * many idle sockets an attacker holds. Busy connections are never shed:
 * callers bound their own (the route watchers, gateway.h). Past
 * max_connections_per_ip, libmicrohttpd closes a new connection at once.
 * With shedding, libmicrohttpd's own total cap is set a quarter higher
 * (64 at least): room for shed connections it has yet to close, so its
 * cap, which refuses the newest, is reached only when shedding cannot
 * keep up (the process's open-file limit must allow for it). */

/* Request accessors. The returned strings are borrowed for the duration of
 * the handler. Header names are matched case-insensitively. */
const char *http_request_header(const struct http_request *req, const char *name);
/* Mark the request's connection as owner's (a credential, as the caller
 * names it; at most HTTP_OWNER_MAX characters count), unless owner holds
 * limit connections already: then NOVA_ETOOMANY, and the caller answers
 * 429 and closes it. The first request on a connection pays a count (a
 * walk of the open connections); later ones of the same owner nothing.
 * limit 0: no cap. So one leaked or greedy credential cannot hold every
 * connection the server takes. */
int http_request_owner_claim(const struct http_request *req, const char *owner, unsigned limit,
			     struct nova_err *err);
const char *http_request_query(const struct http_request *req, const char *name);
const char *http_request_param(const struct http_request *req, const char *name);

/* Whether an If-None-Match value (NULL: absent) matches etag: "*", or
 * one of its comma-separated entity tags equal to etag by the weak
 * comparison of RFC 9110 13.1.2 (W/ ignored on both sides). */
bool http_etag_match(const char *if_none_match, const char *etag);

/* Response builders; each replaces any body set before. */
void http_response_json(struct http_response *res, int status, json_t *body_stolen);
/* The same for a body already rendered as JSON text (malloc'd, taken). */
void http_response_json_text(struct http_response *res, int status, char *text_stolen);
void http_response_text(struct http_response *res, int status, const char *content_type,
			const char *text);
/* {"error":{"code":"not_found","message":"...","field":"..."}} with the
 * status nova_code_http_status(err->code); a hint is added as "hint". A
 * 503 (NOVA_EUNAVAIL, NOVA_EAGAIN) or a 429 (NOVA_ETOOMANY) also carries
 * "Retry-After: 1" unless the response has a Retry-After already. */
void http_response_error(struct http_response *res, const struct nova_err *err);
/* Shortcut for a fresh error. */
void http_response_errorf(struct http_response *res, int code, const char *field,
			  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void http_response_header_add(struct http_response *res, const char *name, const char *value);
/* Answer with a streamed body of unknown length (chunked). ctx_free (may be
 * NULL) is called once the response is done with ctx, sent or not. */
void http_response_stream(struct http_response *res, int status, const char *content_type,
			  http_stream_fn fn, void *ctx, void (*ctx_free)(void *ctx));
/* After http_response_stream: w (the response takes a reference) wakes
 * this stream alone (see struct http_waker above). */
void http_response_stream_waker(struct http_response *res, struct http_waker *w);

/* Whether listen is HOST:PORT with a host that resolves: the check
 * http_server_create makes, for a caller that validates its configuration
 * before it starts anything. NOVA_EINVAL, field listen. */
int http_listen_check(const char *listen, struct nova_err *err);
int http_server_create(struct http_server **out, const struct http_server_config *cfg,
		       struct nova_err *err);
/* Routes must all be added before http_server_start. A pattern is a path
 * whose segments are literals or {name}; literal segments win over params. */
int http_server_route_add(struct http_server *srv, const char *method, const char *pattern,
			  http_handler_fn fn, void *ctx, struct nova_err *err);
/* Write the access log lines of method pattern (an added route) at debug
 * instead of info: a route that answers thousands of times a second (the
 * heartbeat) would drown the rest. NOVA_ENOTFOUND when there is no such
 * route. Before start. */
int http_server_route_quiet(struct http_server *srv, const char *method, const char *pattern);
int http_server_start(struct http_server *srv, struct nova_err *err);
/* Resume every stream waiting (HTTP_STREAM_WAIT), so each calls its fn
 * again: on news, and now and then so a stream can send a keep-alive. Safe
 * from any thread. */
void http_server_streams_wake(struct http_server *srv);
/* What the connection limits did, for /metrics. */
struct http_server_stats {
	unsigned long open;        /* connections open now */
	unsigned long timed_out;   /* shut down past their header or body deadline */
	unsigned long shed;        /* closed to keep reserved room for newcomers */
};
void http_server_stats(struct http_server_stats *out, struct http_server *srv);
/* The requests answered, as Prometheus families (core/metrics.h) named
 * PREFIX_http_requests_total{method,route,status} (route the template,
 * "unrouted" for requests no route took; the statuses a server commonly
 * answers one by one, others as "4xx" and so on) and
 * PREFIX_http_request_duration_seconds{method,route} (arrival to the
 * start of the answer). Bounded: routes times statuses. */
struct textbuf;
void http_server_metrics_write(struct textbuf *t, struct http_server *srv, const char *prefix);
/* The bound port (useful after listening on port 0). */
uint16_t http_server_port(const struct http_server *srv);
/* Stop accepting, finish in-flight requests, join the threads. Idempotent.
 * Bounded: returns within stop_timeout_ms + 1 s even when a handler never
 * returns; such threads are then left running (logged), and
 * http_server_destroy, after waiting 1 s more for them, leaves the server
 * allocated instead of freeing what they may still use. */
void http_server_stop(struct http_server *srv);
void http_server_destroy(struct http_server *srv);

#endif
