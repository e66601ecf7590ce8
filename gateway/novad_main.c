/* novad: the Nova daemon. Gateway, engine and workers in one process. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "auth/auth.h"
#include "autoscaler/autoscaler.h"
#include "core/config.h"
#include "core/db.h"
#include "core/files.h"
#include "core/http.h"
#include "core/http_client.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/pg_embedded.h"
#include "deployments/reconciler.h"
#include "deployments/worker.h"
#include "events/events.h"
#include "gateway/conductor.h"
#include "gateway/gateway.h"
#include "gateway/runtime.h"
#include "inventory/inventory.h"
#include "inventory/routes.h"

static void novad_usage(FILE *f)
{
	fprintf(f,
		"usage: novad [-c CONFIG.yaml] [--listen HOST:PORT] [--state-dir DIR]\n"
		"\n"
		"  -c, --config FILE    configuration file (see etc/novad.yaml); without it,\n"
		"                       $NOVA_CONFIG, else " CFG_DEFAULT_FILE " when it exists,\n"
		"                       else built-in defaults (-c /dev/null: none)\n"
		"  -d FILE -m FILE --allocation ALLOC [--instance-model-name NAME] [--mock-agents]\n"
		"                       the Nova conductor: an lpu pool on those racks of the\n"
		"                       datacenter, the model of that config deployed on it\n"
		"      --listen ADDR    gateway address, overrides config and NOVA_LISTEN\n"
		"      --state-dir DIR  state directory, overrides config and NOVA_STATE_DIR\n"
		"      --version        print the version and exit\n"
		"  -h, --help           this help\n"
		"\n"
		"Without a database URL (database_url, NOVA_DATABASE_URL) novad runs a private\n"
		"PostgreSQL under STATE_DIR/postgres. Without an admin token it generates one\n"
		"into STATE_DIR/admin_token.\n"
		"Precedence: built-in defaults, the file, NOVA_* environment variables, flags.\n");
}

struct novad_args {
	const char *config;
	const char *listen;
	const char *state_dir;
	struct gw_conductor_args conductor;
};

/* 0 to go on, 1 to exit 0 (help/version), -1 usage error. */
static int novad_parse_args(struct novad_args *a, int argc, char **argv)
{
	enum { OPT_LISTEN = 1000, OPT_STATE_DIR, OPT_VERSION, OPT_ALLOC, OPT_NAME, OPT_MOCK };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"datacenter", required_argument, NULL, 'd'},
		{"model-config", required_argument, NULL, 'm'},
		{"allocation", required_argument, NULL, OPT_ALLOC},
		{"instance-model-name", required_argument, NULL, OPT_NAME},
		{"mock-agents", no_argument, NULL, OPT_MOCK},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"version", no_argument, NULL, OPT_VERSION},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	memset(a, 0, sizeof(*a));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:d:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'd': a->conductor.datacenter = optarg; break;
		case 'm': a->conductor.model_config = optarg; break;
		case OPT_ALLOC: a->conductor.allocation = optarg; break;
		case OPT_NAME: a->conductor.instance_model_name = optarg; break;
		case OPT_MOCK: a->conductor.mock_agents = true; break;
		case OPT_LISTEN: a->listen = optarg; break;
		case OPT_STATE_DIR: a->state_dir = optarg; break;
		case OPT_VERSION: printf("novad %s\n", NOVA_VERSION); return 1;
		case 'h': novad_usage(stdout); return 1;
		case ':':
			fprintf(stderr, "novad: option %s needs a value\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "novad: unknown option %s\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "novad: unexpected argument %s\n", argv[optind]);
		return -1;
	}
	const struct gw_conductor_args *cd = &a->conductor;
	bool any = cd->datacenter || cd->model_config || cd->allocation || cd->instance_model_name ||
		   cd->mock_agents;
	if (any && !(cd->datacenter && cd->model_config && cd->allocation)) {
		fprintf(stderr, "novad: the conductor flags go together: -d DATACENTER -m MODEL "
				"--allocation ALLOC [--instance-model-name NAME] [--mock-agents]\n");
		return -1;
	}
	return 0;
}

