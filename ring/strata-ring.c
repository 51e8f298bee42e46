/* strata-ring: build and inspect rings (think swift-ring-builder).
 *
 * Builder files hold the operator's state; `rebalance` writes the ring file
 * that daemons load. Every command prints plain English, or one JSON object
 * with --json.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring.h"

static bool opt_json;
static bool opt_assignment;	/* show --assignment: every partition's devices */

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-ring COMMAND FILE [options] [--json]\n"
"\n"
"  create BUILDER --part-power N (--replicas N | --ec K+M [--index I])\n"
"                 [--min-part-hours H] [--seed S]\n"
"                 --index: the EC policy's number, unique among the cluster's\n"
"                 EC rings (0-255, default 0); fragments carry it\n"
"  add BUILDER --region R --zone Z --node HOST:PORT --name NAME --weight W\n"
"  remove BUILDER ID\n"
"  set-weight BUILDER ID WEIGHT\n"
"  set-min-part-hours BUILDER HOURS\n"
"  set-overload BUILDER FRACTION   let domains exceed their weight share by up\n"
"                 to FRACTION (0.1 = 10%%) to keep partitions in distinct zones\n"
"  rebalance BUILDER [--ring RINGFILE] [--now-hours H]\n"
"                 writes RINGFILE (default: BUILDER with .builder -> .ring)\n"
"  show BUILDER|RINGFILE [--assignment]   (--assignment: each partition's devices, with --json)\n"
"  validate RINGFILE\n"
"  lookup RINGFILE /account/bucket/object [--handoffs N]\n"
"\n"
"A partition moves at most one placement per rebalance and none within\n"
"min-part-hours of its last move (placements on removed devices always move).\n");
}

static int fail(const char *what, const char *path, int err)
{
	if (opt_json) {
		json_t *o = json_pack("{s:s, s:s, s:i}", "error", ring_strerror(err),
				      "file", path ? path : "", "code", err);

		json_dumpf(o, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(o);
	}
	fprintf(stderr, "strata-ring: %s%s%s: %s\n", what, path ? " " : "",
		path ? path : "", ring_strerror(err));
	return 1;
}

static void emit(json_t *o)
{
	json_dumpf(o, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(o);
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return false;
	*out = v;
	return true;
}

static bool parse_weight(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return !errno && end != s && !*end && *out >= 0;
}

/* getopt_long() over a command's options, taking --json ('j', which every
 * command has) itself: the next other option, -1 at the end, '?' if bad. */
static int next_opt(int argc, char **argv, const struct option *opts)
{
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) == 'j')
		opt_json = true;
	return c;
}

static const char *policy_str(const struct ring_policy *p, char *buf, size_t len)
{
	if (p->type == RING_POLICY_EC)
		snprintf(buf, len, "EC %u+%u (policy %u)", p->ec_k, p->ec_m, p->index);
	else
		snprintf(buf, len, "%u replicas", p->replicas);
	return buf;
}

static json_t *policy_json(const struct ring_policy *p)
{
	if (p->type == RING_POLICY_EC)
		return json_pack("{s:s, s:i, s:i, s:i}", "type", "ec", "k", p->ec_k, "m", p->ec_m,
				 "index", p->index);
	return json_pack("{s:s, s:i}", "type", "replica", "replicas", p->replicas);
}

static json_t *dev_json(const struct ring_dev *d)
{
	return json_pack("{s:i, s:i, s:i, s:s, s:s, s:f}", "id", d->id, "region", d->region,
			 "zone", d->zone, "node", d->node, "name", d->name, "weight", d->weight);
}

static json_t *stats_json(const struct ring_rebalance_stats *st)
{
	return json_pack("{s:I, s:I, s:f, s:I, s:I, s:I, s:I}",
			 "moved", (json_int_t)st->moved,
			 "placements", (json_int_t)st->placements,
			 "balance_pct", st->balance,
			 "dispersion", (json_int_t)st->dispersion,
			 "parts_sharing_zone", (json_int_t)st->parts_sharing_zone,
			 "parts_sharing_node", (json_int_t)st->parts_sharing_node,
			 "locked", (json_int_t)st->locked);
}

