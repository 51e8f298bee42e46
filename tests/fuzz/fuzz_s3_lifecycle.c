/* libFuzzer target: PutBucketLifecycleConfiguration bodies
 * (api/s3lifecycle.c).
 *
 * Errors are fine; crashes, leaks and hangs are not. A parsed configuration
 * must respect its limits, and its canonical form (what the gateway stores
 * and GetBucketLifecycleConfiguration answers) must parse back to the same
 * rules: the stored copy is re-read by every gateway.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_lifecycle lc, back;
	struct s3_buf b = { 0 };
	bool stored = true;

	if (s3_lifecycle_parse((const char *)data, size, &lc) != 0)
		return 0;
	if (lc.n < 1 || lc.n > S3_LC_MAX_RULES)
		abort();
	for (size_t i = 0; i < lc.n; i++) {
		const struct s3_lc_rule *r = &lc.rules[i];

		if (!r->prefix || strlen(r->prefix) > S3_MAX_KEY_LEN ||
		    (r->id && strlen(r->id) > 255) ||
		    (r->has_transition && !r->transition_class))
			abort();
		/* What the gateway refuses is never stored, so never re-read. */
		if (r->other_filter || r->other_action || r->transition_date)
			stored = false;
	}
	if (!stored) {
		s3_lifecycle_free(&lc);
		return 0;
	}
	if (s3_lifecycle_xml(&lc, &b) != 0)
		abort();
	if (s3_lifecycle_parse(b.p, b.len, &back) != 0 || back.n != lc.n)
		abort();	/* the canonical form must parse back */
	for (size_t i = 0; i < lc.n; i++) {
		const struct s3_lc_rule *x = &lc.rules[i], *y = &back.rules[i];

		if (!same_str(x->id, y->id) || strcmp(x->prefix, y->prefix) ||
		    x->enabled != y->enabled || x->has_transition != y->has_transition ||
		    x->has_expiration != y->has_expiration ||
		    (x->has_transition && (x->transition_days != y->transition_days ||
					   strcmp(x->transition_class, y->transition_class))))
			abort();
	}
	s3_lifecycle_free(&back);
	s3_lifecycle_free(&lc);
	s3_buf_free(&b);
	return 0;
}
