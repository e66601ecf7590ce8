#include "deployments/worker.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "core/log.h"
#include "deployments/deployment.h"
#include "deployments/placement.h"
#include "deployments/store_int.h"
#include "models/model.h"
#include "pools/pool.h"

void worker_config_defaults(struct worker_config *cfg)
{
	char host[64] = "novad";
	memset(cfg, 0, sizeof(*cfg));
	gethostname(host, sizeof(host) - 1);
	snprintf(cfg->owner, sizeof(cfg->owner), "%s:%ld", host, (long)getpid());
	cfg->lease_ms = 30000;
	cfg->poll_ms = 500;
	cfg->base_backoff_ms = 500;
	cfg->max_backoff_ms = 30000;
	cfg->wait_ms = 2000;
	cfg->drain_min_ms = 3000;
	cfg->threads = 2;
}

struct wk_ctx {
	struct db_pool *db;
	const struct worker_config *cfg;
	struct store_item item;
	struct store_lease lease; /* every write of the pass is fenced by it */
	/* The pass's deployment, with its pool and model as their modules
	 * load them. */
	struct deployment dep;
	struct pool *pool;
	struct model *model;
	struct adapter *ad;
	char reason[512];    /* why replicas are still pending */
	bool replica_gone;   /* the replica being placed is no longer pending */
	/* The pool as placement sees it, kept across the replicas of one pass
	 * (indexed), dropped when it may be stale. */
	struct wk_view *view;
	struct placement_index *ix;
	/* The node this pass made (wk_node_create), so that placing on it is
	 * not taken for taking a warm node. */
	char created[POOL_ID_LEN];
	unsigned wait_ms;    /* WK_WAIT's delay when not 0 (else cfg->wait_ms) */
};

/* How soon a pass comes back while replicas drain. */
#define DRAIN_POLL_MS 250

static unsigned wk_backoff_ms(const struct worker_config *cfg, int attempts)
{
	unsigned long long ms = cfg->base_backoff_ms;
	unsigned r = 0;
	for (int i = 1; i < attempts && ms < cfg->max_backoff_ms; i++)
		ms *= 2;
	if (ms > cfg->max_backoff_ms)
		ms = cfg->max_backoff_ms;
	/* Full jitter on the upper half: spreads retries of a fleet apart. */
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (unsigned)time(NULL);
	return (unsigned)(ms / 2 + (ms / 2 ? r % (ms / 2 + 1) : 0));
}

enum wk_outcome { WK_DONE, WK_RETRY, WK_WAIT, WK_FAIL };

static int wk_finish(struct wk_ctx *x, enum wk_outcome how, const char *msg, struct nova_err *err)
{
	switch (how) {
	case WK_DONE:
		return store_item_finish(&x->lease, STORE_DONE, msg, 0, err);
	case WK_FAIL:
		return store_item_finish(&x->lease, STORE_FAIL, msg, 0, err);
	case WK_WAIT:
		return store_item_finish(&x->lease, STORE_WAIT, msg,
					 x->wait_ms ? x->wait_ms : x->cfg->wait_ms, err);
	case WK_RETRY:
	default:
		return store_item_finish(&x->lease, STORE_RETRY, msg,
					 wk_backoff_ms(x->cfg, x->item.attempts), err);
	}
}

/* --- loading ------------------------------------------------------------------- */

static void wk_dep_finish(struct wk_ctx *x)
{
	deployment_finish(&x->dep);
	pool_free(x->pool);
	model_free(x->model);
	x->pool = NULL;
	x->model = NULL;
}

static int wk_dep_load(struct wk_ctx *x, struct nova_err *err)
{
	int rc;
	if ((rc = deployment_load(&x->dep, x->db, x->item.subject, err)) ||
	    (rc = pool_get(&x->pool, x->db, x->dep.pool_id, err)) ||
	    (rc = model_get(&x->model, x->db, x->dep.model_id, err)))
		return rc;
	return 0;
}

/* --- nodes ---------------------------------------------------------------------- */

/* Provision (or re-provision, after a crash) one node whose row exists,
 * unless another worker holds its lease (it is doing the same right now):
 * pool_node_provision, the one path (the reconciler's warm nodes take it
 * too). */
static int wk_node_provision(struct wk_ctx *x, const struct pool_node *n, struct nova_err *err)
{
	return pool_node_provision(x->db, x->ad, n, x->cfg->gateway_url, x->cfg->lease_ms,
				   "provisioned", err);
}

/* Static providers: every discovered node gets a row and is claimed. Nodes
 * of any provider left in provisioning (a crash between the row and the
 * adapter's answer) are provisioned again: the adapter finds the same
 * resource by the node id. */
