#include "adapters/adapter.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter_int.h"
#include "core/files.h"

#include "adapters/fake/fake.h"
#include "adapters/kubernetes/kube.h"
#include "adapters/lpu/lpu.h"
#include "adapters/ssh/ssh.h"

static const struct adapter_ops *registry[ADAPTER_REGISTRY_MAX];
static size_t registry_len;

/* novad's context (adapters_start), or the default until then. */
static struct adapter_context context;
static bool context_started;
static pthread_once_t context_default_once = PTHREAD_ONCE_INIT;
static struct adapter_context context_default;

static void adapter_context_default_init(void)
{
	files_state_dir(context_default.state_dir, sizeof(context_default.state_dir));
}

int adapter_register(const struct adapter_ops *ops, struct nova_err *err)
{
	static const struct {
		size_t offset;
		const char *name;
	} required[] = {
		{offsetof(struct adapter_ops, validate), "validate"},
		{offsetof(struct adapter_ops, create), "create"},
		{offsetof(struct adapter_ops, destroy), "destroy"},
		{offsetof(struct adapter_ops, provision_node), "provision_node"},
		{offsetof(struct adapter_ops, deprovision_node), "deprovision_node"},
		{offsetof(struct adapter_ops, node_status), "node_status"},
	};
	if (!ops || !ops->name || !*ops->name)
		return nova_err_set(err, NOVA_EINVAL, "name", "adapter has no name");
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		void *fn;
		memcpy(&fn, (const char *)ops + required[i].offset, sizeof(fn));
		if (!fn)
			return nova_err_set(err, NOVA_EINVAL, required[i].name,
					    "adapter %s lacks required operation %s", ops->name,
					    required[i].name);
	}
	if (adapter_find(ops->name))
		return nova_err_set(err, NOVA_EEXISTS, "name", "adapter %s is already registered",
				    ops->name);
	if (registry_len == ADAPTER_REGISTRY_MAX)
		return nova_err_set(err, NOVA_EINTERNAL, "", "adapter registry is full");
	registry[registry_len++] = ops;
	return 0;
}

const struct adapter_ops *adapter_find(const char *name)
{
	for (size_t i = 0; name && i < registry_len; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

void adapter_names(char *buf, size_t len)
{
	size_t n = 0;
	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < registry_len && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", registry[i]->name);
}

int adapters_register_builtin(bool include_fake, struct nova_err *err)
{
	int rc = adapter_register(&lpu_adapter_ops, err);
	if (rc == 0)
		rc = adapter_register(&kube_adapter_ops, err);
	if (rc == 0)
		rc = adapter_register(&ssh_adapter_ops, err);
	if (rc == 0 && include_fake)
		rc = adapter_register(&fake_adapter_ops, err);
	return rc;
}

int adapters_start(const struct adapter_context *ctx, struct nova_err *err)
{
	int rc;
	assert(ctx);
	context = *ctx;
	if (!context.state_dir[0])
		files_state_dir(context.state_dir, sizeof(context.state_dir));
	for (size_t i = 0; i < registry_len; i++)
		if (registry[i]->start && (rc = registry[i]->start(&context, err)))
			return rc;
	context_started = true;
	return 0;
}

const struct adapter_context *adapters_context(void)
{
	if (context_started)
		return &context;
	pthread_once(&context_default_once, adapter_context_default_init);
	return &context_default;
}

void adapters_shutdown(void)
{
	adapter_instances_clear();
	for (size_t i = 0; i < registry_len; i++)
		if (registry[i]->shutdown)
			registry[i]->shutdown();
}

void adapter_registry_reset(void)
{
	adapter_instances_clear();
	registry_len = 0;
}

int adapter_validate(const struct adapter_ops *ops, const json_t *config, struct nova_err *err)
{
	assert(ops);
	if (!json_is_object(config))
		return nova_err_set(err, NOVA_EINVAL, "config", "config must be an object");
	int rc = ops->validate(config, err);
	if (rc)
		nova_err_prefix_field(err, "config");
	return rc;
}

int adapter_create(struct adapter **out, const struct adapter_ops *ops, const char *pool_id,
		   const json_t *config, struct nova_err *err)
{
	int rc;
	*out = NULL;
	if ((rc = adapter_validate(ops, config, err)))
		return rc;
	if ((rc = ops->create(out, adapters_context(), pool_id, config, err)))
		return rc;
	assert((*out)->ops == ops);
	snprintf((*out)->pool_id, sizeof((*out)->pool_id), "%s", pool_id);
	return 0;
}

void adapter_destroy(struct adapter *ad)
{
	if (ad)
		ad->ops->destroy(ad);
}

bool adapter_is_ephemeral(const struct adapter *ad)
{
	return ad->ephemeral;
}

bool adapter_config_ephemeral(const struct adapter_ops *ops, const json_t *config)
{
	return ops && ops->nodes_ephemeral && ops->nodes_ephemeral(config);
}

bool adapter_machine_bound(const struct adapter_ops *ops)
{
	return ops && ops->machine_bound;
}

int adapter_discover_resources(struct adapter_resources *out, struct adapter *ad,
			       struct nova_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!ad->ops->discover_resources)
		return nova_err_set(err, NOVA_ENOTSUP, "", "provider %s does not support discovery",
				    ad->ops->name);
	return ad->ops->discover_resources(out, ad, err);
}

int adapter_provision_node(struct adapter_node_info *out, struct adapter *ad,
			   const struct adapter_provision_request *req, struct nova_err *err)
{
	memset(out, 0, sizeof(*out));
	assert(req && req->node_id);
	return ad->ops->provision_node(out, ad, req, err);
}

int adapter_deprovision_node(struct adapter *ad, const struct adapter_node_ref *node,
			     struct nova_err *err)
{
	assert(node && node->node_id);
	return ad->ops->deprovision_node(ad, node, err);
}

int adapter_node_status(struct adapter_node_info *out, struct adapter *ad,
			const struct adapter_node_ref *node, struct nova_err *err)
{
	memset(out, 0, sizeof(*out));
	assert(node && node->node_id);
	return ad->ops->node_status(out, ad, node, err);
}

int adapter_list_nodes(struct adapter_node_list *out, struct adapter *ad, struct nova_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!ad->ops->list_nodes)
		return nova_err_set(err, NOVA_ENOTSUP, "", "provider %s cannot list its nodes",
				    ad->ops->name);
	return ad->ops->list_nodes(out, ad, err);
}

