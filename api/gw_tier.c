/* gw_tier.c: tiering seen from S3 (issue 6; docs/tiering.md, "Gateway").
 *
 * The storage nodes already move fragments between hot and cold by access
 * age; each fragment carries its own tier class and cold_after from its PUT
 * (sto_put_ex). This file decides those two for every fragment an object
 * PUT, copy or multipart upload writes, from:
 *   - x-amz-storage-class: STANDARD, REDUCED_REDUNDANCY, INTELLIGENT_TIERING
 *     land hot (and move by access: what INTELLIGENT_TIERING means);
 *     STANDARD_IA, ONEZONE_IA, GLACIER_IR land cold; anything else is
 *     InvalidStorageClass (GLACIER and DEEP_ARCHIVE need a restore before a
 *     read, which this system does not model);
 *   - the bucket's policy: a pin (hot / cold, beats the class) and a
 *     cold_after override, set with x-strata-tier-* headers on CreateBucket
 *     or PUT ?strata-tier (a Strata extension: S3 has no such knob);
 *   - lifecycle Transition rules (Days, prefix filter): the earliest rule
 *     matching the key gives cold_after = Days x the lifecycle day
 *     (86400 s; --lifecycle-day-seconds scales it for tests); Days 0 lands
 *     cold.
 * The policy, the lifecycle configuration and the bucket's tags
 * (Put/Get/DeleteBucketTagging: the bucket's other settings record; object
 * tags are gw_tagging.c's) are one record per bucket,
 * 3 replicas on rep3 at "/.tiercfg/<bucket>", stamped with the bucket's
 * creation time so a bucket deleted and created again starts without
 * them; cached 2 s per gateway like the bucket record.
 *
 * GET /_strata/tiers (the admin user only) asks every node of both rings
 * for its STAT and answers the per-node tier sections and their sum as JSON.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common.h"

#define TIER_CACHE		128
#define TIER_TTL_NS		(2ull * 1000000000)
#define TIER_LC_MAX		60000	/* canonical lifecycle bytes in the record */
#define TIER_ADMIN_MS		5000	/* nodes not answering by then: "error" */

struct gw_tier_pol {
	unsigned refs;
	char bucket[64];
	uint64_t created;		/* the bucket's creation it belongs to */
	uint64_t expires;		/* cache */
	int pin;			/* 0, STO_TIER_PIN_HOT or STO_TIER_PIN_COLD */
	uint32_t cold_after;		/* s; 0: the nodes' default */
	bool has_lc;
	struct s3_lifecycle lc;
	char *tags;			/* bucket tags, stored form; NULL: none */
};

struct gw_tier {
	struct gateway *gw;
	void (*dispatch)(struct gw_req *r);	/* gateway.c's, to go on */
	void (*created)(struct gw_req *r);	/* CreateBucket's answer */
	struct gw_tier_pol *cache[TIER_CACHE];
	unsigned next;
};

static const struct {
	int err, status;
	const char *code, *msg;
} tier_errs[] = {
	{ GWE_INVALID_STORAGE_CLASS, 400, "InvalidStorageClass", "The storage class you specified is not valid" },
	{ GWE_NO_SUCH_LIFECYCLE, 404, "NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist" },
	{ GWE_LC_NOT_IMPLEMENTED, 501, "NotImplemented", "Only Transition rules with Days and a prefix filter are implemented (no Expiration, Date, tag or size filters, noncurrent-version or multipart-abort actions)" },
	{ GWE_TIER_INVALID_ARG, 400, "InvalidArgument", "x-strata-tier-pin must be hot, cold or none; x-strata-tier-cold-after a number of seconds" },
	{ GWE_LC_TOO_LARGE, 400, "InvalidArgument", "The lifecycle configuration is too large to store" },
	{ GWE_NO_SUCH_TAG_SET, 404, "NoSuchTagSet", "The TagSet does not exist" },
};

bool gw_tier_err_info(int err, int *status, const char **code, const char **msg)
{
	for (size_t i = 0; i < sizeof(tier_errs) / sizeof(tier_errs[0]); i++)
		if (tier_errs[i].err == err) {
			*status = tier_errs[i].status;
			*code = tier_errs[i].code;
			*msg = tier_errs[i].msg;
			return true;
		}
	return false;
}

/* ------------------------------------------------------- storage classes */

/* The tier a storage class lands on, or -1 for a class not offered. */
static int class_tier(const char *c)
{
	static const struct {
		const char *name;
		int tier;
	} v[] = {
		{ "STANDARD", STO_TIER_STANDARD },
		{ "REDUCED_REDUNDANCY", STO_TIER_STANDARD },
		{ "INTELLIGENT_TIERING", STO_TIER_STANDARD },
		{ "STANDARD_IA", STO_TIER_COLD },
		{ "ONEZONE_IA", STO_TIER_COLD },
		{ "GLACIER_IR", STO_TIER_COLD },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (!strcmp(c, v[i].name))
			return v[i].tier;
	return -1;
}

static int parse_pin(const char *s, int *out)
{
	if (!strcmp(s, "hot"))
		*out = STO_TIER_PIN_HOT;
	else if (!strcmp(s, "cold"))
		*out = STO_TIER_PIN_COLD;
	else if (!strcmp(s, "none"))
		*out = 0;
	else
		return GWE_TIER_INVALID_ARG;
	return 0;
}

static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s || strlen(s) > 10)
		return GWE_TIER_INVALID_ARG;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return GWE_TIER_INVALID_ARG;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > UINT32_MAX)
		return GWE_TIER_INVALID_ARG;
	*out = (uint32_t)v;
	return 0;
}

