/* nova-router: Nova's data plane. One OpenAI-compatible endpoint in front
 * of every routed model: POST /v1/chat/completions, /v1/completions and
 * /v1/embeddings are passed to a ready replica of the body's "model";
 * GET /v1/models lists what is routable. It learns the routing table from
 * novad's GET /v1/routes/watch and the API keys (their SHA-256 and scopes,
 * never a secret) from GET /v1/router/keys, and never calls novad, nor any
 * database, on a request's path: when novad is away it keeps serving the
 * last table and keys it had, and says so in its log and /metrics. Routers
 * share nothing, so as many run side by side as the traffic needs.
 *
 * Requests: "Authorization: Bearer sk-nova-..." with the inference scope
 * (admin implies it), checked in memory. Errors are OpenAI's shape,
 *   {"error": {"message", "type", "param", "code"}}:
 * no credential or an unknown one 401, a key without the scope 403, an
 * unknown model 404, a body over max_body_bytes 413, a body that is not a
 * JSON object with a string "model" 400, every replica failing 502.
 *
 * A known model with no ready replica (its route has "endpoints": [],
 * inventory/routes.h: scaled to zero, or every replica failed) is not an
 * error at once: the request waits, suspended in its event loop, for a
 * table that gives the route replicas, and starts at once when one comes.
 * At most queue_max requests of one route key wait in one router (the
 * next: 429 "queue_full", rate_limit_error, Retry-After: 1), each at most
 * queue_timeout_ms (then 503 "no_replica", Retry-After: 5; 0: 503 at
 * once); a model that leaves the table meanwhile is 404; a client that
 * goes away is taken out and counted; a router that stops answers its
 * waiting requests 503. (A route whose replicas are all ejected is not
 * waited on: the pick tries them anyway.)
 *
 * Demand: every demand_ms while any count is not zero, once more when they
 * fell to zero, and at once when a request starts waiting where none did,
 * the router posts to novad's POST /v1/router/demand (router scope)
 * {"router": "host:port:pid", "models": {KEY: {"waiting", "in_flight"}}},
 * its requests waiting for a replica and those being answered, per route
 * key; a failure is logged once and retried each period. novad sums the
 * routers' reports for the autoscaler (inventory/demand.h). While any
 * model version had requests in the last 30 s the report also goes every
 * demand_ms, with a member
 *   "versions": {MODEL: {VERSION: {"window_s": 30, "requests", "errors",
 *                                  "ttft_buckets": [12 counts]}}}
 * (router_vstats_report: the model's name, never an adapter's key; only
 * versions with requests in the window), and once more without it when
 * the window has emptied.
 *
 * Tokens: each answer is scanned as it passes (struct router_usage) for
 * its usage, or a stream's chunks, into nova_router_tokens_total.
 *
 * Streams (stream: true) are passed
 * through chunk by chunk as they arrive; a client that goes away cancels
 * the upstream request. A replica that refuses the connection, fails
 * before answering or answers 502/503 is retried on another (at most
 * max_retries times) and ejected from this router's picks with a backoff
 * (1 s doubling to 30 s, reset by a success) before any heartbeat notices;
 * once the first byte went to the client there is no retry: a stream ends
 * with an error event.
 *
 * Picking (router_pick), by the router's --policy, among the route's
 * replicas not ejected (all of them when every one is) and not tried yet
 * by this request. A replica's score is this router's outstanding
 * requests on it (or, when more, the requests its engine last reported
 * running: other routers' too), plus the queue depth it last reported
 * (novad's load hints), plus its reported KV-cache use x ROUTER_KV_WEIGHT.
 *   least-loaded  the lowest score; over ROUTER_PICK_SCAN_MAX replicas,
 *                 the better of two drawn at random (power of two choices).
 *   session       the request's session key (X-Session-Id, else the body's
 *                 "user") on rendezvous hashing with bounded load: the
 *                 replicas in the key's hash order, the first whose
 *                 outstanding requests stay within ROUTER_SESSION_LOAD_FACTOR
 *                 times the route's mean (counting this one). A new replica
 *                 takes over 1/n of the sessions and the others keep theirs;
 *                 no replica takes more than its bounded share. No key:
 *                 least-loaded.
 *   prefix        (the default) the replica that served the longest
 *                 remembered run of the prompt's leading blocks (struct
 *                 router_prefix_map), while its score stays within
 *                 2 x the least score + ROUTER_AFFINITY_SLACK; else, or with
 *                 nothing remembered, least-loaded. The pick is remembered
 *                 for the prompt's blocks, so the next request sharing the
 *                 prefix follows it. A prompt shorter than one block, or a
 *                 request without one (embeddings): least-loaded.
 *   round-robin   each replica in turn: a baseline for benchmarks, blind to
 *                 load and cache.
 *
 * Versions (rolling updates and canaries): each endpoint names the model
 * version its replica runs ("version"; none: ""), and a route may carry a
 * "split" of version -> percent while a canary runs. With a split and
 * endpoints of two versions or more, the pick chooses a version first and
 * then runs the policy among that version's replicas only (so session and
 * prefix affinity stay within a version): with a session key (the session
 * policy's: X-Session-Id, else the body's "user") by a 64-bit hash of the
 * key mod the shares, so one session lands on one version in every router;
 * without one at random. A version with no replica left to try (tried,
 * ejected) gives its share to the others; one the split names without
 * endpoints gets nothing; one it does not name gets nothing unless no
 * other is left. See router_pick and struct router_version.
 *
 * Version statistics: per (model, version), the upstream attempts that
 * finished, those that failed and their time to the first byte, over a
 * sliding window of 30 s (struct router_vstats), reported to novad in the
 * demand report's "versions" member for its automatic rollback, and
 * counted since start on /metrics.
 *
 * LoRA adapters: a body's "model" naming a LoRA adapter (or
 * "model/adapter") routes to the adapter's route. A static adapter's
 * replicas all serve it. A dynamic one's (lora_dynamic, "dynamic": true in
 * the table) can all load it, and the pick prefers those that have it
 * loaded, as their sidecars reported ("adapters_loaded" in the load hints)
 * or as this router knows from having sent it there lately, while the
 * best of them scores within max(2, 25%) of the least loaded replica;
 * else the least loaded, whose engine loads it (vLLM's LoRA resolver, the
 * mock engine's --lora-resolve) and is preferred from then on. */
