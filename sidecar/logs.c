#include "sidecar/logs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/files.h"
#include "core/hex.h"
#include "core/http.h"
#include "core/log.h"
#include "core/rotlog.h"
#include "core/secret.h"
#include "core/textbuf.h"

/* Engines a node's logs track at once: live ones (at most the sidecar's 64
 * children) and retired ones still read by a follower or the pump. */
#define LG_MAX 128
#define LG_REPLICA_MAX 64

struct sidecar_englog {
	struct sidecar_logs *l;
	char replica[LG_REPLICA_MAX + 1];
	long long stage;
	char path[PATH_MAX];
	struct rotlog *log;
	unsigned refs;                 /* under l->lock */
	bool live;                     /* assigned: under l->lock */
	unsigned long long writes;     /* under l->lock; followers wait for it to move */
};

struct sidecar_logs {
	char dir[PATH_MAX];
	unsigned long long max_bytes;
	pthread_mutex_t lock;
	pthread_cond_t cond;           /* CLOCK_MONOTONIC: a write, a retirement, the stop */
	struct sidecar_englog *logs[LG_MAX];
	size_t n;
	unsigned char keys[SIDECAR_LOGS_MAX_KEYS][32]; /* digests, newest first */
	size_t n_keys;
	struct http_server *srv;
	atomic_bool stopping;
};

static long long lg_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- pieces --------------------------------------------------------------------------- */

size_t sidecar_logs_tail_start(const char *buf, size_t len, unsigned n)
{
	size_t end = len;
	while (end > 0 && buf[end - 1] != '\n')
		end--;
	if (end == 0 || n == 0)
		return end;
	/* end is just past the last newline; walk back n newlines. */
	size_t i = end - 1;
	unsigned seen = 0;
	while (i > 0) {
		if (buf[i - 1] == '\n' && ++seen == n)
			return i;
		i--;
	}
	return 0;
}

void sidecar_logs_lines_feed(struct textbuf *out, struct sidecar_logs_lines *st, const char *data,
			     size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '\0')
			continue;
		if (c == '\n') {
			textbuf_add(out, st->line, st->len);
			textbuf_adds(out, st->cut ? " [cut]\n" : "\n");
			st->len = 0;
			st->cut = false;
			continue;
		}
		if (st->len < sizeof(st->line))
			st->line[st->len++] = c;
		else
			st->cut = true;
	}
}

void sidecar_logs_key_id(char out[SIDECAR_LOGS_KEY_ID_HEX + 1], const char *key)
{
	char hex[SECRET_HEX_SHA256_LEN];
	secret_sha256_hex(hex, key, strlen(key));
	memcpy(out, hex, SIDECAR_LOGS_KEY_ID_HEX);
	out[SIDECAR_LOGS_KEY_ID_HEX] = '\0';
	explicit_bzero(hex, sizeof(hex));
}

/* --- the files ------------------------------------------------------------------------ */

static bool lg_name_ok(const char *s)
{
	size_t n = 0;
	for (; s && s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
			return false;
	return n > 0 && n <= LG_REPLICA_MAX;
}

int sidecar_logs_create(struct sidecar_logs **out, const char *dir, unsigned long long max_bytes,
			struct nova_err *err)
{
	struct sidecar_logs *l;
	struct stat st;
	int rc;
	*out = NULL;
	if (!dir || !*dir || strlen(dir) + 96 >= PATH_MAX)
		return nova_err_set(err, NOVA_EINVAL, "--engine-log-dir", "--engine-log-dir needs a path");
	if (max_bytes < SIDECAR_LOGS_MIN_MAX_BYTES)
		return nova_err_set(err, NOVA_EINVAL, "--engine-log-max-bytes",
				    "--engine-log-max-bytes must be at least %llu",
				    SIDECAR_LOGS_MIN_MAX_BYTES);
	if ((rc = files_mkdir_p(dir, 0700, "--engine-log-dir", err)))
		return rc;
	/* Not a link planted by someone else, and ours alone; nor inside a
	 * directory another user could rename it out of (a shared /tmp). */
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return nova_err_set(err, NOVA_EINVAL, "--engine-log-dir",
				    "%s must be a directory owned by this user", dir);
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		struct stat pst;
		*slash = '\0';
		if (stat(parent, &pst) != 0 || (pst.st_uid != geteuid() && pst.st_uid != 0) ||
		    ((pst.st_mode & 0022) && !(pst.st_mode & S_ISVTX)))
			return nova_err_set(err, NOVA_EINVAL, "--engine-log-dir",
					    "%s must be inside a directory of this user's that others "
					    "cannot write", dir);
	}
	if ((st.st_mode & 0077) && chmod(dir, 0700) != 0)
		return nova_err_set(err, NOVA_EINVAL, "--engine-log-dir", "cannot make %s private: %s",
				    dir, strerror(errno));
	if (!(l = calloc(1, sizeof(*l))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	l->max_bytes = max_bytes;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = l;
	return 0;
}

static void lg_unlink(const char *path)
{
	char p1[PATH_MAX + 4];
	unlink(path);
	snprintf(p1, sizeof(p1), "%s.1", path);
	unlink(p1);
}

/* Under l->lock: the last reference of a retired log went. */
static void lg_free(struct sidecar_logs *l, struct sidecar_englog *e, bool remove_files)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->logs[i] == e) {
			l->logs[i] = l->logs[--l->n];
			break;
		}
	rotlog_close(e->log);
	if (remove_files)
		lg_unlink(e->path);
	free(e);
}

