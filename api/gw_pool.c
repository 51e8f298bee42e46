/* gw_pool.c: a few storage clients per node, connected on first use and as
 * the load needs them, with a "down" period so that requests go to handoffs
 * at once instead of waiting on a dead or hung node.
 *
 * Why several connections: a node answers each connection in order and a
 * streamed GET holds that order until its last byte, so on one connection a
 * HEAD or a small GET waits behind every megabyte queued ahead of it (and a
 * PUT's payload delays every request sent after it). Requests go to the
 * connection with the fewest pending; another opens when all are busy.
 * Reads have connections of their own: a node stops reading a connection
 * while a PUT payload waits for room, and a read queued behind it would
 * wait too - and would look like a hung node (gw_node_check). */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { CONN_IDLE, CONN_CONNECTING, CONN_UP };

/* A connection with this many requests pending is busy: the next request
 * opens another one if the node has room for it. */
#define GW_CONN_BUSY	2

struct gw_wait {
	struct gw_wait *next;
	gw_node_fn cb;
	void *arg;
};

struct gw_conn {
	struct gw_node *node;
	sto_client *c;
	int state;
	uint64_t since;			/* CONNECTING: started, monotonic ns */
};

struct gw_node {
	struct gw_pool *pool;
	struct gw_node *next;
	char addr[RING_NAME_MAX + 1];
	char host[RING_NAME_MAX + 1];
	uint16_t port;
	struct gw_conn conn[GW_POOL_MAX_CONNS];
	unsigned nup, nconnecting;
	uint64_t down_until;		/* monotonic ns */
	unsigned fails;			/* consecutive */
	struct gw_wait *waiters, **wtail;	/* for the first connection */
};

struct gw_pool {
	uv_loop_t *loop;
	uint32_t down_ms, deadline_ms, hung_ms;
	unsigned nconns;		/* per class */
	bool closing;
	struct gw_node *nodes;
};

int gw_pool_new(uv_loop_t *loop, const struct gw_pool_config *cfg,
		struct gw_pool **out)
{
	struct gw_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->down_ms = cfg->down_ms;
	p->deadline_ms = cfg->deadline_ms;
	p->hung_ms = cfg->hung_ms;
	p->nconns = cfg->conns_per_node;
	if (p->nconns < 1)
		p->nconns = 1;
	if (p->nconns > GW_POOL_MAX_CONNS / 2)
		p->nconns = GW_POOL_MAX_CONNS / 2;
	*out = p;
	return 0;
}

static void node_wake(struct gw_node *n, sto_client *c, int err)
{
	struct gw_wait *w = n->waiters;

	n->waiters = NULL;
	n->wtail = &n->waiters;
	while (w) {
		struct gw_wait *next = w->next;

		w->cb(w->arg, c, err);
		free(w);
		w = next;
	}
}

/* Closes every connection of n (their pending requests fail now). */
static void node_drop(struct gw_node *n)
{
	for (unsigned i = 0; i < GW_POOL_MAX_CONNS; i++) {
		struct gw_conn *k = &n->conn[i];
		sto_client *c = k->c;

		if (k->state == CONN_UP)
			n->nup--;
		else if (k->state == CONN_CONNECTING)
			n->nconnecting--;
		k->c = NULL;
		k->state = CONN_IDLE;
		if (c)
			sto_client_close(c);	/* its connect callback sees k->c != c */
	}
}

void gw_pool_close(struct gw_pool *p)
{
	p->closing = true;
	for (struct gw_node *n = p->nodes; n; n = n->next) {
		node_drop(n);
		node_wake(n, NULL, -ECANCELED);
	}
}

void gw_pool_free(struct gw_pool *p)
{
	struct gw_node *n, *next;

	if (!p)
		return;
	for (n = p->nodes; n; n = next) {
		next = n->next;
		node_drop(n);
		node_wake(n, NULL, -ECANCELED);
		free(n);
	}
	free(p);
}

struct gw_node *gw_pool_node(struct gw_pool *p, const char *addr)
{
	struct gw_node *n;
	const char *colon;
	char *end;
	unsigned long port;

