/* loadgen: a closed-loop HTTP/1.1 load generator for the benchmarks.
 *
 * Many keep-alive connections over loopback, each with one request in flight
 * (a sidecar heartbeats and waits for the answer; it does not pipeline), for
 * a fixed time. Every request is built from templates: {i} is the simulated
 * node's index, {id} and {token} its id and token from a nodes file (one
 * "ID TOKEN" line per node), {seq} a number that grows with every request.
 * Requests take the simulated nodes in turn, so 10,000 nodes can heartbeat
 * over 256 connections, as they would through a few proxies.
 *
 * With --rate the load is paced instead: each connection sends on a
 * schedule (rate / connections per second, staggered), as a fleet of
 * sidecars heartbeating every interval does, and a request's latency is
 * counted from when it was due, not from when it went out, so a server that
 * falls behind shows it in p99 rather than hiding it by slowing the
 * generator down (coordinated omission). A closed loop measures the most a
 * server can take; a paced run measures the latency at the load a fleet
 * really offers.
 *
 * The result: rps counts the answers that arrived in the measured window;
 * the percentiles cover the requests sent (closed loop) or due (paced) in
 * it, and, paced, those still unanswered when it closed ("unfinished"),
 * each with the time it had waited by then.
 *
 * Answers may come with a Content-Length or chunked (a streamed completion
 * through a proxy). Beside each request's latency to its last byte, the
 * time to its first body byte is kept (ttfb_*: for a Server-Sent Events
 * stream, the first token), from the same start (sent, or due). With
 * --expect-end a 2xx answer whose body does not end with the given text
 * (trailing white space aside) counts as an error: a stream that a proxy
 * ended with an error event is a failure, not a success.
 *
 * With --follow-interval MS every simulated node beats on its own schedule,
 * as a sidecar does: its first beat at a point spread over MS, each next one
 * the interval its last answer told it ("interval_ms", 100 to 600,000, as
 * nova-sidecar takes it) after the one before was due; a failed beat is
 * due again one interval later. Latency is counted from when each beat was
 * due, as paced; the offered rate is the fleet over its told interval, so
 * a novad that lengthens the interval as the fleet grows (its heartbeat
 * budget) is measured at the rate it asked for. Each thread schedules its
 * share of the nodes on a heap (1,000,000 nodes: 16 MB).
 *
 * With --once every connection sends one request and the run ends when all
 * are answered (or at the duration): concurrent streams, all open at once.
 * SIGINT or SIGTERM ends a run early, as its duration running out would
 * (the window closes then, the report and the files are written): a phase
 * of no fixed length (a rolling update) is measured by stopping the run
 * when it is over.
 * With --failures, every failed request is written as one line, its start
 * in wall-clock seconds, what failed and the status, so a script can tell
 * the requests started before an event (a replica killed) from those after.
 * With --times, every request is written as one line (answered, failed, or
 * due in the window and unanswered at its end), with its start and its
 * times to the first byte and to the end, so a script can count the
 * requests over a latency target in any stretch of the run (an
 * autoscaler's load step) rather than read one percentile of all of it.
 *
 * Latencies go into a log-linear histogram (64 sub-buckets per power of two,
 * under 1.6% error), so p99 over millions of requests costs no sorting and
 * no memory per sample. The result is one JSON object.
 *
 * Only loopback targets are accepted: this is a benchmark tool, not a way
 * to load somebody's server. wrk was the alternative; it is not packaged
 * with a scripting story that reads per-node tokens from a file without
 * Lua, and a C tool of our own keeps the benchmark free of extra packages.
 *
 * Tokens from the nodes file go into requests only; nothing here prints a
 * request, a header or a body. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_HEADERS 16
#define LG_REQ_HEAD_MAX 16384 /* request line and headers; the body is sized apart */
#define LG_HDR_MAX 16384
#define LG_TAIL 64 /* the body's last bytes kept, for --expect-end */
#define LG_READ_CHUNK 65536
#define LG_RETRY_NS 20000000LL /* after a failed connect */

/* --- histogram ---------------------------------------------------------------- */

#define LG_SUB 64
#define LG_BUCKETS (2 * LG_SUB + 40 * LG_SUB)

static size_t lg_bucket(uint64_t us)
{
	if (us < 2 * LG_SUB)
		return (size_t)us;
	int msb = 63 - __builtin_clzll(us);
	size_t idx = 2 * LG_SUB + (size_t)(msb - 7) * LG_SUB +
		     (size_t)((us >> (msb - 6)) - LG_SUB);
	return idx < LG_BUCKETS ? idx : LG_BUCKETS - 1;
}

/* The middle of the bucket's range, in microseconds. */
static double lg_bucket_value(size_t idx)
{
	if (idx < 2 * LG_SUB)
		return (double)idx;
	size_t k = (idx - 2 * LG_SUB) / LG_SUB, r = (idx - 2 * LG_SUB) % LG_SUB;
	int shift = (int)k + 1;
	double lo = (double)((uint64_t)(LG_SUB + r) << shift);
	return lo + (double)(1ull << shift) / 2.0;
}

/* --- templates ---------------------------------------------------------------- */

enum lg_piece_kind { LG_LIT, LG_INDEX, LG_ID, LG_TOKEN, LG_SEQ };

struct lg_piece {
	enum lg_piece_kind kind;
	const char *lit;
	size_t len;
};

struct lg_template {
	struct lg_piece *pieces;
	size_t n;
	bool uses_node_file; /* {id} or {token} */
};

static int lg_template_parse(struct lg_template *t, const char *s)
{
	static const struct {
		const char *name;
		enum lg_piece_kind kind;
	} names[] = {{"{i}", LG_INDEX}, {"{id}", LG_ID}, {"{token}", LG_TOKEN}, {"{seq}", LG_SEQ}};
	size_t cap = 8;
	memset(t, 0, sizeof(*t));
	if (!(t->pieces = calloc(cap, sizeof(*t->pieces))))
		return -1;
	const char *lit = s;
	for (const char *p = s;; p++) {
		size_t k = 0, nn = sizeof(names) / sizeof(names[0]);
		if (*p == '{')
			for (k = 0; k < nn && strncmp(p, names[k].name, strlen(names[k].name)) != 0; k++)
				;
		bool at_name = *p == '{' && k < nn;
		if (!*p || at_name) {
			if (t->n + 2 > cap) {
				struct lg_piece *np = realloc(t->pieces, 2 * cap * sizeof(*np));
				if (!np)
					return -1;
				t->pieces = np;
				cap *= 2;
			}
			if (p > lit)
				t->pieces[t->n++] = (struct lg_piece){LG_LIT, lit, (size_t)(p - lit)};
			if (!*p)
				break;
			t->pieces[t->n++] = (struct lg_piece){names[k].kind, NULL, 0};
			if (names[k].kind == LG_ID || names[k].kind == LG_TOKEN)
				t->uses_node_file = true;
			p += strlen(names[k].name) - 1;
			lit = p + 1;
		}
	}
	return 0;
}

struct lg_node {
	char *id;
	char *token;
};

/* Append the expansion to buf at *off; false when it does not fit. */
static bool lg_template_expand(char *buf, size_t cap, size_t *off, const struct lg_template *t,
			       size_t index, const struct lg_node *node, unsigned long long seq)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct lg_piece *pc = &t->pieces[i];
		char num[32];
		const char *s = NULL;
		size_t len = 0;
		switch (pc->kind) {
		case LG_LIT: s = pc->lit; len = pc->len; break;
		case LG_INDEX: len = (size_t)snprintf(num, sizeof(num), "%zu", index); s = num; break;
		case LG_SEQ: len = (size_t)snprintf(num, sizeof(num), "%llu", seq); s = num; break;
		case LG_ID: s = node ? node->id : ""; len = strlen(s); break;
		case LG_TOKEN: s = node ? node->token : ""; len = strlen(s); break;
		}
		if (*off + len >= cap)
			return false;
		memcpy(buf + *off, s, len);
		*off += len;
	}
	return true;
}

