#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/http.h"
#include "core/http_client.h"
#include "core/ydoc.h"
#include "router/router.h"

const char router_usage[] =
	"usage: nova-router [--gateway URL] [--token KEY] [--listen HOST:PORT] [--config FILE]\n"
	"                   [--threads N] [--policy least-loaded|session|prefix|round-robin]\n"
	"                   [--log-level L] [--queue-max N] [--queue-timeout-ms MS]\n"
	"  --gateway URL    novad's URL (NOVA_GATEWAY)\n"
	"  --token KEY      an API key with the router scope (NOVA_TOKEN; prefer the\n"
	"                   environment or the file's token_file: a command line is public)\n"
	"  --listen ADDR    where clients connect (NOVA_ROUTER_LISTEN, default " ROUTER_DEFAULT_LISTEN ")\n"
	"  --queue-max N    requests of one model waiting for a replica (default 256)\n"
	"  --queue-timeout-ms MS  how long one waits, then 503 (NOVA_ROUTER_QUEUE_TIMEOUT_MS,\n"
	"                   default 30000; 0: no wait)\n"
	"  --config FILE    YAML: gateway, token_file, listen, threads, max_body_bytes,\n"
	"                   max_connections, idle_timeout_s, connect_timeout_ms,\n"
	"                   upstream_timeout_ms, max_retries, max_upstream_connections,\n"
	"                   keys_poll_ms, loads_poll_ms, queue_max, queue_timeout_ms,\n"
	"                   demand_ms, policy, prefix_block_bytes, prefix_max_blocks,\n"
	"                   prefix_memory, log_level\n"
	"                   (without it: NOVA_ROUTER_CONFIG, else\n"
	"                   " ROUTER_DEFAULT_CONFIG " when it exists; /dev/null: none)\n"
	"Precedence: defaults, the file, the environment, flags.\n";

static const char *const router_policy_names[] = {"least-loaded", "session", "prefix",
						       "round-robin"};
#define RC_N_POLICIES (sizeof(router_policy_names) / sizeof(router_policy_names[0]))

const char *router_policy_name(enum router_policy p)
{
	return (unsigned)p < RC_N_POLICIES ? router_policy_names[p] : "?";
}

int router_policy_parse(enum router_policy *out, const char *name)
{
	for (unsigned i = 0; i < RC_N_POLICIES; i++)
		if (name && !strcmp(name, router_policy_names[i])) {
			*out = (enum router_policy)i;
			return 0;
		}
	return NOVA_EINVAL;
}

void router_config_defaults(struct router_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->listen, sizeof(cfg->listen), "%s", ROUTER_DEFAULT_LISTEN);
	cfg->max_body_bytes = 8u << 20;
	cfg->max_connections = 10000;
	cfg->idle_timeout_s = 60;
	cfg->connect_timeout_ms = 2000;
	cfg->max_retries = 2;
	cfg->max_upstream_connections = 4096;
	cfg->queue_max = 256;
	cfg->queue_timeout_ms = 30000;
	cfg->demand_ms = 1000;
	cfg->keys_poll_ms = 1000;
	cfg->loads_poll_ms = 1000;
	cfg->policy = ROUTER_POLICY_PREFIX;
	cfg->prefix_block_bytes = 256;
	cfg->prefix_max_blocks = 256;
	cfg->prefix_memory = 262144;
	cfg->log_level = NOVA_LOG_INFO;
}

/* The first line of a 0600-ish file: the token. Its content is never in
 * an error. */
