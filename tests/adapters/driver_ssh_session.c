/* ssh_session against real sshd hosts. Not run on its own (tests/run.sh runs
 * only test_*): tests/adapters/test_ssh_session.sh makes the hosts
 * (tests/support/sshhosts.sh) and passes them in the environment:
 *   NOVA_SSH_HOST1, NOVA_SSH_HOST2  addresses (sshd on port 22, user root)
 *   NOVA_SSH_KEY, NOVA_SSH_ECDSA_KEY  authorized ed25519 / ECDSA keys
 *   NOVA_SSH_WRONG_KEY              an ed25519 key no host authorizes
 *   NOVA_SSH_RSA_KEY                an RSA key (authorized, yet unusable)
 *   NOVA_SSH_KNOWN_HOSTS            both hosts' keys as "[addr]:22"
 *   NOVA_SSH_UNUSED                 an address where nothing answers
 *   NOVA_SSH_INSTALL1               host 1's install dir (the hosts share
 *                                   this machine's filesystem)
 *   NOVA_SSH_WORK                   a scratch directory
 *   NOVA_SSH_SMALL1                 a 1 MiB tmpfs on host 1 (only its
 *                                   sessions see it)
 *   NOVA_SSH_KILL1                  a script that kills host 1's sessions
 *   NOVA_SSH_CUT1, NOVA_SSH_UNCUT1  scripts that take host 1's link down
 *                                   (packets dropped, nothing refused) and
 *                                   up again */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <dirent.h>
#include <pthread.h>

#include "adapters/ssh/ssh_session.h"

static const char *env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		fail_msg("%s is not set: run tests/adapters/test_ssh_session.sh", name);
	return v;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct ssh_target target(const char *host_var)
{
	return (struct ssh_target){
		.address = env(host_var),
		.port = 22,
		.user = "root",
		.key_path = env("NOVA_SSH_KEY"),
		.known_hosts = env("NOVA_SSH_KNOWN_HOSTS"),
		.policy = SSH_HOST_KEY_STRICT,
		.connect_timeout_ms = 5000,
	};
}

static struct ssh_session *open_ok(const struct ssh_target *t)
{
	struct ssh_session *s = NULL;
	struct nova_err err = {0};
	int rc = ssh_session_open(&s, t, &err);
	if (rc)
		fail_msg("open %s: %s", t->address, err.message);
	return s;
}

