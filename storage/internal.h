/* storage/internal.h: everything inside storage/ that other folders don't
 * see. Grouped by the file that implements it. Layout: storage/README.md.
 */
#ifndef STRATA_STORAGE_INTERNAL_H
#define STRATA_STORAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common.h"
#include "storage.h"
#include "storage.pb-c.h"

/* ------------------------------------------------------------ frame.c */

/* Parses a frame prefix from buf[0..len). 1 = complete (*hdr_len set),
 * 0 = need more bytes, STO_EPROTO = bad magic or hdr_len > max_hdr (or 0). */
int sto_frame_prefix(const uint8_t *buf, size_t len, size_t max_hdr,
		     uint32_t *hdr_len);
void sto_frame_put_prefix(uint8_t *buf, uint32_t hdr_len);

/* Decodes and validates a request header (everything a node must check
 * before acting on it). 0 and *out (sto_req_free) or STO_EPROTO /
 * STO_EVERSION with *why set to a static message. */
int sto_req_decode(const uint8_t *buf, size_t len, StoRequest **out,
		   const char **why);
void sto_req_free(StoRequest *r);
/* A response header; same contract (no version check: the client does). */
int sto_resp_decode(const uint8_t *buf, size_t len, StoResponse **out);
void sto_resp_free(StoResponse *r);

/* Encodes prefix + header into one malloc'd buffer of *len bytes. */
int sto_req_encode(const StoRequest *r, uint8_t **buf, size_t *len);
int sto_resp_encode(const StoResponse *r, uint8_t **buf, size_t *len);

/* Copies the key fields of a validated request. */
void sto_req_key(const StoRequest *r, struct sto_key *k);

/* ----------------------------------------------------------- volume.c */

/* A record in a volume file, at a STO_REC_ALIGN-aligned offset:
 *   header (STO_REC_HDR bytes) | meta | data | chunk CRCs (u32 LE each) | pad
 * The header's own CRC covers header and meta, so a scan can tell records
 * from garbage; data_crc is the fragment's CRC-32C; chunk CRC i covers data
 * bytes [i << STO_CHUNK_SHIFT, (i + 1) << STO_CHUNK_SHIFT). */
#define STO_REC_MAGIC		0x53545231u	/* "STR1" */
#define STO_REC_VERSION		1
#define STO_REC_HDR		64
#define STO_REC_ALIGN		64
#define STO_CHUNK_SHIFT		16		/* 64 KiB chunks */
#define STO_CHUNK		(1u << STO_CHUNK_SHIFT)
#define STO_REC_TOMBSTONE	0x1		/* flags: a DELETE (no meta, no data) */
#define STO_REC_COPY		0x2		/* flags: a mover's or compaction's copy
						 * of a record that lives elsewhere until
						 * its STO_IDX_MOVE commits */
#define STO_REC_PURGE		0x4		/* flags: a PURGE (meta: the dropped
						 * entry's place, STO_PURGE_META bytes) */
#define STO_PURGE_META		16
#define STO_REC_TIER_SHIFT	8		/* flags bits 8-9: enum sto_tier_class */

struct sto_rec {
	struct sto_key key;
	uint64_t ts;
	uint64_t data_len;
	uint32_t meta_len;
	uint32_t data_crc;
	uint16_t flags;			/* STO_REC_TOMBSTONE, STO_REC_COPY */
	uint8_t tier;			/* enum sto_tier_class */
	uint32_t cold_after;		/* seconds, 0 = the node's default */
};

uint64_t sto_rec_nchunks(uint64_t data_len);
/* Bytes a record occupies, padding included. */
uint64_t sto_rec_len(uint32_t meta_len, uint64_t data_len);
static inline uint64_t sto_rec_data_off(uint32_t meta_len)
{
	return STO_REC_HDR + (uint64_t)meta_len;
}
static inline uint64_t sto_rec_table_off(uint32_t meta_len, uint64_t data_len)
{
	return STO_REC_HDR + (uint64_t)meta_len + data_len;
}
/* Header (with its CRC over header + meta) into out. */
void sto_rec_encode(const struct sto_rec *r, const void *meta,
		    uint8_t out[STO_REC_HDR]);
