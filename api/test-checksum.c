/* Known answers for the checksums, streaming equals one-shot, base64 edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void expect_hex(enum s3_cksum_alg alg, const char *in, const char *hex,
		       const char *b64)
{
	uint8_t d[S3_CKSUM_MAX_LEN];
	char h[2 * S3_CKSUM_MAX_LEN + 1], b[S3_CKSUM_B64_MAX];
	size_t n = s3_cksum_buf(alg, in, strlen(in), d);

	assert_int_equal(n, s3_cksum_len(alg));
	s3_hex(d, n, h);
	assert_string_equal(h, hex);
	assert_int_equal(s3_base64_encode(d, n, b, sizeof(b)), (int)strlen(b64));
	assert_string_equal(b, b64);
	assert_int_equal(s3_cksum_check_b64(alg, d, b64, strlen(b64)), 0);
}

static void test_known_answers(void **state)
{
	expect_hex(S3_CKSUM_CRC32, "123456789", "cbf43926", "y/Q5Jg==");
	expect_hex(S3_CKSUM_CRC32C, "123456789", "e3069283", "4waSgw==");
	expect_hex(S3_CKSUM_CRC32, "", "00000000", "AAAAAA==");
	expect_hex(S3_CKSUM_CRC32C, "", "00000000", "AAAAAA==");
	/* CRC-64/NVME's check value (the CRC catalogue), and the empty input */
	expect_hex(S3_CKSUM_CRC64NVME, "123456789", "ae8b14860a799888", "rosUhgp5mIg=");
	expect_hex(S3_CKSUM_CRC64NVME, "", "0000000000000000", "AAAAAAAAAAA=");
	expect_hex(S3_CKSUM_SHA1, "", "da39a3ee5e6b4b0d3255bfef95601890afd80709",
		   "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
	expect_hex(S3_CKSUM_SHA256, "",
		   "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		   "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
	expect_hex(S3_CKSUM_MD5, "", "d41d8cd98f00b204e9800998ecf8427e",
		   "1B2M2Y8AsgTpgAmY7PhCfg==");
	expect_hex(S3_CKSUM_SHA256, "Welcome to Amazon S3.",
		   "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		   "RM591nyVng01JP+sF3Hfu6h9K2tLTpnkIDSouAP4sHI=");
	expect_hex(S3_CKSUM_MD5, "The quick brown fox jumps over the lazy dog",
		   "9e107d9d372bb6826bd81d3542a419d6", "nhB9nTcrtoJr2B01QqQZ1g==");
}

/* Streaming in uneven pieces gives the one-shot digest, for every alg. */
static void test_streaming(void **state)
{
	size_t len = 100003;
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 7));
	for (int alg = S3_CKSUM_CRC32; alg <= S3_CKSUM_MD5; alg++) {
		uint8_t a[S3_CKSUM_MAX_LEN], b[S3_CKSUM_MAX_LEN];
		struct s3_cksum c;
		size_t off = 0, step = 1;

		assert_int_equal(s3_cksum_init(&c, alg), 0);
		while (off < len) {
			size_t n = len - off < step ? len - off : step;

			s3_cksum_update(&c, buf + off, n);
			off += n;
			step = step * 3 + 1;
		}
		assert_int_equal(s3_cksum_final(&c, a), s3_cksum_len(alg));
		s3_cksum_free(&c);
		s3_cksum_buf(alg, buf, len, b);
		assert_memory_equal(a, b, s3_cksum_len(alg));
	}
	free(buf);
}