static int rc_token_file(char *out, size_t len, const char *path, struct nova_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return nova_err_set(err, NOVA_EINVAL, "token_file", "cannot open token_file %s: %s",
				    path, strerror(errno));
	ssize_t n = read(fd, out, len - 1);
	close(fd);
	if (n <= 0)
		return nova_err_set(err, NOVA_EINVAL, "token_file", "token_file %s is empty", path);
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

int router_config_load_file(struct router_config *cfg, const char *path, struct nova_err *err)
{
	static const char *const keys[] = {"gateway", "token_file", "listen", "threads",
					   "max_body_bytes", "max_connections", "idle_timeout_s",
					   "connect_timeout_ms", "upstream_timeout_ms", "max_retries",
					   "keys_poll_ms", "loads_poll_ms", "policy", "log_level",
					   "max_upstream_connections", "prefix_block_bytes",
					   "prefix_max_blocks", "prefix_memory", "queue_max",
					   "queue_timeout_ms", "demand_ms", NULL};
	/* Numbers: field, range, where. */
	const struct {
		const char *name;
		long long min, max;
		unsigned *u;
	} nums[] = {
		{"threads", 0, 64, &cfg->threads},
		{"max_connections", 1, 1000000, &cfg->max_connections},
		{"idle_timeout_s", 1, 86400, &cfg->idle_timeout_s},
		{"connect_timeout_ms", 10, 600000, &cfg->connect_timeout_ms},
		{"upstream_timeout_ms", 0, 86400000, &cfg->upstream_timeout_ms},
		{"max_retries", 0, 10, &cfg->max_retries},
		{"max_upstream_connections", 1, 1000000, &cfg->max_upstream_connections},
		{"keys_poll_ms", 100, 60000, &cfg->keys_poll_ms},
		{"loads_poll_ms", 100, 60000, &cfg->loads_poll_ms},
		{"prefix_block_bytes", 16, 1 << 20, &cfg->prefix_block_bytes},
		{"prefix_max_blocks", 1, 65536, &cfg->prefix_max_blocks},
		{"prefix_memory", 64, 1 << 28, &cfg->prefix_memory},
		{"queue_max", 0, 1000000, &cfg->queue_max},
		{"queue_timeout_ms", 0, 3600000, &cfg->queue_timeout_ms},
		{"demand_ms", 100, 60000, &cfg->demand_ms},
	};
	struct ydoc *d;
	yaml_node_t *root, *n;
	long long v;
	int rc = ydoc_load_file(&d, path, err);
	if (rc)
		return rc;
	root = ydoc_root(d);
	if (!root)
		goto out;
	if (root->type != YAML_MAPPING_NODE) {
		rc = ydoc_err(d, root, err, NOVA_EINVAL, "", "expected a mapping of settings");
		goto out;
	}
	if ((rc = ydoc_map_check_keys(d, root, "", keys, err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "gateway")) &&
	    (rc = ydoc_copy_string(cfg->gateway, sizeof(cfg->gateway), d, n, "gateway", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "listen")) &&
	    (rc = ydoc_copy_string(cfg->listen, sizeof(cfg->listen), d, n, "listen", err)))
		goto out;
	if ((n = ydoc_map_get(d, root, "token_file"))) {
		char file[1024];
		if ((rc = ydoc_copy_string(file, sizeof(file), d, n, "token_file", err)))
			goto out;
		if ((rc = rc_token_file(cfg->token, sizeof(cfg->token), file, err))) {
			/* Positioned, the reason kept. */
			char why[NOVA_ERR_MESSAGE_MAX];
			snprintf(why, sizeof(why), "%s", err->message);
			rc = ydoc_err(d, n, err, NOVA_EINVAL, "token_file", "%s", why);
			goto out;
		}
	}
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (!(n = ydoc_map_get(d, root, nums[i].name)))
			continue;
		if ((rc = ydoc_get_long(&v, d, n, nums[i].name, nums[i].min, nums[i].max, err)))
			goto out;
		*nums[i].u = (unsigned)v;
	}
	if ((n = ydoc_map_get(d, root, "max_body_bytes"))) {
		if ((rc = ydoc_get_long(&v, d, n, "max_body_bytes", 1024, 1LL << 30, err)))
			goto out;
		cfg->max_body_bytes = (size_t)v;
	}
	if ((n = ydoc_map_get(d, root, "policy")) &&
	    router_policy_parse(&cfg->policy, ydoc_scalar(n)) != 0) {
		rc = ydoc_err(d, n, err, NOVA_EINVAL, "policy",
			      "policy: expected one of least-loaded, session, prefix, round-robin");
		goto out;
	}
	if ((n = ydoc_map_get(d, root, "log_level"))) {
		const char *s = ydoc_scalar(n);
		if (!s || nova_log_level_parse(&cfg->log_level, s) != 0) {
			rc = ydoc_err(d, n, err, NOVA_EINVAL, "log_level",
				      "log_level: expected one of debug, info, warn, error");
			goto out;
		}
	}
out:
	ydoc_destroy(d);
	return rc;
}

static int rc_copy(char *out, size_t len, const char *v, const char *what, struct nova_err *err)
{
	if (strlen(v) >= len)
		return nova_err_set(err, NOVA_EINVAL, what, "%s: at most %zu characters", what, len - 1);
	snprintf(out, len, "%s", v);
	return 0;
}

/* A whole decimal number in [min, max], from a flag or a variable. */
static int rc_number(unsigned *out, const char *v, long min, long max, const char *what,
		     struct nova_err *err)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < min || n > max)
		return nova_err_set(err, NOVA_EINVAL, what, "%s: expected %ld to %ld", what, min, max);
	*out = (unsigned)n;
	return 0;
}

