#include "sidecar/sidecar.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/http.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rotlog.h"
#include "core/textbuf.h"
#include "core/ydoc.h"
#include "sidecar/logs.h"
#include "sidecar/metrics.h"
#include "sidecar/sidecar_int.h"

const char sidecar_usage[] =
	"usage: nova-sidecar --gateway URL --node-id ID (--token TOKEN | --token-file FILE)\n"
	"                    [--mock-engine PATH] [--advertise-host HOST] [--config FILE]\n"
	"                    [--engine-ports LO-HI]\n"
	"                    [--log-file PATH [--log-max-bytes N] [--log-keep N]]\n"
	"                    [--metrics-listen HOST:PORT]\n"
	"                    [--engine-log-dir DIR] [--engine-log-max-bytes N]\n"
	"                    [--logs-listen HOST:PORT|off]\n"
	"  (or NOVA_GATEWAY_URL, NOVA_NODE_ID, NOVA_NODE_TOKEN, NOVA_NODE_TOKEN_FILE)\n"
	"  The token never reaches an engine: it is taken out of the environment and\n"
	"  the command line, and a --token-file is removed once read.\n";

#define SC_MAX_CHILDREN 64
#define SC_STOP_GRACE_MS 5000
#define SC_MAX_BACKOFF_MS 30000
#define SC_NO_PORT_RETRY_MS 2000
/* Quick starts on another port after a port collision, per assignment,
 * before the usual backoff applies again: a bound on a misreading. */
#define SC_MAX_PORT_RETRIES 5
/* An engine's arguments: a serve command's 64 + 64, or the mock engine's
 * flags with two per LoRA adapter (a model lists 256 at most) and two per
 * member of the model's engine.mock (14 at most). */
#define SC_ARGV_MAX 600
/* The loaded LoRA adapters' names one heartbeat carries at most, over all
 * its replicas (each replica's list is at most 64 x 512 bytes). */
#define SC_ADAPTERS_BEAT_BYTES (256u << 10)

void sidecar_config_defaults(struct sidecar_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->advertise_host, sizeof(cfg->advertise_host), "127.0.0.1");
	cfg->interval_ms = 2000;
	cfg->log_max_bytes = ROTLOG_DEFAULT_MAX_BYTES;
	cfg->log_keep = ROTLOG_DEFAULT_KEEP;
	cfg->engine_log_max_bytes = SIDECAR_LOGS_DEFAULT_MAX_BYTES;
}

static void sc_env(char *dst, size_t len, const char *name)
{
	const char *v = getenv(name);
	if (v && *v)
		snprintf(dst, len, "%s", v);
}

/* Overwrite a secret where it lies (an environment string, an argument):
 * the engines inherit the environment, and the process's own
 * /proc/PID/environ and cmdline show the memory the kernel set up at exec,
 * which unsetenv leaves as it was. */
static void sc_scrub(char *s)
{
	for (volatile char *p = s; p && *p; p++)
		*p = 'x';
}

/* A credential from the environment (into dst, unless NULL), then out of
 * it (and out of the memory /proc/self/environ shows). */
static void sc_env_take(char *dst, size_t len, const char *name)
{
	char *v = getenv(name);
	if (v && *v && dst)
		snprintf(dst, len, "%s", v);
	if (v)
		sc_scrub(v);
	unsetenv(name);
}

static int sc_ull(unsigned long long *out, const char *name, const char *s, unsigned long long min,
		  struct nova_err *err)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || !*s || *end || *s == '-' || v < min || v > (1ull << 40))
		return nova_err_set(err, NOVA_EINVAL, name, "%s must be a number of bytes from %llu to %llu",
				    name, min, 1ull << 40);
	*out = v;
	return 0;
}

static int sc_keep(unsigned *out, const char *name, const char *s, struct nova_err *err)
{
	unsigned long long v;
	if (sc_ull(&v, name, s, 1, err) || v > ROTLOG_MAX_KEEP)
		return nova_err_set(err, NOVA_EINVAL, name, "%s must be a number from 1 to %d", name,
				    ROTLOG_MAX_KEEP);
	*out = (unsigned)v;
	return 0;
}

/* --token-file: the token, read once and the file removed, so no engine
 * (which runs as the same user) can read it afterwards. */
static int sc_token_file(struct sidecar_config *cfg, const char *path, struct nova_err *err)
{
	char buf[sizeof(cfg->token) + 2];
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return nova_err_set(err, NOVA_EINVAL, "--token-file", "cannot read the token file %s: %s",
				    path, strerror(errno));
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0 || n >= sizeof(cfg->token)) {
		explicit_bzero(buf, sizeof(buf));
		return nova_err_set(err, NOVA_EINVAL, "--token-file",
				    "the token file %s must hold one token of 1 to %zu bytes", path,
				    sizeof(cfg->token) - 1);
	}
	memcpy(cfg->token, buf, n + 1);
	explicit_bzero(buf, sizeof(buf));
	if (unlink(path) != 0 && errno != ENOENT)
		nova_log_kv(NOVA_LOG_WARN, "sidecar", "cannot remove the token file", "path", path,
			    "error", strerror(errno), NULL);
	return 0;
}

static int sc_config_file(struct sidecar_config *cfg, const char *path, struct nova_err *err)
{
	static const char *const keys[] = {"gateway_url", "node_id", "token", NULL};
	struct stat st;
	struct ydoc *d;
	const char *s;
	yaml_node_t *n;
	int rc;
	if (stat(path, &st) == 0 && (st.st_mode & 0077))
		return nova_err_set(err, NOVA_EINVAL, "--config",
				    "%s holds a token and must not be readable by others (chmod 600)", path);
	if ((rc = ydoc_load_file(&d, path, err)))
		return rc;
	if ((rc = ydoc_map_check_keys(d, ydoc_root(d), "", keys, err)) == 0) {
		if ((n = ydoc_map_get(d, ydoc_root(d), "gateway_url")) &&
		    (rc = ydoc_get_string(&s, d, n, "gateway_url", err)) == 0)
			snprintf(cfg->gateway_url, sizeof(cfg->gateway_url), "%s", s);
		if (!rc && (n = ydoc_map_get(d, ydoc_root(d), "node_id")) &&
		    (rc = ydoc_get_string(&s, d, n, "node_id", err)) == 0)
			snprintf(cfg->node_id, sizeof(cfg->node_id), "%s", s);
		if (!rc && (n = ydoc_map_get(d, ydoc_root(d), "token")) &&
		    (rc = ydoc_get_string(&s, d, n, "token", err)) == 0)
			snprintf(cfg->token, sizeof(cfg->token), "%s", s);
	}
	ydoc_destroy(d);
	return rc;
}

