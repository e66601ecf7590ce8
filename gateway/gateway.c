#include "gateway/gw_int.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

/* Each row's access is the one scope the route needs (auth/auth.h says
 * what each grants); tests/gateway/test_gateway_scopes.c holds the same
 * table written out by hand, so a row that changes scope by accident fails
 * there. */
const struct gw_route gw_routes[] = {
	{"GET", "/healthz", gw_health, GW_PUBLIC, "Liveness: the process answers", NULL,
	 "Health", 200, "probes", false},
	{"GET", "/readyz", gw_ready, GW_PUBLIC,
	 "Readiness: 200 while novad can serve (ready, or degraded while the database is away: "
	 "routes and heartbeats are served from memory), 503 when it cannot; the body says what "
	 "is down", NULL, "Health", 200, "probes", false},
	{"GET", "/openapi.json", gw_openapi_get, GW_PUBLIC, "This document", NULL, NULL, 200,
	 "probes", false},
	{"GET", "/docs", gw_docs_get, GW_PUBLIC,
	 "This document as a page to read (HTML, no external assets)", NULL, NULL, 200, "probes",
	 false},
	{"GET", "/docs.js", gw_docs_get, GW_PUBLIC, "The script of /docs", NULL, NULL, 200,
	 "probes", false},
	{"GET", "/ui", gw_ui_get, GW_PUBLIC,
	 "The dashboard (HTML; it signs in with a key and calls this API)", NULL, NULL, 200,
	 "probes", false},
	{"GET", "/ui/{file}", gw_ui_get, GW_PUBLIC, "The dashboard's files", NULL, NULL, 200,
	 "probes", false},
	{"GET", "/metrics", gw_metrics_get, AUTH_SCOPE_READ,
	 "Prometheus metrics: database reachability, heartbeats held, the brake on mass failure, "
	 "the routing table's age", NULL, NULL, 200, "probes", false},

	{"POST", "/v1/pools", gw_pool_create, AUTH_SCOPE_WRITE,
	 "Create a pool (config validated by its provider)", "PoolCreate", "Pool", 201, "pools", false},
	{"GET", "/v1/pools", gw_pool_list, AUTH_SCOPE_READ, "List pools", NULL, "PoolList", 200, "pools", false},
	{"GET", "/v1/pools/{pool}", gw_pool_get, AUTH_SCOPE_READ, "Get a pool by id or name", NULL,
	 "Pool", 200, "pools", false},
	{"PATCH", "/v1/pools/{pool}", gw_pool_update, AUTH_SCOPE_WRITE, "Update a pool's quotas and warm_nodes",
	 "PoolUpdate", "Pool", 200, "pools", false},
	{"DELETE", "/v1/pools/{pool}", gw_pool_delete, AUTH_SCOPE_WRITE,
	 "Delete a pool; refused while it has nodes unless ?force=true (drains them first)", NULL,
	 NULL, 204, "pools", false},

	{"GET", "/v1/nodes", gw_node_list, AUTH_SCOPE_READ, "List live nodes (?pool=NAME for one pool)",
	 NULL, "NodeList", 200, "nodes", false},
	{"GET", "/v1/nodes/{node}", gw_node_get, AUTH_SCOPE_READ,
	 "Get a node with its replicas and recent state changes", NULL, "Node", 200, "nodes", false},
	{"POST", "/v1/nodes/{node}/heartbeat", gw_heartbeat, GW_NODE,
	 "A node's heartbeat (its node token only)", "Heartbeat", "HeartbeatAnswer", 200, "nodes", false},
	{"POST", "/v1/nodes/{node}/cordon", gw_node_cordon, AUTH_SCOPE_WRITE,
	 "Cordon a node: no new replicas on it", NULL, "Node", 200, "nodes", false},
	{"POST", "/v1/nodes/{node}/uncordon", gw_node_uncordon, AUTH_SCOPE_WRITE,
	 "Uncordon a node (ends a drain)", NULL, "Node", 200, "nodes", false},
	{"POST", "/v1/nodes/{node}/drain", gw_node_drain, AUTH_SCOPE_WRITE,
	 "Drain a node: cordon it and move its replicas elsewhere", NULL, "Node", 200, "nodes", false},

	{"GET", "/v1/routes", gw_routes_get, AUTH_SCOPE_ROUTES,
	 "The routing table: model (and adapter) -> ready endpoints with load; ETag and "
	 "If-None-Match; ?model=NAME for one", NULL, "Routes", 200, "routes", false},
	{"GET", "/v1/routes/watch", gw_routes_watch, AUTH_SCOPE_ROUTES,
	 "Server-Sent Events: a snapshot, then each change, each with an id; Last-Event-ID "
	 "resumes. Streams open at once are capped per credential and in all (novad.yaml "
	 "http.max_watchers_per_key, http.max_watchers): past either, 429 with Retry-After",
	 NULL, NULL, 200, "routes", true},

	{"GET", "/v1/router/keys", gw_router_keys, AUTH_SCOPE_ROUTER,
	 "For nova-router: every active API key's SHA-256, scopes and expiry (never a secret), so "
	 "routers check keys from memory; ETag and If-None-Match (304), cheap to poll every second",
	 NULL, "RouterKeys", 200, "router", false},
	{"POST", "/v1/router/demand", gw_router_demand_post, AUTH_SCOPE_ROUTER,
	 "For nova-router: its demand now, per route key (requests waiting for a replica, requests "
	 "in flight), sent every second while not zero and once when it falls to zero; replaces "
	 "this router's last report. Telemetry, not a change: not in the audit trail",
	 "RouterDemand", NULL, 204, "router", false},
	{"GET", "/v1/router/demand", gw_router_demand_get, AUTH_SCOPE_READ,
	 "The routers' demand summed per route key (reports younger than ttl_ms): what waits for "
	 "a replica (the autoscaler's signal to scale from zero) and what is in flight",
	 NULL, "RouterDemandTotals", 200, "router", false},

	{"POST", "/v1/models", gw_model_register, AUTH_SCOPE_WRITE,
	 "Register a model (name, version, engine, kind and stages)", "ModelSpec", "Model", 201,
	 "models", false},
	{"GET", "/v1/models", gw_model_list, AUTH_SCOPE_READ, "List models", NULL, "ModelList", 200,
	 "models", false},
	{"GET", "/v1/models/{model}", gw_model_get, AUTH_SCOPE_READ,
	 "Get a model by id, NAME:VERSION, or NAME (newest version)", NULL, "Model", 200, "models", false},
	{"DELETE", "/v1/models/{model}", gw_model_delete, AUTH_SCOPE_WRITE,
	 "Delete a model; refused while a deployment uses it", NULL, NULL, 204, "models", false},

	{"POST", "/v1/deployments", gw_deployment_create, AUTH_SCOPE_WRITE,
	 "Deploy a model on a pool (refused at once if it can never fit)", "DeploymentCreate",
	 "Deployment", 201, "deployments", false},
	{"GET", "/v1/deployments", gw_deployment_list, AUTH_SCOPE_READ, "List deployments", NULL,
	 "DeploymentList", 200, "deployments", false},
	{"GET", "/v1/deployments/{deployment}", gw_deployment_get, AUTH_SCOPE_READ,
	 "Get a deployment with its replicas and recent events", NULL, "Deployment", 200,
	 "deployments", false},
	{"PATCH", "/v1/deployments/{deployment}", gw_deployment_update, AUTH_SCOPE_WRITE,
	 "Scale a deployment, set or turn off its autoscaling policy, or start a rollout to "
	 "another version of its model (rolling, or a canary; 409 while one is in progress)",
	 "DeploymentPatch", "Deployment", 200, "deployments", false},
	{"POST", "/v1/deployments/{deployment}/promote", gw_deployment_promote, AUTH_SCOPE_WRITE,
	 "Promote a canary: the rollout goes on to replace every replica (409 without a canary)",
	 NULL, "Deployment", 200, "deployments", false},
	{"POST", "/v1/deployments/{deployment}/rollback", gw_deployment_rollback, AUTH_SCOPE_WRITE,
	 "Roll back: the rollout in progress is reversed, or the last complete one undone by a "
	 "rollout back to its previous version (409 when there is none)",
	 NULL, "Deployment", 200, "deployments", false},
	{"POST", "/v1/deployments/{deployment}/stop", gw_deployment_stop, AUTH_SCOPE_WRITE,
	 "Stop a deployment (keeps the record)", NULL, "Deployment", 200, "deployments", false},
	{"POST", "/v1/deployments/{deployment}/start", gw_deployment_start, AUTH_SCOPE_WRITE,
	 "Start a stopped deployment", NULL, "Deployment", 200, "deployments", false},
	{"DELETE", "/v1/deployments/{deployment}", gw_deployment_delete, AUTH_SCOPE_WRITE,
	 "Delete a stopped deployment", NULL, NULL, 204, "deployments", false},
	{"GET", "/v1/deployments/{deployment}/replicas/{replica}/logs", gw_deployment_logs,
	 AUTH_SCOPE_READ,
	 "A replica's engine output (stdout and stderr) from its node: the last tail lines, then "
	 "with follow=true each new line as it comes (text/plain, chunked). {replica} is the "
	 "replica's number (ordinal). Streams open at once are capped (32 per novad, 4 per node): "
	 "past either, 429 with Retry-After",
	 NULL, NULL, 200, "deployments", true},

	{"POST", "/v1/apikeys", gw_apikey_create, AUTH_SCOPE_ADMIN,
	 "Create an API key (the key is shown once)", "ApiKeyCreate", "ApiKeyCreated", 201,
	 "apikeys", false},
	{"GET", "/v1/apikeys", gw_apikey_list, AUTH_SCOPE_ADMIN, "List API keys (never the secret)",
	 NULL, "ApiKeyList", 200, "apikeys", false},
	{"DELETE", "/v1/apikeys/{id}", gw_apikey_revoke, AUTH_SCOPE_ADMIN, "Revoke an API key", NULL,
	 NULL, 204, "apikeys", false},

	{"GET", "/v1/events", gw_events_list, AUTH_SCOPE_READ,
	 "Recorded transitions and events of nodes, deployments and pools, merged in time order, "
	 "newest last (?pool=, deployment=, node=, since=, after= a cursor, limit=); without since "
	 "or after, the newest page. Poll with after= the answer's cursor for what came since",
	 NULL, "EventList", 200, "events", false},
	{"GET", "/v1/events/watch", gw_events_watch, AUTH_SCOPE_READ,
	 "Server-Sent Events: the event plane's stream (node, deployment, pool and route events; "
	 "?kind= a comma-separated subset), each with its id, the same on every novad. "
	 "Last-Event-ID (or ?after=N) resumes on any novad, in order and missing none; without "
	 "either, only what comes next; after=0 from the oldest kept. A cursor older than the "
	 "retention gets a snapshot event first (events were lost: list the state again). "
	 "Counted with route watches in the stream caps (http.max_watchers_per_key, "
	 "http.max_watchers): past either, 429 with Retry-After",
	 NULL, NULL, 200, "events", true},

	{"GET", "/v1/audit", gw_audit_list, AUTH_SCOPE_ADMIN,
	 "The audit trail: every change and every refused change of a known caller, newest first "
	 "(?since=, until=, key=, object=, kind=, before=, limit=)", NULL, "AuditList", 200,
	 "audit", false},
};
const size_t gw_routes_count = sizeof(gw_routes) / sizeof(gw_routes[0]);

