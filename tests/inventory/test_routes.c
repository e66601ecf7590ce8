/* The routing table over HTTP: ready replicas appear with their endpoint and
 * load, ETag and If-None-Match, ?model=; the watch stream sends a snapshot,
 * then the change when a node goes silent, and resumes from Last-Event-ID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/http_client.h"
#include "deployments/worker.h"
#include "events/events.h"
#include "inventory/inventory.h"
#include "inventory/routes.h"
#include "pools/pool.h"
#include "tests/support/rawhttp.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static char node_id[64], token[128], replica_id[64];
static int open_watch = -1;

static void refresh(struct testenv *env)
{
	struct nova_err err;
	if (inventory_routes_refresh(NULL, env->routes, &err))
		fail_msg("%s", err.message);
	http_server_streams_wake(env->srv);
}

/* A deployment of a model with one replica reported ready (with extra in
 * its report). */
static int setup_with(void **state, const char *model, const char *extra)
{
	struct worker_config wcfg;
	struct nova_err err;
	json_t *b;
	char body[768], replica[64];
	if (testenv_setup(state) != 0)
		return -1;
	struct testenv *env = *state;
	worker_config_defaults(&wcfg);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"p\",\"provider\":\"fake\"}"), 201);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/models", ADMIN, model), 201);
	snprintf(body, sizeof(body), "{\"model\":\"%s\",\"pool\":\"p\",\"name\":\"d\"}",
		 json_string_value(json_object_get(b, "name")));
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN, body), 201);
	testenv_worker_drain(env, &wcfg);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/deployments/d", ADMIN, NULL), 200);
	json_t *r = json_array_get(json_object_get(b, "replica_list"), 0);
	snprintf(replica, sizeof(replica), "%s", json_string_value(json_object_get(r, "id")));
	snprintf(replica_id, sizeof(replica_id), "%s", replica);
	snprintf(node_id, sizeof(node_id), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(r, "placements"), 0), "node_id")));
	json_decref(b);
	assert_int_equal(pool_node_token_issue(token, sizeof(token), env->db, node_id, &err), 0);
	snprintf(body, sizeof(body),
		 "{\"seq\":1,\"replicas\":[{\"replica_id\":\"%s\",\"state\":\"ready\","
		 "\"endpoint\":\"http://127.0.0.1:9001\",\"load\":{\"queue_depth\":3,\"running\":2,"
		 "\"kv_cache_usage\":0.75,\"inflight_tokens\":4096,\"ttft_p95_ms\":87.5,"
		 "\"newer_hint\":1.5}%s}]}", replica, extra);
	char path[128];
	snprintf(path, sizeof(path), "/v1/nodes/%s/heartbeat", node_id);
	assert_int_equal(testenv_http(NULL, env, "POST", path, token, body), 200);
	assert_int_equal(inventory_flush(env->inventory, &err), 0);
	refresh(env);
	return 0;
}

/* "m" (static LoRA "sql"). */
static int setup(void **state)
{
	return setup_with(state, "{\"name\":\"m\",\"kind\":\"lora_static\",\"engine\":{\"image\":\"x\"},"
			  "\"stages\":[{\"name\":\"main\",\"accelerators\":1}],\"adapters\":[\"sql\"]}", "");
}

/* "dm" (dynamic LoRA: "a" and "b" loadable, "a" loaded). */
static int setup_dynamic(void **state)
{
	return setup_with(state, "{\"name\":\"dm\",\"kind\":\"lora_dynamic\",\"engine\":{\"image\":\"x\"},"
			  "\"stages\":[{\"name\":\"main\",\"accelerators\":1}],\"max_adapters\":1,"
			  "\"adapters\":[\"a\",\"b\"]}", ",\"adapters_loaded\":[\"a\"]");
}

