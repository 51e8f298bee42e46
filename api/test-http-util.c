/* Unit tests for the HTTP helpers: dates, URL decoding, tokens, the
 * configuration keys and their bounds (cmocka). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "internal.h"

static void test_date_format(void **state)
{
	char d[HTTP_DATE_LEN + 1];

	/* RFC 7231 7.1.1.1's own example. */
	assert_int_equal(http_date_format(784111777, d), 0);
	assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
	assert_int_equal(strlen(d), HTTP_DATE_LEN);
	assert_int_equal(http_date_format(0, d), 0);
	assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
	/* Leap day, end of a year. */
	assert_int_equal(http_date_format(951782400, d), 0);
	assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 GMT");
	assert_int_equal(http_date_format(1704067199, d), 0);
	assert_string_equal(d, "Sun, 31 Dec 2023 23:59:59 GMT");
	assert_int_equal(http_date_format((time_t)253402300800LL, d), -EOVERFLOW);
}

static void decode_ok(const char *in, bool plus, const char *want)
{
	char out[256];
	size_t n = 12345;

	assert_int_equal(http_url_decode(in, strlen(in), out, &n, plus), 0);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
}

static void test_url_decode(void **state)
{
	char buf[64], out[8];
	size_t n;

	decode_ok("", false, "");
	decode_ok("abc", false, "abc");
	decode_ok("a%20b%2Fc%2fd", false, "a b/c/d");
	decode_ok("a+b", false, "a+b");
	decode_ok("a+b", true, "a b");
	decode_ok("%E2%82%AC", false, "\xe2\x82\xac");
	decode_ok("%25", false, "%");
	/* In place. */
	strcpy(buf, "x%41y");
	assert_int_equal(http_url_decode(buf, strlen(buf), buf, &n, false), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "xAy", 3);
	/* Bad escapes and NULs. */
	assert_int_equal(http_url_decode("%", 1, out, &n, false), -EINVAL);
	assert_int_equal(http_url_decode("%4", 2, out, &n, false), -EINVAL);
	assert_int_equal(http_url_decode("%4g", 3, out, &n, false), -EINVAL);
	assert_int_equal(http_url_decode("%00", 3, out, &n, false), -EINVAL);
	assert_int_equal(http_url_decode("a\0b", 3, out, &n, false), -EINVAL);
}

static void test_tokens(void **state)
{
	assert_true(http_is_token("Content-Type", 12));
	assert_true(http_is_token("x-amz-meta-a_b.c~!", 18));
	assert_false(http_is_token("", 0));
	assert_false(http_is_token("a b", 3));
	assert_false(http_is_token("a:b", 3));
	assert_false(http_is_token("a\0b", 3));
	assert_true(http_is_field_value("text/plain; charset=utf-8", 25));
	assert_false(http_is_field_value("a\r\nX-Evil: 1", 13));
	assert_false(http_is_field_value("a\nb", 3));
	assert_true(http_name_eq("CONTENT-length", 14, "content-length"));
	assert_false(http_name_eq("content-lengt", 13, "content-length"));
	assert_false(http_name_eq("content-lengthx", 15, "content-length"));
	assert_string_equal(http_reason(200), "OK");
	assert_string_equal(http_reason(431), "Request Header Fields Too Large");
	assert_string_equal(http_reason(299), "Unknown");
	assert_string_equal(http_reason(1000), "Unknown");
}

static void test_config(void **state)
{
	struct http_config cfg;

	http_config_init(&cfg);
	assert_int_equal(cfg.lim.max_body, 5ull << 30);
	assert_int_equal(cfg.lim.max_header_bytes, 32 * 1024);
	assert_int_equal(http_config_set(&cfg, "max_body", "1G"), 0);
	assert_int_equal(cfg.lim.max_body, 1ull << 30);
	assert_int_equal(http_config_set(&cfg, "max_body", "0"), 0);
	assert_int_equal(cfg.lim.max_body, 0);
	assert_int_equal(http_config_set(&cfg, "max_header_bytes", "64k"), 0);
	assert_int_equal(cfg.lim.max_header_bytes, 65536);
	assert_int_equal(http_config_set(&cfg, "read_buf", "1M"), 0);
	assert_int_equal(cfg.read_buf, 1u << 20);
	assert_int_equal(http_config_set(&cfg, "idle_timeout_ms", "250"), 0);
	assert_int_equal(cfg.idle_timeout_ms, 250);
	assert_int_equal(http_config_set(&cfg, "max_headers", "7"), 0);
	assert_int_equal(cfg.lim.max_headers, 7);
	/* Unknown keys, junk, out of range (each key has bounds). */
	assert_int_equal(http_config_set(&cfg, "max_bodies", "1"), -ENOENT);
	assert_int_equal(http_config_set(&cfg, "max_body", ""), -EINVAL);
	assert_int_equal(http_config_set(&cfg, "max_body", "-1"), -EINVAL);
	assert_int_equal(http_config_set(&cfg, "max_body", "1X"), -EINVAL);
	assert_int_equal(http_config_set(&cfg, "max_body", "99999999999999999999"), -EINVAL);
	assert_int_equal(http_config_set(&cfg, "max_url", "4G"), -EINVAL);
	assert_int_equal(http_config_set(&cfg, "read_buf", "100"), -EINVAL);
	assert_int_equal(http_config_set(&cfg, "idle_timeout_ms", "0"), -EINVAL);
	assert_int_equal(http_config_set(&cfg, "max_headers", "70000"), -EINVAL);
	/* A failed set leaves the value alone. */
	assert_int_equal(cfg.lim.max_headers, 7);
	assert_non_null(strstr(http_config_help, "max_body="));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_date_format),
		cmocka_unit_test(test_url_decode),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