int gw_tier_check_headers(struct gw_req *r)
{
	const char *v;
	uint32_t u;
	int pin;

	if (!r->hr)
		return 0;
	if (r->op == OP_CREATE_BUCKET || r->op == OP_PUT_TIER_POLICY) {
		v = http_req_header(r->hr, "x-strata-tier-pin", NULL);
		if (v && parse_pin(v, &pin) < 0)
			return GWE_TIER_INVALID_ARG;
		v = http_req_header(r->hr, "x-strata-tier-cold-after", NULL);
		if (v && parse_u32(v, &u) < 0)
			return GWE_TIER_INVALID_ARG;
		return 0;
	}
	v = http_req_header(r->hr, "x-amz-storage-class", NULL);
	if (v && class_tier(v) < 0)
		return GWE_INVALID_STORAGE_CLASS;
	return 0;
}

int gw_tier_copy_class(struct gw_req *r)
{
	const char *v = r->hr ? http_req_header(r->hr, "x-amz-storage-class", NULL) : NULL;

	if (!v)
		return 0;
	gw_meta_del_hdr(&r->meta, "x-amz-storage-class");
	return gw_meta_add_hdr(&r->meta, "x-amz-storage-class", 19, v, strlen(v));
}

void gw_tier_opts(const struct gw_req *r, struct sto_put_opts *o)
{
	const struct gw_tier_pol *p = r->tier_pol;
	const char *cls = r->op == OP_UPLOAD_PART || r->op == OP_UPLOAD_PART_COPY ?
			  r->tier_class : gw_meta_hdr_get(&r->meta, "x-amz-storage-class");
	uint64_t ca = 0, best = UINT64_MAX;

	memset(o, 0, sizeof(*o));
	if (cls && *cls && class_tier(cls) == STO_TIER_COLD)
		o->tier = STO_TIER_COLD;
	if (!p)
		return;
	ca = p->cold_after;
	for (size_t i = 0; p->has_lc && r->key && i < p->lc.n; i++) {
		const struct s3_lc_rule *l = &p->lc.rules[i];

		if (!l->enabled || !l->has_transition ||
		    class_tier(l->transition_class) != STO_TIER_COLD ||
		    strncmp(r->key, l->prefix, strlen(l->prefix)))
			continue;
		if ((uint64_t)l->transition_days * r->gw->cfg.lifecycle_day_s < best)
			best = (uint64_t)l->transition_days * r->gw->cfg.lifecycle_day_s;
	}
	if (best == 0)
		o->tier = STO_TIER_COLD;	/* Days 0: cold from the start */
	else if (best != UINT64_MAX && (!ca || best < ca))
		ca = best;
	o->cold_after = ca > UINT32_MAX ? UINT32_MAX : (uint32_t)ca;
	if (p->pin)
		o->tier = (enum sto_tier_class)p->pin;
}

/* --------------------------------------------------------------- records */

static struct gw_tier_pol *pol_get(struct gw_tier_pol *p)
{
	if (p)
		p->refs++;
	return p;
}

static void pol_put(struct gw_tier_pol *p)
{
	if (!p || --p->refs)
		return;
	s3_lifecycle_free(&p->lc);
	free(p->tags);
	free(p);
}

int gw_tier_new(struct gateway *gw, struct gw_tier **out)
{
	struct gw_tier *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->gw = gw;
	*out = t;
	return 0;
}

void gw_tier_free(struct gw_tier *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < TIER_CACHE; i++)
		pol_put(t->cache[i]);
	free(t);
}

void gw_tier_req_free(struct gw_req *r)
{
	pol_put(r->tier_pol);
	r->tier_pol = NULL;
}

static void cache_set(struct gw_tier *t, struct gw_tier_pol *p)
{
	unsigned slot = t->next++ % TIER_CACHE;

	for (unsigned i = 0; i < TIER_CACHE; i++)
		if (t->cache[i] && !strcmp(t->cache[i]->bucket, p->bucket))
			slot = i;
	pol_put(t->cache[slot]);
	p->expires = strata_now_ns() + TIER_TTL_NS;
	t->cache[slot] = pol_get(p);
}

static struct gw_tier_pol *cache_find(struct gw_tier *t, const char *bucket,
				      uint64_t created)
{
	for (unsigned i = 0; i < TIER_CACHE; i++) {
		struct gw_tier_pol *p = t->cache[i];

		if (p && !strcmp(p->bucket, bucket) && p->created == created &&
		    p->expires > strata_now_ns())
			return p;
	}
	return NULL;
}