static void test_dynamic_adapters_are_routed_with_what_each_replica_has_loaded(void **state)
{
	struct testenv *env = *state;
	json_t *b, *route;
	size_t i;
	char etag[INVENTORY_ROUTES_ETAG_LEN], etag2[INVENTORY_ROUTES_ETAG_LEN];
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes", ADMIN, NULL), 200);
	json_t *routes = json_object_get(b, "routes");
	assert_int_equal(json_array_size(routes), 3); /* dm, dm/a, dm/b */
	json_array_foreach(routes, i, route) {
		const char *adapter = json_string_value(json_object_get(route, "adapter"));
		json_t *ep = json_array_get(json_object_get(route, "endpoints"), 0);
		json_t *al = json_object_get(ep, "adapters_loaded");
		if (!adapter) {
			/* The model's own route: not dynamic; its endpoints carry
			 * the whole list their engine reported. */
			assert_null(json_object_get(route, "dynamic"));
			assert_int_equal(json_array_size(al), 1);
			assert_string_equal(json_string_value(json_array_get(al, 0)), "a");
		} else {
			/* An adapter's: dynamic, each endpoint saying whether it
			 * has that one loaded. */
			assert_true(json_is_true(json_object_get(route, "dynamic")));
			assert_null(al);
			assert_true(json_is_true(json_object_get(ep, "adapter_loaded")) ==
				    (strcmp(adapter, "a") == 0));
		}
	}
	json_decref(b);
	/* The engine loads "b" and evicts "a": the next read says so, and the
	 * table's ETag (routes, not hints) stays. */
	assert_true(inventory_routes_etag(etag, env->routes));
	char body[512], path[128];
	snprintf(body, sizeof(body), "{\"seq\":2,\"replicas\":[{\"replica_id\":\"%s\",\"state\":"
		 "\"ready\",\"endpoint\":\"http://127.0.0.1:9001\",\"adapters_loaded\":[\"b\"]}]}",
		 replica_id);
	snprintf(path, sizeof(path), "/v1/nodes/%s/heartbeat", node_id);
	assert_int_equal(testenv_http(NULL, env, "POST", path, token, body), 200);
	struct timespec ts = {0, 300 * 1000000L}; /* past the cache's age */
	nanosleep(&ts, NULL);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes?model=dm/b", ADMIN, NULL), 200);
	route = json_array_get(json_object_get(b, "routes"), 0);
	assert_int_equal(json_array_size(json_object_get(b, "routes")), 1);
	assert_true(json_is_true(json_object_get(json_array_get(json_object_get(route, "endpoints"), 0),
						 "adapter_loaded")));
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes?model=dm/a", ADMIN, NULL), 200);
	route = json_array_get(json_object_get(b, "routes"), 0);
	assert_true(json_is_false(json_object_get(json_array_get(json_object_get(route, "endpoints"), 0),
						  "adapter_loaded")));
	json_decref(b);
	assert_true(inventory_routes_etag(etag2, env->routes));
	assert_string_equal(etag, etag2);
	/* The watch's snapshot carries routes, not what engines have loaded. */
	long long next;
	char *ev = inventory_routes_next_event(env->routes, -1, &next);
	assert_non_null(ev);
	assert_non_null(strstr(ev, "\"dynamic\":true"));
	assert_null(strstr(ev, "adapters_loaded"));
	assert_null(strstr(ev, "adapter_loaded"));
	free(ev);
}

static void test_routes_list_ready_endpoints_with_load(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes", ADMIN, NULL), 200);
	json_t *routes = json_object_get(b, "routes");
	assert_int_equal(json_array_size(routes), 2); /* the model and its adapter */
	json_t *m = json_array_get(routes, 0), *ep = json_array_get(json_object_get(m, "endpoints"), 0);
	assert_string_equal(json_string_value(json_object_get(m, "model")), "m");
	assert_string_equal(json_string_value(json_object_get(ep, "url")), "http://127.0.0.1:9001");
	assert_string_equal(json_string_value(json_object_get(ep, "deployment")), "d");
	json_t *load = json_object_get(ep, "load");
	assert_int_equal(json_integer_value(json_object_get(load, "queue_depth")), 3);
	/* KV-cache use and running requests are served beside the queue, and
	 * a hint this novad does not know is passed through as it came. */
	assert_int_equal(json_integer_value(json_object_get(load, "running")), 2);
	assert_true(json_real_value(json_object_get(load, "kv_cache_usage")) == 0.75);
	assert_true(json_number_value(json_object_get(load, "inflight_tokens")) == 4096);
	assert_true(json_number_value(json_object_get(load, "ttft_p95_ms")) == 87.5);
	assert_true(json_real_value(json_object_get(load, "newer_hint")) == 1.5);
	assert_string_equal(json_string_value(json_object_get(json_array_get(routes, 1), "adapter")), "sql");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes?model=sql", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(b, "routes")), 1);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes?model=nope", ADMIN, NULL), 404);
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "GET", "/v1/routes", NULL, NULL), 401);
}