static void print_stats(const struct ring_rebalance_stats *st)
{
	printf("balance: worst device is %.2f%% off its weighted share\n", st->balance);
	printf("dispersion: %lu partitions crowd a failure domain more than the layout requires\n",
	       (unsigned long)st->dispersion);
	printf("            %lu share a zone, %lu share a node (the layout may force these)\n",
	       (unsigned long)st->parts_sharing_zone, (unsigned long)st->parts_sharing_node);
}

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "part-power", required_argument, NULL, 'p' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "ec", required_argument, NULL, 'e' },
		{ "index", required_argument, NULL, 'i' },
		{ "min-part-hours", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct ring_policy pol = { 0 };
	struct ring_builder *b;
	uint64_t pp = UINT64_MAX, mph = 1, seed = 0, v;
	unsigned k, m;
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_u64(optarg, RING_MAX_PART_POWER, &pp))
				goto bad;
			break;
		case 'r':
			if (!parse_u64(optarg, RING_MAX_PLACEMENTS, &v))
				goto bad;
			pol.type = RING_POLICY_REPLICA;
			pol.replicas = (uint32_t)v;
			break;
		case 'e':
			if (sscanf(optarg, "%u+%u", &k, &m) != 2)
				goto bad;
			pol.type = RING_POLICY_EC;
			pol.ec_k = k;
			pol.ec_m = m;
			break;
		case 'i':
			if (!parse_u64(optarg, RING_MAX_POLICY, &v))
				goto bad;
			pol.index = (uint32_t)v;
			break;
		case 'm':
			if (!parse_u64(optarg, UINT32_MAX, &mph))
				goto bad;
			break;
		case 's':
			if (!parse_u64(optarg, UINT64_MAX, &seed))
				goto bad;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc - 1 || pp == UINT64_MAX || !pol.type ||
	    (pol.index && pol.type != RING_POLICY_EC))
		goto bad;
	ret = ring_builder_create((uint32_t)pp, &pol, (uint32_t)mph, seed, NULL, &b);
	if (ret < 0)
		return fail("create", argv[optind], ret);
	ret = ring_builder_save(b, argv[optind]);
	ring_builder_free(b);
	if (ret < 0)
		return fail("save", argv[optind], ret);
	if (opt_json) {
		emit(json_pack("{s:s, s:i, s:o, s:i}", "builder", argv[optind], "part_power",
			       (int)pp, "policy", policy_json(&pol), "min_part_hours", (int)mph));
	} else {
		char pbuf[32];

		printf("created %s: %u partitions, %s, min_part_hours %lu\n", argv[optind],
		       1u << pp, policy_str(&pol, pbuf, sizeof(pbuf)), (unsigned long)mph);
	}
	return 0;
bad:
	usage(stderr);
	return 2;
}

static int cmd_add(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "region", required_argument, NULL, 'r' },
		{ "zone", required_argument, NULL, 'z' },
		{ "node", required_argument, NULL, 'n' },
		{ "name", required_argument, NULL, 'd' },
		{ "weight", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct ring_dev d = { .region = 1, .weight = -1 };
	struct ring_builder *b;
	uint64_t v;
	uint32_t id;
	bool have_zone = false;
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		switch (c) {
		case 'r':
			if (!parse_u64(optarg, UINT32_MAX, &v))
				goto bad;
			d.region = (uint32_t)v;
			break;
		case 'z':
			if (!parse_u64(optarg, UINT32_MAX, &v))
				goto bad;
			d.zone = (uint32_t)v;
			have_zone = true;
			break;
		case 'n':
			if (strlen(optarg) > RING_NAME_MAX)
				goto bad;
			strcpy(d.node, optarg);
			break;
		case 'd':
			if (strlen(optarg) > RING_NAME_MAX)
				goto bad;
			strcpy(d.name, optarg);
			break;
		case 'w':
			if (!parse_weight(optarg, &d.weight))
				goto bad;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc - 1 || !have_zone || !d.node[0] || !d.name[0] || d.weight < 0)
		goto bad;
	ret = ring_builder_load(argv[optind], &b);
	if (ret < 0)
		return fail("load", argv[optind], ret);
	ret = ring_builder_add(b, &d, &id);
	if (ret == 0)
		ret = ring_builder_save(b, argv[optind]);
	ring_builder_free(b);
	if (ret < 0)
		return fail("add", argv[optind], ret);
	d.id = id;
	if (opt_json)
		emit(dev_json(&d));
	else
		printf("added device %u: region %u zone %u %s/%s weight %g\n", id, d.region,
		       d.zone, d.node, d.name, d.weight);
	return 0;
bad:
	usage(stderr);
	return 2;
}

