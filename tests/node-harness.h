/* node-harness: what the storage-node integration tests (storaged-test,
 * tiering-test) share: one real strata-storaged at a time, started on a free
 * loopback port in tmpdir and stopped or killed by its PID, and a client
 * library driven synchronously on loop.
 *
 * A test's main() fills daemon_path and tmpdir (mkdtemp) and initialises
 * loop; cleanup() undoes everything (KEEP_TMP=1 keeps tmpdir). FAIL and the
 * CHECKs print where they failed, clean up and exit(1).
 */
#ifndef STRATA_TESTS_NODE_HARNESS_H
#define STRATA_TESTS_NODE_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include <uv.h>

#include "storage.h"

extern const char *daemon_path;		/* strata-storaged */
extern char tmpdir[256];		/* this run's folder, removed by cleanup() */
extern pid_t daemon_pid;		/* 0: no daemon running */
extern uint16_t daemon_port;		/* the running daemon's port */
extern uv_loop_t loop;
extern sto_client *cli;			/* closed by cleanup() and kill9() */
extern bool mounted;			/* mountdir is mounted: cleanup() detaches it */
extern char mountdir[300];

#define FAIL(...) do { fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__);	\
	fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); cleanup(); exit(1); } while (0)
#define CHECK(c) do { if (!(c)) FAIL("%s", #c); } while (0)
#define CHECK_EQ(a, b) do { long long _a = (a), _b = (b);			\
	if (_a != _b) FAIL("%s == %lld, expected %s == %lld", #a, _a, #b, _b); } while (0)

/* For main(): daemon_path = daemon, SIGPIPE ignored, tmpdir made
 * (<$TMPDIR or /tmp>/<name>.XXXXXX), loop initialised. 0, or -1 (reported)
 * when tmpdir could not be made. */
int harness_init(const char *daemon, const char *name);
/* For main()'s end: cleanup(), then the loop run dry and closed. */
void harness_done(void);
/* Closes cli, kills the daemon, unmounts mountdir, removes tmpdir. */
void cleanup(void);
uint64_t now_ms(void);

/* Starts the daemon with <hot or tmpdir/hot> and tmpdir/cold, then the
 * space-separated options in extra; returns once it wrote its port
 * (daemon_port), FAILs if it exits or takes over 20 s. */
void start_daemon(const char *hot, const char *extra);
/* Stops the daemon with sig and waits (bounded) for it; returns its status. */
int stop_daemon(int sig);
/* SIGKILL to the daemon, reaped. */
void kill_daemon(void);
/* Closes cli, then kill_daemon(). */
void kill9(void);
/* Closes cli and stops the daemon with sig (it must exit 0); then starts it
 * again with hot and extra (as start_daemon()) and connects cli. */
void restart_node(int sig, const char *hot, const char *extra);

/* One request's outcome, filled by the callbacks below. */
struct waiter {
	bool done;
	int status;
	struct sto_info info;
	uint8_t meta[256];
	uint8_t *data;			/* GET payload, malloc'd: the caller frees */
	size_t len, cap;
	struct sto_suffix_hash *sfx;
	struct sto_list_entry *ents;
	size_t n;
	struct sto_stat st;
};

/* Runs loop until w is done; FAILs after 180 s (a loaded CI disk). */
void wait_for(struct waiter *w);
void on_connected(sto_client *c, int status, void *arg);
void on_done(void *arg, int status, const struct sto_info *info);
void on_chunk(void *arg, const struct sto_info *info, const void *d, size_t n);
void on_stat(void *arg, int status, const struct sto_stat *st);
/* A connected client to the running daemon. */
sto_client *connect_node(void);

/* Deterministic bytes from seed; key_of(part, n, frag): a name from n. */
void fill(uint8_t *b, size_t n, uint64_t seed);
struct sto_key key_of(uint32_t part, uint64_t n, uint32_t frag);

/* Synchronous requests: 0 or -errno. get_sync fills *w (w->data to free). */
int put_sync(sto_client *c, const struct sto_key *k, uint64_t ts,
	     const void *data, size_t len, const char *meta);
int get_sync(sto_client *c, const struct sto_key *k, uint64_t off,
	     uint64_t len, struct waiter *w);
struct sto_stat stat_sync(sto_client *c);
/* Reads k back whole and checks it against fill(seed), len and ts. */
void check_object(sto_client *c, const struct sto_key *k, uint64_t seed,
		  size_t len, uint64_t ts);

#endif
