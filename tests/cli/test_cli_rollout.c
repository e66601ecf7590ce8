/* novactl's rollouts (issue 18) without a server: the PATCH body that
 * "deployment update" builds from its flags, the flags it refuses (exit 2,
 * naming the flag, before any request: the server here is a closed port),
 * and the rollout block get and describe print from a deployment's
 * "rollout". The requests themselves go to a real novad in
 * tests/cli/test_novactl_rollout.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli/cli.h"

/* The body for argv (after "deployment update"), as compact JSON with
 * sorted keys, or "!FIELD: MESSAGE" when refused. */
static char *body_of(int argc, char **argv)
{
	struct cli_args a;
	struct nova_err err;
	json_t *body = (json_t *)1;
	char *text;
	nova_err_clear(&err);
	cli_args_init(&a, argc, argv);
	if (cli_rollout_body(&body, &a, &err)) {
		assert_null(body);
		assert_int_equal(err.code, NOVA_EINVAL);
		if (asprintf(&text, "!%s: %s", err.field, err.message) < 0)
			fail();
		return text;
	}
	text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(body);
	return text;
}

#define assert_body(want, ...)                                                                \
	do {                                                                                      \
		char *argv_[] = {__VA_ARGS__};                                                    \
		char *got_ = body_of((int)(sizeof(argv_) / sizeof(argv_[0])), argv_);            \
		assert_string_equal(got_, want);                                                  \
		free(got_);                                                                       \
	} while (0)

static void test_update_without_rollout_flags_sends_the_model_alone(void **state)
{
	(void)state;
	/* No "rollout": the server's defaults, not novactl's copy of them. */
	assert_body("{\"model\":\"llama:2\"}", "web", "--model", "llama:2");
	assert_body("{\"model\":\"llama:2\"}", "--model=llama:2", "web");
}

static void test_update_sends_only_the_rollout_flags_given(void **state)
{
	(void)state;
	assert_body("{\"model\":\"llama:2\",\"rollout\":{\"canary_percent\":10}}", "web", "--model",
		    "llama:2", "--canary", "10");
	assert_body("{\"model\":\"llama:2\",\"rollout\":{\"canary_percent\":25}}", "web", "--model",
		    "llama:2", "--canary=25%");
	assert_body("{\"model\":\"llama:2\",\"rollout\":{\"auto_rollback\":false}}", "web",
		    "--no-auto-rollback", "--model", "llama:2");
	/* One of the two at 0 is the server's to judge (its default for the
	 * other is 0 today, but that is its to say). */
	assert_body("{\"model\":\"m:3\",\"rollout\":{\"max_surge\":0,\"max_unavailable\":1}}", "web",
		    "--model", "m:3", "--max-surge", "0", "--max-unavailable", "1");
	assert_body("{\"model\":\"m:3\",\"rollout\":{\"max_surge\":0}}", "web", "--model", "m:3",
		    "--max-surge", "0");
}

static void test_update_every_rollout_flag_becomes_its_member(void **state)
{
	(void)state;
	assert_body("{\"model\":\"m:2\",\"rollout\":{\"auto_rollback\":false,\"canary_percent\":5,"
		    "\"drain_timeout_s\":120,\"max_error_rate_increase\":0.25,\"max_surge\":2,"
		    "\"max_ttft_ratio\":1.5,\"max_unavailable\":1,\"min_requests\":50}}",
		    "web", "--model", "m:2", "--max-surge", "2", "--max-unavailable", "1", "--canary",
		    "5", "--drain-timeout", "120", "--no-auto-rollback", "--max-error-rate-increase",
		    "0.25", "--max-ttft-ratio", "1.5", "--min-requests", "50");
	/* Numbers that are whole go as integers, as the docs write them. */
	assert_body("{\"model\":\"m:2\",\"rollout\":{\"max_error_rate_increase\":0,"
		    "\"max_ttft_ratio\":3}}",
		    "web", "--model", "m:2", "--max-ttft-ratio", "3", "--max-error-rate-increase", "0");
	/* Thresholds with auto rollback off are still sent: the server keeps
	 * them and get shows them. */
	assert_body("{\"model\":\"m:2\",\"rollout\":{\"auto_rollback\":false,\"min_requests\":5}}",
		    "web", "--model", "m:2", "--no-auto-rollback", "--min-requests", "5");
	/* The drain bound (3600) is the server's. */
	assert_body("{\"model\":\"m:2\",\"rollout\":{\"drain_timeout_s\":7200}}", "web", "--model",
		    "m:2", "--drain-timeout", "7200");
}

