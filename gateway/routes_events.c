/* GET /v1/events: node, deployment and pool events merged in time order.
 *
 * Each source is read through its owner (pools/ for node and pool events,
 * deployments/ for deployment events), and merged here. The cursor is the
 * last seq seen of each source ("NODE-DEPLOYMENT-POOL"), not a time: two
 * events in the same microsecond would make a time cursor skip or repeat
 * one. Rejected: one union view over the three tables, which would be a
 * view owned by neither module. A transition committed after a later one
 * was already read (two transactions racing) can fall behind the cursor;
 * the transactions that record them are short, and the per-object GETs
 * still show it. */
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "deployments/deployment.h"
#include "gateway/gw_int.h"
#include "pools/pool.h"

#define GW_EVENTS_LIMIT_DEFAULT 200
#define GW_EVENTS_LIMIT_MAX 1000

enum { GW_EV_NODE, GW_EV_DEPLOYMENT, GW_EV_POOL, GW_EV_SOURCES };
static const char *const gw_ev_source_names[GW_EV_SOURCES] = {"node", "deployment", "pool"};

static int gw_ev_source(const json_t *e)
{
	const char *s = json_string_value(json_object_get(e, "source"));
	for (int i = 0; s && i < GW_EV_SOURCES; i++)
		if (!strcmp(s, gw_ev_source_names[i]))
			return i;
	return GW_EV_POOL;
}

static int gw_ev_cmp(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t tx = json_integer_value(json_object_get(x, "at_us"));
	json_int_t ty = json_integer_value(json_object_get(y, "at_us"));
	if (tx != ty)
		return tx < ty ? -1 : 1;
	int sx = gw_ev_source(x), sy = gw_ev_source(y);
	if (sx != sy)
		return sx < sy ? -1 : 1;
	json_int_t qx = json_integer_value(json_object_get(x, "seq"));
	json_int_t qy = json_integer_value(json_object_get(y, "seq"));
	return qx < qy ? -1 : qx > qy;
}

/* "N-D-P": three non-negative integers. */
static int gw_ev_cursor_parse(long long after[GW_EV_SOURCES], const char *s, struct nova_err *err)
{
	const char *p = s;
	for (int i = 0; i < GW_EV_SOURCES; i++) {
		size_t n = strspn(p, "0123456789");
		if (n == 0 || n > 18 || (i + 1 < GW_EV_SOURCES ? p[n] != '-' : p[n] != '\0'))
			return nova_err_set(err, NOVA_EINVAL, "after",
					    "after must be a cursor from a previous answer (N-N-N)");
		after[i] = strtoll(p, NULL, 10);
		p += n + 1;
	}
	return 0;
}

