#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/lpu/lpu.h"
#include "core/files.h"
#include "core/ydoc.h"

/* Field paths ("clusters[0].racks[1].nodes[2].chips") are cut at the
 * buffer's end; they only ever name a field in an error. */
static void topo_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void topo_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static int topo_labels(json_t **out, struct ydoc *d, yaml_node_t *n, const char *field,
		       struct nova_err *err)
{
	json_t *j;
	const char *k;
	json_t *v;
	int rc;
	*out = NULL;
	if (!n) {
		*out = json_object();
		return 0;
	}
	if (n->type != YAML_MAPPING_NODE)
		return ydoc_err(d, n, err, NOVA_EINVAL, field, "%s: expected a mapping of strings", field);
	if ((rc = ydoc_to_json(&j, d, n, err)))
		return rc;
	json_object_foreach(j, k, v) {
		if (!json_is_string(v)) {
			json_decref(j);
			(void)k; /* a key of the file: not echoed (core/ydoc.h) */
			return ydoc_err(d, n, err, NOVA_EINVAL, field, "%s: every label value must be a string", field);
		}
	}
	*out = j;
	return 0;
}

static int topo_node(struct lpu_node *out, struct ydoc *d, yaml_node_t *n, const char *path,
		     struct nova_err *err)
{
	static const char *const keys[] = {"name", "chips", "accelerator_type", "memory_mib", "labels",
					   NULL};
	char f[160];
	const char *s;
	long long v;
	int rc;
	yaml_node_t *x;
	if ((rc = ydoc_map_check_keys(d, n, path, keys, err)))
		return rc;
	topo_fmt(f, sizeof(f), "%s.name", path);
	if (!(x = ydoc_map_get(d, n, "name")))
		return ydoc_err(d, n, err, NOVA_EINVAL, f, "%s is required", f);
	if ((rc = ydoc_get_string(&s, d, x, f, err)))
		return rc;
	if (!*s || strlen(s) >= sizeof(out->name))
		return ydoc_err(d, x, err, NOVA_EINVAL, f, "%s: 1 to %zu characters", f, sizeof(out->name) - 1);
	snprintf(out->name, sizeof(out->name), "%s", s);
	topo_fmt(f, sizeof(f), "%s.chips", path);
	if (!(x = ydoc_map_get(d, n, "chips")))
		return ydoc_err(d, n, err, NOVA_EINVAL, f, "%s is required", f);
	if ((rc = ydoc_get_long(&v, d, x, f, 0, 4096, err)))
		return rc;
	if (v == 0)
		return ydoc_err(d, x, err, NOVA_EINVAL, f, "%s: a node has at least one chip", f);
	out->chips = (unsigned)v;
	topo_fmt(f, sizeof(f), "%s.accelerator_type", path);
	if ((x = ydoc_map_get(d, n, "accelerator_type"))) {
		if ((rc = ydoc_get_string(&s, d, x, f, err)))
			return rc;
		snprintf(out->accelerator_type, sizeof(out->accelerator_type), "%s", s);
	} else {
		snprintf(out->accelerator_type, sizeof(out->accelerator_type), "LPU");
	}
	topo_fmt(f, sizeof(f), "%s.memory_mib", path);
	if ((x = ydoc_map_get(d, n, "memory_mib"))) {
		if ((rc = ydoc_get_long(&v, d, x, f, 0, 1LL << 40, err)))
			return rc;
		out->memory_mib = (unsigned long long)v;
	}
	topo_fmt(f, sizeof(f), "%s.labels", path);
	return topo_labels(&out->labels, d, ydoc_map_get(d, n, "labels"), f, err);
}

static int topo_seq(yaml_node_t **out, struct ydoc *d, yaml_node_t *parent, const char *key,
		    const char *field, struct nova_err *err)
{
	yaml_node_t *n = ydoc_map_get(d, parent, key);
	*out = n;
	if (!n)
		return ydoc_err(d, parent, err, NOVA_EINVAL, field, "%s is required", field);
	if (n->type != YAML_SEQUENCE_NODE || n->data.sequence.items.top == n->data.sequence.items.start)
		return ydoc_err(d, n, err, NOVA_EINVAL, field, "%s: expected a non-empty list", field);
	return 0;
}

int lpu_topology_load(struct lpu_topology **out, const char *path, struct nova_err *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;
	*out = NULL;
	if ((rc = files_read_capped(&text, &len, path, FILES_READ_MAX, "", err)))
		return rc;
	rc = lpu_topology_parse(out, path, text, len, err);
	free(text);
	return rc;
}

