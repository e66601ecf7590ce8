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

struct adapter_ops;

struct adapter {
	const struct adapter_ops *ops;
	char pool_id[ADAPTER_ID_LEN];
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
};

struct adapter_node_list {
	struct adapter_node_info *items;
	size_t n;
};

struct adapter_ops {
	const char *name;
	/* The pool's nodes are processes of the machine of the novad that made
	 * the pool (lpu agents): only novads on that machine (core/ids.h
	 * ids_machine_id) provision, inspect, supervise or stop them; the pools
	 * module records the machine, and novads elsewhere leave such a pool's
	 * nodes alone. false: any novad reaches them (an API, SSH). */
	bool machine_bound;
	/* Required. No side effects; names the bad field (relative to the
	 * pool's config object: "allocation", "hosts[2].port"). */
	int (*validate)(const json_t *config, struct nova_err *err);
	/* Required. config was validated. */
	int (*create)(struct adapter **out, const char *pool_id, const json_t *config,
		      struct nova_err *err);
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
	/* Optional: the pool is deleted; remove what the provider kept for it
	 * on this novad's machine (the ssh pools' own known_hosts under the
	 * state directory). Called after the pool's row is gone; best effort
	 * (the provider logs what it could not remove). */
	void (*forget)(const char *pool_id);
	/* Optional: stop what the provider runs in the background (the
	 * kubernetes pod informers). Called by adapters_shutdown() once no
	 * instance is in use any more. */
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
/* Stop every registered provider's background work (before exit). */
void adapters_shutdown(void);
/* Tests only: forget every registration. */
void adapter_registry_reset(void);

/* --- wrappers (the only entry points core code uses) -------------------- */

int adapter_validate(const struct adapter_ops *ops, const json_t *config, struct nova_err *err);
int adapter_create(struct adapter **out, const struct adapter_ops *ops, const char *pool_id,
		   const json_t *config, struct nova_err *err);
void adapter_destroy(struct adapter *ad);
bool adapter_is_ephemeral(const struct adapter *ad);
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

/* The pool is deleted (adapter_ops.forget); nothing when the provider
 * keeps nothing. */
void adapter_forget(const struct adapter_ops *ops, const char *pool_id);

const char *adapter_node_state_name(enum adapter_node_state s);
void adapter_resources_finish(struct adapter_resources *res);
void adapter_node_list_finish(struct adapter_node_list *list);

#endif
