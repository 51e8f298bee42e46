/* gw_meta.c: the metadata record head fragments and bucket records carry
 * (format in internal.h). Decoded from bytes a storage node returns, so every
 * length is checked before it is used. */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put_u8(struct s3_buf *b, uint8_t v) { return s3_buf_add(b, &v, 1); }

static int put_be(struct s3_buf *b, uint64_t v, unsigned bytes)
{
	uint8_t t[8];

	for (unsigned i = 0; i < bytes; i++)
		t[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return s3_buf_add(b, t, bytes);
}

static int put_str(struct s3_buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > UINT16_MAX)
		return -E2BIG;
	return put_be(b, n, 2) ?: s3_buf_add(b, s ? s : "", n);
}

int gw_meta_encode(const struct gw_meta *m, struct s3_buf *b)
{
	int ret = 0;

	unsigned format = m->policy ? GW_META_FORMAT_POLICY :
			  m->nparts ? GW_META_FORMAT_MPU : GW_META_FORMAT;

	ret = ret ?: put_u8(b, (uint8_t)format);
	ret = ret ?: put_u8(b, m->kind);
	ret = ret ?: put_u8(b, m->layout);
	ret = ret ?: put_u8(b, m->k);
	ret = ret ?: put_u8(b, m->m);
	ret = ret ?: put_u8(b, (uint8_t)(m->cksum_alg |
				   (m->cksum_composite ? GW_META_CKSUM_COMPOSITE : 0)));
	ret = ret ?: put_be(b, m->nhdr, 2);
	ret = ret ?: put_be(b, m->version, 8);
	ret = ret ?: put_be(b, m->size, 8);
	ret = ret ?: put_be(b, m->seg_size, 4);
	ret = ret ?: s3_buf_add(b, m->md5, 16);
	ret = ret ?: s3_buf_add(b, m->cksum, 32);
	ret = ret ?: put_be(b, m->nover, 4);
	ret = ret ?: put_str(b, m->owner);
	for (uint32_t i = 0; !ret && i < m->nhdr; i++)
		ret = put_str(b, m->hdr[i].name) ?: put_str(b, m->hdr[i].value);
	for (uint32_t i = 0; !ret && i < m->nover; i++)
		ret = put_be(b, m->over[i].seg, 4) ?: put_u8(b, m->over[i].frag) ?:
		      put_be(b, m->over[i].dev, 4);
	if (!ret && format != GW_META_FORMAT)
		ret = put_be(b, m->nparts, 4) ?: put_be(b, m->manifest_len, 4);
	if (!ret && format == GW_META_FORMAT_POLICY)
		ret = put_u8(b, m->policy);
	if (ret)
		return ret == -E2BIG ? -E2BIG : ret;
	return b->len > STO_MAX_META ? -E2BIG : 0;
}

struct rd {
	const uint8_t *p;
	size_t n;
	bool bad;
};

static uint64_t get_be(struct rd *r, unsigned bytes)
{
	uint64_t v = 0;

	if (r->bad || r->n < bytes) {
		r->bad = true;
		return 0;
	}
	for (unsigned i = 0; i < bytes; i++)
		v = v << 8 | r->p[i];
	r->p += bytes;
	r->n -= bytes;
	return v;
}

static void get_bytes(struct rd *r, void *out, size_t n)
{
	if (r->bad || r->n < n) {
		r->bad = true;
		return;
	}
	memcpy(out, r->p, n);
	r->p += n;
	r->n -= n;
}

static char *get_str(struct rd *r)
{
	size_t n = get_be(r, 2);
	char *s;

	/* A NUL inside would not survive a round trip (fuzz_gw_records). */
	if (r->bad || r->n < n || memchr(r->p, '\0', n)) {
		r->bad = true;
		return NULL;
	}
	s = s3_strndup((const char *)r->p, n);
	r->p += n;
	r->n -= n;
	if (!s)
		r->bad = true;
	return s;
}

