/* node-frags: counts the live (not tombstoned) fragments on storage nodes,
 * through the nodes' LIST RPCs (the repair daemons' view), so a test can
 * show that deleted, replaced or aborted data does not stay behind.
 *
 *   node-frags PART_POWER HOST:PORT...
 *
 * Prints "<live fragments> <their bytes>" summed over every partition of
 * every node given. Exit 0, 1 when a node could not be asked, 2 on usage.
 *
 *   node-frags --policies PART_POWER HOST:PORT...
 *
 * The same live fragments by tiering policy and medium, each asked with a
 * HEAD (what a reader and repair see): one line per distinct
 * "CLASS COLD_AFTER MEDIUM COUNT" (class and medium as numbers, storage.h).
 *
 *   node-frags --keys PART_POWER HOST:PORT...
 *
 * Every live fragment, one line each: "HOST:PORT PART FRAG SIZE NAME_HEX"
 * (where an object's fragments landed, and under which numbers: storage
 * policies, ring_frag_id).
 *
 *   node-frags --listings PART_POWER HOST:PORT...
 *
 * The nodes' listing stores (LISTING_IDS, what replication compares): one
 * line per listing held, "HOST:PORT PART ID_HEX ENTRIES TOMBSTONES HASH".
 *
 *   node-frags --listing-put HOST:PORT PART ID_HEX KEY...
 *   node-frags --listing-put HOST:PORT PART ID_HEX --fill COUNT BYTES
 *
 * Writes the keys (value "v", timestamp now), or COUNT keys "fill-NNNNNNN"
 * with BYTES-byte values, into that node's listing only: a listing one node
 * holds (rebalance_test's listing held only on a node being drained, and
 * the listing whose pull is timed under --max-mbps).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "storage.h"

struct ask {
	bool done;
	int status;
	const char *node;		/* --listings, --keys: printed with each line */
	bool print_keys;		/* --keys */
	uint32_t part;
	uint32_t *suffixes;
	size_t n;
	uint64_t live, bytes;
	uint8_t last[STO_LISTING_ID_LEN];	/* --listings: ask again after it */
	struct sto_key *keys;		/* --policies: the live entries listed */
	size_t nkeys, capkeys;
	struct pol { uint32_t tier, cold_after, medium; uint64_t count; } pols[64];
	size_t npols;
};

static void on_connect(sto_client *c, int status, void *arg)
{
	struct ask *a = arg;

	(void)c;
	a->status = status;
	a->done = true;
}

static void on_suffixes(void *arg, int status, const struct sto_suffix_hash *v, size_t n)
{
	struct ask *a = arg;

	a->status = status;
	a->n = 0;
	if (status == 0 && n) {
		a->suffixes = malloc(n * sizeof(*a->suffixes));
		if (!a->suffixes)
			a->status = -ENOMEM;
		for (size_t i = 0; a->suffixes && i < n; i++)
			a->suffixes[a->n++] = v[i].suffix;
	}
	a->done = true;
}

static void on_entries(void *arg, int status, const struct sto_list_entry *v, size_t n)
{
	struct ask *a = arg;

	a->status = status;
	for (size_t i = 0; status == 0 && i < n; i++)
		if (!v[i].tombstone) {
			a->live++;
			a->bytes += v[i].size;
			if (a->print_keys) {
				printf("%s %u %u %llu ", a->node, a->part, v[i].frag,
				       (unsigned long long)v[i].size);
				for (unsigned b = 0; b < STO_NAME_HASH_LEN; b++)
					printf("%02x", v[i].name[b]);
				printf("\n");
			}
			if (a->capkeys == a->nkeys) {
				size_t cap = a->capkeys ? 2 * a->capkeys : 64;
				struct sto_key *k = realloc(a->keys, cap * sizeof(*k));

				if (!k) {
					a->status = -ENOMEM;
					break;
				}
				a->keys = k;
				a->capkeys = cap;
			}
			a->keys[a->nkeys].part = a->part;
			memcpy(a->keys[a->nkeys].name, v[i].name, STO_NAME_HASH_LEN);
			a->keys[a->nkeys++].frag = v[i].frag;
		}
	a->done = true;
}

