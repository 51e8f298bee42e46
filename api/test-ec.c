/* Erasure coding: every erasure pattern of up to m fragments decodes
 * byte-identical for 4+2, 6+3, 8+4 and 10+4; more than m is a clear error;
 * decode tables are cached; the stripe layout arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct stripe {
	unsigned k, m;
	size_t len;
	uint8_t *orig[GW_EC_MAX_FRAGS];	/* the truth */
	uint8_t *work[GW_EC_MAX_FRAGS];	/* what decode sees */
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint8_t rnd8(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)(rng >> 24);
}

static void stripe_init(struct stripe *s, struct gw_ec *ec, size_t len)
{
	s->k = gw_ec_k(ec);
	s->m = gw_ec_m(ec);
	s->len = len;
	for (unsigned i = 0; i < s->k + s->m; i++) {
		s->orig[i] = malloc(len ? len : 1);
		s->work[i] = malloc(len ? len : 1);
		assert_non_null(s->orig[i]);
		assert_non_null(s->work[i]);
	}
	for (unsigned i = 0; i < s->k; i++)
		for (size_t j = 0; j < len; j++)
			s->orig[i][j] = rnd8();
	assert_int_equal(gw_ec_encode(ec, len, s->orig, s->orig + s->k), 0);
}

static void stripe_free(struct stripe *s)
{
	for (unsigned i = 0; i < s->k + s->m; i++) {
		free(s->orig[i]);
		free(s->work[i]);
	}
}

/* Loses the fragments in `lost`, rebuilds them all, compares. */
static void lose_and_rebuild(struct gw_ec *ec, struct stripe *s, uint32_t lost)
{
	unsigned n = s->k + s->m;
	uint32_t all = (1u << n) - 1;

	for (unsigned i = 0; i < n; i++) {
		if (lost & (1u << i))
			memset(s->work[i], 0xee, s->len);
		else
			memcpy(s->work[i], s->orig[i], s->len);
	}
	assert_int_equal(gw_ec_decode(ec, s->len, s->work, all & ~lost, all), 0);
	for (unsigned i = 0; i < n; i++)
		if (memcmp(s->work[i], s->orig[i], s->len))
			fail_msg("%u+%u lost %#x: fragment %u differs", s->k, s->m, lost, i);
}

static void every_pattern(unsigned k, unsigned m, size_t len)
{
	struct gw_ec *ec;
	struct stripe s;
	unsigned n = k + m, patterns = 0;
	uint64_t hits, misses;

	assert_int_equal(gw_ec_get(k, m, &ec), 0);
	stripe_init(&s, ec, len);
	for (uint32_t lost = 1; lost < (1u << n); lost++) {
		if ((unsigned)__builtin_popcount(lost) > m)
			continue;
		lose_and_rebuild(ec, &s, lost);
		patterns++;
	}
	/* 4+2: 6+15 = 21 patterns; 10+4: 14+91+364+1001 = 1470 */
	assert_true(patterns > n);

	/* more than m lost: -EIO, and nothing claimed rebuilt */
	{
		uint32_t all = (1u << n) - 1, lost = (1u << (m + 1)) - 1;

		assert_int_equal(gw_ec_decode(ec, len, s.work, all & ~lost, all), -EIO);
		assert_int_equal(gw_ec_decode(ec, len, s.work, 0, all), -EIO);
		assert_int_equal(gw_ec_decode(ec, len, s.work, all, all), 0);	/* nothing lost */
		assert_int_equal(gw_ec_decode(ec, len, s.work, all << 1, all), -EINVAL);
	}
	/* only the data fragments wanted, parity left alone */
	{
		uint32_t all = (1u << n) - 1, data = (1u << k) - 1;
		uint32_t lost = 1u | (1u << (n - 1));	/* data 0 and the last parity */

		memcpy(s.work[n - 1], s.orig[n - 1], len);
		for (unsigned i = 0; i < n; i++)
			if (lost & (1u << i))
				memset(s.work[i], 0x11, len);
			else
				memcpy(s.work[i], s.orig[i], len);
		assert_int_equal(gw_ec_decode(ec, len, s.work, all & ~lost, data), 0);
		assert_memory_equal(s.work[0], s.orig[0], len);
		assert_int_equal(s.work[n - 1][0], 0x11);
	}
	gw_ec_cache_stats(ec, &hits, &misses);
	assert_true(misses >= 1);
	stripe_free(&s);
	gw_ec_put(ec);
}

