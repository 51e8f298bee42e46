/* tiering-test: the hot/cold mover of a real strata-storaged.
 *
 *   tiering-test DAEMON SCENARIO     (age|promote|watermark|crash|settier|
 *                                     settier_crash|admin)
 *
 * Each scenario starts the daemon on a free loopback port in a fresh temp
 * directory (hot/ and cold/ in it), drives it through the client library,
 * checks placement through STAT, HEAD/GET (the medium a fragment is served
 * from) and the volume files themselves, and kills it by PID at the end.
 * Exit 0 pass, 1 fail, 77 skip. Harness: node-harness.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "storage.h"
#include "node-harness.h"

/* ------------------------------------------------------------- helpers */

static int put_tier(sto_client *c, const struct sto_key *k, uint64_t ts,
		    const void *data, size_t len, enum sto_tier_class tier,
		    uint32_t cold_after)
{
	struct waiter w = { 0 };
	struct iovec iov = { (void *)data, len };
	struct sto_put_opts o = { .tier = tier, .cold_after = cold_after };
	int ret = sto_put_ex(c, k, ts, "m", 1, &iov, len ? 1 : 0,
			     sto_crc32c(0, data, len), &o, on_done, &w);

	if (ret < 0)
		return ret;
	wait_for(&w);
	return w.status;
}

/* Puts fragment n (seed n, len bytes) of partition 7 at ts 1000 + n. */
static struct sto_key put_n(sto_client *c, uint64_t n, size_t len,
			    enum sto_tier_class tier, uint32_t cold_after)
{
	struct sto_key k = key_of(7, n, 0);
	uint8_t *b = malloc(len + 1);

	fill(b, len, n);
	CHECK_EQ(put_tier(c, &k, 1000 + n, b, len, tier, cold_after), 0);
	free(b);
	return k;
}

static struct sto_info head_sync(sto_client *c, const struct sto_key *k)
{
	struct waiter w = { 0 };

