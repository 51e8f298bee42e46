/* strata-bench node: durable PUT and GET of fixed-size fragments against one
 * storage node over loopback RPC, at several concurrencies.
 *
 * Starts strata-storaged on a directory (or targets --addr), then for each
 * size and concurrency runs a PUT phase (new keys, every PUT acknowledged
 * only once durable) and a GET phase (random keys of that PUT phase), each
 * for --seconds. One JSON object per phase: ops/s, MB/s, latency
 * percentiles, client and node CPU, and the node's fsync and group-commit
 * counts (how much the batching shared).
 */
#include "fragload.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "storage.h"

#ifndef STRATA_STORAGED_PATH
#define STRATA_STORAGED_PATH "strata-storaged"
#endif

#define MAX_LIST	8
#define MAX_NODE_ARGS	16

struct node_opts {
	const char *addr;		/* host:port, or NULL to start a node */
	const char *storaged;
	const char *dir;
	uint64_t sizes[MAX_LIST];
	unsigned nsizes;
	unsigned conc[MAX_LIST];
	unsigned nconc;
	double seconds;
	unsigned conns;
	uint64_t max_ops;
	bool puts_only;			/* no GET phases */
	const char *node_args[MAX_NODE_ARGS];	/* extra strata-storaged flags */
	unsigned nnode_args;
};

static int parse_addr(const char *a, char *host, size_t hlen, uint16_t *port)
{
	const char *colon = strrchr(a, ':');

	if (!colon || (size_t)(colon - a) >= hlen)
		return -EINVAL;
	memcpy(host, a, colon - a);
	host[colon - a] = 0;
	*port = (uint16_t)atoi(colon + 1);
	return *port ? 0 : -EINVAL;
}

/* --------------------------------------------------------------- node */

static struct bench_daemon node;

static double proc_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int start_node(const struct node_opts *o, char *addr, size_t len)
{
	char hot[4096], port_file[4096];
	const char *argv[8 + MAX_NODE_ARGS];
	unsigned n = 0;
	int ret;

	snprintf(hot, sizeof(hot), "%s/hot", o->dir);
	snprintf(port_file, sizeof(port_file), "%s/port", o->dir);
	mkdir(o->dir, 0755);
	argv[n++] = o->storaged;
	argv[n++] = "--hot";
	argv[n++] = hot;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--port-file";
	argv[n++] = port_file;
	for (unsigned i = 0; i < o->nnode_args; i++)
		argv[n++] = o->node_args[i];
	argv[n] = NULL;
	if ((ret = bench_daemon_start(&node, argv, port_file, 20)) == 0)
		snprintf(addr, len, "127.0.0.1:%u", node.port);
	return ret;
}

static void stop_node(void)
{
	bench_daemon_stop(&node);
}

/* ------------------------------------------------------------- phases */

static int run_phase(const struct node_opts *o, const char *addr, bool put,
		     uint64_t size, unsigned conc, uint32_t part, uint64_t nkeys,
		     uint64_t *keys_written)
{
	struct fload f = { .loop = uv_default_loop(), .keytag = 0x5a };
	struct sto_stat s0 = { 0 }, s1 = { 0 };
	double cpu0, ncpu0, secs;
	char name[64], host[64];
	uint16_t port;
	json_t *ph, *p, *res;
	int ret;

	fload_reset(&f, put, part, nkeys, STO_TIER_STANDARD);
	f.max_ops = o->max_ops;
	if ((ret = fload_payload(&f, size)) < 0)
		return ret;
	ret = parse_addr(addr, host, sizeof(host), &port);
	if (ret == 0)
		ret = fload_connect(&f, host, port, conc < o->conns ? conc : o->conns);
	if (ret < 0) {
		fprintf(stderr, "strata-bench node: connect %s: %s\n", addr, sto_strerror(ret));
		goto out;
	}
	fload_stat(&f, &s0);
	cpu0 = bench_cpu_seconds();
	ncpu0 = proc_cpu(node.pid);
	secs = fload_drive(&f, conc, o->seconds, false);
	fload_stat(&f, &s1);

	snprintf(name, sizeof(name), "%s-%llu-c%u", put ? "put" : "get",
		 (unsigned long long)size, conc);
	ph = bench_phase_new("node", name);
	p = bench_phase_params(ph);
	json_object_set_new(p, "op", json_string(put ? "put" : "get"));
	json_object_set_new(p, "size", json_integer((json_int_t)size));
	json_object_set_new(p, "concurrency", json_integer(conc));
	json_object_set_new(p, "connections", json_integer(f.nconns));
	json_object_set_new(p, "durable", json_true());
	json_object_set_new(p, "addr", json_string(addr));
	json_object_set_new(p, "dir", o->addr ? json_null() : json_string(o->dir));
	res = bench_phase_results(ph);
	json_object_set_new(res, "ops", json_integer((json_int_t)f.ops));
	json_object_set_new(res, "errors", json_integer((json_int_t)f.errors));
	if (f.errors)
		json_object_set_new(res, "first_error", json_string(sto_strerror(f.first_error)));
	json_object_set_new(res, "seconds", json_real(secs));
	json_object_set_new(res, "ops_per_s", json_real(secs > 0 ? f.ops / secs : 0));
	json_object_set_new(res, "mb_per_s", json_real(secs > 0 ? (double)f.bytes / secs / 1e6 : 0));
	bench_hist_to_json(&f.hist, res);
	json_object_set_new(res, "client_cpu_s", json_real(bench_cpu_seconds() - cpu0));
	if (node.pid > 0)
		json_object_set_new(res, "node_cpu_s", json_real(proc_cpu(node.pid) - ncpu0));
	if (put) {
		uint64_t commits = s1.group_commits - s0.group_commits;
		uint64_t fsyncs = s1.fsyncs - s0.fsyncs;

		json_object_set_new(res, "node_group_commits", json_integer((json_int_t)commits));
		json_object_set_new(res, "node_fsyncs", json_integer((json_int_t)fsyncs));
		json_object_set_new(res, "puts_per_commit",
				    json_real(commits ? (double)f.ops / commits : 0));
		json_object_set_new(res, "node_fsync_avg_us",
				    json_real(fsyncs ? (double)(s1.fsync_us - s0.fsync_us) / fsyncs : 0));
		json_object_set_new(res, "node_commit_avg_us",
				    json_real(commits ? (double)(s1.commit_us - s0.commit_us) / commits : 0));
	}
	bench_phase_emit(ph);
	if (keys_written)
		*keys_written = f.next_key;
	if (f.errors)
		fprintf(stderr, "strata-bench node: %s: %llu errors, first: %s\n", name,
			(unsigned long long)f.errors, sto_strerror(f.first_error));
	ret = 0;
out:
	fload_free(&f);
	return ret;
}

