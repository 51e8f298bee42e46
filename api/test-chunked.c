/* aws-chunked decoding: AWS's published streaming PUT (seed signature and
 * chunk signatures from the S3 API reference), resumability (input split at
 * every byte boundary), the unsigned-with-trailer form botocore sends, signed
 * trailers, and tampering of every kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define S3_TIME		1369353600	/* 20130524T000000Z */
#define SEED_SIG	"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
#define CHUNK1_SIG	"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
#define CHUNK2_SIG	"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
#define FINAL_SIG	"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"

static int lookup(void *arg, const char *ak, char *secret, size_t cap)
{
	if (strcmp(ak, "AKIAIOSFODNN7EXAMPLE"))
		return -ENOENT;
	snprintf(secret, cap, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
	return (int)strlen(secret);
}

/* The examples' request headers; verifies them and returns the seed. The
 * trailer example sends Transfer-Encoding instead of Content-Length and
 * signs x-amz-trailer. */
static void seed_auth_sig(const char *content_sha256, const char *seed, bool trailer,
			  struct s3_auth_result *res, int expect)
{
	char authz[512];
	const char *hv[][2] = {
		{ "Host", "s3.amazonaws.com" },
		{ "x-amz-date", "20130524T000000Z" },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
		{ "Authorization", authz },
		{ "x-amz-content-sha256", content_sha256 },
		{ "Content-Encoding", "aws-chunked" },
		{ "x-amz-decoded-content-length", "66560" },
		{ "Content-Length", "66824" },
		{ "x-amz-trailer", "x-amz-checksum-crc32c" },
	};
	const char *sh = trailer ?
		"content-encoding;host;x-amz-content-sha256;x-amz-date;"
		"x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer" :
		"content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
		"x-amz-decoded-content-length;x-amz-storage-class";
	struct s3_header h[9];
	size_t nh = trailer ? 9 : 8;
	struct s3_sig_req r = { .method = "PUT", .path = "/examplebucket/chunkObject.txt",
				.headers = h, .n_headers = nh };
	struct s3_auth_config cfg = { .region = "us-east-1", .lookup = lookup };
	struct s3_auth *a;

	snprintf(authz, sizeof(authz), "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
		 "SignedHeaders=%s,Signature=%s", sh, seed);
	r.path_len = strlen(r.path);
	if (trailer)
		hv[7][0] = "Transfer-Encoding", hv[7][1] = "chunked";
	for (size_t i = 0; i < nh; i++) {
		h[i].name = hv[i][0];
		h[i].name_len = strlen(hv[i][0]);
		h[i].value = hv[i][1];
		h[i].value_len = strlen(hv[i][1]);
	}
	assert_int_equal(s3_auth_new(&cfg, &a), 0);
	assert_int_equal(s3_auth_verify(a, &r, S3_TIME, res), expect);
	s3_auth_free(a);
}

static void seed_auth(const char *content_sha256, struct s3_auth_result *res, int expect)
{
	seed_auth_sig(content_sha256, SEED_SIG, false, res, expect);
}

struct body {
	uint8_t *p;
	size_t len;
};

static void body_add(struct body *b, const void *p, size_t n)
{
	b->p = realloc(b->p, b->len + n);
	assert_non_null(b->p);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void body_adds(struct body *b, const char *s)
{
	body_add(b, s, strlen(s));
}

/* The documented body: 65536 + 1024 bytes of 'a', then the final chunk. */
static struct body aws_body(void)
{
	struct body b = { 0 };
	uint8_t *a = malloc(65536);

	assert_non_null(a);
	memset(a, 'a', 65536);
	body_adds(&b, "10000;chunk-signature=" CHUNK1_SIG "\r\n");
	body_add(&b, a, 65536);
	body_adds(&b, "\r\n400;chunk-signature=" CHUNK2_SIG "\r\n");
	body_add(&b, a, 1024);
	body_adds(&b, "\r\n0;chunk-signature=" FINAL_SIG "\r\n\r\n");
	free(a);
	assert_int_equal(b.len, 66824);		/* the example's Content-Length */
	return b;
}

/* Decodes body fed in pieces: first `first` bytes, then `step` at a time
 * (0: the rest at once). Returns the final result; the decoded bytes go to
 * *out (when out) and must be a prefix of what was sent. */
static int decode(const struct s3_chunked_config *cfg, const uint8_t *body,
		  size_t len, size_t first, size_t step, struct body *out,
		  size_t *body_end)
{
	struct s3_chunked *d;
	size_t off = 0;
	int ret = 0;

	assert_int_equal(s3_chunked_new(cfg, &d), 0);
	while (off < len && ret == 0) {
		size_t piece = off == 0 && first ? first : step ? step : len - off;
		size_t used = 0;

		if (piece > len - off)
			piece = len - off;
		/* feed one piece until it is used up or the body ends */
		while (used < piece && ret == 0) {
			const uint8_t *data;
			size_t n, dn;

			ret = s3_chunked_decode(d, body + off + used, piece - used, &n, &data, &dn);
			if (dn) {
				assert_true(data >= body + off + used && data + dn <= body + off + piece);
				if (out)
					body_add(out, data, dn);
			}
			used += n;
			if (ret == 0 && n == 0 && dn == 0)
				fail_msg("no progress");
		}
		off += used;
	}
	if (body_end)
		*body_end = off;
	/* a finished or failed decoder repeats its verdict */
	if (ret != 0) {
		const uint8_t *data;
		size_t n, dn;

		assert_int_equal(s3_chunked_decode(d, (const uint8_t *)"x", 1, &n, &data, &dn), ret);
		assert_int_equal(n, 0);
		assert_int_equal(dn, 0);
	}
	s3_chunked_free(d);
	return ret;
}

static void test_aws_example(void **state)
{
	struct s3_auth_result res;
	struct body b = aws_body(), out = { 0 };
	struct s3_chunked_config cfg = { .mode = S3_PAYLOAD_STREAMING, .auth = &res,
					 .decoded_length = 66560 };
	size_t end;

	seed_auth("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &res, 0);
	assert_string_equal(res.seed_signature, SEED_SIG);
	assert_int_equal(res.payload, S3_PAYLOAD_STREAMING);

	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, &out, &end), 1);
	assert_int_equal(end, b.len);
	assert_int_equal(out.len, 66560);
	for (size_t i = 0; i < out.len; i++)
		if (out.p[i] != 'a')
			fail_msg("byte %zu", i);
	free(out.p);

	/* one byte at a time, and odd piece sizes */
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 1, NULL, NULL), 1);
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 7, NULL, NULL), 1);
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 4096, NULL, NULL), 1);
	/* split in two at every boundary around the framing */
	for (size_t s = 1; s < b.len; s++) {
		if (s > 200 && s < 65536 && s % 997)
			continue;
		if (s >= 65536 && s < b.len - 1300 && s % 997)
			continue;
		if (decode(&cfg, b.p, b.len, s, 0, NULL, NULL) != 1)
			fail_msg("split at %zu", s);
	}
	/* bytes after the body are not consumed */
	{
		struct body more = { 0 };

		body_add(&more, b.p, b.len);
		body_adds(&more, "GET / HTTP/1.1\r\n");
		assert_int_equal(decode(&cfg, more.p, more.len, 0, 0, NULL, &end), 1);
		assert_int_equal(end, b.len);
		free(more.p);
	}
	/* x-amz-decoded-content-length is checked; -1 skips the check */
	cfg.decoded_length = 66561;
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_INCOMPLETE_BODY);
	cfg.decoded_length = 66559;
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_CHUNK_MALFORMED);
	cfg.decoded_length = -1;
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), 1);
	free(b.p);
}