int sidecar_config_parse(struct sidecar_config *cfg, int argc, char **argv, struct nova_err *err)
{
	enum { O_GW = 1000, O_NODE, O_TOKEN, O_TOKEN_FILE, O_MOCK, O_HOST, O_CONFIG, O_PORTS,
	       O_LOG, O_LOG_MAX, O_LOG_KEEP, O_METRICS, O_ENGLOG_DIR, O_ENGLOG_MAX, O_LOGS_LISTEN };
	static const struct option opts[] = {
		{"gateway", required_argument, NULL, O_GW},
		{"node-id", required_argument, NULL, O_NODE},
		{"token", required_argument, NULL, O_TOKEN},
		{"token-file", required_argument, NULL, O_TOKEN_FILE},
		{"mock-engine", required_argument, NULL, O_MOCK},
		{"advertise-host", required_argument, NULL, O_HOST},
		{"config", required_argument, NULL, O_CONFIG},
		{"engine-ports", required_argument, NULL, O_PORTS},
		{"log-file", required_argument, NULL, O_LOG},
		{"log-max-bytes", required_argument, NULL, O_LOG_MAX},
		{"log-keep", required_argument, NULL, O_LOG_KEEP},
		{"metrics-listen", required_argument, NULL, O_METRICS},
		{"engine-log-dir", required_argument, NULL, O_ENGLOG_DIR},
		{"engine-log-max-bytes", required_argument, NULL, O_ENGLOG_MAX},
		{"logs-listen", required_argument, NULL, O_LOGS_LISTEN},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char token_file[PATH_MAX] = "";
	int c, rc = 0;
	sc_env(cfg->gateway_url, sizeof(cfg->gateway_url), "NOVA_GATEWAY_URL");
	sc_env(cfg->node_id, sizeof(cfg->node_id), "NOVA_NODE_ID");
	/* Taken out of the environment before anything can fork: engines
	 * inherit it (sidecar.h). */
	sc_env_take(cfg->token, sizeof(cfg->token), "NOVA_NODE_TOKEN");
	sc_env_take(token_file, sizeof(token_file), "NOVA_NODE_TOKEN_FILE");
	/* Credentials of novad and novactl that an agent may inherit (the lpu
	 * provider spawns agents from novad's environment): never the
	 * engines'. The sidecar uses none of them. */
	static const char *const foreign[] = {"NOVA_ADMIN_TOKEN", "NOVA_DATABASE_URL", "NOVA_TOKEN",
					       "PGPASSWORD", NULL};
	for (size_t i = 0; foreign[i]; i++)
		sc_env_take(NULL, 0, foreign[i]);
	sc_env(cfg->log_file, sizeof(cfg->log_file), "NOVA_SIDECAR_LOG_FILE");
	sc_env(cfg->metrics_listen, sizeof(cfg->metrics_listen), "NOVA_SIDECAR_METRICS_LISTEN");
	sc_env(cfg->engine_log_dir, sizeof(cfg->engine_log_dir), "NOVA_SIDECAR_ENGINE_LOG_DIR");
	sc_env(cfg->logs_listen, sizeof(cfg->logs_listen), "NOVA_SIDECAR_LOGS_LISTEN");
	const char *env_emax = getenv("NOVA_SIDECAR_ENGINE_LOG_MAX_BYTES");
	if (env_emax && *env_emax &&
	    (rc = sc_ull(&cfg->engine_log_max_bytes, "NOVA_SIDECAR_ENGINE_LOG_MAX_BYTES", env_emax,
			 SIDECAR_LOGS_MIN_MAX_BYTES, err)))
		return rc;
	const char *env_max = getenv("NOVA_SIDECAR_LOG_MAX_BYTES"), *env_keep = getenv("NOVA_SIDECAR_LOG_KEEP");
	if (env_max && *env_max &&
	    (rc = sc_ull(&cfg->log_max_bytes, "NOVA_SIDECAR_LOG_MAX_BYTES", env_max, ROTLOG_MIN_MAX_BYTES, err)))
		return rc;
	if (env_keep && *env_keep && (rc = sc_keep(&cfg->log_keep, "NOVA_SIDECAR_LOG_KEEP", env_keep, err)))
		return rc;
	optind = 1;
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case O_GW: snprintf(cfg->gateway_url, sizeof(cfg->gateway_url), "%s", optarg); break;
		case O_NODE: snprintf(cfg->node_id, sizeof(cfg->node_id), "%s", optarg); break;
		case O_TOKEN:
			snprintf(cfg->token, sizeof(cfg->token), "%s", optarg);
			sc_scrub(optarg); /* /proc/PID/cmdline is anyone's to read */
			break;
		case O_TOKEN_FILE: snprintf(token_file, sizeof(token_file), "%s", optarg); break;
		case O_MOCK: snprintf(cfg->mock_engine, sizeof(cfg->mock_engine), "%s", optarg); break;
		case O_HOST: snprintf(cfg->advertise_host, sizeof(cfg->advertise_host), "%s", optarg); break;
		case O_CONFIG: rc = sc_config_file(cfg, optarg, err); break;
		case O_PORTS: rc = sidecar_ports_parse(&cfg->engine_port_lo, &cfg->engine_port_hi, optarg, err); break;
		case O_LOG:
			if (!*optarg || strlen(optarg) >= sizeof(cfg->log_file))
				rc = nova_err_set(err, NOVA_EINVAL, "--log-file", "--log-file needs a path");
			else
				snprintf(cfg->log_file, sizeof(cfg->log_file), "%s", optarg);
			break;
		case O_LOG_MAX: rc = sc_ull(&cfg->log_max_bytes, "--log-max-bytes", optarg, ROTLOG_MIN_MAX_BYTES, err); break;
		case O_LOG_KEEP: rc = sc_keep(&cfg->log_keep, "--log-keep", optarg, err); break;
		case O_METRICS:
			if (!*optarg || !strchr(optarg, ':') || strlen(optarg) >= sizeof(cfg->metrics_listen))
				rc = nova_err_set(err, NOVA_EINVAL, "--metrics-listen",
						  "--metrics-listen takes HOST:PORT");
			else
				snprintf(cfg->metrics_listen, sizeof(cfg->metrics_listen), "%s", optarg);
			break;
		case O_ENGLOG_DIR:
			if (!*optarg || strlen(optarg) >= sizeof(cfg->engine_log_dir) - 64)
				rc = nova_err_set(err, NOVA_EINVAL, "--engine-log-dir", "--engine-log-dir needs a path");
			else
				snprintf(cfg->engine_log_dir, sizeof(cfg->engine_log_dir), "%s", optarg);
			break;
		case O_ENGLOG_MAX:
			rc = sc_ull(&cfg->engine_log_max_bytes, "--engine-log-max-bytes", optarg,
				    SIDECAR_LOGS_MIN_MAX_BYTES, err);
			break;
		case O_LOGS_LISTEN:
			if (strcmp(optarg, "off") != 0 &&
			    (!strchr(optarg, ':') || strlen(optarg) >= sizeof(cfg->logs_listen)))
				rc = nova_err_set(err, NOVA_EINVAL, "--logs-listen",
						  "--logs-listen takes HOST:PORT or off");
			else
				snprintf(cfg->logs_listen, sizeof(cfg->logs_listen), "%s", optarg);
			break;
		case 'h': return 1;
		case ':': rc = nova_err_set(err, NOVA_EINVAL, argv[optind - 1], "%s needs a value", argv[optind - 1]); break;
		default: rc = nova_err_set(err, NOVA_EINVAL, argv[optind - 1], "unknown option %s", argv[optind - 1]); break;
		}
	}
	if (rc == 0 && token_file[0])
		rc = sc_token_file(cfg, token_file, err);
	if (rc)
		return rc;
	if (!cfg->gateway_url[0])
		return nova_err_set(err, NOVA_EINVAL, "--gateway", "the gateway URL is required");
	if (!cfg->node_id[0])
		return nova_err_set(err, NOVA_EINVAL, "--node-id", "the node id is required");
	if (!cfg->token[0])
		return nova_err_set(err, NOVA_EINVAL, "--token", "the node token is required");
	return 0;
}

/* --- model server processes ------------------------------------------------------ */

struct sc_child {
	bool used;
	char replica[64];
	long long stage;
	bool serving;            /* the replica's last stage: its endpoint is routed */
	json_t *assignment;      /* owned */
	pid_t pid;               /* 0: not running */
	unsigned port;
	char state[16];          /* starting | ready | failed */
	char reason[256];
	unsigned restarts;
	unsigned port_retries;   /* quick starts on another port (port taken) */
	long long next_start_ms, stop_deadline_ms, last_probe_ms;
	bool stopping;
	json_t *load;
	struct sidecar_load_history load_history; /* the last scrape's counters */
	json_t *adapters;        /* LoRA adapters the engine lists loaded (lora_dynamic) */
	struct sidecar_englog *log; /* its output (a reference), NULL: none */
	/* How the engine last ended without being asked to, reported in each
	 * heartbeat (novad records each once, by its time, as an event). */
	long long exit_at_ms;    /* wall clock; 0: it has not */
	int exit_code, exit_signal;
};

