/* gw_mpu.c: multipart uploads (layout in internal.h, "gw_mpu.c" section;
 * design in docs/gateway.md, "Multipart").
 *
 * Nothing about an upload lives in a gateway: the upload record, the parts
 * listing and the parts' segments are on the nodes, so any gateway can serve
 * any request of an upload, and a gateway restart loses nothing. A part is
 * written by the PUT path with its own segment names; its "head" is its
 * entry in the parts listing (written on all 3 replicas), so re-uploading a
 * part number replaces the entry (newest timestamp wins) and the replaced
 * part's segments are tombstoned. Complete reads the listing, checks the
 * request against it, and writes the object's head with the manifest as its
 * payload through the PUT's head write; the data is never copied. */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define MPU_MIN_PART		(5ull << 20)	/* all parts but the last */
#define MPU_ID_LEN		32		/* hex chars of an upload id */
#define MPU_LIST_DEFAULT	1000

static const struct {
	int err, status;
	const char *code, *msg;
} mpu_errs[] = {
	{ GWE_NO_SUCH_UPLOAD, 404, "NoSuchUpload", "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed." },
	{ GWE_ENTITY_TOO_SMALL, 400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size." },
	{ GWE_INVALID_PART_NUMBER, 416, "InvalidPartNumber", "The requested partnumber is not satisfiable" },
	{ GWE_INVALID_COPY_SOURCE, 400, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey" },
	{ GWE_MPU_TOO_LARGE, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size." },
	{ GWE_MPU_INVALID_ARG, 400, "InvalidArgument", "Invalid argument" },
	{ GWE_COPY_NO_SUCH_BUCKET, 404, "NoSuchBucket", "The specified bucket does not exist" },
	{ GWE_COPY_PRECONDITION, 412, "PreconditionFailed", "At least one of the preconditions you specified did not hold" },
	{ GWE_COPY_INVALID_RANGE, 416, "InvalidRange", "The requested range is not satisfiable" },
	{ GWE_MPU_CKSUM_TYPE, 400, "InvalidRequest", "The checksum algorithm or type does not match the multipart upload's, or is not valid for it." },
	{ GWE_INVALID_REQUEST_COPY, 400, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes." },
};

bool gw_mpu_err_info(int err, int *status, const char **code, const char **msg)
{
	for (size_t i = 0; i < ARRAY_SIZE(mpu_errs); i++)
		if (mpu_errs[i].err == err) {
			*status = mpu_errs[i].status;
			*code = mpu_errs[i].code;
			*msg = mpu_errs[i].msg;
			return true;
		}
	return false;
}

/* One operation's state, hung on r->mpu. */
struct gw_mpu {
	struct s3_buf uppath;		/* path "\0" uploadId */
	uint8_t upname[STO_NAME_HASH_LEN];	/* upload record name */
	struct sto_listing_id parts_id, uploads_id;
	struct gw_meta up;		/* the upload record */
	bool have_up;
	unsigned waiting;		/* lookups a part upload waits for */
	bool up_missing;
	struct gw_part_entry old;		/* the part this upload replaces */
	bool have_old;
	struct gw_part_entry *parts;		/* the listing, in order */
	size_t nparts, cap;
	struct s3_complete_mpu req;	/* Complete's body */
	uint8_t *keep;			/* Complete: listed part numbers (bitmap) */
	uint32_t list_marker, list_max;	/* ListParts */
	struct lu_params *lu;		/* ListMultipartUploads */
};

static void lu_params_free(struct lu_params *p);

void gw_part_entry_free(struct gw_part_entry *p)
{
	free(p->over);
	p->over = NULL;
}

void gw_mpu_req_free(struct gw_req *r)
{
	struct gw_mpu *u = r->mpu;

	free(r->upload_id);
	gw_manifest_free(&r->man);
	gw_manifest_free(&r->old_man);
	if (u) {
		s3_buf_free(&u->uppath);
		gw_meta_free(&u->up);
		gw_part_entry_free(&u->old);
		for (size_t i = 0; i < u->nparts; i++)
			gw_part_entry_free(&u->parts[i]);
		free(u->parts);
		s3_complete_mpu_free(&u->req);
		free(u->keep);
		lu_params_free(u->lu);
		free(u);
	}
	gw_copy_free(r);
}

/* -------------------------------------------------------------- naming */

int gw_part_path(const char *path, size_t plen, const char *upload_id,
		 uint32_t number, struct s3_buf *out)
{
	s3_buf_reset(out);
	return s3_buf_printf(out, "%s/%u/", upload_id, number) ?:
	       s3_buf_add(out, path, plen);
}

static void listing_id(const struct ring *rep, const char *tag, const void *p,
		       size_t n, struct sto_listing_id *id)
{
	uint8_t d[32];
	struct s3_cksum c;

	s3_cksum_init(&c, S3_CKSUM_SHA256);
	s3_cksum_update(&c, tag, strlen(tag) + 1);
	s3_cksum_update(&c, p, n);
	s3_cksum_final(&c, d);
	s3_cksum_free(&c);
	memcpy(id->id, d, STO_LISTING_ID_LEN);
	id->part = ring_part_of_path(rep, p, n);
}

/* The bucket's uploads listing: keys "key \0 uploadId". */
static int uploads_id(struct gw_req *r, struct sto_listing_id *id)
{
	char b[300];
	int n = snprintf(b, sizeof(b), "/%s/%s", r->owner, r->bucket);

	if (n < 0 || (size_t)n >= sizeof(b))
		return -ENAMETOOLONG;
	listing_id(r->gw->rep, "uploads", b, (size_t)n, id);
	return 0;
}

/* r->path must be the object's. */
static int mpu_state(struct gw_req *r)
{
	struct gw_mpu *u = r->mpu;
	int ret;

	if (!u) {
		u = r->mpu = calloc(1, sizeof(*u));
		if (!u)
			return -ENOMEM;
	}
	if (r->upload_id) {
		s3_buf_reset(&u->uppath);
		ret = s3_buf_add(&u->uppath, r->path, r->path_len) ?:
		      s3_buf_addc(&u->uppath, '\0') ?:
		      s3_buf_adds(&u->uppath, r->upload_id);
		if (ret < 0)
			return ret;
		gw_name_hash(u->uppath.p, u->uppath.len, u->upname);
		listing_id(r->gw->rep, "parts", u->uppath.p, u->uppath.len, &u->parts_id);
	}
	return uploads_id(r, &u->uploads_id);
}

/* ------------------------------------------------------------- routing */

static bool upload_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n != MPU_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static int parse_part_number(const char *v, size_t vl, uint32_t *out)
{
	uint32_t n = 0;

	if (!vl || vl > 5)
		return -EINVAL;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		n = n * 10 + (uint32_t)(v[i] - '0');
	}
	if (n < 1 || n > S3_MAX_PARTS)
		return -EINVAL;
	*out = n;
	return 0;
}

int gw_mpu_part_number(struct gw_req *r)
{
	size_t qn, vl;
	const char *q = http_req_query(r->hr, &qn), *v;

	if (!gw_query_has(q, qn, "partNumber", &v, &vl))
		return 0;
	if (parse_part_number(v, vl, &r->part_num) < 0)
		return GWE_MPU_INVALID_ARG;
	return 0;
}

int gw_mpu_route(struct gw_req *r, const char *q, size_t qn)
{
	enum http_method m = http_req_method(r->hr);
	const char *v;
	size_t vl;

	if (!r->key) {
		if (m == HTTP_GET && gw_query_has(q, qn, "uploads", NULL, NULL)) {
			r->op = OP_LIST_MPU;
			return 1;
		}
		return 0;
	}
	if (gw_query_has(q, qn, "uploads", NULL, NULL)) {
		if (m != HTTP_POST)
			return 0;
		r->op = OP_CREATE_MPU;
		return 1;
	}
	if (!gw_query_has(q, qn, "uploadId", &v, &vl))
		return 0;
	r->upload_id = s3_strndup(v, vl);
	if (!r->upload_id)
		return -ENOMEM;
	switch (m) {
	case HTTP_PUT:
		if (!gw_query_has(q, qn, "partNumber", &v, &vl) ||
		    parse_part_number(v, vl, &r->part_num) < 0)
			return S3E_INVALID_PART;
		r->op = http_req_header(r->hr, "x-amz-copy-source", NULL) ?
			OP_UPLOAD_PART_COPY : OP_UPLOAD_PART;
		return 1;
	case HTTP_POST: r->op = OP_COMPLETE_MPU; return 1;
	case HTTP_DELETE: r->op = OP_ABORT_MPU; return 1;
	case HTTP_GET: r->op = OP_LIST_PARTS; return 1;
	default: return 0;
	}
}

/* ---------------------------------------------------- listing replicas */
/* Listing operations on the 3 rep3 primaries of a listing id: writes go to
 * all 3 and succeed only when all 3 are durable within the write deadline
 * (so a read from any one replica sees them; a node down fails the write
 * with 503 rather than hiding a part from Complete); reads ask one replica
 * and move to the next on an error or at the read deadline. An operation
 * lives until every request it sent has answered (answers after it finished
 * are dropped). */

typedef void (*lop_fn)(struct gw_req *r, int err);
typedef void (*lpage_fn)(struct gw_req *r, int err, const struct sto_listing_page *pg);

struct lop {
	struct gw_req *r;
	struct sto_listing_id id;
	const struct ring_dev *t[RING_MAX_PLACEMENTS];
	unsigned n, pending, ok, cur;
	unsigned refs;			/* requests in flight + 1 until finished */
	int err;
	bool is_delete, finished;
	struct sto_listing_entry e;	/* put: one entry (copied) */
	uint8_t *kv;			/* its key and value */
	struct sto_listing_query q;
	uint8_t *qbuf;			/* the query's strings */
	lop_fn done;
	lpage_fn page;
	uv_timer_t timer;
};

struct lattempt {
	struct lop *o;
	struct gw_node *node;
	unsigned cur;			/* query: the replica asked */
};

static void lop_closed(uv_handle_t *h)
{
	struct lop *o = h->data;

	o->r->gw->st.live--;
	gw_req_put(o->r);
	free(o->kv);
	free(o->qbuf);
	free(o);
}

static void lop_unref(struct lop *o)
{
	if (--o->refs == 0)
		uv_close((uv_handle_t *)&o->timer, lop_closed);
}

static struct lop *lop_new(struct gw_req *r, const struct sto_listing_id *id)
{
	struct lop *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->r = gw_req_get(r);
	o->id = *id;
	o->n = ring_primaries(r->gw->rep, id->part, o->t, ring_placements(r->gw->rep));
	o->refs = 1;
	uv_timer_init(r->gw->loop, &o->timer);
	o->timer.data = o;
	r->gw->st.live++;
	return o;
}

/* Put/delete: the result, once. */
static void lop_finish(struct lop *o, int err)
{
	if (o->finished)
		return;
	o->finished = true;
	uv_timer_stop(&o->timer);
	if (o->done)
		o->done(o->r, err);
	lop_unref(o);
}

static void lop_one_done(struct lop *o, int err)
{
	if (err >= 0)
		o->ok++;
	else if (!o->err)
		o->err = err;
	if (--o->pending == 0)
		lop_finish(o, o->ok == o->n ? 0 : (o->err ? o->err : -EIO));
}

static void lattempt_end(struct lattempt *a)
{
	struct lop *o = a->o;

	free(a);
	lop_unref(o);
}

static void lput_on_done(void *arg, int status, uint64_t count)
{
	struct lattempt *a = arg;

	(void)count;
	if (status < 0)
		gw_node_failed(a->node, status);
	else
		gw_node_ok(a->node);
	if (!a->o->finished)
		lop_one_done(a->o, status);
	lattempt_end(a);
}

static void ldel_on_done(void *arg, int status, uint64_t deleted, bool more,
			 struct sto_bytes next)
{
	struct lattempt *a = arg;

	/* XXX more than STO_LISTING_MAX_DELETE entries: the rest stays. */
	(void)deleted; (void)next; (void)more;
	if (!a->o->finished)
		lop_one_done(a->o, status);
	lattempt_end(a);
}

static void lput_on_client(void *arg, sto_client *c, int err)
{
	struct lattempt *a = arg;
	struct lop *o = a->o;
	struct sto_bytes none = { NULL, 0 };

	if (!err && o->finished)
		err = -ECANCELED;
	if (!err)
		err = o->is_delete ?
		      sto_listing_delete_range(c, &o->id, none, none, 0, ldel_on_done, a) :
		      sto_listing_put(c, &o->id, &o->e, 1, lput_on_done, a);
	if (err < 0) {
		if (!o->finished)
			lop_one_done(o, err);
		lattempt_end(a);
	}
}

static void lput_on_timer(uv_timer_t *t)
{
	struct lop *o = t->data;

	lop_finish(o, -ETIMEDOUT);
}

static void lop_fanout(struct lop *o)
{
	o->pending = o->n + 1;	/* + 1: acquire may answer at once */
	uv_timer_start(&o->timer, lput_on_timer, o->r->gw->cfg.write_deadline_ms, 0);
	for (unsigned i = 0; i < o->n; i++) {
		struct lattempt *a = calloc(1, sizeof(*a));
		struct gw_node *n = gw_pool_node(o->r->gw->pool, o->t[i]->node);

		if (!a || !n) {
			free(a);
			lop_one_done(o, -ENOMEM);
			continue;
		}
		a->o = o;
		a->node = n;
		o->refs++;
		gw_node_acquire(n, lput_on_client, a);
	}
	o->n++;			/* the hold counts as one more success */
	lop_one_done(o, 0);
}

/* Puts one entry (tombstone: value NULL) at ts on all replicas. */
static int lput(struct gw_req *r, const struct sto_listing_id *id, const void *key,
		size_t klen, uint64_t ts, const void *value, size_t vlen, lop_fn done)
{
	struct lop *o;

	if (klen > STO_LISTING_MAX_KEY || vlen > STO_LISTING_MAX_VALUE)
		return -E2BIG;
	o = lop_new(r, id);
	if (!o)
		return -ENOMEM;
	o->kv = malloc(klen + vlen + 1);
	if (!o->kv) {
		lop_unref(o);
		return -ENOMEM;
	}
	memcpy(o->kv, key, klen);
	if (vlen)
		memcpy(o->kv + klen, value, vlen);
	o->e = (struct sto_listing_entry){ o->kv, (uint32_t)klen, ts, !value,
					   value ? o->kv + klen : NULL, (uint32_t)vlen };
	o->done = done;
	lop_fanout(o);
	return 0;
}

/* Drops every entry of a listing (best effort). */
static void ldrop(struct gw_req *r, const struct sto_listing_id *id)
{
	struct lop *o = lop_new(r, id);

	if (!o)
		return;
	o->is_delete = true;
	lop_fanout(o);
}

static void lquery_try(struct lop *o);

/* Query: the page (borrowed), once. */
static void lquery_finish(struct lop *o, int err, const struct sto_listing_page *pg)
{
	if (o->finished)
		return;
	o->finished = true;
	uv_timer_stop(&o->timer);
	o->page(o->r, err, pg);
	lop_unref(o);
}

/* The replica asked (a->cur) failed or is slow: the next one, if any. */
static void lquery_next(struct lop *o, unsigned cur, int err)
{
	if (o->finished || cur != o->cur)
		return;		/* a newer attempt is running */
	if (o->cur + 1 < o->n) {
		o->cur++;
		lquery_try(o);
		return;
	}
	lquery_finish(o, err, NULL);
}

static void lquery_on_page(void *arg, int status, const struct sto_listing_page *pg)
{
	struct lattempt *a = arg;
	struct lop *o = a->o;

	if (status < 0) {
		gw_node_failed(a->node, status);
		lquery_next(o, a->cur, status);
	} else if (!o->finished) {
		lquery_finish(o, 0, pg);
	}
	lattempt_end(a);
}

static void lquery_on_client(void *arg, sto_client *c, int err)
{
	struct lattempt *a = arg;
	struct lop *o = a->o;

	if (!err && o->finished)
		err = -ECANCELED;
	if (!err)
		err = sto_listing_query(c, &o->id, &o->q, lquery_on_page, a);
	if (err < 0) {
		lquery_next(o, a->cur, err);
		lattempt_end(a);
	}
}

/* Slow: ask the next replica too (the first answer wins); the last one
 * is waited for. */
static void lquery_on_timer(uv_timer_t *t)
{
	struct lop *o = t->data;

	if (o->cur + 1 < o->n)
		lquery_next(o, o->cur, -ETIMEDOUT);
}

static void lquery_try(struct lop *o)
{
	struct lattempt *a = calloc(1, sizeof(*a));
	struct gw_node *n = gw_pool_node(o->r->gw->pool, o->t[o->cur]->node);

	if (!a || !n) {
		free(a);
		lquery_finish(o, -ENOMEM, NULL);
		return;
	}
	a->o = o;
	a->node = n;
	a->cur = o->cur;
	o->refs++;
	uv_timer_start(&o->timer, lquery_on_timer, o->r->gw->cfg.read_deadline_ms, 0);
	gw_node_acquire(n, lquery_on_client, a);
}

/* One page of a listing; the strings are copied. */
static int lquery(struct gw_req *r, const struct sto_listing_id *id,
		  struct sto_bytes start_after, struct sto_bytes prefix,
		  struct sto_bytes delim, uint32_t limit, lpage_fn page)
{
	struct lop *o = lop_new(r, id);
	uint8_t *p;

	if (!o)
		return -ENOMEM;
	o->qbuf = p = malloc(start_after.len + prefix.len + delim.len + 1);
	if (!p) {
		lop_unref(o);
		return -ENOMEM;
	}
	if (start_after.len)
		memcpy(p, start_after.data, start_after.len);
	o->q.start_after = (struct sto_bytes){ p, start_after.len };
	p += start_after.len;
	if (prefix.len)
		memcpy(p, prefix.data, prefix.len);
	o->q.prefix = (struct sto_bytes){ p, prefix.len };
	p += prefix.len;
	if (delim.len)
		memcpy(p, delim.data, delim.len);
	o->q.delimiter = (struct sto_bytes){ p, delim.len };
	o->q.limit = limit;
	o->page = page;
	lquery_try(o);
	return 0;
}

/* ------------------------------------------------------ part entries */

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int put_be(struct s3_buf *b, uint64_t v, unsigned n)
{
	uint8_t t[8];

	for (unsigned i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return s3_buf_add(b, t, n);
}

int gw_part_entry_encode(const struct gw_meta *m, struct s3_buf *b)
{
	int ret = put_be(b, m->version, 8) ?: put_be(b, m->size, 8) ?:
		  s3_buf_add(b, m->md5, 16) ?: put_be(b, m->seg_size, 4) ?:
		  put_be(b, m->nover, 2);

	for (uint32_t i = 0; !ret && i < m->nover; i++)
		ret = put_be(b, m->over[i].seg, 4) ?: put_be(b, m->over[i].frag, 1) ?:
		      put_be(b, m->over[i].dev, 4);
	if (!ret && m->cksum_alg != S3_CKSUM_NONE)
		ret = put_be(b, m->cksum_alg, 1) ?:
		      s3_buf_add(b, m->cksum, s3_cksum_len(m->cksum_alg));
	return ret;
}

/* A part's checksum algorithm as stored: one S3 sends (x-amz-checksum-*). */
static bool part_cksum_valid(unsigned alg)
{
	return alg < S3_CKSUM_END && s3_cksum_header((enum s3_cksum_alg)alg);
}

int gw_part_entry_decode(const struct sto_listing_entry *e, struct gw_part_entry *p)
{
	const uint8_t *v = e->value;
	uint32_t n = e->value_len;

	memset(p, 0, sizeof(*p));
	if (e->key_len != 4 || n < 38)
		return -EINVAL;
	p->number = (uint32_t)rd_be(e->key, 4);
	p->version = rd_be(v, 8);
	p->size = rd_be(v + 8, 8);
	memcpy(p->md5, v + 16, 16);
	p->seg_size = (uint32_t)rd_be(v + 32, 4);
	p->nover = (uint32_t)rd_be(v + 36, 2);
	if (n < 38 + 9 * p->nover || !p->seg_size)
		return -EINVAL;
	if (n > 38 + 9 * p->nover) {
		const uint8_t *c = v + 38 + 9 * p->nover;

		if (!part_cksum_valid(c[0]) ||
		    n != 38 + 9 * p->nover + 1 + s3_cksum_len(c[0]))
			return -EINVAL;
		p->cksum_alg = c[0];
		memcpy(p->cksum, c + 1, s3_cksum_len(c[0]));
	}
	if (p->nover) {
		p->over = calloc(p->nover, sizeof(*p->over));
		if (!p->over)
			return -ENOMEM;
		for (uint32_t i = 0; i < p->nover; i++) {
			const uint8_t *o = v + 38 + 9 * i;

			p->over[i] = (struct gw_override){ (uint32_t)rd_be(o, 4), o[4],
							   (uint32_t)rd_be(o + 5, 4) };
		}
	}
	return 0;
}

/* Tombstones a part's segments. */
static void part_gc(struct gw_req *r, const char *path, size_t plen,
		    const struct gw_part_entry *p, uint64_t ts)
{
	struct s3_buf pp = { 0 };

	if (gw_part_path(path, plen, r->upload_id, p->number, &pp) == 0)
		gw_tail_gc(r->gw, r->wpol, pp.p, pp.len, r->part_ec, p->version,
			   (p->size + p->seg_size - 1) / p->seg_size, ts);
	s3_buf_free(&pp);
}

/* --------------------------------------------- upload record lookup */

typedef void (*up_fn)(struct gw_req *r, int err);

struct uplook {
	struct gw_req *r;
	up_fn cb;
};

/* The upload's parts are on the policy its record names (uploads from
 * before policies: index 0): r->wpol and r->part_ec from here. A part's
 * segments stream before the record is known, on the bucket's policy: the
 * same one, as a bucket keeps its policy; else the part fails. */
static int upload_policy(struct gw_req *r)
{
	struct gw_mpu *u = r->mpu;
	const struct gw_policy *p = gw_meta_policy(r->gw, &u->up, "upload", r->path);

	if (!p)
		return gw_policy_unavailable();
	if (p != r->wpol) {
		if (r->op == OP_UPLOAD_PART || r->op == OP_UPLOAD_PART_COPY) {
			log_err("upload %s: on policy %s, its bucket on %s", r->upload_id,
				p->name, r->wpol ? r->wpol->name : "(none)");
			return gw_policy_unavailable();
		}
		r->wpol = p;	/* r->path: the object's (not a part's) */
		r->part_ec = ring_part_of_path(p->ring, r->path, r->path_len);
	}
	u->have_up = true;
	return 0;
}

static void on_upload_record(const struct gw_hlook_result *res, void *arg)
{
	struct uplook *l = arg;
	struct gw_req *r = l->r;
	struct gw_mpu *u = r->mpu;
	int err = 0;

	if (res->status == -ENOENT)
		err = GWE_NO_SUCH_UPLOAD;
	else if (res->status < 0)
		err = -EHOSTUNREACH;
	else if (gw_meta_decode(res->meta, res->meta_len, &u->up) < 0 ||
		 u->up.kind != GW_META_UPLOAD)
		err = -EIO;
	else
		err = upload_policy(r);
	l->cb(r, err);
	gw_req_put(r);
	free(l);
}

static int upload_lookup(struct gw_req *r, up_fn cb)
{
	struct uplook *l;
	int ret;

	if (!upload_id_valid(r->upload_id))
		return GWE_NO_SUCH_UPLOAD;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->r = gw_req_get(r);
	l->cb = cb;
	ret = gw_hlook_start(&r->gw->st, r->gw->rep, r->part_rep, r->mpu->upname, 0,
			     on_upload_record, l);
	if (ret < 0) {
		gw_req_put(r);
		free(l);
	}
	return ret;
}

/* ------------------------------------------------------------- create */

/* CreateMultipartUpload's x-amz-checksum-algorithm and -type into the
 * upload record: the parts must then carry that algorithm's checksum, and
 * the object gets one. COMPOSITE suits every algorithm but CRC64NVME,
 * FULL_OBJECT only the CRCs; each algorithm's default is AWS's. */
static int create_checksum(struct gw_req *r)
{
	size_t al, tl;
	const char *a = http_req_header(r->hr, "x-amz-checksum-algorithm", &al);
	const char *t = http_req_header(r->hr, "x-amz-checksum-type", &tl);
	enum s3_cksum_alg alg;
	bool composite;

	if (!a)
		return t ? GWE_MPU_CKSUM_TYPE : 0;
	alg = s3_cksum_alg_from_name(a, al);
	if (alg == S3_CKSUM_NONE)
		return GWE_MPU_INVALID_ARG;
	composite = alg != S3_CKSUM_CRC64NVME;
	if (t && tl == 9 && !strncasecmp(t, "COMPOSITE", 9))
		composite = true;
	else if (t && tl == 11 && !strncasecmp(t, "FULL_OBJECT", 11))
		composite = false;
	else if (t)
		return GWE_MPU_INVALID_ARG;
	if (composite ? alg == S3_CKSUM_CRC64NVME : !s3_cksum_is_crc(alg))
		return GWE_MPU_CKSUM_TYPE;
	r->meta.cksum_alg = (uint8_t)alg;
	r->meta.cksum_composite = composite;
	return 0;
}

static void create_answer(struct gw_req *r)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;

	if (r->meta.cksum_alg != S3_CKSUM_NONE && r->hr) {
		http_resp_header(r->hr, "x-amz-checksum-algorithm",
				 s3_cksum_name(r->meta.cksum_alg));
		http_resp_header(r->hr, "x-amz-checksum-type", gw_meta_cksum_type(&r->meta));
	}
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "InitiateMultipartUploadResult", true);
	s3_xml_elem(&x, "Bucket", r->bucket);
	s3_xml_elem(&x, "Key", r->key);
	s3_xml_elem(&x, "UploadId", r->upload_id);
	if (s3_xml_end(&x) < 0)
		gw_send_error(r, -ENOMEM);
	else
		gw_send_xml(r, 200, &b);
	s3_buf_free(&b);
}

static void on_create_listed(struct gw_req *r, int err)
{
	/* The upload works without its uploads-listing entry (only
	 * ListMultipartUploads misses it): not a reason to fail. */
	if (err)
		log_warn("uploads listing of %s (%s): %s", r->path, r->upload_id,
			 sto_strerror(err));
	create_answer(r);
}

static void on_create_written(struct gw_wset *w, int err, void *arg)
{
	struct gw_req *r = arg;
	struct gw_mpu *u = r->mpu;
	struct s3_buf key = { 0 };
	const char *sc = gw_meta_hdr_get(&r->meta, "x-amz-storage-class");
	size_t scl = sc ? strlen(sc) : 0;
	uint8_t v[8 + 32];
	int ret;

	(void)w;
	if (err) {
		gw_send_error(r, -EHOSTUNREACH);
		goto out;
	}
	for (int i = 0; i < 8; i++)
		v[i] = (uint8_t)(r->meta.version >> (56 - 8 * i));
	/* The storage class follows the time (older entries: STANDARD). */
	if (scl > sizeof(v) - 8)
		scl = 0;
	if (scl)
		memcpy(v + 8, sc, scl);
	ret = s3_buf_adds(&key, r->key) ?: s3_buf_addc(&key, '\0') ?:
	      s3_buf_adds(&key, r->upload_id);
	if (!ret)
		ret = lput(r, &u->uploads_id, key.p, key.len, r->meta.version, v,
			   8 + scl, on_create_listed);
	if (ret < 0)
		on_create_listed(r, ret);
	s3_buf_free(&key);
out:
	gw_req_put(r);
}

static int create_begin(struct gw_req *r)
{
	struct gw_mpu *u;
	struct gw_wset *w;
	uint8_t rnd[8];
	char hex[17];
	int ret;

	r->meta.kind = GW_META_UPLOAD;
	r->meta.version = strata_wall_ns();
	r->meta.owner = strdup(r->owner);
	if (!r->meta.owner)
		return -ENOMEM;
	/* Every part goes on the bucket's policy, recorded here. */
	ret = gw_req_write_policy(r);
	if (ret < 0)
		return ret;
	r->meta.k = (uint8_t)r->wpol->k;
	r->meta.m = (uint8_t)r->wpol->m;
	r->meta.policy = (uint8_t)r->wpol->index;
	ret = gw_collect_meta(r, &r->meta) ?: create_checksum(r);
	if (ret < 0)
		return ret;
	/* Upload ids sort by creation time (ListMultipartUploads' order). */
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	s3_hex(rnd, sizeof(rnd), hex);
	r->upload_id = malloc(MPU_ID_LEN + 1);
	if (!r->upload_id)
		return -ENOMEM;
	snprintf(r->upload_id, MPU_ID_LEN + 1, "%016" PRIx64 "%s", r->meta.version, hex);
	ret = mpu_state(r);
	if (ret < 0)
		return ret;
	u = r->mpu;
	ret = gw_meta_encode(&r->meta, &r->metabuf);
	if (ret < 0)
		return ret == -E2BIG ? S3E_TOO_LARGE : ret;
	w = gw_wset_new(&r->gw->st, r->gw->rep, r->part_rep, u->upname, 0, false,
			r->meta.version, on_create_written, gw_req_get(r));
	if (!w) {
		gw_req_put(r);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].frag = 0;
		w->f[i].iov = (struct iovec){ NULL, 0 };
	}
	w->meta = r->metabuf.p;
	w->meta_len = (uint32_t)r->metabuf.len;
	gw_wset_start(w);
	return 0;
}

/* --------------------------------------------------------- upload part */

static void part_ready(struct gw_req *r)
{
	struct gw_mpu *u = r->mpu;

	if (--u->waiting)
		return;
	if (u->up_missing) {
		gw_put_fail(r, GWE_NO_SUCH_UPLOAD);
		return;
	}
	r->old_known = true;
	gw_put_maybe_head(r);
}

static void on_part_upload(struct gw_req *r, int err)
{
	if (!err && r->op == OP_UPLOAD_PART_COPY && r->copy)
		err = gw_copy_upload_known(r, r->mpu->up.cksum_alg);
	if (err) {
		r->mpu->up_missing = true;
		if (err != GWE_NO_SUCH_UPLOAD)
			gw_put_fail(r, err);
	}
	part_ready(r);
}

static void on_part_old(struct gw_req *r, int err, const struct sto_listing_page *pg)
{
	struct gw_mpu *u = r->mpu;

	/* Not knowing the replaced part only leaves garbage behind. */
	if (!err && pg->n_entries == 1 && gw_part_entry_decode(&pg->entries[0], &u->old) == 0 &&
	    u->old.number == r->part_num)
		u->have_old = true;
	part_ready(r);
}

int gw_mpu_part_prepare(struct gw_req *r)
{
	struct gateway *gw = r->gw;
	struct gw_mpu *u;
	struct s3_buf pp = { 0 };
	uint8_t after[4];
	int ret;

	ret = mpu_state(r);
	if (ret < 0)
		return ret;
	if (!upload_id_valid(r->upload_id))
		return GWE_NO_SUCH_UPLOAD;
	u = r->mpu;
	/* Every part is EC, whatever its size: a manifest names segments. */
	r->meta.layout = GW_LAYOUT_EC;
	r->meta.k = (uint8_t)r->wpol->k;
	r->meta.m = (uint8_t)r->wpol->m;
	r->meta.policy = (uint8_t)r->wpol->index;
	r->meta.seg_size = gw->cfg.unit * r->wpol->k;
	ret = gw_part_path(r->path, r->path_len, r->upload_id, r->part_num, &pp);
	if (ret < 0) {
		s3_buf_free(&pp);
		return ret;
	}
	if (r->rpath == r->path) {
		r->rpath = pp.p;
		r->rpath_len = pp.len;
	}
	free(r->path);
	r->path = pp.p;		/* owned by r from here */
	r->path_len = pp.len;
	/* Both lookups gate the commit (put_maybe_head waits for old_known);
	 * the body streams meanwhile. */
	u->waiting = 3;
	ret = upload_lookup(r, on_part_upload);
	if (ret < 0) {
		u->waiting = 0;
		return ret;
	}
	be32(after, r->part_num - 1);
	if (lquery(r, &u->parts_id, (struct sto_bytes){ after, 4 },
		   (struct sto_bytes){ NULL, 0 }, (struct sto_bytes){ NULL, 0 }, 1,
		   on_part_old) < 0)
		u->waiting--;
	part_ready(r);		/* the hold */
	return 0;
}

static void part_answer(struct gw_req *r)
{
	char etag[S3_ETAG_MAX];

	s3_etag_from_md5(r->meta.md5, etag);
	if (r->op == OP_UPLOAD_PART_COPY) {
		gw_copy_answer(r, etag);
		return;
	}
	if (!r->hr || r->responded)
		return;
	r->responded = true;
	gw_resp_common(r);
	http_resp_header(r->hr, "ETag", etag);
	if (r->meta.cksum_alg != S3_CKSUM_NONE) {
		char b64[S3_CKSUM_B64_MAX];

		s3_base64_encode(r->meta.cksum, s3_cksum_len(r->meta.cksum_alg), b64,
				 sizeof(b64));
		http_resp_header(r->hr, s3_cksum_header(r->meta.cksum_alg), b64);
	}
	http_resp_simple(r->hr, 200, NULL, NULL, 0);
}

static void on_part_committed(struct gw_req *r, int err)
{
	struct gw_mpu *u = r->mpu;
	uint64_t now = strata_wall_ns();

	if (err) {
		/* The entry may still land on the replicas that missed the
		 * deadline: its segments must stay (garbage at worst). */
		log_warn("part %u of %s: %s", r->part_num, r->upload_id, sto_strerror(err));
		gw_send_error(r, -EHOSTUNREACH);
		return;
	}
	part_answer(r);
	if (u->have_old && u->old.version < r->version)
		gw_tail_gc(r->gw, r->wpol, r->path, r->path_len, r->part_ec, u->old.version,
			   (u->old.size + u->old.seg_size - 1) / u->old.seg_size, now);
}

int gw_mpu_part_check(struct gw_req *r)
{
	const struct gw_meta *up = &r->mpu->up;

	if (!r->mpu->have_up || up->cksum_alg == S3_CKSUM_NONE)
		return 0;
	/* The part's own checksum (header or trailer), verified against its
	 * data on the way in, must be of the upload's algorithm (a copied
	 * part's is computed in it: gw_copy_upload_known). */
	return r->meta.cksum_alg == up->cksum_alg ? 0 : GWE_MPU_CKSUM_TYPE;
}

void gw_mpu_part_commit(struct gw_req *r)
{
	struct s3_buf v = { 0 };
	uint8_t key[4];
	int ret;

	be32(key, r->part_num);
	ret = gw_part_entry_encode(&r->meta, &v);
	if (!ret)
		ret = lput(r, &r->mpu->parts_id, key, 4, r->version, v.p, v.len,
			   on_part_committed);
	s3_buf_free(&v);
	if (ret < 0)
		on_part_committed(r, ret);
}

/* ------------------------------------------------- loading all parts */
/* Complete and Abort read the whole parts listing into u->parts, then go on
 * in parts_loaded(). */

static void complete_parts(struct gw_req *r, int err);
static void abort_parts(struct gw_req *r, int err);
static void parts_next(struct gw_req *r, const void *after, size_t alen);

static void parts_loaded(struct gw_req *r, int err)
{
	if (r->op == OP_COMPLETE_MPU)
		complete_parts(r, err);
	else
		abort_parts(r, err);
}

static void on_parts_page(struct gw_req *r, int err, const struct sto_listing_page *pg)
{
	struct gw_mpu *u = r->mpu;

	if (err) {
		parts_loaded(r, err);
		return;
	}
	for (size_t i = 0; i < pg->n_entries; i++) {
		struct gw_part_entry p;

		if (gw_part_entry_decode(&pg->entries[i], &p) < 0) {
			gw_part_entry_free(&p);
			continue;
		}
		if (u->nparts == u->cap) {
			size_t nc = u->cap ? u->cap * 2 : 64;
			struct gw_part_entry *np = realloc(u->parts, nc * sizeof(*np));

			if (!np) {
				gw_part_entry_free(&p);
				parts_loaded(r, -ENOMEM);
				return;
			}
			u->parts = np;
			u->cap = nc;
		}
		u->parts[u->nparts++] = p;
	}
	if (pg->is_truncated && pg->n_entries && u->nparts < S3_MAX_PARTS) {
		parts_next(r, pg->next_marker.data, pg->next_marker.len);
		return;
	}
	parts_loaded(r, 0);
}

static void parts_next(struct gw_req *r, const void *after, size_t alen)
{
	int ret = lquery(r, &r->mpu->parts_id, (struct sto_bytes){ after, (uint32_t)alen },
			 (struct sto_bytes){ NULL, 0 }, (struct sto_bytes){ NULL, 0 },
			 MPU_LIST_DEFAULT, on_parts_page);

	if (ret < 0)
		parts_loaded(r, ret);
}

/* ------------------------------------------------------------- cleanup */

static void on_cleanup_done(struct gw_wset *w, int err, void *arg)
{
	(void)w; (void)err; (void)arg;
}

/* The upload is over (completed or aborted): its parts listing and the
 * segments of every part that is not in u->keep go, and (Complete) its
 * record. Best effort: what fails is garbage for the reconstructor, never
 * visible. */
static void mpu_cleanup(struct gw_req *r, bool drop_record)
{
	struct gw_mpu *u = r->mpu;
	uint64_t now = strata_wall_ns();

	for (size_t i = 0; i < u->nparts; i++) {
		uint32_t n = u->parts[i].number;

		if (u->keep && (u->keep[n / 8] & (1u << (n % 8))))
			continue;
		part_gc(r, r->path, r->path_len, &u->parts[i], now);
	}
	ldrop(r, &u->parts_id);
	if (drop_record) {
		struct gw_wset *w = gw_wset_new(&r->gw->st, r->gw->rep, r->part_rep,
						u->upname, 0, true, now,
						on_cleanup_done, NULL);

		if (w) {
			for (unsigned i = 0; i < w->n; i++)
				w->f[i].frag = 0;
			gw_wset_start(w);
		}
	}
}

/* Out of the bucket's uploads listing (before the answer, so that a
 * ListMultipartUploads after it does not show the upload). */
static void mpu_unlist(struct gw_req *r, lop_fn done)
{
	struct s3_buf key = { 0 };
	int ret = s3_buf_adds(&key, r->key) ?: s3_buf_addc(&key, '\0') ?:
		  s3_buf_adds(&key, r->upload_id);

	if (!ret)
		ret = lput(r, &r->mpu->uploads_id, key.p, key.len, strata_wall_ns(),
			   NULL, 0, done);
	s3_buf_free(&key);
	if (ret < 0)
		done(r, ret);
}

/* --------------------------------------------------------------- abort */

static void abort_parts(struct gw_req *r, int err)
{
	if (err)
		log_warn("abort %s: parts listing: %s", r->upload_id, sto_strerror(err));
	mpu_cleanup(r, false);
}

static void on_abort_unlisted(struct gw_req *r, int err)
{
	if (err)
		log_warn("abort %s: uploads listing: %s", r->upload_id, sto_strerror(err));
	gw_send_empty(r, 204);
	parts_next(r, NULL, 0);
}

static void on_abort_written(struct gw_wset *w, int err, void *arg)
{
	struct gw_req *r = arg;

	(void)w;
	if (err)
		gw_send_error(r, -EHOSTUNREACH);
	else
		mpu_unlist(r, on_abort_unlisted);
	gw_req_put(r);
}

static void on_abort_upload(struct gw_req *r, int err)
{
	struct gw_wset *w;

	if (err) {
		gw_send_error(r, err);
		return;
	}
	/* The record's tombstone first: from then on no part can commit. */
	w = gw_wset_new(&r->gw->st, r->gw->rep, r->part_rep, r->mpu->upname, 0, true,
			strata_wall_ns(), on_abort_written, gw_req_get(r));
	if (!w) {
		gw_req_put(r);
		gw_send_error(r, -ENOMEM);
		return;
	}
	for (unsigned i = 0; i < w->n; i++)
		w->f[i].frag = 0;
	gw_wset_start(w);
}

/* ------------------------------------------------------------ complete */

static const struct gw_part_entry *find_part(const struct gw_mpu *u, uint32_t number)
{
	size_t lo = 0, hi = u->nparts;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (u->parts[mid].number == number)
			return &u->parts[mid];
		if (u->parts[mid].number < number)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void complete_result(struct gw_req *r, const struct gw_meta *m);

static void complete_old_known(struct gw_req *r)
{
	/* The object is this very upload's already: a retry that came before
	 * the first Complete's cleanup dropped the upload. Its answer is the
	 * first's; a second head would make the first's parts (the same
	 * ones) look replaced, and they would go. */
	if (r->old_man.upload_id && !strcmp(r->old_man.upload_id, r->upload_id)) {
		complete_result(r, &r->gm);
		return;
	}
	r->old_known = true;
	gw_put_maybe_head(r);
}

static void on_complete_old_head(const struct gw_hlook_result *res, void *arg)
{
	struct gw_req *r = arg;
	struct gw_meta *m = &r->gm;	/* kept: complete_old_known may answer it */
	bool have = res->status == 0 &&
		    gw_meta_decode(res->meta, res->meta_len, m) == 0 &&
		    m->kind == GW_META_OBJECT;
	int ret = 0;

	/* Conditional Complete (If-Match / If-None-Match) as a conditional
	 * PUT; a refusal leaves the upload as it was, so it can be retried. */
	if (r->hr && (http_req_header(r->hr, "if-match", NULL) ||
		      http_req_header(r->hr, "if-none-match", NULL)))
		ret = res->status < 0 && res->status != -ENOENT ? -EHOSTUNREACH :
		      gw_put_check_conditions(r, have ? m : NULL);
	if (ret < 0) {
		gw_send_error(r, ret);
		gw_req_put(r);
		return;
	}
	/* The replaced version's segments (or parts) go once the new head is
	 * durable (on_head_written). */
	if (have)
		gw_put_old_head(r, m);
	if (have && m->layout == GW_LAYOUT_MULTIPART && r->old_pol &&
	    gw_mpu_old_manifest(r, res, m, complete_old_known) == 0) {
		gw_req_put(r);
		return;
	}
	complete_old_known(r);
	gw_req_put(r);
}

/* Is v[0..vl) the object checksum m shows (a COMPOSITE one also without
 * its "-<parts>")? */
static bool cksum_value_is(const struct gw_meta *m, const char *v, size_t vl)
{
	char shown[GW_CKSUM_SHOW_MAX];
	size_t n;

	if (!gw_meta_cksum_show(m, shown))
		return false;
	n = strlen(shown);
	if (vl == n && !memcmp(v, shown, n))
		return true;
	n = strcspn(shown, "-");
	return m->cksum_composite && vl == n && !memcmp(v, shown, n);
}

/* Complete: the object's checksum from its parts' into r->meta: the
 * upload's algorithm over the parts' digests (COMPOSITE) or their CRCs
 * combined (FULL_OBJECT). None when the upload has no algorithm or a part
 * lacks its checksum (one uploaded before this gateway computed copied
 * parts' checksums); the parts then keep none in the manifest either.
 * Complete's x-amz-checksum-type and x-amz-checksum-* must agree with it:
 * 0, GWE_MPU_CKSUM_TYPE, S3E_BAD_DIGEST, -ENOMEM. */
static int complete_cksum(struct gw_req *r, struct gw_manifest *man)
{
	const struct gw_meta *up = &r->mpu->up;
	enum s3_cksum_alg alg = up->cksum_alg;
	size_t len = s3_cksum_len(alg), tl, vl;
	const char *t = r->hr ? http_req_header(r->hr, "x-amz-checksum-type", &tl) : NULL;
	int ret;

	for (uint32_t i = 0; alg != S3_CKSUM_NONE && i < man->n; i++)
		if (man->parts[i].cksum_alg != alg)
			alg = S3_CKSUM_NONE;
	r->meta.cksum_alg = S3_CKSUM_NONE;
	r->meta.cksum_composite = up->cksum_composite;
	if (alg == S3_CKSUM_NONE) {
		for (uint32_t i = 0; i < man->n; i++)
			man->parts[i].cksum_alg = S3_CKSUM_NONE;
	} else if (up->cksum_composite) {
		struct s3_cksum c;

		if ((ret = s3_cksum_init(&c, alg)) < 0)
			return ret;
		for (uint32_t i = 0; i < man->n; i++)
			s3_cksum_update(&c, man->parts[i].cksum, len);
		s3_cksum_final(&c, r->meta.cksum);
		s3_cksum_free(&c);
	} else {
		memcpy(r->meta.cksum, man->parts[0].cksum, len);
		for (uint32_t i = 1; i < man->n; i++)
			s3_cksum_combine(alg, r->meta.cksum, man->parts[i].cksum,
					 man->parts[i].size);
	}
	r->meta.cksum_alg = (uint8_t)alg;
	if (t && (up->cksum_alg == S3_CKSUM_NONE ||
		  tl != strlen(gw_meta_cksum_type(up)) ||
		  strncasecmp(t, gw_meta_cksum_type(up), tl)))
		return GWE_MPU_CKSUM_TYPE;
	for (int a = S3_CKSUM_CRC32; r->hr && a < S3_CKSUM_END; a++) {
		const char *h = s3_cksum_header(a), *v;

		if (!h || !(v = http_req_header(r->hr, h, &vl)))
			continue;
		if (a != r->meta.cksum_alg || !cksum_value_is(&r->meta, v, vl))
			return S3E_BAD_DIGEST;
	}
	return 0;
}

static int complete_build(struct gw_req *r)
{
	struct gateway *gw = r->gw;
	struct gw_mpu *u = r->mpu;
	struct gw_manifest man = { 0 };
	struct s3_cksum md5;
	uint64_t size = 0;
	int ret;

	man.upload_id = r->upload_id;
	man.n = (uint32_t)u->req.n_parts;
	man.parts = calloc(man.n, sizeof(*man.parts));
	u->keep = calloc(S3_MAX_PARTS / 8 + 1, 1);
	if (!man.parts || !u->keep) {
		free(man.parts);
		return -ENOMEM;
	}
	ret = s3_cksum_init(&md5, S3_CKSUM_MD5);
	if (ret < 0) {
		free(man.parts);
		return ret;
	}
	for (size_t i = 0; i < u->req.n_parts; i++) {
		const struct s3_part *q = &u->req.parts[i];
		const struct gw_part_entry *p = find_part(u, q->number);
		uint8_t want[16];

		if (!p || s3_etag_parse(q->etag, strlen(q->etag), want) < 0 ||
		    memcmp(want, p->md5, 16)) {
			ret = S3E_INVALID_PART;
			break;
		}
		/* A part's checksum in the body must be the one it came with. */
		if (q->cksum && (q->cksum_alg != p->cksum_alg ||
				 s3_cksum_check_b64(q->cksum_alg, p->cksum, q->cksum,
						    strlen(q->cksum)))) {
			ret = S3E_INVALID_PART;
			break;
		}
		if (i + 1 < u->req.n_parts && p->size < MPU_MIN_PART) {
			ret = GWE_ENTITY_TOO_SMALL;
			break;
		}
		s3_cksum_update(&md5, p->md5, 16);
		man.parts[i] = (struct gw_mpart){ .number = p->number, .size = p->size,
						  .version = p->version,
						  .seg_size = p->seg_size, .over = p->over,
						  .nover = p->nover,
						  .cksum_alg = p->cksum_alg };
		memcpy(man.parts[i].cksum, p->cksum, sizeof(p->cksum));
		u->keep[p->number / 8] |= (uint8_t)(1u << (p->number % 8));
		size += p->size;
	}
	if (ret == 0 && size > gw->cfg.max_object)
		ret = GWE_MPU_TOO_LARGE;
	r->meta.nparts = man.n;
	if (ret == 0)
		ret = complete_cksum(r, &man);
	if (ret == 0) {
		s3_buf_reset(&r->small);
		r->small.max = 0;
		ret = gw_manifest_encode(&man, &r->small);
	}
	s3_cksum_final(&md5, r->meta.md5);
	s3_cksum_free(&md5);
	free(man.parts);	/* the overrides were borrowed */
	if (ret < 0)
		return ret;
	/* The final object: the upload's stored headers, the parts' layout. */
	r->version = strata_wall_ns();
	r->meta.kind = GW_META_OBJECT;
	r->meta.layout = GW_LAYOUT_MULTIPART;
	r->meta.k = (uint8_t)r->wpol->k;
	r->meta.m = (uint8_t)r->wpol->m;
	r->meta.policy = (uint8_t)r->wpol->index;
	r->meta.seg_size = gw->cfg.unit * r->wpol->k;
	r->meta.size = size;
	r->meta.version = r->version;
	r->meta.manifest_len = (uint32_t)r->small.len;
	r->meta.owner = strdup(r->owner);
	if (!r->meta.owner)
		return -ENOMEM;
	r->meta.hdr = u->up.hdr;
	r->meta.nhdr = u->up.nhdr;
	u->up.hdr = NULL;
	u->up.nhdr = 0;
	r->length = (int64_t)size;
	r->body_ended = true;
	/* The head write waits for the replaced head (old_known). */
	{
		uint8_t name[STO_NAME_HASH_LEN];

		gw_name_hash(r->path, r->path_len, name);
		gw_req_get(r);
		ret = gw_hlook_start(&gw->st, gw->rep, r->part_rep, name, 0,
				     on_complete_old_head, r);
		if (ret < 0)
			gw_req_put(r);
	}
	return ret;
}

static int recomplete_start(struct gw_req *r, int err);

static void complete_parts(struct gw_req *r, int err)
{
	if (!err)
		err = complete_build(r);
	/* A part gone from a live upload record: a retry racing the first
	 * Complete's cleanup (record and parts listing go after its answer). */
	if (err == S3E_INVALID_PART && recomplete_start(r, err) == 0)
		return;
	if (err)
		gw_send_error(r, err == -ECONNREFUSED || err == STO_ECLOSED ||
				 err == -EHOSTDOWN ? -EHOSTUNREACH : err);
}

/* A retried Complete of an upload already completed: the object is still
 * that upload's (its manifest names the upload id), so the answer is the
 * first Complete's, as S3 gives; anything else: NoSuchUpload. */
static void on_recomplete_manifest(struct gw_req *r)
{
	if (!r->old_man.upload_id || strcmp(r->old_man.upload_id, r->upload_id))
		gw_send_error(r, r->recomplete_err);
	else
		complete_result(r, &r->gm);
}

static void on_recomplete_head(const struct gw_hlook_result *res, void *arg)
{
	struct gw_req *r = arg;

	if (res->status == 0 && gw_meta_decode(res->meta, res->meta_len, &r->gm) == 0 &&
	    r->gm.kind == GW_META_OBJECT && r->gm.layout == GW_LAYOUT_MULTIPART &&
	    gw_mpu_old_manifest(r, res, &r->gm, on_recomplete_manifest) == 0) {
		gw_req_put(r);
		return;
	}
	gw_send_error(r, res->status < 0 && res->status != -ENOENT ? -EHOSTUNREACH :
		      r->recomplete_err);
	gw_req_put(r);
}

/* Is the object the product of this very upload? Then err was a retry's. */
static int recomplete_start(struct gw_req *r, int err)
{
	uint8_t name[STO_NAME_HASH_LEN];
	int ret;

	r->recomplete_err = err;
	gw_name_hash(r->path, r->path_len, name);
	gw_req_get(r);
	ret = gw_hlook_start(&r->gw->st, r->gw->rep, r->part_rep, name, 0,
			     on_recomplete_head, r);
	if (ret < 0)
		gw_req_put(r);
	return ret;
}

static void on_complete_upload(struct gw_req *r, int err)
{
	if (err == GWE_NO_SUCH_UPLOAD && recomplete_start(r, err) == 0)
		return;
	if (err) {
		gw_send_error(r, err);
		return;
	}
	parts_next(r, NULL, 0);
}

void gw_mpu_complete_body(struct gw_req *r)
{
	int ret = s3_xml_parse_complete_mpu(r->small.p ? r->small.p : "", r->small.len,
					    &r->mpu->req);

	if (ret == 0)
		ret = upload_lookup(r, on_complete_upload);
	if (ret < 0)
		gw_send_error(r, ret);
}

static void on_complete_unlisted(struct gw_req *r, int err);

void gw_mpu_completed(struct gw_req *r)
{
	mpu_unlist(r, on_complete_unlisted);
}

static void on_complete_unlisted(struct gw_req *r, int err)
{
	if (err)
		log_warn("complete %s: uploads listing: %s", r->upload_id, sto_strerror(err));
	complete_result(r, &r->meta);
	mpu_cleanup(r, true);
}

/* The CompleteMultipartUploadResult of the object m. */
static void complete_result(struct gw_req *r, const struct gw_meta *m)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;
	char etag[S3_ETAG_MAX], loc[1400];
	size_t hl = 0;
	const char *host = r->hr ? http_req_header(r->hr, "host", &hl) : NULL;

	gw_meta_etag(m, etag);
	snprintf(loc, sizeof(loc), "http://%s/%s/%s", host ? host : "", r->bucket, r->key);
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "CompleteMultipartUploadResult", true);
	s3_xml_elem(&x, "Location", loc);
	s3_xml_elem(&x, "Bucket", r->bucket);
	s3_xml_elem(&x, "Key", r->key);
	s3_xml_elem(&x, "ETag", etag);
	gw_xml_object_cksum(&x, m);
	if (s3_xml_end(&x) < 0)
		gw_send_error(r, -ENOMEM);
	else
		gw_send_xml(r, 200, &b);
	s3_buf_free(&b);
}

