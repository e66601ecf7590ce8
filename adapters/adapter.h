/* The provider adapter contract: the only way the engine reaches compute.
 *
 * Each provider is one `static const struct adapter_ops` (designated
 * initializers, never mutated), registered explicitly by
 * adapters_register_builtin() before any thread starts; the registry is
 * read-only after that. A pool's adapter instance is created from the pool's
 * config; provider instances embed `struct adapter` as their first member and
 * downcast only through a checked helper.
 *
 * Core code calls only the adapter_*() wrappers below, never ad->ops->x
 * (PostgreSQL's rule for table AMs): the wrappers answer NOVA_ENOTSUP for an
 * optional op a provider leaves NULL, and keep the error conventions in one
 * place.
 *
 * Errors: NOVA_EINVAL (bad config/request, names the field), NOVA_EAGAIN
 * (transient, the provider unreachable among them: the worker retries with
 * backoff), NOVA_EFAILED (permanent: the node fails with the provider's
 * message). A resource the provider does not have is no error: node_status
 * answers 0 with ADAPTER_NODE_GONE, which the reconciler acts on (it skips
 * a node whose status call fails), and deprovision answers 0. (This said
 * NOVA_ENOTFOUND for it; no provider ever answered that.) Every provider is
 * held to this by tests/adapters/driver_contract.c. */
#ifndef NOVA_ADAPTERS_ADAPTER_H
#define NOVA_ADAPTERS_ADAPTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define ADAPTER_ID_LEN 37        /* uuid text + NUL */
#define ADAPTER_NAME_MAX 64
#define ADAPTER_HANDLE_MAX 256
#define ADAPTER_PATH_MAX 4096

struct adapter_ops;
struct adapter_instance;

/* What novad's operator gives the providers, handed in once by main()
 * (adapters_start) before any thread starts and read-only after; every
 * instance is created with it and providers read nothing else of novad's
 * (no environment, no file-scope settings). It is novad's, not a pool's:
 * a pool config never chooses a directory novad writes or a program it
 * runs (ARCHITECTURE, "Files and programs on novad's machine").
 * Rejected: a create argument per setting, which would widen every
 * provider's contract with each provider's settings; and the per-provider
 * configure() globals this replaces, which made a test's settings leak
 * into the next and hid what an instance depends on. */
struct adapter_context {
	/* novad's state directory: the files providers keep of their own
	 * (ssh pools' known_hosts, the fake's state files). */
	char state_dir[ADAPTER_PATH_MAX];
	/* $XDG_RUNTIME_DIR as novad found it ("" none): the lpu run
	 * directory's default for a user other than root. */
	char runtime_dir[ADAPTER_PATH_MAX];
	/* novad.yaml lpu_run_dir; "" the default, which the lpu provider's
	 * start op resolves in place (lpu.h). */
	char lpu_run_dir[ADAPTER_PATH_MAX];
	/* novad.yaml lpu_agent: the program lpu agents run; "" the
	 * nova-sidecar beside novad (resolved in place by the lpu start op). */
	char lpu_agent[ADAPTER_PATH_MAX];
	/* The local nova-sidecar the ssh hosts get; "" the one beside novad
	 * (test drivers point it at the build). */
	char ssh_sidecar[ADAPTER_PATH_MAX];
};

struct adapter {
	const struct adapter_ops *ops;
	char pool_id[ADAPTER_ID_LEN];
	/* The instance registry's record (adapter_instance_get); NULL for an
	 * instance from adapter_create. Providers leave it alone. */
	struct adapter_instance *instance;
	/* Set by the provider's create: nodes are created on demand and deleted
	 * when no longer needed (Kubernetes pods). When false the pool's nodes
	 * are static and found by discovery (LPU racks, SSH hosts). It is per
	 * instance, not per provider, because a provider may offer both (the
	 * fake does, by config). */
	bool ephemeral;
};

/* Accelerator capacity of one type, or one discoverable static node. */
struct adapter_capacity {
	char accelerator_type[ADAPTER_NAME_MAX];
	unsigned long long memory_mib;   /* per accelerator */
	unsigned total;
	unsigned free;
	unsigned max_per_node;           /* the most one node offers */
};

struct adapter_static_node {
	char handle[ADAPTER_HANDLE_MAX]; /* provider's stable name for it */
	char accelerator_type[ADAPTER_NAME_MAX];
	unsigned accelerator_count;
	unsigned long long memory_mib;
	json_t *labels;                  /* owned; object */
	bool reachable;
	char reason[256];                /* why not reachable */
};

