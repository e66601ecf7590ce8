#include "adapters/fake/fake.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/files.h"

#define FAKE_MAX_POOLS 64
#define FAKE_MAX_RESOURCES 4096
#define FAKE_STATE_NAME_MAX 128

struct fake_resource {
	char node_id[ADAPTER_ID_LEN];
	char handle[ADAPTER_HANDLE_MAX];
	enum adapter_node_state state;
	char token[128]; /* the node token it was given, as a real provider keeps
			  * it for the sidecar (a pod's Secret, a host's config) */
};

struct fake_fault_slot {
	enum fake_fault fault;
	unsigned times;
	unsigned delay_ms;
};

struct fake_pool {
	char pool_id[ADAPTER_ID_LEN];
	bool faults_armed;
	unsigned calls[FAKE_OP_COUNT];
	struct fake_fault_slot faults[FAKE_OP_COUNT];
	struct fake_resource *res;
	size_t n_res;
	unsigned long long next_handle;
	char state_file[PATH_MAX + FAKE_STATE_NAME_MAX + 8]; /* "": in this process only */
	int state_fd;         /* open and flock()ed between begin and end */
};

/* Process-wide, like the provider it stands in for. */
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake_pool fake_pools[FAKE_MAX_POOLS];
static size_t fake_n_pools;
static unsigned fake_validate_calls;

struct fake_adapter {
	struct adapter base; /* first member */
	bool ephemeral;
	unsigned nodes;
	char accelerator_type[ADAPTER_NAME_MAX];
	unsigned per_node;
	unsigned long long memory_mib;
};

static struct fake_adapter *fake_from(struct adapter *ad)
{
	assert(ad && ad->ops == &fake_adapter_ops);
	return (struct fake_adapter *)ad;
}

/* Caller holds fake_lock. */
static struct fake_pool *fake_pool_get(const char *pool_id, bool create)
{
	for (size_t i = 0; i < fake_n_pools; i++)
		if (strcmp(fake_pools[i].pool_id, pool_id) == 0)
			return &fake_pools[i];
	if (!create || fake_n_pools == FAKE_MAX_POOLS)
		return NULL;
	struct fake_pool *p = &fake_pools[fake_n_pools++];
	memset(p, 0, sizeof(*p));
	snprintf(p->pool_id, sizeof(p->pool_id), "%s", pool_id);
	return p;
}

/* With a state file, the resources live in it, as a real provider's live
 * outside novad: they survive a novad killed with -9, and several novad
 * processes see the same ones. Each access loads them under an exclusive
 * flock() and writes them back when changed. Caller holds fake_lock. */
static void fake_store_begin(struct fake_pool *p)
{
	char buf[1 << 16];
	ssize_t n;
	p->state_fd = -1;
	if (!p->state_file[0])
		return;
	p->state_fd = open(p->state_file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (p->state_fd < 0 || flock(p->state_fd, LOCK_EX) != 0)
		return;
	n = pread(p->state_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	json_t *j = json_loads(buf, 0, NULL), *arr = json_object_get(j, "resources"), *v;
	size_t i;
	free(p->res);
	p->res = NULL;
	p->n_res = 0;
	p->next_handle = (unsigned long long)json_integer_value(json_object_get(j, "next_handle"));
	p->res = calloc(json_array_size(arr) + 1, sizeof(*p->res));
	json_array_foreach(arr, i, v) {
		if (!p->res)
			break;
		struct fake_resource *r = &p->res[p->n_res++];
		snprintf(r->node_id, sizeof(r->node_id), "%s", json_string_value(json_object_get(v, "node_id")));
		snprintf(r->handle, sizeof(r->handle), "%s", json_string_value(json_object_get(v, "handle")));
		const char *tok = json_string_value(json_object_get(v, "token"));
		snprintf(r->token, sizeof(r->token), "%s", tok ? tok : "");
		r->state = (enum adapter_node_state)json_integer_value(json_object_get(v, "state"));
	}
	json_decref(j);
}

static void fake_store_end(struct fake_pool *p, bool dirty)
{
	if (p->state_fd < 0)
		return;
	if (dirty) {
		json_t *arr = json_array();
		for (size_t i = 0; i < p->n_res; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:s}", "node_id",
							     p->res[i].node_id, "handle", p->res[i].handle,
							     "state", (int)p->res[i].state, "token",
							     p->res[i].token));
		json_t *j = json_pack("{s:I, s:o}", "next_handle", (json_int_t)p->next_handle,
				      "resources", arr);
		char *text = json_dumps(j, JSON_COMPACT);
		if (text && ftruncate(p->state_fd, 0) == 0 &&
		    pwrite(p->state_fd, text, strlen(text), 0) < 0)
			text[0] = '\0'; /* a test provider: a failed write shows in the test */
		free(text);
		json_decref(j);
	}
	flock(p->state_fd, LOCK_UN);
	close(p->state_fd);
	p->state_fd = -1;
}

