/* Unit tests: the engine on a real loop and io_uring: write, read, range,
 * overwrite, delete, list, reopen, and quarantine of a corrupted fragment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "internal.h"

static char dir[64], hot[96];
static uv_loop_t loop;
static struct sto_engine *eng;

struct res {
	bool done;
	int status;
	struct sto_loc loc;
	uint8_t *data;
	size_t len;
	size_t n;
};

static void open_engine(void)
{
	struct sto_engine_cfg cfg = { .nhot = 1, .hot = { hot }, .map_size = 1 << 26,
				      .vol_max = 1 << 20, .atime_interval = 1,
				      .zero_ahead = STO_ZERO_AHEAD };

	assert_int_equal(sto_engine_open(&loop, &cfg, &eng), 0);
}

static void on_closed(void *arg)
{
	*(bool *)arg = true;
}

static void close_engine(void)
{
	bool done = false;

	sto_engine_close(eng, on_closed, &done);
	while (!done)
		uv_run(&loop, UV_RUN_ONCE);
	eng = NULL;
}

static int setup(void **state)
{
	strcpy(dir, "/tmp/test-engine.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(hot, sizeof(hot), "%s/hot", dir);
	uv_loop_init(&loop);
	open_engine();
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	if (eng)
		close_engine();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static void fill(uint8_t *b, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (uint8_t)(seed >> 33);
	}
}

static void wait_res(struct res *r)
{
	while (!r->done)
		uv_run(&loop, UV_RUN_ONCE);
}

static void on_put(void *arg, int status, const struct sto_loc *loc)
{
	struct res *r = arg;

	r->status = status;
	r->loc = *loc;
	r->done = true;
}

static void on_resume(void *arg)
{
}

static int put(const struct sto_key *k, uint64_t ts, const uint8_t *data,
	       size_t len, uint32_t crc)
{
	struct res r = { 0 };
	struct sto_put *p;
	size_t off = 0;
	int ret;

	ret = sto_put_begin(eng, k, ts, "meta", 4, len, crc, on_put, on_resume, &r, &p);
	if (ret < 0)
		return ret;
	while (off < len) {
		void *buf;
		size_t n;

		ret = sto_put_buf(p, &buf, &n);
		if (ret == -EAGAIN) {
			uv_run(&loop, UV_RUN_ONCE);
			continue;
		}
		assert_int_equal(ret, 0);
		if (n > len - off)
			n = len - off;
		if (n > 5000)
			n = 5000;	/* odd-sized pieces, across chunk edges */
		memcpy(buf, data + off, n);
		sto_put_fill(p, n);
		off += n;
	}
	wait_res(&r);
	return r.status;
}

static void on_read(void *arg, int status, const uint8_t *data, size_t len, void *buf)
{
	struct res *r = arg;

	r->status = status;
	if (status == 0) {
		r->data = malloc(len + 1);
		memcpy(r->data, data, len);
		r->len = len;
	}
	free(buf);
	r->done = true;
}

/* Reads [off, off + len) in STO_READ_PIECE pieces into out. */
static int get(const struct sto_key *k, uint64_t off, uint64_t len, uint8_t *out)
{
	struct sto_loc loc;
	int ret = sto_lookup(eng, k, &loc, NULL);

	if (ret < 0)
		return ret;
	while (len) {
		struct res r = { 0 };
		uint64_t n = len < STO_READ_PIECE ? len : STO_READ_PIECE;

		ret = sto_read(eng, k, &loc, off, n, on_read, &r);
		if (ret < 0)
			return ret;
		wait_res(&r);
		if (r.status < 0)
			return r.status;
		memcpy(out, r.data, n);
		free(r.data);
		out += n;
		off += n;
		len -= n;
	}
	return 0;
}

static struct sto_key key(uint32_t part, uint8_t a)
{
	struct sto_key k = { .part = part, .frag = a % 3 };

	memset(k.name, a, sizeof(k.name));
	return k;
}

