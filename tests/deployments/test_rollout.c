/* Rollouts on a real database (deployments/deployment.h, "Rollouts"): the
 * PATCH that starts one and its refusals named by field, a rolling update
 * step by step within max_surge and max_unavailable (never fewer ready
 * replicas than asked, never more than the surge), drains, a canary's
 * split in the routing table, promote, rollback (of a rollout running and
 * of one complete), and the guard's automatic rollback on the routers'
 * numbers. Replicas are reported ready by SQL, as their sidecars would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "autoscaler/autoscaler.h"
#include "deployments/deployment.h"
#include "deployments/worker.h"
#include "inventory/demand.h"
#include "inventory/routes.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

static int setup(void **state)
{
	if (testenv_setup(state) != 0)
		return -1;
	struct testenv *env = *state;
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"gpus\",\"provider\":\"fake\",\"config\":{"
				      "\"accelerator_type\":\"A100-80G\",\"accelerators_per_node\":2},"
				      "\"quotas\":{\"max_accelerators\":16}}"), 201);
	for (int v = 1; v <= 3; v++) {
		char body[300];
		snprintf(body, sizeof(body),
			 "{\"name\":\"small\",\"version\":\"%d\",\"kind\":\"single\",\"engine\":{"
			 "\"image\":\"x:%d\"},\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}", v, v);
		assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN, body), 201);
	}
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"other\",\"version\":\"1\",\"kind\":\"single\",\"engine\":{"
				      "\"image\":\"y\"},\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"),
			 201);
	return 0;
}

/* Drains end as soon as the worker looks (the engines are idle). */
static int idle_always(void *ctx, const char *replica, const char *node)
{
	(void)ctx, (void)replica, (void)node;
	return 1;
}

static void worker_cfg(struct worker_config *w)
{
	worker_config_defaults(w);
	w->base_backoff_ms = 10;
	w->wait_ms = 20;
	w->drain_min_ms = 0;
	w->replica_idle = idle_always;
}

/* What the sidecars would report: every placed replica ready, its node
 * ready; then one round of the worker. */
static void step(struct testenv *env, const struct worker_config *w)
{
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE nodes SET state = 'ready' WHERE state = 'provisioning'",
				      0, NULL, NULL), 0);
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "UPDATE replicas SET state = 'ready', endpoint = "
				      "'http://127.0.0.1:' || (20000 + ordinal + 100 * revision) "
				      "WHERE state IN ('placed', 'starting')", 0, NULL, NULL), 0);
	assert_int_equal(db_pool_exec(NULL, env->db,
				      "INSERT INTO work_items (kind, subject_id) SELECT 'deployment', id "
				      "FROM deployments ON CONFLICT (kind, subject_id) WHERE state = 'queued' "
				      "DO UPDATE SET run_after = now()", 0, NULL, NULL), 0);
	testenv_worker_drain(env, w);
}

static long long q(struct testenv *env, const char *sql)
{
	return testenv_query_int(env, sql);
}

static const char *last_rollout_event(const json_t *d)
{
	const json_t *evs = json_object_get(d, "events");
	for (size_t i = json_array_size(evs); i-- > 0;) {
		const json_t *e = json_array_get(evs, i);
		if (!strcmp(json_string_value(json_object_get(e, "kind")), "rollout"))
			return json_string_value(json_object_get(e, "reason"));
	}
	return "";
}

static json_t *get(struct testenv *env, const char *name)
{
	json_t *b = NULL;
	char path[128];
	snprintf(path, sizeof(path), "/v1/deployments/%s", name);
	assert_int_equal(testenv_http(&b, env, "GET", path, ADMIN, NULL), 200);
	return b;
}

static void deploy(struct testenv *env, const char *name, int replicas)
{
	char body[200];
	snprintf(body, sizeof(body),
		 "{\"model\":\"small:1\",\"pool\":\"gpus\",\"name\":\"%s\",\"replicas\":%d}", name,
		 replicas);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments", ADMIN, body), 201);
}

/* A deployment of version 1 with its replicas ready, and the worker's
 * configuration the test goes on with. */
static void deploy_ready(struct testenv *env, struct worker_config *w, const char *name,
			 int replicas)
{
	worker_cfg(w);
	deploy(env, name, replicas);
	step(env, w);
	step(env, w);
}