static const char *const fake_op_names[FAKE_OP_COUNT] = {
	"validate", "create", "provision", "deprovision", "status", "discover", "list",
};

static const char *const fake_fault_names[] = {"none", "transient", "permanent", "lost_answer",
					       "slow"};

/* Count the call and consume an armed fault. Caller holds fake_lock. */
static struct fake_fault_slot fake_enter(struct fake_pool *p, enum fake_op op)
{
	struct fake_fault_slot f = {FAKE_FAULT_NONE, 0, 0};
	p->calls[op]++;
	if (p->faults[op].times > 0) {
		f = p->faults[op];
		if (--p->faults[op].times == 0)
			p->faults[op].fault = FAKE_FAULT_NONE;
	}
	return f;
}

static void fake_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Apply a consumed fault; call without fake_lock held (slow ones sleep). */
static int fake_fault_err(const struct fake_fault_slot *f, enum fake_op op, struct nova_err *err)
{
	if (f->fault == FAKE_FAULT_SLOW)
		fake_sleep_ms(f->delay_ms);
	if (f->fault == FAKE_FAULT_TRANSIENT)
		return nova_err_set(err, NOVA_EAGAIN, "", "fake %s: injected transient failure",
				    fake_op_names[op]);
	if (f->fault == FAKE_FAULT_PERMANENT)
		return nova_err_set(err, NOVA_EFAILED, "", "fake %s: injected permanent failure",
				    fake_op_names[op]);
	return 0;
}

static int fake_validate_faults(const json_t *faults, struct nova_err *err)
{
	const char *key;
	json_t *v;
	char field[NOVA_ERR_FIELD_MAX];
	if (!json_is_object(faults))
		return nova_err_set(err, NOVA_EINVAL, "faults", "faults must be an object");
	json_object_foreach((json_t *)faults, key, v) {
		int op = -1;
		for (int i = 0; i < FAKE_OP_COUNT; i++)
			if (strcmp(fake_op_names[i], key) == 0)
				op = i;
		snprintf(field, sizeof(field), "faults.%s", key);
		if (op < 0)
			return nova_err_set(err, NOVA_EINVAL, field, "unknown operation %s", key);
		const char *kind = json_string_value(json_object_get(v, "kind"));
		int ok = 0;
		for (size_t i = 1; kind && i < sizeof(fake_fault_names) / sizeof(*fake_fault_names); i++)
			ok |= strcmp(kind, fake_fault_names[i]) == 0;
		if (!ok)
			return nova_err_set(err, NOVA_EINVAL, field,
					    "%s.kind must be transient, permanent, lost_answer or slow",
					    field);
	}
	return 0;
}

/* A state file is a name, not a path: the fake is a test provider that an
 * operator may enable, and a path would let a pool config overwrite any
 * file novad can write. Rejected: taking a path under provider_files
 * (core/files.h), which is where novad reads, not writes. */
static bool fake_state_name_ok(const json_t *v)
{
	const char *n = json_string_value(v);
	size_t len = json_string_length(v);
	if (!n || len == 0 || len > FAKE_STATE_NAME_MAX || strlen(n) != len || n[0] == '.')
		return false;
	for (; *n; n++)
		if (!(('a' <= *n && *n <= 'z') || ('A' <= *n && *n <= 'Z') || ('0' <= *n && *n <= '9') ||
		      *n == '.' || *n == '_' || *n == '-'))
			return false;
	return true;
}