int gw_create(struct gw **out, const struct gw_deps *deps, struct nova_err *err)
{
	for (size_t i = 0; i < gw_routes_count; i++) {
		unsigned acc = gw_routes[i].access;
		assert(acc == GW_PUBLIC || acc == GW_NODE || auth_scope_name(acc));
		(void)acc;
	}
	struct gw *gw = calloc(1, sizeof(*gw));
	*out = NULL;
	if (!gw || !(gw->bindings = calloc(gw_routes_count, sizeof(*gw->bindings)))) {
		free(gw);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	gw->deps = *deps;
	gw->n_bindings = gw_routes_count;
	pthread_mutex_init(&gw->watch_lock, NULL);
	pthread_mutex_init(&gw->logs_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&gw->logs_cond, &ca);
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < gw_routes_count; i++) {
		gw->bindings[i].gw = gw;
		gw->bindings[i].route = &gw_routes[i];
		gw->bindings[i].access = gw_routes[i].access;
		if (deps->metrics_public && gw_routes[i].fn == gw_metrics_get)
			gw->bindings[i].access = GW_PUBLIC;
	}
	*out = gw;
	return 0;
}

void gw_destroy(struct gw *gw)
{
	if (!gw)
		return;
	gw_fleet_metrics_stop(gw);
	/* Log streams' threads end within a second of their stream (the
	 * server, stopped first, ended every stream). */
	gw_logs_wait_closed(gw, 3000);
	free(gw->bindings);
	free(gw->watch_counts);
	pthread_mutex_destroy(&gw->watch_lock);
	pthread_mutex_lock(&gw->logs_lock);
	bool left = gw->logs_open > 0;
	pthread_mutex_unlock(&gw->logs_lock);
	if (left) {
		/* A thread still holds gw: leave it allocated rather than free
		 * what it will touch (logged; a stop, not a leak per request). */
		nova_log(NOVA_LOG_WARN, "gateway", "log streams still open at stop");
		return;
	}
	pthread_cond_destroy(&gw->logs_cond);
	pthread_mutex_destroy(&gw->logs_lock);
	free(gw);
}

