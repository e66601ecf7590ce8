#include <string.h>
#include <strings.h>

#include "deployments/deployment.h"
#include "inventory/inventory.h"
#include "gateway/gw_int.h"
#include "pools/pool.h"

static void gw_node_answer(struct http_response *res, int rc, json_t *j, const struct nova_err *err)
{
	if (rc)
		http_response_error(res, err);
	else
		http_response_json(res, 200, j);
}

void gw_node_list(struct gw *gw, struct gw_call *call, struct http_request *req,
		  struct http_response *res)
{
	struct nova_err err;
	json_t *list = NULL;
	(void)call;
	nova_err_clear(&err);
	int rc = pool_nodes_json(&list, gw->deps.db, http_request_query(req, "pool"), &err);
	gw_node_answer(res, rc, list, &err);
}

void gw_node_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		 struct http_response *res)
{
	struct nova_err err;
	json_t *node = NULL, *replicas = NULL;
	(void)call;
	nova_err_clear(&err);
	int rc = pool_node_json(&node, gw->deps.db, http_request_param(req, "node"), &err);
	if (!rc)
		rc = deployment_replicas_on_node(&replicas, gw->deps.db,
						 json_string_value(json_object_get(node, "id")), &err);
	if (!rc)
		json_object_set_new(node, "replicas", replicas);
	else
		json_decref(node);
	gw_node_answer(res, rc, rc ? NULL : node, &err);
}

static void gw_node_cordon_set(struct gw *gw, struct gw_call *call, struct http_request *req,
			       struct http_response *res, bool cordoned)
{
	struct nova_err err;
	json_t *node = NULL;
	nova_err_clear(&err);
	int rc = pool_node_cordon(&node, gw->deps.db, http_request_param(req, "node"), cordoned,
				  call->audit, &err);
	gw_node_answer(res, rc, node, &err);
}

void gw_node_cordon(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	gw_node_cordon_set(gw, call, req, res, true);
}

void gw_node_uncordon(struct gw *gw, struct gw_call *call, struct http_request *req,
		      struct http_response *res)
{
	gw_node_cordon_set(gw, call, req, res, false);
}

void gw_node_drain(struct gw *gw, struct gw_call *call, struct http_request *req,
		   struct http_response *res)
{
	struct nova_err err;
	json_t *node = NULL;
	nova_err_clear(&err);
	int rc = pool_node_drain(&node, gw->deps.db, http_request_param(req, "node"), call->audit,
				 &err);
	gw_node_answer(res, rc, node, &err);
}

void gw_heartbeat(struct gw *gw, struct gw_call *call, struct http_request *req,
		  struct http_response *res)
{
	const char *auth = http_request_header(req, "Authorization");
	struct nova_err err;
	json_t *body;
	char *answer = NULL;
	(void)call;
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
		atomic_fetch_add(&gw->heartbeats[GW_HB_NO_TOKEN], 1);
		http_response_header_add(res, "WWW-Authenticate", "Bearer realm=\"nova-node\"");
		http_response_errorf(res, NOVA_EUNAUTH, "", "a node token is required");
		return;
	}
	if (!(body = gw_body_json(req, res))) {
		atomic_fetch_add(&gw->heartbeats[GW_HB_INVALID], 1);
		return;
	}
	nova_err_clear(&err);
	int rc = inventory_heartbeat(&answer, gw->deps.inventory, http_request_param(req, "node"),
				     auth + 7, body, &err);
	json_decref(body);
	enum gw_hb_result how = rc == 0 ? GW_HB_ACCEPTED
				: rc == NOVA_EUNAUTH ? GW_HB_UNAUTHENTICATED
				: rc == NOVA_EINVAL || rc == NOVA_ETOOBIG ? GW_HB_INVALID
				: rc == NOVA_EUNAVAIL ? GW_HB_UNAVAILABLE : GW_HB_ERROR;
	atomic_fetch_add(&gw->heartbeats[how], 1);
	if (rc)
		http_response_error(res, &err);
	else
		http_response_json_text(res, 200, answer);
}
