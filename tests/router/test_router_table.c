/* nova-router's pure parts: the table built from the watch's routes (and
 * rebuilt keeping each replica's counts), the least-loaded pick with
 * ejection, the key set from /v1/router/keys, and the configuration file
 * with positioned errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "core/secret.h"
#include "router/router.h"

static json_t *routes_of(const char *text)
{
	json_t *list = json_loads(text, 0, NULL), *by_key = json_object(), *r;
	size_t i;
	assert_non_null(list);
	json_array_foreach(list, i, r) {
		char key[256];
		assert_true(router_route_key(key, sizeof(key), r));
		json_object_set(by_key, key, r);
	}
	json_decref(list);
	return by_key;
}

#define TWO                                                                                   \
	"[{\"model\":\"m\",\"adapter\":null,\"endpoints\":["                                  \
	"{\"url\":\"http://127.0.0.1:1/\",\"replica\":\"r1\"},"                               \
	"{\"url\":\"http://127.0.0.1:2\",\"replica\":\"r2\"}]},"                              \
	"{\"model\":\"m\",\"adapter\":\"sql\",\"endpoints\":["                                \
	"{\"url\":\"http://127.0.0.1:1/\",\"replica\":\"r1\"}]}]"

static void test_the_table_files_models_and_adapters_by_key(void **state)
{
	(void)state;
	json_t *by_key = routes_of(TWO);
	size_t skipped = 1;
	struct router_table *t = router_table_build(by_key, 7, NULL, &skipped);
	assert_non_null(t);
	assert_int_equal(skipped, 0);
	assert_int_equal(t->version, 7);
	assert_int_equal(t->n, 2);
	const struct router_route *m = router_table_find(t, "m"), *a = router_table_find(t, "m/sql");
	assert_non_null(m);
	assert_non_null(a);
	assert_null(router_table_find(t, "x"));
	assert_int_equal(m->n, 2);
	assert_string_equal(m->replicas[0]->url, "http://127.0.0.1:1"); /* no trailing slash */
	assert_string_equal(a->adapter, "sql");
	/* One object per replica, whichever routes it serves. */
	assert_ptr_equal(a->replicas[0], m->replicas[0]);
	router_table_unref(t);
	json_decref(by_key);
}

static void test_a_rebuilt_table_keeps_each_replicas_counts(void **state)
{
	(void)state;
	json_t *by_key = routes_of(TWO);
	struct router_table *t1 = router_table_build(by_key, 1, NULL, NULL);
	struct router_replica *r1 = (struct router_replica *)router_table_find(t1, "m")->replicas[0];
	atomic_store(&r1->outstanding, 5);
	json_decref(by_key);
	/* r2 moved to another port: a new object; r1 kept. */
	by_key = routes_of("[{\"model\":\"m\",\"adapter\":null,\"endpoints\":["
			   "{\"url\":\"http://127.0.0.1:1\",\"replica\":\"r1\"},"
			   "{\"url\":\"http://127.0.0.1:3\",\"replica\":\"r2\"}]}]");
	struct router_table *t2 = router_table_build(by_key, 2, t1, NULL);
	const struct router_route *m = router_table_find(t2, "m");
	assert_ptr_equal(m->replicas[0], r1);
	assert_int_equal(atomic_load(&m->replicas[0]->outstanding), 5);
	assert_string_equal(m->replicas[1]->url, "http://127.0.0.1:3");
	assert_int_equal(atomic_load(&m->replicas[1]->outstanding), 0);
	router_table_unref(t1); /* r1 lives on in t2 */
	assert_string_equal(router_table_find(t2, "m")->replicas[0]->id, "r1");
	router_table_unref(t2);
	json_decref(by_key);
}

static void test_malformed_routes_and_endpoints_are_left_out(void **state)
{
	(void)state;
	json_t *by_key = json_pack("{s:{s:s, s:[{s:s, s:s}, {s:s}, {s:s, s:s}]}, s:{s:i}}", "m", "model",
				   "m", "endpoints", "url", "http://h:1", "replica", "a", "url",
				   "http://h:2", "url", "file:///etc/passwd", "replica", "c", "bad",
				   "model", 3);
	size_t skipped = 0;
	struct router_table *t = router_table_build(by_key, 1, NULL, &skipped);
	assert_non_null(t);
	assert_int_equal(skipped, 3);
	assert_int_equal(t->n, 1);
	assert_int_equal(router_table_find(t, "m")->n, 1);
	router_table_unref(t);
	json_decref(by_key);
}

