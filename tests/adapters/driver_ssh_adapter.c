/* The ssh adapter's discovery against real sshd hosts; driven by
 * tests/adapters/test_ssh_discover.sh, which makes four hosts (1 and 3 with a
 * fake nvidia-smi reporting two A100s; host 4's key is not in known_hosts)
 * and passes:
 *   NOVA_SSH_HOST1..4, NOVA_SSH_UNUSED, NOVA_SSH_KEY, NOVA_SSH_KNOWN_HOSTS,
 *   NOVA_SSH_INSTALL_DIR (the install dir's path on every host),
 *   NOVA_SSH_INSTALL1 (host 1's install dir, seen from here),
 *   NOVA_SSH_AGENT (the nova-sidecar to install: the context's ssh_sidecar),
 *   NOVA_PROVIDER_FILES (':'-separated directories the key and
 *   known_hosts lie under: core/files.h),
 *   NOVA_SSH_LOG1 (host 1's sshd log), NOVA_SSH_KILL1 (a script that kills
 *   host 1's sshd session processes: its connections drop),
 *   NOVA_SSH_ISOLATE2 (a script after which this machine no longer reaches
 *   host 2, which host 1 still does) */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "adapters/adapter.h"
#include "adapters/ssh/ssh.h"
#include "adapters/ssh/ssh_pool.h"
#include "core/files.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		fail_msg("%s is not set: run tests/adapters/test_ssh_discover.sh", name);
	return v;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Hosts 1-4 and the unused address, in that order. */
static struct adapter *pool(const char *policy)
{
	struct nova_err err = {0};
	struct adapter *ad = NULL;
	json_t *c = json_pack(
		"{s:s, s:s, s:s, s:i, s:i, s:[{s:s,s:s,s:s,s:{s:s}}, {s:s,s:s,s:s}, {s:s,s:s,s:s,s:s},"
		" {s:s,s:s,s:s}, {s:s,s:s,s:s}]}",
		"known_hosts", env("NOVA_SSH_KNOWN_HOSTS"), "host_key_policy", policy,
		"install_dir", env("NOVA_SSH_INSTALL_DIR"),
		"connect_timeout_ms", 800, "command_timeout_ms", 5000, "hosts",
		"address", env("NOVA_SSH_HOST1"), "user", "root", "key", env("NOVA_SSH_KEY"), "labels", "rack", "r1",
		"address", env("NOVA_SSH_HOST2"), "user", "root", "key", env("NOVA_SSH_KEY"),
		"address", env("NOVA_SSH_HOST3"), "user", "root", "key", env("NOVA_SSH_KEY"),
		"accelerator_type", "A100-SXM",
		"address", env("NOVA_SSH_HOST4"), "user", "root", "key", env("NOVA_SSH_KEY"),
		"address", env("NOVA_SSH_UNUSED"), "user", "root", "key", env("NOVA_SSH_KEY"));
	assert_non_null(c);
	if (adapter_create(&ad, &ssh_adapter_ops, "00000000-0000-0000-0000-000000000007", c, &err))
		fail_msg("create: %s: %s", err.field, err.message);
	json_decref(c);
	return ad;
}

static const char *label(const struct adapter_static_node *n, const char *key)
{
	const char *v = json_string_value(json_object_get(n->labels, key));
	return v ? v : "";
}

