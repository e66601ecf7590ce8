/* novactl: the command line over novad's gateway API. */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/http_client.h"

#define NOVACTL_USAGE_LINE                                                                  \
	"usage: novactl [--server URL] [--token TOKEN] [--context NAME]\n"                   \
	"               [-o table|wide|json|yaml|name] [--no-headers] COMMAND ...\n"
/* After a usage error: the one line and where the rest is, so the message
 * itself is not scrolled away by the full help. */
static const char novactl_usage_hint[] = NOVACTL_USAGE_LINE "run 'novactl --help' for the commands\n";

static const char novactl_usage[] =
	NOVACTL_USAGE_LINE
	"\n"
	"commands:\n"
	"  pool create|list|get|update|delete   compute pools\n"
	"  model register|list|get|delete       the model registry\n"
	"  deploy MODEL --pool POOL ... [--wait [--timeout S]]\n"
	"         [--autoscale min=N,max=N,target-queue=N,...]\n"
	"                                       deploy a model on a pool\n"
	"  deployment list|get|scale|autoscale|update|promote|rollback|stop|start|delete\n"
	"                                       (get --watch; scale|start|stop --wait;\n"
	"                                       autoscale NAME min=..,max=..,...|off;\n"
	"                                       update NAME --model NAME:VERSION rolls\n"
	"                                       it over, --canary PCT first)\n"
	"  node list|get|cordon|uncordon|drain  the nodes of the pools\n"
	"  describe pool|node|deployment|model NAME\n"
	"                                       one object, its parts and its events\n"
	"  events [--pool P] [--deployment D] [--node N] [--since T] [--watch]\n"
	"                                       transitions and events, newest last\n"
	"  events --watch --kind all|node,...   the event stream, a line per event\n"
	"  logs DEPLOYMENT [--replica N] [-f] [--tail N]\n"
	"                                       a replica's engine output\n"
	"  routes [--model NAME] [--watch]      the routing table\n"
	"  apikey create|list|revoke            API keys (admin scope)\n"
	"  audit [--since T] [--key K] [--object O] ...  who changed what (admin scope)\n"
	"  version                              client and server versions\n"
	"  config get-contexts|current-context|use-context|set-context|delete-context\n"
	"                                       named servers and tokens\n"
	"  completion bash|zsh                  a shell completion script\n"
	"\n"
	"Server and token come from the flags, NOVA_SERVER and NOVA_TOKEN,\n"
	"~/.config/nova/config.yaml (server:, token:, or the context chosen by\n"
	"--context, NOVA_CONTEXT or its current-context), or a local novad's state\n"
	"directory. 'novactl COMMAND --help' for more.\n"
	"\n"
	"Lists take -l key=value selectors (pool, node and deployment list; matched\n"
	"here, on the labels of each object the list returns); get takes several\n"
	"names and prints each in order.\n"
	"\n"
	"exit status: 0 ok, 2 usage or invalid, 3 not found, 4 conflict,\n"
	"5 authentication, 6 server unavailable, 7 --wait timed out,\n"
	"8 --wait saw the deployment fail, 130 interrupted while waiting\n";

