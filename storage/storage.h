/* storage/storage.h: the storage node's client library, the only header
 * other folders include.
 *
 * A storage node (strata-storaged) holds fragments: the bytes of one replica
 * or one erasure-coded fragment of an object. A fragment is named by a
 * struct sto_key (partition, 16-byte name hash the gateway computes from
 * /account/bucket/object, fragment index) and versioned by a timestamp:
 * the newest timestamp wins, and a DELETE writes a tombstone that rejects
 * older PUTs. Every fragment carries its CRC-32C (the client sends it with
 * the PUT; the node verifies it before acknowledging and on every read) and
 * opaque metadata bytes (<= STO_MAX_META) the gateway owns.
 *
 * The client is asynchronous on a libuv loop: one struct sto_client is one
 * TCP connection; requests are pipelined and each completes through its
 * callback, on the loop thread. Callbacks may issue new requests. Payloads are
 * never copied: PUT sends the caller's iovec (which must stay valid until the
 * callback), GET hands received bytes to a chunk callback straight from the
 * receive buffer.
 *
 * Errors are 0 or a negative errno, or one of the STO_E* codes below;
 * sto_strerror() describes either. -ENOENT means no such fragment (info, when
 * given, says whether a tombstone exists), -ENOSPC that the node has no room.
 */
#ifndef STRATA_STORAGE_H
#define STRATA_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#define STO_PROTO_VERSION	1
#define STO_NAME_HASH_LEN	16
#define STO_MAX_META		(64u * 1024)		/* per-fragment metadata */
#define STO_MAX_FRAGMENT	(64ull << 30)		/* 64 GiB */
#define STO_MAX_REQ_HDR		(STO_MAX_META + 4096)	/* request header bytes */
#define STO_MAX_RESP_HDR	(1u << 20)		/* response header bytes */
#define STO_FRAME_MAGIC		0x53545246u		/* "STRF" */
#define STO_FRAME_PREFIX	8			/* magic + header length */
#define STO_SUFFIX_BITS		12			/* LIST groups names by the
							 * top 12 bits of the hash */
#define STO_LIST_MAX		4096			/* entries per LIST reply */
#define STO_DEFAULT_PORT	6200

/* Listings: ordered stores of (key -> timestamp, tombstone, value), one per
 * (partition, 16-byte listing id): a shard of a bucket's key range, or an
 * account's bucket list (docs/gateway.md, "Listings"). */
#define STO_LISTING_ID_LEN	16
#define STO_LISTING_MAX_KEY	1088	/* protocol limit, and what a node
					 * stores (longer than LMDB's keys):
					 * an S3 key (1,024) "\0" upload id */
#define STO_LISTING_MAX_VALUE	4096
#define STO_LISTING_MAX_DELIM	16
#define STO_LISTING_MAX_BATCH	1000	/* entries per LISTING_PUT (the encoded
					 * request must also fit STO_MAX_REQ_HDR) */
#define STO_LISTING_MAX_LIMIT	10000	/* protocol cap on a query's limit; nodes
					 * cap it lower (--listing-max-limit, 1000) */
#define STO_LISTING_DEFAULT_LIMIT 1000
#define STO_LISTING_MAX_DELETE	10000	/* entries per DELETE_RANGE call */

/* Errors beyond errno, all below -4096 so they never collide with it. */
enum {
	STO_EPROTO = -6000,	/* malformed or oversized frame */
	STO_EVERSION,		/* protocol version not spoken */
	STO_ECRC,		/* CRC-32C mismatch (sent data, or stored data) */
	STO_ECONFLICT,		/* an equal or newer timestamp (or tombstone) exists */
	STO_ECLOSED,		/* connection closed before the reply */
};
const char *sto_strerror(int err);

/* CRC-32C (Castagnoli) as the node computes it: start with crc = 0 and chain
 * calls over consecutive pieces. */
uint32_t sto_crc32c(uint32_t crc, const void *buf, size_t len);

