/* gw_list.c: bucket listings (docs/gateway.md, "Listings"): the shard map in
 * the bucket record, listing updates after object writes (2 of 3 replicas),
 * ListObjects v1/v2 walking the shards in key order, the account's bucket
 * list, emptiness checks, and shard splits.
 *
 * Node operations, all on the rep3 ring's 3 primaries of the listing id's
 * partition (no handoffs: a listing replica is found only where the ring
 * puts it):
 *  - lput: LISTING_PUT on all 3; done once 2 acknowledged durably (or fail
 *    once 2 failed), after up to LPUT_GRACE_MS more for a slow third. The
 *    third goes on in the background; if it fails or is late, that replica
 *    stays behind until the replicator (a later issue) repairs it — a
 *    listing read that lands on it may miss the entry.
 *  - lread: LISTING_QUERY or LISTING_STAT on one replica, the next on an
 *    error or after the read deadline.
 *  - ldrop: LISTING_DELETE_RANGE on all 3 until nothing is left (best effort).
 */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMAP_HDR		"x-strata-shards"
#define SMAP_FORMAT		1
#define SMAP_CACHE		64
#define SMAP_TTL_NS		(2ull * 1000000000)	/* as the bucket cache */
#define LIST_VALUE_FORMAT	1
#define LIST_REPLICAS		3
#define LIST_QUORUM		2
/* LISTING_PUT batches stay well inside STO_MAX_REQ_HDR. */
#define LPUT_MAX_BYTES		(40u << 10)
#define MAX_KEYS_CAP		1000
#define LPUT_GRACE_MS		100

struct gw_shard {
	uint8_t *lower;		/* covers [lower, next shard's lower) */
	uint32_t lower_len;
	uint8_t id[STO_LISTING_ID_LEN];
	/* Split in progress: writes go to this shard and to a (keys < mid) or
	 * b (keys >= mid); reads still come from this shard. */
	bool splitting;
	uint8_t *mid;
	uint32_t mid_len;
	uint8_t a[STO_LISTING_ID_LEN], b[STO_LISTING_ID_LEN];
	uint64_t split_ns;	/* wall clock when the split began */
};

struct gw_smap {
	unsigned refs;
	char *bucket, *owner;
	uint64_t created;	/* the bucket record's version */
	uint64_t expires;	/* monotonic ns */
	struct gw_shard *v;
	size_t n;
};

struct split;

struct gw_listing {
	struct gw_store *st;
	const struct ring *rep;
	struct gw_list_config cfg;
	struct gw_smap *cache[SMAP_CACHE];
	unsigned cache_next;
	uint64_t updates;	/* sampling of shard sizes */
	uint64_t seq;
	bool splitting;		/* one split at a time per gateway */
	struct split *split;	/* that split */
	bool closing;
};

/* ------------------------------------------------------------ utilities */

static void *memdup(const void *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (d && n)
		memcpy(d, p, n);
	return d;
}

static void listing_id(const struct gw_listing *L, const uint8_t id[STO_LISTING_ID_LEN],
		       struct sto_listing_id *out)
{
	memcpy(out->id, id, STO_LISTING_ID_LEN);
	out->part = ring_part_of_path(L->rep, id, STO_LISTING_ID_LEN);
}

static void account_id(const struct gw_listing *L, const char *account,
		       struct sto_listing_id *out)
{
	char path[S3_ACCESS_KEY_MAX + 16];
	uint8_t h[STO_NAME_HASH_LEN];
	int n = snprintf(path, sizeof(path), "/.accounts/%s", account);

	gw_name_hash(path, (size_t)n, h);
	listing_id(L, h, out);
}

/* Listing value: u8 format, u64 size (BE), u8 etag length, etag (quoted),
 * u8 storage class length, storage class. */
static int value_encode(const struct gw_list_obj *o, uint8_t *out, size_t cap)
{
	size_t el = o->etag ? strlen(o->etag) : 0;
	size_t cl = o->storage_class ? strlen(o->storage_class) : 0;
	size_t n = 1 + 8 + 1 + el + 1 + cl;

	if (el > 255 || cl > 255 || n > cap)
		return -E2BIG;
	out[0] = LIST_VALUE_FORMAT;
	for (int i = 0; i < 8; i++)
		out[1 + i] = (uint8_t)(o->size >> (56 - 8 * i));
	out[9] = (uint8_t)el;
	if (el)
		memcpy(out + 10, o->etag, el);
	out[10 + el] = (uint8_t)cl;
	if (cl)
		memcpy(out + 11 + el, o->storage_class, cl);
	return (int)n;
}

struct lvalue {
	uint64_t size;
	char etag[256], sclass[256];
};

static int value_decode(const uint8_t *p, size_t n, struct lvalue *v)
{
	size_t el, cl;

	if (n < 11 || p[0] != LIST_VALUE_FORMAT)
		return -EINVAL;
	v->size = 0;
	for (int i = 0; i < 8; i++)
		v->size = v->size << 8 | p[1 + i];
	el = p[9];
	if (10 + el + 1 > n)
		return -EINVAL;
	memcpy(v->etag, p + 10, el);
	v->etag[el] = '\0';
	cl = p[10 + el];
	if (11 + el + cl > n)
		return -EINVAL;
	memcpy(v->sclass, p + 11 + el, cl);
	v->sclass[cl] = '\0';
	return 0;
}

/* --------------------------------------------------------- shard maps */

static void smap_put(struct gw_smap *m)
{
	if (!m || --m->refs)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].lower);
		free(m->v[i].mid);
	}
	free(m->v);
	free(m->bucket);
	free(m->owner);
	free(m);
}

static struct gw_smap *smap_get(struct gw_smap *m)
{
	m->refs++;
	return m;
}

