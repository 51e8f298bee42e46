/* sigv4.c: AWS Signature Version 4 verification for S3.
 *
 * Two ways to sign a request: an Authorization header
 * ("AWS4-HMAC-SHA256 Credential=AK/date/region/s3/aws4_request,
 * SignedHeaders=a;b, Signature=hex") or a presigned URL (X-Amz-Algorithm,
 * X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders,
 * X-Amz-Signature in the query). Either way the server rebuilds the
 * canonical request from what it received, signs it with the key derived
 * from the secret, and compares in constant time.
 *
 * S3 flavour: the path is not normalized (no dot segments, no slash
 * merging: keys are literal) and encoded once. A client may send a byte
 * %-encoded or not; decoding then encoding once gives every client the same
 * canonical form.
 */
#include "internal.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "common.h"

#define S3_ALG			"AWS4-HMAC-SHA256"
#define S3_TERMINATOR		"aws4_request"
#define S3_REGION_MAX		64
#define S3_SERVICE_MAX		32
#define S3_SIGNED_HEADERS_MAX	4096
#define S3_QUERY_MAX_PARAMS	1024
#define S3_CREQ_MAX		(1u << 20)
#define S3_KEY_CACHE		64

static const char s3_empty_sha256[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct s3_key_entry {
	char access_key[S3_ACCESS_KEY_MAX + 1];
	char date[9];
	char region[S3_REGION_MAX + 1];
	uint8_t secret_hash[32];	/* the key is stale if the secret changed */
	uint8_t key[32];
	uint64_t used;			/* LRU clock; 0 = empty */
};

struct s3_auth {
	char *region;			/* NULL: any */
	char service[S3_SERVICE_MAX + 1];
	s3_secret_fn lookup;
	void *lookup_arg;
	int64_t max_skew;
	pthread_mutex_t lock;		/* guards keys[] and clock */
	uint64_t clock;
	struct s3_key_entry keys[S3_KEY_CACHE];
};

/* A parsed credential scope and signature, from either form. */
struct s3_sig_parts {
	const char *ak;
	size_t ak_len;
	const char *date;		/* 8 chars */
	const char *region;
	size_t region_len;
	const char *service;
	size_t service_len;
	const char *signed_headers;
	size_t sh_len;
	const char *signature;
	size_t sig_len;
};

/* ------------------------------------------------------------ helpers */

static bool s3_is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* Decodes %XX escapes of s[0..n) into out (room for n bytes); a '%' not
 * followed by two hex digits stays literal. Returns the decoded length. */
static size_t s3_pct_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] == '%' && i + 2 < n &&
		    (hi = strata_hexval((unsigned char)s[i + 1])) >= 0 &&
		    (lo = strata_hexval((unsigned char)s[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	return o;
}

int s3_uri_encode(struct s3_buf *b, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int ret;

		if (s3_is_unreserved(c) || (keep_slash && c == '/')) {
			ret = s3_buf_addc(b, (char)c);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			ret = s3_buf_add(b, e, 3);
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}

int s3_canonical_uri(struct s3_buf *b, const char *path, size_t n)
{
	char *dec;
	size_t len;
	int ret;

	if (n == 0)
		return s3_buf_addc(b, '/');
	dec = malloc(n);
	if (!dec)
		return -ENOMEM;
	len = s3_pct_decode(path, n, dec);
	ret = s3_uri_encode(b, dec, len, true);
	free(dec);
	return ret;
}

struct s3_qparam {
	size_t key, key_len;	/* offsets into the arena */
	size_t val, val_len;
};

static int s3_qparam_cmp(const void *a, const void *b, void *arena)
{
	const struct s3_qparam *x = a, *y = b;
	const char *s3_sort_arena = arena;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(s3_sort_arena + x->key, s3_sort_arena + y->key, n);

	if (c)
		return c;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	n = x->val_len < y->val_len ? x->val_len : y->val_len;
	c = memcmp(s3_sort_arena + x->val, s3_sort_arena + y->val, n);
	if (c)
		return c;
	return x->val_len < y->val_len ? -1 : x->val_len > y->val_len;
}

/* Calls fn for each name=value pair of a raw query (both still encoded). */
typedef int (*s3_qpair_fn)(void *arg, const char *k, size_t kn, const char *v,
			   size_t vn);

static int s3_query_each(const char *q, size_t n, s3_qpair_fn fn, void *arg)
{
	size_t i = 0;

	while (i < n) {
		size_t end = i, eq;
		int ret;

		while (end < n && q[end] != '&')
			end++;
		if (end > i) {
			eq = i;
			while (eq < end && q[eq] != '=')
				eq++;
			ret = fn(arg, q + i, eq - i, eq < end ? q + eq + 1 : q + end,
				 eq < end ? end - eq - 1 : 0);
			if (ret)
				return ret;
		}
		i = end + 1;
	}
	return 0;
}

struct s3_cq_state {
	struct s3_buf arena;
	struct s3_qparam *params;
	size_t n, cap;
	bool skip_signature;
	char *tmp;		/* decode scratch, as long as the query */
};

static int s3_cq_add(void *arg, const char *k, size_t kn, const char *v, size_t vn)
{
	struct s3_cq_state *st = arg;
	struct s3_qparam *p;
	size_t len;
	int ret;

	len = s3_pct_decode(k, kn, st->tmp);
	if (st->skip_signature && len == 15 && !memcmp(st->tmp, "X-Amz-Signature", 15))
		return 0;
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;

		if (st->n >= S3_QUERY_MAX_PARAMS)
			return -E2BIG;
		p = realloc(st->params, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		st->params = p;
		st->cap = cap;
	}
	p = &st->params[st->n];
	p->key = st->arena.len;
	ret = s3_uri_encode(&st->arena, st->tmp, len, false);
	if (ret < 0)
		return ret;
	p->key_len = st->arena.len - p->key;
	len = s3_pct_decode(v, vn, st->tmp);
	p->val = st->arena.len;
	ret = s3_uri_encode(&st->arena, st->tmp, len, false);
	if (ret < 0)
		return ret;
	p->val_len = st->arena.len - p->val;
	st->n++;
	return 0;
}

int s3_canonical_query(struct s3_buf *b, const char *query, size_t n,
		       bool skip_signature)
{
	struct s3_cq_state st = { .skip_signature = skip_signature };
	int ret = 0;

	if (!query || !n)
		return 0;
	st.arena.max = 3 * n + 16;
	st.tmp = malloc(n);
	if (!st.tmp)
		return -ENOMEM;
	ret = s3_query_each(query, n, s3_cq_add, &st);
	if (ret == 0 && !st.arena.p)	/* only empty names and values */
		ret = s3_buf_add(&st.arena, "", 0);
	if (ret < 0)
		goto out_free;
	if (st.n)
		qsort_r(st.params, st.n, sizeof(*st.params), s3_qparam_cmp,
			st.arena.p);
	for (size_t i = 0; i < st.n && ret == 0; i++) {
		const struct s3_qparam *p = &st.params[i];

		if (i)
			ret = s3_buf_addc(b, '&');
		if (!ret)
			ret = s3_buf_add(b, st.arena.p + p->key, p->key_len);
		if (!ret)
			ret = s3_buf_addc(b, '=');
		if (!ret)
			ret = s3_buf_add(b, st.arena.p + p->val, p->val_len);
	}
out_free:
	free(st.tmp);
	free(st.params);
	s3_buf_free(&st.arena);
	return ret;
}

static bool s3_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends a header value trimmed, runs of whitespace collapsed to one space. */
static int s3_add_trimmed(struct s3_buf *b, const char *v, size_t n)
{
	size_t i = 0;
	bool space = false, any = false;
	int ret;

	while (i < n) {
		if (s3_is_space(v[i])) {
			space = true;
			i++;
			continue;
		}
		if (space && any && (ret = s3_buf_addc(b, ' ')) < 0)
			return ret;
		space = false;
		any = true;
		if ((ret = s3_buf_addc(b, v[i])) < 0)
			return ret;
		i++;
	}
	return 0;
}

static bool s3_name_eq(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && !strncasecmp(a, b, an);
}

const struct s3_header *s3_header_find(const struct s3_header *h, size_t n,
				       const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (s3_name_eq(h[i].name, h[i].name_len, name, len))
			return &h[i];
	return NULL;
}

static const struct s3_header *s3_find_header(const struct s3_sig_req *req,
					      const char *name)
{
	return s3_header_find(req->headers, req->n_headers, name);
}

/* Trims a header value in place (returns pointer and length). */
static const char *s3_trim(const char *v, size_t n, size_t *out_len)
{
	while (n && s3_is_space(*v)) {
		v++;
		n--;
	}
	while (n && s3_is_space(v[n - 1]))
		n--;
	*out_len = n;
	return v;
}

int s3_canonical_request(struct s3_buf *b, const struct s3_sig_req *req,
			 const char *signed_headers, size_t sh_len,
			 const char *payload_hash, bool presigned)
{
	size_t i = 0;
	int ret;

	if ((ret = s3_buf_adds(b, req->method)) < 0 ||
	    (ret = s3_buf_addc(b, '\n')) < 0 ||
	    (ret = s3_canonical_uri(b, req->path, req->path_len)) < 0 ||
	    (ret = s3_buf_addc(b, '\n')) < 0 ||
	    (ret = s3_canonical_query(b, req->query, req->query_len, presigned)) < 0 ||
	    (ret = s3_buf_addc(b, '\n')) < 0)
		return ret;

	while (i < sh_len) {
		size_t end = i;
		bool first = true;

		while (end < sh_len && signed_headers[end] != ';')
			end++;
		if (end == i)
			return S3E_HEADER_MALFORMED;
		if ((ret = s3_buf_add(b, signed_headers + i, end - i)) < 0 ||
		    (ret = s3_buf_addc(b, ':')) < 0)
			return ret;
		for (size_t h = 0; h < req->n_headers; h++) {
			const struct s3_header *hd = &req->headers[h];

			if (!s3_name_eq(hd->name, hd->name_len, signed_headers + i, end - i))
				continue;
			if (!first && (ret = s3_buf_addc(b, ',')) < 0)
				return ret;
			first = false;
			if ((ret = s3_add_trimmed(b, hd->value, hd->value_len)) < 0)
				return ret;
		}
		if ((ret = s3_buf_addc(b, '\n')) < 0)
			return ret;
		i = end + 1;
	}
	if ((ret = s3_buf_addc(b, '\n')) < 0 ||
	    (ret = s3_buf_add(b, signed_headers, sh_len)) < 0 ||
	    (ret = s3_buf_addc(b, '\n')) < 0 ||
	    (ret = s3_buf_adds(b, payload_hash)) < 0)
		return ret;
	return 0;
}

static void s3_hmac(const void *key, size_t kn, const void *msg, size_t n,
		    uint8_t out[32])
{
	unsigned int len = 32;

	HMAC(EVP_sha256(), key, (int)kn, msg, n, out, &len);
}

void s3_signing_key(const char *secret, const char *date8, const char *region,
		    const char *service, uint8_t key[32])
{
	char k[4 + S3_SECRET_MAX + 1];
	size_t n = strlen(secret);
	uint8_t a[32], c[32];

	if (n > S3_SECRET_MAX)
		n = S3_SECRET_MAX;
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, secret, n);
	s3_hmac(k, 4 + n, date8, 8, a);
	s3_hmac(a, 32, region, strlen(region), c);
	s3_hmac(c, 32, service, strlen(service), a);
	s3_hmac(a, 32, S3_TERMINATOR, strlen(S3_TERMINATOR), key);
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(c, sizeof(c));
}

void s3_hmac_hex(const uint8_t key[32], const void *msg, size_t n, char out[65])
{
	uint8_t mac[32];

	s3_hmac(key, 32, msg, n, mac);
	s3_hex(mac, 32, out);
}

static int s3_digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int s3_parse_amz_date(const char *s, size_t n, int64_t *out)
{
	int y, mo, d, h, mi, sec;
	struct tm tm = { 0 };
	time_t t;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (n != 16 || s[8] != 'T' || s[15] != 'Z' ||
	    s3_digits(s, 4, &y) || s3_digits(s + 4, 2, &mo) ||
	    s3_digits(s + 6, 2, &d) || s3_digits(s + 9, 2, &h) ||
	    s3_digits(s + 11, 2, &mi) || s3_digits(s + 13, 2, &sec))
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = (int64_t)t;
	return 0;
}

/* An IMF-fixdate Date header ("Fri, 24 May 2013 00:00:00 GMT") as an
 * x-amz-date ("20130524T000000Z"): 0 or -EINVAL. */
static int s3_http_date_to_amz(const char *v, size_t n, char out[17])
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char buf[40];
	int d, y, h, mi, sec, mo;
	char mon[4], gmt[4];

	v = s3_trim(v, n, &n);
	if (n != 29)
		return -EINVAL;
	memcpy(buf, v, n);
	buf[n] = '\0';
	if (sscanf(buf + 5, "%2d %3s %4d %2d:%2d:%2d %3s", &d, mon, &y, &h, &mi,
		   &sec, gmt) != 7 || strcmp(gmt, "GMT") || buf[3] != ',')
		return -EINVAL;
	for (mo = 0; mo < 12; mo++)
		if (!memcmp(months + 3 * mo, mon, 3))
			break;
	if (mo == 12 || d < 1 || d > 31 || y < 1970 || y > 9999 || h > 23 ||
	    mi > 59 || sec > 60)
		return -EINVAL;
	{
		const int f[] = { y / 100, y % 100, mo + 1, d, -1, h, mi, sec };
		char *o = out;

		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			if (f[i] < 0) {
				*o++ = 'T';
				continue;
			}
			*o++ = (char)('0' + f[i] / 10);
			*o++ = (char)('0' + f[i] % 10);
		}
		*o++ = 'Z';
		*o = '\0';
	}
	return 0;
}