#ifndef NOVA_ROUTER_ROUTER_H
#define NOVA_ROUTER_ROUTER_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"

#define ROUTER_DEFAULT_LISTEN "127.0.0.1:8430"
/* Read when started without --config and without NOVA_ROUTER_CONFIG, if
 * it exists (core/config.h's cfg_file_pick). */
#define ROUTER_DEFAULT_CONFIG NOVA_SYSCONFDIR "/nova/nova-router.yaml"
#define ROUTER_PICK_SCAN_MAX 4
/* Session affinity's bound: a replica takes a session while its
 * outstanding requests stay within this many times the route's mean (the
 * c of consistent hashing with bounded loads, Mirrokni et al.; 1.25 moves
 * few sessions yet keeps the busiest replica within 25% of the mean). */
#define ROUTER_SESSION_LOAD_FACTOR 1.25
/* Prefix affinity follows the remembered replica while its score is at
 * most 2 x the least score + this: a cached prefix saves its whole
 * prefill, worth a few requests of queue (SGLang's router keeps cache
 * affinity until the imbalance passes an absolute 32 and a relative 1.0001;
 * Nova's bound is tighter at low load and grows with it). */
#define ROUTER_AFFINITY_SLACK 8
/* A replica's reported KV-cache use (0 to 1) counts in its score as that
 * share of this many queued requests: an engine whose cache is full
 * queues or preempts what it is sent next (vLLM), so it weighs like a
 * queue before its queue shows it. */
#define ROUTER_KV_WEIGHT 8
/* A probe of a replica whose ejection ended: how long others wait for its
 * answer before one of them probes instead. */
