/* storage/engine.c: the disk engine.
 *
 * All data-file I/O goes through one io_uring, driven from the libuv loop:
 * SQEs are queued during callbacks and submitted once per loop iteration
 * (uv_prepare), completions wake the loop through an eventfd registered with
 * the ring (uv_poll). A PUT (or a DELETE's tombstone record) moves through
 *   receive (writes go out as each buffer fills, at most STO_PUT_WINDOW)
 *   -> writes done, CRC checked -> waits for its volume's fdatasync
 *   -> done (the volume record is the write-ahead log; the entry waits in
 *      an in-memory overlay) -> index group commit (LMDB, worker thread).
 * At start-up each volume is replayed from its checkpoint (vol_replay).
 * Every stage batches: one fdatasync per volume covers every write completed
 * before it was submitted, one LMDB transaction covers every PUT, DELETE,
 * quarantine and atime update queued while the previous one ran.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <liburing.h>

/* ------------------------------------------------------------ I/O ops */

enum sto_io_op { IO_READ, IO_WRITE, IO_FSYNC, IO_FALLOCATE, IO_WRITEBACK };

struct sto_io;
typedef void (*sto_io_fn)(struct sto_io *io, int res);

/* One io_uring operation; short reads and writes are resubmitted for the
 * rest, so done() sees the whole transfer or an error. */
struct sto_io {
	enum sto_io_op op;
	int fd;
	uint64_t off;
	struct iovec iov[6];		/* hdr, meta, data, table, pad */
	struct iovec *iovp;		/* instead of iov when set (batches) */
	unsigned iovcnt;
	int rw_flags;			/* IO_WRITE: RWF_DSYNC */
	uint64_t len;			/* IO_FALLOCATE, IO_FSYNC, IO_WRITEBACK */
	sto_io_fn done;
	struct sto_io *next;		/* backlog */
};

struct sto_commit;
typedef void (*sto_commit_fn)(struct sto_commit *c, int status);

/* One index operation waiting for (or in) a group commit. */
struct sto_commit {
	struct sto_idx_op op;
	sto_commit_fn done;
	struct sto_vol *vol;		/* PUT, DEL: the volume holding its record */
	uint64_t end;			/* PUT: record end in vol */
	struct sto_commit *next;
	/* A PUT or DELETE acknowledged before its index commit (its volume
	 * record is durable): it sits in the overlay until the commit is
	 * visible in LMDB, so lookups see it meanwhile. */
	bool acked, in_ov;
	uint64_t seq;			/* acked: e->ack_seq then */
	struct sto_commit *ov_next;
	/* On its volume's list of records not yet handed to a commit (sorted
	 * by offset): the head bounds the volume's replay checkpoint. */
	bool on_ck;
	struct sto_commit *ck_prev, *ck_next;
};

struct sto_put;

struct sto_vol {
	uint8_t medium, dir;
	uint32_t id;
	int fd;
	int dio_fd;			/* O_DIRECT, for large records (-1: not open) */
	uint64_t tail;			/* next record goes here */
	struct sto_put *sync_wait;	/* writes done, waiting for fdatasync */
	unsigned nsync;			/* fdatasyncs in flight */
	bool dirty;
	struct sto_vol *dirty_next;
	uint64_t dead;			/* committed dead bytes (at open) */
	uint64_t prealloc;		/* file allocated up to here */
	struct sto_engine *e;
	bool prealloc_busy, prealloc_stop;
	struct sto_io prealloc_io;
	unsigned refs;			/* reads in flight */
	unsigned pending;		/* PUTs allocated here, not yet finished */
	bool doomed;			/* compacted: free when refs drop to 0 */
	struct sto_commit *ck_head, *ck_tail;	/* records not yet in a commit */
	/* Zero-fill ahead of the tail (the small-record active volume only). */
	bool zero;			/* on for this volume */
	bool zero_busy, zero_syncing;	/* zero_io in flight: a write, a sync */
	uint64_t zeroed;		/* written with zeros up to here */
	uint64_t zero_off, zero_end;	/* the zero write in flight */
	uint64_t zero_from, zero_to;	/* zeros written, not yet synced */
	uint64_t zero_pause;		/* ns: no zeroing before (overtaken) */
	struct sto_io zero_io;
	struct sto_io *zero_wait;	/* record writes into zero_off..end */
	/* Whole records (one buffer each) filled during this loop iteration,
	 * by offset: written as runs of adjacent records, one SQE each. */
	struct put_write *wq;
	bool wq_on;			/* on e->wvols */
	unsigned ndsync;		/* RWF_DSYNC batches in flight */
	struct sto_vol *wq_next;
};

#define STO_BIG_ACTIVE	2		/* active volumes for large fragments */
#define STO_BIG_MIN	(8ull << 20)	/* a large fragment's record, from */

struct sto_dir {
	char *path;
	uint8_t medium, idx;
	int dfd;
	struct sto_vol **vols;		/* by id; vols[0] unused */
	uint32_t nvols;
	struct sto_vol *active;
	/* Large fragments stream into their own active volumes, several: io_uring
	 * serializes buffered writes to one file on one worker thread (copying
	 * into the page cache), so concurrent large PUTs go to different files. */
	struct sto_vol *big[STO_BIG_ACTIVE];
	uint64_t cap, avail, reserve;	/* statvfs at the last refresh */
	uint64_t allocated;		/* reserved since that refresh */
};

struct sto_put {
	struct sto_engine *e;
	struct sto_commit c;		/* key, loc, meta for the index */
	struct sto_vol *vol;
	uint8_t hdr[STO_REC_HDR];
	uint8_t *meta;
	uint32_t *table;		/* chunk CRCs */
	uint64_t nchunks;
	uint64_t size, received;
	uint32_t want_crc, crc, chunk_crc;
	uint8_t *cur;			/* buffer being filled */
	size_t cur_cap, cur_fill;
	uint64_t cur_off;		/* data offset of cur[0] */
	unsigned writes;		/* in flight */
	int status;			/* first error */
	bool blocked, aborted, all_in;
	sto_put_done_fn done;
	void (*resume)(void *arg);
	void *arg;
	bool move;			/* compaction copy (STO_IDX_MOVE) */
	bool tomb;			/* a DELETE's tombstone record */
	bool purge;			/* a PURGE's record (c.op.old: the entry) */
	/* O_DIRECT: the first buffer (buffered, with header and meta) ends
	 * at a 4 KiB-aligned file offset, so every later full buffer starts
	 * at one; the last (with the chunk table) is buffered again. */
	bool dio;
	uint32_t dio_head;		/* data bytes in the first buffer */
	struct sto_put *next;		/* volume sync lists */
};

struct put_write {
	struct sto_io io;
	struct sto_put *p;
	uint8_t *buf;
	uint64_t start, bytes;		/* file range written */
	bool synced;			/* by its batch's RWF_DSYNC */
	bool direct;			/* O_DIRECT: no writeback to start */
	struct put_write *next;		/* vol->wq, a batch */
};

struct sto_engine {
	uv_loop_t *loop;
	struct sto_engine_cfg cfg;
	struct io_uring ring;
	int efd;
	uv_poll_t poll;
	uv_prepare_t prep;
	uv_timer_t timer;
	unsigned handles_open;
	struct sto_dir dirs[2][STO_MAX_DIRS];
	unsigned ndirs[2];
	unsigned rr;
	struct sto_idx *idx;
	struct sto_io *backlog, *backlog_tail;
	struct sto_vol *dirty;
	struct sto_vol *wvols;			/* with queued record writes */
	struct sto_commit *cq, **cq_tail;	/* waiting for a commit */
	struct sto_commit *aq;			/* atime updates, flushed lazily */
	struct sto_commit *ov[4096];		/* overlay: acked, not yet in LMDB */
	struct sto_commit *retry;		/* acked, their commit failed */
	bool ckpt_frozen;			/* after such a failure: replay all */
	uint64_t ack_seq, vis_seq;		/* acked / visible in LMDB up to */
	struct list_req *list_wait;		/* LISTs waiting for vis_seq */
	struct sfx_cache *sc;			/* [STO_SFX_CACHE] */
	uint64_t list_scans;			/* suffix LISTs that read LMDB */
	unsigned naq;
	bool commit_inflight;
	struct commit_batch *held;		/* committed, meta not yet synced */
	uint64_t last_commit_ns;
	unsigned busy;				/* puts, reads, dels, works */
	bool closing;
	struct compactor *cmp;			/* compaction running */
	struct sto_tier *tier;			/* the hot/cold mover (tier.c) */
	uint64_t last_compact_check;
	struct lst_reap *reap;		/* listing tombstone sweep under way */
	void (*close_cb)(void *arg);
	void *close_arg;
	struct sto_stat st;
	/* PURGE records found by the start-up replay: applied after every
	 * volume's replay, so a record of the purged version replayed from
	 * another volume cannot bring it back. */
	struct sto_idx_op *rp_purge;
	size_t nrp_purge, caprp_purge;
	/* Replayed records that lost to an entry of the same timestamp at
	 * another place: if a purge then drops that entry, they were written
	 * after it (a version pushed here again) and are applied again. */
	struct sto_idx_op *rp_shadow;
	size_t nrp_shadow, caprp_shadow;
};

static const uint8_t zeros[STO_REC_ALIGN];

static void engine_maybe_finish_close(struct sto_engine *e);

/* In-flight work keeps the loop alive (the engine's handles alone don't). */
static void busy_get(struct sto_engine *e)
{
	if (e->busy++ == 0)
		uv_ref((uv_handle_t *)&e->poll);
}

static void busy_put(struct sto_engine *e)
{
	if (--e->busy == 0 && !e->closing)
		uv_unref((uv_handle_t *)&e->poll);
}

static struct iovec *io_iov(struct sto_io *io)
{
	return io->iovp ? io->iovp : io->iov;
}