/* The shard covering key (the last whose lower bound is <= key). */
static size_t smap_find(const struct gw_smap *m, const void *key, size_t len)
{
	size_t lo = 0, hi = m->n;

	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (strata_bytes_cmp(m->v[mid].lower, m->v[mid].lower_len, key, len) <= 0)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Map encoding (binary, then base64 in the bucket record's SMAP_HDR):
 * u8 format, u32 count, then per shard u16 lower length, lower, id[16],
 * u8 splitting, and when splitting u16 mid length, mid, a[16], b[16],
 * u64 split_ns; integers big-endian. */
static int smap_encode(const struct gw_smap *m, struct s3_buf *out)
{
	struct s3_buf b = { 0 };
	uint8_t hdr[5] = { SMAP_FORMAT, (uint8_t)(m->n >> 24), (uint8_t)(m->n >> 16),
			   (uint8_t)(m->n >> 8), (uint8_t)m->n };
	char *b64;
	int ret = s3_buf_add(&b, hdr, sizeof(hdr));

	for (size_t i = 0; !ret && i < m->n; i++) {
		const struct gw_shard *s = &m->v[i];
		uint8_t l[2] = { (uint8_t)(s->lower_len >> 8), (uint8_t)s->lower_len };
		uint8_t f = s->splitting;

		ret = s3_buf_add(&b, l, 2);
		ret = ret ? ret : s3_buf_add(&b, s->lower, s->lower_len);
		ret = ret ? ret : s3_buf_add(&b, s->id, STO_LISTING_ID_LEN);
		ret = ret ? ret : s3_buf_add(&b, &f, 1);
		if (!ret && s->splitting) {
			uint8_t ml[2] = { (uint8_t)(s->mid_len >> 8), (uint8_t)s->mid_len };
			uint8_t t[8];

			for (int j = 0; j < 8; j++)
				t[j] = (uint8_t)(s->split_ns >> (56 - 8 * j));
			ret = s3_buf_add(&b, ml, 2);
			ret = ret ? ret : s3_buf_add(&b, s->mid, s->mid_len);
			ret = ret ? ret : s3_buf_add(&b, s->a, STO_LISTING_ID_LEN);
			ret = ret ? ret : s3_buf_add(&b, s->b, STO_LISTING_ID_LEN);
			ret = ret ? ret : s3_buf_add(&b, t, 8);
		}
	}
	if (ret) {
		s3_buf_free(&b);
		return ret;
	}
	b64 = malloc(b.len / 3 * 4 + 8);
	if (!b64) {
		s3_buf_free(&b);
		return -ENOMEM;
	}
	ret = s3_base64_encode(b.p, b.len, b64, b.len / 3 * 4 + 8);
	s3_buf_free(&b);
	if (ret >= 0)
		ret = s3_buf_add(out, b64, (size_t)ret);
	free(b64);
	return ret;
}

static int smap_decode(const char *b64, struct gw_smap *m)
{
	size_t n = strlen(b64), off = 5, cnt;
	uint8_t *p = malloc(n / 4 * 3 + 3);
	int len, ret = -EINVAL;

	if (!p)
		return -ENOMEM;
	len = s3_base64_decode(b64, n, p, n / 4 * 3 + 3);
	if (len < 5 || p[0] != SMAP_FORMAT)
		goto out;
	cnt = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
	if (cnt == 0 || cnt > (size_t)len)
		goto out;
	m->v = calloc(cnt, sizeof(*m->v));
	if (!m->v) {
		ret = -ENOMEM;
		goto out;
	}
	m->n = cnt;
	for (size_t i = 0; i < cnt; i++) {
		struct gw_shard *s = &m->v[i];
		size_t l;

		if (off + 2 > (size_t)len)
			goto out;
		l = (size_t)p[off] << 8 | p[off + 1];
		off += 2;
		if (off + l + STO_LISTING_ID_LEN + 1 > (size_t)len)
			goto out;
		s->lower = memdup(p + off, l);
		s->lower_len = (uint32_t)l;
		off += l;
		memcpy(s->id, p + off, STO_LISTING_ID_LEN);
		off += STO_LISTING_ID_LEN;
		s->splitting = p[off++] != 0;
		if (!s->lower)
			goto out;
		if (!s->splitting)
			continue;
		if (off + 2 > (size_t)len)
			goto out;
		l = (size_t)p[off] << 8 | p[off + 1];
		off += 2;
		if (off + l + 2 * STO_LISTING_ID_LEN + 8 > (size_t)len)
			goto out;
		s->mid = memdup(p + off, l);
		s->mid_len = (uint32_t)l;
		if (!s->mid)
			goto out;
		off += l;
		memcpy(s->a, p + off, STO_LISTING_ID_LEN);
		off += STO_LISTING_ID_LEN;
		memcpy(s->b, p + off, STO_LISTING_ID_LEN);
		off += STO_LISTING_ID_LEN;
		for (int j = 0; j < 8; j++)
			s->split_ns = s->split_ns << 8 | p[off + j];
		off += 8;
	}
	/* The first shard starts at the beginning; lower bounds ascend. */
	ret = m->v[0].lower_len == 0 ? 0 : -EINVAL;
	for (size_t i = 1; !ret && i < cnt; i++)
		if (strata_bytes_cmp(m->v[i - 1].lower, m->v[i - 1].lower_len, m->v[i].lower,
			      m->v[i].lower_len) >= 0)
			ret = -EINVAL;
out:
	free(p);
	return ret;
}

/* A bucket record without a map: one shard, named after the bucket and its
 * creation, so a bucket deleted and created again starts empty. */
static int smap_default(struct gw_smap *m)
{
	char path[128];
	int n = snprintf(path, sizeof(path), "/.listing/%s/%" PRIu64, m->bucket,
			 m->created);

	m->v = calloc(1, sizeof(*m->v));
	if (!m->v)
		return -ENOMEM;
	m->n = 1;
	m->v[0].lower = memdup("", 0);
	if (!m->v[0].lower)
		return -ENOMEM;
	gw_name_hash(path, (size_t)n, m->v[0].id);
	return 0;
}

static struct gw_smap *cache_find(struct gw_listing *L, const char *bucket,
				  bool any_age)
{
	for (unsigned i = 0; i < SMAP_CACHE; i++) {
		struct gw_smap *m = L->cache[i];

		if (m && !strcmp(m->bucket, bucket) &&
		    (any_age || m->expires > strata_now_ns()))
			return m;
	}
	return NULL;
}

static void cache_set(struct gw_listing *L, struct gw_smap *m)
{
	unsigned slot = L->cache_next;

	for (unsigned i = 0; i < SMAP_CACHE; i++)
		if (L->cache[i] && !strcmp(L->cache[i]->bucket, m->bucket)) {
			slot = i;
			goto found;
		}
	L->cache_next = (L->cache_next + 1) % SMAP_CACHE;
found:
	smap_put(L->cache[slot]);
	L->cache[slot] = smap_get(m);
}

void gw_list_forget(struct gw_listing *L, const char *bucket)
{
	for (unsigned i = 0; i < SMAP_CACHE; i++)
		if (L->cache[i] && !strcmp(L->cache[i]->bucket, bucket)) {
			smap_put(L->cache[i]);
			L->cache[i] = NULL;
		}
}

typedef void (*smap_fn)(void *arg, int err, struct gw_smap *m);

struct smap_load {
	struct gw_listing *L;
	char *bucket;
	smap_fn cb;
	void *arg;
};

static void on_bucket_record(const struct gw_hlook_result *res, void *arg)
{
	struct smap_load *sl = arg;
	struct gw_meta meta;
	struct gw_smap *m = NULL;
	const char *enc;
	int ret;

	if (res->status < 0) {
		ret = res->status == -ENOENT ? -ENOENT : -EHOSTUNREACH;
		goto out;
	}
	ret = gw_meta_decode(res->meta, res->meta_len, &meta);
	if (ret == 0 && (meta.kind != GW_META_BUCKET || !meta.owner))
		ret = -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!ret && !m)
		ret = -ENOMEM;
	if (!ret) {
		m->refs = 1;
		m->bucket = sl->bucket;
		sl->bucket = NULL;
		m->owner = strdup(meta.owner);
		m->created = meta.version;
		m->expires = strata_now_ns() + SMAP_TTL_NS;
		enc = gw_meta_hdr_get(&meta, SMAP_HDR);
		ret = !m->owner ? -ENOMEM : enc ? smap_decode(enc, m) : smap_default(m);
		if (ret == -EINVAL)
			log_err("bucket %s: undecodable shard map", m->bucket);
	}
	gw_meta_free(&meta);
	if (ret) {
		smap_put(m);
		m = NULL;
	} else {
		cache_set(sl->L, m);
	}
out:
	sl->cb(sl->arg, ret, m);
	smap_put(m);
	free(sl->bucket);
	free(sl);
}

/* The bucket's shard map: cb(arg, 0, map) (borrowed during cb; take a
 * reference to keep it), or -ENOENT (no bucket), -EHOSTUNREACH. May call cb
 * before returning (a cached map). */
static int smap_load(struct gw_listing *L, const char *bucket, bool fresh,
		     smap_fn cb, void *arg)
{
	struct gw_smap *m = fresh ? NULL : cache_find(L, bucket, false);
	struct smap_load *sl;
	char path[128];
	uint8_t name[STO_NAME_HASH_LEN];
	size_t len;
	int ret;

	if (m) {
		cb(arg, 0, m);
		return 0;
	}
	sl = calloc(1, sizeof(*sl));
	if (!sl)
		return -ENOMEM;
	sl->L = L;
	sl->bucket = strdup(bucket);
	sl->cb = cb;
	sl->arg = arg;
	if (!sl->bucket) {
		free(sl);
		return -ENOMEM;
	}
	gw_bucket_path(bucket, path, sizeof(path), &len);
	gw_name_hash(path, len, name);
	ret = gw_hlook_start(L->st, L->rep, ring_part_of_path(L->rep, path, len), name, 0,
			     on_bucket_record, sl);
	if (ret < 0) {
		free(sl->bucket);
		free(sl);
	}
	return ret;
}

/* ------------------------------------------------------------ lput */

typedef void (*lop_fn)(void *arg, int err);

struct lput;
struct lput_try {
	struct lput *p;
	struct gw_node *node;
	bool done;
};

struct lput {
	struct gw_listing *L;
	struct sto_listing_id id;
	struct sto_listing_entry *v;
	size_t n;
	unsigned ok, failed, total;
	int err;
	bool finished, delivered, grace;
	unsigned refs;			/* 1 until delivered + requests in flight */
	unsigned handles;		/* open timers */
	uv_timer_t deadline, fin;
	lop_fn cb;
	void *arg;
	struct lput_try t[LIST_REPLICAS];
};

static void lput_closed(uv_handle_t *h)
{
	struct lput *p = h->data;

	if (--p->handles)
		return;
	p->L->st->live--;
	for (size_t i = 0; i < p->n; i++)
		free((void *)p->v[i].key);	/* key and value: one block */
	free(p->v);
	free(p);
}

static void lput_unref(struct lput *p)
{
	if (--p->refs)
		return;
	uv_close((uv_handle_t *)&p->deadline, lput_closed);
	uv_close((uv_handle_t *)&p->fin, lput_closed);
}

static void lput_on_fin(uv_timer_t *t)
{
	struct lput *p = t->data;

	if (p->delivered)
		return;
	p->delivered = true;
	p->cb(p->arg, p->err);
	lput_unref(p);
}

static void lput_on_grace(uv_timer_t *t)
{
	struct lput *p = t->data;

	if (p->finished)
		return;
	p->finished = true;
	p->err = 0;
	lput_on_fin(t);
}

/* Done at 2 acknowledgements, but the third gets LPUT_GRACE_MS more when it
 * is merely slower: a listing read right after (one replica, maybe that
 * one) then sees the write in the common case. A failed or down third
 * replica costs nothing. */
static void lput_check(struct lput *p)
{
	if (p->finished)
		return;
	if (p->ok + p->failed < p->total && p->ok >= LIST_QUORUM) {
		if (!p->grace) {
			p->grace = true;
			uv_timer_start(&p->fin, lput_on_grace, LPUT_GRACE_MS, 0);
		}
		return;
	}
	if (p->ok >= LIST_QUORUM)
		p->err = 0;
	else if (p->failed > p->total - LIST_QUORUM)
		p->err = p->err ? p->err : -EHOSTUNREACH;
	else
		return;
	p->finished = true;
	uv_timer_start(&p->fin, lput_on_fin, 0, 0);
}

static void lput_try_done(struct lput_try *t, int status)
{
	struct lput *p = t->p;

	if (t->done)
		return;
	t->done = true;
	if (status == 0) {
		p->ok++;
	} else {
		p->failed++;
		if (status == -ENAMETOOLONG || status == -EINVAL || status == -EMSGSIZE)
			p->err = status;	/* the request's fault, not the node's */
		if (p->finished)
			log_warn("listing part %u: a replica missed an update (%s); "
				 "left to the replicator", p->id.part, sto_strerror(status));
	}
	if (p->ok + p->failed == p->total)
		uv_timer_stop(&p->deadline);
	lput_check(p);
}

static void lput_on_put(void *arg, int status, uint64_t count)
{
	struct lput_try *t = arg;

	(void)count;
	if (status == 0)
		gw_node_ok(t->node);
	else
		gw_node_failed(t->node, status);
	lput_try_done(t, status);
	lput_unref(t->p);
}

static void lput_on_client(void *arg, sto_client *c, int err)
{
	struct lput_try *t = arg;
	struct lput *p = t->p;

	if (!err && !t->done) {
		err = sto_listing_put(c, &p->id, p->v, p->n, lput_on_put, t);
		if (!err)
			return;
		gw_node_failed(t->node, -ENOTCONN);
	}
	lput_try_done(t, err ? err : -ECANCELED);
	lput_unref(p);
}

static void lput_on_deadline(uv_timer_t *tm)
{
	struct lput *p = tm->data;

	for (unsigned i = 0; i < p->total; i++)
		if (!p->t[i].done) {
			log_warn("listing part %u on a replica: no answer in %u ms",
				 p->id.part, p->L->st->write_deadline_ms);
			gw_node_failed(p->t[i].node, -ETIMEDOUT);
			lput_try_done(&p->t[i], -ETIMEDOUT);
		}
}

/* Copies v[0..n) (keys and values) and writes them to the listing's 3
 * replicas; cb(arg, err) once 2 acknowledged (0) or 2 failed. */
static int lput_start(struct gw_listing *L, const struct sto_listing_id *id,
		      const struct sto_listing_entry *v, size_t n, lop_fn cb, void *arg)
{
	const struct ring_dev *prim[RING_MAX_PLACEMENTS];
	struct lput *p = calloc(1, sizeof(*p));
	unsigned np;

	if (!p)
		return -ENOMEM;
	p->v = calloc(n, sizeof(*p->v));
	if (!p->v) {
		free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t *blk = malloc(v[i].key_len + v[i].value_len + 1);

		if (!blk) {
			for (size_t j = 0; j < i; j++)
				free((void *)p->v[j].key);
			free(p->v);
			free(p);
			return -ENOMEM;
		}
		memcpy(blk, v[i].key, v[i].key_len);
		if (v[i].value_len)
			memcpy(blk + v[i].key_len, v[i].value, v[i].value_len);
		p->v[i] = v[i];
		p->v[i].key = blk;
		p->v[i].value = v[i].value_len ? blk + v[i].key_len : NULL;
	}
	p->n = n;
	p->L = L;
	p->id = *id;
	p->cb = cb;
	p->arg = arg;
	L->st->live++;
	uv_timer_init(L->st->loop, &p->deadline);
	uv_timer_init(L->st->loop, &p->fin);
	p->deadline.data = p->fin.data = p;
	p->handles = 2;
	np = ring_primaries(L->rep, id->part, prim, LIST_REPLICAS);
	p->total = np < LIST_REPLICAS ? np : LIST_REPLICAS;
	p->refs = 1 + p->total;
	if (L->st->write_deadline_ms)
		uv_timer_start(&p->deadline, lput_on_deadline, L->st->write_deadline_ms, 0);
	for (unsigned i = 0; i < p->total; i++) {
		p->t[i].p = p;
		p->t[i].node = gw_pool_node(L->st->pool, prim[i]->node);
	}
	for (unsigned i = 0; i < p->total; i++) {
		if (!p->t[i].node) {
			lput_try_done(&p->t[i], -ENOMEM);
			lput_unref(p);
			continue;
		}
		gw_node_acquire(p->t[i].node, lput_on_client, &p->t[i]);
	}
	lput_check(p);
	return 0;
}

/* ------------------------------------------------------------ lread */

typedef void (*lpage_fn)(void *arg, int err, const struct sto_listing_page *pg);
typedef void (*lstat_fn)(void *arg, int err, const struct sto_listing_stat *st);

struct lread {
	struct gw_listing *L;
	struct sto_listing_id id;
	bool is_stat;
	struct sto_listing_query q;	/* strings owned (one block) */
	uint8_t *qbuf;
	const struct ring *ring;	/* referenced: rep[] borrows from it */
	const struct ring_dev *rep[LIST_REPLICAS];
	unsigned nrep, cur, gen;
	struct gw_node *node;
	bool delivered;
	int err;
	unsigned refs;
	uv_timer_t timer;
	lpage_fn page_cb;
	lstat_fn stat_cb;
	void *arg;
};

struct lread_try {
	struct lread *r;
	unsigned gen;
	struct gw_node *node;
};

static void lread_closed(uv_handle_t *h)
{
	struct lread *r = h->data;

	r->L->st->live--;
	ring_put(r->ring);
	free(r->qbuf);
	free(r);
}

static void lread_unref(struct lread *r)
{
	if (--r->refs == 0)
		uv_close((uv_handle_t *)&r->timer, lread_closed);
}

static void lread_next(struct lread *r, int err);

static void lread_on_fail_timer(uv_timer_t *t)
{
	struct lread *r = t->data;

	if (r->delivered)
		return;
	r->delivered = true;
	if (r->is_stat)
		r->stat_cb(r->arg, r->err, NULL);
	else
		r->page_cb(r->arg, r->err, NULL);
	lread_unref(r);
}

static void lread_on_deadline(uv_timer_t *t)
{
	struct lread *r = t->data;

	if (r->delivered)
		return;
	log_debug("listing part %u: replica %u slow, trying the next", r->id.part, r->cur);
	lread_next(r, -ETIMEDOUT);
}

/* Takes t's answer. True when it is the one to deliver (r is then marked
 * delivered, its timer stopped): the caller calls the user's callback and
 * drops the delivery's reference. False when it is stale, or failed over. */
static bool lread_answer(struct lread_try *t, int status)
{
	struct lread *r = t->r;

	if (t->gen != r->gen || r->delivered)
		return false;
	if (status == 0 || status == -ENOENT) {
		gw_node_ok(t->node);
		r->delivered = true;
		uv_timer_stop(&r->timer);
		return true;
	}
	if (status != -ETIMEDOUT)
		gw_node_failed(t->node, status);
	lread_next(r, status);
	return false;
}

static void lread_try_free(struct lread_try *t)
{
	struct lread *r = t->r;

	free(t);
	lread_unref(r);
}

static void lread_on_page(void *arg, int status, const struct sto_listing_page *pg)
{
	struct lread_try *t = arg;
	struct lread *r = t->r;

	if (lread_answer(t, status)) {
		r->page_cb(r->arg, 0, status ? NULL : pg);
		lread_unref(r);
	}
	lread_try_free(t);
}

static void lread_on_stat(void *arg, int status, const struct sto_listing_stat *st)
{
	struct lread_try *t = arg;
	struct lread *r = t->r;

	if (lread_answer(t, status)) {
		r->stat_cb(r->arg, 0, status ? NULL : st);
		lread_unref(r);
	}
	lread_try_free(t);
}

static void lread_on_client(void *arg, sto_client *c, int err)
{
	struct lread_try *t = arg;
	struct lread *r = t->r;

	if (!err && t->gen == r->gen && !r->delivered) {
		err = r->is_stat ? sto_listing_stat(c, &r->id, lread_on_stat, t) :
			sto_listing_query(c, &r->id, &r->q, lread_on_page, t);
		if (!err)
			return;
	}
	if (t->gen == r->gen && !r->delivered)
		lread_next(r, err ? err : -ECANCELED);
	lread_try_free(t);
}

static void lread_try(struct lread *r)
{
	struct lread_try *t;
	struct gw_node *n;

	while (r->cur < r->nrep) {
		n = gw_pool_node(r->L->st->pool, r->rep[r->cur]->node);
		if (n && !gw_node_is_down(n))
			break;
		r->cur++;
	}
	if (r->cur >= r->nrep) {
		/* Every replica down: ask the first anyway (it may be back). */
		if (r->gen > 0 || !r->nrep) {
			r->err = r->err ? r->err : -EHOSTUNREACH;
			uv_timer_start(&r->timer, lread_on_fail_timer, 0, 0);
			return;
		}
		r->cur = 0;
		n = gw_pool_node(r->L->st->pool, r->rep[0]->node);
		if (!n) {
			r->err = -ENOMEM;
			uv_timer_start(&r->timer, lread_on_fail_timer, 0, 0);
			return;
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		r->err = -ENOMEM;
		uv_timer_start(&r->timer, lread_on_fail_timer, 0, 0);
		return;
	}
	t->r = r;
	t->gen = r->gen;
	t->node = n;
	r->refs++;
	uv_timer_start(&r->timer, lread_on_deadline, r->L->st->read_deadline_ms, 0);
	gw_node_acquire(n, lread_on_client, t);
}

static void lread_next(struct lread *r, int err)
{
	r->err = err;
	r->gen++;
	r->cur++;
	if (r->cur >= r->nrep) {
		r->err = err == -ETIMEDOUT ? -EHOSTUNREACH : err;
		uv_timer_start(&r->timer, lread_on_fail_timer, 0, 0);
		return;
	}
	lread_try(r);
}

/* A rebalance under way: replicas that did not move have the whole listing,
 * a new holder only once its repair daemon pulled it (or the previous
 * holder pushed it: docs/durability.md), so they are read first. */
static void lread_prefer_unmoved(struct gw_listing *L, uint32_t part,
				 const struct ring_dev **rep, unsigned n)
{
	const struct ring *prev = gw_store_prev(L->st, L->rep);
	const struct ring_dev *old[LIST_REPLICAS], *out[LIST_REPLICAS];
	unsigned no, k = 0;

	if (!prev || ring_placements(prev) != LIST_REPLICAS)
		return;
	no = ring_primaries(prev, part, old, LIST_REPLICAS);
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < n; i++) {
			bool kept = false;

			for (unsigned j = 0; j < no && j < LIST_REPLICAS; j++)
				kept |= old[j]->id == rep[i]->id;
			if (kept == (pass == 0))
				out[k++] = rep[i];
		}
	memcpy(rep, out, n * sizeof(*rep));
}

static struct lread *lread_new(struct gw_listing *L, const struct sto_listing_id *id)
{
	struct lread *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->L = L;
	r->id = *id;
	r->refs = 1;
	L->st->live++;
	uv_timer_init(L->st->loop, &r->timer);
	r->timer.data = r;
	r->ring = ring_get(L->rep);
	r->nrep = ring_primaries(L->rep, id->part, r->rep, LIST_REPLICAS);
	if (r->nrep > LIST_REPLICAS)
		r->nrep = LIST_REPLICAS;
	lread_prefer_unmoved(L, id->part, r->rep, r->nrep);
	return r;
}

/* One page from one replica (the next on error or after the read
 * deadline). cb(arg, 0, page) with page borrowed during cb (NULL: the
 * listing does not exist on that node), or cb(arg, err, NULL). cb never runs
 * inside this call. */
static int lquery_start(struct gw_listing *L, const struct sto_listing_id *id,
			const struct sto_listing_query *q, lpage_fn cb, void *arg)
{
	struct lread *r = lread_new(L, id);
	size_t n = q->start_after.len + q->prefix.len + q->delimiter.len;
	uint8_t *p;

	if (!r)
		return -ENOMEM;
	r->qbuf = p = malloc(n ? n : 1);
	if (!p) {
		lread_unref(r);
		return -ENOMEM;
	}
	r->q = *q;
	if (q->start_after.len)
		memcpy(p, q->start_after.data, q->start_after.len);
	r->q.start_after.data = p;
	p += q->start_after.len;
	if (q->prefix.len)
		memcpy(p, q->prefix.data, q->prefix.len);
	r->q.prefix.data = p;
	p += q->prefix.len;
	if (q->delimiter.len)
		memcpy(p, q->delimiter.data, q->delimiter.len);
	r->q.delimiter.data = p;
	r->page_cb = cb;
	r->arg = arg;
	lread_try(r);
	return 0;
}

static int lstat_start(struct gw_listing *L, const struct sto_listing_id *id,
		       lstat_fn cb, void *arg)
{
	struct lread *r = lread_new(L, id);

	if (!r)
		return -ENOMEM;
	r->is_stat = true;
	r->stat_cb = cb;
	r->arg = arg;
	lread_try(r);
	return 0;
}

/* ------------------------------------------------------------ ldrop */

/* Drops a whole listing on its 3 replicas, best effort, in the background:
 * a replica that fails keeps its entries as garbage. */
struct ldrop {
	struct gw_listing *L;
	struct sto_listing_id id;
	struct gw_node *node;
};

static void ldrop_step(struct ldrop *d);

static void ldrop_on_deleted(void *arg, int status, uint64_t deleted, bool more,
			     struct sto_bytes next)
{
	struct ldrop *d = arg;

	(void)deleted;
	(void)next;
	if (status == 0 && more && !d->L->closing) {
		ldrop_step(d);
		return;
	}
	if (status < 0 && status != -ENOENT)
		log_warn("listing part %u: drop: %s", d->id.part, sto_strerror(status));
	d->L->st->live--;
	free(d);
}

static void ldrop_on_client(void *arg, sto_client *c, int err)
{
	struct ldrop *d = arg;
	struct sto_bytes none = { "", 0 };

	if (!err)
		err = sto_listing_delete_range(c, &d->id, none, none, 0, ldrop_on_deleted, d);
	if (!err)
		return;
	log_warn("listing part %u: drop: %s", d->id.part, sto_strerror(err));
	d->L->st->live--;
	free(d);
}

static void ldrop_step(struct ldrop *d)
{
	gw_node_acquire(d->node, ldrop_on_client, d);
}

static void ldrop_start(struct gw_listing *L, const uint8_t id[STO_LISTING_ID_LEN])
{
	const struct ring_dev *prim[RING_MAX_PLACEMENTS];
	struct sto_listing_id lid;
	unsigned np;

	listing_id(L, id, &lid);
	np = ring_primaries(L->rep, lid.part, prim, LIST_REPLICAS);
	for (unsigned i = 0; i < np && i < LIST_REPLICAS; i++) {
		struct ldrop *d = calloc(1, sizeof(*d));

		if (!d)
			return;
		d->L = L;
		d->id = lid;
		d->node = gw_pool_node(L->st->pool, prim[i]->node);
		if (!d->node) {
			free(d);
			continue;
		}
		L->st->live++;
		ldrop_step(d);
	}
}

/* ---------------------------------------------------------- life cycle */

int gw_listing_new(struct gw_store *st, const struct ring *rep,
		   const struct gw_list_config *cfg, struct gw_listing **out)
{
	struct gw_listing *L = calloc(1, sizeof(*L));

	if (!L)
		return -ENOMEM;
	L->st = st;
	L->rep = rep;
	L->cfg = *cfg;
	if (!L->cfg.shard_max)
		L->cfg.shard_max = GW_LIST_DEFAULT_SHARD_MAX;
	*out = L;
	return 0;
}

void gw_listing_set_ring(struct gw_listing *L, const struct ring *rep)
{
	L->rep = rep;
}

static void split_stop(struct split *sp);

void gw_listing_close(struct gw_listing *L)
{
	L->closing = true;
	if (L->split)
		split_stop(L->split);
}

void gw_listing_free(struct gw_listing *L)
{
	if (!L)
		return;
	for (unsigned i = 0; i < SMAP_CACHE; i++)
		smap_put(L->cache[i]);
	free(L);
}

/* ------------------------------------------------------------- splits */

static void split_maybe(struct gw_listing *L, const char *bucket,
			const uint8_t id[STO_LISTING_ID_LEN]);

/* ------------------------------------------------------------- updates */

struct upd {
	struct gw_listing *L;
	char *bucket;
	uint8_t *key;
	uint32_t key_len;
	uint64_t ts;
	bool tombstone;
	uint8_t value[STO_LISTING_MAX_VALUE];
	int value_len;
	unsigned pending;
	int err;
	uint8_t shard[STO_LISTING_ID_LEN];	/* the one reads use */
	bool sample;
	gw_list_done_fn cb;
	void *arg;
};

static void upd_free(struct upd *u)
{
	free(u->bucket);
	free(u->key);
	free(u);
}

static void upd_on_put(void *arg, int err)
{
	struct upd *u = arg;

	if (err && !u->err)
		u->err = err;
	if (--u->pending)
		return;
	if (!u->err && u->sample && !u->L->closing)
		split_maybe(u->L, u->bucket, u->shard);
	u->cb(u->arg, u->err);
	upd_free(u);
}

static void upd_on_map(void *arg, int err, struct gw_smap *m)
{
	struct upd *u = arg;
	struct sto_listing_entry e = {
		.key = u->key, .key_len = u->key_len, .timestamp = u->ts,
		.tombstone = u->tombstone,
		.value = u->tombstone ? NULL : u->value,
		.value_len = u->tombstone ? 0 : (uint32_t)u->value_len,
	};
	const uint8_t *targets[2];
	unsigned nt = 0;
	const struct gw_shard *s;

	if (err) {
		u->cb(u->arg, err);
		upd_free(u);
		return;
	}
	s = &m->v[smap_find(m, u->key, u->key_len)];
	memcpy(u->shard, s->id, sizeof(u->shard));
	targets[nt++] = s->id;
	if (s->splitting)	/* writes during a split go to both sides */
		targets[nt++] = strata_bytes_cmp(u->key, u->key_len, s->mid, s->mid_len) < 0 ?
				s->a : s->b;
	/* Shard sizes are sampled, about 1024 times per shard_max updates. */
	u->sample = ++u->L->updates % (u->L->cfg.shard_max / 1024 + 1) == 0;
	u->pending = nt + 1;
	for (unsigned i = 0; i < nt; i++) {
		struct sto_listing_id id;
		int ret;

		listing_id(u->L, targets[i], &id);
		ret = lput_start(u->L, &id, &e, 1, upd_on_put, u);
		if (ret < 0)
			upd_on_put(u, ret);
	}
	upd_on_put(u, 0);
}

int gw_list_update(struct gw_listing *L, const char *bucket,
		   const struct gw_list_obj *o, gw_list_done_fn cb, void *arg)
{
	struct upd *u = calloc(1, sizeof(*u));
	size_t kl = strlen(o->key);
	int ret;

	if (!u)
		return -ENOMEM;
	if (kl == 0 || kl > STO_LISTING_MAX_KEY) {
		free(u);
		return -ENAMETOOLONG;
	}
	u->L = L;
	u->bucket = strdup(bucket);
	u->key = memdup(o->key, kl);
	u->key_len = (uint32_t)kl;
	u->ts = o->version;
	u->tombstone = o->tombstone;
	u->cb = cb;
	u->arg = arg;
	if (!u->bucket || !u->key) {
		upd_free(u);
		return -ENOMEM;
	}
	if (!o->tombstone) {
		u->value_len = value_encode(o, u->value, sizeof(u->value));
		if (u->value_len < 0) {
			ret = u->value_len;
			upd_free(u);
			return ret;
		}
	}
	ret = smap_load(L, bucket, false, upd_on_map, u);
	if (ret < 0)
		upd_free(u);
	return ret;
}

/* ------------------------------------------------------ account listing */

struct acct {
	gw_list_done_fn cb;
	void *arg;
};

static void acct_on_put(void *arg, int err)
{
	struct acct *a = arg;

	a->cb(a->arg, err);
	free(a);
}

int gw_list_account_update(struct gw_listing *L, const char *account,
			   const char *bucket, uint64_t ts, bool deleted,
			   gw_list_done_fn cb, void *arg)
{
	struct sto_listing_id id;
	uint8_t val[8];
	uint64_t ms = ts / 1000000;
	struct sto_listing_entry e = {
		.key = bucket, .key_len = (uint32_t)strlen(bucket), .timestamp = ts,
		.tombstone = deleted, .value = deleted ? NULL : val,
		.value_len = deleted ? 0 : 8,
	};
	struct acct *a = calloc(1, sizeof(*a));
	int ret;

	if (!a)
		return -ENOMEM;
	for (int i = 0; i < 8; i++)
		val[i] = (uint8_t)(ms >> (56 - 8 * i));
	a->cb = cb;
	a->arg = arg;
	account_id(L, account, &id);
	gw_list_forget(L, bucket);
	ret = lput_start(L, &id, &e, 1, acct_on_put, a);
	if (ret < 0)
		free(a);
	return ret;
}

#define BUCKET_NAME_MAX	63	/* S3's bucket name rules */

static int qparam(const char *q, size_t qn, const char *name, char **out);

struct blist {
	struct gw_listing *L;
	struct sto_listing_id id;
	char *account;
	struct s3_list_bucket *v;
	size_t n, cap;
	uint8_t *marker;
	uint32_t marker_len;
	char *prefix;			/* prefix= (NULL: none) */
	uint32_t max;			/* max-buckets (10,000 when absent) */
	bool more;			/* a bucket beyond max exists */
	gw_list_xml_fn cb;
	void *arg;
};

static void blist_free(struct blist *b)
{
	for (size_t i = 0; i < b->n; i++)
		free((void *)b->v[i].name);
	free(b->v);
	free(b->marker);
	free(b->account);
	free(b->prefix);
	free(b);
}

static void blist_on_page(void *arg, int err, const struct sto_listing_page *pg);

static int blist_next(struct blist *b)
{
	struct sto_listing_query q = {
		.start_after = { b->marker, b->marker_len },
		.prefix = { b->prefix, b->prefix ? (uint32_t)strlen(b->prefix) : 0 },
		.limit = STO_LISTING_DEFAULT_LIMIT,
	};

	return lquery_start(b->L, &b->id, &q, blist_on_page, b);
}

static void blist_on_page(void *arg, int err, const struct sto_listing_page *pg)
{
	struct blist *b = arg;
	struct s3_buf xml = { 0 };

	for (size_t i = 0; !err && pg && i < pg->n_entries; i++) {
		const struct sto_listing_entry *e = &pg->entries[i];
		int64_t ms = 0;

		if (b->n == b->max) {
			b->more = true;
			break;
		}
		if (b->n == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 64;
			struct s3_list_bucket *v = realloc(b->v, cap * sizeof(*v));

			if (!v) {
				err = -ENOMEM;
				break;
			}
			b->v = v;
			b->cap = cap;
		}
		for (uint32_t j = 0; j < 8 && j < e->value_len; j++)
			ms = ms << 8 | ((const uint8_t *)e->value)[j];
		b->v[b->n].name = s3_strndup(e->key, e->key_len);
		b->v[b->n].created_ms = ms;
		if (!b->v[b->n].name) {
			err = -ENOMEM;
			break;
		}
		b->n++;
	}
	if (!err && !b->more && pg && pg->is_truncated && pg->next_marker.len) {
		uint8_t *m = memdup(pg->next_marker.data, pg->next_marker.len);

		if (!m) {
			err = -ENOMEM;
		} else {
			free(b->marker);
			b->marker = m;
			b->marker_len = pg->next_marker.len;
			err = blist_next(b);
			if (!err)
				return;
		}
	}
	if (!err) {
		/* The token: hex of the last name shown (names are plain). */
		char token[2 * BUCKET_NAME_MAX + 1] = "";

		if (b->more && b->n)
			s3_hex((const uint8_t *)b->v[b->n - 1].name,
			       strlen(b->v[b->n - 1].name), token);
		err = s3_xml_list_buckets(&xml, b->account, b->account, b->v, b->n,
					  b->prefix, b->more && b->n ? token : NULL);
	}
	b->cb(b->arg, err, err ? NULL : &xml);
	s3_buf_free(&xml);
	blist_free(b);
}

int gw_list_buckets(struct gw_listing *L, const char *account, const char *query,
		    size_t qlen, gw_list_xml_fn cb, void *arg)
{
	struct blist *b = calloc(1, sizeof(*b));
	char *mb = NULL, *tok = NULL;
	int ret;

	if (!b)
		return -ENOMEM;
	b->L = L;
	b->account = strdup(account);
	b->cb = cb;
	b->arg = arg;
	b->max = 10000;
	if (!b->account) {
		blist_free(b);
		return -ENOMEM;
	}
	/* max-buckets 1..10000, continuation-token, prefix: else -EINVAL */
	if ((ret = qparam(query, qlen, "max-buckets", &mb)) < 0 ||
	    (ret = qparam(query, qlen, "continuation-token", &tok)) < 0 ||
	    (ret = qparam(query, qlen, "prefix", &b->prefix)) < 0)
		goto out;
	ret = -EINVAL;
	if (mb) {
		char *end;
		long long v = strtoll(mb, &end, 10);

		if (!*mb || *end || v < 1 || v > 10000)
			goto out;
		b->max = (uint32_t)v;
	}
	if (b->prefix && strlen(b->prefix) > BUCKET_NAME_MAX)
		goto out;
	if (tok) {
		size_t tl = strlen(tok);

		if (tl == 0 || tl % 2 || tl / 2 > BUCKET_NAME_MAX)
			goto out;
		b->marker = malloc(tl / 2);
		if (!b->marker) {
			ret = -ENOMEM;
			goto out;
		}
		if (s3_unhex(tok, tl, b->marker, tl / 2) < 0)
			goto out;
		b->marker_len = (uint32_t)(tl / 2);
	}
	ret = 0;
out:
	free(mb);
	free(tok);
	if (ret < 0) {
		blist_free(b);
		return ret;
	}
	account_id(L, account, &b->id);
	ret = blist_next(b);
	if (ret < 0)
		blist_free(b);
	return ret;
}

/* The first page of an account's list, raw (names and timestamps). */
struct anames {
	gw_list_names_fn cb;
	void *arg;
};

static void anames_on_page(void *arg, int err, const struct sto_listing_page *pg)
{
	struct anames *a = arg;
	struct gw_list_name *v = NULL;
	size_t n = 0;

	if (!err && pg && pg->n_entries && !(v = calloc(pg->n_entries, sizeof(*v))))
		err = -ENOMEM;
	for (size_t i = 0; !err && pg && i < pg->n_entries; i++) {
		const struct sto_listing_entry *e = &pg->entries[i];

		if (e->key_len > BUCKET_NAME_MAX)
			continue;
		memcpy(v[n].name, e->key, e->key_len);
		v[n].name[e->key_len] = '\0';
		v[n++].ts = e->timestamp;
	}
	a->cb(a->arg, err, v, n);
	free(v);
	free(a);
}

int gw_list_account_names(struct gw_listing *L, const char *account,
			  gw_list_names_fn cb, void *arg)
{
	struct sto_listing_query q = { .limit = STO_LISTING_DEFAULT_LIMIT };
	struct anames *a = calloc(1, sizeof(*a));
	struct sto_listing_id id;
	int ret;

	if (!a)
		return -ENOMEM;
	a->cb = cb;
	a->arg = arg;
	account_id(L, account, &id);
	ret = lquery_start(L, &id, &q, anames_on_page, a);
	if (ret < 0)
		free(a);
	return ret;
}

/* -------------------------------------------------- emptiness, dropping */

struct empty {
	struct gw_listing *L;
	struct gw_smap *m;
	size_t i;
	gw_list_done_fn cb;
	void *arg;
};

static void empty_next(struct empty *e);

static void empty_on_page(void *arg, int err, const struct sto_listing_page *pg)
{
	struct empty *e = arg;

	if (!err && pg && (pg->n_entries || pg->n_prefixes))
		err = -ENOTEMPTY;
	if (!err && pg && pg->is_truncated)
		err = -ENOTEMPTY;	/* only tombstones scanned so far: be safe */
	if (err) {
		e->cb(e->arg, err);
		smap_put(e->m);
		free(e);
		return;
	}
	e->i++;
	empty_next(e);
}

static void empty_next(struct empty *e)
{
	struct sto_listing_query q = { .limit = 1 };
	struct sto_listing_id id;
	int ret;

	if (e->i == e->m->n) {
		e->cb(e->arg, 0);
		smap_put(e->m);
		free(e);
		return;
	}
	listing_id(e->L, e->m->v[e->i].id, &id);
	ret = lquery_start(e->L, &id, &q, empty_on_page, e);
	if (ret < 0) {
		e->cb(e->arg, ret);
		smap_put(e->m);
		free(e);
	}
}

static void empty_on_map(void *arg, int err, struct gw_smap *m)
{
	struct empty *e = arg;

	if (err) {
		e->cb(e->arg, err == -ENOENT ? 0 : err);
		free(e);
		return;
	}
	e->m = smap_get(m);
	empty_next(e);
}

int gw_list_bucket_empty(struct gw_listing *L, const char *bucket,
			 gw_list_done_fn cb, void *arg)
{
	struct empty *e = calloc(1, sizeof(*e));
	int ret;

	if (!e)
		return -ENOMEM;
	e->L = L;
	e->cb = cb;
	e->arg = arg;
	ret = smap_load(L, bucket, true, empty_on_map, e);
	if (ret < 0)
		free(e);
	return ret;
}

void gw_list_bucket_drop(struct gw_listing *L, const char *bucket)
{
	struct gw_smap *m = cache_find(L, bucket, true);

	if (!m) {
		log_warn("bucket %s deleted: shard map unknown, its listing stays as "
			 "garbage", bucket);
		return;
	}
	for (size_t i = 0; i < m->n; i++) {
		ldrop_start(L, m->v[i].id);
		if (m->v[i].splitting) {
			ldrop_start(L, m->v[i].a);
			ldrop_start(L, m->v[i].b);
		}
	}
	gw_list_forget(L, bucket);
}

/* ---------------------------------------------------------- ListObjects */

struct litem {
	char *key;		/* NUL-terminated */
	size_t len;
	bool is_prefix;
	uint64_t ts;
	struct lvalue v;
};

struct lwalk {
	struct gw_listing *L;
	struct gw_smap *m;
	char *bucket, *owner;
	/* request */
	int version;
	char *prefix, *delimiter, *marker, *start_after, *token;
	size_t prefix_len, delim_len;
	unsigned max_keys;
	bool url, fetch_owner;
	struct gw_tier_pol *pol;	/* the classes shown (a reference) */
	/* walk */
	size_t shard;
	uint8_t *cursor;	/* start_after of the next query */
	size_t cursor_len;
	struct litem *items;
	size_t n;
	bool probing, truncated;
	gw_list_xml_fn cb;
	gw_list_page_fn page_cb;	/* gw_list_page: the items, no XML */
	void *arg;
};

static void lwalk_free(struct lwalk *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->items[i].key);
	free(w->items);
	free(w->cursor);
	free(w->prefix);
	free(w->delimiter);
	free(w->marker);
	free(w->start_after);
	free(w->token);
	free(w->bucket);
	free(w->owner);
	gw_tier_pol_unref(w->pol);
	smap_put(w->m);
	free(w);
}

