/* repair.c: the repair engine (see repair.h for what it does).
 *
 * States. A pass walks every partition number (jobs, cfg.parallel at once):
 *
 *   JOB_LOCAL ──> JOB_PEERS ──> JOB_SUFFIX (one suffix at a time) ──> done
 *   (own suffix   (the other       LIST the suffix on every node that has
 *    hashes; a     placements'      it, group entries by name, plan: each
 *    handoff-only  suffix hashes;   repair becomes an item in the queue)
 *    partition     suffixes whose
 *    with nothing  hash vector is
 *    stops here)   unchanged since
 *                  it was last found
 *                  consistent are skipped
 *
 * Items wait in one priority queue (fewest surviving fragments first; then
 * plan order) and run cfg.inflight at once under the MB/s and ops/s token
 * buckets:
 *
 *   DELETE   tombstone at the newest timestamp
 *   COPY     GET the newest replica from a peer, PUT it here
 *   PUSH     GET handoff data from here, PUT (or tombstone) to a primary
 *   REBUILD  GET k (+1 to check) survivors of the newest version, ISA-L
 *            decode, verify, PUT here
 *
 * Every write carries the version's own timestamp, so a node's newest-wins
 * rule (STO_ECONFLICT for an equal or older one) makes a repair that raced
 * with a client write harmless. A pass ends when every job and item is
 * done; it is "clean" when it found nothing to repair and every node
 * answered, which is what full redundancy means for this node.
 */
#include "repair.h"

#include "common.h"
#include "ec.h"
#include "ring.h"
#include "storage.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* every placement of every ring, current and previous, and this node */
#define RP_MAX_NODES	(2 * REPAIR_MAX_RINGS * RING_MAX_PLACEMENTS + 1)
#define RP_QUEUE_MAX	32768		/* queued items; jobs wait beyond it */
#define RP_DOWN_NS	(1000ull * 1000 * 1000)	/* a failed peer is skipped 1 s */
#define RP_SUFFIXES	(1u << STO_SUFFIX_BITS)

struct repair;
struct lsync;

/* ------------------------------------------------------------- peers */

typedef void (*acquire_fn)(void *arg, sto_client *c, int err);

struct waiter {
	acquire_fn fn;
	void *arg;
	struct waiter *next;
};

struct peer {
	struct repair *r;
	char addr[RING_NAME_MAX + 1];
	char host[RING_NAME_MAX + 1];
	uint16_t port;
	sto_client *c;
	bool connected;
	uint64_t down_until;
	struct waiter *waiters;
	struct peer *next;
};

/* ------------------------------------------------------------- items */

/* IT_PURGE: drop this node's copy of data another node places, once that
 * node holds the version (or a newer one): pushed handoff data, or a
 * placement a rebalance moved away. */
enum item_kind { IT_DELETE, IT_COPY, IT_PUSH, IT_REBUILD, IT_PURGE };

struct item {
	enum item_kind kind;
	struct sto_key key;
	uint64_t ts, size;
	bool tomb;			/* PUSH of a tombstone */
	bool replicated;		/* COPY/PUSH of a rep record (must carry meta) */
	struct peer *src, *dst;
	unsigned k, m, prio;
	/* REBUILD: the policy's coder, and the fragment number of placement 0
	 * (ring_frag_id: placement i is fragment fbase | i) */
	struct gw_ec *ec;
	uint32_t fbase;
	uint32_t survivors;		/* REBUILD: placements of ts held somewhere */
	struct peer *fsrc[GW_EC_MAX_FRAGS];
	uint64_t seq;
	/* running */
	uint64_t t_start, t_write;	/* strata_now_ns(): the debug log's timings */
	struct repair *r;
	unsigned pending;
	int err;
	uint32_t asked, got;
	uint8_t *buf[GW_EC_MAX_FRAGS];
	uint64_t fill[GW_EC_MAX_FRAGS];
	uint32_t crc[GW_EC_MAX_FRAGS];
	uint8_t *meta;
	uint32_t meta_len;
	bool have_meta;
	struct sto_put_opts opts;	/* the source's tiering policy (EC: any
					 * survivor's; they were set together) */
	struct iovec iov;
};

/* --------------------------------------------------------------- jobs */

struct ent {
	uint8_t name[STO_NAME_HASH_LEN];
	uint32_t frag;
	uint64_t ts, size;
	bool tomb;
	uint16_t node;
};

enum job_state { JOB_LOCAL, JOB_PEERS, JOB_SUFFIX };

struct job {
	struct repair *r;
	enum job_state state;
	uint32_t part;
	unsigned n;			/* nodes[0] is this node */
	struct peer *nodes[RP_MAX_NODES];
	bool primary;			/* a placement of part in some ring */
	/* per ring: node index of placement i, or -1 (ring too small) */
	int prim[REPAIR_MAX_RINGS][RING_MAX_PLACEMENTS];
	/* the same in the previous ring (cfg.prev), -1 when none */
	int oprim[REPAIR_MAX_RINGS][RING_MAX_PLACEMENTS];
	struct sto_suffix_hash *sfx[RP_MAX_NODES];
	size_t nsfx[RP_MAX_NODES];
	bool ok[RP_MAX_NODES];		/* suffix hashes answered */
	bool lok[RP_MAX_NODES];		/* the current suffix's LIST answered */
	unsigned pending;
	uint32_t *todo;
	uint64_t *digest;
	size_t ntodo, itodo;
	struct ent *ents;
	size_t nents, cap;
	struct job *next;		/* blocked list */
};

struct memo {
	uint64_t key;			/* (part << 12 | suffix) + 1; 0 = empty */
	uint64_t digest;
};

struct repair {
	uv_loop_t *loop;
	struct repair_cfg cfg;
	struct peer *self, *peers;
	int rep_ring;			/* index in cfg.rings, or -1 */
	int8_t pol_ring[RING_MAX_POLICY + 1];	/* EC policy index -> cfg.rings, or -1 */
	struct gw_ec *ec[REPAIR_MAX_RINGS];	/* per EC ring */
	uint8_t no_ring_logged[(RING_MAX_POLICY + 1) / 8];	/* this pass */
	uint32_t parts_total, next_part;
	unsigned active_jobs;
	struct job *blocked;
	struct lsync *ls_wait;		/* listing syncs waiting for the buckets */
	/* queue: binary heap on (prio, seq) */
	struct item **heap;
	size_t nheap, capheap;
	uint64_t seq;
	unsigned inflight;
	double tok_bytes, tok_ops;
	uint64_t tok_ns;
	uv_timer_t tick, next_pass, wake;
	bool running, stopping, closed_tick, launching;
	unsigned open_handles;
	void (*done)(void *);
	void *done_arg;
	void (*stop_done)(void *);
	void *stop_arg;
	struct memo *memo;
	size_t nmemo, capmemo;
	struct repair_stats st;
	uint64_t rate_bytes_ns, rate_bytes;	/* for the MB/s in the status */
	double rate_mbps;		/* repair writes, last tick */
	uint64_t cur_wall_start;	/* this pass, ns since the epoch */
	/* ring switches (repair_set_ring): pend[g] waits for the next pass;
	 * own* say which of cfg.rings/cfg.prev the engine must free */
	struct ring *pend[REPAIR_MAX_RINGS];
	bool own[REPAIR_MAX_RINGS], own_prev[REPAIR_MAX_RINGS];
	/* The node's own STAT (auditor progress, purges), every few ticks,
	 * for the status file and `strata-admin repair status`. */
	struct sto_stat node_st;
	bool node_st_ok, node_st_busy;
	unsigned ticks;
};

static void dispatch(struct repair *r);
static void job_next_suffix(struct job *j);
static void maybe_pass_end(struct repair *r);
static void maybe_stopped(struct repair *r);

/* --------------------------------------------------------------- peers */

static struct peer *peer_get(struct repair *r, const char *addr)
{
	struct peer *p;
	const char *colon;
	unsigned long port;

	for (p = r->peers; p; p = p->next)
		if (!strcmp(p->addr, addr))
			return p;
	colon = strrchr(addr, ':');
	if (!colon || colon == addr || (size_t)(colon - addr) > RING_NAME_MAX)
		return NULL;
	port = strtoul(colon + 1, NULL, 10);
	if (port == 0 || port > 65535)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->r = r;
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	memcpy(p->host, addr, (size_t)(colon - addr));
	p->port = (uint16_t)port;
	p->next = r->peers;
	r->peers = p;
	return p;
}

static bool peer_is_down(const struct peer *p)
{
	return p->down_until > strata_now_ns();
}

static void peer_flush(struct peer *p, int err)
{
	struct waiter *w = p->waiters;

	p->waiters = NULL;
	while (w) {
		struct waiter *next = w->next;

		w->fn(w->arg, err ? NULL : p->c, err);
		free(w);
		w = next;
	}
}

/* The connection is gone (or never came): every later request reconnects
 * once the down period is over. Pending requests fail with STO_ECLOSED. */
static void peer_reset(struct peer *p, int err)
{
	sto_client *c = p->c;

	if (!c)
		return;
	p->c = NULL;
	p->connected = false;
	p->down_until = strata_now_ns() + RP_DOWN_NS;
	log_debug("%s: connection dropped (%s)", p->addr, sto_strerror(err));
	sto_client_close(c);
	peer_flush(p, err ? err : -ENOTCONN);
}

static void peer_connected(sto_client *c, int status, void *arg)
{
	struct peer *p = arg;

	if (c != p->c)
		return;		/* a connection dropped before it came up */
	if (status < 0) {
		peer_reset(p, status);
		return;
	}
	p->connected = true;
	peer_flush(p, 0);
}

/* fn(arg, client, 0) once connected, or fn(arg, NULL, err); maybe before
 * this returns. */
static void peer_acquire(struct peer *p, acquire_fn fn, void *arg)
{
	struct waiter *w;
	int ret;

	if (p->r->stopping) {
		fn(arg, NULL, -ECANCELED);
		return;
	}
	if (p->c && p->connected) {
		fn(arg, p->c, 0);
		return;
	}
	if (!p->c && peer_is_down(p)) {
		fn(arg, NULL, -EHOSTUNREACH);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		fn(arg, NULL, -ENOMEM);
		return;
	}
	w->fn = fn;
	w->arg = arg;
	w->next = p->waiters;
	p->waiters = w;
	if (p->c)
		return;
	ret = sto_client_connect(p->r->loop, p->host, p->port, peer_connected, p, &p->c);
	if (ret < 0) {
		p->c = NULL;
		p->down_until = strata_now_ns() + RP_DOWN_NS;
		peer_flush(p, ret);
	}
}

/* A request failed: connection-level errors drop the connection. */
static void peer_check(struct peer *p, int err)
{
	if (err == STO_ECLOSED || err == -ENOTCONN || err == STO_EPROTO ||
	    err == -ECONNRESET || err == -EPIPE)
		peer_reset(p, err);
}

/* --------------------------------------------------------------- memo */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static struct memo *memo_slot(struct repair *r, uint64_t key)
{
	size_t mask = r->capmemo - 1, i = mix64(key) & mask;

	while (r->memo[i].key && r->memo[i].key != key)
		i = (i + 1) & mask;
	return &r->memo[i];
}

static bool memo_same(struct repair *r, uint32_t part, uint32_t sfx, uint64_t digest)
{
	struct memo *m;

	if (!r->capmemo)
		return false;
	m = memo_slot(r, ((uint64_t)part << STO_SUFFIX_BITS | sfx) + 1);
	return m->key && m->digest == digest;
}

static void memo_set_key(struct repair *r, uint64_t key, uint64_t digest);

static void memo_set(struct repair *r, uint32_t part, uint32_t sfx, uint64_t digest)
{
	memo_set_key(r, ((uint64_t)part << STO_SUFFIX_BITS | sfx) + 1, digest);
}

static bool memo_same_key(struct repair *r, uint64_t key, uint64_t digest)
{
	struct memo *m;

	if (!r->capmemo)
		return false;
	m = memo_slot(r, key);
	return m->key && m->digest == digest;
}

