/* The ssh adapter (contract in ssh.h): config validation and discovery.
 * Provisioning (upload the sidecar, start it detached, markers named by the
 * node id) is the next increment; until then the side-effecting ops answer
 * NOVA_ENOTSUP, so a deployment on an ssh pool fails its nodes with that
 * message instead of pretending. */
#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/ssh/ssh.h"
#include "adapters/ssh/ssh_session.h"

#define SSH_MAX_HOSTS 1024
#define SSH_DISCOVERY_THREADS 8
#define SSH_TIMEOUT_MIN_MS 100
#define SSH_TIMEOUT_MAX_MS 3600000
#define SSH_DEFAULT_INSTALL_DIR "/opt/nova"

struct ssh_host_cfg {
	char address[254];
	unsigned port;
	char user[64];
	char key[PATH_MAX];          /* "": ssh-agent */
	char accelerator_type[ADAPTER_NAME_MAX]; /* "": discovered */
	json_t *labels;              /* object of strings, owned */
};

struct ssh_adapter {
	struct adapter base; /* first member */
	struct ssh_host_cfg *hosts;
	size_t n_hosts;
	char known_hosts[PATH_MAX];
	enum ssh_host_key_policy policy;
	char install_dir[512];
	unsigned connect_timeout_ms;
	unsigned command_timeout_ms;
};

static struct ssh_adapter *ssh_from(struct adapter *ad)
{
	assert(ad && ad->ops == &ssh_adapter_ops);
	return (struct ssh_adapter *)ad;
}

static void ssh_hosts_free(struct ssh_adapter *a)
{
	for (size_t i = 0; a->hosts && i < a->n_hosts; i++)
		json_decref(a->hosts[i].labels);
	free(a->hosts);
	a->hosts = NULL;
	a->n_hosts = 0;
}

/* --- config ------------------------------------------------------------- */

static int ssh_unknown_keys(const json_t *obj, const char *const *keys, const char *prefix,
			    const char *expected, struct nova_err *err)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		size_t i;
		for (i = 0; keys[i] && strcmp(keys[i], key) != 0; i++)
			;
		if (!keys[i]) {
			char field[NOVA_ERR_FIELD_MAX];
			snprintf(field, sizeof(field), "%s%.100s", prefix, key);
			return nova_err_set(err, NOVA_EINVAL, field, "unknown key %.100s (expected %s)", key,
					    expected);
		}
	}
	return 0;
}

/* A path the hosts' shells and SFTP take as it is: absolute, no "..", no
 * control characters. */
static bool ssh_path_ok(const char *p, size_t max)
{
	if (!p || p[0] != '/' || strlen(p) >= max || strstr(p, "/../") ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
		return false;
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Host names and addresses (IPv4, IPv6, DNS): letters, digits, . - : _ */
static bool ssh_address_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 253 || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') ||
		      *s == '.' || *s == '-' || *s == ':' || *s == '_'))
			return false;
	return true;
}

static bool ssh_user_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 32 || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') ||
		      *s == '.' || *s == '-' || *s == '_'))
			return false;
	return true;
}

static int ssh_timeout(unsigned *out, const json_t *config, const char *key, unsigned def,
		       struct nova_err *err)
{
	const json_t *v = json_object_get(config, key);
	*out = def;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < SSH_TIMEOUT_MIN_MS ||
	    json_integer_value(v) > SSH_TIMEOUT_MAX_MS)
		return nova_err_set(err, NOVA_EINVAL, key, "%s must be an integer from %d to %d", key,
				    SSH_TIMEOUT_MIN_MS, SSH_TIMEOUT_MAX_MS);
	*out = (unsigned)json_integer_value(v);
	return 0;
}

