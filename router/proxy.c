/* The request path: event loops, each one thread owning a libmicrohttpd
 * daemon (external epoll mode, suspend/resume) for its clients and a
 * libcurl multi handle (socket interface) for its upstream requests, both
 * driven from one epoll set. A request never leaves the thread that
 * accepted it: the handler suspends the client's connection, adds an easy
 * handle to the same thread's multi, and curl's callbacks resume the
 * connection when there is something to send. Each loop has its own
 * listening socket on the same port (SO_REUSEPORT), so the kernel spreads
 * connections over the loops and nothing is shared on the way but the
 * table (by reference) and the replicas' counters (atomics).
 *
 * Rejected:
 *  - libmicrohttpd's internal thread pool with a blocking curl_easy_perform
 *    per request: a thread per request in flight, so 5,000 streams are
 *    5,000 threads (tens of GiB of stacks reserved, and a context switch
 *    per token).
 *  - libmicrohttpd's internal threads plus one libcurl multi thread (as
 *    the brief sketched): every request crosses threads twice (a queue and
 *    an eventfd each way) and the one curl thread caps the whole router at
 *    one core; here there is no hand-off and N loops use N cores.
 *  - libevent's evhttp for both sides: one loop per thread works as well,
 *    but its server answers a body over the cap (and other framing errors)
 *    with its own HTML page, with no hook in 2.1 to give OpenAI's error
 *    shape, and its client reconnects and pools by hand; libcurl retries a
 *    reused keep-alive connection that the replica had closed by itself,
 *    which must not count as the replica failing.
 *  - h2o's library: not packaged for Debian 12 as a library to build on.
 *
 * Backpressure: a stream's bytes wait in its buffer until the client's
 * socket takes them; past RT_OUT_HIGH the upstream transfer is paused
 * (CURL_WRITEFUNC_PAUSE) and resumed when the client has read it, so a
 * slow reader costs a bounded buffer, not the router's memory. A client
 * that goes away while its request waits (suspended, so libmicrohttpd is
 * not reading its socket) is noticed by an EPOLLRDHUP watch on the socket
 * in the loop's own set: its upstream request is cancelled at once. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/textbuf.h"
#include "router/router_int.h"

#define RT_OUT_HIGH (256u << 10)   /* pause the upstream past this much unsent */
#define RT_MAX_TRIED 11            /* max_retries is at most 10 */

/* What an epoll event belongs to: the first member of each watched
 * object. */
enum rt_ev_kind { RT_EV_MHD = 1, RT_EV_WAKE, RT_EV_CURL, RT_EV_CLIENT };

struct rt_sock {
	enum rt_ev_kind kind;
	curl_socket_t fd;
};

struct rt_req;

/* A client connection: in the loop's epoll set for EPOLLRDHUP (edge
 * triggered) from its accept to its close, so a close is seen while its
 * request is suspended (libmicrohttpd reads nothing then). Registered once
 * per connection, not per request: the syscalls of a keep-alive request
 * stay libmicrohttpd's and libcurl's own. */
struct rt_conn {
	enum rt_ev_kind kind;       /* RT_EV_CLIENT */
	int fd;
	bool watched;
	struct rt_req *waiting;     /* its request while suspended, else NULL */
};

#define RT_EASY_CACHE 256

struct rt_loop {
	struct router *r;
	unsigned index;
	pthread_t thread;
	bool running;
	int epfd, wakefd, listen_fd;
	enum rt_ev_kind mhd_kind, wake_kind;
	struct MHD_Daemon *mhd;
	CURLM *multi;
	long long curl_deadline_ms; /* -1: none */
	struct curl_slist *headers, *headers_sse; /* shared by the loop's requests */
	atomic_bool stop;
	uint64_t rnd;
	struct rt_req *reqs;        /* every live request, for the stop */
	/* Requests waiting for a replica, oldest first (one timeout for all,
	 * so also by deadline), and the table generation last looked at. */
	struct rt_req *wait_head, *wait_tail;
	long long wait_gen;
	/* Easy handles kept for the next requests: an easy handle is a few
	 * KiB of allocations to set up, per request otherwise. */
	CURL *easy_cache[RT_EASY_CACHE];
	unsigned n_easy_cache;
};

enum rt_kind { RT_K_CHAT, RT_K_COMPLETIONS, RT_K_EMBEDDINGS, RT_K_MODELS, RT_K_HEALTH, RT_K_METRICS };

struct rt_req {
	struct rt_loop *loop;
	struct rt_conn *cn;         /* its connection (NULL: unknown) */
	struct rt_req *prev, *next;
	struct MHD_Connection *conn;
	enum rt_kind kind;
	const char *path;           /* upstream path */
	struct textbuf body;
	bool too_big;               /* over the cap: the rest is read and dropped */
	size_t dropped;
	bool started;               /* the upstream part began */
	bool suspended, reader_waiting, client_gone;
	/* The route: the table is held while the request lives. */
	struct router_table *table;
	const struct router_route *route;
	bool stream;
	/* The current attempt. */
	CURL *easy;
	struct router_replica *replica;
	struct router_replica *tried[RT_MAX_TRIED];
	size_t n_tried;
	long status;
	char content_type[128];
	long long content_length;   /* -1: unknown */
	bool headers_done, discard, done, failed, paused;
	char fail_why[128];
	/* The answer. */
	bool committed;             /* a response is queued to the client */
	int status_sent;
	int err_status;             /* an error to answer with when resumed */
	char *err_body;
	const char *err_retry_after;
	struct textbuf out;         /* upstream bytes not yet given to the client */
	size_t out_off;
	long long started_ms;
	long long first_byte_ms;    /* from the replica, since started; -1: none yet */
	long long attempt_ms;       /* the current attempt was sent */
	long long attempt_ttft_ms;  /* its first body byte, since attempt_ms; -1: none yet */
	size_t mstat;               /* rt_metrics entry + 1; 0: none */
	/* What the policy picks by (router_pick_hint), kept for retries. */
	char session[256];
	uint64_t *prefix;
	size_t n_prefix;
	/* Waiting for a replica (the loop's wait list). */
	bool queued;
	long long wait_until_ms;
	struct rt_req *wprev, *wnext;
	size_t widx;                /* rt_metrics entry + 1 of the wait */
	struct router_usage usage;  /* tokens in the answer, as it passes */
};

/* --- answers ----------------------------------------------------------------- */

/* OpenAI's error object. type follows OpenAI's: invalid_request_error for
 * what the caller can fix, authentication_error, permission_error,
 * rate_limit_error, server_error. */
__attribute__((format(printf, 4, 0))) static char *rt_error_json(const char *type,
								   const char *code,
								   const char *param,
								   const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	json_t *j = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", msg, "type", type,
			      "param", param ? json_string(param) : json_null(), "code",
			      code ? json_string(code) : json_null());
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return text;
}