struct adapter_resources {
	struct adapter_capacity *capacity;
	size_t n_capacity;
	struct adapter_static_node *nodes; /* static providers only */
	size_t n_nodes;
};

struct adapter_provision_request {
	const char *node_id;        /* Nova's id, written to the database first */
	const char *node_name;
	const char *node_token;     /* secret: the sidecar's credential */
	const char *gateway_url;
	const char *handle;         /* static providers: which node to claim */
	const char *accelerator_type;
	unsigned accelerator_count;
	const json_t *labels;       /* may be NULL */
};

enum adapter_node_state {
	ADAPTER_NODE_PENDING = 0,
	ADAPTER_NODE_RUNNING,
	ADAPTER_NODE_FAILED,
	ADAPTER_NODE_GONE,
};

struct adapter_node_info {
	char node_id[ADAPTER_ID_LEN];     /* the Nova id the resource carries */
	char handle[ADAPTER_HANDLE_MAX];
	/* The node's address, a host ("10.1.2.3", "gpu1.example"), "" until
	 * known: the one its sidecar advertises in its engines' endpoints.
	 * Nova records it (nodes.endpoint) and takes a node's replica
	 * endpoints on this host only (inventory/inventory_int.h). */
	char endpoint[ADAPTER_HANDLE_MAX];
	enum adapter_node_state state;
	char message[256];                  /* provider's words on the state */
};

struct adapter_node_ref {
	const char *node_id;
	const char *handle;   /* may be NULL when the provision answer was lost */
	/* deprovision_node only, both optional: why Nova removes the
	 * resource ("failed node removed", "orphan: ..."), in words for the
	 * provider's own record of it (kubernetes: an Event on the pod; never
	 * a secret), and whether another resource takes its place (a failed
	 * node's replicas move to a new node, a twin goes for the recorded
	 * one) rather than it simply being no longer needed. Rejected: a
	 * reason argument to deprovision_node, which every provider and
	 * caller would have had to take for what only one provider records. */
	const char *reason;
	bool replaced;
};

struct adapter_node_list {
	struct adapter_node_info *items;
	size_t n;
};

/* An operator's layout of a provider's resources, given on novad's own
 * command line (the Nova conductor: novad -d FILE -m MODEL --allocation
 * SPEC): the provider turns it into a pool config. */
struct adapter_layout {
	const char *inventory;      /* the resources file's text (-d), read by novad */
	const char *selection;      /* which of them the pool takes (--allocation) */
	size_t stages;              /* stage groups the model needs; 0 any */
	bool mock_agents;           /* nodes run the mock engine (--mock-agents) */
};