int gw_meta_decode(const void *p, size_t n, struct gw_meta *m)
{
	struct rd r = { .p = p, .n = n };
	uint32_t nhdr, nover;
	unsigned format;

	memset(m, 0, sizeof(*m));
	if (n < 1)
		return -EINVAL;
	format = (unsigned)get_be(&r, 1);
	if (format != GW_META_FORMAT && format != GW_META_FORMAT_MPU &&
	    format != GW_META_FORMAT_POLICY)
		return -EPROTO;
	m->kind = (uint8_t)get_be(&r, 1);
	m->layout = (uint8_t)get_be(&r, 1);
	m->k = (uint8_t)get_be(&r, 1);
	m->m = (uint8_t)get_be(&r, 1);
	m->cksum_alg = (uint8_t)get_be(&r, 1);
	m->cksum_composite = m->cksum_alg & GW_META_CKSUM_COMPOSITE;
	m->cksum_alg &= (uint8_t)~GW_META_CKSUM_COMPOSITE;
	nhdr = (uint32_t)get_be(&r, 2);
	m->version = get_be(&r, 8);
	m->size = get_be(&r, 8);
	m->seg_size = (uint32_t)get_be(&r, 4);
	get_bytes(&r, m->md5, 16);
	get_bytes(&r, m->cksum, 32);
	nover = (uint32_t)get_be(&r, 4);
	if (r.bad || nhdr > GW_META_MAX_HDRS || nover > GW_META_MAX_OVERRIDES ||
	    m->cksum_alg >= S3_CKSUM_END)
		return -EINVAL;
	if (m->kind != GW_META_OBJECT && m->kind != GW_META_BUCKET &&
	    m->kind != GW_META_UPLOAD)
		return -EINVAL;
	if (m->kind == GW_META_OBJECT) {
		if (m->layout == GW_LAYOUT_EC || m->layout == GW_LAYOUT_MULTIPART) {
			if (m->k < 1 || m->k > GW_EC_MAX_K || m->m < 1 ||
			    m->m > GW_EC_MAX_M || m->seg_size == 0 ||
			    m->seg_size % m->k)
				return -EINVAL;
		} else if (m->layout != GW_LAYOUT_INLINE) {
			return -EINVAL;
		}
	}
	m->owner = get_str(&r);
	if (r.bad)
		return -EINVAL;
	m->hdr = calloc(nhdr ? nhdr : 1, sizeof(*m->hdr));
	m->over = calloc(nover ? nover : 1, sizeof(*m->over));
	if (!m->hdr || !m->over)
		return -ENOMEM;
	for (; m->nhdr < nhdr; m->nhdr++) {
		m->hdr[m->nhdr].name = get_str(&r);
		m->hdr[m->nhdr].value = get_str(&r);
		if (r.bad) {
			m->nhdr++;
			return -EINVAL;
		}
	}
	for (; m->nover < nover; m->nover++) {
		m->over[m->nover].seg = (uint32_t)get_be(&r, 4);
		m->over[m->nover].frag = (uint8_t)get_be(&r, 1);
		m->over[m->nover].dev = (uint32_t)get_be(&r, 4);
		if (r.bad || m->over[m->nover].frag >= m->k + m->m)
			return -EINVAL;
	}
	if (format == GW_META_FORMAT_MPU) {
		m->nparts = (uint32_t)get_be(&r, 4);
		m->manifest_len = (uint32_t)get_be(&r, 4);
		if (r.bad || !m->nparts || m->nparts > S3_MAX_PARTS)
			return -EINVAL;
	} else if (format == GW_META_FORMAT_POLICY) {
		/* 0 parts: a simple object; policy 0 is written as format 1/2 */
		m->nparts = (uint32_t)get_be(&r, 4);
		m->manifest_len = (uint32_t)get_be(&r, 4);
		m->policy = (uint8_t)get_be(&r, 1);
		if (r.bad || m->nparts > S3_MAX_PARTS || !m->policy)
			return -EINVAL;
	}
	if ((m->layout == GW_LAYOUT_MULTIPART) != (m->nparts > 0) &&
	    m->kind == GW_META_OBJECT)
		return -EINVAL;
	return r.n ? -EINVAL : 0;
}

