/* storage/tier.c: the hot/cold mover of one storage node.
 *
 * Every scan_interval an index scan on a worker thread (its own LMDB read
 * transaction) counts fragments, bytes and access ages per medium and picks
 * what should move: hot fragments unread for longer than their cold_after,
 * COLD ones on hot unread for a promotion window, PIN_COLD fragments still
 * on hot, PIN_HOT ones on cold, and - when hot passes the high watermark -
 * the longest-unread hot fragments until the low watermark. Promotions come
 * from reads: a cold fragment read promote_reads times within promote_window
 * is queued (ahead of the scan's list).
 *
 * On the loop, one fragment moves at a time, within the byte and fragment
 * rate caps (token buckets refilled by the engine's 250 ms timer): its
 * pieces are read through the engine's io_uring (sto_read: chunk CRCs
 * verified) and fed to a copy on the other medium (sto_move_begin: a record
 * flagged STO_REC_COPY, fdatasynced), which is committed as a conditional
 * STO_IDX_MOVE in one LMDB transaction (only if the index still points at
 * the source: a PUT or DELETE racing with it wins) that also counts the
 * source record dead for compaction. A crash before that commit leaves the
 * copy unreferenced; the start-up replay sees its COPY flag and counts it
 * dead. Nothing here blocks the loop: the scan runs on the threadpool, every
 * byte moves through io_uring.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TIER_MAX_CANDS		65536	/* hot fragments a scan keeps (oldest) */
#define TIER_MAX_PROMOTE	1024	/* queued promotions */
#define TIER_HEAT_SLOTS		4096	/* cold fragments whose reads are counted */
#define TIER_MOVES_INFLIGHT	16	/* moves at once (their syncs and commits batch) */

/* Age histogram bucket bounds, seconds. */
static const uint64_t hist_bounds[STO_TIER_HIST] = {
	10, 60, 600, 3600, 86400, 7 * 86400, 30 * 86400, UINT64_MAX,
};

struct tier_job {
	struct sto_key key;
	struct sto_loc loc;		/* where the scan (or the read) saw it */
	uint8_t to;			/* destination medium */
};

struct tier_heat {			/* reads of one cold fragment */
	struct sto_key key;
	uint64_t window_start;		/* seconds */
	uint32_t reads;
	bool used;
};

struct tier_scan {
	uv_work_t work;
	struct sto_tier *t;
	struct sto_tier_cfg cfg;
	uint64_t now, hot_cap;
	bool have_cold;
	uint64_t objects[2], bytes[2], hist[2][STO_TIER_HIST];
	struct tier_job *cands;		/* hot, movable: the oldest kept */
	size_t n, cap;
	uint64_t cutoff;		/* once trimmed: atimes >= this are dropped */
	struct tier_job *forced;	/* must move whatever their age */
	size_t nforced, capforced;
	bool over;			/* hot above the high watermark */
	int status;
};

struct sto_tier {
	struct sto_engine *e;
	struct sto_tier_cfg cfg;
	bool stopped, scanning;
	bool hot_over;			/* last scan: above the high watermark */
	uint64_t last_scan_ns, last_tick_ns, scan_done_ns;
	/* The last scan's view. */
	uint64_t objects[2], bytes[2], hist[2][STO_TIER_HIST];
	uint64_t scans;
	/* Work: promotions first, then the scan's list (oldest first). */
	struct tier_job *moves;
	size_t nmoves, next_move;
	struct tier_job promote[TIER_MAX_PROMOTE];
	size_t npromote;
	struct tier_heat heat[TIER_HEAT_SLOTS];
	/* Rate caps: tokens, refilled per tick, at most one second's worth. */
	double tok_bytes, tok_ops;
	uint8_t *meta;			/* STO_MAX_META: lookups */
	unsigned moving;		/* moves in flight */
	struct tier_mv *mv[TIER_MOVES_INFLIGHT];	/* ... which ones */
};

/* One move in flight: the source's pieces are read and fed to the copy. */
struct tier_mv {
	struct sto_tier *t;
	struct tier_job cur;
	struct sto_put *p;
	uint64_t pos;			/* fragment bytes fed so far */
	const uint8_t *pending;		/* read, not yet fed */
	size_t pending_len;
	void *pending_buf;
	bool feeding, put_finished;
	int put_status;
	uint8_t meta[];			/* cur.loc.meta_len bytes */
};

static uint64_t now_s(void)
{
	return strata_wall_ns() / 1000000000ull;
}

static bool same_loc(const struct sto_loc *a, const struct sto_loc *b)
{
	return a->medium == b->medium && a->dir == b->dir && a->vol == b->vol &&
	       a->off == b->off && a->ts == b->ts;
}

