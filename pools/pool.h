/* Pools: named, configured instances of a provider, with quotas and a
 * lifecycle, and the nodes they hold.
 *
 * A pool's config is validated through its provider's adapter at creation
 * (a bad config is refused then, naming the field under "config."). A pool
 * with live nodes is not deleted unless forced; a forced delete marks the pool
 * `deleting` first (so nothing new lands on it), drains and deprovisions each
 * node through the adapter, then removes the pool. A crash midway leaves the
 * pool `deleting`, and repeating the delete finishes the job.
 *
 * Warm capacity: a pool whose provider makes nodes on demand (kubernetes;
 * adapter_config_ephemeral) may keep `warm_nodes` of them provisioned, with
 * their sidecar up and nothing assigned, so a scale-up lands on one at once
 * instead of waiting for a node to be made. The number is the pool's
 * (top-level beside quotas, not inside them: quotas are limits, this is a
 * target), refused naming "warm_nodes" for a provider whose nodes exist
 * anyway (lpu racks, ssh hosts, the fake in static mode) and above
 * quotas.max_nodes. Keeping it is the reconciler's (deployments/
 * reconciler.h): it provisions the missing ones (pool_node_add, then
 * pool_node_provision, the worker's own path) and its idle duty spares up
 * to warm_nodes idle nodes (pool_nodes_idle_mark's keep). */
#ifndef NOVA_POOLS_POOL_H
#define NOVA_POOLS_POOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "adapters/adapter.h"
#include "audit/audit.h"
#include "core/db.h"
#include "core/err.h"

#define POOL_ID_LEN 37
#define POOL_NAME_MAX 64
/* The most warm_nodes a pool may ask for (sql/0018 checks it too). */
#define POOL_WARM_NODES_MAX 100

/* A pool's state (pools.state). */
enum pool_state {
	POOL_ACTIVE = 0,
	POOL_DELETING,
};

/* A node's state (nodes.state): the one spelling of the states every
 * module uses. The transitions the state machine allows are the
 * database's to enforce (sql/0001_init.sql); these are only the names. */
enum pool_node_state {
	POOL_NODE_PROVISIONING = 0,
	POOL_NODE_READY,
	POOL_NODE_UNHEALTHY,
	POOL_NODE_DRAINING,
	POOL_NODE_TERMINATING,
	POOL_NODE_TERMINATED,
	POOL_NODE_FAILED,
};
#define POOL_NODE_STATE_COUNT 7

/* The state's name as stored and shown ("ready"). */
const char *pool_state_name(enum pool_state s);
const char *pool_node_state_name(enum pool_node_state s);
/* NOVA_EINVAL for a name that is no state. */
int pool_state_parse(enum pool_state *out, const char *name);
int pool_node_state_parse(enum pool_node_state *out, const char *name);

/* A quota of -1 means unlimited. */
struct pool_quotas {
	long long max_nodes;
	long long max_accelerators;
	json_t *accelerator_types; /* array of strings; empty: any */
};

struct pool {
	char id[POOL_ID_LEN];
	char name[POOL_NAME_MAX];
	char provider[33];
	json_t *config;            /* object */
	json_t *labels;            /* object of strings */
	struct pool_quotas quotas;
	enum pool_state state;
	long long node_count;      /* nodes not yet terminated */
	char created_at[40];
	char updated_at[40];
	/* The machine its nodes live on (core/ids.h), for a provider whose
	 * nodes are the machine's processes (adapter_ops.machine_bound): set
	 * at creation to the creating novad's. "": any novad reaches them. */
	char machine[65];
	/* Idle nodes kept provisioned (0: none); see the top of this file. */
	unsigned warm_nodes;
};

/* Whether this novad may act on the pool's nodes through its provider:
 * the pool is bound to no machine, or to this one. */
bool pool_is_here(const struct pool *p);

/* What a create request carries. The json_t members are borrowed. */
struct pool_spec {
	const char *name;
	const char *provider;
	const json_t *config;      /* NULL: {} */
	const json_t *labels;      /* NULL: {} */
	struct pool_quotas quotas;
	unsigned warm_nodes;
};

/* A change of a pool (PATCH): quotas and warm_nodes; each field applies
 * only when its has_ flag is set. */
struct pool_patch {
	bool has_max_nodes, has_max_accelerators, has_accelerator_types;
	struct pool_quotas quotas;
	bool has_warm_nodes;
	unsigned warm_nodes;
};

/* Decode a create request body strictly (names, types, unknown fields). */
int pool_spec_from_json(struct pool_spec *out, const json_t *body, struct nova_err *err);
/* A PATCH body: {"quotas": {...}, "warm_nodes": N}, at least one of them. */
int pool_patch_from_json(struct pool_patch *out, const json_t *body, struct nova_err *err);