static void test_aws_example_tampered(void **state)
{
	struct s3_auth_result res;
	struct body b = aws_body();
	struct s3_chunked_config cfg = { .mode = S3_PAYLOAD_STREAMING, .auth = &res,
					 .decoded_length = 66560 };
	size_t hdr1 = strlen("10000;chunk-signature=" CHUNK1_SIG "\r\n");
	size_t hdr2_at = hdr1 + 65536 + 2;
	struct body out = { 0 };

	seed_auth("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &res, 0);

	/* a data byte in the first chunk: its bytes were handed out, but the
	 * verdict at its end is a failure */
	b.p[hdr1 + 1000] = 'b';
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, &out, NULL), S3E_CHUNK_SIGNATURE);
	assert_int_equal(out.len, 65536);
	free(out.p);
	b.p[hdr1 + 1000] = 'a';
	/* a data byte of the second chunk */
	b.p[hdr2_at + 100] = 'b';
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 13, NULL, NULL), S3E_CHUNK_SIGNATURE);
	b.p[hdr2_at + 100] = 'a';
	/* a signature digit */
	b.p[hdr1 - 3] ^= 1;
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_CHUNK_SIGNATURE);
	b.p[hdr1 - 3] ^= 1;
	/* the final chunk's signature */
	b.p[b.len - 5] = b.p[b.len - 5] == '9' ? '8' : '9';
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_CHUNK_SIGNATURE);
	free(b.p);

	/* swapped chunk order: the chain breaks */
	{
		struct body s = { 0 };
		uint8_t a[1024];

		memset(a, 'a', sizeof(a));
		body_adds(&s, "400;chunk-signature=" CHUNK2_SIG "\r\n");
		body_add(&s, a, 1024);
		body_adds(&s, "\r\n");
		assert_int_equal(decode(&cfg, s.p, s.len, 0, 0, NULL, NULL), S3E_CHUNK_SIGNATURE);
		free(s.p);
	}
	/* a wrong seed (another request's signature) */
	{
		struct s3_auth_result other = res;
		struct body b2 = aws_body();

		other.seed_signature[0] = other.seed_signature[0] == '4' ? '5' : '4';
		cfg.auth = &other;
		assert_int_equal(decode(&cfg, b2.p, b2.len, 0, 0, NULL, NULL), S3E_CHUNK_SIGNATURE);
		cfg.auth = &res;
		/* truncated: never "complete" */
		assert_int_equal(decode(&cfg, b2.p, b2.len - 1, 0, 0, NULL, NULL), 0);
		assert_int_equal(decode(&cfg, b2.p, b2.len - 3, 0, 0, NULL, NULL), 0);
		assert_int_equal(decode(&cfg, b2.p, 100, 0, 0, NULL, NULL), 0);
		free(b2.p);
	}
	/* malformed framing */
	{
		static const char *const bad[] = {
			"zz;chunk-signature=" CHUNK1_SIG "\r\n",
			";chunk-signature=" CHUNK1_SIG "\r\n",
			"10000\r\n",					/* unsigned in a signed body */
			"10000;chunk-signature=abc\r\n",
			"10000;chunk-signature=" CHUNK1_SIG "0\r\n",
			"10000;chunk-signature=AD80C730A21E5B8D04586A2213DD63B9A0E99E0E2307B0ADE35A65485A288648\r\n",
			"10000;chunk-signature=" CHUNK1_SIG ";chunk-signature=" CHUNK1_SIG "\r\n",
			"11111111111111111;chunk-signature=" CHUNK1_SIG "\r\n",
		};

		cfg.decoded_length = -1;
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			int ret = decode(&cfg, (const uint8_t *)bad[i], strlen(bad[i]), 0, 0, NULL, NULL);

			if (ret != S3E_CHUNK_MALFORMED)
				fail_msg("%s: %d", bad[i], ret);
		}
		/* data not followed by CRLF */
		{
			struct body s = { 0 };
			uint8_t a[1024];

			memset(a, 'a', sizeof(a));
			body_adds(&s, "400;chunk-signature=" CHUNK1_SIG "\r\n");
			body_add(&s, a, 1024);
			body_adds(&s, "\n\r");
			assert_int_equal(decode(&cfg, s.p, s.len, 0, 0, NULL, NULL), S3E_CHUNK_MALFORMED);
			free(s.p);
		}
		/* an endless chunk header line is cut off */
		{
			size_t n = S3_CHUNK_LINE_MAX + 10;
			uint8_t *l = malloc(n);

			memset(l, '1', n);
			assert_int_equal(decode(&cfg, l, n, 0, 100, NULL, NULL), S3E_CHUNK_MALFORMED);
			free(l);
		}
	}
}