void sidecar_logs_destroy(struct sidecar_logs *l)
{
	if (!l)
		return;
	atomic_store(&l->stopping, true);
	pthread_mutex_lock(&l->lock);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	http_server_destroy(l->srv); /* its streams see stopping within a second */
	/* What is left is closed with its files kept: a sidecar that stops
	 * (and comes back) keeps its engines' last output. */
	while (l->n)
		lg_free(l, l->logs[0], false);
	explicit_bzero(l->keys, sizeof(l->keys));
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static struct sidecar_englog *lg_find(struct sidecar_logs *l, const char *replica, long long stage)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->logs[i]->stage == stage && !strcmp(l->logs[i]->replica, replica))
			return l->logs[i];
	return NULL;
}

static void lg_path(char *out, size_t len, const struct sidecar_logs *l, const char *replica,
		    long long stage)
{
	snprintf(out, len, "%.3900s/%.64s.%lld.log", l->dir, replica, stage);
}

struct sidecar_englog *sidecar_logs_open(struct sidecar_logs *l, const char *replica, long long stage)
{
	struct sidecar_englog *e;
	struct nova_err err;
	if (!l || !lg_name_ok(replica) || stage < 0 || stage > 999)
		return NULL;
	pthread_mutex_lock(&l->lock);
	if ((e = lg_find(l, replica, stage))) {
		e->live = true;
		e->refs++;
		pthread_mutex_unlock(&l->lock);
		return e;
	}
	if (l->n == LG_MAX || !(e = calloc(1, sizeof(*e)))) {
		pthread_mutex_unlock(&l->lock);
		return NULL;
	}
	e->l = l;
	snprintf(e->replica, sizeof(e->replica), "%s", replica);
	e->stage = stage;
	lg_path(e->path, sizeof(e->path), l, replica, stage);
	/* Two files of half the cap each: between half and all of the last
	 * max_bytes are kept. */
	if (rotlog_open(&e->log, e->path, l->max_bytes / 2, 1, false, &err)) {
		nova_log_kv(NOVA_LOG_WARN, "sidecar", "cannot open an engine log", "replica", replica,
			    "error", err.message, NULL);
		free(e);
		pthread_mutex_unlock(&l->lock);
		return NULL;
	}
	e->live = true;
	e->refs = 1;
	l->logs[l->n++] = e;
	pthread_mutex_unlock(&l->lock);
	return e;
}

struct sidecar_englog *sidecar_englog_ref(struct sidecar_englog *e)
{
	if (!e)
		return NULL;
	pthread_mutex_lock(&e->l->lock);
	e->refs++;
	pthread_mutex_unlock(&e->l->lock);
	return e;
}

void sidecar_englog_release(struct sidecar_englog *e)
{
	if (!e)
		return;
	struct sidecar_logs *l = e->l;
	pthread_mutex_lock(&l->lock);
	if (--e->refs == 0 && !e->live)
		lg_free(l, e, true);
	pthread_mutex_unlock(&l->lock);
}

void sidecar_englog_write(struct sidecar_englog *e, const void *buf, size_t len)
{
	if (!e || !len)
		return;
	rotlog_write(e->log, buf, len);
	pthread_mutex_lock(&e->l->lock);
	e->writes++;
	pthread_cond_broadcast(&e->l->cond);
	pthread_mutex_unlock(&e->l->lock);
}

