/* The pools API over real HTTP against a real database: create, list, get,
 * update, delete, and bad input of every kind leaving no partial state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "adapters/fake/fake.h"
#include "pools/pool.h"
#include "core/http_client.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static long pool_count(struct testenv *env)
{
	json_t *body;
	assert_int_equal(testenv_http(&body, env, "GET", "/v1/pools", ADMIN, NULL), 200);
	long n = (long)json_array_size(body);
	json_decref(body);
	return n;
}

static void test_pool_create_returns_201_with_the_pool(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	long st = testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
			       "{\"name\":\"gpu-a\",\"provider\":\"fake\",\"config\":{\"nodes\":3},"
			       "\"labels\":{\"zone\":\"eu-1\"},"
			       "\"quotas\":{\"max_nodes\":4,\"accelerator_types\":[\"A100-80G\"]}}");
	assert_int_equal(st, 201);
	assert_string_equal(json_string_value(json_object_get(b, "name")), "gpu-a");
	assert_string_equal(json_string_value(json_object_get(b, "provider")), "fake");
	assert_string_equal(json_string_value(json_object_get(b, "state")), "active");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "config"), "nodes")), 3);
	json_t *q = json_object_get(b, "quotas");
	assert_int_equal(json_integer_value(json_object_get(q, "max_nodes")), 4);
	assert_true(json_is_null(json_object_get(q, "max_accelerators")));
	assert_string_equal(json_string_value(json_array_get(json_object_get(q, "accelerator_types"), 0)),
			    "A100-80G");
	assert_int_equal(strlen(json_string_value(json_object_get(b, "id"))), 36);
	json_decref(b);
}

static void test_pool_get_by_name_and_id_and_list(void **state)
{
	struct testenv *env = *state;
	json_t *b, *g;
	char path[128];
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"p1\",\"provider\":\"fake\"}"), 201);
	snprintf(path, sizeof(path), "/v1/pools/%s", json_string_value(json_object_get(b, "id")));
	assert_int_equal(testenv_http(&g, env, "GET", path, ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(g, "name")), "p1");
	json_decref(g);
	assert_int_equal(testenv_http(&g, env, "GET", "/v1/pools/p1", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(g, "id")),
			    json_string_value(json_object_get(b, "id")));
	json_decref(g);
	assert_int_equal(pool_count(env), 1);
	json_decref(b);
}

static void test_pool_duplicate_name_is_409(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	const char *body = "{\"name\":\"dup\",\"provider\":\"fake\"}";
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN, body), 201);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN, body), 409);
	assert_string_equal(testenv_error_code(b), "already_exists");
	assert_string_equal(testenv_error_field(b), "name");
	json_decref(b);
	assert_int_equal(pool_count(env), 1);
}

static void test_pool_unknown_is_404(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/pools/nope", ADMIN, NULL), 404);
	assert_string_equal(testenv_error_code(b), "not_found");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET",
				      "/v1/pools/00000000-0000-0000-0000-000000000000", ADMIN, NULL),
			 404);
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/pools/nope", ADMIN, NULL), 404);
}

/* Each bad body gets a 400 naming the field, and no pool is written. */
static void test_pool_bad_input_names_the_field_and_writes_nothing(void **state)
{
	struct testenv *env = *state;
	static const struct {
		const char *body;
		const char *field;
	} cases[] = {
		{"{\"name\":", ""},
		{"[]", ""},
		{"{}", "name"},
		{"{\"name\":\"a\"}", "provider"},
		{"{\"name\":7,\"provider\":\"fake\"}", "name"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"extra\":1}", "extra"},
		{"{\"name\":\"Upper\",\"provider\":\"fake\"}", "name"},
		{"{\"name\":\"-a\",\"provider\":\"fake\"}", "name"},
		{"{\"name\":\"a'; DROP TABLE pools; --\",\"provider\":\"fake\"}", "name"},
		{"{\"name\":\"a\",\"provider\":\"nosuch\"}", "provider"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"config\":[]}", "config"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"config\":{\"fail_validate\":\"allocation\"}}",
		 "config.allocation"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"config\":{\"bogus\":1}}", "config.bogus"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"quotas\":{\"max_nodes\":-1}}", "quotas.max_nodes"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"quotas\":{\"max_nodes\":\"3\"}}", "quotas.max_nodes"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"quotas\":{\"maxnodes\":3}}", "quotas.maxnodes"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"quotas\":{\"accelerator_types\":[1]}}",
		 "quotas.accelerator_types"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"labels\":{\"k\":1}}", "labels.k"},
		/* Past 64 bits: jansson's "too big integer", with the field. */
		{"{\"name\":\"a\",\"provider\":\"fake\",\"quotas\":{\"max_nodes\":9223372036854775808}}",
		 "quotas.max_nodes"},
		{"{\"name\":\"a\",\"provider\":\"fake\",\"quotas\":{\"max_accelerators\":-1e999}}",
		 "quotas.max_accelerators"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *b;
		long st = testenv_http(&b, env, "POST", "/v1/pools", ADMIN, cases[i].body);
		if (st != 400 || strcmp(testenv_error_field(b), cases[i].field) != 0)
			fail_msg("case %zu %s: status %ld field \"%s\" (want 400 \"%s\")", i,
				 cases[i].body, st, testenv_error_field(b), cases[i].field);
		assert_true(*json_string_value(json_object_get(json_object_get(b, "error"), "message")));
		json_decref(b);
	}
	assert_int_equal(pool_count(env), 0);
}

static void test_pool_sql_metacharacters_are_stored_verbatim(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	const char *evil = "x'); DELETE FROM pools; --\\\"$1";
	json_t *req = json_pack("{s:s, s:s, s:{s:s}, s:{s:s}}", "name", "meta", "provider", "fake",
				"labels", "note", evil, "config", "accelerator_type", evil);
	char *text = json_dumps(req, 0);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN, text), 201);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/pools/meta", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "labels"), "note")), evil);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(b, "config"), "accelerator_type")), evil);
	json_decref(b);
	/* And as a path segment. */
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/pools/x'%3B%20DROP%20TABLE%20pools", ADMIN,
				      NULL), 404);
	json_decref(b);
	assert_int_equal(pool_count(env), 1);
	free(text);
	json_decref(req);
}

