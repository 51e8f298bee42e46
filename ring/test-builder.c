/* Unit tests for the ring builder and loaded rings (cmocka). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

#include "ring.h"

#define HOUR0	500000u		/* an arbitrary "now" in hours */

static const uint8_t test_key[RING_KEY_LEN] = "0123456789abcdef";

static struct ring_builder *new_builder(uint32_t pp, unsigned replicas, unsigned k,
					unsigned m, uint32_t mph, uint64_t seed)
{
	struct ring_policy pol = { 0 };
	struct ring_builder *b = NULL;

	if (k) {
		pol.type = RING_POLICY_EC;
		pol.ec_k = k;
		pol.ec_m = m;
	} else {
		pol.type = RING_POLICY_REPLICA;
		pol.replicas = replicas;
	}
	assert_int_equal(ring_builder_create(pp, &pol, mph, seed, test_key, &b), 0);
	return b;
}

static uint32_t add_dev(struct ring_builder *b, uint32_t region, uint32_t zone,
			unsigned node, unsigned dev, double weight)
{
	struct ring_dev d = { .region = region, .zone = zone, .weight = weight };
	uint32_t id;

	snprintf(d.node, sizeof(d.node), "10.%u.%u.%u:6200", region, zone, node);
	snprintf(d.name, sizeof(d.name), "d%u", dev);
	assert_int_equal(ring_builder_add(b, &d, &id), 0);
	return id;
}

/* zones x nodes x devs, all in region 1, weight 100. */
static void add_layout(struct ring_builder *b, unsigned zones, unsigned nodes, unsigned devs)
{
	for (unsigned z = 1; z <= zones; z++)
		for (unsigned n = 0; n < nodes; n++)
			for (unsigned d = 0; d < devs; d++)
				add_dev(b, 1, z, n, d, 100);
}

static const struct ring_dev *dev_of(const struct ring_builder *b, uint32_t id)
{
	for (unsigned i = 0; i < ring_builder_dev_count(b); i++)
		if (ring_builder_dev_at(b, i)->id == id)
			return ring_builder_dev_at(b, i);
	return NULL;
}

static uint32_t *snapshot(const struct ring_builder *b)
{
	uint32_t parts = 1u << ring_builder_part_power(b);
	unsigned R = ring_policy_placements(ring_builder_policy(b));
	uint32_t *s = malloc(sizeof(*s) * parts * R);

	for (uint32_t p = 0; p < parts; p++)
		for (unsigned j = 0; j < R; j++)
			s[p * R + j] = ring_builder_assignment(b, p, j);
	return s;
}

static uint64_t count_moved(const struct ring_builder *b, const uint32_t *before)
{
	uint32_t parts = 1u << ring_builder_part_power(b);
	unsigned R = ring_policy_placements(ring_builder_policy(b));
	uint64_t moved = 0;

	for (uint32_t p = 0; p < parts; p++)
		for (unsigned j = 0; j < R; j++)
			moved += before[p * R + j] != ring_builder_assignment(b, p, j);
	return moved;
}

/* Every device within pct of its weighted share. */
static void assert_balanced(const struct ring_builder *b, double pct)
{
	for (unsigned i = 0; i < ring_builder_dev_count(b); i++) {
		const struct ring_dev *d = ring_builder_dev_at(b, i);
		double want = ring_builder_dev_wanted(b, d->id);
		double have = (double)ring_builder_dev_parts(b, d->id);

		if (fabs(have - want) > want * pct / 100) {
			fprintf(stderr, "device %u holds %.0f, wants %.1f\n", d->id, have, want);
			fail();
		}
	}
}

/* Each partition's placements are in distinct zones. */
static void assert_distinct_zones(const struct ring_builder *b)
{
	uint32_t parts = 1u << ring_builder_part_power(b);
	unsigned R = ring_policy_placements(ring_builder_policy(b));

	for (uint32_t p = 0; p < parts; p++) {
		uint32_t zones[RING_MAX_PLACEMENTS];

		for (unsigned j = 0; j < R; j++) {
			uint32_t id = ring_builder_assignment(b, p, j);

			assert_int_not_equal(id, UINT32_MAX);
			zones[j] = dev_of(b, id)->zone;
			for (unsigned k = 0; k < j; k++)
				assert_int_not_equal(zones[k], zones[j]);
		}
	}
}

static void test_replicas_three_zones(void **state)
{
	struct ring_builder *b = new_builder(14, 3, 0, 0, 1, 42);
	struct ring_rebalance_stats st;

	add_layout(b, 3, 4, 2);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	assert_distinct_zones(b);
	assert_balanced(b, 1.0);
	assert_int_equal(st.dispersion, 0);
	assert_int_equal(st.parts_sharing_zone, 0);
	assert_true(st.balance < 1.0);
	assert_int_equal(st.placements, 3u << 14);
	ring_builder_free(b);
}