static enum MHD_Result rt_queue_text(struct rt_req *q, int status, const char *ctype, char *text,
				     const char *retry_after)
{
	struct MHD_Response *res;
	size_t len = text ? strlen(text) : 0;
	res = MHD_create_response_from_buffer(len, text ? text : (char *)"",
					      text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!res) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (retry_after)
		MHD_add_response_header(res, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
	if (status == 401)
		MHD_add_response_header(res, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"nova\"");
	enum MHD_Result ok = MHD_queue_response(q->conn, (unsigned)status, res);
	MHD_destroy_response(res);
	q->committed = true;
	q->status_sent = status;
	return ok;
}

static enum MHD_Result rt_answer_error(struct rt_req *q, int status, const char *type,
				       const char *code, const char *param, const char *retry_after,
				       const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static enum MHD_Result rt_answer_error(struct rt_req *q, int status, const char *type,
				       const char *code, const char *param, const char *retry_after,
				       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = rt_error_json(type, code, param, fmt, ap);
	va_end(ap);
	return rt_queue_text(q, status, "application/json", text, retry_after);
}

/* The same, kept to be answered when the handler runs again (from curl's
 * side, where no response can be queued). */
static void rt_set_error(struct rt_req *q, int status, const char *type, const char *code,
			 const char *retry_after, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void rt_set_error(struct rt_req *q, int status, const char *type, const char *code,
			 const char *retry_after, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	free(q->err_body);
	q->err_body = rt_error_json(type, code, NULL, fmt, ap);
	va_end(ap);
	q->err_status = status;
	q->err_retry_after = retry_after;
}

/* --- suspend, resume, and the client's socket --------------------------------- */

static void rt_suspend(struct rt_req *q)
{
	if (q->suspended)
		return;
	MHD_suspend_connection(q->conn);
	q->suspended = true;
	if (q->cn)
		q->cn->waiting = q;
}

static void rt_resume(struct rt_req *q)
{
	if (!q->suspended)
		return;
	if (q->cn)
		q->cn->waiting = NULL;
	q->suspended = false;
	q->reader_waiting = false;
	MHD_resume_connection(q->conn);
}

/* Something happened upstream: wake the client's side when it waits for
 * exactly that. */
static void rt_attention(struct rt_req *q)
{
	if (!q->suspended)
		return;
	if (q->reader_waiting ? (q->out.len > q->out_off || q->done)
			      : (q->headers_done || q->done || q->err_status))
		rt_resume(q);
}

/* --- upstream ------------------------------------------------------------------ */

/* The current attempt's outcome in its version's window (a replica
 * without a version has no entry): its time to the first byte counts when
 * the replica answered below 500. */
static void rt_attempt_record(struct rt_req *q, bool failed)
{
	struct router_replica *rep = q->replica;
	if (!rep || !rep->vstat)
		return;
	bool answered = q->headers_done && q->status >= 100 && q->status < 500;
	router_vstat_record(rep->vstat, rt_now_ms(), failed, answered ? q->attempt_ttft_ms : -1);
}

/* The client left with an attempt out: counted when the replica's status
 * had come (a 5xx as a failure), not before (nothing is known of the
 * replica yet, and a client leaving is not its failure). */
static void rt_attempt_cancelled(struct rt_req *q)
{
	if (q->headers_done)
		rt_attempt_record(q, q->status >= 500);
}

static void rt_upstream_release(struct rt_req *q)
{
	struct rt_loop *L = q->loop;
	if (q->easy) {
		curl_multi_remove_handle(L->multi, q->easy);
		if (L->n_easy_cache < RT_EASY_CACHE)
			L->easy_cache[L->n_easy_cache++] = q->easy;
		else
			curl_easy_cleanup(q->easy);
		q->easy = NULL;
	}
	if (q->replica) {
		atomic_fetch_sub(&q->replica->outstanding, 1);
		q->replica = NULL;
	}
}

static size_t rt_on_header(char *p, size_t size, size_t n, void *ud)
{
	struct rt_req *q = ud;
	size_t len = size * n;
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
		const char *sp = memchr(p, ' ', len);
		q->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		q->content_type[0] = '\0';
		q->content_length = -1;
		router_usage_init(&q->usage);
	} else if (len > 13 && !strncasecmp(p, "Content-Type:", 13)) {
		const char *v = p + 13;
		size_t vl = len - 13;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(q->content_type)) {
			memcpy(q->content_type, v, vl);
			q->content_type[vl] = '\0';
		}
	} else if (len > 15 && !strncasecmp(p, "Content-Length:", 15)) {
		char tmp[32];
		size_t vl = len - 15 < sizeof(tmp) - 1 ? len - 15 : sizeof(tmp) - 1;
		memcpy(tmp, p + 15, vl);
		tmp[vl] = '\0';
		q->content_length = strtoll(tmp, NULL, 10);
	} else if ((len == 2 && p[0] == '\r') || (len == 1 && p[0] == '\n')) {
		if (q->status >= 200) {
			q->headers_done = true;
			/* 502 and 503 mean "not this replica": its body is dropped
			 * and the request goes to another while one is left. */
			q->discard = (q->status == 502 || q->status == 503) &&
				     q->n_tried <= q->loop->r->cfg.max_retries;
			if (!q->discard)
				rt_attention(q);
		}
	}
	return len;
}

static size_t rt_on_body(char *p, size_t size, size_t n, void *ud)
{
	struct rt_req *q = ud;
	size_t len = size * n;
	if (q->discard)
		return len;
	if (q->committed && q->out.len - q->out_off > RT_OUT_HIGH) {
		q->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (q->out_off && q->out_off == q->out.len) {
		q->out.len = q->out_off = 0; /* all given: start over */
		q->out.p[0] = '\0';
	}
	textbuf_add(&q->out, p, len);
	if (q->out.failed)
		return 0; /* out of memory: the transfer fails */
	router_usage_feed(&q->usage, p, len);
	if (q->attempt_ttft_ms < 0) {
		long long now = rt_now_ms();
		q->attempt_ttft_ms = now - q->attempt_ms;
		if (q->first_byte_ms < 0)
			q->first_byte_ms = now - q->started_ms;
	}
	rt_attention(q);
	return len;
}

static uint64_t rt_rand(struct rt_loop *L)
{
	/* xorshift64*: per loop, so picks share no state between threads. */
	L->rnd ^= L->rnd >> 12;
	L->rnd ^= L->rnd << 25;
	L->rnd ^= L->rnd >> 27;
	return L->rnd * 0x2545F4914F6CDD1DULL;
}

/* Start an attempt on the best replica not tried yet. false when none is
 * left or curl failed to start (the caller answers). */
static bool rt_upstream_start(struct rt_req *q)
{
	struct rt_loop *L = q->loop;
	struct router *r = L->r;
	struct router_pick_hint hint = {.session = q->session,
					.prefix = q->prefix,
					.n_prefix = q->n_prefix,
					.prefixes = r->prefixes,
					.adapter = q->route->adapter};
	char url[512];
	if (q->n_tried >= RT_MAX_TRIED)
		return false;
	struct router_replica *rep = router_pick(q->route, r->cfg.policy, &hint, q->tried, q->n_tried,
						 rt_now_ms(), rt_rand(L));
	if (!rep)
		return false;
	if (q->route->dynamic) /* it loads the adapter now, if it had not */
		router_replica_adapter_sent(rep, q->route->adapter, rt_now_ms());
	/* A kept handle has every option below set again; none other is
	 * ever set, so nothing of the last request carries over. */
	CURL *e = L->n_easy_cache ? L->easy_cache[--L->n_easy_cache] : curl_easy_init();
	if (!e)
		return false;
	q->tried[q->n_tried++] = rep;
	q->replica = rep;
	atomic_fetch_add(&rep->outstanding, 1);
	q->easy = e;
	q->status = 0;
	q->content_type[0] = '\0';
	q->content_length = -1;
	q->headers_done = q->discard = q->done = q->failed = q->paused = false;
	q->out.len = q->out_off = 0;
	q->attempt_ms = rt_now_ms();
	q->attempt_ttft_ms = -1;
	snprintf(url, sizeof(url), "%s%s", rep->url, q->path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, q);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, ""); /* replicas are reached directly, never via *_proxy */
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body.p);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body.len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->stream ? L->headers_sse : L->headers);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, rt_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, rt_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->cfg.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->cfg.upstream_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* A stream's chunks are small; 8 KiB reads keep 5,000 streams' buffers
	 * at 40 MiB rather than libcurl's default 16 KiB x 5,000. */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 8192L);
	if (nova_log_get_level() <= NOVA_LOG_DEBUG)
		nova_log(NOVA_LOG_DEBUG, "router", "attempt %zu of a request for %s on %s (%d outstanding)",
			 q->n_tried, q->route->key, rep->url, atomic_load(&rep->outstanding));
	if (curl_multi_add_handle(L->multi, e) != CURLM_OK) {
		rt_upstream_release(q);
		return false;
	}
	return true;
}

/* An attempt ended. Before anything went to the client, a failure of the
 * replica (no connection, a reset, 502/503) ejects it and the request
 * goes to another; after, the client's answer ends (an SSE error event
 * for a stream). */