static void test_write_read(void **state)
{
	static const size_t sizes[] = { 0, 1, 4096, 65536, 65537, 1 << 20, (3 << 20) + 5 };
	size_t max = (3 << 20) + 5;
	uint8_t *a = malloc(max), *b = malloc(max);

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct sto_key k = key(1, (uint8_t)i);

		fill(a, sizes[i], i);
		assert_int_equal(put(&k, 10, a, sizes[i], sto_crc32c(0, a, sizes[i])), 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct sto_key k = key(1, (uint8_t)i);
		struct sto_loc loc;

		fill(a, sizes[i], i);
		assert_int_equal(sto_lookup(eng, &k, &loc, NULL), 0);
		assert_int_equal(loc.size, sizes[i]);
		assert_int_equal(loc.crc, sto_crc32c(0, a, sizes[i]));
		assert_int_equal(get(&k, 0, sizes[i], b), 0);
		assert_memory_equal(a, b, sizes[i]);
	}
	/* Ranges of the big one, across chunk and piece boundaries. */
	{
		struct sto_key k = key(1, 6);
		static const uint64_t r[][2] = { { 0, 1 }, { 65535, 2 }, { 70000, 200000 },
						 { (1 << 20) - 3, 10 }, { (3 << 20), 5 } };

		fill(a, max, 6);
		for (size_t i = 0; i < ARRAY_SIZE(r); i++) {
			assert_int_equal(get(&k, r[i][0], r[i][1], b), 0);
			assert_memory_equal(a + r[i][0], b, r[i][1]);
		}
	}
	/* A wrong CRC stores nothing. */
	{
		struct sto_key k = key(2, 1);

		assert_int_equal(put(&k, 10, a, 1000, 1), STO_ECRC);
		assert_int_equal(get(&k, 0, 1, b), -ENOENT);
	}
	/* Reopen: everything is still there, new writes append. */
	close_engine();
	open_engine();
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct sto_key k = key(1, (uint8_t)i);

		fill(a, sizes[i], i);
		assert_int_equal(get(&k, 0, sizes[i], b), 0);
		assert_memory_equal(a, b, sizes[i]);
	}
	{
		struct sto_key k = key(3, 1);

		fill(a, 300000, 99);
		assert_int_equal(put(&k, 10, a, 300000, sto_crc32c(0, a, 300000)), 0);
		assert_int_equal(get(&k, 0, 300000, b), 0);
		assert_memory_equal(a, b, 300000);
	}
	free(a);
	free(b);
}

static void on_del(void *arg, int status, const struct sto_loc *loc)
{
	on_put(arg, status, loc);
}

static int del(const struct sto_key *k, uint64_t ts)
{
	struct res r = { 0 };

	int ret = sto_del(eng, k, ts, on_del, &r);

	if (ret < 0)
		return ret;	/* early conflict */
	wait_res(&r);
	return r.status;
}

/* Acknowledged before indexed: lets the index commits catch up. */
static void settle(void)
{
	while (sto_engine_commits_pending(eng))
		uv_run(&loop, UV_RUN_ONCE);
}

static void on_list(void *arg, int status, const struct sto_suffix_hash *sfx,
		    const struct sto_list_entry *ents, size_t n)
{
	struct res *r = arg;

	r->status = status;
	r->n = n;
	r->done = true;
}

static void test_overwrite_delete_list(void **state)
{
	struct sto_key k = key(5, 9);
	uint8_t a[3000], b[3000];
	struct sto_loc loc;
	struct res r = { 0 };

	fill(a, sizeof(a), 1);
	assert_int_equal(put(&k, 100, a, 1000, sto_crc32c(0, a, 1000)), 0);
	assert_int_equal(put(&k, 200, a + 1, 2000, sto_crc32c(0, a + 1, 2000)), 0);
	assert_int_equal(put(&k, 150, a, 1000, sto_crc32c(0, a, 1000)), STO_ECONFLICT);
	assert_int_equal(get(&k, 0, 2000, b), 0);
	assert_memory_equal(a + 1, b, 2000);
	assert_int_equal(del(&k, 180), STO_ECONFLICT);
	assert_int_equal(del(&k, 300), 0);
	assert_int_equal(sto_lookup(eng, &k, &loc, NULL), -ENOENT);
	assert_true(loc.flags & STO_LOC_TOMBSTONE);
	assert_int_equal(put(&k, 250, a, 1000, sto_crc32c(0, a, 1000)), STO_ECONFLICT);

	assert_int_equal(put(&(struct sto_key){ .part = 5, .name = { 0xff } }, 1, a, 10,
			     sto_crc32c(0, a, 10)), 0);
	assert_int_equal(sto_list(eng, 5, false, 0, on_list, &r), 0);
	wait_res(&r);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.n, 2);
	memset(&r, 0, sizeof(r));
	assert_int_equal(sto_list(eng, 5, true, sto_suffix_of(k.name), on_list, &r), 0);
	wait_res(&r);
	assert_int_equal(r.n, 1);
}

static int purge(const struct sto_key *k, uint64_t ts)
{
	struct res r = { 0 };
	int ret = sto_purge_entry(eng, k, ts, on_put, &r);

	if (ret < 0)
		return ret;
	wait_res(&r);
	return r.status;
}

/* PURGE drops exactly the version asked for, leaves no tombstone (an older
 * PUT is accepted again), and a restart - with the index, or replaying every
 * volume without it - does not bring the purged entries back. */
