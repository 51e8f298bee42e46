/* storaged-test: integration tests against a real strata-storaged.
 *
 *   storaged-test DAEMON SCENARIO
 *
 * Each scenario starts the daemon (path from CMake) on a free loopback port
 * in a fresh temp directory, talks to it through the client library (and raw
 * sockets for malformed frames), and kills it by PID at the end. Exit 0 pass,
 * 1 fail, 77 skip.
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "storage.h"
#include "node-harness.h"

static void on_suffixes(void *arg, int status, const struct sto_suffix_hash *v, size_t n)
{
	struct waiter *w = arg;

	w->status = status;
	w->n = n;
	w->sfx = n ? malloc(n * sizeof(*v)) : NULL;
	if (n)
		memcpy(w->sfx, v, n * sizeof(*v));
	w->done = true;
}

static void on_entries(void *arg, int status, const struct sto_list_entry *v, size_t n)
{
	struct waiter *w = arg;

	w->status = status;
	w->n = n;
	w->ents = n ? malloc(n * sizeof(*v)) : NULL;
	if (n)
		memcpy(w->ents, v, n * sizeof(*v));
	w->done = true;
}

/* ------------------------------------------------------------ scenarios */

static const size_t sizes[] = { 0, 1, 4096, 65536, 65537, 200000, 3 * 1048576 + 17 };

static void put_set(sto_client *c, uint32_t part, uint64_t ts)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct sto_key k = key_of(part, i, (uint32_t)i);
		uint8_t *b = malloc(sizes[i] + 1);

		fill(b, sizes[i], i + ts);
		CHECK_EQ(put_sync(c, &k, ts, b, sizes[i], "etag=x;ct=app/bin"), 0);
		free(b);
	}
}

static void check_set(sto_client *c, uint32_t part, uint64_t ts)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct sto_key k = key_of(part, i, (uint32_t)i);

		check_object(c, &k, i + ts, sizes[i], ts);
	}
}

static void test_ranges(sto_client *c)
{
	size_t len = 3 * 1048576 + 17;
	struct sto_key k = key_of(1, 6, 6);
	uint8_t *want = malloc(len);
	static const uint64_t r[][2] = {
		{ 0, 1 }, { 1, 100 }, { 65535, 2 }, { 65536, 65536 }, { 100000, 1048576 },
		{ 1048575, 1048578 }, { 3 * 1048576, 17 }, { 3 * 1048576 + 16, 0 },
		{ 5, 0 },
	};
	struct waiter w;

	fill(want, len, 6 + 1000);
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		uint64_t n = r[i][1] ? r[i][1] : len - r[i][0];

		CHECK_EQ(get_sync(c, &k, r[i][0], r[i][1], &w), 0);
		CHECK_EQ(w.len, n);
		CHECK_EQ(w.info.offset, r[i][0]);
		CHECK(memcmp(w.data, want + r[i][0], n) == 0);
		free(w.data);
	}
	/* A small fragment, ranged. */
	k = key_of(1, 5, 5);
	fill(want, 200000, 5 + 1000);
	CHECK_EQ(get_sync(c, &k, 70000, 1000, &w), 0);
	CHECK_EQ(w.len, 1000);
	CHECK(memcmp(w.data, want + 70000, 1000) == 0);
	free(w.data);
	/* Past the end. */
	CHECK_EQ(get_sync(c, &k, 200000, 1, &w), -EINVAL);
	free(want);
}

struct pipe_put {
	struct sto_key k;
	uint8_t buf[4096];
	struct iovec iov;
	int status;
	bool done;
};

static void on_pipe_done(void *arg, int status, const struct sto_info *info)
{
	struct pipe_put *p = arg;

	p->status = status;
	p->done = true;
}

static void test_pipelined(sto_client *c)
{
	enum { N = 300 };
	struct pipe_put *p = calloc(N, sizeof(*p));
	uint64_t deadline = now_ms() + 180000;	/* a loaded CI disk */
	unsigned left = N;

	for (unsigned i = 0; i < N; i++) {
		p[i].k = key_of(7, 1000 + i, 0);
		fill(p[i].buf, sizeof(p[i].buf), 1000 + i);
		p[i].iov = (struct iovec){ p[i].buf, sizeof(p[i].buf) };
		CHECK_EQ(sto_put(c, &p[i].k, 50, NULL, 0, &p[i].iov, 1,
				 sto_crc32c(0, p[i].buf, sizeof(p[i].buf)),
				 on_pipe_done, &p[i]), 0);
	}
	while (left) {
		uv_run(&loop, UV_RUN_ONCE);
		left = 0;
		for (unsigned i = 0; i < N; i++)
			left += !p[i].done;
		if (now_ms() > deadline)
			FAIL("pipelined PUTs timed out");
	}
	for (unsigned i = 0; i < N; i++)
		CHECK_EQ(p[i].status, 0);
	for (unsigned i = 0; i < N; i += 37)
		check_object(c, &p[i].k, 1000 + i, 4096, 50);
	free(p);
}

