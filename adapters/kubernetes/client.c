#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/kubernetes/kube.h"
#include "core/http_client.h"

struct kube_client {
	struct kube_config *cfg; /* a copy, owned: freed (secrets wiped) with the client */
	unsigned timeout_ms;
};

static char *kc_dup(const char *s, bool *oom)
{
	char *d;
	if (!s)
		return NULL;
	if (!(d = strdup(s)))
		*oom = true;
	return d;
}

int kube_client_create(struct kube_client **out, const struct kube_config *cfg,
		       unsigned timeout_ms, struct nova_err *err)
{
	struct kube_client *kc = calloc(1, sizeof(*kc));
	bool oom = !kc || !(kc->cfg = calloc(1, sizeof(*kc->cfg)));
	*out = NULL;
	if (!oom) {
		struct kube_config *c = kc->cfg;
		*c = *cfg;
		c->ca_file = kc_dup(cfg->ca_file, &oom);
		c->ca_pem = kc_dup(cfg->ca_pem, &oom);
		c->cert_file = kc_dup(cfg->cert_file, &oom);
		c->cert_pem = kc_dup(cfg->cert_pem, &oom);
		c->key_file = kc_dup(cfg->key_file, &oom);
		c->key_pem = kc_dup(cfg->key_pem, &oom);
		c->token = kc_dup(cfg->token, &oom);
		kc->timeout_ms = timeout_ms ? timeout_ms : 15000;
	}
	if (oom) {
		kube_client_destroy(kc);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	*out = kc;
	return 0;
}

void kube_client_destroy(struct kube_client *kc)
{
	if (!kc)
		return;
	kube_config_free(kc->cfg);
	free(kc);
}

static void kube_req_tls(struct http_client_request *r, const struct kube_client *kc)
{
	r->bearer_token = kc->cfg->token;
	r->ca_file = kc->cfg->ca_file;
	r->ca_pem = kc->cfg->ca_pem;
	r->client_cert_file = kc->cfg->cert_file;
	r->client_cert_pem = kc->cfg->cert_pem;
	r->client_key_file = kc->cfg->key_file;
	r->client_key_pem = kc->cfg->key_pem;
	r->insecure_skip_verify = kc->cfg->insecure;
}

int kube_request(long *status, json_t **out, struct kube_client *kc, const char *method,
		 const char *path, const json_t *body, const char *content_type,
		 struct nova_err *err)
{
	static const char *const accept[] = {"Accept: application/json", NULL};
	struct http_client_response res;
	char url[2048], *text = NULL;
	int rc;
	*status = 0;
	if (out)
		*out = NULL;
	if (snprintf(url, sizeof(url), "%s%s", kc->cfg->server, path) >= (int)sizeof(url))
		return nova_err_set(err, NOVA_EINVAL, "", "request path too long");
	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	struct http_client_request req = {
		.method = method, .url = url, .body = text, .body_len = text ? strlen(text) : 0,
		.content_type = text ? (content_type ? content_type : "application/json") : NULL,
		.headers = accept, .timeout_ms = kc->timeout_ms,
	};
	kube_req_tls(&req, kc);
	rc = http_client_do(&res, &req, err);
	free(text);
	if (rc) {
		char why[NOVA_ERR_MESSAGE_MAX];
		snprintf(why, sizeof(why), "%s", err->message);
		/* An API server that cannot be reached is transient: adapter.h
		 * has the worker retry NOVA_EAGAIN, and ssh answers it for a host
		 * down. This said NOVA_EUNAVAIL, which the adapter contract
		 * (tests/adapters/driver_contract.c) does not have. */
		if (rc == NOVA_EUNAVAIL)
			rc = NOVA_EAGAIN;
		return nova_err_set(err, rc, "", "kubernetes API %s: %s", kc->cfg->server, why);
	}
	*status = res.status;
	if (out && res.body_len > 0)
		*out = json_loadb(res.body, res.body_len, 0, NULL);
	http_client_response_finish(&res);
	return 0;
}

int kube_status_error(struct nova_err *err, long status, const json_t *answer, const char *what)
{
	const char *reason = json_string_value(json_object_get(answer, "reason"));
	const char *message = json_string_value(json_object_get(answer, "message"));
	int code;
	if (status == 404)
		code = NOVA_ENOTFOUND;
	else if (status == 409)
		code = reason && !strcmp(reason, "AlreadyExists") ? NOVA_EEXISTS : NOVA_ECONFLICT;
	else if (status == 422 || status == 400)
		code = NOVA_EINVAL;
	else if (status == 429 || status >= 500 || status == 0)
		code = NOVA_EAGAIN;
	else
		code = NOVA_EFAILED; /* 401, 403 (forbidden, quota exceeded): an operator must act */
	return nova_err_set(err, code, "", "%s: %s (HTTP %ld): %s", what, reason ? reason : "Error",
			    status, message ? message : "no message from the API server");
}

/* --- watch --------------------------------------------------------------- */

struct kube_watch_ctx {
	int (*on_event)(void *ctx, const json_t *event);
	void *ctx;
	char *line;
	size_t len, cap;
	bool stopped;
};

static int kube_watch_data(void *arg, const char *data, size_t len)
{
	struct kube_watch_ctx *w = arg;
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n') {
			if (w->len + 1 >= w->cap) {
				size_t cap = w->cap ? w->cap * 2 : 8192;
				char *nl;
				if (cap > (64u << 20) || !(nl = realloc(w->line, cap)))
					return 1; /* an event this large is not one we read */
				w->line = nl;
				w->cap = cap;
			}
			w->line[w->len++] = data[i];
			continue;
		}
		if (w->len == 0)
			continue;
		w->line[w->len] = '\0';
		json_t *ev = json_loadb(w->line, w->len, 0, NULL);
		w->len = 0;
		int stop = ev ? w->on_event(w->ctx, ev) : 0;
		json_decref(ev);
		if (stop) {
			w->stopped = true;
			return 1;
		}
	}
	return 0;
}

int kube_watch(long *status, struct kube_client *kc, const char *path, const char *resource_version,
	       unsigned timeout_s, const _Atomic int *cancel,
	       int (*on_event)(void *ctx, const json_t *event), void *ctx, struct nova_err *err)
{
	static const char *const accept[] = {"Accept: application/json", NULL};
	struct kube_watch_ctx w = {on_event, ctx, NULL, 0, 0, false};
	char url[2048];
	int rc;
	if (snprintf(url, sizeof(url), "%s%s%swatch=1&allowWatchBookmarks=false&timeoutSeconds=%u%s%s",
		     kc->cfg->server, path, strchr(path, '?') ? "&" : "?", timeout_s,
		     resource_version && *resource_version ? "&resourceVersion=" : "",
		     resource_version ? resource_version : "") >= (int)sizeof(url))
		return nova_err_set(err, NOVA_EINVAL, "", "watch path too long");
	struct http_client_request req = {.method = "GET", .url = url, .headers = accept,
					  .timeout_ms = (long)(timeout_s + 15) * 1000, .cancel = cancel};
	kube_req_tls(&req, kc);
	rc = http_client_stream(status, &req, kube_watch_data, &w, err);
	free(w.line);
	return rc;
}
