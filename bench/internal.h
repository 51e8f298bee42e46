/* bench/internal.h: shared by the strata-bench subcommands.
 *
 * Every subcommand writes the same output: one JSON object per phase (one per
 * line on stdout, or appended to --out FILE), carrying the phase's parameters
 * and results, the machine (cores, memory, kernel) and the git revision, so
 * results from different runs and machines can be compared and plotted.
 */
#ifndef STRATA_BENCH_INTERNAL_H
#define STRATA_BENCH_INTERNAL_H

#include <http_parser.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

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

/* Sets ops, seconds, ops_per_s, bytes, mb_per_s (10^6 B/s) and mib_per_s
 * (2^20 B/s) in obj; all rates 0 when secs <= 0. */
void bench_rates_to_json(json_t *obj, uint64_t ops, uint64_t bytes, double secs);

/* s3util.c: object sizes and contents for `strata-bench s3` (s3.c). */
#define S3B_MAX_OBJECT	(5ULL << 30)	/* S3's single-PUT limit */
#define S3B_MAX_SIZES	16
#define S3B_POOL_SPREAD	(1u << 20)	/* distinct slice offsets */
uint64_t s3b_mix64(uint64_t x);
uint64_t s3b_hash(const char *s);
/* "4096", "4K", "4KiB", "1.5M" (binary units): 0, -EINVAL or -ERANGE. */
int s3b_parse_size(const char *s, uint64_t *out);
/* A size distribution: "4K", "photo", or "4K:50,64K:30,1M:15,4M:5" (weights). */
struct s3b_sizes {
	char spec[128];
	unsigned n, total;
	uint64_t size[S3B_MAX_SIZES];
	unsigned weight[S3B_MAX_SIZES];
	uint64_t max;
	double mean;
};
int s3b_sizes_parse(struct s3b_sizes *d, const char *spec);
/* A key's size: a pure function of the key, so readers know it. */
uint64_t s3b_sizes_pick(const struct s3b_sizes *d, const char *key);
/* Every object body is a slice of one pseudo-random pool (max object size
 * plus S3B_POOL_SPREAD bytes) at an offset derived from key and version:
 * PUT bodies cost no copy, and GET bodies are checked against the slice. */
struct s3b_pool {
	uint8_t *p;
	size_t len;
};
int s3b_pool_init(struct s3b_pool *p, uint64_t max_object);
const uint8_t *s3b_pool_slice(const struct s3b_pool *p, const char *key,
			      uint64_t version, uint64_t size);
void s3b_pool_free(struct s3b_pool *p);

/* One S3 response as the client reads it (http_parser underneath): status,
 * body bytes counted and, when expect is set, compared with it byte by byte;
 * an error body's first S3B_ERRBODY bytes kept for its <Code>. */
#define S3B_ERRBODY	4096
struct s3b_resp {
	http_parser parser;
	bool head;			/* HEAD: headers only, whatever the length */
	const uint8_t *expect;		/* expected body, or NULL */
	uint64_t size;			/* its size */
	int status;
	uint64_t got;			/* body bytes so far */
	bool mismatch;			/* body or length differs from expect */
	bool complete;
	bool keep_alive;		/* set when complete */
	size_t errlen;
	char errbody[S3B_ERRBODY];
};
void s3b_resp_init(struct s3b_resp *r, bool head, const uint8_t *expect, uint64_t size);
/* Feeds data[0..len): 1 = response complete (all of data used), 0 = need
 * more, -EPROTO = not HTTP, or bytes after the response. */
int s3b_resp_feed(struct s3b_resp *r, const char *data, size_t len);
/* The error document's <Code>, or "" (NUL-terminated, truncated to cap). */
void s3b_resp_code(const struct s3b_resp *r, char *out, size_t cap);

/* daemon.c: a daemon the benchmark forks (argv[0] is its path; it dies with
 * the benchmark) and waits for, up to timeout_s, until it writes the port it
 * serves on to port_file: 0, -ECHILD (it exited) or -ETIMEDOUT (stopped).
 * Stop: SIGTERM and wait. */
struct bench_daemon {
	pid_t pid;
	uint16_t port;
};
int bench_daemon_start(struct bench_daemon *d, const char *const *argv,
		       const char *port_file, unsigned timeout_s);
void bench_daemon_stop(struct bench_daemon *d);

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
int bench_s3_main(int argc, char **argv);
int bench_repair_main(int argc, char **argv);
int bench_tiers_main(int argc, char **argv);

#endif
