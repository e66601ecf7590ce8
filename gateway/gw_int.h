/* Gateway internals shared by its route files. Not for other folders. */
#ifndef NOVA_GATEWAY_GW_INT_H
#define NOVA_GATEWAY_GW_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "core/http.h"
#include "core/json.h"
#include "gateway/gateway.h"

/* How heartbeats ended, for /metrics (routes_nodes.c counts them). */
enum gw_hb_result { GW_HB_ACCEPTED, GW_HB_NO_TOKEN, GW_HB_UNAUTHENTICATED, GW_HB_INVALID,
		    GW_HB_UNAVAILABLE, GW_HB_ERROR, GW_HB_RESULTS };
extern const char *const gw_hb_result_names[GW_HB_RESULTS];
struct gw_fleet_metrics;

/* Open watch streams per credential (routes_routes.c). */
struct gw_watch_count {
	char cred[AUTH_ID_LEN];   /* the API key's id, or "admin" */
	unsigned n;
};

/* Engine log streams (routes_logs.c): open at once in this novad, and
 * per node (a sidecar serves 16 connections at most). */
#define GW_LOGS_MAX_STREAMS 32
#define GW_LOGS_MAX_PER_NODE 4
#define GW_LOGS_NODE_LEN 37

struct gw {
	struct gw_deps deps;
	struct gw_binding *bindings;
	size_t n_bindings;
	struct http_server *srv;           /* the server routes were added to (for /metrics) */
	pthread_mutex_t watch_lock;
	unsigned watchers;                 /* open in all */
	struct gw_watch_count *watch_counts; /* one per credential with a stream open */
	size_t n_watch_counts, cap_watch_counts;
	atomic_ullong heartbeats[GW_HB_RESULTS]; /* by enum gw_hb_result */
	struct gw_fleet_metrics *fleet;    /* routes_metrics.c: the collector, when started */
	_Atomic(struct autoscaler *) autoscaler; /* for /metrics; gw_autoscaler_set */
	_Atomic(struct events_listener *) events; /* the event plane's ear; gw_events_set */
	/* Engine log streams open (routes_logs.c), each with its node. */
	pthread_mutex_t logs_lock;
	pthread_cond_t logs_cond;          /* CLOCK_MONOTONIC: one closed */
	unsigned logs_open;
	char logs_nodes[GW_LOGS_MAX_STREAMS][GW_LOGS_NODE_LEN];
};

/* What a route needs (struct gw_route.access): nothing, a node token, or
 * a credential holding one scope (an AUTH_SCOPE_* bit of auth/auth.h,
 * implications included). Kept as one field so a route's whole access rule
 * is one word of its row; rejected: a kind and a scope in two fields, which
 * let a row say "API key" with no scope. */
#define GW_PUBLIC 0u          /* probes, OpenAPI: no credential */
#define GW_NODE (1u << 31)    /* a node token; the handler checks whose */

/* One request as its handler sees it: who calls, and the audit note a
 * mutating route hands to the module making the change (NULL on reads and
 * on routes without an API credential). */
struct gw_call {
	const struct auth_principal *who;
	struct audit_note *audit;
	/* Behind audit->object when set below; larger than the column, so
	 * audit/ cuts it, on a character boundary. */
	char object[4 * AUDIT_OBJECT_MAX + 1];
};

/* A create names its object in the body: the handler says which, before
 * the change (a no-op without a note). */