static void pol_path(const char *bucket, char *out, size_t cap, size_t *len)
{
	int n = snprintf(out, cap, "/.tiercfg/%s", bucket);

	*len = n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static struct gw_tier_pol *pol_new(const struct gw_req *r)
{
	struct gw_tier_pol *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->refs = 1;
	snprintf(p->bucket, sizeof(p->bucket), "%s", r->bucket);
	p->created = r->bucket_created;
	return p;
}

/* The record's meta into p (p->created must match "created", else p stays
 * empty: a policy of an earlier bucket of that name). */
static int pol_decode(struct gw_tier_pol *p, const void *meta, uint32_t len)
{
	struct gw_meta m;
	const char *v;
	int ret = gw_meta_decode(meta, len, &m);

	if (ret == 0 && m.kind != GW_META_BUCKET)
		ret = -EINVAL;
	v = ret ? NULL : gw_meta_hdr_get(&m, "created");
	if (!ret && (!v || strtoull(v, NULL, 10) != p->created))
		goto out;
	if (!ret && (v = gw_meta_hdr_get(&m, "pin")))
		ret = parse_pin(v, &p->pin) < 0 ? -EINVAL : 0;
	if (!ret && (v = gw_meta_hdr_get(&m, "cold-after")))
		ret = parse_u32(v, &p->cold_after) < 0 ? -EINVAL : 0;
	if (!ret && (v = gw_meta_hdr_get(&m, "lifecycle"))) {
		ret = s3_lifecycle_parse(v, strlen(v), &p->lc) < 0 ? -EINVAL : 0;
		p->has_lc = ret == 0;
	}
	if (!ret && (v = gw_meta_hdr_get(&m, "tags")) && !(p->tags = strdup(v)))
		ret = -ENOMEM;
out:
	gw_meta_free(&m);
	return ret;
}

typedef void (*pol_fn)(struct gw_req *r, int err);

struct pol_op {
	struct gw_req *r;
	pol_fn done;
	struct gw_tier_pol *p;
	struct s3_buf meta;
};

static void on_pol_record(const struct gw_hlook_result *res, void *arg)
{
	struct pol_op *o = arg;
	struct gw_req *r = o->r;
	struct gw_tier_pol *p = pol_new(r);
	int err = 0;

	if (!p)
		err = -ENOMEM;
	else if (res->status < 0 && res->status != -ENOENT)
		err = -EHOSTUNREACH;
	else if (res->status == 0 && pol_decode(p, res->meta, res->meta_len) < 0) {
		log_err("bucket %s: undecodable tier policy record", r->bucket);
		err = -EIO;
	}
	if (!err) {
		pol_put(r->tier_pol);
		r->tier_pol = pol_get(p);
		cache_set(r->gw->tier, p);
	}
	pol_put(p);
	o->done(r, err);
	gw_req_put(r);
	free(o);
}

/* r->tier_pol: the bucket's policy (cached unless fresh), then done(r, 0)
 * or done(r, error); may call done before returning. 0 or an error (no
 * done). */
static int pol_load(struct gw_req *r, bool fresh, pol_fn done)
{
	struct gateway *gw = r->gw;
	struct gw_tier_pol *p = fresh ? NULL : cache_find(gw->tier, r->bucket,
							 r->bucket_created);
	struct pol_op *o;
	char path[128];
	uint8_t name[STO_NAME_HASH_LEN];
	size_t len;
	int ret;

	if (p) {
		pol_put(r->tier_pol);
		r->tier_pol = pol_get(p);
		done(r, 0);
		return 0;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->r = gw_req_get(r);
	o->done = done;
	pol_path(r->bucket, path, sizeof(path), &len);
	gw_name_hash(path, len, name);
	ret = gw_hlook_start(&gw->st, gw->rep, ring_part_of_path(gw->rep, path, len),
			     name, 0, on_pol_record, o);
	if (ret < 0) {
		gw_req_put(r);
		free(o);
	}
	return ret;
}

static void on_pol_written(struct gw_wset *w, int err, void *arg)
{
	struct pol_op *o = arg;

	(void)w;
	if (!err) {
		pol_put(o->r->tier_pol);
		o->r->tier_pol = pol_get(o->p);
		cache_set(o->r->gw->tier, o->p);
	}
	o->done(o->r, err ? -EHOSTUNREACH : 0);
	gw_req_put(o->r);
	pol_put(o->p);
	s3_buf_free(&o->meta);
	free(o);
}

/* Writes p (owned by the write from here) as the bucket's record, then
 * done(r, 0 or an error). 0 or an error (no done). */
static int pol_write(struct gw_req *r, struct gw_tier_pol *p, pol_fn done)
{
	struct gateway *gw = r->gw;
	struct gw_meta m = { .kind = GW_META_BUCKET, .version = strata_wall_ns() };
	struct s3_buf lc = { 0 };
	struct pol_op *o;
	struct gw_wset *w;
	char path[128], num[24];
	uint8_t name[STO_NAME_HASH_LEN];
	size_t len;
	int ret;

	o = calloc(1, sizeof(*o));
	if (!o) {
		pol_put(p);
		return -ENOMEM;
	}
	o->p = p;
	m.owner = strdup(r->owner[0] ? r->owner : r->account);
	ret = m.owner ? 0 : -ENOMEM;
	snprintf(num, sizeof(num), "%" PRIu64, p->created);
	ret = ret ?: gw_meta_add_hdr(&m, "created", 7, num, strlen(num));
	if (!ret && p->pin)
		ret = gw_meta_add_hdr(&m, "pin", 3, p->pin == STO_TIER_PIN_HOT ? "hot" : "cold",
				      p->pin == STO_TIER_PIN_HOT ? 3 : 4);
	if (!ret && p->cold_after) {
		snprintf(num, sizeof(num), "%" PRIu32, p->cold_after);
		ret = gw_meta_add_hdr(&m, "cold-after", 10, num, strlen(num));
	}
	if (!ret && p->has_lc) {
		ret = s3_lifecycle_xml(&p->lc, &lc);
		if (!ret && lc.len > TIER_LC_MAX)
			ret = GWE_LC_TOO_LARGE;
		ret = ret ?: gw_meta_add_hdr(&m, "lifecycle", 9, lc.p, lc.len);
	}
	if (!ret && p->tags)
		ret = gw_meta_add_hdr(&m, "tags", 4, p->tags, strlen(p->tags));
	ret = ret ?: gw_meta_encode(&m, &o->meta);
	if (ret == -E2BIG)
		ret = GWE_LC_TOO_LARGE;
	gw_meta_free(&m);
	s3_buf_free(&lc);
	if (ret < 0)
		goto out_free;
	pol_path(r->bucket, path, sizeof(path), &len);
	gw_name_hash(path, len, name);
	o->r = gw_req_get(r);
	o->done = done;
	w = gw_wset_new(&gw->st, gw->rep, ring_part_of_path(gw->rep, path, len), name,
			0, false, strata_wall_ns(), on_pol_written, o);
	if (!w) {
		gw_req_put(r);
		ret = -ENOMEM;
		goto out_free;
	}
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].frag = 0;
		w->f[i].iov = (struct iovec){ NULL, 0 };
	}
	w->meta = o->meta.p;
	w->meta_len = (uint32_t)o->meta.len;
	gw_wset_start(w);
	return 0;

out_free:
	pol_put(p);
	s3_buf_free(&o->meta);
	free(o);
	return ret;
}