static int lwalk_set_cursor(struct lwalk *w, const void *p, size_t n)
{
	uint8_t *c = memdup(p, n);

	if (!c)
		return -ENOMEM;
	free(w->cursor);
	w->cursor = c;
	w->cursor_len = n;
	return 0;
}

static void lwalk_finish(struct lwalk *w, int err)
{
	struct s3_buf xml = { 0 };
	struct s3_list_object *objs = NULL;
	const char **pfx = NULL;
	size_t no = 0, np = 0;
	char *next = NULL;
	uint64_t now = strata_wall_ns();
	struct s3_list_result res = {
		.version = w->version, .bucket = w->bucket,
		.prefix = w->prefix ? w->prefix : "", .delimiter = w->delimiter,
		.max_keys = w->max_keys, .truncated = w->truncated, .url_encode = w->url,
	};

	if (w->page_cb) {
		struct gw_list_item *v = err ? NULL : calloc(w->n + 1, sizeof(*v));

		if (!err && !v)
			err = -ENOMEM;
		for (size_t i = 0; !err && i < w->n; i++)
			v[i] = (struct gw_list_item){
				.key = w->items[i].key, .version = w->items[i].ts,
				.size = w->items[i].v.size,
				.storage_class = w->items[i].v.sclass,
			};
		w->page_cb(w->arg, err, v, err ? 0 : w->n, w->truncated);
		free(v);
		lwalk_free(w);
		return;
	}
	if (err)
		goto out;
	objs = calloc(w->n + 1, sizeof(*objs));
	pfx = calloc(w->n + 1, sizeof(*pfx));
	if (!objs || !pfx) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < w->n; i++) {
		struct litem *it = &w->items[i];

		if (it->is_prefix) {
			pfx[np++] = it->key;
			continue;
		}
		objs[no++] = (struct s3_list_object){
			.key = it->key, .mtime_ms = (int64_t)(it->ts / 1000000),
			.etag = it->v.etag, .size = it->v.size,
			.storage_class = gw_tier_class_at(w->pol, it->v.sclass, it->key,
							  it->ts, now),
		};
	}
	res.objs = objs;
	res.n_objs = no;
	res.prefixes = pfx;
	res.n_prefixes = np;
	if (w->version != 2 || w->fetch_owner)
		res.owner_id = w->owner;
	if (w->version != 2) {
		res.marker = w->marker ? w->marker : "";
		/* v1 says NextMarker only with a delimiter (without one the
		 * last key is it); ListObjectVersions always */
		if (w->truncated && w->n &&
		    (w->delimiter || w->version == S3_LIST_VERSIONS))
			res.next_marker = w->items[w->n - 1].key;
	} else {
		res.start_after = w->start_after;
		res.continuation_token = w->token;
		if (w->truncated && w->n) {
			const struct litem *last = &w->items[w->n - 1];

			next = malloc(2 * last->len + 1);
			if (!next) {
				err = -ENOMEM;
				goto out;
			}
			s3_hex((const uint8_t *)last->key, last->len, next);
			res.next_continuation_token = next;
		}
	}
	err = s3_xml_list_objects(&xml, &res);