static int ssh_host_load(struct ssh_host_cfg *h, const json_t *v, size_t i, struct nova_err *err)
{
	static const char *const keys[] = {"address", "port", "user", "key", "labels",
					   "accelerator_type", NULL};
	char prefix[32], field[NOVA_ERR_FIELD_MAX];
	const json_t *x;
	int rc;
	snprintf(prefix, sizeof(prefix), "hosts[%zu].", i);
#define SSH_FIELD(name) (snprintf(field, sizeof(field), "%s%s", prefix, (name)), field)
	if (!json_is_object(v)) {
		snprintf(field, sizeof(field), "hosts[%zu]", i);
		return nova_err_set(err, NOVA_EINVAL, field, "hosts[%zu] must be an object", i);
	}
	if ((rc = ssh_unknown_keys(v, keys, prefix,
				   "address, port, user, key, labels, accelerator_type", err)))
		return rc;
	const char *address = json_string_value(json_object_get(v, "address"));
	if (!ssh_address_ok(address))
		return nova_err_set(err, NOVA_EINVAL, SSH_FIELD("address"),
				    "address must be an IP address or host name (letters, digits, . - : _)");
	snprintf(h->address, sizeof(h->address), "%s", address);
	h->port = 22;
	if ((x = json_object_get(v, "port"))) {
		if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 65535)
			return nova_err_set(err, NOVA_EINVAL, SSH_FIELD("port"),
					    "port must be an integer from 1 to 65535");
		h->port = (unsigned)json_integer_value(x);
	}
	const char *user = json_string_value(json_object_get(v, "user"));
	if (!ssh_user_ok(user))
		return nova_err_set(err, NOVA_EINVAL, SSH_FIELD("user"),
				    "user is required: 1 to 32 letters, digits, . - _");
	snprintf(h->user, sizeof(h->user), "%s", user);
	if ((x = json_object_get(v, "key"))) {
		if (!ssh_path_ok(json_string_value(x), sizeof(h->key)))
			return nova_err_set(err, NOVA_EINVAL, SSH_FIELD("key"),
					    "key must be the absolute path of a private key file");
		if ((rc = ssh_key_check(json_string_value(x), err))) {
			if (err)
				snprintf(err->field, sizeof(err->field), "%skey", prefix);
			return rc;
		}
		snprintf(h->key, sizeof(h->key), "%s", json_string_value(x));
	}
	if ((x = json_object_get(v, "accelerator_type"))) {
		const char *t = json_string_value(x);
		if (!t || !*t || strlen(t) >= sizeof(h->accelerator_type))
			return nova_err_set(err, NOVA_EINVAL, SSH_FIELD("accelerator_type"),
					    "accelerator_type must be a string of 1 to %zu characters",
					    sizeof(h->accelerator_type) - 1);
		snprintf(h->accelerator_type, sizeof(h->accelerator_type), "%s", t);
	}
	if ((x = json_object_get(v, "labels"))) {
		const char *k;
		const json_t *lv;
		if (!json_is_object(x))
			return nova_err_set(err, NOVA_EINVAL, SSH_FIELD("labels"),
					    "labels must be an object of strings");
		json_object_foreach((json_t *)x, k, lv) {
			if (!json_is_string(lv)) {
				snprintf(field, sizeof(field), "%slabels.%.60s", prefix, k);
				return nova_err_set(err, NOVA_EINVAL, field, "label %.60s must be a string", k);
			}
		}
		h->labels = json_deep_copy(x);
	} else {
		h->labels = json_object();
	}
	if (!h->labels)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
#undef SSH_FIELD
	return 0;
}

