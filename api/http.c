/* api/http.c: the HTTP/1.1 server on libuv.
 *
 * One connection serves one request at a time (pipelined requests wait in
 * the read buffer, bounded by it). Everything a connection does is driven
 * from conn_process(), run from libuv callbacks only: read, write
 * completion, timer, and the server's idle handle, which runs the
 * connections that an http_* call marked as having work (conn_kick). So a
 * handler's callbacks are never re-entered from its own http_* calls, and a
 * request never ends inside one.
 *
 * The read buffer is also the body buffer: a body piece is handed to
 * on_body in place, and if the handler pauses the request there, that part
 * of the buffer stays untouched (lent) until it resumes. Reading goes on
 * into the rest of the buffer and stops when it is full: TCP then pushes
 * back on the client. Memory per connection is the read buffer, the header
 * table, and whatever writes the handler has in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "internal.h"

#define HTTP_MAX_IOV		64	/* buffers per http_resp_* call */
#define HTTP_HEAD_BASE		256	/* status line, Date, framing, Connection */
#define HTTP_LINGER_MS		2000	/* reading on after a half close */
#define HTTP_MAX_DRAIN		(1u << 20)	/* refused body bytes read to keep a connection */

/* An intrusive doubly-linked list; a zeroed node is "not on a list". */
struct list {
	struct list *prev, *next;
};

static void list_init(struct list *l)
{
	l->prev = l->next = l;
}

static bool list_empty(const struct list *l)
{
	return l->next == l;
}

static void list_add_tail(struct list *l, struct list *n)
{
	n->prev = l->prev;
	n->next = l;
	l->prev->next = n;
	l->prev = n;
}

static void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

#define list_entry(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

enum resp_state {
	RESP_NONE,		/* nothing sent */
	RESP_STREAM,		/* head sent, http_resp_write pieces follow */
	RESP_ENDED,		/* all queued; done once its writes complete */
};

enum timer_kind { T_NONE, T_IDLE, T_HEAD, T_BODY, T_SEND };

struct http_req {
	struct http_conn *c;
	void *data;			/* the handler's */
	bool active;			/* between HTTP_RX_HEAD and on_done */
	bool internal;			/* the server's own error reply: no handler */
	bool keep_alive;		/* client allows it and nothing forbade it */
	bool expect;			/* 100-continue asked, not yet answered */
	bool is_head;
	bool paused;			/* http_req_pause: no parsing, no 100 */
	bool lent;			/* paused inside on_body: the piece is the handler's */
	bool decided;			/* on_request returned and was not paused */
	bool discard;			/* the handler wants no (more) body */
	bool body_end;			/* HTTP_RX_END seen */
	int err;			/* first failure, for on_done */
	int64_t content_length;		/* -1: chunked or none */
	enum resp_state resp;
	bool resp_chunked;
	bool resp_nobody;		/* HEAD, 1xx, 204, 304 */
	bool resp_until_close;		/* HTTP/1.0, length unknown */
	uint64_t resp_left;		/* streamed with Content-Length */
	unsigned nwrites;		/* writes of this request in flight */
	char *hdrs;			/* "Name: value\r\n"... from http_resp_header */
	uint32_t hdrs_len, hdrs_cap;
};

struct http_write {
	uv_write_t uv;
	struct http_conn *c;
	http_write_cb cb;
	void *arg;
	int status;			/* for writes completed without I/O */
	struct list link;		/* c->done: completed without I/O */
	uint32_t len;
	char buf[];			/* head, chunk framing or copied body */
};

struct http_conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_timer_t timer;
	uv_shutdown_t shut;		/* lingering close: our FIN */
	struct http_server *srv;
	struct list link;		/* srv->conns */
	struct list kick;		/* srv->kicked, when on it */
	struct list done;		/* struct http_write completed without I/O */
	int handles;			/* open uv handles; freed at 0 */
	bool reading, eof, closing, busy;
	bool lingering;			/* half-closed, discarding input */
	bool zombie;			/* closed with a body piece lent: kept until resume */
	bool draining;			/* discarding a body the handler refused */
	int close_err;
	char *rbuf;			/* [0, roff) parsed, [roff, rlen) not yet */
	size_t rcap, roff, rlen;
	struct http_rx rx;
	struct http_req req;
	unsigned nwrites;		/* all writes in flight */
	enum timer_kind tkind;
	bool tprogress;			/* bytes moved since the timer was set */
};

struct http_server {
	uv_loop_t *loop;
	struct http_config cfg;
	struct http_handler h;
	uv_tcp_t listener;
	uv_idle_t idle;			/* runs the kicked connections */
	uv_timer_t grace;		/* shutdown deadline */
	bool listening;
	bool stopping;			/* http_server_shutdown was called */
	bool closing;			/* idle and grace handles closing */
	int handles;			/* handles still to close in shutdown */
	int port;
	struct list conns;
	struct list kicked;
	struct list reap;		/* zombies whose handler resumed: free them */
	unsigned nconns;
	void (*done)(struct http_server *, void *);
	void *done_arg;
	time_t date_sec;
	char date[HTTP_DATE_LEN + 1];
};

static void conn_process(struct http_conn *c);
static void conn_close(struct http_conn *c, int err);
static void srv_idle_cb(uv_idle_t *idle);
static void conn_finalize(struct http_conn *c);
static void srv_maybe_done(struct http_server *srv);

/* ------------------------------------------------------------- config */