/* The file read is told once the log level is known (file_out, source_out:
 * cfg_file_pick's). */
static int novad_config(struct cfg *cfg, char *file_out, size_t file_len, const char **source_out,
			const struct novad_args *a, struct nova_err *err)
{
	int rc;
	cfg_defaults(cfg);
	if ((rc = cfg_file_pick(file_out, file_len, source_out, a->config, "NOVA_CONFIG",
				CFG_DEFAULT_FILE, err)))
		return rc;
	if (*file_out && (rc = cfg_load_file(cfg, file_out, err)))
		return rc;
	if ((rc = cfg_apply_env(cfg, err)))
		return rc;
	if (a->listen)
		snprintf(cfg->listen, sizeof(cfg->listen), "%s", a->listen);
	if (a->state_dir)
		snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s", a->state_dir);
	return 0;
}

/* Publish the gateway URL for novactl and scripts: write then rename, so a
 * reader never sees half a line. */
static int novad_write_url(char *url_out, size_t url_len, const char *state_dir,
			   const char *listen, unsigned port, struct nova_err *err)
{
	char host[256], path[1100], tmp[1110];
	const char *colon = strrchr(listen, ':');
	size_t hlen = colon ? (size_t)(colon - listen) : 0;
	FILE *f;
	snprintf(host, sizeof(host), "%.*s", (int)hlen, listen);
	if (!*host || !strcmp(host, "0.0.0.0"))
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (!strcmp(host, "[::]"))
		snprintf(host, sizeof(host), "[::1]");
	snprintf(path, sizeof(path), "%s/novad.url", state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot write %s: %s", tmp,
				    strerror(errno));
	if (snprintf(url_out, url_len, "http://%s:%u", host, port) >= (int)url_len) {
		fclose(f);
		unlink(tmp);
		return nova_err_set(err, NOVA_EINVAL, "listen", "listen host is too long");
	}
	fprintf(f, "%s\n", url_out);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot write %s: %s", path,
				    strerror(errno));
	return 0;
}

/* What novad lets pools use on this machine (core/files.h) and what it
 * hands the providers (adapter.h struct adapter_context): set once, here,
 * before any thread starts. Unset provider_files means the state directory
 * and novad's own etc directory (the example topology lives there). The
 * providers are registered here too, so a wrong lpu_agent or lpu_run_dir
 * stops novad before its database starts. */
static int novad_provider_settings(const struct cfg *cfg, struct nova_err *err)
{
	const char *dirs[CFG_PROVIDER_FILES_MAX];
	char etc[1024];
	size_t n = 0;
	int rc;
	if (cfg->provider_files_set) {
		for (unsigned i = 0; i < cfg->n_provider_files; i++)
			dirs[n++] = cfg->provider_files[i];
	} else {
		dirs[n++] = cfg->state_dir;
		if (files_default_etc_dir(etc, sizeof(etc)))
			dirs[n++] = etc;
	}
	if (!ids_machine_id_set(cfg->machine_id))
		return nova_err_set(err, NOVA_EINVAL, "machine_id",
				    "machine_id must be 1 to 64 of letters, digits, '.', '_' and '-'");
	files_state_dir_set(cfg->state_dir);
	files_timeout_set(cfg->provider_files_timeout_ms);
	if ((rc = files_allowed_set(dirs, n, FILES_ALLOWED_KEY, err)))
		return rc;
	/* The context is large (a few paths): static, filled once, copied by
	 * adapters_start. The environment is read here, at the top, never by
	 * a provider. */
	static struct adapter_context actx;
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	snprintf(actx.state_dir, sizeof(actx.state_dir), "%s", cfg->state_dir);
	snprintf(actx.runtime_dir, sizeof(actx.runtime_dir), "%s", xdg ? xdg : "");
	snprintf(actx.lpu_run_dir, sizeof(actx.lpu_run_dir), "%s", cfg->lpu_run_dir);
	snprintf(actx.lpu_agent, sizeof(actx.lpu_agent), "%s", cfg->lpu_agent);
	if ((rc = adapters_register_builtin(cfg->enable_fake_provider, err)) ||
	    (rc = adapters_start(&actx, err)))
		return rc;
	for (size_t i = 0; i < files_allowed_count(); i++)
		nova_log_kv(NOVA_LOG_INFO, "novad", "pool configs may name files under", "dir",
			    files_allowed_dir(i), NULL);
	nova_log_kv(NOVA_LOG_INFO, "novad", "lpu agents run", "program", adapters_context()->lpu_agent,
		    NULL);
	nova_log_kv(NOVA_LOG_INFO, "novad", "lpu agents are recorded in", "dir",
		    adapters_context()->lpu_run_dir, NULL);
	char machine[IDS_MACHINE_LEN];
	ids_machine_id(machine);
	nova_log_kv(NOVA_LOG_INFO, "novad", "this machine is", "machine_id", machine, NULL);
	return 0;
}

