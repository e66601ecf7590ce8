/* nova-router's token scanner (router.h: struct router_usage): the usage
 * object of a non-streamed answer, a stream's final usage chunk, else its
 * choice events counted, whatever way the bytes are cut into reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "router/router.h"

#define ANSWER                                                                                \
	"{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"  \
	"{\"role\":\"assistant\",\"content\":\"say \\\"prompt_tokens\\\": 99\"}}],"            \
	"\"usage\": {\"prompt_tokens\" : 12,\n \"completion_tokens\":345,"                    \
	"\"total_tokens\":357,\"prompt_tokens_details\":{\"cached_tokens\":7}}}"

#define CHUNK(t)                                                                              \
	"data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"     \
	"{\"content\":\"" t "\"},\"finish_reason\":null}]}\n\n"

#define STREAM CHUNK("a") CHUNK(" b") CHUNK(" \\\"completion_tokens\\\":1") "data: [DONE]\n\n"

#define STREAM_USAGE                                                                          \
	CHUNK("a") CHUNK(" b")                                                                \
	"data: {\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"               \
	"{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\ndata: [DONE]\n\n"

static void scan(long long *p, long long *c, const char *text, size_t cut, bool stream)
{
	struct router_usage u;
	size_t len = strlen(text);
	router_usage_init(&u);
	if (cut == 0) { /* byte by byte */
		for (size_t i = 0; i < len; i++)
			router_usage_feed(&u, text + i, 1);
	} else {
		router_usage_feed(&u, text, cut);
		router_usage_feed(&u, text + cut, len - cut);
	}
	router_usage_tokens(p, c, &u, stream);
}

static void test_a_non_streamed_answer_gives_its_usage_however_it_is_cut(void **state)
{
	long long p, c;
	(void)state;
	for (size_t cut = 0; cut < strlen(ANSWER); cut++) {
		scan(&p, &c, ANSWER, cut, false);
		if (p != 12 || c != 345)
			fail_msg("cut at %zu: %lld prompt, %lld completion", cut, p, c);
	}
}

static void test_a_stream_without_usage_counts_its_choice_events(void **state)
{
	long long p, c;
	(void)state;
	for (size_t cut = 0; cut < strlen(STREAM); cut++) {
		scan(&p, &c, STREAM, cut, true);
		if (p != 0 || c != 3)
			fail_msg("cut at %zu: %lld prompt, %lld completion", cut, p, c);
	}
	/* The last event counted without its blank line (the stream cut). */
	scan(&p, &c, CHUNK("a") "data: {\"choices\":[{\"text\":\"b\"}]}", 1, true);
	assert_int_equal(c, 2);
	/* A non-streamed answer without usage counts nothing. */
	scan(&p, &c, "{\"choices\":[{\"text\":\"b\"}]}", 3, false);
	assert_int_equal(p, 0);
	assert_int_equal(c, 0);
}

static void test_a_stream_with_a_usage_chunk_gives_that_usage(void **state)
{
	long long p, c;
	(void)state;
	for (size_t cut = 0; cut < strlen(STREAM_USAGE); cut++) {
		scan(&p, &c, STREAM_USAGE, cut, true);
		if (p != 5 || c != 2)
			fail_msg("cut at %zu: %lld prompt, %lld completion", cut, p, c);
	}
	/* An answer that ends on the number. */
	scan(&p, &c, "{\"usage\":{\"completion_tokens\":42", 5, false);
	assert_int_equal(c, 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_non_streamed_answer_gives_its_usage_however_it_is_cut),
		cmocka_unit_test(test_a_stream_without_usage_counts_its_choice_events),
		cmocka_unit_test(test_a_stream_with_a_usage_chunk_gives_that_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