static int wk_nodes_sync(struct wk_ctx *x, struct nova_err *err)
{
	struct pool_node *nodes = NULL;
	size_t n = 0;
	int rc;
	if (!adapter_is_ephemeral(x->ad)) {
		struct adapter_resources res;
		if ((rc = adapter_discover_resources(&res, x->ad, err)))
			return rc;
		if ((rc = pool_nodes_list(&nodes, &n, x->db, x->dep.pool_id, err))) {
			adapter_resources_finish(&res);
			return rc;
		}
		for (size_t i = 0; rc == 0 && i < res.n_nodes; i++) {
			const struct adapter_static_node *sn = &res.nodes[i];
			bool known = false;
			char id[POOL_ID_LEN];
			for (size_t j = 0; j < n && !known; j++)
				known = strcmp(nodes[j].handle, sn->handle) == 0 ||
					strcmp(nodes[j].name, sn->handle) == 0;
			if (known || !sn->reachable)
				continue;
			struct pool_node_spec spec = {sn->handle, sn->handle, sn->accelerator_type,
						      sn->accelerator_count, sn->memory_mib, sn->labels};
			rc = pool_node_add(id, NULL, 0, x->db, x->dep.pool_id, &spec, err);
			if (rc == NOVA_EEXISTS) /* another worker added it meanwhile */
				rc = 0;
		}
		adapter_resources_finish(&res);
		pool_nodes_free(nodes, n);
		nodes = NULL;
		if (rc)
			return rc;
	}
	if ((rc = pool_nodes_list(&nodes, &n, x->db, x->dep.pool_id, err)))
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (nodes[i].state == POOL_NODE_PROVISIONING)
			rc = wk_node_provision(x, &nodes[i], err);
	pool_nodes_free(nodes, n);
	return rc;
}

/* Ephemeral providers: a new node sized as the provider makes them, for the
 * stage that did not fit, if the pool's quotas allow one more. */
static int wk_node_create(bool *created, struct wk_ctx *x, const struct model_stage *stage,
			  size_t live_nodes, unsigned long long live_accels, struct nova_err *err)
{
	struct adapter_resources res;
	const struct adapter_capacity *cap = NULL;
	char id[POOL_ID_LEN], name[64];
	int rc;
	*created = false;
	if (x->pool->quotas.max_nodes >= 0 && (long long)live_nodes >= x->pool->quotas.max_nodes) {
		snprintf(x->reason, sizeof(x->reason), "no capacity: pool is at its quota of %lld nodes",
			 x->pool->quotas.max_nodes);
		return 0;
	}
	if ((rc = adapter_discover_resources(&res, x->ad, err)))
		return rc;
	for (size_t i = 0; i < res.n_capacity && !cap; i++)
		if ((!stage->accelerator_type[0] ||
		     strcmp(res.capacity[i].accelerator_type, stage->accelerator_type) == 0) &&
		    res.capacity[i].max_per_node >= stage->accelerators &&
		    res.capacity[i].memory_mib >= stage->memory_mib)
			cap = &res.capacity[i];
	if (!cap) {
		snprintf(x->reason, sizeof(x->reason),
			 "no capacity: the provider offers no node for %u x %s", stage->accelerators,
			 stage->accelerator_type[0] ? stage->accelerator_type : "accelerator");
	} else if (x->pool->quotas.max_accelerators >= 0 &&
		   (long long)(live_accels + cap->max_per_node) > x->pool->quotas.max_accelerators) {
		snprintf(x->reason, sizeof(x->reason),
			 "no capacity: a new node of %u accelerators would pass the pool's quota of %lld",
			 cap->max_per_node, x->pool->quotas.max_accelerators);
	} else {
		/* The row (and its id) first: a retry provisions this node again
		 * rather than a second one. */
		snprintf(name, sizeof(name), "n-%.8s", x->dep.id);
		char suffix[16];
		unsigned r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (unsigned)clock();
		snprintf(suffix, sizeof(suffix), "-%06x", r & 0xffffff);
		strncat(name, suffix, sizeof(name) - strlen(name) - 1);
		struct pool_node_spec spec = {name, NULL, cap->accelerator_type, cap->max_per_node,
					      cap->memory_mib, x->dep.labels};
		if ((rc = pool_node_add(id, NULL, 0, x->db, x->dep.pool_id, &spec, err)) == 0) {
			struct pool_node pn = {0};
			snprintf(pn.id, sizeof(pn.id), "%s", id);
			snprintf(pn.name, sizeof(pn.name), "%s", name);
			snprintf(pn.accelerator_type, sizeof(pn.accelerator_type), "%s", cap->accelerator_type);
			pn.accelerator_count = cap->max_per_node;
			pn.labels = x->dep.labels;
			if ((rc = wk_node_provision(x, &pn, err)) == 0) {
				*created = true;
				snprintf(x->created, sizeof(x->created), "%s", id);
			}
		}
	}
	adapter_resources_finish(&res);
	return rc;
}

