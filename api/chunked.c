/* chunked.c: resumable decoder for Content-Encoding: aws-chunked bodies.
 *
 * Signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]):
 *   10000;chunk-signature=<64 hex>\r\n <65536 bytes> \r\n
 *   ...
 *   0;chunk-signature=<64 hex>\r\n
 *   [x-amz-checksum-crc32c:<b64>\r\n x-amz-trailer-signature:<64 hex>\r\n]
 *   \r\n
 * Unsigned (STREAMING-UNSIGNED-PAYLOAD-TRAILER): the same without
 * signatures ("10000\r\n ... 0\r\n x-amz-checksum-crc32:<b64>\r\n \r\n").
 *
 * Chunk n's signature is HMAC(signing key, "AWS4-HMAC-SHA256-PAYLOAD\n" date
 * "\n" scope "\n" sig(n-1) "\n" sha256("") "\n" sha256(chunk n)), starting
 * from the request's seed signature; the trailer's is HMAC(key,
 * "AWS4-HMAC-SHA256-TRAILER\n" date "\n" scope "\n" sig(last chunk) "\n"
 * sha256(trailer lines as "name:value\n")). SHA-256 runs over the data as it
 * passes, so a chunk is never buffered: its bytes are handed out as they
 * arrive and the verdict comes at the chunk's end (see internal.h: the
 * consumer commits nothing before s3_chunked_decode() returns 1).
 */
#include "internal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S3_MAX_TRAILERS		8

enum s3_chunked_state {
	ST_HEADER,		/* reading "hex[;ext]\r\n" into line */
	ST_DATA,		/* chunk bytes */
	ST_DATA_CR,		/* "\r" after the data */
	ST_DATA_LF,		/* "\n" after the data */
	ST_TRAILER,		/* trailer lines until an empty one */
	ST_DONE,
	ST_FAILED,
};

struct s3_chunked {
	enum s3_chunked_state state;
	int result;			/* ST_DONE: 1; ST_FAILED: the error */
	enum s3_payload_mode mode;
	bool signed_chunks;
	bool trailer_mode;

	/* signing */
	uint8_t key[32];
	char amz_date[17];
	char scope[S3_SCOPE_MAX];
	char prev_sig[65];
	char chunk_sig[65];		/* signature claimed for the current chunk */
	struct s3_cksum chunk_sha;	/* SHA-256 of the current chunk */

	/* lengths */
	int64_t decoded_length;		/* -1: unchecked */
	uint64_t decoded;
	uint64_t remaining;		/* of the current chunk */
	bool last_chunk;

	/* checksums of the decoded data */
	enum s3_cksum_alg trailer_alg;
	enum s3_cksum_alg header_alg;
	char header_b64[S3_CKSUM_B64_MAX];
	size_t header_b64_len;
	struct s3_cksum trailer_ck, header_ck;
	bool trailer_seen;
	uint8_t trailer_digest[S3_CKSUM_MAX_LEN];

	/* trailers */
	unsigned n_trailers;
	/* Some clients put an empty line between the last chunk and the
	 * trailers ("0;chunk-signature=...\r\n\r\nx-amz-checksum-...");
	 * while an announced trailer is still to come, one is skipped. */
	bool blank_skipped;
	struct s3_buf trailers;		/* canonical "name:value\n" lines */
	bool trailer_sig_seen;
	char trailer_sig[65];

	/* the line being assembled (chunk header or trailer) */
	size_t line_len;
	char line[S3_CHUNK_LINE_MAX];
};

static const char *s3_trim_value(const struct s3_header *h, size_t *n)
{
	const char *v = h->value;
	size_t len = h->value_len;

	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	*n = len;
	return v;
}

