/* The head record's encoding (gw_meta.c): round trips, every truncation and
 * a wrong format byte are refused (the bytes come back from storage nodes),
 * segment geometry, handoff overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void fill(struct gw_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->kind = GW_META_OBJECT;
	m->layout = GW_LAYOUT_EC;
	m->k = 4;
	m->m = 2;
	m->cksum_alg = S3_CKSUM_CRC32C;
	m->version = 1795606433320426282ull;
	m->size = 13 * (1 << 20) + 77;
	m->seg_size = 4 << 20;
	for (int i = 0; i < 16; i++)
		m->md5[i] = (uint8_t)(i * 7);
	m->cksum[0] = 0xab;
	m->owner = strdup("default");
	assert_int_equal(gw_meta_add_hdr(m, "Content-Type", 12, "text/plain", 10), 0);
	assert_int_equal(gw_meta_add_hdr(m, "x-amz-meta-color", 16, "blue", 4), 0);
	m->over = calloc(2, sizeof(*m->over));
	m->over[0] = (struct gw_override){ 2, 5, 11 };
	m->over[1] = (struct gw_override){ 3, 0, 12 };
	m->nover = 2;
}

static void test_roundtrip(void **state)
{
	struct gw_meta m, d;
	struct s3_buf b = { 0 };

	(void)state;
	fill(&m);
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.kind, GW_META_OBJECT);
	assert_int_equal(d.layout, GW_LAYOUT_EC);
	assert_int_equal(d.k, 4);
	assert_int_equal(d.m, 2);
	assert_true(d.version == m.version && d.size == m.size);
	assert_int_equal(d.seg_size, 4 << 20);
	assert_memory_equal(d.md5, m.md5, 16);
	assert_string_equal(d.owner, "default");
	assert_string_equal(gw_meta_hdr_get(&d, "content-type"), "text/plain");
	assert_string_equal(gw_meta_hdr_get(&d, "x-amz-meta-color"), "blue");
	assert_null(gw_meta_hdr_get(&d, "expires"));
	assert_int_equal(gw_meta_dev(&d, 2, 5, 99), 11);
	assert_int_equal(gw_meta_dev(&d, 3, 0, 99), 12);
	assert_int_equal(gw_meta_dev(&d, 3, 1, 99), 99);
	assert_int_equal(gw_meta_segments(&d), 4);
	gw_meta_free(&d);

	/* Every truncation, and trailing garbage, is refused. */
	for (size_t n = 0; n < b.len; n++) {
		assert_true(gw_meta_decode(b.p, n, &d) < 0);
		gw_meta_free(&d);
	}
	assert_int_equal(s3_buf_addc(&b, 'x'), 0);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), -EINVAL);
	gw_meta_free(&d);
	b.p[0] = 2;
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), -EPROTO);
	gw_meta_free(&d);
	s3_buf_free(&b);
	gw_meta_free(&m);
}

static void test_bad_fields(void **state)
{
	struct gw_meta m, d;
	struct s3_buf b = { 0 };

	(void)state;
	fill(&m);
	m.k = 0;	/* no EC without data fragments */
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), -EINVAL);
	gw_meta_free(&d);
	s3_buf_reset(&b);
	m.k = 4;
	m.over[0].frag = 6;	/* beyond k + m */
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), -EINVAL);
	gw_meta_free(&d);
	s3_buf_free(&b);
	gw_meta_free(&m);
}

static void test_geometry(void **state)
{
	uint64_t len;
	uint32_t flen;

	(void)state;
	gw_seg_geometry(13 * (1 << 20) + 77, 4 << 20, 4, 0, &len, &flen);
	assert_true(len == 4 << 20 && flen == 1 << 20);
	gw_seg_geometry(13 * (1 << 20) + 77, 4 << 20, 4, 3, &len, &flen);
	assert_true(len == (1 << 20) + 77);
	assert_int_equal(flen % GW_EC_ALIGN, 0);
	assert_true((uint64_t)flen * 4 >= len && (uint64_t)(flen - GW_EC_ALIGN) * 4 < len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_geometry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