static void rt_upstream_done(struct rt_req *q, CURLcode rc)
{
	struct router *r = q->loop->r;
	bool replica_failed = rc != CURLE_OK || q->discard;
	struct router_replica *rep = q->replica;
	if (nova_log_get_level() <= NOVA_LOG_DEBUG)
		nova_log(NOVA_LOG_DEBUG, "router", "attempt on %s ended: %s, status %ld, %lld ms",
			 rep ? rep->url : "?", curl_easy_strerror(rc), q->status,
			 rt_now_ms() - q->started_ms);
	if (rc != CURLE_OK)
		snprintf(q->fail_why, sizeof(q->fail_why), "%s", curl_easy_strerror(rc));
	else if (q->discard)
		snprintf(q->fail_why, sizeof(q->fail_why), "the replica answered %ld", q->status);
	if (rep && replica_failed) {
		atomic_fetch_add(&r->stats.upstream_failures, 1);
		if (router_replica_eject(rep, rt_now_ms())) {
			atomic_fetch_add(&r->stats.ejections, 1);
			nova_log_kv(NOVA_LOG_WARN, "router", "replica failed: ejected for now",
				    "replica", rep->id, "model", q->route->key, "error", q->fail_why,
				    NULL);
		}
	} else if (rep) {
		router_replica_succeeded(rep);
	}
	rt_attempt_record(q, replica_failed || q->status >= 500);
	rt_upstream_release(q);
	if (replica_failed && !q->committed) {
		if (q->n_tried <= r->cfg.max_retries) {
			atomic_fetch_add(&r->stats.retries, 1);
			if (rt_upstream_start(q))
				return;
		}
		rt_set_error(q, 502, "server_error", "upstream_failed", NULL,
			     "no replica of %s answered (%zu tried; last: %s)", q->route->key,
			     q->n_tried, q->fail_why);
		q->done = true;
		rt_attention(q);
		return;
	}
	if (replica_failed && q->committed) {
		q->failed = true;
		if (!strncmp(q->content_type, "text/event-stream", 17)) {
			char *ev = NULL;
			json_t *j = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message",
					      "the replica failed during the stream", "type",
					      "server_error", "param", "code", "upstream_failed");
			char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
			if (text && asprintf(&ev, "data: %s\n\n", text) > 0)
				textbuf_adds(&q->out, ev);
			free(ev);
			free(text);
			json_decref(j);
		}
	}
	q->done = true;
	rt_attention(q);
}

static void rt_curl_check(struct rt_loop *L)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(L->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct rt_req *q = NULL;
		CURL *e = m->easy_handle;
		CURLcode rc = m->data.result;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&q);
		if (q && q->easy == e)
			rt_upstream_done(q, rc);
	}
}

static int rt_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct rt_loop *L = userp;
	struct rt_sock *sk = socketp;
	(void)e;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(L->epfd, EPOLL_CTL_DEL, s, NULL);
		free(sk);
		curl_multi_assign(L->multi, s, NULL);
		return 0;
	}
	struct epoll_event ev = {.events = (what & CURL_POLL_IN ? EPOLLIN : 0u) |
					   (what & CURL_POLL_OUT ? EPOLLOUT : 0u)};
	if (!sk) {
		if (!(sk = calloc(1, sizeof(*sk))))
			return -1;
		sk->kind = RT_EV_CURL;
		sk->fd = s;
		curl_multi_assign(L->multi, s, sk);
		ev.data.ptr = sk;
		if (epoll_ctl(L->epfd, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
			epoll_ctl(L->epfd, EPOLL_CTL_MOD, s, &ev);
	} else {
		ev.data.ptr = sk;
		epoll_ctl(L->epfd, EPOLL_CTL_MOD, s, &ev);
	}
	return 0;
}

static int rt_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct rt_loop *L = userp;
	(void)m;
	L->curl_deadline_ms = timeout_ms < 0 ? -1 : rt_now_ms() + timeout_ms;
	return 0;
}

/* --- the streamed answer ---------------------------------------------------------- */

static ssize_t rt_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct rt_req *q = cls;
	(void)pos;
	if (q->client_gone)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	size_t avail = q->out.len - q->out_off;
	if (avail) {
		size_t n = avail < max ? avail : max;
		memcpy(buf, q->out.p + q->out_off, n);
		q->out_off += n;
		if (q->paused && q->out.len - q->out_off <= RT_OUT_HIGH / 2 && q->easy) {
			q->paused = false;
			curl_easy_pause(q->easy, CURLPAUSE_CONT); /* may add to out at once */
		}
		return (ssize_t)n;
	}
	if (q->done)
		return q->failed && strncmp(q->content_type, "text/event-stream", 17)
			       ? MHD_CONTENT_READER_END_WITH_ERROR
			       : MHD_CONTENT_READER_END_OF_STREAM;
	/* Nothing yet: no thread waits and nothing polls; the next bytes
	 * resume it (libmicrohttpd allows suspending from a reader). */
	q->reader_waiting = true;
	rt_suspend(q);
	return 0;
}

