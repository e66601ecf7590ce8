/* novactl internals: argument handling, configuration, requests, output.
 * Commands live in cmd_*.c and register in the table in novactl_main.c. */
#ifndef NOVA_CLI_CLI_H
#define NOVA_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/err.h"

#define CLI_EXIT_USAGE 2
/* --wait: the deployment did not get there within --timeout. */
#define CLI_EXIT_TIMEOUT 7
/* --wait: the deployment failed (its reason is printed). */
#define CLI_EXIT_FAILED 8

/* -o: how results print. */
enum cli_output {
	CLI_OUTPUT_TABLE = 0, /* aligned columns with a header row */
	CLI_OUTPUT_WIDE,      /* lists: the table plus each object's ID and CREATED */
	CLI_OUTPUT_JSON,      /* the API's answer, indented */
	CLI_OUTPUT_YAML,      /* the same as YAML */
	CLI_OUTPUT_NAME,      /* KIND/NAME, one a line (kubectl's -o name) */
};

struct cli_ctx {
	char server[1024];
	char token[512];
	char context[128];   /* the config file's context in use; "" for none */
	bool json;           /* a document, not a table: -o json, yaml or name */
	enum cli_output output;
	bool no_headers;     /* --no-headers: tables without their header row */
	const char *kind;    /* the command's object kind ("pool"): -o name's prefix */
	bool complete;       /* novactl __complete: print candidates, run nothing */
	const char *given_server; /* --server as typed (set-context takes it), else NULL */
	FILE *out, *errout;  /* stdout/stderr; tests redirect */
};

/* "table", "wide", "json", "yaml" or "name"; -1 for anything else. */
int cli_output_parse(enum cli_output *out, const char *name);

/* A command's arguments after "GROUP VERB": positionals and --flags, each
 * consumed once; anything left over is a usage error. */
#define CLI_ARGS_MAX 256

struct cli_args {
	int n;
	char **v;
	bool used[CLI_ARGS_MAX];
	bool positional[CLI_ARGS_MAX]; /* used, as a positional (keeps indexes stable) */
	bool bad;            /* a flag lacked its value, or too many words */
	char bad_msg[160];
};

void cli_args_init(struct cli_args *a, int argc, char **argv);
/* "--name VALUE" or "--name=VALUE"; NULL when absent. Marks it used. */
const char *cli_arg_value(struct cli_args *a, const char *flag);
/* The next unused occurrence of a repeatable flag, NULL when none left. */
const char *cli_arg_value_next(struct cli_args *a, const char *flag);
bool cli_arg_flag(struct cli_args *a, const char *flag);
/* The i-th positional (not a flag and not a flag's value). Marks it used. */
const char *cli_arg_positional(struct cli_args *a, int i);
/* 0, or CLI_EXIT_USAGE after printing what was left over. */
int cli_args_finish(struct cli_args *a, struct cli_ctx *ctx, const char *usage);
bool cli_args_wants_help(const struct cli_args *a);

/* Resolve server and token: flags > NOVA_SERVER/NOVA_TOKEN > the config file
 * ($XDG_CONFIG_HOME or ~/.config)/nova/config.yaml > a local novad's state
 * directory (novad.url, admin_token) > the default server.
 * The file holds a server and token at its top, and/or named contexts:
 *   current-context: prod
 *   contexts:
 *     - {name: prod, server: https://nova.example:8420, token: sk-nova-...}
 * The context is flag_context (--context), else NOVA_CONTEXT, else the
 * file's current-context; its server and token stand for the top ones. A
 * context asked for by name that the file lacks is an error (NOVA_ENOTFOUND). */
int cli_config_resolve(struct cli_ctx *ctx, const char *flag_server, const char *flag_token,
		       const char *flag_context, struct nova_err *err);
void cli_config_path(char *buf, size_t len);

/* Send a request; *out gets the parsed JSON answer on success (2xx), or NULL
 * for an empty body. On an error status or transport failure, prints the
 * error and returns the exit status; 0 on success. */