/* ------------------------------------------------------------ parsing */

/* AK/yyyymmdd/region/service/aws4_request */
static int s3_parse_credential(const char *c, size_t n, struct s3_sig_parts *p,
			       int malformed)
{
	const char *part[5];
	size_t len[5], k = 0, start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || c[i] == '/') {
			if (k == 5)
				return malformed;
			part[k] = c + start;
			len[k] = i - start;
			k++;
			start = i + 1;
		}
	}
	if (k != 5 || len[0] == 0 || len[0] > S3_ACCESS_KEY_MAX || len[1] != 8 ||
	    len[2] == 0 || len[2] > S3_REGION_MAX || len[3] == 0 ||
	    len[3] > S3_SERVICE_MAX || len[4] != strlen(S3_TERMINATOR) ||
	    memcmp(part[4], S3_TERMINATOR, len[4]))
		return malformed;
	for (size_t i = 0; i < 8; i++)
		if (part[1][i] < '0' || part[1][i] > '9')
			return malformed;
	for (size_t i = 0; i < len[0]; i++)
		if ((unsigned char)part[0][i] <= ' ' || (unsigned char)part[0][i] >= 0x7f)
			return malformed;
	for (size_t i = 0; i < len[2]; i++) {
		char ch = part[2][i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
			return malformed;
	}
	p->ak = part[0];
	p->ak_len = len[0];
	p->date = part[1];
	p->region = part[2];
	p->region_len = len[2];
	p->service = part[3];
	p->service_len = len[3];
	return 0;
}

