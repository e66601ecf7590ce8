#include "core/http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <stdio.h>
#include <strings.h>

#include "core/textbuf.h"

int http_client_global_init(struct nova_err *err)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return nova_err_set(err, NOVA_EINTERNAL, "", "curl_global_init failed");
	return 0;
}

void http_client_global_cleanup(void)
{
	curl_global_cleanup();
}

static size_t http_client_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct textbuf *b = userdata;
	size_t n = size * nmemb;
	textbuf_add(b, ptr, n);
	return b->failed ? 0 : n;
}

static char *http_client_header_value(const char *line, size_t n, const char *name)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	const char *v = line + nl + 1;
	const char *end = line + n;
	while (v < end && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	return strndup(v, (size_t)(end - v));
}

static size_t http_client_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct http_client_response *res = userdata;
	size_t n = size * nitems;
	char *v;
	if ((v = http_client_header_value(buf, n, "Content-Type"))) {
		free(res->content_type);
		res->content_type = v;
	} else if ((v = http_client_header_value(buf, n, "ETag"))) {
		free(res->etag);
		res->etag = v;
	}
	return n;
}

/* One TLS credential: the file when given, else the PEM text from memory
 * (curl copies the blob). */
static void http_client_tls_part(CURL *curl, const char *file, CURLoption file_opt, const char *pem,
				 CURLoption blob_opt, CURLoption type_opt)
{
	if (file) {
		curl_easy_setopt(curl, file_opt, file);
	} else if (pem) {
		struct curl_blob b = {(void *)pem, strlen(pem), CURL_BLOB_COPY};
		curl_easy_setopt(curl, blob_opt, &b);
		if (type_opt)
			curl_easy_setopt(curl, type_opt, "PEM");
	}
}

/* TLS options of a request: CA, client certificate and key, from files or
 * from memory, and verification off only on request. */
static void http_client_tls(CURL *curl, const struct http_client_request *req)
{
	http_client_tls_part(curl, req->ca_file, CURLOPT_CAINFO, req->ca_pem, CURLOPT_CAINFO_BLOB, 0);
	http_client_tls_part(curl, req->client_cert_file, CURLOPT_SSLCERT, req->client_cert_pem,
			     CURLOPT_SSLCERT_BLOB, CURLOPT_SSLCERTTYPE);
	http_client_tls_part(curl, req->client_key_file, CURLOPT_SSLKEY, req->client_key_pem,
			     CURLOPT_SSLKEY_BLOB, CURLOPT_SSLKEYTYPE);
	if (req->insecure_skip_verify) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

int http_client_do(struct http_client_response *out, const struct http_client_request *req,
		   struct nova_err *err)
{
	CURL *curl;
	struct curl_slist *headers = NULL;
	struct textbuf body = {0};
	char errbuf[CURL_ERROR_SIZE] = "", ctype[160];
	char *auth = NULL;
	CURLcode cc;
	int rc = 0;
	memset(out, 0, sizeof(*out));
	if (!(curl = curl_easy_init()))
		return nova_err_set(err, NOVA_EINTERNAL, "", "curl_easy_init failed");
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method ? req->method : "GET");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 30000L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_client_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, http_client_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (req->method && strcmp(req->method, "HEAD") == 0)
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	if (req->bearer_token) {
		/* Sized to the token: Kubernetes service-account JWTs run past 1 KiB,
		 * and a truncated token is a 401 nobody can explain. */
		if (asprintf(&auth, "Authorization: Bearer %s", req->bearer_token) < 0) {
			auth = NULL;
			curl_easy_cleanup(curl);
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		}
		headers = curl_slist_append(headers, auth);
	}
	if (req->body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		snprintf(ctype, sizeof(ctype), "Content-Type: %s",
			 req->content_type ? req->content_type : "application/json");
		headers = curl_slist_append(headers, ctype);
	}
	for (const char *const *h = req->headers; h && *h; h++)
		headers = curl_slist_append(headers, *h);
	/* curl's own "Expect: 100-continue" stays on: curl 7.88 sends it only
	 * for bodies over 1 MiB, the server's default cap, so an upload over
	 * the cap is refused with a 413 before it is sent. Turned off, the body
	 * goes out at once, the server answers 413 and closes, and the unread
	 * upload turns into a reset that may reach curl before the 413 does. */
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	http_client_tls(curl, req);
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		/* curl's text names the host and the reason, never the query. */
		rc = nova_err_set(err, body.failed ? NOVA_EINTERNAL : NOVA_EUNAVAIL, "", "%s",
				  errbuf[0] ? errbuf : curl_easy_strerror(cc));
		textbuf_finish(&body);
		free(out->content_type);
		free(out->etag);
		memset(out, 0, sizeof(*out));
	} else {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
		out->body = body.p ? body.p : strdup("");
		out->body_len = body.len;
		if (!out->body)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
		/* curl_slist_append kept its own copy of the token. */
		for (struct curl_slist *h = headers; h; h = h->next)
			explicit_bzero(h->data, strlen(h->data));
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return rc;
}

