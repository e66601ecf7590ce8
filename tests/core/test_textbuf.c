/* core/textbuf: pieces appended in order, always NUL-terminated, printf
 * pieces of any length, and a finished buffer empty again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/textbuf.h"

static void test_pieces_are_appended_in_order(void **state)
{
	struct textbuf t = {0};
	(void)state;
	textbuf_add(&t, "{abc", 2);
	textbuf_adds(&t, "x");
	textbuf_addf(&t, ",%d,%s", 42, "y");
	assert_false(t.failed);
	assert_string_equal(t.p, "{ax,42,y");
	assert_int_equal(t.len, 8);
	textbuf_finish(&t);
	assert_null(t.p);
	assert_int_equal(t.len, 0);
	textbuf_finish(&t); /* twice is harmless */
}

static void test_long_printf_pieces_and_growth(void **state)
{
	struct textbuf t = {0};
	char *big = malloc(10001);
	(void)state;
	memset(big, 'z', 10000);
	big[10000] = '\0';
	textbuf_adds(&t, "<");
	textbuf_addf(&t, "%s|%s", big, big);
	textbuf_adds(&t, ">");
	assert_false(t.failed);
	assert_int_equal(t.len, 20003);
	assert_int_equal(strlen(t.p), 20003);
	assert_int_equal(t.p[0], '<');
	assert_int_equal(t.p[10001], '|');
	assert_int_equal(t.p[20002], '>');
	assert_true(t.cap > t.len);
	free(big);
	textbuf_finish(&t);
}

static void test_an_empty_addition_still_gives_a_string(void **state)
{
	struct textbuf t = {0};
	(void)state;
	textbuf_add(&t, "", 0);
	assert_non_null(t.p);
	assert_string_equal(t.p, "");
	textbuf_finish(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pieces_are_appended_in_order),
		cmocka_unit_test(test_long_printf_pieces_and_growth),
		cmocka_unit_test(test_an_empty_addition_still_gives_a_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