static void test_add_node_moves_near_ideal(void **state)
{
	struct ring_builder *b = new_builder(14, 3, 0, 0, 1, 7);
	struct ring_rebalance_stats st;
	uint32_t *before;
	double ideal;

	add_layout(b, 3, 4, 2);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	before = snapshot(b);
	/* node 13, in zone 1 */
	add_dev(b, 1, 1, 4, 0, 100);
	add_dev(b, 1, 1, 4, 1, 100);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 2, &st), 0);
	ideal = (double)(3u << 14) / 13;
	fprintf(stderr, "add node: moved %lu, ideal %.0f (%.2fx), balance %.2f%%\n",
		(unsigned long)st.moved, ideal, st.moved / ideal, st.balance);
	assert_int_equal(count_moved(b, before), st.moved);
	assert_true(st.moved >= ideal * 0.99);
	assert_true(st.moved <= ideal * 1.10);
	assert_balanced(b, 1.0);
	free(before);
	ring_builder_free(b);
}

static void test_remove_device_moves_only_its_parts(void **state)
{
	struct ring_builder *b = new_builder(14, 3, 0, 0, 1, 9);
	struct ring_rebalance_stats st;
	uint32_t *before, victim;
	uint64_t held;
	uint32_t parts = 1u << 14;

	add_layout(b, 3, 4, 2);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	before = snapshot(b);
	victim = ring_builder_dev_at(b, 5)->id;
	held = ring_builder_dev_parts(b, victim);
	assert_int_equal(ring_builder_remove(b, victim), 0);
	/* Same hour: min_part_hours must not keep data on a removed device. */
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	assert_int_equal(st.moved, held);
	for (uint32_t p = 0; p < parts; p++)
		for (unsigned j = 0; j < 3; j++) {
			uint32_t now = ring_builder_assignment(b, p, j);

			assert_int_not_equal(now, victim);
			if (now != before[p * 3 + j])
				assert_int_equal(before[p * 3 + j], victim);
		}
	assert_int_equal(ring_builder_dev_count(b), 23);
	/* Zone 1 now has 7/23 of the weight, less than a third: weights win
	 * (no capacity stranded), so the partitions zone 1 can't hold have two
	 * placements in another zone -- exactly those and no more. */
	{
		uint64_t zone1 = 0;

		for (unsigned i = 0; i < ring_builder_dev_count(b); i++)
			if (ring_builder_dev_at(b, i)->zone == 1)
				zone1 += ring_builder_dev_parts(b, ring_builder_dev_at(b, i)->id);
		assert_int_equal(st.dispersion, 0);
		assert_int_equal(st.parts_sharing_zone, parts - zone1);
		assert_int_equal(st.parts_sharing_node, 0);
	}
	assert_balanced(b, 1.0);
	free(before);
	ring_builder_free(b);
}

/* With an overload allowance, a zone slightly under a third of the weight
 * takes a bit more than its share, and no partition doubles up in a zone. */
static void test_overload_keeps_zones_distinct(void **state)
{
	struct ring_builder *b = new_builder(14, 3, 0, 0, 1, 9);
	struct ring_rebalance_stats st;
	uint32_t parts = 1u << 14;

	add_layout(b, 3, 4, 2);
	assert_int_equal(ring_builder_set_overload(b, 0.10), 0);
	assert_int_equal(ring_builder_set_overload(b, -1), RING_EINVALID);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	assert_int_equal(ring_builder_remove(b, ring_builder_dev_at(b, 5)->id), 0);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 2, &st), 0);
	assert_int_equal(st.parts_sharing_zone, 0);
	assert_int_equal(st.dispersion, 0);
	assert_true(st.balance < 1.0);		/* against the overloaded targets */
	assert_distinct_zones(b);
	/* Zone 1's 7 devices carry a third: 9.5% over their weight share. */
	for (unsigned i = 0; i < ring_builder_dev_count(b); i++) {
		const struct ring_dev *d = ring_builder_dev_at(b, i);
		double ratio = ring_builder_dev_parts(b, d->id) / ring_builder_dev_wanted(b, d->id);

		if (d->zone == 1)
			assert_true(ratio > 1.08 && ratio < 1.10);
		else
			assert_true(ratio > 0.95 && ratio < 0.97);
	}
	/* An allowance too small for the spread changes nothing: weights win. */
	assert_int_equal(ring_builder_set_overload(b, 0.05), 0);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 4, &st), 0);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 6, &st), 0);
	assert_true(st.parts_sharing_zone > 0);
	assert_true(st.parts_sharing_zone < parts);
	assert_balanced(b, 1.0);
	ring_builder_free(b);
}

static void test_ec42_six_zones(void **state)
{
	struct ring_builder *b = new_builder(12, 0, 4, 2, 1, 1);
	struct ring_rebalance_stats st;

	add_layout(b, 6, 2, 2);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	assert_distinct_zones(b);
	assert_balanced(b, 1.0);
	assert_int_equal(st.dispersion, 0);
	ring_builder_free(b);
}