static void test_versions(sto_client *c)
{
	struct sto_key k = key_of(2, 1, 0);
	uint8_t a[5000], b[7000];
	struct waiter w;

	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	CHECK_EQ(put_sync(c, &k, 100, a, sizeof(a), "v1"), 0);
	CHECK_EQ(put_sync(c, &k, 200, b, sizeof(b), "v2"), 0);	/* newer wins */
	CHECK_EQ(put_sync(c, &k, 150, a, sizeof(a), "v1"), STO_ECONFLICT);
	CHECK_EQ(put_sync(c, &k, 200, a, sizeof(a), "v1"), STO_ECONFLICT);
	check_object(c, &k, 2, sizeof(b), 200);
	/* HEAD carries the metadata. */
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_head(c, &k, on_done, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	CHECK_EQ(w.info.meta_len, 2);
	CHECK(memcmp(w.meta, "v2", 2) == 0);
	CHECK_EQ(w.info.size, sizeof(b));
	/* A bad CRC stores nothing. */
	{
		struct iovec iov = { a, sizeof(a) };
		struct sto_key k2 = key_of(2, 2, 0);

		memset(&w, 0, sizeof(w));
		CHECK_EQ(sto_put(c, &k2, 10, NULL, 0, &iov, 1, 12345, on_done, &w), 0);
		wait_for(&w);
		CHECK_EQ(w.status, STO_ECRC);
		CHECK_EQ(get_sync(c, &k2, 0, 0, &w), -ENOENT);
		CHECK(!w.info.tombstone);
	}
	/* DELETE: tombstone; older PUT rejected, newer accepted. */
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_delete(c, &k, 150, on_done, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, STO_ECONFLICT);	/* older than the object */
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_delete(c, &k, 300, on_done, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	CHECK_EQ(get_sync(c, &k, 0, 0, &w), -ENOENT);
	CHECK(w.info.tombstone);
	CHECK_EQ(w.info.timestamp, 300);
	CHECK_EQ(put_sync(c, &k, 250, a, sizeof(a), NULL), STO_ECONFLICT);
	CHECK_EQ(put_sync(c, &k, 400, a, sizeof(a), NULL), 0);
	check_object(c, &k, 1, sizeof(a), 400);
	/* DELETE of nothing still writes a tombstone. */
	{
		struct sto_key k3 = key_of(2, 3, 0);

		memset(&w, 0, sizeof(w));
		CHECK_EQ(sto_delete(c, &k3, 500, on_done, &w), 0);
		wait_for(&w);
		CHECK_EQ(w.status, -ENOENT);
		CHECK_EQ(put_sync(c, &k3, 499, a, 10, NULL), STO_ECONFLICT);
	}
}

static void test_list(sto_client *c)
{
	struct waiter w = { 0 };
	uint64_t total = 0;
	size_t nsfx;
	struct sto_suffix_hash first;

	CHECK_EQ(sto_list_suffixes(c, 1, on_suffixes, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	CHECK(w.n > 0);
	for (size_t i = 0; i < w.n; i++)
		total += w.sfx[i].count;
	CHECK_EQ(total, sizeof(sizes) / sizeof(sizes[0]));
	nsfx = w.n;
	first = w.sfx[0];
	free(w.sfx);
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_list_objects(c, 1, first.suffix, on_entries, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	CHECK_EQ(w.n, first.count);
	for (size_t i = 0; i < w.n; i++)
		CHECK_EQ(sto_suffix_of(w.ents[i].name), first.suffix);
	free(w.ents);
	/* The hash changes when an entry does. */
	{
		struct sto_key k = key_of(1, 0, 0);
		struct waiter d = { 0 };

		CHECK_EQ(sto_delete(c, &k, 2000, on_done, &d), 0);
		wait_for(&d);
		memset(&w, 0, sizeof(w));
		CHECK_EQ(sto_list_suffixes(c, 1, on_suffixes, &w), 0);
		wait_for(&w);
		CHECK_EQ(w.n, nsfx);
		bool changed = false;
		for (size_t i = 0; i < w.n; i++)
			if (w.sfx[i].suffix == sto_suffix_of(k.name))
				changed = true;
		CHECK(changed);
		free(w.sfx);
	}
	/* An empty partition. */
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_list_suffixes(c, 99, on_suffixes, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	CHECK_EQ(w.n, 0);
}

static void scenario_basic(void)
{
	struct sto_stat st;

	start_daemon(NULL, NULL);
	cli = connect_node();
	put_set(cli, 1, 1000);
	check_set(cli, 1, 1000);
	test_ranges(cli);
	test_versions(cli);
	test_pipelined(cli);
	test_list(cli);
	st = stat_sync(cli);
	CHECK(st.puts >= 300 + 7);
	CHECK(st.objects >= 300 + 7);
	CHECK(st.media[STO_MEDIUM_HOT].used_bytes > 3 * 1048576);
	CHECK(st.media[STO_MEDIUM_HOT].capacity_bytes > 0);
	CHECK_EQ(st.media[STO_MEDIUM_HOT].dirs, 1);
	CHECK(st.group_commits > 0 && st.fsyncs > 0);
	CHECK(st.group_commits < st.puts);	/* batching happened */
	sto_client_close(cli);
	cli = NULL;
	CHECK_EQ(stop_daemon(SIGTERM), 0);
	printf("basic: ok (%" PRIu64 " puts in %" PRIu64 " commits, %" PRIu64 " fsyncs)\n",
	       st.puts, st.group_commits, st.fsyncs);
}

static void scenario_restart(void)
{
	struct waiter w;
	struct sto_key k = key_of(2, 9, 0);

	start_daemon(NULL, NULL);
	cli = connect_node();
	put_set(cli, 1, 1000);
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_delete(cli, &k, 77, on_done, &w), 0);
	wait_for(&w);
	restart_node(SIGTERM, NULL, NULL);
	check_set(cli, 1, 1000);
	CHECK_EQ(get_sync(cli, &k, 0, 0, &w), -ENOENT);
	CHECK(w.info.tombstone);
	/* New writes after a restart append after what is there. */
	put_set(cli, 3, 2000);
	check_set(cli, 1, 1000);
	check_set(cli, 3, 2000);
	restart_node(SIGINT, NULL, NULL);
	check_set(cli, 1, 1000);
	check_set(cli, 3, 2000);
	printf("restart: ok\n");
}

/* Crash: kill -9 during concurrent PUTs; every acknowledged fragment must
 * read back whole and CRC-valid, and nothing partial may be visible. */
struct crash_put {
	struct sto_key k;
	uint8_t *buf;
	size_t len;
	struct iovec iov;
	bool sent, done, acked;
};

static unsigned crash_next, crash_total, crash_acked;
static struct crash_put *crash_puts;
static sto_client *crash_cli[4];

static void crash_issue(unsigned ci);

static void on_crash_done(void *arg, int status, const struct sto_info *info)
{
	struct crash_put *p = arg;

	p->done = true;
	p->acked = status == 0;
	crash_acked += p->acked;
	free(p->buf);
	p->buf = NULL;
	if (status == 0)
		crash_issue((unsigned)(p - crash_puts) % 4);
}

static void crash_issue(unsigned ci)
{
	unsigned i;

	/* Connection ci takes every 4th put. */
	for (i = crash_next; i < crash_total; i++)
		if (i % 4 == ci && !crash_puts[i].sent)
			break;
	if (i >= crash_total)
		return;
	struct crash_put *p = &crash_puts[i];

	p->sent = true;
	p->len = (size_t)(i * 7919u % 300000u) + 1;
	p->buf = malloc(p->len);
	fill(p->buf, p->len, 50000 + i);
	p->iov = (struct iovec){ p->buf, p->len };
	if (sto_put(crash_cli[ci], &p->k, 9000 + i, "m", 1, &p->iov, 1,
		    sto_crc32c(0, p->buf, p->len), on_crash_done, p) < 0) {
		p->done = true;
		free(p->buf);
		p->buf = NULL;
	}
}

/* Kills the node under load from the 4 clients c[]: once *acked passed min
 * (a fixed delay got too few acknowledged on a loaded machine under ASan;
 * at most 60 s), at a random point base_ms + up to spread_ms after that;
 * then closes c[] and lets their failed requests finish. */
static void kill_when_acked(const unsigned *acked, unsigned min, unsigned base_ms,
			    unsigned spread_ms, sto_client *c[4])
{
	uint64_t kill_at = now_ms() + 60000;

	while (*acked <= min && now_ms() < kill_at)
		uv_run(&loop, UV_RUN_NOWAIT);
	kill_at = now_ms() + base_ms + (unsigned)getpid() % spread_ms;
	while (now_ms() < kill_at)
		uv_run(&loop, UV_RUN_NOWAIT);
	kill_daemon();
	for (unsigned i = 0; i < 4; i++)
		sto_client_close(c[i]);
	uv_run(&loop, UV_RUN_DEFAULT);
}

static void scenario_crash(void)
{
	enum { TOTAL = 100000 };
	unsigned acked = 0, sent = 0, partial_ok = 0;

	start_daemon(NULL, NULL);
	crash_total = TOTAL;
	crash_puts = calloc(TOTAL, sizeof(*crash_puts));
	for (unsigned i = 0; i < TOTAL; i++)
		crash_puts[i].k = key_of(4 + i % 3, 70000 + i, 0);
	for (unsigned c = 0; c < 4; c++) {
		crash_cli[c] = connect_node();
		for (unsigned j = 0; j < 16; j++)
			crash_issue(c);
	}
	kill_when_acked(&crash_acked, 50, 500, 1000, crash_cli);
	for (unsigned i = 0; i < TOTAL; i++) {
		acked += crash_puts[i].acked;
		sent += crash_puts[i].sent;
	}
	CHECK(acked > 50);

	start_daemon(NULL, NULL);
	cli = connect_node();
	for (unsigned i = 0; i < TOTAL; i++) {
		struct crash_put *p = &crash_puts[i];
		size_t len = (size_t)(i * 7919u % 300000u) + 1;
		struct waiter w;
		int ret;

		if (!p->sent)
			continue;
		ret = get_sync(cli, &p->k, 0, 0, &w);
		if (p->acked)
			CHECK_EQ(ret, 0);
		if (ret == 0) {
			uint8_t *want = malloc(len);

			/* Whatever is visible is whole and right. */
			fill(want, len, 50000 + i);
			CHECK_EQ(w.len, len);
			CHECK(memcmp(w.data, want, len) == 0);
			CHECK_EQ(sto_crc32c(0, w.data, w.len), w.info.crc32c);
			partial_ok += !p->acked;
			free(want);
		} else {
			CHECK_EQ(ret, -ENOENT);
		}
		free(w.data);
	}
	/* And it keeps taking writes. */
	put_set(cli, 1, 1000);
	check_set(cli, 1, 1000);
	printf("crash: ok (%u sent, %u acknowledged and intact, %u unacknowledged but "
	       "complete, none partial)\n", sent, acked, partial_ok);
	for (unsigned i = 0; i < TOTAL; i++)
		free(crash_puts[i].buf);
	free(crash_puts);
}

/* ------------------------------------------------------- replay, torn */

/* The volume record is the write-ahead log: PUT and DELETE are acknowledged
 * once their record is durable, before the index has them. These kill the
 * node right after acknowledgements, or throw the index away altogether,
 * and check that a restart replays everything acknowledged. */
static int del_sync(sto_client *c, const struct sto_key *k, uint64_t ts)
{
	struct waiter w = { 0 };

	CHECK_EQ(sto_delete(c, k, ts, on_done, &w), 0);
	wait_for(&w);
	return w.status;
}

static void drop_index(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s/hot/index'", tmpdir);
	CHECK_EQ(system(cmd), 0);
}

/* Set 1 at ts 1000 with its first three deleted at 1500; set 2 at 1000,
 * overwritten at 2000. */
static void replay_workload(sto_client *c)
{
	put_set(c, 1, 1000);
	put_set(c, 2, 1000);
	put_set(c, 2, 2000);
	for (size_t i = 0; i < 3; i++) {
		struct sto_key k = key_of(1, i, (uint32_t)i);

		CHECK_EQ(del_sync(c, &k, 1500), 0);
	}
}

static void replay_check(sto_client *c)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct sto_key k = key_of(1, i, (uint32_t)i);
		struct waiter w;

		if (i >= 3) {
			check_object(c, &k, i + 1000, sizes[i], 1000);
			continue;
		}
		CHECK_EQ(get_sync(c, &k, 0, 0, &w), -ENOENT);
		CHECK(w.info.tombstone);
		CHECK_EQ(w.info.timestamp, 1500);
		free(w.data);
	}
	check_set(c, 2, 2000);
}

static void scenario_replay(void)
{
	/* kill -9 right after the acknowledgements: the index lags. */
	start_daemon(NULL, NULL);
	cli = connect_node();
	replay_workload(cli);
	kill9();
	start_daemon(NULL, NULL);
	cli = connect_node();
	replay_check(cli);

	/* The index lost entirely: everything comes back from the volumes. */
	kill9();
	drop_index();
	start_daemon(NULL, NULL);
	cli = connect_node();
	replay_check(cli);
	/* New records go after the replayed ones (nothing overwritten). */
	put_set(cli, 3, 3000);
	check_set(cli, 3, 3000);
	kill9();
	drop_index();
	start_daemon(NULL, NULL);
	cli = connect_node();
	replay_check(cli);
	check_set(cli, 3, 3000);
	restart_node(SIGTERM, NULL, NULL);
	replay_check(cli);
	check_set(cli, 3, 3000);
	printf("replay: ok\n");
}

/* A torn tail: the last record of a volume cut in the middle of its data
 * (a crash mid-write; never acknowledged). With the index gone too, the
 * replay must keep every earlier record and not show the torn one. */
static void scenario_torn(void)
{
	struct sto_key k = key_of(9, 1, 0);
	size_t len = 1 << 20;
	uint8_t *b = malloc(len), *vol;
	char path[600];
	struct stat st;
	uint64_t at = 0;
	bool found = false;
	FILE *f;

	start_daemon(NULL, NULL);
	cli = connect_node();
	put_set(cli, 1, 1000);
	fill(b, len, 1);
	CHECK_EQ(put_sync(cli, &k, 10, b, len, "v1"), 0);
	fill(b, len, 2);
	CHECK_EQ(put_sync(cli, &k, 20, b, len, "v2"), 0);
	kill9();
	drop_index();

	/* Find v2's record: the last header naming k at ts 20. */
	snprintf(path, sizeof(path), "%s/hot/vol-00000001.dat", tmpdir);
	CHECK_EQ(stat(path, &st), 0);
	vol = malloc((size_t)st.st_size);
	f = fopen(path, "rb");
	CHECK(f && fread(vol, 1, (size_t)st.st_size, f) == (size_t)st.st_size);
	fclose(f);
	for (uint64_t off = 0; off + 64 <= (uint64_t)st.st_size; off += 64) {
		uint64_t ts;

		memcpy(&ts, vol + off + 32, 8);
		if (!memcmp(vol + off, "1RTS", 4) && !memcmp(vol + off + 16, k.name, 16) &&
		    ts == 20) {
			at = off;
			found = true;
		}
	}
	free(vol);
	CHECK(found);
	CHECK_EQ(truncate(path, (off_t)(at + 64 + 2 + len / 2)), 0);

	start_daemon(NULL, NULL);
	cli = connect_node();
	check_set(cli, 1, 1000);
	check_object(cli, &k, 1, len, 10);	/* v1: the torn v2 is invisible */
	/* And it goes on: writes after the torn record, a clean restart. */
	put_set(cli, 3, 3000);
	restart_node(SIGTERM, NULL, NULL);
	check_set(cli, 1, 1000);
	check_set(cli, 3, 3000);
	check_object(cli, &k, 1, len, 10);
	free(b);
	printf("torn: ok\n");
}

/* ------------------------------------------------------------ malformed */

static int raw_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(daemon_port) };
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(fd >= 0);
	CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Sends bytes and expects the node to answer and/or close, within 5 s. */
static void raw_expect_close(const void *b, size_t n, const char *what)
{
	int fd = raw_connect();
	uint8_t buf[4096];
	ssize_t r;
	uint64_t deadline = now_ms() + 10000;

	if (n)
		CHECK(send(fd, b, n, MSG_NOSIGNAL) == (ssize_t)n);
	for (;;) {
		r = recv(fd, buf, sizeof(buf), 0);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			break;
		if (r < 0)
			FAIL("%s: node neither answered nor closed (%s)", what, strerror(errno));
		if (now_ms() > deadline)
			FAIL("%s: node kept the connection open", what);
	}
	close(fd);
}

static size_t varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n] = (v & 0x7f) | (v > 0x7f ? 0x80 : 0);
		v >>= 7;
		n++;
	} while (v);
	return n;
}

