/* bench/s3util.c: the pure parts of `strata-bench s3` (s3.c): object size
 * distributions, the deterministic content every key must hold, and the
 * response reader (fuzzed by tests/fuzz/fuzz_bench_s3_resp.c). */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t s3b_mix64(uint64_t x)
{
	/* splitmix64's finalizer: every input bit moves every output bit. */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t s3b_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return s3b_mix64(h);
}

int s3b_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t mul = 1;

	if (end == s || !(v >= 0))		/* also NaN */
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	default: break;
	}
	if (mul > 1 && (!strcasecmp(end, "iB") || !strcasecmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	/* Range-check as a double: a huge value must not reach the cast. */
	if (!(v * (double)mul <= (double)S3B_MAX_OBJECT))
		return -ERANGE;
	*out = (uint64_t)(v * (double)mul + 0.5);
	return 0;
}

/* A photo archive: mostly thumbnails and previews, a tail of originals. */
static const char s3b_photo[] = "4K:30,16K:20,64K:20,256K:15,1M:10,4M:5";

int s3b_sizes_parse(struct s3b_sizes *d, const char *spec)
{
	char buf[sizeof(d->spec)], *save = NULL, *tok;
	double sum = 0;

	memset(d, 0, sizeof(*d));
	if (!strcmp(spec, "photo"))
		spec = s3b_photo;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	snprintf(d->spec, sizeof(d->spec), "%s", spec);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		unsigned long w = 1;

		if (d->n == S3B_MAX_SIZES)
			return -E2BIG;
		if (colon) {
			char *end;

			*colon = '\0';
			w = strtoul(colon + 1, &end, 10);
			if (*end || w == 0 || w > 1000000)
				return -EINVAL;
		}
		if (s3b_parse_size(tok, &d->size[d->n]) < 0)
			return -EINVAL;
		d->weight[d->n] = (unsigned)w;
		d->total += (unsigned)w;
		if (d->size[d->n] > d->max)
			d->max = d->size[d->n];
		sum += (double)d->size[d->n] * (double)w;
		d->n++;
	}
	if (!d->n)
		return -EINVAL;
	d->mean = sum / d->total;
	return 0;
}

uint64_t s3b_sizes_pick(const struct s3b_sizes *d, const char *key)
{
	uint64_t r = s3b_hash(key) % d->total;

	for (unsigned i = 0; i < d->n; i++) {
		if (r < d->weight[i])
			return d->size[i];
		r -= d->weight[i];
	}
	return d->size[d->n - 1];
}

int s3b_pool_init(struct s3b_pool *p, uint64_t max_object)
{
	uint64_t x = 0x5354524154414221ULL;	/* fixed: runs and hosts agree */

	p->len = (size_t)max_object + S3B_POOL_SPREAD;
	p->p = malloc(p->len + 8);
	if (!p->p)
		return -ENOMEM;
	for (size_t i = 0; i < p->len; i += 8) {
		x = s3b_mix64(x);
		memcpy(p->p + i, &x, 8);
	}
	return 0;
}

const uint8_t *s3b_pool_slice(const struct s3b_pool *p, const char *key,
			      uint64_t version, uint64_t size)
{
	uint64_t span = p->len - size + 1;

	return p->p + s3b_mix64(s3b_hash(key) ^ (version * 0x9e3779b97f4a7c15ULL)) % span;
}

void s3b_pool_free(struct s3b_pool *p)
{
	free(p->p);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------ responses */

static int resp_on_headers(http_parser *hp)
{
	struct s3b_resp *r = hp->data;

	r->status = hp->status_code;
	if (r->expect && r->status == 200 && hp->content_length != r->size)
		r->mismatch = true;
	/* A HEAD response announces a length but has no body. */
	return r->head ? 1 : 0;
}

static int resp_on_body(http_parser *hp, const char *at, size_t len)
{
	struct s3b_resp *r = hp->data;

	if (r->status >= 300) {
		size_t room = S3B_ERRBODY - r->errlen, n = len < room ? len : room;

		memcpy(r->errbody + r->errlen, at, n);
		r->errlen += n;
	} else if (r->expect) {
		if (len > r->size - r->got || r->got > r->size ||
		    memcmp(r->expect + r->got, at, len))
			r->mismatch = true;
	}
	r->got += len;
	return 0;
}

static int resp_on_complete(http_parser *hp)
{
	struct s3b_resp *r = hp->data;

	r->complete = true;
	r->keep_alive = http_should_keep_alive(hp);
	if (r->expect && r->got != r->size)
		r->mismatch = true;
	http_parser_pause(hp, 1);	/* one response per request */
	return 0;
}

static const http_parser_settings resp_settings = {
	.on_headers_complete = resp_on_headers,
	.on_body = resp_on_body,
	.on_message_complete = resp_on_complete,
};

void s3b_resp_init(struct s3b_resp *r, bool head, const uint8_t *expect, uint64_t size)
{
	http_parser_init(&r->parser, HTTP_RESPONSE);
	r->parser.data = r;
	r->head = head;
	r->expect = expect;
	r->size = size;
	r->status = 0;
	r->got = 0;
	r->mismatch = r->complete = r->keep_alive = false;
	r->errlen = 0;
}

int s3b_resp_feed(struct s3b_resp *r, const char *data, size_t len)
{
	size_t used;

	if (r->complete)
		return len ? -EPROTO : 1;
	used = http_parser_execute(&r->parser, &resp_settings, data, len);
	if (r->complete)
		return used == len ? 1 : -EPROTO;
	if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || used != len)
		return -EPROTO;
	return 0;
}

void s3b_resp_code(const struct s3b_resp *r, char *out, size_t cap)
{
	static const char open[] = "<Code>", close[] = "</Code>";
	const char *b = r->errbody, *end = b + r->errlen, *a, *z;

	out[0] = '\0';
	a = memmem(b, r->errlen, open, sizeof(open) - 1);
	if (!a || cap == 0)
		return;
	a += sizeof(open) - 1;
	z = memmem(a, (size_t)(end - a), close, sizeof(close) - 1);
	if (!z)
		return;
	snprintf(out, cap, "%.*s", (int)(z - a), a);
}
