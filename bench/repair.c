/* strata-bench repair: how fast the repair engine (storage/repair.h) heals.
 *
 * Starts 6 strata-storaged on free loopback ports, builds an EC 4+2 ring
 * over them in memory (part power 6), writes --mib MiB of erasure-coded
 * objects straight to the nodes (fragments of --frag-kib, ISA-L encoded), then
 * per phase wipes nodes' data directories, restarts them empty, and runs one
 * repair engine per wiped node (what strata-repaird does, in this process)
 * until a pass ends; then a --check-style pass must find nothing.
 *
 * Phases: "rebuild-1" (one node lost), "rebuild-2" (two: m = 2, every
 * object down to k fragments). Results: bytes rebuilt, seconds, MB/s per
 * node and in total, and seconds to heal per GiB lost.
 */
#include "internal.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "ec.h"
#include "repair.h"
#include "ring.h"
#include "storage.h"

#ifndef STRATA_STORAGED_PATH
#define STRATA_STORAGED_PATH "strata-storaged"
#endif

#define RB_NODES	6
#define RB_K		4
#define RB_M		2

struct rb_node {
	struct bench_daemon d;
	char dir[3072];
	char addr[64];
	sto_client *c;
};

struct rb {
	const char *storaged, *dir;
	uint64_t mib;
	uint32_t frag;
	unsigned window, parallel, inflight;
	double max_mbps;
	struct rb_node n[RB_NODES];
	struct ring *ring;
	uv_loop_t *loop;
	struct gw_ec *ec;
	/* the write phase */
	uint64_t objects, next, done, failed;
	unsigned outstanding;
	uint8_t *pool;			/* (k + m) * frag bytes per window slot */
};

static int rm_rf(const char *path)
{
	char cmd[4200];

	/* the bench's own scratch folder, named by the caller's --dir */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd) == 0 ? 0 : -EIO;
}

static int node_start(struct rb *b, unsigned i, bool fixed_port)
{
	struct rb_node *n = &b->n[i];
	char hot[3200], cold[3200], pf[3200], port[16];
	const char *argv[] = { b->storaged, "--hot", hot, "--cold", cold, "--port", port,
			       "--port-file", pf, "--reserve-pct", "0", "--index-map-size",
			       "4G", NULL };
	int ret;

	snprintf(hot, sizeof(hot), "%s/hot", n->dir);
	snprintf(cold, sizeof(cold), "%s/cold", n->dir);
	snprintf(pf, sizeof(pf), "%s/port", n->dir);
	mkdir(n->dir, 0755);
	mkdir(hot, 0755);
	mkdir(cold, 0755);
	snprintf(port, sizeof(port), "%u", fixed_port ? n->d.port : 0);
	if ((ret = bench_daemon_start(&n->d, argv, pf, 30)) == 0)
		snprintf(n->addr, sizeof(n->addr), "127.0.0.1:%u", n->d.port);
	return ret;
}

static void node_stop(struct rb_node *n)
{
	bench_daemon_stop(&n->d);
}

static int build_ring(struct rb *b)
{
	struct ring_policy pol = { .type = RING_POLICY_EC, .ec_k = RB_K, .ec_m = RB_M };
	struct ring_builder *rb;
	uint8_t *buf;
	size_t len;
	int ret;

	ret = ring_builder_create(6, &pol, 0, 1, NULL, &rb);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < RB_NODES && !ret; i++) {
		struct ring_dev d = { .region = 1, .zone = i + 1, .weight = 100 };
		uint32_t id;

		snprintf(d.node, sizeof(d.node), "%s", b->n[i].addr);
		snprintf(d.name, sizeof(d.name), "d0");
		ret = ring_builder_add(rb, &d, &id);
	}
	ret = ret ?: ring_builder_rebalance(rb, (uint64_t)time(NULL) / 3600, NULL);
	ret = ret ?: ring_builder_ring_buf(rb, &buf, &len);
	ring_builder_free(rb);
	if (ret < 0)
		return ret;
	ret = ring_load_buf(buf, len, &b->ring);
	free(buf);
	return ret;
}

/* ------------------------------------------------------- the write phase */

struct wobj {
	struct rb *b;
	unsigned slot, pending;
	int err;
	struct iovec iov[RB_K + RB_M];
};

