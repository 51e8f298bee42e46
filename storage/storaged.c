/* strata-storaged: the storage node daemon.
 *
 *   strata-storaged --hot DIR[,DIR] [--cold DIR[,DIR]] [--listen ADDR]
 *                   [--port N] [--port-file FILE] [--node-id ID] [--ring FILE]
 *                   [--reserve-bytes N] [--reserve-pct N] [--volume-max N]
 *                   [--index-map-size N] [--atime-interval S]
 *                   [--listing-max-limit N] [--sync-depth N]
 *                   [--zero-ahead N] [--reclaim-age S] [--cold-after S]
 *                   [--audit-mbps N] [--audit-interval S]
 *                   [tiering options] [-v]
 *
 * SIGTERM/SIGINT: stop accepting, finish in-flight requests, close the index.
 */
#include "internal.h"
#include "ring.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

struct daemon {
	uv_loop_t *loop;
	struct sto_engine *e;
	struct sto_server *srv;
	struct sto_audit *audit;
	uv_signal_t sigterm, sigint;
	bool stopping;
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-storaged --hot DIR[,DIR...] [options]\n"
"  --hot DIR[,DIR]        SSD directories (writes land here; index in the first)\n"
"  --cold DIR[,DIR]       SATA directories\n"
"  --listen ADDR          listen address (default 127.0.0.1)\n"
"  --port N               TCP port (default %d; 0 = any free port)\n"
"  --port-file FILE       write the bound port here once listening\n"
"  --node-id ID           this node's identity (logged; checked against --ring later)\n"
"  --ring FILE            ring file (optional for now: must exist when given)\n"
"  --reserve-bytes N      keep N bytes free per directory (default 0)\n"
"  --reserve-pct N        ... or N%% of it, whichever is larger (default 1)\n"
"  --volume-max N         volume file size before rolling (default 1 GiB)\n"
"  --index-map-size N     LMDB map size (default 64 GiB)\n"
"  --atime-interval S     seconds between access-time updates (default 3600)\n"
"  --max-inflight N       pipelined requests per connection (default 256)\n"
"  --listing-max-limit N  entries per listing page at most (default 1000, <= 10000)\n"
"  --compact-interval S   seconds between compaction checks (default 60, 0 = off)\n"
"  --compact-pct N        compact sealed volumes with N%% dead space (default 50)\n"
"  --sync-depth N         volume fdatasyncs in flight per volume (default 4)\n"
"  --zero-ahead N         bytes zero-filled past the small-record volume's tail,\n"
"                         so fdatasyncs need no extent conversion (default 32 MiB,\n"
"                         0 = off)\n"
"  --small-writes N       records <= 256 KiB: 1 = a write each, then volume\n"
"                         fdatasyncs; 2 = adjacent ones in one write, then\n"
"                         fdatasyncs; 3 = adjacent ones in one RWF_DSYNC write\n"
"                         (default 2)\n"
"  --large-direct 0|1     records >= 8 MiB: full 1 MiB buffers written with\n"
"                         O_DIRECT (1) or buffered (0, default)\n"
"  --commit-defer-ms N    acknowledged writes wait up to N ms for more before\n"
"                         their index commit (default 20)\n"
"  --reclaim-age S        compaction drops tombstones older than S seconds\n"
"                         (default 604800: 7 days)\n"
"  --cold-after S         move fragments unread for S seconds to cold (default\n"
"                         604800 = 7 days; 0 = never by age; per-fragment override)\n"
"  --tier-scan-interval S seconds between the mover's index scans (default 60)\n"
"  --tier-high-pct N      hot above N%% of its capacity: move the longest-unread\n"
"  --tier-low-pct N       ... until below N%% (defaults 0 = off, and 80%% of high)\n"
"  --tier-hot-capacity N  hot capacity for the watermarks (default: file systems)\n"
"  --promote-reads N      N reads of a cold fragment within the window bring it\n"
"  --promote-window S     back to hot (defaults 0 = never, 3600)\n"
"  --tier-rate-mb N       mover throughput cap, MB/s (default 0 = none)\n"
"  --tier-rate-ops N      mover fragments per second cap (default 0 = none)\n"
"  --tier-off             no moves (counters still kept)\n"
"  --audit-mbps N         the auditor's CRC scrub of every fragment, MB/s\n"
"                         (default 20; 0 = off)\n"
"  --audit-interval S     seconds from one scrub pass's end to the next\n"
"                         (default 86400)\n"
"  -v, --verbose          debug logging\n", STO_DEFAULT_PORT);
}

static int split_dirs(char *arg, const char **out, unsigned *n)
{
	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		if (*n >= STO_MAX_DIRS)
			return -E2BIG;
		out[(*n)++] = tok;
	}
	return 0;
}

static void on_engine_closed(void *arg)
{
	struct daemon *d = arg;

	sto_audit_free(d->audit);
	d->audit = NULL;
	log_info("index closed, exiting");
}

