/* The ssh provider without hosts: config validation (every bad field named),
 * the discovery output parser, and GPU names to accelerator types. Key files
 * are made with ssh-keygen (openssh-client, in make deps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "adapters/adapter.h"
#include "adapters/ssh/ssh.h"
#include "core/files.h"

static char dir[] = "/tmp/nova-ssh-config.XXXXXX";
static char ed_key[128], rsa_key[128], kh[128];

static int keys_setup(void **state)
{
	char cmd[512];
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(ed_key, sizeof(ed_key), "%s/ed", dir);
	snprintf(rsa_key, sizeof(rsa_key), "%s/rsa", dir);
	snprintf(kh, sizeof(kh), "%s/known_hosts", dir);
	snprintf(cmd, sizeof(cmd),
		 "ssh-keygen -q -t ed25519 -N '' -f %s && ssh-keygen -q -t rsa -b 2048 -N '' -f %s && : >%s",
		 ed_key, rsa_key, kh);
	if (system(cmd) != 0)
		return -1;
	/* As novad does from provider_files: only this directory. */
	const char *dirs[] = {dir};
	struct nova_err err = {0};
	return files_allowed_set(dirs, 1, "provider_files", &err) == 0 ? 0 : -1;
}

static int keys_teardown(void **state)
{
	char cmd[256];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static json_t *config(const char *hosts_json, const char *extra)
{
	char buf[2048];
	json_error_t je;
	snprintf(buf, sizeof(buf), "{\"known_hosts\": \"%s\", \"hosts\": %s%s%s}", kh, hosts_json,
		 extra ? ", " : "", extra ? extra : "");
	json_t *c = json_loads(buf, 0, &je);
	if (!c)
		fail_msg("bad test json %s: %s", buf, je.text);
	return c;
}

static void test_valid_configs_pass(void **state)
{
	struct nova_err err = {0};
	char hosts[1024];
	(void)state;
	json_t *c = config("[{\"address\": \"10.0.0.2\", \"user\": \"root\"}]", NULL);
	assert_int_equal(ssh_adapter_ops.validate(c, &err), 0);
	json_decref(c);
	snprintf(hosts, sizeof(hosts),
		 "[{\"address\": \"gpu1.example\", \"port\": 2222, \"user\": \"nova\", \"key\": \"%s\","
		 " \"labels\": {\"rack\": \"a\"}, \"accelerator_type\": \"A100-80G\"},"
		 " {\"address\": \"gpu1.example\", \"user\": \"nova\", \"proxy_jump\": {\"address\": \"bastion\","
		 " \"port\": 2200, \"user\": \"jump\"}}, {\"address\": \"fe80::1\", \"user\": \"n\"}]",
		 ed_key);
	c = config(hosts, "\"host_key_policy\": \"accept-new\", \"install_dir\": \"/srv/nova\","
			  " \"connect_timeout_ms\": 500, \"command_timeout_ms\": 60000");
	if (ssh_adapter_ops.validate(c, &err))
		fail_msg("%s: %s", err.field, err.message);
	struct adapter *ad = NULL;
	assert_int_equal(adapter_create(&ad, &ssh_adapter_ops, "00000000-0000-0000-0000-000000000001",
					c, &err), 0);
	assert_false(adapter_is_ephemeral(ad));
	adapter_destroy(ad);
	json_decref(c);
}

static void test_bad_configs_name_the_field(void **state)
{
	static const struct {
		const char *hosts, *extra, *field, *words;
	} cases[] = {
		{"[]", NULL, "hosts", "non-empty array"},
		{"{}", NULL, "hosts", "non-empty array"},
		{"[7]", NULL, "hosts[0]", "must be an object"},
		{"[{\"address\": \"a\", \"user\": \"u\"}, {\"address\": \"b\", \"user\": \"u\", \"port\": 0}]",
		 NULL, "hosts[1].port", "1 to 65535"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"port\": \"22\"}]", NULL, "hosts[0].port", "integer"},
		{"[{\"address\": \"a\"}]", NULL, "hosts[0].user", "user is required"},
		{"[{\"address\": \"a\", \"user\": \"-oProxyCommand=x\"}]", NULL, "hosts[0].user", "letters"},
		{"[{\"address\": \"a b\", \"user\": \"u\"}]", NULL, "hosts[0].address", "IP address or host name"},
		{"[{\"user\": \"u\"}]", NULL, "hosts[0].address", "IP address"},
		{"[{\"address\": \"-oProxyCommand=x\", \"user\": \"u\"}]", NULL, "hosts[0].address", "IP address"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"proxy\": \"b\"}]", NULL, "hosts[0].proxy", "unknown key proxy"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"key\": \"id_ed25519\"}]", NULL, "hosts[0].key", "absolute path"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"key\": \"/nonexistent/k\"}]", NULL, "hosts[0].key",
		 "not under an allowed directory"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"labels\": [\"x\"]}]", NULL, "hosts[0].labels", "object"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"labels\": {\"zone\": 1}}]", NULL, "hosts[0].labels.zone",
		 "must be a string"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"accelerator_type\": \"\"}]", NULL,
		 "hosts[0].accelerator_type", "1 to"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"accelerators_per_node\": 0}]", NULL,
		 "hosts[0].accelerators_per_node", "from 1 to 64"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"accelerators_per_node\": \"2\"}]", NULL,
		 "hosts[0].accelerators_per_node", "from 1 to 64"},
		{"[{\"address\": \"a\", \"user\": \"u\"}, {\"address\": \"a\", \"user\": \"v\", \"port\": 22}]", NULL,
		 "hosts[1].address", "hosts[0] and hosts[1] are the same host (a:22)"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"proxy_jump\": \"b\"}]", NULL, "hosts[0].proxy_jump",
		 "must be an object"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"proxy_jump\": {\"address\": \"b\"}}]", NULL,
		 "hosts[0].proxy_jump.user", "proxy_jump.user is required"},
		{"[{\"address\": \"a\", \"user\": \"u\"}, {\"address\": \"c\", \"user\": \"u\", \"proxy_jump\":"
		 " {\"address\": \"b\", \"user\": \"u\", \"port\": 0}}]", NULL, "hosts[1].proxy_jump.port", "1 to 65535"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"proxy_jump\": {\"address\": \"b\", \"user\": \"u\","
		 " \"key\": \"k\"}}]", NULL, "hosts[0].proxy_jump.key", "absolute path"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"proxy_jump\": {\"address\": \"b\", \"user\": \"u\","
		 " \"proxy_jump\": {}}}]", NULL, "hosts[0].proxy_jump.proxy_jump", "unknown key proxy_jump"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"hostz\": 1", "hostz", "unknown key hostz"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"host_key_policy\": \"yes\"", "host_key_policy",
		 "strict or accept-new"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"install_dir\": \"/\"", "install_dir", "other than /"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"install_dir\": \"/opt/../etc\"", "install_dir", "without .."},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"install_dir\": \"opt\"", "install_dir", "absolute"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"agent\": \"/bin/sh\"", "agent",
		 "agent is not a pool setting"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"key\": \"/etc/shadow\"}]", NULL, "hosts[0].key",
		 "not under an allowed directory"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"key\": \"/proc/self/environ\"}]", NULL,
		 "hosts[0].key", "not under an allowed directory"},
		{"[{\"address\": \"a\", \"user\": \"u\", \"proxy_jump\": {\"address\": \"b\", \"user\": \"u\","
		 " \"key\": \"/dev/ptmx\"}}]", NULL, "hosts[0].proxy_jump.key", "not under an allowed directory"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"known_hosts_inline\": \"\"", "known_hosts_inline",
		 "not both"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"mock_agents\": \"yes\"", "mock_agents",
		 "true or false"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"connect_timeout_ms\": 5", "connect_timeout_ms",
		 "from 100 to 3600000"},
		{"[{\"address\": \"a\", \"user\": \"u\"}]", "\"command_timeout_ms\": true", "command_timeout_ms",
		 "integer"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct nova_err err = {0};
		json_t *c = config(cases[i].hosts, cases[i].extra);
		int rc = ssh_adapter_ops.validate(c, &err);
		json_decref(c);
		if (rc != NOVA_EINVAL || strcmp(err.field, cases[i].field) != 0 ||
		    !strstr(err.message, cases[i].words))
			fail_msg("case %zu: want %s \"%s\", got %d %s \"%s\"", i, cases[i].field,
				 cases[i].words, rc, err.field, err.message);
	}
}

static void test_known_hosts_is_required_and_absolute(void **state)
{
	struct nova_err err = {0};
	(void)state;
	json_t *c = json_pack("{s:[{s:s,s:s}]}", "hosts", "address", "a", "user", "u");
	assert_int_equal(ssh_adapter_ops.validate(c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "known_hosts");
	json_object_set_new(c, "known_hosts", json_string("known_hosts"));
	assert_int_equal(ssh_adapter_ops.validate(c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "known_hosts");
	json_decref(c);
}

/* A key named through a symlink or "../" out of the allowed directory is
 * refused like any outside path; one inside works; the known_hosts file
 * may be given inline instead. */
static void test_key_paths_resolve_before_the_allowed_check(void **state)
{
	struct nova_err err = {0};
	char link[160], dots[200], hosts[512];
	(void)state;
	snprintf(link, sizeof(link), "%s/shadow-link", dir);
	unlink(link);
	assert_int_equal(symlink("/etc/shadow", link), 0);
	snprintf(dots, sizeof(dots), "%s/../../etc/shadow", dir);
	const char *bad[] = {link, dots, "/etc/../etc/shadow", "relative/key"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(hosts, sizeof(hosts), "[{\"address\": \"a\", \"user\": \"u\", \"key\": \"%s\"}]", bad[i]);
		json_t *c = config(hosts, NULL);
		assert_int_equal(ssh_adapter_ops.validate(c, &err), NOVA_EINVAL);
		assert_string_equal(err.field, "hosts[0].key");
		assert_null(strstr(err.message, "root:"));
		json_decref(c);
	}
	/* NUL inside the JSON string: refused, nothing of it echoed. */
	snprintf(hosts, sizeof(hosts), "[{\"address\": \"a\", \"user\": \"u\", \"key\": \"%s\\u0000x\"}]", ed_key);
	json_error_t je;
	char body[1024];
	snprintf(body, sizeof(body), "{\"known_hosts\": \"%s\", \"hosts\": %s}", kh, hosts);
	json_t *c = json_loads(body, JSON_ALLOW_NUL, &je);
	assert_non_null(c);
	assert_int_equal(ssh_adapter_ops.validate(c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "hosts[0].key");
	assert_non_null(strstr(err.message, "NUL"));
	json_decref(c);
	snprintf(hosts, sizeof(hosts), "[{\"address\": \"a\", \"user\": \"u\", \"key\": \"%s\"}]", ed_key);
	c = config(hosts, NULL);
	if (ssh_adapter_ops.validate(c, &err))
		fail_msg("%s: %s", err.field, err.message);
	/* known_hosts inline instead of the file */
	json_object_del(c, "known_hosts");
	json_object_set_new(c, "known_hosts_inline", json_string("[10.0.0.1]:22 ssh-ed25519 AAAA\n"));
	if (ssh_adapter_ops.validate(c, &err))
		fail_msg("%s: %s", err.field, err.message);
	json_object_set_new(c, "known_hosts", json_string("/etc/ssh/ssh_known_hosts"));
	assert_int_equal(ssh_adapter_ops.validate(c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "known_hosts_inline");
	json_object_del(c, "known_hosts_inline");
	assert_int_equal(ssh_adapter_ops.validate(c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "known_hosts");
	assert_non_null(strstr(err.message, "not under an allowed directory"));
	assert_non_null(strstr(err.hint, "provider_files"));
	json_decref(c);
	unlink(link);
}

static void test_an_rsa_key_is_refused_at_validation_with_the_reason(void **state)
{
	struct nova_err err = {0};
	char hosts[512];
	(void)state;
	snprintf(hosts, sizeof(hosts),
		 "[{\"address\": \"a\", \"user\": \"u\", \"key\": \"%s\"}, {\"address\": \"b\", \"user\": \"u\", \"key\": \"%s\"}]",
		 ed_key, rsa_key);
	json_t *c = config(hosts, NULL);
	/* Through the wrapper, which prefixes config. */
	assert_int_equal(adapter_validate(&ssh_adapter_ops, c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "config.hosts[1].key");
	assert_non_null(strstr(err.message, "is RSA: libssh2 1.10 signs RSA keys only with SHA-1"));
	assert_non_null(strstr(err.message, "use an ed25519 or ECDSA key"));
	json_decref(c);
}

static void test_discovery_parses_a_gpu_host(void **state)
{
	struct ssh_host_facts f;
	struct nova_err err = {0};
	(void)state;
	assert_int_equal(ssh_discovery_parse(&f,
					     "cpus: 64\nmem_kib: 1056724700\nhostname: gpu7\n"
					     "os: Debian GNU/Linux 12 (bookworm)\n"
					     "gpu: 0, NVIDIA A100-SXM4-80GB, 81920 MiB\n"
					     "gpu: 1, NVIDIA A100-SXM4-80GB, 81920 MiB\ngpu_rc: 0\n",
					     &err), 0);
	assert_int_equal(f.cpus, 64);
	assert_int_equal(f.memory_mib, 1031957);
	assert_string_equal(f.hostname, "gpu7");
	assert_string_equal(f.os, "Debian GNU/Linux 12 (bookworm)");
	assert_int_equal(f.n_gpus, 2);
	assert_string_equal(f.gpus[1].name, "NVIDIA A100-SXM4-80GB");
	assert_int_equal(f.gpus[1].memory_mib, 81920);
	assert_string_equal(f.gpu_error, "");
}

static void test_discovery_of_a_cpu_only_host_and_a_failing_nvidia_smi(void **state)
{
	struct ssh_host_facts f;
	struct nova_err err = {0};
	(void)state;
	assert_int_equal(ssh_discovery_parse(&f, "cpus: 4\nmem_kib: 8000000\nhostname: cpu1\nos: x\ngpu_rc: none\n",
					     &err), 0);
	assert_int_equal(f.n_gpus, 0);
	assert_int_equal(f.cpus, 4);
	assert_int_equal(ssh_discovery_parse(&f,
					     "cpus: 4\nmem_kib: 8000000\n"
					     "gpu: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"
					     "gpu_rc: 9\n",
					     &err), 0);
	assert_int_equal(f.n_gpus, 0);
	assert_non_null(strstr(f.gpu_error, "NVIDIA-SMI has failed"));
}

static void test_discovery_refuses_output_it_cannot_read(void **state)
{
	struct ssh_host_facts f;
	struct nova_err err = {0};
	(void)state;
	assert_int_equal(ssh_discovery_parse(&f, "Microsoft Windows [Version 10]\n", &err), NOVA_EFAILED);
	assert_non_null(strstr(err.message, "line 1 is not"));
	assert_int_equal(ssh_discovery_parse(&f, "cpus: 4\n", &err), NOVA_EFAILED);
	assert_non_null(strstr(err.message, "no mem_kib line"));
	assert_int_equal(ssh_discovery_parse(&f, "cpus: four\nmem_kib: 1\ngpu_rc: none\n", &err), NOVA_EFAILED);
	assert_non_null(strstr(err.message, "cannot read cpus"));
	assert_int_equal(ssh_discovery_parse(&f, "cpus: 4\nmem_kib: 1\ngpu: 0, A100, lots\ngpu_rc: 0\n", &err),
			 NOVA_EFAILED);
	assert_non_null(strstr(err.message, "cannot read nvidia-smi's line \"0, A100, lots\""));
	assert_int_equal(ssh_discovery_parse(&f, "", &err), NOVA_EFAILED);
}

static void test_gpu_names_become_accelerator_types(void **state)
{
	static const struct {
		const char *name;
		unsigned long long mib;
		const char *want;
	} cases[] = {
		{"NVIDIA A100-SXM4-80GB", 81920, "A100-80G"},
		{"NVIDIA A100-PCIE-40GB", 40960, "A100-40G"},
		{"NVIDIA H100 80GB HBM3", 81559, "H100-80G"},
		{"NVIDIA GeForce RTX 4090", 24564, "RTX4090-24G"},
		{"Tesla T4", 15360, "T4-15G"},
		{"NVIDIA L4", 23034, "L4-22G"},
		{"NVIDIA", 1024, "GPU-1G"},
	};
	char out[ADAPTER_NAME_MAX];
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ssh_gpu_type(out, sizeof(out), cases[i].name, cases[i].mib);
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("%s: want %s, got %s", cases[i].name, cases[i].want, out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_configs_pass),
		cmocka_unit_test(test_bad_configs_name_the_field),
		cmocka_unit_test(test_known_hosts_is_required_and_absolute),
		cmocka_unit_test(test_key_paths_resolve_before_the_allowed_check),
		cmocka_unit_test(test_an_rsa_key_is_refused_at_validation_with_the_reason),
		cmocka_unit_test(test_discovery_parses_a_gpu_host),
		cmocka_unit_test(test_discovery_of_a_cpu_only_host_and_a_failing_nvidia_smi),
		cmocka_unit_test(test_discovery_refuses_output_it_cannot_read),
		cmocka_unit_test(test_gpu_names_become_accelerator_types),
	};
	return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
