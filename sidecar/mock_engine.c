#include "sidecar/mock_engine.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/http.h"
#include "core/json.h"
#include "core/prompt.h"
#include "core/secret.h"

const char mock_engine_usage[] =
	"usage: nova-mock-engine [--listen HOST:PORT | --port N] [--model NAME] [--kind KIND]\n"
	"                        [--tokens-per-second N] [--latency-ms N] [--max-tokens N]\n"
	"                        [--crash-after N] [--fail-health] [--lora NAME ...]\n"
	"                        [--max-loras N] [--lora-resolve NAME ...] [--lora-load-ms N]\n"
	"                        [--port-file PATH] [--admin-token TOKEN]\n"
	"                        [--prefix-block-bytes N] [--prefix-cache-blocks N]\n"
	"                        [--uncached-block-us N] [--embedding-dims N]\n"
	"                        [--startup-ms N] [--max-num-seqs N]\n"
	"                        [--total-tokens-per-second N] [--error-percent N]\n"
	"  --error-percent N: N of every 100 valid completion, chat and embeddings\n"
	"  requests are answered 500 (\"code\": \"injected\"), spread evenly.\n"
	"  POST /admin/health {\"healthy\": B} and /admin/errors {\"percent\": N}\n"
	"  need \"Authorization: Bearer TOKEN\", the --admin-token\n"
	"  (or NOVA_MOCK_ADMIN_TOKEN); without one the admin routes are off (404).\n";

void mock_engine_config_defaults(struct mock_engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:0");
	snprintf(cfg->model, sizeof(cfg->model), "mock-model");
	snprintf(cfg->kind, sizeof(cfg->kind), "single");
	cfg->tokens_per_second = 50;
	cfg->latency_ms = 20;
	cfg->max_tokens = 16;
	cfg->prefix_block_bytes = 64;
	cfg->prefix_cache_blocks = 16384;
	cfg->embedding_dims = 16;
	cfg->lora_load_ms = 200;
}

static int me_uint(unsigned *out, const char *flag, const char *s, unsigned min, unsigned max,
		   struct nova_err *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v < min || v > max)
		return nova_err_set(err, NOVA_EINVAL, flag, "%s must be an integer from %u to %u", flag,
				    min, max);
	*out = (unsigned)v;
	return 0;
}

int mock_engine_config_parse(struct mock_engine_config *cfg, int argc, char **argv,
			     struct nova_err *err)
{
	enum { O_LISTEN = 1000, O_PORT, O_MODEL, O_KIND, O_TPS, O_LAT, O_MAXTOK, O_CRASH, O_FAILH,
	       O_LORA, O_MAXLORA, O_ADMIN, O_PBB, O_PCB, O_UBU, O_EDIM, O_PORTFILE, O_RESOLVE,
	       O_LOADMS, O_STARTUP, O_MAXSEQS, O_TOTALTPS, O_ERRPCT };
	static const struct option opts[] = {
		{"listen", required_argument, NULL, O_LISTEN},
		{"port", required_argument, NULL, O_PORT},
		{"model", required_argument, NULL, O_MODEL},
		{"kind", required_argument, NULL, O_KIND},
		{"tokens-per-second", required_argument, NULL, O_TPS},
		{"latency-ms", required_argument, NULL, O_LAT},
		{"max-tokens", required_argument, NULL, O_MAXTOK},
		{"crash-after", required_argument, NULL, O_CRASH},
		{"fail-health", no_argument, NULL, O_FAILH},
		{"lora", required_argument, NULL, O_LORA},
		{"max-loras", required_argument, NULL, O_MAXLORA},
		{"admin-token", required_argument, NULL, O_ADMIN},
		{"prefix-block-bytes", required_argument, NULL, O_PBB},
		{"prefix-cache-blocks", required_argument, NULL, O_PCB},
		{"uncached-block-us", required_argument, NULL, O_UBU},
		{"embedding-dims", required_argument, NULL, O_EDIM},
		{"port-file", required_argument, NULL, O_PORTFILE},
		{"lora-resolve", required_argument, NULL, O_RESOLVE},
		{"lora-load-ms", required_argument, NULL, O_LOADMS},
		{"startup-ms", required_argument, NULL, O_STARTUP},
		{"max-num-seqs", required_argument, NULL, O_MAXSEQS},
		{"total-tokens-per-second", required_argument, NULL, O_TOTALTPS},
		{"error-percent", required_argument, NULL, O_ERRPCT},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned port;
	int c, rc = 0;
	const char *env = getenv("NOVA_MOCK_ADMIN_TOKEN");
	if (env && *env)
		snprintf(cfg->admin_token, sizeof(cfg->admin_token), "%s", env);
	optind = 1;
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: snprintf(cfg->listen, sizeof(cfg->listen), "%s", optarg); break;
		case O_PORT:
			if ((rc = me_uint(&port, "--port", optarg, 0, 65535, err)) == 0)
				snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:%u", port);
			break;
		case O_MODEL: snprintf(cfg->model, sizeof(cfg->model), "%s", optarg); break;
		case O_KIND: snprintf(cfg->kind, sizeof(cfg->kind), "%s", optarg); break;
		case O_TPS: rc = me_uint(&cfg->tokens_per_second, "--tokens-per-second", optarg, 1, 100000, err); break;
		case O_LAT: rc = me_uint(&cfg->latency_ms, "--latency-ms", optarg, 0, 600000, err); break;
		case O_MAXTOK: rc = me_uint(&cfg->max_tokens, "--max-tokens", optarg, 1, 100000, err); break;
		case O_CRASH: rc = me_uint(&cfg->crash_after, "--crash-after", optarg, 0, 1000000000, err); break;
		case O_FAILH: cfg->fail_health = true; break;
		case O_ERRPCT: rc = me_uint(&cfg->error_percent, "--error-percent", optarg, 0, 100, err); break;
		case O_LORA:
			if (cfg->n_loras == MOCK_MAX_LORAS)
				rc = nova_err_set(err, NOVA_EINVAL, "--lora", "at most %d adapters", MOCK_MAX_LORAS);
			else
				snprintf(cfg->loras[cfg->n_loras++], sizeof(cfg->loras[0]), "%s", optarg);
			break;
		case O_RESOLVE:
			if (cfg->n_resolve == MOCK_MAX_RESOLVE)
				rc = nova_err_set(err, NOVA_EINVAL, "--lora-resolve", "at most %d adapters",
						  MOCK_MAX_RESOLVE);
			else if (!*optarg || strlen(optarg) >= MOCK_LORA_NAME_MAX)
				rc = nova_err_set(err, NOVA_EINVAL, "--lora-resolve",
						  "--lora-resolve names of 1 to %d bytes", MOCK_LORA_NAME_MAX - 1);
			else
				snprintf(cfg->resolve[cfg->n_resolve++], MOCK_LORA_NAME_MAX, "%s", optarg);
			break;
		case O_LOADMS: rc = me_uint(&cfg->lora_load_ms, "--lora-load-ms", optarg, 0, 600000, err); break;
		case O_STARTUP: rc = me_uint(&cfg->startup_ms, "--startup-ms", optarg, 0, 600000, err); break;
		case O_MAXSEQS: rc = me_uint(&cfg->max_num_seqs, "--max-num-seqs", optarg, 0, 100000, err); break;
		case O_TOTALTPS:
			rc = me_uint(&cfg->total_tokens_per_second, "--total-tokens-per-second", optarg, 0,
				     10000000, err);
			break;
		case O_MAXLORA: rc = me_uint(&cfg->max_loras, "--max-loras", optarg, 0, MOCK_MAX_LORAS, err); break;
		case O_ADMIN:
			if (strlen(optarg) < 16 || strlen(optarg) >= sizeof(cfg->admin_token))
				rc = nova_err_set(err, NOVA_EINVAL, "--admin-token",
						  "--admin-token must be 16 to %zu characters",
						  sizeof(cfg->admin_token) - 1);
			else
				snprintf(cfg->admin_token, sizeof(cfg->admin_token), "%s", optarg);
			break;
		case O_PBB: rc = me_uint(&cfg->prefix_block_bytes, "--prefix-block-bytes", optarg, 1, 1u << 20, err); break;
		case O_PCB: rc = me_uint(&cfg->prefix_cache_blocks, "--prefix-cache-blocks", optarg, 0, 1u << 24, err); break;
		case O_UBU: rc = me_uint(&cfg->uncached_block_us, "--uncached-block-us", optarg, 0, 10000000, err); break;
		case O_EDIM: rc = me_uint(&cfg->embedding_dims, "--embedding-dims", optarg, 1, 4096, err); break;
		case O_PORTFILE:
			if (!*optarg || strlen(optarg) >= sizeof(cfg->port_file))
				rc = nova_err_set(err, NOVA_EINVAL, "--port-file", "--port-file needs a path");
			else
				snprintf(cfg->port_file, sizeof(cfg->port_file), "%s", optarg);
			break;
		case 'h': return 1;
		case ':': rc = nova_err_set(err, NOVA_EINVAL, argv[optind - 1], "%s needs a value", argv[optind - 1]); break;
		default: rc = nova_err_set(err, NOVA_EINVAL, argv[optind - 1], "unknown option %s", argv[optind - 1]); break;
		}
	}
	if (rc == 0 && optind < argc)
		rc = nova_err_set(err, NOVA_EINVAL, argv[optind], "unexpected argument %s", argv[optind]);
	return rc;
}

