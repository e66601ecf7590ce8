/* The model registry: every kind's rules, the example files, and the
 * registry's storage (unique name and version, delete refused while used). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/ydoc.h"
#include "models/model.h"
#include "tests/support/testenv.h"

#define ENGINE "\"engine\":{\"image\":\"vllm\"}"
#define ONE "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]"

static int parse(const char *text, struct nova_err *err)
{
	json_t *j = json_loads(text, 0, NULL);
	struct model m;
	assert_non_null(j);
	int rc = model_spec_parse(&m, j, err);
	if (rc == 0)
		json_decref(m.spec);
	json_decref(j);
	return rc;
}

static void test_model_valid_specs_of_every_kind(void **state)
{
	static const char *const ok[] = {
		"{\"name\":\"m\",\"kind\":\"single\"," ENGINE "," ONE "}",
		"{\"name\":\"m\",\"kind\":\"spec_decode\"," ENGINE ",\"stages\":[{\"name\":\"draft\","
		"\"accelerators\":1},{\"name\":\"target\",\"accelerators\":4,\"memory_mib\":81920}]}",
		"{\"name\":\"m\",\"kind\":\"vision\"," ENGINE ",\"stages\":[{\"name\":\"encoder\","
		"\"accelerators\":1},{\"name\":\"llm\",\"accelerators\":2}]}",
		"{\"name\":\"m\",\"kind\":\"lora_static\"," ENGINE "," ONE ",\"adapters\":[\"a\"]}",
		"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE ",\"max_adapters\":4}",
		"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE ",\"max_adapters\":1,"
		"\"adapters\":[\"a\",\"b\",\"c\"]}",
		"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE ",\"max_adapters\":1,"
		"\"adapters\":[]}",
		"{\"name\":\"m.v2_x-y\",\"version\":\"2024.1\",\"kind\":\"single\",\"engine\":{\"command\":"
		"[\"serve\"],\"env\":{\"HF_HOME\":\"/x\"},\"health_path\":\"/health\",\"port\":8000}," ONE "}",
	};
	struct nova_err err;
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (parse(ok[i], &err))
			fail_msg("case %zu refused: %s (%s)", i, err.message, err.field);
}

static void test_model_invalid_specs_name_the_field(void **state)
{
	static const struct {
		const char *spec;
		const char *field;
	} bad[] = {
		{"{\"kind\":\"single\"," ENGINE "," ONE "}", "name"},
		{"{\"name\":\"a/b\",\"kind\":\"single\"," ENGINE "," ONE "}", "name"},
		{"{\"name\":\"m\",\"version\":\"1 0\",\"kind\":\"single\"," ENGINE "," ONE "}", "version"},
		{"{\"name\":\"m\",\"kind\":\"multi\"," ENGINE "," ONE "}", "kind"},
		{"{\"name\":\"m\",\"kind\":\"single\"," ONE "}", "engine"},
		{"{\"name\":\"m\",\"kind\":\"single\",\"engine\":{}," ONE "}", "engine"},
		{"{\"name\":\"m\",\"kind\":\"single\",\"engine\":{\"img\":\"x\"}," ONE "}", "engine.img"},
		{"{\"name\":\"m\",\"kind\":\"single\",\"engine\":{\"command\":[]}," ONE "}", "engine.command"},
		{"{\"name\":\"m\",\"kind\":\"single\",\"engine\":{\"command\":[1]}," ONE "}", "engine.command[0]"},
		{"{\"name\":\"m\",\"kind\":\"single\",\"engine\":{\"image\":\"x\",\"health_path\":\"h\"}," ONE "}",
		 "engine.health_path"},
		{"{\"name\":\"m\",\"kind\":\"single\"," ENGINE ",\"stages\":[]}", "stages"},
		{"{\"name\":\"m\",\"kind\":\"single\"," ENGINE ",\"stages\":[{\"name\":\"main\"}]}",
		 "stages[0].accelerators"},
		{"{\"name\":\"m\",\"kind\":\"single\"," ENGINE ",\"stages\":[{\"name\":\"main\","
		 "\"accelerators\":0}]}", "stages[0].accelerators"},
		{"{\"name\":\"m\",\"kind\":\"single\"," ENGINE ",\"stages\":[{\"name\":\"main\","
		 "\"accelerators\":1,\"gpus\":1}]}", "stages[0].gpus"},
		{"{\"name\":\"m\",\"kind\":\"spec_decode\"," ENGINE "," ONE "}", "stages"},
		{"{\"name\":\"m\",\"kind\":\"spec_decode\"," ENGINE ",\"stages\":[{\"name\":\"target\","
		 "\"accelerators\":1},{\"name\":\"draft\",\"accelerators\":1}]}", "stages[0].name"},
		{"{\"name\":\"m\",\"kind\":\"vision\"," ENGINE ",\"stages\":[{\"name\":\"encoder\","
		 "\"accelerators\":1},{\"name\":\"text\",\"accelerators\":1}]}", "stages[1].name"},
		{"{\"name\":\"m\",\"kind\":\"lora_static\"," ENGINE "," ONE "}", "adapters"},
		{"{\"name\":\"m\",\"kind\":\"lora_static\"," ENGINE "," ONE ",\"adapters\":[]}", "adapters"},
		{"{\"name\":\"m\",\"kind\":\"single\"," ENGINE "," ONE ",\"adapters\":[\"a\"]}", "adapters"},
		{"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE "}", "max_adapters"},
		{"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE ",\"max_adapters\":0}", "max_adapters"},
		{"{\"name\":\"m\",\"kind\":\"single\"," ENGINE "," ONE ",\"max_adapters\":2}", "max_adapters"},
		{"{\"name\":\"m\",\"kind\":\"single\"," ENGINE "," ONE ",\"replicas\":2}", "replicas"},
		{"{\"name\":\"m\",\"kind\":\"lora_static\"," ENGINE "," ONE ",\"adapters\":[\"a\",\"a\"]}",
		 "adapters[1]"},
		{"{\"name\":\"m\",\"kind\":\"lora_static\"," ENGINE "," ONE ",\"adapters\":[\"m\"]}",
		 "adapters[0]"},
		{"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE ",\"max_adapters\":2,"
		 "\"adapters\":\"a\"}", "adapters"},
		{"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE ",\"max_adapters\":2,"
		 "\"adapters\":[\"a\",\"\"]}", "adapters[1]"},
		{"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE ",\"max_adapters\":2,"
		 "\"adapters\":[\"a\",7]}", "adapters[1]"},
		{"{\"name\":\"m\",\"kind\":\"lora_dynamic\"," ENGINE "," ONE ",\"max_adapters\":2,"
		 "\"adapters\":[\"b\",\"a\",\"b\"]}", "adapters[2]"},
		{"{\"name\":\"m\",\"kind\":\"vision\"," ENGINE ",\"stages\":[{\"name\":\"encoder\","
		 "\"accelerators\":1},{\"name\":\"llm\",\"accelerators\":1}],\"adapters\":[\"a\"]}", "adapters"},
	};
	struct nova_err err;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i].spec, &err);
		if (rc != NOVA_EINVAL || strcmp(err.field, bad[i].field) != 0)
			fail_msg("case %zu: rc %d field \"%s\", want field \"%s\"", i, rc, err.field,
				 bad[i].field);
	}
}

#define MOCK(m) "{\"name\":\"m\",\"kind\":\"single\",\"engine\":{\"image\":\"x\",\"mock\":" m "}," ONE "}"

/* engine.mock takes nova-mock-engine's flags by name, each in the range the
 * engine takes; any other member, or a value the engine would refuse, is
 * refused naming engine.mock.X. */