/* Open files for max_connections: the soft limit raised to the hard one
 * (a default soft limit of 1024 would make the connection cap a lie: MHD's
 * accept fails with EMFILE first), and the cap lowered, said once in the
 * log, when even the hard limit is short. NOVAD_FD_SPARE covers the
 * database pool, agents' files, the log and libraries. Rejected: refusing
 * to start, which would take a whole novad down over a tuning knob. */
#define NOVAD_FD_SPARE 256

static void novad_fd_limit(struct cfg *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	rlim_t need = (rlim_t)cfg->http_max_connections + NOVAD_FD_SPARE + cfg->db_pool_size;
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return;
	unsigned fit = rl.rlim_cur > NOVAD_FD_SPARE + cfg->db_pool_size + 16
			       ? (unsigned)(rl.rlim_cur - NOVAD_FD_SPARE - cfg->db_pool_size)
			       : 16;
	char have[24], was[24], now[24];
	snprintf(have, sizeof(have), "%llu", (unsigned long long)rl.rlim_cur);
	snprintf(was, sizeof(was), "%u", cfg->http_max_connections);
	snprintf(now, sizeof(now), "%u", fit);
	nova_log_kv(NOVA_LOG_WARN, "novad",
		    "open file limit too low for http.max_connections; lowered", "nofile", have,
		    "max_connections", was, "now", now, NULL);
	cfg->http_max_connections = fit;
	/* Keep the watchers and the reserve within it, as the config check does. */
	if (cfg->http_reserved_connections >= fit / 4)
		cfg->http_reserved_connections = fit / 4;
	if (cfg->http_max_watchers + cfg->http_reserved_connections >= fit)
		cfg->http_max_watchers = fit / 2;
	if (cfg->http_max_watchers_per_key > cfg->http_max_watchers)
		cfg->http_max_watchers_per_key = cfg->http_max_watchers;
}

static bool novad_is_leader(void *ctx)
{
	return reconciler_is_leader(ctx);
}

/* The routing table changed (or a keep-alive is due): wake the watchers. */
static void novad_routes_changed(void *srv)
{
	http_server_streams_wake(srv);
}

static void novad_health_changed(void *routes)
{
	inventory_routes_refresh_soon(routes);
}

static void novad_fail(const char *what, const struct nova_err *err)
{
	nova_log_kv(NOVA_LOG_ERROR, "novad", what, "error", err->message, "field",
		    err->field[0] ? err->field : NULL, "hint", err->hint[0] ? err->hint : NULL, NULL);
}

/* Everything a running novad holds, so that start-up is phases and the
 * stop is one function. */
struct novad {
	struct cfg cfg;
	struct novad_runtime rt;
	bool rt_ready, http_client_ready;
	char admin_token[256];
	struct pg_embedded *pg;
	struct db_pool *db;
	struct auth *auth;
	struct inventory *inventory;
	struct inventory_routes *routes;
	struct gw *gw;
	struct http_server *srv;
	struct worker *worker;
	struct reconciler *reconciler;
	struct autoscaler *autoscaler;
	struct events_listener *events;
	char gateway_url[256]; /* where agents reach novad */
};