/* Fewer zones than placements: per-partition zone counts differ by at most
 * one, nodes never hold two when they needn't, and balance holds. */
static void check_even_spread(unsigned zones, unsigned nodes, unsigned replicas,
			      unsigned k, unsigned m)
{
	struct ring_builder *b = new_builder(12, replicas, k, m, 1, 3);
	struct ring_rebalance_stats st;
	unsigned R = k ? k + m : replicas;
	uint32_t parts = 1u << 12;

	add_layout(b, zones, nodes, 1);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	assert_balanced(b, 1.0);
	assert_int_equal(st.dispersion, 0);
	for (uint32_t p = 0; p < parts; p++) {
		unsigned count[16] = { 0 }, lo = ~0u, hi = 0;

		for (unsigned j = 0; j < R; j++)
			count[dev_of(b, ring_builder_assignment(b, p, j))->zone]++;
		for (unsigned z = 1; z <= zones; z++) {
			lo = count[z] < lo ? count[z] : lo;
			hi = count[z] > hi ? count[z] : hi;
		}
		assert_true(hi - lo <= 1);
	}
	if (zones * nodes >= R)
		assert_int_equal(st.parts_sharing_node, 0);
	ring_builder_free(b);
}

static void test_fewer_zones_than_placements(void **state)
{
	check_even_spread(4, 2, 0, 4, 2);	/* EC 4+2 over 4 zones: 2,2,1,1 */
	check_even_spread(2, 3, 3, 0, 0);	/* 3 replicas over 2 zones: 2,1 */
	check_even_spread(1, 4, 3, 0, 0);	/* one zone: distinct nodes */
}

static void test_same_seed_same_ring(void **state)
{
	struct ring_builder *a = new_builder(12, 3, 0, 0, 1, 99);
	struct ring_builder *b = new_builder(12, 3, 0, 0, 1, 99);
	struct ring_builder *c = new_builder(12, 3, 0, 0, 1, 100);
	uint8_t *ra, *rb, *rc;
	size_t la, lb, lc;
	uint32_t *sa, *sb, *sc;

	add_layout(a, 3, 3, 2);
	add_layout(b, 3, 3, 2);
	add_layout(c, 3, 3, 2);
	assert_int_equal(ring_builder_rebalance(a, HOUR0, NULL), 0);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	assert_int_equal(ring_builder_rebalance(c, HOUR0, NULL), 0);
	sa = snapshot(a);
	sb = snapshot(b);
	sc = snapshot(c);
	assert_memory_equal(sa, sb, sizeof(*sa) * 3 * 4096);
	assert_memory_not_equal(sa, sc, sizeof(*sa) * 3 * 4096);
	assert_int_equal(ring_builder_ring_buf(a, &ra, &la), 0);
	assert_int_equal(ring_builder_ring_buf(b, &rb, &lb), 0);
	assert_int_equal(ring_builder_ring_buf(c, &rc, &lc), 0);
	assert_int_equal(la, lb);
	free(ra);
	free(rb);
	free(rc);
	free(sa);
	free(sb);
	free(sc);
	ring_builder_free(a);
	ring_builder_free(b);
	ring_builder_free(c);
}

static void test_min_part_hours(void **state)
{
	struct ring_builder *b = new_builder(12, 3, 0, 0, 24, 5);
	struct ring_rebalance_stats st;
	uint32_t *s0, *s1, parts = 1u << 12;
	uint64_t moved_again = 0;

	add_layout(b, 3, 3, 1);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	s0 = snapshot(b);
	add_dev(b, 1, 1, 7, 0, 100);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	assert_true(st.moved > 0);
	s1 = snapshot(b);
	/* Each partition moved at most one placement. */
	for (uint32_t p = 0; p < parts; p++) {
		unsigned changed = 0;

		for (unsigned j = 0; j < 3; j++)
			changed += s0[p * 3 + j] != s1[p * 3 + j];
		assert_true(changed <= 1);
	}
	/* Another change 23 hours later: nothing that moved may move again. */
	add_dev(b, 1, 2, 7, 0, 100);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 23, &st), 0);
	assert_true(st.locked > 0);
	for (uint32_t p = 0; p < parts; p++) {
		bool moved_before = false, moved_now = false;

		for (unsigned j = 0; j < 3; j++) {
			moved_before |= s0[p * 3 + j] != s1[p * 3 + j];
			moved_now |= s1[p * 3 + j] != ring_builder_assignment(b, p, j);
		}
		moved_again += moved_before && moved_now;
	}
	assert_int_equal(moved_again, 0);
	/* After min_part_hours everything may move and balance is reached. */
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 48, &st), 0);
	assert_balanced(b, 1.0);
	free(s0);
	free(s1);
	ring_builder_free(b);
}

