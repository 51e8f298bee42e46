/* Unit tests of the repair engine's ring set (storage/repair.h): which rings
 * may share a node's key space, and which ring a pushed successor replaces.
 * The engine is created and stopped without running a pass, so no node is
 * needed; its repairs are tested against real nodes by bench_repair_smoke
 * and the durability and rebalance tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "repair.h"
#include "ring.h"

#define HOUR0	480000

/* A ring of pol over 6 nodes (127.0.0.1:9001..9006); the builder is kept
 * in *bp for a successor when bp is not NULL. */
static struct ring *mk_ring(const struct ring_policy *pol, struct ring_builder **bp)
{
	struct ring_builder *b;
	struct ring *r;
	uint8_t *buf;
	size_t len;

	assert_int_equal(ring_builder_create(4, pol, 0, 1, NULL, &b), 0);
	for (unsigned i = 0; i < 6; i++) {
		struct ring_dev d = { .region = 1, .zone = i + 1, .weight = 100 };
		uint32_t id;

		snprintf(d.node, sizeof(d.node), "127.0.0.1:%u", 9001 + i);
		snprintf(d.name, sizeof(d.name), "d0");
		assert_int_equal(ring_builder_add(b, &d, &id), 0);
	}
	assert_int_equal(ring_builder_rebalance(b, HOUR0, NULL), 0);
	assert_int_equal(ring_builder_ring_buf(b, &buf, &len), 0);
	assert_int_equal(ring_load_buf(buf, len, &r), 0);
	free(buf);
	if (bp)
		*bp = b;
	else
		ring_builder_free(b);
	return r;
}

/* The builder's next version (a 7th node joined), loaded twice: *again
 * is the same version. */
static struct ring *successor(struct ring_builder *b, struct ring **again)
{
	struct ring_dev d = { .region = 1, .zone = 7, .weight = 100 };
	struct ring *r;
	uint8_t *buf;
	size_t len;
	uint32_t id;

	snprintf(d.node, sizeof(d.node), "127.0.0.1:9007");
	snprintf(d.name, sizeof(d.name), "d0");
	assert_int_equal(ring_builder_add(b, &d, &id), 0);
	assert_int_equal(ring_builder_rebalance(b, HOUR0 + 100, NULL), 0);
	assert_int_equal(ring_builder_ring_buf(b, &buf, &len), 0);
	assert_int_equal(ring_load_buf(buf, len, &r), 0);
	if (again)
		assert_int_equal(ring_load_buf(buf, len, again), 0);
	free(buf);
	return r;
}

static void stopped(void *arg)
{
	*(int *)arg = 1;
}

static void engine_free(uv_loop_t *loop, struct repair *r)
{
	int done = 0;

	repair_stop(r, stopped, &done);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_true(done);
	repair_free(r);
}

static const struct ring_policy rep3 = { .type = RING_POLICY_REPLICA, .replicas = 3 };
static const struct ring_policy ec42 = { .type = RING_POLICY_EC, .ec_k = 4, .ec_m = 2 };
static const struct ring_policy ec12 = { .type = RING_POLICY_EC, .ec_k = 1, .ec_m = 2,
					 .index = 1 };

/* Fragment numbers say the policy, so two rings of one policy would both
 * claim the same fragments: two EC rings of one index, or two replica
 * rings, are refused. (EC 1+m as policy 0, whose lone fragment 0 could not
 * be told from a replica, is no valid ring at all: ring/file.c.) */
static void test_same_policy_refused(void **state)
{
	struct ring_policy ec42_1 = ec42;
	struct repair_cfg cfg = { .node_id = "127.0.0.1:9001", .once = true };
	struct repair *r = NULL;
	uv_loop_t loop;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	ec42_1.index = 1;
	cfg.rings[0] = mk_ring(&rep3, NULL);
	cfg.rings[1] = mk_ring(&ec42_1, NULL);
	cfg.rings[2] = mk_ring(&ec12, NULL);
	cfg.nrings = 3;
	assert_int_equal(repair_new(&loop, &cfg, &r), -EINVAL);
	assert_null(r);
	ring_free(cfg.rings[2]);
	cfg.rings[2] = mk_ring(&rep3, NULL);
	assert_int_equal(repair_new(&loop, &cfg, &r), -EINVAL);
	assert_null(r);
	ring_free(cfg.rings[1]);
	cfg.rings[1] = mk_ring(&ec42, NULL);
	/* the same set with distinct indexes is fine */
	ring_free(cfg.rings[2]);
	cfg.rings[2] = mk_ring(&ec12, NULL);
	assert_int_equal(repair_new(&loop, &cfg, &r), 0);
	engine_free(&loop, r);
	for (unsigned g = 0; g < cfg.nrings; g++)
		ring_free(cfg.rings[g]);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* A pushed ring replaces the ring of its policy: its type, and for EC its
 * index; a policy the engine has no ring of is refused. */
static void test_set_ring_by_index(void **state)
{
	struct repair_cfg cfg = { .node_id = "127.0.0.1:9001", .once = true };
	struct ring_builder *b42, *b12;
	struct ring_policy ec12_5 = ec12;
	struct repair *r = NULL;
	struct ring *next, *other;
	uint64_t cur, prev;
	uv_loop_t loop;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	cfg.rings[0] = mk_ring(&ec42, &b42);
	cfg.rings[1] = mk_ring(&rep3, NULL);
	cfg.rings[2] = mk_ring(&ec12, &b12);
	cfg.nrings = 3;
	assert_int_equal(repair_new(&loop, &cfg, &r), 0);
	/* index 1's successor goes to ring 2: pushing it again is stale
	 * there, and it is no successor of index 0's ring */
	next = successor(b12, &other);
	assert_int_equal(repair_set_ring(r, next), 0);
	assert_int_equal(repair_set_ring(r, other), RING_ESTALE);
	ring_free(other);
	next = successor(b42, NULL);
	assert_int_equal(repair_set_ring(r, next), 0);
	ec12_5.index = 5;
	other = mk_ring(&ec12_5, NULL);
	assert_int_equal(repair_set_ring(r, other), -ENOENT);
	ring_free(other);
	/* (they take over at the next pass; none ran) */
	repair_ring_versions(r, 2, &cur, &prev);
	assert_int_equal(cur, ring_version(cfg.rings[2]));
	assert_int_equal(prev, 0);
	engine_free(&loop, r);
	for (unsigned g = 0; g < cfg.nrings; g++)
		ring_free(cfg.rings[g]);
	ring_builder_free(b42);
	ring_builder_free(b12);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_policy_refused),
		cmocka_unit_test(test_set_ring_by_index),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
