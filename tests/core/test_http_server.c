/* The HTTP server wrapper over real loopback HTTP: routing, 404/405/413,
 * concurrency, graceful stop with a request in flight, the access log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/http.h"
#include "core/http_client.h"
#include "core/log.h"
#include "tests/support/rawhttp.h"

static atomic_int calls;

static void h_echo(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls, 1);
	const char *id = http_request_param(req, "id");
	const char *q = http_request_query(req, "q");
	const char *hdr = http_request_header(req, "x-test");
	http_response_json(res, 200, json_pack("{s:s, s:s?, s:s?, s:s?, s:I, s:s}", "route", req->route,
					       "id", id, "q", q, "hdr", hdr, "len",
					       (json_int_t)req->body_len, "method", req->method));
	http_response_header_add(res, "X-Extra", "yes");
}

static void h_special(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)req, (void)ctx;
	http_response_json(res, 200, json_pack("{s:s}", "route", "special"));
}

static void h_fail(struct http_request *req, struct http_response *res, void *ctx)
{
	struct nova_err err;
	(void)req, (void)ctx;
	nova_err_set(&err, NOVA_EINVAL, "spec.replicas", "replicas must be positive");
	nova_err_set_hint(&err, "try 1");
	http_response_error(res, &err);
}

static void h_slow(struct http_request *req, struct http_response *res, void *ctx)
{
	struct timespec ts = {0, 300 * 1000000L};
	(void)req, (void)ctx;
	nanosleep(&ts, NULL);
	http_response_json(res, 200, json_pack("{s:b}", "slept", 1));
}

static struct http_server *start(size_t max_body)
{
	struct http_server *srv;
	struct nova_err err;
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 4, .max_body = max_body};
	assert_int_equal(http_server_create(&srv, &cfg, &err), 0);
	assert_int_equal(http_server_route_add(srv, "GET", "/v1/things/{id}", h_echo, NULL, &err), 0);
	assert_int_equal(http_server_route_add(srv, "POST", "/v1/things/{id}", h_echo, NULL, &err), 0);
	assert_int_equal(http_server_route_add(srv, "GET", "/v1/things/special", h_special, NULL, &err), 0);
	assert_int_equal(http_server_route_add(srv, "POST", "/v1/fail", h_fail, NULL, &err), 0);
	assert_int_equal(http_server_route_add(srv, "GET", "/slow", h_slow, NULL, &err), 0);
	assert_int_equal(http_server_start(srv, &err), 0);
	assert_true(http_server_port(srv) > 0);
	return srv;
}

static long get(json_t **body, struct http_server *srv, const char *method, const char *path,
		const char *payload, size_t len, const char *const *headers, const char *token)
{
	char url[256];
	struct http_client_response res;
	struct nova_err err;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", http_server_port(srv), path);
	struct http_client_request req = {.method = method, .url = url, .body = payload,
					  .body_len = len, .headers = headers, .bearer_token = token};
	if (body)
		*body = NULL;
	if (http_client_do(&res, &req, &err))
		return -1;
	if (body && res.body_len)
		*body = json_loadb(res.body, res.body_len, 0, NULL);
	long st = res.status;
	http_client_response_finish(&res);
	return st;
}

static char *raw(struct http_server *srv, const char *request)
{
	char *answer = rawhttp_exchange(http_server_port(srv), request, strlen(request));
	assert_non_null(answer);
	return answer;
}

static void test_route_params_query_and_headers(void **state)
{
	struct http_server *srv = start(0);
	json_t *b;
	const char *const hdr[] = {"X-Test: hello", NULL};
	(void)state;
	assert_int_equal(get(&b, srv, "GET", "/v1/things/a%20b?q=x%26y", NULL, 0, hdr, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "id")), "a b");
	assert_string_equal(json_string_value(json_object_get(b, "q")), "x&y");
	assert_string_equal(json_string_value(json_object_get(b, "hdr")), "hello");
	assert_string_equal(json_string_value(json_object_get(b, "route")), "/v1/things/{id}");
	json_decref(b);
	/* A literal segment wins over a parameter. */
	assert_int_equal(get(&b, srv, "GET", "/v1/things/special", NULL, 0, NULL, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "route")), "special");
	json_decref(b);
	/* A trailing slash is the same path. */
	assert_int_equal(get(NULL, srv, "GET", "/v1/things/x/", NULL, 0, NULL, NULL), 200);
	http_server_destroy(srv);
}

