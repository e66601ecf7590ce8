/* The deployment worker's SQL (store_int.h). */
#include "deployments/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/textbuf.h"
#include "deployments/dep_int.h"
#include "deployments/placement.h"

int store_item_claim(bool *got, struct store_item *it, struct db_pool *db, const char *owner,
		     unsigned lease_ms, struct nova_err *err)
{
	char lease[16], machine[IDS_MACHINE_LEN];
	const char *params[3] = {owner, lease, machine};
	PGresult *res = NULL;
	int rc;
	*got = false;
	snprintf(lease, sizeof(lease), "%u", lease_ms);
	ids_machine_id(machine);
	/* Not the work of a deployment whose pool is another machine's (its
	 * nodes are that machine's processes, pools.h): a novad there takes
	 * it. */
	rc = db_pool_exec(&res, db,
		     "UPDATE work_items SET lock_owner = $1, "
		     "lock_expires_at = now() + $2::integer * interval '1 millisecond', "
		     "fence = fence + 1, attempts = attempts + 1, updated_at = now() "
		     "WHERE id = (SELECT w.id FROM work_items w WHERE w.state = 'queued' "
		     "AND w.run_after <= now() AND w.attempts < w.max_attempts "
		     "AND (w.lock_expires_at IS NULL OR w.lock_expires_at < now()) "
		     "AND NOT EXISTS (SELECT 1 FROM deployments d JOIN pools p ON p.id = d.pool_id "
		     "WHERE w.kind = 'deployment' AND d.id = w.subject_id AND p.machine IS NOT NULL "
		     "AND p.machine <> $3) "
		     "ORDER BY w.run_after, w.id LIMIT 1 FOR UPDATE OF w SKIP LOCKED) "
		     "RETURNING id, kind, subject_id::text AS subject, fence, attempts, max_attempts, "
		     "requests, coalesce(left(payload->>'request_id', 64), '') AS request_id",
		     3, params, err);
	if (rc == 0 && PQntuples(res) == 1) {
		/* The one place that decodes a claimed work_items row. */
		it->id = atoll(db_value(res, 0, "id"));
		snprintf(it->kind, sizeof(it->kind), "%s", db_value(res, 0, "kind"));
		snprintf(it->subject, sizeof(it->subject), "%s", db_value(res, 0, "subject"));
		it->fence = atoll(db_value(res, 0, "fence"));
		it->attempts = atoi(db_value(res, 0, "attempts"));
		it->max_attempts = atoi(db_value(res, 0, "max_attempts"));
		snprintf(it->id_s, sizeof(it->id_s), "%lld", it->id);
		snprintf(it->fence_s, sizeof(it->fence_s), "%lld", it->fence);
		snprintf(it->requests_s, sizeof(it->requests_s), "%s", db_value(res, 0, "requests"));
		snprintf(it->request_id, sizeof(it->request_id), "%s", db_value(res, 0, "request_id"));
		*got = true;
	}
	PQclear(res);
	return rc;
}

/* Inside a transaction: prove the lease is still held and extend it. Every
 * write of a pass goes after this in the same transaction (fencing). */
static int store_fence(struct store_lease *l, struct db_conn *c, struct nova_err *err)
{
	char lease[16];
	const char *params[4] = {l->item->id_s, l->owner, l->item->fence_s, lease};
	PGresult *res = NULL;
	snprintf(lease, sizeof(lease), "%u", l->lease_ms);
	int rc = db_exec(&res, c,
			 "UPDATE work_items SET lock_expires_at = now() + $4::integer * interval '1 millisecond' "
			 "WHERE id = $1::bigint AND lock_owner = $2 AND fence = $3::bigint "
			 "AND lock_expires_at > now() RETURNING id",
			 4, params, err);
	if (rc == 0 && PQntuples(res) == 0) {
		l->lost = true;
		rc = nova_err_set(err, NOVA_ECONFLICT, "", "lease on work item %s lost", l->item->id_s);
	}
	PQclear(res);
	return rc;
}