/* The most bytes an expansion of t can take: a number is at most 20
 * digits, an id or a token at most field_max bytes. */
static size_t lg_template_max(const struct lg_template *t, size_t field_max)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++)
		n += t->pieces[i].kind == LG_LIT ? t->pieces[i].len
		     : (t->pieces[i].kind == LG_ID || t->pieces[i].kind == LG_TOKEN) ? field_max
										      : 20;
	return n;
}

/* --- configuration and shared state ---------------------------------------------- */

struct lg_config {
	struct sockaddr_in addr;
	unsigned connections, threads;
	double duration_s, warmup_s;
	const char *method;
	struct lg_template path, body;
	struct lg_template headers[LG_MAX_HEADERS];
	size_t n_headers;
	bool has_body;
	struct lg_node *nodes;
	size_t n_nodes;
	const char *label;
	const char *output;
	double rate;   /* requests/s over all connections; 0: closed loop */
	char host[80]; /* the Host header's value */
	char *body_file_text; /* --body-file's bytes, which the body template points into */
	size_t body_max;      /* the largest body an expansion makes */
	size_t req_max;       /* the largest request */
	const char *expect_end; /* a 2xx body must end with this (white space aside) */
	bool once;            /* one request per connection, then done */
	FILE *failures;       /* --failures: one line per failed request */
	FILE *times;          /* --times: one line per request */
	unsigned follow_ms;   /* --follow-interval: nodes beat at their told interval */
};

/* --follow-interval: the interval each node was last told (ms), written
 * only by the thread that owns the node (index % threads). */
static uint32_t *lg_told;

struct lg_due {
	int64_t due_ns;
	uint32_t node;
};

static struct lg_config lg_cfg;
static atomic_ullong lg_counter;
static unsigned long long lg_seq_base;
static int64_t lg_t0_ns, lg_measure_from_ns;
/* Atomic: a stop (SIGINT, SIGTERM) brings it forward while threads read it. */
static _Atomic int64_t lg_end_ns;
static atomic_uint lg_threads_running; /* the last one out wakes lg_main_thread */
static pthread_t lg_main_thread;
static int64_t lg_wall0_ns; /* CLOCK_REALTIME at lg_t0_ns, for --failures and --times */

static int64_t lg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* --- connections ----------------------------------------------------------------- */

enum lg_state { LG_DOWN, LG_CONNECTING, LG_WRITING, LG_READING };

/* Where a chunked body's parser is: a size line (and its extensions), the
 * chunk's data, the CRLF after it, the trailer's lines. */
enum lg_chunk_state { LG_CH_SIZE, LG_CH_EXT, LG_CH_DATA, LG_CH_DATA_END, LG_CH_TRAILER };

struct lg_conn {
	int fd;
	enum lg_state state;
	int64_t retry_at_ns;
	char *req; /* lg_cfg.req_max bytes */
	size_t req_len, req_off;
	char hdr[LG_HDR_MAX];
	size_t hdr_len;
	bool in_body, close_after;
	unsigned long long body_left; /* Content-Length left, or the chunk's */
	bool chunked;
	enum lg_chunk_state chunk_state;
	unsigned chunk_digits;
	size_t trailer_line; /* bytes on the trailer's current line */
	bool got_first_byte;
	int64_t first_byte_ns;
	char tail[LG_TAIL];
	size_t tail_len;
	bool finished; /* --once: answered, or failed */
	int status;
	int64_t started_ns;
	int64_t due_ns; /* paced: when the next request is due */
	bool waiting;   /* paced: idle until due_ns */
	bool inflight;  /* a request was started and has no answer yet */
	bool resent; /* this request was already resent once after a keep-alive close */
	uint32_t node; /* --follow-interval: the node this request beats for */
	char head_body[160]; /* --follow-interval: the answer's first bytes */
	size_t head_body_len;
};

struct lg_stats {
	unsigned long long requests, errors, reconnects, bytes;
	unsigned long long done; /* answers that arrived in the window: the rate */
	unsigned long long status[600];
	unsigned long long transport_errors, connect_errors, parse_errors;
	unsigned long long unfinished; /* paced: due in the window, no answer by its end;
					* --once: connections without an answer */
	unsigned long long body_errors; /* 2xx without the --expect-end text */
	uint64_t hist[LG_BUCKETS];
	uint64_t max_us;
	uint64_t ttfb_hist[LG_BUCKETS]; /* to the first body byte */
	uint64_t ttfb_max_us;
	unsigned told_min_ms, told_max_ms; /* --follow-interval: intervals answers told */
};

struct lg_thread {
	pthread_t tid;
	int ep;
	struct lg_conn *conns;
	size_t n_conns, down, waiting;
	size_t finished; /* --once */
	struct lg_stats st;
	struct lg_due *heap; /* --follow-interval: this thread's nodes, earliest due first */
	size_t n_heap;
	char *body; /* lg_cfg.body_max + 1 bytes, where a body is expanded */
	char scratch[LG_READ_CHUNK];
};

static void lg_stats_add(struct lg_stats *to, const struct lg_stats *from)
{
	to->requests += from->requests;
	to->done += from->done;
	to->errors += from->errors;
	to->reconnects += from->reconnects;
	to->bytes += from->bytes;
	to->transport_errors += from->transport_errors;
	to->connect_errors += from->connect_errors;
	to->parse_errors += from->parse_errors;
	to->unfinished += from->unfinished;
	to->body_errors += from->body_errors;
	for (size_t i = 0; i < 600; i++)
		to->status[i] += from->status[i];
	for (size_t i = 0; i < LG_BUCKETS; i++) {
		to->hist[i] += from->hist[i];
		to->ttfb_hist[i] += from->ttfb_hist[i];
	}
	if (from->max_us > to->max_us)
		to->max_us = from->max_us;
	if (from->ttfb_max_us > to->ttfb_max_us)
		to->ttfb_max_us = from->ttfb_max_us;
	if (from->told_min_ms && (!to->told_min_ms || from->told_min_ms < to->told_min_ms))
		to->told_min_ms = from->told_min_ms;
	if (from->told_max_ms > to->told_max_ms)
		to->told_max_ms = from->told_max_ms;
}

/* --- the nodes' schedule (--follow-interval) ------------------------------------ */

static void lg_heap_push(struct lg_thread *th, int64_t due, uint32_t node)
{
	size_t i = th->n_heap++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (th->heap[up].due_ns <= due)
			break;
		th->heap[i] = th->heap[up];
		i = up;
	}
	th->heap[i] = (struct lg_due){due, node};
}

static struct lg_due lg_heap_pop(struct lg_thread *th)
{
	struct lg_due top = th->heap[0], last = th->heap[--th->n_heap];
	size_t i = 0, n = th->n_heap;
	for (;;) {
		size_t k = 2 * i + 1;
		if (k >= n)
			break;
		if (k + 1 < n && th->heap[k + 1].due_ns < th->heap[k].due_ns)
			k++;
		if (th->heap[k].due_ns >= last.due_ns)
			break;
		th->heap[i] = th->heap[k];
		i = k;
	}
	if (n)
		th->heap[i] = last;
	return top;
}

static bool lg_follow_due(const struct lg_thread *th, int64_t now)
{
	return th->n_heap > 0 && th->heap[0].due_ns <= now;
}