static void test_unknown_path_404_and_wrong_method_405_with_allow(void **state)
{
	struct http_server *srv = start(0);
	json_t *b;
	(void)state;
	assert_int_equal(get(&b, srv, "GET", "/nowhere", NULL, 0, NULL, NULL), 404);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "code")),
			    "not_found");
	json_decref(b);
	char *ans = raw(srv, "DELETE /v1/things/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(ans, "HTTP/1.1 405"));
	assert_non_null(strstr(ans, "Allow: GET, POST"));
	assert_non_null(strstr(ans, "method_not_allowed"));
	free(ans);
	http_server_destroy(srv);
}

static void test_body_over_cap_is_413_and_handler_never_runs(void **state)
{
	struct http_server *srv = start(1024);
	char big[2048];
	json_t *b;
	(void)state;
	memset(big, 'x', sizeof(big));
	atomic_store(&calls, 0);
	assert_int_equal(get(&b, srv, "POST", "/v1/things/1", big, sizeof(big), NULL, NULL), 413);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "code")),
			    "too_large");
	json_decref(b);
	/* Chunked, with no length announced. */
	char req[4096];
	int off = snprintf(req, sizeof(req),
			   "POST /v1/things/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
			   "Connection: close\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		off += snprintf(req + off, sizeof(req) - (size_t)off, "200\r\n");
		memset(req + off, 'y', 512);
		off += 512;
		off += snprintf(req + off, sizeof(req) - (size_t)off, "\r\n");
	}
	snprintf(req + off, sizeof(req) - (size_t)off, "0\r\n\r\n");
	char *ans = raw(srv, req);
	assert_non_null(strstr(ans, "HTTP/1.1 413"));
	free(ans);
	assert_int_equal(atomic_load(&calls), 0);
	/* Exactly at the cap, with a NUL inside, arrives whole. */
	char exact[1024];
	memset(exact, 'z', sizeof(exact));
	exact[100] = '\0';
	assert_int_equal(get(&b, srv, "POST", "/v1/things/1", exact, sizeof(exact), NULL, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "len")), 1024);
	json_decref(b);
	http_server_destroy(srv);
}