static void scenario_malformed(void)
{
	uint8_t f[256];
	size_t n;

	start_daemon(NULL, NULL);
	cli = connect_node();
	put_set(cli, 1, 1000);

	raw_expect_close("GET / HTTP/1.1\r\n\r\n", 18, "HTTP request");
	raw_expect_close("\x53\x54\x52\x46\xff\xff\xff\xff", 8, "huge header length");
	raw_expect_close("\x53\x54\x52\x46\x00\x00\x00\x00", 8, "zero header length");
	raw_expect_close("\x53\x54\x52\x46\x00\x00\x00\x04\xff\xff\xff\xff", 12,
			 "garbage protobuf");
	/* version 9 */
	n = 0;
	f[8 + n++] = 0x08; f[8 + n++] = 9;
	f[8 + n++] = 0x18; f[8 + n++] = 6;	/* STAT */
	f[0] = 0x53; f[1] = 0x54; f[2] = 0x52; f[3] = 0x46;
	f[4] = 0; f[5] = 0; f[6] = 0; f[7] = (uint8_t)n;
	raw_expect_close(f, 8 + n, "bad version");
	/* PUT with an oversized payload_len and a short name hash */
	n = 0;
	f[8 + n++] = 0x08; f[8 + n++] = 1;
	f[8 + n++] = 0x18; f[8 + n++] = 1;	/* PUT */
	f[8 + n++] = 0x2a; f[8 + n++] = 3; f[8 + n++] = 1; f[8 + n++] = 2; f[8 + n++] = 3;
	f[8 + n++] = 0x38; f[8 + n++] = 1;	/* timestamp */
	f[8 + n++] = 0x40; n += varint(f + 8 + n, STO_MAX_FRAGMENT + 1);
	f[7] = (uint8_t)n;
	raw_expect_close(f, 8 + n, "bad PUT");
	/* A valid-looking PUT header, then the client vanishes mid-payload. */
	{
		int fd = raw_connect();

		n = 0;
		f[8 + n++] = 0x08; f[8 + n++] = 1;
		f[8 + n++] = 0x18; f[8 + n++] = 1;
		f[8 + n++] = 0x2a; f[8 + n++] = 16;
		memset(f + 8 + n, 0xab, 16); n += 16;
		f[8 + n++] = 0x38; f[8 + n++] = 5;
		f[8 + n++] = 0x40; n += varint(f + 8 + n, 10 << 20);
		f[7] = (uint8_t)n;
		CHECK(send(fd, f, 8 + n, MSG_NOSIGNAL) == (ssize_t)(8 + n));
		CHECK(send(fd, f, 100, MSG_NOSIGNAL) == 100);
		close(fd);
	}
	/* Random garbage. */
	for (int i = 0; i < 20; i++) {
		uint8_t g[512];

		fill(g, sizeof(g), i);
		if (i % 2) {
			memcpy(g, "\x53\x54\x52\x46\x00\x00\x01\x00", 8);
		}
		raw_expect_close(g, sizeof(g), "garbage");
	}
	/* Truncated frame then close (no answer expected). */
	{
		int fd = raw_connect();

		CHECK(send(fd, "\x53\x54\x52", 3, MSG_NOSIGNAL) == 3);
		close(fd);
	}
	/* Still serving, old and new data. */
	check_set(cli, 1, 1000);
	sto_client_close(cli);
	cli = connect_node();
	put_set(cli, 3, 3000);
	check_set(cli, 3, 3000);
	CHECK(kill(daemon_pid, 0) == 0);
	printf("malformed: ok\n");
}