void gw_call_object(struct gw_call *call, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

typedef void (*gw_handler_fn)(struct gw *gw, struct gw_call *call,
			      struct http_request *req, struct http_response *res);

struct gw_route {
	const char *method;
	const char *pattern;
	gw_handler_fn fn;
	unsigned access;             /* GW_PUBLIC, GW_NODE or one AUTH_SCOPE_* */
	const char *summary;
	const char *request_schema;  /* components/schemas name, or NULL */
	const char *response_schema; /* NULL: no body */
	int ok_status;
	const char *tag;
	bool capped;                 /* may answer 429: a cap on open streams */
};

struct gw_binding {
	struct gw *gw;
	const struct gw_route *route;
	unsigned access; /* the route's, or GW_PUBLIC for /metrics under metrics_public */
};

/* Parse the body as a JSON object or answer 400 and return NULL. */
json_t *gw_body_json(struct http_request *req, struct http_response *res);

/* Route handlers, by file. */
void gw_health(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_ready(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_openapi_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_docs_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_ui_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_metrics_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);

void gw_pool_create(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_pool_list(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_pool_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_pool_update(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_pool_delete(struct gw *, struct gw_call *, struct http_request *, struct http_response *);

void gw_apikey_create(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_apikey_list(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_apikey_revoke(struct gw *, struct gw_call *, struct http_request *, struct http_response *);

void gw_model_register(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_model_list(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_model_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_model_delete(struct gw *, struct gw_call *, struct http_request *, struct http_response *);

void gw_deployment_create(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_list(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_update(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_stop(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_promote(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_rollback(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_start(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_delete(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_deployment_logs(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
/* Wait (at most timeout_ms) until no log stream's thread is left. */
void gw_logs_wait_closed(struct gw *gw, unsigned timeout_ms);

void gw_node_list(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_node_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_node_cordon(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_node_uncordon(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_node_drain(struct gw *, struct gw_call *, struct http_request *, struct http_response *);

void gw_events_list(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_audit_list(struct gw *, struct gw_call *, struct http_request *, struct http_response *);

void gw_heartbeat(struct gw *, struct gw_call *, struct http_request *, struct http_response *);

void gw_routes_get(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_routes_watch(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_router_keys(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
void gw_router_demand_post(struct gw *, struct gw_call *, struct http_request *,
			   struct http_response *);
void gw_router_demand_get(struct gw *, struct gw_call *, struct http_request *,
			  struct http_response *);
void gw_events_watch(struct gw *, struct gw_call *, struct http_request *, struct http_response *);
/* Watch streams open now (for /metrics): route watches and event watches. */
unsigned gw_watchers_open(struct gw *gw);
/* One watch stream (a route watch or an event watch) taken for cred, or
 * NOVA_ETOOMANY naming the cap it met (gw_deps.max_watchers,
 * max_watchers_per_key); gw_watch_give returns it when the stream ends.
 * One count for both kinds: what the caps guard is the server's
 * connections, which a stream holds whatever it carries. */
int gw_watch_take(struct gw *gw, const char *cred, struct nova_err *err);
void gw_watch_give(struct gw *gw, const char *cred);
/* gw_watch_take for the caller's credential (an API key's id, or "admin"),
 * written into cred: true when taken; false when refused, res then being
 * the 429 with Retry-After and the connection closed. */
bool gw_watch_open(struct gw *gw, const struct gw_call *call, char cred[AUTH_ID_LEN],
		   struct http_response *res);
/* How long a watcher refused at a cap is told to wait: streams end when
 * routers go, which is not every second. */
#define GW_WATCH_RETRY_AFTER "10"
#define GW_WATCH_KEEPALIVE_S 15

/* What a watch stream is sending: the text of its current event(s), how
 * much of it went, and when it last wrote. */
struct gw_sse {
	char *pending;
	size_t off, len;
	time_t last_write;
};
/* Nothing left to send (the stream's reader makes its next text). */
static inline bool gw_sse_done(const struct gw_sse *o) { return o->off == o->len; }
/* Set the text (taken; NULL: none), from its start. */
void gw_sse_set(struct gw_sse *o, char *text);
/* A keep-alive comment when nothing was written for GW_WATCH_KEEPALIVE_S
 * and nothing is pending: keeps proxies from timing the stream out, and a
 * write to a client that left ends the stream. */
void gw_sse_keepalive(struct gw_sse *o);
/* The stream reader's answer: up to max bytes of the text into buf, or
 * HTTP_STREAM_WAIT when there is none. */
long gw_sse_send(struct gw_sse *o, char *buf, size_t max);

/* The route table (gateway.c). */
extern const struct gw_route gw_routes[];
extern const size_t gw_routes_count;
/* Schemas for the OpenAPI document (openapi.c). */
extern const char gw_openapi_schemas[];

#endif
