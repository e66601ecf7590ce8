#include "tests/support/testdb.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int testdb_admin_conninfo(char *buf, size_t len)
{
	const char *host = getenv("NOVA_TEST_PGHOST");
	if (!host || !*host) {
		fprintf(stderr, "testdb: NOVA_TEST_PGHOST is unset; run tests through tests/run.sh\n");
		return -1;
	}
	snprintf(buf, len, "host=%s dbname=postgres user=nova", host);
	return 0;
}

int testdb_create(char *buf, size_t len)
{
	static unsigned counter;
	char admin[512], name[64], sql[128];
	PGconn *c;
	PGresult *r;
	if (testdb_admin_conninfo(admin, sizeof(admin)))
		return -1;
	c = PQconnectdb(admin);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "testdb: %s", PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	/* The name is ours, built from numbers only: safe to put in SQL text
	 * (CREATE DATABASE takes no parameters). */
	snprintf(name, sizeof(name), "t_%ld_%u_%ld", (long)getpid(), ++counter, (long)time(NULL) % 100000);
	snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", name);
	r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "testdb: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	if (!ok)
		return -1;
	snprintf(buf, len, "host=%s dbname=%s user=nova", getenv("NOVA_TEST_PGHOST"), name);
	return 0;
}
