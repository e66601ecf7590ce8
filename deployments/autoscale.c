/* Autoscaling policies and decisions (deployments/autoscale.h). */
#include "deployments/autoscale.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"

int autoscale_policy_parse(struct autoscale_policy *out, const json_t *obj, long long max_allowed,
			   struct nova_err *err)
{
	bool has_min = false, has_max = false, has_window = false;
	const struct json_field fields[] = {
		{.name = "min_replicas", .kind = JSON_KIND_INT, .out = &out->min_replicas,
		 .present = &has_min, .min = 0, .max = max_allowed},
		{.name = "max_replicas", .kind = JSON_KIND_INT, .required = true,
		 .out = &out->max_replicas, .present = &has_max, .min = 1, .max = max_allowed},
		{.name = "target_queue_depth", .kind = JSON_KIND_NUMBER, .out = &out->target_queue_depth},
		{.name = "target_inflight_tokens", .kind = JSON_KIND_NUMBER,
		 .out = &out->target_inflight_tokens},
		{.name = "target_ttft_p95_ms", .kind = JSON_KIND_NUMBER, .out = &out->target_ttft_p95_ms},
		{.name = "target_tokens_per_second", .kind = JSON_KIND_NUMBER,
		 .out = &out->target_tokens_per_second},
		{.name = "scale_down_window_s", .kind = JSON_KIND_INT, .out = &out->scale_down_window_s,
		 .present = &has_window, .min = 0, .max = AUTOSCALE_MAX_DOWN_WINDOW_S},
		{.name = "idle_s", .kind = JSON_KIND_INT, .out = &out->idle_s, .min = 0,
		 .max = AUTOSCALE_MAX_IDLE_S},
	};
	static const struct {
		const char *name;
		size_t off;
		double max;
	} targets[] = {
		{"target_queue_depth", offsetof(struct autoscale_policy, target_queue_depth), 1e6},
		{"target_inflight_tokens", offsetof(struct autoscale_policy, target_inflight_tokens), 1e9},
		{"target_ttft_p95_ms", offsetof(struct autoscale_policy, target_ttft_p95_ms), 3.6e6},
		{"target_tokens_per_second", offsetof(struct autoscale_policy, target_tokens_per_second),
		 1e9},
	};
	int rc, n_targets = 0;
	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj))
		return nova_err_set(err, NOVA_EINVAL, "autoscale",
				    "autoscale must be an object {\"min_replicas\", \"max_replicas\", "
				    "\"target_...\"} or null");
	if ((rc = json_decode_object(obj, fields, sizeof(fields) / sizeof(fields[0]), "autoscale",
				     err)))
		return rc;
	(void)has_max;
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		double v = *(const double *)((const char *)out + targets[i].off);
		char field[64];
		snprintf(field, sizeof(field), "autoscale.%s", targets[i].name);
		if (!json_object_get(obj, targets[i].name))
			continue;
		if (!(v > 0) || v > targets[i].max)
			return nova_err_set(err, NOVA_EINVAL, field,
					    "%s must be a number above 0 and at most %g", field,
					    targets[i].max);
		n_targets++;
	}
	if (!has_min)
		out->min_replicas = 1;
	if (!has_window)
		out->scale_down_window_s = AUTOSCALE_DEFAULT_DOWN_WINDOW_S;
	if (out->min_replicas > out->max_replicas)
		return nova_err_set(err, NOVA_EINVAL, "autoscale.min_replicas",
				    "autoscale.min_replicas (%lld) is above autoscale.max_replicas (%lld)",
				    out->min_replicas, out->max_replicas);
	if (n_targets == 0) {
		rc = nova_err_set(err, NOVA_EINVAL, "autoscale",
				  "autoscale needs at least one target: target_queue_depth, "
				  "target_inflight_tokens, target_ttft_p95_ms or target_tokens_per_second");
		nova_err_set_hint(err, "for example {\"max_replicas\": 8, \"target_queue_depth\": 4}");
		return rc;
	}
	if (out->idle_s > 0 && out->min_replicas > 0)
		return nova_err_set(err, NOVA_EINVAL, "autoscale.idle_s",
				    "autoscale.idle_s scales to zero, which needs min_replicas 0 (it is "
				    "%lld)", out->min_replicas);
	return 0;
}

json_t *autoscale_policy_json(const struct autoscale_policy *p)
{
	json_t *j = json_pack("{s:I, s:I, s:I, s:I}", "min_replicas", (json_int_t)p->min_replicas,
			      "max_replicas", (json_int_t)p->max_replicas, "scale_down_window_s",
			      (json_int_t)p->scale_down_window_s, "idle_s", (json_int_t)p->idle_s);
	if (!j)
		return NULL;
	if (p->target_queue_depth > 0)
		json_object_set_new(j, "target_queue_depth", json_real(p->target_queue_depth));
	if (p->target_inflight_tokens > 0)
		json_object_set_new(j, "target_inflight_tokens", json_real(p->target_inflight_tokens));
	if (p->target_ttft_p95_ms > 0)
		json_object_set_new(j, "target_ttft_p95_ms", json_real(p->target_ttft_p95_ms));
	if (p->target_tokens_per_second > 0)
		json_object_set_new(j, "target_tokens_per_second",
				    json_real(p->target_tokens_per_second));
	return j;
}