static void expect_open_fails(const struct ssh_target *t, int code, const char *words)
{
	struct ssh_session *s = NULL;
	struct nova_err err = {0};
	int rc = ssh_session_open(&s, t, &err);
	assert_null(s);
	if (rc != code || !strstr(err.message, words))
		fail_msg("want %d \"%s\", got %d \"%s\"", code, words, rc, err.message);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	static char buf[8192];
	size_t n;
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void scratch(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", env("NOVA_SSH_WORK"), name);
	unlink(out);
}

/* --- exec ---------------------------------------------------------------- */

static void test_exec_returns_stdout_stderr_and_exit_status(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	struct ssh_session *s = open_ok(&t);
	struct ssh_exec_result r;
	struct nova_err err = {0};
	(void)state;
	assert_int_equal(ssh_session_exec(&r, s, "echo out; echo err >&2; hostname; exit 3", 5000, 0,
					  &err), 0);
	assert_int_equal(r.exit_status, 3);
	assert_string_equal(r.out, "out\nnova-host1\n");
	assert_string_equal(r.err, "err\n");
	assert_string_equal(r.exit_signal, "");
	ssh_exec_result_finish(&r);
	/* The session serves the next command. */
	assert_int_equal(ssh_session_exec(&r, s, "true", 5000, 0, &err), 0);
	assert_int_equal(r.exit_status, 0);
	assert_int_equal(r.out_len, 0);
	ssh_exec_result_finish(&r);
	ssh_session_close(s);
}

static void test_exec_reads_large_stdout_and_stderr_together(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST2");
	struct ssh_session *s = open_ok(&t);
	struct ssh_exec_result r;
	struct nova_err err = {0};
	(void)state;
	/* Far more than one channel window on each stream, written
	 * alternately: reading one stream at a time would deadlock. */
	assert_int_equal(ssh_session_exec(&r, s,
					  "for i in 1 2 3 4 5 6 7 8; do head -c 100000 /dev/zero | tr '\\0' a;"
					  " head -c 100000 /dev/zero | tr '\\0' b >&2; done",
					  20000, 0, &err), 0);
	assert_int_equal(r.exit_status, 0);
	assert_int_equal(r.out_len, 800000);
	assert_int_equal(r.err_len, 800000);
	assert_false(r.truncated);
	assert_int_equal(strspn(r.out, "a"), 800000);
	assert_int_equal(strspn(r.err, "b"), 800000);
	ssh_exec_result_finish(&r);
	/* With a limit, the rest is read and dropped. */
	assert_int_equal(ssh_session_exec(&r, s, "head -c 50000 /dev/zero", 10000, 1000, &err), 0);
	assert_int_equal(r.out_len, 1000);
	assert_true(r.truncated);
	ssh_exec_result_finish(&r);
	ssh_session_close(s);
}

static void test_exec_killed_by_signal_is_a_failure(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	struct ssh_session *s = open_ok(&t);
	struct ssh_exec_result r;
	struct nova_err err = {0};
	(void)state;
	assert_int_equal(ssh_session_exec(&r, s, "echo before; kill -KILL $$", 5000, 0, &err),
			 NOVA_EFAILED);
	assert_string_equal(r.exit_signal, "KILL");
	assert_string_equal(r.out, "before\n");
	assert_non_null(strstr(err.message, "killed by signal KILL"));
	assert_non_null(strstr(err.message, "host "));
	ssh_exec_result_finish(&r);
	ssh_session_close(s);
}

static void test_exec_past_its_timeout_returns_a_timeout(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	struct ssh_session *s = open_ok(&t);
	struct ssh_exec_result r;
	struct nova_err err = {0};
	(void)state;
	long long t0 = now_ms();
	assert_int_equal(ssh_session_exec(&r, s, "echo started; sleep 30", 700, 0, &err),
			 NOVA_EAGAIN);
	long long took = now_ms() - t0;
	assert_true(took >= 650 && took < 3000);
	assert_non_null(strstr(err.message, "command timed out after 700 ms"));
	assert_string_equal(r.out, "started\n");
	ssh_exec_result_finish(&r);
	/* The session is left mid-protocol: it says so instead of hanging. */
	assert_false(ssh_session_usable(s));
	assert_int_equal(ssh_session_exec(&r, s, "true", 1000, 0, &err), NOVA_EAGAIN);
	assert_non_null(strstr(err.message, "unusable"));
	ssh_exec_result_finish(&r);
	t0 = now_ms();
	ssh_session_close(s);
	assert_true(now_ms() - t0 < 1500);
}

/* --- host keys ----------------------------------------------------------- */

static void test_strict_refuses_an_unknown_host_key(void **state)
{
	char kh[512];
	struct ssh_target t = target("NOVA_SSH_HOST1");
	(void)state;
	scratch(kh, sizeof(kh), "kh_strict");
	t.known_hosts = kh; /* missing file: knows nobody */
	expect_open_fails(&t, NOVA_EFAILED, "host key is unknown (ssh-ed25519 SHA256:");
	FILE *f = fopen(kh, "we");
	fputs("# comment\n\n[10.99.99.99]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", f);
	fclose(f);
	expect_open_fails(&t, NOVA_EFAILED, "host key is unknown");
	assert_null(strstr(slurp(kh), env("NOVA_SSH_HOST1"))); /* nothing recorded */
}

static void test_accept_new_records_the_key_then_accepts_it(void **state)
{
	char kh[512], want[256];
	struct ssh_target t = target("NOVA_SSH_HOST1");
	(void)state;
	scratch(kh, sizeof(kh), "kh_accept");
	/* An entry libssh2 cannot parse does not hide the rest of the file. */
	FILE *f = fopen(kh, "we");
	fputs("@cert-authority *.example ssh-ed25519 AAAA\nunparsable line", f);
	fclose(f);
	t.known_hosts = kh;
	t.policy = SSH_HOST_KEY_ACCEPT_NEW;
	ssh_session_close(open_ok(&t));
	snprintf(want, sizeof(want), "\n[%s]:22 ssh-ed25519 AAAA", env("NOVA_SSH_HOST1"));
	assert_non_null(strstr(slurp(kh), want));
	/* Recorded once: the second open matches it, strict accepts it. */
	ssh_session_close(open_ok(&t));
	t.policy = SSH_HOST_KEY_STRICT;
	ssh_session_close(open_ok(&t));
	const char *text = slurp(kh), *first = strstr(text, want);
	assert_null(strstr(first + 1, want));
	struct stat st;
	assert_int_equal(stat(kh, &st), 0);
}

static void test_a_changed_host_key_is_refused_under_both_policies(void **state)
{
	char kh[512], line[1024];
	struct ssh_target t = target("NOVA_SSH_HOST1");
	const char *all = slurp(env("NOVA_SSH_KNOWN_HOSTS"));
	(void)state;
	/* Host 2's key written under host 1's name. */
	const char *h2 = strstr(all, env("NOVA_SSH_HOST2"));
	assert_non_null(h2);
	const char *key = strstr(h2, " ");
	snprintf(line, sizeof(line), "[%s]:22%.*s", env("NOVA_SSH_HOST1"), (int)strcspn(key, "\n") + 1,
		 key);
	scratch(kh, sizeof(kh), "kh_changed");
	FILE *f = fopen(kh, "we");
	fputs(line, f);
	fclose(f);
	t.known_hosts = kh;
	expect_open_fails(&t, NOVA_EFAILED, "host key changed (ssh-ed25519 SHA256:");
	t.policy = SSH_HOST_KEY_ACCEPT_NEW;
	expect_open_fails(&t, NOVA_EFAILED, "host key changed");
	assert_string_equal(slurp(kh), line); /* nothing appended */
	/* The message names the host. */
	struct ssh_session *s = NULL;
	struct nova_err err = {0};
	assert_int_equal(ssh_session_open(&s, &t, &err), NOVA_EFAILED);
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "host %s:22: host key changed", env("NOVA_SSH_HOST1"));
	assert_non_null(strstr(err.message, prefix));
}

