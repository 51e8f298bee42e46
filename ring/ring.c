/* ring/ring.c: a loaded ring: name -> partition -> devices, and handoffs. */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

const char *ring_strerror(int err)
{
	switch (err) {
	case RING_EBADMAGIC:	return "not a Strata ring or builder file";
	case RING_EVERSION:	return "file written by a newer Strata (format version too new)";
	case RING_ECHECKSUM:	return "file is damaged (checksum or length mismatch)";
	case RING_EDECODE:	return "file is damaged (protobuf decoding failed)";
	case RING_EINVALID:	return "file or arguments are inconsistent (bad policy, device or assignment)";
	case RING_ENODEV:	return "no such device";
	case RING_EEXIST:	return "a device with that node and name already exists";
	case RING_ENOCAPACITY:	return "no device with weight > 0 to place partitions on";
	case RING_EKIND:	return "wrong kind of file (a builder where a ring was expected, or the reverse)";
	case RING_ESTALE:	return "ring version is not newer than the one in use";
	case RING_EMISMATCH:	return "ring of another cluster or layout (hash key, part power or policy differ)";
	}
	return strerror(-err);
}

unsigned ring_policy_placements(const struct ring_policy *p)
{
	return p->type == RING_POLICY_EC ? p->ec_k + p->ec_m : p->replicas;
}

struct ring *ring_get(const struct ring *cr)
{
	struct ring *r = (struct ring *)cr;	/* the count is not the ring's value */

	if (r)
		atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	return r;
}

void ring_put(const struct ring *cr)
{
	struct ring *r = (struct ring *)cr;

	/* The last reference frees the ring, and drops its successor's (a
	 * loop, not recursion: a chain of replaced rings may be long). */
	while (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
		struct ring *next = r->successor;

		free(r->assign);
		free(r->by_id);
		free(r->devs);
		free(r);
		r = next;
	}
}

void ring_free(struct ring *r)
{
	ring_put(r);
}

unsigned ring_refs(const struct ring *r)
{
	return atomic_load_explicit(&((struct ring *)r)->refs, memory_order_relaxed);
}

int ring_set_successor(struct ring *r, struct ring *next)
{
	if (r->successor || next == r)
		return -EBUSY;
	r->successor = ring_get(next);
	return 0;
}

uint32_t ring_part_power(const struct ring *r)		{ return r->part_power; }
uint32_t ring_parts(const struct ring *r)		{ return r->parts; }
unsigned ring_placements(const struct ring *r)		{ return r->placements; }
const struct ring_policy *ring_policy(const struct ring *r) { return &r->policy; }
uint64_t ring_version(const struct ring *r)		{ return r->version; }
unsigned ring_dev_count(const struct ring *r)		{ return r->ndevs; }

const struct ring_dev *ring_dev_at(const struct ring *r, unsigned i)
{
	return i < r->ndevs ? &r->devs[i] : NULL;
}

const struct ring_dev *ring_dev_by_id(const struct ring *r, uint32_t id)
{
	return id <= r->max_id ? r->by_id[id] : NULL;
}

/* SipHash-2-4 (libsodium's crypto_shorthash): a keyed PRF made for exactly
 * this, so without the cluster key nobody can pick names that pile onto one
 * partition. The top part_power bits of the 64-bit result are the partition. */
int ring_check_successor(const struct ring *cur, const struct ring *next)
{
	if (cur->part_power != next->part_power ||
	    memcmp(cur->key, next->key, RING_KEY_LEN) ||
	    cur->policy.type != next->policy.type ||
	    ring_policy_placements(&cur->policy) != ring_policy_placements(&next->policy) ||
	    cur->policy.ec_k != next->policy.ec_k || cur->policy.index != next->policy.index)
		return RING_EMISMATCH;
	return next->version > cur->version ? 0 : RING_ESTALE;
}

static uint64_t ring_hash(const struct ring *r, const void *data, size_t len)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v = 0;

	crypto_shorthash(h, data, len, r->key);
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)h[i] << (8 * i);
	return v;
}

uint32_t ring_part_of_path(const struct ring *r, const void *path, size_t len)
{
	uint64_t v = ring_hash(r, path, len);

	return r->part_power ? (uint32_t)(v >> (64 - r->part_power)) : 0;
}

