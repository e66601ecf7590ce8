/* The ssh adapter (contract in ssh.h): config validation, discovery, and
 * nova-sidecar installed and run on the hosts. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "core/files.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/text.h"
#include "adapters/ssh/ssh.h"
#include "adapters/ssh/ssh_pool.h"
#include "adapters/ssh/ssh_session.h"

#define SSH_MAX_HOSTS 1024
#define SSH_DISCOVERY_THREADS 8
#define SSH_TIMEOUT_MIN_MS 100
#define SSH_TIMEOUT_MAX_MS 3600000
#define SSH_DEFAULT_INSTALL_DIR "/opt/nova"

struct ssh_jump_cfg {
	char address[254];           /* "": no jump host */
	unsigned port;
	char user[64];
	char key[PATH_MAX];          /* "": ssh-agent */
};

struct ssh_host_cfg {
	char address[254];
	unsigned port;
	char user[64];
	char key[PATH_MAX];          /* "": ssh-agent */
	struct ssh_jump_cfg jump;
	char accelerator_type[ADAPTER_NAME_MAX]; /* "": discovered */
	unsigned per_node;           /* accelerators per node; 0: the whole host is one */
	json_t *labels;              /* object of strings, owned */
};

struct ssh_adapter {
	struct adapter base; /* first member */
	struct ssh_host_cfg *hosts;
	size_t n_hosts;
	/* The file sessions check keys against: the named file, resolved,
	 * when strict; else the pool's own file (ssh_known_hosts_own). */
	char known_hosts[PATH_MAX];
	/* known_hosts_inline, borrowed from the config while it is loaded;
	 * create writes it to the pool's own file (ssh_known_hosts_own) */
	const char *known_hosts_inline;
	enum ssh_host_key_policy policy;
	char install_dir[512];
	char agent[PATH_MAX];        /* local nova-sidecar to install */
	bool mock_agents;            /* sidecars run nova-mock-engine */
	char mock_engine[PATH_MAX];  /* local nova-mock-engine: the agent's sibling */
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

/* 1..max characters from letters, digits and extra, not starting with '-'
 * (it would read as an option). */
static bool ssh_chars_ok(const char *s, size_t max, const char *extra)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max || s[0] == '-')
		return false;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') ||
		      strchr(extra, *s)))
			return false;
	return true;
}

/* Host names and addresses (IPv4, IPv6, DNS): letters, digits, . - : _ */
static bool ssh_address_ok(const char *s)
{
	return ssh_chars_ok(s, 253, ".-:_");
}

static bool ssh_user_ok(const char *s)
{
	return ssh_chars_ok(s, 32, ".-_");
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

/* A private key named in the config: a file under an allowed directory
 * (core/files.h), kept as its resolved path, which is what libssh2 opens.
 * field is the full field ("hosts[0].key"). */
static int ssh_key_load(char *out, size_t cap, const json_t *v, const char *field,
			struct nova_err *err)
{
	char f[NOVA_ERR_FIELD_MAX];
	int rc;
	snprintf(f, sizeof(f), "%s", field);
	if (!json_is_string(v))
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be the absolute path of a private key file",
				    f);
	if ((rc = files_path_allowed(out, cap, json_string_value(v), json_string_length(v), f, err)))
		return rc;
	if ((rc = ssh_key_check(out, err)) && err)
		snprintf(err->field, sizeof(err->field), "%s", f);
	return rc;
}

/* hosts[i].proxy_jump: {address, port, user, key}, checked as a host's. */
static int ssh_jump_load(struct ssh_jump_cfg *j, const json_t *v, const char *prefix,
			 struct nova_err *err)
{
	static const char *const keys[] = {"address", "port", "user", "key", NULL};
	char field[NOVA_ERR_FIELD_MAX], pre[64];
	const json_t *x;
	int rc;
	snprintf(pre, sizeof(pre), "%sproxy_jump.", prefix);
#define SSH_JFIELD(name) (snprintf(field, sizeof(field), "%s%s", pre, (name)), field)
	if (!json_is_object(v)) {
		snprintf(field, sizeof(field), "%sproxy_jump", prefix);
		return nova_err_set(err, NOVA_EINVAL, field,
				    "proxy_jump must be an object {address, port, user, key}");
	}
	if ((rc = ssh_unknown_keys(v, keys, pre, "address, port, user, key", err)))
		return rc;
	const char *address = json_string_value(json_object_get(v, "address"));
	if (!ssh_address_ok(address))
		return nova_err_set(err, NOVA_EINVAL, SSH_JFIELD("address"),
				    "proxy_jump.address must be an IP address or host name");
	snprintf(j->address, sizeof(j->address), "%s", address);
	j->port = 22;
	if ((x = json_object_get(v, "port"))) {
		if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 65535)
			return nova_err_set(err, NOVA_EINVAL, SSH_JFIELD("port"),
					    "proxy_jump.port must be an integer from 1 to 65535");
		j->port = (unsigned)json_integer_value(x);
	}
	const char *user = json_string_value(json_object_get(v, "user"));
	if (!ssh_user_ok(user))
		return nova_err_set(err, NOVA_EINVAL, SSH_JFIELD("user"),
				    "proxy_jump.user is required: 1 to 32 letters, digits, . - _");
	snprintf(j->user, sizeof(j->user), "%s", user);
	if ((x = json_object_get(v, "key")) &&
	    (rc = ssh_key_load(j->key, sizeof(j->key), x, SSH_JFIELD("key"), err)))
		return rc;
