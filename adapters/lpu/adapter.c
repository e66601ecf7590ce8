/* The lpu adapter: local accelerator racks (Groq Nova style). Nodes are the
 * allocated racks' nodes from the datacenter topology; provisioning a node
 * spawns its agent, a detached local nova-sidecar, recorded by a pidfile
 * named by the Nova node id in the machine's run directory (lpu.h), so a
 * retry, a restarted novad or another novad on the machine finds it again
 * instead of starting a twin. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "adapters/lpu/lpu.h"
#include "core/files.h"
#include "core/secret.h"

struct lpu_adapter {
	struct adapter base; /* first member */
	struct lpu_topology *topo;
	struct lpu_allocation alloc;
	bool mock_agents;
	char agent[PATH_MAX];
	char mock_engine[PATH_MAX];
	char run_dir[PATH_MAX];
};

static struct lpu_adapter *lpu_from(struct adapter *ad)
{
	assert(ad && ad->ops == &lpu_adapter_ops);
	return (struct lpu_adapter *)ad;
}

/* A program installed beside the running novad (build/ or PREFIX/bin). */
static void lpu_sibling(char *out, size_t len, const char *name)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		snprintf(out, len, "%s", name);
		return;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	if (snprintf(out, len, "%s/%s", self, name) >= (int)len)
		snprintf(out, len, "%s", name); /* too long a path: let PATH find it */
}

int lpu_agent_resolve(char *out, size_t len, const char *path, struct nova_err *err)
{
	struct stat st;
	if (!path || !*path) {
		lpu_sibling(out, len, "nova-sidecar");
		return 0;
	}
	if (path[0] != '/' || strlen(path) >= len)
		return nova_err_set(err, NOVA_EINVAL, "lpu_agent",
				    "lpu_agent must be the absolute path of the agent program");
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0)
		return nova_err_set(err, NOVA_EINVAL, "lpu_agent",
				    "lpu_agent %s is not an executable file", path);
	snprintf(out, len, "%s", path);
	return 0;
}

int lpu_run_dir_resolve(char *out, size_t len, const char *dir, const char *runtime_dir,
			const char *state_dir, struct nova_err *err)
{
	int n;
	if (dir && *dir) {
		if (dir[0] != '/')
			return nova_err_set(err, NOVA_EINVAL, "lpu_run_dir",
					    "lpu_run_dir must be an absolute path");
		n = snprintf(out, len, "%s", dir);
	} else if (geteuid() == 0) {
		n = snprintf(out, len, "/run/nova/lpu");
	} else if (runtime_dir && runtime_dir[0] == '/') {
		n = snprintf(out, len, "%s/nova/lpu", runtime_dir);
	} else {
		n = snprintf(out, len, "%s/lpu", state_dir);
	}
	/* Room for "/<pool id>/<node id>.pid" under it. */
	if (n < 0 || (size_t)n + 128 >= len) {
		if (len)
			out[0] = '\0';
		return nova_err_set(err, NOVA_EINVAL, "lpu_run_dir", "lpu_run_dir is too long");
	}
	return 0;
}

/* novad's lpu settings, resolved in the context once at start: the run
 * directory made, the agent program checked. */
static int lpu_start(struct adapter_context *ctx, struct nova_err *err)
{
	char resolved[ADAPTER_PATH_MAX];
	int rc;
	if ((rc = lpu_agent_resolve(resolved, sizeof(resolved), ctx->lpu_agent, err)))
		return rc;
	snprintf(ctx->lpu_agent, sizeof(ctx->lpu_agent), "%s", resolved);
	if ((rc = lpu_run_dir_resolve(resolved, sizeof(resolved), ctx->lpu_run_dir, ctx->runtime_dir,
				      ctx->state_dir, err)))
		return rc;
	snprintf(ctx->lpu_run_dir, sizeof(ctx->lpu_run_dir), "%s", resolved);
	return files_mkdir_p(ctx->lpu_run_dir, 0700, "lpu_run_dir", err);
}

/* The pool's topology: a file under an allowed directory (core/files.h),
 * or inline text; exactly one. Errors name the field the caller gave. */
