/* core/metrics: label escaping (cut on character boundaries) and
 * histograms as the exposition format has them (cumulative, +Inf last). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/metrics.h"

static void test_label_escape(void **state)
{
	char out[16];
	(void)state;
	metrics_label_escape(out, sizeof(out), "a\"b\\c\nd");
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	metrics_label_escape(out, sizeof(out), NULL);
	assert_string_equal(out, "");
	/* Cut to fit, never inside an escape ... */
	metrics_label_escape(out, 4, "ab\"c");
	assert_string_equal(out, "ab");
	/* ... nor inside a UTF-8 character (é is two bytes). */
	metrics_label_escape(out, 4, "ab\xc3\xa9");
	assert_string_equal(out, "ab");
	metrics_label_escape(out, 5, "ab\xc3\xa9");
	assert_string_equal(out, "ab\xc3\xa9");
	/* A sequence the text cuts short ends the value. */
	metrics_label_escape(out, sizeof(out), "a\xe2\x82");
	assert_string_equal(out, "a");
}

static void test_histogram_exposition(void **state)
{
	struct metrics_hist h;
	struct textbuf t = {0};
	(void)state;
	memset(&h, 0, sizeof(h));
	metrics_hist_observe(&h, 0.0002); /* le 0.0005 */
	metrics_hist_observe(&h, 0.003);  /* le 0.005 */
	metrics_hist_observe(&h, 60);     /* +Inf only */
	assert_int_equal(metrics_hist_total(&h), 3);
	metrics_hist_write(&t, "x_seconds", "route=\"/a\"", &h);
	assert_false(t.failed);
	assert_non_null(strstr(t.p, "x_seconds_bucket{route=\"/a\",le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(t.p, "x_seconds_bucket{route=\"/a\",le=\"0.0025\"} 1\n"));
	assert_non_null(strstr(t.p, "x_seconds_bucket{route=\"/a\",le=\"0.005\"} 2\n"));
	assert_non_null(strstr(t.p, "x_seconds_bucket{route=\"/a\",le=\"10\"} 2\n"));
	assert_non_null(strstr(t.p, "x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(t.p, "x_seconds_sum{route=\"/a\"} 60.0032"));
	assert_non_null(strstr(t.p, "x_seconds_count{route=\"/a\"} 3\n"));
	textbuf_finish(&t);
	metrics_hist_write(&t, "y", NULL, &h);
	assert_non_null(strstr(t.p, "y_bucket{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(t.p, "\ny_count 3\n"));
	textbuf_finish(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escape),
		cmocka_unit_test(test_histogram_exposition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
