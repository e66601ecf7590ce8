/* Rollouts: the API's side (deployments/deployment.h, "Rollouts"). The
 * worker's side is in worker.c and store.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "deployments/dep_int.h"

#define RO_MAX_SURGE 1000

long long deployment_canary_replicas(long long replicas, long long percent)
{
	long long k = (replicas * percent + 99) / 100;
	return replicas <= 0 ? 0 : k < 1 ? 1 : k > replicas ? replicas : k;
}

void deployment_rollout_spec_defaults(struct deployment_rollout_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->max_surge = 1;
	s->max_unavailable = 0;
	s->drain_timeout_s = 30;
	s->auto_rollback = true;
	s->max_error_rate_increase = 0.05;
	s->max_ttft_ratio = 2.0;
	s->min_requests = 20;
}

int deployment_rollout_spec_parse(struct deployment_rollout_spec *out, const json_t *obj,
				  struct nova_err *err)
{
	bool has_err = false, has_ttft = false;
	const struct json_field fields[] = {
		{.name = "max_surge", .kind = JSON_KIND_INT, .out = &out->max_surge, .min = 0,
		 .max = RO_MAX_SURGE},
		{.name = "max_unavailable", .kind = JSON_KIND_INT, .out = &out->max_unavailable,
		 .min = 0, .max = RO_MAX_SURGE},
		{.name = "canary_percent", .kind = JSON_KIND_INT, .out = &out->canary_percent, .min = 1,
		 .max = 99},
		{.name = "drain_timeout_s", .kind = JSON_KIND_INT, .out = &out->drain_timeout_s, .min = 0,
		 .max = 3600},
		{.name = "auto_rollback", .kind = JSON_KIND_BOOL, .out = &out->auto_rollback},
		{.name = "max_error_rate_increase", .kind = JSON_KIND_NUMBER,
		 .out = &out->max_error_rate_increase, .present = &has_err},
		{.name = "max_ttft_ratio", .kind = JSON_KIND_NUMBER, .out = &out->max_ttft_ratio,
		 .present = &has_ttft},
		{.name = "min_requests", .kind = JSON_KIND_INT, .out = &out->min_requests, .min = 1,
		 .max = 1000000},
	};
	int rc;
	deployment_rollout_spec_defaults(out);
	if ((rc = json_decode_object(obj, fields, sizeof(fields) / sizeof(fields[0]), "rollout", err)))
		return rc;
	if (has_err && !(out->max_error_rate_increase >= 0 && out->max_error_rate_increase <= 1))
		return nova_err_set(err, NOVA_EINVAL, "rollout.max_error_rate_increase",
				    "rollout.max_error_rate_increase must be a share between 0 and 1");
	if (has_ttft && !(out->max_ttft_ratio > 1 && out->max_ttft_ratio <= 100))
		return nova_err_set(err, NOVA_EINVAL, "rollout.max_ttft_ratio",
				    "rollout.max_ttft_ratio must be above 1 and at most 100");
	if (out->max_surge == 0 && out->max_unavailable == 0)
		return nova_err_set(err, NOVA_EINVAL, "rollout.max_surge",
				    "rollout.max_surge and rollout.max_unavailable cannot both be 0: "
				    "the rollout could never replace a replica");
	return 0;
}

static json_t *ro_analysis_json(const struct deployment_rollout_spec *s)
{
	return json_pack("{s:b, s:f, s:f, s:I}", "enabled", s->auto_rollback,
			 "max_error_rate_increase", s->max_error_rate_increase, "max_ttft_ratio",
			 s->max_ttft_ratio, "min_requests", (json_int_t)s->min_requests);
}

void dep_rollout_spec_decode(struct deployment_rollout_spec *s, const PGresult *res, int row)
{
	json_t *a = json_loads(db_value(res, row, "analysis"), 0, NULL);
	deployment_rollout_spec_defaults(s);
	s->max_surge = atoll(db_value(res, row, "max_surge"));
	s->max_unavailable = atoll(db_value(res, row, "max_unavailable"));
	s->canary_percent = atoll(db_value(res, row, "canary_percent"));
	s->drain_timeout_s = atoll(db_value(res, row, "drain_timeout_s"));
	if (json_is_boolean(json_object_get(a, "enabled")))
		s->auto_rollback = json_is_true(json_object_get(a, "enabled"));
	if (json_is_number(json_object_get(a, "max_error_rate_increase")))
		s->max_error_rate_increase = json_number_value(json_object_get(a, "max_error_rate_increase"));
	if (json_is_number(json_object_get(a, "max_ttft_ratio")))
		s->max_ttft_ratio = json_number_value(json_object_get(a, "max_ttft_ratio"));
	if (json_is_integer(json_object_get(a, "min_requests")))
		s->min_requests = json_integer_value(json_object_get(a, "min_requests"));
	json_decref(a);
}

/* --- starting one ---------------------------------------------------------------- */

