/* The HTTP server wrapper (core/http.c) driven by the HTTP client wrapper
 * (core/http_client.c) over real loopback HTTP, one behaviour per test:
 * routing and the request accessors (encoded segments, an encoded '/'
 * included, and query values), 404/405/400/502 bodies whatever bytes the
 * path or the message holds, HEAD and 204, the body cap (Content-Length and
 * chunked, from a raw socket and from curl's large uploads; a chunked upload
 * far over it cut off rather than drained) and a body exactly at the cap,
 * strict framing (Content-Length with Transfer-Encoding, unknown transfer
 * codings, HTTP/1.1 without one Host: 400 and closed), connection limits
 * (header and body deadlines, idle connections shed at the cap for a
 * newcomer, the per-address cap), a stop bounded while a handler never
 * returns,
 * extra response headers, concurrency (every request served, handlers in
 * parallel), graceful stop with a request in flight, listen addresses
 * (errors, IPv6, host names), the client side (long bearer tokens, headers,
 * ETag and Content-Type, transport errors that never echo a query or a
 * token) and the access log.
 *
 * Where curl keeps too little of the answer (the Allow header) or will not
 * send what we need (a chunked body, headers without their body) the test
 * talks to the server over a plain socket. Every test stops and destroys its
 * server so the file is leak-free under `make asan`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/http.h"
#include "core/http_client.h"
#include "core/log.h"
#include "tests/support/rawhttp.h"

#define CAP 4096 /* max_body of the servers from start() */

/* ---- handlers ------------------------------------------------------------ */

static atomic_int calls;        /* every handler that runs counts itself */

/* Echo what the accessors see, as JSON. */
static void h_echo(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls, 1);
	json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?}", "route", req->route,
			      "handler", "echo", "id", http_request_param(req, "id"), "name",
			      http_request_param(req, "name"), "version",
			      http_request_param(req, "version"), "nope",
			      http_request_param(req, "nope"), "method", req->method);
	http_response_json(res, 200, o);
}

static void h_special(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls, 1);
	http_response_json(res, 200, json_pack("{s:s, s:s}", "route", req->route, "handler",
					       "special"));
}

static void h_query(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls, 1);
	http_response_json(res, 200, json_pack("{s:s?, s:s?, s:s?}", "q",
					       http_request_query(req, "q"), "limit",
					       http_request_query(req, "limit"), "absent",
					       http_request_query(req, "absent")));
}

static void h_header(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls, 1);
	http_response_json(res, 200, json_pack("{s:s?, s:s?, s:s?, s:s?}", "lower",
					       http_request_header(req, "x-nova-probe"), "upper",
					       http_request_header(req, "X-NOVA-PROBE"), "mixed",
					       http_request_header(req, "X-Nova-Probe"), "absent",
					       http_request_header(req, "X-Not-Sent")));
}

/* The last body a handler saw, byte for byte. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen_body[2 * CAP];
static size_t seen_len;
static bool seen_nul_terminated, seen_null;

static void h_upload(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls, 1);
	pthread_mutex_lock(&seen_lock);
	seen_len = req->body_len;
	seen_null = req->body == NULL;
	if (req->body && req->body_len <= sizeof(seen_body)) {
		memcpy(seen_body, req->body, req->body_len);
		seen_nul_terminated = req->body[req->body_len] == '\0';
	}
	pthread_mutex_unlock(&seen_lock);
	http_response_json(res, 200, json_pack("{s:I}", "len", (json_int_t)req->body_len));
}

static void h_fail_hint(struct http_request *req, struct http_response *res, void *ctx)
{
	struct nova_err err;
	(void)req, (void)ctx;
	atomic_fetch_add(&calls, 1);
	nova_err_set(&err, NOVA_EINVAL, "spec.replicas", "replicas must be at least %d", 1);
	nova_err_set_hint(&err, "set spec.replicas to 1 or more");
	http_response_error(res, &err);
}

static void h_fail_plain(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)req, (void)ctx;
	atomic_fetch_add(&calls, 1);
	http_response_errorf(res, NOVA_EEXISTS, "name", "pool %s exists", "gpu-a");
}

/* ?code=again answers NOVA_EAGAIN, anything else NOVA_EUNAVAIL. */
static void h_unavailable(struct http_request *req, struct http_response *res, void *ctx)
{
	const char *code = http_request_query(req, "code");
	(void)ctx;
	http_response_errorf(res, code && !strcmp(code, "again") ? NOVA_EAGAIN : NOVA_EUNAVAIL, "",
			     "the database did not answer within %d ms", 2000);
}

static void h_extra_headers(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)req, (void)ctx;
	atomic_fetch_add(&calls, 1);
	http_response_json(res, 201, json_pack("{s:b}", "ok", 1));
	http_response_header_add(res, "X-Nova-Request-Id", "req-123");
	http_response_header_add(res, "Cache-Control", "no-store");
	http_response_header_add(res, "Location", "/v1/pools/gpu-a");
}

static void h_request_id(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	http_response_json(res, 200, json_pack("{s:s}", "request_id", req->request_id));
}

static atomic_int slow_started, slow_done;

static void h_slow(struct http_request *req, struct http_response *res, void *ctx)
{
	struct timespec ts = {0, 300 * 1000000L};
	(void)req, (void)ctx;
	atomic_fetch_add(&calls, 1);
	atomic_store(&slow_started, 1);
	nanosleep(&ts, NULL);
	atomic_store(&slow_done, 1);
	http_response_json(res, 200, json_pack("{s:b}", "slept", 1));
}

