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

#include "core/prompt.h"
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
	struct router_table *t = router_table_build(by_key, 7, NULL, NULL, &skipped);
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
	struct router_table *t1 = router_table_build(by_key, 1, NULL, NULL, NULL);
	struct router_replica *r1 = (struct router_replica *)router_table_find(t1, "m")->replicas[0];
	atomic_store(&r1->outstanding, 5);
	json_decref(by_key);
	/* r2 moved to another port: a new object; r1 kept. */
	by_key = routes_of("[{\"model\":\"m\",\"adapter\":null,\"endpoints\":["
			   "{\"url\":\"http://127.0.0.1:1\",\"replica\":\"r1\"},"
			   "{\"url\":\"http://127.0.0.1:3\",\"replica\":\"r2\"}]}]");
	struct router_table *t2 = router_table_build(by_key, 2, t1, NULL, NULL);
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
	struct router_table *t = router_table_build(by_key, 1, NULL, NULL, &skipped);
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
		rt->replicas[i]->id_hash = prompt_hash(rt->replicas[i]->id, strlen(rt->replicas[i]->id));
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

static void test_a_full_kv_cache_weighs_like_a_queue(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(2);
	atomic_store(&rt->replicas[0]->kv_load, ROUTER_KV_WEIGHT); /* cache full, idle */
	atomic_store(&rt->replicas[1]->outstanding, ROUTER_KV_WEIGHT - 1);
	for (uint64_t rnd = 0; rnd < 10; rnd++)
		assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1, rnd),
				 rt->replicas[1]);
	atomic_store(&rt->replicas[0]->kv_load, ROUTER_KV_WEIGHT / 2);
	for (uint64_t rnd = 0; rnd < 10; rnd++)
		assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1, rnd),
				 rt->replicas[0]);
	/* Requests other routers run there count when they outnumber ours. */
	atomic_store(&rt->replicas[0]->running, ROUTER_KV_WEIGHT);
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1, 0),
			 rt->replicas[1]);
	atomic_store(&rt->replicas[1]->running, 3); /* fewer than ours there: ours count */
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1, 0),
			 rt->replicas[1]);
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

static void test_a_replica_back_from_ejection_gets_one_probe_at_a_time(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(2);
	struct router_replica *r0 = rt->replicas[0], *r1 = rt->replicas[1];
	assert_true(router_replica_eject(r0, 1000));
	assert_false(router_replica_eject(r0, 1500)); /* sent before: not a new ejection */
	/* Ejected: never picked while another is there. */
	for (uint64_t rnd = 0; rnd < 8; rnd++)
		assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1999, rnd), r1);
	/* Its time is over: the next pick probes it, even though r1 is less
	 * loaded; the picks after pass it by while the probe is out. */
	atomic_store(&r0->outstanding, 5);
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 2000, 1), r0);
	for (uint64_t rnd = 0; rnd < 8; rnd++)
		assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 2500, rnd), r1);
	/* No answer within ROUTER_PROBE_MS: another probe. */
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0,
				     2000 + ROUTER_PROBE_MS, 1), r0);
	/* The probe fails: ejected again, for twice as long. */
	assert_true(router_replica_eject(r0, 4100));
	assert_int_equal(atomic_load(&r0->ejected_until_ms), 4100 + 2000);
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 6100, 1), r0);
	/* It succeeds: back in full, picked by load again. */
	router_replica_succeeded(r0);
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 6200, 1), r1);
	atomic_store(&r0->outstanding, 0);
	atomic_store(&r1->outstanding, 3);
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 6300, 1), r0);
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

static struct router_replica *pick_session(const struct router_route *rt, const char *s)
{
	struct router_pick_hint hint = {.session = s};
	return router_pick(rt, ROUTER_POLICY_SESSION, &hint, NULL, 0, 1, 12345);
}

static size_t index_of(const struct router_route *rt, const struct router_replica *p)
{
	for (size_t i = 0; i < rt->n; i++)
		if (rt->replicas[i] == p)
			return i;
	fail_msg("the pick is not one of the route's replicas");
	return 0;
}

