/* GET /metrics: Prometheus text exposition (format 0.0.4) of what novad
 * can tell about its own health without the database: whether its writes
 * reach the database, the heartbeats it holds, the brake on mass failure,
 * the routing table's age, and the HTTP connection limits at work
 * (connections open, timed out, shed; watch streams). Everything here is read from memory, so a
 * scrape during a database outage answers, and says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/textbuf.h"
#include "gateway/gw_int.h"
#include "inventory/inventory.h"
#include "inventory/routes.h"

/* One metric's HELP and TYPE lines. */
static void gw_metric_head(struct textbuf *t, const char *name, const char *type, const char *help)
{
	textbuf_addf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric of one unlabelled sample: HELP, TYPE, then "name value". */
static void gw_metric(struct textbuf *t, const char *name, const char *type, const char *help,
		      double value)
{
	gw_metric_head(t, name, type, help);
	textbuf_addf(t, "%s %.15g\n", name, value);
}

/* Milliseconds as seconds, -1 kept as "never". */
static double gw_seconds(long long ms)
{
	return ms < 0 ? -1.0 : (double)ms / 1000.0;
}

/* A label value with \, " and newline escaped, as the format asks. */
static void gw_label_value(char *out, size_t len, const char *v)
{
	size_t o = 0;
	for (; v && *v && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			out[o++] = '\\';
			out[o++] = *v == '\n' ? 'n' : *v;
		} else {
			out[o++] = *v;
		}
	}
	out[o] = '\0';
}

void gw_metrics_get(struct gw *gw, struct gw_call *call, struct http_request *req,
		    struct http_response *res)
{
	struct inventory_status st;
	struct textbuf t = {0};
	(void)call, (void)req;
	inventory_status_get(&st, gw->deps.inventory);
	long long routes_age = inventory_routes_age_ms(gw->deps.routes, NULL);

	gw_metric(&t, "nova_database_up", "gauge",
		  "Whether this novad's last write of heartbeats reached the database.",
		  st.database_ok ? 1 : 0);
	gw_metric(&t, "nova_inventory_flush_age_seconds", "gauge",
		  "Seconds since this novad last wrote heartbeats to the database (-1: never).",
		  gw_seconds(st.flush_age_ms));
	gw_metric(&t, "nova_inventory_nodes", "gauge",
		  "Nodes whose heartbeats this novad can check from memory.", (double)st.nodes_known);
	gw_metric(&t, "nova_inventory_heartbeats_pending", "gauge",
		  "Nodes with a heartbeat taken and not yet written to the database.",
		  (double)st.nodes_pending);
	gw_metric(&t, "nova_inventory_heartbeats_from_memory_total", "counter",
		  "Heartbeats taken on a cached node token because the database was away.",
		  (double)st.heartbeats_from_memory);
	gw_metric(&t, "nova_inventory_brake_engagements_total", "counter",
		  "Times the brake on mass failure engaged on a pool (this novad's sweeps).",
		  (double)st.brake_engagements);
	gw_metric_head(&t, "nova_inventory_brake_engaged", "gauge",
		       "Pools whose nodes' states the brake on mass failure holds, as of this novad's "
		       "last sweep.");
	json_t *brakes = inventory_brakes(gw->deps.inventory);
	size_t i;
	json_t *b;
	json_array_foreach(brakes, i, b) {
		char pool[512];
		gw_label_value(pool, sizeof(pool), json_string_value(json_object_get(b, "pool")));
		textbuf_addf(&t, "nova_inventory_brake_engaged{pool=\"%s\"} 1\n", pool);
	}
	json_decref(brakes);
	gw_metric(&t, "nova_routes_age_seconds", "gauge",
		  "Seconds since the routing table was last read from the database (-1: never).",
		  gw_seconds(routes_age));
	gw_metric(&t, "nova_routes_version", "gauge", "The routing table's version in this novad.",
		  (double)inventory_routes_version(gw->deps.routes));
	gw_metric(&t, "nova_routes_watchers", "gauge", "Route watch streams open on this novad.",
		  (double)gw_watchers_open(gw));
	struct http_server_stats hs;
	http_server_stats(&hs, gw->srv);
	gw_metric(&t, "nova_http_connections", "gauge", "HTTP connections open on this novad.",
		  (double)hs.open);
	gw_metric(&t, "nova_http_connections_timed_out_total", "counter",
		  "HTTP connections closed because a request's headers or body missed its deadline.",
		  (double)hs.timed_out);
	gw_metric(&t, "nova_http_connections_shed_total", "counter",
		  "Idle HTTP connections closed to keep room for new ones at the connection cap.",
		  (double)hs.shed);
	if (t.failed) {
		textbuf_finish(&t);
		http_response_errorf(res, NOVA_EINTERNAL, "", "out of memory");
		return;
	}
	http_response_text(res, 200, "text/plain; version=0.0.4; charset=utf-8", t.p);
	textbuf_finish(&t);
}