void http_config_init(struct http_config *cfg)
{
	*cfg = (struct http_config){
		.read_buf = 64 * 1024,
		.lim = {
			.max_url = 8 * 1024,
			.max_header_bytes = 32 * 1024,
			.max_headers = 100,
			.max_body = 5ull << 30,
		},
		.max_resp_header_bytes = 16 * 1024,
		.max_conns = 1024,
		.header_timeout_ms = 30000,
		.idle_timeout_ms = 60000,
		.body_timeout_ms = 60000,
		.send_timeout_ms = 60000,
		.backlog = 511,
	};
}

const char http_config_help[] =
	"read_buf=SIZE            per-connection read buffer (64K)\n"
	"max_url=SIZE             longest request target, else 414 (8K)\n"
	"max_header_bytes=SIZE    request header section, else 431 (32K)\n"
	"max_headers=N            header fields, else 431 (100)\n"
	"max_body=SIZE            request body, else 413 (5G)\n"
	"max_resp_header_bytes=SIZE  headers a handler may add (16K)\n"
	"max_conns=N              open connections (1024)\n"
	"header_timeout_ms=MS     first byte to end of headers (30000)\n"
	"idle_timeout_ms=MS       keep-alive idle time (60000)\n"
	"body_timeout_ms=MS       longest pause in a request body (60000)\n"
	"send_timeout_ms=MS       longest wait for the client to read (60000)\n";

