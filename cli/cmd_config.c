/* novactl config: the named contexts of ~/.config/nova/config.yaml, and
 * novactl completion. The file is read as YAML and written whole (a
 * temporary file beside it, mode 0600, renamed over it), keeping what it
 * holds besides the contexts; tokens are never printed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/http_client.h"
#include "core/ydoc.h"

#define CONFIG_USAGE                                                                          \
	"novactl config get-contexts|current-context|use-context NAME|"                         \
	"set-context NAME [--server URL] [--token-file FILE]|delete-context NAME"
#define GET_USAGE "novactl config get-contexts"
#define CURRENT_USAGE "novactl config current-context"
#define USE_USAGE "novactl config use-context NAME"
#define SET_USAGE "novactl config set-context NAME [--server URL] [--token-file FILE]"
#define DELETE_USAGE "novactl config delete-context NAME"

/* The file as JSON ({} when it does not exist). */
static int cfg_read(json_t **out, struct cli_ctx *ctx)
{
	char path[1024];
	struct nova_err err;
	cli_config_path(path, sizeof(path));
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		*out = json_object();
		return 0;
	}
	struct ydoc *d;
	if (ydoc_load_file(&d, path, &err) != 0) {
		fprintf(ctx->errout, "novactl: %s\n", err.message);
		return CLI_EXIT_USAGE;
	}
	/* Empty, or comments only: nothing set yet. */
	int rc = ydoc_root(d) ? ydoc_to_json(out, d, ydoc_root(d), &err) : 0;
	if (!ydoc_root(d))
		*out = json_object();
	ydoc_destroy(d);
	if (rc) {
		fprintf(ctx->errout, "novactl: %s\n", err.message);
		return CLI_EXIT_USAGE;
	}
	if (!json_is_object(*out)) {
		fprintf(ctx->errout, "novactl: %s: expected a mapping\n", path);
		json_decref(*out);
		*out = NULL;
		return CLI_EXIT_USAGE;
	}
	json_t *list = json_object_get(*out, "contexts");
	if (list && !json_is_array(list)) {
		fprintf(ctx->errout, "novactl: %s: contexts: expected a list\n", path);
		json_decref(*out);
		*out = NULL;
		return CLI_EXIT_USAGE;
	}
	return 0;
}