static void test_discovery_reports_every_host(void **state)
{
	struct adapter *ad = pool("strict");
	struct adapter_resources res;
	struct nova_err err = {0};
	char handle[64];
	(void)state;
	long long t0 = now_ms();
	assert_int_equal(adapter_discover_resources(&res, ad, &err), 0);
	long long took = now_ms() - t0;
	assert_int_equal(res.n_nodes, 5);

	const struct adapter_static_node *n = &res.nodes[0];
	snprintf(handle, sizeof(handle), "%s:22", env("NOVA_SSH_HOST1"));
	assert_string_equal(n->handle, handle);
	if (!n->reachable)
		fail_msg("host 1: %s", n->reason);
	assert_string_equal(n->accelerator_type, "A100-80G");
	assert_int_equal(n->accelerator_count, 2);
	assert_int_equal(n->memory_mib, 81920);
	assert_string_equal(label(n, "rack"), "r1");
	assert_string_equal(label(n, "hostname"), "nova-host1");
	assert_string_equal(label(n, "gpu_name"), "NVIDIA A100-SXM4-80GB");
	assert_string_equal(label(n, "host"), env("NOVA_SSH_HOST1"));
	assert_true(atoi(label(n, "cpus")) > 0);
	assert_true(atoll(label(n, "memory_mib")) > 0);
	assert_true(strlen(label(n, "os")) > 0);

	n = &res.nodes[1]; /* no nvidia-smi: CPU only */
	assert_true(n->reachable);
	assert_int_equal(n->accelerator_count, 0);
	assert_string_equal(n->accelerator_type, "");
	assert_string_equal(label(n, "hostname"), "nova-host2");

	n = &res.nodes[2]; /* the config names the type */
	assert_true(n->reachable);
	assert_string_equal(n->accelerator_type, "A100-SXM");
	assert_int_equal(n->accelerator_count, 2);

	n = &res.nodes[3]; /* strict, and its key is unknown: listed, with the reason */
	assert_false(n->reachable);
	assert_non_null(strstr(n->reason, "host key is unknown"));
	assert_string_equal(n->accelerator_type, "");

	n = &res.nodes[4]; /* nothing answers */
	assert_false(n->reachable);
	if (!strstr(n->reason, "connect timed out after 800 ms") && !strstr(n->reason, "No route to host"))
		fail_msg("unreachable reason: %s", n->reason);

	/* Capacity of the reachable GPUs, by type. */
	assert_int_equal(res.n_capacity, 2);
	assert_string_equal(res.capacity[0].accelerator_type, "A100-80G");
	assert_int_equal(res.capacity[0].total, 2);
	assert_int_equal(res.capacity[0].max_per_node, 2);
	assert_string_equal(res.capacity[1].accelerator_type, "A100-SXM");
	/* Hosts are probed in parallel: one connect timeout, not one per host. */
	assert_true(took < 3500);
	adapter_resources_finish(&res);
	adapter_destroy(ad);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = calloc(1, 1 << 16);
	assert_non_null(f);
	assert_non_null(buf);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_accept_new_makes_the_unknown_host_reachable(void **state)
{
	struct adapter *ad;
	struct adapter_resources res;
	struct nova_err err = {0};
	char own[1024], want[128];
	char *named = slurp(env("NOVA_SSH_KNOWN_HOSTS")), *now, *mine;
	(void)state;
	ad = pool("accept-new");
	assert_int_equal(adapter_discover_resources(&res, ad, &err), 0);
	if (!res.nodes[3].reachable)
		fail_msg("host 4: %s", res.nodes[3].reason);
	assert_string_equal(label(&res.nodes[3], "hostname"), "nova-host4");
	assert_false(res.nodes[4].reachable);
	adapter_resources_finish(&res);
	adapter_destroy(ad);
	/* Recorded in the pool's own file, seeded from the named one, which
	 * is only read. */
	now = slurp(env("NOVA_SSH_KNOWN_HOSTS"));
	assert_string_equal(now, named);
	snprintf(own, sizeof(own), "%s/ssh/00000000-0000-0000-0000-000000000007/known_hosts",
		 env("NOVA_STATE_DIR"));
	mine = slurp(own);
	snprintf(want, sizeof(want), "[%s]:22 ssh-ed25519 ", env("NOVA_SSH_HOST4"));
	assert_non_null(strstr(mine, want));
	assert_memory_equal(mine, named, strlen(named));
	/* So a strict pool on the named file still refuses host 4. */
	ad = pool("strict");
	assert_int_equal(adapter_discover_resources(&res, ad, &err), 0);
	assert_false(res.nodes[3].reachable);
	assert_non_null(strstr(res.nodes[3].reason, "host key is unknown"));
	adapter_resources_finish(&res);
	adapter_destroy(ad);
	/* And the pool's directory goes with the pool. */
	adapter_forget(&ssh_adapter_ops, "00000000-0000-0000-0000-000000000007");
	assert_int_equal(access(own, F_OK), -1);
	free(named);
	free(now);
	free(mine);
}

static int sidecars_of(const char *node_id)
{
	char cmd[256], buf[32] = "";
	snprintf(cmd, sizeof(cmd), "pgrep -f -- '[n]ova-sidecar --gateway .* --node-id %s' | wc -l", node_id);
	FILE *p = popen(cmd, "r");
	if (!p || !fgets(buf, sizeof(buf), p))
		fail_msg("pgrep failed");
	pclose(p);
	return atoi(buf);
}

static void test_provision_status_list_deprovision(void **state)
{
	static const char id[] = "00000000-0000-4000-8000-0000000000aa";
	struct adapter *ad = pool("strict");
	struct adapter_node_info info;
	struct adapter_node_list list = {0};
	struct nova_err err = {0};
	char handle[64], path[600], buf[512];
	struct adapter_node_ref ref = {.node_id = id, .handle = handle};
	struct adapter_provision_request req = {.node_id = id, .handle = handle,
						.node_token = "tok-secret-1",
						.gateway_url = "http://127.0.0.1:9"};
	(void)state;
	snprintf(handle, sizeof(handle), "%s:22", env("NOVA_SSH_HOST1"));
	if (adapter_provision_node(&info, ad, &req, &err))
		fail_msg("provision: %s", err.message);
	assert_int_equal(info.state, ADAPTER_NODE_RUNNING);
	assert_string_equal(info.node_id, id);
	/* Detached: alive after the session closed; one of it. */
	assert_int_equal(sidecars_of(id), 1);
	snprintf(path, sizeof(path), "%s/nodes/%s/pid", env("NOVA_SSH_INSTALL1"), id);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	long pid1 = atol(buf);
	assert_true(pid1 > 0);
	/* The token: in a 0600 file, not on the command line nor in the
	 * environment; the sidecar removes the file once read (its engines,
	 * running as the same user, must not read it). */
	struct stat st;
	snprintf(path, sizeof(path), "%s/nodes/%s/token", env("NOVA_SSH_INSTALL1"), id);
	assert_int_not_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "/proc/%ld/environ", pid1);
	f = fopen(path, "re");
	if (f) {
		size_t m = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		for (size_t i = 0; i < m; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[m] = '\0';
		assert_null(strstr(buf, "tok-secret"));
	}
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid1);
	f = fopen(path, "re");
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	assert_null(strstr(buf, "tok-secret"));
	char adv[128];
	snprintf(adv, sizeof(adv), "--advertise-host %s", env("NOVA_SSH_HOST1"));
	assert_non_null(strstr(buf, adv));

	/* A retry keeps it; a rotated token replaces it; never two. */
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), 0);
	assert_non_null(strstr(info.message, "kept"));
	assert_int_equal(sidecars_of(id), 1);
	req.node_token = "tok-secret-2";
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), 0);
	assert_non_null(strstr(info.message, "started"));
	assert_int_equal(sidecars_of(id), 1);

	assert_int_equal(adapter_node_status(&info, ad, &ref, &err), 0);
	assert_int_equal(info.state, ADAPTER_NODE_RUNNING);
	assert_int_equal(adapter_list_nodes(&list, ad, &err), 0);
	assert_int_equal(list.n, 1); /* host 1 only; unreachable ones skipped */
	assert_string_equal(list.items[0].node_id, id);
	assert_string_equal(list.items[0].handle, handle);
	assert_int_equal(list.items[0].state, ADAPTER_NODE_RUNNING);
	adapter_node_list_finish(&list);

	/* Killed: gone (so the reconciler provisions it again); its marker
	 * stays, and list_nodes reports it failed. */
	snprintf(path, sizeof(path), "%s/nodes/%s/pid", env("NOVA_SSH_INSTALL1"), id);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	long pid2 = atol(buf);
	assert_true(pid2 > 0 && pid2 != pid1);
	assert_int_equal(kill((pid_t)pid2, SIGKILL), 0);
	usleep(200 * 1000);
	assert_int_equal(adapter_node_status(&info, ad, &ref, &err), 0);
	assert_int_equal(info.state, ADAPTER_NODE_GONE);
	assert_string_equal(info.message, "the sidecar is not running");
	assert_int_equal(adapter_list_nodes(&list, ad, &err), 0);
	assert_int_equal(list.n, 1);
	assert_int_equal(list.items[0].state, ADAPTER_NODE_FAILED);
	adapter_node_list_finish(&list);

	/* Deprovision removes everything, twice is fine, then it is gone. */
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), 0);
	assert_int_equal(sidecars_of(id), 1);
	assert_int_equal(adapter_deprovision_node(ad, &ref, &err), 0);
	assert_int_equal(sidecars_of(id), 0);
	snprintf(path, sizeof(path), "%s/nodes/%s", env("NOVA_SSH_INSTALL1"), id);
	assert_int_not_equal(stat(path, &st), 0);
	assert_int_equal(adapter_deprovision_node(ad, &ref, &err), 0);
	assert_int_equal(adapter_node_status(&info, ad, &ref, &err), 0);
	assert_int_equal(info.state, ADAPTER_NODE_GONE);
	adapter_destroy(ad);
}

