/* GET /v1/deployments/{deployment}/replicas/{replica}/logs?tail=N&follow=true
 * (&stage=S): a replica's engine output, proxied from its node's sidecar.
 *
 * The deployment module says which node runs the replica (its serving
 * stage unless stage is given), the inventory where that node's sidecar
 * serves its logs and this novad's key for it (inventory/inventory.h,
 * sidecar/logs.h), and a thread of the request's own reads the sidecar's
 * answer into a bounded buffer that the client's connection drains: the
 * connection waits suspended (no thread, no polling) while the buffer is
 * empty and the thread wakes it alone (core/http.h struct http_waker), so
 * a line the engine writes reaches the client within milliseconds. A full
 * buffer stops the thread reading, so a slow client slows the sidecar's
 * stream rather than novad's memory. The sidecar's keep-alive NUL bytes
 * are dropped here; the client's text is the engine's lines only
 * (text/plain, chunked), as curl and kubectl-style clients expect.
 *
 * Rejected: Server-Sent Events (clients would have to strip "data: " from
 * every line; `curl` users expect the lines as they are), and reading the
 * sidecar from the connection's own thread (a follow would hold a thread
 * of the shared pool for as long as it lasts).
 *
 * Bounds: GW_LOGS_MAX_STREAMS open at once in this novad and
 * GW_LOGS_MAX_PER_NODE per node (429 past them), GW_LOGS_BUF bytes held
 * per stream, tail at most GW_LOGS_TAIL_MAX lines (the sidecar cuts
 * lines at 8 KiB and reads at most 4 MiB for a tail). A follow ends when
 * the client goes, the replica is no longer on the node, or the sidecar
 * goes silent past its keep-alives. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/http_client.h"
#include "core/log.h"
#include "core/notify.h"
#include "deployments/deployment.h"
#include "gateway/gw_int.h"
#include "inventory/inventory.h"

#define GW_LOGS_TAIL_DEFAULT 100
#define GW_LOGS_TAIL_MAX 10000
#define GW_LOGS_BUF (256u << 10)
#define GW_LOGS_ERROR_MAX 4096
/* How long the request waits for the sidecar's first answer, holding a
 * thread of the server's pool: short, so that requests for unreachable
 * nodes cannot hold the pool (a refusal after it is written into the
 * stream as the last line, "novad: ..."). */
#define GW_LOGS_CONNECT_MS 3000

struct gw_logs {
	struct gw *gw;
	char node[GW_LOGS_NODE_LEN];
	char url[512];
	char key[INVENTORY_LOGS_KEY_HEX + 1];
	bool follow;
	pthread_mutex_t lock;
	pthread_cond_t cond;      /* CLOCK_MONOTONIC: status known, room, the end */
	char *buf;
	size_t len, off;
	long status;              /* the sidecar's; 0 until known */
	bool done, reader_gone, streaming;
	int refs;
	_Atomic int cancel;
	char error[GW_LOGS_ERROR_MAX]; /* a refusal's body, or the transport error */
	size_t error_len;
	struct http_waker *waker;
};

/* --- the counts ------------------------------------------------------------------------ */

static int gw_logs_take(struct gw *gw, const char *node, struct nova_err *err)
{
	unsigned same = 0;
	int rc = 0;
	pthread_mutex_lock(&gw->logs_lock);
	for (unsigned i = 0; i < gw->logs_open; i++)
		same += !strcmp(gw->logs_nodes[i], node);
	if (gw->logs_open >= GW_LOGS_MAX_STREAMS)
		rc = nova_err_set(err, NOVA_ETOOMANY, "", "%u log streams are open, the most this "
				  "server takes", gw->logs_open);
	else if (same >= GW_LOGS_MAX_PER_NODE)
		rc = nova_err_set(err, NOVA_ETOOMANY, "", "%u log streams of this node are open, the "
				  "most one node serves", same);
	else
		snprintf(gw->logs_nodes[gw->logs_open++], GW_LOGS_NODE_LEN, "%s", node);
	pthread_mutex_unlock(&gw->logs_lock);
	return rc;
}