/* The handler's turn after a resume: answer with what the upstream gave. */
static enum MHD_Result rt_answer_upstream(struct rt_req *q)
{
	if (q->err_status) {
		char *body = q->err_body;
		q->err_body = NULL;
		return rt_queue_text(q, q->err_status, "application/json", body, q->err_retry_after);
	}
	if (!q->headers_done && !q->done) {
		/* Woken, then a retry began: wait again. */
		rt_suspend(q);
		return MHD_YES;
	}
	struct MHD_Response *res;
	const char *ctype = q->content_type[0] ? q->content_type : "application/json";
	if (q->done && !q->failed) {
		/* All there (the usual non-streamed answer): one buffer, its
		 * length known, no reader. */
		res = MHD_create_response_from_buffer(q->out.len - q->out_off,
						      q->out.p ? q->out.p + q->out_off : (char *)"",
						      MHD_RESPMEM_MUST_COPY);
	} else {
		uint64_t size = q->content_length >= 0 && strncmp(ctype, "text/event-stream", 17)
					? (uint64_t)q->content_length
					: MHD_SIZE_UNKNOWN;
		res = MHD_create_response_from_callback(size, 16 * 1024, rt_reader, q, NULL);
	}
	if (!res)
		return MHD_NO;
	MHD_add_response_header(res, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (!strncmp(ctype, "text/event-stream", 17))
		MHD_add_response_header(res, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	int status = q->status >= 200 && q->status < 600 ? (int)q->status : 502;
	enum MHD_Result ok = MHD_queue_response(q->conn, (unsigned)status, res);
	MHD_destroy_response(res);
	q->committed = true;
	q->status_sent = status;
	return ok;
}

/* --- the handler ------------------------------------------------------------------- */

static const char *rt_bearer(struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return *h ? h : NULL;
}

/* 0 when the caller may; else the error was answered. */
static int rt_auth(struct rt_req *q, enum MHD_Result *ret)
{
	struct router *r = q->loop->r;
	const char *tok = rt_bearer(q->conn);
	if (!tok) {
		*ret = rt_answer_error(q, 401, "invalid_request_error", "missing_api_key", NULL, NULL,
				       "no API key: send \"Authorization: Bearer <key>\"");
		return -1;
	}
	struct router_keys *k = rt_keys_get(r);
	if (!k) {
		*ret = rt_answer_error(q, 503, "server_error", "keys_unavailable", NULL, "1",
				       "this router has not learned the API keys from novad yet");
		return -1;
	}
	enum router_key_verdict v = router_keys_check(k, tok, (long long)time(NULL));
	router_keys_unref(k);
	switch (v) {
	case ROUTER_KEY_OK:
		return 0;
	case ROUTER_KEY_FORBIDDEN:
		*ret = rt_answer_error(q, 403, "permission_error", "insufficient_scope", NULL, NULL,
				       "this API key does not have the inference scope");
		return -1;
	case ROUTER_KEY_EXPIRED:
		*ret = rt_answer_error(q, 401, "invalid_request_error", "invalid_api_key", NULL, NULL,
				       "this API key has expired");
		return -1;
	default:
		*ret = rt_answer_error(q, 401, "invalid_request_error", "invalid_api_key", NULL, NULL,
				       "invalid or revoked API key");
		return -1;
	}
}

static enum MHD_Result rt_answer_models(struct rt_req *q)
{
	struct router_table *t = rt_table_get(q->loop->r);
	if (!t) /* an empty list would say "nothing is served" */
		return rt_answer_error(q, 503, "server_error", "table_unavailable", NULL, "1",
				       "this router has not learned the routing table from novad yet");
	json_t *data = json_array();
	for (size_t i = 0; t && data && i < t->n; i++) {
		const struct router_route *rt = &t->routes[i];
		json_t *m = json_pack("{s:s, s:s, s:i, s:s}", "id", rt->adapter ? rt->adapter : rt->model,
				      "object", "model", "created", 0, "owned_by", "nova");
		if (m && rt->adapter)
			json_object_set_new(m, "parent", json_string(rt->model));
		if (m)
			json_object_set_new(m, "root", json_string(rt->model));
		json_array_append_new(data, m);
	}
	router_table_unref(t);
	json_t *body = data ? json_pack("{s:s, s:o}", "object", "list", "data", data) : NULL;
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return MHD_NO;
	return rt_queue_text(q, 200, "application/json", text, NULL);
}

/* A label value as Prometheus's text format wants it. */
static void rt_label(struct textbuf *t, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			textbuf_add(t, "\\", 1);
		if (*v == '\n')
			textbuf_adds(t, "\\n");
		else
			textbuf_add(t, v, 1);
	}
}

static void rt_hist_render(struct textbuf *t, const char *name, const char *model,
			   const struct rt_hist *h)
{
	unsigned long long cum = 0;
	for (size_t i = 0; i <= RT_HIST_BUCKETS; i++) {
		cum += h->b[i];
		textbuf_addf(t, "%s_bucket{model=\"", name);
		rt_label(t, model);
		if (i < RT_HIST_BUCKETS)
			textbuf_addf(t, "\",le=\"%g\"} %llu\n", rt_hist_bounds[i], cum);
		else
			textbuf_addf(t, "\",le=\"+Inf\"} %llu\n", cum);
	}
	textbuf_addf(t, "%s_sum{model=\"", name);
	rt_label(t, model);
	textbuf_addf(t, "\"} %.6f\n%s_count{model=\"", h->sum, name);
	rt_label(t, model);
	textbuf_addf(t, "\"} %llu\n", h->count);
}

static void rt_metrics_render(struct textbuf *t, struct rt_metrics *mx)
{
	static const char *const classes[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
	pthread_mutex_lock(&mx->lock);
	textbuf_adds(t, "# HELP nova_router_model_requests_total Requests routed to a model, by "
			"the class of the status answered (none: the client left first).\n"
			"# TYPE nova_router_model_requests_total counter\n");
	for (size_t i = 0; i < mx->n; i++)
		for (int c = 0; c < 6; c++) {
			if (!mx->m[i].by_class[c] && c != 2)
				continue;
			textbuf_adds(t, "nova_router_model_requests_total{model=\"");
			rt_label(t, mx->m[i].key);
			textbuf_addf(t, "\",code=\"%s\"} %llu\n", classes[c], mx->m[i].by_class[c]);
		}
	textbuf_adds(t, "# HELP nova_router_model_in_flight Requests routed to a model being "
			"answered now.\n# TYPE nova_router_model_in_flight gauge\n");
	for (size_t i = 0; i < mx->n; i++) {
		textbuf_adds(t, "nova_router_model_in_flight{model=\"");
		rt_label(t, mx->m[i].key);
		textbuf_addf(t, "\"} %lld\n", mx->m[i].in_flight);
	}
	textbuf_adds(t, "# HELP nova_router_request_duration_seconds From a request's arrival to "
			"the end of its answer, by model.\n"
			"# TYPE nova_router_request_duration_seconds histogram\n");
	for (size_t i = 0; i < mx->n; i++)
		rt_hist_render(t, "nova_router_request_duration_seconds", mx->m[i].key,
			       &mx->m[i].duration);
	textbuf_adds(t, "# HELP nova_router_time_to_first_byte_seconds From a request's arrival "
			"to the first byte of the replica's answer (a stream's first token), by model.\n"
			"# TYPE nova_router_time_to_first_byte_seconds histogram\n");
	for (size_t i = 0; i < mx->n; i++)
		rt_hist_render(t, "nova_router_time_to_first_byte_seconds", mx->m[i].key,
			       &mx->m[i].first_byte);
	pthread_mutex_unlock(&mx->lock);
}

/* The wait for a replica, tokens and demand reports, by model. */
static void rt_metrics_render_queue(struct textbuf *t, struct router *r)
{
	struct rt_metrics *mx = &r->metrics;
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{"nova_router_queued_requests", "gauge",
		 "Requests waiting for a replica of a model (none ready), now."},
		{"nova_router_queue_timeouts_total", "counter",
		 "Requests answered 503 after waiting queue_timeout_ms for a replica."},
		{"nova_router_queue_rejected_total", "counter",
		 "Requests answered 429 because queue_max requests of the model already waited."},
		{"nova_router_queue_abandoned_total", "counter",
		 "Requests whose client left while they waited for a replica."},
	};
	pthread_mutex_lock(&mx->lock);
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		textbuf_addf(t, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
			     fam[f].type);
		for (size_t i = 0; i < mx->n; i++) {
			const struct rt_model_stats *m = &mx->m[i];
			textbuf_addf(t, "%s{model=\"", fam[f].name);
			rt_label(t, m->key);
			if (f == 0)
				textbuf_addf(t, "\"} %lld\n", m->waiting);
			else
				textbuf_addf(t, "\"} %llu\n", f == 1 ? m->queue_timeouts
							      : f == 2 ? m->queue_rejected
								       : m->queue_abandoned);
		}
	}
	textbuf_adds(t, "# HELP nova_router_tokens_total Tokens of the answers passed, by model: "
			"prompt and completion from the answer's usage object, else a stream's chunks "
			"with a choice counted as completion tokens.\n"
			"# TYPE nova_router_tokens_total counter\n");
	for (size_t i = 0; i < mx->n; i++)
		for (int k = 0; k < 2; k++) {
			textbuf_adds(t, "nova_router_tokens_total{model=\"");
			rt_label(t, mx->m[i].key);
			textbuf_addf(t, "\",kind=\"%s\"} %llu\n", k ? "completion" : "prompt",
				     k ? mx->m[i].completion_tokens : mx->m[i].prompt_tokens);
		}
	pthread_mutex_unlock(&mx->lock);
	textbuf_addf(t, "# HELP nova_router_demand_reports_total Demand reports novad took.\n"
			"# TYPE nova_router_demand_reports_total counter\n"
			"nova_router_demand_reports_total %llu\n"
			"# HELP nova_router_demand_report_failures_total Demand reports that did not "
			"reach novad (retried).\n"
			"# TYPE nova_router_demand_report_failures_total counter\n"
			"nova_router_demand_report_failures_total %llu\n",
		     (unsigned long long)r->stats.demand_reports,
		     (unsigned long long)r->stats.demand_reports_failed);
}

struct rt_vtotals {
	struct textbuf *t;
	bool errors;
};

static void rt_vtotal_line(void *ctx, const char *model, const char *version,
			   unsigned long long requests, unsigned long long errors)
{
	struct rt_vtotals *v = ctx;
	textbuf_addf(v->t, "nova_router_version_%s_total{model=\"", v->errors ? "errors" : "requests");
	rt_label(v->t, model);
	textbuf_adds(v->t, "\",version=\"");
	rt_label(v->t, version);
	textbuf_addf(v->t, "\"} %llu\n", v->errors ? errors : requests);
}

/* Per (model, version), since start (the window is novad's, in the demand
 * report). */
static void rt_metrics_render_versions(struct textbuf *t, struct router *r)
{
	struct rt_vtotals v = {.t = t};
	textbuf_adds(t, "# HELP nova_router_version_requests_total Upstream attempts finished, by "
			"model and the version its replica runs.\n"
			"# TYPE nova_router_version_requests_total counter\n");
	router_vstats_totals(r->vstats, rt_vtotal_line, &v);
	v.errors = true;
	textbuf_adds(t, "# HELP nova_router_version_errors_total Upstream attempts that failed "
			"(no connection, reset, broken stream, status 500 or more), by model and "
			"version.\n# TYPE nova_router_version_errors_total counter\n");
	router_vstats_totals(r->vstats, rt_vtotal_line, &v);
}