static void test_etag_and_if_none_match(void **state)
{
	struct testenv *env = *state;
	char url[128], inm[128];
	struct http_client_response res;
	struct nova_err err;
	snprintf(url, sizeof(url), "%s/v1/routes", env->url);
	struct http_client_request req = {.method = "GET", .url = url, .bearer_token = ADMIN};
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 200);
	assert_non_null(res.etag);
	snprintf(inm, sizeof(inm), "If-None-Match: %s", res.etag);
	http_client_response_finish(&res);
	const char *const hdr[] = {inm, NULL};
	req.headers = hdr;
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 304);
	assert_int_equal(res.body_len, 0);
	http_client_response_finish(&res);
	/* The table changes: the old ETag no longer matches. */
	assert_int_equal(pool_node_transition(env->db, node_id, POOL_NODE_UNHEALTHY, "test", &err), 0);
	refresh(env);
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 200);
	assert_non_null(strstr(res.body, "\"endpoints\":[]")); /* the model is still known */
	assert_null(strstr(res.body, "9001"));
	http_client_response_finish(&res);
}

/* Two novads over one database (here: a second table with no heartbeats
 * of its own, refreshed around a change so its version differs) give one
 * table one ETag, whatever their versions and load hints; each answers 304
 * to the other's, and a model's ETag too is the same everywhere. */
static void test_one_table_has_one_etag_on_every_novad(void **state)
{
	struct testenv *env = *state;
	struct inventory_routes *other;
	struct nova_err err;
	char mine[INVENTORY_ROUTES_ETAG_LEN], theirs[INVENTORY_ROUTES_ETAG_LEN], *text = NULL;
	assert_int_equal(inventory_routes_create(&other, env->db, NULL, NULL, &err), 0);
	assert_int_equal(inventory_routes_refresh(NULL, other, &err), 0);
	assert_int_equal(pool_node_transition(env->db, node_id, POOL_NODE_UNHEALTHY, "test", &err), 0);
	assert_int_equal(inventory_routes_refresh(NULL, other, &err), 0);
	assert_int_equal(pool_node_transition(env->db, node_id, POOL_NODE_READY, "test", &err), 0);
	assert_int_equal(inventory_routes_refresh(NULL, other, &err), 0);
	refresh(env);
	assert_true(inventory_routes_version(other) != inventory_routes_version(env->routes));
	assert_int_equal(inventory_routes_get(&text, theirs, other, NULL, &err), 0);
	assert_non_null(strstr(text, "\"load\":null")); /* no hints there */
	free(text);
	assert_int_equal(inventory_routes_get(&text, mine, env->routes, NULL, &err), 0);
	assert_non_null(strstr(text, "\"queue_depth\":3")); /* hints here */
	free(text);
	assert_string_equal(mine, theirs);
	assert_memory_equal(mine, "W/\"", 3);
	assert_true(inventory_routes_etag(mine, env->routes));
	assert_string_equal(mine, theirs);
	/* Over HTTP: the other's ETag gets 304 here, for the table and for
	 * one model. */
	char url[128], inm[128];
	struct http_client_response res;
	snprintf(url, sizeof(url), "%s/v1/routes", env->url);
	snprintf(inm, sizeof(inm), "If-None-Match: %s", theirs);
	const char *const hdr[] = {inm, NULL};
	struct http_client_request req = {.method = "GET", .url = url, .bearer_token = ADMIN,
					  .headers = hdr};
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 304);
	http_client_response_finish(&res);
	assert_int_equal(inventory_routes_get(&text, theirs, other, "m", &err), 0);
	free(text);
	snprintf(url, sizeof(url), "%s/v1/routes?model=m", env->url);
	snprintf(inm, sizeof(inm), "If-None-Match: \"nope\", %s", theirs);
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 304);
	http_client_response_finish(&res);
	/* New load hints alone keep the ETag (an equivalent answer). */
	char body[512], path[128];
	snprintf(body, sizeof(body),
		 "{\"seq\":2,\"replicas\":[{\"replica_id\":\"%s\",\"state\":\"ready\","
		 "\"endpoint\":\"http://127.0.0.1:9001\",\"load\":{\"queue_depth\":9}}]}", replica_id);
	snprintf(path, sizeof(path), "/v1/nodes/%s/heartbeat", node_id);
	assert_int_equal(testenv_http(NULL, env, "POST", path, token, body), 200);
	struct timespec ts = {0, 300 * 1000000L}; /* past the kept copy's 250 ms */
	nanosleep(&ts, NULL);
	assert_int_equal(inventory_routes_get(&text, mine, env->routes, NULL, &err), 0);
	assert_non_null(strstr(text, "\"queue_depth\":9"));
	free(text);
	assert_int_equal(inventory_routes_get(&text, theirs, other, NULL, &err), 0);
	free(text);
	assert_string_equal(mine, theirs);
	inventory_routes_destroy(other);
}

