#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "adapters/lpu/lpu.h"

static int alloc_fail(struct nova_err *err, size_t pos, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int alloc_fail(struct nova_err *err, size_t pos, const char *fmt, ...)
{
	char reason[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	nova_err_set(err, NOVA_EINVAL, "allocation", "at %zu: %s", pos, reason);
	nova_err_set_hint(err, "write racks as c<cluster>r<rack>, ',' between racks, ':' between "
			       "stage groups, e.g. c1r1:c2r2,c2r3");
	return NOVA_EINVAL;
}

/* A positive decimal number without leading zeros at s[*i]. */
static int alloc_number(unsigned *out, const char *s, size_t *i, const char *what,
			struct nova_err *err)
{
	size_t start = *i;
	unsigned long v = 0;
	if (s[*i] < '0' || s[*i] > '9')
		return alloc_fail(err, start + 1, "expected the %s number", what);
	if (s[*i] == '0')
		return alloc_fail(err, start + 1, "%s numbers start at 1 and have no leading zero", what);
	while (s[*i] >= '0' && s[*i] <= '9') {
		v = v * 10 + (unsigned long)(s[*i] - '0');
		if (v > LPU_NUMBER_MAX)
			return alloc_fail(err, start + 1, "%s number is too large", what);
		(*i)++;
	}
	*out = (unsigned)v;
	return 0;
}

int lpu_allocation_parse(struct lpu_allocation *out, const char *s,
			 const struct lpu_topology *topo, size_t want_groups, struct nova_err *err)
{
	size_t i = 0;
	int rc;
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return alloc_fail(err, 1, "the allocation is empty");
	out->n_groups = 1;
	for (;;) {
		size_t g = out->n_groups - 1, at = i + 1;
		struct lpu_rack_ref ref;
		char name[32];
		if (s[i] != 'c') {
			if (s[i] == '\0')
				return alloc_fail(err, at, "expected a rack after the separator");
			return alloc_fail(err, at, "expected 'c' to begin a rack");
		}
		i++;
		if ((rc = alloc_number(&ref.cluster, s, &i, "cluster", err)))
			return rc;
		if (s[i] != 'r')
			return alloc_fail(err, i + 1, "expected 'r' after the cluster number");
		i++;
		if ((rc = alloc_number(&ref.rack, s, &i, "rack", err)))
			return rc;
		snprintf(name, sizeof(name), "c%ur%u", ref.cluster, ref.rack);
		for (size_t gg = 0; gg < out->n_groups; gg++)
			for (size_t k = 0; k < out->groups[gg].n; k++)
				if (out->groups[gg].racks[k].cluster == ref.cluster &&
				    out->groups[gg].racks[k].rack == ref.rack)
					return alloc_fail(err, at, "rack %s is named twice", name);
		if (topo && !lpu_topology_rack(topo, ref.cluster, ref.rack))
			return alloc_fail(err, at, "rack %s is not in the datacenter topology", name);
		if (out->groups[g].n == LPU_MAX_RACKS_PER_GROUP)
			return alloc_fail(err, at, "too many racks in one group");
		out->groups[g].racks[out->groups[g].n++] = ref;
		if (s[i] == '\0')
			break;
		if (s[i] == ',') {
			i++;
			continue;
		}
		if (s[i] == ':') {
			if (out->n_groups == LPU_MAX_GROUPS)
				return alloc_fail(err, i + 1, "too many stage groups");
			out->n_groups++;
			i++;
			continue;
		}
		char c[8];
		snprintf(c, sizeof(c), (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? "\\x%02x" : "%c",
			 (unsigned char)s[i]);
		return alloc_fail(err, i + 1, "unexpected '%s' (racks are separated by ',', groups by ':')", c);
	}
	if (want_groups && out->n_groups != want_groups) {
		char detail[64];
		snprintf(detail, sizeof(detail), "%zu stage group%s, the model needs %zu", out->n_groups,
			 out->n_groups == 1 ? "" : "s", want_groups);
		return alloc_fail(err, 1, "the allocation has %s", detail);
	}
	return 0;
}