/* --- replicas ---------------------------------------------------------------------- */

struct wk_view {
	struct pool_node *nodes;
	size_t n;
	struct placement_node *pn;
	size_t live_nodes;
	unsigned long long live_accels;
};

static void wk_view_free(struct wk_view *v)
{
	pool_nodes_free(v->nodes, v->n);
	free(v->pn);
	memset(v, 0, sizeof(*v));
}

/* Ready nodes of the pool with what is still free on each. */
static int wk_view_load(struct wk_view *v, struct wk_ctx *x, struct nova_err *err)
{
	int rc;
	memset(v, 0, sizeof(*v));
	if ((rc = pool_nodes_list(&v->nodes, &v->n, x->db, x->dep.pool_id, err)))
		return rc;
	v->pn = calloc(v->n ? v->n : 1, sizeof(*v->pn));
	if (!v->pn)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	unsigned *used = calloc(v->n ? v->n : 1, sizeof(*used));
	if (!used)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = store_nodes_used(used, v->nodes, v->n, x->db, err))) {
		free(used);
		return rc;
	}
	for (size_t i = 0; i < v->n; i++) {
		struct pool_node *n = &v->nodes[i];
		struct placement_node *p = &v->pn[i];
		const char *k;
		json_t *val;
		p->id = n->id;
		p->accelerator_type = n->accelerator_type;
		p->memory_mib = n->accelerator_memory_mib;
		p->total = n->accelerator_count;
		p->free = used[i] >= n->accelerator_count ? 0 : n->accelerator_count - used[i];
		p->schedulable = n->state == POOL_NODE_READY && !n->cordoned;
		json_object_foreach(n->labels, k, val) {
			if (p->n_labels < PLACEMENT_MAX_LABELS && json_is_string(val))
				p->labels[p->n_labels++] = (struct placement_label){k, json_string_value(val)};
		}
		if (n->state != POOL_NODE_FAILED) {
			v->live_nodes++;
			v->live_accels += n->accelerator_count;
		}
	}
	free(used);
	return 0;
}

/* Write a replica's gang of placements in one fenced transaction, only if
 * the nodes still have the room and are still schedulable: the nodes are
 * locked first (in id order), so two workers placing on the same node
 * serialize, and the check that follows sees what the other committed.
 * *written is false when the room is gone (look again) or the replica is no
 * longer pending (x->replica_gone). */
/* The pass's view of the pool, loaded and indexed on first use. */
static int wk_view_get(struct wk_ctx *x, struct nova_err *err)
{
	int rc;
	if (x->view)
		return 0;
	if (!(x->view = calloc(1, sizeof(*x->view))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = wk_view_load(x->view, x, err)) ||
	    (rc = placement_index_create(&x->ix, x->view->pn, x->view->n, err))) {
		wk_view_free(x->view);
		free(x->view);
		x->view = NULL;
		return rc;
	}
	return 0;
}

static void wk_view_drop(struct wk_ctx *x)
{
	placement_index_destroy(x->ix);
	x->ix = NULL;
	if (x->view) {
		wk_view_free(x->view);
		free(x->view);
		x->view = NULL;
	}
}

static int wk_placement_write(bool *written, struct wk_ctx *x, const char *replica_id,
			      const struct placement_request *req, const struct placement_result *r,
			      const struct wk_view *v, struct nova_err *err)
{
	struct store_stage stages[PLACEMENT_MAX_STAGES];
	for (size_t s = 0; s < req->n_stages; s++)
		stages[s] = (struct store_stage){v->nodes[r->node[s]].id, req->stages[s].accelerators};
	return store_placement_write(written, &x->replica_gone, &x->lease, replica_id, stages,
				     req->n_stages, err);
}

/* Whether the placement r (just taken from the index, which took its
 * room) went to a node that held nothing before it and that this pass did
 * not make: an idle node of the pool, one its warm_nodes kept. */
static bool wk_took_idle(const struct wk_ctx *x, const struct placement_request *req,
			 const struct placement_result *r, const struct wk_view *v)
{
	for (size_t s = 0; s < req->n_stages; s++) {
		const struct placement_node *pn = &v->pn[r->node[s]];
		unsigned taken = 0;
		for (size_t t = 0; t < req->n_stages; t++)
			if (r->node[t] == r->node[s])
				taken += req->stages[t].accelerators;
		if (pn->free + taken == pn->total && strcmp(pn->id, x->created) != 0)
			return true;
	}
	return false;
}

