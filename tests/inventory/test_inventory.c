/* Heartbeats over HTTP: node tokens (own, another node's, revoked, all
 * refused alike), soft
 * state flushed in batches, stale sequence numbers, bad bodies, the health
 * sweep, and replica readiness making a deployment running. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/log.h"
#include "core/secret.h"
#include "core/textbuf.h"
#include "deployments/worker.h"
#include "inventory/inventory.h"
#include "pools/pool.h"
#include "tests/support/testenv.h"

#define ADMIN TESTENV_ADMIN_TOKEN

struct fx {
	struct testenv env;
	char pool_id[64];
	char node_a[POOL_ID_LEN], node_b[POOL_ID_LEN];
	char token_a[128], token_b[128];
};


static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct nova_err err;
	json_t *b;
	if (!f || testenv_gateway_start(&f->env, 64 * 1024) != 0)
		return -1;
	assert_int_equal(testenv_http(&b, &f->env, "POST", "/v1/pools", ADMIN,
				      "{\"name\":\"p\",\"provider\":\"fake\"}"), 201);
	snprintf(f->pool_id, sizeof(f->pool_id), "%s", json_string_value(json_object_get(b, "id")));
	json_decref(b);
	struct pool_node_spec sa = {.name = "a"}, sb = {.name = "b"};
	assert_int_equal(pool_node_add(f->node_a, f->token_a, sizeof(f->token_a), f->env.db, f->pool_id, &sa, &err), 0);
	assert_int_equal(pool_node_add(f->node_b, f->token_b, sizeof(f->token_b), f->env.db, f->pool_id, &sb, &err), 0);
	assert_int_equal(pool_node_transition(f->env.db, f->node_a, POOL_NODE_READY, "provisioned", &err), 0);
	assert_int_equal(pool_node_transition(f->env.db, f->node_b, POOL_NODE_READY, "provisioned", &err), 0);
	/* Their address, as a provider records it: endpoints are taken on it. */
	assert_int_equal(db_pool_exec(NULL, f->env.db, "UPDATE nodes SET endpoint = '127.0.0.1'", 0, NULL,
				      &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	testenv_close(&f->env);
	free(f);
	return 0;
}

static long beat(json_t **out, struct fx *f, const char *node, const char *token, const char *body)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/nodes/%s/heartbeat", node);
	return testenv_http(out, &f->env, "POST", path, token, body);
}

/* A model "m" deployed as "d" with one replica, placed by the worker on
 * one of the fake pool's nodes: that replica's id and its node's. */
