/* s3lifecycle.c: the PutBucketLifecycleConfiguration body (expat) and its
 * canonical XML form (the stored copy, and GetBucketLifecycleConfiguration).
 *
 * Parsed by s3xml.c's walk (s3_xml_walk(): one XML_Parse() over a bounded
 * body, any DOCTYPE refused (no entities), elements matched by their path
 * from the root, unknown ones ignored, text bounded). Only the structure is checked here;
 * what the gateway supports of it (gw_tier.c) is its business: the parse
 * records every action and filter kind it meets, so an unsupported one is
 * answered NotImplemented rather than silently dropped.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lc_parse {
	struct s3_xml_walk w;		/* first: the callbacks cast back */
	struct s3_lifecycle *lc;
	size_t cap;
	struct s3_lc_rule cur;		/* the Rule being read */
	bool have_status, in_transition, have_tdays;
	uint32_t tdays;
	char *tclass;
};

static const char *const lc_names[] = {
	"LifecycleConfiguration", "Rule", "ID", "Status", "Filter", "Prefix",
	"Transition", "Days", "Date", "StorageClass", "Expiration", "And", "Tag",
	"ObjectSizeGreaterThan", "ObjectSizeLessThan", "NoncurrentVersionTransition",
	"NoncurrentVersionExpiration", "AbortIncompleteMultipartUpload",
	"ExpiredObjectDeleteMarker",
};

/* Whether x is at the path given (s3_xml_at()). */
#define lc_at(x, ...)	s3_xml_at(&(x)->w, __VA_ARGS__)

static void lc_rule_clear(struct s3_lc_rule *r)
{
	free(r->id);
	free(r->prefix);
	free(r->transition_class);
	memset(r, 0, sizeof(*r));
}

static void lc_on_start(struct s3_xml_walk *w)
{
	struct lc_parse *x = (struct lc_parse *)w;

	if (lc_at(x, 2, "LifecycleConfiguration", "Rule")) {
		lc_rule_clear(&x->cur);
		x->have_status = false;
	} else if (lc_at(x, 3, "LifecycleConfiguration", "Rule", "Transition")) {
		x->in_transition = true;
		x->have_tdays = false;
		free(x->tclass);
		x->tclass = NULL;
	} else if (lc_at(x, 3, "LifecycleConfiguration", "Rule", "Filter")) {
		if (x->cur.has_filter)
			s3_xml_fail(w, S3E_MALFORMED_XML);
		x->cur.has_filter = true;
	} else if (w->depth == 4 && !strcmp(w->path[1], "Rule") &&
		   !strcmp(w->path[2], "Filter") && strcmp(w->path[3], "Prefix")) {
		x->cur.other_filter = true;	/* And, Tag, ObjectSize* */
	} else if (w->depth == 3 && !strcmp(w->path[1], "Rule")) {
		const char *n = w->path[2];

		if (!strcmp(n, "Expiration"))
			x->cur.has_expiration = true;
		else if (!strcmp(n, "NoncurrentVersionTransition") ||
			 !strcmp(n, "NoncurrentVersionExpiration") ||
			 !strcmp(n, "AbortIncompleteMultipartUpload"))
			x->cur.other_action = true;
	}
}

static const char *lc_trimmed(struct lc_parse *x, size_t *n)
{
	return s3_xml_trimmed(&x->w, n);
}

