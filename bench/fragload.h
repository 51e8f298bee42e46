/* bench/fragload.h: a fragment load on one storage node (fragload.c).
 *
 * Shared by the node and tiers benchmarks: up to FLOAD_MAX_CONNS connections
 * and `conc` requests in flight, PUTs of one payload to keys 0, 1, 2... of a
 * partition (nkeys of them, or until the deadline when 0) or GETs of random
 * keys below nkeys.
 */
#ifndef STRATA_BENCH_FRAGLOAD_H
#define STRATA_BENCH_FRAGLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#include "internal.h"
#include "storage.h"

#define FLOAD_MAX_CONNS	16
struct fload {
	uv_loop_t *loop;
	sto_client *c[FLOAD_MAX_CONNS];
	unsigned nconns;
	uint8_t keytag;			/* a key byte per benchmark */
	uint8_t *buf;			/* the PUT payload (fload_payload) */
	struct iovec iov;
	uint32_t crc;
	/* the phase (fload_reset) */
	bool put, stop;			/* stop: set by a callback to end it */
	enum sto_tier_class tier;
	uint32_t part;
	uint64_t nkeys, next_key, max_ops, deadline;
	uint64_t ops, errors, bytes, inflight, rng;
	int first_error;
	struct bench_hist hist;
};
struct sto_key fload_key(const struct fload *f, uint64_t n);
int fload_payload(struct fload *f, uint64_t size);
int fload_connect(struct fload *f, const char *host, uint16_t port, unsigned nconns);
void fload_disconnect(struct fload *f);
void fload_reset(struct fload *f, bool put, uint32_t part, uint64_t nkeys,
		 enum sto_tier_class tier);
/* Runs the phase: until the deadline (seconds > 0), max_ops, every key put
 * or f->stop; with until_stop the loop keeps running (other handles' work)
 * until f->stop. Returns the seconds it took. */
double fload_drive(struct fload *f, unsigned conc, double seconds, bool until_stop);
int fload_stat(struct fload *f, struct sto_stat *st);
void fload_free(struct fload *f);	/* disconnects; frees payload and hist */

#endif