static void test_a_session_sticks_to_one_replica_and_sessions_spread(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(8);
	int per[8] = {0};
	char s[32];
	for (int i = 0; i < 1600; i++) {
		snprintf(s, sizeof(s), "user-%d", i);
		size_t a = index_of(rt, pick_session(rt, s));
		/* Whatever the random value: the key decides. */
		struct router_pick_hint hint = {.session = s};
		for (uint64_t rnd = 0; rnd < 3; rnd++)
			assert_ptr_equal(router_pick(rt, ROUTER_POLICY_SESSION, &hint, NULL, 0, 1,
						     rnd * 0x9E3779B97F4A7C15ULL),
					 rt->replicas[a]);
		per[a]++;
	}
	for (int i = 0; i < 8; i++)
		assert_in_range(per[i], 120, 280); /* 200 each, give or take */
	fake_route_free(rt);
	/* No session key: least loaded, like that policy. */
	rt = fake_route(3);
	atomic_store(&rt->replicas[0]->outstanding, 5);
	atomic_store(&rt->replicas[2]->outstanding, 5);
	assert_ptr_equal(pick_session(rt, ""), rt->replicas[1]);
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_SESSION, NULL, NULL, 0, 1, 7), rt->replicas[1]);
	fake_route_free(rt);
}

static void test_a_new_replica_takes_only_its_share_of_sessions(void **state)
{
	(void)state;
	struct router_route *rt8 = fake_route(9), *rt9 = fake_route(9);
	rt8->n = 8; /* the same replicas, without the ninth */
	int moved = 0, moved_elsewhere = 0;
	char s[32];
	for (int i = 0; i < 1800; i++) {
		snprintf(s, sizeof(s), "session %d", i);
		size_t before = index_of(rt8, pick_session(rt8, s));
		size_t after = index_of(rt9, pick_session(rt9, s));
		if (before != after) {
			moved++;
			moved_elsewhere += after != 8;
		}
	}
	/* Rendezvous hashing: about 1/9 move, all to the new one. */
	assert_int_equal(moved_elsewhere, 0);
	assert_in_range(moved, 120, 290);
	rt8->n = 9;
	fake_route_free(rt8);
	fake_route_free(rt9);
}

static void test_a_sessions_replica_past_its_bounded_share_is_passed_over(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(4);
	/* One hot session, 40 requests at once: its replica takes up to
	 * 1.25 x the mean, the rest spill in hash order. */
	for (int i = 0; i < 40; i++) {
		struct router_replica *p = pick_session(rt, "hot");
		atomic_fetch_add(&p->outstanding, 1);
	}
	int max = 0;
	for (int i = 0; i < 4; i++)
		if (atomic_load(&rt->replicas[i]->outstanding) > max)
			max = atomic_load(&rt->replicas[i]->outstanding);
	assert_in_range(max, 10, 13); /* ceil(1.25 x 40 / 4) */
	/* Its own replica stays the first choice once the load is gone. */
	for (int i = 0; i < 4; i++)
		atomic_store(&rt->replicas[i]->outstanding, 0);
	struct router_replica *home = pick_session(rt, "hot");
	atomic_store(&home->outstanding, 3);
	assert_ptr_not_equal(pick_session(rt, "hot"), home); /* 3 + 1 > 1.25 x 4 / 4 */
	for (int i = 0; i < 4; i++)
		atomic_store(&rt->replicas[i]->outstanding, 2);
	assert_ptr_equal(pick_session(rt, "hot"), home); /* 3 <= 1.25 x 9 / 4 */
	fake_route_free(rt);
}

static void test_the_prefix_memory_finds_the_longest_remembered_run(void **state)
{
	(void)state;
	struct router_prefix_map *m = router_prefix_map_create(1024);
	uint64_t a[6] = {11, 12, 13, 14, 15, 16}, b[4] = {11, 12, 13, 99}, who = 0;
	assert_non_null(m);
	assert_int_equal(router_prefix_lookup(m, a, 6, &who), 0);
	router_prefix_remember(m, a, 0, 4, 7);
	assert_int_equal(router_prefix_lookup(m, a, 6, &who), 4);
	assert_int_equal(who, 7);
	assert_int_equal(router_prefix_lookup(m, b, 4, &who), 3);
	/* Taught again from block 2 on: the later owner for those. */
	router_prefix_remember(m, a, 2, 6, 8);
	assert_int_equal(router_prefix_lookup(m, a, 6, &who), 6);
	assert_int_equal(who, 8);
	assert_int_equal(router_prefix_lookup(m, a, 2, &who), 2);
	assert_int_equal(who, 7);
	router_prefix_map_destroy(m);
	/* Bounded: far more blocks than entries, the newest kept. */
	m = router_prefix_map_create(64);
	uint64_t h[1000];
	for (uint64_t i = 0; i < 1000; i++)
		h[i] = prompt_hash(&i, sizeof(i));
	for (size_t i = 0; i < 1000; i++)
		router_prefix_remember(m, h, i, i + 1, i);
	int kept = 0;
	for (size_t i = 0; i < 1000; i++)
		kept += router_prefix_lookup(m, &h[i], 1, &who) == 1 && who == i;
	assert_in_range(kept, 16, 64);
	assert_int_equal(router_prefix_lookup(m, &h[999], 1, &who), 1);
	router_prefix_map_destroy(m);
}