static struct router_route *fake_route(size_t n)
{
	struct router_route *rt = calloc(1, sizeof(*rt));
	rt->key = "m";
	rt->n = n;
	rt->replicas = calloc(n, sizeof(*rt->replicas));
	for (size_t i = 0; i < n; i++) {
		rt->replicas[i] = calloc(1, sizeof(**rt->replicas));
		snprintf(rt->replicas[i]->id, sizeof(rt->replicas[i]->id), "r%zu", i);
	}
	return rt;
}

static void fake_route_free(struct router_route *rt)
{
	for (size_t i = 0; i < rt->n; i++)
		free(rt->replicas[i]);
	free(rt->replicas);
	free(rt);
}

static void test_the_pick_is_the_least_loaded_counting_reported_queues(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(3);
	atomic_store(&rt->replicas[0]->outstanding, 2);
	atomic_store(&rt->replicas[1]->outstanding, 0);
	atomic_store(&rt->replicas[1]->queue_depth, 5); /* busy as reported */
	atomic_store(&rt->replicas[2]->outstanding, 1);
	for (uint64_t rnd = 0; rnd < 20; rnd++)
		assert_ptr_equal(router_pick(rt, ROUTER_POLICY_PREFIX, NULL, NULL, 0, 1000, rnd),
				 rt->replicas[2]);
	fake_route_free(rt);
}

static void test_equal_replicas_share_the_picks(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(3);
	int seen[3] = {0};
	for (uint64_t rnd = 0; rnd < 300; rnd++) {
		struct router_replica *p = router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1000,
						       rnd * 0x9E3779B97F4A7C15ULL);
		for (int i = 0; i < 3; i++)
			seen[i] += p == rt->replicas[i];
	}
	for (int i = 0; i < 3; i++)
		assert_true(seen[i] > 50);
	fake_route_free(rt);
}

static void test_ejected_and_tried_replicas_are_skipped_unless_none_is_left(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(3);
	router_replica_eject(rt->replicas[0], 1000);
	assert_int_equal(atomic_load(&rt->replicas[0]->ejected_until_ms), 2000);
	struct router_replica *tried[1] = {rt->replicas[1]};
	for (uint64_t rnd = 0; rnd < 20; rnd++)
		assert_ptr_equal(router_pick(rt, ROUTER_POLICY_PREFIX, NULL, tried, 1, 1500, rnd),
				 rt->replicas[2]);
	/* Every untried one ejected: one of them anyway. */
	router_replica_eject(rt->replicas[2], 1000);
	assert_non_null(router_pick(rt, ROUTER_POLICY_PREFIX, NULL, tried, 1, 1500, 3));
	/* All tried: none. */
	struct router_replica *all[3] = {rt->replicas[0], rt->replicas[1], rt->replicas[2]};
	assert_null(router_pick(rt, ROUTER_POLICY_PREFIX, NULL, all, 3, 1500, 3));
	/* Past its time, back; the backoff doubles, and a success resets it. */
	assert_non_null(router_pick(rt, ROUTER_POLICY_PREFIX, NULL, NULL, 0, 2001, 0));
	router_replica_eject(rt->replicas[0], 5000);
	assert_int_equal(atomic_load(&rt->replicas[0]->ejected_until_ms), 7000);
	/* Failures while ejected (requests sent before) count once. */
	router_replica_eject(rt->replicas[0], 5001);
	assert_int_equal(atomic_load(&rt->replicas[0]->ejected_until_ms), 7000);
	long long now = 7000;
	for (int i = 0; i < 10; i++) {
		router_replica_eject(rt->replicas[0], now);
		now = atomic_load(&rt->replicas[0]->ejected_until_ms);
	}
	assert_int_equal(atomic_load(&rt->replicas[0]->failures), 12);
	router_replica_eject(rt->replicas[0], now);
	assert_int_equal(atomic_load(&rt->replicas[0]->ejected_until_ms), now + 30000);
	router_replica_succeeded(rt->replicas[0]);
	assert_int_equal(atomic_load(&rt->replicas[0]->ejected_until_ms), 0);
	assert_int_equal(atomic_load(&rt->replicas[0]->failures), 0);
	fake_route_free(rt);
}

static void test_large_sets_use_two_choices(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(50);
	for (size_t i = 0; i < 50; i++)
		atomic_store(&rt->replicas[i]->outstanding, (int)i);
	/* Never the busiest; both draws distinct, so never worse than the
	 * second busiest either. */
	for (uint64_t rnd = 0; rnd < 2000; rnd++) {
		struct router_replica *p = router_pick(rt, ROUTER_POLICY_PREFIX, NULL, NULL, 0, 1,
						       rnd * 0x2545F4914F6CDD1DULL);
		assert_true(atomic_load(&p->outstanding) < 49);
	}
	fake_route_free(rt);
}