static void test_weights_and_drain(void **state)
{
	struct ring_builder *b = new_builder(14, 3, 0, 0, 0, 11);
	struct ring_rebalance_stats st;
	uint32_t ids[12];

	/* 4 zones, devices of 100..400 */
	for (unsigned i = 0; i < 12; i++)
		ids[i] = add_dev(b, 1, 1 + i % 4, i, 0, 100.0 * (1 + i % 4 + (i / 4) % 2));
	assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
	assert_balanced(b, 1.0);
	assert_int_equal(st.dispersion, 0);
	assert_int_equal(ring_builder_set_weight(b, ids[3], 0), 0);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 1, &st), 0);
	assert_int_equal(ring_builder_dev_parts(b, ids[3]), 0);
	assert_balanced(b, 1.0);
	assert_int_equal(ring_builder_set_weight(b, ids[0], -1), RING_EINVALID);
	assert_int_equal(ring_builder_set_weight(b, ids[0], NAN), RING_EINVALID);
	assert_int_equal(ring_builder_set_weight(b, 999, 1), RING_ENODEV);
	assert_int_equal(ring_builder_remove(b, 999), RING_ENODEV);
	ring_builder_free(b);
}

static void test_builder_errors(void **state)
{
	struct ring_builder *b = new_builder(4, 3, 0, 0, 1, 1);
	struct ring_policy bad = { .type = RING_POLICY_REPLICA, .replicas = 0 };
	struct ring_builder *nb = NULL;
	struct ring_dev d = { .region = 1, .zone = 1, .weight = 1 };
	uint32_t id;

	assert_int_equal(ring_builder_create(4, &bad, 1, 1, NULL, &nb), RING_EINVALID);
	bad.replicas = RING_MAX_PLACEMENTS + 1;
	assert_int_equal(ring_builder_create(4, &bad, 1, 1, NULL, &nb), RING_EINVALID);
	bad = (struct ring_policy){ .type = RING_POLICY_EC, .ec_k = 0, .ec_m = 2 };
	assert_int_equal(ring_builder_create(4, &bad, 1, 1, NULL, &nb), RING_EINVALID);
	assert_int_equal(ring_builder_create(RING_MAX_PART_POWER + 1,
					     ring_builder_policy(b), 1, 1, NULL, &nb), RING_EINVALID);
	/* nothing to place on */
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), RING_ENOCAPACITY);
	strcpy(d.node, "10.0.0.1:6200");
	strcpy(d.name, "bad name");
	assert_int_equal(ring_builder_add(b, &d, &id), RING_EINVALID);
	strcpy(d.name, "d0");
	assert_int_equal(ring_builder_add(b, &d, &id), 0);
	assert_int_equal(ring_builder_add(b, &d, &id), RING_EEXIST);
	d.weight = INFINITY;
	strcpy(d.name, "d1");
	assert_int_equal(ring_builder_add(b, &d, &id), RING_EINVALID);
	/* a ring needs a rebalance first */
	{
		uint8_t *buf;
		size_t len;

		assert_int_equal(ring_builder_ring_buf(b, &buf, &len), RING_EINVALID);
	}
	/* One device, 3 replicas: all on it, flagged as forced sharing. */
	{
		struct ring_rebalance_stats st;

		assert_int_equal(ring_builder_rebalance(b, HOUR0, &st), 0);
		assert_int_equal(st.dispersion, 0);
		assert_int_equal(st.parts_sharing_node, 16);
	}
	ring_builder_free(b);
}

static void test_builder_save_load(void **state)
{
	struct ring_builder *b = new_builder(10, 0, 4, 2, 3, 77), *b2;
	char path[] = "/tmp/strata-ring-test-XXXXXX";
	int fd = mkstemp(path);
	uint32_t *s1, *s2;

	assert_true(fd >= 0);
	close(fd);
	add_layout(b, 6, 1, 2);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	ring_builder_remove(b, 3);
	assert_int_equal(ring_builder_set_overload(b, 0.25), 0);
	assert_int_equal(ring_builder_save(b, path), 0);
	assert_int_equal(ring_builder_load(path, &b2), 0);
	assert_int_equal(ring_builder_dev_count(b2), 11);
	assert_int_equal(ring_builder_min_part_hours(b2), 3);
	assert_true(ring_builder_overload(b2) == 0.25);
	assert_int_equal(ring_builder_version(b2), ring_builder_version(b));
	/* Both continue identically. */
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 5, NULL), 0);
	assert_int_equal(ring_builder_rebalance(b2, HOUR0 + 5, NULL), 0);
	s1 = snapshot(b);
	s2 = snapshot(b2);
	assert_memory_equal(s1, s2, sizeof(*s1) * 6 * 1024);
	/* A ring file is not a builder. */
	assert_int_equal(ring_builder_write_ring(b, path), 0);
	assert_int_equal(ring_builder_load(path, &b2 /* untouched on error */), RING_EKIND);
	free(s1);
	free(s2);
	ring_builder_free(b);
	ring_builder_free(b2);
	unlink(path);
}

