/* The adapter registry's rules, the wrappers, and the fake's fault
 * injection. The adapter contract itself runs against every provider in
 * tests/adapters/driver_contract.c (test_contract_<provider>.sh). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "adapters/adapter.h"
#include "adapters/fake/fake.h"

static int noop_validate(const json_t *c, struct nova_err *e) { (void)c, (void)e; return 0; }

static int reset(void **state)
{
	(void)state;
	adapter_registry_reset();
	fake_reset();
	return 0;
}

static void test_registry_refuses_missing_required_op(void **state)
{
	struct nova_err err;
	static const struct adapter_ops partial = {.name = "partial", .validate = noop_validate};
	(void)state;
	assert_int_equal(adapter_register(&partial, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "create");
	assert_null(adapter_find("partial"));
}

static void test_registry_refuses_duplicate_name(void **state)
{
	struct nova_err err;
	(void)state;
	assert_int_equal(adapter_register(&fake_adapter_ops, &err), 0);
	assert_int_equal(adapter_register(&fake_adapter_ops, &err), NOVA_EEXISTS);
	assert_ptr_equal(adapter_find("fake"), &fake_adapter_ops);
}

static void test_builtin_registers_fake_only_when_asked(void **state)
{
	struct nova_err err;
	(void)state;
	assert_int_equal(adapters_register_builtin(false, &err), 0);
	assert_null(adapter_find("fake"));
	assert_non_null(adapter_find("lpu"));
	assert_non_null(adapter_find("ssh"));
	adapter_registry_reset();
	assert_int_equal(adapters_register_builtin(true, &err), 0);
	assert_non_null(adapter_find("fake"));
}

static void test_validate_prefixes_config_field(void **state)
{
	struct nova_err err;
	json_t *cfg = json_pack("{s:s}", "fail_validate", "hosts[1].port");
	(void)state;
	assert_int_equal(adapter_validate(&fake_adapter_ops, cfg, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "config.hosts[1].port");
	json_decref(cfg);
	json_t *arr = json_array();
	assert_int_equal(adapter_validate(&fake_adapter_ops, arr, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "config");
	json_decref(arr);
}

static const char *const node_a = "11111111-1111-4111-8111-111111111111";
static const char *const node_b = "22222222-2222-4222-8222-222222222222";

static void test_fake_counts_calls_and_injects_faults(void **state)
{
	struct adapter *ad;
	struct nova_err err;
	struct adapter_node_info info;
	const char *pool = "88888888-8888-4888-8888-888888888888";
	json_t *cfg = json_object();
	(void)state;
	assert_int_equal(adapter_create(&ad, &fake_adapter_ops, pool, cfg, &err), 0);
	struct adapter_provision_request req = {.node_id = node_a};
	fake_inject(pool, FAKE_OP_PROVISION, FAKE_FAULT_TRANSIENT, 1, 0);
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), NOVA_EAGAIN);
	assert_int_equal(fake_resource_count(pool), 0);
	fake_inject(pool, FAKE_OP_PROVISION, FAKE_FAULT_LOST_ANSWER, 1, 0);
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), NOVA_EAGAIN);
	assert_int_equal(fake_resource_count(pool), 1); /* it happened, the answer did not arrive */
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), 0);
	assert_int_equal(fake_resource_count_for(pool, node_a), 1); /* the retry made no twin */
	fake_inject(pool, FAKE_OP_DEPROVISION, FAKE_FAULT_PERMANENT, 1, 0);
	struct adapter_node_ref ref = {.node_id = node_a};
	assert_int_equal(adapter_deprovision_node(ad, &ref, &err), NOVA_EFAILED);
	assert_int_equal(fake_calls(pool, FAKE_OP_PROVISION), 3);
	assert_int_equal(fake_calls(pool, FAKE_OP_DEPROVISION), 1);
	adapter_destroy(ad);
	json_decref(cfg);
}

static void test_fake_faults_from_config_arm_once(void **state)
{
	struct adapter *ad;
	struct nova_err err;
	struct adapter_node_info info;
	const char *pool = "77777777-7777-4777-8777-777777777777";
	json_t *cfg = json_loads("{\"faults\":{\"provision\":{\"kind\":\"transient\",\"times\":2}}}", 0, NULL);
	struct adapter_provision_request req = {.node_id = node_b};
	(void)state;
	assert_int_equal(adapter_create(&ad, &fake_adapter_ops, pool, cfg, &err), 0);
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), NOVA_EAGAIN);
	adapter_destroy(ad);
	/* A new instance of the same pool does not re-arm. */
	assert_int_equal(adapter_create(&ad, &fake_adapter_ops, pool, cfg, &err), 0);
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), NOVA_EAGAIN);
	assert_int_equal(adapter_provision_node(&info, ad, &req, &err), 0);
	adapter_destroy(ad);
	json_decref(cfg);
	cfg = json_loads("{\"faults\":{\"provision\":{\"kind\":\"sometimes\"}}}", 0, NULL);
	assert_int_equal(adapter_validate(&fake_adapter_ops, cfg, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "config.faults.provision");
	json_decref(cfg);
}

static void test_optional_ops_answer_not_supported(void **state)
{
	static const struct adapter_ops minimal;
	struct adapter ad = {.ops = &minimal};
	struct adapter_resources res;
	struct adapter_node_list list;
	struct nova_err err;
	(void)state;
	assert_int_equal(adapter_discover_resources(&res, &ad, &err), NOVA_ENOTSUP);
	assert_int_equal(adapter_list_nodes(&list, &ad, &err), NOVA_ENOTSUP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_registry_refuses_missing_required_op, reset),
		cmocka_unit_test_setup(test_registry_refuses_duplicate_name, reset),
		cmocka_unit_test_setup(test_builtin_registers_fake_only_when_asked, reset),
		cmocka_unit_test_setup(test_validate_prefixes_config_field, reset),
		cmocka_unit_test_setup(test_fake_counts_calls_and_injects_faults, reset),
		cmocka_unit_test_setup(test_fake_faults_from_config_arm_once, reset),
		cmocka_unit_test_setup(test_optional_ops_answer_not_supported, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
