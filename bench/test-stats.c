/* Unit tests for bench/report.c: percentiles and the phase format. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static void test_percentiles_nearest_rank(void **state)
{
	struct bench_hist h = { 0 };

	/* 1..100 in reverse: nearest-rank p50 = 50, p99 = 99, p99.9 = 100. */
	for (uint64_t i = 100; i >= 1; i--)
		assert_int_equal(bench_hist_add(&h, i), 0);
	assert_int_equal(bench_hist_pct(&h, 50), 50);
	assert_int_equal(bench_hist_pct(&h, 90), 90);
	assert_int_equal(bench_hist_pct(&h, 99), 99);
	assert_int_equal(bench_hist_pct(&h, 99.9), 100);
	assert_int_equal(bench_hist_pct(&h, 100), 100);
	assert_int_equal(bench_hist_pct(&h, 0), 1);
	bench_hist_free(&h);
}

static void test_percentiles_small_and_empty(void **state)
{
	struct bench_hist h = { 0 };

	assert_int_equal(bench_hist_pct(&h, 50), 0);
	bench_hist_add(&h, 7);
	assert_int_equal(bench_hist_pct(&h, 0), 7);
	assert_int_equal(bench_hist_pct(&h, 99.9), 7);
	bench_hist_add(&h, 3);
	assert_int_equal(bench_hist_pct(&h, 50), 3);
	assert_int_equal(bench_hist_pct(&h, 51), 7);
	bench_hist_free(&h);
}

static void test_hist_json(void **state)
{
	struct bench_hist h = { 0 };
	json_t *o = json_object();

	for (uint64_t i = 1; i <= 1000; i++)
		bench_hist_add(&h, i * 1000);		/* 1..1000 us */
	bench_hist_to_json(&h, o);
	assert_true(json_real_value(json_object_get(o, "p50_us")) == 500.0);
	assert_true(json_real_value(json_object_get(o, "p99_us")) == 990.0);
	assert_true(json_real_value(json_object_get(o, "p999_us")) == 999.0);
	assert_true(json_real_value(json_object_get(o, "max_us")) == 1000.0);
	assert_true(json_real_value(json_object_get(o, "mean_us")) == 500.5);
	assert_int_equal(json_integer_value(json_object_get(o, "samples")), 1000);
	json_decref(o);
	bench_hist_free(&h);
}

static void test_phase_has_machine_and_rev(void **state)
{
	char path[] = "/tmp/strata-bench-test-XXXXXX";
	int fd = mkstemp(path);
	json_t *p, *back;
	json_error_t err;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(bench_set_output(path), 0);
	p = bench_phase_new("unit", "one");
	json_object_set_new(bench_phase_params(p), "size", json_integer(4096));
	json_object_set_new(bench_phase_results(p), "ops_per_s", json_real(12.5));
	assert_int_equal(bench_phase_emit(p), 0);
	back = json_load_file(path, JSON_DISABLE_EOF_CHECK, &err);
	assert_non_null(back);
	assert_string_equal(json_string_value(json_object_get(back, "bench")), "unit");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(back, "params"), "size")), 4096);
	assert_true(json_integer_value(json_object_get(json_object_get(back, "machine"), "cores")) >= 1);
	assert_non_null(json_object_get(back, "git_rev"));
	json_decref(back);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentiles_nearest_rank),
		cmocka_unit_test(test_percentiles_small_and_empty),
		cmocka_unit_test(test_hist_json),
		cmocka_unit_test(test_phase_has_machine_and_rev),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
