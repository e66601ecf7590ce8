/* core/rotlog.h: a log capped in size, rotated to PATH.1 ... PATH.keep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/rotlog.h"

static char dir[] = "/tmp/nova-rotlog-XXXXXX";

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static long long size_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* 1 MiB written in 100-byte lines with a 4 KiB cap and 3 kept: never more
 * than 4 files, each at most the cap, and the newest lines are in PATH. */
static void test_a_log_never_grows_past_its_cap(void **state)
{
	struct rotlog *l;
	struct nova_err err;
	char path[128], p[160], line[101];
	(void)state;
	snprintf(path, sizeof(path), "%s/agent.log", dir);
	assert_int_equal(rotlog_open(&l, path, 4096, 3, false, &err), 0);
	for (int i = 0; i < 10486; i++) {
		snprintf(line, sizeof(line), "%-99d", i);
		line[99] = '\n';
		assert_int_equal(rotlog_write(l, line, 100), 0);
	}
	assert_true(size_of(path) > 0 && size_of(path) <= 4096);
	for (int k = 1; k <= 3; k++) {
		snprintf(p, sizeof(p), "%s.%d", path, k);
		assert_true(size_of(p) >= 4000 && size_of(p) <= 4096);
	}
	snprintf(p, sizeof(p), "%s.4", path);
	assert_int_equal(size_of(p), -1);
	/* Lines are whole and the newest is last in the current file. */
	FILE *f = fopen(path, "r");
	char buf[4097];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_int_equal(n % 100, 0);
	assert_int_equal(atoi(buf + n - 100), 10485);
	rotlog_close(l);
}

/* Reopened, it appends and keeps counting from the file's size; a line
 * larger than the cap goes whole into a fresh file. */
static void test_reopen_appends_and_a_big_line_is_not_split(void **state)
{
	struct rotlog *l;
	struct nova_err err;
	char path[128], p[160], big[6000];
	(void)state;
	snprintf(path, sizeof(path), "%s/reopen.log", dir);
	assert_int_equal(rotlog_open(&l, path, 4096, 1, false, &err), 0);
	assert_int_equal(rotlog_write(l, "first\n", 6), 0);
	rotlog_close(l);
	assert_int_equal(rotlog_open(&l, path, 4096, 1, false, &err), 0);
	assert_int_equal(rotlog_write(l, "second\n", 7), 0);
	assert_int_equal(size_of(path), 13);
	memset(big, 'x', sizeof(big));
	assert_int_equal(rotlog_write(l, big, sizeof(big)), 0);
	assert_int_equal(size_of(path), (long long)sizeof(big));
	snprintf(p, sizeof(p), "%s.1", path);
	assert_int_equal(size_of(p), 13);
	rotlog_close(l);
	rotlog_close(NULL);
}

static void test_bad_settings_are_refused_naming_them(void **state)
{
	struct rotlog *l;
	struct nova_err err;
	char path[128];
	(void)state;
	snprintf(path, sizeof(path), "%s/bad.log", dir);
	assert_int_equal(rotlog_open(&l, path, 100, 3, false, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "log_max_bytes");
	assert_int_equal(rotlog_open(&l, path, 4096, 0, false, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "log_keep");
	assert_int_equal(rotlog_open(&l, "/nonexistent-dir/x.log", 4096, 1, false, &err), NOVA_EINVAL);
	assert_string_equal(err.field, "log_file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_log_never_grows_past_its_cap),
		cmocka_unit_test(test_reopen_appends_and_a_big_line_is_not_split),
		cmocka_unit_test(test_bad_settings_are_refused_naming_them),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