static int lpu_config_topology(struct lpu_topology **out, const json_t *config,
			       struct nova_err *err)
{
	const json_t *path = json_object_get(config, "topology");
	const json_t *text = json_object_get(config, "topology_inline");
	char *buf = NULL;
	char real[PATH_MAX];
	size_t len = 0;
	int rc;
	*out = NULL;
	if (path && text)
		return nova_err_set(err, NOVA_EINVAL, "topology_inline",
				    "give topology (a file) or topology_inline (its YAML), not both");
	if (!path && !text)
		return nova_err_set(err, NOVA_EINVAL, "topology",
				    "topology (the absolute path of a datacenter file) or "
				    "topology_inline (its YAML) is required");
	if (text) {
		if (!json_is_string(text) || json_string_length(text) > FILES_READ_MAX)
			return nova_err_set(err, NOVA_EINVAL, "topology_inline",
					    "topology_inline must be the datacenter YAML as a string of "
					    "at most %d bytes", FILES_READ_MAX);
		rc = lpu_topology_parse(out, "topology_inline", json_string_value(text),
					json_string_length(text), err);
		if (rc)
			snprintf(err->field, sizeof(err->field), "topology_inline");
		return rc;
	}
	if (!json_is_string(path))
		return nova_err_set(err, NOVA_EINVAL, "topology",
				    "topology must be the absolute path of a datacenter file");
	if ((rc = files_read_allowed(&buf, &len, real, sizeof(real), json_string_value(path),
				     json_string_length(path), FILES_READ_MAX, "topology", err)))
		return rc;
	rc = lpu_topology_parse(out, real, buf, len, err);
	free(buf);
	if (rc)
		snprintf(err->field, sizeof(err->field), "topology");
	return rc;
}

static int lpu_validate(const json_t *config, struct nova_err *err)
{
	static const char *const keys[] = {"topology", "topology_inline", "allocation", "mock_agents",
					   NULL};
	const char *key;
	json_t *v;
	struct lpu_topology *t;
	struct lpu_allocation a;
	int rc;
	json_object_foreach((json_t *)config, key, v) {
		size_t i;
		for (i = 0; keys[i] && strcmp(keys[i], key); i++)
			;
		if (!strcmp(key, "agent")) {
			nova_err_set(err, NOVA_EINVAL, "agent",
				     "agent is not a pool setting: the program lpu agents run is "
				     "set in novad.yaml");
			nova_err_set_hint(err, "remove agent from the pool config; the operator sets "
					  "lpu_agent in novad.yaml (NOVA_LPU_AGENT)");
			return NOVA_EINVAL;
		}
		if (!keys[i])
			return nova_err_set(err, NOVA_EINVAL, key,
					    "unknown key %.100s (expected topology, topology_inline, "
					    "allocation, mock_agents)", key);
	}
	const char *alloc = json_string_value(json_object_get(config, "allocation"));
	if (!alloc)
		return nova_err_set(err, NOVA_EINVAL, "allocation",
				    "allocation is required, e.g. \"c1r1\" or \"c1r1:c2r2\"");
	if ((v = json_object_get(config, "mock_agents")) && !json_is_boolean(v))
		return nova_err_set(err, NOVA_EINVAL, "mock_agents", "mock_agents must be true or false");
	if ((rc = lpu_config_topology(&t, config, err)))
		return rc;
	rc = lpu_allocation_parse(&a, alloc, t, 0, err);
	lpu_topology_free(t);
	return rc;
}

/* Racks are the unit two pools must not share: "rack c1r1". */
static int lpu_claims(json_t **out, const json_t *config, struct nova_err *err)
{
	struct lpu_allocation a;
	int rc;
	*out = NULL;
	if ((rc = lpu_allocation_parse(&a, json_string_value(json_object_get(config, "allocation")),
				       NULL, 0, err)))
		return rc;
	if (!(*out = json_array()))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	for (size_t g = 0; g < a.n_groups; g++)
		for (size_t k = 0; k < a.groups[g].n; k++) {
			char name[48];
			snprintf(name, sizeof(name), "rack c%ur%u", a.groups[g].racks[k].cluster,
				 a.groups[g].racks[k].rack);
			if (json_array_append_new(*out, json_string(name))) {
				json_decref(*out);
				*out = NULL;
				return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
			}
		}
	return 0;
}

