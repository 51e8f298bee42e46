/* libFuzzer target: the aws-chunked decoder (api/chunked.c).
 *
 * The first byte picks the mode, the trailer checksum and how the input is
 * cut into reads; the rest is the body. Whatever the bytes and the cuts,
 * the decoder must not crash, leak or hand out data outside the input, the
 * data it hands out must never exceed what was fed, and the verdict must not
 * depend on how the input was cut.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int run(const struct s3_chunked_config *cfg, const uint8_t *p, size_t n,
	       size_t step, uint64_t *decoded)
{
	struct s3_chunked *d;
	size_t off = 0;
	int ret = 0;

	if (s3_chunked_new(cfg, &d))
		abort();
	while (off < n && ret == 0) {
		size_t piece = step && step < n - off ? step : n - off, used = 0;

		while (used < piece && ret == 0) {
			const uint8_t *data;
			size_t c, dn;

			ret = s3_chunked_decode(d, p + off + used, piece - used, &c, &data, &dn);
			if (c > piece - used || (dn && (data < p + off + used ||
							data + dn > p + off + used + c)))
				abort();
			if (ret == 0 && c == 0)
				abort();	/* no progress */
			used += c;
		}
		off += used;
	}
	*decoded = s3_chunked_decoded(d);
	if (*decoded > n)
		abort();
	s3_chunked_free(d);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum s3_payload_mode modes[] = {
		S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER, S3_PAYLOAD_STREAMING,
		S3_PAYLOAD_STREAMING_TRAILER, S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER,
	};
	static const enum s3_cksum_alg algs[] = {
		S3_CKSUM_NONE, S3_CKSUM_CRC32, S3_CKSUM_CRC32C, S3_CKSUM_SHA256,
	};
	struct s3_auth_result auth = { 0 };
	struct s3_chunked_config cfg = { .decoded_length = -1 };
	uint64_t d1, d2;
	int r1, r2;

	if (size < 1)
		return 0;
	cfg.mode = modes[data[0] & 3];
	cfg.trailer_alg = algs[(data[0] >> 2) & 3];
	if (data[0] & 0x80)
		cfg.decoded_length = (int64_t)(size / 2);
	/* the AWS example's signing context */
	memcpy(auth.amz_date, "20130524T000000Z", 17);
	strcpy(auth.scope, "20130524/us-east-1/s3/aws4_request");
	strcpy(auth.seed_signature,
	       "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
	memset(auth.signing_key, 0x5a, sizeof(auth.signing_key));
	cfg.auth = &auth;

	r1 = run(&cfg, data + 1, size - 1, 0, &d1);
	r2 = run(&cfg, data + 1, size - 1, ((data[0] >> 4) & 7) + 1, &d2);
	if (r1 != r2 || (r1 == 1 && d1 != d2))
		abort();	/* the verdict depends on the cuts */
	return 0;
}