static void deploy_one(struct fx *f, char replica[64], char node[64])
{
	struct worker_config wcfg;
	json_t *b;
	worker_config_defaults(&wcfg);
	wcfg.wait_ms = 20;
	assert_int_equal(testenv_http(NULL, &f->env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"m\",\"kind\":\"single\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"), 201);
	assert_int_equal(testenv_http(NULL, &f->env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"m\",\"pool\":\"p\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(&f->env, &wcfg);
	assert_int_equal(testenv_http(&b, &f->env, "GET", "/v1/deployments/d", ADMIN, NULL), 200);
	json_t *r = json_array_get(json_object_get(b, "replica_list"), 0);
	snprintf(replica, 64, "%s", json_string_value(json_object_get(r, "id")));
	snprintf(node, 64, "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(r, "placements"), 0), "node_id")));
	json_decref(b);
}


static void flush(struct fx *f)
{
	struct nova_err err;
	if (inventory_flush(f->env.inventory, &err))
		fail_msg("flush: %s", err.message);
}

static long long q(struct fx *f, const char *sql)
{
	return testenv_query_int(&f->env, sql);
}

static void sql(struct fx *f, const char *text)
{
	struct nova_err err;
	if (db_pool_exec(NULL, f->env.db, text, 0, NULL, &err))
		fail_msg("%s: %s", text, err.message);
}

/* This novad has been recording for an hour (as if it had been up). */
static void recording_for_an_hour(struct fx *f)
{
	sql(f, "UPDATE inventory_recorders SET recording_since = now() - interval '1 hour'");
}

/* One sweep, which must change `want` nodes. */
static void sweep(struct fx *f, int want)
{
	struct nova_err err;
	int marked = -1;
	if (inventory_sweep(&marked, f->env.inventory, &err))
		fail_msg("sweep: %s", err.message);
	assert_int_equal(marked, want);
}

/* --- the heartbeat budget (issue 20) ------------------------------------------------ */

/* An inventory of its own over the test's database, with a budget: the
 * heartbeats below go to it directly (testenv's has the default budget). */
static struct inventory *budget_inventory(unsigned interval_ms, unsigned budget, struct fx *f)
{
	struct inventory_config cfg;
	struct inventory *inv = NULL;
	struct nova_err err;
	inventory_config_defaults(&cfg);
	cfg.interval_ms = interval_ms;
	cfg.max_heartbeats_per_second = budget;
	cfg.failed_after_ms = 1000;
	if (inventory_create(&inv, f->env.db, &cfg, &err) || inventory_refresh(inv, &err))
		fail_msg("inventory: %s", err.message);
	return inv;
}

/* n more ready nodes with tokens in pool p, which never heartbeat. */
static void add_nodes(struct fx *f, int n)
{
	char text[768];
	snprintf(text, sizeof(text),
		 "INSERT INTO nodes (pool_id, name, handle, state, state_reason, accelerator_type, "
		 "accelerator_count, accelerator_memory_mib, token_hash) SELECT p.id, 'extra-' || g, "
		 "'extra-' || g, 'ready', 'test', 'A100-80G', 8, 81920, "
		 "encode(sha256(convert_to('extra-token-' || g, 'UTF8')), 'hex') "
		 "FROM pools p, generate_series(1, %d) g WHERE p.name = 'p'", n);
	sql(f, text);
}

/* One text value of a query. */
static void qtext(char *out, size_t cap, struct fx *f, const char *text)
{
	struct nova_err err;
	PGresult *res = NULL;
	if (db_pool_exec(&res, f->env.db, text, 0, NULL, &err))
		fail_msg("%s: %s", text, err.message);
	assert_int_equal(PQntuples(res), 1);
	snprintf(out, cap, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* A heartbeat straight to inv; the interval its answer tells. */
static long long beat_on(struct inventory *inv, const char *node, const char *token, const char *body)
{
	struct nova_err err;
	char *answer = NULL;
	json_error_t jerr;
	json_t *b = json_loads(body, 0, &jerr), *a;
	assert_non_null(b);
	if (inventory_heartbeat(&answer, inv, node, token, b, &err))
		fail_msg("heartbeat: %s", err.message);
	json_decref(b);
	assert_non_null(a = json_loads(answer, 0, &jerr));
	assert_true(json_is_true(json_object_get(a, "accepted")));
	long long told = json_integer_value(json_object_get(a, "interval_ms"));
	json_decref(a);
	free(answer);
	return told;
}

static void flush_on(struct inventory *inv)
{
	struct nova_err err;
	if (inventory_flush(inv, &err))
		fail_msg("flush: %s", err.message);
}

static void sweep_on(struct inventory *inv, int want)
{
	struct nova_err err;
	int marked = -1;
	if (inventory_sweep(&marked, inv, &err))
		fail_msg("sweep: %s", err.message);
	assert_int_equal(marked, want);
}

static void test_the_told_interval_is_the_fleet_over_the_budget_rounded_up(void **state)
{
	(void)state;
	assert_int_equal(inventory_interval_for(200, 10, 100), 10000);  /* 100 nodes at 10/s */
	assert_int_equal(inventory_interval_for(2000, 20000, 100000), 5000);
	assert_int_equal(inventory_interval_for(2000, 20000, 1000000), 50000);
	assert_int_equal(inventory_interval_for(2000, 3000, 10000), 3400); /* 3,334 up to 2 digits */
	assert_int_equal(inventory_interval_for(200, 10, 101), 11000);     /* 10,100 up to 2 digits */
	assert_int_equal(inventory_interval_for(2000, 20000, 10000), 2000); /* never below the configured */
	assert_int_equal(inventory_interval_for(2000, 0, 1000000), 2000);   /* no budget */
	assert_int_equal(inventory_interval_for(100, 1, 1000000000), INVENTORY_INTERVAL_MAX_MS);
	/* The rate it gives is never over the budget. */
	for (size_t nodes = 1; nodes < 300000; nodes = nodes * 3 + 7) {
		unsigned told = inventory_interval_for(100, 5000, nodes);
		assert_true((double)nodes * 1000.0 / told <= 5000.0);
	}
}

/* The interval in the answer grows with the fleet the inventory knows,
 * is never below the configured one, and is recorded with the heartbeat. */
static void test_the_told_interval_grows_with_the_fleet_and_is_in_the_answer(void **state)
{
	struct fx *f = *state;
	struct inventory_status st;
	struct inventory *inv = budget_inventory(500, 10, f);
	char body[128];
	assert_int_equal(inventory_nodes_known(inv), 2);
	/* 2 nodes at 10/s would be 200 ms: the configured 500 it is. */
	assert_int_equal(inventory_interval_ms(inv), 500);
	assert_int_equal(beat_on(inv, f->node_a, f->token_a, "{\"seq\":1}"), 500);
	add_nodes(f, 98);
	struct nova_err err;
	assert_int_equal(inventory_refresh(inv, &err), 0);
	assert_int_equal(inventory_nodes_known(inv), 100);
	assert_int_equal(inventory_interval_ms(inv), 10000);
	/* Both ways an answer is written: built (no generation yet) and the
	 * short text of a sidecar whose view is current. */
	assert_int_equal(beat_on(inv, f->node_a, f->token_a, "{\"seq\":2}"), 10000);
	snprintf(body, sizeof(body), "{\"seq\":3,\"assignment_generation\":\"none\"}");
	assert_int_equal(beat_on(inv, f->node_a, f->token_a, body), 10000);
	inventory_status_get(&st, inv);
	assert_int_equal(st.interval_ms, 10000);
	flush_on(inv);
	assert_int_equal(q(f, "SELECT h.interval_ms FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id "
			      "WHERE n.name = 'a'"), 10000);
	assert_int_equal(q(f, "SELECT count(*) FROM node_heartbeats WHERE interval_ms IS NOT NULL"), 1);
	inventory_destroy(inv);
}

/* Both inventories have just flushed and every recorder has been
 * recording for an hour: the window is open for the whole silence. */
static void window_open(struct fx *f, struct inventory *inv)
{
	flush(f);
	flush_on(inv);
	recording_for_an_hour(f);
}

/* A node told a long interval is not unhealthy after 3 of the short one,
 * but after 3 of its own; failed after the longer of node_failed_after_ms
 * and 6 of its own. A node told the short one is judged by that. */
static void test_a_node_told_a_long_interval_is_judged_by_it(void **state)
{
	struct fx *f = *state;
	struct inventory *inv = budget_inventory(200, 10, f);
	struct nova_err err;
	char reason[128];
	add_nodes(f, 98);
	assert_int_equal(inventory_refresh(inv, &err), 0);
	/* a beats to the budgeted inventory (100 nodes at 10/s: 10 s), b to
	 * testenv's (the default budget: the configured 200 ms). */
	assert_int_equal(beat_on(inv, f->node_a, f->token_a, "{\"seq\":1}"), 10000);
	json_t *b;
	assert_int_equal(beat(&b, f, f->node_b, f->token_b, "{\"seq\":1}"), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "interval_ms")), 200);
	json_decref(b);
	window_open(f, inv);
	assert_int_equal(q(f, "SELECT h.interval_ms FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id "
			      "WHERE n.name = 'b'"), 200);
	/* 700 ms: past 3 x 200 ms, far from 3 x 10 s. */
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '700 ms' "
	       "WHERE node_id IN (SELECT id FROM nodes WHERE name IN ('a', 'b'))");
	sweep_on(inv, 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'ready'"), 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'b' AND state = 'unhealthy'"), 1);
	/* b is heard of again from here on (it is not the subject). */
	const char *b_now = "UPDATE node_heartbeats SET last_heartbeat_at = now() "
			    "WHERE node_id = (SELECT id FROM nodes WHERE name = 'b')";
	window_open(f, inv);
	sql(f, b_now);
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '29 s' "
	       "WHERE node_id = (SELECT id FROM nodes WHERE name = 'a')");
	sweep_on(inv, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'ready'"), 1);
	/* 31 s: past 3 of its own intervals. Unhealthy, not failed, although
	 * node_failed_after_ms (1 s) is long past: 6 of its intervals it gets. */
	window_open(f, inv);
	sql(f, b_now);
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '31 s' "
	       "WHERE node_id = (SELECT id FROM nodes WHERE name = 'a')");
	sweep_on(inv, 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'unhealthy'"), 1);
	qtext(reason, sizeof(reason), f, "SELECT state_reason FROM nodes WHERE name = 'a'");
	assert_string_equal(reason, "no heartbeat for 30000 ms (3 intervals of 10000 ms)");
	window_open(f, inv);
	sql(f, b_now);
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '59 s' "
	       "WHERE node_id = (SELECT id FROM nodes WHERE name = 'a')");
	sweep_on(inv, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'unhealthy'"), 1);
	window_open(f, inv);
	sql(f, b_now);
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '61 s' "
	       "WHERE node_id = (SELECT id FROM nodes WHERE name = 'a')");
	sweep_on(inv, 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'failed'"), 1);
	qtext(reason, sizeof(reason), f, "SELECT state_reason FROM nodes WHERE name = 'a'");
	assert_string_equal(reason, "no heartbeat for 60000 ms");
	inventory_destroy(inv);
}

static void test_heartbeat_is_applied_and_flushed(void **state)
{
	struct fx *f = *state;
	json_t *b;
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":10,\"capacity\":{\"gpus\":8}}"), 200);
	assert_true(json_is_true(json_object_get(b, "accepted")));
	assert_int_equal(json_integer_value(json_object_get(b, "interval_ms")), 200); /* testenv's interval */
	json_decref(b);
	/* Soft state: nothing written until the flush. */
	assert_int_equal(q(f, "SELECT count(*) FROM node_heartbeats WHERE last_heartbeat_at IS NOT NULL"), 0);
	flush(f);
	assert_int_equal(q(f, "SELECT h.last_seq FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id WHERE n.name = 'a'"), 10);
	assert_int_equal(q(f, "SELECT (h.capacity->>'gpus')::int FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id WHERE n.name = 'a'"), 8);
	assert_int_equal(q(f, "SELECT count(*) FROM node_heartbeats WHERE last_heartbeat_at > now() - interval '1 minute'"), 1);
}

static void test_tokens_own_other_unknown_missing(void **state)
{
	struct fx *f = *state;
	json_t *b;
	assert_int_equal(beat(&b, f, f->node_a, f->token_b, "{\"seq\":1}"), 401);
	assert_string_equal(testenv_error_code(b), "unauthenticated");
	json_decref(b);
	assert_int_equal(beat(&b, f, f->node_a, "nova-node-nope", "{\"seq\":1}"), 401);
	json_decref(b);
	assert_int_equal(beat(&b, f, f->node_a, NULL, "{\"seq\":1}"), 401);
	json_decref(b);
	assert_int_equal(beat(&b, f, f->node_a, ADMIN, "{\"seq\":1}"), 401); /* not a node token */
	json_decref(b);
	assert_int_equal(beat(&b, f, "00000000-0000-4000-8000-000000000000", f->token_a, "{\"seq\":1}"), 401);
	json_decref(b);
	assert_int_equal(beat(&b, f, "not-a-node", f->token_a, "{\"seq\":1}"), 401);
	json_decref(b);
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
}

/* An unknown node id and a wrong token on a known node get the same answer
 * (status and body), so node ids cannot be enumerated without a token: it
 * used to be 404 "no node with id ..." for the one and 401 or 403 for the
 * other. Known nodes are cached and fresh here (the heartbeat above read
 * them), so a difference in path would show. */