/* --- the decision ---------------------------------------------------------------- */

/* A number as a reason shows it: integers bare, else one decimal. */
static void as_num(char *out, size_t len, double v)
{
	if (v == floor(v) && fabs(v) < 1e15)
		snprintf(out, len, "%.0f", v);
	else
		snprintf(out, len, "%.1f", v);
}

/* The recommendation of one target, with what it saw for the reason. */
struct as_rec {
	long long count;
	char what[128]; /* "queue depth 9.5 per replica" */
	char target[32];
};

/* A sum signal (queue, tokens, rate): the total over the replicas divided
 * by the target per replica. Otherwise (TTFT) the replicas reporting times
 * observed / target: the base is those whose load the tick has, not the
 * count wanted, so replicas still starting after a scale-up do not make
 * the next tick multiply again. Within the tolerance of the current count's
 * share, the current count. */
static bool as_target(struct as_rec *out, const char *label, const char *unit, double observed,
		      double target, const struct autoscale_signals *s, bool sum)
{
	double per, ratio;
	char o[32], t[32];
	if (!(target > 0) || observed < 0)
		return false;
	if (sum) {
		per = observed / (double)(s->reporting > 0 ? s->reporting : 1);
		ratio = s->current > 0 ? observed / ((double)s->current * target) : 0;
		out->count = (long long)ceil(observed / target - 1e-9);
	} else {
		if (s->reporting <= 0)
			return false;
		per = observed;
		ratio = per / target;
		out->count = (long long)ceil((double)s->reporting * ratio - 1e-9);
	}
	if (s->current > 0 && fabs(ratio - 1.0) <= AUTOSCALE_TOLERANCE)
		out->count = s->current;
	as_num(o, sizeof(o), per);
	as_num(t, sizeof(t), target);
	snprintf(out->what, sizeof(out->what), "%s %s%s%s", label, o, unit,
		 sum ? " per replica" : "");
	snprintf(out->target, sizeof(out->target), "%s", t);
	return true;
}

static void as_remember(struct autoscale_memory *m, long long rec, long long now_ms,
			long long window_ms)
{
	/* Entries whose time ended before the window began go (the one still
	 * holding at the window's start stays). */
	size_t drop = 0;
	while (m->n - drop >= 2 && m->at_ms[drop + 1] <= now_ms - window_ms)
		drop++;
	if (drop) {
		memmove(m->at_ms, m->at_ms + drop, (m->n - drop) * sizeof(m->at_ms[0]));
		memmove(m->recs, m->recs + drop, (m->n - drop) * sizeof(m->recs[0]));
		m->n -= drop;
	}
	if (m->n > 0 && m->recs[m->n - 1] == rec)
		return;
	if (m->n == AUTOSCALE_HISTORY_MAX) {
		/* Full: the two oldest become one, holding the larger over both
		 * their times (never less than either needed). */
		m->recs[1] = m->recs[0] > m->recs[1] ? m->recs[0] : m->recs[1];
		m->at_ms[1] = m->at_ms[0];
		memmove(m->at_ms, m->at_ms + 1, (m->n - 1) * sizeof(m->at_ms[0]));
		memmove(m->recs, m->recs + 1, (m->n - 1) * sizeof(m->recs[0]));
		m->n--;
	}
	m->at_ms[m->n] = now_ms;
	m->recs[m->n] = rec;
	m->n++;
}

