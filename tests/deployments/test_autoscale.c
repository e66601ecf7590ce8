/* The autoscaling policy and its decision (deployments/autoscale.h), as
 * pure functions: no database, no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "deployments/autoscale.h"

static int parse(struct autoscale_policy *p, const char *text, struct nova_err *err)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	nova_err_clear(err);
	int rc = autoscale_policy_parse(p, j, 1000, err);
	json_decref(j);
	return rc;
}

static void refused(const char *text, const char *field)
{
	struct autoscale_policy p;
	struct nova_err err;
	assert_int_equal(parse(&p, text, &err), NOVA_EINVAL);
	assert_string_equal(err.field, field);
}

static void test_policy_defaults_and_bad_input(void **state)
{
	struct autoscale_policy p;
	struct nova_err err;
	(void)state;
	assert_int_equal(parse(&p, "{\"max_replicas\": 8, \"target_queue_depth\": 4}", &err), 0);
	assert_int_equal(p.min_replicas, 1);
	assert_int_equal(p.max_replicas, 8);
	assert_int_equal(p.scale_down_window_s, 300);
	assert_int_equal(p.idle_s, 0);
	assert_true(p.target_queue_depth == 4);
	json_t *j = autoscale_policy_json(&p);
	assert_int_equal(json_integer_value(json_object_get(j, "min_replicas")), 1);
	assert_null(json_object_get(j, "target_ttft_p95_ms"));
	json_decref(j);

	refused("{\"min_replicas\": 5, \"max_replicas\": 2, \"target_queue_depth\": 1}",
		"autoscale.min_replicas");
	refused("{\"max_replicas\": 2, \"target_queue\": 1}", "autoscale.target_queue");
	refused("{\"max_replicas\": 2, \"target_queue_depth\": -1}", "autoscale.target_queue_depth");
	refused("{\"max_replicas\": 2, \"target_ttft_p95_ms\": 0}", "autoscale.target_ttft_p95_ms");
	refused("{\"max_replicas\": 2, \"target_tokens_per_second\": \"10\"}",
		"autoscale.target_tokens_per_second");
	refused("{\"min_replicas\": -1, \"max_replicas\": 2, \"target_queue_depth\": 1}",
		"autoscale.min_replicas");
	refused("{\"max_replicas\": 2000, \"target_queue_depth\": 1}", "autoscale.max_replicas");
	refused("{\"target_queue_depth\": 1}", "autoscale.max_replicas");
	refused("{\"max_replicas\": 2}", "autoscale");
	refused("{\"max_replicas\": 2, \"target_queue_depth\": 1, \"scale_down_window_s\": -5}",
		"autoscale.scale_down_window_s");
	refused("{\"max_replicas\": 2, \"target_queue_depth\": 1, \"idle_s\": 60}", "autoscale.idle_s");
	refused("[1]", "autoscale");
}

static struct autoscale_policy policy(long long min, long long max, double queue)
{
	struct autoscale_policy p = {.min_replicas = min, .max_replicas = max,
				     .target_queue_depth = queue,
				     .scale_down_window_s = 300};
	return p;
}

static struct autoscale_signals signals(long long current, double waiting, double running)
{
	struct autoscale_signals s = {.current = current, .reporting = current, .waiting = waiting,
				      .running = running, .inflight_tokens = -1,
				      .ttft_p95_ms = -1, .tokens_per_second = -1, .quota_max = -1};
	return s;
}

static void test_up_at_once_with_the_reason(void **state)
{
	struct autoscale_policy p = policy(1, 8, 4);
	struct autoscale_memory m = {0};
	struct autoscale_decision d;
	struct autoscale_signals s = signals(2, 19, 8);
	(void)state;
	autoscale_decide(&d, &m, &p, &s, 1000);
	assert_int_equal(d.desired, 5); /* ceil(19 / 4) */
	assert_string_equal(d.reason, "scaled 2 -> 5: queue depth 9.5 per replica > target 4");
	/* Capped by max, then by the pool's quota (never below the current). */
	s = signals(2, 400, 8);
	autoscale_decide(&d, &m, &p, &s, 2000);
	assert_int_equal(d.desired, 8);
	s.quota_max = 3;
	autoscale_decide(&d, &m, &p, &s, 3000);
	assert_int_equal(d.desired, 3);
	assert_non_null(strstr(d.reason, "capped at 3 by the pool's quota (asked 8)"));
}

