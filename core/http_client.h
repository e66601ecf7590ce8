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
	/* TLS (adapters): all optional. A PEM text (kubeconfig's inline
	 * *-data fields, decoded) is used from memory, never written to disk;
	 * the file form wins when both are given. */
	const char *ca_file;
	const char *ca_pem;
	const char *client_cert_file;
	const char *client_cert_pem;
	const char *client_key_file;
	const char *client_key_pem;
	int insecure_skip_verify;
	/* http_client_stream only, optional: when *cancel becomes non-zero
	 * the stream ends (within about a second, even while the server is
	 * silent) and the call returns 0, as when on_data stops it. */
	const _Atomic int *cancel;
	/* http_client_stream only: no 60 s silence limit (a log followed
	 * with -f may stay quiet for hours; the stream ends when the server
	 * ends it or the caller cancels). */
	int no_idle_limit;
	/* http_client_stream only, optional: called once with the HTTP
	 * status before the body's first byte reaches on_data (with on_data's
	 * ctx), so a proxy can answer with it before any body arrives (a body
	 * may not come for a long time, or at all). */
	void (*on_status)(void *ctx, long status);
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

/* Stream a response body (an event stream) to on_data as it arrives; a
 * non-zero return from on_data stops it. With timeout_ms 0 there is no
 * overall timeout, but a server silent for 60 s is taken as gone (event
 * streams send keep-alives) unless no_idle_limit. *status gets the HTTP status; an error status
 * still streams its body (the error JSON). */
int http_client_stream(long *status, const struct http_client_request *req,
		       int (*on_data)(void *ctx, const char *data, size_t len), void *ctx,
		       struct nova_err *err);

/* Whether url is a base URL a program can be pointed at: http or https, a
 * host, an optional port; no user or password, query or fragment, nothing
 * but a path after the authority; at most 255 characters. Parsed by
 * libcurl's URL API (the parser that will send requests to it). NOVA_EINVAL
 * naming field, never quoting the URL (it might carry a password). */
int http_url_check(const char *url, const char *field, struct nova_err *err);

/* Call once from main before threads start (curl_global_init). */
int http_client_global_init(struct nova_err *err);
void http_client_global_cleanup(void);

#endif
