/* The lpu provider's parsers: allocation strings (every malformed case, with
 * positions) and the datacenter topology (file:line:column errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "adapters/lpu/lpu.h"

static void test_allocation_valid_forms(void **state)
{
	struct lpu_allocation a;
	struct nova_err err;
	(void)state;
	assert_int_equal(lpu_allocation_parse(&a, "c1r1", NULL, 0, &err), 0);
	assert_int_equal(a.n_groups, 1);
	assert_int_equal(a.groups[0].n, 1);
	assert_int_equal(lpu_allocation_parse(&a, "c1r1,c1r2", NULL, 1, &err), 0);
	assert_int_equal(a.groups[0].n, 2);
	assert_int_equal(a.groups[0].racks[1].rack, 2);
	assert_int_equal(lpu_allocation_parse(&a, "c1r1:c2r2,c2r3", NULL, 2, &err), 0);
	assert_int_equal(a.n_groups, 2);
	assert_int_equal(a.groups[1].n, 2);
	assert_int_equal(a.groups[1].racks[0].cluster, 2);
	assert_int_equal(a.groups[1].racks[1].rack, 3);
	assert_int_equal(lpu_allocation_parse(&a, "c12r345", NULL, 0, &err), 0);
	assert_int_equal(a.groups[0].racks[0].cluster, 12);
	assert_int_equal(a.groups[0].racks[0].rack, 345);
}

static void test_allocation_malformed_cases_name_position_and_reason(void **state)
{
	static const struct {
		const char *in;
		size_t want_groups;
		const char *where;  /* "at N:" */
		const char *reason;
	} cases[] = {
		{"", 0, "at 1:", "empty"},
		{"r1", 0, "at 1:", "expected 'c'"},
		{"c", 0, "at 2:", "expected the cluster number"},
		{"cr1", 0, "at 2:", "expected the cluster number"},
		{"c1", 0, "at 3:", "expected 'r'"},
		{"c1x1", 0, "at 3:", "expected 'r'"},
		{"c1r", 0, "at 4:", "expected the rack number"},
		{"c0r1", 0, "at 2:", "start at 1"},
		{"c01r1", 0, "at 2:", "leading zero"},
		{"c1r10000", 0, "at 4:", "too large"},
		{"c1r1,", 0, "at 6:", "expected a rack after the separator"},
		{"c1r1:", 0, "at 6:", "expected a rack after the separator"},
		{",c1r1", 0, "at 1:", "expected 'c'"},
		{"c1r1,,c1r2", 0, "at 6:", "expected 'c'"},
		{"c1r1::c1r2", 0, "at 6:", "expected 'c'"},
		{"c1r1;c1r2", 0, "at 5:", "unexpected ';'"},
		{"c1r1 ", 0, "at 5:", "unexpected ' '"},
		{"C1R1", 0, "at 1:", "expected 'c'"},
		{"c1r1,c1r1", 0, "at 6:", "rack c1r1 is named twice"},
		{"c1r1:c2r2,c1r1", 0, "at 11:", "rack c1r1 is named twice"},
		{"c1r1:c1r2:c1r3:c1r4:c1r5", 0, "at 20:", "too many stage groups"},
		{"c1r1", 2, "at 1:", "1 stage group, the model needs 2"},
		{"c1r1:c1r2", 1, "at 1:", "2 stage groups, the model needs 1"},
		{"c1r1\x01", 0, "at 5:", "\\x01"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lpu_allocation a;
		struct nova_err err;
		int rc = lpu_allocation_parse(&a, cases[i].in, NULL, cases[i].want_groups, &err);
		if (rc != NOVA_EINVAL || strcmp(err.field, "allocation") != 0 ||
		    strncmp(err.message, cases[i].where, strlen(cases[i].where)) != 0 ||
		    !strstr(err.message, cases[i].reason))
			fail_msg("case %zu \"%s\": rc %d, \"%s\"", i, cases[i].in, rc, err.message);
	}
}

