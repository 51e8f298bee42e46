/* ring/builder.c: the ring builder: devices, weights and rebalance.
 *
 * Rebalance in one paragraph. Devices form a tree of failure domains
 * (region > zone > node > device). Each device is entitled to a share of all
 * placements proportional to its weight (its target), and each domain may hold
 * at most maxper placements of any one partition: one, unless its weight share
 * needs more (a zone with half the weight and 3 replicas holds 2 of some
 * partitions) -- weights win over spreading, as with Swift's default
 * overload of 0, so no capacity is stranded. Rebalance then
 *   1. gathers placements that must move: unassigned ones, those on removed or
 *      zero-weight devices, those that break maxper, and the excess of every
 *      device above its target (sharing a zone with a sibling first);
 *   2. places each gathered placement by walking down the tree, at each level
 *      taking the child with room for this partition that is most below its
 *      target, preferring domains the partition uses least; ties are broken by
 *      a PRNG seeded from the builder's seed, so a rebalance is deterministic.
 * Only the excess moves, so movement is close to the ideal. A partition moves
 * at most one placement per rebalance and none within min_part_hours of its
 * last move, except placements on removed devices, which always move.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define REBALANCE_ROUNDS	4

int ring_builder_create(uint32_t part_power, const struct ring_policy *policy,
			uint32_t min_part_hours, uint64_t seed,
			const uint8_t *key, struct ring_builder **out)
{
	struct ring_builder *b;
	size_t nassign;

	if (part_power > RING_MAX_PART_POWER || ring_policy_check(policy) < 0)
		return RING_EINVALID;
	if (sodium_init() < 0)
		return -EIO;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->part_power = part_power;
	b->parts = 1u << part_power;
	b->policy = *policy;
	b->placements = ring_policy_placements(policy);
	b->min_part_hours = min_part_hours;
	b->seed = seed;
	if (key)
		memcpy(b->key, key, RING_KEY_LEN);
	else
		randombytes_buf(b->key, RING_KEY_LEN);
	nassign = (size_t)b->parts * b->placements;
	b->assign = malloc(nassign * sizeof(*b->assign));
	b->last_moved = calloc(b->parts, sizeof(*b->last_moved));
	if (!b->assign || !b->last_moved) {
		ring_builder_free(b);
		return -ENOMEM;
	}
	memset(b->assign, 0xff, nassign * sizeof(*b->assign));	/* RING_DEV_NONE */
	*out = b;
	return 0;
}

void ring_builder_free(struct ring_builder *b)
{
	if (!b)
		return;
	free(b->devs);
	free(b->removed);
	free(b->assign);
	free(b->last_moved);
	free(b);
}

/* devs[] is sorted by id: new ids are always the largest. */
int ring_builder_dev_index(const struct ring_builder *b, uint32_t id)
{
	unsigned lo = 0, hi = b->ndevs;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (b->devs[mid].id == id)
			return (int)mid;
		if (b->devs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return RING_ENODEV;
}

static int live_index(const struct ring_builder *b, uint32_t id)
{
	int i = ring_builder_dev_index(b, id);

	return i >= 0 && b->removed[i] ? RING_ENODEV : i;
}

int ring_builder_add(struct ring_builder *b, const struct ring_dev *dev, uint32_t *id)
{
	struct ring_dev d = *dev;

	d.id = 0;
	if (!ring_dev_check(&d))
		return RING_EINVALID;
	if (b->next_id >= RING_MAX_DEVICES)
		return -ENOSPC;
	for (unsigned i = 0; i < b->ndevs; i++)
		if (!b->removed[i] && !strcmp(b->devs[i].node, d.node) &&
		    !strcmp(b->devs[i].name, d.name))
			return RING_EEXIST;
	if (b->ndevs == b->cap) {
		unsigned cap = b->cap ? b->cap * 2 : 16;
		struct ring_dev *devs = realloc(b->devs, cap * sizeof(*devs));
		bool *removed;

		if (!devs)
			return -ENOMEM;
		b->devs = devs;
		removed = realloc(b->removed, cap * sizeof(*removed));
		if (!removed)
			return -ENOMEM;
		b->removed = removed;
		b->cap = cap;
	}
	d.id = b->next_id++;
	b->devs[b->ndevs] = d;
	b->removed[b->ndevs] = false;
	b->ndevs++;
	b->rebalanced = false;
	*id = d.id;
	return 0;
}

int ring_builder_remove(struct ring_builder *b, uint32_t id)
{
	int i = live_index(b, id);

	if (i < 0)
		return i;
	b->removed[i] = true;
	b->rebalanced = false;
	return 0;
}

int ring_builder_set_weight(struct ring_builder *b, uint32_t id, double weight)
{
	int i = live_index(b, id);

	if (i < 0)
		return i;
	if (!isfinite(weight) || weight < 0 || weight >= 1e12)
		return RING_EINVALID;
	b->devs[i].weight = weight;
	b->rebalanced = false;
	return 0;
}

int ring_builder_set_min_part_hours(struct ring_builder *b, uint32_t hours)
{
	b->min_part_hours = hours;
	return 0;
}

int ring_builder_set_overload(struct ring_builder *b, double overload)
{
	if (!isfinite(overload) || overload < 0 || overload > 10)
		return RING_EINVALID;
	b->overload = overload;
	b->rebalanced = false;
	return 0;
}

double ring_builder_overload(const struct ring_builder *b)
{
	return b->overload;
}

uint32_t ring_builder_part_power(const struct ring_builder *b)	{ return b->part_power; }
const struct ring_policy *ring_builder_policy(const struct ring_builder *b) { return &b->policy; }
uint32_t ring_builder_min_part_hours(const struct ring_builder *b) { return b->min_part_hours; }
uint64_t ring_builder_version(const struct ring_builder *b)	{ return b->version; }

unsigned ring_builder_dev_count(const struct ring_builder *b)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->ndevs; i++)
		n += !b->removed[i];
	return n;
}