static uint64_t *hashes_of(const char *body, const char *key, size_t *n)
{
	json_t *doc = json_loads(body, 0, NULL);
	uint64_t *h = NULL;
	assert_non_null(doc);
	assert_true(router_prefix_hashes(doc, strstr(body, "messages") != NULL, key, 16, 64, &h, n));
	json_decref(doc);
	return h;
}

static void test_prefix_hashes_are_of_the_prompt_and_the_route(void **state)
{
	(void)state;
	size_t n1, n2, n3, n4, n5;
	uint64_t *h1 = hashes_of("{\"model\":\"m\",\"temperature\":0.1,\"messages\":["
				 "{\"role\":\"system\",\"content\":\"You answer in French, briefly.\"},"
				 "{\"role\":\"user\",\"content\":\"What is a cat? Answer please.\"}]}", "m", &n1);
	uint64_t *h2 = hashes_of("{\"model\":\"m\",\"max_tokens\":9,\"messages\":["
				 "{\"role\":\"system\",\"content\":\"You answer in French, briefly.\"},"
				 "{\"role\":\"user\",\"content\":\"What is a dog? Answer please.\"}]}", "m", &n2);
	uint64_t *h3 = hashes_of("{\"model\":\"m\",\"messages\":["
				 "{\"role\":\"system\",\"content\":\"You answer in French, briefly.\"},"
				 "{\"role\":\"user\",\"content\":\"What is a cat? Answer please.\"}]}", "other", &n3);
	uint64_t *h4 = hashes_of("{\"model\":\"m\",\"prompt\":\"short\"}", "m", &n4);
	uint64_t *h5 = hashes_of("{\"model\":\"m\",\"prompt\":\"You answer in French, briefly. "
				 "What is a cat?\"}", "m", &n5);
	assert_int_equal(n1, n2);
	assert_true(n1 >= 3);
	assert_memory_equal(h1, h2, 16); /* the system prompt's first blocks */
	assert_memory_not_equal(&h1[n1 - 1], &h2[n1 - 1], 8); /* the question differs */
	assert_memory_not_equal(h1, h3, 8);      /* another model */
	assert_int_equal(n4, 0);                 /* under a block */
	assert_null(h4);
	assert_true(n5 >= 1);
	free(h1), free(h2), free(h3), free(h5);
}