static int s3_check_signed_headers(const char *s, size_t n, int malformed)
{
	bool host = false;
	size_t i = 0;

	if (n == 0 || n > S3_SIGNED_HEADERS_MAX)
		return malformed;
	while (i < n) {
		size_t end = i;

		while (end < n && s[end] != ';') {
			char c = s[end];

			/* lowercase tokens only (RFC 9110 tchar, lowercased) */
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			      strchr("!#$%&'*+-.^_`|~", c)) || c == '\0')
				return malformed;
			end++;
		}
		if (end == i)
			return malformed;
		if (end - i == 4 && !memcmp(s + i, "host", 4))
			host = true;
		i = end + 1;
	}
	if (s[n - 1] == ';')
		return malformed;
	return host ? 0 : malformed;
}

static int s3_check_signature(const char *s, size_t n, int malformed)
{
	if (n != 64)
		return malformed;
	for (size_t i = 0; i < n; i++)
		if (strata_hexval((unsigned char)s[i]) < 0)
			return malformed;
	return 0;
}

static int s3_parse_authorization(const char *v, size_t n, struct s3_sig_parts *p)
{
	size_t alg = strlen(S3_ALG), i;
	bool have_cred = false, have_sh = false, have_sig = false;
	int ret;

	v = s3_trim(v, n, &n);
	if (n < alg || memcmp(v, S3_ALG, alg) || (n > alg && v[alg] != ' '))
		return S3E_UNSUPPORTED_ALG;
	i = alg;
	while (i < n) {
		size_t start, end, eq;

		while (i < n && (v[i] == ' ' || v[i] == ','))
			i++;
		if (i == n)
			break;
		start = i;
		while (i < n && v[i] != ',')
			i++;
		end = i;
		while (end > start && v[end - 1] == ' ')
			end--;
		eq = start;
		while (eq < end && v[eq] != '=')
			eq++;
		if (eq == end)
			return S3E_HEADER_MALFORMED;
#define S3_IS(name) (eq - start == strlen(name) && !memcmp(v + start, name, eq - start))
		if (S3_IS("Credential") && !have_cred) {
			ret = s3_parse_credential(v + eq + 1, end - eq - 1, p,
						  S3E_HEADER_MALFORMED);
			if (ret)
				return ret;
			have_cred = true;
		} else if (S3_IS("SignedHeaders") && !have_sh) {
			p->signed_headers = v + eq + 1;
			p->sh_len = end - eq - 1;
			have_sh = true;
		} else if (S3_IS("Signature") && !have_sig) {
			p->signature = v + eq + 1;
			p->sig_len = end - eq - 1;
			have_sig = true;
		} else {
			return S3E_HEADER_MALFORMED;
		}
#undef S3_IS
	}
	if (!have_cred || !have_sh || !have_sig)
		return S3E_HEADER_MALFORMED;
	if ((ret = s3_check_signed_headers(p->signed_headers, p->sh_len,
					   S3E_HEADER_MALFORMED)) ||
	    (ret = s3_check_signature(p->signature, p->sig_len, S3E_HEADER_MALFORMED)))
		return ret;
	return 0;
}