/* What a route changes, for the audit trail: its tag in the singular
 * ("pools" -> "pool"). */
static void gw_kind(char *buf, size_t len, const char *tag)
{
	size_t n = strlen(tag);
	if (n > 1 && tag[n - 1] == 's')
		n--;
	snprintf(buf, len, "%.*s", (int)n, tag);
}

/* The first path parameter names the object ("/v1/pools/{pool}"); a create
 * names it in its body, and its handler says so. */
static const char *gw_object(const struct http_request *req)
{
	const char *open = strchr(req->route, '{');
	if (!open)
		return "";
	char name[32];
	const char *close = strchr(open, '}');
	if (!close || (size_t)(close - open - 1) >= sizeof(name))
		return "";
	snprintf(name, sizeof(name), "%.*s", (int)(close - open - 1), open + 1);
	const char *v = http_request_param(req, name);
	return v ? v : "";
}

/* The code of the error body the handler answered ("invalid", ...). */
static void gw_error_code(char *buf, size_t len, const struct http_response *res)
{
	json_t *j = res->body ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
	const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
	snprintf(buf, len, "%s", code ? code : "");
	json_decref(j);
}

void gw_call_object(struct gw_call *call, const char *fmt, ...)
{
	va_list ap;
	if (!call->audit)
		return;
	va_start(ap, fmt);
	vsnprintf(call->object, sizeof(call->object), fmt, ap);
	va_end(ap);
	call->audit->object = call->object;
}