/* "123", "64K", "5G": a size with an optional binary suffix. */
static int parse_size(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	}
	if (*end || v > (max >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int http_config_set(struct http_config *cfg, const char *key, const char *value)
{
	static const struct {
		const char *key;
		size_t off;
		int size;			/* 4 or 8 bytes */
		uint64_t min, max;
	} keys[] = {
#define K(name, field, lo, hi) \
	{ name, offsetof(struct http_config, field), sizeof(cfg->field), lo, hi }
		K("read_buf", read_buf, 1024, 1u << 30),
		K("max_url", lim.max_url, 16, 1u << 20),
		K("max_header_bytes", lim.max_header_bytes, 64, 1u << 24),
		K("max_headers", lim.max_headers, 1, 1u << 16),
		K("max_body", lim.max_body, 0, UINT64_MAX >> 1),
		K("max_resp_header_bytes", max_resp_header_bytes, 0, 1u << 24),
		K("max_conns", max_conns, 1, 1u << 24),
		K("header_timeout_ms", header_timeout_ms, 1, UINT32_MAX),
		K("idle_timeout_ms", idle_timeout_ms, 1, UINT32_MAX),
		K("body_timeout_ms", body_timeout_ms, 1, UINT32_MAX),
		K("send_timeout_ms", send_timeout_ms, 1, UINT32_MAX),
#undef K
	};
	uint64_t v;

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		char *field = (char *)cfg + keys[i].off;

		if (strcmp(key, keys[i].key) != 0)
			continue;
		if (parse_size(value, keys[i].max, &v) < 0 || v < keys[i].min)
			return -EINVAL;
		if (keys[i].size == 8) {
			memcpy(field, &v, 8);
		} else if (keys[i].size == 4) {
			uint32_t v32 = (uint32_t)v;

			memcpy(field, &v32, 4);
		} else {
			return -EINVAL;
		}
		return 0;
	}
	return -ENOENT;
}

/* ---------------------------------------------------------- connections */

/* Marks c as having work for conn_process. Inside conn_process (busy) its
 * loop sees the change itself, so nothing is queued. */
static void conn_kick(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	if (c->closing || c->busy || c->kick.next)
		return;
	list_add_tail(&srv->kicked, &c->kick);
	uv_idle_start(&srv->idle, srv_idle_cb);
}

static void srv_idle_cb(uv_idle_t *idle)
{
	struct http_server *srv = idle->data;
	struct list batch;

	/* Run this batch only: connections kicked meanwhile wait a turn. */
	list_init(&batch);
	if (!list_empty(&srv->kicked)) {
		batch.next = srv->kicked.next;
		batch.prev = srv->kicked.prev;
		batch.next->prev = &batch;
		batch.prev->next = &batch;
		list_init(&srv->kicked);
	}
	while (!list_empty(&batch)) {
		struct http_conn *c = list_entry(batch.next, struct http_conn, kick);

		list_del(&c->kick);
		conn_process(c);
	}
	while (!list_empty(&srv->reap)) {
		struct http_conn *c = list_entry(srv->reap.next, struct http_conn, kick);

		list_del(&c->kick);
		conn_finalize(c);
	}
	if (list_empty(&srv->kicked))
		uv_idle_stop(idle);
}

static void req_reset(struct http_req *req)
{
	struct http_conn *c = req->c;
	char *hdrs = req->hdrs;
	uint32_t cap = req->hdrs_cap;

	*req = (struct http_req){ .c = c, .hdrs = hdrs, .hdrs_cap = cap };
}

static void conn_free(struct http_conn *c)
{
	struct http_server *srv = c->srv;

	list_del(&c->link);
	srv->nconns--;
	http_rx_free(&c->rx);
	free(c->req.hdrs);
	free(c->rbuf);
	free(c);
	srv_maybe_done(srv);
}

/* The last of a closed connection: the handler learns the request is
 * gone, then the memory goes. */
static void conn_finalize(struct http_conn *c)
{
	struct http_req *req = &c->req;

	if (req->active && !req->internal && c->srv->h.on_done)
		c->srv->h.on_done(req, req->err ? req->err :
				  c->close_err ? c->close_err : -ECONNRESET);
	conn_free(c);
}

static void conn_handle_closed(uv_handle_t *h)
{
	struct http_conn *c = h->data;
	struct http_req *req = &c->req;

	if (--c->handles > 0)
		return;
	/* libuv has cancelled the writes in flight (their callbacks ran); the
	 * ones that never needed I/O complete here. Then the handler learns
	 * the request is gone, last. */
	while (!list_empty(&c->done)) {
		struct http_write *w = list_entry(c->done.next, struct http_write, link);

		list_del(&w->link);
		if (w->cb)
			w->cb(req, -ECANCELED, w->arg);
		free(w);
	}
	if (req->active && req->lent) {
		/* The handler may be writing the lent piece downstream: the
		 * read buffer, and so the request, live until it resumes. */
		c->zombie = true;
		return;
	}
	conn_finalize(c);
}

static void conn_close(struct http_conn *c, int err)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_err = err;
	if (c->kick.next)
		list_del(&c->kick);
	uv_close(&c->h.handle, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_timer_cb(uv_timer_t *t);
static void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void conn_shutdown_cb(uv_shutdown_t *sh, int status)
{
	struct http_conn *c = sh->data;

	if (status < 0 && !c->closing)
		conn_close(c, 0);
}

static void conn_linger_cb(uv_timer_t *t)
{
	conn_close(t->data, 0);
}

/* Closes after the last response without resetting the connection: a
 * close() with client bytes unread sends a TCP reset, which can destroy
 * the response still in flight (a 413 to a client busy sending its body).
 * So: send our FIN once the writes are out, read and drop what still
 * comes, close at the client's FIN or after HTTP_LINGER_MS. */
static void conn_close_lingering(struct http_conn *c)
{
	if (c->closing || c->lingering)
		return;
	if (c->eof) {
		conn_close(c, 0);
		return;
	}
	c->lingering = true;
	c->shut.data = c;
	if (uv_shutdown(&c->shut, &c->h.stream, conn_shutdown_cb) < 0) {
		conn_close(c, 0);
		return;
	}
	c->roff = c->rlen = 0;
	if (!c->reading) {
		if (uv_read_start(&c->h.stream, conn_alloc_cb, conn_read_cb) < 0) {
			conn_close(c, 0);
			return;
		}
		c->reading = true;
	}
	c->tkind = T_NONE;
	uv_timer_start(&c->timer, conn_linger_cb, HTTP_LINGER_MS, 0);
}

static int conn_new(struct http_server *srv, struct http_conn **out)
{
	struct http_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->rcap = srv->cfg.read_buf;
	c->rbuf = malloc(c->rcap);
	if (!c->rbuf) {
		free(c);
		return -ENOMEM;
	}
	c->srv = srv;
	c->req.c = c;
	list_init(&c->done);
	http_rx_init(&c->rx, &srv->cfg.lim);
	uv_timer_init(srv->loop, &c->timer);
	c->timer.data = c;
	c->h.handle.data = c;
	list_add_tail(&srv->conns, &c->link);
	srv->nconns++;
	*out = c;
	return 0;
}

/* ------------------------------------------------------------- writing */

static void write_done(uv_write_t *uv, int status)
{
	struct http_write *w = list_entry(uv, struct http_write, uv);
	struct http_conn *c = w->c;

	c->nwrites--;
	c->req.nwrites--;
	c->tprogress = true;
	if (w->cb)
		w->cb(&c->req, status, w->arg);
	free(w);
	if (status < 0) {
		if (status != UV_ECANCELED)
			log_debug("write: %s", uv_strerror(status));
		conn_close(c, status);
		return;
	}
	conn_process(c);
}

static struct http_write *write_new(size_t len)
{
	struct http_write *w = malloc(sizeof(*w) + len);

	if (w) {
		memset(w, 0, sizeof(*w));
		w->len = (uint32_t)len;
	}
	return w;
}

/* Queues bufs (w->buf, if used, is among them); w is freed on completion.
 * On error w is freed and its callback not called. */
static int conn_write(struct http_conn *c, struct http_write *w,
		      const uv_buf_t *bufs, unsigned n, http_write_cb cb, void *arg)
{
	int r;

	w->c = c;
	w->cb = cb;
	w->arg = arg;
	r = uv_write(&w->uv, &c->h.stream, bufs, n, write_done);
	if (r < 0) {
		free(w);
		return r;
	}
	if (c->nwrites == 0)
		c->tprogress = true;
	c->nwrites++;
	c->req.nwrites++;
	return 0;
}

/* A write with nothing to send (HEAD bodies): completes from the loop. */
static int conn_write_none(struct http_conn *c, http_write_cb cb, void *arg)
{
	struct http_write *w;

	if (!cb)
		return 0;
	w = write_new(0);
	if (!w)
		return -ENOMEM;
	w->c = c;
	w->cb = cb;
	w->arg = arg;
	list_add_tail(&c->done, &w->link);
	c->req.nwrites++;
	conn_kick(c);
	return 0;
}

static void conn_flush_done(struct http_conn *c)
{
	while (!list_empty(&c->done) && !c->closing) {
		struct http_write *w = list_entry(c->done.next, struct http_write, link);

		list_del(&w->link);
		c->req.nwrites--;
		w->cb(&c->req, 0, w->arg);
		free(w);
	}
}

static const char *srv_date(struct http_server *srv)
{
	time_t now = time(NULL);

	if (now != srv->date_sec) {
		if (http_date_format(now, srv->date) < 0)
			strcpy(srv->date, "Thu, 01 Jan 1970 00:00:00 GMT");
		srv->date_sec = now;
	}
	return srv->date;
}

static bool status_has_body(int status)
{
	return !(status < 200 || status == 204 || status == 304);
}

/* Formats the response head into a new write with extra spare bytes after
 * it; content_length -1 = chunked or until close. streaming: the body is
 * to come (http_resp_start), which accepts a request body still expected. */
static int resp_head(struct http_req *req, int status, int64_t content_length,
		     bool streaming, size_t extra, struct http_write **out)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct http_conn *c = req->c;
	struct http_server *srv = c->srv;
	size_t cap = HTTP_HEAD_BASE + sizeof(cont) + req->hdrs_len + extra;
	struct http_write *w;
	int n, m;

	if (req->resp != RESP_NONE)
		return -EALREADY;
	if (status < 200 || status > 999)
		return -EINVAL;
	if (c->closing)
		return -ECANCELED;
	w = write_new(cap);
	if (!w)
		return -ENOMEM;

	n = 0;
	if (!req->body_end && req->expect) {
		if (streaming && !req->paused) {
			/* Answering while reading the body (echo): the
			 * body is wanted, so it is continued first. */
			memcpy(w->buf, cont, sizeof(cont) - 1);
			n = sizeof(cont) - 1;
			req->expect = false;
		} else {
			/* A final answer to an unanswered 100-continue:
			 * the client may or may not send the body now; only
			 * closing keeps the next request's framing sure. */
			req->keep_alive = false;
		}
		req->expect = false;	/* no 100 ever follows a final head */
	}
	if (srv->stopping)
		req->keep_alive = false;
	req->resp_nobody = req->is_head || !status_has_body(status);
	if (status_has_body(status) && content_length < 0) {
		if (c->rx.p.http_major == 1 && c->rx.p.http_minor >= 1) {
			req->resp_chunked = true;
		} else {
			req->resp_until_close = true;
			req->keep_alive = false;
		}
	}
	/* A HEAD response announces the GET's length but sends no body: nothing
	 * is left to write, and the connection stays open for the next request. */
	req->resp_left = content_length > 0 && !req->resp_nobody ?
			 (uint64_t)content_length : 0;

	n += snprintf(w->buf + n, cap - n, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
		     http_reason(status), srv_date(srv));
	if (status_has_body(status)) {
		if (content_length >= 0)
			n += snprintf(w->buf + n, cap - n, "Content-Length: %" PRId64 "\r\n",
				      content_length);
		else if (req->resp_chunked)
			n += snprintf(w->buf + n, cap - n, "Transfer-Encoding: chunked\r\n");
	}
	if (req->hdrs_len) {
		memcpy(w->buf + n, req->hdrs, req->hdrs_len);
		n += req->hdrs_len;
	}
	if (!req->keep_alive)
		m = snprintf(w->buf + n, cap - n, "Connection: close\r\n\r\n");
	else if (c->rx.p.http_minor == 0)
		m = snprintf(w->buf + n, cap - n, "Connection: keep-alive\r\n\r\n");
	else
		m = snprintf(w->buf + n, cap - n, "\r\n");
	w->len = (uint32_t)(n + m);
	*out = w;
	return 0;
}

/* The request's response is fully queued: done once its writes are. */
static void resp_ended(struct http_req *req)
{
	req->resp = RESP_ENDED;
	if (!req->body_end)
		req->discard = true;
	conn_kick(req->c);
}

static unsigned bufs_total(const uv_buf_t *bufs, unsigned n, uint64_t *total)
{
	*total = 0;
	for (unsigned i = 0; i < n; i++)
		*total += bufs[i].len;
	return n;
}

int http_resp_header(struct http_req *req, const char *name, const char *value)
{
	size_t nlen = strlen(name), vlen = strlen(value), need;

	if (req->resp != RESP_NONE)
		return -EALREADY;
	if (!http_is_token(name, nlen) || !http_is_field_value(value, vlen))
		return -EINVAL;
	/* The server owns the framing. */
	if (http_name_eq(name, nlen, "content-length") ||
	    http_name_eq(name, nlen, "transfer-encoding") ||
	    http_name_eq(name, nlen, "connection") || http_name_eq(name, nlen, "date"))
		return -EINVAL;
	need = (size_t)req->hdrs_len + nlen + vlen + 4;
	if (need > req->c->srv->cfg.max_resp_header_bytes)
		return -ENOSPC;
	if (need > req->hdrs_cap) {
		size_t cap = req->hdrs_cap ? req->hdrs_cap : 256;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(req->hdrs, cap);
		if (!p)
			return -ENOMEM;
		req->hdrs = p;
		req->hdrs_cap = (uint32_t)cap;
	}
	memcpy(req->hdrs + req->hdrs_len, name, nlen);
	req->hdrs_len += (uint32_t)nlen;
	memcpy(req->hdrs + req->hdrs_len, ": ", 2);
	req->hdrs_len += 2;
	memcpy(req->hdrs + req->hdrs_len, value, vlen);
	req->hdrs_len += (uint32_t)vlen;
	memcpy(req->hdrs + req->hdrs_len, "\r\n", 2);
	req->hdrs_len += 2;
	return 0;
}

int http_resp_send(struct http_req *req, int status, const uv_buf_t *bufs,
		   unsigned nbufs, http_write_cb cb, void *arg)
{
	uv_buf_t iov[HTTP_MAX_IOV + 1];
	struct http_write *w;
	uint64_t total;
	int r;

	if (nbufs > HTTP_MAX_IOV)
		return -EINVAL;
	bufs_total(bufs, nbufs, &total);
	if (total > INT64_MAX)
		return -EINVAL;
	r = resp_head(req, status, status_has_body(status) ? (int64_t)total : 0, false, 0, &w);
	if (r < 0)
		return r;
	iov[0] = uv_buf_init(w->buf, w->len);
	if (req->resp_nobody)
		nbufs = 0;
	else if (nbufs)
		memcpy(iov + 1, bufs, nbufs * sizeof(*bufs));
	r = conn_write(req->c, w, iov, nbufs + 1, cb, arg);
	if (r < 0)
		return r;
	resp_ended(req);
	return 0;
}

int http_resp_simple(struct http_req *req, int status, const char *content_type,
		     const void *body, size_t len)
{
	struct http_write *w;
	uv_buf_t iov;
	int r;

	if (len > 1u << 20)
		return -EINVAL;
	if (content_type && len) {
		r = http_resp_header(req, "Content-Type", content_type);
		if (r < 0)
			return r;
	}
	r = resp_head(req, status, status_has_body(status) ? (int64_t)len : 0, false, len, &w);
	if (r < 0)
		return r;
	if (!req->resp_nobody && len) {
		memcpy(w->buf + w->len, body, len);
		w->len += (uint32_t)len;
	}
	iov = uv_buf_init(w->buf, w->len);
	r = conn_write(req->c, w, &iov, 1, NULL, NULL);
	if (r < 0)
		return r;
	resp_ended(req);
	return 0;
}

int http_resp_start(struct http_req *req, int status, int64_t content_length)
{
	struct http_write *w;
	uv_buf_t iov;
	int r;

	r = resp_head(req, status, content_length, true, 0, &w);
	if (r < 0)
		return r;
	iov = uv_buf_init(w->buf, w->len);
	r = conn_write(req->c, w, &iov, 1, NULL, NULL);
	if (r < 0)
		return r;
	req->resp = RESP_STREAM;
	return 0;
}

int http_resp_write(struct http_req *req, const uv_buf_t *bufs, unsigned nbufs,
		    http_write_cb cb, void *arg)
{
	uv_buf_t iov[HTTP_MAX_IOV + 2];
	struct http_write *w;
	uint64_t total;

	if (req->resp != RESP_STREAM)
		return -EALREADY;
	if (req->c->closing)
		return -ECANCELED;
	if (nbufs > HTTP_MAX_IOV)
		return -EINVAL;
	bufs_total(bufs, nbufs, &total);
	if (req->resp_nobody)		/* HEAD: the body is dropped */
		return conn_write_none(req->c, cb, arg);
	if (!req->resp_chunked && !req->resp_until_close) {
		if (total > req->resp_left)
			return -EINVAL;
		req->resp_left -= total;
	}
	if (total == 0)
		return conn_write_none(req->c, cb, arg);
	if (!req->resp_chunked) {
		w = write_new(0);
		if (!w)
			return -ENOMEM;
		return conn_write(req->c, w, bufs, nbufs, cb, arg);
	}
	/* "<hex size>\r\n" data "\r\n" */
	w = write_new(24);
	if (!w)
		return -ENOMEM;
	w->len = (uint32_t)snprintf(w->buf, 20, "%" PRIx64 "\r\n", total);
	memcpy(w->buf + 20, "\r\n", 2);
	iov[0] = uv_buf_init(w->buf, w->len);
	memcpy(iov + 1, bufs, nbufs * sizeof(*bufs));	/* nbufs > 0: total > 0 */
	iov[nbufs + 1] = uv_buf_init(w->buf + 20, 2);
	return conn_write(req->c, w, iov, nbufs + 2, cb, arg);
}

int http_resp_end(struct http_req *req)
{
	static char last_chunk[] = "0\r\n\r\n";
	struct http_write *w;
	uv_buf_t iov;
	int r;

	if (req->resp != RESP_STREAM)
		return -EALREADY;
	if (req->c->closing)
		return -ECANCELED;
	if (req->resp_chunked && !req->resp_nobody) {
		w = write_new(0);
		if (!w)
			return -ENOMEM;
		iov = uv_buf_init(last_chunk, sizeof(last_chunk) - 1);
		r = conn_write(req->c, w, &iov, 1, NULL, NULL);
		if (r < 0)
			return r;
	}
	resp_ended(req);
	if (!req->resp_chunked && !req->resp_until_close && req->resp_left) {
		/* The client is waiting for bytes that will never come. */
		req->keep_alive = false;
		req->err = -EPROTO;
		return -EPROTO;
	}
	return 0;
}

size_t http_resp_queued(const struct http_req *req)
{
	return req->c->closing ? 0 : uv_stream_get_write_queue_size(&req->c->h.stream);
}

/* ------------------------------------------------------- request access */

enum http_method http_req_method(const struct http_req *req)
{
	return (enum http_method)req->c->rx.p.method;
}

const char *http_req_method_str(const struct http_req *req)
{
	return http_method_str(http_req_method(req));
}

const char *http_req_target(const struct http_req *req, size_t *len)
{
	return http_rx_target(&req->c->rx, len);
}

const char *http_req_path(const struct http_req *req, size_t *len)
{
	size_t n;
	const char *t = http_rx_target(&req->c->rx, &n);
	const char *q = memchr(t, '?', n);

	*len = q ? (size_t)(q - t) : n;
	return t;
}

const char *http_req_query(const struct http_req *req, size_t *len)
{
	size_t n;
	const char *t = http_rx_target(&req->c->rx, &n);
	const char *q = memchr(t, '?', n);

	if (!q) {
		*len = 0;
		return NULL;
	}
	*len = n - (size_t)(q + 1 - t);
	return q + 1;
}

const char *http_req_header(const struct http_req *req, const char *name, size_t *len)
{
	return http_rx_header(&req->c->rx, name, len);
}

uint32_t http_req_header_count(const struct http_req *req)
{
	return req->c->rx.nhdr;
}

void http_req_header_at(const struct http_req *req, uint32_t i,
			const char **name, const char **value)
{
	const struct http_rx *rx = &req->c->rx;

	*name = rx->buf + rx->hdr[i].name;
	*value = rx->buf + rx->hdr[i].value;
}

int http_req_header_find(const struct http_req *req, const char *name, uint32_t from)
{
	return http_rx_header_find(&req->c->rx, name, from);
}

int64_t http_req_content_length(const struct http_req *req)
{
	return req->content_length;
}

bool http_req_is_chunked(const struct http_req *req)
{
	return req->c->rx.p.flags & F_CHUNKED;
}

bool http_req_expects_continue(const struct http_req *req)
{
	return req->expect;
}

void http_req_version(const struct http_req *req, unsigned *major, unsigned *minor)
{
	*major = req->c->rx.p.http_major;
	*minor = req->c->rx.p.http_minor;
}

void http_req_set_data(struct http_req *req, void *data)
{
	req->data = data;
}

void *http_req_data(const struct http_req *req)
{
	return req->data;
}

void *http_req_server_data(const struct http_req *req)
{
	return req->c->srv->h.opaque;
}

void http_req_pause(struct http_req *req)
{
	req->paused = true;
}

void http_req_resume(struct http_req *req)
{
	struct http_conn *c = req->c;

	if (!req->paused)
		return;
	req->paused = false;
	req->lent = false;
	if (c->zombie) {
		/* Freed from the loop, not inside this call. */
		list_add_tail(&c->srv->reap, &c->kick);
		uv_idle_start(&c->srv->idle, srv_idle_cb);
		return;
	}
	conn_kick(c);
}

void http_req_set_close(struct http_req *req)
{
	req->keep_alive = false;
}

/* ---------------------------------------------------- the state machine */

/* The server answers by itself (limits, malformed requests, timeouts):
 * a short text body and Connection: close. */
static void conn_error_reply(struct http_conn *c, int status, const char *why)
{
	struct http_req *req = &c->req;
	char body[128];
	int n;

	if (!req->active) {
		req_reset(req);
		req->active = true;
		req->internal = true;
		req->body_end = true;
	}
	req->keep_alive = false;
	req->discard = true;
	if (req->resp != RESP_NONE) {
		/* Too late for a status: cut the response short. */
		conn_close(c, req->err ? req->err : -EPROTO);
		return;
	}
	req->hdrs_len = 0;		/* a half-built handler response */
	log_debug("%d %s", status, why ? why : "");
	n = snprintf(body, sizeof(body), "%d %s\n", status, http_reason(status));
	if (http_resp_simple(req, status, "text/plain", body, (size_t)n) < 0)
		conn_close(c, -EPROTO);
}

/* The response is written: tell the handler, then keep the connection
 * for the next request, drain the refused body, or close. */
static void conn_finish_request(struct http_conn *c)
{
	struct http_req *req = &c->req;
	bool keep = req->keep_alive && !c->srv->stopping;
	bool body_end = req->body_end;
	bool internal = req->internal;
	int err = req->err;

	req->active = false;
	if (!internal && c->srv->h.on_done)
		c->srv->h.on_done(req, err);
	req_reset(req);
	if (!keep || c->closing) {
		conn_close_lingering(c);
		return;
	}
	if (!body_end) {
		/* The rest of the refused body: read and dropped if it is
		 * small, else not worth the connection. */
		if ((c->rx.p.flags & F_CHUNKED) || c->rx.p.content_length > HTTP_MAX_DRAIN) {
			conn_close_lingering(c);
			return;
		}
		c->draining = true;
	}
}

static void conn_on_head(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	struct http_req *req = &c->req;
	const char *v;
	size_t len;

	req_reset(req);
	req->active = true;
	req->keep_alive = http_should_keep_alive(&c->rx.p) && !srv->stopping;
	req->is_head = c->rx.p.method == HTTP_HEAD;
	if ((c->rx.p.flags & F_CHUNKED) || !(c->rx.p.flags & F_CONTENTLENGTH))
		req->content_length = -1;
	else
		req->content_length = (int64_t)c->rx.p.content_length;
	v = http_rx_header(&c->rx, "expect", &len);
	if (v) {
		if (!http_name_eq(v, len, "100-continue")) {
			req->internal = true;	/* the handler never sees it */
			conn_error_reply(c, 417, "unsupported Expect");
			return;
		}
		/* HTTP/1.0 clients can't take a 100 (RFC 7231 5.1.1);
		 * without a body there is nothing to continue. */
		req->expect = c->rx.p.http_major == 1 && c->rx.p.http_minor >= 1 &&
			      ((c->rx.p.flags & F_CHUNKED) || req->content_length > 0);
	}
	srv->h.on_request(req);
}

/* Sends the 100 Continue that accepts the body. */
static void conn_continue(struct http_conn *c)
{
	static char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	struct http_write *w = write_new(0);
	uv_buf_t iov = uv_buf_init(cont, sizeof(cont) - 1);

	c->req.expect = false;
	if (!w || conn_write(c, w, &iov, 1, NULL, NULL) < 0)
		conn_close(c, -ENOMEM);
}

/* Feeds the parser while it may run. Returns when it must wait: for bytes,
 * for the handler, for the response. */
static void conn_parse(struct http_conn *c)
{
	struct http_server *srv = c->srv;
	struct http_req *req = &c->req;

	while (!c->closing && !c->lingering) {
		size_t used;
		int ev;

		if (!list_empty(&c->done)) {
			conn_flush_done(c);
			continue;
		}
		if (req->active) {
			if (req->resp == RESP_ENDED && req->nwrites == 0) {
				conn_finish_request(c);
				continue;
			}
			if (req->body_end || req->paused)
				return;
			if (!req->decided) {
				req->decided = true;
				if (!req->discard && req->expect)
					conn_continue(c);
				continue;
			}
		}
		if (c->roff == c->rlen) {
			if (!c->eof)
				return;
			/* The client is done sending (maybe a half close):
			 * a request already read still gets its answer. */
			if (req->active && (req->body_end || req->discard)) {
				req->keep_alive = false;
				return;
			}
			if (req->active)
				req->err = -ECONNRESET;
			conn_close(c, 0);
			return;
		}
		ev = http_rx_feed(&c->rx, c->rbuf + c->roff, c->rlen - c->roff, &used);
		c->roff += used;
		c->tprogress = true;
		switch (ev) {
		case HTTP_RX_MORE:
			break;
		case HTTP_RX_HEAD:
			if (c->draining) {
				/* Impossible: the drained body ends first. */
				conn_close(c, -EPROTO);
				return;
			}
			conn_on_head(c);
			break;
		case HTTP_RX_BODY:
			if (c->draining || req->discard || !srv->h.on_body)
				break;
			if (srv->h.on_body(req, c->rx.body, c->rx.body_len) < 0) {
				req->err = -EIO;
				conn_error_reply(c, 500, "on_body failed");
			}
			req->lent = req->paused;
			break;
		case HTTP_RX_END:
			if (c->draining) {
				c->draining = false;
				break;
			}
			req->body_end = true;
			if (!req->discard && srv->h.on_body_end)
				srv->h.on_body_end(req);
			break;
		default:
			/* -EPROTO, -EMSGSIZE, -ENOMEM: answer and close. */
			if (c->draining) {
				conn_close(c, ev);
				return;
			}
			if (req->active && !req->err)
				req->err = ev;
			conn_error_reply(c, c->rx.status, c->rx.err);
			break;
		}
	}
}

static void conn_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct http_conn *c = h->data;

	*buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct http_conn *c = s->data;

	if (c->lingering) {
		if (n < 0)
			conn_close(c, 0);
		else
			c->roff = c->rlen = 0;	/* dropped */
		return;
	}
	if (n > 0) {
		c->rlen += (size_t)n;
	} else if (n == UV_EOF) {
		c->eof = true;
	} else if (n < 0) {
		conn_close(c, n == UV_ECONNRESET ? -ECONNRESET : (int)n);
		return;
	}
	conn_process(c);
}

