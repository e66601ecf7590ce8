/* A wake-up between threads: one side signals, the threads waiting on it
 * wake at once; a thread with nothing signalled sleeps its whole period.
 *
 * Each waiter keeps a cursor (the count of signals it has seen, from
 * notify_seq): a wait returns at once when a signal came after the cursor,
 * even one that came before the wait began (signalled while the thread was
 * busy), and every waiter sees every signal. Signals coalesce: however many
 * came since the cursor, the next wait returns once.
 *
 * A condition variable on CLOCK_MONOTONIC and a 64-bit count under its
 * mutex. Rejected: an eventfd, whose read consumes the count, so several
 * threads waiting on one (the worker's threads) would need an fd each or a
 * count beside it anyway, and a signal would be a write(2) even with no one
 * waiting; what it offers, a wake-up poll(2) can wait on beside sockets, no
 * waiter needs (a later LISTEN/NOTIFY listener would turn each notification
 * into notify_signal, so the waiters stay as they are). Rejected too: the
 * polled global counters this replaces (each thread looked every 10 to 50
 * ms, hundreds of wake-ups a second in an idle novad: docs/PERFORMANCE.md,
 * idle wake-ups), and CLOCK_REALTIME deadlines, which a clock step would
 * stretch or cut. */
#ifndef NOVA_CORE_NOTIFY_H
#define NOVA_CORE_NOTIFY_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "core/err.h"

struct notify {
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* waits on CLOCK_MONOTONIC */
	unsigned long long seq;  /* signals so far, under lock */
	unsigned waiters;        /* threads in notify_wait, under lock */
};

/* On caller storage. NOVA_EINTERNAL when the system has no room for the
 * mutex or the condition variable. */
int notify_init(struct notify *n, struct nova_err *err);
/* No thread may be waiting. Accepts NULL. */
void notify_finish(struct notify *n);

/* Wake every thread waiting on n, and make the next wait of every other
 * one return at once. Any thread; cheap with no one waiting (no system
 * call). Accepts NULL (no one to tell). */
void notify_signal(struct notify *n);

/* The signals so far: a new waiter's cursor. */
unsigned long long notify_seq(struct notify *n);

/* Wait until a signal after *seen, or timeout_ms (0: only look). Sets
 * *seen to the signals so far; true when one came after the cursor, false
 * when the time ran out. */
bool notify_wait(struct notify *n, unsigned long long *seen, unsigned timeout_ms);

/* CLOCK_MONOTONIC in ms, the clock the waits are timed on (for a thread
 * that waits towards a deadline of its own across signals). */
long long notify_now_ms(void);

/* The time ms from now on clock, as pthread_cond_timedwait takes it: the
 * deadline of a wait on a condition variable timed on that clock
 * (CLOCK_MONOTONIC for the notifiers and most others). */
void notify_deadline(struct timespec *out, clockid_t clock, long long ms);

#endif