int dep_rollout_resolve(struct dep_new_model *out, struct db_pool *db, const char *ref,
			const struct deployment_patch *patch, struct nova_err *err)
{
	struct model *m = NULL;
	struct pool *p = NULL;
	json_t *d = NULL;
	struct db_conn *c;
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = db_conn_acquire(&c, db, err)))
		return rc;
	rc = dep_fetch(&d, c, ref, false, err);
	db_conn_release(db, c);
	if (rc)
		return rc;
	const char *field = patch->model ? "model" : "model_version";
	json_t *dm = json_object_get(d, "model");
	const char *name = json_string_value(json_object_get(dm, "name"));
	snprintf(out->from_id, sizeof(out->from_id), "%s", json_string_value(json_object_get(dm, "id")));
	snprintf(out->from_version, sizeof(out->from_version), "%s",
		 json_string_value(json_object_get(dm, "version")));
	if (patch->model) {
		struct nova_err merr;
		rc = model_get(&m, db, patch->model, &merr);
		if (rc == NOVA_ENOTFOUND)
			rc = nova_err_set(err, NOVA_EINVAL, field, "no model %s is registered",
					  patch->model);
		else if (rc)
			*err = merr;
		if (rc == 0 && strcmp(m->name, name) != 0)
			rc = nova_err_set(err, NOVA_EINVAL, field,
					  "model %s:%s is another model than the deployment's (%s): a "
					  "rollout changes the version of its own model",
					  m->name, m->version, name);
	} else {
		char mref[256];
		struct nova_err merr;
		snprintf(mref, sizeof(mref), "%s:%s", name, patch->model_version);
		rc = model_get(&m, db, mref, &merr);
		if (rc == NOVA_ENOTFOUND)
			rc = nova_err_set(err, NOVA_EINVAL, field, "model %s has no version \"%s\"", name,
					  patch->model_version);
		else if (rc)
			*err = merr;
	}
	if (rc == NOVA_EINVAL && (!m || strcmp(err->field, field) == 0))
		nova_err_set_hint(err, "novactl model list shows the versions registered; "
				       "register the new one first");
	if (rc == 0 && strcmp(m->id, out->from_id) == 0)
		rc = nova_err_set(err, NOVA_EINVAL, field, "deployment %s already runs %s:%s",
				  json_string_value(json_object_get(d, "name")), m->name, m->version);
	if (rc == 0) {
		json_t *pool = json_object_get(d, "pool");
		bool ok;
		rc = pool_get(&p, db, json_string_value(json_object_get(pool, "id")), err);
		if (rc == 0)
			rc = dep_feasible(m, p, json_object_get(d, "labels"),
					  placement_policy_parse(json_string_value(json_object_get(d, "placement")), &ok),
					  err);
	}
	if (rc == 0) {
		snprintf(out->id, sizeof(out->id), "%s", m->id);
		snprintf(out->version, sizeof(out->version), "%s", m->version);
	}
	model_free(m);
	pool_free(p);
	json_decref(d);
	return rc;
}

