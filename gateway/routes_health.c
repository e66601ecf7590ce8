#include "gateway/gw_int.h"

void gw_health(struct gw *gw, const struct auth_principal *who, struct http_request *req,
	       struct http_response *res)
{
	(void)gw, (void)who, (void)req;
	http_response_json(res, 200, json_pack("{s:s, s:s}", "status", "ok", "version", NOVA_VERSION));
}

void gw_ready(struct gw *gw, const struct auth_principal *who, struct http_request *req,
	      struct http_response *res)
{
	struct nova_err err;
	(void)who, (void)req;
	nova_err_clear(&err);
	if (db_ping(gw->deps.db, &err) != 0 ||
	    db_migrations_check(gw->deps.db, gw->deps.migrations, gw->deps.n_migrations, &err) != 0) {
		/* Not ready is 503 whatever the cause, so load balancers act on it. */
		err.code = NOVA_EUNAVAIL;
		http_response_error(res, &err);
		return;
	}
	http_response_json(res, 200, json_pack("{s:s}", "status", "ready"));
}

void gw_openapi_get(struct gw *gw, const struct auth_principal *who, struct http_request *req,
		    struct http_response *res)
{
	(void)gw, (void)who, (void)req;
	http_response_json(res, 200, gw_openapi());
}