/* Days: a decimal of 1..9 digits (S3 caps them at 2^31 - 1 days). */
static int lc_days(struct lc_parse *x, uint32_t *out)
{
	size_t n;
	const char *s = lc_trimmed(x, &n);
	uint32_t v = 0;

	if (n == 0 || n > 9)
		return S3E_MALFORMED_XML;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return S3E_MALFORMED_XML;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* A Transition's or Expiration's Date: ISO 8601, and (S3) at midnight UTC.
 * Only checked: rules by date are refused by the gateway (NotImplemented),
 * but a wrong one is the client's error first. */
static int lc_date(struct lc_parse *x)
{
	size_t n;
	const char *s = lc_trimmed(x, &n);
	char buf[64];
	time_t t;

	if (n >= sizeof(buf))
		return S3E_MALFORMED_XML;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (iso8601_parse(buf, &t) < 0)
		return S3E_MALFORMED_XML;
	return t % 86400 ? S3E_LC_DATE : 0;
}

/* A string element seen at most once per rule. */
static int lc_take(struct lc_parse *x, char **dst, bool trim, size_t max)
{
	size_t n = x->w.text.len;
	const char *s = trim ? lc_trimmed(x, &n) : (x->w.text.p ? x->w.text.p : "");

	if (*dst || n > max)
		return S3E_MALFORMED_XML;
	*dst = s3_strndup(s, n);
	return *dst ? 0 : -ENOMEM;
}

static int lc_end_rule(struct lc_parse *x)
{
	struct s3_lifecycle *lc = x->lc;

	if (!x->have_status)
		return S3E_MALFORMED_XML;
	/* A rule needs an action; Prefix and Filter are exclusive. */
	if (!x->cur.has_transition && !x->cur.has_expiration && !x->cur.other_action &&
	    !x->cur.transition_date)
		return S3E_MALFORMED_XML;
	if (x->cur.has_filter && x->cur.legacy_prefix)
		return S3E_MALFORMED_XML;
	if (lc->n == S3_LC_MAX_RULES)
		return S3E_MALFORMED_XML;
	for (size_t i = 0; x->cur.id && i < lc->n; i++)
		if (lc->rules[i].id && !strcmp(lc->rules[i].id, x->cur.id))
			return S3E_LC_DUP_ID;
	if (lc->n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 8;
		struct s3_lc_rule *v = realloc(lc->rules, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		lc->rules = v;
		x->cap = cap;
	}
	if (!x->cur.prefix && !(x->cur.prefix = strdup("")))
		return -ENOMEM;
	lc->rules[lc->n++] = x->cur;
	memset(&x->cur, 0, sizeof(x->cur));
	return 0;
}

static int lc_end(struct s3_xml_walk *w)
{
	struct lc_parse *x = (struct lc_parse *)w;
	struct s3_lc_rule *r = &x->cur;

	if (lc_at(x, 3, "LifecycleConfiguration", "Rule", "ID"))
		return x->w.text.len > 255 ? S3E_LC_LONG_ID : lc_take(x, &r->id, false, 255);
	if (lc_at(x, 3, "LifecycleConfiguration", "Rule", "Status")) {
		size_t n;
		const char *s = lc_trimmed(x, &n);

		if (x->have_status)
			return S3E_MALFORMED_XML;
		if (n == 7 && !memcmp(s, "Enabled", 7))
			r->enabled = true;
		else if (!(n == 8 && !memcmp(s, "Disabled", 8)))
			return S3E_MALFORMED_XML;
		x->have_status = true;
		return 0;
	}
	if (lc_at(x, 3, "LifecycleConfiguration", "Rule", "Prefix")) {
		r->legacy_prefix = true;
		return lc_take(x, &r->prefix, false, S3_MAX_KEY_LEN);
	}
	if (lc_at(x, 4, "LifecycleConfiguration", "Rule", "Filter", "Prefix"))
		return lc_take(x, &r->prefix, false, S3_MAX_KEY_LEN);
	if (lc_at(x, 4, "LifecycleConfiguration", "Rule", "Transition", "Days")) {
		if (x->have_tdays)
			return S3E_MALFORMED_XML;
		x->have_tdays = true;
		return lc_days(x, &x->tdays);
	}
	if (lc_at(x, 4, "LifecycleConfiguration", "Rule", "Transition", "Date")) {
		r->transition_date = true;
		return lc_date(x);
	}
	if (lc_at(x, 4, "LifecycleConfiguration", "Rule", "Transition", "StorageClass"))
		return lc_take(x, &x->tclass, true, 64);
	if (lc_at(x, 3, "LifecycleConfiguration", "Rule", "Transition")) {
		x->in_transition = false;
		if (!x->tclass || (!x->have_tdays && !r->transition_date))
			return S3E_MALFORMED_XML;
		if (!x->have_tdays)
			return 0;	/* a Date: r->transition_date says so */
		/* Several transitions: the earliest one decides (every cold
		 * class is the same medium here). */
		if (!r->has_transition || x->tdays < r->transition_days) {
			free(r->transition_class);
			r->transition_class = x->tclass;
			x->tclass = NULL;
			r->transition_days = x->tdays;
		}
		r->has_transition = true;
		return 0;
	}
	if (lc_at(x, 4, "LifecycleConfiguration", "Rule", "Expiration", "Days"))
		return lc_days(x, &r->expiration_days);
	if (lc_at(x, 4, "LifecycleConfiguration", "Rule", "Expiration", "Date"))
		return lc_date(x);
	if (lc_at(x, 2, "LifecycleConfiguration", "Rule"))
		return lc_end_rule(x);
	return 0;
}

int s3_lifecycle_parse(const char *body, size_t len, struct s3_lifecycle *out)
{
	struct lc_parse x = {
		.w = { .names = lc_names, .n_names = sizeof(lc_names) / sizeof(lc_names[0]),
		       .root = "LifecycleConfiguration", .on_start = lc_on_start,
		       .on_end = lc_end },
		.lc = out,
	};
	int ret;

	memset(out, 0, sizeof(*out));
	ret = s3_xml_walk(&x.w, body, len);
	if (!ret && out->n == 0)
		ret = S3E_MALFORMED_XML;	/* S3: at least one Rule */
	lc_rule_clear(&x.cur);
	free(x.tclass);
	if (ret)
		s3_lifecycle_free(out);
	return ret;
}

void s3_lifecycle_free(struct s3_lifecycle *lc)
{
	for (size_t i = 0; i < lc->n; i++)
		lc_rule_clear(&lc->rules[i]);
	free(lc->rules);
	memset(lc, 0, sizeof(*lc));
}

int s3_lifecycle_xml(const struct s3_lifecycle *lc, struct s3_buf *b)
{
	struct s3_xml x;

	s3_xml_begin(&x, b);
	s3_xml_open(&x, "LifecycleConfiguration", true);
	for (size_t i = 0; i < lc->n; i++) {
		const struct s3_lc_rule *r = &lc->rules[i];

		s3_xml_open(&x, "Rule", false);
		if (r->id)
			s3_xml_elem(&x, "ID", r->id);
		if (r->legacy_prefix) {
			s3_xml_elem(&x, "Prefix", r->prefix);
		} else {
			s3_xml_open(&x, "Filter", false);
			if (*r->prefix)
				s3_xml_elem(&x, "Prefix", r->prefix);
			s3_xml_close(&x);
		}
		s3_xml_elem(&x, "Status", r->enabled ? "Enabled" : "Disabled");
		if (r->has_transition) {
			s3_xml_open(&x, "Transition", false);
			s3_xml_elem_u64(&x, "Days", r->transition_days);
			s3_xml_elem(&x, "StorageClass", r->transition_class);
			s3_xml_close(&x);
		}
		if (r->has_expiration) {
			s3_xml_open(&x, "Expiration", false);
			s3_xml_elem_u64(&x, "Days", r->expiration_days);
			s3_xml_close(&x);
		}
		s3_xml_close(&x);
	}
	return s3_xml_end(&x);
}