/* The prefix cache: an LRU of block hashes, a list threaded through slots
 * (most recent at head) and an open-addressed table (linear probing,
 * backward-shift deletion) from hash to slot. Under its own lock. */
#define ME_NIL UINT32_MAX
struct me_slot {
	uint64_t hash;
	uint32_t prev, next;
};
struct me_cache {
	pthread_mutex_t lock;
	struct me_slot *slots;
	uint32_t *table;   /* slot index or ME_NIL */
	uint32_t cap, used, mask, head, tail;
	unsigned long long hits, misses;
};

/* vLLM's bucket bounds for vllm:time_to_first_token_seconds (its
 * v1/metrics/loggers.py), written as its Python client writes them. */
static const struct {
	double le;
	const char *text;
} me_ttft_bounds[] = {
	{0.001, "0.001"}, {0.005, "0.005"}, {0.01, "0.01"}, {0.02, "0.02"}, {0.04, "0.04"},
	{0.06, "0.06"},   {0.08, "0.08"},   {0.1, "0.1"},   {0.25, "0.25"}, {0.5, "0.5"},
	{0.75, "0.75"},   {1.0, "1.0"},     {2.5, "2.5"},   {5.0, "5.0"},   {7.5, "7.5"},
	{10.0, "10.0"},   {20.0, "20.0"},   {40.0, "40.0"}, {80.0, "80.0"}, {160.0, "160.0"},
	{640.0, "640.0"}, {2560.0, "2560.0"},
};
#define ME_TTFT_BUCKETS (sizeof(me_ttft_bounds) / sizeof(me_ttft_bounds[0]))

struct mock_engine {
	struct mock_engine_config cfg;
	struct me_cache cache;
	struct http_server *srv;
	pthread_mutex_t lock;         /* loras, health, the injected errors */
	struct me_lora {
		char name[MOCK_LORA_NAME_MAX];
		uint64_t ready_us;    /* loaded from then on (me_now_us) */
		uint64_t used_us;     /* last asked for, for the LRU */
	} dyn[MOCK_MAX_LORAS];        /* dynamically loaded adapters */
	unsigned n_dyn;
	unsigned long long lora_loads, lora_evictions;
	bool healthy;
	unsigned error_percent;        /* now (the flag, or the last POST /admin/errors) */
	unsigned long long error_seq;  /* requests since the percent was set */
	unsigned long long errors;     /* answered with an injected error */
	atomic_uint in_flight;
	atomic_ullong completions, tokens_out;
	/* Time to first token as a histogram, as vLLM serves it, so that the
	 * sidecar reads its mean and p95 over an interval the same way for
	 * both. Rejected: the gauge of the last request it was, which says
	 * nothing of the others in the interval, least of all of their tail. */
	pthread_mutex_t ttft_lock;
	unsigned long long ttft_in[ME_TTFT_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
	unsigned long long ttft_count, ttft_sum_us;
	atomic_ullong token_gap_us_last;
	/* The sequences' slots (max_num_seqs): admitted in ticket order. */
	pthread_mutex_t seq_lock;
	pthread_cond_t seq_cond;
	unsigned running, waiting;    /* under seq_lock */
	unsigned long long next_ticket, admit_ticket;
	atomic_uint running_now;      /* running, for the pace without the lock */
	/* The tokens the running sequences hold: each one's prompt tokens from
	 * its admission, and one more per token it generates, until it ends
	 * (what a real engine's KV cache holds for them; the waiting hold
	 * none, as in vLLM, whose waiting requests have no blocks yet). */
	atomic_ullong inflight_tokens;
};

/* OpenAI-style error body. */
static void me_error(struct http_response *res, int status, const char *type, const char *msg)
{
	http_response_json(res, status, json_pack("{s:{s:s, s:s, s:n, s:i}}", "error", "message", msg,
						  "type", type, "param", "code", status));
}

/* Whether this request is one of the error_percent to fail (see
 * mock_engine.h: request k fails when floor(k*N/100) steps up); if so it
 * is answered 500 and counted. Called once a request is known valid, so a
 * bad request still gets its own 4xx. */
static bool me_error_inject(struct mock_engine *e, struct http_response *res)
{
	pthread_mutex_lock(&e->lock);
	unsigned long long k = ++e->error_seq, n = e->error_percent;
	bool fail = k * n / 100 > (k - 1) * n / 100;
	if (fail)
		e->errors++;
	pthread_mutex_unlock(&e->lock);
	if (fail)
		http_response_json(res, 500, json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message",
							  "injected failure", "type", "server_error",
							  "param", "code", "injected"));
	return fail;
}