int ring_part_of(const struct ring *r, const char *account, const char *bucket,
		 const char *object, uint32_t *part)
{
	const char *names[3] = { account, bucket, object };
	char buf[RING_PATH_MAX];
	size_t len = 0;

	for (int i = 0; i < 3 && names[i]; i++) {
		size_t n = strlen(names[i]);

		if (n + 1 > sizeof(buf) - len)
			return -ENAMETOOLONG;
		buf[len++] = '/';
		memcpy(buf + len, names[i], n);
		len += n;
	}
	*part = ring_part_of_path(r, buf, len);
	return 0;
}

unsigned ring_primaries(const struct ring *r, uint32_t part,
			const struct ring_dev **devs, unsigned n)
{
	const uint16_t *a = r->assign + (size_t)(part & (r->parts - 1)) * r->placements;
	unsigned i;

	for (i = 0; i < n && i < r->placements; i++)
		devs[i] = r->by_id[a[i]];
	return i;
}

/* ---------------------------------------------------------------- handoffs
 *
 * Handoff order is weighted rendezvous hashing per partition: each device
 * draws an exponential "arrival time" -ln(u)/weight from a keyed hash of
 * (partition, device id); earlier arrivals come first. That is deterministic,
 * proportional to weight, and stable: adding or removing a device only
 * inserts or deletes that device in every list. On top, devices in failure
 * domains the partition doesn't use yet are taken first (region, then zone,
 * then node), so a handoff adds as much independence as the layout allows.
 */

struct handoff_cand {
	double arrival;
	const struct ring_dev *dev;
};

static double handoff_arrival(const struct ring *r, uint32_t part, const struct ring_dev *d)
{
	uint8_t in[8];
	double u;

	ring_put_le32(in, part);
	ring_put_le32(in + 4, d->id);
	u = ((double)(ring_hash(r, in, sizeof(in)) >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
	return -log(u) / d->weight;
}

/* Whether two devices share their failure domain at level L: equal on every
 * level from the region down to L (at TIER_DEV: the same device). */
bool ring_dev_same_domain(const struct ring_dev *a, const struct ring_dev *b, int level)
{
	if (a->region != b->region)
		return false;
	if (level >= TIER_ZONE && a->zone != b->zone)
		return false;
	if (level >= TIER_NODE && strcmp(a->node, b->node))
		return false;
	if (level >= TIER_DEV && a->id != b->id)
		return false;
	return true;
}

unsigned ring_handoffs(const struct ring *r, uint32_t part,
		       const struct ring_dev **devs, unsigned n)
{
	const struct ring_dev *used[RING_MAX_PLACEMENTS * 2 + 64];
	struct handoff_cand *c;
	unsigned nc = 0, nused, got = 0;

	if (n == 0)
		return 0;
	part &= r->parts - 1;
	c = malloc(r->ndevs * sizeof(*c));
	if (!c)
		return 0;
	nused = ring_primaries(r, part, used, r->placements);
	for (unsigned i = 0; i < r->ndevs; i++) {
		const struct ring_dev *d = &r->devs[i];
		bool primary = false;

		if (d->weight <= 0)
			continue;		/* draining devices take no new data */
		for (unsigned j = 0; j < r->placements; j++)
			primary |= used[j] == d;
		if (!primary)
			c[nc++] = (struct handoff_cand){ handoff_arrival(r, part, d), d };
	}

	/* Each step takes the earliest arrival among devices sharing no
	 * region with anything chosen so far; failing that no zone, then no
	 * node; failing all, the earliest left. Callers want one or two
	 * handoffs, so selection beats sorting all devices. */
	while (got < n && nc > 0) {
		int pick = -1;

		for (int level = TIER_REGION; level <= TIER_DEV && pick < 0; level++) {
			for (unsigned i = 0; i < nc; i++) {
				bool fresh = true;

				if (pick >= 0 && c[i].arrival > c[pick].arrival)
					continue;
				if (pick >= 0 && c[i].arrival == c[pick].arrival &&
				    c[i].dev->id > c[pick].dev->id)
					continue;
				for (unsigned j = 0; j < nused && fresh; j++)
					fresh = !ring_dev_same_domain(c[i].dev, used[j], level);
				if (fresh)
					pick = (int)i;
			}
		}
		devs[got++] = c[pick].dev;
		if (nused < ARRAY_SIZE(used))
			used[nused++] = c[pick].dev;
		c[pick] = c[--nc];
	}
	free(c);
	return got;
}
