/* The kubernetes adapter: a Nova node is a Pod (plus a Secret for its token
 * and a headless Service for a stable name), created on demand.
 *
 * Pool config:
 *   kubeconfig             absolute path of a kubeconfig under a directory
 *                          novad.yaml's provider_files allows (core/files.h)
 *   kubeconfig_inline      or the kubeconfig's YAML itself
 *   in_cluster             or true: the service account of the pod novad
 *                          runs in. Exactly one of the three; there is no
 *                          default, so a pool never borrows a file of
 *                          novad's (~/.kube/config) by omission.
 *   context                kubeconfig context (default current-context)
 *   namespace              default: the context's, else "default"
 *   accelerator_resource   extended resource requested (nvidia.com/gpu)
 *   accelerator_type       type Nova places by (default: the nodes'
 *                          nvidia.com/gpu.product label, else "gpu")
 *   accelerator_memory_mib per accelerator (default: nvidia.com/gpu.memory)
 *   accelerators_per_pod   a node's size (default: the largest node's)
 *   node_selector          label key -> value the pod's node must carry
 *   tolerations            core/v1 Tolerations (key, operator Exists|Equal,
 *                          value, effect NoSchedule|PreferNoSchedule|
 *                          NoExecute, tolerationSeconds with NoExecute)
 *   labels                 more labels on the pod, secret and service
 *                          (not Nova's own keys); these three are held to
 *                          Kubernetes' rules at validate, field by field
 *   sidecar_image, model_image,
 *   image_pull_policy, gateway_url (the address pods reach novad at, when
 *   it differs from novad's own), watch_timeout_s (how long one watch
 *   request lasts before it is renewed, default 30)
 *
 * Names: Pod, Secret and Service "nova-<node id>", labelled with the pool
 * and node ids, so a retry finds them (AlreadyExists is success when the
 * labels match) and list_nodes finds orphans and twins by label. The token
 * is in the Secret; the Pod carries only its SHA-256 (annotation), so a
 * provision with a new token replaces a pod that runs with an old one.
 *
 * Events: a core/v1 Event on each object created (NovaCreated), replaced
 * (NovaReplaced, with the reason the caller gave in adapter_node_ref) or
 * deleted (NovaDeleted); best effort (see ka_event).
 *
 * Permissions the pool's credentials need (etc/kubernetes/rbac.yaml): in
 * the namespace, pods get/list/watch/create/delete, secrets
 * get/create/update/delete, services get/create/delete, events create;
 * cluster wide, list on nodes and pods (discovery).
 *
 * Status comes from a per-pool informer: a thread that lists the pool's
 * pods, then watches from the list's resourceVersion (reconnecting when a
 * watch ends; relisting on 410 Expired), keeping each pod's phase, IP and
 * the Kubernetes words for why it is not running. node_status reads that
 * cache; before the first list it asks the API server directly. The
 * informer is the instance's: it starts with the instance and is stopped
 * and joined by its destroy, so it lives as long as the pool's config
 * (adapter.h) and watches with that config's credentials. Rejected: the
 * process-wide table of informers this replaces (needed while instances
 * lived for one call), which kept a deleted pool's watch running until
 * novad exited and kept the first config's client after a change. */
#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "adapters/kubernetes/kube.h"
#include "core/files.h"
#include "core/ids.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/text.h"

#define KA_LABEL_MANAGED "app.kubernetes.io/managed-by"
#define KA_LABEL_POOL "nova.dev/pool-id"
#define KA_LABEL_NODE "nova.dev/node-id"
#define KA_ANNOT_TOKEN "nova.dev/token-sha256"
#define KA_DEFAULT_RESOURCE "nvidia.com/gpu"
#define KA_DEFAULT_MODEL_IMAGE "vllm/vllm-openai:latest"
#define KA_DEFAULT_SIDECAR_IMAGE "nova-sidecar:" NOVA_VERSION
#define KA_WATCH_TIMEOUT_S 30

/* --- informers ------------------------------------------------------------- */

struct ka_informer {
	char ns[64];
	char pool_id[ADAPTER_ID_LEN];
	struct kube_client *kc;
	pthread_t thread;
	_Atomic int stop;
	pthread_mutex_t lock;
	json_t *pods; /* pod name -> pod object */
	bool synced;
	char rv[64];
	bool relist;
	unsigned watch_timeout_s;
};

static void ka_selector(char *buf, size_t len, const char *pool_id)
{
	snprintf(buf, len, "labelSelector=" KA_LABEL_POOL "%%3D%s", pool_id);
}

static int ka_inf_list(struct ka_informer *inf, struct nova_err *err)
{
	char path[512], sel[128];
	long status;
	json_t *ans = NULL, *item;
	size_t i;
	ka_selector(sel, sizeof(sel), inf->pool_id);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods?%s", inf->ns, sel);
	int rc = kube_request(&status, &ans, inf->kc, "GET", path, NULL, NULL, err);
	if (rc == 0 && status != 200)
		rc = kube_status_error(err, status, ans, "listing pods");
	if (rc == 0) {
		json_t *pods = json_object();
		json_array_foreach(json_object_get(ans, "items"), i, item) {
			const char *name = json_string_value(
				json_object_get(json_object_get(item, "metadata"), "name"));
			if (name)
				json_object_set(pods, name, item);
		}
		const char *rv = json_string_value(
			json_object_get(json_object_get(ans, "metadata"), "resourceVersion"));
		pthread_mutex_lock(&inf->lock);
		json_decref(inf->pods);
		inf->pods = pods;
		snprintf(inf->rv, sizeof(inf->rv), "%s", rv ? rv : "");
		inf->synced = true;
		inf->relist = false;
		pthread_mutex_unlock(&inf->lock);
	}
	json_decref(ans);
	return rc;
}