/* A host cut in slices: host 1's two A100s as two nodes of one GPU each;
 * a slice's sidecar sees only its GPU, and list_nodes gives back the
 * slice's handle (not the host's, which would look like a twin). */
static void test_a_host_in_slices_of_its_gpus(void **state)
{
	static const char id[] = "00000000-0000-4000-8000-0000000000bb";
	struct adapter *ad = NULL;
	struct adapter_resources res;
	struct adapter_node_info info;
	struct adapter_node_list list = {0};
	struct nova_err err = {0};
	char want[128], path[600], buf[4096];
	(void)state;
	json_t *c = json_pack("{s:s, s:s, s:i, s:[{s:s, s:s, s:s, s:i}]}", "known_hosts",
			      env("NOVA_SSH_KNOWN_HOSTS"), "install_dir", env("NOVA_SSH_INSTALL_DIR"),
			      "command_timeout_ms", 5000, "hosts", "address",
			      env("NOVA_SSH_HOST1"), "user", "root", "key", env("NOVA_SSH_KEY"),
			      "accelerators_per_node", 1);
	if (adapter_create(&ad, &ssh_adapter_ops, "00000000-0000-0000-0000-000000000008", c, &err))
		fail_msg("create: %s: %s", err.field, err.message);
	json_decref(c);
	assert_int_equal(adapter_discover_resources(&res, ad, &err), 0);
	assert_int_equal(res.n_nodes, 2);
	for (size_t i = 0; i < 2; i++) {
		snprintf(want, sizeof(want), "%s:22/gpus=%zu", env("NOVA_SSH_HOST1"), i);
		assert_string_equal(res.nodes[i].handle, want);
		assert_int_equal(res.nodes[i].accelerator_count, 1);
		snprintf(want, sizeof(want), "%zu", i);
		assert_string_equal(label(&res.nodes[i], "gpus"), want);
	}
	assert_int_equal(res.n_capacity, 1);
	assert_int_equal(res.capacity[0].total, 2);
	assert_int_equal(res.capacity[0].max_per_node, 1);
	char handle[ADAPTER_HANDLE_MAX];
	snprintf(handle, sizeof(handle), "%s", res.nodes[1].handle);
	adapter_resources_finish(&res);
	struct adapter_provision_request req = {.node_id = id, .handle = handle,
						.node_token = "tok-slice", .gateway_url = "http://127.0.0.1:9"};
	struct adapter_node_ref ref = {.node_id = id, .handle = handle};
	if (adapter_provision_node(&info, ad, &req, &err))
		fail_msg("provision: %s", err.message);
	assert_string_equal(info.handle, handle);
	/* Its sidecar's environment names GPU 1 only. */
	snprintf(path, sizeof(path), "%s/nodes/%s/pid", env("NOVA_SSH_INSTALL1"), id);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%ld/environ", atol(buf));
	f = fopen(path, "re");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	bool seen = false;
	for (size_t i = 0; i < n; i += strlen(buf + i) + 1)
		seen |= strcmp(buf + i, "CUDA_VISIBLE_DEVICES=1") == 0;
	assert_true(seen);
	assert_int_equal(adapter_list_nodes(&list, ad, &err), 0);
	assert_int_equal(list.n, 1);
	assert_string_equal(list.items[0].handle, handle);
	adapter_node_list_finish(&list);
	assert_int_equal(adapter_node_status(&info, ad, &ref, &err), 0);
	assert_int_equal(info.state, ADAPTER_NODE_RUNNING);
	assert_int_equal(adapter_deprovision_node(ad, &ref, &err), 0);
	assert_int_equal(sidecars_of(id), 0);
	adapter_destroy(ad);
}

