/* The registry of live adapter instances (adapter.h, "live instances"),
 * against the call-counting fake: one instance per pool and config, a new
 * one for a changed config, destroyed on the last put once it is no longer
 * the pool's, dropped with its pool, all of it from many threads at once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "adapters/adapter.h"
#include "adapters/fake/fake.h"

#define POOL_A "00000000-0000-0000-0000-0000000000a1"
#define POOL_B "00000000-0000-0000-0000-0000000000b2"

static int setup(void **state)
{
	struct nova_err err;
	(void)state;
	adapter_registry_reset();
	fake_reset();
	return adapter_register(&fake_adapter_ops, &err);
}

static int teardown(void **state)
{
	(void)state;
	adapters_shutdown();
	assert_int_equal(adapter_instance_count(), 0);
	adapter_registry_reset();
	return 0;
}

static void test_the_same_pool_and_config_share_one_instance(void **state)
{
	struct nova_err err;
	struct adapter *a = NULL, *b = NULL;
	(void)state;
	json_t *c1 = json_pack("{s:s, s:i}", "mode", "static", "nodes", 3);
	/* The same config with its keys in another order: the same version. */
	json_t *c2 = json_pack("{s:i, s:s}", "nodes", 3, "mode", "static");
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, c1, &err), 0);
	assert_int_equal(adapter_instance_get(&b, &fake_adapter_ops, POOL_A, c2, &err), 0);
	assert_ptr_equal(a, b);
	assert_string_equal(a->pool_id, POOL_A);
	assert_int_equal(fake_calls(POOL_A, FAKE_OP_CREATE), 1);
	assert_int_equal(adapter_instance_count(), 1);
	adapter_instance_put(a);
	adapter_instance_put(b);
	/* Nobody holds it, but it is still the pool's: kept for the next. */
	assert_int_equal(adapter_instance_count(), 1);
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, c1, &err), 0);
	assert_ptr_equal(a, b);
	assert_int_equal(fake_calls(POOL_A, FAKE_OP_CREATE), 1);
	adapter_instance_put(a);
	json_decref(c1);
	json_decref(c2);
}

static void test_another_pool_gets_its_own_instance(void **state)
{
	struct nova_err err;
	struct adapter *a = NULL, *b = NULL;
	(void)state;
	json_t *c = json_pack("{s:s}", "mode", "static");
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, c, &err), 0);
	assert_int_equal(adapter_instance_get(&b, &fake_adapter_ops, POOL_B, c, &err), 0);
	assert_ptr_not_equal(a, b);
	assert_string_equal(b->pool_id, POOL_B);
	assert_int_equal(adapter_instance_count(), 2);
	adapter_instance_put(a);
	adapter_instance_put(b);
	json_decref(c);
}

static void test_a_changed_config_makes_a_new_instance_and_the_old_goes_on_its_last_put(void **state)
{
	struct nova_err err;
	struct adapter *old = NULL, *now = NULL, *again = NULL;
	struct adapter_resources res;
	(void)state;
	json_t *c1 = json_pack("{s:s, s:i}", "mode", "static", "nodes", 2);
	json_t *c2 = json_pack("{s:s, s:i}", "mode", "static", "nodes", 5);
	assert_int_equal(adapter_instance_get(&old, &fake_adapter_ops, POOL_A, c1, &err), 0);
	assert_int_equal(adapter_instance_get(&now, &fake_adapter_ops, POOL_A, c2, &err), 0);
	assert_ptr_not_equal(old, now);
	assert_int_equal(fake_calls(POOL_A, FAKE_OP_CREATE), 2);
	/* The old one still serves its user, with its own config. */
	assert_int_equal(adapter_instance_count(), 2);
	assert_int_equal(adapter_discover_resources(&res, old, &err), 0);
	assert_int_equal(res.n_nodes, 2);
	adapter_resources_finish(&res);
	assert_int_equal(adapter_discover_resources(&res, now, &err), 0);
	assert_int_equal(res.n_nodes, 5);
	adapter_resources_finish(&res);
	adapter_instance_put(old); /* its last user: destroyed */
	assert_int_equal(adapter_instance_count(), 1);
	/* The pool's instance is the new config's. */
	assert_int_equal(adapter_instance_get(&again, &fake_adapter_ops, POOL_A, c2, &err), 0);
	assert_ptr_equal(again, now);
	adapter_instance_put(again);
	adapter_instance_put(now);
	assert_int_equal(adapter_instance_count(), 1);
	json_decref(c1);
	json_decref(c2);
}