static const struct {
	const char *name;
	int (*fn)(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
	bool no_verb; /* the words after the name are all arguments */
} novactl_groups[] = {
	{"pool", cli_cmd_pool, false},
	{"model", cli_cmd_model, false},
	{"deploy", cli_cmd_deploy, false},
	{"deployment", cli_cmd_deployment, false},
	{"node", cli_cmd_node, false},
	{"describe", cli_cmd_describe, false},
	{"events", cli_cmd_events, true},
	{"logs", cli_cmd_logs, true},
	{"routes", cli_cmd_routes, true},
	{"apikey", cli_cmd_apikey, false},
	{"audit", cli_cmd_audit, true},
	{"config", cli_cmd_config, false},
};

struct novactl_globals {
	const char *server, *token, *output, *context;
	bool no_headers;
};

/* The object kind a group's -o name prints. */
static const char *novactl_kind(const char *group)
{
	if (!strcmp(group, "deploy"))
		return "deployment";
	if (!strcmp(group, "routes"))
		return "route";
	if (!strcmp(group, "audit") || !strcmp(group, "events"))
		return "event";
	return group;
}

/* Take the global flags out of argv wherever they stand; the rest keeps its
 * order. Returns the new argc, or -1 (usage error printed). */
static int novactl_globals_take(struct novactl_globals *g, int argc, char **argv)
{
	static const struct {
		const char *name;
		size_t off;
	} flags[] = {
		{"--server", offsetof(struct novactl_globals, server)},
		{"--token", offsetof(struct novactl_globals, token)},
		{"--output", offsetof(struct novactl_globals, output)},
		{"-o", offsetof(struct novactl_globals, output)},
		{"--context", offsetof(struct novactl_globals, context)},
	};
	int out = 0;
	for (int i = 0; i < argc; i++) {
		size_t f;
		const char *val = NULL;
		if (!strcmp(argv[i], "--no-headers")) {
			g->no_headers = true;
			continue;
		}
		for (f = 0; f < sizeof(flags) / sizeof(flags[0]); f++) {
			size_t l = strlen(flags[f].name);
			if (strcmp(argv[i], flags[f].name) == 0) {
				if (i + 1 >= argc) {
					fprintf(stderr, "novactl: %s needs a value\n", flags[f].name);
					return -1;
				}
				val = argv[++i];
				break;
			}
			if (strncmp(argv[i], flags[f].name, l) == 0 && argv[i][l] == '=') {
				val = argv[i] + l + 1;
				break;
			}
		}
		if (f < sizeof(flags) / sizeof(flags[0]))
			*(const char **)((char *)g + flags[f].off) = val;
		else
			argv[out++] = argv[i];
	}
	return out;
}

/* "novactl __complete WORD... CURRENT": the candidates for CURRENT, one a
 * line (the shell filters them by what is typed). Nothing is sent. */
static int novactl_complete(struct cli_ctx *ctx, int n, char **w)
{
	static const char *const globals[] = {"--server", "--token", "--context", "-o",
					      "--no-headers", "--help"};
	struct cli_args a;
	ctx->complete = true;
	if (n >= 2 && (!strcmp(w[n - 2], "-o") || !strcmp(w[n - 2], "--output"))) {
		fputs("table\nwide\njson\nyaml\nname\n", ctx->out);
		return 0;
	}
	if (n >= 2 && !strcmp(w[n - 2], "completion")) {
		fputs("bash\nzsh\n", ctx->out);
		return 0;
	}
	/* Global flags and their values stand anywhere: skip them. */
	char *words[CLI_ARGS_MAX];
	int k = 0;
	for (int i = 0; i < n - 1 && k < CLI_ARGS_MAX; i++) {
		if (!strcmp(w[i], "--server") || !strcmp(w[i], "--token") || !strcmp(w[i], "-o") ||
		    !strcmp(w[i], "--output") || !strcmp(w[i], "--context")) {
			i++;
			continue;
		}
		if (!strcmp(w[i], "--no-headers"))
			continue;
		words[k++] = w[i];
	}
	if (k == 0) {
		for (size_t i = 0; i < sizeof(novactl_groups) / sizeof(novactl_groups[0]); i++)
			fprintf(ctx->out, "%s\n", novactl_groups[i].name);
		fputs("version\ncompletion\n", ctx->out);
		for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++)
			fprintf(ctx->out, "%s\n", globals[i]);
		return 0;
	}
	for (size_t i = 0; i < sizeof(novactl_groups) / sizeof(novactl_groups[0]); i++) {
		if (strcmp(words[0], novactl_groups[i].name) != 0)
			continue;
		cli_args_init(&a, 0, NULL);
		/* k == 1: the verb's word is being typed (the verbs); after it,
		 * the verb's flags. Groups without verbs, and deploy (whose model
		 * stands where a verb would), answer with their flags. */
		return novactl_groups[i].fn(ctx, k > 1 ? words[1] : NULL, &a);
	}
	return 0;
}

