/* storage/volume.c: the on-disk record format of volume files. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void le16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static void le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }
static uint16_t rd16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

uint64_t sto_rec_nchunks(uint64_t data_len)
{
	return (data_len + STO_CHUNK - 1) >> STO_CHUNK_SHIFT;
}

uint64_t sto_rec_len(uint32_t meta_len, uint64_t data_len)
{
	uint64_t n = sto_rec_table_off(meta_len, data_len) + 4 * sto_rec_nchunks(data_len);

	return (n + STO_REC_ALIGN - 1) & ~(uint64_t)(STO_REC_ALIGN - 1);
}

/* Layout (little-endian):
 *  0 magic  4 version:16 flags:16  8 part  12 frag  16 name[16]  32 ts
 * 40 data_len  48 meta_len  52 data_crc  56 reserved  60 hdr_crc */
void sto_rec_encode(const struct sto_rec *r, const void *meta,
		    uint8_t out[STO_REC_HDR])
{
	uint32_t crc;

	memset(out, 0, STO_REC_HDR);
	le32(out, STO_REC_MAGIC);
	le16(out + 4, STO_REC_VERSION);
	le16(out + 6, r->flags);
	le32(out + 8, r->key.part);
	le32(out + 12, r->key.frag);
	memcpy(out + 16, r->key.name, STO_NAME_HASH_LEN);
	le64(out + 32, r->ts);
	le64(out + 40, r->data_len);
	le32(out + 48, r->meta_len);
	le32(out + 52, r->data_crc);
	crc = sto_crc32c(0, out, 60);
	crc = sto_crc32c(crc, meta, r->meta_len);
	le32(out + 60, crc);
}

int sto_rec_decode(const uint8_t *buf, size_t len, struct sto_rec *r)
{
	uint32_t crc;

	if (len < STO_REC_HDR || rd32(buf) != STO_REC_MAGIC ||
	    rd16(buf + 4) != STO_REC_VERSION)
		return STO_EPROTO;
	memset(r, 0, sizeof(*r));
	r->flags = rd16(buf + 6);
	r->key.part = rd32(buf + 8);
	r->key.frag = rd32(buf + 12);
	memcpy(r->key.name, buf + 16, STO_NAME_HASH_LEN);
	r->ts = rd64(buf + 32);
	r->data_len = rd64(buf + 40);
	r->meta_len = rd32(buf + 48);
	r->data_crc = rd32(buf + 52);
	if (r->meta_len > STO_MAX_META || r->data_len > STO_MAX_FRAGMENT)
		return STO_EPROTO;
	if (len < STO_REC_HDR + (size_t)r->meta_len)
		return -EAGAIN;
	crc = sto_crc32c(0, buf, 60);
	crc = sto_crc32c(crc, buf + STO_REC_HDR, r->meta_len);
	if (crc != rd32(buf + 60))
		return STO_EPROTO;
	return 0;
}

int sto_vol_scan(int fd, uint64_t end,
		 int (*fn)(void *arg, uint64_t off, const struct sto_rec *r),
		 void *arg)
{
	size_t cap = STO_REC_HDR + STO_MAX_META;
	uint8_t *buf = malloc(cap);
	uint64_t off = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	while (off + STO_REC_HDR <= end) {
		struct sto_rec r;
		size_t want = cap;
		ssize_t n;

		if (off + want > end)
			want = end - off;
		n = pread(fd, buf, want, (off_t)off);
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n < STO_REC_HDR)
			break;
		if (sto_rec_decode(buf, (size_t)n, &r) == 0 &&
		    off + sto_rec_len(r.meta_len, r.data_len) <= end) {
			ret = fn(arg, off, &r);
			if (ret)
				break;
			off += sto_rec_len(r.meta_len, r.data_len);
		} else {
			off += STO_REC_ALIGN;	/* garbage: resync */
		}
	}
	free(buf);
	return ret;
}

int sto_vol_path(char *buf, size_t len, const char *dir, uint32_t id)
{
	int n = snprintf(buf, len, "%s/vol-%08x.dat", dir, id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