/* Run sql (with params) after the fence check, in one transaction. */
static int store_write(struct store_lease *l, const char *sql, int n, const char *const *params,
		       struct nova_err *err)
{
	struct db_conn *c;
	int rc;
	if ((rc = db_conn_acquire(&c, l->db, err)))
		return rc;
	if ((rc = db_tx_begin(c, err)) == 0) {
		rc = store_fence(l, c, err);
		if (rc == 0)
			rc = db_exec(NULL, c, sql, n, params, err);
		if (rc == 0)
			rc = db_tx_commit(c, err);
		else
			db_tx_rollback(c);
	}
	db_conn_release(l->db, c);
	return rc;
}

int store_item_finish(struct store_lease *l, enum store_outcome how, const char *msg,
		      unsigned delay_ms, struct nova_err *err)
{
	char delay[16];
	const char *params[5] = {l->item->id_s, l->owner, l->item->fence_s, msg, delay};
	snprintf(delay, sizeof(delay), "%u", delay_ms);
	switch (how) {
	case STORE_DONE:
		/* Done, unless work was asked for meanwhile (a replica reported
		 * ready after this pass read them): then queued again, at once,
		 * as a fresh item (sql/0008). */
		params[4] = l->item->requests_s;
		return store_write(l,
				"UPDATE work_items SET lock_owner = NULL, lock_expires_at = NULL, "
				"state = CASE WHEN requests = $5::bigint THEN 'done' ELSE 'queued' END, "
				"attempts = CASE WHEN requests = $5::bigint THEN attempts ELSE 0 END, "
				"last_error = nullif($4, ''), updated_at = now() "
				"WHERE id = $1::bigint AND lock_owner = $2 AND fence = $3::bigint",
				5, params, err);
	case STORE_FAIL:
		return store_write(l,
				"UPDATE work_items SET state = 'failed', lock_owner = NULL, "
				"lock_expires_at = NULL, last_error = $4, updated_at = now() "
				"WHERE id = $1::bigint AND lock_owner = $2 AND fence = $3::bigint",
				4, params, err);
	case STORE_WAIT: /* not an attempt: nothing failed, capacity is missing */
		return store_write(l,
				"UPDATE work_items SET lock_owner = NULL, lock_expires_at = NULL, "
				"attempts = greatest(attempts - 1, 0), last_error = $4, updated_at = now(), "
				"run_after = now() + $5::integer * interval '1 millisecond' "
				"WHERE id = $1::bigint AND lock_owner = $2 AND fence = $3::bigint",
				5, params, err);
	case STORE_RETRY:
	default:
		return store_write(l,
				"UPDATE work_items SET lock_owner = NULL, lock_expires_at = NULL, "
				"last_error = $4, updated_at = now(), "
				"run_after = now() + $5::integer * interval '1 millisecond' "
				"WHERE id = $1::bigint AND lock_owner = $2 AND fence = $3::bigint",
				5, params, err);
	}
}

int store_replicas_resize(struct store_lease *l, const char *dep_id, const char *model_id,
			  long long revision, long long want, struct nova_err *err)
{
	char n[24], rev[24];
	const char *params[4] = {dep_id, n, model_id, rev};
	int rc;
	snprintf(n, sizeof(n), "%lld", want);
	snprintf(rev, sizeof(rev), "%lld", revision);
	if ((rc = store_write(l, "DELETE FROM replicas WHERE deployment_id = $1::uuid "
				 "AND model_id = $3::uuid AND ordinal >= $2::integer "
				 "AND state <> 'stopping'", 3, params, err)))
		return rc;
	return store_write(l, "INSERT INTO replicas (deployment_id, model_id, revision, ordinal, "
			      "state_reason) SELECT $1::uuid, $3::uuid, $4::integer, g, 'created' "
			      "FROM generate_series(0, $2::integer - 1) g "
			      "ON CONFLICT (deployment_id, model_id, ordinal) DO NOTHING", 4, params, err);
}

