/* The audit trail over HTTP: every change recorded with its key, request
 * id and object, in the change's own transaction; refused changes on their
 * own; GET /v1/audit's filters and pages; never a secret. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "deployments/worker.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

/* A key with the given scopes (JSON array); its secret (caller frees) and
 * its id. */
static char *make_key(struct testenv *env, const char *name, const char *scopes, char id[64])
{
	char body[256];
	json_t *b;
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"scopes\":%s}", name, scopes);
	long st = testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, body);
	if (st != 201)
		fail_msg("create key: %ld", st);
	char *key = strdup(json_string_value(json_object_get(b, "key")));
	snprintf(id, 64, "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	return key;
}

/* One request with X-Request-Id: rid. */
static long req_id(json_t **b, struct testenv *env, const char *method, const char *path,
		   const char *token, const char *body, const char *rid)
{
	char h[96];
	snprintf(h, sizeof(h), "X-Request-Id: %s", rid);
	const char *headers[] = {h, NULL};
	return testenv_http_raw(b, env, method, path, token, body, body ? strlen(body) : 0, headers);
}

/* GET /v1/audit?query as the admin: the events array (a new reference). */
static json_t *audit_get(struct testenv *env, const char *query)
{
	char path[512];
	json_t *b;
	snprintf(path, sizeof(path), "/v1/audit%s%s", *query ? "?" : "", query);
	long st = testenv_http(&b, env, "GET", path, ADMIN, NULL);
	if (st != 200)
		fail_msg("GET %s: %ld", path, st);
	json_t *events = json_incref(json_object_get(b, "events"));
	json_decref(b);
	return events;
}

static const char *s_of(const json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static long long i_of(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* The row of one request, found by its request id. */
static json_t *by_request(json_t *events, const char *rid)
{
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e)
		if (!strcmp(s_of(e, "request_id"), rid))
			return e;
	fail_msg("no audit event for request %s", rid);
	return NULL;
}

static void test_each_change_is_recorded_with_its_key_request_and_object(void **state)
{
	struct testenv *env = *state;
	char kid[64], pool_id[64], model_id[64], dep_id[64];
	json_t *b;
	char *key = make_key(env, "deployer", "[\"write\",\"read\"]", kid);
	assert_int_equal(req_id(&b, env, "POST", "/v1/pools", key,
				"{\"name\":\"gpus\",\"provider\":\"fake\"}", "r-pool-create"), 201);
	snprintf(pool_id, sizeof(pool_id), "%s", s_of(b, "id"));
	json_decref(b);
	assert_int_equal(req_id(NULL, env, "PATCH", "/v1/pools/gpus", key,
				"{\"quotas\":{\"max_nodes\":4}}", "r-pool-patch"), 200);
	assert_int_equal(req_id(&b, env, "POST", "/v1/models", key,
				"{\"name\":\"small\",\"version\":\"2\",\"kind\":\"single\","
				"\"engine\":{\"image\":\"x\"},\"stages\":[{\"name\":\"main\","
				"\"accelerators\":1}]}", "r-model"), 201);
	snprintf(model_id, sizeof(model_id), "%s", s_of(b, "id"));
	json_decref(b);
	/* Unnamed: the row names the deployment as it was made. */
	assert_int_equal(req_id(&b, env, "POST", "/v1/deployments", key,
				"{\"model\":\"small\",\"pool\":\"gpus\",\"replicas\":1}", "r-dep"), 201);
	snprintf(dep_id, sizeof(dep_id), "%s", s_of(b, "id"));
	json_decref(b);
	assert_int_equal(req_id(NULL, env, "PATCH", "/v1/deployments/small-gpus", key,
				"{\"replicas\":2}", "r-scale"), 200);
	assert_int_equal(req_id(NULL, env, "POST", "/v1/deployments/small-gpus/stop", key, NULL,
				"r-stop"), 200);
	assert_int_equal(req_id(NULL, env, "DELETE", "/v1/deployments/small-gpus", key, NULL,
				"r-dep-del"), 204);
	assert_int_equal(req_id(NULL, env, "DELETE", "/v1/models/small:2", key, NULL, "r-model-del"),
			 204);
	assert_int_equal(req_id(NULL, env, "DELETE", "/v1/pools/gpus", key, NULL, "r-pool-del"), 204);

	char q[128];
	snprintf(q, sizeof(q), "key=%s", kid);
	json_t *ev = audit_get(env, q);
	assert_int_equal(json_array_size(ev), 9);
	/* Newest first. */
	assert_string_equal(s_of(json_array_get(ev, 0), "request_id"), "r-pool-del");
	assert_string_equal(s_of(json_array_get(ev, 8), "request_id"), "r-pool-create");
	static const struct {
		const char *rid, *method, *route, *kind, *object;
		int status;
		int which_id; /* 0 pool, 1 model, 2 deployment */
	} want[] = {
		{"r-pool-create", "POST", "/v1/pools", "pool", "gpus", 201, 0},
		{"r-pool-patch", "PATCH", "/v1/pools/{pool}", "pool", "gpus", 200, 0},
		{"r-model", "POST", "/v1/models", "model", "small:2", 201, 1},
		{"r-dep", "POST", "/v1/deployments", "deployment", "small-gpus", 201, 2},
		{"r-scale", "PATCH", "/v1/deployments/{deployment}", "deployment", "small-gpus", 200, 2},
		{"r-stop", "POST", "/v1/deployments/{deployment}/stop", "deployment", "small-gpus", 200, 2},
		{"r-dep-del", "DELETE", "/v1/deployments/{deployment}", "deployment", "small-gpus", 204, 2},
		{"r-model-del", "DELETE", "/v1/models/{model}", "model", "small:2", 204, 1},
		{"r-pool-del", "DELETE", "/v1/pools/{pool}", "pool", "gpus", 204, 0},
	};
	const char *ids[] = {pool_id, model_id, dep_id};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		json_t *e = by_request(ev, want[i].rid);
		assert_string_equal(s_of(e, "actor"), "apikey");
		assert_string_equal(s_of(e, "api_key_id"), kid);
		assert_string_equal(s_of(e, "api_key_name"), "deployer");
		assert_string_equal(s_of(e, "method"), want[i].method);
		assert_string_equal(s_of(e, "route"), want[i].route);
		assert_string_equal(s_of(e, "kind"), want[i].kind);
		assert_string_equal(s_of(e, "object"), want[i].object);
		assert_string_equal(s_of(e, "object_id"), ids[want[i].which_id]);
		assert_int_equal(i_of(e, "status"), want[i].status);
		assert_true(json_is_null(json_object_get(e, "error_code")));
		assert_true(strlen(s_of(e, "at")) == 20);
	}
	json_decref(ev);
	/* The key itself was made by the admin, and that is recorded too. */
	ev = audit_get(env, "key=admin&kind=apikey");
	assert_int_equal(json_array_size(ev), 1);
	json_t *e = json_array_get(ev, 0);
	assert_string_equal(s_of(e, "actor"), "admin");
	assert_true(json_is_null(json_object_get(e, "api_key_id")));
	assert_string_equal(s_of(e, "object"), "deployer");
	assert_string_equal(s_of(e, "object_id"), kid);
	assert_int_equal(i_of(e, "status"), 201);
	assert_int_equal(strlen(s_of(e, "request_id")), 32); /* none sent: generated */
	json_decref(ev);
	free(key);
}

