/* Unit tests: listings in the index (listing.c). Queries with prefix,
 * delimiter, start_after and limit against a plain reference over random key
 * sets (bytes 0x00, 0xff, '/', UTF-8), paging by marker, newest-wins,
 * tombstones, counts, range deletion. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/test-listing.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static const struct sto_listing_id lid = { 7, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } };
/* A neighbour listing that must never show up in lid's answers. */
static const struct sto_listing_id nid = { 7, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17 } };

static void apply_put(struct sto_idx *x, const struct sto_listing_id *id,
		      const struct sto_listing_entry *v, size_t n, uint64_t *applied)
{
	struct sto_lst_op lo = { .id = *id, .ents = v, .n = n };
	struct sto_idx_op op = { .type = STO_IDX_LST_PUT, .lst = &lo };

	assert_int_equal(sto_idx_apply(x, &op, 1, NULL, 0), 0);
	if (applied)
		*applied = lo.count;
}

static struct sto_listing_entry ent(const char *k, uint64_t ts, bool tomb, const char *v)
{
	return (struct sto_listing_entry){ k, (uint32_t)strlen(k), ts, tomb,
					   v, v ? (uint32_t)strlen(v) : 0 };
}

static struct sto_bytes B(const char *s)
{
	return (struct sto_bytes){ s, s ? (uint32_t)strlen(s) : 0 };
}

/* ------------------------------------------------------------ reference */

/* Keys: an optional pad of 'p' (so that long keys straddle LMDB's key limit,
 * where listing.c switches to groups) and up to 6 random bytes. */
#define RK_MAX	(STO_LISTING_MAX_KEY + 8)

struct rkey {
	uint8_t k[RK_MAX];
	uint32_t len;
	uint64_t ts;
	bool tomb;
};

static int rkey_cmp(const void *a, const void *b)
{
	const struct rkey *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->k, y->k, n);

	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int bcmp_(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;

	return c ? c : (al > bl) - (al < bl);
}

struct item {
	uint8_t s[RK_MAX];
	uint32_t len;
	bool pfx;
};

/* Every item of the listing > start_after, in order. */
static size_t ref_items(const struct rkey *keys, size_t n, const struct sto_listing_query *q,
			struct item *out)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		const struct rkey *k = &keys[i];
		struct item it = { .len = k->len };
		size_t p = q->prefix.len;

		if (k->len < p || (p && memcmp(k->k, q->prefix.data, p)))
			continue;
		if (k->tomb && !q->include_tombstones)
			continue;
		memcpy(it.s, k->k, k->len);
		if (q->delimiter.len) {
			for (size_t j = p; j + q->delimiter.len <= k->len; j++)
				if (!memcmp(k->k + j, q->delimiter.data, q->delimiter.len)) {
					it.len = (uint32_t)(j + q->delimiter.len);
					it.pfx = true;
					break;
				}
		}
		if (q->start_after.len &&
		    bcmp_(it.s, it.len, q->start_after.data, q->start_after.len) <= 0)
			continue;
		if (m && out[m - 1].pfx && it.pfx && out[m - 1].len == it.len &&
		    !memcmp(out[m - 1].s, it.s, it.len))
			continue;
		out[m++] = it;
	}
	return m;
}

static const uint8_t alphabet[] = { 0x00, 0x01, '/', 'a', 'b', 0xc3, 0xa9, 0xff };

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void rand_str(uint8_t *s, uint32_t *len, uint32_t maxlen)
{
	*len = 1 + (uint32_t)(rnd() % maxlen);
	for (uint32_t i = 0; i < *len; i++)
		s[i] = alphabet[rnd() % sizeof(alphabet)];
}