/* Fill a from config; on failure a holds nothing. */
static int ssh_config_load(struct ssh_adapter *a, const json_t *config, struct nova_err *err)
{
	static const char *const keys[] = {"hosts", "known_hosts", "host_key_policy", "install_dir",
					   "connect_timeout_ms", "command_timeout_ms", NULL};
	const json_t *hosts = json_object_get(config, "hosts"), *v;
	int rc;
	if ((rc = ssh_unknown_keys(config, keys, "",
				   "hosts, known_hosts, host_key_policy, install_dir, "
				   "connect_timeout_ms, command_timeout_ms", err)))
		return rc;
	if (!json_is_array(hosts) || json_array_size(hosts) == 0)
		return nova_err_set(err, NOVA_EINVAL, "hosts",
				    "hosts must be a non-empty array of {address, port, user, key, labels}");
	if (json_array_size(hosts) > SSH_MAX_HOSTS)
		return nova_err_set(err, NOVA_EINVAL, "hosts", "at most %d hosts per pool", SSH_MAX_HOSTS);
	const char *kh = json_string_value(json_object_get(config, "known_hosts"));
	if (!ssh_path_ok(kh, sizeof(a->known_hosts)))
		return nova_err_set(err, NOVA_EINVAL, "known_hosts",
				    "known_hosts must be the absolute path of a known_hosts file");
	snprintf(a->known_hosts, sizeof(a->known_hosts), "%s", kh);
	a->policy = SSH_HOST_KEY_STRICT;
	if ((v = json_object_get(config, "host_key_policy"))) {
		const char *p = json_string_value(v);
		if (p && strcmp(p, "accept-new") == 0)
			a->policy = SSH_HOST_KEY_ACCEPT_NEW;
		else if (!p || strcmp(p, "strict") != 0)
			return nova_err_set(err, NOVA_EINVAL, "host_key_policy",
					    "host_key_policy must be strict or accept-new");
	}
	snprintf(a->install_dir, sizeof(a->install_dir), "%s", SSH_DEFAULT_INSTALL_DIR);
	if ((v = json_object_get(config, "install_dir"))) {
		const char *d = json_string_value(v);
		if (!ssh_path_ok(d, sizeof(a->install_dir)) || strcmp(d, "/") == 0)
			return nova_err_set(err, NOVA_EINVAL, "install_dir",
					    "install_dir must be an absolute path other than /, without ..");
		snprintf(a->install_dir, sizeof(a->install_dir), "%s", d);
	}
	if ((rc = ssh_timeout(&a->connect_timeout_ms, config, "connect_timeout_ms", 10000, err)) ||
	    (rc = ssh_timeout(&a->command_timeout_ms, config, "command_timeout_ms", 30000, err)))
		return rc;
	if (!(a->hosts = calloc(json_array_size(hosts), sizeof(*a->hosts))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	for (size_t i = 0; i < json_array_size(hosts); i++) {
		struct ssh_host_cfg *h = &a->hosts[i];
		a->n_hosts = i + 1;
		if ((rc = ssh_host_load(h, json_array_get(hosts, i), i, err)))
			goto fail;
		for (size_t j = 0; j < i; j++)
			if (a->hosts[j].port == h->port && strcmp(a->hosts[j].address, h->address) == 0) {
				char field[NOVA_ERR_FIELD_MAX];
				snprintf(field, sizeof(field), "hosts[%zu].address", i);
				rc = nova_err_set(err, NOVA_EINVAL, field,
						  "hosts[%zu] and hosts[%zu] are the same host (%s:%u)", j, i,
						  h->address, h->port);
				goto fail;
			}
	}
	return 0;
fail:
	ssh_hosts_free(a);
	return rc;
}

static int ssh_validate(const json_t *config, struct nova_err *err)
{
	struct ssh_adapter a = {0};
	int rc = ssh_config_load(&a, config, err);
	ssh_hosts_free(&a);
	return rc;
}

static int ssh_create(struct adapter **out, const char *pool_id, const json_t *config,
		      struct nova_err *err)
{
	struct ssh_adapter *a = calloc(1, sizeof(*a));
	int rc;
	(void)pool_id; /* the wrapper records it */
	*out = NULL;
	if (!a)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = ssh_config_load(a, config, err))) {
		free(a);
		return rc;
	}
	a->base.ops = &ssh_adapter_ops;
	a->base.ephemeral = false;
	*out = &a->base;
	return 0;
}

static void ssh_destroy(struct adapter *ad)
{
	struct ssh_adapter *a = ssh_from(ad);
	ssh_hosts_free(a);
	free(a);
}

/* --- discovery ---------------------------------------------------------- */

struct ssh_probe {
	struct ssh_host_facts facts;
	int rc;
	char reason[256];
};

struct ssh_probe_run {
	struct ssh_adapter *a;
	struct ssh_probe *probes;
	pthread_mutex_t lock;
	size_t next;
};