/* The node beats again one told interval after this beat was due. */
static void lg_follow_again(struct lg_thread *th, const struct lg_conn *c)
{
	lg_heap_push(th, c->started_ns + (int64_t)lg_told[c->node] * 1000000, c->node);
}

/* Take the interval an answer told ("interval_ms": N), as nova-sidecar does. */
static void lg_follow_take(struct lg_thread *th, struct lg_conn *c)
{
	c->head_body[c->head_body_len] = '\0';
	const char *p = strstr(c->head_body, "\"interval_ms\":");
	if (!p)
		return;
	long v = strtol(p + 14, NULL, 10);
	if (v < 100 || v > 600000)
		return;
	lg_told[c->node] = (uint32_t)v;
	if (!th->st.told_min_ms || (unsigned)v < th->st.told_min_ms)
		th->st.told_min_ms = (unsigned)v;
	if ((unsigned)v > th->st.told_max_ms)
		th->st.told_max_ms = (unsigned)v;
}

static bool lg_measuring(int64_t started_ns)
{
	return started_ns >= lg_measure_from_ns;
}

static void lg_close(struct lg_thread *th, struct lg_conn *c, int64_t retry_at)
{
	if (c->fd >= 0) {
		epoll_ctl(th->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->state = LG_DOWN;
	c->retry_at_ns = retry_at;
	th->down++;
}

/* --failures: the request's start (wall clock), what failed, the status. */
static void lg_log_failure(const struct lg_conn *c, const char *what)
{
	if (!lg_cfg.failures || !c->inflight)
		return;
	int64_t wall = lg_wall0_ns + (c->started_ns - lg_t0_ns);
	fprintf(lg_cfg.failures, "%lld.%09lld %s %d\n", (long long)(wall / 1000000000),
		(long long)(wall % 1000000000), what, c->status);
}

/* --times: START TTFB_MS TOTAL_MS STATUS WHAT, START in wall-clock seconds,
 * WHAT one of ok, status (>= 400), body (--expect-end missed), transport,
 * parse, unfinished (due in the window, no answer by its end: the times
 * are what it had waited then, a lower bound). */
static void lg_log_time(int64_t started_ns, int64_t first_ns, int64_t end_ns, int status,
			const char *what)
{
	if (!lg_cfg.times)
		return;
	int64_t wall = lg_wall0_ns + (started_ns - lg_t0_ns);
	fprintf(lg_cfg.times, "%lld.%06lld %.3f %.3f %d %s\n", (long long)(wall / 1000000000),
		(long long)(wall % 1000000000 / 1000), (double)(first_ns - started_ns) / 1e6,
		(double)(end_ns - started_ns) / 1e6, status, what);
}

/* A request that failed without an answer (its connection is closed next). */
static void lg_count_error(struct lg_thread *th, struct lg_conn *c, unsigned long long *kind)
{
	lg_log_failure(c, kind == &th->st.parse_errors ? "parse" : "transport");
	if (c->inflight) {
		int64_t now = lg_now_ns();
		lg_log_time(c->started_ns, c->got_first_byte ? c->first_byte_ns : now, now, c->status,
			    kind == &th->st.parse_errors ? "parse" : "transport");
	}
	if (lg_measuring(c->started_ns) && c->started_ns != 0) {
		th->st.errors++;
		(*kind)++;
	}
	if (lg_cfg.once && c->inflight && !c->finished) {
		c->finished = true;
		th->finished++;
	}
	if (lg_cfg.follow_ms && c->inflight)
		lg_follow_again(th, c);
	c->inflight = false;
}

/* Build the next request into c->req (the body expanded in th->body
 * first, for its length); false when it does not fit. */
static bool lg_build(struct lg_thread *th, struct lg_conn *c)
{
	unsigned long long k = atomic_fetch_add_explicit(&lg_counter, 1, memory_order_relaxed);
	size_t n = lg_cfg.n_nodes ? lg_cfg.n_nodes : lg_cfg.connections;
	size_t index = lg_cfg.follow_ms ? c->node : (size_t)(k % n);
	const struct lg_node *node = lg_cfg.nodes ? &lg_cfg.nodes[index] : NULL;
	unsigned long long seq = lg_seq_base + k;
	size_t blen = 0, off = 0, cap = lg_cfg.req_max;
	int w;
	if (lg_cfg.has_body &&
	    !lg_template_expand(th->body, lg_cfg.body_max + 1, &blen, &lg_cfg.body, index, node, seq))
		return false;
	w = snprintf(c->req, cap, "%s ", lg_cfg.method);
	off = (size_t)w;
	if (!lg_template_expand(c->req, cap, &off, &lg_cfg.path, index, node, seq))
		return false;
	w = snprintf(c->req + off, cap - off, " HTTP/1.1\r\nHost: %s\r\n", lg_cfg.host);
	if (w < 0 || (size_t)w >= cap - off)
		return false;
	off += (size_t)w;
	for (size_t h = 0; h < lg_cfg.n_headers; h++) {
		if (!lg_template_expand(c->req, cap, &off, &lg_cfg.headers[h], index, node, seq) ||
		    off + 2 >= cap)
			return false;
		memcpy(c->req + off, "\r\n", 2);
		off += 2;
	}
	if (lg_cfg.has_body)
		w = snprintf(c->req + off, cap - off,
			     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
	else
		w = snprintf(c->req + off, cap - off, "\r\n");
	if (w < 0 || (size_t)w >= cap - off)
		return false;
	off += (size_t)w;
	if (off + blen >= cap)
		return false;
	memcpy(c->req + off, th->body, blen);
	c->req_len = off + blen;
	c->req_off = 0;
	return true;
}

static void lg_arm(struct lg_thread *th, struct lg_conn *c, uint32_t events, int op)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};
	epoll_ctl(th->ep, op, c->fd, &ev);
}

/* Write what is left of the request; on EAGAIN wait for EPOLLOUT. */
static void lg_send(struct lg_thread *th, struct lg_conn *c)
{
	while (c->req_off < c->req_len) {
		ssize_t n = send(c->fd, c->req + c->req_off, c->req_len - c->req_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->req_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->state != LG_WRITING)
				lg_arm(th, c, EPOLLOUT, EPOLL_CTL_MOD);
			c->state = LG_WRITING;
			return;
		}
		lg_count_error(th, c, &th->st.transport_errors);
		lg_close(th, c, 0);
		return;
	}
	if (c->state != LG_READING)
		lg_arm(th, c, EPOLLIN, EPOLL_CTL_MOD);
	c->state = LG_READING;
	c->hdr_len = 0;
	c->in_body = false;
}

/* Start a new request on a connected socket. */
static void lg_start(struct lg_thread *th, struct lg_conn *c)
{
	if (!lg_build(th, c)) {
		fprintf(stderr, "loadgen: a request does not fit in %zu bytes\n", lg_cfg.req_max);
		exit(2);
	}
	if (lg_cfg.follow_ms) {
		/* c->node and c->started_ns were set by lg_next from the schedule. */
		c->head_body_len = 0;
	} else if (lg_cfg.rate > 0) {
		c->started_ns = c->due_ns;
		c->due_ns += (int64_t)((double)lg_cfg.connections * 1e9 / lg_cfg.rate);
	} else {
		c->started_ns = lg_now_ns();
	}
	c->resent = false;
	c->inflight = true;
	c->got_first_byte = false;
	c->tail_len = 0;
	c->status = 0;
	lg_send(th, c);
}