/* --policies: one HEAD's answer tallied (gone meanwhile: not counted). */
static void on_head(void *arg, int status, const struct sto_info *info)
{
	struct ask *a = arg;
	size_t i;

	a->status = status == -ENOENT ? 0 : status;
	a->done = true;
	if (status < 0 || !info)
		return;
	for (i = 0; i < a->npols; i++)
		if (a->pols[i].tier == info->tier && a->pols[i].cold_after == info->cold_after &&
		    a->pols[i].medium == info->medium)
			break;
	if (i == a->npols) {
		if (i == sizeof(a->pols) / sizeof(a->pols[0])) {
			a->status = -E2BIG;
			return;
		}
		a->pols[a->npols++] = (struct pol){ info->tier, info->cold_after, info->medium, 0 };
	}
	a->pols[i].count++;
}

static int wait_for(uv_loop_t *loop, struct ask *a, int ret)
{
	if (ret < 0)
		return ret;
	while (!a->done)
		uv_run(loop, UV_RUN_ONCE);
	a->done = false;
	return a->status;
}

static int connect_node(uv_loop_t *loop, const char *node, struct ask *a, sto_client **c)
{
	const char *colon = strrchr(node, ':');
	char host[64];

	if (!colon || (size_t)(colon - node) >= sizeof(host))
		return -EINVAL;
	memcpy(host, node, (size_t)(colon - node));
	host[colon - node] = 0;
	return wait_for(loop, a, sto_client_connect(loop, host, (uint16_t)atoi(colon + 1),
						    on_connect, a, c));
}

static void on_ids(void *arg, int status, const struct sto_listing_info *v, size_t n,
		   bool more)
{
	struct ask *a = arg;

	a->status = status;
	a->n = 0;
	for (size_t i = 0; status == 0 && i < n; i++) {
		printf("%s %u ", a->node, a->part);
		for (unsigned b = 0; b < STO_LISTING_ID_LEN; b++)
			printf("%02x", v[i].id[b]);
		printf(" %llu %llu %016llx\n", (unsigned long long)v[i].entries,
		       (unsigned long long)v[i].tombstones, (unsigned long long)v[i].hash);
	}
	if (status == 0 && n && more) {
		a->n = 1;
		memcpy(a->last, v[n - 1].id, STO_LISTING_ID_LEN);
	}
	a->done = true;
}

static int listings_node(uv_loop_t *loop, const char *node, uint32_t parts, struct ask *a)
{
	sto_client *c = NULL;
	int ret = connect_node(loop, node, a, &c);

	a->node = node;
	for (uint32_t p = 0; ret == 0 && p < parts; p++) {
		a->part = p;
		ret = wait_for(loop, a, sto_listing_ids(c, p, NULL, on_ids, a));
		while (ret == 0 && a->n)
			ret = wait_for(loop, a, sto_listing_ids(c, p, a->last, on_ids, a));
	}
	if (c)
		sto_client_close(c);
	uv_run(loop, UV_RUN_NOWAIT);
	return ret;
}

static void on_put(void *arg, int status, uint64_t count)
{
	struct ask *a = arg;

	(void)count;
	a->status = status;
	a->done = true;
}

