/* ring/file.c: ring and builder files on disk.
 *
 * Layout (little-endian):
 *   0  magic "STRATARG"
 *   8  u32 format version (RING_FORMAT_VERSION)
 *  12  u32 kind (1 ring, 2 builder)
 *  16  u64 payload length
 *  24  u32 CRC32C of the payload
 *  28  u32 CRC32C of bytes 0..27
 *  32  payload: protobuf Ring or Builder message (proto/ring.proto)
 * The checksums catch damage before protobuf sees the bytes; validation after
 * decoding catches what a checksum can't (a hostile but well-formed file).
 */
#include "internal.h"

#include <errno.h>
#include <isa-l.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

#define RING_FORMAT_VERSION	1
#define RING_HEADER_LEN		32

static const uint8_t ring_magic[8] = { 'S', 'T', 'R', 'A', 'T', 'A', 'R', 'G' };

static uint32_t crc32c(const void *buf, size_t len)
{
	return ~crc32_iscsi((unsigned char *)buf, (int)len, 0xffffffff);
}

int ring_file_open(const void *buf, size_t len, enum ring_file_kind kind,
		   const uint8_t **payload, size_t *payload_len)
{
	const uint8_t *p = buf;
	uint64_t plen;

	if (len < RING_HEADER_LEN || memcmp(p, ring_magic, sizeof(ring_magic)))
		return RING_EBADMAGIC;
	if (crc32c(p, 28) != ring_le32(p + 28))
		return RING_ECHECKSUM;
	if (ring_le32(p + 8) > RING_FORMAT_VERSION)
		return RING_EVERSION;
	if (ring_le32(p + 12) != kind)
		return RING_EKIND;
	plen = (uint64_t)ring_le32(p + 16) | (uint64_t)ring_le32(p + 20) << 32;
	if (plen != len - RING_HEADER_LEN || plen > RING_MAX_FILE)
		return RING_ECHECKSUM;		/* truncated or trailing bytes */
	/* ISA-L takes an int length; RING_MAX_FILE keeps us far below it. */
	if (crc32c(p + RING_HEADER_LEN, plen) != ring_le32(p + 24))
		return RING_ECHECKSUM;
	*payload = p + RING_HEADER_LEN;
	*payload_len = plen;
	return 0;
}

int ring_file_seal(enum ring_file_kind kind, const void *payload, size_t len,
		   uint8_t **out, size_t *out_len)
{
	uint8_t *p;

	if (len > RING_MAX_FILE)
		return -EFBIG;
	p = malloc(RING_HEADER_LEN + len);
	if (!p)
		return -ENOMEM;
	memcpy(p, ring_magic, sizeof(ring_magic));
	ring_put_le32(p + 8, RING_FORMAT_VERSION);
	ring_put_le32(p + 12, kind);
	ring_put_le32(p + 16, (uint32_t)len);
	ring_put_le32(p + 20, (uint32_t)((uint64_t)len >> 32));
	ring_put_le32(p + 24, crc32c(payload, len));
	ring_put_le32(p + 28, crc32c(p, 28));
	memcpy(p + RING_HEADER_LEN, payload, len);
	*out = p;
	*out_len = RING_HEADER_LEN + len;
	return 0;
}

int ring_policy_check(const struct ring_policy *p)
{
	switch (p->type) {
	case RING_POLICY_REPLICA:
		if (p->replicas < 1 || p->replicas > RING_MAX_PLACEMENTS)
			return RING_EINVALID;
		return 0;
	case RING_POLICY_EC:
		if (p->ec_k < 1 || p->ec_k > RING_MAX_PLACEMENTS ||
		    p->ec_m > RING_MAX_PLACEMENTS - p->ec_k || p->index > RING_MAX_POLICY)
			return RING_EINVALID;
		/* Policy 0's fragment numbers (0..k+m-1) tell EC from a replica
		 * only by a fragment >= 1; a 1+m object down to fragment 0 would
		 * pass for a replica and never be rebuilt. */
		if (p->ec_k == 1 && p->index == 0)
			return RING_EINVALID;
		return 0;
	}
	return RING_EINVALID;
}