int s3_chunked_config_init(struct s3_chunked_config *cfg,
			   const struct s3_auth_result *auth,
			   const struct s3_header *h, size_t n)
{
	const struct s3_header *x;
	const char *v;
	size_t len;
	int64_t dl = 0;

	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = auth->payload;
	cfg->auth = auth;
	x = s3_header_find(h, n, "x-amz-decoded-content-length");
	if (!x)
		return S3E_MISSING_LENGTH;
	v = s3_trim_value(x, &len);
	if (len == 0 || len > 15)
		return S3E_MISSING_LENGTH;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return S3E_MISSING_LENGTH;
		dl = dl * 10 + (v[i] - '0');
	}
	cfg->decoded_length = dl;
	if ((x = s3_header_find(h, n, "x-amz-trailer"))) {
		v = s3_trim_value(x, &len);
		cfg->trailer_alg = s3_cksum_alg_from_header(v, len);
		if (cfg->trailer_alg == S3_CKSUM_NONE ||
		    auth->payload == S3_PAYLOAD_STREAMING)
			return S3E_BAD_TRAILER;
	}
	for (int alg = S3_CKSUM_CRC32; alg < S3_CKSUM_END; alg++) {
		if (!s3_cksum_header(alg) ||
		    !(x = s3_header_find(h, n, s3_cksum_header(alg))))
			continue;
		v = s3_trim_value(x, &len);
		if (cfg->header_alg != S3_CKSUM_NONE || len >= S3_CKSUM_B64_MAX)
			return S3E_INVALID_DIGEST;
		cfg->header_alg = (enum s3_cksum_alg)alg;
		cfg->header_b64 = v;
		cfg->header_b64_len = len;
	}
	return 0;
}

int s3_chunked_new(const struct s3_chunked_config *cfg, struct s3_chunked **out)
{
	struct s3_chunked *d;
	int ret;

	switch (cfg->mode) {
	case S3_PAYLOAD_STREAMING:
	case S3_PAYLOAD_STREAMING_TRAILER:
	case S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER:
		break;
	default:
		return -EINVAL;
	}
	if (cfg->mode != S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER && !cfg->auth)
		return -EINVAL;
	if (cfg->trailer_alg == S3_CKSUM_MD5 || cfg->header_alg == S3_CKSUM_MD5 ||
	    (cfg->header_alg != S3_CKSUM_NONE &&
	     (!cfg->header_b64 || cfg->header_b64_len >= S3_CKSUM_B64_MAX)))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->mode = cfg->mode;
	d->signed_chunks = cfg->mode != S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER;
	d->trailer_mode = cfg->mode != S3_PAYLOAD_STREAMING;
	d->decoded_length = cfg->decoded_length;
	d->trailer_alg = cfg->trailer_alg;
	d->header_alg = cfg->header_alg;
	d->trailers.max = S3_CHUNK_LINE_MAX * S3_MAX_TRAILERS;
	if (d->signed_chunks) {
		memcpy(d->key, cfg->auth->signing_key, 32);
		memcpy(d->amz_date, cfg->auth->amz_date, sizeof(d->amz_date));
		memcpy(d->scope, cfg->auth->scope, sizeof(d->scope));
		memcpy(d->prev_sig, cfg->auth->seed_signature, sizeof(d->prev_sig));
		d->amz_date[sizeof(d->amz_date) - 1] = '\0';
		d->scope[sizeof(d->scope) - 1] = '\0';
		d->prev_sig[64] = '\0';
	}
	if (cfg->header_alg != S3_CKSUM_NONE) {
		memcpy(d->header_b64, cfg->header_b64, cfg->header_b64_len);
		d->header_b64_len = cfg->header_b64_len;
	}
	if ((ret = s3_cksum_init(&d->trailer_ck, cfg->trailer_alg)) < 0 ||
	    (ret = s3_cksum_init(&d->header_ck, cfg->header_alg)) < 0) {
		s3_chunked_free(d);
		return ret;
	}
	*out = d;
	return 0;
}

