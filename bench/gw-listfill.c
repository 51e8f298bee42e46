/* strata-gw-listfill: fills a bucket's listing through the gateway's listing
 * service (api/gw_list.c: shard map, 2-of-3 replicated updates, splits) with
 * N synthetic entries, without writing object data: what a bucket of N
 * objects looks like to ListObjects, in a minute instead of hours of S3 PUTs.
 * Used by bench/gw-listing.py.
 *
 *   strata-gw-listfill --rings DIR --bucket NAME [--keys 1000000]
 *                      [--window 256] [--prefixes 1000] [--shard-max N]
 *
 * The bucket must exist (CreateBucket through a gateway on the same rings).
 * Keys are "dNNNN/obj-XXXXXXXXXX" (as strata-bench listing), 1 KiB, one ETag.
 * Prints entries/s per 100,000 and overall.
 */
#include "../api/internal.h"

#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fill {
	uv_loop_t *loop;
	struct gw_listing *L;
	const char *bucket;
	uint64_t keys, next, acked, errors;
	unsigned window, inflight, prefixes;
	uint64_t t0, tstep, t_end;
	struct gw_pool *pool;
	int first_error;
};

static void key_of(char *k, size_t cap, uint64_t n, unsigned prefixes)
{
	uint64_t h = n * 0x9e3779b97f4a7c15ull;

	snprintf(k, cap, "d%04u/obj-%010" PRIu64, (unsigned)((h >> 32) % prefixes), n);
}

static void pump(struct fill *f);

static void on_done(void *arg, int err)
{
	struct fill *f = arg;

	f->inflight--;
	f->acked++;
	if (err) {
		f->errors++;
		if (!f->first_error)
			f->first_error = err;
	}
	if (f->acked == f->keys) {
		/* Everything answered: let go of the connections so the loop ends. */
		f->t_end = strata_now_ns();
		gw_listing_close(f->L);
		gw_pool_close(f->pool);
	}
	if (f->acked % 100000 == 0) {
		uint64_t now = strata_now_ns();

		printf("%" PRIu64 " entries: %.0f/s (last 100,000)\n", f->acked,
		       100000 / ((now - f->tstep) / 1e9));
		fflush(stdout);
		f->tstep = now;
	}
	pump(f);
}

static void pump(struct fill *f)
{
	while (f->inflight < f->window && f->next < f->keys) {
		char key[64];
		struct gw_list_obj o = {
			.key = key, .version = strata_wall_ns(), .size = 1024,
			.etag = "\"0123456789abcdef0123456789abcdef\"",
		};
		int ret;

		key_of(key, sizeof(key), f->next++, f->prefixes);
		f->inflight++;
		ret = gw_list_update(f->L, f->bucket, &o, on_done, f);
		if (ret < 0) {
			f->inflight--;
			f->errors++;
			f->first_error = ret;
			f->keys = f->next;	/* stop here */
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rings", required_argument, NULL, 'r' },
		{ "bucket", required_argument, NULL, 'b' },
		{ "keys", required_argument, NULL, 'k' },
		{ "window", required_argument, NULL, 'w' },
		{ "prefixes", required_argument, NULL, 'p' },
		{ "shard-max", required_argument, NULL, 's' },
		{ 0 },
	};
	struct fill f = { .keys = 1000000, .window = 256, .prefixes = 1000 };
	struct gw_list_config lc = { .shard_max = GW_LIST_DEFAULT_SHARD_MAX,
				     .split_wait_ms = 12000 };
	const char *rings = NULL;
	char path[4096];
	struct ring *rep;
	struct gw_pool *pool;
	struct gw_store st;
	uv_loop_t loop;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': rings = optarg; break;
		case 'b': f.bucket = optarg; break;
		case 'k': f.keys = strtoull(optarg, NULL, 10); break;
		case 'w': f.window = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': f.prefixes = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': lc.shard_max = strtoull(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (!rings || !f.bucket || !f.window || !f.prefixes) {
		fprintf(stderr, "usage: strata-gw-listfill --rings DIR --bucket NAME "
			"[--keys N] [--window N] [--prefixes N] [--shard-max N]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/rep3.ring", rings);
	ret = ring_load(path, &rep);
	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", path, ring_strerror(ret));
		return 1;
	}
	uv_loop_init(&loop);
	f.loop = &loop;
	if (gw_pool_new(&loop, &(struct gw_pool_config){ 2000, 1000, 3000, 4 }, &pool) < 0)
		return 1;
	st = (struct gw_store){ .loop = &loop, .pool = pool, .read_deadline_ms = 1000,
				.write_deadline_ms = 10000 };
	if (gw_listing_new(&st, rep, &lc, &f.L) < 0)
		return 1;
	f.pool = pool;
	f.t0 = f.tstep = strata_now_ns();
	pump(&f);
	uv_run(&loop, UV_RUN_DEFAULT);
	{
		double s = ((f.t_end ? f.t_end : strata_now_ns()) - f.t0) / 1e9;

		printf("%" PRIu64 " entries in %.1f s: %.0f entries/s, %" PRIu64
		       " errors%s%s\n", f.acked, s, f.acked / s, f.errors,
		       f.errors ? ", first: " : "", f.errors ? sto_strerror(f.first_error) : "");
	}
	gw_listing_free(f.L);
	gw_pool_free(pool);
	ring_free(rep);
	uv_loop_close(&loop);
	return f.errors ? 1 : 0;
}