/* The next request now, or, when paced and not yet due, once it is. */
static void lg_next(struct lg_thread *th, struct lg_conn *c, int64_t now)
{
	if (lg_cfg.follow_ms) {
		if (!lg_follow_due(th, now)) {
			if (!c->waiting)
				th->waiting++;
			c->waiting = true;
			return;
		}
		struct lg_due d = lg_heap_pop(th);
		c->node = d.node;
		c->started_ns = d.due_ns;
	} else if (lg_cfg.rate > 0 && now < c->due_ns) {
		if (!c->waiting)
			th->waiting++;
		c->waiting = true;
		return;
	}
	if (c->waiting)
		th->waiting--;
	c->waiting = false;
	lg_start(th, c);
}

static void lg_connect(struct lg_thread *th, struct lg_conn *c)
{
	int one = 1;
	th->down--;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fprintf(stderr, "loadgen: socket: %s\n", strerror(errno));
		exit(2);
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)&lg_cfg.addr, sizeof(lg_cfg.addr)) == 0) {
		c->state = LG_CONNECTING; /* armed below, then started */
		lg_arm(th, c, EPOLLOUT, EPOLL_CTL_ADD);
		return;
	}
	if (errno != EINPROGRESS) {
		th->st.connect_errors++;
		th->st.errors++;
		close(c->fd);
		c->fd = -1;
		c->state = LG_DOWN;
		c->retry_at_ns = lg_now_ns() + LG_RETRY_NS;
		th->down++;
		return;
	}
	c->state = LG_CONNECTING;
	lg_arm(th, c, EPOLLOUT, EPOLL_CTL_ADD);
}

/* Parse the response head in c->hdr[0..end); false on a malformed one. */
static bool lg_parse_head(struct lg_conn *c, size_t end)
{
	char *p = c->hdr, *stop = c->hdr + end;
	if (end < 12 || strncmp(p, "HTTP/1.", 7) != 0)
		return false;
	c->status = atoi(p + 9);
	if (c->status < 100 || c->status > 599)
		return false;
	bool have_length = false;
	c->body_left = 0;
	c->chunked = false;
	c->close_after = strncmp(p, "HTTP/1.0", 8) == 0;
	while ((p = memchr(p, '\n', (size_t)(stop - p))) && ++p < stop) {
		if (strncasecmp(p, "content-length:", 15) == 0) {
			c->body_left = strtoull(p + 15, NULL, 10);
			have_length = true;
		} else if (strncasecmp(p, "transfer-encoding:", 18) == 0) {
			/* Only chunked is understood (the last coding, as HTTP/1.1
			 * requires of a response that is not cut by a close). */
			const char *v = p + 18, *eol = memchr(v, '\r', (size_t)(stop - v));
			size_t vlen = eol ? (size_t)(eol - v) : (size_t)(stop - v);
			while (vlen && (*v == ' ' || *v == '\t'))
				v++, vlen--;
			if (vlen != 7 || strncasecmp(v, "chunked", 7) != 0)
				return false;
			c->chunked = true;
			c->chunk_state = LG_CH_SIZE;
			c->chunk_digits = 0;
			c->trailer_line = 0;
		} else if (strncasecmp(p, "connection:", 11) == 0) {
			const char *v = p + 11;
			while (*v == ' ')
				v++;
			c->close_after = strncasecmp(v, "close", 5) == 0;
		}
	}
	bool bodyless = c->status == 204 || c->status == 304 || c->status < 200 ||
			strcmp(lg_cfg.method, "HEAD") == 0;
	if (bodyless) {
		c->body_left = 0;
		c->chunked = false;
	}
	return bodyless || have_length || c->chunked;
}

static void lg_record(struct lg_stats *st, uint64_t us)
{
	st->hist[lg_bucket(us)]++;
	if (us > st->max_us)
		st->max_us = us;
}

static void lg_record_ttfb(struct lg_stats *st, uint64_t us)
{
	st->ttfb_hist[lg_bucket(us)]++;
	if (us > st->ttfb_max_us)
		st->ttfb_max_us = us;
}

/* Whether the body's kept tail ends with --expect-end, white space aside. */
static bool lg_tail_ok(const struct lg_conn *c)
{
	size_t n = c->tail_len, want = strlen(lg_cfg.expect_end);
	while (n && (c->tail[n - 1] == '\n' || c->tail[n - 1] == '\r' || c->tail[n - 1] == ' '))
		n--;
	return n >= want && memcmp(c->tail + n - want, lg_cfg.expect_end, want) == 0;
}

static void lg_complete(struct lg_thread *th, struct lg_conn *c)
{
	int64_t now = lg_now_ns();
	bool body_bad = lg_cfg.expect_end && c->status < 300 && !lg_tail_ok(c);
	if (c->status >= 400 || body_bad)
		lg_log_failure(c, body_bad ? "body" : "status");
	lg_log_time(c->started_ns, c->got_first_byte ? c->first_byte_ns : now, now, c->status,
		    body_bad ? "body" : c->status >= 400 ? "status" : "ok");
	c->inflight = false;
	if (lg_cfg.follow_ms) {
		if (c->status == 200)
			lg_follow_take(th, c);
		lg_follow_again(th, c);
	}
	if (now >= lg_measure_from_ns && now <= lg_end_ns)
		th->st.done++;
	if (lg_measuring(c->started_ns) && now <= lg_end_ns) {
		uint64_t us = (uint64_t)(now - c->started_ns) / 1000;
		th->st.requests++;
		th->st.status[c->status]++;
		lg_record(&th->st, us);
		lg_record_ttfb(&th->st, (uint64_t)((c->got_first_byte ? c->first_byte_ns : now) -
						   c->started_ns) / 1000);
		if (c->status >= 400 || body_bad)
			th->st.errors++;
		if (body_bad)
			th->st.body_errors++;
	}
	if (lg_cfg.once) {
		c->finished = true;
		th->finished++;
		lg_close(th, c, 0);
		return;
	}
	if (c->close_after) {
		lg_close(th, c, 0);
		th->st.reconnects++;
		return;
	}
	if (now < lg_end_ns)
		lg_next(th, c, now);
}

/* Body bytes (a chunked body's data only): the first one's time, the tail. */
static void lg_payload(struct lg_conn *c, const char *p, size_t n)
{
	if (!n)
		return;
	if (!c->got_first_byte) {
		c->got_first_byte = true;
		c->first_byte_ns = lg_now_ns();
	}
	if (lg_cfg.follow_ms && c->head_body_len < sizeof(c->head_body) - 1) {
		size_t take = sizeof(c->head_body) - 1 - c->head_body_len;
		if (take > n)
			take = n;
		memcpy(c->head_body + c->head_body_len, p, take);
		c->head_body_len += take;
	}
	if (!lg_cfg.expect_end)
		return;
	if (n >= LG_TAIL) {
		memcpy(c->tail, p + n - LG_TAIL, LG_TAIL);
		c->tail_len = LG_TAIL;
		return;
	}
	if (c->tail_len + n > LG_TAIL) {
		size_t drop = c->tail_len + n - LG_TAIL;
		memmove(c->tail, c->tail + drop, c->tail_len - drop);
		c->tail_len -= drop;
	}
	memcpy(c->tail + c->tail_len, p, n);
	c->tail_len += n;
}

/* Take body bytes: 1 when the answer is complete (and nothing follows
 * it), 0 when more is to come, -1 when it is malformed or followed by
 * more (nothing was pipelined, so that is garbage). */