/* A copy of r->tier_pol's settings (a new policy to modify and write). */
static struct gw_tier_pol *pol_copy(struct gw_req *r, bool with_lc)
{
	struct gw_tier_pol *p = pol_new(r), *old = r->tier_pol;

	if (!p || !old)
		return p;
	p->pin = old->pin;
	p->cold_after = old->cold_after;
	if (old->tags && !(p->tags = strdup(old->tags))) {
		pol_put(p);
		return NULL;
	}
	if (with_lc && old->has_lc) {
		/* Re-parse the canonical form: a deep copy without a copier. */
		struct s3_buf b = { 0 };

		if (s3_lifecycle_xml(&old->lc, &b) < 0 ||
		    s3_lifecycle_parse(b.p, b.len, &p->lc) < 0) {
			s3_buf_free(&b);
			pol_put(p);
			return NULL;
		}
		s3_buf_free(&b);
		p->has_lc = true;
	}
	return p;
}

/* x-strata-tier-* headers (checked already) into p. */
static void pol_from_headers(struct gw_req *r, struct gw_tier_pol *p)
{
	const char *v = http_req_header(r->hr, "x-strata-tier-pin", NULL);

	if (v)
		parse_pin(v, &p->pin);
	v = http_req_header(r->hr, "x-strata-tier-cold-after", NULL);
	if (v)
		parse_u32(v, &p->cold_after);
}

/* ------------------------------------------------------------ operations */

static void send_json(struct gw_req *r, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (!s) {
		gw_send_error(r, -ENOMEM);
		return;
	}
	if (r->hr && !r->responded) {
		r->responded = true;
		gw_resp_common(r);
		http_resp_simple(r->hr, status, "application/json", s, strlen(s));
	}
	free(s);
}

static void on_written_answer(struct gw_req *r, int err)
{
	if (err)
		gw_send_error(r, err == -EHOSTUNREACH ? -EHOSTUNREACH : err);
	else
		gw_send_empty(r, r->op == OP_DELETE_LIFECYCLE ||
				 r->op == OP_PUT_BUCKET_TAGGING ||
				 r->op == OP_DELETE_BUCKET_TAGGING ? 204 : 200);
}