static void ssh_probe_host(struct ssh_adapter *a, const struct ssh_host_cfg *h,
			   struct ssh_probe *p)
{
	struct ssh_target t = {
		.address = h->address,
		.port = h->port,
		.user = h->user,
		.key_path = h->key[0] ? h->key : NULL,
		.known_hosts = a->known_hosts,
		.policy = a->policy,
		.connect_timeout_ms = a->connect_timeout_ms,
	};
	struct ssh_session *s = NULL;
	struct ssh_exec_result r = {0};
	struct nova_err err = {0};
	if ((p->rc = ssh_session_open(&s, &t, &err)) == 0) {
		p->rc = ssh_session_exec(&r, s, ssh_discovery_command, a->command_timeout_ms, 64 * 1024,
					 &err);
		if (p->rc == 0 && r.exit_status != 0)
			p->rc = nova_err_set(&err, NOVA_EFAILED, "",
					     "host %s:%u: discovery command exited with status %d: %.100s",
					     h->address, h->port, r.exit_status, r.err);
		if (p->rc == 0 && (p->rc = ssh_discovery_parse(&p->facts, r.out, &err)) != 0) {
			char msg[sizeof(err.message)];
			snprintf(msg, sizeof(msg), "%s", err.message);
			nova_err_set(&err, p->rc, "", "host %s:%u: %s", h->address, h->port, msg);
		}
	}
	if (p->rc)
		snprintf(p->reason, sizeof(p->reason), "%.255s", err.message);
	ssh_exec_result_finish(&r);
	ssh_session_close(s);
}

static void *ssh_probe_worker(void *arg)
{
	struct ssh_probe_run *run = arg;
	for (;;) {
		pthread_mutex_lock(&run->lock);
		size_t i = run->next++;
		pthread_mutex_unlock(&run->lock);
		if (i >= run->a->n_hosts)
			return NULL;
		ssh_probe_host(run->a, &run->a->hosts[i], &run->probes[i]);
	}
}

static void ssh_label(json_t *labels, const char *key, const char *value)
{
	if (value && *value)
		json_object_set_new(labels, key, json_string(value));
}

static int ssh_node_fill(struct adapter_static_node *sn, const struct ssh_host_cfg *h,
			 const struct ssh_probe *p)
{
	char num[32];
	snprintf(sn->handle, sizeof(sn->handle), "%s:%u", h->address, h->port);
	if (!(sn->labels = json_deep_copy(h->labels)))
		return -1;
	ssh_label(sn->labels, "host", h->address);
	if (p->rc) {
		sn->reachable = false;
		snprintf(sn->reason, sizeof(sn->reason), "%s", p->reason);
		return 0;
	}
	const struct ssh_host_facts *f = &p->facts;
	sn->reachable = true;
	ssh_label(sn->labels, "hostname", f->hostname);
	ssh_label(sn->labels, "os", f->os);
	snprintf(num, sizeof(num), "%u", f->cpus);
	ssh_label(sn->labels, "cpus", num);
	snprintf(num, sizeof(num), "%llu", f->memory_mib);
	ssh_label(sn->labels, "memory_mib", num);
	ssh_label(sn->labels, "gpu_error", f->gpu_error);
	if (f->n_gpus == 0)
		return 0; /* CPU only: no accelerators */
	/* One type per node (the contract's shape): the first GPU's; a host
	 * with mixed boards offers only those like it, and says so. */
	const struct ssh_gpu *g0 = &f->gpus[0];
	for (size_t i = 0; i < f->n_gpus; i++)
		if (strcmp(f->gpus[i].name, g0->name) == 0 && f->gpus[i].memory_mib == g0->memory_mib)
			sn->accelerator_count++;
	if (sn->accelerator_count != f->n_gpus)
		ssh_label(sn->labels, "gpus_mixed", "true");
	if (h->accelerator_type[0])
		snprintf(sn->accelerator_type, sizeof(sn->accelerator_type), "%s", h->accelerator_type);
	else
		ssh_gpu_type(sn->accelerator_type, sizeof(sn->accelerator_type), g0->name,
			     g0->memory_mib);
	sn->memory_mib = g0->memory_mib;
	ssh_label(sn->labels, "gpu_name", g0->name);
	return 0;
}

