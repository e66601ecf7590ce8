/* watchers: many Server-Sent Events watchers of novad's routing table, for
 * `make bench` (bench/run.sh), not part of libnova.
 *
 * Opens N keep-alive connections to GET /v1/routes/watch on one epoll loop,
 * decodes each stream (chunked or not) into events, and waits until every
 * watcher has its snapshot (then touches --ready FILE, so the caller can
 * make something happen), and then until every watcher has had an `update`
 * event whose data contains --match, or the time runs out. For each watcher
 * it writes the wall-clock time that event arrived (unix seconds with
 * microseconds, "-" when it never did) to --times FILE, one line per
 * watcher, so the caller can compare them with when novad detected the
 * change (a timestamp only the database knows). A JSON summary line goes to
 * stdout (or -o FILE). Only 127.0.0.0/8 targets are accepted; the token is
 * read from a file (loadgen's nodes file format, "ID TOKEN") and never
 * printed.
 *
 * Rejected: a thread per watcher (1,000 threads on a 2-core machine measure
 * the scheduler), and reusing loadgen (request/answer loop, no streams). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct wconn {
	int fd;
	bool head_done, chunked, snapshot, got, dead;
	/* raw bytes not yet decoded (headers, chunk framing) */
	char *raw;
	size_t raw_len, raw_cap;
	long long chunk_left; /* -1: expecting a size line */
	bool chunk_crlf;      /* expecting the CRLF after a chunk's data */
	/* decoded stream bytes not yet split into events */
	char *ev;
	size_t ev_len, ev_cap;
	double got_at;
};

static const char *match = "";

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void buf_append(char **b, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = *cap ? *cap : 4096;
		while (nc < *len + n + 1)
			nc *= 2;
		char *nb = realloc(*b, nc);
		if (!nb) {
			fprintf(stderr, "watchers: out of memory\n");
			exit(1);
		}
		*b = nb;
		*cap = nc;
	}
	memcpy(*b + *len, p, n);
	*len += n;
	(*b)[*len] = '\0';
}

static void buf_consume(char *b, size_t *len, size_t n)
{
	memmove(b, b + n, *len - n);
	*len -= n;
	b[*len] = '\0';
}

/* Split decoded bytes into events ("...\n\n"); note snapshots and the
 * first matching update. */
static void w_events(struct wconn *c, double now)
{
	char *end;
	while ((end = strstr(c->ev, "\n\n"))) {
		size_t n = (size_t)(end - c->ev) + 2;
		*end = '\0';
		if (strstr(c->ev, "event: snapshot"))
			c->snapshot = true;
		else if (!c->got && strstr(c->ev, "event: update") && strstr(c->ev, match)) {
			c->got = true;
			c->got_at = now;
		}
		buf_consume(c->ev, &c->ev_len, n);
	}
}

/* Decode what arrived: headers once, then chunk framing. 0 ok, -1 broken. */
static int w_decode(struct wconn *c, double now)
{
	if (!c->head_done) {
		char *end = strstr(c->raw, "\r\n\r\n");
		if (!end)
			return 0;
		if (strncmp(c->raw, "HTTP/1.1 200", 12) != 0) {
			fprintf(stderr, "watchers: %.40s\n", c->raw);
			return -1;
		}
		*end = '\0';
		c->chunked = strcasestr(c->raw, "transfer-encoding: chunked") != NULL;
		c->head_done = true;
		c->chunk_left = -1;
		buf_consume(c->raw, &c->raw_len, (size_t)(end - c->raw) + 4);
	}
	if (!c->chunked) {
		buf_append(&c->ev, &c->ev_len, &c->ev_cap, c->raw, c->raw_len);
		c->raw_len = 0;
		w_events(c, now);
		return 0;
	}
	for (;;) {
		if (c->chunk_crlf) {
			if (c->raw_len < 2)
				return 0;
			buf_consume(c->raw, &c->raw_len, 2);
			c->chunk_crlf = false;
		}
		if (c->chunk_left < 0) {
			char *nl = strstr(c->raw, "\r\n");
			if (!nl)
				return 0;
			c->chunk_left = strtoll(c->raw, NULL, 16);
			buf_consume(c->raw, &c->raw_len, (size_t)(nl - c->raw) + 2);
			if (c->chunk_left == 0)
				return -1; /* the stream ended */
		}
		size_t n = c->raw_len < (size_t)c->chunk_left ? c->raw_len : (size_t)c->chunk_left;
		if (n == 0)
			return 0;
		buf_append(&c->ev, &c->ev_len, &c->ev_cap, c->raw, n);
		buf_consume(c->raw, &c->raw_len, n);
		c->chunk_left -= (long long)n;
		if (c->chunk_left == 0) {
			c->chunk_left = -1;
			c->chunk_crlf = true;
		}
		w_events(c, now);
	}
}