static void conn_arm_timer(struct http_conn *c)
{
	const struct http_config *cfg = &c->srv->cfg;
	struct http_req *req = &c->req;
	enum timer_kind k;
	uint32_t ms = 0;

	if (c->nwrites)
		k = T_SEND, ms = cfg->send_timeout_ms;
	else if (c->draining || (req->active && !req->body_end && !req->paused &&
				 req->decided))
		k = T_BODY, ms = cfg->body_timeout_ms;
	else if (req->active)
		k = T_NONE;		/* the handler has the request */
	else if (c->rx.in_message || c->roff < c->rlen)
		k = T_HEAD, ms = cfg->header_timeout_ms;
	else
		k = T_IDLE, ms = cfg->idle_timeout_ms;

	if (k == c->tkind && !(c->tprogress && (k == T_BODY || k == T_SEND)))
		return;
	c->tkind = k;
	c->tprogress = false;
	if (k == T_NONE)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, conn_timer_cb, ms, 0);
}

static void conn_timer_cb(uv_timer_t *t)
{
	struct http_conn *c = t->data;
	struct http_req *req = &c->req;
	enum timer_kind k = c->tkind;

	c->tkind = T_NONE;
	switch (k) {
	case T_IDLE:
		conn_close(c, 0);
		return;
	case T_HEAD:
		conn_error_reply(c, 408, "headers too slow");
		break;
	case T_BODY:
		if (c->draining) {
			conn_close(c, -ETIMEDOUT);
			return;
		}
		req->err = -ETIMEDOUT;
		conn_error_reply(c, 408, "body too slow");
		break;
	case T_SEND:
		conn_close(c, -ETIMEDOUT);
		return;
	case T_NONE:
		return;
	}
	conn_process(c);
}

