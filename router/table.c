/* The routing table as requests read it, the pick, and the key set.
 *
 * Tables and key sets are immutable once built and shared by reference:
 * an event loop takes a reference under a mutex held for two instructions
 * (router.c), reads without any lock, and drops it. Rejected: a
 * reader-writer lock over one mutable table, which would have made every
 * request wait on a watch update applying, and the update wait on the
 * longest request's read. The per-replica counts that must outlive a
 * table (outstanding requests, ejection) live in the replica objects,
 * which a new table takes over from the old one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/prompt.h"
#include "core/secret.h"
#include "router/router_int.h"

static void rt_replica_unref(struct router_replica *r)
{
	if (r && atomic_fetch_sub(&r->refs, 1) == 1) {
		rt_vstat_release(r->vstat);
		free(r);
	}
}

void router_table_unref(struct router_table *t)
{
	if (!t || atomic_fetch_sub(&t->refs, 1) != 1)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct router_route *rt = &t->routes[i];
		for (size_t j = 0; j < rt->n; j++)
			rt_replica_unref(rt->replicas[j]);
		free(rt->replicas);
		for (size_t v = 0; v < rt->n_versions; v++)
			free(rt->versions[v].replicas);
		free(rt->versions);
		free(rt->key);
		free(rt->model);
		free(rt->adapter);
	}
	free(t->routes);
	free(t);
}

bool router_route_key(char *out, size_t len, const json_t *route)
{
	const char *model = json_string_value(json_object_get(route, "model"));
	const char *adapter = json_string_value(json_object_get(route, "adapter"));
	if (!model || !*model)
		return false;
	int n = adapter ? snprintf(out, len, "%s/%s", model, adapter) : snprintf(out, len, "%s", model);
	return n > 0 && (size_t)n < len;
}

static int rt_route_cmp(const void *a, const void *b)
{
	return strcmp(((const struct router_route *)a)->key, ((const struct router_route *)b)->key);
}

/* prev's object for (id, url, version), or NULL. Tables are small next to
 * the traffic (thousands of replicas at most, rebuilt when an endpoint
 * changes), so a scan per endpoint would do; the index keeps a large
 * table's rebuild linear. */
static struct router_replica *rt_prev_find(json_t *index, const char *id, const char *url,
					   const char *version)
{
	json_t *v = json_object_get(index, id);
	struct router_replica *r = v ? (struct router_replica *)(uintptr_t)json_integer_value(v) : NULL;
	return r && !strcmp(r->url, url) && !strcmp(r->version, version) ? r : NULL;
}

static int rt_version_cmp(const void *a, const void *b)
{
	return strcmp(((const struct router_version *)a)->name,
		      ((const struct router_version *)b)->name);
}

/* A route's "split" (absent or null: none): true when it is an object of
 * version names to integers 0..100. */
static bool rt_split_valid(const json_t *split)
{
	const char *name;
	json_t *v;
	if (!json_is_object(split))
		return false;
	json_object_foreach((json_t *)split, name, v) {
		if (!router_version_valid(name) || !json_is_integer(v) ||
		    json_integer_value(v) < 0 || json_integer_value(v) > 100)
			return false;
	}
	return true;
}

/* The route's versions when its split is in force (two versions or more
 * among its replicas): grouped, sorted by name, each with its share.
 * false when out of memory. */
static bool rt_route_versions(struct router_route *rt, const json_t *split)
{
	struct router_version *vs = calloc(rt->n ? rt->n : 1, sizeof(*vs));
	size_t nv = 0;
	if (!vs)
		return false;
	for (size_t i = 0; i < rt->n; i++) {
		size_t v = 0;
		while (v < nv && strcmp(vs[v].name, rt->replicas[i]->version))
			v++;
		if (v == nv)
			snprintf(vs[nv++].name, sizeof(vs[0].name), "%s", rt->replicas[i]->version);
		vs[v].n++;
	}
	if (nv < 2) { /* one version: the split has nothing to choose */
		free(vs);
		return true;
	}
	for (size_t v = 0; v < nv; v++) {
		json_t *p = vs[v].name[0] ? json_object_get(split, vs[v].name) : NULL;
		vs[v].percent = p ? (unsigned)json_integer_value(p) : 0;
		if (!(vs[v].replicas = calloc(vs[v].n, sizeof(*vs[v].replicas)))) {
			while (v-- > 0)
				free(vs[v].replicas);
			free(vs);
			return false;
		}
		vs[v].n = 0;
	}
	for (size_t i = 0; i < rt->n; i++)
		for (size_t v = 0; v < nv; v++)
			if (!strcmp(vs[v].name, rt->replicas[i]->version)) {
				vs[v].replicas[vs[v].n++] = rt->replicas[i];
				break;
			}
	qsort(vs, nv, sizeof(*vs), rt_version_cmp);
	rt->versions = vs;
	rt->n_versions = nv;
	rt->split = true;
	return true;
}

