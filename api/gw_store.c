/* gw_store.c: what the gateway asks of storage nodes, as sets: a write set
 * (every placement of a partition durable, with handoffs), a head lookup
 * (newest answer among primaries and handoffs) and single reads with a
 * deadline. Results are always delivered from the loop (a zero timer), never
 * inside the call that started the work, so callers need no reentrancy
 * guards; late answers after a deadline are dropped by generation or flag. */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void gw_name_hash(const char *path, size_t len, uint8_t out[STO_NAME_HASH_LEN])
{
	uint8_t d[32];

	s3_cksum_buf(S3_CKSUM_SHA256, path, len, d);
	memcpy(out, d, STO_NAME_HASH_LEN);
}

void gw_seg_hash(const char *path, size_t len, uint64_t version, uint32_t seg,
		 uint8_t out[STO_NAME_HASH_LEN])
{
	uint8_t buf[RING_PATH_MAX + 16], d[32];

	if (len > RING_PATH_MAX)
		len = RING_PATH_MAX;
	memcpy(buf, path, len);
	buf[len] = 0;
	for (int i = 0; i < 8; i++)
		buf[len + 1 + i] = (uint8_t)(version >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		buf[len + 9 + i] = (uint8_t)(seg >> (24 - 8 * i));
	s3_cksum_buf(S3_CKSUM_SHA256, buf, len + 13, d);
	memcpy(out, d, STO_NAME_HASH_LEN);
}

const struct ring *gw_store_prev(const struct gw_store *st, const struct ring *ring)
{
	for (unsigned i = 0; i < GW_STORE_RINGS; i++)
		if (ring && st->cur[i] == ring)
			return st->prev[i];
	return NULL;
}

static struct gw_node *dev_node(struct gw_store *st, const struct ring_dev *d)
{
	return gw_pool_node(st->pool, d->node);
}

bool gw_store_dev_down(struct gw_store *st, const struct ring_dev *d)
{
	struct gw_node *n = dev_node(st, d);

	return n && gw_node_is_down(n);
}

/* ---------------------------------------------------------- segment buffers */

/* A segment buffer is megabytes that malloc takes from mmap and gives back
 * on free: every request then page-faults its buffers in afresh (perf: a
 * fifth of the gateway's CPU in a 1 MiB GET load). Buffers of the same size
 * class are reused instead, up to GW_BUF_CACHE_MAX idle bytes. */
struct gw_buf_hdr {
	struct gw_buf_hdr *next;	/* idle list */
	size_t cls;			/* usable bytes */
	uint8_t pad[GW_EC_ALIGN - 2 * sizeof(size_t)];	/* keeps data aligned */
};

static size_t buf_class(size_t size)
{
	size_t c = 64u << 10;

	if (size > (1u << 20))
		return (size + (1u << 20) - 1) & ~(size_t)((1u << 20) - 1);
	while (c < size)
		c <<= 1;
	return c;
}

void *gw_buf_alloc(struct gw_store *st, size_t size)
{
	size_t cls = buf_class(size);
	struct gw_buf_hdr **pp, *h;

	for (pp = &st->idle_bufs; (h = *pp); pp = &h->next)
		if (h->cls == cls) {
			*pp = h->next;
			st->idle_bytes -= cls;
			return h + 1;
		}
	h = malloc(sizeof(*h) + cls);
	if (!h)
		return NULL;
	h->cls = cls;
	return h + 1;
}

void gw_buf_free(struct gw_store *st, void *p)
{
	struct gw_buf_hdr *h;

	if (!p)
		return;
	h = (struct gw_buf_hdr *)p - 1;
	if (st->idle_bytes + h->cls > GW_BUF_CACHE_MAX) {
		free(h);
		return;
	}
	h->next = st->idle_bufs;
	st->idle_bufs = h;
	st->idle_bytes += h->cls;
}

void gw_buf_cache_free(struct gw_store *st)
{
	struct gw_buf_hdr *h, *next;

	for (h = st->idle_bufs; h; h = next) {
		next = h->next;
		free(h);
	}
	st->idle_bufs = NULL;
	st->idle_bytes = 0;
}

/* ------------------------------------------------------------ write sets */

struct wattempt {
	struct gw_wfrag *f;
	unsigned gen;
	struct gw_node *node;
};

static void wset_put(struct gw_wset *w);
static void wfrag_try(struct gw_wfrag *f);

static void wset_closed(uv_handle_t *h)
{
	struct gw_wset *w = h->data;

	if (--w->refs == 0) {
		w->st->live--;
		ring_put(w->ring);
		free(w);
	}
}

static void wset_put(struct gw_wset *w)
{
	if (--w->refs)
		return;
	/* Every timer closes; the last close frees (refs count them). */
	w->refs = w->n + 1;
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].timer.data = w;		/* was the fragment */
		uv_close((uv_handle_t *)&w->f[i].timer, wset_closed);
	}
	uv_close((uv_handle_t *)&w->fin, wset_closed);
}

