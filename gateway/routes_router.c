#include <stdlib.h>

#include "core/notify.h"
#include "gateway/gw_int.h"
#include "inventory/demand.h"

/* nova-router polls this every second (auth.h: auth_router_keys): a
 * matching If-None-Match is 304 without a body, so a steady poll costs a
 * compare and at most one small query per AUTH_ROUTER_KEYS_TTL_MS for all
 * routers together. Rejected: a stream of key changes (as the route watch
 * is), which would need change events for keys from every novad sharing
 * the database, and a poll of a few hundred bytes a second is already
 * cheap; the 2 s bound on a revocation holds with a 1 s poll. */
void gw_router_keys(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	char etag[AUTH_ROUTER_KEYS_ETAG_LEN], *text = NULL;
	struct nova_err err;
	(void)call;
	nova_err_clear(&err);
	if (auth_router_keys(&text, etag, gw->deps.auth, &err)) {
		http_response_error(res, &err);
		return;
	}
	http_response_header_add(res, "ETag", etag);
	http_response_header_add(res, "Cache-Control", "no-store");
	if (http_etag_match(http_request_header(req, "If-None-Match"), etag)) {
		res->status = 304;
		free(text);
		return;
	}
	http_response_json_text(res, 200, text);
}

/* A router's demand report (inventory/demand.h): checked field by field
 * (400 naming it), stored as that router's demand; 204. The database away
 * is 503, as on other routes; the router logs once and reports again. */
void gw_router_demand_post(struct gw *gw, struct gw_call *call, struct http_request *req,
			   struct http_response *res)
{
	struct nova_err err;
	json_t *body = gw_body_json(req, res);
	(void)call;
	if (!body)
		return;
	nova_err_clear(&err);
	if (inventory_demand_report(gw->deps.db, body, &err)) {
		http_response_error(res, &err);
	} else {
		const char *key;
		json_t *e;
		bool waiting = false;
		json_object_foreach(json_object_get(body, "models"), key, e)
			waiting = waiting || json_integer_value(json_object_get(e, "waiting")) > 0;
		if (waiting)
			notify_signal(gw->deps.autoscale);
		res->status = 204;
	}
	json_decref(body);
}

void gw_router_demand_get(struct gw *gw, struct gw_call *call, struct http_request *req,
			  struct http_response *res)
{
	struct nova_err err;
	json_t *out = NULL;
	(void)call, (void)req;
	nova_err_clear(&err);
	if (inventory_demand_json(&out, gw->deps.db, &err)) {
		http_response_error(res, &err);
		return;
	}
	http_response_header_add(res, "Cache-Control", "no-store");
	http_response_json(res, 200, out);
}