out:
	w->cb(w->arg, err, err ? NULL : &xml);
	s3_buf_free(&xml);
	free(objs);
	free(pfx);
	free(next);
	lwalk_free(w);
}

/* May shard i hold keys under the prefix (its lower bound is not past
 * every such key)? */
static bool shard_in_range(const struct lwalk *w, size_t i)
{
	const struct gw_shard *s = &w->m->v[i];

	if (!w->prefix_len)
		return true;
	return strata_has_prefix(s->lower, s->lower_len, w->prefix, w->prefix_len) ||
	       strata_bytes_cmp(s->lower, s->lower_len, w->prefix, w->prefix_len) < 0;
}

static void lwalk_on_page(void *arg, int err, const struct sto_listing_page *pg);

static void lwalk_query(struct lwalk *w)
{
	struct sto_listing_id id;
	struct sto_listing_query q = {
		.start_after = { w->cursor, (uint32_t)w->cursor_len },
		.prefix = { w->prefix, (uint32_t)w->prefix_len },
		.delimiter = { w->delimiter, (uint32_t)w->delim_len },
		.limit = w->probing ? 1 : w->max_keys - (uint32_t)w->n,
	};
	int ret;

	listing_id(w->L, w->m->v[w->shard].id, &id);
	ret = lquery_start(w->L, &id, &q, lwalk_on_page, w);
	if (ret < 0)
		lwalk_finish(w, ret);
}

