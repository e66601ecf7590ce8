/* The Nova conductor command line: novad -d datacenter.yaml -m model.yaml
 * --allocation c1r1:c2r2 --instance-model-name NAME [--mock-agents] creates
 * (or reuses) an lpu pool with that allocation, registers the model from
 * its config and deploys it, then novad keeps serving.
 *
 * What a layout means (racks, stage groups, the pool config it makes) is
 * the provider's (adapter_config_from_layout); the conductor only reads
 * the operator's files, names things and drives the pools, models and
 * deployments modules. Rejected: parsing the allocation here with the lpu
 * provider's header, which tied the gateway to one provider's internals. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "core/files.h"
#include "core/log.h"
#include "core/ydoc.h"
#include "deployments/deployment.h"
#include "gateway/conductor.h"
#include "models/model.h"
#include "pools/pool.h"

/* The provider whose layouts the conductor flags describe: racks of a
 * datacenter file. */
#define CD_PROVIDER "lpu"

/* A DNS label from free text: lower case, '-' for anything else. */
static void cd_label(char *out, size_t len, const char *prefix, const char *s)
{
	size_t o = (size_t)snprintf(out, len, "%s", prefix);
	for (; *s && o + 1 < len && o < 63; s++) {
		char c = (char)tolower((unsigned char)*s);
		if (!isalnum((unsigned char)c))
			c = '-';
		if (c == '-' && (o == 0 || out[o - 1] == '-'))
			continue;
		out[o++] = c;
	}
	while (o > 0 && out[o - 1] == '-')
		o--;
	out[o] = '\0';
}

int gw_conductor_apply(struct db_pool *db, struct notify *work, const struct gw_conductor_args *a,
		       struct nova_err *err)
{
	char topo[PATH_MAX], pool_name[64], dep_name[64], *topo_text = NULL;
	struct ydoc *d = NULL;
	json_t *spec = NULL, *cfg = NULL, *res = NULL;
	struct model parsed = {0}, *m = NULL;
	struct pool *p = NULL;
	const struct adapter_ops *ops = adapter_find(CD_PROVIDER);
	int rc;
	if (!ops)
		return nova_err_set(err, NOVA_EUNAVAIL, "provider",
				    "provider %s is not available in this novad", CD_PROVIDER);
	/* The operator named this file on novad's own command line: it is read
	 * here and the pool gets its content (topology_inline), so it need not
	 * lie under provider_files, which bounds what API callers may name. */
	if (!realpath(a->datacenter, topo))
		return nova_err_set(err, NOVA_EINVAL, "-d", "%s: no such datacenter file", a->datacenter);
	if ((rc = files_read_capped(&topo_text, NULL, topo, FILES_READ_MAX, "-d", err)))
		return rc;
	if ((rc = ydoc_load_file(&d, a->model_config, err)) ||
	    (rc = ydoc_to_json(&spec, d, ydoc_root(d), err)))
		goto out;
	if (a->instance_model_name)
		json_object_set_new(spec, "name", json_string(a->instance_model_name));
	if ((rc = model_spec_parse(&parsed, spec, err))) {
		nova_err_prefix_field(err, "-m");
		goto out;
	}
	/* The allocation has a group of racks per stage of the model. */
	struct adapter_layout layout = {.inventory = topo_text, .selection = a->allocation,
					.stages = parsed.n_stages, .mock_agents = a->mock_agents};
	if ((rc = adapter_config_from_layout(&cfg, ops, &layout, err)))
		goto out;
	cd_label(pool_name, sizeof(pool_name), CD_PROVIDER "-", a->allocation);
	if (pool_get(&p, db, pool_name, err) != 0) {
		struct pool_spec ps = {.name = pool_name, .provider = CD_PROVIDER, .config = cfg,
				       .quotas = {.max_nodes = -1, .max_accelerators = -1}};
		if ((rc = pool_create(&p, db, &ps, NULL, err)))
			goto out;
	}
	char ref[200];
	snprintf(ref, sizeof(ref), "%s:%s", parsed.name, parsed.version);
	if (model_get(&m, db, ref, err) != 0 && (rc = model_register(&m, db, spec, NULL, err)))
		goto out;
	cd_label(dep_name, sizeof(dep_name), "", parsed.name);
	if (deployment_get(&res, db, dep_name, err) == 0) {
		enum deployment_state state = DEPLOYMENT_PENDING;
		int stopped = deployment_state_parse(
				      &state, json_string_value(json_object_get(res, "state"))) == 0 &&
			      state == DEPLOYMENT_STOPPED;
		json_decref(res);
		res = NULL;
		if (stopped)
			rc = deployment_start(&res, db, work, dep_name, NULL, err);
	} else {
		struct deployment_spec ds = {.name = dep_name, .model = ref, .pool = pool_name,
					     .replicas = 1};
		rc = deployment_create(&res, db, work, &ds, NULL, err);
	}
	if (rc == 0)
		nova_log_kv(NOVA_LOG_INFO, "conductor", "model deployed on racks", "model", parsed.name,
			    "pool", pool_name, "allocation", a->allocation, NULL);
out:
	json_decref(res);
	json_decref(cfg);
	json_decref(spec);
	json_decref(parsed.spec);
	model_free(m);
	pool_free(p);
	ydoc_destroy(d);
	free(topo_text);
	return rc;
}
