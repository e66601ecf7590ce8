/* The lpu provider's building blocks: the datacenter topology and allocation
 * strings (the adapter itself lands next, in adapters/lpu/).
 *
 * Topology (etc/datacenter.yaml): clusters -> racks -> nodes -> chips, with
 * accelerator type, memory per chip and labels. Cluster and rack numbers
 * name a rack "c<cluster>r<rack>". Validated on load: unknown keys,
 * duplicate cluster/rack numbers or node names, zero chips, all reported as
 * file:line:column.
 *
 * Allocation strings: stage groups separated by ':', racks in a group by
 * ',', a rack written c<cluster>r<rack> ("c1r1", "c1r1,c1r2",
 * "c1r1:c2r2,c2r3"). Errors name the position (1-based) and the reason. */
#ifndef NOVA_ADAPTERS_LPU_LPU_H
#define NOVA_ADAPTERS_LPU_LPU_H

#include <jansson.h>
#include <stddef.h>

#include "adapters/adapter.h"
#include "core/err.h"

/* The provider: pool config {"topology": "/abs/datacenter.yaml",
 * "allocation": "c1r1:c2r2", "mock_agents": false, "agent": "/abs/nova-sidecar"}. */
extern const struct adapter_ops lpu_adapter_ops;

#define LPU_MAX_GROUPS 4
#define LPU_MAX_RACKS_PER_GROUP 64
#define LPU_NUMBER_MAX 9999

struct lpu_node {
	char name[64];
	unsigned chips;
	char accelerator_type[64];
	unsigned long long memory_mib; /* per chip */
	json_t *labels;                /* object, owned */
};

struct lpu_rack {
	unsigned cluster, rack;
	char name[24];                 /* "c1r2" */
	json_t *labels;                /* object, owned */
	struct lpu_node *nodes;
	size_t n_nodes;
};

struct lpu_topology {
	struct lpu_rack *racks;
	size_t n_racks;
};

int lpu_topology_load(struct lpu_topology **out, const char *path, struct nova_err *err);
void lpu_topology_free(struct lpu_topology *t);
const struct lpu_rack *lpu_topology_rack(const struct lpu_topology *t, unsigned cluster,
					 unsigned rack);

struct lpu_rack_ref {
	unsigned cluster, rack;
};

struct lpu_allocation {
	size_t n_groups;
	struct {
		size_t n;
		struct lpu_rack_ref racks[LPU_MAX_RACKS_PER_GROUP];
	} groups[LPU_MAX_GROUPS];
};

/* Parse s. With topo, every rack must exist in it; with want_groups > 0 the
 * number of groups must be that (the model's stage count). Errors are
 * NOVA_EINVAL, field "allocation", message "at N: reason". */
int lpu_allocation_parse(struct lpu_allocation *out, const char *s,
			 const struct lpu_topology *topo, size_t want_groups, struct nova_err *err);

#endif