/* ----------------------------------------------------------- list parts */

void gw_xml_part_cksum(struct s3_xml *x, unsigned alg, const uint8_t *cksum)
{
	char b64[S3_CKSUM_B64_MAX], name[32];

	if (alg == S3_CKSUM_NONE ||
	    s3_base64_encode(cksum, s3_cksum_len(alg), b64, sizeof(b64)) < 0)
		return;
	snprintf(name, sizeof(name), "Checksum%s", s3_cksum_name(alg));
	s3_xml_elem(x, name, b64);
}

bool gw_xml_object_cksum(struct s3_xml *x, const struct gw_meta *m)
{
	char v[GW_CKSUM_SHOW_MAX], name[32];

	if (!gw_meta_cksum_show(m, v))
		return false;
	snprintf(name, sizeof(name), "Checksum%s", s3_cksum_name(m->cksum_alg));
	s3_xml_elem(x, name, v);
	s3_xml_elem(x, "ChecksumType", gw_meta_cksum_type(m));
	return true;
}

static void on_list_parts(struct gw_req *r, int err, const struct sto_listing_page *pg)
{
	struct gw_mpu *u = r->mpu;
	struct s3_buf b = { 0 };
	struct s3_xml x;
	uint32_t last = u->list_marker;
	const char *owner = u->up.owner ? u->up.owner : r->owner;
	const char *sc = gw_meta_hdr_get(&u->up, "x-amz-storage-class");

	if (err) {
		gw_send_error(r, -EHOSTUNREACH);
		return;
	}
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "ListPartsResult", true);
	s3_xml_elem(&x, "Bucket", r->bucket);
	s3_xml_elem(&x, "Key", r->key);
	s3_xml_elem(&x, "UploadId", r->upload_id);
	s3_xml_open(&x, "Initiator", false);
	s3_xml_elem(&x, "ID", owner);
	s3_xml_elem(&x, "DisplayName", owner);
	s3_xml_close(&x);
	s3_xml_open(&x, "Owner", false);
	s3_xml_elem(&x, "ID", owner);
	s3_xml_elem(&x, "DisplayName", owner);
	s3_xml_close(&x);
	s3_xml_elem(&x, "StorageClass", sc ? sc : "STANDARD");
	s3_xml_elem_u64(&x, "PartNumberMarker", u->list_marker);
	for (size_t i = 0; i < pg->n_entries; i++) {
		struct gw_part_entry p;
		char etag[S3_ETAG_MAX], t[S3_XML_TIME_LEN + 1];

		if (gw_part_entry_decode(&pg->entries[i], &p) < 0) {
			gw_part_entry_free(&p);
			continue;
		}
		s3_etag_from_md5(p.md5, etag);
		s3_xml_time((int64_t)(p.version / 1000000), t);
		s3_xml_open(&x, "Part", false);
		s3_xml_elem_u64(&x, "PartNumber", p.number);
		s3_xml_elem(&x, "LastModified", t);
		s3_xml_elem(&x, "ETag", etag);
		s3_xml_elem_u64(&x, "Size", p.size);
		gw_xml_part_cksum(&x, p.cksum_alg, p.cksum);
		s3_xml_close(&x);
		last = p.number;
		gw_part_entry_free(&p);
	}
	s3_xml_elem_u64(&x, "NextPartNumberMarker", last);
	s3_xml_elem_u64(&x, "MaxParts", u->list_max);
	s3_xml_elem_bool(&x, "IsTruncated", pg->is_truncated);
	if (u->up.cksum_alg != S3_CKSUM_NONE) {
		s3_xml_elem(&x, "ChecksumAlgorithm", s3_cksum_name(u->up.cksum_alg));
		s3_xml_elem(&x, "ChecksumType", gw_meta_cksum_type(&u->up));
	}
	if (s3_xml_end(&x) < 0)
		gw_send_error(r, -ENOMEM);
	else
		gw_send_xml(r, 200, &b);
	s3_buf_free(&b);
}