/* Property test: random layouts and random operations; after every
 * rebalance every placement is on a live device and movement stays close to
 * the least that could reach the new targets (what overfull devices had to
 * shed); after a few more rebalances no partition crowds a domain beyond
 * what the layout requires and devices are within 2% of their share. */
static void test_random_operations(void **state)
{
	uint64_t rng = 12345;

	for (int scenario = 0; scenario < 40; scenario++) {
		unsigned R = 2 + scenario % 5;		/* 2..6 placements */
		struct ring_builder *b = new_builder(10, R, 0, 0, 1, (uint64_t)scenario);
		struct ring_rebalance_stats st, pre;
		uint64_t hour = HOUR0;
		unsigned zones = 1 + (unsigned)((rng = rng * 6364136223846793005ull + 1) >> 60) % 6;

		for (unsigned z = 1; z <= zones; z++)
			for (unsigned n = 0; n < 3; n++)
				add_dev(b, 1, z, n, 0, 50.0 + (double)((rng = rng * 6364136223846793005ull + 1) >> 57));
		assert_int_equal(ring_builder_rebalance(b, hour, &st), 0);
		for (int op = 0; op < 6; op++) {
			unsigned ndev = ring_builder_dev_count(b);
			uint32_t *before = snapshot(b);
			uint64_t must_shed = 0;
			unsigned kind = (unsigned)((rng = rng * 6364136223846793005ull + 1) >> 62);
			const struct ring_dev *victim = ring_builder_dev_at(b, (unsigned)(rng >> 33) % ndev);

			if (kind == 0 || ndev <= R + 1)
				add_dev(b, 1, 1 + (unsigned)(rng >> 40) % (zones + 1), 10 + op, 0, 100);
			else if (kind == 1)
				assert_int_equal(ring_builder_remove(b, victim->id), 0);
			else
				assert_int_equal(ring_builder_set_weight(b, victim->id,
									 victim->weight * 1.5), 0);
			/* Partitions the change leaves crowded must move too. */
			ring_builder_report(b, &pre);
			hour += 2;
			assert_int_equal(ring_builder_rebalance(b, hour, &st), 0);
			/* A partition moves one placement per rebalance, so a
			 * layout change may need more than one to respread. */
			assert_true(st.dispersion <= st.moved);
			/* Nothing on removed or unknown devices. */
			for (uint32_t p = 0; p < (1u << 10); p++)
				for (unsigned j = 0; j < R; j++)
					assert_non_null(dev_of(b, ring_builder_assignment(b, p, j)));
			/* Least movement: every device over its new share had to
			 * shed the difference (removed devices: everything). */
			{
				uint32_t parts = 1u << 10;
				uint64_t *had = calloc(65536, sizeof(*had));

				for (uint32_t p = 0; p < parts; p++)
					for (unsigned j = 0; j < R; j++)
						had[before[p * R + j]]++;
				for (uint32_t id = 0; id < 65536; id++) {
					double want;

					if (!had[id])
						continue;
					want = dev_of(b, id) ? ring_builder_dev_wanted(b, id) : 0;
					if (had[id] > want)
						must_shed += had[id] - (uint64_t)floor(want);
				}
				free(had);
			}
			/* Not 1x: with tight domains a placement sometimes has to
			 * leave a domain to make room for one that must enter it
			 * (a second-order move): a device reweighted to 95% of
			 * all partitions, in a zone that may hold 2 of 4, moved
			 * 401 where devices had 277 to shed. */
			if (st.moved > (must_shed + pre.dispersion) * 1.5 + 2 * R) {
				fprintf(stderr, "scenario %d op %d kind %u R %u zones %u: moved %lu, had to shed %lu, respread %lu\n",
					scenario, op, kind, R, zones, (unsigned long)st.moved, (unsigned long)must_shed,
					(unsigned long)pre.dispersion);
				fail();
			}
			free(before);
		}
		hour += 2;
		assert_int_equal(ring_builder_rebalance(b, hour, &st), 0);
		for (int settle = 0; settle < 4; settle++) {
			hour += 2;
			assert_int_equal(ring_builder_rebalance(b, hour, &st), 0);
		}
		if (st.dispersion || st.balance > 2.0)
			fprintf(stderr, "scenario %d: R %u zones %u dispersion %lu balance %.2f%%\n",
				scenario, R, zones, (unsigned long)st.dispersion, st.balance);
		assert_int_equal(st.dispersion, 0);
		assert_true(st.balance < 2.0);
		ring_builder_free(b);
	}
}

/* ------------------------------------------------------- loaded rings */

static struct ring *ring_of(const struct ring_builder *b)
{
	struct ring *r = NULL;
	uint8_t *buf;
	size_t len;

