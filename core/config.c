#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/http_client.h"
#include "core/ydoc.h"

void cfg_default_state_dir(char *buf, size_t len)
{
	const char *env = getenv("NOVA_STATE_DIR");
	const char *sd = getenv("STATE_DIRECTORY");
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
	} else if (sd && sd[0] == '/') {
		/* systemd lists several directories with ':' */
		snprintf(buf, len, "%.*s", (int)strcspn(sd, ":"), sd);
	} else if (geteuid() == 0) {
		snprintf(buf, len, "/var/lib/nova");
	} else if (xdg && *xdg) {
		snprintf(buf, len, "%s/nova", xdg);
	} else {
		if (!home || !*home) {
			struct passwd *pw = getpwuid(geteuid());
			home = pw ? pw->pw_dir : "/tmp";
		}
		snprintf(buf, len, "%s/.local/state/nova", home);
	}
}

int cfg_file_pick(char *out, size_t len, const char **source_out, const char *flag,
		  const char *env_name, const char *default_path, struct nova_err *err)
{
	const char *env = env_name ? getenv(env_name) : NULL;
	const char *path = NULL, *source = "none";
	struct stat st;
	if (flag) {
		path = flag;
		source = "flag";
	} else if (env && *env) {
		path = env;
		source = env_name;
	} else if (default_path && (stat(default_path, &st) == 0 || errno != ENOENT)) {
		path = default_path;
		source = "default";
	}
	if (source_out)
		*source_out = source;
	if (snprintf(out, len, "%s", path ? path : "") >= (int)len)
		return nova_err_set(err, NOVA_EINVAL, flag ? "config" : env_name,
				    "configuration file name is longer than %zu bytes", len - 1);
	return 0;
}

/* The heartbeat budget's range: at least 1 a second (a fleet of 600,000
 * then beats every 600 s, the longest interval a sidecar takes), at most
 * ten million (no budget, in effect). */
#define CFG_HEARTBEAT_BUDGET_MIN 1
#define CFG_HEARTBEAT_BUDGET_MAX 10000000

void cfg_defaults(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "%s", CFG_DEFAULT_LISTEN);
	cfg_default_state_dir(c->state_dir, sizeof(c->state_dir));
	c->log_level = NOVA_LOG_INFO;
	c->http_threads = 4;
	c->max_body_bytes = 1024 * 1024;
	/* 16 KiB of MHD memory each: 32 MiB at the cap. Watchers leave the
	 * reserve and about 900 connections for everything else. */
	c->http_max_connections = 2048;
	c->http_max_connections_per_ip = 256;
	c->http_reserved_connections = 64;
	c->http_header_timeout_ms = 10000;
	c->http_body_timeout_ms = 30000;
	c->http_max_watchers = 1024;
	c->http_max_watchers_per_key = 256;
	c->http_max_connections_per_key = 512;
	c->db_pool_size = 8;
	/* Well under the clients' own timeouts (a sidecar's heartbeat gives up
	 * after 5 s): acquire + statement stays under it. */
	c->db_statement_timeout_ms = 2000;
	c->db_acquire_timeout_ms = 1000;
	c->provider_files_timeout_ms = 2000;
	c->enable_fake_provider = false;
	c->workers = 2;
	c->worker_lease_ms = 30000;
	c->heartbeat_interval_ms = 2000;
	/* inventory.h's INVENTORY_MAX_HEARTBEATS_PER_SECOND_DEFAULT (core
	 * does not include the modules above it): what one novad on two
	 * cores takes below the knee of its p99 (docs/PERFORMANCE.md). */
	c->max_heartbeats_per_second = 10000;
	c->node_failed_after_ms = 30000;
	c->node_brake_percent = 50;
	c->node_brake_min_nodes = 3;
	c->idle_node_grace_s = 60;
	c->audit_retention_days = 90;
	c->metrics_refresh_ms = 5000;
}

