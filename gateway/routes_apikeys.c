#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_int.h"

static json_t *gw_ts(const char *s)
{
	return *s ? json_string(s) : json_null();
}

static json_t *gw_apikey_json(const struct auth_apikey *k)
{
	json_t *scopes = json_array();
	for (unsigned bit = 1; bit & AUTH_SCOPES_ALL; bit <<= 1)
		if (k->scopes & bit)
			json_array_append_new(scopes, json_string(auth_scope_name(bit)));
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o}", "id", k->id, "name", k->name,
			 "prefix", k->prefix, "scopes", scopes, "created_at", k->created_at,
			 "last_used_at", gw_ts(k->last_used_at), "revoked_at", gw_ts(k->revoked_at),
			 "expires_at", gw_ts(k->expires_at));
}

/* scopes: a non-empty array of known names, each once. The index names
 * the culprit ("scopes[1]"). */
static int gw_apikey_scopes(unsigned *out, const json_t *arr, struct nova_err *err)
{
	size_t i;
	json_t *v;
	*out = 0;
	if (!json_is_array(arr))
		return nova_err_set(err, NOVA_EINVAL, "scopes", "scopes must be an array of strings");
	if (json_array_size(arr) == 0) {
		nova_err_set(err, NOVA_EINVAL, "scopes", "scopes must name at least one scope");
		nova_err_set_hint(err, "one or more of admin, write, read, routes, router, inference");
		return NOVA_EINVAL;
	}
	json_array_foreach(arr, i, v) {
		char field[32];
		unsigned bit;
		snprintf(field, sizeof(field), "scopes[%zu]", i);
		if (!json_is_string(v) || auth_scope_parse(&bit, json_string_value(v))) {
			nova_err_set(err, NOVA_EINVAL, field, "%s is not a scope", field);
			nova_err_set_hint(err, "one of admin, write, read, routes, router, inference");
			return NOVA_EINVAL;
		}
		if (*out & bit)
			return nova_err_set(err, NOVA_EINVAL, field, "%s repeats %s", field,
					    json_string_value(v));
		*out |= bit;
	}
	return 0;
}

/* No scopes is 400 "scopes is required": rejected, a default, which
 * would make a key nobody thought about either all-powerful or useless. */
void gw_apikey_create(struct gw *gw, struct gw_call *call, struct http_request *req,
		      struct http_response *res)
{
	const char *name = NULL, *expires_at = NULL;
	json_t *scopes_json = NULL;
	const struct json_field fields[] = {
		{.name = "name", .kind = JSON_KIND_STRING, .required = true, .out = &name,
		 .max_len = 64},
		{.name = "scopes", .kind = JSON_KIND_ANY, .required = true, .out = &scopes_json},
		{.name = "expires_at", .kind = JSON_KIND_STRING, .out = &expires_at, .max_len = 64},
	};
	struct auth_apikey_spec spec = {0};
	struct auth_apikey key;
	char secret[128];
	struct nova_err err;
	json_t *body = gw_body_json(req, res), *out;
	if (!body)
		return;
	nova_err_clear(&err);
	if (json_is_string(json_object_get(body, "name")))
		gw_call_object(call, "%s", json_string_value(json_object_get(body, "name")));
	if (json_decode_object(body, fields, sizeof(fields) / sizeof(fields[0]), "", &err) ||
	    gw_apikey_scopes(&spec.scopes, scopes_json, &err)) {
		http_response_error(res, &err);
		json_decref(body);
		return;
	}
	spec.name = name;
	spec.expires_at = expires_at;
	if (auth_apikey_create(&key, secret, sizeof(secret), gw->deps.auth, &spec, call->audit,
			       &err)) {
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

void gw_apikey_list(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	struct auth_apikey *keys = NULL;
	size_t n = 0;
	struct nova_err err;
	(void)call, (void)req;
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

void gw_apikey_revoke(struct gw *gw, struct gw_call *call, struct http_request *req,
		      struct http_response *res)
{
	struct nova_err err;
	nova_err_clear(&err);
	if (auth_apikey_revoke(gw->deps.auth, http_request_param(req, "id"), call->audit, &err)) {
		http_response_error(res, &err);
		return;
	}
	res->status = 204;
}
