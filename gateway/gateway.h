/* The HTTP orchestration gateway: the routes of novad's API.
 *
 * Thin by design: each handler decodes the request, calls one module
 * (pools, auth, ...) and renders its answer. Authentication is declared per
 * route in one table, and the same table generates /openapi.json, so the
 * document describes exactly the routes that exist. */
#ifndef NOVA_GATEWAY_GATEWAY_H
#define NOVA_GATEWAY_GATEWAY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "core/db.h"
#include "core/err.h"
#include "core/http.h"

struct gw;

struct inventory;
struct inventory_routes;
struct notify;

struct gw_deps {
	struct db_pool *db;
	struct auth *auth;
	struct inventory *inventory;
	struct inventory_routes *routes;
	/* The notifier this novad's deployment workers wait on (the runtime's,
	 * gateway/runtime.h): the deployment changes signal it. NULL: no
	 * workers here. */
	struct notify *work;
	/* The autoscaler's notifier (the runtime's): a router's demand report
	 * with requests waiting signals it, so a model at zero is woken at
	 * once when this novad is the autoscaler's, at its next tick (1 s)
	 * otherwise. NULL: none. */
	struct notify *autoscale;
	const struct db_migration *migrations; /* for /readyz */
	size_t n_migrations;
	/* Watch streams (GET /v1/routes/watch and /v1/events/watch, counted
	 * together) open at once, in all and per credential (an API key; the admin token is one): past either a
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
	/* GET /metrics without a credential (novad.yaml metrics_public); off:
	 * the read scope. */
	bool metrics_public;
};

int gw_create(struct gw **out, const struct gw_deps *deps, struct nova_err *err);
void gw_destroy(struct gw *gw);
/* Add every route to srv (before http_server_start). */
int gw_routes_register(struct gw *gw, struct http_server *srv, struct nova_err *err);
/* Start the thread that reads the fleet's state for /metrics from the
 * database every refresh_ms (nodes by pool and state, deployments and
 * their replicas, the load their replicas report, the work queue), so a
 * scrape reads memory only and takes the same time at any fleet size.
 * is_leader(ctx) says whether this novad holds the singleton duties.
 * Stopped by gw_destroy. Without it /metrics has no fleet families. */
int gw_fleet_metrics_start(struct gw *gw, bool (*is_leader)(void *ctx), void *ctx,
			   unsigned refresh_ms, struct nova_err *err);
/* Stop that thread (waits for a read in progress, bounded by the database
 * deadlines). Idempotent; gw_destroy calls it. */
void gw_fleet_metrics_stop(struct gw *gw);
/* The autoscaler whose counters /metrics shows (novad's, once started;
 * it outlives the server's requests: novad stops the server first). */
struct autoscaler;
void gw_autoscaler_set(struct gw *gw, struct autoscaler *a);
/* The event plane's listener (events/events.h), once started: the event
 * watch streams know from its head whether there is anything to read, and
 * /metrics shows its counters. It outlives the server's requests. */
struct events_listener;
void gw_events_set(struct gw *gw, struct events_listener *l);
/* The OpenAPI 3 document for the routes (new reference). */
json_t *gw_openapi(void);

#endif
