/* Kubeconfig parsing: every supported credential form, context choice,
 * relative paths, the in-cluster service account, and positioned errors
 * for what is wrong or not supported. */
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

#include "adapters/kubernetes/kube.h"
#include "core/files.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/nova-kubeconfig-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	/* As novad does from provider_files: the files a kubeconfig names are
	 * read only under these. */
	const char *dirs[] = {dir};
	struct nova_err err;
	return files_allowed_set(dirs, 1, "provider_files", &err) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static char *b64(const char *s)
{
	return kube_base64_encode(s, strlen(s));
}

#define PEM_CA "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n"
#define PEM_CERT "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n"
#define PEM_KEY "-----BEGIN EC PRIVATE KEY-----\nMHcCAQ\n-----END EC PRIVATE KEY-----\n"

static void test_base64_round_trip_ignores_newlines(void **state)
{
	size_t len;
	(void)state;
	char *e = b64(PEM_CA);
	assert_non_null(e);
	char *wrapped = malloc(strlen(e) * 2 + 1);
	size_t k = 0;
	for (size_t i = 0; e[i]; i++) {
		wrapped[k++] = e[i];
		if (i % 10 == 9)
			wrapped[k++] = '\n';
	}
	wrapped[k] = '\0';
	char *d = kube_base64_decode(wrapped, &len);
	assert_non_null(d);
	assert_int_equal(len, strlen(PEM_CA));
	assert_string_equal(d, PEM_CA);
	free(d);
	assert_null(kube_base64_decode("not base64 at all!", &len));
	free(wrapped);
	free(e);
}

static void test_inline_token_and_ca_data_with_namespace(void **state)
{
	struct kube_config *c;
	struct nova_err err;
	char *ca = b64(PEM_CA), text[2048];
	(void)state;
	snprintf(text, sizeof(text),
		 "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
		 "clusters:\n- name: c1\n  cluster:\n    server: https://10.0.0.1:6443/\n"
		 "    certificate-authority-data: %s\n"
		 "contexts:\n- name: prod\n  context: {cluster: c1, user: u1, namespace: inference}\n"
		 "users:\n- name: u1\n  user:\n    token: abc.def\n",
		 ca);
	assert_int_equal(kube_config_load(&c, write_file("k1", text), NULL, &err), 0);
	assert_string_equal(c->server, "https://10.0.0.1:6443");
	assert_string_equal(c->context, "prod");
	assert_string_equal(c->namespace, "inference");
	assert_string_equal(c->token, "abc.def");
	assert_string_equal(c->ca_pem, PEM_CA);
	assert_null(c->ca_file);
	assert_null(c->cert_file);
	assert_false(c->insecure);
	kube_config_free(c);
	free(ca);
}

static void test_token_file_and_ca_file_are_relative_to_the_kubeconfig(void **state)
{
	struct kube_config *c;
	struct nova_err err;
	(void)state;
	write_file("token", "from-file\n");
	write_file("ca.crt", PEM_CA);
	const char *p = write_file("k2", "current-context: x\n"
					"clusters:\n- name: c\n  cluster:\n    server: https://k8s:443\n"
					"    certificate-authority: ca.crt\n"
					"contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
					"users:\n- name: u\n  user:\n    tokenFile: token\n");
	assert_int_equal(kube_config_load(&c, p, NULL, &err), 0);
	assert_string_equal(c->token, "from-file");
	/* Read at load, through the gate, and handed to TLS as data. */
	assert_string_equal(c->ca_pem, PEM_CA);
	assert_null(c->ca_file);
	assert_string_equal(c->namespace, "");
	kube_config_free(c);
}

static void test_client_certificate_files_and_inline_data(void **state)
{
	struct kube_config *c;
	struct nova_err err;
	char *cert = b64(PEM_CERT), *key = b64(PEM_KEY), text[2048];
	(void)state;
	write_file("client.crt", PEM_CERT);
	write_file("client.key", PEM_KEY);
	snprintf(text, sizeof(text),
		 "current-context: files\n"
		 "clusters:\n- name: c\n  cluster:\n    server: https://k8s:6443\n"
		 "    insecure-skip-tls-verify: true\n"
		 "contexts:\n- name: files\n  context: {cluster: c, user: by-file}\n"
		 "- name: inline\n  context: {cluster: c, user: by-data}\n"
		 "users:\n- name: by-file\n  user:\n    client-certificate: %s/client.crt\n"
		 "    client-key: client.key\n"
		 "- name: by-data\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n",
		 dir, cert, key);
	const char *p = write_file("k3", text);
	assert_int_equal(kube_config_load(&c, p, NULL, &err), 0);
	assert_true(c->insecure);
	assert_string_equal(c->cert_pem, PEM_CERT);
	assert_string_equal(c->key_pem, PEM_KEY);
	assert_null(c->token);
	kube_config_free(c);
	/* Another context than the current one, by name. */
	assert_int_equal(kube_config_load(&c, p, "inline", &err), 0);
	assert_string_equal(c->context, "inline");
	assert_string_equal(c->cert_pem, PEM_CERT);
	assert_string_equal(c->key_pem, PEM_KEY);
	assert_null(c->cert_file);
	kube_config_free(c);
	free(cert);
	free(key);
}

struct bad_case {
	const char *text;
	const char *where; /* ":line:" */
	const char *says;
};

