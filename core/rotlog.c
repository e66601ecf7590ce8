#include "core/rotlog.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rotlog {
	pthread_mutex_t lock;
	char path[PATH_MAX];
	unsigned long long max_bytes, size;
	unsigned keep;
	bool stdio;
	int fd;
};

/* Open the current file and point stdout and stderr at it. */
static int rl_open_current(struct rotlog *l)
{
	struct stat st;
	int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	l->size = fstat(fd, &st) == 0 ? (unsigned long long)st.st_size : 0;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = fd;
	if (l->stdio) {
		/* dup2 clears close-on-exec on the copies: children (engines
		 * started without a pipe) write here too. */
		dup2(fd, 1);
		dup2(fd, 2);
	}
	return 0;
}

static void rl_rotate(struct rotlog *l)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	snprintf(to, sizeof(to), "%s.%u", l->path, l->keep);
	unlink(to);
	for (unsigned k = l->keep; k > 1; k--) {
		snprintf(from, sizeof(from), "%s.%u", l->path, k - 1);
		snprintf(to, sizeof(to), "%s.%u", l->path, k);
		rename(from, to); /* a missing one is fine */
	}
	snprintf(to, sizeof(to), "%s.1", l->path);
	if (rename(l->path, to) != 0 && errno != ENOENT)
		return; /* keep writing where we are rather than lose lines */
	rl_open_current(l);
}

int rotlog_open(struct rotlog **out, const char *path, unsigned long long max_bytes, unsigned keep,
		bool stdio, struct nova_err *err)
{
	struct rotlog *l;
	*out = NULL;
	if (!path || !*path || strlen(path) >= PATH_MAX)
		return nova_err_set(err, NOVA_EINVAL, "log_file", "the log file needs a path");
	if (max_bytes < ROTLOG_MIN_MAX_BYTES)
		return nova_err_set(err, NOVA_EINVAL, "log_max_bytes",
				    "a log file's size cap must be at least %llu bytes",
				    ROTLOG_MIN_MAX_BYTES);
	if (keep < 1 || keep > ROTLOG_MAX_KEEP)
		return nova_err_set(err, NOVA_EINVAL, "log_keep",
				    "the number of rotated log files kept must be 1 to %d", ROTLOG_MAX_KEEP);
	if (!(l = calloc(1, sizeof(*l))))
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	snprintf(l->path, sizeof(l->path), "%s", path);
	l->max_bytes = max_bytes;
	l->keep = keep;
	l->stdio = stdio;
	l->fd = -1;
	if (rl_open_current(l) != 0) {
		int e = errno;
		free(l);
		return nova_err_set(err, NOVA_EINVAL, "log_file", "cannot open the log file %s: %s", path,
				    strerror(e));
	}
	pthread_mutex_init(&l->lock, NULL);
	*out = l;
	return 0;
}

int rotlog_write(struct rotlog *l, const void *buf, size_t len)
{
	int rc = 0;
	if (!l || len == 0)
		return 0;
	pthread_mutex_lock(&l->lock);
	/* What others wrote to the file (stderr, with stdio) counts too. */
	struct stat st;
	if (fstat(l->fd, &st) == 0)
		l->size = (unsigned long long)st.st_size;
	if (l->size > 0 && l->size + len > l->max_bytes)
		rl_rotate(l);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(l->fd, (const char *)buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = -1;
			break;
		}
		off += (size_t)w;
		l->size += (unsigned long long)w;
	}
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void rotlog_log_sink(void *ctx, enum nova_log_level level, const char *line)
{
	struct rotlog *l = ctx;
	size_t n = strlen(line);
	char stackbuf[2048], *buf = n + 1 <= sizeof(stackbuf) ? stackbuf : malloc(n + 1);
	(void)level;
	if (!buf)
		return;
	memcpy(buf, line, n);
	buf[n] = '\n';
	rotlog_write(l, buf, n + 1); /* one write: the line is never split */
	if (buf != stackbuf)
		free(buf);
}

void rotlog_close(struct rotlog *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	pthread_mutex_destroy(&l->lock);
	free(l);
}