static void test_an_unreachable_host_is_retried_not_forgotten(void **state)
{
	static const char id[] = "00000000-0000-4000-8000-0000000000bb";
	struct adapter *ad = pool("strict");
	struct adapter_node_info info;
	struct nova_err err = {0};
	char handle[64];
	struct adapter_node_ref ref = {.node_id = id, .handle = handle};
	struct adapter_provision_request req = {.node_id = id, .handle = handle,
						.node_token = "t", .gateway_url = "http://127.0.0.1:9"};
	(void)state;
	snprintf(handle, sizeof(handle), "%s:22", env("NOVA_SSH_UNUSED"));
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), NOVA_EAGAIN);
	assert_int_equal(adapter_deprovision_node(ad, &ref, &err), NOVA_EAGAIN);
	assert_int_equal(adapter_node_status(&info, ad, &ref, &err), NOVA_EAGAIN);
	req.handle = "10.255.255.1:22";
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), NOVA_EFAILED);
	assert_non_null(strstr(err.message, "is not a host of this pool"));
	adapter_destroy(ad);
}

/* Connections host 1's sshd accepted so far (LogLevel VERBOSE logs each). */
static int accepted1(void)
{
	FILE *f = fopen(env("NOVA_SSH_LOG1"), "re");
	char line[1024];
	int n = 0;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "Accepted publickey for root") != NULL;
	fclose(f);
	return n;
}

