/* libFuzzer target: SigV4 parsing and canonicalization (api/sigv4.c), and
 * the shared-credentials parser.
 *
 * Input: "METHOD\nPATH\nQUERY\nName: value\n..." (a request as the HTTP
 * layer would hand it over). Hostile input must give a verdict, never a
 * crash, leak or overread; on top, canonical forms must be stable:
 * canonicalizing a canonical URI or query again changes nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_HEADERS 32

static int lookup(void *arg, const char *ak, char *secret, size_t cap)
{
	if (strcmp(ak, "AKIAIOSFODNN7EXAMPLE"))
		return -ENOENT;
	strncpy(secret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", cap - 1);
	secret[cap - 1] = '\0';
	return (int)strlen(secret);
}

static void check_stable(int (*canon)(struct s3_buf *, const char *, size_t),
			 const char *s, size_t n)
{
	struct s3_buf a = { .max = 1 << 20 }, b = { .max = 1 << 20 };

	if (canon(&a, s, n) == 0 && canon(&b, a.p ? a.p : "", a.len) == 0 &&
	    (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len))))
		abort();	/* not idempotent */
	s3_buf_free(&a);
	s3_buf_free(&b);
}

static int canon_query(struct s3_buf *b, const char *s, size_t n)
{
	return s3_canonical_query(b, s, n, false);
}

static struct s3_auth *auth;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size, *line[3 + MAX_HEADERS];
	size_t len[3 + MAX_HEADERS], n = 0;
	struct s3_header h[MAX_HEADERS];
	struct s3_sig_req r = { 0 };
	struct s3_auth_result res;
	char *method;

	if (!auth) {
		struct s3_auth_config cfg = { .region = "us-east-1", .lookup = lookup };

		if (s3_auth_new(&cfg, &auth))
			abort();
	}
	while (s <= end && n < 3 + MAX_HEADERS) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));

		if (!nl)
			nl = end;
		line[n] = s;
		len[n++] = (size_t)(nl - s);
		s = nl + 1;
	}
	if (n < 2)
		return 0;
	method = s3_strndup(line[0], len[0] > 16 ? 16 : len[0]);
	if (!method)
		return 0;
	r.method = method;
	r.path = line[1];
	r.path_len = len[1];
	if (n > 2 && len[2]) {
		r.query = line[2];
		r.query_len = len[2];
	}
	for (size_t i = 3; i < n; i++) {
		const char *colon = memchr(line[i], ':', len[i]);

		if (!colon)
			continue;
		h[r.n_headers].name = line[i];
		h[r.n_headers].name_len = (size_t)(colon - line[i]);
		h[r.n_headers].value = colon + 1;
		h[r.n_headers].value_len = len[i] - h[r.n_headers].name_len - 1;
		r.n_headers++;
	}
	r.headers = h;
	/* at the example's time, and at a time derived from the input */
	s3_auth_verify(auth, &r, 1369353600, &res);
	s3_auth_verify(auth, &r, 1369353600 + (int64_t)(size * 1000), &res);

	check_stable(s3_canonical_uri, r.path, r.path_len);
	if (r.query)
		check_stable(canon_query, r.query, r.query_len);
	{
		struct s3_creds *c;

		if (s3_creds_parse((const char *)data, size, &c) == 0)
			s3_creds_free(c);
	}
	free(method);
	return 0;
}