static void connected(sto_client *c, int status, void *arg)
{
	int *st = arg;

	(void)c;
	*st = status < 0 ? status : 1;
}

static int connect_all(struct rb *b)
{
	for (unsigned i = 0; i < RB_NODES; i++) {
		int st = 0, ret;

		ret = sto_client_connect(b->loop, "127.0.0.1", b->n[i].d.port, connected, &st,
					 &b->n[i].c);
		if (ret < 0)
			return ret;
		while (!st)
			uv_run(b->loop, UV_RUN_ONCE);
		if (st < 0)
			return st;
	}
	return 0;
}

static void close_all(struct rb *b)
{
	for (unsigned i = 0; i < RB_NODES; i++)
		if (b->n[i].c) {
			sto_client_close(b->n[i].c);
			b->n[i].c = NULL;
		}
	uv_run(b->loop, UV_RUN_NOWAIT);
}

static void write_next(struct rb *b, unsigned slot);

static void frag_done(void *arg, int status, const struct sto_info *info)
{
	struct wobj *o = arg;
	struct rb *b = o->b;
	unsigned slot = o->slot;

	(void)info;
	if (status < 0)
		o->err = status;
	if (--o->pending)
		return;
	if (o->err)
		b->failed++;
	b->done++;
	b->outstanding--;
	free(o);
	write_next(b, slot);
}

static void write_next(struct rb *b, unsigned slot)
{
	uint8_t *base = b->pool + (size_t)slot * (RB_K + RB_M) * b->frag;
	uint8_t *data[RB_K], *par[RB_M];
	const struct ring_dev *devs[RB_K + RB_M];
	struct sto_key k = { 0 };
	uint64_t o_id, ts = strata_wall_ns();	/* one version: every fragment */
	struct wobj *o;

	if (b->next >= b->objects)
		return;
	o_id = b->next++;
	o = calloc(1, sizeof(*o));
	if (!o) {
		b->failed++;
		b->done++;
		return;
	}
	o->b = b;
	o->slot = slot;
	/* fresh bytes per object (a cheap xorshift over the data fragments) */
	for (unsigned i = 0; i < RB_K; i++) {
		uint64_t *w = (uint64_t *)(base + (size_t)i * b->frag), x = o_id * 0x9e3779b97f4a7c15ull + i + 1;

		for (size_t j = 0; j < b->frag / 8; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			w[j] = x;
		}
		data[i] = base + (size_t)i * b->frag;
	}
	for (unsigned i = 0; i < RB_M; i++)
		par[i] = base + (size_t)(RB_K + i) * b->frag;
	gw_ec_encode(b->ec, b->frag, data, par);
	k.part = (uint32_t)(o_id % ring_parts(b->ring));
	for (unsigned i = 0; i < 8; i++)
		k.name[i] = (uint8_t)(o_id >> (8 * i));
	k.name[15] = 0x5a;
	ring_primaries(b->ring, k.part, devs, RB_K + RB_M);
	b->outstanding++;
	o->pending = RB_K + RB_M;
	for (unsigned i = 0; i < RB_K + RB_M; i++) {
		unsigned node = 0;
		int ret;

		for (unsigned x = 0; x < RB_NODES; x++)
			if (!strcmp(devs[i]->node, b->n[x].addr))
				node = x;
		k.frag = i;
		o->iov[i] = (struct iovec){ base + (size_t)i * b->frag, b->frag };
		ret = sto_put(b->n[node].c, &k, ts, NULL, 0, &o->iov[i], 1,
			      sto_crc32c(0, o->iov[i].iov_base, b->frag), frag_done, o);
		if (ret < 0)
			frag_done(o, ret, NULL);
	}
}

static int write_data(struct rb *b)
{
	int ret = connect_all(b);

	if (ret < 0)
		return ret;
	b->pool = malloc((size_t)b->window * (RB_K + RB_M) * b->frag);
	if (!b->pool)
		return -ENOMEM;
	for (unsigned s = 0; s < b->window; s++)
		write_next(b, s);
	while (b->done < b->objects)
		uv_run(b->loop, UV_RUN_ONCE);
	close_all(b);
	free(b->pool);
	b->pool = NULL;
	return b->failed ? -EIO : 0;
}

