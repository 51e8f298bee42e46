/* node-frags: counts the live (not tombstoned) fragments on storage nodes,
 * through the nodes' LIST RPCs (the repair daemons' view), so a test can
 * show that deleted, replaced or aborted data does not stay behind.
 *
 *   node-frags PART_POWER HOST:PORT...
 *
 * Prints "<live fragments> <their bytes>" summed over every partition of
 * every node given. Exit 0, 1 when a node could not be asked, 2 on usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "storage.h"

struct ask {
	bool done;
	int status;
	uint32_t *suffixes;
	size_t n;
	uint64_t live, bytes;
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
		}
	a->done = true;
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

static int count_node(uv_loop_t *loop, const char *node, uint32_t parts, struct ask *a)
{
	const char *colon = strrchr(node, ':');
	char host[64];
	sto_client *c = NULL;
	int ret;

	if (!colon || (size_t)(colon - node) >= sizeof(host))
		return -EINVAL;
	memcpy(host, node, (size_t)(colon - node));
	host[colon - node] = 0;
	ret = wait_for(loop, a, sto_client_connect(loop, host, (uint16_t)atoi(colon + 1),
						   on_connect, a, &c));
	for (uint32_t p = 0; ret == 0 && p < parts; p++) {
		ret = wait_for(loop, a, sto_list_suffixes(c, p, on_suffixes, a));
		for (size_t i = 0; ret == 0 && i < a->n; i++)
			ret = wait_for(loop, a, sto_list_objects(c, p, a->suffixes[i],
								 on_entries, a));
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

	if (argc < 3 || (pp = atoi(argv[1])) < 0 || pp > 20) {
		fprintf(stderr, "usage: node-frags PART_POWER HOST:PORT...\n");
		return 2;
	}
	uv_loop_init(&loop);
	for (int i = 2; i < argc && ret == 0; i++) {
		ret = count_node(&loop, argv[i], 1u << pp, &a);
		if (ret < 0)
			fprintf(stderr, "node-frags: %s: %s\n", argv[i], sto_strerror(ret));
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (ret < 0)
		return 1;
	printf("%llu %llu\n", (unsigned long long)a.live, (unsigned long long)a.bytes);
	return 0;
}
