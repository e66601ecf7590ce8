/* What novad's threads wake each other with: one notifier (core/notify.h)
 * per kind of wake-up. novad's main initialises them before any thread
 * starts, hands each module the ones it waits on or signals (through its
 * config or deps struct), and finishes them after every thread is joined.
 * A module signals only what it was handed; no module keeps a global to be
 * polled (the worker's kick counter and the deployments' placement
 * generation were such globals, each thread looking every 10 ms).
 *
 * Rejected: one notifier for everything (every worker thread, the flusher,
 * the sweeper and the reconciler would wake on every deploy and every
 * placement, to find nothing to do), and a notifier inside each module's
 * object (the deployments module would then reach into the worker's and
 * the worker into the inventory's: the deployment.c <-> worker.c circle
 * this replaces). */
#ifndef NOVA_GATEWAY_RUNTIME_H
#define NOVA_GATEWAY_RUNTIME_H

#include "core/err.h"
#include "core/notify.h"

struct novad_runtime {
	/* The deployment workers (worker_config.wake): work was queued by this
	 * process (deployment create, scale, stop, start; the conductor). */
	struct notify work;
	/* The inventory's flusher and sweeper (inventory_config.wake): a
	 * replica was placed (worker_config.placed), so the assignment digests
	 * are read again; a heartbeat changed a replica's state. */
	struct notify inventory;
	/* The reconciler (reconciler_config.wake): its stop; a pass on demand:
	 * a worker placed a replica on a pool's warm node
	 * (worker_config.warm_taken), so one is provisioned behind it. */
	struct notify reconciler;
	/* The routing table's thread (inventory_routes_create): a flush or a
	 * sweep changed what is routable (inventory_routes_refresh_soon). */
	struct notify routes;
	/* The autoscaler (autoscaler_config.wake): a router reported requests
	 * waiting for a replica (a model at zero wakes at once), its stop. */
	struct notify autoscale;
};

int novad_runtime_init(struct novad_runtime *rt, struct nova_err *err);
/* After every thread that waits on or signals them is joined. Accepts NULL. */
void novad_runtime_finish(struct novad_runtime *rt);

#endif
