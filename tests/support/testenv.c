#include "tests/support/testenv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <cmocka.h>

#include "deployments/worker.h"
#include "inventory/inventory.h"
#include "inventory/routes.h"

#include <stdio.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/fake/fake.h"
#include "core/http_client.h"
#include "core/log.h"
#include "tests/support/testdb.h"

int testenv_db_open(struct testenv *env)
{
	struct nova_err err;
	memset(env, 0, sizeof(*env));
	if (testdb_create(env->conninfo, sizeof(env->conninfo)) != 0)
		return -1;
	if (db_pool_create(&env->db, env->conninfo, &(struct db_pool_config){.size = 8}, &err) ||
	    db_migrate(env->db, db_migrations_builtin, db_migrations_builtin_count, &err)) {
		fprintf(stderr, "testenv: %s\n", err.message);
		return -1;
	}
	return 0;
}

int testenv_gateway_start(struct testenv *env, size_t max_body)
{
	return testenv_gateway_start_limits(env, max_body, 0, 0, 0);
}

int testenv_gateway_start_watch_caps(struct testenv *env, size_t max_body, unsigned max_watchers,
				     unsigned max_watchers_per_key)
{
	return testenv_gateway_start_limits(env, max_body, max_watchers, max_watchers_per_key, 0);
}

int testenv_gateway_start_limits(struct testenv *env, size_t max_body, unsigned max_watchers,
				 unsigned max_watchers_per_key, unsigned max_connections_per_key)
{
	struct nova_err err;
	if (testenv_db_open(env))
		return -1;
	adapter_registry_reset();
	fake_reset();
	if (adapters_register_builtin(true, &err) ||
	    auth_create(&env->auth, env->db, TESTENV_ADMIN_TOKEN, &err) ||
	    http_client_global_init(&err))
		goto fail;
	struct inventory_config icfg;
	inventory_config_defaults(&icfg);
	icfg.interval_ms = 200;
	icfg.failed_after_ms = 1000;
	if (inventory_create(&env->inventory, env->db, &icfg, &err))
		goto fail;
	/* Read once, as novad's routes thread does first: a table never read
	 * is served as 503. */
	if (inventory_routes_create(&env->routes, env->db, env->inventory, NULL, &err) ||
	    inventory_routes_refresh(NULL, env->routes, &err))
		goto fail;
	struct gw_deps deps = {.db = env->db, .auth = env->auth, .inventory = env->inventory,
			       .routes = env->routes, .migrations = db_migrations_builtin,
			       .n_migrations = db_migrations_builtin_count,
			       .max_watchers = max_watchers,
			       .max_watchers_per_key = max_watchers_per_key,
			       .max_connections_per_key = max_connections_per_key};
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 4, .max_body = max_body};
	if (gw_create(&env->gw, &deps, &err) || http_server_create(&env->srv, &cfg, &err) ||
	    gw_routes_register(env->gw, env->srv, &err) || http_server_start(env->srv, &err))
		goto fail;
	snprintf(env->url, sizeof(env->url), "http://127.0.0.1:%u", http_server_port(env->srv));
	return 0;
fail:
	fprintf(stderr, "testenv: %s\n", err.message);
	return -1;
}

void testenv_close(struct testenv *env)
{
	http_server_stop(env->srv);
	http_server_destroy(env->srv);
	gw_destroy(env->gw);
	inventory_routes_destroy(env->routes);
	inventory_destroy(env->inventory);
	auth_destroy(env->auth);
	db_pool_destroy(env->db);
	memset(env, 0, sizeof(*env));
}

long testenv_http_raw(json_t **body_out, struct testenv *env, const char *method,
		      const char *path, const char *token, const char *body, size_t len,
		      const char *const *headers)
{
	char url[512];
	struct http_client_response res = {0};
	struct nova_err err;
	snprintf(url, sizeof(url), "%s%s", env->url, path);
	struct http_client_request req = {
		.method = method, .url = url, .bearer_token = token, .body = body,
		.body_len = len, .headers = headers, .timeout_ms = 10000,
	};
	if (body_out)
		*body_out = NULL;
	if (http_client_do(&res, &req, &err)) {
		fprintf(stderr, "testenv: %s %s: %s\n", method, path, err.message);
		return -1;
	}
	if (body_out && res.body_len)
		*body_out = json_loadb(res.body, res.body_len, JSON_DECODE_ANY, NULL);
	long status = res.status;
	http_client_response_finish(&res);
	return status;
}

long testenv_http(json_t **body_out, struct testenv *env, const char *method, const char *path,
		  const char *token, const char *body)
{
	return testenv_http_raw(body_out, env, method, path, token, body, body ? strlen(body) : 0,
				NULL);
}

const char *testenv_error_code(const json_t *body)
{
	const char *s = json_string_value(json_object_get(json_object_get(body, "error"), "code"));
	return s ? s : "";
}

const char *testenv_error_field(const json_t *body)
{
	const char *s = json_string_value(json_object_get(json_object_get(body, "error"), "field"));
	return s ? s : "";
}

int testenv_setup(void **state)
{
	struct testenv *env = calloc(1, sizeof(*env));
	if (!env || testenv_gateway_start(env, 64 * 1024) != 0) {
		free(env);
		return -1;
	}
	*state = env;
	return 0;
}

int testenv_teardown(void **state)
{
	testenv_close(*state);
	free(*state);
	return 0;
}

long long testenv_query_int(struct testenv *env, const char *sql)
{
	struct db_conn *c;
	struct nova_err err;
	PGresult *res;
	long long n;
	if (db_conn_acquire(&c, env->db, &err))
		fail_msg("%s", err.message);
	if (db_exec_one(&res, c, sql, 0, NULL, &err)) {
		db_conn_release(env->db, c);
		fail_msg("%s: %s", sql, err.message);
	}
	n = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	db_conn_release(env->db, c);
	return n;
}

void testenv_worker_drain(struct testenv *env, const struct worker_config *cfg)
{
	struct nova_err err;
	int idle = 0;
	for (int i = 0; i < 400 && idle < 10; i++) {
		bool did;
		if (worker_run_once(&did, env->db, cfg, &err))
			fail_msg("worker: %s", err.message);
		if (did) {
			idle = 0;
		} else {
			struct timespec ts = {0, 10 * 1000000L};
			idle++;
			nanosleep(&ts, NULL);
		}
	}
}
