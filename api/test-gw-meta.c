/* The head record's encoding (gw_meta.c): round trips, every truncation and
 * a wrong format byte are refused (the bytes come back from storage nodes),
 * segment geometry, handoff overrides; multipart heads (format 2), their
 * manifest (gw_mpu.c) and where a multipart object's segments are. */
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
	b.p[0] = GW_META_FORMAT_POLICY + 1;
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

static void test_multipart_meta(void **state)
{
	struct gw_meta m, d;
	struct s3_buf b = { 0 };
	char etag[S3_ETAG_MAX];

	(void)state;
	fill(&m);
	m.layout = GW_LAYOUT_MULTIPART;
	m.nparts = 13;
	m.manifest_len = 999;
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal((uint8_t)b.p[0], GW_META_FORMAT_MPU);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), 0);
	assert_true(d.nparts == 13 && d.manifest_len == 999);
	assert_int_equal(d.layout, GW_LAYOUT_MULTIPART);
	gw_meta_etag(&d, etag);
	assert_string_equal(etag, "\"00070e151c232a31383f464d545b6269-13\"");
	gw_meta_free(&d);
	for (size_t n = 0; n < b.len; n++) {
		assert_true(gw_meta_decode(b.p, n, &d) < 0);
		gw_meta_free(&d);
	}
	/* A multipart layout without parts, and parts on a simple layout. */
	s3_buf_reset(&b);
	m.layout = GW_LAYOUT_EC;
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), -EINVAL);
	gw_meta_free(&d);
	s3_buf_reset(&b);
	m.layout = GW_LAYOUT_MULTIPART;
	m.nparts = 0;
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal((uint8_t)b.p[0], GW_META_FORMAT);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), -EINVAL);
	gw_meta_free(&d);
	s3_buf_free(&b);
	gw_meta_free(&m);
}

/* Storage policies: a head on policy 0 stays format 1 (2 with parts), so
 * heads written before policies existed are what policy 0 writes and decode
 * as policy 0; another policy's head is format 3, simple or multipart. */
static void test_policy(void **state)
{
	struct gw_meta m, d;
	struct s3_buf b = { 0 };

	(void)state;
	fill(&m);
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal((uint8_t)b.p[0], GW_META_FORMAT);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.policy, 0);
	gw_meta_free(&d);
	for (unsigned mpu = 0; mpu < 2; mpu++) {
		s3_buf_reset(&b);
		m.policy = 1;
		m.k = 1;
		m.m = 2;
		m.over[0].frag = 2;
		m.seg_size = 1 << 20;
		m.layout = mpu ? GW_LAYOUT_MULTIPART : GW_LAYOUT_EC;
		m.nparts = mpu ? 3 : 0;
		assert_int_equal(gw_meta_encode(&m, &b), 0);
		assert_int_equal((uint8_t)b.p[0], GW_META_FORMAT_POLICY);
		assert_int_equal(gw_meta_decode(b.p, b.len, &d), 0);
		assert_int_equal(d.policy, 1);
		assert_int_equal(d.nparts, mpu ? 3 : 0);
		assert_true(d.k == 1 && d.m == 2 && d.seg_size == 1 << 20);
		gw_meta_free(&d);
		for (size_t n = 0; n < b.len; n++) {
			assert_true(gw_meta_decode(b.p, n, &d) < 0);
			gw_meta_free(&d);
		}
		/* policy 0 spelled as format 3: never written, refused */
		b.p[b.len - 1] = 0;
		assert_int_equal(gw_meta_decode(b.p, b.len, &d), -EINVAL);
		gw_meta_free(&d);
	}
	/* An old head: the format 1 bytes of a 4+2 object written before
	 * policies (the encoding of fill(), unchanged), decodes as policy 0. */
	gw_meta_free(&m);
	fill(&m);
	s3_buf_reset(&b);
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	{
		static const uint8_t old[] = { 1, 1, 2, 4, 2, S3_CKSUM_CRC32C, 0, 2 };

		assert_memory_equal(b.p, old, sizeof(old));
	}
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.policy, 0);
	gw_meta_free(&d);
	s3_buf_free(&b);
	gw_meta_free(&m);
}

#define MiB (1u << 20)