/* Compares one query's page against the reference. */
static void check_page(struct sto_idx *x, const struct rkey *keys, size_t n,
		       const struct sto_listing_query *q, struct item *ref, size_t nref)
{
	struct sto_lst_page pg;
	uint32_t limit = q->limit ? q->limit : 1000;
	size_t want = nref < limit ? nref : limit, ie = 0, ip = 0;

	assert_int_equal(sto_idx_lst_query(x, &lid, q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_entries + pg.page.n_prefixes, want);
	assert_int_equal(pg.page.is_truncated, nref > limit);
	/* Entries and prefixes interleave in the reference's order. */
	for (size_t i = 0; i < want; i++) {
		if (ref[i].pfx) {
			assert_true(ip < pg.page.n_prefixes);
			assert_int_equal(pg.page.prefixes[ip].len, ref[i].len);
			assert_memory_equal(pg.page.prefixes[ip].data, ref[i].s, ref[i].len);
			ip++;
		} else {
			assert_true(ie < pg.page.n_entries);
			assert_int_equal(pg.page.entries[ie].key_len, ref[i].len);
			assert_memory_equal(pg.page.entries[ie].key, ref[i].s, ref[i].len);
			ie++;
		}
	}
	if (pg.page.is_truncated) {
		assert_int_equal(pg.page.next_marker.len, ref[want - 1].len);
		assert_memory_equal(pg.page.next_marker.data, ref[want - 1].s, ref[want - 1].len);
	}
	sto_lst_page_free(&pg);
	(void)keys;
	(void)n;
}

/* rand_str behind pad bytes of 'p'. */
static void rand_padded(uint8_t *s, uint32_t *len, uint32_t maxlen, uint32_t pad)
{
	memset(s, 'p', pad);
	rand_str(s + pad, len, maxlen);
	*len += pad;
}

static void reference_run(uint32_t pad, int queries)
{
	enum { NKEYS = 600 };
	const size_t QUERIES = (size_t)queries;
	static const char *delims[] = { "", "/", "\xff", "\x00", "ab", "\xc3\xa9" };
	static const uint32_t dlens[] = { 0, 1, 1, 1, 2, 2 };
	struct rkey *keys = calloc(NKEYS * 2, sizeof(*keys));
	struct item *ref = calloc(NKEYS * 2, sizeof(*ref));
	struct sto_listing_entry *v = calloc(NKEYS * 2, sizeof(*v));
	struct sto_idx *x;
	size_t n = 0, total = 0, truncated = 0;

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	/* Random keys (duplicates collapse: newest wins), a third tombstones. */
	for (size_t i = 0; i < NKEYS; i++) {
		struct rkey k = { 0 };
		size_t j;

		rand_padded(k.k, &k.len, 6, pad);
		k.ts = 100 + i;
		k.tomb = rnd() % 3 == 0;
		for (j = 0; j < n && rkey_cmp(&keys[j], &k); j++)
			;
		keys[j] = k;
		if (j == n)
			n++;
		v[i] = (struct sto_listing_entry){ keys[j].k, k.len, k.ts, k.tomb,
						   k.tomb ? NULL : "v", k.tomb ? 0 : 1 };
	}
	/* Entries point at keys[], which is not reordered until after. */
	apply_put(x, &lid, v, NKEYS, NULL);
	apply_put(x, &nid, v, 50, NULL);
	qsort(keys, n, sizeof(*keys), rkey_cmp);

	for (size_t t = 0; t < QUERIES; t++) {
		struct sto_listing_query q = { 0 };
		uint8_t pfx[RK_MAX], sa[RK_MAX];
		uint32_t plen = 0, salen = 0;
		int d = (int)(rnd() % 6);
		size_t nref;

		switch (rnd() % 4) {
		case 0: break;
		case 1:	/* a prefix of a key, or the whole key */
			plen = pad + (uint32_t)(rnd() % (keys[t % n].len - pad + 1));
			memcpy(pfx, keys[t % n].k, plen);
			break;
		default:
			rand_padded(pfx, &plen, 2, pad);
			break;
		}
		switch (rnd() % 4) {
		case 0: break;
		case 1:	/* a key */
			salen = keys[rnd() % n].len;
			memcpy(sa, keys[rnd() % n].k, salen);
			salen = keys[(t * 7) % n].len;
			memcpy(sa, keys[(t * 7) % n].k, salen);
			break;
		case 2:	/* a key cut after a delimiter: a common prefix */
			salen = keys[(t * 3) % n].len;
			memcpy(sa, keys[(t * 3) % n].k, salen);
			for (uint32_t j = 0; j < salen; j++)
				if (sa[j] == '/') {
					salen = j + 1;
					break;
				}
			break;
		default:
			rand_padded(sa, &salen, 5, pad);
			break;
		}
		q.prefix = (struct sto_bytes){ pfx, plen };
		q.start_after = (struct sto_bytes){ sa, salen };
		q.delimiter = (struct sto_bytes){ delims[d], dlens[d] };
		q.limit = (uint32_t)(rnd() % 4 == 0 ? 0 : 1 + rnd() % 20);
		q.include_tombstones = rnd() % 5 == 0;
		nref = ref_items(keys, n, &q, ref);
		check_page(x, keys, n, &q, ref, nref);
		total += nref;
		truncated += nref > (q.limit ? q.limit : 1000);
	}
	/* The random queries were not mostly empty or mostly whole. */
	assert_true(total > QUERIES * 5);
	assert_true(truncated > QUERIES / 10);

	/* Paging by marker walks exactly the reference's items. */
	for (int d = 0; d < 6; d++) {
		struct sto_listing_query q = { .delimiter = { delims[d], dlens[d] }, .limit = 7 };
		uint8_t marker[RK_MAX];
		size_t nref = ref_items(keys, n, &q, ref), seen = 0;

		for (;;) {
			struct sto_lst_page pg;
			size_t got;

			assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
			got = pg.page.n_entries + pg.page.n_prefixes;
			seen += got;
			assert_true(seen <= nref);
			if (!pg.page.is_truncated) {
				sto_lst_page_free(&pg);
				break;
			}
			assert_int_equal(got, 7);
			memcpy(marker, pg.page.next_marker.data, pg.page.next_marker.len);
			q.start_after = (struct sto_bytes){ marker, pg.page.next_marker.len };
			assert_int_equal(q.start_after.len, ref[seen - 1].len);
			assert_memory_equal(marker, ref[seen - 1].s, ref[seen - 1].len);
			sto_lst_page_free(&pg);
		}
		assert_int_equal(seen, nref);
	}
	sto_idx_close(x);
	free(keys);
	free(ref);
	free(v);
}

static void test_reference(void **state)
{
	reference_run(0, 3000);
}

/* Keys of 489..494 bytes: around LMDB's limit (511 - the 20-byte head = 491),
 * plain records and groups mixed, many keys in one group; and keys up to
 * the protocol's limit. */
static void test_reference_long(void **state)
{
	reference_run(488, 1500);
	teardown(state);
	setup(state);
	reference_run(STO_LISTING_MAX_KEY - 6, 500);
}

static uint8_t lk[300][STO_LISTING_MAX_KEY];
static uint32_t lk_len[300];

static int lk_cmp(const void *a, const void *b)
{
	int i = *(const int *)a, j = *(const int *)b;

	return bcmp_(lk[i], lk_len[i], lk[j], lk_len[j]);
}

/* Long keys in groups: stat's first and last keys, newest-wins and range
 * deletion through groups (members before start and after end stay). */
static void test_long_keys(void **state)
{
	enum { N = 300 };
	struct sto_listing_entry v[N];
	struct sto_lst_stat_buf st;
	struct sto_listing_query q = { .limit = 1000 };
	struct sto_lst_page pg;
	struct sto_idx *x;
	int order[N];
	uint64_t applied, total = 0;

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	for (int i = 0; i < N; i++) {
		/* 'q' x (len - 2), then i: lengths 480..1024, many sharing a group */
		lk_len[i] = 480 + (uint32_t)(i * 7) % 545;
		memset(lk[i], 'q', lk_len[i]);
		lk[i][lk_len[i] - 2] = (uint8_t)(i >> 8);
		lk[i][lk_len[i] - 1] = (uint8_t)i;
		v[i] = (struct sto_listing_entry){ lk[i], lk_len[i], 10, false, "val", 3 };
		order[i] = i;
	}
	qsort(order, N, sizeof(order[0]), lk_cmp);
	apply_put(x, &lid, v, N, &applied);
	assert_int_equal(applied, N);
	apply_put(x, &nid, v, 10, NULL);
	assert_int_equal(sto_idx_lst_stat(x, &lid, &st), 0);
	assert_int_equal(st.st.entries, N);
	assert_int_equal(st.st.first_key.len, lk_len[order[0]]);
	assert_memory_equal(st.st.first_key.data, lk[order[0]], lk_len[order[0]]);
	assert_int_equal(st.st.last_key.len, lk_len[order[N - 1]]);
	assert_memory_equal(st.st.last_key.data, lk[order[N - 1]], lk_len[order[N - 1]]);
	/* Newest wins inside a group. */
	v[0] = (struct sto_listing_entry){ lk[order[15]], lk_len[order[15]], 5, true, NULL, 0 };
	apply_put(x, &lid, v, 1, &applied);
	assert_int_equal(applied, 0);
	v[0].timestamp = 20;
	apply_put(x, &lid, v, 1, &applied);
	assert_int_equal(applied, 1);
	assert_int_equal(sto_idx_lst_stat(x, &lid, &st), 0);
	assert_int_equal(st.st.entries, N - 1);
	assert_int_equal(st.st.tombstones, 1);
	/* The whole listing in order, without the tombstone. */
	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_entries, N - 1);
	for (int i = 0, j = 0; i < N; i++) {
		if (i == 15)
			continue;
		assert_int_equal(pg.page.entries[j].key_len, lk_len[order[i]]);
		assert_memory_equal(pg.page.entries[j].key, lk[order[i]], lk_len[order[i]]);
		j++;
	}
	sto_lst_page_free(&pg);
	/* Delete [order[10], order[200]), 50 per call. */
	for (struct sto_lst_op lo = { .id = lid, .max = 50,
				      .start = { lk[order[10]], lk_len[order[10]] },
				      .end = { lk[order[200]], lk_len[order[200]] } };;) {
		struct sto_idx_op op = { .type = STO_IDX_LST_DEL, .lst = &lo };
		uint8_t next[STO_LISTING_MAX_KEY];

		assert_int_equal(sto_idx_apply(x, &op, 1, NULL, 0), 0);
		total += lo.count;
		if (!lo.more)
			break;
		assert_int_equal(lo.count, 50);
		memcpy(next, lo.next, lo.next_len);
		memcpy(lo.next, next, lo.next_len);
		lo.start = (struct sto_bytes){ lo.next, lo.next_len };
	}
	assert_int_equal(total, 190);
	assert_int_equal(sto_idx_lst_stat(x, &lid, &st), 0);
	assert_int_equal(st.st.entries, N - 190);
	assert_int_equal(st.st.tombstones, 0);
	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_entries, N - 190);
	for (int i = 0, j = 0; i < N; i++) {
		if (i >= 10 && i < 200)
			continue;
		assert_int_equal(pg.page.entries[j].key_len, lk_len[order[i]]);
		assert_memory_equal(pg.page.entries[j].key, lk[order[i]], lk_len[order[i]]);
		assert_int_equal(pg.page.entries[j].value_len, 3);
		j++;
	}
	sto_lst_page_free(&pg);
	/* The neighbour listing is untouched. */
	assert_int_equal(sto_idx_lst_stat(x, &nid, &st), 0);
	assert_int_equal(st.st.entries, 10);
	sto_idx_close(x);
}

