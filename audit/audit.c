#include "audit/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ids.h"
#include "core/log.h"

#define AUDIT_INSERT                                                                        \
	"INSERT INTO audit_events (actor, api_key_id, api_key_name, method, route, kind, "  \
	"object, object_id, status, error_code, request_id) VALUES ($1, $2::uuid, $3, $4, " \
	"$5, $6, $7, $8::uuid, $9::integer, $10, $11)"

/* The note's object as the column can hold it: at most AUDIT_OBJECT_MAX
 * bytes, cut on a character boundary, with each byte that is not part of
 * valid UTF-8, and each control character, written as '?'. A path
 * parameter is whatever the client sent (percent-decoded): the refused
 * request's row must still be writable, and a log reader's terminal safe. */
static void audit_object(char *buf, size_t len, const char *object)
{
	const unsigned char *p = (const unsigned char *)(object ? object : "");
	size_t o = 0;
	while (*p && o + 1 < len) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
				       : (*p & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = n > 0 && !(n == 2 && *p < 0xc2) && !(n == 4 && *p > 0xf4);
		for (size_t i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		/* No overlong three- and four-byte forms, no surrogates, nothing
		 * past U+10FFFF. */
		if (ok && n == 3)
			ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
		if (ok && n == 4)
			ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
		if (!ok || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
			buf[o++] = '?';
			p++;
			continue;
		}
		if (o + n >= len)
			break; /* the cut falls inside this character */
		memcpy(buf + o, p, n);
		o += n;
		p += n;
	}
	buf[o] = '\0';
}

static void audit_params(const char *params[11], char *status, char *object,
			 const struct audit_note *n, const char *object_id, int code,
			 const char *error_code)
{
	snprintf(status, 8, "%d", code);
	audit_object(object, AUDIT_OBJECT_MAX + 1, n->object);
	bool key = n->key_id && *n->key_id;
	params[0] = key ? "apikey" : "admin";
	params[1] = key ? n->key_id : NULL;
	params[2] = key && n->key_name ? n->key_name : "";
	params[3] = n->method;
	params[4] = n->route;
	params[5] = n->kind;
	params[6] = object;
	params[7] = object_id && ids_is_uuid(object_id) ? object_id : NULL;
	params[8] = status;
	params[9] = error_code ? error_code : "";
	params[10] = n->request_id;
}

int audit_record_tx(struct db_conn *c, struct audit_note *note, const char *object_id,
		    struct nova_err *err)
{
	const char *params[11];
	char status[8], object[AUDIT_OBJECT_MAX + 1];
	if (!note || note->written)
		return 0;
	audit_params(params, status, object, note, object_id, note->status, "");
	int rc = db_exec(NULL, c, AUDIT_INSERT, 11, params, err);
	if (rc == 0)
		note->written = true;
	return rc;
}

int audit_record_alone(struct db_pool *db, struct audit_note *note, int status,
			 const char *error_code, struct nova_err *err)
{
	const char *params[11];
	char code[8], object[AUDIT_OBJECT_MAX + 1];
	if (!note || note->written)
		return 0;
	audit_params(params, code, object, note, NULL, status, error_code);
	int rc = db_pool_exec(NULL, db, AUDIT_INSERT, 11, params, err);
	if (rc == 0)
		note->written = true;
	return rc;
}

static json_t *audit_str_or_null(const char *s)
{
	return *s ? json_string(s) : json_null();
}

int audit_list(json_t **out, struct db_pool *db, const struct audit_filter *f,
	       struct nova_err *err)
{
	char since[24], until[24], before[24], limit[24];
	const char *params[9];
	PGresult *res = NULL;
	long long lim = f->limit ? f->limit : AUDIT_LIST_DEFAULT;
	*out = NULL;
	if (lim < 1 || lim > AUDIT_LIST_MAX)
		return nova_err_set(err, NOVA_EINVAL, "limit", "limit must be 1 to %d",
				    AUDIT_LIST_MAX);
	if (f->before < 0)
		return nova_err_set(err, NOVA_EINVAL, "before", "before must be an event id");
	snprintf(since, sizeof(since), "%lld", f->since_s);
	snprintf(until, sizeof(until), "%lld", f->until_s);
	snprintf(before, sizeof(before), "%lld", f->before);
	snprintf(limit, sizeof(limit), "%lld", lim + 1); /* one more: is there a next page? */
	params[0] = f->since_s ? since : NULL;
	params[1] = f->until_s ? until : NULL;
	params[2] = f->key && *f->key ? f->key : NULL;
	params[3] = f->object && *f->object ? f->object : NULL;
	params[4] = f->kind && *f->kind ? f->kind : NULL;
	params[5] = f->before ? before : NULL;
	params[6] = limit;
	/* An id is compared as a uuid (the indexes serve it), a name as text:
	 * a name is never cast to a uuid, so it cannot fail as one. */
	params[7] = params[2] && ids_is_uuid(params[2]) ? params[2] : NULL;
	params[8] = params[3] && ids_is_uuid(params[3]) ? params[3] : NULL;
	int rc = db_pool_exec(
		&res, db,
		"SELECT id, " DB_TS("at") ", actor, coalesce(api_key_id::text, ''), api_key_name, "
		"method, route, kind, object, coalesce(object_id::text, ''), status, error_code, "
		"request_id FROM audit_events WHERE "
		"($1::bigint IS NULL OR at >= to_timestamp($1::bigint)) AND "
		"($2::bigint IS NULL OR at < to_timestamp($2::bigint)) AND "
		"($3::text IS NULL OR ($3 = 'admin' AND actor = 'admin') OR api_key_id = $8::uuid "
		"OR (actor = 'apikey' AND api_key_name = $3)) AND "
		"($4::text IS NULL OR object = $4 OR object_id = $9::uuid) AND "
		"($5::text IS NULL OR kind = $5) AND "
		"($6::bigint IS NULL OR id < $6::bigint) "
		"ORDER BY id DESC LIMIT $7::bigint",
		9, params, err);
	if (rc)
		return rc;
	json_t *events = json_array(), *o = json_object();
	int n = PQntuples(res);
	int shown = n > lim ? (int)lim : n;
	for (int r = 0; r < shown && events; r++) {
		json_t *e = json_object();
		json_object_set_new(e, "id", json_integer(strtoll(PQgetvalue(res, r, 0), NULL, 10)));
		json_object_set_new(e, "at", json_string(PQgetvalue(res, r, 1)));
		json_object_set_new(e, "actor", json_string(PQgetvalue(res, r, 2)));
		json_object_set_new(e, "api_key_id", audit_str_or_null(PQgetvalue(res, r, 3)));
		json_object_set_new(e, "api_key_name", audit_str_or_null(PQgetvalue(res, r, 4)));
		json_object_set_new(e, "method", json_string(PQgetvalue(res, r, 5)));
		json_object_set_new(e, "route", json_string(PQgetvalue(res, r, 6)));
		json_object_set_new(e, "kind", json_string(PQgetvalue(res, r, 7)));
		json_object_set_new(e, "object", json_string(PQgetvalue(res, r, 8)));
		json_object_set_new(e, "object_id", audit_str_or_null(PQgetvalue(res, r, 9)));
		json_object_set_new(e, "status", json_integer(atoi(PQgetvalue(res, r, 10))));
		json_object_set_new(e, "error_code", audit_str_or_null(PQgetvalue(res, r, 11)));
		json_object_set_new(e, "request_id", json_string(PQgetvalue(res, r, 12)));
		json_array_append_new(events, e);
	}
	json_t *next = n > lim ? json_integer(strtoll(PQgetvalue(res, shown - 1, 0), NULL, 10))
			       : json_null();
	PQclear(res);
	if (!events || !o) {
		json_decref(events);
		json_decref(o);
		json_decref(next);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	json_object_set_new(o, "events", events);
	json_object_set_new(o, "next_before", next);
	*out = o;
	return 0;
}

int audit_prune(struct db_pool *db, unsigned retention_days, long long *removed,
		struct nova_err *err)
{
	char days[16];
	const char *params[1] = {days};
	PGresult *res = NULL;
	if (removed)
		*removed = 0;
	if (retention_days == 0)
		return 0;
	snprintf(days, sizeof(days), "%u", retention_days);
	int rc = db_pool_exec(&res, db,
			      "WITH gone AS (DELETE FROM audit_events "
			      "WHERE at < now() - make_interval(days => $1::integer) RETURNING 1) "
			      "SELECT count(*) FROM gone",
			      1, params, err);
	if (rc == 0) {
		long long n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		if (removed)
			*removed = n;
		if (n > 0) {
			char text[24];
			snprintf(text, sizeof(text), "%lld", n);
			nova_log_kv(NOVA_LOG_INFO, "audit", "old audit events removed", "rows", text,
				    "retention_days", days, NULL);
		}
	}
	PQclear(res);
	return rc;
}