static void test_purge(void **state)
{
	struct sto_key k = key(7, 1), t = key(7, 2), o = key(7, 3);
	uint8_t a[3000], b[3000];
	struct sto_loc loc;
	char cmd[160];

	fill(a, sizeof(a), 3);
	assert_int_equal(put(&k, 100, a, 3000, sto_crc32c(0, a, 3000)), 0);
	assert_int_equal(put(&o, 100, a, 2000, sto_crc32c(0, a, 2000)), 0);
	assert_int_equal(del(&t, 50), -ENOENT);		/* a tombstone only */
	assert_int_equal(purge(&k, 99), STO_ECONFLICT);
	assert_int_equal(purge(&k, 101), STO_ECONFLICT);
	assert_int_equal(purge(&(struct sto_key){ .part = 7 }, 1), -ENOENT);
	assert_int_equal(purge(&k, 100), 0);
	assert_int_equal(purge(&t, 50), 0);
	memset(&loc, 0, sizeof(loc));	/* (untouched when there is no entry) */
	assert_int_equal(sto_lookup(eng, &k, &loc, NULL), -ENOENT);
	assert_false(loc.flags & STO_LOC_TOMBSTONE);
	memset(&loc, 0, sizeof(loc));
	assert_int_equal(sto_lookup(eng, &t, &loc, NULL), -ENOENT);
	assert_false(loc.flags & STO_LOC_TOMBSTONE);
	assert_int_equal(sto_engine_counters(eng)->purged, 2);
	for (int round = 0; round < 2; round++) {
		close_engine();
		if (round == 1) {	/* every record replayed, purges last */
			snprintf(cmd, sizeof(cmd), "rm -rf %s/index", hot);
			assert_int_equal(system(cmd), 0);
		}
		open_engine();
		memset(&loc, 0, sizeof(loc));	/* (untouched when there is no entry) */
	assert_int_equal(sto_lookup(eng, &k, &loc, NULL), -ENOENT);
		assert_false(loc.flags & STO_LOC_TOMBSTONE);
		memset(&loc, 0, sizeof(loc));
	assert_int_equal(sto_lookup(eng, &t, &loc, NULL), -ENOENT);
		assert_false(loc.flags & STO_LOC_TOMBSTONE);
		assert_int_equal(get(&o, 0, 2000, b), 0);
		assert_memory_equal(a, b, 2000);
	}
	/* no tombstone: the same version may come back (a push) */
	assert_int_equal(put(&k, 100, a, 3000, sto_crc32c(0, a, 3000)), 0);
	assert_int_equal(get(&k, 0, 3000, b), 0);
	assert_memory_equal(a, b, 3000);
	close_engine();
	snprintf(cmd, sizeof(cmd), "rm -rf %s/index", hot);
	assert_int_equal(system(cmd), 0);
	open_engine();
	/* the earlier purge names the earlier record only */
	assert_int_equal(get(&k, 0, 3000, b), 0);
	assert_memory_equal(a, b, 3000);
}

static void test_quarantine(void **state)
{
	struct sto_key k = key(6, 1), k2 = key(6, 2);
	uint8_t *a = malloc(2 << 20), *b = malloc(2 << 20);
	struct sto_loc loc, loc2;
	struct sto_stat st;
	char path[256];
	int fd;

	fill(a, 2 << 20, 3);
	assert_int_equal(put(&k, 1, a, 5000, sto_crc32c(0, a, 5000)), 0);
	assert_int_equal(put(&k2, 1, a, 2 << 20, sto_crc32c(0, a, 2 << 20)), 0);
	assert_int_equal(sto_lookup(eng, &k, &loc, NULL), 0);
	assert_int_equal(sto_lookup(eng, &k2, &loc2, NULL), 0);
	/* Flip a byte of each on disk. */
	snprintf(path, sizeof(path), "%s/vol-%08x.dat", hot, loc.vol);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, loc.off + sto_rec_data_off(4) + 100), 1);
	close(fd);
	snprintf(path, sizeof(path), "%s/vol-%08x.dat", hot, loc2.vol);
	fd = open(path, O_RDWR);
	assert_int_equal(pwrite(fd, "X", 1, loc2.off + sto_rec_data_off(4) + (1 << 20) + 7), 1);
	close(fd);
	/* A range of the big one away from the damage still reads. */
	assert_int_equal(get(&k2, 0, 65536, b), 0);
	assert_memory_equal(a, b, 65536);
	assert_int_equal(get(&k, 0, 5000, b), STO_ECRC);
	assert_int_equal(get(&k2, 1 << 20, 10, b), STO_ECRC);
	/* Quarantined (index commit), never served again. */
	for (int i = 0; i < 50; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	close_engine();
	open_engine();
	assert_int_equal(sto_lookup(eng, &k, &loc, NULL), -ENOENT);
	assert_int_equal(sto_lookup(eng, &k2, &loc, NULL), -ENOENT);
	sto_engine_stat(eng, &st);
	assert_int_equal(st.quarantined, 2);
	free(a);
	free(b);
}

static void test_nospace_reserve(void **state)
{
	struct sto_engine_cfg cfg = { .nhot = 1, .hot = { hot }, .map_size = 1 << 26,
				      .reserve_pct = 100 };
	struct sto_key k = key(7, 1);
	struct sto_put *p;
	struct res r = { 0 };

	close_engine();
	assert_int_equal(sto_engine_open(&loop, &cfg, &eng), 0);
	assert_int_equal(sto_put_begin(eng, &k, 1, NULL, 0, 10, 0, on_put, on_resume,
				       &r, &p), -ENOSPC);
}

/* A GET (lookup) older than the interval queues one atime update, which
 * rides along with the next commit; more GETs in the same interval add
 * nothing. */
