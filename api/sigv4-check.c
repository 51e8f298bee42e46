/* strata-sigv4-check: verifies requests described on stdin, one JSON object
 * per line, and prints one verdict per line ("OK", "ANONYMOUS" or the S3
 * error code). For test-sigv4-botocore.py: a real client signs, this
 * verifies. Input fields: method, path (raw), query (raw, optional),
 * headers ([[name, value], ...]), now (unix seconds), access_key, secret,
 * region (optional). */
#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct one_key {
	const char *ak, *secret;
};

static int one_lookup(void *arg, const char *ak, char *secret, size_t cap)
{
	const struct one_key *k = arg;

	if (strcmp(ak, k->ak))
		return -ENOENT;
	snprintf(secret, cap, "%s", k->secret);
	return (int)strlen(secret);
}

/* The body checks the gateway does after a successful verification:
 * aws-chunked decoding when streaming, then the body digests. */
static int check_body(const struct s3_auth_result *res, const struct s3_header *h,
		      size_t nh, const uint8_t *body, size_t len)
{
	struct s3_body_digest dg;
	uint8_t md5[16], ck[S3_CKSUM_MAX_LEN];
	enum s3_cksum_alg alg;
	int ret;

	ret = s3_body_digest_init(&dg, res, h, nh);
	if (ret)
		goto out;
	if (res->payload == S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER ||
	    res->payload == S3_PAYLOAD_STREAMING ||
	    res->payload == S3_PAYLOAD_STREAMING_TRAILER) {
		struct s3_chunked_config cfg;
		struct s3_chunked *dec;
		size_t off = 0, n, dn;
		const uint8_t *data;

		if ((ret = s3_chunked_config_init(&cfg, res, h, nh)) ||
		    (ret = s3_chunked_new(&cfg, &dec)) < 0)
			goto out;
		do {
			ret = s3_chunked_decode(dec, body + off, len - off, &n, &data, &dn);
			s3_body_digest_update(&dg, data, dn);
			off += n;
		} while (ret == 0 && off < len);
		s3_chunked_free(dec);
		if (ret == 0)
			ret = S3E_INCOMPLETE_BODY;
		if (ret != 1)
			goto out;
	} else {
		s3_body_digest_update(&dg, body, len);
	}
	ret = s3_body_digest_final(&dg, md5, &alg, ck);
out:
	s3_body_digest_free(&dg);
	return ret;
}

static const char *verify_line(json_t *j)
{
	struct one_key key = {
		json_string_value(json_object_get(j, "access_key")),
		json_string_value(json_object_get(j, "secret")),
	};
	struct s3_auth_config cfg = {
		.region = json_string_value(json_object_get(j, "region")),
		.lookup = one_lookup, .lookup_arg = &key,
	};
	json_t *hs = json_object_get(j, "headers");
	struct s3_header h[64];
	struct s3_sig_req r = { 0 };
	struct s3_auth_result res;
	struct s3_auth *a;
	const char *verdict;
	int ret;

	if (!key.ak || !key.secret || !json_is_array(hs) || json_array_size(hs) > 64)
		return "BAD-INPUT";
	r.method = json_string_value(json_object_get(j, "method"));
	r.path = json_string_value(json_object_get(j, "path"));
	r.query = json_string_value(json_object_get(j, "query"));
	if (!r.method || !r.path)
		return "BAD-INPUT";
	r.path_len = strlen(r.path);
	r.query_len = r.query ? strlen(r.query) : 0;
	for (size_t i = 0; i < json_array_size(hs); i++) {
		json_t *p = json_array_get(hs, i);
		const char *n = json_string_value(json_array_get(p, 0));
		const char *v = json_string_value(json_array_get(p, 1));

		if (!n || !v)
			return "BAD-INPUT";
		h[i] = (struct s3_header){ n, strlen(n), v, strlen(v) };
	}
	r.headers = h;
	r.n_headers = json_array_size(hs);
	if (s3_auth_new(&cfg, &a) < 0)
		return "BAD-INPUT";
	ret = s3_auth_verify(a, &r, (int64_t)json_integer_value(json_object_get(j, "now")), &res);
	s3_auth_free(a);
	if (ret == 0) {
		const char *b64 = json_string_value(json_object_get(j, "body"));
		size_t bl = b64 ? strlen(b64) : 0;
		uint8_t *body = malloc(bl / 4 * 3 + 1);
		int n = body ? s3_base64_decode(b64 ? b64 : "", bl, body, bl / 4 * 3 + 1) : -ENOMEM;

		ret = n < 0 ? n : check_body(&res, h, r.n_headers, body, (size_t)n);
		free(body);
	}
	if (ret == 1)
		return "ANONYMOUS";
	if (ret == 0)
		return "OK";
	/* AccessDenied covers several cases: say which */
	verdict = s3_err_code(ret);
	if (!strcmp(verdict, "AccessDenied"))
		return s3_err_message(ret);
	return verdict;
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;

	while (getline(&line, &cap, stdin) > 0) {
		json_error_t err;
		json_t *j = json_loads(line, 0, &err);

		printf("%s\n", j ? verify_line(j) : "BAD-INPUT");
		fflush(stdout);
		json_decref(j);
	}
	free(line);
	return 0;
}