/* Decodes a header followed by meta_len bytes of meta in buf[0..len).
 * 0, STO_EPROTO (not a record), or -EAGAIN (len too short for the meta). */
int sto_rec_decode(const uint8_t *buf, size_t len, struct sto_rec *r);
/* Walks the records of a volume file (synchronous; tools, tests, repair),
 * calling fn(arg, offset, rec) for each one whose header checks out; skips
 * garbage. Stops early when fn returns nonzero (and returns that). */
int sto_vol_scan(int fd, uint64_t end,
		 int (*fn)(void *arg, uint64_t off, const struct sto_rec *r),
		 void *arg);
/* Recovery scan of a volume file from start to end (synchronous, at
 * start-up): calls fn(arg, off, rec, meta) for each record whose header
 * checks out AND whose data and chunk CRC table match (a whole record);
 * meta is valid during the call only. A record with a good header but bad
 * or missing data (torn: never acknowledged) is skipped whole; garbage is
 * skipped 64 bytes at a time. *last_end: end of the last record with a good
 * header (where new records may go), or start. 0, -errno, or fn's nonzero. */
int sto_vol_replay(int fd, uint64_t start, uint64_t end,
		   int (*fn)(void *arg, uint64_t off, const struct sto_rec *r,
			     const uint8_t *meta),
		   void *arg, uint64_t *last_end);
/* Volume file name: "<dir>/vol-<id 8 hex>.dat". */
int sto_vol_path(char *buf, size_t len, const char *dir, uint32_t id);

/* ------------------------------------------------------------ index.c */

#define STO_LOC_TOMBSTONE	0x1

/* Where a fragment lives, and what the index knows about it. */
struct sto_loc {
	uint8_t medium;		/* enum sto_medium */
	uint8_t dir;		/* directory within the medium */
	uint16_t flags;		/* STO_LOC_* */
	uint32_t vol;		/* volume id in that directory */
	uint64_t off;		/* record start in the volume */
	uint64_t size;		/* fragment (data) bytes */
	uint64_t ts;
	uint32_t crc;		/* fragment CRC-32C */
	uint32_t meta_len;
	uint64_t atime;		/* coarse last access, seconds */
	uint8_t tier;		/* enum sto_tier_class */
	uint32_t cold_after;	/* seconds, 0 = the node's default */
};

struct sto_idx;

int sto_idx_open(const char *dir, uint64_t map_size, struct sto_idx **out);
void sto_idx_close(struct sto_idx *x);

/* Looks k up (loop thread only: reuses one read transaction). Copies the
 * metadata into meta_buf (STO_MAX_META bytes) when not NULL. 0 or -ENOENT. */
int sto_idx_get(struct sto_idx *x, const struct sto_key *k, struct sto_loc *loc,
		void *meta_buf);

enum sto_idx_op_type {
	STO_IDX_PUT,		/* loc + meta, if newer than what is there */
	STO_IDX_DEL,		/* tombstone at loc.ts, if newer */
	STO_IDX_ATIME,		/* loc.atime, if the entry still is loc.off/vol */
	STO_IDX_QUARANTINE,	/* move to quarantine, if the entry still is loc */
	STO_IDX_MOVE,		/* compaction: to loc, if the entry still is old */
	STO_IDX_REAP,		/* drop the tombstone loc, if the entry still is it */
	STO_IDX_LST_PUT,	/* listing entries (lst), newest wins per key */
	STO_IDX_LST_DEL,	/* listing range removal (lst), bounded */
	STO_IDX_PURGE,		/* drop the entry (no tombstone) if it still is
				 * old (place and timestamp); loc: the purge's
				 * own record, dead at once */
	STO_IDX_SET_TIER,	/* tier, cold_after, if the entry is still live
				 * at loc.ts (wherever it is now) */
};

