#include "core/files.h"
#include "core/config.h"
#include "core/log.h"
#include "core/notify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int files_mkdir_p(const char *dir, mode_t leaf_mode, const char *field, struct nova_err *err)
{
	char tmp[1024];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof(tmp))
		return nova_err_set(err, NOVA_EINVAL, field, "directory path \"%s\" is empty or too long",
				    dir);
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return nova_err_set(err, NOVA_EUNAVAIL, field, "cannot create %s: %s", tmp,
					    strerror(errno));
		*p = '/';
	}
	if (mkdir(tmp, leaf_mode) != 0 && errno != EEXIST)
		return nova_err_set(err, NOVA_EUNAVAIL, field, "cannot create %s: %s", tmp,
				    strerror(errno));
	return 0;
}

/* --- provider files ------------------------------------------------------- */

static char files_allowed[FILES_ALLOWED_MAX][PATH_MAX];
static size_t files_n_allowed;

int files_allowed_set(const char *const *dirs, size_t n, const char *field, struct nova_err *err)
{
	char tmp[FILES_ALLOWED_MAX][PATH_MAX];
	struct stat st;
	if (n > FILES_ALLOWED_MAX)
		return nova_err_set(err, NOVA_EINVAL, field, "%s: at most %d directories", field,
				    FILES_ALLOWED_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!dirs[i] || dirs[i][0] != '/')
			return nova_err_set(err, NOVA_EINVAL, field,
					    "%s: %s is not an absolute directory path", field,
					    dirs[i] ? dirs[i] : "(null)");
		if (!realpath(dirs[i], tmp[i]) || stat(tmp[i], &st) != 0)
			return nova_err_set(err, NOVA_EINVAL, field, "%s: %s: %s", field, dirs[i],
					    strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return nova_err_set(err, NOVA_EINVAL, field, "%s: %s is not a directory", field,
					    dirs[i]);
	}
	memcpy(files_allowed, tmp, n * sizeof(tmp[0]));
	files_n_allowed = n;
	return 0;
}

size_t files_allowed_count(void)
{
	return files_n_allowed;
}

const char *files_allowed_dir(size_t i)
{
	return i < files_n_allowed ? files_allowed[i] : NULL;
}

static bool files_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static bool files_under_any(const char *path)
{
	for (size_t i = 0; i < files_n_allowed; i++)
		if (files_under(path, files_allowed[i]))
			return true;
	return false;
}

static int files_outside(const char *path, const char *field, struct nova_err *err)
{
	nova_err_set(err, NOVA_EINVAL, field, "%s: %s is not under an allowed directory", field, path);
	nova_err_set_hint(err, "novad takes files named in a pool config only under the directories "
			  "of novad.yaml's " FILES_ALLOWED_KEY " (NOVA_PROVIDER_FILES), or give the "
			  "content inline");
	return NOVA_EINVAL;
}

/* "/a/./b/../c" -> "/a/c" without touching the filesystem, to tell "does
 * not exist" (inside an allowed directory) from "outside" when realpath
 * fails. */
static void files_lexical(char *out, size_t cap, const char *path)
{
	size_t o = 0;
	const char *p = path;
	out[0] = '\0';
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			out[o] = '\0';
		} else if (o + 1 + n < cap) {
			out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
			out[o] = '\0';
		}
		p = e;
	}
	if (o == 0 && cap > 1) {
		out[0] = '/';
		out[1] = '\0';
	}
}