void sidecar_logs_retire(struct sidecar_logs *l, const char *replica, long long stage)
{
	struct sidecar_englog *e;
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	if ((e = lg_find(l, replica, stage)) && e->live) {
		e->live = false;
		pthread_cond_broadcast(&l->cond);
		if (e->refs == 0)
			lg_free(l, e, true);
	}
	pthread_mutex_unlock(&l->lock);
}

void sidecar_logs_sweep(struct sidecar_logs *l)
{
	DIR *d;
	struct dirent *de;
	if (!l || !(d = opendir(l->dir)))
		return;
	pthread_mutex_lock(&l->lock);
	while ((de = readdir(d))) {
		char replica[LG_REPLICA_MAX + 1], path[PATH_MAX + 300];
		const char *dot = strchr(de->d_name, '.');
		long long stage;
		int used = 0;
		if (!dot || (size_t)(dot - de->d_name) > LG_REPLICA_MAX)
			continue;
		snprintf(replica, sizeof(replica), "%.*s", (int)(dot - de->d_name), de->d_name);
		if (!lg_name_ok(replica) || sscanf(dot, ".%lld.log%n", &stage, &used) != 1 || used == 0 ||
		    (dot[used] != '\0' && strcmp(dot + used, ".1") != 0))
			continue;
		if (lg_find(l, replica, stage))
			continue;
		snprintf(path, sizeof(path), "%s/%s", l->dir, de->d_name);
		unlink(path);
	}
	pthread_mutex_unlock(&l->lock);
	closedir(d);
}

/* --- keys ----------------------------------------------------------------------------- */

void sidecar_logs_key_add(struct sidecar_logs *l, const char *key)
{
	unsigned char d[32];
	size_t n = key ? strlen(key) : 0, i;
	if (!l || n != SIDECAR_LOGS_KEY_HEX)
		return;
	for (i = 0; i < n; i++)
		if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f')))
			return;
	secret_sha256(d, key, n);
	pthread_mutex_lock(&l->lock);
	for (i = 0; i < l->n_keys && memcmp(l->keys[i], d, 32) != 0; i++)
		;
	if (i == l->n_keys && l->n_keys < SIDECAR_LOGS_MAX_KEYS)
		l->n_keys++;
	if (i == l->n_keys)
		i = l->n_keys - 1; /* full: the oldest goes */
	memmove(l->keys[1], l->keys[0], i * 32);
	memcpy(l->keys[0], d, 32);
	pthread_mutex_unlock(&l->lock);
	explicit_bzero(d, sizeof(d));
}

json_t *sidecar_logs_key_ids(struct sidecar_logs *l)
{
	json_t *a = json_array();
	if (!l)
		return a;
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; a && i < l->n_keys; i++) {
		char hex[65];
		hex_encode(hex, l->keys[i], SIDECAR_LOGS_KEY_ID_HEX / 2);
		json_array_append_new(a, json_string(hex));
	}
	pthread_mutex_unlock(&l->lock);
	return a;
}

static bool lg_key_ok(struct sidecar_logs *l, const char *authorization)
{
	unsigned char d[32];
	bool ok = false;
	if (!authorization || strncmp(authorization, "Bearer ", 7) != 0)
		return false;
	const char *key = authorization + 7;
	secret_sha256(d, key, strlen(key));
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->n_keys; i++)
		ok |= secret_equal(l->keys[i], d, 32);
	pthread_mutex_unlock(&l->lock);
	return ok;
}

/* --- serving -------------------------------------------------------------------------- */

struct lg_stream {
	struct sidecar_logs *l;
	struct sidecar_englog *e;  /* a reference; NULL: a file no engine writes now */
	char path[PATH_MAX];
	int fd;
	ino_t ino;
	bool follow;
	struct textbuf out;
	size_t off;
	struct sidecar_logs_lines lines;
	unsigned long long seen;
	long long last_send_ms;
};

static void lg_stream_free(void *arg)
{
	struct lg_stream *s = arg;
	if (s->fd >= 0)
		close(s->fd);
	sidecar_englog_release(s->e);
	textbuf_finish(&s->out);
	free(s);
}

/* Up to want bytes from the end of path (or all of it), into t before what
 * t holds; the fd when keep. Returns the file's size (-1: none). */