	assert_int_equal(ring_builder_ring_buf(b, &buf, &len), 0);
	assert_int_equal(ring_load_buf(buf, len, &r), 0);
	free(buf);
	return r;
}

static void test_ring_lookup_matches_builder(void **state)
{
	struct ring_builder *b = new_builder(10, 3, 0, 0, 1, 8);
	const struct ring_dev *devs[3];
	struct ring *r;
	uint32_t part, counts[1024] = { 0 };
	char name[64];
	double chi2 = 0;

	add_layout(b, 3, 2, 2);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	r = ring_of(b);
	assert_int_equal(ring_parts(r), 1024);
	assert_int_equal(ring_placements(r), 3);
	assert_int_equal(ring_dev_count(r), 12);
	for (uint32_t p = 0; p < 1024; p++) {
		assert_int_equal(ring_primaries(r, p, devs, 3), 3);
		for (unsigned j = 0; j < 3; j++)
			assert_int_equal(devs[j]->id, ring_builder_assignment(b, p, j));
	}
	/* The hash spreads names evenly: chi-squared over 1024 partitions. */
	for (int i = 0; i < 200000; i++) {
		snprintf(name, sizeof(name), "photo-%d.jpg", i);
		assert_int_equal(ring_part_of(r, "AUTH_test", "bucket", name, &part), 0);
		assert_true(part < 1024);
		counts[part]++;
	}
	for (int p = 0; p < 1024; p++) {
		double e = 200000.0 / 1024;

		chi2 += (counts[p] - e) * (counts[p] - e) / e;
	}
	/* 1023 degrees of freedom: p = 0.001 bound is about 1168. */
	assert_true(chi2 < 1168);
	/* account/bucket/object joins to the same path as ring_part_of_path */
	assert_int_equal(ring_part_of(r, "a", "b", "c", &part), 0);
	assert_int_equal(part, ring_part_of_path(r, "/a/b/c", 6));
	assert_int_equal(ring_part_of(r, "a", NULL, NULL, &part), 0);
	assert_int_equal(part, ring_part_of_path(r, "/a", 2));
	{
		char *huge = malloc(RING_PATH_MAX + 1);

		memset(huge, 'x', RING_PATH_MAX);
		huge[RING_PATH_MAX] = 0;
		assert_int_equal(ring_part_of(r, "a", "b", huge, &part), -ENAMETOOLONG);
		free(huge);
	}
	ring_free(r);
	ring_builder_free(b);
}

/* A pushed ring replaces the running one only when it is newer and of the
 * same cluster: an old file put back, or another cluster's, is refused. */
static void test_ring_successor(void **state)
{
	struct ring_builder *b = new_builder(8, 3, 0, 0, 1, 8);
	static const uint8_t other_key[RING_KEY_LEN] = "fedcba9876543210";
	struct ring_policy rep3 = { .type = RING_POLICY_REPLICA, .replicas = 3 };
	struct ring_builder *other = NULL;
	struct ring_builder *ec = new_builder(8, 0, 4, 2, 1, 8);
	struct ring *v1, *v2, *v1again, *o, *e;

	(void)state;
	add_layout(b, 3, 2, 1);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	v1 = ring_of(b);
	v1again = ring_of(b);
	add_dev(b, 1, 1, 9, 0, 100);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	v2 = ring_of(b);
	assert_true(ring_version(v2) > ring_version(v1));
	assert_int_equal(ring_check_successor(v1, v2), 0);
	assert_int_equal(ring_check_successor(v2, v1), RING_ESTALE);
	assert_int_equal(ring_check_successor(v1, v1again), RING_ESTALE);
	/* same layout, another key: every name would change partition */
	assert_int_equal(ring_builder_create(8, &rep3, 1, 8, other_key, &other), 0);
	add_layout(other, 3, 2, 1);
	add_dev(other, 1, 1, 9, 0, 100);
	assert_int_equal(ring_builder_rebalance(other, HOUR0, NULL), 0);
	assert_int_equal(ring_builder_rebalance(other, HOUR0 + 1, NULL), 0);
	o = ring_of(other);
	assert_true(ring_version(o) > ring_version(v1));
	assert_int_equal(ring_check_successor(v1, o), RING_EMISMATCH);
	add_layout(ec, 6, 1, 1);
	assert_int_equal(ring_builder_rebalance(ec, HOUR0, NULL), 0);
	assert_int_equal(ring_builder_rebalance(ec, HOUR0 + 1, NULL), 0);
	e = ring_of(ec);
	assert_int_equal(ring_check_successor(v1, e), RING_EMISMATCH);
	assert_string_equal(ring_strerror(RING_ESTALE), "ring version is not newer than the one in use");
	ring_free(v1);
	ring_free(v1again);
	ring_free(v2);
	ring_free(o);
	ring_free(e);
	ring_builder_free(b);
	ring_builder_free(other);
	ring_builder_free(ec);
}