static void test_newest_wins(void **state)
{
	struct sto_listing_entry v[4];
	struct sto_listing_query q = { .include_tombstones = true };
	struct sto_lst_page pg;
	struct sto_lst_stat_buf st;
	struct sto_idx *x;
	uint64_t applied;

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	v[0] = ent("photos/1.jpg", 100, false, "size=1");
	v[1] = ent("photos/2.jpg", 100, false, "size=2");
	apply_put(x, &lid, v, 2, &applied);
	assert_int_equal(applied, 2);
	/* Older upsert: skipped; equal: skipped; newer tombstone: wins. */
	v[0] = ent("photos/1.jpg", 50, false, "old");
	v[1] = ent("photos/2.jpg", 100, false, "same");
	v[2] = ent("photos/2.jpg", 200, true, NULL);
	v[3] = ent("photos/3.jpg", 10, false, "three");
	apply_put(x, &lid, v, 4, &applied);
	assert_int_equal(applied, 2);
	assert_int_equal(sto_idx_lst_stat(x, &lid, &st), 0);
	assert_int_equal(st.st.entries, 2);
	assert_int_equal(st.st.tombstones, 1);
	assert_int_equal(st.st.bytes, 12 + 6 + 12 + 12 + 5);
	assert_int_equal(st.st.first_key.len, 12);
	assert_memory_equal(st.st.first_key.data, "photos/1.jpg", 12);
	assert_memory_equal(st.st.last_key.data, "photos/3.jpg", 12);

	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_entries, 3);
	assert_memory_equal(pg.page.entries[0].value, "size=1", 6);
	assert_int_equal(pg.page.entries[0].timestamp, 100);
	assert_true(pg.page.entries[1].tombstone);
	assert_int_equal(pg.page.entries[1].timestamp, 200);
	assert_int_equal(pg.page.entries[1].value_len, 0);
	sto_lst_page_free(&pg);
	q.include_tombstones = false;
	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_entries, 2);
	assert_false(pg.page.is_truncated);
	sto_lst_page_free(&pg);
	/* A resurrection after the tombstone wins again. */
	v[0] = ent("photos/2.jpg", 300, false, "back");
	apply_put(x, &lid, v, 1, &applied);
	assert_int_equal(applied, 1);
	assert_int_equal(sto_idx_lst_stat(x, &lid, &st), 0);
	assert_int_equal(st.st.entries, 3);
	assert_int_equal(st.st.tombstones, 0);
	/* Other listings: empty. */
	assert_int_equal(sto_idx_lst_stat(x, &nid, &st), 0);
	assert_int_equal(st.st.entries, 0);
	assert_int_equal(st.st.first_key.len, 0);
	sto_idx_close(x);
}