/* The active rollout of a locked deployment: its row (one) or none. */
static int ro_active(PGresult **res, struct db_conn *c, const char *dep_id, struct nova_err *err)
{
	const char *params[1] = {dep_id};
	return db_exec(res, c,
		       "SELECT " DEP_ROLLOUT_COLS "FROM rollouts ro WHERE ro.deployment_id = $1::uuid "
		       "AND ro.state IN ('rolling', 'canary', 'rolling_back') FOR UPDATE",
		       1, params, err);
}

static int ro_busy(struct db_conn *c, const char *dep_id, const char *field, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc = ro_active(&res, c, dep_id, err);
	if (rc == 0 && PQntuples(res) > 0) {
		rc = nova_err_set(err, NOVA_ECONFLICT, field,
				  "a rollout from version %s to %s is in progress (%s)",
				  db_value(res, 0, "from_version"), db_value(res, 0, "to_version"),
				  db_value(res, 0, "state"));
		nova_err_set_hint(err, "wait for it, or finish it first: novactl deployment promote "
				       "or rollback");
	}
	PQclear(res);
	return rc;
}

int dep_rollout_start_tx(struct db_conn *c, const char *dep_id, const struct dep_new_model *nm,
			 const struct deployment_rollout_spec *spec, struct nova_err *err)
{
	const char *params[1] = {dep_id};
	PGresult *res = NULL;
	char reason[300];
	int rc;
	if ((rc = db_exec_one(&res, c,
			      "SELECT model_id::text AS model_id, state FROM deployments "
			      "WHERE id = $1::uuid", 1, params, err)))
		return rc;
	bool moved = strcmp(db_value(res, 0, "model_id"), nm->from_id) != 0;
	char state[16];
	snprintf(state, sizeof(state), "%s", db_value(res, 0, "state"));
	PQclear(res);
	if (moved)
		return nova_err_set(err, NOVA_ECONFLICT, "model",
				    "the deployment's version changed meanwhile; look again");
	if ((rc = ro_busy(c, dep_id, "model", err)))
		return rc;
	if (strcmp(state, "stopping") == 0)
		return nova_err_set(err, NOVA_ECONFLICT, "model",
				    "the deployment is stopping; change its version once it stopped");
	const char *sw[2] = {dep_id, nm->id};
	if ((rc = db_exec(NULL, c,
			  "UPDATE deployments SET model_id = $2::uuid, revision = revision + 1, "
			  "generation = generation + 1, updated_at = now() WHERE id = $1::uuid",
			  2, sw, err)))
		return rc;
	if (strcmp(state, "stopped") == 0) {
		/* Nothing runs: nothing to replace. */
		snprintf(reason, sizeof(reason), "version %s -> %s (stopped: runs when started)",
			 nm->from_version, nm->version);
		return dep_event_note(c, dep_id, "rollout", reason, err);
	}
	char surge[24], unavail[24], canary[24], drain[24];
	json_t *aj = ro_analysis_json(spec);
	char *analysis = aj ? json_dump_compact(aj) : NULL;
	json_decref(aj);
	if (!analysis)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	snprintf(surge, sizeof(surge), "%lld", spec->max_surge);
	snprintf(unavail, sizeof(unavail), "%lld", spec->max_unavailable);
	snprintf(canary, sizeof(canary), "%lld", spec->canary_percent);
	snprintf(drain, sizeof(drain), "%lld", spec->drain_timeout_s);
	if (spec->canary_percent > 0)
		snprintf(reason, sizeof(reason), "canary of version %s at %lld%% started (from %s)",
			 nm->version, spec->canary_percent, nm->from_version);
	else
		snprintf(reason, sizeof(reason),
			 "rollout %s -> %s started: max surge %lld, max unavailable %lld",
			 nm->from_version, nm->version, spec->max_surge, spec->max_unavailable);
	const char *ins[11] = {dep_id, nm->from_id, nm->id, nm->from_version, nm->version,
			       spec->canary_percent > 0 ? "canary" : "rolling", surge, unavail,
			       spec->canary_percent > 0 ? canary : NULL, drain, analysis};
	rc = db_exec(NULL, c,
		     "INSERT INTO rollouts (deployment_id, revision, from_model_id, to_model_id, "
		     "from_version, to_version, state, max_surge, max_unavailable, canary_percent, "
		     "drain_timeout_s, analysis, reason, waiting_for) "
		     "SELECT $1::uuid, d.revision, $2::uuid, $3::uuid, $4, $5, $6, $7::integer, "
		     "$8::integer, $9::integer, $10::integer, $11::jsonb, 'started', "
		     "'new replicas to be placed' FROM deployments d WHERE d.id = $1::uuid",
		     11, ins, err);
	free(analysis);
	if (rc == NOVA_EEXISTS) /* another rollout won the race for the index */
		return nova_err_set(err, NOVA_ECONFLICT, "model", "a rollout is already in progress");
	return rc ? rc : dep_event_note(c, dep_id, "rollout", reason, err);
}