static void test_unknown_node_and_wrong_token_answer_alike(void **state)
{
	struct fx *f = *state;
	json_t *b;
	char *want = NULL;
	const char *ids[] = {"00000000-0000-4000-8000-000000000000", "not-a-node", NULL, NULL};
	const char *tokens[] = {"nova-node-nope", NULL, NULL};
	ids[2] = f->node_a;
	ids[3] = f->node_b;
	tokens[1] = f->token_b;
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
	for (size_t i = 0; i < 4; i++)
		for (size_t t = 0; t < 2; t++) {
			if (i == 3 && t == 1)
				continue; /* b's own token */
			assert_int_equal(beat(&b, f, ids[i], tokens[t], "{\"seq\":2}"), 401);
			/* The request id differs per request; the rest must not. */
			json_object_del(json_object_get(b, "error"), "request_id");
			char *text = json_dumps(json_object_get(b, "error"), JSON_SORT_KEYS | JSON_COMPACT);
			json_decref(b);
			assert_non_null(text);
			if (!want)
				want = text;
			else {
				assert_string_equal(text, want);
				free(text);
			}
		}
	assert_null(strstr(want, "00000000"));
	free(want);
	/* The token first: a bad body without a valid token is 401 too. */
	assert_int_equal(beat(&b, f, f->node_b, "nova-node-nope", "{\"seq\":\"x\"}"), 401);
	json_decref(b);
	assert_int_equal(beat(&b, f, "not-a-node", "nova-node-nope", "{\"seq\":-1}"), 401);
	json_decref(b);
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":\"x\"}"), 400);
	json_decref(b);
}

/* A token the table does not hold is looked up by its hash through an
 * index (sql/0012), not a scan of nodes per forged heartbeat. */
static void test_token_hash_lookups_use_an_index(void **state)
{
	struct fx *f = *state;
	assert_int_equal(q(f, "SELECT count(*) FROM pg_indexes WHERE tablename = 'nodes' "
			      "AND indexdef LIKE '%(token_hash)%'"), 1);
	/* And the planner can use it for the heartbeat's lookup (seq scans
	 * off: a two-row table is otherwise scanned whatever its indexes). */
	struct nova_err err;
	PGresult *res = NULL;
	struct db_conn *c;
	assert_int_equal(db_conn_acquire(&c, f->env.db, &err), 0);
	assert_int_equal(db_exec(NULL, c, "SET enable_seqscan = off", 0, NULL, &err), 0);
	assert_int_equal(db_exec(&res, c, "EXPLAIN SELECT n.id FROM nodes n WHERE n.token_hash = "
				 "repeat('a', 64)", 0, NULL, &err), 0);
	bool indexed = false;
	for (int i = 0; i < PQntuples(res); i++)
		indexed |= strstr(PQgetvalue(res, i, 0), "nodes_token_hash") != NULL;
	PQclear(res);
	db_exec(NULL, c, "RESET enable_seqscan", 0, NULL, &err);
	db_conn_release(f->env.db, c);
	assert_true(indexed);
}

static void test_stale_sequence_is_ignored(void **state)
{
	struct fx *f = *state;
	json_t *b;
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":100}"), 200);
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":99}"), 200);
	assert_false(json_is_true(json_object_get(b, "accepted")));
	assert_non_null(strstr(json_string_value(json_object_get(b, "reason")), "stale sequence number 99"));
	json_decref(b);
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":100}"), 200);
	assert_false(json_is_true(json_object_get(b, "accepted")));
	json_decref(b);
	flush(f);
	assert_int_equal(q(f, "SELECT h.last_seq FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id WHERE n.name = 'a'"), 100);
}

static void test_bad_bodies_name_the_field(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *body;
		const char *field;
	} cases[] = {
		{"{}", "seq"},
		{"{\"seq\":\"1\"}", "seq"},
		{"{\"seq\":-1}", "seq"},
		{"{\"seq\":1,\"extra\":true}", "extra"},
		{"{\"seq\":1,\"replicas\":{}}", "replicas"},
		{"{\"seq\":1,\"replicas\":[{\"state\":\"ready\"}]}", "replicas[0].replica_id"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"x\",\"state\":\"ready\"}]}", "replicas[0].replica_id"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"up\"}]}",
		 "replicas[0].state"},
		{"{\"seq\":", ""},
		/* Past 64 bits: named, not jansson's bare "too big integer". */
		{"{\"seq\":18446744073709551616}", "seq"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"queue_depth\":99999999999999999999}}]}",
		 "replicas[0].load.queue_depth"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"queue_depth\":-1}}]}", "replicas[0].load.queue_depth"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"kv_cache_usage\":1.5}}]}", "replicas[0].load.kv_cache_usage"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"running\":\"3\"}}]}", "replicas[0].load.running"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"restarts\":1.5}}]}", "replicas[0].load.restarts"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"inflight_tokens\":-1}}]}", "replicas[0].load.inflight_tokens"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"inflight_tokens\":\"512\"}}]}", "replicas[0].load.inflight_tokens"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"ttft_p95_ms\":-0.5}}]}", "replicas[0].load.ttft_p95_ms"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"ttft_p95_ms\":null}}]}", "replicas[0].load.ttft_p95_ms"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"load\":{\"newer_hint\":{}}}]}", "replicas[0].load.newer_hint"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"adapters_loaded\":\"a\"}]}", "replicas[0].adapters_loaded"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"adapters_loaded\":[\"a\",3]}]}", "replicas[0].adapters_loaded[1]"},
		{"{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"adapters_loaded\":[\"\"]}]}", "replicas[0].adapters_loaded[0]"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *b;
		long st = beat(&b, f, f->node_a, f->token_a, cases[i].body);
		if (st != 400 || strcmp(testenv_error_field(b), cases[i].field) != 0)
			fail_msg("case %zu: %ld \"%s\"", i, st, testenv_error_field(b));
		json_decref(b);
	}
	/* Bounded: 64 names at most, 512 bytes each. */
	struct textbuf t = {0};
	textbuf_adds(&t, "{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"adapters_loaded\":[");
	for (int i = 0; i < 65; i++)
		textbuf_addf(&t, "%s\"a%d\"", i ? "," : "", i);
	textbuf_adds(&t, "]}]}");
	json_t *b;
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, t.p), 400);
	assert_string_equal(testenv_error_field(b), "replicas[0].adapters_loaded");
	json_decref(b);
	textbuf_finish(&t);
	textbuf_adds(&t, "{\"seq\":1,\"replicas\":[{\"replica_id\":\"00000000-0000-4000-8000-000000000000\",\"state\":\"ready\",\"adapters_loaded\":[\"");
	for (int i = 0; i < 513; i++)
		textbuf_adds(&t, "x");
	textbuf_adds(&t, "\"]}]}");
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, t.p), 400);
	assert_string_equal(testenv_error_field(b), "replicas[0].adapters_loaded[0]");
	json_decref(b);
	textbuf_finish(&t);
	char *big = malloc(128 * 1024);
	memset(big, ' ', 128 * 1024 - 1);
	big[0] = '{';
	big[128 * 1024 - 1] = '\0';
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, big), 413);
	free(big);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM node_heartbeats WHERE last_seq IS NOT NULL"), 0);
}

static void test_adapters_loaded_are_kept_with_the_load_and_replaced_by_the_next_report(void **state)
{
	struct fx *f = *state;
	const char *id = "00000000-0000-4000-8000-000000000001";
	char body[512];
	snprintf(body, sizeof(body), "{\"seq\":1,\"replicas\":[{\"replica_id\":\"%s\",\"state\":"
		 "\"ready\",\"load\":{\"queue_depth\":1},\"adapters_loaded\":[\"sql\",\"chat\"]}]}", id);
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, body), 200);
	json_t *got = inventory_adapters_loaded(f->env.inventory);
	json_t *want = json_pack("{s:[s,s]}", id, "sql", "chat");
	assert_true(json_equal(got, want));
	json_decref(got);
	json_decref(want);
	/* The next report without any: none loaded. */
	snprintf(body, sizeof(body), "{\"seq\":2,\"replicas\":[{\"replica_id\":\"%s\",\"state\":"
		 "\"ready\",\"load\":{\"queue_depth\":1}}]}", id);
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, body), 200);
	got = inventory_adapters_loaded(f->env.inventory);
	assert_int_equal(json_object_size(got), 0);
	json_decref(got);
}