/* ------------------------------------------------------------ the heal */

struct heal {
	unsigned running;
};

static void pass_done(void *arg)
{
	struct heal *h = arg;

	h->running--;
}

static void stopped(void *arg)
{
	(void)arg;
}

/* Runs one engine per node in nodes[] (a pass each, at once); returns the
 * bytes they wrote and whether every pass was clean. */
static int heal(struct rb *b, const unsigned *nodes, unsigned n, bool dry,
		struct repair_stats *out)
{
	struct repair *r[RB_NODES] = { 0 };
	struct heal h = { 0 };
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		struct repair_cfg cfg = { .node_id = b->n[nodes[i]].addr, .nrings = 1,
					  .once = true, .dry_run = dry,
					  .parallel = b->parallel, .inflight = b->inflight,
					  .max_mbps = b->max_mbps };

		cfg.rings[0] = b->ring;
		ret = repair_new(b->loop, &cfg, &r[i]);
		if (ret < 0)
			goto out;
	}
	h.running = n;
	for (unsigned i = 0; i < n; i++)
		repair_start(r[i], pass_done, &h);
	while (h.running)
		uv_run(b->loop, UV_RUN_ONCE);
out:
	for (unsigned i = 0; i < n; i++) {
		if (!r[i])
			continue;
		repair_get_stats(r[i], &out[i]);
		repair_stop(r[i], stopped, NULL);
	}
	uv_run(b->loop, UV_RUN_DEFAULT);	/* let them close */
	for (unsigned i = 0; i < n; i++)
		repair_free(r[i]);
	return ret;
}

static int phase(struct rb *b, const char *name, const unsigned *lost, unsigned n)
{
	struct repair_stats st[RB_NODES], chk[RB_NODES];
	uint64_t t0, bytes = 0, planned = 0;
	double secs, load[3] = { 0 };
	json_t *ph, *res, *per;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		char sub[3200];

		node_stop(&b->n[lost[i]]);
		snprintf(sub, sizeof(sub), "%s/hot", b->n[lost[i]].dir);
		rm_rf(sub);
		snprintf(sub, sizeof(sub), "%s/cold", b->n[lost[i]].dir);
		rm_rf(sub);
		ret = node_start(b, lost[i], true);
		if (ret < 0)
			return ret;
	}
	t0 = strata_now_ns();
	ret = heal(b, lost, n, false, st);
	secs = (double)(strata_now_ns() - t0) / 1e9;
	if (ret < 0)
		return ret;
	ret = heal(b, lost, n, true, chk);
	if (ret < 0)
		return ret;
	getloadavg(load, 3);
	ph = bench_phase_new("repair", name);
	json_object_set_new(bench_phase_params(ph), "nodes_lost", json_integer(n));
	json_object_set_new(bench_phase_params(ph), "policy", json_string("ec 4+2"));
	json_object_set_new(bench_phase_params(ph), "frag_bytes", json_integer(b->frag));
	json_object_set_new(bench_phase_params(ph), "objects", json_integer((json_int_t)b->objects));
	json_object_set_new(bench_phase_params(ph), "max_mbps", json_real(b->max_mbps));
	json_object_set_new(bench_phase_params(ph), "parallel", json_integer(b->parallel));
	json_object_set_new(bench_phase_params(ph), "inflight", json_integer(b->inflight));
	res = bench_phase_results(ph);
	per = json_array();
	for (unsigned i = 0; i < n; i++) {
		bytes += st[i].last_bytes_written;
		planned += chk[i].last_planned + chk[i].last_failed + chk[i].last_unrecoverable;
		json_array_append_new(per, json_pack("{s:I, s:f, s:f, s:I}",
			"bytes_rebuilt", (json_int_t)st[i].last_bytes_written,
			"seconds", st[i].last_seconds,
			"mb_per_s", st[i].last_seconds > 0 ?
				(double)st[i].last_bytes_written / 1e6 / st[i].last_seconds : 0.0,
			"failed", (json_int_t)st[i].last_failed));
	}
	json_object_set_new(res, "per_node", per);
	json_object_set_new(res, "bytes_rebuilt", json_integer((json_int_t)bytes));
	json_object_set_new(res, "seconds", json_real(secs));
	json_object_set_new(res, "mb_per_s_total", json_real((double)bytes / 1e6 / secs));
	json_object_set_new(res, "mb_per_s_per_node", json_real((double)bytes / 1e6 / secs / n));
	json_object_set_new(res, "heal_seconds_per_gib_lost",
			    json_real(bytes ? secs * (double)(1ull << 30) / (double)bytes : 0.0));
	json_object_set_new(res, "left_after", json_integer((json_int_t)planned));
	/* what a pass costs with nothing to do: the comparison alone */
	json_object_set_new(res, "check_pass_seconds", json_real(chk[0].last_seconds));
	json_object_set_new(res, "loadavg_1m", json_real(load[0]));
	ret = bench_phase_emit(ph);
	if (planned) {
		fprintf(stderr, "strata-bench repair %s: %llu repairs still needed after the pass\n",
			name, (unsigned long long)planned);
		return -EIO;
	}
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-bench repair [options]\n"
"  --mib N            MiB of EC 4+2 data written (fragments included: N * 1.5 stored; default 96)\n"
"  --frag-kib N       fragment size (default 1024: the gateway's 1 MiB unit)\n"
"  --max-mbps N       the engines' MB/s cap (default 0 = none)\n"
"  --parallel N       partitions compared at once per engine (default 4)\n"
"  --inflight N       repairs at once per engine (default 16)\n"
"  --dir DIR          scratch folder for the 6 nodes (default /var/tmp/strata-bench-repair)\n"
"  --storaged PATH    the node daemon (default: this build's)\n"
"  --out FILE         append the JSON phases to FILE\n");
}