static void on_pol_for_op(struct gw_req *r, int err)
{
	struct gw_tier_pol *p = r->tier_pol, *np;
	struct s3_buf b = { 0 };
	json_t *j;

	if (err) {
		gw_send_error(r, err);
		return;
	}
	if (!r->hr)
		return;
	switch (r->op) {
	case OP_GET_LIFECYCLE:
		if (!p->has_lc) {
			gw_send_error(r, GWE_NO_SUCH_LIFECYCLE);
			break;
		}
		err = s3_lifecycle_xml(&p->lc, &b);
		if (err)
			gw_send_error(r, err);
		else
			gw_send_xml(r, 200, &b);
		s3_buf_free(&b);
		break;
	case OP_GET_TIER_POLICY:
		j = json_pack("{s:s, s:I, s:I}", "pin",
			      p->pin == STO_TIER_PIN_HOT ? "hot" :
			      p->pin == STO_TIER_PIN_COLD ? "cold" : "none",
			      "cold_after", (json_int_t)p->cold_after,
			      "lifecycle_rules", (json_int_t)(p->has_lc ? p->lc.n : 0));
		send_json(r, 200, j);
		json_decref(j);
		break;
	case OP_GET_BUCKET_TAGGING:
		if (!p->tags)
			gw_send_error(r, GWE_NO_SUCH_TAG_SET);
		else
			gw_tagging_send(r, p->tags);
		break;
	case OP_DELETE_BUCKET_TAGGING:
	case OP_DELETE_LIFECYCLE:
		if (r->op == OP_DELETE_LIFECYCLE ? !p->has_lc : !p->tags) {
			gw_send_empty(r, 204);
			break;
		}
		/* fall through */
	case OP_PUT_TIER_POLICY:
		np = pol_copy(r, r->op != OP_DELETE_LIFECYCLE);
		if (np && r->op == OP_PUT_TIER_POLICY)
			pol_from_headers(r, np);
		if (np && r->op == OP_DELETE_BUCKET_TAGGING) {
			free(np->tags);
			np->tags = NULL;
		}
		err = np ? pol_write(r, np, on_written_answer) : -ENOMEM;
		if (err)
			gw_send_error(r, err);
		break;
	default:
		gw_send_error(r, -EINVAL);
	}
}

/* PutBucketTagging: the fresh record is loaded. */
static void on_pol_for_tagging(struct gw_req *r, int err)
{
	struct gw_tier_pol *np;

	if (err) {
		gw_send_error(r, err);
		return;
	}
	np = pol_copy(r, true);
	if (!np) {
		gw_send_error(r, -ENOMEM);
		return;
	}
	free(np->tags);
	np->tags = NULL;
	err = gw_tagging_parse_body(r, &np->tags);
	if (err) {
		pol_put(np);
		gw_send_error(r, err);
		return;
	}
	err = pol_write(r, np, on_written_answer);	/* owns np */
	if (err)
		gw_send_error(r, err);
}

/* PutBucketLifecycleConfiguration: the fresh record is loaded. */
static void on_pol_for_lifecycle(struct gw_req *r, int err)
{
	struct gw_tier_pol *np;

	if (err) {
		gw_send_error(r, err);
		return;
	}
	np = pol_copy(r, false);
	if (!np) {
		gw_send_error(r, -ENOMEM);
		return;
	}
	err = s3_lifecycle_parse(r->small.p, r->small.len, &np->lc);
	if (err) {
		pol_put(np);
		gw_send_error(r, err);
		return;
	}
	np->has_lc = true;
	err = pol_write(r, np, on_written_answer);	/* owns np */
	if (err)
		gw_send_error(r, err);
}

void gw_tier_body_end(struct gw_req *r)
{
	struct s3_lifecycle lc;
	int ret;

	if (r->op == OP_PUT_BUCKET_TAGGING) {
		/* checked here, applied to the fresh record */
		char *t = NULL;

		ret = gw_tagging_parse_body(r, &t) ?: pol_load(r, true, on_pol_for_tagging);
		free(t);
		if (ret < 0)
			gw_send_error(r, ret);
		return;
	}
	ret = s3_lifecycle_parse(r->small.p ? r->small.p : "", r->small.len, &lc);

	/* What is not done is refused whole: a rule silently dropped would
	 * look applied. */
	for (size_t i = 0; !ret && i < lc.n; i++) {
		const struct s3_lc_rule *l = &lc.rules[i];

		if (l->has_expiration || l->other_filter || l->other_action ||
		    l->transition_date)
			ret = GWE_LC_NOT_IMPLEMENTED;
		else if (l->has_transition && (class_tier(l->transition_class) < 0 ||
					       !strcmp(l->transition_class, "STANDARD")))
			ret = GWE_INVALID_STORAGE_CLASS;
	}
	s3_lifecycle_free(&lc);
	ret = ret ?: pol_load(r, true, on_pol_for_lifecycle);
	if (ret < 0)
		gw_send_error(r, ret);
}

/* UploadPart: the upload record's storage class, for the part's fragments
 * (the part streams only once this is known). */
