/* The lpu pool config and the files it may name: the topology only under
 * the allowed directories (core/files.h), or inline; never an agent
 * program; no error quotes the file it read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "adapters/lpu/lpu.h"
#include "core/files.h"

static char dir[] = "/tmp/nova-lpu-config.XXXXXX";
static char topo[PATH_MAX];

static int setup(void **state)
{
	char cmd[PATH_MAX * 2];
	struct nova_err err;
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(topo, sizeof(topo), "%s/datacenter.yaml", dir);
	snprintf(cmd, sizeof(cmd), "cp etc/datacenter.yaml %s", topo);
	if (system(cmd) != 0)
		return -1;
	const char *dirs[] = {dir};
	alarm(30); /* a blocked open fails the run instead of hanging it */
	return files_allowed_set(dirs, 1, "provider_files", &err);
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int validate(struct nova_err *err, const char *key, const char *value, size_t len)
{
	json_t *c = json_pack("{s:s, s:b}", "allocation", "c1r1", "mock_agents", 1);
	json_object_set_new(c, key, json_stringn(value, len));
	nova_err_clear(err);
	int rc = lpu_adapter_ops.validate(c, err);
	json_decref(c);
	return rc;
}

static void refused(const char *path, size_t len, const char *words)
{
	struct nova_err err;
	if (validate(&err, "topology", path, len) != NOVA_EINVAL)
		fail_msg("%s was accepted", path);
	assert_string_equal(err.field, "topology");
	if (!strstr(err.message, words))
		fail_msg("%s: want \"%s\", got \"%s\"", path, words, err.message);
	assert_null(strstr(err.message, "root"));
	assert_null(strstr(err.message, "PATH="));
}

static void test_a_topology_outside_the_allowed_directories_is_refused(void **state)
{
	char p[PATH_MAX + 64];
	(void)state;
	refused("/etc/shadow", strlen("/etc/shadow"), "not under an allowed directory");
	refused("/etc/passwd", strlen("/etc/passwd"), "not under an allowed directory");
	refused("/proc/self/environ", strlen("/proc/self/environ"), "not under an allowed directory");
	refused("/dev/ptmx", strlen("/dev/ptmx"), "not under an allowed directory");
	snprintf(p, sizeof(p), "%s/../../etc/passwd", dir);
	refused(p, strlen(p), "not under an allowed directory");
	snprintf(p, sizeof(p), "%s/passwd-link", dir);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	refused(p, strlen(p), "not under an allowed directory");
	refused("etc/datacenter.yaml", strlen("etc/datacenter.yaml"), "absolute path");
	refused(topo, strlen(topo) + 1, "NUL");
}

static void test_the_same_file_under_an_allowed_directory_works(void **state)
{
	struct nova_err err;
	(void)state;
	if (validate(&err, "topology", topo, strlen(topo)))
		fail_msg("%s: %s", err.field, err.message);
}

/* A file with another file's lines (a copy of /etc/passwd's shape) under
 * an allowed directory: the error says where and what was expected, never
 * the text found there. */
static void test_topology_errors_never_quote_the_file(void **state)
{
	struct nova_err err;
	char p[PATH_MAX + 64];
	const char *texts[] = {
		"root:x:0:0:root:/root:/bin/bash\n",
		"rootsecret: 1\n",
		"clusters:\n  - id: rootsecret\n    racks: []\n",
		"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        labels: {rootsecret: 1}\n"
		"        nodes: [{name: a, chips: 1}]\n",
		"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        nodes: [{name: rootsecret, chips: 1},"
		" {name: rootsecret, chips: 1}]\n",
		"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        nodes: [{name: a, chips: 99999}]\n",
		"[\"root: unterminated\n",
	};
	(void)state;
	snprintf(p, sizeof(p), "%s/bad.yaml", dir);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		FILE *f = fopen(p, "w");
		fputs(texts[i], f);
		fclose(f);
		assert_int_equal(validate(&err, "topology", p, strlen(p)), NOVA_EINVAL);
		assert_string_equal(err.field, "topology");
		if (strstr(err.message, "root") || strstr(err.message, "99999") || strstr(err.hint, "root"))
			fail_msg("case %zu quotes the file: %s", i, err.message);
		assert_non_null(strstr(err.message, "bad.yaml:"));
		/* inline: the same rule */
		assert_int_equal(validate(&err, "topology_inline", texts[i], strlen(texts[i])), NOVA_EINVAL);
		assert_string_equal(err.field, "topology_inline");
		if (strstr(err.message, "root") || strstr(err.message, "99999"))
			fail_msg("inline case %zu quotes the text: %s", i, err.message);
	}
}

static void test_inline_topology_and_exactly_one_form(void **state)
{
	struct nova_err err;
	char *text = NULL;
	(void)state;
	assert_int_equal(files_read_capped(&text, NULL, "etc/datacenter.yaml", FILES_READ_MAX, "", &err), 0);
	if (validate(&err, "topology_inline", text, strlen(text)))
		fail_msg("%s: %s", err.field, err.message);
	json_t *c = json_pack("{s:s, s:s, s:s}", "allocation", "c1r1", "topology", topo,
			      "topology_inline", text);
	assert_int_equal(lpu_adapter_ops.validate(c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "topology_inline");
	json_object_del(c, "topology_inline");
	json_object_del(c, "topology");
	assert_int_equal(lpu_adapter_ops.validate(c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "topology");
	json_decref(c);
	free(text);
}

static void test_agent_is_not_a_pool_setting(void **state)
{
	struct nova_err err;
	(void)state;
	json_t *c = json_pack("{s:s, s:s, s:s}", "allocation", "c1r1", "topology", topo, "agent",
			      "/bin/sh");
	assert_int_equal(lpu_adapter_ops.validate(c, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "agent");
	assert_non_null(strstr(err.message, "novad.yaml"));
	json_decref(c);
	/* novad's own setting (the adapter context's): an executable file,
	 * absolute */
	char prog[PATH_MAX];
	assert_int_equal(lpu_agent_resolve(prog, sizeof(prog), "nova-sidecar", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "lpu_agent");
	assert_int_equal(lpu_agent_resolve(prog, sizeof(prog), topo, &err), NOVA_EINVAL); /* not executable */
	assert_int_equal(lpu_agent_resolve(prog, sizeof(prog), "/bin/true", &err), 0);
	assert_string_equal(prog, "/bin/true");
	assert_int_equal(lpu_agent_resolve(prog, sizeof(prog), NULL, &err), 0);
	assert_non_null(strstr(prog, "/nova-sidecar"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_topology_outside_the_allowed_directories_is_refused),
		cmocka_unit_test(test_the_same_file_under_an_allowed_directory_works),
		cmocka_unit_test(test_topology_errors_never_quote_the_file),
		cmocka_unit_test(test_inline_topology_and_exactly_one_form),
		cmocka_unit_test(test_agent_is_not_a_pool_setting),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