struct sto_lst_op;

struct sto_idx_op {
	enum sto_idx_op_type type;
	struct sto_key key;
	struct sto_loc loc;
	struct sto_loc old;	/* STO_IDX_MOVE: where it was; PURGE: the entry */
	const void *meta;	/* STO_IDX_PUT, MOVE: loc.meta_len bytes */
	struct sto_lst_op *lst;	/* STO_IDX_LST_*: in and out (results) */
	uint8_t tier;		/* STO_IDX_SET_TIER: the new policy (loc.ts: */
	uint32_t cold_after;	/* the version; out: loc, the entry) */
	bool copy;		/* replayed STO_IDX_PUT of a STO_REC_COPY record: a
				 * copy whose move never committed is dead space */
	int result;		/* out: 0, STO_ECONFLICT, -ENOENT (DEL of nothing;
				 * SET_TIER of nothing live) */
};

/* The committed end of a volume: where the next record may start after a
 * restart (anything past it was never acknowledged). */
struct sto_vol_tail {
	uint8_t medium, dir;
	uint32_t vol;
	uint64_t tail;
	uint64_t dead;			/* dead bytes to add (replay: torn gaps) */
};

/* Applies ops in one transaction (any thread, one at a time). 0 with each
 * op's result set, or -errno when the transaction failed (nothing applied).
 * Tails only move forward. On return the transaction is visible and its data
 * pages are synced, but it is durable only once the next sto_idx_apply() or
 * sto_idx_sync() returns 0 (LMDB's MDB_NOMETASYNC); that one also syncs the
 * data pages of its own transaction. */
int sto_idx_apply(struct sto_idx *x, struct sto_idx_op *ops, size_t n,
		  const struct sto_vol_tail *tails, size_t ntails);
/* Makes every applied transaction durable. */
int sto_idx_sync(struct sto_idx *x);
int sto_idx_vol_tail(struct sto_idx *x, uint8_t medium, uint8_t dir,
		     uint32_t vol, uint64_t *tail);
/* Committed tail and dead bytes (records overwritten, deleted, quarantined or
 * moved away) of a volume. -ENOENT for a volume without committed records. */
int sto_idx_vol_info(struct sto_idx *x, uint8_t medium, uint8_t dir,
		     uint32_t vol, uint64_t *tail, uint64_t *dead);
/* Forgets a volume (compacted away). Synced. */
int sto_idx_vol_drop(struct sto_idx *x, uint8_t medium, uint8_t dir, uint32_t vol);
/* Any thread (own read transaction). out has 1 << STO_SUFFIX_BITS slots;
 * fills the non-empty suffixes in order. */
int sto_idx_list_suffixes(struct sto_idx *x, uint32_t part,
			  struct sto_suffix_hash *out, size_t *n);
int sto_idx_list_objects(struct sto_idx *x, uint32_t part, uint32_t suffix,
			 struct sto_list_entry *out, size_t max, size_t *n);
/* Any thread (own read transaction): fn for every entry of obj, in key
 * order, until it returns nonzero (returned). Entries borrow nothing. */
int sto_idx_walk(struct sto_idx *x,
		 int (*fn)(void *arg, const struct sto_key *k, const struct sto_loc *l),
		 void *arg);
int sto_idx_counts(struct sto_idx *x, uint64_t *objects, uint64_t *quarantined);
/* The hash one entry contributes to its suffix hash. */
uint64_t sto_idx_entry_hash(const uint8_t name[STO_NAME_HASH_LEN], uint32_t frag,
			    uint64_t ts, bool tombstone);

/* ---------------------------------------------------------- listing.c */

/* Listings live in the index's LMDB environment, two more databases:
 *   lst   partition BE32 · listing id · key -> timestamp LE64, flags, value
 *   lstm  partition BE32 · listing id       -> entries, tombstones, bytes
 * so listing writes share the index's group commit (one flush for fragment
 * and listing writes), and lstm counts change in the same transactions. */
