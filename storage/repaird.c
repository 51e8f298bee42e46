/* strata-repaird: the repair daemon, one beside each storage node.
 *
 *   strata-repaird --node-id HOST:PORT --rings DIR [--status FILE]
 *                  [--max-mbps N] [--max-ops N] [--parallel N] [--inflight N]
 *                  [--interval S] [--max-fragment N] [--once] [-v]
 *
 * Makes the node's placements whole (storage/repair.h, docs/durability.md),
 * pass after pass. --check: one pass that only counts. --once: one pass, then exit 0 when it was clean (nothing
 * to repair, every node answered), 1 otherwise; the pass's counts go to
 * stdout as JSON. SIGTERM/SIGINT: stop, let running requests end, exit 0.
 */
#include "repair.h"

#include "common.h"
#include "ring.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A ring file as last seen: an installed ring is renamed into place, so a
 * new one shows as another inode (or size or mtime). */
struct watched {
	char *path;
	struct stat st;
};

struct daemon {
	uv_loop_t *loop;
	struct repair *r;
	uv_signal_t sigterm, sigint;
	uv_timer_t watch;
	struct watched w[REPAIR_MAX_RINGS];
	unsigned nw;
	bool stopping;
};

static struct daemon *the_daemon;	/* add_ring records the watched files */

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-repaird --node-id HOST:PORT --rings DIR [options]\n"
"  --node-id HOST:PORT  the storage node this daemon repairs (as the rings name it)\n"
"  --rings DIR          every *.ring in DIR (or --ring FILE, repeatable): one replica\n"
"                       ring and EC rings of distinct policy indexes (at most %d)\n"
"  --status FILE        progress and ETA as JSON, rewritten every second\n"
"  --max-mbps N         repair bytes read + written per second, MB (default 0 = no cap)\n"
"  --max-ops N          repair requests per second (default 0 = no cap)\n"
"  --parallel N         partitions compared at once (default 4)\n"
"  --inflight N         repairs at once (default 16)\n"
"  --interval S         seconds between passes (default 30)\n"
"  --max-fragment N     skip (and count as failed) larger fragments (default 256M)\n"
"  --once               one pass; exit 0 if it was clean, 1 if not\n"
"  --check              --once, but only count (and log) what it would repair\n"
"  -v, --verbose        debug logging\n", REPAIR_MAX_RINGS);
}

static int parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno || end == s || *end || *out < 0 ? -EINVAL : 0;
}

/* A rebalance under way when the daemon (re)starts: `strata-admin ring push`
 * keeps the replaced ring as FILE.prev until the movement is done. */
