/* Test support: a migrated fresh database, and the real gateway on a free
 * loopback port over it, driven by real HTTP requests. */
#ifndef NOVA_TESTS_SUPPORT_TESTENV_H
#define NOVA_TESTS_SUPPORT_TESTENV_H

#include <jansson.h>
#include <stddef.h>

#include "auth/auth.h"
#include "core/db.h"
#include "core/http.h"
#include "gateway/gateway.h"

#define TESTENV_ADMIN_TOKEN "test-admin-token-0123456789abcdef"

struct testenv {
	char conninfo[512];
	struct db_pool *db;
	struct auth *auth;
	struct gw *gw;
	struct inventory *inventory;
	struct inventory_routes *routes;
	struct http_server *srv;
	char url[64];
};

/* Fresh database, migrations applied, pool of 8 connections. 0 or -1. */
int testenv_db_open(struct testenv *env);
/* Also the gateway (fake provider registered) on 127.0.0.1:0. */
int testenv_gateway_start(struct testenv *env, size_t max_body);
/* The same with caps on watch streams (gateway.h; 0: none). */
int testenv_gateway_start_watch_caps(struct testenv *env, size_t max_body, unsigned max_watchers,
				     unsigned max_watchers_per_key);
/* And a cap on the connections one credential holds (gateway.h). */
int testenv_gateway_start_limits(struct testenv *env, size_t max_body, unsigned max_watchers,
				 unsigned max_watchers_per_key, unsigned max_connections_per_key);
void testenv_close(struct testenv *env);

/* One request; returns the HTTP status (-1 on transport failure). *body_out
 * receives the parsed JSON body or NULL (caller decrefs). */
long testenv_http(json_t **body_out, struct testenv *env, const char *method, const char *path,
		  const char *token, const char *body);
/* The same with a raw body of given length and optional extra headers. */
long testenv_http_raw(json_t **body_out, struct testenv *env, const char *method,
		      const char *path, const char *token, const char *body, size_t len,
		      const char *const *headers);

/* cmocka fixtures: *state becomes a started testenv (gateway, fake provider,
 * body cap 64 KiB), closed and freed by the teardown. */
int testenv_setup(void **state);
int testenv_teardown(void **state);

/* The first column of the one row sql returns, as an integer; a failing
 * query fails the test. */
long long testenv_query_int(struct testenv *env, const char *sql);

struct worker_config;
/* Run the deployment worker in this thread until nothing has been runnable
 * for ten polls of 10 ms (bounded at 400 rounds). */
void testenv_worker_drain(struct testenv *env, const struct worker_config *cfg);

/* Error code string of an error body ("" when none). */
const char *testenv_error_code(const json_t *body);
const char *testenv_error_field(const json_t *body);

#endif