static void test_down_only_after_the_window(void **state)
{
	struct autoscale_policy p = policy(1, 8, 4);
	struct autoscale_memory m = {0};
	struct autoscale_decision d;
	struct autoscale_signals s = signals(5, 19, 20);
	long long t = 1000000;
	(void)state;
	autoscale_decide(&d, &m, &p, &s, t);
	assert_int_equal(d.desired, 5);
	/* The load ends: nothing falls within the window... */
	s = signals(5, 0, 2);
	for (long long at = t + 1000; at < t + 300000; at += 1000) {
		autoscale_decide(&d, &m, &p, &s, at);
		assert_int_equal(d.desired, 5);
		assert_int_equal(d.recommended, 1);
	}
	/* ...and once the busy second left it, the count falls to what the
	 * window needed. */
	autoscale_decide(&d, &m, &p, &s, t + 301000);
	assert_int_equal(d.desired, 1);
	assert_non_null(strstr(d.reason, "scaled 5 -> 1: the most the last 300 s needed"));
	/* Within the tolerance the count stays: 4.3 per replica on 1 < 10%. */
	s = signals(1, 4.3, 1);
	autoscale_decide(&d, &m, &p, &s, t + 302000);
	assert_int_equal(d.desired, 1);
}

static void test_window_keeps_the_largest_need(void **state)
{
	struct autoscale_policy p = policy(1, 10, 1);
	struct autoscale_memory m = {0};
	struct autoscale_decision d;
	struct autoscale_signals s = signals(6, 6, 6);
	(void)state;
	autoscale_decide(&d, &m, &p, &s, 0);
	s = signals(6, 3, 3); /* 3 at 100 s */
	autoscale_decide(&d, &m, &p, &s, 100000);
	s = signals(6, 2, 2); /* 2 from 200 s */
	autoscale_decide(&d, &m, &p, &s, 200000);
	/* At 350 s the window (50..350 s) still saw the 6 of 0..100 s. */
	autoscale_decide(&d, &m, &p, &s, 350000);
	assert_int_equal(d.desired, 6);
	/* At 401 s it saw 3 and 2: 3 is kept. */
	autoscale_decide(&d, &m, &p, &s, 401000);
	assert_int_equal(d.desired, 3);
	/* At 501 s only 2 is left in it. */
	s = signals(3, 2, 2);
	autoscale_decide(&d, &m, &p, &s, 501000);
	assert_int_equal(d.desired, 2);
}

static void test_zero_only_when_idle_and_back_on_demand(void **state)
{
	struct autoscale_policy p = policy(0, 4, 2);
	struct autoscale_memory m = {0};
	struct autoscale_decision d;
	struct autoscale_signals s = signals(1, 0, 1);
	(void)state;
	/* min 0 without idle_s: a quiet deployment keeps one replica. */
	autoscale_decide(&d, &m, &p, &s, 1000);
	s = signals(1, 0, 0);
	autoscale_decide(&d, &m, &p, &s, 400000);
	assert_int_equal(d.desired, 1);
	/* With idle_s 60: zero 60 s after the last request, not before. */
	p.idle_s = 60;
	memset(&m, 0, sizeof(m));
	s = signals(1, 0, 1);
	autoscale_decide(&d, &m, &p, &s, 1000);
	s = signals(1, 0, 0);
	autoscale_decide(&d, &m, &p, &s, 60000);
	assert_int_equal(d.desired, 1);
	autoscale_decide(&d, &m, &p, &s, 61000);
	assert_int_equal(d.desired, 0);
	assert_string_equal(d.reason, "scaled 1 -> 0: no request for 60 s (idle_s 60)");
	/* Requests in flight at a router count as activity too. */
	memset(&m, 0, sizeof(m));
	s = signals(1, 0, 0);
	s.router_in_flight = 1;
	autoscale_decide(&d, &m, &p, &s, 1000);
	s.router_in_flight = 0;
	autoscale_decide(&d, &m, &p, &s, 30000);
	assert_int_equal(d.desired, 1);
	/* At zero, a waiting request brings one at once. */
	s = signals(0, 1, 0);
	s.reporting = 0;
	autoscale_decide(&d, &m, &p, &s, 200000);
	assert_int_equal(d.desired, 1);
	assert_string_equal(d.reason, "scaled 0 -> 1: 1 request waiting");
	/* At zero and quiet, it stays there. */
	s = signals(0, 0, 0);
	autoscale_decide(&d, &m, &p, &s, 500000);
	assert_int_equal(d.desired, 0);
}