#define STO_LST_HEAD		(4 + STO_LISTING_ID_LEN)
#define STO_LST_PAGE_BYTES	(512u << 10)	/* keys + values per page */

/* A write, applied inside sto_idx_apply()'s transaction. */
struct sto_lst_op {
	struct sto_listing_id id;
	/* STO_IDX_LST_PUT */
	const struct sto_listing_entry *ents;
	size_t n;
	/* STO_IDX_LST_DEL: [start, end) (end.len 0: to the end), <= max */
	struct sto_bytes start, end;
	uint32_t max;
	/* ... only tombstones older than this (wall ns), when > 0: the reaper.
	 * max then bounds the entries visited, not only those removed. */
	uint64_t reap_before;
	/* out */
	uint64_t count;			/* applied, or deleted */
	bool more;			/* DEL: stopped at max; next is next */
	uint8_t next[STO_LISTING_MAX_KEY];
	uint32_t next_len;
};

/* A query's answer, self-contained (arena): sto_lst_page_free(). */
struct sto_lst_page {
	struct sto_listing_page page;
	struct sto_listing_entry *ents;
	struct sto_bytes *pfx;
	size_t cap_ents, cap_pfx;
	uint8_t *arena;
	size_t arena_len, arena_cap;
	uint64_t scanned;		/* entries visited (tombstones too) */
	uint64_t seeks;			/* seeks past common prefixes */
};

struct sto_lst_stat_buf {
	struct sto_listing_stat st;
	uint8_t first[STO_LISTING_MAX_KEY], last[STO_LISTING_MAX_KEY];
};

#ifdef MDB_VERSION_MAJOR	/* for index.c and listing.c, which see LMDB */
/* An LMDB return code as 0 or -errno (not found: -ENOENT, map full: -ENOSPC). */
int sto_mdb_err(int rc);
/* The environment and the listing databases (index.c). */
void sto_idx_lst_handles(struct sto_idx *x, MDB_env **env, MDB_dbi *lst,
			 MDB_dbi *lstm);
/* Applies a STO_IDX_LST_* op in txn; 0 or -errno (aborts the transaction). */
int sto_lst_apply(MDB_txn *txn, MDB_dbi lst, MDB_dbi lstm, struct sto_idx_op *op);
#endif

/* The longest listing key this index can store (STO_LISTING_MAX_KEY: keys
 * past LMDB's key size limit are kept in groups, listing.c). */
uint32_t sto_idx_lst_max_key(struct sto_idx *x);
/* Any thread (own read transaction). cap: the node's limit cap (q->limit 0
 * or above it means cap). out is zeroed first; free with sto_lst_page_free
 * whatever the result. */
int sto_idx_lst_query(struct sto_idx *x, const struct sto_listing_id *id,
		      const struct sto_listing_query *q, uint32_t cap,
		      struct sto_lst_page *out);
void sto_lst_page_free(struct sto_lst_page *p);
/* Any thread (own read transaction): the listings of part after `after`
 * (NULL: all), at most max, into out; *more when some were left. */
int sto_idx_lst_ids(struct sto_idx *x, uint32_t part, const uint8_t *after,
		    struct sto_listing_info *out, size_t max, size_t *n, bool *more);
int sto_idx_lst_stat(struct sto_idx *x, const struct sto_listing_id *id,
		     struct sto_lst_stat_buf *out);
/* Any thread: up to max listings holding tombstones, in (partition, id)
 * order, after `after` (NULL: from the first); *n of them into out. */
int sto_idx_lst_tombstoned(struct sto_idx *x, const struct sto_listing_id *after,
			   struct sto_listing_id *out, size_t max, size_t *n);

/* ----------------------------------------------------------- engine.c */

#define STO_MAX_DIRS		16
#define STO_PUT_BUF		(1u << 20)	/* PUT receive buffer */
#define STO_PUT_WINDOW		4		/* PUT buffers in flight */
#define STO_READ_PIECE		(1u << 20)	/* GET read size */