static void test_bad_files_point_at_the_line(void **state)
{
	static const struct bad_case cases[] = {
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user:\n    exec:\n      command: aws\n",
		 ":12:", "user.exec is not supported"},
		{"current-context: nope\nclusters: []\ncontexts: []\nusers: []\n", ":1:",
		 "no context of that name"},
		{"clusters: []\n", ":1:", "no current-context"},
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: ftp://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user: {token: t}\n",
		 ":4:", "must be an https:// URL"},
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: other, user: u}\n"
		 "users:\n- name: u\n  user: {token: t}\n",
		 ":7:", "no cluster of that name"},
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user:\n    client-certificate-data: \"%%%%\"\n    client-key-data: x\n",
		 ":11:", "not base64"},
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user:\n    client-certificate: cert.pem\n",
		 ":11:", "needs its key"},
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user: {}\n",
		 ":10:", "no credentials"},
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user: {tokenFile: missing-token}\n",
		 ":10:", "cannot be used"},
		/* Files outside the allowed directories: refused, unread. */
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user: {tokenFile: /etc/shadow}\n",
		 ":10:", "under an allowed directory"},
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user: {tokenFile: ../../proc/self/environ}\n",
		 ":10:", "under an allowed directory"},
		{"current-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://a\n"
		 "    certificate-authority: /dev/ptmx\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user: {token: t}\n",
		 ":6:", "under an allowed directory"},
		/* Text of the file is never echoed: not a key, not a name. */
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: secret-cluster, user: u}\n"
		 "users:\n- name: u\n  user: {token: t}\n",
		 ":7:", "no cluster of that name"},
		{"current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
		 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		 "users:\n- name: u\n  user: {username: admin, password: secret}\n",
		 ":10:", "user.username is not supported"},
		{"- just\n- a list\n", "", "not a kubeconfig"},
	};
	(void)state;
	write_file("cert.pem", PEM_CERT);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_config *c = (struct kube_config *)1;
		struct nova_err err;
		char name[32];
		snprintf(name, sizeof(name), "bad%zu", i);
		const char *p = write_file(name, cases[i].text);
		nova_err_clear(&err);
		if (kube_config_load(&c, p, NULL, &err) != NOVA_EINVAL || c != NULL ||
		    !strstr(err.message, cases[i].says) || !strstr(err.message, cases[i].where))
			fail_msg("case %zu: %s", i, err.message);
		/* Secrets, and the file's text, never echo into the message. */
		assert_null(strstr(err.message, "secret"));
		assert_null(strstr(err.message, "root:"));
	}
}

/* An inline kubeconfig has no directory: a relative path in it is
 * refused; an absolute one is held to the allowed directories. */
static void test_inline_kubeconfig_paths_must_be_absolute_and_allowed(void **state)
{
	struct kube_config *c;
	struct nova_err err;
	char text[1024];
	(void)state;
	write_file("token", "tok\n");
	const char *head = "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://a}\n"
			   "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
			   "users:\n- name: u\n  user: {tokenFile: ";
	snprintf(text, sizeof(text), "%stoken}\n", head);
	assert_int_equal(kube_config_parse(&c, "kubeconfig_inline", text, strlen(text), NULL, NULL, &err),
			 NOVA_EINVAL);
	assert_non_null(strstr(err.message, "kubeconfig_inline:10:"));
	assert_non_null(strstr(err.message, "absolute path"));
	snprintf(text, sizeof(text), "%s%s/token}\n", head, dir);
	assert_int_equal(kube_config_parse(&c, "kubeconfig_inline", text, strlen(text), NULL, NULL, &err), 0);
	assert_string_equal(c->token, "tok");
	kube_config_free(c);
}

static void test_missing_file_is_an_error(void **state)
{
	struct kube_config *c;
	struct nova_err err;
	char p[128];
	(void)state;
	snprintf(p, sizeof(p), "%s/none", dir);
	assert_int_not_equal(kube_config_load(&c, p, NULL, &err), 0);
	assert_null(c);
}

static void test_in_cluster_service_account(void **state)
{
	struct kube_config *c;
	struct nova_err err;
	char want[128];
	(void)state;
	write_file("token", "sa-token\n");
	write_file("ca.crt", PEM_CA);
	write_file("namespace", "nova-system");
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(kube_config_in_cluster(&c, dir, &err), NOVA_EINVAL);
	assert_non_null(strstr(err.message, "not in a pod"));
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	assert_int_equal(kube_config_in_cluster(&c, dir, &err), 0);
	assert_string_equal(c->server, "https://10.96.0.1:443");
	assert_string_equal(c->token, "sa-token");
	assert_string_equal(c->namespace, "nova-system");
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	assert_string_equal(c->ca_file, want);
	kube_config_free(c);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	assert_int_equal(kube_config_in_cluster(&c, dir, &err), 0);
	assert_string_equal(c->server, "https://[fd00::1]:443");
	kube_config_free(c);
	unsetenv("KUBERNETES_SERVICE_HOST");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_round_trip_ignores_newlines),
		cmocka_unit_test_setup_teardown(test_inline_token_and_ca_data_with_namespace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_file_and_ca_file_are_relative_to_the_kubeconfig,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_certificate_files_and_inline_data, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_files_point_at_the_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file_is_an_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inline_kubeconfig_paths_must_be_absolute_and_allowed,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_in_cluster_service_account, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