static void test_node_changes_are_recorded(void **state)
{
	struct testenv *env = *state;
	struct worker_config wcfg;
	json_t *b;
	char path[160], node[64];
	worker_config_defaults(&wcfg);
	wcfg.base_backoff_ms = 10;
	wcfg.wait_ms = 20;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"one\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"), 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"racks\",\"provider\":\"fake\",\"config\":{\"mode\":"
				      "\"static\",\"nodes\":1,\"accelerators_per_node\":2}}"), 201);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"one\",\"pool\":\"racks\",\"name\":\"d\",\"replicas\":1}"),
			 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/nodes?pool=racks", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(b), 1);
	snprintf(node, sizeof(node), "%s", s_of(json_array_get(b, 0), "id"));
	json_decref(b);
	static const char *const ops[] = {"cordon", "uncordon", "drain"};
	for (size_t i = 0; i < 3; i++) {
		char rid[32];
		snprintf(path, sizeof(path), "/v1/nodes/%s/%s", node, ops[i]);
		snprintf(rid, sizeof(rid), "r-node-%s", ops[i]);
		assert_int_equal(req_id(NULL, env, "POST", path, ADMIN, NULL, rid), 200);
	}
	/* A second drain is refused (the node drains already): on its own. */
	snprintf(path, sizeof(path), "/v1/nodes/%s/drain", node);
	assert_int_equal(req_id(NULL, env, "POST", path, ADMIN, NULL, "r-node-drain-again"), 409);
	char q[128];
	snprintf(q, sizeof(q), "object=%s", node);
	json_t *ev = audit_get(env, q);
	assert_int_equal(json_array_size(ev), 4);
	for (size_t i = 0; i < 3; i++) {
		char rid[32], route[64];
		snprintf(rid, sizeof(rid), "r-node-%s", ops[i]);
		snprintf(route, sizeof(route), "/v1/nodes/{node}/%s", ops[i]);
		json_t *e = by_request(ev, rid);
		assert_string_equal(s_of(e, "kind"), "node");
		assert_string_equal(s_of(e, "route"), route);
		assert_string_equal(s_of(e, "object_id"), node);
		assert_int_equal(i_of(e, "status"), 200);
	}
	json_t *e = by_request(ev, "r-node-drain-again");
	assert_int_equal(i_of(e, "status"), 409);
	assert_string_equal(s_of(e, "error_code"), "conflict");
	json_decref(ev);
}