/* The S3 reference's signed-trailer example: same object, CRC32C trailer. */
#define T_SEED		"106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
#define T_CHUNK1	"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
#define T_CHUNK2	"1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
#define T_FINAL		"2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
#define T_TRAILER	"d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"

static struct body aws_trailer_body(bool blank_line)
{
	struct body b = { 0 };
	uint8_t *a = malloc(65536);

	assert_non_null(a);
	memset(a, 'a', 65536);
	body_adds(&b, "10000;chunk-signature=" T_CHUNK1 "\r\n");
	body_add(&b, a, 65536);
	body_adds(&b, "\r\n400;chunk-signature=" T_CHUNK2 "\r\n");
	body_add(&b, a, 1024);
	body_adds(&b, "\r\n0;chunk-signature=" T_FINAL "\r\n");
	if (blank_line)
		body_adds(&b, "\r\n");
	body_adds(&b, "x-amz-checksum-crc32c:sOO8/Q==\r\n"
		      "x-amz-trailer-signature:" T_TRAILER "\r\n\r\n");
	free(a);
	return b;
}

static void test_aws_trailer_example(void **state)
{
	struct s3_auth_result res;
	struct s3_chunked_config cfg = {
		.mode = S3_PAYLOAD_STREAMING_TRAILER, .auth = &res,
		.decoded_length = 66560, .trailer_alg = S3_CKSUM_CRC32C,
	};
	struct body b = aws_trailer_body(false), b2 = aws_trailer_body(true);
	uint8_t crc[S3_CKSUM_MAX_LEN];
	char b64[S3_CKSUM_B64_MAX];

	seed_auth_sig("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", T_SEED, true, &res, 0);
	assert_string_equal(res.seed_signature, T_SEED);
	assert_int_equal(res.payload, S3_PAYLOAD_STREAMING_TRAILER);
	/* the documented checksum is the CRC32C of the object */
	{
		uint8_t *a = malloc(66560);

		memset(a, 'a', 66560);
		s3_cksum_buf(S3_CKSUM_CRC32C, a, 66560, crc);
		s3_base64_encode(crc, 4, b64, sizeof(b64));
		assert_string_equal(b64, "sOO8/Q==");
		free(a);
	}
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), 1);
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 3, NULL, NULL), 1);
	for (size_t s = b.len - 300; s < b.len; s++)
		if (decode(&cfg, b.p, b.len, s, 0, NULL, NULL) != 1)
			fail_msg("split at %zu", s);
	/* some clients send an empty line before the trailers */
	assert_int_equal(decode(&cfg, b2.p, b2.len, 0, 0, NULL, NULL), 1);
	/* the trailer signature covers the checksum line */
	b.p[b.len - 8] ^= 1;
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_CHUNK_SIGNATURE);
	free(b.p);
	free(b2.p);
}