static uint64_t me_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Whether the engine serves model, loading it first when it is an adapter
 * to resolve (then *wait_us is how long the request waits for the load:
 * the load's own time, or what is left of one another request began). */
static bool me_model_take(struct mock_engine *e, const char *model, uint64_t *wait_us)
{
	bool ok = strcmp(model, e->cfg.model) == 0, resolvable = false;
	uint64_t now = me_now_us();
	*wait_us = 0;
	for (unsigned i = 0; !ok && i < e->cfg.n_loras; i++)
		ok = strcmp(model, e->cfg.loras[i]) == 0;
	if (ok)
		return true;
	for (unsigned i = 0; !resolvable && i < e->cfg.n_resolve; i++)
		resolvable = strcmp(model, e->cfg.resolve[i]) == 0;
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; !ok && i < e->n_dyn; i++) {
		if (strcmp(model, e->dyn[i].name) != 0)
			continue;
		ok = true;
		e->dyn[i].used_us = now;
		*wait_us = e->dyn[i].ready_us > now ? e->dyn[i].ready_us - now : 0;
	}
	if (!ok && resolvable && e->cfg.max_loras > 0 && strlen(model) < MOCK_LORA_NAME_MAX) {
		unsigned slot = e->n_dyn;
		if (e->n_dyn >= e->cfg.max_loras) {
			slot = 0; /* the least recently used goes */
			for (unsigned i = 1; i < e->n_dyn; i++)
				if (e->dyn[i].used_us < e->dyn[slot].used_us)
					slot = i;
			e->lora_evictions++;
		} else {
			e->n_dyn++;
		}
		snprintf(e->dyn[slot].name, sizeof(e->dyn[slot].name), "%s", model);
		*wait_us = (uint64_t)e->cfg.lora_load_ms * 1000u;
		e->dyn[slot].ready_us = now + *wait_us;
		e->dyn[slot].used_us = now;
		e->lora_loads++;
		ok = true;
	}
	pthread_mutex_unlock(&e->lock);
	return ok;
}

static bool me_model_known(struct mock_engine *e, const char *model)
{
	bool ok = strcmp(model, e->cfg.model) == 0;
	for (unsigned i = 0; !ok && i < e->cfg.n_loras; i++)
		ok = strcmp(model, e->cfg.loras[i]) == 0;
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; !ok && i < e->n_dyn; i++)
		ok = strcmp(model, e->dyn[i].name) == 0;
	pthread_mutex_unlock(&e->lock);
	return ok;
}

static void me_sleep_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static const char *const me_words[] = {"the", "model", "answers", "with", "mock", "tokens",
				       "at", "a", "steady", "pace", "for", "tests", "and",
				       "demos", "of", "nova"};
#define ME_N_WORDS (sizeof(me_words) / sizeof(me_words[0]))

/* --- the prefix cache --------------------------------------------------------- */

static int me_cache_init(struct me_cache *c, uint32_t cap)
{
	pthread_mutex_init(&c->lock, NULL);
	c->cap = cap;
	c->head = c->tail = ME_NIL;
	if (!cap)
		return 0;
	uint32_t size = 2;
	while (size < cap * 2u)
		size <<= 1;
	c->mask = size - 1;
	c->slots = calloc(cap, sizeof(*c->slots));
	c->table = malloc(sizeof(*c->table) * size);
	if (!c->slots || !c->table)
		return -1;
	memset(c->table, 0xff, sizeof(*c->table) * size);
	return 0;
}

static void me_cache_free(struct me_cache *c)
{
	free(c->slots);
	free(c->table);
	pthread_mutex_destroy(&c->lock);
}

static uint32_t me_cache_pos(const struct me_cache *c, uint64_t hash)
{
	uint32_t i = (uint32_t)(hash ^ (hash >> 32)) & c->mask;
	while (c->table[i] != ME_NIL && c->slots[c->table[i]].hash != hash)
		i = (i + 1) & c->mask;
	return i;
}

static void me_cache_unlink(struct me_cache *c, uint32_t s)
{
	struct me_slot *x = &c->slots[s];
	if (x->prev != ME_NIL) c->slots[x->prev].next = x->next; else c->head = x->next;
	if (x->next != ME_NIL) c->slots[x->next].prev = x->prev; else c->tail = x->prev;
}

static void me_cache_push(struct me_cache *c, uint32_t s)
{
	c->slots[s].prev = ME_NIL;
	c->slots[s].next = c->head;
	if (c->head != ME_NIL)
		c->slots[c->head].prev = s;
	c->head = s;
	if (c->tail == ME_NIL)
		c->tail = s;
}

/* Remove the table entry at i, shifting later members of its run back. */
static void me_cache_table_del(struct me_cache *c, uint32_t i)
{
	uint32_t j = i;
	c->table[i] = ME_NIL;
	for (;;) {
		j = (j + 1) & c->mask;
		if (c->table[j] == ME_NIL)
			return;
		uint64_t h = c->slots[c->table[j]].hash;
		uint32_t home = (uint32_t)(h ^ (h >> 32)) & c->mask;
		/* j's entry may move to i when its home is not in (i, j]. */
		if ((i < j) ? (home <= i || home > j) : (home <= i && home > j)) {
			c->table[i] = c->table[j];
			c->table[j] = ME_NIL;
			i = j;
		}
	}
}

/* Make hash the most recent, evicting the least recent when full. */
static void me_cache_touch(struct me_cache *c, uint64_t hash)
{
	uint32_t i = me_cache_pos(c, hash), s = c->table[i];
	if (s != ME_NIL) {
		me_cache_unlink(c, s);
		me_cache_push(c, s);
		return;
	}
	if (c->used < c->cap) {
		s = c->used++;
	} else {
		s = c->tail;
		me_cache_unlink(c, s);
		me_cache_table_del(c, me_cache_pos(c, c->slots[s].hash));
		i = me_cache_pos(c, hash); /* the deletion may have moved the run */
	}
	c->slots[s].hash = hash;
	c->table[i] = s;
	me_cache_push(c, s);
}

