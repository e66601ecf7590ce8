/* core/notify: a signal before the wait is not lost, the timeout is kept,
 * signals coalesce, every waiter wakes, and signals from other threads
 * wake a waiter at once. Times are bounded loosely (a shared machine): a
 * wake-up "at once" is well under the wait's timeout, never a close race. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/notify.h"

#define LONG_WAIT_MS 20000u /* a wait that only a signal ends, in these tests */

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void test_a_signal_before_the_wait_returns_at_once(void **state)
{
	struct notify n;
	struct nova_err err;
	(void)state;
	assert_int_equal(notify_init(&n, &err), 0);
	unsigned long long seen = notify_seq(&n);
	notify_signal(&n); /* while the waiter was busy */
	long long t0 = notify_now_ms();
	assert_true(notify_wait(&n, &seen, LONG_WAIT_MS));
	assert_true(notify_now_ms() - t0 < 1000);
	assert_int_equal(seen, notify_seq(&n));
	notify_finish(&n);
}

static void test_the_timeout_is_kept_without_a_signal(void **state)
{
	struct notify n;
	struct nova_err err;
	(void)state;
	assert_int_equal(notify_init(&n, &err), 0);
	unsigned long long seen = notify_seq(&n);
	long long t0 = notify_now_ms();
	assert_false(notify_wait(&n, &seen, 150));
	long long took = notify_now_ms() - t0;
	assert_true(took >= 150);
	assert_true(took < 5000);
	notify_finish(&n);
}

static void test_a_zero_timeout_only_looks(void **state)
{
	struct notify n;
	struct nova_err err;
	(void)state;
	assert_int_equal(notify_init(&n, &err), 0);
	unsigned long long seen = notify_seq(&n);
	assert_false(notify_wait(&n, &seen, 0));
	notify_signal(&n);
	assert_true(notify_wait(&n, &seen, 0));
	assert_false(notify_wait(&n, &seen, 0));
	notify_finish(&n);
}

static void test_signals_coalesce_into_one_wake_up(void **state)
{
	struct notify n;
	struct nova_err err;
	(void)state;
	assert_int_equal(notify_init(&n, &err), 0);
	unsigned long long seen = notify_seq(&n);
	for (int i = 0; i < 5; i++)
		notify_signal(&n);
	assert_true(notify_wait(&n, &seen, LONG_WAIT_MS));
	/* The five were one: the next wait runs its whole time. */
	long long t0 = notify_now_ms();
	assert_false(notify_wait(&n, &seen, 100));
	assert_true(notify_now_ms() - t0 >= 100);
	notify_finish(&n);
}

static void test_each_waiter_has_its_own_cursor(void **state)
{
	struct notify n;
	struct nova_err err;
	(void)state;
	assert_int_equal(notify_init(&n, &err), 0);
	unsigned long long a = notify_seq(&n), b = notify_seq(&n);
	notify_signal(&n);
	/* One waiter taking the signal does not take it from the other. */
	assert_true(notify_wait(&n, &a, 0));
	assert_true(notify_wait(&n, &b, LONG_WAIT_MS));
	assert_false(notify_wait(&n, &a, 0));
	notify_finish(&n);
}

struct waiter {
	struct notify *n;
	unsigned long long seen;
	bool woke;
	long long took_ms;
	pthread_t tid;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	long long t0 = notify_now_ms();
	w->woke = notify_wait(w->n, &w->seen, LONG_WAIT_MS);
	w->took_ms = notify_now_ms() - t0;
	return NULL;
}

static unsigned waiting(struct notify *n)
{
	pthread_mutex_lock(&n->lock);
	unsigned w = n->waiters;
	pthread_mutex_unlock(&n->lock);
	return w;
}

static void test_one_signal_wakes_every_waiting_thread(void **state)
{
	enum { N = 4 };
	struct notify n;
	struct nova_err err;
	struct waiter w[N];
	(void)state;
	assert_int_equal(notify_init(&n, &err), 0);
	for (int i = 0; i < N; i++) {
		w[i] = (struct waiter){.n = &n, .seen = notify_seq(&n)};
		assert_int_equal(pthread_create(&w[i].tid, NULL, waiter_main, &w[i]), 0);
	}
	/* All of them asleep in the wait, then one signal. */
	for (int i = 0; i < 2000 && waiting(&n) < N; i++)
		nap_ms(5);
	assert_int_equal(waiting(&n), N);
	notify_signal(&n);
	for (int i = 0; i < N; i++) {
		pthread_join(w[i].tid, NULL);
		assert_true(w[i].woke);
		assert_true(w[i].took_ms < LONG_WAIT_MS / 2);
	}
	assert_int_equal(waiting(&n), 0);
	notify_finish(&n);
}

struct producer {
	struct notify *n;
	atomic_int produced;
	int count;
	long delay_ms;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	for (int i = 0; i < p->count; i++) {
		if (p->delay_ms)
			nap_ms(p->delay_ms);
		atomic_fetch_add(&p->produced, 1);
		notify_signal(p->n);
	}
	return NULL;
}

static void test_a_signal_from_another_thread_wakes_the_waiter_at_once(void **state)
{
	struct notify n;
	struct nova_err err;
	struct producer p = {.n = &n, .count = 1, .delay_ms = 100};
	pthread_t tid;
	(void)state;
	assert_int_equal(notify_init(&n, &err), 0);
	unsigned long long seen = notify_seq(&n);
	long long t0 = notify_now_ms();
	assert_int_equal(pthread_create(&tid, NULL, producer_main, &p), 0);
	assert_true(notify_wait(&n, &seen, LONG_WAIT_MS));
	assert_true(notify_now_ms() - t0 < LONG_WAIT_MS / 2);
	assert_int_equal(atomic_load(&p.produced), 1);
	pthread_join(tid, NULL);
	notify_finish(&n);
}

/* The pattern of every thread of novad: look at the work, then wait. A
 * producer racing it never leaves it asleep with work done and unseen. */
static void test_no_signal_is_lost_between_looking_and_waiting(void **state)
{
	struct notify n;
	struct nova_err err;
	struct producer p = {.n = &n, .count = 20000};
	pthread_t tid;
	(void)state;
	assert_int_equal(notify_init(&n, &err), 0);
	unsigned long long seen = notify_seq(&n);
	assert_int_equal(pthread_create(&tid, NULL, producer_main, &p), 0);
	int consumed = 0, timeouts = 0;
	while (consumed < p.count) {
		int now = atomic_load(&p.produced);
		if (now > consumed) {
			consumed = now;
			continue;
		}
		if (!notify_wait(&n, &seen, 5000))
			timeouts++;
		assert_int_equal(timeouts, 0);
	}
	pthread_join(tid, NULL);
	assert_int_equal(consumed, p.count);
	notify_finish(&n);
}

static void test_null_is_accepted_where_documented(void **state)
{
	(void)state;
	notify_signal(NULL);
	notify_finish(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_signal_before_the_wait_returns_at_once),
		cmocka_unit_test(test_the_timeout_is_kept_without_a_signal),
		cmocka_unit_test(test_a_zero_timeout_only_looks),
		cmocka_unit_test(test_signals_coalesce_into_one_wake_up),
		cmocka_unit_test(test_each_waiter_has_its_own_cursor),
		cmocka_unit_test(test_one_signal_wakes_every_waiting_thread),
		cmocka_unit_test(test_a_signal_from_another_thread_wakes_the_waiter_at_once),
		cmocka_unit_test(test_no_signal_is_lost_between_looking_and_waiting),
		cmocka_unit_test(test_null_is_accepted_where_documented),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
