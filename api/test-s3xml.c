/* XML request bodies (valid, invalid, hostile) and the response writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static int complete(const char *xml, struct s3_complete_mpu *c)
{
	return s3_xml_parse_complete_mpu(xml, strlen(xml), c);
}

static void test_complete_mpu(void **state)
{
	struct s3_complete_mpu c;

	assert_int_equal(complete(
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<CompleteMultipartUpload " NS ">\n"
		"  <Part>\n    <PartNumber>1</PartNumber>\n"
		"    <ETag>\"a54357aff0632cce46d942af68356b38\"</ETag>\n  </Part>\n"
		"  <Part><ETag>\"0c78aef83f66abc1fa1e8477f296d394\"</ETag><PartNumber> 2 </PartNumber>"
		"<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>\n"
		"  <Part><PartNumber>10000</PartNumber><ETag>&quot;x&amp;y&quot;</ETag></Part>\n"
		"</CompleteMultipartUpload>", &c), 0);
	assert_int_equal(c.n_parts, 3);
	assert_int_equal(c.parts[0].number, 1);
	assert_string_equal(c.parts[0].etag, "\"a54357aff0632cce46d942af68356b38\"");
	assert_int_equal(c.parts[1].number, 2);
	assert_int_equal(c.parts[1].cksum_alg, S3_CKSUM_CRC32);
	assert_string_equal(c.parts[1].cksum, "AAAAAA==");
	assert_int_equal(c.parts[0].cksum_alg, S3_CKSUM_NONE);
	assert_null(c.parts[0].cksum);
	assert_int_equal(c.parts[2].number, 10000);
	assert_string_equal(c.parts[2].etag, "\"x&y\"");
	s3_complete_mpu_free(&c);

	/* each part's checksum element, trimmed; ChecksumType is ignored */
	assert_int_equal(complete(
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag>"
		"<ChecksumSHA256> 275VF5loJr1YYawit0XSHREhkFXYkkPKGuoK0x9VKxI= </ChecksumSHA256></Part>"
		"<Part><PartNumber>2</PartNumber><ETag>b</ETag><ChecksumType>FULL_OBJECT</ChecksumType>"
		"<ChecksumCRC64NVME>L/E4WYn8v98=</ChecksumCRC64NVME></Part>"
		"<Part><PartNumber>3</PartNumber><ETag>c</ETag><ChecksumCRC32C>MDaLrw==</ChecksumCRC32C></Part>"
		"<Part><PartNumber>4</PartNumber><ETag>d</ETag><ChecksumSHA1>x</ChecksumSHA1></Part>"
		"</CompleteMultipartUpload>", &c), 0);
	assert_int_equal(c.parts[0].cksum_alg, S3_CKSUM_SHA256);
	assert_string_equal(c.parts[0].cksum, "275VF5loJr1YYawit0XSHREhkFXYkkPKGuoK0x9VKxI=");
	assert_int_equal(c.parts[1].cksum_alg, S3_CKSUM_CRC64NVME);
	assert_int_equal(c.parts[2].cksum_alg, S3_CKSUM_CRC32C);
	assert_int_equal(c.parts[3].cksum_alg, S3_CKSUM_SHA1);
	s3_complete_mpu_free(&c);

	/* order, range, shape */
	assert_int_equal(complete("<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part>"
				  "<Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>", &c),
			 S3E_INVALID_PART_ORDER);
	assert_int_equal(complete("<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part>"
				  "<Part><PartNumber>2</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>", &c),
			 S3E_INVALID_PART_ORDER);
	assert_int_equal(complete("<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>a</ETag></Part>"
				  "</CompleteMultipartUpload>", &c), S3E_INVALID_PART);
	assert_int_equal(complete("<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber><ETag>a</ETag></Part>"
				  "</CompleteMultipartUpload>", &c), S3E_INVALID_PART);
	static const char *const bad[] = {
		"",
		"<CompleteMultipartUpload></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>-1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
		("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag><ChecksumCRC32>a</ChecksumCRC32>"
		 "<ChecksumSHA1>b</ChecksumSHA1></Part></CompleteMultipartUpload>"),
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>",
		"<Delete><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Delete>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload><x/>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload",
		"<a><b><c><d><e><f><g><h><i><j/></i></h></g></f></e></d></c></b></a>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (complete(bad[i], &c) != S3E_MALFORMED_XML)
			fail_msg("accepted: %s", bad[i]);
}

