/* Unit tests: frame prefix, request/response codec and validation, CRC. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"

static void test_crc32c(void **state)
{
	const char *s = "123456789";

	assert_int_equal(sto_crc32c(0, s, 9), 0xe3069283);
	/* Chaining equals one pass. */
	assert_int_equal(sto_crc32c(sto_crc32c(0, s, 4), s + 4, 5), 0xe3069283);
	assert_int_equal(sto_crc32c(0, NULL, 0), 0);
}

static void test_prefix(void **state)
{
	uint8_t b[8];
	uint32_t n = 0;

	sto_frame_put_prefix(b, 1234);
	for (size_t i = 0; i < 8; i++)
		assert_int_equal(sto_frame_prefix(b, i, 4096, &n), 0);
	assert_int_equal(sto_frame_prefix(b, 8, 4096, &n), 1);
	assert_int_equal(n, 1234);
	assert_int_equal(sto_frame_prefix(b, 8, 1000, &n), STO_EPROTO);
	sto_frame_put_prefix(b, 0);
	assert_int_equal(sto_frame_prefix(b, 8, 4096, &n), STO_EPROTO);
	b[0] = 'G';
	assert_int_equal(sto_frame_prefix(b, 1, 4096, &n), STO_EPROTO);
}

static StoRequest *roundtrip(const StoRequest *q, int *err)
{
	uint8_t *buf;
	size_t len;
	uint32_t hl;
	StoRequest *out = NULL;
	const char *why = NULL;

	assert_int_equal(sto_req_encode(q, &buf, &len), 0);
	assert_int_equal(sto_frame_prefix(buf, len, STO_MAX_REQ_HDR, &hl), 1);
	assert_int_equal(hl + STO_FRAME_PREFIX, len);
	*err = sto_req_decode(buf + STO_FRAME_PREFIX, hl, &out, &why);
	if (*err)
		assert_non_null(why);
	free(buf);
	return out;
}

static void test_request(void **state)
{
	uint8_t name[16] = { 1, 2, 3 }, meta[10] = "etag";
	StoRequest q = STO_REQUEST__INIT, *r;
	struct sto_key k;
	int err;

	q.version = STO_PROTO_VERSION;
	q.id = 42;
	q.op = STO_OP__STO_OP_PUT;
	q.partition = 7;
	q.name_hash.data = name;
	q.name_hash.len = 16;
	q.frag_index = 3;
	q.timestamp = 99;
	q.payload_len = 1 << 20;
	q.crc32c = 0xdeadbeef;
	q.meta.data = meta;
	q.meta.len = 4;
	r = roundtrip(&q, &err);
	assert_int_equal(err, 0);
	assert_int_equal(r->id, 42);
	assert_int_equal(r->payload_len, 1 << 20);
	assert_int_equal(r->crc32c, 0xdeadbeef);
	sto_req_key(r, &k);
	assert_int_equal(k.part, 7);
	assert_int_equal(k.frag, 3);
	assert_memory_equal(k.name, name, 16);
	sto_req_free(r);
	q.tier_class = STO_TIER_PIN_HOT;	/* tiering: PUT only, known classes */
	q.cold_after = 60;
	r = roundtrip(&q, &err);
	assert_non_null(r);
	assert_int_equal(r->tier_class, STO_TIER_PIN_HOT);
	assert_int_equal(r->cold_after, 60);
	sto_req_free(r);
	q.tier_class = 4;
	assert_null(roundtrip(&q, &err));
	assert_int_equal(err, STO_EPROTO);
	q.tier_class = STO_TIER_COLD;	/* SET_TIER: key, timestamp, policy */
	q.op = STO_OP__STO_OP_SET_TIER;
	q.payload_len = 0;
	q.meta.len = 0;
	r = roundtrip(&q, &err);
	assert_non_null(r);
	assert_int_equal(r->tier_class, STO_TIER_COLD);
	assert_int_equal(r->cold_after, 60);
	sto_req_free(r);
	q.timestamp = 0;
	assert_null(roundtrip(&q, &err));	/* SET_TIER needs the version */
	assert_int_equal(err, STO_EPROTO);
	q.timestamp = 99;
	q.payload_len = 1;
	assert_null(roundtrip(&q, &err));	/* and takes no payload */
	q.payload_len = 0;
	q.tier_class = 0;
	q.op = STO_OP__STO_OP_GET;
	assert_null(roundtrip(&q, &err));	/* cold_after on a GET */
	q.cold_after = 0;
	q.op = STO_OP__STO_OP_PUT;
	q.payload_len = 1 << 20;
	q.meta.len = 4;

	q.version = 2;
	assert_null(roundtrip(&q, &err));
	assert_int_equal(err, STO_EVERSION);
	q.version = 1;
	q.name_hash.len = 15;
	assert_null(roundtrip(&q, &err));
	assert_int_equal(err, STO_EPROTO);
	q.name_hash.len = 16;
	q.timestamp = 0;
	assert_null(roundtrip(&q, &err));
	assert_int_equal(err, STO_EPROTO);
	q.timestamp = 1;
	q.payload_len = STO_MAX_FRAGMENT + 1;
	assert_null(roundtrip(&q, &err));
	q.payload_len = 1;
	q.op = STO_OP__STO_OP_GET;		/* GET with a payload */
	assert_null(roundtrip(&q, &err));
	q.payload_len = 0;
	q.meta.len = 0;
	q.offset = UINT64_MAX;
	q.length = 2;
	assert_null(roundtrip(&q, &err));
	q.offset = 0;
	r = roundtrip(&q, &err);
	assert_non_null(r);
	sto_req_free(r);
	q.op = 77;
	assert_null(roundtrip(&q, &err));
	q.op = STO_OP__STO_OP_LIST;
	q.suffix = 1u << STO_SUFFIX_BITS;
	assert_null(roundtrip(&q, &err));
}

