#include "deployments/placement.h"

#include <stdio.h>
#include <string.h>

static bool placement_labels_match(const struct placement_node *n, const struct placement_request *r)
{
	for (size_t i = 0; i < r->n_selector; i++) {
		bool found = false;
		for (size_t j = 0; j < n->n_labels && !found; j++)
			found = strcmp(n->labels[j].key, r->selector[i].key) == 0 &&
				strcmp(n->labels[j].value, r->selector[i].value) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* Stage groups: a node labelled stage_group=N takes only stage N of a
 * multi-stage replica (lpu racks are allocated per stage). A node without
 * the label, or a one-stage replica, has no such limit. */
static bool placement_group_fits(const struct placement_node *n, const struct placement_request *r,
				 size_t stage)
{
	if (r->n_stages < 2)
		return true;
	for (size_t j = 0; j < n->n_labels; j++)
		if (strcmp(n->labels[j].key, PLACEMENT_STAGE_GROUP_LABEL) == 0) {
			char want[24];
			snprintf(want, sizeof(want), "%zu", stage);
			return strcmp(n->labels[j].value, want) == 0;
		}
	return true;
}

/* Whether stage groups apply to this request on these nodes (for the
 * reasons given when a stage does not fit). */
static bool placement_grouped(const struct placement_node *nodes, size_t n_nodes,
			      const struct placement_request *r)
{
	if (r->n_stages < 2)
		return false;
	for (size_t i = 0; i < n_nodes; i++)
		for (size_t j = 0; j < nodes[i].n_labels; j++)
			if (strcmp(nodes[i].labels[j].key, PLACEMENT_STAGE_GROUP_LABEL) == 0)
				return true;
	return false;
}

/* The node can host the stage's kind of accelerators at all. */
static bool placement_kind_fits(const struct placement_node *n, const struct placement_stage *s)
{
	if (s->accelerator_type && *s->accelerator_type &&
	    (!n->accelerator_type || strcmp(n->accelerator_type, s->accelerator_type) != 0))
		return false;
	return s->memory_mib == 0 || n->memory_mib >= s->memory_mib;
}

static const char *placement_type_name(const struct placement_stage *s)
{
	return s->accelerator_type && *s->accelerator_type ? s->accelerator_type : "accelerator";
}

int placement_place(struct placement_result *out, struct placement_node *nodes, size_t n_nodes,
		    const struct placement_request *req, struct nova_err *err)
{
	size_t st;
	if (req->n_stages == 0 || req->n_stages > PLACEMENT_MAX_STAGES)
		return nova_err_set(err, NOVA_EINVAL, "stages", "a replica has 1 to %d stages",
				    PLACEMENT_MAX_STAGES);
	for (st = 0; st < req->n_stages; st++) {
		const struct placement_stage *s = &req->stages[st];
		size_t best = n_nodes;
		unsigned most_free = 0, pool_free = 0;
		for (size_t i = 0; i < n_nodes; i++) {
			struct placement_node *n = &nodes[i];
			if (!n->schedulable || !placement_kind_fits(n, s) ||
			    !placement_labels_match(n, req) || !placement_group_fits(n, req, st))
				continue;
			pool_free += n->free;
			if (n->free > most_free)
				most_free = n->free;
			if (n->free < s->accelerators)
				continue;
			if (best == n_nodes ||
			    (req->policy == PLACEMENT_BINPACK ? n->free < nodes[best].free
							      : n->free > nodes[best].free))
				best = i;
		}
		if (best == n_nodes) {
			/* Give back what the earlier stages of this gang took. */
			for (size_t k = 0; k < st; k++)
				nodes[out->node[k]].free += req->stages[k].accelerators;
			char where[48] = "";
			if (placement_grouped(nodes, n_nodes, req))
				snprintf(where, sizeof(where), " in stage group %zu", st);
			return nova_err_set(err, NOVA_EAGAIN, "",
					    "no capacity: %s%s%sneeds %u x %s on one node%s; the most "
					    "free on a matching node is %u (pool has %u free)",
					    req->n_stages > 1 ? "stage " : "",
					    req->n_stages > 1 ? s->name : "",
					    req->n_stages > 1 ? " " : "", s->accelerators,
					    placement_type_name(s), where, most_free, pool_free);
		}
		nodes[best].free -= s->accelerators;
		out->node[st] = best;
	}
	return 0;
}

int placement_check_feasible(const struct placement_node *nodes, size_t n_nodes,
			     const struct placement_request *req, struct nova_err *err)
{
	for (size_t st = 0; st < req->n_stages; st++) {
		const struct placement_stage *s = &req->stages[st];
		unsigned biggest = 0;
		for (size_t i = 0; i < n_nodes; i++)
			if (placement_kind_fits(&nodes[i], s) && placement_labels_match(&nodes[i], req) &&
			    placement_group_fits(&nodes[i], req, st) && nodes[i].total > biggest)
				biggest = nodes[i].total;
		if (biggest < s->accelerators) {
			char where[48] = "";
			if (placement_grouped(nodes, n_nodes, req))
				snprintf(where, sizeof(where), " in stage group %zu", st);
			return nova_err_set(err, NOVA_EINVAL, "model",
					    "can never fit: %s%s%sneeds %u x %s%s on one node%s, and the "
					    "largest matching node has %u",
					    req->n_stages > 1 ? "stage " : "",
					    req->n_stages > 1 ? s->name : "", req->n_stages > 1 ? " " : "",
					    s->accelerators, placement_type_name(s),
					    s->memory_mib ? " with enough memory" : "", where, biggest);
		}
	}
	return 0;
}

enum placement_policy placement_policy_parse(const char *s, bool *ok)
{
	*ok = true;
	if (s && strcmp(s, "spread") == 0)
		return PLACEMENT_SPREAD;
	*ok = !s || strcmp(s, "binpack") == 0;
	return PLACEMENT_BINPACK;
}

const char *placement_policy_name(enum placement_policy p)
{
	return p == PLACEMENT_SPREAD ? "spread" : "binpack";
}