/* The rendered table is kept while nothing changes (reads are copies); new
 * load hints still reach it within the refresh period (250 ms). */
static void test_new_load_hints_reach_a_kept_table(void **state)
{
	struct testenv *env = *state;
	char body[512], path[128];
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes", ADMIN, NULL), 200);
	json_decref(b);
	snprintf(body, sizeof(body),
		 "{\"seq\":2,\"replicas\":[{\"replica_id\":\"%s\",\"state\":\"ready\","
		 "\"endpoint\":\"http://127.0.0.1:9001\",\"load\":{\"queue_depth\":7}}]}", replica_id);
	snprintf(path, sizeof(path), "/v1/nodes/%s/heartbeat", node_id);
	assert_int_equal(testenv_http(NULL, env, "POST", path, token, body), 200);
	usleep(300 * 1000);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes", ADMIN, NULL), 200);
	json_t *ep = json_array_get(json_object_get(json_array_get(json_object_get(b, "routes"), 0),
						    "endpoints"), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(ep, "load"), "queue_depth")), 7);
	json_decref(b);
}

/* A model scaled to zero keeps its routes (the model and its static
 * adapter), with no endpoint; once its deployment is stopped it has none. */
static void test_a_model_at_zero_replicas_has_a_route_without_endpoints(void **state)
{
	struct testenv *env = *state;
	struct worker_config wcfg;
	json_t *b;
	worker_config_defaults(&wcfg);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/d", ADMIN,
				      "{\"replicas\":0}"), 200);
	testenv_worker_drain(env, &wcfg);
	refresh(env);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes", ADMIN, NULL), 200);
	json_t *routes = json_object_get(b, "routes");
	assert_int_equal(json_array_size(routes), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *rt = json_array_get(routes, i);
		assert_string_equal(json_string_value(json_object_get(rt, "model")), "m");
		assert_true(json_is_array(json_object_get(rt, "endpoints")));
		assert_int_equal(json_array_size(json_object_get(rt, "endpoints")), 0);
	}
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes?model=sql", ADMIN, NULL), 200);
	json_decref(b);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments/d/stop", ADMIN, NULL), 200);
	testenv_worker_drain(env, &wcfg);
	refresh(env);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes", ADMIN, NULL), 200);
	assert_int_equal(json_array_size(json_object_get(b, "routes")), 0);
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes?model=m", ADMIN, NULL), 404);
	json_decref(b);
}

/* Read from the stream until needle arrives (or 5 s pass). */
static bool wait_for(int fd, char *buf, size_t cap, size_t *len, const char *needle)
{
	for (int i = 0; i < 50; i++) {
		buf[*len] = '\0';
		if (strstr(buf, needle))
			return true;
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) > 0) {
			ssize_t n = read(fd, buf + *len, cap - 1 - *len);
			if (n <= 0)
				return false;
			*len += (size_t)n;
		}
	}
	buf[*len] = '\0';
	return strstr(buf, needle) != NULL;
}