/* Presigned parameters, decoded into scratch buffers. */
struct s3_presign {
	char alg[32];
	char cred[S3_ACCESS_KEY_MAX + S3_REGION_MAX + S3_SERVICE_MAX + 32];
	char date[32];
	char expires[16];
	char sh[S3_SIGNED_HEADERS_MAX + 1];
	char sig[80];
	char content_sha256[80];
	size_t alg_n, cred_n, date_n, expires_n, sh_n, sig_n, content_sha256_n;
	unsigned seen;		/* bit per parameter, to refuse duplicates */
	bool dup_or_long;
};

static int s3_presign_take(void *arg, const char *k, size_t kn, const char *v,
			   size_t vn)
{
	struct s3_presign *ps = arg;
	static const struct {
		const char *name;
		size_t off, len_off, cap;
	} params[] = {
#define P(n, f) { n, offsetof(struct s3_presign, f), \
		  offsetof(struct s3_presign, f##_n), \
		  sizeof(((struct s3_presign *)0)->f) }
		P("X-Amz-Algorithm", alg),
		P("X-Amz-Credential", cred),
		P("X-Amz-Date", date),
		P("X-Amz-Expires", expires),
		P("X-Amz-SignedHeaders", sh),
		P("X-Amz-Signature", sig),
		P("X-Amz-Content-Sha256", content_sha256),
#undef P
	};
	char key[32];
	size_t klen;

	if (kn >= sizeof(key) * 3)
		return 0;
	{
		char tmp[sizeof(key) * 3];

		klen = s3_pct_decode(k, kn, tmp);
		if (klen >= sizeof(key))
			return 0;
		memcpy(key, tmp, klen);
	}
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		char *dst;
		size_t *dlen, dec;

		if (strlen(params[i].name) != klen || memcmp(params[i].name, key, klen))
			continue;
		if (ps->seen & (1u << i) || vn >= params[i].cap * 3) {
			ps->dup_or_long = true;
			return 0;
		}
		ps->seen |= 1u << i;
		dst = (char *)ps + params[i].off;
		dlen = (size_t *)((char *)ps + params[i].len_off);
		{
			char *tmp = malloc(vn + 1);

			if (!tmp)
				return -ENOMEM;
			dec = s3_pct_decode(v, vn, tmp);
			if (dec >= params[i].cap) {
				ps->dup_or_long = true;
			} else {
				memcpy(dst, tmp, dec);
				dst[dec] = '\0';
				*dlen = dec;
			}
			free(tmp);
		}
		return 0;
	}
	return 0;
}