/* ---------------------------------------------------------------- ENOSPC */

static void scenario_enospc(void)
{
	size_t len = 1 << 20;
	uint8_t *b = malloc(len);
	unsigned acked = 0, i;
	int ret = 0;
	struct sto_stat st;
	struct waiter w;
	char opts[64];

	snprintf(mountdir, sizeof(mountdir), "%s/small", tmpdir);
	CHECK_EQ(mkdir(mountdir, 0755), 0);
	if (mount("tmpfs", mountdir, "tmpfs", 0, "size=40m") < 0) {
		printf("SKIP: cannot mount a tmpfs (%s)\n", strerror(errno));
		cleanup();
		exit(77);
	}
	mounted = true;
	snprintf(opts, sizeof(opts), "--reserve-pct 0 --index-map-size 64M");
	start_daemon(mountdir, opts);
	cli = connect_node();
	for (i = 0; i < 100; i++) {
		struct sto_key k = key_of(8, i, 0);

		fill(b, len, 800 + i);
		ret = put_sync(cli, &k, 10, b, len, NULL);
		if (ret < 0)
			break;
		acked++;
	}
	CHECK_EQ(ret, -ENOSPC);
	CHECK(acked > 10);
	/* Small ones may still fit or not; never a crash, never partial. */
	for (unsigned j = 0; j < 50; j++) {
		struct sto_key k = key_of(9, j, 0);

		fill(b, 60000, 900 + j);
		ret = put_sync(cli, &k, 10, b, 60000, NULL);
		CHECK(ret == 0 || ret == -ENOSPC);
		if (ret == 0)
			check_object(cli, &k, 900 + j, 60000, 10);
		else
			CHECK_EQ(get_sync(cli, &k, 0, 0, &w), -ENOENT);
	}
	for (i = 0; i < acked; i++) {
		struct sto_key k = key_of(8, i, 0);

		check_object(cli, &k, 800 + i, len, 10);
	}
	{
		struct sto_key k = key_of(8, acked, 0);

		CHECK_EQ(get_sync(cli, &k, 0, 0, &w), -ENOENT);
	}
	st = stat_sync(cli);
	CHECK(st.nospace > 0);
	/* With a reserve, the node refuses earlier, with room left. */
	restart_node(SIGTERM, mountdir, "--reserve-bytes 30M --index-map-size 64M");
	{
		struct sto_key k = key_of(10, 1, 0);

		ret = put_sync(cli, &k, 10, b, 4096, NULL);
		CHECK_EQ(ret, -ENOSPC);
	}
	for (i = 0; i < acked; i++) {
		struct sto_key k = key_of(8, i, 0);

		check_object(cli, &k, 800 + i, len, 10);
	}
	printf("enospc: ok (%u MiB acknowledged on a 40 MiB tmpfs, then ENOSPC)\n", acked);
	free(b);
}