/* --- authentication ------------------------------------------------------ */

static void test_a_wrong_user_is_refused(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	(void)state;
	t.user = "nova-no-such-user";
	expect_open_fails(&t, NOVA_EFAILED, "authentication failed for user nova-no-such-user");
}

static void test_a_wrong_key_is_refused(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST2");
	(void)state;
	t.key_path = env("NOVA_SSH_WRONG_KEY");
	expect_open_fails(&t, NOVA_EFAILED, "authentication failed for user root");
}

static void test_an_ecdsa_key_works(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST2");
	(void)state;
	t.key_path = env("NOVA_SSH_ECDSA_KEY");
	ssh_session_close(open_ok(&t));
}

static void test_an_rsa_key_is_refused_with_the_reason(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	(void)state;
	t.key_path = env("NOVA_SSH_RSA_KEY");
	expect_open_fails(&t, NOVA_EFAILED, "is RSA: libssh2 1.10 signs RSA keys only with SHA-1");
}

static void test_a_missing_key_file_is_invalid(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	(void)state;
	t.key_path = "/nonexistent/nova_key";
	expect_open_fails(&t, NOVA_EINVAL, "private key /nonexistent/nova_key: No such file");
}

static void test_ssh_agent_authenticates_when_no_key_is_given(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST2");
	(void)state;
	if (!getenv("SSH_AUTH_SOCK"))
		fail_msg("SSH_AUTH_SOCK is not set: the wrapper starts an agent");
	t.key_path = NULL;
	ssh_session_close(open_ok(&t));
}

/* --- reachability -------------------------------------------------------- */

static void test_an_unreachable_host_times_out_at_the_connect_deadline(void **state)
{
	struct ssh_target t = target("NOVA_SSH_UNUSED");
	(void)state;
	t.connect_timeout_ms = 800;
	long long t0 = now_ms();
	struct ssh_session *s = NULL;
	struct nova_err err = {0};
	int rc = ssh_session_open(&s, &t, &err);
	long long took = now_ms() - t0;
	assert_int_equal(rc, NOVA_EAGAIN);
	/* No ARP answer: either our deadline or the kernel's "no route". */
	if (!strstr(err.message, "connect timed out after 800 ms") &&
	    !strstr(err.message, "No route to host"))
		fail_msg("got %s", err.message);
	assert_true(took < 4000);
}

static void test_a_closed_port_is_refused_at_once(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	(void)state;
	t.port = 2222;
	long long t0 = now_ms();
	expect_open_fails(&t, NOVA_EAGAIN, ":2222: connect: Connection refused");
	assert_true(now_ms() - t0 < 1000);
}

/* --- upload -------------------------------------------------------------- */

