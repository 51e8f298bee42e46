/* checksum.c: streaming object checksums (CRC32, CRC32C with ISA-L; SHA-1,
 * SHA-256, MD5 with OpenSSL EVP) and the base64/hex forms S3 sends them in. */
#include "internal.h"

#include <errno.h>
#include <isa-l/crc.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>
#include <stdio.h>
#include <string.h>
#include "common.h"

struct s3_cksum_desc {
	const char *name;
	const char *header;
	size_t len;
};

static const struct s3_cksum_desc s3_cksums[] = {
	[S3_CKSUM_NONE] = { "NONE", NULL, 0 },
	[S3_CKSUM_CRC32] = { "CRC32", "x-amz-checksum-crc32", 4 },
	[S3_CKSUM_CRC32C] = { "CRC32C", "x-amz-checksum-crc32c", 4 },
	[S3_CKSUM_SHA1] = { "SHA1", "x-amz-checksum-sha1", 20 },
	[S3_CKSUM_SHA256] = { "SHA256", "x-amz-checksum-sha256", 32 },
	[S3_CKSUM_MD5] = { "MD5", NULL, 16 },
	[S3_CKSUM_CRC64NVME] = { "CRC64NVME", "x-amz-checksum-crc64nvme", 8 },
};

/* CRC-64/NVME: poly 0xad93d23594c93659, reflected (0x9a6c9329ac4bc9b5),
 * init and xorout all ones. ISA-L has it as crc64_rocksoft_refl only from
 * 2.31, newer than Debian 12's 2.30: a byte-wise table here. */
static uint64_t s3_crc64_table[256];
static pthread_once_t s3_crc64_once = PTHREAD_ONCE_INIT;

static void s3_crc64_init_table(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint64_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x9a6c9329ac4bc9b5ull : c >> 1;
		s3_crc64_table[i] = c;
	}
}

static uint64_t s3_crc64_update(uint64_t crc, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		crc = s3_crc64_table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
	return crc;
}

static bool s3_cksum_valid(enum s3_cksum_alg alg)
{
	return (unsigned)alg < sizeof(s3_cksums) / sizeof(s3_cksums[0]);
}

static const EVP_MD *s3_cksum_md(enum s3_cksum_alg alg)
{
	switch (alg) {
	case S3_CKSUM_SHA1:	return EVP_sha1();
	case S3_CKSUM_SHA256:	return EVP_sha256();
	case S3_CKSUM_MD5:	return EVP_md5();
	default:		return NULL;
	}
}

int s3_cksum_init(struct s3_cksum *c, enum s3_cksum_alg alg)
{
	const EVP_MD *md;

	memset(c, 0, sizeof(*c));
	if (!s3_cksum_valid(alg))
		return -EINVAL;
	c->alg = alg;
	/* CRC32 (gzip flavour) takes and returns the finished value, so its
	 * running state starts at 0; crc32_iscsi works on the raw register,
	 * which starts all ones and is inverted at the end. */
	c->crc = alg == S3_CKSUM_CRC32C ? 0xffffffffu : 0;
	c->crc64 = ~0ull;
	if (alg == S3_CKSUM_CRC64NVME)
		pthread_once(&s3_crc64_once, s3_crc64_init_table);
	md = s3_cksum_md(alg);
	if (md) {
		c->md = EVP_MD_CTX_new();
		if (!c->md || !EVP_DigestInit_ex(c->md, md, NULL)) {
			EVP_MD_CTX_free(c->md);
			c->md = NULL;
			c->alg = S3_CKSUM_NONE;
			return -ENOMEM;
		}
	}
	return 0;
}

void s3_cksum_update(struct s3_cksum *c, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n) {
		/* The ISA-L CRCs take a 64-bit length, but stay portable. */
		size_t step = n > (1u << 30) ? (1u << 30) : n;

		switch (c->alg) {
		case S3_CKSUM_CRC32:
			c->crc = crc32_gzip_refl(c->crc, s, step);
			break;
		case S3_CKSUM_CRC32C:
			c->crc = crc32_iscsi((unsigned char *)s, (int)step, c->crc);
			break;
		case S3_CKSUM_CRC64NVME:
			c->crc64 = s3_crc64_update(c->crc64, s, step);
			break;
		case S3_CKSUM_SHA1:
		case S3_CKSUM_SHA256:
		case S3_CKSUM_MD5:
			EVP_DigestUpdate(c->md, s, step);
			break;
		default:
			return;
		}
		s += step;
		n -= step;
	}
}

