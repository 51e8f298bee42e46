/* strata-bench: Strata's benchmarks, one subcommand each, JSON per phase. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const struct bench_cmd cmds[] = {
	{ "ring", "ring lookups/s and rebalance time", bench_ring_main },
	{ "ec", "erasure-coding encode/decode GB/s on one core", bench_ec_main },
	{ "node", "storage node durable PUT/GET over loopback RPC", bench_node_main },
	{ "s3", "S3 load: put/get/head/list/delete/mixed on any endpoint, --compare two", bench_s3_main },
	{ "listing", "listing inserts and queries (first page, full, delimiter) on a node", bench_listing_main },
	{ "repair", "repair MB/s per node and time to heal per GiB lost (EC 4+2, 6 nodes)", bench_repair_main },
	{ "tiers", "hot vs cold reads, the tier mover's throughput, foreground p99 mover on/off", bench_tiers_main },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: strata-bench COMMAND [options]   (COMMAND --help for its options)\n\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "\nEach phase prints one JSON object per line; --out FILE appends there instead.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].main(argc - 1, argv + 1);
	fprintf(stderr, "strata-bench: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
