/* nova-router internals shared by its files. Not for other folders. */
#ifndef NOVA_ROUTER_ROUTER_INT_H
#define NOVA_ROUTER_ROUTER_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "router/router.h"

struct rt_loop; /* one event loop (proxy.c) */

/* Counters for /metrics, shared by the loops. */
struct rt_stats {
	atomic_ullong requests;        /* answered, any status */
	atomic_ullong status_2xx, status_4xx, status_5xx;
	atomic_ullong upstream_failures; /* an attempt that failed before answering */
	atomic_ullong retries;
	atomic_ullong ejections;
	atomic_ullong cancelled;       /* upstream requests cut because the client left */
	atomic_llong in_flight;
	atomic_ullong watch_reconnects;
	atomic_ullong keys_polls_failed;
	atomic_ullong resyncs;         /* watch restarted from a snapshot after a mismatch */
	atomic_llong waiting;          /* requests waiting for a replica, every model */
	atomic_ullong demand_reports, demand_reports_failed;
};

/* Per-model figures for /metrics: one entry per route key that took a
 * request, never removed (models come and go rarely; at most
 * RT_MODELS_MAX entries, later ones counted in the global figures only).
 * Updated under one mutex twice per request (start, end): uncontended
 * next to the request's own work. Rejected: per-loop copies summed at
 * scrape time, which would save the lock at the cost of a model table per
 * loop to keep in step. */
#define RT_MODELS_MAX 4096
#define RT_HIST_BUCKETS 13
extern const double rt_hist_bounds[RT_HIST_BUCKETS];

struct rt_hist {
	unsigned long long b[RT_HIST_BUCKETS + 1]; /* the last: +Inf */
	double sum;
	unsigned long long count;
};

struct rt_model_stats {
	char key[256];
	unsigned long long by_class[6]; /* 0: no status sent; 1..5: 1xx..5xx */
	long long in_flight;
	struct rt_hist duration, first_byte;
	/* The wait for a replica (proxy.c's queue): waiting now, and how
	 * waits ended other than with a replica. */
	long long waiting;
	unsigned long long queue_timeouts, queue_rejected, queue_abandoned;
	unsigned long long prompt_tokens, completion_tokens;
	bool demand_sent;   /* the last demand report had it non-zero (control.c) */
};

struct rt_metrics {
	pthread_mutex_t lock;
	struct rt_model_stats *m;
	size_t n, cap;
};

/* The entry of key (created), as an index + 1; 0 when the table is full. */
size_t rt_metrics_begin(struct rt_metrics *mx, const char *key);
/* A request of entry idx (0: none) ended: its status (0: none sent), its
 * duration and time to the first byte from the replica (-1: none), ms. */
void rt_metrics_end(struct rt_metrics *mx, size_t idx, int status, long long duration_ms,
		    long long first_byte_ms);

/* The wait for a replica. Enter: one more waiting for key, unless max wait
 * already (then the refusal is counted, and the 429 answered by the
 * caller): 0, or -1 when full (or the model table is). *idx: the entry + 1.
 * Leave: no longer waiting, and why. */
enum rt_wait_end { RT_WAIT_STARTED, RT_WAIT_TIMED_OUT, RT_WAIT_ABANDONED, RT_WAIT_ENDED };
int rt_metrics_wait_enter(size_t *idx, struct rt_metrics *mx, const char *key, unsigned max);
void rt_metrics_wait_leave(struct rt_metrics *mx, size_t idx, enum rt_wait_end why, int status);
/* Tokens an answer of entry idx carried (router_usage_tokens). */
void rt_metrics_tokens(struct rt_metrics *mx, size_t idx, long long prompt, long long completion);

struct router {
	struct router_config cfg;
	/* The current table and keys: swapped by the control threads, taken
	 * by reference by the loops (table.c's opening comment). */
	pthread_mutex_t lock;
	struct router_table *table;   /* NULL until the first snapshot */
	struct router_keys *keys;     /* NULL until the first poll */
	long long table_at_ms;        /* last event or snapshot from the watch */
	long long keys_at_ms;         /* last successful keys poll */
	atomic_bool watch_connected;
	struct rt_stats stats;
	struct rt_metrics metrics;
	struct router_prefix_map *prefixes; /* the prefix policy's memory, else NULL */
	struct router_vstats *vstats; /* per (model, version) statistics */
	/* The last demand report novad took carried "versions" (the demand
	 * thread's own: one more report goes when the window has emptied). */
	bool versions_sent;

	/* Bumped with each table installed: a loop with requests waiting for
	 * a replica looks at the new table when it moves (proxy.c). */
	atomic_llong table_gen;
	/* This router instance, as demand reports name it: host:port:pid. */
	char id[160];
	/* Set when a request starts waiting where none did: the demand report
	 * goes at once rather than at the end of its period (control.c). */
	atomic_bool demand_now;

	struct rt_loop **loops;
	unsigned n_loops;
	uint16_t port;
	int listen_fd;

	pthread_t watch_thread, poll_thread, demand_thread;
	bool demand_started;
	bool control_started;
	atomic_int stop;              /* the control threads' cancel flag */
	/* The watch stream's own cancel: set by the stop, and by the poll
	 * when novad's table and ours have differed for a while (resync). */
	atomic_int watch_cancel;
	atomic_bool watch_resync;
	unsigned mismatches;          /* the poll's, in a row */
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
};

long long rt_now_ms(void);

/* vstats.c, for table.c: the entry of (model, version), with a reference
 * taken for a replica object (NULL: not a version name, a model name too
 * long, the registry full or absent); and that reference dropped. */
struct router_vstat *rt_vstat_acquire(struct router_vstats *s, const char *model,
				      const char *version);
void rt_vstat_release(struct router_vstat *e);

/* References to the current table and keys (NULL when none yet); the
 * caller unrefs. */
struct router_table *rt_table_get(struct router *r);
struct router_keys *rt_keys_get(struct router *r);
/* Install a new one (taken); the old one is unref'd. */
void rt_table_set(struct router *r, struct router_table *t);
void rt_keys_set(struct router *r, struct router_keys *k);

/* control.c: the route watch and the keys and load polls. */
int rt_control_start(struct router *r, struct nova_err *err);
void rt_control_stop(struct router *r);

/* proxy.c: the event loops. */
int rt_loops_start(struct router *r, struct nova_err *err);
void rt_loops_stop(struct router *r);
/* A new table is in: wake the loops that have requests waiting for a
 * replica (their wakefd), so they start at once. */
void rt_loops_table_changed(struct router *r);
/* control.c: wake the control threads before their period ends (a demand
 * to report now). */
void rt_control_poke(struct router *r);

#endif