static void test_edges(void **state)
{
	struct sto_listing_entry v[6];
	struct sto_listing_query q = { 0 };
	struct sto_lst_page pg;
	struct sto_idx *x;
	uint8_t big[STO_LISTING_MAX_KEY];
	uint8_t ff[3] = { 0xff, 0xff, 0xff };

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	assert_true(sto_idx_lst_max_key(x) >= 400);
	v[0] = ent("a/", 1, false, NULL);		/* a key equal to a prefix */
	v[1] = ent("a/b", 1, false, NULL);
	v[2] = ent("a/c/d", 1, false, NULL);
	v[3] = ent("b", 1, false, NULL);
	v[4] = (struct sto_listing_entry){ ff, 3, 1, false, NULL, 0 };
	v[5] = (struct sto_listing_entry){ ff, 2, 1, false, NULL, 0 };
	apply_put(x, &lid, v, 6, NULL);
	/* Delimiter at the very end of a key: the key is its own prefix. */
	q.delimiter = B("/");
	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_prefixes, 1);
	assert_int_equal(pg.page.n_entries, 3);		/* b, ff ff, ff ff ff */
	assert_int_equal(pg.page.entries[2].key_len, 3);
	sto_lst_page_free(&pg);
	/* Prefix equal to a key, and to a common prefix. */
	q.prefix = B("a/");
	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_entries, 2);		/* a/, a/b */
	assert_int_equal(pg.page.n_prefixes, 1);	/* a/c/ */
	assert_int_equal(pg.page.prefixes[0].len, 4);
	sto_lst_page_free(&pg);
	/* A delimiter of 0xff: the all-0xff common prefix has no successor. */
	q.prefix = B(NULL);
	q.delimiter = (struct sto_bytes){ ff, 1 };
	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_prefixes, 1);
	assert_int_equal(pg.page.n_entries, 4);
	sto_lst_page_free(&pg);
	/* start_after longer than LMDB keys: sought by its head. */
	memset(big, 'a', sizeof(big));
	q.delimiter = B(NULL);
	q.start_after = (struct sto_bytes){ big, sizeof(big) };
	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 1000, &pg), 0);
	assert_int_equal(pg.page.n_entries, 3);		/* b, ff ff, ff ff ff */
	sto_lst_page_free(&pg);
	/* A node cap below the asked limit. */
	q.start_after = B(NULL);
	q.limit = 100;
	assert_int_equal(sto_idx_lst_query(x, &lid, &q, 2, &pg), 0);
	assert_int_equal(pg.page.n_entries, 2);
	assert_true(pg.page.is_truncated);
	sto_lst_page_free(&pg);
	sto_idx_close(x);
}