static int wk_replica_place(bool *placed, struct wk_ctx *x, const char *replica_id,
			    struct nova_err *err)
{
	struct placement_stage stages[PLACEMENT_MAX_STAGES];
	struct placement_label sel[PLACEMENT_MAX_LABELS];
	struct placement_result r;
	size_t n_sel = 0;
	const char *k;
	json_t *val;
	bool ok;
	int rc;
	*placed = false;
	for (size_t i = 0; i < x->model->n_stages; i++) {
		const struct model_stage *s = &x->model->stages[i];
		stages[i] = (struct placement_stage){s->name, s->accelerator_type, s->accelerators,
						     s->memory_mib};
	}
	json_object_foreach(x->dep.labels, k, val) {
		if (n_sel < PLACEMENT_MAX_LABELS)
			sel[n_sel++] = (struct placement_label){k, json_string_value(val)};
	}
	struct placement_request req = {stages, x->model->n_stages,
					placement_policy_parse(x->dep.placement, &ok), sel, n_sel};
	for (int round = 0; round < 1 + PLACEMENT_MAX_STAGES; round++) {
		struct nova_err perr;
		if ((rc = wk_view_get(x, err)))
			return rc;
		struct wk_view *v = x->view;
		rc = placement_index_place(&r, x->ix, &req, &perr);
		if (rc == 0) {
			bool written = false;
			if (x->cfg->test_before_placement_write)
				x->cfg->test_before_placement_write(x->cfg->test_ctx,
								    v->nodes[r.node[0]].id);
			bool warm = x->pool->warm_nodes > 0 && wk_took_idle(x, &req, &r, v);
			rc = wk_placement_write(&written, x, replica_id, &req, &r, v, err);
			if (rc == 0 && written) {
				*placed = true;
				notify_signal(x->cfg->placed);
				/* A warm node was taken: the reconciler provisions one
				 * behind it now rather than at its next period. */
				if (warm)
					notify_signal(x->cfg->warm_taken);
				nova_log_kv(NOVA_LOG_INFO, "worker", "replica placed", "deployment",
					    x->dep.id, "replica", replica_id, "node",
					    v->nodes[r.node[0]].name, NULL);
				/* The index has taken the room: the view stays current. */
				return 0;
			}
			wk_view_drop(x);
			if (rc == 0 && !x->replica_gone)
				continue; /* another worker took that room first: look again */
			return rc;
		}
		snprintf(x->reason, sizeof(x->reason), "%s", perr.message);
		if (!adapter_is_ephemeral(x->ad))
			return 0;
		/* Find the first stage with no room anywhere and make a node for it
		 * (placement_place on the view's nodes: it is dropped after). */
		const struct model_stage *need = &x->model->stages[0];
		for (size_t s = 0; s < x->model->n_stages; s++) {
			struct placement_result one;
			struct placement_request rq = {&stages[s], 1, req.policy, sel, n_sel};
			if (placement_place(&one, v->pn, v->n, &rq, &perr) != 0) {
				need = &x->model->stages[s];
				break;
			}
		}
		bool created;
		size_t live_nodes = v->live_nodes;
		unsigned long long live_accels = v->live_accels;
		wk_view_drop(x);
		rc = wk_node_create(&created, x, need, live_nodes, live_accels, err);
		if (rc || !created)
			return rc;
	}
	return 0;
}

/* --- one pass over a deployment ---------------------------------------------------- */

static int wk_set_state(struct wk_ctx *x, enum deployment_state state, const char *reason,
			struct nova_err *err)
{
	return store_deployment_set_state(&x->lease, x->dep.id, x->dep.generation, state, reason,
					  err);
}

/* Stop the draining replicas whose drain ended: idle after drain_min_ms,
 * or past the timeout. *left: those still draining; *ended: stopped now. */
static int wk_drains(long long *left, long long *ended, struct wk_ctx *x, long long timeout_ms,
		     struct nova_err *err)
{
	struct store_drain *dr = NULL;
	size_t n = 0;
	int rc;
	*left = *ended = 0;
	if ((rc = store_drains(&dr, &n, x->db, x->dep.id, err)))
		return rc;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		bool done = dr[i].elapsed_ms >= timeout_ms;
		const char *why = "drain timeout";
		if (!done && dr[i].elapsed_ms >= (long long)x->cfg->drain_min_ms && x->cfg->replica_idle &&
		    x->cfg->replica_idle(x->cfg->replica_idle_ctx, dr[i].id, dr[i].node_id) == 1) {
			done = true;
			why = "drained";
		}
		if (!done) {
			(*left)++;
			continue;
		}
		if ((rc = store_drain_end(&x->lease, dr[i].id, err)) == 0) {
			(*ended)++;
			nova_log_kv(NOVA_LOG_INFO, "worker", "replica stopped after its drain", "deployment",
				    x->dep.id, "replica", dr[i].id, "reason", why, NULL);
		}
	}
	free(dr);
	if (*ended)
		notify_signal(x->cfg->placed); /* the nodes' assignments changed */
	return rc;
}