void http_client_response_finish(struct http_client_response *res)
{
	if (!res)
		return;
	free(res->body);
	free(res->content_type);
	free(res->etag);
	memset(res, 0, sizeof(*res));
}

struct http_stream_sink {
	int (*on_data)(void *ctx, const char *data, size_t len);
	void *ctx;
	bool stopped;
	const _Atomic int *cancel;
	void (*on_status)(void *ctx, long status);
	CURL *curl;
};

/* Called by curl about once a second even when nothing arrives. */
static int http_client_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
				curl_off_t ultotal, curl_off_t ulnow)
{
	struct http_stream_sink *s = userdata;
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	if (s->cancel && *s->cancel) {
		s->stopped = true;
		return 1;
	}
	return 0;
}

static size_t http_client_stream_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_stream_sink *s = userdata;
	size_t n = size * nmemb;
	if (s->on_status) {
		long status = 0;
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
		s->on_status(s->ctx, status);
		s->on_status = NULL;
	}
	if (s->on_data(s->ctx, ptr, n) != 0) {
		s->stopped = true;
		return 0; /* curl stops with a write error, which is ours */
	}
	return n;
}

int http_client_stream(long *status, const struct http_client_request *req,
		       int (*on_data)(void *ctx, const char *data, size_t len), void *ctx,
		       struct nova_err *err)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	struct http_stream_sink sink = {on_data, ctx, false, NULL, req->on_status, curl};
	char errbuf[CURL_ERROR_SIZE] = "";
	char *auth = NULL;
	int rc = 0;
	*status = 0;
	if (!curl)
		return nova_err_set(err, NOVA_EINTERNAL, "", "curl_easy_init failed");
	if (req->bearer_token && asprintf(&auth, "Authorization: Bearer %s", req->bearer_token) >= 0)
		headers = curl_slist_append(headers, auth);
	for (const char *const *h = req->headers; h && *h; h++)
		headers = curl_slist_append(headers, *h);
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 0L);
	if (!req->no_idle_limit) {
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_client_stream_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	http_client_tls(curl, req);
	if (req->cancel) {
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, http_client_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &sink);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		sink.cancel = req->cancel;
	}
	CURLcode cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
	if (cc != CURLE_OK && !sink.stopped)
		rc = nova_err_set(err, NOVA_EUNAVAIL, "", "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
		for (struct curl_slist *h = headers; h; h = h->next)
			explicit_bzero(h->data, strlen(h->data));
	}
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	return rc;
}

int http_url_check(const char *url, const char *field, struct nova_err *err)
{
	static const CURLUPart refused[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS,
					    CURLUPART_QUERY, CURLUPART_FRAGMENT};
	char *scheme = NULL, *host = NULL, *part = NULL;
	const char *why = NULL;
	CURLU *u;
	if (!url || !*url || strlen(url) > 255)
		return nova_err_set(err, NOVA_EINVAL, field, "%s must be an http(s) URL of at most "
				    "255 characters", field);
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return nova_err_set(err, NOVA_EINVAL, field, "%s must not contain spaces, "
					    "control or non-ASCII characters", field);
	if (!(u = curl_url()))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		why = "is not a URL";
	else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		 (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		why = "must use http or https";
	else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
		why = "needs a host";
	for (size_t i = 0; !why && i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (curl_url_get(u, refused[i], &part, 0) == CURLUE_OK)
			why = refused[i] == CURLUPART_QUERY || refused[i] == CURLUPART_FRAGMENT
				      ? "must not carry a query or fragment"
				      : "must not carry a user or password";
		curl_free(part);
		part = NULL;
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	if (why)
		return nova_err_set(err, NOVA_EINVAL, field, "%s %s", field, why);
	return 0;
}
