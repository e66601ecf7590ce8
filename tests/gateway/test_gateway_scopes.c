/* Scopes over real HTTP: every route of the route table (as /openapi.json
 * lists it) called with no credential, the admin token and a key of each
 * scope, against a table of expected scopes written here by hand; the
 * admin token as X-Admin-Secret; two credentials at once; expiry (from the
 * database and from the key cache); the bad-input sweep over scopes and
 * expires_at; a key from before sql/0010 working as write + read. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/secret.h"
#include "tests/support/testdb.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

/* The scope each route needs, written out by hand: a route that changes
 * scope, appears or disappears without this table changing fails. */
static const struct {
	const char *method, *pattern, *need; /* need: "public", "node" or a scope */
} expected[] = {
	{"GET", "/healthz", "public"},
	{"GET", "/readyz", "public"},
	{"GET", "/openapi.json", "public"},
	{"GET", "/docs", "public"},
	{"GET", "/docs.js", "public"},
	{"GET", "/ui", "public"},
	{"GET", "/ui/{file}", "public"},
	{"GET", "/metrics", "read"},
	{"POST", "/v1/pools", "write"},
	{"GET", "/v1/pools", "read"},
	{"GET", "/v1/pools/{pool}", "read"},
	{"PATCH", "/v1/pools/{pool}", "write"},
	{"DELETE", "/v1/pools/{pool}", "write"},
	{"GET", "/v1/nodes", "read"},
	{"GET", "/v1/nodes/{node}", "read"},
	{"POST", "/v1/nodes/{node}/heartbeat", "node"},
	{"POST", "/v1/nodes/{node}/cordon", "write"},
	{"POST", "/v1/nodes/{node}/uncordon", "write"},
	{"POST", "/v1/nodes/{node}/drain", "write"},
	{"GET", "/v1/routes", "routes"},
	{"GET", "/v1/routes/watch", "routes"},
	{"GET", "/v1/router/keys", "router"},
	{"POST", "/v1/router/demand", "router"},
	{"GET", "/v1/router/demand", "read"},
	{"POST", "/v1/models", "write"},
	{"GET", "/v1/models", "read"},
	{"GET", "/v1/models/{model}", "read"},
	{"DELETE", "/v1/models/{model}", "write"},
	{"POST", "/v1/deployments", "write"},
	{"GET", "/v1/deployments", "read"},
	{"GET", "/v1/deployments/{deployment}", "read"},
	{"PATCH", "/v1/deployments/{deployment}", "write"},
	{"POST", "/v1/deployments/{deployment}/stop", "write"},
	{"POST", "/v1/deployments/{deployment}/promote", "write"},
	{"POST", "/v1/deployments/{deployment}/rollback", "write"},
	{"POST", "/v1/deployments/{deployment}/start", "write"},
	{"DELETE", "/v1/deployments/{deployment}", "write"},
	{"GET", "/v1/deployments/{deployment}/replicas/{replica}/logs", "read"},
	{"POST", "/v1/apikeys", "admin"},
	{"GET", "/v1/apikeys", "admin"},
	{"DELETE", "/v1/apikeys/{id}", "admin"},
	{"GET", "/v1/events", "read"},
	{"GET", "/v1/events/watch", "read"},
	{"GET", "/v1/audit", "admin"},
};
#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static const char *const scopes[] = {"admin", "write", "read", "routes", "router", "inference"};
#define N_SCOPES 6

/* Which held scope may use a route needing need, written out: admin all;
 * read and router also routes; nothing else implies anything. */
static int may(const char *held, const char *need)
{
	if (!strcmp(held, "admin") || !strcmp(held, need))
		return 1;
	return !strcmp(need, "routes") && (!strcmp(held, "read") || !strcmp(held, "router"));
}

/* Create a key with a JSON array of scopes; returns the secret (caller
 * frees), writes its id when id is not NULL. */
static char *make_key(struct testenv *env, const char *scopes_json, char id[64])
{
	json_t *b;
	char body[256];
	snprintf(body, sizeof(body), "{\"name\":\"k\",\"scopes\":%s}", scopes_json);
	long st = testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, body);
	if (st != 201)
		fail_msg("create key %s: %ld %s", scopes_json, st, json_dumps(b, 0));
	char *key = strdup(json_string_value(json_object_get(b, "key")));
	if (id)
		snprintf(id, 64, "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	return key;
}

/* The status of a request whose answer is an endless stream (the watch,
 * when allowed): only the status line is read. */