struct router_table *router_table_build(const json_t *routes_by_key, long long version,
					const struct router_table *prev,
					struct router_vstats *vstats, size_t *skipped)
{
	struct router_table *t = calloc(1, sizeof(*t));
	json_t *prev_index = json_object(), *now_index = json_object();
	const char *key;
	json_t *route;
	size_t bad = 0;
	if (!t || !prev_index || !now_index)
		goto fail;
	atomic_init(&t->refs, 1);
	t->version = version;
	for (size_t i = 0; prev && i < prev->n; i++)
		for (size_t j = 0; j < prev->routes[i].n; j++) {
			struct router_replica *r = prev->routes[i].replicas[j];
			json_object_set_new(prev_index, r->id, json_integer((json_int_t)(uintptr_t)r));
		}
	t->routes = calloc(json_object_size(routes_by_key) + 1, sizeof(*t->routes));
	if (!t->routes)
		goto fail;
	json_object_foreach((json_t *)routes_by_key, key, route) {
		const char *model = json_string_value(json_object_get(route, "model"));
		const char *adapter = json_string_value(json_object_get(route, "adapter"));
		json_t *eps = json_object_get(route, "endpoints"), *ep;
		size_t i;
		if (!model || !json_is_array(eps)) {
			bad++;
			continue;
		}
		struct router_route *rt = &t->routes[t->n];
		atomic_init(&rt->next, 0);
		rt->key = strdup(key);
		rt->model = strdup(model);
		rt->adapter = adapter ? strdup(adapter) : NULL;
		rt->dynamic = adapter && json_is_true(json_object_get(route, "dynamic"));
		rt->replicas = calloc(json_array_size(eps) + 1, sizeof(*rt->replicas));
		t->n++; /* counted now, so a failure below frees what it holds */
		if (!rt->key || !rt->model || (adapter && !rt->adapter) || !rt->replicas)
			goto fail;
		json_array_foreach(eps, i, ep) {
			const char *id = json_string_value(json_object_get(ep, "replica"));
			const char *url = json_string_value(json_object_get(ep, "url"));
			/* Absent (an older novad) or not a version name: none. */
			const char *ver = json_string_value(json_object_get(ep, "version"));
			struct router_replica *r;
			if (!id || !url || strlen(id) >= sizeof(r->id) || strlen(url) >= sizeof(r->url) ||
			    (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
				bad++;
				continue;
			}
			if (!router_version_valid(ver))
				ver = "";
			/* One object per replica id in a table: the first route
			 * naming it gives its URL and version. */
			json_t *seen = json_object_get(now_index, id);
			r = seen ? (struct router_replica *)(uintptr_t)json_integer_value(seen)
				 : rt_prev_find(prev_index, id, url, ver);
			if (!r) {
				if (!(r = calloc(1, sizeof(*r))))
					goto fail;
				snprintf(r->id, sizeof(r->id), "%s", id);
				snprintf(r->url, sizeof(r->url), "%s", url);
				snprintf(r->version, sizeof(r->version), "%s", ver);
				r->id_hash = prompt_hash(r->id, strlen(r->id));
				size_t ul = strlen(r->url);
				while (ul > 0 && r->url[ul - 1] == '/')
					r->url[--ul] = '\0';
				r->vstat = rt_vstat_acquire(vstats, model, r->version);
			}
			if (!seen)
				json_object_set_new(now_index, id, json_integer((json_int_t)(uintptr_t)r));
			atomic_fetch_add(&r->refs, 1);
			rt->replicas[rt->n++] = r;
		}
		json_t *split = json_object_get(route, "split");
		if (split && !json_is_null(split)) {
			if (!rt_split_valid(split))
				bad++; /* the route is kept, without its split */
			else if (!rt_route_versions(rt, split))
				goto fail;
		}
	}
	qsort(t->routes, t->n, sizeof(*t->routes), rt_route_cmp);
	json_decref(prev_index);
	json_decref(now_index);
	if (skipped)
		*skipped = bad;
	return t;
fail:
	json_decref(prev_index);
	json_decref(now_index);
	router_table_unref(t);
	return NULL;
}

const struct router_route *router_table_find(const struct router_table *t, const char *key)
{
	struct router_route probe = {.key = (char *)key};
	if (!t || !t->n)
		return NULL;
	return bsearch(&probe, t->routes, t->n, sizeof(*t->routes), rt_route_cmp);
}

static bool rt_tried(struct router_replica *r, struct router_replica *const *tried, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tried[i] == r)
			return true;
	return false;
}

