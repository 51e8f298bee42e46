/* Lifecycle configuration bodies (api/s3lifecycle.c): what is kept, what is
 * only flagged for the gateway to refuse, what is MalformedXML, and the
 * canonical form parsing back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "internal.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static int parse(const char *xml, struct s3_lifecycle *lc)
{
	return s3_lifecycle_parse(xml, strlen(xml), lc);
}

static void test_transition(void **state)
{
	struct s3_lifecycle lc, back;
	struct s3_buf b = { 0 };

	(void)state;
	assert_int_equal(parse(
		"<?xml version=\"1.0\"?><LifecycleConfiguration " NS ">"
		"<Rule><ID>logs</ID><Filter><Prefix>logs/</Prefix></Filter>"
		"<Status>Enabled</Status>"
		"<Transition><Days>90</Days><StorageClass>GLACIER_IR</StorageClass></Transition>"
		"<Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>"
		"</Rule>"
		"<Rule><Prefix>old/</Prefix><Status>Disabled</Status>"
		"<Transition><Days>0</Days><StorageClass>ONEZONE_IA</StorageClass></Transition>"
		"</Rule>"
		"<Rule><Filter/><Status>Enabled</Status><Expiration><Days>7</Days></Expiration></Rule>"
		"</LifecycleConfiguration>", &lc), 0);
	assert_int_equal(lc.n, 3);
	assert_string_equal(lc.rules[0].id, "logs");
	assert_string_equal(lc.rules[0].prefix, "logs/");
	assert_true(lc.rules[0].enabled && lc.rules[0].has_transition);
	/* several transitions: the earliest decides */
	assert_int_equal(lc.rules[0].transition_days, 30);
	assert_string_equal(lc.rules[0].transition_class, "STANDARD_IA");
	assert_null(lc.rules[1].id);
	assert_true(lc.rules[1].legacy_prefix && !lc.rules[1].enabled);
	assert_int_equal(lc.rules[1].transition_days, 0);
	assert_string_equal(lc.rules[2].prefix, "");
	assert_true(lc.rules[2].has_expiration && !lc.rules[2].has_transition);
	assert_int_equal(lc.rules[2].expiration_days, 7);

	assert_int_equal(s3_lifecycle_xml(&lc, &b), 0);
	assert_int_equal(s3_lifecycle_parse(b.p, b.len, &back), 0);
	assert_int_equal(back.n, 3);
	assert_string_equal(back.rules[1].prefix, "old/");
	assert_true(back.rules[1].legacy_prefix);
	assert_int_equal(back.rules[0].transition_days, 30);
	s3_lifecycle_free(&back);
	s3_lifecycle_free(&lc);
	s3_buf_free(&b);
}

