/* novad's configuration: defaults, then a YAML file (etc/novad.yaml), then
 * environment overrides (NOVA_*). A bad file is refused with
 * file:line:column, the key and what was expected. */
#ifndef NOVA_CORE_CONFIG_H
#define NOVA_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/log.h"

#define CFG_DEFAULT_LISTEN "127.0.0.1:8420"
#define CFG_DEFAULT_SERVER "http://127.0.0.1:8420"
#define CFG_ADMIN_TOKEN_FILE "admin_token"
#define CFG_PROVIDER_FILES_MAX 16

/* The system configuration directory, set by the Makefile (SYSCONFDIR,
 * /etc by default, not under PREFIX: a service's configuration lives in
 * /etc whichever prefix its programs came from). */
#ifndef NOVA_SYSCONFDIR
#define NOVA_SYSCONFDIR "/etc"
#endif
/* novad reads this when started without -c and without NOVA_CONFIG. */
#define CFG_DEFAULT_FILE NOVA_SYSCONFDIR "/nova/novad.yaml"

struct cfg {
	char listen[256];            /* listen:            NOVA_LISTEN          */
	char database_url[2048];     /* database_url:      NOVA_DATABASE_URL    */
	/* database_listen_url (NOVA_DATABASE_LISTEN_URL): where the event
	 * plane's listener LISTENs (events/events.h) when database_url goes
	 * through a proxy that cuts idle sessions; "" (default): database_url.
	 * database_url itself must keep sessions (no transaction pooling: the
	 * singleton duties hold session advisory locks). */
	char database_listen_url[2048];
	char admin_token[256];       /* admin_token:       NOVA_ADMIN_TOKEN     */
	char state_dir[1024];        /* state_dir:         NOVA_STATE_DIR       */
	enum nova_log_level log_level; /* log_level:       NOVA_LOG_LEVEL       */
	unsigned http_threads;       /* http.threads:      NOVA_HTTP_THREADS    */
	size_t max_body_bytes;       /* http.max_body_bytes: NOVA_MAX_BODY_BYTES */
	/* Connection limits (core/http.h, "Connections under a flood"), file
	 * only: http.max_connections (2048), http.max_connections_per_ip (256;
	 * 0: none), http.reserved_connections (64: of max_connections, kept
	 * for clients that ask at once, idle ones closed to make room),
	 * http.header_timeout_ms (10000), http.body_timeout_ms (30000);
	 * watch streams, route and event watches together (gateway.h): http.max_watchers (1024) and
	 * http.max_watchers_per_key (256; the admin token counts as one key).
	 * Checked together: reserved_connections + max_watchers below
	 * max_connections, max_watchers_per_key at most max_watchers. */
	unsigned http_max_connections;
	unsigned http_max_connections_per_ip;
	unsigned http_reserved_connections;
	unsigned http_header_timeout_ms;
	unsigned http_body_timeout_ms;
	unsigned http_max_watchers;
	unsigned http_max_watchers_per_key;
	/* http.max_connections_per_key (512; 0: none): connections whose
	 * requests came with one credential (core/http.h owner) */
	unsigned http_max_connections_per_key;
	unsigned db_pool_size;       /* database_pool_size: NOVA_DB_POOL_SIZE   */
	/* database_statement_timeout_ms: NOVA_DB_STATEMENT_TIMEOUT_MS (2000):
	 * how long a statement, or opening a connection, may wait for the
	 * database before the request gets a 503 */
	unsigned db_statement_timeout_ms;
	/* database_acquire_timeout_ms: NOVA_DB_ACQUIRE_TIMEOUT_MS (1000): how
	 * long a request waits for a free pooled connection */
	unsigned db_acquire_timeout_ms;
	bool enable_fake_provider;   /* providers.fake:    NOVA_ENABLE_FAKE_PROVIDER */
	unsigned workers;            /* workers:           NOVA_WORKERS (0: none) */
	unsigned worker_lease_ms;    /* worker_lease_ms:   NOVA_WORKER_LEASE_MS */
	unsigned heartbeat_interval_ms; /* heartbeat_interval_ms: NOVA_HEARTBEAT_INTERVAL_MS */
	/* max_heartbeats_per_second: NOVA_MAX_HEARTBEATS_PER_SECOND (10000):
	 * the heartbeat budget of all novads together; sidecars are told
	 * max(heartbeat_interval_ms, nodes / budget) (inventory.h) */
	unsigned max_heartbeats_per_second;
	unsigned node_failed_after_ms;  /* node_failed_after_ms: NOVA_NODE_FAILED_AFTER_MS */
	unsigned idle_node_grace_s;     /* idle_node_grace_s: NOVA_IDLE_NODE_GRACE_S (60): an
					 * on-demand node with no replica this long is removed */
	/* node_brake_percent: NOVA_NODE_BRAKE_PERCENT (50) and
	 * node_brake_min_nodes: NOVA_NODE_BRAKE_MIN_NODES (3): when more than
	 * that share of a pool's heartbeating nodes, and at least that many,
	 * are silent at once, their states are held (inventory.h) */
	unsigned node_brake_percent;
	unsigned node_brake_min_nodes;
	/* provider_files: NOVA_PROVIDER_FILES (a colon-separated list): the
	 * directories whose files a pool config may name (core/files.h).
	 * Unset (provider_files_set false): the state directory and novad's
	 * etc directory, decided by novad once both are known. An empty list
	 * allows none: only inline content. */
	char provider_files[CFG_PROVIDER_FILES_MAX][1024];
	unsigned n_provider_files;
	bool provider_files_set;
	/* provider_files_timeout_ms: NOVA_PROVIDER_FILES_TIMEOUT_MS (2000): how
	 * long a provider file may take to be checked and read before the
	 * request is answered 503 naming its field (core/files.h) */
	unsigned provider_files_timeout_ms;
	/* lpu_agent: NOVA_LPU_AGENT: the program lpu agents run ("": the
	 * nova-sidecar beside novad) */
	char lpu_agent[1024];
	/* lpu_run_dir: NOVA_LPU_RUN_DIR: where this machine's lpu agents are
	 * recorded ("": /run/nova/lpu as root, adapters/lpu/lpu.h) */
	char lpu_run_dir[1024];
	/* advertise_url: NOVA_ADVERTISE_URL: the URL agents of every provider
	 * reach novad at (a load balancer in front of several novads, say);
	 * told to agents at start and in heartbeat answers, so a change
	 * reaches running ones. "": novad's own listen address. */
	char advertise_url[256];
	/* machine_id: NOVA_MACHINE_ID: this machine's identity for pools whose
	 * nodes are its processes (lpu); "": /etc/machine-id (core/ids.h) */
	char machine_id[65];
	/* audit_retention_days: NOVA_AUDIT_RETENTION_DAYS (90): audit events
	 * older than this are removed; 0 keeps them all */
	unsigned audit_retention_days;
	/* metrics_public: NOVA_METRICS_PUBLIC (false): GET /metrics without a
	 * credential; else it needs the read scope */
	bool metrics_public;
	/* metrics_refresh_ms: NOVA_METRICS_REFRESH_MS (5000): how often the
	 * fleet's families of /metrics are read from the database */
	unsigned metrics_refresh_ms;
};