void autoscale_decide(struct autoscale_decision *out, struct autoscale_memory *mem,
		      const struct autoscale_policy *p, const struct autoscale_signals *s,
		      long long now_ms)
{
	struct as_rec recs[4], *top = NULL;
	size_t n = 0;
	long long cur = s->current, rec, wmax = 0;
	bool active = s->waiting > 0 || s->running > 0 || s->router_in_flight > 0;
	char capped[96] = "";
	memset(out, 0, sizeof(*out));

	if (as_target(&recs[n], "queue depth", "", s->waiting, p->target_queue_depth, s, true))
		n++;
	if (as_target(&recs[n], "in-flight tokens", "", s->inflight_tokens,
		      p->target_inflight_tokens, s, true))
		n++;
	if (as_target(&recs[n], "TTFT p95", " ms", s->ttft_p95_ms, p->target_ttft_p95_ms, s, false))
		n++;
	if (as_target(&recs[n], "tokens/s", "", s->tokens_per_second, p->target_tokens_per_second, s,
		      true))
		n++;
	for (size_t i = 0; i < n; i++)
		if (!top || recs[i].count > top->count)
			top = &recs[i];
	rec = top ? top->count : cur;

	if (active || mem->active_ms == 0)
		mem->active_ms = now_ms; /* a deployment first seen gets idle_s from now */
	bool idle = p->idle_s > 0 && p->min_replicas == 0 && !active &&
		    now_ms - mem->active_ms >= p->idle_s * 1000;
	/* Never below one while a request runs or waits; never below one for
	 * a lull shorter than idle_s (only idleness takes it to zero). */
	if (rec < 1 && (active || (cur > 0 && !idle)))
		rec = 1;
	if (rec < p->min_replicas)
		rec = p->min_replicas;
	if (rec > p->max_replicas)
		rec = p->max_replicas;
	if (rec > cur && s->quota_max >= 0 && rec > s->quota_max) {
		long long q = s->quota_max > cur ? s->quota_max : cur;
		snprintf(capped, sizeof(capped), "; capped at %lld by the pool's quota (asked %lld)", q,
			 rec);
		rec = q;
	}
	out->recommended = rec;
	/* A window starts with the count it found (a new policy, a new
	 * deployment): what was asked for holds for a window before the
	 * autoscaler may take it lower, as a scale-down needs a window's
	 * evidence. */
	if (mem->n == 0)
		as_remember(mem, cur, now_ms, p->scale_down_window_s * 1000);
	as_remember(mem, rec, now_ms, p->scale_down_window_s * 1000);
	for (size_t i = 0; i < mem->n; i++)
		if (mem->recs[i] > wmax)
			wmax = mem->recs[i];

	out->desired = cur;
	if (rec > cur) {
		out->desired = rec;
		if (cur == 0 && s->waiting > 0)
			snprintf(out->reason, sizeof(out->reason),
				 "scaled 0 -> %lld: %.0f request%s waiting%s", rec, s->waiting,
				 s->waiting == 1 ? "" : "s", capped);
		else if (top && top->count >= rec)
			snprintf(out->reason, sizeof(out->reason), "scaled %lld -> %lld: %s > target %s%s",
				 cur, rec, top->what, top->target, capped);
		else
			snprintf(out->reason, sizeof(out->reason), "scaled %lld -> %lld: min_replicas %lld%s",
				 cur, rec, p->min_replicas, capped);
	} else if (rec < cur && idle && rec == 0) {
		out->desired = 0;
		snprintf(out->reason, sizeof(out->reason),
			 "scaled %lld -> 0: no request for %lld s (idle_s %lld)", cur,
			 (now_ms - mem->active_ms) / 1000, p->idle_s);
	} else if (rec < cur && wmax < cur) {
		out->desired = wmax > p->max_replicas ? p->max_replicas : wmax;
		if (out->desired >= cur) {
			out->desired = cur;
		} else if (cur > p->max_replicas) {
			snprintf(out->reason, sizeof(out->reason), "scaled %lld -> %lld: max_replicas %lld",
				 cur, out->desired, p->max_replicas);
		} else {
			snprintf(out->reason, sizeof(out->reason),
				 "scaled %lld -> %lld: the most the last %lld s needed (now %s, target %s)",
				 cur, out->desired, p->scale_down_window_s, top ? top->what : "no load",
				 top ? top->target : "-");
		}
	} else if (cur > p->max_replicas) {
		out->desired = p->max_replicas;
		snprintf(out->reason, sizeof(out->reason), "scaled %lld -> %lld: max_replicas %lld", cur,
			 out->desired, p->max_replicas);
	}
}

json_t *autoscale_memory_json(const struct autoscale_memory *m)
{
	json_t *at = json_array(), *recs = json_array();
	for (size_t i = 0; i < m->n; i++) {
		json_array_append_new(at, json_integer(m->at_ms[i]));
		json_array_append_new(recs, json_integer(m->recs[i]));
	}
	return json_pack("{s:o, s:o, s:I}", "at", at, "recs", recs, "active_ms",
			 (json_int_t)m->active_ms);
}

void autoscale_memory_from_json(struct autoscale_memory *out, const json_t *j)
{
	const json_t *at = json_object_get(j, "at"), *recs = json_object_get(j, "recs");
	memset(out, 0, sizeof(*out));
	if (!json_is_array(at) || !json_is_array(recs) || json_array_size(at) != json_array_size(recs) ||
	    json_array_size(at) > AUTOSCALE_HISTORY_MAX)
		return;
	for (size_t i = 0; i < json_array_size(at); i++) {
		const json_t *a = json_array_get(at, i), *r = json_array_get(recs, i);
		if (!json_is_integer(a) || !json_is_integer(r) || json_integer_value(r) < 0)
			return (void)memset(out, 0, sizeof(*out));
		out->at_ms[i] = json_integer_value(a);
		out->recs[i] = json_integer_value(r);
	}
	out->n = json_array_size(at);
	if (json_is_integer(json_object_get(j, "active_ms")))
		out->active_ms = json_integer_value(json_object_get(j, "active_ms"));
}