void gw_meta_free(struct gw_meta *m)
{
	for (uint32_t i = 0; m->hdr && i < m->nhdr; i++) {
		free(m->hdr[i].name);
		free(m->hdr[i].value);
	}
	free(m->hdr);
	free(m->over);
	free(m->owner);
	memset(m, 0, sizeof(*m));
}

int gw_meta_add_hdr(struct gw_meta *m, const char *name, size_t nlen,
		    const char *value, size_t vlen)
{
	struct gw_meta_hdr *v;

	if (m->nhdr >= GW_META_MAX_HDRS || nlen > UINT16_MAX || vlen > UINT16_MAX)
		return -E2BIG;
	v = realloc(m->hdr, (m->nhdr + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->hdr = v;
	v[m->nhdr].name = s3_strndup(name, nlen);
	v[m->nhdr].value = s3_strndup(value, vlen);
	if (!v[m->nhdr].name || !v[m->nhdr].value) {
		free(v[m->nhdr].name);
		free(v[m->nhdr].value);
		return -ENOMEM;
	}
	for (char *c = v[m->nhdr].name; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	m->nhdr++;
	return 0;
}

void gw_meta_del_hdr(struct gw_meta *m, const char *name)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < m->nhdr; i++) {
		if (!strcmp(m->hdr[i].name, name)) {
			free(m->hdr[i].name);
			free(m->hdr[i].value);
			continue;
		}
		m->hdr[k++] = m->hdr[i];
	}
	m->nhdr = k;
}

const char *gw_meta_hdr_get(const struct gw_meta *m, const char *name)
{
	for (uint32_t i = 0; i < m->nhdr; i++)
		if (!strcmp(m->hdr[i].name, name))
			return m->hdr[i].value;
	return NULL;
}

void gw_meta_etag(const struct gw_meta *m, char out[S3_ETAG_MAX])
{
	s3_etag_from_md5(m->md5, out);
	if (m->nparts) {
		size_t n = strlen(out);

		snprintf(out + n - 1, S3_ETAG_MAX - (n - 1), "-%u\"", m->nparts);
	}
}

bool gw_meta_cksum_show(const struct gw_meta *m, char out[GW_CKSUM_SHOW_MAX])
{
	int n;

	if (m->cksum_alg == S3_CKSUM_NONE || m->cksum_alg == S3_CKSUM_MD5)
		return false;
	n = s3_base64_encode(m->cksum, s3_cksum_len(m->cksum_alg), out,
			     GW_CKSUM_SHOW_MAX);
	if (n < 0)
		return false;
	if (m->cksum_composite)
		snprintf(out + n, GW_CKSUM_SHOW_MAX - (size_t)n, "-%u", m->nparts);
	return true;
}

const char *gw_meta_cksum_type(const struct gw_meta *m)
{
	return m->cksum_composite ? "COMPOSITE" : "FULL_OBJECT";
}

uint32_t gw_meta_dev(const struct gw_meta *m, uint32_t seg, unsigned frag,
		     uint32_t prim)
{
	for (uint32_t i = 0; i < m->nover; i++)
		if (m->over[i].seg == seg && m->over[i].frag == frag)
			return m->over[i].dev;
	return prim;
}

uint64_t gw_meta_segments(const struct gw_meta *m)
{
	if (m->layout != GW_LAYOUT_EC || !m->seg_size)
		return 0;
	return (m->size + m->seg_size - 1) / m->seg_size;
}

void gw_seg_geometry(uint64_t size, uint32_t seg_size, unsigned k, uint64_t seg,
		     uint64_t *seg_len, uint32_t *frag_len)
{
	uint64_t start = seg * seg_size, len = size - start;
	uint64_t f;

	if (len > seg_size)
		len = seg_size;
	f = (len + k - 1) / k;
	f = (f + GW_EC_ALIGN - 1) / GW_EC_ALIGN * GW_EC_ALIGN;
	*seg_len = len;
	*frag_len = (uint32_t)f;
}