/* remove / set-weight / set-min-part-hours: BUILDER ID [VALUE]. */
static int cmd_edit(int argc, char **argv)
{
	const char *cmd = argv[0];
	struct ring_builder *b;
	int nargs = !strcmp(cmd, "set-weight") ? 2 : 1;
	uint64_t id = 0;
	double w = 0;
	int ret;

	if (argc > 1 && !strcmp(argv[argc - 1], "--json")) {
		opt_json = true;
		argc--;
	}
	if (!strcmp(cmd, "set-overload")) {
		if (argc != 3 || !parse_weight(argv[2], &w)) {
			usage(stderr);
			return 2;
		}
	} else if (argc != 2 + nargs || !parse_u64(argv[2], UINT32_MAX, &id) ||
	    (nargs == 2 && !parse_weight(argv[3], &w))) {
		usage(stderr);
		return 2;
	}
	ret = ring_builder_load(argv[1], &b);
	if (ret < 0)
		return fail("load", argv[1], ret);
	if (!strcmp(cmd, "set-overload"))
		ret = ring_builder_set_overload(b, w);
	else if (!strcmp(cmd, "remove"))
		ret = ring_builder_remove(b, (uint32_t)id);
	else if (!strcmp(cmd, "set-weight"))
		ret = ring_builder_set_weight(b, (uint32_t)id, w);
	else
		ret = ring_builder_set_min_part_hours(b, (uint32_t)id);
	if (ret == 0)
		ret = ring_builder_save(b, argv[1]);
	ring_builder_free(b);
	if (ret < 0)
		return fail(cmd, argv[1], ret);
	if (opt_json)
		emit(json_pack("{s:s, s:I, s:f}", "done", cmd, "id", (json_int_t)id, "value", w));
	else if (!strcmp(cmd, "set-overload"))
		printf("overload %g (%.1f%%); takes effect at the next rebalance\n", w, w * 100);
	else if (!strcmp(cmd, "remove"))
		printf("removed device %lu; its placements move at the next rebalance\n",
		       (unsigned long)id);
	else if (!strcmp(cmd, "set-weight"))
		printf("device %lu weight %g; takes effect at the next rebalance\n",
		       (unsigned long)id, w);
	else
		printf("min_part_hours %lu\n", (unsigned long)id);
	return 0;
}

static void default_ring_path(const char *builder, char *out, size_t len)
{
	size_t n = strlen(builder);
	const char *ext = ".builder";

	if (n > strlen(ext) && !strcmp(builder + n - strlen(ext), ext))
		snprintf(out, len, "%.*s.ring", (int)(n - strlen(ext)), builder);
	else
		snprintf(out, len, "%s.ring", builder);
}

