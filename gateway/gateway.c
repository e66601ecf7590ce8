#include "gateway/gw_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

const struct gw_route gw_routes[] = {
	{"GET", "/healthz", gw_health, GW_AUTH_NONE, "Liveness: the process answers", NULL,
	 "Health", 200, "probes"},
	{"GET", "/readyz", gw_ready, GW_AUTH_NONE,
	 "Readiness: 200 while novad can serve (ready, or degraded while the database is away: "
	 "routes and heartbeats are served from memory), 503 when it cannot; the body says what "
	 "is down", NULL, "Health", 200, "probes"},
	{"GET", "/openapi.json", gw_openapi_get, GW_AUTH_NONE, "This document", NULL, NULL, 200,
	 "probes"},
	{"GET", "/metrics", gw_metrics_get, GW_AUTH_ANY,
	 "Prometheus metrics: database reachability, heartbeats held, the brake on mass failure, "
	 "the routing table's age", NULL, NULL, 200, "probes"},

	{"POST", "/v1/pools", gw_pool_create, GW_AUTH_ANY,
	 "Create a pool (config validated by its provider)", "PoolCreate", "Pool", 201, "pools"},
	{"GET", "/v1/pools", gw_pool_list, GW_AUTH_ANY, "List pools", NULL, "PoolList", 200, "pools"},
	{"GET", "/v1/pools/{pool}", gw_pool_get, GW_AUTH_ANY, "Get a pool by id or name", NULL,
	 "Pool", 200, "pools"},
	{"PATCH", "/v1/pools/{pool}", gw_pool_update, GW_AUTH_ANY, "Update a pool's quotas",
	 "PoolUpdate", "Pool", 200, "pools"},
	{"DELETE", "/v1/pools/{pool}", gw_pool_delete, GW_AUTH_ANY,
	 "Delete a pool; refused while it has nodes unless ?force=true (drains them first)", NULL,
	 NULL, 204, "pools"},

	{"GET", "/v1/nodes", gw_node_list, GW_AUTH_ANY, "List live nodes (?pool=NAME for one pool)",
	 NULL, "NodeList", 200, "nodes"},
	{"GET", "/v1/nodes/{node}", gw_node_get, GW_AUTH_ANY,
	 "Get a node with its replicas and recent state changes", NULL, "Node", 200, "nodes"},
	{"POST", "/v1/nodes/{node}/heartbeat", gw_heartbeat, GW_AUTH_NODE,
	 "A node's heartbeat (its node token only)", "Heartbeat", "HeartbeatAnswer", 200, "nodes"},
	{"POST", "/v1/nodes/{node}/cordon", gw_node_cordon, GW_AUTH_ANY,
	 "Cordon a node: no new replicas on it", NULL, "Node", 200, "nodes"},
	{"POST", "/v1/nodes/{node}/uncordon", gw_node_uncordon, GW_AUTH_ANY,
	 "Uncordon a node (ends a drain)", NULL, "Node", 200, "nodes"},
	{"POST", "/v1/nodes/{node}/drain", gw_node_drain, GW_AUTH_ANY,
	 "Drain a node: cordon it and move its replicas elsewhere", NULL, "Node", 200, "nodes"},

	{"GET", "/v1/routes", gw_routes_get, GW_AUTH_ANY,
	 "The routing table: model (and adapter) -> ready endpoints with load; ETag and "
	 "If-None-Match; ?model=NAME for one", NULL, "Routes", 200, "routes"},
	{"GET", "/v1/routes/watch", gw_routes_watch, GW_AUTH_ANY,
	 "Server-Sent Events: a snapshot, then each change, each with an id; Last-Event-ID "
	 "resumes", NULL, NULL, 200, "routes"},

	{"POST", "/v1/models", gw_model_register, GW_AUTH_ANY,
	 "Register a model (name, version, engine, kind and stages)", "ModelSpec", "Model", 201,
	 "models"},
	{"GET", "/v1/models", gw_model_list, GW_AUTH_ANY, "List models", NULL, "ModelList", 200,
	 "models"},
	{"GET", "/v1/models/{model}", gw_model_get, GW_AUTH_ANY,
	 "Get a model by id, NAME:VERSION, or NAME (newest version)", NULL, "Model", 200, "models"},
	{"DELETE", "/v1/models/{model}", gw_model_delete, GW_AUTH_ANY,
	 "Delete a model; refused while a deployment uses it", NULL, NULL, 204, "models"},

	{"POST", "/v1/deployments", gw_deployment_create, GW_AUTH_ANY,
	 "Deploy a model on a pool (refused at once if it can never fit)", "DeploymentCreate",
	 "Deployment", 201, "deployments"},
	{"GET", "/v1/deployments", gw_deployment_list, GW_AUTH_ANY, "List deployments", NULL,
	 "DeploymentList", 200, "deployments"},
	{"GET", "/v1/deployments/{deployment}", gw_deployment_get, GW_AUTH_ANY,
	 "Get a deployment with its replicas and recent events", NULL, "Deployment", 200,
	 "deployments"},
	{"PATCH", "/v1/deployments/{deployment}", gw_deployment_scale, GW_AUTH_ANY,
	 "Scale a deployment", "DeploymentScale", "Deployment", 200, "deployments"},
	{"POST", "/v1/deployments/{deployment}/stop", gw_deployment_stop, GW_AUTH_ANY,
	 "Stop a deployment (keeps the record)", NULL, "Deployment", 200, "deployments"},
	{"POST", "/v1/deployments/{deployment}/start", gw_deployment_start, GW_AUTH_ANY,
	 "Start a stopped deployment", NULL, "Deployment", 200, "deployments"},
	{"DELETE", "/v1/deployments/{deployment}", gw_deployment_delete, GW_AUTH_ANY,
	 "Delete a stopped deployment", NULL, NULL, 204, "deployments"},

	{"POST", "/v1/apikeys", gw_apikey_create, GW_AUTH_ADMIN,
	 "Create an API key (the key is shown once)", "ApiKeyCreate", "ApiKeyCreated", 201,
	 "apikeys"},
	{"GET", "/v1/apikeys", gw_apikey_list, GW_AUTH_ADMIN, "List API keys (never the secret)",
	 NULL, "ApiKeyList", 200, "apikeys"},
	{"DELETE", "/v1/apikeys/{id}", gw_apikey_revoke, GW_AUTH_ADMIN, "Revoke an API key", NULL,
	 NULL, 204, "apikeys"},
};
const size_t gw_routes_count = sizeof(gw_routes) / sizeof(gw_routes[0]);