#undef SSH_JFIELD
	return 0;
}

static int ssh_host_load(struct ssh_host_cfg *h, const json_t *v, size_t i, struct nova_err *err)
{
	static const char *const keys[] = {"address", "port", "user", "key", "labels",
					   "accelerator_type", "accelerators_per_node", "proxy_jump", NULL};
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
				   "address, port, user, key, labels, accelerator_type, "
				   "accelerators_per_node, proxy_jump", err)))
		return rc;
	if ((x = json_object_get(v, "proxy_jump")) && (rc = ssh_jump_load(&h->jump, x, prefix, err)))
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
	if ((x = json_object_get(v, "key")) &&
	    (rc = ssh_key_load(h->key, sizeof(h->key), x, SSH_FIELD("key"), err)))
		return rc;
	if ((x = json_object_get(v, "accelerator_type"))) {
		const char *t = json_string_value(x);
		if (!t || !*t || strlen(t) >= sizeof(h->accelerator_type))
			return nova_err_set(err, NOVA_EINVAL, SSH_FIELD("accelerator_type"),
					    "accelerator_type must be a string of 1 to %zu characters",
					    sizeof(h->accelerator_type) - 1);
		snprintf(h->accelerator_type, sizeof(h->accelerator_type), "%s", t);
	}
	if ((x = json_object_get(v, "accelerators_per_node"))) {
		if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 64)
			return nova_err_set(err, NOVA_EINVAL, SSH_FIELD("accelerators_per_node"),
					    "accelerators_per_node must be an integer from 1 to 64");
		h->per_node = (unsigned)json_integer_value(x);
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

/* A program installed beside the running novad (build/ or PREFIX/bin). */
static void ssh_sibling(char *out, size_t len, const char *name)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;
	if (n <= 0) {
		snprintf(out, len, "%s", name);
		return;
	}
	self[n] = '\0';
	if ((slash = strrchr(self, '/')))
		*slash = '\0';
	if (snprintf(out, len, "%s/%s", self, name) >= (int)len)
		snprintf(out, len, "%s", name);
}

/* The context's nova-sidecar, when set, is a file (the default, beside
 * novad, is looked for at create). */
static int ssh_start(struct adapter_context *ctx, struct nova_err *err)
{
	struct stat st;
	const char *path = ctx->ssh_sidecar;
	if (!*path)
		return 0;
	if (path[0] != '/' || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return nova_err_set(err, NOVA_EINVAL, "ssh_sidecar",
				    "the ssh agent must be the absolute path of a nova-sidecar file");
	return 0;
}

/* <state>/ssh/<pool id>: the pool's own directory on novad's machine. */
static int ssh_pool_dir(char *out, size_t cap, const struct adapter_context *ctx,
			const char *pool_id, struct nova_err *err)
{
	if (!*pool_id || strchr(pool_id, '/') || pool_id[0] == '.')
		return nova_err_set(err, NOVA_EINTERNAL, "", "bad pool id");
	if (snprintf(out, cap, "%s/ssh/%s", ctx->state_dir, pool_id) >= (int)cap)
		return nova_err_set(err, NOVA_EINVAL, "state_dir", "the state directory path is too long");
	return 0;
}

/* The pool's own known_hosts (<state>/ssh/<pool id>/known_hosts, 0600)
 * holds the inline lines, or the named file's lines when the policy is
 * accept-new: the session code checks keys against a file, and accept-new
 * records new keys there, never in a file the caller named (which may be
 * any file under provider_files: appending to it would let an API caller
 * write there). The lines are written when the file is new and added when
 * missing, so keys recorded by an earlier run stay, and lines the operator
 * adds to the named file later reach the pool with its next instance (a
 * config change, or ADAPTER_INSTANCE_TTL_S, adapter.h). Rejected: a
 * temporary file per create, which would forget the keys accept-new
 * recorded; and recording into the named file under a lock, which is the
 * write the issue (23) is about. field names the config key the lines came
 * from. */
static int ssh_known_hosts_own(struct ssh_adapter *a, const struct adapter_context *ctx,
			       const char *pool_id, const char *lines, const char *field,
			       struct nova_err *err)
{
	char dir[PATH_MAX + 64], *have = NULL;
	size_t have_len = 0;
	int rc;
	if ((rc = ssh_pool_dir(dir, sizeof(dir), ctx, pool_id, err)))
		return rc;
	if ((rc = files_mkdir_p(dir, 0700, "state_dir", err)))
		return rc;
	if (snprintf(a->known_hosts, sizeof(a->known_hosts), "%s/known_hosts", dir) >=
	    (int)sizeof(a->known_hosts))
		return nova_err_set(err, NOVA_EINVAL, "state_dir", "the state directory path is too long");
	rc = files_read_capped(&have, &have_len, a->known_hosts, 2 * FILES_READ_MAX, field, err);
	if (rc && rc != NOVA_ENOTFOUND)
		return rc;
	FILE *f = fopen(a->known_hosts, "ae");
	if (!f) {
		free(have);
		return nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot write %s: %s", a->known_hosts,
				    strerror(errno));
	}
	fchmod(fileno(f), 0600);
	bool need_nl = have_len > 0 && have[have_len - 1] != '\n';
	for (const char *p = lines; *p;) {
		size_t n = strcspn(p, "\n");
		bool present = false;
		for (const char *q = have; q && n > 0 && *q;) {
			size_t m = strcspn(q, "\n");
			if (m == n && memcmp(p, q, n) == 0) {
				present = true;
				break;
			}
			q += m + (q[m] ? 1 : 0);
		}
		if (n > 0 && !present) {
			fprintf(f, "%s%.*s\n", need_nl ? "\n" : "", (int)n, p);
			need_nl = false;
		}
		p += n + (p[n] ? 1 : 0);
	}
	free(have);
	if (fclose(f) != 0)
		return nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot write %s: %s", a->known_hosts,
				    strerror(errno));
	a->known_hosts_inline = NULL;
	return 0;
}

