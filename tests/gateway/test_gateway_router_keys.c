/* GET /v1/router/keys over real HTTP: what nova-router learns of API keys
 * (hashes, scopes, expiry; never a secret), only with the router scope,
 * 304 on an unchanged set, and a revoked or expired key gone at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "core/http_client.h"
#include "core/secret.h"
#include "tests/support/testdb.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

/* A new key with scopes (a JSON array); *id_out (may be NULL) its id. */
static char *make_key(struct testenv *env, const char *scopes, char id_out[64])
{
	char body[256];
	json_t *b;
	snprintf(body, sizeof(body), "{\"name\":\"k\",\"scopes\":%s}", scopes);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, body), 201);
	char *key = strdup(json_string_value(json_object_get(b, "key")));
	if (id_out)
		snprintf(id_out, 64, "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	return key;
}

/* GET /v1/router/keys: the status; *body (may be NULL) the text, *etag
 * (may be NULL) the ETag. */
static long get_keys(struct testenv *env, const char *token, const char *inm, char **body,
		     char etag[64])
{
	char url[256], h[128];
	const char *headers[2] = {NULL, NULL};
	struct http_client_response res = {0};
	struct nova_err err;
	snprintf(url, sizeof(url), "%s/v1/router/keys", env->url);
	if (inm) {
		snprintf(h, sizeof(h), "If-None-Match: %s", inm);
		headers[0] = h;
	}
	struct http_client_request req = {.method = "GET", .url = url, .bearer_token = token,
					  .headers = headers, .timeout_ms = 10000};
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	if (body)
		*body = strdup(res.body ? res.body : "");
	if (etag)
		snprintf(etag, 64, "%s", res.etag ? res.etag : "");
	long status = res.status;
	http_client_response_finish(&res);
	return status;
}

/* The entry of the key whose secret is key, or NULL. */
static json_t *entry_of(json_t *doc, const char *key)
{
	char hash[SECRET_HEX_SHA256_LEN];
	size_t i;
	json_t *e;
	secret_sha256_hex(hash, key, strlen(key));
	json_array_foreach(json_object_get(doc, "keys"), i, e)
		if (!strcmp(json_string_value(json_object_get(e, "hash")), hash))
			return e;
	return NULL;
}

static void test_a_router_key_learns_hashes_and_scopes_never_secrets(void **state)
{
	struct testenv *env = *state;
	char *router = make_key(env, "[\"router\"]", NULL);
	char *inf = make_key(env, "[\"inference\"]", NULL);
	char *rd = make_key(env, "[\"read\"]", NULL);
	char *text = NULL;
	assert_int_equal(get_keys(env, router, NULL, &text, NULL), 200);
	assert_null(strstr(text, AUTH_APIKEY_PREFIX)); /* no secret, nor a part of one */
	assert_null(strstr(text, inf + strlen(AUTH_APIKEY_PREFIX)));
	json_t *doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	json_t *e = entry_of(doc, inf);
	assert_non_null(e);
	json_t *want = json_pack("[s]", "inference");
	assert_true(json_equal(json_object_get(e, "scopes"), want));
	assert_true(json_is_null(json_object_get(e, "expires_at")));
	json_decref(want);
	/* Keys without the scope are there too, so the router can say 403. */
	e = entry_of(doc, rd);
	assert_non_null(e);
	assert_string_equal(json_string_value(json_array_get(json_object_get(e, "scopes"), 0)), "read");
	assert_int_equal(json_array_size(json_object_get(doc, "keys")), 3);
	json_decref(doc);
	free(text);
	free(router), free(inf), free(rd);
}

static void test_only_the_router_scope_reads_the_keys(void **state)
{
	struct testenv *env = *state;
	char *inf = make_key(env, "[\"inference\"]", NULL);
	char *routes = make_key(env, "[\"routes\",\"read\"]", NULL);
	assert_int_equal(get_keys(env, NULL, NULL, NULL, NULL), 401);
	assert_int_equal(get_keys(env, inf, NULL, NULL, NULL), 403);
	assert_int_equal(get_keys(env, routes, NULL, NULL, NULL), 403);
	assert_int_equal(get_keys(env, ADMIN, NULL, NULL, NULL), 200);
	free(inf), free(routes);
}