/* The conductor's layout: the datacenter file's text goes inline (the
 * operator named the file on novad's command line, so it need not lie
 * under provider_files), the allocation as given. The allocation is
 * checked against the model's stage count here, the racks against the
 * topology by validate when the pool is made. */
static int lpu_config_from_layout(json_t **out, const struct adapter_layout *layout,
				  struct nova_err *err)
{
	struct lpu_allocation alloc;
	int rc;
	*out = NULL;
	if ((rc = lpu_allocation_parse(&alloc, layout->selection, NULL, layout->stages, err)))
		return rc;
	if (!(*out = json_pack("{s:s, s:s, s:b}", "topology_inline", layout->inventory, "allocation",
			       layout->selection, "mock_agents", layout->mock_agents)))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	return 0;
}

static int lpu_create(struct adapter **out, const struct adapter_context *ctx, const char *pool_id,
		      const json_t *config, struct nova_err *err)
{
	struct lpu_adapter *la = calloc(1, sizeof(*la));
	char runs[PATH_MAX];
	int rc;
	*out = NULL;
	if (!la)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	la->base.ops = &lpu_adapter_ops;
	la->base.ephemeral = false;
	if ((rc = lpu_config_topology(&la->topo, config, err)) ||
	    (rc = lpu_allocation_parse(&la->alloc, json_string_value(json_object_get(config, "allocation")),
				       la->topo, 0, err)))
		goto fail;
	la->mock_agents = json_is_true(json_object_get(config, "mock_agents"));
	/* Unresolved only in a process that never called adapters_start (a
	 * test's): the agent beside it, the state directory's run dir. */
	if (ctx->lpu_agent[0])
		snprintf(la->agent, sizeof(la->agent), "%s", ctx->lpu_agent);
	else
		lpu_sibling(la->agent, sizeof(la->agent), "nova-sidecar");
	lpu_sibling(la->mock_engine, sizeof(la->mock_engine), "nova-mock-engine");
	if (ctx->lpu_run_dir[0])
		snprintf(runs, sizeof(runs), "%.3000s", ctx->lpu_run_dir);
	else
		snprintf(runs, sizeof(runs), "%.3000s/lpu", ctx->state_dir);
	snprintf(la->run_dir, sizeof(la->run_dir), "%.3000s/%s", runs, pool_id);
	if ((rc = files_mkdir_p(la->run_dir, 0700, "lpu_run_dir", err)))
		goto fail;
	*out = &la->base;
	return 0;
fail:
	lpu_topology_free(la->topo);
	free(la);
	return rc;
}

static void lpu_destroy(struct adapter *ad)
{
	struct lpu_adapter *la = lpu_from(ad);
	lpu_topology_free(la->topo);
	free(la);
}

/* The agent recorded for a node, if it is alive. */
static pid_t lpu_agent_pid(struct lpu_adapter *la, const char *node_id)
{
	char path[PATH_MAX + 64];
	FILE *f;
	long pid = 0;
	snprintf(path, sizeof(path), "%s/%s.pid", la->run_dir, node_id);
	if (!(f = fopen(path, "r")))
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 0 || kill((pid_t)pid, 0) != 0)
		return 0;
	/* A recycled pid is not our agent: its command line names the node. */
	char cmdpath[64], cmd[4096];
	snprintf(cmdpath, sizeof(cmdpath), "/proc/%ld/cmdline", pid);
	int fd = open(cmdpath, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, cmd, sizeof(cmd) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0;
	for (ssize_t i = 0; i < n; i++)
		if (!cmd[i])
			cmd[i] = ' ';
	cmd[n] = '\0';
	return strstr(cmd, node_id) ? (pid_t)pid : 0;
}

static void lpu_agent_stop(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 100 && kill(pid, 0) == 0; i++) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (kill(pid, 0) == 0)
		kill(pid, SIGKILL);
}

static const struct lpu_node *lpu_node_find(struct lpu_adapter *la, const char *name)
{
	for (size_t g = 0; g < la->alloc.n_groups; g++)
		for (size_t k = 0; k < la->alloc.groups[g].n; k++) {
			const struct lpu_rack *r = lpu_topology_rack(la->topo, la->alloc.groups[g].racks[k].cluster,
								     la->alloc.groups[g].racks[k].rack);
			for (size_t i = 0; r && i < r->n_nodes; i++)
				if (!strcmp(r->nodes[i].name, name))
					return &r->nodes[i];
		}
	return NULL;
}