/* Background compaction: small volumes, most of them overwritten; the node
 * reclaims them by itself and every object still reads back. */
static void scenario_compact(void)
{
	enum { N = 60, LEN = 100000 };
	uint8_t *b = malloc(LEN);
	struct sto_stat st0, st;
	uint64_t deadline;

	start_daemon(NULL, "--volume-max 1M --compact-interval 1 --compact-pct 50");
	cli = connect_node();
	for (unsigned round = 0; round < 3; round++)
		for (unsigned i = 0; i < N; i++) {
			struct sto_key k = key_of(11, i, 0);

			fill(b, LEN, round * 1000 + i);
			CHECK_EQ(put_sync(cli, &k, 10 + round, b, LEN, "m"), 0);
		}
	st0 = stat_sync(cli);
	deadline = now_ms() + 30000;
	do {
		usleep(200000);
		st = stat_sync(cli);
	} while (st.media[STO_MEDIUM_HOT].used_bytes * 10 >
		 st0.media[STO_MEDIUM_HOT].used_bytes * 6 && now_ms() < deadline);
	CHECK(st.media[STO_MEDIUM_HOT].volumes < st0.media[STO_MEDIUM_HOT].volumes);
	CHECK(st.media[STO_MEDIUM_HOT].used_bytes * 10 <=
	      st0.media[STO_MEDIUM_HOT].used_bytes * 6);
	for (unsigned i = 0; i < N; i++) {
		struct sto_key k = key_of(11, i, 0);

		check_object(cli, &k, 2000 + i, LEN, 12);
	}
	restart_node(SIGTERM, NULL, NULL);
	for (unsigned i = 0; i < N; i++) {
		struct sto_key k = key_of(11, i, 0);

		check_object(cli, &k, 2000 + i, LEN, 12);
	}
	printf("compact: ok (%u volumes, %llu bytes -> %u volumes, %llu bytes)\n",
	       st0.media[0].volumes, (unsigned long long)st0.media[0].used_bytes,
	       st.media[0].volumes, (unsigned long long)st.media[0].used_bytes);
	free(b);
}

/* Flips one byte of the stored copy of want[at] (found by content) in the
 * daemon's volume files. */
static void corrupt_on_disk(const uint8_t *want, size_t at)
{
	char path[512];
	uint8_t *buf = malloc(8 << 20);
	bool done = false;

	for (unsigned id = 1; id < 16 && !done; id++) {
		int fd;
		ssize_t n;
		off_t base = 0;

		snprintf(path, sizeof(path), "%s/hot/vol-%08x.dat", tmpdir, id);
		fd = open(path, O_RDWR);
		if (fd < 0)
			continue;
		while (!done && (n = pread(fd, buf, 8 << 20, base)) > 64) {
			for (ssize_t i = 0; i + 64 <= n; i++)
				if (!memcmp(buf + i, want + at, 64)) {
					uint8_t x = buf[i] ^ 0xff;

					CHECK(pwrite(fd, &x, 1, base + i) == 1);
					done = true;
					break;
				}
			base += n - 64;
		}
		close(fd);
	}
	CHECK(done);
	free(buf);
}

/* A flipped byte on disk: never served. Small fragment: a clean STO_ECRC.
 * Big one: the first MiB still streams (its chunks check out), then the
 * stream is cut; afterwards both are quarantined (-ENOENT, counted). */
static void scenario_corrupt(void)
{
	size_t big = 3 * 1048576 + 17, small = 200000;
	uint8_t *want = malloc(big);
	struct sto_key kb = key_of(1, 6, 6), ks = key_of(1, 5, 5);
	struct sto_stat st;
	struct waiter w;
	int ret;

	start_daemon(NULL, NULL);
	cli = connect_node();
	put_set(cli, 1, 1000);
	fill(want, small, 5 + 1000);
	corrupt_on_disk(want, 100000);
	fill(want, big, 6 + 1000);
	corrupt_on_disk(want, 2 * 1048576 + 12345);

	CHECK_EQ(get_sync(cli, &ks, 0, 0, &w), STO_ECRC);
	CHECK_EQ(w.len, 0);
	free(w.data);
	/* The first MiB of the big one is fine and can be read alone. */
	CHECK_EQ(get_sync(cli, &kb, 0, 1048576, &w), 0);
	CHECK(memcmp(w.data, want, 1048576) == 0);
	free(w.data);
	ret = get_sync(cli, &kb, 0, 0, &w);
	CHECK(ret < 0);
	CHECK(w.len < big);		/* cut short, never completed */
	CHECK(w.len == 0 || memcmp(w.data, want, w.len) == 0);
	free(w.data);
	sto_client_close(cli);
	cli = connect_node();
	usleep(100000);
	CHECK_EQ(get_sync(cli, &ks, 0, 0, &w), -ENOENT);
	CHECK_EQ(get_sync(cli, &kb, 0, 0, &w), -ENOENT);
	st = stat_sync(cli);
	CHECK_EQ(st.quarantined, 2);
	CHECK(st.crc_errors >= 2);
	/* The rest is untouched. */
	for (size_t i = 0; i < 5; i++) {
		struct sto_key k = key_of(1, i, (uint32_t)i);

		check_object(cli, &k, i + 1000, sizes[i], 1000);
	}
	printf("corrupt: ok (bad bytes never served; %llu quarantined)\n",
	       (unsigned long long)st.quarantined);
	free(want);
}

static uint64_t daemon_peak_rss_kb(void)
{
	char path[64], line[256];
	uint64_t kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %" SCNu64, &kb) == 1)
			break;
	fclose(f);
	return kb;
}