static void test_refusals_named(void **state)
{
	struct testenv *env = *state;
	json_t *b;
	deploy(env, "d", 2);
	static const struct {
		const char *body;
		long status;
		const char *field;
	} cases[] = {
		{"{\"model_version\":\"9\"}", 400, "model_version"},
		{"{\"model\":\"small:9\"}", 400, "model"},
		{"{\"model\":\"other:1\"}", 400, "model"},
		{"{\"model_version\":\"1\"}", 400, "model_version"},
		{"{\"model_version\":\"2\",\"model\":\"small:2\"}", 400, "model_version"},
		{"{\"rollout\":{\"max_surge\":2}}", 400, "rollout"},
		{"{\"model_version\":\"2\",\"rollout\":{\"max_surge\":0,\"max_unavailable\":0}}", 400,
		 "rollout.max_surge"},
		{"{\"model_version\":\"2\",\"rollout\":{\"canary_percent\":100}}", 400,
		 "rollout.canary_percent"},
		{"{\"model_version\":\"2\",\"rollout\":{\"max_ttft_ratio\":0.5}}", 400,
		 "rollout.max_ttft_ratio"},
		{"{\"model_version\":\"2\",\"rollout\":{\"surge\":1}}", 400, "rollout.surge"},
		{"{\"model_version\":2}", 400, "model_version"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/d", ADMIN,
					      cases[i].body), cases[i].status);
		if (strcmp(testenv_error_field(b), cases[i].field))
			fail_msg("%s: field %s, not %s", cases[i].body, testenv_error_field(b),
				 cases[i].field);
		json_decref(b);
	}
	assert_int_equal(q(env, "SELECT count(*) FROM rollouts"), 0);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/d/promote", ADMIN, NULL), 409);
	assert_string_equal(testenv_error_field(b), "deployment");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/d/rollback", ADMIN, NULL), 409);
	json_decref(b);
	/* One starts; a second is refused while it runs. */
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/d", ADMIN,
				      "{\"model_version\":\"2\"}"), 200);
	json_t *ro = json_object_get(b, "rollout");
	assert_string_equal(json_string_value(json_object_get(ro, "state")), "rolling");
	assert_string_equal(json_string_value(json_object_get(ro, "from_version")), "1");
	assert_string_equal(json_string_value(json_object_get(ro, "to_version")), "2");
	assert_int_equal(json_integer_value(json_object_get(ro, "max_surge")), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "model"), "version")),
			    "2");
	assert_string_equal(last_rollout_event(b),
			    "rollout 1 -> 2 started: max surge 1, max unavailable 0");
	json_decref(b);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/d", ADMIN,
				      "{\"model\":\"small:3\"}"), 409);
	assert_string_equal(testenv_error_field(b), "model");
	json_decref(b);
	/* A stopped deployment just takes the version. */
	deploy(env, "s", 1);
	assert_int_equal(testenv_http(NULL, env, "POST", "/v1/deployments/s/stop", ADMIN, NULL), 200);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/s", ADMIN,
				      "{\"model\":\"small:3\"}"), 200);
	assert_true(json_is_null(json_object_get(b, "rollout")));
	assert_string_equal(last_rollout_event(b), "version 1 -> 3 (stopped: runs when started)");
	json_decref(b);
	/* The refusals wrote nothing. */
	assert_int_equal(q(env, "SELECT count(*) FROM rollouts"), 1);
}

