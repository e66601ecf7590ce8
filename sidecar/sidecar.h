/* nova-sidecar: the node agent, one per node.
 *
 * It heartbeats to the gateway every interval (the gateway's answer sets
 * it), numbering heartbeats from the wall clock so a restarted sidecar keeps
 * counting up. It reports each replica it runs (state, endpoint, load read
 * from the model server's /metrics: sidecar/metrics.h) and the assignment
 * generation it holds;
 * when the answer brings other assignments it starts, stops or restarts
 * model server processes to match: the model's serve command (with {port},
 * {model} and {replica} filled in, its environment, and the accelerators it
 * may use in NOVA_ACCELERATORS), or nova-mock-engine in mock-agent mode.
 * Each server gets a port of its own outside the kernel's ephemeral range
 * (--engine-ports overrides the range); one that dies while another process
 * listens on its port is started again at once on another port, without
 * backoff (five times per assignment). A
 * server is reported ready only once its health endpoint answers 200; one
 * that dies is restarted with backoff and its restarts are reported. While
 * the gateway is away the servers keep running and heartbeats retry with
 * backoff. SIGTERM stops every server (SIGTERM, then SIGKILL after 5 s), and
 * servers die with the sidecar if it is killed (PR_SET_PDEATHSIG).
 *
 * Engines never see the node token: it is taken out of the environment
 * (NOVA_NODE_TOKEN, NOVA_NODE_TOKEN_FILE: unset, and the bytes the kernel
 * shows in /proc/PID/environ overwritten) and out of the command line
 * (--token's bytes overwritten) while the configuration is parsed, before
 * anything forks, and so are the credentials of novad and novactl an agent
 * may inherit (NOVA_ADMIN_TOKEN, NOVA_DATABASE_URL, NOVA_TOKEN, PGPASSWORD:
 * lpu agents are spawned from novad's environment); a --token-file is
 * removed once read; and nova-sidecar is
 * not dumpable (PR_SET_DUMPABLE 0), so its /proc/PID/environ and mem are
 * not readable by its children. Not covered: --config FILE, the operator's
 * own file, is left where it is (make it readable only by a user the
 * engines do not run as, or use --token-file). */
#ifndef NOVA_SIDECAR_SIDECAR_H
#define NOVA_SIDECAR_SIDECAR_H

#include <signal.h>
#include <stdbool.h>

#include "core/err.h"

struct sidecar_config {
	char gateway_url[512];    /* --gateway, NOVA_GATEWAY_URL */
	char node_id[64];         /* --node-id, NOVA_NODE_ID */
	char token[256];          /* --token, NOVA_NODE_TOKEN, --token-file,
				   * NOVA_NODE_TOKEN_FILE (never logged) */
	char mock_engine[512];    /* --mock-engine PATH: run every model on it */
	char advertise_host[128]; /* host in the endpoints reported, default 127.0.0.1 */
	unsigned interval_ms;     /* until the gateway says otherwise, default 2000 */
	unsigned engine_port_lo;  /* --engine-ports LO-HI; 0: below the kernel's */
	unsigned engine_port_hi;  /*   ephemeral range (sidecar/sidecar_int.h) */
	/* --log-file PATH (NOVA_SIDECAR_LOG_FILE): the sidecar's log goes to
	 * PATH (its engines' output has files of its own, below), capped at
	 * --log-max-bytes (NOVA_SIDECAR_LOG_MAX_BYTES, default 16 MiB) and
	 * rotated to PATH.1 ... PATH.<--log-keep> (NOVA_SIDECAR_LOG_KEEP,
	 * default 3): core/rotlog.h. "": stderr, as before. */
	char log_file[1024];
	unsigned long long log_max_bytes;
	unsigned log_keep;
	/* Each engine's stdout and stderr (sidecar/logs.h): files under
	 * --engine-log-dir DIR/NODE (NOVA_SIDECAR_ENGINE_LOG_DIR; default
	 * PATH.engines beside --log-file, else $TMPDIR/nova-sidecar-UID/NODE),
	 * the last --engine-log-max-bytes N of each
	 * (NOVA_SIDECAR_ENGINE_LOG_MAX_BYTES, default 8 MiB), served to novad
	 * on --logs-listen HOST:PORT (NOVA_SIDECAR_LOGS_LISTEN; default the
	 * advertised host and a port from the engine range, or one the kernel
	 * picks when the range holds 64 ports or fewer, which the engines
	 * need; "off": none, and novad cannot show this node's logs). */
	char engine_log_dir[1024];
	unsigned long long engine_log_max_bytes;
	char logs_listen[160];
	/* --metrics-listen HOST:PORT (NOVA_SIDECAR_METRICS_LISTEN): GET
	 * /metrics there, Prometheus text: heartbeats by result with their
	 * round trips, engines by model and state, their restarts and exits.
	 * "": off (the default). No credential: bind it to an address only the
	 * scraper reaches (127.0.0.1, a management network). */
	char metrics_listen[128];
};

void sidecar_config_defaults(struct sidecar_config *cfg);
/* Flags over the environment; --config FILE reads gateway_url, node_id and
 * token from a YAML file (it must not be readable by others); --token-file
 * FILE (NOVA_NODE_TOKEN_FILE) reads the token and removes the file. The
 * token's environment variables are unset and its bytes in the environment
 * and argv overwritten (see above). Returns 0, 1 for --help, or NOVA_EINVAL
 * naming the flag. */
int sidecar_config_parse(struct sidecar_config *cfg, int argc, char **argv, struct nova_err *err);
extern const char sidecar_usage[];

/* Run until *stop becomes non-zero (a signal handler sets it), then stop
 * the servers. */
int sidecar_run(const struct sidecar_config *cfg, volatile sig_atomic_t *stop,
		struct nova_err *err);

#endif