/* A request ended without its change recorded (refused, or an answer the
 * change's module did not record): write its row on its own. When even
 * that fails (the database is away), the log keeps it. */
static void gw_audit_finish(struct gw *gw, struct audit_note *note, const struct http_response *res)
{
	char code[32], status[8];
	struct nova_err err;
	if (note->written)
		return;
	nova_err_clear(&err);
	gw_error_code(code, sizeof(code), res);
	if (audit_record_alone(gw->deps.db, note, res->status, code, &err) == 0)
		return;
	snprintf(status, sizeof(status), "%d", res->status);
	nova_log_kv(NOVA_LOG_WARN, "audit", "audit event not recorded", "actor", note->actor,
		    "api_key_id", note->key_id ? note->key_id : "", "method", note->method, "route",
		    note->route, "object", note->object, "status", status, "request_id",
		    note->request_id, "error", err.message, NULL);
}

/* Every request passes here: authenticate as the route demands, then call
 * the handler. A missing or unknown credential is 401 (with
 * WWW-Authenticate, as RFC 6750 asks); a known one without the route's
 * scope 403, naming the scope needed and the ones held. Every request of a
 * known caller that may change something (any method but GET and HEAD)
 * gets an audit note (audit/audit.h): the change records it in its own
 * transaction, and a refused one is recorded here. */