/* Keeps the read buffer usable and reading on while it has room. */
static void conn_update_read(struct http_conn *c)
{
	bool lent = c->req.active && c->req.lent;
	bool want;

	if (!lent && c->roff == c->rlen) {
		c->roff = c->rlen = 0;
	} else if (!lent && c->roff > 0 && c->rcap - c->rlen < c->rcap / 4) {
		/* A partial request or pipelined ones at the end: move them
		 * to the front (small: at most a quarter of the buffer is
		 * free, so this happens once per buffer's worth). */
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
		c->rlen -= c->roff;
		c->roff = 0;
	}
	want = !c->eof && c->rlen < c->rcap;
	if (want && !c->reading) {
		int r = uv_read_start(&c->h.stream, conn_alloc_cb, conn_read_cb);

		if (r < 0) {
			conn_close(c, r);
			return;
		}
		c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
}

static void conn_process(struct http_conn *c)
{
	if (c->busy || c->closing || c->lingering)
		return;
	c->busy = true;
	conn_parse(c);
	c->busy = false;
	if (c->closing || c->lingering)
		return;
	conn_update_read(c);
	if (!c->closing)
		conn_arm_timer(c);
	if (c->srv->stopping && !c->req.active && !c->rx.in_message && !c->nwrites)
		conn_close(c, 0);
}

/* -------------------------------------------------------------- server */

static void srv_on_connection(uv_stream_t *l, int status)
{
	struct http_server *srv = l->data;
	struct http_conn *c;
	int r;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	r = conn_new(srv, &c);
	if (r < 0) {
		log_warn("new connection: %s", strerror(-r));
		return;		/* XXX the pending connection stays in the backlog */
	}
	uv_tcp_init(srv->loop, &c->h.tcp);
	c->handles = 2;
	r = uv_accept(l, &c->h.stream);
	if (r < 0 || srv->nconns > srv->cfg.max_conns || srv->stopping) {
		if (r < 0)
			log_warn("accept: %s", uv_strerror(r));
		else
			log_warn("over %u connections: closing a new one", srv->cfg.max_conns);
		conn_close(c, 0);
		return;
	}
	uv_tcp_nodelay(&c->h.tcp, 1);
	conn_process(c);
}

int http_server_adopt_fd(struct http_server *srv, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct http_conn *c;
	int r;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = conn_new(srv, &c);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (ss.ss_family == AF_UNIX) {
		uv_pipe_init(srv->loop, &c->h.pipe, 0);
		r = uv_pipe_open(&c->h.pipe, fd);
	} else {
		uv_tcp_init(srv->loop, &c->h.tcp);
		r = uv_tcp_open(&c->h.tcp, fd);
	}
	c->handles = 2;
	if (r < 0) {
		close(fd);
		conn_close(c, r);
		return r;
	}
	conn_process(c);
	return 0;
}

int http_server_new(uv_loop_t *loop, const struct http_config *cfg,
		    const struct http_handler *handler, struct http_server **out)
{
	struct http_server *srv;

	if (!handler->on_request || cfg->read_buf < 1024)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->loop = loop;
	srv->cfg = *cfg;
	srv->h = *handler;
	list_init(&srv->conns);
	list_init(&srv->kicked);
	list_init(&srv->reap);
	uv_idle_init(loop, &srv->idle);
	srv->idle.data = srv;
	*out = srv;
	return 0;
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(addr, ':');
	size_t hl;
	char *end;
	long port;

	if (!colon)
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	hl = (size_t)(colon - addr);
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		if (hl - 2 >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, hl - 2);
		host[hl - 2] = '\0';
		return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss);
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
}