static bool novactl_wants_help(int n, char **words)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(words[i], "--help") || !strcmp(words[i], "-h"))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct novactl_globals g = {0};
	struct cli_ctx ctx = {.out = stdout, .errout = stderr};
	struct cli_args a;
	struct nova_err err;
	int n, rc;
	signal(SIGPIPE, SIG_IGN);
	nova_err_clear(&err);
	/* Completion sees the words as typed, global flags and all. */
	if (argc > 1 && !strcmp(argv[1], "__complete"))
		return novactl_complete(&ctx, argc - 2, argv + 2);
	n = novactl_globals_take(&g, argc - 1, argv + 1);
	if (n < 0) {
		fputs(novactl_usage_hint, stderr);
		return CLI_EXIT_USAGE;
	}
	char **words = argv + 1;
	if (n == 0) {
		fputs("novactl: no command given\n", stderr);
		fputs(novactl_usage_hint, stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(words[0], "--help") || !strcmp(words[0], "-h") || !strcmp(words[0], "help")) {
		fputs(novactl_usage, stdout);
		return 0;
	}
	if (g.output && cli_output_parse(&ctx.output, g.output) != 0) {
		fprintf(stderr, "novactl: -o must be table, wide, json, yaml or name, not \"%s\"\n",
			g.output);
		fputs(novactl_usage_hint, stderr);
		return CLI_EXIT_USAGE;
	}
	ctx.json = ctx.output == CLI_OUTPUT_JSON || ctx.output == CLI_OUTPUT_YAML ||
		   ctx.output == CLI_OUTPUT_NAME;
	ctx.no_headers = g.no_headers;
	ctx.kind = novactl_kind(words[0]);
	ctx.given_server = g.server;
	if (!strcmp(words[0], "completion")) {
		cli_args_init(&a, n - 1, words + 1);
		return cli_cmd_completion(&ctx, &a);
	}
	/* Help needs no server: a broken config file must not hide it; nor do
	 * the config commands, which are there to mend it. */
	if ((rc = cli_config_resolve(&ctx, g.server, g.token, g.context, &err)) &&
	    !novactl_wants_help(n, words) && strcmp(words[0], "config") != 0) {
		fprintf(stderr, "novactl: %s\n", err.message);
		if (err.hint[0])
			fprintf(stderr, "hint: %s\n", err.hint);
		return rc == NOVA_ENOTFOUND ? nova_code_exit_status(rc) : CLI_EXIT_USAGE;
	}
	if (http_client_global_init(&err)) {
		fprintf(stderr, "novactl: %s\n", err.message);
		return 1;
	}
	if (!strcmp(words[0], "version")) {
		cli_args_init(&a, n - 1, words + 1);
		rc = cli_args_wants_help(&a) ? (fputs("usage: novactl version\n", stdout), 0)
					     : cli_cmd_version(&ctx, &a);
	} else {
		size_t i;
		for (i = 0; i < sizeof(novactl_groups) / sizeof(novactl_groups[0]); i++)
			if (!strcmp(words[0], novactl_groups[i].name))
				break;
		if (i < sizeof(novactl_groups) / sizeof(novactl_groups[0])) {
			if (novactl_groups[i].no_verb) {
				cli_args_init(&a, n - 1, words + 1);
				rc = novactl_groups[i].fn(&ctx, NULL, &a);
			} else {
				const char *verb = n > 1 ? words[1] : NULL;
				cli_args_init(&a, n > 2 ? n - 2 : 0, words + 2);
				rc = novactl_groups[i].fn(&ctx, verb, &a);
			}
		} else {
			if (words[0][0] == '-')
				fprintf(stderr, "novactl: unknown flag %s\n", words[0]);
			else
				fprintf(stderr, "novactl: unknown command \"%s\"\n", words[0]);
			fputs(novactl_usage_hint, stderr);
			rc = CLI_EXIT_USAGE;
		}
	}
	explicit_bzero(ctx.token, sizeof(ctx.token));
	http_client_global_cleanup();
	return rc;
}