static void test_manifest(void **state)
{
	struct gw_override ov = { 1, 3, 42 };
	struct gw_mpart parts[] = {
		{ .number = 7, .size = 5 * MiB, .version = 100, .seg_size = 4 * MiB },
		{ .number = 8, .size = 0, .version = 101, .seg_size = 4 * MiB },
		{ .number = 9, .size = 6 * MiB + 17, .version = 102, .seg_size = 4 * MiB,
		  .over = &ov, .nover = 1 },
		{ .number = 12, .size = 3, .version = 103, .seg_size = 4 * MiB },
	};
	struct gw_manifest m = { "0123456789abcdef0123456789abcdef", parts, 4, 0 }, d;
	struct gw_req r;
	struct gw_segref ref;
	struct s3_buf b = { 0 }, pp = { 0 };
	uint8_t name[STO_NAME_HASH_LEN];

	(void)state;
	assert_int_equal(gw_manifest_encode(&m, &b), 0);
	assert_int_equal(gw_manifest_decode(b.p, b.len, &d), 0);
	assert_string_equal(d.upload_id, m.upload_id);
	assert_int_equal(d.n, 4);
	assert_int_equal(d.nsegs, 5);
	assert_true(d.parts[2].off == 5 * MiB && d.parts[2].seg0 == 2);
	assert_true(d.parts[3].off == 11 * MiB + 17 && d.parts[3].seg0 == 4);
	assert_true(d.parts[2].nover == 1 && d.parts[2].over[0].dev == 42);
	assert_int_equal((uint8_t)b.p[0], GW_MANIFEST_FORMAT);
	assert_int_equal(d.parts[0].cksum_alg, S3_CKSUM_NONE);

	/* Segments: part 7 has 0 and 1, part 8 none, part 9 2 and 3, 12 4. */
	memset(&r, 0, sizeof(r));
	r.rpath = "/o/b/k";
	r.rpath_len = 6;
	r.gm.k = 4;
	r.gm.m = 2;
	r.man = d;
	r.have_man = true;
	assert_int_equal(gw_seg_at(&r, 0), 0);
	assert_int_equal(gw_seg_at(&r, 5 * MiB - 1), 1);
	assert_int_equal(gw_seg_at(&r, 5 * MiB), 2);
	assert_int_equal(gw_seg_at(&r, 9 * MiB), 3);
	assert_int_equal(gw_seg_at(&r, 11 * MiB + 17), 4);
	gw_seg_ref(&r, 1, &ref);
	assert_true(ref.obj_off == 4 * MiB && ref.len == MiB && ref.lseg == 1);
	gw_seg_ref(&r, 3, &ref);
	assert_true(ref.obj_off == 9 * MiB && ref.len == 2 * MiB + 17 && ref.lseg == 1);
	assert_true(ref.version == 102 && ref.nover == 1);
	assert_int_equal(gw_part_path("/o/b/k", 6, m.upload_id, 9, &pp), 0);
	gw_seg_hash(pp.p, pp.len, 102, 1, name);
	assert_memory_equal(ref.name, name, sizeof(name));
	gw_seg_ref(&r, 4, &ref);
	assert_true(ref.obj_off == 11 * MiB + 17 && ref.len == 3 && ref.lseg == 0);
	gw_manifest_free(&r.man);

	/* Truncations, garbage, a zero segment size, an unknown format. */
	for (size_t n = 0; n < b.len; n++) {
		assert_true(gw_manifest_decode(b.p, n, &d) < 0);
		gw_manifest_free(&d);
	}
	assert_int_equal(s3_buf_addc(&b, 0), 0);
	assert_int_equal(gw_manifest_decode(b.p, b.len, &d), -EINVAL);
	gw_manifest_free(&d);
	b.p[0] = 9;
	assert_int_equal(gw_manifest_decode(b.p, b.len, &d), -EPROTO);
	gw_manifest_free(&d);
	s3_buf_reset(&b);
	parts[1].seg_size = 0;
	assert_int_equal(gw_manifest_encode(&m, &b), 0);
	assert_int_equal(gw_manifest_decode(b.p, b.len, &d), -EINVAL);
	gw_manifest_free(&d);
	parts[1].seg_size = 4 * MiB;

	/* With part checksums (format 2): a SHA-256 and a CRC64NVME part,
	 * two without; round trip, truncations, an unknown algorithm. */
	s3_buf_reset(&b);
	parts[0].cksum_alg = S3_CKSUM_SHA256;
	memset(parts[0].cksum, 0x5a, 32);
	parts[3].cksum_alg = S3_CKSUM_CRC64NVME;
	memset(parts[3].cksum, 0xc3, 8);
	assert_int_equal(gw_manifest_encode(&m, &b), 0);
	assert_int_equal((uint8_t)b.p[0], GW_MANIFEST_FORMAT_CKSUM);
	assert_int_equal(gw_manifest_decode(b.p, b.len, &d), 0);
	assert_int_equal(d.parts[0].cksum_alg, S3_CKSUM_SHA256);
	assert_memory_equal(d.parts[0].cksum, parts[0].cksum, 32);
	assert_int_equal(d.parts[1].cksum_alg, S3_CKSUM_NONE);
	assert_int_equal(d.parts[3].cksum_alg, S3_CKSUM_CRC64NVME);
	assert_memory_equal(d.parts[3].cksum, parts[3].cksum, 8);
	assert_true(d.parts[3].off == 11 * MiB + 17 && d.nsegs == 5);
	gw_manifest_free(&d);
	for (size_t n = 0; n < b.len; n++) {
		assert_true(gw_manifest_decode(b.p, n, &d) < 0);
		gw_manifest_free(&d);
	}
	/* part 7's algorithm byte follows its 26 bytes (no overrides) */
	b.p[3 + 32 + 4 + 26] = S3_CKSUM_MD5;
	assert_int_equal(gw_manifest_decode(b.p, b.len, &d), -EINVAL);
	gw_manifest_free(&d);
	s3_buf_free(&b);
	s3_buf_free(&pp);
}