static int cfg_copy(char *dst, size_t cap, const char *src, const char *field,
		    struct nova_err *err)
{
	if (strlen(src) >= cap)
		return nova_err_set(err, NOVA_EINVAL, field, "%s is longer than %zu bytes", field,
				    cap - 1);
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static int cfg_yaml_http(struct cfg *c, struct ydoc *d, yaml_node_t *map, struct nova_err *err)
{
	static const char *const keys[] = {"threads", "max_body_bytes", "max_connections",
					   "max_connections_per_ip", "reserved_connections",
					   "header_timeout_ms", "body_timeout_ms", "max_watchers",
					   "max_watchers_per_key", "max_connections_per_key", NULL};
	const struct {
		const char *key, *field;
		unsigned *dst;
		long long min, max;
	} limits[] = {
		{"max_connections", "http.max_connections", &c->http_max_connections, 16, 1000000},
		{"max_connections_per_ip", "http.max_connections_per_ip",
		 &c->http_max_connections_per_ip, 0, 1000000},
		{"reserved_connections", "http.reserved_connections", &c->http_reserved_connections,
		 0, 1000000},
		{"header_timeout_ms", "http.header_timeout_ms", &c->http_header_timeout_ms, 100,
		 600000},
		{"body_timeout_ms", "http.body_timeout_ms", &c->http_body_timeout_ms, 100, 3600000},
		{"max_watchers", "http.max_watchers", &c->http_max_watchers, 1, 1000000},
		{"max_watchers_per_key", "http.max_watchers_per_key", &c->http_max_watchers_per_key,
		 1, 1000000},
		{"max_connections_per_key", "http.max_connections_per_key",
		 &c->http_max_connections_per_key, 0, 1000000},
	};
	long long v;
	int rc = ydoc_map_check_keys(d, map, "http", keys, err);
	yaml_node_t *n;
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if (!(n = ydoc_map_get(d, map, limits[i].key)))
			continue;
		if ((rc = ydoc_get_long(&v, d, n, limits[i].field, limits[i].min, limits[i].max, err)))
			return rc;
		*limits[i].dst = (unsigned)v;
	}
	/* Together: watchers are connections the reserve cannot reclaim, so
	 * they and the reserve must leave room for the rest. */
	if (c->http_reserved_connections + c->http_max_watchers >= c->http_max_connections) {
		/* Positioned at the first of the three keys the file sets. */
		static const char *const which[] = {"max_watchers", "reserved_connections",
						    "max_connections"};
		const char *key = "max_connections";
		n = map;
		for (size_t i = 0; i < 3 && n == map; i++)
			if ((n = ydoc_map_get(d, map, which[i])))
				key = which[i];
			else
				n = map;
		char field[64];
		snprintf(field, sizeof(field), "http.%s", key);
		return ydoc_err(d, n, err, NOVA_EINVAL, field,
				"http: reserved_connections plus max_watchers must be below "
				"max_connections");
	}
	if (c->http_max_watchers_per_key > c->http_max_watchers) {
		n = ydoc_map_get(d, map, "max_watchers_per_key");
		return ydoc_err(d, n ? n : ydoc_map_get(d, map, "max_watchers"), err, NOVA_EINVAL,
				"http.max_watchers_per_key",
				"http: max_watchers_per_key must be at most max_watchers");
	}
	if ((n = ydoc_map_get(d, map, "threads"))) {
		if ((rc = ydoc_get_long(&v, d, n, "http.threads", 1, 256, err)))
			return rc;
		c->http_threads = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, map, "max_body_bytes"))) {
		if ((rc = ydoc_get_long(&v, d, n, "http.max_body_bytes", 1024, 64LL << 20, err)))
			return rc;
		c->max_body_bytes = (size_t)v;
	}
	return 0;
}

static int cfg_yaml_providers(struct cfg *c, struct ydoc *d, yaml_node_t *map,
			      struct nova_err *err)
{
	static const char *const keys[] = {"fake", NULL};
	yaml_node_t *n;
	int rc = ydoc_map_check_keys(d, map, "providers", keys, err);
	if (rc)
		return rc;
	if ((n = ydoc_map_get(d, map, "fake")))
		return ydoc_get_bool(&c->enable_fake_provider, d, n, "providers.fake", err);
	return 0;
}

static int cfg_yaml_provider_files(struct cfg *c, struct ydoc *d, yaml_node_t *seq,
				   struct nova_err *err)
{
	size_t i = 0;
	if (seq->type != YAML_SEQUENCE_NODE)
		return ydoc_err(d, seq, err, NOVA_EINVAL, "provider_files",
				"provider_files: expected a list of directories");
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
	     it++, i++) {
		yaml_node_t *n = ydoc_node(d, *it);
		const char *s = ydoc_scalar(n);
		if (i >= CFG_PROVIDER_FILES_MAX)
			return ydoc_err(d, n, err, NOVA_EINVAL, "provider_files",
					"provider_files: at most %d directories", CFG_PROVIDER_FILES_MAX);
		if (!s || s[0] != '/')
			return ydoc_err(d, n, err, NOVA_EINVAL, "provider_files",
					"provider_files: expected absolute directory paths");
		if (ydoc_copy_string(c->provider_files[i], sizeof(c->provider_files[i]), d, n,
				    "provider_files", err))
			return NOVA_EINVAL;
	}
	c->n_provider_files = (unsigned)i;
	c->provider_files_set = true;
	return 0;
}