static void test_error_body_has_code_field_hint(void **state)
{
	struct http_server *srv = start(0);
	json_t *b;
	(void)state;
	assert_int_equal(get(&b, srv, "POST", "/v1/fail", "{}", 2, NULL, NULL), 400);
	json_t *e = json_object_get(b, "error");
	assert_string_equal(json_string_value(json_object_get(e, "code")), "invalid");
	assert_string_equal(json_string_value(json_object_get(e, "field")), "spec.replicas");
	assert_string_equal(json_string_value(json_object_get(e, "hint")), "try 1");
	json_decref(b);
	char *ans = raw(srv, "GET /v1/things/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(ans, "X-Extra: yes"));
	assert_non_null(strstr(ans, "Content-Type: application/json"));
	free(ans);
	http_server_destroy(srv);
}

struct hammer {
	struct http_server *srv;
	int ok;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	for (int i = 0; i < 50; i++)
		h->ok += get(NULL, h->srv, "GET", "/v1/things/x", NULL, 0, NULL, NULL) == 200;
	return NULL;
}

static void test_concurrent_requests_all_served(void **state)
{
	struct http_server *srv = start(0);
	pthread_t th[8];
	struct hammer h[8];
	(void)state;
	atomic_store(&calls, 0);
	for (int i = 0; i < 8; i++) {
		h[i] = (struct hammer){srv, 0};
		pthread_create(&th[i], NULL, hammer_thread, &h[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(h[i].ok, 50);
	}
	assert_int_equal(atomic_load(&calls), 400);
	http_server_destroy(srv);
}

struct slow_call {
	struct http_server *srv;
	long status;
};

static void *slow_thread(void *arg)
{
	struct slow_call *s = arg;
	s->status = get(NULL, s->srv, "GET", "/slow", NULL, 0, NULL, NULL);
	return NULL;
}

static void test_graceful_stop_finishes_the_request_in_flight(void **state)
{
	struct http_server *srv = start(0);
	struct slow_call s = {srv, 0};
	pthread_t th;
	struct timespec t0, t1, ts = {0, 100 * 1000000L};
	uint16_t port = http_server_port(srv);
	(void)state;
	pthread_create(&th, NULL, slow_thread, &s);
	nanosleep(&ts, NULL); /* the handler is sleeping now */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	http_server_stop(srv);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(th, NULL);
	assert_int_equal(s.status, 200);
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(waited >= 0.1); /* stop waited for the handler */
	/* Nothing listens any more. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	http_server_stop(srv); /* idempotent */
	http_server_destroy(srv);
}

static void test_bad_listen_and_busy_port(void **state)
{
	struct http_server *srv, *other;
	struct nova_err err;
	static const char *const bad[] = {"nonsense", "127.0.0.1", "1.2.3.4:99999", ":80", ""};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_server_config cfg = {.listen = bad[i], .threads = 1};
		assert_int_equal(http_server_create(&srv, &cfg, &err), NOVA_EINVAL);
		assert_string_equal(err.field, "listen");
	}
	srv = start(0);
	char addr[32];
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", http_server_port(srv));
	struct http_server_config cfg = {.listen = addr, .threads = 1};
	assert_int_equal(http_server_create(&other, &cfg, &err), 0);
	assert_int_equal(http_server_start(other, &err), NOVA_EUNAVAIL);
	assert_non_null(strstr(err.message, "in use"));
	http_server_destroy(other);
	assert_int_equal(http_server_route_add(srv, "GET", "/late", h_echo, NULL, &err), NOVA_ECONFLICT);
	http_server_destroy(srv);
	/* A closed port, from the client's side. */
	struct http_client_response res;
	struct http_client_request req = {.method = "GET", .url = "http://127.0.0.1:1/"};
	assert_int_equal(http_client_do(&res, &req, &err), NOVA_EUNAVAIL);
}

static char logbuf[16384];
static size_t loglen;
static pthread_mutex_t loglock = PTHREAD_MUTEX_INITIALIZER;

static void sink(void *ctx, enum nova_log_level level, const char *line)
{
	(void)ctx, (void)level;
	pthread_mutex_lock(&loglock);
	size_t n = strlen(line);
	if (loglen + n + 2 < sizeof(logbuf)) {
		memcpy(logbuf + loglen, line, n);
		loglen += n;
		logbuf[loglen++] = '\n';
		logbuf[loglen] = '\0';
	}
	pthread_mutex_unlock(&loglock);
}

static void test_access_log_never_has_tokens_or_queries(void **state)
{
	struct http_server *srv = start(0);
	(void)state;
	loglen = 0;
	logbuf[0] = '\0';
	nova_log_set_sink(sink, NULL);
	assert_int_equal(get(NULL, srv, "GET", "/v1/things/7?secret=hunter2", NULL, 0, NULL,
			     "sk-nova-TOPSECRETTOKEN"), 200);
	http_server_destroy(srv); /* waits for the completion callbacks */
	nova_log_set_sink(NULL, NULL);
	assert_non_null(strstr(logbuf, "\"method\":\"GET\""));
	assert_non_null(strstr(logbuf, "\"path\":\"/v1/things/7\""));
	assert_non_null(strstr(logbuf, "\"status\":\"200\""));
	assert_null(strstr(logbuf, "hunter2"));
	assert_null(strstr(logbuf, "TOPSECRET"));
}

int main(void)
{
	struct nova_err err;
	http_client_global_init(&err);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_params_query_and_headers),
		cmocka_unit_test(test_unknown_path_404_and_wrong_method_405_with_allow),
		cmocka_unit_test(test_body_over_cap_is_413_and_handler_never_runs),
		cmocka_unit_test(test_error_body_has_code_field_hint),
		cmocka_unit_test(test_concurrent_requests_all_served),
		cmocka_unit_test(test_graceful_stop_finishes_the_request_in_flight),
		cmocka_unit_test(test_bad_listen_and_busy_port),
		cmocka_unit_test(test_access_log_never_has_tokens_or_queries),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_client_global_cleanup();
	return rc;
}