static void io_prep(struct sto_io *io, struct io_uring_sqe *sqe)
{
	switch (io->op) {
	case IO_READ:
		io_uring_prep_readv(sqe, io->fd, io_iov(io), io->iovcnt, io->off);
		break;
	case IO_WRITE:
		io_uring_prep_writev2(sqe, io->fd, io_iov(io), io->iovcnt, io->off,
				      io->rw_flags);
		break;
	case IO_FSYNC:
		/* off/len: the range to write back (len 0: the whole file) */
		io_uring_prep_fsync(sqe, io->fd, IORING_FSYNC_DATASYNC);
		sqe->off = io->off;
		sqe->len = (uint32_t)io->len;
		break;
	case IO_FALLOCATE:
		io_uring_prep_fallocate(sqe, io->fd, 0, (off_t)io->off, (off_t)io->len);
		break;
	case IO_WRITEBACK:
		io_uring_prep_sync_file_range(sqe, io->fd, (unsigned)io->len, io->off,
					      SYNC_FILE_RANGE_WRITE);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
}

static void io_submit(struct sto_engine *e, struct sto_io *io)
{
	struct io_uring_sqe *sqe = NULL;

	if (!e->backlog) {
		sqe = io_uring_get_sqe(&e->ring);
		if (!sqe) {
			io_uring_submit(&e->ring);
			sqe = io_uring_get_sqe(&e->ring);
		}
	}
	if (!sqe) {
		io->next = NULL;
		if (e->backlog)
			e->backlog_tail->next = io;
		else
			e->backlog = io;
		e->backlog_tail = io;
		return;
	}
	io_prep(io, sqe);
}

static size_t iov_total(struct sto_io *io)
{
	const struct iovec *iov = io_iov(io);
	size_t n = 0;

	for (unsigned i = 0; i < io->iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* A short transfer: drop the bytes done and go again for the rest. */
static void io_advance(struct sto_io *io, size_t n)
{
	struct iovec *iov = io_iov(io);
	unsigned i = 0;

	io->off += n;
	while (i < io->iovcnt && n >= iov[i].iov_len)
		n -= iov[i++].iov_len;
	memmove(iov, iov + i, (io->iovcnt - i) * sizeof(iov[0]));
	io->iovcnt -= i;
	if (io->iovcnt) {
		iov[0].iov_base = (uint8_t *)iov[0].iov_base + n;
		iov[0].iov_len -= n;
	}
}

static void io_complete(struct sto_engine *e, struct sto_io *io, int res)
{
	if (res == -EAGAIN || res == -EINTR) {
		io_submit(e, io);
		return;
	}
	if ((io->op == IO_READ || io->op == IO_WRITE) && res >= 0) {
		size_t want = iov_total(io);

		if (res == 0 && want)
			res = -EIO;	/* EOF inside a record: truncated volume */
		else if ((size_t)res < want) {
			io_advance(io, (size_t)res);
			io_submit(e, io);
			return;
		}
	}
	io->done(io, res < 0 ? res : 0);
}

static void on_ring(uv_poll_t *h, int status, int events)
{
	struct sto_engine *e = h->data;
	struct io_uring_cqe *cqe;
	uint64_t cnt;

	if (read(e->efd, &cnt, sizeof(cnt)) < 0 && errno != EAGAIN)
		log_warn("eventfd read: %s", strerror(errno));
	while (io_uring_peek_cqe(&e->ring, &cqe) == 0) {
		struct sto_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&e->ring, cqe);
		io_complete(e, io, res);
	}
}

/* ------------------------------------------------------- space, volumes */

static void dir_refresh(struct sto_dir *d, const struct sto_engine_cfg *cfg)
{
	struct statvfs sv;
	uint64_t pct;

	if (fstatvfs(d->dfd, &sv) < 0)
		return;
	d->cap = (uint64_t)sv.f_blocks * sv.f_frsize;
	d->avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	d->allocated = 0;
	pct = d->cap / 100 * cfg->reserve_pct;
	d->reserve = cfg->reserve_bytes > pct ? cfg->reserve_bytes : pct;
}

static bool dir_has_room(const struct sto_dir *d, uint64_t n)
{
	uint64_t used = d->allocated + d->reserve + n;
	uint64_t avail = d->avail;

	/* Space preallocated in the active volume is no longer free space in
	 * statvfs, but it is room. */
	if (d->active && d->active->prealloc > d->active->tail)
		avail += d->active->prealloc - d->active->tail;
	for (unsigned i = 0; i < STO_BIG_ACTIVE; i++)
		if (d->big[i] && d->big[i]->prealloc > d->big[i]->tail)
			avail += d->big[i]->prealloc - d->big[i]->tail;
	return used >= n && used <= avail;
}

#define STO_PREALLOC	(64ull << 20)

static void vol_zero_maybe(struct sto_engine *e, struct sto_vol *v);

static void vol_prealloc_done(struct sto_io *io, int res)
{
	struct sto_vol *v = (struct sto_vol *)((char *)io - offsetof(struct sto_vol, prealloc_io));
	struct sto_engine *e = v->e;

	v->prealloc_busy = false;
	if (res < 0) {
		/* No room, or no fallocate here: appends work all the same. */
		log_debug("fallocate vol %u: %s", v->id, strerror(-res));
		v->prealloc_stop = true;
	} else {
		v->prealloc = io->off + io->len;
		vol_zero_maybe(e, v);
	}
	busy_put(e);
	engine_maybe_finish_close(e);
}

/* Appends extend the file, and an fdatasync after an append must also
 * commit the new size and blocks (a filesystem journal commit: ~1.5x the
 * cost of one for an overwrite, measured on ext4). So the active volume is
 * allocated ahead of its tail, 64 MiB at a time, asynchronously. */
static void vol_prealloc_maybe(struct sto_engine *e, struct sto_vol *v)
{
	uint64_t len = STO_PREALLOC;

	if (v->prealloc_busy || v->prealloc_stop ||
	    v->tail + STO_PREALLOC / 2 < v->prealloc || v->prealloc >= e->cfg.vol_max)
		return;
	/* The tail jumped past it (a large record reserved at once): cover
	 * that record too, so its direct writes find allocated blocks. */
	if (v->prealloc < v->tail) {
		v->prealloc &= ~(uint64_t)4095;
		len += v->tail - v->prealloc;
	}
	if (v->prealloc + len > e->cfg.vol_max)
		len = e->cfg.vol_max - v->prealloc;
	memset(&v->prealloc_io, 0, sizeof(v->prealloc_io));
	v->prealloc_io.op = IO_FALLOCATE;
	v->prealloc_io.fd = v->fd;
	v->prealloc_io.off = v->prealloc;
	v->prealloc_io.len = len;
	v->prealloc_io.done = vol_prealloc_done;
	v->prealloc_busy = true;
	busy_get(e);
	io_submit(e, &v->prealloc_io);
}

/* Zero-fill. Writes into fallocated (unwritten) extents make every
 * fdatasync an ext4 journal commit (the extents turn "written"); into blocks
 * already written it is just the data and a device flush. So the active
 * volume for small records gets zeros written ahead of its tail in the
 * background, 1 MiB at a time up to cfg.zero_ahead (default 32 MiB) ahead (within the
 * preallocated space), each 16 MiB made durable by an fdatasync of its own,
 * off every PUT's path. Large records' volumes are not zeroed: their
 * fdatasync cost is spread over many bytes, and zeroing would write them
 * twice. When the tail overtakes the zeroing (a burst of 1 MiB PUTs), it
 * pauses for a second instead of competing for the disk. A record write
 * into the range of the zero write in flight waits for it (zero_wait), so
 * zeros never land on a record. */
#define STO_ZERO_CHUNK	(1u << 20)
#define STO_ZERO_SYNC	(16ull << 20)

static const uint8_t zero_chunk[STO_ZERO_CHUNK];

static void vol_zero_done(struct sto_io *io, int res)
{
	struct sto_vol *v = (struct sto_vol *)((char *)io - offsetof(struct sto_vol, zero_io));
	struct sto_engine *e = v->e;
	struct sto_io *w = v->zero_wait;

	v->zero_busy = false;
	v->zero_wait = NULL;
	if (res < 0) {
		log_debug("zero-fill vol %u: %s", v->id, strerror(-res));
		v->zero = false;	/* best effort: appends work all the same */
	} else if (v->zero_syncing) {
		v->zero_from = v->zero_to = 0;
	} else {
		if (v->tail > v->zero_off)
			v->zero_pause = strata_now_ns() + 1000000000ull;
		v->zeroed = v->zero_end;
		if (v->zero_to <= v->zero_from)
			v->zero_from = v->zero_off;
		v->zero_to = v->zero_end;
	}
	v->zero_syncing = false;
	while (w) {
		struct sto_io *next = w->next;

		io_submit(e, w);
		w = next;
	}
	vol_zero_maybe(e, v);
	busy_put(e);
	engine_maybe_finish_close(e);
}

static void vol_zero_maybe(struct sto_engine *e, struct sto_vol *v)
{
	uint64_t start = (v->tail + 4095) & ~(uint64_t)4095;
	uint64_t limit = v->tail + e->cfg.zero_ahead;
	struct sto_io *io = &v->zero_io;

	if (!v->zero || v->zero_busy || e->closing)
		return;
	if (limit > v->prealloc)
		limit = v->prealloc;
	if (limit > e->cfg.vol_max)
		limit = e->cfg.vol_max;
	if (v->zeroed > start)
		start = v->zeroed;
	memset(io, 0, sizeof(*io));
	io->fd = v->fd;
	io->done = vol_zero_done;
	if (v->zero_to > v->zero_from &&
	    (v->zero_to - v->zero_from >= STO_ZERO_SYNC || start >= limit)) {
		io->op = IO_FSYNC;
		io->off = v->zero_from;
		io->len = v->zero_to - v->zero_from;	/* < vol_max */
		if (io->len > UINT32_MAX)
			io->len = 0;
		v->zero_syncing = true;
	} else if (start < limit && strata_now_ns() >= v->zero_pause) {
		uint64_t len = limit - start < STO_ZERO_CHUNK ? limit - start : STO_ZERO_CHUNK;

		io->op = IO_WRITE;
		io->off = start;
		io->iov[0] = (struct iovec){ (void *)zero_chunk, len };
		io->iovcnt = 1;
		v->zero_off = start;
		v->zero_end = start + len;
	} else {
		return;
	}
	v->zero_busy = true;
	busy_get(e);
	io_submit(e, io);
}

/* Does a write of [off, off + len) have to wait for the zero write? */
static bool vol_zero_overlaps(const struct sto_vol *v, uint64_t off, uint64_t len)
{
	return v->zero_busy && !v->zero_syncing && off < v->zero_end &&
	       off + len > v->zero_off;
}

/* ------------------------------------------------------------- recovery */

#define REPLAY_BATCH	1024

struct replay {
	struct sto_engine *e;
	struct sto_vol *v;
	struct sto_idx_op ops[REPLAY_BATCH];
	uint8_t *metas[REPLAY_BATCH];
	size_t n;
	uint64_t seen, applied, now;
	uint64_t whole;			/* bytes of whole records replayed */
};

/* Keeps op (a replayed record that conflicted) if the entry it lost to has
 * its very timestamp at another place. True when kept (meta with it). */
static bool replay_shadow(struct sto_engine *e, struct sto_idx_op *op, uint8_t *meta)
{
	struct sto_loc ex;

	if (sto_idx_get(e->idx, &op->key, &ex, NULL) < 0 || ex.ts != op->loc.ts ||
	    (ex.medium == op->loc.medium && ex.dir == op->loc.dir && ex.vol == op->loc.vol &&
	     ex.off == op->loc.off))
		return false;
	if (e->nrp_shadow == e->caprp_shadow) {
		size_t cap = e->caprp_shadow ? 2 * e->caprp_shadow : 16;
		struct sto_idx_op *v = realloc(e->rp_shadow, cap * sizeof(*v));

		if (!v)
			return false;	/* best effort: repair fetches it again */
		e->rp_shadow = v;
		e->caprp_shadow = cap;
	}
	e->rp_shadow[e->nrp_shadow] = *op;
	e->rp_shadow[e->nrp_shadow].meta = meta;
	e->nrp_shadow++;
	return true;
}

static int replay_flush(struct replay *r, const struct sto_vol_tail *tail)
{
	int ret = sto_idx_apply(r->e->idx, r->ops, r->n, tail, tail ? 1 : 0);

	for (size_t i = 0; i < r->n; i++) {
		if (ret == 0 && (r->ops[i].result == 0 ||
				 (r->ops[i].type == STO_IDX_DEL && r->ops[i].result == -ENOENT)))
			r->applied++;
		if (ret == 0 && r->ops[i].result == STO_ECONFLICT && !r->ops[i].copy &&
		    replay_shadow(r->e, &r->ops[i], r->metas[i]))
			continue;	/* the shadow owns the meta now */
		free(r->metas[i]);
	}
	r->n = 0;
	return ret;
}

/* The place a PURGE record names (STO_PURGE_META bytes). */
static void purge_meta_encode(uint8_t *m, const struct sto_loc *l)
{
	m[0] = l->medium;
	m[1] = l->dir;
	m[2] = (uint8_t)l->flags;
	m[3] = (uint8_t)(l->flags >> 8);
	for (int i = 0; i < 4; i++)
		m[4 + i] = (uint8_t)(l->vol >> (8 * i));
	for (int i = 0; i < 8; i++)
		m[8 + i] = (uint8_t)(l->off >> (8 * i));
}

static void purge_meta_decode(const uint8_t *m, struct sto_loc *l)
{
	l->medium = m[0];
	l->dir = m[1];
	l->flags = (uint16_t)(m[2] | m[3] << 8);
	l->vol = 0;
	for (int i = 0; i < 4; i++)
		l->vol |= (uint32_t)m[4 + i] << (8 * i);
	l->off = 0;
	for (int i = 0; i < 8; i++)
		l->off |= (uint64_t)m[8 + i] << (8 * i);
}

static int replay_purge(struct replay *r, uint64_t off, const struct sto_rec *rec,
			const uint8_t *meta)
{
	struct sto_engine *e = r->e;
	struct sto_idx_op *op;

	r->whole += sto_rec_len(rec->meta_len, rec->data_len);
	if (rec->meta_len != STO_PURGE_META)
		return 0;		/* not one this node wrote: ignored */
	if (e->nrp_purge == e->caprp_purge) {
		size_t cap = e->caprp_purge ? 2 * e->caprp_purge : 64;
		struct sto_idx_op *v = realloc(e->rp_purge, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		e->rp_purge = v;
		e->caprp_purge = cap;
	}
	op = &e->rp_purge[e->nrp_purge++];
	memset(op, 0, sizeof(*op));
	op->type = STO_IDX_PURGE;
	op->key = rec->key;
	purge_meta_decode(meta, &op->old);
	op->old.ts = rec->ts;
	op->loc.medium = r->v->medium;
	op->loc.dir = r->v->dir;
	op->loc.vol = r->v->id;
	op->loc.off = off;
	op->loc.ts = rec->ts;
	op->loc.meta_len = rec->meta_len;
	r->seen++;
	return 0;
}

/* After every volume's replay: the PURGE records past the checkpoints. */
static int replay_purges(struct sto_engine *e)
{
	size_t done = 0;
	int ret = 0;

	for (size_t i = 0; i < e->nrp_purge && ret == 0; i += REPLAY_BATCH) {
		size_t n = e->nrp_purge - i < REPLAY_BATCH ? e->nrp_purge - i : REPLAY_BATCH;

		ret = sto_idx_apply(e->idx, e->rp_purge + i, n, NULL, 0);
		for (size_t j = 0; ret == 0 && j < n; j++)
			done += e->rp_purge[i + j].result == 0;
	}
	/* A record of the same version at another place than the purged one
	 * was written after the purge: it is the entry now (newest wins, as
	 * ever, against anything else). */
	for (size_t i = 0; ret == 0 && done && i < e->nrp_shadow; i++)
		ret = sto_idx_apply(e->idx, &e->rp_shadow[i], 1, NULL, 0);
	if (ret == 0 && e->nrp_purge)
		ret = sto_idx_sync(e->idx);
	if (e->nrp_purge)
		log_info("replayed %zu purges (%zu applied): %s", e->nrp_purge, done,
			 ret < 0 ? sto_strerror(ret) : "ok");
	for (size_t i = 0; i < e->nrp_shadow; i++)
		free((void *)e->rp_shadow[i].meta);
	free(e->rp_shadow);
	e->rp_shadow = NULL;
	e->nrp_shadow = e->caprp_shadow = 0;
	free(e->rp_purge);
	e->rp_purge = NULL;
	e->nrp_purge = e->caprp_purge = 0;
	return ret;
}

static int replay_rec(void *arg, uint64_t off, const struct sto_rec *rec,
		      const uint8_t *meta)
{
	struct replay *r = arg;
	struct sto_idx_op *op = &r->ops[r->n];
	bool tomb = rec->flags & STO_REC_TOMBSTONE;

	if (rec->flags & STO_REC_PURGE)
		return replay_purge(r, off, rec, meta);
	memset(op, 0, sizeof(*op));
	op->type = tomb ? STO_IDX_DEL : STO_IDX_PUT;
	op->key = rec->key;
	op->loc.medium = r->v->medium;
	op->loc.dir = r->v->dir;
	op->loc.vol = r->v->id;
	op->loc.off = off;
	op->loc.size = rec->data_len;
	op->loc.ts = rec->ts;
	op->loc.crc = rec->data_crc;
	op->loc.meta_len = tomb ? 0 : rec->meta_len;
	op->loc.flags = tomb ? STO_LOC_TOMBSTONE : 0;
	op->loc.atime = r->now;
	op->loc.tier = rec->tier;
	op->loc.cold_after = rec->cold_after;
	op->copy = rec->flags & STO_REC_COPY;
	r->whole += sto_rec_len(rec->meta_len, rec->data_len);
	r->metas[r->n] = malloc(op->loc.meta_len + 1);
	if (!r->metas[r->n])
		return -ENOMEM;
	memcpy(r->metas[r->n], meta, op->loc.meta_len);
	op->meta = r->metas[r->n];
	r->n++;
	r->seen++;
	return r->n == REPLAY_BATCH ? replay_flush(r, NULL) : 0;
}

/* The volume is the write-ahead log: a PUT or DELETE is acknowledged once
 * its record is durable, before its index commit. The index records per
 * volume a checkpoint before which every record is indexed (durably, with
 * the commit that wrote it); re-apply every whole record past it, newest
 * timestamp winning as always (records already indexed are no-ops), torn
 * ones (never acknowledged) skipped. Then new records go after the last
 * record with a good header. Synchronous, at start-up (pread, not io_uring:
 * nothing else runs yet). */
static int vol_replay(struct sto_engine *e, struct sto_vol *v, uint64_t file_end)
{
	struct replay *r;
	struct sto_vol_tail t;
	uint64_t end;
	int ret;

	if (v->tail >= file_end)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->e = e;
	r->v = v;
	r->now = strata_wall_ns() / 1000000000ull;
	ret = sto_vol_replay(v->fd, v->tail, file_end, replay_rec, r, &end);
	if (ret == 0) {
		uint64_t from = v->tail;

		if (end > v->tail)
			v->tail = end;
		t = (struct sto_vol_tail){ v->medium, v->dir, v->id, v->tail, 0 };
		/* Space between the whole records up to the new tail (torn
		 * records, reserved and never written) is never reused. */
		if (v->tail - from > r->whole)
			t.dead = v->tail - from - r->whole;
		ret = replay_flush(r, &t);
	} else {
		for (size_t i = 0; i < r->n; i++)
			free(r->metas[i]);
	}
	if (ret == 0)
		ret = sto_idx_sync(e->idx);
	if (ret < 0)
		log_err("replay of vol %u: %s", v->id, sto_strerror(ret));
	else if (r->seen)
		log_info("vol %u: replayed %llu records past the index checkpoint, "
			 "%llu applied; tail %llu", v->id, (unsigned long long)r->seen,
			 (unsigned long long)r->applied, (unsigned long long)v->tail);
	free(r);
	return ret;
}

static void vol_close(struct sto_vol *v)
{
	close(v->fd);
	if (v->dio_fd >= 0)
		close(v->dio_fd);
}

/* With cfg.large_direct, large records' full 1 MiB buffers are written
 * with O_DIRECT through a second descriptor: no copy into the page cache
 * (which io_uring does on one io-wq worker per file) and no writeback for
 * the final fdatasync to wait for. Off by default: on the PVM guest this
 * was measured on, the direct writes were slower (docs/storage.md). Best
 * effort: where O_DIRECT can't be opened, buffered writes. */
static int vol_dio_fd(struct sto_dir *d, struct sto_vol *v)
{
	char path[4096];

	if (v->dio_fd >= 0)
		return v->dio_fd;
	if (sto_vol_path(path, sizeof(path), d->path, v->id) < 0)
		return -1;
	v->dio_fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (v->dio_fd < 0)
		log_debug("O_DIRECT open %s: %s", path, strerror(errno));
	return v->dio_fd;
}

static int vol_open(struct sto_engine *e, struct sto_dir *d, uint32_t id,
		    bool create, struct sto_vol **out)
{
	char path[4096];
	struct sto_vol *v;
	int ret;

	ret = sto_vol_path(path, sizeof(path), d->path, id);
	if (ret < 0)
		return ret;
	if (id >= d->nvols) {
		uint32_t n = id + 16;
		struct sto_vol **vols = realloc(d->vols, n * sizeof(*vols));

		if (!vols)
			return -ENOMEM;
		memset(vols + d->nvols, 0, (n - d->nvols) * sizeof(*vols));
		d->vols = vols;
		d->nvols = n;
	}
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->medium = d->medium;
	v->dir = d->idx;
	v->id = id;
	v->e = e;
	v->dio_fd = -1;
	v->fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0644);
	if (v->fd < 0) {
		ret = -errno;
		log_err("open %s: %s", path, strerror(-ret));
		free(v);
		return ret;
	}
	if (create) {
		/* XXX synchronous, on the loop: once per volume (1 GiB). The
		 * directory entry must be durable before any record in it is
		 * acknowledged. */
		fsync(d->dfd);
	} else {
		uint64_t tail = 0;

		ret = sto_idx_vol_info(e->idx, d->medium, d->idx, id, &tail, &v->dead);
		if (ret < 0 && ret != -ENOENT) {
			close(v->fd);
			free(v);
			return ret;
		}
		v->tail = tail;	/* anything past it was never acknowledged */
		{
			struct stat st;

			if (fstat(v->fd, &st) == 0)
				v->prealloc = (uint64_t)st.st_size;
		}
		ret = vol_replay(e, v, v->prealloc);
		if (ret < 0) {
			vol_close(v);
			free(v);
			return ret;
		}
	}
	d->vols[id] = v;
	*out = v;
	return 0;
}

static int dir_open(struct sto_engine *e, struct sto_dir *d, const char *path,
		    uint8_t medium, uint8_t idx)
{
	uint32_t max_id = 0;
	struct dirent *de;
	DIR *dh;
	int ret;

	d->medium = medium;
	d->idx = idx;
	d->path = strdup(path);
	if (!d->path)
		return -ENOMEM;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	d->dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dfd < 0)
		return -errno;
	dir_refresh(d, &e->cfg);
	dh = fdopendir(dup(d->dfd));
	if (!dh)
		return -errno;
	while ((de = readdir(dh))) {
		unsigned id;
		char tail;
		struct sto_vol *v;

		if (sscanf(de->d_name, "vol-%8x.dat%c", &id, &tail) != 1 || id == 0)
			continue;
		ret = vol_open(e, d, id, false, &v);
		if (ret < 0) {
			closedir(dh);
			return ret;
		}
		if (id > max_id)
			max_id = id;
	}
	closedir(dh);
	if (max_id && d->vols[max_id]->tail < e->cfg.vol_max) {
		d->active = d->vols[max_id];
		d->active->zero = true;
	}
	return 0;
}

static bool dir_is_active(const struct sto_dir *d, const struct sto_vol *v)
{
	if (v == d->active)
		return true;
	for (unsigned i = 0; i < STO_BIG_ACTIVE; i++)
		if (v == d->big[i])
			return true;
	return false;
}

/* The volume and offset for a record of n bytes in d. */
static int dir_alloc(struct sto_engine *e, struct sto_dir *d, uint64_t n,
		     struct sto_vol **vol, uint64_t *off)
{
	int ret;

	struct sto_vol **slot = &d->active;

	if (n >= STO_BIG_MIN) {
		/* The large-fragment volume with the fewest writers. */
		slot = &d->big[0];
		for (unsigned i = 1; i < STO_BIG_ACTIVE && *slot; i++)
			if (!d->big[i] || d->big[i]->pending < (*slot)->pending)
				slot = &d->big[i];
	}
	if (!*slot || ((*slot)->tail && (*slot)->tail + n > e->cfg.vol_max)) {
		uint32_t id = 1;

		for (uint32_t i = 1; i < d->nvols; i++)
			if (d->vols[i])
				id = i + 1;
		if (*slot)
			(*slot)->zero = false;	/* sealed */
		ret = vol_open(e, d, id, true, slot);
		if (ret < 0)
			return ret;
		(*slot)->zero = slot == &d->active;
	}
	*vol = *slot;
	*off = (*slot)->tail;
	(*slot)->tail += n;
	d->allocated += n;
	vol_prealloc_maybe(e, *slot);
	vol_zero_maybe(e, *slot);
	return 0;
}

/* ------------------------------------------- overlay, replay checkpoint */

#define OV_BUCKETS	4096

static unsigned ov_hash(const struct sto_key *k)
{
	uint32_t h;

	memcpy(&h, k->name, sizeof(h));
	return (h ^ k->part * 2654435761u ^ k->frag * 40503u) & (OV_BUCKETS - 1);
}

static struct sto_commit *ov_find(struct sto_engine *e, const struct sto_key *k)
{
	struct sto_commit *c = e->ov[ov_hash(k)];

	while (c && memcmp(&c->op.key, k, sizeof(*k)))
		c = c->ov_next;
	return c;
}

static void ov_remove(struct sto_engine *e, struct sto_commit *c)
{
	struct sto_commit **pp = &e->ov[ov_hash(&c->op.key)];

	if (!c->in_ov)
		return;
	while (*pp != c)
		pp = &(*pp)->ov_next;
	*pp = c->ov_next;
	c->in_ov = false;
}

/* c is the newest acknowledged version of its key (replaces an older one). */
static void ov_insert(struct sto_engine *e, struct sto_commit *c)
{
	struct sto_commit *old = ov_find(e, &c->op.key);

	if (old)
		ov_remove(e, old);
	c->ov_next = e->ov[ov_hash(&c->op.key)];
	e->ov[ov_hash(&c->op.key)] = c;
	c->in_ov = true;
}

/* The newest acknowledged state of k: the overlay, then the index. */
static int engine_get(struct sto_engine *e, const struct sto_key *k,
		      struct sto_loc *loc, void *meta_buf)
{
	struct sto_commit *c = ov_find(e, k);

	if (!c)
		return sto_idx_get(e->idx, k, loc, meta_buf);
	if (c->op.type == STO_IDX_PURGE) {
		memset(loc, 0, sizeof(*loc));	/* purged: nothing there */
		return -ENOENT;
	}
	*loc = c->op.loc;
	if (meta_buf && loc->meta_len)
		memcpy(meta_buf, c->op.meta, loc->meta_len);
	return 0;
}

static void ck_add(struct sto_vol *v, struct sto_commit *c)
{
	c->ck_next = NULL;
	c->ck_prev = v->ck_tail;
	if (v->ck_tail)
		v->ck_tail->ck_next = c;
	else
		v->ck_head = c;
	v->ck_tail = c;
	c->on_ck = true;
}

static void ck_del(struct sto_vol *v, struct sto_commit *c)
{
	if (!c->on_ck)
		return;
	if (c->ck_prev)
		c->ck_prev->ck_next = c->ck_next;
	else
		v->ck_head = c->ck_next;
	if (c->ck_next)
		c->ck_next->ck_prev = c->ck_prev;
	else
		v->ck_tail = c->ck_prev;
	c->on_ck = false;
}

/* Where a replay of v must start if the commit being built is the last one
 * to survive: the first record not handed to it (or an earlier commit). */
static uint64_t vol_checkpoint(const struct sto_vol *v)
{
	return v->ck_head ? v->ck_head->op.loc.off : v->tail;
}

/* --------------------------------------------------------- group commit */

/* The suffix hashes of recently listed partitions, direct-mapped by
 * partition. Replication compares them often and most partitions are
 * unchanged between two rounds, so a LIST of an unchanged partition costs
 * no LMDB scan. Every write that can change a partition's entries (PUT,
 * DELETE, quarantine, compaction move) bumps its slot's generation when it
 * is queued for the index, which is when it is acknowledged (PUT, DELETE) or
 * before it is visible: a cached answer stays valid only while its slot's
 * generation is the one its scan started under. */
#define STO_SFX_CACHE	1024

struct sfx_cache {
	uint32_t part;
	bool valid;
	uint64_t gen;
	struct sto_suffix_hash *v;
	size_t n;
};

static void sfx_cache_bump(struct sto_engine *e, uint32_t part)
{
	struct sfx_cache *c = &e->sc[part % STO_SFX_CACHE];

	c->gen++;
	c->valid = false;
}

static void commit_queue(struct sto_engine *e, struct sto_commit *c)
{
	if (c->op.type == STO_IDX_PUT || c->op.type == STO_IDX_DEL ||
	    c->op.type == STO_IDX_QUARANTINE || c->op.type == STO_IDX_MOVE ||
	    c->op.type == STO_IDX_REAP || c->op.type == STO_IDX_PURGE)
		sfx_cache_bump(e, c->op.key.part);
	c->next = NULL;
	*e->cq_tail = c;
	e->cq_tail = &c->next;
}

struct commit_batch {
	uv_work_t work;
	struct sto_engine *e;
	struct sto_commit *list;
	struct sto_idx_op *ops;
	size_t n;
	struct sto_vol_tail *tails;
	size_t ntails;
	int ret;			/* of the transaction (or the sync) */
	int flush_ret;			/* did the previous batch become durable? */
	bool lazy;			/* only acked writes and atime: no waiter */
};

/* Batch N is acknowledged when batch N+1's commit (which syncs the file, and
 * with it N's meta page) returns, or, when nothing follows, after a sync-only
 * batch (n == 0). */
static void commit_work(uv_work_t *w)
{
	struct commit_batch *b = w->data;
	struct sto_idx *x = sto_engine_idx(b->e);

	if (b->n == 0) {
		b->ret = b->flush_ret = sto_idx_sync(x);
		return;
	}
	b->ret = sto_idx_apply(x, b->ops, b->n, b->tails, b->ntails);
	b->flush_ret = b->ret < 0 ? sto_idx_sync(x) : 0;
}

static void commit_ack(struct commit_batch *b, int err)
{
	struct sto_engine *e = b->e;
	struct sto_commit *c = b->list, *next;
	size_t i = 0;

	for (; c; c = next, i++) {
		next = c->next;
		if (c->acked && err < 0) {
			/* Acknowledged already: its record is durable in the
			 * volume. Stop moving replay checkpoints (a restart
			 * then replays it) and, while it is not in LMDB, keep
			 * it in the overlay and try again (timer). */
			e->ckpt_frozen = true;
			if (c->in_ov && !e->closing) {
				c->next = e->retry;
				e->retry = c;
				continue;
			}
			ov_remove(e, c);
		}
		c->op.result = b->ops[i].result;
		c->op.loc = b->ops[i].loc;
		c->done(c, err < 0 ? err : c->op.result);
	}
	free(b->ops);
	free(b->tails);
	free(b);
}

static void list_wake(struct sto_engine *e);

static void commit_after(uv_work_t *w, int status)
{
	struct commit_batch *b = w->data;
	struct sto_engine *e = b->e;
	struct commit_batch *prev = e->held;

	if (b->ret < 0)
		log_err("index commit of %zu ops: %s", b->n, sto_strerror(b->ret));
	if (b->flush_ret < 0 && prev)
		log_err("index sync: %s", sto_strerror(b->flush_ret));
	if (b->n) {
		e->st.group_commits++;
		e->st.commit_us += (strata_now_ns() - e->last_commit_ns) / 1000;
	}
	e->held = NULL;
	if (b->n && b->ret == 0) {
		/* Visible in LMDB now: lookups no longer need the overlay. */
		for (struct sto_commit *c = b->list; c; c = c->next)
			if (c->acked) {
				ov_remove(e, c);
				if (c->seq > e->vis_seq)
					e->vis_seq = c->seq;
			}
		list_wake(e);
	}
	if (prev)
		commit_ack(prev, b->flush_ret < 0 ? -EIO : 0);
	if (b->n == 0)
		free(b);
	else if (b->ret < 0)
		commit_ack(b, b->ret);
	else
		e->held = b;
	e->commit_inflight = false;
	busy_put(e);
	engine_maybe_finish_close(e);
}

static void commit_start(struct sto_engine *e)
{
	struct commit_batch *b;
	struct sto_commit *c;
	size_t n = 0, i = 0;
	bool lazy = true;

	/* atime updates ride along with real work, or go once a second. */
	if (e->aq && (e->cq || e->closing ||
		      strata_now_ns() - e->last_commit_ns > 1000000000ull)) {
		struct sto_commit *a = e->aq;

		e->aq = NULL;
		e->naq = 0;
		while (a) {
			struct sto_commit *next = a->next;

			commit_queue(e, a);
			a = next;
		}
	}
	if (e->commit_inflight || (!e->cq && !e->held))
		return;
	for (c = e->cq; c; c = c->next) {
		n++;
		lazy &= c->acked || c->op.type == STO_IDX_ATIME;
	}
	/* Nobody waits for a batch of acknowledged writes: while more are on
	 * their way (in flight), let it grow for up to cfg.commit_defer_ms so
	 * fewer LMDB flushes compete with the volumes' fdatasyncs. */
	if (n && lazy && !e->list_wait && (!e->held || e->held->lazy) &&
	    !e->closing && n < 4096 &&
	    e->busy > n + (e->held ? e->held->n : 0) &&
	    strata_now_ns() - e->last_commit_ns < e->cfg.commit_defer_ms * 1000000ull)
		return;
	b = calloc(1, sizeof(*b));
	if (!b)
		return;		/* retried next iteration */
	b->e = e;
	b->work.data = b;
	if (n == 0) {
		/* Nothing follows the held batch: a sync makes it durable. */
		e->commit_inflight = true;
		busy_get(e);
		uv_queue_work(e->loop, &b->work, commit_work, commit_after);
		return;
	}
	b->ops = malloc(n * sizeof(*b->ops));
	b->tails = malloc(n * sizeof(*b->tails));
	if (!b->ops || !b->tails) {
		free(b->ops);
		free(b->tails);
		free(b);
		return;
	}
	b->e = e;
	b->list = e->cq;
	b->n = n;
	b->lazy = lazy;
	for (c = e->cq; c; c = c->next)
		if (c->vol)
			ck_del(c->vol, c);
	for (c = e->cq; c; c = c->next, i++) {
		b->ops[i] = c->op;
		if (c->vol) {
			size_t t;

			for (t = 0; t < b->ntails; t++)
				if (b->tails[t].medium == c->vol->medium &&
				    b->tails[t].dir == c->vol->dir &&
				    b->tails[t].vol == c->vol->id)
					break;
			if (t == b->ntails)
				b->tails[b->ntails++] = (struct sto_vol_tail){
					c->vol->medium, c->vol->dir, c->vol->id, 0, 0 };
			/* The replay checkpoint (the index is complete up to
			 * it once this commit is durable), not c->end: records
			 * before c may still be unsynced or uncommitted. */
			b->tails[t].tail = e->ckpt_frozen ? 0 : vol_checkpoint(c->vol);
		}
	}
	e->cq = NULL;
	e->cq_tail = &e->cq;
	b->work.data = b;
	e->commit_inflight = true;
	e->last_commit_ns = strata_now_ns();
	busy_get(e);
	uv_queue_work(e->loop, &b->work, commit_work, commit_after);
}

static void vol_put(struct sto_vol *v)
{
	if (--v->refs == 0 && v->doomed) {
		vol_close(v);
		free(v);
	}
}

/* ------------------------------------------------------------------ PUT */

static void put_free(struct sto_put *p)
{
	struct sto_engine *e = p->e;

	if (p->vol) {
		p->vol->pending--;
		ck_del(p->vol, &p->c);
	}
	ov_remove(e, &p->c);
	free(p->cur);
	free(p->meta);
	free(p->table);
	free(p);
	busy_put(e);
	engine_maybe_finish_close(e);
}

static void put_count(struct sto_put *p, int status)
{
	if (p->purge && status == 0)
		p->e->st.purged++;
	else if (p->purge)
		;
	else if (p->tomb && (status == 0 || status == -ENOENT))
		p->e->st.deletes++;
	else if (status == 0 && !p->move) {
		p->e->st.puts++;
		p->e->st.tier.writes[p->c.op.loc.medium & 1]++;
	}
	else if (status == -ENOSPC)
		p->e->st.nospace++;
	else if (status == STO_ECONFLICT)
		p->e->st.conflicts++;
}

static void put_finish(struct sto_put *p, int status)
{
	put_count(p, status);
	p->done(p->arg, status, &p->c.op.loc);
	put_free(p);
}

static void put_committed(struct sto_commit *c, int status)
{
	struct sto_put *p = (struct sto_put *)((char *)c - offsetof(struct sto_put, c));

	if (c->acked)
		put_free(p);		/* acknowledged when its record was durable */
	else
		put_finish(p, status);
}

/* The record of a PUT or DELETE is durable in its volume: that is the
 * write-ahead log, so decide it against the newest acknowledged state
 * (overlay, index) and acknowledge now. The index commit follows; until it
 * is visible the overlay answers lookups, and until it is durable a restart
 * replays the record (the volume's checkpoint stays before it). */
static void put_durable(struct sto_put *p)
{
	struct sto_engine *e = p->e;
	struct sto_loc ex;
	int ret, status = 0;

	ret = engine_get(e, &p->c.op.key, &ex, NULL);
	if (ret < 0 && ret != -ENOENT) {
		put_finish(p, ret);
		return;
	}
	if (p->purge) {
		/* Only the very entry it was asked for (its record's replay
		 * drops the same one, or nothing). */
		if (ret < 0 || ex.ts != p->c.op.old.ts || ex.medium != p->c.op.old.medium ||
		    ex.dir != p->c.op.old.dir || ex.vol != p->c.op.old.vol ||
		    ex.off != p->c.op.old.off) {
			put_finish(p, ret < 0 ? -ENOENT : STO_ECONFLICT);
			return;
		}
	} else if (ret == 0 && ex.ts >= p->c.op.loc.ts) {
		put_finish(p, STO_ECONFLICT);	/* a newer one won meanwhile */
		return;
	}
	if (p->tomb)
		status = ret == 0 && !(ex.flags & STO_LOC_TOMBSTONE) ? 0 : -ENOENT;
	p->c.acked = true;
	p->c.seq = ++e->ack_seq;
	ov_insert(e, &p->c);
	commit_queue(e, &p->c);
	put_count(p, status);
	p->done(p->arg, status, &p->c.op.loc);
}

static void vol_mark_dirty(struct sto_engine *e, struct sto_vol *v)
{
	if (v->dirty || v->nsync >= e->cfg.sync_depth)
		return;
	v->dirty = true;
	v->dirty_next = e->dirty;
	e->dirty = v;
}

static void put_writes_done(struct sto_put *p, bool synced)
{
	if (p->aborted) {
		put_free(p);
		return;
	}
	if (p->status == 0 && p->crc != p->want_crc) {
		p->e->st.crc_errors++;
		p->status = STO_ECRC;
	}
	if (p->status < 0) {
		put_finish(p, p->status);
		return;
	}
	if (synced) {			/* its one write was RWF_DSYNC */
		if (p->move)
			commit_queue(p->e, &p->c);	/* acknowledged once indexed */
		else
			put_durable(p);
		return;
	}
	p->next = p->vol->sync_wait;
	p->vol->sync_wait = p;
	vol_mark_dirty(p->e, p->vol);
}

struct writeback {
	struct sto_io io;
	struct sto_engine *e;
};

static void writeback_done(struct sto_io *io, int res)
{
	struct sto_engine *e = ((struct writeback *)io)->e;

	free(io);
	busy_put(e);
	engine_maybe_finish_close(e);
}

/* Starts writeback of a large PUT's buffer as soon as it is written, so
 * the fdatasync at its end finds little left to do (and the disk is busy
 * while the rest streams in). Best effort: a failure only costs time. */
static void put_writeback(struct sto_engine *e, int fd, uint64_t off, uint64_t len)
{
	struct writeback *wb = calloc(1, sizeof(*wb));
	struct sto_io *io = &wb->io;

	if (!wb)
		return;
	wb->e = e;
	busy_get(e);
	io->op = IO_WRITEBACK;
	io->fd = fd;
	io->off = off;
	io->len = len;
	io->done = writeback_done;
	io_submit(e, io);
}

static void put_write_done(struct sto_io *io, int res)
{
	struct put_write *w = (struct put_write *)io;
	struct sto_put *p = w->p;
	bool synced = w->synced;

	if (res == 0 && p->size >= 4 * STO_PUT_BUF && !p->aborted && !w->direct)
		put_writeback(p->e, p->vol->fd, w->start, w->bytes);

	free(w->buf);
	free(w);
	p->writes--;
	if (res < 0 && p->status == 0) {
		if (res != -ENOSPC)
			log_err("write vol %u off %llu: %s", p->vol->id,
				(unsigned long long)p->c.op.loc.off, strerror(-res));
		p->status = res;
	}
	if (p->all_in) {
		if (p->writes == 0)
			put_writes_done(p, synced);
	} else if (p->blocked && !p->aborted) {
		p->blocked = false;
		p->resume(p->arg);
	}
}

static unsigned e_small_mode(const struct sto_engine *e)
{
	return e->cfg.small_writes ? e->cfg.small_writes : STO_SMALL_DEFAULT;
}

/* v has queued record writes: on_prepare writes them. */
static void put_write_queue_kick(struct sto_engine *e, struct sto_vol *v)
{
	if (!v->wq_on && v->wq) {
		v->wq_on = true;
		v->wq_next = e->wvols;
		e->wvols = v;
	}
}

/* A whole small record is ready: it waits (sorted by offset) for the end of
 * this loop iteration, when runs of adjacent ones go out as one write. */
static void put_write_queue(struct sto_engine *e, struct sto_vol *v,
			    struct put_write *w)
{
	struct put_write **pp = &v->wq;

	while (*pp && (*pp)->start < w->start)
		pp = &(*pp)->next;
	w->next = *pp;
	*pp = w;
	put_write_queue_kick(e, v);
}

/* Adjacent whole records written by one SQE: io_uring runs buffered writes
 * to one file one at a time on one io-wq worker anyway, so a run of N
 * records costs one punt, one ext4 write call and one completion instead of
 * N. In STO_SMALL_DSYNC mode the write carries RWF_DSYNC: the kernel syncs
 * the run's range (data, any metadata it needs, a device flush) right after
 * writing it, on the same worker, with no trip through the loop between the
 * write and its fdatasync. */
struct write_batch {
	struct sto_io io;
	struct sto_vol *v;
	struct put_write *list;
	uint64_t t0;			/* ns */
	struct iovec iov[];
};

/* Records batched: at most this long. The per-write cost matters for small
 * ones; a 1 MiB record rarely has a neighbour completing in the same loop
 * iteration, so it goes out at once, as before. */
#define STO_BATCH_REC	(256u << 10)
#define STO_BATCH_IOV	256
#define STO_BATCH_BYTES	(4u << 20)
/* RWF_DSYNC batches in flight per volume. io_uring runs them one after the
 * other anyway (buffered writes to one file share one worker), so more only
 * makes each smaller; the second is queued so the worker goes on at once. */
#define STO_DSYNC_DEPTH	2

static void batch_done(struct sto_io *io, int res)
{
	struct write_batch *b = (struct write_batch *)io;
	struct sto_engine *e = b->v->e;
	struct put_write *w = b->list, *next;
	bool dsync = io->rw_flags != 0;

	if (dsync) {
		e->st.fsync_us += (strata_now_ns() - b->t0) / 1000;
		if (res < 0)
			log_err("write+sync vol %u: %s", b->v->id, strerror(-res));
		b->v->ndsync--;
		put_write_queue_kick(e, b->v);
	}
	free(b);
	for (; w; w = next) {
		next = w->next;
		w->synced = dsync && res == 0;
		put_write_done(&w->io, res);
	}
}

static void vol_write_queued(struct sto_engine *e, struct sto_vol *v)
{
	bool dsync = e_small_mode(e) == STO_SMALL_DSYNC;
	struct put_write *w;

	v->wq_on = false;
	while ((w = v->wq) && (!dsync || v->ndsync < STO_DSYNC_DEPTH)) {
		struct put_write *end = w;
		unsigned niov = w->io.iovcnt;
		uint64_t bytes = w->bytes;
		struct write_batch *b;

		while (end->next && end->next->start == end->start + end->bytes &&
		       niov + end->next->io.iovcnt <= STO_BATCH_IOV &&
		       bytes + end->next->bytes <= STO_BATCH_BYTES) {
			end = end->next;
			niov += end->io.iovcnt;
			bytes += end->bytes;
		}
		b = malloc(sizeof(*b) + niov * sizeof(struct iovec));
		if (!b) {
			/* No memory for a batch: this record alone, as before. */
			end = w;
			bytes = w->bytes;
		}
		v->wq = end->next;
		end->next = NULL;
		if (b) {
			memset(&b->io, 0, sizeof(b->io));
			b->v = v;
			b->list = w;
			b->t0 = strata_now_ns();
			b->io.op = IO_WRITE;
			b->io.fd = v->fd;
			b->io.off = w->start;
			b->io.iovp = b->iov;
			b->io.done = batch_done;
			if (dsync) {
				b->io.rw_flags = RWF_DSYNC;
				e->st.fsyncs++;
				v->ndsync++;
			}
			for (struct put_write *x = w; x; x = x->next)
				for (unsigned i = 0; i < x->io.iovcnt; i++)
					b->iov[b->io.iovcnt++] = x->io.iov[i];
		}
		{
			struct sto_io *io = b ? &b->io : &w->io;

			if (vol_zero_overlaps(v, w->start, bytes)) {
				io->next = v->zero_wait;
				v->zero_wait = io;
			} else {
				io_submit(e, io);
			}
		}
	}
}

/* Writes the filled buffer (with the header in front when it is the first,
 * the chunk CRC table and padding behind when it is the last). */
static int put_flush(struct sto_put *p)
{
	struct put_write *w = calloc(1, sizeof(*w));
	uint64_t rec_off = p->c.op.loc.off;
	uint32_t meta_len = p->c.op.loc.meta_len;
	bool first = p->cur_off == 0, last = p->cur_off + p->cur_fill == p->size;
	struct sto_io *io;

	if (!w)
		return -ENOMEM;
	io = &w->io;
	w->p = p;
	w->buf = p->cur;
	io->op = IO_WRITE;
	io->fd = p->vol->fd;
	io->done = put_write_done;
	io->off = rec_off + sto_rec_data_off(meta_len) + p->cur_off;
	if (first) {
		io->off = rec_off;
		io->iov[io->iovcnt++] = (struct iovec){ p->hdr, STO_REC_HDR };
		if (meta_len)
			io->iov[io->iovcnt++] = (struct iovec){ p->meta, meta_len };
	}
	if (p->cur_fill)
		io->iov[io->iovcnt++] = (struct iovec){ p->cur, p->cur_fill };
	/* A full buffer between the first and the last: aligned in the file
	 * (dio_head) and in memory (posix_memalign). */
	if (p->dio && !first && !last && io->off % STO_DIO_ALIGN == 0 &&
	    p->cur_fill % STO_DIO_ALIGN == 0) {
		io->fd = p->vol->dio_fd;
		w->direct = true;
	}
	if (last) {
		uint64_t tab = 4 * p->nchunks;
		uint64_t end = sto_rec_table_off(meta_len, p->size) + tab;
		uint64_t pad = sto_rec_len(meta_len, p->size) - end;

		for (uint64_t i = 0; i < p->nchunks; i++)
			p->table[i] = htole32(p->table[i]);
		/* The table and the padding share one iovec when there is no
		 * table (an empty fragment); else two. */
		if (tab)
			io->iov[io->iovcnt++] = (struct iovec){ p->table, tab };
		if (pad)
			io->iov[io->iovcnt++] = (struct iovec){ (void *)zeros, pad };
		p->all_in = true;
	}
	w->start = io->off;
	w->bytes = iov_total(io);
	p->cur = NULL;
	p->cur_off += p->cur_fill;
	p->cur_fill = p->cur_cap = 0;
	p->writes++;
	if (first && last && w->bytes <= STO_BATCH_REC &&
	    e_small_mode(p->e) != STO_SMALL_SEPARATE) {
		put_write_queue(p->e, p->vol, w);
		return 0;
	}
	if (vol_zero_overlaps(p->vol, w->start, w->bytes)) {
		io->next = p->vol->zero_wait;
		p->vol->zero_wait = io;
	} else {
		io_submit(p->e, io);
	}
	return 0;
}

/* A PUT, or (move_from set) a compaction copy into directory d. */
static int put_begin(struct sto_engine *e, struct sto_dir *d, bool tomb,
		     const struct sto_loc *move_from, const struct sto_loc *purge_of,
		     const struct sto_key *k,
		     uint64_t ts, const void *meta, uint32_t meta_len, uint64_t size,
		     uint32_t crc, uint8_t tier, uint32_t cold_after,
		     sto_put_done_fn done, void (*resume)(void *arg),
		     void *arg, struct sto_put **out)
{
	struct sto_rec rec = { .key = *k, .ts = ts, .data_len = size,
			       .meta_len = meta_len, .data_crc = crc,
			       .flags = (tomb ? STO_REC_TOMBSTONE : 0) |
					(move_from ? STO_REC_COPY : 0) |
					(purge_of ? STO_REC_PURGE : 0),
			       .tier = tier, .cold_after = cold_after };
	/* COLD and PIN_COLD land on cold media (hot when they are full). */
	uint8_t land = !tomb && e->ndirs[STO_MEDIUM_COLD] &&
		       (tier == STO_TIER_COLD || tier == STO_TIER_PIN_COLD);
	uint64_t n = sto_rec_len(meta_len, size);
	struct sto_loc ex;
	struct sto_put *p;
	int ret;

	if (e->closing)
		return -ESHUTDOWN;
	if (meta_len > STO_MAX_META || size > STO_MAX_FRAGMENT)
		return -EINVAL;
	/* Early reject (the commit checks again, for racing PUTs). */
	if (!move_from && !purge_of && engine_get(e, k, &ex, NULL) == 0 && ex.ts >= ts) {
		e->st.conflicts++;
		return STO_ECONFLICT;
	}
	if (d && !dir_has_room(d, n))
		d = NULL;
	for (unsigned i = 0; !move_from && land && i < e->ndirs[STO_MEDIUM_COLD]; i++) {
		struct sto_dir *c = &e->dirs[STO_MEDIUM_COLD][(e->rr + i) % e->ndirs[STO_MEDIUM_COLD]];

		if (dir_has_room(c, n)) {
			d = c;
			break;
		}
	}
	for (unsigned i = 0; !move_from && !d && i < e->ndirs[STO_MEDIUM_HOT]; i++) {
		struct sto_dir *c = &e->dirs[STO_MEDIUM_HOT][(e->rr + i) % e->ndirs[STO_MEDIUM_HOT]];

		if (dir_has_room(c, n)) {
			d = c;
			break;
		}
	}
	e->rr++;
	if (!d && (tomb || purge_of))
		d = &e->dirs[STO_MEDIUM_HOT][0];	/* small: from the reserve */
	if (!d) {
		e->st.nospace++;
		return -ENOSPC;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->e = e;
	p->size = size;
	p->want_crc = crc;
	p->done = done;
	p->resume = resume;
	p->arg = arg;
	p->nchunks = sto_rec_nchunks(size);
	p->table = malloc(p->nchunks * 4 + 4);
	p->meta = malloc(meta_len + 1);
	if (!p->table || !p->meta) {
		ret = -ENOMEM;
		goto out_free;
	}
	if (meta_len)
		memcpy(p->meta, meta, meta_len);
	ret = dir_alloc(e, d, n, &p->vol, &p->c.op.loc.off);
	if (ret < 0)
		goto out_free;
	p->vol->pending++;
	if (n >= STO_BIG_MIN && e->cfg.large_direct == STO_LARGE_DIRECT &&
	    vol_dio_fd(d, p->vol) >= 0) {
		uint64_t data_at = p->c.op.loc.off + sto_rec_data_off(meta_len);

		p->dio = true;
		p->dio_head = (uint32_t)(STO_DIO_ALIGN - data_at % STO_DIO_ALIGN);
	}
	sto_rec_encode(&rec, meta, p->hdr);
	p->c.op.type = STO_IDX_PUT;
	p->tomb = tomb;
	if (tomb) {
		p->c.op.type = STO_IDX_DEL;
		p->c.op.loc.flags = STO_LOC_TOMBSTONE;
	}
	if (purge_of) {
		p->purge = true;
		p->c.op.type = STO_IDX_PURGE;
		p->c.op.old = *purge_of;
	}
	if (move_from) {
		p->move = true;
		p->c.op.type = STO_IDX_MOVE;
		p->c.op.old = *move_from;
	}
	p->c.op.key = *k;
	p->c.op.meta = p->meta;
	p->c.op.loc.medium = d->medium;
	p->c.op.loc.dir = d->idx;
	p->c.op.loc.vol = p->vol->id;
	p->c.op.loc.size = size;
	p->c.op.loc.ts = ts;
	p->c.op.loc.crc = crc;
	p->c.op.loc.meta_len = meta_len;
	p->c.op.loc.tier = tier;
	p->c.op.loc.cold_after = cold_after;
	/* A copy keeps the access time it is given (the index keeps the newer). */
	p->c.op.loc.atime = move_from ? move_from->atime : strata_wall_ns() / 1000000000ull;
	p->c.done = put_committed;
	p->c.vol = p->vol;
	p->c.end = p->c.op.loc.off + n;
	ck_add(p->vol, &p->c);
	busy_get(e);
	*out = p;
	if (size == 0) {
		ret = put_flush(p);	/* header and padding only */
		if (ret < 0)
			p->status = ret;
		if (p->writes == 0)
			put_writes_done(p, false);	/* hands p to done */
	}
	return 0;

out_free:
	free(p->table);
	free(p->meta);
	free(p);
	return ret;
}

int sto_put_begin(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
		  const void *meta, uint32_t meta_len, uint64_t size,
		  uint32_t crc, sto_put_done_fn done, void (*resume)(void *arg),
		  void *arg, struct sto_put **out)
{
	return put_begin(e, NULL, false, NULL, NULL, k, ts, meta, meta_len, size, crc,
			 STO_TIER_STANDARD, 0, done, resume, arg, out);
}

int sto_put_begin_ex(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
		     const void *meta, uint32_t meta_len, uint64_t size,
		     uint32_t crc, uint8_t tier, uint32_t cold_after,
		     sto_put_done_fn done, void (*resume)(void *arg),
		     void *arg, struct sto_put **out)
{
	return put_begin(e, NULL, false, NULL, NULL, k, ts, meta, meta_len, size, crc,
			 tier, cold_after, done, resume, arg, out);
}

int sto_move_begin(struct sto_engine *e, const struct sto_key *k,
		   const struct sto_loc *from, const void *meta, uint8_t medium,
		   sto_put_done_fn done, void (*resume)(void *arg), void *arg,
		   struct sto_put **out)
{
	uint64_t n = sto_rec_len(from->meta_len, from->size);
	unsigned nd = medium <= STO_MEDIUM_COLD ? e->ndirs[medium] : 0;

	for (unsigned i = 0; i < nd; i++) {
		struct sto_dir *d = &e->dirs[medium][(e->rr + i) % nd];

		if (dir_has_room(d, n))
			return put_begin(e, d, false, from, NULL, k, from->ts, meta,
					 from->meta_len, from->size, from->crc,
					 from->tier, from->cold_after, done, resume,
					 arg, out);
	}
	return -ENOSPC;
}

int sto_engine_peek(struct sto_engine *e, const struct sto_key *k,
		    struct sto_loc *loc, void *meta_buf)
{
	return engine_get(e, k, loc, meta_buf);
}

void sto_engine_hold(struct sto_engine *e)
{
	busy_get(e);
}

void sto_engine_release(struct sto_engine *e)
{
	busy_put(e);
	engine_maybe_finish_close(e);
}

uv_loop_t *sto_engine_loop(struct sto_engine *e)
{
	return e->loop;
}

struct sto_tier *sto_engine_tier(struct sto_engine *e)
{
	return e->tier;
}

bool sto_engine_closing(struct sto_engine *e)
{
	return e->closing;
}

unsigned sto_engine_ndirs(struct sto_engine *e, uint8_t medium)
{
	return medium <= STO_MEDIUM_COLD ? e->ndirs[medium] : 0;
}

int sto_put_buf(struct sto_put *p, void **buf, size_t *len)
{
	if (p->all_in)
		return -EINVAL;
	if (!p->cur) {
		uint64_t left = p->size - p->cur_off;
		uint64_t cap = p->dio && p->cur_off == 0 ? p->dio_head : STO_PUT_BUF;

		if (p->writes >= STO_PUT_WINDOW) {
			p->blocked = true;
			return -EAGAIN;
		}
		p->cur_cap = left < cap ? left : cap;
		if (!p->dio)
			p->cur = malloc(p->cur_cap);
		else if (posix_memalign((void **)&p->cur, STO_DIO_ALIGN, p->cur_cap))
			p->cur = NULL;
		if (!p->cur)
			return -ENOMEM;
	}
	*buf = p->cur + p->cur_fill;
	*len = p->cur_cap - p->cur_fill;
	return 0;
}

void sto_put_fill(struct sto_put *p, size_t n)
{
	const uint8_t *b = p->cur + p->cur_fill;
	uint64_t pos = p->cur_off + p->cur_fill;
	size_t left = n;

	p->crc = sto_crc32c(p->crc, b, n);
	while (left) {
		uint64_t chunk_end = ((pos >> STO_CHUNK_SHIFT) + 1) << STO_CHUNK_SHIFT;
		size_t m = chunk_end - pos < left ? chunk_end - pos : left;

		p->chunk_crc = sto_crc32c(p->chunk_crc, b, m);
		pos += m;
		b += m;
		left -= m;
		if (pos == chunk_end || pos == p->size) {
			p->table[(pos - 1) >> STO_CHUNK_SHIFT] = p->chunk_crc;
			p->chunk_crc = 0;
		}
	}
	p->cur_fill += n;
	p->received += n;
	p->e->st.bytes_in += n;
	if (p->cur_fill == p->cur_cap) {
		int ret = put_flush(p);

		if (ret < 0 && p->status == 0)
			p->status = ret;
		if (ret < 0 && p->received == p->size) {
			p->all_in = true;
			if (p->writes == 0)
				put_writes_done(p, false);
		}
	}
}

void sto_put_abort(struct sto_put *p)
{
	p->aborted = true;
	p->all_in = true;
	if (p->writes == 0)
		put_free(p);
}

/* --------------------------------------------------------------- DELETE */

/* A tombstone record goes through the PUT pipeline (so it is in the volume,
 * the write-ahead log, and a restart replays it), with no meta and no data. */
int sto_del(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
	    sto_put_done_fn done, void *arg)
{
	struct sto_put *p;

	return put_begin(e, NULL, true, NULL, NULL, k, ts, NULL, 0, 0, 0, 0, 0, done, NULL,
			 arg, &p);
}

/* A PURGE record (no data; meta names the entry's place) through the PUT
 * pipeline: in the write-ahead log like a DELETE, so a crash after the
 * reply cannot bring the entry back. */
int sto_purge_entry(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
	      sto_put_done_fn done, void *arg)
{
	uint8_t meta[STO_PURGE_META];
	struct sto_loc ex;
	struct sto_put *p;
	int ret;

	if (e->closing)
		return -ESHUTDOWN;
	ret = engine_get(e, k, &ex, NULL);
	if (ret < 0)
		return ret;
	if (ex.ts != ts)
		return STO_ECONFLICT;
	purge_meta_encode(meta, &ex);
	return put_begin(e, NULL, false, NULL, &ex, k, ts, meta, sizeof(meta), 0, 0, 0, 0,
			 done, NULL, arg, &p);
}

/* ------------------------------------------------------------- SET_TIER */

/* An index-only update through the group commit, answered at the flush that
 * makes it durable (like a listing write). */
struct tier_set {
	struct sto_commit c;
	struct sto_engine *e;
	sto_put_done_fn done;
	void *arg;
};

static void tier_set_committed(struct sto_commit *c, int status)
{
	struct tier_set *t = (struct tier_set *)c;
	struct sto_engine *e = t->e;

	t->done(t->arg, status, &c->op.loc);
	free(t);
	busy_put(e);
	engine_maybe_finish_close(e);
}

int sto_engine_set_tier(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
			uint8_t tier, uint32_t cold_after, sto_put_done_fn done,
			void *arg)
{
	struct tier_set *t;
	struct sto_loc ex;
	int ret;

	if (e->closing)
		return -ESHUTDOWN;
	if (tier > STO_TIER_PIN_COLD)
		return -EINVAL;
	ret = engine_get(e, k, &ex, NULL);
	if (ret < 0 || (ex.flags & STO_LOC_TOMBSTONE))
		return -ENOENT;
	if (ex.ts != ts)
		return STO_ECONFLICT;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->e = e;
	t->done = done;
	t->arg = arg;
	t->c.op.type = STO_IDX_SET_TIER;
	t->c.op.key = *k;
	t->c.op.loc.ts = ts;
	t->c.op.tier = tier;
	t->c.op.cold_after = cold_after;
	t->c.done = tier_set_committed;
	busy_get(e);
	/* Queued after every acknowledged write of k (the overlay's included),
	 * so the transaction that applies it sees them. */
	commit_queue(e, &t->c);
	return 0;
}

/* ------------------------------------------------------------ GET, HEAD */

static void free_commit(struct sto_commit *c, int status)
{
	free(c);
}

static void queue_idx_op(struct sto_engine *e, enum sto_idx_op_type type,
			 const struct sto_key *k, const struct sto_loc *loc,
			 bool lazy)
{
	struct sto_commit *c;

	if (lazy && e->naq >= 65536)
		return;		/* atime is best effort */
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->op.type = type;
	c->op.key = *k;
	c->op.loc = *loc;
	c->done = free_commit;
	if (lazy) {
		c->next = e->aq;
		e->aq = c;
		e->naq++;
	} else {
		commit_queue(e, c);
	}
}

int sto_lookup(struct sto_engine *e, const struct sto_key *k,
	       struct sto_loc *loc, void *meta_buf)
{
	uint64_t now;
	int ret;

	struct sto_commit *c = ov_find(e, k);

	if (c) {		/* acknowledged, not yet in LMDB */
		ret = engine_get(e, k, loc, meta_buf);
		return loc->flags & STO_LOC_TOMBSTONE ? -ENOENT : ret;
	}
	ret = sto_idx_get(e->idx, k, loc, meta_buf);
	if (ret < 0)
		return ret;
	if (loc->flags & STO_LOC_TOMBSTONE)
		return -ENOENT;
	/* Coarse access time: at most one index update per interval. */
	now = strata_wall_ns() / 1000000000ull;
	if (e->cfg.atime_interval && now >= loc->atime + e->cfg.atime_interval) {
		struct sto_loc l = *loc;

		l.atime = now;
		queue_idx_op(e, STO_IDX_ATIME, k, &l, true);
	}
	return 0;
}

struct read_req {
	struct sto_io io, tab_io;
	struct sto_engine *e;
	struct sto_key key;
	struct sto_loc loc;
	uint64_t off, len;		/* what the caller wants */
	uint64_t base;			/* data offset of the first byte read */
	uint64_t c0, nc;		/* chunks covered (table read) */
	bool whole;			/* record header + all data in one read */
	struct sto_vol *vol;		/* holds a reference */
	unsigned pending;
	int status;
	uint8_t *buf;
	uint32_t *tab;
	sto_read_fn cb;
	void *arg;
};

static void read_finish(struct read_req *r)
{
	struct sto_engine *e = r->e;
	const uint8_t *data = NULL;
	int ret = r->status;

	if (ret == 0 && r->whole) {
		struct sto_rec rec;
		uint64_t doff = sto_rec_data_off(r->loc.meta_len);

		if (sto_rec_decode(r->buf, doff, &rec) < 0 ||
		    memcmp(&rec.key, &r->key, sizeof(rec.key)) ||
		    rec.ts != r->loc.ts || rec.data_len != r->loc.size ||
		    sto_crc32c(0, r->buf + doff, r->loc.size) != r->loc.crc)
			ret = STO_ECRC;
		data = r->buf + doff + r->off;
	} else if (ret == 0) {
		for (uint64_t i = 0; i < r->nc && ret == 0; i++) {
			uint64_t s = i << STO_CHUNK_SHIFT;
			uint64_t n = r->loc.size - (r->base + s);

			if (n > STO_CHUNK)
				n = STO_CHUNK;
			if (sto_crc32c(0, r->buf + s, n) != le32toh(r->tab[i]))
				ret = STO_ECRC;
		}
		data = r->buf + (r->off - r->base);
	}
	if (ret == STO_ECRC) {
		log_err("part %u frag %u vol %u off %llu: CRC mismatch, quarantined",
			r->key.part, r->key.frag, r->loc.vol,
			(unsigned long long)r->loc.off);
		e->st.crc_errors++;
		queue_idx_op(e, STO_IDX_QUARANTINE, &r->key, &r->loc, false);
	} else if (ret < 0) {
		log_err("read vol %u off %llu: %s", r->loc.vol,
			(unsigned long long)r->loc.off, sto_strerror(ret));
	}
	if (ret < 0) {
		free(r->buf);
		r->cb(r->arg, ret, NULL, 0, NULL);
	} else {
		e->st.bytes_out += r->len;
		r->cb(r->arg, 0, data, r->len, r->buf);
	}
	vol_put(r->vol);
	free(r->tab);
	free(r);
	busy_put(e);
	engine_maybe_finish_close(e);
}

/* One of r's reads (the data, the CRC table) completed: the first error
 * sticks, the last completion finishes r. */
static void read_piece_done(struct read_req *r, int res)
{
	if (res < 0 && r->status == 0)
		r->status = res;
	if (--r->pending == 0)
		read_finish(r);
}

static void read_data_done(struct sto_io *io, int res)
{
	read_piece_done((struct read_req *)((char *)io - offsetof(struct read_req, io)), res);
}

static void read_tab_done(struct sto_io *io, int res)
{
	read_piece_done((struct read_req *)((char *)io - offsetof(struct read_req, tab_io)), res);
}

int sto_read(struct sto_engine *e, const struct sto_key *k,
	     const struct sto_loc *loc, uint64_t off, uint64_t len,
	     sto_read_fn cb, void *arg)
{
	struct sto_dir *d;
	struct sto_vol *v;
	struct read_req *r;
	uint64_t file_len;

	if (e->closing)
		return -ESHUTDOWN;
	if (loc->medium > STO_MEDIUM_COLD || loc->dir >= e->ndirs[loc->medium])
		return -EIO;
	d = &e->dirs[loc->medium][loc->dir];
	if (loc->vol >= d->nvols || !(v = d->vols[loc->vol]))
		return -EIO;
	if (len > STO_READ_PIECE || off + len > loc->size || off + len < off)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->e = e;
	r->key = *k;
	r->loc = *loc;
	r->off = off;
	r->len = len;
	r->cb = cb;
	r->arg = arg;
	r->whole = loc->size <= STO_READ_PIECE;
	r->io.op = IO_READ;
	r->io.fd = v->fd;
	r->io.done = read_data_done;
	if (r->whole) {
		file_len = sto_rec_data_off(loc->meta_len) + loc->size;
		r->io.off = loc->off;
	} else {
		uint64_t c1 = (off + len + STO_CHUNK - 1) >> STO_CHUNK_SHIFT;
		uint64_t end = c1 << STO_CHUNK_SHIFT;

		r->c0 = off >> STO_CHUNK_SHIFT;
		r->nc = c1 - r->c0;
		r->base = r->c0 << STO_CHUNK_SHIFT;
		if (end > loc->size)
			end = loc->size;
		file_len = end - r->base;
		r->io.off = loc->off + sto_rec_data_off(loc->meta_len) + r->base;
		r->tab = malloc(r->nc * 4 + 4);
		if (!r->tab) {
			free(r);
			return -ENOMEM;
		}
		r->tab_io.op = IO_READ;
		r->tab_io.fd = v->fd;
		r->tab_io.done = read_tab_done;
		r->tab_io.off = loc->off + sto_rec_table_off(loc->meta_len, loc->size) + 4 * r->c0;
		r->tab_io.iov[0] = (struct iovec){ r->tab, r->nc * 4 };
		r->tab_io.iovcnt = 1;
	}
	r->buf = malloc(file_len + 1);
	if (!r->buf) {
		free(r->tab);
		free(r);
		return -ENOMEM;
	}
	r->io.iov[0] = (struct iovec){ r->buf, file_len };
	r->io.iovcnt = 1;
	r->vol = v;
	v->refs++;
	busy_get(e);
	r->pending = 1;
	if (r->tab) {
		r->pending++;
		io_submit(e, &r->tab_io);
	}
	io_submit(e, &r->io);
	return 0;
}

/* ----------------------------------------------------------------- LIST */

struct list_req {
	uv_work_t work;
	struct sto_engine *e;
	uint32_t part, suffix;
	bool objects;
	struct sto_suffix_hash *sfx;
	struct sto_list_entry *ents;
	size_t n;
	int ret;
	sto_list_fn cb;
	void *arg;
	uint64_t need;			/* acked writes it must see (ack_seq) */
	struct list_req *next;		/* e->list_wait */
	bool cached;			/* sfx filled from the cache */
	uint64_t gen;			/* of its cache slot, at the request */
};

static void list_work(uv_work_t *w)
{
	struct list_req *l = w->data;

	if (l->cached)
		l->ret = 0;
	else if (l->objects)
		l->ret = sto_idx_list_objects(l->e->idx, l->part, l->suffix,
					      l->ents, STO_LIST_MAX, &l->n);
	else
		l->ret = sto_idx_list_suffixes(l->e->idx, l->part, l->sfx, &l->n);
}

static void list_after(uv_work_t *w, int status)
{
	struct list_req *l = w->data;
	struct sto_engine *e = l->e;

	if (!l->objects && !l->cached) {
		struct sfx_cache *c = &e->sc[l->part % STO_SFX_CACHE];
		struct sto_suffix_hash *v;

		e->list_scans++;
		/* No write to the partition since the request: keep it. */
		if (l->ret == 0 && c->gen == l->gen &&
		    (v = malloc(l->n * sizeof(*v) + 1))) {
			memcpy(v, l->sfx, l->n * sizeof(*v));
			free(c->v);
			c->v = v;
			c->n = l->n;
			c->part = l->part;
			c->valid = true;
		}
	}
	l->cb(l->arg, l->ret, l->sfx, l->ents, l->ret < 0 ? 0 : l->n);
	free(l->sfx);
	free(l->ents);
	free(l);
	busy_put(e);
	engine_maybe_finish_close(e);
}

int sto_list(struct sto_engine *e, uint32_t part, bool objects, uint32_t suffix,
	     sto_list_fn cb, void *arg)
{
	struct list_req *l;

	if (e->closing)
		return -ESHUTDOWN;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	if (objects)
		l->ents = calloc(STO_LIST_MAX, sizeof(*l->ents));
	else
		l->sfx = calloc(1u << STO_SUFFIX_BITS, sizeof(*l->sfx));
	if (!l->ents && !l->sfx) {
		free(l);
		return -ENOMEM;
	}
	l->e = e;
	l->part = part;
	l->suffix = suffix;
	l->objects = objects;
	l->cb = cb;
	l->arg = arg;
	l->work.data = l;
	busy_get(e);
	if (!objects) {
		struct sfx_cache *c = &e->sc[part % STO_SFX_CACHE];

		l->gen = c->gen;
		if (c->valid && c->part == part) {
			/* Unchanged since its last scan: no scan, no wait
			 * (a write since would have invalidated it). */
			memcpy(l->sfx, c->v, c->n * sizeof(*c->v));
			l->n = c->n;
			l->cached = true;
			uv_queue_work(e->loop, &l->work, list_work, list_after);
			return 0;
		}
	}
	/* LIST reads LMDB: it waits for the commits of the PUTs and DELETEs
	 * acknowledged before it (they are in the overlay until then). */
	l->need = e->ack_seq;
	if (e->vis_seq >= l->need) {
		uv_queue_work(e->loop, &l->work, list_work, list_after);
	} else {
		l->next = e->list_wait;
		e->list_wait = l;
	}
	return 0;
}

/* ------------------------------------------------------------- listings */

/* Listing writes are not in the volume log: they stay plain index ops that
 * join the group commit (one transaction and one flush with whatever else is
 * queued) and are answered once that commit is durable, so a batch holding
 * one is never deferred. Reads run on the threadpool with their own read
 * transaction and need not wait for vis_seq: they read only the listing
 * databases, and every acknowledged listing write is visible there already
 * (visible at its commit, acknowledged at the next flush); the overlay holds
 * fragments only. */
struct lst_write {
	struct sto_commit c;
	struct sto_engine *e;
	sto_lst_write_fn done;
	void *arg;
};

static void lst_committed(struct sto_commit *c, int status)
{
	struct lst_write *l = (struct lst_write *)c;
	struct sto_engine *e = l->e;

	l->done(l->arg, status, c->op.lst);
	free(l);
	busy_put(e);
	engine_maybe_finish_close(e);
}

static int lst_queue(struct sto_engine *e, enum sto_idx_op_type type,
		     struct sto_lst_op *op, sto_lst_write_fn done, void *arg)
{
	struct lst_write *l;

	if (e->closing)
		return -ESHUTDOWN;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->e = e;
	l->done = done;
	l->arg = arg;
	l->c.op.type = type;
	l->c.op.lst = op;
	l->c.done = lst_committed;
	busy_get(e);
	commit_queue(e, &l->c);
	return 0;
}

int sto_lst_put(struct sto_engine *e, struct sto_lst_op *op,
		sto_lst_write_fn done, void *arg)
{
	uint32_t max = sto_idx_lst_max_key(e->idx);

	for (size_t i = 0; i < op->n; i++)
		if (op->ents[i].key_len > max)
			return -ENAMETOOLONG;
	return lst_queue(e, STO_IDX_LST_PUT, op, done, arg);
}

int sto_lst_delete(struct sto_engine *e, struct sto_lst_op *op,
		   sto_lst_write_fn done, void *arg)
{
	if (op->max == 0 || op->max > STO_LISTING_MAX_DELETE)
		op->max = STO_LISTING_MAX_DELETE;
	return lst_queue(e, STO_IDX_LST_DEL, op, done, arg);
}

/* Listing tombstones past the reclaim age (the object tombstones' rule,
 * counted from the tombstone's own timestamp) are removed by a sweep on the
 * compaction check's cadence: the listings holding tombstones (lstm), in
 * batches, each through STO_IDX_LST_DEL with reap_before, at most
 * STO_LISTING_MAX_DELETE entries visited per commit. A node down longer
 * than the reclaim age could bring a reaped key back through listing
 * replication (pull = union), as for objects. */
#define LST_REAP_BATCH	64

struct lst_reap {
	struct sto_engine *e;
	struct sto_listing_id ids[LST_REAP_BATCH];
	size_t n, i;
	struct sto_lst_op op;
	uint8_t start[STO_LISTING_MAX_KEY];
	uint64_t before, reaped;
	void (*cb)(void *arg, int status, uint64_t reaped);
	void *arg;
};

static void lst_reap_next(struct lst_reap *rp);

static void lst_reap_end(struct lst_reap *rp, int status)
{
	struct sto_engine *e = rp->e;

	if (rp->reaped || status < 0)
		log_info("listing tombstones reaped: %llu%s%s", (unsigned long long)rp->reaped,
			 status < 0 ? ", stopped: " : "", status < 0 ? strerror(-status) : "");
	e->reap = NULL;
	if (rp->cb)
		rp->cb(rp->arg, status, rp->reaped);
	free(rp);
}

static void lst_reaped(void *arg, int status, struct sto_lst_op *op)
{
	struct lst_reap *rp = arg;

	if (status < 0) {
		lst_reap_end(rp, status);
		return;
	}
	rp->reaped += op->count;
	if (op->more) {			/* the same listing, from where it stopped */
		memcpy(rp->start, op->next, op->next_len);
		op->start = (struct sto_bytes){ rp->start, op->next_len };
	} else {
		rp->i++;
		op->start = (struct sto_bytes){ NULL, 0 };
	}
	lst_reap_next(rp);
}

static void lst_reap_next(struct lst_reap *rp)
{
	struct sto_engine *e = rp->e;
	int ret = 0;

	if (rp->i == rp->n) {
		/* the next batch, after the last listing of this one */
		const struct sto_listing_id *after = rp->n ? &rp->ids[rp->n - 1] : NULL;
		struct sto_listing_id last;

		if (rp->n && rp->n < LST_REAP_BATCH) {
			lst_reap_end(rp, 0);
			return;
		}
		if (after)
			last = *after;
		ret = sto_idx_lst_tombstoned(e->idx, after ? &last : NULL, rp->ids,
					     LST_REAP_BATCH, &rp->n);
		rp->i = 0;
		if (ret < 0 || rp->n == 0) {
			lst_reap_end(rp, ret);
			return;
		}
	}
	rp->op.id = rp->ids[rp->i];
	rp->op.max = STO_LISTING_MAX_DELETE;
	rp->op.reap_before = rp->before;
	ret = lst_queue(e, STO_IDX_LST_DEL, &rp->op, lst_reaped, rp);
	if (ret < 0)
		lst_reap_end(rp, ret);
}

int sto_lst_reap(struct sto_engine *e, void (*cb)(void *arg, int status, uint64_t reaped),
		 void *arg)
{
	struct lst_reap *rp;
	uint64_t now = strata_wall_ns(), age = e->cfg.reclaim_age * 1000000000ull;

	if (e->reap)
		return -EBUSY;
	if (e->closing)
		return -ESHUTDOWN;
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->e = e;
	rp->cb = cb;
	rp->arg = arg;
	rp->before = now > age ? now - age : 0;
	if (!rp->before) {
		free(rp);
		return 0;	/* (nothing can be that old) */
	}
	e->reap = rp;
	lst_reap_next(rp);	/* (may end, and call cb, at once) */
	return 0;
}

struct lst_read {
	uv_work_t work;
	struct sto_engine *e;
	struct sto_listing_id id;
	struct sto_listing_query q;
	uint32_t cap;
	bool stat;
	int ret;
	struct sto_lst_page page;
	struct sto_lst_stat_buf *st;
	void (*page_cb)(void *arg, int status, const struct sto_lst_page *page);
	void (*stat_cb)(void *arg, int status, const struct sto_listing_stat *st);
	void *arg;
};

static void lst_read_work(uv_work_t *w)
{
	struct lst_read *l = w->data;

	if (l->stat)
		l->ret = sto_idx_lst_stat(l->e->idx, &l->id, l->st);
	else
		l->ret = sto_idx_lst_query(l->e->idx, &l->id, &l->q, l->cap, &l->page);
}

static void lst_read_after(uv_work_t *w, int status)
{
	struct lst_read *l = w->data;
	struct sto_engine *e = l->e;

	if (l->stat)
		l->stat_cb(l->arg, l->ret, l->ret < 0 ? NULL : &l->st->st);
	else
		l->page_cb(l->arg, l->ret, l->ret < 0 ? NULL : &l->page);
	sto_lst_page_free(&l->page);
	free(l->st);
	free(l);
	busy_put(e);
	engine_maybe_finish_close(e);
}

/* A read of listing id for arg; the caller sets what to read and the
 * callback, then lst_read_start(). */
static struct lst_read *lst_read_new(struct sto_engine *e, const struct sto_listing_id *id,
				     void *arg)
{
	struct lst_read *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->e = e;
	l->id = *id;
	l->arg = arg;
	l->work.data = l;
	return l;
}

/* Runs l on a worker; lst_read_after() answers and frees it. */
static void lst_read_start(struct lst_read *l)
{
	busy_get(l->e);
	uv_queue_work(l->e->loop, &l->work, lst_read_work, lst_read_after);
}

/* The query's byte strings must stay valid until cb (the server keeps the
 * request). */
int sto_lst_query(struct sto_engine *e, const struct sto_listing_id *id,
		  const struct sto_listing_query *q, uint32_t cap,
		  void (*cb)(void *arg, int status, const struct sto_lst_page *page),
		  void *arg)
{
	struct lst_read *l;

	if (e->closing)
		return -ESHUTDOWN;
	l = lst_read_new(e, id, arg);
	if (!l)
		return -ENOMEM;
	l->q = *q;
	l->cap = cap;
	l->page_cb = cb;
	lst_read_start(l);
	return 0;
}

int sto_lst_stat(struct sto_engine *e, const struct sto_listing_id *id,
		 void (*cb)(void *arg, int status, const struct sto_listing_stat *st),
		 void *arg)
{
	struct lst_read *l;

	if (e->closing)
		return -ESHUTDOWN;
	l = lst_read_new(e, id, arg);
	if (!l)
		return -ENOMEM;
	l->st = malloc(sizeof(*l->st));
	if (!l->st) {
		free(l);
		return -ENOMEM;
	}
	l->stat = true;
	l->stat_cb = cb;
	lst_read_start(l);
	return 0;
}

struct lst_ids {
	uv_work_t work;
	struct sto_engine *e;
	uint32_t part;
	bool has_after, more;
	uint8_t after[STO_LISTING_ID_LEN];
	struct sto_listing_info *v;
	size_t n;
	int ret;
	void (*cb)(void *arg, int status, const struct sto_listing_info *v, size_t n,
		   bool more);
	void *arg;
};

static void lst_ids_work(uv_work_t *w)
{
	struct lst_ids *l = w->data;

	l->ret = sto_idx_lst_ids(l->e->idx, l->part, l->has_after ? l->after : NULL, l->v,
				 STO_LISTING_IDS_MAX, &l->n, &l->more);
}

static void lst_ids_after(uv_work_t *w, int status)
{
	struct lst_ids *l = w->data;
	struct sto_engine *e = l->e;

	l->cb(l->arg, l->ret, l->v, l->ret < 0 ? 0 : l->n, l->more);
	free(l->v);
	free(l);
	busy_put(e);
	engine_maybe_finish_close(e);
}

int sto_lst_ids(struct sto_engine *e, uint32_t part, const uint8_t *after,
		void (*cb)(void *arg, int status, const struct sto_listing_info *v,
			   size_t n, bool more),
		void *arg)
{
	struct lst_ids *l;

	if (e->closing)
		return -ESHUTDOWN;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->v = malloc(STO_LISTING_IDS_MAX * sizeof(*l->v));
	if (!l->v) {
		free(l);
		return -ENOMEM;
	}
	l->e = e;
	l->part = part;
	if (after) {
		l->has_after = true;
		memcpy(l->after, after, STO_LISTING_ID_LEN);
	}
	l->cb = cb;
	l->arg = arg;
	l->work.data = l;
	busy_get(e);
	uv_queue_work(e->loop, &l->work, lst_ids_work, lst_ids_after);
	return 0;
}

static void list_wake(struct sto_engine *e)
{
	struct list_req **pp = &e->list_wait;

	while (*pp) {
		struct list_req *l = *pp;

		if (l->need <= e->vis_seq) {
			*pp = l->next;
			uv_queue_work(e->loop, &l->work, list_work, list_after);
		} else {
			pp = &l->next;
		}
	}
}

uint64_t sto_engine_list_scans(struct sto_engine *e)
{
	return e->list_scans;
}

bool sto_engine_commits_pending(struct sto_engine *e)
{
	/* held: applied, not yet durable (its PUTs still pin their volume). */
	return e->cq || e->commit_inflight || e->held || e->retry || e->list_wait;
}

/* ----------------------------------------------------------- compaction */

struct compactor {
	struct sto_engine *e;
	struct sto_dir *d;
	struct sto_vol *v;		/* freed once dropped: use vol_id */
	uint32_t vol_id;
	uint64_t off, end, moved, rec_len;
	uint64_t reaped;		/* tombstones past the reclaim age */
	struct sto_io io;
	uint8_t *hdr;
	size_t hdr_len;
	struct sto_rec rec;
	struct sto_loc loc;		/* the live entry being copied */
	struct sto_put *p;
	uint64_t pos;			/* fragment bytes read so far */
	const uint8_t *pending;		/* read, not yet fed to p */
	size_t pending_len;
	void *pending_buf;
	bool feeding, put_finished;
	int put_status;
	uv_work_t work;
	int status;
	void (*cb)(void *arg, int status, uint64_t moved);
	void *arg;
};

static void cmp_next(struct compactor *c);

static void cmp_done(struct compactor *c, int status)
{
	struct sto_engine *e = c->e;

	log_info("compaction of %s vol %u: %s, %llu records moved, %llu "
		 "tombstones reaped", c->d->path, c->vol_id,
		 status < 0 ? sto_strerror(status) : "done",
		 (unsigned long long)c->moved, (unsigned long long)c->reaped);
	if (c->cb)
		c->cb(c->arg, status, c->moved);
	free(c->hdr);
	free(c);
	e->cmp = NULL;
	busy_put(e);
	engine_maybe_finish_close(e);
}

static void cmp_drop_work(uv_work_t *w)
{
	struct compactor *c = w->data;

	c->status = sto_idx_vol_drop(c->e->idx, c->d->medium, c->d->idx, c->v->id);
}

static void cmp_drop_after(uv_work_t *w, int status)
{
	struct compactor *c = w->data;
	struct sto_vol *v = c->v;
	char path[4096];

	if (c->status == 0) {
		/* Every live record now lives elsewhere: forget the file. Reads
		 * that looked it up before the moves keep the fd open. */
		if (sto_vol_path(path, sizeof(path), c->d->path, v->id) == 0 &&
		    unlink(path) < 0)
			log_warn("unlink %s: %s", path, strerror(errno));
		c->d->vols[v->id] = NULL;
		v->doomed = true;
		v->refs++;
		vol_put(v);
	}
	cmp_done(c, c->status);
}

/* The current record is done with: copied (0), changed meanwhile (-ENOENT),
 * or skipped (1: unreadable, now quarantined). Anything else stops. */
static void cmp_record_end(struct compactor *c, int status)
{
	free(c->pending_buf);
	c->pending_buf = NULL;
	c->pending_len = 0;
	c->p = NULL;
	if (status == 0)
		c->moved++;
	else if (status != -ENOENT && status != 1) {
		cmp_done(c, status);
		return;
	}
	c->off += c->rec_len;
	cmp_next(c);
}

static void cmp_read_piece(struct compactor *c);

/* Hands the piece read to the copy's buffers (copying: compaction is
 * background work, and the copy re-derives every CRC as a check). */
static void cmp_feed(struct compactor *c)
{
	c->feeding = true;
	while (c->pending_len && !c->put_finished) {
		void *b;
		size_t cap, n;
		int ret = sto_put_buf(c->p, &b, &cap);

		if (ret == -EAGAIN)
			break;		/* cmp_resume runs when there is room */
		if (ret < 0) {
			sto_put_abort(c->p);
			c->put_finished = true;
			c->put_status = 1;
			break;
		}
		n = cap < c->pending_len ? cap : c->pending_len;
		memcpy(b, c->pending, n);
		c->pending += n;
		c->pending_len -= n;
		c->pos += n;
		sto_put_fill(c->p, n);	/* may finish the copy */
	}
	c->feeding = false;
	if (c->put_finished) {
		c->put_finished = false;
		cmp_record_end(c, c->put_status);
		return;
	}
	if (c->pending_len)
		return;
	free(c->pending_buf);
	c->pending_buf = NULL;
	if (c->pos < c->loc.size)
		cmp_read_piece(c);
	/* else: all fed; cmp_put_done comes once it is durable and indexed */
}

static void cmp_read_done(void *arg, int status, const uint8_t *data,
			  size_t len, void *buf)
{
	struct compactor *c = arg;

	if (status < 0) {
		/* A bad record (now quarantined) is not copied. */
		sto_put_abort(c->p);
		cmp_record_end(c, 1);
		return;
	}
	c->pending = data;
	c->pending_len = len;
	c->pending_buf = buf;
	cmp_feed(c);
}

static void cmp_read_piece(struct compactor *c)
{
	uint64_t n = c->loc.size - c->pos;
	int ret;

	if (n > STO_READ_PIECE)
		n = STO_READ_PIECE;
	ret = sto_read(c->e, &c->rec.key, &c->loc, c->pos, n, cmp_read_done, c);
	if (ret < 0) {
		sto_put_abort(c->p);
		c->p = NULL;
		cmp_done(c, ret);
	}
}

static void cmp_resume(void *arg)
{
	cmp_feed(arg);
}

static void cmp_put_done(void *arg, int status, const struct sto_loc *loc)
{
	struct compactor *c = arg;

	if (c->feeding) {		/* inside cmp_feed: it finishes up */
		c->put_finished = true;
		c->put_status = status;
		return;
	}
	cmp_record_end(c, status);
}

static void cmp_hdr_done(struct sto_io *io, int res)
{
	struct compactor *c = (struct compactor *)((char *)io - offsetof(struct compactor, io));
	struct sto_loc l;
	int ret;

	if (res < 0) {
		cmp_done(c, res);
		return;
	}
	if (sto_rec_decode(c->hdr, c->hdr_len, &c->rec) < 0 ||
	    c->off + (c->rec_len = sto_rec_len(c->rec.meta_len, c->rec.data_len)) > c->end) {
		c->off += STO_REC_ALIGN;	/* garbage: resync */
		cmp_next(c);
		return;
	}
	ret = engine_get(c->e, &c->rec.key, &l, NULL);
	if (ret < 0 || l.medium != c->d->medium || l.dir != c->d->idx ||
	    l.vol != c->v->id || l.off != c->off) {
		c->off += c->rec_len;		/* dead */
		cmp_next(c);
		return;
	}
	if (l.flags & STO_LOC_TOMBSTONE) {
		/* A tombstone's record is not copied (its index entry alone
		 * rejects older versions). Past the reclaim age (from when it
		 * was written: its atime) replicas have seen it, so the entry
		 * goes too, if it is still this tombstone by then. */
		if (l.atime + c->e->cfg.reclaim_age <= strata_wall_ns() / 1000000000ull) {
			queue_idx_op(c->e, STO_IDX_REAP, &c->rec.key, &l, false);
			c->reaped++;
		}
		c->off += c->rec_len;
		cmp_next(c);
		return;
	}
	c->loc = l;
	c->pos = 0;
	ret = put_begin(c->e, c->d, false, &l, NULL, &c->rec.key, l.ts, c->hdr + STO_REC_HDR,
			l.meta_len, l.size, l.crc, l.tier, l.cold_after, cmp_put_done,
			cmp_resume, c, &c->p);
	if (ret < 0) {
		cmp_done(c, ret);
		return;
	}
	if (l.size)
		cmp_read_piece(c);
}

static void cmp_next(struct compactor *c)
{
	if (c->e->closing) {
		cmp_done(c, -ESHUTDOWN);
		return;
	}
	if (c->off + STO_REC_HDR > c->end) {
		/* All live records moved and committed: drop the volume. */
		c->work.data = c;
		uv_queue_work(c->e->loop, &c->work, cmp_drop_work, cmp_drop_after);
		return;
	}
	c->hdr_len = STO_REC_HDR + STO_MAX_META;
	if (c->off + c->hdr_len > c->end)
		c->hdr_len = c->end - c->off;
	memset(&c->io, 0, sizeof(c->io));
	c->io.op = IO_READ;
	c->io.fd = c->v->fd;
	c->io.off = c->off;
	c->io.iov[0] = (struct iovec){ c->hdr, c->hdr_len };
	c->io.iovcnt = 1;
	c->io.done = cmp_hdr_done;
	io_submit(c->e, &c->io);
}

int sto_compact(struct sto_engine *e, uint8_t medium, uint8_t dir, uint32_t vol,
		void (*cb)(void *arg, int status, uint64_t moved), void *arg)
{
	struct compactor *c;
	struct sto_dir *d;
	struct sto_vol *v;

	if (e->closing)
		return -ESHUTDOWN;
	if (medium > STO_MEDIUM_COLD || dir >= e->ndirs[medium])
		return -ENOENT;
	d = &e->dirs[medium][dir];
	if (vol >= d->nvols || !(v = d->vols[vol]))
		return -ENOENT;
	if (e->cmp || dir_is_active(d, v) || v->pending || v->nsync ||
	    v->sync_wait || v->dirty || v->prealloc_busy || v->zero_busy)
		return -EBUSY;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->hdr = malloc(STO_REC_HDR + STO_MAX_META);
	if (!c->hdr) {
		free(c);
		return -ENOMEM;
	}
	c->e = e;
	c->d = d;
	c->v = v;
	c->vol_id = v->id;
	c->end = v->tail;
	c->cb = cb;
	c->arg = arg;
	e->cmp = c;
	busy_get(e);
	log_info("compacting %s vol %u (%llu bytes)", d->path, vol,
		 (unsigned long long)c->end);
	cmp_next(c);
	return 0;
}

/* Starts compacting the sealed volume with the most dead space, if any has
 * at least compact_pct %. Dead bytes come from the index (committed). */
static void compact_check(struct sto_engine *e)
{
	struct sto_vol *best = NULL;
	uint64_t best_dead = 0;

	for (int m = 0; m < 2; m++)
		for (unsigned i = 0; i < e->ndirs[m]; i++) {
			struct sto_dir *d = &e->dirs[m][i];

			for (uint32_t id = 1; id < d->nvols; id++) {
				struct sto_vol *v = d->vols[id];
				uint64_t tail, dead;

				if (!v || dir_is_active(d, v) || v->pending ||
				    v->prealloc_busy || v->zero_busy ||
				    sto_idx_vol_info(e->idx, m, i, id, &tail, &dead) < 0 ||
				    tail == 0 || dead * 100 < tail * e->cfg.compact_pct)
					continue;
				if (dead > best_dead) {
					best = v;
					best_dead = dead;
				}
			}
		}
	if (best)
		sto_compact(e, best->medium, best->dir, best->id, NULL, NULL);
}

/* ------------------------------------------------------- loop plumbing */

/* One volume fdatasync and the writes it makes durable. */
struct vol_sync {
	struct sto_io io;
	struct sto_vol *v;
	struct sto_put *list;
	uint64_t start;			/* ns */
};

static void vol_synced(struct sto_io *io, int res)
{
	struct vol_sync *y = (struct vol_sync *)io;
	struct sto_vol *v = y->v;
	struct sto_engine *e = v->e;
	struct sto_put *p = y->list, *next;

	v->nsync--;
	e->st.fsync_us += (strata_now_ns() - y->start) / 1000;
	free(y);
	if (res < 0)
		log_err("fdatasync vol %u: %s", v->id, strerror(-res));
	for (; p; p = next) {
		next = p->next;
		if (res < 0)
			put_finish(p, res);
		else if (p->move)
			commit_queue(e, &p->c);	/* acknowledged once indexed */
		else
			put_durable(p);
	}
	if (v->sync_wait)
		vol_mark_dirty(e, v);
	busy_put(e);
	engine_maybe_finish_close(e);
}

/* Starts an fdatasync for every write of v completed so far. Several may be
 * in flight per volume (cfg.sync_depth): a write completing while one runs
 * need not wait for it to end and then for a whole one of its own (about 1.5
 * flushes of latency), only for the next; the block layer merges the device
 * flushes of overlapping fdatasyncs. The sync covers just the byte range of
 * its records, so writeback elsewhere in the file (zero-fill, other PUTs
 * still streaming) is not waited for. */
static void vol_sync_start(struct sto_engine *e, struct sto_vol *v)
{
	struct vol_sync *y = calloc(1, sizeof(*y));
	uint64_t lo = UINT64_MAX, hi = 0;

	if (!y) {
		vol_mark_dirty(e, v);	/* next iteration */
		return;
	}
	y->v = v;
	y->list = v->sync_wait;
	v->sync_wait = NULL;
	for (struct sto_put *p = y->list; p; p = p->next) {
		if (p->c.op.loc.off < lo)
			lo = p->c.op.loc.off;
		if (p->c.end > hi)
			hi = p->c.end;
	}
	v->nsync++;
	y->start = strata_now_ns();
	y->io.op = IO_FSYNC;
	y->io.fd = v->fd;
	y->io.off = lo;
	y->io.len = hi - lo <= UINT32_MAX ? hi - lo : 0;
	y->io.done = vol_synced;
	e->st.fsyncs++;
	busy_get(e);
	io_submit(e, &y->io);
}

/* Once per loop iteration, before it blocks: start the fdatasyncs and the
 * commit that the callbacks of this iteration made ready, then submit every
 * queued SQE in one system call. */
static void on_prepare(uv_prepare_t *h)
{
	struct sto_engine *e = h->data;
	struct sto_vol *v;

	while ((v = e->wvols)) {
		e->wvols = v->wq_next;
		vol_write_queued(e, v);
	}
	v = e->dirty;
	e->dirty = NULL;
	while (v) {
		struct sto_vol *next = v->dirty_next;

		v->dirty = false;
		if (v->nsync < e->cfg.sync_depth && v->sync_wait)
			vol_sync_start(e, v);
		v = next;
	}
	commit_start(e);
	while (e->backlog) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);

		if (!sqe) {
			io_uring_submit(&e->ring);
			sqe = io_uring_get_sqe(&e->ring);
			if (!sqe)
				break;
		}
		io_prep(e->backlog, sqe);
		e->backlog = e->backlog->next;
	}
	if (io_uring_sq_ready(&e->ring))
		io_uring_submit(&e->ring);
}

