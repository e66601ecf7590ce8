/* nova-router and model versions (issue 18: rolling updates and canaries):
 * the table reads each endpoint's version and a route's split, the pick
 * chooses a version by the split (at random, or by the session key) and
 * falls back to the other when one has nothing left to try, the prefix
 * memory stays within a version, and the per-version statistics count
 * attempts in a 30 s window that outlives the replicas. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/prompt.h"
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

static struct router_table *table_of(const char *text, struct router_vstats *vs, size_t *skipped)
{
	json_t *by_key = routes_of(text);
	struct router_table *t = router_table_build(by_key, 1, NULL, vs, skipped);
	json_decref(by_key);
	assert_non_null(t);
	return t;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

/* Two replicas of version 1, two of version 2, split 80/20. */
#define CANARY(split)                                                                         \
	"[{\"model\":\"m\",\"adapter\":null,\"split\":" split ",\"endpoints\":["              \
	"{\"url\":\"http://127.0.0.1:1\",\"replica\":\"a1\",\"version\":\"1\"},"              \
	"{\"url\":\"http://127.0.0.1:2\",\"replica\":\"a2\",\"version\":\"1\"},"              \
	"{\"url\":\"http://127.0.0.1:3\",\"replica\":\"b1\",\"version\":\"2\"},"              \
	"{\"url\":\"http://127.0.0.1:4\",\"replica\":\"b2\",\"version\":\"2\"}]}]"

static const char *version_of(const struct router_replica *r)
{
	assert_non_null(r);
	return r->version;
}