/* How many replicas the target version (the deployment's model) wants
 * now, as the rollout (or its absence) has it. */
static long long wk_target_count(const struct wk_ctx *x, const struct store_rollout *ro,
				 const struct store_sets *sets)
{
	long long r = x->dep.replicas;
	if (!ro->active)
		return r + x->dep.standby_replicas;
	if (strcmp(ro->state, "canary") == 0)
		return deployment_canary_replicas(r, ro->spec.canary_percent);
	/* Rolling (either way): new replicas up to the count, the whole at
	 * most max_surge above it (draining replicas not counted, as
	 * Kubernetes does not count terminating pods). */
	long long room = r + ro->spec.max_surge - (sets->t_live + sets->o_live);
	long long want = sets->t_live + (room > 0 ? room : 0);
	return want > r ? r : want;
}

/* Step 5 while versions are mixed (a rollout, or replicas of a previous
 * version still going): the rollout's progress or its end, and the
 * deployment's state from the ready serving replicas of every version.
 * changed: replicas began or ended draining in this pass. */
static int wk_versions_state(enum wk_outcome *how, struct wk_ctx *x, const struct store_rollout *ro,
			     long long desired, long long changed, struct nova_err *err)
{
	struct store_sets sets;
	char waiting[512], reason[1200];
	long long r = x->dep.replicas;
	int rc;
	if ((rc = store_replica_sets(&sets, x->db, x->dep.id, x->dep.model_id, r, err)))
		return rc;
	bool back = ro->active && strcmp(ro->state, "rolling_back") == 0;
	bool canary = ro->active && strcmp(ro->state, "canary") == 0;
	const char *target = back ? ro->from_version : ro->to_version;
	const char *prev = back ? ro->to_version : ro->from_version;
	if (!ro->active)
		snprintf(waiting, sizeof(waiting), "%lld replicas of a previous version to stop",
			 sets.o_total);
	else if (sets.t_pending > 0)
		snprintf(waiting, sizeof(waiting), "version %s: %lld of %lld replicas placed; %.300s",
			 target, desired - sets.t_pending, desired, x->reason[0] ? x->reason : "placing");
	else if (sets.t_ready < desired)
		snprintf(waiting, sizeof(waiting), "version %s: %lld of %lld replicas ready", target,
			 sets.t_ready, desired);
	else if (sets.draining > 0)
		snprintf(waiting, sizeof(waiting), "%lld replicas of version %s draining", sets.draining,
			 prev);
	else if (canary)
		snprintf(waiting, sizeof(waiting),
			 "canary: version %s takes %lld%% of the traffic on %lld replicas; promote or "
			 "roll back", target, ro->spec.canary_percent, sets.t_ready);
	else if (sets.o_total > 0)
		snprintf(waiting, sizeof(waiting), "%lld replicas of version %s to replace", sets.o_total,
			 prev);
	else
		snprintf(waiting, sizeof(waiting), "version %s: %lld of %lld replicas ready", target,
			 sets.t_ready, r);
	bool done = !canary && sets.o_total == 0 && sets.draining == 0 && sets.t_live == desired &&
		    sets.t_ready == r && desired == r;
	if (ro->active && done) {
		char ev[300];
		if (back)
			snprintf(ev, sizeof(ev), "rolled back to version %s: %lld replicas ready", target, r);
		else
			snprintf(ev, sizeof(ev), "rollout to version %s complete: %lld replicas ready",
				 target, r);
		if ((rc = store_rollout_finish(&x->lease, ro, back ? "rolled_back" : "complete", ev, err)))
			return rc;
		nova_log_kv(NOVA_LOG_INFO, "worker", back ? "rollback complete" : "rollout complete",
			    "deployment", x->dep.id, "version", target, NULL);
		/* The standby (if any) is made by the next pass, as usual. */
		*how = x->dep.standby_replicas > 0 ? WK_WAIT : WK_DONE;
		x->wait_ms = 1;
	} else {
		if (ro->active && (rc = store_rollout_waiting(&x->lease, ro, waiting, err)))
			return rc;
		if (sets.draining > 0 || changed > 0) {
			/* A drain runs (its end is a matter of time), or a step
			 * was taken and the next may follow. */
			*how = WK_WAIT;
			x->wait_ms = DRAIN_POLL_MS;
		} else if (sets.t_pending > 0) {
			*how = WK_WAIT; /* no capacity: as any pending replica */
		}
	}
	long long avail = sets.t_serving_ready + sets.o_ready_serving;
	enum deployment_state st = avail >= r ? DEPLOYMENT_RUNNING
				   : avail > 0 && (x->dep.state == DEPLOYMENT_RUNNING ||
						   x->dep.state == DEPLOYMENT_DEGRADED)
					   ? DEPLOYMENT_DEGRADED
					   : DEPLOYMENT_DEPLOYING;
	if (ro->active && !done)
		snprintf(reason, sizeof(reason), "%s %s -> %s: %s",
			 canary ? "canary" : back ? "rolling back" : "rolling out", prev, target, waiting);
	else if (ro->active)
		snprintf(reason, sizeof(reason), "all replicas ready at version %s", target);
	else
		snprintf(reason, sizeof(reason), "%s", waiting);
	if (st == DEPLOYMENT_RUNNING && x->dep.state == DEPLOYMENT_PENDING &&
	    (rc = wk_set_state(x, DEPLOYMENT_DEPLOYING, reason, err)))
		return rc;
	return wk_set_state(x, st, reason, err);
}

