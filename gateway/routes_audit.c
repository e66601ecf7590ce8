#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "gateway/gw_int.h"

/* A query integer: digits only, at most 18 of them (no sign, no junk). */
static int gw_audit_int(long long *out, const char *v, const char *field, struct nova_err *err)
{
	size_t n = strlen(v);
	if (n == 0 || n > 18 || strspn(v, "0123456789") != n)
		return nova_err_set(err, NOVA_EINVAL, field, "%s must be a positive integer", field);
	*out = strtoll(v, NULL, 10);
	return 0;
}

void gw_audit_list(struct gw *gw, struct gw_call *call, struct http_request *req,
		   struct http_response *res)
{
	struct audit_filter f = {
		.key = http_request_query(req, "key"),
		.object = http_request_query(req, "object"),
		.kind = http_request_query(req, "kind"),
	};
	const char *since = http_request_query(req, "since"), *until = http_request_query(req, "until");
	const char *before = http_request_query(req, "before"), *limit = http_request_query(req, "limit");
	struct nova_err err;
	json_t *out = NULL;
	(void)call;
	nova_err_clear(&err);
	int rc = 0;
	if (since)
		rc = auth_rfc3339_parse(&f.since_s, since, "since", &err);
	if (!rc && until)
		rc = auth_rfc3339_parse(&f.until_s, until, "until", &err);
	if (!rc && before)
		rc = gw_audit_int(&f.before, before, "before", &err);
	if (!rc && limit)
		rc = gw_audit_int(&f.limit, limit, "limit", &err);
	if (!rc && limit && f.limit == 0)
		rc = nova_err_set(&err, NOVA_EINVAL, "limit", "limit must be 1 to %d", AUDIT_LIST_MAX);
	if (!rc)
		rc = audit_list(&out, gw->deps.db, &f, &err);
	if (rc)
		http_response_error(res, &err);
	else
		http_response_json(res, 200, out);
}