/* The blocks of a prompt missing from the cache (leading hits end at the
 * first miss; a trailing partial block is always a miss); the prompt's
 * blocks are then cached, its first ones the most recent so that a shared
 * head outlives the tails that differ. */
static unsigned long me_cache_misses(struct mock_engine *e, const char *text, size_t len)
{
	struct me_cache *c = &e->cache;
	size_t bb = e->cfg.prefix_block_bytes, max = len / bb, n, hits = 0;
	uint64_t stackbuf[256], *h = max <= 256 ? stackbuf : malloc(max * sizeof(*h));
	unsigned long partial = len % bb ? 1 : 0;
	if (!h)
		return (unsigned long)max + partial;
	n = prompt_block_hashes(text, len, bb, h, max);
	pthread_mutex_lock(&c->lock);
	if (c->cap) {
		while (hits < n && c->table[me_cache_pos(c, h[hits])] != ME_NIL)
			hits++;
		for (size_t k = n; k-- > 0;)
			me_cache_touch(c, h[k]);
	}
	c->hits += hits;
	c->misses += n - hits + partial;
	pthread_mutex_unlock(&c->lock);
	if (h != stackbuf)
		free(h);
	return (unsigned long)(n - hits + partial);
}

/* --- a completion, streamed or not ------------------------------------------ */

struct me_gen {
	struct mock_engine *e;
	char model[128];
	char id[48];
	bool chat, stream, usage;
	unsigned total, done, prompt_tokens;
	bool sent_usage, sent_done;
	bool admitted;           /* holds one of max_num_seqs slots */
	uint64_t start_us, prefill_us;
	char pending[1024];
	size_t pending_len, pending_off;
};

/* Wait for a sequence slot, in arrival order: a request that came first
 * starts first, as an engine's scheduler takes its waiting queue. No limit
 * (max_num_seqs 0): at once. Rejected: letting whichever thread wakes first
 * take a freed slot, which starves some requests and makes TTFT's tail a
 * matter of luck rather than of the queue's length. */
static void me_seq_admit(struct me_gen *g)
{
	struct mock_engine *e = g->e;
	pthread_mutex_lock(&e->seq_lock);
	unsigned long long ticket = e->next_ticket++;
	e->waiting++;
	while (ticket != e->admit_ticket ||
	       (e->cfg.max_num_seqs && e->running >= e->cfg.max_num_seqs))
		pthread_cond_wait(&e->seq_cond, &e->seq_lock);
	e->waiting--;
	e->admit_ticket++;
	e->running++;
	atomic_store(&e->running_now, e->running);
	atomic_fetch_add(&e->inflight_tokens, g->prompt_tokens);
	g->admitted = true;
	pthread_cond_broadcast(&e->seq_cond); /* the next ticket may fit too */
	pthread_mutex_unlock(&e->seq_lock);
}

static void me_seq_release(struct me_gen *g)
{
	struct mock_engine *e = g->e;
	if (!g->admitted)
		return;
	pthread_mutex_lock(&e->seq_lock);
	e->running--;
	atomic_store(&e->running_now, e->running);
	atomic_fetch_sub(&e->inflight_tokens, (unsigned long long)g->prompt_tokens + g->done);
	g->admitted = false;
	pthread_cond_broadcast(&e->seq_cond);
	pthread_mutex_unlock(&e->seq_lock);
}

static void me_gen_free(void *arg)
{
	struct me_gen *g = arg;
	me_seq_release(g);
	atomic_fetch_sub(&g->e->in_flight, 1);
	free(g);
}

static void me_ttft_observe(struct mock_engine *e, uint64_t us)
{
	double s = (double)us / 1e6;
	size_t i = 0;
	while (i < ME_TTFT_BUCKETS && s > me_ttft_bounds[i].le)
		i++;
	pthread_mutex_lock(&e->ttft_lock);
	e->ttft_in[i]++;
	e->ttft_count++;
	e->ttft_sum_us += us;
	pthread_mutex_unlock(&e->ttft_lock);
}

/* The wait before token i: a slot, then the first-token latency (with the
 * prefill of missed prefix blocks); then the token rate, the engine's
 * total shared by the sequences running. */
static void me_gen_pace(struct me_gen *g)
{
	struct mock_engine *e = g->e;
	if (g->done == 0) {
		me_seq_admit(g);
		me_sleep_us((uint64_t)e->cfg.latency_ms * 1000u + g->prefill_us);
		me_ttft_observe(e, me_now_us() - g->start_us);
	} else {
		unsigned rate = e->cfg.tokens_per_second;
		unsigned running = atomic_load(&e->running_now);
		if (e->cfg.total_tokens_per_second && running) {
			unsigned share = e->cfg.total_tokens_per_second / running;
			if (share < rate)
				rate = share ? share : 1;
		}
		uint64_t gap = 1000000u / rate;
		me_sleep_us(gap);
		atomic_store(&e->token_gap_us_last, gap);
	}
}

static long me_gen_read(void *arg, char *buf, size_t max)
{
	struct me_gen *g = arg;
	if (g->pending_off == g->pending_len) {
		json_t *chunk;
		g->pending_off = g->pending_len = 0;
		if (g->done < g->total) {
			me_gen_pace(g);
			const char *w = me_words[g->done % ME_N_WORDS];
			char text[64];
			snprintf(text, sizeof(text), "%s%s", g->done ? " " : "", w);
			bool last = ++g->done == g->total;
			atomic_fetch_add(&g->e->tokens_out, 1);
			atomic_fetch_add(&g->e->inflight_tokens, 1);
			if (g->chat)
				chunk = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s}, s:o}]}", "id", g->id,
						  "object", "chat.completion.chunk", "created",
						  (json_int_t)time(NULL), "model", g->model, "choices",
						  "index", 0, "delta", "content", text, "finish_reason",
						  last ? json_string("length") : json_null());
			else
				chunk = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:s, s:o}]}", "id", g->id,
						  "object", "text_completion", "created",
						  (json_int_t)time(NULL), "model", g->model, "choices",
						  "index", 0, "text", text, "finish_reason",
						  last ? json_string("length") : json_null());
			char *s = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
			json_decref(chunk);
			if (!s)
				return HTTP_STREAM_ERROR;
			g->pending_len = (size_t)snprintf(g->pending, sizeof(g->pending), "data: %s\n\n", s);
			free(s);
		} else if (g->usage && !g->sent_usage) {
			/* OpenAI's stream_options.include_usage: a last chunk with
			 * no choices and the usage. */
			g->sent_usage = true;
			chunk = json_pack("{s:s, s:s, s:I, s:s, s:[], s:{s:i, s:i, s:i}}", "id", g->id,
					  "object", g->chat ? "chat.completion.chunk" : "text_completion",
					  "created", (json_int_t)time(NULL), "model", g->model, "choices",
					  "usage", "prompt_tokens", (int)g->prompt_tokens,
					  "completion_tokens", (int)g->total, "total_tokens",
					  (int)(g->prompt_tokens + g->total));
			char *s = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
			json_decref(chunk);
			if (!s)
				return HTTP_STREAM_ERROR;
			g->pending_len = (size_t)snprintf(g->pending, sizeof(g->pending), "data: %s\n\n", s);
			free(s);
		} else if (!g->sent_done) {
			g->sent_done = true;
			g->pending_len = (size_t)snprintf(g->pending, sizeof(g->pending), "data: [DONE]\n\n");
		} else {
			return HTTP_STREAM_END;
		}
	}
	size_t n = g->pending_len - g->pending_off;
	if (n > max)
		n = max;
	memcpy(buf, g->pending + g->pending_off, n);
	g->pending_off += n;
	return (long)n;
}