int bench_repair_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mib", required_argument, NULL, 'm' },
		{ "frag-kib", required_argument, NULL, 'f' },
		{ "max-mbps", required_argument, NULL, 'b' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "dir", required_argument, NULL, 'd' },
		{ "storaged", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct rb b = { .storaged = STRATA_STORAGED_PATH, .dir = "/var/tmp/strata-bench-repair",
			.mib = 96, .frag = 1 << 20, .window = 8, .parallel = 4, .inflight = 16 };
	static const unsigned one[] = { 1 }, two[] = { 2, 4 };
	int opt, ret = 0;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm': b.mib = strtoull(optarg, NULL, 0); break;
		case 'f': b.frag = (uint32_t)strtoul(optarg, NULL, 0) << 10; break;
		case 'b': b.max_mbps = strtod(optarg, NULL); break;
		case 'p': b.parallel = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'i': b.inflight = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'd': b.dir = optarg; break;
		case 's': b.storaged = optarg; break;
		case 'o':
			if (bench_set_output(optarg) < 0)
				return 1;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!b.mib || b.frag < 4096 || b.frag % 64 || !b.parallel || !b.inflight) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	strata_log_verbose = getenv("STRATA_VERBOSE") != NULL;
	b.objects = (b.mib << 20) / ((uint64_t)RB_K * b.frag);
	if (!b.objects)
		b.objects = 1;
	rm_rf(b.dir);
	mkdir(b.dir, 0755);
	for (unsigned i = 0; i < RB_NODES && !ret; i++) {
		snprintf(b.n[i].dir, sizeof(b.n[i].dir), "%s/node%u", b.dir, i + 1);
		ret = node_start(&b, i, false);
	}
	b.loop = uv_default_loop();
	ret = ret ?: build_ring(&b);
	ret = ret ?: gw_ec_get(RB_K, RB_M, &b.ec);
	ret = ret ?: write_data(&b);
	ret = ret ?: phase(&b, "rebuild-1", one, 1);
	ret = ret ?: phase(&b, "rebuild-2", two, 2);
	if (ret < 0)
		fprintf(stderr, "strata-bench repair: %s\n", ret <= -5000 && ret > -6000 ?
			ring_strerror(ret) : sto_strerror(ret));
	for (unsigned i = 0; i < RB_NODES; i++)
		node_stop(&b.n[i]);
	gw_ec_put(b.ec);
	ring_free(b.ring);
	uv_loop_close(b.loop);
	rm_rf(b.dir);
	return ret < 0 ? 1 : 0;
}