/* ----------------------------------------------------------------- scan */

static int job_cmp(const void *a, const void *b)
{
	const struct tier_job *x = a, *y = b;

	return x->loc.atime < y->loc.atime ? -1 : x->loc.atime > y->loc.atime;
}

static int push(struct tier_job **v, size_t *n, size_t *cap, const struct sto_key *k,
		const struct sto_loc *l, uint8_t to)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct tier_job *nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = (struct tier_job){ .key = *k, .loc = *l, .to = to };
	return 0;
}

static int scan_entry(void *arg, const struct sto_key *k, const struct sto_loc *l)
{
	struct tier_scan *s = arg;
	unsigned m = l->medium & 1;
	uint64_t age;
	int i;

	s->objects[m]++;
	s->bytes[m] += sto_rec_len(l->meta_len, l->size);
	if (l->flags & STO_LOC_TOMBSTONE)
		return 0;
	age = s->now > l->atime ? s->now - l->atime : 0;
	for (i = 0; i < STO_TIER_HIST - 1 && age >= hist_bounds[i]; i++)
		;
	s->hist[m][i]++;
	if (!s->have_cold)
		return 0;
	if (m == STO_MEDIUM_HOT && l->tier == STO_TIER_PIN_COLD)
		return push(&s->forced, &s->nforced, &s->capforced, k, l, STO_MEDIUM_COLD);
	if (m == STO_MEDIUM_COLD && l->tier == STO_TIER_PIN_HOT)
		return push(&s->forced, &s->nforced, &s->capforced, k, l, STO_MEDIUM_HOT);
	if (m != STO_MEDIUM_HOT || l->tier == STO_TIER_PIN_HOT)
		return 0;
	if (s->cutoff && l->atime >= s->cutoff)
		return 0;
	if (s->n == TIER_MAX_CANDS) {
		/* Keep the older half: what watermark eviction wants first,
		 * and every expired fragment older than the rest. */
		qsort(s->cands, s->n, sizeof(*s->cands), job_cmp);
		s->n = TIER_MAX_CANDS / 2;
		s->cutoff = s->cands[s->n].loc.atime;
		if (l->atime >= s->cutoff)
			return 0;
	}
	return push(&s->cands, &s->n, &s->cap, k, l, STO_MEDIUM_COLD);
}

static void scan_work(uv_work_t *w)
{
	struct tier_scan *s = w->data;
	uint64_t hot = 0, target = 0;
	bool over = false;
	size_t keep = 0;

	s->status = sto_idx_walk(sto_engine_idx(s->t->e), scan_entry, s);
	if (s->status < 0)
		return;
	if (s->n)
		qsort(s->cands, s->n, sizeof(*s->cands), job_cmp);
	hot = s->bytes[STO_MEDIUM_HOT];
	if (s->hot_cap && s->cfg.high_pct &&
	    hot * 100 > s->hot_cap * s->cfg.high_pct) {
		over = s->over = true;
		target = s->hot_cap * s->cfg.low_pct / 100;
	}
	/* Oldest first: expired ones, then (over the high mark) the
	 * longest-unread until the low mark. */
	for (size_t i = 0; i < s->n; i++) {
		const struct sto_loc *l = &s->cands[i].loc;
		uint64_t after = l->cold_after ? l->cold_after : s->cfg.cold_after;
		bool expired = after && s->now >= l->atime + after;

		/* COLD on hot: landed there for want of cold room, set COLD
		 * since (SET_TIER: a lifecycle transition), or promoted by
		 * reads. Down once unread for a promotion window (at once
		 * when nothing promotes), or its own cold_after if shorter. */
		if (l->tier == STO_TIER_COLD) {
			after = s->cfg.promote_reads ? s->cfg.promote_window : 0;
			if (l->cold_after && l->cold_after < after)
				after = l->cold_after;
			expired = s->now >= l->atime + after;
		}

		if (expired || (over && hot > target)) {
			s->cands[keep++] = s->cands[i];
			hot -= sto_rec_len(l->meta_len, l->size);
		}
	}
	s->n = keep;
}