static int lwalk_add(struct lwalk *w, const void *key, size_t len, bool is_prefix,
		     const struct sto_listing_entry *e)
{
	struct litem *it = &w->items[w->n];

	/* A common prefix that spans two shards: once. */
	if (is_prefix && w->n && w->items[w->n - 1].is_prefix &&
	    w->items[w->n - 1].len == len && !memcmp(w->items[w->n - 1].key, key, len))
		return 0;
	memset(it, 0, sizeof(*it));
	if (e && value_decode(e->value, e->value_len, &it->v) < 0) {
		log_warn("listing of %s: undecodable entry skipped", w->bucket);
		return 0;
	}
	it->key = s3_strndup(key, len);
	if (!it->key)
		return -ENOMEM;
	it->len = len;
	it->is_prefix = is_prefix;
	it->ts = e ? e->timestamp : 0;
	w->n++;
	return 0;
}

static void lwalk_on_page(void *arg, int err, const struct sto_listing_page *pg)
{
	struct lwalk *w = arg;
	size_t ie = 0, ip = 0;

	if (err) {
		lwalk_finish(w, err);
		return;
	}
	if (w->probing) {
		if (pg && (pg->n_entries || pg->n_prefixes)) {
			w->truncated = true;
			lwalk_finish(w, 0);
			return;
		}
	} else if (pg) {
		/* Merge the page's keys and common prefixes in key order. */
		while (ie < pg->n_entries || ip < pg->n_prefixes) {
			const struct sto_listing_entry *e = ie < pg->n_entries ?
				&pg->entries[ie] : NULL;
			const struct sto_bytes *p = ip < pg->n_prefixes ?
				&pg->prefixes[ip] : NULL;
			bool take_p = p && (!e || strata_bytes_cmp(p->data, p->len, e->key,
							    e->key_len) < 0);

			if (w->n == w->max_keys)
				break;
			err = take_p ? lwalk_add(w, p->data, p->len, true, NULL) :
				lwalk_add(w, e->key, e->key_len, false, e);
			if (err) {
				lwalk_finish(w, err);
				return;
			}
			if (take_p)
				ip++;
			else
				ie++;
		}
		if (w->n)
			err = lwalk_set_cursor(w, w->items[w->n - 1].key, w->items[w->n - 1].len);
	}
	if (!err && pg && pg->is_truncated) {
		if (!w->probing && w->n == w->max_keys) {
			w->truncated = true;
			lwalk_finish(w, 0);
			return;
		}
		/* A short page (the node's scan budget over tombstones): go on
		 * from where it stopped, in the same shard. */
		if (pg->next_marker.len &&
		    strata_bytes_cmp(pg->next_marker.data, pg->next_marker.len, w->cursor,
			      w->cursor_len) > 0)
			err = lwalk_set_cursor(w, pg->next_marker.data, pg->next_marker.len);
		else if (!pg->n_entries && !pg->n_prefixes)
			err = -EIO;	/* no progress: a node bug */
		if (err) {
			lwalk_finish(w, err);
			return;
		}
		lwalk_query(w);
		return;
	}
	if (err) {
		lwalk_finish(w, err);
		return;
	}
	/* This shard is done: the next, if it may hold more. */
	if (w->n == w->max_keys)
		w->probing = true;
	if (w->shard + 1 < w->m->n && shard_in_range(w, w->shard + 1)) {
		w->shard++;
		lwalk_query(w);
		return;
	}
	lwalk_finish(w, 0);
}

