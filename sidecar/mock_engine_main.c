/* nova-mock-engine: see sidecar/mock_engine.h. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "sidecar/mock_engine.h"

int main(int argc, char **argv)
{
	struct mock_engine_config cfg;
	struct mock_engine *e;
	struct nova_err err;
	sigset_t sigs;
	int sig, rc;
	mock_engine_config_defaults(&cfg);
	rc = mock_engine_config_parse(&cfg, argc, argv, &err);
	if (rc == 1) {
		fputs(mock_engine_usage, stdout);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "nova-mock-engine: %s\n%s", err.message, mock_engine_usage);
		return 2;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (mock_engine_start(&e, &cfg, &err)) {
		fprintf(stderr, "nova-mock-engine: %s\n", err.message);
		return 1;
	}
	/* The port on stdout, one line, for whoever started us (port 0), and
	 * in --port-file when asked: written whole under another name, then
	 * renamed, so a reader never sees half of it. */
	printf("%u\n", mock_engine_port(e));
	fflush(stdout);
	if (cfg.port_file[0]) {
		char tmp[sizeof(cfg.port_file) + 8];
		snprintf(tmp, sizeof(tmp), "%s.tmp", cfg.port_file);
		FILE *f = fopen(tmp, "we");
		if (!f || fprintf(f, "%u\n", mock_engine_port(e)) < 0 || fclose(f) != 0 ||
		    rename(tmp, cfg.port_file) != 0) {
			fprintf(stderr, "nova-mock-engine: cannot write %s\n", cfg.port_file);
			mock_engine_stop(e);
			return 1;
		}
	}
	nova_log_kv(NOVA_LOG_INFO, "mock-engine", "serving", "model", cfg.model, NULL);
	while (sigwait(&sigs, &sig) != 0)
		;
	mock_engine_stop(e);
	return 0;
}
