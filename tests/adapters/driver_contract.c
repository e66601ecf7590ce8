/* The adapter contract (adapters/adapter.h), one suite run against every
 * provider, as libgit2 runs its backend tests against every backend. Each
 * provider has a shell test, tests/adapters/test_contract_<provider>.sh,
 * that starts what the provider needs exactly as that provider's own tests
 * do (nothing for the fake; nova-sidecar agents for lpu; sshd hosts in
 * network namespaces for ssh; the fake API server and kubelet stand-in for
 * kubernetes), writes a case file and runs
 *
 *   driver_contract PROVIDER CASE.json
 *
 * CASE.json:
 *   config          the pool config (valid)
 *   ephemeral       what adapter_is_ephemeral must answer for it
 *   bad             [{"config": ..., "field": "config.x"}]: each refused by
 *                   validate and create with NOVA_EINVAL naming the field
 *   foreign_handle  static providers: a handle that is not the pool's
 *   unreachable     optional {"config": ..., "handle": ...}: the provider
 *                   cannot be reached; what it must do answers NOVA_EAGAIN
 *   count           a program that, given a node id, prints how many live
 *                   resources carry it, seen from outside the adapter (agent
 *                   processes, sidecars on the hosts, pods): the witness for
 *                   "never a twin" and "gone". The fake is asked in-process.
 *   gateway_url     what sidecars are told (nothing needs to answer there)
 *   wait_s          how long a provider's view may lag (kubernetes status
 *                   comes from an informer), default 10
 *
 * Environment, standing in for novad.yaml: NOVA_STATE_DIR (also the tree
 * validate must leave untouched), NOVA_PROVIDER_FILES, NOVA_LPU_AGENT,
 * NOVA_LPU_RUN_DIR, NOVA_SSH_AGENT.
 *
 * Rejected: a cmocka binary per provider that starts sshd or the API server
 * itself. The shell harness (tests/support) already knows how, and a second
 * way to make hosts would drift from the one every other ssh test trusts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <cmocka.h>

#include "adapters/adapter.h"
#include "adapters/fake/fake.h"
#include "adapters/lpu/lpu.h"
#include "adapters/ssh/ssh.h"
#include "core/files.h"

static const struct adapter_ops *ct_ops;
static json_t *ct_case;
static const json_t *ct_config;
static const char *ct_pool = "c0c0c0c0-0000-4000-8000-00000000c0c0";

/* Fresh node ids per test, so a test never sees another's leftovers. */
static void ct_node_id(char *out, unsigned test, unsigned n)
{
	snprintf(out, ADAPTER_ID_LEN, "c0c0c0c0-%04x-4000-8000-%012x", test, n);
}

/* The one place instances are made: adapter_create may take a context
 * (the registry of live instances) later; only this changes then. */
static int ct_create(struct adapter **out, const json_t *config, struct nova_err *err)
{
	return adapter_create(out, ct_ops, ct_pool, config, err);
}

static struct adapter *ct_instance(void)
{
	struct adapter *ad = NULL;
	struct nova_err err = {0};
	if (ct_create(&ad, ct_config, &err))
		fail_msg("create: %s: %s", err.field, err.message);
	return ad;
}

static bool ct_static(void)
{
	return !json_is_true(json_object_get(ct_case, "ephemeral"));
}

static unsigned ct_wait_s(void)
{
	json_int_t w = json_integer_value(json_object_get(ct_case, "wait_s"));
	return w > 0 ? (unsigned)w : 10;
}

static void ct_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static long long ct_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Live resources carrying node_id, as the world outside the adapter sees
 * them; -1 when this provider's case gives no way to look. */