int store_replicas_clear(struct store_lease *l, const char *dep_id, struct nova_err *err)
{
	const char *params[1] = {dep_id};
	return store_write(l, "DELETE FROM replicas WHERE deployment_id = $1::uuid", 1, params, err);
}

int store_replicas_retire(long long *marked, struct store_lease *l, const char *dep_id,
			  const char *model_id, long long serving, bool keep_unready,
			  long long drain_n, const char *reason, struct nova_err *err)
{
	char sv[24], dn[24];
	const char *params[3] = {dep_id, model_id, sv};
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*marked = 0;
	snprintf(sv, sizeof(sv), "%lld", serving);
	snprintf(dn, sizeof(dn), "%lld", drain_n);
	if ((rc = store_write(l,
			      keep_unready
				      ? "DELETE FROM replicas WHERE deployment_id = $1::uuid "
					"AND model_id <> $2::uuid AND ordinal >= $3::integer "
					"AND state <> 'stopping'"
				      : "DELETE FROM replicas WHERE deployment_id = $1::uuid "
					"AND model_id <> $2::uuid AND state <> 'stopping' "
					"AND (state <> 'ready' OR ordinal >= $3::integer)",
			      3, params, err)))
		return rc;
	if (drain_n <= 0)
		return 0;
	/* A ready replica leaves the routes (the table routes ready ones
	 * only) and drains; the worker ends it later (store_drain_end). */
	if ((rc = db_conn_acquire(&c, l->db, err)))
		return rc;
	if ((rc = db_tx_begin(c, err)) == 0) {
		rc = store_fence(l, c, err);
		if (rc == 0)
			rc = db_exec(&res, c,
				     "UPDATE replicas SET state = 'stopping', state_reason = $4, "
				     "drain_started = now(), updated_at = now() WHERE id IN "
				     "(SELECT id FROM replicas WHERE deployment_id = $1::uuid "
				     "AND model_id <> $2::uuid AND state = 'ready' "
				     "ORDER BY ordinal DESC LIMIT $3::integer) RETURNING id",
				     4, (const char *[4]){dep_id, model_id, dn, reason}, err);
		if (rc == 0)
			*marked = PQntuples(res);
		if (rc == 0)
			rc = db_tx_commit(c, err);
		else
			db_tx_rollback(c);
	}
	PQclear(res);
	db_conn_release(l->db, c);
	return rc;
}

int store_replicas_pending(char (**ids)[DEPLOYMENT_ID_LEN], size_t *n_out, struct db_pool *db,
			   const char *dep_id, const char *model_id, struct nova_err *err)
{
	const char *params[2] = {dep_id, model_id};
	PGresult *res = NULL;
	int rc;
	*ids = NULL;
	*n_out = 0;
	if ((rc = db_pool_exec(&res, db, "SELECT id FROM replicas WHERE deployment_id = $1::uuid "
					 "AND model_id = $2::uuid AND state = 'pending' ORDER BY ordinal",
			       2, params, err)))
		return rc;
	return db_result_uuids(ids, n_out, res, err);
}