struct adapter_ops {
	const char *name;
	/* The pool's nodes are processes of the machine of the novad that made
	 * the pool (lpu agents): only novads on that machine (core/ids.h
	 * ids_machine_id) provision, inspect, supervise or stop them; the pools
	 * module records the machine, and novads elsewhere leave such a pool's
	 * nodes alone. false: any novad reaches them (an API, SSH). */
	bool machine_bound;
	/* Optional. No side effects; config was validated. Whether a pool with
	 * this config has ephemeral nodes (what create sets in
	 * adapter.ephemeral, answered without making an instance, which for
	 * some providers connects or starts a watch): the pools module asks it
	 * before it accepts warm_nodes. NULL: static (nodes found by
	 * discovery). Rejected: a fixed capability bit in the ops, which
	 * cannot say it for a provider that offers both by config (the
	 * fake). tests/adapters/driver_contract.c holds every provider to
	 * answering what its instances say. */
	bool (*nodes_ephemeral)(const json_t *config);
	/* Required. No side effects; names the bad field (relative to the
	 * pool's config object: "allocation", "hosts[2].port"). */
	int (*validate)(const json_t *config, struct nova_err *err);
	/* Optional. Check and complete this provider's part of the context
	 * once, in adapters_start() before threads start (lpu: resolve the run
	 * directory's default and make it, check the agent program). Names
	 * the novad.yaml setting that is wrong. */
	int (*start)(struct adapter_context *ctx, struct nova_err *err);
	/* Required. config was validated. The instance may keep what it
	 * learns (parsed files, connections, caches, a watch thread): it lives
	 * as long as the pool's configuration (adapter_instance_get), and
	 * destroy ends all of it. ctx outlives every instance. */
	int (*create)(struct adapter **out, const struct adapter_context *ctx, const char *pool_id,
		      const json_t *config, struct nova_err *err);
	void (*destroy)(struct adapter *ad);
	/* Required. Idempotent on req->node_id: a retry after a crash or a lost
	 * answer finds the same resource, never a twin. */
	int (*provision_node)(struct adapter_node_info *out, struct adapter *ad,
			      const struct adapter_provision_request *req, struct nova_err *err);
	/* Required. Idempotent: a resource already gone is success. */
	int (*deprovision_node)(struct adapter *ad, const struct adapter_node_ref *node,
				struct nova_err *err);
	/* Required. */
	int (*node_status)(struct adapter_node_info *out, struct adapter *ad,
			   const struct adapter_node_ref *node, struct nova_err *err);
	/* Optional. */
	int (*discover_resources)(struct adapter_resources *out, struct adapter *ad,
				  struct nova_err *err);
	/* Optional: every resource the provider holds for the pool, each with
	 * the Nova node id it carries and the same handle provision_node gave
	 * (the reconciler treats a second handle for one node id as a twin). */
	int (*list_nodes)(struct adapter_node_list *out, struct adapter *ad, struct nova_err *err);
	/* Optional. No side effects; config was validated. The physical
	 * resources this config takes for the pool alone (lpu: the racks it
	 * allocates), as a new array of strings, each described in words the
	 * operator knows ("rack c1r1"). The pools module records them: a
	 * second pool naming one of them is refused, naming the holder. */
	int (*claims)(json_t **out, const json_t *config, struct nova_err *err);
	/* Optional. No side effects. A pool config (a new object) for the
	 * layout; errors name the layout's part ("allocation") and say why
	 * (a selection with fewer stage groups than the model's stages). */
	int (*config_from_layout)(json_t **out, const struct adapter_layout *layout,
				  struct nova_err *err);
	/* Optional: the pool is deleted; remove what the provider kept for it
	 * on this novad's machine (the ssh pools' own known_hosts under the
	 * state directory). Called after the pool's row is gone; best effort
	 * (the provider logs what it could not remove). */
	void (*forget)(const struct adapter_context *ctx, const char *pool_id);
	/* Optional: stop what the provider shares between its instances (the
	 * ssh connection pool). Called by adapters_shutdown() after every
	 * instance is destroyed. */
	void (*shutdown)(void);
};

/* --- registry --------------------------------------------------------- */

#define ADAPTER_REGISTRY_MAX 16

/* Refuses a NULL required op (NOVA_EINVAL naming it) and a duplicate name
 * (NOVA_EEXISTS). Call only before threads start. */
int adapter_register(const struct adapter_ops *ops, struct nova_err *err);
const struct adapter_ops *adapter_find(const char *name);
/* Names of registered providers, comma separated, for error messages. */
void adapter_names(char *buf, size_t len);
/* Register the providers compiled in; the fake only when include_fake. */
int adapters_register_builtin(bool include_fake, struct nova_err *err);
/* Hand the providers novad's context (copied) and let each check and
 * complete its part (adapter_ops.start). Call once, after registration and
 * before threads start. Until then (a test's own process) the context is
 * the default: the state directory of core/files.h, every other setting
 * "" (so lpu agents are recorded under <state_dir>/lpu). */
int adapters_start(const struct adapter_context *ctx, struct nova_err *err);
/* The context instances are created with (borrowed, read-only). */
const struct adapter_context *adapters_context(void);
/* Destroy every live instance, then stop what providers share (before
 * exit, once no instance is in use). */
void adapters_shutdown(void);
/* Tests only: destroy the live instances and forget every registration. */
void adapter_registry_reset(void);

/* --- live instances ------------------------------------------------------ */

/* Instances are kept per pool and reused while the pool's configuration
 * is the one they were made from; the version is the SHA-256 of the
 * config's canonical JSON (keys sorted, compact). Rejected: pools.updated_at
 * as the version, which moves with every state change and quota update
 * (each would throw away the instance's connections, watch and caches,
 * for a config that did not change) and which callers holding only the
 * pool's config (the worker's deployment row) do not have; and the pool id
 * alone, which would keep serving a config that changed.
 *
 * A config names files too (a topology, a kubeconfig and the token file it
 * names): they are read when an instance is made, so an instance is also
 * renewed after ADAPTER_INSTANCE_TTL_S, and an edited file or a rotated
 * service account token reaches the pool within that (each pass read them
 * again when instances lived for one call). An instance nobody used for
 * that long (a pool deleted on another novad, a pool this novad stopped
 * touching) is destroyed at the next get. */