static int ct_count(const char *node_id)
{
	const char *cmd = json_string_value(json_object_get(ct_case, "count"));
	char line[4096];
	int n = -1;
	if (ct_ops == &fake_adapter_ops)
		return (int)fake_resource_count_for(ct_pool, node_id);
	if (!cmd)
		return -1;
	snprintf(line, sizeof(line), "'%s' %s", cmd, node_id);
	FILE *p = popen(line, "r");
	assert_non_null(p);
	if (fscanf(p, "%d", &n) != 1)
		n = -2;
	pclose(p);
	if (n < 0)
		fail_msg("%s gave no count for %s", cmd, node_id);
	return n;
}

/* The count settles at want within wait_s (a pod goes when the API server
 * says so, a killed agent when it exits); the last count seen. */
static int ct_count_settles(const char *node_id, int want)
{
	long long until = ct_now_ms() + 1000LL * ct_wait_s();
	int n;
	while ((n = ct_count(node_id)) != want && n >= 0 && ct_now_ms() < until)
		ct_sleep_ms(100);
	return n;
}

/* A handle of the pool's for a static provider: its nth discovered node. */
static void ct_static_handle(char *out, size_t len, struct adapter *ad, size_t nth)
{
	struct adapter_resources res;
	struct nova_err err = {0};
	if (adapter_discover_resources(&res, ad, &err))
		fail_msg("discover: %s", err.message);
	if (res.n_nodes <= nth)
		fail_msg("the case needs %zu static nodes, discovery found %zu", nth + 1, res.n_nodes);
	snprintf(out, len, "%s", res.nodes[nth].handle);
	adapter_resources_finish(&res);
}

struct ct_req {
	struct adapter_provision_request req;
	char handle[ADAPTER_HANDLE_MAX];
	char token[64];
};

static void ct_req_init(struct ct_req *r, struct adapter *ad, const char *node_id, size_t nth)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->token, sizeof(r->token), "contract-token-%.24s", node_id + 24);
	r->req.node_id = node_id;
	r->req.node_name = "contract-node";
	r->req.node_token = r->token;
	r->req.gateway_url = json_string_value(json_object_get(ct_case, "gateway_url"));
	if (!r->req.gateway_url)
		r->req.gateway_url = "http://127.0.0.1:9";
	r->req.accelerator_count = 1;
	if (ct_static()) {
		ct_static_handle(r->handle, sizeof(r->handle), ad, nth);
		r->req.handle = r->handle;
	}
}

/* Provision as the worker does: NOVA_EAGAIN is retried with backoff (a
 * replaced pod still terminating, say), anything else is the answer. */
static int ct_provision(struct adapter_node_info *out, struct adapter *ad,
			const struct adapter_provision_request *req, struct nova_err *err)
{
	long long until = ct_now_ms() + 1000LL * ct_wait_s();
	unsigned backoff = 100;
	int rc;
	while ((rc = adapter_provision_node(out, ad, req, err)) == NOVA_EAGAIN && ct_now_ms() < until) {
		ct_sleep_ms(backoff);
		backoff = backoff < 1000 ? backoff * 2 : 1000;
	}
	return rc;
}

static void ct_provision_ok(struct adapter_node_info *out, struct adapter *ad,
			    const struct adapter_provision_request *req)
{
	struct nova_err err = {0};
	int rc = ct_provision(out, ad, req, &err);
	if (rc)
		fail_msg("provision %s: %s (%s)", req->node_id, err.message, nova_code_name(rc));
}

static void ct_deprovision_ok(struct adapter *ad, const char *node_id, const char *handle)
{
	struct nova_err err = {0};
	struct adapter_node_ref ref = {.node_id = node_id, .handle = handle};
	int rc = adapter_deprovision_node(ad, &ref, &err);
	if (rc)
		fail_msg("deprovision %s: %s (%s)", node_id, err.message, nova_code_name(rc));
}

/* How many items of the provider's list carry node_id; the handle of the
 * last into handle. */