/* The autoscaler's read: some replicas' loads, each on the node named for
 * it; a replica asked of the wrong node, an unknown node or a malformed id
 * is left out. */
static void test_loads_of_some_replicas_on_their_nodes(void **state)
{
	struct fx *f = *state;
	const char *r1 = "00000000-0000-4000-8000-000000000011";
	const char *r2 = "00000000-0000-4000-8000-000000000012";
	char body[512];
	snprintf(body, sizeof(body), "{\"seq\":1,\"replicas\":[{\"replica_id\":\"%s\",\"state\":"
		 "\"ready\",\"load\":{\"queue_depth\":3}},{\"replica_id\":\"%s\",\"state\":"
		 "\"ready\",\"load\":{\"queue_depth\":5}}]}", r1, r2);
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, body), 200);
	json_t *ask = json_pack("{s:s, s:s, s:s}", r1, f->node_a, r2, f->node_b,
				"00000000-0000-4000-8000-000000000099", "not-a-uuid");
	json_t *got = inventory_loads_of(f->env.inventory, ask);
	assert_int_equal(json_object_size(got), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(got, r1), "queue_depth")), 3);
	json_decref(got);
	json_object_set_new(ask, r2, json_string(f->node_a));
	got = inventory_loads_of(f->env.inventory, ask);
	assert_int_equal(json_object_size(got), 2);
	json_decref(got);
	json_decref(ask);
}

static void test_sweep_unhealthy_back_and_failed_stays_failed(void **state)
{
	struct fx *f = *state;
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
	flush(f);
	/* A node that never heartbeated is not swept (node b). */
	recording_for_an_hour(f);
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '700 ms' "
	       "WHERE node_id = (SELECT id FROM nodes WHERE name = 'a')");
	sweep(f, 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'unhealthy'"), 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'b' AND state = 'ready'"), 1);
	/* It speaks again: ready with the next flush. */
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":2}"), 200);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'ready'"), 1);
	assert_int_equal(q(f, "SELECT count(*) FROM node_events WHERE reason = 'heartbeat resumed'"), 1);
	/* Silent past the failure threshold: failed; a late heartbeat does not
	 * bring it back. */
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '2 s' "
	       "WHERE node_id = (SELECT id FROM nodes WHERE name = 'a')");
	sweep(f, 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'failed'"), 1);
	/* A failed node's heartbeat is recorded (the reconciler may find it
	 * was judged wrongly) but not accepted, and changes nothing here. */
	json_t *b;
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":3}"), 200);
	assert_true(json_is_false(json_object_get(b, "accepted")));
	json_decref(b);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'failed'"), 1);
	assert_int_equal(q(f, "SELECT h.last_seq FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id "
			      "WHERE n.name = 'a'"), 3);
}

/* Silence counts only while every novad was recording: not up to now while
 * another novad is blind (its flushes late: its heartbeats may be in its
 * memory), and not from before a novad's new run of flushes began. */
static void test_silence_while_a_novad_was_blind_does_not_count(void **state)
{
	struct fx *f = *state;
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
	flush(f);
	recording_for_an_hour(f);
	/* Another novad, blind for 1.5 s (the bound is 1 s), not yet departed (2 s). */
	sql(f, "INSERT INTO inventory_recorders (id, host, recording_since, last_flush_at) VALUES "
	       "(gen_random_uuid(), 'other', now() - interval '1 hour', now() - interval '1500 ms')");
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '800 ms' "
	       "WHERE node_id = (SELECT id FROM nodes WHERE name = 'a')");
	sweep(f, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'ready'"), 1);
	/* It flushes again, after its blind spell: a new run, a fresh grace. */
	sql(f, "UPDATE inventory_recorders SET last_flush_at = now(), recording_since = now() "
	       "WHERE host = 'other'");
	sweep(f, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'ready'"), 1);
	/* Once both have recorded for longer than the threshold: judged. */
	sql(f, "UPDATE inventory_recorders SET recording_since = now() - interval '1 hour'");
	sweep(f, 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'unhealthy'"), 1);
}

/* A novad silent past the departure bound is forgotten, and every node
 * gets a fresh grace (its sidecars may be finding another novad). */
static void test_a_departed_novad_gives_every_node_a_fresh_grace(void **state)
{
	struct fx *f = *state;
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
	flush(f);
	recording_for_an_hour(f);
	sql(f, "INSERT INTO inventory_recorders (id, host, recording_since, last_flush_at) VALUES "
	       "(gen_random_uuid(), 'gone', now() - interval '1 hour', now() - interval '3 s')");
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '700 ms' "
	       "WHERE node_id = (SELECT id FROM nodes WHERE name = 'a')");
	sweep(f, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM inventory_recorders"), 1);
	assert_int_equal(q(f, "SELECT count(*) FROM inventory_recorders WHERE recording_since > now() - interval '1 s'"), 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'a' AND state = 'ready'"), 1);
}

/* A novad that has not flushed yet has seen nothing: it judges nothing,
 * however old the stored heartbeats (a novad started after an outage). */
static void test_nothing_is_judged_before_the_first_flush(void **state)
{
	struct fx *f = *state;
	sql(f, "UPDATE node_heartbeats SET last_seq = 1, last_heartbeat_at = now() - interval '1 hour'");
	sweep(f, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 2);
	/* Its first flush starts its run: a fresh grace from then. */
	flush(f);
	sweep(f, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 2);
}

/* More than half of a pool's heartbeating nodes (and at least 3) silent at
 * once: held as they are, said in a pool event and the status; once they
 * beat again the brake lifts, and the one still silent is judged. */
static void test_the_brake_holds_a_pool_that_goes_quiet_at_once(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	struct inventory_status st;
	char node_c[POOL_ID_LEN], node_d[POOL_ID_LEN], token_c[128], token_d[128];
	struct pool_node_spec sc = {.name = "c"}, sd = {.name = "d"};
	assert_int_equal(pool_node_add(node_c, token_c, sizeof(token_c), f->env.db, f->pool_id, &sc, &err), 0);
	assert_int_equal(pool_node_add(node_d, token_d, sizeof(token_d), f->env.db, f->pool_id, &sd, &err), 0);
	assert_int_equal(pool_node_transition(f->env.db, node_c, POOL_NODE_READY, "provisioned", &err), 0);
	assert_int_equal(pool_node_transition(f->env.db, node_d, POOL_NODE_READY, "provisioned", &err), 0);
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
	assert_int_equal(beat(NULL, f, f->node_b, f->token_b, "{\"seq\":1}"), 200);
	assert_int_equal(beat(NULL, f, node_c, token_c, "{\"seq\":1}"), 200);
	assert_int_equal(beat(NULL, f, node_d, token_d, "{\"seq\":1}"), 200);
	flush(f);
	recording_for_an_hour(f);
	sql(f, "UPDATE node_heartbeats SET last_heartbeat_at = now() - interval '700 ms' WHERE node_id IN "
	       "(SELECT id FROM nodes WHERE name IN ('a', 'b', 'c'))");
	sweep(f, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 4);
	assert_int_equal(q(f, "SELECT count(*) FROM pool_events WHERE kind = 'brake_engaged' "
			      "AND message LIKE '%3 of 4 heartbeating nodes silent%'"), 1);
	inventory_status_get(&st, f->env.inventory);
	assert_int_equal(st.brakes_engaged, 1);
	assert_int_equal(st.brake_engagements, 1);
	json_t *brakes = inventory_brakes(f->env.inventory);
	assert_string_equal(json_string_value(json_object_get(json_array_get(brakes, 0), "pool")), "p");
	json_decref(brakes);
	/* Still held on the next sweep, with no second event. */
	sweep(f, 0);
	assert_int_equal(q(f, "SELECT count(*) FROM pool_events WHERE kind = 'brake_engaged'"), 1);
	/* Two beat again: one of four silent, under the brake: judged. */
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":2}"), 200);
	assert_int_equal(beat(NULL, f, f->node_b, f->token_b, "{\"seq\":2}"), 200);
	flush(f);
	sweep(f, 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE name = 'c' AND state = 'unhealthy'"), 1);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE state = 'ready'"), 3);
	assert_int_equal(q(f, "SELECT count(*) FROM pool_events WHERE kind = 'brake_released'"), 1);
	inventory_status_get(&st, f->env.inventory);
	assert_int_equal(st.brakes_engaged, 0);
}