enum sto_medium {
	STO_MEDIUM_HOT = 0,	/* SSD: where writes land */
	STO_MEDIUM_COLD = 1,	/* SATA */
};

/* Tiering class of a fragment (chosen at PUT; docs/tiering.md). */
enum sto_tier_class {
	STO_TIER_STANDARD = 0,	/* lands hot, moves cold once unread for cold_after */
	STO_TIER_COLD = 1,	/* lands cold (S3 STANDARD_IA, GLACIER_IR); reads
				 * can promote it like any cold fragment */
	STO_TIER_PIN_HOT = 2,	/* stays hot */
	STO_TIER_PIN_COLD = 3,	/* stays cold */
};

/* Optional PUT parameters (sto_put_ex); zeroed = the node's defaults. */
struct sto_put_opts {
	enum sto_tier_class tier;
	uint32_t cold_after;		/* seconds unread before moving cold;
					 * 0 = the node's --cold-after */
};

struct sto_key {
	uint32_t part;
	uint8_t name[STO_NAME_HASH_LEN];
	uint32_t frag;
};

/* What a reply says about a fragment; meta borrows from the reply and lives
 * until the callback returns. */
struct sto_info {
	uint64_t timestamp;
	uint64_t size;			/* whole fragment */
	uint32_t crc32c;		/* whole fragment */
	bool tombstone;			/* status -ENOENT: deleted at timestamp */
	const void *meta;
	uint32_t meta_len;
	enum sto_medium medium;
	uint64_t atime;			/* coarse last access, seconds */
	enum sto_tier_class tier;
	uint32_t cold_after;		/* the fragment's override, 0 = default */
	uint64_t offset;		/* GET: first byte delivered */
	uint64_t length;		/* GET: bytes delivered */
	const char *error;		/* detail when status < 0, or NULL */
};

struct sto_suffix_hash {
	uint32_t suffix;		/* top STO_SUFFIX_BITS of the name hash */
	uint64_t hash;			/* order-independent hash of its entries */
	uint64_t count;
};

struct sto_list_entry {
	uint8_t name[STO_NAME_HASH_LEN];
	uint32_t frag;
	uint64_t timestamp;
	bool tombstone;
	uint64_t size;
};

struct sto_medium_stat {
	enum sto_medium medium;
	uint32_t dirs, volumes;
	uint64_t capacity_bytes, free_bytes, used_bytes, reserve_bytes;
};

#define STO_TIER_HIST	8	/* age histogram buckets */
#define STO_TIER_HEAT	6	/* heat histogram buckets */

/* Tiering counters, per medium [0 hot, 1 cold]. objects/bytes/hist come from
 * the mover's last index scan; the rest are live counters since start. */
struct sto_tier_stat {
	uint64_t objects[2], bytes[2], dead_bytes[2];
	uint64_t reads[2], writes[2];
	uint64_t moved_down_objects, moved_down_bytes;
	uint64_t moved_up_objects, moved_up_bytes;
	uint64_t move_failures, scans, last_scan_age;
	uint64_t pending_promotions, pending_moves;
	/* hist[m][i]: fragments last read less than hist_bounds[i] seconds ago
	 * (and not in an earlier bucket); the last bucket holds the rest. */
	uint64_t hist[2][STO_TIER_HIST];
	uint64_t hist_bounds[STO_TIER_HIST];
	/* heat[i]: cold fragments read (within their current promotion window)
	 * 1, 2, 3-4, 5-8, 9-16, more times; only kept with --promote-reads. */
	uint64_t heat[STO_TIER_HEAT];
};