static void test_an_unchanged_set_is_304_and_a_new_key_changes_the_etag(void **state)
{
	struct testenv *env = *state;
	char *router = make_key(env, "[\"router\"]", NULL);
	char etag[64], etag2[64], *text = NULL;
	assert_int_equal(get_keys(env, router, NULL, NULL, etag), 200);
	assert_true(strncmp(etag, "W/\"", 3) == 0);
	assert_int_equal(get_keys(env, router, etag, &text, NULL), 304);
	assert_string_equal(text, "");
	free(text);
	char *inf = make_key(env, "[\"inference\"]", NULL);
	/* A new key is seen within the read period (a poll every 100 ms). */
	long st = 304;
	for (int i = 0; i < 30 && st == 304; i++) {
		st = get_keys(env, router, etag, NULL, etag2);
		if (st == 304)
			usleep(100 * 1000);
	}
	assert_int_equal(st, 200);
	assert_string_not_equal(etag, etag2);
	free(router), free(inf);
}

static void test_a_revoked_key_is_gone_at_the_next_read(void **state)
{
	struct testenv *env = *state;
	char id[64], path[128], *text = NULL;
	char *router = make_key(env, "[\"router\"]", NULL);
	char *inf = make_key(env, "[\"inference\"]", id);
	assert_int_equal(get_keys(env, router, NULL, &text, NULL), 200);
	json_t *doc = json_loads(text, 0, NULL);
	assert_non_null(entry_of(doc, inf));
	json_decref(doc);
	free(text);
	snprintf(path, sizeof(path), "/v1/apikeys/%s", id);
	assert_int_equal(testenv_http(NULL, env, "DELETE", path, ADMIN, NULL), 204);
	assert_int_equal(get_keys(env, router, NULL, &text, NULL), 200);
	doc = json_loads(text, 0, NULL);
	assert_null(entry_of(doc, inf));
	json_decref(doc);
	free(text);
	free(router), free(inf);
}

static void test_expiry_is_given_and_an_expired_key_left_out(void **state)
{
	struct testenv *env = *state;
	char *router = make_key(env, "[\"router\"]", NULL);
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN,
				      "{\"name\":\"e\",\"scopes\":[\"inference\"],"
				      "\"expires_at\":\"2099-01-02T03:04:05Z\"}"), 201);
	char *later = strdup(json_string_value(json_object_get(b, "key")));
	json_decref(b);
	char *soon = make_key(env, "[\"inference\"]", NULL);
	char hash[SECRET_HEX_SHA256_LEN], sql[256];
	secret_sha256_hex(hash, soon, strlen(soon));
	snprintf(sql, sizeof(sql),
		 "WITH u AS (UPDATE api_keys SET expires_at = now() - interval '1 second' "
		 "WHERE key_hash = '%s' RETURNING 1) SELECT count(*) FROM u", hash);
	assert_int_equal(testenv_query_int(env, sql), 1);
	usleep((AUTH_ROUTER_KEYS_TTL_MS + 100) * 1000);
	char *text = NULL;
	assert_int_equal(get_keys(env, router, NULL, &text, NULL), 200);
	json_t *doc = json_loads(text, 0, NULL);
	json_t *e = entry_of(doc, later);
	assert_non_null(e);
	assert_int_equal(json_integer_value(json_object_get(e, "expires_at")), 4071006245LL);
	assert_null(entry_of(doc, soon));
	json_decref(doc);
	free(text);
	free(router), free(later), free(soon);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_router_key_learns_hashes_and_scopes_never_secrets, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_only_the_router_scope_reads_the_keys, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_an_unchanged_set_is_304_and_a_new_key_changes_the_etag, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_revoked_key_is_gone_at_the_next_read, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_is_given_and_an_expired_key_left_out, testenv_setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