static int ka_inf_event(void *ctx, const json_t *ev)
{
	struct ka_informer *inf = ctx;
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *rv = json_string_value(json_object_get(meta, "resourceVersion"));
	if (!type)
		return 0;
	if (!strcmp(type, "ERROR")) {
		/* 410 Expired: our resourceVersion is too old; list again. */
		pthread_mutex_lock(&inf->lock);
		inf->relist = true;
		pthread_mutex_unlock(&inf->lock);
		return 1;
	}
	pthread_mutex_lock(&inf->lock);
	if (name && !strcmp(type, "DELETED"))
		json_object_del(inf->pods, name);
	else if (name && (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")))
		json_object_set(inf->pods, name, obj);
	if (rv)
		snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
	pthread_mutex_unlock(&inf->lock);
	return 0;
}

static void ka_sleep_unless_stopped(struct ka_informer *inf, unsigned ms)
{
	for (unsigned t = 0; t < ms && !inf->stop; t += 100) {
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static void *ka_inf_thread(void *arg)
{
	struct ka_informer *inf = arg;
	unsigned backoff = 500;
	while (!inf->stop) {
		struct nova_err err;
		char path[512], sel[128], rv[64];
		long status = 0;
		bool relist;
		pthread_mutex_lock(&inf->lock);
		relist = !inf->synced || inf->relist;
		pthread_mutex_unlock(&inf->lock);
		if (relist && ka_inf_list(inf, &err) != 0) {
			nova_log_kv(NOVA_LOG_WARN, "kubernetes", "listing pods failed", "namespace", inf->ns,
				    "error", err.message, NULL);
			ka_sleep_unless_stopped(inf, backoff);
			backoff = backoff < 30000 ? backoff * 2 : 30000;
			continue;
		}
		pthread_mutex_lock(&inf->lock);
		snprintf(rv, sizeof(rv), "%s", inf->rv);
		pthread_mutex_unlock(&inf->lock);
		ka_selector(sel, sizeof(sel), inf->pool_id);
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods?%s", inf->ns, sel);
		int rc = kube_watch(&status, inf->kc, path, rv, inf->watch_timeout_s, &inf->stop,
				    ka_inf_event, inf, &err);
		if (inf->stop)
			break;
		if (rc || (status != 200 && status != 0)) {
			/* A watch refused (410 as a status, 5xx) or cut: list again. */
			pthread_mutex_lock(&inf->lock);
			inf->relist = true;
			pthread_mutex_unlock(&inf->lock);
			ka_sleep_unless_stopped(inf, backoff);
			backoff = backoff < 30000 ? backoff * 2 : 30000;
		} else {
			backoff = 500;
		}
	}
	return NULL;
}

/* The instance's informer for (server, namespace, pool), started now. */
static int ka_informer_start(struct ka_informer **out, const struct kube_config *cfg, const char *ns,
			     const char *pool_id, unsigned watch_timeout_s, struct nova_err *err)
{
	struct ka_informer *inf;
	int rc;
	*out = NULL;
	if (!(inf = calloc(1, sizeof(*inf))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	snprintf(inf->ns, sizeof(inf->ns), "%s", ns);
	snprintf(inf->pool_id, sizeof(inf->pool_id), "%s", pool_id);
	inf->watch_timeout_s = watch_timeout_s ? watch_timeout_s : KA_WATCH_TIMEOUT_S;
	inf->pods = json_object();
	pthread_mutex_init(&inf->lock, NULL);
	if ((rc = kube_client_create(&inf->kc, cfg, 15000, err)) == 0 &&
	    pthread_create(&inf->thread, NULL, ka_inf_thread, inf) != 0)
		rc = nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the pod informer");
	if (rc) {
		kube_client_destroy(inf->kc);
		json_decref(inf->pods);
		pthread_mutex_destroy(&inf->lock);
		free(inf);
		return rc;
	}
	*out = inf;
	return 0;
}

/* Stop the watch (cancelled at once; a list in flight ends within its
 * timeout) and wait for the thread. */
static void ka_informer_stop(struct ka_informer *inf)
{
	if (!inf)
		return;
	inf->stop = 1;
	pthread_join(inf->thread, NULL);
	kube_client_destroy(inf->kc);
	json_decref(inf->pods);
	pthread_mutex_destroy(&inf->lock);
	free(inf);
}

/* --- the adapter ------------------------------------------------------------ */

struct kube_adapter {
	struct adapter base; /* first member */
	struct kube_client *kc;
	struct ka_informer *inf;
	char ns[64];
	char resource[128];
	char type[64];
	unsigned long long memory_mib;
	unsigned per_pod;
	json_t *node_selector, *tolerations, *labels; /* owned */
	char sidecar_image[256], model_image[256], pull_policy[16], gateway_url[256];
	/* Events (ka_event): this novad as their reportingInstance, a
	 * sequence that keeps two events of one object in one nanosecond
	 * apart, and whether a failed post was logged yet. */
	char instance[IDS_MACHINE_LEN + 8];
	_Atomic unsigned ev_seq;
	atomic_bool ev_logged;
};

static struct kube_adapter *ka_from(struct adapter *ad)
{
	assert(ad && ad->ops == &kube_adapter_ops);
	return (struct kube_adapter *)ad;
}

/* Which kubeconfig the config means: a file, inline text, or the pod's
 * service account. Errors name the key the caller gave. */
static int ka_config_load(struct kube_config **out, const json_t *config, struct nova_err *err)
{
	const json_t *path = json_object_get(config, "kubeconfig");
	const json_t *text = json_object_get(config, "kubeconfig_inline");
	const json_t *pod = json_object_get(config, "in_cluster");
	const char *context = json_string_value(json_object_get(config, "context"));
	const char *field = text ? "kubeconfig_inline" : "kubeconfig";
	char real[PATH_MAX], *buf = NULL;
	size_t len = 0;
	int rc;
	*out = NULL;
	if (pod && !json_is_boolean(pod))
		return nova_err_set(err, NOVA_EINVAL, "in_cluster", "in_cluster must be true or false");
	if (json_is_false(pod))
		pod = NULL;
	if ((path != NULL) + (text != NULL) + (pod != NULL) != 1) {
		nova_err_set(err, NOVA_EINVAL, !path && !text && !pod ? "kubeconfig"
				    : pod ? "in_cluster" : "kubeconfig_inline",
			     "give exactly one of kubeconfig (a file), kubeconfig_inline (its YAML) "
			     "or in_cluster: true (novad's pod's service account)");
		return NOVA_EINVAL;
	}
	if (pod)
		return kube_config_in_cluster(out, KUBE_SA_DIR, err);
	if (text) {
		if (!json_is_string(text) || json_string_length(text) > FILES_READ_MAX)
			return nova_err_set(err, NOVA_EINVAL, field,
					    "kubeconfig_inline must be the kubeconfig YAML as a string "
					    "of at most %d bytes", FILES_READ_MAX);
		rc = kube_config_parse(out, "kubeconfig_inline", json_string_value(text),
				       json_string_length(text), NULL, context, err);
	} else {
		if (!json_is_string(path))
			return nova_err_set(err, NOVA_EINVAL, field,
					    "kubeconfig must be the absolute path of a kubeconfig file");
		if ((rc = files_read_allowed(&buf, &len, real, sizeof(real), json_string_value(path),
					     json_string_length(path), FILES_READ_MAX, field, err)))
			return rc;
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", real);
		char *slash = strrchr(dir, '/');
		*(slash == dir ? slash + 1 : slash) = '\0'; /* real is absolute */
		rc = kube_config_parse(out, real, buf, len, dir, context, err);
		explicit_bzero(buf, len);
		free(buf);
	}
	/* The position in the message says where in it; the field is the
	 * pool config's key. */
	if (rc && rc != NOVA_EINTERNAL)
		snprintf(err->field, sizeof(err->field), "%s", field);
	return rc;
}

/* --- what the pool puts in its pods -------------------------------------- */

/* Kubernetes' own rules (apimachinery's IsQualifiedName, IsValidLabelValue
 * and IsDNS1123Subdomain; core/v1 Toleration), checked at pool create so a
 * bad value is refused there, naming the field, and not by the API server
 * at the first provision. Rejected: letting the API server be the judge
 * (a dry-run create at validate), which needs the cluster reachable and
 * the pool's credentials allowed to create pods when the pool is made, and
 * answers in the API's field names, not the pool config's. */

/* 1..63 characters, [A-Za-z0-9] at both ends, '-', '_', '.' inside. */
static bool ka_is_name_part(const char *s, size_t n)
{
	if (n < 1 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			     (s[i] >= '0' && s[i] <= '9');
		if (!alnum && ((i == 0 || i == n - 1) || (s[i] != '-' && s[i] != '_' && s[i] != '.')))
			return false;
	}
	return true;
}

/* A lowercase RFC 1123 subdomain of at most 253 characters. */
static bool ka_is_dns_subdomain(const char *s, size_t n)
{
	if (n < 1 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');
		bool edge = i == 0 || i == n - 1 || s[i - 1] == '.' || s[i + 1] == '.';
		if (!alnum && (edge || (s[i] != '-' && s[i] != '.')))
			return false;
	}
	return true;
}

/* A label key: [DNS subdomain "/"] name part. */
static bool ka_is_qualified_name(const char *s)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return ka_is_name_part(s, strlen(s));
	return ka_is_dns_subdomain(s, (size_t)(slash - s)) &&
	       ka_is_name_part(slash + 1, strlen(slash + 1));
}

static bool ka_is_label_value(const char *s)
{
	return !*s || ka_is_name_part(s, strlen(s));
}

#define KA_MSG_KEY "a qualified name: an optional DNS subdomain prefix and '/', then 1 to 63 " \
		   "characters, letters or digits at both ends, '-', '_' or '.' inside"
#define KA_MSG_VALUE "empty, or at most 63 characters, letters or digits at both ends, '-', '_' " \
		     "or '.' inside"

/* A map of label keys to label values (node_selector, labels); errors
 * name the entry ("labels.team"). own: refuse the keys Nova sets itself. */
static int ka_check_label_map(const json_t *map, const char *field, bool own, struct nova_err *err)
{
	const char *k;
	json_t *v;
	char f[NOVA_ERR_FIELD_MAX];
	if (!json_is_object(map))
		return nova_err_set(err, NOVA_EINVAL, field, "%s must be an object of strings", field);
	json_object_foreach((json_t *)map, k, v) {
		snprintf(f, sizeof(f), "%s.%s", field, k);
		if (!ka_is_qualified_name(k))
			return nova_err_set(err, NOVA_EINVAL, f, "%s: the key must be %s", f, KA_MSG_KEY);
		if (own && (!strcmp(k, KA_LABEL_MANAGED) || !strcmp(k, KA_LABEL_POOL) ||
			    !strcmp(k, KA_LABEL_NODE)))
			return nova_err_set(err, NOVA_EINVAL, f, "%s is a label Nova sets on its pods", f);
		if (!json_is_string(v))
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be a string", f);
		if (!ka_is_label_value(json_string_value(v)))
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be %s", f, KA_MSG_VALUE);
	}
	return 0;
}

/* One core/v1 Toleration; field is "tolerations[i]". */
static int ka_check_toleration(const json_t *t, const char *field, struct nova_err *err)
{
	const char *key = NULL, *op = NULL, *value = NULL, *effect = NULL;
	long long seconds = 0;
	bool has_seconds = false;
	char f[NOVA_ERR_FIELD_MAX];
	const struct json_field fields[] = {
		{.name = "key", .kind = JSON_KIND_STRING, .out = &key, .max_len = 317,
		 .allow_empty = true},
		{.name = "operator", .kind = JSON_KIND_STRING, .out = &op, .max_len = 16,
		 .allow_empty = true},
		{.name = "value", .kind = JSON_KIND_STRING, .out = &value, .max_len = 63,
		 .allow_empty = true},
		{.name = "effect", .kind = JSON_KIND_STRING, .out = &effect, .max_len = 32,
		 .allow_empty = true},
		{.name = "tolerationSeconds", .kind = JSON_KIND_INT, .out = &seconds,
		 .present = &has_seconds},
	};
	int rc = json_decode_object(t, fields, sizeof(fields) / sizeof(fields[0]), field, err);
	if (rc)
		return rc;
	op = op && *op ? op : "Equal"; /* the API server's default */
	key = key ? key : "";
	value = value ? value : "";
	if (strcmp(op, "Equal") && strcmp(op, "Exists")) {
		snprintf(f, sizeof(f), "%s.operator", field);
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be Exists or Equal, not \"%.32s\"", f,
				    op);
	}
	if (*key && !ka_is_qualified_name(key)) {
		snprintf(f, sizeof(f), "%s.key", field);
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be %s", f, KA_MSG_KEY);
	}
	if (!*key && strcmp(op, "Exists")) {
		snprintf(f, sizeof(f), "%s.operator", field);
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be Exists when the key is empty "
				    "(which matches every taint)", f);
	}
	if (!strcmp(op, "Exists") && *value) {
		snprintf(f, sizeof(f), "%s.value", field);
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be empty when the operator is Exists",
				    f);
	}
	if (!ka_is_label_value(value)) {
		snprintf(f, sizeof(f), "%s.value", field);
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be %s", f, KA_MSG_VALUE);
	}
	effect = effect ? effect : "";
	if (*effect && strcmp(effect, "NoSchedule") && strcmp(effect, "PreferNoSchedule") &&
	    strcmp(effect, "NoExecute")) {
		snprintf(f, sizeof(f), "%s.effect", field);
		return nova_err_set(err, NOVA_EINVAL, f, "%s must be NoSchedule, PreferNoSchedule, "
				    "NoExecute or empty (every effect), not \"%.32s\"", f, effect);
	}
	if (has_seconds && strcmp(effect, "NoExecute")) {
		snprintf(f, sizeof(f), "%s.tolerationSeconds", field);
		return nova_err_set(err, NOVA_EINVAL, f, "%s is only allowed with the effect NoExecute",
				    f);
	}
	return 0;
}

static int ka_validate(const json_t *config, struct nova_err *err)
{
	const char *context = NULL, *ns = NULL, *resource = NULL, *type = NULL;
	const char *sidecar = NULL, *model = NULL, *pull = NULL, *gw = NULL;
	long long mem = 0, per_pod = 0, watch_timeout = 0;
	json_t *selector = NULL, *tolerations = NULL, *labels = NULL;
	json_t *any = NULL; /* the kubeconfig keys: ka_config_load checks them */
	const struct json_field fields[] = {
		{.name = "kubeconfig", .kind = JSON_KIND_ANY, .out = &any},
		{.name = "kubeconfig_inline", .kind = JSON_KIND_ANY, .out = &any},
		{.name = "in_cluster", .kind = JSON_KIND_ANY, .out = &any},
		{.name = "context", .kind = JSON_KIND_STRING, .out = &context, .max_len = 253},
		{.name = "namespace", .kind = JSON_KIND_STRING, .out = &ns, .max_len = 63},
		{.name = "accelerator_resource", .kind = JSON_KIND_STRING, .out = &resource, .max_len = 127},
		{.name = "accelerator_type", .kind = JSON_KIND_STRING, .out = &type, .max_len = 63},
		{.name = "accelerator_memory_mib", .kind = JSON_KIND_INT, .out = &mem, .min = 0,
		 .max = 1LL << 40},
		{.name = "accelerators_per_pod", .kind = JSON_KIND_INT, .out = &per_pod, .min = 1,
		 .max = 1024},
		{.name = "node_selector", .kind = JSON_KIND_OBJECT, .out = &selector},
		{.name = "tolerations", .kind = JSON_KIND_ARRAY, .out = &tolerations},
		{.name = "labels", .kind = JSON_KIND_OBJECT, .out = &labels},
		{.name = "sidecar_image", .kind = JSON_KIND_STRING, .out = &sidecar, .max_len = 255},
		{.name = "model_image", .kind = JSON_KIND_STRING, .out = &model, .max_len = 255},
		{.name = "image_pull_policy", .kind = JSON_KIND_STRING, .out = &pull, .max_len = 15},
		{.name = "gateway_url", .kind = JSON_KIND_STRING, .out = &gw, .max_len = 255},
		{.name = "watch_timeout_s", .kind = JSON_KIND_INT, .out = &watch_timeout, .min = 1,
		 .max = 3600},
	};
	struct kube_config *kcfg = NULL;
	size_t i;
	json_t *t;
	int rc = json_decode_object(config, fields, sizeof(fields) / sizeof(fields[0]), "", err);
	if (rc)
		return rc;
	if (ns && !ids_is_dns_label(ns))
		return nova_err_set(err, NOVA_EINVAL, "namespace",
				    "namespace must be a DNS label (lowercase letters, digits, '-')");
	if (selector && (rc = ka_check_label_map(selector, "node_selector", false, err)))
		return rc;
	if (labels && (rc = ka_check_label_map(labels, "labels", true, err)))
		return rc;
	json_array_foreach(tolerations, i, t) {
		char f[48];
		snprintf(f, sizeof(f), "tolerations[%zu]", i);
		if (!json_is_object(t))
			return nova_err_set(err, NOVA_EINVAL, f, "%s must be an object (key, operator, "
					    "value, effect, tolerationSeconds)", f);
		if ((rc = ka_check_toleration(t, f, err)))
			return rc;
	}
	if (pull && strcmp(pull, "Always") && strcmp(pull, "IfNotPresent") && strcmp(pull, "Never"))
		return nova_err_set(err, NOVA_EINVAL, "image_pull_policy",
				    "image_pull_policy must be Always, IfNotPresent or Never");
	if (gw && strncmp(gw, "http://", 7) && strncmp(gw, "https://", 8))
		return nova_err_set(err, NOVA_EINVAL, "gateway_url", "gateway_url must be an http(s) URL");
	if ((rc = ka_config_load(&kcfg, config, err)))
		return rc;
	kube_config_free(kcfg);
	return 0;
}

static int ka_create(struct adapter **out, const struct adapter_context *ctx, const char *pool_id,
		     const json_t *config, struct nova_err *err)
{
	struct kube_adapter *ka = calloc(1, sizeof(*ka));
	struct kube_config *kcfg = NULL;
	const char *s;
	int rc;
	*out = NULL;
	if (!ka)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	ka->base.ops = &kube_adapter_ops;
	ka->base.ephemeral = true;
	if ((rc = ka_config_load(&kcfg, config, err)) ||
	    (rc = kube_client_create(&ka->kc, kcfg, 15000, err)))
		goto fail;
	s = json_string_value(json_object_get(config, "namespace"));
	snprintf(ka->ns, sizeof(ka->ns), "%s", s ? s : kcfg->namespace[0] ? kcfg->namespace : "default");
	s = json_string_value(json_object_get(config, "accelerator_resource"));
	snprintf(ka->resource, sizeof(ka->resource), "%s", s ? s : KA_DEFAULT_RESOURCE);
	s = json_string_value(json_object_get(config, "accelerator_type"));
	snprintf(ka->type, sizeof(ka->type), "%s", s ? s : "");
	ka->memory_mib = (unsigned long long)json_integer_value(json_object_get(config, "accelerator_memory_mib"));
	ka->per_pod = (unsigned)json_integer_value(json_object_get(config, "accelerators_per_pod"));
	ka->node_selector = json_deep_copy(json_object_get(config, "node_selector"));
	ka->tolerations = json_deep_copy(json_object_get(config, "tolerations"));
	ka->labels = json_deep_copy(json_object_get(config, "labels"));
	s = json_string_value(json_object_get(config, "sidecar_image"));
	snprintf(ka->sidecar_image, sizeof(ka->sidecar_image), "%s", s ? s : KA_DEFAULT_SIDECAR_IMAGE);
	s = json_string_value(json_object_get(config, "model_image"));
	snprintf(ka->model_image, sizeof(ka->model_image), "%s", s ? s : KA_DEFAULT_MODEL_IMAGE);
	s = json_string_value(json_object_get(config, "image_pull_policy"));
	snprintf(ka->pull_policy, sizeof(ka->pull_policy), "%s", s ? s : "IfNotPresent");
	s = json_string_value(json_object_get(config, "gateway_url"));
	snprintf(ka->gateway_url, sizeof(ka->gateway_url), "%s", s ? s : "");
	snprintf(ka->base.pool_id, sizeof(ka->base.pool_id), "%s", pool_id);
	char machine[IDS_MACHINE_LEN];
	ids_machine_id(machine);
	snprintf(ka->instance, sizeof(ka->instance), "novad-%s", machine);
	(void)ctx; /* everything a kubernetes pool uses is in its config */
	if ((rc = ka_informer_start(&ka->inf, kcfg, ka->ns, pool_id,
				  (unsigned)json_integer_value(json_object_get(config, "watch_timeout_s")), err)))
		goto fail;
	kube_config_free(kcfg);
	*out = &ka->base;
	return 0;
fail:
	kube_config_free(kcfg);
	kube_client_destroy(ka->kc);
	json_decref(ka->node_selector);
	json_decref(ka->tolerations);
	json_decref(ka->labels);
	free(ka);
	return rc;
}

static void ka_destroy(struct adapter *ad)
{
	struct kube_adapter *ka = ka_from(ad);
	ka_informer_stop(ka->inf);
	kube_client_destroy(ka->kc);
	json_decref(ka->node_selector);
	json_decref(ka->tolerations);
	json_decref(ka->labels);
	free(ka);
}

/* "nova-<node id>" */
static void ka_name(char *buf, size_t len, const char *node_id)
{
	snprintf(buf, len, "nova-%s", node_id);
}

/* What a pod says about its node, in the adapter's terms. */
/* The node's message from the pod's own words: a terminated container's
 * message may be the tail of the engine's log (terminationMessagePolicy
 * FallbackToLogsOnError), so it reaches the API only as an excerpt
 * (core/text.h). */
__attribute__((format(printf, 2, 3))) static void ka_message(struct adapter_node_info *out,
							      const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	text_excerpt(out->message, sizeof(out->message), text,
		     (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1, false);
}

static void ka_pod_info(struct adapter_node_info *out, const json_t *pod)
{
	json_t *meta = json_object_get(pod, "metadata"), *st = json_object_get(pod, "status");
	const char *phase = json_string_value(json_object_get(st, "phase"));
	const char *ip = json_string_value(json_object_get(st, "podIP"));
	const char *node_id = json_string_value(json_object_get(json_object_get(meta, "labels"), KA_LABEL_NODE));
	json_t *c, *cs;
	size_t i;
	memset(out, 0, sizeof(*out));
	snprintf(out->node_id, sizeof(out->node_id), "%s", node_id ? node_id : "");
	snprintf(out->handle, sizeof(out->handle), "%s",
		 json_string_value(json_object_get(meta, "name")) ? json_string_value(json_object_get(meta, "name")) : "");
	if (json_object_get(meta, "deletionTimestamp")) {
		out->state = ADAPTER_NODE_GONE;
		snprintf(out->message, sizeof(out->message), "pod is being deleted");
		return;
	}
	if (phase && !strcmp(phase, "Running")) {
		out->state = ADAPTER_NODE_RUNNING;
		if (ip)
			snprintf(out->endpoint, sizeof(out->endpoint), "%s", ip);
		snprintf(out->message, sizeof(out->message), "pod running");
	} else if (phase && (!strcmp(phase, "Failed") || !strcmp(phase, "Succeeded"))) {
		const char *reason = json_string_value(json_object_get(st, "reason"));
		const char *msg = json_string_value(json_object_get(st, "message"));
		out->state = ADAPTER_NODE_FAILED;
		json_array_foreach(json_object_get(st, "containerStatuses"), i, cs) {
			json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
			if (term && !reason) {
				reason = json_string_value(json_object_get(term, "reason"));
				msg = json_string_value(json_object_get(term, "message"));
			}
		}
		ka_message(out, "pod %s: %s%s%s", phase, reason ? reason : "exited", msg ? ": " : "",
			   msg ? msg : "");
	} else {
		out->state = ADAPTER_NODE_PENDING;
		snprintf(out->message, sizeof(out->message), "pod pending");
		/* Why: an image that cannot be pulled, or no node that fits. */
		json_array_foreach(json_object_get(st, "containerStatuses"), i, cs) {
			json_t *w = json_object_get(json_object_get(cs, "state"), "waiting");
			const char *reason = json_string_value(json_object_get(w, "reason"));
			if (reason && strcmp(reason, "ContainerCreating") && strcmp(reason, "PodInitializing")) {
				const char *msg = json_string_value(json_object_get(w, "message"));
				ka_message(out, "pod pending: %s%s%s", reason, msg ? ": " : "", msg ? msg : "");
				return;
			}
		}
		json_array_foreach(json_object_get(st, "conditions"), i, c) {
			const char *type = json_string_value(json_object_get(c, "type"));
			const char *status = json_string_value(json_object_get(c, "status"));
			if (type && !strcmp(type, "PodScheduled") && status && !strcmp(status, "False")) {
				const char *reason = json_string_value(json_object_get(c, "reason"));
				const char *msg = json_string_value(json_object_get(c, "message"));
				ka_message(out, "pod pending: %s%s%s", reason ? reason : "Unschedulable",
					   msg ? ": " : "", msg ? msg : "");
			}
		}
	}
}

static json_t *ka_labels(const struct kube_adapter *ka, const char *node_id)
{
	json_t *l = ka->labels ? json_deep_copy(ka->labels) : json_object();
	json_object_set_new(l, KA_LABEL_MANAGED, json_string("nova"));
	json_object_set_new(l, KA_LABEL_POOL, json_string(ka->base.pool_id));
	json_object_set_new(l, KA_LABEL_NODE, json_string(node_id));
	return l;
}

/* --- events -------------------------------------------------------------------- */

/* What Nova does to its objects is told where Kubernetes users look: a
 * core/v1 Event on each Pod, Secret and Service Nova creates, replaces or
 * deletes (reasons NovaCreated, NovaReplaced, NovaDeleted), so `kubectl
 * get events` and `kubectl describe pod` tell Nova's part of the story next
 * to the scheduler's and the kubelet's. Best effort, as Kubernetes' own
 * recorders are: an event that cannot be posted (the pool's credentials
 * may not create events, the API server is busy) is not retried and never
 * fails the operation; the first such failure of an instance is logged as
 * a warning, later ones at debug level, so a pool without the permission
 * does not fill the log with one line per pod. Each event is one action
 * on one object, so count is 1 and nothing is aggregated (client-go's
 * correlator folds repeats of one event; Nova does not repeat one).
 * Rejected: events.k8s.io/v1 Events, the same objects under a newer API
 * that requires eventTime and action; core/v1 is what every API server
 * and kubectl version reads. */

#define KA_EV_CREATED "NovaCreated"
#define KA_EV_REPLACED "NovaReplaced"
#define KA_EV_DELETED "NovaDeleted"

static const char *ka_kind(const char *collection)
{
	return !strcmp(collection, "pods") ? "Pod" : !strcmp(collection, "services") ? "Service"
									     : "Secret";
}

static const char *ka_noun(const char *collection)
{
	return !strcmp(collection, "pods") ? "pod" : !strcmp(collection, "services") ? "service"
									     : "token secret";
}

/* The uid of what an API answer is about: the object, or the Status a
 * DELETE answers with once it is gone (details.uid). */
static const char *ka_answer_uid(const json_t *ans)
{
	const char *uid = json_string_value(json_object_get(json_object_get(ans, "metadata"), "uid"));
	return uid ? uid : json_string_value(json_object_get(json_object_get(ans, "details"), "uid"));
}

__attribute__((format(printf, 7, 8))) static void
ka_event(struct kube_adapter *ka, const char *kind, const char *name, const char *uid,
	 const char *reason, bool warning, const char *fmt, ...)
{
	char msg[1024], ev_name[320], ts[32], path[512];
	struct timespec now;
	struct tm tm;
	struct nova_err err;
	long status = 0;
	json_t *ans = NULL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	/* Named as client-go names them: the object's name and a time. */
	snprintf(ev_name, sizeof(ev_name), "%s.%llx", name,
		 (unsigned long long)now.tv_sec * 1000000000ULL + (unsigned long long)now.tv_nsec +
			 atomic_fetch_add(&ka->ev_seq, 1));
	const char *action = !strcmp(reason, KA_EV_CREATED) ? "Create"
			     : !strcmp(reason, KA_EV_REPLACED) ? "Replace" : "Delete";
	json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:s, "
			       "s:s, s:s, s:i, s:{s:s}, s:s, s:s}",
			       "apiVersion", "v1", "kind", "Event", "metadata", "name", ev_name,
			       "namespace", ka->ns, "involvedObject", "apiVersion", "v1", "kind", kind,
			       "namespace", ka->ns, "name", name, "reason", reason, "message", msg,
			       "type", warning ? "Warning" : "Normal", "action", action,
			       "firstTimestamp", ts, "lastTimestamp", ts, "count", 1, "source",
			       "component", "nova", "reportingComponent", "nova", "reportingInstance",
			       ka->instance);
	if (!ev)
		return;
	if (uid) /* kubectl describe finds an object's events by its uid too */
		json_object_set_new(json_object_get(ev, "involvedObject"), "uid", json_string(uid));
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", ka->ns);
	int rc = kube_request(&status, &ans, ka->kc, "POST", path, ev, NULL, &err);
	if (rc == 0 && status != 201 && status != 200)
		kube_status_error(&err, status, ans, "posting an event");
	if (rc || (status != 201 && status != 200)) {
		bool first = !atomic_exchange(&ka->ev_logged, true);
		nova_log_kv(first ? NOVA_LOG_WARN : NOVA_LOG_DEBUG, "kubernetes",
			    first ? "cannot post Kubernetes events (best effort; later failures are "
				    "logged at debug level): check that the pool's credentials may "
				    "create events"
				  : "event not posted",
			    "namespace", ka->ns, "object", name, "reason", reason, "error", err.message,
			    NULL);
	}
	json_decref(ans);
	json_decref(ev);
}

/* Create obj at collection path; AlreadyExists is fine when the existing
 * object carries our node id (a retry), an error otherwise. An object
 * created now gets a NovaCreated event; one a retry finds does not. */
static int ka_create_object(struct kube_adapter *ka, const char *collection, const char *name,
			    const json_t *obj, const struct adapter_provision_request *req,
			    const char *what, struct nova_err *err)
{
	const char *node_id = req->node_id;
	bool created = false;
	char path[512];
	long status;
	json_t *ans = NULL;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/%s", ka->ns, collection);
	int rc = kube_request(&status, &ans, ka->kc, "POST", path, obj, NULL, err);
	created = rc == 0 && status >= 200 && status < 300;
	if (rc == 0 && status == 409) {
		json_decref(ans);
		ans = NULL;
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/%s/%s", ka->ns, collection, name);
		if ((rc = kube_request(&status, &ans, ka->kc, "GET", path, NULL, NULL, err)) == 0) {
			json_t *meta = json_object_get(ans, "metadata");
			const char *owner = json_string_value(
				json_object_get(json_object_get(meta, "labels"), KA_LABEL_NODE));
			if (status == 200 && owner && !strcmp(owner, node_id) &&
			    json_object_get(meta, "deletionTimestamp"))
				/* The one being replaced is still terminating. */
				rc = nova_err_set(err, NOVA_EAGAIN, "", "%s %s: the previous one is still "
						  "terminating", what, name);
			else if (status == 200 && owner && !strcmp(owner, node_id))
				status = 201;
			else if (status == 200)
				rc = nova_err_set(err, NOVA_EFAILED, "", "%s %s exists and is not Nova's node %s",
						  what, name, node_id);
			else
				rc = kube_status_error(err, status, ans, what);
		}
	}
	if (rc == 0 && status != 200 && status != 201 && status != 202)
		rc = kube_status_error(err, status, ans, what);
	if (rc == 0 && created)
		ka_event(ka, ka_kind(collection), name, ka_answer_uid(ans), KA_EV_CREATED, false,
			 "Nova created this %s for node %s (%s)", ka_noun(collection),
			 req->node_name ? req->node_name : node_id, node_id);
	json_decref(ans);
	return rc;
}

/* Delete collection/name; gone already is fine. *uid: the uid of what
 * this deleted, "" when there was nothing (for its event). */
static int ka_delete(char uid[64], struct kube_adapter *ka, const char *collection,
		     const char *name, const char *what, struct nova_err *err)
{
	char path[512];
	long status;
	json_t *ans = NULL;
	uid[0] = '\0';
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/%s/%s", ka->ns, collection, name);
	int rc = kube_request(&status, &ans, ka->kc, "DELETE", path, NULL, NULL, err);
	if (rc == 0 && status != 200 && status != 202 && status != 404)
		rc = kube_status_error(err, status, ans, what);
	if (rc == 0 && status != 404)
		snprintf(uid, 64, "%s", ka_answer_uid(ans) ? ka_answer_uid(ans) : "");
	json_decref(ans);
	return rc;
}

static int ka_get_pod(json_t **pod, struct kube_adapter *ka, const char *name, struct nova_err *err)
{
	char path[512];
	long status;
	json_t *ans = NULL;
	*pod = NULL;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", ka->ns, name);
	int rc = kube_request(&status, &ans, ka->kc, "GET", path, NULL, NULL, err);
	if (rc == 0 && status == 200)
		*pod = ans;
	else if (rc == 0 && status == 404)
		json_decref(ans);
	else if (rc == 0) {
		rc = kube_status_error(err, status, ans, "reading the pod");
		json_decref(ans);
	}
	return rc;
}

/* An init container copies nova-sidecar from its image into a shared
 * volume; the main container runs the model image with the sidecar as its
 * entrypoint (the sidecar then starts the model server the assignments
 * name). The token comes from the Secret; the pod IP is what the sidecar
 * advertises for its engines. */
static json_t *ka_pod_spec(struct kube_adapter *ka, const struct adapter_provision_request *req,
			   const char *name, const char *token_hash)
{
	const char *gw = ka->gateway_url[0] ? ka->gateway_url : req->gateway_url;
	char count[16];
	snprintf(count, sizeof(count), "%u", req->accelerator_count);
	json_t *amount = json_object();
	json_object_set_new(amount, ka->resource, json_string(count));
	json_t *mounts = json_pack("[{s:s, s:s}]", "name", "nova-bin", "mountPath", "/nova/bin");
	json_t *init = json_pack("{s:s, s:s, s:s, s:[s, s, s], s:O}", "name", "nova-sidecar-install",
				 "image", ka->sidecar_image, "imagePullPolicy", ka->pull_policy,
				 "command", "cp", "/usr/local/bin/nova-sidecar", "/nova/bin/nova-sidecar",
				 "volumeMounts", mounts);
	json_t *env = json_pack("[{s:s, s:{s:{s:s, s:s}}}, {s:s, s:{s:{s:s}}}]", "name",
				"NOVA_NODE_TOKEN", "valueFrom", "secretKeyRef", "name", name, "key", "token",
				"name", "NOVA_POD_IP", "valueFrom", "fieldRef", "fieldPath", "status.podIP");
	json_t *main_c = json_pack("{s:s, s:s, s:s, s:[s], s:[s, s, s, s, s, s], s:o, s:{s:O, s:O}, s:O}",
				   "name", "model", "image", ka->model_image, "imagePullPolicy",
				   ka->pull_policy, "command", "/nova/bin/nova-sidecar", "args", "--gateway",
				   gw, "--node-id", req->node_id, "--advertise-host", "$(NOVA_POD_IP)",
				   "env", env, "resources", "requests", amount, "limits", amount,
				   "volumeMounts", mounts);
	json_t *spec = json_pack("{s:s, s:[{s:s, s:{}}], s:[o], s:[o]}", "restartPolicy", "Never",
				 "volumes", "name", "nova-bin", "emptyDir", "initContainers", init,
				 "containers", main_c);
	json_t *pod = json_pack("{s:s, s:s, s:{s:s, s:s, s:o, s:{s:s}}, s:o}", "apiVersion", "v1",
				"kind", "Pod", "metadata", "name", name, "namespace", ka->ns, "labels",
				ka_labels(ka, req->node_id), "annotations", KA_ANNOT_TOKEN, token_hash,
				"spec", spec);
	json_decref(amount);
	json_decref(mounts);
	if (pod && ka->node_selector && json_object_size(ka->node_selector))
		json_object_set(spec, "nodeSelector", ka->node_selector);
	if (pod && ka->tolerations && json_array_size(ka->tolerations))
		json_object_set(spec, "tolerations", ka->tolerations);
	return pod;
}

static int ka_provision(struct adapter_node_info *out, struct adapter *ad,
			const struct adapter_provision_request *req, struct nova_err *err)
{
	struct kube_adapter *ka = ka_from(ad);
	char name[64], hash[SECRET_HEX_SHA256_LEN], path[512];
	json_t *pod = NULL, *obj;
	long status;
	int rc;
	if (!req->node_token || !req->gateway_url || !*req->gateway_url)
		return nova_err_set(err, NOVA_EFAILED, "", "a pod needs the gateway url and a node token");
	ka_name(name, sizeof(name), req->node_id);
	secret_sha256_hex(hash, req->node_token, strlen(req->node_token));
	/* The token: a Secret, replaced when it exists (a retry rotates it). */
	char *b64 = kube_base64_encode(req->node_token, strlen(req->node_token));
	obj = b64 ? json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
			      "Secret", "metadata", "name", name, "namespace", ka->ns, "labels",
			      ka_labels(ka, req->node_id), "type", "Opaque", "data", "token", b64)
		  : NULL;
	if (b64) {
		explicit_bzero(b64, strlen(b64));
		free(b64);
	}
	if (!obj)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ka->ns, name);
	rc = kube_request(&status, NULL, ka->kc, "PUT", path, obj, NULL, err);
	if (rc == 0 && status == 404)
		rc = ka_create_object(ka, "secrets", name, obj, req, "creating the token secret", err);
	else if (rc == 0 && status != 200 && status != 201)
		rc = kube_status_error(err, status, NULL, "updating the token secret");
	json_t *token_data = json_object_get(obj, "data");
	const char *t = json_string_value(json_object_get(token_data, "token"));
	if (t)
		explicit_bzero((char *)t, strlen(t));
	json_decref(obj);
	if (rc)
		return rc;
	/* The pod: kept when it runs with this token, replaced otherwise. */
	if ((rc = ka_get_pod(&pod, ka, name, err)))
		return rc;
	if (pod) {
		const char *have = json_string_value(json_object_get(
			json_object_get(json_object_get(pod, "metadata"), "annotations"), KA_ANNOT_TOKEN));
		if (have && !strcmp(have, hash)) {
			ka_pod_info(out, pod);
			json_decref(pod);
			return 0;
		}
		json_decref(pod);
		pod = NULL;
		char uid[64];
		if ((rc = ka_delete(uid, ka, "pods", name, "replacing the pod", err)))
			return rc;
		if (uid[0])
			ka_event(ka, "Pod", name, uid, KA_EV_REPLACED, false,
				 "Nova replaced this pod: node %s (%s) was provisioned again with a new "
				 "token", req->node_name ? req->node_name : req->node_id, req->node_id);
	}
	if (!(obj = ka_pod_spec(ka, req, name, hash)))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	rc = ka_create_object(ka, "pods", name, obj, req, "creating the pod", err);
	json_decref(obj);
	if (rc)
		return rc;
	/* A headless Service: a stable DNS name for the node's engines. */
	obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:{s:s, s:{s:s}}}", "apiVersion", "v1", "kind",
			"Service", "metadata", "name", name, "namespace", ka->ns, "labels",
			ka_labels(ka, req->node_id), "spec", "clusterIP", "None", "selector",
			KA_LABEL_NODE, req->node_id);
	if (!obj)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	rc = ka_create_object(ka, "services", name, obj, req, "creating the service", err);
	json_decref(obj);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	snprintf(out->node_id, sizeof(out->node_id), "%s", req->node_id);
	snprintf(out->handle, sizeof(out->handle), "%s", name);
	out->state = ADAPTER_NODE_PENDING;
	snprintf(out->message, sizeof(out->message), "pod created");
	nova_log_kv(NOVA_LOG_INFO, "kubernetes", "pod created", "pod", name, "namespace", ka->ns, NULL);
	return 0;
}

