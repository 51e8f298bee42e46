/* bench/internal.h: shared by the strata-bench subcommands.
 *
 * Every subcommand writes the same output: one JSON object per phase (one per
 * line on stdout, or appended to --out FILE), carrying the phase's parameters
 * and results, the machine (cores, memory, kernel) and the git revision, so
 * results from different runs and machines can be compared and plotted.
 */
#ifndef STRATA_BENCH_INTERNAL_H
#define STRATA_BENCH_INTERNAL_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/* One subcommand: `strata-bench NAME ...`. */
struct bench_cmd {
	const char *name;
	const char *summary;
	int (*main)(int argc, char **argv);	/* argv[0] is NAME */
};

/* report.c */
/* Starts a phase object: {"bench": bench, "phase": phase, "params": {}, ...}.
 * The caller fills "params" and "results" (json_object_set_new) and then
 * calls bench_phase_emit(), which adds "machine", "git_rev", "time" and
 * writes it. */
json_t *bench_phase_new(const char *bench, const char *phase);
json_t *bench_phase_params(json_t *phase);
json_t *bench_phase_results(json_t *phase);
int bench_phase_emit(json_t *phase);
/* Where phases go: NULL = stdout (the default). */
int bench_set_output(const char *path);

/* Latency samples in nanoseconds, and their percentiles. */
struct bench_hist {
	uint64_t *ns;
	size_t n, cap;
};
int bench_hist_add(struct bench_hist *h, uint64_t ns);
/* p in [0, 100]; nearest-rank on sorted samples (sorts h in place). */
uint64_t bench_hist_pct(struct bench_hist *h, double p);
/* Adds {"p50_us","p90_us","p99_us","p999_us","max_us","mean_us"} to obj. */
void bench_hist_to_json(struct bench_hist *h, json_t *obj);
void bench_hist_free(struct bench_hist *h);

/* Process CPU seconds (user + system) so far: the client's own cost. */
double bench_cpu_seconds(void);

/* node.c: starts this build's strata-storaged on dir (a free port; addr
 * gets "127.0.0.1:PORT"), stops it (SIGTERM), its CPU seconds so far. */
int bench_node_start(const char *storaged, const char *dir, char *addr, size_t len);
void bench_node_stop(void);
double bench_node_cpu(void);

/* Subcommands (each in its own file). */
int bench_ring_main(int argc, char **argv);
int bench_ec_main(int argc, char **argv);
int bench_node_main(int argc, char **argv);
int bench_listing_main(int argc, char **argv);
int bench_tiers_main(int argc, char **argv);

#endif