#define ROUTER_PROBE_MS 2000

enum router_policy {
	ROUTER_POLICY_LEAST_LOADED = 0,
	ROUTER_POLICY_SESSION,
	ROUTER_POLICY_PREFIX,
	ROUTER_POLICY_ROUND_ROBIN,
};

/* Defaults, then the YAML file (--config, else NOVA_ROUTER_CONFIG, else
 * ROUTER_DEFAULT_CONFIG when it exists; its keys are the field names
 * below), then the environment, then flags. */
struct router_config {
	char config_file[1024];     /* the file read, "" for none                   */
	const char *config_source;  /* cfg_file_pick's: "flag", the variable, ...   */
	char gateway[256];          /* gateway:     NOVA_GATEWAY,       --gateway URL   */
	char token[256];            /* token_file:  NOVA_TOKEN,         --token KEY     */
	char listen[128];           /* listen:      NOVA_ROUTER_LISTEN, --listen ADDR   */
	unsigned threads;           /* threads: event loops (0: one per CPU, at most 8) */
	size_t max_body_bytes;      /* max_body_bytes: 8 MiB                            */
	unsigned max_connections;   /* max_connections: client connections, per loop    */
	unsigned idle_timeout_s;    /* idle_timeout_s: a silent client connection, 60   */
	unsigned connect_timeout_ms; /* connect_timeout_ms: to a replica, 2000          */
	unsigned upstream_timeout_ms; /* upstream_timeout_ms: a whole upstream request;
				       * 0 (default): none, streams may be long        */
	unsigned max_retries;       /* max_retries: other replicas tried, 2             */
	unsigned max_upstream_connections; /* max_upstream_connections: to all replicas
				       * together, 4096 (split over the loops); past
				       * it requests wait for a connection to free   */
	unsigned queue_max;         /* queue_max: requests waiting for a replica, per
				     * model, 256 (--queue-max)                     */
	unsigned queue_timeout_ms;  /* queue_timeout_ms: how long one waits, 30000;
				     * NOVA_ROUTER_QUEUE_TIMEOUT_MS, --queue-timeout-ms;
				     * 0: no wait (503 at once)                      */
	unsigned demand_ms;         /* demand_ms: POST /v1/router/demand period, 1000 */
	unsigned keys_poll_ms;      /* keys_poll_ms: GET /v1/router/keys period, 1000   */
	unsigned loads_poll_ms;     /* loads_poll_ms: load hints period, 1000           */
	enum router_policy policy;  /* policy: least-loaded|session|prefix|round-robin  */
	unsigned prefix_block_bytes; /* prefix_block_bytes: the prefix policy's block, 256
				      * (about 64 tokens)                             */
	unsigned prefix_max_blocks; /* prefix_max_blocks: blocks of a prompt hashed, 256 */
	unsigned prefix_memory;     /* prefix_memory: blocks remembered, 262144 (6 MiB) */
	enum nova_log_level log_level; /* log_level: NOVA_LOG_LEVEL                     */
};

void router_config_defaults(struct router_config *cfg);
/* Parse argv (flags, --config FILE first, then the environment under the
 * flags). 0; 1 for --help; NOVA_EINVAL naming the flag, the variable or
 * the file's position (file:line:column). The token is never quoted. */
int router_config_parse(struct router_config *cfg, int argc, char **argv, struct nova_err *err);
/* Only the YAML file, over what cfg holds. */
int router_config_load_file(struct router_config *cfg, const char *path, struct nova_err *err);
/* The whole configuration makes sense (gateway a URL, a token, a listen
 * address, ranges). */
int router_config_check(const struct router_config *cfg, struct nova_err *err);
extern const char router_usage[];
const char *router_policy_name(enum router_policy p);
int router_policy_parse(enum router_policy *out, const char *name);

/* --- the table: what the watch taught, as the request path reads it ------ */

/* One replica as this router sees it. Lives as long as a table holds it;
 * a new table keeps the object of a replica it still has, so the counts
 * survive updates. The atomics are shared by every event loop. */