/* The event stream's head moved (a change committed by any novad, this
 * one included): the routing table is read again, the workers look for
 * work, and the event watchers for events, at once rather than at their
 * next period. */
static void novad_events_changed(void *ctx, long long head)
{
	struct novad *n = ctx;
	(void)head;
	inventory_routes_refresh_soon(n->routes);
	notify_signal(&n->rt.work);
	http_server_streams_wake(n->srv);
}

/* Why start-up stopped: status 2 for a configuration refused (the
 * message goes to stderr as well), 1 for anything else. */
static int novad_refuse(const char *what, const struct nova_err *err, bool config)
{
	novad_fail(what, err);
	if (config)
		fprintf(stderr, "novad: %s\n", err->message);
	return config ? 2 : 1;
}

/* Before the database is touched: the admin token, then every other check
 * of the configuration, so a refused start-up leaves no cluster
 * initialised and no migration applied. Rejected: letting auth_create and
 * http_server_create find these after initdb and every migration. */
static int novad_prepare(struct novad *n, struct nova_err *err)
{
	bool generated = false;
	if (n->cfg.admin_token[0]) {
		snprintf(n->admin_token, sizeof(n->admin_token), "%s", n->cfg.admin_token);
		if (files_mkdir_p(n->cfg.state_dir, 0700, "state_dir", err))
			return novad_refuse("state directory unusable", err, false);
	} else {
		if (auth_admin_token_load_or_create(n->admin_token, sizeof(n->admin_token), &generated,
						    n->cfg.state_dir, err))
			return novad_refuse("admin token unavailable", err, false);
		nova_log_kv(NOVA_LOG_INFO, "novad",
			    generated ? "generated an admin token" : "using the admin token file",
			    "path", n->cfg.state_dir, "file", CFG_ADMIN_TOKEN_FILE, NULL);
	}
	if (auth_admin_token_check(n->admin_token, err) || http_listen_check(n->cfg.listen, err))
		return novad_refuse("configuration refused", err, true);
	if (novad_provider_settings(&n->cfg, err))
		return novad_refuse("provider settings refused", err, true);
	return 0;
}

/* The database (novad's own cluster when no URL is given), migrated, and
 * auth over it. */
static int novad_database(struct novad *n, struct nova_err *err)
{
	const char *conninfo = n->cfg.database_url;
	if (!conninfo[0]) {
		char dir[1100];
		snprintf(dir, sizeof(dir), "%s/postgres", n->cfg.state_dir);
		if (pg_embedded_start(&n->pg, dir, err))
			return novad_refuse("embedded database failed to start", err, false);
		conninfo = pg_embedded_conninfo(n->pg);
		nova_log_kv(NOVA_LOG_INFO, "novad", "embedded database running", "dir", dir, NULL);
	}
	struct db_pool_config dbcfg = {.size = n->cfg.db_pool_size,
				       .acquire_timeout_ms = n->cfg.db_acquire_timeout_ms,
				       .statement_timeout_ms = n->cfg.db_statement_timeout_ms};
	if (db_pool_create(&n->db, conninfo, &dbcfg, err) ||
	    db_migrate(n->db, db_migrations_builtin, db_migrations_builtin_count, err))
		return novad_refuse("database unusable", err, false);
	if (auth_create(&n->auth, n->db, n->admin_token, err))
		return novad_refuse("start-up failed", err, false);
	explicit_bzero(n->admin_token, sizeof(n->admin_token));
	return 0;
}

/* The inventory and the routing table (read once before the listener
 * opens), then the gateway listening; the URL published. */