/* Parts listing entries: without a checksum (older entries too) and with
 * one, every truncation refused. */
static void test_part_entry(void **state)
{
	struct gw_meta m = { .version = 7, .size = 5 * MiB, .seg_size = 4 * MiB };
	struct gw_part_entry p;
	struct s3_buf b = { 0 };
	uint8_t key[4] = { 0, 0, 0, 3 };
	struct sto_listing_entry e = { key, 4, 1, false, NULL, 0 };

	(void)state;
	memset(m.md5, 0x11, 16);
	for (int with = 0; with < 2; with++) {
		s3_buf_reset(&b);
		m.cksum_alg = with ? S3_CKSUM_CRC32C : S3_CKSUM_NONE;
		memset(m.cksum, 0x77, 4);
		assert_int_equal(gw_part_entry_encode(&m, &b), 0);
		assert_int_equal(b.len, 38 + (with ? 5 : 0));
		e.value = b.p;
		e.value_len = (uint32_t)b.len;
		assert_int_equal(gw_part_entry_decode(&e, &p), 0);
		assert_int_equal(p.number, 3);
		assert_true(p.size == 5 * MiB && p.seg_size == 4 * MiB);
		assert_int_equal(p.cksum_alg, m.cksum_alg);
		if (with)
			assert_memory_equal(p.cksum, m.cksum, 4);
		gw_part_entry_free(&p);
		for (uint32_t n = 0; n < b.len; n++) {
			e.value_len = n;
			assert_true(n == 38 || gw_part_entry_decode(&e, &p) < 0);
			gw_part_entry_free(&p);
		}
	}
	b.p[38] = 0x7f;		/* no such algorithm */
	e.value_len = (uint32_t)b.len;
	assert_int_equal(gw_part_entry_decode(&e, &p), -EINVAL);
	gw_part_entry_free(&p);
	s3_buf_free(&b);
}

/* A multipart object's checksum: COMPOSITE in the algorithm byte, shown
 * with its parts' count; FULL_OBJECT as it is. */
static void test_cksum_show(void **state)
{
	struct gw_meta m, d;
	struct s3_buf b = { 0 };
	char v[GW_CKSUM_SHOW_MAX];

	(void)state;
	fill(&m);
	m.layout = GW_LAYOUT_MULTIPART;
	m.nparts = 3;
	m.cksum_alg = S3_CKSUM_SHA256;
	m.cksum_composite = true;
	memset(m.cksum, 0, 32);
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), 0);
	assert_true(d.cksum_composite);
	assert_int_equal(d.cksum_alg, S3_CKSUM_SHA256);
	assert_true(gw_meta_cksum_show(&d, v));
	assert_string_equal(v, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=-3");
	assert_string_equal(gw_meta_cksum_type(&d), "COMPOSITE");
	gw_meta_free(&d);
	m.cksum_alg = S3_CKSUM_CRC32;
	m.cksum_composite = false;
	s3_buf_reset(&b);
	assert_int_equal(gw_meta_encode(&m, &b), 0);
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), 0);
	assert_false(d.cksum_composite);
	assert_true(gw_meta_cksum_show(&d, v));
	assert_string_equal(v, "AAAAAA==");
	assert_string_equal(gw_meta_cksum_type(&d), "FULL_OBJECT");
	d.cksum_alg = S3_CKSUM_NONE;
	assert_false(gw_meta_cksum_show(&d, v));
	gw_meta_free(&d);
	/* an algorithm byte beyond the known ones */
	b.p[5] = 0x7e;
	assert_int_equal(gw_meta_decode(b.p, b.len, &d), -EINVAL);
	gw_meta_free(&d);
	s3_buf_free(&b);
	gw_meta_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_multipart_meta),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_manifest),
		cmocka_unit_test(test_part_entry),
		cmocka_unit_test(test_cksum_show),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
