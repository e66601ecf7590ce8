/* core/text: excerpts of outside text are bounded, one line, valid UTF-8
 * without controls, and cut at a character boundary with a mark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/text.h"

/* Strict UTF-8 check, independent of the code under test. */
static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		int n = (*p >= 0xc2 && *p <= 0xdf) ? 1 : (*p >= 0xe0 && *p <= 0xef) ? 2
			: (*p >= 0xf0 && *p <= 0xf4) ? 3 : -1;
		if (n < 0)
			return false;
		for (int i = 1; i <= n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n + 1;
	}
	return true;
}

static bool no_controls(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static void test_short_plain_text_is_kept_as_is(void **state)
{
	char out[TEXT_EXCERPT_MAX + 1];
	(void)state;
	assert_int_equal(text_excerpt(out, sizeof(out), "engine exited: CUDA OOM", 23, true), 23);
	assert_string_equal(out, "engine exited: CUDA OOM");
	assert_int_equal(text_excerpt(out, sizeof(out), NULL, 5, false), 0);
	assert_string_equal(out, "");
}

static void test_lines_become_one_line_without_controls(void **state)
{
	char out[TEXT_EXCERPT_MAX + 1];
	const char in[] = "  line one\r\n\tline two\n\x1b[31mred\x1b[0m\a\x7f end \n\n";
	(void)state;
	text_excerpt(out, sizeof(out), in, sizeof(in) - 1, false);
	assert_string_equal(out, "line one line two ?[31mred?[0m?? end");
	assert_true(no_controls(out));
}

static void test_invalid_utf8_and_unicode_controls_are_replaced(void **state)
{
	char out[TEXT_EXCERPT_MAX + 1];
	/* é kept; a stray continuation, an overlong '/', a surrogate, a cut
	 * sequence, C1 NEL, RLO (bidi override) and LINE SEPARATOR replaced. */
	const char in[] = "caf\xc3\xa9 \x80 \xc0\xaf \xed\xa0\x80 \xc2\x85 \xe2\x80\xae \xe2\x80\xa8 \xe2\x82";
	(void)state;
	text_excerpt(out, sizeof(out), in, sizeof(in) - 1, false);
	assert_string_equal(out, "caf\xc3\xa9 ? ?? ??? ? ? ? ??");
	assert_true(valid_utf8(out));
}

static void test_long_text_keeps_its_end_in_tail_mode(void **state)
{
	char out[TEXT_EXCERPT_MAX + 1], *in = malloc(100000);
	(void)state;
	memset(in, 'a', 100000);
	memcpy(in + 100000 - 9, "THE END\n\n", 9);
	size_t n = text_excerpt(out, sizeof(out), in, 100000, true);
	assert_int_equal(n, TEXT_EXCERPT_MAX);
	assert_int_equal(strlen(out), TEXT_EXCERPT_MAX);
	assert_memory_equal(out, "...aaa", 6);
	assert_string_equal(out + n - 7, "THE END");
	free(in);
}

static void test_long_text_keeps_its_start_in_head_mode(void **state)
{
	char out[TEXT_EXCERPT_MAX + 1], *in = malloc(5000);
	(void)state;
	memset(in, 'b', 5000);
	memcpy(in, "START ", 6);
	size_t n = text_excerpt(out, sizeof(out), in, 5000, false);
	assert_int_equal(n, TEXT_EXCERPT_MAX);
	assert_memory_equal(out, "START bbb", 9);
	assert_string_equal(out + n - 3, "...");
	free(in);
}

static void test_a_cut_never_splits_a_character(void **state)
{
	/* 2-, 3- and 4-byte characters in every alignment against the cut. */
	static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	char in[2000], out[TEXT_EXCERPT_MAX + 1];
	(void)state;
	for (int c = 0; c < 3; c++)
		for (int shift = 0; shift < 4; shift++)
			for (int tail = 0; tail < 2; tail++) {
				size_t n = 0, l = strlen(chars[c]);
				for (int i = 0; i < shift; i++)
					in[n++] = 'x';
				while (n + l < sizeof(in)) {
					memcpy(in + n, chars[c], l);
					n += l;
				}
				size_t got = text_excerpt(out, sizeof(out), in, n, tail);
				assert_true(got <= TEXT_EXCERPT_MAX);
				assert_int_equal(strlen(out), got);
				assert_true(valid_utf8(out));
				assert_null(strchr(out, '?'));
			}
}

static void test_a_small_buffer_bounds_the_excerpt(void **state)
{
	char out[16];
	(void)state;
	size_t n = text_excerpt(out, sizeof(out), "0123456789abcdefghij", 20, false);
	assert_int_equal(n, 15);
	assert_string_equal(out, "0123456789ab...");
	n = text_excerpt(out, 3, "0123456789", 10, true);
	assert_int_equal(n, 2);
	assert_string_equal(out, "89");
}

static void test_text_that_is_only_whitespace_is_empty(void **state)
{
	char out[TEXT_EXCERPT_MAX + 1], in[3000];
	(void)state;
	memset(in, '\n', sizeof(in));
	assert_int_equal(text_excerpt(out, sizeof(out), in, sizeof(in), true), 0);
	assert_string_equal(out, "");
	/* Whitespace beyond the window is no reason for a cut mark. */
	memcpy(in, "short", 5);
	text_excerpt(out, sizeof(out), in, sizeof(in), false);
	assert_string_equal(out, "short");
}

static void test_random_bytes_always_give_a_clean_excerpt(void **state)
{
	char in[1500], out[TEXT_EXCERPT_MAX + 1];
	unsigned seed = 12345;
	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(in));
		for (size_t i = 0; i < n; i++)
			in[i] = (char)(rand_r(&seed) & 0xff);
		size_t got = text_excerpt(out, sizeof(out), in, n, round & 1);
		assert_true(got <= TEXT_EXCERPT_MAX);
		assert_int_equal(strlen(out), got);
		assert_true(valid_utf8(out));
		assert_true(no_controls(out));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_plain_text_is_kept_as_is),
		cmocka_unit_test(test_lines_become_one_line_without_controls),
		cmocka_unit_test(test_invalid_utf8_and_unicode_controls_are_replaced),
		cmocka_unit_test(test_long_text_keeps_its_end_in_tail_mode),
		cmocka_unit_test(test_long_text_keeps_its_start_in_head_mode),
		cmocka_unit_test(test_a_cut_never_splits_a_character),
		cmocka_unit_test(test_a_small_buffer_bounds_the_excerpt),
		cmocka_unit_test(test_text_that_is_only_whitespace_is_empty),
		cmocka_unit_test(test_random_bytes_always_give_a_clean_excerpt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
