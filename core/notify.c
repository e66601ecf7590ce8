#include "core/notify.h"

#include <time.h>

int notify_init(struct notify *n, struct nova_err *err)
{
	pthread_condattr_t ca;
	n->seq = 0;
	n->waiters = 0;
	if (pthread_mutex_init(&n->lock, NULL) != 0)
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot create a mutex");
	if (pthread_condattr_init(&ca) != 0)
		goto fail_lock;
	if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&n->cond, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		goto fail_lock;
	}
	pthread_condattr_destroy(&ca);
	return 0;
fail_lock:
	pthread_mutex_destroy(&n->lock);
	return nova_err_set(err, NOVA_EINTERNAL, "", "cannot create a condition variable");
}

void notify_finish(struct notify *n)
{
	if (!n)
		return;
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
}

void notify_signal(struct notify *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->seq++;
	if (n->waiters)
		pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

unsigned long long notify_seq(struct notify *n)
{
	pthread_mutex_lock(&n->lock);
	unsigned long long seq = n->seq;
	pthread_mutex_unlock(&n->lock);
	return seq;
}

long long notify_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void notify_deadline(struct timespec *out, clockid_t clock, long long ms)
{
	clock_gettime(clock, out);
	out->tv_sec += ms / 1000;
	out->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (out->tv_nsec >= 1000000000L) {
		out->tv_sec++;
		out->tv_nsec -= 1000000000L;
	}
}

bool notify_wait(struct notify *n, unsigned long long *seen, unsigned timeout_ms)
{
	struct timespec until;
	notify_deadline(&until, CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&n->lock);
	if (timeout_ms > 0 && n->seq == *seen) {
		n->waiters++;
		/* Spurious wake-ups go round; the deadline is absolute. */
		while (n->seq == *seen && pthread_cond_timedwait(&n->cond, &n->lock, &until) == 0)
			;
		n->waiters--;
	}
	bool signalled = n->seq != *seen;
	*seen = n->seq;
	pthread_mutex_unlock(&n->lock);
	return signalled;
}
