/* Prefix memory: which replica served which prompt blocks.
 *
 * A fixed array of entries in sets of four; a block's hash picks its set,
 * and a set's entries are replaced least recently written first. Sets are
 * guarded by striped mutexes (RT_PREFIX_STRIPES of them, a set's stripe by
 * its index), held for a few loads and stores; every event loop shares one
 * map, so a prefix one loop routed is followed by the others. Rejected: a
 * map per loop (no lock, but each loop would learn each prefix on its own
 * and send it to its own least-loaded replica: a cached prefix on up to
 * one replica per loop), and an exact LRU (a list to splice under one
 * lock per request). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/prompt.h"
#include "router/router.h"

#define RT_PREFIX_WAYS 4
#define RT_PREFIX_STRIPES 64

struct rt_prefix_entry {
	uint64_t block;   /* 0: empty (a hash of 0 is taken as 1) */
	uint64_t replica;
	uint64_t stamp;   /* when written; the smallest of a set goes first */
};

struct router_prefix_map {
	size_t n_sets;    /* a power of two */
	unsigned shift;   /* 64 - log2(n_sets) */
	struct rt_prefix_entry *e;
	atomic_ullong clock;
	pthread_mutex_t stripe[RT_PREFIX_STRIPES];
};

struct router_prefix_map *router_prefix_map_create(size_t entries)
{
	struct router_prefix_map *m = calloc(1, sizeof(*m));
	size_t sets = 16;
	if (!m)
		return NULL;
	while (sets * RT_PREFIX_WAYS < entries && sets < ((size_t)1 << 40))
		sets <<= 1;
	m->n_sets = sets;
	m->shift = 64;
	while (sets > 1)
		sets >>= 1, m->shift--;
	/* calloc: pages are touched only as blocks are remembered. */
	if (!(m->e = calloc(m->n_sets * RT_PREFIX_WAYS, sizeof(*m->e)))) {
		free(m);
		return NULL;
	}
	for (size_t i = 0; i < RT_PREFIX_STRIPES; i++)
		pthread_mutex_init(&m->stripe[i], NULL);
	return m;
}

void router_prefix_map_destroy(struct router_prefix_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < RT_PREFIX_STRIPES; i++)
		pthread_mutex_destroy(&m->stripe[i]);
	free(m->e);
	free(m);
}

static uint64_t rt_block_key(uint64_t h)
{
	return h ? h : 1;
}

/* The set of a block: Fibonacci hashing of the key, so keys that are not
 * well mixed (a test's small numbers) still spread over the sets. */
static size_t rt_set_of(const struct router_prefix_map *m, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> m->shift);
}

static bool rt_find(struct router_prefix_map *m, uint64_t key, uint64_t *replica)
{
	size_t set = rt_set_of(m, key);
	struct rt_prefix_entry *e = &m->e[set * RT_PREFIX_WAYS];
	pthread_mutex_t *lk = &m->stripe[set % RT_PREFIX_STRIPES];
	bool found = false;
	pthread_mutex_lock(lk);
	for (size_t w = 0; w < RT_PREFIX_WAYS; w++)
		if (e[w].block == key) {
			*replica = e[w].replica;
			found = true;
			break;
		}
	pthread_mutex_unlock(lk);
	return found;
}

size_t router_prefix_lookup(struct router_prefix_map *m, const uint64_t *h, size_t n,
			    uint64_t *replica)
{
	/* From the longest down: a request that shares a long prefix and
	 * adds a short tail finds its match after the tail's few blocks. */
	for (size_t i = n; m && i > 0; i--)
		if (rt_find(m, rt_block_key(h[i - 1]), replica))
			return i;
	return 0;
}

void router_prefix_remember(struct router_prefix_map *m, const uint64_t *h, size_t from, size_t n,
			    uint64_t replica)
{
	if (!m || from >= n)
		return;
	uint64_t now = atomic_fetch_add_explicit(&m->clock, 1, memory_order_relaxed) + 1;
	for (size_t i = from; i < n; i++) {
		uint64_t key = rt_block_key(h[i]);
		size_t set = rt_set_of(m, key);
		struct rt_prefix_entry *e = &m->e[set * RT_PREFIX_WAYS], *slot = &e[0];
		pthread_mutex_t *lk = &m->stripe[set % RT_PREFIX_STRIPES];
		pthread_mutex_lock(lk);
		for (size_t w = 0; w < RT_PREFIX_WAYS; w++) {
			if (e[w].block == key) {
				slot = &e[w];
				break;
			}
			if (e[w].stamp < slot->stamp)
				slot = &e[w];
		}
		slot->block = key;
		slot->replica = replica;
		slot->stamp = now;
		pthread_mutex_unlock(lk);
	}
}

bool router_prefix_hashes(const json_t *body, bool chat, const char *key, size_t block_bytes,
			  size_t max, uint64_t **out, size_t *n)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	*n = 0;
	if (!block_bytes || !max || !prompt_text(body, chat, block_bytes * max, &text, &len))
		return true; /* no prompt (or no memory for its text: no affinity) */
	if (len < block_bytes) {
		free(text);
		return true;
	}
	size_t want = len / block_bytes < max ? len / block_bytes : max;
	uint64_t *h = malloc(want * sizeof(*h));
	if (!h) {
		free(text);
		return false;
	}
	size_t got = prompt_block_hashes(text, len, block_bytes, h, want);
	free(text);
	/* The route's name folded into every block: the same prompt to two
	 * models is two prefixes. */
	uint64_t salt = prompt_hash(key, strlen(key));
	for (size_t i = 0; i < got; i++)
		h[i] ^= salt;
	*out = h;
	*n = got;
	return true;
}