static void on_upload_class(const struct gw_hlook_result *res, void *arg)
{
	struct pol_op *o = arg;
	struct gw_req *r = o->r;
	struct gw_meta m;

	if (res->status == 0 && gw_meta_decode(res->meta, res->meta_len, &m) == 0) {
		const char *c = gw_meta_hdr_get(&m, "x-amz-storage-class");

		snprintf(r->tier_class, sizeof(r->tier_class), "%s", c ? c : "");
		gw_meta_free(&m);
	}
	/* No record: the multipart code answers NoSuchUpload itself. */
	o->done(r, 0);
	gw_req_put(r);
	free(o);
}

static void tier_go(struct gw_req *r, int err)
{
	(void)err;	/* no upload record: the multipart code says NoSuchUpload */
	r->tier_ready = true;
	if (r->hr)
		r->gw->tier->dispatch(r);
}

static void on_pol_ready(struct gw_req *r, int err)
{
	size_t qn;
	const char *q;

	if (err) {
		gw_send_error(r, err);
		return;
	}
	if (!r->hr)
		return;
	if ((r->op == OP_UPLOAD_PART || r->op == OP_UPLOAD_PART_COPY) &&
	    (q = http_req_query(r->hr, &qn)) != NULL) {
		const char *id;
		size_t idl;
		struct pol_op *o;
		struct s3_buf path = { 0 };
		uint8_t name[STO_NAME_HASH_LEN];
		uint32_t part;

		/* The record gw_mpu.c's mpu_state() names: path "\0" uploadId. */
		if (!gw_query_has(q, qn, "uploadId", &id, &idl) ||
		    ring_part_of(r->gw->rep, r->owner, r->bucket, r->key, &part) < 0 ||
		    s3_buf_printf(&path, "/%s/%s/%s", r->owner, r->bucket, r->key) < 0 ||
		    s3_buf_addc(&path, '\0') < 0 || s3_buf_add(&path, id, idl) < 0) {
			s3_buf_free(&path);
			goto again;
		}
		gw_name_hash(path.p, path.len, name);
		s3_buf_free(&path);
		o = calloc(1, sizeof(*o));
		if (!o)
			goto again;
		o->r = gw_req_get(r);
		o->done = tier_go;
		if (gw_hlook_start(&r->gw->st, r->gw->rep, part, name, 0, on_upload_class,
				   o) < 0) {
			gw_req_put(r);
			free(o);
			goto again;
		}
		return;
	}
again:
	tier_go(r, 0);
}

bool gw_tier_dispatch(struct gw_req *r, void (*again)(struct gw_req *r))
{
	int ret = 0;

	r->gw->tier->dispatch = again;
	switch (r->op) {
	case OP_CREATE_BUCKET:
		ret = gw_tier_check_headers(r);
		if (ret == 0)
			return false;
		break;
	case OP_GET_LIFECYCLE: case OP_DELETE_LIFECYCLE: case OP_GET_TIER_POLICY:
	case OP_GET_BUCKET_TAGGING: case OP_DELETE_BUCKET_TAGGING:
		http_req_resume(r->hr);		/* no body */
		ret = pol_load(r, true, on_pol_for_op);
		break;
	case OP_PUT_TIER_POLICY:
		http_req_resume(r->hr);
		ret = gw_tier_check_headers(r) ?: pol_load(r, true, on_pol_for_op);
		break;
	case OP_PUT_LIFECYCLE: case OP_PUT_BUCKET_TAGGING:
		http_req_resume(r->hr);		/* the body: gw_tier_body_end */
		return true;
	case OP_PUT_OBJECT: case OP_COPY_OBJECT: case OP_CREATE_MPU:
		if (r->tier_ready)
			return false;
		ret = gw_tier_check_headers(r);
		if (ret == 0 && r->op == OP_CREATE_MPU)
			return false;	/* the class goes in the upload record */
		/* fall through */
	case OP_UPLOAD_PART: case OP_UPLOAD_PART_COPY: case OP_COMPLETE_MPU:
	case OP_PUT_OBJ_TAGGING: case OP_DELETE_OBJ_TAGGING:	/* a head rewrite */
		if (r->tier_ready)
			return false;
		ret = ret ?: pol_load(r, false, on_pol_ready);
		break;
	default:
		return false;
	}
	if (ret < 0)
		gw_send_error(r, ret);
	return true;
}

static void on_created_pol(struct gw_req *r, int err)
{
	if (err) {
		/* The bucket exists without its policy: say so, the client
		 * can set it again with PUT ?strata-tier. */
		log_err("bucket %s: tier policy not written: %s", r->bucket,
			sto_strerror(err));
		gw_send_error(r, err);
		return;
	}
	r->gw->tier->created(r);
}

bool gw_tier_bucket_created(struct gw_req *r, void (*answer)(struct gw_req *r))
{
	struct gw_tier_pol *p;
	int ret;

	if (!r->hr || (!http_req_header(r->hr, "x-strata-tier-pin", NULL) &&
		       !http_req_header(r->hr, "x-strata-tier-cold-after", NULL)))
		return false;
	r->gw->tier->created = answer;
	r->bucket_created = r->meta.version;
	p = pol_new(r);
	if (!p) {
		gw_send_error(r, -ENOMEM);
		return true;
	}
	pol_from_headers(r, p);
	ret = pol_write(r, p, on_created_pol);
	if (ret < 0)
		gw_send_error(r, ret);
	return true;
}