static void test_names(void **state)
{
	assert_int_equal(s3_cksum_alg_from_name("crc32c", 6), S3_CKSUM_CRC32C);
	assert_int_equal(s3_cksum_alg_from_name("CRC64NVME", 9), S3_CKSUM_CRC64NVME);
	assert_int_equal(s3_cksum_alg_from_name("MD5", 3), S3_CKSUM_NONE);
	assert_int_equal(s3_cksum_alg_from_header("x-amz-checksum-crc64nvme", 24),
			 S3_CKSUM_CRC64NVME);
	assert_int_equal(s3_cksum_alg_from_name("CRC32", 5), S3_CKSUM_CRC32);
	assert_int_equal(s3_cksum_alg_from_name("SHA256", 6), S3_CKSUM_SHA256);
	assert_int_equal(s3_cksum_alg_from_name("MD5", 3), S3_CKSUM_NONE);
	assert_int_equal(s3_cksum_alg_from_name("CRC3", 4), S3_CKSUM_NONE);
	assert_int_equal(s3_cksum_alg_from_header("X-Amz-Checksum-SHA1", 19), S3_CKSUM_SHA1);
	assert_string_equal(s3_cksum_header(S3_CKSUM_CRC32C), "x-amz-checksum-crc32c");
	assert_null(s3_cksum_header(S3_CKSUM_MD5));
}