/* The changes below take the request's audit note (audit/audit.h), which
 * they record in the change's own transaction; NULL for a change novad
 * makes itself. */

/* NOVA_EINVAL (bad name, unknown provider, config refused by the adapter,
 * warm_nodes on a static provider or above quotas.max_nodes), NOVA_EEXISTS
 * (name taken). A pool made with warm_nodes gets a pool event saying so. */
int pool_create(struct pool **out, struct db_pool *db, const struct pool_spec *spec,
		struct audit_note *audit, struct nova_err *err);
/* by_ref: a pool id (uuid) or a name. */
int pool_get(struct pool **out, struct db_pool *db, const char *ref, struct nova_err *err);
int pool_list(struct pool ***out, size_t *n_out, struct db_pool *db, struct nova_err *err);
/* NOVA_EINVAL for warm_nodes on a static provider, or warm_nodes above
 * quotas.max_nodes once the patch applies (naming "warm_nodes" when the
 * patch sets it, else "quotas.max_nodes"); NOVA_ECONFLICT while the pool is
 * being deleted. A change of warm_nodes is a pool event ("warm_nodes 2 ->
 * 0"), in the change's transaction. */
int pool_update(struct pool **out, struct db_pool *db, const char *ref,
		const struct pool_patch *patch, struct audit_note *audit, struct nova_err *err);
/* What uses pools from a module above them (deployments): pools does not
 * read its tables, the caller hands in how to count them. count runs inside
 * the delete's transaction, after the pool row is locked, so a user
 * committed meanwhile is counted. */
struct pool_users {
	const char *noun;  /* one of them, for the message: "deployment" */
	const char *hint;  /* what to do first: "delete its deployments first" */
	int (*count)(long long *out, struct db_conn *c, const char *pool_id, struct nova_err *err);
};

/* NOVA_ECONFLICT when users (may be NULL) count any, or when the pool has
 * live nodes and !force. The audit row is written with the intent (the
 * pool marked deleting). */
int pool_delete(struct db_pool *db, const char *ref, bool force, const struct pool_users *users,
		struct audit_note *audit, struct nova_err *err);

void pool_free(struct pool *p);
void pool_list_free(struct pool **pools, size_t n);
/* New JSON object in the API's shape. */
json_t *pool_to_json(const struct pool *p);

/* --- nodes ------------------------------------------------------------ */

struct pool_node_spec {
	const char *name;
	const char *handle;           /* provider's name, may be NULL */
	const char *accelerator_type; /* may be NULL */
	unsigned accelerator_count;
	unsigned long long accelerator_memory_mib;
	const json_t *labels;         /* may be NULL */
};

/* Write a node row in state `provisioning` (the intent, before any provider
 * call), with a fresh node token whose hash is stored. token_out (may be
 * NULL) receives the token; id_out the node id. */
int pool_node_add(char id_out[POOL_ID_LEN], char *token_out, size_t token_len,
		  struct db_pool *db, const char *pool_id, const struct pool_node_spec *spec,
		  struct nova_err *err);
/* Issue the node a new token (its hash replaces the old one, which stops
 * working). Called before each provision call: the token is shown only
 * then, to the adapter that hands it to the sidecar. */
int pool_node_token_issue(char *token_out, size_t token_len, struct db_pool *db,
			  const char *node_id, struct nova_err *err);
/* Move a node to state `to` with a reason. The database refuses transitions
 * the state machine does not allow (NOVA_EINVAL); entering `terminated`
 * revokes the node token. */
int pool_node_transition(struct db_pool *db, const char *node_id, enum pool_node_state to,
			 const char *reason, struct nova_err *err);
/* A node as the engine sees it. */
struct pool_node {
	char id[POOL_ID_LEN];
	char name[254];
	char handle[256];          /* "" until the provider named it */
	enum pool_node_state state;
	bool cordoned;
	char accelerator_type[64];
	unsigned accelerator_count;
	unsigned long long accelerator_memory_mib;
	json_t *labels;            /* owned */
	/* The node's address as its provider knows it ("" until known): an
	 * lpu agent's 127.0.0.1, an ssh host's address, a pod's IP. The
	 * inventory takes the node's replica endpoints on this host only. */
	char endpoint[256];
};

/* Walk one node down the state machine to terminated (draining,
 * terminating), deprovisioning it through ad before the last step: the one
 * retire walk (a forced pool delete; the reconciler's removal of failed,
 * drained and idle nodes). n->state is the state the node is in. A failure
 * leaves the node where the walk stopped (terminating when the provider
 * could not deprovision it), so walking it again finishes the job. */
int pool_node_retire(struct db_pool *db, struct adapter *ad, const struct pool_node *n,
		     const char *reason, struct nova_err *err);