void s3_chunked_free(struct s3_chunked *d)
{
	if (!d)
		return;
	s3_cksum_free(&d->chunk_sha);
	s3_cksum_free(&d->trailer_ck);
	s3_cksum_free(&d->header_ck);
	s3_buf_free(&d->trailers);
	OPENSSL_cleanse(d->key, sizeof(d->key));
	free(d);
}

uint64_t s3_chunked_decoded(const struct s3_chunked *d)
{
	return d->decoded;
}

enum s3_cksum_alg s3_chunked_trailer_checksum(const struct s3_chunked *d,
					      uint8_t out[S3_CKSUM_MAX_LEN])
{
	if (d->state != ST_DONE || !d->trailer_seen)
		return S3_CKSUM_NONE;
	memcpy(out, d->trailer_digest, S3_CKSUM_MAX_LEN);
	return d->trailer_alg;
}

static int s3_chunked_fail(struct s3_chunked *d, int err)
{
	d->state = ST_FAILED;
	d->result = err;
	return err;
}

static bool s3_is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Checks the signature claimed for the chunk just read against the SHA-256
 * of its data (chunk_sha), and moves the chain on. */
static int s3_chunk_verify(struct s3_chunked *d)
{
	uint8_t digest[32];
	char hex[65], sig[65];
	struct s3_buf sts = { .max = 1024 };
	int ret;

	s3_cksum_final(&d->chunk_sha, digest);
	s3_cksum_free(&d->chunk_sha);
	s3_hex(digest, 32, hex);
	ret = s3_buf_printf(&sts, "AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s",
			    d->amz_date, d->scope, d->prev_sig,
			    s3_sha256_empty_hex(), hex);
	if (ret < 0)
		return ret;
	s3_hmac_hex(d->key, sts.p, sts.len, sig);
	s3_buf_free(&sts);
	if (CRYPTO_memcmp(sig, d->chunk_sig, 64))
		return S3E_CHUNK_SIGNATURE;
	memcpy(d->prev_sig, sig, sizeof(sig));
	return 0;
}