static enum MHD_Result rt_answer_metrics(struct rt_req *q)
{
	struct router *r = q->loop->r;
	struct textbuf t = {0};
	pthread_mutex_lock(&r->lock);
	long long version = r->table ? r->table->version : -1;
	size_t routes = r->table ? r->table->n : 0;
	long long table_age = r->table ? rt_now_ms() - r->table_at_ms : -1;
	long long keys_age = r->keys ? rt_now_ms() - r->keys_at_ms : -1;
	size_t keys = router_keys_count(r->keys);
	pthread_mutex_unlock(&r->lock);
	struct rt_stats *s = &r->stats;
	textbuf_addf(&t, "# HELP nova_router_requests_total Requests answered, by status class.\n"
			 "# TYPE nova_router_requests_total counter\n"
			 "nova_router_requests_total{code=\"2xx\"} %llu\n"
			 "nova_router_requests_total{code=\"4xx\"} %llu\n"
			 "nova_router_requests_total{code=\"5xx\"} %llu\n",
		     (unsigned long long)s->status_2xx, (unsigned long long)s->status_4xx,
		     (unsigned long long)s->status_5xx);
	textbuf_addf(&t, "# HELP nova_router_in_flight Requests being answered now.\n"
			 "# TYPE nova_router_in_flight gauge\nnova_router_in_flight %lld\n",
		     (long long)s->in_flight);
	textbuf_addf(&t, "# HELP nova_router_upstream_failures_total Attempts that failed before "
			 "the replica answered, or answered 502/503.\n"
			 "# TYPE nova_router_upstream_failures_total counter\n"
			 "nova_router_upstream_failures_total %llu\n"
			 "# HELP nova_router_retries_total Requests sent again to another replica.\n"
			 "# TYPE nova_router_retries_total counter\nnova_router_retries_total %llu\n"
			 "# HELP nova_router_ejections_total Replicas taken out of this router's picks.\n"
			 "# TYPE nova_router_ejections_total counter\nnova_router_ejections_total %llu\n"
			 "# HELP nova_router_cancelled_total Upstream requests cut because the client "
			 "left.\n# TYPE nova_router_cancelled_total counter\n"
			 "nova_router_cancelled_total %llu\n",
		     (unsigned long long)s->upstream_failures, (unsigned long long)s->retries,
		     (unsigned long long)s->ejections, (unsigned long long)s->cancelled);
	textbuf_addf(&t, "# HELP nova_router_table_version The routing table's version (-1: none).\n"
			 "# TYPE nova_router_table_version gauge\nnova_router_table_version %lld\n"
			 "# HELP nova_router_table_routes Routes in the table.\n"
			 "# TYPE nova_router_table_routes gauge\nnova_router_table_routes %zu\n"
			 "# HELP nova_router_table_age_seconds Since the watch last changed the table "
			 "(-1: none).\n# TYPE nova_router_table_age_seconds gauge\n"
			 "nova_router_table_age_seconds %.3f\n"
			 "# HELP nova_router_watch_connected Whether the route watch is connected.\n"
			 "# TYPE nova_router_watch_connected gauge\nnova_router_watch_connected %d\n"
			 "# HELP nova_router_watch_reconnects_total Route watch streams lost.\n"
			 "# TYPE nova_router_watch_reconnects_total counter\n"
			 "nova_router_watch_reconnects_total %llu\n"
			 "# HELP nova_router_watch_resyncs_total Watches started over from a snapshot "
			 "because the table differed from novad's.\n"
			 "# TYPE nova_router_watch_resyncs_total counter\n"
			 "nova_router_watch_resyncs_total %llu\n",
		     version, routes, table_age < 0 ? -1.0 : table_age / 1000.0,
		     atomic_load(&r->watch_connected) ? 1 : 0,
		     (unsigned long long)s->watch_reconnects, (unsigned long long)s->resyncs);
	textbuf_addf(&t, "# HELP nova_router_keys API keys known.\n# TYPE nova_router_keys gauge\n"
			 "nova_router_keys %zu\n"
			 "# HELP nova_router_keys_age_seconds Since the keys were last confirmed by "
			 "novad (-1: never).\n# TYPE nova_router_keys_age_seconds gauge\n"
			 "nova_router_keys_age_seconds %.3f\n"
			 "# HELP nova_router_keys_poll_failures_total Key polls that failed.\n"
			 "# TYPE nova_router_keys_poll_failures_total counter\n"
			 "nova_router_keys_poll_failures_total %llu\n",
		     keys, keys_age < 0 ? -1.0 : keys_age / 1000.0,
		     (unsigned long long)s->keys_polls_failed);
	rt_metrics_render(&t, &r->metrics);
	rt_metrics_render_queue(&t, r);
	rt_metrics_render_versions(&t, r);
	if (t.failed) {
		textbuf_finish(&t);
		return MHD_NO;
	}
	return rt_queue_text(q, 200, "text/plain; version=0.0.4", t.p, NULL);
}

/* The route for a body's model: the model, "model/adapter", or an
 * adapter's own name (what OpenAI clients send for a LoRA adapter). */
static const struct router_route *rt_route_of(const struct router_table *t, const char *model)
{
	const struct router_route *rt = router_table_find(t, model);
	for (size_t i = 0; !rt && t && i < t->n; i++)
		if (t->routes[i].adapter && !strcmp(t->routes[i].adapter, model))
			rt = &t->routes[i];
	return rt;
}

/* What the policy picks by: the session key (X-Session-Id, else the
 * body's "user"; a key longer than the buffer is cut, still a stable key)
 * and the prompt's prefix hashes, each only when the policy reads it. The
 * session key also picks the version of a route with a split, whatever
 * the policy: read then too, and for a request that will wait (the route
 * it finds when a replica comes may have a split). Nonzero: out of
 * memory. */
static int rt_hint(struct rt_req *q, const json_t *doc)
{
	struct router *r = q->loop->r;
	if (r->cfg.policy == ROUTER_POLICY_SESSION || q->route->split || q->route->n == 0) {
		const char *s = MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, "X-Session-Id");
		if (!s || !*s)
			s = json_string_value(json_object_get(doc, "user"));
		snprintf(q->session, sizeof(q->session), "%s", s ? s : "");
	}
	if (r->cfg.policy == ROUTER_POLICY_PREFIX && q->kind != RT_K_EMBEDDINGS &&
	    !router_prefix_hashes(doc, q->kind == RT_K_CHAT, q->route->key,
				  r->cfg.prefix_block_bytes, r->cfg.prefix_max_blocks, &q->prefix,
				  &q->n_prefix))
		return -1;
	return 0;
}

/* A body asking for "model/adapter": the engine knows the adapter by its
 * own name (vLLM's served LoRA name), so "model" becomes that. Only this
 * form pays for the rewrite; a body naming the adapter goes as it came.
 * false when out of memory. */
static bool rt_body_model_set(struct rt_req *q, json_t *doc, const char *name)
{
	char *text = NULL;
	if (json_object_set_new(doc, "model", json_string(name)) != 0 ||
	    !(text = json_dumps(doc, JSON_COMPACT)))
		return false;
	textbuf_finish(&q->body);
	textbuf_adds(&q->body, text);
	free(text);
	return !q->body.failed;
}

/* --- the wait for a replica ------------------------------------------------------------ */

/* A request for a known model with no ready replica (scaled to zero, or
 * every replica failed) waits here rather than being answered 503: the
 * autoscaler is told (the demand report, control.c) and a replica may
 * come. Each loop keeps its own waiting requests, suspended, in a list in
 * arrival order; as every wait has the same length, the head has the
 * nearest deadline, which bounds the loop's epoll timeout, so a wait costs
 * no thread, timer or poll of its own. A new table bumps r->table_gen and
 * writes to the loops' wakefds (router.c, only while some request waits);
 * the loop then looks the waiting requests up in it and starts those whose
 * route has replicas. The cap (queue_max per model, across the loops) is
 * counted in the model's metrics entry, under its lock. Rejected: one
 * queue per model shared by the loops, which would hand requests between
 * threads (a request never leaves its loop: its connection and curl handle
 * belong there). */