static long rt_score(struct router_replica *r)
{
	long own = atomic_load_explicit(&r->outstanding, memory_order_relaxed);
	long all = atomic_load_explicit(&r->running, memory_order_relaxed);
	/* Ours are live, the engine's a poll old but counting every router's:
	 * the larger of the two. */
	return (own > all ? own : all) +
	       (long)atomic_load_explicit(&r->queue_depth, memory_order_relaxed) +
	       (long)atomic_load_explicit(&r->kv_load, memory_order_relaxed);
}

/* Least loaded among the candidates: a scan up to ROUTER_PICK_SCAN_MAX of
 * them, else the better of two at random. Rejected: a full scan of large
 * sets (every request would read every replica's shared counters: cache
 * lines bouncing between loops), and a single random pick (a replica
 * stuck behind one long request keeps getting its share); two choices
 * give most of the full scan's balance at the cost of two reads
 * (Mitzenmacher). Ties go to the random start, so equal replicas share. */
static struct router_replica *rt_least_loaded(struct router_replica **c, size_t n, uint64_t rnd)
{
	if (n == 0)
		return NULL;
	if (n <= ROUTER_PICK_SCAN_MAX) {
		size_t start = (size_t)(rnd % n), best = start;
		long best_score = rt_score(c[start]);
		for (size_t k = 1; k < n; k++) {
			size_t i = (start + k) % n;
			long s = rt_score(c[i]);
			if (s < best_score) {
				best = i;
				best_score = s;
			}
		}
		return c[best];
	}
	size_t a = (size_t)(rnd % n), b = (size_t)((rnd >> 32) % (n - 1));
	if (b >= a)
		b++;
	return rt_score(c[b]) < rt_score(c[a]) ? c[b] : c[a];
}

/* Session affinity: rendezvous hashing (each replica's weight for the
 * key is a hash of the two; the heaviest wins), so a replica added or
 * removed moves only the sessions it gains or had, with bounded load: in
 * weight order, the first whose outstanding requests, this one counted,
 * stay within ROUTER_SESSION_LOAD_FACTOR x the candidates' mean. Rejected:
 * a ring of virtual nodes (a structure to rebuild per table, for the same
 * 1/n movement; a route's replicas are few enough to weigh them all). */
static struct router_replica *rt_pick_session(struct router_replica **c, size_t n,
					      const char *session)
{
	uint64_t key = prompt_hash(session, strlen(session));
	long total = 1;
	for (size_t i = 0; i < n; i++)
		total += atomic_load_explicit(&c[i]->outstanding, memory_order_relaxed);
	double cap = ROUTER_SESSION_LOAD_FACTOR * (double)total / (double)n;
	if (cap < 1)
		cap = 1;
	/* At most n passes, each taking the heaviest left: n is a route's
	 * replica count, and the first pass almost always answers. */
	uint64_t taken_below = UINT64_MAX;
	struct router_replica *first = NULL;
	for (size_t pass = 0; pass < n; pass++) {
		struct router_replica *best = NULL;
		uint64_t best_w = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t w = prompt_hash(&(uint64_t[2]){key, c[i]->id_hash}, 16);
			if (w < taken_below && (!best || w > best_w)) {
				best = c[i];
				best_w = w;
			}
		}
		if (!best)
			break;
		if (!first)
			first = best;
		if (atomic_load_explicit(&best->outstanding, memory_order_relaxed) + 1 <= cap)
			return best;
		taken_below = best_w;
	}
	return first; /* every one at its bound (cannot happen with factor > 1) */
}