/* A device as the outside world may hand it to us: names must be printable
 * and bounded, weights finite and not negative. */
bool ring_dev_check(const struct ring_dev *d)
{
	size_t nl = strnlen(d->node, sizeof(d->node));
	size_t dl = strnlen(d->name, sizeof(d->name));

	if (nl == 0 || nl > RING_NAME_MAX || dl == 0 || dl > RING_NAME_MAX)
		return false;
	for (size_t i = 0; i < nl; i++)
		if (d->node[i] <= ' ' || d->node[i] == 0x7f)
			return false;
	for (size_t i = 0; i < dl; i++)
		if (d->name[i] <= ' ' || d->name[i] == 0x7f)
			return false;
	return isfinite(d->weight) && d->weight >= 0 && d->weight < 1e12 &&
	       d->id < RING_MAX_DEVICES;
}

/* ------------------------------------------------ protobuf <-> structs */

#include "ring.pb-c.h"

static int policy_from_pb(const Strata__Ring__Policy *pb, struct ring_policy *p)
{
	if (!pb)
		return RING_EINVALID;
	memset(p, 0, sizeof(*p));
	switch (pb->type) {
	case STRATA__RING__POLICY__TYPE__REPLICA:
		p->type = RING_POLICY_REPLICA;
		p->replicas = pb->replicas;
		break;
	case STRATA__RING__POLICY__TYPE__EC:
		p->type = RING_POLICY_EC;
		p->ec_k = pb->ec_k;
		p->ec_m = pb->ec_m;
		p->index = pb->index;
		break;
	default:
		return RING_EINVALID;
	}
	return ring_policy_check(p);
}

static void policy_to_pb(const struct ring_policy *p, Strata__Ring__Policy *pb)
{
	strata__ring__policy__init(pb);
	if (p->type == RING_POLICY_REPLICA) {
		pb->type = STRATA__RING__POLICY__TYPE__REPLICA;
		pb->replicas = p->replicas;
	} else {
		pb->type = STRATA__RING__POLICY__TYPE__EC;
		pb->ec_k = p->ec_k;
		pb->ec_m = p->ec_m;
		pb->index = p->index;
	}
}

static int dev_from_pb(const Strata__Ring__Device *pb, struct ring_dev *d)
{
	memset(d, 0, sizeof(*d));
	if (!pb->node || !pb->name || strlen(pb->node) > RING_NAME_MAX ||
	    strlen(pb->name) > RING_NAME_MAX)
		return RING_EINVALID;
	d->id = pb->id;
	d->region = pb->region;
	d->zone = pb->zone;
	strcpy(d->node, pb->node);
	strcpy(d->name, pb->name);
	d->weight = pb->weight;
	return ring_dev_check(d) ? 0 : RING_EINVALID;
}

static void dev_to_pb(const struct ring_dev *d, bool removed, Strata__Ring__Device *pb)
{
	strata__ring__device__init(pb);
	pb->id = d->id;
	pb->region = d->region;
	pb->zone = d->zone;
	pb->node = (char *)d->node;		/* borrowed for packing only */
	pb->name = (char *)d->name;
	pb->weight = d->weight;
	pb->removed = removed;
}

