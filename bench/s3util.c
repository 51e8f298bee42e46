/* bench/s3util.c: the pure parts of `strata-bench s3` (s3.c): object size
 * distributions and the deterministic content every key must hold. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

uint64_t s3b_mix64(uint64_t x)
{
	/* splitmix64's finalizer: every input bit moves every output bit. */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t s3b_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return s3b_mix64(h);
}

int s3b_parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	uint64_t mul = 1;

	if (end == s || v < 0)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	default: break;
	}
	if (mul > 1 && (!strcasecmp(end, "iB") || !strcasecmp(end, "B")))
		end += strlen(end);
	if (*end)
		return -EINVAL;
	*out = (uint64_t)(v * (double)mul + 0.5);
	return *out > S3B_MAX_OBJECT ? -ERANGE : 0;
}

/* A photo archive: mostly thumbnails and previews, a tail of originals. */
static const char s3b_photo[] = "4K:30,16K:20,64K:20,256K:15,1M:10,4M:5";

int s3b_sizes_parse(struct s3b_sizes *d, const char *spec)
{
	char buf[sizeof(d->spec)], *save = NULL, *tok;
	double sum = 0;

	memset(d, 0, sizeof(*d));
	if (!strcmp(spec, "photo"))
		spec = s3b_photo;
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	snprintf(d->spec, sizeof(d->spec), "%s", spec);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':');
		unsigned long w = 1;

		if (d->n == S3B_MAX_SIZES)
			return -E2BIG;
		if (colon) {
			char *end;

			*colon = '\0';
			w = strtoul(colon + 1, &end, 10);
			if (*end || w == 0 || w > 1000000)
				return -EINVAL;
		}
		if (s3b_parse_size(tok, &d->size[d->n]) < 0)
			return -EINVAL;
		d->weight[d->n] = (unsigned)w;
		d->total += (unsigned)w;
		if (d->size[d->n] > d->max)
			d->max = d->size[d->n];
		sum += (double)d->size[d->n] * (double)w;
		d->n++;
	}
	if (!d->n)
		return -EINVAL;
	d->mean = sum / d->total;
	return 0;
}

uint64_t s3b_sizes_pick(const struct s3b_sizes *d, const char *key)
{
	uint64_t r = s3b_hash(key) % d->total;

	for (unsigned i = 0; i < d->n; i++) {
		if (r < d->weight[i])
			return d->size[i];
		r -= d->weight[i];
	}
	return d->size[d->n - 1];
}

int s3b_pool_init(struct s3b_pool *p, uint64_t max_object)
{
	uint64_t x = 0x5354524154414221ULL;	/* fixed: runs and hosts agree */

	p->len = (size_t)max_object + S3B_POOL_SPREAD;
	p->p = malloc(p->len + 8);
	if (!p->p)
		return -ENOMEM;
	for (size_t i = 0; i < p->len; i += 8) {
		x = s3b_mix64(x);
		memcpy(p->p + i, &x, 8);
	}
	return 0;
}

const uint8_t *s3b_pool_slice(const struct s3b_pool *p, const char *key,
			      uint64_t version, uint64_t size)
{
	uint64_t span = p->len - size + 1;

	return p->p + s3b_mix64(s3b_hash(key) ^ (version * 0x9e3779b97f4a7c15ULL)) % span;
}

void s3b_pool_free(struct s3b_pool *p)
{
	free(p->p);
	memset(p, 0, sizeof(*p));
}