int lpu_topology_parse(struct lpu_topology **out, const char *name, const char *text, size_t len,
		       struct nova_err *err)
{
	static const char *const top_keys[] = {"clusters", NULL};
	static const char *const cluster_keys[] = {"id", "name", "racks", NULL};
	static const char *const rack_keys[] = {"id", "labels", "nodes", NULL};
	struct lpu_topology *t = calloc(1, sizeof(*t));
	struct ydoc *d = NULL;
	yaml_node_t *root, *clusters, *racks, *nodes;
	char f[128];
	int rc;
	*out = NULL;
	if (!t)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = ydoc_load_string(&d, name, text, len, err)))
		goto fail;
	root = ydoc_root(d);
	if (!root) {
		rc = nova_err_set(err, NOVA_EINVAL, "", "%s: the topology is empty", name);
		goto fail;
	}
	if ((rc = ydoc_map_check_keys(d, root, "", top_keys, err)) ||
	    (rc = topo_seq(&clusters, d, root, "clusters", "clusters", err)))
		goto fail;
	for (yaml_node_item_t *ci = clusters->data.sequence.items.start;
	     ci < clusters->data.sequence.items.top; ci++) {
		yaml_node_t *cn = ydoc_node(d, *ci);
		long long cid;
		size_t cidx = (size_t)(ci - clusters->data.sequence.items.start);
		topo_fmt(f, sizeof(f), "clusters[%zu]", cidx);
		if ((rc = ydoc_map_check_keys(d, cn, f, cluster_keys, err)))
			goto fail;
		char fid[160];
		topo_fmt(fid, sizeof(fid), "%s.id", f);
		yaml_node_t *idn = ydoc_map_get(d, cn, "id");
		if (!idn) {
			rc = ydoc_err(d, cn, err, NOVA_EINVAL, fid, "%s is required", fid);
			goto fail;
		}
		if ((rc = ydoc_get_long(&cid, d, idn, fid, 1, LPU_NUMBER_MAX, err)))
			goto fail;
		for (size_t k = 0; k < t->n_racks; k++)
			if (t->racks[k].cluster == cid) {
				rc = ydoc_err(d, idn, err, NOVA_EINVAL, fid, "%s: duplicate cluster id", fid);
				goto fail;
			}
		char fr[160];
		topo_fmt(fr, sizeof(fr), "%s.racks", f);
		if ((rc = topo_seq(&racks, d, cn, "racks", fr, err)))
			goto fail;
		size_t first_of_cluster = t->n_racks;
		for (yaml_node_item_t *ri = racks->data.sequence.items.start;
		     ri < racks->data.sequence.items.top; ri++) {
			yaml_node_t *rn = ydoc_node(d, *ri);
			char rf[200], rid_f[220], nf[220];
			long long rid;
			topo_fmt(rf, sizeof(rf), "%s[%zu]", fr, (size_t)(ri - racks->data.sequence.items.start));
			if ((rc = ydoc_map_check_keys(d, rn, rf, rack_keys, err)))
				goto fail;
			topo_fmt(rid_f, sizeof(rid_f), "%s.id", rf);
			yaml_node_t *ridn = ydoc_map_get(d, rn, "id");
			if (!ridn) {
				rc = ydoc_err(d, rn, err, NOVA_EINVAL, rid_f, "%s is required", rid_f);
				goto fail;
			}
			if ((rc = ydoc_get_long(&rid, d, ridn, rid_f, 1, LPU_NUMBER_MAX, err)))
				goto fail;
			for (size_t k = first_of_cluster; k < t->n_racks; k++)
				if (t->racks[k].rack == rid) {
					rc = ydoc_err(d, ridn, err, NOVA_EINVAL, rid_f,
						      "%s: duplicate rack id in this cluster", rid_f);
					goto fail;
				}
			struct lpu_rack *nr = realloc(t->racks, (t->n_racks + 1) * sizeof(*nr));
			if (!nr) {
				rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
				goto fail;
			}
			t->racks = nr;
			struct lpu_rack *r = &t->racks[t->n_racks++];
			memset(r, 0, sizeof(*r));
			r->cluster = (unsigned)cid;
			r->rack = (unsigned)rid;
			snprintf(r->name, sizeof(r->name), "c%ur%u", r->cluster, r->rack);
			topo_fmt(nf, sizeof(nf), "%s.labels", rf);
			if ((rc = topo_labels(&r->labels, d, ydoc_map_get(d, rn, "labels"), nf, err)))
				goto fail;
			topo_fmt(nf, sizeof(nf), "%s.nodes", rf);
			if ((rc = topo_seq(&nodes, d, rn, "nodes", nf, err)))
				goto fail;
			size_t cnt = (size_t)(nodes->data.sequence.items.top - nodes->data.sequence.items.start);
			if (!(r->nodes = calloc(cnt, sizeof(*r->nodes)))) {
				rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
				goto fail;
			}
			for (size_t ni = 0; ni < cnt; ni++) {
				char pf[240];
				yaml_node_t *nn = ydoc_node(d, nodes->data.sequence.items.start[ni]);
				topo_fmt(pf, sizeof(pf), "%s[%zu]", nf, ni);
				if ((rc = topo_node(&r->nodes[ni], d, nn, pf, err)))
					goto fail;
				r->n_nodes = ni + 1;
				/* Node names are unique in the whole datacenter. */
				for (size_t a = 0; a < t->n_racks; a++)
					for (size_t b = 0; b < t->racks[a].n_nodes; b++)
						if ((a != t->n_racks - 1 || b != ni) &&
						    !strcmp(t->racks[a].nodes[b].name, r->nodes[ni].name)) {
							char nm[240];
							topo_fmt(nm, sizeof(nm), "%s.name", pf);
							rc = ydoc_err(d, ydoc_map_get(d, nn, "name"), err,
								      NOVA_EINVAL, nm, "%s: duplicate node name "
								      "(node names are unique in the datacenter)", nm);
							goto fail;
						}
			}
		}
	}
	ydoc_destroy(d);
	*out = t;
	return 0;
fail:
	ydoc_destroy(d);
	lpu_topology_free(t);
	return rc;
}

void lpu_topology_free(struct lpu_topology *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_racks; i++) {
		for (size_t j = 0; j < t->racks[i].n_nodes; j++)
			json_decref(t->racks[i].nodes[j].labels);
		free(t->racks[i].nodes);
		json_decref(t->racks[i].labels);
	}
	free(t->racks);
	free(t);
}

const struct lpu_rack *lpu_topology_rack(const struct lpu_topology *t, unsigned cluster,
					 unsigned rack)
{
	for (size_t i = 0; t && i < t->n_racks; i++)
		if (t->racks[i].cluster == cluster && t->racks[i].rack == rack)
			return &t->racks[i];
	return NULL;
}