static void test_other_targets(void **state)
{
	struct autoscale_policy p = {.min_replicas = 1, .max_replicas = 20,
				     .target_inflight_tokens = 1000, .target_ttft_p95_ms = 500,
				     .target_tokens_per_second = 100, .scale_down_window_s = 300};
	struct autoscale_memory m = {0};
	struct autoscale_decision d;
	struct autoscale_signals s = signals(2, 0, 4);
	(void)state;
	/* TTFT twice the target on the 2 replicas reporting: 4; tokens ask 3. */
	s.ttft_p95_ms = 1000;
	s.inflight_tokens = 2500;
	s.tokens_per_second = 150;
	autoscale_decide(&d, &m, &p, &s, 1000);
	assert_int_equal(d.desired, 4);
	assert_string_equal(d.reason, "scaled 2 -> 4: TTFT p95 1000 ms > target 500");
	/* While the new replicas start (still 2 reporting), the next tick
	 * does not multiply again. */
	s.current = 4;
	autoscale_decide(&d, &m, &p, &s, 2000);
	assert_int_equal(d.desired, 4);
	/* Tokens per second the largest: 3000 / 100. */
	s = signals(4, 0, 4);
	s.tokens_per_second = 3000;
	autoscale_decide(&d, &m, &p, &s, 3000);
	assert_int_equal(d.desired, 20);
	/* No replica reports: a target without its signal asks nothing. */
	memset(&m, 0, sizeof(m));
	s = signals(3, 0, 1);
	autoscale_decide(&d, &m, &p, &s, 4000);
	assert_int_equal(d.desired, 3);
}

static void test_a_new_policy_holds_its_count_for_a_window(void **state)
{
	struct autoscale_policy p = policy(1, 8, 4);
	struct autoscale_memory m = {0};
	struct autoscale_decision d;
	struct autoscale_signals s = signals(3, 0, 1);
	(void)state;
	/* Clamped to 3 by a PATCH, quiet: not lowered at the first tick. */
	autoscale_decide(&d, &m, &p, &s, 5000);
	assert_int_equal(d.desired, 3);
	assert_int_equal(d.recommended, 1);
	autoscale_decide(&d, &m, &p, &s, 304000);
	assert_int_equal(d.desired, 3);
	autoscale_decide(&d, &m, &p, &s, 305000);
	assert_int_equal(d.desired, 1);
}

static void test_memory_round_trip_and_bound(void **state)
{
	struct autoscale_policy p = policy(1, 100, 1);
	struct autoscale_memory m = {0}, back;
	struct autoscale_decision d;
	(void)state;
	/* A new recommendation every second for longer than the history holds:
	 * the oldest merge, never below what they needed. */
	for (int i = 0; i < 200; i++) {
		struct autoscale_signals s = signals(50, (i % 2) ? 90 : 10, 1);
		autoscale_decide(&d, &m, &p, &s, 1000LL * i);
	}
	assert_true(m.n <= AUTOSCALE_HISTORY_MAX);
	long long most = 0;
	for (size_t i = 0; i < m.n; i++)
		most = m.recs[i] > most ? m.recs[i] : most;
	assert_int_equal(most, 90);
	json_t *j = autoscale_memory_json(&m);
	autoscale_memory_from_json(&back, j);
	json_decref(j);
	assert_int_equal(back.n, m.n);
	assert_int_equal(back.active_ms, m.active_ms);
	assert_memory_equal(back.recs, m.recs, m.n * sizeof(m.recs[0]));
	/* What does not parse is an empty memory. */
	j = json_loads("{\"at\": [1, 2], \"recs\": [3]}", 0, NULL);
	autoscale_memory_from_json(&back, j);
	json_decref(j);
	assert_int_equal(back.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_defaults_and_bad_input),
		cmocka_unit_test(test_up_at_once_with_the_reason),
		cmocka_unit_test(test_down_only_after_the_window),
		cmocka_unit_test(test_window_keeps_the_largest_need),
		cmocka_unit_test(test_zero_only_when_idle_and_back_on_demand),
		cmocka_unit_test(test_other_targets),
		cmocka_unit_test(test_a_new_policy_holds_its_count_for_a_window),
		cmocka_unit_test(test_memory_round_trip_and_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
