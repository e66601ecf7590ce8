/* A private PostgreSQL cluster under the state directory, for when no
 * database URL is configured.
 *
 * Uses the installed server binaries (initdb, pg_ctl from
 * /usr/lib/postgresql/<newest>/bin, or $NOVA_PG_BINDIR). The cluster listens
 * only on a unix socket inside the state directory (no TCP port to collide
 * with). As root the binaries run as the `postgres` user, which owns the data
 * directory. A second start reuses the cluster; a server already running on
 * it (a previous novad that crashed) is adopted, not started twice. */
#ifndef NOVA_CORE_PG_EMBEDDED_H
#define NOVA_CORE_PG_EMBEDDED_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

struct pg_embedded;

/* dir: the cluster's home, e.g. "<state_dir>/postgres" (created as needed).
 * On success the server is up and the database `nova` exists. */
int pg_embedded_start(struct pg_embedded **out, const char *dir, struct nova_err *err);
/* libpq conninfo for the `nova` database (contains no secret: trust auth
 * over a socket only the owner can reach). */
const char *pg_embedded_conninfo(const struct pg_embedded *pg);
/* Stop the server (fast shutdown) if this process started it, and free. */
void pg_embedded_stop(struct pg_embedded *pg);

/* Locate the server binaries directory into buf. */
int pg_embedded_bindir(char *buf, size_t len, struct nova_err *err);

#endif