static int novad_serve(struct novad *n, struct nova_err *err)
{
	const struct cfg *cfg = &n->cfg;
	struct inventory_config icfg;
	inventory_config_defaults(&icfg);
	icfg.interval_ms = cfg->heartbeat_interval_ms;
	icfg.max_heartbeats_per_second = cfg->max_heartbeats_per_second;
	icfg.failed_after_ms = cfg->node_failed_after_ms;
	icfg.brake_share = cfg->node_brake_percent / 100.0;
	icfg.brake_min_nodes = cfg->node_brake_min_nodes;
	snprintf(icfg.advertise_url, sizeof(icfg.advertise_url), "%s", cfg->advertise_url);
	icfg.wake = &n->rt.inventory;
	if (inventory_create(&n->inventory, n->db, &icfg, err))
		return novad_refuse("inventory failed to start", err, false);
	if (inventory_routes_create(&n->routes, n->db, n->inventory, &n->rt.routes, err))
		return novad_refuse("routing table failed to start", err, false);
	/* The table is read before the listener opens, so a novad that starts
	 * (or restarts, under routers polling it) with the database up never
	 * answers "not read yet"; with the database away it starts anyway and
	 * answers 503 until the routes thread has read it. */
	struct nova_err rerr;
	if (inventory_routes_refresh(NULL, n->routes, &rerr))
		nova_log_kv(NOVA_LOG_WARN, "novad", "reading the routing table failed; "
			    "routes answer 503 until it is read", "error", rerr.message, NULL);
	struct gw_deps deps = {.db = n->db, .auth = n->auth, .inventory = n->inventory,
			       .routes = n->routes, .work = &n->rt.work,
			       .autoscale = &n->rt.autoscale,
			       .migrations = db_migrations_builtin,
			       .n_migrations = db_migrations_builtin_count,
			       .max_watchers = cfg->http_max_watchers,
			       .max_watchers_per_key = cfg->http_max_watchers_per_key,
			       .max_connections_per_key = cfg->http_max_connections_per_key,
			       .metrics_public = cfg->metrics_public};
	struct http_server_config hcfg = {
		.listen = cfg->listen, .threads = cfg->http_threads, .max_body = cfg->max_body_bytes,
		.max_connections = cfg->http_max_connections,
		.max_connections_per_ip = cfg->http_max_connections_per_ip,
		.reserved_connections = cfg->http_reserved_connections,
		.header_timeout_ms = cfg->http_header_timeout_ms,
		.body_timeout_ms = cfg->http_body_timeout_ms,
	};
	if (gw_create(&n->gw, &deps, err) || http_server_create(&n->srv, &hcfg, err) ||
	    gw_routes_register(n->gw, n->srv, err) || http_server_start(n->srv, err))
		return novad_refuse("gateway failed to start", err, false);
	if (novad_write_url(n->gateway_url, sizeof(n->gateway_url), cfg->state_dir, cfg->listen,
			    http_server_port(n->srv), err))
		return novad_refuse("cannot publish the gateway url", err, false);
	/* Agents reach novad where it is advertised (a load balancer before
	 * several novads), else at its own address. */
	if (cfg->advertise_url[0])
		snprintf(n->gateway_url, sizeof(n->gateway_url), "%s", cfg->advertise_url);
	return 0;
}

/* worker_config.replica_idle: whether a draining replica's engine runs
 * and queues nothing, as the newest report of its node this novad knows
 * says, taken here or by another novad (shared load, inventory.h; -1:
 * none, or no such load reported). */
static int novad_replica_idle(void *ctx, const char *replica_id, const char *node_id)
{
	struct novad *n = ctx;
	json_t *q = json_pack("{s:s}", replica_id, node_id);
	json_t *loads = q ? inventory_loads_of(n->inventory, q) : NULL;
	json_t *load = json_object_get(loads, replica_id);
	json_t *running = json_object_get(load, "running"), *queue = json_object_get(load, "queue_depth");
	int idle = -1;
	if (json_is_number(running))
		idle = json_number_value(running) <= 0 &&
		       (!json_is_number(queue) || json_number_value(queue) <= 0);
	json_decref(loads);
	json_decref(q);
	return idle;
}