static void test_revoked_token_is_refused(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	json_t *b;
	char fresh[128];
	assert_int_equal(pool_node_token_issue(fresh, sizeof(fresh), f->env.db, f->node_b, &err), 0);
	/* The old token stops working once the cache is refreshed; the inventory
	 * has not seen node b yet, so it reads the new hash now. */
	assert_int_equal(beat(&b, f, f->node_b, f->token_b, "{\"seq\":1}"), 401);
	json_decref(b);
	assert_int_equal(beat(NULL, f, f->node_b, fresh, "{\"seq\":1}"), 200);
}

/* A node provisioned again gets a new token while the inventory still
 * holds the old hash: the new token is checked against a fresh read (once
 * the hash is a second old), not refused until the next refresh; the old
 * token then stops working. */
/* A token issued anywhere (another novad provisioning the node again) is
 * taken at once, by its lookup in the database: no window in which the
 * new agent is refused. */
static void test_a_rotated_token_works_at_once(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	json_t *b;
	char fresh[128];
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
	assert_int_equal(pool_node_token_issue(fresh, sizeof(fresh), f->env.db, f->node_a, &err), 0);
	assert_int_equal(beat(&b, f, f->node_a, fresh, "{\"seq\":2}"), 200);
	assert_true(json_is_true(json_object_get(b, "accepted")));
	json_decref(b);
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":3}"), 401);
	json_decref(b);
}

static char logged[4096];
static void capture(void *ctx, enum nova_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	size_t n = strlen(logged);
	snprintf(logged + n, sizeof(logged) - n, "%s\n", line);
}

/* One report with endpoint ep for the replica on node; the answer. */
static json_t *report(struct fx *f, const char *node, const char *token, const char *replica,
		      long long seq, const char *ep)
{
	char body[1024];
	json_t *b = NULL, *e = json_string(ep);
	char *quoted = json_dumps(e, JSON_ENCODE_ANY);
	json_decref(e);
	snprintf(body, sizeof(body),
		 "{\"seq\":%lld,\"assignment_generation\":\"x\",\"replicas\":[{\"replica_id\":\"%s\","
		 "\"state\":\"ready\",\"endpoint\":%s}]}", seq, replica, quoted);
	free(quoted);
	assert_int_equal(beat(&b, f, node, token, body), 200);
	return b;
}

/* A node's token could publish any string as its replica's endpoint and
 * /v1/routes served it. Now each refused endpoint is named in the answer
 * (the heartbeat itself is taken), logged without its text, and its replica
 * is not ready, so never routed; an endpoint on the node's own address is
 * taken, and one that moves to another host takes the replica out. */
static void test_bad_endpoints_are_refused_per_replica_and_never_routed(void **state)
{
	struct fx *f = *state;
	struct worker_config wcfg;
	struct nova_err err;
	json_t *b;
	char node[64], replica[64], token[128];
	deploy_one(f, replica, node);
	worker_config_defaults(&wcfg);
	wcfg.wait_ms = 20;
	assert_int_equal(pool_node_token_issue(token, sizeof(token), f->env.db, node, &err), 0);
	/* The fake provider recorded the node's address. */
	assert_int_equal(q(f, "SELECT count(*) FROM nodes WHERE endpoint = '127.0.0.1' AND handle IS NOT NULL "
			      "AND name NOT IN ('a', 'b')"), 1);
	const char *bad[] = {"file:///etc/shadow", "javascript:alert(1)", "http://10.9.9.9:8000",
			     "http://127.0.0.1:8000\r\nX-Injected: 1", "http://u:secretpw@127.0.0.1:8000",
			     "http://127.0.0.1:8000/../../admin", "http://127.0.0.1"};
	long long seq = 1;
	logged[0] = '\0';
	nova_log_set_sink(capture, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = report(f, node, token, replica, seq++, bad[i]);
		assert_true(json_is_true(json_object_get(b, "accepted")));
		json_t *x = json_array_get(json_object_get(b, "refused"), 0);
		if (!x)
			fail_msg("not refused: %s", bad[i]);
		assert_string_equal(json_string_value(json_object_get(x, "replica_id")), replica);
		assert_string_equal(json_string_value(json_object_get(x, "field")), "replicas[0].endpoint");
		assert_non_null(json_string_value(json_object_get(x, "reason")));
		json_decref(b);
		flush(f);
		testenv_worker_drain(&f->env, &wcfg);
		assert_int_equal(q(f, "SELECT count(*) FROM replicas WHERE state = 'ready' OR endpoint IS NOT NULL"), 0);
	}
	nova_log_set_sink(NULL, NULL);
	assert_non_null(strstr(logged, "replica endpoint refused"));
	assert_null(strstr(logged, "secretpw"));
	assert_null(strstr(logged, "/etc/shadow"));
	assert_int_equal(testenv_http(&b, &f->env, "GET", "/v1/deployments/d", ADMIN, NULL), 200);
	assert_int_equal(json_integer_value(json_object_get(b, "ready_replicas")), 0);
	json_decref(b);
	/* On the node's own address: taken and routable. */
	b = report(f, node, token, replica, seq++, "http://127.0.0.1:9000");
	assert_null(json_object_get(b, "refused"));
	json_decref(b);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM replicas WHERE state = 'ready' "
			      "AND endpoint = 'http://127.0.0.1:9000'"), 1);
	/* Moved to another host: refused, and the replica leaves the routes. */
	b = report(f, node, token, replica, seq++, "http://203.0.113.5:9000");
	assert_non_null(json_object_get(b, "refused"));
	json_decref(b);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM replicas WHERE state = 'ready'"), 0);
	assert_int_equal(q(f, "SELECT count(*) FROM replicas WHERE endpoint LIKE '%203.0.113.5%'"), 0);
}

static void test_ready_replicas_make_the_deployment_running(void **state)
{
	struct fx *f = *state;
	struct worker_config wcfg;
	struct nova_err err;
	json_t *b;
	char body[512], node[64], replica[64], token[128];
	json_t *r;
	deploy_one(f, replica, node);
	worker_config_defaults(&wcfg);
	wcfg.wait_ms = 20;
	/* The sidecar's token, as the adapter would have handed it over. */
	assert_int_equal(pool_node_token_issue(token, sizeof(token), f->env.db, node, &err), 0);
	snprintf(body, sizeof(body),
		 "{\"seq\":5,\"replicas\":[{\"replica_id\":\"%s\",\"state\":\"ready\","
		 "\"endpoint\":\"http://127.0.0.1:9000\",\"load\":{\"queue_depth\":0}}]}", replica);
	assert_int_equal(beat(NULL, f, node, token, body), 200);
	/* Another node cannot report a replica that is not on it. */
	snprintf(body, sizeof(body), "{\"seq\":5,\"replicas\":[{\"replica_id\":\"%s\",\"state\":\"failed\"}]}",
		 replica);
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, body), 200);
	flush(f);
	testenv_worker_drain(&f->env, &wcfg);
	assert_int_equal(testenv_http(&b, &f->env, "GET", "/v1/deployments/d", ADMIN, NULL), 200);
	assert_string_equal(json_string_value(json_object_get(b, "state")), "running");
	assert_int_equal(json_integer_value(json_object_get(b, "ready_replicas")), 1);
	r = json_array_get(json_object_get(b, "replica_list"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "endpoint")), "http://127.0.0.1:9000");
	json_decref(b);

	/* Another novad wrote a newer heartbeat of the node (seq 9): this
	 * novad's flush of an older one (seq 7, failed) changes nothing. */
	char setq[256];
	snprintf(setq, sizeof(setq), "UPDATE node_heartbeats SET last_seq = 9 WHERE node_id = '%s'",
		 node);
	sql(f, setq);
	snprintf(body, sizeof(body),
		 "{\"seq\":7,\"replicas\":[{\"replica_id\":\"%s\",\"state\":\"failed\"}]}", replica);
	assert_int_equal(beat(NULL, f, node, token, body), 200);
	flush(f);
	char rq[256];
	snprintf(rq, sizeof(rq), "SELECT count(*) FROM replicas WHERE id = '%s' AND state = 'ready'",
		 replica);
	assert_int_equal(q(f, rq), 1);
	/* A newer one does. */
	snprintf(body, sizeof(body),
		 "{\"seq\":10,\"replicas\":[{\"replica_id\":\"%s\",\"state\":\"failed\"}]}", replica);
	assert_int_equal(beat(NULL, f, node, token, body), 200);
	flush(f);
	assert_int_equal(q(f, rq), 0);
}

