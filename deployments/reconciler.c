#include "deployments/reconciler.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "adapters/adapter.h"
#include "audit/audit.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/textbuf.h"
#include "pools/pool.h"

void reconciler_config_defaults(struct reconciler_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg)); /* gateway_url "" and every later field */
	cfg->interval_ms = 5000;
	cfg->idle_node_grace_s = 60;
	cfg->provision_timeout_s = 600;
	cfg->failed_wait_ms = 6000;
	cfg->audit_retention_days = AUDIT_DEFAULT_RETENTION_DAYS;
}

/* pool_node_retire for the pass over a pool: a node whose resource cannot be
 * removed now (its host unreachable) stays terminating, its reason saying
 * why, and is tried again every pass until it goes; it is never forgotten,
 * and it does not stop the pass for the pool's other nodes. */
static void rc_node_retire_or_report(struct db_pool *db, struct adapter *ad,
				     const struct pool_node *n, const char *reason)
{
	struct nova_err e, ignored;
	char note[400];
	nova_err_clear(&e);
	if (pool_node_retire(db, ad, n, reason, &e) == 0)
		return;
	snprintf(note, sizeof(note), "%.60s; deprovisioning failed, retrying: %.*s", reason,
		 300, e.message);
	(void)pool_node_note(db, n->id, note, &ignored);
	nova_log_kv(NOVA_LOG_WARN, "reconciler", "node not deprovisioned yet; will retry", "node",
		    n->name, "error", e.message, NULL);
}

/* Replicas on a failed or draining node lose their placements and wait to
 * be placed again; their deployment gets work. */
static int rc_replicas_move(struct db_pool *db, const struct pool_node *n, const char *reason,
			    struct nova_err *err)
{
	const char *params[2] = {n->id, reason};
	return db_pool_exec(NULL, db,
		       "WITH moved AS (UPDATE replicas SET state = 'pending', "
		       "state_reason = $2, updated_at = now() "
		       "WHERE id IN (SELECT replica_id FROM replica_placements WHERE node_id = $1::uuid) "
		       "RETURNING id, deployment_id), "
		       "gone AS (DELETE FROM replica_placements WHERE replica_id IN (SELECT id FROM moved)) "
		       "INSERT INTO work_items (kind, subject_id) "
		       "SELECT DISTINCT 'deployment', deployment_id FROM moved "
		       "ON CONFLICT (kind, subject_id) WHERE state = 'queued' "
		       "DO UPDATE SET requests = work_items.requests + 1", 2, params, err);
}

/* Ephemeral nodes as their provider sees them: a resource that failed (a
 * pod Failed) or vanished fails its node, with the provider's words (its
 * replicas then move, and the node is removed); one still pending says why
 * on the node ("pod pending: Unschedulable: 0/2 nodes are available...").
 * Each node's own trouble is logged and does not stop the others. */
static void rc_nodes_watch(struct db_pool *db, struct adapter *ad, struct pool_node *nodes,
			   size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pool_node *nd = &nodes[i];
		struct adapter_node_ref ref = {.node_id = nd->id,
					       .handle = nd->handle[0] ? nd->handle : NULL};
		struct adapter_node_info info;
		struct nova_err e;
		char reason[300];
		if (nd->state != POOL_NODE_READY && nd->state != POOL_NODE_UNHEALTHY)
			continue;
		if (adapter_node_status(&info, ad, &ref, &e) != 0)
			continue;
		if (info.state == ADAPTER_NODE_FAILED || info.state == ADAPTER_NODE_GONE) {
			snprintf(reason, sizeof(reason), "%s%s",
				 info.state == ADAPTER_NODE_GONE ? "resource gone: " : "", info.message);
			if (pool_node_transition(db, nd->id, POOL_NODE_FAILED, reason, &e) == 0) {
				nd->state = POOL_NODE_FAILED;
				nova_log_kv(NOVA_LOG_WARN, "reconciler", "node failed", "node", nd->name,
					    "reason", reason, NULL);
			}
		} else if (info.state == ADAPTER_NODE_PENDING && info.message[0]) {
			pool_node_note(db, nd->id, info.message, &e);
		} else if (info.state == ADAPTER_NODE_RUNNING && info.endpoint[0] &&
			   strcmp(info.endpoint, nd->endpoint) != 0) {
			/* The node's address once the provider knows it (a pod's
			 * IP comes after its provisioning): the inventory takes
			 * the node's endpoints on it only. */
			pool_node_set_provider_info(db, nd->id, NULL, info.endpoint, &e);
		}
	}
}

