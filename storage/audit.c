/* storage/audit.c: the auditor - a rate-limited background scrub of every
 * fragment's CRC-32C (issue 7; docs/durability.md, "Auditor").
 *
 * Why in the node and not in strata-repaird: the bytes never leave the node
 * (a scrub through GET would copy every fragment over loopback), the reads
 * go through the engine's io_uring and its checks (header, whole-fragment
 * CRC for fragments of <= 1 MiB, chunk CRCs beyond), and a bad fragment is
 * quarantined by the same code that quarantines one a GET finds. Repair
 * needs nothing new: a quarantined fragment left the index, so the node's
 * strata-repaird sees it missing and rebuilds it from the other nodes.
 *
 * A pass: the index is walked on a worker thread (keys of live fragments),
 * then each fragment is looked up again (it may have moved, been replaced or
 * deleted since) and read piece by piece (STO_READ_PIECE), one piece at a
 * time, each followed by a pause that keeps the byte rate at cfg.mbps. The
 * next pass starts cfg.interval seconds after one ends.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_MAX_KEYS	(8u << 20)	/* fragments per pass (memory bound) */
#define AUDIT_FIRST_S	5		/* the first pass, after start */

struct audit_key {
	struct sto_key key;
	uint64_t ts;
};

struct sto_audit {
	struct sto_engine *e;
	struct sto_audit_cfg cfg;
	uv_timer_t timer;
	uv_work_t work;
	bool walking, reading, stopping, timer_closed;
	void (*stop_cb)(void *arg);
	void *stop_arg;
	/* the pass */
	struct audit_key *keys;
	size_t nkeys, capkeys, next;
	int walk_ret;
	struct sto_loc loc;		/* fragment being read */
	struct sto_key cur;
	uint64_t off;
	uint64_t pass_start_ns, last_end_ns;
	uint64_t piece_ns;		/* when the piece being read was asked for */
	struct sto_stat st;		/* only .audit used */
};

static void audit_next(struct sto_audit *a);

static void audit_maybe_stopped(struct sto_audit *a)
{
	if (!a->stopping || a->walking || a->reading || !a->timer_closed || !a->stop_cb)
		return;
	a->stop_cb(a->stop_arg);
	a->stop_cb = NULL;
}

static void on_timer(uv_timer_t *t);

/* on_timer in ms (not while stopping). */
static void audit_arm(struct sto_audit *a, uint64_t ms)
{
	if (!a->stopping)
		uv_timer_start(&a->timer, on_timer, ms, 0);
}

