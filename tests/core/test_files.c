/* core/files: the gate for paths a pool config names on novad's machine.
 * Every refusal names the field, none opens the file (a FIFO or a tty
 * would hang the test: an alarm fails it instead), none quotes content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/files.h"

static char dir[] = "/tmp/nova-files.XXXXXX";
static char inside[PATH_MAX], outside[PATH_MAX];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct nova_err err;
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(inside, sizeof(inside), "%s/allowed", dir);
	snprintf(outside, sizeof(outside), "%s/outside", dir);
	if (mkdir(inside, 0700) || mkdir(outside, 0700))
		return -1;
	const char *dirs[] = {inside};
	alarm(20); /* a blocked open fails the run instead of hanging it */
	return files_allowed_set(dirs, 1, "provider_files", &err);
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void refused(const char *path, size_t len, const char *words)
{
	struct nova_err err = {0};
	char real[PATH_MAX] = "";
	if (files_path_allowed(real, sizeof(real), path, len, "config.topology", &err) != NOVA_EINVAL)
		fail_msg("%s was allowed", path);
	assert_string_equal(err.field, "config.topology");
	if (!strstr(err.message, words))
		fail_msg("%s: want \"%s\", got \"%s\"", path, words, err.message);
	assert_string_equal(real, "");
	assert_null(strstr(err.message, "root:"));
}

static void test_paths_outside_the_allowed_directories_are_refused_unopened(void **state)
{
	struct nova_err err = {0};
	char p[PATH_MAX + 64];
	(void)state;
	refused("/etc/shadow", strlen("/etc/shadow"), "not under an allowed directory");
	refused("/proc/self/environ", strlen("/proc/self/environ"), "not under an allowed directory");
	refused("/dev/ptmx", strlen("/dev/ptmx"), "not under an allowed directory");
	/* the hint names the novad.yaml key */
	files_path_allowed(NULL, 0, "/etc/shadow", 11, "config.topology", &err);
	assert_non_null(strstr(err.hint, FILES_ALLOWED_KEY));
	/* "../" out of the allowed directory */
	snprintf(p, sizeof(p), "%s/x", outside);
	write_file(p, "secret text\n");
	snprintf(p, sizeof(p), "%s/../outside/x", inside);
	refused(p, strlen(p), "not under an allowed directory");
	snprintf(p, sizeof(p), "%s/../../../../etc/shadow", inside);
	refused(p, strlen(p), "not under an allowed directory");
	/* a missing file outside is "not under", not "no such file": no oracle */
	refused("/etc/no-such-file-here", strlen("/etc/no-such-file-here"),
		"not under an allowed directory");
	refused("etc/datacenter.yaml", strlen("etc/datacenter.yaml"), "absolute path");
	refused("", 0, "absolute path");
	snprintf(p, sizeof(p), "%s/x", inside);
	refused(p, strlen(p) + 1, "NUL"); /* "…/x\0" */
	/* a name that only shares the prefix */
	snprintf(p, sizeof(p), "%s2", inside);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s2/f", inside);
	write_file(p, "x");
	refused(p, strlen(p), "not under an allowed directory");
}

static void test_symlinks_are_judged_by_where_they_lead(void **state)
{
	char link[PATH_MAX + 64], target[PATH_MAX + 64], real[PATH_MAX];
	struct nova_err err = {0};
	(void)state;
	snprintf(link, sizeof(link), "%s/shadow", inside);
	assert_int_equal(symlink("/etc/shadow", link), 0);
	refused(link, strlen(link), "not under an allowed directory");
	snprintf(link, sizeof(link), "%s/tty", inside);
	assert_int_equal(symlink("/dev/ptmx", link), 0);
	refused(link, strlen(link), "not under an allowed directory");
	/* a link inside to a file inside is fine, resolved */
	snprintf(target, sizeof(target), "%s/dc.yaml", inside);
	write_file(target, "clusters: []\n");
	snprintf(link, sizeof(link), "%s/dc-link.yaml", inside);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(files_path_allowed(real, sizeof(real), link, strlen(link), "f", &err), 0);
	assert_string_equal(real, target);
}

static void test_only_regular_files_are_accepted(void **state)
{
	char p[PATH_MAX + 64];
	(void)state;
	snprintf(p, sizeof(p), "%s/fifo", inside);
	assert_int_equal(mkfifo(p, 0600), 0);
	refused(p, strlen(p), "not a regular file"); /* an open would block here */
	refused(inside, strlen(inside), "not under an allowed directory");
	snprintf(p, sizeof(p), "%s/sub", inside);
	mkdir(p, 0700);
	refused(p, strlen(p), "not a regular file");
	snprintf(p, sizeof(p), "%s/missing", inside);
	refused(p, strlen(p), "No such file");
}

static void test_a_file_inside_is_read_with_a_cap(void **state)
{
	char p[PATH_MAX + 64], *text = NULL;
	size_t len = 0;
	struct nova_err err = {0};
	(void)state;
	snprintf(p, sizeof(p), "%s/small", inside);
	write_file(p, "hello\n");
	assert_int_equal(files_read_allowed(&text, &len, NULL, 0, p, strlen(p), 64, "f", &err), 0);
	assert_string_equal(text, "hello\n");
	assert_int_equal(len, 6);
	free(text);
	assert_int_equal(files_read_allowed(&text, &len, NULL, 0, p, strlen(p), 3, "f", &err), NOVA_EINVAL);
	assert_null(text);
	assert_non_null(strstr(err.message, "larger than 3 bytes"));
	assert_null(strstr(err.message, "hello"));
}

static void test_nothing_is_allowed_until_set(void **state)
{
	struct nova_err err = {0};
	char p[PATH_MAX + 64];
	(void)state;
	snprintf(p, sizeof(p), "%s/small", inside);
	write_file(p, "x");
	assert_int_equal(files_allowed_set(NULL, 0, "provider_files", &err), 0);
	refused(p, strlen(p), "not under an allowed directory");
	const char *missing[] = {"/nonexistent-nova-dir"};
	assert_int_equal(files_allowed_set(missing, 1, "provider_files", &err), NOVA_EINVAL);
	assert_string_equal(err.field, "provider_files");
	const char *dirs[] = {inside};
	assert_int_equal(files_allowed_set(dirs, 1, "provider_files", &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths_outside_the_allowed_directories_are_refused_unopened),
		cmocka_unit_test(test_symlinks_are_judged_by_where_they_lead),
		cmocka_unit_test(test_only_regular_files_are_accepted),
		cmocka_unit_test(test_a_file_inside_is_read_with_a_cap),
		cmocka_unit_test(test_nothing_is_allowed_until_set),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
