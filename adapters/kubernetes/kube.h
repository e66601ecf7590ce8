/* The kubernetes provider's building blocks: kubeconfig and the API client.
 *
 * Kubeconfig (kubectl's file): clusters, users, contexts and
 * current-context, parsed with libyaml (core/ydoc). Supported credentials:
 * bearer token (inline or tokenFile), client certificate and key (files or
 * inline base64 *-data); the CA as a file or inline; insecure-skip-tls-verify
 * only when it is set true. Relative file paths are taken from the
 * kubeconfig's directory, as kubectl does (an inline kubeconfig has none:
 * its paths must be absolute). Every file a kubeconfig names is read at
 * load, through core/files' gate (under an allowed directory, a regular
 * file, size-capped), and kept as data: TLS never opens a path later.
 * Errors never quote the kubeconfig's text (core/ydoc.h). Credential plugins (exec,
 * auth-provider) and basic auth are refused with a positioned error, not
 * ignored. Errors name "file:line:column" and the field. In a pod, the
 * service-account files and KUBERNETES_SERVICE_HOST/PORT stand in for a
 * kubeconfig.
 *
 * The client speaks JSON over HTTPS through core/http_client (libcurl, TLS
 * verified); API errors come back as Kubernetes Status objects whose reason
 * and message are kept for the caller. Secrets (token, key) live in memory
 * only and are wiped on free. */
#ifndef NOVA_ADAPTERS_KUBERNETES_KUBE_H
#define NOVA_ADAPTERS_KUBERNETES_KUBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "adapters/adapter.h"
#include "core/err.h"

/* The provider: see adapters/kubernetes/adapter.c for the pool config, the
 * Kubernetes Events it records and the permissions it needs. */
extern const struct adapter_ops kube_adapter_ops;

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct kube_config {
	char server[512];    /* "https://host:port", no trailing slash */
	char context[256];   /* the context used ("" in a pod) */
	char namespace[64];  /* the context's namespace, or "" */
	char *ca_file, *ca_pem;
	char *cert_file, *cert_pem;
	char *key_file, *key_pem;
	char *token;
	bool insecure;
};

/* Load path with the named context (NULL: current-context). path itself is
 * not checked against the allowed directories (the adapter does that
 * first); the files it names are. */
int kube_config_load(struct kube_config **out, const char *path, const char *context,
		     struct nova_err *err);
/* The same from text; name prefixes errors; dir is where relative paths
 * start (NULL: inline, relative paths are refused). */
int kube_config_parse(struct kube_config **out, const char *name, const char *text, size_t len,
		      const char *dir, const char *context, struct nova_err *err);
/* The service account of the pod we run in (sa_dir: KUBE_SA_DIR, or a test
 * directory holding token, ca.crt and namespace). */
int kube_config_in_cluster(struct kube_config **out, const char *sa_dir, struct nova_err *err);
void kube_config_free(struct kube_config *c);

/* --- the API client ----------------------------------------------------- */

struct kube_client;

int kube_client_create(struct kube_client **out, const struct kube_config *cfg,
		       unsigned timeout_ms, struct nova_err *err);
void kube_client_destroy(struct kube_client *kc);

/* One request: path from the server's root ("/api/v1/namespaces/x/pods"),
 * body JSON or NULL, content_type NULL for JSON. *status is the HTTP
 * status; *out the parsed answer (may be NULL). A transport failure is
 * NOVA_EAGAIN (transient, as adapter.h has it); an HTTP error status is
 * not a failure of this call. */
int kube_request(long *status, json_t **out, struct kube_client *kc, const char *method,
		 const char *path, const json_t *body, const char *content_type,
		 struct nova_err *err);

/* An error for an answer that is a Kubernetes Status: "<what>: <reason>:
 * <message>" with a code for the status (403 NOVA_EFAILED when the reason
 * is Forbidden, 404 NOVA_ENOTFOUND, 409 NOVA_EEXISTS/ECONFLICT, 422
 * NOVA_EINVAL, 5xx and 429 NOVA_EAGAIN). Returns the code. */
int kube_status_error(struct nova_err *err, long status, const json_t *answer, const char *what);

/* Watch path (a list URL, e.g. "/api/v1/namespaces/x/pods?labelSelector=...")
 * from resource_version: on_event gets each event ({"type", "object"}) as
 * it arrives; a non-zero return ends the watch. The watch ends by itself
 * after timeout_s, or when *cancel becomes non-zero. *status is the HTTP
 * status of the watch request. */
int kube_watch(long *status, struct kube_client *kc, const char *path, const char *resource_version,
	       unsigned timeout_s, const _Atomic int *cancel,
	       int (*on_event)(void *ctx, const json_t *event), void *ctx, struct nova_err *err);

/* Base64 (RFC 4648, newlines and blanks ignored) into a new NUL-terminated
 * buffer; *len gets its length. NULL when s is not base64. */
char *kube_base64_decode(const char *s, size_t *len);
/* Base64 of len bytes, new NUL-terminated string (NULL: out of memory). */
char *kube_base64_encode(const void *data, size_t len);

#endif
