/* Engine logs on the node (sidecar/logs.h): the tail of a file, the lines
 * as served (cut, NULs dropped), the keys held, the files' lifetime, and
 * the server: no key no logs, a tail, a follow that sees a later line and
 * ends when the replica is retired. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/http_client.h"
#include "core/textbuf.h"
#include "sidecar/logs.h"

#define RID "1b4e28ba-2fa1-11d2-883f-0016d3cca427"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/nova-test-logs.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static bool exists(const char *name)
{
	char p[512];
	struct stat st;
	snprintf(p, sizeof(p), "%s/engines/%s", dir, name);
	return stat(p, &st) == 0;
}

static void test_tail_starts_at_the_last_complete_lines(void **state)
{
	const char *t = "a\nbb\nccc\npartial";
	(void)state;
	assert_int_equal(sidecar_logs_tail_start(t, strlen(t), 1), 5);  /* "ccc\n" */
	assert_int_equal(sidecar_logs_tail_start(t, strlen(t), 2), 2);  /* "bb\nccc\n" */
	assert_int_equal(sidecar_logs_tail_start(t, strlen(t), 3), 0);
	assert_int_equal(sidecar_logs_tail_start(t, strlen(t), 9), 0);  /* fewer than asked */
	assert_int_equal(sidecar_logs_tail_start(t, strlen(t), 0), 9);  /* none: the end of the last */
	assert_int_equal(sidecar_logs_tail_start("", 0, 5), 0);
	assert_int_equal(sidecar_logs_tail_start("no newline", 10, 5), 0);
}

static void test_lines_are_cut_marked_and_nul_free_and_wait_for_their_newline(void **state)
{
	struct sidecar_logs_lines *st = calloc(1, sizeof(*st));
	struct textbuf out = {0};
	char *longl = malloc(SIDECAR_LOGS_LINE_MAX + 100);
	(void)state;
	sidecar_logs_lines_feed(&out, st, "one\ntw", 6);
	assert_string_equal(out.p, "one\n");
	sidecar_logs_lines_feed(&out, st, "o\0x\n", 4);
	assert_string_equal(out.p, "one\ntwox\n");
	memset(longl, 'z', SIDECAR_LOGS_LINE_MAX + 99);
	longl[SIDECAR_LOGS_LINE_MAX + 99] = '\n';
	textbuf_finish(&out);
	sidecar_logs_lines_feed(&out, st, longl, SIDECAR_LOGS_LINE_MAX + 100);
	assert_int_equal(out.len, SIDECAR_LOGS_LINE_MAX + strlen(" [cut]\n"));
	assert_string_equal(out.p + SIDECAR_LOGS_LINE_MAX, " [cut]\n");
	textbuf_finish(&out);
	free(longl);
	free(st);
}

static void test_keys_held_as_ids_newest_first_at_most_eight(void **state)
{
	struct sidecar_logs *l;
	struct nova_err err;
	char key[SIDECAR_LOGS_KEY_HEX + 1], id[SIDECAR_LOGS_KEY_ID_HEX + 1], path[300];
	(void)state;
	snprintf(path, sizeof(path), "%s/engines", dir);
	assert_int_equal(sidecar_logs_create(&l, path, SIDECAR_LOGS_MIN_MAX_BYTES, &err), 0);
	sidecar_logs_key_add(l, "not hex at all");
	json_t *ids = sidecar_logs_key_ids(l);
	assert_int_equal(json_array_size(ids), 0);
	json_decref(ids);
	for (int i = 0; i < 10; i++) {
		memset(key, 'a' + (i % 6), SIDECAR_LOGS_KEY_HEX);
		key[0] = (char)('0' + i);
		key[SIDECAR_LOGS_KEY_HEX] = '\0';
		sidecar_logs_key_add(l, key);
	}
	sidecar_logs_key_add(l, key); /* again: no twin */
	ids = sidecar_logs_key_ids(l);
	assert_int_equal(json_array_size(ids), SIDECAR_LOGS_MAX_KEYS);
	sidecar_logs_key_id(id, key);
	assert_string_equal(json_string_value(json_array_get(ids, 0)), id);
	json_decref(ids);
	sidecar_logs_destroy(l);
}