/* Ready serving replicas, and replicas not draining, after each round. */
static void test_rolling_update_within_surge_and_unavailable(void **state)
{
	struct testenv *env = *state;
	struct worker_config w;
	json_t *b;
	deploy_ready(env, &w, "r", 3);
	assert_int_equal(q(env, "SELECT count(*) FROM replicas WHERE state = 'ready'"), 3);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/r", ADMIN,
				      "{\"model\":\"small:2\",\"rollout\":{\"max_surge\":1,"
				      "\"max_unavailable\":0}}"), 200);
	int rounds = 0;
	long long max_live = 0;
	while (q(env, "SELECT count(*) FROM rollouts WHERE state = 'rolling'") == 1 && rounds < 60) {
		step(env, &w);
		rounds++;
		long long ready = q(env, "SELECT count(*) FROM replicas WHERE state = 'ready' "
					 "AND ordinal < 3");
		long long live = q(env, "SELECT count(*) FROM replicas WHERE state <> 'stopping'");
		if (ready < 3)
			fail_msg("round %d: %lld ready, fewer than the 3 asked with max_unavailable 0",
				 rounds, ready);
		max_live = live > max_live ? live : max_live;
		if (live > 4)
			fail_msg("round %d: %lld replicas, more than 3 + max_surge 1", rounds, live);
	}
	assert_true(rounds < 60);
	assert_int_equal(max_live, 4); /* it did surge */
	b = get(env, "r");
	json_t *ro = json_object_get(b, "rollout");
	assert_string_equal(json_string_value(json_object_get(ro, "state")), "complete");
	assert_false(json_is_null(json_object_get(ro, "finished_at")));
	assert_string_equal(last_rollout_event(b), "rollout to version 2 complete: 3 replicas ready");
	assert_string_equal(json_string_value(json_object_get(b, "state")), "running");
	json_t *list = json_object_get(b, "replica_list");
	assert_int_equal(json_array_size(list), 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(json_string_value(json_object_get(json_array_get(list, i), "version")),
				    "2");
		assert_int_equal(json_integer_value(json_object_get(json_array_get(list, i), "revision")),
				 2);
	}
	json_decref(b);
	/* The old replicas went through a drain: events are not kept per
	 * replica, but none was deleted while ready (max_unavailable 0 held
	 * above); the nodes' assignments name version 2 only. */
	assert_int_equal(q(env, "SELECT count(*) FROM replicas r JOIN models m ON m.id = r.model_id "
				"WHERE m.version <> '2'"), 0);

	/* max_unavailable 1, no surge: never more than 3, never fewer than 2 ready. */
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/r", ADMIN,
				      "{\"model\":\"small:3\",\"rollout\":{\"max_surge\":0,"
				      "\"max_unavailable\":1}}"), 200);
	rounds = 0;
	while (q(env, "SELECT count(*) FROM rollouts WHERE state = 'rolling'") == 1 && rounds < 60) {
		step(env, &w);
		rounds++;
		if (q(env, "SELECT count(*) FROM replicas WHERE state <> 'stopping'") > 3)
			fail_msg("round %d: a surge with max_surge 0", rounds);
		if (q(env, "SELECT count(*) FROM replicas WHERE state = 'ready'") < 2)
			fail_msg("round %d: fewer than 3 - 1 ready", rounds);
	}
	assert_true(rounds < 60);
	assert_int_equal(q(env, "SELECT count(*) FROM replicas r JOIN models m ON m.id = r.model_id "
				"WHERE m.version = '3' AND r.state = 'ready'"), 3);
}

/* A drain waits while the engine is busy, and ends at the timeout. */
static int busy_always(void *ctx, const char *replica, const char *node)
{
	(void)ctx, (void)replica, (void)node;
	return 0;
}

static void test_drain_waits_for_idle_or_timeout(void **state)
{
	struct testenv *env = *state;
	struct worker_config w;
	deploy_ready(env, &w, "dr", 1);
	w.replica_idle = busy_always;
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/dr", ADMIN,
				      "{\"model_version\":\"2\",\"rollout\":{\"drain_timeout_s\":1}}"),
			 200);
	step(env, &w); /* the new replica placed */
	step(env, &w); /* ready: the old one drains */
	assert_int_equal(q(env, "SELECT count(*) FROM replicas WHERE state = 'stopping' "
				"AND drain_started IS NOT NULL"), 1);
	json_t *b = get(env, "dr");
	json_t *prev = json_object_get(json_object_get(json_object_get(b, "rollout"), "progress"),
				       "previous");
	assert_int_equal(json_integer_value(json_object_get(prev, "draining")), 1);
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "rollout"),
								     "waiting_for")),
			       "draining"));
	/* Draining is out of the routes but still assigned to its node. */
	assert_int_equal(q(env, "SELECT count(*) FROM replica_placements rp JOIN replicas r "
				"ON r.id = rp.replica_id WHERE r.state = 'stopping'"), 1);
	json_decref(b);
	step(env, &w); /* busy, within the timeout: it stays */
	assert_int_equal(q(env, "SELECT count(*) FROM replicas WHERE state = 'stopping'"), 1);
	struct timespec ts = {1, 100 * 1000000L};
	nanosleep(&ts, NULL);
	step(env, &w);
	step(env, &w);
	assert_int_equal(q(env, "SELECT count(*) FROM replicas WHERE state = 'stopping'"), 0);
	assert_int_equal(q(env, "SELECT count(*) FROM rollouts WHERE state = 'complete'"), 1);
}

static json_t *route_of(struct testenv *env, const char *model)
{
	struct inventory_routes *r = NULL;
	struct nova_err err;
	char *text = NULL, etag[INVENTORY_ROUTES_ETAG_LEN];
	assert_int_equal(inventory_routes_create(&r, env->db, NULL, NULL, &err), 0);
	assert_int_equal(inventory_routes_refresh(NULL, r, &err), 0);
	assert_int_equal(inventory_routes_get(&text, etag, r, model, &err), 0);
	json_t *j = json_loads(text, 0, NULL);
	free(text);
	inventory_routes_destroy(r);
	return j;
}

