/* A private PostgreSQL cluster under the state directory.
 *
 * Layout of dir: data/ (the cluster), .s.PGSQL.5432 (the only listener),
 * initdb.log and server.log. Server binaries run through fork + execv with
 * argument vectors: no shell, no command line built from strings, so a path
 * is never re-parsed. The one exception is pg_ctl's -o value, which pg_ctl
 * itself hands to a shell; that is why a dir with blanks, quotes or
 * backslashes is refused instead of quoted.
 *
 * Ownership: a server found already running on the data directory was left
 * by a novad that died (nothing else uses this directory). We adopt it and
 * own it from then on, stopping it at pg_embedded_stop exactly like one we
 * started. Rejected: leaving an adopted server running at exit; the next
 * start would adopt it again, so it would never be stopped by anyone. */
#include "core/pg_embedded.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/files.h"
#include "core/log.h"

#define PGE_SOCKET_NAME "/.s.PGSQL.5432"
#define PGE_DEBIAN_ROOT "/usr/lib/postgresql"
#define PGE_START_TIMEOUT_S 60
#define PGE_PATH_MAX 256 /* dir is bounded by sun_path, so every path here fits */
_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) < PGE_PATH_MAX,
	       "a socket directory must fit in struct pg_embedded.dir");

/* Exit statuses of the forked child before execv; the server binaries use
 * 0-4 themselves. */
#define PGE_EXIT_NOCHDIR 125
#define PGE_EXIT_NOUSER 126
#define PGE_EXIT_NOEXEC 127

struct pg_embedded {
	char dir[PGE_PATH_MAX]; /* absolute */
	char bindir[PATH_MAX];
	char conninfo[PGE_PATH_MAX + 64];
	bool owned; /* stop the server at pg_embedded_stop */
	/* The account the server binaries run as when we are root. */
	bool as_postgres;
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int n_groups;
};