/* ------------------------------------------------------------ verifier */

int s3_auth_new(const struct s3_auth_config *cfg, struct s3_auth **out)
{
	struct s3_auth *a;
	const char *service = cfg->service ? cfg->service : "s3";

	if (!cfg->lookup || strlen(service) > S3_SERVICE_MAX ||
	    (cfg->region && strlen(cfg->region) > S3_REGION_MAX))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (cfg->region) {
		a->region = strdup(cfg->region);
		if (!a->region) {
			free(a);
			return -ENOMEM;
		}
	}
	strcpy(a->service, service);
	a->lookup = cfg->lookup;
	a->lookup_arg = cfg->lookup_arg;
	a->max_skew = cfg->max_skew > 0 ? cfg->max_skew : S3_MAX_SKEW;
	pthread_mutex_init(&a->lock, NULL);
	*out = a;
	return 0;
}

void s3_auth_free(struct s3_auth *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	OPENSSL_cleanse(a->keys, sizeof(a->keys));
	free(a->region);
	free(a);
}

/* The signing key for (ak, date, region) with this secret, from the cache
 * or derived and cached. */
static void s3_auth_key(struct s3_auth *a, const char *ak, const char *date,
			const char *region, const char *secret, uint8_t key[32])
{
	uint8_t sh[32];
	struct s3_key_entry *victim = &a->keys[0];

	EVP_Digest(secret, strlen(secret), sh, NULL, EVP_sha256(), NULL);
	pthread_mutex_lock(&a->lock);
	for (size_t i = 0; i < S3_KEY_CACHE; i++) {
		struct s3_key_entry *e = &a->keys[i];

		if (e->used && !strcmp(e->access_key, ak) && !strcmp(e->date, date) &&
		    !strcmp(e->region, region) && !CRYPTO_memcmp(e->secret_hash, sh, 32)) {
			e->used = ++a->clock;
			memcpy(key, e->key, 32);
			pthread_mutex_unlock(&a->lock);
			return;
		}
		if (e->used < victim->used)
			victim = e;
	}
	pthread_mutex_unlock(&a->lock);

	s3_signing_key(secret, date, region, a->service, key);

	pthread_mutex_lock(&a->lock);
	snprintf(victim->access_key, sizeof(victim->access_key), "%s", ak);
	snprintf(victim->date, sizeof(victim->date), "%s", date);
	snprintf(victim->region, sizeof(victim->region), "%s", region);
	memcpy(victim->secret_hash, sh, 32);
	memcpy(victim->key, key, 32);
	victim->used = ++a->clock;
	pthread_mutex_unlock(&a->lock);
}