/* 10000 parts is fine, 10001 is not; the body cap holds. */
static void test_complete_mpu_limits(void **state)
{
	struct s3_buf b = { 0 };
	struct s3_complete_mpu c;

	assert_int_equal(s3_buf_adds(&b, "<CompleteMultipartUpload>"), 0);
	for (int i = 1; i <= S3_MAX_PARTS; i++)
		assert_int_equal(s3_buf_printf(&b, "<Part><PartNumber>%d</PartNumber><ETag>\"%032x\"</ETag></Part>",
					       i, i), 0);
	assert_int_equal(s3_buf_adds(&b, "</CompleteMultipartUpload>"), 0);
	assert_true(b.len < S3_XML_MAX_BODY);
	assert_int_equal(s3_xml_parse_complete_mpu(b.p, b.len, &c), 0);
	assert_int_equal(c.n_parts, S3_MAX_PARTS);
	assert_int_equal(c.parts[S3_MAX_PARTS - 1].number, S3_MAX_PARTS);
	s3_complete_mpu_free(&c);

	/* a 10001st part: refused by count before anything else */
	b.len -= strlen("</CompleteMultipartUpload>");
	assert_int_equal(s3_buf_adds(&b, "<Part><PartNumber>10000</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>"), 0);
	assert_int_equal(s3_xml_parse_complete_mpu(b.p, b.len, &c), S3E_MALFORMED_XML);
	s3_buf_free(&b);

	{
		size_t n = S3_XML_MAX_BODY + 1;
		char *big = malloc(n);

		memset(big, ' ', n);
		assert_int_equal(s3_xml_parse_complete_mpu(big, n, &c), S3E_TOO_LARGE);
		free(big);
	}
}