static int fake_validate(const json_t *config, struct nova_err *err)
{
	static const char *const keys[] = {"mode", "nodes", "accelerator_type",
					   "accelerators_per_node", "memory_mib", "fail_validate",
					   "faults", "state_file", NULL};
	const char *key;
	json_t *v;
	pthread_mutex_lock(&fake_lock);
	fake_validate_calls++;
	pthread_mutex_unlock(&fake_lock);
	json_object_foreach((json_t *)config, key, v) {
		size_t i;
		for (i = 0; keys[i]; i++)
			if (strcmp(keys[i], key) == 0)
				break;
		if (!keys[i])
			return nova_err_set(err, NOVA_EINVAL, key,
					    "unknown key %s for the fake provider", key);
	}
	if ((v = json_object_get(config, "fail_validate")))
		return nova_err_set(err, NOVA_EINVAL, json_is_string(v) ? json_string_value(v) : "",
				    "rejected by the fake provider as asked");
	if ((v = json_object_get(config, "mode")) &&
	    (!json_is_string(v) || (strcmp(json_string_value(v), "ephemeral") != 0 &&
				    strcmp(json_string_value(v), "static") != 0)))
		return nova_err_set(err, NOVA_EINVAL, "mode", "mode must be ephemeral or static");
	if ((v = json_object_get(config, "nodes")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000))
		return nova_err_set(err, NOVA_EINVAL, "nodes", "nodes must be an integer from 0 to 1000");
	if ((v = json_object_get(config, "accelerators_per_node")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 64))
		return nova_err_set(err, NOVA_EINVAL, "accelerators_per_node",
				    "accelerators_per_node must be an integer from 0 to 64");
	if ((v = json_object_get(config, "memory_mib")) &&
	    (!json_is_integer(v) || json_integer_value(v) < 0))
		return nova_err_set(err, NOVA_EINVAL, "memory_mib",
				    "memory_mib must be a non-negative integer");
	if ((v = json_object_get(config, "accelerator_type")) &&
	    (!json_is_string(v) || json_string_length(v) == 0 ||
	     json_string_length(v) >= ADAPTER_NAME_MAX))
		return nova_err_set(err, NOVA_EINVAL, "accelerator_type",
				    "accelerator_type must be a non-empty string");
	if ((v = json_object_get(config, "state_file")) && !fake_state_name_ok(v)) {
		nova_err_set(err, NOVA_EINVAL, "state_file",
			     "state_file must be a file name of 1 to %d letters, digits, '.', '_' "
			     "and '-', not starting with '.'", FAKE_STATE_NAME_MAX);
		nova_err_set_hint(err, "the file is kept in novad's state directory, under fake/");
		return NOVA_EINVAL;
	}
	if ((v = json_object_get(config, "faults")))
		return fake_validate_faults(v, err);
	return 0;
}

static void fake_arm_from_config(struct fake_pool *p, const json_t *config)
{
	const json_t *faults = json_object_get(config, "faults");
	const char *key;
	json_t *v;
	if (p->faults_armed)
		return;
	p->faults_armed = true;
	json_object_foreach((json_t *)faults, key, v) {
		for (int op = 0; op < FAKE_OP_COUNT; op++) {
			if (strcmp(fake_op_names[op], key) != 0)
				continue;
			const char *kind = json_string_value(json_object_get(v, "kind"));
			for (size_t k = 1; k < sizeof(fake_fault_names) / sizeof(*fake_fault_names); k++)
				if (strcmp(kind, fake_fault_names[k]) == 0)
					p->faults[op].fault = (enum fake_fault)k;
			json_int_t times = json_integer_value(json_object_get(v, "times"));
			p->faults[op].times = times > 0 ? (unsigned)times : 1;
			p->faults[op].delay_ms =
				(unsigned)json_integer_value(json_object_get(v, "delay_ms"));
		}
	}
}

static bool fake_nodes_ephemeral(const json_t *config)
{
	const char *mode = json_string_value(json_object_get(config, "mode"));
	return !mode || strcmp(mode, "ephemeral") == 0;
}