static void memo_set_key(struct repair *r, uint64_t key, uint64_t digest)
{
	struct memo *m;

	if (r->nmemo * 2 >= r->capmemo) {
		size_t cap = r->capmemo ? r->capmemo * 2 : 4096;
		struct memo *old = r->memo, *nm = calloc(cap, sizeof(*nm));
		size_t ocap = r->capmemo;

		if (!nm)
			return;		/* no memo: the suffix is listed again */
		r->memo = nm;
		r->capmemo = cap;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].key)
				*memo_slot(r, old[i].key) = old[i];
		free(old);
	}
	m = memo_slot(r, key);
	if (!m->key)
		r->nmemo++;
	m->key = key;
	m->digest = digest;
}

/* -------------------------------------------------------------- queue */

static bool item_before(const struct item *a, const struct item *b)
{
	return a->prio != b->prio ? a->prio < b->prio : a->seq < b->seq;
}

static uint64_t item_bytes(const struct item *it)
{
	switch (it->kind) {
	case IT_DELETE:
	case IT_PURGE:	return 0;
	case IT_COPY:
	case IT_PUSH:	return it->tomb ? 0 : 2 * it->size;
	case IT_REBUILD: return (uint64_t)(it->k + 2) * it->size;
	}
	return 0;
}

static int queue_push(struct repair *r, struct item *it)
{
	size_t i;

	if (r->nheap == r->capheap) {
		size_t cap = r->capheap ? r->capheap * 2 : 256;
		struct item **h = realloc(r->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		r->heap = h;
		r->capheap = cap;
	}
	it->seq = r->seq++;
	i = r->nheap++;
	while (i > 0 && item_before(it, r->heap[(i - 1) / 2])) {
		r->heap[i] = r->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	r->heap[i] = it;
	r->st.queued_bytes += item_bytes(it);
	return 0;
}

static struct item *queue_pop(struct repair *r)
{
	struct item *top, *last;
	size_t i = 0;

	if (!r->nheap)
		return NULL;
	top = r->heap[0];
	last = r->heap[--r->nheap];
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= r->nheap)
			break;
		if (c + 1 < r->nheap && item_before(r->heap[c + 1], r->heap[c]))
			c++;
		if (!item_before(r->heap[c], last))
			break;
		r->heap[i] = r->heap[c];
		i = c;
	}
	if (r->nheap)
		r->heap[i] = last;
	r->st.queued_bytes -= item_bytes(top);
	return top;
}

/* -------------------------------------------------------------- items */

static void item_free(struct item *it)
{
	for (unsigned i = 0; i < GW_EC_MAX_FRAGS; i++)
		free(it->buf[i]);
	free(it->meta);
	free(it);
}

static void item_finish(struct item *it, int err)
{
	struct repair *r = it->r;

	r->inflight--;
	log_debug("%s part %u frag %u: %d after %.1f ms (write %.1f ms)",
		  it->kind == IT_REBUILD ? "rebuild" : "repair", it->key.part, it->key.frag, err,
		  (double)(strata_now_ns() - it->t_start) / 1e6,
		  it->t_write ? (double)(strata_now_ns() - it->t_write) / 1e6 : 0.0);
	if (err == 0) {
		r->st.repaired++;
		r->st.total_repaired++;
		switch (it->kind) {
		case IT_DELETE:	r->st.tombstones++; r->st.total_tombstones++; break;
		case IT_COPY:	r->st.copied++; r->st.total_copied++; break;
		case IT_PUSH:
			r->st.pushed++;
			r->st.total_pushed++;
			r->st.total_pushed_bytes += it->tomb ? 0 : it->size;
			break;
		case IT_REBUILD: r->st.rebuilt++; r->st.total_rebuilt++; break;
		case IT_PURGE:	r->st.purged++; r->st.total_purged++; break;
		}
		if (!it->tomb && it->kind != IT_DELETE && it->kind != IT_PURGE) {
			r->st.bytes_written += it->size;
			r->st.total_bytes_written += it->size;
			r->rate_bytes += it->size;
		}
	} else if (err == -ESTALE || err == -ENODATA) {
		r->st.skipped++;	/* changed under us, or not ours to copy */
	} else {
		r->st.failed++;
		log_warn("%s part %u frag %u ts %llu: %s",
			 it->kind == IT_REBUILD ? "rebuild" : it->kind == IT_COPY ? "copy" :
			 it->kind == IT_PUSH ? "push" : it->kind == IT_PURGE ? "purge" : "delete",
			 it->key.part, it->key.frag, (unsigned long long)it->ts, sto_strerror(err));
	}
	item_free(it);
	dispatch(r);
	maybe_pass_end(r);
	maybe_stopped(r);
}

/* The write's answer: an equal or newer version already there is fine. */
static void item_written(void *arg, int status, const struct sto_info *info)
{
	struct item *it = arg;

	(void)info;
	if (status == STO_ECONFLICT ||
	    (status == -ENOENT && (it->kind == IT_DELETE || it->kind == IT_PURGE || it->tomb)))
		status = 0;	/* a purge meeting another version leaves it be */
	if (status < 0)
		peer_check(it->dst, status);
	item_finish(it, status);
}

static void item_write_on(void *arg, sto_client *c, int err)
{
	struct item *it = arg;
	unsigned f = ring_frag_placement(it->key.frag);

	if (!err) {
		if (it->kind == IT_PURGE) {
			err = sto_purge(c, &it->key, it->ts, item_written, it);
		} else if (it->kind == IT_DELETE || it->tomb) {
			err = sto_delete(c, &it->key, it->ts, item_written, it);
		} else {
			uint8_t *b = it->kind == IT_REBUILD ? it->buf[f] : it->buf[0];

			it->iov = (struct iovec){ b, it->size };
			err = sto_put_ex(c, &it->key, it->ts, it->meta, it->meta_len, &it->iov,
					 1, sto_crc32c(0, b, it->size), &it->opts,
					 item_written, it);
		}
		if (!err)
			return;
		peer_check(it->dst, err);
	}
	item_finish(it, err);
}

static void item_write(struct item *it)
{
	it->t_write = strata_now_ns();
	peer_acquire(it->dst, item_write_on, it);
}

/* One GET of fragment f (COPY/PUSH: f is the slot 0). */
struct rd {
	struct item *it;
	unsigned slot;
	struct peer *p;
	struct sto_key key;
};

static void rd_chunk(void *arg, const struct sto_info *info, const void *data, size_t len)
{
	struct rd *d = arg;
	struct item *it = d->it;

	/* A version other than the one planned (overwritten meanwhile) or a
	 * size other than listed is dropped at done. */
	if (info->timestamp != it->ts || info->size != it->size)
		return;
	if (it->fill[d->slot] + len > it->size)
		return;
	memcpy(it->buf[d->slot] + it->fill[d->slot], data, len);
	it->fill[d->slot] += len;
}

static void rebuild_decode(struct item *it);

static void rd_done(void *arg, int status, const struct sto_info *info)
{
	struct rd *d = arg;
	struct item *it = d->it;
	unsigned s = d->slot;

	if (status == 0 && info) {
		if (info->timestamp != it->ts || info->size != it->size ||
		    it->fill[s] != it->size)
			status = -ESTALE;
		else if (sto_crc32c(0, it->buf[s], it->size) != info->crc32c)
			status = STO_ECRC;	/* damaged on the way */
		else {
			it->crc[s] = info->crc32c;
			if (!it->have_meta) {
				it->have_meta = true;
				it->opts = (struct sto_put_opts){ .tier = info->tier,
								  .cold_after = info->cold_after };
				if (info->meta_len) {
					it->meta = malloc(info->meta_len);
					if (it->meta) {
						memcpy(it->meta, info->meta, info->meta_len);
						it->meta_len = info->meta_len;
					} else {
						status = -ENOMEM;
					}
				}
			}
		}
	} else if (status == 0) {
		status = -EIO;
	}
	if (status == 0) {
		it->got |= 1u << s;
		it->r->st.bytes_read += it->size;
	} else {
		peer_check(d->p, status);
		if (it->kind != IT_REBUILD)
			it->err = status;
	}
	free(d);
	if (--it->pending)
		return;
	if (it->kind == IT_REBUILD) {
		rebuild_decode(it);
		return;
	}
	if (it->err) {
		item_finish(it, it->err == -ENOENT ? -ESTALE : it->err);
		return;
	}
	/* A live replicated record always carries the gateway's metadata; a
	 * bare fragment 0 without it is an EC fragment whose siblings were not
	 * seen: not a replica to spread. */
	if (it->replicated && it->meta_len == 0) {
		item_finish(it, -ENODATA);
		return;
	}
	item_write(it);
}

static void rd_on(void *arg, sto_client *c, int err)
{
	struct rd *d = arg;

	if (!err) {
		err = sto_get(c, &d->key, 0, 0, rd_chunk, rd_done, d);
		if (!err)
			return;
	}
	rd_done(d, err, NULL);
}

static int item_read(struct item *it, unsigned slot, struct peer *p, uint32_t frag)
{
	struct rd *d = calloc(1, sizeof(*d));

	it->buf[slot] = malloc(it->size ? it->size : 1);
	if (!d || !it->buf[slot]) {
		free(d);
		return -ENOMEM;
	}
	d->it = it;
	d->slot = slot;
	d->p = p;
	d->key = it->key;
	d->key.frag = frag;
	it->asked |= 1u << slot;
	it->pending++;
	peer_acquire(p, rd_on, d);
	return 0;
}