static int listing_put(uv_loop_t *loop, char **argv, int argc, struct ask *a)
{
	struct sto_listing_id id = { .part = (uint32_t)strtoul(argv[1], NULL, 10) };
	struct sto_listing_entry e[64];
	static char val[STO_LISTING_MAX_VALUE], fkeys[8][16];
	bool fill = argc == 6 && !strcmp(argv[3], "--fill");
	long count = fill ? atol(argv[4]) : 0, vbytes = fill ? atol(argv[5]) : 1;
	struct timespec now;
	sto_client *c = NULL;
	int n = argc - 3, ret;

	if (strlen(argv[2]) != 2 * STO_LISTING_ID_LEN || n < 1 || n > 64 ||
	    (fill && (count < 1 || vbytes < 1 || vbytes > STO_LISTING_MAX_VALUE)))
		return -EINVAL;
	memset(val, 'v', sizeof(val));
	for (unsigned b = 0; b < STO_LISTING_ID_LEN; b++) {
		unsigned x;

		if (sscanf(argv[2] + 2 * b, "%2x", &x) != 1)
			return -EINVAL;
		id.id[b] = (uint8_t)x;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	for (int i = 0; !fill && i < n; i++)
		e[i] = (struct sto_listing_entry){
			.key = argv[3 + i], .key_len = (uint32_t)strlen(argv[3 + i]),
			.timestamp = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
			.value = val, .value_len = 1,
		};
	ret = connect_node(loop, argv[0], a, &c);
	if (ret == 0 && !fill)
		ret = wait_for(loop, a, sto_listing_put(c, &id, e, (size_t)n, on_put, a));
	/* --fill: batches of 8 (8 values of 4 KiB fit one request) */
	for (long k = 0; ret == 0 && k < count; k += n) {
		n = count - k < 8 ? (int)(count - k) : 8;
		for (int i = 0; i < n; i++) {
			snprintf(fkeys[i], sizeof(fkeys[i]), "fill-%07ld", k + i);
			e[i] = (struct sto_listing_entry){
				.key = fkeys[i], .key_len = (uint32_t)strlen(fkeys[i]),
				.timestamp = (uint64_t)now.tv_sec * 1000000000u +
					     (uint64_t)now.tv_nsec,
				.value = val, .value_len = (uint32_t)vbytes,
			};
		}
		ret = wait_for(loop, a, sto_listing_put(c, &id, e, (size_t)n, on_put, a));
	}
	if (c)
		sto_client_close(c);
	uv_run(loop, UV_RUN_NOWAIT);
	return ret;
}

static int count_node(uv_loop_t *loop, const char *node, uint32_t parts, struct ask *a,
		      bool policies)
{
	sto_client *c = NULL;
	int ret = connect_node(loop, node, a, &c);

	a->node = node;
	for (uint32_t p = 0; ret == 0 && p < parts; p++) {
		a->part = p;
		a->nkeys = 0;
		ret = wait_for(loop, a, sto_list_suffixes(c, p, on_suffixes, a));
		for (size_t i = 0; ret == 0 && i < a->n; i++)
			ret = wait_for(loop, a, sto_list_objects(c, p, a->suffixes[i],
								 on_entries, a));
		for (size_t i = 0; policies && ret == 0 && i < a->nkeys; i++)
			ret = wait_for(loop, a, sto_head(c, &a->keys[i], on_head, a));
		free(a->suffixes);
		a->suffixes = NULL;
	}
	if (c)
		sto_client_close(c);
	uv_run(loop, UV_RUN_NOWAIT);
	return ret;
}

int main(int argc, char **argv)
{
	struct ask a = { 0 };
	uv_loop_t loop;
	int pp, ret = 0;
	bool listings = argc > 1 && !strcmp(argv[1], "--listings");
	bool policies = argc > 1 && !strcmp(argv[1], "--policies");
	bool keys = argc > 1 && !strcmp(argv[1], "--keys");

	if (argc > 1 && !strcmp(argv[1], "--listing-put")) {
		if (argc < 6) {
			fprintf(stderr, "usage: node-frags --listing-put HOST:PORT PART ID_HEX KEY...\n");
			return 2;
		}
		uv_loop_init(&loop);
		ret = listing_put(&loop, argv + 2, argc - 2, &a);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		if (ret < 0)
			fprintf(stderr, "node-frags: %s: %s\n", argv[2], sto_strerror(ret));
		return ret < 0 ? 1 : 0;
	}
	if (listings || policies || keys) {
		argv++;
		argc--;
	}
	a.print_keys = keys;
	if (argc < 3 || (pp = atoi(argv[1])) < 0 || pp > 20) {
		fprintf(stderr, "usage: node-frags [--listings|--policies|--keys] PART_POWER HOST:PORT...\n");
		return 2;
	}
	uv_loop_init(&loop);
	for (int i = 2; i < argc && ret == 0; i++) {
		ret = listings ? listings_node(&loop, argv[i], 1u << pp, &a) :
				 count_node(&loop, argv[i], 1u << pp, &a, policies);
		if (ret < 0)
			fprintf(stderr, "node-frags: %s: %s\n", argv[i], sto_strerror(ret));
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(a.keys);
	if (ret < 0)
		return 1;
	if (listings || keys)
		return 0;
	for (size_t i = 0; policies && i < a.npols; i++)
		printf("%u %u %u %llu\n", a.pols[i].tier, a.pols[i].cold_after, a.pols[i].medium,
		       (unsigned long long)a.pols[i].count);
	if (policies)
		return 0;
	printf("%llu %llu\n", (unsigned long long)a.live, (unsigned long long)a.bytes);
	return 0;
}