static void on_list_parts_upload(struct gw_req *r, int err)
{
	uint8_t after[4];
	int ret;

	if (err) {
		gw_send_error(r, err);
		return;
	}
	be32(after, r->mpu->list_marker);
	ret = lquery(r, &r->mpu->parts_id,
		     (struct sto_bytes){ after, r->mpu->list_marker ? 4 : 0 },
		     (struct sto_bytes){ NULL, 0 }, (struct sto_bytes){ NULL, 0 },
		     r->mpu->list_max, on_list_parts);
	if (ret < 0)
		gw_send_error(r, ret);
}

/* A query parameter as an unsigned number: 0, -ENOENT (absent), -EINVAL. */
static int query_u32(struct gw_req *r, const char *name, uint32_t *out)
{
	size_t qn, vl;
	const char *q = http_req_query(r->hr, &qn), *v;
	uint64_t n = 0;

	if (!gw_query_has(q, qn, name, &v, &vl))
		return -ENOENT;
	if (!vl || vl > 10)
		return -EINVAL;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return 0;
}

/* A query parameter, %-decoded (malloc'd), or NULL when absent. */
static int query_str(struct gw_req *r, const char *name, char **out)
{
	size_t qn, vl, dl;
	const char *q = http_req_query(r->hr, &qn), *v;

	*out = NULL;
	if (!gw_query_has(q, qn, name, &v, &vl))
		return 0;
	*out = malloc(vl + 1);
	if (!*out)
		return -ENOMEM;
	if (http_url_decode(v, vl, *out, &dl, true) < 0) {
		free(*out);
		*out = NULL;
		return GWE_MPU_INVALID_ARG;
	}
	(*out)[dl] = '\0';
	return 0;
}