static int fake_create(struct adapter **out, const struct adapter_context *ctx, const char *pool_id,
		       const json_t *config, struct nova_err *err)
{
	struct fake_adapter *fa = calloc(1, sizeof(*fa));
	const char *type = json_string_value(json_object_get(config, "accelerator_type"));
	json_t *v;
	struct fake_pool *p;
	*out = NULL;
	if (!fa)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	fa->base.ops = &fake_adapter_ops;
	fa->ephemeral = fake_nodes_ephemeral(config);
	fa->base.ephemeral = fa->ephemeral;
	fa->nodes = (v = json_object_get(config, "nodes")) ? (unsigned)json_integer_value(v) : 4;
	fa->per_node = (v = json_object_get(config, "accelerators_per_node"))
			       ? (unsigned)json_integer_value(v) : 1;
	fa->memory_mib = (v = json_object_get(config, "memory_mib"))
				 ? (unsigned long long)json_integer_value(v) : 81920;
	snprintf(fa->accelerator_type, sizeof(fa->accelerator_type), "%s", type ? type : "FAKE-GPU");
	const char *sf = json_string_value(json_object_get(config, "state_file"));
	char dir[PATH_MAX], path[PATH_MAX + FAKE_STATE_NAME_MAX + 8];
	if (sf) {
		int rc;
		if (snprintf(dir, sizeof(dir), "%s/fake", ctx->state_dir) >= (int)sizeof(dir)) {
			free(fa);
			return nova_err_set(err, NOVA_EINVAL, "state_dir", "the state directory path is too long");
		}
		if ((rc = files_mkdir_p(dir, 0700, "state_dir", err))) {
			free(fa);
			return rc;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, sf);
	}
	struct fake_fault_slot f = {FAKE_FAULT_NONE, 0, 0};
	pthread_mutex_lock(&fake_lock);
	p = fake_pool_get(pool_id, true);
	if (p) {
		f = fake_enter(p, FAKE_OP_CREATE);
		fake_arm_from_config(p, config);
		if (sf)
			snprintf(p->state_file, sizeof(p->state_file), "%s", path);
	}
	pthread_mutex_unlock(&fake_lock);
	if (!p) {
		free(fa);
		return nova_err_set(err, NOVA_EINTERNAL, "", "fake provider: too many pools");
	}
	int frc = fake_fault_err(&f, FAKE_OP_CREATE, err); /* a slow or failing create (tests) */
	if (frc) {
		free(fa);
		return frc;
	}
	*out = &fa->base;
	return 0;
}

static void fake_destroy(struct adapter *ad)
{
	free(fake_from(ad));
}

static struct fake_resource *fake_res_find(struct fake_pool *p, const char *node_id)
{
	for (size_t i = 0; i < p->n_res; i++)
		if (strcmp(p->res[i].node_id, node_id) == 0)
			return &p->res[i];
	return NULL;
}

static struct fake_resource *fake_res_add(struct fake_pool *p, const char *node_id,
					  const char *handle)
{
	struct fake_resource *r;
	if (p->n_res == FAKE_MAX_RESOURCES)
		return NULL;
	r = realloc(p->res, (p->n_res + 1) * sizeof(*r));
	if (!r)
		return NULL;
	p->res = r;
	r = &p->res[p->n_res++];
	memset(r, 0, sizeof(*r));
	snprintf(r->node_id, sizeof(r->node_id), "%s", node_id);
	if (handle)
		snprintf(r->handle, sizeof(r->handle), "%s", handle);
	else
		snprintf(r->handle, sizeof(r->handle), "fake-%llu", ++p->next_handle);
	r->state = ADAPTER_NODE_RUNNING;
	return r;
}

static void fake_info_from(struct adapter_node_info *out, const struct fake_resource *r)
{
	snprintf(out->node_id, sizeof(out->node_id), "%s", r->node_id);
	snprintf(out->handle, sizeof(out->handle), "%s", r->handle);
	/* The node's address (inventory takes endpoints on it only): a fake
	 * node's sidecar, if any, is a local process. */
	snprintf(out->endpoint, sizeof(out->endpoint), "127.0.0.1");
	out->state = r->state;
	snprintf(out->message, sizeof(out->message), "%s", adapter_node_state_name(r->state));
}