static void test_refused_changes_are_recorded_on_their_own(void **state)
{
	struct testenv *env = *state;
	char rid_key[64], wid[64];
	char *reader = make_key(env, "reader", "[\"read\"]", rid_key);
	char *writer = make_key(env, "writer", "[\"write\"]", wid);
	/* No scope for it: 403, with the key that tried. */
	assert_int_equal(req_id(NULL, env, "POST", "/v1/pools", reader,
				"{\"name\":\"sneaky\",\"provider\":\"fake\"}", "r-403"), 403);
	/* Bad input, an unknown object, a name taken. */
	assert_int_equal(req_id(NULL, env, "POST", "/v1/pools", writer,
				"{\"name\":\"Bad Name\",\"provider\":\"fake\"}", "r-400"), 400);
	assert_int_equal(req_id(NULL, env, "DELETE", "/v1/pools/nowhere", writer, NULL, "r-404"), 404);
	assert_int_equal(req_id(NULL, env, "POST", "/v1/pools", writer,
				"{\"name\":\"once\",\"provider\":\"fake\"}", "r-201"), 201);
	assert_int_equal(req_id(NULL, env, "POST", "/v1/pools", writer,
				"{\"name\":\"once\",\"provider\":\"fake\"}", "r-409"), 409);
	/* A body that is not JSON at all. */
	assert_int_equal(req_id(NULL, env, "POST", "/v1/models", writer, "{nope", "r-400-json"), 400);
	json_t *ev = audit_get(env, "kind=pool");
	static const struct {
		const char *rid, *key, *object, *code;
		int status;
	} want[] = {
		{"r-403", "reader", "", "forbidden", 403},
		{"r-400", "writer", "Bad Name", "invalid", 400},
		{"r-404", "writer", "nowhere", "not_found", 404},
		{"r-201", "writer", "once", NULL, 201},
		{"r-409", "writer", "once", "already_exists", 409},
	};
	assert_int_equal(json_array_size(ev), 5);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		json_t *e = by_request(ev, want[i].rid);
		assert_string_equal(s_of(e, "api_key_name"), want[i].key);
		assert_string_equal(s_of(e, "api_key_id"), strcmp(want[i].key, "reader") ? wid : rid_key);
		assert_string_equal(s_of(e, "object"), want[i].object);
		assert_int_equal(i_of(e, "status"), want[i].status);
		if (want[i].code)
			assert_string_equal(s_of(e, "error_code"), want[i].code);
		else
			assert_true(json_is_null(json_object_get(e, "error_code")));
		/* A refused change names no object id: nothing was changed. */
		if (want[i].status >= 400)
			assert_true(json_is_null(json_object_get(e, "object_id")));
	}
	json_decref(ev);
	ev = audit_get(env, "kind=model");
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(s_of(json_array_get(ev, 0), "error_code"), "invalid");
	json_decref(ev);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pools"), 1);
	free(reader);
	free(writer);
}

/* An object name no pool could have (bytes that are not UTF-8, a newline,
 * more than the column holds) still leaves a row, cut and cleaned. */
static void test_a_junk_object_is_recorded_cut_and_clean(void **state)
{
	struct testenv *env = *state;
	char body[2048] = "{\"name\":\"";
	size_t o = strlen(body);
	for (int i = 0; i < 200; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "\xc3\xa9"); /* é */
	snprintf(body + o, sizeof(body) - o, "\\n\",\"provider\":\"fake\"}");
	assert_int_equal(req_id(NULL, env, "POST", "/v1/pools", ADMIN, body, "r-long"), 400);
	/* Bytes that are not UTF-8 and a newline in a path: '?' each. */
	assert_int_equal(req_id(NULL, env, "DELETE", "/v1/pools/a%FF%0Ab%C3", ADMIN, NULL, "r-junk"),
			 400);
	json_t *ev = audit_get(env, "kind=pool");
	const char *obj = s_of(by_request(ev, "r-long"), "object");
	if (strlen(obj) != 300) /* 150 two-byte characters, cut between two */
		fail_msg("object %zu: %s", strlen(obj), obj);
	assert_memory_equal(obj + 296, "\xc3\xa9\xc3\xa9", 4);
	assert_string_equal(s_of(by_request(ev, "r-junk"), "object"), "a??b?");
	json_decref(ev);
}

