#include "core/pg_embedded.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/files.h"
#include "core/log.h"

struct pg_embedded {
	char dir[512];
	char bindir[512];
	char conninfo[700];
	bool owned; /* stop the server at pg_embedded_stop */
};

int pg_embedded_bindir(char *buf, size_t len, struct nova_err *err)
{
	const char *env = getenv("NOVA_PG_BINDIR");
	char path[600];
	int best = -1;
	if (env && *env) {
		snprintf(path, sizeof(path), "%s/initdb", env);
		if (access(path, X_OK) != 0)
			return nova_err_set(err, NOVA_EUNAVAIL, "NOVA_PG_BINDIR", "%s is not executable",
					    path);
		snprintf(buf, len, "%s", env);
		return 0;
	}
	DIR *d = opendir("/usr/lib/postgresql");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		int v = atoi(e->d_name);
		snprintf(path, sizeof(path), "/usr/lib/postgresql/%s/bin/initdb", e->d_name);
		if (v > best && access(path, X_OK) == 0)
			best = v;
	}
	if (d)
		closedir(d);
	if (best < 0) {
		nova_err_set(err, NOVA_EUNAVAIL, "", "no PostgreSQL server binaries found");
		nova_err_set_hint(err, "install the postgresql package (apt-get install postgresql), "
				       "or set database_url");
		return NOVA_EUNAVAIL;
	}
	snprintf(buf, len, "/usr/lib/postgresql/%d/bin", best);
	return 0;
}

/* Run a server binary (as postgres when root), no shell involved. Output
 * goes to log (appended). Returns the exit status, or -1. */
static int pg_run(const struct pg_embedded *pg, const char *const *argv, const char *log)
{
	struct passwd *pw = geteuid() == 0 ? getpwnam("postgres") : NULL;
	pid_t pid;
	int status;
	if (geteuid() == 0 && !pw)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (pw) {
			if (setgid(pw->pw_gid) != 0 || initgroups("postgres", pw->pw_gid) != 0 ||
			    setuid(pw->pw_uid) != 0)
				_exit(126);
		}
		/* Opened as the server's user, so pg_ctl -l can append to it. */
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (chdir(pg->dir) != 0)
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int pg_create_database(struct pg_embedded *pg, struct nova_err *err)
{
	char admin[700];
	const char *params[1] = {"nova"};
	PGconn *c;
	PGresult *r;
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
	bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	PQclear(r);
	if (!exists) {
		/* CREATE DATABASE takes no parameters; the name is a constant. */
		r = PQexec(c, "CREATE DATABASE nova");
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = nova_err_set(err, NOVA_EUNAVAIL, "", "cannot create database nova: %.*s",
					  (int)strcspn(PQerrorMessage(c), "\n"), PQerrorMessage(c));
		PQclear(r);
	}
	PQfinish(c);
	return rc;
}

int pg_embedded_start(struct pg_embedded **out, const char *dir, struct nova_err *err)
{
	struct pg_embedded *pg;
	char data[600], log[600], version[640], initlog[600], opts[700], ctl[600], initdb[600];
	struct stat st;
	int rc;
	*out = NULL;
	if (strpbrk(dir, " \t'\"\\"))
		return nova_err_set(err, NOVA_EINVAL, "state_dir",
				    "state directory %s must not contain spaces or quotes", dir);
	if (strlen(dir) + strlen("/.s.PGSQL.5432") >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return nova_err_set(err, NOVA_EINVAL, "state_dir",
				    "state directory %s is too long for a unix socket path", dir);
	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return nova_err_set(err, NOVA_EINTERNAL, "", "out of memory");
	snprintf(pg->dir, sizeof(pg->dir), "%s", dir);
	if ((rc = pg_embedded_bindir(pg->bindir, sizeof(pg->bindir), err)) ||
	    (rc = files_mkdir_p(dir, 0700, "state_dir", err)))
		goto fail;
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("postgres");
		if (!pw) {
			rc = nova_err_set(err, NOVA_EUNAVAIL, "", "running as root but there is no "
								  "postgres user to run the database as");
			goto fail;
		}
		if (chown(dir, pw->pw_uid, pw->pw_gid) != 0) {
			rc = nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot chown %s: %s", dir,
					  strerror(errno));
			goto fail;
		}
		/* The postgres user must pass through the state directory (0700
		 * when novad made it). Traversal only: the admin token in it stays
		 * 0600, and nothing there becomes listable. */
		char parent[512];
		snprintf(parent, sizeof(parent), "%s", dir);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			if (stat(parent, &st) == 0 && (st.st_mode & 0011) != 0011 &&
			    chmod(parent, (st.st_mode & 07777) | 0011) != 0) {
				rc = nova_err_set(err, NOVA_EUNAVAIL, "state_dir", "cannot chmod %s: %s",
						  parent, strerror(errno));
				goto fail;
			}
		}
	}
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(version, sizeof(version), "%s/PG_VERSION", data);
	snprintf(log, sizeof(log), "%s/server.log", dir);
	snprintf(initlog, sizeof(initlog), "%s/initdb.log", dir);
	snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg->bindir);
	snprintf(initdb, sizeof(initdb), "%s/initdb", pg->bindir);
	if (stat(version, &st) != 0) {
		const char *argv[] = {initdb, "-D", data, "-U", "nova", "--auth=trust", "-E", "UTF8",
				      "--no-instructions", NULL};
		nova_log_kv(NOVA_LOG_INFO, "db", "creating embedded database cluster", "dir", dir, NULL);
		if (pg_run(pg, argv, initlog) != 0) {
			rc = nova_err_set(err, NOVA_EUNAVAIL, "", "initdb failed; see %s", initlog);
			goto fail;
		}
	}
	const char *status_argv[] = {ctl, "-D", data, "status", NULL};
	if (pg_run(pg, status_argv, log) == 0) {
		/* A server left running by a novad that died: adopt it, and own it
		 * from now on (we stop it at exit like one we started). */
		nova_log_kv(NOVA_LOG_INFO, "db", "adopting running embedded database", "dir", dir, NULL);
	} else {
		snprintf(opts, sizeof(opts), "-k %s -c listen_addresses=", dir);
		const char *start_argv[] = {ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", opts,
					    "start", NULL};
		if (pg_run(pg, start_argv, log) != 0) {
			rc = nova_err_set(err, NOVA_EUNAVAIL, "", "embedded database did not start; see %s",
					  log);
			goto fail;
		}
	}
	pg->owned = true;
	snprintf(pg->conninfo, sizeof(pg->conninfo), "host=%s dbname=nova user=nova", dir);
	if ((rc = pg_create_database(pg, err)))
		goto fail;
	*out = pg;
	return 0;
fail:
	if (pg->owned)
		pg_embedded_stop(pg);
	else
		free(pg);
	return rc;
}

const char *pg_embedded_conninfo(const struct pg_embedded *pg)
{
	return pg->conninfo;
}

void pg_embedded_stop(struct pg_embedded *pg)
{
	char data[600], log[600], ctl[600];
	if (!pg)
		return;
	if (pg->owned) {
		snprintf(data, sizeof(data), "%s/data", pg->dir);
		snprintf(log, sizeof(log), "%s/server.log", pg->dir);
		snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg->bindir);
		const char *argv[] = {ctl, "-D", data, "-m", "fast", "-w", "stop", NULL};
		if (pg_run(pg, argv, log) != 0)
			nova_log_kv(NOVA_LOG_WARN, "db", "embedded database did not stop cleanly", "dir",
				    pg->dir, NULL);
	}
	free(pg);
}