/* --- promote and rollback ----------------------------------------------------------- */

enum ro_op { RO_PROMOTE, RO_ROLLBACK, RO_AUTO_ROLLBACK };

struct ro_change {
	enum ro_op op;
	const char *ref;
	const char *reason;
	long long rollout_id;   /* RO_AUTO_ROLLBACK: only this one */
	struct audit_note *audit;
	char id[DEPLOYMENT_ID_LEN];
	bool applied;
};

static int ro_nothing(const char *name, const char *what, struct nova_err *err)
{
	int rc = nova_err_set(err, NOVA_ECONFLICT, "deployment", "deployment %s has %s", name, what);
	nova_err_set_hint(err, "novactl deployment get %s shows its rollout", name);
	return rc;
}

/* Reverse the active rollout (row 0 of res, locked). */
static int ro_reverse(struct db_conn *c, struct ro_change *ch, const char *name,
		      const PGresult *res, struct nova_err *err)
{
	char why[600];
	int rc;
	if (!*db_value(res, 0, "from_model_id"))
		return ro_nothing(name, "no previous version to go back to (it was deleted)", err);
	snprintf(why, sizeof(why), "%s", ch->reason ? ch->reason : "rollback requested");
	const char *p[4] = {ch->id, db_value(res, 0, "from_model_id"), db_value(res, 0, "id"), why};
	if ((rc = db_exec(NULL, c,
			  "UPDATE deployments SET model_id = $2::uuid, revision = revision + 1, "
			  "generation = generation + 1, updated_at = now() WHERE id = $1::uuid",
			  2, p, err)) ||
	    (rc = db_exec(NULL, c,
			  "UPDATE rollouts SET state = 'rolling_back', reason = $2, updated_at = now(), "
			  "waiting_for = 'the previous version''s replicas to be restored' "
			  "WHERE id = $1::bigint",
			  2, p + 2, err)))
		return rc;
	char ev[800];
	snprintf(ev, sizeof(ev), "rolling back %s -> %s: %s", db_value(res, 0, "to_version"),
		 db_value(res, 0, "from_version"), why);
	return dep_event_note(c, ch->id, "rollout", ev, err);
}

