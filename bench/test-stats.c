/* Unit tests for bench/report.c (percentiles, rates, the phase format) and
 * bench/s3util.c (size distributions, object content, the response reader
 * of strata-bench s3). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
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


static void test_rates(void **state)
{
	json_t *o = json_object();

	/* 3,000 ops of 1 MiB in 1.5 s: 2,000 ops/s, 2,097.152 MB/s, 2,000 MiB/s. */
	bench_rates_to_json(o, 3000, 3000ULL << 20, 1.5);
	assert_int_equal(json_integer_value(json_object_get(o, "ops")), 3000);
	assert_true(json_real_value(json_object_get(o, "ops_per_s")) == 2000.0);
	assert_true(fabs(json_real_value(json_object_get(o, "mb_per_s")) - 2097.152) < 1e-9);
	assert_true(json_real_value(json_object_get(o, "mib_per_s")) == 2000.0);
	/* no time: rates 0, not inf or NaN */
	bench_rates_to_json(o, 5, 5, 0);
	assert_true(json_real_value(json_object_get(o, "ops_per_s")) == 0.0);
	assert_true(json_real_value(json_object_get(o, "mb_per_s")) == 0.0);
	json_decref(o);
}

static void test_percentile_large_uniform(void **state)
{
	struct bench_hist h = { 0 };

	/* 100,000 samples in shuffled order: p99.9 is the 99,900th smallest. */
	for (uint64_t i = 0; i < 100000; i++)
		bench_hist_add(&h, (i * 7919) % 100000 + 1);
	assert_int_equal(bench_hist_pct(&h, 50), 50000);
	assert_int_equal(bench_hist_pct(&h, 99), 99000);
	assert_int_equal(bench_hist_pct(&h, 99.9), 99900);
	assert_int_equal(bench_hist_pct(&h, 100), 100000);
	bench_hist_free(&h);
}

