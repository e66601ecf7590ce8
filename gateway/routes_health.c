#include <string.h>

#include "core/assets.h"
#include "gateway/gw_int.h"
#include "inventory/inventory.h"
#include "inventory/routes.h"

void gw_health(struct gw *gw, struct gw_call *call, struct http_request *req,
	       struct http_response *res)
{
	(void)gw, (void)call, (void)req;
	http_response_json(res, 200, json_pack("{s:s, s:s}", "status", "ok", "version", NOVA_VERSION));
}

/* Ready means able to serve: the routing table is loaded (the heartbeats
 * and route reads that keep the fleet up are served from memory) and the
 * schema is this binary's. A database that is away makes novad degraded,
 * not unready: it is said in the body, with the answer still 200, because
 * every novad shares that database, and a probe failing on all of them at
 * once would take every novad out of its load balancer, routes included,
 * for an outage they ride through. Rejected: 503 whenever the database
 * does not answer, as before (the cascade above). */
void gw_ready(struct gw *gw, struct gw_call *call, struct http_request *req,
	      struct http_response *res)
{
	struct nova_err err;
	struct inventory_status st;
	char routes_error[160];
	(void)call, (void)req;
	nova_err_clear(&err);
	inventory_status_get(&st, gw->deps.inventory);
	long long routes_age = inventory_routes_age_ms(gw->deps.routes, routes_error);
	bool db_ok = st.database_ok && !routes_error[0];
	bool schema_ok = true;
	if (db_ok && db_migrations_check(gw->deps.db, gw->deps.migrations, gw->deps.n_migrations,
					 &err) != 0) {
		if (err.code == NOVA_EUNAVAIL && !strstr(err.message, "not applied yet"))
			db_ok = false; /* it went away just now */
		else
			schema_ok = false;
	}
	bool ready = routes_age >= 0 && schema_ok;
	json_t *body = json_pack(
		"{s:s, s:{s:{s:b, s:s}, s:{s:b, s:I, s:I, s:I, s:I}, s:{s:b, s:I, s:b}, s:{s:b, s:I}}}",
		"status", !ready ? "not ready" : db_ok ? "ready" : "degraded", "checks",
		"database", "ok", db_ok, "error",
		db_ok ? "" : st.database_error[0] ? st.database_error : routes_error,
		"heartbeats", "ok", st.database_ok, "flush_age_ms", (json_int_t)st.flush_age_ms,
		"pending", (json_int_t)st.nodes_pending, "nodes", (json_int_t)st.nodes_known,
		"interval_ms", (json_int_t)st.interval_ms,
		"routes", "ok", routes_age >= 0 && routes_age <= INVENTORY_ROUTES_STALE_MS, "age_ms",
		(json_int_t)routes_age, "loaded", routes_age >= 0,
		"brake", "ok", st.brakes_engaged == 0, "pools_held", (json_int_t)st.brakes_engaged);
	if (!schema_ok)
		json_object_set_new(json_object_get(body, "checks"), "schema",
				    json_pack("{s:b, s:s}", "ok", false, "error", err.message));
	http_response_json(res, ready ? 200 : 503, body);
}

void gw_openapi_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	(void)gw, (void)call, (void)req;
	http_response_json(res, 200, gw_openapi());
}

/* A page compiled in from web/ (core/assets.h), with a policy that lets it
 * load its own script and read the API, nothing else. */
static void gw_asset(struct http_response *res, const char *path)
{
	const struct asset *a = asset_find(path);
	if (!a) {
		http_response_errorf(res, NOVA_ENOTFOUND, "", "no page %s in this build", path);
		return;
	}
	http_response_text(res, 200, a->content_type, (const char *)a->data);
	http_response_header_add(res, "Content-Security-Policy",
				 "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
				 "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
				 "frame-ancestors 'none'; form-action 'none'");
	http_response_header_add(res, "X-Content-Type-Options", "nosniff");
	http_response_header_add(res, "Cache-Control", "no-cache");
}

void gw_docs_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		 struct http_response *res)
{
	(void)gw, (void)call;
	gw_asset(res, strcmp(req->path, "/docs.js") == 0 ? "/docs.js" : "/docs.html");
}

void gw_ui_get(struct gw *gw, struct gw_call *call, struct http_request *req,
	       struct http_response *res)
{
	const char *file = http_request_param(req, "file");
	char path[160];
	(void)gw, (void)call;
	if (!file || !*file)
		file = "index.html";
	if (strlen(file) > 100 || strchr(file, '/')) {
		http_response_errorf(res, NOVA_ENOTFOUND, "", "no such page");
		return;
	}
	snprintf(path, sizeof(path), "/ui/%s", file);
	gw_asset(res, path);
}