static void on_server_stopped(void *arg)
{
	struct daemon *d = arg;

	sto_engine_close(d->e, on_engine_closed, d);
}

static void on_audit_stopped(void *arg)
{
	struct daemon *d = arg;

	sto_server_stop(d->srv, on_server_stopped, d);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct daemon *d = h->data;

	if (d->stopping)
		return;
	d->stopping = true;
	log_info("signal %d: finishing in-flight requests", sig);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	sto_audit_stop(d->audit, on_audit_stopped, d);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "hot", required_argument, NULL, 'H' },
		{ "cold", required_argument, NULL, 'C' },
		{ "listen", required_argument, NULL, 'l' },
		{ "port", required_argument, NULL, 'p' },
		{ "port-file", required_argument, NULL, 'P' },
		{ "node-id", required_argument, NULL, 'n' },
		{ "ring", required_argument, NULL, 'r' },
		{ "reserve-bytes", required_argument, NULL, 'R' },
		{ "reserve-pct", required_argument, NULL, '%' },
		{ "volume-max", required_argument, NULL, 'V' },
		{ "index-map-size", required_argument, NULL, 'M' },
		{ "atime-interval", required_argument, NULL, 'A' },
		{ "max-inflight", required_argument, NULL, 'I' },
		{ "listing-max-limit", required_argument, NULL, 'L' },
		{ "compact-interval", required_argument, NULL, 'c' },
		{ "compact-pct", required_argument, NULL, 'k' },
		{ "sync-depth", required_argument, NULL, 'S' },
		{ "zero-ahead", required_argument, NULL, 'Z' },
		{ "reclaim-age", required_argument, NULL, 'a' },
		{ "cold-after", required_argument, NULL, 1000 },
		{ "tier-scan-interval", required_argument, NULL, 1001 },
		{ "tier-high-pct", required_argument, NULL, 1002 },
		{ "tier-low-pct", required_argument, NULL, 1003 },
		{ "tier-hot-capacity", required_argument, NULL, 1004 },
		{ "promote-reads", required_argument, NULL, 1005 },
		{ "promote-window", required_argument, NULL, 1006 },
		{ "tier-rate-mb", required_argument, NULL, 1007 },
		{ "tier-rate-ops", required_argument, NULL, 1008 },
		{ "tier-off", no_argument, NULL, 1009 },
		{ "audit-mbps", required_argument, NULL, 1010 },
		{ "audit-interval", required_argument, NULL, 1011 },
		{ "small-writes", required_argument, NULL, 1100 },
		{ "large-direct", required_argument, NULL, 1101 },
		{ "commit-defer-ms", required_argument, NULL, 1102 },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct sto_engine_cfg ecfg = { .reserve_pct = 1, .atime_interval = 3600,
				       .compact_interval = 60, .compact_pct = 50,
				       .sync_depth = STO_SYNC_DEPTH,
				       .zero_ahead = STO_ZERO_AHEAD,
				       .reclaim_age = STO_RECLAIM_AGE,
				       .tier = { .cold_after = 7 * 86400, .scan_interval = 60,
						 .promote_window = 3600 } };
	struct sto_audit_cfg acfg = { .mbps = 20, .interval = 86400 };
	bool low_set = false;
	struct sto_server_cfg scfg = { .addr = "127.0.0.1", .port = STO_DEFAULT_PORT };
	const char *port_file = NULL, *node_id = "", *ring = NULL;
	struct daemon d = { 0 };
	uint64_t v;
	int opt, ret;

	strata_log_init("strata-storaged");
	/* PUT and GET buffers (up to 1 MiB) come and go at a high rate: keep
	 * them on the heap, and the heap's pages mapped, rather than paying an
	 * mmap, munmap and page faults for each. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'H':
			if (split_dirs(optarg, ecfg.hot, &ecfg.nhot) < 0)
				goto out_usage;
			break;
		case 'C':
			if (split_dirs(optarg, ecfg.cold, &ecfg.ncold) < 0)
				goto out_usage;
			break;
		case 'l': scfg.addr = optarg; break;
		case 'P': port_file = optarg; break;
		case 'n': node_id = optarg; break;
		case 'r': ring = optarg; break;
		case 'v': strata_log_verbose = true; break;
		case 1009: ecfg.tier.off = true; break;
		case 'h': usage(stdout); return 0;
		default:
			if (!optarg || strata_parse_size(optarg, &v) < 0)
				goto out_usage;
			switch (opt) {
			case 'p':
				if (v > 65535)
					goto out_usage;
				scfg.port = (uint16_t)v;
				break;
			case 'R': ecfg.reserve_bytes = v; break;
			case '%':
				if (v > 100)
					goto out_usage;
				ecfg.reserve_pct = (unsigned)v;
				break;
			case 'V': ecfg.vol_max = v; break;
			case 'M': ecfg.map_size = v; break;
			case 'A': ecfg.atime_interval = (unsigned)v; break;
			case 'I': scfg.max_inflight = (unsigned)v; break;
			case 'L':
				if (v < 1 || v > STO_LISTING_MAX_LIMIT)
					goto out_usage;
				scfg.listing_max_limit = (unsigned)v;
				break;
			case 'c': ecfg.compact_interval = (unsigned)v; break;
			case 1000: ecfg.tier.cold_after = v; break;
			case 1001:
				if (v < 1)
					goto out_usage;
				ecfg.tier.scan_interval = (unsigned)v;
				break;
			case 1002:
			case 1003:
				if (v > 100)
					goto out_usage;
				if (opt == 1002) {
					ecfg.tier.high_pct = (unsigned)v;
				} else {
					ecfg.tier.low_pct = (unsigned)v;
					low_set = true;
				}
				break;
			case 1004: ecfg.tier.hot_capacity = v; break;
			case 1005: ecfg.tier.promote_reads = (unsigned)v; break;
			case 1006: ecfg.tier.promote_window = (unsigned)v; break;
			case 1007: ecfg.tier.rate_bytes = v * 1000000; break;
			case 1008: ecfg.tier.rate_ops = (unsigned)v; break;
			case 1010: acfg.mbps = (double)v; break;
			case 1011: acfg.interval = (unsigned)v; break;
			case 'k':
				if (v < 1 || v > 100)
					goto out_usage;
				ecfg.compact_pct = (unsigned)v;
				break;
			case 'S':
				if (v < 1 || v > 64)
					goto out_usage;
				ecfg.sync_depth = (unsigned)v;
				break;
			case 'Z': ecfg.zero_ahead = v; break;
			case 1100:
				if (v < STO_SMALL_SEPARATE || v > STO_SMALL_DSYNC)
					goto out_usage;
				ecfg.small_writes = (unsigned)v;
				break;
			case 1101:
				if (v > 1)
					goto out_usage;
				ecfg.large_direct = v ? STO_LARGE_DIRECT : STO_LARGE_BUFFERED;
				break;
			case 1102:
				if (v < 1 || v > 10000)
					goto out_usage;
				ecfg.commit_defer_ms = (unsigned)v;
				break;
			case 'a':
				if (v < 1)
					goto out_usage;
				ecfg.reclaim_age = v;
				break;
			default: goto out_usage;
			}
		}
	}
	if (optind != argc || ecfg.nhot == 0)
		goto out_usage;
	if (!low_set)
		ecfg.tier.low_pct = ecfg.tier.high_pct * 4 / 5;
	if (ring) {
		/* The ring names this node's devices by "host:port" (--node-id,
		 * or the listen address). Checked at start; acting on it
		 * (handoffs, replication) comes with later issues. */
		char self[RING_NAME_MAX + 1];
		struct ring *r;
		unsigned mine = 0;

		ret = ring_load(ring, &r);
		if (ret < 0) {
			log_err("ring %s: %s", ring, ring_strerror(ret));
			return 1;
		}
		snprintf(self, sizeof(self), "%s:%u", scfg.addr, scfg.port);
		if (*node_id)
			snprintf(self, sizeof(self), "%s", node_id);
		for (unsigned i = 0; i < ring_dev_count(r); i++)
			mine += !strcmp(ring_dev_at(r, i)->node, self);
		if (mine)
			log_info("ring %s v%llu: %u of %u devices are this node (%s)", ring,
				 (unsigned long long)ring_version(r), mine,
				 ring_dev_count(r), self);
		else
			log_warn("ring %s: no device of node %s (serving anyway)", ring, self);
		ring_free(r);
	}

	d.loop = uv_default_loop();
	ret = sto_engine_open(d.loop, &ecfg, &d.e);
	if (ret < 0) {
		log_err("opening storage: %s", sto_strerror(ret));
		return 1;
	}
	ret = sto_audit_new(d.e, &acfg, &d.audit);
	if (ret < 0) {
		sto_engine_close(d.e, NULL, NULL);
		uv_run(d.loop, UV_RUN_DEFAULT);
		return 1;
	}
	scfg.audit = d.audit;
	ret = sto_server_start(d.loop, d.e, &scfg, &d.srv);
	if (ret < 0) {
		sto_audit_stop(d.audit, NULL, NULL);
		sto_engine_close(d.e, NULL, NULL);
		uv_run(d.loop, UV_RUN_DEFAULT);
		sto_audit_free(d.audit);
		return 1;
	}
	if (port_file)
		strata_write_port_file(port_file, sto_server_port(d.srv));
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	log_info("node '%s' listening on %s:%u, %u hot and %u cold directories",
		 node_id, scfg.addr, sto_server_port(d.srv), ecfg.nhot, ecfg.ncold);
	uv_run(d.loop, UV_RUN_DEFAULT);
	uv_loop_close(d.loop);
	return 0;

out_usage:
	usage(stderr);
	return 2;
}