static size_t ct_listed(struct adapter *ad, const char *node_id, char *handle, size_t len)
{
	struct adapter_node_list list;
	struct nova_err err = {0};
	size_t n = 0;
	int rc = adapter_list_nodes(&list, ad, &err);
	if (rc)
		fail_msg("list_nodes: %s (%s)", err.message, nova_code_name(rc));
	for (size_t i = 0; i < list.n; i++)
		if (strcmp(list.items[i].node_id, node_id) == 0) {
			n++;
			if (handle)
				snprintf(handle, len, "%s", list.items[i].handle);
		}
	adapter_node_list_finish(&list);
	return n;
}

/* node_status until it answers want (wait_s at most); the last answer. */
static enum adapter_node_state ct_status_settles(struct adapter_node_info *info, struct adapter *ad,
						 const struct adapter_node_ref *ref,
						 enum adapter_node_state want)
{
	long long until = ct_now_ms() + 1000LL * ct_wait_s();
	struct nova_err err = {0};
	for (;;) {
		int rc = adapter_node_status(info, ad, ref, &err);
		if (rc)
			fail_msg("status of %s: %s (%s)", ref->node_id, err.message, nova_code_name(rc));
		if (info->state == want || ct_now_ms() >= until)
			return info->state;
		ct_sleep_ms(200);
	}
}

/* --- validate and create --------------------------------------------------- */

/* Every file under the state directory, with size and mtime: what validate
 * must not change. */
static json_t *ct_tree;

static int ct_tree_add(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag, (void)ftw;
	json_object_set_new(ct_tree, path,
			    json_sprintf("%lld.%ld:%lld", (long long)st->st_mtim.tv_sec,
					 st->st_mtim.tv_nsec, (long long)st->st_size));
	return 0;
}

static json_t *ct_tree_snapshot(void)
{
	char dir[4096];
	ct_tree = json_object();
	files_state_dir(dir, sizeof(dir));
	nftw(dir, ct_tree_add, 16, FTW_PHYS);
	json_t *t = ct_tree;
	ct_tree = NULL;
	return t;
}

static void test_validate_accepts_the_config(void **state)
{
	struct nova_err err = {0};
	(void)state;
	json_t *before = ct_tree_snapshot();
	if (adapter_validate(ct_ops, ct_config, &err))
		fail_msg("validate: %s: %s", err.field, err.message);
	json_t *after = ct_tree_snapshot();
	assert_true(json_equal(before, after)); /* no side effects */
	json_decref(before);
	json_decref(after);
}

static void test_validate_names_the_bad_field_and_changes_nothing(void **state)
{
	struct nova_err err;
	json_t *bad, *c;
	size_t i;
	(void)state;
	/* An unknown key: every provider refuses it, naming it. */
	json_t *unknown = json_deep_copy(ct_config);
	json_object_set_new(unknown, "no_such_key", json_true());
	json_t *cases = json_deep_copy(json_object_get(ct_case, "bad"));
	json_array_append_new(cases, json_pack("{s:o, s:s}", "config", unknown, "field",
					       "config.no_such_key"));
	assert_true(json_array_size(cases) >= 2);
	json_t *before = ct_tree_snapshot();
	json_array_foreach(cases, i, bad) {
		c = json_object_get(bad, "config");
		const char *field = json_string_value(json_object_get(bad, "field"));
		memset(&err, 0, sizeof(err));
		int rc = adapter_validate(ct_ops, c, &err);
		if (rc != NOVA_EINVAL || strcmp(err.field, field) != 0)
			fail_msg("bad config %zu: %s, field \"%s\" (%s), want invalid, field \"%s\"", i,
				 nova_code_name(rc), err.field, err.message, field);
		assert_true(err.message[0] != '\0');
	}
	json_t *after = ct_tree_snapshot();
	assert_true(json_equal(before, after));
	json_decref(before);
	json_decref(after);
	json_decref(cases);
}

