/* The Nova conductor command line (see conductor.c). */
#ifndef NOVA_GATEWAY_CONDUCTOR_H
#define NOVA_GATEWAY_CONDUCTOR_H

#include <stdbool.h>

#include "core/db.h"
#include "core/err.h"
#include "core/notify.h"

struct gw_conductor_args {
	const char *datacenter;          /* -d */
	const char *model_config;        /* -m */
	const char *allocation;          /* --allocation */
	const char *instance_model_name; /* --instance-model-name, may be NULL */
	bool mock_agents;                /* --mock-agents */
};

/* Create or reuse the lpu pool, register the model, deploy it (or start
 * it again), signalling work (the workers' notifier; NULL: none) as
 * deployments.h's changes do. Errors name the flag or the field. */
int gw_conductor_apply(struct db_pool *db, struct notify *work, const struct gw_conductor_args *a,
		       struct nova_err *err);

#endif