static void wset_on_fin(uv_timer_t *t)
{
	struct gw_wset *w = t->data;

	w->done(w, w->err, w->arg);
	wset_put(w);
}

static void wset_frag_done(struct gw_wfrag *f, int err)
{
	struct gw_wset *w = f->w;

	f->done = true;
	uv_timer_stop(&f->timer);
	if (err && !w->err)
		w->err = err;
	if (--w->pending == 0 && !w->finished) {
		w->finished = true;
		uv_timer_start(&w->fin, wset_on_fin, 0, 0);
	}
}

/* The attempt failed: the next handoff, or the fragment fails. */
static void wfrag_next(struct gw_wfrag *f, int err)
{
	struct gw_wset *w = f->w;

	f->gen++;
	if (w->next_hand >= w->nhand) {
		log_warn("part %u frag %u: no device left (%s)", w->part, f->frag,
			 sto_strerror(err));
		wset_frag_done(f, -EHOSTUNREACH);
		return;
	}
	f->dev = w->hand[w->next_hand++];
	wfrag_try(f);
}

static bool wset_ok(const struct gw_wset *w, int status)
{
	return status == 0 || status == STO_ECONFLICT ||
	       (w->is_delete && status == -ENOENT);
}

static void wfrag_on_done(void *arg, int status, const struct sto_info *info)
{
	struct wattempt *a = arg;
	struct gw_wfrag *f = a->f;
	struct gw_wset *w = f->w;

	(void)info;
	if (wset_ok(w, status))
		gw_node_ok(a->node);
	else
		gw_node_failed(a->node, status);
	if (a->gen == f->gen && !f->done) {
		if (wset_ok(w, status))
			wset_frag_done(f, 0);
		else
			wfrag_next(f, status);
	}
	free(a);
	wset_put(w);
}

static void wfrag_on_client(void *arg, sto_client *c, int err)
{
	struct wattempt *a = arg;
	struct gw_wfrag *f = a->f;
	struct gw_wset *w = f->w;
	struct sto_key k = { .part = w->part, .frag = f->frag };

	if (a->gen != f->gen || f->done) {
		free(a);
		wset_put(w);
		return;
	}
	if (!err) {
		memcpy(k.name, w->name, sizeof(k.name));
		if (w->is_delete)
			err = sto_delete(c, &k, w->ts, wfrag_on_done, a);
		else
			err = sto_put_ex(c, &k, w->ts, w->meta, w->meta_len, &f->iov, 1,
					 f->crc, &w->topts, wfrag_on_done, a);
		if (!err)
			return;
		gw_node_failed(a->node, -ENOTCONN);
	}
	free(a);
	wfrag_next(f, err);
	wset_put(w);
}

