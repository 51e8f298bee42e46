/* strata-admin: operator commands against running nodes.
 *
 *   strata-admin tiers --node HOST:PORT [--node ...] [--json]
 *
 * tiers: each node's hot/cold tiering state from its STAT RPC - per medium
 * fragments, bytes (live, at the mover's last scan), dead bytes, capacity and
 * free space, reads and writes since start; bytes and fragments moved each
 * way; the access-age histogram. A table, or one JSON object per node.
 * Exit 0, 1 when a node could not be asked, 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "storage.h"

struct ask {
	bool done;
	int status;
	struct sto_stat st;
};

static void on_connect(sto_client *c, int status, void *arg)
{
	struct ask *a = arg;

	a->status = status;
	a->done = true;
}

static void on_stat(void *arg, int status, const struct sto_stat *st)
{
	struct ask *a = arg;

	a->status = status;
	if (st)
		a->st = *st;
	a->done = true;
}

/* host:port, [v6]:port. 0 or -EINVAL. */
static int split_addr(const char *s, char *host, size_t len, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	size_t n;
	long p;

	if (!colon)
		return -EINVAL;
	n = (size_t)(colon - s);
	if (*s == '[' && n >= 2 && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= len)
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = 0;
	p = strtol(colon + 1, NULL, 10);
	if (p <= 0 || p > 65535)
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

static int ask_stat(uv_loop_t *loop, const char *node, struct sto_stat *out)
{
	struct ask a = { 0 };
	char host[256];
	uint16_t port;
	sto_client *c;
	int ret;

	if (split_addr(node, host, sizeof(host), &port) < 0)
		return -EINVAL;
	ret = sto_client_connect(loop, host, port, on_connect, &a, &c);
	if (ret < 0)
		return ret;
	while (!a.done)
		uv_run(loop, UV_RUN_ONCE);
	if (a.status == 0) {
		a.done = false;
		ret = sto_stat(c, on_stat, &a);
		if (ret < 0)
			a.status = ret;
		while (ret == 0 && !a.done)
			uv_run(loop, UV_RUN_ONCE);
	}
	sto_client_close(c);
	uv_run(loop, UV_RUN_NOWAIT);
	*out = a.st;
	return a.status;
}

static json_t *u64s(const uint64_t *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)v[i]));
	return a;
}

static json_t *tiers_json(const char *node, const struct sto_stat *s)
{
	const struct sto_tier_stat *t = &s->tier;
	json_t *o = json_object(), *media = json_object(), *h = json_array();

	for (int m = 0; m < 2; m++) {
		json_t *x = json_object();

		json_object_set_new(x, "dirs", json_integer(s->media[m].dirs));
		json_object_set_new(x, "capacity_bytes", json_integer((json_int_t)s->media[m].capacity_bytes));
		json_object_set_new(x, "free_bytes", json_integer((json_int_t)s->media[m].free_bytes));
		json_object_set_new(x, "volume_bytes", json_integer((json_int_t)s->media[m].used_bytes));
		json_object_set_new(x, "dead_bytes", json_integer((json_int_t)t->dead_bytes[m]));
		json_object_set_new(x, "objects", json_integer((json_int_t)t->objects[m]));
		json_object_set_new(x, "bytes", json_integer((json_int_t)t->bytes[m]));
		json_object_set_new(x, "reads", json_integer((json_int_t)t->reads[m]));
		json_object_set_new(x, "writes", json_integer((json_int_t)t->writes[m]));
		json_object_set_new(x, "age_histogram", u64s(t->hist[m], STO_TIER_HIST));
		json_object_set_new(media, m ? "cold" : "hot", x);
	}
	for (int i = 0; i < STO_TIER_HIST; i++)
		json_array_append_new(h, i == STO_TIER_HIST - 1 ? json_null()
					 : json_integer((json_int_t)t->hist_bounds[i]));
	json_object_set_new(o, "node", json_string(node));
	json_object_set_new(o, "media", media);
	json_object_set_new(o, "age_bounds_s", h);
	json_object_set_new(o, "cold_heat", u64s(t->heat, STO_TIER_HEAT));
	json_object_set_new(o, "moved_down_objects", json_integer((json_int_t)t->moved_down_objects));
	json_object_set_new(o, "moved_down_bytes", json_integer((json_int_t)t->moved_down_bytes));
	json_object_set_new(o, "moved_up_objects", json_integer((json_int_t)t->moved_up_objects));
	json_object_set_new(o, "moved_up_bytes", json_integer((json_int_t)t->moved_up_bytes));
	json_object_set_new(o, "move_failures", json_integer((json_int_t)t->move_failures));
	json_object_set_new(o, "pending_moves", json_integer((json_int_t)t->pending_moves));
	json_object_set_new(o, "pending_promotions", json_integer((json_int_t)t->pending_promotions));
	json_object_set_new(o, "scans", json_integer((json_int_t)t->scans));
	json_object_set_new(o, "last_scan_age_s", t->last_scan_age == UINT64_MAX ? json_null()
				: json_integer((json_int_t)t->last_scan_age));
	return o;
}