static void test_keys_are_checked_by_hash_scope_and_expiry(void **state)
{
	(void)state;
	char h1[SECRET_HEX_SHA256_LEN], h2[SECRET_HEX_SHA256_LEN], h3[SECRET_HEX_SHA256_LEN],
		h4[SECRET_HEX_SHA256_LEN], text[1024];
	secret_sha256_hex(h1, "sk-nova-inf", 11);
	secret_sha256_hex(h2, "sk-nova-read", 12);
	secret_sha256_hex(h3, "sk-nova-old", 11);
	secret_sha256_hex(h4, "sk-nova-adm", 11);
	snprintf(text, sizeof(text),
		 "{\"keys\":[{\"hash\":\"%s\",\"scopes\":[\"inference\"],\"expires_at\":null},"
		 "{\"hash\":\"%s\",\"scopes\":[\"read\",\"routes\"],\"expires_at\":null},"
		 "{\"hash\":\"%s\",\"scopes\":[\"inference\"],\"expires_at\":1000},"
		 "{\"hash\":\"%s\",\"scopes\":[\"admin\"]},{\"hash\":\"nothex\",\"scopes\":[]}]}",
		 h1, h2, h3, h4);
	struct router_keys *k = router_keys_parse(text, strlen(text));
	assert_non_null(k);
	assert_int_equal(router_keys_count(k), 4);
	assert_int_equal(router_keys_check(k, "sk-nova-inf", 2000), ROUTER_KEY_OK);
	assert_int_equal(router_keys_check(k, "sk-nova-adm", 2000), ROUTER_KEY_OK);
	assert_int_equal(router_keys_check(k, "sk-nova-read", 2000), ROUTER_KEY_FORBIDDEN);
	assert_int_equal(router_keys_check(k, "sk-nova-old", 999), ROUTER_KEY_OK);
	assert_int_equal(router_keys_check(k, "sk-nova-old", 1000), ROUTER_KEY_EXPIRED);
	assert_int_equal(router_keys_check(k, "sk-nova-other", 2000), ROUTER_KEY_UNKNOWN);
	assert_int_equal(router_keys_check(k, "", 2000), ROUTER_KEY_UNKNOWN);
	assert_int_equal(router_keys_check(NULL, "sk-nova-inf", 2000), ROUTER_KEY_UNKNOWN);
	router_keys_unref(k);
	assert_null(router_keys_parse("{\"keys\":3}", 10));
	assert_null(router_keys_parse("nope", 4));
}

static const char *write_file(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/nova-router-cfg.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_the_config_file_is_read_and_flags_win(void **state)
{
	(void)state;
	struct router_config cfg;
	struct nova_err err;
	const char *tok = write_file("sk-nova-from-file\n");
	char tokpath[64];
	snprintf(tokpath, sizeof(tokpath), "%s", tok);
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
		 "gateway: http://127.0.0.1:8420\ntoken_file: %s\nlisten: 127.0.0.1:0\nthreads: 3\n"
		 "policy: least-loaded\nmax_retries: 1\nmax_upstream_connections: 8\n", tokpath);
	const char *path = write_file(yaml);
	char *argv[] = {"nova-router", "--config", (char *)path, "--threads", "2", NULL};
	router_config_defaults(&cfg);
	unsetenv("NOVA_TOKEN"), unsetenv("NOVA_GATEWAY"), unsetenv("NOVA_ROUTER_LISTEN");
	assert_int_equal(router_config_parse(&cfg, 5, argv, &err), 0);
	assert_string_equal(cfg.gateway, "http://127.0.0.1:8420");
	assert_string_equal(cfg.token, "sk-nova-from-file");
	assert_int_equal(cfg.threads, 2);
	assert_int_equal(cfg.max_retries, 1);
	assert_int_equal(cfg.max_upstream_connections, 8);
	assert_int_equal(cfg.policy, ROUTER_POLICY_LEAST_LOADED);
	unlink(path);
	unlink(tokpath);
}

