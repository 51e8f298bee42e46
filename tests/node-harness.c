/* node-harness: the storage-node test harness that storaged-test and
 * tiering-test share (see node-harness.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "node-harness.h"

const char *daemon_path;
char tmpdir[256];
pid_t daemon_pid;
uint16_t daemon_port;
uv_loop_t loop;
sto_client *cli;
bool mounted;
char mountdir[300];

int harness_init(const char *daemon, const char *name)
{
	daemon_path = daemon;
	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "%s/%s.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		tmpdir[0] = 0;
		return -1;
	}
	uv_loop_init(&loop);
	return 0;
}

void harness_done(void)
{
	cleanup();
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
}

void cleanup(void)
{
	char cmd[512];

	if (cli) {
		sto_client_close(cli);
		cli = NULL;
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	if (daemon_pid > 0)
		kill_daemon();
	if (mounted) {
		umount2(mountdir, MNT_DETACH);
		mounted = false;
	}
	if (tmpdir[0] && !getenv("KEEP_TMP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", tmpdir);
	}
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------- daemon */

void start_daemon(const char *hot, const char *extra)
{
	char port_file[400], hotdir[400], colddir[400];
	char *argv[32];
	int argc = 0;
	char *ex = extra ? strdup(extra) : NULL;
	uint64_t deadline;

	snprintf(port_file, sizeof(port_file), "%s/port", tmpdir);
	snprintf(hotdir, sizeof(hotdir), "%s", hot ? hot : "");
	if (!hot)
		snprintf(hotdir, sizeof(hotdir), "%s/hot", tmpdir);
	snprintf(colddir, sizeof(colddir), "%s/cold", tmpdir);
	unlink(port_file);
	argv[argc++] = (char *)daemon_path;
	argv[argc++] = "--hot";
	argv[argc++] = hotdir;
	argv[argc++] = "--cold";
	argv[argc++] = colddir;
	argv[argc++] = "--port";
	argv[argc++] = "0";
	argv[argc++] = "--port-file";
	argv[argc++] = port_file;
	for (char *t = ex ? strtok(ex, " ") : NULL; t && argc < 30; t = strtok(NULL, " "))
		argv[argc++] = t;
	argv[argc] = NULL;
	daemon_pid = fork();
	CHECK(daemon_pid >= 0);
	if (daemon_pid == 0) {
		/* Never outlive the test, whatever kills it. A small ASan
		 * quarantine, so peak RSS reflects the node's own buffers. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		{
			/* Appended, so it also holds under tools/dev's options
			 * (the last setting of a key wins). */
			const char *asan = getenv("ASAN_OPTIONS");
			char opts[1024];

			snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16",
				 asan ? asan : "", asan && *asan ? ":" : "");
			setenv("ASAN_OPTIONS", opts, 1);
		}
		execv(daemon_path, argv);
		_exit(127);
	}
	free(ex);
	deadline = now_ms() + 20000;
	for (;;) {
		FILE *f = fopen(port_file, "r");
		unsigned p;
		int st;

		if (f) {
			if (fscanf(f, "%u", &p) == 1) {
				fclose(f);
				daemon_port = (uint16_t)p;
				return;
			}
			fclose(f);
		}
		if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
			daemon_pid = 0;
			FAIL("daemon exited early (status %d)", st);
		}
		if (now_ms() > deadline)
			FAIL("daemon did not start within 20 s");
		usleep(20000);
	}
}

int stop_daemon(int sig)
{
	uint64_t deadline = now_ms() + 30000;
	int st = 0;

	kill(daemon_pid, sig);
	while (waitpid(daemon_pid, &st, WNOHANG) != daemon_pid) {
		if (now_ms() > deadline) {
			kill(daemon_pid, SIGKILL);
			waitpid(daemon_pid, &st, 0);
			daemon_pid = 0;
			FAIL("daemon did not exit on signal %d", sig);
		}
		usleep(10000);
	}
	daemon_pid = 0;
	return st;
}

void kill_daemon(void)
{
	kill(daemon_pid, SIGKILL);
	waitpid(daemon_pid, NULL, 0);
	daemon_pid = 0;
}