/* What a replica's engine has of LoRA adapters, as hashes of their names
 * (router_adapter_hash; 0 is an empty slot): the adapters its sidecar last
 * reported loaded ("adapters_loaded" in novad's load hints, the first
 * ROUTER_REPLICA_ADAPTERS of them), and this router's memory of the
 * adapters it sent there lately (the last ROUTER_ADAPTERS_SENT, each
 * remembered ROUTER_ADAPTER_SENT_MS: long enough to bridge the seconds
 * until the engine's report says it, short enough that an adapter the
 * engine evicted meanwhile is not preferred for long). Written by the
 * poll thread and the loops, read by the loops, slot by slot without a
 * lock: a reader that sees a set half rewritten picks as if one adapter
 * were, or were not, there, once. */
#define ROUTER_REPLICA_ADAPTERS 32
#define ROUTER_ADAPTERS_SENT 8
#define ROUTER_ADAPTER_SENT_MS 10000
/* A model version's name: 1 to this many bytes of [A-Za-z0-9._-]. */
#define ROUTER_VERSION_MAX 64
struct router_vstat;

struct router_replica {
	char id[40];
	char url[256];              /* base, no trailing slash */
	uint64_t id_hash;           /* of id: its name for hashing and prefix memory */
	atomic_int refs;
	atomic_int outstanding;     /* requests this router has on it now */
	atomic_int queue_depth;     /* last reported (load hints), rounded */
	atomic_int kv_load;         /* last reported KV-cache use x ROUTER_KV_WEIGHT */
	atomic_int running;         /* last reported requests running on the engine */
	atomic_llong ejected_until_ms; /* CLOCK_MONOTONIC; 0: not ejected */
	atomic_llong probe_until_ms; /* a probe of it is out until then */
	atomic_int failures;        /* in a row, for the backoff */
	atomic_uint_least64_t adapters[ROUTER_REPLICA_ADAPTERS];
	atomic_uint_least64_t sent[ROUTER_ADAPTERS_SENT];
	atomic_llong sent_ms[ROUTER_ADAPTERS_SENT];
	atomic_uint sent_next;
	/* The model version it runs (its endpoint's "version"; "" when none
	 * or not a version name: router_version_valid). A replica keeps its
	 * version for life: an endpoint of the same id with another version
	 * is another object, as one with another URL is. */
	char version[ROUTER_VERSION_MAX + 1];
	/* Its (model, version)'s statistics, shared by the replicas of that
	 * version and held (a reference) while this object lives; NULL when
	 * the version is "" or the registry is full or absent. */
	struct router_vstat *vstat;
};

/* The replicas of one version in a route with a split in force. */
struct router_version {
	char name[ROUTER_VERSION_MAX + 1]; /* "" for endpoints without one */
	unsigned percent;           /* its share in the split; 0 when not named */
	size_t n;
	struct router_replica **replicas; /* a subset of the route's, by reference */
};

struct router_route {
	char *key;                  /* model, or model/adapter */
	char *model;
	char *adapter;              /* NULL for the base model */
	bool dynamic;               /* an adapter its replicas load on demand */
	size_t n;
	struct router_replica **replicas;
	atomic_uint next;           /* round-robin's turn */
	/* A split in force: the route has a valid "split" and endpoints of two
	 * versions or more. Only then are versions filled: every version its
	 * endpoints run, sorted by name (strcmp), with the split's share of
	 * each (a version the split names without endpoints is not there: its
	 * share goes to the others). */
	bool split;
	size_t n_versions;
	struct router_version *versions;
};

/* An immutable table, shared by reference. */
struct router_table {
	atomic_int refs;
	long long version;          /* the watch's version */
	size_t n;
	struct router_route *routes; /* sorted by key */
};