/* The engines' output: each engine's stdout and stderr are one pipe whose
 * read end a thread of its own copies into the engine's capped log
 * (sidecar/logs.h), so an engine never waits on the sidecar's main loop
 * (which may sit in a heartbeat for seconds) and a rotation moves every
 * writer at once. The main loop hands it read ends with the log they go
 * to (a reference) through a control pipe; fd -1 stops it. log: the
 * sidecar's own (--log-file). */
struct sc_pump {
	struct rotlog *log;
	int ctl[2];
	pthread_t thread;
	bool running;
};
struct sc_pump_msg {
	int fd;
	struct sidecar_englog *log;
};

struct sc {
	const struct sidecar_config *cfg;
	struct sc_pump pump;
	struct sc_child kids[SC_MAX_CHILDREN];
	unsigned port_lo, port_hi; /* engine ports */
	char generation[80];
	unsigned interval_ms;
	long long next_beat_ms, seq_base;
	unsigned beat_failures;
	/* Early beats (sidecar_int.h): when the last went, and whether the
	 * one scheduled is one. */
	long long last_early_ms;
	bool early;
	uint64_t rng; /* the beats' jitter */
	/* Where heartbeats go: the configured URL until a heartbeat answer
	 * names another (novad's advertise_url). */
	char gateway_url[512];
	/* --metrics-listen: its server, the counters its handler reads, and
	 * the engines' families as the main loop last wrote them (at each
	 * heartbeat), under snap_lock: the handler runs on the server's
	 * threads and never touches the children. */
	struct http_server *metrics;
	atomic_ullong beats[3]; /* by enum sc_beat */
	struct metrics_hist beat_seconds;
	atomic_ullong engine_exits;
	pthread_mutex_t snap_lock;
	char *engines_text;
	/* The engines' logs and the server novad reads them from; logs_url is
	 * what heartbeats report ("" when there is no server). */
	struct sidecar_logs *logs;
	char logs_url[200];
};

enum sc_beat { SC_BEAT_OK, SC_BEAT_REFUSED, SC_BEAT_FAILED };

static long long sc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long sc_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* --- /metrics (--metrics-listen) ------------------------------------------------ */

/* The engines' families from the children, by the main loop (which owns
 * them), for the handler: engines by model and state, and restarts by
 * model. Bounded: a node runs a few models. */
static void sc_metrics_snapshot(struct sc *s)
{
	struct textbuf t = {0};
	struct {
		char model[128];
		unsigned by_state[3]; /* starting, ready, failed */
		unsigned long long restarts;
	} m[SC_MAX_CHILDREN];
	size_t n = 0;
	static const char *const states[3] = {"starting", "ready", "failed"};
	if (!s->metrics)
		return;
	memset(m, 0, sizeof(m));
	for (int j = 0; j < SC_MAX_CHILDREN; j++) {
		const struct sc_child *k = &s->kids[j];
		if (!k->used || k->stopping)
			continue;
		const char *model = json_string_value(json_object_get(k->assignment, "model"));
		char esc[128];
		metrics_label_escape(esc, sizeof(esc), model ? model : "");
		size_t i = 0;
		while (i < n && strcmp(m[i].model, esc) != 0)
			i++;
		if (i == n)
			snprintf(m[n++].model, sizeof(m[0].model), "%s", esc);
		for (int st = 0; st < 3; st++)
			if (!strcmp(k->state, states[st]))
				m[i].by_state[st]++;
		m[i].restarts += k->restarts;
	}
	metrics_head(&t, "nova_sidecar_engines", "gauge",
		     "Engines (one per replica stage) this sidecar runs, by model and state.");
	for (size_t i = 0; i < n; i++)
		for (int st = 0; st < 3; st++) {
			char labels[200];
			snprintf(labels, sizeof(labels), "model=\"%.127s\",state=\"%s\"", m[i].model, states[st]);
			metrics_sample(&t, "nova_sidecar_engines", labels, m[i].by_state[st]);
		}
	metrics_head(&t, "nova_sidecar_engine_restarts", "gauge",
		     "Restarts of the current engines after they died, by model (reset when an "
		     "assignment changes).");
	for (size_t i = 0; i < n; i++) {
		char labels[160];
		snprintf(labels, sizeof(labels), "model=\"%.127s\"", m[i].model);
		metrics_sample(&t, "nova_sidecar_engine_restarts", labels, (double)m[i].restarts);
	}
	if (t.failed) {
		textbuf_finish(&t);
		return;
	}
	pthread_mutex_lock(&s->snap_lock);
	free(s->engines_text);
	s->engines_text = t.p;
	pthread_mutex_unlock(&s->snap_lock);
}

static void sc_metrics_get(struct http_request *req, struct http_response *res, void *ctx)
{
	struct sc *s = ctx;
	struct textbuf t = {0};
	static const char *const beat_names[3] = {"ok", "refused", "failed"};
	(void)req;
	metrics_head(&t, "nova_sidecar_heartbeats_total", "counter",
		     "Heartbeats sent, by result: ok, refused (novad answered other than 200), "
		     "failed (no answer).");
	for (int r = 0; r < 3; r++) {
		char labels[32];
		snprintf(labels, sizeof(labels), "result=\"%s\"", beat_names[r]);
		metrics_sample(&t, "nova_sidecar_heartbeats_total", labels,
			       (double)atomic_load(&s->beats[r]));
	}
	metrics_head(&t, "nova_sidecar_heartbeat_duration_seconds", "histogram",
		     "Heartbeat round trips to novad, answered or not.");
	metrics_hist_write(&t, "nova_sidecar_heartbeat_duration_seconds", NULL, &s->beat_seconds);
	metrics_one(&t, "nova_sidecar_engine_exits_total", "counter",
		    "Engines that exited without being asked to (crashed or quit).",
		    (double)atomic_load(&s->engine_exits));
	pthread_mutex_lock(&s->snap_lock);
	if (s->engines_text)
		textbuf_adds(&t, s->engines_text);
	pthread_mutex_unlock(&s->snap_lock);
	if (t.failed) {
		textbuf_finish(&t);
		http_response_errorf(res, NOVA_EINTERNAL, "", "out of memory");
		return;
	}
	http_response_text(res, 200, "text/plain; version=0.0.4; charset=utf-8", t.p);
	textbuf_finish(&t);
}

static int sc_metrics_start(struct sc *s, struct nova_err *err)
{
	pthread_mutex_init(&s->snap_lock, NULL);
	if (!s->cfg->metrics_listen[0])
		return 0;
	struct http_server_config hcfg = {.listen = s->cfg->metrics_listen, .threads = 1,
					  .max_connections = 64, .max_connections_per_ip = 16,
					  .header_timeout_ms = 5000, .body_timeout_ms = 5000};
	int rc;
	if ((rc = http_server_create(&s->metrics, &hcfg, err)) ||
	    (rc = http_server_route_add(s->metrics, "GET", "/metrics", sc_metrics_get, s, err)) ||
	    (rc = http_server_start(s->metrics, err))) {
		http_server_destroy(s->metrics);
		s->metrics = NULL;
		nova_err_set(err, rc, "--metrics-listen", "cannot serve metrics on %s: %s",
			     s->cfg->metrics_listen, err->message);
		return rc;
	}
	sc_metrics_snapshot(s);
	return 0;
}

static void sc_metrics_stop(struct sc *s)
{
	http_server_destroy(s->metrics);
	s->metrics = NULL;
	free(s->engines_text);
	s->engines_text = NULL;
	pthread_mutex_destroy(&s->snap_lock);
}