/* The background threads: workers, the reconciler (every novad competes
 * for its lock; one holds it), fleet metrics, the inventory's flusher and
 * sweeper and the routes thread. */
static int novad_background(struct novad *n, struct nova_err *err)
{
	const struct cfg *cfg = &n->cfg;
	if (cfg->workers > 0) {
		struct worker_config wcfg;
		worker_config_defaults(&wcfg);
		wcfg.threads = cfg->workers;
		wcfg.lease_ms = cfg->worker_lease_ms;
		snprintf(wcfg.gateway_url, sizeof(wcfg.gateway_url), "%s", n->gateway_url);
		wcfg.wake = &n->rt.work;
		wcfg.placed = &n->rt.inventory;
		wcfg.warm_taken = &n->rt.reconciler;
		wcfg.unrouted = &n->rt.routes;
		/* A drain ends once a heartbeat taken after the routers learned
		 * says the engine is idle: one interval and a second, and two
		 * flush periods for a heartbeat another novad took to be read
		 * here (shared load). */
		struct inventory_config icfg;
		inventory_config_defaults(&icfg); /* novad_serve's flush_ms */
		wcfg.drain_min_ms = cfg->heartbeat_interval_ms + 1000 + 2 * icfg.flush_ms;
		wcfg.replica_idle = novad_replica_idle;
		wcfg.replica_idle_ctx = n;
		if (worker_start(&n->worker, n->db, &wcfg, err))
			return novad_refuse("deployment worker failed to start", err, false);
	}
	struct reconciler_config rcfg;
	reconciler_config_defaults(&rcfg);
	rcfg.idle_node_grace_s = cfg->idle_node_grace_s;
	rcfg.failed_wait_ms = 3 * cfg->heartbeat_interval_ms;
	rcfg.audit_retention_days = cfg->audit_retention_days;
	snprintf(rcfg.gateway_url, sizeof(rcfg.gateway_url), "%s", n->gateway_url);
	rcfg.wake = &n->rt.reconciler;
	if (reconciler_start(&n->reconciler, n->db, &rcfg, err))
		return novad_refuse("reconciler failed to start", err, false);
	if (gw_fleet_metrics_start(n->gw, novad_is_leader, n->reconciler, cfg->metrics_refresh_ms,
				   err))
		return novad_refuse("metrics failed to start", err, false);
	/* Heartbeats are flushed by every novad; health is swept by the one
	 * that holds the reconciler's lock. */
	inventory_on_health_change(n->inventory, novad_health_changed, n->routes);
	if (inventory_start(n->inventory, novad_is_leader, n->reconciler, err) ||
	    inventory_routes_start(n->routes, 250, 15000, novad_routes_changed, n->srv, err))
		return novad_refuse("inventory failed to start", err, false);
	/* The autoscaler ticks in the novad that holds the singleton duties. */
	struct autoscaler_config acfg;
	autoscaler_config_defaults(&acfg);
	acfg.work = &n->rt.work;
	acfg.routes = &n->rt.routes;
	acfg.wake = &n->rt.autoscale;
	acfg.is_leader = novad_is_leader;
	acfg.leader_ctx = n->reconciler;
	if (autoscaler_create(&n->autoscaler, n->db, n->inventory, &acfg, err) ||
	    autoscaler_start(n->autoscaler, err))
		return novad_refuse("autoscaler failed to start", err, false);
	gw_autoscaler_set(n->gw, n->autoscaler);
	/* Last: its wake-ups reach every thread above. */
	struct events_listener_config ecfg = {.listen_url = cfg->database_listen_url,
					      .on_change = novad_events_changed, .ctx = n};
	if (events_listener_start(&n->events, n->db, &ecfg, err))
		return novad_refuse("event listener failed to start", err, false);
	gw_events_set(n->gw, n->events);
	return 0;
}