/* What the /v1/things routes see, as JSON, with an ETag. */
static void h_thing(struct http_request *req, struct http_response *res, void *ctx)
{
	(void)ctx;
	atomic_fetch_add(&calls, 1);
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

/* Blocks until stuck_release is set: a handler wedged in a read that
 * never returns (a device, a FIFO), for as long as the test wants. */
static atomic_int stuck_entered, stuck_release;

static void h_stuck(struct http_request *req, struct http_response *res, void *ctx)
{
	struct timespec ts = {0, 5 * 1000000L};
	(void)req, (void)ctx;
	atomic_store(&stuck_entered, 1);
	while (!atomic_load(&stuck_release))
		nanosleep(&ts, NULL);
	http_response_json(res, 200, json_object());
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

/* ---- server -------------------------------------------------------------- */

static struct http_server *start_cfg(const struct http_server_config *cfg);

static struct http_server *start_on(const char *listen, size_t max_body)
{
	struct http_server_config cfg = {.listen = listen, .threads = 4, .max_body = max_body};
	return start_cfg(&cfg);
}

static struct http_server *start_cfg(const struct http_server_config *cfg)
{
	/* The literal /v1/pools/special is added after the {id} routes, so
	 * its win cannot come from registration order. */
	static const struct {
		const char *method, *pattern;
		http_handler_fn fn;
	} routes[] = {
		{"GET", "/v1/pools/{id}", h_echo},
		{"DELETE", "/v1/pools/{id}", h_echo},
		{"GET", "/v1/pools/special", h_special},
		{"GET", "/v1/models/{name}/versions/{version}", h_echo},
		{"GET", "/v1/query", h_query},
		{"GET", "/v1/header", h_header},
		{"POST", "/v1/upload", h_upload},
		{"POST", "/v1/fail-hint", h_fail_hint},
		{"POST", "/v1/fail-plain", h_fail_plain},
		{"POST", "/v1/extra", h_extra_headers},
		{"GET", "/v1/unavailable", h_unavailable},
		{"GET", "/slow", h_slow},
		{"GET", "/v1/things/{id}", h_thing},
		{"POST", "/v1/things/{id}", h_thing},
		{"GET", "/v1/things/{id}/nodes", h_nodes},
		{"DELETE", "/v1/empty", h_no_content},
		{"GET", "/metrics", h_text},
		{"GET", "/overlap", h_overlap},
		{"POST", "/v1/provider", h_provider_bytes},
		{"GET", "/v1/request-id", h_request_id},
		{"GET", "/stuck", h_stuck},
	};
	struct http_server *srv;
	struct nova_err err;
	assert_int_equal(http_server_create(&srv, cfg, &err), 0);
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		assert_int_equal(http_server_route_add(srv, routes[i].method, routes[i].pattern,
						       routes[i].fn, NULL, &err), 0);
	assert_int_equal(http_server_start(srv, &err), 0);
	assert_true(http_server_port(srv) > 0);
	atomic_store(&calls, 0);
	return srv;
}

static struct http_server *start(void)
{
	return start_on("127.0.0.1:0", CAP);
}

/* ---- client helpers ------------------------------------------------------ */

struct call {
	const char *method; /* default GET */
	const char *path;
	const char *body;
	size_t body_len;
	const char *content_type;
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
	struct http_client_request req = {
		.method = c->method ? c->method : "GET", .url = url, .body = c->body,
		.body_len = c->body_len, .content_type = c->content_type, .headers = c->headers,
		.bearer_token = c->token, .timeout_ms = 10000,
	};
	int rc = http_client_do(out ? out : &tmp, &req, &err);
	if (rc)
		return rc;
	long st = (out ? out : &tmp)->status;
	if (!out)
		http_client_response_finish(&tmp);
	return st;
}

/* Status, or the (negative) error code; *body (when body is not NULL) gets
 * the parsed JSON answer, or NULL when there is none. */
static long call_json(json_t **body, struct http_server *srv, const struct call *c)
{
	struct http_client_response res;
	long st = do_call(&res, srv, c);
	if (body)
		*body = NULL;
	if (st < 0)
		return st;
	if (body)
		*body = json_loadb(res.body, res.body_len, 0, NULL);
	http_client_response_finish(&res);
	return st;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const json_t *jerr(const json_t *body)
{
	return json_object_get(body, "error");
}

static const char *err_code(const json_t *body)
{
	return jstr(jerr(body), "code");
}

static char *raw_n(struct http_server *srv, const char *request, size_t len)
{
	char *answer = rawhttp_exchange(http_server_port(srv), request, len);
	assert_non_null(answer);
	return answer;
}

static char *raw(struct http_server *srv, const char *request)
{
	return raw_n(srv, request, strlen(request));
}

/* The JSON body of a raw, non-chunked answer; NULL if there is none. */
static json_t *raw_body_json(const char *answer)
{
	const char *body = strstr(answer, "\r\n\r\n");
	return body ? json_loads(body + 4, 0, NULL) : NULL;
}

/* ---- routing and accessors ----------------------------------------------- */

static void test_route_params_are_extracted_by_name(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/models/llama-3/versions/7")), 200);
	assert_string_equal(jstr(b, "route"), "/v1/models/{name}/versions/{version}");
	assert_string_equal(jstr(b, "name"), "llama-3");
	assert_string_equal(jstr(b, "version"), "7");
	assert_null(jstr(b, "id"));   /* not a param of this route */
	assert_null(jstr(b, "nope")); /* never a param anywhere */
	json_decref(b);
	http_server_destroy(srv);
}

static void test_route_param_percent_encoded_segment_is_decoded(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/pools/gpu%20pool%2Fa")), 200);
	assert_string_equal(jstr(b, "route"), "/v1/pools/{id}");
	assert_string_equal(jstr(b, "id"), "gpu pool/a");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_param_with_encoded_slash_is_one_decoded_param(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	/* Model names like "meta-llama/Llama-3" travel as one encoded segment. */
	assert_int_equal(call_json(&b, srv, GET("/v1/things/meta-llama%2FLlama%203")),
			 200);
	assert_string_equal(jstr(b, "route"), "/v1/things/{id}");
	assert_string_equal(jstr(b, "id"), "meta-llama/Llama 3");
	json_decref(b);
	assert_int_equal(call_json(&b, srv, GET("/v1/things/a%2Fb/nodes")), 200);
	assert_string_equal(jstr(b, "route"), "/v1/things/{id}/nodes");
	assert_string_equal(jstr(b, "id"), "a/b");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_literal_segment_wins_over_param(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/pools/special")), 200);
	assert_string_equal(jstr(b, "handler"), "special");
	assert_string_equal(jstr(b, "route"), "/v1/pools/special");
	json_decref(b);
	/* Any other value still goes to the param route. */
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/pools/specials")), 200);
	assert_string_equal(jstr(b, "handler"), "echo");
	assert_string_equal(jstr(b, "id"), "specials");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_trailing_slash_is_the_same_path(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/pools/x/")), 200);
	assert_string_equal(jstr(b, "route"), "/v1/pools/{id}");
	assert_string_equal(jstr(b, "id"), "x");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_query_accessor_returns_decoded_values_and_null_when_absent(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/query?q=gpu%20a%26b&limit=10")), 200);
	assert_string_equal(jstr(b, "q"), "gpu a&b");
	assert_string_equal(jstr(b, "limit"), "10");
	assert_null(jstr(b, "absent"));
	json_decref(b);
	http_server_destroy(srv);
}

static void test_query_values_are_decoded_and_absent_ones_are_null(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, GET("/v1/things/1?q=a%2Fb+c%3D&x=1")),
			 200);
	assert_string_equal(jstr(b, "q"), "a/b c=");
	json_decref(b);
	assert_int_equal(call_json(&b, srv, GET("/v1/things/1?other=1")), 200);
	assert_null(jstr(b, "q")); /* http_request_query gave NULL */
	json_decref(b);
	http_server_destroy(srv);
}

static void test_header_accessor_is_case_insensitive(void **state)
{
	struct http_server *srv = start();
	const char *const hdrs[] = {"x-NoVa-pRoBe: probe-value", NULL};
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/header", .headers = hdrs)), 200);
	assert_string_equal(jstr(b, "lower"), "probe-value");
	assert_string_equal(jstr(b, "upper"), "probe-value");
	assert_string_equal(jstr(b, "mixed"), "probe-value");
	assert_null(jstr(b, "absent"));
	json_decref(b);
	http_server_destroy(srv);
}

/* Each connection has 16 KiB of memory for the request's head
 * (HTTP_CONNECTION_MEMORY): a 6 KiB header still arrives whole; a 40 KiB
 * one is refused with a 4xx, and the server goes on serving. */
static void test_large_headers_fit_and_oversized_ones_are_refused(void **state)
{
	struct http_server *srv = start();
	static char value[6001], hdr[6100], req[48 * 1024];
	const char *const hdrs[] = {hdr, NULL};
	json_t *b;
	(void)state;
	for (size_t i = 0; i < sizeof(value) - 1; i++)
		value[i] = (char)('a' + i % 26);
	snprintf(hdr, sizeof(hdr), "X-Nova-Probe: %s", value);
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/header", .headers = hdrs)), 200);
	assert_string_equal(jstr(b, "lower"), value);
	json_decref(b);
	int n = snprintf(req, sizeof(req), "GET /v1/header HTTP/1.1\r\nHost: x\r\nX-Nova-Probe: ");
	memset(req + n, 'z', 40 * 1024);
	n += 40 * 1024;
	n += snprintf(req + n, sizeof(req) - (size_t)n, "\r\nConnection: close\r\n\r\n");
	char *answer = rawhttp_exchange(http_server_port(srv), req, (size_t)n);
	assert_non_null(answer);
	if (strncmp(answer, "HTTP/1.1 4", 10) != 0)
		fail_msg("oversized header answered: %.40s", answer);
	free(answer);
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/header", .headers = hdrs)), 200);
	json_decref(b);
	http_server_destroy(srv);
}

static void test_path_segment_with_encoded_nul_is_400(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	atomic_store(&calls, 0);
	assert_int_equal(call_json(&b, srv, GET("/v1/things/a%00b")),
			 400);
	assert_string_equal(err_code(b), "invalid");
	assert_string_equal(jstr(json_object_get(b, "error"), "field"), "path");
	json_decref(b);
	assert_int_equal(atomic_load(&calls), 0);
	http_server_destroy(srv);
}

/* ---- 404, 405 and error bodies ------------------------------------------- */

static void test_unknown_path_is_404_with_json_not_found_body(void **state)
{
	struct http_server *srv = start();
	char url[128];
	struct http_client_response res;
	struct nova_err err;
	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/nowhere/at/all", http_server_port(srv));
	struct http_client_request req = {.method = "GET", .url = url, .timeout_ms = 10000};
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 404);
	assert_non_null(res.content_type);
	assert_string_equal(res.content_type, "application/json");
	json_t *b = json_loadb(res.body, res.body_len, 0, NULL);
	assert_non_null(b);
	assert_string_equal(jstr(jerr(b), "code"), "not_found");
	assert_non_null(jstr(jerr(b), "message"));
	assert_string_equal(jstr(jerr(b), "field"), "");
	json_decref(b);
	http_client_response_finish(&res);
	assert_int_equal(atomic_load(&calls), 0);
	http_server_destroy(srv);
}

static void test_wrong_method_is_405_with_allow_listing_the_route_methods(void **state)
{
	struct http_server *srv = start();
	char allow[128];
	(void)state;
	char *ans = raw(srv, "PUT /v1/pools/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			     "Content-Length: 0\r\n\r\n");
	assert_memory_equal(ans, "HTTP/1.1 405 ", 13);
	assert_non_null(rawhttp_header(allow, sizeof(allow), ans, "Allow"));
	assert_string_equal(allow, "GET, DELETE");
	json_t *b = raw_body_json(ans);
	assert_non_null(b);
	assert_string_equal(jstr(jerr(b), "code"), "method_not_allowed");
	json_decref(b);
	free(ans);
	assert_int_equal(atomic_load(&calls), 0);
	http_server_destroy(srv);
}

static void test_unknown_path_with_non_utf8_bytes_is_404_json(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, GET("/no%FF%FEwhere")), 404);
	assert_non_null(b);
	assert_string_equal(err_code(b), "not_found");
	json_decref(b);
	assert_int_equal(call_json(&b, srv, CALL(.method = "PUT", .path = "/v1/things/%FF")), 405);
	assert_non_null(b);
	assert_string_equal(err_code(b), "method_not_allowed");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_error_body_includes_field_and_hint_when_set(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.method = "POST", .path = "/v1/fail-hint",
						 .body = "{}", .body_len = 2)),
			 400);
	assert_string_equal(jstr(jerr(b), "code"), "invalid");
	assert_string_equal(jstr(jerr(b), "message"), "replicas must be at least 1");
	assert_string_equal(jstr(jerr(b), "field"), "spec.replicas");
	assert_string_equal(jstr(jerr(b), "hint"), "set spec.replicas to 1 or more");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_error_body_has_field_but_no_hint_key_when_hint_unset(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.method = "POST", .path = "/v1/fail-plain",
						 .body = "{}", .body_len = 2)),
			 409);
	assert_string_equal(jstr(jerr(b), "code"), "already_exists");
	assert_string_equal(jstr(jerr(b), "message"), "pool gpu-a exists");
	assert_string_equal(jstr(jerr(b), "field"), "name");
	assert_null(json_object_get(jerr(b), "hint"));
	json_decref(b);
	http_server_destroy(srv);
}

