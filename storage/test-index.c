/* Unit tests: the LMDB index (versions, tombstones, atime, quarantine,
 * volume tails, LIST, persistence). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

static char dir[64];

static int setup(void **state)
{
	strcpy(dir, "/tmp/test-index.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static struct sto_idx_op put_op(uint32_t part, uint8_t n0, uint8_t n1, uint64_t ts,
				const char *meta)
{
	struct sto_idx_op op = { .type = STO_IDX_PUT };

	op.key.part = part;
	op.key.name[0] = n0;
	op.key.name[1] = n1;
	op.loc.vol = 1;
	op.loc.off = ts * 100;
	op.loc.size = ts;
	op.loc.ts = ts;
	op.loc.crc = (uint32_t)ts;
	op.loc.meta_len = meta ? (uint32_t)strlen(meta) : 0;
	op.meta = meta;
	return op;
}

static void test_versions(void **state)
{
	struct sto_idx *x;
	struct sto_idx_op ops[3];
	struct sto_loc l;
	char meta[STO_MAX_META];

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	ops[0] = put_op(1, 0x10, 0, 100, "m100");
	ops[1] = put_op(1, 0x10, 0, 50, "m50");		/* older: conflict */
	ops[2] = put_op(1, 0x10, 0, 200, "m200");	/* newer: wins */
	assert_int_equal(sto_idx_apply(x, ops, 3, NULL, 0), 0);
	assert_int_equal(ops[0].result, 0);
	assert_int_equal(ops[1].result, STO_ECONFLICT);
	assert_int_equal(ops[2].result, 0);
	assert_int_equal(sto_idx_get(x, &ops[0].key, &l, meta), 0);
	assert_int_equal(l.ts, 200);
	assert_int_equal(l.meta_len, 4);
	assert_memory_equal(meta, "m200", 4);

	/* Tombstone: older PUT then rejected, newer one accepted. */
	ops[0] = (struct sto_idx_op){ .type = STO_IDX_DEL, .key = ops[0].key,
				      .loc.ts = 300 };
	assert_int_equal(sto_idx_apply(x, ops, 1, NULL, 0), 0);
	assert_int_equal(ops[0].result, 0);
	assert_int_equal(sto_idx_get(x, &ops[0].key, &l, NULL), 0);
	assert_true(l.flags & STO_LOC_TOMBSTONE);
	ops[1] = put_op(1, 0x10, 0, 250, NULL);
	ops[2] = put_op(1, 0x10, 0, 301, NULL);
	assert_int_equal(sto_idx_apply(x, ops + 1, 2, NULL, 0), 0);
	assert_int_equal(ops[1].result, STO_ECONFLICT);
	assert_int_equal(ops[2].result, 0);
	/* DELETE of nothing: -ENOENT, tombstone written anyway. */
	ops[0] = (struct sto_idx_op){ .type = STO_IDX_DEL, .loc.ts = 5 };
	ops[0].key.part = 2;
	assert_int_equal(sto_idx_apply(x, ops, 1, NULL, 0), 0);
	assert_int_equal(ops[0].result, -ENOENT);
	assert_int_equal(sto_idx_get(x, &ops[0].key, &l, NULL), 0);
	sto_idx_close(x);
}

static void test_atime_quarantine_tails(void **state)
{
	struct sto_idx *x;
	struct sto_idx_op op = put_op(3, 1, 2, 10, NULL), a;
	struct sto_vol_tail t = { 0, 0, 1, 4096, 0 };
	uint64_t tail = 0, objs, quar;
	struct sto_loc l;

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	assert_int_equal(sto_idx_apply(x, &op, 1, &t, 1), 0);
	assert_int_equal(sto_idx_vol_tail(x, 0, 0, 1, &tail), 0);
	assert_int_equal(tail, 4096);
	t.tail = 100;		/* tails never move back */
	assert_int_equal(sto_idx_apply(x, NULL, 0, &t, 1), 0);
	assert_int_equal(sto_idx_vol_tail(x, 0, 0, 1, &tail), 0);
	assert_int_equal(tail, 4096);
	assert_int_equal(sto_idx_vol_tail(x, 0, 0, 2, &tail), -ENOENT);

	a = op;
	a.type = STO_IDX_ATIME;
	a.loc.atime = 777;
	assert_int_equal(sto_idx_apply(x, &a, 1, NULL, 0), 0);
	assert_int_equal(a.result, 0);
	assert_int_equal(sto_idx_get(x, &op.key, &l, NULL), 0);
	assert_int_equal(l.atime, 777);
	a.loc.off = 1;		/* moved meanwhile: no update */
	a.loc.atime = 888;
	assert_int_equal(sto_idx_apply(x, &a, 1, NULL, 0), 0);
	assert_int_equal(a.result, -ENOENT);

	assert_int_equal(sto_idx_counts(x, &objs, &quar), 0);
	a = op;
	a.type = STO_IDX_QUARANTINE;
	assert_int_equal(sto_idx_apply(x, &a, 1, NULL, 0), 0);
	assert_int_equal(a.result, 0);
	assert_int_equal(sto_idx_get(x, &op.key, &l, NULL), -ENOENT);
	{
		uint64_t o2, q2;

		assert_int_equal(sto_idx_counts(x, &o2, &q2), 0);
		assert_int_equal(o2, objs - 1);
		assert_int_equal(q2, quar + 1);
	}
	sto_idx_close(x);
	/* Persistence. */
	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	assert_int_equal(sto_idx_vol_tail(x, 0, 0, 1, &tail), 0);
	assert_int_equal(tail, 4096);
	sto_idx_close(x);
}

