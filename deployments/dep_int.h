/* Internals shared by deployments/deployment.c and deployments/rollout.c
 * (the API's side of deployments): the reads and writes both make inside
 * one transaction. Internal to deployments/. */
#ifndef NOVA_DEPLOYMENTS_DEP_INT_H
#define NOVA_DEPLOYMENTS_DEP_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "audit/audit.h"
#include "core/db.h"
#include "core/err.h"
#include "deployments/deployment.h"
#include "deployments/placement.h"
#include "models/model.h"
#include "pools/pool.h"

/* A deployment's API JSON by id or name (with its replicas, events and
 * rollout when details). */
int dep_fetch(json_t **out, struct db_conn *c, const char *ref, bool details,
	      struct nova_err *err);
/* An event that is no transition, in the caller's transaction. */
int dep_event_note(struct db_conn *c, const char *id, const char *kind, const char *reason,
		   struct nova_err *err);
/* Queue work for the deployment (the request's id in the payload). */
int dep_enqueue(struct db_conn *c, const char *id, const struct audit_note *audit,
		struct nova_err *err);
/* NOVA_EINVAL (field "model") when m can never fit p. */
int dep_feasible(const struct model *m, const struct pool *p, const json_t *labels,
		 enum placement_policy policy, struct nova_err *err);

/* --- rollouts (rollout.c) --- */

/* A new version a PATCH asks for, resolved before its transaction (the
 * model lookup and the can-never-fit check, which may ask the provider). */
struct dep_new_model {
	char id[DEPLOYMENT_ID_LEN];
	char version[65];
	char from_id[DEPLOYMENT_ID_LEN]; /* the deployment's model when resolved */
	char from_version[65];
};
int dep_rollout_resolve(struct dep_new_model *out, struct db_pool *db, const char *ref,
			const struct deployment_patch *patch, struct nova_err *err);
/* In the PATCH's transaction, the deployment's row locked: switch to the
 * new version and start the rollout (or, stopped, just switch). */
int dep_rollout_start_tx(struct db_conn *c, const char *dep_id, const struct dep_new_model *nm,
			 const struct deployment_rollout_spec *spec, struct nova_err *err);
/* A rollouts row's columns, and the one decoder of its knobs (the API's
 * reads and the worker's, store.c). ro is the table's alias. */
#define DEP_ROLLOUT_COLS                                                                      \
	"ro.id, ro.deployment_id, ro.state, ro.from_version, ro.to_version, "                 \
	"coalesce(ro.from_model_id::text, '') AS from_model_id, "                            \
	"coalesce(ro.to_model_id::text, '') AS to_model_id, ro.max_surge, ro.max_unavailable, " \
	"coalesce(ro.canary_percent, 0) AS canary_percent, ro.drain_timeout_s, "              \
	"ro.analysis::text AS analysis, ro.waiting_for, ro.reason, "                         \
	DB_TS("ro.started_at") " AS started_at, " DB_TS("ro.updated_at") " AS updated_at, " \
	"coalesce(" DB_TS("ro.finished_at") ", '') AS finished_at "
void dep_rollout_spec_decode(struct deployment_rollout_spec *s, const PGresult *res, int row);

/* The deployment's latest rollout as the API shows it, or JSON null. */
int dep_rollout_json(json_t **out, struct db_conn *c, const char *dep_id, struct nova_err *err);

#endif