int gw_tier_route(struct gw_req *r, const char *q, size_t qn)
{
	enum http_method m = http_req_method(r->hr);

	if (r->bucket && !strcmp(r->bucket, "_strata")) {
		if (r->key && !strcmp(r->key, "tiers") && m == HTTP_GET) {
			r->op = OP_TIER_ADMIN;
			return 1;
		}
		return 0;
	}
	if (!r->bucket || r->key)
		return 0;
	if (gw_query_has(q, qn, "lifecycle", NULL, NULL)) {
		if (m == HTTP_GET)
			r->op = OP_GET_LIFECYCLE;
		else if (m == HTTP_PUT)
			r->op = OP_PUT_LIFECYCLE;
		else if (m == HTTP_DELETE)
			r->op = OP_DELETE_LIFECYCLE;
		else
			return 0;
		return 1;
	}
	if (gw_query_has(q, qn, "tagging", NULL, NULL)) {
		if (m == HTTP_GET)
			r->op = OP_GET_BUCKET_TAGGING;
		else if (m == HTTP_PUT)
			r->op = OP_PUT_BUCKET_TAGGING;
		else if (m == HTTP_DELETE)
			r->op = OP_DELETE_BUCKET_TAGGING;
		else
			return 0;
		return 1;
	}
	if (gw_query_has(q, qn, "strata-tier", NULL, NULL)) {
		if (m == HTTP_GET)
			r->op = OP_GET_TIER_POLICY;
		else if (m == HTTP_PUT)
			r->op = OP_PUT_TIER_POLICY;
		else
			return 0;
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------- GET /_strata/tiers */

struct admin_node {
	struct admin *a;
	const char *addr;		/* borrowed from the ring */
	int status;			/* 1: not answered yet */
	struct sto_stat st;
};

struct admin {
	struct gw_req *r;
	unsigned refs;			/* pending node answers + the timer */
	bool answered;
	size_t n;
	struct admin_node *v;
	uv_timer_t timer;
};

static void admin_unref(struct admin *a)
{
	if (--a->refs)
		return;
	gw_req_put(a->r);
	free(a->v);
	free(a);
}

static void on_admin_timer_closed(uv_handle_t *h)
{
	admin_unref(h->data);
}

static json_t *u64s(const uint64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)v[i]));
	return a;
}

/* One node's tier section, in strata-admin tiers --json's form. */
static json_t *stat_json(const char *node, const struct sto_stat *s)
{
	const struct sto_tier_stat *t = &s->tier;
	json_t *o = json_object(), *media = json_object(), *h = json_array();

	for (int m = 0; m < 2; m++)
		json_object_set_new(media, m ? "cold" : "hot", json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			"dirs", (json_int_t)s->media[m].dirs,
			"capacity_bytes", (json_int_t)s->media[m].capacity_bytes,
			"free_bytes", (json_int_t)s->media[m].free_bytes,
			"volume_bytes", (json_int_t)s->media[m].used_bytes,
			"dead_bytes", (json_int_t)t->dead_bytes[m],
			"objects", (json_int_t)t->objects[m],
			"bytes", (json_int_t)t->bytes[m],
			"reads", (json_int_t)t->reads[m],
			"writes", (json_int_t)t->writes[m],
			"age_histogram", u64s(t->hist[m], STO_TIER_HIST)));
	for (int i = 0; i < STO_TIER_HIST; i++)
		json_array_append_new(h, i == STO_TIER_HIST - 1 ? json_null() :
				      json_integer((json_int_t)t->hist_bounds[i]));
	json_object_set_new(o, "node", json_string(node));
	json_object_set_new(o, "media", media);
	json_object_set_new(o, "age_bounds_s", h);
	json_object_set_new(o, "cold_heat", u64s(t->heat, STO_TIER_HEAT));
#define F(x) json_object_set_new(o, #x, json_integer((json_int_t)t->x))
	F(moved_down_objects); F(moved_down_bytes); F(moved_up_objects);
	F(moved_up_bytes); F(move_failures); F(pending_moves);
	F(pending_promotions); F(scans);
#undef F
	json_object_set_new(o, "last_scan_age_s", t->last_scan_age == UINT64_MAX ? json_null() :
			    json_integer((json_int_t)t->last_scan_age));
	return o;
}

