/* Unit tests: volume record format and scanning. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

static void test_lengths(void **state)
{
	assert_int_equal(sto_rec_nchunks(0), 0);
	assert_int_equal(sto_rec_nchunks(1), 1);
	assert_int_equal(sto_rec_nchunks(STO_CHUNK), 1);
	assert_int_equal(sto_rec_nchunks(STO_CHUNK + 1), 2);
	assert_int_equal(sto_rec_len(0, 0), 64);
	assert_int_equal(sto_rec_len(1, 4096), 64 + 1 + 4096 + 4 + 59);
	assert_int_equal(sto_rec_len(0, 4096) % STO_REC_ALIGN, 0);
}

static void test_roundtrip(void **state)
{
	struct sto_rec r = { .key = { .part = 9, .frag = 2, .name = { 1, 2 } },
			     .ts = 123, .data_len = 5000, .meta_len = 3,
			     .data_crc = 0xabcdef };
	uint8_t buf[STO_REC_HDR + 3], meta[3] = "abc";
	struct sto_rec out;

	sto_rec_encode(&r, meta, buf);
	memcpy(buf + STO_REC_HDR, meta, 3);
	assert_int_equal(sto_rec_decode(buf, sizeof(buf), &out), 0);
	assert_memory_equal(&out.key, &r.key, sizeof(r.key));
	assert_int_equal(out.ts, 123);
	assert_int_equal(out.data_len, 5000);
	assert_int_equal(out.data_crc, 0xabcdef);
	assert_int_equal(out.tier, 0);
	assert_int_equal(out.flags, 0);
	/* Tiering policy and the copy flag round-trip (and are CRC-covered). */
	r.tier = STO_TIER_PIN_COLD;
	r.cold_after = 86400 * 30;
	r.flags = STO_REC_COPY;
	sto_rec_encode(&r, meta, buf);
	assert_int_equal(sto_rec_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.tier, STO_TIER_PIN_COLD);
	assert_int_equal(out.cold_after, 86400 * 30);
	assert_int_equal(out.flags, STO_REC_COPY);
	buf[57] ^= 1;
	assert_int_equal(sto_rec_decode(buf, sizeof(buf), &out), STO_EPROTO);
	buf[57] ^= 1;
	assert_int_equal(sto_rec_decode(buf, STO_REC_HDR + 1, &out), -EAGAIN);
	buf[STO_REC_HDR + 1] ^= 1;		/* meta is covered */
	assert_int_equal(sto_rec_decode(buf, sizeof(buf), &out), STO_EPROTO);
	buf[STO_REC_HDR + 1] ^= 1;
	buf[33] ^= 1;				/* so is the header */
	assert_int_equal(sto_rec_decode(buf, sizeof(buf), &out), STO_EPROTO);
	buf[0] = 0;
	assert_int_equal(sto_rec_decode(buf, sizeof(buf), &out), STO_EPROTO);
}

struct seen {
	uint64_t off[8];
	uint64_t ts[8];
	int n;
};

static int on_rec(void *arg, uint64_t off, const struct sto_rec *r)
{
	struct seen *s = arg;

	s->off[s->n] = off;
	s->ts[s->n++] = r->ts;
	return 0;
}

static void test_scan(void **state)
{
	char path[] = "/tmp/test-volume.XXXXXX";
	int fd = mkstemp(path);
	uint64_t off = 0;
	struct seen s = { 0 };
	uint8_t junk[256];

	assert_true(fd >= 0);
	unlink(path);
	memset(junk, 0x5a, sizeof(junk));
	for (int i = 0; i < 3; i++) {
		struct sto_rec r = { .key = { .part = 1, .frag = i }, .ts = 10 + i,
				     .data_len = 1000 * (i + 1) };
		uint64_t len = sto_rec_len(0, r.data_len);
		uint8_t *b = calloc(1, len);

		sto_rec_encode(&r, NULL, b);
		assert_int_equal(pwrite(fd, b, len, off), (ssize_t)len);
		off += len;
		free(b);
		if (i == 0) {	/* an unacknowledged torn record: garbage */
			assert_int_equal(pwrite(fd, junk, sizeof(junk), off), 256);
			off += sizeof(junk);
		}
	}
	assert_int_equal(sto_vol_scan(fd, off, on_rec, &s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ts[0], 10);
	assert_int_equal(s.ts[2], 12);
	assert_int_equal(s.off[1], sto_rec_len(0, 1000) + 256);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