	CHECK_EQ(sto_head(c, k, on_done, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	return w.info;
}

static enum sto_medium medium_of(sto_client *c, const struct sto_key *k)
{
	return head_sync(c, k).medium;
}

/* A fragment kept in use: read every 300 ms whenever the test waits. */
static const struct sto_key *keep_warm;
static uint64_t last_warm;

static void warm_tick(void)
{
	struct waiter w;

	if (!keep_warm || now_ms() < last_warm + 300)
		return;
	last_warm = now_ms();
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_get(cli, keep_warm, 0, 0, on_chunk, on_done, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	free(w.data);
}

/* Lets the loop run (the client's connection stays serviced). */
static void pause_ms(unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end) {
		warm_tick();
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(10000);
	}
}

/* Records of k (not tombstones) in the volume files of <tmpdir>/<sub>:
 * headers at 64-byte offsets, "STR1", the name hash at byte 16. */
static unsigned records_on_disk(const char *sub, const struct sto_key *k)
{
	char path[700];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, sub);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		uint8_t h[64];
		FILE *f;

		if (strncmp(de->d_name, "vol-", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", tmpdir, sub, de->d_name);
		f = fopen(path, "rb");
		if (!f)
			continue;
		while (fread(h, 1, sizeof(h), f) == sizeof(h)) {
			if (!memcmp(h, "1RTS", 4) && !memcmp(h + 16, k->name, 16) &&
			    !(h[6] & 1) && h[8] == (k->part & 0xff))
				n++;
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Waits (bounded) until STAT says at least down/up fragments moved. */
static struct sto_stat wait_moved(sto_client *c, uint64_t down, uint64_t up,
				  unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	for (;;) {
		struct sto_stat st = stat_sync(c);

		if (st.tier.moved_down_objects >= down && st.tier.moved_up_objects >= up)
			return st;
		if (now_ms() > end)
			FAIL("moved down %llu (want %llu), up %llu (want %llu) after %u ms",
			     (unsigned long long)st.tier.moved_down_objects,
			     (unsigned long long)down,
			     (unsigned long long)st.tier.moved_up_objects,
			     (unsigned long long)up, timeout_ms);
		pause_ms(200);
	}
}

/* Waits for a scan that started after now (its counts are then current). */
static struct sto_stat wait_fresh_scan(sto_client *c)
{
	uint64_t scans = stat_sync(c).tier.scans, end = now_ms() + 20000;

	for (;;) {
		struct sto_stat st = stat_sync(c);

		if (st.tier.scans >= scans + 2)
			return st;
		if (now_ms() > end)
			FAIL("no tier scan within 20 s");
		pause_ms(100);
	}
}

/* ------------------------------------------------------------ scenarios */

/* Untouched fragments move cold after cold_after; a fragment read all along
 * stays hot; PIN_HOT stays; COLD and PIN_COLD land cold; a per-fragment
 * cold_after override keeps one hot longer. Checked through HEAD, STAT and
 * the records in the volume files. */
static void scenario_age(void)
{
	struct sto_key std[8], warm, pinh, cold, pinc, late;
	struct sto_stat st;

	start_daemon(NULL, "--cold-after 3 --atime-interval 1 --tier-scan-interval 1");
	cli = connect_node();
	for (unsigned i = 0; i < 8; i++)
		std[i] = put_n(cli, i, i * 40000 + (i == 7 ? 3 << 20 : 0), STO_TIER_STANDARD, 0);
	/* Read all along; unread, it would move after 8 s (an override, so a
	 * slow check between two reads on a loaded machine does not move it). */
	warm = put_n(cli, 10, 5000, STO_TIER_STANDARD, 8);
	pinh = put_n(cli, 11, 5000, STO_TIER_PIN_HOT, 0);
	cold = put_n(cli, 12, 70000, STO_TIER_COLD, 0);
	pinc = put_n(cli, 13, 70000, STO_TIER_PIN_COLD, 0);
	late = put_n(cli, 14, 5000, STO_TIER_STANDARD, 3600);
	/* Class placement is immediate. */
	CHECK_EQ(medium_of(cli, &cold), STO_MEDIUM_COLD);
	CHECK_EQ(medium_of(cli, &pinc), STO_MEDIUM_COLD);
	CHECK_EQ(head_sync(cli, &pinc).tier, STO_TIER_PIN_COLD);
	CHECK_EQ(head_sync(cli, &late).cold_after, 3600);
	CHECK_EQ(records_on_disk("cold", &cold), 1);
	CHECK_EQ(records_on_disk("hot", &cold), 0);
	/* (std[0] may already be cold on a loaded machine: 3 s is short.) */
	st = stat_sync(cli);
	CHECK_EQ(st.tier.writes[STO_MEDIUM_COLD], 2);
	CHECK_EQ(st.tier.writes[STO_MEDIUM_HOT], 11);
	/* Keep one fragment read (every 300 ms, whenever the test waits)
	 * while the rest age. */
	keep_warm = &warm;
	pause_ms(10000);
	st = wait_moved(cli, 8, 0, 20000);
	CHECK_EQ(st.tier.moved_up_objects, 0);
	for (unsigned i = 0; i < 8; i++) {
		warm_tick();
		CHECK_EQ(medium_of(cli, &std[i]), STO_MEDIUM_COLD);
		CHECK_EQ(records_on_disk("cold", &std[i]), 1);
		check_object(cli, &std[i], i, i * 40000 + (i == 7 ? 3 << 20 : 0), 1000 + i);
	}
	CHECK_EQ(medium_of(cli, &warm), STO_MEDIUM_HOT);
	CHECK_EQ(medium_of(cli, &pinh), STO_MEDIUM_HOT);
	CHECK_EQ(medium_of(cli, &late), STO_MEDIUM_HOT);
	CHECK_EQ(medium_of(cli, &cold), STO_MEDIUM_COLD);
	CHECK_EQ(records_on_disk("cold", &pinh), 0);
	CHECK_EQ(records_on_disk("cold", &warm), 0);
	check_object(cli, &cold, 12, 70000, 1012);
	check_object(cli, &pinc, 13, 70000, 1013);
	st = wait_fresh_scan(cli);
	CHECK_EQ(st.tier.moved_down_objects, 8);
	CHECK_EQ(st.tier.objects[STO_MEDIUM_HOT], 3);
	CHECK_EQ(st.tier.objects[STO_MEDIUM_COLD], 10);
	CHECK(st.tier.reads[STO_MEDIUM_HOT] >= 20);
	CHECK(st.tier.hist[STO_MEDIUM_COLD][0] + st.tier.hist[STO_MEDIUM_COLD][1] == 10);
	/* Every moved record is dead on hot (compaction reclaims it). */
	CHECK_EQ(st.media[0].used_bytes - st.tier.dead_bytes[0], st.tier.bytes[0]);
	CHECK_EQ(st.media[1].used_bytes - st.tier.dead_bytes[1], st.tier.bytes[1]);
	/* Survives a restart, placement and policy included. */
	keep_warm = NULL;
	sto_client_close(cli);
	cli = NULL;
	CHECK_EQ(stop_daemon(SIGTERM), 0);
	start_daemon(NULL, "--cold-after 3 --atime-interval 1 --tier-scan-interval 1");
	cli = connect_node();
	CHECK_EQ(medium_of(cli, &std[3]), STO_MEDIUM_COLD);
	CHECK_EQ(medium_of(cli, &pinh), STO_MEDIUM_HOT);
	CHECK_EQ(head_sync(cli, &pinh).tier, STO_TIER_PIN_HOT);
	CHECK_EQ(head_sync(cli, &late).cold_after, 3600);
	check_object(cli, &std[7], 7, 7 * 40000 + (3 << 20), 1007);
}

/* A cold fragment read promote_reads times within the window comes back
 * hot; one read less does not; PIN_COLD never does. */
static void scenario_promote(void)
{
	struct sto_key a, b, pc;
	struct sto_stat st;
	struct waiter w;

	start_daemon(NULL, "--cold-after 2 --atime-interval 1 --tier-scan-interval 1 "
		     "--promote-reads 3 --promote-window 60");
	cli = connect_node();
	a = put_n(cli, 1, 100000, STO_TIER_STANDARD, 0);
	b = put_n(cli, 2, 100000, STO_TIER_STANDARD, 0);
	pc = put_n(cli, 3, 1000, STO_TIER_PIN_COLD, 0);
	wait_moved(cli, 2, 0, 20000);
	CHECK_EQ(medium_of(cli, &a), STO_MEDIUM_COLD);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(get_sync(cli, &a, 0, 0, &w), 0);
		CHECK_EQ(w.info.medium, STO_MEDIUM_COLD);
		free(w.data);
	}
	for (int i = 0; i < 2; i++) {
		CHECK_EQ(get_sync(cli, &b, 0, 0, &w), 0);
		free(w.data);
	}
	for (int i = 0; i < 10; i++) {
		CHECK_EQ(get_sync(cli, &pc, 0, 0, &w), 0);
		free(w.data);
	}
	st = wait_moved(cli, 2, 1, 10000);
	CHECK_EQ(st.tier.moved_up_objects, 1);
	/* Heat: b read twice in its window; a's count went with its
	 * promotion; PIN_COLD is not tracked. */
	CHECK_EQ(st.tier.heat[1], 1);
	CHECK_EQ(st.tier.heat[0] + st.tier.heat[2] + st.tier.heat[3] + st.tier.heat[4] +
		 st.tier.heat[5], 0);
	CHECK_EQ(medium_of(cli, &a), STO_MEDIUM_HOT);
	CHECK_EQ(medium_of(cli, &b), STO_MEDIUM_COLD);
	CHECK_EQ(medium_of(cli, &pc), STO_MEDIUM_COLD);
	check_object(cli, &a, 1, 100000, 1001);
	CHECK(st.tier.reads[STO_MEDIUM_COLD] >= 15);
	/* Unread again, it goes back down. */
	st = wait_moved(cli, 3, 1, 20000);
	CHECK_EQ(medium_of(cli, &a), STO_MEDIUM_COLD);
	check_object(cli, &a, 1, 100000, 1001);
}

/* Hot over the high watermark: the longest-unread move first, until under
 * the low one. Six 300,000-byte fragments written a second apart (mover
 * off), the oldest then read; with 2 MB of hot capacity, 50 % high and 40 %
 * low, the four longest unread move (1, 2, 3, 4) and 0 and 5 stay. */
static void scenario_watermark(void)
{
	struct sto_key k[6];
	struct sto_stat st;
	struct waiter w;

	start_daemon(NULL, "--tier-off --atime-interval 1");
	cli = connect_node();
	for (unsigned i = 0; i < 6; i++) {
		k[i] = put_n(cli, i, 300000, STO_TIER_STANDARD, 0);
		pause_ms(1100);
	}
	CHECK_EQ(get_sync(cli, &k[0], 0, 0, &w), 0);
	free(w.data);
	pause_ms(2500);		/* the atime update is committed */
	sto_client_close(cli);
	cli = NULL;
	CHECK_EQ(stop_daemon(SIGTERM), 0);
	start_daemon(NULL, "--cold-after 0 --atime-interval 1 --tier-scan-interval 1 "
		     "--tier-hot-capacity 2000000 --tier-high-pct 50 --tier-low-pct 40");
	cli = connect_node();
	st = wait_moved(cli, 4, 0, 20000);
	st = wait_fresh_scan(cli);
	CHECK_EQ(st.tier.moved_down_objects, 4);
	CHECK_EQ(medium_of(cli, &k[0]), STO_MEDIUM_HOT);
	CHECK_EQ(medium_of(cli, &k[5]), STO_MEDIUM_HOT);
	for (unsigned i = 1; i <= 4; i++)
		CHECK_EQ(medium_of(cli, &k[i]), STO_MEDIUM_COLD);
	CHECK(st.tier.bytes[STO_MEDIUM_HOT] <= 800000);
	for (unsigned i = 0; i < 6; i++)
		check_object(cli, &k[i], i, 300000, 1000 + i);
}

/* kill -9 at random moments while fragments move both ways (age demotes,
 * reads promote), restart, repeat; then every fragment reads back whole and
 * exactly once in the index, and per medium the volume bytes in use minus
 * the dead bytes are exactly the live records (nothing leaked). */
static void scenario_crash(void)
{
	enum { N = 40, ROUNDS = 8 };
	static const size_t lens[] = { 0, 1, 4000, 65536, 65537, 300000, 1100000 };
	const char *opts = "--cold-after 1 --atime-interval 1 --tier-scan-interval 1 "
			   "--promote-reads 2 --promote-window 60 --compact-interval 0";
	struct sto_key k[N];
	struct sto_stat st;
	unsigned seed = 12345;
	uint64_t down = 0, up = 0;

	start_daemon(NULL, opts);
	cli = connect_node();
	for (unsigned i = 0; i < N; i++)
		k[i] = put_n(cli, i, lens[i % 7], STO_TIER_STANDARD, 0);
	for (unsigned r = 0; r < ROUNDS; r++) {
		uint64_t until = now_ms() + 1500 + rand_r(&seed) % 2000;

		/* Reads promote some of what went cold meanwhile. */
		while (now_ms() < until) {
			unsigned i = rand_r(&seed) % N;
			struct waiter w;

			CHECK_EQ(get_sync(cli, &k[i], 0, 0, &w), 0);
			CHECK_EQ(w.len, lens[i % 7]);
			free(w.data);
			pause_ms(20);
		}
		st = stat_sync(cli);
		down += st.tier.moved_down_objects;
		up += st.tier.moved_up_objects;
		kill9();
		start_daemon(NULL, opts);
		cli = connect_node();
		for (unsigned i = 0; i < N; i++)
			check_object(cli, &k[i], i, lens[i % 7], 1000 + i);
	}
	/* Quiet: everything ends up cold. */
	for (uint64_t end = now_ms() + 30000;;) {
		st = stat_sync(cli);
		if (st.tier.objects[STO_MEDIUM_HOT] == 0 && st.tier.scans > 2 &&
		    st.tier.pending_moves == 0)
			break;
		if (now_ms() > end)
			FAIL("%llu fragments still hot",
			     (unsigned long long)st.tier.objects[STO_MEDIUM_HOT]);
		pause_ms(200);
	}
	/* Both directions were under way across the kills. */
	CHECK(down >= N && up > 0);
	st = wait_fresh_scan(cli);
	fprintf(stderr, "after %d kills (%llu moved down, %llu up before them): moved down "
		"%llu up %llu; hot used %llu dead %llu "
		"live %llu; cold used %llu dead %llu live %llu\n", ROUNDS,
		(unsigned long long)down, (unsigned long long)up, (unsigned long long)st.tier.moved_down_objects,
		(unsigned long long)st.tier.moved_up_objects,
		(unsigned long long)st.media[0].used_bytes,
		(unsigned long long)st.tier.dead_bytes[0], (unsigned long long)st.tier.bytes[0],
		(unsigned long long)st.media[1].used_bytes,
		(unsigned long long)st.tier.dead_bytes[1], (unsigned long long)st.tier.bytes[1]);
	CHECK_EQ(st.objects, N);
	CHECK_EQ(st.tier.objects[STO_MEDIUM_COLD], N);
	for (unsigned i = 0; i < N; i++) {
		CHECK_EQ(medium_of(cli, &k[i]), STO_MEDIUM_COLD);
		check_object(cli, &k[i], i, lens[i % 7], 1000 + i);
	}
	CHECK_EQ(st.media[0].used_bytes - st.tier.dead_bytes[0], st.tier.bytes[0]);
	CHECK_EQ(st.media[1].used_bytes - st.tier.dead_bytes[1], st.tier.bytes[1]);
}

/* SET_TIER (synchronous): the node's status; *info when not NULL. */
static int set_tier_sync(sto_client *c, const struct sto_key *k, uint64_t ts,
			 enum sto_tier_class tier, uint32_t cold_after,
			 struct sto_info *info)
{
	struct sto_put_opts o = { .tier = tier, .cold_after = cold_after };
	struct waiter w = { 0 };
	int ret = sto_set_tier(c, k, ts, &o, on_done, &w);

	if (ret < 0)
		return ret;
	wait_for(&w);
	if (info)
		*info = w.info;
	return w.status;
}

/* Stored fragments get a new policy and the mover acts on it: COLD goes
 * down at the next scan (no promotion configured), a short cold_after after
 * that long, PIN_HOT brings a cold one back, PIN_COLD takes a hot one
 * down; an untouched one stays. Another version, nothing or a tombstone is
 * refused. Survives a restart. */
static void scenario_settier(void)
{
	const char *opts = "--cold-after 3600 --atime-interval 1 --tier-scan-interval 1";
	struct sto_key a, b, c, d, e, none = key_of(7, 99, 0);
	struct sto_info info;
	struct waiter w;

	start_daemon(NULL, opts);
	cli = connect_node();
	a = put_n(cli, 1, 200000, STO_TIER_STANDARD, 0);
	b = put_n(cli, 2, 5000, STO_TIER_STANDARD, 0);
	c = put_n(cli, 3, 5000, STO_TIER_STANDARD, 0);
	d = put_n(cli, 4, 70000, STO_TIER_PIN_COLD, 0);
	e = put_n(cli, 5, 1000, STO_TIER_STANDARD, 0);
	CHECK_EQ(medium_of(cli, &d), STO_MEDIUM_COLD);
	CHECK_EQ(set_tier_sync(cli, &a, 1001, STO_TIER_COLD, 0, &info), 0);
	CHECK_EQ(info.tier, STO_TIER_COLD);
	CHECK_EQ(info.medium, STO_MEDIUM_HOT);		/* the mover has not run yet */
	CHECK_EQ(info.timestamp, 1001);
	CHECK_EQ(set_tier_sync(cli, &b, 1002, STO_TIER_STANDARD, 2, NULL), 0);
	CHECK_EQ(set_tier_sync(cli, &d, 1004, STO_TIER_PIN_HOT, 0, NULL), 0);
	CHECK_EQ(set_tier_sync(cli, &e, 1005, STO_TIER_PIN_COLD, 7, NULL), 0);
	CHECK_EQ(set_tier_sync(cli, &c, 999, STO_TIER_COLD, 0, NULL), STO_ECONFLICT);
	CHECK_EQ(set_tier_sync(cli, &none, 1, STO_TIER_COLD, 0, NULL), -ENOENT);
	CHECK_EQ(head_sync(cli, &b).cold_after, 2);
	CHECK_EQ(head_sync(cli, &c).tier, STO_TIER_STANDARD);	/* refused: unchanged */
	wait_moved(cli, 3, 1, 20000);
	CHECK_EQ(medium_of(cli, &a), STO_MEDIUM_COLD);
	CHECK_EQ(medium_of(cli, &b), STO_MEDIUM_COLD);
	CHECK_EQ(medium_of(cli, &d), STO_MEDIUM_HOT);
	CHECK_EQ(medium_of(cli, &e), STO_MEDIUM_COLD);
	CHECK_EQ(medium_of(cli, &c), STO_MEDIUM_HOT);
	CHECK_EQ(records_on_disk("cold", &a), 1);
	CHECK_EQ(records_on_disk("hot", &c), 1);
	CHECK_EQ(records_on_disk("cold", &c), 0);
	/* Moves keep the policy set. */
	info = head_sync(cli, &e);
	CHECK_EQ(info.tier, STO_TIER_PIN_COLD);
	CHECK_EQ(info.cold_after, 7);
	CHECK_EQ(head_sync(cli, &d).tier, STO_TIER_PIN_HOT);
	check_object(cli, &a, 1, 200000, 1001);
	check_object(cli, &d, 4, 70000, 1004);
	/* A tombstone: nothing live to set. */
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_delete(cli, &c, 2000, on_done, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	CHECK_EQ(set_tier_sync(cli, &c, 1003, STO_TIER_COLD, 0, NULL), -ENOENT);
	CHECK_EQ(set_tier_sync(cli, &c, 2000, STO_TIER_COLD, 0, NULL), -ENOENT);
	sto_client_close(cli);
	cli = NULL;
	CHECK_EQ(stop_daemon(SIGTERM), 0);
	start_daemon(NULL, opts);
	cli = connect_node();
	info = head_sync(cli, &b);
	CHECK_EQ(info.cold_after, 2);
	CHECK_EQ(info.medium, STO_MEDIUM_COLD);
	CHECK_EQ(head_sync(cli, &a).tier, STO_TIER_COLD);
	CHECK_EQ(head_sync(cli, &d).tier, STO_TIER_PIN_HOT);
	CHECK_EQ(medium_of(cli, &d), STO_MEDIUM_HOT);
}

/* kill -9 while a stream of SET_TIERs is in flight (and PUTs of other
 * fragments ride the same group commits): after the restart every
 * acknowledged change holds, a change in flight holds or not (whole), and
 * nothing else changed: untouched fragments keep their policy, every
 * fragment reads back whole at its version. */
enum { ST_N = 300, ST_ROUNDS = 6, ST_INFLIGHT = 32 };

struct st_frag {
	struct sto_key k;
	uint8_t tier;			/* acknowledged (or initial) policy */
	uint32_t cold_after;
	uint8_t new_tier;		/* sent this round, not yet answered */
	uint32_t new_cold_after;
	bool sent, acked;
};

static struct st_frag st_f[ST_N];
static unsigned st_inflight, st_acked;

static void on_set_tier(void *arg, int status, const struct sto_info *info)
{
	struct st_frag *f = arg;

	st_inflight--;
	if (status == STO_ECLOSED)
		return;			/* the kill: unknown outcome */
	if (status != 0)
		FAIL("SET_TIER: %s", sto_strerror(status));
	CHECK_EQ(info->tier, f->new_tier);
	CHECK_EQ(info->cold_after, f->new_cold_after);
	f->acked = true;
	st_acked++;
}

static size_t st_len(unsigned i)
{
	return i % 50 == 0 ? 300000 : 100 + i * 7;
}

static void scenario_settier_crash(void)
{
	const char *opts = "--tier-off --atime-interval 1 --compact-interval 0";
	unsigned seed = 777, extra = 0;
	static struct waiter st_put_w;	/* the other PUTs: answers unchecked */
	uint64_t total_acked = 0, total_lost = 0;

	start_daemon(NULL, opts);
	cli = connect_node();
	for (unsigned i = 0; i < ST_N; i++) {
		uint8_t *b = malloc(st_len(i) + 1);

		st_f[i].k = key_of(9, i, 0);
		fill(b, st_len(i), i);
		CHECK_EQ(put_tier(cli, &st_f[i].k, 5000 + i, b, st_len(i), STO_TIER_STANDARD,
				  0), 0);
		free(b);
	}
	for (unsigned r = 0; r < ST_ROUNDS; r++) {
		/* Killed once a random number of changes is acknowledged,
		 * with up to ST_INFLIGHT more in flight. Every fourth fragment
		 * is left alone this round. */
		unsigned kill_after = rand_r(&seed) % (ST_N / 2), next = 0, lost = 0;
		uint64_t deadline = now_ms() + 30000;

		st_acked = 0;
		for (unsigned i = 0; i < ST_N; i++) {
			st_f[i].sent = st_f[i].acked = false;
			st_f[i].new_tier = (uint8_t)((i + r + 1) % 4);
			st_f[i].new_cold_after = 1000 * (r + 1) + i;
		}
		while (st_acked < kill_after && next < ST_N) {
			while (st_inflight < ST_INFLIGHT && next < ST_N) {
				struct st_frag *f = &st_f[next++];
				struct sto_put_opts o = { .tier = f->new_tier,
							  .cold_after = f->new_cold_after };

				if ((next - 1) % 4 == r % 4)
					continue;
				CHECK_EQ(sto_set_tier(cli, &f->k, 5000 + (unsigned)(f - st_f), &o,
						      on_set_tier, f), 0);
				f->sent = true;
				st_inflight++;
				/* PUTs of other fragments share the commits. */
				if (rand_r(&seed) % 4 == 0) {
					struct sto_key k = key_of(10, extra, 0);
					struct iovec iov = { (void *)"x", 1 };

					CHECK_EQ(sto_put(cli, &k, 1 + extra++, "m", 1, &iov, 1,
							 sto_crc32c(0, "x", 1), on_done,
							 &st_put_w), 0);
				}
			}
			uv_run(&loop, UV_RUN_ONCE);
			if (now_ms() > deadline)
				FAIL("SET_TIER stream stalled");
		}
		kill9();
		uv_run(&loop, UV_RUN_NOWAIT);
		CHECK_EQ(st_inflight, 0);
		start_daemon(NULL, opts);
		cli = connect_node();
		for (unsigned i = 0; i < ST_N; i++) {
			struct st_frag *f = &st_f[i];
			struct sto_info in = head_sync(cli, &f->k);
			bool is_new = in.tier == f->new_tier && in.cold_after == f->new_cold_after;
			bool is_old = in.tier == f->tier && in.cold_after == f->cold_after;

			if (f->acked && !is_new)
				FAIL("round %u fragment %u: acknowledged %u/%u, found %u/%u", r, i,
				     f->new_tier, f->new_cold_after, in.tier, in.cold_after);
			if (!f->sent && !is_old)
				FAIL("round %u fragment %u: untouched, found %u/%u (was %u/%u)", r,
				     i, in.tier, in.cold_after, f->tier, f->cold_after);
			if (!is_new && !is_old)
				FAIL("round %u fragment %u: found %u/%u", r, i, in.tier,
				     in.cold_after);
			if (f->sent && !f->acked && !is_new)
				lost++;
			if (is_new) {
				f->tier = f->new_tier;
				f->cold_after = f->new_cold_after;
			}
			CHECK_EQ(in.timestamp, 5000 + i);
			CHECK_EQ(in.medium, STO_MEDIUM_HOT);
		}
		total_acked += st_acked;
		total_lost += lost;
		fprintf(stderr, "round %u: %u acknowledged before the kill, %u sent and lost\n",
			r, st_acked, lost);
	}
	for (unsigned i = 0; i < ST_N; i++)
		check_object(cli, &st_f[i].k, i, st_len(i), 5000 + i);
	/* The kills must have landed mid-stream at least once. */
	CHECK(total_acked > 0);
	fprintf(stderr, "%d kills: %llu SET_TIERs acknowledged, %llu in flight lost\n",
		ST_ROUNDS, (unsigned long long)total_acked, (unsigned long long)total_lost);
}

static const char *admin_path;

/* Runs strata-admin with args; its exit status, stdout into out. */
static int admin(const char *args, char *out, size_t len)
{
	char cmd[1024];
	size_t n = 0;
	FILE *f;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' %s", admin_path, args);
	f = popen(cmd, "r");
	CHECK(f != NULL);
	while (n + 1 < len && !feof(f))
		n += fread(out + n, 1, len - 1 - n, f);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* strata-admin tiers against a live node: JSON and table agree with STAT;
 * a node that is not there and bad usage give their exit codes. */
static void scenario_admin(void)
{
	char args[256], out[16384];
	struct sto_key k;
	struct waiter w;

	start_daemon(NULL, "--cold-after 2 --atime-interval 1 --tier-scan-interval 1");
	cli = connect_node();
	put_n(cli, 1, 10000, STO_TIER_COLD, 0);
	k = put_n(cli, 2, 20000, STO_TIER_STANDARD, 0);
	put_n(cli, 3, 30000, STO_TIER_PIN_HOT, 0);
	CHECK_EQ(get_sync(cli, &k, 0, 0, &w), 0);
	free(w.data);
	wait_moved(cli, 1, 0, 20000);
	wait_fresh_scan(cli);
	snprintf(args, sizeof(args), "tiers --node 127.0.0.1:%u --json", daemon_port);
	CHECK_EQ(admin(args, out, sizeof(out)), 0);
	fprintf(stderr, "%s", out);
	CHECK(strstr(out, "\"moved_down_objects\":1,") != NULL);
	CHECK(strstr(out, "\"hot\":{") != NULL);
	CHECK(strstr(out, "\"writes\":2,") != NULL);	/* hot: 2, cold: 1 */
	CHECK(strstr(out, "\"writes\":1,") != NULL);
	snprintf(args, sizeof(args), "tiers --node 127.0.0.1:%u", daemon_port);
	CHECK_EQ(admin(args, out, sizeof(out)), 0);
	fprintf(stderr, "%s", out);
	CHECK(strstr(out, "moved hot->cold: 1 (") != NULL);
	CHECK(strstr(out, "  cold ") != NULL);
	CHECK_EQ(admin("tiers --node 127.0.0.1:1 --json 2>/dev/null", out, sizeof(out)), 1);
	CHECK_EQ(admin("tiers 2>/dev/null", out, sizeof(out)), 2);
	CHECK_EQ(admin("tiers --node nonsense 2>/dev/null", out, sizeof(out)), 1);
}

int main(int argc, char **argv)
{
	const char *sc;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: tiering-test DAEMON age|promote|watermark|crash|settier|settier_crash|admin [ADMIN]\n");
		return 2;
	}
	admin_path = argc == 4 ? argv[3] : NULL;
	sc = argv[2];
	if (harness_init(argv[1], "tiering-test") < 0)
		return 1;
	if (!strcmp(sc, "age"))
		scenario_age();
	else if (!strcmp(sc, "promote"))
		scenario_promote();
	else if (!strcmp(sc, "watermark"))
		scenario_watermark();
	else if (!strcmp(sc, "crash"))
		scenario_crash();
	else if (!strcmp(sc, "settier"))
		scenario_settier();
	else if (!strcmp(sc, "settier_crash"))
		scenario_settier_crash();
	else if (!strcmp(sc, "admin") && admin_path)
		scenario_admin();
	else {
		fprintf(stderr, "unknown scenario %s\n", sc);
		cleanup();
		return 2;
	}
	harness_done();
	return 0;
}