/* Validate messages; a vision model takes image parts, others refuse them. */
static int me_messages_check(struct mock_engine *e, const json_t *messages, const char **why)
{
	size_t i, j;
	json_t *m, *part;
	if (!json_is_array(messages) || json_array_size(messages) == 0) {
		*why = "messages must be a non-empty array";
		return -1;
	}
	json_array_foreach(messages, i, m) {
		json_t *content = json_object_get(m, "content");
		if (!json_is_string(json_object_get(m, "role"))) {
			*why = "each message needs a role";
			return -1;
		}
		if (json_is_string(content))
			continue;
		if (!json_is_array(content)) {
			*why = "content must be a string or an array of parts";
			return -1;
		}
		json_array_foreach(content, j, part) {
			const char *type = json_string_value(json_object_get(part, "type"));
			if (type && strcmp(type, "text") == 0 && json_is_string(json_object_get(part, "text")))
				continue;
			if (type && strcmp(type, "image_url") == 0) {
				if (strcmp(e->cfg.kind, "vision") != 0) {
					*why = "this model does not accept images";
					return -1;
				}
				if (!json_is_string(json_object_get(json_object_get(part, "image_url"), "url"))) {
					*why = "image_url.url must be a string";
					return -1;
				}
				continue;
			}
			*why = "content parts are {type: text} or {type: image_url}";
			return -1;
		}
	}
	return 0;
}

static void me_complete(struct http_request *req, struct http_response *res, struct mock_engine *e,
			bool chat)
{
	json_t *body = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	const char *model = json_string_value(json_object_get(body, "model"));
	json_t *mt = json_object_get(body, "max_tokens");
	const char *why = NULL;
	uint64_t load_us = 0;
	if (!json_is_object(body) || !model) {
		me_error(res, 400, "invalid_request_error", "a JSON body with \"model\" is required");
		goto out;
	}
	if (!me_model_take(e, model, &load_us)) {
		me_error(res, 404, "not_found_error", "the model does not exist on this server");
		goto out;
	}
	if (chat ? me_messages_check(e, json_object_get(body, "messages"), &why) != 0
		 : !json_is_string(json_object_get(body, "prompt"))) {
		me_error(res, 400, "invalid_request_error", why ? why : "prompt must be a string");
		goto out;
	}
	if (mt && (!json_is_integer(mt) || json_integer_value(mt) < 1 || json_integer_value(mt) > 100000)) {
		me_error(res, 400, "invalid_request_error", "max_tokens must be a positive integer");
		goto out;
	}
	if (me_error_inject(e, res))
		goto out;
	unsigned long long n = atomic_fetch_add(&e->completions, 1) + 1;
	if (e->cfg.crash_after && n > e->cfg.crash_after) {
		/* A crash as a real engine has one: no answer, the process gone. */
		fprintf(stderr, "nova-mock-engine: crashing after %u completions as asked\n",
			e->cfg.crash_after);
		_exit(3);
	}
	struct me_gen *g = calloc(1, sizeof(*g));
	if (!g) {
		me_error(res, 500, "server_error", "out of memory");
		goto out;
	}
	atomic_fetch_add(&e->in_flight, 1);
	g->e = e;
	g->chat = chat;
	g->stream = json_is_true(json_object_get(body, "stream"));
	g->usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
	char *ptext;
	size_t ptext_len;
	if (prompt_text(body, chat, 64u << 20, &ptext, &ptext_len)) {
		g->prefill_us = (uint64_t)me_cache_misses(e, ptext, ptext_len) * e->cfg.uncached_block_us;
		g->prompt_tokens = (unsigned)((ptext_len + 3) / 4);
		free(ptext);
	}
	if (!g->prompt_tokens)
		g->prompt_tokens = 1;
	g->prefill_us += load_us; /* an adapter being loaded: the first token waits */
	g->total = mt ? (unsigned)json_integer_value(mt) : e->cfg.max_tokens;
	g->start_us = me_now_us();
	snprintf(g->model, sizeof(g->model), "%s", model);
	snprintf(g->id, sizeof(g->id), "%s-%llu", chat ? "chatcmpl" : "cmpl", n);
	if (g->stream) {
		http_response_stream(res, 200, "text/event-stream", me_gen_read, g, me_gen_free);
		goto out;
	}
	/* Not streamed: the same pacing, then one answer. */
	char text[8192] = "";
	size_t off = 0;
	while (g->done < g->total) {
		me_gen_pace(g);
		if (off + 16 < sizeof(text))
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%s", g->done ? " " : "",
						me_words[g->done % ME_N_WORDS]);
		g->done++;
		atomic_fetch_add(&e->tokens_out, 1);
		atomic_fetch_add(&e->inflight_tokens, 1);
	}
	json_t *choice = chat ? json_pack("{s:i, s:{s:s, s:s}, s:s}", "index", 0, "message", "role",
					  "assistant", "content", text, "finish_reason", "length")
			      : json_pack("{s:i, s:s, s:s}", "index", 0, "text", text, "finish_reason",
					  "length");
	http_response_json(res, 200,
			   json_pack("{s:s, s:s, s:I, s:s, s:[o], s:{s:i, s:i, s:i}}", "id", g->id,
				     "object", chat ? "chat.completion" : "text_completion", "created",
				     (json_int_t)time(NULL), "model", model, "choices", choice, "usage",
				     "prompt_tokens", (int)g->prompt_tokens, "completion_tokens",
				     (int)g->total, "total_tokens", (int)(g->prompt_tokens + g->total)));
	me_gen_free(g);
