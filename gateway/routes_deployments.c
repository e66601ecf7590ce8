#include "deployments/deployment.h"
#include "gateway/gw_int.h"
#include "inventory/routes.h"

static void gw_dep_answer(struct http_response *res, int status, int rc, json_t *d,
			  const struct nova_err *err)
{
	if (rc)
		http_response_error(res, err);
	else
		http_response_json(res, status, d);
}

/* stop, start: one change of the deployment the path names. */
static void gw_dep_change(struct gw *gw, struct gw_call *call, struct http_request *req,
			  struct http_response *res,
			  int (*op)(json_t **, struct db_pool *, struct notify *, const char *,
				    struct audit_note *, struct nova_err *))
{
	struct nova_err err;
	json_t *d = NULL;
	nova_err_clear(&err);
	int rc = op(&d, gw->deps.db, gw->deps.work, http_request_param(req, "deployment"),
		    call->audit, &err);
	gw_dep_answer(res, 200, rc, d, &err);
}

void gw_deployment_create(struct gw *gw, struct gw_call *call,
			  struct http_request *req, struct http_response *res)
{
	struct deployment_spec spec;
	struct nova_err err;
	json_t *body = gw_body_json(req, res), *d = NULL;
	if (!body)
		return;
	nova_err_clear(&err);
	int rc = deployment_spec_from_json(&spec, body, &err);
	if (json_is_string(json_object_get(body, "name")))
		gw_call_object(call, "%s", json_string_value(json_object_get(body, "name")));
	if (!rc)
		rc = deployment_create(&d, gw->deps.db, gw->deps.work, &spec, call->audit, &err);
	gw_dep_answer(res, 201, rc, d, &err);
	json_decref(body);
}

void gw_deployment_list(struct gw *gw, struct gw_call *call, struct http_request *req,
			struct http_response *res)
{
	struct nova_err err;
	json_t *list = NULL;
	(void)call, (void)req;
	nova_err_clear(&err);
	int rc = deployment_list(&list, gw->deps.db, &err);
	gw_dep_answer(res, 200, rc, list, &err);
}

void gw_deployment_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		       struct http_response *res)
{
	struct nova_err err;
	json_t *d = NULL;
	(void)call;
	nova_err_clear(&err);
	int rc = deployment_get(&d, gw->deps.db, http_request_param(req, "deployment"), &err);
	gw_dep_answer(res, 200, rc, d, &err);
}

void gw_deployment_update(struct gw *gw, struct gw_call *call,
			  struct http_request *req, struct http_response *res)
{
	struct deployment_patch patch;
	struct nova_err err;
	json_t *body = gw_body_json(req, res), *d = NULL;
	if (!body)
		return;
	nova_err_clear(&err);
	int rc = deployment_patch_from_json(&patch, body, &err);
	if (!rc)
		rc = deployment_update(&d, gw->deps.db, gw->deps.work,
				       http_request_param(req, "deployment"), &patch, call->audit, &err);
	/* A new count moves replicas between serving and standby: the routes
	 * follow at once. */
	if (!rc && gw->deps.routes)
		inventory_routes_refresh_soon(gw->deps.routes);
	gw_dep_answer(res, 200, rc, d, &err);
	json_decref(body);
}

void gw_deployment_stop(struct gw *gw, struct gw_call *call, struct http_request *req,
		       struct http_response *res)
{
	gw_dep_change(gw, call, req, res, deployment_stop);
}

void gw_deployment_start(struct gw *gw, struct gw_call *call, struct http_request *req,
		       struct http_response *res)
{
	gw_dep_change(gw, call, req, res, deployment_start);
}

void gw_deployment_delete(struct gw *gw, struct gw_call *call,
			  struct http_request *req, struct http_response *res)
{
	struct nova_err err;
	nova_err_clear(&err);
	if (deployment_delete(gw->deps.db, http_request_param(req, "deployment"), call->audit, &err))
		http_response_error(res, &err);
	else
		res->status = 204;
}

/* POST /v1/deployments/{d}/promote and /rollback (deployments/deployment.h,
 * "Rollouts"): the routing table follows at once (a canary's split goes,
 * or the previous version's replicas come back into it). */
void gw_deployment_promote(struct gw *gw, struct gw_call *call, struct http_request *req,
			   struct http_response *res)
{
	struct nova_err err;
	json_t *d = NULL;
	nova_err_clear(&err);
	int rc = deployment_rollout_promote(&d, gw->deps.db, gw->deps.work,
					    http_request_param(req, "deployment"), call->audit, &err);
	if (!rc && gw->deps.routes)
		inventory_routes_refresh_soon(gw->deps.routes);
	gw_dep_answer(res, 200, rc, d, &err);
}

void gw_deployment_rollback(struct gw *gw, struct gw_call *call, struct http_request *req,
			    struct http_response *res)
{
	struct nova_err err;
	json_t *d = NULL;
	nova_err_clear(&err);
	int rc = deployment_rollout_rollback(&d, gw->deps.db, gw->deps.work,
					     http_request_param(req, "deployment"),
					     "rollback requested", call->audit, &err);
	if (!rc && gw->deps.routes)
		inventory_routes_refresh_soon(gw->deps.routes);
	gw_dep_answer(res, 200, rc, d, &err);
}