static void wfrag_on_timeout(uv_timer_t *t)
{
	struct gw_wfrag *f = t->data;
	struct gw_node *n = dev_node(f->w->st, f->dev);

	if (f->done)
		return;
	log_warn("part %u frag %u on %s: no answer in %u ms", f->w->part, f->frag,
		 f->dev->node, f->w->st->write_deadline_ms);
	f->gen++;		/* the attempt's late answer is ignored */
	if (n)
		gw_node_failed(n, -ETIMEDOUT);
	f->gen--;
	wfrag_next(f, -ETIMEDOUT);
}

static void wfrag_try(struct gw_wfrag *f)
{
	struct gw_wset *w = f->w;
	struct wattempt *a;
	struct gw_node *n;

	for (;;) {
		n = dev_node(w->st, f->dev);
		if (n && !gw_node_is_down(n))
			break;
		if (w->next_hand >= w->nhand) {
			wset_frag_done(f, -EHOSTUNREACH);
			return;
		}
		f->dev = w->hand[w->next_hand++];
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		wset_frag_done(f, -ENOMEM);
		return;
	}
	a->f = f;
	a->gen = f->gen;
	a->node = n;
	w->refs++;
	if (w->st->write_deadline_ms)
		uv_timer_start(&f->timer, wfrag_on_timeout, w->st->write_deadline_ms, 0);
	gw_node_acquire(n, wfrag_on_client, a);
}

struct gw_wset *gw_wset_new(struct gw_store *st, const struct ring *ring,
			    uint32_t part, const uint8_t name[STO_NAME_HASH_LEN],
			    unsigned n_override, bool is_delete, uint64_t ts,
			    gw_wset_fn done, void *arg)
{
	struct gw_wset *w = calloc(1, sizeof(*w));
	unsigned n = ring_placements(ring);

	if (!w)
		return NULL;
	st->live++;
	w->st = st;
	w->ring = ring_get(ring);	/* (and its devices in prim, hand, f) */
	w->part = part;
	memcpy(w->name, name, STO_NAME_HASH_LEN);
	w->is_delete = is_delete;
	w->ts = ts;
	w->done = done;
	w->arg = arg;
	ring_primaries(ring, part, w->prim, n);
	w->nhand = ring_handoffs(ring, part, w->hand, GW_MAX_HANDOFFS);
	w->n = n_override && n_override < n ? n_override : n;
	w->refs = 1;
	uv_timer_init(st->loop, &w->fin);
	w->fin.data = w;
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].w = w;
		w->f[i].idx = i;
		/* EC: the policy's fragment numbers (ring_frag_id); replicas: i,
		 * which their callers set to 0 */
		w->f[i].frag = ring_policy(ring)->type == RING_POLICY_EC ?
			       ring_frag_id(ring_policy(ring), i) : i;
		w->f[i].dev = w->prim[i];
		uv_timer_init(st->loop, &w->f[i].timer);
		w->f[i].timer.data = &w->f[i];
	}
	return w;
}

void gw_wset_start(struct gw_wset *w)
{
	w->pending = w->n;
	w->refs++;		/* no completion inside this call frees w */
	for (unsigned i = 0; i < w->n; i++) {
		if (!w->is_delete)
			w->f[i].crc = sto_crc32c(0, w->f[i].iov.iov_base,
						 w->f[i].iov.iov_len);
		wfrag_try(&w->f[i]);
	}
	wset_put(w);
}

/* ----------------------------------------------------------- head lookup */

#define HL_MAX	(RING_MAX_PLACEMENTS + GW_MAX_HANDOFFS)
#define HL_PREV_MAX	RING_MAX_PLACEMENTS	/* previous holders asked too */