/* Prefix affinity: the replica that served the longest remembered run of
 * the prompt's blocks, while its score is within the bound; the pick (that
 * one, or the least loaded) is then remembered for every block it was not
 * already remembered for. */
static struct router_replica *rt_pick_prefix(struct router_replica **c, size_t n,
					     const struct router_pick_hint *hint, uint64_t rnd)
{
	uint64_t owner = 0;
	size_t known = router_prefix_lookup(hint->prefixes, hint->prefix, hint->n_prefix, &owner);
	struct router_replica *least = rt_least_loaded(c, n, rnd), *pick = least;
	if (known) {
		for (size_t i = 0; i < n; i++)
			if (c[i]->id_hash == owner) {
				if (rt_score(c[i]) <= 2 * rt_score(least) + ROUTER_AFFINITY_SLACK)
					pick = c[i];
				break;
			}
	}
	router_prefix_remember(hint->prefixes, hint->prefix, pick->id_hash == owner ? known : 0,
			       hint->n_prefix, pick->id_hash);
	return pick;
}

/* --- LoRA adapters ------------------------------------------------------------ */

/* FNV-1a, 64 bits; 0 is the empty slot, so never 0. */
uint64_t router_adapter_hash(const char *name)
{
	uint64_t h = 14695981039346656037ull;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return h ? h : 1;
}

void router_replica_adapters_set(struct router_replica *r, const char *const *names, size_t n)
{
	for (size_t i = 0; i < ROUTER_REPLICA_ADAPTERS; i++) {
		uint64_t h = i < n && names[i] ? router_adapter_hash(names[i]) : 0;
		if (atomic_load_explicit(&r->adapters[i], memory_order_relaxed) != h)
			atomic_store_explicit(&r->adapters[i], h, memory_order_relaxed);
	}
}

void router_replica_adapter_sent(struct router_replica *r, const char *adapter, long long now_ms)
{
	uint64_t h = router_adapter_hash(adapter);
	for (size_t i = 0; i < ROUTER_ADAPTERS_SENT; i++)
		if (atomic_load_explicit(&r->sent[i], memory_order_relaxed) == h) {
			atomic_store_explicit(&r->sent_ms[i], now_ms, memory_order_relaxed);
			return;
		}
	size_t i = atomic_fetch_add(&r->sent_next, 1) % ROUTER_ADAPTERS_SENT;
	atomic_store_explicit(&r->sent_ms[i], now_ms, memory_order_relaxed);
	atomic_store_explicit(&r->sent[i], h, memory_order_relaxed);
}

bool router_replica_has_adapter(struct router_replica *r, uint64_t hash, long long now_ms)
{
	for (size_t i = 0; i < ROUTER_REPLICA_ADAPTERS; i++) {
		uint64_t h = atomic_load_explicit(&r->adapters[i], memory_order_relaxed);
		if (h == hash)
			return true;
		if (h == 0)
			break; /* the set is packed from the front */
	}
	for (size_t i = 0; i < ROUTER_ADAPTERS_SENT; i++)
		if (atomic_load_explicit(&r->sent[i], memory_order_relaxed) == hash &&
		    now_ms - atomic_load_explicit(&r->sent_ms[i], memory_order_relaxed) <
			    ROUTER_ADAPTER_SENT_MS)
			return true;
	return false;
}

/* A dynamic LoRA adapter's pick: the least loaded of the candidates that
 * have the adapter loaded, while its score is within max(2, 25%) of the
 * least loaded candidate's; else that least loaded one, which loads it.
 * Loading costs the request a load (hundreds of ms to seconds for a real
 * adapter read from disk) and the replica a slot that evicts another
 * adapter, so a loaded replica is worth a few more requests queued; past
 * the bound, a hot adapter spreads over more replicas instead of queueing
 * on the few that have it. The loaded ones are all scanned (an adapter is
 * on few replicas, and its slots are read only here); the least loaded
 * is rt_least_loaded's, two choices on large sets.
 * Rejected: the router loading the adapter itself (POST
 * /v1/load_lora_adapter) before sending the request: it needs the
 * adapter's path, which only the engine's host knows, adds a round trip
 * on the request's path, and races with other routers loading on the
 * same replica; the engine's own resolver (vLLM's LoRA resolver plugins)
 * loads on first use with none of these, and this pick only chooses
 * where that happens. */