struct big_get {
	uint64_t len;
	uint32_t crc;
	bool done;
	int status;
};

static void on_big_done(void *arg, int status, const struct sto_info *info)
{
	struct big_get *g = arg;

	g->status = status;
	g->done = true;
}

static void on_big_chunk(void *arg, const struct sto_info *info, const void *d, size_t n)
{
	struct big_get *g = arg;

	g->crc = sto_crc32c(g->crc, d, n);
	g->len += n;
}

/* A 1 GiB fragment streams through with bounded memory on the node. */
static void scenario_large(void)
{
	enum { MIB = 1 << 20, N = 1024 };
	uint8_t *b = malloc(MIB);
	struct iovec *iov = calloc(N, sizeof(*iov));
	struct sto_key k = key_of(12, 1, 0);
	struct waiter w = { 0 };
	struct big_get g = { 0 };
	uint32_t crc = 0;
	uint64_t rss;

	fill(b, MIB, 77);
	for (unsigned i = 0; i < N; i++) {
		iov[i] = (struct iovec){ b, MIB };
		crc = sto_crc32c(crc, b, MIB);
	}
	start_daemon(NULL, NULL);
	cli = connect_node();
	CHECK_EQ(sto_put(cli, &k, 5, "big", 3, iov, N, crc, on_done, &w), 0);
	{
		/* 1 GiB under ASan on a shared 2-core machine: minutes. */
		uint64_t deadline = now_ms() + 300000;

		while (!w.done) {
			uv_run(&loop, UV_RUN_ONCE);
			if (now_ms() > deadline)
				FAIL("PUT timed out");
		}
	}
	CHECK_EQ(w.status, 0);
	memset(&w, 0, sizeof(w));
	CHECK_EQ(sto_get(cli, &k, 0, 0, on_big_chunk, on_big_done, &g), 0);
	{
		uint64_t deadline = now_ms() + 300000;

		while (!g.done) {
			uv_run(&loop, UV_RUN_ONCE);
			if (now_ms() > deadline)
				FAIL("GET timed out");
		}
	}
	CHECK_EQ(g.status, 0);
	CHECK_EQ(g.len, (uint64_t)N * MIB);
	CHECK_EQ(g.crc, crc);
	/* 64 GETs of 32 MiB at once on one connection: the node keeps at most
	 * its per-connection GET budget in flight. */
	{
		enum { G = 64, LEN = 32 << 20 };
		struct big_get *gg = calloc(G, sizeof(*gg));
		uint32_t want = 0;
		uint64_t deadline = now_ms() + 300000;
		unsigned left = G;

		for (unsigned i = 0; i < LEN / MIB; i++)
			want = sto_crc32c(want, b, MIB);
		for (unsigned i = 0; i < G; i++)
			CHECK_EQ(sto_get(cli, &k, 0, LEN, on_big_chunk, on_big_done, &gg[i]), 0);
		while (left) {
			uv_run(&loop, UV_RUN_ONCE);
			left = 0;
			for (unsigned i = 0; i < G; i++)
				left += !gg[i].done;
			if (now_ms() > deadline)
				FAIL("concurrent GETs timed out");
		}
		for (unsigned i = 0; i < G; i++) {
			CHECK_EQ(gg[i].status, 0);
			CHECK_EQ(gg[i].len, LEN);
			CHECK_EQ(gg[i].crc, want);
		}
		free(gg);
	}
	rss = daemon_peak_rss_kb();
	printf("large: ok (1 GiB PUT + GET, then 64 x 32 MiB GETs at once; node peak "
	       "RSS %" PRIu64 " MiB)\n", rss >> 10);
	CHECK(rss > 0 && rss < 128 * 1024);	/* 1 GiB went through */
	free(iov);
	free(b);
}


/* ------------------------------------------------------------- listings */

static const struct sto_listing_id test_lid = { 42, "listing-test-id" };

struct lwait {
	bool done;
	int status;
	uint64_t count;
	bool more;
	size_t n_entries, n_prefixes;
	bool truncated;
	char keys[1100][40];		/* entries then prefixes, as strings */
	uint64_t ts[1100];
	bool tomb[1100];
	char values[1100][40];
	char marker[1100];
	uint32_t marker_len;
	struct sto_listing_stat st;
	char first[64], last[64];
};

static void on_lput(void *arg, int status, uint64_t count)
{
	struct lwait *w = arg;

	w->status = status;
	w->count = count;
	w->done = true;
}

static void on_lpage(void *arg, int status, const struct sto_listing_page *pg)
{
	struct lwait *w = arg;

	w->status = status;
	w->done = true;
	if (status < 0)
		return;
	w->n_entries = pg->n_entries;
	w->n_prefixes = pg->n_prefixes;
	w->truncated = pg->is_truncated;
	for (size_t i = 0; i < pg->n_entries && i < 1100; i++) {
		const struct sto_listing_entry *e = &pg->entries[i];

		snprintf(w->keys[i], 40, "%.*s", (int)e->key_len, (const char *)e->key);
		snprintf(w->values[i], 40, "%.*s", (int)e->value_len, (const char *)e->value);
		w->ts[i] = e->timestamp;
		w->tomb[i] = e->tombstone;
	}
	for (size_t i = 0; i < pg->n_prefixes && pg->n_entries + i < 1100; i++)
		snprintf(w->keys[pg->n_entries + i], 40, "%.*s", (int)pg->prefixes[i].len,
			 (const char *)pg->prefixes[i].data);
	w->marker_len = pg->next_marker.len;
	if (pg->next_marker.len)
		memcpy(w->marker, pg->next_marker.data, pg->next_marker.len);
}

static void on_lstat(void *arg, int status, const struct sto_listing_stat *st)
{
	struct lwait *w = arg;

	w->status = status;
	w->done = true;
	if (!st)
		return;
	w->st = *st;
	snprintf(w->first, sizeof(w->first), "%.*s", (int)st->first_key.len,
		 (const char *)st->first_key.data);
	snprintf(w->last, sizeof(w->last), "%.*s", (int)st->last_key.len,
		 (const char *)st->last_key.data);
}

static void on_ldel(void *arg, int status, uint64_t deleted, bool more,
		    struct sto_bytes next)
{
	struct lwait *w = arg;

	w->status = status;
	w->count = deleted;
	w->more = more;
	w->marker_len = next.len;
	if (next.len)
		memcpy(w->marker, next.data, next.len);
	w->done = true;
}

static void lwait_for(struct lwait *w)
{
	uint64_t deadline = now_ms() + 180000;	/* a loaded CI disk */

	while (!w->done) {
		uv_run(&loop, UV_RUN_ONCE);
		if (now_ms() > deadline)
			FAIL("listing request timed out");
	}
}

static struct lwait *lw;