struct gw_hlook {
	struct gw_store *st;
	uint32_t part, frag;
	uint8_t name[STO_NAME_HASH_LEN];
	const struct ring *ring, *prev;	/* referenced: t[] borrows from them */
	const struct ring_dev *t[HL_MAX + HL_PREV_MAX];
	sto_client *cl[HL_MAX + HL_PREV_MAX];	/* HEAD pending on this client */
	bool answered[HL_MAX + HL_PREV_MAX];
	unsigned nt, nprim, nanswered, nprim_answered, nlive, nerr, rounds;
	unsigned nold, nold_answered;	/* previous ring's holders (rebalance) */
	unsigned refs;
	bool finished;
	struct gw_hlook_result res;
	uv_timer_t timer;
	gw_hlook_fn cb;
	void *arg;
};

struct hattempt {
	struct gw_hlook *h;
	unsigned i;
};

static void hl_closed(uv_handle_t *hd)
{
	struct gw_hlook *h = hd->data;

	h->st->live--;
	ring_put(h->ring);
	ring_put(h->prev);
	free(h->res.meta);
	free(h);
}

static void hl_put(struct gw_hlook *h)
{
	if (--h->refs == 0)
		uv_close((uv_handle_t *)&h->timer, hl_closed);
}

static void hl_finish(struct gw_hlook *h)
{
	h->finished = true;
	if (h->nlive)
		h->res.status = 0;
	else if (h->res.ts || h->nanswered > h->nerr)
		h->res.status = -ENOENT;
	else
		h->res.status = h->nerr ? -EIO : -ETIMEDOUT;
	uv_timer_stop(&h->timer);
	h->cb(&h->res, h->arg);
	hl_put(h);	/* the lookup's own reference, held until finished */
}

static bool hl_enough(const struct gw_hlook *h)
{
	/* A live copy, or a majority of the primaries agree there is none (and,
	 * during a rebalance, the holders of the previous placement, where a
	 * copy not moved yet still is). */
	return h->nlive > 0 || (h->nprim_answered * 2 > h->nprim &&
				h->nold_answered == h->nold);
}

static void hl_on_timer(uv_timer_t *t)
{
	struct gw_hlook *h = t->data;

	if (h->finished)
		return;
	/* Targets still silent: a hung node is marked down now (its HEAD
	 * fails at once), so the next requests skip it. */
	for (unsigned i = 0; i < h->nt && h->nanswered < h->nt; i++) {
		struct gw_node *n;

		if (h->answered[i] || !h->cl[i] || !(n = dev_node(h->st, h->t[i])))
			continue;
		gw_node_check(n, h->st->read_deadline_ms);
	}
	if (h->nanswered == h->nt || hl_enough(h) || ++h->rounds >= 3) {
		hl_finish(h);
		return;
	}
	uv_timer_start(&h->timer, hl_on_timer, h->st->read_deadline_ms, 0);
}

static void hl_answer(struct gw_hlook *h, unsigned i, int status,
		      const struct sto_info *info)
{
	struct gw_node *n = dev_node(h->st, h->t[i]);

	log_debug("hlook part %u target %u: %d", h->part, i, status);
	h->cl[i] = NULL;
	if (h->finished || h->answered[i])
		return;
	h->answered[i] = true;
	h->nanswered++;
	if (i >= h->nt - h->nold)
		h->nold_answered++;
	if (status == 0 || status == -ENOENT) {
		if (i < h->nprim)
			h->nprim_answered++;
		if (n)
			gw_node_ok(n);
	} else {
		h->nerr++;
		if (n)
			gw_node_failed(n, status);
	}
	if (info && (status == 0 || (status == -ENOENT && info->tombstone))) {
		bool live = status == 0;

		if (info->timestamp > h->res.ts) {
			free(h->res.meta);
			h->res.meta = NULL;
			h->res.meta_len = 0;
			h->res.ts = info->timestamp;
			h->res.tombstone = !live;
			h->res.nholders = 0;
			h->nlive = 0;
			if (live && info->meta_len) {
				h->res.meta = malloc(info->meta_len);
				if (h->res.meta) {
					memcpy(h->res.meta, info->meta, info->meta_len);
					h->res.meta_len = info->meta_len;
				}
			}
		}
		if (info->timestamp == h->res.ts && live && !h->res.tombstone &&
		    h->res.nholders < ARRAY_SIZE(h->res.holders)) {
			h->res.holders[h->res.nholders++] = h->t[i];
			h->nlive++;
		}
	}
	if (h->nanswered == h->nt)
		uv_timer_start(&h->timer, hl_on_timer, 0, 0);
}