/* mkdir -p for the file's directory, 0700 for what it creates. */
static int cfg_mkdirs(const char *path)
{
	char dir[1024];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

static int cfg_write(struct cli_ctx *ctx, const json_t *doc)
{
	char path[1024], tmp[1100];
	cli_config_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	int fd = -1;
	FILE *f = NULL;
	if (cfg_mkdirs(path) != 0 ||
	    (fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0 ||
	    !(f = fdopen(fd, "w"))) {
		fprintf(ctx->errout, "novactl: cannot write %s: %s\n", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return 1;
	}
	int bad = cli_yaml_print(f, doc) != 0;
	bad |= fflush(f) != 0 || fsync(fileno(f)) != 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		fprintf(ctx->errout, "novactl: cannot write %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

/* The context named name in doc's list, and its index; NULL when none. */
static json_t *cfg_find(const json_t *doc, const char *name, size_t *index)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(doc, "contexts"), i, c) {
		const char *n = json_string_value(json_object_get(c, "name"));
		if (n && !strcmp(n, name)) {
			if (index)
				*index = i;
			return c;
		}
	}
	return NULL;
}

static int cfg_missing(struct cli_ctx *ctx, const char *name)
{
	char path[1024];
	cli_config_path(path, sizeof(path));
	fprintf(ctx->errout, "novactl: no context \"%s\" in %s\n", name, path);
	fprintf(ctx->errout, "hint: novactl config get-contexts lists them\n");
	return nova_code_exit_status(NOVA_ENOTFOUND);
}

static int cfg_get(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char *const headers[] = {"CURRENT", "NAME", "SERVER", "TOKEN"};
	json_t *doc = NULL, *c;
	size_t i;
	int rc = cli_args_finish(a, ctx, GET_USAGE);
	if (rc || (rc = cfg_read(&doc, ctx)))
		return rc;
	const char *current = json_string_value(json_object_get(doc, "current-context"));
	json_t *list = json_object_get(doc, "contexts"), *shown = json_array();
	/* What may be shown: never a token, only whether there is one. */
	json_array_foreach(list, i, c) {
		const char *name = json_string_value(json_object_get(c, "name"));
		json_array_append_new(
			shown, json_pack("{s:s?, s:O?, s:b, s:b}", "name", name, "server",
					 json_object_get(c, "server"), "token",
					 json_object_get(c, "token") != NULL, "current",
					 name && current && !strcmp(name, current)));
	}
	if (ctx->json) {
		cli_doc_print(ctx, shown);
	} else {
		struct cli_table t;
		if (cli_table_init(&t, headers, 4, json_array_size(shown)) != 0) {
			rc = 1;
		} else {
			json_array_foreach(shown, i, c) {
				cli_table_fmt(&t, i, 0, "%s",
					      json_is_true(json_object_get(c, "current")) ? "*" : "");
				cli_table_json(&t, i, 1, json_object_get(c, "name"));
				cli_table_json(&t, i, 2, json_object_get(c, "server"));
				cli_table_fmt(&t, i, 3, "%s",
					      json_is_true(json_object_get(c, "token")) ? "set" : "");
			}
			cli_table_finish(&t, ctx);
		}
	}
	json_decref(shown);
	json_decref(doc);
	return rc;
}

static int cfg_current(struct cli_ctx *ctx, struct cli_args *a)
{
	json_t *doc = NULL;
	int rc = cli_args_finish(a, ctx, CURRENT_USAGE);
	if (rc || (rc = cfg_read(&doc, ctx)))
		return rc;
	const char *current = json_string_value(json_object_get(doc, "current-context"));
	if (current)
		fprintf(ctx->out, "%s\n", current);
	else {
		fprintf(ctx->errout, "novactl: no current context is set\n");
		fprintf(ctx->errout, "hint: novactl config use-context NAME\n");
		rc = nova_code_exit_status(NOVA_ENOTFOUND);
	}
	json_decref(doc);
	return rc;
}

static int cfg_use(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *name = cli_arg_positional(a, 0);
	json_t *doc = NULL;
	int rc = cli_args_finish(a, ctx, USE_USAGE);
	if (!rc && !name)
		rc = cli_usage_error(ctx, USE_USAGE, "which context?");
	if (rc || (rc = cfg_read(&doc, ctx)))
		return rc;
	if (!cfg_find(doc, name, NULL))
		rc = cfg_missing(ctx, name);
	else {
		json_object_set_new(doc, "current-context", json_string(name));
		if (!(rc = cfg_write(ctx, doc)))
			fprintf(ctx->out, "switched to context \"%s\"\n", name);
	}
	json_decref(doc);
	return rc;
}

/* The first line of a token file, without its newline. */
static int cfg_token_file(char *out, size_t len, const char *path, struct cli_ctx *ctx)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(ctx->errout, "novactl: cannot read --token-file %s: %s\n", path,
			strerror(errno));
		return CLI_EXIT_USAGE;
	}
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	if (!out[0]) {
		fprintf(ctx->errout, "novactl: --token-file %s is empty\n", path);
		return CLI_EXIT_USAGE;
	}
	return 0;
}

static bool cfg_name_ok(const char *s)
{
	if (!*s || strlen(s) > 100)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.' || *s == '@' || *s == ':'))
			return false;
	return true;
}

static int cfg_set(struct cli_ctx *ctx, struct cli_args *a)
{
	/* --server is novactl's global flag, taken before the command. */
	const char *server = ctx->given_server;
	const char *token_file = cli_arg_value(a, "--token-file");
	const char *name = cli_arg_positional(a, 0);
	char token[512] = "";
	struct nova_err err;
	json_t *doc = NULL;
	int rc = cli_args_finish(a, ctx, SET_USAGE);
	if (!rc && !name)
		rc = cli_usage_error(ctx, SET_USAGE, "which context?");
	if (!rc && !cfg_name_ok(name))
		rc = cli_usage_error(ctx, SET_USAGE,
				     "a context's name is letters, digits and -_.@: (at most 100)");
	if (!rc && server && http_url_check(server, "--server", &err) != 0) {
		fprintf(ctx->errout, "novactl: %s\n", err.message);
		rc = CLI_EXIT_USAGE;
	}
	if (!rc && token_file)
		rc = cfg_token_file(token, sizeof(token), token_file, ctx);
	if (rc || (rc = cfg_read(&doc, ctx))) {
		explicit_bzero(token, sizeof(token));
		return rc;
	}
	json_t *c = cfg_find(doc, name, NULL);
	bool created = !c;
	if (!c) {
		if (!json_object_get(doc, "contexts"))
			json_object_set_new(doc, "contexts", json_array());
		c = json_pack("{s:s}", "name", name);
		json_array_append_new(json_object_get(doc, "contexts"), c);
	}
	if (server)
		json_object_set_new(c, "server", json_string(server));
	if (token[0])
		json_object_set_new(c, "token", json_string(token));
	explicit_bzero(token, sizeof(token));
	if (!(rc = cfg_write(ctx, doc)))
		fprintf(ctx->out, "context \"%s\" %s\n", name, created ? "created" : "updated");
	json_decref(doc);
	return rc;
}

static int cfg_delete(struct cli_ctx *ctx, struct cli_args *a)
{
	const char *name = cli_arg_positional(a, 0);
	json_t *doc = NULL;
	size_t i;
	int rc = cli_args_finish(a, ctx, DELETE_USAGE);
	if (!rc && !name)
		rc = cli_usage_error(ctx, DELETE_USAGE, "which context?");
	if (rc || (rc = cfg_read(&doc, ctx)))
		return rc;
	if (!cfg_find(doc, name, &i)) {
		rc = cfg_missing(ctx, name);
	} else {
		json_array_remove(json_object_get(doc, "contexts"), i);
		const char *current = json_string_value(json_object_get(doc, "current-context"));
		if (current && !strcmp(current, name))
			json_object_del(doc, "current-context");
		if (!(rc = cfg_write(ctx, doc)))
			fprintf(ctx->out, "context \"%s\" deleted\n", name);
	}
	json_decref(doc);
	return rc;
}

int cli_cmd_config(struct cli_ctx *ctx, const char *verb, struct cli_args *a)
{
	static const struct cli_verb verbs[] = {
		{"get-contexts", cfg_get, GET_USAGE},
		{"current-context", cfg_current, CURRENT_USAGE},
		{"use-context", cfg_use, USE_USAGE},
		{"set-context", cfg_set, SET_USAGE},
		{"delete-context", cfg_delete, DELETE_USAGE},
	};
	ctx->kind = "context";
	return cli_verb_dispatch(ctx, "config", CONFIG_USAGE, verbs, sizeof(verbs) / sizeof(verbs[0]),
				 verb, a);
}

/* --- completion ------------------------------------------------------------------ */

/* The scripts ask novactl itself for the candidates of the word being
 * completed (novactl __complete WORD...: commands, verbs, and the flags
 * each verb's usage names), so they never fall behind the commands. */
static const char completion_bash[] =
	"# novactl completion for bash. Load it with\n"
	"#   source <(novactl completion bash)\n"
	"# or save it as /usr/share/bash-completion/completions/novactl.\n"
	"_novactl() {\n"
	"    local cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
	"    local IFS=$'\\n'\n"
	"    COMPREPLY=($(compgen -W \"$(\"${COMP_WORDS[0]}\" __complete \"${COMP_WORDS[@]:1:COMP_CWORD}\" "
	"2>/dev/null)\" -- \"$cur\"))\n"
	"}\n"
	"complete -o default -F _novactl novactl\n";

static const char completion_zsh[] =
	"#compdef novactl\n"
	"# novactl completion for zsh. Load it with\n"
	"#   source <(novactl completion zsh)\n"
	"# after compinit, or save it as _novactl in a directory of $fpath.\n"
	"_novactl() {\n"
	"    local -a c\n"
	"    c=(\"${(@f)$(${words[1]} __complete \"${(@)words[2,CURRENT]}\" 2>/dev/null)}\")\n"
	"    compadd -a c\n"
	"}\n"
	"compdef _novactl novactl\n";

int cli_cmd_completion(struct cli_ctx *ctx, struct cli_args *a)
{
	static const char usage[] = "novactl completion bash|zsh";
	if (cli_args_wants_help(a)) {
		fprintf(ctx->out, "usage: %s\n", usage);
		return 0;
	}
	const char *shell = cli_arg_positional(a, 0);
	int rc = cli_args_finish(a, ctx, usage);
	if (rc)
		return rc;
	if (shell && !strcmp(shell, "bash"))
		fputs(completion_bash, ctx->out);
	else if (shell && !strcmp(shell, "zsh"))
		fputs(completion_zsh, ctx->out);
	else
		return cli_usage_error(ctx, usage, "which shell: bash or zsh?");
	return 0;
}