static void test_connections_are_reused_and_a_killed_one_replaced(void **state)
{
	static const char id[] = "00000000-0000-4000-8000-0000000000cc";
	struct adapter *ad = pool("strict");
	struct adapter_node_info info;
	struct nova_err err = {0};
	struct ssh_pool_stats st0, st;
	char handle[64];
	struct adapter_node_ref ref = {.node_id = id, .handle = handle};
	(void)state;
	snprintf(handle, sizeof(handle), "%s:22", env("NOVA_SSH_HOST1"));
	ssh_pool_drain();
	ssh_pool_stats(&st0);
	int a0 = accepted1();
	/* Five calls, and adapter instances made and destroyed between them
	 * (as the reconciler does every pass): sshd sees one connection. */
	for (int i = 0; i < 5; i++) {
		if (adapter_node_status(&info, ad, &ref, &err))
			fail_msg("status %d: %s", i, err.message);
		assert_int_equal(info.state, ADAPTER_NODE_GONE);
		adapter_destroy(ad);
		ad = pool("strict");
	}
	assert_int_equal(accepted1(), a0 + 1);
	ssh_pool_stats(&st);
	assert_true(st.opened == st0.opened + 1);
	assert_true(st.reused == st0.reused + 4);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(st.idle, 1);

	/* Its sshd session process killed: the dead connection is dropped and
	 * the next call opens another, with no error to the caller. */
	assert_int_equal(system(env("NOVA_SSH_KILL1")), 0);
	usleep(200 * 1000);
	if (adapter_node_status(&info, ad, &ref, &err))
		fail_msg("status after the kill: %s", err.message);
	assert_int_equal(info.state, ADAPTER_NODE_GONE);
	assert_int_equal(accepted1(), a0 + 2);
	ssh_pool_stats(&st);
	assert_true(st.dropped == st0.dropped + 1);
	assert_true(st.opened == st0.opened + 2);
	adapter_destroy(ad);
	ssh_pool_drain();
}