static void test_sizes(void **state)
{
	struct s3b_sizes d;
	uint64_t v, n4k = 0, n64k = 0, other = 0;
	char key[32];

	assert_int_equal(s3b_parse_size("4K", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(s3b_parse_size("16MiB", &v), 0);
	assert_int_equal(v, 16 << 20);
	assert_int_equal(s3b_parse_size("1.5k", &v), 0);
	assert_int_equal(v, 1536);
	assert_int_equal(s3b_parse_size("0", &v), 0);
	assert_int_equal(s3b_parse_size("4X", &v), -EINVAL);
	assert_int_equal(s3b_parse_size("", &v), -EINVAL);
	assert_int_equal(s3b_parse_size("6G", &v), -ERANGE);

	assert_int_equal(s3b_sizes_parse(&d, "photo"), 0);
	assert_int_equal(d.n, 6);
	assert_int_equal(d.max, 4 << 20);
	assert_int_equal(d.size[0], 4096);
	assert_int_equal(s3b_sizes_parse(&d, "4K:50,64K:30,1M:15,4M:5"), 0);
	assert_int_equal(d.total, 100);
	/* mean = .5*4K + .3*64K + .15*1M + .05*4M */
	assert_true(fabs(d.mean - (0.5 * 4096 + 0.3 * 65536 + 0.15 * 1048576 + 0.05 * 4194304)) < 1e-6);
	assert_int_not_equal(s3b_sizes_parse(&d, "4K:0"), 0);
	assert_int_not_equal(s3b_sizes_parse(&d, "4K:x"), 0);
	assert_int_not_equal(s3b_sizes_parse(&d, ""), 0);

	/* The pick follows the weights (within 2% on 100,000 keys) and is a
	 * function of the key alone. */
	assert_int_equal(s3b_sizes_parse(&d, "4K:75,64K:25"), 0);
	for (int i = 0; i < 100000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		v = s3b_sizes_pick(&d, key);
		n4k += v == 4096;
		n64k += v == 65536;
		other += v != 4096 && v != 65536;
		assert_int_equal(s3b_sizes_pick(&d, key), v);
	}
	assert_int_equal(other, 0);
	assert_true(n4k > 73000 && n4k < 77000);
	assert_true(n64k > 23000 && n64k < 27000);
}

static void test_pool_content(void **state)
{
	struct s3b_pool a, b;
	const uint8_t *x, *y;

	assert_int_equal(s3b_pool_init(&a, 65536), 0);
	assert_int_equal(s3b_pool_init(&b, 65536), 0);
	/* same key and version: the same bytes, in any process */
	x = s3b_pool_slice(&a, "bench/0001/k", 1, 65536);
	y = s3b_pool_slice(&b, "bench/0001/k", 1, 65536);
	assert_memory_equal(x, y, 65536);
	assert_true(x + 65536 <= a.p + a.len);
	/* another version or key: other bytes */
	assert_memory_not_equal(x, s3b_pool_slice(&a, "bench/0001/k", 2, 65536), 65536);
	assert_memory_not_equal(x, s3b_pool_slice(&a, "bench/0001/l", 1, 65536), 65536);
	/* the largest object fits anywhere */
	x = s3b_pool_slice(&a, "z", 7, 65536 + S3B_POOL_SPREAD);
	assert_ptr_equal(x, a.p);
	s3b_pool_free(&a);
	s3b_pool_free(&b);
}

static int feed_split(struct s3b_resp *r, const char *s, size_t step)
{
	size_t n = strlen(s);
	int ret = 0;

	for (size_t i = 0; i < n && ret == 0; i += step)
		ret = s3b_resp_feed(r, s + i, n - i < step ? n - i : step);
	return ret;
}

static void test_response_reader(void **state)
{
	static const char body[] = "0123456789";
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	static const char bad[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456780";
	static const char err[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 61\r\n\r\n"
		"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>\n";
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
	static const char closing[] = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
	struct s3b_resp r;
	char code[32];

	for (size_t step = 1; step <= 64; step *= 4) {
		s3b_resp_init(&r, false, (const uint8_t *)body, 10);
		assert_int_equal(feed_split(&r, ok, step), 1);
		assert_int_equal(r.status, 200);
		assert_false(r.mismatch);
		assert_true(r.keep_alive);
		assert_int_equal(r.got, 10);

		s3b_resp_init(&r, false, (const uint8_t *)body, 10);
		assert_int_equal(feed_split(&r, bad, step), 1);
		assert_true(r.mismatch);
	}
	/* a shorter object than expected is a mismatch too */
	s3b_resp_init(&r, false, (const uint8_t *)body, 11);
	assert_int_equal(feed_split(&r, ok, 7), 1);
	assert_true(r.mismatch);

	s3b_resp_init(&r, false, NULL, 0);
	assert_int_equal(feed_split(&r, err, 5), 1);
	assert_int_equal(r.status, 404);
	s3b_resp_code(&r, code, sizeof(code));
	assert_string_equal(code, "NoSuchKey");

	/* HEAD: no body follows the announced length */
	s3b_resp_init(&r, true, NULL, 0);
	assert_int_equal(feed_split(&r, head, 64), 1);
	assert_int_equal(r.got, 0);

	s3b_resp_init(&r, false, NULL, 0);
	assert_int_equal(feed_split(&r, closing, 64), 1);
	assert_false(r.keep_alive);

	/* garbage, and bytes after the response */
	s3b_resp_init(&r, false, NULL, 0);
	assert_int_equal(s3b_resp_feed(&r, "SMTP ready\r\n", 12), -EPROTO);
	s3b_resp_init(&r, false, NULL, 0);
	assert_int_equal(s3b_resp_feed(&r, "HTTP/1.1 204 No Content\r\n\r\nX", 28), -EPROTO);
	/* a half response: need more */
	s3b_resp_init(&r, false, NULL, 0);
	assert_int_equal(s3b_resp_feed(&r, ok, 20), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percentiles_nearest_rank),
		cmocka_unit_test(test_percentiles_small_and_empty),
		cmocka_unit_test(test_hist_json),
		cmocka_unit_test(test_phase_has_machine_and_rev),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_percentile_large_uniform),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_pool_content),
		cmocka_unit_test(test_response_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