/* Provision a node whose row exists (pool_node_add wrote the intent; a
 * crash left it provisioning) through ad: the one provisioning path, the
 * worker's and the reconciler's warm nodes. Under the node's lease
 * (pool_node_lease_take, lease_ms): when another caller holds it (it is
 * provisioning the node now) this returns 0 and does nothing. A fresh
 * token is issued for the call (only its hash is stored, so a retry after
 * a crash cannot reuse the one a dead caller held) and handed to the
 * provider with gateway_url; on success the provider's handle and address
 * are recorded and the node is ready with `reason`. The adapter's errors
 * are returned: NOVA_EFAILED fails the node with the provider's message,
 * NOVA_EAGAIN leaves it provisioning for a retry. */
int pool_node_provision(struct db_pool *db, struct adapter *ad, const struct pool_node *n,
			const char *gateway_url, unsigned lease_ms, const char *reason,
			struct nova_err *err);
/* Nodes of a pool that are not terminated, oldest first. */
int pool_nodes_list(struct pool_node **out, size_t *n_out, struct db_pool *db,
		    const char *pool_id, struct nova_err *err);
void pool_nodes_free(struct pool_node *nodes, size_t n);
/* Take the right to call the provider for a node in state `state`, for
 * lease_ms: *got is false when the node is in another state or another
 * caller holds an unexpired lease (it is provisioning the node now, and a
 * second call would race it: two agents, a token each). */
int pool_node_lease_take(bool *got, struct db_pool *db, const char *node_id,
			 enum pool_node_state state, unsigned lease_ms, struct nova_err *err);
/* Give the lease back (after the call, whatever its outcome). */
int pool_node_lease_release(struct db_pool *db, const char *node_id, struct nova_err *err);
/* Say why a node is as it is without changing its state (the provider's
 * words on a resource still pending); a no-op when it already says so. */
int pool_node_note(struct db_pool *db, const char *node_id, const char *reason,
		   struct nova_err *err);
/* A failed node's fate in a reconcile pass. A node failed for silence (the
 * health sweep's "no heartbeat" reasons) whose agent beat again after the
 * failure was judged wrongly or came back: it is made ready again, its
 * replicas untouched (REVIVED). One failed for silence less than wait_ms
 * ago, or than 3 of the heartbeat intervals it was last told (sql/0023)
 * when longer, may still be heard from (WAIT: leave it this pass). Any other is
 * gone (RETIRE: replace its replicas, deprovision it). */
enum pool_failed_fate {
	POOL_FAILED_RETIRE,
	POOL_FAILED_WAIT,
	POOL_FAILED_REVIVED,
};
int pool_node_failed_fate(enum pool_failed_fate *out, struct db_pool *db, const char *node_id,
			  unsigned wait_ms, struct nova_err *err);
/* Record an event of a pool that is no node's or deployment's transition
 * (kind: lower case and underscores, e.g. "brake_engaged"). */
int pool_event_record(struct db_pool *db, const char *pool_id, const char *kind,
		      const char *message, struct nova_err *err);
/* The same, unless the pool's newest event is this one (same kind and
 * message): a finding a duty repeats every pass (a warm node that cannot
 * be provisioned) is one event until something else happens. */
int pool_event_record_once(struct db_pool *db, const char *pool_id, const char *kind,
			   const char *message, struct nova_err *err);

/* Recorded node transitions and pool events (GET /v1/events), each as
 * {"source": "node"|"pool", "seq", "object", "object_id", "pool", "kind"
 * ("transition", or the pool event's kind), "from", "to", "reason", "at",
 * "at_us"}; seq is the row's id in its own table (the cursor), at_us the
 * time in microseconds (to merge with other sources; the caller drops it).
 * In seq order; with newest, the newest `limit` of each source, else the
 * first `limit` past the cursor. */
struct pool_events_query {
	const char *pool_id;   /* NULL: every pool */
	const char *node_id;   /* NULL: every node; set: its transitions only */
	bool node_events, pool_events; /* which sources to read */
	long long since_s;     /* 0: no bound; else at >= since (epoch seconds) */
	long long after_node, after_pool; /* the cursor: seqs already seen */
	bool newest;
	int limit;
};
int pool_events_read(json_t **out, struct db_pool *db, const struct pool_events_query *q,
		     struct nova_err *err);
/* A node's id by id or name (a live node's name; a name two live nodes
 * share is NOVA_ECONFLICT), NOVA_ENOTFOUND when none. */
int pool_node_id(char id[POOL_ID_LEN], struct db_pool *db, const char *ref, struct nova_err *err);

/* Record what the provider said about a node it created or claimed: its
 * handle and its address (adapter_node_info.endpoint; NULL or "" keeps
 * what is recorded). */
