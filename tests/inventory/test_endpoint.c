/* The endpoints nodes report (inventory/inventory_int.h): http or https,
 * host, port, nothing else, and the host the node's own address as its
 * provider recorded it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "inventory/inventory_int.h"

static const char *refusal(const char *node_addr, const char *endpoint)
{
	struct inv_addr a;
	inv_addr_from_provider(&a, node_addr);
	return inv_endpoint_refusal(endpoint, &a);
}

static void test_the_node_own_address_with_a_port_is_taken(void **state)
{
	(void)state;
	assert_null(refusal("127.0.0.1", "http://127.0.0.1:20001"));
	assert_null(refusal("127.0.0.1", "https://127.0.0.1:20001/"));
	assert_null(refusal("127.0.0.1", "http://localhost:8000"));
	assert_null(refusal("127.0.0.1", "http://[::1]:8000"));
	assert_null(refusal("10.0.0.7", "http://10.0.0.7:20001"));
	assert_null(refusal("10.0.0.7:22", "http://10.0.0.7:20001")); /* a host:port record */
	assert_null(refusal("GPU1.Example.net", "http://gpu1.example.NET:9000"));
	assert_null(refusal("fd00::5", "http://[fd00::5]:9000"));
	assert_null(refusal("http://10.0.0.7:1", "http://10.0.0.7:2"));
}

static void test_other_schemes_and_shapes_are_refused(void **state)
{
	(void)state;
	const char *bad[] = {
		"file:///etc/shadow",
		"javascript:alert(1)",
		"ftp://127.0.0.1:21",
		"HTTP://127.0.0.1:80",
		"http://127.0.0.1",               /* no port */
		"http://127.0.0.1:",              /* empty port */
		"http://127.0.0.1:0",
		"http://127.0.0.1:65536",
		"http://127.0.0.1:80x",
		"http://127.0.0.1:8000/v1",       /* a path */
		"http://127.0.0.1:8000/../x",
		"http://127.0.0.1:8000?x=1",
		"http://127.0.0.1:8000#x",
		"http://127.0.0.1:8000\r\nX-Evil: 1",
		"http://127.0.0.1:8000 ",
		"http://user:pass@127.0.0.1:8000", /* user information */
		"http://127.0.0.1:8000@evil.example:80",
		"http://127.0.0.1%2f@evil:80",
		"http://127.1:8000",              /* not a dotted quad */
		"http://2130706433:8000",
		"http://0x7f.0.0.1:8000",
		"http://[::1:8000",
		"http://:8000",
		"http://-x:8000",
		"http:\\\\127.0.0.1:8000",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!refusal("127.0.0.1", bad[i]))
			fail_msg("taken: %s", bad[i]);
}

static void test_another_host_is_refused(void **state)
{
	(void)state;
	assert_non_null(refusal("127.0.0.1", "http://10.0.0.7:8000"));
	assert_non_null(refusal("127.0.0.1", "http://evil.example:80"));
	assert_non_null(refusal("10.0.0.7", "http://10.0.0.8:8000"));
	assert_non_null(refusal("10.0.0.7", "http://127.0.0.1:8000"));
	assert_non_null(refusal("gpu1.example", "http://gpu2.example:8000"));
	assert_non_null(refusal("gpu1.example", "http://10.0.0.7:8000"));
	/* No address recorded (or an unreadable one): nothing is taken. */
	assert_non_null(refusal("", "http://127.0.0.1:8000"));
	assert_non_null(refusal("fake://fake-1", "http://127.0.0.1:8000"));
	/* The reason never quotes what was sent. */
	const char *why = refusal("127.0.0.1", "http://secret:pw@127.0.0.1:1");
	assert_non_null(why);
	assert_null(strstr(why, "secret"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_node_own_address_with_a_port_is_taken),
		cmocka_unit_test(test_other_schemes_and_shapes_are_refused),
		cmocka_unit_test(test_another_host_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
