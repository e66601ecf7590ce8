#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/kubernetes/kube.h"
#include "core/files.h"
#include "core/ydoc.h"

/* --- base64 -------------------------------------------------------------- */

char *kube_base64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), k = 0;
	char *clean = malloc(n + 1), *out = NULL;
	int outl = 0, finl = 0;
	*len = 0;
	if (!clean)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t')
			clean[k++] = s[i];
	clean[k] = '\0';
	if (k == 0 || k > INT_MAX / 2 || !(out = malloc(k + 1))) {
		free(clean);
		return NULL;
	}
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	bool ok = ctx != NULL;
	if (ok) {
		EVP_DecodeInit(ctx);
		ok = EVP_DecodeUpdate(ctx, (unsigned char *)out, &outl, (const unsigned char *)clean,
				      (int)k) >= 0 &&
		     EVP_DecodeFinal(ctx, (unsigned char *)out + outl, &finl) == 1;
	}
	if (!ok) {
		EVP_ENCODE_CTX_free(ctx);
		free(clean);
		free(out);
		return NULL;
	}
	EVP_ENCODE_CTX_free(ctx);
	free(clean);
	*len = (size_t)(outl + finl);
	out[*len] = '\0';
	return out;
}

char *kube_base64_encode(const void *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out)
		EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* --- kubeconfig ---------------------------------------------------------- */

void kube_config_free(struct kube_config *c)
{
	if (!c)
		return;
	char *secrets[] = {c->token, c->key_pem};
	for (size_t i = 0; i < 2; i++)
		if (secrets[i])
			explicit_bzero(secrets[i], strlen(secrets[i]));
	free(c->ca_file);
	free(c->ca_pem);
	free(c->cert_file);
	free(c->cert_pem);
	free(c->key_file);
	free(c->key_pem);
	free(c->token);
	free(c);
}

/* The entry named name in a list of {name, <kind>: {...}} (clusters, users,
 * contexts); *body gets its <kind> mapping. */
static int kc_find(yaml_node_t **body, struct ydoc *d, yaml_node_t *root, const char *list,
		   const char *kind, const char *name, yaml_node_t *ref, struct nova_err *err)
{
	yaml_node_t *seq = ydoc_map_get(d, root, list);
	*body = NULL;
	if (seq && seq->type != YAML_SEQUENCE_NODE)
		return ydoc_err(d, seq, err, NOVA_EINVAL, list, "%s: expected a list", list);
	for (yaml_node_item_t *it = seq ? seq->data.sequence.items.start : NULL;
	     seq && it < seq->data.sequence.items.top; it++) {
		yaml_node_t *e = ydoc_node(d, *it);
		const char *n = ydoc_scalar(ydoc_map_get(d, e, "name"));
		if (e->type != YAML_MAPPING_NODE || !n)
			return ydoc_err(d, e, err, NOVA_EINVAL, list, "%s: each entry needs a name", list);
		if (strcmp(n, name) != 0)
			continue;
		*body = ydoc_map_get(d, e, kind);
		if (!*body || (*body)->type != YAML_MAPPING_NODE)
			return ydoc_err(d, e, err, NOVA_EINVAL, list, "%s: the entry has no %s mapping", list,
					kind);
		return 0;
	}
	/* The name is not echoed: it may be text of the file (core/ydoc.h). */
	return ydoc_err(d, ref ? ref : root, err, NOVA_EINVAL, list, "no %.*s of that name in %s",
			(int)strlen(list) - 1, list, list);
}

/* An optional string field of a mapping. */
static int kc_str(const char **out, struct ydoc *d, yaml_node_t *map, const char *key,
		  const char *field, struct nova_err *err)
{
	yaml_node_t *n = ydoc_map_get(d, map, key);
	*out = NULL;
	return n ? ydoc_get_string(out, d, n, field, err) : 0;
}

/* A path from the kubeconfig, absolute; relative ones are relative to the
 * kubeconfig's directory (an inline kubeconfig, dir NULL, has none: "" is
 * returned, which no check accepts). */
static char *kc_path(const char *dir, const char *p)
{
	char *out = NULL;
	if (p[0] == '/' || !dir)
		return strdup(p[0] == '/' ? p : "");
	if (asprintf(&out, "%s/%s", dir, p) < 0)
		return NULL;
	return out;
}

/* The content of a file the kubeconfig names (ca, cert, key, token),
 * through the same gate as the kubeconfig itself (core/files.h). The
 * error is positioned at the key and says neither the path nor anything
 * the file holds: both are the file's text, not the caller's. */