/* A port for a child's next start: free, and none any child holds, the
 * child's own last port included (it may be why the child died). */
static unsigned sc_engine_port(const struct sc *s)
{
	unsigned taken[SC_MAX_CHILDREN];
	size_t n = 0;
	uint32_t rnd;
	for (int j = 0; j < SC_MAX_CHILDREN; j++)
		if (s->kids[j].used && s->kids[j].port)
			taken[n++] = s->kids[j].port;
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)getpid() ^ (uint32_t)sc_now_ms();
	return sidecar_port_pick(s->port_lo, s->port_hi, taken, n, rnd);
}

static void *sc_pump_main(void *arg)
{
	struct sc_pump *p = arg;
	struct pollfd fds[1 + SC_MAX_CHILDREN * 2];
	struct sidecar_englog *logs[1 + SC_MAX_CHILDREN * 2] = {0};
	size_t n = 1;
	char buf[65536];
	fds[0].fd = p->ctl[0];
	fds[0].events = POLLIN;
	for (;;) {
		if (poll(fds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].revents) {
			struct sc_pump_msg m;
			ssize_t r = read(p->ctl[0], &m, sizeof(m));
			if (r == (ssize_t)sizeof(m) && m.fd < 0)
				break;
			if (r == (ssize_t)sizeof(m)) {
				if (n < sizeof(fds) / sizeof(fds[0])) {
					fds[n].fd = m.fd;
					fds[n].events = POLLIN;
					fds[n].revents = 0;
					logs[n] = m.log;
					n++;
				} else {
					close(m.fd); /* cannot happen: one per child */
					sidecar_englog_release(m.log);
				}
			}
		}
		for (size_t i = n; i-- > 1;) {
			if (!fds[i].revents)
				continue;
			ssize_t r = read(fds[i].fd, buf, sizeof(buf));
			if (r > 0) {
				sidecar_englog_write(logs[i], buf, (size_t)r);
				continue;
			}
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			close(fds[i].fd); /* the engine and all it started are gone */
			sidecar_englog_release(logs[i]);
			n--;
			fds[i] = fds[n];
			logs[i] = logs[n];
		}
	}
	for (size_t i = 1; i < n; i++) {
		close(fds[i].fd);
		sidecar_englog_release(logs[i]);
	}
	return NULL;
}

/* The sidecar's own log when --log-file is given, the engines' logs, and
 * the pump that fills them. */
static int sc_log_start(struct sc *s, struct nova_err *err)
{
	int rc;
	char dir[sizeof(s->cfg->engine_log_dir)];
	if (s->cfg->log_file[0]) {
		if ((rc = rotlog_open(&s->pump.log, s->cfg->log_file, s->cfg->log_max_bytes,
				      s->cfg->log_keep, true, err)))
			return rc;
		nova_log_set_sink(rotlog_log_sink, s->pump.log);
	}
	/* A directory per node: the sweep removes what its sidecar does not
	 * run, so two sidecars (ssh slices on one host, lpu agents given one
	 * NOVA_SIDECAR_ENGINE_LOG_DIR) must never share one. */
	bool plain = s->cfg->node_id[0] != '\0';
	for (const char *c = s->cfg->node_id; *c; c++)
		plain &= (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
			 *c == '-';
	const char *node = plain ? s->cfg->node_id : "node";
	if (s->cfg->engine_log_dir[0]) {
		snprintf(dir, sizeof(dir), "%.900s/%.64s", s->cfg->engine_log_dir, node);
	} else if (s->cfg->log_file[0]) {
		snprintf(dir, sizeof(dir), "%.*s.engines", (int)sizeof(dir) - 16, s->cfg->log_file);
	} else {
		const char *tmp = getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%.512s/nova-sidecar-%u/%.64s", tmp && *tmp == '/' ? tmp : "/tmp",
			 (unsigned)geteuid(), node);
	}
	/* Without engine logs the sidecar still runs its engines: their
	 * output is lost, as before, and said so. */
	if (sidecar_logs_create(&s->logs, dir, s->cfg->engine_log_max_bytes, err) != 0) {
		if (!strcmp(err->field, "--engine-log-max-bytes"))
			return err->code;
		nova_log_kv(NOVA_LOG_WARN, "sidecar", "no engine logs", "error", err->message, NULL);
	}
	if (pipe2(s->pump.ctl, O_CLOEXEC) != 0) {
		sidecar_logs_destroy(s->logs);
		s->logs = NULL;
		rotlog_close(s->pump.log);
		nova_log_set_sink(NULL, NULL);
		s->pump.log = NULL;
		return nova_err_set(err, NOVA_EINTERNAL, "", "pipe: %s", strerror(errno));
	}
	if (s->logs && pthread_create(&s->pump.thread, NULL, sc_pump_main, &s->pump) == 0)
		s->pump.running = true;
	return 0;
}

static void sc_log_stop(struct sc *s)
{
	if (s->pump.running) {
		struct sc_pump_msg stop = {-1, NULL};
		if (write(s->pump.ctl[1], &stop, sizeof(stop)) == (ssize_t)sizeof(stop))
			pthread_join(s->pump.thread, NULL);
		else
			pthread_detach(s->pump.thread);
		s->pump.running = false;
	}
	close(s->pump.ctl[0]);
	close(s->pump.ctl[1]);
	sidecar_logs_destroy(s->logs);
	s->logs = NULL;
	if (!s->pump.log)
		return;
	nova_log_set_sink(NULL, NULL);
	rotlog_close(s->pump.log);
	s->pump.log = NULL;
}

/* The log server, on the advertised host and a port of the engine range
 * unless --logs-listen says otherwise; its URL goes in the heartbeats.
 * Without it the sidecar runs on: only its logs cannot be read. */
static void sc_logs_serve(struct sc *s)
{
	char listen[200], port[16];
	struct nova_err err;
	const char *host = s->cfg->advertise_host;
	bool v6 = strchr(host, ':') && host[0] != '[';
	if (!s->logs || !strcmp(s->cfg->logs_listen, "off"))
		return;
	if (s->cfg->logs_listen[0]) {
		snprintf(listen, sizeof(listen), "%s", s->cfg->logs_listen);
	} else if (s->port_hi - s->port_lo + 1 <= SC_MAX_CHILDREN) {
		/* A range this narrow is the engines': the kernel picks. */
		snprintf(listen, sizeof(listen), v6 ? "[%s]:0" : "%s:0", host);
	} else {
		unsigned p = sc_engine_port(s);
		if (!p) {
			nova_log(NOVA_LOG_WARN, "sidecar", "no free port for the log server");
			return;
		}
		snprintf(listen, sizeof(listen), v6 ? "[%s]:%u" : "%s:%u", host, p);
	}
	if (sidecar_logs_serve(s->logs, listen, &err) != 0) {
		nova_log_kv(NOVA_LOG_WARN, "sidecar", "no log server", "listen", listen, "error",
			    err.message, NULL);
		return;
	}
	snprintf(s->logs_url, sizeof(s->logs_url), v6 ? "http://[%s]:%u" : "http://%s:%u", host,
		 sidecar_logs_port(s->logs));
	snprintf(port, sizeof(port), "%u", sidecar_logs_port(s->logs));
	nova_log_kv(NOVA_LOG_INFO, "sidecar", "log server", "port", port, NULL);
}

