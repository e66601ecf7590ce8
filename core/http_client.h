/* HTTP client wrapper over libcurl, for novactl, sidecars and adapters.
 *
 * One call = one request; the caller owns the response body. Transport
 * failures (refused, timeout, DNS) are NOVA_EUNAVAIL with curl's message;
 * an HTTP error status is NOT a failure of this call: the status is returned
 * and the caller decides. */
#ifndef NOVA_CORE_HTTP_CLIENT_H
#define NOVA_CORE_HTTP_CLIENT_H

#include <stddef.h>

#include "core/err.h"

struct http_client_request {
	const char *method;        /* "GET", "POST", "PATCH", "DELETE", ... */
	const char *url;
	const char *bearer_token;  /* optional: "Authorization: Bearer ..." */
	const char *content_type;  /* optional; default application/json when body */
	const char *body;          /* optional */
	size_t body_len;
	const char *const *headers; /* optional, NULL-terminated "Name: value" */
	long timeout_ms;           /* 0 means 30000 */
	/* TLS (adapters): all optional. */
	const char *ca_file;
	const char *client_cert_file;
	const char *client_key_file;
	int insecure_skip_verify;
};

struct http_client_response {
	long status;
	char *body;               /* NUL-terminated, malloc'd; may be "" */
	size_t body_len;
	char *content_type;       /* malloc'd or NULL */
	char *etag;               /* malloc'd or NULL */
};

int http_client_do(struct http_client_response *out, const struct http_client_request *req,
		   struct nova_err *err);
void http_client_response_finish(struct http_client_response *res);

/* Call once from main before threads start (curl_global_init). */
int http_client_global_init(struct nova_err *err);
void http_client_global_cleanup(void);

#endif