static void scan_after(uv_work_t *w, int status)
{
	struct tier_scan *s = w->data;
	struct sto_tier *t = s->t;

	t->scanning = false;
	t->scan_done_ns = strata_now_ns();
	if (s->status < 0) {
		log_warn("tier scan: %s", sto_strerror(s->status));
	} else {
		memcpy(t->objects, s->objects, sizeof(t->objects));
		memcpy(t->bytes, s->bytes, sizeof(t->bytes));
		memcpy(t->hist, s->hist, sizeof(t->hist));
		t->hot_over = s->over;
		t->scans++;
		{
			/* The new list replaces what is left of the old one. */
			size_t n = s->nforced + s->n;
			struct tier_job *v = n ? malloc(n * sizeof(*v)) : NULL;

			if (n && !v) {
				log_warn("tier scan: out of memory for %zu moves", n);
				n = 0;
			}
			if (n && s->nforced)
				memcpy(v, s->forced, s->nforced * sizeof(*v));
			if (n && s->n)
				memcpy(v + s->nforced, s->cands, s->n * sizeof(*v));
			free(t->moves);
			t->moves = v;
			t->nmoves = n;
			t->next_move = 0;
			if (n)
				log_debug("tier scan: %zu to move (%zu forced)", n, s->nforced);
		}
	}
	free(s->cands);
	free(s->forced);
	free(s);
	sto_engine_release(t->e);
}

static void scan_start(struct sto_tier *t)
{
	struct tier_scan *s = calloc(1, sizeof(*s));
	struct sto_stat st;

	if (!s)
		return;
	s->t = t;
	s->cfg = t->cfg;
	s->now = now_s();
	s->have_cold = !t->cfg.off && sto_engine_ndirs(t->e, STO_MEDIUM_COLD) > 0;
	s->hot_cap = t->cfg.hot_capacity;
	if (!s->hot_cap && t->cfg.high_pct) {
		/* The hot file systems' size (statvfs, refreshed by the engine). */
		memset(&st, 0, sizeof(st));
		sto_engine_stat(t->e, &st);
		s->hot_cap = st.media[STO_MEDIUM_HOT].capacity_bytes;
	}
	s->work.data = s;
	t->scanning = true;
	t->last_scan_ns = strata_now_ns();
	sto_engine_hold(t->e);
	uv_queue_work(sto_engine_loop(t->e), &s->work, scan_work, scan_after);
}

/* ----------------------------------------------------------------- move */

static void pump(struct sto_tier *t);
static void mv_read_piece(struct tier_mv *m);

/* Frees m and its slot, releasing the engine hold of its move. */
static void mv_free(struct tier_mv *m)
{
	struct sto_tier *t = m->t;

	for (unsigned i = 0; i < TIER_MOVES_INFLIGHT; i++)
		if (t->mv[i] == m)
			t->mv[i] = NULL;
	free(m);
	t->moving--;
	sto_engine_release(t->e);
}

static void mv_end(struct tier_mv *m, int status)
{
	struct sto_tier *t = m->t;
	struct sto_stat *st = sto_engine_counters(t->e);
	uint64_t n = sto_rec_len(m->cur.loc.meta_len, m->cur.loc.size);

	free(m->pending_buf);
	if (status == 0 && m->cur.to == STO_MEDIUM_COLD) {
		st->tier.moved_down_objects++;
		st->tier.moved_down_bytes += n;
	} else if (status == 0) {
		st->tier.moved_up_objects++;
		st->tier.moved_up_bytes += n;
	} else if (status != -ENOENT) {
		/* -ENOENT: it changed meanwhile (a newer PUT, a DELETE). */
		st->tier.move_failures++;
		log_warn("tier move of part %u frag %u to %s: %s", m->cur.key.part,
			 m->cur.key.frag, m->cur.to ? "cold" : "hot", sto_strerror(status));
	}
	mv_free(m);
	if (!t->stopped)
		pump(t);
}

static void mv_feed(struct tier_mv *m)
{
	m->feeding = true;
	while (m->pending_len && !m->put_finished) {
		void *b;
		size_t cap, n;
		int ret = sto_put_buf(m->p, &b, &cap);

		if (ret == -EAGAIN)
			break;		/* mv_resume runs when there is room */
		if (ret < 0) {
			sto_put_abort(m->p);
			m->put_finished = true;
			m->put_status = ret;
			break;
		}
		n = cap < m->pending_len ? cap : m->pending_len;
		memcpy(b, m->pending, n);
		m->pending += n;
		m->pending_len -= n;
		m->pos += n;
		sto_put_fill(m->p, n);	/* may finish the copy */
	}
	m->feeding = false;
	if (m->put_finished) {
		mv_end(m, m->put_status);
		return;
	}
	if (m->pending_len)
		return;
	free(m->pending_buf);
	m->pending_buf = NULL;
	if (m->pos < m->cur.loc.size)
		mv_read_piece(m);
	/* else: all fed; mv_put_done once the move is durable in the index */
}

