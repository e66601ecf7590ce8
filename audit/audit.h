/* The audit trail: one row per mutating API request (who, what, when,
 * with what result, in which request), in the table audit_events
 * (sql/0011), which this module alone writes and reads.
 *
 * The gateway fills a note for each mutating request and hands it to the
 * module making the change (pools, models, deployments, auth), which
 * writes it with audit_record_tx in the change's own transaction: a
 * change never commits without its row, and a change rolled back leaves
 * none. When the request ends without the note written (refused: bad
 * input, a missing scope, not found, a conflict, the database away), the
 * gateway writes it on its own with audit_record_alone. Requests without
 * a credential (401) are not recorded: rejected, recording them, because
 * anyone could then fill the table without a key; they are in the access
 * log. Node heartbeats and routers' demand reports are telemetry, not
 * changes, and are not recorded.
 *
 * Never a secret here: the actor is an API key's id and name (never the
 * key, its prefix or hash), the object is what the request named, and no
 * body is kept. */
#ifndef NOVA_AUDIT_AUDIT_H
#define NOVA_AUDIT_AUDIT_H

#include <jansson.h>
#include <stdbool.h>

#include "core/db.h"
#include "core/err.h"

#define AUDIT_OBJECT_MAX 300
#define AUDIT_LIST_DEFAULT 100
#define AUDIT_LIST_MAX 1000
#define AUDIT_DEFAULT_RETENTION_DAYS 90u

/* One request as the trail records it. Strings are borrowed for the
 * request's life. */
struct audit_note {
	const char *actor;      /* "admin" or "apikey" */
	const char *key_id;     /* the API key's id; NULL for admin */
	const char *key_name;   /* the API key's name; NULL for admin */
	const char *method;     /* "POST" */
	const char *route;      /* the route template, "/v1/pools/{pool}" */
	const char *kind;       /* what it changes: "pool", "node", "model", ... */
	const char *object;     /* as the request named it (path or body name); "" */
	const char *request_id; /* core/http's id of the request */
	int status;             /* the answer when the change commits */
	bool written;           /* set once a row is written for it */
};

/* Record note in the change's own transaction on c (inside BEGIN), with
 * the id the change resolved or created (object_id, a uuid; NULL when it
 * has none). A NULL note (a change made by novad itself, or a test) writes
 * nothing. Failing fails the change: the caller rolls back. */
int audit_record_tx(struct db_conn *c, struct audit_note *note, const char *object_id,
		    struct nova_err *err);

/* Record a request on its own, with the status answered and, for a
 * refused one, the error's code name ("invalid", "forbidden", ...).
 * Nothing when the note was already written. */
int audit_record_alone(struct db_pool *db, struct audit_note *note, int status,
			 const char *error_code, struct nova_err *err);

/* What GET /v1/audit asks for; NULL or 0 fields do not filter. */
struct audit_filter {
	long long since_s;  /* seconds since the epoch: at or after; 0: none */
	long long until_s;  /* seconds since the epoch: before; 0: none */
	const char *key;    /* an API key's id or name, or "admin" */
	const char *object; /* an object's name as requested, or its id */
	const char *kind;   /* "pool", ... */
	long long before;   /* only rows with a smaller id (paging) */
	long long limit;    /* 1..AUDIT_LIST_MAX; 0: AUDIT_LIST_DEFAULT */
};

/* {"events": [...newest first...], "next_before": id or null}; each
 * event {id, at, actor, api_key_id, api_key_name, method, route, kind,
 * object, object_id, status, error_code, request_id}. A bad limit or
 * before is NOVA_EINVAL naming it. */
int audit_list(json_t **out, struct db_pool *db, const struct audit_filter *f,
	       struct nova_err *err);

/* Forget rows older than retention_days (0: keep everything); *removed
 * (may be NULL) says how many. */
int audit_prune(struct db_pool *db, unsigned retention_days, long long *removed,
		struct nova_err *err);

#endif