const struct ring_dev *ring_builder_dev_at(const struct ring_builder *b, unsigned i)
{
	for (unsigned j = 0; j < b->ndevs; j++)
		if (!b->removed[j] && i-- == 0)
			return &b->devs[j];
	return NULL;
}

uint32_t ring_builder_assignment(const struct ring_builder *b, uint32_t part, unsigned i)
{
	uint16_t id;

	if (part >= b->parts || i >= b->placements)
		return UINT32_MAX;
	id = b->assign[(size_t)part * b->placements + i];
	return id == RING_DEV_NONE ? UINT32_MAX : id;
}

uint64_t ring_builder_dev_parts(const struct ring_builder *b, uint32_t id)
{
	size_t n = (size_t)b->parts * b->placements;
	uint64_t count = 0;

	for (size_t i = 0; i < n; i++)
		count += b->assign[i] == id;
	return count;
}

static double total_weight(const struct ring_builder *b)
{
	double w = 0;

	for (unsigned i = 0; i < b->ndevs; i++)
		if (!b->removed[i])
			w += b->devs[i].weight;
	return w;
}

double ring_builder_dev_wanted(const struct ring_builder *b, uint32_t id)
{
	int i = live_index(b, id);
	double w = total_weight(b);

	if (i < 0 || w <= 0)
		return 0;
	return (double)b->parts * b->placements * b->devs[i].weight / w;
}

/* -------------------------------------------------------- the tier plan */

struct tier {
	double weight;
	double share;		/* placements of each partition it should hold
				 * on average: its weight share, or moved toward
				 * an even spread within the overload allowance */
	double wanted;		/* exact share of all placements (devices) */
	int64_t target;		/* placements this domain should hold */
	int64_t assigned;	/* placements it holds now */
	unsigned maxper;	/* most placements of one partition it may hold */
	int first_child;	/* children are contiguous at the next level */
	int nchild;
};

struct plan {
	const struct ring_builder *b;
	struct tier *tiers[TIER_LEVELS];
	int ntiers[TIER_LEVELS];
	int *dev_tier[TIER_LEVELS];	/* builder dev index -> tier, -1 if removed */
	int *tier_dev;			/* device tier -> builder dev index */
	double weight;
	uint64_t rng;			/* splitmix64 state */
};