int store_replica_sets(struct store_sets *out, struct db_pool *db, const char *dep_id,
		       const char *model_id, long long serving, struct nova_err *err)
{
	char sv[24];
	const char *params[3] = {dep_id, model_id, sv};
	PGresult *res = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	snprintf(sv, sizeof(sv), "%lld", serving);
	if ((rc = db_pool_exec(&res, db,
			       "SELECT count(*) FILTER (WHERE model_id = $2::uuid AND state <> 'stopping') "
			       "AS t_live, "
			       "count(*) FILTER (WHERE model_id = $2::uuid AND state = 'ready') AS t_ready, "
			       "count(*) FILTER (WHERE model_id = $2::uuid AND state = 'pending') "
			       "AS t_pending, "
			       "count(*) FILTER (WHERE model_id = $2::uuid AND state = 'ready' "
			       "AND ordinal < $3::integer) AS t_serving_ready, "
			       "count(*) FILTER (WHERE model_id <> $2::uuid) AS o_total, "
			       "count(*) FILTER (WHERE model_id <> $2::uuid AND state <> 'stopping') "
			       "AS o_live, "
			       "count(*) FILTER (WHERE model_id <> $2::uuid AND state = 'ready' "
			       "AND ordinal < $3::integer) AS o_ready_serving, "
			       "count(*) FILTER (WHERE state = 'stopping') AS draining "
			       "FROM replicas WHERE deployment_id = $1::uuid",
			       3, params, err)))
		return rc;
	out->t_live = atoll(db_value(res, 0, "t_live"));
	out->t_ready = atoll(db_value(res, 0, "t_ready"));
	out->t_pending = atoll(db_value(res, 0, "t_pending"));
	out->t_serving_ready = atoll(db_value(res, 0, "t_serving_ready"));
	out->o_total = atoll(db_value(res, 0, "o_total"));
	out->o_live = atoll(db_value(res, 0, "o_live"));
	out->o_ready_serving = atoll(db_value(res, 0, "o_ready_serving"));
	out->draining = atoll(db_value(res, 0, "draining"));
	PQclear(res);
	return 0;
}

int store_drains(struct store_drain **out, size_t *n, struct db_pool *db, const char *dep_id,
		 struct nova_err *err)
{
	const char *params[1] = {dep_id};
	PGresult *res = NULL;
	int rc;
	*out = NULL;
	*n = 0;
	if ((rc = db_pool_exec(&res, db,
			       "SELECT r.id::text AS id, coalesce((SELECT rp.node_id::text FROM "
			       "replica_placements rp WHERE rp.replica_id = r.id ORDER BY rp.stage DESC "
			       "LIMIT 1), '') AS node_id, "
			       "(extract(epoch FROM now() - coalesce(r.drain_started, r.updated_at)) "
			       "* 1000)::bigint AS elapsed_ms "
			       "FROM replicas r WHERE r.deployment_id = $1::uuid AND r.state = 'stopping' "
			       "ORDER BY r.ordinal",
			       1, params, err)))
		return rc;
	int rows = PQntuples(res);
	if (rows > 0 && !(*out = calloc((size_t)rows, sizeof(**out)))) {
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	for (int i = 0; i < rows; i++) {
		snprintf((*out)[i].id, sizeof((*out)[i].id), "%s", db_value(res, i, "id"));
		snprintf((*out)[i].node_id, sizeof((*out)[i].node_id), "%s", db_value(res, i, "node_id"));
		(*out)[i].elapsed_ms = atoll(db_value(res, i, "elapsed_ms"));
	}
	*n = (size_t)rows;
	PQclear(res);
	return 0;
}

int store_drain_end(struct store_lease *l, const char *replica_id, struct nova_err *err)
{
	const char *params[1] = {replica_id};
	return store_write(l, "DELETE FROM replicas WHERE id = $1::uuid AND state = 'stopping'", 1,
			   params, err);
}

int store_rollout_active(struct store_rollout *out, struct db_pool *db, const char *dep_id,
			 struct nova_err *err)
{
	const char *params[1] = {dep_id};
	PGresult *res = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = db_pool_exec(&res, db,
			       "SELECT " DEP_ROLLOUT_COLS "FROM rollouts ro "
			       "WHERE ro.deployment_id = $1::uuid "
			       "AND ro.state IN ('rolling', 'canary', 'rolling_back')",
			       1, params, err)))
		return rc;
	if (PQntuples(res) == 1) {
		out->active = true;
		out->id = atoll(db_value(res, 0, "id"));
		snprintf(out->id_s, sizeof(out->id_s), "%lld", out->id);
		snprintf(out->state, sizeof(out->state), "%s", db_value(res, 0, "state"));
		snprintf(out->from_version, sizeof(out->from_version), "%s",
			 db_value(res, 0, "from_version"));
		snprintf(out->to_version, sizeof(out->to_version), "%s", db_value(res, 0, "to_version"));
		dep_rollout_spec_decode(&out->spec, res, 0);
		snprintf(out->waiting_for, sizeof(out->waiting_for), "%s",
			 db_value(res, 0, "waiting_for"));
	}
	PQclear(res);
	return 0;
}