/* Listing requests: every field bounded, none where it does not belong. */
static void test_listing_request(void **state)
{
	uint8_t lid[16] = { 1 }, name[16] = { 0 }, big[STO_LISTING_MAX_KEY + 1] = { 'k' };
	StoListingEntry e = STO_LISTING_ENTRY__INIT, *ep = &e;
	StoRequest q = STO_REQUEST__INIT, *r;
	int err;

	q.version = 1;
	q.op = STO_OP__STO_OP_LISTING_PUT;
	q.listing_id.data = lid;
	q.listing_id.len = 16;
	q.n_listing_entries = 1;
	q.listing_entries = &ep;
	e.key.data = big;
	e.key.len = 5;
	e.timestamp = 9;
	e.value.data = big;
	e.value.len = 3;
	r = roundtrip(&q, &err);
	assert_non_null(r);
	assert_int_equal(r->n_listing_entries, 1);
	sto_req_free(r);
	e.key.len = 0;					/* empty key */
	assert_null(roundtrip(&q, &err));
	e.key.len = STO_LISTING_MAX_KEY + 1;		/* too long */
	assert_null(roundtrip(&q, &err));
	e.key.len = STO_LISTING_MAX_KEY;
	assert_non_null(r = roundtrip(&q, &err));
	sto_req_free(r);
	e.tombstone = 1;				/* tombstone with a value */
	assert_null(roundtrip(&q, &err));
	e.value.len = 0;
	e.timestamp = 0;				/* no timestamp */
	assert_null(roundtrip(&q, &err));
	e.timestamp = 9;
	q.listing_id.len = 15;
	assert_null(roundtrip(&q, &err));
	q.listing_id.len = 16;
	q.name_hash.data = name;			/* a fragment key too */
	q.name_hash.len = 16;
	assert_null(roundtrip(&q, &err));
	q.name_hash.len = 0;
	q.op = STO_OP__STO_OP_LISTING_QUERY;		/* entries on a query */
	assert_null(roundtrip(&q, &err));
	q.n_listing_entries = 0;
	q.delimiter.data = big;
	q.delimiter.len = STO_LISTING_MAX_DELIM + 1;
	assert_null(roundtrip(&q, &err));
	q.delimiter.len = 1;
	q.limit = STO_LISTING_MAX_LIMIT + 1;
	assert_null(roundtrip(&q, &err));
	q.limit = 10;
	q.prefix.data = big;
	q.prefix.len = STO_LISTING_MAX_KEY + 1;
	assert_null(roundtrip(&q, &err));
	q.prefix.len = 2;
	assert_non_null(r = roundtrip(&q, &err));
	sto_req_free(r);
	q.op = STO_OP__STO_OP_LISTING_STAT;		/* query fields on a STAT */
	assert_null(roundtrip(&q, &err));
	q.op = STO_OP__STO_OP_LISTING_PUT;		/* PUT without entries */
	q.prefix.len = q.delimiter.len = 0;
	q.limit = 0;
	assert_null(roundtrip(&q, &err));
	q.op = STO_OP__STO_OP_STAT;			/* listing id on a STAT */
	assert_null(roundtrip(&q, &err));
	assert_int_equal(err, STO_EPROTO);
}

static void test_oversized_meta(void **state)
{
	uint8_t name[16] = { 0 };
	uint8_t *meta = calloc(1, STO_MAX_META + 1);
	StoRequest q = STO_REQUEST__INIT;
	uint8_t *buf;
	size_t len;

	q.version = 1;
	q.op = STO_OP__STO_OP_PUT;
	q.name_hash.data = name;
	q.name_hash.len = 16;
	q.timestamp = 1;
	q.meta.data = meta;
	q.meta.len = STO_MAX_META + 1;
	/* Fits the header cap, fails validation. */
	assert_int_equal(sto_req_encode(&q, &buf, &len), 0);
	{
		StoRequest *r = NULL;
		const char *why;

		assert_int_equal(sto_req_decode(buf + 8, len - 8, &r, &why), STO_EPROTO);
		assert_null(r);
	}
	free(buf);
	free(meta);
}

static void test_response(void **state)
{
	StoResponse m = STO_RESPONSE__INIT, *r;
	uint8_t *buf;
	size_t len;

	m.version = 1;
	m.id = 5;
	m.status = STO_ECRC;
	m.error = "bad";
	m.payload_len = 10;
	assert_int_equal(sto_resp_encode(&m, &buf, &len), 0);
	assert_int_equal(sto_resp_decode(buf + 8, len - 8, &r), 0);
	assert_int_equal(r->status, STO_ECRC);
	assert_string_equal(r->error, "bad");
	sto_resp_free(r);
	assert_int_equal(sto_resp_decode((uint8_t *)"\xff\xff\xff", 3, &r), STO_EPROTO);
	free(buf);
	assert_string_equal(sto_strerror(-ENOENT), strerror(ENOENT));
	assert_string_equal(sto_strerror(STO_ECONFLICT), "an equal or newer version exists");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_listing_request),
		cmocka_unit_test(test_oversized_meta),
		cmocka_unit_test(test_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