/* A two-stage replica on two stage groups: each stage reports on its own;
 * the replica is ready only when both are, at the serving stage's
 * endpoint, and a failed stage fails it. */
static void test_multi_stage_replica_is_ready_when_every_stage_is(void **state)
{
	struct fx *f = *state;
	struct worker_config wcfg;
	struct nova_err err;
	json_t *b;
	char body[512], draft[POOL_ID_LEN], target[POOL_ID_LEN], tok_d[128], tok_t[128];
	char replica[64];
	json_t *g0 = json_pack("{s:s}", "stage_group", "0"), *g1 = json_pack("{s:s}", "stage_group", "1");
	struct pool_node_spec sd = {.name = "draft-node", .accelerator_type = "LPU",
				    .accelerator_count = 2, .accelerator_memory_mib = 230, .labels = g0};
	struct pool_node_spec st = {.name = "target-node", .accelerator_type = "LPU",
				    .accelerator_count = 8, .accelerator_memory_mib = 230, .labels = g1};
	worker_config_defaults(&wcfg);
	wcfg.wait_ms = 20;
	assert_int_equal(pool_node_add(draft, tok_d, sizeof(tok_d), f->env.db, f->pool_id, &sd, &err), 0);
	assert_int_equal(pool_node_add(target, tok_t, sizeof(tok_t), f->env.db, f->pool_id, &st, &err), 0);
	json_decref(g0);
	json_decref(g1);
	assert_int_equal(pool_node_transition(f->env.db, draft, POOL_NODE_READY, "provisioned", &err), 0);
	assert_int_equal(pool_node_transition(f->env.db, target, POOL_NODE_READY, "provisioned", &err), 0);
	sql(f, "UPDATE nodes SET endpoint = '10.0.0.1' WHERE name = 'draft-node'");
	sql(f, "UPDATE nodes SET endpoint = '10.0.0.2' WHERE name = 'target-node'");
	assert_int_equal(testenv_http(NULL, &f->env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"sd\",\"kind\":\"spec_decode\",\"engine\":{\"image\":\"x\"},"
				      "\"stages\":[{\"name\":\"draft\",\"accelerators\":1},"
				      "{\"name\":\"target\",\"accelerators\":1}]}"),
			 201);
	assert_int_equal(testenv_http(NULL, &f->env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"sd\",\"pool\":\"p\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(&f->env, &wcfg);
	/* Binpack alone would stack both stages on the draft node (it has the
	 * fewest free); the stage groups split them. */
	assert_int_equal(q(f, "SELECT count(*) FROM replica_placements rp JOIN nodes n ON n.id = rp.node_id "
			      "WHERE (rp.stage = 0 AND n.name = 'draft-node') "
			      "OR (rp.stage = 1 AND n.name = 'target-node')"),
			 2);
	snprintf(replica, sizeof(replica), "%s", "");
	assert_int_equal(testenv_http(&b, &f->env, "GET", "/v1/deployments/d", ADMIN, NULL), 200);
	snprintf(replica, sizeof(replica), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(b, "replica_list"), 0), "id")));
	json_decref(b);
	/* The serving stage is up, the draft is not: not routable yet. */
	snprintf(body, sizeof(body),
		 "{\"seq\":5,\"replicas\":[{\"replica_id\":\"%s\",\"stage\":1,\"state\":\"ready\","
		 "\"endpoint\":\"http://10.0.0.2:9000\"}]}", replica);
	assert_int_equal(beat(NULL, f, target, tok_t, body), 200);
	snprintf(body, sizeof(body),
		 "{\"seq\":5,\"replicas\":[{\"replica_id\":\"%s\",\"stage\":0,\"state\":\"starting\","
		 "\"endpoint\":\"http://10.0.0.1:9000\"}]}", replica);
	assert_int_equal(beat(NULL, f, draft, tok_d, body), 200);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM replicas WHERE state = 'starting' "
			      "AND state_reason = 'waiting for every stage to be ready'"), 1);
	assert_int_equal(testenv_http(&b, &f->env, "GET", "/v1/routes", ADMIN, NULL), 200);
	assert_null(json_object_get(b, "sd"));
	json_decref(b);
	/* A report for a stage the node does not hold changes nothing. */
	snprintf(body, sizeof(body),
		 "{\"seq\":6,\"replicas\":[{\"replica_id\":\"%s\",\"stage\":1,\"state\":\"failed\"}]}",
		 replica);
	assert_int_equal(beat(NULL, f, draft, tok_d, body), 200);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM replica_placements WHERE state = 'failed'"), 0);
	/* Both stages ready: ready, at the target's endpoint. */
	snprintf(body, sizeof(body),
		 "{\"seq\":7,\"replicas\":[{\"replica_id\":\"%s\",\"stage\":0,\"state\":\"ready\","
		 "\"endpoint\":\"http://10.0.0.1:9000\"}]}", replica);
	assert_int_equal(beat(NULL, f, draft, tok_d, body), 200);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM replicas WHERE state = 'ready' "
			      "AND endpoint = 'http://10.0.0.2:9000'"), 1);
	testenv_worker_drain(&f->env, &wcfg);
	assert_int_equal(q(f, "SELECT count(*) FROM deployments WHERE state = 'running'"), 1);
	/* The draft fails: so does the replica. */
	snprintf(body, sizeof(body),
		 "{\"seq\":8,\"replicas\":[{\"replica_id\":\"%s\",\"stage\":0,\"state\":\"failed\"}]}",
		 replica);
	assert_int_equal(beat(NULL, f, draft, tok_d, body), 200);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM replicas WHERE state = 'failed' "
			      "AND state_reason = 'a stage reported failed'"), 1);
}

