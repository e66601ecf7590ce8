#include "gateway/gw_int.h"
#include "models/model.h"

void gw_model_register(struct gw *gw, struct gw_call *call, struct http_request *req,
		       struct http_response *res)
{
	struct model *m = NULL;
	struct nova_err err;
	json_t *body = gw_body_json(req, res);
	if (!body)
		return;
	nova_err_clear(&err);
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *version = json_string_value(json_object_get(body, "version"));
	if (name)
		gw_call_object(call, "%s%s%s", name, version ? ":" : "", version ? version : "");
	if (model_register(&m, gw->deps.db, body, call->audit, &err))
		http_response_error(res, &err);
	else
		http_response_json(res, 201, model_to_json(m));
	model_free(m);
	json_decref(body);
}

void gw_model_list(struct gw *gw, struct gw_call *call, struct http_request *req,
		   struct http_response *res)
{
	struct model **models = NULL;
	size_t n = 0;
	struct nova_err err;
	(void)call, (void)req;
	nova_err_clear(&err);
	if (model_list(&models, &n, gw->deps.db, &err)) {
		http_response_error(res, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, model_to_json(models[i]));
	model_list_free(models, n);
	http_response_json(res, 200, arr);
}

void gw_model_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		  struct http_response *res)
{
	struct model *m = NULL;
	struct nova_err err;
	(void)call;
	nova_err_clear(&err);
	if (model_get(&m, gw->deps.db, http_request_param(req, "model"), &err))
		http_response_error(res, &err);
	else
		http_response_json(res, 200, model_to_json(m));
	model_free(m);
}

void gw_model_delete(struct gw *gw, struct gw_call *call, struct http_request *req,
		     struct http_response *res)
{
	struct nova_err err;
	nova_err_clear(&err);
	if (model_delete(gw->deps.db, http_request_param(req, "model"), call->audit, &err))
		http_response_error(res, &err);
	else
		res->status = 204;
}