static int cmp_dev_id(const void *a, const void *b)
{
	const struct ring_dev *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* Devices from the file, sorted by id, ids unique. */
static int devs_from_pb(Strata__Ring__Device **pbs, size_t n, struct ring_dev **out)
{
	struct ring_dev *devs;
	int ret;

	if (n > RING_MAX_DEVICES)
		return RING_EINVALID;
	devs = calloc(n ? n : 1, sizeof(*devs));
	if (!devs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ret = dev_from_pb(pbs[i], &devs[i]);
		if (ret < 0)
			goto out_free;
	}
	qsort(devs, n, sizeof(*devs), cmp_dev_id);
	for (size_t i = 1; i < n; i++)
		if (devs[i].id == devs[i - 1].id) {
			ret = RING_EINVALID;
			goto out_free;
		}
	*out = devs;
	return 0;
out_free:
	free(devs);
	return ret;
}

static bool parts_placements_ok(uint32_t part_power, unsigned placements,
				size_t assign_len, size_t width)
{
	if (part_power > RING_MAX_PART_POWER)
		return false;
	return assign_len == ((size_t)1 << part_power) * placements * width;
}

int ring_load_buf(const void *buf, size_t len, struct ring **out)
{
	Strata__Ring__Ring *pb;
	const uint8_t *payload;
	size_t plen;
	struct ring *r;
	int ret;

	ret = ring_file_open(buf, len, RING_KIND_RING, &payload, &plen);
	if (ret < 0)
		return ret;
	pb = strata__ring__ring__unpack(NULL, plen, payload);
	if (!pb)
		return RING_EDECODE;
	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		goto out_unpack;
	}
	atomic_init(&r->refs, 1);
	ret = policy_from_pb(pb->policy, &r->policy);
	if (ret < 0)
		goto out_free;
	r->placements = ring_policy_placements(&r->policy);
	r->part_power = pb->part_power;
	r->version = pb->version;
	ret = RING_EINVALID;
	if (pb->hash_key.len != RING_KEY_LEN || pb->n_devices == 0 ||
	    !parts_placements_ok(pb->part_power, r->placements, pb->assignment.len, 2))
		goto out_free;
	r->parts = 1u << r->part_power;
	memcpy(r->key, pb->hash_key.data, RING_KEY_LEN);
	ret = devs_from_pb(pb->devices, pb->n_devices, &r->devs);
	if (ret < 0)
		goto out_free;
	r->ndevs = pb->n_devices;
	r->max_id = r->devs[r->ndevs - 1].id;
	r->by_id = calloc(r->max_id + 1, sizeof(*r->by_id));
	r->assign = malloc(pb->assignment.len);
	if (!r->by_id || !r->assign) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (unsigned i = 0; i < r->ndevs; i++)
		r->by_id[r->devs[i].id] = &r->devs[i];
	ret = RING_EINVALID;
	for (size_t i = 0; i < (size_t)r->parts * r->placements; i++) {
		uint16_t id = ring_le16(pb->assignment.data + 2 * i);

		if (id > r->max_id || !r->by_id[id])
			goto out_free;		/* placement on a device we don't have */
		r->assign[i] = id;
	}
	strata__ring__ring__free_unpacked(pb, NULL);
	*out = r;
	return 0;

out_free:
	ring_free(r);
out_unpack:
	strata__ring__ring__free_unpacked(pb, NULL);
	return ret;
}