/* "{port}" etc. replaced in one argument. */
static char *sc_subst(const char *in, const struct sc_child *k)
{
	char port[16], out[2048];
	size_t o = 0;
	snprintf(port, sizeof(port), "%u", k->port);
	const char *model = json_string_value(json_object_get(k->assignment, "model"));
	for (const char *p = in; *p && o + 1 < sizeof(out);) {
		const char *val = NULL;
		size_t skip = 0;
		if (!strncmp(p, "{port}", 6))
			val = port, skip = 6;
		else if (!strncmp(p, "{model}", 7))
			val = model ? model : "", skip = 7;
		else if (!strncmp(p, "{replica}", 9))
			val = k->replica, skip = 9;
		if (val) {
			o += (size_t)snprintf(out + o, sizeof(out) - o, "%s", val);
			p += skip;
		} else {
			out[o++] = *p++;
		}
	}
	out[o < sizeof(out) ? o : sizeof(out) - 1] = '\0';
	return strdup(out);
}

/* The model's engine.mock as the mock engine's flags (models/model.h):
 * "max_num_seqs": 8 -> --max-num-seqs 8, "fail_health": true ->
 * --fail-health. novad validated the names and ranges; here only what a
 * flag can be made of is taken (lower-case names, whole numbers >= 0,
 * true), so a member this sidecar has no rule for still reaches the engine,
 * which is the one to refuse it. Returns the new argument count. */
static size_t sc_mock_flags(char **argv, size_t n, const json_t *mock)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)mock, key, v) {
		char flag[64], val[32];
		size_t len = strlen(key), i;
		if (len == 0 || len + 3 > sizeof(flag) || n + 3 > SC_ARGV_MAX)
			continue;
		for (i = 0; i < len && ((key[i] >= 'a' && key[i] <= 'z') || key[i] == '_'); i++)
			flag[2 + i] = key[i] == '_' ? '-' : key[i];
		if (i < len)
			continue;
		flag[0] = flag[1] = '-';
		flag[2 + len] = '\0';
		if (json_is_true(v)) {
			argv[n++] = strdup(flag);
		} else if (json_is_integer(v) && json_integer_value(v) >= 0) {
			snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
			argv[n++] = strdup(flag);
			argv[n++] = strdup(val);
		}
	}
	return n;
}

static void sc_child_start(struct sc *s, struct sc_child *k)
{
	json_t *engine = json_object_get(k->assignment, "engine");
	json_t *cmd = json_object_get(engine, "command"), *args = json_object_get(engine, "args");
	char *argv[SC_ARGV_MAX] = {0};
	size_t n = 0, i;
	json_t *v;
	if (!(k->port = sc_engine_port(s))) {
		/* Still starting: ports free up as engines stop. */
		k->next_start_ms = sc_now_ms() + SC_NO_PORT_RETRY_MS;
		snprintf(k->reason, sizeof(k->reason), "no free port in %u-%u", s->port_lo, s->port_hi);
		nova_log_kv(NOVA_LOG_WARN, "sidecar", "no free engine port", "replica", k->replica,
			    "reason", k->reason, NULL);
		return;
	}
	if (s->cfg->mock_engine[0]) {
		const char *kind = json_string_value(json_object_get(k->assignment, "kind"));
		char port[16], maxl[16];
		snprintf(port, sizeof(port), "%u", k->port);
		argv[n++] = strdup(s->cfg->mock_engine);
		argv[n++] = strdup("--port");
		argv[n++] = strdup(port);
		argv[n++] = strdup("--model");
		argv[n++] = strdup(json_string_value(json_object_get(k->assignment, "model")));
		argv[n++] = strdup("--kind");
		argv[n++] = strdup(kind && !strcmp(kind, "vision") ? "vision" : "single");
		/* A lora_dynamic model's adapters are what its engines may load
		 * on first use (vLLM's LoRA resolver; the mock's --lora-resolve),
		 * a lora_static model's what they serve from the start. */
		bool dyn = kind && !strcmp(kind, "lora_dynamic");
		json_array_foreach(json_object_get(k->assignment, "adapters"), i, v) {
			if (n + 8 < SC_ARGV_MAX) {
				argv[n++] = strdup(dyn ? "--lora-resolve" : "--lora");
				argv[n++] = strdup(json_string_value(v));
			}
		}
		if (json_object_get(k->assignment, "max_adapters")) {
			snprintf(maxl, sizeof(maxl), "%lld",
				 (long long)json_integer_value(json_object_get(k->assignment, "max_adapters")));
			argv[n++] = strdup("--max-loras");
			argv[n++] = strdup(maxl);
		}
		n = sc_mock_flags(argv, n, json_object_get(engine, "mock"));
	} else if (json_array_size(cmd) > 0) {
		json_array_foreach(cmd, i, v)
			if (n < 150)
				argv[n++] = sc_subst(json_string_value(v), k);
		json_array_foreach(args, i, v)
			if (n < 150)
				argv[n++] = sc_subst(json_string_value(v), k);
	} else {
		snprintf(k->state, sizeof(k->state), "failed");
		snprintf(k->reason, sizeof(k->reason),
			 "the model has no serve command (an image alone needs a container runtime)");
		return;
	}
	/* The engine's stdout and stderr go through the pump to its log. */
	int out[2] = {-1, -1};
	if ((!s->pump.running || !k->log) || pipe2(out, O_CLOEXEC) != 0)
		out[0] = out[1] = -1;
	pid_t pid = fork();
	if (pid == 0) {
		if (out[1] >= 0) {
			dup2(out[1], 1); /* dup2 clears close-on-exec on fds 1 and 2 */
			dup2(out[1], 2);
		}
		/* The server dies with the sidecar: no orphan engines. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char port[16], acc[16];
		snprintf(port, sizeof(port), "%u", k->port);
		snprintf(acc, sizeof(acc), "%lld",
			 (long long)json_integer_value(json_object_get(k->assignment, "accelerators")));
		setenv("PORT", port, 1);
		setenv("NOVA_REPLICA_ID", k->replica, 1);
		setenv("NOVA_ACCELERATORS", acc, 1);
		const char *key;
		json_object_foreach(json_object_get(engine, "env"), key, v)
			setenv(key, json_string_value(v), 1);
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			if (out[1] < 0)
				dup2(devnull, 1);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	for (size_t j = 0; j < n; j++)
		free(argv[j]);
	if (out[1] >= 0) {
		struct sc_pump_msg m = {out[0], sidecar_englog_ref(k->log)};
		close(out[1]);
		if (pid < 0 || write(s->pump.ctl[1], &m, sizeof(m)) != (ssize_t)sizeof(m)) {
			close(out[0]);
			sidecar_englog_release(m.log);
		}
	}
	if (pid < 0) {
		snprintf(k->state, sizeof(k->state), "failed");
		snprintf(k->reason, sizeof(k->reason), "fork: %s", strerror(errno));
		return;
	}
	k->pid = pid;
	snprintf(k->state, sizeof(k->state), "starting");
	nova_log_kv(NOVA_LOG_INFO, "sidecar", "model server started", "replica", k->replica,
		    "model", json_string_value(json_object_get(k->assignment, "model")), NULL);
}

static void sc_child_clear(struct sc *s, struct sc_child *k)
{
	if (k->log) {
		/* No longer assigned: its log goes once the pump and any
		 * reader let go. */
		sidecar_logs_retire(s->logs, k->replica, k->stage);
		sidecar_englog_release(k->log);
	}
	json_decref(k->assignment);
	json_decref(k->load);
	json_decref(k->adapters);
	memset(k, 0, sizeof(*k));
}

/* Something novad must hear now (an engine died, or turned ready or not
 * ready): the next beat goes at once, or as soon as the bound on early
 * beats allows (sidecar_int.h). Not while beats fail: the retry's backoff
 * stands (a novad away would not hear the early beat either, and one
 * answering 503 because it is overloaded must not get more), and the
 * retry carries the news. */
static void sc_beat_soon(struct sc *s, long long now)
{
	if (s->beat_failures)
		return;
	long long at = sidecar_beat_early_at(s->next_beat_ms, now, s->last_early_ms);
	if (at < s->next_beat_ms) {
		s->next_beat_ms = at;
		s->early = true;
	}
}