int adapter_claims(json_t **out, const struct adapter_ops *ops, const json_t *config,
		   struct nova_err *err)
{
	int rc;
	*out = NULL;
	if (!ops->claims) {
		*out = json_array();
		return *out ? 0 : nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	if ((rc = ops->claims(out, config, err)))
		return rc;
	if (!json_is_array(*out)) {
		json_decref(*out);
		*out = NULL;
		return nova_err_set(err, NOVA_EINTERNAL, "", "provider %s gave no claim list",
				    ops->name);
	}
	return 0;
}

int adapter_config_from_layout(json_t **out, const struct adapter_ops *ops,
			       const struct adapter_layout *layout, struct nova_err *err)
{
	int rc;
	*out = NULL;
	assert(ops && layout);
	if (!ops->config_from_layout)
		return nova_err_set(err, NOVA_ENOTSUP, "", "provider %s takes no layout", ops->name);
	if ((rc = ops->config_from_layout(out, layout, err)))
		return rc;
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return nova_err_set(err, NOVA_EINTERNAL, "", "provider %s gave no config", ops->name);
	}
	return 0;
}

void adapter_forget(const struct adapter_ops *ops, const char *pool_id)
{
	if (!pool_id)
		return;
	adapter_instance_drop(pool_id);
	if (ops && ops->forget)
		ops->forget(adapters_context(), pool_id);
}

const char *adapter_node_state_name(enum adapter_node_state s)
{
	switch (s) {
	case ADAPTER_NODE_PENDING: return "pending";
	case ADAPTER_NODE_RUNNING: return "running";
	case ADAPTER_NODE_FAILED: return "failed";
	case ADAPTER_NODE_GONE: return "gone";
	}
	return "unknown";
}

void adapter_resources_finish(struct adapter_resources *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->n_nodes; i++)
		json_decref(res->nodes[i].labels);
	free(res->nodes);
	free(res->capacity);
	memset(res, 0, sizeof(*res));
}

int adapter_resources_copy(struct adapter_resources *out, const struct adapter_resources *src,
			   struct nova_err *err)
{
	memset(out, 0, sizeof(*out));
	if (src->n_capacity &&
	    !(out->capacity = malloc(src->n_capacity * sizeof(*out->capacity))))
		goto oom;
	if (src->n_capacity)
		memcpy(out->capacity, src->capacity, src->n_capacity * sizeof(*out->capacity));
	out->n_capacity = src->n_capacity;
	if (src->n_nodes && !(out->nodes = calloc(src->n_nodes, sizeof(*out->nodes))))
		goto oom;
	for (size_t i = 0; i < src->n_nodes; i++) {
		out->nodes[i] = src->nodes[i];
		out->nodes[i].labels = NULL;
		out->n_nodes = i + 1;
		if (src->nodes[i].labels && !(out->nodes[i].labels = json_deep_copy(src->nodes[i].labels)))
			goto oom;
	}
	return 0;
oom:
	adapter_resources_finish(out);
	return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

void adapter_node_list_finish(struct adapter_node_list *list)
{
	if (!list)
		return;
	free(list->items);
	list->items = NULL;
	list->n = 0;
}