static void test_atime(void **state)
{
	struct sto_key k = key(9, 1), other = key(9, 2);
	uint8_t a[100] = { 1 };
	struct sto_loc l0, l1;
	struct sto_stat st0, st1;

	assert_int_equal(put(&k, 1, a, sizeof(a), sto_crc32c(0, a, sizeof(a))), 0);
	settle();			/* atime is kept for indexed entries */
	assert_int_equal(sto_lookup(eng, &k, &l0, NULL), 0);
	usleep(2100000);		/* > atime_interval (1 s) */
	assert_int_equal(sto_lookup(eng, &k, &l1, NULL), 0);
	assert_int_equal(l1.atime, l0.atime);	/* not yet committed */
	for (int i = 0; i < 10; i++)
		assert_int_equal(sto_lookup(eng, &k, &l1, NULL), 0);
	sto_engine_stat(eng, &st0);
	assert_int_equal(del(&other, 5), -ENOENT);	/* a commit to ride along */
	settle();
	sto_engine_stat(eng, &st1);
	assert_int_equal(sto_lookup(eng, &k, &l1, NULL), 0);
	assert_true(l1.atime >= l0.atime + 2);
	/* Rode along with the tombstone's commit, or went alone on its 1 s
	 * timer while the tombstone record was being written. */
	assert_in_range(st1.group_commits - st0.group_commits, 1, 2);
}

struct cmp_res {
	bool done;
	int status;
	uint64_t moved;
};

static void on_compacted(void *arg, int status, uint64_t moved)
{
	struct cmp_res *r = arg;

	r->status = status;
	r->moved = moved;
	r->done = true;
}

static void test_compaction(void **state)
{
	size_t len = 90000;
	uint8_t *a = malloc(len), *b = malloc(len);
	struct sto_loc loc, old_a0;
	struct cmp_res cr = { 0 };
	struct res rd = { 0 };
	uint64_t tail, dead;
	char path[256];
	unsigned i;

	/* 11 records fill volume 1 (1 MiB volumes in these tests). */
	for (i = 0; i < 11; i++) {
		struct sto_key k = key(8, (uint8_t)i);

		fill(a, len, 100 + i);
		assert_int_equal(put(&k, 10, a, len, sto_crc32c(0, a, len)), 0);
		assert_int_equal(sto_lookup(eng, &k, &loc, NULL), 0);
		assert_int_equal(loc.vol, 1);
	}
	/* Overwrite 5, delete 1: their volume-1 copies are dead. */
	for (i = 5; i < 10; i++) {
		struct sto_key k = key(8, (uint8_t)i);

		fill(a, len, 200 + i);
		assert_int_equal(put(&k, 20, a, len, sto_crc32c(0, a, len)), 0);
		assert_int_equal(sto_lookup(eng, &k, &loc, NULL), 0);
		assert_int_not_equal(loc.vol, 1);
	}
	{
		struct sto_key k = key(8, 10);

		assert_int_equal(del(&k, 30), 0);
	}
	settle();
	assert_int_equal(sto_idx_vol_info(sto_engine_idx(eng), 0, 0, 1, &tail, &dead), 0);
	assert_int_equal(dead, 6 * sto_rec_len(4, len));
	/* The active volume can't be compacted; volume 1 can. */
	assert_int_equal(sto_compact(eng, 0, 0, loc.vol, on_compacted, &cr), -EBUSY);
	{
		struct sto_key k = key(8, 0);

		assert_int_equal(sto_lookup(eng, &k, &old_a0, NULL), 0);
	}
	assert_int_equal(sto_compact(eng, 0, 0, 1, on_compacted, &cr), 0);
	assert_int_equal(sto_compact(eng, 0, 0, 1, on_compacted, &cr), -EBUSY);
	/* A read of the old place, in flight meanwhile, still completes. */
	{
		struct sto_key k = key(8, 0);

		assert_int_equal(sto_read(eng, &k, &old_a0, 0, len, on_read, &rd), 0);
	}
	while (!cr.done || !rd.done)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(cr.status, 0);
	assert_int_equal(cr.moved, 5);
	assert_int_equal(rd.status, 0);
	fill(a, len, 100);
	assert_memory_equal(rd.data, a, len);
	free(rd.data);
	snprintf(path, sizeof(path), "%s/vol-%08x.dat", hot, 1);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(sto_idx_vol_info(sto_engine_idx(eng), 0, 0, 1, &tail, &dead), -ENOENT);
	/* Everything reads back as before, after a reopen too. */
	for (int round = 0; round < 2; round++) {
		for (i = 0; i < 10; i++) {
			struct sto_key k = key(8, (uint8_t)i);

			fill(a, len, i < 5 ? 100 + i : 200 + i);
			assert_int_equal(get(&k, 0, len, b), 0);
			assert_memory_equal(a, b, len);
			assert_int_equal(sto_lookup(eng, &k, &loc, NULL), 0);
			assert_int_not_equal(loc.vol, 1);
		}
		{
			struct sto_key k = key(8, 10);

			/* Younger than the reclaim age (7 days): kept. */
			assert_int_equal(sto_lookup(eng, &k, &loc, NULL), -ENOENT);
			assert_true(loc.flags & STO_LOC_TOMBSTONE);
		}
		close_engine();
		open_engine();
	}
	free(a);
	free(b);
}

/* Bytes of [start, end) of fd that are allocated and written (not holes,
 * not unwritten extents), or -1 when the filesystem can't tell (FIEMAP). */