static void test_delete_range(void **state)
{
	enum { N = 2500 };
	struct sto_listing_entry *v = calloc(N, sizeof(*v));
	char (*keys)[16] = calloc(N, 16);
	struct sto_lst_stat_buf st;
	struct sto_idx *x;
	uint64_t total = 0;

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], 16, "k%05d", i);
		v[i] = ent(keys[i], 5, i % 10 == 0, i % 10 ? "val" : NULL);
	}
	apply_put(x, &lid, v, N, NULL);
	apply_put(x, &nid, v, 10, NULL);
	/* [k00100, k00200): exactly 100. */
	{
		struct sto_lst_op lo = { .id = lid, .start = B("k00100"), .end = B("k00200"),
					 .max = 1000 };
		struct sto_idx_op op = { .type = STO_IDX_LST_DEL, .lst = &lo };

		assert_int_equal(sto_idx_apply(x, &op, 1, NULL, 0), 0);
		assert_int_equal(lo.count, 100);
		assert_false(lo.more);
	}
	/* Drop the rest, 1000 per call. */
	for (struct sto_lst_op lo = { .id = lid, .max = 1000 };;) {
		struct sto_idx_op op = { .type = STO_IDX_LST_DEL, .lst = &lo };
		uint8_t next[STO_LISTING_MAX_KEY];

		assert_int_equal(sto_idx_apply(x, &op, 1, NULL, 0), 0);
		total += lo.count;
		if (!lo.more)
			break;
		assert_int_equal(lo.count, 1000);
		memcpy(next, lo.next, lo.next_len);
		lo.start = (struct sto_bytes){ next, lo.next_len };
		memcpy(lo.next, next, lo.next_len);
		lo.start.data = lo.next;
	}
	assert_int_equal(total, N - 100);
	assert_int_equal(sto_idx_lst_stat(x, &lid, &st), 0);
	assert_int_equal(st.st.entries + st.st.tombstones + st.st.bytes, 0);
	assert_int_equal(st.st.first_key.len, 0);
	assert_int_equal(sto_idx_lst_stat(x, &nid, &st), 0);
	assert_int_equal(st.st.entries, 9);
	assert_int_equal(st.st.tombstones, 1);
	sto_idx_close(x);
	free(v);
	free(keys);
}