static void test_delete(void **state)
{
	struct s3_delete_req d;
	static const char ok[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
		"<Delete " NS "><Quiet>true</Quiet>"
		"<Object><Key>sample1.txt</Key></Object>"
		"<Object><Key>dir/\xc3\xbc &lt;b&gt; </Key><VersionId>OYcLXagmS.WaD..oyH4KRguB95_YhLs7</VersionId></Object>"
		"</Delete>";

	assert_int_equal(s3_xml_parse_delete(ok, strlen(ok), &d), 0);
	assert_true(d.quiet);
	assert_int_equal(d.n_objs, 2);
	assert_string_equal(d.objs[0].key, "sample1.txt");
	assert_null(d.objs[0].version_id);
	assert_string_equal(d.objs[1].key, "dir/\xc3\xbc <b> ");	/* keys are not trimmed */
	assert_string_equal(d.objs[1].version_id, "OYcLXagmS.WaD..oyH4KRguB95_YhLs7");
	s3_delete_req_free(&d);

	static const char *const bad[] = {
		"<Delete></Delete>",
		"<Delete><Quiet>yes</Quiet><Object><Key>a</Key></Object></Delete>",
		"<Delete><Object></Object></Delete>",
		"<Delete><Object><Key></Key></Object></Delete>",
		"<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
		"<Delete><Object><Key>a</Key></Object>",
		"<Delete><Object><Key>a\x01</Key></Object></Delete>",	/* not XML */
		"<Delete><Object><Key>\xff</Key></Object></Delete>",	/* not UTF-8 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (s3_xml_parse_delete(bad[i], strlen(bad[i]), &d) != S3E_MALFORMED_XML)
			fail_msg("accepted: %s", bad[i]);

	/* 1000 keys, not 1001; a key of 1024 bytes, not 1025 */
	{
		struct s3_buf b = { 0 };

		s3_buf_adds(&b, "<Delete>");
		for (int i = 0; i < S3_MAX_DELETE_KEYS; i++)
			s3_buf_printf(&b, "<Object><Key>k%d</Key></Object>", i);
		s3_buf_adds(&b, "</Delete>");
		assert_int_equal(s3_xml_parse_delete(b.p, b.len, &d), 0);
		assert_int_equal(d.n_objs, S3_MAX_DELETE_KEYS);
		assert_false(d.quiet);
		s3_delete_req_free(&d);
		b.len -= strlen("</Delete>");
		s3_buf_adds(&b, "<Object><Key>one more</Key></Object></Delete>");
		assert_int_equal(s3_xml_parse_delete(b.p, b.len, &d), S3E_MALFORMED_XML);
		s3_buf_reset(&b);
		s3_buf_adds(&b, "<Delete><Object><Key>");
		for (int i = 0; i < S3_MAX_KEY_LEN; i++)
			s3_buf_addc(&b, 'k');
		s3_buf_adds(&b, "</Key></Object></Delete>");
		assert_int_equal(s3_xml_parse_delete(b.p, b.len, &d), 0);
		assert_int_equal(strlen(d.objs[0].key), S3_MAX_KEY_LEN);
		s3_delete_req_free(&d);
		s3_buf_reset(&b);
		s3_buf_adds(&b, "<Delete><Object><Key>");
		for (int i = 0; i <= S3_MAX_KEY_LEN; i++)
			s3_buf_addc(&b, 'k');
		s3_buf_adds(&b, "</Key></Object></Delete>");
		assert_int_equal(s3_xml_parse_delete(b.p, b.len, &d), S3E_MALFORMED_XML);
		s3_buf_free(&b);
	}
}

static void test_create_bucket(void **state)
{
	char *loc;
	static const char ok[] =
		"<CreateBucketConfiguration " NS ">\n"
		"  <LocationConstraint>eu-west-1</LocationConstraint>\n"
		"</CreateBucketConfiguration>";

	assert_int_equal(s3_xml_parse_create_bucket(ok, strlen(ok), &loc), 0);
	assert_string_equal(loc, "eu-west-1");
	free(loc);
	assert_int_equal(s3_xml_parse_create_bucket("", 0, &loc), 0);
	assert_null(loc);
	assert_int_equal(s3_xml_parse_create_bucket(" \r\n", 3, &loc), 0);
	assert_null(loc);
	assert_int_equal(s3_xml_parse_create_bucket("<CreateBucketConfiguration/>", 28, &loc), 0);
	assert_string_equal(loc, "");
	free(loc);
	assert_int_equal(s3_xml_parse_create_bucket("<Other/>", 8, &loc), S3E_MALFORMED_XML);
	assert_null(loc);
	{
		static const char twice[] = "<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint>"
			"<LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>";

		assert_int_equal(s3_xml_parse_create_bucket(twice, strlen(twice), &loc), S3E_MALFORMED_XML);
	}
}

/* DOCTYPEs, entities, external references: all refused. */
static void test_hostile(void **state)
{
	static const char *const evil[] = {
		/* billion laughs */
		"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		"<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
		"<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
		"<Delete><Object><Key>&lol3;</Key></Object></Delete>",
		/* external entity */
		"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
		"<Delete><Object><Key>&xxe;</Key></Object></Delete>",
		/* external DTD */
		"<?xml version=\"1.0\"?><!DOCTYPE Delete SYSTEM \"http://example.com/x.dtd\">"
		"<Delete><Object><Key>a</Key></Object></Delete>",
		/* parameter entity */
		"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY % p SYSTEM \"http://example.com/p\">%p;]>"
		"<Delete><Object><Key>a</Key></Object></Delete>",
		/* an undeclared entity */
		"<Delete><Object><Key>&nope;</Key></Object></Delete>",
		/* an empty DOCTYPE */
		"<!DOCTYPE Delete><Delete><Object><Key>a</Key></Object></Delete>",
	};
	struct s3_delete_req d;

	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++)
		if (s3_xml_parse_delete(evil[i], strlen(evil[i]), &d) != S3E_MALFORMED_XML)
			fail_msg("accepted: %s", evil[i]);
	/* character references are fine */
	{
		static const char refs[] = "<Delete><Object><Key>&#x41;&#66;</Key></Object></Delete>";

		assert_int_equal(s3_xml_parse_delete(refs, strlen(refs), &d), 0);
	}
	assert_string_equal(d.objs[0].key, "AB");
	s3_delete_req_free(&d);
}

/* Writer output must parse back (with expat) to the same text. */
struct roundtrip {
	struct s3_buf text;
	int depth;
};

static void XMLCALL rt_start(void *ud, const XML_Char *n, const XML_Char **a)
{
	((struct roundtrip *)ud)->depth++;
}

static void XMLCALL rt_end(void *ud, const XML_Char *n)
{
	((struct roundtrip *)ud)->depth--;
}

static void XMLCALL rt_chars(void *ud, const XML_Char *s, int len)
{
	s3_buf_add(&((struct roundtrip *)ud)->text, s, (size_t)len);
}

static void parse_back(const struct s3_buf *b, struct roundtrip *rt)
{
	XML_Parser p = XML_ParserCreate("UTF-8");

	memset(rt, 0, sizeof(*rt));
	XML_SetUserData(p, rt);
	XML_SetElementHandler(p, rt_start, rt_end);
	XML_SetCharacterDataHandler(p, rt_chars);
	if (XML_Parse(p, b->p, (int)b->len, XML_TRUE) != XML_STATUS_OK)
		fail_msg("writer output does not parse: %s\n%s",
			 XML_ErrorString(XML_GetErrorCode(p)), b->p);
	XML_ParserFree(p);
}

static void test_writer(void **state)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;
	struct roundtrip rt;
	static const char key[] = "a&b<c>d\"e'f\tg\nh\ri\x01j\xc3\xbc\xff k";

	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "ListBucketResult", true);
	s3_xml_elem(&x, "Name", "bkt");
	s3_xml_elem_u64(&x, "MaxKeys", 1000);
	s3_xml_elem_bool(&x, "IsTruncated", false);
	s3_xml_open(&x, "Contents", false);
	s3_xml_elemn(&x, "Key", key, sizeof(key) - 1);
	s3_xml_close(&x);
	assert_int_equal(s3_xml_end(&x), 0);
	assert_non_null(strstr(b.p, "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				    "<Name>bkt</Name><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"));
	assert_non_null(strstr(b.p, "<Key>a&amp;b&lt;c&gt;d&quot;e&apos;f\tg\nh&#13;i\xef\xbf\xbdj\xc3\xbc\xef\xbf\xbd k</Key>"));
	assert_non_null(strstr(b.p, "</Contents></ListBucketResult>"));
	parse_back(&b, &rt);
	assert_int_equal(rt.depth, 0);
	/* the text as a parser sees it */
	assert_non_null(strstr(rt.text.p, "a&b<c>d\"e'f\tg\nh\ri\xef\xbf\xbdj\xc3\xbc\xef\xbf\xbd k"));
	s3_buf_free(&rt.text);
	s3_buf_free(&b);
	/* an element with attributes closes by its name alone */
	b = (struct s3_buf){ 0 };
	s3_xml_begin(&x, &b);
	s3_xml_open_attrs(&x, "Grantee", "xsi:type=\"CanonicalUser\"");
	s3_xml_elem(&x, "ID", "u");
	assert_int_equal(s3_xml_end(&x), 0);
	assert_non_null(strstr(b.p, "<Grantee xsi:type=\"CanonicalUser\"><ID>u</ID></Grantee>"));
	s3_buf_free(&b);

	/* the error document */
	assert_int_equal(s3_xml_error(&b, S3E_SIGNATURE, "/bkt/a&b", "4442587FB7D0A2F9"), 0);
	assert_string_equal(b.p,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code>"
		"<Message>The request signature we calculated does not match the signature you provided. "
		"Check your key and signing method.</Message><Resource>/bkt/a&amp;b</Resource>"
		"<RequestId>4442587FB7D0A2F9</RequestId></Error>");
	s3_buf_free(&b);

	/* errors stick: a capped buffer */
	b.max = 50;
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "ListAllMyBucketsResult", true);
	s3_xml_elem(&x, "Name", "x");
	assert_int_equal(s3_xml_end(&x), -E2BIG);
	s3_buf_free(&b);
}