/* *out (freed with free()): a uuid[] literal of the nodes (of n) that hold
 * a placement. Node ids are uuids read from the database: safe in an array
 * literal, which is itself passed as a parameter. */
static int rc_nodes_busy(char **out, struct db_pool *db, const struct pool_node *nodes, size_t n,
			 struct nova_err *err)
{
	struct textbuf all = {0};
	PGresult *res = NULL;
	size_t k = 0;
	int rc;
	*out = NULL;
	for (size_t i = 0; i < n; i++)
		db_array_add(&all, &k, nodes[i].id);
	db_array_end(&all, k);
	if (all.failed) {
		textbuf_finish(&all);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	const char *params[1] = {all.p};
	rc = db_pool_exec(&res, db,
			  "SELECT coalesce(array_agg(DISTINCT node_id), '{}')::text "
			  "FROM replica_placements WHERE node_id = ANY($1::uuid[])",
			  1, params, err);
	textbuf_finish(&all);
	if (rc == 0 && !(*out = strdup(PQgetvalue(res, 0, 0))))
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	PQclear(res);
	return rc;
}

/* The lease the warm duty holds on a node while it provisions it (the
 * worker's default). */
#define RC_WARM_LEASE_MS 30000

/* Every pass's doings in this process (reconciler_counters_get). */
static atomic_ullong rc_n_passes, rc_n_passes_failed, rc_n_orphans, rc_n_twins, rc_n_stuck,
	rc_n_expired;

void reconciler_counters_get(struct reconciler_counters *out)
{
	out->passes = atomic_load(&rc_n_passes);
	out->passes_failed = atomic_load(&rc_n_passes_failed);
	out->orphans_removed = atomic_load(&rc_n_orphans);
	out->twins_removed = atomic_load(&rc_n_twins);
	out->stuck_failed = atomic_load(&rc_n_stuck);
	out->work_items_expired = atomic_load(&rc_n_expired);
}

/* One pool's pass: what every duty below works on. */
struct rc_pool_pass {
	struct db_pool *db;
	const struct reconciler_config *cfg;
	const struct pool *p;
	struct adapter *ad;
	struct pool_node *nodes; /* the pool's live nodes, as last listed */
	size_t n;
};

static int rc_pool_relist(struct rc_pool_pass *pp, struct nova_err *err)
{
	pool_nodes_free(pp->nodes, pp->n);
	pp->nodes = NULL;
	pp->n = 0;
	return pool_nodes_list(&pp->nodes, &pp->n, pp->db, pp->p->id, err);
}

/* Nodes left provisioning past the timeout fail (their replicas then move). */
static int rc_duty_stuck(struct rc_pool_pass *pp, struct nova_err *err)
{
	unsigned stuck = 0;
	int rc = pool_nodes_fail_stuck(&stuck, pp->db, pp->p->id, pp->cfg->provision_timeout_s,
				       "provisioning timed out", err);
	if (rc)
		return rc;
	atomic_fetch_add(&rc_n_stuck, stuck);
	return stuck ? rc_pool_relist(pp, err) : 0;
}

/* Ephemeral nodes as their provider sees them (rc_nodes_watch). */
static int rc_duty_watch(struct rc_pool_pass *pp, struct nova_err *err)
{
	(void)err;
	if (adapter_is_ephemeral(pp->ad))
		rc_nodes_watch(pp->db, pp->ad, pp->nodes, pp->n);
	return 0;
}

/* Failed, terminating and draining nodes: their replicas move, and the
 * node goes (a static drained one stays for the operator). */
static int rc_duty_fates(struct rc_pool_pass *pp, struct nova_err *err)
{
	struct db_pool *db = pp->db;
	int rc = 0;
	for (size_t i = 0; i < pp->n && rc == 0; i++) {
		struct pool_node *nd = &pp->nodes[i];
		if (nd->state == POOL_NODE_FAILED) {
			/* Failed for silence while its agent still beats (judged
			 * wrongly, or back): ready again, nothing replaced, nothing
			 * deprovisioned. Otherwise static nodes too are removed: a
			 * failed node stays failed, so a static host would be lost to
			 * the pool for good; removed (its sidecar stopped once the
			 * host answers), it is discovered again as a new node. */
			enum pool_failed_fate fate;
			if ((rc = pool_node_failed_fate(&fate, db, nd->id, pp->cfg->failed_wait_ms, err)))
				break;
			if (fate == POOL_FAILED_REVIVED) {
				nd->state = POOL_NODE_READY;
				nova_log_kv(NOVA_LOG_WARN, "reconciler",
					    "node failed for silence beats again: ready, nothing replaced",
					    "node", nd->name, NULL);
				continue;
			}
			if (fate == POOL_FAILED_WAIT)
				continue;
			rc = rc_replicas_move(db, nd, "node failed, replacing", err);
			if (!rc)
				rc_node_retire_or_report(db, pp->ad, nd, "failed node removed");
		} else if (nd->state == POOL_NODE_TERMINATING) {
			/* A deprovision that failed earlier (or a crash mid-way). */
			rc = rc_replicas_move(db, nd, "node terminating, replacing", err);
			if (!rc)
				rc_node_retire_or_report(db, pp->ad, nd, "node removed");
		} else if (nd->state == POOL_NODE_DRAINING) {
			/* Drained: replicas move; an ephemeral node then goes away,
			 * a static one waits, cordoned, for the operator. */
			rc = rc_replicas_move(db, nd, "node draining, replacing", err);
			if (!rc && adapter_is_ephemeral(pp->ad))
				rc = pool_node_retire(db, pp->ad, nd, "drained node removed", err);
		}
	}
	return rc;
}

/* Static nodes gone silent whose resource is gone are provisioned again;
 * each node's trouble is logged and does not stop the others. */
static int rc_duty_reprovision(struct rc_pool_pass *pp, struct nova_err *err)
{
	(void)err;
	if (adapter_is_ephemeral(pp->ad) || !pp->cfg->gateway_url[0])
		return 0;
	for (size_t i = 0; i < pp->n; i++) {
		struct pool_node *nd = &pp->nodes[i];
		struct adapter_node_info info;
		struct adapter_node_ref ref = {.node_id = nd->id,
					       .handle = nd->handle[0] ? nd->handle : NULL};
		struct nova_err serr;
		char token[128];
		/* Only a node that has gone silent (unhealthy: no heartbeat
		 * for its grace) and whose resource is gone: a ready node's
		 * agent is beating, wherever it runs, whatever this novad's
		 * view of the provider says. Rejected: trusting the status
		 * alone, which on a novad that could not see another's
		 * agents (their records were that novad's own) started a
		 * twin with a fresh token for every node. */
		if (nd->state != POOL_NODE_UNHEALTHY ||
		    adapter_node_status(&info, pp->ad, &ref, &serr) != 0 ||
		    info.state != ADAPTER_NODE_GONE ||
		    pool_node_token_issue(token, sizeof(token), pp->db, nd->id, &serr) != 0)
			continue;
		struct adapter_provision_request req = {
			.node_id = nd->id, .node_name = nd->name, .node_token = token,
			.gateway_url = pp->cfg->gateway_url, .handle = ref.handle,
			.accelerator_type = nd->accelerator_type,
			.accelerator_count = nd->accelerator_count, .labels = nd->labels,
		};
		int prc = adapter_provision_node(&info, pp->ad, &req, &serr);
		explicit_bzero(token, sizeof(token));
		nova_log_kv(prc ? NOVA_LOG_WARN : NOVA_LOG_INFO, "reconciler",
			    prc ? "node resource gone; provisioning it again failed"
				: "node resource was gone; provisioned again",
			    "node", nd->name, "error", prc ? serr.message : NULL, NULL);
	}
	return 0;
}

/* Ephemeral nodes idle past the grace go, but for the pool's warm_nodes:
 * up to that many idle nodes are kept (pool_nodes_idle_mark's keep). */
static int rc_duty_idle(struct rc_pool_pass *pp, struct nova_err *err)
{
	char(*idle)[POOL_ID_LEN] = NULL;
	size_t n_idle = 0;
	char *busy = NULL;
	int rc;
	if (!adapter_is_ephemeral(pp->ad))
		return 0;
	/* Which of the pool's nodes hold replicas (placements are this
	 * module's); the nodes' idle marks are pools'. */
	rc = rc_nodes_busy(&busy, pp->db, pp->nodes, pp->n, err);
	if (rc == 0)
		rc = pool_nodes_idle_mark(&idle, &n_idle, pp->db, pp->p->id, busy,
					  pp->cfg->idle_node_grace_s, pp->p->warm_nodes, err);
	for (size_t k = 0; rc == 0 && k < n_idle; k++)
		for (size_t i = 0; rc == 0 && i < pp->n; i++)
			if (!strcmp(pp->nodes[i].id, idle[k]))
				rc = pool_node_retire(pp->db, pp->ad, &pp->nodes[i], "idle node removed",
						      err);
	free(idle);
	free(busy);
	return rc;
}

/* The name of a node the warm duty makes: the prefix says who made it, so
 * that the duty provisions again only its own nodes left provisioning (a
 * worker's node is its worker's, under the node's lease: taking it over
 * while the worker looks at the pool would make that worker provision a
 * second node for its replica). */
#define RC_WARM_PREFIX "warm-"

/* A warm node's trouble, as a pool event (once while it lasts: the duty
 * meets it every pass) and in the log. */
static void rc_warm_report(struct rc_pool_pass *pp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rc_warm_report(struct rc_pool_pass *pp, const char *fmt, ...)
{
	char msg[400];
	struct nova_err ignored;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)pool_event_record_once(pp->db, pp->p->id, "warm_nodes_failed", msg, &ignored);
	nova_log_kv(NOVA_LOG_WARN, "reconciler", "warm nodes short", "pool", pp->p->name, "reason",
		    msg, NULL);
}

/* The accelerators a warm node gets: the first kind the provider offers
 * that the pool's quotas allow, as many as one node of it offers (the
 * size the worker makes a node for a replica of that kind). NULL: none. */
static const struct adapter_capacity *rc_warm_size(const struct pool *p,
						   const struct adapter_resources *res)
{
	for (size_t i = 0; i < res->n_capacity; i++) {
		const struct adapter_capacity *cap = &res->capacity[i];
		size_t n_types = json_array_size(p->quotas.accelerator_types);
		bool allowed = n_types == 0;
		for (size_t t = 0; t < n_types && !allowed; t++)
			allowed = strcmp(json_string_value(json_array_get(p->quotas.accelerator_types, t)),
					 cap->accelerator_type) == 0;
		if (allowed && cap->max_per_node > 0)
			return cap;
	}
	return NULL;
}

/* Keep warm_nodes nodes idle and ready: count the idle ones (ready,
 * uncordoned, nothing placed) and those on their way (provisioning: no
 * replica is placed on a node before it is ready), and provision the
 * missing ones through the worker's path (pool_node_add, the intent, then
 * pool_node_provision), within max_nodes and max_accelerators. A warm node
 * this duty made and left provisioning (a transient provider error) is
 * provisioned again. Trouble is a pool event and the log, and waits for
 * the next pass: one try per node per pass, never a loop. */
static int rc_duty_warm(struct rc_pool_pass *pp, struct nova_err *err)
{
	struct adapter_resources res = {0};
	const struct pool *p = pp->p;
	char *busy = NULL, reason[64];
	long long live_nodes = 0;
	unsigned long long live_accels = 0;
	unsigned warm = 0;
	int rc;
	if (!adapter_is_ephemeral(pp->ad) || p->warm_nodes == 0)
		return 0;
	/* The idle duty may have retired nodes. */
	if ((rc = rc_pool_relist(pp, err)) || (rc = rc_nodes_busy(&busy, pp->db, pp->nodes, pp->n, err)))
		goto done;
	snprintf(reason, sizeof(reason), "provisioned warm (warm_nodes %u)", p->warm_nodes);
	for (size_t i = 0; i < pp->n; i++) {
		const struct pool_node *nd = &pp->nodes[i];
		if (nd->state == POOL_NODE_PROVISIONING && !strncmp(nd->name, RC_WARM_PREFIX,
								     strlen(RC_WARM_PREFIX))) {
			struct nova_err perr;
			if (pool_node_provision(pp->db, pp->ad, nd, pp->cfg->gateway_url,
						RC_WARM_LEASE_MS, reason, &perr) != 0)
				rc_warm_report(pp, "a warm node could not be provisioned, retrying: %.300s",
					       perr.message);
		}
		if (nd->state == POOL_NODE_PROVISIONING ||
		    (nd->state == POOL_NODE_READY && !nd->cordoned && !strstr(busy, nd->id)))
			warm++;
		if (nd->state != POOL_NODE_FAILED) {
			live_nodes++;
			live_accels += nd->accelerator_count;
		}
	}
	if (warm >= p->warm_nodes)
		goto done;
	struct nova_err derr;
	if (adapter_discover_resources(&res, pp->ad, &derr) != 0) {
		/* The duties after this one do not depend on it. */
		rc_warm_report(pp, "%u of %u warm nodes: the provider's capacity is unknown: %.300s",
			       warm, p->warm_nodes, derr.message);
		goto done;
	}
	const struct adapter_capacity *cap = rc_warm_size(p, &res);
	if (!cap) {
		rc_warm_report(pp, "%u of %u warm nodes: the provider offers no node the pool's "
			       "accelerator types allow", warm, p->warm_nodes);
		goto done;
	}
	for (; warm < p->warm_nodes; warm++) {
		char id[POOL_ID_LEN], name[32];
		unsigned r = 0;
		struct nova_err perr;
		if (p->quotas.max_nodes >= 0 && live_nodes >= p->quotas.max_nodes) {
			rc_warm_report(pp, "%u of %u warm nodes: the pool is at its quota of %lld nodes",
				       warm, p->warm_nodes, p->quotas.max_nodes);
			break;
		}
		if (p->quotas.max_accelerators >= 0 &&
		    (long long)(live_accels + cap->max_per_node) > p->quotas.max_accelerators) {
			rc_warm_report(pp, "%u of %u warm nodes: a node of %u accelerators would pass "
				       "the pool's quota of %lld", warm, p->warm_nodes,
				       cap->max_per_node, p->quotas.max_accelerators);
			break;
		}
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (unsigned)clock();
		snprintf(name, sizeof(name), RC_WARM_PREFIX "%06x", r & 0xffffff);
		struct pool_node_spec spec = {name, NULL, cap->accelerator_type, cap->max_per_node,
					      cap->memory_mib, NULL};
		/* The row first: a crash before the provider's answer leaves a
		 * node this duty provisions again (the same resource). */
		if ((rc = pool_node_add(id, NULL, 0, pp->db, p->id, &spec, err)))
			goto done;
		live_nodes++;
		live_accels += cap->max_per_node;
		struct pool_node pn = {0};
		snprintf(pn.id, sizeof(pn.id), "%s", id);
		snprintf(pn.name, sizeof(pn.name), "%s", name);
		snprintf(pn.accelerator_type, sizeof(pn.accelerator_type), "%s", cap->accelerator_type);
		pn.accelerator_count = cap->max_per_node;
		if (pool_node_provision(pp->db, pp->ad, &pn, pp->cfg->gateway_url, RC_WARM_LEASE_MS,
					reason, &perr) != 0) {
			rc_warm_report(pp, "a warm node could not be provisioned, retrying: %.300s",
				       perr.message);
			break;
		}
		nova_log_kv(NOVA_LOG_INFO, "reconciler", "warm node provisioned", "pool", p->name,
			    "node", name, NULL);
	}
done:
	adapter_resources_finish(&res);
	free(busy);
	return rc;
}

/* Orphans (resources with no live node row) and twins (a second resource
 * for a row that records another handle) are deprovisioned. */
static int rc_duty_orphans(struct rc_pool_pass *pp, struct nova_err *err)
{
	struct adapter_node_list list = {0};
	/* Read the rows after the provider's list, so a node created in
	 * between is not taken for an orphan. */
	int rc = adapter_list_nodes(&list, pp->ad, err);
	if (rc == NOVA_ENOTSUP)
		return 0;
	if (rc == 0)
		rc = rc_pool_relist(pp, err);
	for (size_t i = 0; i < list.n && rc == 0; i++) {
		const struct pool_node *owner = NULL;
		for (size_t j = 0; j < pp->n && !owner; j++)
			if (strcmp(pp->nodes[j].id, list.items[i].node_id) == 0)
				owner = &pp->nodes[j];
		bool orphan = !owner;
		bool twin = owner && owner->handle[0] && list.items[i].handle[0] &&
			    strcmp(owner->handle, list.items[i].handle) != 0;
		if (!list.items[i].node_id[0] || (!orphan && !twin))
			continue;
		char why[640];
		if (orphan)
			snprintf(why, sizeof(why), "orphan: pool %s has no node %s", pp->p->name,
				 list.items[i].node_id);
		else
			snprintf(why, sizeof(why), "twin: node %s is recorded on %s", owner->name,
				 owner->handle);
		struct adapter_node_ref ref = {
			.node_id = list.items[i].node_id,
			.handle = list.items[i].handle[0] ? list.items[i].handle : NULL,
			.reason = why, .replaced = twin,
		};
		rc = adapter_deprovision_node(pp->ad, &ref, err);
		if (!rc)
			atomic_fetch_add(orphan ? &rc_n_orphans : &rc_n_twins, 1);
		if (!rc)
			nova_log_kv(NOVA_LOG_INFO, "reconciler",
				    orphan ? "orphan resource deprovisioned" : "twin resource deprovisioned",
				    "pool", pp->p->name, "node_id", list.items[i].node_id, "handle",
				    list.items[i].handle, NULL);
	}
	adapter_node_list_finish(&list);
	return rc;
}

/* A pool's pass is these duties in this order (a failed node's replicas
 * move before idle nodes are judged; orphans last, against the rows the
 * duties before left). The first that fails ends the pass for the pool,
 * named in the log, and is tried again next pass. */
static const struct {
	const char *name;
	int (*run)(struct rc_pool_pass *pp, struct nova_err *err);
} rc_duties[] = {
	{"stuck provisioning", rc_duty_stuck},
	{"provider status", rc_duty_watch},
	{"failed and drained nodes", rc_duty_fates},
	{"static nodes gone", rc_duty_reprovision},
	{"idle nodes", rc_duty_idle},
	{"warm nodes", rc_duty_warm},
	{"orphans and twins", rc_duty_orphans},
};

static int rc_pool(struct db_pool *db, const struct reconciler_config *cfg, const struct pool *p,
		   struct nova_err *err)
{
	const struct adapter_ops *ops = adapter_find(p->provider);
	struct rc_pool_pass pp = {.db = db, .cfg = cfg, .p = p};
	int rc;
	if (!ops)
		return 0; /* not this novad's provider; one that has it will */
	if ((rc = adapter_instance_get(&pp.ad, ops, p->id, p->config, err)) == 0 &&
	    (rc = rc_pool_relist(&pp, err)) == 0) {
		for (size_t d = 0; rc == 0 && d < sizeof(rc_duties) / sizeof(rc_duties[0]); d++)
			if ((rc = rc_duties[d].run(&pp, err)))
				nova_log_kv(NOVA_LOG_WARN, "reconciler", "pool duty failed", "pool",
					    p->name, "duty", rc_duties[d].name, "error",
					    err ? err->message : "", NULL);
	}
	pool_nodes_free(pp.nodes, pp.n);
	adapter_instance_put(pp.ad);
	return rc;
}

/* One pass over what this novad holds: the whole fleet (global, the
 * reconciler's lock) and/or the pools bound to this machine (machine, the
 * machine's lock). A pool bound to another machine is never touched: its
 * nodes are that machine's processes. */
static int rc_pass_body(struct db_pool *db, const struct reconciler_config *cfg, bool global,
			  bool machine, struct nova_err *err)
{
	struct pool **pools = NULL;
	size_t n = 0;
	int rc, first = 0;
	if ((rc = pool_list(&pools, &n, db, err)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct nova_err perr;
		if (pools[i]->state != POOL_ACTIVE)
			continue;
		if (pools[i]->machine[0] ? !(machine && pool_is_here(pools[i])) : !global)
			continue;
		/* One pool's provider being down must not stop the others. */
		if (rc_pool(db, cfg, pools[i], &perr) != 0) {
			nova_log_kv(NOVA_LOG_WARN, "reconciler", "pool pass incomplete", "pool",
				    pools[i]->name, "error", perr.message, NULL);
			if (!first && err)
				*err = perr;
			first = 1;
		}
	}
	pool_list_free(pools, n);
	if (!global)
		return 0; /* each pool's trouble is logged above */
	PGresult *res = NULL;
	if ((rc = db_pool_exec(&res, db,
			  "UPDATE work_items SET state = 'failed', lock_owner = NULL, lock_expires_at = NULL, "
			  "last_error = coalesce(last_error, 'worker died on the last attempt') "
			  "WHERE state = 'queued' AND attempts >= max_attempts "
			  "AND (lock_expires_at IS NULL OR lock_expires_at < now())", 0, NULL, err)))
		return rc;
	atomic_fetch_add(&rc_n_expired, strtoull(PQcmdTuples(res), NULL, 10));
	PQclear(res);
	/* Finished items are history; keep an hour of it. */
	if ((rc = db_pool_exec(NULL, db,
			  "DELETE FROM work_items WHERE state = 'done' "
			  "AND updated_at < now() - interval '1 hour'", 0, NULL, err)))
		return rc;
	/* Work for every deployment whose replicas are not what it asks for. */
	return db_pool_exec(NULL, db,
		       "INSERT INTO work_items (kind, subject_id) "
		       "SELECT 'deployment', d.id FROM deployments d "
		       "WHERE d.state NOT IN ('stopped', 'failed') AND (d.state = 'stopping' "
		       "OR EXISTS (SELECT 1 FROM replicas r WHERE r.deployment_id = d.id "
		       "AND r.state = 'pending') "
		       "OR d.replicas + d.standby_replicas <> "
		       "(SELECT count(*) FROM replicas r WHERE r.deployment_id = d.id)) "
		       "ON CONFLICT (kind, subject_id) WHERE state = 'queued' DO NOTHING", 0, NULL, err);
}

static int rc_pass_scoped(struct db_pool *db, const struct reconciler_config *cfg, bool global,
			  bool machine, struct nova_err *err)
{
	int rc = rc_pass_body(db, cfg, global, machine, err);
	atomic_fetch_add(&rc_n_passes, 1);
	if (rc)
		atomic_fetch_add(&rc_n_passes_failed, 1);
	return rc;
}

int reconciler_pass(struct db_pool *db, const struct reconciler_config *cfg, struct nova_err *err)
{
	return rc_pass_scoped(db, cfg, true, true, err);
}

/* --- the singleton thread ------------------------------------------------------------- */

struct reconciler {
	struct db_pool *db;
	struct reconciler_config cfg;
	struct db_conn *lock_conn; /* holds the advisory lock while leader */
	pthread_t tid;
	atomic_bool stop, leader, machine_leader;
	long long machine_key;
	long long audit_pruned_ms; /* CLOCK_MONOTONIC of the last prune; 0: never */
};

#define RC_AUDIT_PRUNE_EVERY_MS (3600 * 1000LL)

/* The audit trail's retention, kept by the leader at most once an hour
 * (an indexed delete of a day's rows at most). */
static void rc_audit_prune(struct reconciler *r)
{
	struct timespec ts;
	struct nova_err err;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (r->audit_pruned_ms && now - r->audit_pruned_ms < RC_AUDIT_PRUNE_EVERY_MS)
		return;
	nova_err_clear(&err);
	if (audit_prune(r->db, r->cfg.audit_retention_days, NULL, &err) == 0)
		r->audit_pruned_ms = now;
	else
		nova_log_kv(NOVA_LOG_WARN, "reconciler", "audit retention failed", "error",
			    err.message, NULL);
}

/* The advisory lock key of a machine's role: its id hashed (FNV-1a) into
 * the keys whose top byte is 'M', never the global key ('N'). */
static long long rc_machine_key(void)
{
	char id[IDS_MACHINE_LEN];
	unsigned long long h = 14695981039346656037ull;
	ids_machine_id(id);
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (long long)((h & 0x00ffffffffffffffull) | 0x4d00000000000000ull);
}

/* Take a role's lock if free; true when this novad holds it now. */
static bool rc_try_role(struct reconciler *r, long long key, const char *took)
{
	struct nova_err err;
	bool got = false;
	if (db_advisory_try_lock(&got, r->lock_conn, key, &err) == 0 && got) {
		nova_log(NOVA_LOG_INFO, "reconciler", "%s", took);
		return true;
	}
	return false;
}

/* Two roles, each a session advisory lock on one held connection: the
 * reconciler of the whole fleet (one novad), and the reconciler of the
 * pools bound to this machine (one novad per machine; pools.h). A novad
 * holding neither gives its connection back. */
static void *rc_thread(void *arg)
{
	struct reconciler *r = arg;
	unsigned long long seen = notify_seq(r->cfg.wake);
	while (!atomic_load(&r->stop)) {
		struct nova_err err;
		nova_err_clear(&err);
		bool leader = atomic_load(&r->leader), mine = atomic_load(&r->machine_leader);
		if (r->lock_conn && (leader || mine)) {
			/* Still ours? A lost session (database restart) lost the locks. */
			PGresult *res = NULL;
			if (db_exec(&res, r->lock_conn, "SELECT 1", 0, NULL, &err) != 0) {
				atomic_store(&r->leader, false);
				atomic_store(&r->machine_leader, false);
				leader = mine = false;
				db_conn_release(r->db, r->lock_conn);
				r->lock_conn = NULL;
				nova_log(NOVA_LOG_WARN, "reconciler", "lost the reconciler locks: %s",
					 err.message);
			}
			PQclear(res);
		}
		if ((!leader || !mine) && !r->lock_conn &&
		    db_conn_acquire(&r->lock_conn, r->db, &err) != 0)
			r->lock_conn = NULL;
		if (r->lock_conn && !leader &&
		    rc_try_role(r, RECONCILER_LOCK_KEY, "this novad now runs the reconciler")) {
			atomic_store(&r->leader, true);
			leader = true;
		}
		if (r->lock_conn && !mine &&
		    rc_try_role(r, r->machine_key,
				"this novad now reconciles the pools bound to this machine")) {
			atomic_store(&r->machine_leader, true);
			mine = true;
		}
		if (r->lock_conn && !leader && !mine) {
			db_conn_release(r->db, r->lock_conn);
			r->lock_conn = NULL;
		}
		if ((leader || mine) && rc_pass_scoped(r->db, &r->cfg, leader, mine, &err) != 0)
			nova_log_kv(NOVA_LOG_WARN, "reconciler", "pass failed", "error", err.message, NULL);
		if (leader)
			rc_audit_prune(r);
		/* The period, unless signalled (a stop): the cursor was taken
		 * before the pass, so a signal during it is not lost. Rejected:
		 * 50 ms naps that looked at the stop flag, 20 wake-ups a second
		 * for a pass every 5 s. */
		if (!atomic_load(&r->stop))
			notify_wait(r->cfg.wake, &seen, r->cfg.interval_ms);
	}
	return NULL;
}

int reconciler_start(struct reconciler **out, struct db_pool *db,
		     const struct reconciler_config *cfg, struct nova_err *err)
{
	struct reconciler *r = calloc(1, sizeof(*r));
	*out = NULL;
	assert(cfg->wake);
	if (!r)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	r->db = db;
	r->cfg = *cfg;
	atomic_init(&r->stop, false);
	atomic_init(&r->leader, false);
	atomic_init(&r->machine_leader, false);
	r->machine_key = rc_machine_key();
	if (pthread_create(&r->tid, NULL, rc_thread, r) != 0) {
		free(r);
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the reconciler thread");
	}
	*out = r;
	return 0;
}

bool reconciler_is_leader(const struct reconciler *r)
{
	return r && atomic_load(&r->leader);
}

void reconciler_stop(struct reconciler *r)
{
	struct nova_err err;
	if (!r)
		return;
	atomic_store(&r->stop, true);
	notify_signal(r->cfg.wake);
	pthread_join(r->tid, NULL);
	if (r->lock_conn) {
		if (atomic_load(&r->leader))
			db_advisory_unlock(r->lock_conn, RECONCILER_LOCK_KEY, &err);
		if (atomic_load(&r->machine_leader))
			db_advisory_unlock(r->lock_conn, r->machine_key, &err);
		db_conn_release(r->db, r->lock_conn);
	}
	free(r);
}