static void rt_wait_unlink(struct rt_req *q, enum rt_wait_end why, int status)
{
	struct rt_loop *L = q->loop;
	if (!q->queued)
		return;
	if (q->wprev)
		q->wprev->wnext = q->wnext;
	else
		L->wait_head = q->wnext;
	if (q->wnext)
		q->wnext->wprev = q->wprev;
	else
		L->wait_tail = q->wprev;
	q->wprev = q->wnext = NULL;
	q->queued = false;
	atomic_fetch_sub(&L->r->stats.waiting, 1);
	rt_metrics_wait_leave(&L->r->metrics, q->widx, why, status);
}

/* The route has no replica: wait (answered later), or 429 when the model
 * has queue_max waiting, or 503 when waits are off. */
static enum MHD_Result rt_wait_begin(struct rt_req *q)
{
	struct rt_loop *L = q->loop;
	struct router *r = L->r;
	if (!r->cfg.queue_timeout_ms)
		return rt_answer_error(q, 503, "server_error", "no_replica", NULL, "1",
				       "no replica of %s is ready", q->route->key);
	if (rt_metrics_wait_enter(&q->widx, &r->metrics, q->route->key, r->cfg.queue_max) != 0)
		return rt_answer_error(q, 429, "rate_limit_error", "queue_full", NULL, "1",
				       "%u requests for %s already wait for a replica",
				       r->cfg.queue_max, q->route->key);
	q->queued = true;
	q->started = true;
	q->wait_until_ms = rt_now_ms() + r->cfg.queue_timeout_ms;
	q->wprev = L->wait_tail;
	if (L->wait_tail)
		L->wait_tail->wnext = q;
	else
		L->wait_head = q;
	L->wait_tail = q;
	/* The table may have changed since the request took it: look again
	 * at the next turn of the loop. */
	L->wait_gen = -1;
	if (atomic_fetch_add(&r->stats.waiting, 1) == 0) {
		atomic_store(&r->demand_now, true);
		rt_control_poke(r);
	}
	if (nova_log_get_level() <= NOVA_LOG_DEBUG)
		nova_log(NOVA_LOG_DEBUG, "router", "a request for %s waits for a replica",
			 q->route->key);
	rt_suspend(q);
	return MHD_YES;
}

/* Out of the list with an error to answer when the handler runs. */
static void rt_wait_fail(struct rt_req *q, enum rt_wait_end why, int status)
{
	rt_wait_unlink(q, why, status);
	q->done = true;
	rt_attention(q);
}

/* Each turn of the loop: start the waiting requests a new table gave
 * replicas, answer those whose model left the table, and those whose wait
 * is over. */
static void rt_wait_tick(struct rt_loop *L)
{
	struct router *r = L->r;
	if (!L->wait_head)
		return;
	long long gen = atomic_load(&r->table_gen);
	if (gen != L->wait_gen) {
		struct router_table *t = rt_table_get(r);
		L->wait_gen = gen;
		for (struct rt_req *q = L->wait_head, *next; t && q; q = next) {
			next = q->wnext;
			if (q->client_gone) {
				rt_wait_unlink(q, RT_WAIT_ABANDONED, 0);
				continue;
			}
			const struct router_route *rt = rt_route_of(t, q->route->key);
			if (!rt) {
				rt_set_error(q, 404, "invalid_request_error", "model_not_found", NULL,
					     "the model %.200s no longer has a route", q->route->key);
				rt_wait_fail(q, RT_WAIT_ENDED, 404);
				continue;
			}
			if (rt->n == 0)
				continue;
			rt_wait_unlink(q, RT_WAIT_STARTED, 0);
			atomic_fetch_add(&t->refs, 1);
			router_table_unref(q->table);
			q->table = t;
			q->route = rt;
			q->mstat = rt_metrics_begin(&r->metrics, rt->key);
			if (!rt_upstream_start(q)) {
				rt_set_error(q, 502, "server_error", "upstream_failed", NULL,
					     "no replica of %s could be tried", rt->key);
				q->done = true;
				rt_attention(q);
			}
		}
		router_table_unref(t);
	}
	long long now = rt_now_ms();
	while (L->wait_head && L->wait_head->wait_until_ms <= now) {
		struct rt_req *q = L->wait_head;
		if (q->client_gone) {
			rt_wait_unlink(q, RT_WAIT_ABANDONED, 0);
			continue;
		}
		rt_set_error(q, 503, "server_error", "no_replica", "5",
			     "no replica of %s became ready within %u ms", q->route->key,
			     r->cfg.queue_timeout_ms);
		rt_wait_fail(q, RT_WAIT_TIMED_OUT, 503);
	}
}

/* The loop's epoll timeout, bounded by the nearest end of a wait. */
static long long rt_wait_timeout(const struct rt_loop *L, long long timeout, long long now)
{
	if (!L->wait_head)
		return timeout;
	long long left = L->wait_head->wait_until_ms - now;
	return left < 0 ? 0 : left < timeout ? left : timeout;
}

void rt_loops_table_changed(struct router *r)
{
	uint64_t one = 1;
	for (unsigned i = 0; i < r->n_loops; i++)
		if (r->loops[i] && write(r->loops[i]->wakefd, &one, sizeof(one)) < 0) {
			/* a full counter wakes it all the same */
		}
}

/* The body is in: check it, find the route, send it upstream. */
static enum MHD_Result rt_begin(struct rt_req *q)
{
	struct router *r = q->loop->r;
	json_error_t jerr;
	json_t *doc = json_loadb(q->body.p ? q->body.p : "", q->body.len, 0, &jerr);
	if (!doc || !json_is_object(doc)) {
		json_decref(doc);
		return rt_answer_error(q, 400, "invalid_request_error", "invalid_json", NULL, NULL,
				       "the body must be a JSON object%s%s", doc ? "" : ": ",
				       doc ? "" : jerr.text);
	}
	json_t *m = json_object_get(doc, "model");
	const char *model = json_string_value(m);
	if (!model || !*model) {
		json_decref(doc);
		return rt_answer_error(q, 400, "invalid_request_error", "invalid_model", "model", NULL,
				       "model must be a non-empty string");
	}
	json_t *st = json_object_get(doc, "stream");
	if (st && !json_is_boolean(st)) {
		json_decref(doc);
		return rt_answer_error(q, 400, "invalid_request_error", "invalid_stream", "stream", NULL,
				       "stream must be true or false");
	}
	q->stream = json_is_true(st);
	q->table = rt_table_get(r);
	if (!q->table) {
		json_decref(doc);
		return rt_answer_error(q, 503, "server_error", "table_unavailable", NULL, "1",
				       "this router has not learned the routing table from novad yet");
	}
	q->route = rt_route_of(q->table, model);
	if (!q->route) {
		enum MHD_Result ret = rt_answer_error(q, 404, "invalid_request_error", "model_not_found",
						      "model", NULL,
						      "the model %.200s does not exist or has no route",
						      model);
		json_decref(doc);
		return ret;
	}
	if (rt_hint(q, doc)) {
		json_decref(doc);
		return rt_answer_error(q, 500, "server_error", "out_of_memory", NULL, NULL,
				       "out of memory");
	}
	if (q->route->adapter && strcmp(model, q->route->adapter) != 0 &&
	    !rt_body_model_set(q, doc, q->route->adapter)) {
		json_decref(doc);
		return MHD_NO;
	}
	json_decref(doc);
	if (q->route->n == 0)
		return rt_wait_begin(q); /* the bounded wait for a replica */
	q->started = true;
	q->mstat = rt_metrics_begin(&r->metrics, q->route->key);
	if (!rt_upstream_start(q))
		return rt_answer_error(q, 502, "server_error", "upstream_failed", NULL, NULL,
				       "no replica of %s could be tried", q->route->key);
	rt_suspend(q);
	return MHD_YES;
}