/* The hot/cold mover's policy (tier.c; docs/tiering.md). */
struct sto_tier_cfg {
	uint64_t cold_after;		/* seconds unread before hot -> cold (0: never) */
	unsigned scan_interval;		/* seconds between index scans (0: 60) */
	unsigned high_pct, low_pct;	/* hot watermarks, % of hot_capacity (0: off) */
	uint64_t hot_capacity;		/* bytes; 0 = the hot file systems' size */
	unsigned promote_reads;		/* reads of a cold fragment within ... */
	unsigned promote_window;	/* ... this many seconds promote it (0: never) */
	uint64_t rate_bytes;		/* mover bytes/s cap (0: none) */
	unsigned rate_ops;		/* mover fragments/s cap (0: none) */
	bool off;			/* no moves (the counters still run) */
};

struct sto_engine_cfg {
	const char *hot[STO_MAX_DIRS];
	unsigned nhot;
	const char *cold[STO_MAX_DIRS];
	unsigned ncold;
	uint64_t reserve_bytes;		/* kept free on every directory */
	unsigned reserve_pct;		/* ... or this % of it, the larger */
	uint64_t vol_max;		/* roll volumes past this size */
	uint64_t map_size;		/* LMDB map size */
	unsigned atime_interval;	/* seconds between atime updates */
	unsigned ring_entries;		/* io_uring SQ size */
	unsigned compact_interval;	/* seconds between compaction checks, 0 off */
	unsigned compact_pct;		/* compact sealed volumes this % dead */
	unsigned sync_depth;		/* fdatasyncs in flight per volume (0: 4) */
	uint64_t zero_ahead;		/* zero-fill this far past the small-record
					 * volume's tail (0: off) */
	uint64_t reclaim_age;		/* seconds: compaction drops tombstones
					 * older than this (0: STO_RECLAIM_AGE) */
	unsigned small_writes;		/* STO_SMALL_*: how whole records of <=
					 * 256 KiB are written (0: the default) */
	unsigned large_direct;		/* STO_LARGE_* (0: buffered) */
	unsigned commit_defer_ms;	/* a batch of acknowledged writes may wait
					 * this long for more before its index
					 * commit (0: STO_COMMIT_DEFER_MS) */
	struct sto_tier_cfg tier;
};

#define STO_RECLAIM_AGE		(7 * 86400ull)

#define STO_SYNC_DEPTH		4
#define STO_COMMIT_DEFER_MS	20

/* Whole records of <= 256 KiB (one receive buffer each). */
#define STO_SMALL_SEPARATE	1	/* a write each, then volume fdatasyncs */
#define STO_SMALL_BATCH		2	/* adjacent ones one write, then fdatasyncs */
#define STO_SMALL_DSYNC		3	/* adjacent ones one RWF_DSYNC write */
#define STO_SMALL_DEFAULT	STO_SMALL_BATCH

/* Large records (>= 8 MiB): full buffers O_DIRECT (default) or buffered. */
#define STO_LARGE_DIRECT	1
#define STO_LARGE_BUFFERED	2
#define STO_DIO_ALIGN		4096u
#define STO_ZERO_AHEAD		(32ull << 20)

struct sto_engine;

/* Opens (creating when needed) every directory, the index in the first hot
 * directory, and the io_uring, all on loop. 0 or -errno. */
int sto_engine_open(uv_loop_t *loop, const struct sto_engine_cfg *cfg,
		    struct sto_engine **out);
/* Waits for in-flight I/O and commits, closes everything, frees e, then
 * cb(arg) on the loop. New requests fail with -ESHUTDOWN meanwhile. */
void sto_engine_close(struct sto_engine *e, void (*cb)(void *arg), void *arg);
void sto_engine_stat(struct sto_engine *e, struct sto_stat *st);
/* The engine's counters; the server adds its own (gets, bytes_out). */
struct sto_stat *sto_engine_counters(struct sto_engine *e);
struct sto_idx *sto_engine_idx(struct sto_engine *e);
/* Acknowledged PUTs/DELETEs (or LISTs waiting for them) whose index commit
 * is not yet durable in LMDB (tests: the index lags acknowledgements). */
