/* nova-router: see router/router.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/http_client.h"
#include "core/log.h"
#include "router/router.h"

int main(int argc, char **argv)
{
	struct router_config cfg;
	struct router *r = NULL;
	struct nova_err err;
	sigset_t set;
	int sig, rc;
	/* Not dumpable: the router's key is in its memory. */
	prctl(PR_SET_DUMPABLE, 0);
	router_config_defaults(&cfg);
	nova_err_clear(&err);
	rc = router_config_parse(&cfg, argc, argv, &err);
	if (rc == 1) {
		fputs(router_usage, stdout);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "nova-router: %s%s%s\n%s", err.message, err.hint[0] ? " (" : "",
			err.hint[0] ? err.hint : "", router_usage);
		if (err.hint[0])
			fputs(")\n", stderr);
		return 2;
	}
	/* The token is in cfg now: out of the environment, so nothing this
	 * process might start inherits it. */
	char *env_token = getenv("NOVA_TOKEN");
	if (env_token) /* the bytes /proc/PID/environ shows, too */
		explicit_bzero(env_token, strlen(env_token));
	unsetenv("NOVA_TOKEN");
	nova_log_set_level(cfg.log_level);
	if (cfg.config_file[0])
		nova_log_kv(NOVA_LOG_INFO, "router", "configuration read", "file", cfg.config_file,
			    "from", cfg.config_source, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Two descriptors per request in flight (the client's, the replica's):
	 * the soft limit raised to the hard one, as novad does. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Signals are taken by this thread alone, with sigwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (http_client_global_init(&err) || router_create(&r, &cfg, &err) ||
	    router_start(r, &err)) {
		nova_log_kv(NOVA_LOG_ERROR, "router", "nova-router cannot start", "error", err.message,
			    NULL);
		router_destroy(r);
		http_client_global_cleanup();
		return 1;
	}
	explicit_bzero(cfg.token, sizeof(cfg.token));
	char port[8], policy[32];
	snprintf(port, sizeof(port), "%u", (unsigned)router_port(r));
	snprintf(policy, sizeof(policy), "%s", router_policy_name(cfg.policy));
	nova_log_kv(NOVA_LOG_INFO, "router", "nova-router listening", "listen", cfg.listen, "port",
		    port, "gateway", cfg.gateway, "policy", policy, NULL);
	/* The bound port on stdout, for scripts that asked for port 0. */
	printf("%u\n", (unsigned)router_port(r));
	fflush(stdout);
	sigwait(&set, &sig);
	nova_log(NOVA_LOG_INFO, "router", "stopping");
	router_destroy(r);
	http_client_global_cleanup();
	return 0;
}
