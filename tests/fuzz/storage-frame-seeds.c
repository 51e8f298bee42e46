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
	fclose(all);
	return ret;
}
