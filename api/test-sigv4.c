/* SigV4 verification against AWS's published vectors: the generic SigV4
 * test suite (aws-sig-v4-test-suite, service "service") and the S3
 * examples of the S3 API reference (header-signed GET/PUT/lifecycle/list,
 * presigned GET), then the ways a request must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define SUITE_TIME	1440938160	/* 20150830T123600Z */
#define S3_TIME		1369353600	/* 20130524T000000Z */
#define EMPTY_SHA	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static int lookup(void *arg, const char *ak, char *secret, size_t cap)
{
	static const char *const keys[][2] = {
		{ "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" },
		{ "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" },
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(ak, keys[i][0])) {
			snprintf(secret, cap, "%s", keys[i][1]);
			return (int)strlen(secret);
		}
	return -ENOENT;
}

#define MAX_H 8
struct vec {
	const char *name;
	const char *method, *path, *query;
	const char *headers[MAX_H][2];
	const char *payload_hash;	/* suite: hash of the body */
	const char *creq;		/* expected canonical request, or NULL */
};

static size_t build(const struct vec *v, struct s3_header *h, struct s3_sig_req *r)
{
	size_t n = 0;

	for (; n < MAX_H && v->headers[n][0]; n++) {
		h[n].name = v->headers[n][0];
		h[n].name_len = strlen(v->headers[n][0]);
		h[n].value = v->headers[n][1];
		h[n].value_len = strlen(v->headers[n][1]);
	}
	memset(r, 0, sizeof(*r));
	r->method = v->method;
	r->path = v->path;
	r->path_len = strlen(v->path);
	r->query = v->query;
	r->query_len = v->query ? strlen(v->query) : 0;
	r->headers = h;
	r->n_headers = n;
	r->payload_hash = v->payload_hash;
	return n;
}

#define AUTHZ_SUITE(sh, sig) \
	"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=" sh ", Signature=" sig
#define HOST { "Host", "example.amazonaws.com" }
#define DATE { "X-Amz-Date", "20150830T123600Z" }

