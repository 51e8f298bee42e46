/* strata-bench listing: one listing on one storage node over loopback RPC.
 *
 *   insert     --keys keys (default 1,000,000) in batches of --batch (1,000),
 *              --window batches in flight, every batch durable before its
 *              reply; entries/s overall and per --step keys (does the rate
 *              hold as the listing grows?)
 *   first      the first 1,000 keys, --repeat times: latency percentiles
 *   full       the whole listing by pages of 1,000 (markers): keys/s
 *   delimiter  delimiter "/" over keys spread under --prefixes common
 *              prefixes: every prefix listed, pages of 1,000
 *   prefix     one prefix's keys (keys / prefixes of them), pages of 1,000
 *
 * Keys are "dNNNN/obj-XXXXXXXXXX" with the directory picked by a hash of the
 * key number, so inserts land all over the key space (not appends).
 */
#include "internal.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "storage.h"

#define KEY_MAX		32
#define VALUE		"s=123456789;e=0123456789abcdef"

struct lopts {
	const char *addr, *storaged, *dir;
	uint64_t keys, step;
	unsigned batch, window, prefixes, repeat;
};

struct ins_batch {
	struct sto_listing_entry v[STO_LISTING_MAX_BATCH];
	char keys[STO_LISTING_MAX_BATCH][KEY_MAX];
	uint64_t t0;
	bool busy;
};

struct ctx {
	uv_loop_t *loop;
	sto_client *c;
	struct sto_listing_id id;
	const struct lopts *o;
	/* insert */
	struct ins_batch *b;
	uint64_t next, acked, inflight, errors;
	int first_error;
	struct bench_hist hist;
	/* queries */
	bool done;
	int status;
	uint64_t items;
	bool truncated;
	char marker[STO_LISTING_MAX_KEY];
	uint32_t marker_len;
};

static uint32_t dir_of(uint64_t n, unsigned prefixes)
{
	uint64_t h = n * 0x9e3779b97f4a7c15ull;

	return (uint32_t)((h >> 32) % prefixes);
}

static void key_of(char *k, uint64_t n, unsigned prefixes)
{
	snprintf(k, KEY_MAX, "d%04u/obj-%010llu", dir_of(n, prefixes), (unsigned long long)n);
}

static void on_connect(sto_client *c, int status, void *arg)
{
	int *st = arg;

	*st = status;
}

static void ins_issue(struct ctx *x, struct ins_batch *b);

static void on_put(void *arg, int status, uint64_t count)
{
	struct ins_batch *b = arg;
	struct ctx *x = *(struct ctx **)(b + 1);

	x->inflight--;
	b->busy = false;
	if (status < 0) {
		if (!x->errors)
			x->first_error = status;
		x->errors++;
	} else {
		x->acked += x->o->batch;
		bench_hist_add(&x->hist, strata_now_ns() - b->t0);
	}
	ins_issue(x, b);
}

static void ins_issue(struct ctx *x, struct ins_batch *b)
{
	unsigned n = x->o->batch;
	uint64_t ts = strata_wall_ns();

	if (x->next >= x->o->keys || x->errors)
		return;
	if (x->next + n > x->o->keys)
		n = (unsigned)(x->o->keys - x->next);
	for (unsigned i = 0; i < n; i++) {
		key_of(b->keys[i], x->next + i, x->o->prefixes);
		b->v[i] = (struct sto_listing_entry){ b->keys[i], (uint32_t)strlen(b->keys[i]),
						      ts, false, VALUE, sizeof(VALUE) - 1 };
	}
	b->t0 = strata_now_ns();
	if (sto_listing_put(x->c, &x->id, b->v, n, on_put, b) < 0) {
		x->errors++;
		return;
	}
	x->next += n;
	x->inflight++;
	b->busy = true;
}

