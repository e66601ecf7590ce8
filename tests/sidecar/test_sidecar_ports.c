/* Engine ports (sidecar/sidecar_int.h): the range lies outside the
 * kernel's ephemeral range, a pick never repeats a port it was told is
 * taken and skips one another process holds, and "listened" tells a live
 * listener from a port held only by TIME_WAIT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "sidecar/sidecar_int.h"

static void test_default_range_is_below_linux_default_ephemeral_range(void **state)
{
	unsigned lo, hi;
	(void)state;
	assert_true(sidecar_ports_default(&lo, &hi, "32768\t60999\n"));
	assert_int_equal(lo, 20000);
	assert_int_equal(hi, 32767);
	/* Unreadable: Linux's default is assumed. */
	assert_true(sidecar_ports_default(&lo, &hi, NULL));
	assert_int_equal(lo, 20000);
	assert_int_equal(hi, 32767);
}

static void test_default_range_for_odd_ephemeral_ranges(void **state)
{
	unsigned lo, hi;
	(void)state;
	/* Unparsable or inverted: as if Linux's default. */
	assert_true(sidecar_ports_default(&lo, &hi, "garbage"));
	assert_int_equal(lo, 20000);
	assert_int_equal(hi, 32767);
	assert_true(sidecar_ports_default(&lo, &hi, "50000 40000"));
	assert_int_equal(lo, 20000);
	assert_int_equal(hi, 32767);
	/* Starting too close to 20000: above the range instead. */
	assert_true(sidecar_ports_default(&lo, &hi, "20500 60999"));
	assert_int_equal(lo, 61000);
	assert_int_equal(hi, 65535);
	/* Below 20000 and up to the top: from 1024 to its start. */
	assert_true(sidecar_ports_default(&lo, &hi, "10000 65535"));
	assert_int_equal(lo, 1024);
	assert_int_equal(hi, 9999);
	/* All of it ephemeral: the fallback, which says it overlaps. */
	assert_false(sidecar_ports_default(&lo, &hi, "1024 65535"));
	assert_int_equal(lo, 20000);
	assert_int_equal(hi, 32767);
}

static void test_default_range_of_this_host_misses_its_ephemeral_range(void **state)
{
	char text[64] = "";
	unsigned lo, hi, start = 0, end = 0;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	(void)state;
	if (!f)
		skip();
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	assert_int_equal(sscanf(text, "%u %u", &start, &end), 2);
	if (!sidecar_ports_default(&lo, &hi, text))
		skip(); /* a host whose whole port space is ephemeral */
	assert_true(hi < start || lo > end);
}

static void test_engine_ports_flag_parses_and_refuses_bad_ranges(void **state)
{
	static const char *const bad[] = {"", "21000", "21000-", "-21000", "100-2000",
					  "3000-2000", "2000-70000", "2000-3000x", "a-b"};
	struct nova_err err;
	unsigned lo = 0, hi = 0;
	(void)state;
	assert_int_equal(sidecar_ports_parse(&lo, &hi, "21000-21010", &err), 0);
	assert_int_equal(lo, 21000);
	assert_int_equal(hi, 21010);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sidecar_ports_parse(&lo, &hi, bad[i], &err), NOVA_EINVAL);
		assert_string_equal(err.field, "--engine-ports");
	}
}

/* A listener on 127.0.0.1:port, or -1 when the port is busy. */
static int listen_on(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 8) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The first of three consecutive free ports in the default range. */
static unsigned three_free_ports(void)
{
	unsigned lo, hi;
	sidecar_ports_default(&lo, &hi, NULL);
	for (unsigned p = lo + 1000; p + 2 <= hi; p += 3)
		if (sidecar_port_free(p) && sidecar_port_free(p + 1) && sidecar_port_free(p + 2))
			return p;
	return 0;
}

static void test_pick_skips_ports_given_out_and_ports_held_by_others(void **state)
{
	unsigned base = three_free_ports(), taken[2];
	int fd;
	(void)state;
	assert_true(base > 0);
	/* base: held by another listener (loopback only; the test binds the
	 * wildcard); base + 1: given to a child of ours. */
	fd = listen_on(base);
	assert_true(fd >= 0);
	assert_false(sidecar_port_free(base));
	taken[0] = base + 1;
	for (uint32_t rnd = 0; rnd < 6; rnd++)
		assert_int_equal(sidecar_port_pick(base, base + 2, taken, 1, rnd), base + 2);
	/* Nothing left: 0, not a port someone holds. */
	taken[1] = base + 2;
	assert_int_equal(sidecar_port_pick(base, base + 2, taken, 2, 7), 0);
	close(fd);
}

static void test_picks_given_out_in_turn_never_repeat_and_stay_outside(void **state)
{
	unsigned lo, hi, taken[64];
	(void)state;
	sidecar_ports_default(&lo, &hi, NULL);
	/* The same random start every time: the worst case for repeats. */
	for (size_t n = 0; n < 64; n++) {
		unsigned p = sidecar_port_pick(lo, hi, taken, n, 12345);
		assert_true(p >= lo && p <= hi);
		for (size_t j = 0; j < n; j++)
			assert_int_not_equal(p, taken[j]);
		taken[n] = p;
	}
}

static void test_listened_tells_a_listener_from_time_wait(void **state)
{
	unsigned port = three_free_ports();
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int l, c, s;
	(void)state;
	assert_true(port > 0);
	assert_false(sidecar_port_listened(port));
	l = listen_on(port);
	assert_true(l >= 0);
	a.sin_port = htons((uint16_t)port);
	c = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	s = accept(l, NULL, NULL);
	assert_true(s >= 0);
	assert_true(sidecar_port_listened(port));
	/* The server closes first: its end, on port, goes to TIME_WAIT. */
	close(s);
	usleep(50 * 1000);
	close(c);
	close(l);
	usleep(50 * 1000);
	assert_false(sidecar_port_free(port));
	assert_false(sidecar_port_listened(port));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_range_is_below_linux_default_ephemeral_range),
		cmocka_unit_test(test_default_range_for_odd_ephemeral_ranges),
		cmocka_unit_test(test_default_range_of_this_host_misses_its_ephemeral_range),
		cmocka_unit_test(test_engine_ports_flag_parses_and_refuses_bad_ranges),
		cmocka_unit_test(test_pick_skips_ports_given_out_and_ports_held_by_others),
		cmocka_unit_test(test_picks_given_out_in_turn_never_repeat_and_stay_outside),
		cmocka_unit_test(test_listened_tells_a_listener_from_time_wait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
