/* strata-bench repair: how fast the repair engine (storage/repair.h) heals.
 *
 * Starts 6 strata-storaged on free loopback ports, builds one EC ring per
 * --policies entry over them in memory (part power 6; "4+2,1+2": EC 4+2 of
 * policy index 0 and EC 1+2, three copies, of index 1, sharing the nodes'
 * key space), writes --mib MiB of objects per policy straight to the nodes
 * (fragments of --frag-kib, ISA-L encoded, numbered ring_frag_id), then per
 * phase wipes nodes' data directories, restarts them empty, and runs one
 * repair engine per wiped node with every ring (what strata-repaird does, in
 * this process) until a pass ends. Every fragment the wiped nodes place is
 * then read back and compared with the bytes written, and a --check-style
 * pass must find nothing.
 *
 * Phases: "rebuild-1" (one node lost), "rebuild-2" (two: m = 2, every
 * object down to k fragments). Results: bytes rebuilt, seconds, MB/s per
 * node, per policy and in total, and seconds to heal per GiB lost. With
 * two policies or more, "no-ring": an engine given only the first policy's
 * ring must leave the others' fragments alone (counted as no_ring, nothing
 * planned, every fragment still there).
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
#define RB_MAX_POLS	4

struct rb_node {
	struct bench_daemon d;
	char dir[3072];
	char addr[64];
	sto_client *c;
};

/* One EC policy: its ring (policy index = its place in --policies) and
 * objects [first, first + objects) of the bench's numbering. */
struct rb_pol {
	struct ring_policy pol;
	struct ring_builder *builder;
	struct ring *ring;
	struct ring *prev;		/* the placement before ring (move phase) */
	struct gw_ec *ec;
	uint64_t first, objects;
};

struct rb {
	const char *storaged, *dir;
	uint64_t mib;
	uint32_t frag;
	unsigned window, parallel, inflight;
	double max_mbps;
	struct rb_node n[RB_NODES];
	struct rb_pol p[RB_MAX_POLS];
	unsigned npols;
	uv_loop_t *loop;
	/* the write phase */
	uint64_t objects, next, done, failed;
	unsigned outstanding;
	uint8_t *pool;			/* RB_NODES * frag bytes per window slot */
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

/* The builder's current assignment as a ring. */
static int ring_of(const struct ring_builder *rb, struct ring **out)
{
	uint8_t *buf;
	size_t len;
	int ret = ring_builder_ring_buf(rb, &buf, &len);

	if (ret < 0)
		return ret;
	ret = ring_load_buf(buf, len, out);
	free(buf);
	return ret;
}

static int build_ring(struct rb *b, struct rb_pol *p)
{
	int ret;

	ret = ring_builder_create(6, &p->pol, 0, 1, NULL, &p->builder);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < RB_NODES && !ret; i++) {
		struct ring_dev d = { .region = 1, .zone = i + 1, .weight = 100 };
		uint32_t id;

		snprintf(d.node, sizeof(d.node), "%s", b->n[i].addr);
		snprintf(d.name, sizeof(d.name), "d0");
		ret = ring_builder_add(p->builder, &d, &id);
	}
	ret = ret ?: ring_builder_rebalance(p->builder, (uint64_t)time(NULL) / 3600, NULL);
	ret = ret ?: ring_of(p->builder, &p->ring);
	return ret ?: gw_ec_get(p->pol.ec_k, p->pol.ec_m, &p->ec);
}

/* "4+2,1+2": policy i is EC k+m of index i. */
static int parse_policies(struct rb *b, const char *spec)
{
	const char *s = spec;

	b->npols = 0;
	while (*s) {
		struct rb_pol *p = &b->p[b->npols];
		unsigned k, m;
		int used = 0;

		/* (k = 1 as policy 0 is no valid ring, ring/file.c: refused here
		 * with the usage rather than by the ring builder) */
		if (b->npols >= RB_MAX_POLS || sscanf(s, "%u+%u%n", &k, &m, &used) != 2 ||
		    !k || !m || k + m > RB_NODES || (k == 1 && b->npols == 0))
			return -EINVAL;
		p->pol = (struct ring_policy){ .type = RING_POLICY_EC, .ec_k = k, .ec_m = m,
					       .index = b->npols++ };
		s += used;
		if (*s == ',')
			s++;
		else if (*s)
			return -EINVAL;
	}
	return b->npols ? 0 : -EINVAL;
}