static int tagging(const char *xml, struct s3_tagset *t)
{
	return s3_xml_parse_tagging(xml, strlen(xml), t);
}

/* PutObjectTagging bodies, the x-amz-tagging form, the limits (s3-tests:
 * 10 tags, 128/256-character keys/values) and the stored encoding. */
static void test_tagging(void **state)
{
	struct s3_tagset t, u;
	struct s3_buf b = { 0 };
	char k[S3_TAG_KEY_MAX + 2], v[S3_TAG_VALUE_MAX + 2];
	char *xml;

	assert_int_equal(tagging("<Tagging " NS "><TagSet><Tag><Key>a b</Key><Value>1&amp;2</Value></Tag>"
				 "<Tag><Value></Value><Key>\xc3\xa9t\xc3\xa9</Key></Tag><Tag><Key>c</Key></Tag>"
				 "</TagSet></Tagging>", &t), 0);
	/* in key order */
	assert_int_equal(t.n, 3);
	assert_string_equal(t.tags[0].key, "a b");
	assert_string_equal(t.tags[0].value, "1&2");
	assert_string_equal(t.tags[1].key, "c");
	assert_string_equal(t.tags[1].value, "");
	assert_string_equal(t.tags[2].key, "\xc3\xa9t\xc3\xa9");
	/* stored form, and back */
	assert_int_equal(s3_tagset_encode(&t, &b), 0);
	assert_string_equal(b.p, "a%20b=1%262&c=&%C3%A9t%C3%A9=");
	assert_int_equal(s3_tagset_parse_query(b.p, b.len, &u), 0);
	assert_int_equal(u.n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(u.tags[i].key, t.tags[i].key);
		assert_string_equal(u.tags[i].value, t.tags[i].value);
	}
	s3_tagset_free(&u);
	s3_tagset_free(&t);
	/* an empty set; no TagSet at all */
	assert_int_equal(tagging("<Tagging><TagSet/></Tagging>", &t), 0);
	assert_int_equal(t.n, 0);
	assert_int_equal(tagging("<Tagging></Tagging>", &t), 0);
	assert_int_equal(t.n, 0);
	/* the header form (s3-tests' "foo=bar&bar"), '+' and %-escapes */
	assert_int_equal(s3_tagset_parse_query("foo=bar&bar", 11, &t), 0);
	assert_int_equal(t.n, 2);
	assert_string_equal(t.tags[0].key, "bar");
	assert_string_equal(t.tags[0].value, "");
	assert_string_equal(t.tags[1].value, "bar");
	s3_tagset_free(&t);
	assert_int_equal(s3_tagset_parse_query("k+1=%41%3d", 10, &t), 0);
	assert_string_equal(t.tags[0].key, "k 1");
	assert_string_equal(t.tags[0].value, "A=");
	s3_tagset_free(&t);
	assert_int_equal(s3_tagset_parse_query("", 0, &t), 0);
	assert_int_equal(t.n, 0);
	static const char *const badq[] = {
		"a=1&a=2", "=v", "a=1&", "&", "a=%zz", "a=%00", "a=%ff",
		"0&1&2&3&4&5&6&7&8&9&10",
	};
	for (size_t i = 0; i < sizeof(badq) / sizeof(badq[0]); i++)
		if (s3_tagset_parse_query(badq[i], strlen(badq[i]), &t) != S3E_INVALID_TAG)
			fail_msg("accepted: %s", badq[i]);
	/* limits: 10 tags of 128 + 256 characters fit; one more of anything not */
	memset(k, 'k', sizeof(k));
	memset(v, 'v', sizeof(v));
	memset(&t, 0, sizeof(t));
	for (int i = 0; i < S3_MAX_TAGS; i++) {
		k[0] = (char)('0' + i);
		assert_int_equal(s3_tagset_add(&t, k, S3_TAG_KEY_MAX, v, S3_TAG_VALUE_MAX), 0);
	}
	assert_int_equal(s3_tagset_add(&t, "x", 1, "", 0), S3E_INVALID_TAG);
	s3_tagset_free(&t);
	assert_int_equal(s3_tagset_add(&t, k, S3_TAG_KEY_MAX + 1, "", 0), S3E_INVALID_TAG);
	assert_int_equal(s3_tagset_add(&t, "k", 1, v, S3_TAG_VALUE_MAX + 1), S3E_INVALID_TAG);
	assert_int_equal(s3_tagset_add(&t, "", 0, "v", 1), S3E_INVALID_TAG);
	assert_int_equal(s3_tagset_add(&t, "\xc3", 1, "v", 1), S3E_INVALID_TAG);
	/* 128 two-byte characters are 128 characters */
	s3_buf_reset(&b);
	for (int i = 0; i < S3_TAG_KEY_MAX; i++)
		assert_int_equal(s3_buf_adds(&b, "\xc3\xa9"), 0);
	assert_int_equal(s3_tagset_add(&t, b.p, b.len, "", 0), 0);
	assert_int_equal(t.n, 1);
	s3_tagset_free(&t);
	/* XML: 11 tags, a duplicate key, a Tag without Key, two Keys */
	s3_buf_reset(&b);
	assert_int_equal(s3_buf_adds(&b, "<Tagging><TagSet>"), 0);
	for (int i = 0; i <= S3_MAX_TAGS; i++)
		assert_int_equal(s3_buf_printf(&b, "<Tag><Key>%d</Key><Value>%d</Value></Tag>", i, i), 0);
	assert_int_equal(s3_buf_adds(&b, "</TagSet></Tagging>"), 0);
	assert_int_equal(s3_xml_parse_tagging(b.p, b.len, &t), S3E_INVALID_TAG);
	assert_int_equal(tagging("<Tagging><TagSet><Tag><Key>a</Key></Tag><Tag><Key>a</Key></Tag>"
				 "</TagSet></Tagging>", &t), S3E_INVALID_TAG);
	assert_int_equal(tagging("<Tagging><TagSet><Tag><Value>a</Value></Tag></TagSet></Tagging>", &t),
			 S3E_MALFORMED_XML);
	assert_int_equal(tagging("<Tagging><TagSet><Tag><Key>a</Key><Key>b</Key></Tag></TagSet></Tagging>", &t),
			 S3E_MALFORMED_XML);
	assert_int_equal(tagging("<Tags><TagSet/></Tags>", &t), S3E_MALFORMED_XML);
	xml = "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag>";	/* unclosed */
	assert_int_equal(tagging(xml, &t), S3E_MALFORMED_XML);
	s3_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete_mpu),
		cmocka_unit_test(test_complete_mpu_limits),
		cmocka_unit_test(test_delete),
		cmocka_unit_test(test_create_bucket),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_tagging),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