static int cmd_rebalance(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ring", required_argument, NULL, 'r' },
		{ "now-hours", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	struct ring_rebalance_stats st;
	struct ring_builder *b;
	char ring_path[4096] = "";
	uint64_t now = (uint64_t)time(NULL) / 3600;
	struct timespec t0, t1;
	double secs;
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		switch (c) {
		case 'r':
			snprintf(ring_path, sizeof(ring_path), "%s", optarg);
			break;
		case 'n':
			if (!parse_u64(optarg, UINT32_MAX, &now) || now == 0)
				goto bad;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc - 1)
		goto bad;
	if (!ring_path[0])
		default_ring_path(argv[optind], ring_path, sizeof(ring_path));
	ret = ring_builder_load(argv[optind], &b);
	if (ret < 0)
		return fail("load", argv[optind], ret);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = ring_builder_rebalance(b, now, &st);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (ret == 0)
		ret = ring_builder_save(b, argv[optind]);
	if (ret == 0)
		ret = ring_builder_write_ring(b, ring_path);
	if (ret < 0) {
		ring_builder_free(b);
		return fail("rebalance", argv[optind], ret);
	}
	if (opt_json) {
		json_t *o = stats_json(&st);

		json_object_set_new(o, "ring", json_string(ring_path));
		json_object_set_new(o, "version", json_integer((json_int_t)ring_builder_version(b)));
		json_object_set_new(o, "seconds", json_real(secs));
		emit(o);
	} else {
		printf("rebalanced in %.2f s: moved %lu of %lu placements (%.2f%%)",
		       secs, (unsigned long)st.moved, (unsigned long)st.placements,
		       st.placements ? 100.0 * st.moved / st.placements : 0);
		if (st.locked)
			printf("; %lu kept in place by min_part_hours (rebalance again later)",
			       (unsigned long)st.locked);
		printf("\n");
		print_stats(&st);
		printf("wrote %s (version %lu)\n", ring_path, (unsigned long)ring_builder_version(b));
	}
	ring_builder_free(b);
	return 0;
bad:
	usage(stderr);
	return 2;
}

/* The device table's columns both show commands print (dev_json() and
 * "parts"); the caller adds its own and the newline. */
static void print_dev_head(void)
{
	printf("%5s %6s %5s %-24s %-12s %10s %10s", "id", "region", "zone", "node",
	       "name", "weight", "parts");
}

static void print_dev_row(const json_t *o)
{
	printf("%5lld %6lld %5lld %-24s %-12s %10g %10lld",
	       json_integer_value(json_object_get(o, "id")),
	       json_integer_value(json_object_get(o, "region")),
	       json_integer_value(json_object_get(o, "zone")),
	       json_string_value(json_object_get(o, "node")),
	       json_string_value(json_object_get(o, "name")),
	       json_real_value(json_object_get(o, "weight")),
	       json_integer_value(json_object_get(o, "parts")));
}

static int show_builder(const char *path, struct ring_builder *b)
{
	struct ring_rebalance_stats st;
	char pbuf[32];
	json_t *devs = json_array();

	ring_builder_report(b, &st);
	for (unsigned i = 0; i < ring_builder_dev_count(b); i++) {
		const struct ring_dev *d = ring_builder_dev_at(b, i);
		json_t *o = dev_json(d);

		json_object_set_new(o, "parts", json_integer((json_int_t)ring_builder_dev_parts(b, d->id)));
		json_object_set_new(o, "wanted", json_real(ring_builder_dev_wanted(b, d->id)));
		json_array_append_new(devs, o);
	}
	if (opt_json) {
		json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:o, s:i, s:f, s:I, s:o, s:o}",
			"file", path, "kind", "builder",
			"part_power", ring_builder_part_power(b),
			"parts", 1u << ring_builder_part_power(b),
			"policy", policy_json(ring_builder_policy(b)),
			"min_part_hours", ring_builder_min_part_hours(b),
			"overload", ring_builder_overload(b),
			"version", (json_int_t)ring_builder_version(b),
			"stats", stats_json(&st), "devices", devs);
		emit(o);
		return 0;
	}
	printf("%s: builder, %u partitions (part power %u), %s, min_part_hours %u, "
	       "overload %g, version %lu\n",
	       path, 1u << ring_builder_part_power(b), ring_builder_part_power(b),
	       policy_str(ring_builder_policy(b), pbuf, sizeof(pbuf)),
	       ring_builder_min_part_hours(b), ring_builder_overload(b),
	       (unsigned long)ring_builder_version(b));
	print_stats(&st);
	print_dev_head();
	printf(" %10s %8s\n", "wanted", "off");
	for (size_t i = 0; i < json_array_size(devs); i++) {
		json_t *o = json_array_get(devs, i);
		double want = json_real_value(json_object_get(o, "wanted"));
		json_int_t have = json_integer_value(json_object_get(o, "parts"));

		print_dev_row(o);
		printf(" %10.1f %7.2f%%\n", want, want > 0 ? 100.0 * ((double)have / want - 1) : 0.0);
	}
	json_decref(devs);
	return 0;
}

static int show_ring(const char *path, struct ring *r, bool quiet)
{
	char pbuf[32];
	uint64_t *held = calloc(65536, sizeof(*held));
	const struct ring_dev *devs[RING_MAX_PLACEMENTS];
	json_t *jd = json_array();

	for (uint32_t p = 0; held && p < ring_parts(r); p++) {
		unsigned n = ring_primaries(r, p, devs, ring_placements(r));

		for (unsigned j = 0; j < n; j++)
			held[devs[j]->id]++;
	}
	for (unsigned i = 0; i < ring_dev_count(r); i++) {
		json_t *o = dev_json(ring_dev_at(r, i));

		json_object_set_new(o, "parts", json_integer(held ? (json_int_t)held[ring_dev_at(r, i)->id] : 0));
		json_array_append_new(jd, o);
	}
	free(held);
	if (opt_json) {
		json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:o, s:I, s:o}", "file", path,
				      "kind", "ring", "part_power", ring_part_power(r),
				      "parts", ring_parts(r), "policy", policy_json(ring_policy(r)),
				      "version", (json_int_t)ring_version(r), "devices", jd);

		if (opt_assignment) {
			json_t *a = json_array();

			for (uint32_t p = 0; p < ring_parts(r); p++) {
				json_t *pj = json_array();
				unsigned n = ring_primaries(r, p, devs, ring_placements(r));

				for (unsigned j = 0; j < n; j++)
					json_array_append_new(pj, json_integer(devs[j]->id));
				json_array_append_new(a, pj);
			}
			json_object_set_new(o, "assignment", a);
		}
		emit(o);
		return 0;
	}
	printf("%s: ring, %u partitions (part power %u), %s, %u devices, version %lu\n", path,
	       ring_parts(r), ring_part_power(r), policy_str(ring_policy(r), pbuf, sizeof(pbuf)),
	       ring_dev_count(r), (unsigned long)ring_version(r));
	if (!quiet) {
		print_dev_head();
		printf("\n");
		for (size_t i = 0; i < json_array_size(jd); i++) {
			print_dev_row(json_array_get(jd, i));
			printf("\n");
		}
	}
	json_decref(jd);
	return 0;
}

