/* nova-sidecar: see sidecar/sidecar.h. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "core/http_client.h"
#include "sidecar/sidecar.h"

static volatile sig_atomic_t sidecar_stop;

static void sidecar_on_signal(int sig)
{
	(void)sig;
	sidecar_stop = 1;
}

int main(int argc, char **argv)
{
	struct sidecar_config cfg;
	struct nova_err err;
	struct sigaction sa;
	int rc;
	/* Not dumpable: /proc/PID/environ, mem and friends of the sidecar
	 * belong to root, so an engine (a child, same user) cannot read the
	 * node token out of its parent. exec resets it for the engines. */
	prctl(PR_SET_DUMPABLE, 0);
	sidecar_config_defaults(&cfg);
	rc = sidecar_config_parse(&cfg, argc, argv, &err);
	if (rc == 1) {
		fputs(sidecar_usage, stdout);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "nova-sidecar: %s\n%s", err.message, sidecar_usage);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sidecar_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (http_client_global_init(&err)) {
		fprintf(stderr, "nova-sidecar: %s\n", err.message);
		return 1;
	}
	rc = sidecar_run(&cfg, &sidecar_stop, &err);
	http_client_global_cleanup();
	return rc ? 1 : 0;
}
