/* ring/ring.h: the consistent-hash ring, the only header other folders include.
 *
 * Two halves:
 *  - the ring (struct ring): a loaded, read-only ring file that every node and
 *    gateway uses to place data. Name -> partition -> the devices holding its
 *    placements (replicas, or EC fragment i on placement i), plus handoffs.
 *  - the builder (struct ring_builder): the operator's editable state (devices,
 *    weights, the current assignment and when each partition last moved);
 *    rebalance() turns it into a new ring file. Daemons never load builders.
 *
 * Errors are 0 or a negative errno, or one of the RING_E* codes below;
 * ring_strerror() describes either.
 */
#ifndef STRATA_RING_H
#define STRATA_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_MAX_PART_POWER	24	/* 16M partitions */
#define RING_MAX_PLACEMENTS	32	/* replicas, or k+m fragments */
#define RING_MAX_DEVICES	65535	/* device ids are 0..65534 */
#define RING_NAME_MAX		63	/* device name, node address */
#define RING_KEY_LEN		16	/* placement hash key (SipHash-2-4) */
#define RING_PATH_MAX		4096	/* longest /account/bucket/object */

/* Errors beyond errno, all below -4096 so they never collide with it. */
enum {
	RING_EBADMAGIC = -5000,	/* not a Strata ring or builder file */
	RING_EVERSION,		/* written by a newer, incompatible format */
	RING_ECHECKSUM,		/* damaged: checksum mismatch */
	RING_EDECODE,		/* protobuf decode failed */
	RING_EINVALID,		/* decoded, but fields are inconsistent */
	RING_ENODEV,		/* no such device id */
	RING_EEXIST,		/* device (node + name) already in the builder */
	RING_ENOCAPACITY,	/* no device with weight > 0 */
	RING_EKIND,		/* a builder file where a ring was expected, or the reverse */
	RING_ESTALE,		/* a ring not newer than the one in use */
	RING_EMISMATCH,		/* another cluster's ring: key, part power or policy differ */
};
const char *ring_strerror(int err);

enum ring_policy_type {
	RING_POLICY_REPLICA = 1,	/* placements = replicas */
	RING_POLICY_EC = 2,		/* placements = k + m fragments */
};

struct ring_policy {
	enum ring_policy_type type;
	uint32_t replicas;		/* RING_POLICY_REPLICA */
	uint32_t ec_k, ec_m;		/* RING_POLICY_EC */
	/* EC: the policy's number in the cluster (0..RING_MAX_POLICY), unique
	 * among its EC rings. Several EC rings share the nodes' key space, so
	 * a fragment's number says whose it is: ring_frag_id. */
	uint32_t index;
};

#define RING_MAX_POLICY		255
#define RING_FRAG_SHIFT		8

/* The storage-node fragment number (sto_key.frag) of EC placement i under
 * policy p: index << 8 | i. Policy 0's numbers are plain 0..k+m-1, as before
 * there were several; a replica ring's copies are all fragment 0. */
static inline uint32_t ring_frag_id(const struct ring_policy *p, unsigned i)
{
	return p->type == RING_POLICY_EC ? p->index << RING_FRAG_SHIFT | i : 0;
}

/* The placement of an EC fragment number, and the policy index it names. */
static inline unsigned ring_frag_placement(uint32_t frag)
{
	return frag & ((1u << RING_FRAG_SHIFT) - 1);
}

static inline uint32_t ring_frag_policy(uint32_t frag)
{
	return frag >> RING_FRAG_SHIFT;
}

/* Number of placements (replicas or k+m) a partition has under policy p. */
unsigned ring_policy_placements(const struct ring_policy *p);

/* One device. In a loaded ring these are borrowed from the ring and live
 * until ring_free(). Failure domains nest: region > zone > node > device;
 * a node is one storage daemon (its address:port). */
struct ring_dev {
	uint32_t id;			/* stable across rebalances */
	uint32_t region;
	uint32_t zone;			/* unique within its region */
	char node[RING_NAME_MAX + 1];	/* "host:port" of the storage daemon */
	char name[RING_NAME_MAX + 1];	/* device name on that node, e.g. "d0" */
	double weight;			/* relative capacity; 0 = drain */
};

/* ---------------------------------------------------------------- ring */

struct ring;

/* Loads and validates a ring file (or an in-memory copy of one). A damaged or
 * hostile file gives RING_E* or -errno and *out untouched, never a crash. */
int ring_load(const char *path, struct ring **out);
int ring_load_buf(const void *buf, size_t len, struct ring **out);

/* References. A loaded ring has one, its loader's. ring_get() takes another
 * (and returns r): whoever keeps a ring, or devices borrowed from it,
 * across loop iterations while the daemon may replace the ring (a request,
 * a write set) holds one. ring_put() drops one; the last frees the ring.
 * ring_free() is ring_put() (the loader's reference). NULL is a no-op for
 * all three. Atomic: rings may be shared between threads. */
struct ring *ring_get(const struct ring *r);
void ring_put(const struct ring *r);
void ring_free(struct ring *r);
unsigned ring_refs(const struct ring *r);	/* for tests and logs */

/* Makes r keep next (its replacement in a daemon) alive, with a reference
 * dropped when r is freed: a holder of r may then use any ring that replaced
 * it later without a reference of its own (a request that began on r and
 * looks up the daemon's current ring halfway). One successor per ring:
 * -EBUSY for a second one (or r itself). */
int ring_set_successor(struct ring *r, struct ring *next);