static void test_create_refuses_a_bad_config_and_hands_back_nothing(void **state)
{
	static struct adapter stale;
	struct nova_err err = {0};
	struct adapter *ad = &stale; /* not NULL: create must clear it */
	(void)state;
	json_t *bad = json_object_get(json_array_get(json_object_get(ct_case, "bad"), 0), "config");
	assert_non_null(bad);
	assert_int_equal(ct_create(&ad, bad, &err), NOVA_EINVAL);
	assert_null(ad);
}

static void test_create_gives_an_instance_of_the_provider(void **state)
{
	(void)state;
	struct adapter *ad = ct_instance();
	assert_ptr_equal(ad->ops, ct_ops);
	assert_string_equal(ad->pool_id, ct_pool);
	assert_int_equal(adapter_is_ephemeral(ad), !ct_static());
	/* Said without an instance too (pools ask it of a config). */
	assert_int_equal(adapter_config_ephemeral(ct_ops, ct_config), !ct_static());
	adapter_destroy(ad);
	adapter_destroy(NULL);
}

/* --- optional operations ------------------------------------------------- */

static void test_optional_ops_answer_not_supported_when_absent(void **state)
{
	struct adapter_ops bare = *ct_ops;
	struct adapter_resources res;
	struct adapter_node_list list;
	struct nova_err err = {0};
	json_t *claims = NULL;
	(void)state;
	bare.discover_resources = NULL;
	bare.list_nodes = NULL;
	bare.claims = NULL;
	bare.forget = NULL;
	struct adapter ad = {.ops = &bare};
	assert_int_equal(adapter_discover_resources(&res, &ad, &err), NOVA_ENOTSUP);
	assert_int_equal(res.n_nodes + res.n_capacity, 0);
	assert_int_equal(adapter_list_nodes(&list, &ad, &err), NOVA_ENOTSUP);
	assert_int_equal(list.n, 0);
	/* No claims op: the provider claims nothing exclusively. */
	assert_int_equal(adapter_claims(&claims, &bare, ct_config, &err), 0);
	assert_int_equal(json_array_size(claims), 0);
	json_decref(claims);
	adapter_forget(&bare, ct_pool);
	/* The provider's own: an op it has is never "not supported". */
	assert_int_equal(adapter_claims(&claims, ct_ops, ct_config, &err), 0);
	assert_true(json_is_array(claims));
	json_decref(claims);
}

/* --- discovery ------------------------------------------------------------- */

static void test_discovery_reports_sane_capacity(void **state)
{
	struct adapter_resources res;
	struct nova_err err = {0};
	(void)state;
	struct adapter *ad = ct_instance();
	int rc = adapter_discover_resources(&res, ad, &err);
	if (!ct_ops->discover_resources) {
		assert_int_equal(rc, NOVA_ENOTSUP);
		adapter_destroy(ad);
		return;
	}
	if (rc)
		fail_msg("discover: %s (%s)", err.message, nova_code_name(rc));
	for (size_t i = 0; i < res.n_capacity; i++) {
		const struct adapter_capacity *c = &res.capacity[i];
		assert_true(c->accelerator_type[0] != '\0');
		assert_true(c->free <= c->total);
		assert_true(c->max_per_node <= c->total);
		assert_true(c->total == 0 || c->max_per_node > 0);
	}
	if (ct_static()) {
		/* A static pool's nodes are found by discovery: each once, by a
		 * stable handle, with what it offers. */
		assert_true(res.n_nodes >= 2);
		for (size_t i = 0; i < res.n_nodes; i++) {
			const struct adapter_static_node *n = &res.nodes[i];
			assert_true(n->handle[0] != '\0');
			for (size_t j = 0; j < i; j++)
				assert_string_not_equal(n->handle, res.nodes[j].handle);
			assert_true(json_is_object(n->labels));
			if (!n->reachable)
				fail_msg("node %s unreachable: %s", n->handle, n->reason);
			if (n->accelerator_count)
				assert_true(n->accelerator_type[0] != '\0');
		}
	} else {
		/* Created on demand: nothing to list, capacity to place by. */
		assert_int_equal(res.n_nodes, 0);
		assert_true(res.n_capacity >= 1);
	}
	adapter_resources_finish(&res);
	adapter_destroy(ad);
}