static int walk_fn(void *arg, const struct sto_key *k, const struct sto_loc *l)
{
	struct sto_audit *a = arg;

	if (l->flags & STO_LOC_TOMBSTONE)
		return 0;
	if (a->nkeys == a->capkeys) {
		size_t cap = a->capkeys ? 2 * a->capkeys : 4096;
		struct audit_key *v;

		if (cap > AUDIT_MAX_KEYS)
			return 1;	/* the rest waits for the next pass */
		v = realloc(a->keys, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		a->keys = v;
		a->capkeys = cap;
	}
	a->keys[a->nkeys].key = *k;
	a->keys[a->nkeys].ts = l->ts;
	a->nkeys++;
	return 0;
}

static void walk_work(uv_work_t *w)
{
	struct sto_audit *a = w->data;

	a->walk_ret = sto_idx_walk(sto_engine_idx(a->e), walk_fn, a);
}

static void pass_end(struct sto_audit *a)
{
	uint64_t now = strata_now_ns();

	a->st.audit.passes++;
	a->st.audit.last_pass_seconds = (now - a->pass_start_ns) / 1000000000ull;
	a->last_end_ns = now;
	log_info("audit pass %llu: %zu fragments in %llu s, %llu corrupt so far",
		 (unsigned long long)a->st.audit.passes, a->nkeys,
		 (unsigned long long)a->st.audit.last_pass_seconds,
		 (unsigned long long)a->st.audit.corrupt);
	free(a->keys);
	a->keys = NULL;
	a->nkeys = a->capkeys = a->next = 0;
	a->st.audit.pass_done = a->st.audit.pass_total = 0;
	audit_arm(a, 1000);
}

static void walk_after(uv_work_t *w, int status)
{
	struct sto_audit *a = w->data;

	a->walking = false;
	sto_engine_release(a->e);
	if (a->walk_ret < 0 || status < 0 || a->stopping) {
		if (a->walk_ret < 0)
			log_warn("audit: index walk: %s", sto_strerror(a->walk_ret));
		free(a->keys);
		a->keys = NULL;
		a->nkeys = a->capkeys = 0;
		audit_arm(a, 10000);
		audit_maybe_stopped(a);
		return;
	}
	a->st.audit.pass_total = a->nkeys;
	audit_next(a);
}

/* The pause after `bytes` were read that keeps the rate at cfg.mbps (the
 * read's own time counts towards it). */
static uint64_t pause_ms(const struct sto_audit *a, uint64_t bytes)
{
	double ms = (double)bytes / (a->cfg.mbps * 1e6) * 1000.0 -
		    (double)(strata_now_ns() - a->piece_ns) / 1e6;

	return ms > 0 ? (uint64_t)ms : 0;
}

static void read_piece(struct sto_audit *a);

static void piece_done(void *arg, int status, const uint8_t *data, size_t len, void *buf)
{
	struct sto_audit *a = arg;

	(void)data;
	free(buf);
	a->reading = false;
	sto_engine_release(a->e);
	if (status == STO_ECRC) {
		/* sto_read quarantined it: repair rebuilds it from the others */
		a->st.audit.corrupt++;
		log_err("audit: part %u frag %u ts %llu: bad CRC, quarantined", a->cur.part,
			a->cur.frag, (unsigned long long)a->loc.ts);
		a->off = a->loc.size;
	} else if (status < 0) {
		a->off = a->loc.size;	/* moved or gone meanwhile: next one */
	} else {
		a->off += len;
		a->st.audit.bytes += len;
	}
	if (a->off >= a->loc.size) {
		if (status == 0)
			a->st.audit.checked++;
		a->st.audit.pass_done = ++a->next;
	}
	if (a->stopping) {
		audit_maybe_stopped(a);
		return;
	}
	audit_arm(a, pause_ms(a, status == 0 ? len : 0));
}

static void read_piece(struct sto_audit *a)
{
	uint64_t n = a->loc.size - a->off;
	int ret;

	if (n > STO_READ_PIECE)
		n = STO_READ_PIECE;
	a->reading = true;
	a->piece_ns = strata_now_ns();
	sto_engine_hold(a->e);
	ret = sto_read(a->e, &a->cur, &a->loc, a->off, n, piece_done, a);
	if (ret < 0)
		piece_done(a, ret, NULL, 0, NULL);
}

/* Starts the next fragment of the pass (or ends the pass). */
static void audit_next(struct sto_audit *a)
{
	while (!a->stopping && a->next < a->nkeys) {
		const struct audit_key *k = &a->keys[a->next];

		/* Looked up again: replaced, deleted or moved since the walk. */
		if (sto_engine_peek(a->e, &k->key, &a->loc, NULL) < 0 ||
		    (a->loc.flags & STO_LOC_TOMBSTONE) || a->loc.size == 0) {
			a->st.audit.pass_done = ++a->next;
			continue;
		}
		a->cur = k->key;
		a->off = 0;
		read_piece(a);
		return;
	}
	if (!a->stopping)
		pass_end(a);
}

static void on_timer(uv_timer_t *t)
{
	struct sto_audit *a = t->data;

	if (a->stopping || a->walking || a->reading || sto_engine_closing(a->e))
		return;
	if (a->keys) {			/* a pass under way: go on */
		if (a->off < a->loc.size && a->next < a->nkeys)
			read_piece(a);
		else
			audit_next(a);
		return;
	}
	/* between passes: start one when the interval is over */
	if (a->last_end_ns &&
	    strata_now_ns() - a->last_end_ns < (uint64_t)a->cfg.interval * 1000000000ull) {
		audit_arm(a, 1000);
		return;
	}
	a->pass_start_ns = strata_now_ns();
	a->walking = true;
	sto_engine_hold(a->e);
	a->work.data = a;
	uv_queue_work(sto_engine_loop(a->e), &a->work, walk_work, walk_after);
}

int sto_audit_new(struct sto_engine *e, const struct sto_audit_cfg *cfg,
		  struct sto_audit **out)
{
	struct sto_audit *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->e = e;
	a->cfg = *cfg;
	uv_timer_init(sto_engine_loop(e), &a->timer);
	a->timer.data = a;
	/* the node's requests keep the loop alive, not the auditor */
	uv_unref((uv_handle_t *)&a->timer);
	if (a->cfg.mbps > 0)
		audit_arm(a, AUDIT_FIRST_S * 1000);
	*out = a;
	return 0;
}

void sto_audit_stat(struct sto_audit *a, struct sto_stat *st)
{
	st->audit = a->st.audit;
	st->audit.last_pass_age = a->last_end_ns ?
				  (strata_now_ns() - a->last_end_ns) / 1000000000ull : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct sto_audit *a = h->data;

	a->timer_closed = true;
	audit_maybe_stopped(a);
}

void sto_audit_stop(struct sto_audit *a, void (*cb)(void *arg), void *arg)
{
	a->stopping = true;
	a->stop_cb = cb;
	a->stop_arg = arg;
	uv_close((uv_handle_t *)&a->timer, on_timer_closed);
}

void sto_audit_free(struct sto_audit *a)
{
	if (!a)
		return;
	free(a->keys);
	free(a);
}