static int files_path_allowed_now(char *resolved, size_t cap, const char *path, size_t path_len,
				  const char *field, struct nova_err *err)
{
	char real[PATH_MAX], lex[PATH_MAX];
	struct stat st;
	if (!path || path_len == 0)
		return nova_err_set(err, NOVA_EINVAL, field, "%s must be an absolute path", field);
	/* Nothing of it is echoed: a path with a NUL is not one a person typed. */
	if (memchr(path, '\0', path_len))
		return nova_err_set(err, NOVA_EINVAL, field, "%s contains a NUL byte", field);
	if (path[0] != '/')
		return nova_err_set(err, NOVA_EINVAL, field, "%s must be an absolute path", field);
	if (path_len >= PATH_MAX)
		return nova_err_set(err, NOVA_EINVAL, field, "%s is longer than %d bytes", field,
				    PATH_MAX - 1);
	/* realpath() only stats and reads links: a FIFO or a device is never
	 * opened here. A path that does not resolve is reported as missing
	 * only when it would lie inside an allowed directory, so the answer is
	 * no oracle for what exists elsewhere. */
	if (!realpath(path, real)) {
		int e = errno;
		files_lexical(lex, sizeof(lex), path);
		if (!files_under_any(lex))
			return files_outside(path, field, err);
		return nova_err_set(err, NOVA_EINVAL, field, "%s: %s: %s", field, path, strerror(e));
	}
	if (!files_under_any(real))
		return files_outside(path, field, err);
	if (stat(real, &st) != 0)
		return nova_err_set(err, NOVA_EINVAL, field, "%s: %s: %s", field, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return nova_err_set(err, NOVA_EINVAL, field, "%s: %s is not a regular file", field, path);
	if (resolved) {
		if (strlen(real) >= cap)
			return nova_err_set(err, NOVA_EINVAL, field, "%s: the resolved path is too long",
					    field);
		memcpy(resolved, real, strlen(real) + 1);
	}
	return 0;
}

static int files_read_capped_now(char **out, size_t *len_out, const char *path, size_t max,
				 const char *field, struct nova_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	*out = NULL;
	if (len_out)
		*len_out = 0;
	/* O_NONBLOCK: a FIFO put in the file's place after a check does not
	 * hang us; O_NOFOLLOW: nor does a symlink swapped in. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return nova_err_set(err, errno == ENOENT ? NOVA_ENOTFOUND : NOVA_EINVAL, field,
				    "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return nova_err_set(err, NOVA_EINVAL, field, "%s is not a regular file", path);
	}
	if (!(buf = malloc(max + 1))) {
		close(fd);
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return nova_err_set(err, NOVA_EINVAL, field, "%s: cannot read: %s", path,
					    strerror(e));
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			close(fd);
			free(buf);
			return nova_err_set(err, NOVA_EINVAL, field, "%s is larger than %zu bytes", path,
					    max);
		}
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	if (len_out)
		*len_out = n;
	return 0;
}

/* realpath into real (PATH_MAX), then the content: one reader job. */
static int files_read_allowed_now(char **out, size_t *len_out, char *real, const char *path,
				  size_t path_len, size_t max, const char *field, struct nova_err *err)
{
	int rc;
	*out = NULL;
	if ((rc = files_path_allowed_now(real, PATH_MAX, path, path_len, field, err)))
		return rc;
	if ((rc = files_read_capped_now(out, len_out, real, max, field, err))) {
		if (rc == NOVA_ENOTFOUND) /* gone since the check: still bad config */
			rc = err->code = NOVA_EINVAL;
		return rc;
	}
	return 0;
}

/* --- the reader ------------------------------------------------------------
 *
 * Every check and read of a provider file runs on a reader thread of its
 * own, and the caller waits for it at most files_timeout_ms. A file on a
 * file system that does not answer (a hung NFS server, a FUSE daemon that
 * never replies, a device) blocks in the kernel in realpath, stat, open or
 * read, where no flag helps: O_NONBLOCK means nothing to regular files.
 * On a request's thread that held one of the HTTP threads forever (issue
 * 23: four such pool creates and novad answered nothing, and its stop
 * waited on them). Past the deadline the caller gets NOVA_EUNAVAIL naming
 * the field, and the reader is abandoned: it frees its job whenever the
 * kernel lets it go. At most FILES_STUCK_MAX readers may be abandoned and
 * still running; past that a read is refused at once, so a file system
 * that never answers costs a bounded number of threads, not one per
 * request. An abandoned reader holds no lock and nothing of novad's but
 * its job, so novad's stop does not wait for it.
 *
 * Rejected: a pool of long-lived reader threads (a stuck one is lost to
 * the pool either way, and a thread per read costs tens of microseconds
 * against a pool create's milliseconds); a forked child per read (fork of
 * a large multi-threaded novad per pool create, and a child to reap);
 * reading on the caller's thread with alarm() or pthread_kill (a signal
 * does not end a wait of a FUSE request the daemon has taken: the kernel
 * waits uninterruptibly for its answer).
 *
 * Beyond novad's reach: a thread the kernel holds in an uninterruptible
 * wait (a FUSE request already taken by a daemon that ignores
 * interrupts) keeps the process from being reaped after exit until the
 * file system answers or is aborted; novad's own stop completes within its
 * bound all the same. */
enum files_job_kind { FILES_JOB_CHECK, FILES_JOB_READ, FILES_JOB_READ_ALLOWED };

struct files_job {
	enum files_job_kind kind;
	char *path; /* a copy, path_len bytes and a NUL */
	size_t path_len;
	size_t max;
	char field[NOVA_ERR_FIELD_MAX];
	int rc;
	struct nova_err err;
	char resolved[PATH_MAX];
	char *data;
	size_t len;
	bool done, abandoned; /* under files_lock */
	pthread_cond_t cond;
};

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned files_stuck; /* abandoned readers still running; under files_lock */
static atomic_uint files_timeout = FILES_TIMEOUT_DEFAULT_MS;

void files_timeout_set(unsigned ms)
{
	atomic_store(&files_timeout, ms ? ms : FILES_TIMEOUT_DEFAULT_MS);
}

unsigned files_readers_stuck(void)
{
	pthread_mutex_lock(&files_lock);
	unsigned n = files_stuck;
	pthread_mutex_unlock(&files_lock);
	return n;
}

static void files_job_free(struct files_job *j)
{
	if (!j)
		return;
	if (j->data) {
		/* kubeconfigs and keys: no copy lingers in freed memory */
		explicit_bzero(j->data, j->len);
		free(j->data);
	}
	free(j->path);
	pthread_cond_destroy(&j->cond);
	free(j);
}

static void *files_reader_main(void *arg)
{
	struct files_job *j = arg;
	sigset_t all;
	bool abandoned;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	switch (j->kind) {
	case FILES_JOB_CHECK:
		j->rc = files_path_allowed_now(j->resolved, sizeof(j->resolved), j->path, j->path_len,
					       j->field, &j->err);
		break;
	case FILES_JOB_READ:
		j->rc = files_read_capped_now(&j->data, &j->len, j->path, j->max, j->field, &j->err);
		break;
	case FILES_JOB_READ_ALLOWED:
		j->rc = files_read_allowed_now(&j->data, &j->len, j->resolved, j->path, j->path_len,
					       j->max, j->field, &j->err);
		break;
	}
	pthread_mutex_lock(&files_lock);
	j->done = true;
	abandoned = j->abandoned;
	if (abandoned)
		files_stuck--;
	else
		pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&files_lock);
	if (abandoned)
		files_job_free(j);
	return NULL;
}

static void files_hint(struct nova_err *err)
{
	nova_err_set_hint(err, "a file system that does not answer (a hung network or FUSE mount?); "
			  "novad.yaml's provider_files_timeout_ms (NOVA_PROVIDER_FILES_TIMEOUT_MS) "
			  "is the wait");
}

/* A job for path (path_len bytes) on field. NULL: out of memory (err set). */
static struct files_job *files_job_new(enum files_job_kind kind, const char *path, size_t path_len,
				       size_t max, const char *field, struct nova_err *err)
{
	struct files_job *j = calloc(1, sizeof(*j));
	pthread_condattr_t ca;
	if (!j || !(j->path = malloc(path_len + 1))) {
		free(j);
		nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
		return NULL;
	}
	memcpy(j->path, path, path_len);
	j->path[path_len] = '\0';
	j->path_len = path_len;
	j->kind = kind;
	j->max = max;
	snprintf(j->field, sizeof(j->field), "%s", field ? field : "");
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);
	return j;
}