static void test_4_2(void **state) { every_pattern(4, 2, 4096 + 37); }

/* 1+m: the replicated policy for large objects; every fragment is a copy. */
static void test_1_2(void **state)
{
	struct gw_ec *ec;
	struct stripe s;

	(void)state;
	every_pattern(1, 2, 5000);
	assert_int_equal(gw_ec_get(1, 2, &ec), 0);
	stripe_init(&s, ec, 777);
	assert_memory_equal(s.orig[1], s.orig[0], 777);
	assert_memory_equal(s.orig[2], s.orig[0], 777);
	stripe_free(&s);
	gw_ec_put(ec);
}
static void test_6_3(void **state) { every_pattern(6, 3, 1000); }
static void test_8_4(void **state) { every_pattern(8, 4, 512); }
static void test_10_4(void **state) { every_pattern(10, 4, 256); }

static void test_cache(void **state)
{
	struct gw_ec *ec, *again;
	struct stripe s;
	uint64_t hits0, misses0, hits, misses;

	assert_int_equal(gw_ec_get(4, 2, &ec), 0);
	assert_int_equal(gw_ec_get(4, 2, &again), 0);
	assert_ptr_equal(ec, again);		/* one policy per (k,m) */
	gw_ec_put(again);
	stripe_init(&s, ec, 65536);
	gw_ec_cache_stats(ec, &hits0, &misses0);
	/* a degraded object: the same pattern stripe after stripe */
	for (int i = 0; i < 10; i++)
		lose_and_rebuild(ec, &s, 0x5);
	gw_ec_cache_stats(ec, &hits, &misses);
	assert_int_equal(misses - misses0, 1);
	assert_int_equal(hits - hits0, 9);
	/* more patterns than the LRU holds: still right, entries recycled */
	for (uint32_t lost = 1; lost < 64; lost++)
		if (__builtin_popcount(lost) <= 2)
			lose_and_rebuild(ec, &s, lost);
	for (uint32_t lost = 1; lost < 64; lost++)
		if (__builtin_popcount(lost) <= 2)
			lose_and_rebuild(ec, &s, lost);
	stripe_free(&s);
	gw_ec_put(ec);
}

static void test_bad_policies(void **state)
{
	struct gw_ec *ec;

	assert_int_equal(gw_ec_get(0, 2, &ec), -EINVAL);
	assert_int_equal(gw_ec_get(4, 0, &ec), -EINVAL);
	assert_int_equal(gw_ec_get(GW_EC_MAX_K + 1, 2, &ec), -EINVAL);
	assert_int_equal(gw_ec_get(4, GW_EC_MAX_M + 1, &ec), -EINVAL);
	assert_int_equal(gw_ec_get(GW_EC_MAX_K, GW_EC_MAX_M, &ec), 0);
	{
		struct stripe s;

		stripe_init(&s, ec, 128);
		lose_and_rebuild(ec, &s, 0xff);			/* 8 = m */
		lose_and_rebuild(ec, &s, 0xff0000);		/* all parity */
		lose_and_rebuild(ec, &s, 0x0f000f);
		stripe_free(&s);
	}
	gw_ec_put(ec);
}