static void test_the_pool_caps_connections_per_host(void **state)
{
	struct ssh_target t = {.address = env("NOVA_SSH_HOST2"), .port = 22, .user = "root",
			       .key_path = env("NOVA_SSH_KEY"),
			       .known_hosts = env("NOVA_SSH_KNOWN_HOSTS"), .connect_timeout_ms = 300};
	struct ssh_session *a = NULL, *b = NULL;
	struct nova_err err = {0};
	bool reused = true;
	(void)state;
	ssh_pool_drain();
	ssh_pool_set_limits(1, 0, 0);
	assert_int_equal(ssh_pool_get(&a, &reused, &t, &err), 0);
	assert_false(reused);
	/* The one connection is in use: a second caller waits, then hears why. */
	long long t0 = now_ms();
	assert_int_equal(ssh_pool_get(&b, NULL, &t, &err), NOVA_EAGAIN);
	assert_null(b);
	assert_true(now_ms() - t0 >= 250);
	assert_non_null(strstr(err.message, "busy"));
	ssh_pool_put(a);
	assert_int_equal(ssh_pool_get(&b, &reused, &t, &err), 0);
	assert_true(reused);
	assert_ptr_equal(a, b);
	ssh_pool_put(b);
	/* Idle past its time: closed, the next get opens another. */
	ssh_pool_set_limits(0, 0, 1);
	usleep(5 * 1000);
	assert_int_equal(ssh_pool_get(&b, &reused, &t, &err), 0);
	assert_false(reused);
	ssh_pool_put(b);
	ssh_pool_set_limits(SSH_POOL_PER_HOST, SSH_POOL_TOTAL, SSH_POOL_IDLE_MS);
	ssh_pool_drain();
}

/* Host 2 reachable only through host 1: provisioning, status and
 * deprovisioning over the tunnel, pooled like any session. */
