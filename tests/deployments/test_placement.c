/* Placement: binpack vs spread, gangs all or nothing, filters, reasons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "deployments/placement.h"

static void node(struct placement_node *n, const char *id, const char *type, unsigned total,
		 unsigned free)
{
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->accelerator_type = type;
	n->memory_mib = 81920;
	n->total = total;
	n->free = free;
	n->schedulable = true;
}

static const struct placement_stage one_a100 = {"main", "A100-80G", 1, 0};

static void test_binpack_fills_the_fullest_node_first(void **state)
{
	struct placement_node n[3];
	struct placement_result r;
	struct nova_err err;
	struct placement_request req = {&one_a100, 1, PLACEMENT_BINPACK, NULL, 0};
	(void)state;
	node(&n[0], "a", "A100-80G", 8, 8);
	node(&n[1], "b", "A100-80G", 8, 2);
	node(&n[2], "c", "A100-80G", 8, 5);
	assert_int_equal(placement_place(&r, n, 3, &req, &err), 0);
	assert_int_equal(r.node[0], 1);
	assert_int_equal(placement_place(&r, n, 3, &req, &err), 0);
	assert_int_equal(r.node[0], 1);
	assert_int_equal(n[1].free, 0);
	assert_int_equal(placement_place(&r, n, 3, &req, &err), 0);
	assert_int_equal(r.node[0], 2); /* b is full now */
}

static void test_spread_uses_the_emptiest_node(void **state)
{
	struct placement_node n[3];
	struct placement_result r;
	struct nova_err err;
	struct placement_request req = {&one_a100, 1, PLACEMENT_SPREAD, NULL, 0};
	(void)state;
	node(&n[0], "a", "A100-80G", 4, 4);
	node(&n[1], "b", "A100-80G", 4, 4);
	node(&n[2], "c", "A100-80G", 4, 4);
	size_t seen[3] = {0};
	for (int i = 0; i < 6; i++) {
		assert_int_equal(placement_place(&r, n, 3, &req, &err), 0);
		seen[r.node[0]]++;
	}
	assert_int_equal(seen[0], 2);
	assert_int_equal(seen[1], 2);
	assert_int_equal(seen[2], 2);
}

static void test_gang_is_all_or_nothing(void **state)
{
	struct placement_node n[2];
	struct placement_result r;
	struct nova_err err;
	const struct placement_stage stages[] = {{"draft", "A100-80G", 1, 0},
						 {"target", "A100-80G", 4, 0}};
	struct placement_request req = {stages, 2, PLACEMENT_BINPACK, NULL, 0};
	(void)state;
	node(&n[0], "a", "A100-80G", 8, 1);
	node(&n[1], "b", "A100-80G", 8, 3);
	/* draft fits (on a), target does not: nothing may stay taken. */
	assert_int_equal(placement_place(&r, n, 2, &req, &err), NOVA_EAGAIN);
	assert_int_equal(n[0].free, 1);
	assert_int_equal(n[1].free, 3);
	assert_non_null(strstr(err.message, "stage target needs 4 x A100-80G"));
	assert_non_null(strstr(err.message, "most free on a matching node is 3"));
	n[1].free = 5;
	assert_int_equal(placement_place(&r, n, 2, &req, &err), 0);
	assert_int_equal(r.node[0], 0);
	assert_int_equal(r.node[1], 1);
	assert_int_equal(n[0].free, 0);
	assert_int_equal(n[1].free, 1);
}

static void test_gang_stages_may_share_a_node(void **state)
{
	struct placement_node n[1];
	struct placement_result r;
	struct nova_err err;
	const struct placement_stage stages[] = {{"encoder", "", 1, 0}, {"llm", "", 2, 0}};
	struct placement_request req = {stages, 2, PLACEMENT_BINPACK, NULL, 0};
	(void)state;
	node(&n[0], "a", "L4", 4, 3);
	assert_int_equal(placement_place(&r, n, 1, &req, &err), 0);
	assert_int_equal(n[0].free, 0);
	assert_int_equal(placement_place(&r, n, 1, &req, &err), NOVA_EAGAIN);
	assert_int_equal(n[0].free, 0);
}

static void group(struct placement_node *n, const char *g)
{
	n->labels[n->n_labels++] = (struct placement_label){PLACEMENT_STAGE_GROUP_LABEL, g};
}