static int ka_deprovision(struct adapter *ad, const struct adapter_node_ref *node,
			  struct nova_err *err)
{
	struct kube_adapter *ka = ka_from(ad);
	char name[64];
	int rc;
	static const char *const collections[] = {"pods", "services", "secrets"};
	static const char *const what[] = {"deleting the pod", "deleting the service",
					   "deleting the token secret"};
	ka_name(name, sizeof(name), node->node_id);
	for (size_t i = 0; i < sizeof(collections) / sizeof(collections[0]); i++) {
		char uid[64];
		if ((rc = ka_delete(uid, ka, collections[i], name, what[i], err)))
			return rc;
		if (uid[0])
			ka_event(ka, ka_kind(collections[i]), name, uid,
				 node->replaced ? KA_EV_REPLACED : KA_EV_DELETED, node->replaced,
				 "Nova %s this %s of node %s: %s",
				 node->replaced ? "replaced" : "deleted", ka_noun(collections[i]),
				 node->node_id, node->reason ? node->reason : "no longer needed");
	}
	return 0;
}

static int ka_status(struct adapter_node_info *out, struct adapter *ad,
		     const struct adapter_node_ref *node, struct nova_err *err)
{
	struct kube_adapter *ka = ka_from(ad);
	char name[64];
	json_t *pod = NULL;
	bool synced;
	int rc;
	ka_name(name, sizeof(name), node->node_id);
	pthread_mutex_lock(&ka->inf->lock);
	synced = ka->inf->synced;
	if (synced)
		pod = json_incref(json_object_get(ka->inf->pods, name));
	pthread_mutex_unlock(&ka->inf->lock);
	if (!synced && (rc = ka_get_pod(&pod, ka, name, err)))
		return rc;
	if (!pod) {
		memset(out, 0, sizeof(*out));
		snprintf(out->node_id, sizeof(out->node_id), "%s", node->node_id);
		out->state = ADAPTER_NODE_GONE;
		snprintf(out->message, sizeof(out->message), "no pod %s", name);
		return 0;
	}
	ka_pod_info(out, pod);
	json_decref(pod);
	return 0;
}