static size_t endpoints_of_version(const json_t *route, const char *version)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(json_object_get(route, "endpoints"), i, e)
		n += !strcmp(json_string_value(json_object_get(e, "version")), version);
	return n;
}

static void test_canary_split_promote_and_rollback(void **state)
{
	struct testenv *env = *state;
	struct worker_config w;
	json_t *b;
	deploy_ready(env, &w, "c", 4);
	assert_int_equal(testenv_http(&b, env, "PATCH", "/v1/deployments/c", ADMIN,
				      "{\"model_version\":\"2\",\"rollout\":{\"canary_percent\":20}}"),
			 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "rollout"), "state")),
			    "canary");
	assert_string_equal(last_rollout_event(b), "canary of version 2 at 20% started (from 1)");
	json_decref(b);
	for (int i = 0; i < 4; i++)
		step(env, &w);
	/* ceil(4 x 20%) = 1 new replica beside the 4 of version 1; the split
	 * rides in the route. */
	json_t *route = route_of(env, "small");
	json_t *routes = json_object_get(route, "routes");
	json_t *rt = json_is_array(routes) ? json_array_get(routes, 0) : route;
	assert_int_equal(endpoints_of_version(rt, "1"), 4);
	assert_int_equal(endpoints_of_version(rt, "2"), 1);
	json_t *split = json_object_get(rt, "split");
	assert_int_equal(json_integer_value(json_object_get(split, "2")), 20);
	assert_int_equal(json_integer_value(json_object_get(split, "1")), 80);
	json_decref(route);
	b = get(env, "c");
	assert_non_null(strstr(json_string_value(json_object_get(json_object_get(b, "rollout"),
								     "waiting_for")),
			       "promote or roll back"));
	assert_string_equal(json_string_value(json_object_get(b, "state")), "running");
	json_decref(b);
	/* Promote: it rolls on to all 4 at version 2, the split gone. */
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/c/promote", ADMIN, NULL), 200);
	assert_string_equal(last_rollout_event(b), "canary of version 2 promoted: rolling out");
	json_decref(b);
	for (int i = 0; i < 40 && q(env, "SELECT count(*) FROM rollouts WHERE state = 'complete'") == 0;
	     i++)
		step(env, &w);
	route = route_of(env, "small");
	routes = json_object_get(route, "routes");
	rt = json_is_array(routes) ? json_array_get(routes, 0) : route;
	assert_null(json_object_get(rt, "split"));
	assert_int_equal(endpoints_of_version(rt, "2"), 4);
	assert_int_equal(endpoints_of_version(rt, "1"), 0);
	json_decref(route);

	/* A canary of 3, rolled back: version 2 stays, the canary drains. */
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/c", ADMIN,
				      "{\"model_version\":\"3\",\"rollout\":{\"canary_percent\":50}}"),
			 200);
	for (int i = 0; i < 4; i++)
		step(env, &w);
	assert_int_equal(q(env, "SELECT count(*) FROM replicas r JOIN models m ON m.id = r.model_id "
				"WHERE m.version = '3' AND r.state = 'ready'"), 2);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/c/rollback", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "rollout"), "state")),
			    "rolling_back");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "model"), "version")),
			    "2");
	assert_string_equal(last_rollout_event(b), "rolling back 3 -> 2: rollback requested");
	json_decref(b);
	/* A second rollback while one runs is refused. */
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/c/rollback", ADMIN, NULL), 409);
	json_decref(b);
	for (int i = 0; i < 20 && q(env, "SELECT count(*) FROM rollouts WHERE state = 'rolled_back'") == 0;
	     i++) {
		step(env, &w);
		if (q(env, "SELECT count(*) FROM replicas r JOIN models m ON m.id = r.model_id "
			   "WHERE m.version = '2' AND r.state = 'ready'") < 4)
			fail_msg("version 2 lost a ready replica during the rollback");
	}
	b = get(env, "c");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "rollout"), "state")),
			    "rolled_back");
	assert_string_equal(last_rollout_event(b), "rolled back to version 2: 4 replicas ready");
	json_decref(b);
	assert_int_equal(q(env, "SELECT count(*) FROM replicas"), 4);

	/* Undo the complete rollout 1 -> 2: a rollout back to 1. */
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/c/rollback", ADMIN, NULL), 409);
	json_decref(b); /* the last one (3) was rolled back already: nothing to undo */
}

