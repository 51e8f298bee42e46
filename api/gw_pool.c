/* gw_pool.c: one storage client per node, connected on first use and again
 * after a failure, with a "down" period so that requests go to handoffs at
 * once instead of waiting on a dead node. */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { NODE_IDLE, NODE_CONNECTING, NODE_UP };

struct gw_wait {
	struct gw_wait *next;
	gw_node_fn cb;
	void *arg;
};

struct gw_node {
	struct gw_pool *pool;
	struct gw_node *next;
	char addr[RING_NAME_MAX + 1];
	char host[RING_NAME_MAX + 1];
	uint16_t port;
	int state;
	sto_client *c;
	uint64_t down_until;		/* monotonic ns */
	unsigned fails;			/* consecutive */
	struct gw_wait *waiters, **wtail;
};

struct gw_pool {
	uv_loop_t *loop;
	uint32_t down_ms;
	bool closing;
	struct gw_node *nodes;
};

int gw_pool_new(uv_loop_t *loop, uint32_t down_ms, struct gw_pool **out)
{
	struct gw_pool *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->down_ms = down_ms;
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

void gw_pool_close(struct gw_pool *p)
{
	p->closing = true;
	for (struct gw_node *n = p->nodes; n; n = n->next) {
		sto_client *c = n->c;

		n->c = NULL;
		n->state = NODE_IDLE;
		if (c)
			sto_client_close(c);
		node_wake(n, NULL, -ECANCELED);
	}
}

void gw_pool_free(struct gw_pool *p)
{
	struct gw_node *n, *next;

	if (!p)
		return;
	for (n = p->nodes; n; n = next) {
		sto_client *c = n->c;

		next = n->next;
		n->c = NULL;
		n->state = NODE_IDLE;
		if (c)
			sto_client_close(c);	/* its connect callback sees closing */
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
	n->wtail = &n->waiters;
	n->next = p->nodes;
	p->nodes = n;
	return n;
}

bool gw_node_is_down(const struct gw_node *n)
{
	return n->down_until && strata_now_ns() < n->down_until;
}

static void node_mark_down(struct gw_node *n)
{
	uint64_t ms = n->pool->down_ms;
	unsigned f = n->fails < 2 ? n->fails : 2;

	n->fails++;
	ms <<= f;
	n->down_until = strata_now_ns() + ms * 1000000ull;
	log_warn("storage node %s: down for %llu ms", n->addr, (unsigned long long)ms);
}

static void on_node_connect(sto_client *c, int status, void *arg)
{
	struct gw_node *n = arg;

	if (n->c != c)		/* dropped meanwhile (pool freed or failed) */
		return;
	if (status < 0) {
		log_warn("storage node %s: connect: %s", n->addr, sto_strerror(status));
		n->c = NULL;
		n->state = NODE_IDLE;
		node_mark_down(n);
		sto_client_close(c);
		node_wake(n, NULL, status);
		return;
	}
	n->state = NODE_UP;
	node_wake(n, c, 0);
}

void gw_node_acquire(struct gw_node *n, gw_node_fn cb, void *arg)
{
	struct gw_wait *w;
	int ret;

	if (n->pool->closing) {
		cb(arg, NULL, -ECANCELED);
		return;
	}
	if (n->state == NODE_UP) {
		cb(arg, n->c, 0);
		return;
	}
	if (n->state == NODE_IDLE && gw_node_is_down(n)) {
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
	if (n->state == NODE_CONNECTING)
		return;
	n->state = NODE_CONNECTING;
	ret = sto_client_connect(n->pool->loop, n->host, n->port, on_node_connect,
				 n, &n->c);
	if (ret < 0) {
		n->c = NULL;
		n->state = NODE_IDLE;
		node_mark_down(n);
		node_wake(n, NULL, ret);
	}
}

void gw_node_failed(struct gw_node *n, int err)
{
	sto_client *c;

	switch (err) {
	case -ENOENT: case -ENOSPC: case STO_ECONFLICT: case STO_ECRC:
	case -EMSGSIZE: case -ENOMEM:
		return;		/* an answer: the node is alive */
	default:
		break;
	}
	/* Already down: one failure, however many requests report it. */
	if (!gw_node_is_down(n))
		node_mark_down(n);
	c = n->c;
	if (c && n->state == NODE_UP) {
		n->c = NULL;
		n->state = NODE_IDLE;
		sto_client_close(c);	/* fails its pending requests */
	}
}

void gw_node_ok(struct gw_node *n)
{
	n->fails = 0;
	n->down_until = 0;
}