static long long lg_read_end(struct textbuf *t, const char *path, size_t want, int *keep_fd,
			     bool *from_start)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size, n = size < want ? size : want;
	*from_start = n == size;
	char *buf = malloc(n + t->len + 1);
	if (buf) {
		ssize_t r = n ? pread(fd, buf, n, (off_t)(size - n)) : 0;
		if (r < 0)
			r = 0;
		if (t->len)
			memcpy(buf + r, t->p, t->len);
		size_t total = (size_t)r + t->len;
		textbuf_finish(t);
		textbuf_add(t, buf, total);
		free(buf);
	}
	if (keep_fd) {
		lseek(fd, (off_t)size, SEEK_SET);
		*keep_fd = fd;
	} else {
		close(fd);
	}
	return (long long)size;
}

/* The tail: the last n complete lines of the log and its predecessor. */
static int lg_tail(struct lg_stream *s, unsigned n)
{
	struct textbuf raw = {0};
	struct stat st;
	bool from_start = true, prev_start = true;
	char p1[PATH_MAX + 4];
	long long size = lg_read_end(&raw, s->path, SIDECAR_LOGS_TAIL_BYTES, &s->fd, &from_start);
	if (size < 0)
		return -1;
	if (fstat(s->fd, &st) == 0)
		s->ino = st.st_ino;
	unsigned have = 0;
	for (size_t i = 0; i < raw.len; i++)
		have += raw.p[i] == '\n';
	if (from_start && have < n && raw.len < SIDECAR_LOGS_TAIL_BYTES) {
		snprintf(p1, sizeof(p1), "%s.1", s->path);
		if (lg_read_end(&raw, p1, SIDECAR_LOGS_TAIL_BYTES - raw.len, NULL, &prev_start) < 0)
			prev_start = true;
		from_start = prev_start;
	}
	if (raw.failed) {
		textbuf_finish(&raw);
		return -1;
	}
	size_t start = n ? sidecar_logs_tail_start(raw.p, raw.len, n) : raw.len;
	/* A window that begins inside a line: from the next one. */
	if (start == 0 && !from_start && raw.len) {
		char *nl = memchr(raw.p, '\n', raw.len);
		start = nl ? (size_t)(nl - raw.p) + 1 : raw.len;
	}
	if (!n) {
		/* Nothing old, but the line being written is the follow's. */
		size_t end = raw.len;
		while (end > 0 && raw.p[end - 1] != '\n')
			end--;
		start = end;
	}
	if (raw.len)
		sidecar_logs_lines_feed(&s->out, &s->lines, raw.p + start, raw.len - start);
	textbuf_finish(&raw);
	return s->out.failed ? -1 : 0;
}

static long lg_copy(struct lg_stream *s, char *buf, size_t max)
{
	size_t n = s->out.len - s->off;
	if (n > max)
		n = max;
	memcpy(buf, s->out.p + s->off, n);
	s->off += n;
	s->last_send_ms = lg_now_ms();
	return (long)n;
}

/* Runs on the connection's own thread (the server is thread per
 * connection): it may wait for the engine's next write. */
static long lg_stream_read(void *arg, char *buf, size_t max)
{
	struct lg_stream *s = arg;
	struct sidecar_logs *l = s->l;
	char chunk[65536];
	for (;;) {
		if (s->off < s->out.len)
			return lg_copy(s, buf, max);
		textbuf_finish(&s->out);
		s->off = 0;
		if (!s->follow || atomic_load(&l->stopping))
			return HTTP_STREAM_END;
		ssize_t r = read(s->fd, chunk, sizeof(chunk));
		if (r > 0) {
			sidecar_logs_lines_feed(&s->out, &s->lines, chunk, (size_t)r);
			if (s->out.failed)
				return HTTP_STREAM_ERROR;
			continue;
		}
		/* At the end: was the file rotated under us? Read what the old
		 * one got last, then go on in the new one. */
		struct stat st;
		if (stat(s->path, &st) == 0 && st.st_ino != s->ino) {
			while ((r = read(s->fd, chunk, sizeof(chunk))) > 0)
				sidecar_logs_lines_feed(&s->out, &s->lines, chunk, (size_t)r);
			int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd >= 0) {
				close(s->fd);
				s->fd = fd;
				s->ino = st.st_ino;
			}
			continue;
		}
		pthread_mutex_lock(&l->lock);
		bool live = s->e->live;
		if (live && s->e->writes == s->seen && !atomic_load(&l->stopping)) {
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += 1;
			pthread_cond_timedwait(&l->cond, &l->lock, &until);
		}
		s->seen = s->e->writes;
		pthread_mutex_unlock(&l->lock);
		if (!live)
			return HTTP_STREAM_END;
		if (lg_now_ms() - s->last_send_ms >= SIDECAR_LOGS_KEEPALIVE_MS) {
			/* A byte novad drops: a write to a novad that left ends this. */
			buf[0] = '\0';
			s->last_send_ms = lg_now_ms();
			return 1;
		}
	}
}