/* "fake-node-N", N from 1 to the pool's node count (fake_discover). */
static bool fake_handle_ok(const struct fake_adapter *fa, const char *handle)
{
	unsigned n;
	int end = 0;
	return handle && sscanf(handle, "fake-node-%u%n", &n, &end) == 1 && handle[end] == '\0' &&
	       n >= 1 && n <= fa->nodes;
}

static int fake_provision(struct adapter_node_info *out, struct adapter *ad,
			  const struct adapter_provision_request *req, struct nova_err *err)
{
	struct fake_adapter *fa = fake_from(ad);
	struct fake_fault_slot f;
	struct fake_pool *p;
	struct fake_resource *r;
	int rc = 0;
	pthread_mutex_lock(&fake_lock);
	p = fake_pool_get(ad->pool_id, true);
	f = fake_enter(p, FAKE_OP_PROVISION);
	pthread_mutex_unlock(&fake_lock);
	/* A slow provision is slow after the resource exists, as a real one is
	 * while its machine boots: the window a crash test needs. */
	struct fake_fault_slot before = f;
	if (before.fault == FAKE_FAULT_SLOW)
		before.fault = FAKE_FAULT_NONE;
	if ((rc = fake_fault_err(&before, FAKE_OP_PROVISION, err)))
		return rc;
	/* A static pool's nodes are the ones discovery lists: claiming another
	 * is a permanent failure with nothing made, as lpu and ssh answer (it
	 * took any handle, and made a node the pool does not have). */
	if (!fa->ephemeral && !fake_handle_ok(fa, req->handle))
		return nova_err_set(err, NOVA_EFAILED, "handle", "node %s is not in this pool",
				    req->handle ? req->handle : "(none)");
	pthread_mutex_lock(&fake_lock);
	fake_store_begin(p);
	size_t before_n = p->n_res;
	r = fake_res_find(p, req->node_id); /* idempotent on the node id */
	if (!r) {
		size_t live = 0;
		for (size_t i = 0; i < p->n_res; i++)
			live += p->res[i].state != ADAPTER_NODE_GONE;
		if (fa->ephemeral && live >= fa->nodes)
			rc = nova_err_set(err, NOVA_EAGAIN, "", "fake provider is out of capacity (%u nodes)",
					  fa->nodes);
		else if (!(r = fake_res_add(p, req->node_id, fa->ephemeral ? NULL : req->handle)))
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "fake provider: out of memory");
	}
	bool token_changed = false;
	if (r && req->node_token && strcmp(r->token, req->node_token) != 0) {
		/* A retried provision brings a fresh token: the resource takes it. */
		snprintf(r->token, sizeof(r->token), "%s", req->node_token);
		token_changed = true;
	}
	if (r)
		fake_info_from(out, r);
	fake_store_end(p, p->n_res != before_n || token_changed);
	pthread_mutex_unlock(&fake_lock);
	if (!rc && f.fault == FAKE_FAULT_SLOW)
		fake_sleep_ms(f.delay_ms);
	if (!rc && f.fault == FAKE_FAULT_LOST_ANSWER)
		return nova_err_set(err, NOVA_EAGAIN, "", "fake provision: answer lost in transit");
	return rc;
}

static int fake_deprovision(struct adapter *ad, const struct adapter_node_ref *node,
			    struct nova_err *err)
{
	struct fake_fault_slot f;
	struct fake_pool *p;
	int rc;
	pthread_mutex_lock(&fake_lock);
	p = fake_pool_get(ad->pool_id, true);
	f = fake_enter(p, FAKE_OP_DEPROVISION);
	pthread_mutex_unlock(&fake_lock);
	if ((rc = fake_fault_err(&f, FAKE_OP_DEPROVISION, err)))
		return rc;
	pthread_mutex_lock(&fake_lock);
	fake_store_begin(p);
	size_t before_n = p->n_res;
	/* With a handle, that one resource; without (the provision answer was
	 * lost), every resource with the id. Gone is success. */
	for (size_t i = 0; i < p->n_res;) {
		if (strcmp(p->res[i].node_id, node->node_id) == 0 &&
		    (!node->handle || strcmp(p->res[i].handle, node->handle) == 0))
			p->res[i] = p->res[--p->n_res];
		else
			i++;
	}
	fake_store_end(p, p->n_res != before_n);
	pthread_mutex_unlock(&fake_lock);
	if (f.fault == FAKE_FAULT_LOST_ANSWER)
		return nova_err_set(err, NOVA_EAGAIN, "", "fake deprovision: answer lost in transit");
	return 0;
}

