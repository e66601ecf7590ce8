/* The process-wide pool of SSH sessions (contract in ssh_pool.h).
 *
 * One list of slots under one mutex: a slot is a live session (idle or in
 * use) or a reservation for one being opened, so the caps count both.
 * Sessions are opened, checked and closed outside the lock: a connect can
 * take seconds, and no caller should wait on another host's handshake. The
 * lists are short (at most SSH_POOL_TOTAL), so a linear walk is the index. */
#include "adapters/ssh/ssh_pool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

struct ssh_slot {
	struct ssh_slot *next;
	struct ssh_session *s; /* NULL while being opened */
	bool in_use;
	long long idle_since;
	char key[PATH_MAX * 3 + 700];
};

static pthread_mutex_t sp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sp_cond;
static pthread_once_t sp_once = PTHREAD_ONCE_INIT;
static struct ssh_slot *sp_slots;
static unsigned sp_per_host = SSH_POOL_PER_HOST, sp_total = SSH_POOL_TOTAL;
static unsigned sp_idle_ms = SSH_POOL_IDLE_MS;
static unsigned long long sp_opened, sp_reused, sp_dropped;

static void sp_init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&sp_cond, &a);
	pthread_condattr_destroy(&a);
}

static long long sp_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sp_key(char *out, size_t len, const struct ssh_target *t)
{
	const struct ssh_target *j = t->jump;
	snprintf(out, len, "%s@%s:%u|%s|%s|%d|%s@%s:%u|%s", t->user ? t->user : "", t->address,
		 t->port ? t->port : 22, t->key_path ? t->key_path : "(agent)",
		 t->known_hosts ? t->known_hosts : "", (int)t->policy, j && j->user ? j->user : "",
		 j ? j->address : "", j ? (j->port ? j->port : 22) : 0u,
		 j ? (j->key_path ? j->key_path : "(agent)") : "");
}

static void sp_unlink(struct ssh_slot *slot)
{
	for (struct ssh_slot **p = &sp_slots; *p; p = &(*p)->next)
		if (*p == slot) {
			*p = slot->next;
			return;
		}
}

/* Under the lock: unlink idle sessions past the idle time onto *dead. */
static void sp_expire(struct ssh_slot **dead, long long now)
{
	struct ssh_slot **p = &sp_slots;
	while (*p) {
		struct ssh_slot *x = *p;
		if (!x->in_use && now - x->idle_since >= sp_idle_ms) {
			*p = x->next;
			x->next = *dead;
			*dead = x;
		} else {
			p = &x->next;
		}
	}
}

static void sp_close_all(struct ssh_slot *dead)
{
	while (dead) {
		struct ssh_slot *n = dead->next;
		ssh_session_close(dead->s);
		free(dead);
		dead = n;
	}
}

