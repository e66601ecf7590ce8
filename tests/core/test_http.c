/* The HTTP server and client wrappers over real loopback HTTP, for what
 * tests/core/test_http_server.c does not already prove: encoded path
 * parameters (an encoded '/' included) and query values, 404/400/502 bodies
 * whatever bytes the path or the message holds, HEAD and 204, body caps met
 * by a real client's large uploads (and a chunked upload cut off rather than
 * drained), IPv6 and host-name listen addresses, handlers running in
 * parallel, and the client side (long bearer tokens, headers, ETag and
 * Content-Type, transport errors that never echo a query or a token). */
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

/* ---- handlers ---------------------------------------------------------- */

static atomic_int handler_calls;

static void h_echo(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&handler_calls, 1);
	const char *auth = http_request_header(req, "authorization");
	const char *xreq = http_request_header(req, "X-REQ-ID");
	json_t *o = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:I, s:b}", "route", req->route,
			      "id", http_request_param(req, "id"), "q",
			      http_request_query(req, "q"), "auth", auth, "xreq", xreq, "ctype",
			      http_request_header(req, "content-type"), "len",
			      (json_int_t)req->body_len, "body_null", req->body == NULL);
	http_response_json(res, 200, o);
	http_response_header_add(res, "ETag", "\"v42\"");
}

static void h_nodes(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	http_response_json(res, 200, json_pack("{s:s, s:s}", "route", req->route, "id",
					       http_request_param(req, "id")));
}

static void h_no_content(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)req, (void)ctx;
	res->status = 204;
}

static void h_text(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)req, (void)ctx;
	http_response_text(res, 200, "text/plain; version=0.0.4", "metric 1");
}

static void h_provider_bytes(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)req, (void)ctx;
	/* A provider's stderr is not always UTF-8. */
	http_response_errorf(res, NOVA_EFAILED, "", "provider said: caf\xe9 \xff\xfe");
}

static atomic_int active, max_active;

static void h_overlap(struct http_request *req, struct http_response *res, void *ctx)
{
	struct timespec ts = {0, 100 * 1000000L};
	(void)req, (void)ctx;
	int now = atomic_fetch_add(&active, 1) + 1;
	int seen = atomic_load(&max_active);
	while (now > seen && !atomic_compare_exchange_weak(&max_active, &seen, now))
		;
	nanosleep(&ts, NULL);
	atomic_fetch_sub(&active, 1);
	http_response_json(res, 200, json_object());
}

static struct http_server *start_on(const char *listen, size_t max_body)
{
	static const struct {
		const char *method, *pattern;
		http_handler_fn fn;
	} routes[] = {
		{"GET", "/v1/things/{id}", h_echo},
		{"POST", "/v1/things/{id}", h_echo},
		{"GET", "/v1/things/{id}/nodes", h_nodes},
		{"DELETE", "/v1/empty", h_no_content},
		{"GET", "/metrics", h_text},
		{"GET", "/overlap", h_overlap},
		{"POST", "/v1/provider", h_provider_bytes},
	};
	struct http_server *srv;
	struct nova_err err;
	struct http_server_config cfg = {.listen = listen, .threads = 4, .max_body = max_body};
	assert_int_equal(http_server_create(&srv, &cfg, &err), 0);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		assert_int_equal(http_server_route_add(srv, routes[i].method, routes[i].pattern,
						       routes[i].fn, NULL, &err), 0);
	assert_int_equal(http_server_start(srv, &err), 0);
	assert_true(http_server_port(srv) > 0);
	return srv;
}

static struct http_server *start(void)
{
	return start_on("127.0.0.1:0", 0);
}

/* ---- client helpers ---------------------------------------------------- */

struct call {
	const char *method;
	const char *path;
	const char *body;
	size_t body_len;
	const char *const *headers;
	const char *token;
	const char *host; /* default 127.0.0.1 */
};

#define CALL(...) (&(struct call){__VA_ARGS__})
#define GET(p) CALL(.method = "GET", .path = (p))

/* One request through http_client_do; returns the status, or the (negative)
 * error code. *out is filled on success; the caller finishes it. */
static long do_call(struct http_client_response *out, struct http_server *srv,
		    const struct call *c)
{
	char url[512];
	struct nova_err err;
	struct http_client_response tmp;
	snprintf(url, sizeof(url), "http://%s:%u%s", c->host ? c->host : "127.0.0.1",
		 http_server_port(srv), c->path);
	struct http_client_request req = {.method = c->method, .url = url, .body = c->body,
					  .body_len = c->body_len, .headers = c->headers,
					  .bearer_token = c->token};
	int rc = http_client_do(out ? out : &tmp, &req, &err);
	if (rc)
		return rc;
	long st = (out ? out : &tmp)->status;
	if (!out)
		http_client_response_finish(&tmp);
	return st;
}