static void on_timer(uv_timer_t *h)
{
	struct sto_engine *e = h->data;

	for (int m = 0; m < 2; m++)
		for (unsigned i = 0; i < e->ndirs[m]; i++) {
			dir_refresh(&e->dirs[m][i], &e->cfg);
			if (e->dirs[m][i].active)	/* after a pause */
				vol_zero_maybe(e, e->dirs[m][i].active);
		}
	while (e->retry) {		/* acknowledged, index commit failed */
		struct sto_commit *c = e->retry;

		e->retry = c->next;
		commit_queue(e, c);
	}
	if (e->cfg.compact_interval && !e->cmp && !e->closing &&
	    strata_now_ns() - e->last_compact_check >= e->cfg.compact_interval * 1000000000ull) {
		e->last_compact_check = strata_now_ns();
		compact_check(e);
		if (!e->reap)
			sto_lst_reap(e, NULL, NULL);
	}
	if (e->tier && !e->closing)
		sto_tier_tick(e->tier);
}

struct sto_idx *sto_engine_idx(struct sto_engine *e)
{
	return e->idx;
}

struct sto_stat *sto_engine_counters(struct sto_engine *e)
{
	return &e->st;
}

void sto_engine_stat(struct sto_engine *e, struct sto_stat *st)
{
	*st = e->st;
	for (int m = 0; m < 2; m++) {
		struct sto_medium_stat *ms = &st->media[m];

		memset(ms, 0, sizeof(*ms));
		ms->medium = m;
		ms->dirs = e->ndirs[m];
		for (unsigned i = 0; i < e->ndirs[m]; i++) {
			struct sto_dir *d = &e->dirs[m][i];

			dir_refresh(d, &e->cfg);
			ms->capacity_bytes += d->cap;
			ms->free_bytes += d->avail;
			ms->reserve_bytes += d->reserve;
			for (uint32_t v = 1; v < d->nvols; v++) {
				if (!d->vols[v])
					continue;
				ms->volumes++;
				ms->used_bytes += d->vols[v]->tail;
			}
		}
	}
	sto_idx_counts(e->idx, &st->objects, &st->quarantined);
	for (int m = 0; m < 2; m++) {
		st->tier.dead_bytes[m] = 0;
		for (unsigned i = 0; i < e->ndirs[m]; i++) {
			struct sto_dir *d = &e->dirs[m][i];

			for (uint32_t id = 1; id < d->nvols; id++) {
				uint64_t tail, dead;

				if (d->vols[id] &&
				    sto_idx_vol_info(e->idx, m, i, id, &tail, &dead) == 0)
					st->tier.dead_bytes[m] += dead;
			}
		}
	}
	if (e->tier)
		sto_tier_stat(e->tier, &st->tier);
}

