/* A kubernetes pool's config, as pool create validates it: what the pool
 * puts in its pods (tolerations, node selector, labels) is held to
 * Kubernetes' own rules field by field, so a value the API server would
 * refuse is refused at pool create, naming the field, and not at the
 * first provision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "adapters/adapter.h"
#include "adapters/kubernetes/kube.h"

#define KUBECONFIG                                                                             \
	"current-context: x\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\"}\n" \
	"contexts:\n- name: x\n  context: {cluster: c, user: u}\n"                               \
	"users:\n- name: u\n  user: {token: t}\n"

/* The pool config with extra (a JSON object's members, "" none) next to
 * an inline kubeconfig; the validate answer, err filled. */
static int validate(struct nova_err *err, const char *extra)
{
	char text[4096];
	json_error_t jerr;
	snprintf(text, sizeof(text), "{%s}", extra);
	json_t *config = json_loads(text, 0, &jerr);
	if (!config)
		fail_msg("bad test JSON %s: %s", text, jerr.text);
	json_object_set_new(config, "kubeconfig_inline", json_string(KUBECONFIG));
	nova_err_clear(err);
	int rc = adapter_validate(&kube_adapter_ops, config, err);
	json_decref(config);
	return rc;
}

/* Refused with NOVA_EINVAL naming field, and the message saying want. */
static void refused(const char *extra, const char *field, const char *want)
{
	struct nova_err err;
	int rc = validate(&err, extra);
	if (rc != NOVA_EINVAL || strcmp(err.field, field) || !strstr(err.message, want))
		fail_msg("%s: want EINVAL on %s (\"%s\"), got %d on \"%s\": %s", extra, field, want, rc,
			 err.field, err.message);
}

static void accepted(const char *extra)
{
	struct nova_err err;
	if (validate(&err, extra) != 0)
		fail_msg("%s: refused on \"%s\": %s", extra, err.field, err.message);
}

static void test_good_tolerations_selectors_and_labels_are_accepted(void **state)
{
	(void)state;
	accepted("");
	accepted("\"tolerations\": []");
	accepted("\"tolerations\": [{\"key\": \"nvidia.com/gpu\", \"operator\": \"Exists\", "
		 "\"effect\": \"NoSchedule\"}]");
	accepted("\"tolerations\": [{\"key\": \"dedicated\", \"operator\": \"Equal\", "
		 "\"value\": \"inference\", \"effect\": \"PreferNoSchedule\"}]");
	/* The operator defaults to Equal; an empty key with Exists tolerates
	 * every taint; an empty effect matches every effect. */
	accepted("\"tolerations\": [{\"key\": \"spot\", \"value\": \"true\"}]");
	accepted("\"tolerations\": [{\"operator\": \"Exists\"}]");
	accepted("\"tolerations\": [{\"key\": \"node.kubernetes.io/unreachable\", \"operator\": "
		 "\"Exists\", \"effect\": \"NoExecute\", \"tolerationSeconds\": 300}]");
	accepted("\"node_selector\": {\"nvidia.com/gpu.product\": \"NVIDIA-A100-SXM4-80GB\", "
		 "\"pool\": \"\"}");
	accepted("\"labels\": {\"team\": \"inference\", \"example.com/cost-center\": \"a_1.b-2\"}");
}

static void test_a_bad_toleration_is_refused_naming_its_field(void **state)
{
	(void)state;
	refused("\"tolerations\": [{\"key\": \"a\", \"operator\": \"Exists\"}, {\"key\": \"b\", "
		"\"operator\": \"Sometimes\"}]",
		"config.tolerations[1].operator", "Exists or Equal");
	refused("\"tolerations\": [{\"key\": \"a\", \"operator\": \"Exists\", \"effect\": "
		"\"NoExecute\", \"tolerationSeconds\": \"300\"}]",
		"config.tolerations[0].tolerationSeconds", "an integer");
	refused("\"tolerations\": [{\"key\": \"a\", \"operator\": \"Exists\", \"effect\": "
		"\"NoSchedule\", \"tolerationSeconds\": 300}]",
		"config.tolerations[0].tolerationSeconds", "NoExecute");
	refused("\"tolerations\": [{\"key\": \"a\", \"effect\": \"NoRun\"}]",
		"config.tolerations[0].effect", "NoSchedule, PreferNoSchedule, NoExecute");
	refused("\"tolerations\": [{\"key\": \"a\", \"operator\": \"Exists\", \"value\": \"x\"}]",
		"config.tolerations[0].value", "empty when the operator is Exists");
	refused("\"tolerations\": [{\"key\": \"a\", \"value\": \"-x\"}]", "config.tolerations[0].value",
		"letters or digits at both ends");
	refused("\"tolerations\": [{\"key\": \"bad key!\", \"operator\": \"Exists\"}]",
		"config.tolerations[0].key", "qualified name");
	refused("\"tolerations\": [{\"value\": \"x\"}]", "config.tolerations[0].operator",
		"Exists when the key is empty");
	refused("\"tolerations\": [{\"key\": \"a\", \"operator\": \"Exists\", \"colour\": \"red\"}]",
		"config.tolerations[0].colour", "unknown field");
	refused("\"tolerations\": [{\"key\": 7}]", "config.tolerations[0].key", "a string");
	refused("\"tolerations\": [\"NoSchedule\"]", "config.tolerations[0]", "must be an object");
	refused("\"tolerations\": {\"key\": \"a\"}", "config.tolerations", "an array");
}

static void test_a_bad_node_selector_is_refused_naming_its_entry(void **state)
{
	(void)state;
	refused("\"node_selector\": {\"gpu type\": \"a100\"}", "config.node_selector.gpu type",
		"qualified name");
	refused("\"node_selector\": {\"Example.com/gpu\": \"a100\"}",
		"config.node_selector.Example.com/gpu", "qualified name");
	refused("\"node_selector\": {\"example.com/\": \"a100\"}", "config.node_selector.example.com/",
		"qualified name");
	refused("\"node_selector\": {\"gpu\": \"a100 80g\"}", "config.node_selector.gpu",
		"letters or digits at both ends");
	refused("\"node_selector\": {\"gpu\": \"a1234567890123456789012345678901234567890123456789"
		"01234567890123\"}",
		"config.node_selector.gpu", "at most 63");
	refused("\"node_selector\": {\"gpu\": 1}", "config.node_selector.gpu", "a string");
	refused("\"node_selector\": [\"gpu\"]", "config.node_selector", "an object");
}

static void test_bad_pod_labels_are_refused_naming_the_label(void **state)
{
	(void)state;
	refused("\"labels\": {\"team\": \"inference team\"}", "config.labels.team",
		"letters or digits at both ends");
	refused("\"labels\": {\"a1234567890123456789012345678901234567890123456789012345678901234\": "
		"\"x\"}",
		"config.labels.a1234567890123456789012345678901234567890123456789012345678901234",
		"qualified name");
	refused("\"labels\": {\"team\": true}", "config.labels.team", "a string");
	/* The labels Nova finds its pods by are Nova's. */
	refused("\"labels\": {\"nova.dev/pool-id\": \"x\"}", "config.labels.nova.dev/pool-id",
		"Nova sets");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_tolerations_selectors_and_labels_are_accepted),
		cmocka_unit_test(test_a_bad_toleration_is_refused_naming_its_field),
		cmocka_unit_test(test_a_bad_node_selector_is_refused_naming_its_entry),
		cmocka_unit_test(test_bad_pod_labels_are_refused_naming_the_label),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