static void test_flagged(void **state)
{
	struct s3_lifecycle lc;

	(void)state;
	assert_int_equal(parse(
		"<LifecycleConfiguration><Rule><Filter><And><Prefix>a</Prefix>"
		"<Tag><Key>k</Key><Value>v</Value></Tag></And></Filter>"
		"<Status>Enabled</Status>"
		"<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
		"</AbortIncompleteMultipartUpload></Rule>"
		"<Rule><Filter><Prefix>b</Prefix></Filter><Status>Enabled</Status>"
		"<Transition><Date>2030-01-01T00:00:00Z</Date><StorageClass>STANDARD_IA</StorageClass>"
		"</Transition></Rule></LifecycleConfiguration>", &lc), 0);
	assert_true(lc.rules[0].other_filter && lc.rules[0].other_action);
	assert_true(lc.rules[1].transition_date && !lc.rules[1].has_transition);
	s3_lifecycle_free(&lc);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"<LifecycleConfiguration/>",				/* no Rule */
		"<Lifecycle><Rule/></Lifecycle>",			/* wrong root */
		"<LifecycleConfiguration><Rule><Status>Enabled</Status></Rule>"
		"</LifecycleConfiguration>",				/* no action */
		"<LifecycleConfiguration><Rule><Status>On</Status><Expiration><Days>1</Days>"
		"</Expiration></Rule></LifecycleConfiguration>",
		"<LifecycleConfiguration><Rule><Expiration><Days>1</Days></Expiration></Rule>"
		"</LifecycleConfiguration>",				/* no Status */
		"<LifecycleConfiguration><Rule><Status>Enabled</Status><Transition><Days>x</Days>"
		"<StorageClass>STANDARD_IA</StorageClass></Transition></Rule></LifecycleConfiguration>",
		"<LifecycleConfiguration><Rule><Status>Enabled</Status><Transition><Days>1</Days>"
		"</Transition></Rule></LifecycleConfiguration>",	/* no class */
		"<LifecycleConfiguration><Rule><Prefix>a</Prefix><Filter/><Status>Enabled</Status>"
		"<Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
		"<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration>"
		"<Date>20200101</Date></Expiration></Rule></LifecycleConfiguration>",
		"<LifecycleConfiguration><Rule><Status>Enabled</Status><Transition>"
		"<Date>2030-01-01</Date><StorageClass>STANDARD_IA</StorageClass>"
		"</Transition></Rule></LifecycleConfiguration>",	/* not ISO 8601 */
		"<!DOCTYPE d [<!ENTITY a \"b\">]><LifecycleConfiguration/>",
	};
	struct s3_lifecycle lc;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &lc), S3E_MALFORMED_XML);
		assert_int_equal(lc.n, 0);
	}
}

/* What S3 answers InvalidArgument, not MalformedXML (the suite's
 * test_lifecycle_id_too_long, _same_id, _set_invalid_date,
 * _transition_set_invalid_date): checked before the gateway refuses the
 * Expiration and Date rules it does not do. */
static void test_invalid_argument(void **state)
{
	static const struct {
		const char *xml;
		int err;
	} cases[] = {
		{ "<LifecycleConfiguration><Rule><ID>a</ID><Status>Enabled</Status><Expiration>"
		  "<Days>1</Days></Expiration></Rule><Rule><ID>a</ID><Status>Enabled</Status>"
		  "<Expiration><Days>2</Days></Expiration></Rule></LifecycleConfiguration>",
		  S3E_LC_DUP_ID },
		/* botocore sends Date "20200101" as an epoch time, not midnight */
		{ "<LifecycleConfiguration><Rule><Status>Enabled</Status><Expiration>"
		  "<Date>1970-08-22T19:08:21Z</Date></Expiration></Rule></LifecycleConfiguration>",
		  S3E_LC_DATE },
		{ "<LifecycleConfiguration><Rule><Status>Enabled</Status>"
		  "<Expiration><Date>2023-09-27T00:00:00Z</Date></Expiration><Transition>"
		  "<Date>1970-08-23T00:55:27Z</Date><StorageClass>GLACIER</StorageClass>"
		  "</Transition></Rule></LifecycleConfiguration>", S3E_LC_DATE },
	};
	struct s3_lifecycle lc;
	char xml[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse(cases[i].xml, &lc), cases[i].err);
		assert_int_equal(lc.n, 0);
	}
	/* an ID of 256 bytes is too long, 255 is not */
	snprintf(xml, sizeof(xml), "<LifecycleConfiguration><Rule><ID>%0256d</ID>"
		 "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>"
		 "</LifecycleConfiguration>", 0);
	assert_int_equal(parse(xml, &lc), S3E_LC_LONG_ID);
	snprintf(xml, sizeof(xml), "<LifecycleConfiguration><Rule><ID>%0255d</ID>"
		 "<Status>Enabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z</Date>"
		 "</Expiration></Rule></LifecycleConfiguration>", 0);
	assert_int_equal(parse(xml, &lc), 0);
	assert_int_equal(strlen(lc.rules[0].id), 255);
	assert_true(lc.rules[0].has_expiration);
	s3_lifecycle_free(&lc);
	assert_string_equal(s3_err_code(S3E_LC_DATE), "InvalidArgument");
	assert_int_equal(s3_err_http_status(S3E_LC_LONG_ID), 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transition),
		cmocka_unit_test(test_flagged),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_invalid_argument),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