static void s3_put_be32(uint8_t *out, uint32_t v)
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

size_t s3_cksum_final(struct s3_cksum *c, uint8_t *out)
{
	unsigned int len = 0;

	switch (c->alg) {
	case S3_CKSUM_CRC32:
		s3_put_be32(out, c->crc);
		return 4;
	case S3_CKSUM_CRC32C:
		s3_put_be32(out, ~c->crc);
		return 4;
	case S3_CKSUM_CRC64NVME:
		s3_put_be32(out, (uint32_t)(~c->crc64 >> 32));
		s3_put_be32(out + 4, (uint32_t)~c->crc64);
		return 8;
	case S3_CKSUM_SHA1:
	case S3_CKSUM_SHA256:
	case S3_CKSUM_MD5:
		if (!EVP_DigestFinal_ex(c->md, out, &len))
			return 0;
		return len;
	default:
		return 0;
	}
}

void s3_cksum_free(struct s3_cksum *c)
{
	EVP_MD_CTX_free(c->md);
	memset(c, 0, sizeof(*c));
}

size_t s3_cksum_buf(enum s3_cksum_alg alg, const void *p, size_t n,
		    uint8_t *out)
{
	struct s3_cksum c;
	size_t len;

	if (s3_cksum_init(&c, alg) < 0)
		return 0;
	s3_cksum_update(&c, p, n);
	len = s3_cksum_final(&c, out);
	s3_cksum_free(&c);
	return len;
}

size_t s3_cksum_len(enum s3_cksum_alg alg)
{
	return s3_cksum_valid(alg) ? s3_cksums[alg].len : 0;
}

const char *s3_cksum_name(enum s3_cksum_alg alg)
{
	return s3_cksum_valid(alg) ? s3_cksums[alg].name : "NONE";
}

const char *s3_cksum_header(enum s3_cksum_alg alg)
{
	return s3_cksum_valid(alg) ? s3_cksums[alg].header : NULL;
}

enum s3_cksum_alg s3_cksum_alg_from_name(const char *s, size_t n)
{
	for (unsigned i = S3_CKSUM_CRC32; i < S3_CKSUM_END; i++)
		if (i != S3_CKSUM_MD5 && strlen(s3_cksums[i].name) == n &&
		    !strncasecmp(s, s3_cksums[i].name, n))
			return (enum s3_cksum_alg)i;
	return S3_CKSUM_NONE;
}

enum s3_cksum_alg s3_cksum_alg_from_header(const char *s, size_t n)
{
	for (unsigned i = S3_CKSUM_CRC32; i < S3_CKSUM_END; i++)
		if (s3_cksums[i].header && strlen(s3_cksums[i].header) == n &&
		    !strncasecmp(s, s3_cksums[i].header, n))
			return (enum s3_cksum_alg)i;
	return S3_CKSUM_NONE;
}

bool s3_cksum_is_crc(enum s3_cksum_alg alg)
{
	return alg == S3_CKSUM_CRC32 || alg == S3_CKSUM_CRC32C ||
	       alg == S3_CKSUM_CRC64NVME;
}

/* Polynomial arithmetic modulo a reflected CRC polynomial of w bits, as in
 * zlib's crc32.c (multmodp, x2nmodp): bit w-1 holds x^0. a * b mod P. */
static uint64_t crc_multmodp(uint64_t a, uint64_t b, uint64_t poly, unsigned w)
{
	uint64_t p = 0;

	for (uint64_t m = 1ull << (w - 1); m && a; m >>= 1) {
		if (a & m) {
			p ^= b;
			a &= ~m;
		}
		b = b & 1 ? (b >> 1) ^ poly : b >> 1;
	}
	return p;
}

/* x^(8n) mod P: square-and-multiply over the bits of n. */
static uint64_t crc_x8nmodp(uint64_t n, uint64_t poly, unsigned w)
{
	uint64_t p = 1ull << (w - 1);		/* x^0 */
	uint64_t sq = 1ull << (w - 2);		/* x^1, squared to x^8 */

	for (int i = 0; i < 3; i++)
		sq = crc_multmodp(sq, sq, poly, w);
	for (; n; n >>= 1) {
		if (n & 1)
			p = crc_multmodp(sq, p, poly, w);
		sq = crc_multmodp(sq, sq, poly, w);
	}
	return p;
}