/* Signs chunks the way a client does, for bodies the docs don't cover. */
static void sign_chunk(const struct s3_auth_result *res, char prev[65],
		       const void *data, size_t n)
{
	uint8_t d[32];
	char hex[65], sts[512];

	s3_cksum_buf(S3_CKSUM_SHA256, data, n, d);
	s3_hex(d, 32, hex);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s",
		 res->amz_date, res->scope, prev, s3_sha256_empty_hex(), hex);
	s3_hmac_hex(res->signing_key, sts, strlen(sts), prev);
}

static void test_signed_trailer(void **state)
{
	struct s3_auth_result res;
	struct body b = { 0 };
	char sig[65], line[256], b64[S3_CKSUM_B64_MAX], trailer_sig[65];
	uint8_t data[300], crc[S3_CKSUM_MAX_LEN], d[32];
	struct s3_chunked_config cfg = {
		.mode = S3_PAYLOAD_STREAMING_TRAILER, .auth = &res,
		.decoded_length = sizeof(data), .trailer_alg = S3_CKSUM_CRC32C,
	};
	char sts[512], hex[65];

	seed_auth("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", &res, S3E_SIGNATURE);
	/* the seed above is for the other mode: sign our own seed */
	seed_auth("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &res, 0);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	memcpy(sig, res.seed_signature, 65);
	sign_chunk(&res, sig, data, 200);
	snprintf(line, sizeof(line), "c8;chunk-signature=%s\r\n", sig);
	body_adds(&b, line);
	body_add(&b, data, 200);
	sign_chunk(&res, sig, data + 200, 100);
	snprintf(line, sizeof(line), "\r\n64;chunk-signature=%s\r\n", sig);
	body_adds(&b, line);
	body_add(&b, data + 200, 100);
	sign_chunk(&res, sig, "", 0);
	snprintf(line, sizeof(line), "\r\n0;chunk-signature=%s\r\n", sig);
	body_adds(&b, line);
	s3_cksum_buf(S3_CKSUM_CRC32C, data, sizeof(data), crc);
	s3_base64_encode(crc, 4, b64, sizeof(b64));
	snprintf(line, sizeof(line), "x-amz-checksum-crc32c:%s\n", b64);
	s3_cksum_buf(S3_CKSUM_SHA256, line, strlen(line), d);
	s3_hex(d, 32, hex);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s",
		 res.amz_date, res.scope, sig, hex);
	s3_hmac_hex(res.signing_key, sts, strlen(sts), trailer_sig);
	snprintf(line, sizeof(line), "x-amz-checksum-crc32c:%s\r\nx-amz-trailer-signature:%s\r\n\r\n",
		 b64, trailer_sig);
	body_adds(&b, line);

	for (size_t s = 1; s < b.len; s++)
		if (decode(&cfg, b.p, b.len, s, 0, NULL, NULL) != 1)
			fail_msg("split at %zu", s);
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 1, NULL, NULL), 1);
	{
		struct s3_chunked *dd;
		const uint8_t *p;
		size_t n, dn, off = 0;
		int ret;
		uint8_t got[S3_CKSUM_MAX_LEN];

		assert_int_equal(s3_chunked_new(&cfg, &dd), 0);
		do {
			ret = s3_chunked_decode(dd, b.p + off, b.len - off, &n, &p, &dn);
			off += n;
		} while (ret == 0);
		assert_int_equal(ret, 1);
		assert_int_equal(s3_chunked_decoded(dd), 300);
		assert_int_equal(s3_chunked_trailer_checksum(dd, got), S3_CKSUM_CRC32C);
		assert_memory_equal(got, crc, 4);
		s3_chunked_free(dd);
	}
	/* tampered trailer signature, tampered checksum value */
	b.p[b.len - 5] ^= 1;
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_CHUNK_SIGNATURE);
	b.p[b.len - 5] ^= 1;
	{
		char *at = memmem(b.p, b.len, b64, strlen(b64));

		assert_non_null(at);
		at[0] = at[0] == 'A' ? 'B' : 'A';
		assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_BAD_DIGEST);
	}
	free(b.p);
}