/* Build a table from the routes the watch taught, as a JSON object key ->
 * route ({"model", "adapter", "endpoints": [{"url", "replica",
 * "version", ...}], "split": {VERSION: PERCENT}}), reusing prev's replica
 * objects (prev may be NULL). A new replica object of a version takes its
 * (model, version) entry of vstats (NULL: no statistics). NULL when out of
 * memory. Routes or endpoints that do not have the expected shape are left
 * out (and counted in *skipped, which may be NULL); so is a split that is
 * not an object of version names to integers 0..100 (the route is kept,
 * without a split). The shares need not sum to 100: a version's share is
 * its percent over the sum of those that can take the request. */
struct router_vstats;
struct router_table *router_table_build(const json_t *routes_by_key, long long version,
					const struct router_table *prev,
					struct router_vstats *vstats, size_t *skipped);
/* Whether v is a version name (1..ROUTER_VERSION_MAX bytes of
 * [A-Za-z0-9._-]). */
bool router_version_valid(const char *v);
/* The key of a route object as the table files it: "model" or
 * "model/adapter"; false when the object has no model. */
bool router_route_key(char *out, size_t len, const json_t *route);
void router_table_unref(struct router_table *t);
const struct router_route *router_table_find(const struct router_table *t, const char *key);

/* --- prefix memory --------------------------------------------------------- */

/* Which replica served which prompt blocks: a fixed number of entries
 * (block hash -> replica id_hash), 4-way set associative, the least
 * recently written of a set replaced; striped locks, shared by every event
 * loop. A replica is remembered by its id's hash, never a pointer, so a
 * replica that left the table is simply not found among the candidates. */
struct router_prefix_map;
/* entries: rounded up to a power of two, at least 64. NULL when out of
 * memory. */
struct router_prefix_map *router_prefix_map_create(size_t entries);
void router_prefix_map_destroy(struct router_prefix_map *m);
/* The longest remembered run: the number of leading blocks of h[0..n)
 * whose last is remembered (0: none), and that block's replica in
 * *replica. */
size_t router_prefix_lookup(struct router_prefix_map *m, const uint64_t *h, size_t n,
			    uint64_t *replica);
/* Remember h[from..n) as served by replica. */
void router_prefix_remember(struct router_prefix_map *m, const uint64_t *h, size_t from, size_t n,
			    uint64_t replica);
/* The prefix hashes of a request body for route key `key` (so equal
 * prompts to different models are different prefixes): of the canonical
 * prompt text (core/prompt.h; chat when chat, else a completion), in
 * blocks of block_bytes, at most max. *out is malloc'd (NULL, 0 when the
 * body has no prompt or it is shorter than a block). false: out of
 * memory. */
bool router_prefix_hashes(const json_t *body, bool chat, const char *key, size_t block_bytes,
			  size_t max, uint64_t **out, size_t *n);

/* --- picking ---------------------------------------------------------------- */

/* What a policy picks by; any may be empty. */
struct router_pick_hint {
	const char *session;        /* X-Session-Id, else the body's "user" */
	const uint64_t *prefix;     /* chain hashes of the prompt's leading blocks */
	size_t n_prefix;
	struct router_prefix_map *prefixes; /* prefix policy: the memory read and taught */
	const char *adapter;        /* LoRA adapter asked for */
};

/* The replica to try, skipping those in `tried` (n_tried of them), or
 * NULL when none is left. rnd: a random 64-bit value (the caller's, so
 * tests are repeatable). With the prefix policy the pick is remembered in
 * hint->prefixes for hint->prefix.
 *
 * With a split in force (route->split) the version comes first. Of the
 * route's versions, those with a replica that can take the request (not
 * tried, not ejected, or half open with no probe out); when none has, those
 * with a replica not tried (ejected: the panic rule below, within the
 * version). Among them, by their shares: with hint->session (whatever the
 * policy) prompt_hash(session) mod the sum of their shares, against the
 * cumulative shares in name order, so a session keeps its version in
 * every router while the versions it can take stay the same (with the
 * shares summing to 100: the hash mod 100); without, a draw from rnd.
 * When none of them has a share (versions the split does not name, or
 * names at 0), equal shares among them. Then the policy runs on the
 * version's replicas alone, as below. The prefix policy's memory is kept
 * per version there (its block hashes salted with the version's name), so
 * two versions serving one prompt do not take its memory from each other.
 * Without a split, nothing of this runs: no allocation, no extra pass. */
