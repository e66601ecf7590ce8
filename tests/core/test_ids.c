/* Ids: the 16-byte form of a UUID and back, checked against libuuid on
 * random ids in both cases, and malformed ids refused without reading past
 * their end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uuid/uuid.h>

#include "core/ids.h"

static void test_parse_and_format_agree_with_libuuid(void **state)
{
	(void)state;
	for (int i = 0; i < 2000; i++) {
		uuid_t u, back;
		unsigned char mine[16];
		char lower[IDS_UUID_LEN], upper[IDS_UUID_LEN], formatted[IDS_UUID_LEN];
		if (i % 2)
			uuid_generate_random(u);
		else
			uuid_generate_time(u);
		uuid_unparse_lower(u, lower);
		uuid_unparse_upper(u, upper);
		assert_true(ids_uuid_parse(mine, lower));
		assert_memory_equal(mine, u, 16);
		assert_true(ids_uuid_parse(mine, upper));
		assert_memory_equal(mine, u, 16);
		ids_uuid_format(formatted, mine);
		assert_string_equal(formatted, lower);
		assert_int_equal(uuid_parse(formatted, back), 0);
		assert_memory_equal(back, u, 16);
	}
}

static void test_malformed_ids_are_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"0",
		"123e4567-e89b-42d3-a456-42661417400",   /* one short */
		"123e4567-e89b-42d3-a456-4266141740001", /* one long */
		"123e4567-e89b-42d3-a456_426614174000",  /* a dash replaced */
		"123e4567e-89b-42d3-a456-426614174000",  /* a dash moved */
		"123e4567-e89b-42d3-a456-42661417400g",  /* not hex */
		"123e4567-e89b-42d3-a456-42661417400 ",
		" 23e4567-e89b-42d3-a456-426614174000",
		"123e4567-e89b-42d3-a4\xc3\xa9-426614174000",
	};
	unsigned char out[16];
	(void)state;
	assert_false(ids_uuid_parse(out, NULL));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* A copy of the exact length, so reading past the end would show
		 * under AddressSanitizer. */
		size_t n = strlen(bad[i]) + 1;
		char *copy = malloc(n);
		memcpy(copy, bad[i], n);
		if (ids_uuid_parse(out, copy))
			fail_msg("accepted \"%s\"", bad[i]);
		free(copy);
	}
	assert_true(ids_uuid_parse(out, "123E4567-e89b-42D3-a456-426614174000"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_format_agree_with_libuuid),
		cmocka_unit_test(test_malformed_ids_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
