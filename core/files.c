#include "core/files.h"
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int files_path_allowed(char *resolved, size_t cap, const char *path, size_t path_len,
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

int files_read_capped(char **out, size_t *len_out, const char *path, size_t max, const char *field,
		      struct nova_err *err)
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

int files_read_allowed(char **out, size_t *len_out, char *resolved, size_t cap, const char *path,
		       size_t path_len, size_t max, const char *field, struct nova_err *err)
{
	char real[PATH_MAX];
	int rc;
	*out = NULL;
	if ((rc = files_path_allowed(real, sizeof(real), path, path_len, field, err)))
		return rc;
	if ((rc = files_read_capped(out, len_out, real, max, field, err))) {
		if (rc == NOVA_ENOTFOUND) /* gone since the check: still bad config */
			rc = err->code = NOVA_EINVAL;
		return rc;
	}
	if (resolved && cap) {
		if (strlen(real) >= cap) {
			free(*out);
			*out = NULL;
			return nova_err_set(err, NOVA_EINVAL, field, "%s: the resolved path is too long",
					    field);
		}
		memcpy(resolved, real, strlen(real) + 1);
	}
	return 0;
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
