/* body.c: the digests of an object body, computed in one pass. */
#include "internal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>

static bool s3_streaming(enum s3_payload_mode m)
{
	return m == S3_PAYLOAD_STREAMING || m == S3_PAYLOAD_STREAMING_TRAILER ||
	       m == S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
}

static int digest_init(struct s3_body_digest *d, const struct s3_auth_result *res,
		       const struct s3_header *h, size_t n)
{
	const struct s3_header *x;
	bool streaming = res && s3_streaming(res->payload);
	int ret;

	memset(d, 0, sizeof(*d));
	if ((ret = s3_cksum_init(&d->md5, S3_CKSUM_MD5)) < 0)
		return ret;
	if ((x = s3_header_find(h, n, "content-md5"))) {
		uint8_t tmp[S3_CKSUM_MAX_LEN];
		int len = s3_base64_decode(x->value, x->value_len, tmp, sizeof(tmp));

		if (len != 16)
			return S3E_INVALID_DIGEST;
		memcpy(d->want_md5, tmp, 16);
		d->have_md5_header = true;
	}
	if (res && res->payload == S3_PAYLOAD_SHA256) {
		if ((ret = s3_cksum_init(&d->sha256, S3_CKSUM_SHA256)) < 0)
			return ret;
		memcpy(d->want_sha256, res->payload_sha256, 32);
		d->check_sha256 = true;
	}
	if (streaming)
		return 0;	/* the chunk decoder checks x-amz-checksum-* */
	for (int alg = S3_CKSUM_CRC32; alg < S3_CKSUM_END; alg++) {
		if (!s3_cksum_header(alg) ||
		    !(x = s3_header_find(h, n, s3_cksum_header(alg))))
			continue;
		if (d->extra.alg != S3_CKSUM_NONE)
			return S3E_INVALID_DIGEST;
		if ((ret = s3_cksum_init(&d->extra, alg)) < 0)
			return ret;
		d->extra_b64 = x->value;
		d->extra_b64_len = x->value_len;
	}
	if ((x = s3_header_find(h, n, "x-amz-sdk-checksum-algorithm"))) {
		enum s3_cksum_alg alg = s3_cksum_alg_from_name(x->value, x->value_len);

		/* the algorithm named must be the one whose value came */
		if (d->extra.alg != S3_CKSUM_NONE && alg != d->extra.alg)
			return S3E_INVALID_DIGEST;
	}
	return 0;
}

int s3_body_digest_init(struct s3_body_digest *d, const struct s3_auth_result *res,
			const struct s3_header *h, size_t n)
{
	int ret = digest_init(d, res, h, n);

	if (ret < 0)
		s3_body_digest_free(d);	/* refused after a digest began */
	return ret;
}

void s3_body_digest_update(struct s3_body_digest *d, const void *p, size_t n)
{
	s3_cksum_update(&d->md5, p, n);
	s3_cksum_update(&d->sha256, p, n);
	s3_cksum_update(&d->extra, p, n);
}

int s3_body_digest_final(struct s3_body_digest *d, uint8_t md5[16],
			 enum s3_cksum_alg *alg, uint8_t cksum[S3_CKSUM_MAX_LEN])
{
	uint8_t buf[S3_CKSUM_MAX_LEN];
	int ret;

	*alg = S3_CKSUM_NONE;
	s3_cksum_final(&d->md5, buf);
	memcpy(md5, buf, 16);
	if (d->check_sha256) {
		s3_cksum_final(&d->sha256, buf);
		if (CRYPTO_memcmp(buf, d->want_sha256, 32))
			return S3E_CONTENT_SHA256_MISMATCH;
	}
	if (d->have_md5_header && CRYPTO_memcmp(md5, d->want_md5, 16))
		return S3E_BAD_DIGEST;
	if (d->extra.alg != S3_CKSUM_NONE) {
		s3_cksum_final(&d->extra, cksum);
		ret = s3_cksum_check_b64(d->extra.alg, cksum, d->extra_b64,
					 d->extra_b64_len);
		/* A checksum value that is not the algorithm's digest at
		 * all is a BadDigest too (as s3-tests expects); only
		 * Content-MD5 has InvalidDigest. */
		if (ret)
			return S3E_BAD_DIGEST;
		*alg = d->extra.alg;
	}
	return 0;
}

void s3_body_digest_free(struct s3_body_digest *d)
{
	s3_cksum_free(&d->md5);
	s3_cksum_free(&d->sha256);
	s3_cksum_free(&d->extra);
}