static void rebuild_decode(struct item *it)
{
	unsigned n = it->k + it->m, want = ring_frag_placement(it->key.frag), ns = 0, check = n;
	uint8_t *frags[GW_EC_MAX_FRAGS], *scratch = NULL;
	uint32_t present = 0;
	int ret;

	/* The first k fragments that arrived decode; one more, if any, checks
	 * them: re-derived from the k, it must match its stored CRC. */
	for (unsigned i = 0; i < n; i++) {
		if (!(it->got & (1u << i)))
			continue;
		if (ns < it->k) {
			present |= 1u << i;
			ns++;
		} else if (check == n) {
			check = i;
		}
	}
	if (ns < it->k) {
		item_finish(it, -EIO);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		frags[i] = it->buf[i];
	frags[want] = it->buf[want] = malloc(it->size ? it->size : 1);
	if (check < n)
		frags[check] = scratch = malloc(it->size ? it->size : 1);
	if (!frags[want] || (check < n && !scratch)) {
		free(scratch);
		item_finish(it, -ENOMEM);
		return;
	}
	ret = gw_ec_decode(it->ec, it->size, frags, present,
			   (1u << want) | (check < n ? 1u << check : 0));
	if (ret == 0 && check < n && sto_crc32c(0, scratch, it->size) != it->crc[check]) {
		log_err("part %u frag %u ts %llu: survivors disagree (fragment %u "
			"re-derived with a different CRC); not written", it->key.part,
			want, (unsigned long long)it->ts, check);
		ret = STO_ECRC;
	}
	free(scratch);
	if (ret < 0) {
		item_finish(it, ret);
		return;
	}
	item_write(it);
}

static void item_start(struct item *it)
{
	struct repair *r = it->r;
	int ret = 0;

	r->inflight++;
	it->t_start = strata_now_ns();
	switch (it->kind) {
	case IT_DELETE:
	case IT_PURGE:
		item_write(it);
		return;
	case IT_COPY:
	case IT_PUSH:
		if (it->tomb) {
			item_write(it);
			return;
		}
		ret = item_read(it, 0, it->src, it->key.frag);
		break;
	case IT_REBUILD: {
		unsigned want = it->k + 1, asked = 0;

		/* k + 1 survivors (the extra one checks the decode), reachable
		 * ones first; data fragments first (cheaper to be right). */
		for (unsigned pass = 0; pass < 2 && asked < want; pass++)
			for (unsigned i = 0; i < it->k + it->m && asked < want; i++) {
				if (!(it->survivors & (1u << i)) || (it->asked & (1u << i)) ||
				    i == ring_frag_placement(it->key.frag))
					continue;
				if (pass == 0 && peer_is_down(it->fsrc[i]))
					continue;
				ret = item_read(it, i, it->fsrc[i], it->fbase | i);
				if (ret < 0)
					break;
				asked++;
			}
		break;
	}
	}
	if (ret < 0 && it->pending == 0)
		item_finish(it, ret);
	else if (ret < 0)
		it->err = ret;
}

static void tokens_refill(struct repair *r)
{
	uint64_t now = strata_now_ns();
	double dt = (double)(now - r->tok_ns) / 1e9;

	r->tok_ns = now;
	if (r->cfg.max_mbps > 0) {
		double rate = r->cfg.max_mbps * 1e6;

		r->tok_bytes += dt * rate;
		if (r->tok_bytes > rate)
			r->tok_bytes = rate;	/* 1 s of burst */
	}
	if (r->cfg.max_ops > 0) {
		r->tok_ops += dt * r->cfg.max_ops;
		if (r->tok_ops > r->cfg.max_ops)
			r->tok_ops = r->cfg.max_ops;
	}
}

static void on_wake(uv_timer_t *t)
{
	dispatch(t->data);
}

static void job_resume_blocked(struct repair *r);
static void ls_resume(struct repair *r);

/* Seconds until the token buckets are out of debt (0: now). Work may start
 * while they are not in debt: big fragments borrow, and the debt delays
 * the next ones. */
static double tokens_wait(const struct repair *r)
{
	double wait = 0;

	if (r->cfg.max_mbps > 0 && r->tok_bytes < 0)
		wait = -r->tok_bytes / (r->cfg.max_mbps * 1e6);
	if (r->cfg.max_ops > 0 && r->tok_ops < 0 && -r->tok_ops / r->cfg.max_ops > wait)
		wait = -r->tok_ops / r->cfg.max_ops;
	return wait;
}

static void dispatch(struct repair *r)
{
	tokens_refill(r);
	while (!r->stopping && r->nheap && r->inflight < r->cfg.inflight) {
		struct item *it;
		double wait = tokens_wait(r);

		if (wait > 0) {
			if (!uv_is_active((uv_handle_t *)&r->wake))
				uv_timer_start(&r->wake, on_wake, (uint64_t)(wait * 1000) + 1, 0);
			break;
		}
		it = queue_pop(r);
		r->tok_bytes -= (double)item_bytes(it);
		r->tok_ops -= it->kind == IT_REBUILD ? it->k + 2 : it->tomb ||
			      it->kind == IT_DELETE || it->kind == IT_PURGE ? 1 : 2;
		item_start(it);
	}
	job_resume_blocked(r);
	ls_resume(r);
}

static struct item *item_new(struct repair *r, enum item_kind kind, const struct job *j,
			     const struct ent *e)
{
	struct item *it = calloc(1, sizeof(*it));

	if (!it)
		return NULL;
	it->r = r;
	it->kind = kind;
	it->key.part = j->part;
	memcpy(it->key.name, e->name, STO_NAME_HASH_LEN);
	it->key.frag = e->frag;
	it->ts = e->ts;
	it->size = e->size;
	it->tomb = e->tomb;
	it->prio = UINT32_MAX;		/* replicas and tombstones: after rebuilds */
	return it;
}

static int item_queue(struct repair *r, struct item *it)
{
	int ret;

	if (r->stopping) {
		free(it);
		return 0;
	}
	r->st.planned++;
	r->st.push_planned += it->kind == IT_PUSH;
	if (r->cfg.dry_run) {
		log_info("would %s part %u frag %u ts %llu%s",
			 it->kind == IT_REBUILD ? "rebuild" : it->kind == IT_COPY ? "copy" :
			 it->kind == IT_PUSH ? "push" : it->kind == IT_PURGE ? "purge" : "tombstone",
			 it->key.part,
			 it->key.frag, (unsigned long long)it->ts, it->tomb ? " (tombstone)" : "");
		free(it);
		return 0;
	}
	if (it->kind != IT_DELETE && it->kind != IT_PURGE && !it->tomb &&
	    it->size > r->cfg.max_fragment) {
		log_warn("part %u frag %u: %llu bytes is over --max-fragment; not repaired",
			 it->key.part, it->key.frag, (unsigned long long)it->size);
		r->st.failed++;
		free(it);
		return 0;
	}
	ret = queue_push(r, it);
	if (ret < 0) {
		r->st.failed++;
		free(it);
	}
	return ret;
}

/* --------------------------------------------------------------- plan */

static int ent_cmp(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;
	int c = memcmp(x->name, y->name, STO_NAME_HASH_LEN);

	if (c)
		return c;
	if (x->frag != y->frag)
		return x->frag < y->frag ? -1 : 1;
	return x->node < y->node ? -1 : x->node > y->node;
}

/* The entry of (node, frag) in the group [a, b), or NULL. */
static const struct ent *find(const struct ent *a, const struct ent *b, unsigned node,
			      uint32_t frag)
{
	for (; a < b; a++)
		if (a->node == node && a->frag == frag)
			return a;
	return NULL;
}

/* Newer: timestamp, then a tombstone beats a live copy at the same one. */
static bool newer(uint64_t ts, bool tomb, uint64_t ots, bool otomb)
{
	return ts > ots || (ts == ots && tomb && !otomb);
}

/* Rebalance: placement i of ring g moved here from the node that held it in
 * the previous ring, which still has version ts live. That node's daemon
 * pushes it (it no longer places it: the handoff rule), so copying or
 * rebuilding it here too would move the same bytes twice. Counted as
 * awaiting (the pass is not clean) until the push has arrived. A holder that
 * did not answer is not waited for: the usual copy or rebuild runs. */
static bool awaits_push(struct job *j, int g, unsigned i, const struct ent *a,
			const struct ent *b, uint64_t ts)
{
	int x = j->oprim[g][i];
	const struct ent *e;

	if (x <= 0 || !j->lok[x])
		return false;
	/* still a current holder of some placement: it pushes nothing */
	for (unsigned p = 0; p < RING_MAX_PLACEMENTS && j->prim[g][p] != -2; p++)
		if (j->prim[g][p] == x)
			return false;
	e = find(a, b, (unsigned)x, ring_frag_id(ring_policy(j->r->cfg.rings[g]), i));
	if (!e || e->tomb || e->ts != ts)
		return false;
	j->r->st.awaiting++;
	log_debug("part %u placement %u (ring %d) ts %llu: awaiting the push from %s", j->part,
		  i, g, (unsigned long long)ts, j->nodes[x]->addr);
	return true;
}

/* This node's entry e is held where the ring places it (at e's version or
 * newer, seen in this pass's listing): the copy here is garbage once pushed,
 * dropped with a PURGE conditional on its timestamp (never a DELETE: a
 * tombstone newer than the data would delete the object). */
static unsigned plan_purge(struct job *j, const struct ent *e)
{
	struct item *it = item_new(j->r, IT_PURGE, j, e);

	if (!it)
		return 1;
	it->dst = j->r->self;
	item_queue(j->r, it);
	return 1;
}

/* An EC name's entries [a, b), all of ring g's policy (their fragment
 * numbers are ring_frag_id(policy, placement)). */
static unsigned plan_ec(struct job *j, int g, const struct ent *a, const struct ent *b)
{
	struct repair *r = j->r;
	const struct ring_policy *pol = ring_policy(r->cfg.rings[g]);
	const int *prim = j->prim[g];
	unsigned k = pol->ec_k, n = pol->ec_k + pol->ec_m, actions = 0, nsurv = 0;
	uint64_t ts = 0, size = 0;
	bool tomb = false;
	uint32_t surv = 0;
	struct peer *fsrc[GW_EC_MAX_FRAGS] = { 0 };

	for (const struct ent *e = a; e < b; e++)
		if (newer(e->ts, e->tomb, ts, tomb)) {
			ts = e->ts;
			tomb = e->tomb;
		}
	for (const struct ent *e = a; e < b; e++) {
		unsigned pl = ring_frag_placement(e->frag);

		if (e->ts != ts || e->tomb || pl >= n)
			continue;
		/* prefer the fragment's own placement as its source */
		if (!(surv & (1u << pl)) || (prim[pl] == e->node)) {
			fsrc[pl] = j->nodes[e->node];
			size = e->size;
		}
		surv |= 1u << pl;
	}
	nsurv = (unsigned)__builtin_popcount(surv);

	for (unsigned i = 0; i < n; i++) {
		const struct ent *l;
		struct ent want;
		struct item *it;

		if (prim[i] != 0)
			continue;
		l = find(a, b, 0, ring_frag_id(pol, i));
		if (l && !newer(ts, tomb, l->ts, l->tomb))
			continue;
		memcpy(want.name, a->name, STO_NAME_HASH_LEN);
		want.frag = ring_frag_id(pol, i);
		want.ts = ts;
		want.size = size;
		want.tomb = tomb;
		if (!tomb && awaits_push(j, g, i, a, b, ts)) {
			actions++;	/* not consistent yet: no memo */
			continue;
		}
		if (tomb) {
			it = item_new(r, IT_DELETE, j, &want);
		} else if (surv & (1u << i)) {
			/* fragment i of V is on another node (a handoff): copy */
			it = item_new(r, IT_COPY, j, &want);
			if (it)
				it->src = fsrc[i];
		} else {
			if (nsurv < k) {
				bool all = true;

				for (unsigned x = 0; x < j->n; x++)
					all &= j->lok[x];
				if (!all) {	/* the rest may be on a node that is down */
					r->st.unreachable++;
					continue;
				}
				r->st.unrecoverable++;
				log_err("part %u frag %u ts %llu: %u of %u fragments left, "
					"cannot rebuild", j->part, i, (unsigned long long)ts,
					nsurv, k);
				continue;
			}
			it = item_new(r, IT_REBUILD, j, &want);
			if (it) {
				it->k = k;
				it->m = pol->ec_m;
				it->ec = r->ec[g];
				it->fbase = ring_frag_id(pol, 0);
				it->survivors = surv;
				memcpy(it->fsrc, fsrc, sizeof(fsrc));
				it->prio = nsurv;	/* fewest survivors first */
			}
		}
		if (!it)
			return actions + 1;
		it->dst = r->self;
		item_queue(r, it);
		actions++;
	}
	/* Handoff: fragments here whose placement is another node. */
	for (const struct ent *e = a; e < b; e++) {
		unsigned pl = ring_frag_placement(e->frag);
		const struct ent *t;
		struct item *it;

		if (e->node != 0 || pl >= n || prim[pl] <= 0)
			continue;
		r->st.handoffs++;
		if (!j->ok[prim[pl]]) {
			r->st.unreachable++;
			continue;
		}
		t = find(a, b, (unsigned)prim[pl], e->frag);
		if (t && !newer(e->ts, e->tomb, t->ts, t->tomb)) {
			actions += plan_purge(j, e);	/* its placement has it */
			continue;
		}
		it = item_new(r, IT_PUSH, j, e);
		if (!it)
			return actions + 1;
		it->src = r->self;
		it->dst = j->nodes[prim[pl]];
		if (item_queue(r, it) < 0)
			return actions + 1;
		actions++;
	}
	return actions;
}

/* awaits_push for a replica: any previous placement whose node no longer
 * holds one and has the newest copy pushes it here. */
static bool rep_awaits_push(struct job *j, const struct ent *a, const struct ent *b,
			    uint64_t ts)
{
	int g = j->r->rep_ring;

	for (unsigned i = 0; i < RING_MAX_PLACEMENTS; i++)
		if (awaits_push(j, g, i, a, b, ts))
			return true;
	return false;
}

static unsigned plan_rep(struct job *j, const struct ent *a, const struct ent *b)
{
	struct repair *r = j->r;
	const int *prim = j->prim[r->rep_ring];
	unsigned n = ring_placements(r->cfg.rings[r->rep_ring]), actions = 0, held = 0;
	const struct ent *best = NULL, *local = find(a, b, 0, 0);
	bool is_prim = false;

	for (const struct ent *e = a; e < b; e++) {
		if (e->frag != 0)
			continue;
		/* the newest; among equals, a copy on a primary */
		if (!best || newer(e->ts, e->tomb, best->ts, best->tomb) ||
		    (e->ts == best->ts && e->tomb == best->tomb && prim[0] != best->node))
			best = e;
	}
	if (!best)
		return 0;
	for (unsigned i = 0; i < n; i++)
		is_prim |= prim[i] == 0;
	if (is_prim) {
		struct item *it;

		if (local && !newer(best->ts, best->tomb, local->ts, local->tomb))
			return 0;
		if (!best->tomb && rep_awaits_push(j, a, b, best->ts))
			return 1;
		it = item_new(r, best->tomb ? IT_DELETE : IT_COPY, j, best);
		if (!it)
			return 1;
		it->src = j->nodes[best->node];
		it->dst = r->self;
		it->replicated = true;
		item_queue(r, it);
		return 1;
	}
	if (!local)
		return 0;
	r->st.handoffs++;
	/* Handoff copy: push it to each primary that lacks it; once every
	 * primary has it, drop it here. */
	for (unsigned i = 0; i < n; i++) {
		const struct ent *t;
		struct item *it;

		if (prim[i] < 0)
			continue;
		if (!j->ok[prim[i]]) {
			r->st.unreachable++;
			continue;
		}
		t = find(a, b, (unsigned)prim[i], 0);
		if (t && !newer(local->ts, local->tomb, t->ts, t->tomb)) {
			held++;
			continue;
		}
		it = item_new(r, IT_PUSH, j, local);
		if (!it)
			return actions + 1;
		it->src = r->self;
		it->dst = j->nodes[prim[i]];
		it->replicated = true;
		if (item_queue(r, it) < 0)
			return actions + 1;
		actions++;
	}
	if (held == n)
		actions += plan_purge(j, local);
	return actions;
}

/* A name of EC policy pol, which no ring here has: left alone (repairing
 * it against another policy's ring would rebuild or push the wrong
 * fragments). Counted (the pass is not clean: this node cannot vouch for
 * it), logged once per policy and pass. */
static unsigned no_ring(struct job *j, uint32_t pol)
{
	struct repair *r = j->r;
	uint32_t bit = pol < RING_MAX_POLICY ? pol : RING_MAX_POLICY;	/* (bad numbers: one bit) */

	r->st.no_ring++;
	if (r->no_ring_logged[bit / 8] & (1u << bit % 8))
		return 1;
	r->no_ring_logged[bit / 8] |= (uint8_t)(1u << bit % 8);
	log_warn("part %u: fragments of EC policy %u, which no ring given to this daemon "
		 "has; left alone (give it that policy's ring)", j->part, pol);
	return 1;		/* not consistent: no memo, seen every pass */
}

/* Plans the current suffix's entries; returns the items queued.
 *
 * A name's entries sort by fragment number, so they come grouped by policy
 * (ring_frag_policy: fragment >> 8). Each policy's run is planned against
 * its own ring: policy 0's as before there were several (EC when any
 * fragment is > 0, else a replica), policy p > 0's against the EC ring of
 * index p. A name has one policy (the gateway writes a version's fragments
 * on one ring under a fresh name), so runs of several are not expected;
 * each would be planned on its own, newest-wins within its ring. */
static unsigned plan(struct job *j)
{
	struct repair *r = j->r;
	unsigned actions = 0;
	size_t i = 0;

	qsort(j->ents, j->nents, sizeof(*j->ents), ent_cmp);
	while (i < j->nents) {
		uint32_t pol = ring_frag_policy(j->ents[i].frag);
		size_t e = i + 1;
		bool hi = j->ents[i].frag > 0;
		int g;

		while (e < j->nents && !memcmp(j->ents[e].name, j->ents[i].name, STO_NAME_HASH_LEN) &&
		       ring_frag_policy(j->ents[e].frag) == pol) {
			hi |= j->ents[e].frag > 0;
			e++;
		}
		g = !hi ? r->rep_ring : pol <= RING_MAX_POLICY ? r->pol_ring[pol] : -1;
		if (hi && g < 0)
			actions += no_ring(j, pol);
		else if (g >= 0 && j->prim[g][0] != -2)
			actions += hi ? plan_ec(j, g, j->ents + i, j->ents + e) :
					plan_rep(j, j->ents + i, j->ents + e);
		i = e;
	}
	return actions;
}

/* ----------------------------------------------------------- listings */

/* Listings (bucket contents, multipart parts and uploads) live on the rep
 * ring's primaries of their partition only (the gateway writes all 3 and
 * waits for 2; there are no handoffs). A primary's daemon asks every
 * primary for the partition's listings (LISTING_IDS: ids with counts and an
 * order-independent hash of (key, timestamp, tombstone)) and pulls each one
 * a peer holds differently: its entries, tombstones included, paged from
 * the peer and applied here by LISTING_PUT (newest wins per key, so a pull
 * never undoes a newer write). Each primary pulls for itself; together they
 * converge on the union. During a rebalance the previous ring's holders of
 * the partition are sources too, so a new holder fills at once.
 *
 * A node that is no rep primary of the partition (its placement moved, or
 * it was drained) but holds listings there pushes each one to every
 * primary that holds it differently (its own pages, LISTING_PUT there),
 * then drops its copy (LISTING_DELETE_RANGE) once every primary took every
 * page and its own copy did not change meanwhile (LISTING_IDS again).
 *
 * Pages read and batches written are repair traffic: they wait while the
 * token buckets are in debt and pay for their bytes and requests. */

#define LS_PUT_BYTES	(40u << 10)	/* per LISTING_PUT: inside STO_MAX_REQ_HDR */
#define LS_SLOTS	(2 * RING_MAX_PLACEMENTS)	/* primaries + previous ones */
#define LS_AGAIN	LS_SLOTS	/* ls_ids_ask: this node's ids, after pushing */

static void job_done(struct job *j);

struct ls_ids {
	struct sto_listing_info *v;
	size_t n, cap;
	bool ok;
};

struct ls_pull {
	unsigned slot;			/* the entries' source */
	unsigned dst;			/* where they go: 0 (pull) or a primary (push) */
	size_t own;			/* push: index of the listing in ids[0] */
	uint8_t id[STO_LISTING_ID_LEN];
	uint64_t digest;		/* ls_memo_digest as planned */
	uint64_t applied;		/* entries the pull applied here */
};

struct lsync {
	struct job *j;
	bool handoff;			/* no rep primary here: push, then drop */
	unsigned n;			/* slots; slot 0 is this node */
	unsigned node[LS_SLOTS];
	struct ls_ids ids[LS_SLOTS];
	struct ls_ids again;		/* handoff: this node's ids after the pushes */
	bool *keep;			/* handoff: per listing here, not droppable */
	size_t idrop;
	unsigned pending;
	void (*on_ids)(struct lsync *l);	/* every asked node answered */
	struct ls_pull *pulls;
	size_t npulls, ipull;
	/* the pull under way: a page, copied, put in batches */
	uint8_t marker[STO_LISTING_MAX_KEY];
	uint32_t marker_len;
	bool more;
	struct sto_listing_entry *ents;
	size_t nents, ient, nbatch, nbytes;
	uint8_t *arena;
	/* waiting for the token buckets (r->ls_wait) */
	void (*wait_fn)(struct lsync *l);
	struct lsync *wait_next;
};

static void ls_free(struct lsync *l)
{
	for (unsigned i = 0; i < l->n; i++)
		free(l->ids[i].v);
	free(l->again.v);
	free(l->keep);
	free(l->pulls);
	free(l->ents);
	free(l->arena);
	free(l);
}

static void ls_end(struct lsync *l)
{
	struct job *j = l->j;

	ls_free(l);
	job_done(j);
}

/* Runs fn(l) once the token buckets are out of debt (at once when they
 * are, or when stopping: fn sees r->stopping). */
static void ls_gate(struct lsync *l, void (*fn)(struct lsync *l))
{
	struct repair *r = l->j->r;
	double wait;

	tokens_refill(r);
	wait = tokens_wait(r);
	if (wait <= 0 || r->stopping) {
		fn(l);
		return;
	}
	l->wait_fn = fn;
	l->wait_next = r->ls_wait;
	r->ls_wait = l;
	if (!uv_is_active((uv_handle_t *)&r->wake))
		uv_timer_start(&r->wake, on_wake, (uint64_t)(wait * 1000) + 1, 0);
}

/* From dispatch: the waiting listing syncs whose turn came. */
static void ls_resume(struct repair *r)
{
	double wait;

	while (r->ls_wait && (r->stopping || tokens_wait(r) <= 0)) {
		struct lsync *l = r->ls_wait;

		r->ls_wait = l->wait_next;
		l->wait_next = NULL;
		l->wait_fn(l);
	}
	if (r->ls_wait && !r->stopping && (wait = tokens_wait(r)) > 0 &&
	    !uv_is_active((uv_handle_t *)&r->wake))
		uv_timer_start(&r->wake, on_wake, (uint64_t)(wait * 1000) + 1, 0);
}

static void ls_charge(struct repair *r, uint64_t bytes)
{
	r->tok_bytes -= (double)bytes;
	r->tok_ops -= 1;
}

static int info_cmp(const void *a, const void *b)
{
	return memcmp(((const struct sto_listing_info *)a)->id,
		      ((const struct sto_listing_info *)b)->id, STO_LISTING_ID_LEN);
}

static bool info_same(const struct sto_listing_info *a, const struct sto_listing_info *b)
{
	return a && b && a->entries == b->entries && a->tombstones == b->tombstones &&
	       a->bytes == b->bytes && a->hash == b->hash;
}

static const struct sto_listing_info *ids_find(const struct ls_ids *x,
					       const struct sto_listing_info *p)
{
	return x->n ? bsearch(p, x->v, x->n, sizeof(*p), info_cmp) : NULL;
}

static void ls_next_pull(struct lsync *l);
static void ls_ids_ask(struct lsync *l, unsigned s);

/* Asks slots [from, to) for their ids; then on_ids(l). */
static void ls_ask(struct lsync *l, unsigned from, unsigned to, void (*on_ids)(struct lsync *l))
{
	l->on_ids = on_ids;
	l->pending = to - from + 1;	/* + 1 guard */
	for (unsigned s = from; s < to; s++)
		ls_ids_ask(l, s);
	if (--l->pending == 0)
		l->on_ids(l);
}

/* The memo of (partition, listing, peer) pulls that brought nothing: keys
 * with the top bit set, apart from the suffix memo's. */
static uint64_t ls_memo_key(const struct lsync *l, unsigned slot, const uint8_t *id)
{
	uint64_t a, b;

	memcpy(&a, id, 8);
	memcpy(&b, id + 8, 8);
	return mix64(mix64(a ^ l->j->part) ^ b ^
		     mix64((uint64_t)(uintptr_t)l->j->nodes[l->node[slot]])) | 1ull << 63;
}

static uint64_t ls_memo_digest(const struct sto_listing_info *here,
			       const struct sto_listing_info *peer)
{
	uint64_t d = mix64(peer->hash ^ mix64(peer->entries + 1) ^ (peer->bytes << 20) ^
			   peer->tombstones);

	if (here)
		d = mix64(d ^ here->hash ^ mix64(here->entries + 7) ^ (here->bytes << 21) ^
			  here->tombstones);
	return d;
}

static void ls_add_pull(struct lsync *l, unsigned slot, unsigned dst, size_t own,
			const uint8_t *id, uint64_t digest)
{
	struct ls_pull *p = &l->pulls[l->npulls++];

	p->slot = slot;
	p->dst = dst;
	p->own = own;
	memcpy(p->id, id, STO_LISTING_ID_LEN);
	p->digest = digest;
	p->applied = 0;
}

/* A rep primary: every slot answered (or failed): what to pull. */
static void ls_plan(struct lsync *l)
{
	struct repair *r = l->j->r;
	size_t cap = 0;

	if (!l->ids[0].ok || r->stopping) {
		ls_end(l);
		return;
	}
	for (unsigned s = 1; s < l->n; s++)
		cap += l->ids[s].n;
	l->pulls = malloc((cap ? cap : 1) * sizeof(*l->pulls));
	if (!l->pulls) {
		r->st.failed++;
		ls_end(l);
		return;
	}
	for (unsigned s = 1; s < l->n; s++) {
		if (!l->ids[s].ok) {
			r->st.unreachable++;
			continue;
		}
		for (size_t i = 0; i < l->ids[s].n; i++) {
			const struct sto_listing_info *p = &l->ids[s].v[i];
			const struct sto_listing_info *m = ids_find(&l->ids[0], p);

			if (info_same(m, p))
				continue;
			/* Pulled before with nothing new, and neither side changed
			 * since: the peer is behind, not ahead (its own daemon
			 * pulls from here). */
			if (memo_same_key(r, ls_memo_key(l, s, p->id), ls_memo_digest(m, p)))
				continue;
			if (r->cfg.dry_run) {
				/* Without pulling, "behind" can only be guessed:
				 * missing here, or fewer keys than the peer. */
				if (!m || p->entries + p->tombstones > m->entries + m->tombstones) {
					r->st.listings++;
					log_info("would pull listing part %u from %s (%llu entries, "
						 "%llu here)", l->j->part,
						 l->j->nodes[l->node[s]]->addr,
						 (unsigned long long)p->entries,
						 m ? (unsigned long long)m->entries : 0ull);
				}
				continue;
			}
			ls_add_pull(l, s, 0, 0, p->id, ls_memo_digest(m, p));
		}
	}
	ls_next_pull(l);
}

/* Not a rep primary, every primary answered (or failed): each listing
 * here is pushed to the primaries that hold it differently, then dropped. */
static void ls_plan_push(struct lsync *l)
{
	struct repair *r = l->j->r;
	size_t nown = l->ids[0].n;

	if (r->stopping) {
		ls_end(l);
		return;
	}
	l->keep = calloc(nown, sizeof(*l->keep));
	l->pulls = malloc(nown * (l->n - 1) * sizeof(*l->pulls));
	if (!l->keep || !l->pulls) {
		r->st.failed++;
		ls_end(l);
		return;
	}
	for (unsigned s = 1; s < l->n; s++)
		if (!l->ids[s].ok)
			r->st.unreachable++;
	for (size_t i = 0; i < nown; i++) {
		const struct sto_listing_info *p = &l->ids[0].v[i];

		/* held for another placement: movement is not done */
		r->st.handoffs++;
		r->st.push_planned++;
		r->st.planned++;
		for (unsigned s = 1; s < l->n; s++) {
			if (!l->ids[s].ok) {
				l->keep[i] = true;	/* unknown: keep it */
				continue;
			}
			if (info_same(ids_find(&l->ids[s], p), p))
				continue;
			if (r->cfg.dry_run) {
				log_info("would push listing part %u to %s (%llu entries)",
					 l->j->part, l->j->nodes[l->node[s]]->addr,
					 (unsigned long long)p->entries);
				continue;
			}
			ls_add_pull(l, 0, s, i, p->id, 0);
		}
	}
	if (r->cfg.dry_run) {
		ls_end(l);
		return;
	}
	ls_next_pull(l);
}

/* Not a rep primary: this node's ids are in. */
static void ls_plan_handoff(struct lsync *l)
{
	if (!l->ids[0].ok || !l->ids[0].n || l->j->r->stopping) {
		ls_end(l);		/* nothing here (the usual case) */
		return;
	}
	ls_ask(l, 1, l->n, ls_plan_push);
}

static void ls_ids_done(void *arg, int status, const struct sto_listing_info *v, size_t n,
			bool more)
{
	struct lsync *l = ((struct lsync **)arg)[0];
	unsigned s = (unsigned)(uintptr_t)((void **)arg)[1];
	struct ls_ids *x = s == LS_AGAIN ? &l->again : &l->ids[s];

	free(arg);
	if (status == 0 && x->n + n > x->cap) {
		size_t cap = (x->n + n) * 2;
		struct sto_listing_info *nv = realloc(x->v, cap * sizeof(*nv));

		if (nv) {
			x->v = nv;
			x->cap = cap;
		} else {
			status = -ENOMEM;
		}
	}
	if (status == 0) {
		if (n)
			memcpy(x->v + x->n, v, n * sizeof(*v));
		x->n += n;
		if (more && n && !l->j->r->stopping) {
			ls_ids_ask(l, s);
			return;
		}
		x->ok = true;
		if (x->n)	/* (already in id order) */
			qsort(x->v, x->n, sizeof(*x->v), info_cmp);
	} else {
		peer_check(l->j->nodes[l->node[s == LS_AGAIN ? 0 : s]], status);
	}
	if (--l->pending == 0)
		l->on_ids(l);
}

static void ls_ids_on(void *arg, sto_client *c, int err)
{
	struct lsync *l = ((struct lsync **)arg)[0];
	unsigned s = (unsigned)(uintptr_t)((void **)arg)[1];
	struct ls_ids *x = s == LS_AGAIN ? &l->again : &l->ids[s];

	if (!err) {
		err = sto_listing_ids(c, l->j->part, x->n ? x->v[x->n - 1].id : NULL,
				      ls_ids_done, arg);
		if (!err)
			return;
	}
	ls_ids_done(arg, err, NULL, 0, false);
}

/* Asks slot s (LS_AGAIN: this node, into l->again) for its ids; l->pending
 * must already count it. */
static void ls_ids_ask(struct lsync *l, unsigned s)
{
	void **a = calloc(2, sizeof(void *));

	if (!a) {
		if (--l->pending == 0)	/* counts as not answered */
			l->on_ids(l);
		return;
	}
	a[0] = l;
	a[1] = (void *)(uintptr_t)s;
	peer_acquire(l->j->nodes[l->node[s == LS_AGAIN ? 0 : s]], ls_ids_on, a);
}

/* ------------------------------------------- listings: dropping a pushed one */

static void ls_drop_next(struct lsync *l);

static void ls_dropped(void *arg, int status, uint64_t deleted, bool more,
		       struct sto_bytes next)
{
	struct lsync *l = arg;
	struct repair *r = l->j->r;

	(void)deleted;
	(void)next;
	if (status < 0) {
		peer_check(r->self, status);
		r->st.failed++;
		log_warn("listing part %u: dropping the moved copy here: %s", l->j->part,
			 sto_strerror(status));
		more = false;
	} else if (!more) {
		r->st.listings_dropped++;
		r->st.total_listings_dropped++;
		r->st.repaired++;
	}
	if (!more)
		l->idrop++;
	ls_gate(l, ls_drop_next);
}

static void ls_drop_on(void *arg, sto_client *c, int err)
{
	struct lsync *l = arg;
	struct sto_listing_id id = { .part = l->j->part };
	struct sto_bytes none = { NULL, 0 };

	memcpy(id.id, l->ids[0].v[l->idrop].id, STO_LISTING_ID_LEN);
	ls_charge(l->j->r, 0);
	if (!err) {
		err = sto_listing_delete_range(c, &id, none, none, 0, ls_dropped, l);
		if (!err)
			return;
	}
	ls_dropped(l, err, 0, false, none);
}

/* The next listing every primary took whole and that did not change here
 * since its ids were read: dropped (entries removed, no tombstones; a write
 * racing it reached the primaries too, as the gateway writes them). */
static void ls_drop_next(struct lsync *l)
{
	struct repair *r = l->j->r;

	for (; !r->stopping && l->idrop < l->ids[0].n; l->idrop++) {
		const struct sto_listing_info *p = &l->ids[0].v[l->idrop];

		if (!l->keep[l->idrop] && info_same(ids_find(&l->again, p), p)) {
			peer_acquire(r->self, ls_drop_on, l);
			return;
		}
	}
	ls_end(l);
}

static void ls_drop_begin(struct lsync *l)
{
	if (!l->again.ok || l->j->r->stopping) {
		ls_end(l);
		return;
	}
	l->idrop = 0;
	ls_drop_next(l);
}

/* ------------------------------------------------ listings: one pull */

static void ls_put_next(struct lsync *l);
static void ls_query(struct lsync *l);

static void ls_pull_failed(struct lsync *l)
{
	struct ls_pull *p = &l->pulls[l->ipull];

	l->j->r->st.failed++;
	if (l->handoff)
		l->keep[p->own] = true;
}

static void ls_put_done(void *arg, int status, uint64_t count)
{
	struct lsync *l = arg;
	struct repair *r = l->j->r;
	struct ls_pull *p = &l->pulls[l->ipull];

	if (status < 0) {
		peer_check(l->j->nodes[l->node[p->dst]], status);
		ls_pull_failed(l);
		log_warn("listing part %u: LISTING_PUT to %s: %s", l->j->part,
			 l->j->nodes[l->node[p->dst]]->addr, sto_strerror(status));
		l->more = false;		/* this listing: next pass */
		l->ient = l->nents;
	} else {
		r->st.listing_entries += count;
		r->st.total_listing_entries += count;
		r->st.bytes_written += l->nbytes;
		r->st.total_bytes_written += l->nbytes;
		p->applied += count;
		r->st.repaired += count ? 1 : 0;
		l->ient += l->nbatch;
	}
	ls_put_next(l);
}

static void ls_put_on(void *arg, sto_client *c, int err)
{
	struct lsync *l = arg;
	struct sto_listing_id id = { .part = l->j->part };

	memcpy(id.id, l->pulls[l->ipull].id, STO_LISTING_ID_LEN);
	ls_charge(l->j->r, l->nbytes);
	if (!err) {
		err = sto_listing_put(c, &id, l->ents + l->ient, l->nbatch, ls_put_done, l);
		if (!err)
			return;
	}
	ls_put_done(l, err, 0);
}

static void ls_put_send(struct lsync *l)
{
	if (l->j->r->stopping) {
		ls_end(l);
		return;
	}
	peer_acquire(l->j->nodes[l->node[l->pulls[l->ipull].dst]], ls_put_on, l);
}

/* The copied page's next batch to its destination, or the next page. */
static void ls_put_next(struct lsync *l)
{
	struct repair *r = l->j->r;
	size_t bytes = 0;

	if (r->stopping) {
		ls_end(l);
		return;
	}
	if (l->ient >= l->nents) {
		if (l->more) {
			ls_gate(l, ls_query);
		} else {
			const struct ls_pull *p = &l->pulls[l->ipull];

			if (l->handoff) {
				r->st.listings_pushed++;
			} else {
				r->st.listings_pulled++;
				if (p->applied)		/* this node was behind */
					r->st.listings++;
				else			/* the peer had nothing new */
					memo_set_key(r, ls_memo_key(l, p->slot, p->id), p->digest);
			}
			l->ipull++;
			ls_next_pull(l);
		}
		return;
	}
	l->nbatch = 0;
	while (l->ient + l->nbatch < l->nents && l->nbatch < STO_LISTING_MAX_BATCH) {
		const struct sto_listing_entry *e = &l->ents[l->ient + l->nbatch];

		if (l->nbatch && bytes + e->key_len + e->value_len + 32 > LS_PUT_BYTES)
			break;
		bytes += e->key_len + e->value_len + 32;
		l->nbatch++;
	}
	l->nbytes = bytes;
	ls_gate(l, ls_put_send);
}

static void ls_page(void *arg, int status, const struct sto_listing_page *pg)
{
	struct lsync *l = arg;
	struct repair *r = l->j->r;
	size_t bytes = 0, off = 0;

	free(l->ents);
	free(l->arena);
	l->ents = NULL;
	l->arena = NULL;
	l->nents = l->ient = 0;
	if (status == 0 && pg) {
		/* The page borrows from the reply: copy it for the puts. */
		for (size_t i = 0; i < pg->n_entries; i++)
			bytes += pg->entries[i].key_len + pg->entries[i].value_len;
		l->ents = calloc(pg->n_entries + 1, sizeof(*l->ents));
		l->arena = malloc(bytes + 1);
		if (!l->ents || !l->arena)
			status = -ENOMEM;
	}
	if (status < 0 || !pg) {
		peer_check(l->j->nodes[l->node[l->pulls[l->ipull].slot]], status);
		ls_pull_failed(l);
		l->more = false;
		l->ipull++;
		ls_next_pull(l);
		return;
	}
	r->tok_bytes -= (double)bytes;		/* (the request paid its op) */
	r->st.bytes_read += bytes;
	for (size_t i = 0; i < pg->n_entries; i++) {
		struct sto_listing_entry *e = &l->ents[i];

		*e = pg->entries[i];
		memcpy(l->arena + off, e->key, e->key_len);
		e->key = l->arena + off;
		off += e->key_len;
		if (e->value_len) {
			memcpy(l->arena + off, e->value, e->value_len);
			e->value = l->arena + off;
			off += e->value_len;
		} else {
			e->value = NULL;
		}
	}
	l->nents = pg->n_entries;
	l->more = pg->is_truncated && pg->next_marker.len &&
		  pg->next_marker.len <= sizeof(l->marker);
	if (l->more) {
		memcpy(l->marker, pg->next_marker.data, pg->next_marker.len);
		l->marker_len = pg->next_marker.len;
	}
	ls_put_next(l);
}

static void ls_query_on(void *arg, sto_client *c, int err)
{
	struct lsync *l = arg;
	struct sto_listing_id id = { .part = l->j->part };
	struct sto_listing_query q = {
		.start_after = { l->marker, l->marker_len },
		.include_tombstones = true,
	};

	memcpy(id.id, l->pulls[l->ipull].id, STO_LISTING_ID_LEN);
	ls_charge(l->j->r, 0);
	if (!err) {
		err = sto_listing_query(c, &id, &q, ls_page, l);
		if (!err)
			return;
	}
	ls_page(l, err, NULL);
}

static void ls_query(struct lsync *l)
{
	if (l->j->r->stopping) {
		ls_end(l);
		return;
	}
	peer_acquire(l->j->nodes[l->node[l->pulls[l->ipull].slot]], ls_query_on, l);
}

static void ls_next_pull(struct lsync *l)
{
	if (l->j->r->stopping) {
		ls_end(l);
		return;
	}
	if (l->ipull >= l->npulls) {
		if (l->handoff)		/* what changed here while pushing? */
			ls_ask(l, LS_AGAIN, LS_AGAIN + 1, ls_drop_begin);
		else
			ls_end(l);
		return;
	}
	l->marker_len = 0;
	ls_gate(l, ls_query);
}

static void ls_add_slot(struct lsync *l, int node)
{
	if (node <= 0 || l->n >= LS_SLOTS)
		return;
	for (unsigned s = 1; s < l->n; s++)
		if (l->node[s] == (unsigned)node)
			return;
	l->node[l->n++] = (unsigned)node;
}

/* After the partition's suffixes (or at once, on a node that places
 * nothing of it): its listings. */
static void lsync_begin(struct job *j)
{
	struct repair *r = j->r;
	const int *prim;
	struct lsync *l;
	unsigned n;
	bool mine = false;

	if (r->rep_ring < 0 || j->prim[r->rep_ring][0] == -2) {
		job_done(j);
		return;
	}
	prim = j->prim[r->rep_ring];
	n = ring_placements(r->cfg.rings[r->rep_ring]);
	l = calloc(1, sizeof(*l));
	if (!l) {
		r->st.failed++;
		job_done(j);
		return;
	}
	l->j = j;
	l->n = 1;			/* slot 0: this node */
	for (unsigned i = 0; i < n; i++) {
		mine |= prim[i] == 0;
		ls_add_slot(l, prim[i]);
	}
	l->handoff = !mine;
	if (mine)	/* a rebalance: the previous holders are sources */
		for (unsigned i = 0; i < RING_MAX_PLACEMENTS; i++)
			ls_add_slot(l, j->oprim[r->rep_ring][i]);
	if (l->n < 2) {
		ls_free(l);
		job_done(j);
		return;
	}
	/* not a primary: this node's ids first (usually none: done) */
	ls_ask(l, 0, l->handoff ? 1 : l->n, l->handoff ? ls_plan_handoff : ls_plan);
}

/* --------------------------------------------------------------- jobs */

static void job_free(struct job *j)
{
	for (unsigned i = 0; i < RP_MAX_NODES; i++)
		free(j->sfx[i]);
	free(j->todo);
	free(j->digest);
	free(j->ents);
	free(j);
}

static void job_launch(struct repair *r);

static void job_done(struct job *j)
{
	struct repair *r = j->r;

	job_free(j);
	r->active_jobs--;
	r->st.parts_done++;
	job_launch(r);
	maybe_pass_end(r);
	maybe_stopped(r);
}

static void job_resume_blocked(struct repair *r)
{
	while (r->blocked && r->nheap < RP_QUEUE_MAX / 2) {
		struct job *j = r->blocked;

		r->blocked = j->next;
		j->next = NULL;
		job_next_suffix(j);
	}
}

static void job_suffix_listed(struct job *j)
{
	struct repair *r = j->r;
	uint32_t sfx = j->todo[j->itodo];
	bool all = true;
	unsigned actions;

	if (r->stopping) {
		job_done(j);
		return;
	}
	for (unsigned i = 0; i < j->n; i++)
		if (j->ok[i] && !j->lok[i])
			all = false;
	actions = plan(j);
	r->st.suffixes_listed++;
	/* Consistent as far as this node is concerned: skip it while no
	 * node's hash of it changes. */
	if (actions == 0 && all)
		memo_set(r, j->part, sfx, j->digest[j->itodo]);
	if (!all)
		r->st.unreachable++;
	j->itodo++;
	dispatch(r);
	job_next_suffix(j);
}

/* A node's answer for the current suffix. */
struct lreq {
	struct job *j;
	unsigned node;
};

static void job_entries(void *arg, int status, const struct sto_list_entry *v, size_t n)
{
	struct lreq *q = arg;
	struct job *j = q->j;

	if (status == 0 && j->nents + n > j->cap) {
		size_t cap = (j->nents + n) * 2;
		struct ent *e = realloc(j->ents, cap * sizeof(*e));

		if (e) {
			j->ents = e;
			j->cap = cap;
		} else {
			status = -ENOMEM;
		}
	}
	if (status == 0) {
		for (size_t i = 0; i < n; i++) {
			struct ent *e = &j->ents[j->nents++];

			memcpy(e->name, v[i].name, STO_NAME_HASH_LEN);
			e->frag = v[i].frag;
			e->ts = v[i].timestamp;
			e->size = v[i].size;
			e->tomb = v[i].tombstone;
			e->node = (uint16_t)q->node;
		}
		j->lok[q->node] = true;
	} else {
		peer_check(j->nodes[q->node], status);
	}
	free(q);
	if (--j->pending == 0)
		job_suffix_listed(j);
}

static void job_list_on(void *arg, sto_client *c, int err)
{
	struct lreq *q = arg;

	if (!err) {
		err = sto_list_objects(c, q->j->part, q->j->todo[q->j->itodo], job_entries, q);
		if (!err)
			return;
	}
	job_entries(q, err, NULL, 0);
}

static bool has_suffix(const struct job *j, unsigned node, uint32_t sfx)
{
	size_t lo = 0, hi = j->nsfx[node];	/* sorted by suffix */

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (j->sfx[node][mid].suffix < sfx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < j->nsfx[node] && j->sfx[node][lo].suffix == sfx;
}

static void lsync_begin(struct job *j);

static void job_next_suffix(struct job *j)
{
	struct repair *r = j->r;
	uint32_t sfx;

	if (r->stopping) {
		job_done(j);
		return;
	}
	if (j->itodo >= j->ntodo) {
		lsync_begin(j);		/* then the partition's listings */
		return;
	}
	if (r->nheap >= RP_QUEUE_MAX) {
		j->next = r->blocked;	/* the queue drains first */
		r->blocked = j;
		return;
	}
	sfx = j->todo[j->itodo];
	j->nents = 0;
	j->pending = 1;			/* guard: answers may come at once */
	for (unsigned i = 0; i < j->n; i++) {
		struct lreq *q;

		j->lok[i] = false;
		if (!j->ok[i])
			continue;
		if (!has_suffix(j, i, sfx)) {
			j->lok[i] = true;	/* known empty */
			continue;
		}
		q = calloc(1, sizeof(*q));
		if (!q)
			continue;	/* counts as not answered */
		q->j = j;
		q->node = i;
		j->pending++;
		peer_acquire(j->nodes[i], job_list_on, q);
	}
	if (--j->pending == 0)
		job_suffix_listed(j);
}

static int sfx_cmp(const void *a, const void *b)
{
	const struct sto_suffix_hash *x = a, *y = b;

	return x->suffix < y->suffix ? -1 : x->suffix > y->suffix;
}

/* Every node's suffix hashes are in: which suffixes to list. */
static void job_plan_suffixes(struct job *j)
{
	struct repair *r = j->r;
	size_t idx[RP_MAX_NODES] = { 0 }, cap = 0;

	for (unsigned i = 0; i < j->n; i++) {
		if (j->ok[i])
			qsort(j->sfx[i], j->nsfx[i], sizeof(*j->sfx[i]), sfx_cmp);
		cap += j->ok[i] ? j->nsfx[i] : 0;
	}
	j->todo = malloc((cap ? cap : 1) * sizeof(*j->todo));
	j->digest = malloc((cap ? cap : 1) * sizeof(*j->digest));
	if (!j->todo || !j->digest) {
		r->st.failed++;
		job_done(j);
		return;
	}
	for (;;) {
		uint32_t s = UINT32_MAX;
		uint64_t d = 0x9e3779b97f4a7c15ull;

		for (unsigned i = 0; i < j->n; i++)
			if (j->ok[i] && idx[i] < j->nsfx[i] && j->sfx[i][idx[i]].suffix < s)
				s = j->sfx[i][idx[i]].suffix;
		if (s == UINT32_MAX)
			break;
		/* The suffix's hash vector over the nodes; a node that did not
		 * answer makes it unlike any recorded one. */
		for (unsigned i = 0; i < j->n; i++) {
			uint64_t h = 0, c = 0;

			if (!j->ok[i]) {
				h = strata_now_ns();
			} else if (idx[i] < j->nsfx[i] && j->sfx[i][idx[i]].suffix == s) {
				h = j->sfx[i][idx[i]].hash;
				c = j->sfx[i][idx[i]].count;
				idx[i]++;
			}
			d = mix64(d ^ mix64(h + i) ^ (c << 17));
		}
		if (memo_same(r, j->part, s, d)) {
			r->st.suffixes_skipped++;
			continue;
		}
		j->digest[j->ntodo] = d;
		j->todo[j->ntodo++] = s;
	}
	j->state = JOB_SUFFIX;
	job_next_suffix(j);
}

static void job_start_peers(struct job *j);

/* Every asked node answered (or failed) its suffix hashes. */
static void job_sfx_complete(struct job *j)
{
	struct repair *r = j->r;

	if (j->state == JOB_LOCAL) {
		if (!j->ok[0]) {
			r->st.unreachable++;
			job_done(j);	/* our own node is down: nothing to do */
			return;
		}
		if (!j->primary && j->nsfx[0] == 0) {
			lsync_begin(j);	/* no data here: only listings may be */
			return;
		}
		job_start_peers(j);
		return;
	}
	job_plan_suffixes(j);
}

struct sreq {
	struct job *j;
	unsigned node;
};

static void job_suffixes(void *arg, int status, const struct sto_suffix_hash *v, size_t n)
{
	struct sreq *q = arg;
	struct job *j = q->j;
	unsigned node = q->node;

	free(q);
	if (status == 0) {
		j->sfx[node] = malloc((n ? n : 1) * sizeof(*v));
		if (j->sfx[node]) {
			if (n)
				memcpy(j->sfx[node], v, n * sizeof(*v));
			j->nsfx[node] = n;
			j->ok[node] = true;
		}
	} else {
		peer_check(j->nodes[node], status);
		if (node != 0)
			j->r->st.unreachable++;
	}
	if (--j->pending == 0)
		job_sfx_complete(j);
}

static void job_sfx_on(void *arg, sto_client *c, int err)
{
	struct sreq *q = arg;

	if (!err) {
		err = sto_list_suffixes(c, q->j->part, job_suffixes, q);
		if (!err)
			return;
	}
	job_suffixes(q, err, NULL, 0);
}

/* Asks node for its suffix hashes; j->pending must already count it. */
static void job_ask_suffixes(struct job *j, unsigned node)
{
	struct sreq *q = calloc(1, sizeof(*q));

	if (!q) {
		j->pending--;		/* the guard keeps j alive */
		return;
	}
	q->j = j;
	q->node = node;
	peer_acquire(j->nodes[node], job_sfx_on, q);
}

static void job_start_peers(struct job *j)
{
	j->state = JOB_PEERS;
	j->pending = j->n;		/* + 1 guard */
	for (unsigned i = 1; i < j->n; i++)
		job_ask_suffixes(j, i);
	if (--j->pending == 0)
		job_sfx_complete(j);
}

static unsigned job_node(struct job *j, const struct ring_dev *d)
{
	struct peer *p = peer_get(j->r, d->node);

	if (!p)
		return RP_MAX_NODES;
	for (unsigned i = 0; i < j->n; i++)
		if (j->nodes[i] == p)
			return i;
	if (j->n >= RP_MAX_NODES)
		return RP_MAX_NODES;
	j->nodes[j->n] = p;
	return j->n++;
}

/* A rebalance under way: the previous ring's holders of the partition join
 * the job (as sources, and so a moved placement is seen where it still is). */
static void job_prev_nodes(struct repair *r, struct job *j)
{
	for (unsigned g = 0; g < r->cfg.nrings; g++) {
		const struct ring *ring = r->cfg.prev[g];
		const struct ring_dev *devs[RING_MAX_PLACEMENTS];
		unsigned n;

		for (unsigned i = 0; i < RING_MAX_PLACEMENTS; i++)
			j->oprim[g][i] = -1;
		if (!ring || j->part >= ring_parts(ring))
			continue;
		n = ring_primaries(ring, j->part, devs, ring_placements(ring));
		for (unsigned i = 0; i < n; i++) {
			unsigned x = job_node(j, devs[i]);

			j->oprim[g][i] = x < RP_MAX_NODES ? (int)x : -1;
		}
	}
}

static void job_launch(struct repair *r)
{
	/* Jobs that finish at once (a node down) call back in here: the
	 * outer loop goes on instead of recursing. */
	if (r->launching)
		return;
	r->launching = true;
	while (!r->stopping && r->running && r->active_jobs < r->cfg.parallel &&
	       r->next_part < r->parts_total) {
		struct job *j = calloc(1, sizeof(*j));

		if (!j) {
			r->st.failed++;
			break;
		}
		j->r = r;
		j->part = r->next_part++;
		j->nodes[0] = r->self;
		j->n = 1;
		for (unsigned g = 0; g < r->cfg.nrings; g++) {
			const struct ring *ring = r->cfg.rings[g];
			const struct ring_dev *devs[RING_MAX_PLACEMENTS];
			unsigned n = ring_placements(ring);

			for (unsigned i = 0; i < RING_MAX_PLACEMENTS; i++)
				j->prim[g][i] = -2;	/* part not in this ring */
			if (j->part >= ring_parts(ring))
				continue;
			ring_primaries(ring, j->part, devs, n);
			for (unsigned i = 0; i < n; i++) {
				unsigned x = job_node(j, devs[i]);

				j->prim[g][i] = x < RP_MAX_NODES ? (int)x : -1;
				j->primary |= x == 0;
			}
		}
		job_prev_nodes(r, j);
		r->active_jobs++;
		j->state = JOB_LOCAL;
		j->pending = 2;		/* + 1 guard */
		job_ask_suffixes(j, 0);
		if (--j->pending == 0)
			job_sfx_complete(j);
	}
	r->launching = false;
}

/* -------------------------------------------------------------- passes */

static void pass_begin(struct repair *r);

static void on_next_pass(uv_timer_t *t)
{
	pass_begin(t->data);
}

/* Pending rings take over between passes (no job or item refers to a
 * ring then); the replaced one becomes the previous placement. */
static void rings_apply(struct repair *r)
{
	bool changed = false;

	for (unsigned g = 0; g < r->cfg.nrings; g++) {
		struct ring *next = r->pend[g];

		if (!next)
			continue;
		r->pend[g] = NULL;
		if (r->cfg.prev[g] && r->own_prev[g])
			ring_free(r->cfg.prev[g]);
		log_info("ring %u: v%llu in use (was v%llu); moving placements that changed", g,
			 (unsigned long long)ring_version(next),
			 (unsigned long long)ring_version(r->cfg.rings[g]));
		r->cfg.prev[g] = r->cfg.rings[g];
		r->own_prev[g] = r->own[g];
		r->cfg.rings[g] = next;
		r->own[g] = true;
		r->st.ring_changes++;
		r->st.ring_pass = r->st.pass + 1;	/* the pass beginning now */
		changed = true;
	}
	if (changed) {
		/* node indexes in the recorded hash vectors mean other nodes now */
		free(r->memo);
		r->memo = NULL;
		r->nmemo = r->capmemo = 0;
	}
}

static void pass_begin(struct repair *r)
{
	struct repair_stats keep = r->st;

	if (r->stopping)
		return;
	rings_apply(r);
	/* the pass counters start afresh; last_* and totals carry over */
	memset(&r->st, 0, offsetof(struct repair_stats, last_pass_wall_start));
	r->st.pass = keep.pass + 1;
	r->st.running = true;
	r->st.parts_total = r->parts_total;
	r->st.pass_start_ns = strata_now_ns();
	r->cur_wall_start = strata_wall_ns();
	memset(r->no_ring_logged, 0, sizeof(r->no_ring_logged));
	r->running = true;
	r->next_part = 0;
	log_debug("pass %llu: %u partitions", (unsigned long long)r->st.pass, r->parts_total);
	job_launch(r);
	maybe_pass_end(r);
}

/* After a pass that found work, the next one soon confirms the repairs (its
 * unchanged suffixes cost nothing); after one that could not reach a node,
 * soon enough to catch the node coming back; otherwise the interval. */
static uint64_t next_pass_ms(const struct repair *r)
{
	uint64_t ms = (uint64_t)r->cfg.interval_s * 1000;

	if ((r->st.planned || r->st.failed || r->st.awaiting) && ms > 1000)
		ms = 1000;
	else if (r->st.unreachable && ms > 5000)
		ms = 5000;
	return ms;
}

static void maybe_pass_end(struct repair *r)
{
	struct repair_stats *s = &r->st;

	if (!r->running || r->active_jobs || r->nheap || r->inflight ||
	    r->next_part < r->parts_total || r->stopping)
		return;
	r->running = false;
	s->running = false;
	s->last_pass_wall_start = r->cur_wall_start;
	s->last_pass_wall_end = strata_wall_ns();
	s->last_seconds = (double)(strata_now_ns() - s->pass_start_ns) / 1e9;
	s->last_planned = s->planned;
	s->last_repaired = s->repaired;
	s->last_failed = s->failed;
	s->last_unrecoverable = s->unrecoverable;
	s->last_unreachable = s->unreachable;
	s->last_awaiting = s->awaiting;
	s->last_push_planned = s->push_planned;
	s->last_bytes_written = s->bytes_written;
	s->last_handoffs = s->handoffs;
	s->last_purged = s->purged;
	s->last_listings = s->listings;
	s->last_no_ring = s->no_ring;
	s->last_clean = !s->planned && !s->repaired && !s->failed && !s->unrecoverable &&
			!s->unreachable && !s->skipped && !s->awaiting && !s->listings &&
			!s->no_ring;
	if (s->repaired || s->failed || s->unrecoverable || s->unreachable || s->awaiting ||
	    s->no_ring)
		log_info("pass %llu: %.1f s, %llu repaired (%llu rebuilt, %llu copied, "
			 "%llu tombstones, %llu pushed, %llu purged), %llu MB written, %llu failed, "
			 "%llu unrecoverable, %llu unreachable, %llu awaiting a push, "
			 "%llu of a policy with no ring here",
			 (unsigned long long)s->pass, s->last_seconds,
			 (unsigned long long)s->repaired, (unsigned long long)s->rebuilt,
			 (unsigned long long)s->copied, (unsigned long long)s->tombstones,
			 (unsigned long long)s->pushed, (unsigned long long)s->purged,
			 (unsigned long long)(s->bytes_written / 1000000),
			 (unsigned long long)s->failed, (unsigned long long)s->unrecoverable,
			 (unsigned long long)s->unreachable, (unsigned long long)s->awaiting,
			 (unsigned long long)s->no_ring);
	repair_write_status(r);
	if (r->cfg.once) {
		if (r->done)
			r->done(r->done_arg);
		return;
	}
	uv_timer_start(&r->next_pass, on_next_pass, next_pass_ms(r), 0);
}

/* --------------------------------------------------------------- status */

static double eta_seconds(const struct repair *r)
{
	const struct repair_stats *s = &r->st;
	double el = (double)(strata_now_ns() - s->pass_start_ns) / 1e9, eta = 0;

	if (!s->running)
		return 0;
	/* the scan's share: time per partition so far */
	if (s->parts_done)
		eta = el / s->parts_done * (s->parts_total - s->parts_done);
	/* the queue's: its bytes at the recent (or the capped) rate */
	if (s->queued_bytes) {
		double mbps = r->rate_mbps > 0 ? r->rate_mbps : r->cfg.max_mbps;
		double q = mbps > 0 ? (double)s->queued_bytes / (mbps * 1e6) : 0;

		if (q > eta)
			eta = q;
	}
	return eta;
}

int repair_write_status(struct repair *r)
{
	const struct repair_stats *s = &r->st;
	json_t *o, *last, *rings;
	char *txt;
	int ret;

	if (!r->cfg.status_path)
		return 0;
	rings = json_array();
	for (unsigned g = 0; rings && g < r->cfg.nrings; g++) {
		const struct ring_policy *pol = ring_policy(r->cfg.rings[g]);
		bool ec = pol->type == RING_POLICY_EC;
		uint64_t cur, prev;

		repair_ring_versions(r, g, &cur, &prev);
		json_array_append_new(rings, json_pack("{s:s, s:I, s:I, s:b, s:o}",
			"policy", ec ? "ec" : "replica", "version", (json_int_t)cur,
			"prev_version", (json_int_t)prev, "pending", r->pend[g] != NULL,
			"index", ec ? json_integer(pol->index) : json_null()));
	}
	last = json_pack("{s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
			 "started_ns", (json_int_t)s->last_pass_wall_start,
			 "finished_ns", (json_int_t)s->last_pass_wall_end,
			 "seconds", s->last_seconds,
			 "planned", (json_int_t)s->last_planned,
			 "repaired", (json_int_t)s->last_repaired,
			 "failed", (json_int_t)s->last_failed,
			 "unrecoverable", (json_int_t)s->last_unrecoverable,
			 "unreachable", (json_int_t)s->last_unreachable,
			 "awaiting", (json_int_t)s->last_awaiting,
			 "pushes_planned", (json_int_t)s->last_push_planned,
			 "bytes_written", (json_int_t)s->last_bytes_written,
			 "clean", s->last_clean);
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
		      " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:o, s:I, s:I,"
		      " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
		      "node", r->cfg.node_id,
		      "state", r->stopping ? "stopping" : s->running ? "running" : "idle",
		      "pass", (json_int_t)s->pass,
		      "parts_total", (json_int_t)s->parts_total,
		      "parts_done", (json_int_t)s->parts_done,
		      "queued", (json_int_t)r->nheap,
		      "queued_bytes", (json_int_t)s->queued_bytes,
		      "inflight", (json_int_t)r->inflight,
		      "suffixes_listed", (json_int_t)s->suffixes_listed,
		      "suffixes_skipped", (json_int_t)s->suffixes_skipped,
		      "planned", (json_int_t)s->planned,
		      "repaired", (json_int_t)s->repaired,
		      "rebuilt", (json_int_t)s->rebuilt,
		      "copied", (json_int_t)s->copied,
		      "tombstones", (json_int_t)s->tombstones,
		      "pushed", (json_int_t)s->pushed,
		      "failed", (json_int_t)s->failed,
		      "unrecoverable", (json_int_t)s->unrecoverable,
		      "unreachable", (json_int_t)s->unreachable,
		      "bytes_written", (json_int_t)s->bytes_written,
		      "bytes_read", (json_int_t)s->bytes_read,
		      "rate_mbps", r->rate_mbps,
		      "eta_seconds", eta_seconds(r),
		      "last_pass", last,
		      "total_repaired", (json_int_t)s->total_repaired,
		      "total_bytes_written", (json_int_t)s->total_bytes_written,
		      "total_rebuilt", (json_int_t)s->total_rebuilt,
		      "total_copied", (json_int_t)s->total_copied,
		      "total_tombstones", (json_int_t)s->total_tombstones,
		      "total_pushed", (json_int_t)s->total_pushed,
		      "awaiting", (json_int_t)s->awaiting,
		      "total_pushed_bytes", (json_int_t)s->total_pushed_bytes,
		      "purged", (json_int_t)s->purged,
		      "total_purged", (json_int_t)s->total_purged,
		      "ring_changes", (json_int_t)s->ring_changes,
		      "ring_pass", (json_int_t)s->ring_pass,
		      "rings", rings);
	if (o) {
		json_object_set_new(o, "handoffs", json_integer((json_int_t)s->handoffs));
		json_object_set_new(o, "listings_pulled",
				    json_integer((json_int_t)s->listings_pulled));
		json_object_set_new(o, "listing_entries",
				    json_integer((json_int_t)s->listing_entries));
		json_object_set_new(o, "total_listing_entries",
				    json_integer((json_int_t)s->total_listing_entries));
		json_object_set_new(last, "handoffs", json_integer((json_int_t)s->last_handoffs));
		json_object_set_new(last, "purged", json_integer((json_int_t)s->last_purged));
		json_object_set_new(last, "listings", json_integer((json_int_t)s->last_listings));
		json_object_set_new(last, "no_ring", json_integer((json_int_t)s->last_no_ring));
		json_object_set_new(o, "no_ring", json_integer((json_int_t)s->no_ring));
		json_object_set_new(o, "listings", json_integer((json_int_t)s->listings));
		json_object_set_new(o, "listings_pushed",
				    json_integer((json_int_t)s->listings_pushed));
		json_object_set_new(o, "listings_dropped",
				    json_integer((json_int_t)s->listings_dropped));
		json_object_set_new(o, "total_listings_dropped",
				    json_integer((json_int_t)s->total_listings_dropped));
	}
	if (o && r->node_st_ok) {
		const struct sto_stat *ns = &r->node_st;

		json_object_set_new(o, "node_audit", json_pack(
			"{s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I}",
			"passes", (json_int_t)ns->audit.passes,
			"checked", (json_int_t)ns->audit.checked,
			"bytes", (json_int_t)ns->audit.bytes,
			"corrupt", (json_int_t)ns->audit.corrupt,
			"pass_done", (json_int_t)ns->audit.pass_done,
			"pass_total", (json_int_t)ns->audit.pass_total,
			"last_pass_age", ns->audit.last_pass_age == UINT64_MAX ? json_null() :
					 json_integer((json_int_t)ns->audit.last_pass_age),
			"last_pass_seconds", (json_int_t)ns->audit.last_pass_seconds,
			"quarantined", (json_int_t)ns->quarantined,
			"purged", (json_int_t)ns->purged,
			"nospace", (json_int_t)ns->nospace,
			"misses", (json_int_t)ns->misses));
	}
	if (!o)
		return -ENOMEM;
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!txt)
		return -ENOMEM;
	ret = strata_write_file_atomic(r->cfg.status_path, txt, strlen(txt));
	free(txt);
	if (ret < 0)
		log_warn("status %s: %s", r->cfg.status_path, strerror(-ret));
	return ret;
}