static struct rb_pol *pol_of(struct rb *b, uint64_t o_id)
{
	for (unsigned i = 0; i + 1 < b->npols; i++)
		if (o_id < b->p[i].first + b->p[i].objects)
			return &b->p[i];
	return &b->p[b->npols - 1];
}

/* Object o_id's name and partition in its policy's ring. */
static struct sto_key obj_key(const struct rb_pol *p, uint64_t o_id)
{
	struct sto_key k = { .part = (uint32_t)(o_id % ring_parts(p->ring)) };

	for (unsigned i = 0; i < 8; i++)
		k.name[i] = (uint8_t)(o_id >> (8 * i));
	k.name[14] = (uint8_t)p->pol.index;
	k.name[15] = 0x5a;
	return k;
}

/* Object o_id's k + m fragments into base (frag bytes each): fresh bytes
 * per object (a cheap xorshift over the data fragments), then parity. */
static void obj_frags(const struct rb *b, const struct rb_pol *p, uint64_t o_id, uint8_t *base)
{
	unsigned k = p->pol.ec_k, m = p->pol.ec_m;
	uint8_t *data[GW_EC_MAX_K], *par[GW_EC_MAX_M];

	for (unsigned i = 0; i < k; i++) {
		uint64_t *w = (uint64_t *)(base + (size_t)i * b->frag);
		uint64_t x = o_id * 0x9e3779b97f4a7c15ull + i + 1;

		for (size_t j = 0; j < b->frag / 8; j++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			w[j] = x;
		}
		data[i] = base + (size_t)i * b->frag;
	}
	for (unsigned i = 0; i < m; i++)
		par[i] = base + (size_t)(k + i) * b->frag;
	gw_ec_encode(p->ec, b->frag, data, par);
}

/* The bench's node of placement i of part in ring. */
static unsigned node_of(const struct rb *b, const struct ring *ring, uint32_t part, unsigned i)
{
	const struct ring_dev *devs[RING_MAX_PLACEMENTS];

	ring_primaries(ring, part, devs, ring_placements(ring));
	for (unsigned x = 0; x < RB_NODES; x++)
		if (!strcmp(devs[i]->node, b->n[x].addr))
			return x;
	return 0;
}

/* ------------------------------------------------------- the write phase */

struct wobj {
	struct rb *b;
	unsigned slot, pending;
	int err;
	struct iovec iov[RB_NODES];
};

static void connected(sto_client *c, int status, void *arg)
{
	int *st = arg;

	(void)c;
	*st = status < 0 ? status : 1;
}

static int connect_node(struct rb *b, unsigned i)
{
	int st = 0, ret;

	ret = sto_client_connect(b->loop, "127.0.0.1", b->n[i].d.port, connected, &st,
				 &b->n[i].c);
	if (ret < 0)
		return ret;
	while (!st)
		uv_run(b->loop, UV_RUN_ONCE);
	return st < 0 ? st : 0;
}