static void test_error_text_with_non_utf8_bytes_keeps_its_status(void **state)
{
	struct http_server *srv = start();
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, &(struct call){.method = "POST", .path = "/v1/provider",
							 .body = "{}", .body_len = 2}),
			 502);
	assert_string_equal(err_code(b), "provider_failed");
	assert_string_equal(jstr(json_object_get(b, "error"), "message"), "provider said: caf? ??");
	json_decref(b);
	http_server_destroy(srv);
}

static void test_503_errors_carry_retry_after_and_others_do_not(void **state)
{
	struct http_server *srv = start();
	static const char *const paths[] = {"/v1/unavailable", "/v1/unavailable?code=again"};
	char v[64], req[256];
	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			 paths[i]);
		char *ans = raw(srv, req);
		assert_memory_equal(ans, "HTTP/1.1 503 ", 13);
		if (!rawhttp_header(v, sizeof(v), ans, "Retry-After"))
			fail_msg("%s: 503 without Retry-After", paths[i]);
		assert_string_equal(v, "1");
		/* Once: a second Retry-After would make the answer ambiguous. */
		assert_null(strstr(strstr(ans, "Retry-After") + 1, "Retry-After"));
		free(ans);
	}
	char *ans = raw(srv, "POST /v1/fail-plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			     "Content-Length: 2\r\n\r\n{}");
	assert_memory_equal(ans, "HTTP/1.1 409 ", 13);
	assert_null(rawhttp_header(v, sizeof(v), ans, "Retry-After"));
	free(ans);
	http_server_destroy(srv);
}

/* ---- response shapes ----------------------------------------------------- */