static void test_model_engine_mock_takes_the_mock_engines_flags_in_range(void **state)
{
	static const char *const ok[] = {
		MOCK("{}"),
		MOCK("{\"startup_ms\":0,\"max_num_seqs\":0,\"total_tokens_per_second\":1}"),
		MOCK("{\"startup_ms\":600000,\"max_num_seqs\":100000,\"total_tokens_per_second\":10000000}"),
		MOCK("{\"tokens_per_second\":100000,\"latency_ms\":0,\"max_tokens\":1,\"crash_after\":3,"
		     "\"fail_health\":false,\"lora_load_ms\":600000,\"prefix_block_bytes\":1048576,"
		     "\"prefix_cache_blocks\":0,\"uncached_block_us\":10000000,\"embedding_dims\":4096}"),
		MOCK("{\"error_percent\":0}"),
		MOCK("{\"error_percent\":100}"),
	};
	static const struct {
		const char *spec;
		const char *field;
	} bad[] = {
		{MOCK("[]"), "engine.mock"},
		{MOCK("{\"max_num_seq\":4}"), "engine.mock.max_num_seq"},
		{MOCK("{\"port\":8000}"), "engine.mock.port"},
		{MOCK("{\"admin_token\":\"0123456789abcdef\"}"), "engine.mock.admin_token"},
		{MOCK("{\"startup_ms\":-1}"), "engine.mock.startup_ms"},
		{MOCK("{\"startup_ms\":600001}"), "engine.mock.startup_ms"},
		{MOCK("{\"max_num_seqs\":100001}"), "engine.mock.max_num_seqs"},
		{MOCK("{\"max_num_seqs\":\"8\"}"), "engine.mock.max_num_seqs"},
		{MOCK("{\"max_num_seqs\":1.5}"), "engine.mock.max_num_seqs"},
		{MOCK("{\"total_tokens_per_second\":0}"), "engine.mock.total_tokens_per_second"},
		{MOCK("{\"total_tokens_per_second\":10000001}"), "engine.mock.total_tokens_per_second"},
		{MOCK("{\"total_tokens_per_second\":1e9}"), "engine.mock.total_tokens_per_second"},
		{MOCK("{\"tokens_per_second\":0}"), "engine.mock.tokens_per_second"},
		{MOCK("{\"crash_after\":1000000001}"), "engine.mock.crash_after"},
		{MOCK("{\"fail_health\":1}"), "engine.mock.fail_health"},
		{MOCK("{\"embedding_dims\":0}"), "engine.mock.embedding_dims"},
		{MOCK("{\"error_percent\":-1}"), "engine.mock.error_percent"},
		{MOCK("{\"error_percent\":101}"), "engine.mock.error_percent"},
		{MOCK("{\"error_percent\":\"10\"}"), "engine.mock.error_percent"},
		{MOCK("{\"error_percent\":10.5}"), "engine.mock.error_percent"},
		{MOCK("{\"error_percent\":true}"), "engine.mock.error_percent"},
	};
	struct nova_err err;
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (parse(ok[i], &err))
			fail_msg("case %zu refused: %s (%s)", i, err.message, err.field);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i].spec, &err);
		if (rc != NOVA_EINVAL || strcmp(err.field, bad[i].field) != 0)
			fail_msg("case %zu: rc %d field \"%s\", want field \"%s\"", i, rc, err.field,
				 bad[i].field);
	}
}