struct sto_stat {
	struct sto_medium_stat media[2];
	struct sto_tier_stat tier;
	uint64_t objects, quarantined;
	uint64_t puts, gets, deletes, crc_errors, bytes_in, bytes_out;
	uint64_t group_commits, fsyncs, nospace, conflicts;
	uint64_t fsync_us, commit_us;	/* time spent in each, in total */
	uint64_t purged;		/* entries dropped by PURGE */
	uint64_t misses;		/* GETs (not HEADs) answered "no such
					 * fragment": a reader asked the wrong node */
	/* The auditor (background CRC scrub of every fragment). */
	struct {
		uint64_t passes;		/* finished */
		uint64_t checked, bytes;	/* fragments and bytes verified, since start */
		uint64_t corrupt;		/* found bad (quarantined), since start */
		uint64_t pass_done, pass_total;	/* fragments of the pass under way */
		uint64_t last_pass_age;		/* seconds since the last finished
						 * (UINT64_MAX: none yet) */
		uint64_t last_pass_seconds;
	} audit;
};

/* A byte string borrowed from a reply (or the caller). */
struct sto_bytes {
	const void *data;
	uint32_t len;
};

struct sto_listing_id {
	uint32_t part;			/* placement: the rep3 ring */
	uint8_t id[STO_LISTING_ID_LEN];
};

struct sto_listing_entry {
	const void *key;		/* 1..STO_LISTING_MAX_KEY bytes */
	uint32_t key_len;
	uint64_t timestamp;		/* > 0; newest wins per key */
	bool tombstone;
	const void *value;		/* opaque, <= STO_LISTING_MAX_VALUE; none
					 * for a tombstone */
	uint32_t value_len;
};

/* S3 semantics: the listing is the ordered sequence of "items" - keys
 * starting with prefix, where every key with the delimiter in it after the
 * prefix is folded into its common prefix (prefix .. first delimiter
 * inclusive). A page returns the items > start_after, up to limit of them
 * (keys and common prefixes both count; 0 = the node's cap). Tombstones are
 * skipped unless include_tombstones (replication). */
struct sto_listing_query {
	struct sto_bytes start_after, prefix, delimiter;
	uint32_t limit;
	bool include_tombstones;
};

/* One page. Everything borrows from the reply, valid during the callback. */
struct sto_listing_page {
	const struct sto_listing_entry *entries;
	size_t n_entries;
	const struct sto_bytes *prefixes;	/* common prefixes, in order */
	size_t n_prefixes;
	bool is_truncated;
	struct sto_bytes next_marker;	/* start_after for the next page: the
					 * last item returned (or scanned) */
};

struct sto_listing_stat {
	uint64_t entries;		/* live keys */
	uint64_t tombstones;
	uint64_t bytes;			/* key + value bytes, tombstones included */
	struct sto_bytes first_key, last_key;	/* of all stored entries;
						 * empty listing: len 0 */
};

/* LISTING_IDS: one listing stored in a partition, with its counts. */
struct sto_listing_info {
	uint8_t id[STO_LISTING_ID_LEN];
	uint64_t entries, tombstones, bytes;
	uint64_t hash;			/* order-independent, of (key, timestamp,
					 * tombstone): equal listings, equal hash */
};
#define STO_LISTING_IDS_MAX	1000	/* listings per LISTING_IDS reply */

/* The suffix (LIST grouping) of a name hash. */
static inline uint32_t sto_suffix_of(const uint8_t name[STO_NAME_HASH_LEN])
{
	return ((uint32_t)name[0] << 4 | name[1] >> 4) & ((1u << STO_SUFFIX_BITS) - 1);
}

/* ------------------------------------------------------------- client */

typedef struct sto_client sto_client;

typedef void (*sto_connect_fn)(sto_client *c, int status, void *arg);
/* info is NULL when the reply carried no fragment information. */
typedef void (*sto_done_fn)(void *arg, int status, const struct sto_info *info);
/* GET payload, in order; info (borrowed) describes the range. */
typedef void (*sto_chunk_fn)(void *arg, const struct sto_info *info,
			     const void *data, size_t len);
typedef void (*sto_suffixes_fn)(void *arg, int status,
				const struct sto_suffix_hash *v, size_t n);
typedef void (*sto_entries_fn)(void *arg, int status,
			       const struct sto_list_entry *v, size_t n);