static void test_a_bad_config_file_names_file_line_column_never_the_value(void **state)
{
	(void)state;
	struct router_config cfg;
	struct nova_err err;
	const char *path = write_file("gateway: http://127.0.0.1:8420\nthreads: many-secret\n");
	router_config_defaults(&cfg);
	assert_int_equal(router_config_load_file(&cfg, path, &err), NOVA_EINVAL);
	char where[128];
	snprintf(where, sizeof(where), "%s:2:10", path);
	assert_non_null(strstr(err.message, where));
	assert_null(strstr(err.message, "many-secret"));
	unlink(path);
	path = write_file("gateway: http://x\nsecret-key-name: 1\n");
	router_config_defaults(&cfg);
	assert_int_equal(router_config_load_file(&cfg, path, &err), NOVA_EINVAL);
	assert_null(strstr(err.message, "secret-key-name"));
	unlink(path);
	path = write_file("policy: fastest\n");
	assert_int_equal(router_config_load_file(&cfg, path, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "policy");
	unlink(path);
}

static void test_the_config_needs_a_gateway_and_a_token(void **state)
{
	(void)state;
	struct router_config cfg;
	struct nova_err err;
	char *argv[] = {"nova-router", "--listen", "127.0.0.1:0", NULL};
	unsetenv("NOVA_TOKEN"), unsetenv("NOVA_GATEWAY");
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 3, argv, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "gateway");
	setenv("NOVA_GATEWAY", "http://127.0.0.1:1", 1);
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 3, argv, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "token");
	setenv("NOVA_TOKEN", "sk-nova-x", 1);
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 3, argv, &err), 0);
	setenv("NOVA_GATEWAY", "http://user:pw@h:1", 1);
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 3, argv, &err), NOVA_EINVAL);
	assert_null(strstr(err.message, "pw"));
	char *bad[] = {"nova-router", "--threads", "lots", NULL};
	assert_int_equal(router_config_parse(&cfg, 3, bad, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--threads");
	char *help[] = {"nova-router", "--help", NULL};
	assert_int_equal(router_config_parse(&cfg, 2, help, &err), 1);
	unsetenv("NOVA_TOKEN"), unsetenv("NOVA_GATEWAY");
}

/* The wait for a replica: defaults, the file, the environment, flags; a
 * value out of range names its source. */
static void test_the_queue_settings_come_from_file_environment_and_flags(void **state)
{
	(void)state;
	struct router_config cfg;
	struct nova_err err;
	const char *path = write_file("gateway: http://127.0.0.1:8420\nqueue_max: 5\n"
				      "queue_timeout_ms: 700\ndemand_ms: 250\n");
	char *argv[] = {"nova-router", "--config", (char *)path, "--token", "k", NULL};
	router_config_defaults(&cfg);
	assert_int_equal(cfg.queue_max, 256);
	assert_int_equal(cfg.queue_timeout_ms, 30000);
	unsetenv("NOVA_TOKEN"), unsetenv("NOVA_GATEWAY"), unsetenv("NOVA_ROUTER_LISTEN");
	unsetenv("NOVA_ROUTER_QUEUE_TIMEOUT_MS");
	assert_int_equal(router_config_parse(&cfg, 5, argv, &err), 0);
	assert_int_equal(cfg.queue_max, 5);
	assert_int_equal(cfg.queue_timeout_ms, 700);
	assert_int_equal(cfg.demand_ms, 250);
	setenv("NOVA_ROUTER_QUEUE_TIMEOUT_MS", "1500", 1);
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 5, argv, &err), 0);
	assert_int_equal(cfg.queue_timeout_ms, 1500);
	char *argv2[] = {"nova-router", "--config", (char *)path, "--token", "k",
			 "--queue-timeout-ms", "0", "--queue-max", "9", NULL};
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 9, argv2, &err), 0);
	assert_int_equal(cfg.queue_timeout_ms, 0);
	assert_int_equal(cfg.queue_max, 9);
	setenv("NOVA_ROUTER_QUEUE_TIMEOUT_MS", "soon", 1);
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 5, argv, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "NOVA_ROUTER_QUEUE_TIMEOUT_MS");
	unsetenv("NOVA_ROUTER_QUEUE_TIMEOUT_MS");
	char *argv3[] = {"nova-router", "--config", (char *)path, "--token", "k", "--queue-max",
			 "-1", NULL};
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 7, argv3, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "--queue-max");
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_table_files_models_and_adapters_by_key),
		cmocka_unit_test(test_a_rebuilt_table_keeps_each_replicas_counts),
		cmocka_unit_test(test_malformed_routes_and_endpoints_are_left_out),
		cmocka_unit_test(test_the_pick_is_the_least_loaded_counting_reported_queues),
		cmocka_unit_test(test_equal_replicas_share_the_picks),
		cmocka_unit_test(test_ejected_and_tried_replicas_are_skipped_unless_none_is_left),
		cmocka_unit_test(test_large_sets_use_two_choices),
		cmocka_unit_test(test_keys_are_checked_by_hash_scope_and_expiry),
		cmocka_unit_test(test_the_config_file_is_read_and_flags_win),
		cmocka_unit_test(test_a_bad_config_file_names_file_line_column_never_the_value),
		cmocka_unit_test(test_the_config_needs_a_gateway_and_a_token),
		cmocka_unit_test(test_the_queue_settings_come_from_file_environment_and_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