static void test_model_example_files_parse(void **state)
{
	static const char *const files[] = {"etc/models/single.yaml", "etc/models/spec_decode.yaml",
					    "etc/models/vision.yaml", "etc/models/lora_static.yaml",
					    "etc/models/lora_dynamic.yaml"};
	static const char *const kinds[] = {"single", "spec_decode", "vision", "lora_static",
					    "lora_dynamic"};
	(void)state;
	for (size_t i = 0; i < 5; i++) {
		struct ydoc *d;
		struct nova_err err;
		struct model m;
		json_t *j;
		if (ydoc_load_file(&d, files[i], &err) || ydoc_to_json(&j, d, ydoc_root(d), &err))
			fail_msg("%s: %s", files[i], err.message);
		if (model_spec_parse(&m, j, &err))
			fail_msg("%s: %s (%s)", files[i], err.message, err.field);
		assert_string_equal(m.kind, kinds[i]);
		json_decref(m.spec);
		json_decref(j);
		ydoc_destroy(d);
	}
}

#define ADMIN TESTENV_ADMIN_TOKEN
#define SPEC(v) "{\"name\":\"llama\",\"version\":\"" v "\",\"kind\":\"single\"," ENGINE "," ONE "}"

static void test_model_registry_over_http(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/models", ADMIN, SPEC("1")), 201);
	assert_string_equal(json_string_value(json_object_get(b, "version")), "1");
	char id[64];
	snprintf(id, sizeof(id), "/v1/models/%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/models", ADMIN, SPEC("1")), 409);
	assert_string_equal(testenv_error_code(b), "already_exists");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN, SPEC("2")), 201);
	/* NAME is the newest version; NAME:VERSION and the id find exactly one. */
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/models/llama", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "version")), "2");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/models/llama:1", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "version")), "1");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "GET", id, ADMIN, NULL), 200);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/models", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(b), 2);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"x\",\"kind\":\"vision\"," ENGINE "," ONE "}"), 400);
	assert_string_equal(testenv_error_field(b), "stages");
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/models/llama:1", ADMIN, NULL), 204);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/models/llama:1", ADMIN, NULL), 404);
	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/models/nope", ADMIN, NULL), 404);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/models", NULL, NULL), 401);
}

static void test_model_delete_refused_while_deployed(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	struct db_conn *c;
	struct nova_err err;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/models", ADMIN, SPEC("1")), 201);
	char model_id[64];
	snprintf(model_id, sizeof(model_id), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"p\",\"provider\":\"fake\"}"), 201);
	const char *params[2] = {model_id, json_string_value(json_object_get(b, "id"))};
	assert_int_equal(db_conn_acquire(&c, env->db, &err), 0);
	assert_int_equal(db_exec(NULL, c, "INSERT INTO deployments (name, model_id, pool_id, replicas) "
					  "VALUES ('d1', $1::uuid, $2::uuid, 1)", 2, params, &err), 0);
	db_conn_release(env->db, c);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "DELETE", "/v1/models/llama:1", ADMIN, NULL), 409);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "error"), "message")),
			       "used by a deployment"));
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/models/llama:1", ADMIN, NULL), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_valid_specs_of_every_kind),
		cmocka_unit_test(test_model_invalid_specs_name_the_field),
		cmocka_unit_test(test_model_engine_mock_takes_the_mock_engines_flags_in_range),
		cmocka_unit_test(test_model_example_files_parse),
		cmocka_unit_test_setup_teardown(test_model_registry_over_http, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_model_delete_refused_while_deployed, testenv_setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