/* Query parameter name, decoded into *out (malloc'd): 1, 0 when absent,
 * or -errno. */
static int qparam(const char *q, size_t qn, const char *name, char **out)
{
	const char *v;
	size_t vl, dl;
	char *d;

	*out = NULL;
	if (!gw_query_has(q, qn, name, &v, &vl))
		return 0;
	d = malloc(vl + 1);
	if (!d)
		return -ENOMEM;
	if (http_url_decode(v, vl, d, &dl, true) < 0) {
		free(d);
		return -EINVAL;
	}
	d[dl] = '\0';
	*out = d;
	return 1;
}

static void lwalk_on_map(void *arg, int err, struct gw_smap *m)
{
	struct lwalk *w = arg;
	const void *from;
	size_t from_len;

	if (err) {
		lwalk_finish(w, err);
		return;
	}
	w->m = smap_get(m);
	if (w->max_keys == 0) {
		lwalk_finish(w, 0);
		return;
	}
	/* The first shard that may hold a key > cursor under the prefix. */
	if (strata_bytes_cmp(w->cursor, w->cursor_len, w->prefix, w->prefix_len) > 0) {
		from = w->cursor;
		from_len = w->cursor_len;
	} else {
		from = w->prefix;
		from_len = w->prefix_len;
	}
	w->shard = smap_find(m, from, from_len);
	lwalk_query(w);
}

/* The request's parameters into w (validated: -EINVAL for an invalid
 * argument): the untrusted input of a listing. */
static int lwalk_parse(struct lwalk *w, const char *query, size_t qlen)
{
	char *lt = NULL, *mk = NULL, *enc = NULL, *fo = NULL, *vim = NULL;
	bool versions = gw_query_has(query, qlen, "versions", NULL, NULL);
	int ret;

	w->max_keys = MAX_KEYS_CAP;
	w->version = 1;
	if ((ret = qparam(query, qlen, "list-type", &lt)) < 0 ||
	    (ret = qparam(query, qlen, "version-id-marker", &vim)) < 0 ||
	    (ret = qparam(query, qlen, versions ? "key-marker" : "marker", &w->marker)) < 0 ||
	    (ret = qparam(query, qlen, "prefix", &w->prefix)) < 0 ||
	    (ret = qparam(query, qlen, "delimiter", &w->delimiter)) < 0 ||
	    (ret = qparam(query, qlen, "start-after", &w->start_after)) < 0 ||
	    (ret = qparam(query, qlen, "continuation-token", &w->token)) < 0 ||
	    (ret = qparam(query, qlen, "max-keys", &mk)) < 0 ||
	    (ret = qparam(query, qlen, "encoding-type", &enc)) < 0 ||
	    (ret = qparam(query, qlen, "fetch-owner", &fo)) < 0)
		goto out;
	ret = -EINVAL;
	if (lt && (strcmp(lt, "2") || versions))
		goto out;
	/* ListObjectVersions: each key's one version is "null", so a
	 * version-id-marker can only be that (or empty, as with no key-marker). */
	if (vim && ((*vim && strcmp(vim, "null")) || !versions || !w->marker))
		goto out;
	w->version = versions ? S3_LIST_VERSIONS : lt ? 2 : 1;
	if (enc && strcmp(enc, "url"))
		goto out;
	w->url = enc != NULL;
	w->fetch_owner = fo && !strcmp(fo, "true");
	if (mk) {
		char *end;
		long long v = strtoll(mk, &end, 10);

		if (!*mk || *end || v < 0)
			goto out;
		w->max_keys = v > MAX_KEYS_CAP ? MAX_KEYS_CAP : (unsigned)v;
	}
	if (w->delimiter && !*w->delimiter) {
		free(w->delimiter);
		w->delimiter = NULL;
	}
	w->prefix_len = w->prefix ? strlen(w->prefix) : 0;
	w->delim_len = w->delimiter ? strlen(w->delimiter) : 0;
	if (w->prefix_len > STO_LISTING_MAX_KEY || w->delim_len > STO_LISTING_MAX_DELIM)
		goto out;
	/* Where to start: the continuation token wins over start-after (v2);
	 * v1 has the marker. */
	if (w->version == 2 && w->token) {
		size_t tl = strlen(w->token);

		if (tl % 2 || tl / 2 > STO_LISTING_MAX_KEY)
			goto out;
		w->cursor = malloc(tl / 2 + 1);
		if (!w->cursor) {
			ret = -ENOMEM;
			goto out;
		}
		if (s3_unhex(w->token, tl, w->cursor, tl / 2) < 0)
			goto out;
		w->cursor_len = tl / 2;
	} else {
		const char *st = w->version == 2 ? w->start_after : w->marker;

		if (st && strlen(st) > STO_LISTING_MAX_KEY)
			goto out;
		ret = lwalk_set_cursor(w, st ? st : "", st ? strlen(st) : 0);
		if (ret < 0)
			goto out;
	}
	w->items = calloc(w->max_keys + 1, sizeof(*w->items));
	ret = w->items ? 0 : -ENOMEM;
out:
	free(lt);
	free(mk);
	free(enc);
	free(fo);
	free(vim);
	return ret;
}

int gw_list_objects(struct gw_listing *L, const char *bucket, const char *owner,
		    const char *query, size_t qlen, struct gw_tier_pol *pol,
		    gw_list_xml_fn cb, void *arg)
{
	struct lwalk *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return -ENOMEM;
	w->L = L;
	w->pol = gw_tier_pol_ref(pol);
	w->cb = cb;
	w->arg = arg;
	w->bucket = strdup(bucket);
	w->owner = strdup(owner);
	ret = w->bucket && w->owner ? lwalk_parse(w, query, qlen) : -ENOMEM;
	if (ret == 0)
		ret = smap_load(L, bucket, false, lwalk_on_map, w);
	if (ret < 0)
		lwalk_free(w);
	return ret;
}