int http_server_listen(struct http_server *srv, const char *addr)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	int r;

	if (srv->listening || srv->stopping)
		return -EALREADY;
	memset(&ss, 0, sizeof(ss));
	r = parse_addr(addr, &ss);
	if (r < 0)
		return r;
	uv_tcp_init(srv->loop, &srv->listener);
	srv->listener.data = srv;
	srv->listening = true;
	r = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)&srv->listener, srv->cfg.backlog,
			      srv_on_connection);
	if (r == 0)
		r = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &sl);
	if (r < 0)
		return r;	/* the listener closes with the server */
	srv->port = ntohs(ss.ss_family == AF_INET6 ?
			  ((struct sockaddr_in6 *)&ss)->sin6_port :
			  ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

int http_server_port(const struct http_server *srv)
{
	return srv->port;
}

unsigned http_server_conns(const struct http_server *srv)
{
	return srv->nconns;
}

static void srv_handle_closed(uv_handle_t *h)
{
	struct http_server *srv = h->data;

	if (--srv->handles == 0 && srv->done)
		srv->done(srv, srv->done_arg);
}

/* Once the listener and every connection are closed, closes the server's
 * own handles; done() runs when they are. */
static void srv_maybe_done(struct http_server *srv)
{
	if (!srv->stopping || srv->closing || srv->nconns > 0 || srv->handles > 0)
		return;
	srv->closing = true;
	srv->handles = 2;
	uv_close((uv_handle_t *)&srv->grace, srv_handle_closed);
	uv_close((uv_handle_t *)&srv->idle, srv_handle_closed);
}

static void srv_grace_cb(uv_timer_t *t)
{
	struct http_server *srv = t->data;
	struct list *l, *next;

	log_info("shutdown: grace time over, closing %u connection(s)", srv->nconns);
	for (l = srv->conns.next; l != &srv->conns; l = next) {
		next = l->next;
		conn_close(list_entry(l, struct http_conn, link), -ECANCELED);
	}
}

static void srv_listener_closed(uv_handle_t *h)
{
	struct http_server *srv = h->data;

	srv->listening = false;
	srv->handles--;
	srv_maybe_done(srv);
}

int http_server_shutdown(struct http_server *srv, uint32_t grace_ms,
			 void (*done)(struct http_server *srv, void *arg), void *arg)
{
	struct list *l, *next;

	if (srv->stopping)
		return -EALREADY;
	srv->stopping = true;
	srv->done = done;
	srv->done_arg = arg;
	if (srv->listening) {
		srv->handles++;		/* held until the listener is closed */
		uv_close((uv_handle_t *)&srv->listener, srv_listener_closed);
	}
	uv_timer_init(srv->loop, &srv->grace);
	srv->grace.data = srv;
	uv_timer_start(&srv->grace, srv_grace_cb, grace_ms, 0);
	uv_unref((uv_handle_t *)&srv->grace);	/* only connections keep the loop */
	/* Idle connections close now; busy ones after their response
	 * (conn_process sees srv->stopping). */
	for (l = srv->conns.next; l != &srv->conns; l = next) {
		struct http_conn *c = list_entry(l, struct http_conn, link);

		next = l->next;
		if (!c->req.active && !c->rx.in_message && !c->nwrites && c->roff == c->rlen)
			conn_close(c, 0);
		else if (c->req.active)
			c->req.keep_alive = false;
	}
	srv_maybe_done(srv);
	return 0;
}

void http_server_free(struct http_server *srv)
{
	if (!srv)
		return;
	free(srv);
}