struct router_replica *router_pick(const struct router_route *route, enum router_policy policy,
				   const struct router_pick_hint *hint,
				   struct router_replica *const *tried, size_t n_tried,
				   long long now_ms, uint64_t rnd);
/* A failure before the first byte: ejected for 1 s, doubling to 30 s
 * with each failure after the last ejection ended (failures while it is
 * ejected, of requests sent before, count as one: false, no new
 * ejection). When the backoff is over, the replica is half open: the
 * next pick sends one request to it (a probe), and others pass it by
 * until the probe succeeds (router_replica_succeeded: back in full),
 * fails (ejected again, for twice as long), or ROUTER_PROBE_MS pass
 * without an answer (another probe). */
bool router_replica_eject(struct router_replica *r, long long now_ms);
/* LoRA adapters (see struct router_replica): a name's hash, never 0; the
 * set a replica's sidecar reported (n names, the first
 * ROUTER_REPLICA_ADAPTERS kept); a request for adapter sent to r now;
 * whether r has adapter loaded, reported or sent lately. */
uint64_t router_adapter_hash(const char *name);
void router_replica_adapters_set(struct router_replica *r, const char *const *names, size_t n);
void router_replica_adapter_sent(struct router_replica *r, const char *adapter, long long now_ms);
bool router_replica_has_adapter(struct router_replica *r, uint64_t hash, long long now_ms);
void router_replica_succeeded(struct router_replica *r);

/* --- version statistics ----------------------------------------------------- */

/* Per (model, version): the upstream attempts that finished (answered or
 * failed; an attempt the client cancelled counts once the replica's status
 * came, not before), those that failed (no connection, a reset or a
 * timeout before or during the answer, a stream broken midway, a status
 * >= 500), and their time to the first byte (from the request sent to the
 * replica to its first body byte: a stream's first chunk) in
 * ROUTER_TTFT_BUCKETS buckets, over a sliding window of ROUTER_VSTATS_SLOTS
 * slots of ROUTER_VSTATS_SLOT_MS (30 s): a slot is stamped with its epoch
 * (now_ms / ROUTER_VSTATS_SLOT_MS) and reset when an attempt of a later
 * epoch lands in it; the window is the slots of the last
 * ROUTER_VSTATS_SLOTS epochs, this one included. Also counted since start
 * (for /metrics). Entries live in a registry of at most max, found by
 * (model, version) at table build and referenced by the replica objects,
 * so a replica leaving the table loses nothing of its version's window;
 * an entry no replica references and with nothing in its window is freed
 * for reuse at the next report. An entry's counts take its own mutex
 * (held for a few adds): the loops update concurrently. Rejected: atomics
 * per count (fourteen of them per attempt, and a slot's reset racing
 * with adds); counts per replica summed at report (a replica that left
 * would take its counts with it). */
#define ROUTER_VSTATS_MAX 4096
#define ROUTER_VSTATS_SLOTS 6
#define ROUTER_VSTATS_SLOT_MS 5000
#define ROUTER_VSTATS_WINDOW_S (ROUTER_VSTATS_SLOTS * ROUTER_VSTATS_SLOT_MS / 1000)
/* Upper bounds in ms (a time equal to a bound is in its bucket), then
 * +Inf: counts per bucket, not cumulative. */
#define ROUTER_TTFT_BUCKETS 12
extern const long long router_ttft_bounds_ms[ROUTER_TTFT_BUCKETS - 1];
/* The bucket of a time to the first byte, 0..ROUTER_TTFT_BUCKETS - 1. */
size_t router_ttft_bucket(long long ms);