static int lput_sync(sto_client *c, const struct sto_listing_entry *v, size_t n,
		     uint64_t *count)
{
	int ret;

	memset(lw, 0, sizeof(*lw));
	ret = sto_listing_put(c, &test_lid, v, n, on_lput, lw);
	if (ret < 0)
		return ret;
	lwait_for(lw);
	if (count)
		*count = lw->count;
	return lw->status;
}

static int lquery_sync(sto_client *c, const char *sa, const char *pfx, const char *delim,
		       uint32_t limit, bool tombs)
{
	struct sto_listing_query q = {
		.start_after = { sa, sa ? (uint32_t)strlen(sa) : 0 },
		.prefix = { pfx, pfx ? (uint32_t)strlen(pfx) : 0 },
		.delimiter = { delim, delim ? (uint32_t)strlen(delim) : 0 },
		.limit = limit, .include_tombstones = tombs,
	};
	int ret;

	memset(lw, 0, sizeof(*lw));
	ret = sto_listing_query(c, &test_lid, &q, on_lpage, lw);
	if (ret < 0)
		return ret;
	lwait_for(lw);
	return lw->status;
}

static void lstat_sync(sto_client *c)
{
	memset(lw, 0, sizeof(*lw));
	CHECK_EQ(sto_listing_stat(c, &test_lid, on_lstat, lw), 0);
	lwait_for(lw);
	CHECK_EQ(lw->status, 0);
}

static struct sto_listing_entry lent(const char *k, uint64_t ts, bool tomb, const char *v)
{
	return (struct sto_listing_entry){ k, (uint32_t)strlen(k), ts, tomb,
					   v, v ? (uint32_t)strlen(v) : 0 };
}

static void listing_check_state(sto_client *c)
{
	CHECK_EQ(lquery_sync(c, NULL, NULL, NULL, 0, false), 0);
	CHECK_EQ(lw->n_entries, 3);
	CHECK(!strcmp(lw->keys[0], "docs/a.txt") && !strcmp(lw->values[0], "v2"));
	CHECK_EQ(lw->ts[0], 20);
	CHECK(!strcmp(lw->keys[1], "docs/sub/c.txt"));
	CHECK(!strcmp(lw->keys[2], "photos/1.jpg"));
	CHECK(!lw->truncated);
	/* Delimiter: two common prefixes. */
	CHECK_EQ(lquery_sync(c, NULL, NULL, "/", 0, false), 0);
	CHECK_EQ(lw->n_entries, 0);
	CHECK_EQ(lw->n_prefixes, 2);
	CHECK(!strcmp(lw->keys[0], "docs/") && !strcmp(lw->keys[1], "photos/"));
	CHECK_EQ(lquery_sync(c, NULL, "docs/", "/", 0, false), 0);
	CHECK_EQ(lw->n_entries, 1);
	CHECK_EQ(lw->n_prefixes, 1);
	CHECK(!strcmp(lw->keys[1], "docs/sub/"));
	/* With tombstones (replication): docs/b.txt is one. */
	CHECK_EQ(lquery_sync(c, NULL, NULL, NULL, 0, true), 0);
	CHECK_EQ(lw->n_entries, 4);
	CHECK(!strcmp(lw->keys[1], "docs/b.txt") && lw->tomb[1]);
	CHECK_EQ(lw->ts[1], 30);
	lstat_sync(c);
	CHECK_EQ(lw->st.entries, 3);
	CHECK_EQ(lw->st.tombstones, 1);
	CHECK(!strcmp(lw->first, "docs/a.txt") && !strcmp(lw->last, "photos/1.jpg"));
}

static void scenario_listing(void)
{
	struct sto_listing_entry v[8];
	char longkey[STO_LISTING_MAX_KEY + 2];
	uint64_t count;
	uint8_t f[256];
	size_t n;

	lw = calloc(1, sizeof(*lw));
	start_daemon(NULL, NULL);
	cli = connect_node();
	v[0] = lent("docs/a.txt", 10, false, "v1");
	v[1] = lent("docs/b.txt", 10, false, "v1");
	v[2] = lent("photos/1.jpg", 10, false, "v1");
	CHECK_EQ(lput_sync(cli, v, 3, &count), 0);
	CHECK_EQ(count, 3);
	/* Newest wins: a newer value, a stale one, a tombstone, an older
	 * write behind that tombstone. */
	v[0] = lent("docs/a.txt", 20, false, "v2");
	v[1] = lent("docs/a.txt", 15, false, "stale");
	v[2] = lent("docs/b.txt", 30, true, NULL);
	v[3] = lent("docs/b.txt", 25, false, "behind the tombstone");
	v[4] = lent("docs/sub/c.txt", 10, false, "v1");
	CHECK_EQ(lput_sync(cli, v, 5, &count), 0);
	CHECK_EQ(count, 3);
	listing_check_state(cli);
	/* Paging: limit 1 with markers. */
	CHECK_EQ(lquery_sync(cli, NULL, NULL, "/", 1, false), 0);
	CHECK(lw->truncated && lw->marker_len == 5 && !memcmp(lw->marker, "docs/", 5));
	CHECK_EQ(lquery_sync(cli, "docs/", NULL, "/", 1, false), 0);
	CHECK(!lw->truncated && lw->n_prefixes == 1 && !strcmp(lw->keys[0], "photos/"));
	/* Refused: a key longer than the protocol's limit (longer than
	 * LMDB's keys is fine: storage/test-listing.c); bad arguments. */
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	v[0] = lent(longkey, 10, false, NULL);
	CHECK_EQ(sto_listing_put(cli, &test_lid, v, 1, on_lput, lw), -EINVAL);
	v[0] = lent("x", 0, false, NULL);
	CHECK_EQ(sto_listing_put(cli, &test_lid, v, 1, on_lput, lw), -EINVAL);
	CHECK_EQ(lquery_sync(cli, NULL, NULL, "0123456789abcdefg", 0, false), -EINVAL);

	/* Durable across a clean restart and a kill -9. */
	restart_node(SIGTERM, NULL, NULL);
	listing_check_state(cli);
	kill9();
	start_daemon(NULL, NULL);
	cli = connect_node();
	listing_check_state(cli);

	/* Range deletion, bounded per call. */
	memset(lw, 0, sizeof(*lw));
	CHECK_EQ(sto_listing_delete_range(cli, &test_lid, (struct sto_bytes){ "docs/", 5 },
					  (struct sto_bytes){ "docs0", 5 }, 2, on_ldel, lw), 0);
	lwait_for(lw);
	CHECK_EQ(lw->status, 0);
	CHECK_EQ(lw->count, 2);
	CHECK(lw->more && lw->marker_len == 14 && !memcmp(lw->marker, "docs/sub/c.txt", 14));
	memset(lw, 0, sizeof(*lw));
	CHECK_EQ(sto_listing_delete_range(cli, &test_lid, (struct sto_bytes){ NULL, 0 },
					  (struct sto_bytes){ NULL, 0 }, 0, on_ldel, lw), 0);
	lwait_for(lw);
	CHECK_EQ(lw->count, 2);
	CHECK(!lw->more);
	lstat_sync(cli);
	CHECK_EQ(lw->st.entries + lw->st.tombstones, 0);

	/* Malformed listing frames close the connection; the node lives on. */
	{
		static const uint8_t lid16[16] = "0123456789abcdef";

		/* LISTING_QUERY with a 15-byte listing id. */
		n = 8;
		f[n++] = 0x08; f[n++] = 1;			/* version */
		f[n++] = 0x10; f[n++] = 9;			/* id */
		f[n++] = 0x18; f[n++] = 8;			/* op LISTING_QUERY */
		f[n++] = 0x7a; f[n++] = 15;			/* listing_id (15) */
		memcpy(f + n, lid16, 15);
		n += 15;
		f[0] = 'S'; f[1] = 'T'; f[2] = 'R'; f[3] = 'F';
		f[4] = 0; f[5] = 0; f[6] = 0; f[7] = (uint8_t)(n - 8);
		raw_expect_close(f, n, "listing id of 15 bytes");
		/* LISTING_QUERY with limit above the protocol cap. */
		n = 8;
		f[n++] = 0x08; f[n++] = 1;
		f[n++] = 0x10; f[n++] = 9;
		f[n++] = 0x18; f[n++] = 8;
		f[n++] = 0x7a; f[n++] = 16;
		memcpy(f + n, lid16, 16);
		n += 16;
		f[n++] = 0xa0; f[n++] = 0x01;			/* field 20 (limit) */
		n += varint(f + n, STO_LISTING_MAX_LIMIT + 1);
		f[7] = (uint8_t)(n - 8);
		raw_expect_close(f, n, "listing limit over the cap");
		/* LISTING_PUT with an empty key. */
		n = 8;
		f[n++] = 0x08; f[n++] = 1;
		f[n++] = 0x10; f[n++] = 9;
		f[n++] = 0x18; f[n++] = 7;
		f[n++] = 0x7a; f[n++] = 16;
		memcpy(f + n, lid16, 16);
		n += 16;
		f[n++] = 0x82; f[n++] = 0x01; f[n++] = 2;	/* field 16, 2 bytes */
		f[n++] = 0x10; f[n++] = 5;			/* timestamp 5, no key */
		f[7] = (uint8_t)(n - 8);
		raw_expect_close(f, n, "listing entry without a key");
	}
	lstat_sync(cli);
	printf("listing: ok\n");
	free(lw);
	lw = NULL;
}