static int ro_change_tx(struct db_conn *c, void *arg, struct nova_err *err)
{
	struct ro_change *ch = arg;
	const char *params[1] = {ch->ref};
	PGresult *res = NULL;
	char name[DEPLOYMENT_NAME_MAX];
	int rc;
	ch->applied = false;
	rc = db_exec(&res, c,
		     ids_is_uuid(ch->ref)
			     ? "SELECT id::text, name FROM deployments WHERE id = $1::uuid FOR UPDATE"
			     : "SELECT id::text, name FROM deployments WHERE name = $1 FOR UPDATE",
		     1, params, err);
	if (rc == 0 && PQntuples(res) == 0)
		rc = nova_err_set(err, NOVA_ENOTFOUND, "deployment",
				  "no deployment named or with id \"%s\"", ch->ref);
	if (rc) {
		PQclear(res);
		return rc;
	}
	snprintf(ch->id, sizeof(ch->id), "%s", PQgetvalue(res, 0, 0));
	snprintf(name, sizeof(name), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	res = NULL;
	if ((rc = ro_active(&res, c, ch->id, err)))
		return rc;
	bool active = PQntuples(res) > 0;
	const char *state = active ? db_value(res, 0, "state") : "";
	if (ch->op == RO_AUTO_ROLLBACK) {
		if (active && atoll(db_value(res, 0, "id")) == ch->rollout_id &&
		    strcmp(state, "rolling_back") != 0) {
			rc = ro_reverse(c, ch, name, res, err);
			ch->applied = rc == 0;
		}
	} else if (ch->op == RO_PROMOTE) {
		if (!active || strcmp(state, "canary") != 0) {
			rc = ro_nothing(name, active ? "no canary to promote (its rollout is not a canary)"
						     : "no canary to promote",
					err);
		} else {
			const char *p[2] = {db_value(res, 0, "id"), ch->id};
			char ev[300];
			snprintf(ev, sizeof(ev), "canary of version %s promoted: rolling out",
				 db_value(res, 0, "to_version"));
			if ((rc = db_exec(NULL, c,
					  "UPDATE rollouts SET state = 'rolling', reason = 'promoted', "
					  "updated_at = now() WHERE id = $1::bigint", 1, p, err)) == 0 &&
			    (rc = db_exec(NULL, c,
					  "UPDATE deployments SET generation = generation + 1, "
					  "updated_at = now() WHERE id = $1::uuid", 1, p + 1, err)) == 0)
				rc = dep_event_note(c, ch->id, "rollout", ev, err);
			ch->applied = rc == 0;
		}
	} else if (active) {
		if (strcmp(state, "rolling_back") == 0)
			rc = ro_nothing(name, "a rollback in progress already", err);
		else
			rc = ro_reverse(c, ch, name, res, err);
		ch->applied = rc == 0;
	} else {
		/* Undo the last complete rollout: a new one, back. */
		PGresult *last = NULL;
		const char *p[1] = {ch->id};
		rc = db_exec(&last, c,
			     "SELECT " DEP_ROLLOUT_COLS ", d.model_id::text AS current FROM rollouts ro "
			     "JOIN deployments d ON d.id = ro.deployment_id "
			     "WHERE ro.deployment_id = $1::uuid ORDER BY ro.id DESC LIMIT 1",
			     1, p, err);
		if (rc == 0 && (PQntuples(last) == 0 || strcmp(db_value(last, 0, "state"), "complete") ||
				!*db_value(last, 0, "from_model_id") ||
				strcmp(db_value(last, 0, "to_model_id"), db_value(last, 0, "current"))))
			rc = ro_nothing(name, "no rollout to roll back", err);
		if (rc == 0) {
			struct dep_new_model nm;
			struct deployment_rollout_spec spec;
			memset(&nm, 0, sizeof(nm));
			dep_rollout_spec_decode(&spec, last, 0);
			spec.canary_percent = 0;
			snprintf(nm.id, sizeof(nm.id), "%s", db_value(last, 0, "from_model_id"));
			snprintf(nm.version, sizeof(nm.version), "%s", db_value(last, 0, "from_version"));
			snprintf(nm.from_id, sizeof(nm.from_id), "%s", db_value(last, 0, "to_model_id"));
			snprintf(nm.from_version, sizeof(nm.from_version), "%s",
				 db_value(last, 0, "to_version"));
			rc = dep_rollout_start_tx(c, ch->id, &nm, &spec, err);
			char ev[300];
			snprintf(ev, sizeof(ev), "rollback to version %s: %s", nm.version,
				 ch->reason ? ch->reason : "rollback requested");
			if (rc == 0)
				rc = dep_event_note(c, ch->id, "rollout", ev, err);
			ch->applied = rc == 0;
		}
		PQclear(last);
	}
	PQclear(res);
	if (rc == 0 && ch->applied && ch->audit)
		rc = audit_record_tx(c, ch->audit, ch->id, err);
	if (rc == 0 && ch->applied)
		rc = dep_enqueue(c, ch->id, ch->audit, err);
	return rc;
}

static int ro_change(json_t **out, struct db_pool *db, struct notify *work, struct ro_change *ch,
		     struct nova_err *err)
{
	int rc = db_tx_run(db, ro_change_tx, ch, err);
	if (out)
		*out = NULL;
	if (rc == 0 && ch->applied)
		notify_signal(work);
	if (rc == 0 && ch->applied)
		nova_log_kv(NOVA_LOG_INFO, "deployments",
			    ch->op == RO_PROMOTE ? "rollout promoted" : "rollout rolled back",
			    "deployment", ch->id, "reason", ch->reason ? ch->reason : "", NULL);
	return rc || !out ? rc : deployment_get(out, db, ch->id, err);
}

int deployment_rollout_promote(json_t **out, struct db_pool *db, struct notify *work,
			       const char *ref, struct audit_note *audit, struct nova_err *err)
{
	struct ro_change ch = {.op = RO_PROMOTE, .ref = ref, .audit = audit};
	return ro_change(out, db, work, &ch, err);
}

int deployment_rollout_rollback(json_t **out, struct db_pool *db, struct notify *work,
				const char *ref, const char *reason, struct audit_note *audit,
				struct nova_err *err)
{
	struct ro_change ch = {.op = RO_ROLLBACK, .ref = ref, .reason = reason, .audit = audit};
	return ro_change(out, db, work, &ch, err);
}

int deployment_rollout_auto_rollback(bool *applied, struct db_pool *db, struct notify *work,
				     const char *deployment_id, long long rollout_id,
				     const char *reason, struct nova_err *err)
{
	struct ro_change ch = {.op = RO_AUTO_ROLLBACK, .ref = deployment_id, .reason = reason,
			       .rollout_id = rollout_id};
	int rc = ro_change(NULL, db, work, &ch, err);
	*applied = rc == 0 && ch.applied;
	return rc;
}

int deployment_rollouts_guarded(struct deployment_rollout_active **out, size_t *n,
				struct db_pool *db, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n = 0;
	if ((rc = db_pool_exec(&res, db,
			       "SELECT " DEP_ROLLOUT_COLS ", d.name AS name, m.name AS model FROM rollouts ro "
			       "JOIN deployments d ON d.id = ro.deployment_id "
			       "JOIN models m ON m.id = d.model_id "
			       "WHERE ro.state IN ('rolling', 'canary') "
			       "AND coalesce((ro.analysis->>'enabled')::boolean, true) ORDER BY ro.id",
			       0, NULL, err)))
		return rc;
	int rows = PQntuples(res);
	if (rows > 0 && !(*out = calloc((size_t)rows, sizeof(**out)))) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	for (int i = 0; i < rows; i++) {
		struct deployment_rollout_active *a = &(*out)[i];
		a->rollout_id = atoll(db_value(res, i, "id"));
		snprintf(a->deployment_id, sizeof(a->deployment_id), "%s",
			 db_value(res, i, "deployment_id"));
		snprintf(a->name, sizeof(a->name), "%s", db_value(res, i, "name"));
		snprintf(a->model, sizeof(a->model), "%s", db_value(res, i, "model"));
		snprintf(a->from_version, sizeof(a->from_version), "%s", db_value(res, i, "from_version"));
		snprintf(a->to_version, sizeof(a->to_version), "%s", db_value(res, i, "to_version"));
		dep_rollout_spec_decode(&a->spec, res, i);
	}
	*n = (size_t)rows;
	PQclear(res);
	return 0;
}

/* --- reading ---------------------------------------------------------------------- */

int dep_rollout_json(json_t **out, struct db_conn *c, const char *dep_id, struct nova_err *err)
{
	const char *params[1] = {dep_id};
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	rc = db_exec(&res, c,
		     "SELECT " DEP_ROLLOUT_COLS ", tm.version AS target_version, d.replicas AS wanted, "
		     "(SELECT count(*) FROM replicas r WHERE r.deployment_id = d.id "
		     "AND r.model_id = d.model_id) AS t_total, "
		     "(SELECT count(*) FROM replicas r WHERE r.deployment_id = d.id "
		     "AND r.model_id = d.model_id AND r.state = 'ready') AS t_ready, "
		     "(SELECT count(*) FROM replicas r WHERE r.deployment_id = d.id "
		     "AND r.model_id <> d.model_id) AS p_total, "
		     "(SELECT count(*) FROM replicas r WHERE r.deployment_id = d.id "
		     "AND r.model_id <> d.model_id AND r.state = 'ready') AS p_ready, "
		     "(SELECT count(*) FROM replicas r WHERE r.deployment_id = d.id "
		     "AND r.model_id <> d.model_id AND r.state = 'stopping') AS p_draining "
		     "FROM rollouts ro JOIN deployments d ON d.id = ro.deployment_id "
		     "JOIN models tm ON tm.id = d.model_id "
		     "WHERE ro.deployment_id = $1::uuid ORDER BY ro.id DESC LIMIT 1",
		     1, params, err);
	if (rc)
		return rc;
	if (PQntuples(res) == 0) {
		PQclear(res);
		*out = json_null();
		return 0;
	}
	struct deployment_rollout_spec s;
	dep_rollout_spec_decode(&s, res, 0);
	const char *target = db_value(res, 0, "target_version");
	const char *prev = strcmp(target, db_value(res, 0, "to_version")) == 0
				   ? db_value(res, 0, "from_version")
				   : db_value(res, 0, "to_version");
	const char *fin = db_value(res, 0, "finished_at");
	/* The count the target version is to reach: the canary's share while
	 * it holds (as the worker sizes it), else the deployment's count. */
	long long wanted = atoll(db_value(res, 0, "wanted"));
	if (!strcmp(db_value(res, 0, "state"), "canary"))
		wanted = deployment_canary_replicas(wanted, s.canary_percent);
	*out = json_pack(
		"{s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:o, s:I, s:o, "
		"s:{s:{s:s, s:I, s:I, s:I}, s:{s:s, s:I, s:I, s:I}}, s:s, s:s, s:s, s:s, s:o}",
		"id", (json_int_t)atoll(db_value(res, 0, "id")), "state", db_value(res, 0, "state"),
		"from_version", db_value(res, 0, "from_version"), "to_version",
		db_value(res, 0, "to_version"), "target_version", target, "max_surge",
		(json_int_t)s.max_surge, "max_unavailable", (json_int_t)s.max_unavailable,
		"canary_percent", s.canary_percent > 0 ? json_integer(s.canary_percent) : json_null(),
		"drain_timeout_s", (json_int_t)s.drain_timeout_s, "auto_rollback", ro_analysis_json(&s),
		"progress", "target", "version", target, "total",
		(json_int_t)atoll(db_value(res, 0, "t_total")), "ready",
		(json_int_t)atoll(db_value(res, 0, "t_ready")), "wanted", (json_int_t)wanted,
		"previous", "version", prev, "total",
		(json_int_t)atoll(db_value(res, 0, "p_total")), "ready",
		(json_int_t)atoll(db_value(res, 0, "p_ready")), "draining",
		(json_int_t)atoll(db_value(res, 0, "p_draining")), "waiting_for",
		db_value(res, 0, "waiting_for"), "reason", db_value(res, 0, "reason"), "started_at",
		db_value(res, 0, "started_at"), "updated_at", db_value(res, 0, "updated_at"),
		"finished_at", *fin ? json_string(fin) : json_null());
	PQclear(res);
	return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}