static int w_connect(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: watchers -T 127.0.0.1:PORT -n TOKENFILE [-c CONNS] [-d SECONDS] [-m MATCH]\n"
		"                [--ready FILE] [--times FILE] [-o FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *target = NULL, *tokfile = NULL, *ready = NULL, *times = NULL, *out = NULL;
	int conns = 1000;
	double seconds = 60;
	static const struct option lo[] = {
		{"ready", required_argument, NULL, 'R'}, {"times", required_argument, NULL, 't'}, {0}};
	int o;
	while ((o = getopt_long(argc, argv, "T:n:c:d:m:o:", lo, NULL)) != -1) {
		switch (o) {
		case 'T': target = optarg; break;
		case 'n': tokfile = optarg; break;
		case 'c': conns = atoi(optarg); break;
		case 'd': seconds = atof(optarg); break;
		case 'm': match = optarg; break;
		case 'o': out = optarg; break;
		case 'R': ready = optarg; break;
		case 't': times = optarg; break;
		default: usage();
		}
	}
	if (!target || !tokfile || conns < 1)
		usage();
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char host[64];
	const char *colon = strrchr(target, ':');
	if (!colon || (size_t)(colon - target) >= sizeof(host))
		usage();
	memcpy(host, target, (size_t)(colon - target));
	host[colon - target] = '\0';
	sa.sin_port = htons((unsigned short)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "watchers: only 127.0.0.0/8 targets\n");
		return 2;
	}
	char token[512] = "";
	FILE *tf = fopen(tokfile, "r");
	if (!tf || fscanf(tf, "%*s %511s", token) != 1) {
		fprintf(stderr, "watchers: cannot read a token from %s\n", tokfile);
		return 2;
	}
	fclose(tf);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	char req[1024];
	int reqlen = snprintf(req, sizeof(req),
			      "GET /v1/routes/watch HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
			      "Accept: text/event-stream\r\n\r\n", target, token);
	explicit_bzero(token, sizeof(token));
	struct wconn *cs = calloc((size_t)conns, sizeof(*cs));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cs || ep < 0)
		return 1;
	int connected = 0;
	double t0 = mono_now();
	/* Connect and send one at a time (blocking), so the listen backlog is
	 * never the limit; then the streams are read non-blocking. */
	for (int i = 0; i < conns; i++) {
		struct wconn *c = &cs[i];
		c->fd = w_connect(&sa);
		if (c->fd < 0 || write(c->fd, req, (size_t)reqlen) != reqlen) {
			c->dead = true;
			continue;
		}
		fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
		connected++;
	}
	explicit_bzero(req, sizeof(req));
	bool announced = false;
	int snapshots = 0, got = 0, dead = conns - connected;
	double ready_at = 0;
	char buf[65536];
	struct epoll_event evs[256];
	while (mono_now() - t0 < seconds && got + dead < conns) {
		int n = epoll_wait(ep, evs, 256, 50);
		double now = wall_now();
		for (int k = 0; k < n; k++) {
			struct wconn *c = &cs[evs[k].data.u32];
			for (;;) {
				ssize_t r = read(c->fd, buf, sizeof(buf));
				if (r > 0) {
					buf_append(&c->raw, &c->raw_len, &c->raw_cap, buf, (size_t)r);
					continue;
				}
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				c->dead = true; /* closed or failed */
				break;
			}
			bool had_snap = c->snapshot, had = c->got;
			if (w_decode(c, now) != 0)
				c->dead = true;
			snapshots += !had_snap && c->snapshot;
			got += !had && c->got;
			if (c->dead && !c->got) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				c->fd = -1;
				dead++;
			} else if (c->dead) {
				c->dead = false; /* already counted as got; just stop reading */
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			}
		}
		if (!announced && snapshots + dead >= conns) {
			announced = true;
			ready_at = mono_now() - t0;
			if (ready) {
				FILE *f = fopen(ready, "w");
				if (f)
					fclose(f);
			}
		}
	}
	double first = 0, last = 0;
	FILE *tfo = times ? fopen(times, "w") : NULL;
	for (int i = 0; i < conns; i++) {
		if (cs[i].got) {
			if (!first || cs[i].got_at < first)
				first = cs[i].got_at;
			if (cs[i].got_at > last)
				last = cs[i].got_at;
		}
		if (tfo) {
			if (cs[i].got)
				fprintf(tfo, "%.6f\n", cs[i].got_at);
			else
				fprintf(tfo, "-\n");
		}
		if (cs[i].fd >= 0)
			close(cs[i].fd);
		free(cs[i].raw);
		free(cs[i].ev);
	}
	if (tfo)
		fclose(tfo);
	FILE *fo = out ? fopen(out, "w") : stdout;
	if (!fo)
		fo = stdout;
	fprintf(fo,
		"{\"watchers\": %d, \"connected\": %d, \"snapshots\": %d, \"received\": %d, "
		"\"missing\": %d, \"snapshots_after_s\": %.3f, \"first_unix\": %.6f, "
		"\"last_unix\": %.6f, \"spread_ms\": %.3f}\n",
		conns, connected, snapshots, got, conns - got, ready_at, first, last,
		got ? (last - first) * 1000 : 0);
	if (fo != stdout)
		fclose(fo);
	free(cs);
	close(ep);
	return got == conns ? 0 : 3;
}
