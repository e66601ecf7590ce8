#include <string.h>

#include "gateway/gw_int.h"
#include "deployments/deployment.h"
#include "pools/pool.h"

static void gw_pool_answer(struct http_response *res, int status, int rc, struct pool *p,
			   const struct nova_err *err)
{
	if (rc)
		http_response_error(res, err);
	else
		http_response_json(res, status, pool_to_json(p));
	pool_free(p);
}

void gw_pool_create(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	struct pool_spec spec;
	struct pool *p = NULL;
	struct nova_err err;
	json_t *body = gw_body_json(req, res);
	int rc;
	if (!body)
		return;
	nova_err_clear(&err);
	rc = pool_spec_from_json(&spec, body, &err);
	if (json_is_string(json_object_get(body, "name")))
		gw_call_object(call, "%s", json_string_value(json_object_get(body, "name")));
	if (!rc)
		rc = pool_create(&p, gw->deps.db, &spec, call->audit, &err);
	gw_pool_answer(res, 201, rc, p, &err);
	json_decref(body);
}

void gw_pool_list(struct gw *gw, struct gw_call *call, struct http_request *req,
		  struct http_response *res)
{
	struct pool **pools = NULL;
	size_t n = 0;
	struct nova_err err;
	(void)call, (void)req;
	nova_err_clear(&err);
	if (pool_list(&pools, &n, gw->deps.db, &err)) {
		http_response_error(res, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, pool_to_json(pools[i]));
	pool_list_free(pools, n);
	http_response_json(res, 200, arr);
}

void gw_pool_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		 struct http_response *res)
{
	struct pool *p = NULL;
	struct nova_err err;
	(void)call;
	nova_err_clear(&err);
	int rc = pool_get(&p, gw->deps.db, http_request_param(req, "pool"), &err);
	gw_pool_answer(res, 200, rc, p, &err);
}

void gw_pool_update(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	struct pool_patch patch;
	struct pool *p = NULL;
	struct nova_err err;
	json_t *body = gw_body_json(req, res);
	int rc;
	if (!body)
		return;
	nova_err_clear(&err);
	rc = pool_patch_from_json(&patch, body, &err);
	if (!rc)
		rc = pool_update(&p, gw->deps.db, http_request_param(req, "pool"), &patch, call->audit,
				 &err);
	gw_pool_answer(res, 200, rc, p, &err);
	json_decref(body);
}

void gw_pool_delete(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	const char *force = http_request_query(req, "force");
	struct nova_err err;
	nova_err_clear(&err);
	if (force && strcmp(force, "true") != 0 && strcmp(force, "false") != 0 &&
	    strcmp(force, "1") != 0 && strcmp(force, "0") != 0) {
		http_response_errorf(res, NOVA_EINVAL, "force", "force must be true or false");
		return;
	}
	bool forced = force && (strcmp(force, "true") == 0 || strcmp(force, "1") == 0);
	if (pool_delete(gw->deps.db, http_request_param(req, "pool"), forced,
			&deployment_pool_users, call->audit, &err)) {
		http_response_error(res, &err);
		return;
	}
	res->status = 204;
}