static int list_parts_begin(struct gw_req *r)
{
	struct gw_mpu *u = r->mpu;
	int ret;

	u->list_max = MPU_LIST_DEFAULT;
	ret = query_u32(r, "max-parts", &u->list_max);
	if (ret == -EINVAL)
		return GWE_MPU_INVALID_ARG;
	if (u->list_max > MPU_LIST_DEFAULT)
		u->list_max = MPU_LIST_DEFAULT;
	ret = query_u32(r, "part-number-marker", &u->list_marker);
	if (ret == -EINVAL || u->list_marker > S3_MAX_PARTS)
		return GWE_MPU_INVALID_ARG;
	if (u->list_max == 0)
		u->list_max = 1;	/* XXX S3 answers an empty page */
	return upload_lookup(r, on_list_parts_upload);
}

/* -------------------------------------------------------- list uploads */

struct lu_params {
	char *prefix, *delim, *key_marker, *uid_marker;
	bool url;
	uint32_t max;
};

static void xml_key(struct s3_xml *x, const char *name, const char *s, size_t n,
		    bool url)
{
	struct s3_buf e = { 0 };

	if (url && s3_uri_encode(&e, s, n, true) == 0)
		s3_xml_elemn(x, name, e.p ? e.p : "", e.len);
	else
		s3_xml_elemn(x, name, s, n);
	s3_buf_free(&e);
}