static int lg_body(struct lg_conn *c, const char *p, size_t n)
{
	if (!c->chunked) {
		if (n > c->body_left)
			return -1;
		lg_payload(c, p, n);
		c->body_left -= n;
		return c->body_left == 0;
	}
	for (size_t i = 0; i < n;) {
		char ch = p[i];
		switch (c->chunk_state) {
		case LG_CH_SIZE:
		case LG_CH_EXT:
			i++;
			if (ch == '\n') {
				if (!c->chunk_digits)
					return -1;
				c->chunk_state = c->body_left ? LG_CH_DATA : LG_CH_TRAILER;
				c->trailer_line = 0;
			} else if (c->chunk_state == LG_CH_EXT || ch == '\r') {
				/* extensions, and the CR, are skipped */
			} else if (ch == ';' || ch == ' ' || ch == '\t') {
				c->chunk_state = LG_CH_EXT;
			} else {
				int d = ch >= '0' && ch <= '9' ? ch - '0'
					: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
					: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
				if (d < 0 || ++c->chunk_digits > 15)
					return -1;
				c->body_left = c->body_left * 16 + (unsigned long long)d;
			}
			break;
		case LG_CH_DATA: {
			size_t take = n - i < c->body_left ? n - i : (size_t)c->body_left;
			lg_payload(c, p + i, take);
			c->body_left -= take;
			i += take;
			if (c->body_left == 0)
				c->chunk_state = LG_CH_DATA_END;
			break;
		}
		case LG_CH_DATA_END:
			i++;
			if (ch == '\n') {
				c->chunk_state = LG_CH_SIZE;
				c->chunk_digits = 0;
			} else if (ch != '\r') {
				return -1;
			}
			break;
		case LG_CH_TRAILER:
			i++;
			if (ch == '\n') {
				if (c->trailer_line == 0)
					return i == n ? 1 : -1;
				c->trailer_line = 0;
			} else if (ch != '\r') {
				c->trailer_line++;
			}
			break;
		}
	}
	return 0;
}

static void lg_on_readable(struct lg_thread *th, struct lg_conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, th->scratch, sizeof(th->scratch), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 && c->waiting) {
			/* Closed while idle between paced requests: connect again. */
			th->st.reconnects++;
			lg_close(th, c, 0);
			return;
		}
		if (n <= 0) {
			/* A keep-alive connection the server closed before any of
			 * the answer came: resend once on a new connection. */
			if (n == 0 && !c->in_body && c->hdr_len == 0 && !c->resent) {
				th->st.reconnects++;
				lg_close(th, c, 0);
				c->resent = true;
				return;
			}
			lg_count_error(th, c, &th->st.transport_errors);
			lg_close(th, c, 0);
			return;
		}
		if (lg_measuring(c->started_ns))
			th->st.bytes += (unsigned long long)n;
		size_t used = 0;
		if (!c->in_body) {
			size_t prev = c->hdr_len, take = (size_t)n;
			if (c->hdr_len + take > LG_HDR_MAX - 1)
				take = LG_HDR_MAX - 1 - c->hdr_len;
			memcpy(c->hdr + c->hdr_len, th->scratch, take);
			size_t scan_from = c->hdr_len > 3 ? c->hdr_len - 3 : 0;
			c->hdr_len += take;
			c->hdr[c->hdr_len] = '\0';
			char *end = strstr(c->hdr + scan_from, "\r\n\r\n");
			if (!end) {
				if (c->hdr_len >= LG_HDR_MAX - 1) {
					lg_count_error(th, c, &th->st.parse_errors);
					lg_close(th, c, 0);
				}
				continue;
			}
			size_t head = (size_t)(end - c->hdr) + 4;
			if (!lg_parse_head(c, head)) {
				lg_count_error(th, c, &th->st.parse_errors);
				lg_close(th, c, 0);
				return;
			}
			c->in_body = true;
			/* The bytes of this read past the head belong to the body. */
			used = head - prev;
		}
		int done = lg_body(c, th->scratch + used, (size_t)n - used);
		if (done < 0) {
			lg_count_error(th, c, &th->st.parse_errors);
			lg_close(th, c, 0);
			return;
		}
		if (done) {
			c->in_body = false;
			c->hdr_len = 0;
			lg_complete(th, c);
			return;
		}
	}
}

static void lg_on_event(struct lg_thread *th, struct lg_conn *c, uint32_t events)
{
	if (c->state == LG_CONNECTING) {
		int soerr = 0;
		socklen_t len = sizeof(soerr);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		if (soerr || (events & (EPOLLERR | EPOLLHUP))) {
			th->st.connect_errors++;
			th->st.errors++;
			lg_close(th, c, lg_now_ns() + LG_RETRY_NS);
			return;
		}
		if (c->resent) {
			/* The same request again, as its clock still runs. */
			c->req_off = 0;
			c->state = LG_WRITING;
			lg_send(th, c);
			return;
		}
		if ((lg_cfg.rate > 0 && lg_now_ns() < c->due_ns) ||
		    (lg_cfg.follow_ms && !lg_follow_due(th, lg_now_ns()))) {
			/* Connected before the first request is due (or again while
			 * idle): wait for the schedule, listening for a close. */
			lg_arm(th, c, EPOLLIN, EPOLL_CTL_MOD);
			c->state = LG_READING;
			c->hdr_len = 0;
			c->in_body = false;
			if (!c->waiting)
				th->waiting++;
			c->waiting = true;
			return;
		}
		c->state = LG_WRITING;
		lg_next(th, c, lg_now_ns());
		return;
	}
	if (c->state == LG_WRITING) {
		if (events & EPOLLERR) {
			lg_count_error(th, c, &th->st.transport_errors);
			lg_close(th, c, 0);
			return;
		}
		lg_send(th, c);
		return;
	}
	if (c->state == LG_READING)
		lg_on_readable(th, c);
}

/* Wait for events until the earliest paced request is due (nanosecond
 * precision with epoll_pwait2: a millisecond timer would add up to 1 ms to
 * every latency measured from the schedule). */
static int lg_wait(struct lg_thread *th, struct epoll_event *evs, int max, int64_t now)
{
	int64_t until = lg_end_ns;
	if (th->down && now + 5000000 < until)
		until = now + 5000000;
	if (th->waiting && lg_cfg.follow_ms) {
		if (th->n_heap && th->heap[0].due_ns < until)
			until = th->heap[0].due_ns;
	} else if (th->waiting) {
		for (size_t i = 0; i < th->n_conns; i++)
			if (th->conns[i].waiting && th->conns[i].due_ns < until)
				until = th->conns[i].due_ns;
	}
	if (until > now + 100000000)
		until = now + 100000000;
	int64_t d = until > now ? until - now : 0;
	struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
	int n = epoll_pwait2(th->ep, evs, max, &ts, NULL);
	if (n < 0 && errno == ENOSYS)
		n = epoll_wait(th->ep, evs, max, (int)((d + 999999) / 1000000));
	return n;
}

/* Paced: a server that fell behind leaves requests that were due in the
 * window and never answered (the one in flight, and those never sent).
 * Each counts with the time it had waited when the window closed, a lower
 * bound of its latency, so p99 cannot look good because most requests
 * never finished. */