/* Serializes the builder's current assignment as a ring file. */
int ring_builder_ring_buf(const struct ring_builder *b, uint8_t **buf, size_t *len)
{
	Strata__Ring__Ring pb = STRATA__RING__RING__INIT;
	Strata__Ring__Policy pol;
	Strata__Ring__Device *devs = NULL, **devp = NULL;
	size_t nassign = (size_t)b->parts * b->placements, n = 0, packed_len;
	uint8_t *assign = NULL, *packed = NULL;
	int ret = -ENOMEM;

	if (!b->rebalanced)
		return RING_EINVALID;
	devs = calloc(b->ndevs ? b->ndevs : 1, sizeof(*devs));
	devp = calloc(b->ndevs ? b->ndevs : 1, sizeof(*devp));
	assign = malloc(nassign * 2);
	if (!devs || !devp || !assign)
		goto out;
	for (unsigned i = 0; i < b->ndevs; i++) {
		if (b->removed[i])
			continue;
		dev_to_pb(&b->devs[i], false, &devs[n]);
		devp[n] = &devs[n];
		n++;
	}
	for (size_t i = 0; i < nassign; i++)
		ring_put_le16(assign + 2 * i, b->assign[i]);
	policy_to_pb(&b->policy, &pol);
	pb.part_power = b->part_power;
	pb.policy = &pol;
	pb.version = b->version;
	pb.hash_key.data = (uint8_t *)b->key;
	pb.hash_key.len = RING_KEY_LEN;
	pb.n_devices = n;
	pb.devices = devp;
	pb.assignment.data = assign;
	pb.assignment.len = nassign * 2;
	pb.built_at = (uint64_t)time(NULL);
	packed_len = strata__ring__ring__get_packed_size(&pb);
	packed = malloc(packed_len ? packed_len : 1);
	if (!packed)
		goto out;
	strata__ring__ring__pack(&pb, packed);
	ret = ring_file_seal(RING_KIND_RING, packed, packed_len, buf, len);
out:
	free(packed);
	free(assign);
	free(devp);
	free(devs);
	return ret;
}

int ring_builder_load_buf(const void *buf, size_t len, struct ring_builder **out)
{
	Strata__Ring__Builder *pb;
	const uint8_t *payload;
	size_t plen, nassign;
	struct ring_builder *b;
	int ret;

	ret = ring_file_open(buf, len, RING_KIND_BUILDER, &payload, &plen);
	if (ret < 0)
		return ret;
	pb = strata__ring__builder__unpack(NULL, plen, payload);
	if (!pb)
		return RING_EDECODE;
	b = calloc(1, sizeof(*b));
	if (!b) {
		ret = -ENOMEM;
		goto out_unpack;
	}
	ret = policy_from_pb(pb->policy, &b->policy);
	if (ret < 0)
		goto out_free;
	b->placements = ring_policy_placements(&b->policy);
	ret = RING_EINVALID;
	if (pb->hash_key.len != RING_KEY_LEN || !isfinite(pb->overload) ||
	    pb->overload < 0 || pb->overload > 10 ||
	    !parts_placements_ok(pb->part_power, b->placements, pb->assignment.len, 2) ||
	    pb->last_moved.len != ((size_t)1 << pb->part_power) * 4 ||
	    pb->next_dev_id > RING_MAX_DEVICES)
		goto out_free;
	b->part_power = pb->part_power;
	b->parts = 1u << b->part_power;
	b->version = pb->version;
	b->min_part_hours = pb->min_part_hours;
	b->overload = pb->overload;
	b->seed = pb->seed;
	b->next_id = pb->next_dev_id;
	b->rebalanced = pb->rebalanced;
	memcpy(b->key, pb->hash_key.data, RING_KEY_LEN);
	ret = devs_from_pb(pb->devices, pb->n_devices, &b->devs);
	if (ret < 0)
		goto out_free;
	b->ndevs = b->cap = pb->n_devices;
	b->removed = calloc(b->ndevs ? b->ndevs : 1, sizeof(*b->removed));
	nassign = (size_t)b->parts * b->placements;
	b->assign = malloc(nassign * sizeof(*b->assign));
	b->last_moved = malloc((size_t)b->parts * sizeof(*b->last_moved));
	if (!b->removed || !b->assign || !b->last_moved) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = RING_EINVALID;
	for (size_t i = 0; i < pb->n_devices; i++) {
		int idx = ring_builder_dev_index(b, pb->devices[i]->id);

		if (pb->devices[i]->id >= b->next_id)
			goto out_free;
		b->removed[idx] = pb->devices[i]->removed;
	}
	for (size_t i = 0; i < nassign; i++) {
		uint16_t id = ring_le16(pb->assignment.data + 2 * i);

		if (id != RING_DEV_NONE && ring_builder_dev_index(b, id) < 0)
			goto out_free;
		b->assign[i] = id;
	}
	for (uint32_t p = 0; p < b->parts; p++)
		b->last_moved[p] = ring_le32(pb->last_moved.data + 4 * p);
	strata__ring__builder__free_unpacked(pb, NULL);
	*out = b;
	return 0;

out_free:
	ring_builder_free(b);
out_unpack:
	strata__ring__builder__free_unpacked(pb, NULL);
	return ret;
}

