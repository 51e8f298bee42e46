/* strata-bench ec: erasure-coding throughput on one core (ISA-L through
 * api/ec.c): encode, and decode with 0, 1 and 2 lost data fragments, for
 * each policy and stripe unit. GB/s counts object (data) bytes: a stripe is
 * k units of data, so a 4+2 stripe with 64 KiB units moves 256 KiB.
 *
 * Stripes cycle through a pool (--pool-mib, default 64 MiB of data) so that
 * the numbers are for data coming from memory, not from a cache-resident
 * stripe. "0 lost" is the read path of a healthy object: data fragments are
 * used as they are and decode has nothing to do; it is reported to show
 * that overhead is nil, not as a codec speed.
 */
#include "internal.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* From api/internal.h, private to api/ (the gateway links the same
 * library); the codec calls are all this benchmark needs. */
struct gw_ec;
int gw_ec_get(unsigned k, unsigned m, struct gw_ec **out);
void gw_ec_put(struct gw_ec *ec);
int gw_ec_encode(const struct gw_ec *ec, size_t len, uint8_t *const *data,
		 uint8_t *const *parity);
int gw_ec_decode(struct gw_ec *ec, size_t len, uint8_t *const *frags,
		 uint32_t present, uint32_t want);

#define EC_MAX_FRAGS	24

struct ec_bench_opts {
	double seconds;			/* per measurement */
	size_t pool_bytes;		/* data bytes in the stripe pool */
	const char *policies;		/* "4+2,8+4" */
	const char *units;		/* "4096,16384,..." */
};

struct ec_pool {
	unsigned k, m;
	size_t unit, n_stripes;
	uint8_t *mem;			/* n_stripes * (k+m) * unit */
};

static uint8_t *ec_frag(const struct ec_pool *p, size_t stripe, unsigned f)
{
	return p->mem + (stripe * (p->k + p->m) + f) * p->unit;
}

static int ec_pool_init(struct ec_pool *p, unsigned k, unsigned m, size_t unit,
			size_t pool_bytes)
{
	size_t total;

	p->k = k;
	p->m = m;
	p->unit = unit;
	p->n_stripes = pool_bytes / ((size_t)k * unit);
	if (p->n_stripes < 2)
		p->n_stripes = 2;
	total = p->n_stripes * (k + m) * unit;
	if (posix_memalign((void **)&p->mem, 64, total))
		return -ENOMEM;
	/* Random-looking data; parity gets written by the encode pass. */
	for (size_t i = 0; i < total; i++)
		p->mem[i] = (uint8_t)((i * 2654435761u) >> 13);
	return 0;
}

/* Runs op over the pool's stripes until `seconds` have passed; returns
 * the stripes done and their time. */
enum ec_op { EC_ENCODE, EC_DECODE };

static int ec_run(struct gw_ec *ec, const struct ec_pool *p, enum ec_op op,
		  unsigned lost, double seconds, uint64_t *stripes, double *secs)
{
	unsigned n = p->k + p->m;
	uint32_t all = (1u << n) - 1, lost_mask = (1u << lost) - 1;
	uint32_t data = (1u << p->k) - 1;
	uint64_t t0 = strata_now_ns(), done = 0, deadline;
	int ret;

	deadline = t0 + (uint64_t)(seconds * 1e9);
	do {
		/* a batch between clock reads */
		for (size_t s = 0; s < p->n_stripes; s++) {
			uint8_t *f[EC_MAX_FRAGS];

			for (unsigned i = 0; i < n; i++)
				f[i] = ec_frag(p, s, i);
			if (op == EC_ENCODE)
				ret = gw_ec_encode(ec, p->unit, f, f + p->k);
			else
				ret = gw_ec_decode(ec, p->unit, f, all & ~lost_mask, data);
			if (ret < 0)
				return ret;
			done++;
		}
	} while (strata_now_ns() < deadline);
	*secs = (double)(strata_now_ns() - t0) / 1e9;
	*stripes = done;
	return 0;
}