static const struct vec suite[] = {
	{ "get-vanilla", "GET", "/", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31") } },
	  EMPTY_SHA,
	  "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA },
	{ "get-vanilla-query-order-key-case", "GET", "/", "Param2=value2&Param1=value1",
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500") } },
	  EMPTY_SHA,
	  "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA },
	{ "get-vanilla-query-order-value", "GET", "/", "Param1=value2&Param1=value1",
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694") } },
	  EMPTY_SHA, NULL },
	{ "get-vanilla-query-order-key", "GET", "/", "Param1=value2&Param1=Value1",
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1") } },
	  EMPTY_SHA, NULL },
	{ "get-vanilla-query-order-encoded", "GET", "/", "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac") } },
	  EMPTY_SHA,
	  "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA },
	{ "get-vanilla-query-unreserved", "GET", "/",
	  "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197") } },
	  EMPTY_SHA, NULL },
	{ "get-vanilla-utf8-query", "GET", "/", "\xe1\x88\xb4=bar",
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04") } },
	  EMPTY_SHA, NULL },
	{ "get-vanilla-empty-query-key", "GET", "/", "Param1=value1",
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb") } },
	  EMPTY_SHA, NULL },
	{ "get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f") } },
	  EMPTY_SHA, NULL },
	{ "get-utf8 (raw bytes)", "GET", "/\xe1\x88\xb4", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85") } },
	  EMPTY_SHA,
	  "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA },
	{ "get-utf8 (as a client sends it, %-encoded)", "GET", "/%e1%88%B4", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85") } },
	  EMPTY_SHA, NULL },
	{ "get-header-value-trim", "GET", "/", NULL,
	  { HOST, { "My-Header1", " value1" }, { "My-Header2", " \"a   b   c\"" }, DATE,
	    { "Authorization", AUTHZ_SUITE("host;my-header1;my-header2;x-amz-date",
	    "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736") } },
	  EMPTY_SHA,
	  "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA },
	{ "get-header-key-duplicate", "GET", "/", NULL,
	  { HOST, { "My-Header1", "value2" }, { "My-Header1", "value2" }, { "My-Header1", "value1" }, DATE,
	    { "Authorization", AUTHZ_SUITE("host;my-header1;x-amz-date",
	    "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea") } },
	  EMPTY_SHA, NULL },
	{ "get-header-value-order", "GET", "/", NULL,
	  { HOST, { "My-Header1", "value4" }, { "My-Header1", "value1" }, { "My-Header1", "value3" },
	    { "My-Header1", "value2" }, DATE,
	    { "Authorization", AUTHZ_SUITE("host;my-header1;x-amz-date",
	    "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01") } },
	  EMPTY_SHA, NULL },
	{ "get-header-value-multiline", "GET", "/", NULL,
	  { HOST, { "My-Header1", "value1\r\n  value2\r\n     value3" }, DATE,
	    { "Authorization", AUTHZ_SUITE("host;my-header1;x-amz-date",
	    "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd") } },
	  EMPTY_SHA, NULL },
	{ "post-vanilla", "POST", "/", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b") } },
	  EMPTY_SHA, NULL },
	{ "post-vanilla-query", "POST", "/", "Param1=value1",
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11") } },
	  EMPTY_SHA, NULL },
	{ "post-header-key-sort", "POST", "/", NULL,
	  { HOST, { "My-Header1", "value1" }, DATE,
	    { "Authorization", AUTHZ_SUITE("host;my-header1;x-amz-date",
	    "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c") } },
	  EMPTY_SHA, NULL },
	{ "post-header-value-case", "POST", "/", NULL,
	  { HOST, { "My-Header1", "VALUE1" }, DATE,
	    { "Authorization", AUTHZ_SUITE("host;my-header1;x-amz-date",
	    "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d") } },
	  EMPTY_SHA, NULL },
	/* aws-c-auth's v4 suite, "normalize": false (what S3 signs): the path
	 * is literal, dot segments and double slashes included. */
	{ "get-slash-unnormalized", "GET", "//", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e") } },
	  EMPTY_SHA, NULL },
	{ "get-slashes-unnormalized", "GET", "//example//", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5") } },
	  EMPTY_SHA,
	  "GET\n//example//\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA },
	{ "get-slash-dot-slash-unnormalized", "GET", "/./", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145") } },
	  EMPTY_SHA, NULL },
	{ "get-slash-pointless-dot-unnormalized", "GET", "/./example", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "beb03f223f7deae4146464f06e29eebbee9c8afbe15c290cf07aa8b119e14cff") } },
	  EMPTY_SHA, NULL },
	{ "get-relative-unnormalized", "GET", "/example/..", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "eca7ead57bb5aa5c8e28007acd4ff04e1ff9a0ff3b237ec1554a184887ff9282") } },
	  EMPTY_SHA, NULL },
	{ "get-relative-relative-unnormalized", "GET", "/example1/example2/../..", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b") } },
	  EMPTY_SHA, NULL },
	{ "get-space-unnormalized", "GET", "/example%20space/", NULL,
	  { HOST, DATE, { "Authorization", AUTHZ_SUITE("host;x-amz-date",
	    "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741") } },
	  EMPTY_SHA,
	  "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA },
	{ "post-x-www-form-urlencoded", "POST", "/", NULL,
	  { { "Content-Type", "application/x-www-form-urlencoded" }, HOST, DATE,
	    { "Authorization", AUTHZ_SUITE("content-type;host;x-amz-date",
	    "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a") } },
	  "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e", NULL },
};

#define S3_HOST { "Host", "examplebucket.s3.amazonaws.com" }
#define S3_DATE { "x-amz-date", "20130524T000000Z" }
#define S3_EMPTY { "x-amz-content-sha256", EMPTY_SHA }
#define AUTHZ_S3(sh, sig) \
	"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=" sh ",Signature=" sig