static void test_layout(void **state)
{
	struct gw_ec_layout l;
	uint64_t stripe, off;
	unsigned frag;

	assert_int_equal(gw_ec_layout(4, 2, 0, 0, &l), 0);
	assert_int_equal(l.unit, GW_EC_DEFAULT_UNIT);
	assert_int_equal(l.n_stripes, 0);
	assert_int_equal(l.frag_len, 0);

	assert_int_equal(gw_ec_layout(4, 2, 0, 1, &l), 0);
	assert_int_equal(l.stripe_size, 4 * 65536);
	assert_int_equal(l.n_stripes, 1);
	assert_int_equal(l.frag_len, 65536);
	assert_int_equal(l.last_stripe_len, 1);

	assert_int_equal(gw_ec_layout(4, 2, 0, 4 * 65536, &l), 0);
	assert_int_equal(l.n_stripes, 1);
	assert_int_equal(l.last_stripe_len, 4 * 65536);

	assert_int_equal(gw_ec_layout(8, 4, 4096, 10 * 32768 + 5, &l), 0);
	assert_int_equal(l.n_stripes, 11);
	assert_int_equal(l.frag_len, 11 * 4096);
	assert_int_equal(l.last_stripe_len, 5);

	gw_ec_locate(&l, 0, &stripe, &frag, &off);
	assert_int_equal(stripe, 0);
	assert_int_equal(frag, 0);
	assert_int_equal(off, 0);
	gw_ec_locate(&l, 32768 + 4096 * 3 + 17, &stripe, &frag, &off);
	assert_int_equal(stripe, 1);
	assert_int_equal(frag, 3);
	assert_int_equal(off, 4096 + 17);

	assert_int_equal(gw_ec_layout(4, 2, 100, 1000, &l), -EINVAL);	/* unaligned */
	assert_int_equal(gw_ec_layout(0, 2, 0, 1000, &l), -EINVAL);
}

/* The layout and the codec together: an object through stripes and back
 * with two fragments gone. */
static void test_object_roundtrip(void **state)
{
	struct gw_ec *ec;
	struct gw_ec_layout l;
	size_t len = 3 * 4 * 4096 + 1234;
	uint8_t *obj = malloc(len), *frag[6], *back = calloc(1, len);

	assert_int_equal(gw_ec_get(4, 2, &ec), 0);
	assert_int_equal(gw_ec_layout(4, 2, 4096, len, &l), 0);
	for (size_t i = 0; i < len; i++)
		obj[i] = rnd8();
	for (int i = 0; i < 6; i++)
		frag[i] = calloc(1, l.frag_len);
	for (uint64_t s = 0; s < l.n_stripes; s++) {
		uint8_t *d[4], *p[2];

		for (unsigned f = 0; f < 4; f++) {
			uint64_t at = s * l.stripe_size + (uint64_t)f * l.unit;

			d[f] = frag[f] + s * l.unit;
			if (at < len)
				memcpy(d[f], obj + at, at + l.unit <= len ? l.unit : len - at);
		}
		p[0] = frag[4] + s * l.unit;
		p[1] = frag[5] + s * l.unit;
		assert_int_equal(gw_ec_encode(ec, l.unit, d, p), 0);
	}
	memset(frag[1], 0, l.frag_len);
	memset(frag[3], 0, l.frag_len);
	for (uint64_t s = 0; s < l.n_stripes; s++) {
		uint8_t *f[6];

		for (int i = 0; i < 6; i++)
			f[i] = frag[i] + s * l.unit;
		assert_int_equal(gw_ec_decode(ec, l.unit, f, 0x35, 0x0f), 0);
	}
	for (size_t off = 0; off < len; off++) {
		uint64_t stripe, foff;
		unsigned fi;

		gw_ec_locate(&l, off, &stripe, &fi, &foff);
		back[off] = frag[fi][foff];
	}
	assert_memory_equal(back, obj, len);
	for (int i = 0; i < 6; i++)
		free(frag[i]);
	free(obj);
	free(back);
	gw_ec_put(ec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_4_2),
		cmocka_unit_test(test_1_2),
		cmocka_unit_test(test_6_3),
		cmocka_unit_test(test_8_4),
		cmocka_unit_test(test_10_4),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_bad_policies),
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_object_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