static void test_assignments_come_when_the_generation_differs(void **state)
{
	struct fx *f = *state;
	struct worker_config wcfg;
	struct nova_err err;
	json_t *b, *ans;
	char node[64], token[128], body[256], gen[64];
	worker_config_defaults(&wcfg);
	assert_int_equal(testenv_http(NULL, &f->env, "POST", "/v1/models", ADMIN,
				      "{\"name\":\"m\",\"kind\":\"single\",\"engine\":{\"command\":[\"serve\",\"--port\",\"{port}\"]},"
				      "\"stages\":[{\"name\":\"main\",\"accelerators\":1}]}"), 201);
	assert_int_equal(testenv_http(NULL, &f->env, "POST", "/v1/deployments", ADMIN,
				      "{\"model\":\"m\",\"pool\":\"p\",\"name\":\"d\"}"), 201);
	testenv_worker_drain(&f->env, &wcfg);
	assert_int_equal(testenv_http(&b, &f->env, "GET", "/v1/deployments/d", ADMIN, NULL), 200);
	json_t *r = json_array_get(json_object_get(b, "replica_list"), 0);
	snprintf(node, sizeof(node), "%s",
		 json_string_value(json_object_get(json_array_get(json_object_get(r, "placements"), 0), "node_id")));
	json_decref(b);
	assert_int_equal(pool_node_token_issue(token, sizeof(token), f->env.db, node, &err), 0);
	flush(f); /* the digests are refreshed with the flush */
	assert_int_equal(beat(&ans, f, node, token, "{\"seq\":1}"), 200);
	json_t *as = json_object_get(ans, "assignments");
	assert_int_equal(json_array_size(as), 1);
	json_t *a0 = json_array_get(as, 0);
	assert_string_equal(json_string_value(json_object_get(a0, "model")), "m");
	assert_string_equal(json_string_value(json_object_get(a0, "stage_name")), "main");
	assert_int_equal(json_integer_value(json_object_get(a0, "stages")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(a0, "engine"), "command"), 0)),
			    "serve");
	snprintf(gen, sizeof(gen), "%s", json_string_value(json_object_get(ans, "assignment_generation")));
	json_decref(ans);
	/* Up to date: no assignments in the answer. */
	snprintf(body, sizeof(body), "{\"seq\":2,\"assignment_generation\":\"%s\"}", gen);
	assert_int_equal(beat(&ans, f, node, token, body), 200);
	assert_null(json_object_get(ans, "assignments"));
	/* The short answer (written without jansson) says all the rest. */
	assert_true(json_is_true(json_object_get(ans, "accepted")));
	assert_int_equal(json_integer_value(json_object_get(ans, "interval_ms")), 200);
	assert_string_equal(json_string_value(json_object_get(ans, "assignment_generation")), gen);
	assert_int_equal(json_object_size(ans), 3);
	json_decref(ans);
	/* The deployment stops: the node's generation moves to "none". */
	assert_int_equal(testenv_http(NULL, &f->env, "POST", "/v1/deployments/d/stop", ADMIN, NULL), 200);
	flush(f);
	snprintf(body, sizeof(body), "{\"seq\":3,\"assignment_generation\":\"%s\"}", gen);
	assert_int_equal(beat(&ans, f, node, token, body), 200);
	assert_string_equal(json_string_value(json_object_get(ans, "assignment_generation")), "none");
	assert_int_equal(json_array_size(json_object_get(ans, "assignments")), 0);
	assert_non_null(json_object_get(ans, "assignments"));
	json_decref(ans);
}

/* Heartbeats for ids with no node are 401 and leave nothing behind in the
 * table (it used to keep an entry for every id it was asked about); an id
 * in upper case is the same node. */
static void test_made_up_ids_leave_nothing_behind(void **state)
{
	struct fx *f = *state;
	char id[64], upper[64];
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "%08x-0000-4000-8000-%012x", (unsigned)i * 2654435761u, (unsigned)i);
		assert_int_equal(beat(NULL, f, id, f->token_a, "{\"seq\":1}"), 401);
	}
	assert_int_equal(inventory_nodes_known(f->env.inventory), 0);
	snprintf(upper, sizeof(upper), "%s", f->node_a);
	for (char *p = upper; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(beat(NULL, f, upper, f->token_a, "{\"seq\":1}"), 200);
	json_t *b;
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
	assert_false(json_is_true(json_object_get(b, "accepted"))); /* the same node: seq 1 is stale */
	json_decref(b);
	assert_int_equal(inventory_nodes_known(f->env.inventory), 1);
}

/* inventory_refresh reads the whole fleet, so a heartbeat is checked
 * against what was read then (here: the database's hash is changed behind
 * its back and the old token still works until the next refresh), and it
 * forgets nodes whose token was revoked or whose row is gone. */
static void test_refresh_loads_the_fleet_and_forgets_the_gone(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	json_t *b;
	assert_int_equal(inventory_nodes_known(f->env.inventory), 0);
	assert_int_equal(inventory_refresh(f->env.inventory, &err), 0);
	assert_int_equal(inventory_nodes_known(f->env.inventory), 2);
	sql(f, "UPDATE nodes SET token_hash = repeat('0', 64) WHERE name = 'a'");
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":1}"), 200);
	assert_true(json_is_true(json_object_get(b, "accepted")));
	json_decref(b);
	/* Refreshed: a's token is the database's now; b's was revoked. */
	sql(f, "UPDATE nodes SET token_hash = NULL WHERE name = 'b'");
	assert_int_equal(inventory_refresh(f->env.inventory, &err), 0);
	assert_int_equal(inventory_nodes_known(f->env.inventory), 1);
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, "{\"seq\":2}"), 401);
	json_decref(b);
	assert_int_equal(beat(&b, f, f->node_b, f->token_b, "{\"seq\":1}"), 401);
	json_decref(b);
}

/* Many nodes in and half of them out again: every node left is still found
 * by its id (the index's removals keep each cluster reachable), and the
 * flush writes each one's heartbeat. */
/* The walks over the whole table give the lock up every INV_WALK_CHUNK
 * (16,384) nodes: a fleet past that is still read, forgotten and flushed
 * whole. */
static void test_walks_longer_than_a_chunk_miss_no_node(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	/* Two statements, each well within the test database's 2 s deadline. */
	for (int half = 0; half < 2; half++) {
		char text[512];
		snprintf(text, sizeof(text),
			 "INSERT INTO nodes (pool_id, name, handle, state, token_hash) "
			 "SELECT p.id, 'w' || g, 'w' || g, 'ready', "
			 "encode(sha256(convert_to('nova-node-w' || g, 'UTF8')), 'hex') "
			 "FROM pools p, generate_series(%d, %d) g WHERE p.name = 'p'",
			 half * 8500 + 1, half * 8500 + 8500);
		sql(f, text);
	}
	assert_int_equal(inventory_refresh(f->env.inventory, &err), 0);
	assert_int_equal(inventory_nodes_known(f->env.inventory), 17002);
	/* The flush's walk: both beats written, wherever they sit. */
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":5}"), 200);
	assert_int_equal(beat(NULL, f, f->node_b, f->token_b, "{\"seq\":5}"), 200);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM node_heartbeats WHERE last_seq = 5"), 2);
	/* The refresh's walk: every node gone is forgotten, and no other. */
	sql(f, "DELETE FROM nodes WHERE name LIKE 'w%' AND substr(name, 2)::integer % 2 = 0");
	assert_int_equal(inventory_refresh(f->env.inventory, &err), 0);
	assert_int_equal(inventory_nodes_known(f->env.inventory), 8502);
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":6}"), 200);
	assert_int_equal(beat(NULL, f, f->node_b, f->token_b, "{\"seq\":6}"), 200);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM node_heartbeats WHERE last_seq = 6"), 2);
}

static void test_refresh_of_a_large_fleet_keeps_every_node_reachable(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	PGresult *res = NULL;
	sql(f, "INSERT INTO nodes (pool_id, name, handle, state, token_hash) "
	       "SELECT p.id, 'n' || g, 'n' || g, 'ready', "
	       "encode(sha256(convert_to('nova-node-t' || g, 'UTF8')), 'hex') "
	       "FROM pools p, generate_series(1, 3000) g WHERE p.name = 'p'");
	assert_int_equal(inventory_refresh(f->env.inventory, &err), 0);
	assert_int_equal(inventory_nodes_known(f->env.inventory), 3002);
	sql(f, "DELETE FROM nodes WHERE name LIKE 'n%' AND substr(name, 2)::int % 3 <> 0");
	assert_int_equal(inventory_refresh(f->env.inventory, &err), 0);
	assert_int_equal(inventory_nodes_known(f->env.inventory), 1002);
	assert_int_equal(db_pool_exec(&res, f->env.db,
				      "SELECT id::text, substr(name, 2) FROM nodes WHERE name LIKE 'n%' "
				      "ORDER BY name", 0, NULL, &err), 0);
	assert_int_equal(PQntuples(res), 1000);
	for (int i = 0; i < PQntuples(res); i++) {
		char token[64];
		json_t *b;
		snprintf(token, sizeof(token), "nova-node-t%s", PQgetvalue(res, i, 1));
		if (beat(&b, f, PQgetvalue(res, i, 0), token, "{\"seq\":7}") != 200 ||
		    !json_is_true(json_object_get(b, "accepted")))
			fail_msg("node n%s was not accepted", PQgetvalue(res, i, 1));
		json_decref(b);
	}
	PQclear(res);
	assert_int_equal(inventory_nodes_known(f->env.inventory), 1002); /* no reads added any */
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM nodes n JOIN node_heartbeats h ON h.node_id = n.id "
			 "WHERE n.name LIKE 'n%' AND h.last_seq = 7"), 1000);
}