int store_rollout_waiting(struct store_lease *l, const struct store_rollout *ro,
			  const char *waiting_for, struct nova_err *err)
{
	const char *params[2] = {ro->id_s, waiting_for};
	if (strcmp(ro->waiting_for, waiting_for) == 0)
		return 0;
	return store_write(l, "UPDATE rollouts SET waiting_for = $2, updated_at = now() "
			      "WHERE id = $1::bigint AND state IN ('rolling', 'canary', 'rolling_back')",
			   2, params, err);
}

int store_rollout_finish(struct store_lease *l, const struct store_rollout *ro, const char *state,
			 const char *event, struct nova_err *err)
{
	const char *params[3] = {ro->id_s, state, event};
	return store_write(l,
			   "WITH f AS (UPDATE rollouts SET state = $2, waiting_for = '', "
			   "updated_at = now(), finished_at = now() WHERE id = $1::bigint "
			   "AND state IN ('rolling', 'canary', 'rolling_back') RETURNING deployment_id) "
			   "INSERT INTO deployment_events (deployment_id, from_state, to_state, reason, kind) "
			   "SELECT d.id, d.state, d.state, $3, 'rollout' FROM deployments d JOIN f "
			   "ON f.deployment_id = d.id",
			   3, params, err);
}

int store_replica_counts(struct store_replica_counts *out, struct db_pool *db, const char *dep_id,
			 struct nova_err *err)
{
	const char *params[1] = {dep_id};
	PGresult *res = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = db_pool_exec(&res, db,
			       "SELECT count(*) FILTER (WHERE state = 'pending') AS pending, "
			       "count(*) FILTER (WHERE state = 'ready') AS ready, count(*) AS total "
			       "FROM replicas WHERE deployment_id = $1::uuid", 1, params, err)))
		return rc;
	out->pending = atoll(db_value(res, 0, "pending"));
	out->ready = atoll(db_value(res, 0, "ready"));
	out->total = atoll(db_value(res, 0, "total"));
	PQclear(res);
	return 0;
}