int ring_builder_save(const struct ring_builder *b, const char *path)
{
	Strata__Ring__Builder pb = STRATA__RING__BUILDER__INIT;
	Strata__Ring__Policy pol;
	Strata__Ring__Device *devs = NULL, **devp = NULL;
	size_t nassign = (size_t)b->parts * b->placements, packed_len, file_len;
	uint8_t *assign = NULL, *moved = NULL, *packed = NULL, *file = NULL;
	int ret = -ENOMEM;

	devs = calloc(b->ndevs ? b->ndevs : 1, sizeof(*devs));
	devp = calloc(b->ndevs ? b->ndevs : 1, sizeof(*devp));
	assign = malloc(nassign * 2);
	moved = malloc((size_t)b->parts * 4);
	if (!devs || !devp || !assign || !moved)
		goto out;
	for (unsigned i = 0; i < b->ndevs; i++) {
		dev_to_pb(&b->devs[i], b->removed[i], &devs[i]);
		devp[i] = &devs[i];
	}
	for (size_t i = 0; i < nassign; i++)
		ring_put_le16(assign + 2 * i, b->assign[i]);
	for (uint32_t p = 0; p < b->parts; p++)
		ring_put_le32(moved + 4 * p, b->last_moved[p]);
	policy_to_pb(&b->policy, &pol);
	pb.part_power = b->part_power;
	pb.policy = &pol;
	pb.version = b->version;
	pb.hash_key.data = (uint8_t *)b->key;
	pb.hash_key.len = RING_KEY_LEN;
	pb.n_devices = b->ndevs;
	pb.devices = devp;
	pb.assignment.data = assign;
	pb.assignment.len = nassign * 2;
	pb.last_moved.data = moved;
	pb.last_moved.len = (size_t)b->parts * 4;
	pb.min_part_hours = b->min_part_hours;
	pb.overload = b->overload;
	pb.seed = b->seed;
	pb.next_dev_id = b->next_id;
	pb.rebalanced = b->rebalanced;
	packed_len = strata__ring__builder__get_packed_size(&pb);
	packed = malloc(packed_len ? packed_len : 1);
	if (!packed)
		goto out;
	strata__ring__builder__pack(&pb, packed);
	ret = ring_file_seal(RING_KIND_BUILDER, packed, packed_len, &file, &file_len);
	if (ret == 0)
		ret = strata_write_file_atomic(path, file, file_len);
out:
	free(file);
	free(packed);
	free(moved);
	free(assign);
	free(devp);
	free(devs);
	return ret;
}

int ring_builder_write_ring(const struct ring_builder *b, const char *path)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = ring_builder_ring_buf(b, &buf, &len);
	if (ret < 0)
		return ret;
	ret = strata_write_file_atomic(path, buf, len);
	free(buf);
	return ret;
}

int ring_load(const char *path, struct ring **out)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = strata_read_file(path, RING_MAX_FILE + 64, &buf, &len);
	if (ret < 0)
		return ret;
	ret = ring_load_buf(buf, len, out);
	free(buf);
	return ret;
}

int ring_builder_load(const char *path, struct ring_builder **out)
{
	uint8_t *buf;
	size_t len;
	int ret;

	ret = strata_read_file(path, RING_MAX_FILE + 64, &buf, &len);
	if (ret < 0)
		return ret;
	ret = ring_builder_load_buf(buf, len, out);
	free(buf);
	return ret;
}