out:
	json_decref(body);
}

static void me_chat(struct http_request *req, struct http_response *res, void *ctx)
{
	me_complete(req, res, ctx, true);
}

static void me_text(struct http_request *req, struct http_response *res, void *ctx)
{
	me_complete(req, res, ctx, false);
}

static void me_models(struct http_request *req, struct http_response *res, void *ctx)
{
	struct mock_engine *e = ctx;
	json_t *data = json_array();
	(void)req;
	json_array_append_new(data, json_pack("{s:s, s:s, s:s, s:n}", "id", e->cfg.model, "object", "model",
					      "owned_by", "nova-mock-engine", "parent"));
	for (unsigned i = 0; i < e->cfg.n_loras; i++)
		json_array_append_new(data, json_pack("{s:s, s:s, s:s, s:s}", "id", e->cfg.loras[i],
						      "object", "model", "owned_by", "nova-mock-engine",
						      "parent", e->cfg.model));
	uint64_t now = me_now_us();
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < e->n_dyn; i++)
		if (e->dyn[i].ready_us <= now) /* loaded, not loading */
			json_array_append_new(data, json_pack("{s:s, s:s, s:s, s:s}", "id", e->dyn[i].name,
							      "object", "model", "owned_by", "nova-mock-engine",
							      "parent", e->cfg.model));
	pthread_mutex_unlock(&e->lock);
	http_response_json(res, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static void me_health(struct http_request *req, struct http_response *res, void *ctx)
{
	struct mock_engine *e = ctx;
	(void)req;
	pthread_mutex_lock(&e->lock);
	bool ok = e->healthy;
	pthread_mutex_unlock(&e->lock);
	http_response_json(res, ok ? 200 : 503, json_pack("{s:s}", "status", ok ? "ok" : "unhealthy"));
}

/* The admin routes change how the engine answers (its health, its injected
 * errors): they are for the test or demo that started the engine, not for
 * anyone who can reach its port (the port is the routed endpoint,
 * reachable by every client of the router). Off (404, as if absent) without an admin token;
 * with one, the caller's bearer token is compared in constant time.
 * Rejected: a separate admin port on 127.0.0.1, since the sidecar and its
 * tests would have to learn and report a second port per engine, and every
 * local process could still reach it. */
static bool me_admin_allowed(struct mock_engine *e, struct http_request *req,
			     struct http_response *res)
{
	const char *auth = http_request_header(req, "Authorization");
	unsigned char want[32], got[32];
	if (!e->cfg.admin_token[0]) {
		me_error(res, 404, "not_found_error", "no such route");
		return false;
	}
	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
		me_error(res, 401, "authentication_error", "the engine's admin token is required");
		return false;
	}
	secret_sha256(want, e->cfg.admin_token, strlen(e->cfg.admin_token));
	secret_sha256(got, auth + 7, strlen(auth + 7));
	if (!secret_equal(want, got, sizeof(want))) {
		me_error(res, 401, "authentication_error", "invalid admin token");
		return false;
	}
	return true;
}

static void me_admin_health(struct http_request *req, struct http_response *res, void *ctx)
{
	struct mock_engine *e = ctx;
	if (!me_admin_allowed(e, req, res))
		return;
	json_t *body = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	json_t *h = json_object_get(body, "healthy");
	if (!json_is_boolean(h)) {
		me_error(res, 400, "invalid_request_error", "body is {\"healthy\": true|false}");
	} else {
		pthread_mutex_lock(&e->lock);
		e->healthy = json_is_true(h);
		pthread_mutex_unlock(&e->lock);
		http_response_json(res, 200, json_pack("{s:b}", "healthy", json_is_true(h)));
	}
	json_decref(body);
}

/* The share of requests to fail from now on; the count of requests starts
 * again, so that what follows a switch does not depend on what came
 * before it. */
static void me_admin_errors(struct http_request *req, struct http_response *res, void *ctx)
{
	struct mock_engine *e = ctx;
	if (!me_admin_allowed(e, req, res))
		return;
	json_t *body = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	json_t *p = json_object_get(body, "percent");
	if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > 100) {
		me_error(res, 400, "invalid_request_error", "body is {\"percent\": 0..100}");
	} else {
		pthread_mutex_lock(&e->lock);
		e->error_percent = (unsigned)json_integer_value(p);
		e->error_seq = 0;
		pthread_mutex_unlock(&e->lock);
		http_response_json(res, 200, json_pack("{s:I}", "percent", json_integer_value(p)));
	}
	json_decref(body);
}

