/* The HTTP orchestration gateway: the routes of novad's API.
 *
 * Thin by design: each handler decodes the request, calls one module
 * (pools, auth, ...) and renders its answer. Authentication is declared per
 * route in one table, and the same table generates /openapi.json, so the
 * document describes exactly the routes that exist. */
#ifndef NOVA_GATEWAY_GATEWAY_H
#define NOVA_GATEWAY_GATEWAY_H

#include <jansson.h>
#include <stddef.h>

#include "auth/auth.h"
#include "core/db.h"
#include "core/err.h"
#include "core/http.h"

struct gw;

struct inventory;
struct inventory_routes;

struct gw_deps {
	struct db_pool *db;
	struct auth *auth;
	struct inventory *inventory;
	struct inventory_routes *routes;
	const struct db_migration *migrations; /* for /readyz */
	size_t n_migrations;
	/* Route watch streams (GET /v1/routes/watch) open at once, in all and
	 * per credential (an API key; the admin token is one): past either a
	 * watch is answered 429 with Retry-After and the connection closed.
	 * A stream holds a connection the server's reserve cannot reclaim
	 * (core/http.h), so these keep watchers from filling the server.
	 * 0: no cap. */
	unsigned max_watchers;
	unsigned max_watchers_per_key;
	/* Connections one credential (an API key, or the admin token) may
	 * hold (core/http.h http_request_owner_claim): past it the request is
	 * answered 429 and its connection closed, so a leaked or greedy key
	 * cannot take the connections the fleet needs. 0: no cap. */
	unsigned max_connections_per_key;
};

int gw_create(struct gw **out, const struct gw_deps *deps, struct nova_err *err);
void gw_destroy(struct gw *gw);
/* Add every route to srv (before http_server_start). */
int gw_routes_register(struct gw *gw, struct http_server *srv, struct nova_err *err);
/* The OpenAPI 3 document for the routes (new reference). */
json_t *gw_openapi(void);

#endif