static int phase_insert(struct ctx *x)
{
	const struct lopts *o = x->o;
	size_t bsz = sizeof(struct ins_batch) + sizeof(struct ctx *);
	uint8_t *mem = calloc(o->window, bsz);
	json_t *ph, *res, *steps = json_array();
	uint64_t t0 = strata_now_ns(), tstep = t0, next_step = o->step;
	double cpu0 = bench_cpu_seconds(), ncpu0 = bench_node_cpu(), secs;
	double min_rate = 0, first_rate = 0;

	if (!mem)
		return -ENOMEM;
	for (unsigned i = 0; i < o->window; i++) {
		struct ins_batch *b = (struct ins_batch *)(mem + i * bsz);

		*(struct ctx **)(b + 1) = x;
		ins_issue(x, b);
	}
	while (x->inflight) {
		uv_run(x->loop, UV_RUN_ONCE);
		while (x->acked >= next_step && next_step <= o->keys) {
			uint64_t now = strata_now_ns();
			double rate = (double)o->step / ((double)(now - tstep) / 1e9);

			json_array_append_new(steps, json_pack("{s:I, s:f}", "keys",
						(json_int_t)next_step, "entries_per_s", rate));
			if (!first_rate)
				first_rate = rate;
			if (!min_rate || rate < min_rate)
				min_rate = rate;
			tstep = now;
			next_step += o->step;
		}
	}
	secs = (double)(strata_now_ns() - t0) / 1e9;
	ph = bench_phase_new("listing", "insert");
	json_object_set_new(bench_phase_params(ph), "keys", json_integer((json_int_t)o->keys));
	json_object_set_new(bench_phase_params(ph), "batch", json_integer(o->batch));
	json_object_set_new(bench_phase_params(ph), "window", json_integer(o->window));
	json_object_set_new(bench_phase_params(ph), "durable", json_true());
	res = bench_phase_results(ph);
	json_object_set_new(res, "entries", json_integer((json_int_t)x->acked));
	json_object_set_new(res, "errors", json_integer((json_int_t)x->errors));
	if (x->errors)
		json_object_set_new(res, "first_error", json_string(sto_strerror(x->first_error)));
	json_object_set_new(res, "seconds", json_real(secs));
	json_object_set_new(res, "entries_per_s", json_real((double)x->acked / secs));
	json_object_set_new(res, "per_step", steps);
	json_object_set_new(res, "slowest_step_vs_first",
			    json_real(first_rate ? min_rate / first_rate : 0));
	bench_hist_to_json(&x->hist, res);
	json_object_set_new(res, "client_cpu_s", json_real(bench_cpu_seconds() - cpu0));
	json_object_set_new(res, "node_cpu_s", json_real(bench_node_cpu() - ncpu0));
	bench_phase_emit(ph);
	free(mem);
	return x->errors ? x->first_error : 0;
}

static void on_page(void *arg, int status, const struct sto_listing_page *pg)
{
	struct ctx *x = arg;

	x->done = true;
	x->status = status;
	if (status < 0)
		return;
	x->items += pg->n_entries + pg->n_prefixes;
	x->truncated = pg->is_truncated;
	x->marker_len = pg->next_marker.len;
	if (pg->next_marker.len)
		memcpy(x->marker, pg->next_marker.data, pg->next_marker.len);
}

/* One page after x->marker; 0 or the error. */
static int page(struct ctx *x, const char *prefix, const char *delim)
{
	struct sto_listing_query q = {
		.start_after = { x->marker, x->marker_len },
		.prefix = { prefix, prefix ? (uint32_t)strlen(prefix) : 0 },
		.delimiter = { delim, delim ? (uint32_t)strlen(delim) : 0 },
		.limit = 1000,
	};
	int ret;

	x->done = false;
	ret = sto_listing_query(x->c, &x->id, &q, on_page, x);
	if (ret < 0)
		return ret;
	while (!x->done)
		uv_run(x->loop, UV_RUN_ONCE);
	return x->status;
}

/* Walks a whole listing (or one page, repeat times when first). */
static int phase_walk(struct ctx *x, const char *name, const char *prefix,
		      const char *delim, bool first)
{
	struct bench_hist h = { 0 };
	uint64_t t0 = strata_now_ns(), pages = 0;
	double cpu0 = bench_cpu_seconds(), ncpu0 = bench_node_cpu(), secs;
	unsigned runs = first ? x->o->repeat : 1;
	json_t *ph, *res;
	int ret = 0;

	x->items = 0;
	for (unsigned r = 0; r < runs && ret == 0; r++) {
		x->marker_len = 0;
		do {
			uint64_t p0 = strata_now_ns();

			ret = page(x, prefix, delim);
			bench_hist_add(&h, strata_now_ns() - p0);
			pages++;
		} while (ret == 0 && x->truncated && !first);
	}
	secs = (double)(strata_now_ns() - t0) / 1e9;
	ph = bench_phase_new("listing", name);
	json_object_set_new(bench_phase_params(ph), "page", json_integer(1000));
	json_object_set_new(bench_phase_params(ph), "prefix", prefix ? json_string(prefix) : json_null());
	json_object_set_new(bench_phase_params(ph), "delimiter", delim ? json_string(delim) : json_null());
	json_object_set_new(bench_phase_params(ph), "runs", json_integer(runs));
	res = bench_phase_results(ph);
	json_object_set_new(res, "items", json_integer((json_int_t)x->items));
	json_object_set_new(res, "pages", json_integer((json_int_t)pages));
	json_object_set_new(res, "seconds", json_real(secs));
	json_object_set_new(res, "items_per_s", json_real((double)x->items / secs));
	if (ret < 0)
		json_object_set_new(res, "error", json_string(sto_strerror(ret)));
	bench_hist_to_json(&h, res);	/* per page */
	json_object_set_new(res, "client_cpu_s", json_real(bench_cpu_seconds() - cpu0));
	json_object_set_new(res, "node_cpu_s", json_real(bench_node_cpu() - ncpu0));
	bench_phase_emit(ph);
	bench_hist_free(&h);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-bench listing [options]\n"
"  --addr HOST:PORT   a running node instead of starting one\n"
"  --storaged PATH    the daemon to start (default: this build's)\n"
"  --dir DIR          its data directory (default /var/tmp/strata-bench-listing)\n"
"  --keys N           keys to insert (default 1000000)\n"
"  --batch N          entries per LISTING_PUT (default 1000)\n"
"  --window N         batches in flight (default 16)\n"
"  --step N           report the insert rate per N keys (default keys/10)\n"
"  --prefixes N       common prefixes the keys spread under (default 1000)\n"
"  --repeat N         first-page queries (default 50)\n"
"  --out FILE         append JSON phases to FILE\n");
}

