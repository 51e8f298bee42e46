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
 * 40 data_len  48 meta_len  52 data_crc  56 cold_after  60 hdr_crc
 * flags: STO_REC_TOMBSTONE, STO_REC_COPY, tier class in bits 8-9. */
void sto_rec_encode(const struct sto_rec *r, const void *meta,
		    uint8_t out[STO_REC_HDR])
{
	uint32_t crc;

	memset(out, 0, STO_REC_HDR);
	le32(out, STO_REC_MAGIC);
	le16(out + 4, STO_REC_VERSION);
	le16(out + 6, (uint16_t)((r->flags & ~(3u << STO_REC_TIER_SHIFT)) |
				 (uint16_t)(r->tier & 3) << STO_REC_TIER_SHIFT));
	le32(out + 8, r->key.part);
	le32(out + 12, r->key.frag);
	memcpy(out + 16, r->key.name, STO_NAME_HASH_LEN);
	le64(out + 32, r->ts);
	le64(out + 40, r->data_len);
	le32(out + 48, r->meta_len);
	le32(out + 52, r->data_crc);
	le32(out + 56, r->cold_after);
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
	r->tier = (r->flags >> STO_REC_TIER_SHIFT) & 3;
	r->flags &= ~(3u << STO_REC_TIER_SHIFT);
	r->key.part = rd32(buf + 8);
	r->key.frag = rd32(buf + 12);
	memcpy(r->key.name, buf + 16, STO_NAME_HASH_LEN);
	r->ts = rd64(buf + 32);
	r->data_len = rd64(buf + 40);
	r->meta_len = rd32(buf + 48);
	r->data_crc = rd32(buf + 52);
	r->cold_after = rd32(buf + 56);
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

/* Reads [off, off + len) whole (pread; start-up only). */
static int read_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Does the record at off have all its data and a matching chunk table? */
static int rec_is_whole(int fd, uint64_t off, const struct sto_rec *r,
			uint8_t *buf, size_t cap)
{
	uint64_t nch = sto_rec_nchunks(r->data_len);
	uint64_t doff = off + sto_rec_data_off(r->meta_len);
	uint64_t toff = off + sto_rec_table_off(r->meta_len, r->data_len);
	uint32_t crc = 0;
	int ret;

	for (uint64_t c = 0; c < nch; c++) {
		uint64_t s = c << STO_CHUNK_SHIFT;
		size_t n = r->data_len - s < STO_CHUNK ? r->data_len - s : STO_CHUNK;
		uint8_t t[4];

		(void)cap;
		ret = read_full(fd, buf, n, doff + s);
		if (ret == 0)
			ret = read_full(fd, t, 4, toff + 4 * c);
		if (ret < 0)
			return ret == -EIO ? 0 : ret;
		if (sto_crc32c(0, buf, n) != rd32(t))
			return 0;
		crc = sto_crc32c(crc, buf, n);
	}
	return crc == r->data_crc;
}

int sto_vol_replay(int fd, uint64_t start, uint64_t end,
		   int (*fn)(void *arg, uint64_t off, const struct sto_rec *r,
			     const uint8_t *meta),
		   void *arg, uint64_t *last_end)
{
	const size_t win = 4u << 20;		/* read window, >= one header + meta */
	uint8_t *buf = malloc(win), *dbuf = malloc(STO_CHUNK);
	uint64_t off = start, boff = 0, blen = 0;
	int ret = 0;

	*last_end = start;
	if (!buf || !dbuf) {
		ret = -ENOMEM;
		goto out_free;
	}
	off = (off + STO_REC_ALIGN - 1) & ~(uint64_t)(STO_REC_ALIGN - 1);
	while (off + STO_REC_HDR <= end) {
		uint64_t want = STO_REC_HDR + STO_MAX_META;
		struct sto_rec r;
		uint64_t len;

		if (off + want > end)
			want = end - off;
		if (off < boff || off + want > boff + blen) {
			uint64_t n = end - off < win ? end - off : win;
			ssize_t got = pread(fd, buf, n, (off_t)off);

			if (got < 0) {
				ret = -errno;
				break;
			}
			boff = off;
			blen = (uint64_t)got;
			if (blen < STO_REC_HDR)
				break;
			if (want > blen)
				want = blen;
		}
		if (sto_rec_decode(buf + (off - boff), want, &r) != 0 ||
		    off + (len = sto_rec_len(r.meta_len, r.data_len)) > end) {
			off += STO_REC_ALIGN;	/* garbage (zeros past the tail): resync */
			continue;
		}
		*last_end = off + len;
		ret = rec_is_whole(fd, off, &r, dbuf, STO_CHUNK);
		if (ret < 0)
			break;
		if (ret == 1) {
			ret = fn(arg, off, &r, buf + (off - boff) + STO_REC_HDR);
			if (ret)
				break;
		}
		ret = 0;
		off += len;
	}
out_free:
	free(buf);
	free(dbuf);
	return ret;
}

int sto_vol_path(char *buf, size_t len, const char *dir, uint32_t id)
{
	int n = snprintf(buf, len, "%s/vol-%08x.dat", dir, id);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