/* What botocore sends for STREAMING-UNSIGNED-PAYLOAD-TRAILER. */
static void test_unsigned_trailer(void **state)
{
	uint8_t data[1500], crc[S3_CKSUM_MAX_LEN];
	char b64[S3_CKSUM_B64_MAX], line[128];
	struct body b = { 0 };
	struct body out = { 0 };
	struct s3_chunked_config cfg = {
		.mode = S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER,
		.decoded_length = sizeof(data), .trailer_alg = S3_CKSUM_CRC32,
	};

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i ^ (i >> 3));
	s3_cksum_buf(S3_CKSUM_CRC32, data, sizeof(data), crc);
	s3_base64_encode(crc, 4, b64, sizeof(b64));
	body_adds(&b, "400\r\n");
	body_add(&b, data, 1024);
	body_adds(&b, "\r\n1dc\r\n");
	body_add(&b, data + 1024, 476);
	snprintf(line, sizeof(line), "\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", b64);
	body_adds(&b, line);

	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, &out, NULL), 1);
	assert_int_equal(out.len, sizeof(data));
	assert_memory_equal(out.p, data, sizeof(data));
	free(out.p);
	for (size_t s = 1; s < b.len; s++)
		if (decode(&cfg, b.p, b.len, s, 0, NULL, NULL) != 1)
			fail_msg("split at %zu", s);

	/* a checksum announced up front as a header instead */
	{
		struct s3_chunked_config hc = cfg;
		struct body nb = { 0 };

		hc.trailer_alg = S3_CKSUM_NONE;
		hc.header_alg = S3_CKSUM_CRC32;
		hc.header_b64 = b64;
		hc.header_b64_len = strlen(b64);
		body_add(&nb, b.p, b.len - strlen(line));
		body_adds(&nb, "\r\n0\r\n\r\n");
		assert_int_equal(decode(&hc, nb.p, nb.len, 0, 0, NULL, NULL), 1);
		hc.header_b64 = "AAAAAA==";
		assert_int_equal(decode(&hc, nb.p, nb.len, 0, 0, NULL, NULL), S3E_BAD_DIGEST);
		/* announced as a trailer, never sent: the decoder keeps
		 * waiting for it (the HTTP layer then sees an incomplete body) */
		assert_int_equal(decode(&cfg, nb.p, nb.len, 0, 0, NULL, NULL), 0);
		free(nb.p);
	}
	/* a corrupted data byte: the checksum catches it */
	b.p[10] ^= 0x40;
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_BAD_DIGEST);
	b.p[10] ^= 0x40;
	/* an unannounced checksum trailer, a trailer signature in an unsigned body */
	cfg.trailer_alg = S3_CKSUM_CRC32C;
	assert_int_equal(decode(&cfg, b.p, b.len, 0, 0, NULL, NULL), S3E_CHUNK_MALFORMED);
	free(b.p);
	{
		static const char sigbody[] = "0\r\nx-amz-trailer-signature:"
			"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n";

		cfg.trailer_alg = S3_CKSUM_NONE;
		cfg.decoded_length = 0;
		assert_int_equal(decode(&cfg, (const uint8_t *)sigbody, strlen(sigbody), 0, 0,
					NULL, NULL), S3E_CHUNK_MALFORMED);
	}
	/* too many trailers */
	{
		struct body t = { 0 };

		body_adds(&t, "0\r\n");
		for (int i = 0; i < 20; i++)
			body_adds(&t, "x-foo:bar\r\n");
		body_adds(&t, "\r\n");
		cfg.decoded_length = 0;
		assert_int_equal(decode(&cfg, t.p, t.len, 0, 0, NULL, NULL), S3E_CHUNK_MALFORMED);
		free(t.p);
	}
}