static void test_update_refuses_what_is_plainly_wrong_naming_the_flag(void **state)
{
	(void)state;
	assert_body("!--model: --model is required", "web");
	assert_body("!--model: --model is required", "web", "--model=");
	assert_body("!--max-surge: --max-surge must be a non-negative integer, not \"two\"", "web",
		    "--model", "m:2", "--max-surge", "two");
	assert_body("!--max-unavailable: --max-unavailable must be a non-negative integer, not \"-1\"",
		    "web", "--model", "m:2", "--max-unavailable=-1");
	assert_body("!--drain-timeout: --drain-timeout must be a non-negative integer, not \"30s\"",
		    "web", "--model", "m:2", "--drain-timeout", "30s");
	assert_body("!--min-requests: --min-requests must be a non-negative integer, not \"1.5\"",
		    "web", "--model", "m:2", "--min-requests", "1.5");
	assert_body("!--min-requests: --min-requests must be a non-negative integer, not \" 5\"",
		    "web", "--model", "m:2", "--min-requests", " 5");
	assert_body("!--canary: --canary must be a percentage from 1 to 99, not \"0\"", "web",
		    "--model", "m:2", "--canary", "0");
	assert_body("!--canary: --canary must be a percentage from 1 to 99, not \"100\"", "web",
		    "--model", "m:2", "--canary", "100");
	assert_body("!--canary: --canary must be a percentage from 1 to 99, not \"ten\"", "web",
		    "--model", "m:2", "--canary", "ten");
	assert_body("!--canary: --canary must be a percentage from 1 to 99, not \"%\"", "web",
		    "--model", "m:2", "--canary", "%");
	assert_body("!--max-ttft-ratio: --max-ttft-ratio must be a number, not \"inf\"", "web",
		    "--model", "m:2", "--max-ttft-ratio", "inf");
	assert_body("!--max-error-rate-increase: --max-error-rate-increase must be a number, not "
		    "\"5%\"",
		    "web", "--model", "m:2", "--max-error-rate-increase", "5%");
	assert_body("!--max-surge: --max-surge and --max-unavailable are both 0: no replica could "
		    "be replaced",
		    "web", "--model", "m:2", "--max-surge", "0", "--max-unavailable", "0");
}

/* "deployment VERB argv..." against a closed port; stderr into *err. */
static int run_deployment(char **out, char **err, const char *verb, int argc, char **argv)
{
	size_t elen = 0, olen = 0;
	struct cli_args a;
	struct cli_ctx ctx = {.server = "http://127.0.0.1:1"};
	char *obuf = NULL;
	int rc;
	ctx.errout = open_memstream(err, &elen);
	ctx.out = open_memstream(&obuf, &olen);
	cli_args_init(&a, argc, argv);
	rc = cli_cmd_deployment(&ctx, verb, &a);
	fclose(ctx.errout);
	fclose(ctx.out);
	if (out)
		*out = obuf;
	else
		free(obuf);
	return rc;
}