void cfg_defaults(struct cfg *c);
/* Which configuration file a program reads (novad's -c, nova-router's
 * --config): the flag's file, else the one the environment variable
 * env_name names, else default_path when it exists, else none (out is
 * ""). *source_out, when not NULL, says which ("flag", the variable's
 * name, "default", "none"). The choice is made on existence alone: a
 * named file that is missing, or a default that exists but cannot be
 * read, fails in the load that follows, saying so; only an absent default
 * means "built-in defaults". /dev/null, named by the flag or the variable,
 * reads nothing (an empty file changes no setting). Rejected: merging
 * the default file under an explicit one (two files to read to know a
 * setting, and no way left to run without /etc's). 0, or NOVA_EINVAL for
 * a path longer than len. */
int cfg_file_pick(char *out, size_t len, const char **source_out, const char *flag,
		  const char *env_name, const char *default_path, struct nova_err *err);
/* Merge a YAML file over c. Unknown keys, wrong types and out-of-range
 * values are errors: err->field is the dotted key, err->message begins with
 * "path:line:column:". */
int cfg_load_file(struct cfg *c, const char *path, struct nova_err *err);
/* Merge NOVA_* environment variables over c. */
int cfg_apply_env(struct cfg *c, struct nova_err *err);

/* The default state directory: $NOVA_STATE_DIR, else $STATE_DIRECTORY
 * (its first entry: what systemd sets for a unit's StateDirectory=, so
 * novad.service's user gets /var/lib/nova with no setting of its own),
 * else /var/lib/nova for root, else $XDG_STATE_HOME/nova, else
 * ~/.local/state/nova. novactl uses the same rule to find a local novad's
 * generated admin token. */
void cfg_default_state_dir(char *buf, size_t len);

#endif