static void exec_sql(struct testenv *env, const char *sql)
{
	struct nova_err err;
	if (db_pool_exec(NULL, env->db, sql, 0, NULL, &err))
		fail_msg("%s: %s", sql, err.message);
}

/* A row that cannot be written takes its change down with it: they are
 * one transaction. */
static void test_a_change_and_its_row_commit_together(void **state)
{
	struct testenv *env = *state;
	exec_sql(env, "CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
		      "BEGIN IF NEW.object = 'boom' THEN RAISE EXCEPTION 'no'; END IF; "
		      "RETURN NEW; END $$");
	exec_sql(env, "CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_events "
		      "FOR EACH ROW EXECUTE FUNCTION audit_refuse()");
	long st = testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
			       "{\"name\":\"boom\",\"provider\":\"fake\"}");
	assert_true(st >= 500);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pools WHERE name = 'boom'"), 0);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM audit_events"), 0);
	/* The same for a change of an existing object. */
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"calm\",\"provider\":\"fake\"}"), 201);
	exec_sql(env, "CREATE OR REPLACE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql "
		      "AS $$ BEGIN IF NEW.route = '/v1/pools/{pool}' THEN RAISE EXCEPTION 'no'; "
		      "END IF; RETURN NEW; END $$");
	st = testenv_http(NULL, env, "PATCH", "/v1/pools/calm", ADMIN, "{\"quotas\":{\"max_nodes\":7}}");
	assert_true(st >= 500);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pools WHERE name = 'calm' "
						"AND max_nodes IS NOT DISTINCT FROM 7"), 0);
	st = testenv_http(NULL, env, "DELETE", "/v1/pools/calm", ADMIN, NULL);
	assert_true(st >= 500);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM pools WHERE name = 'calm' "
						"AND state = 'active'"), 1);
	exec_sql(env, "DROP TRIGGER audit_refuse ON audit_events");
	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/pools/calm", ADMIN, NULL), 204);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM audit_events "
						"WHERE route = '/v1/pools/{pool}'"), 1);
}

static void test_reads_and_requests_without_a_credential_are_not_recorded(void **state)
{
	struct testenv *env = *state;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", NULL,
				      "{\"name\":\"anon\",\"provider\":\"fake\"}"), 401);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", "sk-nova-unknownkey0000000000",
				      "{\"name\":\"anon\",\"provider\":\"fake\"}"), 401);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/pools", ADMIN, NULL), 200);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/audit", ADMIN, NULL), 200);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM audit_events"), 0);
}