static int watch_open(struct testenv *env, const char *last_id)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(http_server_port(env->srv))};
	char req[512];
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	int n = snprintf(req, sizeof(req),
			 "GET /v1/routes/watch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s%s%s\r\n",
			 ADMIN, last_id ? "Last-Event-ID: " : "", last_id ? last_id : "",
			 last_id ? "\r\n" : "");
	assert_int_equal(write(fd, req, (size_t)n), n);
	return fd;
}

static void test_watch_snapshot_then_change_then_resume(void **state)
{
	struct testenv *env = *state;
	struct nova_err err;
	char buf[16384];
	size_t len = 0;
	int fd = watch_open(env, NULL);
	assert_true(wait_for(fd, buf, sizeof(buf), &len, "event: snapshot"));
	assert_non_null(strstr(buf, "text/event-stream"));
	assert_true(wait_for(fd, buf, sizeof(buf), &len, "http://127.0.0.1:9001"));
	/* The node goes silent: the watcher hears the model leave. */
	long long before = inventory_routes_version(env->routes);
	assert_int_equal(pool_node_transition(env->db, node_id, POOL_NODE_UNHEALTHY, "no heartbeat", &err), 0);
	refresh(env);
	assert_true(wait_for(fd, buf, sizeof(buf), &len, "event: update"));
	/* The model stays known, with no endpoint (a router holds its
	 * requests rather than answering 404). */
	assert_true(wait_for(fd, buf, sizeof(buf), &len, "\"m\":{"));
	assert_true(wait_for(fd, buf, sizeof(buf), &len, "\"endpoints\":[]"));
	assert_null(strstr(buf, "\"m\":null"));
	close(fd);
	/* A watcher that saw the version before it gets just the update. */
	char id[32];
	snprintf(id, sizeof(id), "%lld", before);
	len = 0;
	fd = watch_open(env, id);
	assert_true(wait_for(fd, buf, sizeof(buf), &len, "event: update"));
	assert_null(strstr(buf, "event: snapshot"));
	close(fd);
	/* An unknown id gets a fresh snapshot. */
	len = 0;
	fd = watch_open(env, "999999");
	assert_true(wait_for(fd, buf, sizeof(buf), &len, "event: snapshot"));
	/* Left open: stopping the server must end it, not hang on it. */
	open_watch = fd;
}

/* Positions mean the same on every novad: a watcher that saw a change on
 * novad A resumes on novad B, which never read the table at that position,
 * and gets the routes the events since then touched, as they are now; a
 * position B read needs nothing; one past the events kept gets a snapshot
 * that says so. */