/* Reap what exited; schedule restarts with backoff. */
static void sc_reap(struct sc *s)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < SC_MAX_CHILDREN; i++) {
			struct sc_child *k = &s->kids[i];
			if (!k->used || k->pid != pid)
				continue;
			k->pid = 0;
			if (k->stopping) {
				sc_child_clear(s, k);
				break;
			}
			bool was_ready = !strcmp(k->state, "ready");
			json_decref(k->adapters); /* its successor starts with none */
			k->adapters = NULL;
			atomic_fetch_add(&s->engine_exits, 1);
			/* Another process listens on the port it died on: it
			 * lost the port to something that bound it after our
			 * check. Start it again at once on another port, not
			 * counted as a restart. Not "exited within N seconds":
			 * an engine may load a model for minutes before it
			 * binds. Not "died before it was ready": the process
			 * that took the port may answer our health probe. Not a
			 * failed bind test: our own probes can leave the dead
			 * engine's port in TIME_WAIT. Bounded per assignment,
			 * in case what listens is the engine's own leftover
			 * worker and it crashes over and over. */
			bool port_lost = k->port_retries < SC_MAX_PORT_RETRIES &&
					 sidecar_port_listened(k->port);
			/* Unasked: novad hears it now, not an interval later
			 * (the replica leaves the routes, its exit is recorded).
			 * One that lost its port before it was ready changes
			 * nothing novad sees. */
			if (was_ready || !port_lost)
				sc_beat_soon(s, sc_now_ms());
			if (port_lost) {
				k->port_retries++;
				k->next_start_ms = 0;
				snprintf(k->state, sizeof(k->state), "starting");
				snprintf(k->reason, sizeof(k->reason),
					 "port %u was taken by another process; starting on another port",
					 k->port);
				nova_log_kv(NOVA_LOG_WARN, "sidecar", "engine port taken", "replica",
					    k->replica, "reason", k->reason, NULL);
				break;
			}
			k->restarts++;
			unsigned delay = 1000u << (k->restarts < 5 ? k->restarts - 1 : 5);
			if (delay > SC_MAX_BACKOFF_MS)
				delay = SC_MAX_BACKOFF_MS;
			k->next_start_ms = sc_now_ms() + delay;
			snprintf(k->state, sizeof(k->state), "starting");
			snprintf(k->reason, sizeof(k->reason), "exited with %s %d; restart %u",
				 WIFEXITED(status) ? "status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), k->restarts);
			struct timespec wall;
			clock_gettime(CLOCK_REALTIME, &wall);
			long long at = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
			k->exit_at_ms = at > k->exit_at_ms ? at : k->exit_at_ms + 1;
			k->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			k->exit_signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
			/* The engine's log ends with how it ended: its last
			 * words and the cause in one place. */
			char line[160];
			const char *abbrev = k->exit_signal ? sigabbrev_np(k->exit_signal) : NULL;
			int ln;
			if (k->exit_signal)
				ln = snprintf(line, sizeof(line),
					      "nova-sidecar: the engine was killed by signal %s%s; restart %u in %u ms\n",
					      abbrev ? "SIG" : "", abbrev ? abbrev : "?", k->restarts, delay);
			else
				ln = snprintf(line, sizeof(line),
					      "nova-sidecar: the engine exited with code %d; restart %u in %u ms\n",
					      k->exit_code, k->restarts, delay);
			sidecar_englog_write(k->log, line, (size_t)ln);
			nova_log_kv(NOVA_LOG_WARN, "sidecar", "model server died", "replica", k->replica,
				    "reason", k->reason, NULL);
		}
	}
}

static int sc_metrics_take(void *ctx, const char *data, size_t len)
{
	struct textbuf *t = ctx;
	if (t->len + len > SIDECAR_METRICS_MAX_BYTES) {
		t->failed = true; /* over the parser's limit: no load from this scrape */
		return 1;
	}
	textbuf_add(t, data, len);
	return t->failed;
}

static int sc_models_take(void *ctx, const char *data, size_t len)
{
	struct textbuf *t = ctx;
	if (t->len + len > SIDECAR_MODELS_MAX_BYTES) {
		t->failed = true;
		return 1;
	}
	textbuf_add(t, data, len);
	return t->failed;
}

/* The LoRA adapters a lora_dynamic engine has loaded, from its GET
 * /v1/models (sidecar/metrics.h), at the load's cadence: one more small
 * request per probe, and only for the engines that load adapters. An
 * answer that does not read keeps what the last one said. */
static void sc_probe_adapters(struct sc_child *k)
{
	char url[256];
	struct textbuf text = {0};
	struct nova_err err;
	long status = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/models", k->port);
	struct http_client_request req = {.method = "GET", .url = url, .timeout_ms = 1000};
	if (http_client_stream(&status, &req, sc_models_take, &text, &err) == 0 && status == 200 &&
	    text.p && !text.failed) {
		json_t *list = sidecar_adapters_read(text.p, text.len, NULL);
		if (list) {
			json_decref(k->adapters);
			k->adapters = list;
		}
	}
	textbuf_finish(&text);
}