static void test_the_table_reads_each_endpoints_version_and_the_split(void **state)
{
	(void)state;
	size_t skipped = 9;
	struct router_table *t = table_of(
		"[{\"model\":\"m\",\"adapter\":null,\"split\":{\"2\":20,\"1\":80,\"3\":0},\"endpoints\":["
		"{\"url\":\"http://127.0.0.1:3\",\"replica\":\"b1\",\"version\":\"2\"},"
		"{\"url\":\"http://127.0.0.1:1\",\"replica\":\"a1\",\"version\":\"1\"},"
		"{\"url\":\"http://127.0.0.1:5\",\"replica\":\"c1\"},"
		"{\"url\":\"http://127.0.0.1:6\",\"replica\":\"d1\",\"version\":\"not a version!\"},"
		"{\"url\":\"http://127.0.0.1:2\",\"replica\":\"a2\",\"version\":\"1\"}]},"
		"{\"model\":\"m\",\"adapter\":\"sql\",\"split\":{\"1\":50,\"2\":50},\"endpoints\":["
		"{\"url\":\"http://127.0.0.1:1\",\"replica\":\"a1\",\"version\":\"1\"},"
		"{\"url\":\"http://127.0.0.1:3\",\"replica\":\"b1\",\"version\":\"2\"}]},"
		"{\"model\":\"one\",\"adapter\":null,\"split\":{\"1\":80,\"2\":20},\"endpoints\":["
		"{\"url\":\"http://127.0.0.1:7\",\"replica\":\"o1\",\"version\":\"1\"}]},"
		"{\"model\":\"bad\",\"adapter\":null,\"split\":{\"1\":120},\"endpoints\":["
		"{\"url\":\"http://127.0.0.1:8\",\"replica\":\"x1\",\"version\":\"1\"},"
		"{\"url\":\"http://127.0.0.1:9\",\"replica\":\"x2\",\"version\":\"2\"}]},"
		"{\"model\":\"plain\",\"adapter\":null,\"endpoints\":["
		"{\"url\":\"http://127.0.0.1:10\",\"replica\":\"p1\",\"version\":\"1\"},"
		"{\"url\":\"http://127.0.0.1:11\",\"replica\":\"p2\",\"version\":\"2\"}]}]",
		NULL, &skipped);
	assert_int_equal(skipped, 1); /* the split of 120% */
	const struct router_route *m = router_table_find(t, "m");
	assert_int_equal(m->n, 5);
	assert_true(m->split);
	/* Sorted by name; "" for no version and for one that is not a name;
	 * "3" is named without endpoints, so not there. */
	assert_int_equal(m->n_versions, 3);
	assert_string_equal(m->versions[0].name, "");
	assert_int_equal(m->versions[0].percent, 0);
	assert_int_equal(m->versions[0].n, 2);
	assert_string_equal(m->versions[1].name, "1");
	assert_int_equal(m->versions[1].percent, 80);
	assert_int_equal(m->versions[1].n, 2);
	assert_string_equal(version_of(m->versions[1].replicas[0]), "1");
	assert_string_equal(m->versions[1].replicas[0]->id, "a1");
	assert_string_equal(m->versions[1].replicas[1]->id, "a2");
	assert_string_equal(m->versions[2].name, "2");
	assert_int_equal(m->versions[2].percent, 20);
	assert_string_equal(m->versions[2].replicas[0]->id, "b1");
	/* A LoRA adapter's route has its own split over the same objects. */
	const struct router_route *a = router_table_find(t, "m/sql");
	assert_true(a->split);
	assert_int_equal(a->n_versions, 2);
	assert_int_equal(a->versions[0].percent, 50);
	assert_ptr_equal(a->versions[0].replicas[0], m->versions[1].replicas[0]);
	/* One version among the endpoints: nothing to split. A bad split or
	 * none: the route as it always was. */
	assert_false(router_table_find(t, "one")->split);
	assert_false(router_table_find(t, "bad")->split);
	assert_int_equal(router_table_find(t, "bad")->n, 2);
	assert_false(router_table_find(t, "plain")->split);
	assert_int_equal(router_table_find(t, "plain")->n_versions, 0);
	router_table_unref(t);

	assert_true(router_version_valid("1"));
	assert_true(router_version_valid("v2.0-rc_1"));
	assert_false(router_version_valid(""));
	assert_false(router_version_valid(NULL));
	assert_false(router_version_valid("a/b"));
	char long_name[ROUTER_VERSION_MAX + 2];
	memset(long_name, 'v', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_false(router_version_valid(long_name));
	long_name[ROUTER_VERSION_MAX] = '\0';
	assert_true(router_version_valid(long_name));
}

static void test_a_replica_whose_version_changes_is_a_new_object(void **state)
{
	(void)state;
	json_t *by_key = routes_of(CANARY("{\"1\":80,\"2\":20}"));
	struct router_table *t1 = router_table_build(by_key, 1, NULL, NULL, NULL);
	json_decref(by_key);
	struct router_replica *a1 = router_table_find(t1, "m")->replicas[0];
	atomic_store(&a1->outstanding, 3);
	by_key = routes_of("[{\"model\":\"m\",\"adapter\":null,\"endpoints\":["
			   "{\"url\":\"http://127.0.0.1:1\",\"replica\":\"a1\",\"version\":\"2\"},"
			   "{\"url\":\"http://127.0.0.1:2\",\"replica\":\"a2\",\"version\":\"1\"}]}]");
	struct router_table *t2 = router_table_build(by_key, 2, t1, NULL, NULL);
	json_decref(by_key);
	const struct router_route *m = router_table_find(t2, "m");
	assert_ptr_not_equal(m->replicas[0], a1);
	assert_string_equal(m->replicas[0]->version, "2");
	assert_ptr_equal(m->replicas[1], router_table_find(t1, "m")->replicas[1]);
	router_table_unref(t1);
	router_table_unref(t2);
}

static void test_a_split_of_80_20_sends_a_fifth_of_the_picks_to_the_canary(void **state)
{
	(void)state;
	struct router_table *t = table_of(CANARY("{\"1\":80,\"2\":20}"), NULL, NULL);
	const struct router_route *m = router_table_find(t, "m");
	enum router_policy policies[] = {ROUTER_POLICY_LEAST_LOADED, ROUTER_POLICY_ROUND_ROBIN,
					 ROUTER_POLICY_SESSION, ROUTER_POLICY_PREFIX};
	for (size_t p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
		uint64_t s = 0x1234567 + p;
		int canary = 0, per[4] = {0};
		for (int i = 0; i < 10000; i++) {
			struct router_replica *r =
				router_pick(m, policies[p], NULL, NULL, 0, 1000, xorshift(&s));
			canary += !strcmp(version_of(r), "2");
			for (int k = 0; k < 4; k++)
				per[k] += r == m->replicas[k];
		}
		assert_in_range(canary, 1800, 2200); /* 20% +- 2 points */
		/* Within each version the policy spreads as usual. */
		assert_in_range(per[0], 3400, 4600);
		assert_in_range(per[2], 700, 1300);
	}
	router_table_unref(t);
}

static void test_a_session_keeps_its_version_and_sessions_spread_by_the_split(void **state)
{
	(void)state;
	/* Two routers' tables, built apart: the same answer in each. */
	struct router_table *t1 = table_of(CANARY("{\"1\":80,\"2\":20}"), NULL, NULL);
	struct router_table *t2 = table_of(CANARY("{\"2\":20,\"1\":80}"), NULL, NULL);
	const struct router_route *m1 = router_table_find(t1, "m"), *m2 = router_table_find(t2, "m");
	int canary = 0;
	char key[32];
	for (int i = 0; i < 4000; i++) {
		snprintf(key, sizeof(key), "session-%d", i);
		struct router_pick_hint hint = {.session = key};
		/* The hash of the key mod 100 against 80 | 20, in name order. */
		const char *want = prompt_hash(key, strlen(key)) % 100 < 80 ? "1" : "2";
		uint64_t s = (uint64_t)i * 7919 + 1;
		for (int k = 0; k < 4; k++) {
			enum router_policy pol = k == 0 ? ROUTER_POLICY_SESSION
					       : k == 1 ? ROUTER_POLICY_LEAST_LOADED
					       : k == 2 ? ROUTER_POLICY_ROUND_ROBIN
							: ROUTER_POLICY_PREFIX;
			assert_string_equal(version_of(router_pick(m1, pol, &hint, NULL, 0, 1000,
								   xorshift(&s))), want);
			assert_string_equal(version_of(router_pick(m2, pol, &hint, NULL, 0, 1000,
								   xorshift(&s))), want);
		}
		canary += !strcmp(want, "2");
	}
	assert_in_range(canary, 680, 920); /* 20% of 4000, give or take 3 points */
	router_table_unref(t1);
	router_table_unref(t2);
}

static void test_a_version_with_every_replica_tried_or_ejected_falls_back_to_the_other(void **state)
{
	(void)state;
	struct router_table *t = table_of(CANARY("{\"1\":0,\"2\":100}"), NULL, NULL);
	const struct router_route *m = router_table_find(t, "m");
	struct router_replica *a1 = m->replicas[0], *a2 = m->replicas[1], *b1 = m->replicas[2],
			      *b2 = m->replicas[3];
	struct router_pick_hint hint = {.session = "s"};
	/* The canary takes everything while it can. */
	for (uint64_t rnd = 0; rnd < 50; rnd++)
		assert_string_equal(version_of(router_pick(m, ROUTER_POLICY_LEAST_LOADED, &hint, NULL,
							   0, 1000, rnd * 0x9E3779B97F4A7C15ULL)), "2");
	/* A retry after both canaries failed goes to version 1 (at 0%: the
	 * only one left). */
	struct router_replica *tried[2] = {b1, b2};
	for (uint64_t rnd = 0; rnd < 50; rnd++) {
		struct router_replica *r = router_pick(m, ROUTER_POLICY_SESSION, &hint, tried, 2, 1000,
						       rnd * 0x9E3779B97F4A7C15ULL);
		assert_true(r == a1 || r == a2);
	}
	/* One canary tried, the other ejected: version 1, not the ejected
	 * canary (the panic rule only when no version has a replica to
	 * take it). */
	assert_true(router_replica_eject(b2, 1000));
	struct router_replica *r = router_pick(m, ROUTER_POLICY_LEAST_LOADED, NULL, tried, 1, 1000, 5);
	assert_true(r == a1 || r == a2);
	/* Both canaries ejected: version 1 serves fresh requests too. */
	assert_true(router_replica_eject(b1, 1000));
	for (uint64_t rnd = 0; rnd < 20; rnd++) {
		r = router_pick(m, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1000, rnd);
		assert_true(r == a1 || r == a2);
	}
	/* Everything ejected: the canary's share decides again (every
	 * replica ejected is as good as any). */
	assert_true(router_replica_eject(a1, 1000));
	assert_true(router_replica_eject(a2, 1000));
	assert_string_equal(version_of(router_pick(m, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0, 1000,
						   3)), "2");
	/* Every replica tried: nothing. */
	struct router_replica *all[4] = {a1, a2, b1, b2};
	assert_null(router_pick(m, ROUTER_POLICY_LEAST_LOADED, NULL, all, 4, 1000, 3));
	router_table_unref(t);
}

static void test_a_named_version_without_endpoints_and_unnamed_versions_get_nothing(void **state)
{
	(void)state;
	/* 2 is named, without endpoints: its 20% goes to 1. 9 is not named,
	 * nor are endpoints without a version: nothing, while 1 can serve. */
	struct router_table *t = table_of(
		"[{\"model\":\"m\",\"adapter\":null,\"split\":{\"1\":80,\"2\":20},\"endpoints\":["
		"{\"url\":\"http://127.0.0.1:1\",\"replica\":\"a1\",\"version\":\"1\"},"
		"{\"url\":\"http://127.0.0.1:3\",\"replica\":\"n1\",\"version\":\"9\"},"
		"{\"url\":\"http://127.0.0.1:4\",\"replica\":\"o1\"}]}]",
		NULL, NULL);
	const struct router_route *m = router_table_find(t, "m");
	assert_true(m->split);
	uint64_t s = 42;
	for (int i = 0; i < 1000; i++)
		assert_string_equal(version_of(router_pick(m, ROUTER_POLICY_LEAST_LOADED, NULL, NULL, 0,
							   1000, xorshift(&s))), "1");
	/* 1 tried: the unnamed ones share what is left, equally. */
	struct router_replica *tried[1] = {m->replicas[0]};
	int none = 0, nine = 0;
	for (int i = 0; i < 2000; i++) {
		const char *v = version_of(router_pick(m, ROUTER_POLICY_LEAST_LOADED, NULL, tried, 1,
						       1000, xorshift(&s)));
		none += !strcmp(v, "");
		nine += !strcmp(v, "9");
	}
	assert_int_equal(none + nine, 2000);
	assert_in_range(none, 800, 1200);
	router_table_unref(t);
}

static void test_the_prefix_memory_stays_within_a_version(void **state)
{
	(void)state;
	struct router_table *t = table_of(CANARY("{\"1\":50,\"2\":50}"), NULL, NULL);
	const struct router_route *m = router_table_find(t, "m");
	struct router_prefix_map *pm = router_prefix_map_create(4096);
	uint64_t blocks[6] = {11, 12, 13, 14, 15, 16};
	struct router_pick_hint hint = {.prefix = blocks, .n_prefix = 6, .prefixes = pm};
	struct router_replica *owner[2] = {NULL, NULL};
	uint64_t s = 99;
	int seen[2] = {0};
	/* Interleaved picks of one prompt: each version keeps sending it to
	 * the one replica of its own that served it first, though the other
	 * version's picks are remembered for the same prompt meanwhile. */
	for (int i = 0; i < 400; i++) {
		struct router_replica *r =
			router_pick(m, ROUTER_POLICY_PREFIX, &hint, NULL, 0, 1000, xorshift(&s));
		int v = !strcmp(version_of(r), "2");
		if (!owner[v])
			owner[v] = r;
		assert_ptr_equal(r, owner[v]);
		seen[v]++;
	}
	assert_true(seen[0] > 100 && seen[1] > 100);
	/* The route's own (unsalted) memory is not what a version uses. */
	uint64_t who = 0;
	assert_int_equal(router_prefix_lookup(pm, blocks, 6, &who), 0);
	router_prefix_map_destroy(pm);
	router_table_unref(t);
}

static void test_the_ttft_bucket_of_a_time_at_its_bounds(void **state)
{
	(void)state;
	static const struct {
		long long ms;
		size_t bucket;
	} cases[] = {
		{0, 0},      {10, 0},     {11, 1},     {25, 1},     {26, 2},      {50, 2},
		{100, 3},    {101, 4},    {250, 4},    {500, 5},    {1000, 6},    {2500, 7},
		{2501, 8},   {5000, 8},   {10000, 9},  {10001, 10}, {30000, 10},  {30001, 11},
		{1LL << 40, 11},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (router_ttft_bucket(cases[i].ms) != cases[i].bucket)
			fail_msg("%lld ms: bucket %zu, want %zu", cases[i].ms,
				 router_ttft_bucket(cases[i].ms), cases[i].bucket);
	}
	assert_int_equal(router_ttft_bounds_ms[ROUTER_TTFT_BUCKETS - 2], 30000);
}

/* The report's entry for model/version, or NULL. */
static json_t *entry_of(json_t *report, const char *model, const char *version)
{
	return json_object_get(json_object_get(report, model), version);
}

static long long count_of(json_t *report, const char *model, const char *version, const char *what)
{
	json_t *e = entry_of(report, model, version);
	assert_non_null(e);
	return json_integer_value(json_object_get(e, what));
}

static void test_the_window_counts_attempts_and_forgets_them_after_30_s(void **state)
{
	(void)state;
	struct router_vstats *vs = router_vstats_create(ROUTER_VSTATS_MAX);
	struct router_table *t = table_of(CANARY("{\"1\":80,\"2\":20}"), vs, NULL);
	const struct router_route *m = router_table_find(t, "m");
	/* Both replicas of a version count in one entry. */
	assert_ptr_equal(m->replicas[0]->vstat, m->replicas[1]->vstat);
	assert_ptr_not_equal(m->replicas[0]->vstat, m->replicas[2]->vstat);
	assert_null(router_vstats_report(vs, 1000)); /* nothing yet */
	router_vstat_record(m->replicas[0]->vstat, 1000, false, 40);   /* bucket 2 */
	router_vstat_record(m->replicas[1]->vstat, 4999, false, 10);   /* bucket 0 */
	router_vstat_record(m->replicas[1]->vstat, 5000, true, -1);    /* failed before answering */
	router_vstat_record(m->replicas[2]->vstat, 12000, true, 30001); /* a 200 broken midway */
	json_t *rep = router_vstats_report(vs, 12000);
	assert_non_null(rep);
	json_t *e = entry_of(rep, "m", "1");
	assert_int_equal(json_integer_value(json_object_get(e, "window_s")), 30);
	assert_int_equal(count_of(rep, "m", "1", "requests"), 3);
	assert_int_equal(count_of(rep, "m", "1", "errors"), 1);
	json_t *b = json_object_get(e, "ttft_buckets");
	assert_int_equal(json_array_size(b), 12);
	long long want[12] = {1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	for (size_t i = 0; i < 12; i++)
		assert_int_equal(json_integer_value(json_array_get(b, i)), want[i]);
	assert_int_equal(count_of(rep, "m", "2", "requests"), 1);
	assert_int_equal(count_of(rep, "m", "2", "errors"), 1);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(entry_of(rep, "m", "2"),
									  "ttft_buckets"), 11)), 1);
	json_decref(rep);
	/* Slots are 5 s: at 29.999 s the first slot (0..5 s) still counts; at
	 * 30 s it is out, the 5..10 s slot holds on until 35 s. */
	rep = router_vstats_report(vs, 29999);
	assert_int_equal(count_of(rep, "m", "1", "requests"), 3);
	json_decref(rep);
	rep = router_vstats_report(vs, 30000);
	assert_int_equal(count_of(rep, "m", "1", "requests"), 1);
	assert_int_equal(count_of(rep, "m", "1", "errors"), 1);
	json_decref(rep);
	rep = router_vstats_report(vs, 35000);
	assert_null(entry_of(rep, "m", "1")); /* only versions with requests */
	assert_int_equal(count_of(rep, "m", "2", "requests"), 1);
	json_decref(rep);
	assert_null(router_vstats_report(vs, 40000));
	/* A slot of an older epoch is reset before it takes an attempt: 40 s
	 * is the slot 10 s was in. */
	router_vstat_record(m->replicas[2]->vstat, 40000, false, 5);
	rep = router_vstats_report(vs, 40000);
	assert_int_equal(count_of(rep, "m", "2", "requests"), 1);
	assert_int_equal(count_of(rep, "m", "2", "errors"), 0);
	json_decref(rep);
	router_table_unref(t);
	router_vstats_destroy(vs);
}

