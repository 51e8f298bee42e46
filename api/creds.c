/* creds.c: AWS shared-credentials files as the gateway's key store.
 *
 *   [default]
 *   aws_access_key_id = STRATA...
 *   aws_secret_access_key = ...
 *
 * Other keys (region, aws_session_token, ...) are ignored; a profile missing
 * either half is skipped. tools/dev up writes <data>/credentials this way.
 */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct s3_cred {
	char *profile;
	char *access_key;
	char *secret;
};

struct s3_creds {
	struct s3_cred *v;
	size_t n, cap;
};

static const char *s3_ltrim(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

static const char *s3_rtrim(const char *s, const char *end)
{
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	return end;
}

static int s3_creds_commit(struct s3_creds *c, struct s3_cred *cur)
{
	if (!cur->profile || !cur->access_key || !cur->secret) {
		free(cur->access_key);
		if (cur->secret)
			OPENSSL_cleanse(cur->secret, strlen(cur->secret));
		free(cur->secret);
		free(cur->profile);
		memset(cur, 0, sizeof(*cur));
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 4;
		struct s3_cred *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *cur;
	memset(cur, 0, sizeof(*cur));
	return 0;
}

int s3_creds_parse(const char *text, size_t len, struct s3_creds **out)
{
	struct s3_creds *c = calloc(1, sizeof(*c));
	struct s3_cred cur = { 0 };
	const char *p = text, *end = text + len;
	int ret = 0;

	if (!c)
		return -ENOMEM;
	while (p < end && ret == 0) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *ls, *le, *eq;
		char **dst = NULL;

		if (!eol)
			eol = end;
		ls = s3_ltrim(p, eol);
		le = s3_rtrim(ls, eol);
		p = eol + 1;
		if (ls == le || *ls == '#' || *ls == ';')
			continue;
		if (*ls == '[') {
			if (le[-1] != ']' || le - ls < 3) {
				ret = -EINVAL;
				break;
			}
			ret = s3_creds_commit(c, &cur);
			if (ret)
				break;
			ls = s3_ltrim(ls + 1, le - 1);
			cur.profile = s3_strndup(ls, (size_t)(s3_rtrim(ls, le - 1) - ls));
			if (!cur.profile)
				ret = -ENOMEM;
			continue;
		}
		eq = memchr(ls, '=', (size_t)(le - ls));
		if (!eq || !cur.profile) {
			ret = -EINVAL;
			break;
		}
		{
			const char *ke = s3_rtrim(ls, eq), *vs = s3_ltrim(eq + 1, le);
			size_t kn = (size_t)(ke - ls), vn = (size_t)(le - vs);

			if (kn == 17 && !memcmp(ls, "aws_access_key_id", 17)) {
				dst = &cur.access_key;
				if (vn == 0 || vn > S3_ACCESS_KEY_MAX)
					ret = -EINVAL;
			} else if (kn == 21 && !memcmp(ls, "aws_secret_access_key", 21)) {
				dst = &cur.secret;
				if (vn == 0 || vn > S3_SECRET_MAX)
					ret = -EINVAL;
			}
			if (dst && ret == 0) {
				free(*dst);
				*dst = s3_strndup(vs, vn);
				if (!*dst)
					ret = -ENOMEM;
			}
		}
	}
	if (ret == 0)
		ret = s3_creds_commit(c, &cur);
	if (ret) {
		free(cur.profile);
		free(cur.access_key);
		if (cur.secret)
			OPENSSL_cleanse(cur.secret, strlen(cur.secret));
		free(cur.secret);
		s3_creds_free(c);
		return ret;
	}
	*out = c;
	return 0;
}

int s3_creds_load(const char *path, struct s3_creds **out)
{
	uint8_t *buf;
	size_t len;
	int ret = strata_read_file(path, S3_CREDS_MAX_FILE, &buf, &len);

	if (ret < 0)
		return ret;
	ret = s3_creds_parse((const char *)buf, len, out);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return ret;
}

void s3_creds_free(struct s3_creds *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].profile);
		free(c->v[i].access_key);
		OPENSSL_cleanse(c->v[i].secret, strlen(c->v[i].secret));
		free(c->v[i].secret);
	}
	free(c->v);
	free(c);
}

size_t s3_creds_count(const struct s3_creds *c)
{
	return c->n;
}

const char *s3_creds_profile_key(const struct s3_creds *c, const char *profile)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].profile, profile))
			return c->v[i].access_key;
	return NULL;
}

const char *s3_creds_key_profile(const struct s3_creds *c, const char *access_key)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].access_key, access_key))
			return c->v[i].profile;
	return NULL;
}

int s3_creds_lookup(void *arg, const char *access_key, char *secret,
		    size_t secret_cap)
{
	const struct s3_creds *c = arg;

	for (size_t i = 0; i < c->n; i++) {
		size_t n;

		if (strcmp(c->v[i].access_key, access_key))
			continue;
		n = strlen(c->v[i].secret);
		if (n >= secret_cap)
			return -ENOSPC;
		memcpy(secret, c->v[i].secret, n + 1);
		return (int)n;
	}
	return -ENOENT;
}