typedef void (*sto_stat_fn)(void *arg, int status, const struct sto_stat *st);
/* LISTING_PUT: count = entries applied (newer than what was stored). */
typedef void (*sto_listing_put_fn)(void *arg, int status, uint64_t count);
typedef void (*sto_listing_page_fn)(void *arg, int status,
				    const struct sto_listing_page *page);
typedef void (*sto_listing_stat_fn)(void *arg, int status,
				    const struct sto_listing_stat *st);
/* LISTING_IDS: v (borrowed) in id order; more: ask again after the last. */
typedef void (*sto_listing_ids_fn)(void *arg, int status,
				   const struct sto_listing_info *v, size_t n, bool more);
/* DELETE_RANGE: deleted entries; more: call again from next (borrowed). */
typedef void (*sto_listing_deleted_fn)(void *arg, int status, uint64_t deleted,
				       bool more, struct sto_bytes next);

/* Connects to host:port (numeric IPv4/IPv6 address). cb runs once, on the
 * loop; on failure the client must still be closed. 0 or -errno. */
int sto_client_connect(uv_loop_t *loop, const char *host, uint16_t port,
		       sto_connect_fn cb, void *arg, sto_client **out);
/* Fails every pending request with STO_ECLOSED (their callbacks run), closes
 * the connection and frees c once libuv has let go of it. */
void sto_client_close(sto_client *c);
/* Requests sent and not yet answered. */
unsigned sto_client_pending(const sto_client *c);
/* Monotonic ns (strata_now_ns) of the last sign of life on c: bytes received,
 * or a write that had to wait for the peer to read completed; 0 before any.
 * A node that is busy keeps this recent; a hung one (SIGSTOP, a dead link)
 * does not. */
uint64_t sto_client_last_progress(const sto_client *c);
/* Since when (monotonic ns) requests have been pending without a break; 0
 * when none is. */
uint64_t sto_client_busy_since(const sto_client *c);
/* The peer did something this process's loop has not seen yet: bytes wait
 * to be read (connected), or the connect completed (connecting). A loop
 * that was starved of CPU runs its timers before its reads: timestamps
 * alone would make a live peer look silent. */
bool sto_client_peer_ready(const sto_client *c);

/* PUT: iov[0..iovcnt) (total bytes = the fragment) and meta must stay valid
 * until cb. crc is the CRC-32C of the fragment (sto_crc32c). */
int sto_put(sto_client *c, const struct sto_key *k, uint64_t timestamp,
	    const void *meta, uint32_t meta_len, const struct iovec *iov,
	    unsigned iovcnt, uint32_t crc, sto_done_fn cb, void *arg);
/* sto_put with tiering options (o may be NULL: defaults). */
int sto_put_ex(sto_client *c, const struct sto_key *k, uint64_t timestamp,
	       const void *meta, uint32_t meta_len, const struct iovec *iov,
	       unsigned iovcnt, uint32_t crc, const struct sto_put_opts *o,
	       sto_done_fn cb, void *arg);
/* GET bytes [offset, offset + length) (length 0 = to the end): chunk gets the
 * bytes as they arrive, then done runs. The node verified them; a stream cut
 * short (a bad chunk found mid-stream) ends with status < 0. */
int sto_get(sto_client *c, const struct sto_key *k, uint64_t offset,
	    uint64_t length, sto_chunk_fn chunk, sto_done_fn done, void *arg);
/* sto_get whose payload the client reads straight into buf (no chunk
 * callbacks, no copy through its own buffer): buf[0..cap) must stay valid
 * until done runs or sto_get_unbind(c, *id). A payload longer than cap is
 * dropped and done gets -EMSGSIZE; info->length says how many bytes landed. */
int sto_get_into(sto_client *c, const struct sto_key *k, uint64_t offset,
		 uint64_t length, void *buf, size_t cap, sto_done_fn done, void *arg,
		 uint64_t *id);
/* The caller no longer wants request id's payload (its buffer may go): the
 * rest of it is read and dropped; done still runs. No effect once done ran. */