/* Run j on a reader and wait for it up to the deadline. 0: it finished
 * (its rc and err are its own; the caller frees j). Else the error is in
 * err, and j is freed or left to its reader. */
static int files_run(struct files_job *j, struct nova_err *err)
{
	pthread_attr_t attr;
	pthread_t t;
	struct timespec until;
	unsigned ms = atomic_load(&files_timeout);
	int rc;
	pthread_mutex_lock(&files_lock);
	if (files_stuck >= FILES_STUCK_MAX) {
		unsigned n = files_stuck;
		pthread_mutex_unlock(&files_lock);
		nova_err_set(err, NOVA_EUNAVAIL, j->field,
			     "%s%s%s not read: %u earlier reads of provider files have not finished",
			     j->field, *j->field ? ": " : "", j->path, n);
		files_hint(err);
		files_job_free(j);
		return NOVA_EUNAVAIL;
	}
	pthread_mutex_unlock(&files_lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&t, &attr, files_reader_main, j);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		nova_err_set(err, NOVA_EUNAVAIL, j->field, "%s%scannot start a file reader: %s",
			     j->field, *j->field ? ": " : "", strerror(rc));
		files_job_free(j);
		return NOVA_EUNAVAIL;
	}
	notify_deadline(&until, CLOCK_MONOTONIC, ms);
	pthread_mutex_lock(&files_lock);
	while (!j->done && pthread_cond_timedwait(&j->cond, &files_lock, &until) != ETIMEDOUT)
		;
	if (!j->done) {
		/* Said while j is still ours: once unlocked, the reader may
		 * finish and free it at any moment. */
		char field[NOVA_ERR_FIELD_MAX], stuck[16];
		j->abandoned = true;
		files_stuck++;
		snprintf(stuck, sizeof(stuck), "%u", files_stuck);
		snprintf(field, sizeof(field), "%s", j->field);
		nova_err_set(err, NOVA_EUNAVAIL, j->field, "%s%s%s did not answer within %u ms",
			     j->field, *j->field ? ": " : "", j->path, ms);
		pthread_mutex_unlock(&files_lock);
		files_hint(err);
		nova_log_kv(NOVA_LOG_WARN, "files", "a provider file did not answer in time; its reader "
			    "is left behind", "field", field, "readers_left", stuck, NULL);
		return NOVA_EUNAVAIL;
	}
	pthread_mutex_unlock(&files_lock);
	return 0;
}