static int fake_status(struct adapter_node_info *out, struct adapter *ad,
		       const struct adapter_node_ref *node, struct nova_err *err)
{
	struct fake_fault_slot f;
	struct fake_pool *p;
	struct fake_resource *r;
	int rc;
	pthread_mutex_lock(&fake_lock);
	p = fake_pool_get(ad->pool_id, true);
	f = fake_enter(p, FAKE_OP_STATUS);
	pthread_mutex_unlock(&fake_lock);
	if ((rc = fake_fault_err(&f, FAKE_OP_STATUS, err)))
		return rc;
	pthread_mutex_lock(&fake_lock);
	fake_store_begin(p);
	r = fake_res_find(p, node->node_id);
	if (r)
		fake_info_from(out, r);
	fake_store_end(p, false);
	pthread_mutex_unlock(&fake_lock);
	if (!r) {
		snprintf(out->node_id, sizeof(out->node_id), "%s", node->node_id);
		out->state = ADAPTER_NODE_GONE;
		snprintf(out->message, sizeof(out->message), "no such resource");
	}
	return 0;
}

static int fake_discover(struct adapter_resources *out, struct adapter *ad, struct nova_err *err)
{
	struct fake_adapter *fa = fake_from(ad);
	struct fake_fault_slot f;
	struct fake_pool *p;
	size_t used = 0;
	int rc;
	pthread_mutex_lock(&fake_lock);
	p = fake_pool_get(ad->pool_id, true);
	f = fake_enter(p, FAKE_OP_DISCOVER);
	fake_store_begin(p);
	for (size_t i = 0; i < p->n_res; i++)
		used += p->res[i].state != ADAPTER_NODE_GONE;
	fake_store_end(p, false);
	pthread_mutex_unlock(&fake_lock);
	if ((rc = fake_fault_err(&f, FAKE_OP_DISCOVER, err)))
		return rc;
	out->capacity = calloc(1, sizeof(*out->capacity));
	if (!out->capacity)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	out->n_capacity = 1;
	snprintf(out->capacity[0].accelerator_type, ADAPTER_NAME_MAX, "%s", fa->accelerator_type);
	out->capacity[0].memory_mib = fa->memory_mib;
	out->capacity[0].total = fa->nodes * fa->per_node;
	out->capacity[0].max_per_node = fa->per_node;
	out->capacity[0].free = used >= fa->nodes ? 0 : (unsigned)(fa->nodes - used) * fa->per_node;
	if (fa->ephemeral)
		return 0;
	out->nodes = calloc(fa->nodes ? fa->nodes : 1, sizeof(*out->nodes));
	if (!out->nodes) {
		adapter_resources_finish(out);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	for (unsigned i = 0; i < fa->nodes; i++) {
		struct adapter_static_node *n = &out->nodes[i];
		snprintf(n->handle, sizeof(n->handle), "fake-node-%u", i + 1);
		snprintf(n->accelerator_type, sizeof(n->accelerator_type), "%s", fa->accelerator_type);
		n->accelerator_count = fa->per_node;
		n->memory_mib = fa->memory_mib;
		n->labels = json_object();
		n->reachable = true;
	}
	out->n_nodes = fa->nodes;
	return 0;
}

static int fake_list(struct adapter_node_list *out, struct adapter *ad, struct nova_err *err)
{
	struct fake_fault_slot f;
	struct fake_pool *p;
	int rc = 0;
	pthread_mutex_lock(&fake_lock);
	p = fake_pool_get(ad->pool_id, true);
	f = fake_enter(p, FAKE_OP_LIST);
	pthread_mutex_unlock(&fake_lock);
	if ((rc = fake_fault_err(&f, FAKE_OP_LIST, err)))
		return rc;
	pthread_mutex_lock(&fake_lock);
	fake_store_begin(p);
	if (p->n_res) {
		out->items = calloc(p->n_res, sizeof(*out->items));
		if (!out->items)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		for (size_t i = 0; out->items && i < p->n_res; i++)
			fake_info_from(&out->items[i], &p->res[i]);
		if (out->items)
			out->n = p->n_res;
	}
	fake_store_end(p, false);
	pthread_mutex_unlock(&fake_lock);
	return rc;
}

const struct adapter_ops fake_adapter_ops = {
	.name = "fake",
	.nodes_ephemeral = fake_nodes_ephemeral,
	.validate = fake_validate,
	.create = fake_create,
	.destroy = fake_destroy,
	.provision_node = fake_provision,
	.deprovision_node = fake_deprovision,
	.node_status = fake_status,
	.discover_resources = fake_discover,
	.list_nodes = fake_list,
};

void fake_inject(const char *pool_id, enum fake_op op, enum fake_fault fault, unsigned times,
		 unsigned delay_ms)
{
	pthread_mutex_lock(&fake_lock);
	struct fake_pool *p = fake_pool_get(pool_id, true);
	if (p) {
		p->faults_armed = true;
		p->faults[op].fault = fault;
		p->faults[op].times = times;
		p->faults[op].delay_ms = delay_ms;
	}
	pthread_mutex_unlock(&fake_lock);
}

unsigned fake_calls(const char *pool_id, enum fake_op op)
{
	unsigned n = 0;
	pthread_mutex_lock(&fake_lock);
	if (!pool_id) {
		n = op == FAKE_OP_VALIDATE ? fake_validate_calls : 0;
	} else {
		struct fake_pool *p = fake_pool_get(pool_id, false);
		n = p ? p->calls[op] : 0;
	}
	pthread_mutex_unlock(&fake_lock);
	return n;
}

size_t fake_resource_count(const char *pool_id)
{
	size_t n = 0;
	pthread_mutex_lock(&fake_lock);
	struct fake_pool *p = fake_pool_get(pool_id, false);
	n = p ? p->n_res : 0;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

size_t fake_resource_count_for(const char *pool_id, const char *node_id)
{
	size_t n = 0;
	pthread_mutex_lock(&fake_lock);
	struct fake_pool *p = fake_pool_get(pool_id, false);
	for (size_t i = 0; p && i < p->n_res; i++)
		n += strcmp(p->res[i].node_id, node_id) == 0;
	pthread_mutex_unlock(&fake_lock);
	return n;
}

int fake_resource_plant(const char *pool_id, const char *node_id, struct nova_err *err)
{
	int rc = 0;
	pthread_mutex_lock(&fake_lock);
	struct fake_pool *p = fake_pool_get(pool_id, true);
	/* Planted resources get a handle of their own, so a plant for a node
	 * that already has a resource makes a twin. */
	if (!p || !fake_res_add(p, node_id, NULL))
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "fake provider: cannot plant resource");
	pthread_mutex_unlock(&fake_lock);
	return rc;
}

int fake_resource_set_state(const char *pool_id, const char *node_id,
			    enum adapter_node_state state, struct nova_err *err)
{
	int rc = NOVA_ENOTFOUND;
	pthread_mutex_lock(&fake_lock);
	struct fake_pool *p = fake_pool_get(pool_id, false);
	for (size_t i = 0; p && i < p->n_res; i++) {
		if (strcmp(p->res[i].node_id, node_id) == 0) {
			p->res[i].state = state;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&fake_lock);
	if (rc)
		nova_err_set(err, rc, "node_id", "fake provider has no resource for node %s", node_id);
	return rc;
}

void fake_reset(void)
{
	pthread_mutex_lock(&fake_lock);
	for (size_t i = 0; i < fake_n_pools; i++)
		free(fake_pools[i].res);
	fake_n_pools = 0;
	fake_validate_calls = 0;
	pthread_mutex_unlock(&fake_lock);
}