/* A request that began on v1 outlives two ring switches: v1 stays while it
 * holds it, and v2 (which replaced v1 and was itself replaced) stays with
 * v1, so the request may use either; both go when it ends. ASan catches a
 * use after a premature free, LSan a chain never freed. */
/* A second EC policy: its index survives builder and ring files, numbers its
 * fragments apart from policy 0's, and a ring of another index is no
 * successor (its fragments would be another policy's). */
static void test_policy_index(void **state)
{
	struct ring_policy pol = { .type = RING_POLICY_EC, .ec_k = 1, .ec_m = 2, .index = 7 };
	struct ring_builder *b = NULL, *b2 = NULL, *bad = NULL;
	struct ring_builder *other = new_builder(8, 0, 2, 1, 1, 8);
	char path[] = "/tmp/strata-ring-test-XXXXXX";
	int fd = mkstemp(path);
	struct ring *r, *r2, *o;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(ring_builder_create(8, &pol, 1, 8, test_key, &b), 0);
	add_layout(b, 3, 1, 1);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	assert_int_equal(ring_builder_save(b, path), 0);
	assert_int_equal(ring_builder_load(path, &b2), 0);
	assert_int_equal(ring_builder_policy(b2)->index, 7);
	r = ring_of(b2);
	assert_int_equal(ring_policy(r)->index, 7);
	assert_int_equal(ring_frag_id(ring_policy(r), 2), 7 << RING_FRAG_SHIFT | 2);
	assert_int_equal(ring_frag_placement(ring_frag_id(ring_policy(r), 2)), 2);
	assert_int_equal(ring_frag_policy(ring_frag_id(ring_policy(r), 2)), 7);
	add_layout(other, 3, 1, 1);
	assert_int_equal(ring_builder_rebalance(other, HOUR0, NULL), 0);
	o = ring_of(other);
	assert_int_equal(ring_frag_id(ring_policy(o), 2), 2);	/* policy 0: as before */
	assert_int_equal(ring_check_successor(o, r), RING_EMISMATCH);
	add_dev(b2, 1, 1, 9, 0, 100);
	assert_int_equal(ring_builder_rebalance(b2, HOUR0, NULL), 0);
	r2 = ring_of(b2);
	assert_int_equal(ring_check_successor(r, r2), 0);
	pol.index = 0;		/* 1+m as policy 0: refused (ring/file.c) */
	assert_int_equal(ring_builder_create(8, &pol, 1, 8, test_key, &bad), RING_EINVALID);
	pol.index = RING_MAX_POLICY + 1;
	assert_int_equal(ring_builder_create(8, &pol, 1, 8, test_key, &bad), RING_EINVALID);
	assert_null(bad);
	ring_free(r);
	ring_free(r2);
	ring_free(o);
	ring_builder_free(b);
	ring_builder_free(b2);
	ring_builder_free(other);
	unlink(path);
}

static void test_ring_refs(void **state)
{
	struct ring_builder *b = new_builder(8, 3, 0, 0, 1, 8);
	const struct ring_dev *devs[3];
	struct ring *v1, *v2, *v3, *req;

	(void)state;
	add_layout(b, 3, 2, 1);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	v1 = ring_of(b);
	assert_int_equal(ring_refs(v1), 1);
	req = ring_get(v1);			/* the request begins */
	assert_ptr_equal(req, v1);
	assert_int_equal(ring_refs(v1), 2);
	/* the daemon switches to v2 and lets go of v1 */
	add_dev(b, 1, 1, 9, 0, 100);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	v2 = ring_of(b);
	assert_int_equal(ring_set_successor(v1, v2), 0);
	assert_int_equal(ring_set_successor(v1, v2), -EBUSY);
	assert_int_equal(ring_set_successor(v2, v2), -EBUSY);
	assert_int_equal(ring_refs(v2), 2);
	ring_put(v1);
	assert_int_equal(ring_refs(v1), 1);
	assert_int_equal(ring_primaries(v1, 7, devs, 3), 3);
	assert_non_null(devs[0]->node);
	/* ... then to v3, letting go of v2: v1 keeps it */
	add_dev(b, 2, 2, 9, 0, 100);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 2, NULL), 0);
	v3 = ring_of(b);
	assert_int_equal(ring_set_successor(v2, v3), 0);
	ring_put(v2);
	assert_int_equal(ring_refs(v2), 1);
	assert_int_equal(ring_primaries(v2, 7, devs, 3), 3);
	assert_true(devs[2]->weight > 0);
	assert_true(ring_version(v2) > ring_version(v1));
	/* the request ends: v1 goes, and v2 with it; v3 is the daemon's */
	ring_put(req);
	assert_int_equal(ring_refs(v3), 1);
	ring_put(v3);
	ring_put(NULL);
	assert_null(ring_get(NULL));
	ring_builder_free(b);
}