static int ssh_capacity_add(struct adapter_resources *out, const struct adapter_static_node *sn)
{
	struct adapter_capacity *c = NULL;
	for (size_t i = 0; i < out->n_capacity; i++)
		if (strcmp(out->capacity[i].accelerator_type, sn->accelerator_type) == 0 &&
		    out->capacity[i].memory_mib == sn->memory_mib)
			c = &out->capacity[i];
	if (!c) {
		c = &out->capacity[out->n_capacity++];
		snprintf(c->accelerator_type, sizeof(c->accelerator_type), "%s", sn->accelerator_type);
		c->memory_mib = sn->memory_mib;
	}
	c->total += sn->accelerator_count;
	c->free += sn->accelerator_count; /* what runs there is the inventory's business */
	if (sn->accelerator_count > c->max_per_node)
		c->max_per_node = sn->accelerator_count;
	return 0;
}

static int ssh_discover(struct adapter_resources *out, struct adapter *ad, struct nova_err *err)
{
	struct ssh_adapter *a = ssh_from(ad);
	struct ssh_probe_run run = {.a = a};
	pthread_t threads[SSH_DISCOVERY_THREADS];
	size_t n_threads = 0;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	run.probes = calloc(a->n_hosts, sizeof(*run.probes));
	out->nodes = calloc(a->n_hosts, sizeof(*out->nodes));
	out->capacity = calloc(a->n_hosts, sizeof(*out->capacity));
	if (!run.probes || !out->nodes || !out->capacity) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		goto out;
	}
	pthread_mutex_init(&run.lock, NULL);
	/* Hosts in parallel, each on its own session and thread: one slow or
	 * unreachable host costs its connect timeout once, not per host. */
	for (; n_threads < SSH_DISCOVERY_THREADS && n_threads < a->n_hosts; n_threads++)
		if (pthread_create(&threads[n_threads], NULL, ssh_probe_worker, &run) != 0)
			break;
	if (n_threads == 0)
		ssh_probe_worker(&run);
	for (size_t i = 0; i < n_threads; i++)
		pthread_join(threads[i], NULL);
	pthread_mutex_destroy(&run.lock);
	for (size_t i = 0; i < a->n_hosts; i++) {
		struct adapter_static_node *sn = &out->nodes[out->n_nodes++];
		if (ssh_node_fill(sn, &a->hosts[i], &run.probes[i])) {
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
			goto out;
		}
		if (sn->reachable && sn->accelerator_count)
			ssh_capacity_add(out, sn);
	}
out:
	free(run.probes);
	if (rc)
		adapter_resources_finish(out);
	return rc;
}

/* --- not yet: provisioning -------------------------------------------- */

static int ssh_provision(struct adapter_node_info *out, struct adapter *ad,
			 const struct adapter_provision_request *req, struct nova_err *err)
{
	(void)out;
	(void)ssh_from(ad);
	return nova_err_set(err, NOVA_ENOTSUP, "", "provisioning on ssh hosts is not implemented yet (node %s)",
			    req->node_id);
}

static int ssh_deprovision(struct adapter *ad, const struct adapter_node_ref *node,
			   struct nova_err *err)
{
	(void)ssh_from(ad);
	return nova_err_set(err, NOVA_ENOTSUP, "",
			    "deprovisioning on ssh hosts is not implemented yet (node %s)", node->node_id);
}

static int ssh_status(struct adapter_node_info *out, struct adapter *ad,
		      const struct adapter_node_ref *node, struct nova_err *err)
{
	(void)out;
	(void)ssh_from(ad);
	return nova_err_set(err, NOVA_ENOTSUP, "", "node status on ssh hosts is not implemented yet (node %s)",
			    node->node_id);
}

const struct adapter_ops ssh_adapter_ops = {
	.name = "ssh",
	.validate = ssh_validate,
	.create = ssh_create,
	.destroy = ssh_destroy,
	.provision_node = ssh_provision,
	.deprovision_node = ssh_deprovision,
	.node_status = ssh_status,
	.discover_resources = ssh_discover,
};
