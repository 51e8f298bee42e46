/* storage-frame-seeds DIR: writes a few valid request frames (one per file,
 * and one pipelined file) as the fuzzer's starting corpus. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int emit(const char *dir, const char *name, StoRequest *q, size_t payload,
		FILE *all)
{
	char path[4096];
	uint8_t *buf;
	size_t len;
	FILE *f;

	q->version = STO_PROTO_VERSION;
	if (sto_req_encode(q, &buf, &len) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f) {
		free(buf);
		return 1;
	}
	fwrite(buf, 1, len, f);
	fwrite(buf, 1, len, all);
	for (size_t i = 0; i < payload; i++) {
		fputc('a' + i % 26, f);
		fputc('a' + i % 26, all);
	}
	fclose(f);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t name[STO_NAME_HASH_LEN] = { 0xde, 0xad, 0xbe, 0xef };
	char path[4096];
	StoRequest q;
	FILE *all;
	int ret = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: storage-frame-seeds DIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/pipelined", argv[1]);
	all = fopen(path, "wb");
	if (!all)
		return 1;
	sto_request__init(&q);
	q.op = STO_OP__STO_OP_PUT;
	q.id = 1;
	q.partition = 12;
	q.name_hash.data = name;
	q.name_hash.len = sizeof(name);
	q.frag_index = 2;
	q.timestamp = 1700000000000000000ull;
	q.payload_len = 40;
	q.crc32c = 0x12345678;
	q.meta.data = (uint8_t *)"etag=abc;ct=text/plain";
	q.meta.len = 22;
	ret |= emit(argv[1], "put", &q, 40, all);
	q.id = 11;
	q.tier_class = STO_TIER_PIN_COLD;	/* tiering fields (PUT only) */
	q.cold_after = 86400;
	ret |= emit(argv[1], "put-tier", &q, 40, all);
	q.tier_class = 0;
	q.cold_after = 0;
	q.op = STO_OP__STO_OP_GET;
	q.id = 2;
	q.payload_len = 0;
	q.meta.len = 0;
	q.crc32c = 0;
	q.offset = 5;
	q.length = 10;
	ret |= emit(argv[1], "get", &q, 0, all);
	q.op = STO_OP__STO_OP_HEAD;
	q.id = 3;
	q.offset = q.length = 0;
	ret |= emit(argv[1], "head", &q, 0, all);
	q.op = STO_OP__STO_OP_DELETE;
	q.id = 4;
	ret |= emit(argv[1], "delete", &q, 0, all);
	q.op = STO_OP__STO_OP_PURGE;	/* key + timestamp, like DELETE */
	q.id = 41;
	ret |= emit(argv[1], "purge", &q, 0, all);
	q.op = STO_OP__STO_OP_SET_TIER;	/* key, timestamp, the policy */
	q.id = 42;
	q.tier_class = STO_TIER_COLD;
	q.cold_after = 3600;
	ret |= emit(argv[1], "set-tier", &q, 0, all);
	q.tier_class = 0;
	q.cold_after = 0;
	q.op = STO_OP__STO_OP_DELETE;
	sto_request__init(&q);
	q.op = STO_OP__STO_OP_LIST;
	q.id = 5;
	q.partition = 12;
	q.list_objects = 1;
	q.suffix = 0xdea;
	ret |= emit(argv[1], "list", &q, 0, all);
	sto_request__init(&q);
	q.op = STO_OP__STO_OP_STAT;
	q.id = 6;
	ret |= emit(argv[1], "stat", &q, 0, all);

	/* Listings. */
	{
		static uint8_t lid[STO_LISTING_ID_LEN] = { 0x11, 0x22, 0x33 };
		StoListingEntry e[3], *ep[3];

		for (int i = 0; i < 3; i++) {
			sto_listing_entry__init(&e[i]);
			ep[i] = &e[i];
			e[i].timestamp = 1700000000000000000ull + (uint64_t)i;
		}
		e[0].key.data = (uint8_t *)"photos/2026/a.jpg";
		e[0].key.len = 17;
		e[0].value.data = (uint8_t *)"size=1;etag=x";
		e[0].value.len = 13;
		e[1].key.data = (uint8_t *)"photos/\xff\x00b";
		e[1].key.len = 10;
		e[2].key.data = (uint8_t *)"z";
		e[2].key.len = 1;
		e[2].tombstone = 1;
		sto_request__init(&q);
		q.op = STO_OP__STO_OP_LISTING_PUT;
		q.id = 7;
		q.partition = 3;
		q.listing_id.data = lid;
		q.listing_id.len = sizeof(lid);
		q.n_listing_entries = 3;
		q.listing_entries = ep;
		ret |= emit(argv[1], "listing-put", &q, 0, all);
		q.n_listing_entries = 0;
		q.listing_entries = NULL;
		q.op = STO_OP__STO_OP_LISTING_QUERY;
		q.id = 8;
		q.start_after.data = (uint8_t *)"photos/";
		q.start_after.len = 7;
		q.prefix.data = (uint8_t *)"photos/";
		q.prefix.len = 7;
		q.delimiter.data = (uint8_t *)"/";
		q.delimiter.len = 1;
		q.limit = 1000;
		q.include_tombstones = 1;
		ret |= emit(argv[1], "listing-query", &q, 0, all);
		q.op = STO_OP__STO_OP_LISTING_DELETE_RANGE;
		q.id = 9;
		q.prefix.len = q.delimiter.len = 0;
		q.include_tombstones = 0;
		q.end.data = (uint8_t *)"q";
		q.end.len = 1;
		ret |= emit(argv[1], "listing-delete-range", &q, 0, all);
		q.op = STO_OP__STO_OP_LISTING_STAT;
		q.id = 10;
		q.start_after.len = q.end.len = 0;
		q.limit = 0;
		ret |= emit(argv[1], "listing-stat", &q, 0, all);
		sto_request__init(&q);
		q.op = STO_OP__STO_OP_LISTING_IDS;	/* partition, after an id */
		q.id = 42;
		q.partition = 12;
		q.start_after.data = lid;
		q.start_after.len = sizeof(lid);
		ret |= emit(argv[1], "listing-ids", &q, 0, all);
	}
	fclose(all);
	return ret;
}
