/* ec.c: k+m Reed-Solomon erasure coding with ISA-L.
 *
 * The encode matrix is ISA-L's Cauchy matrix ((k+m) x k, identity on top):
 * unlike the Vandermonde-style gf_gen_rs_matrix, every k x k submatrix of a
 * Cauchy matrix is invertible, so any k surviving fragments decode.
 *
 * Decoding picks the first k present fragments, inverts their k rows of the
 * encode matrix, and derives one row per wanted fragment: a lost data
 * fragment i is row i of the inverse; a lost parity fragment j is
 * encode_row(j) x inverse. ec_init_tables() over those rows costs more than
 * decoding a small stripe, so the tables are cached per (survivors, wanted)
 * pattern in a small LRU: a degraded object decodes every stripe with the
 * same pattern.
 */
#include "internal.h"

#include <errno.h>
#include <isa-l/erasure_code.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define GW_EC_LRU	16

struct gw_ec_dec {
	uint32_t survivors;	/* the k fragments read */
	uint32_t wanted;	/* the fragments rebuilt, ascending */
	uint64_t used;		/* LRU clock; 0 = empty */
	unsigned char *tables;	/* 32 * k * popcount(wanted) */
};

struct gw_ec {
	unsigned k, m;
	unsigned refs;		/* guarded by gw_ec_registry_lock */
	struct gw_ec *next;
	unsigned char *matrix;	/* (k+m) x k */
	unsigned char *enc_tables; /* 32 * k * m */
	pthread_mutex_t lock;	/* guards dec[], clock, stats */
	uint64_t clock, hits, misses;
	struct gw_ec_dec dec[GW_EC_LRU];
};

static pthread_mutex_t gw_ec_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gw_ec *gw_ec_registry;

static void gw_ec_destroy(struct gw_ec *ec)
{
	for (unsigned i = 0; i < GW_EC_LRU; i++)
		free(ec->dec[i].tables);
	pthread_mutex_destroy(&ec->lock);
	free(ec->matrix);
	free(ec->enc_tables);
	free(ec);
}

static struct gw_ec *gw_ec_create(unsigned k, unsigned m)
{
	struct gw_ec *ec = calloc(1, sizeof(*ec));

	if (!ec)
		return NULL;
	ec->k = k;
	ec->m = m;
	ec->matrix = malloc((size_t)(k + m) * k);
	ec->enc_tables = malloc((size_t)32 * k * m);
	pthread_mutex_init(&ec->lock, NULL);
	if (!ec->matrix || !ec->enc_tables) {
		gw_ec_destroy(ec);
		return NULL;
	}
	gf_gen_cauchy1_matrix(ec->matrix, (int)(k + m), (int)k);
	/* k = 1: parity rows of ones make every fragment a byte-identical copy
	 * (any nonzero 1 x 1 submatrix inverts), so a 1+m policy is plain
	 * (m+1)-way replication of large objects, streamed by segments. */
	if (k == 1)
		memset(ec->matrix + 1, 1, m);
	ec_init_tables((int)k, (int)m, ec->matrix + (size_t)k * k, ec->enc_tables);
	return ec;
}

int gw_ec_get(unsigned k, unsigned m, struct gw_ec **out)
{
	struct gw_ec *ec;

	if (k < 1 || m < 1 || k > GW_EC_MAX_K || m > GW_EC_MAX_M)
		return -EINVAL;
	pthread_mutex_lock(&gw_ec_registry_lock);
	for (ec = gw_ec_registry; ec; ec = ec->next)
		if (ec->k == k && ec->m == m)
			break;
	if (!ec) {
		ec = gw_ec_create(k, m);
		if (!ec) {
			pthread_mutex_unlock(&gw_ec_registry_lock);
			return -ENOMEM;
		}
		ec->next = gw_ec_registry;
		gw_ec_registry = ec;
	}
	ec->refs++;
	pthread_mutex_unlock(&gw_ec_registry_lock);
	*out = ec;
	return 0;
}

void gw_ec_put(struct gw_ec *ec)
{
	struct gw_ec **pp;

	if (!ec)
		return;
	pthread_mutex_lock(&gw_ec_registry_lock);
	if (--ec->refs == 0) {
		for (pp = &gw_ec_registry; *pp; pp = &(*pp)->next)
			if (*pp == ec) {
				*pp = ec->next;
				break;
			}
		gw_ec_destroy(ec);
	}
	pthread_mutex_unlock(&gw_ec_registry_lock);
}

unsigned gw_ec_k(const struct gw_ec *ec)
{
	return ec->k;
}

unsigned gw_ec_m(const struct gw_ec *ec)
{
	return ec->m;
}

int gw_ec_encode(const struct gw_ec *ec, size_t len, uint8_t *const *data,
		 uint8_t *const *parity)
{
	if (len > INT_MAX)
		return -EINVAL;
	if (len == 0)
		return 0;
	ec_encode_data((int)len, (int)ec->k, (int)ec->m, ec->enc_tables,
		       (unsigned char **)data, (unsigned char **)parity);
	return 0;
}