uint32_t ring_part_power(const struct ring *r);
uint32_t ring_parts(const struct ring *r);		/* 1 << part_power */
unsigned ring_placements(const struct ring *r);
const struct ring_policy *ring_policy(const struct ring *r);
uint64_t ring_version(const struct ring *r);		/* bumps on every rebalance */
unsigned ring_dev_count(const struct ring *r);
const struct ring_dev *ring_dev_at(const struct ring *r, unsigned i);	/* 0..count-1 */
const struct ring_dev *ring_dev_by_id(const struct ring *r, uint32_t id);

/* Whether next may replace cur in a running daemon (a pushed or reloaded
 * ring): 0 when it is the same cluster's placement (hash key, part power and
 * policy equal, so every name keeps its partition number) at a newer
 * version; RING_ESTALE when its version is not newer (an old file put back
 * must not undo a rebalance); RING_EMISMATCH otherwise. */
int ring_check_successor(const struct ring *cur, const struct ring *next);

/* Partition of a name: keyed hash (the cluster's secret key, so names can't
 * be aimed at one device) of "/account/bucket/object", top part_power bits.
 * bucket and object may be NULL for account- and bucket-level names; the
 * joined path is at most RING_PATH_MAX bytes. */
int ring_part_of(const struct ring *r, const char *account, const char *bucket,
		 const char *object, uint32_t *part);	/* 0 or -ENAMETOOLONG */
uint32_t ring_part_of_path(const struct ring *r, const void *path, size_t len);

/* The partition's primary devices, placement i in devs[i]. n must be
 * ring_placements(r). Returns n. */
unsigned ring_primaries(const struct ring *r, uint32_t part,
			const struct ring_dev **devs, unsigned n);

/* Up to n handoff devices for part, in order: a deterministic sequence of
 * devices that are not primaries, preferring regions, then zones, then nodes
 * the partition does not use yet. Returns how many were filled. */
unsigned ring_handoffs(const struct ring *r, uint32_t part,
		       const struct ring_dev **devs, unsigned n);

/* ------------------------------------------------------------- builder */

struct ring_builder;

/* A new, empty builder. seed makes rebalances deterministic; key is the
 * placement hash key (RING_KEY_LEN bytes), or NULL to draw a random one. */
int ring_builder_create(uint32_t part_power, const struct ring_policy *policy,
			uint32_t min_part_hours, uint64_t seed,
			const uint8_t *key, struct ring_builder **out);
int ring_builder_load(const char *path, struct ring_builder **out);
int ring_builder_load_buf(const void *buf, size_t len, struct ring_builder **out);
int ring_builder_save(const struct ring_builder *b, const char *path);
void ring_builder_free(struct ring_builder *b);

/* Adds a device; dev->id is ignored and the new id returned in *id. */
int ring_builder_add(struct ring_builder *b, const struct ring_dev *dev, uint32_t *id);
/* Removes a device: its placements move at the next rebalance. */
int ring_builder_remove(struct ring_builder *b, uint32_t id);
int ring_builder_set_weight(struct ring_builder *b, uint32_t id, double weight);
int ring_builder_set_min_part_hours(struct ring_builder *b, uint32_t hours);
/* How far (a fraction: 0.1 = 10%) a domain may exceed its weight share so
 * that partitions keep their placements in distinct domains. 0 (default):
 * weights always win, e.g. a zone just under 1/3 of the weight leaves some
 * partitions with two of three replicas in another zone. */
int ring_builder_set_overload(struct ring_builder *b, double overload);
double ring_builder_overload(const struct ring_builder *b);

struct ring_rebalance_stats {
	uint64_t moved;			/* placements that changed device */
	uint64_t placements;		/* parts * placements */
	double balance;			/* worst |assigned/wanted - 1| over devices, %;
					 * wanted = weight share (adjusted by overload) */
	uint64_t dispersion;		/* parts with more placements in one failure
					 * domain than the layout and weights require */
	uint64_t parts_sharing_zone;	/* parts with two placements in one zone (the
					 * layout may force it: fewer zones than placements) */
	uint64_t parts_sharing_node;	/* ... in one node */
	uint64_t locked;		/* placements min_part_hours kept from moving */
};

/* Reassigns placements: moves what removed/zero-weight devices held, spreads
 * partitions over failure domains, and evens device load toward the weighted
 * share, moving as little as possible and each partition at most once per
 * min_part_hours. now_hours is hours since the epoch (time(NULL) / 3600 for
 * real use; tests pass their own clock). */
int ring_builder_rebalance(struct ring_builder *b, uint64_t now_hours,
			   struct ring_rebalance_stats *stats);

/* Balance and dispersion of the current assignment (moved/locked are 0). */
void ring_builder_report(const struct ring_builder *b, struct ring_rebalance_stats *stats);

/* Writes the ring file daemons load (atomically). Needs a rebalanced builder. */
int ring_builder_write_ring(const struct ring_builder *b, const char *path);
/* Same, into a malloc'd buffer. */
int ring_builder_ring_buf(const struct ring_builder *b, uint8_t **buf, size_t *len);

/* Introspection for tools and tests. */
uint32_t ring_builder_part_power(const struct ring_builder *b);
const struct ring_policy *ring_builder_policy(const struct ring_builder *b);
uint32_t ring_builder_min_part_hours(const struct ring_builder *b);
uint64_t ring_builder_version(const struct ring_builder *b);
unsigned ring_builder_dev_count(const struct ring_builder *b);	/* live devices */
const struct ring_dev *ring_builder_dev_at(const struct ring_builder *b, unsigned i);
/* Placements a device holds now, and what its weight entitles it to. */
uint64_t ring_builder_dev_parts(const struct ring_builder *b, uint32_t id);
double ring_builder_dev_wanted(const struct ring_builder *b, uint32_t id);
/* Device id of placement i of part, or UINT32_MAX when unassigned. */
uint32_t ring_builder_assignment(const struct ring_builder *b, uint32_t part, unsigned i);

#endif