	for (n = p->nodes; n; n = n->next)
		if (!strcmp(n->addr, addr))
			return n;
	colon = strrchr(addr, ':');
	if (!colon || strlen(addr) > RING_NAME_MAX)
		return NULL;
	port = strtoul(colon + 1, &end, 10);
	if (*end || !port || port > 65535)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->pool = p;
	snprintf(n->addr, sizeof(n->addr), "%s", addr);
	memcpy(n->host, addr, (size_t)(colon - addr));
	if (n->host[0] == '[') {		/* [::1]:port */
		size_t l = strlen(n->host);

		memmove(n->host, n->host + 1, l);
		if (l >= 2 && n->host[l - 2] == ']')
			n->host[l - 2] = '\0';
	}
	n->port = (uint16_t)port;
	for (unsigned i = 0; i < GW_POOL_MAX_CONNS; i++)
		n->conn[i].node = n;
	n->wtail = &n->waiters;
	n->next = p->nodes;
	p->nodes = n;
	return n;
}

bool gw_node_is_down(const struct gw_node *n)
{
	return n->down_until && strata_now_ns() < n->down_until;
}

static void node_mark_down(struct gw_node *n, const char *why)
{
	uint64_t ms = n->pool->down_ms;
	unsigned f = n->fails < 2 ? n->fails : 2;

	n->fails++;
	ms <<= f;
	n->down_until = strata_now_ns() + ms * 1000000ull;
	log_warn("storage node %s: down for %llu ms (%s)", n->addr,
		 (unsigned long long)ms, why);
}

static bool node_check_hung(struct gw_node *n, uint32_t deadline_ms);

static void on_node_connect(sto_client *c, int status, void *arg)
{
	struct gw_conn *k = arg;
	struct gw_node *n = k->node;

	if (k->c != c)		/* dropped meanwhile (pool freed or failed) */
		return;
	n->nconnecting--;
	if (status < 0) {
		log_warn("storage node %s: connect: %s", n->addr, sto_strerror(status));
		k->c = NULL;
		k->state = CONN_IDLE;
		sto_client_close(c);
		if (n->nup == 0 && n->nconnecting == 0) {
			node_mark_down(n, "connect failed");
			node_wake(n, NULL, status);
		}
		return;
	}
	k->state = CONN_UP;
	k->since = strata_now_ns();
	n->nup++;
	node_wake(n, c, 0);
}

/* Starts connection k; false (and the node marked down) if that failed. */
static bool conn_open(struct gw_node *n, struct gw_conn *k)
{
	int ret;

	k->state = CONN_CONNECTING;
	k->since = strata_now_ns();
	n->nconnecting++;
	ret = sto_client_connect(n->pool->loop, n->host, n->port, on_node_connect,
				 k, &k->c);
	if (ret < 0) {
		k->c = NULL;
		k->state = CONN_IDLE;
		n->nconnecting--;
		return false;
	}
	return true;
}

/* A connect that hangs (a host that drops SYNs) would hold its waiters for
 * minutes: past hung_ms it counts as failed. Checked when the node is
 * asked for (the waiters' own deadlines bound their wait meanwhile). */
static void node_check_connects(struct gw_node *n)
{
	uint64_t now = strata_now_ns();
	bool expired = false;

	if (!n->pool->hung_ms || !n->nconnecting)
		return;
	for (unsigned i = 0; i < GW_POOL_MAX_CONNS; i++) {
		struct gw_conn *k = &n->conn[i];

		if (k->state == CONN_CONNECTING &&
		    now - k->since > n->pool->hung_ms * 1000000ull &&
		    !sto_client_peer_ready(k->c)) {
			sto_client *c = k->c;

			k->c = NULL;
			k->state = CONN_IDLE;
			n->nconnecting--;
			sto_client_close(c);
			expired = true;
		}
	}
	if (expired && n->nup == 0 && n->nconnecting == 0) {
		node_mark_down(n, "connect timed out");
		node_wake(n, NULL, -ETIMEDOUT);
	}
}

/* cls 0: writes and everything else, slots [0, nconns); 1: reads, slots
 * [GW_POOL_MAX_CONNS / 2, + nconns). */