static void on_list_uploads(struct gw_req *r, int err, const struct sto_listing_page *pg)
{
	struct lu_params *p = r->mpu->lu;
	struct s3_buf b = { 0 };
	struct s3_xml x;
	const char *nk = NULL, *nu = NULL;
	size_t nkl = 0;

	if (err) {
		gw_send_error(r, -EHOSTUNREACH);
		return;
	}
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "ListMultipartUploadsResult", true);
	s3_xml_elem(&x, "Bucket", r->bucket);
	xml_key(&x, "KeyMarker", p->key_marker ? p->key_marker : "",
		p->key_marker ? strlen(p->key_marker) : 0, p->url);
	s3_xml_elem(&x, "UploadIdMarker", p->uid_marker ? p->uid_marker : "");
	if (pg->is_truncated && pg->next_marker.len) {
		const char *m = pg->next_marker.data;
		const char *z = memchr(m, '\0', pg->next_marker.len);

		nk = m;
		nkl = z ? (size_t)(z - m) : pg->next_marker.len;
		nu = z ? z + 1 : NULL;
	}
	if (nk) {
		xml_key(&x, "NextKeyMarker", nk, nkl, p->url);
		if (nu)
			s3_xml_elemn(&x, "NextUploadIdMarker", nu,
				     pg->next_marker.len - nkl - 1);
	}
	if (p->prefix)
		xml_key(&x, "Prefix", p->prefix, strlen(p->prefix), p->url);
	if (p->delim)
		xml_key(&x, "Delimiter", p->delim, strlen(p->delim), p->url);
	s3_xml_elem_u64(&x, "MaxUploads", p->max);
	if (p->url)
		s3_xml_elem(&x, "EncodingType", "url");
	s3_xml_elem_bool(&x, "IsTruncated", pg->is_truncated);
	for (size_t i = 0; i < pg->n_entries; i++) {
		const struct sto_listing_entry *e = &pg->entries[i];
		const char *k = e->key, *z = memchr(k, '\0', e->key_len);
		char t[S3_XML_TIME_LEN + 1];

		if (!z || e->value_len < 8)
			continue;
		s3_xml_time((int64_t)(rd_be(e->value, 8) / 1000000), t);
		s3_xml_open(&x, "Upload", false);
		xml_key(&x, "Key", k, (size_t)(z - k), p->url);
		s3_xml_elemn(&x, "UploadId", z + 1, e->key_len - (size_t)(z - k) - 1);
		s3_xml_open(&x, "Initiator", false);
		s3_xml_elem(&x, "ID", r->owner);
		s3_xml_elem(&x, "DisplayName", r->owner);
		s3_xml_close(&x);
		s3_xml_open(&x, "Owner", false);
		s3_xml_elem(&x, "ID", r->owner);
		s3_xml_elem(&x, "DisplayName", r->owner);
		s3_xml_close(&x);
		if (e->value_len > 8)
			s3_xml_elemn(&x, "StorageClass", (const char *)e->value + 8,
				     e->value_len - 8);
		else
			s3_xml_elem(&x, "StorageClass", "STANDARD");
		s3_xml_elem(&x, "Initiated", t);
		s3_xml_close(&x);
	}
	for (size_t i = 0; i < pg->n_prefixes; i++) {
		s3_xml_open(&x, "CommonPrefixes", false);
		xml_key(&x, "Prefix", pg->prefixes[i].data, pg->prefixes[i].len, p->url);
		s3_xml_close(&x);
	}
	if (s3_xml_end(&x) < 0)
		gw_send_error(r, -ENOMEM);
	else
		gw_send_xml(r, 200, &b);
	s3_buf_free(&b);
}

