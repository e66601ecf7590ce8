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
 * JSON object with a string "model" 400, no ready replica 503 with
 * Retry-After, every replica failing 502. Streams (stream: true) are passed
 * through chunk by chunk as they arrive; a client that goes away cancels
 * the upstream request. A replica that refuses the connection, fails
 * before answering or answers 502/503 is retried on another (at most
 * max_retries times) and ejected from this router's picks with a backoff
 * (1 s doubling to 30 s, reset by a success) before any heartbeat notices;
 * once the first byte went to the client there is no retry: a stream ends
 * with an error event.
 *
 * Picking (router_pick): among the route's replicas not ejected (all of
 * them when every one is), the lowest score, where a score is this
 * router's outstanding requests on the replica plus the queue depth the
 * replica last reported (novad's load hints); over ROUTER_PICK_SCAN_MAX
 * replicas, the better of two drawn at random (power of two choices). The
 * pick takes a struct router_pick_hint, the place for the session key,
 * the prompt's prefix hashes and the LoRA adapter of later policies.
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

#include "core/err.h"
#include "core/log.h"

#define ROUTER_DEFAULT_LISTEN "127.0.0.1:8430"
#define ROUTER_PICK_SCAN_MAX 4

enum router_policy {
	ROUTER_POLICY_LEAST_LOADED = 0,
	/* Named now so configurations can say them; they pick as least-loaded
	 * until session and prefix affinity land (issue 15). */
	ROUTER_POLICY_SESSION,
	ROUTER_POLICY_PREFIX,
};

/* Defaults, then the YAML file (--config; its keys are the field names
 * below), then the environment, then flags. */
struct router_config {
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
	unsigned keys_poll_ms;      /* keys_poll_ms: GET /v1/router/keys period, 1000   */
	unsigned loads_poll_ms;     /* loads_poll_ms: load hints period, 1000           */
	enum router_policy policy;  /* policy: least-loaded | session | prefix          */
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

struct router_replica {
	char id[40];
	char url[256];              /* base, no trailing slash */
	atomic_int refs;
	atomic_int outstanding;     /* requests this router has on it now */
	atomic_int queue_depth;     /* last reported (load hints), rounded */
	atomic_llong ejected_until_ms; /* CLOCK_MONOTONIC; 0: not ejected */
	atomic_int failures;        /* in a row, for the backoff */
	atomic_uint_least64_t adapters[ROUTER_REPLICA_ADAPTERS];
	atomic_uint_least64_t sent[ROUTER_ADAPTERS_SENT];
	atomic_llong sent_ms[ROUTER_ADAPTERS_SENT];
	atomic_uint sent_next;
};

struct router_route {
	char *key;                  /* model, or model/adapter */
	char *model;
	char *adapter;              /* NULL for the base model */
	bool dynamic;               /* an adapter its replicas load on demand */
	size_t n;
	struct router_replica **replicas;
};

/* An immutable table, shared by reference. */
struct router_table {
	atomic_int refs;
	long long version;          /* the watch's version */
	size_t n;
	struct router_route *routes; /* sorted by key */
};

/* Build a table from the routes the watch taught, as a JSON object key ->
 * route ({"model", "adapter", "endpoints": [{"url", "replica", ...}]}),
 * reusing prev's replica objects (prev may be NULL). NULL when out of
 * memory. Routes or endpoints that do not have the expected shape are left
 * out (and counted in *skipped, which may be NULL). */
struct router_table *router_table_build(const json_t *routes_by_key, long long version,
					const struct router_table *prev, size_t *skipped);
/* The key of a route object as the table files it: "model" or
 * "model/adapter"; false when the object has no model. */
bool router_route_key(char *out, size_t len, const json_t *route);
void router_table_unref(struct router_table *t);
const struct router_route *router_table_find(const struct router_table *t, const char *key);

/* What a later policy picks by; all may be empty now. */
struct router_pick_hint {
	const char *session;        /* X-Session-Id, else the body's "user" */
	const uint64_t *prefix;     /* hashes of the prompt's leading blocks */
	size_t n_prefix;
	const char *adapter;        /* LoRA adapter asked for */
};

/* The replica to try, skipping those in `tried` (n_tried of them), or
 * NULL when none is left. rnd: a random 64-bit value (the caller's, so
 * tests are repeatable). */
struct router_replica *router_pick(const struct router_route *route, enum router_policy policy,
				   const struct router_pick_hint *hint,
				   struct router_replica *const *tried, size_t n_tried,
				   long long now_ms, uint64_t rnd);
/* A failure before the first byte: ejected for 1 s, doubling to 30 s
 * with each failure after the last ejection ended (failures while it is
 * ejected, of requests sent before, count as one). */
void router_replica_eject(struct router_replica *r, long long now_ms);
/* LoRA adapters (see struct router_replica): a name's hash, never 0; the
 * set a replica's sidecar reported (n names, the first
 * ROUTER_REPLICA_ADAPTERS kept); a request for adapter sent to r now;
 * whether r has adapter loaded, reported or sent lately. */
uint64_t router_adapter_hash(const char *name);
void router_replica_adapters_set(struct router_replica *r, const char *const *names, size_t n);
void router_replica_adapter_sent(struct router_replica *r, const char *adapter, long long now_ms);
bool router_replica_has_adapter(struct router_replica *r, uint64_t hash, long long now_ms);
void router_replica_succeeded(struct router_replica *r);

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
