/* bench/fragload.c: a fragment load on one storage node, shared by
 * `strata-bench node` and `strata-bench tiers`.
 *
 * One libuv loop, up to FLOAD_MAX_CONNS node connections, and `conc` slots
 * that each keep one request in flight: PUTs of one payload to keys 0, 1, 2...
 * of a partition, or GETs of keys picked at random below nkeys.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "fragload.h"

struct fload_slot {
	struct fload *f;
	unsigned conn;
	uint64_t t0;
};

struct sto_key fload_key(const struct fload *f, uint64_t n)
{
	struct sto_key k = { .part = f->part };

	memcpy(k.name, &n, sizeof(n));
	k.name[8] = f->keytag;
	k.name[0] ^= (uint8_t)(n >> 8);	/* spread over suffixes by the low bytes */
	return k;
}

int fload_payload(struct fload *f, uint64_t size)
{
	free(f->buf);
	f->buf = malloc(size ? size : 1);
	if (!f->buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < size; i++)
		f->buf[i] = (uint8_t)(i * 2654435761u >> 13);
	f->crc = sto_crc32c(0, f->buf, size);
	f->iov = (struct iovec){ f->buf, size };
	return 0;
}

static void on_connect(sto_client *c, int status, void *arg)
{
	*(int *)arg = status;
}

int fload_connect(struct fload *f, const char *host, uint16_t port, unsigned nconns)
{
	int st[FLOAD_MAX_CONNS];

	if (!nconns || nconns > FLOAD_MAX_CONNS)
		return -EINVAL;
	f->nconns = nconns;
	for (unsigned i = 0; i < nconns; i++) {
		st[i] = 1;
		if (sto_client_connect(f->loop, host, port, on_connect, &st[i], &f->c[i]) < 0)
			return -ECONNREFUSED;
	}
	for (unsigned i = 0; i < nconns; i++) {
		while (st[i] == 1)
			uv_run(f->loop, UV_RUN_ONCE);
		if (st[i] < 0)
			return st[i];
	}
	return 0;
}

void fload_disconnect(struct fload *f)
{
	for (unsigned i = 0; i < f->nconns; i++)
		if (f->c[i])
			sto_client_close(f->c[i]);
	uv_run(f->loop, UV_RUN_DEFAULT);
	memset(f->c, 0, sizeof(f->c));
	f->nconns = 0;
}

void fload_free(struct fload *f)
{
	fload_disconnect(f);
	bench_hist_free(&f->hist);
	free(f->buf);
	f->buf = NULL;
}

void fload_reset(struct fload *f, bool put, uint32_t part, uint64_t nkeys,
		 enum sto_tier_class tier)
{
	bench_hist_free(&f->hist);
	memset(&f->hist, 0, sizeof(f->hist));
	f->put = put;
	f->stop = false;
	f->part = part;
	f->nkeys = nkeys;
	f->next_key = 0;
	f->tier = tier;
	f->ops = f->errors = f->bytes = f->inflight = 0;
	f->first_error = 0;
	f->rng = 0x9e3779b97f4a7c15ull ^ part ^ nkeys;
}

static void issue(struct fload_slot *s);

static void on_done(void *arg, int status, const struct sto_info *info)
{
	struct fload_slot *s = arg;
	struct fload *f = s->f;

	f->inflight--;
	if (status < 0) {
		if (!f->errors)
			f->first_error = status;
		f->errors++;
	} else {
		f->ops++;
		if (f->put)
			f->bytes += f->iov.iov_len;
		bench_hist_add(&f->hist, strata_now_ns() - s->t0);
	}
	issue(s);
}

static void on_chunk(void *arg, const struct sto_info *info, const void *d, size_t n)
{
	struct fload_slot *s = arg;

	s->f->bytes += n;
}

static void issue(struct fload_slot *s)
{
	struct fload *f = s->f;
	uint64_t now = strata_now_ns();
	struct sto_key k;
	int ret;

	if (f->stop || (f->deadline && now >= f->deadline) ||
	    (f->max_ops && f->ops + f->inflight >= f->max_ops) ||
	    (f->put && f->nkeys && f->next_key >= f->nkeys))
		return;
	s->t0 = now;
	if (f->put) {
		struct sto_put_opts o = { .tier = f->tier };

		k = fload_key(f, f->next_key++);
		ret = sto_put_ex(f->c[s->conn], &k, strata_wall_ns(), "bench", 5, &f->iov, 1,
				 f->crc, &o, on_done, s);
	} else {
		f->rng ^= f->rng << 13;
		f->rng ^= f->rng >> 7;
		f->rng ^= f->rng << 17;
		k = fload_key(f, f->rng % f->nkeys);
		ret = sto_get(f->c[s->conn], &k, 0, 0, on_chunk, on_done, s);
	}
	if (ret < 0) {
		if (!f->errors)
			f->first_error = ret;
		f->errors++;
		return;
	}
	f->inflight++;
}

double fload_drive(struct fload *f, unsigned conc, double seconds, bool until_stop)
{
	struct fload_slot *slots = calloc(conc, sizeof(*slots));
	uint64_t t0 = strata_now_ns();

	if (!slots || !f->nconns || (!f->put && !f->nkeys)) {
		free(slots);
		return 0;
	}
	f->deadline = seconds > 0 ? t0 + (uint64_t)(seconds * 1e9) : 0;
	for (unsigned i = 0; i < conc; i++) {
		slots[i].f = f;
		slots[i].conn = i % f->nconns;
		issue(&slots[i]);
	}
	while (f->inflight || (until_stop && !f->stop))
		uv_run(f->loop, UV_RUN_ONCE);
	free(slots);
	return (double)(strata_now_ns() - t0) / 1e9;
}

struct stat_wait {
	bool done;
	int status;
	struct sto_stat st;
};

static void on_stat(void *arg, int status, const struct sto_stat *st)
{
	struct stat_wait *w = arg;

	w->status = status;
	if (st)
		w->st = *st;
	w->done = true;
}

int fload_stat(struct fload *f, struct sto_stat *st)
{
	struct stat_wait w = { 0 };
	int ret;

	if (!f->nconns)
		return -ENOTCONN;
	if ((ret = sto_stat(f->c[0], on_stat, &w)) < 0)
		return ret;
	while (!w.done)
		uv_run(f->loop, UV_RUN_ONCE);
	if (w.status == 0)
		*st = w.st;
	return w.status;
}
