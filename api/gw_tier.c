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
	uint64_t day_s;			/* the gateway's lifecycle day */
	bool has_lc;
	struct s3_lifecycle lc;
	uint64_t gen;			/* its tier settings' generation (the
					 * timestamp of the record that last
					 * changed them): names its pass */
	char *tags;			/* bucket tags, stored form; NULL: none */
};

struct gw_tier {
	struct gateway *gw;
	void (*dispatch)(struct gw_req *r);	/* gateway.c's, to go on */
	void (*created)(struct gw_req *r);	/* CreateBucket's answer */
	struct gw_tier_pol *cache[TIER_CACHE];
	unsigned next;
	struct tier_pass *passes;		/* policy passes running here */
	uv_timer_t check;			/* the pass registry, now and then */
	bool started, checking, closing;
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

static const struct s3_lc_rule *rule_for(const struct gw_tier_pol *p, const char *key);

/* The class and cold_after of an object's fragments: its storage class
 * (NULL or "": STANDARD), its key, the bucket's policy p (may be NULL). */
static void tier_opts_for(const struct gw_tier_pol *p, const char *cls, const char *key,
			  struct sto_put_opts *o)
{
	const struct s3_lc_rule *l;
	uint64_t ca = 0, best = UINT64_MAX;

	memset(o, 0, sizeof(*o));
	if (cls && *cls && class_tier(cls) == STO_TIER_COLD)
		o->tier = STO_TIER_COLD;
	if (!p)
		return;
	ca = p->cold_after;
	if ((l = rule_for(p, key)))
		best = (uint64_t)l->transition_days * p->day_s;
	if (best == 0)
		o->tier = STO_TIER_COLD;	/* Days 0: cold from the start */
	else if (best != UINT64_MAX && (!ca || best < ca))
		ca = best;
	o->cold_after = ca > UINT32_MAX ? UINT32_MAX : (uint32_t)ca;
	if (p->pin)
		o->tier = (enum sto_tier_class)p->pin;
}

/* Does rule l move key to a cold class? */
static bool rule_applies(const struct s3_lc_rule *l, const char *key)
{
	return l->enabled && l->has_transition && class_tier(l->transition_class) == STO_TIER_COLD &&
	       !strncmp(key, l->prefix, strlen(l->prefix));
}

/* The enabled Transition rule to a cold class matching key with the fewest
 * Days (the one tier_opts_for applies), or NULL. */
static const struct s3_lc_rule *rule_for(const struct gw_tier_pol *p, const char *key)
{
	const struct s3_lc_rule *best = NULL;

	for (size_t i = 0; p && p->has_lc && key && i < p->lc.n; i++) {
		const struct s3_lc_rule *l = &p->lc.rules[i];

		if (rule_applies(l, key) && (!best || l->transition_days < best->transition_days))
			best = l;
	}
	return best;
}

static bool class_is_standard(const char *c)
{
	return !c || !*c || !strcmp(c, "STANDARD");
}

const char *gw_tier_class_at(const struct gw_tier_pol *p, const char *stored, const char *key,
			     uint64_t version_ns, uint64_t now_ns)
{
	const struct s3_lc_rule *shown = NULL;
	uint64_t age_s = now_ns > version_ns ? (now_ns - version_ns) / 1000000000 : 0;

	/* A class asked for at write time (STANDARD_IA, INTELLIGENT_TIERING,
	 * ...) is the object's; only STANDARD (and RRS, which lands the same)
	 * transitions, as in S3. A bucket pinned hot keeps it there. */
	if ((!class_is_standard(stored) && strcmp(stored, "REDUCED_REDUNDANCY")) || !p ||
	    p->pin == STO_TIER_PIN_HOT)
		return class_is_standard(stored) ? NULL : stored;
	/* S3 transitions by age since creation: the latest transition the
	 * object's age has reached (its rules' Days are cumulative). */
	for (size_t i = 0; p->has_lc && key && i < p->lc.n; i++) {
		const struct s3_lc_rule *l = &p->lc.rules[i];

		if (rule_applies(l, key) && age_s >= (uint64_t)l->transition_days * p->day_s &&
		    (!shown || l->transition_days > shown->transition_days))
			shown = l;
	}
	if (shown)
		return shown->transition_class;
	if (p->pin == STO_TIER_PIN_COLD)
		return "STANDARD_IA";		/* cold, read at once */
	return class_is_standard(stored) ? NULL : stored;
}

const char *gw_tier_class_shown(const struct gw_req *r, const struct gw_meta *m)
{
	return gw_tier_class_at(r->tier_pol, gw_meta_hdr_get(m, "x-amz-storage-class"), r->key,
				m->version, strata_wall_ns());
}

void gw_tier_opts(const struct gw_req *r, struct sto_put_opts *o)
{
	const char *cls = r->op == OP_UPLOAD_PART || r->op == OP_UPLOAD_PART_COPY ?
			  r->tier_class : gw_meta_hdr_get(&r->meta, "x-amz-storage-class");

	tier_opts_for(r->tier_pol, cls, r->key, o);
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

struct gw_tier_pol *gw_tier_pol_ref(struct gw_tier_pol *p)
{
	return pol_get(p);
}

void gw_tier_pol_unref(struct gw_tier_pol *p)
{
	pol_put(p);
}

static void on_check_timer(uv_timer_t *h);

int gw_tier_new(struct gateway *gw, struct gw_tier **out)
{
	struct gw_tier *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->gw = gw;
	*out = t;
	return 0;
}

void gw_tier_start(struct gw_tier *t)
{
	uv_timer_init(t->gw->loop, &t->check);
	t->check.data = t;
	uv_timer_start(&t->check, on_check_timer, 1000, t->gw->cfg.tier_pass_check_ms);
	t->started = true;
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
	p->day_s = r->gw->cfg.lifecycle_day_s;
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
	/* Written by a tags-only change: the tier settings' generation is the
	 * earlier record's (absent: this record's own timestamp). */
	if (!ret && (v = gw_meta_hdr_get(&m, "tier-gen")))
		p->gen = strtoull(v, NULL, 10);
out:
	gw_meta_free(&m);
	return ret;
}

typedef void (*pol_fn)(struct gw_req *r, int err);

struct pol_op {
	struct gw_req *r;
	pol_fn done;
	struct gw_tier_pol *p;
};

static void on_pol_record(const struct gw_hlook_result *res, void *arg)
{
	struct pol_op *o = arg;
	struct gw_req *r = o->r;
	struct gw_tier_pol *p = pol_new(r);
	int err = 0;

	if (p)
		p->gen = res->status == 0 ? res->ts : 0;	/* pol_decode may set it */
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

/* A head lookup of a rep3 record by path. */
static int rec_lookup(struct gateway *gw, const char *path, size_t len, gw_hlook_fn cb,
		      void *arg)
{
	uint8_t name[STO_NAME_HASH_LEN];

	gw_name_hash(path, len, name);
	return gw_hlook_start(&gw->st, gw->rep, ring_part_of_path(gw->rep, path, len), name,
			      0, cb, arg);
}

struct rec_wr {
	struct s3_buf meta;
	void (*done)(void *arg, int err);
	void *arg;
};

static void on_rec_written(struct gw_wset *w, int err, void *arg)
{
	struct rec_wr *o = arg;

	(void)w;
	if (o->done)
		o->done(o->arg, err);
	s3_buf_free(&o->meta);
	free(o);
}

/* Writes m (a GW_META_BUCKET record) as the rep3 record at path, its
 * timestamp m->version; then done(arg, 0 or an error), done may be NULL.
 * 0, or -E2BIG / -ENOMEM (no done). */
static int rec_write(struct gateway *gw, const char *path, size_t len, struct gw_meta *m,
		     void (*done)(void *arg, int err), void *arg)
{
	struct rec_wr *o = calloc(1, sizeof(*o));
	uint8_t name[STO_NAME_HASH_LEN];
	struct gw_wset *w;
	int ret;

	if (!o)
		return -ENOMEM;
	o->done = done;
	o->arg = arg;
	ret = gw_meta_encode(m, &o->meta);
	if (ret < 0)
		goto out_free;
	gw_name_hash(path, len, name);
	w = gw_wset_new(&gw->st, gw->rep, ring_part_of_path(gw->rep, path, len), name, 0,
			false, m->version, on_rec_written, o);
	ret = -ENOMEM;
	if (!w)
		goto out_free;
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].frag = 0;
		w->f[i].iov = (struct iovec){ NULL, 0 };
	}
	w->meta = o->meta.p;
	w->meta_len = (uint32_t)o->meta.len;
	gw_wset_start(w);
	return 0;

out_free:
	s3_buf_free(&o->meta);
	free(o);
	return ret;
}

static void on_pol_written(void *arg, int err)
{
	struct pol_op *o = arg;

	if (!err) {
		pol_put(o->r->tier_pol);
		o->r->tier_pol = pol_get(o->p);
		cache_set(o->r->gw->tier, o->p);
	}
	o->done(o->r, err ? -EHOSTUNREACH : 0);
	gw_req_put(o->r);
	pol_put(o->p);
	free(o);
}

static bool is_tags_change(const struct gw_req *r)
{
	return r->op == OP_PUT_BUCKET_TAGGING || r->op == OP_DELETE_BUCKET_TAGGING;
}

/* Writes p (owned by the write from here) as the bucket's record, then
 * done(r, 0 or an error). 0 or an error (no done). */
static int pol_write(struct gw_req *r, struct gw_tier_pol *p, pol_fn done)
{
	uint64_t ts = strata_wall_ns();
	struct gw_meta m = { .kind = GW_META_BUCKET, .version = ts };
	struct s3_buf lc = { 0 };
	struct pol_op *o;
	char path[128], num[24];
	size_t len;
	int ret;

	o = calloc(1, sizeof(*o));
	if (!o) {
		pol_put(p);
		return -ENOMEM;
	}
	o->p = p;
	o->r = r;
	o->done = done;
	/* A tags-only change keeps the tier settings' generation, so it neither
	 * needs a pass nor supersedes the one running for them. */
	p->gen = is_tags_change(r) ? (r->tier_pol ? r->tier_pol->gen : 0) : ts;
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
	snprintf(num, sizeof(num), "%" PRIu64, p->gen);
	ret = ret ?: gw_meta_add_hdr(&m, "tier-gen", 8, num, strlen(num));
	pol_path(r->bucket, path, sizeof(path), &len);
	if (!ret) {
		gw_req_get(r);
		ret = rec_write(r->gw, path, len, &m, on_pol_written, o);
		if (ret < 0)
			gw_req_put(r);
	}
	if (ret == -E2BIG)
		ret = GWE_LC_TOO_LARGE;
	gw_meta_free(&m);
	s3_buf_free(&lc);
	if (ret < 0) {
		pol_put(p);
		free(o);
	}
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

static int pass_register(struct gw_req *r);

/* The status of a written settings change. */
static int written_status(const struct gw_req *r)
{
	return r->op == OP_DELETE_LIFECYCLE || r->op == OP_PUT_BUCKET_TAGGING ||
	       r->op == OP_DELETE_BUCKET_TAGGING ? 204 : 200;
}

static void on_written_answer(struct gw_req *r, int err)
{
	/* A tier policy change: registered for its pass before the answer
	 * (bucket tags change no object's tier: no pass). */
	if (!err && r->op != OP_CREATE_BUCKET && !is_tags_change(r) && r->tier_pol) {
		err = pass_register(r);
		if (err == 0)
			return;
	}
	if (err)
		gw_send_error(r, err == -EHOSTUNREACH ? -EHOSTUNREACH : err);
	else
		gw_send_empty(r, written_status(r));
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

/* A body's change applied to a copy of the fresh record (loaded: err 0;
 * keep_lc: the copy keeps the lifecycle) and written as the bucket's new
 * record; apply answers 0 or the error sent. */
static void pol_rewrite(struct gw_req *r, int err, bool keep_lc,
			int (*apply)(struct gw_req *r, struct gw_tier_pol *np))
{
	struct gw_tier_pol *np = NULL;

	if (!err) {
		np = pol_copy(r, keep_lc);
		err = np ? apply(r, np) : -ENOMEM;
	}
	if (!err)
		err = pol_write(r, np, on_written_answer);	/* owns np */
	else if (np)
		pol_put(np);
	if (err)
		gw_send_error(r, err);
}

static int tags_apply(struct gw_req *r, struct gw_tier_pol *np)
{
	free(np->tags);
	np->tags = NULL;
	return gw_tagging_parse_body(r, &np->tags);
}

static int lifecycle_apply(struct gw_req *r, struct gw_tier_pol *np)
{
	int err = s3_lifecycle_parse(r->small.p, r->small.len, &np->lc);

	np->has_lc = err == 0;
	return err;
}

/* PutBucketTagging: the fresh record is loaded. */
static void on_pol_for_tagging(struct gw_req *r, int err)
{
	pol_rewrite(r, err, true, tags_apply);
}

/* PutBucketLifecycleConfiguration: the fresh record is loaded. */
static void on_pol_for_lifecycle(struct gw_req *r, int err)
{
	pol_rewrite(r, err, false, lifecycle_apply);
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

	if (err && (r->op == OP_GET_OBJECT || r->op == OP_HEAD_OBJECT ||
		    r->op == OP_LIST_OBJECTS))
		err = 0;	/* a read goes on: the class shown is the stored one */
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
	case OP_GET_OBJECT: case OP_HEAD_OBJECT: case OP_LIST_OBJECTS:	/* the class shown */
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

/* The bucket subresources this file serves, by method (OP_NONE: not). */
static const struct bucket_subres {
	const char *query;
	enum gw_op get, put, del;
} bucket_subres[] = {
	{ "lifecycle", OP_GET_LIFECYCLE, OP_PUT_LIFECYCLE, OP_DELETE_LIFECYCLE },
	{ "tagging", OP_GET_BUCKET_TAGGING, OP_PUT_BUCKET_TAGGING, OP_DELETE_BUCKET_TAGGING },
	{ "strata-tier", OP_GET_TIER_POLICY, OP_PUT_TIER_POLICY, OP_NONE },
};

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
	for (size_t i = 0; i < sizeof(bucket_subres) / sizeof(bucket_subres[0]); i++) {
		const struct bucket_subres *b = &bucket_subres[i];
		enum gw_op op;

		if (!gw_query_has(q, qn, b->query, NULL, NULL))
			continue;
		op = m == HTTP_GET ? b->get : m == HTTP_PUT ? b->put :
		     m == HTTP_DELETE ? b->del : OP_NONE;
		if (op == OP_NONE)
			return 0;
		r->op = op;
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
	struct admin *a;
	size_t cap = 0;

	if (r->anonymous || strcmp(r->account, gw->cfg.admin_user)) {
		gw_send_error(r, S3E_ACCESS_DENIED);
		return;
	}
	a = calloc(1, sizeof(*a));
	for (unsigned k = 0; k < GW_STORE_RINGS; k++)
		cap += gw->st.cur[k] ? ring_dev_count(gw->st.cur[k]) : 0;
	if (!a || !(a->v = calloc(cap ? cap : 1, sizeof(*a->v)))) {
		free(a);
		gw_send_error(r, -ENOMEM);
		return;
	}
	a->r = gw_req_get(r);
	for (unsigned k = 0; k < GW_STORE_RINGS; k++)
		for (unsigned i = 0; gw->st.cur[k] && i < ring_dev_count(gw->st.cur[k]); i++) {
			const struct ring_dev *d = ring_dev_at(gw->st.cur[k], i);

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

/* ------------------------------------------------------- policy passes */

/* A lifecycle configuration or a pin changed: the objects already in the
 * bucket get the new policy through a pass (docs/tiering.md, "Existing
 * objects"). It walks the bucket's listing a page at a time, looks each
 * object's head up (its current version, class and layout), and sends
 * SET_TIER for the class and cold_after a PUT would get now to the head's
 * holders and to every fragment of its EC segments, at most
 * tier_pass_rate objects a second.
 *
 * Restartable and shared by every gateway: the bucket is listed in a
 * registry (an account list named PASS_ACCOUNT whose entry timestamp is the
 * policy record's: the pass's generation) before the change is answered;
 * the pass records its progress (generation, last key done, a heartbeat) at
 * "/.tierpass/<bucket>" after each page and tombstones the registry entry
 * when done. Every gateway checks the registry every tier_pass_check_ms and
 * takes over a pass whose heartbeat is older than PASS_STALE_NS, from its
 * last recorded key. SET_TIER is conditional and idempotent, so two
 * gateways running one pass, or a page done twice, do no harm; a newer
 * change (a newer generation) ends an older pass. A page with a fragment
 * that could not be reached (node down, deadline) is tried again. */
#define PASS_ACCOUNT	".tierpass"
#define PASS_PAGE	200		/* objects per listing page */
#define PASS_OBJS	32		/* objects in flight */
#define PASS_FRAGS	64		/* SET_TIERs in flight per object */
#define PASS_TICK_MS	50
#define PASS_RETRY_NS	(2ull * 1000000000)
#define PASS_STALE_NS	(15ull * 1000000000)

struct tier_pass;

struct pass_obj {
	struct tier_pass *ps;
	char *key;
	bool busy;
	/* the head as found */
	uint64_t ts;
	struct gw_meta m;
	bool have_m;
	const struct ring_dev *holders[RING_MAX_PLACEMENTS + GW_MAX_HANDOFFS];
	unsigned nholders;
	struct sto_put_opts o;
	uint8_t head_name[STO_NAME_HASH_LEN];
	uint32_t part_rep, part_ec;	/* part_ec: on pol's ring */
	const struct gw_policy *pol;	/* the head's EC policy */
	char *path;
	size_t path_len;
	/* multipart: the manifest, and the part fragment i is in */
	struct gw_manifest man;
	uint32_t cur_part;
	uint64_t cur_base;		/* flat index of its first fragment */
	struct s3_buf ppath;		/* its path (segment names) */
	/* fragments: the holders first, then (part x) segment x fragment */
	uint64_t next, total;
	unsigned inflight;
};

struct tier_pass {
	struct gw_tier *t;
	struct tier_pass *next;
	char bucket[64];
	char owner[256];
	uint64_t gen, created;
	struct gw_tier_pol *pol;
	char *after;			/* last key done ("" at the start) */
	struct pass_obj objs[PASS_PAGE];
	size_t n, next_obj, done_objs, busy_objs;
	bool in_page;			/* objs[] is a page not yet done */
	bool more, failed, stopping, waiting;
	unsigned ops;			/* store operations in flight */
	double tokens;
	uint64_t last_tick_ns, retry_at;
	uint64_t started_ns, objects, frags, missing, errors, multipart;	/* counts */
	uv_timer_t timer;
};

static void pass_pump(struct tier_pass *ps);
static void pass_page(struct tier_pass *ps);

static void pass_path(const char *dir, const char *bucket, char *out, size_t cap,
		      size_t *len)
{
	int n = snprintf(out, cap, "/%s/%s", dir, bucket);

	*len = n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static struct tier_pass *pass_find(struct gw_tier *t, const char *bucket)
{
	for (struct tier_pass *ps = t->passes; ps; ps = ps->next)
		if (!strcmp(ps->bucket, bucket))
			return ps;
	return NULL;
}

static void pass_obj_reset(struct pass_obj *po)
{
	free(po->key);
	free(po->path);
	if (po->have_m)
		gw_meta_free(&po->m);
	gw_manifest_free(&po->man);
	s3_buf_free(&po->ppath);
	memset(po, 0, sizeof(*po));
}

static void pass_closed(uv_handle_t *h)
{
	struct tier_pass *ps = h->data;

	for (size_t i = 0; i < PASS_PAGE; i++)
		pass_obj_reset(&ps->objs[i]);
	pol_put(ps->pol);
	free(ps->after);
	free(ps);
}

/* Unlinks and frees ps once nothing of it is in flight. */
static void pass_end(struct tier_pass *ps)
{
	struct tier_pass **pp = &ps->t->passes;

	ps->stopping = true;
	if (ps->ops)
		return;			/* the last answer comes back here */
	while (*pp && *pp != ps)
		pp = &(*pp)->next;
	if (*pp)
		*pp = ps->next;
	uv_close((uv_handle_t *)&ps->timer, pass_closed);
}

/* After an answer (ops already counted down): true when the pass is
 * stopping (and then ended once nothing is in flight). */
static bool pass_stopped(struct tier_pass *ps)
{
	if (!ps->stopping)
		return false;
	if (!ps->ops)
		pass_end(ps);
	return true;
}

static void pass_failed(struct tier_pass *ps, const char *what, int err)
{
	log_warn("bucket %s: tier pass: %s: %s (tried again)", ps->bucket, what,
		 sto_strerror(err));
	ps->errors++;
	ps->failed = true;
}

/* Waits PASS_RETRY_NS, then the timer starts over from the bucket record
 * (the policy again, then the page); what failed, if anything, is logged. */
static void pass_retry(struct tier_pass *ps, const char *what, int err)
{
	if (what)
		pass_failed(ps, what, err);
	ps->retry_at = strata_now_ns() + PASS_RETRY_NS;
	ps->waiting = true;
}

/* --- the end: progress done, registry entry tombstoned */

/* The progress record or the registry written (a pass that is finishing
 * ends with the last of them). */
static void on_pass_written(void *arg, int err)
{
	struct tier_pass *ps = arg;

	if (err)
		log_warn("bucket %s: tier pass record: %s", ps->bucket, sto_strerror(err));
	ps->ops--;
	pass_stopped(ps);
}

static void pass_progress(struct tier_pass *ps, bool done);

/* progress: the pass walked the bucket (else it has nothing to do: the
 * bucket is gone, or a newer change has its own pass, whose progress record
 * is not to be touched). */
static void pass_finish(struct tier_pass *ps, bool progress)
{
	double secs = (double)(strata_now_ns() - ps->started_ns) / 1e9;

	log_info("bucket %s: tier pass done: %" PRIu64 " objects, %" PRIu64
		 " fragments set, %" PRIu64 " not found, %" PRIu64 " multipart, "
		 "%.1f s (%.0f objects/s)", ps->bucket, ps->objects, ps->frags, ps->missing,
		 ps->multipart, secs, secs > 0 ? (double)ps->objects / secs : 0.0);
	ps->stopping = true;
	if (progress)
		pass_progress(ps, true);
	ps->ops++;
	if (gw_list_account_update(ps->t->gw->lst, PASS_ACCOUNT, ps->bucket, ps->gen + 1,
				   true, on_pass_written, ps) < 0)
		ps->ops--;
	pass_stopped(ps);
}

/* --- progress record */

static void pass_progress(struct tier_pass *ps, bool done)
{
	struct gw_meta m = { .kind = GW_META_BUCKET, .version = strata_wall_ns() };
	char path[128], num[24];
	size_t len;
	int ret;

	m.owner = strdup(ps->owner);
	ret = m.owner ? 0 : -ENOMEM;
	snprintf(num, sizeof(num), "%" PRIu64, ps->gen);
	ret = ret ?: gw_meta_add_hdr(&m, "gen", 3, num, strlen(num));
	ret = ret ?: gw_meta_add_hdr(&m, "after", 5, ps->after, strlen(ps->after));
	if (done)
		ret = ret ?: gw_meta_add_hdr(&m, "done", 4, "1", 1);
	pass_path(".tierpass", ps->bucket, path, sizeof(path), &len);
	ps->ops++;
	ret = ret ?: rec_write(ps->t->gw, path, len, &m, on_pass_written, ps);
	if (ret < 0)
		ps->ops--;
	gw_meta_free(&m);
}

/* --- one object */

static void obj_done(struct pass_obj *po)
{
	struct tier_pass *ps = po->ps;

	po->busy = false;
	ps->busy_objs--;
	ps->done_objs++;
	ps->objects++;
	pass_pump(ps);
}

static void obj_pump(struct pass_obj *po);

static void on_frag_set(void *arg, int status)
{
	struct pass_obj *po = arg;
	struct tier_pass *ps = po->ps;

	po->inflight--;
	if (status == 0 || status == STO_ECONFLICT)
		ps->frags++;
	else if (status == -ENOENT)
		ps->missing++;		/* not there (a handoff gone home) */
	else
		pass_failed(ps, "SET_TIER", status);
	ps->ops--;
	if (pass_stopped(ps))
		return;
	obj_pump(po);
}

static uint64_t part_segs(const struct gw_mpart *p)
{
	return p->seg_size ? (p->size + p->seg_size - 1) / p->seg_size : 0;
}

/* Fragment i of the object: the head's holders, then segment x fragment
 * (of each part in turn, for a multipart object). */
static int obj_frag(struct pass_obj *po, uint64_t i, const struct ring_dev **dev,
		    struct sto_key *k, uint64_t *ts)
{
	const struct gw_policy *pol = po->pol;
	const struct ring_dev *prim[RING_MAX_PLACEMENTS];
	unsigned km, frag;
	uint64_t seg;
	uint32_t id;

	if (i < po->nholders) {
		*dev = po->holders[i];
		*k = (struct sto_key){ .part = po->part_rep, .frag = 0 };
		memcpy(k->name, po->head_name, sizeof(k->name));
		*ts = po->ts;
		return 0;
	}
	i -= po->nholders;
	km = po->m.k + po->m.m;
	if (ring_primaries(pol->ring, po->part_ec, prim, ring_placements(pol->ring)) < km)
		return -EINVAL;
	*k = (struct sto_key){ .part = po->part_ec };
	if (po->man.n) {
		/* Fragments go in order: the part's cursor only moves on. */
		const struct gw_mpart *p;

		while (po->cur_part < po->man.n &&
		       i >= po->cur_base + part_segs(&po->man.parts[po->cur_part]) * km) {
			po->cur_base += part_segs(&po->man.parts[po->cur_part]) * km;
			po->cur_part++;
			po->ppath.len = 0;
		}
		if (po->cur_part == po->man.n)
			return -EINVAL;
		p = &po->man.parts[po->cur_part];
		if (!po->ppath.len &&
		    gw_part_path(po->path, po->path_len, po->man.upload_id, p->number, &po->ppath) < 0)
			return -ENOMEM;
		i -= po->cur_base;
		seg = i / km;
		frag = (unsigned)(i % km);
		id = prim[frag]->id;
		for (uint32_t j = 0; j < p->nover; j++)
			if (p->over[j].seg == seg && p->over[j].frag == frag)
				id = p->over[j].dev;
		gw_seg_hash(po->ppath.p, po->ppath.len, p->version, (uint32_t)seg, k->name);
		*ts = p->version;
	} else {
		seg = i / km;
		frag = (unsigned)(i % km);
		id = gw_meta_dev(&po->m, (uint32_t)seg, frag, prim[frag]->id);
		gw_seg_hash(po->path, po->path_len, po->m.version, (uint32_t)seg, k->name);
		*ts = po->m.version;
	}
	k->frag = ring_frag_id(ring_policy(pol->ring), frag);
	*dev = ring_dev_by_id(pol->ring, id);
	if (!*dev && pol->prev)
		*dev = ring_dev_by_id(pol->prev, id);
	return *dev ? 0 : -ENODEV;
}

static void obj_pump(struct pass_obj *po)
{
	struct tier_pass *ps = po->ps;

	while (po->inflight < PASS_FRAGS && po->next < po->total && !ps->stopping) {
		const struct ring_dev *dev;
		struct sto_key k;
		uint64_t ts;
		int ret = obj_frag(po, po->next++, &dev, &k, &ts);

		if (ret == 0) {
			ps->ops++;
			po->inflight++;
			ret = gw_tierset_start(&ps->t->gw->st, dev, &k, ts, &po->o, on_frag_set,
					       po);
			if (ret < 0) {
				ps->ops--;
				po->inflight--;
			}
		}
		if (ret == -ENODEV)
			ps->missing++;	/* its device left both rings: nothing to set */
		else if (ret < 0)
			pass_failed(ps, "fragment", ret);
	}
	if (po->inflight == 0 && (po->next == po->total || ps->stopping))
		obj_done(po);
}

static void on_obj_manifest(void *arg)
{
	struct pass_obj *po = arg;
	struct tier_pass *ps = po->ps;
	const uint64_t km = po->m.k + po->m.m;

	ps->ops--;
	if (ps->stopping) {
		po->busy = false;
		ps->busy_objs--;
		pass_stopped(ps);
		return;
	}
	if (!po->man.n)
		pass_failed(ps, "manifest", -EIO);	/* unreadable: the page again */
	for (uint32_t i = 0; i < po->man.n; i++)
		po->total += part_segs(&po->man.parts[i]) * km;
	obj_pump(po);
}

static void on_obj_head(const struct gw_hlook_result *res, void *arg)
{
	struct pass_obj *po = arg;
	struct tier_pass *ps = po->ps;
	const char *cls;

	ps->ops--;
	if (ps->stopping) {
		po->busy = false;
		ps->busy_objs--;
		pass_stopped(ps);
		return;
	}
	if (res->status == -ENOENT) {
		obj_done(po);		/* deleted meanwhile */
		return;
	}
	if (res->status < 0) {
		pass_failed(ps, "head lookup", res->status);
		obj_done(po);
		return;
	}
	if (gw_meta_decode(res->meta, res->meta_len, &po->m) < 0) {
		gw_meta_free(&po->m);
		log_warn("bucket %s key %s: undecodable head, skipped", ps->bucket, po->key);
		obj_done(po);
		return;
	}
	po->have_m = true;
	po->ts = res->ts;
	po->nholders = res->nholders;
	memcpy(po->holders, res->holders, res->nholders * sizeof(res->holders[0]));
	cls = gw_meta_hdr_get(&po->m, "x-amz-storage-class");
	tier_opts_for(ps->pol, cls, po->key, &po->o);
	po->total = po->nholders;
	if (po->m.layout != GW_LAYOUT_INLINE && po->m.k) {
		/* its EC fragments are on its policy's ring; without one here,
		 * only the head's replicas get the class (logged) */
		po->pol = gw_meta_policy(ps->t->gw, &po->m, "tier pass", po->path);
		if (!po->pol) {
			pass_failed(ps, "storage policy", -ENODEV);
			obj_pump(po);
			return;
		}
		po->part_ec = ring_part_of_path(po->pol->ring, po->path, po->path_len);
	}
	if (po->m.layout == GW_LAYOUT_EC && po->m.k && !po->m.nparts) {
		po->total += gw_meta_segments(&po->m) * (po->m.k + po->m.m);
	} else if (po->m.nparts && po->m.k) {
		/* The parts are in the manifest, the head's payload. */
		ps->multipart++;
		ps->ops++;
		if (gw_manifest_read_old(ps->t->gw, po->path, po->path_len, po->part_rep, res,
					 &po->m, &po->man, on_obj_manifest, po) == 0)
			return;
		ps->ops--;
		pass_failed(ps, "manifest", -ENOMEM);
	}
	obj_pump(po);
}

static void obj_start(struct tier_pass *ps, struct pass_obj *po)
{
	struct gateway *gw = ps->t->gw;
	struct s3_buf path = { 0 };
	int ret;

	po->busy = true;
	ps->busy_objs++;
	ret = s3_buf_printf(&path, "/%s/%s/%s", ps->owner, ps->bucket, po->key);
	if (ret == 0 && ring_part_of(gw->rep, ps->owner, ps->bucket, po->key, &po->part_rep) < 0)
		ret = -EINVAL;
	if (ret < 0) {
		s3_buf_free(&path);
		pass_failed(ps, "object path", ret);
		obj_done(po);
		return;
	}
	po->path = path.p;
	po->path_len = path.len;
	gw_name_hash(po->path, po->path_len, po->head_name);
	ps->ops++;
	ret = gw_hlook_start(&gw->st, gw->rep, po->part_rep, po->head_name, 0, on_obj_head, po);
	if (ret < 0) {
		ps->ops--;
		pass_failed(ps, "head lookup", ret);
		obj_done(po);
	}
}

/* --- pages */

static void on_pass_page(void *arg, int err, const struct gw_list_item *v, size_t n,
			 bool more)
{
	struct tier_pass *ps = arg;

	ps->ops--;
	if (pass_stopped(ps))
		return;
	if (err) {
		pass_retry(ps, "listing", err);
		return;
	}
	for (size_t i = 0; i < PASS_PAGE; i++)
		pass_obj_reset(&ps->objs[i]);
	ps->n = ps->next_obj = ps->done_objs = 0;
	ps->more = more;
	ps->failed = false;
	ps->in_page = true;
	for (size_t i = 0; i < n && i < PASS_PAGE; i++) {
		ps->objs[i].ps = ps;
		ps->objs[i].key = strdup(v[i].key);
		if (!ps->objs[i].key) {
			pass_failed(ps, "page", -ENOMEM);
			break;
		}
		ps->n++;
	}
	if (ps->n < n)
		ps->more = true;
	pass_pump(ps);
}

static void pass_page(struct tier_pass *ps)
{
	int ret;

	ps->waiting = false;
	ps->ops++;
	ret = gw_list_page(ps->t->gw->lst, ps->bucket, "", ps->after, PASS_PAGE, on_pass_page,
			   ps);
	if (ret < 0) {
		ps->ops--;
		pass_retry(ps, "listing", ret);
	}
}

static void pass_load(struct tier_pass *ps);

/* Objects of the page while the rate allows; a page done moves the cursor
 * (or, when something failed, is done again). */
static void pass_pump(struct tier_pass *ps)
{
	if (ps->stopping || ps->waiting || !ps->in_page)
		return;
	while (ps->next_obj < ps->n && ps->tokens >= 1 && ps->busy_objs < PASS_OBJS) {
		ps->tokens -= 1;
		obj_start(ps, &ps->objs[ps->next_obj++]);
		if (!ps->in_page)
			return;		/* finished inside (a synchronous failure) */
	}
	if (ps->done_objs < ps->n)
		return;
	ps->in_page = false;
	if (ps->failed) {
		ps->retry_at = strata_now_ns() + PASS_RETRY_NS;
		ps->waiting = true;	/* the timer reloads the policy, redoes the page */
		return;
	}
	if (ps->n) {
		char *a = strdup(ps->objs[ps->n - 1].key);

		if (!a) {
			pass_retry(ps, NULL, 0);
			return;
		}
		free(ps->after);
		ps->after = a;
	}
	if (!ps->more) {
		pass_finish(ps, true);
		return;
	}
	log_info("bucket %s: tier pass %" PRIu64 " at key %s (%" PRIu64 " objects)", ps->bucket,
		 ps->gen, ps->after, ps->objects);
	pass_progress(ps, false);	/* also the heartbeat */
	pass_page(ps);
}

static void on_pass_tick(uv_timer_t *h)
{
	struct tier_pass *ps = h->data;
	uint64_t now = strata_now_ns();
	double rate = ps->t->gw->cfg.tier_pass_rate;

	ps->tokens += rate * (double)(now - ps->last_tick_ns) / 1e9;
	if (ps->tokens > rate / 10 + 1)
		ps->tokens = rate / 10 + 1;	/* at most a tenth of a second's burst */
	ps->last_tick_ns = now;
	if (ps->stopping)
		return;
	if (ps->waiting && now >= ps->retry_at && !ps->ops)
		pass_load(ps);		/* after a failure: the policy again, then the page */
	else
		pass_pump(ps);
}

/* --- the start: bucket record, policy record, progress record */

static void on_pass_progress_rec(const struct gw_hlook_result *res, void *arg)
{
	struct tier_pass *ps = arg;
	struct gw_meta m;

	ps->ops--;
	if (pass_stopped(ps))
		return;
	if (res->status < 0 && res->status != -ENOENT) {
		pass_retry(ps, "progress record", res->status);
		return;
	}
	if (!ps->after && res->status == 0 &&
	    gw_meta_decode(res->meta, res->meta_len, &m) == 0) {
		const char *g = gw_meta_hdr_get(&m, "gen"), *a = gw_meta_hdr_get(&m, "after");

		/* Resumed where the last gateway on it got to. */
		if (g && strtoull(g, NULL, 10) == ps->gen && a && !gw_meta_hdr_get(&m, "done"))
			ps->after = strdup(a);
		gw_meta_free(&m);
	} else if (res->status == 0) {
		gw_meta_free(&m);
	}
	if (!ps->after)
		ps->after = strdup("");
	if (!ps->after) {
		pass_retry(ps, "progress record", -ENOMEM);
		return;
	}
	if (ps->after[0])
		log_info("bucket %s: tier pass %" PRIu64 " resumed after key %s", ps->bucket,
			 ps->gen, ps->after);
	else
		pass_progress(ps, false);	/* the heartbeat other gateways see */
	pass_page(ps);
}

static void on_pass_pol(const struct gw_hlook_result *res, void *arg)
{
	struct tier_pass *ps = arg;
	struct gw_tier_pol *p;
	char path[128];
	size_t len;
	int ret;

	ps->ops--;
	if (pass_stopped(ps))
		return;
	if (res->status < 0 && res->status != -ENOENT) {
		pass_retry(ps, "policy record", res->status);
		return;
	}
	if (res->status == -ENOENT) {
		pass_retry(ps, "policy record", -EAGAIN);	/* a replica behind */
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		pass_retry(ps, "policy record", -ENOMEM);
		return;
	}
	p->refs = 1;
	snprintf(p->bucket, sizeof(p->bucket), "%s", ps->bucket);
	p->created = ps->created;
	p->day_s = ps->t->gw->cfg.lifecycle_day_s;
	p->gen = res->ts;
	if (pol_decode(p, res->meta, res->meta_len) < 0) {
		log_err("bucket %s: undecodable tier policy record: no pass", ps->bucket);
		pol_put(p);
		pass_finish(ps, false);
		return;
	}
	if (p->gen < ps->gen) {
		/* Not the record the pass was registered for (yet): a replica
		 * behind; asked again later. */
		pol_put(p);
		pass_retry(ps, "policy record", -EAGAIN);
		return;
	}
	if (p->gen > ps->gen) {
		/* Changed again: the newer change has its own pass. */
		log_info("bucket %s: tier pass %" PRIu64 " superseded", ps->bucket, ps->gen);
		pol_put(p);
		pass_finish(ps, false);
		return;
	}
	pol_put(ps->pol);
	ps->pol = p;
	if (ps->after) {		/* a retry: the page again */
		pass_page(ps);
		return;
	}
	pass_path(".tierpass", ps->bucket, path, sizeof(path), &len);
	ps->ops++;
	ret = rec_lookup(ps->t->gw, path, len, on_pass_progress_rec, ps);
	if (ret < 0) {
		ps->ops--;
		pass_retry(ps, NULL, 0);
	}
}

static void on_pass_bucket(const struct gw_hlook_result *res, void *arg)
{
	struct tier_pass *ps = arg;
	struct gw_meta m;
	char path[128];
	size_t len;
	int ret;

	ps->ops--;
	if (pass_stopped(ps))
		return;
	if (res->status == -ENOENT) {
		pass_finish(ps, false);	/* the bucket is gone: nothing to do */
		return;
	}
	if (res->status < 0 || gw_meta_decode(res->meta, res->meta_len, &m) < 0 || !m.owner) {
		if (res->status == 0)
			gw_meta_free(&m);
		pass_retry(ps, "bucket record", res->status < 0 ? res->status : -EIO);
		return;
	}
	snprintf(ps->owner, sizeof(ps->owner), "%s", m.owner);
	ps->created = m.version;
	gw_meta_free(&m);
	pol_path(ps->bucket, path, sizeof(path), &len);
	ps->ops++;
	ret = rec_lookup(ps->t->gw, path, len, on_pass_pol, ps);
	if (ret < 0) {
		ps->ops--;
		pass_retry(ps, NULL, 0);
	}
}

static void pass_load(struct tier_pass *ps)
{
	char path[128];
	size_t len;

	ps->waiting = false;
	ps->failed = false;
	gw_bucket_path(ps->bucket, path, sizeof(path), &len);
	ps->ops++;
	if (rec_lookup(ps->t->gw, path, len, on_pass_bucket, ps) < 0) {
		ps->ops--;
		pass_retry(ps, NULL, 0);
	}
}

/* Runs bucket's pass of generation gen here (unless one runs already:
 * a newer generation replaces an older one). */
static void pass_start(struct gw_tier *t, const char *bucket, uint64_t gen)
{
	struct tier_pass *ps = pass_find(t, bucket);

	if (ps && !ps->stopping && ps->gen >= gen)
		return;
	if (ps)
		pass_end(ps);		/* an older generation: ends once answered */
	if (t->closing || strlen(bucket) >= sizeof(ps->bucket))
		return;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return;
	ps->t = t;
	snprintf(ps->bucket, sizeof(ps->bucket), "%s", bucket);
	ps->gen = gen;
	ps->started_ns = ps->last_tick_ns = strata_now_ns();
	ps->tokens = 1;
	uv_timer_init(t->gw->loop, &ps->timer);
	ps->timer.data = ps;
	uv_timer_start(&ps->timer, on_pass_tick, PASS_TICK_MS, PASS_TICK_MS);
	ps->next = t->passes;
	t->passes = ps;
	log_info("bucket %s: tier pass %" PRIu64 " started", bucket, gen);
	pass_load(ps);
}

/* --- the registry */

struct pass_check {
	struct gw_tier *t;
	struct gw_list_name *v;
	size_t n, i;
};

static void check_next(struct pass_check *c);

static void on_check_progress(const struct gw_hlook_result *res, void *arg)
{
	struct pass_check *c = arg;
	const struct gw_list_name *e = &c->v[c->i];
	bool live = false;
	struct gw_meta m;

	/* Someone is on it when its progress record is of this generation,
	 * not done, and recent; or when the change itself is recent (the
	 * gateway that registered it is starting its pass). */
	if (res->status == 0 && gw_meta_decode(res->meta, res->meta_len, &m) == 0) {
		const char *g = gw_meta_hdr_get(&m, "gen");

		live = g && strtoull(g, NULL, 10) == e->ts && !gw_meta_hdr_get(&m, "done") &&
		       res->ts + PASS_STALE_NS > strata_wall_ns();
		gw_meta_free(&m);
	} else if (res->status == 0) {
		gw_meta_free(&m);
	}
	live |= e->ts + PASS_STALE_NS > strata_wall_ns();
	if ((res->status == 0 || res->status == -ENOENT) && !live)
		pass_start(c->t, e->name, e->ts);
	c->i++;
	check_next(c);
}

static void check_next(struct pass_check *c)
{
	char path[128];
	size_t len;

	for (; c->i < c->n && !c->t->closing; c->i++) {
		if (pass_find(c->t, c->v[c->i].name))
			continue;
		pass_path(".tierpass", c->v[c->i].name, path, sizeof(path), &len);
		if (rec_lookup(c->t->gw, path, len, on_check_progress, c) == 0)
			return;
	}
	c->t->checking = false;
	free(c->v);
	free(c);
}

static void on_registry(void *arg, int err, const struct gw_list_name *v, size_t n)
{
	struct gw_tier *t = arg;
	struct pass_check *c = calloc(1, sizeof(*c));

	if (!err && n && c && (c->v = malloc(n * sizeof(*v)))) {
		memcpy(c->v, v, n * sizeof(*v));
		c->n = n;
		c->t = t;
		check_next(c);
		return;
	}
	if (err && err != -ENOENT)
		log_debug("tier pass registry: %s", sto_strerror(err));
	free(c);
	t->checking = false;
}

static void on_check_timer(uv_timer_t *h)
{
	struct gw_tier *t = h->data;

	if (t->checking || t->closing)
		return;
	t->checking = true;
	if (gw_list_account_names(t->gw->lst, PASS_ACCOUNT, on_registry, t) < 0)
		t->checking = false;
}

/* A policy change was written (r->tier_pol, generation gen): registered,
 * then answered, then its pass starts here. */
static void on_pass_registered(void *arg, int err)
{
	struct gw_req *r = arg;
	struct gw_tier_pol *p = r->tier_pol;

	if (err) {
		log_err("bucket %s: tier pass not registered: %s", r->bucket, sto_strerror(err));
		gw_send_error(r, -EHOSTUNREACH);
	} else {
		gw_send_empty(r, written_status(r));
		pass_start(r->gw->tier, r->bucket, p->gen);
	}
	gw_req_put(r);
}

static int pass_register(struct gw_req *r)
{
	int ret;

	gw_req_get(r);
	ret = gw_list_account_update(r->gw->lst, PASS_ACCOUNT, r->bucket, r->tier_pol->gen,
				     false, on_pass_registered, r);
	if (ret < 0)
		gw_req_put(r);
	return ret;
}

void gw_tier_close(struct gw_tier *t)
{
	t->closing = true;
	if (t->started)
		uv_close((uv_handle_t *)&t->check, NULL);
	while (t->passes) {
		struct tier_pass *ps = t->passes;

		ps->stopping = true;
		if (ps->ops)
			t->passes = ps->next;	/* frees itself once answered */
		else
			pass_end(ps);
	}
}