static void test_update_usage_errors_exit_2_before_any_request(void **state)
{
	static const struct {
		const char *verb;
		int argc;
		char *argv[6];
		const char *want;
	} cases[] = {
		{"update", 2, {"--model", "m:2"}, "novactl: NAME or ID is required"},
		{"update", 1, {"web"}, "novactl: --model is required (the version to roll out"},
		{"update", 2, {"web", "--model"}, "novactl: --model needs a value"},
		{"update", 4, {"web", "--model", "m:2", "--surge=1"}, "novactl: unknown flag --surge=1"},
		{"update", 5, {"web", "--model", "m:2", "--canary", "150"},
		 "novactl: --canary must be a percentage from 1 to 99, not \"150\""},
		{"update", 6, {"web", "--model", "m:2", "--max-surge=0", "--max-unavailable", "0"},
		 "novactl: --max-surge and --max-unavailable are both 0: no replica could be replaced "
		 "(--max-surge 1 starts each new replica before an old one stops)"},
		{"update", 5, {"web", "--model", "m:2", "--canary=5", "--canary=6"},
		 "novactl: --canary given more than once"},
		{"update", 4, {"web", "--model", "m:2", "extra"}, "novactl: unexpected argument extra"},
		{"promote", 0, {NULL}, "novactl: NAME or ID is required"},
		{"promote", 2, {"web", "--canary=5"}, "novactl: unknown flag --canary=5"},
		{"rollback", 0, {NULL}, "novactl: NAME or ID is required"},
		{"rollback", 2, {"web", "other"}, "novactl: unexpected argument other"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *err;
		int rc = run_deployment(NULL, &err, cases[i].verb, cases[i].argc, (char **)cases[i].argv);
		char usage[64];
		snprintf(usage, sizeof(usage), "\nusage: novactl deployment %s NAME|ID", cases[i].verb);
		if (rc != CLI_EXIT_USAGE || !strstr(err, cases[i].want) || !strstr(err, usage) ||
		    strstr(err, "cannot reach"))
			fail_msg("case %zu (%s): exit %d, stderr: %s", i, cases[i].want, rc, err);
		free(err);
	}
}

static void test_update_with_good_flags_goes_to_the_server(void **state)
{
	char *argv[] = {"web", "--model", "m:2", "--canary", "10"};
	char *err;
	(void)state;
	/* Past the checks: the request is made (and finds no server). */
	assert_int_equal(run_deployment(NULL, &err, "update", 5, argv), 6);
	assert_non_null(strstr(err, "cannot reach novad at http://127.0.0.1:1"));
	free(err);
}

static void test_help_names_the_rollout_verbs_and_flags(void **state)
{
	char *out, *err;
	char *help[] = {"--help"};
	(void)state;
	assert_int_equal(run_deployment(&out, &err, "--help", 0, help), 0);
	assert_non_null(strstr(out, "|update|promote|rollback|"));
	assert_non_null(strstr(out, "\n  novactl deployment update NAME|ID --model NAME:VERSION"));
	assert_non_null(strstr(out, "\n  novactl deployment promote NAME|ID\n"));
	assert_non_null(strstr(out, "\n  novactl deployment rollback NAME|ID\n"));
	assert_non_null(strstr(out, "--canary PCT"));
	free(out);
	free(err);
	char *verb_help[] = {"web", "-h"};
	assert_int_equal(run_deployment(&out, &err, "update", 2, verb_help), 0);
	assert_non_null(strstr(out, "usage: novactl deployment update NAME|ID --model NAME:VERSION "
				    "[--max-surge N] [--max-unavailable N] [--canary PCT]"));
	free(out);
	free(err);
}

/* cli_rollout_print of a rollout given as JSON text. */
static char *block_of(const char *label, int width, const char *rollout)
{
	char *buf = NULL;
	size_t len = 0;
	json_t *r = json_loads(rollout, JSON_DECODE_ANY, NULL);
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(r);
	cli_rollout_print(f, label, width, r);
	fclose(f);
	json_decref(r);
	return buf;
}

#define ROLLING                                                                               \
	"{\"id\": 1, \"state\": \"rolling\", \"from_version\": \"1\", \"to_version\": \"2\", "   \
	"\"target_version\": \"2\", \"max_surge\": 1, \"max_unavailable\": 0, "                 \
	"\"canary_percent\": null, \"drain_timeout_s\": 30, \"auto_rollback\": {\"enabled\": "  \
	"true, \"max_error_rate_increase\": 0.05, \"max_ttft_ratio\": 2.0, \"min_requests\": "  \
	"20}, \"progress\": {\"target\": {\"version\": \"2\", \"total\": 3, \"ready\": 2, \"wanted\": 4}, "     \
	"\"previous\": {\"version\": \"1\", \"total\": 4, \"ready\": 3, \"draining\": 1}}, "   \
	"\"waiting_for\": \"replica 2 of version 1 to drain\", \"reason\": \"\", "              \
	"\"started_at\": \"2027-01-05T10:00:00Z\", \"updated_at\": \"2027-01-05T10:01:00Z\", "  \
	"\"finished_at\": null}"

static void test_rollout_block_shows_versions_progress_and_what_it_waits_for(void **state)
{
	(void)state;
	char *s = block_of("rollout:", 11, ROLLING);
	assert_string_equal(s, "rollout:   1 -> 2 rolling (max surge 1, max unavailable 0)\n"
			       "  progress: version 2 ready 2/4; version 1 4 (1 draining)\n"
			       "  auto rollback: on (error rate +0.05, TTFT p95 x2, judged after 20 "
			       "requests)\n"
			       "  waiting for: replica 2 of version 1 to drain\n");
	free(s);
}

static void test_rollout_block_of_a_canary_shows_its_share(void **state)
{
	(void)state;
	char *s = block_of("Rollout:", 14,
			   "{\"state\": \"canary\", \"from_version\": \"7\", \"to_version\": \"8\", "
			   "\"max_surge\": 2, \"max_unavailable\": 1, \"canary_percent\": 10, "
			   "\"auto_rollback\": {\"enabled\": false, \"max_error_rate_increase\": 0.05, "
			   "\"max_ttft_ratio\": 2, \"min_requests\": 20}, \"progress\": {\"target\": "
			   "{\"version\": \"8\", \"total\": 1, \"ready\": 1}, \"previous\": "
			   "{\"version\": \"7\", \"total\": 10, \"ready\": 10, \"draining\": 0}}, "
			   "\"waiting_for\": \"promote or rollback\", \"reason\": null, "
			   "\"finished_at\": null}");
	assert_string_equal(s, "Rollout:      7 -> 8 canary 10% (max surge 2, max unavailable 1)\n"
			       "  progress: version 8 ready 1/1; version 7 10\n"
			       "  auto rollback: off\n"
			       "  waiting for: promote or rollback\n");
	free(s);
}

static void test_rollout_block_of_a_finished_rollout_says_why_and_when(void **state)
{
	(void)state;
	/* After a promote the share is history: not shown. */
	char *s = block_of("rollout:", 11,
			   "{\"state\": \"rolled_back\", \"from_version\": \"1\", \"to_version\": "
			   "\"2\", \"max_surge\": 1, \"max_unavailable\": 0, \"canary_percent\": 20, "
			   "\"progress\": {\"target\": {\"version\": \"1\", \"total\": 2, \"ready\": "
			   "2}, \"previous\": {\"version\": \"2\", \"total\": 0, \"ready\": 0, "
			   "\"draining\": 0}}, \"waiting_for\": \"\", \"reason\": \"error rate 0.31 "
			   "against 0.01\", \"finished_at\": \"2027-01-05T10:09:00Z\"}");
	assert_string_equal(s, "rollout:   1 -> 2 rolled_back (max surge 1, max unavailable 0)\n"
			       "  progress: version 1 ready 2/2; version 2 0\n"
			       "  reason: error rate 0.31 against 0.01\n"
			       "  finished: 2027-01-05T10:09:00Z\n");
	free(s);
}

static void test_rollout_block_is_nothing_without_a_rollout(void **state)
{
	(void)state;
	char *s = block_of("rollout:", 11, "null");
	assert_string_equal(s, "");
	free(s);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cli_rollout_print(f, "rollout:", 11, NULL);
	fclose(f);
	assert_string_equal(buf, "");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_update_without_rollout_flags_sends_the_model_alone),
		cmocka_unit_test(test_update_sends_only_the_rollout_flags_given),
		cmocka_unit_test(test_update_every_rollout_flag_becomes_its_member),
		cmocka_unit_test(test_update_refuses_what_is_plainly_wrong_naming_the_flag),
		cmocka_unit_test(test_update_usage_errors_exit_2_before_any_request),
		cmocka_unit_test(test_update_with_good_flags_goes_to_the_server),
		cmocka_unit_test(test_help_names_the_rollout_verbs_and_flags),
		cmocka_unit_test(test_rollout_block_shows_versions_progress_and_what_it_waits_for),
		cmocka_unit_test(test_rollout_block_of_a_canary_shows_its_share),
		cmocka_unit_test(test_rollout_block_of_a_finished_rollout_says_why_and_when),
		cmocka_unit_test(test_rollout_block_is_nothing_without_a_rollout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
