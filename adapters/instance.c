/* Live adapter instances, one per pool and configuration (adapter.h,
 * "live instances").
 *
 * A list under one mutex: a novad holds a few dozen pools, and each get is
 * a walk of that list next to a provider call that costs a round trip at
 * least, so a hash table would buy nothing measurable. The mutex is never
 * held across a provider call: a create runs with a placeholder in the list
 * (ad NULL) that other callers of the same pool wait on (the condition
 * variable), so a pool whose kubeconfig file hangs for the files timeout
 * holds up that pool's callers, not every pool's. Destroys run outside the
 * mutex too (a kubernetes instance joins its informer thread).
 *
 * References: the list holds one for the current instance of a pool, each
 * user one more. Replacing (new config, expired) or dropping (pool deleted)
 * gives the list's back; the last put destroys. Rejected: destroying a
 * replaced instance at once, under callers still using it (a worker
 * mid-provision on the old config would use freed memory).
 *
 * Discovery is cached per instance (adapter_instance_resources) and
 * refreshed by a detached thread holding a reference, so a deploy
 * request's fit check reads memory instead of probing every ssh host on
 * an HTTP thread. Rejected: a refresher thread per instance on a timer,
 * which would probe every pool every period whether anyone asks or not
 * (the worker discovers for itself on its passes); refreshing on demand
 * probes only pools that are deployed to. */
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter.h"
#include "adapters/adapter_int.h"
#include "core/err.h"
#include "core/notify.h"
#include "core/secret.h"

struct adapter_instance {
	struct adapter_instance *next;
	const struct adapter_ops *ops;
	struct adapter *ad; /* NULL while its create runs */
	char pool_id[ADAPTER_ID_LEN];
	unsigned char version[32]; /* SHA-256 of the canonical config */
	unsigned refs;
	bool current; /* handed out for its pool */
	time_t made, used; /* CLOCK_MONOTONIC seconds */
	/* Discovery cache, under ai_lock. */
	struct adapter_resources disc;
	int disc_rc;             /* its outcome */
	struct nova_err disc_err;
	long long disc_at_ms;    /* CLOCK_MONOTONIC; 0: none yet */
	bool disc_running;       /* a refresh thread holds a reference */
};

static pthread_mutex_t ai_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ai_cond = PTHREAD_COND_INITIALIZER;
static struct adapter_instance *ai_list;

static time_t ai_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Caller holds ai_lock. */
static void ai_unlink(struct adapter_instance *e)
{
	struct adapter_instance **pp = &ai_list;
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	assert(*pp == e);
	*pp = e->next;
	e->next = NULL;
}

static long long ai_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void ai_destroy_all(struct adapter_instance *dead)
{
	while (dead) {
		struct adapter_instance *next = dead->next;
		adapter_resources_finish(&dead->disc);
		adapter_destroy(dead->ad);
		free(dead);
		dead = next;
	}
}

/* The list gives its reference back; an unused one moves to *dead.
 * Caller holds ai_lock; e is current and made (ad set). */
static void ai_retire(struct adapter_instance *e, struct adapter_instance **dead)
{
	assert(e->current && e->refs > 0);
	e->current = false;
	if (--e->refs == 0 && e->ad) {
		ai_unlink(e);
		e->next = *dead;
		*dead = e;
	}
}

/* Current instances nobody used for a TTL go. Caller holds ai_lock. */
static void ai_sweep(time_t now, struct adapter_instance **dead)
{
	struct adapter_instance *e = ai_list, *next;
	for (; e; e = next) {
		next = e->next;
		if (e->current && e->ad && e->refs == 1 && now - e->used >= ADAPTER_INSTANCE_TTL_S)
			ai_retire(e, dead);
	}
}

static int ai_version(unsigned char out[32], const json_t *config, struct nova_err *err)
{
	char *text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (!text)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	secret_sha256(out, text, strlen(text));
	free(text);
	return 0;
}

int adapter_instance_get(struct adapter **out, const struct adapter_ops *ops, const char *pool_id,
			 const json_t *config, struct nova_err *err)
{
	struct adapter_instance *e, *mine = NULL, *dead = NULL;
	unsigned char version[32];
	int rc;
	*out = NULL;
	assert(ops && pool_id);
	if (strlen(pool_id) >= ADAPTER_ID_LEN)
		return nova_err_set(err, NOVA_EINVAL, "pool", "bad pool id");
	if ((rc = ai_version(version, config, err)))
		return rc;
	pthread_mutex_lock(&ai_lock);
	for (;;) {
		time_t now = ai_now();
		ai_sweep(now, &dead);
		for (e = ai_list; e && !(e->current && !strcmp(e->pool_id, pool_id)); e = e->next)
			;
		if (e && !e->ad) {
			/* Being made by another caller: its outcome decides. */
			pthread_cond_wait(&ai_cond, &ai_lock);
			continue;
		}
		if (e && e->ops == ops && !memcmp(e->version, version, sizeof(version)) &&
		    now - e->made < ADAPTER_INSTANCE_TTL_S) {
			e->refs++;
			e->used = now;
			*out = e->ad;
			break;
		}
		if (e)
			ai_retire(e, &dead); /* config changed, or expired */
		if (!(mine = calloc(1, sizeof(*mine)))) {
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
			break;
		}
		mine->ops = ops;
		memcpy(mine->version, version, sizeof(version));
		snprintf(mine->pool_id, sizeof(mine->pool_id), "%s", pool_id);
		mine->refs = 2; /* the list's and the caller's */
		mine->current = true;
		mine->made = mine->used = now;
		mine->next = ai_list;
		ai_list = mine;
		break;
	}
	pthread_mutex_unlock(&ai_lock);
	ai_destroy_all(dead);
	if (!mine)
		return rc;

	struct adapter *ad = NULL;
	rc = adapter_create(&ad, ops, pool_id, config, err);
	pthread_mutex_lock(&ai_lock);
	if (rc) {
		ai_unlink(mine);
		free(mine);
	} else {
		ad->instance = mine;
		mine->ad = ad;
		if (!mine->current)
			mine->refs--; /* dropped while made: the caller's alone now */
		*out = ad;
	}
	pthread_cond_broadcast(&ai_cond);
	pthread_mutex_unlock(&ai_lock);
	return rc;
}