int router_config_parse(struct router_config *cfg, int argc, char **argv, struct nova_err *err)
{
	const char *config = NULL;
	int rc;
	/* --config first, so flags win over the file wherever they stand. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
		if (!strcmp(argv[i], "--config")) {
			if (i + 1 >= argc)
				return nova_err_set(err, NOVA_EINVAL, "--config", "--config needs a value");
			config = argv[++i];
		}
	}
	if ((rc = cfg_file_pick(cfg->config_file, sizeof(cfg->config_file), &cfg->config_source,
				config, "NOVA_ROUTER_CONFIG", ROUTER_DEFAULT_CONFIG, err)))
		return rc;
	if (cfg->config_file[0] && (rc = router_config_load_file(cfg, cfg->config_file, err)))
		return rc;
	const struct {
		const char *var;
		char *out;
		size_t len;
	} envs[] = {
		{"NOVA_GATEWAY", cfg->gateway, sizeof(cfg->gateway)},
		{"NOVA_TOKEN", cfg->token, sizeof(cfg->token)},
		{"NOVA_ROUTER_LISTEN", cfg->listen, sizeof(cfg->listen)},
	};
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		const char *v = getenv(envs[i].var);
		if (v && *v && (rc = rc_copy(envs[i].out, envs[i].len, v, envs[i].var, err)))
			return rc;
	}
	const char *qt = getenv("NOVA_ROUTER_QUEUE_TIMEOUT_MS");
	if (qt && *qt && (rc = rc_number(&cfg->queue_timeout_ms, qt, 0, 3600000,
					 "NOVA_ROUTER_QUEUE_TIMEOUT_MS", err)))
		return rc;
	const char *lvl = getenv("NOVA_LOG_LEVEL");
	if (lvl && *lvl && nova_log_level_parse(&cfg->log_level, lvl) != 0)
		return nova_err_set(err, NOVA_EINVAL, "NOVA_LOG_LEVEL",
				    "NOVA_LOG_LEVEL: expected one of debug, info, warn, error");
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(f, "--config")) {
			i++;
			continue;
		}
		if (strncmp(f, "--", 2) != 0)
			return nova_err_set(err, NOVA_EINVAL, f, "unexpected argument %s", f);
		if (!v)
			return nova_err_set(err, NOVA_EINVAL, f, "%s needs a value", f);
		i++;
		if (!strcmp(f, "--gateway"))
			rc = rc_copy(cfg->gateway, sizeof(cfg->gateway), v, f, err);
		else if (!strcmp(f, "--token"))
			rc = rc_copy(cfg->token, sizeof(cfg->token), v, f, err);
		else if (!strcmp(f, "--listen"))
			rc = rc_copy(cfg->listen, sizeof(cfg->listen), v, f, err);
		else if (!strcmp(f, "--threads")) {
			char *end;
			long n = strtol(v, &end, 10);
			rc = *end || end == v || n < 0 || n > 64
				     ? nova_err_set(err, NOVA_EINVAL, f, "--threads: expected 0 to 64")
				     : 0;
			cfg->threads = (unsigned)n;
		} else if (!strcmp(f, "--queue-max"))
			rc = rc_number(&cfg->queue_max, v, 0, 1000000, f, err);
		else if (!strcmp(f, "--queue-timeout-ms"))
			rc = rc_number(&cfg->queue_timeout_ms, v, 0, 3600000, f, err);
		else if (!strcmp(f, "--policy"))
			rc = router_policy_parse(&cfg->policy, v)
				     ? nova_err_set(err, NOVA_EINVAL, f,
						    "--policy: expected least-loaded, session, prefix or round-robin")
				     : 0;
		else if (!strcmp(f, "--log-level"))
			rc = nova_log_level_parse(&cfg->log_level, v)
				     ? nova_err_set(err, NOVA_EINVAL, f,
						    "--log-level: expected debug, info, warn or error")
				     : 0;
		else
			rc = nova_err_set(err, NOVA_EINVAL, f, "unknown flag %s", f);
		if (rc)
			return rc;
	}
	return router_config_check(cfg, err);
}

int router_config_check(const struct router_config *cfg, struct nova_err *err)
{
	int rc;
	if (!cfg->gateway[0]) {
		nova_err_set(err, NOVA_EINVAL, "gateway", "novad's URL is required");
		nova_err_set_hint(err, "--gateway URL, NOVA_GATEWAY or the file's gateway");
		return NOVA_EINVAL;
	}
	if ((rc = http_url_check(cfg->gateway, "gateway", err)))
		return rc;
	if (!cfg->token[0]) {
		nova_err_set(err, NOVA_EINVAL, "token", "an API key with the router scope is required");
		nova_err_set_hint(err, "NOVA_TOKEN, the file's token_file, or --token");
		return NOVA_EINVAL;
	}
	if ((rc = http_listen_check(cfg->listen, err)))
		return rc;
	if (cfg->max_body_bytes < 1024)
		return nova_err_set(err, NOVA_EINVAL, "max_body_bytes", "max_body_bytes: at least 1024");
	return 0;
}