int pool_node_set_provider_info(struct db_pool *db, const char *node_id, const char *handle,
				const char *endpoint, struct nova_err *err);

/* Nodes of the pool in `provisioning` for longer than seconds go to
 * `failed` with the reason; *failed (may be NULL) receives how many. */
int pool_nodes_fail_stuck(unsigned *failed, struct db_pool *db, const char *pool_id,
			  unsigned seconds, const char *reason, struct nova_err *err);

/* Live (not terminated) nodes counted by pool and state, for /metrics: an
 * array of {"pool", "state", "n"}. */
int pool_node_counts(json_t **out, struct db_pool *db, struct nova_err *err);

/* The API's JSON for nodes: every live node (of one pool when pool_ref is
 * not NULL), or one node by id or name (a name shared by nodes of two pools
 * is NOVA_ECONFLICT: use the id) with its recent state changes. */
int pool_nodes_json(json_t **out, struct db_pool *db, const char *pool_ref, struct nova_err *err);
int pool_node_json(json_t **out, struct db_pool *db, const char *ref, struct nova_err *err);
/* Cordon (no new replicas) or uncordon a node; uncordoning a draining node
 * returns it to ready. */
int pool_node_cordon(json_t **out, struct db_pool *db, const char *ref, bool cordoned,
		     struct audit_note *audit, struct nova_err *err);
/* Drain: cordon, and move the node to `draining`; the reconciler moves its
 * replicas elsewhere. NOVA_ECONFLICT unless the node is ready or unhealthy. */
int pool_node_drain(json_t **out, struct db_pool *db, const char *ref, struct audit_note *audit,
		    struct nova_err *err);

/* --- what other modules write about nodes, through their owner ---------- */

/* A node whose state a change below moved, and the state it is in now. */
struct pool_node_mark {
	char id[POOL_ID_LEN];
	enum pool_node_state state;
};

/* The inventory's health sweep, inside the caller's transaction on c:
 * nodes of `unhealthy` (a uuid[] literal, "{...}") that are ready go
 * unhealthy, nodes of `failed` that are ready or unhealthy go failed, each
 * with its reason. A node row another transaction holds is skipped (a
 * placement or a transition is writing it: the sweep never waits, so it
 * cannot deadlock with them), as is one in any other state. *out (freed
 * with free()) lists the nodes that changed.
 *
 * The other direction is the SQL function pool_nodes_heard(uuid[])
 * (sql/0016), which the inventory's flush calls in the statement that
 * records the beats: unhealthy nodes that beat again are ready. */
int pool_nodes_mark_silent(struct pool_node_mark **out, size_t *n_out, struct db_conn *c,
			   const char *unhealthy, const char *unhealthy_reason, const char *failed,
			   const char *failed_reason, struct nova_err *err);

/* The reconciler's idle bookkeeping for a pool of ephemeral nodes: a ready
 * node that holds nothing (it is not in `busy`, a uuid[] literal of the
 * pool's nodes that hold replicas) is idle since now unless it already
 * was; one that holds something again is not idle. Up to `keep` idle,
 * uncordoned nodes (the oldest: the same ones pass after pass) are kept
 * warm: their reason says "kept warm (warm_nodes <keep>)" (unless it says
 * something of the provider's, a pod still pending) and their idle clock
 * restarts, so a node no longer kept gets the whole grace from then.
 * A node kept (or provisioned) warm before that now holds something says
 * "taken from the warm nodes"; one no longer kept says so. *idle (freed with free())
 * lists the other ready nodes idle for grace_s or longer and not busy: the
 * reconciler retires them. */
int pool_nodes_idle_mark(char (**idle)[POOL_ID_LEN], size_t *n_idle, struct db_pool *db,
			 const char *pool_id, const char *busy, unsigned grace_s, unsigned keep,
			 struct nova_err *err);

/* A node locked for a placement, as the placement's check needs it. */
struct pool_node_room {
	char id[POOL_ID_LEN];
	bool schedulable;            /* ready and not cordoned */
	unsigned accelerator_count;
};

/* Lock the nodes of ids (a uuid[] literal) in id order for the rest of the
 * caller's transaction on c, so that two placements on one node serialize
 * and the second sees what the first committed; *out (freed with free())
 * says of each node found whether it takes replicas and how many
 * accelerators it has. What its placements already use is the caller's
 * (deployments') to add up. */
int pool_nodes_reserve(struct pool_node_room **out, size_t *n_out, struct db_conn *c,
		       const char *ids, struct nova_err *err);

/* Count of nodes of the pool that are not terminated. */
int pool_node_count_live(long long *out, struct db_pool *db, const char *pool_id,
			 struct nova_err *err);

#endif