static void test_pool_oversized_body_is_413_and_writes_nothing(void **state)
{
	struct testenv *env = *state;
	size_t n = 100 * 1024;
	char *big = malloc(n + 64);
	json_t *b;
	int off = snprintf(big, n + 64, "{\"name\":\"big\",\"provider\":\"fake\",\"labels\":{\"k\":\"");
	memset(big + off, 'x', n);
	strcpy(big + off + n, "\"}}");
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN, big), 413);
	assert_string_equal(testenv_error_code(b), "too_large");
	json_decref(b);
	assert_int_equal(pool_count(env), 0);
	free(big);
}

static void test_pool_update_quotas(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"q\",\"provider\":\"fake\",\"quotas\":{\"max_nodes\":2}}"),
			 201);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/pools/q", ADMIN,
				      "{\"quotas\":{\"max_accelerators\":16}}"), 200);
	json_t *q = json_object_get(b, "quotas");
	assert_int_equal(json_integer_value(json_object_get(q, "max_nodes")), 2); /* untouched */
	assert_int_equal(json_integer_value(json_object_get(q, "max_accelerators")), 16);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/pools/q", ADMIN,
				      "{\"quotas\":{\"max_nodes\":null}}"), 200);
	assert_true(json_is_null(json_object_get(json_object_get(b, "quotas"), "max_nodes")));
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/pools/q", ADMIN,
				      "{\"quotas\":{\"max_nodes\":true}}"), 400);
	assert_string_equal(testenv_error_field(b), "quotas.max_nodes");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/pools/q", ADMIN, "{\"name\":\"z\"}"), 400);
	assert_string_equal(testenv_error_field(b), "name");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/pools/none", ADMIN,
				      "{\"quotas\":{}}"), 404);
}