static int64_t written_bytes(int fd, uint64_t start, uint64_t end)
{
	struct fiemap *fm = calloc(1, sizeof(*fm) + 64 * sizeof(struct fiemap_extent));
	int64_t n = 0;

	assert_non_null(fm);
	fm->fm_start = start;
	fm->fm_length = end - start;
	fm->fm_flags = FIEMAP_FLAG_SYNC;
	fm->fm_extent_count = 64;
	if (ioctl(fd, FS_IOC_FIEMAP, fm) < 0) {
		free(fm);
		return -1;
	}
	for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
		const struct fiemap_extent *x = &fm->fm_extents[i];
		uint64_t a = x->fe_logical > start ? x->fe_logical : start;
		uint64_t b = x->fe_logical + x->fe_length < end ? x->fe_logical + x->fe_length : end;

		if (!(x->fe_flags & (FIEMAP_EXTENT_UNWRITTEN | FIEMAP_EXTENT_DELALLOC)) && b > a)
			n += (int64_t)(b - a);
	}
	free(fm);
	return n;
}

/* 64 concurrent 4 KiB PUTs into the small-record volume while it is being
 * zero-filled ahead of its tail: every record reads back intact (no zero
 * write lands on one), and then the space ahead of the tail is really
 * written (so an fdatasync after a record write there needs no extent
 * conversion), not just fallocated. */
static void test_zero_fill(void **state)
{
	enum { N = 64, LEN = 4096 };
	static struct res rs[N];
	uint8_t *a = malloc(LEN), *b = malloc(LEN);
	uint64_t tail, dead, start;
	char path[256];
	int64_t w = 0;
	int fd;

	memset(rs, 0, sizeof(rs));
	for (unsigned i = 0; i < N; i++) {
		struct sto_key k = key(9, (uint8_t)i);
		struct sto_put *p;
		void *buf;
		size_t n;

		fill(a, LEN, 300 + i);
		assert_int_equal(sto_put_begin(eng, &k, 10, "meta", 4, LEN,
					       sto_crc32c(0, a, LEN), on_put,
					       on_resume, &rs[i], &p), 0);
		assert_int_equal(sto_put_buf(p, &buf, &n), 0);
		assert_true(n >= LEN);
		memcpy(buf, a, LEN);
		sto_put_fill(p, LEN);
		if (i % 8 == 7)
			uv_run(&loop, UV_RUN_NOWAIT);	/* writes meet the zeroing */
	}
	for (unsigned i = 0; i < N; i++) {
		struct sto_key k = key(9, (uint8_t)i);

		wait_res(&rs[i]);
		assert_int_equal(rs[i].status, 0);
		assert_int_equal(rs[i].loc.vol, 1);
		fill(a, LEN, 300 + i);
		assert_int_equal(get(&k, 0, LEN, b), 0);
		assert_memory_equal(a, b, LEN);
	}
	settle();
	assert_int_equal(sto_idx_vol_info(sto_engine_idx(eng), 0, 0, 1, &tail, &dead), 0);
	snprintf(path, sizeof(path), "%s/vol-%08x.dat", hot, 1);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	/* Zeroed up to the volume's end (1 MiB here: within the prealloc). */
	start = (tail + 4095) & ~4095ull;
	for (int i = 0; i < 500; i++) {
		w = written_bytes(fd, start, 1 << 20);
		if (w < 0 || w == (int64_t)((1 << 20) - start))
			break;
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(10000);
	}
	close(fd);
	if (w >= 0)		/* else no FIEMAP here (tmpfs): can't tell */
		assert_int_equal(w, (1 << 20) - start);
	/* And after a restart, all still there. */
	close_engine();
	open_engine();
	for (unsigned i = 0; i < N; i++) {
		struct sto_key k = key(9, (uint8_t)i);

		fill(a, LEN, 300 + i);
		assert_int_equal(get(&k, 0, LEN, b), 0);
		assert_memory_equal(a, b, LEN);
	}
	free(a);
	free(b);
}

struct sfx_res {
	bool done;
	int status;
	size_t n;
	struct sto_suffix_hash v[1u << STO_SUFFIX_BITS];
};

static void on_sfx(void *arg, int status, const struct sto_suffix_hash *sfx,
		   const struct sto_list_entry *ents, size_t n)
{
	struct sfx_res *r = arg;

	r->status = status;
	r->n = n;
	memcpy(r->v, sfx, n * sizeof(*sfx));
	r->done = true;
}

static void list_sfx(uint32_t part, struct sfx_res *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(sto_list(eng, part, false, 0, on_sfx, r), 0);
	while (!r->done)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(r->status, 0);
}

/* A LIST of suffix hashes of an unchanged partition comes from the cache
 * (no scan) and equals a scan; any write to the partition (PUT, overwrite,
 * DELETE), even one racing the LIST that filled the cache, makes the next
 * LIST scan again; writes elsewhere don't. */