static void test_a_dropped_pool_instance_goes_when_its_last_user_puts_it(void **state)
{
	struct nova_err err;
	struct adapter *a = NULL, *b = NULL, *c = NULL;
	(void)state;
	json_t *cfg = json_pack("{s:s}", "mode", "static");
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	assert_int_equal(adapter_instance_get(&b, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	adapter_forget(&fake_adapter_ops, POOL_A); /* the pool delete path */
	assert_int_equal(adapter_instance_count(), 1); /* two users still */
	adapter_instance_put(a);
	assert_int_equal(adapter_instance_count(), 1);
	adapter_instance_put(b);
	assert_int_equal(adapter_instance_count(), 0);
	/* Not handed out again: a later get makes a new one. */
	assert_int_equal(adapter_instance_get(&c, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	assert_int_equal(fake_calls(POOL_A, FAKE_OP_CREATE), 2);
	adapter_instance_put(c);
	/* Dropping an unused instance destroys it at once. */
	adapter_instance_drop(POOL_A);
	assert_int_equal(adapter_instance_count(), 0);
	json_decref(cfg);
}

static void test_a_refused_config_or_failed_create_leaves_no_instance(void **state)
{
	struct nova_err err;
	struct adapter *a = (struct adapter *)&err;
	(void)state;
	json_t *bad = json_pack("{s:s}", "fail_validate", "nodes");
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, bad, &err), NOVA_EINVAL);
	assert_null(a);
	assert_string_equal(err.field, "config.nodes");
	json_t *cfg = json_pack("{s:s}", "mode", "static");
	fake_inject(POOL_A, FAKE_OP_CREATE, FAKE_FAULT_TRANSIENT, 1, 0);
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, cfg, &err), NOVA_EAGAIN);
	assert_null(a);
	assert_int_equal(adapter_instance_count(), 0);
	/* The next caller tries again. */
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	assert_int_equal(adapter_instance_count(), 1);
	adapter_instance_put(a);
	json_decref(bad);
	json_decref(cfg);
}

static void test_shutdown_destroys_every_instance(void **state)
{
	struct nova_err err;
	struct adapter *a = NULL;
	(void)state;
	json_t *cfg = json_pack("{s:s}", "mode", "ephemeral");
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	adapter_instance_put(a);
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_B, cfg, &err), 0);
	adapter_instance_put(a);
	assert_int_equal(adapter_instance_count(), 2);
	adapters_shutdown();
	assert_int_equal(adapter_instance_count(), 0);
	json_decref(cfg);
}