/* Builds decode tables for (survivors, wanted): 0 or -ENOMEM/-EIO. */
static int gw_ec_build(const struct gw_ec *ec, uint32_t survivors,
		       uint32_t wanted, unsigned char **out)
{
	unsigned k = ec->k, n = k + ec->m, nw = 0, r = 0;
	unsigned char b[GW_EC_MAX_K * GW_EC_MAX_K], inv[GW_EC_MAX_K * GW_EC_MAX_K];
	unsigned char rows[GW_EC_MAX_FRAGS * GW_EC_MAX_K];
	unsigned char *tables;

	for (unsigned i = 0; i < n; i++)
		if (survivors & (1u << i))
			memcpy(b + (size_t)k * r++, ec->matrix + (size_t)k * i, k);
	if (gf_invert_matrix(b, inv, (int)k) < 0)
		return -EIO;		/* cannot happen with a Cauchy matrix */
	for (unsigned i = 0; i < n; i++) {
		unsigned char *row;

		if (!(wanted & (1u << i)))
			continue;
		row = rows + (size_t)k * nw++;
		if (i < k) {
			memcpy(row, inv + (size_t)k * i, k);
			continue;
		}
		for (unsigned c = 0; c < k; c++) {
			unsigned char s = 0;

			for (unsigned j = 0; j < k; j++)
				s ^= gf_mul(ec->matrix[(size_t)k * i + j], inv[(size_t)k * j + c]);
			row[c] = s;
		}
	}
	tables = malloc((size_t)32 * k * nw);
	if (!tables)
		return -ENOMEM;
	ec_init_tables((int)k, (int)nw, rows, tables);
	*out = tables;
	return 0;
}

int gw_ec_decode(struct gw_ec *ec, size_t len, uint8_t *const *frags,
		 uint32_t present, uint32_t want)
{
	unsigned k = ec->k, n = k + ec->m, nw = 0, ns = 0;
	uint32_t all = n >= 32 ? UINT32_MAX : (1u << n) - 1, survivors = 0;
	unsigned char *src[GW_EC_MAX_K], *dst[GW_EC_MAX_FRAGS];
	struct gw_ec_dec *slot = NULL, *victim;
	unsigned char *tables, local[32 * GW_EC_MAX_K * GW_EC_MAX_M];
	int ret;

	if ((present | want) & ~all || len > INT_MAX)
		return -EINVAL;
	want &= ~present;
	if (!want)
		return 0;
	for (unsigned i = 0; i < n && ns < k; i++)
		if (present & (1u << i)) {
			survivors |= 1u << i;
			src[ns++] = frags[i];
		}
	if (ns < k)
		return -EIO;
	for (unsigned i = 0; i < n; i++)
		if (want & (1u << i))
			dst[nw++] = frags[i];
	if (len == 0)
		return 0;

	pthread_mutex_lock(&ec->lock);
	victim = &ec->dec[0];
	for (unsigned i = 0; i < GW_EC_LRU; i++) {
		struct gw_ec_dec *e = &ec->dec[i];

		if (e->used && e->survivors == survivors && e->wanted == want) {
			slot = e;
			break;
		}
		if (e->used < victim->used)
			victim = e;
	}
	if (slot) {
		/* Copy the tables out (at most 32*k*m bytes, small next to a
		 * stripe) so that decodes on other threads run in parallel
		 * and an eviction cannot pull them from under us. */
		size_t tlen = (size_t)32 * k * nw;

		ec->hits++;
		slot->used = ++ec->clock;
		memcpy(local, slot->tables, tlen);
		pthread_mutex_unlock(&ec->lock);
		ec_encode_data((int)len, (int)k, (int)nw, local, src, dst);
		return 0;
	}
	ec->misses++;
	pthread_mutex_unlock(&ec->lock);

	ret = gw_ec_build(ec, survivors, want, &tables);
	if (ret < 0)
		return ret;
	ec_encode_data((int)len, (int)k, (int)nw, tables, src, dst);

	pthread_mutex_lock(&ec->lock);
	free(victim->tables);
	victim->tables = tables;
	victim->survivors = survivors;
	victim->wanted = want;
	victim->used = ++ec->clock;
	pthread_mutex_unlock(&ec->lock);
	return 0;
}

void gw_ec_cache_stats(const struct gw_ec *ec, uint64_t *hits, uint64_t *misses)
{
	pthread_mutex_lock((pthread_mutex_t *)&ec->lock);
	*hits = ec->hits;
	*misses = ec->misses;
	pthread_mutex_unlock((pthread_mutex_t *)&ec->lock);
}

int gw_ec_layout(unsigned k, unsigned m, uint32_t unit, uint64_t object_len,
		 struct gw_ec_layout *out)
{
	if (k < 1 || m < 1 || k > GW_EC_MAX_K || m > GW_EC_MAX_M)
		return -EINVAL;
	if (unit == 0)
		unit = GW_EC_DEFAULT_UNIT;
	if (unit % GW_EC_ALIGN || unit > INT_MAX)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->k = k;
	out->m = m;
	out->unit = unit;
	out->object_len = object_len;
	out->stripe_size = (uint64_t)k * unit;
	out->n_stripes = object_len / out->stripe_size +
			 (object_len % out->stripe_size != 0);
	out->frag_len = out->n_stripes * unit;
	out->last_stripe_len = out->n_stripes ?
		object_len - (out->n_stripes - 1) * out->stripe_size : 0;
	return 0;
}

void gw_ec_locate(const struct gw_ec_layout *l, uint64_t off, uint64_t *stripe,
		  unsigned *frag, uint64_t *frag_off)
{
	uint64_t in_stripe;

	*stripe = off / l->stripe_size;
	in_stripe = off % l->stripe_size;
	*frag = (unsigned)(in_stripe / l->unit);
	*frag_off = *stripe * l->unit + in_stripe % l->unit;
}