/* One reaper call over all of id (reap_before, max visited per call). */
static uint64_t reap(struct sto_idx *x, const struct sto_listing_id *id, uint64_t before,
		     uint32_t max)
{
	uint8_t next[STO_LISTING_MAX_KEY];
	uint64_t total = 0;

	for (struct sto_lst_op lo = { .id = *id, .max = max, .reap_before = before };;) {
		struct sto_idx_op op = { .type = STO_IDX_LST_DEL, .lst = &lo };

		assert_int_equal(sto_idx_apply(x, &op, 1, NULL, 0), 0);
		total += lo.count;
		if (!lo.more)
			return total;
		memcpy(next, lo.next, lo.next_len);
		lo.start = (struct sto_bytes){ next, lo.next_len };
	}
}

static const struct sto_listing_info *info_of(const struct sto_listing_info *v, size_t n,
					      const struct sto_listing_id *id)
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(v[i].id, id->id, STO_LISTING_ID_LEN))
			return &v[i];
	return NULL;
}

/* The reaper's DELETE_RANGE (reap_before): only tombstones older than the
 * cutoff go, short keys and long ones (groups) alike, live entries and young
 * tombstones stay, counts and hash stay exact (equal to a listing written
 * with just what is left), and sto_idx_lst_tombstoned finds the listings
 * that still hold tombstones. */