/* --- provisioning ---------------------------------------------------------- */

static void test_provision_is_idempotent_on_the_node_id(void **state)
{
	char id[ADAPTER_ID_LEN], listed[ADAPTER_HANDLE_MAX] = "";
	struct adapter_node_info first, again;
	struct ct_req r;
	(void)state;
	struct adapter *ad = ct_instance();
	ct_node_id(id, 1, 1);
	ct_req_init(&r, ad, id, 0);
	ct_provision_ok(&first, ad, &r.req);
	assert_string_equal(first.node_id, id);
	assert_true(first.handle[0] != '\0');
	if (r.req.handle) /* static: the node claimed is the one asked for */
		assert_string_equal(first.handle, r.req.handle);
	/* A retry after a lost answer: the same resource. */
	ct_provision_ok(&again, ad, &r.req);
	assert_string_equal(again.handle, first.handle);
	assert_int_equal(ct_listed(ad, id, listed, sizeof(listed)), 1);
	assert_string_equal(listed, first.handle);
	int n = ct_count_settles(id, 1);
	assert_true(n == 1 || n == -1);
	adapter_destroy(ad);
	/* A retry from a new instance (a restarted novad) finds it too. */
	ad = ct_instance();
	ct_provision_ok(&again, ad, &r.req);
	assert_string_equal(again.handle, first.handle);
	assert_int_equal(ct_listed(ad, id, NULL, 0), 1);
	n = ct_count_settles(id, 1);
	assert_true(n == 1 || n == -1);
	ct_deprovision_ok(ad, id, first.handle);
	adapter_destroy(ad);
}

/* The worker issues a fresh token when it retries a provision: still one
 * resource for the node, under the same handle. */
static void test_a_retry_with_a_new_token_makes_no_twin(void **state)
{
	char id[ADAPTER_ID_LEN], listed[ADAPTER_HANDLE_MAX] = "";
	struct adapter_node_info first, again;
	struct ct_req r;
	(void)state;
	struct adapter *ad = ct_instance();
	ct_node_id(id, 2, 1);
	ct_req_init(&r, ad, id, 0);
	ct_provision_ok(&first, ad, &r.req);
	snprintf(r.token, sizeof(r.token), "contract-token-rotated");
	ct_provision_ok(&again, ad, &r.req);
	assert_string_equal(again.node_id, id);
	assert_string_equal(again.handle, first.handle);
	assert_int_equal(ct_listed(ad, id, listed, sizeof(listed)), 1);
	assert_string_equal(listed, first.handle);
	int n = ct_count_settles(id, 1);
	assert_true(n == 1 || n == -1);
	ct_deprovision_ok(ad, id, first.handle);
	adapter_destroy(ad);
}

static void test_list_nodes_carries_each_node_id_with_its_handle(void **state)
{
	char a[ADAPTER_ID_LEN], b[ADAPTER_ID_LEN], listed[ADAPTER_HANDLE_MAX];
	struct adapter_node_info ia, ib;
	struct ct_req ra, rb;
	(void)state;
	struct adapter *ad = ct_instance();
	ct_node_id(a, 3, 1);
	ct_node_id(b, 3, 2);
	ct_req_init(&ra, ad, a, 0);
	ct_req_init(&rb, ad, b, 1); /* static: another node of the pool */
	ct_provision_ok(&ia, ad, &ra.req);
	ct_provision_ok(&ib, ad, &rb.req);
	assert_string_not_equal(ia.handle, ib.handle);
	listed[0] = '\0';
	assert_int_equal(ct_listed(ad, a, listed, sizeof(listed)), 1);
	assert_string_equal(listed, ia.handle);
	listed[0] = '\0';
	assert_int_equal(ct_listed(ad, b, listed, sizeof(listed)), 1);
	assert_string_equal(listed, ib.handle);
	ct_deprovision_ok(ad, a, ia.handle);
	ct_deprovision_ok(ad, b, ib.handle);
	adapter_destroy(ad);
}