static bool s3_starts_with_ci(const char *s, size_t n, const char *prefix)
{
	size_t pn = strlen(prefix);

	return n >= pn && !strncasecmp(s, prefix, pn);
}

/* Every x-amz-* header the request carries must be signed (header auth),
 * as S3 requires (AccessDenied, HeadersNotSigned). */
static int s3_check_unsigned(const struct s3_sig_req *req, const char *sh, size_t sh_len)
{
	for (size_t h = 0; h < req->n_headers; h++) {
		const struct s3_header *hd = &req->headers[h];
		bool found = false;
		size_t i = 0;

		if (!s3_starts_with_ci(hd->name, hd->name_len, "x-amz-"))
			continue;
		while (i < sh_len && !found) {
			size_t end = i;

			while (end < sh_len && sh[end] != ';')
				end++;
			found = s3_name_eq(hd->name, hd->name_len, sh + i, end - i);
			i = end + 1;
		}
		if (!found)
			return S3E_UNSIGNED_HEADERS;
	}
	return 0;
}

static int s3_payload_mode(const char *v, size_t n, bool presigned,
			   enum s3_payload_mode *mode, uint8_t sha[32])
{
	static const struct {
		const char *name;
		enum s3_payload_mode mode;
	} modes[] = {
		{ "UNSIGNED-PAYLOAD", S3_PAYLOAD_UNSIGNED },
		{ "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", S3_PAYLOAD_STREAMING },
		{ "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", S3_PAYLOAD_STREAMING_TRAILER },
		{ "STREAMING-UNSIGNED-PAYLOAD-TRAILER", S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER },
	};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strlen(modes[i].name) == n && !memcmp(v, modes[i].name, n)) {
			if (presigned && modes[i].mode != S3_PAYLOAD_UNSIGNED)
				return S3E_BAD_CONTENT_SHA256;
			*mode = modes[i].mode;
			return 0;
		}
	}
	if (s3_unhex(v, n, sha, 32) < 0)
		return S3E_BAD_CONTENT_SHA256;
	*mode = S3_PAYLOAD_SHA256;
	return 0;
}