static void test_suffix_cache(void **state)
{
	static struct sfx_res r0, r1;
	struct sto_key k = key(20, 1), k2 = key(20, 2), other = key(21, 1);
	uint8_t a[100];
	uint64_t scans;

	fill(a, sizeof(a), 5);
	assert_int_equal(put(&k, 1, a, 10, sto_crc32c(0, a, 10)), 0);
	assert_int_equal(put(&k2, 1, a, 10, sto_crc32c(0, a, 10)), 0);
	scans = sto_engine_list_scans(eng);
	list_sfx(20, &r0);
	assert_int_equal(sto_engine_list_scans(eng), scans + 1);
	assert_true(r0.n >= 1);
	list_sfx(20, &r1);			/* cached */
	assert_int_equal(sto_engine_list_scans(eng), scans + 1);
	assert_int_equal(r1.n, r0.n);
	assert_memory_equal(r1.v, r0.v, r0.n * sizeof(r0.v[0]));
	/* An overwrite changes a suffix hash: scanned again. */
	assert_int_equal(put(&k, 2, a, 10, sto_crc32c(0, a, 10)), 0);
	list_sfx(20, &r1);
	assert_int_equal(sto_engine_list_scans(eng), scans + 2);
	assert_int_equal(r1.n, r0.n);
	assert_memory_not_equal(r1.v, r0.v, r0.n * sizeof(r0.v[0]));
	/* A write to another partition leaves it cached. */
	assert_int_equal(put(&other, 1, a, 10, sto_crc32c(0, a, 10)), 0);
	list_sfx(20, &r0);
	assert_int_equal(sto_engine_list_scans(eng), scans + 2);
	assert_memory_equal(r1.v, r0.v, r0.n * sizeof(r0.v[0]));
	/* A DELETE racing the LIST that would fill the cache: not cached. */
	assert_int_equal(put(&k, 3, a, 10, sto_crc32c(0, a, 10)), 0);
	memset(&r0, 0, sizeof(r0));
	assert_int_equal(sto_list(eng, 20, false, 0, on_sfx, &r0), 0);
	assert_int_equal(del(&k2, 5), 0);
	while (!r0.done)
		uv_run(&loop, UV_RUN_ONCE);
	list_sfx(20, &r1);
	assert_int_equal(sto_engine_list_scans(eng), scans + 4);
	/* ... and the scan after it matches a fresh engine's (no cache). */
	settle();
	close_engine();
	open_engine();
	list_sfx(20, &r0);
	assert_int_equal(r1.n, r0.n);
	assert_memory_equal(r1.v, r0.v, r0.n * sizeof(r0.v[0]));
}

struct lst_res {
	bool done;
	int status;
	uint64_t n;
};

static void on_lst_written(void *arg, int status, struct sto_lst_op *op)
{
	struct lst_res *r = arg;

	r->done = true;
	r->status = status;
	r->n = op->count;
}

static void on_lst_reaped(void *arg, int status, uint64_t reaped)
{
	struct lst_res *r = arg;

	r->done = true;
	r->status = status;
	r->n = reaped;
}

/* The engine's listing tombstone sweep: a tombstone past the reclaim age
 * goes, a young one and live entries stay; a second sweep finds nothing. */
static void test_listing_reap(void **state)
{
	struct sto_engine_cfg cfg = { .nhot = 1, .hot = { hot }, .map_size = 1 << 26,
				      .vol_max = 1 << 20, .reclaim_age = 5 };
	static const struct sto_listing_id id = { 3, { 7 } };
	uint64_t now = strata_wall_ns(), old = now - 60 * 1000000000ull;
	struct sto_listing_entry v[] = {
		{ "gone", 4, old, true, NULL, 0 },
		{ "young", 5, now, true, NULL, 0 },
		{ "live", 4, old, false, "x", 1 },
	};
	struct sto_lst_op op = { .id = id, .ents = v, .n = 3 };
	struct lst_res r = { 0 };
	struct sto_lst_stat_buf st;

	(void)state;
	close_engine();
	assert_int_equal(sto_engine_open(&loop, &cfg, &eng), 0);
	assert_int_equal(sto_lst_put(eng, &op, on_lst_written, &r), 0);
	while (!r.done)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.n, 3);
	for (int pass = 0; pass < 2; pass++) {
		memset(&r, 0, sizeof(r));
		assert_int_equal(sto_lst_reap(eng, on_lst_reaped, &r), 0);
		while (!r.done)
			uv_run(&loop, UV_RUN_ONCE);
		assert_int_equal(r.status, 0);
		assert_int_equal(r.n, pass == 0 ? 1 : 0);
	}
	assert_int_equal(sto_idx_lst_stat(sto_engine_idx(eng), &id, &st), 0);
	assert_int_equal(st.st.entries, 1);
	assert_int_equal(st.st.tombstones, 1);
	assert_int_equal(st.st.first_key.len, 4);	/* "live", then "young" */
}

/* Compaction drops the index entries of tombstones past the reclaim age
 * (1 s here) whose records were in the compacted volume, unless a newer
 * version replaced them; an older PUT is then accepted again (what
 * reclaim age means). test_compaction checks that a young one stays. */