/* Closes every volume and directory of both media. */
static void dirs_close(struct sto_engine *e)
{
	for (int m = 0; m < 2; m++)
		for (unsigned i = 0; i < STO_MAX_DIRS; i++) {
			struct sto_dir *d = &e->dirs[m][i];

			for (uint32_t v = 0; v < d->nvols; v++)
				if (d->vols[v]) {
					vol_close(d->vols[v]);
					free(d->vols[v]);
				}
			free(d->vols);
			free(d->path);
			if (d->dfd >= 0)
				close(d->dfd);
		}
}

int sto_engine_open(uv_loop_t *loop, const struct sto_engine_cfg *cfg,
		    struct sto_engine **out)
{
	struct sto_engine *e;
	char path[4096];
	int ret;

	if (cfg->nhot == 0 || cfg->nhot > STO_MAX_DIRS || cfg->ncold > STO_MAX_DIRS)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->loop = loop;
	e->cfg = *cfg;
	if (!e->cfg.vol_max)
		e->cfg.vol_max = 1ull << 30;
	if (!e->cfg.map_size)
		e->cfg.map_size = 64ull << 30;
	if (!e->cfg.ring_entries)
		e->cfg.ring_entries = 512;
	if (!e->cfg.compact_pct)
		e->cfg.compact_pct = 50;
	if (!e->cfg.sync_depth)
		e->cfg.sync_depth = STO_SYNC_DEPTH;
	if (!e->cfg.commit_defer_ms)
		e->cfg.commit_defer_ms = STO_COMMIT_DEFER_MS;
	if (!e->cfg.reclaim_age)
		e->cfg.reclaim_age = STO_RECLAIM_AGE;
	e->last_compact_check = strata_now_ns();
	e->sc = calloc(STO_SFX_CACHE, sizeof(*e->sc));
	if (!e->sc) {
		free(e);
		return -ENOMEM;
	}
	e->cq_tail = &e->cq;
	e->efd = -1;
	for (int m = 0; m < 2; m++)
		for (unsigned i = 0; i < STO_MAX_DIRS; i++)
			e->dirs[m][i].dfd = -1;