/* "hex-size[;chunk-signature=sig][;other]" */
static int s3_chunk_header(struct s3_chunked *d, const char *l, size_t n)
{
	uint64_t size = 0;
	size_t i = 0;
	bool have_sig = false;
	int ret;

	while (i < n && l[i] != ';') {
		char c = l[i];
		int v = (c >= '0' && c <= '9') ? c - '0' :
			(c >= 'a' && c <= 'f') ? c - 'a' + 10 :
			(c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;

		if (v < 0 || i >= 16)
			return S3E_CHUNK_MALFORMED;
		size = size << 4 | (uint64_t)v;
		i++;
	}
	if (i == 0 || size > S3_CHUNK_MAX_SIZE)
		return S3E_CHUNK_MALFORMED;
	while (i < n) {			/* extensions: ";name=value" */
		size_t start = ++i, end;

		while (i < n && l[i] != ';')
			i++;
		end = i;
		if (end - start == 16 + 64 && !memcmp(l + start, "chunk-signature=", 16)) {
			if (have_sig || !s3_is_lower_hex(l + start + 16, 64))
				return S3E_CHUNK_MALFORMED;
			memcpy(d->chunk_sig, l + start + 16, 64);
			d->chunk_sig[64] = '\0';
			have_sig = true;
		} else if (d->signed_chunks && end - start >= 16 &&
			   !memcmp(l + start, "chunk-signature=", 16)) {
			return S3E_CHUNK_MALFORMED;
		}
	}
	if (d->signed_chunks && !have_sig)
		return S3E_CHUNK_MALFORMED;
	if (d->decoded_length >= 0 && size > (uint64_t)d->decoded_length - d->decoded)
		return S3E_CHUNK_MALFORMED;	/* more data than announced */

	d->remaining = size;
	d->last_chunk = size == 0;
	if (d->signed_chunks) {
		ret = s3_cksum_init(&d->chunk_sha, S3_CKSUM_SHA256);
		if (ret < 0)
			return ret;
		if (size == 0 && (ret = s3_chunk_verify(d)))
			return ret;
	}
	d->state = size ? ST_DATA : ST_TRAILER;
	return 0;
}

/* One trailer line "name:value" (the empty line ends the body). */
static int s3_trailer_line(struct s3_chunked *d, const char *l, size_t n)
{
	const char *colon = memchr(l, ':', n), *v;
	size_t nn, vn;
	enum s3_cksum_alg alg;
	int ret;

	if (!colon || colon == l || ++d->n_trailers > S3_MAX_TRAILERS)
		return S3E_CHUNK_MALFORMED;
	nn = (size_t)(colon - l);
	v = colon + 1;
	vn = n - nn - 1;
	while (vn && (*v == ' ' || *v == '\t')) {
		v++;
		vn--;
	}
	while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
		vn--;
	if (nn == 23 && !strncasecmp(l, "x-amz-trailer-signature", 23)) {
		if (!d->signed_chunks || d->trailer_sig_seen || vn != 64 ||
		    !s3_is_lower_hex(v, 64))
			return S3E_CHUNK_MALFORMED;
		memcpy(d->trailer_sig, v, 64);
		d->trailer_sig[64] = '\0';
		d->trailer_sig_seen = true;
		return 0;
	}
	if (d->trailer_sig_seen)	/* the signature comes last */
		return S3E_CHUNK_MALFORMED;
	alg = s3_cksum_alg_from_header(l, nn);
	if (alg != S3_CKSUM_NONE) {
		if (alg != d->trailer_alg || d->trailer_seen)
			return S3E_CHUNK_MALFORMED;
		s3_cksum_final(&d->trailer_ck, d->trailer_digest);
		ret = s3_cksum_check_b64(alg, d->trailer_digest, v, vn);
		if (ret)
			return S3E_BAD_DIGEST;	/* undecodable too, as body.c */
		d->trailer_seen = true;
	}
	/* canonical form: lowercase name, trimmed value */
	for (size_t i = 0; i < nn; i++) {
		char c = l[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((ret = s3_buf_addc(&d->trailers, c)) < 0)
			return ret == -E2BIG ? S3E_CHUNK_MALFORMED : ret;
	}
	if ((ret = s3_buf_addc(&d->trailers, ':')) < 0 ||
	    (ret = s3_buf_add(&d->trailers, v, vn)) < 0 ||
	    (ret = s3_buf_addc(&d->trailers, '\n')) < 0)
		return ret == -E2BIG ? S3E_CHUNK_MALFORMED : ret;
	return 0;
}

/* The empty line after the last chunk (and its trailers): final checks. */
static int s3_chunked_finish(struct s3_chunked *d)
{
	uint8_t digest[S3_CKSUM_MAX_LEN];
	int ret;

	if (!d->trailer_mode && d->n_trailers)
		return S3E_CHUNK_MALFORMED;
	if (d->trailer_alg != S3_CKSUM_NONE && !d->trailer_seen)
		return S3E_CHUNK_MALFORMED;	/* announced, never sent */
	if (d->mode == S3_PAYLOAD_STREAMING_TRAILER && d->n_trailers) {
		struct s3_buf sts = { .max = 1024 };
		char hex[65], sig[65];

		if (!d->trailer_sig_seen)
			return S3E_CHUNK_SIGNATURE;
		s3_cksum_buf(S3_CKSUM_SHA256, d->trailers.p ? d->trailers.p : "",
			     d->trailers.len, digest);
		s3_hex(digest, 32, hex);
		ret = s3_buf_printf(&sts, "AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s",
				    d->amz_date, d->scope, d->prev_sig, hex);
		if (ret < 0)
			return ret;
		s3_hmac_hex(d->key, sts.p, sts.len, sig);
		s3_buf_free(&sts);
		if (CRYPTO_memcmp(sig, d->trailer_sig, 64))
			return S3E_CHUNK_SIGNATURE;
	}
	if (d->decoded_length >= 0 && d->decoded != (uint64_t)d->decoded_length)
		return S3E_INCOMPLETE_BODY;
	if (d->header_alg != S3_CKSUM_NONE) {
		s3_cksum_final(&d->header_ck, digest);
		ret = s3_cksum_check_b64(d->header_alg, digest, d->header_b64,
					 d->header_b64_len);
		if (ret)
			return S3E_BAD_DIGEST;
	}
	return 0;
}

/* Adds bytes to the current line; returns 1 when a full line is there
 * (terminator stripped), 0 when it needs more, or an error. */
static int s3_line_feed(struct s3_chunked *d, const uint8_t *in, size_t len,
			size_t *used)
{
	const uint8_t *nl = memchr(in, '\n', len);
	size_t take = nl ? (size_t)(nl - in) + 1 : len;

	if (take > sizeof(d->line) - d->line_len)
		return S3E_CHUNK_MALFORMED;
	memcpy(d->line + d->line_len, in, take);
	d->line_len += take;
	*used = take;
	if (!nl)
		return 0;
	d->line_len--;				/* '\n' */
	if (d->line_len && d->line[d->line_len - 1] == '\r')
		d->line_len--;
	return 1;
}

int s3_chunked_decode(struct s3_chunked *d, const uint8_t *in, size_t len,
		      size_t *consumed, const uint8_t **data, size_t *data_len)
{
	size_t pos = 0;
	int ret;

	*data = NULL;
	*data_len = 0;
	*consumed = 0;
	while (d->state != ST_DONE && d->state != ST_FAILED) {
		size_t used = 0;

		switch (d->state) {
		case ST_HEADER:
		case ST_TRAILER:
			if (pos == len)
				goto out_more;
			ret = s3_line_feed(d, in + pos, len - pos, &used);
			pos += used;
			if (ret < 0)
				return s3_chunked_fail(d, ret);
			if (ret == 0)
				goto out_more;
			if (d->state == ST_HEADER)
				ret = s3_chunk_header(d, d->line, d->line_len);
			else if (d->line_len)
				ret = s3_trailer_line(d, d->line, d->line_len);
			else if (d->trailer_mode && !d->n_trailers &&
				 d->trailer_alg != S3_CKSUM_NONE && !d->blank_skipped)
				d->blank_skipped = true, ret = 0; /* see blank_skipped */
			else if ((ret = s3_chunked_finish(d)) == 0)
				d->state = ST_DONE;
			d->line_len = 0;
			if (ret)
				return s3_chunked_fail(d, ret);
			break;
		case ST_DATA:
			if (pos == len)
				goto out_more;
			used = len - pos < d->remaining ? len - pos : (size_t)d->remaining;
			if (d->signed_chunks)
				s3_cksum_update(&d->chunk_sha, in + pos, used);
			s3_cksum_update(&d->trailer_ck, in + pos, used);
			s3_cksum_update(&d->header_ck, in + pos, used);
			*data = in + pos;
			*data_len = used;
			d->remaining -= used;
			d->decoded += used;
			pos += used;
			if (d->remaining == 0)
				d->state = ST_DATA_CR;
			*consumed = pos;
			return 0;
		case ST_DATA_CR:
		case ST_DATA_LF:
			if (pos == len)
				goto out_more;
			if (in[pos] != (d->state == ST_DATA_CR ? '\r' : '\n'))
				return s3_chunked_fail(d, S3E_CHUNK_MALFORMED);
			pos++;
			if (d->state == ST_DATA_CR) {
				d->state = ST_DATA_LF;
				break;
			}
			if (d->signed_chunks && (ret = s3_chunk_verify(d)))
				return s3_chunked_fail(d, ret);
			d->state = ST_HEADER;
			break;
		default:
			break;
		}
	}
	*consumed = pos;
	if (d->state == ST_DONE) {
		d->result = 1;
		return 1;
	}
	return d->result;
out_more:
	*consumed = pos;
	return 0;
}