static void hl_on_done(void *arg, int status, const struct sto_info *info)
{
	struct hattempt *a = arg;

	hl_answer(a->h, a->i, status, info);
	hl_put(a->h);
	free(a);
}

static void hl_on_client(void *arg, sto_client *c, int err)
{
	struct hattempt *a = arg;
	struct gw_hlook *h = a->h;
	struct sto_key k = { .part = h->part, .frag = h->frag };

	if (!err && !h->finished) {
		memcpy(k.name, h->name, sizeof(k.name));
		err = sto_head(c, &k, hl_on_done, a);
		if (!err) {
			h->cl[a->i] = c;
			return;
		}
	}
	hl_answer(h, a->i, err ? err : -ECANCELED, NULL);
	hl_put(h);
	free(a);
}

/* A rebalance under way: the previous ring's holders of part that are not
 * asked already (by device id: ids are stable across rebalances). */
static void hl_add_prev(struct gw_hlook *h, const struct ring *prev, uint32_t part)
{
	const struct ring_dev *old[RING_MAX_PLACEMENTS];
	unsigned n;

	if (!prev || part >= ring_parts(prev))
		return;
	n = ring_primaries(prev, part, old, ring_placements(prev));
	for (unsigned i = 0; i < n && h->nold < HL_PREV_MAX; i++) {
		bool asked = false;

		for (unsigned j = 0; j < h->nt; j++)
			asked |= h->t[j]->id == old[i]->id;
		if (asked)
			continue;
		h->t[h->nt++] = old[i];
		h->nold++;
	}
}

int gw_hlook_start(struct gw_store *st, const struct ring *ring, uint32_t part,
		   const uint8_t name[STO_NAME_HASH_LEN], uint32_t frag,
		   gw_hlook_fn cb, void *arg)
{
	struct gw_hlook *h = calloc(1, sizeof(*h));
	unsigned np = ring_placements(ring);

	if (!h)
		return -ENOMEM;
	st->live++;
	h->st = st;
	h->part = part;
	h->frag = frag;
	memcpy(h->name, name, STO_NAME_HASH_LEN);
	h->cb = cb;
	h->arg = arg;
	h->ring = ring_get(ring);
	h->prev = ring_get(gw_store_prev(st, ring));
	h->nprim = ring_primaries(ring, part, h->t, np);
	/* Two handoffs: where writes went while a primary was down. */
	h->nt = h->nprim + ring_handoffs(ring, part, h->t + h->nprim, 2);
	hl_add_prev(h, h->prev, part);
	h->refs = 1;
	uv_timer_init(st->loop, &h->timer);
	h->timer.data = h;
	uv_timer_start(&h->timer, hl_on_timer, st->read_deadline_ms, 0);
	for (unsigned i = 0; i < h->nt; i++) {
		struct hattempt *a = calloc(1, sizeof(*a));
		struct gw_node *n = dev_node(st, h->t[i]);

		if (!a || !n) {
			free(a);
			hl_answer(h, i, -ENOMEM, NULL);
			continue;
		}
		a->h = h;
		a->i = i;
		h->refs++;
		gw_node_acquire_read(n, hl_on_client, a);
	}
	return 0;
}

/* ------------------------------------------------------------ single read */

struct gw_read {
	struct gw_store *st;
	struct gw_node *node;
	sto_client *c;			/* while the GET is pending on it */
	uint64_t req_id;
	uint8_t *buf;
	size_t cap, got;
	uint64_t ts;
	int status;
	bool delivered, soon, slow;
	unsigned waits;			/* deadlines passed while the node moved */
	unsigned refs;
	uv_timer_t timer;
	struct sto_key k;
	uint64_t off, len;
	gw_read_fn cb;
	void *arg;
};