int ssh_pool_get(struct ssh_session **out, bool *reused, const struct ssh_target *t,
		 struct nova_err *err)
{
	char key[sizeof(((struct ssh_slot *)0)->key)];
	unsigned timeout = t->connect_timeout_ms ? t->connect_timeout_ms : 10000;
	long long deadline = sp_now_ms() + timeout;
	*out = NULL;
	if (reused)
		*reused = false;
	pthread_once(&sp_once, sp_init);
	sp_key(key, sizeof(key), t);
	for (;;) {
		struct ssh_slot *dead = NULL, *mine = NULL, *evict = NULL;
		unsigned n_key = 0, n_all = 0;
		bool fresh = false;
		pthread_mutex_lock(&sp_lock);
		for (;;) {
			long long now = sp_now_ms();
			sp_expire(&dead, now);
			n_key = n_all = 0;
			evict = NULL;
			for (struct ssh_slot *x = sp_slots; x; x = x->next) {
				n_all++;
				if (strcmp(x->key, key) == 0) {
					n_key++;
					if (!x->in_use && !mine)
						mine = x;
				} else if (!x->in_use && (!evict || x->idle_since < evict->idle_since)) {
					evict = x;
				}
			}
			if (mine) {
				mine->in_use = true;
				break;
			}
			if (n_key < sp_per_host && (n_all < sp_total || evict)) {
				if (n_all >= sp_total) {
					sp_unlink(evict);
					evict->next = dead;
					dead = evict;
				}
				fresh = true;
				break;
			}
			if (now >= deadline)
				break;
			struct timespec ts = {.tv_sec = deadline / 1000,
					      .tv_nsec = (deadline % 1000) * 1000000L};
			pthread_cond_timedwait(&sp_cond, &sp_lock, &ts);
		}
		if (fresh && (mine = calloc(1, sizeof(*mine)))) {
			snprintf(mine->key, sizeof(mine->key), "%s", key);
			mine->in_use = true;
			mine->next = sp_slots;
			sp_slots = mine;
		}
		pthread_mutex_unlock(&sp_lock);
		sp_close_all(dead);
		if (!mine && fresh)
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		if (!mine)
			return nova_err_set(err, NOVA_EAGAIN, "",
					    "host %s:%u: all %u connections to it stayed busy for %u ms",
					    t->address, t->port ? t->port : 22, sp_per_host, timeout);
		if (!fresh) {
			/* An idle one: closed by the peer meanwhile (its sshd killed,
			 * restarted, or timing out idle clients) it is dropped and
			 * the loop looks again. */
			if (ssh_session_alive(mine->s)) {
				pthread_mutex_lock(&sp_lock);
				sp_reused++;
				pthread_mutex_unlock(&sp_lock);
				*out = mine->s;
				if (reused)
					*reused = true;
				return 0;
			}
			nova_log(NOVA_LOG_DEBUG, "ssh", "host %s: pooled connection was closed; dropped",
				 ssh_session_label(mine->s));
			pthread_mutex_lock(&sp_lock);
			sp_dropped++;
			sp_unlink(mine);
			pthread_cond_broadcast(&sp_cond);
			pthread_mutex_unlock(&sp_lock);
			ssh_session_close(mine->s);
			free(mine);
			continue;
		}
		int rc = ssh_session_open(&mine->s, t, err);
		pthread_mutex_lock(&sp_lock);
		if (rc) {
			sp_unlink(mine);
			free(mine);
		} else {
			sp_opened++;
			*out = mine->s;
		}
		pthread_cond_broadcast(&sp_cond);
		pthread_mutex_unlock(&sp_lock);
		return rc;
	}
}

void ssh_pool_put(struct ssh_session *s)
{
	struct ssh_slot *slot = NULL, *dead = NULL;
	if (!s)
		return;
	pthread_once(&sp_once, sp_init);
	pthread_mutex_lock(&sp_lock);
	for (struct ssh_slot *x = sp_slots; x && !slot; x = x->next)
		if (x->s == s)
			slot = x;
	if (slot && ssh_session_usable(s)) {
		slot->in_use = false;
		slot->idle_since = sp_now_ms();
		s = NULL;
	} else if (slot) {
		sp_dropped++;
		sp_unlink(slot);
		free(slot);
	}
	sp_expire(&dead, sp_now_ms());
	pthread_cond_broadcast(&sp_cond);
	pthread_mutex_unlock(&sp_lock);
	ssh_session_close(s); /* broken, or never the pool's */
	sp_close_all(dead);
}

void ssh_pool_drain(void)
{
	struct ssh_slot *dead = NULL;
	pthread_once(&sp_once, sp_init);
	pthread_mutex_lock(&sp_lock);
	struct ssh_slot **p = &sp_slots;
	while (*p) {
		struct ssh_slot *x = *p;
		if (!x->in_use) {
			*p = x->next;
			x->next = dead;
			dead = x;
		} else {
			p = &x->next;
		}
	}
	pthread_cond_broadcast(&sp_cond);
	pthread_mutex_unlock(&sp_lock);
	sp_close_all(dead);
}

void ssh_pool_stats(struct ssh_pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&sp_lock);
	out->opened = sp_opened;
	out->reused = sp_reused;
	out->dropped = sp_dropped;
	for (struct ssh_slot *x = sp_slots; x; x = x->next) {
		if (x->in_use)
			out->in_use++;
		else
			out->idle++;
	}
	pthread_mutex_unlock(&sp_lock);
}

void ssh_pool_set_limits(unsigned per_host, unsigned total, unsigned idle_ms)
{
	pthread_mutex_lock(&sp_lock);
	if (per_host)
		sp_per_host = per_host;
	if (total)
		sp_total = total;
	if (idle_ms)
		sp_idle_ms = idle_ms;
	pthread_mutex_unlock(&sp_lock);
}