static void test_list(void **state)
{
	struct sto_idx *x;
	struct sto_idx_op ops[5];
	struct sto_suffix_hash *sfx = calloc(1u << STO_SUFFIX_BITS, sizeof(*sfx));
	struct sto_list_entry ents[8];
	uint64_t h0;
	size_t n;

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	ops[0] = put_op(40, 0x00, 0x10, 1, NULL);	/* suffix 0x001 */
	ops[1] = put_op(40, 0x00, 0x1f, 2, NULL);	/* suffix 0x001 */
	ops[2] = put_op(40, 0xab, 0xc0, 3, NULL);	/* suffix 0xabc */
	ops[3] = put_op(41, 0x00, 0x10, 4, NULL);	/* other partition */
	ops[4] = put_op(39, 0xff, 0xff, 5, NULL);
	assert_int_equal(sto_idx_apply(x, ops, 5, NULL, 0), 0);
	assert_int_equal(sto_idx_list_suffixes(x, 40, sfx, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sfx[0].suffix, 0x001);
	assert_int_equal(sfx[0].count, 2);
	assert_int_equal(sfx[1].suffix, 0xabc);
	assert_int_equal(sfx[1].count, 1);
	h0 = sfx[0].hash;
	assert_int_equal(sto_idx_list_objects(x, 40, 0x001, ents, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ents[1].timestamp, 2);
	assert_int_equal(sto_idx_list_objects(x, 40, 0x002, ents, 8, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sto_idx_list_objects(x, 40, 0x001, ents, 1, &n), 0);
	assert_int_equal(n, 1);
	/* A newer version changes its suffix hash only. */
	ops[0] = put_op(40, 0x00, 0x10, 9, NULL);
	assert_int_equal(sto_idx_apply(x, ops, 1, NULL, 0), 0);
	assert_int_equal(sto_idx_list_suffixes(x, 40, sfx, &n), 0);
	assert_true(sfx[0].hash != h0);
	assert_int_equal(sto_idx_list_suffixes(x, 42, sfx, &n), 0);
	assert_int_equal(n, 0);
	free(sfx);
	sto_idx_close(x);
}

/* Tiering: the policy lives in the entry; a move keeps it and the newer
 * atime, kills its source; a move that lost kills its copy; a replayed copy
 * the index does not point at is dead space, the indexed one a no-op. */
static void test_move_policy_dead(void **state)
{
	struct sto_idx *x;
	struct sto_idx_op op = put_op(5, 7, 7, 10, "m"), mv, cp;
	uint64_t tail, dead, rec = sto_rec_len(1, 10);
	struct sto_loc l;

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	op.loc.tier = STO_TIER_PIN_COLD;
	op.loc.cold_after = 42;
	op.loc.atime = 500;
	assert_int_equal(sto_idx_apply(x, &op, 1, NULL, 0), 0);
	assert_int_equal(sto_idx_get(x, &op.key, &l, NULL), 0);
	assert_int_equal(l.tier, STO_TIER_PIN_COLD);
	assert_int_equal(l.cold_after, 42);

	mv = op;			/* hot vol 1 -> cold vol 3 */
	mv.type = STO_IDX_MOVE;
	mv.old = op.loc;
	mv.loc.medium = STO_MEDIUM_COLD;
	mv.loc.vol = 3;
	mv.loc.off = 0;
	mv.loc.atime = 100;		/* older than the entry's: kept 500 */
	mv.loc.tier = 0;		/* the entry's policy wins */
	mv.loc.cold_after = 0;
	assert_int_equal(sto_idx_apply(x, &mv, 1, NULL, 0), 0);
	assert_int_equal(mv.result, 0);
	assert_int_equal(sto_idx_get(x, &op.key, &l, NULL), 0);
	assert_int_equal(l.medium, STO_MEDIUM_COLD);
	assert_int_equal(l.atime, 500);
	assert_int_equal(l.tier, STO_TIER_PIN_COLD);
	assert_int_equal(l.cold_after, 42);
	assert_int_equal(sto_idx_vol_info(x, 0, 0, 1, &tail, &dead), 0);
	assert_int_equal(dead, rec);	/* the source */

	/* The same move again: the entry moved on, the copy is garbage. */
	mv.loc.vol = 4;
	assert_int_equal(sto_idx_apply(x, &mv, 1, NULL, 0), 0);
	assert_int_equal(mv.result, -ENOENT);
	assert_int_equal(sto_idx_vol_info(x, 1, 0, 4, &tail, &dead), 0);
	assert_int_equal(dead, rec);

	/* Replay: the indexed copy is a no-op; another copy is dead. */
	cp = op;
	cp.loc = l;
	cp.copy = true;
	assert_int_equal(sto_idx_apply(x, &cp, 1, NULL, 0), 0);
	assert_int_equal(cp.result, STO_ECONFLICT);
	assert_int_equal(sto_idx_vol_info(x, 1, 0, 3, &tail, &dead), -ENOENT);
	cp.loc.vol = 5;
	assert_int_equal(sto_idx_apply(x, &cp, 1, NULL, 0), 0);
	assert_int_equal(cp.result, STO_ECONFLICT);
	assert_int_equal(sto_idx_vol_info(x, 1, 0, 5, &tail, &dead), 0);
	assert_int_equal(dead, rec);
	/* A replayed original (no copy flag) elsewhere is left alone. */
	cp.copy = false;
	cp.loc.vol = 6;
	assert_int_equal(sto_idx_apply(x, &cp, 1, NULL, 0), 0);
	assert_int_equal(sto_idx_vol_info(x, 1, 0, 6, &tail, &dead), -ENOENT);
	sto_idx_close(x);
}

static int walk_count(void *arg, const struct sto_key *k, const struct sto_loc *l)
{
	(*(int *)arg)++;
	return 0;
}

static void test_walk(void **state)
{
	struct sto_idx *x;
	struct sto_idx_op ops[3];
	int n = 0;

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	ops[0] = put_op(1, 1, 0, 1, NULL);
	ops[1] = put_op(2, 1, 0, 1, NULL);
	ops[2] = put_op(3, 1, 0, 1, NULL);
	assert_int_equal(sto_idx_apply(x, ops, 3, NULL, 0), 0);
	assert_int_equal(sto_idx_walk(x, walk_count, &n), 0);
	assert_int_equal(n, 3);
	sto_idx_close(x);
}

/* SET_TIER: only the live entry at that version changes (wherever it is),
 * nothing else of it; another version or a tombstone is left alone. */
static void test_set_tier(void **state)
{
	struct sto_idx *x;
	struct sto_idx_op op = put_op(4, 1, 2, 10, "meta"), t, del;
	struct sto_loc l;
	char meta[8];

	assert_int_equal(sto_idx_open(dir, 1 << 26, &x), 0);
	op.loc.atime = 55;
	assert_int_equal(sto_idx_apply(x, &op, 1, NULL, 0), 0);
	t = (struct sto_idx_op){ .type = STO_IDX_SET_TIER, .key = op.key,
				 .tier = STO_TIER_PIN_COLD, .cold_after = 99 };
	t.loc.ts = 10;
	assert_int_equal(sto_idx_apply(x, &t, 1, NULL, 0), 0);
	assert_int_equal(t.result, 0);
	assert_int_equal(t.loc.off, op.loc.off);	/* the answer: the entry */
	assert_int_equal(sto_idx_get(x, &op.key, &l, meta), 0);
	assert_int_equal(l.tier, STO_TIER_PIN_COLD);
	assert_int_equal(l.cold_after, 99);
	assert_int_equal(l.atime, 55);
	assert_int_equal(l.off, op.loc.off);
	assert_int_equal(l.ts, 10);
	assert_memory_equal(meta, "meta", 4);
	t.loc = (struct sto_loc){ .ts = 10 };	/* again: same answer, no write */
	assert_int_equal(sto_idx_apply(x, &t, 1, NULL, 0), 0);
	assert_int_equal(t.result, 0);
	t.loc = (struct sto_loc){ .ts = 9 };	/* another version */
	t.tier = STO_TIER_PIN_HOT;
	assert_int_equal(sto_idx_apply(x, &t, 1, NULL, 0), 0);
	assert_int_equal(t.result, STO_ECONFLICT);
	t.key.part = 5;				/* nothing there */
	t.loc = (struct sto_loc){ .ts = 10 };
	assert_int_equal(sto_idx_apply(x, &t, 1, NULL, 0), 0);
	assert_int_equal(t.result, -ENOENT);
	assert_int_equal(sto_idx_get(x, &op.key, &l, NULL), 0);
	assert_int_equal(l.tier, STO_TIER_PIN_COLD);
	del = (struct sto_idx_op){ .type = STO_IDX_DEL, .key = op.key, .loc.ts = 20 };
	t.key = op.key;				/* a tombstone: -ENOENT */
	t.loc = (struct sto_loc){ .ts = 20 };
	assert_int_equal(sto_idx_apply(x, &del, 1, NULL, 0), 0);
	assert_int_equal(sto_idx_apply(x, &t, 1, NULL, 0), 0);
	assert_int_equal(t.result, -ENOENT);
	sto_idx_close(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atime_quarantine_tails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_policy_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_tier, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