static void rd_closed(uv_handle_t *h)
{
	struct gw_read *r = h->data;

	r->st->live--;
	free(r);
}

static void rd_put(struct gw_read *r)
{
	if (--r->refs == 0)
		uv_close((uv_handle_t *)&r->timer, rd_closed);
}

/* The payload may no longer land in r->buf. */
static void rd_unbind(struct gw_read *r)
{
	if (r->c && r->buf)
		sto_get_unbind(r->c, r->req_id);
	r->buf = NULL;
}

static void rd_deliver(struct gw_read *r, int status)
{
	if (r->delivered)
		return;
	r->delivered = true;
	rd_unbind(r);
	uv_timer_stop(&r->timer);
	r->cb(r->arg, status, r->ts, r->got);
}

static void rd_on_timer(uv_timer_t *t)
{
	struct gw_read *r = t->data;
	int st;

	if (r->soon) {
		r->soon = false;
		rd_deliver(r, r->status);
		rd_put(r);
		return;
	}
	if (r->delivered)
		return;
	/* Late, but is the node moving? A gateway or node that is merely busy
	 * still streams (other requests' bytes arrive): asking parity too would
	 * add 50% more reads to an overloaded path, so the read waits, up to
	 * GW_READ_MAX_WAITS deadlines (then head-of-line behind a slow disk is
	 * likelier). A silent node is hedged at once; a hung one is marked
	 * down, which fails this read now (the caller asks parity) and makes
	 * later requests skip the node until its down period ends. */
	r->waits++;
	st = r->c ? gw_node_check(r->node, r->st->read_deadline_ms)
		  : GW_NODE_SILENT;	/* still connecting */
	if (r->delivered)
		return;			/* failed with the dropped connection */
	if (!r->slow && (st != GW_NODE_MOVING || r->waits >= GW_READ_MAX_WAITS)) {
		log_debug("read part %u frag %u: no answer in %u ms", r->k.part,
			  r->k.frag, r->st->read_deadline_ms * r->waits);
		r->slow = true;
		r->cb(r->arg, GW_READ_SLOW, 0, 0);
		if (r->delivered)
			return;
	}
	/* Keep watching: the hung verdict comes later than the hedge. */
	if (r->c)
		uv_timer_start(&r->timer, rd_on_timer, r->st->read_deadline_ms, 0);
}

void gw_read_abandon(struct gw_read *r)
{
	r->delivered = true;
	rd_unbind(r);
	uv_timer_stop(&r->timer);
	if (r->soon) {
		r->soon = false;
		rd_put(r);
	}
}

static void rd_fail_soon(struct gw_read *r, int status)
{
	r->status = status;
	r->soon = true;
	r->refs++;
	uv_timer_start(&r->timer, rd_on_timer, 0, 0);
}

static void rd_on_done(void *arg, int status, const struct sto_info *info)
{
	struct gw_read *r = arg;

	r->c = NULL;		/* the client is done with r->buf */
	if (info) {
		r->ts = info->timestamp;
		if (status == 0)
			r->got = info->length;	/* landed in r->buf */
	}
	if (r->node) {
		if (status == 0)
			gw_node_ok(r->node);
		else if (!r->delivered)
			gw_node_failed(r->node, status);
	}
	rd_deliver(r, status ? status : r->status);
	rd_put(r);
}

static void rd_on_client(void *arg, sto_client *c, int err)
{
	struct gw_read *r = arg;

	if (!err && !r->delivered) {
		err = sto_get_into(c, &r->k, r->off, r->len, r->buf, r->cap,
				   rd_on_done, r, &r->req_id);
		if (!err) {
			r->c = c;
			return;
		}
	}
	if (!r->delivered)
		rd_fail_soon(r, err ? err : -ECANCELED);
	rd_put(r);
}