static void node_stat_done(void *arg, int status, const struct sto_stat *st)
{
	struct repair *r = arg;

	r->node_st_busy = false;
	r->node_st_ok = status == 0 && st;
	if (r->node_st_ok)
		r->node_st = *st;
	else
		peer_check(r->self, status);
}

static void node_stat_on(void *arg, sto_client *c, int err)
{
	struct repair *r = arg;

	if (!err)
		err = sto_stat(c, node_stat_done, r);
	if (err)
		node_stat_done(r, err, NULL);
}

static void on_tick(uv_timer_t *t)
{
	struct repair *r = t->data;
	uint64_t now = strata_now_ns();

	if (r->cfg.status_path && !r->stopping && !r->node_st_busy && r->ticks++ % 3 == 0) {
		r->node_st_busy = true;
		peer_acquire(r->self, node_stat_on, r);
	}

	if (r->rate_bytes_ns && now > r->rate_bytes_ns)
		r->rate_mbps = 0.7 * r->rate_mbps + 0.3 * ((double)r->rate_bytes /
				(double)(now - r->rate_bytes_ns) * 1e3);
	r->rate_bytes = 0;
	r->rate_bytes_ns = now;
	dispatch(r);
	repair_write_status(r);
}

/* ---------------------------------------------------------------- API */