static void test_upload_writes_atomically_with_its_mode(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	struct ssh_session *s = open_ok(&t);
	struct nova_err err = {0};
	char remote[512], local_copy[512];
	struct stat st;
	(void)state;
	snprintf(remote, sizeof(remote), "%s/it's config.json", env("NOVA_SSH_INSTALL1"));
	assert_int_equal(ssh_session_upload(s, remote, "{\"a\":1}\n", 8, 0600, 5000, &err), 0);
	assert_string_equal(slurp(remote), "{\"a\":1}\n");
	assert_int_equal(stat(remote, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Replacing it: the new contents, and no temporary file left. */
	size_t big = 3u << 20;
	char *data = malloc(big);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	assert_int_equal(ssh_session_upload(s, remote, data, big, 0755, 20000, &err), 0);
	assert_int_equal(stat(remote, &st), 0);
	assert_int_equal(st.st_size, (off_t)big);
	assert_int_equal(st.st_mode & 0777, 0755);
	FILE *f = fopen(remote, "re");
	char *back = malloc(big);
	assert_int_equal(fread(back, 1, big, f), big);
	fclose(f);
	assert_memory_equal(back, data, big);
	free(back);
	free(data);
	struct ssh_exec_result r;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "ls -A '%s'", env("NOVA_SSH_INSTALL1"));
	assert_int_equal(ssh_session_exec(&r, s, cmd, 5000, 0, &err), 0);
	assert_string_equal(r.out, "it's config.json\n");
	ssh_exec_result_finish(&r);
	/* A local file too. */
	snprintf(local_copy, sizeof(local_copy), "%s/agent.bin", env("NOVA_SSH_INSTALL1"));
	assert_int_equal(ssh_session_upload_file(s, local_copy, "/bin/true", 0755, 20000, &err), 0);
	assert_int_equal(ssh_session_exec(&r, s, local_copy, 5000, 0, &err), 0);
	assert_int_equal(r.exit_status, 0);
	ssh_exec_result_finish(&r);
	ssh_session_close(s);
}

static void test_upload_into_a_missing_directory_names_the_path(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	struct ssh_session *s = open_ok(&t);
	struct nova_err err = {0};
	(void)state;
	assert_int_equal(ssh_session_upload(s, "/nonexistent-nova/dir/f", "x", 1, 0600, 5000, &err),
			 NOVA_EFAILED);
	assert_non_null(strstr(err.message, ": create /nonexistent-nova/dir/f.nova-tmp-"));
	assert_non_null(strstr(err.message, "no such file or directory"));
	/* The session is still good. */
	assert_true(ssh_session_usable(s));
	ssh_session_close(s);
}

static void test_upload_on_a_full_disk_fails_and_keeps_the_old_file(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	struct ssh_session *s = open_ok(&t);
	struct ssh_exec_result r;
	struct nova_err err = {0};
	char remote[512], cmd[1200];
	size_t big = 2u << 20;
	char *data = calloc(1, big);
	(void)state;
	snprintf(remote, sizeof(remote), "%s/agent", env("NOVA_SSH_SMALL1"));
	assert_int_equal(ssh_session_upload(s, remote, "old\n", 4, 0644, 5000, &err), 0);
	assert_int_equal(ssh_session_upload(s, remote, data, big, 0644, 20000, &err), NOVA_EFAILED);
	free(data);
	if (!strstr(err.message, "failure (a full disk, among others)"))
		fail_msg("got %s", err.message);
	/* The old file is whole, the temporary one is gone, the session serves. */
	assert_true(ssh_session_usable(s));
	snprintf(cmd, sizeof(cmd), "cat '%s'; ls -A '%s'", remote, env("NOVA_SSH_SMALL1"));
	assert_int_equal(ssh_session_exec(&r, s, cmd, 5000, 0, &err), 0);
	assert_string_equal(r.out, "old\nagent\n");
	ssh_exec_result_finish(&r);
	ssh_session_close(s);
}

struct killer {
	const char *dir;
	bool fired;
};

/* Kill host 1's sessions as soon as an upload's temporary file exists. */
static void *kill_mid_upload(void *arg)
{
	struct killer *k = arg;
	for (int i = 0; i < 20000 && !k->fired; i++) {
		DIR *d = opendir(k->dir);
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (strstr(e->d_name, ".nova-tmp-")) {
				k->fired = system(env("NOVA_SSH_KILL1")) == 0;
				break;
			}
		if (d)
			closedir(d);
		usleep(500);
	}
	return NULL;
}

static void test_a_connection_lost_mid_upload_is_transient_and_keeps_the_old_file(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	struct ssh_session *s = open_ok(&t);
	struct nova_err err = {0};
	struct killer k = {.dir = env("NOVA_SSH_INSTALL1")};
	char remote[512];
	size_t big = 64u << 20;
	char *data = calloc(1, big);
	pthread_t th;
	(void)state;
	snprintf(remote, sizeof(remote), "%s/victim", k.dir);
	assert_int_equal(ssh_session_upload(s, remote, "old\n", 4, 0644, 5000, &err), 0);
	assert_int_equal(pthread_create(&th, NULL, kill_mid_upload, &k), 0);
	int rc = ssh_session_upload(s, remote, data, big, 0644, 30000, &err);
	pthread_join(th, NULL);
	free(data);
	assert_true(k.fired);
	if (rc != NOVA_EAGAIN || !strstr(err.message, "connection lost"))
		fail_msg("want a lost connection, got %d %s", rc, err.message);
	assert_false(ssh_session_usable(s));
	assert_string_equal(slurp(remote), "old\n");
	long long t0 = now_ms();
	ssh_session_close(s);
	assert_true(now_ms() - t0 < 1500);
	/* The temporary file could not be removed over a dead connection; it
	 * carries the .nova-tmp- mark for whoever cleans up next. */
	DIR *d = opendir(k.dir);
	struct dirent *e;
	int tmps = 0;
	while ((e = readdir(d)))
		tmps += strstr(e->d_name, "victim.nova-tmp-") != NULL;
	closedir(d);
	assert_int_equal(tmps, 1);
}

/* A session whose host vanished without a word (its link cut: nothing
 * answers, nothing refuses; a pooled session finds out at its next use)
 * fails its next command within about the connect timeout, since sent
 * data may stay unacknowledged only that long (TCP_USER_TIMEOUT), and not
 * at the command's own timeout. */
static void test_a_command_over_a_silently_dead_link_fails_at_the_connect_timeout(void **state)
{
	struct ssh_target t = target("NOVA_SSH_HOST1");
	struct ssh_exec_result r = {0};
	struct nova_err err = {0};
	(void)state;
	t.connect_timeout_ms = 2000;
	struct ssh_session *s = open_ok(&t);
	assert_int_equal(ssh_session_exec(&r, s, "true", 5000, 0, &err), 0);
	ssh_exec_result_finish(&r);
	assert_int_equal(system(env("NOVA_SSH_CUT1")), 0);
	long long t0 = now_ms();
	int rc = ssh_session_exec(&r, s, "echo still here", 60000, 0, &err);
	long long took = now_ms() - t0;
	ssh_exec_result_finish(&r);
	int restored = system(env("NOVA_SSH_UNCUT1"));
	ssh_session_close(s);
	assert_int_equal(restored, 0);
	if (rc == 0)
		fail_msg("a command ran over a cut link");
	if (took > 20000)
		fail_msg("the dead link was found after %lld ms (connect timeout 2,000 ms, command "
			 "timeout 60,000 ms)", took);
}

static void test_shell_quote(void **state)
{
	char out[32];
	struct nova_err err = {0};
	(void)state;
	assert_int_equal(ssh_shell_quote(out, sizeof(out), "a b", &err), 0);
	assert_string_equal(out, "'a b'");
	assert_int_equal(ssh_shell_quote(out, sizeof(out), "it's", &err), 0);
	assert_string_equal(out, "'it'\\''s'");
	assert_int_equal(ssh_shell_quote(out, sizeof(out), "", &err), 0);
	assert_string_equal(out, "''");
	assert_int_equal(ssh_shell_quote(out, 6, "abcd", &err), NOVA_EINVAL);
	assert_int_equal(ssh_shell_quote(out, 7, "abcd", &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shell_quote),
		cmocka_unit_test(test_exec_returns_stdout_stderr_and_exit_status),
		cmocka_unit_test(test_exec_reads_large_stdout_and_stderr_together),
		cmocka_unit_test(test_exec_killed_by_signal_is_a_failure),
		cmocka_unit_test(test_exec_past_its_timeout_returns_a_timeout),
		cmocka_unit_test(test_strict_refuses_an_unknown_host_key),
		cmocka_unit_test(test_accept_new_records_the_key_then_accepts_it),
		cmocka_unit_test(test_a_changed_host_key_is_refused_under_both_policies),
		cmocka_unit_test(test_a_wrong_user_is_refused),
		cmocka_unit_test(test_a_wrong_key_is_refused),
		cmocka_unit_test(test_an_ecdsa_key_works),
		cmocka_unit_test(test_an_rsa_key_is_refused_with_the_reason),
		cmocka_unit_test(test_a_missing_key_file_is_invalid),
		cmocka_unit_test(test_ssh_agent_authenticates_when_no_key_is_given),
		cmocka_unit_test(test_an_unreachable_host_times_out_at_the_connect_deadline),
		cmocka_unit_test(test_a_closed_port_is_refused_at_once),
		cmocka_unit_test(test_upload_writes_atomically_with_its_mode),
		cmocka_unit_test(test_upload_into_a_missing_directory_names_the_path),
		cmocka_unit_test(test_upload_on_a_full_disk_fails_and_keeps_the_old_file),
		cmocka_unit_test(test_a_connection_lost_mid_upload_is_transient_and_keeps_the_old_file),
		cmocka_unit_test(test_a_command_over_a_silently_dead_link_fails_at_the_connect_timeout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