/* Stop and free whatever start-up got to, in reverse. */
static void novad_shutdown(struct novad *n)
{
	char url_path[1100];
	snprintf(url_path, sizeof(url_path), "%s/novad.url", n->cfg.state_dir);
	if (n->srv)
		unlink(url_path);
	/* The event watch reads the listener's status: it stops reading it
	 * first, and the listener stops after the server (no request left to
	 * read it; its wake-ups of what is stopped already are signals nobody
	 * waits for, and nothing it wakes is destroyed yet). */
	if (n->gw)
		gw_events_set(n->gw, NULL);
	inventory_routes_stop(n->routes);
	http_server_stop(n->srv);
	events_listener_stop(n->events);
	if (n->gw)
		gw_fleet_metrics_stop(n->gw);
	autoscaler_destroy(n->autoscaler);
	inventory_stop(n->inventory);
	reconciler_stop(n->reconciler);
	worker_stop(n->worker);
	adapters_shutdown(); /* no adapter is in use any more */
	http_server_destroy(n->srv);
	gw_destroy(n->gw);
	inventory_routes_destroy(n->routes);
	inventory_destroy(n->inventory);
	auth_destroy(n->auth);
	db_pool_destroy(n->db);
	pg_embedded_stop(n->pg);
	if (n->http_client_ready)
		http_client_global_cleanup();
	explicit_bzero(n->admin_token, sizeof(n->admin_token));
	if (n->rt_ready)
		novad_runtime_finish(&n->rt); /* every thread is joined */
}

int main(int argc, char **argv)
{
	static struct novad n; /* zeroed; large buffers off the stack */
	struct novad_args args;
	struct nova_err err;
	char config_file[1024];
	const char *config_source;
	sigset_t sigs;
	int sig = 0, rc, status = 1;

	if ((rc = novad_parse_args(&args, argc, argv)))
		return rc > 0 ? 0 : 2;
	nova_err_clear(&err);
	if (novad_config(&n.cfg, config_file, sizeof(config_file), &config_source, &args, &err)) {
		fprintf(stderr, "novad: %s\n", err.message);
		return 2;
	}
	nova_log_set_level(n.cfg.log_level);
	if (config_file[0])
		nova_log_kv(NOVA_LOG_INFO, "novad", "configuration read", "file", config_file, "from",
			    config_source, NULL);
	else
		nova_log_kv(NOVA_LOG_INFO, "novad", "no configuration file: built-in defaults",
			    "default", CFG_DEFAULT_FILE, NULL);
	novad_fd_limit(&n.cfg);

	/* Signals are taken synchronously by this thread; every thread started
	 * below inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The threads' notifiers, before any thread: each module is handed
	 * the ones it waits on or signals. */
	if (novad_runtime_init(&n.rt, &err)) {
		novad_fail("start-up failed", &err);
		return 1;
	}
	n.rt_ready = true;
	if (http_client_global_init(&err)) {
		novad_fail("http client init failed", &err);
		goto out;
	}
	n.http_client_ready = true;
	if ((status = novad_prepare(&n, &err)) || (status = novad_database(&n, &err)) ||
	    (status = novad_serve(&n, &err)) || (status = novad_background(&n, &err)))
		goto out;
	if (args.conductor.datacenter && gw_conductor_apply(n.db, &n.rt.work, &args.conductor, &err)) {
		novad_fail("conductor flags refused", &err);
		fprintf(stderr, "novad: %s%s%s%s\n", err.message, err.field[0] ? " (field: " : "",
			err.field, err.field[0] ? ")" : "");
		status = 2;
		goto out;
	}
	char port[16];
	snprintf(port, sizeof(port), "%u", http_server_port(n.srv));
	nova_log_kv(NOVA_LOG_INFO, "novad", "novad ready", "listen", n.cfg.listen, "port", port,
		    "version", NOVA_VERSION, NULL);

	while (sigwait(&sigs, &sig) != 0)
		;
	nova_log(NOVA_LOG_INFO, "novad", "received %s, shutting down", strsignal(sig));
	status = 0;
out:
	novad_shutdown(&n);
	return status;
}