static void test_extra_response_headers_are_sent(void **state)
{
	struct http_server *srv = start();
	char v[128];
	(void)state;
	char *ans = raw(srv, "POST /v1/extra HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			     "Content-Length: 0\r\n\r\n");
	assert_memory_equal(ans, "HTTP/1.1 201 ", 13);
	assert_non_null(rawhttp_header(v, sizeof(v), ans, "X-Nova-Request-Id"));
	assert_string_equal(v, "req-123");
	assert_non_null(rawhttp_header(v, sizeof(v), ans, "Cache-Control"));
	assert_string_equal(v, "no-store");
	assert_non_null(rawhttp_header(v, sizeof(v), ans, "Location"));
	assert_string_equal(v, "/v1/pools/gpu-a");
	assert_non_null(rawhttp_header(v, sizeof(v), ans, "Content-Type"));
	assert_string_equal(v, "application/json");
	free(ans);
	http_server_destroy(srv);
}

/* The body's request_id (what the handler saw) and the X-Request-Id
 * header of one raw request with the given extra header lines. */
static void request_id_of(struct http_server *srv, const char *extra, char *body_id, char *hdr_id)
{
	char req[512];
	snprintf(req, sizeof(req),
		 "GET /v1/request-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", extra);
	char *ans = raw(srv, req);
	assert_memory_equal(ans, "HTTP/1.1 200 ", 13);
	assert_non_null(rawhttp_header(hdr_id, 128, ans, "X-Request-Id"));
	const char *b = strstr(ans, "\r\n\r\n");
	assert_non_null(b);
	json_error_t je;
	json_t *j = json_loads(b + 4, 0, &je);
	assert_non_null(j);
	snprintf(body_id, 128, "%s", json_string_value(json_object_get(j, "request_id")));
	json_decref(j);
	free(ans);
}

static void test_request_id_is_the_clients_when_well_formed_else_generated(void **state)
{
	struct http_server *srv = start();
	char a[128], ah[128], b[128], bh[128];
	(void)state;
	request_id_of(srv, "X-Request-Id: trace-1.2:abc_Z\r\n", a, ah);
	assert_string_equal(a, "trace-1.2:abc_Z");
	assert_string_equal(ah, "trace-1.2:abc_Z");
	/* None, and then ones that could not go into a log line or a header as
	 * they are: fresh hex, different every time, the same in body and header. */
	request_id_of(srv, "", a, ah);
	request_id_of(srv, "", b, bh);
	assert_int_equal(strlen(a), 32);
	assert_true(strspn(a, "0123456789abcdef") == 32);
	assert_string_equal(a, ah);
	assert_string_equal(b, bh);
	assert_string_not_equal(a, b);
	static const char *const bad[] = {
		"X-Request-Id: has space\r\n",
		"X-Request-Id: quote\"d\r\n",
		"X-Request-Id: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n",
		"X-Request-Id: a;b=c\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		request_id_of(srv, bad[i], a, ah);
		assert_int_equal(strlen(a), 32);
		assert_true(strspn(a, "0123456789abcdef") == 32);
	}
	/* Errors the server answers itself carry one too. */
	char *ans = raw(srv, "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			     "X-Request-Id: lost-1\r\n\r\n");
	assert_memory_equal(ans, "HTTP/1.1 404 ", 13);
	assert_non_null(rawhttp_header(a, sizeof(a), ans, "X-Request-Id"));
	assert_string_equal(a, "lost-1");
	free(ans);
	http_server_destroy(srv);
}

static void test_etag_match_is_the_weak_comparison_over_a_list(void **state)
{
	(void)state;
	assert_true(http_etag_match("\"abc\"", "\"abc\""));
	assert_true(http_etag_match("W/\"abc\"", "\"abc\""));
	assert_true(http_etag_match("\"abc\"", "W/\"abc\""));
	assert_true(http_etag_match("W/\"abc\"", "W/\"abc\""));
	assert_true(http_etag_match("\"x\", W/\"abc\"", "W/\"abc\""));
	assert_true(http_etag_match("\"x\",\"abc\"", "W/\"abc\""));
	assert_true(http_etag_match("*", "W/\"abc\""));
	assert_false(http_etag_match(NULL, "W/\"abc\""));
	assert_false(http_etag_match("", "W/\"abc\""));
	assert_false(http_etag_match("\"abcd\"", "W/\"abc\""));
	assert_false(http_etag_match("\"ab\"", "W/\"abc\""));
	assert_false(http_etag_match("W/", "W/\"abc\""));
	assert_false(http_etag_match("\"abc", "W/\"abc\""));
	assert_false(http_etag_match("abc", "W/\"abc\""));
}

static void test_url_check_takes_base_urls_and_names_the_field(void **state)
{
	struct nova_err err;
	(void)state;
	static const char *const good[] = {"http://lb", "https://lb.example.com:8443",
					   "http://127.0.0.1:7070", "http://[::1]:80", "http://lb/nova"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (http_url_check(good[i], "u", &err) != 0)
			fail_msg("%s: %s", good[i], err.message);
	static const char *const bad[] = {"", "lb:80", "ftp://lb", "file:///etc/passwd",
					  "javascript:alert(1)", "http://", "http://u:secretpw@lb",
					  "http://lb/?a=1", "http://lb/#x", "http://lb:99999",
					  "http://lb/a b", "http://lb/\r\nX: y"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(http_url_check(bad[i], "advertise_url", &err), NOVA_EINVAL);
		assert_string_equal(err.field, "advertise_url");
		assert_null(strstr(err.message, "secretpw"));
	}
	char longer[300];
	memset(longer, 'a', sizeof(longer));
	memcpy(longer, "http://", 7);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(http_url_check(longer, "u", &err), NOVA_EINVAL);
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

/* ---- the body cap -------------------------------------------------------- */

static void test_body_over_cap_with_content_length_is_413_and_handler_never_runs(void **state)
{
	struct http_server *srv = start();
	char big[2 * CAP];
	json_t *b;
	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(call_json(&b, srv, CALL(.method = "POST", .path = "/v1/upload",
						 .body = big, .body_len = sizeof(big))),
			 413);
	assert_non_null(b);
	assert_string_equal(jstr(jerr(b), "code"), "too_large");
	json_decref(b);
	assert_int_equal(atomic_load(&calls), 0);
	http_server_destroy(srv);
}

/* The 413 is decided from Content-Length alone: it comes back although the
 * body is never sent. */
static void test_content_length_over_cap_is_answered_before_the_body(void **state)
{
	struct http_server *srv = start();
	(void)state;
	char *ans = raw(srv, "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
			     "Content-Type: application/json\r\n\r\n");
	assert_memory_equal(ans, "HTTP/1.1 413 ", 13);
	json_t *b = raw_body_json(ans);
	assert_non_null(b);
	assert_string_equal(jstr(jerr(b), "code"), "too_large");
	json_decref(b);
	free(ans);
	assert_int_equal(atomic_load(&calls), 0);
	http_server_destroy(srv);
}

static void test_chunked_body_over_cap_is_413_and_handler_never_runs(void **state)
{
	struct http_server *srv = start();
	char req[3 * CAP];
	int off;
	(void)state;
	/* CAP + 512 bytes in three chunks: over the cap, under twice the cap
	 * (past that the server hangs up rather than answer). */
	off = snprintf(req, sizeof(req), "POST /v1/upload HTTP/1.1\r\nHost: x\r\n"
					 "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
	for (int i = 0; i < 3; i++) {
		size_t n = i < 2 ? CAP / 2 : 512;
		off += snprintf(req + off, sizeof(req) - (size_t)off, "%zx\r\n", n);
		memset(req + off, 'c', n);
		off += (int)n;
		off += snprintf(req + off, sizeof(req) - (size_t)off, "\r\n");
	}
	off += snprintf(req + off, sizeof(req) - (size_t)off, "0\r\n\r\n");
	char *ans = raw_n(srv, req, (size_t)off);
	assert_memory_equal(ans, "HTTP/1.1 413 ", 13);
	assert_non_null(strstr(ans, "\"too_large\""));
	free(ans);
	assert_int_equal(atomic_load(&calls), 0);
	http_server_destroy(srv);
}

static void test_body_exactly_at_cap_arrives_byte_exact(void **state)
{
	struct http_server *srv = start();
	char body[CAP];
	json_t *b;
	(void)state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (char)('a' + i % 26);
	body[CAP / 2] = '\0';          /* a NUL in the middle */
	body[CAP / 2 + 1] = (char)0xff;
	assert_int_equal(call_json(&b, srv, CALL(.method = "POST", .path = "/v1/upload",
						 .body = body, .body_len = sizeof(body),
						 .content_type = "application/octet-stream")),
			 200);
	assert_int_equal(json_integer_value(json_object_get(b, "len")), CAP);
	json_decref(b);
	pthread_mutex_lock(&seen_lock);
	assert_false(seen_null);
	assert_int_equal(seen_len, CAP);
	assert_memory_equal(seen_body, body, CAP);
	assert_true(seen_nul_terminated); /* the copy is NUL-terminated past body_len */
	pthread_mutex_unlock(&seen_lock);
	assert_int_equal(atomic_load(&calls), 1);
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
	assert_int_equal(call_json(&b, srv, CALL(.method = "POST", .path = "/v1/things/1",
					       .body = body, .body_len = sizeof(body))),
			 200);
	assert_int_equal(json_integer_value(json_object_get(b, "len")), 300);
	assert_string_equal(jstr(b, "ctype"), "application/json");
	json_decref(b);
	/* No body: the handler sees NULL, not "". */
	assert_int_equal(call_json(&b, srv, GET("/v1/things/1")), 200);
	assert_true(json_is_true(json_object_get(b, "body_null")));
	json_decref(b);
	http_server_destroy(srv);
}

static void test_client_upload_over_default_cap_gets_413_not_a_reset(void **state)
{
	struct http_server *srv = start_on("127.0.0.1:0", 0); /* the 1 MiB default */
	size_t len = 4u * 1024 * 1024;
	char *big = malloc(len);
	json_t *b;
	(void)state;
	assert_non_null(big);
	memset(big, 'x', len);
	atomic_store(&calls, 0);
	assert_int_equal(call_json(&b, srv, CALL(.method = "POST", .path = "/v1/things/1",
					       .body = big, .body_len = len)),
			 413);
	assert_string_equal(err_code(b), "too_large");
	assert_string_equal(jstr(json_object_get(b, "error"), "message"),
			    "request body exceeds 1048576 bytes");
	json_decref(b);
	assert_int_equal(atomic_load(&calls), 0);
	free(big);
	http_server_destroy(srv);
}

static void test_client_chunked_upload_over_cap_gets_413(void **state)
{
	struct http_server *srv = start_on("127.0.0.1:0", 0); /* the 1 MiB default */
	size_t len = 1536u * 1024;
	char *big = malloc(len);
	const char *const chunked[] = {"Transfer-Encoding: chunked", NULL};
	json_t *b;
	(void)state;
	assert_non_null(big);
	memset(big, 'y', len);
	atomic_store(&calls, 0);
	assert_int_equal(call_json(&b, srv, CALL(.method = "POST", .path = "/v1/things/1",
					       .body = big, .body_len = len, .headers = chunked)),
			 413);
	assert_string_equal(err_code(b), "too_large");
	json_decref(b);
	assert_int_equal(atomic_load(&calls), 0);
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

/* ---- HTTP strictness ------------------------------------------------------ */

/* A refused request: 400, a JSON error naming the header as its field,
 * the connection closed (rawhttp_exchange reads until the server hangs up,
 * so an answer that arrives at all within its 10 s proves the close), and
 * nothing after it run as a second request. */
static void assert_refused_naming(struct http_server *srv, const char *request, const char *field)
{
	char hdr[64];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *ans = raw(srv, request);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_memory_equal(ans, "HTTP/1.1 400 ", 13);
	json_t *b = raw_body_json(ans);
	assert_non_null(b);
	assert_string_equal(err_code(b), "invalid");
	assert_string_equal(jstr(jerr(b), "field"), field);
	json_decref(b);
	assert_non_null(rawhttp_header(hdr, sizeof(hdr), ans, "Connection"));
	assert_string_equal(hdr, "close");
	/* One answer only: the bytes after the first request never ran. */
	assert_null(strstr(ans, "\nHTTP/1."));
	assert_true(t1.tv_sec - t0.tv_sec < 5);
	free(ans);
	assert_int_equal(atomic_load(&calls), 0);
}

/* Both: a proxy that frames by Content-Length and a server that frames by
 * the chunks disagree on where the request ends (request smuggling). The
 * tail here is a complete second request, which the old code ran. */
static void test_content_length_with_transfer_encoding_is_400_and_closed(void **state)
{
	struct http_server *srv = start();
	(void)state;
	assert_refused_naming(srv,
			      "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
			      "Transfer-Encoding: chunked\r\n\r\n"
			      "0\r\n\r\nGET /v1/pools/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
			      "Transfer-Encoding");
	http_server_destroy(srv);
}

static void test_unknown_transfer_coding_is_400_and_closed(void **state)
{
	struct http_server *srv = start();
	(void)state;
	assert_refused_naming(srv,
			      "POST /v1/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
			      "5\r\nhello\r\n0\r\n\r\n",
			      "Transfer-Encoding");
	/* A list of codings is not chunked alone either. */
	assert_refused_naming(srv,
			      "POST /v1/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
			      "\r\n0\r\n\r\n",
			      "Transfer-Encoding");
	http_server_destroy(srv);
}

static void test_http11_without_host_is_400_and_closed(void **state)
{
	struct http_server *srv = start();
	(void)state;
	assert_refused_naming(srv, "GET /v1/pools/7 HTTP/1.1\r\n\r\nGET /v1/pools/8 HTTP/1.1\r\nHost: x\r\n\r\n",
			      "Host");
	/* Two Host lines are as bad as none (RFC 9112 3.2). */
	assert_refused_naming(srv, "GET /v1/pools/7 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "Host");
	http_server_destroy(srv);
}

/* What stays accepted: chunked alone (any case), HTTP/1.0 without Host. */
static void test_chunked_alone_and_http10_without_host_are_served(void **state)
{
	struct http_server *srv = start();
	(void)state;
	char *ans = raw(srv, "POST /v1/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n"
			     "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
	assert_memory_equal(ans, "HTTP/1.1 200 ", 13);
	free(ans);
	ans = raw(srv, "GET /v1/pools/7 HTTP/1.0\r\n\r\n");
	assert_memory_equal(ans + 8, " 200 ", 5);
	free(ans);
	http_server_destroy(srv);
}

/* ---- connection limits and deadlines --------------------------------------- */

/* A TCP connection to the server from a given loopback address (any
 * 127.x.y.z reaches a server on 127.0.0.1), sending nothing yet. */
static int idle_from(struct http_server *srv, const char *from)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(http_server_port(srv))};
	struct sockaddr_in src = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	inet_pton(AF_INET, from, &src.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static int idle_conn(struct http_server *srv)
{
	return idle_from(srv, "127.0.0.1");
}

/* Whether the server closed fd within ms (reads and drops any answer). */
static bool closed_within(int fd, int ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	char buf[4096];
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0)
			return false; /* the timeout: still open */
	}
}

static double since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* libmicrohttpd's timeout is idle-only: a client sending a header line
 * every 100 ms kept its connection for ever (60 s per silence). */
static void test_headers_dribbled_past_the_header_deadline_are_cut(void **state)
{
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2, .max_body = CAP,
					 .header_timeout_ms = 400};
	struct http_server *srv = start_cfg(&cfg);
	struct timespec t0, ts = {0, 100 * 1000000L};
	struct http_server_stats st;
	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int fd = idle_conn(srv);
	assert_true(send(fd, "GET /v1/pools/1 HTTP/1.1\r\n", 26, MSG_NOSIGNAL) == 26);
	bool cut = false;
	for (int i = 0; i < 30 && !cut; i++) {
		nanosleep(&ts, NULL);
		cut = send(fd, "X-Slow: 1\r\n", 11, MSG_NOSIGNAL) != 11;
		if (!cut) {
			struct timeval tv = {0, 1000};
			char b;
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			cut = recv(fd, &b, 1, 0) == 0;
		}
	}
	double s = since(&t0);
	close(fd);
	assert_true(cut);
	assert_true(s >= 0.35 && s < 1.5);
	http_server_stats(&st, srv);
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(atomic_load(&calls), 0);
	http_server_destroy(srv);
}

static void test_a_connection_that_sends_nothing_is_cut_at_the_header_deadline(void **state)
{
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2, .max_body = CAP,
					 .header_timeout_ms = 300};
	struct http_server *srv = start_cfg(&cfg);
	struct timespec t0;
	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int fd = idle_conn(srv);
	assert_true(closed_within(fd, 2000));
	assert_true(since(&t0) >= 0.25);
	close(fd);
	http_server_destroy(srv);
}

static void test_a_body_slower_than_the_body_deadline_is_cut(void **state)
{
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2, .max_body = CAP,
					 .header_timeout_ms = 5000, .body_timeout_ms = 300};
	struct http_server *srv = start_cfg(&cfg);
	struct timespec t0;
	const char *req = "POST /v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
	(void)state;
	int fd = idle_conn(srv);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_true(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
	assert_true(closed_within(fd, 3000));
	double s = since(&t0);
	assert_true(s >= 0.25 && s < 2.0);
	close(fd);
	assert_int_equal(atomic_load(&calls), 0);
	http_server_destroy(srv);
}

/* The deadlines are for requests arriving, not for handlers: a handler
 * slower than both still answers. */
static void test_a_handler_slower_than_the_deadlines_still_answers(void **state)
{
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2, .max_body = CAP,
					 .header_timeout_ms = 100, .body_timeout_ms = 100};
	struct http_server *srv = start_cfg(&cfg);
	(void)state;
	assert_int_equal(do_call(NULL, srv, GET("/slow")), 200); /* 300 ms */
	http_server_destroy(srv);
}

/* At the soft cap (max_connections - reserved_connections) a newcomer
 * closes the oldest connection that has asked nothing, so a client that
 * asks at once is served however many idle sockets are held. */
static void test_idle_connections_at_the_cap_make_room_for_a_request(void **state)
{
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2, .max_body = CAP,
					 .max_connections = 12, .reserved_connections = 4};
	struct http_server *srv = start_cfg(&cfg);
	struct http_server_stats st;
	int fds[40];
	(void)state;
	for (int i = 0; i < 40; i++) {
		fds[i] = idle_conn(srv);
		struct timespec ts = {0, 2 * 1000000L};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(do_call(NULL, srv, GET("/v1/pools/1")), 200);
	/* The oldest idle ones went; the youngest are still there. */
	assert_true(closed_within(fds[0], 1000));
	assert_false(closed_within(fds[39], 100));
	http_server_stats(&st, srv);
	assert_true(st.shed >= 30);
	assert_true(st.open <= 12);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
	http_server_destroy(srv);
}

static void test_connections_past_the_per_address_cap_are_closed_at_once(void **state)
{
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2, .max_body = CAP,
					 .max_connections_per_ip = 3};
	struct http_server *srv = start_cfg(&cfg);
	int fds[4];
	(void)state;
	for (int i = 0; i < 4; i++)
		fds[i] = idle_from(srv, "127.0.0.2");
	assert_true(closed_within(fds[3], 2000));
	assert_false(closed_within(fds[0], 100));
	/* Another address is not held up by that one's cap. */
	assert_int_equal(do_call(NULL, srv, GET("/v1/pools/1")), 200);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	http_server_destroy(srv);
}

/* ---- concurrency and stop ------------------------------------------------ */

struct hammer {
	struct http_server *srv;
	int ok;
};

static void *hammer_thread(void *arg)
{
	struct hammer *h = arg;
	char path[64];
	for (int i = 0; i < 50; i++) {
		json_t *b;
		snprintf(path, sizeof(path), "/v1/pools/p%d", i);
		if (call_json(&b, h->srv, CALL(.path = path)) == 200 && jstr(b, "id") &&
		    strcmp(jstr(b, "id"), path + strlen("/v1/pools/")) == 0)
			h->ok++;
		json_decref(b);
	}
	return NULL;
}

static void test_concurrent_requests_are_all_served(void **state)
{
	struct http_server *srv = start();
	pthread_t th[8];
	struct hammer h[8];
	(void)state;
	for (int i = 0; i < 8; i++) {
		h[i] = (struct hammer){srv, 0};
		assert_int_equal(pthread_create(&th[i], NULL, hammer_thread, &h[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 8; i++)
		assert_int_equal(h[i].ok, 50);
	assert_int_equal(atomic_load(&calls), 400);
	http_server_destroy(srv);
}

struct slow_call {
	struct http_server *srv;
	long status;
};

static void *slow_client(void *arg)
{
	struct slow_call *s = arg;
	s->status = call_json(NULL, s->srv, CALL(.path = "/slow"));
	return NULL;
}

struct stopper {
	struct http_server *srv;
	int done_when_stop_returned;
	double seconds;
};

static void *stop_thread(void *arg)
{
	struct stopper *s = arg;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	http_server_stop(s->srv);
	s->done_when_stop_returned = atomic_load(&slow_done);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return NULL;
}

static void wait_for(atomic_int *flag)
{
	struct timespec ts = {0, 5 * 1000000L};
	for (int i = 0; i < 1000 && !atomic_load(flag); i++)
		nanosleep(&ts, NULL);
	assert_true(atomic_load(flag));
}

static void test_stop_waits_for_the_request_in_flight(void **state)
{
	struct http_server *srv = start();
	struct slow_call c = {srv, 0};
	struct stopper s = {srv, 0, 0};
	pthread_t client, stopper;
	uint16_t port = http_server_port(srv);
	(void)state;
	atomic_store(&slow_started, 0);
	atomic_store(&slow_done, 0);
	assert_int_equal(pthread_create(&client, NULL, slow_client, &c), 0);
	wait_for(&slow_started); /* the handler is asleep now */
	assert_int_equal(pthread_create(&stopper, NULL, stop_thread, &s), 0);
	pthread_join(stopper, NULL);
	pthread_join(client, NULL);
	assert_int_equal(c.status, 200);
	assert_int_equal(s.done_when_stop_returned, 1); /* stop returned after the handler */
	assert_true(s.seconds >= 0.15);
	/* Nothing listens any more, and stopping again is a no-op. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_not_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	http_server_stop(srv);
	http_server_destroy(srv);
}

/* While a slow request drains, a new client is refused at once (a proxy
 * retries it elsewhere) rather than accepted into the backlog and reset
 * when the stop ends: http_server_stop takes the quiesced listener out of
 * LISTEN with shutdown() and closes it after MHD_stop_daemon. */
#define HTTP_STOP_REFUSES_DURING_DRAIN 1

static void test_stop_refuses_new_connections_while_draining(void **state)
{
	struct http_server *srv = start();
	struct slow_call c = {srv, 0};
	struct stopper s = {srv, 0, 0};
	pthread_t client, stopper;
	struct timespec ts = {0, 50 * 1000000L};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(http_server_port(srv))};
	(void)state;
	if (!HTTP_STOP_REFUSES_DURING_DRAIN) {
		http_server_destroy(srv);
		skip();
	}
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	atomic_store(&slow_started, 0);
	atomic_store(&slow_done, 0);
	assert_int_equal(pthread_create(&client, NULL, slow_client, &c), 0);
	wait_for(&slow_started);
	assert_int_equal(pthread_create(&stopper, NULL, stop_thread, &s), 0);
	nanosleep(&ts, NULL); /* stop is draining: the slow handler still sleeps */
	assert_int_equal(atomic_load(&slow_done), 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	close(fd);
	pthread_join(stopper, NULL);
	pthread_join(client, NULL);
	http_server_destroy(srv);
	assert_int_equal(c.status, 200);
	assert_int_equal(rc, -1);
	assert_int_equal(e, ECONNREFUSED);
}

static void *stuck_client(void *arg)
{
	struct http_server *srv = arg;
	char *ans = rawhttp_exchange(http_server_port(srv), "GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n",
				     strlen("GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n"));
	free(ans);
	return NULL;
}

/* MHD_stop_daemon joins every thread, so a handler that never returns held
 * stop (and novad's SIGTERM) for ever; stop now returns within its drain
 * bound plus a second, and destroy frees everything once the handler has
 * let go. */
static void test_stop_returns_within_its_bound_while_a_handler_never_returns(void **state)
{
	struct http_server_config cfg = {.listen = "127.0.0.1:0", .threads = 2, .max_body = CAP,
					 .stop_timeout_ms = 300};
	struct http_server *srv = start_cfg(&cfg);
	struct timespec t0, t1;
	pthread_t client;
	(void)state;
	atomic_store(&stuck_entered, 0);
	atomic_store(&stuck_release, 0);
	assert_int_equal(pthread_create(&client, NULL, stuck_client, srv), 0);
	wait_for(&stuck_entered);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	http_server_stop(srv);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(s >= 0.3);
	assert_true(s < 2.5);
	atomic_store(&stuck_release, 1);
	http_server_destroy(srv);
	pthread_join(client, NULL);
}

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

/* ---- listening and transport errors -------------------------------------- */

static void test_bad_listen_strings_are_einval_on_field_listen(void **state)
{
	static const char *const bad[] = {"nonsense", "127.0.0.1", "1.2.3.4:99999"};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_server *srv = (struct http_server *)&srv; /* not NULL */
		struct nova_err err = {0};
		struct http_server_config cfg = {.listen = bad[i], .threads = 1};
		int rc = http_server_create(&srv, &cfg, &err);
		if (rc != NOVA_EINVAL || strcmp(err.field, "listen") != 0 || srv != NULL)
			fail_msg("listen \"%s\": rc %d, field \"%s\", out %p", bad[i], rc, err.field,
				 (void *)srv);
		assert_non_null(strstr(err.message, bad[i]));
	}
}

static void test_more_bad_listen_strings_name_the_listen_field(void **state)
{
	static const char *const bad[] = {"127.0.0.1:abc", "::1:80", "[::1:80", "[::1]80",
					  "127.0.0.1:-1", "127.0.0.1:", ":80", ""};
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

static void test_ipv6_loopback_listen_serves_requests(void **state)
{
	struct http_server *srv = start_on("[::1]:0", 0);
	json_t *b;
	(void)state;
	assert_int_equal(call_json(&b, srv, CALL(.method = "GET", .path = "/v1/things/v6",
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

static void test_port_in_use_is_eunavail_from_start(void **state)
{
	struct http_server *srv;
	struct nova_err err = {0};
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	char listen_on[64];
	(void)state;
	int holder = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(bind(holder, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(holder, 4), 0);
	assert_int_equal(getsockname(holder, (struct sockaddr *)&a, &alen), 0);
	snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%u", ntohs(a.sin_port));
	struct http_server_config cfg = {.listen = listen_on, .threads = 1};
	assert_int_equal(http_server_create(&srv, &cfg, &err), 0); /* parsing only */
	assert_int_equal(http_server_start(srv, &err), NOVA_EUNAVAIL);
	assert_string_equal(err.field, "listen");
	assert_non_null(strstr(err.message, listen_on));
	assert_non_null(strstr(err.message, "in use"));
	http_server_destroy(srv);
	close(holder);
}

static void test_route_add_after_start_is_econflict(void **state)
{
	struct http_server *srv = start();
	struct nova_err err = {0};
	json_t *b;
	(void)state;
	assert_int_equal(http_server_route_add(srv, "GET", "/v1/late", h_echo, NULL, &err),
			 NOVA_ECONFLICT);
	assert_int_equal(err.code, NOVA_ECONFLICT);
	/* And the route was not half-added. */
	assert_int_equal(call_json(&b, srv, CALL(.path = "/v1/late")), 404);
	json_decref(b);
	http_server_destroy(srv);
}

/* ---- the client ---------------------------------------------------------- */

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
	assert_int_equal(call_json(&b, srv, CALL(.method = "GET", .path = "/v1/things/1",
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

static void test_client_to_closed_port_is_eunavail(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);
	char url[128];
	struct http_client_response res;
	struct nova_err err = {0};
	(void)state;
	/* Bound but not listening: nobody else can take the port, and a
	 * connect to it is refused. */
	int holder = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	assert_int_equal(bind(holder, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(holder, (struct sockaddr *)&a, &alen), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/pools", ntohs(a.sin_port));
	struct http_client_request req = {.method = "GET", .url = url, .timeout_ms = 5000};
	assert_int_equal(http_client_do(&res, &req, &err), NOVA_EUNAVAIL);
	assert_int_equal(err.code, NOVA_EUNAVAIL);
	assert_true(err.message[0] != '\0');
	assert_null(res.body); /* nothing to finish on failure */
	close(holder);
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

/* ---- the access log ------------------------------------------------------ */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[32768];
static size_t log_len;

static void log_sink(void *ctx, enum nova_log_level level, const char *line)
{
	size_t n = strlen(line);
	(void)ctx, (void)level;
	pthread_mutex_lock(&log_lock);
	if (log_len + n + 2 < sizeof(log_text)) {
		memcpy(log_text + log_len, line, n);
		log_len += n;
		log_text[log_len++] = '\n';
		log_text[log_len] = '\0';
	}
	pthread_mutex_unlock(&log_lock);
}

static void test_access_log_has_one_line_per_request_without_token_or_query(void **state)
{
	static const struct {
		const char *method, *path, *logged_path, *status;
	} reqs[] = {
		{"GET", "/v1/pools/7?q=querysecret", "/v1/pools/7", "200"},
		{"GET", "/v1/missing?q=querysecret", "/v1/missing", "404"},
		{"PUT", "/v1/pools/7?q=querysecret", "/v1/pools/7", "405"},
	};
	const char *token = "sk-nova-TOKENSECRET0123456789";
	json_t *lines[8];
	size_t n_lines = 0;
	(void)state;
	log_len = 0;
	log_text[0] = '\0';
	nova_log_set_level(NOVA_LOG_INFO);
	nova_log_set_sink(log_sink, NULL);
	struct http_server *srv = start();
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		assert_int_equal(call_json(NULL, srv, CALL(.method = reqs[i].method, .path = reqs[i].path,
							   .token = token)),
				 atol(reqs[i].status));
	http_server_destroy(srv); /* no request is left to log */
	nova_log_set_sink(NULL, NULL);
	nova_log_set_level(NOVA_LOG_WARN);

	assert_null(strstr(log_text, "TOKENSECRET"));
	assert_null(strstr(log_text, "Bearer"));
	assert_null(strstr(log_text, "querysecret"));
	assert_null(strstr(log_text, "?q="));
	char *save = NULL;
	for (char *l = strtok_r(log_text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_t *j = json_loads(l, 0, NULL);
		assert_non_null(j); /* every line is JSON */
		if (jstr(j, "msg") && strcmp(jstr(j, "msg"), "request") == 0) {
			assert_true(n_lines < 8);
			lines[n_lines++] = j;
		} else {
			json_decref(j);
		}
	}
	assert_int_equal(n_lines, 3);
	for (size_t i = 0; i < n_lines; i++) {
		assert_string_equal(jstr(lines[i], "component"), "http");
		assert_string_equal(jstr(lines[i], "method"), reqs[i].method);
		assert_string_equal(jstr(lines[i], "path"), reqs[i].logged_path);
		assert_string_equal(jstr(lines[i], "status"), reqs[i].status);
		json_decref(lines[i]);
	}
}

static void test_access_log_has_timing_bytes_and_remote_but_no_body(void **state)
{
	struct http_server *srv = start();
	const char body[] = "{\"password\":\"BODYSECRET\"}";
	(void)state;
	log_len = 0;
	log_text[0] = '\0';
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
	const char *line = strstr(log_text, "\"msg\":\"request\"");
	assert_non_null(line);
	assert_non_null(strstr(line, "\"method\":\"POST\""));
	assert_non_null(strstr(line, "\"path\":\"/v1/things/9\""));
	assert_non_null(strstr(line, "\"status\":\"200\""));
	assert_non_null(strstr(line, "\"duration_ms\":\""));
	assert_non_null(strstr(line, "\"bytes\":\""));
	assert_non_null(strstr(line, "\"remote\":\"127.0.0.1\""));
	const char *rid = strstr(line, "\"request_id\":\"");
	assert_non_null(rid);
	assert_true(strspn(rid + 14, "0123456789abcdef") == 32);
	assert_null(strstr(log_text, "BODYSECRET"));
	assert_null(strstr(log_text, "QSECRET"));
	assert_null(strstr(log_text, "TSECRET"));
}

int main(void)
{
	struct nova_err err;
	if (http_client_global_init(&err) != 0)
		return 1;
	/* Access-log lines of the other tests would only be noise here. */
	nova_log_set_level(NOVA_LOG_WARN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_route_params_are_extracted_by_name),
		cmocka_unit_test(test_route_param_percent_encoded_segment_is_decoded),
		cmocka_unit_test(test_param_with_encoded_slash_is_one_decoded_param),
		cmocka_unit_test(test_literal_segment_wins_over_param),
		cmocka_unit_test(test_trailing_slash_is_the_same_path),
		cmocka_unit_test(test_query_accessor_returns_decoded_values_and_null_when_absent),
		cmocka_unit_test(test_query_values_are_decoded_and_absent_ones_are_null),
		cmocka_unit_test(test_header_accessor_is_case_insensitive),
		cmocka_unit_test(test_large_headers_fit_and_oversized_ones_are_refused),
		cmocka_unit_test(test_path_segment_with_encoded_nul_is_400),
		cmocka_unit_test(test_unknown_path_is_404_with_json_not_found_body),
		cmocka_unit_test(test_wrong_method_is_405_with_allow_listing_the_route_methods),
		cmocka_unit_test(test_unknown_path_with_non_utf8_bytes_is_404_json),
		cmocka_unit_test(test_error_body_includes_field_and_hint_when_set),
		cmocka_unit_test(test_error_body_has_field_but_no_hint_key_when_hint_unset),
		cmocka_unit_test(test_error_text_with_non_utf8_bytes_keeps_its_status),
		cmocka_unit_test(test_503_errors_carry_retry_after_and_others_do_not),
		cmocka_unit_test(test_extra_response_headers_are_sent),
		cmocka_unit_test(test_request_id_is_the_clients_when_well_formed_else_generated),
		cmocka_unit_test(test_etag_match_is_the_weak_comparison_over_a_list),
		cmocka_unit_test(test_url_check_takes_base_urls_and_names_the_field),
		cmocka_unit_test(test_head_on_get_route_sends_headers_without_body),
		cmocka_unit_test(test_204_without_body_sends_no_body_and_no_content_type),
		cmocka_unit_test(test_json_body_ends_with_newline_and_text_keeps_its_type),
		cmocka_unit_test(test_body_over_cap_with_content_length_is_413_and_handler_never_runs),
		cmocka_unit_test(test_content_length_over_cap_is_answered_before_the_body),
		cmocka_unit_test(test_chunked_body_over_cap_is_413_and_handler_never_runs),
		cmocka_unit_test(test_body_exactly_at_cap_arrives_byte_exact),
		cmocka_unit_test(test_binary_body_under_cap_reaches_handler_whole),
		cmocka_unit_test(test_client_upload_over_default_cap_gets_413_not_a_reset),
		cmocka_unit_test(test_client_chunked_upload_over_cap_gets_413),
		cmocka_unit_test(test_chunked_upload_far_over_cap_is_cut_off_not_read_to_the_end),
		cmocka_unit_test(test_content_length_with_transfer_encoding_is_400_and_closed),
		cmocka_unit_test(test_unknown_transfer_coding_is_400_and_closed),
		cmocka_unit_test(test_http11_without_host_is_400_and_closed),
		cmocka_unit_test(test_chunked_alone_and_http10_without_host_are_served),
		cmocka_unit_test(test_headers_dribbled_past_the_header_deadline_are_cut),
		cmocka_unit_test(test_a_connection_that_sends_nothing_is_cut_at_the_header_deadline),
		cmocka_unit_test(test_a_body_slower_than_the_body_deadline_is_cut),
		cmocka_unit_test(test_a_handler_slower_than_the_deadlines_still_answers),
		cmocka_unit_test(test_idle_connections_at_the_cap_make_room_for_a_request),
		cmocka_unit_test(test_connections_past_the_per_address_cap_are_closed_at_once),
		cmocka_unit_test(test_concurrent_requests_are_all_served),
		cmocka_unit_test(test_stop_waits_for_the_request_in_flight),
		cmocka_unit_test(test_stop_refuses_new_connections_while_draining),
		cmocka_unit_test(test_stop_returns_within_its_bound_while_a_handler_never_returns),
		cmocka_unit_test(test_handlers_run_in_parallel_on_pool_threads),
		cmocka_unit_test(test_stop_without_start_and_destroy_null_are_safe),
		cmocka_unit_test(test_bad_listen_strings_are_einval_on_field_listen),
		cmocka_unit_test(test_more_bad_listen_strings_name_the_listen_field),
		cmocka_unit_test(test_ipv6_loopback_listen_serves_requests),
		cmocka_unit_test(test_localhost_listen_resolves_to_loopback),
		cmocka_unit_test(test_port_in_use_is_eunavail_from_start),
		cmocka_unit_test(test_route_add_after_start_is_econflict),
		cmocka_unit_test(test_client_sends_bearer_and_headers_and_reads_etag),
		cmocka_unit_test(test_client_sends_a_long_bearer_token_whole),
		cmocka_unit_test(test_client_error_status_is_returned_not_failed),
		cmocka_unit_test(test_client_to_closed_port_is_eunavail),
		cmocka_unit_test(test_client_transport_error_never_echoes_query_or_token),
		cmocka_unit_test(test_access_log_has_one_line_per_request_without_token_or_query),
		cmocka_unit_test(test_access_log_has_timing_bytes_and_remote_but_no_body),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_client_global_cleanup();
	return rc;
}