int repair_new(uv_loop_t *loop, const struct repair_cfg *cfg, struct repair **out)
{
	struct repair *r;
	bool found = false;
	int ret;

	if (!cfg->nrings || cfg->nrings > REPAIR_MAX_RINGS || !cfg->node_id)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->cfg = *cfg;
	if (!r->cfg.parallel)
		r->cfg.parallel = 4;
	if (!r->cfg.inflight)
		r->cfg.inflight = 16;
	if (!r->cfg.max_fragment)
		r->cfg.max_fragment = 256ull << 20;
	r->rep_ring = -1;
	memset(r->pol_ring, -1, sizeof(r->pol_ring));
	for (unsigned g = 0; g < cfg->nrings; g++) {
		const struct ring *ring = cfg->rings[g];
		const struct ring_policy *p = ring_policy(ring);

		/* Fragment numbers say the policy: two rings of one policy
		 * would both claim the same fragments. */
		if (p->type == RING_POLICY_REPLICA && r->rep_ring >= 0) {
			log_err("ring %u: a second replica ring (only one shares the nodes' "
				"key space)", g);
			ret = -EINVAL;
			goto out_free;
		}
		if (p->type == RING_POLICY_EC && (p->index > RING_MAX_POLICY ||
						  r->pol_ring[p->index] >= 0)) {
			log_err("ring %u: EC policy index %u %s", g, p->index,
				p->index > RING_MAX_POLICY ? "out of range" :
				"is another ring's too (strata-ring create --index)");
			ret = -EINVAL;
			goto out_free;
		}
		if (p->type == RING_POLICY_EC) {
			r->pol_ring[p->index] = (int8_t)g;
			ret = gw_ec_get(p->ec_k, p->ec_m, &r->ec[g]);
			if (ret < 0)
				goto out_free;
		} else {
			r->rep_ring = (int)g;
		}
		if (ring_parts(ring) > r->parts_total)
			r->parts_total = ring_parts(ring);
		for (unsigned i = 0; i < ring_dev_count(ring); i++)
			found |= !strcmp(ring_dev_at(ring, i)->node, cfg->node_id);
	}
	ret = -EINVAL;
	if (!found) {
		log_err("node %s is in none of the rings", cfg->node_id);
		goto out_free;
	}
	r->self = peer_get(r, cfg->node_id);
	if (!r->self)
		goto out_free;
	uv_timer_init(loop, &r->tick);
	uv_timer_init(loop, &r->next_pass);
	uv_timer_init(loop, &r->wake);
	r->tick.data = r->next_pass.data = r->wake.data = r;
	r->tok_ns = strata_now_ns();
	*out = r;
	return 0;

out_free:
	for (unsigned g = 0; g < REPAIR_MAX_RINGS; g++)
		gw_ec_put(r->ec[g]);
	free(r);
	return ret;
}

