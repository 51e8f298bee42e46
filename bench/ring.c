/* strata-bench ring: name -> devices lookups per second on one core, handoff
 * lists per second, and builder rebalance time and movement at scale. */
#include "internal.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "ring.h"

struct ring_bench_opts {
	unsigned part_power;
	unsigned zones, nodes_per_zone, devs_per_node;
	unsigned replicas;
	uint64_t lookups;
};

static double secs_since(uint64_t t0)
{
	return (double)(strata_now_ns() - t0) / 1e9;
}

static int add_node(struct ring_builder *b, unsigned zone, unsigned node, unsigned devs)
{
	for (unsigned d = 0; d < devs; d++) {
		struct ring_dev dev = { .region = 1, .zone = zone, .weight = 100 };
		uint32_t id;
		int ret;

		snprintf(dev.node, sizeof(dev.node), "10.0.%u.%u:6200", zone, node);
		snprintf(dev.name, sizeof(dev.name), "d%u", d);
		ret = ring_builder_add(b, &dev, &id);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static void layout_params(json_t *p, const struct ring_bench_opts *o)
{
	json_object_set_new(p, "part_power", json_integer(o->part_power));
	json_object_set_new(p, "replicas", json_integer(o->replicas));
	json_object_set_new(p, "devices", json_integer(o->zones * o->nodes_per_zone * o->devs_per_node));
	json_object_set_new(p, "zones", json_integer(o->zones));
	json_object_set_new(p, "nodes_per_zone", json_integer(o->nodes_per_zone));
	json_object_set_new(p, "devs_per_node", json_integer(o->devs_per_node));
}

static void stats_results(json_t *r, const struct ring_rebalance_stats *st, double secs)
{
	json_object_set_new(r, "seconds", json_real(secs));
	json_object_set_new(r, "moved", json_integer((json_int_t)st->moved));
	json_object_set_new(r, "placements", json_integer((json_int_t)st->placements));
	json_object_set_new(r, "balance_pct", json_real(st->balance));
	json_object_set_new(r, "dispersion", json_integer((json_int_t)st->dispersion));
}

/* Builds the layout, times the first rebalance, then adding one node and
 * removing one device (each with min_part_hours passed). */
static int bench_rebalance(const struct ring_bench_opts *o, struct ring_builder **out)
{
	struct ring_policy pol = { .type = RING_POLICY_REPLICA, .replicas = o->replicas };
	struct ring_rebalance_stats st;
	struct ring_builder *b;
	uint64_t hour = (uint64_t)time(NULL) / 3600, t0;
	unsigned ndev = o->zones * o->nodes_per_zone * o->devs_per_node;
	json_t *ph;
	int ret;

	ret = ring_builder_create(o->part_power, &pol, 1, 1, NULL, &b);
	if (ret < 0)
		return ret;
	for (unsigned z = 1; z <= o->zones; z++)
		for (unsigned n = 0; n < o->nodes_per_zone; n++)
			if ((ret = add_node(b, z, n, o->devs_per_node)) < 0)
				goto out;

	t0 = strata_now_ns();
	ret = ring_builder_rebalance(b, hour, &st);
	if (ret < 0)
		goto out;
	ph = bench_phase_new("ring", "rebalance-initial");
	layout_params(bench_phase_params(ph), o);
	stats_results(bench_phase_results(ph), &st, secs_since(t0));
	bench_phase_emit(ph);

	ret = add_node(b, 1, o->nodes_per_zone, o->devs_per_node);
	if (ret < 0)
		goto out;
	t0 = strata_now_ns();
	ret = ring_builder_rebalance(b, hour + 2, &st);
	if (ret < 0)
		goto out;
	ph = bench_phase_new("ring", "rebalance-add-node");
	layout_params(bench_phase_params(ph), o);
	stats_results(bench_phase_results(ph), &st, secs_since(t0));
	/* ideal: the new node's weighted share of all placements */
	json_object_set_new(bench_phase_results(ph), "ideal_moved",
			    json_real((double)st.placements * o->devs_per_node /
				      (ndev + o->devs_per_node)));
	bench_phase_emit(ph);

	ret = ring_builder_remove(b, ring_builder_dev_at(b, 0)->id);
	if (ret < 0)
		goto out;
	t0 = strata_now_ns();
	ret = ring_builder_rebalance(b, hour + 4, &st);
	if (ret < 0)
		goto out;
	ph = bench_phase_new("ring", "rebalance-remove-device");
	layout_params(bench_phase_params(ph), o);
	stats_results(bench_phase_results(ph), &st, secs_since(t0));
	bench_phase_emit(ph);
	*out = b;
	return 0;
out:
	ring_builder_free(b);
	return ret;
}

static int bench_lookups(const struct ring_bench_opts *o, struct ring_builder *b)
{
	const struct ring_dev *devs[RING_MAX_PLACEMENTS], *hand[8];
	struct ring *r;
	uint8_t *buf;
	size_t len;
	char name[128];
	uint64_t t0, sink = 0, nh = o->lookups / 100 + 1;
	double secs, cpu0;
	json_t *ph;
	int ret;

	ret = ring_builder_ring_buf(b, &buf, &len);
	if (ret < 0)
		return ret;
	ret = ring_load_buf(buf, len, &r);
	free(buf);
	if (ret < 0)
		return ret;

	cpu0 = bench_cpu_seconds();
	t0 = strata_now_ns();
	for (uint64_t i = 0; i < o->lookups; i++) {
		uint32_t part;
		int n = snprintf(name, sizeof(name), "/AUTH_bench/photos/2026/11/%016lx.jpg",
				 (unsigned long)(i * 0x9e3779b97f4a7c15ull));

		part = ring_part_of_path(r, name, (size_t)n);
		ring_primaries(r, part, devs, ring_placements(r));
		sink += devs[0]->id;
	}
	secs = secs_since(t0);
	ph = bench_phase_new("ring", "lookup");
	layout_params(bench_phase_params(ph), o);
	json_object_set_new(bench_phase_params(ph), "lookups", json_integer((json_int_t)o->lookups));
	json_object_set_new(bench_phase_params(ph), "threads", json_integer(1));
	json_object_set_new(bench_phase_results(ph), "lookups_per_s", json_real(o->lookups / secs));
	json_object_set_new(bench_phase_results(ph), "ns_per_lookup", json_real(secs * 1e9 / o->lookups));
	json_object_set_new(bench_phase_results(ph), "cpu_s", json_real(bench_cpu_seconds() - cpu0));
	bench_phase_emit(ph);

	t0 = strata_now_ns();
	for (uint64_t i = 0; i < nh; i++)
		sink += ring_handoffs(r, (uint32_t)(i * 2654435761u) & (ring_parts(r) - 1), hand, 2);
	secs = secs_since(t0);
	ph = bench_phase_new("ring", "handoffs");
	layout_params(bench_phase_params(ph), o);
	json_object_set_new(bench_phase_params(ph), "lists", json_integer((json_int_t)nh));
	json_object_set_new(bench_phase_params(ph), "per_list", json_integer(2));
	json_object_set_new(bench_phase_results(ph), "lists_per_s", json_real(nh / secs));
	json_object_set_new(bench_phase_results(ph), "us_per_list", json_real(secs * 1e6 / nh));
	json_object_set_new(bench_phase_results(ph), "checksum", json_integer((json_int_t)(sink & 0xffff)));
	bench_phase_emit(ph);
	ring_free(r);
	return 0;
}

int bench_ring_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "part-power", required_argument, NULL, 'p' },
		{ "zones", required_argument, NULL, 'z' },
		{ "nodes-per-zone", required_argument, NULL, 'n' },
		{ "devs-per-node", required_argument, NULL, 'd' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "lookups", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	/* Defaults: part power 20 and 1,000 devices (10 zones x 20 nodes x 5). */
	struct ring_bench_opts o = { 20, 10, 20, 5, 3, 5000000 };
	struct ring_builder *b;
	int c, ret;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p': o.part_power = (unsigned)atoi(optarg); break;
		case 'z': o.zones = (unsigned)atoi(optarg); break;
		case 'n': o.nodes_per_zone = (unsigned)atoi(optarg); break;
		case 'd': o.devs_per_node = (unsigned)atoi(optarg); break;
		case 'r': o.replicas = (unsigned)atoi(optarg); break;
		case 'l': o.lookups = strtoull(optarg, NULL, 10); break;
		case 'o':
			if ((ret = bench_set_output(optarg)) < 0) {
				fprintf(stderr, "strata-bench ring: %s: %s\n", optarg, strerror(-ret));
				return 1;
			}
			break;
		case 'h':
			printf("usage: strata-bench ring [--part-power 20] [--zones 10] "
			       "[--nodes-per-zone 20]\n        [--devs-per-node 5] [--replicas 3] "
			       "[--lookups 5000000] [--out FILE]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (o.part_power > RING_MAX_PART_POWER || !o.zones || !o.nodes_per_zone ||
	    !o.devs_per_node || !o.replicas || o.replicas > RING_MAX_PLACEMENTS || !o.lookups) {
		fprintf(stderr, "strata-bench ring: bad options\n");
		return 2;
	}
	ret = bench_rebalance(&o, &b);
	if (ret == 0) {
		ret = bench_lookups(&o, b);
		ring_builder_free(b);
	}
	if (ret < 0) {
		fprintf(stderr, "strata-bench ring: %s\n", ring_strerror(ret));
		return 1;
	}
	return 0;
}
