/* core/prompt: the canonical text of chat and completion requests, and
 * chain hashes of its blocks (a block's name depends on all before it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "core/prompt.h"

static char *text_of(const char *json, bool chat, size_t max, size_t *len)
{
	json_t *body = json_loads(json, 0, NULL);
	char *out = NULL;
	assert_non_null(body);
	bool ok = prompt_text(body, chat, max, &out, len);
	json_decref(body);
	return ok ? out : NULL;
}

static void test_chat_text_is_roles_and_contents_in_order(void **state)
{
	size_t len;
	(void)state;
	char *t = text_of("{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
			  "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
			  "{\"type\":\"image_url\",\"image_url\":{\"url\":\"http://x/i.png\"}}]}],"
			  "\"temperature\":0.5}", true, 1000, &len);
	assert_non_null(t);
	assert_int_equal(len, strlen("system\x1f" "be brief\x1euser\x1flookhttp://x/i.png\x1e"));
	assert_memory_equal(t, "system\x1f" "be brief\x1euser\x1flookhttp://x/i.png\x1e", len);
	free(t);
	/* Cut at max. */
	t = text_of("{\"messages\":[{\"role\":\"user\",\"content\":\"abcdefgh\"}]}", true, 6, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(t, "user\x1f" "a", 6);
	free(t);
	assert_null(text_of("{\"prompt\":\"x\"}", true, 100, &len));
}

static void test_completion_text_is_the_prompt(void **state)
{
	size_t len;
	(void)state;
	char *t = text_of("{\"prompt\":\"once upon\"}", false, 100, &len);
	assert_int_equal(len, 9);
	assert_memory_equal(t, "once upon", 9);
	free(t);
	t = text_of("{\"prompt\":[\"first\",\"second\"]}", false, 100, &len);
	assert_int_equal(len, 5);
	free(t);
	assert_null(text_of("{\"prompt\":3}", false, 100, &len));
	assert_null(text_of("{\"messages\":[]}", false, 100, &len));
}

static void test_block_hashes_chain(void **state)
{
	uint64_t a[8], b[8], c[8];
	(void)state;
	/* Whole blocks only. */
	assert_int_equal(prompt_block_hashes("aaaabbbbcc", 10, 4, a, 8), 2);
	assert_int_equal(prompt_block_hashes("aaaabbbbdd", 10, 4, b, 8), 2);
	assert_true(a[0] == b[0] && a[1] == b[1]);
	/* The same second block after another first: a different name. */
	assert_int_equal(prompt_block_hashes("xxxxbbbb", 8, 4, c, 8), 2);
	assert_true(c[0] != a[0] && c[1] != a[1]);
	/* Equal blocks in a row still get different names. */
	assert_int_equal(prompt_block_hashes("aaaaaaaa", 8, 4, c, 8), 2);
	assert_true(c[0] == a[0] && c[1] != c[0]);
	/* At most max; zero block size: none. */
	assert_int_equal(prompt_block_hashes("aaaabbbbcccc", 12, 4, c, 1), 1);
	assert_int_equal(prompt_block_hashes("aaaa", 4, 0, c, 8), 0);
	assert_int_equal(prompt_block_hashes("", 0, 4, c, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chat_text_is_roles_and_contents_in_order),
		cmocka_unit_test(test_completion_text_is_the_prompt),
		cmocka_unit_test(test_block_hashes_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