static void test_a_watcher_resumes_on_another_novad(void **state)
{
	struct testenv *env = *state;
	struct inventory_routes *b;
	struct nova_err err;
	long long seen, h0, h1, h2;
	char *ev;
	assert_int_equal(inventory_routes_create(&b, env->db, NULL, NULL, &err), 0);
	assert_int_equal(inventory_routes_refresh(NULL, b, &err), 0);
	refresh(env);
	h0 = inventory_routes_version(env->routes);
	assert_int_equal(inventory_routes_version(b), h0);

	/* A sees the node go silent; B does not read meanwhile. */
	assert_int_equal(pool_node_transition(env->db, node_id, POOL_NODE_UNHEALTHY, "test", &err), 0);
	refresh(env);
	h1 = inventory_routes_version(env->routes);
	assert_true(h1 > h0);
	assert_null(inventory_routes_resume(env->routes, h0, &seen)); /* a position A read */
	ev = inventory_routes_next_event(env->routes, seen, &seen);
	assert_non_null(ev);
	char want[64];
	snprintf(want, sizeof(want), "id: %lld\nevent: update", h1);
	assert_non_null(strstr(ev, want)); /* A's event carries the position */
	free(ev);
	/* It comes back; both read now, B finding its table unchanged. */
	assert_int_equal(pool_node_transition(env->db, node_id, POOL_NODE_READY, "test", &err), 0);
	refresh(env);
	h2 = inventory_routes_version(env->routes);
	assert_true(h2 > h1);
	assert_int_equal(inventory_routes_refresh(NULL, b, &err), 0);
	assert_int_equal(inventory_routes_version(b), h0);

	/* From h1 (the model without its endpoint): B sends the model again. */
	ev = inventory_routes_resume(b, h1, &seen);
	assert_non_null(ev);
	assert_non_null(strstr(ev, "event: update"));
	assert_non_null(strstr(ev, "http://127.0.0.1:9001"));
	assert_non_null(strstr(ev, "\"resumed_from\":"));
	assert_non_null(strstr(ev, "\"m/sql\":{")); /* the adapter's route too */
	free(ev);
	/* Then nothing more: B's cursor is its current table. */
	assert_null(inventory_routes_next_event(b, seen, &seen));
	/* Positions B read need nothing first. */
	assert_null(inventory_routes_resume(b, h0, &seen));
	assert_true(seen >= 0);
	assert_null(inventory_routes_next_event(b, seen, &seen));
	/* A position past the events kept: a snapshot that says so. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(db_pool_exec(NULL, env->db,
			"INSERT INTO pool_events (pool_id, kind, message) SELECT id, 'test', 'x' "
			"FROM pools LIMIT 1", 0, NULL, &err), 0);
	assert_int_equal(events_prune(NULL, env->db, 1, 0, &err), 0);
	assert_int_equal(inventory_routes_refresh(NULL, b, &err), 0);
	ev = inventory_routes_resume(b, h1, &seen);
	assert_non_null(ev);
	assert_non_null(strstr(ev, "event: snapshot"));
	assert_non_null(strstr(ev, "\"expired\":true"));
	free(ev);
	inventory_routes_destroy(b);
}

static int teardown_watch(void **state)
{
	int rc = testenv_teardown(state); /* http_server_stop ends the open stream */
	if (open_watch >= 0) {
		char b[4096];
		ssize_t n;
		while ((n = read(open_watch, b, sizeof(b))) > 0)
			;
		close(open_watch);
		open_watch = -1;
		if (n < 0)
			return -1;
	}
	return rc;
}

/* A table never read from the database is no table: 503 (with
 * Retry-After), never an empty list, for reads and for watchers alike. */
static void test_a_table_never_read_is_unavailable_not_empty(void **state)
{
	struct testenv *env = *state;
	struct inventory_routes *fresh;
	struct nova_err err;
	char etag[INVENTORY_ROUTES_ETAG_LEN], *text = NULL;
	assert_int_equal(inventory_routes_create(&fresh, env->db, env->inventory, NULL, &err), 0);
	assert_int_equal(inventory_routes_age_ms(fresh, NULL), -1);
	assert_int_equal(inventory_routes_get(&text, etag, fresh, NULL, &err), NOVA_EUNAVAIL);
	assert_null(text);
	assert_int_equal(inventory_routes_refresh(NULL, fresh, &err), 0);
	assert_int_equal(inventory_routes_get(&text, etag, fresh, NULL, &err), 0);
	assert_non_null(strstr(text, "\"endpoints\""));
	assert_null(strstr(text, "stale"));
	free(text);
	inventory_routes_destroy(fresh);
}

/* A table not read again for INVENTORY_ROUTES_STALE_MS (the database is
 * away) is still served, whole, and says how old it is; the next read
 * makes it fresh again. */
static void test_a_table_not_refreshed_says_it_is_stale(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	refresh(env);
	struct timespec ts = {INVENTORY_ROUTES_STALE_MS / 1000, 300 * 1000000L};
	nanosleep(&ts, NULL);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes", ADMIN, NULL), 200);
	assert_true(json_is_true(json_object_get(b, "stale")));
	assert_true(json_integer_value(json_object_get(b, "age_ms")) > INVENTORY_ROUTES_STALE_MS);
	assert_int_equal(json_array_size(json_object_get(b, "routes")), 2); /* m and m/sql */
	json_decref(b);
	refresh(env);
	assert_int_equal(testenv_http(&b, env, "GET", "/v1/routes", ADMIN, NULL), 200);
	assert_null(json_object_get(b, "stale"));
	assert_int_equal(json_array_size(json_object_get(b, "routes")), 2);
	json_decref(b);
}

/* ---- caps on watch streams ---------------------------------------------- */

static int setup_capped(void **state)
{
	struct testenv *env = calloc(1, sizeof(*env));
	if (!env || testenv_gateway_start_watch_caps(env, 64 * 1024, 3, 2) != 0) {
		free(env);
		return -1;
	}
	*state = env;
	return 0;
}