/* A capacity reported again unchanged is not written again (the database
 * keeps what it has: here, a value changed behind novad's back stays), and
 * a changed one is. */
static void test_an_unchanged_capacity_is_not_written_again(void **state)
{
	struct fx *f = *state;
	const char *cap = "SELECT (h.capacity->>'gpus')::int FROM node_heartbeats h "
			  "JOIN nodes n ON n.id = h.node_id WHERE n.name = 'a'";
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":1,\"capacity\":{\"gpus\":8}}"), 200);
	flush(f);
	assert_int_equal(q(f, cap), 8);
	sql(f, "UPDATE node_heartbeats SET capacity = '{\"gpus\": 99}'");
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":2,\"capacity\":{\"gpus\":8}}"), 200);
	flush(f);
	assert_int_equal(q(f, cap), 99);
	assert_int_equal(q(f, "SELECT h.last_seq FROM node_heartbeats h JOIN nodes n ON n.id = h.node_id "
			      "WHERE n.name = 'a'"), 2);
	assert_int_equal(beat(NULL, f, f->node_a, f->token_a, "{\"seq\":3,\"capacity\":{\"gpus\":4}}"), 200);
	flush(f);
	assert_int_equal(q(f, cap), 4);
}

/* Engine logs (inventory.h): a sidecar's log server is taken on the node's
 * address only; this novad's key goes out in the answer until the sidecar
 * shows it holds it (by its id), and is what inventory_logs_access hands
 * the gateway. */
static void test_a_log_server_gets_this_novads_key_until_it_holds_it(void **state)
{
	struct fx *f = *state;
	struct inventory_logs_access acc;
	struct nova_err err;
	json_t *b;
	char body[512], id[17], hex[65];
	assert_int_equal(inventory_logs_access(&acc, f->env.inventory, f->node_a, &err), NOVA_EUNAVAIL);
	assert_int_equal(beat(&b, f, f->node_a, f->token_a,
			      "{\"seq\":1,\"logs\":{\"url\":\"http://127.0.0.1:30000\",\"keys\":[]}}"), 200);
	const char *key = json_string_value(json_object_get(b, "logs_key"));
	assert_non_null(key);
	assert_int_equal(strlen(key), 64);
	assert_int_equal(inventory_logs_access(&acc, f->env.inventory, f->node_a, &err), 0);
	assert_string_equal(acc.url, "http://127.0.0.1:30000");
	assert_string_equal(acc.key, key);
	secret_sha256_hex(hex, key, strlen(key));
	snprintf(id, sizeof(id), "%.16s", hex);
	json_decref(b);
	snprintf(body, sizeof(body),
		 "{\"seq\":2,\"logs\":{\"url\":\"http://127.0.0.1:30000\",\"keys\":[\"%s\"]}}", id);
	assert_int_equal(beat(&b, f, f->node_a, f->token_a, body), 200);
	assert_null(json_object_get(b, "logs_key"));
	json_decref(b);
	/* The other node never got a key of its own, nor node a's. */
	assert_int_equal(inventory_logs_access(&acc, f->env.inventory, f->node_b, &err), NOVA_EUNAVAIL);
	/* A URL on another host: not taken, and what was known is forgotten. */
	assert_int_equal(beat(&b, f, f->node_a, f->token_a,
			      "{\"seq\":3,\"logs\":{\"url\":\"http://10.9.9.9:30000\",\"keys\":[]}}"), 200);
	assert_null(json_object_get(b, "logs_key"));
	json_decref(b);
	assert_int_equal(inventory_logs_access(&acc, f->env.inventory, f->node_a, &err), NOVA_EUNAVAIL);
	assert_int_equal(beat(&b, f, f->node_a, f->token_a,
			      "{\"seq\":4,\"logs\":{\"url\":\"http://127.0.0.1:1\",\"keys\":[\"xyz\"]}}"), 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "field")),
			    "logs.keys[0]");
	json_decref(b);
}

/* An engine's unasked exit rides on every heartbeat until a newer one; it
 * is recorded once, as a 'replica' event naming the replica's number and
 * the signal or code. */
static void test_an_exit_is_recorded_once_as_a_replica_event(void **state)
{
	struct fx *f = *state;
	struct nova_err err;
	json_t *b;
	char body[512], node[64], replica[64], token[128];
	deploy_one(f, replica, node);
	assert_int_equal(pool_node_token_issue(token, sizeof(token), f->env.db, node, &err), 0);
	const char *kills = "SELECT count(*) FROM deployment_events WHERE kind = 'replica' AND reason = "
			    "'replica 0 killed by signal SIGKILL; restart 1'";
	for (int seq = 5; seq < 8; seq++) {
		snprintf(body, sizeof(body),
			 "{\"seq\":%d,\"replicas\":[{\"replica_id\":\"%s\",\"stage\":0,\"state\":\"starting\","
			 "\"exit\":{\"at_ms\":1000,\"signal\":9,\"restarts\":1}}]}", seq, replica);
		assert_int_equal(beat(NULL, f, node, token, body), 200);
		flush(f);
	}
	assert_int_equal(q(f, kills), 1);
	snprintf(body, sizeof(body),
		 "{\"seq\":9,\"replicas\":[{\"replica_id\":\"%s\",\"stage\":0,\"state\":\"starting\","
		 "\"exit\":{\"at_ms\":2000,\"code\":3,\"restarts\":2}}]}", replica);
	assert_int_equal(beat(NULL, f, node, token, body), 200);
	flush(f);
	assert_int_equal(q(f, "SELECT count(*) FROM deployment_events WHERE kind = 'replica' AND reason = "
			      "'replica 0 exited with code 3; restart 2'"), 1);
	assert_int_equal(q(f, kills), 1);
	/* Neither code nor signal: refused naming the field. */
	snprintf(body, sizeof(body),
		 "{\"seq\":10,\"replicas\":[{\"replica_id\":\"%s\",\"state\":\"starting\","
		 "\"exit\":{\"at_ms\":3000}}]}", replica);
	assert_int_equal(beat(&b, f, node, token, body), 400);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "field")),
			    "replicas[0].exit");
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_log_server_gets_this_novads_key_until_it_holds_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_exit_is_recorded_once_as_a_replica_event, setup,
						teardown),
		cmocka_unit_test(test_the_told_interval_is_the_fleet_over_the_budget_rounded_up),
		cmocka_unit_test_setup_teardown(test_the_told_interval_grows_with_the_fleet_and_is_in_the_answer,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_node_told_a_long_interval_is_judged_by_it, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_is_applied_and_flushed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens_own_other_unknown_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_sequence_is_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_bodies_name_the_field, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adapters_loaded_are_kept_with_the_load_and_replaced_by_the_next_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loads_of_some_replicas_on_their_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_unhealthy_back_and_failed_stays_failed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silence_while_a_novad_was_blind_does_not_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_departed_novad_gives_every_node_a_fresh_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_is_judged_before_the_first_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_brake_holds_a_pool_that_goes_quiet_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoked_token_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_rotated_token_works_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ready_replicas_make_the_deployment_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multi_stage_replica_is_ready_when_every_stage_is, setup, teardown),
		cmocka_unit_test_setup_teardown(test_assignments_come_when_the_generation_differs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_made_up_ids_leave_nothing_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_endpoints_are_refused_per_replica_and_never_routed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_node_and_wrong_token_answer_alike, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_hash_lookups_use_an_index, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_loads_the_fleet_and_forgets_the_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_of_a_large_fleet_keeps_every_node_reachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walks_longer_than_a_chunk_miss_no_node, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_unchanged_capacity_is_not_written_again, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