	/* The index lives on the first hot directory. */
	if (mkdir(cfg->hot[0], 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		goto out_close;
	}
	snprintf(path, sizeof(path), "%s/index", cfg->hot[0]);
	ret = sto_idx_open(path, e->cfg.map_size, &e->idx);
	if (ret < 0)
		goto out_close;
	for (unsigned i = 0; i < cfg->nhot; i++, e->ndirs[0]++) {
		ret = dir_open(e, &e->dirs[0][i], cfg->hot[i], STO_MEDIUM_HOT, i);
		if (ret < 0)
			goto out_dir;
	}
	for (unsigned i = 0; i < cfg->ncold; i++, e->ndirs[1]++) {
		ret = dir_open(e, &e->dirs[1][i], cfg->cold[i], STO_MEDIUM_COLD, i);
		if (ret < 0)
			goto out_dir;
	}
	ret = replay_purges(e);
	if (ret < 0)
		goto out_close;
	ret = io_uring_queue_init(e->cfg.ring_entries, &e->ring, 0);
	if (ret < 0) {
		log_err("io_uring_queue_init: %s", strerror(-ret));
		goto out_close;
	}
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		ret = -errno;
		goto out_ring;
	}
	ret = io_uring_register_eventfd(&e->ring, e->efd);
	if (ret < 0)
		goto out_ring;
	ret = sto_tier_new(e, &cfg->tier, &e->tier);
	if (ret < 0)
		goto out_ring;
	uv_poll_init(loop, &e->poll, e->efd);
	uv_prepare_init(loop, &e->prep);
	uv_timer_init(loop, &e->timer);
	e->poll.data = e->prep.data = e->timer.data = e;
	e->handles_open = 3;
	uv_poll_start(&e->poll, UV_READABLE, on_ring);
	uv_prepare_start(&e->prep, on_prepare);
	uv_timer_start(&e->timer, on_timer, 250, 250);
	/* Only requests keep the loop alive, not the engine. */
	uv_unref((uv_handle_t *)&e->poll);
	uv_unref((uv_handle_t *)&e->prep);
	uv_unref((uv_handle_t *)&e->timer);
	*out = e;
	return 0;

out_dir:
	log_err("opening %s: %s", ret < 0 ? "media directory" : "", strerror(-ret));
	goto out_close;
out_ring:
	io_uring_queue_exit(&e->ring);
out_close:
	dirs_close(e);
	if (e->efd >= 0)
		close(e->efd);
	sto_idx_close(e->idx);
	for (size_t i = 0; i < e->nrp_shadow; i++)
		free((void *)e->rp_shadow[i].meta);
	free(e->rp_shadow);
	free(e->rp_purge);
	free(e->sc);
	free(e);
	return ret;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct sto_engine *e = h->data;