/* Start a node's agent, detached: a double fork makes it init's child (it
 * outlives novad and never becomes our zombie). The token goes in the
 * environment, not the command line other users can read. A close-on-exec
 * pipe tells when the agent has exec'd (EOF) or why exec failed (errno), so
 * its pid is recorded only once its command line names the node: before
 * that, lpu_agent_pid would not recognise it and a retry would start a
 * twin. The pidfile is written whole (rename). */
static int lpu_agent_spawn(struct lpu_adapter *la, const struct adapter_provision_request *req,
			   const char *pidpath, const char *logpath, struct nova_err *err)
{
	char tmp[PATH_MAX + 80];
	int pfd[2], status, exec_errno = 0;
	pid_t agent = 0;
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return nova_err_set(err, NOVA_EAGAIN, "", "pipe: %s", strerror(errno));
	pid_t mid = fork();
	if (mid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return nova_err_set(err, NOVA_EAGAIN, "", "fork: %s", strerror(errno));
	}
	if (mid == 0) {
		setsid();
		pid_t a = fork();
		if (a != 0) {
			ssize_t w = write(pfd[1], &a, sizeof(a));
			_exit(a > 0 && w == (ssize_t)sizeof(a) ? 0 : 1);
		}
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setenv("NOVA_NODE_TOKEN", req->node_token, 1);
		/* The agent writes its log (and its engines' output) itself,
		 * capped and rotated (--log-file; its size and count from
		 * NOVA_SIDECAR_LOG_MAX_BYTES and NOVA_SIDECAR_LOG_KEEP in
		 * novad's environment): fds 1 and 2 above only catch what it
		 * says before it opens the log. */
		if (la->mock_agents)
			execl(la->agent, la->agent, "--gateway", req->gateway_url, "--node-id",
			      req->node_id, "--log-file", logpath, "--mock-engine", la->mock_engine,
			      (char *)NULL);
		else
			execl(la->agent, la->agent, "--gateway", req->gateway_url, "--node-id",
			      req->node_id, "--log-file", logpath, (char *)NULL);
		int e = errno;
		if (write(pfd[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pfd[1]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	ssize_t n;
	while ((n = read(pfd[0], &agent, sizeof(agent))) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(agent) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		close(pfd[0]);
		return nova_err_set(err, NOVA_EAGAIN, "", "could not start the agent");
	}
	/* Blocks until the agent's end of the pipe closes: at exec. */
	while ((n = read(pfd[0], &exec_errno, sizeof(exec_errno))) < 0 && errno == EINTR)
		;
	close(pfd[0]);
	if (n > 0)
		return nova_err_set(err, NOVA_EFAILED, "", "cannot run the agent %s: %s", la->agent,
				    strerror(exec_errno));
	snprintf(tmp, sizeof(tmp), "%s.tmp", pidpath);
	FILE *pf = fopen(tmp, "w");
	bool ok = pf && fprintf(pf, "%ld\n", (long)agent) > 0;
	if (pf && fclose(pf) != 0)
		ok = false;
	if (!ok || rename(tmp, pidpath) != 0) {
		/* Unrecorded, it would be an orphan: stop it. */
		kill(agent, SIGKILL);
		unlink(tmp);
		return nova_err_set(err, NOVA_EAGAIN, "", "cannot record the agent in %s: %s", pidpath,
				    strerror(errno));
	}
	return 0;
}

static int lpu_provision(struct adapter_node_info *out, struct adapter *ad,
			 const struct adapter_provision_request *req, struct nova_err *err)
{
	struct lpu_adapter *la = lpu_from(ad);
	char pidpath[PATH_MAX + 64], tokpath[PATH_MAX + 64], logpath[PATH_MAX + 64];
	char hash[SECRET_HEX_SHA256_LEN] = "", old[SECRET_HEX_SHA256_LEN] = "";
	if (!req->handle || !lpu_node_find(la, req->handle))
		return nova_err_set(err, NOVA_EFAILED, "handle", "node %s is not in this pool's racks",
				    req->handle ? req->handle : "(none)");
	if (!req->node_token || !req->gateway_url || !*req->gateway_url)
		return nova_err_set(err, NOVA_EFAILED, "", "an agent needs the gateway url and a node token");
	snprintf(pidpath, sizeof(pidpath), "%s/%s.pid", la->run_dir, req->node_id);
	snprintf(tokpath, sizeof(tokpath), "%s/%s.token", la->run_dir, req->node_id);
	snprintf(logpath, sizeof(logpath), "%s/%s.log", la->run_dir, req->node_id);
	secret_sha256_hex(hash, req->node_token, strlen(req->node_token));
	FILE *f = fopen(tokpath, "r");
	if (f) {
		if (!fgets(old, sizeof(old), f))
			old[0] = '\0';
		fclose(f);
	}
	pid_t pid = lpu_agent_pid(la, req->node_id);
	if (pid > 0 && strcmp(old, hash) != 0) {
		/* Alive with another token (a retried provision issues a new
		 * one): replace it, so there is still one agent. */
		lpu_agent_stop(pid);
		pid = 0;
	}
	if (pid <= 0) {
		int rc = lpu_agent_spawn(la, req, pidpath, logpath, err);
		if (rc)
			return rc;
		if ((f = fopen(tokpath, "w"))) {
			fchmod(fileno(f), 0600);
			fputs(hash, f);
			fclose(f);
		}
		/* It did exec; an agent refusing its arguments exits within
		 * moments. */
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
		if (lpu_agent_pid(la, req->node_id) <= 0)
			return nova_err_set(err, NOVA_EAGAIN, "", "the agent exited at once; see %s", logpath);
	}
	/* The handle, for list_nodes: the contract (adapter.h) has it carry
	 * the one provision gave, and it listed none. Rewritten on every
	 * provision, whole (rename), so it always names the live agent's
	 * node. */
	char hpath[PATH_MAX + 64], htmp[PATH_MAX + 80];
	snprintf(hpath, sizeof(hpath), "%s/%s.handle", la->run_dir, req->node_id);
	snprintf(htmp, sizeof(htmp), "%s.tmp", hpath);
	if (!(f = fopen(htmp, "w")) || fputs(req->handle, f) < 0 || fclose(f) != 0 ||
	    rename(htmp, hpath) != 0) {
		int e = errno;
		if (f)
			unlink(htmp);
		return nova_err_set(err, NOVA_EAGAIN, "", "cannot record the node's handle in %s: %s",
				    hpath, strerror(e));
	}
	snprintf(out->node_id, sizeof(out->node_id), "%s", req->node_id);
	snprintf(out->handle, sizeof(out->handle), "%s", req->handle);
	/* Its address: agents are local processes, and their engines listen
	 * on loopback (the inventory takes endpoints on it only). */
	snprintf(out->endpoint, sizeof(out->endpoint), "127.0.0.1");
	out->state = ADAPTER_NODE_RUNNING;
	snprintf(out->message, sizeof(out->message), "agent running");
	return 0;
}

static int lpu_deprovision(struct adapter *ad, const struct adapter_node_ref *node,
			   struct nova_err *err)
{
	struct lpu_adapter *la = lpu_from(ad);
	char path[PATH_MAX + 64];
	(void)err;
	pid_t pid = lpu_agent_pid(la, node->node_id);
	if (pid > 0)
		lpu_agent_stop(pid);
	snprintf(path, sizeof(path), "%s/%s.pid", la->run_dir, node->node_id);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s.token", la->run_dir, node->node_id);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s.handle", la->run_dir, node->node_id);
	unlink(path);
	return 0;
}

static int lpu_status(struct adapter_node_info *out, struct adapter *ad,
		      const struct adapter_node_ref *node, struct nova_err *err)
{
	struct lpu_adapter *la = lpu_from(ad);
	(void)err;
	snprintf(out->node_id, sizeof(out->node_id), "%s", node->node_id);
	out->state = lpu_agent_pid(la, node->node_id) > 0 ? ADAPTER_NODE_RUNNING : ADAPTER_NODE_GONE;
	snprintf(out->message, sizeof(out->message), "%s",
		 out->state == ADAPTER_NODE_RUNNING ? "agent running" : "no agent");
	return 0;
}

static int lpu_discover(struct adapter_resources *out, struct adapter *ad, struct nova_err *err)
{
	struct lpu_adapter *la = lpu_from(ad);
	size_t n = 0;
	for (size_t g = 0; g < la->alloc.n_groups; g++)
		for (size_t k = 0; k < la->alloc.groups[g].n; k++) {
			const struct lpu_rack *r = lpu_topology_rack(la->topo, la->alloc.groups[g].racks[k].cluster,
								     la->alloc.groups[g].racks[k].rack);
			n += r ? r->n_nodes : 0;
		}
	out->nodes = calloc(n ? n : 1, sizeof(*out->nodes));
	if (!out->nodes)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	for (size_t g = 0; g < la->alloc.n_groups; g++)
		for (size_t k = 0; k < la->alloc.groups[g].n; k++) {
			const struct lpu_rack *r = lpu_topology_rack(la->topo, la->alloc.groups[g].racks[k].cluster,
								     la->alloc.groups[g].racks[k].rack);
			for (size_t i = 0; r && i < r->n_nodes; i++) {
				struct adapter_static_node *sn = &out->nodes[out->n_nodes++];
				char grp[24];
				snprintf(sn->handle, sizeof(sn->handle), "%s", r->nodes[i].name);
				snprintf(sn->accelerator_type, sizeof(sn->accelerator_type), "%s",
					 r->nodes[i].accelerator_type);
				sn->accelerator_count = r->nodes[i].chips;
				sn->memory_mib = r->nodes[i].memory_mib;
				sn->labels = json_deep_copy(r->labels);
				json_object_update(sn->labels, r->nodes[i].labels);
				json_object_set_new(sn->labels, "rack", json_string(r->name));
				snprintf(grp, sizeof(grp), "%zu", g);
				json_object_set_new(sn->labels, "stage_group", json_string(grp));
				sn->reachable = true;
			}
		}
	return 0;
}

/* The handle recorded at provision; "" for an agent started before it was
 * recorded (the reconciler then compares no handle: adapter.h). */
static void lpu_handle_read(char *out, size_t len, struct lpu_adapter *la, const char *node_id)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s.handle", la->run_dir, node_id);
	FILE *f = fopen(path, "r");
	out[0] = '\0';
	if (f && !fgets(out, (int)len, f))
		out[0] = '\0';
	if (f)
		fclose(f);
}

static int lpu_list(struct adapter_node_list *out, struct adapter *ad, struct nova_err *err)
{
	struct lpu_adapter *la = lpu_from(ad);
	DIR *d = opendir(la->run_dir);
	struct dirent *e;
	size_t cap = 0;
	(void)err;
	while (d && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		char id[ADAPTER_ID_LEN];
		if (len != 36 + 4 || strcmp(e->d_name + 36, ".pid") != 0)
			continue;
		snprintf(id, sizeof(id), "%.36s", e->d_name);
		if (lpu_agent_pid(la, id) <= 0)
			continue;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			struct adapter_node_info *v = realloc(out->items, cap * sizeof(*v));
			if (!v)
				break;
			out->items = v;
		}
		memset(&out->items[out->n], 0, sizeof(out->items[0]));
		snprintf(out->items[out->n].node_id, ADAPTER_ID_LEN, "%s", id);
		lpu_handle_read(out->items[out->n].handle, sizeof(out->items[0].handle), la, id);
		out->items[out->n].state = ADAPTER_NODE_RUNNING;
		out->n++;
	}
	if (d)
		closedir(d);
	return 0;
}

const struct adapter_ops lpu_adapter_ops = {
	.name = "lpu",
	.machine_bound = true, /* agents are this machine's processes */
	.validate = lpu_validate,
	.create = lpu_create,
	.destroy = lpu_destroy,
	.provision_node = lpu_provision,
	.deprovision_node = lpu_deprovision,
	.node_status = lpu_status,
	.discover_resources = lpu_discover,
	.list_nodes = lpu_list,
	.claims = lpu_claims,
	.start = lpu_start,
	.config_from_layout = lpu_config_from_layout,
};