static void test_status_follows_the_node_from_running_to_gone(void **state)
{
	char id[ADAPTER_ID_LEN];
	struct adapter_node_info info;
	struct ct_req r;
	(void)state;
	struct adapter *ad = ct_instance();
	ct_node_id(id, 4, 1);
	ct_req_init(&r, ad, id, 0);
	ct_provision_ok(&info, ad, &r.req);
	assert_true(info.state == ADAPTER_NODE_RUNNING || info.state == ADAPTER_NODE_PENDING);
	char handle[ADAPTER_HANDLE_MAX];
	snprintf(handle, sizeof(handle), "%s", info.handle);
	struct adapter_node_ref ref = {.node_id = id, .handle = handle};
	assert_int_equal(ct_status_settles(&info, ad, &ref, ADAPTER_NODE_RUNNING), ADAPTER_NODE_RUNNING);
	assert_string_equal(info.node_id, id);
	ct_deprovision_ok(ad, id, handle);
	assert_int_equal(ct_status_settles(&info, ad, &ref, ADAPTER_NODE_GONE), ADAPTER_NODE_GONE);
	assert_string_equal(info.node_id, id);
	adapter_destroy(ad);
}

/* adapter.h's node_status: a resource the provider does not have is
 * ADAPTER_NODE_GONE with success, which the reconciler acts on (it skips a
 * node whose status call fails). */
static void test_status_of_an_unknown_node_is_gone(void **state)
{
	char id[ADAPTER_ID_LEN], handle[ADAPTER_HANDLE_MAX] = "";
	struct adapter_node_info info;
	struct nova_err err = {0};
	(void)state;
	struct adapter *ad = ct_instance();
	ct_node_id(id, 5, 1);
	struct adapter_node_ref ref = {.node_id = id};
	assert_int_equal(adapter_node_status(&info, ad, &ref, &err), 0);
	assert_int_equal(info.state, ADAPTER_NODE_GONE);
	assert_string_equal(info.node_id, id);
	if (ct_static()) {
		/* On a node of the pool that holds no resource for this id. */
		ct_static_handle(handle, sizeof(handle), ad, 0);
		ref.handle = handle;
		assert_int_equal(adapter_node_status(&info, ad, &ref, &err), 0);
		assert_int_equal(info.state, ADAPTER_NODE_GONE);
		assert_string_equal(info.node_id, id);
	}
	adapter_destroy(ad);
}

/* --- deprovisioning -------------------------------------------------------- */

static void test_deprovision_is_idempotent_and_gone_is_success(void **state)
{
	char id[ADAPTER_ID_LEN], never[ADAPTER_ID_LEN], handle[ADAPTER_HANDLE_MAX];
	struct adapter_node_info info;
	struct ct_req r;
	(void)state;
	struct adapter *ad = ct_instance();
	ct_node_id(id, 6, 1);
	ct_node_id(never, 6, 2);
	ct_req_init(&r, ad, id, 0);
	ct_provision_ok(&info, ad, &r.req);
	snprintf(handle, sizeof(handle), "%s", info.handle);
	ct_deprovision_ok(ad, id, handle);
	int n = ct_count_settles(id, 0);
	assert_true(n == 0 || n == -1);
	assert_int_equal(ct_listed(ad, id, NULL, 0), 0);
	ct_deprovision_ok(ad, id, handle);
	/* Never provisioned: nothing to remove, and that is success. */
	ct_deprovision_ok(ad, never, NULL);
	if (r.req.handle)
		ct_deprovision_ok(ad, never, r.req.handle);
	adapter_destroy(ad);
}