/* The job's own outcome into err, and its code. */
static int files_job_result(struct files_job *j, struct nova_err *err)
{
	if (j->rc && err)
		*err = j->err;
	return j->rc;
}

int files_path_allowed(char *resolved, size_t cap, const char *path, size_t path_len,
		       const char *field, struct nova_err *err)
{
	struct files_job *j;
	int rc;
	/* What needs no file system is answered here (and a NUL never
	 * reaches a message). */
	if (!path || path_len == 0 || memchr(path, '\0', path_len) || path[0] != '/' ||
	    path_len >= PATH_MAX)
		return files_path_allowed_now(resolved, cap, path, path_len, field, err);
	if (!(j = files_job_new(FILES_JOB_CHECK, path, path_len, 0, field, err)))
		return NOVA_EINTERNAL;
	if ((rc = files_run(j, err)))
		return rc;
	if (!(rc = files_job_result(j, err)) && resolved) {
		if (strlen(j->resolved) >= cap)
			rc = nova_err_set(err, NOVA_EINVAL, field, "%s: the resolved path is too long",
					  field);
		else
			memcpy(resolved, j->resolved, strlen(j->resolved) + 1);
	}
	files_job_free(j);
	return rc;
}

int files_read_capped(char **out, size_t *len_out, const char *path, size_t max, const char *field,
		      struct nova_err *err)
{
	struct files_job *j;
	int rc;
	*out = NULL;
	if (len_out)
		*len_out = 0;
	if (!(j = files_job_new(FILES_JOB_READ, path, strlen(path), max, field, err)))
		return NOVA_EINTERNAL;
	if ((rc = files_run(j, err)))
		return rc;
	if (!(rc = files_job_result(j, err))) {
		*out = j->data;
		if (len_out)
			*len_out = j->len;
		j->data = NULL;
	}
	files_job_free(j);
	return rc;
}

int files_read_allowed(char **out, size_t *len_out, char *resolved, size_t cap, const char *path,
		       size_t path_len, size_t max, const char *field, struct nova_err *err)
{
	struct files_job *j;
	int rc;
	*out = NULL;
	if (len_out)
		*len_out = 0;
	if (!path || path_len == 0 || memchr(path, '\0', path_len) || path[0] != '/' ||
	    path_len >= PATH_MAX)
		return files_path_allowed_now(NULL, 0, path, path_len, field, err);
	if (!(j = files_job_new(FILES_JOB_READ_ALLOWED, path, path_len, max, field, err)))
		return NOVA_EINTERNAL;
	if ((rc = files_run(j, err)))
		return rc;
	if (!(rc = files_job_result(j, err)) && resolved && cap) {
		if (strlen(j->resolved) >= cap)
			rc = nova_err_set(err, NOVA_EINVAL, field, "%s: the resolved path is too long",
					  field);
		else
			memcpy(resolved, j->resolved, strlen(j->resolved) + 1);
	}
	if (!rc) {
		*out = j->data;
		if (len_out)
			*len_out = j->len;
		j->data = NULL;
	}
	files_job_free(j);
	return rc;
}

static char files_state[PATH_MAX];

void files_state_dir_set(const char *dir)
{
	snprintf(files_state, sizeof(files_state), "%s", dir ? dir : "");
}

void files_state_dir(char *out, size_t len)
{
	if (files_state[0])
		snprintf(out, len, "%s", files_state);
	else
		cfg_default_state_dir(out, len);
}

bool files_default_etc_dir(char *out, size_t len)
{
	char self[PATH_MAX], cand[PATH_MAX + 64], real[PATH_MAX];
	struct stat st;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = '\0'; /* the program's directory */
	snprintf(cand, sizeof(cand), "%s/../share/nova/etc", self);
	if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode) && realpath(cand, real))
		return snprintf(out, len, "%s", real) < (int)len;
	for (int up = 1; up <= 3; up++) {
		if (!(slash = strrchr(self, '/')) || slash == self)
			return false;
		*slash = '\0';
		snprintf(cand, sizeof(cand), "%s/etc/novad.yaml", self);
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			snprintf(cand, sizeof(cand), "%s/etc", self);
			return realpath(cand, real) && snprintf(out, len, "%s", real) < (int)len;
		}
	}
	return false;
}