void gw_events_list(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	const char *pool_ref = http_request_query(req, "pool");
	const char *dep_ref = http_request_query(req, "deployment");
	const char *node_ref = http_request_query(req, "node");
	const char *since = http_request_query(req, "since"), *after_s = http_request_query(req, "after");
	const char *limit_s = http_request_query(req, "limit");
	long long after[GW_EV_SOURCES] = {0}, since_s = 0;
	char pool_id[POOL_ID_LEN] = "", node_id[POOL_ID_LEN] = "";
	json_t *parts[2] = {NULL, NULL}, *out = NULL;
	json_t **all = NULL;
	struct pool *pool = NULL;
	struct nova_err err;
	int limit = GW_EVENTS_LIMIT_DEFAULT, rc = 0;
	(void)call;
	nova_err_clear(&err);
	if (since)
		rc = auth_rfc3339_parse(&since_s, since, "since", &err);
	if (!rc && after_s)
		rc = gw_ev_cursor_parse(after, after_s, &err);
	if (!rc && limit_s) {
		size_t n = strlen(limit_s);
		if (n == 0 || n > 4 || strspn(limit_s, "0123456789") != n || atoi(limit_s) < 1 ||
		    atoi(limit_s) > GW_EVENTS_LIMIT_MAX)
			rc = nova_err_set(&err, NOVA_EINVAL, "limit", "limit must be 1 to %d",
					  GW_EVENTS_LIMIT_MAX);
		else
			limit = atoi(limit_s);
	}
	if (!rc && pool_ref && (rc = pool_get(&pool, gw->deps.db, pool_ref, &err)) == 0)
		snprintf(pool_id, sizeof(pool_id), "%s", pool->id);
	pool_free(pool);
	if (!rc && node_ref)
		rc = pool_node_id(node_id, gw->deps.db, node_ref, &err);
	/* A newest-first page when no start is given: "what happened lately". */
	bool newest = !after_s && !since;
	if (!rc && !dep_ref) {
		struct pool_events_query q = {
			.pool_id = pool_id[0] ? pool_id : NULL, .node_id = node_id[0] ? node_id : NULL,
			.node_events = true, .pool_events = !node_ref, .since_s = since_s,
			.after_node = after[GW_EV_NODE], .after_pool = after[GW_EV_POOL],
			.newest = newest, .limit = limit,
		};
		rc = pool_events_read(&parts[0], gw->deps.db, &q, &err);
	}
	if (!rc && !node_ref) {
		struct deployment_events_query q = {
			.pool_id = pool_id[0] ? pool_id : NULL, .deployment = dep_ref,
			.since_s = since_s, .after = after[GW_EV_DEPLOYMENT], .newest = newest,
			.limit = limit,
		};
		rc = deployment_events_read(&parts[1], gw->deps.db, &q, &err);
	}
	if (rc)
		goto fail;
	size_t n = json_array_size(parts[0]) + json_array_size(parts[1]), k = 0, i;
	json_t *e;
	bool full[GW_EV_SOURCES] = {false};
	size_t per[GW_EV_SOURCES] = {0};
	if (!(all = calloc(n + 1, sizeof(*all))) || !(out = json_array())) {
		rc = nova_err_set(&err, NOVA_EINTERNAL, "", "out of memory");
		goto fail;
	}
	for (int p = 0; p < 2; p++)
		json_array_foreach(parts[p], i, e) {
			all[k++] = e;
			per[gw_ev_source(e)]++;
		}
	for (int s = 0; s < GW_EV_SOURCES; s++)
		full[s] = per[s] >= (size_t)limit;
	qsort(all, n, sizeof(*all), gw_ev_cmp);
	/* Newest: the last `limit` of the merge, and the cursor past all that
	 * was read (what was cut is older than what is shown). Else the first
	 * `limit`, and the cursor past what is shown only. */
	size_t from = newest && n > (size_t)limit ? n - (size_t)limit : 0;
	size_t to = !newest && n > (size_t)limit ? (size_t)limit : n;
	for (i = 0; i < n; i++) {
		int s = gw_ev_source(all[i]);
		long long seq = json_integer_value(json_object_get(all[i], "seq"));
		bool shown = i >= from && i < to;
		if ((shown || newest) && seq > after[s])
			after[s] = seq;
		if (shown) {
			json_object_del(all[i], "at_us");
			json_array_append(out, all[i]);
		}
	}
	bool more = !newest && (to < n || full[0] || full[1] || full[2]);
	char cursor[80];
	snprintf(cursor, sizeof(cursor), "%lld-%lld-%lld", after[GW_EV_NODE],
		 after[GW_EV_DEPLOYMENT], after[GW_EV_POOL]);
	json_t *body = json_pack("{s:o, s:s, s:b}", "events", out, "cursor", cursor, "more", more);
	out = NULL;
	if (!body) {
		rc = nova_err_set(&err, NOVA_EINTERNAL, "", "out of memory");
		goto fail;
	}
	http_response_json(res, 200, body);
	free(all);
	json_decref(parts[0]);
	json_decref(parts[1]);
	return;
fail:
	free(all);
	json_decref(out);
	json_decref(parts[0]);
	json_decref(parts[1]);
	http_response_error(res, &err);
}