static void lg_count_backlog(struct lg_thread *th)
{
	if (lg_cfg.follow_ms) {
		/* Beats due in the window and never sent (each node is due once
		 * at a time: the next comes only after this one). */
		for (size_t i = 0; i < th->n_heap; i++) {
			int64_t due = th->heap[i].due_ns;
			if (!lg_measuring(due) || due >= lg_end_ns)
				continue;
			th->st.unfinished++;
			lg_log_time(due, lg_end_ns, lg_end_ns, 0, "unfinished");
			lg_record(&th->st, (uint64_t)(lg_end_ns - due) / 1000);
			lg_record_ttfb(&th->st, (uint64_t)(lg_end_ns - due) / 1000);
		}
	}
	int64_t period = lg_cfg.rate > 0 ? (int64_t)((double)lg_cfg.connections * 1e9 / lg_cfg.rate)
					 : INT64_MAX / 4;
	for (size_t i = 0; i < th->n_conns; i++) {
		struct lg_conn *c = &th->conns[i];
		if (c->inflight && lg_measuring(c->started_ns)) {
			th->st.unfinished++;
			lg_log_time(c->started_ns, c->got_first_byte ? c->first_byte_ns : lg_end_ns,
				    lg_end_ns, c->status, "unfinished");
			lg_record(&th->st, (uint64_t)(lg_end_ns - c->started_ns) / 1000);
			lg_record_ttfb(&th->st, (uint64_t)((c->got_first_byte ? c->first_byte_ns
									 : lg_end_ns) -
							   c->started_ns) / 1000);
		}
		for (int64_t due = c->due_ns; lg_cfg.rate > 0 && due < lg_end_ns; due += period) {
			if (!lg_measuring(due))
				continue;
			th->st.unfinished++;
			lg_log_time(due, lg_end_ns, lg_end_ns, 0, "unfinished");
			lg_record(&th->st, (uint64_t)(lg_end_ns - due) / 1000);
			lg_record_ttfb(&th->st, (uint64_t)(lg_end_ns - due) / 1000);
		}
	}
}

static void *lg_thread_main(void *arg)
{
	struct lg_thread *th = arg;
	struct epoll_event evs[256];
	for (size_t i = 0; i < th->n_conns; i++)
		lg_connect(th, &th->conns[i]);
	for (;;) {
		int64_t now = lg_now_ns();
		if (now >= lg_end_ns || (lg_cfg.once && th->finished == th->n_conns))
			break;
		int n = lg_wait(th, evs, 256, now);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "loadgen: epoll_wait: %s\n", strerror(errno));
			exit(2);
		}
		for (int i = 0; i < n; i++)
			lg_on_event(th, evs[i].data.ptr, evs[i].events);
		if (th->waiting) {
			now = lg_now_ns();
			for (size_t i = 0; i < th->n_conns && now < lg_end_ns; i++) {
				struct lg_conn *c = &th->conns[i];
				if (c->waiting && c->fd >= 0 && c->state == LG_READING &&
				    (lg_cfg.follow_ms ? lg_follow_due(th, now) : c->due_ns <= now))
					lg_next(th, c, now);
			}
		}
		if (th->down) {
			now = lg_now_ns();
			for (size_t i = 0; i < th->n_conns && now < lg_end_ns; i++)
				if (th->conns[i].state == LG_DOWN && !th->conns[i].finished &&
				    th->conns[i].retry_at_ns <= now)
					lg_connect(th, &th->conns[i]);
		}
	}
	if (lg_cfg.rate > 0 || lg_cfg.follow_ms)
		lg_count_backlog(th);
	if (lg_cfg.once)
		th->st.unfinished += th->n_conns - th->finished;
	for (size_t i = 0; i < th->n_conns; i++)
		if (th->conns[i].fd >= 0)
			close(th->conns[i].fd);
	if (atomic_fetch_sub(&lg_threads_running, 1) == 1)
		pthread_kill(lg_main_thread, SIGUSR1);
	return NULL;
}

/* --- set-up and report ---------------------------------------------------------- */