static uint64_t plan_rand(struct plan *pl)
{
	uint64_t z = (pl->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const struct ring_builder *sort_ctx;

static int cmp_dev_domain(const void *a, const void *b)
{
	const struct ring_dev *x = &sort_ctx->devs[*(const int *)a];
	const struct ring_dev *y = &sort_ctx->devs[*(const int *)b];
	int c;

	if (x->region != y->region)
		return x->region < y->region ? -1 : 1;
	if (x->zone != y->zone)
		return x->zone < y->zone ? -1 : 1;
	c = strcmp(x->node, y->node);
	if (c)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

static void plan_free(struct plan *pl)
{
	for (int l = 0; l < TIER_LEVELS; l++) {
		free(pl->tiers[l]);
		free(pl->dev_tier[l]);
	}
	free(pl->tier_dev);
}

/* Moves the shares of sibling domains toward an even spread, as far as the
 * overload allowance lets a domain exceed its weight share. A sibling whose
 * share is a fraction above an integer k >= 1 (say 1.04: 4% of partitions
 * would have two placements in it) drops to k if the others can take the
 * difference without crossing their own next integer or exceeding their
 * weight share by more than the overload. All or nothing: a partial move
 * would change no per-partition limit. */
static void spread_shares(struct tier *kids, int n, double overload)
{
	double excess = 0, room = 0;

	if (overload <= 0)
		return;
	for (int c = 0; c < n; c++) {
		double s = kids[c].share, up = ceil(s - 1e-9);

		if (s > 1 + 1e-9 && s - floor(s + 1e-9) > 1e-9)
			excess += s - floor(s + 1e-9);
		else if (s > 0)
			room += fmin(up - s, s * overload);
	}
	if (excess < 1e-9 || room < excess - 1e-9)
		return;
	for (int c = 0; c < n; c++) {
		double s = kids[c].share, up = ceil(s - 1e-9);

		if (s > 1 + 1e-9 && s - floor(s + 1e-9) > 1e-9)
			kids[c].share = floor(s + 1e-9);
		else if (s > 0)
			kids[c].share += fmin(up - s, s * overload) * excess / room;
	}
}

/* Shares top-down: regions split the placements by weight, each domain
 * splits its share among its children by weight, then spread_shares(). */
static void plan_shares(struct plan *pl, double overload)
{
	unsigned R = pl->b->placements;

	for (int t = 0; t < pl->ntiers[0]; t++)
		pl->tiers[0][t].share = pl->weight > 0 ? R * pl->tiers[0][t].weight / pl->weight : 0;
	spread_shares(pl->tiers[0], pl->ntiers[0], overload);
	for (int l = 0; l < TIER_DEV; l++) {
		for (int t = 0; t < pl->ntiers[l]; t++) {
			struct tier *tt = &pl->tiers[l][t];
			struct tier *kids = &pl->tiers[l + 1][tt->first_child];

			for (int c = 0; c < tt->nchild; c++)
				kids[c].share = tt->weight > 0 ? tt->share * kids[c].weight / tt->weight : 0;
			spread_shares(kids, tt->nchild, overload);
		}
	}
}

/* Integer targets summing exactly to parts * placements: floor of each
 * device's share, then the remainder to the largest fractions (lowest id on
 * ties), so the result doesn't depend on device order. */
static void plan_targets(struct plan *pl)
{
	const struct ring_builder *b = pl->b;
	struct tier *devt = pl->tiers[TIER_DEV];
	int n = pl->ntiers[TIER_DEV];
	int64_t total = (int64_t)b->parts * b->placements, sum = 0;
	double *frac = malloc(n * sizeof(*frac));

	for (int t = 0; t < n; t++) {
		double want = (double)b->parts * devt[t].share;

		devt[t].wanted = want;
		devt[t].target = (int64_t)floor(want);
		if (frac)
			frac[t] = want - floor(want);
		sum += devt[t].target;
	}
	while (sum < total && frac) {
		int best = -1;

		for (int t = 0; t < n; t++)
			if (devt[t].weight > 0 && (best < 0 || frac[t] > frac[best] ||
			    (frac[t] == frac[best] &&
			     b->devs[pl->tier_dev[t]].id < b->devs[pl->tier_dev[best]].id)))
				best = t;
		if (best < 0)
			break;
		devt[best].target++;
		frac[best] = -1;
		sum++;
	}
	free(frac);
}

static int plan_build(struct plan *pl, const struct ring_builder *b, uint64_t seed)
{
	int *order, n = 0;
	unsigned R = b->placements;

	memset(pl, 0, sizeof(*pl));
	pl->b = b;
	pl->rng = seed;
	order = malloc((b->ndevs + 1) * sizeof(*order));
	for (int l = 0; l < TIER_LEVELS; l++) {
		pl->tiers[l] = calloc(b->ndevs + 1, sizeof(struct tier));
		pl->dev_tier[l] = malloc((b->ndevs + 1) * sizeof(int));
	}
	pl->tier_dev = malloc((b->ndevs + 1) * sizeof(int));
	if (!order || !pl->tier_dev || !pl->tiers[TIER_DEV] || !pl->dev_tier[TIER_DEV] ||
	    !pl->tiers[0] || !pl->tiers[1] || !pl->tiers[2] || !pl->dev_tier[0] ||
	    !pl->dev_tier[1] || !pl->dev_tier[2]) {
		free(order);
		plan_free(pl);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < b->ndevs; i++) {
		for (int l = 0; l < TIER_LEVELS; l++)
			pl->dev_tier[l][i] = -1;
		if (!b->removed[i])
			order[n++] = (int)i;
	}
	sort_ctx = b;
	qsort(order, n, sizeof(*order), cmp_dev_domain);

	/* Devices sorted by domain: a new tier starts wherever the domain key
	 * changes, so every tier's children are contiguous. */
	for (int k = 0; k < n; k++) {
		const struct ring_dev *d = &b->devs[order[k]];
		const struct ring_dev *prev = k ? &b->devs[order[k - 1]] : NULL;

		for (int l = 0; l < TIER_LEVELS; l++) {
			int t;

			if (!prev || !ring_dev_same_domain(prev, d, l)) {
				t = pl->ntiers[l]++;
				if (l > 0) {
					struct tier *parent = &pl->tiers[l - 1][pl->ntiers[l - 1] - 1];

					if (parent->nchild++ == 0)
						parent->first_child = t;
				}
			}
			t = pl->ntiers[l] - 1;
			pl->dev_tier[l][order[k]] = t;
			pl->tiers[l][t].weight += d->weight;
		}
		pl->tier_dev[pl->ntiers[TIER_DEV] - 1] = order[k];
		pl->weight += d->weight;
	}
	free(order);
	plan_shares(pl, b->overload);
	plan_targets(pl);

	for (int l = TIER_LEVELS - 1; l >= 0; l--) {
		for (int t = 0; t < pl->ntiers[l]; t++) {
			struct tier *tt = &pl->tiers[l][t];

			tt->maxper = tt->weight > 0 ? (unsigned)fmax(1, ceil(tt->share - 1e-9)) : 0;
			if (tt->maxper > R)
				tt->maxper = R;
			if (l < TIER_DEV) {
				tt->target = 0;
				for (int c = 0; c < tt->nchild; c++)
					tt->target += pl->tiers[l + 1][tt->first_child + c].target;
			}
		}
	}
	/* What every domain holds now. */
	for (size_t i = 0; i < (size_t)b->parts * R; i++) {
		int di;

		if (b->assign[i] == RING_DEV_NONE)
			continue;
		di = ring_builder_dev_index(b, b->assign[i]);
		if (di < 0 || b->removed[di])
			continue;
		for (int l = 0; l < TIER_LEVELS; l++)
			pl->tiers[l][pl->dev_tier[l][di]].assigned++;
	}
	return 0;
}

static void plan_account(struct plan *pl, int di, int delta)
{
	if (di < 0 || pl->dev_tier[0][di] < 0)
		return;
	for (int l = 0; l < TIER_LEVELS; l++)
		pl->tiers[l][pl->dev_tier[l][di]].assigned += delta;
}

/* Builder dev index of each placement of part (-1 unassigned or removed). */
static void part_devs(const struct plan *pl, uint32_t part, int *pdev)
{
	const struct ring_builder *b = pl->b;
	const uint16_t *a = b->assign + (size_t)part * b->placements;

	for (unsigned j = 0; j < b->placements; j++) {
		int di = a[j] == RING_DEV_NONE ? -1 : ring_builder_dev_index(b, a[j]);

		pdev[j] = di >= 0 && pl->dev_tier[0][di] >= 0 ? di : -1;
	}
}

static unsigned count_in_tier(const struct plan *pl, const int *pdev, int level, int tier)
{
	unsigned n = 0;

	for (unsigned j = 0; j < pl->b->placements; j++)
		n += pdev[j] >= 0 && pl->dev_tier[level][pdev[j]] == tier;
	return n;
}

/* The placement j of a partition that sits in a domain holding more of the
 * partition than maxper allows, or -1. Prefers the most overloaded device. */
static int part_overfull(const struct plan *pl, const int *pdev)
{
	int worst = -1;
	int64_t worst_excess = INT64_MIN;

	for (unsigned j = 0; j < pl->b->placements; j++) {
		if (pdev[j] < 0)
			continue;
		for (int l = 0; l < TIER_LEVELS; l++) {
			int t = pl->dev_tier[l][pdev[j]];

			if (count_in_tier(pl, pdev, l, t) > pl->tiers[l][t].maxper) {
				const struct tier *dt = &pl->tiers[TIER_DEV][pl->dev_tier[TIER_DEV][pdev[j]]];
				int64_t excess = dt->assigned - dt->target;

				if (excess > worst_excess) {
					worst = (int)j;
					worst_excess = excess;
				}
				break;
			}
		}
	}
	return worst;
}

/* Picks a device for one more placement of a partition under tier `parent`
 * at `level` (parent -1 at the top). strict: only domains with room left
 * for this partition. Returns a builder dev index or -1. */
static int place_walk(struct plan *pl, const int *pdev, int level, int parent,
		      bool strict, bool *tried)
{
	int first = 0, n = pl->ntiers[0];

	if (level > 0) {
		first = pl->tiers[level - 1][parent].first_child;
		n = pl->tiers[level - 1][parent].nchild;
	}
	memset(tried + first, 0, n * sizeof(*tried));
	for (;;) {
		int best = -1, ties = 0, res;
		unsigned best_count = 0;
		bool best_room = false, best_needy = false;
		int64_t best_need = 0, best_target = 1;

		for (int c = first; c < first + n; c++) {
			const struct tier *t = &pl->tiers[level][c];
			unsigned count;
			bool room, needy;
			int64_t need = t->target - t->assigned;
			int cmp;

			if (tried[c] || t->maxper == 0)
				continue;
			count = count_in_tier(pl, pdev, level, c);
			room = count < t->maxper;
			if (strict && !room)
				continue;
			needy = need > 0;
			/* room, then below target, then least used by this
			 * partition, then most below target */
			if (best < 0)
				cmp = 1;
			else if (room != best_room)
				cmp = room ? 1 : -1;
			else if (needy != best_needy)
				cmp = needy ? 1 : -1;
			else if (count != best_count)
				cmp = count < best_count ? 1 : -1;
			else if (need * best_target != best_need * t->target)
				/* most below target relative to its size: every
				 * domain fills at the same pace, so none is left
				 * needy at the end with no partition able to use it */
				cmp = need * best_target > best_need * t->target ? 1 : -1;
			else
				cmp = 0;
			if (cmp == 0 && plan_rand(pl) % (uint64_t)++ties != 0)
				continue;	/* reservoir: each tie equally likely */
			if (cmp > 0)
				ties = 1;
			if (cmp >= 0) {
				best = c;
				best_count = count;
				best_room = room;
				best_needy = needy;
				best_need = need;
				best_target = t->target;
			}
		}
		if (best < 0)
			return -1;
		if (level == TIER_DEV)
			return pl->tier_dev[best];
		res = place_walk(pl, pdev, level + 1, best, strict, tried + pl->ntiers[level]);
		if (res >= 0)
			return res;
		tried[best] = true;	/* nothing with room below: next best */
	}
}

struct gathered {
	uint32_t part;
	uint16_t slot;
	uint16_t old_id;	/* RING_DEV_NONE if it was unassigned */
	int32_t hint;		/* device tier it was gathered for, or -1 */
};

struct rebalance {
	struct plan pl;
	struct ring_builder *b;
	uint64_t now;
	uint8_t *moved;		/* per part: a placement moved this rebalance */
	struct gathered *g;
	size_t ng, gcap;
	struct ring_rebalance_stats *st;
};

static bool part_locked(const struct rebalance *rb, uint32_t part)
{
	const struct ring_builder *b = rb->b;
	uint32_t last = b->last_moved[part];

	if (rb->moved[part])
		return true;
	return b->min_part_hours && last && rb->now < (uint64_t)last + b->min_part_hours;
}

static int gather_push(struct rebalance *rb, uint32_t part, unsigned slot,
		       uint16_t old_id, int hint)
{
	if (rb->ng == rb->gcap) {
		size_t cap = rb->gcap ? rb->gcap * 2 : 1024;
		struct gathered *g = realloc(rb->g, cap * sizeof(*g));

		if (!g)
			return -ENOMEM;
		rb->g = g;
		rb->gcap = cap;
	}
	rb->g[rb->ng++] = (struct gathered){ part, (uint16_t)slot, old_id, hint };
	return 0;
}

/* Takes placement slot of part off its device, to be placed again (on
 * device tier hint if it still fits there, when hint >= 0). */
static int gather(struct rebalance *rb, uint32_t part, unsigned slot, int hint)
{
	struct ring_builder *b = rb->b;
	uint16_t *a = &b->assign[(size_t)part * b->placements + slot];
	int ret;

	ret = gather_push(rb, part, slot, *a, hint);
	if (ret < 0)
		return ret;
	plan_account(&rb->pl, ring_builder_dev_index(b, *a), -1);
	*a = RING_DEV_NONE;
	rb->moved[part] = 1;
	return 0;
}

/* Step 1a: what must be placed whatever min_part_hours says: unassigned
 * placements (not a move: no data exists yet, so the part isn't locked) and
 * placements on removed or zero-weight devices. */
static int gather_forced(struct rebalance *rb)
{
	struct ring_builder *b = rb->b;

	for (uint32_t p = 0; p < b->parts; p++) {
		for (unsigned j = 0; j < b->placements; j++) {
			uint16_t id = b->assign[(size_t)p * b->placements + j];
			int di, ret;

			if (id == RING_DEV_NONE) {
				ret = gather_push(rb, p, j, RING_DEV_NONE, -1);
			} else {
				di = ring_builder_dev_index(b, id);
				if (di >= 0 && !b->removed[di] && b->devs[di].weight > 0)
					continue;
				ret = gather(rb, p, j, -1);
			}
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* Step 1b: partitions crowding a domain beyond what the layout requires. */
static int gather_dispersion(struct rebalance *rb)
{
	struct ring_builder *b = rb->b;
	int pdev[RING_MAX_PLACEMENTS];

	for (uint32_t p = 0; p < b->parts; p++) {
		int j;

		if (part_locked(rb, p))
			continue;
		part_devs(&rb->pl, p, pdev);
		j = part_overfull(&rb->pl, pdev);
		if (j >= 0) {
			int ret = gather(rb, p, (unsigned)j, -1);

			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/* Whether some zone below its target could take one more placement of the
 * partition: moving one of its placements there fixes two balances at once. */
static bool part_fits_needy_zone(const struct plan *pl, const int *pdev)
{
	for (int z = 0; z < pl->ntiers[TIER_ZONE]; z++) {
		const struct tier *t = &pl->tiers[TIER_ZONE][z];

		if (t->assigned < t->target &&
		    count_in_tier(pl, pdev, TIER_ZONE, z) < t->maxper)
			return true;
	}
	return false;
}

/* Likewise for a device below its target, with room at every level for one
 * more placement of the partition: returns that device tier, or -1.
 * needy[0..*nneedy) are device tiers with room[] placements still to fill;
 * a match reserves one of them, so later candidates look for the devices
 * still short. */
static int part_fits_needy(const struct plan *pl, const int *pdev,
			   int *needy, int64_t *room, int *nneedy)
{
	for (int i = 0; i < *nneedy; i++) {
		int di = pl->tier_dev[needy[i]], t;
		bool fits = true;

		for (int l = 0; l < TIER_LEVELS && fits; l++) {
			t = pl->dev_tier[l][di];
			fits = count_in_tier(pl, pdev, l, t) < pl->tiers[l][t].maxper;
		}
		if (!fits)
			continue;
		t = needy[i];
		if (--room[i] == 0) {
			(*nneedy)--;
			needy[i] = needy[*nneedy];
			room[i] = room[*nneedy];
		}
		return t;
	}
	return -1;
}

/* Step 1c: every device's placements above its target, preferring moves
 * that land where they help: first placements sharing a zone with a sibling
 * that an underfilled device has room for (the move also improves spread),
 * then those an underfilled device has room for, then an underfilled zone,
 * then any. A placement no underfilled device can take only bounces to
 * another full device and has to move again. */
static int gather_overload(struct rebalance *rb, bool first_round)
{
	struct ring_builder *b = rb->b;
	struct plan *pl = &rb->pl;
	size_t n = (size_t)b->parts * b->placements;
	int ndt = pl->ntiers[TIER_DEV];
	size_t *start = calloc(ndt + 1, sizeof(*start));
	uint32_t *list = NULL;
	int64_t *excess = calloc(ndt, sizeof(*excess));
	int *needy = malloc((ndt + 1) * sizeof(*needy));
	int64_t *room = malloc((ndt + 1) * sizeof(*room));
	int nneedy = 0, ret = 0;

	if (!start || !excess || !needy || !room) {
		ret = -ENOMEM;
		goto out;
	}
	/* The first round takes each device down to its integer target. Later
	 * rounds correct what placing left behind, moving a placement to a
	 * device only when it is at least two below its target (one is
	 * rounding, not worth moving data for). */
	for (int t = 0; t < ndt; t++) {
		const struct tier *dt = &pl->tiers[TIER_DEV][t];
		int64_t deficit = dt->target - dt->assigned - (first_round ? 0 : 1);

		excess[t] = dt->assigned - dt->target;
		if (deficit > 0) {
			room[nneedy] = deficit;
			needy[nneedy++] = t;
		}
	}
	/* Bucket every placement index by device tier (counting sort). */
	for (size_t i = 0; i < n; i++) {
		int di = b->assign[i] == RING_DEV_NONE ? -1 : ring_builder_dev_index(b, b->assign[i]);

		if (di >= 0 && pl->dev_tier[TIER_DEV][di] >= 0)
			start[pl->dev_tier[TIER_DEV][di] + 1]++;
	}
	for (int t = 0; t < ndt; t++)
		start[t + 1] += start[t];
	list = malloc((start[ndt] + 1) * sizeof(*list));
	if (!list) {
		ret = -ENOMEM;
		goto out;
	}
	{
		size_t *fill = calloc(ndt, sizeof(*fill));

		if (!fill) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			int di = b->assign[i] == RING_DEV_NONE ? -1 : ring_builder_dev_index(b, b->assign[i]);
			int t;

			if (di < 0 || (t = pl->dev_tier[TIER_DEV][di]) < 0)
				continue;
			list[start[t] + fill[t]++] = (uint32_t)i;
		}
		free(fill);
	}
	for (int t = 0; t < ndt; t++) {
		uint32_t *l = list + start[t];
		size_t ln = start[t + 1] - start[t];
		int zone = -1;

		if (excess[t] <= 0)
			continue;
		for (size_t i = ln; i > 1; i--) {	/* seeded Fisher-Yates */
			size_t k = plan_rand(pl) % i;
			uint32_t tmp = l[i - 1];

			l[i - 1] = l[k];
			l[k] = tmp;
		}
		zone = pl->dev_tier[TIER_ZONE][pl->tier_dev[t]];
		for (int pass = 0; pass < 4 && excess[t] > 0; pass++) {
			/* Moves that need no hint (passes 1 and 3) may land on a
			 * full device; in later rounds they only correct devices
			 * above their share rounded up. */
			int64_t keep = first_round || pass == 0 || pass == 2 ? 0 :
				       (int64_t)ceil(pl->tiers[TIER_DEV][t].wanted - 1e-9) -
				       pl->tiers[TIER_DEV][t].target;

			for (size_t i = 0; i < ln && excess[t] > keep; i++) {
				uint32_t part = l[i] / b->placements;
				unsigned slot = l[i] % b->placements;
				int pdev[RING_MAX_PLACEMENTS], hint;

				if (b->assign[l[i]] == RING_DEV_NONE || part_locked(rb, part))
					continue;
				hint = -1;
				if (pass < 3) {
					/* as the partition would be without this placement */
					part_devs(pl, part, pdev);
					pdev[slot] = -1;
					if (pass == 0 && count_in_tier(pl, pdev, TIER_ZONE, zone) < 1)
						continue;
					if (pass == 1 && !part_fits_needy_zone(pl, pdev))
						continue;
					if (pass != 1) {
						hint = part_fits_needy(pl, pdev, needy, room, &nneedy);
						if (hint < 0)
							continue;
					}
				}
				ret = gather(rb, part, slot, hint);
				if (ret < 0)
					goto out;
				excess[t]--;
			}
		}
		rb->st->locked += (uint64_t)excess[t];
	}
out:
	free(room);
	free(needy);
	free(list);
	free(excess);
	free(start);
	return ret;
}

/* Whether device tier hint (>= 0) is still below target with room at every
 * level for one more placement of the partition. */
static bool hint_fits(const struct plan *pl, const int *pdev, int hint)
{
	int di;

	if (hint < 0)
		return false;
	di = pl->tier_dev[hint];
	if (pl->tiers[TIER_DEV][hint].assigned >= pl->tiers[TIER_DEV][hint].target)
		return false;
	for (int l = 0; l < TIER_LEVELS; l++) {
		int t = pl->dev_tier[l][di];

		if (count_in_tier(pl, pdev, l, t) >= pl->tiers[l][t].maxper)
			return false;
	}
	return true;
}

/* Partitions missing the most placements are placed first: they are the
 * least redundant, and get the widest choice. */
static int cmp_missing_desc(const void *a, const void *b, void *arg)
{
	const uint8_t *missing = arg;
	const struct gathered *x = a, *y = b;

	if (missing[x->part] != missing[y->part])
		return missing[x->part] > missing[y->part] ? -1 : 1;
	if (x->part != y->part)
		return x->part < y->part ? -1 : 1;
	return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int place_gathered(struct rebalance *rb)
{
	struct ring_builder *b = rb->b;
	struct plan *pl = &rb->pl;
	uint8_t *missing = calloc(b->parts, 1);
	bool *tried;
	int total_tiers = 0;

	for (int l = 0; l < TIER_LEVELS; l++)
		total_tiers += pl->ntiers[l];
	tried = calloc(total_tiers + 1, sizeof(*tried));
	if (!missing || !tried) {
		free(missing);
		free(tried);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rb->ng; i++)
		missing[rb->g[i].part]++;
	qsort_r(rb->g, rb->ng, sizeof(*rb->g), cmp_missing_desc, missing);

	for (size_t i = 0; i < rb->ng; i++) {
		struct gathered *g = &rb->g[i];
		int pdev[RING_MAX_PLACEMENTS], di;
		uint16_t id;

		part_devs(pl, g->part, pdev);
		di = hint_fits(pl, pdev, g->hint) ? pl->tier_dev[g->hint] :
		     place_walk(pl, pdev, 0, -1, true, tried);
		if (di < 0)	/* the layout can't spread it: best effort */
			di = place_walk(pl, pdev, 0, -1, false, tried);
		if (di < 0) {
			free(missing);
			free(tried);
			return RING_ENOCAPACITY;
		}
		id = (uint16_t)b->devs[di].id;
		b->assign[(size_t)g->part * b->placements + g->slot] = id;
		plan_account(pl, di, +1);
		if (g->old_id != RING_DEV_NONE && g->old_id != id) {
			rb->st->moved++;
			b->last_moved[g->part] = (uint32_t)rb->now;
		}
	}
	rb->ng = 0;
	free(missing);
	free(tried);
	return 0;
}

static void drop_removed(struct ring_builder *b)
{
	unsigned n = 0;

	for (unsigned i = 0; i < b->ndevs; i++) {
		if (b->removed[i])
			continue;
		b->devs[n] = b->devs[i];
		b->removed[n] = false;
		n++;
	}
	b->ndevs = n;
}

int ring_builder_rebalance(struct ring_builder *b, uint64_t now_hours,
			   struct ring_rebalance_stats *stats)
{
	struct ring_rebalance_stats st = { 0 };
	struct rebalance rb = { .b = b, .now = now_hours, .st = &st };
	int ret;

	if (total_weight(b) <= 0)
		return RING_ENOCAPACITY;
	if (now_hours == 0 || now_hours > UINT32_MAX)
		return RING_EINVALID;		/* 0 means "never moved" */
	ret = plan_build(&rb.pl, b, b->seed ^ (b->version * 0x9e3779b97f4a7c15ull));
	if (ret < 0)
		return ret;
	rb.moved = calloc(b->parts, 1);
	if (!rb.moved) {
		ret = -ENOMEM;
		goto out;
	}
	ret = gather_forced(&rb);
	if (ret < 0)
		goto out;
	/* Each round gathers only partitions no earlier round moved, so a few
	 * rounds converge; the first does nearly all the work. */
	for (int round = 0; round < REBALANCE_ROUNDS; round++) {
		st.locked = 0;
		ret = gather_dispersion(&rb);
		if (ret == 0)
			ret = gather_overload(&rb, round == 0);
		if (ret < 0)
			goto out;
		if (rb.ng == 0)
			break;
		ret = place_gathered(&rb);
		if (ret < 0)
			goto out;
	}
	drop_removed(b);
	b->version++;
	b->rebalanced = true;
	if (stats) {
		uint64_t moved = st.moved, locked = st.locked;

		ring_builder_report(b, stats);
		stats->moved = moved;
		stats->locked = locked;
	}
out:
	free(rb.moved);
	free(rb.g);
	plan_free(&rb.pl);
	return ret;
}

void ring_builder_report(const struct ring_builder *b, struct ring_rebalance_stats *stats)
{
	struct plan pl;
	int pdev[RING_MAX_PLACEMENTS];

	memset(stats, 0, sizeof(*stats));
	stats->placements = (uint64_t)b->parts * b->placements;
	if (plan_build(&pl, b, 0) < 0)
		return;
	for (int t = 0; t < pl.ntiers[TIER_DEV]; t++) {
		const struct tier *dt = &pl.tiers[TIER_DEV][t];
		double want = dt->wanted;
		double dev;

		if (want <= 0)
			dev = dt->assigned ? 100.0 : 0;
		else
			dev = fabs((double)dt->assigned / want - 1) * 100;
		if (dev > stats->balance)
			stats->balance = dev;
	}
	for (uint32_t p = 0; p < b->parts; p++) {
		bool zone2 = false, node2 = false;

		part_devs(&pl, p, pdev);
		if (part_overfull(&pl, pdev) >= 0)
			stats->dispersion++;
		for (unsigned j = 0; j < b->placements; j++) {
			if (pdev[j] < 0)
				continue;
			zone2 |= count_in_tier(&pl, pdev, TIER_ZONE, pl.dev_tier[TIER_ZONE][pdev[j]]) > 1;
			node2 |= count_in_tier(&pl, pdev, TIER_NODE, pl.dev_tier[TIER_NODE][pdev[j]]) > 1;
		}
		stats->parts_sharing_zone += zone2;
		stats->parts_sharing_node += node2;
	}
	plan_free(&pl);
}
