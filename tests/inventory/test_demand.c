/* The routers' demand (inventory/demand.h) over real HTTP: a report is a
 * router's whole demand, summed over routers for GET /v1/router/demand and
 * for inventory_demand_read; zeros and reports past the TTL are not
 * counted; a bad report is 400 naming the field and changes nothing; a
 * report is not in the audit trail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "inventory/demand.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static char *router_key;

static int setup(void **state)
{
	json_t *b;
	if (testenv_setup(state) != 0)
		return -1;
	struct testenv *env = *state;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN,
				      "{\"name\":\"r\",\"scopes\":[\"router\"]}"), 201);
	router_key = strdup(json_string_value(json_object_get(b, "key")));
	json_decref(b);
	return 0;
}

static int teardown(void **state)
{
	free(router_key);
	router_key = NULL;
	return testenv_teardown(state);
}

static long report(json_t **b, struct testenv *env, const char *body)
{
	return testenv_http(b, env, "POST", "/v1/router/demand", router_key, body);
}

/* GET /v1/router/demand's entry for key (NULL when absent; borrowed from
 * *doc, which the caller frees). */
static json_t *demand_of(json_t **doc, struct testenv *env, const char *key)
{
	assert_int_equal(testenv_http(doc, env, "GET", "/v1/router/demand", ADMIN, NULL), 200);
	return json_object_get(json_object_get(*doc, "models"), key);
}

static long long field(json_t *e, const char *name)
{
	return json_integer_value(json_object_get(e, name));
}

static void test_reports_are_summed_over_routers_and_replace_their_last(void **state)
{
	struct testenv *env = *state;
	json_t *doc, *e;
	assert_int_equal(report(NULL, env, "{\"router\":\"a:1:1\",\"models\":{\"m\":{\"waiting\":2,"
					   "\"in_flight\":1},\"m/sql\":{\"waiting\":0,\"in_flight\":4}}}"), 204);
	assert_int_equal(report(NULL, env, "{\"router\":\"b:2:2\",\"models\":{\"m\":{\"waiting\":3,"
					   "\"in_flight\":0}}}"), 204);
	e = demand_of(&doc, env, "m");
	assert_int_equal(field(e, "waiting"), 5);
	assert_int_equal(field(e, "in_flight"), 1);
	assert_int_equal(field(e, "routers"), 2);
	json_decref(doc);
	assert_int_equal(field(demand_of(&doc, env, "m/sql"), "in_flight"), 4);
	json_decref(doc);
	/* The C call the autoscaler reads gives the same. */
	struct inventory_demand *d = NULL;
	size_t n = 0;
	struct nova_err err;
	assert_int_equal(inventory_demand_read(&d, &n, env->db, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(d[0].model, "m");
	assert_int_equal(d[0].waiting, 5);
	assert_int_equal(d[0].routers, 2);
	assert_string_equal(d[1].model, "m/sql");
	free(d);
	/* Router a's next report names m only, at zero: its m/sql is gone and
	 * its m counts nothing. */
	assert_int_equal(report(NULL, env, "{\"router\":\"a:1:1\",\"models\":{\"m\":{\"waiting\":0,"
					   "\"in_flight\":0}}}"), 204);
	e = demand_of(&doc, env, "m");
	assert_int_equal(field(e, "waiting"), 3);
	assert_int_equal(field(e, "routers"), 1);
	assert_null(json_object_get(json_object_get(doc, "models"), "m/sql"));
	json_decref(doc);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM router_demand WHERE router = 'a:1:1'"), 1);
	/* Telemetry: not in the audit trail. */
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM audit_events "
						"WHERE route = '/v1/router/demand'"), 0);
}

static void test_a_report_past_the_ttl_is_not_counted(void **state)
{
	struct testenv *env = *state;
	json_t *doc;
	assert_int_equal(report(NULL, env, "{\"router\":\"a\",\"models\":{\"m\":{\"waiting\":1,"
					   "\"in_flight\":0}}}"), 204);
	assert_non_null(demand_of(&doc, env, "m"));
	json_decref(doc);
	assert_int_equal(testenv_query_int(env, "WITH u AS (UPDATE router_demand SET reported_at = "
						"now() - interval '11 seconds' RETURNING 1) "
						"SELECT count(*) FROM u"), 1);
	assert_null(demand_of(&doc, env, "m"));
	assert_int_equal(json_integer_value(json_object_get(doc, "ttl_ms")), INVENTORY_DEMAND_TTL_MS);
	json_decref(doc);
}

static void test_a_bad_report_is_400_naming_the_field(void **state)
{
	struct testenv *env = *state;
	static const struct {
		const char *body, *field;
	} bad[] = {
		{"{\"models\":{}}", "router"},
		{"{\"router\":\"\",\"models\":{}}", "router"},
		{"{\"router\":7,\"models\":{}}", "router"},
		{"{\"router\":\"a\"}", "models"},
		{"{\"router\":\"a\",\"models\":[]}", "models"},
		{"{\"router\":\"a\",\"models\":{},\"extra\":1}", "extra"},
		{"{\"router\":\"a\",\"models\":{\"m\":3}}", "models.m"},
		{"{\"router\":\"a\",\"models\":{\"m\":{\"waiting\":1}}}", "models.m.in_flight"},
		{"{\"router\":\"a\",\"models\":{\"m\":{\"waiting\":-1,\"in_flight\":0}}}", "models.m.waiting"},
		{"{\"router\":\"a\",\"models\":{\"m\":{\"waiting\":1.5,\"in_flight\":0}}}", "models.m.waiting"},
		{"{\"router\":\"a\",\"models\":{\"m\":{\"waiting\":1,\"in_flight\":0,\"x\":0}}}", "models.m.x"},
		{"{\"router\":\"a\",\"models\":{\"\":{\"waiting\":1,\"in_flight\":0}}}", "models"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *b;
		long st = report(&b, env, bad[i].body);
		const char *f = testenv_error_field(b);
		if (st != 400 || !f || strcmp(f, bad[i].field))
			fail_msg("%s: %ld, field %s, want 400 naming %s", bad[i].body, st, f ? f : "(none)",
				 bad[i].field);
		json_decref(b);
	}
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM router_demand"), 0);
	/* Only with the router scope (or admin). */
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN,
				      "{\"name\":\"rd\",\"scopes\":[\"read\"]}"), 201);
	char *reader = strdup(json_string_value(json_object_get(b, "key")));
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/router/demand", reader,
				      "{\"router\":\"a\",\"models\":{}}"), 403);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/router/demand", reader, NULL), 200);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/router/demand", router_key, NULL), 403);
	free(reader);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reports_are_summed_over_routers_and_replace_their_last,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_report_past_the_ttl_is_not_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_bad_report_is_400_naming_the_field, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
