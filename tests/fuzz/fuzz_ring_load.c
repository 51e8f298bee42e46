/* libFuzzer target: ring and builder file loading.
 *
 * Hostile bytes must give an error, never a crash, leak or out-of-bounds
 * access; when a file does load, every lookup on it must be safe too. The
 * checksum would reject almost every mutation, so the target also re-seals
 * the mutated payload with a valid envelope, to reach protobuf decoding and
 * validation (the part a checksum can't protect: a well-formed hostile file).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

/* ring/internal.h is private to ring/; the envelope sealer is all we need. */
enum ring_file_kind { RING_KIND_RING = 1, RING_KIND_BUILDER = 2 };
int ring_file_seal(enum ring_file_kind kind, const void *payload, size_t len,
		   uint8_t **out, size_t *out_len);

static void exercise(struct ring *r)
{
	const struct ring_dev *devs[RING_MAX_PLACEMENTS], *hand[8];
	uint32_t part;

	for (uint32_t p = 0; p < ring_parts(r) && p < 4096; p++)
		ring_primaries(r, p, devs, ring_placements(r));
	part = ring_part_of_path(r, "/a/b/c", 6);
	ring_handoffs(r, part, hand, 8);
	for (unsigned i = 0; i < ring_dev_count(r); i++)
		ring_dev_by_id(r, ring_dev_at(r, i)->id);
}

static void try_all(const uint8_t *data, size_t size)
{
	struct ring *r;
	struct ring_builder *b;

	if (ring_load_buf(data, size, &r) == 0) {
		exercise(r);
		ring_free(r);
	}
	if (ring_builder_load_buf(data, size, &b) == 0) {
		struct ring_rebalance_stats st;

		if (ring_builder_part_power(b) <= 10)
			ring_builder_report(b, &st);
		ring_builder_free(b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *sealed;
	size_t len;

	try_all(data, size);
	/* Re-seal everything past the 32-byte header as a ring and a builder. */
	if (size > 32) {
		for (int kind = RING_KIND_RING; kind <= RING_KIND_BUILDER; kind++) {
			if (ring_file_seal(kind, data + 32, size - 32, &sealed, &len) == 0) {
				try_all(sealed, len);
				free(sealed);
			}
		}
	}
	return 0;
}