/* Nodes' allocatable accelerators minus what Nova's pods request. */
static int ka_discover(struct adapter_resources *out, struct adapter *ad, struct nova_err *err)
{
	struct kube_adapter *ka = ka_from(ad);
	json_t *nodes = NULL, *pods = NULL, *n, *p;
	long status;
	size_t i;
	char path[512];
	int rc = kube_request(&status, &nodes, ka->kc, "GET", "/api/v1/nodes", NULL, NULL, err);
	if (rc == 0 && status != 200)
		rc = kube_status_error(err, status, nodes, "listing nodes");
	if (rc == 0) {
		snprintf(path, sizeof(path), "/api/v1/pods?labelSelector=" KA_LABEL_MANAGED "%%3Dnova");
		rc = kube_request(&status, &pods, ka->kc, "GET", path, NULL, NULL, err);
		if (rc == 0 && status != 200)
			rc = kube_status_error(err, status, pods, "listing Nova's pods");
	}
	if (rc) {
		json_decref(nodes);
		json_decref(pods);
		return rc;
	}
	size_t cnt = json_array_size(json_object_get(nodes, "items"));
	out->capacity = calloc(cnt ? cnt : 1, sizeof(*out->capacity));
	if (!out->capacity) {
		json_decref(nodes);
		json_decref(pods);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	json_array_foreach(json_object_get(nodes, "items"), i, n) {
		const char *nname = json_string_value(json_object_get(json_object_get(n, "metadata"), "name"));
		json_t *labels = json_object_get(json_object_get(n, "metadata"), "labels");
		const char *alloc = json_string_value(
			json_object_get(json_object_get(json_object_get(n, "status"), "allocatable"), ka->resource));
		unsigned have = alloc ? (unsigned)strtoul(alloc, NULL, 10) : 0, used = 0;
		size_t j;
		if (have == 0 || json_is_true(json_object_get(json_object_get(n, "spec"), "unschedulable")))
			continue;
		json_array_foreach(json_object_get(pods, "items"), j, p) {
			const char *on = json_string_value(json_object_get(json_object_get(p, "spec"), "nodeName"));
			const char *phase = json_string_value(json_object_get(json_object_get(p, "status"), "phase"));
			json_t *c;
			size_t k;
			if (!on || !nname || strcmp(on, nname) || (phase && (!strcmp(phase, "Failed") ||
									     !strcmp(phase, "Succeeded"))))
				continue;
			json_array_foreach(json_object_get(json_object_get(p, "spec"), "containers"), k, c) {
				const char *r = json_string_value(json_object_get(
					json_object_get(json_object_get(c, "resources"), "requests"), ka->resource));
				used += r ? (unsigned)strtoul(r, NULL, 10) : 0;
			}
		}
		const char *product = json_string_value(json_object_get(labels, "nvidia.com/gpu.product"));
		const char *mem = json_string_value(json_object_get(labels, "nvidia.com/gpu.memory"));
		const char *type = ka->type[0] ? ka->type : product ? product : "gpu";
		struct adapter_capacity *cap = NULL;
		for (size_t k = 0; k < out->n_capacity && !cap; k++)
			if (!strcmp(out->capacity[k].accelerator_type, type))
				cap = &out->capacity[k];
		if (!cap) {
			cap = &out->capacity[out->n_capacity++];
			snprintf(cap->accelerator_type, sizeof(cap->accelerator_type), "%s", type);
			cap->memory_mib = ka->memory_mib ? ka->memory_mib
							 : mem ? strtoull(mem, NULL, 10) : 0;
		}
		cap->total += have;
		cap->free += used >= have ? 0 : have - used;
		unsigned size = ka->per_pod ? ka->per_pod : have;
		if (size <= have && size > cap->max_per_node)
			cap->max_per_node = size;
	}
	json_decref(nodes);
	json_decref(pods);
	return 0;
}

static int ka_list(struct adapter_node_list *out, struct adapter *ad, struct nova_err *err)
{
	struct kube_adapter *ka = ka_from(ad);
	char path[512], sel[128];
	json_t *ans = NULL, *p;
	long status;
	size_t i;
	ka_selector(sel, sizeof(sel), ad->pool_id);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods?%s", ka->ns, sel);
	int rc = kube_request(&status, &ans, ka->kc, "GET", path, NULL, NULL, err);
	if (rc == 0 && status != 200)
		rc = kube_status_error(err, status, ans, "listing pods");
	if (rc == 0) {
		size_t n = json_array_size(json_object_get(ans, "items"));
		out->items = calloc(n ? n : 1, sizeof(*out->items));
		if (!out->items)
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		json_array_foreach(json_object_get(ans, "items"), i, p) {
			if (!out->items)
				break;
			ka_pod_info(&out->items[out->n], p);
			if (out->items[out->n].node_id[0])
				out->n++;
		}
	}
	json_decref(ans);
	return rc;
}

/* Every pod is made on demand. */
static bool ka_nodes_ephemeral(const json_t *config)
{
	(void)config;
	return true;
}

const struct adapter_ops kube_adapter_ops = {
	.name = "kubernetes",
	.nodes_ephemeral = ka_nodes_ephemeral,
	.validate = ka_validate,
	.create = ka_create,
	.destroy = ka_destroy,
	.provision_node = ka_provision,
	.deprovision_node = ka_deprovision,
	.node_status = ka_status,
	.discover_resources = ka_discover,
	.list_nodes = ka_list,
};