static long status_only(struct testenv *env, const char *method, const char *path,
			const char *token)
{
	unsigned port = (unsigned)atoi(strrchr(env->url, ':') + 1);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};
	char req[512], buf[64];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("connect");
	int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\n%s%s%sConnection: close\r\n\r\n",
			 method, path, token ? "Authorization: Bearer " : "", token ? token : "",
			 token ? "\r\n" : "");
	assert_int_equal(send(fd, req, (size_t)n, 0), n);
	while (got < 12) {
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return got >= 12 ? strtol(buf + 9, NULL, 10) : -1;
}

/* The pattern with each {param} made "x". */
static void fill_path(char *out, size_t len, const char *pattern)
{
	size_t o = 0;
	for (const char *p = pattern; *p && o + 2 < len; p++) {
		if (*p == '{') {
			out[o++] = 'x';
			p = strchr(p, '}');
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
}

static bool node_refused(long st)
{
	return st == 401 || st == 403 || st == 404;
}

static long call(json_t **b, struct testenv *env, const char *method, const char *pattern,
		 const char *token, bool stream)
{
	char path[256];
	fill_path(path, sizeof(path), pattern);
	if (stream) {
		*b = NULL;
		return status_only(env, method, path, token);
	}
	/* "{}" is refused by every handler that reads a body (400), and "x"
	 * names nothing (404): nothing is changed by the sweep. */
	return testenv_http(b, env, method, path, token,
			    strcmp(method, "GET") && strcmp(method, "DELETE") ? "{}" : NULL);
}

static void test_every_route_answers_each_scope_as_the_table_says(void **state)
{
	struct testenv *env = *state;
	char *keys[N_SCOPES];
	json_t *doc, *paths, *item, *op, *b;
	const char *pattern, *method;
	size_t seen = 0, checked = 0;
	for (size_t s = 0; s < N_SCOPES; s++) {
		char arr[32];
		snprintf(arr, sizeof(arr), "[\"%s\"]", scopes[s]);
		keys[s] = make_key(env, arr, NULL);
	}
	assert_int_equal(testenv_http(&doc, env, "GET", "/openapi.json", NULL, NULL), 200);
	paths = json_object_get(doc, "paths");
	json_object_foreach(paths, pattern, item) {
		json_object_foreach(item, method, op) {
			char upper[16];
			size_t i, e;
			for (i = 0; method[i] && i + 1 < sizeof(upper); i++)
				upper[i] = (char)(method[i] & ~0x20);
			upper[i] = '\0';
			for (e = 0; e < N_EXPECTED; e++)
				if (!strcmp(expected[e].method, upper) && !strcmp(expected[e].pattern, pattern))
					break;
			if (e == N_EXPECTED)
				fail_msg("%s %s is in the route table but not in this test's", upper, pattern);
			seen++;
			const char *need = expected[e].need;
			bool scoped = strcmp(need, "public") && strcmp(need, "node");
			bool stream = !strcmp(pattern, "/v1/routes/watch") ||
				      !strcmp(pattern, "/v1/events/watch");
			/* The document says the same. */
			const char *xs = json_string_value(json_object_get(op, "x-nova-scope"));
			json_t *sec = json_object_get(op, "security");
			if (scoped) {
				json_t *want = json_pack("[{s:[s]}]", "bearer", need);
				if (!xs || strcmp(xs, need) || !json_equal(sec, want))
					fail_msg("%s %s: openapi says %s", upper, pattern, xs ? xs : "(none)");
				json_decref(want);
			} else if (!strcmp(need, "public")) {
				assert_true(json_is_array(sec) && json_array_size(sec) == 0);
			}
			/* No credential. */
			long st = call(&b, env, upper, pattern, NULL, false);
			if (scoped || !strcmp(need, "node")) {
				if (st != 401)
					fail_msg("%s %s without a credential: %ld, want 401", upper, pattern, st);
			} else if (st == 401 || st == 403 || st < 0) {
				fail_msg("%s %s is public but answered %ld", upper, pattern, st);
			}
			json_decref(b);
			/* The admin token. A node's heartbeat takes its node token only:
			 * for the node "x" that does not exist the handler says 404 or
			 * 401, never 2xx. */
			st = call(&b, env, upper, pattern, ADMIN, stream);
			if (!strcmp(need, "node") ? !node_refused(st) : (st == 401 || st == 403 || st < 0))
				fail_msg("%s %s with the admin token: %ld", upper, pattern, st);
			json_decref(b);
			/* A key of each scope. */
			for (size_t s = 0; s < N_SCOPES; s++) {
				st = call(&b, env, upper, pattern, keys[s],
					  stream && (!scoped || may(scopes[s], need)));
				if (!strcmp(need, "node")) {
					if (!node_refused(st))
						fail_msg("%s %s with a %s key: %ld, want refused (node token only)",
							 upper, pattern, scopes[s], st);
				} else if (!scoped || may(scopes[s], need)) {
					if (st == 401 || st == 403 || st < 0)
						fail_msg("%s %s with a %s key: %ld, want it allowed", upper,
							 pattern, scopes[s], st);
				} else {
					char msg[160];
					snprintf(msg, sizeof(msg), "this route needs the %s scope; this key has %s",
						 need, scopes[s]);
					const char *got = json_string_value(
						json_object_get(json_object_get(b, "error"), "message"));
					if (st != 403 || !got || strcmp(got, msg))
						fail_msg("%s %s with a %s key: %ld \"%s\", want 403 \"%s\"", upper,
							 pattern, scopes[s], st, got ? got : "", msg);
				}
				json_decref(b);
				checked++;
			}
		}
	}
	if (seen != N_EXPECTED)
		fail_msg("the route table has %zu routes, this test expects %zu", seen, N_EXPECTED);
	assert_int_equal(checked, N_EXPECTED * N_SCOPES);
	json_decref(doc);
	for (size_t s = 0; s < N_SCOPES; s++)
		free(keys[s]);
}

static void test_the_403_names_every_scope_the_key_has(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char *key = make_key(env, "[\"routes\",\"read\"]", NULL);
	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/pools/x", key, NULL), 403);
	assert_string_equal(testenv_error_code(b), "forbidden");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "message")),
			    "this route needs the write scope; this key has read, routes");
	json_decref(b);
	free(key);
}