static void test_reclaim_age(void **state)
{
	struct sto_engine_cfg cfg = { .nhot = 1, .hot = { hot }, .map_size = 1 << 26,
				      .vol_max = 1 << 20, .reclaim_age = 1 };
	size_t len = 200000;
	uint8_t *a = malloc(len);
	struct sto_key k0 = key(30, 0), k1 = key(30, 1), k2 = key(30, 2);
	struct cmp_res cr = { 0 };
	struct sto_loc loc;

	close_engine();
	assert_int_equal(sto_engine_open(&loop, &cfg, &eng), 0);
	fill(a, len, 9);
	assert_int_equal(put(&k0, 10, a, len, sto_crc32c(0, a, len)), 0);
	assert_int_equal(put(&k1, 10, a, len, sto_crc32c(0, a, len)), 0);
	assert_int_equal(del(&k0, 20), 0);		/* tombstones in vol 1 */
	assert_int_equal(del(&k1, 20), 0);
	assert_int_equal(sto_lookup(eng, &k0, &loc, NULL), -ENOENT);
	assert_int_equal(loc.vol, 1);
	/* k1 comes back (newer) after its tombstone: that one isn't reaped. */
	usleep(2100000);
	assert_int_equal(put(&k1, 30, a, 10, sto_crc32c(0, a, 10)), 0);
	/* Rolls to vol 2. */
	for (unsigned i = 0; i < 4; i++) {
		struct sto_key k = key(31, (uint8_t)i);

		assert_int_equal(put(&k, 10, a, len, sto_crc32c(0, a, len)), 0);
	}
	assert_int_equal(put(&k2, 10, a, len, sto_crc32c(0, a, len)), 0);
	assert_int_equal(sto_lookup(eng, &k2, &loc, NULL), 0);
	assert_int_not_equal(loc.vol, 1);
	settle();
	assert_int_equal(sto_compact(eng, 0, 0, 1, on_compacted, &cr), 0);
	while (!cr.done)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(cr.status, 0);
	settle();
	/* k0: no entry at all now, not a tombstone. */
	memset(&loc, 0, sizeof(loc));
	assert_int_equal(sto_lookup(eng, &k0, &loc, NULL), -ENOENT);
	assert_false(loc.flags & STO_LOC_TOMBSTONE);
	assert_int_equal(put(&k0, 15, a, 10, sto_crc32c(0, a, 10)), 0);
	assert_int_equal(sto_lookup(eng, &k0, &loc, NULL), 0);
	assert_int_equal(loc.ts, 15);
	/* k1: its newer version untouched. */
	assert_int_equal(sto_lookup(eng, &k1, &loc, NULL), 0);
	assert_int_equal(loc.ts, 30);
	free(a);
}

/* Whole records (one buffer each) in every small-write mode: a burst of 64
 * concurrent PUTs of mixed sizes (empty, odd, 4 KiB, 64 KiB; 1 MiB ones are
 * not batched) plus DELETEs, runs of adjacent ones written as one (modes 2,
 * 3; RWF_DSYNC in 3); everything reads back, before and after a restart. */
static void test_small_modes(void **state)
{
	enum { N = 64 };
	static const size_t lens[] = { 0, 1, 100, 4096, 4097, 8000, 65536, 1 << 20 };
	static struct res rs[N];
	uint8_t *a = malloc(1 << 20), *b = malloc(1 << 20);

	for (unsigned mode = STO_SMALL_SEPARATE; mode <= STO_SMALL_DSYNC; mode++) {
		struct sto_engine_cfg cfg = { .nhot = 1, .hot = { hot },
					      .map_size = 1 << 26, .vol_max = 64 << 20,
					      .atime_interval = 1,
					      .zero_ahead = STO_ZERO_AHEAD,
					      .small_writes = mode };
		uint32_t part = 40 + mode;

		close_engine();
		assert_int_equal(sto_engine_open(&loop, &cfg, &eng), 0);
		memset(rs, 0, sizeof(rs));
		for (unsigned i = 0; i < N; i++) {
			struct sto_key k = key(part, (uint8_t)i);
			size_t len = lens[i % ARRAY_SIZE(lens)];
			struct sto_put *p;
			size_t off = 0;

			fill(a, len, 1000 * mode + i);
			assert_int_equal(sto_put_begin(eng, &k, 10, "meta", 4, len,
						       sto_crc32c(0, a, len), on_put,
						       on_resume, &rs[i], &p), 0);
			while (off < len) {
				void *buf;
				size_t n;

				assert_int_equal(sto_put_buf(p, &buf, &n), 0);
				if (n > len - off)
					n = len - off;
				if (n > 3000)
					n = 3000;
				memcpy(buf, a + off, n);
				sto_put_fill(p, n);
				off += n;
			}
			if (i % 5 == 4)
				uv_run(&loop, UV_RUN_NOWAIT);
		}
		for (unsigned i = 0; i < N; i++) {
			wait_res(&rs[i]);
			assert_int_equal(rs[i].status, 0);
		}
		/* DELETEs (tombstones: header-only records) in one burst too. */
		memset(rs, 0, sizeof(rs));
		for (unsigned i = 0; i < N; i += 8) {
			struct sto_key k = key(part, (uint8_t)i);

			assert_int_equal(sto_del(eng, &k, 20, on_del, &rs[i]), 0);
		}
		for (unsigned i = 0; i < N; i += 8) {
			wait_res(&rs[i]);
			assert_int_equal(rs[i].status, 0);
		}
		for (int pass = 0; pass < 2; pass++) {
			for (unsigned i = 0; i < N; i++) {
				struct sto_key k = key(part, (uint8_t)i);
				size_t len = lens[i % ARRAY_SIZE(lens)];

				if (i % 8 == 0) {
					assert_int_equal(get(&k, 0, 1, b), -ENOENT);
					continue;
				}
				fill(a, len, 1000 * mode + i);
				assert_int_equal(get(&k, 0, len, b), 0);
				assert_memory_equal(a, b, len);
			}
			close_engine();
			assert_int_equal(sto_engine_open(&loop, &cfg, &eng), 0);
		}
	}
	free(a);
	free(b);
}