/* kill -9 while 4 connections pipeline batches of 200 entries: every
 * acknowledged batch is there after the restart, whole. */
struct lcrash_batch {
	struct sto_listing_entry v[200];
	char keys[200][24];
	unsigned conn;
	bool sent, acked;
};

static struct lcrash_batch *lcb;
static unsigned lc_next, lc_total, lc_acked;
static sto_client *lc_cli[4];

static void lcrash_issue(unsigned ci);

static void on_lcrash(void *arg, int status, uint64_t count)
{
	struct lcrash_batch *b = arg;

	b->acked = status == 0;
	lc_acked += b->acked;
	if (status == 0)
		lcrash_issue(b->conn);
}

static void lcrash_issue(unsigned ci)
{
	while (lc_next < lc_total) {
		struct lcrash_batch *b = &lcb[lc_next++];

		b->conn = ci;
		for (int i = 0; i < 200; i++) {
			snprintf(b->keys[i], 24, "k/%06u/%03d", (unsigned)(b - lcb), i);
			b->v[i] = lent(b->keys[i], 1000 + (uint64_t)(b - lcb), false, "v");
		}
		b->sent = sto_listing_put(lc_cli[ci], &test_lid, b->v, 200, on_lcrash, b) == 0;
		return;
	}
}

static void scenario_listing_crash(void)
{
	enum { TOTAL = 20000 };
	unsigned acked = 0;

	lw = calloc(1, sizeof(*lw));
	lcb = calloc(TOTAL, sizeof(*lcb));
	lc_total = TOTAL;
	start_daemon(NULL, NULL);
	for (unsigned c = 0; c < 4; c++) {
		lc_cli[c] = connect_node();
		for (int j = 0; j < 8; j++)
			lcrash_issue(c);
	}
	kill_when_acked(&lc_acked, 10, 300, 700, lc_cli);
	start_daemon(NULL, NULL);
	cli = connect_node();
	for (unsigned i = 0; i < lc_next; i++) {
		struct lcrash_batch *b = &lcb[i];
		char pfx[16];

		if (!b->sent)
			continue;
		snprintf(pfx, sizeof(pfx), "k/%06u/", i);
		CHECK_EQ(lquery_sync(cli, NULL, pfx, NULL, 1000, false), 0);
		/* A batch is one transaction: all of it or none of it. */
		CHECK(lw->n_entries == 0 || lw->n_entries == 200);
		if (b->acked)
			CHECK_EQ(lw->n_entries, 200);
		acked += b->acked;
	}
	CHECK(acked > 10);
	printf("listing_crash: ok (%u batches sent, %u acknowledged, all there)\n",
	       lc_next, acked);
	free(lcb);
	free(lw);
	lw = NULL;
}

int main(int argc, char **argv)
{
	const char *sc;

	if (argc != 3) {
		fprintf(stderr, "usage: storaged-test DAEMON basic|restart|crash|replay|torn|malformed|enospc|compact|corrupt|large|listing|listing_crash\n");
		return 2;
	}
	sc = argv[2];
	if (harness_init(argv[1], "storaged-test") < 0)
		return 1;
	if (!strcmp(sc, "basic"))
		scenario_basic();
	else if (!strcmp(sc, "restart"))
		scenario_restart();
	else if (!strcmp(sc, "crash"))
		scenario_crash();
	else if (!strcmp(sc, "replay"))
		scenario_replay();
	else if (!strcmp(sc, "torn"))
		scenario_torn();
	else if (!strcmp(sc, "malformed"))
		scenario_malformed();
	else if (!strcmp(sc, "enospc"))
		scenario_enospc();
	else if (!strcmp(sc, "compact"))
		scenario_compact();
	else if (!strcmp(sc, "corrupt"))
		scenario_corrupt();
	else if (!strcmp(sc, "large"))
		scenario_large();
	else if (!strcmp(sc, "listing"))
		scenario_listing();
	else if (!strcmp(sc, "listing_crash"))
		scenario_listing_crash();
	else {
		fprintf(stderr, "unknown scenario %s\n", sc);
		cleanup();
		return 2;
	}
	harness_done();
	return 0;
}