static void test_an_admin_key_may_manage_keys(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char *key = make_key(env, "[\"admin\"]", NULL);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", key,
				      "{\"name\":\"by-admin-key\",\"scopes\":[\"routes\"]}"), 201);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/apikeys", key, NULL), 200);
	assert_int_equal(json_array_size(b), 2);
	json_decref(b);
	free(key);
}

static void test_scopes_and_expiry_are_listed(void **state)
{
	struct testenv *env = *state;
	json_t *b, *k;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN,
				      "{\"name\":\"gw\",\"scopes\":[\"inference\",\"routes\"],"
				      "\"expires_at\":\"2099-01-02T05:04:05.5+02:00\"}"), 201);
	assert_string_equal(json_string_value(json_object_get(b, "expires_at")), "2099-01-02T03:04:05Z");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/apikeys", ADMIN, NULL), 200);
	k = json_array_get(b, 0);
	json_t *want = json_pack("[s, s]", "routes", "inference");
	assert_true(json_equal(json_object_get(k, "scopes"), want));
	assert_string_equal(json_string_value(json_object_get(k, "expires_at")), "2099-01-02T03:04:05Z");
	json_decref(want);
	json_decref(b);
	/* Scopes are fixed: there is no route to change a key. */
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/apikeys/x", ADMIN, "{\"scopes\":[\"admin\"]}"),
			 405);
	json_decref(b);
}

static void test_the_admin_token_is_accepted_as_x_admin_secret(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	const char *const ok[] = {"X-Admin-Secret: " ADMIN, NULL};
	const char *const bad[] = {"X-Admin-Secret: not-the-admin-token-at-all", NULL};
	assert_int_equal(testenv_http_raw(&b, env, "GET", "/v1/apikeys", NULL, NULL, 0, ok), 200);
	json_decref(b);
	assert_int_equal(testenv_http_raw(&b, env, "GET", "/v1/apikeys", NULL, NULL, 0, bad), 401);
	json_decref(b);
	/* It is the admin token's header: an API key there is not looked up. */
	char *key = make_key(env, "[\"admin\"]", NULL), hdr[160];
	snprintf(hdr, sizeof(hdr), "X-Admin-Secret: %s", key);
	const char *const as_secret[] = {hdr, NULL};
	assert_int_equal(testenv_http_raw(&b, env, "GET", "/v1/apikeys", NULL, NULL, 0, as_secret), 401);
	json_decref(b);
	free(key);
}

