/* The connections one credential holds are capped
 * (gw_deps.max_connections_per_key): past the cap a request is answered
 * 429 and its connection closed; other credentials are served meanwhile;
 * a closed connection gives its place back. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static char *make_key(struct testenv *env, const char *name)
{
	char body[128];
	json_t *b;
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"scopes\":[\"read\"]}", name);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/apikeys", ADMIN, body), 201);
	char *key = strdup(json_string_value(json_object_get(b, "key")));
	json_decref(b);
	return key;
}

/* A kept-alive connection that asked GET /v1/pools with key: its fd, and
 * the status of the answer in *status. */
static int ask(struct testenv *env, const char *key, long *status, char *answer, size_t len)
{
	unsigned port = (unsigned)atoi(strrchr(env->url, ':') + 1);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};
	char req[512];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	int n = snprintf(req, sizeof(req),
			 "GET /v1/pools HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", key);
	assert_int_equal(send(fd, req, (size_t)n, 0), n);
	ssize_t got = recv(fd, answer, len - 1, 0);
	answer[got > 0 ? got : 0] = '\0';
	*status = got >= 12 ? strtol(answer + 9, NULL, 10) : -1;
	return fd;
}

static void test_one_key_holds_at_most_its_connections(void **state)
{
	struct testenv env = {0};
	char answer[2048];
	int fds[3];
	long st;
	(void)state;
	assert_int_equal(testenv_gateway_start_limits(&env, 64 * 1024, 0, 0, 3), 0);
	char *k1 = make_key(&env, "greedy"), *k2 = make_key(&env, "other");
	for (int i = 0; i < 3; i++) {
		fds[i] = ask(&env, k1, &st, answer, sizeof(answer));
		assert_int_equal(st, 200);
	}
	/* A fourth connection of the same key: 429, Retry-After, closed. */
	int fd = ask(&env, k1, &st, answer, sizeof(answer));
	assert_int_equal(st, 429);
	assert_non_null(strstr(answer, "Retry-After:"));
	assert_non_null(strstr(answer, "too_many_requests"));
	char more[64];
	assert_true(recv(fd, more, sizeof(more), 0) <= 0); /* the server closed it */
	close(fd);
	/* Another key is served meanwhile, on a connection of its own. */
	fd = ask(&env, k2, &st, answer, sizeof(answer));
	assert_int_equal(st, 200);
	close(fd);
	/* A kept-alive connection of the key keeps working. */
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "GET /v1/pools HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", k1);
	assert_int_equal(send(fds[0], req, (size_t)n, 0), n);
	ssize_t got = recv(fds[0], answer, sizeof(answer) - 1, 0);
	assert_true(got > 12);
	assert_memory_equal(answer, "HTTP/1.1 200", 12);
	/* One closed: its place is the key's again. */
	close(fds[1]);
	usleep(200 * 1000);
	fd = ask(&env, k1, &st, answer, sizeof(answer));
	assert_int_equal(st, 200);
	close(fd);
	close(fds[0]);
	close(fds[2]);
	free(k1);
	free(k2);
	testenv_close(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_key_holds_at_most_its_connections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