static int lg_load_nodes(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	size_t cap = 0;
	if (!f) {
		fprintf(stderr, "loadgen: cannot open nodes file %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *id = strtok_r(line, " \t\r\n", &save);
		char *token = id ? strtok_r(NULL, " \t\r\n", &save) : NULL;
		if (!id)
			continue;
		if (lg_cfg.n_nodes == cap) {
			cap = cap ? 2 * cap : 1024;
			struct lg_node *nn = realloc(lg_cfg.nodes, cap * sizeof(*nn));
			if (!nn)
				goto oom;
			lg_cfg.nodes = nn;
		}
		struct lg_node *nd = &lg_cfg.nodes[lg_cfg.n_nodes];
		nd->id = strdup(id);
		nd->token = strdup(token ? token : "");
		if (!nd->id || !nd->token)
			goto oom;
		lg_cfg.n_nodes++;
	}
	fclose(f);
	explicit_bzero(line, sizeof(line));
	if (lg_cfg.n_nodes == 0) {
		fprintf(stderr, "loadgen: nodes file %s has no lines\n", path);
		return -1;
	}
	return 0;
oom:
	fclose(f);
	fprintf(stderr, "loadgen: out of memory reading %s\n", path);
	return -1;
}

/* The q-th quantile of a histogram, in microseconds (max_us past the last
 * bucket). Its count is the histogram's own: answered requests, and when
 * paced those unfinished in the window. */
/* A whole file into *out (NUL-terminated; the caller frees). */
static int lg_read_file(char **out, const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	*out = NULL;
	if (!f) {
		fprintf(stderr, "loadgen: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap + 65536 + 1);
			if (!nb) {
				free(buf);
				fclose(f);
				fprintf(stderr, "loadgen: out of memory reading %s\n", path);
				return -1;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		fprintf(stderr, "loadgen: cannot read %s\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static double lg_percentile(const uint64_t *hist, uint64_t max_us, double q)
{
	unsigned long long total = 0;
	for (size_t i = 0; i < LG_BUCKETS; i++)
		total += hist[i];
	if (total == 0)
		return 0;
	unsigned long long want = (unsigned long long)(q * (double)total + 0.5), seen = 0;
	if (want == 0)
		want = 1;
	for (size_t i = 0; i < LG_BUCKETS; i++) {
		seen += hist[i];
		if (seen >= want)
			return lg_bucket_value(i);
	}
	return (double)max_us;
}

static void lg_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void lg_report(FILE *f, const struct lg_stats *st, double seconds)
{
	fprintf(f, "{\"label\": ");
	lg_json_string(f, lg_cfg.label ? lg_cfg.label : "");
	fprintf(f, ", \"method\": ");
	lg_json_string(f, lg_cfg.method);
	fprintf(f, ", \"started_at\": %lld.%06lld", (long long)(lg_wall0_ns / 1000000000),
		(long long)(lg_wall0_ns % 1000000000 / 1000));
	fprintf(f, ", \"connections\": %u, \"threads\": %u, \"nodes\": %zu, \"rate\": %.1f, \"seconds\": %.3f, "
		   "\"requests\": %llu, \"rps\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, "
		   "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"ttfb_p50_ms\": %.3f, \"ttfb_p90_ms\": %.3f, "
		   "\"ttfb_p99_ms\": %.3f, \"ttfb_max_ms\": %.3f, \"errors\": %llu, "
		   "\"connect_errors\": %llu, \"transport_errors\": %llu, \"parse_errors\": %llu, "
		   "\"body_errors\": %llu, \"reconnects\": %llu, \"unfinished\": %llu, "
		   "\"bytes_read\": %llu, \"follow_interval_ms\": %u, \"told_min_ms\": %u, "
		   "\"told_max_ms\": %u, \"status\": {",
		lg_cfg.connections, lg_cfg.threads,
		lg_cfg.n_nodes ? lg_cfg.n_nodes : (size_t)lg_cfg.connections, lg_cfg.rate, seconds,
		st->requests, seconds > 0 ? (double)st->done / seconds : 0.0,
		lg_percentile(st->hist, st->max_us, 0.50) / 1000.0,
		lg_percentile(st->hist, st->max_us, 0.90) / 1000.0,
		lg_percentile(st->hist, st->max_us, 0.99) / 1000.0, (double)st->max_us / 1000.0,
		lg_percentile(st->ttfb_hist, st->ttfb_max_us, 0.50) / 1000.0,
		lg_percentile(st->ttfb_hist, st->ttfb_max_us, 0.90) / 1000.0,
		lg_percentile(st->ttfb_hist, st->ttfb_max_us, 0.99) / 1000.0,
		(double)st->ttfb_max_us / 1000.0, st->errors, st->connect_errors, st->transport_errors,
		st->parse_errors, st->body_errors, st->reconnects, st->unfinished, st->bytes,
		lg_cfg.follow_ms, st->told_min_ms, st->told_max_ms);
	bool first = true;
	for (int s = 100; s < 600; s++) {
		if (!st->status[s])
			continue;
		fprintf(f, "%s\"%d\": %llu", first ? "" : ", ", s, st->status[s]);
		first = false;
	}
	fprintf(f, "}}\n");
}

static void lg_usage(FILE *f)
{
	fprintf(f,
		"usage: loadgen --target 127.0.0.1:PORT [options]\n"
		"  -c, --connections N   keep-alive connections (default 64)\n"
		"  -t, --threads N       event-loop threads (default 1)\n"
		"  -d, --duration S      measured seconds (default 10)\n"
		"  -w, --warmup S        seconds before measuring (default 0)\n"
		"  -r, --rate R          pace R requests/s over all connections, latency\n"
		"                        counted from when each was due (default: closed loop)\n"
		"  -F, --follow-interval MS  every node beats at the interval its answers tell\n"
		"                        (\"interval_ms\"), the first beats spread over MS;\n"
		"                        latency counted from when each was due\n"
		"  -m, --method M        request method (default GET)\n"
		"  -p, --path P          path template (default /)\n"
		"  -b, --body B          body template (sent as application/json)\n"
		"  -B, --body-file F     the body template from a file (large prompts)\n"
		"  -e, --expect-end T    a 2xx body must end with T (white space aside)\n"
		"  -1, --once            one request per connection; done when all are answered\n"
		"  -f, --failures F      one line per failed request: its start (wall clock,\n"
		"                        seconds), what failed (status, transport, parse, body),\n"
		"                        the status\n"
		"  -x, --times F         one line per request (answered, failed, or due and\n"
		"                        unanswered at the end): its start (wall clock, s),\n"
		"                        ms to the first body byte and to the end, the\n"
		"                        status, what (ok, status, body, transport, parse,\n"
		"                        unfinished)\n"
		"  -H, --header 'N: V'   header template, repeatable\n"
		"  -n, --nodes-file F    one \"ID TOKEN\" line per simulated node\n"
		"  -N, --nodes N         simulated nodes without a file (default: connections)\n"
		"  -l, --label L         name in the JSON result\n"
		"  -o, --output F        write the JSON result to F (default stdout)\n"
		"SIGINT or SIGTERM ends the run early (the report covers the window until then).\n"
		"Templates: {i} node index, {id} and {token} from the nodes file, {seq} a\n"
		"number that grows with every request.\n"
		"Answers: Content-Length or chunked; ttfb_* is the time to the first body byte.\n");
}

static int lg_parse_target(const char *s)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	long port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -1;
	lg_cfg.addr.sin_family = AF_INET;
	lg_cfg.addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &lg_cfg.addr.sin_addr) != 1)
		return -1;
	snprintf(lg_cfg.host, sizeof(lg_cfg.host), "%s:%ld", host, port);
	/* Loopback only: 127.0.0.0/8. */
	if ((ntohl(lg_cfg.addr.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "loadgen: %s is not a loopback address\n", host);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"target", required_argument, NULL, 'T'},  {"connections", required_argument, NULL, 'c'},
		{"threads", required_argument, NULL, 't'}, {"duration", required_argument, NULL, 'd'},
		{"warmup", required_argument, NULL, 'w'},  {"method", required_argument, NULL, 'm'},
		{"path", required_argument, NULL, 'p'},    {"body", required_argument, NULL, 'b'},
		{"header", required_argument, NULL, 'H'},  {"nodes-file", required_argument, NULL, 'n'},
		{"nodes", required_argument, NULL, 'N'},   {"label", required_argument, NULL, 'l'},
		{"output", required_argument, NULL, 'o'},  {"help", no_argument, NULL, 'h'},
		{"rate", required_argument, NULL, 'r'},    {"body-file", required_argument, NULL, 'B'},
		{"expect-end", required_argument, NULL, 'e'}, {"once", no_argument, NULL, '1'},
		{"failures", required_argument, NULL, 'f'}, {"times", required_argument, NULL, 'x'},
		{"follow-interval", required_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	const char *target = NULL, *nodes_file = NULL, *path = "/", *failures = NULL,
		   *times = NULL;
	unsigned long nodes_n = 0;
	int opt;
	lg_cfg.connections = 64;
	lg_cfg.threads = 1;
	lg_cfg.duration_s = 10;
	lg_cfg.method = "GET";
	while ((opt = getopt_long(argc, argv, "T:c:t:d:w:r:F:m:p:b:B:e:1f:x:H:n:N:l:o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'T': target = optarg; break;
		case 'c': lg_cfg.connections = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': lg_cfg.threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': lg_cfg.duration_s = strtod(optarg, NULL); break;
		case 'w': lg_cfg.warmup_s = strtod(optarg, NULL); break;
		case 'r': lg_cfg.rate = strtod(optarg, NULL); break;
		case 'F': lg_cfg.follow_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'm': lg_cfg.method = optarg; break;
		case 'p': path = optarg; break;
		case 'b':
			if (lg_cfg.has_body || lg_template_parse(&lg_cfg.body, optarg))
				return 2;
			lg_cfg.has_body = true;
			break;
		case 'B':
			if (lg_cfg.has_body || lg_read_file(&lg_cfg.body_file_text, optarg) ||
			    lg_template_parse(&lg_cfg.body, lg_cfg.body_file_text))
				return 2;
			lg_cfg.has_body = true;
			break;
		case 'e': lg_cfg.expect_end = optarg; break;
		case '1': lg_cfg.once = true; break;
		case 'f': failures = optarg; break;
		case 'x': times = optarg; break;
		case 'H':
			if (lg_cfg.n_headers == LG_MAX_HEADERS) {
				fprintf(stderr, "loadgen: at most %d headers\n", LG_MAX_HEADERS);
				return 2;
			}
			if (lg_template_parse(&lg_cfg.headers[lg_cfg.n_headers++], optarg))
				return 2;
			break;
		case 'n': nodes_file = optarg; break;
		case 'N': nodes_n = strtoul(optarg, NULL, 10); break;
		case 'l': lg_cfg.label = optarg; break;
		case 'o': lg_cfg.output = optarg; break;
		case 'h': lg_usage(stdout); return 0;
		default: lg_usage(stderr); return 2;
		}
	}
	if (optind != argc || !target) {
		lg_usage(stderr);
		return 2;
	}
	if (lg_parse_target(target)) {
		fprintf(stderr, "loadgen: --target must be a loopback IPv4 HOST:PORT\n");
		return 2;
	}
	if (lg_cfg.connections == 0 || lg_cfg.threads == 0 || lg_cfg.threads > lg_cfg.connections ||
	    !(lg_cfg.duration_s > 0) || lg_cfg.warmup_s < 0 || lg_cfg.rate < 0) {
		fprintf(stderr, "loadgen: need connections >= threads >= 1 and a positive duration\n");
		return 2;
	}
	if (lg_cfg.follow_ms && (lg_cfg.rate > 0 || lg_cfg.once || lg_cfg.follow_ms < 1 ||
				 lg_cfg.follow_ms > 600000)) {
		fprintf(stderr, "loadgen: --follow-interval takes 1 to 600000 ms, without --rate or --once\n");
		return 2;
	}
	if (lg_template_parse(&lg_cfg.path, path))
		return 2;
	if (nodes_file && lg_load_nodes(nodes_file))
		return 2;
	if (nodes_n) {
		if (lg_cfg.nodes && nodes_n > lg_cfg.n_nodes) {
			fprintf(stderr, "loadgen: --nodes %lu but the file has %zu\n", nodes_n, lg_cfg.n_nodes);
			return 2;
		}
		lg_cfg.n_nodes = nodes_n;
	}
	bool needs_file = lg_cfg.path.uses_node_file || lg_cfg.body.uses_node_file;
	for (size_t h = 0; h < lg_cfg.n_headers; h++)
		needs_file |= lg_cfg.headers[h].uses_node_file;
	if (needs_file && !lg_cfg.nodes) {
		fprintf(stderr, "loadgen: {id} and {token} need --nodes-file\n");
		return 2;
	}
	/* Buffers sized for the largest expansion: a 220 KB prompt needs no
	 * compile-time limit, and 5,000 connections with small bodies no
	 * large one each. */
	size_t field_max = 0;
	for (size_t i = 0; i < lg_cfg.n_nodes && lg_cfg.nodes; i++) {
		size_t a = strlen(lg_cfg.nodes[i].id), b = strlen(lg_cfg.nodes[i].token);
		if (a > field_max)
			field_max = a;
		if (b > field_max)
			field_max = b;
	}
	lg_cfg.body_max = lg_cfg.has_body ? lg_template_max(&lg_cfg.body, field_max) : 0;
	lg_cfg.req_max = LG_REQ_HEAD_MAX + lg_cfg.body_max + 1;
	if (failures && !(lg_cfg.failures = fopen(failures, "w"))) {
		fprintf(stderr, "loadgen: cannot write %s: %s\n", failures, strerror(errno));
		return 2;
	}
	if (times && !(lg_cfg.times = fopen(times, "w"))) {
		fprintf(stderr, "loadgen: cannot write %s: %s\n", times, strerror(errno));
		return 2;
	}

	/* One descriptor per connection: raise the soft limit to the hard one. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	/* Sequence numbers above any earlier run's: microseconds of wall clock. */
	lg_seq_base = (unsigned long long)wall.tv_sec * 1000000ull + (unsigned long long)wall.tv_nsec / 1000;
	lg_wall0_ns = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec;
	lg_t0_ns = lg_now_ns();
	lg_measure_from_ns = lg_t0_ns + (int64_t)(lg_cfg.warmup_s * 1e9);
	lg_end_ns = lg_measure_from_ns + (int64_t)(lg_cfg.duration_s * 1e9);

	/* The stop signals are taken by this thread alone, synchronously
	 * (sigwait below), so no handler runs amid a thread's work; the
	 * threads inherit the mask. SIGUSR1 is the last thread telling it the
	 * run is over, so it sleeps until one or the other instead of polling. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	lg_main_thread = pthread_self();
	atomic_store(&lg_threads_running, lg_cfg.threads);

	struct lg_thread *ths = calloc(lg_cfg.threads, sizeof(*ths));
	struct lg_conn *conns = calloc(lg_cfg.connections, sizeof(*conns));
	if (!ths || !conns) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 2;
	}
	for (unsigned i = 0; i < lg_cfg.connections; i++) {
		conns[i].fd = -1;
		if (!(conns[i].req = malloc(lg_cfg.req_max))) {
			fprintf(stderr, "loadgen: out of memory\n");
			return 2;
		}
		/* Paced: the connections' first requests spread over one period. */
		if (lg_cfg.rate > 0)
			conns[i].due_ns = lg_t0_ns + (int64_t)((double)i * 1e9 / lg_cfg.rate);
	}
	size_t fleet = lg_cfg.n_nodes ? lg_cfg.n_nodes : lg_cfg.connections;
	if (lg_cfg.follow_ms) {
		if (fleet > UINT32_MAX || !(lg_told = calloc(fleet, sizeof(*lg_told)))) {
			fprintf(stderr, "loadgen: out of memory\n");
			return 2;
		}
		for (size_t i = 0; i < fleet; i++)
			lg_told[i] = lg_cfg.follow_ms;
	}
	for (unsigned t = 0; t < lg_cfg.threads; t++) {
		size_t from = (size_t)lg_cfg.connections * t / lg_cfg.threads;
		if (lg_cfg.follow_ms) {
			/* This thread's nodes (index % threads), their first beats
			 * spread evenly over the first interval. */
			size_t mine = fleet / lg_cfg.threads + 1;
			if (!(ths[t].heap = malloc(mine * sizeof(*ths[t].heap)))) {
				fprintf(stderr, "loadgen: out of memory\n");
				return 2;
			}
			for (size_t i = t; i < fleet; i += lg_cfg.threads)
				lg_heap_push(&ths[t], lg_t0_ns + (int64_t)((double)i * lg_cfg.follow_ms * 1e6 /
									    (double)fleet),
					     (uint32_t)i);
		}
		size_t to = (size_t)lg_cfg.connections * (t + 1) / lg_cfg.threads;
		ths[t].conns = conns + from;
		ths[t].n_conns = to - from;
		ths[t].down = ths[t].n_conns; /* lg_connect counts each one up */
		if (!(ths[t].body = malloc(lg_cfg.body_max + 1)) ||
		    (ths[t].ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    pthread_create(&ths[t].tid, NULL, lg_thread_main, &ths[t]) != 0) {
			fprintf(stderr, "loadgen: cannot start thread %u\n", t);
			return 2;
		}
	}
	/* A stop moves the end to now; each thread sees it within its wait's
	 * 100 ms cap. */
	for (;;) {
		int sig = 0;
		if (sigwait(&sigs, &sig) != 0 || sig == SIGUSR1)
			break;
		int64_t now = lg_now_ns();
		if (now < lg_end_ns)
			lg_end_ns = now;
	}
	struct lg_stats total;
	memset(&total, 0, sizeof(total));
	for (unsigned t = 0; t < lg_cfg.threads; t++) {
		pthread_join(ths[t].tid, NULL);
		lg_stats_add(&total, &ths[t].st);
		close(ths[t].ep);
		free(ths[t].body);
		free(ths[t].heap);
	}
	if (lg_cfg.failures)
		fclose(lg_cfg.failures);
	if (lg_cfg.times)
		fclose(lg_cfg.times);
	double seconds = (double)(lg_end_ns - lg_measure_from_ns) / 1e9;
	FILE *out = stdout;
	if (lg_cfg.output && !(out = fopen(lg_cfg.output, "w"))) {
		fprintf(stderr, "loadgen: cannot write %s: %s\n", lg_cfg.output, strerror(errno));
		return 2;
	}
	lg_report(out, &total, seconds);
	if (out != stdout)
		fclose(out);
	for (size_t i = 0; i < lg_cfg.n_nodes && lg_cfg.nodes; i++) {
		explicit_bzero(lg_cfg.nodes[i].token, strlen(lg_cfg.nodes[i].token));
		free(lg_cfg.nodes[i].id);
		free(lg_cfg.nodes[i].token);
	}
	free(lg_cfg.nodes);
	free(lg_told);
	for (unsigned i = 0; i < lg_cfg.connections; i++)
		free(conns[i].req);
	free(conns);
	free(ths);
	free(lg_cfg.body_file_text);
	return 0;
}