int gw_list_page(struct gw_listing *L, const char *bucket, const char *prefix,
		 const char *after, unsigned max, gw_list_page_fn cb, void *arg)
{
	struct lwalk *w = calloc(1, sizeof(*w));
	int ret = -ENOMEM;

	if (!w)
		return -ENOMEM;
	w->L = L;
	w->page_cb = cb;
	w->arg = arg;
	w->version = 2;
	w->max_keys = max && max < MAX_KEYS_CAP ? max : MAX_KEYS_CAP;
	w->bucket = strdup(bucket);
	w->prefix = strdup(prefix ? prefix : "");
	w->items = calloc(w->max_keys + 1, sizeof(*w->items));
	if (!w->bucket || !w->prefix || !w->items)
		goto out_free;
	w->prefix_len = strlen(w->prefix);
	ret = -EINVAL;
	if (w->prefix_len > STO_LISTING_MAX_KEY || (after && strlen(after) > STO_LISTING_MAX_KEY))
		goto out_free;
	ret = lwalk_set_cursor(w, after ? after : "", after ? strlen(after) : 0);
	if (ret == 0)
		ret = smap_load(L, bucket, true, lwalk_on_map, w);
	if (ret == 0)
		return 0;
out_free:
	lwalk_free(w);
	return ret;
}

int gw_list_fuzz_one(const uint8_t *p, size_t n)
{
	struct gw_smap m = { .refs = 1 };
	struct lwalk *w = calloc(1, sizeof(*w));
	struct lvalue v;
	char *s = s3_strndup((const char *)p, n);
	int ret;

	if (!w || !s) {
		free(w);
		free(s);
		return -ENOMEM;
	}
	/* A shard map as a bucket record carries it: must decode to ascending
	 * bounds starting at "" or fail. */
	if (smap_decode(s, &m) == 0) {
		if (!m.n || m.v[0].lower_len)
			abort();
		for (size_t i = 1; i < m.n; i++)
			if (strata_bytes_cmp(m.v[i - 1].lower, m.v[i - 1].lower_len, m.v[i].lower,
				      m.v[i].lower_len) >= 0)
				abort();
		(void)smap_find(&m, p, n);
	}
	for (size_t i = 0; i < m.n; i++) {
		free(m.v[i].lower);
		free(m.v[i].mid);
	}
	free(m.v);
	(void)value_decode(p, n, &v);
	/* A ListObjects query string. */
	ret = lwalk_parse(w, s, n);
	if (ret == 0 && (w->max_keys > MAX_KEYS_CAP || w->cursor_len > STO_LISTING_MAX_KEY))
		abort();
	lwalk_free(w);
	free(s);
	return 0;
}

/* ------------------------------------------------------------- splits */

/* A shard S = [lower, upper) that passed shard_max entries (tombstones
 * included) is split at its median key mid into new shards A = [lower, mid)
 * and B = [mid, upper), by the gateway that noticed (one split at a time per
 * gateway):
 *  1. find mid by walking S (tombstones included);
 *  2. rewrite the bucket record: S marked "splitting" with mid, A, B and the
 *     start time. From then on every gateway that loads the map writes each
 *     update to S and to A or B; reads still use S;
 *  3. wait split_wait_ms (>= the map cache TTL plus the write deadline), so
 *     no gateway still writes with a map older than step 2 — after that, an
 *     update S gets is also in A or B, or was already in S;
 *  4. check the record still names this split (two gateways splitting the
 *     same shard: the newer record wins, the other gives up), copy every
 *     entry of S (tombstones too) into A and B; newest-wins makes the copy
 *     idempotent and unable to undo a newer direct write;
 *  5. rewrite the record with A and B in place of S;
 *  6. wait split_wait_ms again (readers with the old map still read S),
 *     then drop S's entries.
 * Crashes: before 2 nothing changed; between 2 and 5 the map stays
 * "splitting" — writes keep going to both sides, reads to S, so nothing is
 * lost — and the next gateway that samples S after 10 split waits (at least
 * a minute) takes the split over from step 3; between 5 and 6, S's entries
 * stay on the nodes as garbage. */
struct split {
	struct gw_listing *L;
	char *bucket;
	uint8_t sid[STO_LISTING_ID_LEN];
	struct sto_listing_id lid;
	struct gw_smap *m;
	uint64_t target, seen;
	uint8_t *mid;
	uint32_t mid_len;
	uint8_t a[STO_LISTING_ID_LEN], b[STO_LISTING_ID_LEN];
	uint8_t *cursor;
	uint32_t cursor_len;
	bool more;
	unsigned pending;
	int err;
	struct s3_buf meta;
	void (*after_wait)(struct split *sp);
	void (*after_write)(struct split *sp);
	uv_timer_t timer;
	uint64_t copied;
};

static void split_closed(uv_handle_t *h)
{
	struct split *sp = h->data;

	sp->L->st->live--;
	sp->L->splitting = false;
	sp->L->split = NULL;
	smap_put(sp->m);
	free(sp->bucket);
	free(sp->mid);
	free(sp->cursor);
	s3_buf_free(&sp->meta);
	free(sp);
}

static void split_end(struct split *sp, int err, const char *what)
{
	if (err)
		log_warn("bucket %s: shard split %s: %s", sp->bucket, what, sto_strerror(err));
	uv_close((uv_handle_t *)&sp->timer, split_closed);
}

/* Stopping: a split waiting on its timer ends now (the map stays as it
 * is; see the crash notes above). */
static void split_stop(struct split *sp)
{
	if (uv_is_active((uv_handle_t *)&sp->timer)) {
		uv_timer_stop(&sp->timer);
		split_end(sp, -ECANCELED, "stopped");
	}
}

static void split_on_timer(uv_timer_t *t)
{
	struct split *sp = t->data;

	if (sp->L->closing) {
		split_end(sp, -ECANCELED, "stopped");
		return;
	}
	sp->after_wait(sp);
}

static void split_wait(struct split *sp, void (*next)(struct split *sp))
{
	sp->after_wait = next;
	uv_timer_start(&sp->timer, split_on_timer, sp->L->cfg.split_wait_ms, 0);
}

static int split_cursor(struct split *sp, const void *p, uint32_t n)
{
	uint8_t *c = memdup(p, n);

	if (!c)
		return -ENOMEM;
	free(sp->cursor);
	sp->cursor = c;
	sp->cursor_len = n;
	return 0;
}

static void on_record_written(struct gw_wset *w, int err, void *arg)
{
	struct split *sp = arg;

	(void)w;
	if (err) {
		split_end(sp, err, "bucket record write");
		return;
	}
	sp->after_write(sp);
}

/* Writes sp->m as the bucket record (a new timestamp: newest wins). */
static void split_write_record(struct split *sp, void (*next)(struct split *sp))
{
	struct gw_listing *L = sp->L;
	struct gw_meta meta = { .kind = GW_META_BUCKET, .version = sp->m->created };
	struct s3_buf enc = { 0 };
	char path[128];
	uint8_t name[STO_NAME_HASH_LEN];
	size_t len;
	struct gw_wset *w;
	int ret;

	meta.owner = strdup(sp->m->owner);
	ret = meta.owner ? smap_encode(sp->m, &enc) : -ENOMEM;
	if (!ret)
		ret = gw_meta_add_hdr(&meta, SMAP_HDR, strlen(SMAP_HDR), enc.p, enc.len);
	s3_buf_reset(&sp->meta);
	if (!ret)
		ret = gw_meta_encode(&meta, &sp->meta);
	gw_meta_free(&meta);
	s3_buf_free(&enc);
	if (ret) {
		split_end(sp, ret, "shard map encoding (too many shards?)");
		return;
	}
	gw_bucket_path(sp->bucket, path, sizeof(path), &len);
	gw_name_hash(path, len, name);
	w = gw_wset_new(L->st, L->rep, ring_part_of_path(L->rep, path, len), name, 0,
			false, strata_wall_ns(), on_record_written, sp);
	if (!w) {
		split_end(sp, -ENOMEM, "bucket record write");
		return;
	}
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].frag = 0;
		w->f[i].iov = (struct iovec){ NULL, 0 };
	}
	w->meta = sp->meta.p;
	w->meta_len = (uint32_t)sp->meta.len;
	sp->after_write = next;
	sp->m->expires = strata_now_ns() + SMAP_TTL_NS;
	cache_set(L, sp->m);	/* this gateway uses the new map at once */
	gw_wset_start(w);
}

/* The fresh map, with sp->m replaced; the index of shard sid, or -1. */
static ssize_t split_locate(struct split *sp, struct gw_smap *m)
{
	smap_put(sp->m);
	sp->m = smap_get(m);
	for (size_t i = 0; i < m->n; i++)
		if (!memcmp(m->v[i].id, sp->sid, STO_LISTING_ID_LEN))
			return (ssize_t)i;
	return -1;
}

/* A reloaded map (err: its reload failed) during sp's split: the index of
 * the shard sp splits, or -1 once sp ended because the map failed or no
 * longer shows this split (superseded: how to say why). */
static ssize_t split_reloaded(struct split *sp, int err, struct gw_smap *m,
			      const char *superseded)
{
	ssize_t at;

	if (err) {
		split_end(sp, err, "map reload");
		return -1;
	}
	at = split_locate(sp, m);
	if (at < 0 || !m->v[at].splitting ||
	    memcmp(m->v[at].a, sp->a, STO_LISTING_ID_LEN)) {
		split_end(sp, -ESTALE, superseded);
		return -1;
	}
	return at;
}

static void split_drop_old(struct split *sp)
{
	log_info("bucket %s: shard split done (%" PRIu64 " entries copied), old shard "
		 "dropped", sp->bucket, sp->copied);
	ldrop_start(sp->L, sp->sid);
	split_end(sp, 0, NULL);
}

/* Step 6: readers holding the map from before step 5 still read S; its
 * entries go only once every cached map has expired. */
static void split_wait_then_drop(struct split *sp)
{
	split_wait(sp, split_drop_old);
}