static int kc_read_named(char **out, struct ydoc *d, yaml_node_t *at, const char *dir,
			 const char *p, size_t max, const char *field, struct nova_err *err)
{
	struct nova_err why = {0};
	char *path = kc_path(dir, p);
	int rc;
	*out = NULL;
	if (!path)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	rc = files_read_allowed(out, NULL, NULL, 0, path, strlen(path), max, field, &why);
	free(path);
	if (rc == 0)
		return 0;
	if (rc == NOVA_EINTERNAL)
		return nova_err_set(err, rc, "", "out of memory");
	if (rc == NOVA_EUNAVAIL) {
		/* It did not answer in time: say so, still without the path. */
		rc = ydoc_err(d, at, err, NOVA_EUNAVAIL, field,
			      "%s: the file it names did not answer in time", field);
		nova_err_set_hint(err, "%s", why.hint);
		return rc;
	}
	rc = ydoc_err(d, at, err, NOVA_EINVAL, field,
		      "%s: the file it names cannot be used: it must be %sa regular file under "
		      "an allowed directory, of at most %zu bytes", field,
		      dir ? "" : "an absolute path (the kubeconfig is inline) of ", max);
	nova_err_set_hint(err, "allowed directories are novad.yaml's " FILES_ALLOWED_KEY
			  " (NOVA_PROVIDER_FILES); or give the content inline (*-data, token)");
	return rc;
}

static char *kc_read_file(const char *path, size_t max)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;
	if (!f)
		return NULL;
	buf = malloc(max + 1);
	n = buf ? fread(buf, 1, max, f) : 0;
	fclose(f);
	if (!buf)
		return NULL;
	buf[n] = '\0';
	return buf;
}

/* file or inline data for one credential part (ca, cert, key). */
static int kc_file_or_data(char **file_out, char **pem_out, struct ydoc *d, yaml_node_t *map,
			   const char *file_key, const char *data_key, const char *prefix,
			   const char *dir, struct nova_err *err)
{
	char ff[128], df[128];
	const char *file, *data;
	int rc;
	snprintf(ff, sizeof(ff), "%s.%s", prefix, file_key);
	snprintf(df, sizeof(df), "%s.%s", prefix, data_key);
	if ((rc = kc_str(&file, d, map, file_key, ff, err)) || (rc = kc_str(&data, d, map, data_key, df, err)))
		return rc;
	if (data) {
		size_t len;
		if (!(*pem_out = kube_base64_decode(data, &len)) || len == 0)
			return ydoc_err(d, ydoc_map_get(d, map, data_key), err, NOVA_EINVAL, df,
					"%s is not base64", df);
		if (strlen(*pem_out) != len)
			return ydoc_err(d, ydoc_map_get(d, map, data_key), err, NOVA_EINVAL, df,
					"%s does not decode to PEM text", df);
	} else if (file) {
		/* Read now, through the gate, and handed to TLS as data: the
		 * file is not opened again later by path. */
		(void)file_out;
		return kc_read_named(pem_out, d, ydoc_map_get(d, map, file_key), dir, file, 256 * 1024,
				     ff, err);
	}
	return 0;
}

