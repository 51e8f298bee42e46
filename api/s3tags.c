/* s3tags.c: object tag sets (limits in internal.h, "s3tags.c"). The XML
 * form is parsed in s3xml.c; both end in s3_tagset_add(). */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Unicode characters of valid UTF-8 s[0..n) (no overlongs, surrogates or
 * code points past U+10FFFF), or -1. */
static long utf8_chars(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	long chars = 0;

	while (p < end) {
		unsigned c = *p, len, cp;

		if (c < 0x80)
			len = 1, cp = c;
		else if ((c & 0xe0) == 0xc0)
			len = 2, cp = c & 0x1f;
		else if ((c & 0xf0) == 0xe0)
			len = 3, cp = c & 0x0f;
		else if ((c & 0xf8) == 0xf0)
			len = 4, cp = c & 0x07;
		else
			return -1;
		if ((size_t)(end - p) < len)
			return -1;
		for (unsigned i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return -1;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		p += len;
		chars++;
	}
	return chars;
}

int s3_tagset_add(struct s3_tagset *t, const char *k, size_t kl, const char *v,
		  size_t vl)
{
	long kc = utf8_chars(k, kl), vc = utf8_chars(v, vl);
	struct s3_tag *g;

	if (t->n == S3_MAX_TAGS || kc < 1 || kc > S3_TAG_KEY_MAX || vc < 0 ||
	    vc > S3_TAG_VALUE_MAX || memchr(k, '\0', kl) || memchr(v, '\0', vl))
		return S3E_INVALID_TAG;
	for (size_t i = 0; i < t->n; i++)
		if (strlen(t->tags[i].key) == kl && !memcmp(t->tags[i].key, k, kl))
			return S3E_INVALID_TAG;		/* keys are unique */
	g = &t->tags[t->n];
	g->key = s3_strndup(k, kl);
	g->value = s3_strndup(v, vl);
	if (!g->key || !g->value) {
		free(g->key);
		free(g->value);
		g->key = g->value = NULL;
		return -ENOMEM;
	}
	t->n++;
	return 0;
}

static int tag_cmp(const void *a, const void *b)
{
	return strcmp(((const struct s3_tag *)a)->key, ((const struct s3_tag *)b)->key);
}

void s3_tagset_sort(struct s3_tagset *t)
{
	qsort(t->tags, t->n, sizeof(t->tags[0]), tag_cmp);
}

int s3_tagset_parse_query(const char *s, size_t n, struct s3_tagset *out)
{
	const char *p = s, *end = s + n;
	char *buf = NULL;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	while (!ret && p <= end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end, *eq = memchr(p, '=', (size_t)(e - p));
		size_t kl, vl;

		/* buf: the decoded key, then the decoded value */
		if (http_url_decode(p, (size_t)((eq ? eq : e) - p), buf, &kl, true) < 0 ||
		    (eq && http_url_decode(eq + 1, (size_t)(e - eq - 1), buf + kl, &vl, true) < 0))
			ret = S3E_INVALID_TAG;
		else
			ret = s3_tagset_add(out, buf, kl, buf + kl, eq ? vl : 0);
		p = e + 1;
	}
	free(buf);
	if (ret)
		s3_tagset_free(out);
	else
		s3_tagset_sort(out);
	return ret;
}

int s3_tagset_encode(const struct s3_tagset *t, struct s3_buf *b)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < t->n; i++)
		ret = (i ? s3_buf_addc(b, '&') : 0) ?:
		      s3_uri_encode(b, t->tags[i].key, strlen(t->tags[i].key), false) ?:
		      s3_buf_addc(b, '=') ?:
		      s3_uri_encode(b, t->tags[i].value, strlen(t->tags[i].value), false);
	return ret;
}

void s3_tagset_free(struct s3_tagset *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->tags[i].key);
		free(t->tags[i].value);
	}
	memset(t, 0, sizeof(*t));
}