void kill9(void)
{
	if (cli) {
		sto_client_close(cli);
		cli = NULL;
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	kill_daemon();
}

void restart_node(int sig, const char *hot, const char *extra)
{
	sto_client_close(cli);
	cli = NULL;
	CHECK_EQ(stop_daemon(sig), 0);
	start_daemon(hot, extra);
	cli = connect_node();
}

/* ------------------------------------------------------- sync client */

void wait_for(struct waiter *w)
{
	uint64_t deadline = now_ms() + 180000;	/* a loaded CI disk */

	while (!w->done) {
		uv_run(&loop, UV_RUN_ONCE);
		if (now_ms() > deadline)
			FAIL("request timed out");
	}
}

void on_connected(sto_client *c, int status, void *arg)
{
	struct waiter *w = arg;

	w->status = status;
	w->done = true;
}

sto_client *connect_node(void)
{
	struct waiter w = { 0 };
	sto_client *c;

	CHECK_EQ(sto_client_connect(&loop, "127.0.0.1", daemon_port, on_connected, &w, &c), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	return c;
}

void on_done(void *arg, int status, const struct sto_info *info)
{
	struct waiter *w = arg;

	w->status = status;
	if (info) {
		w->info = *info;
		if (info->meta_len && info->meta_len <= sizeof(w->meta))
			memcpy(w->meta, info->meta, info->meta_len);
		w->info.meta = NULL;
		w->info.error = NULL;
	}
	w->done = true;
}

void on_chunk(void *arg, const struct sto_info *info, const void *d, size_t n)
{
	struct waiter *w = arg;

	if (w->len + n > w->cap) {
		w->cap = (w->len + n) * 2;
		w->data = realloc(w->data, w->cap);
	}
	memcpy(w->data + w->len, d, n);
	w->len += n;
}

void fill(uint8_t *b, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
}

struct sto_key key_of(uint32_t part, uint64_t n, uint32_t frag)
{
	struct sto_key k = { .part = part, .frag = frag };

	fill(k.name, sizeof(k.name), n + 12345);
	return k;
}

int put_sync(sto_client *c, const struct sto_key *k, uint64_t ts,
	     const void *data, size_t len, const char *meta)
{
	struct waiter w = { 0 };
	struct iovec iov = { (void *)data, len };
	int ret = sto_put(c, k, ts, meta, meta ? (uint32_t)strlen(meta) : 0, &iov,
			  len ? 1 : 0, sto_crc32c(0, data, len), on_done, &w);

	if (ret < 0)
		return ret;
	wait_for(&w);
	return w.status;
}

int get_sync(sto_client *c, const struct sto_key *k, uint64_t off,
	     uint64_t len, struct waiter *w)
{
	int ret;

	memset(w, 0, sizeof(*w));
	ret = sto_get(c, k, off, len, on_chunk, on_done, w);
	if (ret < 0)
		return ret;
	wait_for(w);
	return w->status;
}

void on_stat(void *arg, int status, const struct sto_stat *st)
{
	struct waiter *w = arg;

	w->status = status;
	if (st)
		w->st = *st;
	w->done = true;
}

struct sto_stat stat_sync(sto_client *c)
{
	struct waiter w = { 0 };

	CHECK_EQ(sto_stat(c, on_stat, &w), 0);
	wait_for(&w);
	CHECK_EQ(w.status, 0);
	return w.st;
}

void check_object(sto_client *c, const struct sto_key *k, uint64_t seed,
		  size_t len, uint64_t ts)
{
	uint8_t *want = malloc(len + 1);
	struct waiter w;

	fill(want, len, seed);
	CHECK_EQ(get_sync(c, k, 0, 0, &w), 0);
	CHECK_EQ(w.len, len);
	CHECK_EQ(w.info.size, len);
	CHECK_EQ(w.info.timestamp, ts);
	CHECK(len == 0 || memcmp(w.data, want, len) == 0);
	CHECK_EQ(w.info.crc32c, sto_crc32c(0, want, len));
	free(w.data);
	free(want);
}