static bool pge_has_binaries(const char *bindir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/initdb", bindir);
	if (access(path, X_OK) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/pg_ctl", bindir);
	return access(path, X_OK) == 0;
}

static bool pge_all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int pg_embedded_bindir(char *buf, size_t len, struct nova_err *err)
{
	const char *env = getenv("NOVA_PG_BINDIR");
	const char *path = getenv("PATH");
	char cand[PATH_MAX];
	long best = -1;
	DIR *d;
	struct dirent *e;
	if (env && *env) {
		if (!pge_has_binaries(env)) {
			nova_err_set(err, NOVA_EUNAVAIL, "NOVA_PG_BINDIR",
				     "%s has no executable initdb and pg_ctl", env);
			nova_err_set_hint(err, "point NOVA_PG_BINDIR at a PostgreSQL server bin "
					       "directory, or unset it");
			return NOVA_EUNAVAIL;
		}
		snprintf(buf, len, "%s", env);
		return 0;
	}
	/* Debian and Ubuntu: /usr/lib/postgresql/<major>/bin, newest wins
	 * (numerically: 9 < 10). */
	if ((d = opendir(PGE_DEBIAN_ROOT)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			long v;
			if (!pge_all_digits(e->d_name) || strlen(e->d_name) > 6)
				continue;
			v = strtol(e->d_name, NULL, 10);
			snprintf(cand, sizeof(cand), PGE_DEBIAN_ROOT "/%ld/bin", v);
			if (v > best && pge_has_binaries(cand))
				best = v;
		}
		closedir(d);
	}
	if (best >= 0) {
		snprintf(buf, len, PGE_DEBIAN_ROOT "/%ld/bin", best);
		return 0;
	}
	/* Elsewhere (Fedora, source builds): wherever PATH finds initdb. */
	while (path && *path) {
		size_t n = strcspn(path, ":");
		if (n > 0 && path[0] == '/' && n < sizeof(cand)) {
			snprintf(cand, sizeof(cand), "%.*s", (int)n, path);
			if (pge_has_binaries(cand)) {
				snprintf(buf, len, "%s", cand);
				return 0;
			}
		}
		path += n + (path[n] == ':');
	}
	nova_err_set(err, NOVA_EUNAVAIL, "", "no PostgreSQL server binaries (initdb, pg_ctl) found");
	nova_err_set_hint(err, "install the postgresql package (apt-get install postgresql), "
			       "set NOVA_PG_BINDIR, or configure database_url");
	return NOVA_EUNAVAIL;
}

/* The major version a cluster was made by ("15"), or "" before initdb. */
static void pge_data_version(char *out, size_t len, const char *dir)
{
	char path[PGE_PATH_MAX + 32];
	FILE *f;
	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/data/PG_VERSION", dir);
	if (!(f = fopen(path, "r")))
		return;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	fclose(f);
}

/* Run a server binary, as postgres when we are root, and wait for it.
 * stdout and stderr are appended to log. Returns the exit status, or -1. */
static int pge_run(const struct pg_embedded *pg, const char *const *argv, const char *log)
{
	pid_t pid;
	int status;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* Only async-signal-safe calls from here: another thread of
		 * novad may have held a lock at fork time (hence the group list
		 * was resolved before, instead of initgroups here). */
		struct sigaction dfl;
		sigset_t none;
		int fd;
		if (pg->as_postgres &&
		    (setgroups((size_t)pg->n_groups, pg->groups) != 0 || setgid(pg->gid) != 0 ||
		     setuid(pg->uid) != 0))
			_exit(PGE_EXIT_NOUSER);
		/* Dispositions novad set to "ignore" and its signal mask would
		 * otherwise be inherited by the server. */
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		for (int s = 1; s < NSIG; s++)
			sigaction(s, &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if ((fd = open("/dev/null", O_RDONLY)) >= 0) {
			dup2(fd, 0);
			if (fd > 2)
				close(fd);
		}
		/* Opened as the server's user, so pg_ctl -l can append to it. */
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			if (fd > 2)
				close(fd);
		}
		/* No listening socket or database connection of novad may
		 * outlive it inside a long-running postmaster. */
		close_range(3, ~0U, 0);
		if (chdir(pg->dir) != 0)
			_exit(PGE_EXIT_NOCHDIR);
		execv(argv[0], (char *const *)argv);
		_exit(PGE_EXIT_NOEXEC);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* An error for a failed server binary, naming the log to read. */
static int pge_run_error(const struct pg_embedded *pg, int status, const char *what,
			 const char *log, struct nova_err *err)
{
	switch (status) {
	case PGE_EXIT_NOCHDIR:
		nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "the %s user cannot enter %s",
			     pg->as_postgres ? "postgres" : "current", pg->dir);
		nova_err_set_hint(err, "every parent directory of the state directory must be "
				       "searchable (chmod o+x) by the postgres user");
		return NOVA_EUNAVAIL;
	case PGE_EXIT_NOUSER:
		return nova_err_set(err, NOVA_EUNAVAIL, "", "cannot switch to the postgres user to run %s",
				    what);
	case PGE_EXIT_NOEXEC:
		return nova_err_set(err, NOVA_EUNAVAIL, "", "cannot execute %s in %s", what, pg->bindir);
	default:
		return nova_err_set(err, NOVA_EUNAVAIL, "", "%s failed (exit status %d); see %s", what,
				    status, log);
	}
}

/* Resolve the postgres account (before any fork: getpwnam_r and
 * getgrouplist are not async-signal-safe). */
static int pge_resolve_user(struct pg_embedded *pg, struct nova_err *err)
{
	struct passwd pwbuf, *pw = NULL;
	char buf[4096];
	int n = (int)(sizeof(pg->groups) / sizeof(pg->groups[0]));
	if (getpwnam_r("postgres", &pwbuf, buf, sizeof(buf), &pw) != 0 || !pw) {
		nova_err_set(err, NOVA_EUNAVAIL, "",
			     "running as root but there is no postgres user to run the database as");
		nova_err_set_hint(err, "install the postgresql package, which creates it, or run "
				       "novad as an unprivileged user");
		return NOVA_EUNAVAIL;
	}
	pg->as_postgres = true;
	pg->uid = pw->pw_uid;
	pg->gid = pw->pw_gid;
	if (getgrouplist(pw->pw_name, pw->pw_gid, pg->groups, &n) < 0) {
		/* More than we hold: the primary group is what matters. */
		pg->groups[0] = pw->pw_gid;
		n = 1;
	}
	pg->n_groups = n;
	return 0;
}

/* As root: the postgres user owns dir and can reach it. */
static int pge_prepare_dir_as_root(struct pg_embedded *pg, struct nova_err *err)
{
	char parent[PGE_PATH_MAX];
	char *slash;
	struct stat st;
	if (chown(pg->dir, pg->uid, pg->gid) != 0 || chmod(pg->dir, 0700) != 0)
		return nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot give %s to the postgres "
				    "user: %s", pg->dir, strerror(errno));
	/* The parent is novad's state directory (0700 when novad made it).
	 * The postgres user needs to pass through it: add search permission
	 * only, so nothing in it (the admin token) becomes listable or
	 * readable. Ancestors further up are not ours to change; if one is
	 * closed, the child's chdir reports it (PGE_EXIT_NOCHDIR). */
	snprintf(parent, sizeof(parent), "%s", pg->dir);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return 0;
	*slash = '\0';
	if (stat(parent, &st) == 0 && (st.st_mode & 0011) != 0011 &&
	    chmod(parent, (st.st_mode & 07777) | 0011) != 0)
		return nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot chmod %s: %s", parent,
				    strerror(errno));
	return 0;
}