static void gw_dispatch(struct http_request *req, struct http_response *res, void *ctx)
{
	struct gw_binding *b = ctx;
	struct auth_principal who = {0};
	struct audit_note note = {0};
	struct gw_call call = {.who = &who};
	struct nova_err err;
	char kind[32];
	unsigned need = b->access;
	nova_err_clear(&err);
	if (need != GW_PUBLIC && need != GW_NODE) {
		const struct auth_headers h = {
			.authorization = http_request_header(req, "Authorization"),
			.x_api_key = http_request_header(req, "X-API-Key"),
			.x_admin_secret = http_request_header(req, "X-Admin-Secret"),
		};
		int rc = auth_authenticate(&who, b->gw->deps.auth, &h, &err);
		if (rc) {
			if (rc == NOVA_EUNAUTH)
				http_response_header_add(res, "WWW-Authenticate", "Bearer realm=\"nova\"");
			http_response_error(res, &err);
			return;
		}
		if (http_request_owner_claim(req, who.kind == AUTH_APIKEY ? who.id : "admin",
					     b->gw->deps.max_connections_per_key, &err)) {
			http_response_error(res, &err);
			http_response_header_add(res, "Connection", "close");
			return;
		}
		/* A router's demand report is telemetry, as heartbeats are: a
		 * row a second per router would bury the changes (audit.h). */
		if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0 &&
		    b->route->fn != gw_router_demand_post) {
			gw_kind(kind, sizeof(kind), b->route->tag);
			note = (struct audit_note){
				.actor = who.kind == AUTH_APIKEY ? "apikey" : "admin",
				.key_id = who.kind == AUTH_APIKEY ? who.id : NULL,
				.key_name = who.kind == AUTH_APIKEY ? who.name : NULL,
				.method = req->method,
				.route = req->route,
				.kind = kind,
				.object = gw_object(req),
				.request_id = req->request_id,
				.status = b->route->ok_status,
			};
			call.audit = &note;
		}
		if (!auth_scopes_allow(who.scopes, need)) {
			char held[96];
			auth_scopes_format(held, sizeof(held), who.scopes);
			http_response_errorf(res, NOVA_EFORBIDDEN, "",
					     "this route needs the %s scope; this key has %s",
					     auth_scope_name(need), held);
			if (call.audit)
				gw_audit_finish(b->gw, call.audit, res);
			return;
		}
	}
	b->route->fn(b->gw, &call, req, res);
	if (call.audit)
		gw_audit_finish(b->gw, call.audit, res);
}

int gw_routes_register(struct gw *gw, struct http_server *srv, struct nova_err *err)
{
	gw->srv = srv;
	for (size_t i = 0; i < gw->n_bindings; i++) {
		const struct gw_route *r = gw->bindings[i].route;
		int rc = http_server_route_add(srv, r->method, r->pattern, gw_dispatch,
					       &gw->bindings[i], err);
		if (rc)
			return rc;
		/* Heartbeats are most of the requests (thousands a second at
		 * 10,000 nodes): their access lines at debug. */
		if (r->fn == gw_heartbeat)
			http_server_route_quiet(srv, r->method, r->pattern);
	}
	return 0;
}

json_t *gw_body_json(struct http_request *req, struct http_response *res)
{
	struct nova_err err;
	json_t *body;
	if (json_parse_object(&body, req->body, req->body_len, &err)) {
		http_response_error(res, &err);
		return NULL;
	}
	return body;
}
