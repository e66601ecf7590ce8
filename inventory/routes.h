/* The routing table: model (and LoRA adapter) -> healthy, ready replica
 * endpoints with load hints, for inference gateways.
 *
 * A snapshot is rebuilt from the database (a replica is routable when it is
 * ready, has an endpoint, its deployment is not stopping, and every node of
 * its gang is ready) whenever a refresh finds it changed. Every model (and
 * static LoRA adapter) with a deployment that is not stopping or stopped
 * has a route, with "endpoints": [] when none of its replicas is routable
 * (scaled to zero, or all failed): routers know it and hold its requests
 * (router/router.h) instead of answering 404; a model whose deployments
 * are all stopped has none. The table carries a
 * version, the event stream's position (events/events.h) read in the same
 * snapshot when it last changed, which means the same on every novad, and
 * a weak ETag, W/"<hash>", of the routes alone: not of the version nor of
 * the load hints (each node's newest replica report, which every novad
 * reads from the others a flush or two late: inventory.h, shared load), so
 * every novad gives one table one ETag, and answers 304 to another's.
 * Changes are kept as events (the models whose endpoints changed, with
 * their new routes, each with its position as the SSE id) in a ring of the
 * last INVENTORY_ROUTES_HISTORY changes, for watchers; one that reconnects
 * with Last-Event-ID, here or on another novad, goes on from there
 * (inventory_routes_resume).
 *
 * Reads never touch the database: they serve the last table read, so a
 * database that is away leaves the table as it was (never empty because a
 * query failed). Before the first successful read there is no table, and
 * a read is NOVA_EUNAVAIL rather than an empty one. A table not refreshed
 * for INVENTORY_ROUTES_STALE_MS says so in its body ("stale": true and
 * "age_ms").
 *
 * Rollouts (deployments/deployment.h): each endpoint carries "version",
 * the model version its replica runs (two during a rollout), and a route
 * whose deployment runs a canary carries "split": {version: percent},
 * the share of the model's traffic each version takes (nova-router picks
 * a version by it first). A draining replica (stopping) is not routable.
 *
 * LoRA: a model's adapters get routes of their own, keyed "model/adapter",
 * with the model's endpoints: a lora_static model's, and those a
 * lora_dynamic model lists ("dynamic": true). With the load hints (never
 * in the watch's events nor the ETag), the endpoints of the model's own
 * route carry "adapters_loaded", the adapters the replica's engine last
 * reported loaded, and those of a dynamic adapter's route
 * "adapter_loaded", whether it has that one. */
#ifndef NOVA_INVENTORY_ROUTES_H
#define NOVA_INVENTORY_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "core/db.h"
#include "core/err.h"
#include "core/notify.h"
#include "inventory/inventory.h"

#define INVENTORY_ROUTES_HISTORY 256
#define INVENTORY_ROUTES_ETAG_LEN 40
#define INVENTORY_ROUTES_STALE_MS 5000

struct inventory_routes;

/* inv (may be NULL) supplies load hints. wake: what the background thread
 * sleeps on (the runtime's, owned by the caller and outliving the table;
 * see inventory_routes_refresh_soon); required by inventory_routes_start,
 * NULL when the thread is never started (tests). */
int inventory_routes_create(struct inventory_routes **out, struct db_pool *db,
			    struct inventory *inv, struct notify *wake, struct nova_err *err);
void inventory_routes_destroy(struct inventory_routes *r);

/* Rebuild from the database; *changed (may be NULL) says whether the
 * endpoints changed (a new version and event). */
int inventory_routes_refresh(bool *changed, struct inventory_routes *r, struct nova_err *err);

/* The table's position in the event stream (events/events.h) where it last
 * changed: the body's "version" and the watch's event ids, which mean the
 * same on every novad. */
long long inventory_routes_version(struct inventory_routes *r);

/* The table, or one model's (or adapter's) routes when model is not NULL:
 * JSON text (caller frees) and its ETag. An unknown model is NOVA_ENOTFOUND.
 * The whole table is rendered once and kept until its version or the load
 * hints change; while heartbeats keep changing the hints, the kept copy
 * serves reads for up to 250 ms (the table's own refresh period). */
int inventory_routes_get(char **text, char etag[INVENTORY_ROUTES_ETAG_LEN],
			 struct inventory_routes *r, const char *model, struct nova_err *err);

/* The whole table's current ETag without rendering it; false before the
 * first read. For answering If-None-Match with 304 at the cost of a string
 * compare. */
bool inventory_routes_etag(char etag[INVENTORY_ROUTES_ETAG_LEN], struct inventory_routes *r);

/* How many routes (models and adapters) and endpoints the table holds (0
 * before the first read). A walk of the routes under the lock. */
void inventory_routes_size(size_t *routes, size_t *endpoints, struct inventory_routes *r);

/* How long ago the table was last read from the database (ms); -1 when it
 * never was. *error (may be NULL; size 160) receives the last refresh's
 * error, "" when it worked. */
long long inventory_routes_age_ms(struct inventory_routes *r, char *error);

/* For a watcher that resumes from Last-Event-ID `position` (a position of
 * the event stream, as every novad's events carry): *seen receives the
 * cursor to go on with (inventory_routes_next_event's), and the result is
 * what to send first, if anything. A position this process read (the
 * current table's, or a change its ring keeps) needs nothing first. One it
 * never read gets an update with the routes, as they are now, of the
 * models the stream's events since then touched (each model's key and its
 * adapters' keys, null for those that are gone; "resumed_from" says from
 * where), or nothing when they touched none: at least once, never a
 * change missed, and a route already current sent again is harmless. A
 * position past the events kept gets a snapshot with "expired": true; one
 * past this process's head is read for first (the table refreshed once);
 * when the database does not answer, *seen is -1: a snapshot. Reads the
 * database without holding the table's lock. */
char *inventory_routes_resume(struct inventory_routes *r, long long position, long long *seen);

/* For a watcher that has seen version `seen`: the next event as SSE text
 * ("id: V\\nevent: update\\ndata: {...}\\n\\n"), or a snapshot event when
 * `seen` is -1 or too old; NULL when there is nothing newer. *next_seen
 * receives the version the text brings the watcher to. */
char *inventory_routes_next_event(struct inventory_routes *r, long long seen,
				  long long *next_seen);

/* A background thread: refresh at once and then every refresh_ms, and call
 * on_change(ctx) when the table changed, when it turned stale, and every
 * keepalive_ms in any case, the database up or not (watch streams use it to
 * send keep-alives, to say the table is stale, and to notice clients that
 * left). */
int inventory_routes_start(struct inventory_routes *r, unsigned refresh_ms, unsigned keepalive_ms,
			   void (*on_change)(void *ctx), void *ctx, struct nova_err *err);
void inventory_routes_stop(struct inventory_routes *r);
/* Ask the background thread to refresh now rather than at the end of its
 * period (the health sweep calls it when it took nodes out): signals wake.
 * Accepts NULL. */
void inventory_routes_refresh_soon(struct inventory_routes *r);

#endif