/* Fill a from config; on failure a holds nothing. */
static int ssh_config_load(struct ssh_adapter *a, const json_t *config, struct nova_err *err)
{
	static const char *const keys[] = {"hosts", "known_hosts", "known_hosts_inline",
					   "host_key_policy", "install_dir", "mock_agents",
					   "connect_timeout_ms", "command_timeout_ms", NULL};
	const json_t *hosts = json_object_get(config, "hosts"), *v;
	int rc;
	if (json_object_get(config, "agent")) {
		nova_err_set(err, NOVA_EINVAL, "agent",
			     "agent is not a pool setting: the nova-sidecar installed on the hosts "
			     "is the one beside novad");
		nova_err_set_hint(err, "remove agent from the pool config");
		return NOVA_EINVAL;
	}
	if ((rc = ssh_unknown_keys(config, keys, "",
				   "hosts, known_hosts, known_hosts_inline, host_key_policy, install_dir, "
				   "mock_agents, connect_timeout_ms, command_timeout_ms", err)))
		return rc;
	if (!json_is_array(hosts) || json_array_size(hosts) == 0)
		return nova_err_set(err, NOVA_EINVAL, "hosts",
				    "hosts must be a non-empty array of {address, port, user, key, labels}");
	if (json_array_size(hosts) > SSH_MAX_HOSTS)
		return nova_err_set(err, NOVA_EINVAL, "hosts", "at most %d hosts per pool", SSH_MAX_HOSTS);
	const json_t *kh = json_object_get(config, "known_hosts");
	const json_t *khi = json_object_get(config, "known_hosts_inline");
	if (kh && khi)
		return nova_err_set(err, NOVA_EINVAL, "known_hosts_inline",
				    "give known_hosts (a file) or known_hosts_inline (its lines), not both");
	if (!kh && !khi)
		return nova_err_set(err, NOVA_EINVAL, "known_hosts",
				    "known_hosts (the absolute path of a known_hosts file) or "
				    "known_hosts_inline (its lines) is required");
	if (kh) {
		if (!json_is_string(kh))
			return nova_err_set(err, NOVA_EINVAL, "known_hosts",
					    "known_hosts must be the absolute path of a known_hosts file");
		if ((rc = files_path_allowed(a->known_hosts, sizeof(a->known_hosts), json_string_value(kh),
					     json_string_length(kh), "known_hosts", err)))
			return rc;
	} else {
		if (!json_is_string(khi) || json_string_length(khi) > FILES_READ_MAX ||
		    strlen(json_string_value(khi)) != json_string_length(khi))
			return nova_err_set(err, NOVA_EINVAL, "known_hosts_inline",
					    "known_hosts_inline must be known_hosts lines as a string of at "
					    "most %d bytes, without NUL", FILES_READ_MAX);
		a->known_hosts_inline = json_string_value(khi);
	}
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
	if ((v = json_object_get(config, "mock_agents")) && !json_is_boolean(v))
		return nova_err_set(err, NOVA_EINVAL, "mock_agents", "mock_agents must be true or false");
	a->mock_agents = json_is_true(v);
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

static int ssh_create(struct adapter **out, const struct adapter_context *ctx, const char *pool_id,
		      const json_t *config, struct nova_err *err)
{
	struct ssh_adapter *a = calloc(1, sizeof(*a));
	int rc;
	*out = NULL;
	if (!a)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = ssh_config_load(a, config, err)))
		goto fail;
	if (ctx->ssh_sidecar[0])
		snprintf(a->agent, sizeof(a->agent), "%s", ctx->ssh_sidecar);
	else
		ssh_sibling(a->agent, sizeof(a->agent), "nova-sidecar");
	{
		/* The mock engine that came with the agent. */
		const char *slash = strrchr(a->agent, '/');
		snprintf(a->mock_engine, sizeof(a->mock_engine), "%.*snova-mock-engine",
			 slash ? (int)(slash - a->agent + 1) : 0, a->agent);
	}
	if (a->known_hosts_inline) {
		if ((rc = ssh_known_hosts_own(a, ctx, pool_id, a->known_hosts_inline, "known_hosts_inline",
					      err)))
			goto fail;
	} else if (a->policy == SSH_HOST_KEY_ACCEPT_NEW) {
		char *seed = NULL;
		if ((rc = files_read_allowed(&seed, NULL, NULL, 0, a->known_hosts, strlen(a->known_hosts),
					     FILES_READ_MAX, "known_hosts", err)))
			goto fail;
		rc = ssh_known_hosts_own(a, ctx, pool_id, seed, "known_hosts", err);
		free(seed);
		if (rc)
			goto fail;
	}
	a->base.ops = &ssh_adapter_ops;
	a->base.ephemeral = false;
	*out = &a->base;
	return 0;