static void test_base64(void **state)
{
	uint8_t out[16];
	char enc[16];

	assert_int_equal(s3_base64_decode("", 0, out, sizeof(out)), 0);
	assert_int_equal(s3_base64_decode("Zg==", 4, out, sizeof(out)), 1);
	assert_int_equal(out[0], 'f');
	assert_int_equal(s3_base64_decode("Zm8=", 4, out, sizeof(out)), 2);
	assert_int_equal(s3_base64_decode("Zm9v", 4, out, sizeof(out)), 3);
	assert_memory_equal(out, "foo", 3);
	assert_int_equal(s3_base64_decode("Zm9", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(s3_base64_decode("Z=9v", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(s3_base64_decode("Zm 9", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(s3_base64_decode("Z===", 4, out, sizeof(out)), -EINVAL);
	assert_int_equal(s3_base64_decode("Zm9vYmFy", 8, out, 5), -ENOSPC);
	assert_int_equal(s3_base64_encode("foob", 4, enc, 8), -ENOSPC);
	assert_int_equal(s3_base64_encode("foob", 4, enc, 9), 8);
	assert_string_equal(enc, "Zm9vYg==");

	/* a wrong-length digest is InvalidDigest, a wrong value BadDigest */
	{
		uint8_t d[4] = { 0xcb, 0xf4, 0x39, 0x26 };

		assert_int_equal(s3_cksum_check_b64(S3_CKSUM_CRC32, d, "y/Q5Jw==", 8), S3E_BAD_DIGEST);
		assert_int_equal(s3_cksum_check_b64(S3_CKSUM_CRC32, d, "y/Q5", 4), S3E_INVALID_DIGEST);
		assert_int_equal(s3_cksum_check_b64(S3_CKSUM_CRC32, d, "y/Q5Jg", 6), S3E_INVALID_DIGEST);
	}
	/* hex */
	{
		uint8_t b[2];

		assert_int_equal(s3_unhex("aF09", 4, b, 2), 0);
		assert_int_equal(b[0], 0xaf);
		assert_int_equal(b[1], 0x09);
		assert_int_equal(s3_unhex("aG09", 4, b, 2), -EINVAL);
		assert_int_equal(s3_unhex("a09", 3, b, 2), -EINVAL);
	}
}

static void test_etags(void **state)
{
	uint8_t md5[2][16], back[16];
	char etag[S3_ETAG_MAX];

	s3_cksum_buf(S3_CKSUM_MD5, "a", 1, md5[0]);
	s3_cksum_buf(S3_CKSUM_MD5, "b", 1, md5[1]);
	s3_etag_from_md5(md5[0], etag);
	assert_string_equal(etag, "\"0cc175b9c0f1b6a831c399e269772661\"");
	assert_int_equal(s3_etag_parse(etag, strlen(etag), back), 0);
	assert_memory_equal(back, md5[0], 16);
	assert_int_equal(s3_etag_parse(etag + 1, 32, back), 0);	/* unquoted */
	assert_int_equal(s3_etag_parse(etag, 33, back), -EINVAL);
	/* md5(md5("a") . md5("b")), as python3 hashlib computes it */
	assert_int_equal(s3_etag_multipart(md5, 2, etag), 0);
	assert_string_equal(etag, "\"96e024ba2074fe77e8e965ba43a704be-2\"");
	assert_int_equal(s3_etag_multipart(md5, 0, etag), -EINVAL);
}

static int digest(const struct s3_auth_result *res, const char *const (*hv)[2],
		  size_t nh, const char *body, uint8_t md5[16], enum s3_cksum_alg *alg)
{
	struct s3_header h[8];
	struct s3_body_digest d;
	uint8_t ck[S3_CKSUM_MAX_LEN];
	int ret;

	for (size_t i = 0; i < nh; i++)
		h[i] = (struct s3_header){ hv[i][0], strlen(hv[i][0]), hv[i][1], strlen(hv[i][1]) };
	ret = s3_body_digest_init(&d, res, h, nh);
	if (ret == 0) {
		/* in two pieces */
		s3_body_digest_update(&d, body, 3);
		s3_body_digest_update(&d, body + 3, strlen(body) - 3);
		ret = s3_body_digest_final(&d, md5, alg, ck);
	}
	s3_body_digest_free(&d);
	return ret;
}

static void test_body_digest(void **state)
{
	static const char body[] = "Welcome to Amazon S3.";
	struct s3_auth_result res = { .payload = S3_PAYLOAD_SHA256 };
	uint8_t md5[16], want[S3_CKSUM_MAX_LEN];
	enum s3_cksum_alg alg;
	static const char *const good[][2] = {
		{ "Content-MD5", "" },		/* filled below */
		{ "x-amz-checksum-crc32c", "" },
		{ "x-amz-sdk-checksum-algorithm", "CRC32C" },
	};
	char md5b64[S3_CKSUM_B64_MAX], crcb64[S3_CKSUM_B64_MAX];
	const char *hv[3][2];

	s3_cksum_buf(S3_CKSUM_SHA256, body, strlen(body), res.payload_sha256);
	s3_cksum_buf(S3_CKSUM_MD5, body, strlen(body), want);
	s3_base64_encode(want, 16, md5b64, sizeof(md5b64));
	s3_cksum_buf(S3_CKSUM_CRC32C, body, strlen(body), want + 16);
	s3_base64_encode(want + 16, 4, crcb64, sizeof(crcb64));
	memcpy(hv, good, sizeof(hv));
	hv[0][1] = md5b64;
	hv[1][1] = crcb64;

	assert_int_equal(digest(&res, hv, 3, body, md5, &alg), 0);
	assert_memory_equal(md5, want, 16);
	assert_int_equal(alg, S3_CKSUM_CRC32C);
	/* anonymous, no headers: just the MD5 */
	assert_int_equal(digest(NULL, hv, 0, body, md5, &alg), 0);
	assert_int_equal(alg, S3_CKSUM_NONE);
	/* each check failing */
	assert_int_equal(digest(&res, hv, 3, "Welcome to Amazon S4.", md5, &alg),
			 S3E_CONTENT_SHA256_MISMATCH);
	res.payload = S3_PAYLOAD_UNSIGNED;
	assert_int_equal(digest(&res, hv, 3, "Welcome to Amazon S4.", md5, &alg), S3E_BAD_DIGEST);
	assert_int_equal(digest(&res, hv + 1, 2, "Welcome to Amazon S4.", md5, &alg), S3E_BAD_DIGEST);
	hv[2][1] = "SHA256";
	assert_int_equal(digest(&res, hv, 3, body, md5, &alg), S3E_INVALID_DIGEST);
	hv[0][1] = "notbase64";
	assert_int_equal(digest(&res, hv, 1, body, md5, &alg), S3E_INVALID_DIGEST);
	/* an x-amz-checksum-* value that is no digest: BadDigest (s3-tests) */
	hv[1][1] = "bad";
	assert_int_equal(digest(&res, hv + 1, 1, body, md5, &alg), S3E_BAD_DIGEST);
	/* streaming: the chunk decoder owns x-amz-checksum-*, only MD5 here */
	res.payload = S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
	hv[1][1] = "AAAAAA==";
	assert_int_equal(digest(&res, hv + 1, 1, body, md5, &alg), 0);
	assert_int_equal(alg, S3_CKSUM_NONE);
}

static void expect_b64(const uint8_t *d, size_t n, const char *b64)
{
	char b[S3_CKSUM_B64_MAX];

	assert_true(s3_base64_encode(d, n, b, sizeof(b)) > 0);
	assert_string_equal(b, b64);
}

/* FULL_OBJECT multipart checksums: the CRC of the whole object from the
 * parts' CRCs. The s3-tests known answers (5 MiB of 'A', 'B', 'C'), and
 * combines against one pass over uneven splits, an empty part included. */
static void test_combine(void **state)
{
	static const struct {
		enum s3_cksum_alg alg;
		const char *part[3], *whole;
	} kat[] = {
		{ S3_CKSUM_CRC32, { "JRTCyQ==", "QoZTGg==", "YAgjqw==" }, "WgDhBQ==" },
		{ S3_CKSUM_CRC32C, { "MDaLrw==", "TH4EZg==", "Z7mBIQ==" }, "xU+Krw==" },
		{ S3_CKSUM_CRC64NVME, { "L/E4WYn8v98=", "xW1l19VobYM=", "cK5MnNaWrW4=" },
		  "i+6LR0y3eFo=" },
	};
	size_t psize = 5u << 20, cuts[] = { 0, 1, 7, 4096, 100001, 3 * psize };
	uint8_t *buf = malloc(3 * psize);

	assert_non_null(buf);
	for (int i = 0; i < 3; i++)
		memset(buf + i * psize, 'A' + i, psize);
	for (size_t t = 0; t < sizeof(kat) / sizeof(kat[0]); t++) {
		enum s3_cksum_alg alg = kat[t].alg;
		size_t n = s3_cksum_len(alg);
		uint8_t acc[S3_CKSUM_MAX_LEN], d[S3_CKSUM_MAX_LEN];

		assert_true(s3_cksum_is_crc(alg));
		for (int i = 0; i < 3; i++) {
			s3_cksum_buf(alg, buf + i * psize, psize, d);
			expect_b64(d, n, kat[t].part[i]);
			if (i == 0)
				memcpy(acc, d, n);
			else
				assert_int_equal(s3_cksum_combine(alg, acc, d, psize), 0);
		}
		expect_b64(acc, n, kat[t].whole);
		/* A || B for other splits (B empty when the cut is the end). */
		for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
			uint8_t whole[S3_CKSUM_MAX_LEN];

			s3_cksum_buf(alg, buf, cuts[c], acc);
			s3_cksum_buf(alg, buf + cuts[c], 3 * psize - cuts[c], d);
			assert_int_equal(s3_cksum_combine(alg, acc, d, 3 * psize - cuts[c]), 0);
			s3_cksum_buf(alg, buf, 3 * psize, whole);
			assert_memory_equal(acc, whole, n);
		}
	}
	assert_false(s3_cksum_is_crc(S3_CKSUM_SHA256));
	assert_int_equal(s3_cksum_combine(S3_CKSUM_SHA256, buf, buf, 1), -EINVAL);
	free(buf);
}

static void test_errors(void **state)
{
	assert_string_equal(s3_err_code(S3E_SIGNATURE), "SignatureDoesNotMatch");
	assert_int_equal(s3_err_http_status(S3E_SIGNATURE), 403);
	assert_string_equal(s3_err_code(S3E_EXPIRED), "AccessDenied");
	assert_string_equal(s3_err_message(S3E_EXPIRED), "Request has expired");
	assert_string_equal(s3_err_code(S3E_TIME_SKEWED), "RequestTimeTooSkewed");
	assert_string_equal(s3_err_code(S3E_MALFORMED_XML), "MalformedXML");
	assert_int_equal(s3_err_http_status(S3E_MALFORMED_XML), 400);
	assert_string_equal(s3_err_code(-EIO), "InternalError");
	assert_int_equal(s3_err_http_status(-EIO), 500);
	assert_int_equal(s3_err_http_status(0), 200);
	for (int e = S3E_BASE; e < S3E_END; e++) {
		assert_string_not_equal(s3_err_code(e), "InternalError");
		assert_true(s3_err_http_status(e) >= 400);
	}
	assert_string_equal(s3_strerror(-ENOENT), strerror(ENOENT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_etags),
		cmocka_unit_test(test_body_digest),
		cmocka_unit_test(test_combine),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