static void gw_logs_give(struct gw *gw, const char *node)
{
	pthread_mutex_lock(&gw->logs_lock);
	for (unsigned i = 0; i < gw->logs_open; i++)
		if (!strcmp(gw->logs_nodes[i], node)) {
			memcpy(gw->logs_nodes[i], gw->logs_nodes[--gw->logs_open], GW_LOGS_NODE_LEN);
			break;
		}
	pthread_cond_broadcast(&gw->logs_cond);
	pthread_mutex_unlock(&gw->logs_lock);
}

void gw_logs_wait_closed(struct gw *gw, unsigned timeout_ms)
{
	struct timespec until;
	notify_deadline(&until, CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&gw->logs_lock);
	while (gw->logs_open > 0 &&
	       pthread_cond_timedwait(&gw->logs_cond, &gw->logs_lock, &until) == 0)
		;
	pthread_mutex_unlock(&gw->logs_lock);
}

/* --- one stream ------------------------------------------------------------------------ */

static void gw_logs_unref(struct gw_logs *l)
{
	pthread_mutex_lock(&l->lock);
	bool last = --l->refs == 0;
	pthread_mutex_unlock(&l->lock);
	if (!last)
		return;
	gw_logs_give(l->gw, l->node);
	http_waker_release(l->waker);
	explicit_bzero(l->key, sizeof(l->key));
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l->buf);
	free(l);
}

