/* Authentication over real HTTP: the admin token, API keys (created, shown
 * once, stored hashed, revoked), 401 without or with a bad credential, 403
 * with the wrong kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/secret.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

/* Create a write + read key; returns the secret (caller frees) and writes its id. */
static char *make_key(struct testenv *env, const char *name, char id[64])
{
	json_t *b;
	char body[128];
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"scopes\":[\"write\",\"read\"]}", name);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, body), 201);
	const char *key = json_string_value(json_object_get(b, "key"));
	assert_non_null(key);
	assert_memory_equal(key, "sk-nova-", 8);
	snprintf(id, 64, "%s", json_string_value(json_object_get(b, "id")));
	char *copy = strdup(key);
	json_decref(b);
	return copy;
}

static void test_every_v1_route_needs_auth(void **state)
{
	struct testenv *env = *state;
	static const char *const routes[][2] = {
		{"GET", "/v1/pools"}, {"POST", "/v1/pools"}, {"GET", "/v1/pools/x"},
		{"PATCH", "/v1/pools/x"}, {"DELETE", "/v1/pools/x"}, {"GET", "/v1/apikeys"},
		{"POST", "/v1/apikeys"}, {"DELETE", "/v1/apikeys/x"},
	};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		json_t *b;
		long st = testenv_http(&b, env, routes[i][0], routes[i][1], NULL, "{}");
		if (st != 401 || strcmp(testenv_error_code(b), "unauthenticated") != 0)
			fail_msg("%s %s without a token: %ld", routes[i][0], routes[i][1], st);
		json_decref(b);
	}
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools", "not-the-token", NULL), 401);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools", "sk-nova-forgedforgedforged", NULL), 401);
	const char *const basic[] = {"Authorization: Basic YWRtaW46eA==", NULL};
	assert_int_equal(testenv_http_raw(NULL, env, "GET", "/v1/pools", NULL, NULL, 0, basic), 401);
	/* No write happened through any of them. */
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/pools", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(b), 0);
	json_decref(b);
}

static void test_api_key_works_for_pools_but_not_for_key_management(void **state)
{
	struct testenv *env = *state;
	char id[64];
	char *key = make_key(env, "ci", id);
	json_t *b;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", key,
				      "{\"name\":\"by-key\",\"provider\":\"fake\"}"), 201);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/apikeys", key, NULL), 403);
	assert_string_equal(testenv_error_code(b), "forbidden");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/apikeys", key,
				      "{\"name\":\"x\",\"scopes\":[\"admin\"]}"), 403);
	/* X-API-Key is accepted too. */
	char hdr[160];
	snprintf(hdr, sizeof(hdr), "X-API-Key: %s", key);
	const char *const headers[] = {hdr, NULL};
	assert_int_equal(testenv_http_raw(NULL, env, "GET", "/v1/pools", NULL, NULL, 0, headers), 200);
	free(key);
}

static void test_api_key_is_listed_without_secret_and_stored_hashed(void **state)
{
	struct testenv *env = *state;
	char id[64];
	char *key = make_key(env, "ops", id);
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/apikeys", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(b), 1);
	char *text = json_dumps(b, 0);
	assert_null(strstr(text, key));
	assert_null(json_object_get(json_array_get(b, 0), "key"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(b, 0), "name")), "ops");
	free(text);
	json_decref(b);
	/* The database holds the hash, never the key. */
	struct db_conn *c;
	PGresult *res;
	struct nova_err err;
	char hash[SECRET_HEX_SHA256_LEN];
	secret_sha256_hex(hash, key, strlen(key));
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	assert_int_equal(db_exec(&res, c, "SELECT prefix, key_hash FROM api_keys", 0, NULL, &err), 0);
	assert_string_equal(PQgetvalue(res, 0, 1), hash);
	assert_memory_equal(PQgetvalue(res, 0, 0), key, 16);
	PQclear(res);
	db_conn_release(env->db, c);
	free(key);
}

static void test_revoked_key_is_refused(void **state)
{
	struct testenv *env = *state;
	char id[64], path[128];
	char *key = make_key(env, "temp", id);
	json_t *b;
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools", key, NULL), 200);
	snprintf(path, sizeof(path), "/v1/apikeys/%s", id);
	assert_int_equal(testenv_http(NULL, env, "DELETE", path, ADMIN, NULL), 204);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools", key, NULL), 401);
	/* Revoking again is harmless; an unknown id is 404. */
	assert_int_equal(testenv_http(NULL, env, "DELETE", path, ADMIN, NULL), 204);
	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/apikeys/not-an-id", ADMIN, NULL), 404);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/apikeys", ADMIN, NULL), 200);
	assert_true(json_is_string(json_object_get(json_array_get(b, 0), "revoked_at")));
	json_decref(b);
	free(key);
}

/* Keys are checked from memory once read: a key keeps working while the
 * database is away (an unknown one is then 503, never 401), a revocation
 * behind this novad's back takes effect within the cache's TTL, and one
 * through it at once (test_revoked_key_is_refused). */