/* Ephemeral providers name the resource after provisioning; when that
 * answer was lost the node row has no handle, and deprovision by the node
 * id alone must still remove it. */
static void test_deprovision_without_the_handle_removes_the_node(void **state)
{
	char id[ADAPTER_ID_LEN];
	struct adapter_node_info info;
	struct ct_req r;
	(void)state;
	struct adapter *ad = ct_instance();
	ct_node_id(id, 7, 1);
	ct_req_init(&r, ad, id, 0);
	ct_provision_ok(&info, ad, &r.req);
	ct_deprovision_ok(ad, id, NULL);
	int n = ct_count_settles(id, 0);
	assert_true(n == 0 || n == -1);
	assert_int_equal(ct_listed(ad, id, NULL, 0), 0);
	adapter_destroy(ad);
}

/* --- error codes ------------------------------------------------------------ */

/* A static provider asked for a node that is not the pool's: permanent,
 * and nothing is made. */
static void test_provision_of_a_foreign_handle_fails_for_good(void **state)
{
	char id[ADAPTER_ID_LEN];
	struct adapter_node_info info;
	struct nova_err err = {0};
	struct ct_req r;
	(void)state;
	const char *foreign = json_string_value(json_object_get(ct_case, "foreign_handle"));
	assert_non_null(foreign);
	struct adapter *ad = ct_instance();
	ct_node_id(id, 8, 1);
	ct_req_init(&r, ad, id, 0);
	r.req.handle = foreign;
	assert_int_equal(adapter_provision_node(&info, ad, &r.req, &err), NOVA_EFAILED);
	assert_true(err.message[0] != '\0');
	assert_int_equal(ct_listed(ad, id, NULL, 0), 0);
	int n = ct_count(id);
	assert_true(n == 0 || n == -1);
	adapter_destroy(ad);
}

/* The provider cannot be reached (a host down, the API server away):
 * transient, so the worker retries; nothing is forgotten. */
static void test_an_unreachable_provider_is_transient(void **state)
{
	char id[ADAPTER_ID_LEN];
	struct adapter_node_info info;
	struct nova_err err = {0};
	struct adapter *ad = NULL;
	struct ct_req r;
	(void)state;
	const json_t *u = json_object_get(ct_case, "unreachable");
	const char *handle = json_string_value(json_object_get(u, "handle"));
	if (ct_create(&ad, json_object_get(u, "config"), &err))
		fail_msg("create: %s: %s", err.field, err.message);
	ct_node_id(id, 9, 1);
	memset(&r, 0, sizeof(r));
	r.req = (struct adapter_provision_request){.node_id = id, .node_name = "contract-node",
						   .node_token = "contract-token-unreachable",
						   .gateway_url = "http://127.0.0.1:9",
						   .handle = handle, .accelerator_count = 1};
	struct adapter_node_ref ref = {.node_id = id, .handle = handle};
	int rc = adapter_provision_node(&info, ad, &r.req, &err);
	if (rc != NOVA_EAGAIN)
		fail_msg("provision: %s (%s), want again", nova_code_name(rc), err.message);
	rc = adapter_deprovision_node(ad, &ref, &err);
	if (rc != NOVA_EAGAIN)
		fail_msg("deprovision: %s (%s), want again", nova_code_name(rc), err.message);
	adapter_destroy(ad);
}