/* Pages of [off, off + len) of the file in the page cache. */
static size_t resident_pages(int fd, uint64_t off, uint64_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t start = off / (uint64_t)pg * (uint64_t)pg;
	size_t npg = (size_t)((off + len - start + (uint64_t)pg - 1) / (uint64_t)pg), n = 0;
	unsigned char *vec = malloc(npg);
	void *m = mmap(NULL, npg * (size_t)pg, PROT_READ, MAP_SHARED, fd, (off_t)start);

	assert_true(m != MAP_FAILED);
	assert_int_equal(mincore(m, npg * (size_t)pg, vec), 0);
	for (size_t i = 0; i < npg; i++)
		n += vec[i] & 1;
	munmap(m, npg * (size_t)pg);
	free(vec);
	return n;
}

/* Large records (>= 8 MiB) with meta lengths that put their data at every
 * kind of offset, streamed concurrently in odd-sized pieces: the full
 * buffers between the first and the last go out with O_DIRECT (so they are
 * not in the page cache afterwards, where O_DIRECT works), and every byte
 * reads back, before and after a restart. */
static void test_large_direct(void **state)
{
	enum { N = 3 };
	static const size_t lens[N] = { (8 << 20) + 1, (9 << 20) - 7, (10 << 20) + 4096 };
	static const uint32_t mlens[N] = { 0, 4, 1001 };
	static struct res rs[N];
	static uint8_t meta[1001];
	struct sto_engine_cfg cfg = { .nhot = 1, .hot = { hot }, .map_size = 1 << 26,
				      .vol_max = 256 << 20, .atime_interval = 1,
				      .large_direct = STO_LARGE_DIRECT };
	uint8_t *a[N], *b = malloc(lens[N - 1]);
	struct sto_put *p[N];
	size_t off[N] = { 0 };
	bool left = true, direct;
	char path[256];
	int fd;

	close_engine();
	assert_int_equal(sto_engine_open(&loop, &cfg, &eng), 0);
	memset(rs, 0, sizeof(rs));
	for (unsigned i = 0; i < N; i++) {
		struct sto_key k = key(50, (uint8_t)i);

		a[i] = malloc(lens[i]);
		fill(a[i], lens[i], 500 + i);
		assert_int_equal(sto_put_begin(eng, &k, 10, meta, mlens[i], lens[i],
					       sto_crc32c(0, a[i], lens[i]), on_put,
					       on_resume, &rs[i], &p[i]), 0);
	}
	while (left) {
		left = false;
		for (unsigned i = 0; i < N; i++) {
			void *buf;
			size_t n;
			int ret;

			if (off[i] == lens[i])
				continue;
			left = true;
			ret = sto_put_buf(p[i], &buf, &n);
			if (ret == -EAGAIN)
				continue;
			assert_int_equal(ret, 0);
			if (n > lens[i] - off[i])
				n = lens[i] - off[i];
			if (n > 300000 + 7 * i)
				n = 300000 + 7 * i;
			memcpy(buf, a[i] + off[i], n);
			sto_put_fill(p[i], n);
			off[i] += n;
		}
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	for (unsigned i = 0; i < N; i++) {
		wait_res(&rs[i]);
		assert_int_equal(rs[i].status, 0);
	}
	/* Direct writes leave nothing in the page cache: the middle 4 MiB of
	 * each record's data is not resident (the records were written
	 * moments ago, so buffered pages would be). */
	snprintf(path, sizeof(path), "%s/vol-%08x.dat", hot, rs[0].loc.vol);
	fd = open(path, O_RDONLY | O_DIRECT);
	direct = fd >= 0;
	if (fd >= 0)
		close(fd);
	for (unsigned i = 0; i < N && direct; i++) {
		snprintf(path, sizeof(path), "%s/vol-%08x.dat", hot, rs[i].loc.vol);
		fd = open(path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(resident_pages(fd, rs[i].loc.off + sto_rec_data_off(mlens[i]) +
						(2 << 20), 4 << 20), 0);
		close(fd);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < N; i++) {
			struct sto_key k = key(50, (uint8_t)i);

			assert_int_equal(get(&k, 0, lens[i], b), 0);
			assert_memory_equal(a[i], b, lens[i]);
		}
		close_engine();
		assert_int_equal(sto_engine_open(&loop, &cfg, &eng), 0);
	}
	for (unsigned i = 0; i < N; i++)
		free(a[i]);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overwrite_delete_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nospace_reserve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_fill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_suffix_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reclaim_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_reap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_direct, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