static void test_files_live_while_assigned_and_go_when_retired_and_released(void **state)
{
	struct sidecar_logs *l;
	struct nova_err err;
	char path[300];
	(void)state;
	snprintf(path, sizeof(path), "%s/engines", dir);
	assert_int_equal(sidecar_logs_create(&l, path, SIDECAR_LOGS_MIN_MAX_BYTES, &err), 0);
	assert_null(sidecar_logs_open(l, "../escape", 0));
	struct sidecar_englog *e = sidecar_logs_open(l, RID, 0);
	assert_non_null(e);
	sidecar_englog_write(e, "hello\n", 6);
	assert_true(exists(RID ".0.log"));
	/* A reader holds it: retired, the file stays until it lets go. */
	struct sidecar_englog *reader = sidecar_englog_ref(e);
	sidecar_logs_retire(l, RID, 0);
	sidecar_englog_release(e);
	assert_true(exists(RID ".0.log"));
	sidecar_englog_release(reader);
	assert_false(exists(RID ".0.log"));
	/* A stranger's file (an earlier run's) goes with the sweep; a live one stays. */
	char stale[400];
	snprintf(stale, sizeof(stale), "%s/engines/%s.1.log.1", dir, RID);
	FILE *f = fopen(stale, "w");
	assert_non_null(f);
	fclose(f);
	e = sidecar_logs_open(l, RID, 0);
	sidecar_logs_sweep(l);
	assert_false(exists(RID ".1.log.1"));
	assert_true(exists(RID ".0.log"));
	/* The sidecar stops: the files stay for its next run. */
	sidecar_englog_release(e);
	sidecar_logs_destroy(l);
	assert_true(exists(RID ".0.log"));
}

struct later {
	struct sidecar_logs *l;
	struct sidecar_englog *e;
};

static void *write_later(void *arg)
{
	struct later *w = arg;
	usleep(300 * 1000);
	sidecar_englog_write(w->e, "late line\n", 10);
	usleep(300 * 1000);
	sidecar_logs_retire(w->l, RID, 0);
	return NULL;
}

static int collect(void *ctx, const char *data, size_t len)
{
	textbuf_add(ctx, data, len);
	return 0;
}

static void test_server_needs_a_key_serves_a_tail_and_follows_until_retired(void **state)
{
	struct sidecar_logs *l;
	struct nova_err err;
	char path[300], url[300], key[SIDECAR_LOGS_KEY_HEX + 1];
	struct http_client_response res;
	long status = 0;
	(void)state;
	snprintf(path, sizeof(path), "%s/engines", dir);
	assert_int_equal(sidecar_logs_create(&l, path, SIDECAR_LOGS_MIN_MAX_BYTES, &err), 0);
	assert_int_equal(sidecar_logs_serve(l, "127.0.0.1:0", &err), 0);
	memset(key, 'c', SIDECAR_LOGS_KEY_HEX);
	key[SIDECAR_LOGS_KEY_HEX] = '\0';
	sidecar_logs_key_add(l, key);
	struct sidecar_englog *e = sidecar_logs_open(l, RID, 0);
	for (int i = 0; i < 5; i++) {
		char line[32];
		int n = snprintf(line, sizeof(line), "line %d\n", i);
		sidecar_englog_write(e, line, (size_t)n);
	}
	sidecar_englog_write(e, "half", 4);

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/logs/%s?stage=0&tail=2",
		 sidecar_logs_port(l), RID);
	struct http_client_request req = {.method = "GET", .url = url, .timeout_ms = 5000};
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 401);
	http_client_response_finish(&res);
	req.bearer_token = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 401);
	http_client_response_finish(&res);

	req.bearer_token = key;
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "line 3\nline 4\n");
	http_client_response_finish(&res);

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/logs/%s?stage=0&tail=many",
		 sidecar_logs_port(l), RID);
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 400);
	http_client_response_finish(&res);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/logs/%s?stage=3", sidecar_logs_port(l), RID);
	assert_int_equal(http_client_do(&res, &req, &err), 0);
	assert_int_equal(res.status, 404);
	http_client_response_finish(&res);

	/* A follow: the half line completes later, then the replica goes. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/logs/%s?stage=0&tail=1&follow=1",
		 sidecar_logs_port(l), RID);
	struct later w = {l, e};
	pthread_t t;
	struct textbuf got = {0};
	assert_int_equal(pthread_create(&t, NULL, write_later, &w), 0);
	assert_int_equal(http_client_stream(&status, &req, collect, &got, &err), 0);
	pthread_join(t, NULL);
	assert_int_equal(status, 200);
	assert_non_null(got.p);
	assert_string_equal(got.p, "line 4\nhalflate line\n");
	textbuf_finish(&got);
	sidecar_englog_release(e);
	sidecar_logs_destroy(l);
}

int main(void)
{
	struct nova_err err;
	if (http_client_global_init(&err))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tail_starts_at_the_last_complete_lines),
		cmocka_unit_test(test_lines_are_cut_marked_and_nul_free_and_wait_for_their_newline),
		cmocka_unit_test_setup_teardown(test_keys_held_as_ids_newest_first_at_most_eight, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_files_live_while_assigned_and_go_when_retired_and_released, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_server_needs_a_key_serves_a_tail_and_follows_until_retired, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	http_client_global_cleanup();
	return rc;
}
