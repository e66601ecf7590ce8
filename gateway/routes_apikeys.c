#include <stdlib.h>
#include <string.h>

#include "gateway/gw_int.h"

static json_t *gw_ts(const char *s)
{
	return *s ? json_string(s) : json_null();
}

static json_t *gw_apikey_json(const struct auth_apikey *k)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", k->id, "name", k->name, "prefix",
			 k->prefix, "created_at", k->created_at, "last_used_at",
			 gw_ts(k->last_used_at), "revoked_at", gw_ts(k->revoked_at));
}

void gw_apikey_create(struct gw *gw, const struct auth_principal *who, struct http_request *req,
		      struct http_response *res)
{
	const char *name = NULL;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .required = true, .out = &name,
		 .max_len = 64},
	};
	struct auth_apikey key;
	char secret[128];
	struct nova_err err;
	json_t *body = gw_body_json(req, res), *out;
	(void)who;
	if (!body)
		return;
	nova_err_clear(&err);
	if (json_decode_object(body, fields, 1, "", &err) ||
	    auth_apikey_create(&key, secret, sizeof(secret), gw->deps.auth, name, &err)) {
		http_response_error(res, &err);
		json_decref(body);
		return;
	}
	out = gw_apikey_json(&key);
	json_object_set_new(out, "key", json_string(secret));
	http_response_json(res, 201, out);
	explicit_bzero(secret, sizeof(secret));
	json_decref(body);
}

void gw_apikey_list(struct gw *gw, const struct auth_principal *who, struct http_request *req,
		    struct http_response *res)
{
	struct auth_apikey *keys = NULL;
	size_t n = 0;
	struct nova_err err;
	(void)who, (void)req;
	nova_err_clear(&err);
	if (auth_apikey_list(&keys, &n, gw->deps.auth, &err)) {
		http_response_error(res, &err);
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, gw_apikey_json(&keys[i]));
	free(keys);
	http_response_json(res, 200, arr);
}

void gw_apikey_revoke(struct gw *gw, const struct auth_principal *who, struct http_request *req,
		      struct http_response *res)
{
	struct nova_err err;
	(void)who;
	nova_err_clear(&err);
	if (auth_apikey_revoke(gw->deps.auth, http_request_param(req, "id"), &err)) {
		http_response_error(res, &err);
		return;
	}
	res->status = 204;
}