static int cmd_show(int argc, char **argv, bool validate)
{
	struct ring_builder *b;
	struct ring *r;
	const char *path = NULL;
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			opt_json = true;
		else if (!strcmp(argv[i], "--assignment") && !validate)
			opt_assignment = true;
		else if (!path)
			path = argv[i];
		else
			path = NULL, argc = 0;
	}
	if (!path || argc == 0) {
		usage(stderr);
		return 2;
	}
	ret = ring_load(path, &r);
	if (ret == 0) {
		ret = show_ring(path, r, validate);
		ring_free(r);
		if (validate && !opt_json)
			printf("%s: valid\n", path);
		return ret;
	}
	if (ret == RING_EKIND && !validate) {
		ret = ring_builder_load(path, &b);
		if (ret == 0) {
			ret = show_builder(path, b);
			ring_builder_free(b);
			return ret;
		}
	}
	return fail(validate ? "invalid ring" : "load", path, ret);
}

static int cmd_lookup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "handoffs", required_argument, NULL, 'h' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	const struct ring_dev *devs[RING_MAX_PLACEMENTS], **hand = NULL;
	uint64_t nh = 0;
	struct ring *r;
	uint32_t part;
	unsigned n, got = 0;
	int c, ret;

	while ((c = next_opt(argc, argv, opts)) != -1) {
		switch (c) {
		case 'h':
			if (!parse_u64(optarg, 65535, &nh))
				goto bad;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc - 2 || argv[optind + 1][0] != '/' ||
	    strlen(argv[optind + 1]) > RING_PATH_MAX)
		goto bad;
	ret = ring_load(argv[optind], &r);
	if (ret < 0)
		return fail("load", argv[optind], ret);
	part = ring_part_of_path(r, argv[optind + 1], strlen(argv[optind + 1]));
	n = ring_primaries(r, part, devs, ring_placements(r));
	if (nh) {
		hand = calloc(nh, sizeof(*hand));
		got = hand ? ring_handoffs(r, part, hand, (unsigned)nh) : 0;
	}
	if (opt_json) {
		json_t *pj = json_array(), *hj = json_array();

		for (unsigned j = 0; j < n; j++)
			json_array_append_new(pj, dev_json(devs[j]));
		for (unsigned j = 0; j < got; j++)
			json_array_append_new(hj, dev_json(hand[j]));
		emit(json_pack("{s:s, s:i, s:o, s:o}", "path", argv[optind + 1], "partition",
			       part, "primaries", pj, "handoffs", hj));
	} else {
		bool ec = ring_policy(r)->type == RING_POLICY_EC;

		printf("%s -> partition %u\n", argv[optind + 1], part);
		for (unsigned j = 0; j < n; j++)
			printf("  %s %2u: device %u  region %u zone %u  %s/%s\n",
			       ec ? "fragment" : "replica ", j, devs[j]->id, devs[j]->region,
			       devs[j]->zone, devs[j]->node, devs[j]->name);
		for (unsigned j = 0; j < got; j++)
			printf("  handoff  %2u: device %u  region %u zone %u  %s/%s\n", j,
			       hand[j]->id, hand[j]->region, hand[j]->zone, hand[j]->node,
			       hand[j]->name);
	}
	free(hand);
	ring_free(r);
	return 0;
bad:
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";

	if (argc < 2 || !strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	argc--;
	argv++;
	if (!strcmp(cmd, "create"))
		return cmd_create(argc, argv);
	if (!strcmp(cmd, "add"))
		return cmd_add(argc, argv);
	if (!strcmp(cmd, "remove") || !strcmp(cmd, "set-weight") ||
	    !strcmp(cmd, "set-min-part-hours") || !strcmp(cmd, "set-overload"))
		return cmd_edit(argc, argv);
	if (!strcmp(cmd, "rebalance"))
		return cmd_rebalance(argc, argv);
	if (!strcmp(cmd, "show"))
		return cmd_show(argc, argv, false);
	if (!strcmp(cmd, "validate"))
		return cmd_show(argc, argv, true);
	if (!strcmp(cmd, "lookup"))
		return cmd_lookup(argc, argv);
	fprintf(stderr, "strata-ring: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
