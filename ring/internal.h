/* ring/internal.h: shared between the ring's own files; not for other folders. */
#ifndef STRATA_RING_INTERNAL_H
#define STRATA_RING_INTERNAL_H

#include "ring.h"

#include <stdatomic.h>

#define RING_DEV_NONE		0xffffu		/* unassigned placement */
#define RING_MAX_FILE		(1u << 30)	/* no valid file is larger */

/* Failure-domain levels, outermost first. */
enum { TIER_REGION, TIER_ZONE, TIER_NODE, TIER_DEV, TIER_LEVELS };

struct ring {
	atomic_uint refs;			/* ring_get/ring_put; 1 from ring_load */
	struct ring *successor;			/* kept alive by this one (a reference) */
	uint32_t part_power;
	uint32_t parts;
	unsigned placements;
	struct ring_policy policy;
	uint64_t version;
	uint8_t key[RING_KEY_LEN];
	struct ring_dev *devs;			/* ndevs, sorted by id */
	unsigned ndevs;
	const struct ring_dev **by_id;		/* max_id + 1 entries, NULL = none */
	uint32_t max_id;
	uint16_t *assign;			/* parts * placements, partition-major */
};

struct ring_builder {
	uint32_t part_power;
	uint32_t parts;
	unsigned placements;
	struct ring_policy policy;
	uint32_t min_part_hours;
	double overload;			/* see ring_builder_set_overload() */
	uint64_t seed;
	uint64_t version;
	uint8_t key[RING_KEY_LEN];
	struct ring_dev *devs;			/* ndevs live + removed, sorted by id */
	bool *removed;				/* parallel to devs */
	unsigned ndevs, cap;
	uint32_t next_id;
	uint16_t *assign;			/* parts * placements, RING_DEV_NONE = unassigned */
	uint32_t *last_moved;			/* per part: hours since epoch, 0 = never */
	bool rebalanced;
};

/* file.c: the envelope and protobuf (de)serialization. */
enum ring_file_kind { RING_KIND_RING = 1, RING_KIND_BUILDER = 2 };
int ring_file_open(const void *buf, size_t len, enum ring_file_kind kind,
		   const uint8_t **payload, size_t *payload_len);
int ring_file_seal(enum ring_file_kind kind, const void *payload, size_t len,
		   uint8_t **out, size_t *out_len);
int ring_policy_check(const struct ring_policy *p);
bool ring_dev_check(const struct ring_dev *d);

/* ring.c */
bool ring_dev_same_domain(const struct ring_dev *a, const struct ring_dev *b, int level);

/* builder.c */
int ring_builder_dev_index(const struct ring_builder *b, uint32_t id);

/* Little-endian helpers: the file formats are LE whatever the host is. */
static inline uint16_t ring_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t ring_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void ring_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void ring_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

#endif