static void test_two_different_credentials_are_400(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char *key = make_key(env, "[\"read\"]", NULL), hdr[160];
	snprintf(hdr, sizeof(hdr), "X-API-Key: %s", key);
	const char *const api[] = {hdr, NULL};
	const char *const secret[] = {"X-Admin-Secret: " ADMIN, NULL};
	/* A read key as X-API-Key with the admin token as Bearer: neither wins. */
	assert_int_equal(testenv_http_raw(&b, env, "GET", "/v1/apikeys", ADMIN, NULL, 0, api), 400);
	assert_string_equal(testenv_error_field(b), "X-API-Key");
	json_decref(b);
	assert_int_equal(testenv_http_raw(&b, env, "GET", "/v1/pools", key, NULL, 0, secret), 400);
	assert_string_equal(testenv_error_field(b), "X-Admin-Secret");
	json_decref(b);
	/* The same credential twice is one credential. */
	assert_int_equal(testenv_http_raw(&b, env, "GET", "/v1/pools", key, NULL, 0, api), 200);
	json_decref(b);
	assert_int_equal(testenv_http_raw(&b, env, "GET", "/v1/apikeys", ADMIN, NULL, 0, secret), 200);
	json_decref(b);
	free(key);
}

static void test_an_expired_key_is_401(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char id[64];
	char *key = make_key(env, "[\"read\"]", id);
	const char *params[1] = {id};
	struct nova_err err;
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
				      1, params, &err), 0);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/pools", key, NULL), 401);
	assert_string_equal(testenv_error_code(b), "unauthenticated");
	json_decref(b);
	free(key);
}

/* The cache carries the expiry: a key read while valid is refused from
 * memory once its time has come, without asking the database again. */
static void test_a_cached_key_expires_on_time(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char body[160], ts[32];
	time_t t = time(NULL) + 2;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(body, sizeof(body), "{\"name\":\"short\",\"scopes\":[\"read\"],\"expires_at\":\"%s\"}", ts);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, body), 201);
	char *key = strdup(json_string_value(json_object_get(b, "key")));
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools", key, NULL), 200);
	sleep(3);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools", key, NULL), 401);
	free(key);
}

static void test_api_key_scopes_and_expiry_bad_input(void **state)
{
	struct testenv *env = *state;
	static const struct {
		const char *body, *field;
	} cases[] = {
		{"{\"name\":\"a\"}", "scopes"},
		{"{\"name\":\"a\",\"scopes\":[]}", "scopes"},
		{"{\"name\":\"a\",\"scopes\":\"read\"}", "scopes"},
		{"{\"name\":\"a\",\"scopes\":null}", "scopes"},
		{"{\"name\":\"a\",\"scopes\":[\"read\",\"nope\"]}", "scopes[1]"},
		{"{\"name\":\"a\",\"scopes\":[\"read\",\"read\"]}", "scopes[1]"},
		{"{\"name\":\"a\",\"scopes\":[\"\"]}", "scopes[0]"},
		{"{\"name\":\"a\",\"scopes\":[\"READ\"]}", "scopes[0]"},
		{"{\"name\":\"a\",\"scopes\":[7]}", "scopes[0]"},
		{"{\"name\":\"a\",\"scopes\":[\"read\"],\"expires_at\":\"2001-01-01T00:00:00Z\"}", "expires_at"},
		{"{\"name\":\"a\",\"scopes\":[\"read\"],\"expires_at\":\"tomorrow\"}", "expires_at"},
		{"{\"name\":\"a\",\"scopes\":[\"read\"],\"expires_at\":\"2099-02-30T00:00:00Z\"}", "expires_at"},
		{"{\"name\":\"a\",\"scopes\":[\"read\"],\"expires_at\":\"2099-01-01 00:00:00\"}", "expires_at"},
		{"{\"name\":\"a\",\"scopes\":[\"read\"],\"expires_at\":\"2099-01-01T00:00:00\"}", "expires_at"},
		{"{\"name\":\"a\",\"scopes\":[\"read\"],\"expires_at\":\"\"}", "expires_at"},
		{"{\"name\":\"a\",\"scopes\":[\"read\"],\"expires_at\":4102444800}", "expires_at"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *b;
		long st = testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, cases[i].body);
		if (st != 400 || strcmp(testenv_error_field(b), cases[i].field))
			fail_msg("%s: %ld field \"%s\", want 400 field %s", cases[i].body, st,
				 testenv_error_field(b), cases[i].field);
		json_decref(b);
	}
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM api_keys"), 0);
}

/* sql/0010 on a database with a key made before it: the key works as
 * write + read; a row without scopes can no longer be made. */