static void me_metrics(struct http_request *req, struct http_response *res, void *ctx)
{
	struct mock_engine *e = ctx;
	char text[8192];
	(void)req;
	unsigned long long gap = atomic_load(&e->token_gap_us_last), hits, misses;
	double usage;
	pthread_mutex_lock(&e->cache.lock);
	hits = e->cache.hits;
	misses = e->cache.misses;
	usage = e->cache.cap ? (double)e->cache.used / e->cache.cap : 0;
	pthread_mutex_unlock(&e->cache.lock);
	pthread_mutex_lock(&e->lock);
	unsigned long long loads = e->lora_loads, evictions = e->lora_evictions, errors = e->errors;
	pthread_mutex_unlock(&e->lock);
	pthread_mutex_lock(&e->seq_lock);
	unsigned waiting = e->waiting, running = e->running;
	pthread_mutex_unlock(&e->seq_lock);
	snprintf(text, sizeof(text),
		 "# HELP nova_engine_queue_depth Requests waiting for a sequence slot (max_num_seqs).\n"
		 "# TYPE nova_engine_queue_depth gauge\n"
		 "nova_engine_queue_depth %u\n"
		 "# HELP nova_engine_requests_running Sequences generating.\n"
		 "# TYPE nova_engine_requests_running gauge\n"
		 "nova_engine_requests_running %u\n"
		 "# HELP nova_engine_requests_in_progress Requests received and not yet answered.\n"
		 "# TYPE nova_engine_requests_in_progress gauge\n"
		 "nova_engine_requests_in_progress %u\n"
		 "# HELP nova_engine_inflight_tokens Tokens the running sequences hold (prompt and generated so far).\n"
		 "# TYPE nova_engine_inflight_tokens gauge\n"
		 "nova_engine_inflight_tokens %llu\n"
		 "# HELP nova_engine_tokens_per_second Generation rate of the last tokens.\n"
		 "# TYPE nova_engine_tokens_per_second gauge\n"
		 "nova_engine_tokens_per_second %.3f\n"
		 "# HELP nova_engine_requests_total Completion requests taken (not those failed by --error-percent).\n"
		 "# TYPE nova_engine_requests_total counter\n"
		 "nova_engine_requests_total %llu\n"
		 "# HELP nova_engine_request_errors_total Requests answered with an injected error (--error-percent).\n"
		 "# TYPE nova_engine_request_errors_total counter\n"
		 "nova_engine_request_errors_total %llu\n"
		 "# HELP nova_engine_tokens_total Tokens generated.\n"
		 "# TYPE nova_engine_tokens_total counter\n"
		 "nova_engine_tokens_total %llu\n"
		 "# HELP nova_engine_prefix_cache_hits_total Prompt blocks found in the prefix cache.\n"
		 "# TYPE nova_engine_prefix_cache_hits_total counter\n"
		 "nova_engine_prefix_cache_hits_total %llu\n"
		 "# HELP nova_engine_prefix_cache_misses_total Prompt blocks computed (not cached).\n"
		 "# TYPE nova_engine_prefix_cache_misses_total counter\n"
		 "nova_engine_prefix_cache_misses_total %llu\n"
		 "# HELP nova_engine_kv_cache_usage_ratio Share of the prefix cache's blocks in use.\n"
		 "# TYPE nova_engine_kv_cache_usage_ratio gauge\n"
		 "nova_engine_kv_cache_usage_ratio %.6f\n"
		 "# HELP nova_engine_lora_loads_total LoRA adapters loaded on first use.\n"
		 "# TYPE nova_engine_lora_loads_total counter\n"
		 "nova_engine_lora_loads_total %llu\n"
		 "# HELP nova_engine_lora_evictions_total LoRA adapters evicted to load another.\n"
		 "# TYPE nova_engine_lora_evictions_total counter\n"
		 "nova_engine_lora_evictions_total %llu\n",
		 waiting, running, atomic_load(&e->in_flight), atomic_load(&e->inflight_tokens),
		 gap ? 1e6 / (double)gap : (double)e->cfg.tokens_per_second,
		 atomic_load(&e->completions), errors, atomic_load(&e->tokens_out), hits, misses, usage,
		 loads, evictions);
	/* The histogram from one snapshot: its buckets, sum and count agree. */
	unsigned long long in[ME_TTFT_BUCKETS + 1], count, sum_us, cum = 0;
	pthread_mutex_lock(&e->ttft_lock);
	memcpy(in, e->ttft_in, sizeof(in));
	count = e->ttft_count;
	sum_us = e->ttft_sum_us;
	pthread_mutex_unlock(&e->ttft_lock);
	size_t off = strlen(text);
	off += (size_t)snprintf(text + off, sizeof(text) - off,
				"# HELP nova_engine_time_to_first_token_seconds Time to first token, in seconds.\n"
				"# TYPE nova_engine_time_to_first_token_seconds histogram\n");
	for (size_t i = 0; i <= ME_TTFT_BUCKETS && off < sizeof(text); i++) {
		cum += in[i];
		off += (size_t)snprintf(text + off, sizeof(text) - off,
					"nova_engine_time_to_first_token_seconds_bucket{le=\"%s\"} %llu\n",
					i < ME_TTFT_BUCKETS ? me_ttft_bounds[i].text : "+Inf", cum);
	}
	if (off < sizeof(text))
		snprintf(text + off, sizeof(text) - off,
			 "nova_engine_time_to_first_token_seconds_sum %.6f\n"
			 "nova_engine_time_to_first_token_seconds_count %llu\n",
			 (double)sum_us / 1e6, count);
	http_response_text(res, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

/* --- embeddings ---------------------------------------------------------------- */

/* A vector of embedding_dims floats in [-1, 1) from the input's hash: the
 * same input, the same vector. */
static void me_embed_vector(const struct mock_engine *e, const char *s, size_t n, float *v)
{
	uint64_t h[1], x;
	char pad[8] = {0};
	if (prompt_block_hashes(s, n, n ? n : 1, h, 1) == 0)
		prompt_block_hashes(pad, sizeof(pad), sizeof(pad), h, 1);
	x = h[0] | 1;
	for (unsigned i = 0; i < e->cfg.embedding_dims; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v[i] = (float)((double)(x >> 11) / (double)(1ULL << 52) - 1.0);
	}
}

static char *me_base64(const unsigned char *p, size_t n)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		*o++ = al[v >> 18 & 63];
		*o++ = al[v >> 12 & 63];
		*o++ = i + 1 < n ? al[v >> 6 & 63] : '=';
		*o++ = i + 2 < n ? al[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

/* One input's embedding object (index i), or NULL when out of memory. */
static json_t *me_embedding(const struct mock_engine *e, const char *s, size_t n, size_t i,
			    bool base64)
{
	float v[4096];
	json_t *emb;
	me_embed_vector(e, s, n, v);
	if (base64) {
		/* OpenAI's base64: the little-endian float32s, as the SDKs decode. */
		unsigned char raw[4096 * 4];
		for (unsigned k = 0; k < e->cfg.embedding_dims; k++) {
			uint32_t u;
			memcpy(&u, &v[k], 4);
			for (int b = 0; b < 4; b++)
				raw[k * 4 + (unsigned)b] = (unsigned char)(u >> (8 * b));
		}
		char *b64 = me_base64(raw, e->cfg.embedding_dims * 4u);
		emb = b64 ? json_string(b64) : NULL;
		free(b64);
	} else {
		emb = json_array();
		for (unsigned k = 0; emb && k < e->cfg.embedding_dims; k++)
			json_array_append_new(emb, json_real(v[k]));
	}
	return emb ? json_pack("{s:s, s:I, s:o}", "object", "embedding", "index", (json_int_t)i,
			       "embedding", emb)
		   : NULL;
}

static void me_embeddings(struct http_request *req, struct http_response *res, void *ctx)
{
	struct mock_engine *e = ctx;
	json_t *body = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	const char *model = json_string_value(json_object_get(body, "model"));
	const char *fmt = json_string_value(json_object_get(body, "encoding_format"));
	json_t *input = json_object_get(body, "input"), *data = NULL, *x;
	size_t i, tokens = 0;
	if (!json_is_object(body) || !model) {
		me_error(res, 400, "invalid_request_error", "a JSON body with \"model\" is required");
		goto out;
	}
	uint64_t load_us = 0;
	if (!me_model_take(e, model, &load_us)) {
		me_error(res, 404, "not_found_error", "the model does not exist on this server");
		goto out;
	}
	me_sleep_us(load_us);
	if (fmt && strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0) {
		me_error(res, 400, "invalid_request_error", "encoding_format must be float or base64");
		goto out;
	}
	bool b64 = fmt && strcmp(fmt, "base64") == 0;
	/* A string, an array of strings, an array of token ids, or an array of
	 * arrays of token ids (OpenAI's four shapes). */
	json_t *list = json_is_string(input) ? json_pack("[O]", input) : json_incref(input);
	if (json_is_array(list) && json_array_size(list) && json_is_integer(json_array_get(list, 0))) {
		json_decref(list);
		list = json_pack("[O]", input);
	}
	data = json_array();
	if (!json_is_array(list) || !json_array_size(list) || json_array_size(list) > 2048) {
		me_error(res, 400, "invalid_request_error",
			 "input must be a string, or an array of 1 to 2048 strings or token arrays");
		json_decref(list);
		goto out;
	}
	json_array_foreach(list, i, x) {
		char *dump = NULL;
		const char *s;
		size_t n;
		if (json_is_string(x)) {
			s = json_string_value(x);
			n = json_string_length(x);
			tokens += (n + 3) / 4;
		} else if (json_is_array(x)) {
			dump = json_dumps(x, JSON_COMPACT);
			s = dump ? dump : "";
			n = strlen(s);
			tokens += json_array_size(x);
		} else {
			me_error(res, 400, "invalid_request_error", "input items must be strings or token arrays");
			json_decref(list);
			goto out;
		}
		json_t *one = me_embedding(e, s, n, i, b64);
		free(dump);
		if (!one || json_array_append_new(data, one)) {
			me_error(res, 500, "server_error", "out of memory");
			json_decref(list);
			goto out;
		}
	}
	json_decref(list);
	if (me_error_inject(e, res))
		goto out;
	http_response_json(res, 200, json_pack("{s:s, s:O, s:s, s:{s:I, s:I}}", "object", "list", "data",
					       data, "model", model, "usage", "prompt_tokens",
					       (json_int_t)tokens, "total_tokens", (json_int_t)tokens));
out:
	json_decref(data);
	json_decref(body);
}

static void me_lora_load(struct http_request *req, struct http_response *res, void *ctx)
{
	struct mock_engine *e = ctx;
	json_t *body = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	const char *name = json_string_value(json_object_get(body, "lora_name"));
	if (!name || !*name || strlen(name) >= sizeof(e->dyn[0].name)) {
		me_error(res, 400, "invalid_request_error", "lora_name is required");
	} else if (e->cfg.max_loras == 0) {
		me_error(res, 400, "invalid_request_error", "dynamic LoRA loading is not enabled");
	} else if (me_model_known(e, name)) {
		me_error(res, 400, "invalid_request_error", "the adapter is already loaded");
	} else {
		pthread_mutex_lock(&e->lock);
		bool full = e->n_dyn >= e->cfg.max_loras;
		if (!full) {
			struct me_lora *l = &e->dyn[e->n_dyn++];
			snprintf(l->name, sizeof(l->name), "%s", name);
			l->ready_us = l->used_us = me_now_us();
		}
		pthread_mutex_unlock(&e->lock);
		if (full)
			me_error(res, 400, "invalid_request_error", "the maximum number of adapters is loaded");
		else
			http_response_text(res, 200, "text/plain", "Success");
	}
	json_decref(body);
}

static void me_lora_unload(struct http_request *req, struct http_response *res, void *ctx)
{
	struct mock_engine *e = ctx;
	json_t *body = json_loadb(req->body ? req->body : "", req->body_len, 0, NULL);
	const char *name = json_string_value(json_object_get(body, "lora_name"));
	bool found = false;
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; name && i < e->n_dyn && !found; i++) {
		if (strcmp(e->dyn[i].name, name) == 0) {
			memmove(&e->dyn[i], &e->dyn[i + 1], (e->n_dyn - i - 1) * sizeof(e->dyn[0]));
			e->n_dyn--;
			found = true;
		}
	}
	pthread_mutex_unlock(&e->lock);
	if (found)
		http_response_text(res, 200, "text/plain", "Success");
	else
		me_error(res, 404, "not_found_error", "no such dynamically loaded adapter");
	json_decref(body);
}

int mock_engine_start(struct mock_engine **out, const struct mock_engine_config *cfg,
		      struct nova_err *err)
{
	static const struct {
		const char *method, *path;
		http_handler_fn fn;
	} routes[] = {
		{"POST", "/v1/chat/completions", me_chat},
		{"POST", "/v1/completions", me_text},
		{"POST", "/v1/embeddings", me_embeddings},
		{"GET", "/v1/models", me_models},
		{"GET", "/health", me_health},
		{"GET", "/metrics", me_metrics},
		{"POST", "/admin/health", me_admin_health},
		{"POST", "/admin/errors", me_admin_errors},
		{"POST", "/v1/load_lora_adapter", me_lora_load},
		{"POST", "/v1/unload_lora_adapter", me_lora_unload},
	};
	struct mock_engine *e = calloc(1, sizeof(*e));
	int rc;
	*out = NULL;
	if (!e)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	e->cfg = *cfg;
	e->healthy = !cfg->fail_health;
	e->error_percent = cfg->error_percent;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->seq_lock, NULL);
	pthread_mutex_init(&e->ttft_lock, NULL);
	pthread_cond_init(&e->seq_cond, NULL);
	if (me_cache_init(&e->cache, cfg->prefix_cache_blocks)) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "--prefix-cache-blocks", "out of memory");
		goto fail;
	}
	/* The weights loading: a real engine's port opens once its model is
	 * loaded, so clients (the sidecar's health probe) are refused until
	 * then. */
	if (cfg->startup_ms)
		me_sleep_us((uint64_t)cfg->startup_ms * 1000u);
	/* A thread per connection: a stream sleeps between tokens. */
	struct http_server_config hcfg = {.listen = cfg->listen, .max_body = 4u << 20,
					  .thread_per_connection = true};
	if ((rc = http_server_create(&e->srv, &hcfg, err)))
		goto fail;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if ((rc = http_server_route_add(e->srv, routes[i].method, routes[i].path, routes[i].fn, e,
						err)))
			goto fail;
	if ((rc = http_server_start(e->srv, err)))
		goto fail;
	*out = e;
	return 0;
fail:
	http_server_destroy(e->srv);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->seq_lock);
	pthread_mutex_destroy(&e->ttft_lock);
	pthread_cond_destroy(&e->seq_cond);
	me_cache_free(&e->cache);
	free(e);
	return rc;
}

uint16_t mock_engine_port(const struct mock_engine *e)
{
	return http_server_port(e->srv);
}

void mock_engine_stop(struct mock_engine *e)
{
	if (!e)
		return;
	http_server_destroy(e->srv);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->seq_lock);
	pthread_mutex_destroy(&e->ttft_lock);
	pthread_cond_destroy(&e->seq_cond);
	me_cache_free(&e->cache);
	free(e);
}