static void test_a_host_reached_through_a_jump_host(void **state)
{
	static const char id[] = "00000000-0000-4000-8000-0000000000dd";
	struct nova_err err = {0};
	struct adapter *direct = NULL, *jumped = NULL;
	struct adapter_node_info info;
	char handle[64];
	struct adapter_node_ref ref = {.node_id = id, .handle = handle};
	struct adapter_provision_request req = {.node_id = id, .handle = handle,
						.node_token = "tok-jump", .gateway_url = "http://127.0.0.1:9"};
	struct ssh_pool_stats st0, st;
	(void)state;
	ssh_pool_drain();
	assert_int_equal(system(env("NOVA_SSH_ISOLATE2")), 0);
	snprintf(handle, sizeof(handle), "%s:22", env("NOVA_SSH_HOST2"));
	json_t *c = json_pack("{s:s, s:s, s:i, s:i, s:[{s:s,s:s,s:s}]}",
			      "known_hosts", env("NOVA_SSH_KNOWN_HOSTS"), "install_dir",
			      env("NOVA_SSH_INSTALL_DIR"),
			      "connect_timeout_ms", 800, "command_timeout_ms", 10000, "hosts",
			      "address", env("NOVA_SSH_HOST2"), "user", "root", "key", env("NOVA_SSH_KEY"));
	assert_int_equal(adapter_create(&direct, &ssh_adapter_ops, "00000000-0000-0000-0000-000000000008",
					c, &err), 0);
	/* Directly: unreachable now. */
	assert_int_equal(adapter_node_status(&info, direct, &ref, &err), NOVA_EAGAIN);
	json_object_set_new(json_array_get(json_object_get(c, "hosts"), 0), "proxy_jump",
			    json_pack("{s:s, s:s, s:s}", "address", env("NOVA_SSH_HOST1"), "user", "root",
				      "key", env("NOVA_SSH_KEY")));
	if (adapter_create(&jumped, &ssh_adapter_ops, "00000000-0000-0000-0000-000000000008", c, &err))
		fail_msg("create with proxy_jump: %s: %s", err.field, err.message);
	json_decref(c);
	ssh_pool_stats(&st0);
	if (adapter_provision_node(&info, jumped, &req, &err))
		fail_msg("provision through the jump host: %s", err.message);
	assert_int_equal(info.state, ADAPTER_NODE_RUNNING);
	assert_int_equal(adapter_node_status(&info, jumped, &ref, &err), 0);
	assert_int_equal(info.state, ADAPTER_NODE_RUNNING);
	ssh_pool_stats(&st);
	assert_true(st.opened == st0.opened + 1); /* one tunnelled session, reused */
	assert_int_equal(adapter_deprovision_node(jumped, &ref, &err), 0);
	assert_int_equal(adapter_node_status(&info, jumped, &ref, &err), 0);
	assert_int_equal(info.state, ADAPTER_NODE_GONE);
	adapter_destroy(jumped);
	adapter_destroy(direct);
	ssh_pool_drain();
}

int main(void)
{
	/* What novad sets from its configuration before threads start. */
	const char *dirs[FILES_ALLOWED_MAX];
	char list[4096];
	size_t n = 0;
	struct nova_err err = {0};
	snprintf(list, sizeof(list), "%s", getenv("NOVA_PROVIDER_FILES") ? getenv("NOVA_PROVIDER_FILES") : "");
	for (char *save = NULL, *d = strtok_r(list, ":", &save); d && n < FILES_ALLOWED_MAX;
	     d = strtok_r(NULL, ":", &save))
		dirs[n++] = d;
	static struct adapter_context ctx;
	snprintf(ctx.ssh_sidecar, sizeof(ctx.ssh_sidecar), "%s",
		 getenv("NOVA_SSH_AGENT") ? getenv("NOVA_SSH_AGENT") : "");
	if (files_allowed_set(dirs, n, "NOVA_PROVIDER_FILES", &err) ||
	    adapter_register(&ssh_adapter_ops, &err) || adapters_start(&ctx, &err)) {
		fprintf(stderr, "driver: %s\n", err.message);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_discovery_reports_every_host),
		cmocka_unit_test(test_accept_new_makes_the_unknown_host_reachable),
		cmocka_unit_test(test_provision_status_list_deprovision),
		cmocka_unit_test(test_a_host_in_slices_of_its_gpus),
		cmocka_unit_test(test_an_unreachable_host_is_retried_not_forgotten),
		cmocka_unit_test(test_connections_are_reused_and_a_killed_one_replaced),
		cmocka_unit_test(test_the_pool_caps_connections_per_host),
		/* Last: it cuts this machine off from host 2. */
		cmocka_unit_test(test_a_host_reached_through_a_jump_host),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	ssh_pool_drain();
	return failed;
}