static void hdrs(struct s3_header *h, const char *const (*hv)[2], size_t n)
{
	for (size_t i = 0; i < n; i++)
		h[i] = (struct s3_header){ hv[i][0], strlen(hv[i][0]), hv[i][1], strlen(hv[i][1]) };
}

static void test_config(void **state)
{
	struct s3_chunked *d;
	struct s3_chunked_config cfg = { .mode = S3_PAYLOAD_STREAMING };
	struct s3_auth_result res = { .payload = S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER };
	struct s3_header h[4];

	/* from the request headers */
	{
		static const char *const hv[][2] = {
			{ "X-Amz-Decoded-Content-Length", " 1500 " },
			{ "x-amz-trailer", "x-amz-checksum-crc32" },
			{ "x-amz-checksum-sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" },
		};

		hdrs(h, hv, 3);
		assert_int_equal(s3_chunked_config_init(&cfg, &res, h, 3), 0);
		assert_int_equal(cfg.mode, S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER);
		assert_int_equal(cfg.decoded_length, 1500);
		assert_int_equal(cfg.trailer_alg, S3_CKSUM_CRC32);
		assert_int_equal(cfg.header_alg, S3_CKSUM_SHA256);
		assert_int_equal(cfg.header_b64_len, 44);
		assert_int_equal(s3_chunked_config_init(&cfg, &res, h + 1, 2), S3E_MISSING_LENGTH);
		h[0].value = "15x0";
		h[0].value_len = 4;
		assert_int_equal(s3_chunked_config_init(&cfg, &res, h, 3), S3E_MISSING_LENGTH);
		h[0].value = "0";
		h[0].value_len = 1;
		h[1].value = "x-amz-checksum-md5";
		h[1].value_len = 18;
		assert_int_equal(s3_chunked_config_init(&cfg, &res, h, 3), S3E_BAD_TRAILER);
		res.payload = S3_PAYLOAD_STREAMING;	/* no trailers in this mode */
		h[1].value = "x-amz-checksum-crc32";
		h[1].value_len = 20;
		assert_int_equal(s3_chunked_config_init(&cfg, &res, h, 3), S3E_BAD_TRAILER);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.mode = S3_PAYLOAD_STREAMING;

	assert_int_equal(s3_chunked_new(&cfg, &d), -EINVAL);	/* no auth */
	cfg.mode = S3_PAYLOAD_UNSIGNED;
	assert_int_equal(s3_chunked_new(&cfg, &d), -EINVAL);
	cfg.mode = S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
	cfg.trailer_alg = S3_CKSUM_MD5;
	assert_int_equal(s3_chunked_new(&cfg, &d), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_example),
		cmocka_unit_test(test_aws_example_tampered),
		cmocka_unit_test(test_aws_trailer_example),
		cmocka_unit_test(test_signed_trailer),
		cmocka_unit_test(test_unsigned_trailer),
		cmocka_unit_test(test_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
