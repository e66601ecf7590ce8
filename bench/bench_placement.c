/* bench_placement: placement throughput in process, no I/O.
 *
 * A fleet of --nodes nodes (default 10,000; 16 accelerators each, 70%
 * A100-80G and 30% H100-80G, in 4 zones) takes --replicas replicas (default
 * 100,000) one placement_place() call at a time, as the deployment worker
 * calls it: 40% need one accelerator of any type, 40% one A100-80G, 15% two
 * H100-80G, 5% are two-stage gangs (an A100 stage and an H100 stage); every
 * tenth one carries a zone selector; binpack and spread alternate. The
 * demand (about 120,000 accelerators) fits the fleet (160,000), so every
 * call succeeds and the figure is the cost of a successful placement on a
 * fleet that fills up as the run goes. The fleet is indexed once
 * (placement_index_place, as the worker places a deployment's pending
 * replicas); --linear uses placement_place alone, for comparison. Prints one
 * JSON object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "deployments/placement.h"

static double bp_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const char *zones[] = {"z0", "z1", "z2", "z3"};
	size_t n_nodes = 10000, n_replicas = 100000;
	int linear = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--linear") == 0)
			linear = 1;
		else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
			n_nodes = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--replicas") == 0 && i + 1 < argc)
			n_replicas = strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: bench_placement [--nodes N] [--replicas N] [--linear]\n");
			return 2;
		}
	}
	if (n_nodes == 0) {
		fprintf(stderr, "bench_placement: --nodes must be positive\n");
		return 2;
	}
	struct placement_node *nodes = calloc(n_nodes, sizeof(*nodes));
	char (*ids)[32] = calloc(n_nodes, sizeof(*ids)); /* "node-" and a size_t */
	if (!nodes || !ids) {
		fprintf(stderr, "bench_placement: out of memory\n");
		return 2;
	}
	for (size_t i = 0; i < n_nodes; i++) {
		snprintf(ids[i], sizeof(ids[i]), "node-%zu", i);
		nodes[i] = (struct placement_node){
			.id = ids[i],
			.accelerator_type = i % 10 < 7 ? "A100-80G" : "H100-80G",
			.memory_mib = 81920,
			.total = 16,
			.free = 16,
			.schedulable = true,
			.labels = {{"zone", zones[i % 4]}, {"rack", i % 2 ? "odd" : "even"}},
			.n_labels = 2,
		};
	}
	const struct placement_stage any1[] = {{"main", NULL, 1, 0}};
	const struct placement_stage a100[] = {{"main", "A100-80G", 1, 40000}};
	const struct placement_stage h100x2[] = {{"main", "H100-80G", 2, 0}};
	const struct placement_stage gang[] = {{"draft", "A100-80G", 1, 0}, {"target", "H100-80G", 1, 0}};
	const struct placement_label selector[] = {{"zone", "z1"}};

	size_t placed = 0, refused = 0, stages = 0;
	char first_refusal[NOVA_ERR_MESSAGE_MAX] = "";
	struct placement_index *ix = NULL;
	struct nova_err ierr;
	double t0 = bp_now();
	if (!linear && placement_index_create(&ix, nodes, n_nodes, &ierr) != 0) {
		fprintf(stderr, "bench_placement: %s\n", ierr.message);
		return 2;
	}
	for (size_t r = 0; r < n_replicas; r++) {
		struct placement_request req = {.policy = r % 2 ? PLACEMENT_SPREAD : PLACEMENT_BINPACK};
		struct placement_result res;
		struct nova_err err;
		unsigned pick = (unsigned)(r % 20);
		if (pick < 8) {
			req.stages = any1;
			req.n_stages = 1;
		} else if (pick < 16) {
			req.stages = a100;
			req.n_stages = 1;
		} else if (pick < 19) {
			req.stages = h100x2;
			req.n_stages = 1;
		} else {
			req.stages = gang;
			req.n_stages = 2;
		}
		if (r % 10 == 3) {
			req.selector = selector;
			req.n_selector = 1;
		}
		if ((linear ? placement_place(&res, nodes, n_nodes, &req, &err)
			    : placement_index_place(&res, ix, &req, &err)) == 0) {
			placed++;
			stages += req.n_stages;
		} else {
			if (!refused)
				snprintf(first_refusal, sizeof(first_refusal), "%s", err.message);
			refused++;
		}
	}
	double secs = bp_now() - t0;
	placement_index_destroy(ix);
	unsigned long long used = 0;
	for (size_t i = 0; i < n_nodes; i++)
		used += nodes[i].total - nodes[i].free;
	printf("{\"method\": \"%s\", \"nodes\": %zu, \"replicas\": %zu, \"placed\": %zu, \"refused\": %zu, "
	       "\"stages\": %zu, \"accelerators_used\": %llu, \"seconds\": %.3f, "
	       "\"placements_per_s\": %.1f",
	       linear ? "linear" : "index", n_nodes, n_replicas, placed, refused, stages, used, secs,
	       secs > 0 ? (double)placed / secs : 0.0);
	if (refused) {
		printf(", \"first_refusal\": \"");
		for (const char *p = first_refusal; *p; p++) {
			if (*p == '"' || *p == '\\')
				putchar('\\');
			putchar(*p);
		}
		printf("\"");
	}
	printf("}\n");
	free(nodes);
	free(ids);
	return refused ? 1 : 0;
}