static uint64_t crc_get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int s3_cksum_combine(enum s3_cksum_alg alg, uint8_t *a, const uint8_t *b,
		     uint64_t len_b)
{
	uint64_t poly, ca, cb;
	unsigned w;

	switch (alg) {
	case S3_CKSUM_CRC32:	 poly = 0xedb88320u; w = 32; break;
	case S3_CKSUM_CRC32C:	 poly = 0x82f63b78u; w = 32; break;
	case S3_CKSUM_CRC64NVME: poly = 0x9a6c9329ac4bc9b5ull; w = 64; break;
	default:		 return -EINVAL;
	}
	ca = crc_get_be(a, w / 8);
	cb = crc_get_be(b, w / 8);
	ca = crc_multmodp(crc_x8nmodp(len_b, poly, w), ca, poly, w) ^ cb;
	for (unsigned i = 0; i < w / 8; i++)
		a[i] = (uint8_t)(ca >> (w - 8 - 8 * i));
	return 0;
}

int s3_cksum_check_b64(enum s3_cksum_alg alg, const uint8_t *digest,
		       const char *b64, size_t b64_len)
{
	uint8_t got[S3_CKSUM_MAX_LEN + 3];
	size_t want = s3_cksum_len(alg);
	int n;

	if (!want)
		return -EINVAL;
	n = s3_base64_decode(b64, b64_len, got, sizeof(got));
	if (n < 0 || (size_t)n != want)
		return S3E_INVALID_DIGEST;
	return CRYPTO_memcmp(got, digest, want) ? S3E_BAD_DIGEST : 0;
}

int s3_base64_encode(const void *in, size_t n, char *out, size_t out_cap)
{
	size_t need;

	if (n > (size_t)INT32_MAX / 2)
		return -E2BIG;
	need = 4 * ((n + 2) / 3) + 1;
	if (out_cap < need)
		return -ENOSPC;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static bool s3_is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int s3_base64_decode(const char *in, size_t n, uint8_t *out, size_t out_cap)
{
	size_t pad = 0, len;
	int got;

	/* EVP_DecodeBlock skips whitespace and ignores padding in its count, so
	 * check the strict form first: groups of 4, '=' only at the end. */
	if (n % 4 || n > (size_t)INT32_MAX / 2)
		return -EINVAL;
	if (n && in[n - 1] == '=')
		pad = (n >= 2 && in[n - 2] == '=') ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (!s3_is_b64(in[i]))
			return -EINVAL;
	len = n / 4 * 3 - pad;
	if (len > out_cap)
		return -ENOSPC;
	if (n == 0)
		return 0;
	{
		/* DecodeBlock writes whole groups: decode into room for them. */
		uint8_t tmp[3 * 64];
		size_t done = 0;

		while (done < n) {
			size_t step = n - done > 4 * 64 ? 4 * 64 : n - done;
			size_t outn = step / 4 * 3;

			got = EVP_DecodeBlock(tmp, (const unsigned char *)in + done, (int)step);
			if (got < 0 || (size_t)got != outn)
				return -EINVAL;
			if (done + step == n)
				outn -= pad;
			memcpy(out + done / 4 * 3, tmp, outn);
			done += step;
		}
	}
	return (int)len;
}

void s3_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int s3_unhex(const char *in, size_t in_len, uint8_t *out, size_t n)
{
	if (in_len != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = strata_hexval(in[2 * i]), lo = strata_hexval(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void s3_etag_from_md5(const uint8_t md5[16], char out[S3_ETAG_MAX])
{
	out[0] = '"';
	s3_hex(md5, 16, out + 1);
	out[33] = '"';
	out[34] = '\0';
}

int s3_etag_multipart(const uint8_t (*part_md5)[16], size_t n,
		      char out[S3_ETAG_MAX])
{
	struct s3_cksum c;
	uint8_t d[S3_CKSUM_MAX_LEN];
	int ret;

	if (n == 0 || n > 100000)
		return -EINVAL;
	if ((ret = s3_cksum_init(&c, S3_CKSUM_MD5)) < 0)
		return ret;
	for (size_t i = 0; i < n; i++)
		s3_cksum_update(&c, part_md5[i], 16);
	s3_cksum_final(&c, d);
	s3_cksum_free(&c);
	out[0] = '"';
	s3_hex(d, 16, out + 1);
	snprintf(out + 33, S3_ETAG_MAX - 33, "-%zu\"", n);
	return 0;
}

int s3_etag_parse(const char *s, size_t n, uint8_t md5[16])
{
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	return s3_unhex(s, n, md5, 16);
}