static void test_handoffs(void **state)
{
	struct ring_builder *b = new_builder(8, 3, 0, 0, 1, 8);
	const struct ring_dev *prim[3], *h[64], *h2[64];
	struct ring *r;

	/* 5 zones x 2 nodes x 2 devices: 3 primaries leave 2 zones unused. */
	add_layout(b, 5, 2, 2);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	r = ring_of(b);
	for (uint32_t p = 0; p < 256; p++) {
		unsigned n = ring_handoffs(r, p, h, 64);
		uint32_t zones_seen[8] = { 0 };

		assert_int_equal(n, 17);	/* every other device */
		ring_primaries(r, p, prim, 3);
		for (unsigned i = 0; i < n; i++) {
			for (unsigned j = 0; j < 3; j++)
				assert_ptr_not_equal(h[i], prim[j]);
			for (unsigned k = 0; k < i; k++)
				assert_ptr_not_equal(h[i], h[k]);
		}
		/* The first two handoffs are in the two zones primaries don't use. */
		for (unsigned j = 0; j < 3; j++)
			zones_seen[prim[j]->zone]++;
		assert_int_equal(zones_seen[h[0]->zone], 0);
		zones_seen[h[0]->zone]++;
		assert_int_equal(zones_seen[h[1]->zone], 0);
		/* Then, with every zone used, new nodes before reused ones. */
		for (unsigned i = 2; i < 5; i++) {
			for (unsigned j = 0; j < 3; j++)
				assert_string_not_equal(h[i]->node, prim[j]->node);
			for (unsigned k = 0; k < i; k++)
				assert_string_not_equal(h[i]->node, h[k]->node);
		}
		/* Deterministic; a shorter request is a prefix. */
		assert_int_equal(ring_handoffs(r, p, h2, 4), 4);
		assert_memory_equal(h, h2, 4 * sizeof(h[0]));
	}
	ring_free(r);
	ring_builder_free(b);
}

static void test_handoffs_skip_drained(void **state)
{
	struct ring_builder *b = new_builder(6, 3, 0, 0, 1, 8);
	const struct ring_dev *h[64];
	struct ring *r;
	uint32_t drained;

	add_layout(b, 4, 1, 1);
	drained = add_dev(b, 1, 5, 0, 0, 100);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	assert_int_equal(ring_builder_set_weight(b, drained, 0), 0);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 1, NULL), 0);
	r = ring_of(b);
	for (uint32_t p = 0; p < 64; p++) {
		unsigned n = ring_handoffs(r, p, h, 64);

		assert_int_equal(n, 1);
		assert_int_not_equal(h[0]->id, drained);
	}
	ring_free(r);
	ring_builder_free(b);
}

/* Every single-byte change and every truncation of a ring file is refused
 * with an error, never a crash and never a silently different ring. */
static void test_ring_file_damage(void **state)
{
	struct ring_builder *b = new_builder(4, 3, 0, 0, 1, 8);
	struct ring *r = NULL;
	uint8_t *buf;
	size_t len;

	add_layout(b, 3, 1, 1);
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	assert_int_equal(ring_builder_ring_buf(b, &buf, &len), 0);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1 << bit);
			assert_true(ring_load_buf(buf, len, &r) < 0);
			buf[i] ^= (uint8_t)(1 << bit);
		}
	}
	for (size_t n = 0; n < len; n++)
		assert_true(ring_load_buf(buf, n, &r) < 0);
	assert_null(r);
	assert_int_equal(ring_load_buf(buf, len, &r), 0);
	ring_free(r);
	assert_int_equal(ring_load("/nonexistent/ring", &r), -ENOENT);
	assert_string_equal(ring_strerror(RING_ECHECKSUM),
			    "file is damaged (checksum or length mismatch)");
	free(buf);
	ring_builder_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replicas_three_zones),
		cmocka_unit_test(test_add_node_moves_near_ideal),
		cmocka_unit_test(test_remove_device_moves_only_its_parts),
		cmocka_unit_test(test_overload_keeps_zones_distinct),
		cmocka_unit_test(test_ec42_six_zones),
		cmocka_unit_test(test_fewer_zones_than_placements),
		cmocka_unit_test(test_same_seed_same_ring),
		cmocka_unit_test(test_min_part_hours),
		cmocka_unit_test(test_weights_and_drain),
		cmocka_unit_test(test_random_operations),
		cmocka_unit_test(test_builder_errors),
		cmocka_unit_test(test_builder_save_load),
		cmocka_unit_test(test_ring_lookup_matches_builder),
		cmocka_unit_test(test_ring_successor),
		cmocka_unit_test(test_policy_index),
		cmocka_unit_test(test_ring_refs),
		cmocka_unit_test(test_handoffs),
		cmocka_unit_test(test_handoffs_skip_drained),
		cmocka_unit_test(test_ring_file_damage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