static struct router_replica *rt_pick_adapter(struct router_replica **c, size_t n,
					      const char *adapter, long long now_ms, uint64_t rnd)
{
	struct router_replica *least = rt_least_loaded(c, n, rnd), *best = NULL;
	uint64_t h = router_adapter_hash(adapter);
	long best_score = 0;
	if (!least)
		return NULL;
	for (size_t k = 0; k < n; k++) {
		size_t i = (size_t)((rnd >> 16) + k) % n; /* ties share */
		if (!router_replica_has_adapter(c[i], h, now_ms))
			continue;
		long sc = rt_score(c[i]);
		if (!best || sc < best_score) {
			best = c[i];
			best_score = sc;
		}
	}
	long floor = rt_score(least), slack = floor / 4 > 2 ? floor / 4 : 2;
	return best && best_score <= floor + slack ? best : least;
}

/* The policy's pick among reps (the route's replicas, or one version's). */
static struct router_replica *rt_pick_in(const struct router_route *route,
					 struct router_replica *const *reps, size_t n_reps,
					 enum router_policy policy,
					 const struct router_pick_hint *hint,
					 struct router_replica *const *tried, size_t n_tried,
					 long long now_ms, uint64_t rnd)
{
	struct router_replica *stack[64], **cand = stack, *pick = NULL;
	size_t n = 0, n_any = 0;
	if (n_reps == 0)
		return NULL;
	if (n_reps > sizeof(stack) / sizeof(stack[0]) && !(cand = malloc(n_reps * sizeof(*cand))))
		return NULL;
	/* Not ejected first; when every untried one is ejected, those
	 * anyway (a router that ejected everything would serve nothing:
	 * Envoy's panic threshold, at 0%). A replica whose ejection ended
	 * and that has not answered since is half open: this request probes
	 * it when no other probe is out (taken by compare and swap, so loops
	 * picking at once send one probe), else it is passed by. */
	for (size_t i = 0; i < n_reps; i++) {
		struct router_replica *r = reps[i];
		if (rt_tried(r, tried, n_tried))
			continue;
		n_any++;
		long long until = atomic_load(&r->ejected_until_ms);
		if (until > now_ms)
			continue;
		if (until != 0) {
			long long p = atomic_load(&r->probe_until_ms);
			if (p <= now_ms &&
			    atomic_compare_exchange_strong(&r->probe_until_ms, &p,
							   now_ms + ROUTER_PROBE_MS)) {
				pick = r;
				goto out;
			}
			continue;
		}
		cand[n++] = r;
	}
	if (n == 0 && n_any > 0)
		for (size_t i = 0; i < n_reps; i++)
			if (!rt_tried(reps[i], tried, n_tried))
				cand[n++] = reps[i];
	if (n == 0)
		pick = NULL;
	else if (hint && hint->adapter && route->dynamic)
		pick = rt_pick_adapter(cand, n, hint->adapter, now_ms, rnd);
	else if (policy == ROUTER_POLICY_SESSION && hint && hint->session && *hint->session)
		pick = rt_pick_session(cand, n, hint->session);
	else if (policy == ROUTER_POLICY_PREFIX && hint && hint->prefixes && hint->n_prefix)
		pick = rt_pick_prefix(cand, n, hint, rnd);
	else if (policy == ROUTER_POLICY_ROUND_ROBIN)
		pick = cand[atomic_fetch_add_explicit((atomic_uint *)&route->next, 1,
						      memory_order_relaxed) % n];
	else
		pick = rt_least_loaded(cand, n, rnd);
out:
	if (cand != stack)
		free(cand);
	return pick;
}

/* --- versions: a split in force ---------------------------------------------- */

/* What a version can take: 2, a replica that can take the request now (not
 * tried; not ejected, or half open with no probe out); 1, only replicas
 * not tried (ejected, or probed by another request); 0, nothing. */