int store_nodes_used(unsigned *used, const struct pool_node *nodes, size_t n, struct db_pool *db,
		     struct nova_err *err)
{
	/* Node ids are uuids read from the database: safe in an array
	 * literal, itself a parameter. */
	struct textbuf ids = {0};
	PGresult *res = NULL;
	size_t k = 0;
	int rc;
	for (size_t i = 0; i < n; i++)
		db_array_add(&ids, &k, nodes[i].id);
	db_array_end(&ids, k);
	if (ids.failed) {
		textbuf_finish(&ids);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	const char *params[1] = {ids.p};
	/* One row per node, in the order given: row i is nodes[i]'s (no
	 * search per node, which was quadratic in a pool's size). */
	rc = db_pool_exec(&res, db,
			  "SELECT coalesce(sum(rp.accelerators), 0) FROM unnest($1::uuid[]) "
			  "WITH ORDINALITY AS u(id, i) LEFT JOIN replica_placements rp "
			  "ON rp.node_id = u.id GROUP BY u.i ORDER BY u.i",
			  1, params, err);
	textbuf_finish(&ids);
	if (rc)
		return rc;
	if ((size_t)PQntuples(res) != n) {
		int rows = PQntuples(res);
		PQclear(res);
		return nova_err_set(err, NOVA_EINTERNAL, "", "placement sums: %d rows for %zu nodes",
				    rows, n);
	}
	for (size_t i = 0; i < n; i++)
		used[i] = (unsigned)strtoul(PQgetvalue(res, (int)i, 0), NULL, 10);
	PQclear(res);
	return 0;
}

int store_placement_write(bool *written, bool *replica_gone, struct store_lease *l,
			  const char *replica_id, const struct store_stage *stages, size_t n_stages,
			  struct nova_err *err)
{
	char sql[2048], ids[PLACEMENT_MAX_STAGES * 40 + 4];
	char acc[PLACEMENT_MAX_STAGES][16], stage[PLACEMENT_MAX_STAGES][24];
	char cap[PLACEMENT_MAX_STAGES][16];
	const char *params[1 + 4 * PLACEMENT_MAX_STAGES];
	size_t np = 0, off, ioff = 0, n_rooms = 0;
	struct pool_node_room *rooms = NULL;
	struct db_conn *c;
	PGresult *res = NULL;
	int rc;
	*written = false;
	*replica_gone = false;
	if (n_stages == 0 || n_stages > PLACEMENT_MAX_STAGES)
		return nova_err_set(err, NOVA_EINVAL, "stages", "a gang of 1 to %d stages",
				    PLACEMENT_MAX_STAGES);
	ids[ioff++] = '{';
	for (size_t s = 0; s < n_stages; s++)
		/* Node ids are uuids read from the database: safe in an array
		 * literal, which is itself passed as a parameter. */
		ioff += (size_t)snprintf(ids + ioff, sizeof(ids) - ioff, "%s%s", s ? "," : "",
					 stages[s].node_id);
	snprintf(ids + ioff, sizeof(ids) - ioff, "}");
	if ((rc = db_conn_acquire(&c, l->db, err)))
		return rc;
	if ((rc = db_tx_begin(c, err)) != 0)
		goto out;
	if ((rc = store_fence(l, c, err)) == 0)
		rc = pool_nodes_reserve(&rooms, &n_rooms, c, ids, err);
	if (rc == 0) {
		/* Each stage's node with its room as pools has it now, locked:
		 * -1 when it takes no replicas (or is gone). */
		params[np++] = replica_id;
		off = (size_t)snprintf(sql, sizeof(sql), "WITH want (stage, node_id, acc, cap) AS (VALUES ");
		for (size_t s = 0; s < n_stages; s++) {
			long long room = -1;
			for (size_t k = 0; k < n_rooms; k++)
				if (!strcmp(rooms[k].id, stages[s].node_id) && rooms[k].schedulable)
					room = rooms[k].accelerator_count;
			snprintf(stage[s], sizeof(stage[s]), "%zu", s);
			snprintf(acc[s], sizeof(acc[s]), "%u", stages[s].accelerators);
			snprintf(cap[s], sizeof(cap[s]), "%lld", room);
			off += (size_t)snprintf(sql + off, sizeof(sql) - off,
						"%s($%zu::integer, $%zu::uuid, $%zu::integer, $%zu::integer)",
						s ? ", " : "", np + 1, np + 2, np + 3, np + 4);
			params[np++] = stage[s];
			params[np++] = stages[s].node_id;
			params[np++] = acc[s];
			params[np++] = cap[s];
		}
		snprintf(sql + off, sizeof(sql) - off,
			 "), need AS (SELECT node_id, sum(acc) AS total, min(cap) AS cap FROM want "
			 "GROUP BY node_id), "
			 "fits AS (SELECT coalesce(bool_and(need.cap >= need.total + coalesce((SELECT "
			 "sum(rp.accelerators) FROM replica_placements rp WHERE rp.node_id = need.node_id), "
			 "0)), false) AS ok FROM need), "
			 "p AS (INSERT INTO replica_placements (replica_id, stage, node_id, accelerators) "
			 "SELECT $1::uuid, stage, node_id, acc FROM want WHERE (SELECT ok FROM fits) "
			 "AND EXISTS (SELECT 1 FROM replicas WHERE id = $1::uuid AND state = 'pending') "
			 "RETURNING 1) "
			 "SELECT (SELECT count(*) FROM p), EXISTS (SELECT 1 FROM replicas WHERE id = $1::uuid "
			 "AND state = 'pending')");
		rc = db_exec_one(&res, c, sql, (int)np, params, err);
	}
	if (rc == 0 && atoi(PQgetvalue(res, 0, 0)) > 0)
		rc = db_exec(NULL, c,
			     "UPDATE replicas SET state = 'placed', state_reason = 'placed', "
			     "updated_at = now() WHERE id = $1::uuid AND state = 'pending'",
			     1, params, err);
	if (rc == 0) {
		*written = atoi(PQgetvalue(res, 0, 0)) > 0;
		*replica_gone = strcmp(PQgetvalue(res, 0, 1), "t") != 0;
		rc = db_tx_commit(c, err);
		if (rc)
			*written = false;
	} else {
		db_tx_rollback(c);
	}
out:
	free(rooms);
	PQclear(res);
	db_conn_release(l->db, c);
	return rc;
}

int store_deployment_set_state(struct store_lease *l, const char *dep_id, long long generation,
			       enum deployment_state state, const char *reason,
			       struct nova_err *err)
{
	char gen[24];
	const char *params[4] = {dep_id, deployment_state_name(state), reason, gen};
	snprintf(gen, sizeof(gen), "%lld", generation);
	return store_write(l,
			   "UPDATE deployments SET state = $2, state_reason = $3, updated_at = now() "
			   "WHERE id = $1::uuid AND generation = $4::bigint "
			   "AND (state <> $2 OR state_reason <> $3)",
			   4, params, err);
}

int store_deployment_fail(struct store_lease *l, const char *dep_id, const char *reason,
			  struct nova_err *err)
{
	const char *params[2] = {dep_id, reason};
	int rc = store_write(l, "UPDATE deployments SET state = 'failed', state_reason = $2 "
				"WHERE id = $1::uuid AND state NOT IN ('stopped', 'failed')",
			     2, params, err);
	int rc2 = store_write(l, "UPDATE replicas SET state = 'failed', state_reason = $2, "
				 "updated_at = now() WHERE deployment_id = $1::uuid AND state = 'pending'",
			      2, params, err);
	return rc ? rc : rc2;
}

int store_deployment_requeue_if_changed(struct db_pool *db, const char *dep_id,
					long long generation, struct nova_err *err)
{
	char gen[24];
	const char *params[2] = {dep_id, gen};
	snprintf(gen, sizeof(gen), "%lld", generation);
	return db_pool_exec(NULL, db,
			    "INSERT INTO work_items (kind, subject_id) SELECT 'deployment', id "
			    "FROM deployments WHERE id = $1::uuid AND generation <> $2::bigint "
			    "ON CONFLICT (kind, subject_id) WHERE state = 'queued' DO NOTHING",
			    2, params, err);
}

int store_queue_stats(struct worker_queue_stats *out, struct db_pool *db, struct nova_err *err)
{
	PGresult *res = NULL;
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = db_pool_exec(&res, db,
			       "SELECT count(*) FILTER (WHERE state = 'queued') AS queued, "
			       "coalesce(sum(attempts) FILTER (WHERE state = 'queued'), 0) AS attempts, "
			       "count(*) FILTER (WHERE state = 'failed') AS failed, "
			       "coalesce(extract(epoch FROM now() - min(created_at) "
			       "FILTER (WHERE state = 'queued')), 0) AS oldest_s FROM work_items",
			       0, NULL, err)))
		return rc;
	out->queued = strtoull(db_value(res, 0, "queued"), NULL, 10);
	out->attempts = strtoull(db_value(res, 0, "attempts"), NULL, 10);
	out->failed = strtoull(db_value(res, 0, "failed"), NULL, 10);
	out->oldest_s = strtod(db_value(res, 0, "oldest_s"), NULL);
	PQclear(res);
	return 0;
}