void repair_start(struct repair *r, void (*done)(void *arg), void *arg)
{
	r->done = done;
	r->done_arg = arg;
	r->rate_bytes_ns = strata_now_ns();
	uv_timer_start(&r->tick, on_tick, 1000, 1000);
	pass_begin(r);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct repair *r = h->data;

	if (--r->open_handles == 0 && r->stop_done)
		r->stop_done(r->stop_arg);
}

static void maybe_stopped(struct repair *r)
{
	if (!r->stopping || r->closed_tick || r->active_jobs || r->inflight)
		return;
	r->closed_tick = true;
	repair_write_status(r);
	r->open_handles = 3;
	uv_close((uv_handle_t *)&r->tick, on_handle_closed);
	uv_close((uv_handle_t *)&r->next_pass, on_handle_closed);
	uv_close((uv_handle_t *)&r->wake, on_handle_closed);
}

void repair_stop(struct repair *r, void (*done)(void *arg), void *arg)
{
	struct item *it;

	if (r->stopping)
		return;
	r->stopping = true;
	r->stop_done = done;
	r->stop_arg = arg;
	while ((it = queue_pop(r)))
		item_free(it);
	while (r->blocked) {
		struct job *j = r->blocked;

		r->blocked = j->next;
		job_done(j);
	}
	ls_resume(r);			/* (they see stopping and end) */
	/* Closing the connections fails what is in flight; the callbacks
	 * finish the jobs and items. */
	for (struct peer *p = r->peers; p; p = p->next)
		peer_reset(p, -ECANCELED);
	maybe_stopped(r);
}

