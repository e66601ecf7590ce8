/* Heartbeat timing (sidecar/sidecar_int.h): the wait after a beat is
 * spread uniformly over a tenth of the interval either way and differs
 * between processes, and early beats are held to one per
 * SIDECAR_EARLY_BEAT_GAP_MS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sidecar/sidecar_int.h"

#define DRAWS 100000

static void test_beat_delay_stays_within_a_tenth_of_the_interval_and_spreads(void **state)
{
	static const unsigned intervals[] = {100, 2000, 20000, 600000};
	uint64_t rng;
	(void)state;
	sidecar_rand_seed(&rng);
	for (size_t i = 0; i < sizeof(intervals) / sizeof(intervals[0]); i++) {
		unsigned iv = intervals[i], lo = UINT_MAX, hi = 0;
		unsigned buckets[10] = {0};
		double sum = 0;
		for (int d = 0; d < DRAWS; d++) {
			unsigned w = sidecar_beat_delay(iv, iv, sidecar_rand_next(&rng));
			assert_true(w >= iv - iv / 10);
			assert_true(w <= iv + iv / 10);
			lo = w < lo ? w : lo;
			hi = w > hi ? w : hi;
			sum += w;
			buckets[(w - (iv - iv / 10)) * 10 / (2 * (iv / 10) + 1)]++;
		}
		/* Reaches both ends (within a hundredth of the spread), is
		 * centred on the interval, and every tenth of the range gets
		 * its share (about 10,000 draws; a uniform draw is within 5 %
		 * of that at 5 standard deviations, so luck does not fail it). */
		assert_true(lo <= iv - iv / 10 + iv / 500);
		assert_true(hi >= iv + iv / 10 - iv / 500);
		assert_true(sum / DRAWS > iv * 0.995 && sum / DRAWS < iv * 1.005);
		unsigned span = 2 * (iv / 10) + 1, values[10] = {0};
		for (unsigned v = 0; v < span; v++)
			values[v * 10 / span]++;
		for (int b = 0; b < 10; b++) {
			double want = (double)DRAWS * values[b] / span;
			if (buckets[b] < want * 0.95 || buckets[b] > want * 1.05)
				fail_msg("interval %u: tenth %d of the range drawn %u times of %d (want %.0f)",
					 iv, b, buckets[b], DRAWS, want);
		}
	}
}

static void test_beat_delay_keeps_the_failing_path_base(void **state)
{
	(void)state;
	/* One interval, then two, each within a tenth of one interval. */
	assert_int_equal(sidecar_beat_delay(4000, 2000, 0), 3800);
	assert_int_equal(sidecar_beat_delay(4000, 2000, 400), 4200);
	assert_int_equal(sidecar_beat_delay(4000, 2000, 401), 3800);
	assert_int_equal(sidecar_beat_delay(2000, 2000, UINT64_MAX), 1800 + (unsigned)(UINT64_MAX % 401));
}

static void test_two_processes_draw_different_jitter(void **state)
{
	uint64_t a, b;
	(void)state;
	/* Two seeds, as two sidecars started in the same instant get: their
	 * first ten waits are not the same sequence (equal by chance with a
	 * probability of 4001^-10). */
	sidecar_rand_seed(&a);
	sidecar_rand_seed(&b);
	assert_true(a != b);
	int same = 0;
	for (int i = 0; i < 10; i++)
		same += sidecar_beat_delay(20000, 20000, sidecar_rand_next(&a)) ==
			sidecar_beat_delay(20000, 20000, sidecar_rand_next(&b));
	assert_true(same < 10);
}

static void test_early_beat_goes_now_when_none_went_lately(void **state)
{
	(void)state;
	/* The next beat 20 s away, no early beat before: now. */
	assert_true(sidecar_beat_early_at(120000, 100000, LLONG_MIN / 2) == 100000);
	/* The last early beat 5 s ago: now too. */
	assert_true(sidecar_beat_early_at(120000, 100000, 95000) == 100000);
}

static void test_early_beats_come_at_most_once_per_gap(void **state)
{
	(void)state;
	/* An early beat 300 ms ago: the next waits for the rest of the gap. */
	assert_true(sidecar_beat_early_at(120000, 100000, 99700) == 99700 + SIDECAR_EARLY_BEAT_GAP_MS);
	/* Events in a row (a crash loop): each asks at its own time and all
	 * get the same beat, SIDECAR_EARLY_BEAT_GAP_MS after the last. */
	for (long long now = 99800; now < 100700; now += 50)
		assert_true(sidecar_beat_early_at(120000, now, 99700) == 100700);
	/* A regular beat due sooner than the gap ends takes the news. */
	assert_true(sidecar_beat_early_at(100200, 100000, 99700) == 100200);
	assert_true(sidecar_beat_early_at(99900, 100000, 99700) == 99900);
}

/* What the sidecar's loop does with it: engine events at every 10 ms tick
 * of a minute (a node of engines dying and coming back all the time), the
 * regular interval 20 s. At most one early beat per gap goes. */
static void test_a_crash_loop_beats_at_most_once_a_second(void **state)
{
	long long next = 20000, last_early = LLONG_MIN / 2, sent_early = 0, sent = 0;
	long long prev_early = LLONG_MIN / 2;
	bool early = false;
	(void)state;
	for (long long now = 0; now < 60000; now += 10) {
		long long at = sidecar_beat_early_at(next, now, last_early);
		if (at < next) {
			next = at;
			early = true;
		}
		if (now >= next) {
			sent++;
			if (early) {
				assert_true(now - prev_early >= SIDECAR_EARLY_BEAT_GAP_MS);
				prev_early = last_early = now;
				sent_early++;
				early = false;
			}
			next = now + 20000;
		}
	}
	assert_true(sent_early >= 59 && sent_early <= 60);
	assert_true(sent == sent_early);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_beat_delay_stays_within_a_tenth_of_the_interval_and_spreads),
		cmocka_unit_test(test_beat_delay_keeps_the_failing_path_base),
		cmocka_unit_test(test_two_processes_draw_different_jitter),
		cmocka_unit_test(test_early_beat_goes_now_when_none_went_lately),
		cmocka_unit_test(test_early_beats_come_at_most_once_per_gap),
		cmocka_unit_test(test_a_crash_loop_beats_at_most_once_a_second),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
