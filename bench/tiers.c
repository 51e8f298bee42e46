/* strata-bench tiers: reads from hot vs cold media, the hot->cold mover's
 * throughput, and foreground read latency with the mover on vs off, on one
 * storage node over loopback RPC.
 *
 *   strata-bench tiers --hot DIR --cold DIR [--objects N] [--size BYTES]
 *                      [--conc C] [--seconds S] [--rate-mb M]
 *
 * Starts strata-storaged with the mover off and loads three sets of N
 * fragments (the third N/4): STANDARD (lands hot), COLD class (lands cold)
 * and PIN_HOT (the foreground set). Phases: load; read-hot and read-cold
 * (random GETs of each set for --seconds, the volume files' page cache
 * dropped first with POSIX_FADV_DONTNEED, which tmpfs ignores); fg-mover-off
 * (GETs of the pinned set). Then the node restarts with --cold-after 1 and
 * the mover on (capped by --rate-mb): fg-mover-on runs the same GETs for as
 * long as the mover takes to move the STANDARD set, and "mover" reports its
 * throughput from the node's STAT counters; fg-mover-idle then runs the same
 * GETs as long again with nothing left to move (the adjacent A/B), and
 * fg-p99 puts the three foreground p99s and their ratios side by side.
 * JSON per phase.
 */
#include "fragload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#define CONNS		4
#define PART_STD	1
#define PART_COLD	2
#define PART_PIN	3

struct topts {
	const char *hot, *cold, *storaged;
	uint64_t objects, size, rate_mb;
	unsigned conc;
	double seconds;
};

static struct bench_daemon node;

static void mkdir_p(const char *path)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(buf, 0755);
			*p = '/';
		}
	mkdir(buf, 0755);
}

static int node_start(const struct topts *o, const char *const *extra)
{
	char port_file[4096];
	const char *argv[32];
	int argc = 0;

	mkdir_p(o->hot);
	mkdir_p(o->cold);
	snprintf(port_file, sizeof(port_file), "%s/bench.port", o->hot);
	argv[argc++] = o->storaged;
	argv[argc++] = "--hot";
	argv[argc++] = o->hot;
	argv[argc++] = "--cold";
	argv[argc++] = o->cold;
	argv[argc++] = "--port";
	argv[argc++] = "0";
	argv[argc++] = "--port-file";
	argv[argc++] = port_file;
	while (*extra && argc < 30)
		argv[argc++] = *extra++;
	argv[argc] = NULL;
	return bench_daemon_start(&node, argv, port_file, 30);
}

static void node_stop(void)
{
	bench_daemon_stop(&node);
}