static const struct vec s3_examples[] = {
	{ "GET Object", "GET", "/test.txt", NULL,
	  { S3_HOST, { "Range", "bytes=0-9" }, S3_EMPTY, S3_DATE,
	    { "Authorization", AUTHZ_S3("host;range;x-amz-content-sha256;x-amz-date",
	    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41") } },
	  NULL,
	  "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
	  "x-amz-content-sha256:" EMPTY_SHA "\nx-amz-date:20130524T000000Z\n\n"
	  "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA },
	{ "PUT Object", "PUT", "/test$file.text", NULL,
	  { S3_HOST, { "Date", "Fri, 24 May 2013 00:00:00 GMT" }, S3_DATE,
	    { "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	    { "x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072" },
	    { "Authorization", AUTHZ_S3("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
	    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd") } },
	  NULL, NULL },
	{ "GET Bucket lifecycle", "GET", "/", "lifecycle",
	  { S3_HOST, S3_DATE, S3_EMPTY,
	    { "Authorization", AUTHZ_S3("host;x-amz-content-sha256;x-amz-date",
	    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543") } },
	  NULL, NULL },
	{ "Get Bucket (List Objects)", "GET", "/", "max-keys=2&prefix=J",
	  { S3_HOST, S3_DATE, S3_EMPTY,
	    { "Authorization", AUTHZ_S3("host;x-amz-content-sha256;x-amz-date",
	    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7") } },
	  NULL, NULL },
};

#define PRESIGN_QUERY \
	"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" \
	"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" \
	"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

static const struct vec presigned = {
	"presigned GET Object", "GET", "/test.txt", PRESIGN_QUERY, { S3_HOST }, NULL, NULL,
};

static struct s3_auth *new_auth(const char *service, const char *region)
{
	struct s3_auth_config cfg = {
		.region = region, .service = service, .lookup = lookup,
	};
	struct s3_auth *a;

	assert_int_equal(s3_auth_new(&cfg, &a), 0);
	return a;
}

static int verify(struct s3_auth *a, const struct vec *v, int64_t now,
		  struct s3_auth_result *res)
{
	struct s3_header h[MAX_H];
	struct s3_sig_req r;

	build(v, h, &r);
	return s3_auth_verify(a, &r, now, res);
}

static void check_creq(const struct vec *v)
{
	struct s3_header h[MAX_H];
	struct s3_sig_req r;
	struct s3_buf b = { 0 };
	const char *authz = NULL, *sh, *end;
	const char *ph = v->payload_hash;
	size_t n = build(v, h, &r);

	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v->headers[i][0], "Authorization"))
			authz = v->headers[i][1];
		if (!strcmp(v->headers[i][0], "x-amz-content-sha256"))
			ph = v->headers[i][1];
	}
	assert_non_null(authz);
	sh = strstr(authz, "SignedHeaders=") + 14;
	end = strchr(sh, ',');
	assert_int_equal(s3_canonical_request(&b, &r, sh, (size_t)(end - sh), ph, false), 0);
	assert_string_equal(b.p, v->creq);
	s3_buf_free(&b);
}

static void test_suite_vectors(void **state)
{
	struct s3_auth *a = new_auth("service", "us-east-1");
	struct s3_auth_result res;

	for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++) {
		int ret;

		if (suite[i].creq)
			check_creq(&suite[i]);
		ret = verify(a, &suite[i], SUITE_TIME, &res);
		if (ret)
			fail_msg("%s: %d (%s)", suite[i].name, ret, s3_strerror(ret));
		assert_string_equal(res.access_key, "AKIDEXAMPLE");
		assert_string_equal(res.scope, "20150830/us-east-1/service/aws4_request");
		assert_int_equal(res.payload, S3_PAYLOAD_SHA256);
		/* again: now from the signing-key cache */
		assert_int_equal(verify(a, &suite[i], SUITE_TIME + 60, &res), 0);
	}
	s3_auth_free(a);
}

/* The client-side signer (s3_sign_authz) must produce each vector's
 * Authorization signature from the request alone. */
static void sign_check(const struct vec *v, const char *secret, const char *scope,
		       const char *amz_date, const char *region, const char *service)
{
	struct s3_header h[MAX_H];
	struct s3_sig_req r;
	struct s3_buf out = { 0 };
	const char *authz = NULL, *ph = v->payload_hash, *sh, *end;
	char signed_headers[256], ak[64];
	uint8_t key[32];
	size_t n = build(v, h, &r);

	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v->headers[i][0], "Authorization"))
			authz = v->headers[i][1];
		if (!strcmp(v->headers[i][0], "x-amz-content-sha256"))
			ph = v->headers[i][1];
	}
	assert_non_null(authz);
	assert_non_null(ph);
	sh = strstr(authz, "SignedHeaders=") + 14;
	end = strchr(sh, ',');
	snprintf(signed_headers, sizeof(signed_headers), "%.*s", (int)(end - sh), sh);
	sscanf(strstr(authz, "Credential=") + 11, "%63[^/]", ak);
	s3_signing_key(secret, scope, region, service, key);
	assert_int_equal(s3_sign_authz(&out, &r, signed_headers, ph, ak, scope, amz_date, key), 0);
	if (strcmp(strstr(out.p, "Signature="), strstr(authz, "Signature=")))
		fail_msg("%s: signed %s, expected %s", v->name, out.p, authz);
	assert_non_null(strstr(out.p, signed_headers));
	s3_buf_free(&out);
}

static void test_signer_vectors(void **state)
{
	for (size_t i = 0; i < sizeof(suite) / sizeof(suite[0]); i++)
		sign_check(&suite[i], "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
			   "20150830/us-east-1/service/aws4_request", "20150830T123600Z",
			   "us-east-1", "service");
	for (size_t i = 0; i < sizeof(s3_examples) / sizeof(s3_examples[0]); i++)
		sign_check(&s3_examples[i], "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			   "20130524/us-east-1/s3/aws4_request", "20130524T000000Z",
			   "us-east-1", "s3");
}

/* What the signer signs, the verifier accepts, UNSIGNED-PAYLOAD included
 * (strata-bench s3's default), and a wrong secret is refused. */
static void test_signer_roundtrip(void **state)
{
	struct s3_auth *a = new_auth(NULL, "us-east-1");
	struct s3_auth_result res;
	struct s3_buf out = { 0 };
	struct s3_header h[4] = {
		{ "Host", 4, "127.0.0.1:8480", 14 },
		{ "x-amz-content-sha256", 20, "UNSIGNED-PAYLOAD", 16 },
		{ "x-amz-date", 10, "20130524T000000Z", 16 },
	};
	struct s3_sig_req r = {
		.method = "PUT", .path = "/bucket/dir/k%20ey", .path_len = 18,
		.headers = h, .n_headers = 3,
	};
	uint8_t key[32];

	for (int wrong = 0; wrong < 2; wrong++) {
		s3_signing_key(wrong ? "not-the-secret" : "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
			       "20130524", "us-east-1", "s3", key);
		s3_buf_reset(&out);
		assert_int_equal(s3_sign_authz(&out, &r, "host;x-amz-content-sha256;x-amz-date",
					       "UNSIGNED-PAYLOAD", "AKIAIOSFODNN7EXAMPLE",
					       "20130524/us-east-1/s3/aws4_request",
					       "20130524T000000Z", key), 0);
		h[3] = (struct s3_header){ "Authorization", 13, out.p, out.len };
		r.n_headers = 4;
		assert_int_equal(s3_auth_verify(a, &r, S3_TIME, &res),
				 wrong ? S3E_SIGNATURE : 0);
		r.n_headers = 3;
		if (!wrong)
			assert_int_equal(res.payload, S3_PAYLOAD_UNSIGNED);
	}
	s3_buf_free(&out);
	s3_auth_free(a);
}

static void test_s3_examples(void **state)
{
	struct s3_auth *a = new_auth(NULL, "us-east-1");
	struct s3_auth_result res;

	for (size_t i = 0; i < sizeof(s3_examples) / sizeof(s3_examples[0]); i++) {
		int ret;

		if (s3_examples[i].creq)
			check_creq(&s3_examples[i]);
		ret = verify(a, &s3_examples[i], S3_TIME, &res);
		if (ret)
			fail_msg("%s: %d (%s)", s3_examples[i].name, ret, s3_strerror(ret));
		assert_false(res.presigned);
		assert_int_equal(res.payload, S3_PAYLOAD_SHA256);
		assert_int_equal(res.request_time, S3_TIME);
	}
	/* PUT's payload hash is handed over for the body check. */
	assert_int_equal(verify(a, &s3_examples[1], S3_TIME, &res), 0);
	{
		uint8_t d[32];

		s3_cksum_buf(S3_CKSUM_SHA256, "Welcome to Amazon S3.", 21, d);
		assert_memory_equal(res.payload_sha256, d, 32);
	}
	s3_auth_free(a);
}

static void test_presigned(void **state)
{
	struct s3_auth *a = new_auth(NULL, NULL);	/* any region */
	struct s3_auth_result res;
	struct vec v = presigned;

	assert_int_equal(verify(a, &v, S3_TIME, &res), 0);
	assert_true(res.presigned);
	assert_int_equal(res.payload, S3_PAYLOAD_UNSIGNED);
	assert_string_equal(res.access_key, "AKIAIOSFODNN7EXAMPLE");
	/* within the validity window: fine, even a day later */
	assert_int_equal(verify(a, &v, S3_TIME + 86400, &res), 0);
	assert_int_equal(verify(a, &v, S3_TIME + 86401, &res), S3E_EXPIRED);
	assert_string_equal(s3_err_message(S3E_EXPIRED), "Request has expired");
	assert_int_equal(verify(a, &v, S3_TIME - 3600, &res), S3E_NOT_YET_VALID);
	/* tampered: path, signature, expiry */
	v.path = "/test.txu";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_SIGNATURE);
	v = presigned;
	v.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		  "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86401&X-Amz-SignedHeaders=host"
		  "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_SIGNATURE);
	v.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		  "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host"
		  "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_QUERY_MALFORMED);
	/* expired when signed: 0 or negative (s3-tests' ExpiresIn=0, -7) */
	v.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		  "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=0&X-Amz-SignedHeaders=host"
		  "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_EXPIRED);
	v.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		  "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=-7&X-Amz-SignedHeaders=host"
		  "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_EXPIRED);
	v.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		  "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=-&X-Amz-SignedHeaders=host"
		  "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_QUERY_MALFORMED);
	v.query = "X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		  "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
		  "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_QUERY_MALFORMED);
	/* a parameter missing, or given twice */
	v.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_QUERY_MALFORMED);
	v.query = PRESIGN_QUERY "&X-Amz-Expires=1";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_QUERY_MALFORMED);
	/* presign parameters without X-Amz-Algorithm: not anonymous */
	v.query = "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		  "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_QUERY_MALFORMED);
	v.query = "x-amz-credential=foo&versionId=3";	/* names are case-sensitive */
	assert_int_equal(verify(a, &v, S3_TIME, &res), 1);
	/* too many query parameters */
	{
		struct s3_buf q = { 0 };

		s3_buf_adds(&q, PRESIGN_QUERY);
		for (int i = 0; i < 1100; i++)
			s3_buf_printf(&q, "&p%d=%d", i, i);
		v.query = q.p;
		assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_TOO_LARGE);
		s3_buf_free(&q);
	}
	/* an extra unsigned parameter changes the canonical query */
	v.query = PRESIGN_QUERY "&response-content-type=text%2Fplain";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_SIGNATURE);
	s3_auth_free(a);
}

static void test_refusals(void **state)
{
	struct s3_auth *a = new_auth(NULL, "us-east-1");
	struct s3_auth_result res;
	struct vec v = s3_examples[0];

	assert_int_equal(verify(a, &v, S3_TIME + 900, &res), 0);
	assert_int_equal(verify(a, &v, S3_TIME + 901, &res), S3E_TIME_SKEWED);
	assert_int_equal(verify(a, &v, S3_TIME - 901, &res), S3E_TIME_SKEWED);

	/* tampered header value, method, signature */
	v.headers[1][1] = "bytes=0-10";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_SIGNATURE);
	v = s3_examples[0];
	v.method = "HEAD";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_SIGNATURE);
	v = s3_examples[0];
	v.headers[4][1] = AUTHZ_S3("host;range;x-amz-content-sha256;x-amz-date",
		"f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb42");
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_SIGNATURE);
	/* uppercase hex of the right signature is the same signature */
	v.headers[4][1] = AUTHZ_S3("host;range;x-amz-content-sha256;x-amz-date",
		"F0E8BDB87C964420E857BD35B5D6ED310BD44F0170ABA48DD91039C6036BDB41");
	assert_int_equal(verify(a, &v, S3_TIME, &res), 0);

	/* unknown key, wrong region, wrong service, bad scope */
	v.headers[4][1] = "AWS4-HMAC-SHA256 Credential=AKIANOBODY/20130524/us-east-1/s3/aws4_request,"
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_INVALID_ACCESS_KEY);
	v.headers[4][1] = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/eu-west-1/s3/aws4_request,"
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_HEADER_MALFORMED);
	v.headers[4][1] = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request,"
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_HEADER_MALFORMED);
	v.headers[4][1] = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request,"
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_HEADER_MALFORMED);

	/* malformed headers */
	{
		static const char *const bad[] = {
			"AWS4-HMAC-SHA256",
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8",
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/2013052/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=Host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
			"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
			"AWS4-HMAC-SHA256 Foo=bar,Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			v.headers[4][1] = bad[i];
			if (verify(a, &v, S3_TIME, &res) != S3E_HEADER_MALFORMED)
				fail_msg("accepted or misjudged: %s", bad[i]);
		}
		v.headers[4][1] = "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=";
		assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_UNSUPPORTED_ALG);
		v.headers[4][1] = "AWS4-HMAC-SHA256K Credential=x";
		assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_UNSUPPORTED_ALG);
	}

	/* spaces after the commas, parameters in another order: fine */
	v.headers[4][1] = "AWS4-HMAC-SHA256  Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41, "
		"Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,  "
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date";
	assert_int_equal(verify(a, &v, S3_TIME, &res), 0);

	/* no x-amz-date; bad x-amz-date */
	v = s3_examples[0];
	v.headers[3][0] = "x-amz-datex";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_MISSING_DATE);
	/* Date instead of x-amz-date: the same time, so the same signature
	 * once the signed header list names date (a different request) */
	v.headers[3][0] = "Date";
	v.headers[3][1] = "Fri, 24 May 2013 00:00:00 GMT";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_SIGNATURE);
	assert_string_equal(s3_err_code(S3E_SIGNATURE), "SignatureDoesNotMatch");
	{
		/* signed over Date (signature from an independent Python
		 * hmac/hashlib computation of the same canonical request) */
		struct vec dv = { "GET Object signed over Date", "GET", "/test.txt", NULL,
			{ S3_HOST, S3_EMPTY, { "Date", "Fri, 24 May 2013 00:00:00 GMT" },
			  { "Authorization", AUTHZ_S3("date;host;x-amz-content-sha256",
			    "f51e643fca75b7c8fd918b44dd7f5de20a60f46a456fd2170e1e8248a77144e1") } },
			NULL, NULL };

		assert_int_equal(verify(a, &dv, S3_TIME, &res), 0);
		assert_string_equal(res.amz_date, "20130524T000000Z");
		assert_int_equal(verify(a, &dv, S3_TIME + 901, &res), S3E_TIME_SKEWED);
	}
	v.headers[3][1] = "Fri, 24 May 2013 00:00:00 UTC";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_MISSING_DATE);
	v.headers[3][1] = "Fri, 24 Mai 2013 00:00:00 GMT";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_MISSING_DATE);
	v.headers[3][0] = "x-amz-date";
	v.headers[3][1] = "20130524T000000";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_MISSING_DATE);
	v.headers[3][1] = "20130532T000000Z";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_MISSING_DATE);

	/* x-amz-content-sha256: missing, unknown, streaming modes */
	v = s3_examples[0];
	v.headers[2][0] = "x-amz-content-sha25";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_MISSING_CONTENT_SHA256);
	v.headers[2][0] = "content-sha256";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_MISSING_CONTENT_SHA256);
	v = s3_examples[0];
	v.headers[2][1] = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_BAD_CONTENT_SHA256);

	/* an x-amz-* header that was not signed */
	v = s3_examples[0];
	v.headers[5][0] = "X-Amz-Meta-Color";
	v.headers[5][1] = "blue";
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_UNSIGNED_HEADERS);
	/* other unsigned headers are fine */
	v.headers[5][0] = "User-Agent";
	assert_int_equal(verify(a, &v, S3_TIME, &res), 0);

	/* anonymous; both mechanisms at once */
	v = s3_examples[0];
	v.headers[4][0] = "X-Not-Authorization";
	assert_int_equal(verify(a, &v, S3_TIME, &res), 1);
	v = s3_examples[0];
	v.query = PRESIGN_QUERY;
	assert_int_equal(verify(a, &v, S3_TIME, &res), S3E_QUERY_MALFORMED);
	s3_auth_free(a);
}