static void split_on_final_map(void *arg, int err, struct gw_smap *m)
{
	struct split *sp = arg;
	struct gw_smap *nm;
	ssize_t at;

	at = split_reloaded(sp, err, m, "superseded");
	if (at < 0)
		return;
	/* S becomes A (same lower bound) followed by B (lower bound mid). */
	nm = calloc(1, sizeof(*nm));
	if (!nm) {
		split_end(sp, -ENOMEM, "new map");
		return;
	}
	nm->refs = 1;
	nm->bucket = strdup(m->bucket);
	nm->owner = strdup(m->owner);
	nm->created = m->created;
	nm->n = m->n + 1;
	nm->v = calloc(nm->n, sizeof(*nm->v));
	if (!nm->bucket || !nm->owner || !nm->v) {
		smap_put(nm);
		split_end(sp, -ENOMEM, "new map");
		return;
	}
	for (size_t i = 0, j = 0; i < m->n; i++, j++) {
		const struct gw_shard *s = &m->v[i];
		struct gw_shard *d = &nm->v[j];

		if ((ssize_t)i != at) {
			*d = *s;
			d->lower = memdup(s->lower, s->lower_len);
			d->mid = s->splitting ? memdup(s->mid, s->mid_len) : NULL;
			continue;
		}
		d->lower = memdup(s->lower, s->lower_len);
		d->lower_len = s->lower_len;
		memcpy(d->id, sp->a, STO_LISTING_ID_LEN);
		d = &nm->v[++j];
		d->lower = memdup(sp->mid, sp->mid_len);
		d->lower_len = sp->mid_len;
		memcpy(d->id, sp->b, STO_LISTING_ID_LEN);
	}
	smap_put(sp->m);
	sp->m = nm;
	split_write_record(sp, split_wait_then_drop);
}

static void split_finish(struct split *sp)
{
	int ret = smap_load(sp->L, sp->bucket, true, split_on_final_map, sp);

	if (ret < 0)
		split_end(sp, ret, "map reload");
}

static void split_copy_page(struct split *sp);

static void split_on_copied(void *arg, int err)
{
	struct split *sp = arg;

	if (err && !sp->err)
		sp->err = err;
	if (--sp->pending)
		return;
	if (sp->err) {
		split_end(sp, sp->err, "copy");
		return;
	}
	if (sp->more)
		split_copy_page(sp);
	else
		split_finish(sp);
}

static void split_on_copy_page(void *arg, int err, const struct sto_listing_page *pg)
{
	struct split *sp = arg;
	size_t start = 0;
	struct sto_listing_id ida, idb;

	if (err || sp->L->closing) {
		split_end(sp, err ? err : -ECANCELED, "copy read");
		return;
	}
	sp->more = pg && pg->is_truncated;
	sp->pending = 1;
	listing_id(sp->L, sp->a, &ida);
	listing_id(sp->L, sp->b, &idb);
	/* Batches of consecutive entries on one side, bounded in bytes. */
	for (size_t i = 0, bytes = 0; pg && i <= pg->n_entries; i++) {
		bool cut = i == pg->n_entries;

		if (!cut && i > start) {
			const struct sto_listing_entry *e = &pg->entries[i];
			const struct sto_listing_entry *f = &pg->entries[start];
			bool ea = strata_bytes_cmp(e->key, e->key_len, sp->mid, sp->mid_len) < 0;
			bool fa = strata_bytes_cmp(f->key, f->key_len, sp->mid, sp->mid_len) < 0;

			cut = ea != fa || i - start >= STO_LISTING_MAX_BATCH ||
			      bytes + e->key_len + e->value_len + 32 > LPUT_MAX_BYTES;
		}
		if (cut && i > start) {
			const struct sto_listing_entry *f = &pg->entries[start];
			bool fa = strata_bytes_cmp(f->key, f->key_len, sp->mid, sp->mid_len) < 0;

			sp->pending++;
			err = lput_start(sp->L, fa ? &ida : &idb, &pg->entries[start],
					 i - start, split_on_copied, sp);
			if (err)
				split_on_copied(sp, err);
			sp->copied += i - start;
			start = i;
			bytes = 0;
		}
		if (i < pg->n_entries)
			bytes += pg->entries[i].key_len + pg->entries[i].value_len + 32;
	}
	if (pg && pg->next_marker.len && split_cursor(sp, pg->next_marker.data,
						      pg->next_marker.len) < 0)
		sp->err = -ENOMEM;
	else if (sp->more && (!pg || !pg->next_marker.len))
		sp->err = -EIO;
	split_on_copied(sp, 0);
}

static void split_copy_page(struct split *sp)
{
	struct sto_listing_query q = {
		.start_after = { sp->cursor, sp->cursor_len },
		.limit = STO_LISTING_DEFAULT_LIMIT, .include_tombstones = true,
	};
	int ret = lquery_start(sp->L, &sp->lid, &q, split_on_copy_page, sp);

	if (ret < 0)
		split_end(sp, ret, "copy read");
}

static void split_on_check_map(void *arg, int err, struct gw_smap *m)
{
	struct split *sp = arg;
	ssize_t at;

	at = split_reloaded(sp, err, m, "superseded by another gateway's");
	if (at < 0)
		return;
	free(sp->cursor);
	sp->cursor = NULL;
	sp->cursor_len = 0;
	split_copy_page(sp);
}

static void split_check(struct split *sp)
{
	int ret = smap_load(sp->L, sp->bucket, true, split_on_check_map, sp);

	if (ret < 0)
		split_end(sp, ret, "map reload");
}

static void split_after_mark(struct split *sp)
{
	split_wait(sp, split_check);
}

static void split_mark(struct split *sp)
{
	struct gw_smap *m = sp->m;
	struct gw_shard *s = NULL;

	for (size_t i = 0; i < m->n; i++)
		if (!memcmp(m->v[i].id, sp->sid, STO_LISTING_ID_LEN))
			s = &m->v[i];
	if (!s || s->splitting) {
		split_end(sp, -ESTALE, "map changed");
		return;
	}
	/* The map is shared with the cache: marking it in place is what the
	 * record will say once written; readers of the cache see the same. */
	s->mid = memdup(sp->mid, sp->mid_len);
	if (!s->mid) {
		split_end(sp, -ENOMEM, "mark");
		return;
	}
	s->mid_len = sp->mid_len;
	memcpy(s->a, sp->a, STO_LISTING_ID_LEN);
	memcpy(s->b, sp->b, STO_LISTING_ID_LEN);
	s->split_ns = strata_wall_ns();
	s->splitting = true;
	log_info("bucket %s: splitting a shard of %" PRIu64 " entries", sp->bucket,
		 sp->target * 2);
	split_write_record(sp, split_after_mark);
}

static void split_on_median_page(void *arg, int err, const struct sto_listing_page *pg)
{
	struct split *sp = arg;
	struct sto_listing_query q = { .limit = STO_LISTING_DEFAULT_LIMIT,
				       .include_tombstones = true };

	if (err || !pg) {
		split_end(sp, err ? err : -ENOENT, "median walk");
		return;
	}
	if (sp->seen + pg->n_entries > sp->target) {
		const struct sto_listing_entry *e = &pg->entries[sp->target - sp->seen];

		sp->mid = memdup(e->key, e->key_len);
		sp->mid_len = e->key_len;
		if (!sp->mid) {
			split_end(sp, -ENOMEM, "median walk");
			return;
		}
		split_mark(sp);
		return;
	}
	sp->seen += pg->n_entries;
	if (!pg->is_truncated || !pg->next_marker.len ||
	    split_cursor(sp, pg->next_marker.data, pg->next_marker.len) < 0) {
		split_end(sp, -ENODATA, "median walk (shard shrank)");
		return;
	}
	q.start_after = (struct sto_bytes){ sp->cursor, sp->cursor_len };
	err = lquery_start(sp->L, &sp->lid, &q, split_on_median_page, sp);
	if (err)
		split_end(sp, err, "median walk");
}

static void split_on_map(void *arg, int err, struct gw_smap *m)
{
	struct split *sp = arg;
	uint64_t age_ns = 10ull * sp->L->cfg.split_wait_ms * 1000000;
	ssize_t at;
	const struct gw_shard *s;

	if (err) {
		split_end(sp, err, "map load");
		return;
	}
	if (age_ns < 60ull * 1000000000)
		age_ns = 60ull * 1000000000;
	at = split_locate(sp, m);
	if (at < 0) {
		split_end(sp, 0, NULL);		/* already split */
		return;
	}
	s = &m->v[at];
	if (s->splitting) {
		/* Someone's split, in progress or abandoned by a crash. */
		if (strata_wall_ns() - s->split_ns < age_ns) {
			split_end(sp, 0, NULL);
			return;
		}
		log_warn("bucket %s: taking over a shard split begun %" PRIu64 " s ago",
			 sp->bucket, (strata_wall_ns() - s->split_ns) / 1000000000);
		sp->mid = memdup(s->mid, s->mid_len);
		sp->mid_len = s->mid_len;
		memcpy(sp->a, s->a, STO_LISTING_ID_LEN);
		memcpy(sp->b, s->b, STO_LISTING_ID_LEN);
		if (!sp->mid) {
			split_end(sp, -ENOMEM, "take over");
			return;
		}
		split_check(sp);
		return;
	}
	{
		struct sto_listing_query q = { .limit = STO_LISTING_DEFAULT_LIMIT,
					       .include_tombstones = true };
		char seed[192];
		int n;

		/* New ids: unique per split, so placement spreads. */
		n = snprintf(seed, sizeof(seed), "/.shard/%s/%" PRIu64 "/%" PRIu64 "/a",
			     sp->bucket, strata_wall_ns(), ++sp->L->seq);
		gw_name_hash(seed, (size_t)n, sp->a);
		seed[n - 1] = 'b';
		gw_name_hash(seed, (size_t)n, sp->b);
		err = lquery_start(sp->L, &sp->lid, &q, split_on_median_page, sp);
		if (err)
			split_end(sp, err, "median walk");
	}
}

static void split_on_stat(void *arg, int err, const struct sto_listing_stat *st)
{
	struct split *sp = arg;
	uint64_t total;

	if (err || !st) {
		split_end(sp, err, "stat");
		return;
	}
	total = st->entries + st->tombstones;
	if (total < sp->L->cfg.shard_max) {
		split_end(sp, 0, NULL);
		return;
	}
	sp->target = total / 2 ? total / 2 : 1;
	err = smap_load(sp->L, sp->bucket, true, split_on_map, sp);
	if (err)
		split_end(sp, err, "map load");
}

static void split_maybe(struct gw_listing *L, const char *bucket,
			const uint8_t id[STO_LISTING_ID_LEN])
{
	struct split *sp;

	if (L->splitting || L->closing)
		return;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return;
	sp->bucket = strdup(bucket);
	if (!sp->bucket) {
		free(sp);
		return;
	}
	sp->L = L;
	memcpy(sp->sid, id, STO_LISTING_ID_LEN);
	listing_id(L, id, &sp->lid);
	L->splitting = true;
	L->split = sp;
	L->st->live++;
	uv_timer_init(L->st->loop, &sp->timer);
	sp->timer.data = sp;
	if (lstat_start(L, &sp->lid, split_on_stat, sp) < 0)
		split_end(sp, -ENOMEM, "stat");
}