static void test_reap_tombstones(void **state)
{
	enum { N = 3000 };
	static const struct sto_listing_id cid = { 7, { 9 } }, clean = { 8, { 1 } };
	struct sto_listing_entry *v = calloc(N + 2, sizeof(*v)), *left = calloc(N + 2, sizeof(*v));
	char (*keys)[16] = calloc(N, 16);
	char *long1 = malloc(700), *long2 = malloc(700);
	struct sto_listing_info info[8];
	struct sto_listing_id ids[8];
	const struct sto_listing_info *a, *b;
	struct sto_lst_stat_buf st;
	struct sto_idx *x;
	size_t n, nleft = 0;
	bool more;

	(void)state;
	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	memset(long1, 'a', 699);
	memset(long2, 'a', 699);
	long1[699] = long2[699] = 0;
	long1[698] = '1';
	long2[698] = '2';
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], 16, "k%05d", i);
		/* a third tombstones, half of them old (ts 5), half young (500) */
		v[i] = ent(keys[i], i % 6 == 0 ? 5 : i % 3 == 0 ? 500 : 5, i % 3 == 0,
			   i % 3 ? "val" : NULL);
	}
	v[N] = ent(long1, 5, true, NULL);		/* old, in a group */
	v[N + 1] = ent(long2, 5, false, "long");	/* live, same group */
	for (int i = 0; i < N + 2; i++)
		if (!(v[i].tombstone && v[i].timestamp < 100))
			left[nleft++] = v[i];
	apply_put(x, &lid, v, N + 2, NULL);
	apply_put(x, &nid, v, 10, NULL);
	apply_put(x, &cid, left, nleft, NULL);
	apply_put(x, &clean, v + 1, 2, NULL);		/* no tombstone */
	assert_int_equal(sto_idx_lst_tombstoned(x, NULL, ids, 8, &n), 0);
	assert_int_equal(n, 3);				/* lid, nid, cid; not clean */
	assert_int_equal(sto_idx_lst_tombstoned(x, &ids[0], ids, 8, &n), 0);
	assert_int_equal(n, 2);				/* after: exclusive */

	assert_int_equal(reap(x, &lid, 100, 700), N / 6 + 1);
	assert_int_equal(reap(x, &lid, 100, 700), 0);	/* nothing left that old */
	assert_int_equal(sto_idx_lst_stat(x, &lid, &st), 0);
	assert_int_equal(st.st.entries, N - N / 3 + 1);
	assert_int_equal(st.st.tombstones, N / 3 - N / 6);
	assert_int_equal(sto_idx_lst_ids(x, 7, NULL, info, 8, &n, &more), 0);
	a = info_of(info, n, &lid);
	b = info_of(info, n, &cid);
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a->entries == b->entries && a->tombstones == b->tombstones &&
		    a->bytes == b->bytes && a->hash == b->hash);
	/* every tombstone now: lid holds none, and is no longer listed */
	assert_int_equal(reap(x, &lid, 1000, 0 + STO_LISTING_MAX_DELETE), N / 3 - N / 6);
	assert_int_equal(sto_idx_lst_stat(x, &lid, &st), 0);
	assert_int_equal(st.st.tombstones, 0);
	assert_int_equal(st.st.entries, N - N / 3 + 1);
	assert_int_equal(sto_idx_lst_tombstoned(x, NULL, ids, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_not_equal(ids[0].id, lid.id, STO_LISTING_ID_LEN);
	assert_memory_not_equal(ids[1].id, lid.id, STO_LISTING_ID_LEN);
	sto_idx_close(x);
	free(v);
	free(left);
	free(keys);
	free(long1);
	free(long2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reference, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reference_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newest_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reap_tombstones, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