static void node_acquire(struct gw_node *n, unsigned cls, gw_node_fn cb, void *arg)
{
	struct gw_conn *best = NULL, *idle = NULL;
	unsigned best_pending = 0, base = cls * (GW_POOL_MAX_CONNS / 2);
	bool connecting = false;
	struct gw_wait *w;

	if (n->pool->closing) {
		cb(arg, NULL, -ECANCELED);
		return;
	}
	node_check_connects(n);
	/* Requests waited on n for hung_ms with no answer: fail this one now
	 * rather than queue it behind them. */
	if (n->pool->deadline_ms && node_check_hung(n, n->pool->deadline_ms)) {
		cb(arg, NULL, -EHOSTDOWN);
		return;
	}
	for (unsigned i = base; i < base + n->pool->nconns; i++) {
		struct gw_conn *k = &n->conn[i];

		if (k->state == CONN_CONNECTING)
			connecting = true;
		if (k->state == CONN_UP) {
			unsigned p = sto_client_pending(k->c);

			if (!best || p < best_pending) {
				best = k;
				best_pending = p;
			}
		} else if (k->state == CONN_IDLE && !idle) {
			idle = k;
		}
	}
	/* One more connection while all are busy, one connect at a time. */
	if (idle && !connecting && !gw_node_is_down(n) &&
	    (!best || best_pending >= GW_CONN_BUSY)) {
		if (!conn_open(n, idle) && !best) {
			node_mark_down(n, "cannot connect");
			cb(arg, NULL, -ENOTCONN);
			return;
		}
	}
	if (best) {
		cb(arg, best->c, 0);
		return;
	}
	if (!n->nconnecting) {
		cb(arg, NULL, -EHOSTDOWN);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		cb(arg, NULL, -ENOMEM);
		return;
	}
	w->cb = cb;
	w->arg = arg;
	*n->wtail = w;
	n->wtail = &w->next;
}

void gw_node_acquire(struct gw_node *n, gw_node_fn cb, void *arg)
{
	node_acquire(n, 0, cb, arg);
}

void gw_node_acquire_read(struct gw_node *n, gw_node_fn cb, void *arg)
{
	node_acquire(n, 1, cb, arg);
}

static bool is_answer(int err)
{
	switch (err) {
	case -ENOENT: case -ENOSPC: case STO_ECONFLICT: case STO_ECRC:
	case -EMSGSIZE: case -ENOMEM: case -EINVAL: case -ENAMETOOLONG:
		return true;	/* the node answered: it is alive */
	default:
		return false;
	}
}

void gw_node_failed(struct gw_node *n, int err)
{
	if (is_answer(err))
		return;
	/* Already down: one failure, however many requests report it. */
	if (!gw_node_is_down(n))
		node_mark_down(n, sto_strerror(err));
	node_drop(n);		/* fails its pending requests */
	node_wake(n, NULL, -EHOSTDOWN);
}

/* How long n has kept reads waiting without a sign of life on any of its
 * connections (ms; 0 when no read waits or it moved since). Only reads
 * count: a write may rightly wait seconds for a node's flush (the write
 * deadline bounds it), a read on its own connection may not. */
static uint64_t node_silent_ms(const struct gw_node *n)
{
	uint64_t last = 0, busy = 0;

	for (unsigned i = 0; i < GW_POOL_MAX_CONNS; i++) {
		const struct gw_conn *k = &n->conn[i];
		uint64_t t, b;

		if (k->state != CONN_UP)
			continue;
		if (sto_client_peer_ready(k->c))
			return 0;	/* answers wait for our loop: alive */
		t = sto_client_last_progress(k->c);
		if (t > last)
			last = t;
		if (i < GW_POOL_MAX_CONNS / 2)
			continue;	/* not a read connection */
		b = sto_client_busy_since(k->c);
		if (b && (!busy || b < busy))
			busy = b;	/* the longest wait */
	}
	if (!busy)
		return 0;
	if (last < busy)
		last = busy;
	return (strata_now_ns() - last) / 1000000u;
}

/* Silent past the hung threshold: down, connections dropped. */
static bool node_check_hung(struct gw_node *n, uint32_t deadline_ms)
{
	/* A loaded machine can starve a healthy node for a deadline or two:
	 * "hung" takes hung_ms of silence, unless the node was just down (it
	 * must prove itself alive again within one deadline). */
	uint64_t hung_ms = n->fails ? deadline_ms : n->pool->hung_ms;

	if (!n->nup || node_silent_ms(n) < hung_ms)
		return false;
	if (!gw_node_is_down(n))
		node_mark_down(n, "hung: no answer while requests wait");
	node_drop(n);
	node_wake(n, NULL, -EHOSTDOWN);
	return true;
}

int gw_node_check(struct gw_node *n, uint32_t deadline_ms)
{
	if (node_check_hung(n, deadline_ms))
		return GW_NODE_HUNG;
	return node_silent_ms(n) < deadline_ms ? GW_NODE_MOVING : GW_NODE_SILENT;
}

void gw_node_ok(struct gw_node *n)
{
	n->fails = 0;
	n->down_until = 0;
}