int main(int argc, char **argv)
{
	const char *dirs[FILES_ALLOWED_MAX];
	char list[4096];
	size_t n = 0;
	struct nova_err err = {0};
	json_error_t jerr;
	if (argc != 3) {
		fprintf(stderr, "usage: %s PROVIDER CASE.json\n", argv[0]);
		return 2;
	}
	/* What novad sets from its configuration before threads start. */
	snprintf(list, sizeof(list), "%s", getenv("NOVA_PROVIDER_FILES") ? getenv("NOVA_PROVIDER_FILES") : "");
	for (char *save = NULL, *d = strtok_r(list, ":", &save); d && n < FILES_ALLOWED_MAX;
	     d = strtok_r(NULL, ":", &save))
		dirs[n++] = d;
	static struct adapter_context ctx;
	files_state_dir_set(getenv("NOVA_STATE_DIR"));
	snprintf(ctx.state_dir, sizeof(ctx.state_dir), "%s",
		 getenv("NOVA_STATE_DIR") ? getenv("NOVA_STATE_DIR") : "");
	snprintf(ctx.lpu_agent, sizeof(ctx.lpu_agent), "%s",
		 getenv("NOVA_LPU_AGENT") ? getenv("NOVA_LPU_AGENT") : "");
	/* The run's own directory, not the machine's (/run/nova/lpu as root). */
	if (getenv("NOVA_LPU_RUN_DIR"))
		snprintf(ctx.lpu_run_dir, sizeof(ctx.lpu_run_dir), "%s", getenv("NOVA_LPU_RUN_DIR"));
	else if (getenv("NOVA_STATE_DIR"))
		snprintf(ctx.lpu_run_dir, sizeof(ctx.lpu_run_dir), "%s/lpu", getenv("NOVA_STATE_DIR"));
	snprintf(ctx.ssh_sidecar, sizeof(ctx.ssh_sidecar), "%s",
		 getenv("NOVA_SSH_AGENT") ? getenv("NOVA_SSH_AGENT") : "");
	if (files_allowed_set(dirs, n, "NOVA_PROVIDER_FILES", &err) ||
	    adapters_register_builtin(true, &err) || adapters_start(&ctx, &err)) {
		fprintf(stderr, "driver: %s: %s\n", err.field, err.message);
		return 2;
	}
	if (!(ct_ops = adapter_find(argv[1]))) {
		fprintf(stderr, "driver: no provider %s\n", argv[1]);
		return 2;
	}
	if (!(ct_case = json_load_file(argv[2], 0, &jerr)) ||
	    !json_is_object(ct_config = json_object_get(ct_case, "config"))) {
		fprintf(stderr, "driver: %s: %s\n", argv[2], ct_case ? "no config object" : jerr.text);
		return 2;
	}

	struct CMUnitTest tests[16];
	size_t nt = 0;
#define CT_ADD(t) (tests[nt++] = (struct CMUnitTest)cmocka_unit_test(t))
	CT_ADD(test_validate_accepts_the_config);
	CT_ADD(test_validate_names_the_bad_field_and_changes_nothing);
	CT_ADD(test_create_refuses_a_bad_config_and_hands_back_nothing);
	CT_ADD(test_create_gives_an_instance_of_the_provider);
	CT_ADD(test_optional_ops_answer_not_supported_when_absent);
	CT_ADD(test_discovery_reports_sane_capacity);
	CT_ADD(test_provision_is_idempotent_on_the_node_id);
	CT_ADD(test_a_retry_with_a_new_token_makes_no_twin);
	CT_ADD(test_list_nodes_carries_each_node_id_with_its_handle);
	CT_ADD(test_status_follows_the_node_from_running_to_gone);
	CT_ADD(test_status_of_an_unknown_node_is_gone);
	CT_ADD(test_deprovision_is_idempotent_and_gone_is_success);
	if (ct_static())
		CT_ADD(test_provision_of_a_foreign_handle_fails_for_good);
	else
		CT_ADD(test_deprovision_without_the_handle_removes_the_node);
	if (json_object_get(ct_case, "unreachable"))
		CT_ADD(test_an_unreachable_provider_is_transient);
#undef CT_ADD
	int failed = _cmocka_run_group_tests(argv[1], tests, nt, NULL, NULL);
	adapters_shutdown();
	json_decref(ct_case);
	return failed;
}
