/* Test support: a fresh database per test in the run's PostgreSQL cluster
 * (started by tests/run.sh, socket directory in $NOVA_TEST_PGHOST). */
#ifndef NOVA_TESTS_SUPPORT_TESTDB_H
#define NOVA_TESTS_SUPPORT_TESTDB_H

#include <stddef.h>

/* Create an empty database with a unique name and write a libpq conninfo
 * for it into buf. Returns 0, or -1 when no cluster is available (the
 * caller should fail the test: integration tests are not optional). */
int testdb_create(char *buf, size_t len);
/* Conninfo of the cluster's maintenance database (postgres). */
int testdb_admin_conninfo(char *buf, size_t len);

#endif