static void test_stages_land_on_their_own_stage_group(void **state)
{
	struct placement_node n[3];
	struct placement_result r;
	struct nova_err err;
	const struct placement_stage stages[] = {{"draft", "LPU", 2, 0}, {"target", "LPU", 8, 0}};
	struct placement_request req = {stages, 2, PLACEMENT_BINPACK, NULL, 0};
	(void)state;
	/* Binpack alone would put the draft on the fuller group-1 node. */
	node(&n[0], "g0", "LPU", 8, 8);
	node(&n[1], "g1a", "LPU", 8, 3);
	node(&n[2], "g1b", "LPU", 8, 8);
	group(&n[0], "0");
	group(&n[1], "1");
	group(&n[2], "1");
	assert_int_equal(placement_place(&r, n, 3, &req, &err), 0);
	assert_int_equal(r.node[0], 0);
	assert_int_equal(r.node[1], 2);
	assert_int_equal(n[0].free, 6);
	assert_int_equal(n[1].free, 3);
	assert_int_equal(n[2].free, 0);
	/* The target's group is full now; group 0 still has room, but the
	 * gang takes nothing. */
	assert_int_equal(placement_place(&r, n, 3, &req, &err), NOVA_EAGAIN);
	assert_non_null(strstr(err.message, "stage target needs 8 x LPU on one node in stage group 1"));
	assert_int_equal(n[0].free, 6);
	/* Feasibility looks at each group's sizes too. */
	const struct placement_stage big_draft[] = {{"draft", "LPU", 2, 0}, {"target", "LPU", 2, 0}};
	struct placement_request ok = {big_draft, 2, PLACEMENT_BINPACK, NULL, 0};
	assert_int_equal(placement_check_feasible(n, 3, &ok, &err), 0);
	n[0].total = 1;
	assert_int_equal(placement_check_feasible(n, 3, &ok, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "stage draft needs 2 x LPU on one node in stage group 0"));
}

static void test_one_stage_replicas_ignore_stage_groups(void **state)
{
	struct placement_node n[2];
	struct placement_result r;
	struct nova_err err;
	const struct placement_stage main_stage = {"main", "LPU", 4, 0};
	struct placement_request req = {&main_stage, 1, PLACEMENT_BINPACK, NULL, 0};
	(void)state;
	node(&n[0], "g0", "LPU", 8, 2);
	node(&n[1], "g1", "LPU", 8, 8);
	group(&n[0], "0");
	group(&n[1], "1");
	assert_int_equal(placement_place(&r, n, 2, &req, &err), 0);
	assert_int_equal(r.node[0], 1);
}

static void test_filters_type_memory_labels_and_schedulable(void **state)
{
	struct placement_node n[4];
	struct placement_result r;
	struct nova_err err;
	const struct placement_label sel[] = {{"zone", "eu-1"}};
	const struct placement_stage big = {"main", "A100-80G", 1, 81920};
	struct placement_request req = {&big, 1, PLACEMENT_BINPACK, sel, 1};
	(void)state;
	node(&n[0], "wrong-type", "H100", 8, 8);
	n[0].labels[0] = (struct placement_label){"zone", "eu-1"};
	n[0].n_labels = 1;
	node(&n[1], "small-mem", "A100-80G", 8, 8);
	n[1].memory_mib = 40960;
	n[1].labels[0] = (struct placement_label){"zone", "eu-1"};
	n[1].n_labels = 1;
	node(&n[2], "cordoned", "A100-80G", 8, 8);
	n[2].schedulable = false;
	n[2].labels[0] = (struct placement_label){"zone", "eu-1"};
	n[2].n_labels = 1;
	node(&n[3], "other-zone", "A100-80G", 8, 8);
	n[3].labels[0] = (struct placement_label){"zone", "us-1"};
	n[3].n_labels = 1;
	assert_int_equal(placement_place(&r, n, 4, &req, &err), NOVA_EAGAIN);
	assert_non_null(strstr(err.message, "pool has 0 free"));
	n[3].labels[0].value = "eu-1";
	assert_int_equal(placement_place(&r, n, 4, &req, &err), 0);
	assert_int_equal(r.node[0], 3);
}

static void test_feasibility_ignores_use_but_not_size(void **state)
{
	struct placement_node n[2];
	struct nova_err err;
	const struct placement_stage four = {"main", "A100-80G", 4, 0};
	const struct placement_stage nine = {"main", "A100-80G", 9, 0};
	struct placement_request req4 = {&four, 1, PLACEMENT_BINPACK, NULL, 0};
	struct placement_request req9 = {&nine, 1, PLACEMENT_BINPACK, NULL, 0};
	(void)state;
	node(&n[0], "a", "A100-80G", 8, 0);
	node(&n[1], "b", "A100-80G", 2, 2);
	assert_int_equal(placement_check_feasible(n, 2, &req4, &err), 0);
	assert_int_equal(placement_check_feasible(n, 2, &req9, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "can never fit"));
	assert_non_null(strstr(err.message, "largest matching node has 8"));
}

/* The index makes exactly the linear pass's choices: two copies of a
 * random fleet (types, memory, labels, stage groups, cordoned nodes) take
 * the same random stream of requests, one through placement_place and one
 * through the index, and must agree on every node and every refusal. */