int cli_request(json_t **out, struct cli_ctx *ctx, const char *method, const char *path,
		const json_t *body);
/* An error answer (status, and its body parsed, or NULL) printed as
 * cli_request prints it; returns the exit status. */
int cli_error_print(struct cli_ctx *ctx, long status, const json_t *body);
/* Percent-encode one path segment (or query value) into buf. -1 when it does
 * not fit: a truncated name could address another object, so callers refuse
 * it rather than send it. */
int cli_path_escape(char *buf, size_t len, const char *segment);

/* Append "?name=value" (or "&name=value" once the path has a query) to
 * path (len bytes, *used of them taken), the value percent-encoded;
 * nothing when value is NULL. 0, or a usage error (2) naming --name when
 * it does not fit. */
int cli_query_add(char *path, size_t len, size_t *used, const char *name, const char *value,
		  struct cli_ctx *ctx, const char *usage);

/* Usage error: "novactl: MESSAGE" and the usage line; returns 2. */
int cli_usage_error(struct cli_ctx *ctx, const char *usage, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --- output --------------------------------------------------------------- */

/* Print rows as an aligned table with a header row. cells[r * ncols + c]; a
 * NULL or empty cell prints "-". */
void cli_table_print(FILE *f, const char *const *headers, size_t ncols, const char *const *cells,
		     size_t nrows);
/* A table being filled, row by row: nrows x ncols cells of CLI_CELL_MAX
 * bytes each (longer text is cut). */
#define CLI_CELL_MAX 256
struct cli_table {
	const char *const *headers;
	size_t ncols, nrows;
	char (*cells)[CLI_CELL_MAX];
	const char **ptrs; /* cells, as cli_table_print takes them */
};
/* 0, or -1 when out of memory. */
int cli_table_init(struct cli_table *t, const char *const *headers, size_t ncols, size_t nrows);
/* A cell: a JSON scalar's text (as cli_cell), or formatted text. */
void cli_table_json(struct cli_table *t, size_t row, size_t col, const json_t *v);
void cli_table_fmt(struct cli_table *t, size_t row, size_t col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Print it as cli_table_print does (without the header row with
 * --no-headers), and free it. */
void cli_table_finish(struct cli_table *t, const struct cli_ctx *ctx);

/* The list commands: GET path; with -o json, yaml or name print the answer
 * as cli_doc_print does, else a table of one row per element of the
 * answer's array, each filled by row() (with -o wide, two more columns:
 * each element's "id" and "created_at"). Returns the exit status. */
typedef void (*cli_row_fn)(struct cli_table *t, size_t row, const json_t *item);
struct cli_selector;
/* sel (may be NULL) keeps only the elements whose "labels" match it: the
 * API has no label filter, so lists are filtered here, after the GET. */
int cli_list(struct cli_ctx *ctx, const char *path, const char *const *headers, size_t ncols,
	     cli_row_fn row, const struct cli_selector *sel);

/* -l key=value selectors (kubectl's equality selectors): each -l (or
 * --selector) takes one or more key=value joined by commas; an object
 * matches when its labels hold every pair. */
#define CLI_SELECTOR_MAX 16
struct cli_selector {
	size_t n;
	char key[CLI_SELECTOR_MAX][64];
	char val[CLI_SELECTOR_MAX][128];
};
/* Take every -l and --selector of a; 0, or CLI_EXIT_USAGE after naming the
 * bad one. */
int cli_selector_take(struct cli_selector *s, struct cli_args *a, struct cli_ctx *ctx,
		      const char *usage);
bool cli_selector_match(const struct cli_selector *s, const json_t *labels);

/* "get NAME..." of a kind: GET prefix + each name, in order, printed by
 * print (table output) or gathered into one document (-o json, yaml,
 * name: the object itself for one name, an array for several). A name
 * that fails prints its error and the others still print; the exit status
 * is the first failure's (3 for a missing one), else 0. At least one name
 * is required. */
typedef void (*cli_print_fn)(struct cli_ctx *ctx, const json_t *obj);
int cli_get_each(struct cli_ctx *ctx, struct cli_args *a, const char *usage, const char *prefix,
		 cli_print_fn print);

/* Watches (events --watch, deployment get --watch, --wait): SIGINT ends
 * them cleanly. cli_watch_begin installs the handler; cli_watch_sleep
 * waits ms, false when interrupted meanwhile (or before). */
void cli_watch_begin(void);
bool cli_watch_sleep(unsigned ms);
bool cli_interrupted(void);
/* The flag SIGINT sets, for http_client_request.cancel: a stream ends
 * within a second of an interrupt even while the server is quiet. */
const _Atomic int *cli_interrupt_flag(void);
/* Whether out can still be written (false once the reader went away:
 * SIGPIPE is ignored, so the write fails with EPIPE instead). */
bool cli_out_ok(struct cli_ctx *ctx);

/* deploy/scale/start/stop --wait: poll the deployment (id or name) every
 * second until it is stopped (want_stopped), else running with every
 * wanted replica ready; a progress line on stderr, rewritten in place on a
 * terminal, else a line each time it changes. 0 when reached,
 * CLI_EXIT_FAILED when the deployment failed, CLI_EXIT_TIMEOUT after
 * timeout_s, 130 on SIGINT, or the request's exit status. *final gets
 * the last deployment read (may be NULL when none was). */
int cli_deployment_wait(json_t **final, struct cli_ctx *ctx, const char *ref, bool want_stopped,
			unsigned timeout_s);

/* --- autoscaling policies ------------------------------------------------- */

/* "deploy --autoscale" and "deployment autoscale": a policy typed as
 * key=value pairs joined by commas ("min=0,max=8,target-queue=4"), or
 * "off". Keys: min, max, target-queue, target-tokens, target-ttft-ms,
 * target-tps, window, idle, or the API's own names (min_replicas,
 * target_queue_depth, ...; '-' and '_' alike). min, max, window and idle
 * are integers (window and idle seconds, or with a unit: 90s, 5m, 1h);
 * targets are numbers. *out gets the API's "autoscale" member: an object,
 * or JSON null for "off". 0, or NOVA_EINVAL with err naming the key as
 * typed (field) and what is wrong with it, and *out NULL. Only the syntax
 * is checked: the bounds (min above max, a missing target) are the
 * server's, which names the field autoscale.X. */
int cli_autoscale_parse(json_t **out, const char *spec, struct nova_err *err);
/* A policy on one line, as get and describe show it: "min 0, max 8,
 * target queue depth 4, window 300s, idle 600s"; "off" for null or
 * absent. Returns buf. */
const char *cli_autoscale_summary(char *buf, size_t len, const json_t *policy);
/* The autoscaler's state of a deployment (its "autoscaler" member) on one
 * line: "scaled 0 -> 3: 5 requests waiting (at T; recommends 3)", or
 * "no decision yet"; "" when the deployment has none. Returns buf. */
const char *cli_autoscaler_summary(char *buf, size_t len, const json_t *autoscaler);

/* A finite decimal number typed on the command line ("4", "0.5", "1e3") as
 * JSON: an integer when integral, else a real; NULL when the text is not
 * one (hex, nan and inf are not: JSON cannot carry them). */
json_t *cli_number_json(const char *text);

/* --- rollouts ------------------------------------------------------------- */

/* "deployment update": the PATCH body from a's --model and rollout flags
 * (taken from a, as cli_arg_value does): {"model": ..., "rollout": {...}},
 * "rollout" only when one of its flags is given, and with only those
 * (--no-auto-rollback is "auto_rollback": false). Checked here: --model
 * given, whole numbers and numbers where due, --canary 1 to 99,
 * --max-surge and --max-unavailable not both given as 0. The other bounds
 * are the server's, which names the field rollout.X. 0, or NOVA_EINVAL with
 * err's field the flag (its message names it too) and *out NULL. */
int cli_rollout_body(json_t **out, struct cli_args *a, struct nova_err *err);
/* A deployment's "rollout" (the latest: active or finished) as get and
 * describe show it, nothing for null or absent:
 *   LABEL 1 -> 2 rolling (max surge 1, max unavailable 0)
 *     progress: version 2 ready 2/4; version 1 4 (1 draining)
 *     auto rollback: on (error rate +0.05, TTFT p95 x2, judged after 20 requests)
 *     waiting for: ...    (this line and the next two only when set)
 *     reason: ...
 *     finished: ...
 * LABEL padded to width. The progress counts are the server's (the
 * target version's replicas ready of those it has; the previous one's,
 * draining ones among them); "auto rollback: off" when disabled. A canary
 * says "canary 10%" after its state. */
void cli_rollout_print(FILE *f, const char *label, int width, const json_t *rollout);

/* Pretty JSON (2-space indent) and a newline. */
void cli_json_print(FILE *f, const json_t *v);
/* YAML (block style, keys in the document's order; strings quoted where
 * YAML would read them as something else). 0, or -1 when the emitter
 * failed. */
int cli_yaml_print(FILE *f, const json_t *v);
/* A result as -o asks: JSON, YAML, or for -o name "KIND/NAME" per object
 * (an array's elements, or the object itself; its "name", else its "id"). */
void cli_doc_print(const struct cli_ctx *ctx, const json_t *v);
/* Text of a JSON scalar for a table cell into buf: strings as is, numbers,
 * booleans; null or absent -> "" (printed as "-"). */
const char *cli_cell(char *buf, size_t len, const json_t *v);

/* Load a JSON or YAML file as JSON. */
int cli_load_json_or_yaml(json_t **out, const char *path, struct nova_err *err);

/* A group's verbs ("pool create", "pool list", ...). */
struct cli_verb {
	const char *verb;
	int (*fn)(struct cli_ctx *ctx, struct cli_args *a);
	const char *usage;
};

/* Run the verb of a group, or print help: the group's usage for no verb or
 * "--help", the verb's usage for "VERB --help". With ctx->complete, print
 * the candidates for the next word instead: the verbs (no verb), or the
 * flags named in the verb's usage. */
int cli_verb_dispatch(struct cli_ctx *ctx, const char *group, const char *group_usage,
		      const struct cli_verb *verbs, size_t n_verbs, const char *verb,
		      struct cli_args *a);

/* Commands: each returns an exit status. */
int cli_cmd_version(struct cli_ctx *ctx, struct cli_args *a);
int cli_cmd_pool(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
int cli_cmd_apikey(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
/* "novactl audit [filters]": no verb. */
int cli_cmd_audit(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
int cli_cmd_model(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
/* "novactl deploy MODEL ...": the model stands where a verb would. */
int cli_cmd_deploy(struct cli_ctx *ctx, const char *model, struct cli_args *a);
int cli_cmd_deployment(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
int cli_cmd_node(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
/* "novactl logs DEPLOYMENT [--replica N] [-f] [--tail N]": no verb. */
int cli_cmd_logs(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
/* "novactl events [filters] [--watch]": no verb. */
int cli_cmd_events(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
/* "novactl describe pool|node|deployment|model NAME": the kind is the verb. */
int cli_cmd_describe(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
/* "novactl routes [--model M] [--watch]": no verb; verb is NULL. */
int cli_cmd_routes(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
/* "novactl config get-contexts|current-context|use-context|set-context|
 * delete-context": the config file's contexts; needs no server. */
int cli_cmd_config(struct cli_ctx *ctx, const char *verb, struct cli_args *a);
/* Shell completion: "novactl completion bash|zsh" prints a script that
 * asks "novactl __complete WORD..." for the candidates of the last word. */
int cli_cmd_completion(struct cli_ctx *ctx, struct cli_args *a);
/* With ctx->complete: the flags a usage line names ("--pool", ...), one a
 * line. Returns 0. */
int cli_complete_usage(const struct cli_ctx *ctx, const char *usage);

#endif