static void test_pool_delete_refused_with_nodes_unless_forced(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char node_id[POOL_ID_LEN];
	struct nova_err err;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"busy\",\"provider\":\"fake\"}"), 201);
	char pool_id[POOL_ID_LEN];
	snprintf(pool_id, sizeof(pool_id), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	/* A node the provider holds: intent row first, then the resource. */
	struct pool_node_spec spec = {.name = "n1", .accelerator_type = "FAKE-GPU", .accelerator_count = 1};
	assert_int_equal(pool_node_add(node_id, NULL, 0, env->db, pool_id, &spec, &err), 0);
	assert_int_equal(fake_resource_plant(pool_id, node_id, &err), 0);
	assert_int_equal(pool_node_transition(env->db, node_id, POOL_NODE_READY, "provisioned", &err), 0);

	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/pools/busy", ADMIN, NULL), 409);
	assert_string_equal(testenv_error_code(b), "conflict");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "error"), "hint")),
			       "force"));
	json_decref(b);
	assert_int_equal(fake_resource_count(pool_id), 1);
	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/pools/busy?force=maybe", ADMIN, NULL), 400);
	json_decref(b);

	/* Forced: drained, deprovisioned through the adapter, then removed. */
	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/pools/busy?force=true", ADMIN, NULL), 204);
	assert_int_equal(fake_resource_count(pool_id), 0);
	assert_int_equal(fake_calls(pool_id, FAKE_OP_DEPROVISION), 1);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools/busy", ADMIN, NULL), 404);
}

static void test_pool_forced_delete_interrupted_by_provider_can_be_repeated(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	char node_id[POOL_ID_LEN], pool_id[POOL_ID_LEN];
	struct nova_err err;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"flaky\",\"provider\":\"fake\"}"), 201);
	snprintf(pool_id, sizeof(pool_id), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	struct pool_node_spec spec = {.name = "n1"};
	assert_int_equal(pool_node_add(node_id, NULL, 0, env->db, pool_id, &spec, &err), 0);
	assert_int_equal(fake_resource_plant(pool_id, node_id, &err), 0);
	fake_inject(pool_id, FAKE_OP_DEPROVISION, FAKE_FAULT_TRANSIENT, 1, 0);

	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/pools/flaky?force=true", ADMIN, NULL), 503);
	json_decref(b);
	/* The intent is recorded: the pool is marked deleting, its node is not lost. */
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/pools/flaky", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "state")), "deleting");
	assert_int_equal(json_integer_value(json_object_get(b, "node_count")), 1);
	json_decref(b);
	/* No new nodes may join a pool being deleted. */
	struct pool_node_spec spec2 = {.name = "n2"};
	char other[POOL_ID_LEN];
	assert_int_equal(pool_node_add(other, NULL, 0, env->db, pool_id, &spec2, &err), NOVA_ECONFLICT);

	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/pools/flaky?force=true", ADMIN, NULL), 204);
	assert_int_equal(fake_resource_count(pool_id), 0);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools/flaky", ADMIN, NULL), 404);
}

static void test_unknown_route_and_method_are_json_errors(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/nothing", ADMIN, NULL), 404);
	assert_string_equal(testenv_error_code(b), "not_found");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "PUT", "/v1/pools", ADMIN, "{}"), 405);
	json_decref(b);
}