static void test_the_prefix_policy_follows_the_prefix_within_the_load_bound(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(4);
	struct router_prefix_map *m = router_prefix_map_create(4096);
	uint64_t tenant[8] = {1, 2, 3, 4, 5, 6, 7, 8}, other[8] = {1, 2, 3, 4, 5, 6, 70, 80},
		 fresh[3] = {100, 200, 300};
	struct router_pick_hint hint = {.prefix = tenant, .n_prefix = 8, .prefixes = m};
	for (int i = 0; i < 4; i++) /* the third the least loaded, first */
		atomic_store(&rt->replicas[i]->outstanding, i == 2 ? 0 : 1);
	struct router_replica *first = router_pick(rt, ROUTER_POLICY_PREFIX, &hint, NULL, 0, 1, 5);
	assert_ptr_equal(first, rt->replicas[2]);
	for (int i = 0; i < 4; i++)
		atomic_store(&rt->replicas[i]->outstanding, 0);
	/* Busier than the rest, within 2 x least + slack: it follows. */
	atomic_store(&first->outstanding, ROUTER_AFFINITY_SLACK);
	hint.prefix = other;
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_PREFIX, &hint, NULL, 0, 1, 5), first);
	/* Past the bound: the least loaded, which now owns the prefix. */
	atomic_store(&first->outstanding, ROUTER_AFFINITY_SLACK + 1);
	struct router_replica *moved = router_pick(rt, ROUTER_POLICY_PREFIX, &hint, NULL, 0, 1, 5);
	assert_ptr_not_equal(moved, first);
	atomic_store(&first->outstanding, 0);
	atomic_store(&moved->outstanding, 3);
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_PREFIX, &hint, NULL, 0, 1, 9), moved);
	/* The shared blocks went with it; the first keeps the rest of its
	 * own prompt. */
	uint64_t who = 0;
	assert_int_equal(router_prefix_lookup(m, tenant, 8, &who), 8);
	assert_int_equal(who, first->id_hash);
	/* A prompt never seen: the least loaded. */
	hint.prefix = fresh, hint.n_prefix = 3;
	for (int i = 0; i < 4; i++)
		atomic_store(&rt->replicas[i]->outstanding, i == 1 ? 0 : 4);
	assert_ptr_equal(router_pick(rt, ROUTER_POLICY_PREFIX, &hint, NULL, 0, 1, 5), rt->replicas[1]);
	/* A retry skips the one tried even when it owns the prefix. */
	struct router_replica *tried[1] = {rt->replicas[1]};
	assert_ptr_not_equal(router_pick(rt, ROUTER_POLICY_PREFIX, &hint, tried, 1, 1, 5),
			     rt->replicas[1]);
	router_prefix_map_destroy(m);
	fake_route_free(rt);
}

