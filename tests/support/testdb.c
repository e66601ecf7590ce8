/* A fresh database per test in the run's cluster. Databases are not
 * dropped: the whole cluster is thrown away at the end of the run
 * (tests/support/pg.sh), and a failed test leaves its data to look at. */
#include "tests/support/testdb.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static const char *testdb_host(void)
{
	const char *host = getenv("NOVA_TEST_PGHOST");
	if (!host || !*host) {
		fprintf(stderr, "testdb: NOVA_TEST_PGHOST is unset; run tests through tests/run.sh "
				"(it starts the test cluster)\n");
		return NULL;
	}
	return host;
}

static int testdb_conninfo(char *buf, size_t len, const char *host, const char *dbname)
{
	int n = snprintf(buf, len, "host=%s dbname=%s user=nova", host, dbname);
	if (n < 0 || (size_t)n >= len) {
		fprintf(stderr, "testdb: conninfo buffer too small\n");
		return -1;
	}
	return 0;
}

int testdb_admin_conninfo(char *buf, size_t len)
{
	const char *host = testdb_host();
	return host ? testdb_conninfo(buf, len, host, "postgres") : -1;
}

int testdb_create(char *buf, size_t len)
{
	static atomic_uint counter;
	const char *host = testdb_host();
	char admin[512], name[64], sql[96];
	unsigned rnd = 0;
	PGconn *c;
	PGresult *r;
	int ok;
	if (!host || testdb_conninfo(admin, sizeof(admin), host, "postgres"))
		return -1;
	/* pid + counter are unique within a run; the random part keeps a
	 * rerun against a kept cluster from colliding with a recycled pid. */
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = (unsigned)rand();
	snprintf(name, sizeof(name), "t_%ld_%u_%08x", (long)getpid(), atomic_fetch_add(&counter, 1) + 1,
		 rnd);
	c = PQconnectdb(admin);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "testdb: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	/* CREATE DATABASE takes no parameters. The name is made here of
	 * digits, hex and underscores only, so quoting it is enough. */
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "testdb: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	if (!ok)
		return -1;
	return testdb_conninfo(buf, len, host, name);
}