/* A watch as credential, read until its first event (an open stream) or
 * until the server closes (a refusal); the answer so far in buf. */
static int watch_as(struct testenv *env, const char *cred, char *buf, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(http_server_port(env->srv))};
	char req[512];
	size_t len = 0;
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	int n = snprintf(req, sizeof(req),
			 "GET /v1/routes/watch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n",
			 cred);
	assert_int_equal(write(fd, req, (size_t)n), n);
	buf[0] = '\0';
	for (int i = 0; i < 100 && !strstr(buf, "event: snapshot"); i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r <= 0)
			break; /* closed */
		len += (size_t)r;
		buf[len] = '\0';
	}
	return fd;
}

static char *routes_key(struct testenv *env)
{
	json_t *b;
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN,
				      "{\"name\":\"router\",\"scopes\":[\"routes\"]}"), 201);
	char *key = strdup(json_string_value(json_object_get(b, "key")));
	json_decref(b);
	return key;
}

/* Per credential 2, in all 3: the admin token's third stream and a
 * fourth in all are 429 with Retry-After and a closed connection; the
 * streams open are untouched. */
static void test_watch_streams_past_the_caps_are_429_with_retry_after(void **state)
{
	struct testenv *env = *state;
	char buf[8192], hdr[64];
	int fds[5];
	char *key = routes_key(env), *key2 = routes_key(env);
	fds[0] = watch_as(env, ADMIN, buf, sizeof(buf));
	assert_non_null(strstr(buf, "event: snapshot"));
	fds[1] = watch_as(env, ADMIN, buf, sizeof(buf));
	assert_non_null(strstr(buf, "event: snapshot"));
	fds[2] = watch_as(env, ADMIN, buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.1 429 ", 13);
	assert_non_null(rawhttp_header(hdr, sizeof(hdr), buf, "Retry-After"));
	assert_string_equal(hdr, "10");
	assert_non_null(strstr(buf, "\"code\":\"too_many_requests\""));
	assert_non_null(strstr(buf, "this credential"));
	/* Another key is not held by the admin token's count... */
	fds[3] = watch_as(env, key, buf, sizeof(buf));
	assert_non_null(strstr(buf, "event: snapshot"));
	/* ...but the total is reached now. */
	fds[4] = watch_as(env, key2, buf, sizeof(buf));
	assert_memory_equal(buf, "HTTP/1.1 429 ", 13);
	assert_non_null(strstr(buf, "streams are open"));
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	free(key);
	free(key2);
}

/* A stream that ends gives its place back. */
static void test_a_closed_watch_stream_frees_its_place(void **state)
{
	struct testenv *env = *state;
	char buf[8192];
	int a = watch_as(env, ADMIN, buf, sizeof(buf));
	int b = watch_as(env, ADMIN, buf, sizeof(buf));
	close(a);
	/* The server hears of it on its next write: an update. */
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"p2\",\"provider\":\"fake\"}"), 201);
	bool open = false;
	for (int i = 0; i < 50 && !open; i++) {
		refresh(env);
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
		int c = watch_as(env, ADMIN, buf, sizeof(buf));
		open = strstr(buf, "event: snapshot") != NULL;
		close(c);
	}
	close(b);
	assert_true(open);
}

int main(void)
{
	struct nova_err err;
	http_client_global_init(&err);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_routes_list_ready_endpoints_with_load, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_etag_and_if_none_match, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_dynamic_adapters_are_routed_with_what_each_replica_has_loaded, setup_dynamic, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_model_at_zero_replicas_has_a_route_without_endpoints, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_one_table_has_one_etag_on_every_novad, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_new_load_hints_reach_a_kept_table, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_watch_snapshot_then_change_then_resume, setup, teardown_watch),
		cmocka_unit_test_setup_teardown(test_a_watcher_resumes_on_another_novad, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_table_never_read_is_unavailable_not_empty, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_table_not_refreshed_says_it_is_stale, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_watch_streams_past_the_caps_are_429_with_retry_after, setup_capped, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_a_closed_watch_stream_frees_its_place, setup_capped, testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