static void test_round_robin_takes_each_in_turn(void **state)
{
	(void)state;
	struct router_route *rt = fake_route(3);
	atomic_store(&rt->replicas[0]->outstanding, 50); /* blind to load */
	int seen[3] = {0};
	for (int i = 0; i < 30; i++)
		seen[index_of(rt, router_pick(rt, ROUTER_POLICY_ROUND_ROBIN, NULL, NULL, 0, 1, 0))]++;
	for (int i = 0; i < 3; i++)
		assert_int_equal(seen[i], 10);
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

/* Without --config the router reads NOVA_ROUTER_CONFIG's file (else
 * /etc/nova/nova-router.yaml when it exists: tests/dist/test_service.sh);
 * --config wins over it, and /dev/null reads nothing. */
static void test_without_config_the_variable_names_the_file_and_config_wins(void **state)
{
	(void)state;
	struct router_config cfg;
	struct nova_err err;
	char from_env[64], from_flag[64];
	snprintf(from_env, sizeof(from_env), "%s", write_file("gateway: http://127.0.0.1:7001\n"));
	snprintf(from_flag, sizeof(from_flag), "%s", write_file("gateway: http://127.0.0.1:7002\n"));
	char *plain[] = {"nova-router", NULL};
	char *flag[] = {"nova-router", "--config", from_flag, NULL};
	char *none[] = {"nova-router", "--config", "/dev/null", NULL};
	unsetenv("NOVA_GATEWAY");
	setenv("NOVA_TOKEN", "sk-nova-x", 1);
	setenv("NOVA_ROUTER_CONFIG", from_env, 1);
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 1, plain, &err), 0);
	assert_string_equal(cfg.gateway, "http://127.0.0.1:7001");
	assert_string_equal(cfg.config_file, from_env);
	assert_string_equal(cfg.config_source, "NOVA_ROUTER_CONFIG");
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 3, flag, &err), 0);
	assert_string_equal(cfg.gateway, "http://127.0.0.1:7002");
	assert_string_equal(cfg.config_source, "flag");
	router_config_defaults(&cfg);
	assert_int_equal(router_config_parse(&cfg, 3, none, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "gateway"); /* nothing read: no gateway */
	setenv("NOVA_ROUTER_CONFIG", "/nonexistent/nova-router.yaml", 1);
	router_config_defaults(&cfg);
	assert_int_not_equal(router_config_parse(&cfg, 1, plain, &err), 0);
	assert_non_null(strstr(err.message, "/nonexistent/nova-router.yaml"));
	setenv("NOVA_ROUTER_CONFIG", "/dev/null", 1); /* as tests/run.sh has it */
	unsetenv("NOVA_TOKEN");
	unlink(from_env);
	unlink(from_flag);
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

/* A dynamic adapter's route: three replicas that can all load "sql". */
#define DYN                                                                                   \
	"[{\"model\":\"m\",\"adapter\":\"sql\",\"dynamic\":true,\"endpoints\":["               \
	"{\"url\":\"http://127.0.0.1:1\",\"replica\":\"r1\"},"                                \
	"{\"url\":\"http://127.0.0.1:2\",\"replica\":\"r2\"},"                                \
	"{\"url\":\"http://127.0.0.1:3\",\"replica\":\"r3\"}]},"                              \
	"{\"model\":\"m\",\"adapter\":\"chat\",\"endpoints\":["                                \
	"{\"url\":\"http://127.0.0.1:1\",\"replica\":\"r1\"},"                                \
	"{\"url\":\"http://127.0.0.1:2\",\"replica\":\"r2\"}]}]"

static struct router_replica *pick_adapter(const struct router_route *rt, const char *adapter,
					   long long now, uint64_t rnd)
{
	struct router_pick_hint hint = {.adapter = adapter};
	return router_pick(rt, ROUTER_POLICY_LEAST_LOADED, &hint, NULL, 0, now, rnd);
}

static void test_a_dynamic_adapter_goes_to_a_replica_that_has_it_loaded(void **state)
{
	(void)state;
	json_t *by_key = routes_of(DYN);
	struct router_table *t = router_table_build(by_key, 1, NULL, NULL, NULL);
	const struct router_route *rt = router_table_find(t, "m/sql");
	assert_true(rt->dynamic);
	assert_false(router_table_find(t, "m/chat")->dynamic); /* no "dynamic": static */
	struct router_replica *r2 = rt->replicas[1];
	const char *loaded[] = {"chat", "sql"};
	router_replica_adapters_set(r2, loaded, 2);
	/* r2 has it: every pick, whatever the draw, while within the bound. */
	atomic_store(&r2->queue_depth, 2);
	for (uint64_t rnd = 0; rnd < 64; rnd++)
		assert_ptr_equal(pick_adapter(rt, "sql", 1000, rnd * 0x9E3779B97F4A7C15ull), r2);
	/* Another adapter, loaded nowhere: the least loaded (not r2). */
	for (uint64_t rnd = 0; rnd < 16; rnd++)
		assert_ptr_not_equal(pick_adapter(rt, "code", 1000, rnd * 0x9E3779B97F4A7C15ull), r2);
	/* No hint or no adapter: least loaded as ever. */
	assert_ptr_not_equal(router_pick(rt, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1000, 5), r2);
	/* Its report drops it: no longer preferred. */
	router_replica_adapters_set(r2, loaded, 1);
	for (uint64_t rnd = 0; rnd < 16; rnd++)
		assert_ptr_not_equal(pick_adapter(rt, "sql", 1000, rnd * 0x9E3779B97F4A7C15ull), r2);
	router_table_unref(t);
	json_decref(by_key);
}

static void test_the_adapter_preference_gives_way_past_the_load_bound(void **state)
{
	(void)state;
	json_t *by_key = routes_of(DYN);
	struct router_table *t = router_table_build(by_key, 1, NULL, NULL, NULL);
	const struct router_route *rt = router_table_find(t, "m/sql");
	struct router_replica *r1 = rt->replicas[0], *r2 = rt->replicas[1], *r3 = rt->replicas[2];
	const char *loaded[] = {"sql"};
	router_replica_adapters_set(r1, loaded, 1);
	/* Least 0: the slack is 2; r1 at 2 is kept, at 3 not. */
	atomic_store(&r1->outstanding, 2);
	assert_ptr_equal(pick_adapter(rt, "sql", 1000, 7), r1);
	atomic_store(&r1->outstanding, 3);
	struct router_replica *p = pick_adapter(rt, "sql", 1000, 7);
	assert_true(p == r2 || p == r3);
	/* Least 20: the slack is a quarter, 5; r1 at 25 is kept, at 26 not. */
	atomic_store(&r2->queue_depth, 20);
	atomic_store(&r3->queue_depth, 20);
	atomic_store(&r1->outstanding, 25);
	assert_ptr_equal(pick_adapter(rt, "sql", 1000, 7), r1);
	atomic_store(&r1->outstanding, 26);
	assert_ptr_not_equal(pick_adapter(rt, "sql", 1000, 7), r1);
	/* Two have it: the less loaded of them. */
	router_replica_adapters_set(r3, loaded, 1);
	atomic_store(&r1->outstanding, 22);
	atomic_store(&r3->queue_depth, 21);
	assert_ptr_equal(pick_adapter(rt, "sql", 1000, 7), r3);
	/* An ejected replica is not picked for having the adapter. */
	router_replica_eject(r3, 1000);
	assert_ptr_equal(pick_adapter(rt, "sql", 1000, 7), r1);
	router_table_unref(t);
	json_decref(by_key);
}

static void test_an_adapter_sent_lately_counts_as_loaded_for_a_while(void **state)
{
	(void)state;
	json_t *by_key = routes_of(DYN);
	struct router_table *t = router_table_build(by_key, 1, NULL, NULL, NULL);
	const struct router_route *rt = router_table_find(t, "m/sql");
	struct router_replica *r3 = rt->replicas[2];
	uint64_t h = router_adapter_hash("sql");
	assert_false(router_replica_has_adapter(r3, h, 1000));
	router_replica_adapter_sent(r3, "sql", 1000);
	assert_true(router_replica_has_adapter(r3, h, 1000 + ROUTER_ADAPTER_SENT_MS - 1));
	assert_false(router_replica_has_adapter(r3, h, 1000 + ROUTER_ADAPTER_SENT_MS));
	for (uint64_t rnd = 0; rnd < 16; rnd++)
		assert_ptr_equal(pick_adapter(rt, "sql", 2000, rnd * 0x9E3779B97F4A7C15ull), r3);
	/* The memory is the last ROUTER_ADAPTERS_SENT adapters: older ones
	 * are forgotten. */
	for (int i = 0; i < ROUTER_ADAPTERS_SENT; i++) {
		char name[24];
		snprintf(name, sizeof(name), "other%d", i);
		router_replica_adapter_sent(r3, name, 1500);
	}
	assert_false(router_replica_has_adapter(r3, h, 2000));
	/* Sending one it remembers refreshes it rather than taking a slot. */
	router_replica_adapter_sent(r3, "other7", 1600);
	assert_true(router_replica_has_adapter(r3, router_adapter_hash("other0"), 2000));
	assert_true(router_adapter_hash("") != 0);
	router_table_unref(t);
	json_decref(by_key);
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
		cmocka_unit_test(test_a_full_kv_cache_weighs_like_a_queue),
		cmocka_unit_test(test_equal_replicas_share_the_picks),
		cmocka_unit_test(test_ejected_and_tried_replicas_are_skipped_unless_none_is_left),
		cmocka_unit_test(test_a_replica_back_from_ejection_gets_one_probe_at_a_time),
		cmocka_unit_test(test_large_sets_use_two_choices),
		cmocka_unit_test(test_a_session_sticks_to_one_replica_and_sessions_spread),
		cmocka_unit_test(test_a_new_replica_takes_only_its_share_of_sessions),
		cmocka_unit_test(test_a_sessions_replica_past_its_bounded_share_is_passed_over),
		cmocka_unit_test(test_the_prefix_memory_finds_the_longest_remembered_run),
		cmocka_unit_test(test_prefix_hashes_are_of_the_prompt_and_the_route),
		cmocka_unit_test(test_the_prefix_policy_follows_the_prefix_within_the_load_bound),
		cmocka_unit_test(test_round_robin_takes_each_in_turn),
		cmocka_unit_test(test_a_dynamic_adapter_goes_to_a_replica_that_has_it_loaded),
		cmocka_unit_test(test_the_adapter_preference_gives_way_past_the_load_bound),
		cmocka_unit_test(test_an_adapter_sent_lately_counts_as_loaded_for_a_while),
		cmocka_unit_test(test_keys_are_checked_by_hash_scope_and_expiry),
		cmocka_unit_test(test_the_config_file_is_read_and_flags_win),
		cmocka_unit_test(test_without_config_the_variable_names_the_file_and_config_wins),
		cmocka_unit_test(test_a_bad_config_file_names_file_line_column_never_the_value),
		cmocka_unit_test(test_the_config_needs_a_gateway_and_a_token),
		cmocka_unit_test(test_the_queue_settings_come_from_file_environment_and_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