void repair_free(struct repair *r)
{
	struct peer *p, *next;

	struct item *it;

	if (!r)
		return;
	while ((it = queue_pop(r)))
		item_free(it);
	for (p = r->peers; p; p = next) {
		next = p->next;
		free(p);
	}
	for (unsigned g = 0; g < r->cfg.nrings; g++) {
		ring_free(r->pend[g]);
		if (r->own[g])
			ring_free(r->cfg.rings[g]);
		if (r->own_prev[g])
			ring_free(r->cfg.prev[g]);
	}
	for (unsigned g = 0; g < REPAIR_MAX_RINGS; g++)
		gw_ec_put(r->ec[g]);
	free(r->heap);
	free(r->memo);
	free(r);
}

int repair_set_ring(struct repair *r, struct ring *next)
{
	for (unsigned g = 0; g < r->cfg.nrings; g++) {
		const struct ring *cur = r->pend[g] ? r->pend[g] : r->cfg.rings[g];
		const struct ring_policy *cp = ring_policy(cur), *np = ring_policy(next);
		int ret;

		/* the ring of next's policy: its type, and for EC its index */
		if (cp->type != np->type || (cp->type == RING_POLICY_EC && cp->index != np->index))
			continue;
		ret = ring_check_successor(cur, next);
		if (ret < 0)
			return ret;
		/* two pushes within one pass: the newer wins, the placement the
		 * data is at stays the previous one */
		ring_free(r->pend[g]);
		r->pend[g] = next;
		if (!r->running && !r->stopping && !r->cfg.once)
			uv_timer_start(&r->next_pass, on_next_pass, 0, 0);
		return 0;
	}
	return -ENOENT;
}

void repair_ring_versions(const struct repair *r, unsigned g, uint64_t *cur, uint64_t *prev)
{
	*cur = g < r->cfg.nrings ? ring_version(r->cfg.rings[g]) : 0;
	*prev = g < r->cfg.nrings && r->cfg.prev[g] ? ring_version(r->cfg.prev[g]) : 0;
}

void repair_get_stats(const struct repair *r, struct repair_stats *st)
{
	*st = r->st;
	st->queued = r->nheap;
	st->inflight = r->inflight;
}
