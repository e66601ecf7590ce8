#include "deployments/placement.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

static bool placement_stages_ok(const struct placement_request *req)
{
	return req->n_stages > 0 && req->n_stages <= PLACEMENT_MAX_STAGES;
}

static int placement_stages_err(struct nova_err *err)
{
	return nova_err_set(err, NOVA_EINVAL, "stages", "a replica has 1 to %d stages",
			    PLACEMENT_MAX_STAGES);
}

static const char *placement_type_name(const struct placement_stage *s)
{
	return s->accelerator_type && *s->accelerator_type ? s->accelerator_type : "accelerator";
}

int placement_place(struct placement_result *out, struct placement_node *nodes, size_t n_nodes,
		    const struct placement_request *req, struct nova_err *err)
{
	size_t st;
	if (!placement_stages_ok(req))
		return placement_stages_err(err);
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

/* --- the index ---------------------------------------------------------------- */

struct pi_group {
	const char *type;     /* "" for nodes without one */
	size_t *members;      /* node indices, ascending */
	size_t n;
	size_t words;         /* per bitset */
	uint64_t *bits;       /* (max_free + 1) bitsets of n bits: bit k = members[k] */
};

struct placement_index {
	struct placement_node *nodes;
	size_t n_nodes;
	unsigned max_free;
	struct pi_group *groups;
	size_t n_groups;
	size_t *group_of, *pos_of; /* per node */
};

static uint64_t *pi_bucket(const struct placement_index *ix, const struct pi_group *g, unsigned f)
{
	(void)ix;
	return g->bits + (size_t)f * g->words;
}

static void pi_set(struct placement_index *ix, size_t node, unsigned f, bool on)
{
	struct pi_group *g = &ix->groups[ix->group_of[node]];
	size_t k = ix->pos_of[node];
	uint64_t *b = pi_bucket(ix, g, f);
	if (on)
		b[k / 64] |= 1ULL << (k % 64);
	else
		b[k / 64] &= ~(1ULL << (k % 64));
}

static void pi_take(struct placement_index *ix, size_t node, unsigned acc)
{
	struct placement_node *n = &ix->nodes[node];
	pi_set(ix, node, n->free, false);
	n->free -= acc;
	pi_set(ix, node, n->free, true);
}

static void pi_give(struct placement_index *ix, size_t node, unsigned acc)
{
	struct placement_node *n = &ix->nodes[node];
	pi_set(ix, node, n->free, false);
	n->free += acc;
	pi_set(ix, node, n->free, true);
}

void placement_index_destroy(struct placement_index *ix)
{
	if (!ix)
		return;
	for (size_t g = 0; g < ix->n_groups; g++) {
		free(ix->groups[g].members);
		free(ix->groups[g].bits);
	}
	free(ix->groups);
	free(ix->group_of);
	free(ix->pos_of);
	free(ix);
}

int placement_index_create(struct placement_index **out, struct placement_node *nodes,
			   size_t n_nodes, struct nova_err *err)
{
	struct placement_index *ix = calloc(1, sizeof(*ix));
	*out = NULL;
	if (!ix)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	ix->nodes = nodes;
	ix->n_nodes = n_nodes;
	ix->group_of = calloc(n_nodes ? n_nodes : 1, sizeof(size_t));
	ix->pos_of = calloc(n_nodes ? n_nodes : 1, sizeof(size_t));
	ix->groups = calloc(n_nodes ? n_nodes : 1, sizeof(*ix->groups));
	if (!ix->group_of || !ix->pos_of || !ix->groups)
		goto oom;
	for (size_t i = 0; i < n_nodes; i++) {
		const char *t = nodes[i].accelerator_type ? nodes[i].accelerator_type : "";
		size_t g;
		if (nodes[i].free > nodes[i].total)
			nodes[i].free = nodes[i].total;
		if (nodes[i].total > ix->max_free)
			ix->max_free = nodes[i].total;
		for (g = 0; g < ix->n_groups && strcmp(ix->groups[g].type, t) != 0; g++)
			;
		if (g == ix->n_groups)
			ix->groups[ix->n_groups++].type = t;
		ix->group_of[i] = g;
		ix->pos_of[i] = ix->groups[g].n++;
	}
	for (size_t g = 0; g < ix->n_groups; g++) {
		struct pi_group *gr = &ix->groups[g];
		gr->words = (gr->n + 63) / 64;
		gr->members = calloc(gr->n, sizeof(size_t));
		gr->bits = calloc(((size_t)ix->max_free + 1) * gr->words, sizeof(uint64_t));
		if (!gr->members || !gr->bits)
			goto oom;
	}
	for (size_t i = 0; i < n_nodes; i++) {
		ix->groups[ix->group_of[i]].members[ix->pos_of[i]] = i;
		pi_set(ix, i, nodes[i].free, true);
	}
	*out = ix;
	return 0;
oom:
	placement_index_destroy(ix);
	return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
}

/* The first node (by index) of bucket f of group g that takes stage st. */
static bool pi_first_fit(size_t *node, const struct placement_index *ix, const struct pi_group *g,
			 unsigned f, const struct placement_request *req, size_t st)
{
	const uint64_t *b = pi_bucket(ix, g, f);
	for (size_t w = 0; w < g->words; w++) {
		uint64_t word = b[w];
		while (word) {
			size_t k = w * 64 + (size_t)__builtin_ctzll(word);
			const struct placement_node *n = &ix->nodes[g->members[k]];
			word &= word - 1;
			if (n->schedulable && placement_kind_fits(n, &req->stages[st]) &&
			    placement_labels_match(n, req) && placement_group_fits(n, req, st)) {
				*node = g->members[k];
				return true;
			}
		}
	}
	return false;
}

/* The node placement_place would choose for stage st, or n_nodes. */
static size_t pi_choose(const struct placement_index *ix, const struct placement_request *req, size_t st)
{
	const struct placement_stage *s = &req->stages[st];
	size_t best = ix->n_nodes;
	unsigned best_free = 0;
	if (s->accelerators > ix->max_free)
		return best;
	for (size_t gi = 0; gi < ix->n_groups; gi++) {
		const struct pi_group *g = &ix->groups[gi];
		size_t node;
		if (s->accelerator_type && *s->accelerator_type && strcmp(g->type, s->accelerator_type))
			continue;
		if (req->policy == PLACEMENT_BINPACK) {
			for (unsigned f = s->accelerators; f <= ix->max_free; f++) {
				if (best < ix->n_nodes && f > best_free)
					break; /* cannot beat what another group offers */
				if (pi_first_fit(&node, ix, g, f, req, st)) {
					if (best == ix->n_nodes || f < best_free || node < best) {
						best = node;
						best_free = f;
					}
					break;
				}
			}
		} else {
			for (unsigned f = ix->max_free + 1; f-- > s->accelerators;) {
				if (best < ix->n_nodes && f < best_free)
					break;
				if (pi_first_fit(&node, ix, g, f, req, st)) {
					if (best == ix->n_nodes || f > best_free || node < best) {
						best = node;
						best_free = f;
					}
					break;
				}
			}
		}
	}
	return best;
}

int placement_index_place(struct placement_result *out, struct placement_index *ix,
			  const struct placement_request *req, struct nova_err *err)
{
	size_t st;
	if (!placement_stages_ok(req))
		return placement_stages_err(err);
	for (st = 0; st < req->n_stages; st++) {
		size_t node = pi_choose(ix, req, st);
		if (node == ix->n_nodes)
			break;
		pi_take(ix, node, req->stages[st].accelerators);
		out->node[st] = node;
	}
	if (st == req->n_stages)
		return 0;
	for (size_t k = 0; k < st; k++)
		pi_give(ix, out->node[k], req->stages[k].accelerators);
	/* Nothing fits: the linear pass gives the same reason, and changes
	 * nothing when it fails too (as it must). */
	struct placement_result unused;
	int rc = placement_place(&unused, ix->nodes, ix->n_nodes, req, err);
	if (rc == 0) {
		for (size_t k = 0; k < req->n_stages; k++)
			ix->nodes[unused.node[k]].free += req->stages[k].accelerators;
		return nova_err_set(err, NOVA_EINTERNAL, "", "placement index out of step with its nodes");
	}
	return rc;
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