int cfg_load_file(struct cfg *c, const char *path, struct nova_err *err)
{
	static const char *const keys[] = {"listen", "database_url", "database_listen_url",
					   "admin_token", "state_dir",
					   "log_level", "database_pool_size", "http", "providers",
					   "workers", "worker_lease_ms", "heartbeat_interval_ms",
					   "max_heartbeats_per_second",
					   "node_failed_after_ms", "idle_node_grace_s",
					   "database_statement_timeout_ms", "database_acquire_timeout_ms",
					   "node_brake_percent", "node_brake_min_nodes", "provider_files",
					   "lpu_agent", "audit_retention_days", "advertise_url",
					   "lpu_run_dir", "machine_id", "metrics_public",
					   "metrics_refresh_ms", "provider_files_timeout_ms", NULL};
	struct ydoc *d;
	yaml_node_t *root, *n;
	long long v;
	int rc = ydoc_load_file(&d, path, err);
	if (rc)
		return rc;
	root = ydoc_root(d);
	if (!root)
		goto out; /* an empty file changes nothing */
	if ((rc = ydoc_map_check_keys(d, root, "", keys, err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "listen")) &&
	    (rc = ydoc_copy_string(c->listen, sizeof(c->listen), d, n, "listen", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "database_url")) &&
	    (rc = ydoc_copy_string(c->database_url, sizeof(c->database_url), d, n, "database_url", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "database_listen_url")) &&
	    (rc = ydoc_copy_string(c->database_listen_url, sizeof(c->database_listen_url), d, n,
				   "database_listen_url", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "admin_token")) &&
	    (rc = ydoc_copy_string(c->admin_token, sizeof(c->admin_token), d, n, "admin_token", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "state_dir")) &&
	    (rc = ydoc_copy_string(c->state_dir, sizeof(c->state_dir), d, n, "state_dir", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "log_level"))) {
		const char *s = ydoc_scalar(n);
		if (!s || nova_log_level_parse(&c->log_level, s) != 0) {
			rc = ydoc_err(d, n, err, NOVA_EINVAL, "log_level",
				      "log_level: expected one of debug, info, warn, error");
			goto out;
		}
	}
	if ((n = ydoc_map_get(d, root, "database_pool_size"))) {
		if ((rc = ydoc_get_long(&v, d, n, "database_pool_size", 1, 256, err)))
			goto out;
		c->db_pool_size = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "database_statement_timeout_ms"))) {
		if ((rc = ydoc_get_long(&v, d, n, "database_statement_timeout_ms", 100, 600000, err)))
			goto out;
		c->db_statement_timeout_ms = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "database_acquire_timeout_ms"))) {
		if ((rc = ydoc_get_long(&v, d, n, "database_acquire_timeout_ms", 10, 600000, err)))
			goto out;
		c->db_acquire_timeout_ms = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "provider_files_timeout_ms"))) {
		if ((rc = ydoc_get_long(&v, d, n, "provider_files_timeout_ms", 10, 600000, err)))
			goto out;
		c->provider_files_timeout_ms = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "node_brake_percent"))) {
		if ((rc = ydoc_get_long(&v, d, n, "node_brake_percent", 1, 100, err)))
			goto out;
		c->node_brake_percent = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "metrics_public")) &&
	    (rc = ydoc_get_bool(&c->metrics_public, d, n, "metrics_public", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "metrics_refresh_ms"))) {
		if ((rc = ydoc_get_long(&v, d, n, "metrics_refresh_ms", 500, 3600000, err)))
			goto out;
		c->metrics_refresh_ms = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "audit_retention_days"))) {
		if ((rc = ydoc_get_long(&v, d, n, "audit_retention_days", 0, 36500, err)))
			goto out;
		c->audit_retention_days = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "node_brake_min_nodes"))) {
		if ((rc = ydoc_get_long(&v, d, n, "node_brake_min_nodes", 1, 1000000, err)))
			goto out;
		c->node_brake_min_nodes = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "workers"))) {
		if ((rc = ydoc_get_long(&v, d, n, "workers", 0, 16, err)))
			goto out;
		c->workers = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "worker_lease_ms"))) {
		if ((rc = ydoc_get_long(&v, d, n, "worker_lease_ms", 1000, 600000, err)))
			goto out;
		c->worker_lease_ms = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "heartbeat_interval_ms"))) {
		if ((rc = ydoc_get_long(&v, d, n, "heartbeat_interval_ms", 100, 600000, err)))
			goto out;
		c->heartbeat_interval_ms = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "max_heartbeats_per_second"))) {
		if ((rc = ydoc_get_long(&v, d, n, "max_heartbeats_per_second", CFG_HEARTBEAT_BUDGET_MIN,
					CFG_HEARTBEAT_BUDGET_MAX, err)))
			goto out;
		c->max_heartbeats_per_second = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "idle_node_grace_s"))) {
		if ((rc = ydoc_get_long(&v, d, n, "idle_node_grace_s", 0, 86400, err)))
			goto out;
		c->idle_node_grace_s = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "node_failed_after_ms"))) {
		if ((rc = ydoc_get_long(&v, d, n, "node_failed_after_ms", 1000, 86400000, err)))
			goto out;
		c->node_failed_after_ms = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "http")) && (rc = cfg_yaml_http(c, d, n, err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "provider_files")) &&
	    (rc = cfg_yaml_provider_files(c, d, n, err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "lpu_agent")) &&
	    (rc = ydoc_copy_string(c->lpu_agent, sizeof(c->lpu_agent), d, n, "lpu_agent", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "machine_id")) &&
	    (rc = ydoc_copy_string(c->machine_id, sizeof(c->machine_id), d, n, "machine_id", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "lpu_run_dir")) &&
	    (rc = ydoc_copy_string(c->lpu_run_dir, sizeof(c->lpu_run_dir), d, n, "lpu_run_dir", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "advertise_url"))) {
		if ((rc = ydoc_copy_string(c->advertise_url, sizeof(c->advertise_url), d, n,
					  "advertise_url", err)))
			goto out;
		if (http_url_check(c->advertise_url, "advertise_url", err)) {
			char why[sizeof(err->message)];
			snprintf(why, sizeof(why), "%s", err->message);
			rc = ydoc_err(d, n, err, NOVA_EINVAL, "advertise_url", "%s", why);
			goto out;
		}
	}
	if ((n = ydoc_map_get(d, root, "providers")) && (rc = cfg_yaml_providers(c, d, n, err)))
		goto out;