/* A secret that changes under the same key must not hit a stale cache. */
static const char *rot_secret;
static int rot_lookup(void *arg, const char *ak, char *secret, size_t cap)
{
	snprintf(secret, cap, "%s", rot_secret);
	return (int)strlen(secret);
}

static void test_key_rotation(void **state)
{
	struct s3_auth_config cfg = { .lookup = rot_lookup };
	struct s3_auth *a;
	struct s3_auth_result res;

	assert_int_equal(s3_auth_new(&cfg, &a), 0);
	rot_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
	assert_int_equal(verify(a, &s3_examples[0], S3_TIME, &res), 0);
	rot_secret = "another secret";
	assert_int_equal(verify(a, &s3_examples[0], S3_TIME, &res), S3E_SIGNATURE);
	rot_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
	assert_int_equal(verify(a, &s3_examples[0], S3_TIME, &res), 0);
	s3_auth_free(a);
}

static void test_canonical_pieces(void **state)
{
	struct s3_buf b = { 0 };

	/* S3 keeps dot segments and double slashes, encodes once */
	assert_int_equal(s3_canonical_uri(&b, "/a/./b/../c//d", 14), 0);
	assert_string_equal(b.p, "/a/./b/../c//d");
	s3_buf_reset(&b);
	assert_int_equal(s3_canonical_uri(&b, "/my%20key+x=$y%2Fz%zz", strlen("/my%20key+x=$y%2Fz%zz")), 0);
	assert_string_equal(b.p, "/my%20key%2Bx%3D%24y/z%25zz");
	s3_buf_reset(&b);
	assert_int_equal(s3_canonical_uri(&b, "", 0), 0);
	assert_string_equal(b.p, "/");
	s3_buf_reset(&b);
	/* query: empty values, no '=', sorting by encoded key then value */
	assert_int_equal(s3_canonical_query(&b, "uploads&b=2&a=2&a=1&c=%7e&&d=a+b", strlen("uploads&b=2&a=2&a=1&c=%7e&&d=a+b"), false), 0);
	assert_string_equal(b.p, "a=1&a=2&b=2&c=~&d=a%2Bb&uploads=");
	s3_buf_reset(&b);
	assert_int_equal(s3_canonical_query(&b, "X-Amz-Signature=abc&x=1", 23, true), 0);
	assert_string_equal(b.p, "x=1");
	s3_buf_free(&b);

	{
		int64_t t;

		assert_int_equal(s3_parse_amz_date("20150830T123600Z", 16, &t), 0);
		assert_int_equal(t, SUITE_TIME);
		assert_int_equal(s3_parse_amz_date("20150230T123600Z", 16, &t), -EINVAL);
		assert_int_equal(s3_parse_amz_date("2015083OT123600Z", 16, &t), -EINVAL);
		assert_int_equal(s3_parse_amz_date("20150830T246000Z", 16, &t), -EINVAL);
	}
	{
		/* the signing key of the AWS docs' example */
		uint8_t key[32];
		char hex[65];

		s3_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830",
			       "us-east-1", "iam", key);
		s3_hex(key, 32, hex);
		assert_string_equal(hex, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
	}
}