fail:
	ssh_hosts_free(a);
	free(a);
	return rc;
}

/* The pool is deleted: its own directory goes (ssh_known_hosts_own). */
static void ssh_forget(const struct adapter_context *ctx, const char *pool_id)
{
	char dir[PATH_MAX + 64], file[PATH_MAX + 96];
	struct nova_err err = {0};
	if (ssh_pool_dir(dir, sizeof(dir), ctx, pool_id, &err))
		return;
	snprintf(file, sizeof(file), "%s/known_hosts", dir);
	if ((unlink(file) != 0 && errno != ENOENT) || (rmdir(dir) != 0 && errno != ENOENT))
		nova_log_kv(NOVA_LOG_WARN, "ssh", "cannot remove the deleted pool's directory", "dir", dir,
			    "error", strerror(errno), NULL);
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

/* A pooled session to h, through its jump host when it has one. */
static int ssh_open_host(struct ssh_session **s, const struct ssh_adapter *a,
			 const struct ssh_host_cfg *h, struct nova_err *err)
{
	struct ssh_target jt = {
		.address = h->jump.address,
		.port = h->jump.port,
		.user = h->jump.user,
		.key_path = h->jump.key[0] ? h->jump.key : NULL,
	};
	struct ssh_target t = {
		.address = h->address,
		.port = h->port,
		.user = h->user,
		.key_path = h->key[0] ? h->key : NULL,
		.known_hosts = a->known_hosts,
		.policy = a->policy,
		.connect_timeout_ms = a->connect_timeout_ms,
		.jump = h->jump.address[0] ? &jt : NULL,
	};
	return ssh_pool_get(s, NULL, &t, err);
}

static void ssh_probe_host(struct ssh_adapter *a, const struct ssh_host_cfg *h,
			   struct ssh_probe *p)
{
	struct ssh_session *s = NULL;
	struct ssh_exec_result r = {0};
	struct nova_err err = {0};
	if ((p->rc = ssh_open_host(&s, a, h, &err)) == 0) {
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
	ssh_pool_put(s);
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
	out->capacity = calloc(a->n_hosts, sizeof(*out->capacity));
	if (!run.probes || !out->capacity) {
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
	/* A host is one node, or with accelerators_per_node as many slices of
	 * that many accelerators as it has (what is left over is not offered). */
	size_t total = 0;
	for (size_t i = 0; i < a->n_hosts; i++) {
		unsigned per = a->hosts[i].per_node, have = (unsigned)run.probes[i].facts.n_gpus;
		total += per && run.probes[i].rc == 0 && have >= per ? have / per : 1;
	}
	if (!(out->nodes = calloc(total ? total : 1, sizeof(*out->nodes)))) {
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		goto out;
	}
	for (size_t i = 0; i < a->n_hosts; i++) {
		const struct ssh_host_cfg *h = &a->hosts[i];
		struct adapter_static_node *sn = &out->nodes[out->n_nodes++];
		if (ssh_node_fill(sn, h, &run.probes[i])) {
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
			goto out;
		}
		if (h->per_node && sn->reachable && sn->accelerator_count >= h->per_node) {
			/* The host's node becomes its first slice; the others copy it.
			 * Slices take the like GPUs in nvidia-smi's order. */
			const struct ssh_host_facts *f = &run.probes[i].facts;
			unsigned idx[64], n_idx = 0, slices = sn->accelerator_count / h->per_node;
			for (size_t g = 0; g < f->n_gpus && n_idx < 64; g++)
				if (!strcmp(f->gpus[g].name, f->gpus[0].name) &&
				    f->gpus[g].memory_mib == f->gpus[0].memory_mib)
					idx[n_idx++] = (unsigned)g;
			struct adapter_static_node base = *sn;
			for (unsigned k = 0; k < slices; k++) {
				struct adapter_static_node *x = k ? &out->nodes[out->n_nodes++] : sn;
				char list[256] = "";
				*x = base;
				x->labels = k ? json_deep_copy(base.labels) : base.labels;
				if (!x->labels) {
					rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
					goto out;
				}
				x->accelerator_count = h->per_node;
				for (unsigned j = 0, off = 0; j < h->per_node; j++)
					off += (unsigned)snprintf(list + off, sizeof(list) - off, "%s%u",
								  j ? "," : "", idx[k * h->per_node + j]);
				char handle[sizeof(h->address) + 300];
				snprintf(handle, sizeof(handle), "%s:%u/gpus=%s", h->address, h->port, list);
				if (strlen(handle) >= sizeof(x->handle)) {
					rc = nova_err_set(err, NOVA_EINVAL, "hosts", "host %s: a slice's name is "
							  "too long", h->address);
					goto out;
				}
				memcpy(x->handle, handle, strlen(handle) + 1);
				json_object_set_new(x->labels, "gpus", json_string(list));
				ssh_capacity_add(out, x);
			}
		} else if (sn->reachable && sn->accelerator_count) {
			ssh_capacity_add(out, sn);
		}
	}
out:
	free(run.probes);
	if (rc)
		adapter_resources_finish(out);
	return rc;
}

/* --- provisioning ------------------------------------------------------ */

/* On each host, under install_dir:
 *   bin/nova-sidecar            uploaded atomically, replaced when its sha256
 *                               differs from the local agent's
 *   nodes/<node id>/            the marker: one directory per Nova node
 *     token (0600)              the node token, on no command line and in no
 *                               environment: the sidecar reads it
 *                               (--token-file) and removes it, so the
 *                               engines it runs, as the same user, never can
 *     token.sha256, pid, log
 * The sidecar is started with setsid and its stdio on files, so it outlives
 * the SSH session; a retry finds it by its pid file and command line (the
 * node id is in it), keeps it when the token is the same, replaces it when
 * the token was rotated. */

/* A node's handle: "address:port" for a whole host, "address:port/gpus=0,1"
 * for a slice of its accelerators (their indices, as nvidia-smi numbers
 * them). The host, and in gpus (may be NULL) "0,1" or "" for a whole host;
 * NULL when the handle names no host of the pool. */
static const struct ssh_host_cfg *ssh_host_by_handle_gpus(const struct ssh_adapter *a,
							  const char *handle, char *gpus, size_t len)
{
	char h[ADAPTER_HANDLE_MAX];
	if (gpus && len)
		gpus[0] = '\0';
	for (size_t i = 0; handle && i < a->n_hosts; i++) {
		size_t n = (size_t)snprintf(h, sizeof(h), "%s:%u", a->hosts[i].address, a->hosts[i].port);
		const char *list = handle + n + 6;
		if (strncmp(h, handle, n) != 0)
			continue;
		if (handle[n] == '\0')
			return &a->hosts[i];
		/* Digits and commas only: it goes into a shell command. */
		if (strncmp(handle + n, "/gpus=", 6) != 0 || !*list || strspn(list, "0123456789,") != strlen(list))
			continue;
		if (gpus && len)
			snprintf(gpus, len, "%s", list);
		return &a->hosts[i];
	}
	return NULL;
}

static const struct ssh_host_cfg *ssh_host_by_handle(const struct ssh_adapter *a,
						     const char *handle)
{
	return ssh_host_by_handle_gpus(a, handle, NULL, 0);
}

static bool ssh_node_id_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f') || id[i] == '-'))
			return false;
	return true;
}


/* Run a script that must exit 0; its stdout (first line) into out. */
static int ssh_run(char *out, size_t out_len, struct ssh_session *s, const struct ssh_adapter *a,
		   const char *script, const char *what, struct nova_err *err)
{
	struct ssh_exec_result r;
	char words[TEXT_EXCERPT_MAX + 1];
	int rc = ssh_session_exec(&r, s, script, a->command_timeout_ms, 64 * 1024, err);
	/* The command's stderr (the sidecar's last log lines when it exits at
	 * once) becomes a node's reason, readable through the API: an excerpt
	 * of its end only (core/text.h). */
	if (rc == 0 && r.exit_status != 0) {
		text_excerpt(words, sizeof(words), r.err, r.err_len, true);
		rc = nova_err_set(err, NOVA_EFAILED, "", "host %s: %s failed (status %d): %s",
				  ssh_session_label(s), what, r.exit_status, words);
	}
	if (rc == 0 && out)
		snprintf(out, out_len, "%.*s", (int)strcspn(r.out, "\n"), r.out);
	ssh_exec_result_finish(&r);
	return rc;
}

static int ssh_read_local(char **data, size_t *len, const char *path, struct nova_err *err)
{
	FILE *f = fopen(path, "rb");
	long size;
	*data = NULL;
	if (!f)
		return nova_err_set(err, NOVA_EFAILED, "agent", "agent %s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(*data = malloc((size_t)size + 1)) || fread(*data, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		free(*data);
		*data = NULL;
		return nova_err_set(err, NOVA_EFAILED, "agent", "cannot read agent %s", path);
	}
	fclose(f);
	*len = (size_t)size;
	return 0;
}

/* install_dir/bin/<name> on the host, uploaded when it differs from the
 * local file. */
static int ssh_install_program(struct ssh_session *s, const struct ssh_adapter *a,
			       const char *qinstall, const char *local, const char *name,
			       struct nova_err *err)
{
	char want[SECRET_HEX_SHA256_LEN], have[128], script[16384], bin[600];
	char *data;
	size_t len = 0;
	int rc;
	if ((rc = ssh_read_local(&data, &len, local, err)))
		return rc;
	secret_sha256_hex(want, data, len);
	if (snprintf(script, sizeof(script),
		     "mkdir -p %s/bin %s/nodes && chmod 0700 %s/nodes && "
		     "{ sha256sum %s/bin/%s 2>/dev/null || echo none; }",
		     qinstall, qinstall, qinstall, qinstall, name) >= (int)sizeof(script)) {
		rc = nova_err_set(err, NOVA_EINVAL, "install_dir", "install_dir is too long");
		goto out;
	}
	if ((rc = ssh_run(have, sizeof(have), s, a, script, "preparing the install dir", err)))
		goto out;
	if (strncmp(have, want, 64) != 0) {
		snprintf(bin, sizeof(bin), "%s/bin/%s", a->install_dir, name);
		rc = ssh_session_upload(s, bin, data, len, 0755, a->command_timeout_ms, err);
	}
out:
	free(data);
	return rc;
}

static void ssh_node_paths(char *qdir, size_t len, const struct ssh_adapter *a, const char *node_id)
{
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/nodes/%s", a->install_dir, node_id);
	if (ssh_shell_quote(qdir, len, dir, NULL))
		qdir[0] = '\0';
}

/* Shell text: sets alive=1 and pid when the node's sidecar runs. */
#define SSH_ALIVE_SNIPPET                                                                   \
	"alive=0; pid=$(cat \"$d/pid\" 2>/dev/null); "                                     \
	"if [ -n \"$pid\" ] && kill -0 \"$pid\" 2>/dev/null && "                            \
	"tr '\\0' ' ' <\"/proc/$pid/cmdline\" 2>/dev/null | grep -q -- \"--node-id $id\"; " \
	"then alive=1; fi; "

static int ssh_provision(struct adapter_node_info *out, struct adapter *ad,
			 const struct adapter_provision_request *req, struct nova_err *err)
{
	struct ssh_adapter *a = ssh_from(ad);
	char gpus[256], env[600] = "", qhandle[600];
	const struct ssh_host_cfg *h = ssh_host_by_handle_gpus(a, req->handle, gpus, sizeof(gpus));
	struct ssh_session *s = NULL;
	char qinstall[2100], qdir[2900], qurl[2100], qaddr[1100], tokpath[800];
	char hash[SECRET_HEX_SHA256_LEN], mock[2200] = "";
	char script[16384], answer[256];
	int rc;
	if (!h)
		return nova_err_set(err, NOVA_EFAILED, "handle", "%s is not a host of this pool",
				    req->handle ? req->handle : "(no handle)");
	if (!ssh_node_id_ok(req->node_id))
		return nova_err_set(err, NOVA_EINVAL, "node_id", "node id %s is not a uuid", req->node_id);
	if (!req->node_token || !*req->node_token || !req->gateway_url || !*req->gateway_url)
		return nova_err_set(err, NOVA_EFAILED, "", "a sidecar needs the gateway url and a node token");
	if ((rc = ssh_shell_quote(qinstall, sizeof(qinstall), a->install_dir, err)) ||
	    (rc = ssh_shell_quote(qurl, sizeof(qurl), req->gateway_url, err)) ||
	    (rc = ssh_shell_quote(qaddr, sizeof(qaddr), h->address, err)) ||
	    (rc = ssh_shell_quote(qhandle, sizeof(qhandle), req->handle, err)))
		return rc;
	/* A slice sees only its own accelerators (and so do its engines). */
	if (gpus[0])
		snprintf(env, sizeof(env), "CUDA_VISIBLE_DEVICES=%s NVIDIA_VISIBLE_DEVICES=%s ", gpus, gpus);
	ssh_node_paths(qdir, sizeof(qdir), a, req->node_id);
	secret_sha256_hex(hash, req->node_token, strlen(req->node_token));
	if (a->mock_agents)
		snprintf(mock, sizeof(mock), "--mock-engine %s/bin/nova-mock-engine", qinstall);
	if ((rc = ssh_open_host(&s, a, h, err)))
		return rc;
	if ((rc = ssh_install_program(s, a, qinstall, a->agent, "nova-sidecar", err)) ||
	    (a->mock_agents &&
	     (rc = ssh_install_program(s, a, qinstall, a->mock_engine, "nova-mock-engine", err))))
		goto out;
	snprintf(script, sizeof(script), "mkdir -p %s && chmod 0700 %s", qdir, qdir);
	if ((rc = ssh_run(NULL, 0, s, a, script, "making the node directory", err)))
		goto out;
	/* The token travels by SFTP into a 0600 file, never on a command line. */
	snprintf(tokpath, sizeof(tokpath), "%s/nodes/%s/token.new", a->install_dir, req->node_id);
	if ((rc = ssh_session_upload(s, tokpath, req->node_token, strlen(req->node_token), 0600,
				     a->command_timeout_ms, err)))
		goto out;
	snprintf(script, sizeof(script),
		 "d=%s; id=%s; " SSH_ALIVE_SNIPPET
		 "if [ $alive = 1 ] && [ \"$(cat \"$d/token.sha256\" 2>/dev/null)\" = %s ]; then "
		 "rm -f \"$d/token.new\"; echo \"kept $pid\"; exit 0; fi; "
		 "if [ $alive = 1 ]; then kill \"$pid\"; i=0; "
		 "while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done; "
		 "kill -9 \"$pid\" 2>/dev/null; fi; "
		 "mv -f \"$d/token.new\" \"$d/token\" && echo %s >\"$d/token.sha256\" || exit 1; "
		 "printf '%%s\\n' %s >\"$d/handle\" || exit 1; "
		 "%sNOVA_NODE_TOKEN_FILE=\"$d/token\" setsid %s/bin/nova-sidecar --gateway %s --node-id \"$id\" "
		 "--advertise-host %s --log-file \"$d/log\" %s "
		 "</dev/null >>\"$d/log\" 2>&1 & pid=$!; echo \"$pid\" >\"$d/pid\"; sleep 0.3; "
		 "if kill -0 \"$pid\" 2>/dev/null; then echo \"started $pid\"; "
		 "else echo \"the sidecar exited at once: $(tail -c 512 \"$d/log\")\" >&2; exit 1; fi",
		 qdir, req->node_id, hash, hash, qhandle, env, qinstall, qurl, qaddr, mock);
	if ((rc = ssh_run(answer, sizeof(answer), s, a, script, "starting the sidecar", err)))
		goto out;
	snprintf(out->node_id, sizeof(out->node_id), "%s", req->node_id);
	snprintf(out->handle, sizeof(out->handle), "%s", req->handle);
	/* Its address, the one its sidecar advertises (--advertise-host): the
	 * inventory takes endpoints on it only. */
	snprintf(out->endpoint, sizeof(out->endpoint), "%s", h->address);
	out->state = ADAPTER_NODE_RUNNING;
	snprintf(out->message, sizeof(out->message), "sidecar %.200s", answer);
out:
	ssh_pool_put(s);
	return rc;
}

static int ssh_deprovision(struct adapter *ad, const struct adapter_node_ref *node,
			   struct nova_err *err)
{
	struct ssh_adapter *a = ssh_from(ad);
	const struct ssh_host_cfg *h = ssh_host_by_handle(a, node->handle);
	struct ssh_session *s = NULL;
	char qdir[2900], script[16384];
	int rc;
	if (!ssh_node_id_ok(node->node_id))
		return nova_err_set(err, NOVA_EINVAL, "node_id", "node id %s is not a uuid", node->node_id);
	if (!h) {
		/* No handle (a lost provision answer) or a host no longer in
		 * the pool: nothing of ours can be reached by it. */
		nova_log(NOVA_LOG_WARN, "ssh", "deprovision of node %s: no host for handle %s",
			 node->node_id, node->handle ? node->handle : "(none)");
		return 0;
	}
	ssh_node_paths(qdir, sizeof(qdir), a, node->node_id);
	if ((rc = ssh_open_host(&s, a, h, err)))
		return rc; /* unreachable: the caller retries, nothing is forgotten */
	/* The sidecar's engines die with it (PR_SET_PDEATHSIG). */
	snprintf(script, sizeof(script),
		 "d=%s; id=%s; [ -d \"$d\" ] || exit 0; " SSH_ALIVE_SNIPPET
		 "if [ $alive = 1 ]; then kill \"$pid\"; i=0; "
		 "while kill -0 \"$pid\" 2>/dev/null && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.1; done; "
		 "kill -9 \"$pid\" 2>/dev/null; fi; rm -rf -- \"$d\"",
		 qdir, node->node_id);
	rc = ssh_run(NULL, 0, s, a, script, "stopping the sidecar", err);
	ssh_pool_put(s);
	return rc;
}

static int ssh_status(struct adapter_node_info *out, struct adapter *ad,
		      const struct adapter_node_ref *node, struct nova_err *err)
{
	struct ssh_adapter *a = ssh_from(ad);
	const struct ssh_host_cfg *h = ssh_host_by_handle(a, node->handle);
	struct ssh_session *s = NULL;
	char qdir[2900], script[16384], answer[64];
	int rc;
	if (!ssh_node_id_ok(node->node_id))
		return nova_err_set(err, NOVA_EINVAL, "node_id", "node id %s is not a uuid", node->node_id);
	snprintf(out->node_id, sizeof(out->node_id), "%s", node->node_id);
	if (!h) {
		out->state = ADAPTER_NODE_GONE;
		snprintf(out->message, sizeof(out->message), "no host %s in the pool",
			 node->handle ? node->handle : "(none)");
		return 0;
	}
	snprintf(out->handle, sizeof(out->handle), "%s", node->handle);
	ssh_node_paths(qdir, sizeof(qdir), a, node->node_id);
	if ((rc = ssh_open_host(&s, a, h, err)))
		return rc;
	snprintf(script, sizeof(script),
		 "d=%s; id=%s; [ -d \"$d\" ] || { echo gone; exit 0; }; " SSH_ALIVE_SNIPPET
		 "if [ $alive = 1 ]; then echo \"running $pid\"; else echo dead; fi", qdir, node->node_id);
	rc = ssh_run(answer, sizeof(answer), s, a, script, "reading the sidecar's state", err);
	ssh_pool_put(s);
	if (rc)
		return rc;
	if (strncmp(answer, "running", 7) == 0) {
		out->state = ADAPTER_NODE_RUNNING;
		snprintf(out->message, sizeof(out->message), "sidecar %.200s", answer);
	} else if (strcmp(answer, "gone") == 0) {
		out->state = ADAPTER_NODE_GONE;
		snprintf(out->message, sizeof(out->message), "no sidecar installed");
	} else {
		/* Gone, not failed: the host is fine and provisioning again
		 * (which the reconciler does for a static node whose resource is
		 * gone) starts a new sidecar over the same marker. */
		out->state = ADAPTER_NODE_GONE;
		snprintf(out->message, sizeof(out->message), "the sidecar is not running");
	}
	return 0;
}

/* Every node directory on every reachable host. An unreachable host is
 * logged and skipped: its nodes are found on a later pass, and failing the
 * whole list would hide every other host's orphans meanwhile. */
static int ssh_list(struct adapter_node_list *out, struct adapter *ad, struct nova_err *err)
{
	struct ssh_adapter *a = ssh_from(ad);
	char qinstall[2100], script[16384];
	size_t cap = 0;
	int rc;
	if ((rc = ssh_shell_quote(qinstall, sizeof(qinstall), a->install_dir, err)))
		return rc;
	snprintf(script, sizeof(script),
		 "for d in %s/nodes/*-*-*-*-*; do [ -d \"$d\" ] || continue; id=${d##*/}; "
		 SSH_ALIVE_SNIPPET "echo \"$id $alive $(head -n 1 \"$d/handle\" 2>/dev/null)\"; done",
		 qinstall);
	for (size_t i = 0; i < a->n_hosts; i++) {
		const struct ssh_host_cfg *h = &a->hosts[i];
		struct ssh_session *s = NULL;
		struct ssh_exec_result r;
		struct nova_err e = {0};
		if (ssh_open_host(&s, a, h, &e) ||
		    ssh_session_exec(&r, s, script, a->command_timeout_ms, 1 << 20, &e)) {
			nova_log(NOVA_LOG_WARN, "ssh", "listing nodes: %s", e.message);
			if (s)
				ssh_exec_result_finish(&r);
			ssh_pool_put(s);
			continue;
		}
		for (char *line = r.out; line && *line;) {
			char *nl = strchr(line, '\n');
			char id[64], handle[ADAPTER_HANDLE_MAX] = "";
			int alive;
			if (nl)
				*nl = '\0';
			if (sscanf(line, "%63s %d %255s", id, &alive, handle) >= 2 && ssh_node_id_ok(id)) {
				if (out->n == cap) {
					size_t ncap = cap ? cap * 2 : 16;
					struct adapter_node_info *v = realloc(out->items, ncap * sizeof(*v));
					if (!v) {
						ssh_exec_result_finish(&r);
						ssh_pool_put(s);
						return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
					}
					out->items = v;
					cap = ncap;
				}
				struct adapter_node_info *it = &out->items[out->n++];
				memset(it, 0, sizeof(*it));
				snprintf(it->node_id, sizeof(it->node_id), "%.36s", id);
				/* The handle the node was provisioned with (a slice's),
				 * when the marker has it and it names this host. */
				if (handle[0] && ssh_host_by_handle(a, handle) == h)
					snprintf(it->handle, sizeof(it->handle), "%s", handle);
				else
					snprintf(it->handle, sizeof(it->handle), "%s:%u", h->address, h->port);
				it->state = alive ? ADAPTER_NODE_RUNNING : ADAPTER_NODE_FAILED;
			}
			line = nl ? nl + 1 : NULL;
		}
		ssh_exec_result_finish(&r);
		ssh_pool_put(s);
	}
	return 0;
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
	.list_nodes = ssh_list,
	.forget = ssh_forget,
	.start = ssh_start,
	.shutdown = ssh_pool_drain,
};