static void test_a_key_from_before_scopes_is_write_and_read(void **state)
{
	char conninfo[512], hash[SECRET_HEX_SHA256_LEN];
	const char *key = "sk-nova-oldOLD12rest-of-the-old-key-0123456789";
	struct db_pool *db;
	struct auth *a;
	struct auth_principal who;
	struct nova_err err;
	size_t upto9 = 0;
	(void)state;
	while (upto9 < db_migrations_builtin_count &&
	       strncmp(db_migrations_builtin[upto9].name, "0010", 4) != 0)
		upto9++;
	assert_int_equal(upto9, 9);
	assert_int_equal(testdb_create(conninfo, sizeof(conninfo)), 0);
	assert_int_equal(db_pool_create(&db, conninfo, &(struct db_pool_config){.size = 2}, &err), 0);
	if (db_migrate(db, db_migrations_builtin, upto9, &err))
		fail_msg("migrate to 9: %s", err.message);
	secret_sha256_hex(hash, key, strlen(key));
	const char *params[1] = {hash};
	if (db_pool_exec(NULL, db,
			 "INSERT INTO api_keys (name, prefix, key_hash) VALUES ('old', 'sk-nova-oldOLD12', $1)",
			 1, params, &err))
		fail_msg("insert: %s", err.message);
	if (db_migrate(db, db_migrations_builtin, db_migrations_builtin_count, &err))
		fail_msg("migrate: %s", err.message);
	assert_int_equal(auth_create(&a, db, ADMIN, &err), 0);
	char bearer[128];
	snprintf(bearer, sizeof(bearer), "Bearer %s", key);
	assert_int_equal(auth_authenticate(&who, a, &(struct auth_headers){.authorization = bearer}, &err), 0);
	assert_int_equal(who.kind, AUTH_APIKEY);
	assert_int_equal(who.scopes, AUTH_SCOPE_WRITE | AUTH_SCOPE_READ);
	/* No default any more, and the CHECK holds the names. */
	assert_int_not_equal(db_pool_exec(NULL, db,
					  "INSERT INTO api_keys (name, prefix, key_hash) VALUES "
					  "('new', 'sk-nova-newNEW12', repeat('a', 64))", 0, NULL, &err),
			     0);
	assert_int_not_equal(db_pool_exec(NULL, db,
					  "INSERT INTO api_keys (name, prefix, key_hash, scopes) VALUES "
					  "('new', 'sk-nova-newNEW12', repeat('a', 64), '{all}')", 0, NULL, &err),
			     0);
	auth_destroy(a);
	db_pool_destroy(db);
}

static void test_rfc3339_parse(void **state)
{
	long long t;
	struct nova_err err;
	(void)state;
	assert_int_equal(auth_rfc3339_parse(&t, "1970-01-01T00:00:00Z", "f", &err), 0);
	assert_int_equal(t, 0);
	assert_int_equal(auth_rfc3339_parse(&t, "2030-01-01T01:00:00+01:00", "f", &err), 0);
	assert_int_equal(t, 1893456000);
	assert_int_equal(auth_rfc3339_parse(&t, "2030-01-01t00:00:00.123z", "f", &err), 0);
	assert_int_equal(t, 1893456000);
	assert_int_equal(auth_rfc3339_parse(&t, "2028-02-29T00:00:00Z", "f", &err), 0);
	assert_int_equal(auth_rfc3339_parse(&t, "2030-02-29T00:00:00Z", "f", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "f");
	assert_int_equal(auth_rfc3339_parse(&t, "2030-01-01T24:00:00Z", "f", &err), NOVA_EINVAL);
	assert_int_equal(auth_rfc3339_parse(&t, "2030-01-01T00:00:00+0100", "f", &err), NOVA_EINVAL);
	assert_int_equal(auth_rfc3339_parse(&t, "2030-01-01T00:00:00.Z", "f", &err), NOVA_EINVAL);
	assert_int_equal(auth_rfc3339_parse(&t, "2030-01-01T00:00:00Zjunk", "f", &err), NOVA_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_route_answers_each_scope_as_the_table_says, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_the_403_names_every_scope_the_key_has, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_an_admin_key_may_manage_keys, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_scopes_and_expiry_are_listed, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_the_admin_token_is_accepted_as_x_admin_secret, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_two_different_credentials_are_400, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_an_expired_key_is_401, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_cached_key_expires_on_time, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_api_key_scopes_and_expiry_bad_input, testenv_setup, testenv_teardown),
		cmocka_unit_test(test_a_key_from_before_scopes_is_write_and_read),
		cmocka_unit_test(test_rfc3339_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