static void mv_read_done(void *arg, int status, const uint8_t *data, size_t len,
			 void *buf)
{
	struct tier_mv *m = arg;

	if (status < 0) {
		/* A bad record is quarantined by the read; nothing to move. */
		sto_put_abort(m->p);
		mv_end(m, status);
		return;
	}
	m->pending = data;
	m->pending_len = len;
	m->pending_buf = buf;
	mv_feed(m);
}

static void mv_read_piece(struct tier_mv *m)
{
	uint64_t n = m->cur.loc.size - m->pos;
	int ret;

	if (n > STO_READ_PIECE)
		n = STO_READ_PIECE;
	ret = sto_read(m->t->e, &m->cur.key, &m->cur.loc, m->pos, n, mv_read_done, m);
	if (ret < 0) {
		sto_put_abort(m->p);
		mv_end(m, ret);
	}
}

static void mv_resume(void *arg)
{
	mv_feed(arg);
}

static void mv_put_done(void *arg, int status, const struct sto_loc *loc)
{
	struct tier_mv *m = arg;

	if (m->feeding) {		/* inside mv_feed: it finishes up */
		m->put_finished = true;
		m->put_status = status;
		return;
	}
	mv_end(m, status);
}

/* Starts moving j, unless it changed since it was seen. */
static void mv_start(struct sto_tier *t, const struct tier_job *j)
{
	struct sto_loc l, from;
	struct tier_mv *m;
	int ret;

	/* A newer scan (or a promotion) may list a fragment whose move is
	 * still in flight: one copy at a time. */
	for (unsigned i = 0; i < TIER_MOVES_INFLIGHT; i++)
		if (t->mv[i] && !memcmp(&t->mv[i]->cur.key, &j->key, sizeof(j->key)))
			return;
	if (sto_engine_peek(t->e, &j->key, &l, t->meta) < 0 ||
	    (l.flags & STO_LOC_TOMBSTONE) || !same_loc(&l, &j->loc) ||
	    l.tier != j->loc.tier || l.medium == j->to)
		return;
	m = calloc(1, sizeof(*m) + l.meta_len + 1);
	if (!m)
		return;
	memcpy(m->meta, t->meta, l.meta_len);
	m->t = t;
	m->cur = *j;
	m->cur.loc = l;
	from = l;
	if (j->to == STO_MEDIUM_HOT)
		from.atime = now_s();	/* promoted because it is being read */
	t->moving++;
	for (unsigned i = 0; i < TIER_MOVES_INFLIGHT; i++)
		if (!t->mv[i]) {
			t->mv[i] = m;
			break;
		}
	sto_engine_hold(t->e);
	t->tok_bytes -= (double)sto_rec_len(l.meta_len, l.size);
	t->tok_ops -= 1;
	ret = sto_move_begin(t->e, &j->key, &from, m->meta, j->to, mv_put_done,
			     mv_resume, m, &m->p);
	if (ret < 0) {
		mv_free(m);
		sto_engine_counters(t->e)->tier.move_failures++;
		if (ret != -ENOSPC)
			log_warn("tier move: %s", sto_strerror(ret));
		return;
	}
	if (l.size)
		mv_read_piece(m);
	/* else: the header-only copy is already on its way */
}

static bool tokens_ok(const struct sto_tier *t)
{
	return (!t->cfg.rate_bytes || t->tok_bytes > 0) &&
	       (!t->cfg.rate_ops || t->tok_ops >= 1);
}

/* Moves run TIER_MOVES_INFLIGHT at a time: each one waits for its copy's
 * fdatasync and its index commit, which concurrent moves share. */
static void pump(struct sto_tier *t)
{
	while (t->moving < TIER_MOVES_INFLIGHT && !t->stopped &&
	       !sto_engine_closing(t->e) && tokens_ok(t)) {
		struct tier_job j;

		if (t->npromote)
			j = t->promote[--t->npromote];
		else if (t->next_move < t->nmoves)
			j = t->moves[t->next_move++];
		else
			return;
		mv_start(t, &j);
	}
}

/* ------------------------------------------------------------------ API */

int sto_tier_new(struct sto_engine *e, const struct sto_tier_cfg *cfg,
		 struct sto_tier **out)
{
	struct sto_tier *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->meta = malloc(STO_MAX_META);
	if (!t->meta) {
		free(t);
		return -ENOMEM;
	}
	t->e = e;
	t->cfg = *cfg;
	if (!t->cfg.scan_interval)
		t->cfg.scan_interval = 60;
	if (t->cfg.low_pct > t->cfg.high_pct)
		t->cfg.low_pct = t->cfg.high_pct;
	/* First scan soon after start (the counters in STAT come from it). */
	t->last_scan_ns = strata_now_ns() - (uint64_t)t->cfg.scan_interval * 1000000000ull +
			  500000000ull;
	t->last_tick_ns = strata_now_ns();
	*out = t;
	return 0;
}