static void lu_params_free(struct lu_params *p)
{
	if (!p)
		return;
	free(p->prefix);
	free(p->delim);
	free(p->key_marker);
	free(p->uid_marker);
	free(p);
}

static int list_uploads_begin(struct gw_req *r)
{
	struct gw_mpu *u = r->mpu;
	struct lu_params *p = calloc(1, sizeof(*p));
	struct s3_buf after = { 0 };
	char *enc = NULL;
	int ret;

	if (!p)
		return -ENOMEM;
	u->lu = p;			/* freed with the state */
	p->max = MPU_LIST_DEFAULT;
	ret = query_u32(r, "max-uploads", &p->max);
	if (ret == -EINVAL)
		return GWE_MPU_INVALID_ARG;
	if (p->max > MPU_LIST_DEFAULT || p->max == 0)
		p->max = MPU_LIST_DEFAULT;
	ret = query_str(r, "prefix", &p->prefix) ?: query_str(r, "delimiter", &p->delim) ?:
	      query_str(r, "key-marker", &p->key_marker) ?:
	      query_str(r, "upload-id-marker", &p->uid_marker) ?:
	      query_str(r, "encoding-type", &enc);
	p->url = enc && !strcmp(enc, "url");
	free(enc);
	if (ret < 0)
		goto out;
	if (p->delim && strlen(p->delim) > STO_LISTING_MAX_DELIM) {
		ret = GWE_MPU_INVALID_ARG;
		goto out;
	}
	/* key-marker alone: every upload of that key is before the page. */
	if (p->key_marker && *p->key_marker) {
		ret = s3_buf_adds(&after, p->key_marker) ?: s3_buf_addc(&after, '\0');
		if (!ret)
			ret = p->uid_marker && *p->uid_marker ?
			      s3_buf_adds(&after, p->uid_marker) : s3_buf_addc(&after, '\xff');
		if (ret < 0)
			goto out;
	}
	ret = lquery(r, &u->uploads_id, (struct sto_bytes){ after.p, (uint32_t)after.len },
		     (struct sto_bytes){ p->prefix, p->prefix ? (uint32_t)strlen(p->prefix) : 0 },
		     (struct sto_bytes){ p->delim, p->delim ? (uint32_t)strlen(p->delim) : 0 },
		     p->max, on_list_uploads);
out:
	s3_buf_free(&after);
	return ret;
}

