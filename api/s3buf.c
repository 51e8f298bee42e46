/* s3buf.c: the bounded growable buffer behind canonical requests and XML. */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t s3_buf_max(const struct s3_buf *b)
{
	return b->max ? b->max : S3_BUF_DEFAULT_MAX;
}

/* Makes room for n more bytes plus the NUL. */
static int s3_buf_reserve(struct s3_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (n > s3_buf_max(b) - b->len)
		return -E2BIG;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int s3_buf_add(struct s3_buf *b, const void *p, size_t n)
{
	int ret = s3_buf_reserve(b, n);

	if (ret < 0)
		return ret;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int s3_buf_adds(struct s3_buf *b, const char *s)
{
	return s3_buf_add(b, s, strlen(s));
}

int s3_buf_addc(struct s3_buf *b, char c)
{
	return s3_buf_add(b, &c, 1);
}

int s3_buf_printf(struct s3_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, ret;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	ret = s3_buf_reserve(b, (size_t)n);
	if (ret < 0)
		return ret;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void s3_buf_reset(struct s3_buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void s3_buf_free(struct s3_buf *b)
{
	size_t max = b->max;

	free(b->p);
	memset(b, 0, sizeof(*b));
	b->max = max;
}

char *s3_strndup(const char *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		return NULL;
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}