static void ec_emit(const struct ec_pool *p, const char *phase, unsigned lost,
		    uint64_t stripes, double secs)
{
	json_t *ph = bench_phase_new("ec", phase);
	json_t *par = bench_phase_params(ph), *res = bench_phase_results(ph);
	double bytes = (double)stripes * p->k * p->unit;

	json_object_set_new(par, "k", json_integer(p->k));
	json_object_set_new(par, "m", json_integer(p->m));
	json_object_set_new(par, "unit", json_integer((json_int_t)p->unit));
	json_object_set_new(par, "stripe_bytes", json_integer((json_int_t)(p->k * p->unit)));
	if (strcmp(phase, "encode"))
		json_object_set_new(par, "lost", json_integer(lost));
	json_object_set_new(par, "pool_bytes",
			    json_integer((json_int_t)(p->n_stripes * p->k * p->unit)));
	json_object_set_new(par, "cores", json_integer(1));
	json_object_set_new(res, "stripes", json_integer((json_int_t)stripes));
	json_object_set_new(res, "seconds", json_real(secs));
	json_object_set_new(res, "gb_per_s", json_real(bytes / secs / 1e9));
	json_object_set_new(res, "us_per_stripe", json_real(secs * 1e6 / (double)stripes));
	if (strcmp(phase, "encode") && lost == 0)
		json_object_set_new(res, "note", json_string(
			"nothing lost: no decode work, call overhead only"));
	bench_phase_emit(ph);
}

static int ec_bench_one(unsigned k, unsigned m, size_t unit,
			const struct ec_bench_opts *o)
{
	struct ec_pool p = { 0 };
	struct gw_ec *ec;
	uint64_t stripes;
	double secs;
	int ret;

	ret = gw_ec_get(k, m, &ec);
	if (ret < 0)
		return ret;
	ret = ec_pool_init(&p, k, m, unit, o->pool_bytes);
	if (ret < 0)
		goto out_put;
	ret = ec_run(ec, &p, EC_ENCODE, 0, o->seconds, &stripes, &secs);
	if (ret < 0)
		goto out_free;
	ec_emit(&p, "encode", 0, stripes, secs);
	for (unsigned lost = 0; lost <= 2 && lost <= m; lost++) {
		ret = ec_run(ec, &p, EC_DECODE, lost, o->seconds, &stripes, &secs);
		if (ret < 0)
			goto out_free;
		ec_emit(&p, "decode", lost, stripes, secs);
	}
out_free:
	free(p.mem);
out_put:
	gw_ec_put(ec);
	return ret;
}

int bench_ec_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "pool-mib", required_argument, NULL, 'p' },
		{ "policies", required_argument, NULL, 'P' },
		{ "units", required_argument, NULL, 'u' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct ec_bench_opts o = {
		.seconds = 0.5, .pool_bytes = 64u << 20, .policies = "4+2,8+4",
		.units = "4096,16384,65536,262144,1048576",
	};
	char *pol, *save_p = NULL, *tok;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': o.seconds = atof(optarg); break;
		case 'p': o.pool_bytes = (size_t)strtoull(optarg, NULL, 10) << 20; break;
		case 'P': o.policies = optarg; break;
		case 'u': o.units = optarg; break;
		case 'o':
			if ((ret = bench_set_output(optarg)) < 0) {
				fprintf(stderr, "strata-bench ec: %s: %s\n", optarg, strerror(-ret));
				return 1;
			}
			break;
		case 'h':
			printf("usage: strata-bench ec [--policies 4+2,8+4] "
			       "[--units 4096,16384,65536,262144,1048576]\n"
			       "        [--seconds 0.5] [--pool-mib 64] [--out FILE]\n"
			       "One core; GB/s of object data for encode and for decode with 0, 1, 2 lost data fragments.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (o.seconds <= 0 || o.pool_bytes == 0) {
		fprintf(stderr, "strata-bench ec: bad options\n");
		return 2;
	}
	pol = strdup(o.policies);
	if (!pol)
		return 1;
	for (tok = strtok_r(pol, ",", &save_p); tok && ret == 0;
	     tok = strtok_r(NULL, ",", &save_p)) {
		unsigned k, m;
		char *units = strdup(o.units), *save_u = NULL, *u;

		if (!units || sscanf(tok, "%u+%u", &k, &m) != 2) {
			fprintf(stderr, "strata-bench ec: bad policy '%s' (want k+m)\n", tok);
			free(units);
			ret = -EINVAL;
			break;
		}
		for (u = strtok_r(units, ",", &save_u); u && ret == 0;
		     u = strtok_r(NULL, ",", &save_u)) {
			unsigned long unit = strtoul(u, NULL, 10);

			if (unit == 0 || unit > (64ul << 20)) {
				fprintf(stderr, "strata-bench ec: bad unit '%s'\n", u);
				ret = -EINVAL;
				break;
			}
			ret = ec_bench_one(k, m, unit, &o);
			if (ret < 0)
				fprintf(stderr, "strata-bench ec: %u+%u unit %lu: %s\n",
					k, m, unit, strerror(-ret));
		}
		free(units);
	}
	free(pol);
	return ret < 0 ? 1 : 0;
}