static void test_a_known_key_works_while_the_database_is_away(void **state)
{
	struct testenv *env = *state;
	struct db_pool *adb;
	struct auth *a;
	struct auth_principal who;
	struct nova_err err;
	struct db_conn *c;
	char id[64], bearer[160];
	char *key = make_key(env, "cached", id);
	snprintf(bearer, sizeof(bearer), "Bearer %s", key);
	/* An auth of its own, on a pool of one connection as a role of its
	 * own, whose connection is then cut and which cannot log in again. */
	char role[64], conninfo[700];
	snprintf(role, sizeof(role), "t_auth_%ld", (long)getpid());
	snprintf(conninfo, sizeof(conninfo), "%s user=%s", env->conninfo, role);
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	{
		const char *p1[1] = {role};
		if (db_exec(NULL, c, "SELECT set_config('nova.role', $1, false)", 1, p1, &err) ||
		    db_exec(NULL, c,
			    "DO $$ BEGIN EXECUTE format('CREATE ROLE %I LOGIN', current_setting('nova.role')); "
			    "EXECUTE format('GRANT SELECT, UPDATE ON api_keys TO %I', current_setting('nova.role')); "
			    "END $$", 0, NULL, &err))
			fail_msg("%s", err.message);
	}
	assert_int_equal(db_pool_create(&adb, conninfo, &(struct db_pool_config){.size = 1}, &err), 0);
	assert_int_equal(auth_create(&a, adb, ADMIN, &err), 0);
	assert_int_equal(auth_authenticate(&who, a, &(struct auth_headers){.authorization = bearer}, &err), 0);
	assert_int_equal(who.kind, AUTH_APIKEY);
	assert_string_equal(who.id, id);
	if (db_exec(NULL, c,
		    "DO $$ BEGIN EXECUTE format('ALTER ROLE %I NOLOGIN', current_setting('nova.role')); END $$",
		    0, NULL, &err) ||
	    db_exec(NULL, c,
		    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = current_setting('nova.role')",
		    0, NULL, &err))
		fail_msg("%s", err.message);
	memset(&who, 0, sizeof(who));
	assert_int_equal(auth_authenticate(&who, a, &(struct auth_headers){.authorization = bearer}, &err), 0);
	assert_string_equal(who.id, id);
	/* With its scopes, from memory. */
	assert_int_equal(who.scopes, AUTH_SCOPE_WRITE | AUTH_SCOPE_READ);
	/* A key it never saw cannot be checked: unavailable, not refused. */
	assert_int_equal(auth_authenticate(&who, a,
					   &(struct auth_headers){.authorization = "Bearer sk-nova-0123456789abcdef0123456789"},
					   &err),
			 NOVA_EUNAVAIL);
	auth_destroy(a);
	db_pool_destroy(adb);
	if (db_exec(NULL, c,
		    "DO $$ BEGIN EXECUTE format('REVOKE ALL ON api_keys FROM %I', current_setting('nova.role')); "
		    "EXECUTE format('DROP ROLE %I', current_setting('nova.role')); END $$", 0, NULL, &err))
		fail_msg("%s", err.message);
	db_conn_release(env->db, c);
	/* Revoked behind the back of a novad that read it: still taken until
	 * its cache's TTL; revoked through it, refused at once. */
	const char *params[1] = {id};
	assert_int_equal(auth_authenticate(&who, env->auth, &(struct auth_headers){.authorization = bearer}, &err), 0);
	assert_int_equal(db_pool_exec(NULL, env->db, "UPDATE api_keys SET revoked_at = now() WHERE id = $1",
				      1, params, &err), 0);
	assert_int_equal(auth_authenticate(&who, env->auth, &(struct auth_headers){.authorization = bearer}, &err), 0);
	assert_int_equal(auth_apikey_revoke(env->auth, id, NULL, &err), 0);
	assert_int_equal(auth_authenticate(&who, env->auth, &(struct auth_headers){.authorization = bearer}, &err), NOVA_EUNAUTH);
	free(key);
}

static void test_api_key_bad_input(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, "{}"), 400);
	assert_string_equal(testenv_error_field(b), "name");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN,
				      "{\"name\":\"a\",\"scopes\":[\"read\"],\"scope\":\"all\"}"), 400);
	assert_string_equal(testenv_error_field(b), "scope");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, "{\"name\":\"a\\nb\",\"scopes\":[\"read\"]}"), 400);
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/apikeys", ADMIN,
				      "{\"name\":\"'; DROP TABLE api_keys; --\",\"scopes\":[\"read\"]}"), 201);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/apikeys", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(json_array_get(b, 0), "name")),
			    "'; DROP TABLE api_keys; --");
	json_decref(b);
}

static void test_admin_token_file_is_created_0600_and_reused(void **state)
{
	char dir[] = "/tmp/nova-auth-XXXXXX", path[200], tok1[256], tok2[256];
	bool gen;
	struct nova_err err;
	struct stat st;
	(void)state;
	assert_non_null(mkdtemp(dir));
	char sub[160];
	snprintf(sub, sizeof(sub), "%s/state", dir);
	assert_int_equal(auth_admin_token_load_or_create(tok1, sizeof(tok1), &gen, sub, &err), 0);
	assert_true(gen);
	snprintf(path, sizeof(path), "%s/admin_token", sub);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(strlen(tok1) >= 32);
	assert_int_equal(auth_admin_token_load_or_create(tok2, sizeof(tok2), &gen, sub, &err), 0);
	assert_false(gen);
	assert_string_equal(tok1, tok2);
	unlink(path);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_v1_route_needs_auth, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_api_key_works_for_pools_but_not_for_key_management, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_api_key_is_listed_without_secret_and_stored_hashed, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_revoked_key_is_refused, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_known_key_works_while_the_database_is_away, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_api_key_bad_input, testenv_setup, testenv_teardown),
		cmocka_unit_test(test_admin_token_file_is_created_0600_and_reused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