static int wk_deployment(enum wk_outcome *how, struct wk_ctx *x, struct nova_err *err)
{
	struct store_rollout ro;
	struct store_sets sets;
	long long marked = 0, drains_left = 0, drains_ended = 0;
	int rc;
	*how = WK_DONE;
	if ((rc = wk_dep_load(x, err)))
		return rc == NOVA_ENOTFOUND ? 0 : rc; /* deleted meanwhile: nothing to do */
	if (x->dep.state == DEPLOYMENT_STOPPED || x->dep.state == DEPLOYMENT_FAILED)
		return 0;
	bool stopping = x->dep.state == DEPLOYMENT_STOPPING;
	long long serving = x->dep.replicas;
	memset(&ro, 0, sizeof(ro));
	if (!stopping && (rc = store_rollout_active(&ro, x->db, x->dep.id, err)))
		return rc;
	if ((rc = store_replica_sets(&sets, x->db, x->dep.id, x->dep.model_id, serving, err)))
		return rc;
	/* The serving replicas and the standby behind them (ordinals from
	 * the count up: deployments/deployment.h), all started alike; during
	 * a rollout, the target version's share. */
	long long desired = stopping ? 0 : wk_target_count(x, &ro, &sets);
	bool versions = ro.active || sets.o_total > 0 || sets.draining > 0;

	/* 1 and 2: remove what is beyond the wanted count, write what is missing. */
	if (stopping)
		rc = store_replicas_clear(&x->lease, x->dep.id, err);
	else
		rc = store_replicas_resize(&x->lease, x->dep.id, x->dep.model_id, x->dep.revision,
					   desired, err);
	if (rc)
		return rc;
	if (!stopping && versions) {
		/* The previous versions: a canary keeps them serving; rolling
		 * takes out what keeps the ready ones at least the count less
		 * max_unavailable; with no rollout (it ended), all of them. */
		bool canary = ro.active && strcmp(ro.state, "canary") == 0;
		long long drain_n = sets.o_ready_serving;
		if (ro.active && !canary) {
			long long floor = serving - ro.spec.max_unavailable;
			long long avail = sets.t_serving_ready + sets.o_ready_serving;
			drain_n = avail - (floor > 0 ? floor : 0);
		} else if (canary) {
			drain_n = 0;
		}
		char why[200];
		snprintf(why, sizeof(why), "draining: replaced by version %s",
			 ro.active && strcmp(ro.state, "rolling_back") == 0 ? ro.from_version
									     : ro.to_version);
		if ((rc = store_replicas_retire(&marked, &x->lease, x->dep.id, x->dep.model_id, serving,
						canary, drain_n, why, err)))
			return rc;
		if (marked) /* out of the routes now: the table looks again at once */
			notify_signal(x->cfg->unrouted);
		if ((rc = wk_drains(&drains_left, &drains_ended, x,
				    (ro.active ? ro.spec.drain_timeout_s : 30) * 1000, err)))
			return rc;
		/* A replica that began draining no longer counts against the
		 * surge: the next new one is written in this pass, not the
		 * next (about 0.4 s a step in bench/rollout.sh). */
		if (marked && ro.active && !canary) {
			long long again;
			if ((rc = store_replica_sets(&sets, x->db, x->dep.id, x->dep.model_id, serving,
						     err)))
				return rc;
			if ((again = wk_target_count(x, &ro, &sets)) > desired) {
				desired = again;
				if ((rc = store_replicas_resize(&x->lease, x->dep.id, x->dep.model_id,
								x->dep.revision, desired, err)))
					return rc;
			}
		}
	}

	if (desired > 0) {
		const struct adapter_ops *ops = adapter_find(x->pool->provider);
		if (!ops)
			return nova_err_set(err, NOVA_EAGAIN, "provider",
					    "provider %s is not available in this novad", x->pool->provider);
		if ((rc = adapter_instance_get(&x->ad, ops, x->dep.pool_id, x->pool->config, err)))
			return rc;
		/* 3 and 4. */
		if ((rc = wk_nodes_sync(x, err)))
			return rc;
		char(*pending)[DEPLOYMENT_ID_LEN] = NULL;
		size_t n_pending = 0;
		if ((rc = store_replicas_pending(&pending, &n_pending, x->db, x->dep.id,
						 x->dep.model_id, err)))
			return rc;
		for (size_t i = 0; rc == 0 && i < n_pending; i++) {
			bool placed;
			rc = wk_replica_place(&placed, x, pending[i], err);
			if (rc == 0 && !placed)
				break; /* the next ones will not fit either */
		}
		wk_view_drop(x);
		free(pending);
		if (rc)
			return rc;
	}

	if (!stopping && versions)
		return wk_versions_state(how, x, &ro, desired, marked + drains_ended, err);

	/* 5. */
	struct store_replica_counts counts;
	if ((rc = store_replica_counts(&counts, x->db, x->dep.id, err)))
		return rc;
	long long pending = counts.pending, ready = counts.ready, total = counts.total;
	char reason[700];
	if (desired == 0 && total == 0 && x->dep.state == DEPLOYMENT_STOPPING)
		return wk_set_state(x, DEPLOYMENT_STOPPED, "all replicas stopped", err);
	if (desired == 0)
		return wk_set_state(x, ready == 0 && x->dep.state == DEPLOYMENT_PENDING
					       ? DEPLOYMENT_PENDING
					       : x->dep.state,
				    "scaled to 0 replicas", err);
	/* None placed. A deployment that had run waits as deploying ("0 of
	 * n replicas placed"), since the state machine has no way back to
	 * pending from running or degraded (its nodes failed and nothing
	 * fits now: refusing that transition used to fail the deployment). */
	if (pending == desired && x->dep.state != DEPLOYMENT_RUNNING &&
	    x->dep.state != DEPLOYMENT_DEGRADED) {
		*how = WK_WAIT;
		return wk_set_state(x, DEPLOYMENT_PENDING, x->reason[0] ? x->reason : "waiting for capacity", err);
	}
	if (pending > 0) {
		*how = WK_WAIT;
		snprintf(reason, sizeof(reason), "%lld of %lld replicas placed; %s", desired - pending,
			 desired, x->reason);
	} else if (ready == desired) {
		/* From pending, by way of deploying: the state machine has no
		 * direct step (sql/0001), and a pending deployment can find its
		 * replicas all ready in one pass (they were placed and became
		 * ready before a pass that ended pending could run again: seen
		 * after novad was killed mid-pass). Refused, the write failed
		 * the deployment. */
		if (x->dep.state == DEPLOYMENT_PENDING &&
		    (rc = wk_set_state(x, DEPLOYMENT_DEPLOYING, "all replicas ready", err)))
			return rc;
		return wk_set_state(x, DEPLOYMENT_RUNNING, "all replicas ready", err);
	} else {
		snprintf(reason, sizeof(reason), "%lld of %lld replicas ready", ready, desired);
	}
	return wk_set_state(x,
			    ready > 0 && x->dep.state == DEPLOYMENT_RUNNING ? DEPLOYMENT_DEGRADED
									: DEPLOYMENT_DEPLOYING,
			    reason, err);
}