static void lg_get(struct http_request *req, struct http_response *res, void *ctx)
{
	struct sidecar_logs *l = ctx;
	const char *replica = http_request_param(req, "replica");
	const char *q_stage = http_request_query(req, "stage"), *q_tail = http_request_query(req, "tail");
	const char *q_follow = http_request_query(req, "follow");
	long long stage = 0, tail = SIDECAR_LOGS_TAIL_DEFAULT;
	char *end;
	if (!lg_key_ok(l, http_request_header(req, "Authorization"))) {
		http_response_header_add(res, "WWW-Authenticate", "Bearer realm=\"nova-sidecar\"");
		http_response_errorf(res, NOVA_EUNAUTH, "", "a log key of novad is required");
		return;
	}
	if (!lg_name_ok(replica)) {
		http_response_errorf(res, NOVA_EINVAL, "replica", "replica must be a replica id");
		return;
	}
	if (q_stage && (stage = strtoll(q_stage, &end, 10), !*q_stage || *end || stage < 0 || stage > 999)) {
		http_response_errorf(res, NOVA_EINVAL, "stage", "stage must be a number from 0 to 999");
		return;
	}
	if (q_tail && (tail = strtoll(q_tail, &end, 10), !*q_tail || *end || tail < 0 ||
		       tail > SIDECAR_LOGS_TAIL_MAX)) {
		http_response_errorf(res, NOVA_EINVAL, "tail", "tail must be a number from 0 to %d",
				     SIDECAR_LOGS_TAIL_MAX);
		return;
	}
	struct lg_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		http_response_errorf(res, NOVA_EINTERNAL, "", "out of memory");
		return;
	}
	s->l = l;
	s->fd = -1;
	lg_path(s->path, sizeof(s->path), l, replica, stage);
	pthread_mutex_lock(&l->lock);
	if ((s->e = lg_find(l, replica, stage))) {
		s->e->refs++;
		s->seen = s->e->writes;
	}
	pthread_mutex_unlock(&l->lock);
	/* A follow goes on only while an engine of the replica is assigned. */
	s->follow = s->e && q_follow && (!strcmp(q_follow, "true") || !strcmp(q_follow, "1"));
	if (lg_tail(s, (unsigned)tail) != 0) {
		lg_stream_free(s);
		http_response_errorf(res, NOVA_ENOTFOUND, "replica",
				     "this node has no log of replica %s stage %lld", replica, stage);
		return;
	}
	s->last_send_ms = lg_now_ms();
	http_response_stream(res, 200, "text/plain; charset=utf-8", lg_stream_read, s, lg_stream_free);
	http_response_header_add(res, "Cache-Control", "no-cache");
}

int sidecar_logs_serve(struct sidecar_logs *l, const char *listen, struct nova_err *err)
{
	/* A thread per connection: a follow waits for the engine's writes
	 * (bounded: SIDECAR_LOGS_MAX_CONNECTIONS, and novad's own caps). */
	struct http_server_config hcfg = {.listen = listen, .max_connections = SIDECAR_LOGS_MAX_CONNECTIONS,
					  .max_connections_per_ip = SIDECAR_LOGS_MAX_CONNECTIONS,
					  .header_timeout_ms = 5000, .body_timeout_ms = 5000,
					  .stop_timeout_ms = 3000, .thread_per_connection = true};
	int rc;
	if ((rc = http_server_create(&l->srv, &hcfg, err)) ||
	    (rc = http_server_route_add(l->srv, "GET", "/v1/logs/{replica}", lg_get, l, err)) ||
	    (rc = http_server_start(l->srv, err))) {
		http_server_destroy(l->srv);
		l->srv = NULL;
		return rc;
	}
	return 0;
}

unsigned sidecar_logs_port(const struct sidecar_logs *l)
{
	return l && l->srv ? http_server_port(l->srv) : 0;
}