void sto_tier_tick(struct sto_tier *t)
{
	uint64_t now = strata_now_ns();
	double dt = (double)(now - t->last_tick_ns) / 1e9;

	t->last_tick_ns = now;
	if (t->stopped)
		return;
	if (t->cfg.rate_bytes) {
		t->tok_bytes += dt * (double)t->cfg.rate_bytes;
		if (t->tok_bytes > (double)t->cfg.rate_bytes)
			t->tok_bytes = (double)t->cfg.rate_bytes;
	}
	if (t->cfg.rate_ops) {
		t->tok_ops += dt * t->cfg.rate_ops;
		if (t->tok_ops > t->cfg.rate_ops)
			t->tok_ops = t->cfg.rate_ops;
	}
	if (!t->scanning && now - t->last_scan_ns >= (uint64_t)t->cfg.scan_interval * 1000000000ull)
		scan_start(t);
	if (!t->cfg.off)
		pump(t);
}

void sto_tier_note_read(struct sto_tier *t, const struct sto_key *k,
			const struct sto_loc *loc)
{
	struct sto_stat *st = sto_engine_counters(t->e);
	struct tier_heat *h;
	uint64_t now;
	unsigned i;

	st->tier.reads[loc->medium & 1]++;
	if (loc->medium != STO_MEDIUM_COLD || !t->cfg.promote_reads || t->cfg.off ||
	    loc->tier == STO_TIER_PIN_COLD || t->stopped)
		return;
	/* Coarse heat: one slot per hash bucket; a collision restarts the
	 * count (a busy key keeps winning its slot back). */
	i = (k->part * 2654435761u ^ (uint32_t)k->name[0] << 24 ^ (uint32_t)k->name[1] << 16 ^
	     (uint32_t)k->name[2] << 8 ^ k->name[3] ^ k->frag * 40503u) % TIER_HEAT_SLOTS;
	h = &t->heat[i];
	now = now_s();
	if (!h->used || memcmp(&h->key, k, sizeof(*k)) ||
	    now >= h->window_start + t->cfg.promote_window) {
		h->used = true;
		h->key = *k;
		h->window_start = now;
		h->reads = 0;
	}
	/* Promoting while hot is over its high mark would only be undone by
	 * the next scan: keep counting, promote once there is room. */
	if (++h->reads < t->cfg.promote_reads || t->hot_over)
		return;
	h->used = false;
	if (t->npromote == TIER_MAX_PROMOTE)
		return;		/* the next reads queue it again */
	for (size_t j = 0; j < t->npromote; j++)
		if (!memcmp(&t->promote[j].key, k, sizeof(*k)))
			return;
	t->promote[t->npromote++] = (struct tier_job){ .key = *k, .loc = *loc,
						       .to = STO_MEDIUM_HOT };
	pump(t);
}

void sto_tier_stat(struct sto_tier *t, struct sto_tier_stat *st)
{
	memcpy(st->objects, t->objects, sizeof(st->objects));
	memcpy(st->bytes, t->bytes, sizeof(st->bytes));
	memcpy(st->hist, t->hist, sizeof(st->hist));
	memcpy(st->hist_bounds, hist_bounds, sizeof(st->hist_bounds));
	st->scans = t->scans;
	st->last_scan_age = t->scan_done_ns ? (strata_now_ns() - t->scan_done_ns) / 1000000000ull
					    : UINT64_MAX;
	memset(st->heat, 0, sizeof(st->heat));
	if (t->cfg.promote_reads) {
		uint64_t now = now_s();

		for (unsigned i = 0; i < TIER_HEAT_SLOTS; i++) {
			const struct tier_heat *h = &t->heat[i];
			unsigned b = 0;

			if (!h->used || !h->reads || now >= h->window_start + t->cfg.promote_window)
				continue;
			while (b < STO_TIER_HEAT - 1 && h->reads > (1u << b))
				b++;
			st->heat[b]++;
		}
	}
	st->pending_promotions = t->npromote;
	st->pending_moves = t->nmoves - t->next_move;
}

void sto_tier_stop(struct sto_tier *t)
{
	t->stopped = true;
}

void sto_tier_free(struct sto_tier *t)
{
	if (!t)
		return;
	free(t->moves);
	free(t->meta);
	free(t);
}