static int wk_process(struct wk_ctx *x, struct nova_err *err)
{
	enum wk_outcome how = WK_DONE;
	struct nova_err werr;
	int rc;
	nova_err_clear(&werr);
	nova_log_request_set(x->item.request_id);
	if (strcmp(x->item.kind, "deployment") == 0)
		rc = wk_deployment(&how, x, &werr);
	else
		rc = nova_err_set(&werr, NOVA_EINVAL, "kind", "unknown work item kind %s", x->item.kind);
	adapter_instance_put(x->ad);
	x->ad = NULL;
	if (x->lease.lost) {
		/* Someone else holds the item now: leave it to them. */
		nova_log_kv(NOVA_LOG_WARN, "worker", "lease lost", "item", x->item.id_s, NULL);
		wk_dep_finish(x);
		nova_log_request_set(NULL);
		return 0;
	}
	if (rc == NOVA_EAGAIN || rc == NOVA_EUNAVAIL)
		how = x->item.attempts >= x->item.max_attempts ? WK_FAIL : WK_RETRY;
	else if (rc)
		how = WK_FAIL;
	if (rc)
		nova_log_kv(NOVA_LOG_WARN, "worker", how == WK_FAIL ? "work item failed" : "work item retried",
			    "item", x->item.id_s, "subject", x->item.subject, "error", werr.message, NULL);
	if (how == WK_FAIL && x->dep.id[0]) {
		/* The deployment says why; a stop or start later resumes it. */
		struct nova_err e2;
		(void)store_deployment_fail(&x->lease, x->dep.id, werr.message, &e2);
	}
	rc = wk_finish(x, how, rc ? werr.message : (how == WK_WAIT ? x->reason : ""), err);
	/* Work asked for while this pass ran (a scale, a stop) gets a new item. */
	if (rc == 0 && how == WK_DONE && x->dep.id[0])
		(void)store_deployment_requeue_if_changed(x->db, x->dep.id, x->dep.generation, err);
	wk_dep_finish(x);
	nova_log_request_set(NULL);
	return x->lease.lost ? 0 : rc;
}