/* Health first; once ready, the load from /metrics. */
static void sc_probe(struct sc *s, struct sc_child *k)
{
	char url[256];
	struct http_client_response res;
	struct nova_err err;
	const char *hp = json_string_value(json_object_get(json_object_get(k->assignment, "engine"),
							   "health_path"));
	(void)s;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", k->port, hp && !s->cfg->mock_engine[0] ? hp : "/health");
	struct http_client_request req = {.method = "GET", .url = url, .timeout_ms = 1000};
	bool healthy = http_client_do(&res, &req, &err) == 0 && res.status == 200;
	if (healthy || res.body)
		http_client_response_finish(&res);
	snprintf(k->state, sizeof(k->state), "%s", healthy ? "ready" : "starting");
	if (!healthy) {
		json_decref(k->adapters); /* a restarted engine starts with none */
		k->adapters = NULL;
		return;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", k->port);
	req.url = url;
	struct textbuf text = {0};
	long status = 0;
	/* Streamed into a capped buffer: an engine's /metrics is not trusted
	 * to be small (http_client_do keeps whatever arrives in its second). */
	if (http_client_stream(&status, &req, sc_metrics_take, &text, &err) == 0 && status == 200 &&
	    text.p && !text.failed && text.len <= SIDECAR_METRICS_MAX_BYTES) {
		struct sidecar_load l;
		if (sidecar_load_read(&l, &k->load_history, text.p, text.len, sc_now_ms(), &err) == 0) {
			/* queue_depth, tokens_per_second and ttft_ms are always
			 * there (0 when the engine serves none, as before);
			 * running, kv_cache_usage, inflight_tokens and
			 * ttft_p95_ms only when it reports them, so a router can
			 * tell "empty" from "unknown". */
			json_decref(k->load);
			k->load = json_pack("{s:f, s:f, s:f, s:i}", "queue_depth",
					    l.queue_depth < 0 ? 0 : l.queue_depth, "tokens_per_second",
					    l.tokens_per_second < 0 ? 0 : l.tokens_per_second, "ttft_ms",
					    l.ttft_ms < 0 ? 0 : l.ttft_ms, "restarts", (int)k->restarts);
			if (k->load && l.running >= 0)
				json_object_set_new(k->load, "running", json_real(l.running));
			if (k->load && l.kv_cache_usage >= 0)
				json_object_set_new(k->load, "kv_cache_usage", json_real(l.kv_cache_usage));
			if (k->load && l.inflight_tokens >= 0)
				json_object_set_new(k->load, "inflight_tokens", json_real(l.inflight_tokens));
			if (k->load && l.ttft_p95_ms >= 0)
				json_object_set_new(k->load, "ttft_p95_ms", json_real(l.ttft_p95_ms));
		}
	}
	textbuf_finish(&text);
	const char *kind = json_string_value(json_object_get(k->assignment, "kind"));
	if (k->serving && kind && !strcmp(kind, "lora_dynamic"))
		sc_probe_adapters(k);
}

/* Match the children to the assignments. */
static void sc_assign(struct sc *s, json_t *assignments)
{
	size_t i;
	json_t *a;
	/* Stop what is no longer assigned. */
	for (int j = 0; j < SC_MAX_CHILDREN; j++) {
		struct sc_child *k = &s->kids[j];
		bool keep = false;
		if (!k->used || k->stopping)
			continue;
		json_array_foreach(assignments, i, a)
			keep |= !strcmp(json_string_value(json_object_get(a, "replica_id")), k->replica) &&
				json_integer_value(json_object_get(a, "stage")) == k->stage;
		if (keep)
			continue;
		if (k->pid > 0) {
			kill(k->pid, SIGTERM);
			k->stopping = true;
			k->stop_deadline_ms = sc_now_ms() + SC_STOP_GRACE_MS;
		} else {
			sc_child_clear(s, k);
		}
	}
	/* Start what is new. The serving stage is the replica's last one here. */
	json_array_foreach(assignments, i, a) {
		const char *rid = json_string_value(json_object_get(a, "replica_id"));
		long long stage = json_integer_value(json_object_get(a, "stage"));
		bool have = false;
		int free_slot = -1;
		for (int j = 0; j < SC_MAX_CHILDREN; j++) {
			struct sc_child *k = &s->kids[j];
			if (k->used && !k->stopping && !strcmp(k->replica, rid) && k->stage == stage)
				have = true;
			if (!k->used && free_slot < 0)
				free_slot = j;
		}
		if (have || free_slot < 0)
			continue;
		struct sc_child *k = &s->kids[free_slot];
		k->used = true;
		snprintf(k->replica, sizeof(k->replica), "%s", rid);
		k->stage = stage;
		k->assignment = json_incref(a);
		/* The model's stage count says which stage serves; a gateway
		 * that does not send it: the last stage this node runs. */
		json_int_t stages = json_integer_value(json_object_get(a, "stages"));
		k->serving = true;
		if (stages > 0) {
			k->serving = stage == stages - 1;
		} else {
			json_t *b;
			size_t x;
			json_array_foreach(assignments, x, b)
				if (!strcmp(json_string_value(json_object_get(b, "replica_id")), rid) &&
				    json_integer_value(json_object_get(b, "stage")) > stage)
					k->serving = false;
		}
		snprintf(k->state, sizeof(k->state), "starting");
		k->next_start_ms = 0;
		k->log = sidecar_logs_open(s->logs, rid, stage);
	}
}

static void sc_heartbeat(struct sc *s)
{
	char url[700];
	struct http_client_response res;
	struct nova_err err;
	json_t *replicas = json_array();
	size_t adapters_budget = SC_ADAPTERS_BEAT_BYTES;
	for (int j = 0; j < SC_MAX_CHILDREN; j++) {
		struct sc_child *k = &s->kids[j];
		char endpoint[256];
		if (!k->used || k->stopping)
			continue;
		/* Every stage reports its state; the replica is routable when all
		 * are ready, at the serving stage's endpoint, with its load. */
		/* An IPv6 address in brackets, or the URL would be
		 * ambiguous (and refused by the gateway). */
		bool v6 = strchr(s->cfg->advertise_host, ':') && s->cfg->advertise_host[0] != '[';
		snprintf(endpoint, sizeof(endpoint), v6 ? "http://[%s]:%u" : "http://%s:%u",
			 s->cfg->advertise_host, k->port);
		json_t *r = json_pack("{s:s, s:I, s:s, s:s}", "replica_id", k->replica, "stage",
				      (json_int_t)k->stage, "state", k->state, "endpoint", endpoint);
		if (r && k->load && k->serving)
			json_object_set(r, "load", k->load);
		/* Only when there are some: a novad older than this field
		 * refuses a report that names it. Within a budget per
		 * heartbeat, so that hints never push the beat past novad's
		 * body cap (1 MiB by default) and lose the node's liveness:
		 * past it, a replica's list is left out (its adapters count as
		 * not loaded, which costs a router's preference, no request). */
		size_t bytes = 0, ai;
		json_t *an;
		json_array_foreach(k->adapters, ai, an)
			bytes += json_string_length(an) + 3;
		if (r && bytes > 0 && k->serving && bytes <= adapters_budget) {
			json_object_set(r, "adapters_loaded", k->adapters);
			adapters_budget -= bytes;
		}
		/* The last unasked exit, again in each beat until a newer one:
		 * novad records it once, by its time (a flush may skip beats). */
		if (r && k->exit_at_ms) {
			json_t *x = json_pack("{s:I, s:i}", "at_ms", (json_int_t)k->exit_at_ms, "restarts",
					      (int)k->restarts);
			if (x)
				json_object_set_new(x, k->exit_signal ? "signal" : "code",
						    json_integer(k->exit_signal ? k->exit_signal : k->exit_code));
			json_object_set_new(r, "exit", x);
		}
		if (r)
			json_array_append_new(replicas, r);
	}
	/* Numbered from the wall clock: a restarted sidecar keeps going up. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long seq = ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000) * 1000 + (s->seq_base++ % 1000);
	/* The node's capacity, as the machine reports it. */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES);
	long page = sysconf(_SC_PAGESIZE);
	json_t *capacity = json_pack("{s:i, s:I}", "cpus", (int)(cpus > 0 ? cpus : 0), "memory_mib",
				     (json_int_t)(pages > 0 && page > 0 ? (long long)pages * page / 1048576 : 0));
	json_t *body = json_pack("{s:I, s:s, s:o, s:o}", "seq", (json_int_t)seq, "assignment_generation",
				 s->generation, "replicas", replicas, "capacity", capacity);
	/* Where novad reads the engines' logs, and which of its keys this
	 * sidecar holds (ids, never keys: sidecar/logs.h). */
	if (body && s->logs_url[0])
		json_object_set_new(body, "logs", json_pack("{s:s, s:o}", "url", s->logs_url, "keys",
							    sidecar_logs_key_ids(s->logs)));
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	snprintf(url, sizeof(url), "%s/v1/nodes/%s/heartbeat", s->gateway_url, s->cfg->node_id);
	struct http_client_request req = {.method = "POST", .url = url, .bearer_token = s->cfg->token,
					  .body = text, .body_len = text ? strlen(text) : 0,
					  .timeout_ms = 5000};
	long long beat_start = sc_now_us();
	if (s->early) {
		s->last_early_ms = beat_start / 1000;
		s->early = false;
	}
	int rc = http_client_do(&res, &req, &err);
	free(text);
	metrics_hist_observe(&s->beat_seconds, (double)(sc_now_us() - beat_start) / 1e6);
	atomic_fetch_add(&s->beats[rc ? SC_BEAT_FAILED : res.status != 200 ? SC_BEAT_REFUSED : SC_BEAT_OK], 1);
	sc_metrics_snapshot(s);
	if (rc || res.status != 200) {
		/* Away or refusing: keep serving, retry with backoff. */
		/* Tried again one interval later, then two, never longer, with a
		 * tenth of jitter: a novad that comes back (or whose database
		 * does) gives every node a fresh grace of a few intervals, and
		 * the sidecar must beat within it. Rejected: exponential backoff
		 * to 30 s, under which a novad restarted after 60 s away saw
		 * its fleet silent past that grace. Beating at about the usual
		 * rate adds no load that a healthy fleet does not. */
		s->beat_failures++;
		s->next_beat_ms = sc_now_ms() + sidecar_beat_delay(s->interval_ms * (s->beat_failures < 2 ? 1 : 2),
								   s->interval_ms, sidecar_rand_next(&s->rng));
		nova_log_kv(NOVA_LOG_WARN, "sidecar", "heartbeat failed", "error",
			    rc ? err.message : (res.body ? res.body : "refused"), NULL);
		if (!rc)
			http_client_response_finish(&res);
		return;
	}
	s->beat_failures = 0;
	json_t *ans = json_loads(res.body, 0, NULL);
	http_client_response_finish(&res);
	json_int_t iv = json_integer_value(json_object_get(ans, "interval_ms"));
	if (iv >= 100 && iv <= 600000)
		s->interval_ms = (unsigned)iv;
	/* Told where novad is now (a load balancer put in front, say): the
	 * next heartbeats go there. A URL that does not check out is not
	 * followed, so one bad answer cannot strand the node. */
	const char *gw = json_string_value(json_object_get(ans, "gateway_url"));
	if (gw && strcmp(gw, s->gateway_url) != 0) {
		if (http_url_check(gw, "gateway_url", &err) == 0) {
			nova_log_kv(NOVA_LOG_INFO, "sidecar", "gateway changed", "from", s->gateway_url,
				    "to", gw, NULL);
			snprintf(s->gateway_url, sizeof(s->gateway_url), "%s", gw);
		} else {
			nova_log_kv(NOVA_LOG_WARN, "sidecar", "gateway_url in the answer ignored", "error",
				    err.message, NULL);
		}
	}
	/* Jittered (sidecar_int.h): sidecars started together do not beat
	 * in step. */
	s->next_beat_ms = sc_now_ms() + sidecar_beat_delay(s->interval_ms, s->interval_ms,
							   sidecar_rand_next(&s->rng));
	/* A log key from this novad (never logged). */
	json_t *lk = json_object_get(ans, "logs_key");
	if (json_is_string(lk) && s->logs_url[0]) {
		sidecar_logs_key_add(s->logs, json_string_value(lk));
		explicit_bzero((char *)json_string_value(lk), json_string_length(lk));
	}
	/* Endpoints the gateway refused (not on this node's address, or not
	 * http(s)://host:port): their replicas are not routed. */
	size_t ri;
	json_t *rx;
	json_array_foreach(json_object_get(ans, "refused"), ri, rx)
		nova_log_kv(NOVA_LOG_WARN, "sidecar", "endpoint refused by the gateway", "replica",
			    json_string_value(json_object_get(rx, "replica_id")), "reason",
			    json_string_value(json_object_get(rx, "reason")), NULL);
	json_t *assignments = json_object_get(ans, "assignments");
	const char *gen = json_string_value(json_object_get(ans, "assignment_generation"));
	if (json_is_array(assignments)) {
		sc_assign(s, assignments);
		snprintf(s->generation, sizeof(s->generation), "%s", gen ? gen : "");
		/* What an earlier run left of replicas no longer here. */
		sidecar_logs_sweep(s->logs);
	}
	json_decref(ans);
}