int gw_create(struct gw **out, const struct gw_deps *deps, struct nova_err *err)
{
	struct gw *gw = calloc(1, sizeof(*gw));
	*out = NULL;
	if (!gw || !(gw->bindings = calloc(gw_routes_count, sizeof(*gw->bindings)))) {
		free(gw);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	gw->deps = *deps;
	gw->n_bindings = gw_routes_count;
	for (size_t i = 0; i < gw_routes_count; i++) {
		gw->bindings[i].gw = gw;
		gw->bindings[i].route = &gw_routes[i];
	}
	*out = gw;
	return 0;
}

void gw_destroy(struct gw *gw)
{
	if (!gw)
		return;
	free(gw->bindings);
	free(gw);
}

/* Every request passes here: authenticate as the route demands, then call
 * the handler. A wrong kind of credential is 403, a missing or unknown one
 * 401 (with WWW-Authenticate, as RFC 6750 asks). */
static void gw_dispatch(struct http_request *req, struct http_response *res, void *ctx)
{
	struct gw_binding *b = ctx;
	struct auth_principal who = {0};
	struct nova_err err;
	nova_err_clear(&err);
	if (b->route->auth != GW_AUTH_NONE && b->route->auth != GW_AUTH_NODE) {
		int rc = auth_authenticate(&who, b->gw->deps.auth,
					   http_request_header(req, "Authorization"),
					   http_request_header(req, "X-API-Key"), &err);
		if (rc) {
			if (rc == NOVA_EUNAUTH)
				http_response_header_add(res, "WWW-Authenticate", "Bearer realm=\"nova\"");
			http_response_error(res, &err);
			return;
		}
		if (b->route->auth == GW_AUTH_ADMIN && who.kind != AUTH_ADMIN) {
			http_response_errorf(res, NOVA_EFORBIDDEN, "",
					     "this route needs the admin token; an api key is not enough");
			return;
		}
	}
	b->route->fn(b->gw, &who, req, res);
}

int gw_routes_register(struct gw *gw, struct http_server *srv, struct nova_err *err)
{
	for (size_t i = 0; i < gw->n_bindings; i++) {
		const struct gw_route *r = gw->bindings[i].route;
		int rc = http_server_route_add(srv, r->method, r->pattern, gw_dispatch,
					       &gw->bindings[i], err);
		if (rc)
			return rc;
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