bool sto_engine_commits_pending(struct sto_engine *e);
/* Suffix-hash LISTs answered by an LMDB scan (the others came from the
 * per-partition cache). */
uint64_t sto_engine_list_scans(struct sto_engine *e);

/* PUT, streamed. The volume record is the write-ahead log: done runs once
 * the record is durable (its volume's fdatasync), before the index commit;
 * lookups see it at once (an overlay), LIST once the commit is visible, and
 * a restart replays records the index lacks. sto_put_begin checks the request against the index (an
 * equal or newer version or tombstone: STO_ECONFLICT) and the free space
 * (-ENOSPC) and reserves the record. The caller then loops: sto_put_buf()
 * for where the next payload bytes go (-EAGAIN: window full, resume(arg)
 * runs when there is room again), sto_put_fill() for how many landed. After
 * the last byte, done(arg, status, loc) runs once the fragment is durable
 * and indexed (or failed: STO_ECRC, -ENOSPC, -EIO, STO_ECONFLICT). */
struct sto_put;
typedef void (*sto_put_done_fn)(void *arg, int status, const struct sto_loc *loc);
int sto_put_begin(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
		  const void *meta, uint32_t meta_len, uint64_t size,
		  uint32_t crc, sto_put_done_fn done, void (*resume)(void *arg),
		  void *arg, struct sto_put **out);
int sto_put_buf(struct sto_put *p, void **buf, size_t *len);
void sto_put_fill(struct sto_put *p, size_t n);
/* The sender went away mid-payload: done never runs; p is freed later. */
void sto_put_abort(struct sto_put *p);

/* sto_put_begin with the fragment's tiering class and cold_after override
 * (COLD and PIN_COLD land on a cold directory when one has room). */
int sto_put_begin_ex(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
		     const void *meta, uint32_t meta_len, uint64_t size,
		     uint32_t crc, uint8_t tier, uint32_t cold_after,
		     sto_put_done_fn done, void (*resume)(void *arg),
		     void *arg, struct sto_put **out);
/* A copy of the fragment at *from (meta: its from->meta_len bytes) onto a
 * directory of medium with room, fed like a PUT (sto_put_buf/fill); once
 * durable it is committed as a conditional STO_IDX_MOVE (only if the index
 * still points at *from; else done gets -ENOENT and the copy is dead space).
 * from->atime is the copy's access time (the index keeps the newer). done
 * runs once the move is durable in the index. -ENOSPC: no directory has room. */
int sto_move_begin(struct sto_engine *e, const struct sto_key *k,
		   const struct sto_loc *from, const void *meta, uint8_t medium,
		   sto_put_done_fn done, void (*resume)(void *arg), void *arg,
		   struct sto_put **out);
/* Lookup (overlay, then index) without an access-time update. */
int sto_engine_peek(struct sto_engine *e, const struct sto_key *k,
		    struct sto_loc *loc, void *meta_buf);
/* Keeps the engine from finishing its close (background work in flight). */
void sto_engine_hold(struct sto_engine *e);
void sto_engine_release(struct sto_engine *e);
bool sto_engine_closing(struct sto_engine *e);
unsigned sto_engine_ndirs(struct sto_engine *e, uint8_t medium);
uv_loop_t *sto_engine_loop(struct sto_engine *e);
struct sto_tier *sto_engine_tier(struct sto_engine *e);

/* DELETE: a tombstone record through the PUT pipeline; done (0, -ENOENT,
 * STO_ECONFLICT) once it is durable. Returns STO_ECONFLICT (or -ENOSPC,
 * -ESHUTDOWN, -ENOMEM) at once when the index already has a newer version. */
int sto_del(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
	    sto_put_done_fn done, void *arg);