/* Adds b into a: counters summed, the scan age the oldest. */
static void stat_add(struct sto_stat *a, const struct sto_stat *b)
{
	struct sto_tier_stat *x = &a->tier;
	const struct sto_tier_stat *y = &b->tier;

	for (int m = 0; m < 2; m++) {
		a->media[m].dirs += b->media[m].dirs;
		a->media[m].capacity_bytes += b->media[m].capacity_bytes;
		a->media[m].free_bytes += b->media[m].free_bytes;
		a->media[m].used_bytes += b->media[m].used_bytes;
		x->objects[m] += y->objects[m];
		x->bytes[m] += y->bytes[m];
		x->dead_bytes[m] += y->dead_bytes[m];
		x->reads[m] += y->reads[m];
		x->writes[m] += y->writes[m];
		for (int i = 0; i < STO_TIER_HIST; i++)
			x->hist[m][i] += y->hist[m][i];
	}
	for (int i = 0; i < STO_TIER_HEAT; i++)
		x->heat[i] += y->heat[i];
	memcpy(x->hist_bounds, y->hist_bounds, sizeof(x->hist_bounds));
	x->moved_down_objects += y->moved_down_objects;
	x->moved_down_bytes += y->moved_down_bytes;
	x->moved_up_objects += y->moved_up_objects;
	x->moved_up_bytes += y->moved_up_bytes;
	x->move_failures += y->move_failures;
	x->pending_moves += y->pending_moves;
	x->pending_promotions += y->pending_promotions;
	x->scans += y->scans;
	if (x->last_scan_age == 0 || y->last_scan_age > x->last_scan_age)
		x->last_scan_age = y->last_scan_age;
}

static void admin_answer(struct admin *a)
{
	struct sto_stat sum = { 0 };
	json_t *j = json_object(), *nodes = json_array();
	size_t ok = 0;

	if (a->answered)
		return;
	a->answered = true;
	uv_timer_stop(&a->timer);
	for (size_t i = 0; i < a->n; i++) {
		struct admin_node *n = &a->v[i];

		if (n->status) {
			json_array_append_new(nodes, json_pack("{s:s, s:s}", "node", n->addr,
				"error", n->status == 1 ? "no answer" : sto_strerror(n->status)));
			continue;
		}
		json_array_append_new(nodes, stat_json(n->addr, &n->st));
		stat_add(&sum, &n->st);
		ok++;
	}
	json_object_set_new(j, "nodes_asked", json_integer((json_int_t)a->n));
	json_object_set_new(j, "nodes_answered", json_integer((json_int_t)ok));
	json_object_set_new(j, "total", stat_json("total", &sum));
	json_object_set_new(j, "nodes", nodes);
	send_json(a->r, 200, j);
	json_decref(j);
	uv_close((uv_handle_t *)&a->timer, on_admin_timer_closed);
}

static void admin_node_done(struct admin_node *n, int status)
{
	struct admin *a = n->a;
	bool all = true;

	n->status = status;
	for (size_t i = 0; i < a->n; i++)
		all = all && a->v[i].status != 1;
	if (all)
		admin_answer(a);
	admin_unref(a);
}

static void on_admin_stat(void *arg, int status, const struct sto_stat *st)
{
	struct admin_node *n = arg;

	if (status == 0 && st)
		n->st = *st;
	admin_node_done(n, status == 0 && !st ? -EPROTO : status);
}

static void on_admin_client(void *arg, sto_client *c, int err)
{
	struct admin_node *n = arg;

	if (!err)
		err = sto_stat(c, on_admin_stat, n);
	if (err)
		admin_node_done(n, err);
}

static void on_admin_timeout(uv_timer_t *t)
{
	admin_answer(t->data);
}

static bool admin_has(const struct admin *a, const char *addr)
{
	for (size_t i = 0; i < a->n; i++)
		if (!strcmp(a->v[i].addr, addr))
			return true;
	return false;
}

void gw_tier_admin(struct gw_req *r)
{
	struct gateway *gw = r->gw;
	const struct ring *rings[2] = { gw->rep, gw->ec };
	struct admin *a;
	size_t cap;

	if (r->anonymous || strcmp(r->account, gw->cfg.admin_user)) {
		gw_send_error(r, S3E_ACCESS_DENIED);
		return;
	}
	a = calloc(1, sizeof(*a));
	cap = (size_t)ring_dev_count(gw->rep) + ring_dev_count(gw->ec);
	if (!a || !(a->v = calloc(cap ? cap : 1, sizeof(*a->v)))) {
		free(a);
		gw_send_error(r, -ENOMEM);
		return;
	}
	a->r = gw_req_get(r);
	for (int k = 0; k < 2; k++)
		for (unsigned i = 0; i < ring_dev_count(rings[k]); i++) {
			const struct ring_dev *d = ring_dev_at(rings[k], i);

			if (!admin_has(a, d->node))
				a->v[a->n++] = (struct admin_node){ .a = a, .addr = d->node, .status = 1 };
		}
	uv_timer_init(gw->loop, &a->timer);
	a->timer.data = a;
	uv_timer_start(&a->timer, on_admin_timeout, TIER_ADMIN_MS, 0);
	/* One reference per node and one for the timer; one more while the
	 * loop below may finish everything synchronously (nodes down). */
	a->refs = (unsigned)a->n + 2;
	for (size_t i = 0; i < a->n; i++) {
		struct gw_node *n = gw_pool_node(gw->pool, a->v[i].addr);

		if (!n)
			admin_node_done(&a->v[i], -ENOMEM);
		else
			gw_node_acquire(n, on_admin_client, &a->v[i]);
	}
	if (a->n == 0)
		admin_answer(a);
	admin_unref(a);
}