/* Status and parsed JSON body (NULL when not JSON). */
static long do_json(json_t **body, struct http_server *srv, const struct call *c)
{
	struct http_client_response res;
	long st = do_call(&res, srv, c);
	*body = NULL;
	if (st < 0)
		return st;
	*body = json_loadb(res.body, res.body_len, 0, NULL);
	http_client_response_finish(&res);
	return st;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *err_code(const json_t *body)
{
	return jstr(json_object_get(body, "error"), "code");
}

static char *raw(struct http_server *srv, const char *request)
{
	char *answer = rawhttp_exchange(http_server_port(srv), request, strlen(request));
	assert_non_null(answer);
	return answer;
}

/* ---- routing and request accessors -------------------------------------- */

static void test_param_with_encoded_slash_is_one_decoded_param(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	/* Model names like "meta-llama/Llama-3" travel as one encoded segment. */
	assert_int_equal(do_json(&b, srv, GET("/v1/things/meta-llama%2FLlama%203")),
			 200);
	assert_string_equal(jstr(b, "route"), "/v1/things/{id}");
	assert_string_equal(jstr(b, "id"), "meta-llama/Llama 3");
	json_decref(b);
	assert_int_equal(do_json(&b, srv, GET("/v1/things/a%2Fb/nodes")), 200);
	assert_string_equal(jstr(b, "route"), "/v1/things/{id}/nodes");
	assert_string_equal(jstr(b, "id"), "a/b");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_query_values_are_decoded_and_absent_ones_are_null(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(do_json(&b, srv, GET("/v1/things/1?q=a%2Fb+c%3D&x=1")),
			 200);
	assert_string_equal(jstr(b, "q"), "a/b c=");
	json_decref(b);
	assert_int_equal(do_json(&b, srv, GET("/v1/things/1?other=1")), 200);
	assert_null(jstr(b, "q")); /* http_request_query gave NULL */
	json_decref(b);
	http_server_destroy(srv);
}

static void test_unknown_path_with_non_utf8_bytes_is_404_json(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(do_json(&b, srv, GET("/no%FF%FEwhere")), 404);
	assert_non_null(b);
	assert_string_equal(err_code(b), "not_found");
	json_decref(b);
	assert_int_equal(do_json(&b, srv, CALL(.method = "PUT", .path = "/v1/things/%FF")), 405);
	assert_non_null(b);
	assert_string_equal(err_code(b), "method_not_allowed");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_error_text_with_non_utf8_bytes_keeps_its_status(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(do_json(&b, srv, &(struct call){.method = "POST", .path = "/v1/provider",
							 .body = "{}", .body_len = 2}),
			 502);
	assert_string_equal(err_code(b), "provider_failed");
	assert_string_equal(jstr(json_object_get(b, "error"), "message"), "provider said: caf? ??");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_path_segment_with_encoded_nul_is_400(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	atomic_store(&handler_calls, 0);
	assert_int_equal(do_json(&b, srv, GET("/v1/things/a%00b")),
			 400);
	assert_string_equal(err_code(b), "invalid");
	assert_string_equal(jstr(json_object_get(b, "error"), "field"), "path");
	json_decref(b);
	assert_int_equal(atomic_load(&handler_calls), 0);
	http_server_destroy(srv);
}

static void test_head_on_get_route_sends_headers_without_body(void **state)
{
	struct http_server *srv = start();
	(void)state;
	char *ans = raw(srv, "HEAD /v1/things/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(ans, "HTTP/1.1 200"));
	assert_non_null(strstr(ans, "Content-Type: application/json"));
	const char *end = strstr(ans, "\r\n\r\n");
	assert_non_null(end);
	assert_string_equal(end + 4, "");
	free(ans);
	http_server_destroy(srv);
}

static void test_204_without_body_sends_no_body_and_no_content_type(void **state)
{
	struct http_server *srv = start();
	(void)state;
	char *ans = raw(srv, "DELETE /v1/empty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(ans, "HTTP/1.1 204"));
	assert_null(strstr(ans, "Content-Type"));
	const char *end = strstr(ans, "\r\n\r\n");
	assert_non_null(end);
	assert_string_equal(end + 4, "");
	free(ans);
	http_server_destroy(srv);
}

static void test_json_body_ends_with_newline_and_text_keeps_its_type(void **state)
{
	struct http_server *srv = start();
	struct http_client_response res;
	(void)state;
	assert_int_equal(do_call(&res, srv, GET("/v1/things/1")), 200);
	assert_true(res.body_len > 1);
	assert_int_equal(res.body[res.body_len - 1], '\n');
	http_client_response_finish(&res);
	assert_int_equal(do_call(&res, srv, GET("/metrics")), 200);
	assert_string_equal(res.content_type, "text/plain; version=0.0.4");
	assert_string_equal(res.body, "metric 1");
	http_client_response_finish(&res);
	http_server_destroy(srv);
}

/* ---- body caps against a real client ------------------------------------ */

static void test_client_upload_over_default_cap_gets_413_not_a_reset(void **state)
{
	struct http_server *srv = start(); /* max_body 0: the 1 MiB default */
	size_t len = 4u * 1024 * 1024;
	char *big = malloc(len);
	json_t *b;
	(void)state;
	assert_non_null(big);
	memset(big, 'x', len);
	atomic_store(&handler_calls, 0);
	assert_int_equal(do_json(&b, srv, CALL(.method = "POST", .path = "/v1/things/1",
					       .body = big, .body_len = len)),
			 413);
	assert_string_equal(err_code(b), "too_large");
	assert_string_equal(jstr(json_object_get(b, "error"), "message"),
			    "request body exceeds 1048576 bytes");
	json_decref(b);
	assert_int_equal(atomic_load(&handler_calls), 0);
	free(big);
	http_server_destroy(srv);
}

static void test_client_chunked_upload_over_cap_gets_413(void **state)
{
	struct http_server *srv = start();
	size_t len = 1536u * 1024;
	char *big = malloc(len);
	const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
	json_t *b;
	(void)state;
	assert_non_null(big);
	memset(big, 'y', len);
	atomic_store(&handler_calls, 0);
	assert_int_equal(do_json(&b, srv, CALL(.method = "POST", .path = "/v1/things/1",
					       .body = big, .body_len = len, .headers = chunked)),
			 413);
	assert_string_equal(err_code(b), "too_large");
	json_decref(b);
	assert_int_equal(atomic_load(&handler_calls), 0);
	free(big);
	http_server_destroy(srv);
}

static void test_chunked_upload_far_over_cap_is_cut_off_not_read_to_the_end(void **state)
{
	struct http_server *srv = start_on("127.0.0.1:0", 64 * 1024);
	size_t len = 64u * 1024 * 1024;
	char *big = malloc(len);
	const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
	(void)state;
	assert_non_null(big);
	memset(big, 'z', len);
	/* Past twice the cap the server hangs up instead of draining 64 MiB. */
	assert_int_equal(do_call(NULL, srv, CALL(.method = "POST", .path = "/v1/things/1",
							    .body = big, .body_len = len,
							    .headers = chunked)),
			 NOVA_EUNAVAIL);
	free(big);
	/* The server is fine afterwards. */
	assert_int_equal(do_call(NULL, srv, GET("/v1/things/1")),
			 200);
	http_server_destroy(srv);
}

static void test_binary_body_under_cap_reaches_handler_whole(void **state)
{
	struct http_server *srv = start();
	char body[300];
	json_t *b;
	(void)state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)(i % 7); /* NUL bytes included */
	assert_int_equal(do_json(&b, srv, CALL(.method = "POST", .path = "/v1/things/1",
					       .body = body, .body_len = sizeof(body))),
			 200);
	assert_int_equal(json_integer_value(json_object_get(b, "len")), 300);
	assert_string_equal(jstr(b, "ctype"), "application/json");
	json_decref(b);
	/* No body: the handler sees NULL, not "". */
	assert_int_equal(do_json(&b, srv, GET("/v1/things/1")), 200);
	assert_true(json_is_true(json_object_get(b, "body_null")));
	json_decref(b);
	http_server_destroy(srv);
}

/* ---- listening ----------------------------------------------------------- */

static void test_ipv6_loopback_listen_serves_requests(void **state)
{
	struct http_server *srv = start_on("[::1]:0", 0);
	json_t *b;
	(void)state;
	assert_int_equal(do_json(&b, srv, CALL(.method = "GET", .path = "/v1/things/v6",
							 .host = "[::1]")),
			 200);
	assert_string_equal(jstr(b, "id"), "v6");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_localhost_listen_resolves_to_loopback(void **state)
{
	struct http_server *srv = start_on("localhost:0", 0);
	(void)state;
	assert_int_equal(do_call(NULL, srv, GET("/v1/things/1")), 200);
	http_server_destroy(srv);
}

static void test_more_bad_listen_strings_name_the_listen_field(void **state)
{
	static const char *const bad[] = {"127.0.0.1:abc", "::1:80", "[::1:80", "[::1]80",
					  "127.0.0.1:-1", "127.0.0.1:"};
	struct http_server *srv;
	struct nova_err err;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_server_config cfg = {.listen = bad[i]};
		nova_err_clear(&err);
		srv = (struct http_server *)&err; /* must be reset to NULL */
		assert_int_equal(http_server_create(&srv, &cfg, &err), NOVA_EINVAL);
		assert_null(srv);
		assert_string_equal(err.field, "listen");
	}
}

static void test_stop_without_start_and_destroy_null_are_safe(void **state)
{
	struct http_server *srv;
	struct nova_err err;
	struct http_server_config cfg = {.listen = "127.0.0.1:0"};
	(void)state;
	http_server_destroy(NULL);
	http_server_stop(NULL);
	assert_int_equal(http_server_create(&srv, &cfg, &err), 0);
	http_server_stop(srv);
	http_server_stop(srv);
	http_server_destroy(srv);
}

/* ---- concurrency ----------------------------------------------------------- */

struct overlap_caller {
	struct http_server *srv;
	int ok;
};

static void *overlap_thread(void *arg)
{
	struct overlap_caller *c = arg;
	for (int i = 0; i < 3; i++)
		c->ok += do_call(NULL, c->srv, GET("/overlap")) == 200;
	return NULL;
}

static void test_handlers_run_in_parallel_on_pool_threads(void **state)
{
	struct http_server *srv = start();
	pthread_t th[8];
	struct overlap_caller c[8];
	(void)state;
	atomic_store(&active, 0);
	atomic_store(&max_active, 0);
	for (int i = 0; i < 8; i++) {
		c[i] = (struct overlap_caller){srv, 0};
		assert_int_equal(pthread_create(&th[i], NULL, overlap_thread, &c[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(c[i].ok, 3);
	}
	/* With a lock around handlers this would stay at 1. */
	assert_true(atomic_load(&max_active) >= 2);
	http_server_destroy(srv);
}

/* ---- the client ------------------------------------------------------------ */

static void test_client_sends_bearer_and_headers_and_reads_etag(void **state)
{
	struct http_server *srv = start();
	struct http_client_response res;
	const char *const hdrs[] = {"X-Req-Id: r-1", NULL};
	(void)state;
	assert_int_equal(do_call(&res, srv, CALL(.method = "GET", .path = "/v1/things/1",
						 .headers = hdrs, .token = "sk-nova-abc")),
			 200);
	assert_string_equal(res.etag, "\"v42\"");
	assert_string_equal(res.content_type, "application/json");
	json_t *b = json_loadb(res.body, res.body_len, 0, NULL);
	assert_string_equal(jstr(b, "auth"), "Bearer sk-nova-abc");
	assert_string_equal(jstr(b, "xreq"), "r-1");
	json_decref(b);
	http_client_response_finish(&res);
	assert_null(res.body);
	assert_null(res.etag);
	assert_null(res.content_type);
	assert_int_equal(res.status, 0);
	http_client_response_finish(NULL);
	http_server_destroy(srv);
}

static void test_client_sends_a_long_bearer_token_whole(void **state)
{
	struct http_server *srv = start();
	char token[3000], expect[3100];
	json_t *b;
	(void)state;
	/* Kubernetes service-account tokens are JWTs well past 1 KiB. */
	for (size_t i = 0; i < sizeof(token) - 1; i++)
		token[i] = (char)('a' + i % 26);
	token[sizeof(token) - 1] = '\0';
	snprintf(expect, sizeof(expect), "Bearer %s", token);
	assert_int_equal(do_json(&b, srv, CALL(.method = "GET", .path = "/v1/things/1",
							 .token = token)),
			 200);
	assert_string_equal(jstr(b, "auth"), expect);
	json_decref(b);
	http_server_destroy(srv);
}

static void test_client_error_status_is_returned_not_failed(void **state)
{
	struct http_server *srv = start();
	struct http_client_response res;
	(void)state;
	assert_int_equal(do_call(&res, srv, GET("/nowhere")), 404);
	assert_non_null(strstr(res.body, "not_found"));
	http_client_response_finish(&res);
	http_server_destroy(srv);
}

static void test_client_transport_error_never_echoes_query_or_token(void **state)
{
	struct http_client_response res;
	struct nova_err err;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	char url[128];
	(void)state;
	/* A port that was free a moment ago: bound, then closed, so nothing listens. */
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/x?secret=QSECRET", ntohs(a.sin_port));
	struct http_client_request req = {.method = "GET", .url = url,
					  .bearer_token = "sk-nova-TSECRET"};
	assert_int_equal(http_client_do(&res, &req, &err), NOVA_EUNAVAIL);
	assert_true(err.message[0] != '\0');
	assert_null(strstr(err.message, "QSECRET"));
	assert_null(strstr(err.message, "TSECRET"));
	assert_null(res.body);
}

/* ---- access log -------------------------------------------------------------- */

static char logbuf[32768];
static size_t loglen;
static pthread_mutex_t loglock = PTHREAD_MUTEX_INITIALIZER;

static void log_sink(void *ctx, enum nova_log_level level, const char *line)
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

static void test_access_log_has_timing_bytes_and_remote_but_no_body(void **state)
{
	struct http_server *srv = start();
	const char body[] = "{\"password\":\"BODYSECRET\"}";
	(void)state;
	loglen = 0;
	logbuf[0] = '\0';
	nova_log_set_level(NOVA_LOG_INFO);
	nova_log_set_sink(log_sink, NULL);
	assert_int_equal(do_call(NULL, srv, CALL(.method = "POST",
						 .path = "/v1/things/9?token=QSECRET",
						 .body = body, .body_len = strlen(body),
						 .token = "sk-nova-TSECRET")),
			 200);
	http_server_destroy(srv); /* every request is complete and logged */
	nova_log_set_sink(NULL, NULL);
	nova_log_set_level(NOVA_LOG_WARN);
	const char *line = strstr(logbuf, "\"msg\":\"request\"");
	assert_non_null(line);
	assert_non_null(strstr(line, "\"method\":\"POST\""));
	assert_non_null(strstr(line, "\"path\":\"/v1/things/9\""));
	assert_non_null(strstr(line, "\"status\":\"200\""));
	assert_non_null(strstr(line, "\"duration_ms\":\""));
	assert_non_null(strstr(line, "\"bytes\":\""));
	assert_non_null(strstr(line, "\"remote\":\"127.0.0.1\""));
	assert_null(strstr(logbuf, "BODYSECRET"));
	assert_null(strstr(logbuf, "QSECRET"));
	assert_null(strstr(logbuf, "TSECRET"));
}

int main(void)
{
	struct nova_err err;
	if (http_client_global_init(&err) != 0)
		return 1;
	/* Access-log lines of the other tests would only be noise here. */
	nova_log_set_level(NOVA_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_param_with_encoded_slash_is_one_decoded_param),
		cmocka_unit_test(test_query_values_are_decoded_and_absent_ones_are_null),
		cmocka_unit_test(test_unknown_path_with_non_utf8_bytes_is_404_json),
		cmocka_unit_test(test_error_text_with_non_utf8_bytes_keeps_its_status),
		cmocka_unit_test(test_path_segment_with_encoded_nul_is_400),
		cmocka_unit_test(test_head_on_get_route_sends_headers_without_body),
		cmocka_unit_test(test_204_without_body_sends_no_body_and_no_content_type),
		cmocka_unit_test(test_json_body_ends_with_newline_and_text_keeps_its_type),
		cmocka_unit_test(test_client_upload_over_default_cap_gets_413_not_a_reset),
		cmocka_unit_test(test_client_chunked_upload_over_cap_gets_413),
		cmocka_unit_test(test_chunked_upload_far_over_cap_is_cut_off_not_read_to_the_end),
		cmocka_unit_test(test_binary_body_under_cap_reaches_handler_whole),
		cmocka_unit_test(test_ipv6_loopback_listen_serves_requests),
		cmocka_unit_test(test_localhost_listen_resolves_to_loopback),
		cmocka_unit_test(test_more_bad_listen_strings_name_the_listen_field),
		cmocka_unit_test(test_stop_without_start_and_destroy_null_are_safe),
		cmocka_unit_test(test_handlers_run_in_parallel_on_pool_threads),
		cmocka_unit_test(test_client_sends_bearer_and_headers_and_reads_etag),
		cmocka_unit_test(test_client_sends_a_long_bearer_token_whole),
		cmocka_unit_test(test_client_error_status_is_returned_not_failed),
		cmocka_unit_test(test_client_transport_error_never_echoes_query_or_token),
		cmocka_unit_test(test_access_log_has_timing_bytes_and_remote_but_no_body),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_client_global_cleanup();
	return rc;
}