static void test_filters_and_pages(void **state)
{
	struct testenv *env = *state;
	char kid[64], q[256];
	char *key = make_key(env, "pager", "[\"write\"]", kid);
	for (int i = 0; i < 5; i++) {
		char body[96];
		snprintf(body, sizeof(body), "{\"name\":\"p%d\",\"provider\":\"fake\"}", i);
		assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", key, body), 201);
	}
	/* By key: id, name, admin. */
	snprintf(q, sizeof(q), "key=%s", kid);
	json_t *ev = audit_get(env, q);
	assert_int_equal(json_array_size(ev), 5);
	json_decref(ev);
	ev = audit_get(env, "key=pager");
	assert_int_equal(json_array_size(ev), 5);
	json_decref(ev);
	ev = audit_get(env, "key=admin");
	assert_int_equal(json_array_size(ev), 1); /* the key's creation */
	json_decref(ev);
	ev = audit_get(env, "key=nobody");
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	/* By object: the name asked for, or the id. */
	ev = audit_get(env, "object=p3");
	assert_int_equal(json_array_size(ev), 1);
	char oid[64];
	snprintf(oid, sizeof(oid), "%s", s_of(json_array_get(ev, 0), "object_id"));
	json_decref(ev);
	snprintf(q, sizeof(q), "object=%s", oid);
	ev = audit_get(env, q);
	assert_int_equal(json_array_size(ev), 1);
	assert_string_equal(s_of(json_array_get(ev, 0), "object"), "p3");
	json_decref(ev);
	/* Pages: two at a time, newest first, until next_before is null. */
	json_t *b;
	long long seen[8], before = 0;
	size_t n = 0;
	for (int page = 0; page < 5; page++) {
		if (before)
			snprintf(q, sizeof(q), "/v1/audit?kind=pool&limit=2&before=%lld", before);
		else
			snprintf(q, sizeof(q), "/v1/audit?kind=pool&limit=2");
		assert_int_equal(testenv_http(&b, env, "GET", q, ADMIN, NULL), 200);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(b, "events"), i, e) {
			assert_true(n < 8);
			seen[n++] = i_of(e, "id");
		}
		json_t *next = json_object_get(b, "next_before");
		before = json_is_integer(next) ? (long long)json_integer_value(next) : 0;
		json_decref(b);
		if (!before)
			break;
	}
	assert_int_equal(n, 5);
	for (size_t i = 1; i < n; i++)
		assert_true(seen[i] < seen[i - 1]);
	/* Time: everything is after an hour ago and nothing after tomorrow. */
	ev = audit_get(env, "since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z&kind=pool");
	assert_int_equal(json_array_size(ev), 5);
	json_decref(ev);
	ev = audit_get(env, "since=2999-01-01T00:00:00Z");
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	ev = audit_get(env, "until=2000-01-01T00:00:00Z");
	assert_int_equal(json_array_size(ev), 0);
	json_decref(ev);
	/* Bad filters name themselves. */
	static const struct {
		const char *query, *field;
	} bad[] = {
		{"since=yesterday", "since"},
		{"until=2030-13-01T00:00:00Z", "until"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=-1", "limit"},
		{"limit=ten", "limit"},
		{"before=x", "before"},
		{"before=99999999999999999999", "before"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(q, sizeof(q), "/v1/audit?%s", bad[i].query);
		assert_int_equal(testenv_http(&b, env, "GET", q, ADMIN, NULL), 400);
		assert_string_equal(testenv_error_field(b), bad[i].field);
		json_decref(b);
	}
	/* Only the admin scope reads it. */
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/audit", key, NULL), 403);
	json_decref(b);
	free(key);
}

static void test_no_secret_is_ever_in_the_trail(void **state)
{
	struct testenv *env = *state;
	char kid[64];
	char *key = make_key(env, "secretive", "[\"write\",\"read\"]", kid);
	/* A pool whose config carries an inline kubeconfig-like secret: the
	 * body is never kept. */
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", key,
				      "{\"name\":\"s1\",\"provider\":\"fake\",\"labels\":"
				      "{\"note\":\"TOPSECRETVALUE\"}}"), 201);
	assert_int_equal(testenv_http(NULL, env, "DELETE", "/v1/apikeys/not-a-uuid", ADMIN, NULL), 404);
	char revoke[128];
	snprintf(revoke, sizeof(revoke), "/v1/apikeys/%s", kid);
	assert_int_equal(testenv_http(NULL, env, "DELETE", revoke, ADMIN, NULL), 204);
	struct nova_err err;
	PGresult *res;
	if (db_pool_exec(&res, env->db,
			 "SELECT coalesce(string_agg(row_to_json(a)::text, ' '), '') FROM audit_events a",
			 0, NULL, &err))
		fail_msg("%s", err.message);
	const char *all = PQgetvalue(res, 0, 0);
	assert_non_null(strstr(all, "secretive"));
	assert_null(strstr(all, key));
	char prefix[17];
	snprintf(prefix, sizeof(prefix), "%s", key);
	assert_null(strstr(all, prefix));
	assert_null(strstr(all, ADMIN));
	assert_null(strstr(all, "TOPSECRETVALUE"));
	PQclear(res);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM audit_events"), 4);
	free(key);
}

static void test_old_rows_are_pruned(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	long long removed = -1;
	for (int i = 0; i < 3; i++) {
		char body[96];
		snprintf(body, sizeof(body), "{\"name\":\"old%d\",\"provider\":\"fake\"}", i);
		assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN, body), 201);
	}
	exec_sql(env, "UPDATE audit_events SET at = now() - interval '100 days' "
		      "WHERE object IN ('old0', 'old1')");
	assert_int_equal(audit_prune(env->db, 0, &removed, &err), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(audit_prune(env->db, 101, &removed, &err), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(audit_prune(env->db, 90, &removed, &err), 0);
	assert_int_equal(removed, 2);
	assert_int_equal(testenv_query_int(env, "SELECT count(*) FROM audit_events"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_each_change_is_recorded_with_its_key_request_and_object,
						testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_node_changes_are_recorded, testenv_setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_refused_changes_are_recorded_on_their_own,
						testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_junk_object_is_recorded_cut_and_clean,
						testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_change_and_its_row_commit_together,
						testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_reads_and_requests_without_a_credential_are_not_recorded,
						testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_filters_and_pages, testenv_setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_no_secret_is_ever_in_the_trail, testenv_setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_old_rows_are_pruned, testenv_setup, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