out:
	ydoc_destroy(d);
	return rc;
}

static int cfg_env_uint(unsigned *out, const char *name, unsigned min, unsigned max,
			struct nova_err *err)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;
	if (!s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v < min || v > max)
		return nova_err_set(err, NOVA_EINVAL, name, "%s: expected an integer from %u to %u",
				    name, min, max);
	*out = (unsigned)v;
	return 0;
}

static int cfg_env_bool(bool *out, const char *name, struct nova_err *err)
{
	const char *s = getenv(name);
	if (!s)
		return 0;
	if (!strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes"))
		*out = true;
	else if (!strcmp(s, "0") || !strcmp(s, "false") || !strcmp(s, "no") || !*s)
		*out = false;
	else
		return nova_err_set(err, NOVA_EINVAL, name, "%s: expected 1/0 or true/false", name);
	return 0;
}

/* NOVA_PROVIDER_FILES: directories separated by ':' ("" allows none). */
static int cfg_env_provider_files(struct cfg *c, struct nova_err *err)
{
	const char *s = getenv("NOVA_PROVIDER_FILES");
	unsigned n = 0;
	if (!s)
		return 0;
	while (*s) {
		size_t len = strcspn(s, ":");
		if (len > 0) {
			if (n >= CFG_PROVIDER_FILES_MAX)
				return nova_err_set(err, NOVA_EINVAL, "NOVA_PROVIDER_FILES",
						    "NOVA_PROVIDER_FILES: at most %d directories",
						    CFG_PROVIDER_FILES_MAX);
			if (s[0] != '/' || len >= sizeof(c->provider_files[0]))
				return nova_err_set(err, NOVA_EINVAL, "NOVA_PROVIDER_FILES",
						    "NOVA_PROVIDER_FILES: expected absolute directory "
						    "paths separated by ':'");
			memcpy(c->provider_files[n], s, len);
			c->provider_files[n++][len] = '\0';
		}
		s += len + (s[len] ? 1 : 0);
	}
	c->n_provider_files = n;
	c->provider_files_set = true;
	return 0;
}

int cfg_apply_env(struct cfg *c, struct nova_err *err)
{
	const struct {
		const char *name;
		char *dst;
		size_t cap;
	} strs[] = {
		{"NOVA_LISTEN", c->listen, sizeof(c->listen)},
		{"NOVA_DATABASE_URL", c->database_url, sizeof(c->database_url)},
		{"NOVA_DATABASE_LISTEN_URL", c->database_listen_url, sizeof(c->database_listen_url)},
		{"NOVA_ADMIN_TOKEN", c->admin_token, sizeof(c->admin_token)},
		{"NOVA_STATE_DIR", c->state_dir, sizeof(c->state_dir)},
		{"NOVA_LPU_AGENT", c->lpu_agent, sizeof(c->lpu_agent)},
		{"NOVA_LPU_RUN_DIR", c->lpu_run_dir, sizeof(c->lpu_run_dir)},
		{"NOVA_MACHINE_ID", c->machine_id, sizeof(c->machine_id)},
		{"NOVA_ADVERTISE_URL", c->advertise_url, sizeof(c->advertise_url)},
	};
	unsigned body = 0;
	int rc;
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		const char *s = getenv(strs[i].name);
		if (s && (rc = cfg_copy(strs[i].dst, strs[i].cap, s, strs[i].name, err)))
			return rc;
	}
	if ((rc = cfg_env_provider_files(c, err)))
		return rc;
	if (getenv("NOVA_ADVERTISE_URL") && *c->advertise_url &&
	    (rc = http_url_check(c->advertise_url, "NOVA_ADVERTISE_URL", err)))
		return rc;
	const char *lvl = getenv("NOVA_LOG_LEVEL");
	if (lvl && nova_log_level_parse(&c->log_level, lvl) != 0)
		return nova_err_set(err, NOVA_EINVAL, "NOVA_LOG_LEVEL",
				    "NOVA_LOG_LEVEL: expected one of debug, info, warn, error");
	if ((rc = cfg_env_uint(&c->http_threads, "NOVA_HTTP_THREADS", 1, 256, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->db_pool_size, "NOVA_DB_POOL_SIZE", 1, 256, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->db_statement_timeout_ms, "NOVA_DB_STATEMENT_TIMEOUT_MS", 100,
			       600000, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->db_acquire_timeout_ms, "NOVA_DB_ACQUIRE_TIMEOUT_MS", 10, 600000,
			       err)))
		return rc;
	if ((rc = cfg_env_uint(&c->provider_files_timeout_ms, "NOVA_PROVIDER_FILES_TIMEOUT_MS", 10,
			       600000, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->workers, "NOVA_WORKERS", 0, 16, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->node_brake_percent, "NOVA_NODE_BRAKE_PERCENT", 1, 100, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->node_brake_min_nodes, "NOVA_NODE_BRAKE_MIN_NODES", 1, 1000000, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->audit_retention_days, "NOVA_AUDIT_RETENTION_DAYS", 0, 36500, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->metrics_refresh_ms, "NOVA_METRICS_REFRESH_MS", 500, 3600000, err)))
		return rc;
	if ((rc = cfg_env_bool(&c->metrics_public, "NOVA_METRICS_PUBLIC", err)))
		return rc;
	if ((rc = cfg_env_uint(&c->worker_lease_ms, "NOVA_WORKER_LEASE_MS", 1000, 600000, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->heartbeat_interval_ms, "NOVA_HEARTBEAT_INTERVAL_MS", 100, 600000,
			       err)))
		return rc;
	if ((rc = cfg_env_uint(&c->max_heartbeats_per_second, "NOVA_MAX_HEARTBEATS_PER_SECOND",
			       CFG_HEARTBEAT_BUDGET_MIN, CFG_HEARTBEAT_BUDGET_MAX, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->idle_node_grace_s, "NOVA_IDLE_NODE_GRACE_S", 0, 86400, err)))
		return rc;
	if ((rc = cfg_env_uint(&c->node_failed_after_ms, "NOVA_NODE_FAILED_AFTER_MS", 1000, 86400000,
			       err)))
		return rc;
	if (getenv("NOVA_MAX_BODY_BYTES")) {
		if ((rc = cfg_env_uint(&body, "NOVA_MAX_BODY_BYTES", 1024, 64u << 20, err)))
			return rc;
		c->max_body_bytes = body;
	}
	return cfg_env_bool(&c->enable_fake_provider, "NOVA_ENABLE_FAKE_PROVIDER", err);
}