static const char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/nova-dc-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_topology_example_loads_and_checks_racks(void **state)
{
	struct lpu_topology *t;
	struct lpu_allocation a;
	struct nova_err err;
	(void)state;
	if (lpu_topology_load(&t, "etc/datacenter.yaml", &err))
		fail_msg("%s", err.message);
	assert_int_equal(t->n_racks, 5);
	const struct lpu_rack *r = lpu_topology_rack(t, 1, 1);
	assert_non_null(r);
	assert_string_equal(r->name, "c1r1");
	assert_int_equal(r->n_nodes, 2);
	assert_int_equal(r->nodes[0].chips, 8);
	assert_string_equal(json_string_value(json_object_get(r->labels, "zone")), "east-a");
	assert_int_equal(lpu_allocation_parse(&a, "c1r1:c2r2,c2r3", t, 2, &err), 0);
	assert_int_equal(lpu_allocation_parse(&a, "c1r1,c3r1", t, 0, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "at 6: rack c3r1 is not in the datacenter topology"));
	lpu_topology_free(t);
}

static void test_topology_errors_are_positioned(void **state)
{
	static const struct {
		const char *yaml;
		const char *where;
		const char *what;
	} cases[] = {
		{"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        nodes:\n          - {name: a, chips: 0}\n",
		 ":6:", "at least one chip"},
		{"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        nodes: [{name: a, chips: 1}]\n"
		 "      - id: 1\n        nodes: [{name: b, chips: 1}]\n", ":6:", "duplicate rack id"},
		{"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        nodes: [{name: a, chips: 1}]\n"
		 "  - id: 1\n    racks:\n      - id: 2\n        nodes: [{name: b, chips: 1}]\n", ":6:",
		 "duplicate cluster id"},
		{"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        nodes: [{name: a, chips: 1}, {name: a, chips: 2}]\n",
		 ":5:", "duplicate node name"},
		{"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        nodez: []\n", ":5:", "unknown key"},
		{"clusters:\n  - id: 1\n    racks:\n      - id: 1\n        nodes: [{name: a, chips: 1, gpus: 2}]\n",
		 ":5:", "unknown key"},
		{"clusters: []\n", ":1:", "non-empty list"},
		{"clusters:\n  - id: x\n", ":2:", "expected an integer"},
		{"clusters:\n  - racks: [\n", ":", ""},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lpu_topology *t = NULL;
		struct nova_err err;
		const char *path = write_tmp(cases[i].yaml);
		int rc = lpu_topology_load(&t, path, &err);
		unlink(path);
		if (rc != NOVA_EINVAL || !strstr(err.message, path) || !strstr(err.message, cases[i].where) ||
		    !strstr(err.message, cases[i].what))
			fail_msg("case %zu: rc %d \"%s\"", i, rc, err.message);
		assert_null(t);
	}
}

/* Random and mutated inputs: never a crash, always 0 or a positioned error
 * (the sanitizer build makes this a memory-safety check too). */
static void test_allocation_survives_random_input(void **state)
{
	static const char alphabet[] = "cr0123456789,:x \x01\xff";
	static const char *const seeds[] = {"c1r1", "c1r1,c1r2", "c1r1:c2r2,c2r3", "c9999r9999"};
	unsigned long long x = 88172645463325252ull;
	char buf[64];
	(void)state;
	for (int it = 0; it < 200000; it++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t len;
		if (it & 1) {
			snprintf(buf, sizeof(buf), "%s", seeds[x % 4]);
			len = strlen(buf);
			if (len)
				buf[(x >> 8) % len] = alphabet[(x >> 16) % (sizeof(alphabet) - 1)];
		} else {
			len = (x >> 4) % 40;
			for (size_t i = 0; i < len; i++)
				buf[i] = alphabet[(x >> (i % 50)) % (sizeof(alphabet) - 1)];
			buf[len] = '\0';
		}
		struct lpu_allocation a;
		struct nova_err err;
		int rc = lpu_allocation_parse(&a, buf, NULL, 0, &err);
		if (rc != 0 && (rc != NOVA_EINVAL || strncmp(err.message, "at ", 3) != 0))
			fail_msg("\"%s\": rc %d \"%s\"", buf, rc, err.message);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocation_valid_forms),
		cmocka_unit_test(test_allocation_malformed_cases_name_position_and_reason),
		cmocka_unit_test(test_topology_example_loads_and_checks_racks),
		cmocka_unit_test(test_topology_errors_are_positioned),
		cmocka_unit_test(test_allocation_survives_random_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