static void sc_stop_all(struct sc *s)
{
	long long deadline = sc_now_ms() + SC_STOP_GRACE_MS;
	for (int j = 0; j < SC_MAX_CHILDREN; j++)
		if (s->kids[j].used && s->kids[j].pid > 0)
			kill(s->kids[j].pid, SIGTERM);
	for (;;) {
		bool alive = false;
		for (int j = 0; j < SC_MAX_CHILDREN; j++) {
			struct sc_child *k = &s->kids[j];
			if (!k->used || k->pid <= 0)
				continue;
			if (waitpid(k->pid, NULL, WNOHANG) == k->pid)
				k->pid = 0;
			else
				alive = true;
		}
		if (!alive)
			break;
		if (sc_now_ms() > deadline) {
			for (int j = 0; j < SC_MAX_CHILDREN; j++)
				if (s->kids[j].used && s->kids[j].pid > 0) {
					kill(s->kids[j].pid, SIGKILL);
					waitpid(s->kids[j].pid, NULL, 0);
					s->kids[j].pid = 0;
				}
			break;
		}
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	for (int j = 0; j < SC_MAX_CHILDREN; j++)
		if (s->kids[j].used) {
			/* The sidecar stops, the assignments stand: the logs stay
			 * for the next run. */
			sidecar_englog_release(s->kids[j].log);
			s->kids[j].log = NULL;
			sc_child_clear(s, &s->kids[j]);
		}
}

static void sc_port_range(struct sc *s)
{
	char text[64] = "", lo[16], hi[16];
	bool outside = true;
	FILE *f;
	if (s->cfg->engine_port_lo) {
		s->port_lo = s->cfg->engine_port_lo, s->port_hi = s->cfg->engine_port_hi;
	} else {
		if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r"))) {
			if (!fgets(text, sizeof(text), f))
				text[0] = '\0';
			fclose(f);
		}
		outside = sidecar_ports_default(&s->port_lo, &s->port_hi, text[0] ? text : NULL);
	}
	snprintf(lo, sizeof(lo), "%u", s->port_lo);
	snprintf(hi, sizeof(hi), "%u", s->port_hi);
	nova_log_kv(outside ? NOVA_LOG_INFO : NOVA_LOG_WARN, "sidecar",
		    outside ? "engine ports" : "engine ports overlap the ephemeral range",
		    "from", lo, "to", hi, NULL);
}

int sidecar_run(const struct sidecar_config *cfg, volatile sig_atomic_t *stop, struct nova_err *err)
{
	static struct sc s; /* large; one per process */
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.interval_ms = cfg->interval_ms;
	s.last_early_ms = LLONG_MIN / 2; /* none yet */
	sidecar_rand_seed(&s.rng);
	snprintf(s.gateway_url, sizeof(s.gateway_url), "%s", cfg->gateway_url);
	if (sc_log_start(&s, err)) {
		fprintf(stderr, "nova-sidecar: %s\n", err->message);
		return NOVA_EINVAL;
	}
	if (sc_metrics_start(&s, err)) {
		fprintf(stderr, "nova-sidecar: %s\n", err->message);
		sc_log_stop(&s);
		return NOVA_EINVAL;
	}
	sc_port_range(&s);
	sc_logs_serve(&s);
	snprintf(s.generation, sizeof(s.generation), "%s", "");
	nova_log_kv(NOVA_LOG_INFO, "sidecar", "sidecar running", "node", cfg->node_id, "gateway",
		    cfg->gateway_url, NULL);
	while (!*stop) {
		long long now = sc_now_ms();
		sc_reap(&s);
		for (int j = 0; j < SC_MAX_CHILDREN; j++) {
			struct sc_child *k = &s.kids[j];
			if (!k->used)
				continue;
			if (k->stopping && k->pid > 0 && now > k->stop_deadline_ms)
				kill(k->pid, SIGKILL);
			if (!k->stopping && k->pid == 0 && strcmp(k->state, "failed") != 0 &&
			    now >= k->next_start_ms)
				sc_child_start(&s, k);
			/* A starting server is probed every 50 ms and a ready one
			 * every 500 ms, for its load. Either turn is reported at
			 * once (sc_beat_soon), rather than at the next beat, up to
			 * an interval later: a ready one is routed, one that stops
			 * answering leaves the routes. */
			bool was_ready = !strcmp(k->state, "ready");
			if (!k->stopping && k->pid > 0 && now - k->last_probe_ms >= (was_ready ? 500 : 50)) {
				k->last_probe_ms = now;
				sc_probe(&s, k);
				if (was_ready != !strcmp(k->state, "ready"))
					sc_beat_soon(&s, now);
			}
		}
		if (now >= s.next_beat_ms)
			sc_heartbeat(&s);
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	nova_log(NOVA_LOG_INFO, "sidecar", "stopping model servers");
	sc_stop_all(&s);
	sc_metrics_stop(&s);
	sc_log_stop(&s);
	return 0;
}