/* Wait until a server found running answers; it may still be starting or in
 * crash recovery. */
static int pge_wait_ready(const struct pg_embedded *pg, struct nova_err *err)
{
	char admin[PGE_PATH_MAX + 64];
	struct timespec pause = {0, 100 * 1000000L};
	snprintf(admin, sizeof(admin), "host=%s dbname=postgres user=nova connect_timeout=5", pg->dir);
	for (int i = 0; i < PGE_START_TIMEOUT_S * 10; i++) {
		PGPing p = PQping(admin);
		if (p == PQPING_OK)
			return 0;
		if (p == PQPING_NO_ATTEMPT)
			break;
		nanosleep(&pause, NULL);
	}
	nova_err_set(err, NOVA_EUNAVAIL, "",
		     "a server is registered on %s/data but does not answer", pg->dir);
	nova_err_set_hint(err, "if no postgres process is running, remove %s/data/postmaster.pid",
			  pg->dir);
	return NOVA_EUNAVAIL;
}

static int pge_create_database(const struct pg_embedded *pg, struct nova_err *err)
{
	char admin[PGE_PATH_MAX + 64];
	const char *params[1] = {"nova"};
	PGconn *c;
	PGresult *r;
	bool exists;
	int rc = 0;
	snprintf(admin, sizeof(admin), "host=%s dbname=postgres user=nova", pg->dir);
	c = PQconnectdb(admin);
	if (PQstatus(c) != CONNECTION_OK) {
		rc = nova_err_set(err, NOVA_EUNAVAIL, "", "embedded database unreachable: %.*s",
				  (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
		PQfinish(c);
		return rc;
	}
	r = PQexecParams(c, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL, params, NULL,
			 NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		rc = nova_err_set(err, NOVA_EUNAVAIL, "", "cannot list databases: %.*s",
				  (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
		return rc;
	}
	exists = PQntuples(r) == 1;
	PQclear(r);
	if (!exists) {
		/* CREATE DATABASE takes no parameters; the name is a constant. */
		r = PQexec(c, "CREATE DATABASE nova");
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		/* 42P04: a concurrent start created it first, which is fine. */
		if (PQresultStatus(r) != PGRES_COMMAND_OK && !(state && !strcmp(state, "42P04")))
			rc = nova_err_set(err, NOVA_EUNAVAIL, "", "cannot create database nova: %.*s",
					  (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
		PQclear(r);
	}
	PQfinish(c);
	return rc;
}

/* Check the resolved directory can be handed to the server. */
static int pge_check_dir(const char *dir, struct nova_err *err)
{
	for (const unsigned char *p = (const unsigned char *)dir; *p; p++) {
		if (*p <= ' ' || *p == '\'' || *p == '"' || *p == '\\' || *p == 0x7f)
			return nova_err_set(err, NOVA_EINVAL, "state_dir",
					    "state directory %s must not contain blanks, quotes or "
					    "backslashes (the database socket option cannot carry them)",
					    dir);
	}
	if (strlen(dir) + strlen(PGE_SOCKET_NAME) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		nova_err_set(err, NOVA_EINVAL, "state_dir",
			     "state directory %s is too long: the database socket path must fit in "
			     "%zu bytes",
			     dir, sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		nova_err_set_hint(err, "use a shorter state_dir, or configure database_url");
		return NOVA_EINVAL;
	}
	return 0;
}

int pg_embedded_start(struct pg_embedded **out, const char *dir, struct nova_err *err)
{
	struct pg_embedded *pg;
	char real[PATH_MAX], data[PGE_PATH_MAX + 8], log[PGE_PATH_MAX + 16];
	char initlog[PGE_PATH_MAX + 16], opts[PGE_PATH_MAX + 48], ctl[PATH_MAX + 8];
	char initdb[PATH_MAX + 8], version[16], alt[PATH_MAX];
	bool version_known = false;
	int rc, st;
	*out = NULL;
	if (!dir || !*dir)
		return nova_err_set(err, NOVA_EINVAL, "state_dir", "no directory for the database");
	/* Cheap refusals before anything is created on disk. */
	if ((rc = pge_check_dir(dir, err)))
		return rc;
	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	if ((rc = pg_embedded_bindir(pg->bindir, sizeof(pg->bindir), err)) ||
	    (rc = files_mkdir_p(dir, 0700, "state_dir", err)))
		goto fail;
	/* The server resolves a relative -k against its data directory, and
	 * the child runs in dir: both need the absolute path. Symlinks are
	 * resolved too, and the result checked again. */
	if (!realpath(dir, real)) {
		rc = nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot resolve %s: %s", dir,
				  strerror(errno));
		goto fail;
	}
	if ((rc = pge_check_dir(real, err)))
		goto fail;
	memcpy(pg->dir, real, strlen(real) + 1); /* fits: pge_check_dir bounds it by sun_path */
	if (geteuid() == 0 &&
	    ((rc = pge_resolve_user(pg, err)) || (rc = pge_prepare_dir_as_root(pg, err))))
		goto fail;

	/* A cluster keeps the major version that made it: after an upgrade
	 * installed a newer server next to it, keep using the matching one. */
	pge_data_version(version, sizeof(version), pg->dir);
	if (version[0] && pge_all_digits(version) && !getenv("NOVA_PG_BINDIR")) {
		snprintf(alt, sizeof(alt), PGE_DEBIAN_ROOT "/%s/bin", version);
		if ((version_known = pge_has_binaries(alt)))
			snprintf(pg->bindir, sizeof(pg->bindir), "%s", alt);
	}
	snprintf(data, sizeof(data), "%s/data", pg->dir);
	snprintf(log, sizeof(log), "%s/server.log", pg->dir);
	snprintf(initlog, sizeof(initlog), "%s/initdb.log", pg->dir);
	snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg->bindir);
	snprintf(initdb, sizeof(initdb), "%s/initdb", pg->bindir);

	if (!version[0]) {
		const char *argv[] = {initdb, "-D", data, "-U", "nova", "--auth=trust", "-E", "UTF8",
				      "--no-instructions", NULL};
		nova_log_kv(NOVA_LOG_INFO, "db", "creating embedded database cluster", "dir", pg->dir,
			    NULL);
		if ((st = pge_run(pg, argv, initlog)) != 0) {
			rc = pge_run_error(pg, st, "initdb", initlog, err);
			goto fail;
		}
	}

	const char *status_argv[] = {ctl, "-D", data, "status", NULL};
	if ((st = pge_run(pg, status_argv, log)) == 0) {
		nova_log_kv(NOVA_LOG_INFO, "db", "adopting running embedded database", "dir", pg->dir,
			    NULL);
	} else if (st == PGE_EXIT_NOCHDIR || st == PGE_EXIT_NOUSER || st == PGE_EXIT_NOEXEC) {
		rc = pge_run_error(pg, st, "pg_ctl", log, err);
		goto fail;
	} else {
		/* pg_ctl hands -o to the server's command line through a shell:
		 * pge_check_dir keeps dir free of anything a shell would split. */
		snprintf(opts, sizeof(opts), "-k %s -c listen_addresses=", pg->dir);
		const char *start_argv[] = {ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", opts,
					    "start", NULL};
		if ((st = pge_run(pg, start_argv, log)) != 0) {
			/* Another novad may have started it between our status and
			 * start; then it is running, and ours to adopt. */
			if (pge_run(pg, status_argv, log) != 0) {
				rc = pge_run_error(pg, st, "starting the embedded database", log, err);
				/* On the Debian layout we can tell the matching server is
				 * missing; elsewhere binaries live where PATH says. */
				if (version[0] && !version_known && !getenv("NOVA_PG_BINDIR") &&
				    access(PGE_DEBIAN_ROOT, F_OK) == 0)
					nova_err_set_hint(err, "the cluster was made by PostgreSQL %s, "
							       "whose server is not installed",
							  version);
				goto fail;
			}
			nova_log_kv(NOVA_LOG_INFO, "db", "adopting running embedded database", "dir",
				    pg->dir, NULL);
		} else {
			nova_log_kv(NOVA_LOG_INFO, "db", "embedded database started", "dir", pg->dir,
				    NULL);
		}
	}
	pg->owned = true;
	if ((rc = pge_wait_ready(pg, err)) || (rc = pge_create_database(pg, err)))
		goto fail;
	snprintf(pg->conninfo, sizeof(pg->conninfo), "host=%s dbname=nova user=nova", pg->dir);
	*out = pg;
	return 0;
fail:
	pg_embedded_stop(pg);
	return rc;
}

const char *pg_embedded_conninfo(const struct pg_embedded *pg)
{
	return pg->conninfo;
}

void pg_embedded_stop(struct pg_embedded *pg)
{
	char data[PGE_PATH_MAX + 8], log[PGE_PATH_MAX + 16], ctl[PATH_MAX + 8];
	if (!pg)
		return;
	if (pg->owned) {
		snprintf(data, sizeof(data), "%s/data", pg->dir);
		snprintf(log, sizeof(log), "%s/server.log", pg->dir);
		snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg->bindir);
		const char *argv[] = {ctl, "-D", data, "-m", "fast", "-w", "stop", NULL};
		if (pge_run(pg, argv, log) != 0)
			nova_log_kv(NOVA_LOG_WARN, "db", "embedded database did not stop cleanly", "dir",
				    pg->dir, "log", log, NULL);
	}
	free(pg);
}