/* PURGE: drops k's entry without leaving a tombstone, only if its version
 * is the one at ts (live or tombstone): a handoff forgets what it pushed
 * home. A record (STO_REC_PURGE, naming the entry's place) goes through the
 * PUT pipeline, so a restart replays it; done (0, STO_ECONFLICT: another
 * version is there now, -ENOENT: nothing) once it is durable. Returns
 * -ENOENT or STO_ECONFLICT at once when the lookup already says so. */
int sto_purge_entry(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
	      sto_put_done_fn done, void *arg);

/* SET_TIER: the tiering class and cold_after of k's entry, only if it is
 * still live at version ts (an index update, no volume record: the policy
 * in a record header is read only when the record is first applied, and a
 * replay finds committed entries in place; moves keep the entry's policy).
 * done (0; STO_ECONFLICT: another version is there now; -ENOENT: nothing
 * live) once the update is durable; -ENOENT or STO_ECONFLICT at once when
 * the lookup already says so. The mover then acts on the new policy at its
 * next scan. */
int sto_engine_set_tier(struct sto_engine *e, const struct sto_key *k, uint64_t ts,
			uint8_t tier, uint32_t cold_after, sto_put_done_fn done,
			void *arg);

/* Index lookup for GET/HEAD (and a coarse atime update). 0, or -ENOENT
 * (loc->flags has STO_LOC_TOMBSTONE when a tombstone is why). */
int sto_lookup(struct sto_engine *e, const struct sto_key *k,
	       struct sto_loc *loc, void *meta_buf);

/* Reads fragment bytes [off, off + len) of loc (len <= STO_READ_PIECE),
 * verifying the covering chunk CRCs (or the whole-fragment CRC). cb gets
 * data pointing into buf, which the callee owns (free(buf)) and may keep
 * until its bytes are sent. On a mismatch: STO_ECRC, the fragment is
 * quarantined and no byte is delivered. */
typedef void (*sto_read_fn)(void *arg, int status, const uint8_t *data,
			    size_t len, void *buf);
int sto_read(struct sto_engine *e, const struct sto_key *k,
	     const struct sto_loc *loc, uint64_t off, uint64_t len,
	     sto_read_fn cb, void *arg);

/* LIST on a worker thread, done on the loop; the arrays live until cb
 * returns. */
typedef void (*sto_list_fn)(void *arg, int status,
			    const struct sto_suffix_hash *sfx,
			    const struct sto_list_entry *ents, size_t n);
int sto_list(struct sto_engine *e, uint32_t part, bool objects, uint32_t suffix,
	     sto_list_fn cb, void *arg);

/* Compaction of one sealed volume: copies its live records to the active
 * volume of the same directory (each copy verified, durable and re-indexed
 * like a PUT, and only if the index still points at the old copy), then
 * forgets and unlinks the volume (reads in flight keep its file open).
 * Reads and writes go on meanwhile. One at a time: -EBUSY while one runs, or
 * for the active volume or one with writes in flight. cb(arg, status, moved)
 * on the loop. */
int sto_compact(struct sto_engine *e, uint8_t medium, uint8_t dir, uint32_t vol,
		void (*cb)(void *arg, int status, uint64_t moved), void *arg);

/* Listings. sto_lst_put/sto_lst_delete queue op (owned by the caller until
 * done) for the next group commit; done(arg, status, op) once durable (op's
 * results set). Entries must be validated (sto_req_decode) and keys no
 * longer than sto_idx_lst_max_key() (-ENAMETOOLONG). */
typedef void (*sto_lst_write_fn)(void *arg, int status, struct sto_lst_op *op);
int sto_lst_put(struct sto_engine *e, struct sto_lst_op *op,
		sto_lst_write_fn done, void *arg);
int sto_lst_delete(struct sto_engine *e, struct sto_lst_op *op,
		   sto_lst_write_fn done, void *arg);
/* Removes the listing tombstones older than the reclaim age, every listing
 * (also done on the compaction check's cadence). cb(arg, status, reaped)
 * when the sweep ends (it may run inside this call); -EBUSY while one runs. */