void adapter_instance_put(struct adapter *ad)
{
	struct adapter_instance *e;
	bool last;
	if (!ad)
		return;
	if (!(e = ad->instance)) {
		adapter_destroy(ad);
		return;
	}
	pthread_mutex_lock(&ai_lock);
	assert(e->refs > 0);
	e->used = ai_now();
	if ((last = --e->refs == 0))
		ai_unlink(e);
	pthread_mutex_unlock(&ai_lock);
	if (last)
		ai_destroy_all(e);
}

void adapter_instance_drop(const char *pool_id)
{
	struct adapter_instance *e, *next, *dead = NULL;
	pthread_mutex_lock(&ai_lock);
	for (e = ai_list; e; e = next) {
		next = e->next;
		if (!e->current || strcmp(e->pool_id, pool_id))
			continue;
		if (e->ad) {
			ai_retire(e, &dead);
		} else {
			/* Being made: its maker gives the list's reference back
			 * when it is done (adapter_instance_get). */
			e->current = false;
		}
	}
	pthread_mutex_unlock(&ai_lock);
	ai_destroy_all(dead);
}

static void *ai_disc_thread(void *arg)
{
	struct adapter *ad = arg;
	struct adapter_instance *e = ad->instance;
	struct adapter_resources res;
	struct nova_err err;
	nova_err_clear(&err);
	int rc = adapter_discover_resources(&res, ad, &err);
	pthread_mutex_lock(&ai_lock);
	adapter_resources_finish(&e->disc);
	e->disc = res; /* empty on failure */
	e->disc_rc = rc;
	e->disc_err = err;
	e->disc_at_ms = ai_now_ms();
	e->disc_running = false;
	/* Its reference goes back in the same hold of the lock, so that once
	 * no refresh runs none holds an instance (adapter_instances_clear). */
	bool last = --e->refs == 0;
	if (last)
		ai_unlink(e);
	pthread_cond_broadcast(&ai_cond);
	pthread_mutex_unlock(&ai_lock);
	if (last)
		ai_destroy_all(e);
	return NULL;
}

/* Start a refresh unless one runs. Caller holds ai_lock. */
static void ai_disc_refresh(struct adapter_instance *e)
{
	pthread_attr_t attr;
	pthread_t t;
	if (e->disc_running)
		return;
	e->disc_running = true;
	e->refs++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, ai_disc_thread, e->ad) != 0) {
		/* No thread: no refresh; the caller sees the cache as it is. */
		e->disc_running = false;
		e->refs--; /* the caller still holds one: never the last */
	}
	pthread_attr_destroy(&attr);
}

int adapter_instance_resources(struct adapter_resources *out, struct adapter *ad, unsigned wait_ms,
			       struct nova_err *err)
{
	struct adapter_instance *e = ad->instance;
	struct timespec deadline;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	if (!e)
		return adapter_discover_resources(out, ad, err);
	notify_deadline(&deadline, CLOCK_REALTIME, wait_ms); /* ai_cond's clock */
	pthread_mutex_lock(&ai_lock);
	if (!e->disc_at_ms || ai_now_ms() - e->disc_at_ms >= ADAPTER_DISCOVERY_FRESH_MS)
		ai_disc_refresh(e);
	while (!e->disc_at_ms && e->disc_running && rc == 0)
		rc = pthread_cond_timedwait(&ai_cond, &ai_lock, &deadline);
	if (!e->disc_at_ms) {
		rc = nova_err_set(err, NOVA_EAGAIN, "", "discovery of provider %s is still running",
				  ad->ops->name);
	} else if ((rc = e->disc_rc)) {
		*err = e->disc_err;
	} else {
		rc = adapter_resources_copy(out, &e->disc, err);
	}
	pthread_mutex_unlock(&ai_lock);
	return rc;
}

size_t adapter_instance_count(void)
{
	size_t n = 0;
	pthread_mutex_lock(&ai_lock);
	for (struct adapter_instance *e = ai_list; e; e = e->next)
		n++;
	pthread_mutex_unlock(&ai_lock);
	return n;
}

void adapter_instances_clear(void)
{
	struct adapter_instance *e, *next, *dead = NULL;
	pthread_mutex_lock(&ai_lock);
	/* Discovery refreshes end in their provider's timeouts: wait for
	 * them, so that none outlives the instances. */
	for (e = ai_list; e;) {
		if (e->disc_running) {
			pthread_cond_wait(&ai_cond, &ai_lock);
			e = ai_list;
			continue;
		}
		e = e->next;
	}
	for (e = ai_list; e; e = next) {
		next = e->next;
		if (e->current && e->ad)
			ai_retire(e, &dead);
		else
			e->current = false; /* still in use (a test's thread): its put ends it */
	}
	pthread_mutex_unlock(&ai_lock);
	ai_destroy_all(dead);
}