static const char *human(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double d = (double)v;
	int u = 0;

	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", d, unit[u]);
	return buf;
}

static const char *age_label(uint64_t s, char *buf, size_t len)
{
	if (s % 86400 == 0)
		snprintf(buf, len, "<%llud", (unsigned long long)(s / 86400));
	else if (s % 3600 == 0)
		snprintf(buf, len, "<%lluh", (unsigned long long)(s / 3600));
	else if (s % 60 == 0)
		snprintf(buf, len, "<%llum", (unsigned long long)(s / 60));
	else
		snprintf(buf, len, "<%llus", (unsigned long long)s);
	return buf;
}

static void tiers_table(const char *node, const struct sto_stat *s)
{
	const struct sto_tier_stat *t = &s->tier;
	char a[32], b[32], c[32], d[32], e[32];

	printf("node %s (last scan %s)\n", node,
	       t->last_scan_age == UINT64_MAX ? "not yet" : "done");
	printf("  %-5s %10s %11s %11s %11s %11s %11s %10s %10s\n", "tier", "objects",
	       "live", "in volumes", "dead", "capacity", "free", "reads", "writes");
	for (int m = 0; m < 2; m++)
		printf("  %-5s %10llu %11s %11s %11s %11s %11s %10llu %10llu\n",
		       m ? "cold" : "hot", (unsigned long long)t->objects[m],
		       human(t->bytes[m], a, sizeof(a)),
		       human(s->media[m].used_bytes, b, sizeof(b)),
		       human(t->dead_bytes[m], c, sizeof(c)),
		       human(s->media[m].capacity_bytes, d, sizeof(d)),
		       human(s->media[m].free_bytes, e, sizeof(e)),
		       (unsigned long long)t->reads[m], (unsigned long long)t->writes[m]);
	printf("  moved hot->cold: %llu (%s); cold->hot: %llu (%s); failures %llu; "
	       "pending %llu moves, %llu promotions\n",
	       (unsigned long long)t->moved_down_objects, human(t->moved_down_bytes, a, sizeof(a)),
	       (unsigned long long)t->moved_up_objects, human(t->moved_up_bytes, b, sizeof(b)),
	       (unsigned long long)t->move_failures, (unsigned long long)t->pending_moves,
	       (unsigned long long)t->pending_promotions);
	printf("  last access  ");
	for (int i = 0; i < STO_TIER_HIST; i++)
		printf(" %8s", i == STO_TIER_HIST - 1 ? "older" : age_label(t->hist_bounds[i], a, sizeof(a)));
	for (int m = 0; m < 2; m++) {
		printf("\n  %-12s ", m ? "cold" : "hot");
		for (int i = 0; i < STO_TIER_HIST; i++)
			printf(" %8llu", (unsigned long long)t->hist[m][i]);
	}
	/* Cold fragments by reads within their promotion window. */
	printf("\n  cold reads   ");
	for (int i = 0; i < STO_TIER_HEAT; i++)
		printf(" %8s", (const char *[]){ "1", "2", "3-4", "5-8", "9-16", "more" }[i]);
	printf("\n  %-12s ", "fragments");
	for (int i = 0; i < STO_TIER_HEAT; i++)
		printf(" %8llu", (unsigned long long)t->heat[i]);
	printf("\n");
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-admin tiers --node HOST:PORT [--node HOST:PORT ...] [--json]\n"
"  tiers   hot/cold tiering state of storage nodes (their STAT RPC)\n");
}

static int cmd_tiers(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "node", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *nodes[64];
	unsigned n = 0;
	bool json = false;
	uv_loop_t loop;
	int opt, bad = 0;

	while ((opt = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (n == 64) {
				usage(stderr);
				return 2;
			}
			nodes[n++] = optarg;
			break;
		case 'j': json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!n || optind != argc) {
		usage(stderr);
		return 2;
	}
	uv_loop_init(&loop);
	for (unsigned i = 0; i < n; i++) {
		struct sto_stat st;
		int ret = ask_stat(&loop, nodes[i], &st);

		if (ret < 0) {
			fprintf(stderr, "strata-admin: %s: %s\n", nodes[i],
				ret == -EINVAL ? "not HOST:PORT (numeric address)" : sto_strerror(ret));
			bad = 1;
			continue;
		}
		if (json) {
			json_t *o = tiers_json(nodes[i], &st);

			json_dumpf(o, stdout, JSON_COMPACT);
			putchar('\n');
			json_decref(o);
		} else {
			tiers_table(nodes[i], &st);
		}
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return bad;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "tiers"))
		return cmd_tiers(argc - 1, argv + 1);
	fprintf(stderr, "strata-admin: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