static enum MHD_Result rt_handler(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct rt_loop *L = cls;
	struct router *r = L->r;
	struct rt_req *q = *con_cls;
	enum MHD_Result ret = MHD_YES;
	(void)version;
	if (!q) {
		if (!(q = calloc(1, sizeof(*q))))
			return MHD_NO;
		q->loop = L;
		q->conn = c;
		q->started_ms = rt_now_ms();
		q->first_byte_ms = -1;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		if (ci)
			q->cn = ci->socket_context;
		q->next = L->reqs;
		if (L->reqs)
			L->reqs->prev = q;
		L->reqs = q;
		*con_cls = q;
		atomic_fetch_add(&r->stats.in_flight, 1);
		static const struct {
			const char *path, *method;
			enum rt_kind kind;
		} paths[] = {
			{"/v1/chat/completions", "POST", RT_K_CHAT},
			{"/v1/completions", "POST", RT_K_COMPLETIONS},
			{"/v1/embeddings", "POST", RT_K_EMBEDDINGS},
			{"/v1/models", "GET", RT_K_MODELS},
			{"/healthz", "GET", RT_K_HEALTH},
			{"/metrics", "GET", RT_K_METRICS},
		};
		size_t i;
		for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
			if (!strcmp(url, paths[i].path))
				break;
		if (i == sizeof(paths) / sizeof(paths[0]))
			return rt_answer_error(q, 404, "invalid_request_error", "unknown_url", NULL, NULL,
					       "no route %.200s %.200s here", method, url);
		if (strcmp(method, paths[i].method) != 0)
			return rt_answer_error(q, 405, "invalid_request_error", "method_not_allowed",
					       NULL, NULL, "%.200s takes %s", url, paths[i].method);
		q->kind = paths[i].kind;
		q->path = paths[i].path;
		if (q->kind == RT_K_HEALTH)
			return rt_queue_text(q, 200, "application/json", strdup("{\"status\":\"ok\"}"),
					     NULL);
		if (q->kind == RT_K_METRICS)
			return rt_answer_metrics(q);
		if (rt_auth(q, &ret))
			return ret;
		if (q->kind == RT_K_MODELS)
			return rt_answer_models(q);
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > r->cfg.max_body_bytes)
			return rt_answer_error(q, 413, "invalid_request_error", "request_too_large",
					       NULL, NULL, "the body is over %zu bytes",
					       r->cfg.max_body_bytes);
		return MHD_YES;
	}
	if (q->committed) {
		*upload_size = 0; /* answered already: the rest of a body is dropped */
		return MHD_YES;
	}
	if (q->client_gone)
		return MHD_NO;
	if (*upload_size) {
		if (q->too_big || q->body.len + *upload_size > r->cfg.max_body_bytes) {
			/* A body of unknown length (chunked) over the cap: read on
			 * and drop the rest, so the client, still sending, reads
			 * the 413 (answered at once, it would see its send fail);
			 * past twice the cap, answered and closed anyway. */
			q->too_big = true;
			q->dropped += *upload_size;
			*upload_size = 0;
			if (q->dropped > r->cfg.max_body_bytes)
				return rt_answer_error(q, 413, "invalid_request_error",
						       "request_too_large", NULL, NULL,
						       "the body is over %zu bytes",
						       r->cfg.max_body_bytes);
			return MHD_YES;
		}
		textbuf_add(&q->body, upload, *upload_size);
		*upload_size = 0;
		return q->body.failed ? MHD_NO : MHD_YES;
	}
	if (q->too_big)
		return rt_answer_error(q, 413, "invalid_request_error", "request_too_large", NULL, NULL,
				       "the body is over %zu bytes", r->cfg.max_body_bytes);
	if (!q->started)
		return rt_begin(q);
	return rt_answer_upstream(q);
}

static void rt_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct rt_loop *L = cls;
	struct rt_req *q = *con_cls;
	(void)c;
	if (!q)
		return;
	struct rt_stats *s = &L->r->stats;
	if (q->easy) {
		/* The client left (or the connection failed) mid-request. */
		atomic_fetch_add(&s->cancelled, 1);
		rt_attempt_cancelled(q);
		rt_upstream_release(q);
	}
	if (q->cn && q->cn->waiting == q)
		q->cn->waiting = NULL;
	rt_wait_unlink(q, RT_WAIT_ABANDONED, 0); /* the client left while it waited */
	int st = q->status_sent;
	if (q->mstat && st >= 200 && st < 300 && q->headers_done) {
		long long prompt, completion;
		router_usage_tokens(&prompt, &completion, &q->usage, q->stream);
		rt_metrics_tokens(&L->r->metrics, q->mstat, prompt, completion);
	}
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || st) {
		atomic_fetch_add(&s->requests, 1);
		atomic_fetch_add(st >= 500 ? &s->status_5xx : st >= 400 ? &s->status_4xx : &s->status_2xx, 1);
	}
	atomic_fetch_sub(&s->in_flight, 1);
	rt_metrics_end(&L->r->metrics, q->mstat, st, rt_now_ms() - q->started_ms, q->first_byte_ms);
	if (q->prev)
		q->prev->next = q->next;
	else
		L->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	router_table_unref(q->table);
	textbuf_finish(&q->body);
	textbuf_finish(&q->out);
	free(q->prefix);
	free(q->err_body);
	free(q);
	*con_cls = NULL;
}

static void rt_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct rt_loop *L = cls;
	struct rt_conn *cn = *socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!ci || !(cn = calloc(1, sizeof(*cn))))
			return; /* no watch: a close is found later, when the request wakes */
		cn->kind = RT_EV_CLIENT;
		cn->fd = ci->connect_fd;
		struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = cn};
		cn->watched = epoll_ctl(L->epfd, EPOLL_CTL_ADD, cn->fd, &ev) == 0;
		*socket_context = cn;
	} else if (cn) {
		if (cn->watched)
			epoll_ctl(L->epfd, EPOLL_CTL_DEL, cn->fd, NULL);
		free(cn);
		*socket_context = NULL;
	}
}

/* The client's socket closed while its request waited: cancel upstream,
 * and let libmicrohttpd find the close. */
static void rt_client_hup(struct rt_req *q)
{
	struct router *r = q->loop->r;
	q->client_gone = true;
	if (q->easy) {
		atomic_fetch_add(&r->stats.cancelled, 1);
		rt_attempt_cancelled(q);
		rt_upstream_release(q);
	}
	rt_resume(q);
}

/* --- the loop ---------------------------------------------------------------------- */

__attribute__((format(printf, 2, 0))) static void rt_mhd_log(void *cls, const char *fmt,
							      va_list ap)
{
	char msg[256];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	nova_log(NOVA_LOG_DEBUG, "router", "http: %s", msg);
}

static void *rt_loop_run(void *arg)
{
	struct rt_loop *L = arg;
	struct epoll_event evs[128];
	while (!atomic_load(&L->stop)) {
		long long now = rt_now_ms();
		long long timeout = 1000;
		MHD_UNSIGNED_LONG_LONG mt;
		if (MHD_get_timeout(L->mhd, &mt) == MHD_YES && (long long)mt < timeout)
			timeout = (long long)mt;
		if (L->curl_deadline_ms >= 0) {
			long long ct = L->curl_deadline_ms - now;
			if (ct < timeout)
				timeout = ct < 0 ? 0 : ct;
		}
		timeout = rt_wait_timeout(L, timeout, now);
		int n = epoll_wait(L->epfd, evs, 128, (int)timeout);
		bool run_mhd = n == 0;
		for (int i = 0; i < n; i++) {
			enum rt_ev_kind *k = evs[i].data.ptr;
			switch (*k) {
			case RT_EV_MHD:
				run_mhd = true;
				break;
			case RT_EV_WAKE: {
				uint64_t v;
				if (read(L->wakefd, &v, sizeof(v)) < 0) { /* drained */ }
				break;
			}
			case RT_EV_CURL: {
				struct rt_sock *sk = (struct rt_sock *)k;
				int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
					    (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
					    (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
				int running;
				curl_multi_socket_action(L->multi, sk->fd, flags, &running);
				rt_curl_check(L);
				break;
			}
			case RT_EV_CLIENT: {
				struct rt_conn *cn = (struct rt_conn *)k;
				/* Not waiting: libmicrohttpd is reading or writing
				 * the socket and finds the close itself. */
				if (cn->waiting)
					rt_client_hup(cn->waiting);
				run_mhd = true;
				break;
			}
			}
		}
		if (L->curl_deadline_ms >= 0 && rt_now_ms() >= L->curl_deadline_ms) {
			int running;
			L->curl_deadline_ms = -1;
			curl_multi_socket_action(L->multi, CURL_SOCKET_TIMEOUT, 0, &running);
			rt_curl_check(L);
		}
		rt_wait_tick(L);
		/* Always: a resume from curl's side, or a timeout, needs a pass. */
		(void)run_mhd;
		MHD_run(L->mhd);
	}
	return NULL;
}

/* A listening socket on host:port with SO_REUSEPORT, so every loop has its
 * own on the one port. */
static int rt_listen_socket(int *out, const char *listen_addr, uint16_t port, struct nova_err *err)
{
	char host[128], portstr[8];
	const char *colon = strrchr(listen_addr, ':');
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE}, *ai = NULL;
	if (!colon || (size_t)(colon - listen_addr) >= sizeof(host))
		return nova_err_set(err, NOVA_EINVAL, "listen", "listen must be HOST:PORT");
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen_addr), listen_addr);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	if (getaddrinfo(host, portstr, &hints, &ai) != 0 || !ai)
		return nova_err_set(err, NOVA_EINVAL, "listen", "cannot resolve the listen host");
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return nova_err_set(err, NOVA_EUNAVAIL, "listen", "cannot listen on %s: %s",
				    listen_addr, strerror(e));
	}
	freeaddrinfo(ai);
	*out = fd;
	return 0;
}