int gw_read_start(struct gw_store *st, const struct ring_dev *dev,
		  const struct sto_key *k, uint64_t off, uint64_t len,
		  uint8_t *buf, size_t cap, gw_read_fn cb, void *arg,
		  struct gw_read **out)
{
	struct gw_read *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	if (out)
		*out = r;
	st->live++;
	r->st = st;
	r->node = dev ? dev_node(st, dev) : NULL;
	r->buf = buf;
	r->cap = cap;
	r->k = *k;
	r->off = off;
	r->len = len;
	r->cb = cb;
	r->arg = arg;
	r->refs = 1;		/* this call's */
	uv_timer_init(st->loop, &r->timer);
	r->timer.data = r;
	if (!r->node) {
		rd_fail_soon(r, -EINVAL);
		rd_put(r);
		return 0;
	}
	uv_timer_start(&r->timer, rd_on_timer, st->read_deadline_ms, 0);
	r->refs++;		/* the client callback's */
	gw_node_acquire_read(r->node, rd_on_client, r);
	rd_put(r);
	return 0;
}

/* ------------------------------------------------------------- SET_TIER */

/* One fragment's SET_TIER on one device, within the write deadline (a
 * stalled node fails it, it does not stall the caller). */
struct gw_tierset {
	struct gw_store *st;
	struct gw_node *node;
	struct sto_key k;
	uint64_t ts;
	struct sto_put_opts o;
	uv_timer_t timer;
	unsigned refs;			/* the request, the timer's close */
	bool answered;
	gw_tierset_fn cb;
	void *arg;
};

static void ts_put(struct gw_tierset *t)
{
	if (--t->refs)
		return;
	t->st->live--;
	free(t);
}

static void ts_closed(uv_handle_t *h)
{
	ts_put(h->data);
}

static void ts_answer(struct gw_tierset *t, int status)
{
	if (t->answered)
		return;
	t->answered = true;
	uv_close((uv_handle_t *)&t->timer, ts_closed);
	t->cb(t->arg, status);
}

static void ts_on_done(void *arg, int status, const struct sto_info *info)
{
	struct gw_tierset *t = arg;

	(void)info;
	if (status == 0 || status == -ENOENT || status == STO_ECONFLICT)
		gw_node_ok(t->node);
	else
		gw_node_failed(t->node, status);
	ts_answer(t, status);
	ts_put(t);
}

static void ts_on_client(void *arg, sto_client *c, int err)
{
	struct gw_tierset *t = arg;

	if (!err && !t->answered) {
		err = sto_set_tier(c, &t->k, t->ts, &t->o, ts_on_done, t);
		if (!err)
			return;
	}
	ts_answer(t, err ? err : -ECANCELED);
	ts_put(t);
}

static void ts_on_timeout(uv_timer_t *h)
{
	struct gw_tierset *t = h->data;

	ts_answer(t, -ETIMEDOUT);	/* a late answer is dropped */
}

int gw_tierset_start(struct gw_store *st, const struct ring_dev *dev,
		     const struct sto_key *k, uint64_t ts, const struct sto_put_opts *o,
		     gw_tierset_fn cb, void *arg)
{
	struct gw_node *n = dev_node(st, dev);
	struct gw_tierset *t;

	if (!n)
		return -ENOMEM;
	if (gw_node_is_down(n))
		return -EHOSTDOWN;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->st = st;
	t->node = n;
	t->k = *k;
	t->ts = ts;
	t->o = *o;
	t->cb = cb;
	t->arg = arg;
	t->refs = 2;
	uv_timer_init(st->loop, &t->timer);
	t->timer.data = t;
	uv_timer_start(&t->timer, ts_on_timeout,
		       st->write_deadline_ms ? st->write_deadline_ms : 10000, 0);
	st->live++;
	gw_node_acquire(n, ts_on_client, t);
	return 0;
}