#define ADAPTER_INSTANCE_TTL_S 600

/* The pool's live instance for config, made (validated and created) when
 * there is none, the config changed or the instance expired; the caller
 * holds a reference until adapter_instance_put. Callers of one pool share
 * the instance, so provider ops on it run concurrently (each provider's
 * ops are thread-safe on one instance). Thread-safe; a slow create (a
 * file that does not answer) holds up only the callers of that pool.
 * Errors: the validate and create errors. */
int adapter_instance_get(struct adapter **out, const struct adapter_ops *ops, const char *pool_id,
			 const json_t *config, struct nova_err *err);
/* Give a reference back (NULL is fine). The last reference of an instance
 * that is no longer the pool's (replaced, dropped, expired) destroys it, on
 * the caller's thread. An instance from adapter_create is destroyed. */
void adapter_instance_put(struct adapter *ad);
/* The pool is gone: its instance is no longer handed out, and is destroyed
 * when its last user puts it back. adapter_forget does this first. */
void adapter_instance_drop(const char *pool_id);
/* The instance's discovery (adapter_discover_resources) from its cache, a
 * deep copy into *out, for callers that must not probe on their thread (a
 * deploy request's fit check: for ssh a discovery connects to every host).
 * A result younger than ADAPTER_DISCOVERY_FRESH_MS is answered at once; an
 * older one is answered at once too while a refresh runs in the
 * background (on a thread of its own, holding a reference); with none yet
 * the caller waits for the first at most wait_ms, then gets NOVA_EAGAIN
 * "discovery ... still running" (the refresh goes on for the next caller).
 * A discovery's error is cached like its result. An instance from
 * adapter_create (no cache) is discovered synchronously. */
#define ADAPTER_DISCOVERY_FRESH_MS 30000
int adapter_instance_resources(struct adapter_resources *out, struct adapter *ad, unsigned wait_ms,
			       struct nova_err *err);
/* A deep copy of src into *out (labels copied); *out empty on failure. */
int adapter_resources_copy(struct adapter_resources *out, const struct adapter_resources *src,
			   struct nova_err *err);
/* Live instances (current or still in use), for tests and metrics. */
size_t adapter_instance_count(void);

/* --- wrappers (the only entry points core code uses) -------------------- */

int adapter_validate(const struct adapter_ops *ops, const json_t *config, struct nova_err *err);
/* An instance of one's own, outside the registry, made with
 * adapters_context() (tests, drivers). Core code uses
 * adapter_instance_get. */
int adapter_create(struct adapter **out, const struct adapter_ops *ops, const char *pool_id,
		   const json_t *config, struct nova_err *err);
void adapter_destroy(struct adapter *ad);
bool adapter_is_ephemeral(const struct adapter *ad);
/* adapter_ops.nodes_ephemeral: false for a provider that leaves it NULL. */
bool adapter_config_ephemeral(const struct adapter_ops *ops, const json_t *config);
bool adapter_machine_bound(const struct adapter_ops *ops);
int adapter_discover_resources(struct adapter_resources *out, struct adapter *ad,
			       struct nova_err *err);
int adapter_provision_node(struct adapter_node_info *out, struct adapter *ad,
			   const struct adapter_provision_request *req, struct nova_err *err);
int adapter_deprovision_node(struct adapter *ad, const struct adapter_node_ref *node,
			     struct nova_err *err);
int adapter_node_status(struct adapter_node_info *out, struct adapter *ad,
			const struct adapter_node_ref *node, struct nova_err *err);
int adapter_list_nodes(struct adapter_node_list *out, struct adapter *ad, struct nova_err *err);
/* *out: a new array (empty when the provider claims nothing exclusively). */
int adapter_claims(json_t **out, const struct adapter_ops *ops, const json_t *config,
		   struct nova_err *err);

/* *out: a pool config for the layout (adapter_ops.config_from_layout);
 * NOVA_ENOTSUP when the provider takes no layout. */
int adapter_config_from_layout(json_t **out, const struct adapter_ops *ops,
			       const struct adapter_layout *layout, struct nova_err *err);

/* The pool is deleted: its instance is dropped (adapter_instance_drop) and
 * the provider forgets what it kept for it (adapter_ops.forget). */
void adapter_forget(const struct adapter_ops *ops, const char *pool_id);

const char *adapter_node_state_name(enum adapter_node_state s);
void adapter_resources_finish(struct adapter_resources *res);
void adapter_node_list_finish(struct adapter_node_list *list);

#endif