static void test_rollback_of_a_complete_rollout(void **state)
{
	struct testenv *env = *state;
	struct worker_config w;
	json_t *b;
	deploy_ready(env, &w, "u", 2);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/u", ADMIN,
				      "{\"model_version\":\"2\"}"), 200);
	for (int i = 0; i < 30 && q(env, "SELECT count(*) FROM rollouts WHERE state = 'complete'") == 0;
	     i++)
		step(env, &w);
	assert_int_equal(testenv_http(&b, env, "POST", "/v1/deployments/u/rollback", ADMIN, NULL), 200);
	json_t *ro = json_object_get(b, "rollout");
	assert_string_equal(json_string_value(json_object_get(ro, "state")), "rolling");
	assert_string_equal(json_string_value(json_object_get(ro, "to_version")), "1");
	assert_string_equal(last_rollout_event(b), "rollback to version 1: rollback requested");
	json_decref(b);
	for (int i = 0; i < 30 && q(env, "SELECT count(*) FROM rollouts WHERE state = 'complete'") < 2;
	     i++)
		step(env, &w);
	assert_int_equal(q(env, "SELECT count(*) FROM replicas r JOIN models m ON m.id = r.model_id "
				"WHERE m.version = '1' AND r.state = 'ready'"), 2);
	assert_int_equal(q(env, "SELECT count(*) FROM replicas"), 2);
}

static void test_judge(void **state)
{
	(void)state;
	struct deployment_rollout_spec s;
	struct inventory_version_stats now = {.version = "2"}, old = {.version = "1"};
	char why[400];
	deployment_rollout_spec_defaults(&s);
	/* Too few requests to judge. */
	now.requests = 19;
	now.errors = 19;
	assert_false(autoscaler_rollout_judge(why, sizeof(why), &s, "2", &now, "1", &old));
	now.requests = 100;
	now.errors = 5;
	old.requests = 100;
	old.errors = 1;
	/* 0.05 - 0.01 = 0.04: within. */
	assert_false(autoscaler_rollout_judge(why, sizeof(why), &s, "2", &now, "1", &old));
	now.errors = 7; /* 0.06 > 0.01 + 0.05 */
	assert_true(autoscaler_rollout_judge(why, sizeof(why), &s, "2", &now, "1", &old));
	assert_string_equal(why, "automatic rollback: error rate of version 2 0.070 (7 of 100 "
				 "requests) > version 1's 0.010 + 0.050");
	/* No previous version's numbers: judged against 0. */
	assert_true(autoscaler_rollout_judge(why, sizeof(why), &s, "2", &now, "1", NULL));
	/* TTFT: p95 of 100 ms-ish vs 600 ms-ish. */
	now.errors = 0;
	old.errors = 0;
	now.ttft[5] = 100; /* 250..500 ms */
	old.ttft[3] = 100; /* 50..100 ms */
	assert_true(autoscaler_rollout_judge(why, sizeof(why), &s, "2", &now, "1", &old));
	assert_non_null(strstr(why, "TTFT p95 of version 2"));
	s.max_ttft_ratio = 10;
	assert_false(autoscaler_rollout_judge(why, sizeof(why), &s, "2", &now, "1", &old));
	/* The quantile: linear within the bucket; empty -1. */
	long long h[INVENTORY_TTFT_BUCKETS] = {0};
	assert_true(inventory_ttft_quantile(h, 0.95) < 0);
	h[2] = 100; /* 25..50 */
	double p = inventory_ttft_quantile(h, 0.5);
	assert_true(p > 37 && p < 38);
	h[11] = 1000; /* +Inf: its lower bound */
	assert_true(inventory_ttft_quantile(h, 0.99) == 30000);
}

static void demand(struct testenv *env, const char *text, int expect)
{
	struct nova_err err;
	json_t *j = json_loads(text, 0, NULL);
	nova_err_clear(&err);
	assert_non_null(j);
	assert_int_equal(inventory_demand_report(env->db, j, &err), expect);
	json_decref(j);
}