static void test_an_instance_from_adapter_create_is_destroyed_by_put(void **state)
{
	struct nova_err err;
	struct adapter *a = NULL;
	(void)state;
	json_t *cfg = json_pack("{s:s}", "mode", "static");
	assert_int_equal(adapter_create(&a, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	assert_null(a->instance);
	assert_int_equal(adapter_instance_count(), 0);
	adapter_instance_put(a); /* under ASan: no leak */
	json_decref(cfg);
}

/* --- concurrency --------------------------------------------------------- */

struct smoke {
	json_t *cfg[2];
	const char *pools[2];
	unsigned seed;
	int failures;
};

static void *smoke_thread(void *arg)
{
	struct smoke *s = arg;
	struct nova_err err;
	unsigned r = s->seed;
	for (int i = 0; i < 400; i++) {
		struct adapter *ad = NULL;
		r = r * 1103515245u + 12345u;
		const char *pool = s->pools[(r >> 8) & 1];
		const json_t *cfg = s->cfg[(r >> 9) & 1];
		if (adapter_instance_get(&ad, &fake_adapter_ops, pool, cfg, &err) != 0 ||
		    strcmp(ad->pool_id, pool) != 0) {
			s->failures++;
			continue;
		}
		struct adapter_node_info info;
		struct adapter_node_ref ref = {.node_id = "no-such-node"};
		(void)adapter_node_status(&info, ad, &ref, &err); /* use it while others swap it */
		if ((r >> 10) % 17 == 0)
			adapter_instance_drop(pool);
		adapter_instance_put(ad);
	}
	return NULL;
}

static void test_many_threads_get_put_swap_and_drop_at_once(void **state)
{
	enum { N = 8 };
	pthread_t t[N];
	struct smoke s[N];
	(void)state;
	json_t *c1 = json_pack("{s:s, s:i}", "mode", "static", "nodes", 1);
	json_t *c2 = json_pack("{s:s, s:i}", "mode", "static", "nodes", 2);
	for (int i = 0; i < N; i++) {
		s[i] = (struct smoke){{c1, c2}, {POOL_A, POOL_B}, (unsigned)i * 7919u + 1, 0};
		assert_int_equal(pthread_create(&t[i], NULL, smoke_thread, &s[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(s[i].failures, 0);
	}
	/* Everything given back: at most the two pools' current instances. */
	assert_true(adapter_instance_count() <= 2);
	adapters_shutdown();
	assert_int_equal(adapter_instance_count(), 0);
	json_decref(c1);
	json_decref(c2);
}

/* A slow create holds up the callers of its pool, who then share what it
 * made, and no one else. */
struct slow_get {
	const char *pool;
	json_t *cfg;
	struct adapter *ad;
	int rc;
};

static void *slow_get_thread(void *arg)
{
	struct slow_get *g = arg;
	struct nova_err err;
	g->rc = adapter_instance_get(&g->ad, &fake_adapter_ops, g->pool, g->cfg, &err);
	return NULL;
}

static long long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000LL + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_a_slow_create_holds_up_only_its_own_pool(void **state)
{
	struct nova_err err;
	struct adapter *b = NULL;
	struct timespec t0;
	pthread_t t[2];
	(void)state;
	json_t *cfg = json_pack("{s:s}", "mode", "static");
	struct slow_get g[2] = {{POOL_A, cfg, NULL, -1}, {POOL_A, cfg, NULL, -1}};
	fake_inject(POOL_A, FAKE_OP_CREATE, FAKE_FAULT_SLOW, 1, 500);
	assert_int_equal(pthread_create(&t[0], NULL, slow_get_thread, &g[0]), 0);
	struct timespec pause = {0, 100 * 1000000L};
	nanosleep(&pause, NULL);
	assert_int_equal(pthread_create(&t[1], NULL, slow_get_thread, &g[1]), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(adapter_instance_get(&b, &fake_adapter_ops, POOL_B, cfg, &err), 0);
	assert_true(ms_since(&t0) < 300);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	assert_int_equal(g[0].rc, 0);
	assert_int_equal(g[1].rc, 0);
	assert_ptr_equal(g[0].ad, g[1].ad);
	assert_int_equal(fake_calls(POOL_A, FAKE_OP_CREATE), 1);
	adapter_instance_put(g[0].ad);
	adapter_instance_put(g[1].ad);
	adapter_instance_put(b);
	json_decref(cfg);
}

/* --- discovery cache ----------------------------------------------------- */

static void test_discovery_is_cached_per_instance(void **state)
{
	struct nova_err err;
	struct adapter *a = NULL;
	struct adapter_resources res;
	(void)state;
	json_t *cfg = json_pack("{s:s, s:i}", "mode", "static", "nodes", 3);
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	assert_int_equal(adapter_instance_resources(&res, a, 5000, &err), 0);
	assert_int_equal(res.n_nodes, 3);
	assert_non_null(res.nodes[0].labels);
	adapter_resources_finish(&res);
	/* A second fit check reads the cache: no second probe. */
	assert_int_equal(adapter_instance_resources(&res, a, 5000, &err), 0);
	assert_int_equal(res.n_nodes, 3);
	adapter_resources_finish(&res);
	assert_int_equal(fake_calls(POOL_A, FAKE_OP_DISCOVER), 1);
	adapter_instance_put(a);
	json_decref(cfg);
}

static void test_a_slow_first_discovery_answers_again_then_fills_the_cache(void **state)
{
	struct nova_err err;
	struct adapter *a = NULL;
	struct adapter_resources res;
	(void)state;
	json_t *cfg = json_pack("{s:s, s:i}", "mode", "static", "nodes", 2);
	fake_inject(POOL_A, FAKE_OP_DISCOVER, FAKE_FAULT_SLOW, 1, 400);
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	assert_int_equal(adapter_instance_resources(&res, a, 50, &err), NOVA_EAGAIN);
	assert_int_equal(res.n_nodes, 0);
	/* The refresh went on: the next caller, willing to wait, has it. */
	assert_int_equal(adapter_instance_resources(&res, a, 5000, &err), 0);
	assert_int_equal(res.n_nodes, 2);
	adapter_resources_finish(&res);
	assert_int_equal(fake_calls(POOL_A, FAKE_OP_DISCOVER), 1);
	adapter_instance_put(a);
	json_decref(cfg);
}

static void test_a_discovery_error_is_answered_from_the_cache_too(void **state)
{
	struct nova_err err;
	struct adapter *a = NULL;
	struct adapter_resources res;
	(void)state;
	json_t *cfg = json_pack("{s:s}", "mode", "static");
	fake_inject(POOL_A, FAKE_OP_DISCOVER, FAKE_FAULT_TRANSIENT, 1, 0);
	assert_int_equal(adapter_instance_get(&a, &fake_adapter_ops, POOL_A, cfg, &err), 0);
	assert_int_equal(adapter_instance_resources(&res, a, 5000, &err), NOVA_EAGAIN);
	assert_non_null(strstr(err.message, "injected transient failure"));
	adapter_instance_put(a);
	/* Dropped while nobody discovers: gone at once, cache and all. */
	adapter_instance_drop(POOL_A);
	assert_int_equal(adapter_instance_count(), 0);
	json_decref(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_the_same_pool_and_config_share_one_instance, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_another_pool_gets_its_own_instance, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_changed_config_makes_a_new_instance_and_the_old_goes_on_its_last_put, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_a_dropped_pool_instance_goes_when_its_last_user_puts_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_refused_config_or_failed_create_leaves_no_instance,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_destroys_every_instance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_instance_from_adapter_create_is_destroyed_by_put,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_threads_get_put_swap_and_drop_at_once, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_slow_create_holds_up_only_its_own_pool, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_discovery_is_cached_per_instance, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_slow_first_discovery_answers_again_then_fills_the_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_discovery_error_is_answered_from_the_cache_too,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