/* ------------------------------------------------------------ dispatch */

int gw_mpu_dispatch(struct gw_req *r)
{
	int ret = 0;

	if (r->op != OP_LIST_MPU)
		ret = gw_object_path(r);
	if (ret == 0)
		ret = mpu_state(r);
	if (ret < 0)
		return ret;
	switch (r->op) {
	case OP_CREATE_MPU:
		return create_begin(r);
	case OP_UPLOAD_PART:
		ret = gw_put_begin(r);
		if (ret == 0)
			http_req_resume(r->hr);
		return ret;
	case OP_UPLOAD_PART_COPY:
		return gw_copy_begin(r);
	case OP_COMPLETE_MPU:
		http_req_resume(r->hr);		/* the body: the parts */
		return 0;
	case OP_ABORT_MPU:
		return upload_lookup(r, on_abort_upload);
	case OP_LIST_PARTS:
		return list_parts_begin(r);
	case OP_LIST_MPU:
		return list_uploads_begin(r);
	default:
		return -EINVAL;
	}
}

/* ------------------------------------------------------------ manifest */

int gw_manifest_encode(const struct gw_manifest *m, struct s3_buf *b)
{
	size_t il = strlen(m->upload_id);
	bool cks = false;
	int ret;

	if (il > UINT16_MAX)
		return -E2BIG;
	for (uint32_t i = 0; i < m->n; i++)
		cks |= m->parts[i].cksum_alg != S3_CKSUM_NONE;
	ret = put_be(b, cks ? GW_MANIFEST_FORMAT_CKSUM : GW_MANIFEST_FORMAT, 1) ?:
	      put_be(b, il, 2) ?:
	      s3_buf_add(b, m->upload_id, il) ?: put_be(b, m->n, 4);
	for (uint32_t i = 0; !ret && i < m->n; i++) {
		const struct gw_mpart *p = &m->parts[i];

		if (p->nover > UINT16_MAX)
			return -E2BIG;
		ret = put_be(b, p->number, 4) ?: put_be(b, p->size, 8) ?:
		      put_be(b, p->version, 8) ?: put_be(b, p->seg_size, 4) ?:
		      put_be(b, p->nover, 2);
		for (uint32_t j = 0; !ret && j < p->nover; j++)
			ret = put_be(b, p->over[j].seg, 4) ?: put_be(b, p->over[j].frag, 1) ?:
			      put_be(b, p->over[j].dev, 4);
		if (!ret && cks)
			ret = put_be(b, p->cksum_alg, 1) ?:
			      s3_buf_add(b, p->cksum, s3_cksum_len(p->cksum_alg));
	}
	return ret;
}