struct totals {
	char seen[512];
};

static void totals_line(void *ctx, const char *model, const char *version,
			unsigned long long requests, unsigned long long errors)
{
	struct totals *t = ctx;
	size_t n = strlen(t->seen);
	snprintf(t->seen + n, sizeof(t->seen) - n, "%s/%s=%llu/%llu;", model, version, requests,
		 errors);
}

static void test_a_versions_counts_outlive_its_replicas_leaving_the_table(void **state)
{
	(void)state;
	struct router_vstats *vs = router_vstats_create(2);
	/* The adapter's route shares the model's replicas: counted under the
	 * model's name. Endpoints without a version are not counted. */
	struct router_table *t1 = table_of(
		"[{\"model\":\"m\",\"adapter\":null,\"endpoints\":["
		"{\"url\":\"http://127.0.0.1:1\",\"replica\":\"a1\",\"version\":\"1\"},"
		"{\"url\":\"http://127.0.0.1:5\",\"replica\":\"o1\"}]},"
		"{\"model\":\"m\",\"adapter\":\"sql\",\"endpoints\":["
		"{\"url\":\"http://127.0.0.1:1\",\"replica\":\"a1\",\"version\":\"1\"}]}]",
		vs, NULL);
	const struct router_route *ad = router_table_find(t1, "m/sql");
	assert_null(router_table_find(t1, "m")->replicas[1]->vstat);
	router_vstat_record(router_table_find(t1, "m")->replicas[1]->vstat, 1000, true, -1);
	router_vstat_record(ad->replicas[0]->vstat, 1000, false, 100);
	/* The rollout replaced a1 (version 1) with b1 (version 2). */
	json_t *by_key = routes_of("[{\"model\":\"m\",\"adapter\":null,\"endpoints\":["
				   "{\"url\":\"http://127.0.0.1:3\",\"replica\":\"b1\",\"version\":\"2\"}]}]");
	struct router_table *t2 = router_table_build(by_key, 2, t1, vs, NULL);
	json_decref(by_key);
	router_table_unref(t1);
	router_vstat_record(router_table_find(t2, "m")->replicas[0]->vstat, 2000, false, 100);
	json_t *rep = router_vstats_report(vs, 2000);
	assert_int_equal(json_object_size(rep), 1);
	assert_int_equal(count_of(rep, "m", "1", "requests"), 1);
	assert_int_equal(count_of(rep, "m", "2", "requests"), 1);
	json_decref(rep);
	struct totals tot = {""};
	router_vstats_totals(vs, totals_line, &tot);
	assert_string_equal(tot.seen, "m/1=1/0;m/2=1/0;");
	/* The registry holds two: a third version gets none while 1's window
	 * holds; once it is empty (and no replica points to it), its entry
	 * is taken. */
	by_key = routes_of("[{\"model\":\"m\",\"adapter\":null,\"endpoints\":["
			   "{\"url\":\"http://127.0.0.1:3\",\"replica\":\"b1\",\"version\":\"2\"},"
			   "{\"url\":\"http://127.0.0.1:4\",\"replica\":\"c1\",\"version\":\"3\"}]}]");
	struct router_table *t3 = router_table_build(by_key, 3, t2, vs, NULL);
	assert_null(router_table_find(t3, "m")->replicas[1]->vstat);
	router_table_unref(t3);
	rep = router_vstats_report(vs, 60000);
	assert_null(rep);
	t3 = router_table_build(by_key, 3, t2, vs, NULL);
	json_decref(by_key);
	assert_non_null(router_table_find(t3, "m")->replicas[1]->vstat);
	router_vstat_record(router_table_find(t3, "m")->replicas[1]->vstat, 60000, false, 1);
	rep = router_vstats_report(vs, 60000);
	assert_null(entry_of(rep, "m", "1"));
	assert_int_equal(count_of(rep, "m", "3", "requests"), 1);
	json_decref(rep);
	tot.seen[0] = '\0';
	router_vstats_totals(vs, totals_line, &tot);
	assert_non_null(strstr(tot.seen, "m/3=1/0;"));
	assert_null(strstr(tot.seen, "m/1="));
	router_table_unref(t2);
	router_table_unref(t3);
	router_vstats_destroy(vs);
}