static int s3_copy_part(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		return -E2BIG;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

int s3_auth_verify(struct s3_auth *a, const struct s3_sig_req *req, int64_t now,
		   struct s3_auth_result *out)
{
	const struct s3_header *authz = s3_find_header(req, "authorization");
	struct s3_presign *ps = NULL;
	struct s3_sig_parts p = { 0 };
	struct s3_buf creq = { .max = S3_CREQ_MAX }, sts = { .max = S3_CREQ_MAX };
	char payload_hash[80], date8[9], region[S3_REGION_MAX + 1];
	char secret[S3_SECRET_MAX + 1], sig[65], given[65], date_buf[17];
	const char *amz_date, *ph;
	size_t amz_date_len, ph_len;
	int64_t expires = 0;
	uint8_t digest[32];
	char digest_hex[65];
	int ret, malformed;

	memset(out, 0, sizeof(*out));
	if (req->query && req->query_len) {
		ps = calloc(1, sizeof(*ps));
		if (!ps)
			return -ENOMEM;
		ret = s3_query_each(req->query, req->query_len, s3_presign_take, ps);
		if (ret < 0)
			goto out_cleanse;
		if (!(ps->seen & 1)) {		/* no X-Amz-Algorithm */
			/* ...but other presign parameters: a broken URL */
			if (ps->seen & 0x3e) {
				ret = S3E_QUERY_MALFORMED;
				goto out_cleanse;
			}
			free(ps);
			ps = NULL;
		}
	}
	if (!authz && !ps)
		return 1;			/* anonymous */
	if (authz && ps) {
		ret = S3E_QUERY_MALFORMED;	/* two auth mechanisms */
		goto out_cleanse;
	}

	if (authz) {
		const struct s3_header *d = s3_find_header(req, "x-amz-date");

		malformed = S3E_HEADER_MALFORMED;
		ret = s3_parse_authorization(authz->value, authz->value_len, &p);
		if (ret)
			goto out_cleanse;
		if (d) {
			amz_date = s3_trim(d->value, d->value_len, &amz_date_len);
		} else if ((d = s3_find_header(req, "date")) &&
			   s3_http_date_to_amz(d->value, d->value_len, date_buf) == 0) {
			/* SigV4 allows Date when there is no x-amz-date */
			amz_date = date_buf;
			amz_date_len = 16;
		} else {
			ret = S3E_MISSING_DATE;
			goto out_cleanse;
		}
	} else {
		malformed = S3E_QUERY_MALFORMED;
		/* All six parameters, once each, and the one algorithm. */
		if (ps->dup_or_long || (ps->seen & 0x3f) != 0x3f ||
		    strcmp(ps->alg, S3_ALG)) {
			ret = S3E_QUERY_MALFORMED;
			goto out_cleanse;
		}
		ret = s3_parse_credential(ps->cred, ps->cred_n, &p, malformed);
		if (ret)
			goto out_cleanse;
		p.signed_headers = ps->sh;
		p.sh_len = ps->sh_n;
		p.signature = ps->sig;
		p.sig_len = ps->sig_n;
		if ((ret = s3_check_signed_headers(p.signed_headers, p.sh_len, malformed)) ||
		    (ret = s3_check_signature(p.signature, p.sig_len, malformed)))
			goto out_cleanse;
		amz_date = ps->date;
		amz_date_len = ps->date_n;
		{
			int e;

			/* 0 or negative (a client computing now + ExpiresIn
			 * from a negative ExpiresIn): a URL that expired when
			 * signed, 403 like any expired one; over 7 days is
			 * malformed (400), as AWS answers. */
			if (ps->expires_n >= 2 && ps->expires_n <= 7 &&
			    ps->expires[0] == '-' &&
			    !s3_digits(ps->expires + 1, ps->expires_n - 1, &e)) {
				e = 0;
			} else if (ps->expires_n == 0 || ps->expires_n > 6 ||
				   s3_digits(ps->expires, ps->expires_n, &e) ||
				   e > S3_MAX_EXPIRES) {
				ret = S3E_QUERY_MALFORMED;
				goto out_cleanse;
			}
			expires = e;
		}
	}

	/* Scope: date, region, service. */
	if (s3_parse_amz_date(amz_date, amz_date_len, &out->request_time) < 0) {
		ret = authz ? S3E_MISSING_DATE : S3E_QUERY_MALFORMED;
		goto out_cleanse;
	}
	if (memcmp(amz_date, p.date, 8)) {
		ret = malformed;		/* credential date != x-amz-date */
		goto out_cleanse;
	}
	if (p.service_len != strlen(a->service) ||
	    memcmp(p.service, a->service, p.service_len) ||
	    (a->region && (p.region_len != strlen(a->region) ||
			   memcmp(p.region, a->region, p.region_len)))) {
		ret = malformed;
		goto out_cleanse;
	}
	memcpy(date8, p.date, 8);
	date8[8] = '\0';
	memcpy(region, p.region, p.region_len);
	region[p.region_len] = '\0';
	memcpy(out->amz_date, amz_date, 16);
	out->amz_date[16] = '\0';
	snprintf(out->scope, sizeof(out->scope), "%s/%s/%s/%s", date8, region,
		 a->service, S3_TERMINATOR);
	if ((ret = s3_copy_part(out->access_key, sizeof(out->access_key), p.ak, p.ak_len)))
		goto out_cleanse;

	/* Time. */
	if (authz) {
		if (out->request_time > now + a->max_skew ||
		    out->request_time < now - a->max_skew) {
			ret = S3E_TIME_SKEWED;
			goto out_cleanse;
		}
	} else {
		if (out->request_time > now + a->max_skew) {
			ret = S3E_NOT_YET_VALID;
			goto out_cleanse;
		}
		if (expires <= 0 || now > out->request_time + expires) {
			ret = S3E_EXPIRED;
			goto out_cleanse;
		}
	}

	/* Payload hash. */
	if (authz) {
		const struct s3_header *h = s3_find_header(req, "x-amz-content-sha256");

		if (h) {
			ph = s3_trim(h->value, h->value_len, &ph_len);
		} else if (req->payload_hash) {
			ph = req->payload_hash;
			ph_len = strlen(ph);
		} else {
			ret = S3E_MISSING_CONTENT_SHA256;
			goto out_cleanse;
		}
		if ((ret = s3_check_unsigned(req, p.signed_headers, p.sh_len)))
			goto out_cleanse;
	} else if (ps->seen & (1u << 6)) {
		ph = ps->content_sha256;
		ph_len = ps->content_sha256_n;
	} else {
		ph = "UNSIGNED-PAYLOAD";
		ph_len = strlen(ph);
	}
	if ((ret = s3_payload_mode(ph, ph_len, !authz, &out->payload,
				   out->payload_sha256)))
		goto out_cleanse;
	memcpy(payload_hash, ph, ph_len);
	payload_hash[ph_len] = '\0';
	out->presigned = !authz;

	/* Secret. */
	ret = a->lookup(a->lookup_arg, out->access_key, secret, sizeof(secret));
	if (ret < 0) {
		ret = ret == -ENOENT ? S3E_INVALID_ACCESS_KEY : ret;
		goto out_cleanse;
	}

	/* Canonical request, string to sign, signature. */
	ret = s3_canonical_request(&creq, req, p.signed_headers, p.sh_len,
				   payload_hash, !authz);
	if (ret == -E2BIG)
		ret = S3E_TOO_LARGE;	/* over S3_QUERY_MAX_PARAMS or S3_CREQ_MAX */
	if (ret)
		goto out_cleanse;
	EVP_Digest(creq.p, creq.len, digest, NULL, EVP_sha256(), NULL);
	s3_hex(digest, 32, digest_hex);
	ret = s3_buf_printf(&sts, "%s\n%s\n%s\n%s", S3_ALG, out->amz_date,
			    out->scope, digest_hex);
	if (ret)
		goto out_cleanse;
	s3_auth_key(a, out->access_key, date8, region, secret, out->signing_key);
	s3_hmac_hex(out->signing_key, sts.p, sts.len, sig);
	for (size_t i = 0; i < 64; i++) {
		char c = p.signature[i];

		given[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
	}
	given[64] = '\0';
	if (CRYPTO_memcmp(sig, given, 64)) {
		ret = S3E_SIGNATURE;
		goto out_cleanse;
	}
	memcpy(out->seed_signature, sig, 65);
	ret = 0;
out_cleanse:
	OPENSSL_cleanse(secret, sizeof(secret));
	free(ps);
	s3_buf_free(&creq);
	s3_buf_free(&sts);
	if (ret)
		OPENSSL_cleanse(out, sizeof(*out));
	return ret;
}

int s3_auth_check_payload(const struct s3_auth_result *res,
			  const uint8_t sha256[32])
{
	if (res->payload != S3_PAYLOAD_SHA256)
		return 0;
	return CRYPTO_memcmp(res->payload_sha256, sha256, 32) ?
		S3E_CONTENT_SHA256_MISMATCH : 0;
}

const char *s3_sha256_empty_hex(void)
{
	return s3_empty_sha256;
}

/* ------------------------------------------------------------ client side */

/* The client signs with exactly the canonical request the verifier above
 * rebuilds, so a request this signs is one s3_auth_verify accepts. */
int s3_sign_authz(struct s3_buf *out, const struct s3_sig_req *req,
		  const char *signed_headers, const char *payload_hash,
		  const char *access_key, const char *scope, const char *amz_date,
		  const uint8_t key[32])
{
	struct s3_buf creq = { 0 }, sts = { 0 };
	uint8_t digest[32];
	char digest_hex[65], sig[65];
	int ret;

	ret = s3_canonical_request(&creq, req, signed_headers, strlen(signed_headers),
				   payload_hash, false);
	if (ret)
		goto out_free;
	EVP_Digest(creq.p, creq.len, digest, NULL, EVP_sha256(), NULL);
	s3_hex(digest, 32, digest_hex);
	ret = s3_buf_printf(&sts, "%s\n%s\n%s\n%s", S3_ALG, amz_date, scope, digest_hex);
	if (ret)
		goto out_free;
	s3_hmac_hex(key, sts.p, sts.len, sig);
	ret = s3_buf_printf(out, "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
			    S3_ALG, access_key, scope, signed_headers, sig);
out_free:
	s3_buf_free(&creq);
	s3_buf_free(&sts);
	return ret;
}