int bench_listing_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "storaged", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "keys", required_argument, NULL, 'k' },
		{ "batch", required_argument, NULL, 'b' },
		{ "window", required_argument, NULL, 'w' },
		{ "step", required_argument, NULL, 'S' },
		{ "prefixes", required_argument, NULL, 'p' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct lopts o = { .dir = "/var/tmp/strata-bench-listing", .keys = 1000000,
			   .batch = 1000, .window = 16, .prefixes = 1000, .repeat = 50 };
	struct ctx x = { 0 };
	char addr[128], host[64], pfx[16];
	const char *colon;
	uint16_t port;
	int opt, ret, st = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'a': o.addr = optarg; break;
		case 's': o.storaged = optarg; break;
		case 'd': o.dir = optarg; break;
		case 'k': o.keys = strtoull(optarg, NULL, 10); break;
		case 'b': o.batch = (unsigned)atoi(optarg); break;
		case 'w': o.window = (unsigned)atoi(optarg); break;
		case 'S': o.step = strtoull(optarg, NULL, 10); break;
		case 'p': o.prefixes = (unsigned)atoi(optarg); break;
		case 'r': o.repeat = (unsigned)atoi(optarg); break;
		case 'o':
			if (bench_set_output(optarg) < 0) {
				perror(optarg);
				return 1;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: goto out_usage;
		}
	}
	if (!o.keys || !o.batch || o.batch > STO_LISTING_MAX_BATCH || !o.window ||
	    o.window > 64 || !o.prefixes || o.prefixes > 10000 || !o.repeat)
		goto out_usage;
	if (!o.step)
		o.step = o.keys / 10 ? o.keys / 10 : o.keys;
	signal(SIGPIPE, SIG_IGN);
	if (o.addr) {
		snprintf(addr, sizeof(addr), "%s", o.addr);
	} else if ((ret = bench_node_start(o.storaged, o.dir, addr, sizeof(addr))) < 0) {
		fprintf(stderr, "strata-bench listing: starting the node: %s\n", strerror(-ret));
		return 1;
	}
	colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		goto out_usage;
	memcpy(host, addr, colon - addr);
	host[colon - addr] = 0;
	port = (uint16_t)atoi(colon + 1);
	x.loop = uv_default_loop();
	x.o = &o;
	/* A fresh listing per run, so a reused node does not mix runs. */
	x.id.part = 1;
	{
		uint64_t now = strata_wall_ns();

		memcpy(x.id.id, "bench-listing", 13);
		memcpy(x.id.id + 8, &now, 8);
	}
	ret = sto_client_connect(x.loop, host, port, on_connect, &st, &x.c);
	if (ret == 0) {
		while (st == 1)
			uv_run(x.loop, UV_RUN_ONCE);
		ret = st;
	}
	if (ret < 0) {
		fprintf(stderr, "strata-bench listing: connect %s: %s\n", addr, sto_strerror(ret));
		goto out;
	}
	ret = phase_insert(&x);
	if (ret == 0)
		ret = phase_walk(&x, "first-1000", NULL, NULL, true);
	if (ret == 0)
		ret = phase_walk(&x, "full", NULL, NULL, false);
	if (ret == 0)
		ret = phase_walk(&x, "delimiter", NULL, "/", false);
	snprintf(pfx, sizeof(pfx), "d%04u/", o.prefixes / 2);
	if (ret == 0)
		ret = phase_walk(&x, "prefix", pfx, "/", false);
	if (ret < 0)
		fprintf(stderr, "strata-bench listing: %s\n", sto_strerror(ret));
out:
	if (x.c)
		sto_client_close(x.c);
	uv_run(x.loop, UV_RUN_DEFAULT);
	bench_hist_free(&x.hist);
	bench_node_stop();
	return ret < 0 ? 1 : 0;

out_usage:
	usage(stderr);
	return 2;
}