int sto_lst_reap(struct sto_engine *e, void (*cb)(void *arg, int status, uint64_t reaped),
		 void *arg);
/* Query or stat on a worker thread, cb on the loop; page/st live until cb
 * returns. */
int sto_lst_query(struct sto_engine *e, const struct sto_listing_id *id,
		  const struct sto_listing_query *q, uint32_t cap,
		  void (*cb)(void *arg, int status, const struct sto_lst_page *page),
		  void *arg);
int sto_lst_stat(struct sto_engine *e, const struct sto_listing_id *id,
		 void (*cb)(void *arg, int status, const struct sto_listing_stat *st),
		 void *arg);
/* LISTING_IDS on a worker thread, cb on the loop (v lives until it returns). */
int sto_lst_ids(struct sto_engine *e, uint32_t part, const uint8_t *after,
		void (*cb)(void *arg, int status, const struct sto_listing_info *v,
			   size_t n, bool more),
		void *arg);

/* ------------------------------------------------------------- tier.c */

/* The hot/cold mover of one node (docs/tiering.md): scans the index every
 * scan_interval on a worker, then moves fragments one at a time through the
 * engine's io_uring (sto_move_begin), within the rate caps; promotes cold
 * fragments read promote_reads times within promote_window. Driven by the
 * engine's timer (sto_tier_tick), so it owns no libuv handle. */
struct sto_tier;
int sto_tier_new(struct sto_engine *e, const struct sto_tier_cfg *cfg,
		 struct sto_tier **out);
void sto_tier_tick(struct sto_tier *t);
/* A GET served a fragment (loop thread): counts it, and may queue a
 * promotion. */
void sto_tier_note_read(struct sto_tier *t, const struct sto_key *k,
			const struct sto_loc *loc);
/* Fills the scan-derived parts of st (objects, bytes, histogram, pending). */
void sto_tier_stat(struct sto_tier *t, struct sto_tier_stat *st);
/* No new moves or scans (engine closing); the one in flight finishes. */
void sto_tier_stop(struct sto_tier *t);
void sto_tier_free(struct sto_tier *t);

/* ------------------------------------------------------------ audit.c */

/* The auditor: a background scrub of every fragment's CRC-32C at a capped
 * rate (docs/durability.md). It walks the index on a worker, then reads each
 * live fragment through sto_read (io_uring; chunk CRCs checked), which
 * quarantines a bad one: the node's repair daemon then rebuilds it like a
 * lost fragment. Owns a timer on the engine's loop. */
struct sto_audit_cfg {
	double mbps;			/* bytes verified per second (0: off) */
	unsigned interval;		/* seconds from a pass's end to the next */
};
struct sto_audit;
int sto_audit_new(struct sto_engine *e, const struct sto_audit_cfg *cfg,
		  struct sto_audit **out);
/* Fills st->audit. */
void sto_audit_stat(struct sto_audit *a, struct sto_stat *st);
/* No new reads; cb(arg) once the one in flight finished, then free it. */
void sto_audit_stop(struct sto_audit *a, void (*cb)(void *arg), void *arg);
void sto_audit_free(struct sto_audit *a);

/* ----------------------------------------------------------- server.c */

struct sto_server;
struct sto_server_cfg {
	const char *addr;
	uint16_t port;			/* 0: any free port */
	unsigned max_inflight;		/* per connection */
	unsigned listing_max_limit;	/* cap on a listing page (0: default) */
	struct sto_audit *audit;	/* STAT reports its progress (or NULL) */
};
int sto_server_start(uv_loop_t *loop, struct sto_engine *e,
		     const struct sto_server_cfg *cfg, struct sto_server **out);
uint16_t sto_server_port(struct sto_server *s);
/* Stops listening, lets in-flight requests finish and their replies go out,
 * closes connections, frees s, then cb(arg). */
void sto_server_stop(struct sto_server *s, void (*cb)(void *arg), void *arg);

#endif
