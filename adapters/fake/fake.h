/* The call-counting fake provider, for contract tests and for tests of the
 * engine that need a provider with injectable faults.
 *
 * Its "provider resources" live in a process-wide table keyed by pool id, so
 * they survive adapter instances being created and destroyed (as real pods
 * or processes survive a pool's adapter being reopened), and tests can look
 * at them directly: count resources, find twins, plant orphans.
 *
 * Pool config (all optional):
 *   mode: "ephemeral" (default) | "static"
 *   nodes: static node count, or ephemeral capacity in nodes (default 4)
 *   accelerator_type: default "FAKE-GPU"; accelerators_per_node: default 1
 *   memory_mib: per accelerator, default 81920
 *   fail_validate: "FIELD" -> validation fails naming FIELD (tests)
 *   state_file: a file name (letters, digits, '.', '_', '-'; no '/', not
 *     starting with '.'), kept as <state dir>/fake/<name> (the adapter
 *     context's state_dir): the resources (with the node token each was given,
 *     as a real provider keeps it for its sidecar) live there, shared by
 *     processes whose state directories share fake/, surviving a novad
 *     killed with -9. Never a path: a pool config must not choose a file
 *     novad writes.
 *   faults: {"provision": {"kind": "transient|permanent|lost_answer|slow",
 *            "times": N, "delay_ms": N}, "deprovision": {...}, ...}
 *     armed once per pool when its first instance is created. */
#ifndef NOVA_ADAPTERS_FAKE_FAKE_H
#define NOVA_ADAPTERS_FAKE_FAKE_H

#include <stddef.h>

#include "adapters/adapter.h"

extern const struct adapter_ops fake_adapter_ops;

enum fake_op {
	FAKE_OP_VALIDATE = 0,
	FAKE_OP_CREATE,
	FAKE_OP_PROVISION,
	FAKE_OP_DEPROVISION,
	FAKE_OP_STATUS,
	FAKE_OP_DISCOVER,
	FAKE_OP_LIST,
	FAKE_OP_COUNT
};

enum fake_fault {
	FAKE_FAULT_NONE = 0,
	FAKE_FAULT_TRANSIENT,   /* fail with NOVA_EAGAIN, no side effect */
	FAKE_FAULT_PERMANENT,   /* fail with NOVA_EFAILED, no side effect */
	FAKE_FAULT_LOST_ANSWER, /* do the side effect, then report NOVA_EAGAIN */
	FAKE_FAULT_SLOW,        /* sleep delay_ms, then succeed */
};

/* Arm a fault for the next `times` calls of op on the pool. */
void fake_inject(const char *pool_id, enum fake_op op, enum fake_fault fault, unsigned times,
		 unsigned delay_ms);
/* Calls made so far (validate is counted under pool_id NULL). */
unsigned fake_calls(const char *pool_id, enum fake_op op);
/* Live resources the fake holds for the pool, and how many carry node_id
 * (more than one is a twin). */
size_t fake_resource_count(const char *pool_id);
size_t fake_resource_count_for(const char *pool_id, const char *node_id);
/* Plant a resource carrying node_id (an orphan when no node row has it). */
int fake_resource_plant(const char *pool_id, const char *node_id, struct nova_err *err);
/* Drive a resource's provider-side state (a pod that fails, say). */
int fake_resource_set_state(const char *pool_id, const char *node_id,
			    enum adapter_node_state state, struct nova_err *err);
/* Forget everything: resources, counters, faults. */
void fake_reset(void);

#endif