static void gw_logs_on_status(void *ctx, long status)
{
	struct gw_logs *l = ctx;
	pthread_mutex_lock(&l->lock);
	l->status = status;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* The sidecar's bytes: into the buffer (NULs, its keep-alives, dropped),
 * waiting for room while it is full; a refusal's body kept apart. */
static int gw_logs_on_data(void *ctx, const char *data, size_t len)
{
	struct gw_logs *l = ctx;
	pthread_mutex_lock(&l->lock);
	if (l->status != 200) {
		size_t n = len < sizeof(l->error) - 1 - l->error_len ? len : sizeof(l->error) - 1 - l->error_len;
		memcpy(l->error + l->error_len, data, n);
		l->error_len += n;
		l->error[l->error_len] = '\0';
		pthread_mutex_unlock(&l->lock);
		return 0;
	}
	for (size_t i = 0; i < len;) {
		if (l->reader_gone) {
			pthread_mutex_unlock(&l->lock);
			return 1;
		}
		if (l->len == GW_LOGS_BUF) {
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += 1;
			pthread_mutex_unlock(&l->lock);
			http_waker_wake(l->waker);
			pthread_mutex_lock(&l->lock);
			if (l->len == GW_LOGS_BUF && !l->reader_gone)
				pthread_cond_timedwait(&l->cond, &l->lock, &until);
			continue;
		}
		if (data[i] != '\0')
			l->buf[l->len++] = data[i];
		i++;
	}
	bool wake = l->len > l->off;
	pthread_mutex_unlock(&l->lock);
	if (wake)
		http_waker_wake(l->waker);
	return 0;
}

static void *gw_logs_main(void *arg)
{
	struct gw_logs *l = arg;
	struct nova_err err;
	long status = 0;
	/* Follows last as long as there is something to follow (the sidecar
	 * sends keep-alives, so 60 s of silence means it is gone); a tail is
	 * read in one go. */
	struct http_client_request req = {.method = "GET", .url = l->url, .bearer_token = l->key,
					  .timeout_ms = l->follow ? 0 : 30000, .cancel = &l->cancel,
					  .on_status = gw_logs_on_status};
	nova_err_clear(&err);
	int rc = http_client_stream(&status, &req, gw_logs_on_data, l, &err);
	explicit_bzero(l->key, sizeof(l->key));
	pthread_mutex_lock(&l->lock);
	if (!l->status)
		l->status = rc ? -1 : status;
	if (rc && !l->error_len) {
		l->error_len = (size_t)snprintf(l->error, sizeof(l->error), "%s", err.message);
		if (l->error_len >= sizeof(l->error))
			l->error_len = sizeof(l->error) - 1;
	}
	if (l->streaming && l->status != 200 && !l->reader_gone && l->len + 1 < GW_LOGS_BUF) {
		/* Answered 200 before the sidecar said no: the reason as the
		 * last line, so the reader sees why nothing came. */
		json_t *j = l->status > 0 ? json_loads(l->error, 0, NULL) : NULL;
		const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
		int n = snprintf(l->buf + l->len, GW_LOGS_BUF - l->len, "novad: the sidecar of node %s: %s\n",
				 l->node, msg ? msg : l->status > 0 ? "refused" : l->error);
		if (n > 0)
			l->len += (size_t)n < GW_LOGS_BUF - l->len ? (size_t)n : GW_LOGS_BUF - l->len - 1;
		json_decref(j);
	}
	l->done = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	http_waker_wake(l->waker);
	gw_logs_unref(l);
	return NULL;
}

static long gw_logs_read(void *arg, char *buf, size_t max)
{
	struct gw_logs *l = arg;
	long n;
	pthread_mutex_lock(&l->lock);
	if (l->off < l->len) {
		size_t k = l->len - l->off < max ? l->len - l->off : max;
		memcpy(buf, l->buf + l->off, k);
		l->off += k;
		if (l->off == l->len) {
			l->off = l->len = 0;
			pthread_cond_broadcast(&l->cond); /* room again */
		}
		n = (long)k;
	} else {
		n = l->done ? HTTP_STREAM_END : HTTP_STREAM_WAIT;
	}
	pthread_mutex_unlock(&l->lock);
	return n;
}

static void gw_logs_reader_gone(void *arg)
{
	struct gw_logs *l = arg;
	pthread_mutex_lock(&l->lock);
	l->reader_gone = true;
	atomic_store(&l->cancel, 1);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	gw_logs_unref(l);
}

/* A query value as a bounded count; -1 when absent. */
static int gw_logs_count(long long *out, const char *v, const char *name, long long max,
			 struct nova_err *err)
{
	char *end;
	if (!v)
		return 0;
	long long n = strtoll(v, &end, 10);
	if (!*v || *end || *v == '-' || *v == '+' || n < 0 || n > max)
		return nova_err_set(err, NOVA_EINVAL, name, "%s must be a number from 0 to %lld", name, max);
	*out = n;
	return 0;
}

/* Why the sidecar did not serve, as the client's error. */
static void gw_logs_refused(struct http_response *res, struct gw_logs *l, const char *node)
{
	json_t *j = l->status > 0 ? json_loads(l->error, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
	struct nova_err err;
	if (l->status < 0) {
		nova_err_set(&err, NOVA_EUNAVAIL, "", "cannot reach the sidecar of node %s: %s", node,
			     l->error);
	} else if (l->status == 401) {
		nova_err_set(&err, NOVA_EUNAVAIL, "", "the sidecar of node %s does not hold this novad's "
			     "log key yet", node);
		nova_err_set_hint(&err, "it gets it with its next heartbeat answer: try again in a few seconds");
	} else if (l->status == 404) {
		nova_err_set(&err, NOVA_ENOTFOUND, "replica", "%s", msg ? msg : "the node has no log of this replica");
	} else {
		nova_err_set(&err, NOVA_EUNAVAIL, "", "the sidecar of node %s answered %ld%s%s", node,
			     l->status, msg ? ": " : "", msg ? msg : "");
	}
	json_decref(j);
	http_response_error(res, &err);
}

void gw_deployment_logs(struct gw *gw, struct gw_call *call, struct http_request *req,
			struct http_response *res)
{
	struct nova_err err;
	struct deployment_replica_place place;
	struct inventory_logs_access access;
	long long ordinal = -1, tail = GW_LOGS_TAIL_DEFAULT, stage = -1;
	const char *r = http_request_param(req, "replica"), *f = http_request_query(req, "follow");
	bool follow = false;
	(void)call;
	nova_err_clear(&err);
	if (gw_logs_count(&ordinal, r, "replica", 100000, &err) ||
	    gw_logs_count(&tail, http_request_query(req, "tail"), "tail", GW_LOGS_TAIL_MAX, &err) ||
	    gw_logs_count(&stage, http_request_query(req, "stage"), "stage", 15, &err)) {
		if (!strcmp(err.field, "replica"))
			nova_err_set(&err, NOVA_EINVAL, "replica",
				     "replica must be the replica's number (its ordinal: 0, 1, ...)");
		http_response_error(res, &err);
		return;
	}
	if (f && !strcmp(f, "true"))
		follow = true;
	else if (f && strcmp(f, "false") != 0) {
		http_response_errorf(res, NOVA_EINVAL, "follow", "follow must be true or false");
		return;
	}
	if (deployment_replica_locate(&place, gw->deps.db, http_request_param(req, "deployment"), ordinal,
				      stage, &err) ||
	    inventory_logs_access(&access, gw->deps.inventory, place.node_id, &err)) {
		http_response_error(res, &err);
		return;
	}
	if (gw_logs_take(gw, place.node_id, &err)) {
		explicit_bzero(&access, sizeof(access));
		http_response_header_add(res, "Retry-After", "5");
		http_response_error(res, &err);
		return;
	}
	struct gw_logs *l = calloc(1, sizeof(*l));
	if (!l || !(l->buf = malloc(GW_LOGS_BUF)) || !(l->waker = http_waker_create())) {
		if (l)
			free(l->buf);
		free(l);
		explicit_bzero(&access, sizeof(access));
		gw_logs_give(gw, place.node_id);
		http_response_errorf(res, NOVA_EINTERNAL, "", "out of memory");
		return;
	}
	l->gw = gw;
	l->follow = follow;
	snprintf(l->node, sizeof(l->node), "%s", place.node_id);
	snprintf(l->url, sizeof(l->url), "%s/v1/logs/%s?stage=%lld&tail=%lld%s", access.url,
		 place.replica_id, place.stage, tail, follow ? "&follow=1" : "");
	memcpy(l->key, access.key, sizeof(l->key));
	explicit_bzero(&access, sizeof(access));
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->refs = 2; /* the thread's and the handler's (then the response's) */
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, gw_logs_main, l) != 0) {
		pthread_attr_destroy(&attr);
		l->refs = 1;
		gw_logs_unref(l);
		http_response_errorf(res, NOVA_EINTERNAL, "", "cannot start a thread");
		return;
	}
	pthread_attr_destroy(&attr);
	/* The sidecar's status first, so a refusal is answered as one. */
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += GW_LOGS_CONNECT_MS / 1000;
	pthread_mutex_lock(&l->lock);
	while (!l->status && !l->done &&
	       pthread_cond_timedwait(&l->cond, &l->lock, &until) == 0)
		;
	/* A refusal's body comes right after its status. */
	while (l->status > 0 && l->status != 200 && !l->done &&
	       pthread_cond_timedwait(&l->cond, &l->lock, &until) == 0)
		;
	long status = l->status;
	bool done = l->done;
	l->streaming = status == 200 || (status == 0 && !done);
	pthread_mutex_unlock(&l->lock);
	if (status == 200 || (status == 0 && !done)) {
		/* Answered (or still connecting: the stream waits for it). */
		http_response_stream(res, 200, "text/plain; charset=utf-8", gw_logs_read, l,
				     gw_logs_reader_gone);
		http_response_stream_waker(res, l->waker);
		http_response_header_add(res, "Cache-Control", "no-cache");
		http_response_header_add(res, "X-Content-Type-Options", "nosniff");
		return;
	}
	gw_logs_refused(res, l, place.node_id);
	gw_logs_reader_gone(l);
}