static int kc_cluster(struct kube_config *c, struct ydoc *d, yaml_node_t *cl, const char *dir,
		      struct nova_err *err)
{
	const char *server;
	yaml_node_t *ins;
	int rc;
	if ((rc = kc_str(&server, d, cl, "server", "cluster.server", err)))
		return rc;
	if (!server || (strncmp(server, "https://", 8) && strncmp(server, "http://", 7)))
		return ydoc_err(d, server ? ydoc_map_get(d, cl, "server") : cl, err, NOVA_EINVAL,
				"cluster.server", "cluster.server must be an https:// URL");
	if (strlen(server) >= sizeof(c->server))
		return ydoc_err(d, ydoc_map_get(d, cl, "server"), err, NOVA_EINVAL, "cluster.server",
				"cluster.server is too long");
	snprintf(c->server, sizeof(c->server), "%s", server);
	size_t n = strlen(c->server);
	while (n > 0 && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	if ((ins = ydoc_map_get(d, cl, "insecure-skip-tls-verify")) &&
	    (rc = ydoc_get_bool(&c->insecure, d, ins, "cluster.insecure-skip-tls-verify", err)))
		return rc;
	return kc_file_or_data(&c->ca_file, &c->ca_pem, d, cl, "certificate-authority",
			       "certificate-authority-data", "cluster", dir, err);
}

static int kc_user(struct kube_config *c, struct ydoc *d, yaml_node_t *u, const char *dir,
		   struct nova_err *err)
{
	static const char *const refused[] = {"exec", "auth-provider", "username", "password",
					      "as", NULL};
	const char *token, *token_file;
	int rc;
	for (size_t i = 0; refused[i]; i++) {
		yaml_node_t *n = ydoc_map_get(d, u, refused[i]);
		if (n)
			return ydoc_err(d, n, err, NOVA_EINVAL, "user", "user.%s is not supported: use a "
					"token (token, tokenFile) or a client certificate", refused[i]);
	}
	if ((rc = kc_str(&token, d, u, "token", "user.token", err)) ||
	    (rc = kc_str(&token_file, d, u, "tokenFile", "user.tokenFile", err)))
		return rc;
	if (token) {
		if (!(c->token = strdup(token)))
			return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	} else if (token_file) {
		if ((rc = kc_read_named(&c->token, d, ydoc_map_get(d, u, "tokenFile"), dir, token_file,
					16384, "user.tokenFile", err)))
			return rc;
		c->token[strcspn(c->token, "\r\n")] = '\0';
	}
	if ((rc = kc_file_or_data(&c->cert_file, &c->cert_pem, d, u, "client-certificate",
				  "client-certificate-data", "user", dir, err)) ||
	    (rc = kc_file_or_data(&c->key_file, &c->key_pem, d, u, "client-key", "client-key-data",
				  "user", dir, err)))
		return rc;
	bool has_cert = c->cert_file || c->cert_pem, has_key = c->key_file || c->key_pem;
	if (has_cert != has_key)
		return ydoc_err(d, u, err, NOVA_EINVAL, "user",
				"user: a client certificate needs its key, and a key its certificate");
	if (!c->token && !has_cert)
		return ydoc_err(d, u, err, NOVA_EINVAL, "user",
				"user: no credentials (token, tokenFile, or client-certificate and "
				"client-key)");
	return 0;
}

int kube_config_load(struct kube_config **out, const char *path, const char *context,
		     struct nova_err *err)
{
	char dir[PATH_MAX], *text = NULL;
	size_t len = 0;
	int rc;
	*out = NULL;
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if ((rc = files_read_capped(&text, &len, path, FILES_READ_MAX, "kubeconfig", err)))
		return rc;
	rc = kube_config_parse(out, path, text, len, dir, context, err);
	if (text)
		explicit_bzero(text, len);
	free(text);
	return rc;
}

int kube_config_parse(struct kube_config **out, const char *name, const char *text, size_t len,
		      const char *dir, const char *context, struct nova_err *err)
{
	struct kube_config *c = calloc(1, sizeof(*c));
	struct ydoc *d = NULL;
	yaml_node_t *root, *ctx, *cl, *u, *ref = NULL;
	const char *ctx_name = context, *cluster, *user, *ns;
	int rc;
	*out = NULL;
	if (!c)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = ydoc_load_string(&d, name, text, len, err)))
		goto fail;
	if (!(root = ydoc_root(d)) || root->type != YAML_MAPPING_NODE) {
		rc = nova_err_set(err, NOVA_EINVAL, "kubeconfig", "%s: not a kubeconfig (expected a mapping)",
				  name);
		goto fail;
	}
	if (!ctx_name || !*ctx_name) {
		ref = ydoc_map_get(d, root, "current-context");
		if (!ref || !(ctx_name = ydoc_scalar(ref)) || !*ctx_name) {
			rc = ydoc_err(d, ref ? ref : root, err, NOVA_EINVAL, "context",
				      "no current-context: name a context in the pool config");
			goto fail;
		}
	}
	if ((rc = kc_find(&ctx, d, root, "contexts", "context", ctx_name, ref, err)))
		goto fail;
	snprintf(c->context, sizeof(c->context), "%s", ctx_name);
	if ((rc = kc_str(&cluster, d, ctx, "cluster", "context.cluster", err)) ||
	    (rc = kc_str(&user, d, ctx, "user", "context.user", err)) ||
	    (rc = kc_str(&ns, d, ctx, "namespace", "context.namespace", err)))
		goto fail;
	if (!cluster || !user) {
		rc = ydoc_err(d, ctx, err, NOVA_EINVAL, "context", "the context needs a cluster and a user");
		goto fail;
	}
	if (ns)
		snprintf(c->namespace, sizeof(c->namespace), "%s", ns);
	if ((rc = kc_find(&cl, d, root, "clusters", "cluster", cluster, ydoc_map_get(d, ctx, "cluster"), err)) ||
	    (rc = kc_cluster(c, d, cl, dir, err)) ||
	    (rc = kc_find(&u, d, root, "users", "user", user, ydoc_map_get(d, ctx, "user"), err)) ||
	    (rc = kc_user(c, d, u, dir, err)))
		goto fail;
	ydoc_destroy(d);
	*out = c;
	return 0;
fail:
	ydoc_destroy(d);
	kube_config_free(c);
	return rc;
}

int kube_config_in_cluster(struct kube_config **out, const char *sa_dir, struct nova_err *err)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	struct kube_config *c;
	char path[PATH_MAX];
	*out = NULL;
	if (!host || !*host)
		return nova_err_set(err, NOVA_EINVAL, "kubeconfig",
				    "no kubeconfig and not in a pod (KUBERNETES_SERVICE_HOST is unset)");
	if (!(c = calloc(1, sizeof(*c))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	/* An IPv6 service address needs brackets in a URL. */
	snprintf(c->server, sizeof(c->server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		 host, port && *port ? port : "443");
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	c->token = kc_read_file(path, 16384);
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	c->ca_file = strdup(path);
	if (!c->token || !c->ca_file || access(path, R_OK) != 0) {
		kube_config_free(c);
		return nova_err_set(err, NOVA_EINVAL, "kubeconfig",
				    "in a pod but the service account files are missing in %s", sa_dir);
	}
	c->token[strcspn(c->token, "\r\n")] = '\0';
	snprintf(path, sizeof(path), "%s/namespace", sa_dir);
	char *ns = kc_read_file(path, 63);
	if (ns) {
		ns[strcspn(ns, "\r\n")] = '\0';
		snprintf(c->namespace, sizeof(c->namespace), "%s", ns);
		free(ns);
	}
	*out = c;
	return 0;
}