void sto_get_unbind(sto_client *c, uint64_t id);
int sto_head(sto_client *c, const struct sto_key *k, sto_done_fn cb, void *arg);
/* DELETE: a tombstone at timestamp. -ENOENT when nothing live was there (the
 * tombstone is written anyway); STO_ECONFLICT when something newer exists. */
int sto_delete(sto_client *c, const struct sto_key *k, uint64_t timestamp,
	       sto_done_fn cb, void *arg);
/* LIST a partition: its non-empty suffixes with their hashes, or the entries
 * (tombstones included) of one suffix. */
/* PURGE: drops the fragment (live or tombstone) without a tombstone, only
 * if its version is the one at timestamp: for handoff data already pushed
 * to its primaries. 0 once durable; STO_ECONFLICT when another version is
 * there, -ENOENT when nothing is. */
int sto_purge(sto_client *c, const struct sto_key *k, uint64_t timestamp,
	      sto_done_fn cb, void *arg);
/* SET_TIER: the tiering policy (o->tier, o->cold_after) of the fragment at
 * version timestamp, for fragments already stored (a lifecycle rule or a
 * bucket pin changed); the node's mover acts on it at its next scan. 0 once
 * durable (info: the fragment's medium and new policy); STO_ECONFLICT when
 * another version is there, -ENOENT when nothing live is. */
int sto_set_tier(sto_client *c, const struct sto_key *k, uint64_t timestamp,
		 const struct sto_put_opts *o, sto_done_fn cb, void *arg);
int sto_list_suffixes(sto_client *c, uint32_t part, sto_suffixes_fn cb, void *arg);
int sto_list_objects(sto_client *c, uint32_t part, uint32_t suffix,
		     sto_entries_fn cb, void *arg);
int sto_stat(sto_client *c, sto_stat_fn cb, void *arg);

/* Listings. The id (and every pointer argument) is copied into the request
 * before the call returns. */

/* Applies v[0..n) (1 <= n <= STO_LISTING_MAX_BATCH) atomically: per key the
 * newest timestamp wins (an equal or older one is skipped, not an error).
 * The reply comes once the batch is durable; it rides the node's index
 * group commit with fragment PUTs and DELETEs. -EMSGSIZE: the batch does not
 * fit one request (STO_MAX_REQ_HDR); -EINVAL: a field out of range;
 * -ENAMETOOLONG (from the node): a key longer than it can store. */
int sto_listing_put(sto_client *c, const struct sto_listing_id *id,
		    const struct sto_listing_entry *v, size_t n,
		    sto_listing_put_fn cb, void *arg);
/* One page of a listing (see struct sto_listing_query). Common prefixes
 * cost the node one seek each, whatever the number of keys under them. */
int sto_listing_query(sto_client *c, const struct sto_listing_id *id,
		      const struct sto_listing_query *q, sto_listing_page_fn cb,
		      void *arg);
/* Counts (kept in the same transactions as the entries: O(1)) and the first
 * and last key: what a shard split decides on. */
int sto_listing_stat(sto_client *c, const struct sto_listing_id *id,
		     sto_listing_stat_fn cb, void *arg);
/* Removes (no tombstones: for shard retirement after a split moved the
 * entries) every stored entry with start <= key < end (end.len 0: to the
 * end of the listing), at most max of them per call (0 or more than
 * STO_LISTING_MAX_DELETE: that), durably. Dropping a listing = calling this
 * with start and end empty until more is false. */
int sto_listing_delete_range(sto_client *c, const struct sto_listing_id *id,
			     struct sto_bytes start, struct sto_bytes end,
			     uint32_t max, sto_listing_deleted_fn cb, void *arg);

/* The listings stored for partition part (replication: what to compare),
 * in id order, those after `after` (NULL: from the first), at most
 * STO_LISTING_IDS_MAX per reply. */
int sto_listing_ids(sto_client *c, uint32_t part, const uint8_t *after,
		    sto_listing_ids_fn cb, void *arg);

#endif