	if (--e->handles_open)
		return;
	io_uring_queue_exit(&e->ring);
	close(e->efd);
	dirs_close(e);
	sto_tier_free(e->tier);
	sto_idx_close(e->idx);
	for (unsigned i = 0; i < STO_SFX_CACHE; i++)
		free(e->sc[i].v);
	free(e->sc);
	if (e->close_cb)
		e->close_cb(e->close_arg);
	free(e);
}

static void engine_maybe_finish_close(struct sto_engine *e)
{
	if (!e->closing || e->busy || e->handles_open != 3)
		return;
	if (e->aq || e->cq || e->held) {
		/* Flush the last atime updates and quarantines. */
		uv_ref((uv_handle_t *)&e->prep);
		return;
	}
	uv_close((uv_handle_t *)&e->poll, on_handle_closed);
	uv_close((uv_handle_t *)&e->prep, on_handle_closed);
	uv_close((uv_handle_t *)&e->timer, on_handle_closed);
}

void sto_engine_close(struct sto_engine *e, void (*cb)(void *arg), void *arg)
{
	e->closing = true;
	if (e->tier)
		sto_tier_stop(e->tier);
	while (e->retry) {		/* one last try, then replay at start */
		struct sto_commit *c = e->retry;

		e->retry = c->next;
		commit_queue(e, c);
	}
	e->close_cb = cb;
	e->close_arg = arg;
	/* Keep the loop turning until the in-flight work drains. */
	uv_ref((uv_handle_t *)&e->poll);
	uv_ref((uv_handle_t *)&e->prep);
	engine_maybe_finish_close(e);
}