/* Drops the clean page cache of a directory's volume files (not tmpfs). */
static void drop_cache(const char *dir)
{
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd;

		if (strncmp(de->d_name, "vol-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	closedir(d);
}

static void emit(const struct topts *o, const char *name, struct fload *r, double secs,
		 json_t *extra)
{
	json_t *ph = bench_phase_new("tiers", name), *p, *res;
	const char *k;
	json_t *v;

	p = bench_phase_params(ph);
	json_object_set_new(p, "hot", json_string(o->hot));
	json_object_set_new(p, "cold", json_string(o->cold));
	json_object_set_new(p, "size", json_integer((json_int_t)o->size));
	json_object_set_new(p, "objects", json_integer((json_int_t)r->nkeys));
	json_object_set_new(p, "concurrency", json_integer(o->conc));
	json_object_set_new(p, "rate_mb", json_integer((json_int_t)o->rate_mb));
	res = bench_phase_results(ph);
	json_object_set_new(res, "ops", json_integer((json_int_t)r->ops));
	json_object_set_new(res, "errors", json_integer((json_int_t)r->errors));
	if (r->errors)
		json_object_set_new(res, "first_error", json_string(sto_strerror(r->first_error)));
	json_object_set_new(res, "seconds", json_real(secs));
	json_object_set_new(res, "ops_per_s", json_real(secs > 0 ? r->ops / secs : 0));
	json_object_set_new(res, "mb_per_s", json_real(secs > 0 ? (double)r->bytes / secs / 1e6 : 0));
	if (r->hist.n)
		bench_hist_to_json(&r->hist, res);
	if (extra) {
		json_object_foreach(extra, k, v)
			json_object_set(res, k, v);
		json_decref(extra);
	}
	bench_phase_emit(ph);
}

/* The mover phase: polls STAT every 100 ms; stops the foreground load once
 * the STANDARD set has moved (or after 10 minutes). */
struct mover_watch {
	struct fload *r;
	uint64_t want, t0, t_first, t_done;
	uint64_t moved, bytes;
	bool polling;
	struct sto_stat last;
};

static void on_watch_stat(void *arg, int status, const struct sto_stat *st)
{
	struct mover_watch *m = arg;
	uint64_t now = strata_now_ns();

	m->polling = false;
	if (status < 0 || !st)
		return;
	m->last = *st;
	if (st->tier.moved_down_objects && !m->t_first)
		m->t_first = now;
	m->moved = st->tier.moved_down_objects;
	m->bytes = st->tier.moved_down_bytes;
	if (m->moved >= m->want || now - m->t0 > 600000000000ull) {
		m->t_done = now;
		m->r->stop = true;
	}
}

static void on_watch_timer(uv_timer_t *t)
{
	struct mover_watch *m = t->data;

	if (m->r->stop) {
		uv_timer_stop(t);
		return;
	}
	if (!m->polling && sto_stat(m->r->c[0], on_watch_stat, m) == 0)
		m->polling = true;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-bench tiers --hot DIR --cold DIR [options]\n"
"  --objects N     fragments per set (default 2000; the pinned set N/4)\n"
"  --size BYTES    fragment size (default 65536)\n"
"  --conc C        GETs in flight (default 16)\n"
"  --seconds S     per read phase (default 5)\n"
"  --rate-mb M     the mover's MB/s cap (default 0 = none)\n"
"  --storaged PATH the node binary (default: this build's)\n"
"  --out FILE      append the JSON phases to FILE\n"
"For a local demo: --hot /dev/shm/strata-hot --cold /var/tmp/strata-cold.\n");
}

int bench_tiers_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "hot", required_argument, NULL, 'H' },
		{ "cold", required_argument, NULL, 'C' },
		{ "objects", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "conc", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' },
		{ "rate-mb", required_argument, NULL, 'r' },
		{ "storaged", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct topts o = { .storaged = STRATA_STORAGED_PATH, .objects = 2000,
			   .size = 65536, .conc = 16, .seconds = 5 };
	static const char *const off[] = { "--tier-off", NULL };
	char rate[32];
	const char *on[16] = { "--cold-after", "1", "--atime-interval", "1",
			       "--tier-scan-interval", "1", NULL };
	struct fload r = { 0 };
	struct mover_watch mw = { 0 };
	uv_timer_t timer;
	struct sto_stat st = { 0 };
	uint64_t npin, p99_off = 0, p99_on = 0, p99_idle = 0;
	double secs, on_secs = 0;
	json_t *x;
	int opt, ret = 1;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'H': o.hot = optarg; break;
		case 'C': o.cold = optarg; break;
		case 'n': o.objects = strtoull(optarg, NULL, 0); break;
		case 's': o.size = strtoull(optarg, NULL, 0); break;
		case 'c': o.conc = (unsigned)strtoul(optarg, NULL, 0); break;
		case 't': o.seconds = strtod(optarg, NULL); break;
		case 'r': o.rate_mb = strtoull(optarg, NULL, 0); break;
		case 'S': o.storaged = optarg; break;
		case 'o':
			if (bench_set_output(optarg) < 0)
				return 1;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.hot || !o.cold || !o.objects || !o.conc || o.seconds <= 0 ||
	    o.size > (256u << 20)) {
		usage(stderr);
		return 2;
	}
	npin = o.objects / 4 ? o.objects / 4 : 1;
	r.loop = uv_default_loop();
	r.keytag = 0xa5;
	if (fload_payload(&r, o.size) < 0)
		return 1;

	/* Session 1: mover off. */
	if ((ret = node_start(&o, off)) < 0 || (ret = fload_connect(&r, "127.0.0.1", node.port, CONNS)) < 0) {
		fprintf(stderr, "strata-bench tiers: node: %s\n", sto_strerror(ret));
		goto out;
	}
	{
		static const struct { uint32_t part; enum sto_tier_class tier; const char *name; } sets[] = {
			{ PART_STD, STO_TIER_STANDARD, "load-standard" },
			{ PART_COLD, STO_TIER_COLD, "load-cold-class" },
			{ PART_PIN, STO_TIER_PIN_HOT, "load-pin-hot" },
		};

		for (int i = 0; i < 3; i++) {
			fload_reset(&r, true, sets[i].part, sets[i].part == PART_PIN ? npin : o.objects,
			      sets[i].tier);
			secs = fload_drive(&r, o.conc, 0, false);
			emit(&o, sets[i].name, &r, secs, NULL);
		}
	}
	fload_stat(&r, &st);
	x = json_object();
	json_object_set_new(x, "hot_objects", json_integer((json_int_t)st.tier.writes[0]));
	json_object_set_new(x, "cold_objects", json_integer((json_int_t)st.tier.writes[1]));
	drop_cache(o.hot);
	drop_cache(o.cold);
	fload_reset(&r, false, PART_STD, o.objects, 0);
	secs = fload_drive(&r, o.conc, o.seconds, false);
	emit(&o, "read-hot", &r, secs, x);
	drop_cache(o.hot);
	drop_cache(o.cold);
	fload_reset(&r, false, PART_COLD, o.objects, 0);
	secs = fload_drive(&r, o.conc, o.seconds, false);
	emit(&o, "read-cold", &r, secs, NULL);
	fload_reset(&r, false, PART_PIN, npin, 0);
	secs = fload_drive(&r, o.conc, o.seconds, false);
	emit(&o, "fg-mover-off", &r, secs, NULL);
	p99_off = bench_hist_pct(&r.hist, 99);
	fload_disconnect(&r);
	node_stop();

	/* Session 2: the mover moves the STANDARD set while the pinned set
	 * is read. */
	if (o.rate_mb) {
		int n = 6;

		snprintf(rate, sizeof(rate), "%llu", (unsigned long long)o.rate_mb);
		on[n++] = "--tier-rate-mb";
		on[n++] = rate;
		on[n] = NULL;
	}
	if ((ret = node_start(&o, on)) < 0 || (ret = fload_connect(&r, "127.0.0.1", node.port, CONNS)) < 0) {
		fprintf(stderr, "strata-bench tiers: node: %s\n", sto_strerror(ret));
		goto out;
	}
	fload_reset(&r, false, PART_PIN, npin, 0);
	mw.r = &r;
	mw.want = o.objects;
	mw.t0 = strata_now_ns();
	uv_timer_init(r.loop, &timer);
	timer.data = &mw;
	uv_timer_start(&timer, on_watch_timer, 100, 100);
	/* Wait for the mover's first move before timing the foreground. */
	while (!mw.t_first && !r.stop)
		uv_run(r.loop, UV_RUN_ONCE);
	secs = fload_drive(&r, o.conc, 0, true);
	uv_timer_stop(&timer);
	uv_close((uv_handle_t *)&timer, NULL);
	emit(&o, "fg-mover-on", &r, secs, NULL);
	p99_on = bench_hist_pct(&r.hist, 99);
	on_secs = secs;
	{
		double msecs = mw.t_done && mw.t_first ? (double)(mw.t_done - mw.t_first) / 1e9 : 0;
		struct fload m = { .nkeys = mw.moved, .ops = mw.moved, .bytes = mw.bytes };

		x = json_object();
		json_object_set_new(x, "moved_objects", json_integer((json_int_t)mw.moved));
		json_object_set_new(x, "moved_bytes", json_integer((json_int_t)mw.bytes));
		json_object_set_new(x, "move_failures",
				    json_integer((json_int_t)mw.last.tier.move_failures));
		json_object_set_new(x, "note", json_string("from the first move seen to the "
			"last, polled every 100 ms (STAT moved_down_*)"));
		emit(&o, "mover", &m, msecs, x);
	}
	/* The A/B that matters, adjacent in time on the same node process:
	 * the same GETs right after the moves (the mover on, nothing left to
	 * move), as long as the mover-on window. fg-mover-off ran minutes
	 * earlier in another process: on a shared machine that drifts. */
	fload_reset(&r, false, PART_PIN, npin, 0);
	secs = fload_drive(&r, o.conc, on_secs > 1 ? on_secs : 1, false);
	emit(&o, "fg-mover-idle", &r, secs, NULL);
	p99_idle = bench_hist_pct(&r.hist, 99);
	{
		struct fload none = { 0 };

		x = json_object();
		json_object_set_new(x, "p99_mover_off_us", json_real((double)p99_off / 1e3));
		json_object_set_new(x, "p99_mover_idle_us", json_real((double)p99_idle / 1e3));
		json_object_set_new(x, "p99_mover_on_us", json_real((double)p99_on / 1e3));
		json_object_set_new(x, "p99_on_over_idle", json_real(p99_idle ?
				    (double)p99_on / (double)p99_idle : 0));
		json_object_set_new(x, "p99_on_over_off", json_real(p99_off ?
				    (double)p99_on / (double)p99_off : 0));
		emit(&o, "fg-p99", &none, 0, x);
	}
	ret = 0;
out:
	fload_free(&r);
	node_stop();
	return ret ? 1 : 0;
}