static uint16_t rt_listen_port(const char *listen_addr)
{
	const char *colon = strrchr(listen_addr, ':');
	return colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
}

static void rt_loop_destroy(struct rt_loop *L)
{
	if (!L)
		return;
	/* Every request still here is cut: upstream first, then the client
	 * (a suspended connection must be resumed before the daemon stops). */
	for (struct rt_req *q = L->reqs; q; q = q->next) {
		if (q->queued) { /* answered: the router stops */
			rt_set_error(q, 503, "server_error", "router_stopping", "1",
				     "this router is stopping");
			rt_wait_fail(q, RT_WAIT_ENDED, 503);
			continue;
		}
		q->client_gone = true;
		rt_upstream_release(q);
		rt_resume(q);
	}
	if (L->mhd) {
		MHD_run(L->mhd);
		MHD_stop_daemon(L->mhd);
	}
	while (L->n_easy_cache)
		curl_easy_cleanup(L->easy_cache[--L->n_easy_cache]);
	if (L->multi)
		curl_multi_cleanup(L->multi);
	curl_slist_free_all(L->headers);
	curl_slist_free_all(L->headers_sse);
	if (L->wakefd >= 0)
		close(L->wakefd);
	if (L->epfd >= 0)
		close(L->epfd);
	free(L);
}

static int rt_loop_create(struct rt_loop **out, struct router *r, unsigned index, int listen_fd,
			  struct nova_err *err)
{
	struct rt_loop *L = calloc(1, sizeof(*L));
	*out = NULL;
	if (!L) {
		close(listen_fd);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	L->r = r;
	L->index = index;
	L->listen_fd = listen_fd;
	L->curl_deadline_ms = -1;
	L->mhd_kind = RT_EV_MHD;
	L->wake_kind = RT_EV_WAKE;
	L->rnd = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)rt_now_ms() << 16) ^ index ^ (uint64_t)(uintptr_t)L;
	L->epfd = epoll_create1(EPOLL_CLOEXEC);
	L->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	L->multi = curl_multi_init();
	L->headers = curl_slist_append(NULL, "Content-Type: application/json");
	L->headers = curl_slist_append(L->headers, "Expect:");
	L->headers_sse = curl_slist_append(NULL, "Content-Type: application/json");
	L->headers_sse = curl_slist_append(L->headers_sse, "Expect:");
	L->headers_sse = curl_slist_append(L->headers_sse, "Accept: text/event-stream");
	if (L->epfd < 0 || L->wakefd < 0 || !L->multi || !L->headers || !L->headers_sse) {
		close(listen_fd);
		rt_loop_destroy(L);
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot set up an event loop");
	}
	curl_multi_setopt(L->multi, CURLMOPT_SOCKETFUNCTION, rt_curl_socket);
	curl_multi_setopt(L->multi, CURLMOPT_SOCKETDATA, L);
	curl_multi_setopt(L->multi, CURLMOPT_TIMERFUNCTION, rt_curl_timer);
	curl_multi_setopt(L->multi, CURLMOPT_TIMERDATA, L);
	/* Connections to replicas: at most this loop's share of the cap in
	 * use (a transfer past it waits in libcurl for one to free, rather
	 * than failing), and as many kept alive. */
	long share = (long)((r->cfg.max_upstream_connections + r->cfg.threads - 1) / r->cfg.threads);
	curl_multi_setopt(L->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, share);
	curl_multi_setopt(L->multi, CURLMOPT_MAXCONNECTS, share);
	L->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0,
				  NULL, NULL, rt_handler, L,
				  MHD_OPTION_LISTEN_SOCKET, listen_fd,
				  MHD_OPTION_CONNECTION_LIMIT, r->cfg.max_connections,
				  /* A client connection's pool (headers, read buffer):
				   * 16 KiB, half libmicrohttpd's default, as requests
				   * here carry few headers and bodies go to our own
				   * buffer; counted per open stream. */
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
				  MHD_OPTION_CONNECTION_TIMEOUT, r->cfg.idle_timeout_s,
				  MHD_OPTION_NOTIFY_COMPLETED, rt_completed, L,
				  MHD_OPTION_NOTIFY_CONNECTION, rt_connection, L,
				  MHD_OPTION_EXTERNAL_LOGGER, rt_mhd_log, NULL,
				  MHD_OPTION_END);
	if (!L->mhd) {
		close(listen_fd);
		rt_loop_destroy(L);
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot start the HTTP server");
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(L->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &L->mhd_kind};
	struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &L->wake_kind};
	if (!di || epoll_ctl(L->epfd, EPOLL_CTL_ADD, di->epoll_fd, &ev) != 0 ||
	    epoll_ctl(L->epfd, EPOLL_CTL_ADD, L->wakefd, &wev) != 0) {
		rt_loop_destroy(L);
		return nova_err_set(err, NOVA_EINTERNAL, "", "cannot set up an event loop");
	}
	*out = L;
	return 0;
}

int rt_loops_start(struct router *r, struct nova_err *err)
{
	uint16_t port = rt_listen_port(r->cfg.listen);
	int rc;
	if (!(r->loops = calloc(r->cfg.threads, sizeof(*r->loops))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	for (unsigned i = 0; i < r->cfg.threads; i++) {
		int fd = -1;
		if ((rc = rt_listen_socket(&fd, r->cfg.listen, port, err)))
			goto fail;
		if (i == 0) {
			struct sockaddr_storage ss;
			socklen_t sl = sizeof(ss);
			getsockname(fd, (struct sockaddr *)&ss, &sl);
			port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							      : ((struct sockaddr_in *)&ss)->sin_port);
			r->port = port;
		}
		if ((rc = rt_loop_create(&r->loops[i], r, i, fd, err)))
			goto fail;
		r->n_loops = i + 1;
	}
	for (unsigned i = 0; i < r->n_loops; i++) {
		if (pthread_create(&r->loops[i]->thread, NULL, rt_loop_run, r->loops[i]) != 0) {
			rc = nova_err_set(err, NOVA_EINTERNAL, "", "cannot start an event loop thread");
			goto fail;
		}
		r->loops[i]->running = true;
	}
	return 0;
fail:
	rt_loops_stop(r);
	return rc;
}

void rt_loops_stop(struct router *r)
{
	if (!r->loops)
		return;
	for (unsigned i = 0; i < r->n_loops; i++) {
		struct rt_loop *L = r->loops[i];
		if (!L || !L->running)
			continue;
		uint64_t one = 1;
		atomic_store(&L->stop, true);
		if (write(L->wakefd, &one, sizeof(one)) < 0) { /* it wakes within 1 s anyway */ }
		pthread_join(L->thread, NULL);
		L->running = false;
	}
	for (unsigned i = 0; i < r->n_loops; i++)
		rt_loop_destroy(r->loops[i]);
	free(r->loops);
	r->loops = NULL;
	r->n_loops = 0;
}