static int rt_version_level(const struct router_version *v, struct router_replica *const *tried,
			    size_t n_tried, long long now_ms)
{
	int level = 0;
	for (size_t i = 0; i < v->n; i++) {
		struct router_replica *r = v->replicas[i];
		if (rt_tried(r, tried, n_tried))
			continue;
		level = 1;
		long long until = atomic_load(&r->ejected_until_ms);
		if (until <= now_ms &&
		    (until == 0 || atomic_load(&r->probe_until_ms) <= now_ms))
			return 2;
	}
	return level;
}

/* splitmix64's finalizer: the version's draw from rnd, independent of the
 * bits the policy then takes from rnd itself. */
static uint64_t rt_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* The version to run the policy in (router_pick's contract), or NULL when
 * none has a replica not tried. The levels are read again in each pass (a
 * route has few versions of few replicas) rather than kept in an array
 * sized per route; a level that changes between passes (another loop
 * ejecting a replica) costs one request a slightly different draw. */
static const struct router_version *rt_pick_version(const struct router_route *route,
						    const struct router_pick_hint *hint,
						    struct router_replica *const *tried,
						    size_t n_tried, long long now_ms, uint64_t rnd)
{
	int best = 0;
	for (size_t v = 0; v < route->n_versions && best < 2; v++) {
		int l = rt_version_level(&route->versions[v], tried, n_tried, now_ms);
		best = l > best ? l : best;
	}
	if (!best)
		return NULL;
	uint64_t total = 0, count = 0;
	const struct router_version *last = NULL;
	for (size_t v = 0; v < route->n_versions; v++) {
		const struct router_version *ver = &route->versions[v];
		if (rt_version_level(ver, tried, n_tried, now_ms) != best)
			continue;
		total += ver->percent;
		count++;
		last = ver;
	}
	if (count == 1)
		return last;
	/* With shares, by them; with none among these (versions the split
	 * does not name or names at 0, the last ones left), equal. */
	uint64_t x = hint && hint->session && *hint->session
			     ? prompt_hash(hint->session, strlen(hint->session))
			     : rt_mix(rnd);
	uint64_t t = x % (total ? total : count), acc = 0;
	for (size_t v = 0; v < route->n_versions; v++) {
		const struct router_version *ver = &route->versions[v];
		if (rt_version_level(ver, tried, n_tried, now_ms) != best)
			continue;
		acc += total ? ver->percent : 1;
		if (t < acc)
			return ver;
	}
	return last;
}

struct router_replica *router_pick(const struct router_route *route, enum router_policy policy,
				   const struct router_pick_hint *hint,
				   struct router_replica *const *tried, size_t n_tried,
				   long long now_ms, uint64_t rnd)
{
	if (!route || route->n == 0)
		return NULL;
	if (!route->split)
		return rt_pick_in(route, route->replicas, route->n, policy, hint, tried, n_tried,
				  now_ms, rnd);
	const struct router_version *ver = rt_pick_version(route, hint, tried, n_tried, now_ms, rnd);
	if (!ver)
		return NULL;
	if (policy != ROUTER_POLICY_PREFIX || !hint || !hint->prefixes || !hint->n_prefix)
		return rt_pick_in(route, ver->replicas, ver->n, policy, hint, tried, n_tried, now_ms,
				  rnd);
	/* The prefix memory per version: the same prompt's blocks under
	 * another name in each, so a v1 request neither finds v2's replica
	 * (not a candidate: it would go least loaded) nor takes the blocks
	 * from it (v2's next request would then find v1's, and so on: the
	 * two versions would keep wiping each other's affinity). */
	uint64_t stack[256], *salted = stack;
	if (hint->n_prefix > sizeof(stack) / sizeof(stack[0]) &&
	    !(salted = malloc(hint->n_prefix * sizeof(*salted))))
		return NULL;
	uint64_t salt = rt_mix(prompt_hash(ver->name, strlen(ver->name)));
	for (size_t i = 0; i < hint->n_prefix; i++)
		salted[i] = hint->prefix[i] ^ salt;
	struct router_pick_hint h = *hint;
	h.prefix = salted;
	struct router_replica *pick =
		rt_pick_in(route, ver->replicas, ver->n, policy, &h, tried, n_tried, now_ms, rnd);
	if (salted != stack)
		free(salted);
	return pick;
}

bool router_replica_eject(struct router_replica *r, long long now_ms)
{
	/* Requests in flight together fail together: one ejection, not a
	 * doubling per request. */
	long long until = atomic_load(&r->ejected_until_ms);
	if (until > now_ms)
		return false;
	/* Two loops failing at once: one ejects. */
	int f = atomic_load(&r->failures);
	long long ms = 1000LL << (f < 5 ? f : 5);
	if (ms > 30000)
		ms = 30000;
	if (!atomic_compare_exchange_strong(&r->ejected_until_ms, &until, now_ms + ms))
		return false;
	atomic_fetch_add(&r->failures, 1);
	atomic_store(&r->probe_until_ms, 0);
	return true;
}

void router_replica_succeeded(struct router_replica *r)
{
	if (atomic_load_explicit(&r->failures, memory_order_relaxed)) {
		atomic_store(&r->failures, 0);
		atomic_store(&r->ejected_until_ms, 0);
		atomic_store(&r->probe_until_ms, 0);
	}
}

/* --- keys ------------------------------------------------------------------ */

#define RK_INFERENCE 1u
#define RK_ADMIN 2u

struct rk_entry {
	unsigned char hash[32];
	unsigned scopes;     /* RK_* */
	long long expires_s; /* 0: never */
};

struct router_keys {
	atomic_int refs;
	size_t n;
	struct rk_entry *keys; /* sorted by hash */
};

static int rk_cmp(const void *a, const void *b)
{
	return memcmp(((const struct rk_entry *)a)->hash, ((const struct rk_entry *)b)->hash, 32);
}

struct router_keys *router_keys_parse(const char *text, size_t len)
{
	json_t *doc = json_loadb(text, len, 0, NULL), *list = json_object_get(doc, "keys"), *e;
	struct router_keys *k = NULL;
	size_t i;
	if (!json_is_array(list))
		goto out;
	if (!(k = calloc(1, sizeof(*k))) ||
	    !(k->keys = calloc(json_array_size(list) + 1, sizeof(*k->keys)))) {
		free(k);
		k = NULL;
		goto out;
	}
	atomic_init(&k->refs, 1);
	json_array_foreach(list, i, e) {
		struct rk_entry *r = &k->keys[k->n];
		json_t *s;
		size_t j;
		if (!secret_sha256_from_hex(r->hash, json_string_value(json_object_get(e, "hash"))))
			continue;
		json_array_foreach(json_object_get(e, "scopes"), j, s) {
			const char *name = json_string_value(s);
			if (name && !strcmp(name, "inference"))
				r->scopes |= RK_INFERENCE;
			else if (name && !strcmp(name, "admin"))
				r->scopes |= RK_ADMIN;
		}
		r->expires_s = json_integer_value(json_object_get(e, "expires_at"));
		k->n++;
	}
	qsort(k->keys, k->n, sizeof(*k->keys), rk_cmp);
out:
	json_decref(doc);
	return k;
}

struct router_keys *router_keys_ref(struct router_keys *k)
{
	if (k)
		atomic_fetch_add(&k->refs, 1);
	return k;
}

size_t router_keys_count(const struct router_keys *k)
{
	return k ? k->n : 0;
}

void router_keys_unref(struct router_keys *k)
{
	if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	free(k->keys);
	free(k);
}

/* The lookup is by the token's SHA-256: what the search's timing could
 * tell is about a hash, which gives nothing about any key. */
enum router_key_verdict router_keys_check(const struct router_keys *k, const char *token,
					  long long now_s)
{
	struct rk_entry probe;
	if (!k || !token || !*token)
		return ROUTER_KEY_UNKNOWN;
	secret_sha256(probe.hash, token, strlen(token));
	const struct rk_entry *e = bsearch(&probe, k->keys, k->n, sizeof(*k->keys), rk_cmp);
	if (!e)
		return ROUTER_KEY_UNKNOWN;
	if (e->expires_s && now_s >= e->expires_s)
		return ROUTER_KEY_EXPIRED;
	return e->scopes & (RK_INFERENCE | RK_ADMIN) ? ROUTER_KEY_OK : ROUTER_KEY_FORBIDDEN;
}