static void test_openapi_describes_every_route(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "GET", "/openapi.json", NULL, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "openapi")), "3.0.3");
	json_t *paths = json_object_get(b, "paths");
	static const char *const expect[][2] = {
		{"/healthz", "get"}, {"/readyz", "get"}, {"/v1/pools", "post"}, {"/v1/pools", "get"},
		{"/v1/pools/{pool}", "get"}, {"/v1/pools/{pool}", "patch"},
		{"/v1/pools/{pool}", "delete"}, {"/v1/apikeys", "post"}, {"/v1/apikeys", "get"},
		{"/v1/apikeys/{id}", "delete"}, {"/v1/models", "post"}, {"/v1/models", "get"},
		{"/v1/models/{model}", "get"}, {"/v1/models/{model}", "delete"},
		{"/v1/deployments", "post"}, {"/v1/deployments", "get"},
		{"/v1/deployments/{deployment}", "get"}, {"/v1/deployments/{deployment}", "patch"},
		{"/v1/deployments/{deployment}", "delete"}, {"/v1/deployments/{deployment}/stop", "post"},
		{"/v1/deployments/{deployment}/start", "post"}, {"/v1/nodes", "get"},
		{"/v1/nodes/{node}", "get"}, {"/v1/nodes/{node}/cordon", "post"},
		{"/v1/nodes/{node}/uncordon", "post"}, {"/v1/nodes/{node}/drain", "post"},
	};
	for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		if (!json_object_get(json_object_get(paths, expect[i][0]), expect[i][1]))
			fail_msg("openapi lacks %s %s", expect[i][1], expect[i][0]);
	/* The load hints, KV-cache use among them, are described. */
	json_t *load = json_object_get(json_object_get(json_object_get(b, "components"), "schemas"), "Load");
	assert_non_null(json_object_get(json_object_get(load, "properties"), "kv_cache_usage"));
	assert_non_null(json_object_get(json_object_get(load, "properties"), "queue_depth"));
	/* Every $ref points at a schema that exists. */
	char *text = json_dumps(b, 0);
	json_t *schemas = json_object_get(json_object_get(b, "components"), "schemas");
	for (char *p = strstr(text, "#/components/schemas/"); p; p = strstr(p + 1, "#/components/schemas/")) {
		char name[64];
		sscanf(p + strlen("#/components/schemas/"), "%63[A-Za-z]", name);
		if (!json_object_get(schemas, name))
			fail_msg("dangling schema ref %s", name);
	}
	free(text);
	json_decref(b);
}

static void test_health_and_ready(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "GET", "/healthz", NULL, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "status")), "ok");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/readyz", NULL, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "status")), "ready");
	json_t *checks = json_object_get(b, "checks");
	assert_true(json_is_true(json_object_get(json_object_get(checks, "database"), "ok")));
	assert_true(json_is_true(json_object_get(json_object_get(checks, "routes"), "loaded")));
	assert_true(json_is_true(json_object_get(json_object_get(checks, "brake"), "ok")));
	json_decref(b);
}

/* /metrics is Prometheus text: HELP and TYPE before each family, every
 * sample "name value" or "name{labels} value", and it needs a credential. */
static void test_metrics_are_prometheus_text(void **state)
{
	struct testenv *env = *state;
	struct http_client_response r = {0};
	struct nova_err err;
	char url[300], *line, *save = NULL;
	snprintf(url, sizeof(url), "%s/metrics", env->url);
	struct http_client_request req = {.method = "GET", .url = url, .bearer_token = ADMIN};
	assert_int_equal(http_client_do(&r, &req, &err), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\nnova_database_up 1\n"));
	assert_non_null(strstr(r.body, "# TYPE nova_inventory_brake_engaged gauge\n"));
	assert_non_null(strstr(r.body, "nova_routes_age_seconds "));
	int samples = 0;
	for (line = strtok_r(r.body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[128];
		double v;
		if (line[0] == '#') {
			assert_true(!strncmp(line, "# HELP nova_", 12) || !strncmp(line, "# TYPE nova_", 12));
			continue;
		}
		if (sscanf(line, "%127[a-z_]%*[^ ] %lf", name, &v) != 2 && sscanf(line, "%127[a-z_] %lf", name, &v) != 2)
			fail_msg("not a sample: %s", line);
		samples++;
	}
	assert_true(samples >= 8);
	http_client_response_finish(&r);
	req.bearer_token = NULL;
	assert_int_equal(http_client_do(&r, &req, &err), 0);
	assert_int_equal(r.status, 401);
	http_client_response_finish(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pool_create_returns_201_with_the_pool, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_metrics_are_prometheus_text, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_get_by_name_and_id_and_list, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_duplicate_name_is_409, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_unknown_is_404, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_bad_input_names_the_field_and_writes_nothing, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_sql_metacharacters_are_stored_verbatim, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_oversized_body_is_413_and_writes_nothing, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_update_quotas, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_delete_refused_with_nodes_unless_forced, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_pool_forced_delete_interrupted_by_provider_can_be_repeated, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_route_and_method_are_json_errors, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_openapi_describes_every_route, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_health_and_ready, testenv_setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