static void test_guard_rolls_back_on_the_routers_numbers(void **state)
{
	struct testenv *env = *state;
	struct worker_config w;
	struct autoscaler_config acfg;
	struct autoscaler *a = NULL;
	struct nova_err err;
	json_t *b;
	deploy_ready(env, &w, "g", 2);
	assert_int_equal(testenv_http(NULL, env, "PATCH", "/v1/deployments/g", ADMIN,
				      "{\"model_version\":\"2\",\"rollout\":{\"canary_percent\":50,"
				      "\"min_requests\":10}}"), 200);
	step(env, &w);
	step(env, &w);
	/* Bad reports are refused by field. */
	demand(env, "{\"router\":\"r1\",\"models\":{},\"versions\":{\"small\":{\"2\":{\"window_s\":30,"
		    "\"requests\":5,\"errors\":6,\"ttft_buckets\":[0,0,0,0,0,0,0,0,0,0,0,0]}}}}",
	       NOVA_EINVAL);
	demand(env, "{\"router\":\"r1\",\"models\":{},\"versions\":{\"small\":{\"2\":{\"window_s\":30,"
		    "\"requests\":5,\"errors\":0,\"ttft_buckets\":[0,0]}}}}", NOVA_EINVAL);
	demand(env, "{\"router\":\"r1\",\"models\":{},\"versions\":{\"small\":{\"v 2\":{\"window_s\":30,"
		    "\"requests\":5,\"errors\":0,\"ttft_buckets\":[0,0,0,0,0,0,0,0,0,0,0,0]}}}}",
	       NOVA_EINVAL);
	autoscaler_config_defaults(&acfg);
	assert_int_equal(autoscaler_create(&a, env->db, NULL, &acfg, &err), 0);
	/* Healthy numbers from two routers: nothing happens. */
	demand(env, "{\"router\":\"r1\",\"models\":{},\"versions\":{\"small\":{"
		    "\"1\":{\"window_s\":30,\"requests\":40,\"errors\":0,\"ttft_buckets\":[0,0,40,0,0,0,0,0,0,0,0,0]},"
		    "\"2\":{\"window_s\":30,\"requests\":6,\"errors\":0,\"ttft_buckets\":[0,0,6,0,0,0,0,0,0,0,0,0]}}}}",
	       0);
	demand(env, "{\"router\":\"r2\",\"models\":{},\"versions\":{\"small\":{"
		    "\"2\":{\"window_s\":30,\"requests\":6,\"errors\":0,\"ttft_buckets\":[0,0,6,0,0,0,0,0,0,0,0,0]}}}}",
	       0);
	int scaled = 0;
	assert_int_equal(autoscaler_tick(&scaled, a, 1700000000000LL, &err), 0);
	assert_int_equal(q(env, "SELECT count(*) FROM rollouts WHERE state = 'canary'"), 1);
	/* Version 2 fails a third of its requests (summed over both routers). */
	demand(env, "{\"router\":\"r2\",\"models\":{},\"versions\":{\"small\":{"
		    "\"2\":{\"window_s\":30,\"requests\":12,\"errors\":6,\"ttft_buckets\":[0,0,6,0,0,0,0,0,0,0,0,0]}}}}",
	       0);
	assert_int_equal(autoscaler_tick(&scaled, a, 1700000001000LL, &err), 0);
	struct autoscaler_counters c;
	autoscaler_counters_get(&c, a);
	assert_int_equal(c.rollbacks, 1);
	b = get(env, "g");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "rollout"), "state")),
			    "rolling_back");
	assert_string_equal(last_rollout_event(b),
			    "rolling back 2 -> 1: automatic rollback: error rate of version 2 0.333 "
			    "(6 of 18 requests) > version 1's 0.000 + 0.050");
	json_decref(b);
	/* Judged once: the next tick leaves the rollback alone. */
	assert_int_equal(autoscaler_tick(&scaled, a, 1700000002000LL, &err), 0);
	autoscaler_counters_get(&c, a);
	assert_int_equal(c.rollbacks, 1);
	autoscaler_destroy(a);
	/* A report without versions clears the router's rows. */
	demand(env, "{\"router\":\"r2\",\"models\":{}}", 0);
	assert_int_equal(q(env, "SELECT count(*) FROM router_version_stats WHERE router = 'r2'"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_refusals_named, setup, testenv_teardown),
		cmocka_unit_test_setup_teardown(test_rolling_update_within_surge_and_unavailable, setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_drain_waits_for_idle_or_timeout, setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_canary_split_promote_and_rollback, setup,
						testenv_teardown),
		cmocka_unit_test_setup_teardown(test_rollback_of_a_complete_rollout, setup,
						testenv_teardown),
		cmocka_unit_test(test_judge),
		cmocka_unit_test_setup_teardown(test_guard_rolls_back_on_the_routers_numbers, setup,
						testenv_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
