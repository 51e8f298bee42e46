/* Unit tests for common/ (cmocka). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>

#include "common.h"

static void test_parse_size(void **state)
{
	static const struct {
		const char *s;
		int ret;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "4096", 0, 4096 },
		{ "64k", 0, 65536 },
		{ "64K", 0, 65536 },
		{ "256m", 0, 256ull << 20 },
		{ "4G", 0, 4ull << 30 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "17179869184G", -ERANGE, 0 },	/* 2^34 GiB = 2^64 */
		{ "17179869183G", 0, 17179869183ull << 30 },
		{ "", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "+1", -EINVAL, 0 },
		{ " 1", -EINVAL, 0 },
		{ "k", -EINVAL, 0 },
		{ "1kb", -EINVAL, 0 },
		{ "1t", -EINVAL, 0 },
		{ "1.5m", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t v = 12345;
		int ret = strata_parse_size(cases[i].s, &v);

		if (ret != cases[i].ret)
			fail_msg("\"%s\": %d, want %d", cases[i].s, ret, cases[i].ret);
		assert_int_equal(v, cases[i].ret == 0 ? cases[i].v : 12345);
	}
	assert_int_equal(strata_parse_size(NULL, NULL), -EINVAL);
}

static void test_bytes_cmp(void **state)
{
	(void)state;
	assert_int_equal(strata_bytes_cmp("", 0, "", 0), 0);
	assert_true(strata_bytes_cmp("", 0, "a", 1) < 0);
	assert_true(strata_bytes_cmp("ab", 2, "a", 1) > 0);
	assert_true(strata_bytes_cmp("ab", 2, "b", 1) < 0);
	assert_int_equal(strata_bytes_cmp("a\0b", 3, "a\0b", 3), 0);
	assert_true(strata_bytes_cmp("a\0", 2, "a\1", 2) < 0);
	assert_true(strata_has_prefix("abc", 3, "ab", 2));
	assert_true(strata_has_prefix("abc", 3, NULL, 0));
	assert_true(strata_has_prefix(NULL, 0, "", 0));
	assert_false(strata_has_prefix("ab", 2, "abc", 3));
	assert_false(strata_has_prefix("abc", 3, "b", 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_bytes_cmp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