static void test_index_chooses_as_the_linear_pass_does(void **state)
{
	enum { N = 300, ROUNDS = 6000 };
	static const char *types[] = {"A100-80G", "H100-80G", "L4"};
	static const char *zones[] = {"z0", "z1", "z2"};
	static const char *groups[] = {"0", "1"};
	static char ids[N][16];
	struct placement_node a[N], b[N];
	struct placement_index *ix;
	struct nova_err ea, eb;
	unsigned seed = 12345;
	(void)state;
	for (size_t i = 0; i < N; i++) {
		seed = seed * 1103515245u + 12345u;
		snprintf(ids[i], sizeof(ids[i]), "n%zu", i);
		node(&a[i], ids[i], (seed >> 8) % 7 == 0 ? NULL : types[(seed >> 4) % 3],
		     1 + (seed >> 12) % 8, 0);
		a[i].free = a[i].total - (unsigned)((seed >> 16) % (a[i].total + 1));
		a[i].memory_mib = (seed >> 20) % 2 ? 81920 : 40960;
		a[i].schedulable = (seed >> 24) % 11 != 0;
		a[i].labels[a[i].n_labels++] = (struct placement_label){"zone", zones[(seed >> 3) % 3]};
		if ((seed >> 5) % 4 == 0)
			a[i].labels[a[i].n_labels++] =
				(struct placement_label){PLACEMENT_STAGE_GROUP_LABEL, groups[(seed >> 7) % 2]};
		b[i] = a[i];
	}
	assert_int_equal(placement_index_create(&ix, b, N, &ea), 0);
	size_t placed = 0, refused = 0;
	for (int r = 0; r < ROUNDS; r++) {
		struct placement_stage st[2];
		struct placement_label sel = {"zone", zones[r % 3]};
		struct placement_result ra, rb;
		seed = seed * 1103515245u + 12345u;
		size_t n_st = (seed >> 9) % 5 == 0 ? 2 : 1;
		for (size_t k = 0; k < n_st; k++)
			st[k] = (struct placement_stage){k ? "target" : "main",
							 (seed >> (10 + k)) % 3 == 0 ? NULL : types[(seed >> (13 + k)) % 3],
							 1 + (unsigned)((seed >> (16 + k)) % 4),
							 (seed >> 20) % 3 == 0 ? 81920 : 0};
		struct placement_request req = {st, n_st, (seed >> 22) % 2 ? PLACEMENT_SPREAD : PLACEMENT_BINPACK,
						(seed >> 25) % 3 == 0 ? &sel : NULL, (seed >> 25) % 3 == 0 ? 1 : 0};
		int rca = placement_place(&ra, a, N, &req, &ea);
		int rcb = placement_index_place(&rb, ix, &req, &eb);
		assert_int_equal(rca, rcb);
		if (rca == 0) {
			for (size_t k = 0; k < n_st; k++)
				assert_int_equal(ra.node[k], rb.node[k]);
			placed++;
		} else {
			assert_string_equal(ea.message, eb.message);
			refused++;
		}
		/* Now and then capacity comes back (a replica removed), on both. */
		if (r % 7 == 0) {
			size_t i = (seed >> 4) % N;
			if (a[i].free < a[i].total) {
				a[i].free++;
				placement_index_destroy(ix);
				for (size_t j = 0; j < N; j++)
					b[j].free = a[j].free;
				assert_int_equal(placement_index_create(&ix, b, N, &ea), 0);
			}
		}
		for (size_t i = 0; i < N; i++)
			assert_int_equal(a[i].free, b[i].free);
	}
	/* Both outcomes were exercised. */
	assert_true(placed > 500);
	assert_true(refused > 100);
	placement_index_destroy(ix);
}

static void test_policy_names_round_trip(void **state)
{
	bool ok;
	(void)state;
	assert_int_equal(placement_policy_parse("spread", &ok), PLACEMENT_SPREAD);
	assert_true(ok);
	assert_int_equal(placement_policy_parse(NULL, &ok), PLACEMENT_BINPACK);
	assert_true(ok);
	placement_policy_parse("random", &ok);
	assert_false(ok);
	assert_string_equal(placement_policy_name(PLACEMENT_SPREAD), "spread");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_binpack_fills_the_fullest_node_first),
		cmocka_unit_test(test_spread_uses_the_emptiest_node),
		cmocka_unit_test(test_gang_is_all_or_nothing),
		cmocka_unit_test(test_gang_stages_may_share_a_node),
		cmocka_unit_test(test_stages_land_on_their_own_stage_group),
		cmocka_unit_test(test_one_stage_replicas_ignore_stage_groups),
		cmocka_unit_test(test_filters_type_memory_labels_and_schedulable),
		cmocka_unit_test(test_feasibility_ignores_use_but_not_size),
		cmocka_unit_test(test_index_chooses_as_the_linear_pass_does),
		cmocka_unit_test(test_policy_names_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
