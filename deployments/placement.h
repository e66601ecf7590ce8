/* Placement: choosing nodes for one replica, in memory, no I/O.
 *
 * A replica has one or more stages (multi-stage models); each stage needs
 * `accelerators` accelerators of a type (or any type) with at least
 * `memory_mib` each, all on one node. The stages of a replica form a gang:
 * either every stage gets a node or the replica gets nothing, and the
 * capacity view is left as it was.
 *
 * Filter: node schedulable (ready, not cordoned), accelerator type and
 * memory, label constraints (every key=value of the selector present on the
 * node). Score: binpack puts a stage on the fitting node with the fewest
 * free accelerators left (fills nodes, keeps whole nodes free for big
 * replicas); spread on the one with the most (fault isolation). Ties go to
 * the lower index, so results are deterministic.
 *
 * Stage groups: when a replica has several stages, a node labelled
 * stage_group=N (the lpu adapter labels each allocated rack's nodes with the
 * index of its `:`-separated group) hosts only stage N, so each stage lands
 * on its own group of racks. Nodes without the label take any stage.
 *
 * Not thread-safe: the caller owns the node array for the duration. */
#ifndef NOVA_DEPLOYMENTS_PLACEMENT_H
#define NOVA_DEPLOYMENTS_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

#define PLACEMENT_MAX_STAGES 4
#define PLACEMENT_MAX_LABELS 16
#define PLACEMENT_STAGE_GROUP_LABEL "stage_group"

enum placement_policy {
	PLACEMENT_BINPACK = 0,
	PLACEMENT_SPREAD,
};

struct placement_label {
	const char *key;
	const char *value;
};

struct placement_node {
	const char *id;
	const char *accelerator_type;
	unsigned long long memory_mib;    /* per accelerator */
	unsigned total;
	unsigned free;                    /* updated by placement_place */
	bool schedulable;
	struct placement_label labels[PLACEMENT_MAX_LABELS];
	size_t n_labels;
};

struct placement_stage {
	const char *name;
	const char *accelerator_type;     /* "" or NULL: any */
	unsigned accelerators;
	unsigned long long memory_mib;    /* 0: any */
};

struct placement_request {
	const struct placement_stage *stages;
	size_t n_stages;
	enum placement_policy policy;
	const struct placement_label *selector;
	size_t n_selector;
};

struct placement_result {
	size_t node[PLACEMENT_MAX_STAGES]; /* index into the node array, per stage */
};

/* Place one replica. On success the chosen nodes' free counts are reduced.
 * When it does not fit: NOVA_EAGAIN with a reason a person can act on
 * ("no capacity: stage target needs 4 x A100-80G on one node; the most free
 * on a matching node is 2 (pool has 5 free)"), and nothing changed. */
int placement_place(struct placement_result *out, struct placement_node *nodes, size_t n_nodes,
		    const struct placement_request *req, struct nova_err *err);

/* A fleet indexed for many placements in a row (the worker placing a
 * deployment's pending replicas; the benchmark): nodes grouped by
 * accelerator type, and within a group kept in one bitset per free count,
 * so binpack and spread look at the fullest or emptiest fitting nodes first
 * instead of every node. It makes exactly the choices placement_place makes
 * (same node, same tie to the lower index, same reasons when nothing fits),
 * and keeps itself current as it takes accelerators. While it lives, the
 * nodes' free counts change only through it. Rejected: a heap per type
 * (selectors and memory filters would need a walk in order anyway). */
struct placement_index;

int placement_index_create(struct placement_index **out, struct placement_node *nodes,
			   size_t n_nodes, struct nova_err *err);
void placement_index_destroy(struct placement_index *ix);
int placement_index_place(struct placement_result *out, struct placement_index *ix,
			  const struct placement_request *req, struct nova_err *err);

/* Whether the request could ever fit these nodes if they were empty (total
 * capacity, ignoring what is in use and schedulability): a deployment that
 * can never fit is refused at once instead of waiting forever. */
int placement_check_feasible(const struct placement_node *nodes, size_t n_nodes,
			     const struct placement_request *req, struct nova_err *err);

enum placement_policy placement_policy_parse(const char *s, bool *ok);
const char *placement_policy_name(enum placement_policy p);

#endif
