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

/* The provider. Pool config:
 *   topology         absolute path of a datacenter file, under a directory
 *                    novad.yaml's provider_files allows (core/files.h)
 *   topology_inline  or the datacenter YAML itself (exactly one of the two)
 *   allocation       "c1r1:c2r2"
 *   mock_agents      true: agents run nova-mock-engine
 * The agent program is not the pool's to name (an API caller would choose
 * what novad runs): it is novad's lpu_agent setting, below. A config with
 * "agent" is refused, saying so. */
extern const struct adapter_ops lpu_adapter_ops;

/* novad's lpu settings come in the adapter context (adapter.h struct
 * adapter_context), handed in once by novad's main; the provider's start
 * op resolves them there with the two functions below, and every instance
 * takes them from the context. They belong to novad's operator, not to a
 * pool, so they are not in the pool config.
 *
 * The program every lpu node's agent runs: novad.yaml lpu_agent
 * (NOVA_LPU_AGENT), into out; NULL or "" is the default, the nova-sidecar
 * beside the running program. NOVA_EINVAL naming "lpu_agent" when it is
 * not an absolute path of an executable regular file. */
int lpu_agent_resolve(char *out, size_t len, const char *path, struct nova_err *err);

/* Where agents are recorded (a directory per pool: pidfile, token hash,
 * log of each node's agent): novad.yaml lpu_run_dir (NOVA_LPU_RUN_DIR),
 * into out. Agents are processes of this machine, so the record is the
 * machine's, not one novad's: every novad on the machine (of one user)
 * finds, checks and stops the agents any of them started, and none starts
 * a twin because it did not start the first. NULL or "" is the default:
 * /run/nova/lpu for root, <runtime_dir>/nova/lpu for another user
 * (novad's $XDG_RUNTIME_DIR, given in the context), or else
 * state_dir/lpu (then shared only by novads sharing the state directory).
 * Rejected: the state directory (as before), which is each novad's own, so
 * a second novad on the machine saw no agent and started its own for
 * every node. Makes nothing; the start op makes the directory. */
int lpu_run_dir_resolve(char *out, size_t len, const char *dir, const char *runtime_dir,
			const char *state_dir, struct nova_err *err);

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

/* Load a topology file (read with core/files' size cap; no allowed
 * directory check: the adapter makes that first). */
int lpu_topology_load(struct lpu_topology **out, const char *path, struct nova_err *err);
/* Parse topology text; name (a path, "topology_inline") prefixes errors. */
int lpu_topology_parse(struct lpu_topology **out, const char *name, const char *text, size_t len,
		       struct nova_err *err);
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