static int connect_all(struct rb *b)
{
	for (unsigned i = 0; i < RB_NODES; i++) {
		int ret = connect_node(b, i);

		if (ret < 0)
			return ret;
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
	uint8_t *base = b->pool + (size_t)slot * RB_NODES * b->frag;
	uint64_t o_id, ts = strata_wall_ns();	/* one version: every fragment */
	const struct rb_pol *p;
	struct sto_key k;
	unsigned n;
	struct wobj *o;

	if (b->next >= b->objects)
		return;
	o_id = b->next++;
	p = pol_of(b, o_id);
	n = p->pol.ec_k + p->pol.ec_m;
	o = calloc(1, sizeof(*o));
	if (!o) {
		b->failed++;
		b->done++;
		return;
	}
	o->b = b;
	o->slot = slot;
	obj_frags(b, p, o_id, base);
	k = obj_key(p, o_id);
	b->outstanding++;
	o->pending = n;
	for (unsigned i = 0; i < n; i++) {
		unsigned node = node_of(b, p->ring, k.part, i);
		int ret;

		k.frag = ring_frag_id(&p->pol, i);
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
	b->pool = malloc((size_t)b->window * RB_NODES * b->frag);
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

/* ---------------------------------------------------------- the check */

struct vget {
	uint8_t *buf;
	uint64_t fill, size;
	int status;
	bool done;
};

static void vget_chunk(void *arg, const struct sto_info *info, const void *data, size_t len)
{
	struct vget *g = arg;

	(void)info;
	if (g->fill + len <= g->size)
		memcpy(g->buf + g->fill, data, len);
	g->fill += len;
}

static void vget_done(void *arg, int status, const struct sto_info *info)
{
	struct vget *g = arg;

	(void)info;
	g->status = status;
	g->done = true;
}

/* Every fragment node x places, of every policy, read back from it and
 * compared with the bytes written; bytes[p] += policy p's bytes there. */
static int verify(struct rb *b, unsigned x, const char *phase, uint64_t *bytes)
{
	uint8_t *want = malloc((size_t)RB_NODES * b->frag), *got = malloc(b->frag);
	uint64_t bad = 0;
	int ret = want && got ? connect_node(b, x) : -ENOMEM;

	for (unsigned pi = 0; pi < b->npols && !ret; pi++) {
		struct rb_pol *p = &b->p[pi];

		for (uint64_t o_id = p->first; o_id < p->first + p->objects && !ret; o_id++) {
			struct sto_key k = obj_key(p, o_id);
			bool made = false;

			for (unsigned i = 0; i < p->pol.ec_k + p->pol.ec_m && !ret; i++) {
				struct vget g = { .buf = got, .size = b->frag };

				if (node_of(b, p->ring, k.part, i) != x)
					continue;
				if (!made)
					obj_frags(b, p, o_id, want);
				made = true;
				k.frag = ring_frag_id(&p->pol, i);
				ret = sto_get(b->n[x].c, &k, 0, 0, vget_chunk, vget_done, &g);
				while (!ret && !g.done)
					uv_run(b->loop, UV_RUN_ONCE);
				if (ret < 0)
					break;
				if (g.status < 0 || g.fill != b->frag ||
				    memcmp(got, want + (size_t)i * b->frag, b->frag)) {
					if (bad++ < 5)
						fprintf(stderr, "strata-bench repair %s: node %u part %u "
							"object %llu fragment %u (EC %u+%u policy %u): %s\n",
							phase, x + 1, k.part, (unsigned long long)o_id,
							k.frag, p->pol.ec_k, p->pol.ec_m, p->pol.index,
							g.status < 0 ? sto_strerror(g.status) :
							"not the bytes written");
					continue;
				}
				bytes[pi] += b->frag;
			}
		}
	}
	close_all(b);
	free(want);
	free(got);
	if (!ret && bad) {
		fprintf(stderr, "strata-bench repair %s: %llu fragments on node %u missing or "
			"wrong\n", phase, (unsigned long long)bad, x + 1);
		ret = -EIO;
	}
	return ret;
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

/* Runs one engine per node in nodes[] with the first nrings policies'
 * rings (a pass each, at once); their stats in out[]. */
static int heal(struct rb *b, const unsigned *nodes, unsigned n, unsigned nrings, bool dry,
		struct repair_stats *out)
{
	struct repair *r[RB_NODES] = { 0 };
	struct heal h = { 0 };
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		struct repair_cfg cfg = { .node_id = b->n[nodes[i]].addr, .nrings = nrings,
					  .once = true, .dry_run = dry,
					  .parallel = b->parallel, .inflight = b->inflight,
					  .max_mbps = b->max_mbps };

		for (unsigned g = 0; g < nrings; g++) {
			cfg.rings[g] = b->p[g].ring;
			cfg.prev[g] = b->p[g].prev;
		}
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

static void policy_name(const struct rb_pol *p, char *buf, size_t len)
{
	snprintf(buf, len, "ec %u+%u", p->pol.ec_k, p->pol.ec_m);
}

static int phase(struct rb *b, const char *name, const unsigned *lost, unsigned n)
{
	struct repair_stats st[RB_NODES], chk[RB_NODES];
	uint64_t t0, bytes = 0, planned = 0, pbytes[RB_MAX_POLS] = { 0 };
	double secs, load[3] = { 0 };
	json_t *ph, *res, *per, *pols;
	char pname[32];
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
	ret = heal(b, lost, n, b->npols, false, st);
	secs = (double)(strata_now_ns() - t0) / 1e9;
	if (ret < 0)
		return ret;
	getloadavg(load, 3);
	for (unsigned i = 0; i < n && !ret; i++)
		ret = verify(b, lost[i], name, pbytes);
	if (ret < 0)
		return ret;
	ret = heal(b, lost, n, b->npols, true, chk);
	if (ret < 0)
		return ret;
	ph = bench_phase_new("repair", name);
	json_object_set_new(bench_phase_params(ph), "nodes_lost", json_integer(n));
	pols = json_array();
	for (unsigned i = 0; i < b->npols; i++) {
		policy_name(&b->p[i], pname, sizeof(pname));
		json_array_append_new(pols, json_string(pname));
	}
	json_object_set_new(bench_phase_params(ph), "policies", pols);
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
	/* Per policy: its fragments on the wiped nodes (all rebuilt, checked
	 * byte for byte) over the phase's time, which the policies shared. */
	pols = json_array();
	for (unsigned i = 0; i < b->npols; i++) {
		policy_name(&b->p[i], pname, sizeof(pname));
		json_array_append_new(pols, json_pack("{s:s, s:i, s:I, s:f}", "policy", pname,
			"index", b->p[i].pol.index, "bytes_rebuilt", (json_int_t)pbytes[i],
			"mb_per_s", (double)pbytes[i] / 1e6 / secs));
	}
	json_object_set_new(res, "per_policy", pols);
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
	for (unsigned i = 0; i < b->npols; i++)
		bytes -= pbytes[i];
	if (bytes) {	/* written more (or less) than the wiped nodes place */
		fprintf(stderr, "strata-bench repair %s: the engines wrote %lld bytes more than "
			"the lost fragments\n", name, (long long)bytes);
		return -EIO;
	}
	return ret;
}

/* An engine with only the first policy's ring, on a node holding every
 * policy's fragments: it must leave the others alone (no_ring counted, the
 * pass not clean, nothing planned), and they must all still be there. */
static int phase_no_ring(struct rb *b)
{
	static const unsigned node[] = { 0 };
	uint64_t pbytes[RB_MAX_POLS] = { 0 };
	struct repair_stats st;
	json_t *ph, *res;
	int ret;

	ret = heal(b, node, 1, 1, false, &st);
	ret = ret ?: verify(b, 0, "no-ring", pbytes);
	if (ret < 0)
		return ret;
	ph = bench_phase_new("repair", "no-ring");
	res = bench_phase_results(ph);
	json_object_set_new(res, "no_ring", json_integer((json_int_t)st.last_no_ring));
	json_object_set_new(res, "planned", json_integer((json_int_t)st.last_planned));
	json_object_set_new(res, "clean", json_boolean(st.last_clean));
	ret = bench_phase_emit(ph);
	if (!st.last_no_ring || st.last_planned || st.last_repaired || st.last_clean) {
		fprintf(stderr, "strata-bench repair no-ring: an engine without policy 1's ring "
			"counted %llu such names, planned %llu, repaired %llu, clean %d\n",
			(unsigned long long)st.last_no_ring, (unsigned long long)st.last_planned,
			(unsigned long long)st.last_repaired, st.last_clean);
		return -EIO;
	}
	return ret;
}

/* Is fragment frag of o_id gone from node x (GET: no such fragment)? */
static int absent(struct rb *b, unsigned x, struct sto_key *k, bool *gone)
{
	uint8_t *buf = malloc(b->frag);
	struct vget g = { .buf = buf, .size = b->frag };
	int ret = buf ? sto_get(b->n[x].c, k, 0, 0, vget_chunk, vget_done, &g) : -ENOMEM;

	while (!ret && !g.done)
		uv_run(b->loop, UV_RUN_ONCE);
	free(buf);
	*gone = g.status == -ENOENT;
	return ret < 0 ? ret : g.status == 0 || g.status == -ENOENT ? 0 : g.status;
}

/* A rebalance of the last policy's ring alone: node 6 drained (weight 0).
 * Every node's engine runs with every ring and that ring's previous
 * placement, pass after pass until all are clean: node 6 pushes each moved
 * fragment to its new holder, which awaits the push instead of rebuilding
 * it, then purges its copy. Every node must then hold what the new ring
 * places there, byte for byte, node 6 none of the policy's fragments, and
 * each moved placement must have been pushed once (nothing rebuilt). */
static int phase_move(struct rb *b)
{
	static const unsigned all[] = { 0, 1, 2, 3, 4, 5 };
	struct rb_pol *p = &b->p[b->npols - 1];
	struct repair_stats st[RB_NODES];
	uint64_t moved = 0, pushed = 0, purged = 0, rebuilt = 0, copied = 0, left = 0, t0;
	uint64_t pbytes[RB_MAX_POLS] = { 0 };
	unsigned rounds = 0;
	bool clean = false;
	double secs;
	json_t *ph, *res;
	int ret = -ENOENT;

	for (unsigned i = 0; i < ring_builder_dev_count(p->builder); i++) {
		const struct ring_dev *d = ring_builder_dev_at(p->builder, i);

		if (!strcmp(d->node, b->n[RB_NODES - 1].addr))
			ret = ring_builder_set_weight(p->builder, d->id, 0);
	}
	ret = ret ?: ring_builder_rebalance(p->builder, (uint64_t)time(NULL) / 3600 + 1000, NULL);
	p->prev = p->ring;
	p->ring = NULL;
	ret = ret ?: ring_of(p->builder, &p->ring);
	if (ret < 0)
		return ret;
	for (uint64_t o_id = p->first; o_id < p->first + p->objects; o_id++)
		for (unsigned i = 0; i < p->pol.ec_k + p->pol.ec_m; i++)
			moved += node_of(b, p->prev, obj_key(p, o_id).part, i) !=
				 node_of(b, p->ring, obj_key(p, o_id).part, i);
	t0 = strata_now_ns();
	while (!clean && rounds++ < 8 && !ret) {
		ret = heal(b, all, RB_NODES, b->npols, false, st);
		clean = true;
		for (unsigned x = 0; x < RB_NODES && !ret; x++) {
			/* (each engine ran this one pass: its totals are the pass's) */
			pushed += st[x].total_pushed;
			clean &= st[x].last_clean;
			rebuilt += st[x].total_rebuilt;
			copied += st[x].total_copied;
			purged += st[x].total_purged;
		}
	}
	secs = (double)(strata_now_ns() - t0) / 1e9;
	for (unsigned x = 0; x < RB_NODES && !ret; x++)
		ret = verify(b, x, "move", pbytes);
	ret = ret ?: connect_node(b, RB_NODES - 1);
	for (uint64_t o_id = p->first; o_id < p->first + p->objects && !ret; o_id++) {
		struct sto_key k = obj_key(p, o_id);

		for (unsigned i = 0; i < p->pol.ec_k + p->pol.ec_m && !ret; i++) {
			bool gone;

			k.frag = ring_frag_id(&p->pol, i);
			ret = absent(b, RB_NODES - 1, &k, &gone);
			left += !gone;
		}
	}
	close_all(b);
	if (ret < 0)
		return ret;
	ph = bench_phase_new("repair", "move");
	json_object_set_new(bench_phase_params(ph), "policy_index", json_integer(p->pol.index));
	res = bench_phase_results(ph);
	json_object_set_new(res, "placements_moved", json_integer((json_int_t)moved));
	json_object_set_new(res, "pushed", json_integer((json_int_t)pushed));
	json_object_set_new(res, "purged", json_integer((json_int_t)purged));
	json_object_set_new(res, "rebuilt", json_integer((json_int_t)rebuilt));
	json_object_set_new(res, "copied", json_integer((json_int_t)copied));
	json_object_set_new(res, "passes", json_integer(rounds));
	json_object_set_new(res, "seconds", json_real(secs));
	json_object_set_new(res, "left_on_drained", json_integer((json_int_t)left));
	ret = bench_phase_emit(ph);
	if (!clean || !moved || pushed != moved || purged != moved || rebuilt || copied || left) {
		fprintf(stderr, "strata-bench repair move: %llu placements moved, %llu pushed, "
			"%llu purged, %llu rebuilt, %llu copied, %llu left on the drained node, "
			"clean after %u passes: %s\n", (unsigned long long)moved,
			(unsigned long long)pushed, (unsigned long long)purged,
			(unsigned long long)rebuilt, (unsigned long long)copied,
			(unsigned long long)left, rounds, clean ? "yes" : "no");
		return -EIO;
	}
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-bench repair [options]\n"
"  --policies K+M,..  one EC ring per entry, policy index = position (default 4+2;\n"
"                     e.g. 4+2,1+2: EC 4+2 and three copies, sharing the nodes)\n"
"  --mib N            MiB of data written per policy (N * (k+m)/k stored; default 96)\n"
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
		{ "policies", required_argument, NULL, 'P' },
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
		case 'P':
			if (parse_policies(&b, optarg) < 0) {
				fprintf(stderr, "strata-bench repair: --policies '%s': K+M[,K+M...], "
					"at most %d, k + m <= %d, the first with k > 1\n", optarg,
					RB_MAX_POLS, RB_NODES);
				return 2;
			}
			break;
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
	if (!b.npols)
		parse_policies(&b, "4+2");
	for (unsigned i = 0; i < b.npols; i++) {
		struct rb_pol *p = &b.p[i];

		p->first = b.objects;
		p->objects = (b.mib << 20) / ((uint64_t)p->pol.ec_k * b.frag);
		if (!p->objects)
			p->objects = 1;
		b.objects += p->objects;
	}
	rm_rf(b.dir);
	mkdir(b.dir, 0755);
	for (unsigned i = 0; i < RB_NODES && !ret; i++) {
		snprintf(b.n[i].dir, sizeof(b.n[i].dir), "%s/node%u", b.dir, i + 1);
		ret = node_start(&b, i, false);
	}
	b.loop = uv_default_loop();
	for (unsigned i = 0; i < b.npols && !ret; i++)
		ret = build_ring(&b, &b.p[i]);
	ret = ret ?: write_data(&b);
	ret = ret ?: phase(&b, "rebuild-1", one, 1);
	ret = ret ?: phase(&b, "rebuild-2", two, 2);
	if (b.npols > 1) {
		ret = ret ?: phase_no_ring(&b);
		ret = ret ?: phase_move(&b);
	}
	if (ret < 0)
		fprintf(stderr, "strata-bench repair: %s\n", ret <= -5000 && ret > -6000 ?
			ring_strerror(ret) : sto_strerror(ret));
	for (unsigned i = 0; i < RB_NODES; i++)
		node_stop(&b.n[i]);
	for (unsigned i = 0; i < b.npols; i++) {
		gw_ec_put(b.p[i].ec);
		ring_free(b.p[i].ring);
		ring_free(b.p[i].prev);
		ring_builder_free(b.p[i].builder);
	}
	uv_loop_close(b.loop);
	rm_rf(b.dir);
	return ret < 0 ? 1 : 0;
}