int worker_run_once(bool *did_work, struct db_pool *db, const struct worker_config *cfg,
		    struct nova_err *err)
{
	struct wk_ctx x = {.db = db, .cfg = cfg};
	int rc;
	*did_work = false;
	x.lease = (struct store_lease){.db = db, .item = &x.item, .owner = cfg->owner,
				       .lease_ms = cfg->lease_ms};
	if ((rc = store_item_claim(did_work, &x.item, db, cfg->owner, cfg->lease_ms, err)) ||
	    !*did_work)
		return rc;
	return wk_process(&x, err);
}

/* --- threads -------------------------------------------------------------------------- */

#define WORKER_MAX_THREADS 16

struct worker_thread {
	struct worker *w;
	struct worker_config cfg; /* its own owner name */
	pthread_t tid;
};

struct worker {
	struct db_pool *db;
	struct worker_thread threads[WORKER_MAX_THREADS];
	unsigned n;
	atomic_bool stop;
};

/* Each thread sleeps on the runtime's wake notifier: work queued by this
 * process (or a stop) wakes it at once, even when signalled while it was
 * busy (the cursor is taken before the claim, so a signal between the
 * claim finding nothing and the wait is not lost); otherwise it looks
 * every poll_ms. Rejected: the polled counter this replaces (worker_kick
 * bumped a global that every thread looked at every 10 ms: 200 wake-ups a
 * second for two idle threads) and, before it, the poll alone, which left
 * a new deployment waiting 250 ms on average before a worker looked
 * (docs/PERFORMANCE.md, deploy to routable). */
static void *wk_thread(void *arg)
{
	struct worker_thread *t = arg;
	unsigned long long seen = notify_seq(t->cfg.wake);
	while (!atomic_load(&t->w->stop)) {
		struct nova_err err;
		bool did = false;
		nova_err_clear(&err);
		if (worker_run_once(&did, t->w->db, &t->cfg, &err) != 0)
			nova_log_kv(NOVA_LOG_WARN, "worker", "worker pass failed", "error", err.message,
				    NULL);
		if (!did && !atomic_load(&t->w->stop))
			notify_wait(t->cfg.wake, &seen, t->cfg.poll_ms);
	}
	return NULL;
}

int worker_start(struct worker **out, struct db_pool *db, const struct worker_config *cfg,
		 struct nova_err *err)
{
	struct worker *w = calloc(1, sizeof(*w));
	*out = NULL;
	assert(cfg->wake);
	if (!w)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	w->db = db;
	atomic_init(&w->stop, false);
	unsigned n = cfg->threads ? cfg->threads : 1;
	if (n > WORKER_MAX_THREADS)
		n = WORKER_MAX_THREADS;
	for (unsigned i = 0; i < n; i++) {
		struct worker_thread *t = &w->threads[i];
		t->w = w;
		t->cfg = *cfg;
		snprintf(t->cfg.owner, sizeof(t->cfg.owner), "%.80s:%u", cfg->owner, i);
		if (pthread_create(&t->tid, NULL, wk_thread, t) != 0) {
			worker_stop(w);
			return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start worker thread");
		}
		w->n++;
	}
	*out = w;
	return 0;
}

void worker_stop(struct worker *w)
{
	if (!w)
		return;
	atomic_store(&w->stop, true);
	if (w->n)
		notify_signal(w->threads[0].cfg.wake);
	for (unsigned i = 0; i < w->n; i++)
		pthread_join(w->threads[i].tid, NULL);
	free(w);
}

int worker_queue_stats(struct worker_queue_stats *out, struct db_pool *db, struct nova_err *err)
{
	return store_queue_stats(out, db, err);
}