struct hammer {
	struct router_vstat *e;
	int n;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	for (int i = 0; i < h->n; i++)
		router_vstat_record(h->e, 7000, i % 10 == 0, i % 2 ? 20 : -1);
	return NULL;
}

static void test_the_event_loops_count_into_one_entry_together(void **state)
{
	(void)state;
	struct router_vstats *vs = router_vstats_create(16);
	struct router_table *t = table_of(CANARY("{\"1\":80,\"2\":20}"), vs, NULL);
	struct hammer h = {router_table_find(t, "m")->replicas[0]->vstat, 20000};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	json_t *rep = router_vstats_report(vs, 7000);
	assert_int_equal(count_of(rep, "m", "1", "requests"), 80000);
	assert_int_equal(count_of(rep, "m", "1", "errors"), 8000);
	assert_int_equal(json_integer_value(json_array_get(
				 json_object_get(entry_of(rep, "m", "1"), "ttft_buckets"), 1)),
			 40000);
	json_decref(rep);
	router_table_unref(t);
	router_vstats_destroy(vs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_table_reads_each_endpoints_version_and_the_split),
		cmocka_unit_test(test_a_replica_whose_version_changes_is_a_new_object),
		cmocka_unit_test(test_a_split_of_80_20_sends_a_fifth_of_the_picks_to_the_canary),
		cmocka_unit_test(test_a_session_keeps_its_version_and_sessions_spread_by_the_split),
		cmocka_unit_test(test_a_version_with_every_replica_tried_or_ejected_falls_back_to_the_other),
		cmocka_unit_test(test_a_named_version_without_endpoints_and_unnamed_versions_get_nothing),
		cmocka_unit_test(test_the_prefix_memory_stays_within_a_version),
		cmocka_unit_test(test_the_ttft_bucket_of_a_time_at_its_bounds),
		cmocka_unit_test(test_the_window_counts_attempts_and_forgets_them_after_30_s),
		cmocka_unit_test(test_a_versions_counts_outlive_its_replicas_leaving_the_table),
		cmocka_unit_test(test_the_event_loops_count_into_one_entry_together),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