static int parse_list_u64(char *s, uint64_t *out, unsigned *n)
{
	*n = 0;
	for (char *t = strtok(s, ","); t; t = strtok(NULL, ",")) {
		char *end;
		uint64_t v = strtoull(t, &end, 10);

		if (*end == 'k' || *end == 'K')
			v <<= 10, end++;
		else if (*end == 'm' || *end == 'M')
			v <<= 20, end++;
		if (*end || *n >= MAX_LIST)
			return -EINVAL;
		out[(*n)++] = v;
	}
	return *n ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-bench node [options]\n"
"  --addr HOST:PORT   benchmark a running node instead of starting one\n"
"  --storaged PATH    the daemon to start (default: this build's)\n"
"  --dir DIR          its data directory (default /var/tmp/strata-bench-node)\n"
"  --sizes LIST       fragment sizes (default 4k,64k,1m)\n"
"  --conc LIST        requests in flight (default 1,16,64)\n"
"  --conns N          connections at most (default 4)\n"
"  --seconds S        per phase (default 5)\n"
"  --max-ops N        per phase, at most\n"
"  --puts-only        skip the GET phases\n"
"  --node-arg ARG     pass ARG to the started strata-storaged (repeatable)\n"
"  --out FILE         append JSON phases to FILE\n");
}

int bench_node_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "storaged", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },
		{ "sizes", required_argument, NULL, 'S' },
		{ "conc", required_argument, NULL, 'c' },
		{ "conns", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 't' },
		{ "max-ops", required_argument, NULL, 'm' },
		{ "out", required_argument, NULL, 'o' },
		{ "puts-only", no_argument, NULL, 'P' },
		{ "node-arg", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct node_opts o = {
		.storaged = STRATA_STORAGED_PATH, .dir = "/var/tmp/strata-bench-node",
		.sizes = { 4096, 65536, 1 << 20 }, .nsizes = 3,
		.conc = { 1, 16, 64 }, .nconc = 3, .seconds = 5, .conns = 4,
	};
	char addr[128];
	uint64_t conc[MAX_LIST];
	int opt, ret = 0;
	uint32_t part = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'a': o.addr = optarg; break;
		case 's': o.storaged = optarg; break;
		case 'd': o.dir = optarg; break;
		case 'S':
			if (parse_list_u64(optarg, o.sizes, &o.nsizes) < 0)
				goto out_usage;
			break;
		case 'c':
			if (parse_list_u64(optarg, conc, &o.nconc) < 0)
				goto out_usage;
			for (unsigned i = 0; i < o.nconc; i++)
				o.conc[i] = (unsigned)conc[i];
			break;
		case 'n':
			o.conns = (unsigned)atoi(optarg);
			if (o.conns < 1 || o.conns > FLOAD_MAX_CONNS)
				goto out_usage;
			break;
		case 't': o.seconds = atof(optarg); break;
		case 'm': o.max_ops = strtoull(optarg, NULL, 10); break;
		case 'P': o.puts_only = true; break;
		case 'N':
			if (o.nnode_args >= MAX_NODE_ARGS)
				goto out_usage;
			o.node_args[o.nnode_args++] = optarg;
			break;
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
	signal(SIGPIPE, SIG_IGN);
	if (o.addr) {
		snprintf(addr, sizeof(addr), "%s", o.addr);
	} else if ((ret = start_node(&o, addr, sizeof(addr))) < 0) {
		fprintf(stderr, "strata-bench node: starting %s: %s\n", o.storaged,
			strerror(-ret));
		return 1;
	}
	/* Part numbers keep phases' keys apart on a reused node. */
	part = (uint32_t)(strata_wall_ns() / 1000000000ull) & 0xffff0;
	for (unsigned i = 0; i < o.nsizes && ret == 0; i++) {
		for (unsigned j = 0; j < o.nconc && ret == 0; j++) {
			uint64_t written = 0;

			part++;
			ret = run_phase(&o, addr, true, o.sizes[i], o.conc[j], part, 0, &written);
			if (ret == 0 && written && !o.puts_only)
				ret = run_phase(&o, addr, false, o.sizes[i], o.conc[j],
						part, written, NULL);
		}
	}
	stop_node();
	return ret < 0 ? 1 : 0;

out_usage:
	usage(stderr);
	return 2;
}

/* For the other subcommands that need a node (bench/listing.c). */
int bench_node_start(const char *storaged, const char *dir, char *addr, size_t len)
{
	struct node_opts o = { .storaged = storaged ? storaged : STRATA_STORAGED_PATH,
			       .dir = dir };

	return start_node(&o, addr, len);
}

void bench_node_stop(void)
{
	stop_node();
}

double bench_node_cpu(void)
{
	return proc_cpu(node.pid);
}
