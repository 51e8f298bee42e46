/* libFuzzer target: the XML request bodies and the XML writer
 * (api/s3xml.c), and tag sets in their query form (api/s3tags.c).
 *
 * Every parser gets the input: errors are fine, crashes, leaks and hangs
 * are not, and a parsed result must respect its limits. The writer gets it
 * as element text: its output must always be well-formed XML that parses
 * back.
 */
#include <expat.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct s3_complete_mpu c;
	struct s3_delete_req d;
	char *loc;

	if (s3_xml_parse_complete_mpu(s, size, &c) == 0) {
		if (c.n_parts < 1 || c.n_parts > S3_MAX_PARTS)
			abort();
		for (size_t i = 1; i < c.n_parts; i++)
			if (c.parts[i].number <= c.parts[i - 1].number)
				abort();
		/* a part's checksum text comes with the algorithm it named */
		for (size_t i = 0; i < c.n_parts; i++)
			if (!c.parts[i].cksum != (c.parts[i].cksum_alg == S3_CKSUM_NONE))
				abort();
		s3_complete_mpu_free(&c);
	}
	if (s3_xml_parse_delete(s, size, &d) == 0) {
		if (d.n_objs < 1 || d.n_objs > S3_MAX_DELETE_KEYS)
			abort();
		for (size_t i = 0; i < d.n_objs; i++)
			if (!d.objs[i].key || strlen(d.objs[i].key) > S3_MAX_KEY_LEN)
				abort();
		s3_delete_req_free(&d);
	}
	if (s3_xml_parse_create_bucket(s, size, &loc) == 0)
		free(loc);
	/* Tag sets, from the XML and from the query form: within the limits,
	 * and the stored encoding parses back to the same set. */
	for (int form = 0; form < 2; form++) {
		struct s3_tagset t, u;
		struct s3_buf b = { 0 };

		if ((form ? s3_tagset_parse_query(s, size, &t) :
			    s3_xml_parse_tagging(s, size, &t)) != 0)
			continue;
		if (t.n > S3_MAX_TAGS || s3_tagset_encode(&t, &b) < 0 ||
		    s3_tagset_parse_query(b.p ? b.p : "", b.len, &u) != 0 || u.n != t.n)
			abort();
		for (size_t i = 0; i < t.n; i++)
			if (strcmp(t.tags[i].key, u.tags[i].key) ||
			    strcmp(t.tags[i].value, u.tags[i].value))
				abort();
		s3_tagset_free(&u);
		s3_tagset_free(&t);
		s3_buf_free(&b);
	}

	{
		struct s3_buf b = { 0 };
		struct s3_xml x;
		XML_Parser p;

		s3_xml_begin(&x, &b);
		s3_xml_open(&x, "ListBucketResult", true);
		s3_xml_elemn(&x, "Key", s, size);
		if (s3_xml_end(&x) == 0) {
			p = XML_ParserCreate("UTF-8");
			if (XML_Parse(p, b.p, (int)b.len, XML_TRUE) != XML_STATUS_OK)
				abort();	/* the writer made bad XML */
			XML_ParserFree(p);
		}
		s3_buf_free(&b);
	}
	return 0;
}