static void load_prev(struct repair_cfg *cfg, const char *path, const struct ring *cur)
{
	char prev[4096];
	struct ring *p;
	int ret;

	snprintf(prev, sizeof(prev), "%s.prev", path);
	if (access(prev, F_OK) < 0)
		return;
	ret = ring_load(prev, &p);
	if (ret < 0) {
		log_warn("ring %s: %s (not used as the previous placement)", prev,
			 ring_strerror(ret));
		return;
	}
	ret = ring_check_successor(p, cur);
	if (ret < 0) {
		/* an old .prev left from a finished rebalance: not a placement */
		log_info("ring %s: %s (not used as the previous placement)", prev,
			 ring_strerror(ret));
		ring_free(p);
		return;
	}
	log_info("ring %s: v%llu, the placement before v%llu", prev,
		 (unsigned long long)ring_version(p), (unsigned long long)ring_version(cur));
	cfg->prev[cfg->nrings] = p;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Once a second: a ring file that changed is loaded and handed to the
 * engine, which refuses a stale or foreign one (logged once per change). */
static void on_watch(uv_timer_t *t)
{
	struct daemon *d = t->data;

	for (unsigned i = 0; i < d->nw; i++) {
		struct watched *w = &d->w[i];
		struct stat st;
		struct ring *r;
		int ret;

		if (stat(w->path, &st) < 0 || same_file(&st, &w->st))
			continue;
		/* logged once per change; an operator's cp still under way
		 * changes the file again and is looked at again then */
		w->st = st;
		ret = ring_load(w->path, &r);
		if (ret < 0) {
			log_warn("ring %s changed but does not load: %s (keeping the "
				 "ring in use)", w->path, ring_strerror(ret));
			continue;
		}
		ret = repair_set_ring(d->r, r);
		if (ret < 0) {
			log_err("ring %s v%llu refused: %s", w->path,
				(unsigned long long)ring_version(r), ring_strerror(ret));
			ring_free(r);
			continue;
		}
		log_info("ring %s: v%llu loaded, in use from the next pass", w->path,
			 (unsigned long long)ring_version(r));
	}
}

static int add_ring(struct repair_cfg *cfg, const char *path)
{
	struct ring *r;
	int ret;

	if (cfg->nrings >= REPAIR_MAX_RINGS) {
		log_err("%s: at most %d rings", path, REPAIR_MAX_RINGS);
		return -E2BIG;
	}
	ret = ring_load(path, &r);
	if (ret < 0) {
		log_err("ring %s: %s", path, ring_strerror(ret));
		return ret;
	}
	if (ring_policy(r)->type == RING_POLICY_EC)
		log_info("ring %u: %s v%llu, EC %u+%u policy %u", cfg->nrings, path,
			 (unsigned long long)ring_version(r), ring_policy(r)->ec_k,
			 ring_policy(r)->ec_m, ring_policy(r)->index);
	else
		log_info("ring %u: %s v%llu, %u replicas", cfg->nrings, path,
			 (unsigned long long)ring_version(r), ring_policy(r)->replicas);
	load_prev(cfg, path, r);
	if (the_daemon && the_daemon->nw < REPAIR_MAX_RINGS) {
		struct watched *w = &the_daemon->w[the_daemon->nw++];

		w->path = strdup(path);
		if (stat(path, &w->st) < 0)
			memset(&w->st, 0, sizeof(w->st));
	}
	cfg->rings[cfg->nrings++] = r;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_ring_dir(struct repair_cfg *cfg, const char *dir)
{
	char *names[64];
	unsigned n = 0;
	struct dirent *de;
	DIR *d = opendir(dir);
	int ret = 0;

	if (!d) {
		log_err("rings %s: %s", dir, strerror(errno));
		return -errno;
	}
	while ((de = readdir(d)) && n < ARRAY_SIZE(names)) {
		size_t len = strlen(de->d_name);

		if (len > 5 && !strcmp(de->d_name + len - 5, ".ring") && de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (unsigned i = 0; i < n; i++) {
		char path[4096];

		if (!ret && names[i]) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			ret = add_ring(cfg, path);
		}
		free(names[i]);
	}
	if (!ret && n == 0) {
		log_err("rings %s: no *.ring file", dir);
		ret = -ENOENT;
	}
	return ret;
}

static void on_stopped(void *arg)
{
	struct daemon *d = arg;

	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->watch, NULL);
}

static void stop(struct daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	repair_stop(d->r, on_stopped, d);
}

static void on_signal(uv_signal_t *h, int sig)
{
	log_info("signal %d: stopping", sig);
	stop(h->data);
}

static void on_pass_done(void *arg)
{
	stop(arg);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "node-id", required_argument, NULL, 'n' },
		{ "rings", required_argument, NULL, 'R' },
		{ "ring", required_argument, NULL, 'r' },
		{ "status", required_argument, NULL, 's' },
		{ "max-mbps", required_argument, NULL, 'b' },
		{ "max-ops", required_argument, NULL, 'o' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "interval", required_argument, NULL, 'I' },
		{ "max-fragment", required_argument, NULL, 'F' },
		{ "once", no_argument, NULL, '1' },
		{ "check", no_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct repair_cfg cfg = { .interval_s = 30 };
	struct repair_stats st;
	struct daemon d = { 0 };
	uint64_t v;
	int opt, ret = 0;

	strata_log_init("strata-repaird");
	the_daemon = &d;
	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': cfg.node_id = optarg; break;
		case 'R': ret = add_ring_dir(&cfg, optarg); break;
		case 'r': ret = add_ring(&cfg, optarg); break;
		case 's': cfg.status_path = optarg; break;
		case 'b': ret = parse_double(optarg, &cfg.max_mbps); break;
		case 'o': ret = parse_double(optarg, &cfg.max_ops); break;
		case 'p':
		case 'i':
		case 'I':
			ret = strata_parse_size(optarg, &v);
			if (!ret && (v > 100000 || (opt != 'I' && v == 0)))
				ret = -ERANGE;
			if (opt == 'p')
				cfg.parallel = (unsigned)v;
			else if (opt == 'i')
				cfg.inflight = (unsigned)v;
			else
				cfg.interval_s = (unsigned)v;
			break;
		case 'F': ret = strata_parse_size(optarg, &cfg.max_fragment); break;
		case '1': cfg.once = true; break;
		case 'c': cfg.once = cfg.dry_run = true; break;
		case 'v': strata_log_verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (ret < 0) {
			fprintf(stderr, "strata-repaird: option value '%s': %s\n",
				optarg ? optarg : "", -ret < 4096 ? strerror(-ret) :
				ring_strerror(ret));
			goto out_rings;
		}
	}
	if (optind != argc || !cfg.node_id || !cfg.nrings) {
		usage(stderr);
		ret = -EINVAL;
		goto out_rings;
	}
	signal(SIGPIPE, SIG_IGN);
	d.loop = uv_default_loop();
	ret = repair_new(d.loop, &cfg, &d.r);
	if (ret < 0)
		goto out_rings;
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);
	uv_timer_init(d.loop, &d.watch);
	d.watch.data = &d;
	if (!cfg.once)
		uv_timer_start(&d.watch, on_watch, 1000, 1000);
	log_info("repairing %s (%u rings, %.0f MB/s, %.0f ops/s cap; 0 = none)",
		 cfg.node_id, cfg.nrings, cfg.max_mbps, cfg.max_ops);
	repair_start(d.r, cfg.once ? on_pass_done : NULL, &d);
	uv_run(d.loop, UV_RUN_DEFAULT);
	repair_get_stats(d.r, &st);
	if (cfg.once) {
		printf("{\"node\":\"%s\",\"seconds\":%.3f,\"planned\":%llu,\"repaired\":%llu,"
		       "\"bytes_written\":%llu,\"failed\":%llu,\"unrecoverable\":%llu,"
		       "\"unreachable\":%llu,\"handoffs\":%llu,\"listings\":%llu,\"no_ring\":%llu,"
		       "\"clean\":%s}\n", cfg.node_id,
		       st.last_seconds, (unsigned long long)st.last_planned,
		       (unsigned long long)st.last_repaired,
		       (unsigned long long)st.last_bytes_written,
		       (unsigned long long)st.last_failed,
		       (unsigned long long)st.last_unrecoverable,
		       (unsigned long long)st.last_unreachable,
		       (unsigned long long)st.last_handoffs,
		       (unsigned long long)st.last_listings,
		       (unsigned long long)st.last_no_ring,
		       st.last_clean ? "true" : "false");
		ret = st.last_clean && st.pass >= 1 ? 0 : 1;
	}
	repair_free(d.r);
	uv_loop_close(d.loop);
out_rings:
	for (unsigned i = 0; i < cfg.nrings; i++) {
		ring_free(cfg.rings[i]);
		ring_free(cfg.prev[i]);
	}
	for (unsigned i = 0; i < d.nw; i++)
		free(d.w[i].path);
	if (ret < 0)
		return 1;
	return ret;
}