int gw_manifest_decode(const void *buf, size_t n, struct gw_manifest *m)
{
	const uint8_t *p = buf, *end = p + n;
	uint64_t off = 0, seg = 0;
	bool cks, any = false;
	size_t il;

	memset(m, 0, sizeof(*m));
#define NEED(k) do { if ((size_t)(end - p) < (k)) return -EINVAL; } while (0)
	NEED(3);
	if (p[0] != GW_MANIFEST_FORMAT && p[0] != GW_MANIFEST_FORMAT_CKSUM)
		return -EPROTO;
	cks = p[0] == GW_MANIFEST_FORMAT_CKSUM;
	il = (size_t)rd_be(p + 1, 2);
	p += 3;
	NEED(il + 4);
	if (memchr(p, '\0', il))
		return -EINVAL;
	m->upload_id = s3_strndup((const char *)p, il);
	if (!m->upload_id)
		return -ENOMEM;
	p += il;
	m->n = (uint32_t)rd_be(p, 4);
	p += 4;
	if (m->n == 0 || m->n > S3_MAX_PARTS)
		return -EINVAL;
	m->parts = calloc(m->n, sizeof(*m->parts));
	if (!m->parts)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->n; i++) {
		struct gw_mpart *q = &m->parts[i];

		NEED(26);
		q->number = (uint32_t)rd_be(p, 4);
		q->size = rd_be(p + 4, 8);
		q->version = rd_be(p + 12, 8);
		q->seg_size = (uint32_t)rd_be(p + 20, 4);
		q->nover = (uint32_t)rd_be(p + 24, 2);
		p += 26;
		if (!q->seg_size || q->size > STO_MAX_FRAGMENT * GW_EC_MAX_K)
			return -EINVAL;
		NEED((size_t)q->nover * 9);
		if (q->nover) {
			q->over = calloc(q->nover, sizeof(*q->over));
			if (!q->over)
				return -ENOMEM;
		}
		for (uint32_t j = 0; j < q->nover; j++, p += 9)
			q->over[j] = (struct gw_override){ (uint32_t)rd_be(p, 4), p[4],
							   (uint32_t)rd_be(p + 5, 4) };
		if (cks) {
			NEED(1);
			if (p[0] != S3_CKSUM_NONE && !part_cksum_valid(p[0]))
				return -EINVAL;
			q->cksum_alg = p[0];
			p++;
			NEED(s3_cksum_len(q->cksum_alg));
			memcpy(q->cksum, p, s3_cksum_len(q->cksum_alg));
			p += s3_cksum_len(q->cksum_alg);
			any |= q->cksum_alg != S3_CKSUM_NONE;
		}
		q->off = off;
		q->seg0 = seg;
		off += q->size;
		seg += (q->size + q->seg_size - 1) / q->seg_size;
	}
#undef NEED
	m->nsegs = seg;
	/* One encoding per manifest: the checksum format only with one. */
	if (cks && !any)
		return -EINVAL;
	return p == end ? 0 : -EINVAL;
}

void gw_manifest_free(struct gw_manifest *m)
{
	for (uint32_t i = 0; m->parts && i < m->n; i++)
		free(m->parts[i].over);
	free(m->parts);
	free(m->upload_id);
	memset(m, 0, sizeof(*m));
}

/* The part holding segment seg / byte off: the last non-empty part that
 * starts at or before it. */
static const struct gw_mpart *part_at(const struct gw_manifest *m, uint64_t v,
				      bool by_seg)
{
	uint32_t lo = 0, hi = m->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		uint64_t s = by_seg ? m->parts[mid].seg0 : m->parts[mid].off;

		if (s <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo > 1 && !m->parts[lo - 1].size)
		lo--;
	return &m->parts[lo ? lo - 1 : 0];
}

void gw_mpu_seg_ref(const struct gw_req *r, uint64_t seg, struct gw_segref *out)
{
	const struct gw_mpart *p = part_at(&r->man, seg, true);
	struct s3_buf pp = { 0 };

	out->lseg = (uint32_t)(seg - p->seg0);
	gw_seg_geometry(p->size, p->seg_size, r->gm.k, out->lseg, &out->len, &out->flen);
	out->obj_off = p->off + (uint64_t)out->lseg * p->seg_size;
	out->version = p->version;
	out->over = p->over;
	out->nover = p->nover;
	if (gw_part_path(r->rpath, r->rpath_len, r->man.upload_id, p->number, &pp) == 0)
		gw_seg_hash(pp.p, pp.len, p->version, out->lseg, out->name);
	else
		memset(out->name, 0, sizeof(out->name));	/* reads then fail */
	s3_buf_free(&pp);
}

uint64_t gw_mpu_seg_at(const struct gw_req *r, uint64_t off)
{
	const struct gw_mpart *p = part_at(&r->man, off, false);

	return p->seg0 + (off - p->off) / p->seg_size;
}

/* ------------------------------------------------- manifest of a GET */

static void manifest_read_next(struct gw_req *r);

static void on_manifest_read(void *arg, int status, uint64_t ts, size_t got)
{
	struct gw_req *r = arg;
	uint64_t sum = 0;
	int ret;

	if (status == GW_READ_SLOW)
		return;		/* XXX no hedging for replicas: wait */
	if (!r->hr || r->responded)
		goto out;
	if (status < 0 || ts != r->head_ts || got != r->gm.manifest_len) {
		if (++r->holder_try < r->nholders) {
			manifest_read_next(r);
			goto out;
		}
		gw_send_error(r, -EHOSTUNREACH);
		goto out;
	}
	ret = gw_manifest_decode(r->inline_buf, got, &r->man);
	for (uint32_t i = 0; ret == 0 && i < r->man.n; i++) {
		sum += r->man.parts[i].size;
		if (r->man.parts[i].seg_size % r->gm.k ||
		    r->man.parts[i].seg_size > GW_EC_MAX_K * (64u << 20))
			ret = -EINVAL;
	}
	if (ret == 0 && (sum != r->gm.size || r->man.n != r->gm.nparts))
		ret = -EINVAL;
	free(r->inline_buf);
	r->inline_buf = NULL;
	if (ret < 0) {
		log_err("GET %s: undecodable manifest (%d)", r->rpath, ret);
		gw_manifest_free(&r->man);
		gw_send_error(r, -EIO);
		goto out;
	}
	r->have_man = true;
	gw_object_answer(r);
out:
	gw_req_put(r);
}

static void manifest_read_next(struct gw_req *r)
{
	if (gw_head_read(r, r->gm.manifest_len, on_manifest_read) < 0)
		gw_send_error(r, -ENOMEM);
}

int gw_mpu_load_manifest(struct gw_req *r)
{
	if (!r->nholders)
		return -EHOSTUNREACH;
	free(r->inline_buf);
	r->inline_buf = malloc((size_t)r->gm.manifest_len + 1);
	if (!r->inline_buf)
		return -ENOMEM;
	r->holder_try = 0;
	manifest_read_next(r);
	return 0;
}

/* ------------------------------------- a replaced multipart object */

struct oldman {
	struct gateway *gw;
	const char *path;		/* the caller's, alive until done */
	size_t path_len;
	uint32_t part_rep;
	struct gw_manifest *out;
	void (*done)(void *arg);
	void *arg;
	const struct ring_dev *holders[RING_MAX_PLACEMENTS + GW_MAX_HANDOFFS];
	unsigned n, i;
	uint64_t version;
	uint32_t len;
	uint8_t *buf;
};

static void oldman_try(struct oldman *o);

static void oldman_finish(struct oldman *o)
{
	void (*done)(void *arg) = o->done;
	void *arg = o->arg;

	free(o->buf);
	free(o);
	done(arg);
}

static void on_oldman_read(void *arg, int status, uint64_t ts, size_t got)
{
	struct oldman *o = arg;

	if (status == GW_READ_SLOW)
		return;
	if (status == 0 && ts == o->version && got == o->len) {
		if (gw_manifest_decode(o->buf, got, o->out) < 0) {
			gw_manifest_free(o->out);
			log_warn("%.*s: replaced manifest undecodable: its parts stay",
				 (int)o->path_len, o->path);
		}
		oldman_finish(o);
		return;
	}
	if (++o->i < o->n) {
		oldman_try(o);
		return;
	}
	log_warn("%.*s: replaced manifest unreadable: its parts stay",
		 (int)o->path_len, o->path);
	oldman_finish(o);
}

static void oldman_try(struct oldman *o)
{
	struct sto_key k = { .part = o->part_rep };

	gw_name_hash(o->path, o->path_len, k.name);
	if (gw_read_start(&o->gw->st, o->holders[o->i], &k, 0, 0, o->buf,
			  (size_t)o->len + 1, on_oldman_read, o, NULL) < 0)
		oldman_finish(o);
}

int gw_manifest_read_old(struct gateway *gw, const char *path, size_t plen,
			 uint32_t part_rep, const struct gw_hlook_result *res,
			 const struct gw_meta *m, struct gw_manifest *out,
			 void (*done)(void *arg), void *arg)
{
	struct oldman *o;

	if (!res->nholders || out->n)
		return -ENOENT;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->buf = malloc((size_t)m->manifest_len + 1);
	if (!o->buf) {
		free(o);
		return -ENOMEM;
	}
	o->gw = gw;
	o->path = path;
	o->path_len = plen;
	o->part_rep = part_rep;
	o->out = out;
	o->done = done;
	o->arg = arg;
	memcpy(o->holders, res->holders, res->nholders * sizeof(res->holders[0]));
	o->n = res->nholders;
	o->version = res->ts;		/* the head's (a tagging rewrite's) */
	o->len = m->manifest_len;
	oldman_try(o);
	return 0;
}

struct oldman_req {
	struct gw_req *r;
	void (*done)(struct gw_req *r);
};

static void oldman_req_done(void *arg)
{
	struct oldman_req *q = arg;
	struct gw_req *r = q->r;

	q->done(r);
	free(q);
	gw_req_put(r);
}

int gw_mpu_old_manifest(struct gw_req *r, const struct gw_hlook_result *res,
			const struct gw_meta *m, void (*done)(struct gw_req *r))
{
	struct oldman_req *q = calloc(1, sizeof(*q));
	int ret;

	if (!q)
		return -ENOMEM;
	q->r = gw_req_get(r);
	q->done = done;
	ret = gw_manifest_read_old(r->gw, r->path, r->path_len, r->part_rep, res, m,
				   &r->old_man, oldman_req_done, q);
	if (ret < 0) {
		free(q);
		gw_req_put(r);
	}
	return ret;
}

void gw_manifest_gc(struct gateway *gw, const struct gw_policy *pol, const char *path,
		    size_t plen, uint32_t part_ec, const struct gw_manifest *m, uint64_t ts)
{
	struct s3_buf pp = { 0 };

	for (uint32_t i = 0; i < m->n; i++) {
		const struct gw_mpart *p = &m->parts[i];

		if (gw_part_path(path, plen, m->upload_id, p->number, &pp) == 0)
			gw_tail_gc(gw, pol, pp.p, pp.len, part_ec, p->version,
				   (p->size + p->seg_size - 1) / p->seg_size, ts);
	}
	s3_buf_free(&pp);
}

void gw_mpu_gc_old(struct gw_req *r, uint64_t ts)
{
	if (r->old_pol)		/* (what the old head named) */
		gw_manifest_gc(r->gw, r->old_pol, r->path, r->path_len,
			       ring_part_of_path(r->old_pol->ring, r->path, r->path_len),
			       &r->old_man, ts);
}
