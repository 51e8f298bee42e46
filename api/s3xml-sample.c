/* strata-s3xml-sample DOC: prints one response document the S3 layer will
 * send, built with s3xml.c's writer, for test-s3xml-botocore.py to parse
 * with botocore: list-v2, list-v2-plain, list-v1, buckets, error. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Keys a client must get back byte for byte; the control character only
 * survives with encoding-type=url (XML 1.0 cannot carry it). */
static const char *const keys[] = {
	"a b/c&d<e>f\"g'h",
	"\xc3\xbcnicode/\xe6\x97\xa5\xe6\x9c\xac.txt",
	"plus+sign=eq%25pct",
	"ctrl\001char",
};

int main(int argc, char **argv)
{
	struct s3_buf b = { 0 };
	const char *doc = argc > 1 ? argv[1] : "";
	int ret;

	if (!strncmp(doc, "list-", 5)) {
		bool plain = !strcmp(doc, "list-v2-plain");
		struct s3_list_object objs[4];
		static const char *const prefixes[] = { "dir one/", "\xc3\xa9t\xc3\xa9/" };
		struct s3_list_result r = {
			.version = strcmp(doc, "list-v1") ? 2 : 1,
			.bucket = "bkt", .prefix = "", .delimiter = "/",
			.max_keys = 1000, .truncated = true, .url_encode = !plain,
			.objs = objs, .n_objs = plain ? 3 : 4,
			.prefixes = prefixes, .n_prefixes = 2,
			.next_continuation_token = "tok/en+==", .start_after = "a b",
			.next_marker = "ctrl",
		};

		for (int i = 0; i < 4; i++)
			objs[i] = (struct s3_list_object){
				.key = keys[i], .mtime_ms = 1255369830000 + i,
				.etag = "\"fba9dede5f27731c9771645a39863328\"",
				.size = (uint64_t)i * 1000000007u,
			};
		ret = s3_xml_list_objects(&b, &r);
	} else if (!strcmp(doc, "buckets")) {
		struct s3_list_bucket v[] = {
			{ "bkt", 1255369830000 }, { "other-bucket", 1700000000123 },
		};

		ret = s3_xml_list_buckets(&b, "owner-id", "owner & co", v, 2, NULL, NULL);
	} else if (!strcmp(doc, "error")) {
		ret = s3_xml_error(&b, S3E_SIGNATURE, "/bkt/a&b", "req-1");
	} else {
		fprintf(stderr, "usage: strata-s3xml-sample list-v2|list-v2-plain|list-v1|buckets|error\n");
		return 2;
	}
	if (ret) {
		fprintf(stderr, "strata-s3xml-sample: %s\n", s3_strerror(ret));
		return 1;
	}
	fwrite(b.p, 1, b.len, stdout);
	s3_buf_free(&b);
	return 0;
}