static void test_credentials_file(void **state)
{
	static const char text[] =
		"# generated by tools/dev up\n"
		"[default]\n"
		"aws_access_key_id = STRATAAAAAAAAAAAAAAA\n"
		"aws_secret_access_key = secret/one+\n"
		"\n"
		"[alt]\r\n"
		"region=us-east-1\r\n"
		"aws_access_key_id=STRATABBBBBBBBBBBBBB\r\n"
		"aws_secret_access_key=secret-two\r\n"
		"[incomplete]\n"
		"aws_access_key_id = STRATACCCC\n";
	struct s3_creds *c;
	char secret[S3_SECRET_MAX + 1];

	assert_int_equal(s3_creds_parse(text, sizeof(text) - 1, &c), 0);
	assert_int_equal(s3_creds_count(c), 2);
	assert_string_equal(s3_creds_profile_key(c, "default"), "STRATAAAAAAAAAAAAAAA");
	assert_string_equal(s3_creds_profile_key(c, "alt"), "STRATABBBBBBBBBBBBBB");
	assert_null(s3_creds_profile_key(c, "incomplete"));
	assert_int_equal(s3_creds_lookup(c, "STRATAAAAAAAAAAAAAAA", secret, sizeof(secret)), 11);
	assert_string_equal(secret, "secret/one+");
	assert_int_equal(s3_creds_lookup(c, "STRATABBBBBBBBBBBBBB", secret, sizeof(secret)), 10);
	assert_string_equal(secret, "secret-two");
	assert_int_equal(s3_creds_lookup(c, "STRATACCCC", secret, sizeof(secret)), -ENOENT);
	assert_int_equal(s3_creds_lookup(c, "STRATAAAAAAAAAAAAAAA", secret, 5), -ENOSPC);
	s3_creds_free(c);

	assert_int_equal(s3_creds_parse("aws_access_key_id = x\n", 22, &c), -EINVAL);
	assert_int_equal(s3_creds_parse("[default\n", 9, &c), -EINVAL);
	assert_int_equal(s3_creds_parse("[a]\njunk\n", 9, &c), -EINVAL);
	assert_int_equal(s3_creds_load("/nonexistent/credentials", &c), -ENOENT);

	/* the loader and the verifier together */
	{
		char path[] = "/tmp/strata-creds-XXXXXX";
		int fd = mkstemp(path);
		static const char f[] = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
			"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
		struct s3_auth_config cfg = { .region = "us-east-1", .lookup = s3_creds_lookup };
		struct s3_auth *a;
		struct s3_auth_result res;

		assert_true(fd >= 0);
		assert_int_equal(write(fd, f, sizeof(f) - 1), (ssize_t)(sizeof(f) - 1));
		close(fd);
		assert_int_equal(s3_creds_load(path, &c), 0);
		unlink(path);
		cfg.lookup_arg = c;
		assert_int_equal(s3_auth_new(&cfg, &a), 0);
		assert_int_equal(verify(a, &s3_examples[3], S3_TIME, &res), 0);
		s3_auth_free(a);
		s3_creds_free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite_vectors),
		cmocka_unit_test(test_s3_examples),
		cmocka_unit_test(test_signer_vectors),
		cmocka_unit_test(test_signer_roundtrip),
		cmocka_unit_test(test_presigned),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_key_rotation),
		cmocka_unit_test(test_canonical_pieces),
		cmocka_unit_test(test_credentials_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