/* NULL when out of memory. Destroy after every table built with it. */
struct router_vstats *router_vstats_create(size_t max);
void router_vstats_destroy(struct router_vstats *s);
/* One attempt finished at now_ms: failed or not, and its time to the first
 * byte in ms when it had one and answered with a status < 500 (else -1:
 * none). e may be NULL (nothing counted). */
void router_vstat_record(struct router_vstat *e, long long now_ms, bool failed, long long ttft_ms);
/* The window at now_ms as the demand report's "versions" member:
 * {MODEL: {VERSION: {"window_s", "requests", "errors", "ttft_buckets"}}},
 * each count at most 1e9; only versions with requests in the window. NULL
 * when there is none (or out of memory). Entries no replica references
 * and with nothing in the window are freed here. */
json_t *router_vstats_report(struct router_vstats *s, long long now_ms);
/* Each entry's counts since start, for /metrics (under the registry's
 * lock: fn must not call back into it). */
void router_vstats_totals(struct router_vstats *s,
			  void (*fn)(void *ctx, const char *model, const char *version,
				     unsigned long long requests, unsigned long long errors),
			  void *ctx);

/* --- keys ----------------------------------------------------------------- */

struct router_keys;
/* From GET /v1/router/keys's body; NULL when it does not parse. */
struct router_keys *router_keys_parse(const char *text, size_t len);
struct router_keys *router_keys_ref(struct router_keys *k);
void router_keys_unref(struct router_keys *k);
size_t router_keys_count(const struct router_keys *k);
enum router_key_verdict {
	ROUTER_KEY_OK = 0,
	ROUTER_KEY_UNKNOWN,   /* 401: not a key novad has (or revoked) */
	ROUTER_KEY_EXPIRED,   /* 401 */
	ROUTER_KEY_FORBIDDEN, /* 403: a key without the inference scope */
};
enum router_key_verdict router_keys_check(const struct router_keys *k, const char *token,
					  long long now_s);

/* --- tokens in answers --------------------------------------------------- */

/* Prompt and completion tokens read from an answer as it passes, byte by
 * byte, without keeping it: the "prompt_tokens" and "completion_tokens"
 * members (of OpenAI's usage object: a non-streamed answer's, or a
 * stream's last chunk with stream_options.include_usage), and for a
 * stream the data events carrying a choice ("choices": [{...}], a delta
 * or a text). A member split across reads is still found: the scanner's
 * state is where it stands in each pattern, not a copy of the bytes (the
 * "small tail" is the state itself). A key is matched only whole and
 * unescaped: inside a JSON string its quotes would be \", which ends the
 * match. Zero-initialise, or router_usage_init. */
struct router_usage {
	long long prompt_tokens;     /* -1: not seen */
	long long completion_tokens; /* -1: not seen */
	unsigned long long choice_events; /* SSE events with a choice */
	/* the scanner's state */
	unsigned char pos[3];        /* matched length of each key pattern */
	unsigned char key;           /* 1 + the pattern matched, 0: none */
	unsigned char phase;         /* after the key: 0 ':', 1 value, 2 number, 3 '[', 4 '{' */
	bool event_choice;           /* the current SSE event carries a choice */
	unsigned line_len;           /* of the current line ('\r' not counted) */
	long long num;
};
void router_usage_init(struct router_usage *u);
void router_usage_feed(struct router_usage *u, const char *p, size_t len);
/* The tokens to count: the usage object's when one was seen; else, for a
 * stream, a completion token per choice event (the last event is counted
 * even without its blank line), and 0 prompt tokens. */
void router_usage_tokens(long long *prompt, long long *completion, const struct router_usage *u,
			 bool stream);

/* --- the program ---------------------------------------------------------- */

struct router;
int router_create(struct router **out, const struct router_config *cfg, struct nova_err *err);
/* Start the event loops (listening) and the watch and poll threads. */
int router_start(struct router *r, struct nova_err *err);
/* The bound port (after start; useful with port 0). */
uint16_t router_port(const struct router *r);
/* Stop everything started; idempotent. */
void router_stop(struct router *r);
void router_destroy(struct router *r);

#endif
