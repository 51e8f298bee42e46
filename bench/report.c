/* bench/report.c: the shared JSON phase format and latency statistics. */
#include "internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static FILE *bench_out;

int bench_set_output(const char *path)
{
	FILE *f = fopen(path, "a");

	if (!f)
		return -errno;
	if (bench_out && bench_out != stdout)
		fclose(bench_out);
	bench_out = f;
	return 0;
}

json_t *bench_phase_new(const char *bench, const char *phase)
{
	return json_pack("{s:s, s:s, s:{}, s:{}}", "bench", bench, "phase", phase,
			 "params", "results");
}

json_t *bench_phase_params(json_t *phase)
{
	return json_object_get(phase, "params");
}

json_t *bench_phase_results(json_t *phase)
{
	return json_object_get(phase, "results");
}

static json_t *machine_json(void)
{
	struct utsname u;
	struct sysinfo si;
	double load[3];
	json_t *m = json_object();

	json_object_set_new(m, "cores", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
	if (sysinfo(&si) == 0)
		json_object_set_new(m, "mem_bytes",
				    json_integer((json_int_t)si.totalram * si.mem_unit));
	/* The machine is shared: the load beside every number says how noisy. */
	if (getloadavg(load, 3) == 3)
		json_object_set_new(m, "loadavg", json_pack("[f,f,f]", load[0], load[1], load[2]));
	if (uname(&u) == 0) {
		json_object_set_new(m, "kernel", json_string(u.release));
		json_object_set_new(m, "host", json_string(u.nodename));
	}
	return m;
}

/* The revision is stamped in by CMake (STRATA_GIT_REV); "unknown" outside git. */
#ifndef STRATA_GIT_REV
#define STRATA_GIT_REV "unknown"
#endif

int bench_phase_emit(json_t *phase)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int ret;

	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	json_object_set_new(phase, "machine", machine_json());
	json_object_set_new(phase, "git_rev", json_string(STRATA_GIT_REV));
	json_object_set_new(phase, "time", json_string(stamp));
	ret = json_dumpf(phase, bench_out ? bench_out : stdout, JSON_COMPACT);
	fputc('\n', bench_out ? bench_out : stdout);
	fflush(bench_out ? bench_out : stdout);
	json_decref(phase);
	return ret < 0 ? -EIO : 0;
}

int bench_hist_add(struct bench_hist *h, uint64_t ns)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 1024;
		uint64_t *p = realloc(h->ns, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		h->ns = p;
		h->cap = cap;
	}
	h->ns[h->n++] = ns;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t bench_hist_pct(struct bench_hist *h, double p)
{
	size_t rank;

	if (h->n == 0)
		return 0;
	qsort(h->ns, h->n, sizeof(*h->ns), cmp_u64);
	/* Nearest rank: the smallest sample with at least p% at or below it. */
	rank = (size_t)((p / 100.0) * (double)h->n + 0.999999999);
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	return h->ns[rank - 1];
}

void bench_hist_to_json(struct bench_hist *h, json_t *obj)
{
	static const struct {
		const char *key;
		double pct;
	} pcts[] = {
		{ "p50_us", 50 }, { "p90_us", 90 }, { "p99_us", 99 },
		{ "p999_us", 99.9 }, { "max_us", 100 },
	};
	double sum = 0;

	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++)
		json_object_set_new(obj, pcts[i].key,
				    json_real(bench_hist_pct(h, pcts[i].pct) / 1e3));
	for (size_t i = 0; i < h->n; i++)
		sum += (double)h->ns[i];
	json_object_set_new(obj, "mean_us", json_real(h->n ? sum / (double)h->n / 1e3 : 0));
	json_object_set_new(obj, "samples", json_integer((json_int_t)h->n));
}

void bench_hist_free(struct bench_hist *h)
{
	free(h->ns);
	memset(h, 0, sizeof(*h));
}

void bench_rates_to_json(json_t *obj, uint64_t ops, uint64_t bytes, double secs)
{
	bool ok = secs > 0;

	json_object_set_new(obj, "ops", json_integer((json_int_t)ops));
	json_object_set_new(obj, "seconds", json_real(secs));
	json_object_set_new(obj, "ops_per_s", json_real(ok ? (double)ops / secs : 0));
	json_object_set_new(obj, "bytes", json_integer((json_int_t)bytes));
	json_object_set_new(obj, "mb_per_s", json_real(ok ? (double)bytes / secs / 1e6 : 0));
	json_object_set_new(obj, "mib_per_s", json_real(ok ? (double)bytes / secs / 1048576.0 : 0));
}

double bench_cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
