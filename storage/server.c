/* storage/server.c: the node's RPC server on the libuv loop.
 *
 * A connection parses frames out of its input buffer (resumable: "need more"
 * is not an error), runs up to max_inflight requests at once, and writes
 * replies in completion order, tagged with the request id. A PUT's payload is
 * read straight into the engine's write buffers once its header is parsed.
 * A GET streams: its reply goes out with the first verified piece, the rest
 * follow as they are read (no other reply is written in between).
 * A malformed frame gets an STO_EPROTO reply and the connection is closed.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#define IN_CAP		(STO_FRAME_PREFIX + STO_MAX_REQ_HDR + 64 * 1024)
#define GET_WINDOW	4		/* pieces in flight per GET */
#define GET_CONN_BUDGET	(16u << 20)	/* GET bytes in flight per connection */

struct conn;

struct out {
	struct out *next;
	uint8_t *hdr;
	size_t hdr_len;
	struct get_stream *gs;		/* a streamed GET, or NULL */
};

struct req {
	struct conn *c;
	uint64_t id;
	StoOp op;
	struct sto_key key;
	struct sto_put *put;
};

struct piece {
	struct get_stream *gs;
	void *buf;			/* owned; freed once written */
	const uint8_t *data;
	size_t len;
	bool ready;
	int status;
	uint64_t reserved;		/* of the connection's GET budget */
};

struct get_stream {
	struct req r;
	struct sto_loc loc;
	uint8_t *meta;
	uint64_t off, len;		/* range sent */
	uint64_t next_read;		/* fragment offset of the next piece to read */
	unsigned reads, writes;		/* in flight */
	unsigned sent, npieces, issued;
	struct piece win[GET_WINDOW];	/* piece i in win[i % GET_WINDOW] */
	bool queued, failed;
	bool waiting;			/* on the connection's budget */
	struct get_stream *wait_next;
	struct out out;
};

struct write_ctx {
	uv_write_t w;
	struct conn *c;
	uint8_t *hdr;
	void *buf;
	struct get_stream *gs;
	uint64_t reserved;		/* GET budget returned once written */
};

enum conn_state { C_HDR, C_PAYLOAD, C_DRAIN };

struct conn {
	uv_tcp_t tcp;
	struct sto_server *s;
	struct conn *prev, *next;
	uint8_t *in;
	size_t in_len, in_off;
	enum conn_state state;
	uint64_t remaining;		/* PAYLOAD, DRAIN */
	struct req *put_req;		/* PAYLOAD */
	unsigned inflight;		/* requests not yet replied */
	unsigned writes;		/* uv_write requests in flight */
	unsigned refs;
	bool reading, closing, closed, fatal, put_blocked;
	uint64_t get_bytes;		/* GET pieces read or being sent */
	struct get_stream *get_waiters;	/* GETs waiting for budget */
	struct out *outq, **outq_tail;
};

struct sto_server {
	uv_loop_t *loop;
	struct sto_engine *e;
	struct sto_server_cfg cfg;
	uv_tcp_t listener;
	struct conn *conns;
	uint16_t port;
	bool stopping;
	unsigned open;			/* listener + connections */
	void (*stop_cb)(void *arg);
	void *stop_arg;
};

static void conn_process(struct conn *c);
static bool handle_listing(struct conn *c, StoRequest *q);
static void conn_update_reading(struct conn *c);
static void conn_flush(struct conn *c);
static void get_pump(struct get_stream *gs);
static void get_budget_release(struct conn *c, uint64_t n);

static void server_maybe_stopped(struct sto_server *s)
{
	if (s->stopping && s->open == 0) {
		void (*cb)(void *) = s->stop_cb;
		void *arg = s->stop_arg;

		free(s);
		if (cb)
			cb(arg);
	}
}

static void conn_put(struct conn *c)
{
	struct sto_server *s = c->s;

	if (--c->refs)
		return;
	free(c->in);
	free(c);
	s->open--;
	server_maybe_stopped(s);
}

static void on_conn_closed(uv_handle_t *h)
{
	conn_put(h->data);
}

static void conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	c->closing = true;
	if (c->state == C_PAYLOAD && c->put_req) {
		struct req *r = c->put_req;

		sto_put_abort(r->put);
		c->put_req = NULL;
		free(r);
		c->inflight--;
		c->refs--;	/* the request's reference; the handle's remains */
	}
	/* Unsent replies go; a streamed GET's item belongs to its stream. */
	while (c->outq) {
		struct out *o = c->outq;

		c->outq = o->next;
		if (!o->gs) {
			free(o->hdr);
			free(o);
		}
	}
	c->outq_tail = &c->outq;
	while (c->get_waiters) {
		struct get_stream *w = c->get_waiters;

		c->get_waiters = w->wait_next;
		w->waiting = false;
		get_pump(w);	/* sees the connection closed: frees itself */
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		c->s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* After a fatal error or during shutdown: close once the replies are out. */
static void conn_maybe_close(struct conn *c)
{
	if (c->closed || !c->closing)
		return;
	if (c->outq || c->writes)
		return;		/* let the replies (the error, at least) out */
	if (!c->fatal && c->inflight)
		return;		/* orderly: answer what was asked */
	conn_close(c);
}

/* Reads no more from c (EOF, a read error, the server stopping): a PUT
 * whose payload is cut short cannot complete, so c closes now; otherwise
 * once what was asked is answered. */
static void conn_shutdown(struct conn *c)
{
	c->closing = true;
	conn_update_reading(c);
	if (c->state == C_PAYLOAD)
		conn_close(c);
	else
		conn_maybe_close(c);
}

/* ------------------------------------------------------------- replies */

static void on_written(uv_write_t *w, int status)
{
	struct write_ctx *x = (struct write_ctx *)w;
	struct conn *c = x->c;

	free(x->hdr);
	free(x->buf);
	if (x->gs) {
		x->gs->writes--;
		get_pump(x->gs);
	}
	if (x->reserved)
		get_budget_release(c, x->reserved);
	free(x);
	c->writes--;
	if (status < 0 && !c->closed) {
		c->fatal = true;
		c->closing = true;
	}
	conn_maybe_close(c);
	conn_put(c);
}

static int conn_write(struct conn *c, uint8_t *hdr, size_t hdr_len, void *buf,
		      const void *data, size_t len, struct get_stream *gs,
		      uint64_t reserved)
{
	struct write_ctx *x;
	uv_buf_t b[2];
	unsigned n = 0;
	int ret;

	if (c->closed) {
		free(hdr);
		free(buf);
		c->get_bytes -= reserved;
		return -ECONNRESET;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		free(hdr);
		free(buf);
		c->get_bytes -= reserved;
		return -ENOMEM;
	}
	x->c = c;
	x->hdr = hdr;
	x->buf = buf;
	x->gs = gs;
	x->reserved = reserved;
	if (hdr)
		b[n++] = uv_buf_init((char *)hdr, hdr_len);
	if (len)
		b[n++] = uv_buf_init((char *)data, len);
	c->refs++;
	c->writes++;
	if (gs)
		gs->writes++;
	ret = uv_write(&x->w, (uv_stream_t *)&c->tcp, b, n, on_written);
	if (ret < 0) {
		/* on_written won't run */
		if (gs)
			gs->writes--;
		free(hdr);
		free(buf);
		free(x);
		c->refs--;
		c->writes--;
		c->get_bytes -= reserved;
		return ret;
	}
	return 0;
}

static void conn_flush(struct conn *c)
{
	while (c->outq) {
		struct out *o = c->outq;
		struct get_stream *gs = o->gs;

		if (!gs) {
			c->outq = o->next;
			if (!c->outq)
				c->outq_tail = &c->outq;
			conn_write(c, o->hdr, o->hdr_len, NULL, NULL, 0, NULL, 0);
			free(o);
			continue;
		}
		/* A stream holds the head until its last piece is written. */
		while (gs->sent < gs->npieces) {
			struct piece *p = &gs->win[gs->sent % GET_WINDOW];

			if (!p->ready)
				return;
			if (p->status < 0) {
				/* Bytes already went out: the only honest
				 * signal left is to cut the stream. */
				log_err("GET part %u frag %u: %s mid-stream, closing",
					gs->r.key.part, gs->r.key.frag,
					sto_strerror(p->status));
				c->fatal = c->closing = true;
				gs->failed = true;
				c->outq = NULL;
				c->outq_tail = &c->outq;
				free(o->hdr);
				o->hdr = NULL;
				return;
			}
			conn_write(c, o->hdr, o->hdr_len, p->buf, p->data, p->len, gs,
				   p->reserved);
			o->hdr = NULL;
			p->buf = NULL;
			p->reserved = 0;
			p->ready = false;
			gs->sent++;
		}
		c->outq = o->next;
		if (!c->outq)
			c->outq_tail = &c->outq;
	}
	conn_maybe_close(c);
}

static void conn_queue(struct conn *c, struct out *o)
{
	o->next = NULL;
	*c->outq_tail = o;
	c->outq_tail = &o->next;
	conn_flush(c);
}

/* A request is answered: its slot frees up (reading may resume). */
static void req_done(struct conn *c)
{
	c->inflight--;
	conn_update_reading(c);
	conn_process(c);
	conn_maybe_close(c);
	conn_put(c);
}

static void resp_init(StoResponse *m, uint64_t id, int status)
{
	sto_response__init(m);
	m->version = STO_PROTO_VERSION;
	m->id = id;
	m->status = status;
	if (status < 0)
		m->error = (char *)sto_strerror(status);
}

static void resp_loc(StoResponse *m, const struct sto_loc *l, const uint8_t *meta)
{
	m->timestamp = l->ts;
	m->tombstone = l->flags & STO_LOC_TOMBSTONE;
	if (m->tombstone)
		return;
	m->size = l->size;
	m->crc32c = l->crc;
	m->medium = l->medium;
	m->atime = l->atime;
	m->tier_class = l->tier;
	m->cold_after = l->cold_after;
	if (meta && l->meta_len) {
		m->meta.data = (uint8_t *)meta;
		m->meta.len = l->meta_len;
	}
}

/* Queues m; 0 or -errno (then the connection is beyond saving). */
static int reply(struct conn *c, const StoResponse *m)
{
	struct out *o;
	int ret;

	if (c->closed)
		return 0;
	o = calloc(1, sizeof(*o));
	if (!o)
		goto out_fatal;
	ret = sto_resp_encode(m, &o->hdr, &o->hdr_len);
	if (ret < 0) {
		free(o);
		goto out_fatal;
	}
	conn_queue(c, o);
	return 0;

out_fatal:
	c->fatal = c->closing = true;
	return -ENOMEM;
}

static void reply_status(struct conn *c, uint64_t id, int status, const char *why)
{
	StoResponse m;

	resp_init(&m, id, status);
	if (why)
		m.error = (char *)why;
	reply(c, &m);
}

/* ------------------------------------------------------------- requests */

static struct req *req_new(struct conn *c, const StoRequest *q, size_t size)
{
	struct req *r = calloc(1, size);

	if (!r)
		return NULL;
	r->c = c;
	r->id = q->id;
	r->op = q->op;
	sto_req_key(q, &r->key);
	c->inflight++;
	c->refs++;
	return r;
}

/* Undoes req_new() for a request the engine refused. */
static void req_free_unstarted(struct conn *c, struct req *r)
{
	free(r);
	c->inflight--;
	c->refs--;
}

/* Answers a PUT, PURGE or DELETE with the timestamp the engine stored. */
static void req_reply_ts(struct req *r, int status, const struct sto_loc *loc,
			 bool tombstone)
{
	struct conn *c = r->c;
	StoResponse m;

	resp_init(&m, r->id, status);
	m.timestamp = loc->ts;
	m.tombstone = tombstone;
	reply(c, &m);
	free(r);
	req_done(c);
}

static void put_done(void *arg, int status, const struct sto_loc *loc)
{
	req_reply_ts(arg, status, loc, false);
}

/* SET_TIER: durable; the answer says where the fragment is and its policy. */
static void set_tier_done(void *arg, int status, const struct sto_loc *loc)
{
	struct req *r = arg;
	struct conn *c = r->c;
	StoResponse m;

	resp_init(&m, r->id, status);
	if (status == 0)
		resp_loc(&m, loc, NULL);
	reply(c, &m);
	free(r);
	req_done(c);
}

static void put_resume(void *arg)
{
	struct req *r = arg;
	struct conn *c = r->c;

	c->put_blocked = false;
	conn_process(c);
	conn_update_reading(c);
}

static void del_done(void *arg, int status, const struct sto_loc *loc)
{
	req_reply_ts(arg, status, loc, status == 0 || status == -ENOENT);
}

static void lst_ids_done(void *arg, int status, const struct sto_listing_info *v,
			 size_t n, bool more)
{
	struct req *r = arg;
	struct conn *c = r->c;
	StoListingInfo *li = NULL, **lip = NULL;
	StoResponse m;

	resp_init(&m, r->id, status);
	if (status == 0 && n) {
		li = calloc(n, sizeof(*li));
		lip = calloc(n, sizeof(*lip));
		if (!li || !lip) {
			m.status = -ENOMEM;
			n = 0;
		}
		for (size_t i = 0; i < n; i++) {
			sto_listing_info__init(&li[i]);
			li[i].listing_id.data = (uint8_t *)v[i].id;
			li[i].listing_id.len = STO_LISTING_ID_LEN;
			li[i].entries = v[i].entries;
			li[i].tombstones = v[i].tombstones;
			li[i].bytes = v[i].bytes;
			li[i].hash = v[i].hash;
			lip[i] = &li[i];
		}
		m.n_listings = n;
		m.listings = lip;
		m.is_truncated = more;
	}
	reply(c, &m);
	free(li);
	free(lip);
	free(r);
	req_done(c);
}

static void list_done(void *arg, int status, const struct sto_suffix_hash *sfx,
		      const struct sto_list_entry *ents, size_t n)
{
	struct req *r = arg;
	struct conn *c = r->c;
	StoSuffixHash *sh = NULL, **shp = NULL;
	StoListEntry *le = NULL, **lep = NULL;
	StoResponse m;

	resp_init(&m, r->id, status);
	if (status == 0 && sfx) {
		sh = calloc(n + 1, sizeof(*sh));
		shp = calloc(n + 1, sizeof(*shp));
		if (!sh || !shp) {
			resp_init(&m, r->id, -ENOMEM);
			n = 0;
		}
		for (size_t i = 0; i < n; i++) {
			sto_suffix_hash__init(&sh[i]);
			sh[i].suffix = sfx[i].suffix;
			sh[i].hash = sfx[i].hash;
			sh[i].count = sfx[i].count;
			shp[i] = &sh[i];
		}
		m.n_suffixes = n;
		m.suffixes = shp;
	} else if (status == 0 && ents) {
		le = calloc(n + 1, sizeof(*le));
		lep = calloc(n + 1, sizeof(*lep));
		if (!le || !lep) {
			resp_init(&m, r->id, -ENOMEM);
			n = 0;
		}
		for (size_t i = 0; i < n; i++) {
			sto_list_entry__init(&le[i]);
			le[i].name_hash.data = (uint8_t *)ents[i].name;
			le[i].name_hash.len = STO_NAME_HASH_LEN;
			le[i].frag_index = ents[i].frag;
			le[i].timestamp = ents[i].timestamp;
			le[i].tombstone = ents[i].tombstone;
			le[i].size = ents[i].size;
			lep[i] = &le[i];
		}
		m.n_entries = n;
		m.entries = lep;
	}
	reply(c, &m);
	free(sh);
	free(shp);
	free(le);
	free(lep);
	free(r);
	req_done(c);
}

static void handle_stat(struct conn *c, const StoRequest *q)
{
	struct sto_stat st;
	StoMediumStat ms[2], *msp[2];
	StoStat ss = STO_STAT__INIT;
	StoTierStat ts = STO_TIER_STAT__INIT;
	StoAuditStat as;
	StoResponse m;

	sto_engine_stat(c->s->e, &st);
	resp_init(&m, q->id, 0);
	for (int i = 0; i < 2; i++) {
		sto_medium_stat__init(&ms[i]);
		ms[i].name = i ? "cold" : "hot";
		ms[i].dirs = st.media[i].dirs;
		ms[i].capacity_bytes = st.media[i].capacity_bytes;
		ms[i].free_bytes = st.media[i].free_bytes;
		ms[i].used_bytes = st.media[i].used_bytes;
		ms[i].reserve_bytes = st.media[i].reserve_bytes;
		ms[i].volumes = st.media[i].volumes;
		msp[i] = &ms[i];
	}
	ss.n_media = 2;
	ss.media = msp;
	ss.objects = st.objects;
	ss.quarantined = st.quarantined;
	ss.puts = st.puts;
	ss.gets = st.gets;
	ss.deletes = st.deletes;
	ss.crc_errors = st.crc_errors;
	ss.bytes_in = st.bytes_in;
	ss.bytes_out = st.bytes_out;
	ss.group_commits = st.group_commits;
	ss.fsyncs = st.fsyncs;
	ss.nospace = st.nospace;
	ss.conflicts = st.conflicts;
	ss.fsync_us = st.fsync_us;
	ss.commit_us = st.commit_us;
	/* Tiering (docs/tiering.md): arrays point into st, which outlives the
	 * encoding in reply(). */
	ts.n_objects = ts.n_bytes = ts.n_dead_bytes = ts.n_reads = ts.n_writes = 2;
	ts.objects = st.tier.objects;
	ts.bytes = st.tier.bytes;
	ts.dead_bytes = st.tier.dead_bytes;
	ts.reads = st.tier.reads;
	ts.writes = st.tier.writes;
	ts.moved_down_objects = st.tier.moved_down_objects;
	ts.moved_down_bytes = st.tier.moved_down_bytes;
	ts.moved_up_objects = st.tier.moved_up_objects;
	ts.moved_up_bytes = st.tier.moved_up_bytes;
	ts.move_failures = st.tier.move_failures;
	ts.scans = st.tier.scans;
	ts.last_scan_age = st.tier.last_scan_age;
	ts.pending_promotions = st.tier.pending_promotions;
	ts.pending_moves = st.tier.pending_moves;
	ts.n_hist_hot = ts.n_hist_cold = ts.n_hist_bounds = STO_TIER_HIST;
	ts.hist_hot = st.tier.hist[0];
	ts.hist_cold = st.tier.hist[1];
	ts.hist_bounds = st.tier.hist_bounds;
	ts.n_heat = STO_TIER_HEAT;
	ts.heat = st.tier.heat;
	ss.tier = &ts;
	ss.purged = st.purged;
	ss.misses = st.misses;
	if (c->s->cfg.audit) {
		sto_audit_stat(c->s->cfg.audit, &st);
		sto_audit_stat__init(&as);
		as.passes = st.audit.passes;
		as.checked = st.audit.checked;
		as.bytes = st.audit.bytes;
		as.corrupt = st.audit.corrupt;
		as.pass_done = st.audit.pass_done;
		as.pass_total = st.audit.pass_total;
		as.last_pass_age = st.audit.last_pass_age;
		as.last_pass_seconds = st.audit.last_pass_seconds;
		ss.audit = &as;
	}
	m.stat = &ss;
	reply(c, &m);
}

/* ------------------------------------------------------------------ GET */

/* GET memory per connection is bounded: a piece's bytes count from its read
 * until its write completes. A GET that would go over waits, unless nothing
 * is in flight or it is the one being sent (so the connection always makes
 * progress): at most GET_CONN_BUDGET + GET_WINDOW pieces. */
static void get_budget_release(struct conn *c, uint64_t n)
{
	struct get_stream *w;

	c->get_bytes -= n;
	w = c->get_waiters;
	c->get_waiters = NULL;
	while (w) {
		struct get_stream *next = w->wait_next;

		w->waiting = false;
		get_pump(w);		/* may wait (and re-queue) again */
		w = next;
	}
}

static void get_free(struct get_stream *gs)
{
	struct conn *c = gs->r.c;
	uint64_t n = 0;

	if (gs->waiting) {
		struct get_stream **pp = &c->get_waiters;

		while (*pp != gs)
			pp = &(*pp)->wait_next;
		*pp = gs->wait_next;
	}
	for (unsigned i = 0; i < GET_WINDOW; i++) {
		free(gs->win[i].buf);
		n += gs->win[i].reserved;	/* read, never sent */
	}
	free(gs->out.hdr);
	free(gs->meta);
	free(gs);
	c->refs++;		/* across the waiters' pumps */
	if (n)
		get_budget_release(c, n);
	req_done(c);
	conn_put(c);
}

static void get_piece_read(void *arg, int status, const uint8_t *data,
			   size_t len, void *buf);

/* Issues reads while the window has room; frees the stream when done. */
static void get_pump(struct get_stream *gs)
{
	struct conn *c = gs->r.c;

	while (!gs->failed && !c->closed && gs->issued < gs->npieces &&
	       gs->issued - gs->sent < GET_WINDOW) {
		uint64_t end = gs->off + gs->len;
		uint64_t next = (gs->next_read / STO_READ_PIECE + 1) * STO_READ_PIECE;
		struct piece *p = &gs->win[gs->issued % GET_WINDOW];
		int ret;

		if (next > end)
			next = end;
		/* The stream being sent (the output queue's head) may always
		 * read ahead: the others' pieces can't go out before it ends. */
		if (c->get_bytes && c->get_bytes + (next - gs->next_read) > GET_CONN_BUDGET &&
		    c->outq != &gs->out) {
			if (!gs->waiting) {
				gs->waiting = true;
				gs->wait_next = c->get_waiters;
				c->get_waiters = gs;
			}
			break;
		}
		p->ready = false;
		p->status = 0;
		p->gs = gs;
		p->reserved = next - gs->next_read;
		c->get_bytes += p->reserved;
		ret = sto_read(c->s->e, &gs->r.key, &gs->loc, gs->next_read,
			       next - gs->next_read, get_piece_read, p);
		if (ret < 0) {
			p->ready = true;
			p->status = ret;
		} else {
			gs->reads++;
		}
		gs->next_read = next;
		gs->issued++;
		if (ret < 0)
			break;
	}
	if (!gs->queued && gs->win[0].ready && gs->sent == 0) {
		struct piece *p = &gs->win[0];
		StoResponse m;

		gs->queued = true;
		if (p->status < 0) {
			/* Nothing sent yet: a clean error reply. */
			resp_init(&m, gs->r.id, p->status);
			reply(c, &m);
			gs->failed = true;
		} else {
			resp_init(&m, gs->r.id, 0);
			resp_loc(&m, &gs->loc, gs->meta);
			m.payload_len = gs->len;
			m.offset = gs->off;
			if (sto_resp_encode(&m, &gs->out.hdr, &gs->out.hdr_len) < 0) {
				c->fatal = c->closing = true;
				gs->failed = true;
			} else {
				sto_engine_counters(c->s->e)->gets++;
				gs->out.gs = gs;
				conn_queue(c, &gs->out);
			}
		}
	}
	if (gs->reads == 0 && gs->writes == 0 &&
	    (gs->failed || c->closed || gs->sent == gs->npieces))
		get_free(gs);
}

static void get_piece_read(void *arg, int status, const uint8_t *data,
			   size_t len, void *buf)
{
	struct piece *p = arg;
	struct get_stream *gs = p->gs;

	gs->reads--;
	p->buf = status < 0 ? NULL : buf;
	p->data = data;
	p->len = len;
	p->status = status;
	p->ready = true;
	if (gs->queued && !gs->failed && !gs->r.c->closed)
		conn_flush(gs->r.c);
	get_pump(gs);
}

static void handle_get(struct conn *c, const StoRequest *q, bool head)
{
	struct sto_engine *e = c->s->e;
	struct get_stream *gs;
	StoResponse m;
	int ret;

	gs = (struct get_stream *)req_new(c, q, sizeof(*gs));
	if (!gs)
		goto out_nomem;
	gs->meta = malloc(STO_MAX_META);
	if (!gs->meta) {
		ret = -ENOMEM;
		goto out_reply;
	}
	ret = sto_lookup(e, &gs->r.key, &gs->loc, gs->meta);
	if (ret < 0)
		goto out_reply;
	if (head || (q->offset >= gs->loc.size && !(q->offset == 0 && gs->loc.size == 0))) {
		if (!head) {
			ret = -EINVAL;	/* range starts past the end */
			goto out_reply;
		}
		resp_init(&m, q->id, 0);
		resp_loc(&m, &gs->loc, gs->meta);
		reply(c, &m);
		goto out_free;
	}
	gs->off = q->offset;
	gs->len = gs->loc.size - q->offset;
	if (q->length && q->length < gs->len)
		gs->len = q->length;
	if (gs->len == 0) {
		resp_init(&m, q->id, 0);
		resp_loc(&m, &gs->loc, gs->meta);
		sto_engine_counters(e)->gets++;
		sto_tier_note_read(sto_engine_tier(e), &gs->r.key, &gs->loc);
		reply(c, &m);
		goto out_free;
	}
	sto_tier_note_read(sto_engine_tier(e), &gs->r.key, &gs->loc);
	gs->next_read = gs->off;
	gs->npieces = (unsigned)((gs->off + gs->len - 1) / STO_READ_PIECE -
				 gs->off / STO_READ_PIECE + 1);
	get_pump(gs);
	return;

out_reply:
	resp_init(&m, q->id, ret);
	if (ret == -ENOENT && !head)
		sto_engine_counters(e)->misses++;
	if (ret == -ENOENT && (gs->loc.flags & STO_LOC_TOMBSTONE)) {
		m.tombstone = true;
		m.timestamp = gs->loc.ts;
	}
	reply(c, &m);
out_free:
	free(gs->meta);
	free(gs);
	req_done(c);
	return;
out_nomem:
	reply_status(c, q->id, -ENOMEM, NULL);
}

/* ------------------------------------------------------------- listings */

/* A listing request keeps its decoded header (q) until answered: the
 * entries of a LISTING_PUT and the strings of a query are used in place. */
struct lst_req {
	struct req r;
	StoRequest *q;
	struct sto_lst_op op;
	struct sto_listing_entry *ents;
};

static void lst_req_free(struct lst_req *l)
{
	struct conn *c = l->r.c;

	sto_req_free(l->q);
	free(l->ents);
	free(l);
	req_done(c);
}

static void lst_written(void *arg, int status, struct sto_lst_op *op)
{
	struct lst_req *l = arg;
	StoResponse m;

	resp_init(&m, l->r.id, status);
	if (status == 0) {
		m.count = op->count;
		m.is_truncated = op->more;
		if (op->more) {
			m.next_marker.data = op->next;
			m.next_marker.len = op->next_len;
		}
	}
	reply(l->r.c, &m);
	lst_req_free(l);
}

static void lst_queried(void *arg, int status, const struct sto_lst_page *pg)
{
	struct lst_req *l = arg;
	const struct sto_listing_page *p = pg ? &pg->page : NULL;
	StoListingEntry *le = NULL, **lep = NULL;
	ProtobufCBinaryData *cps = NULL;
	StoResponse m;

	resp_init(&m, l->r.id, status);
	if (status == 0) {
		le = calloc(p->n_entries + 1, sizeof(*le));
		lep = calloc(p->n_entries + 1, sizeof(*lep));
		cps = calloc(p->n_prefixes + 1, sizeof(*cps));
		if (!le || !lep || !cps) {
			resp_init(&m, l->r.id, -ENOMEM);
			p = NULL;
		}
	}
	if (status == 0 && p) {
		for (size_t i = 0; i < p->n_entries; i++) {
			const struct sto_listing_entry *e = &p->entries[i];

			sto_listing_entry__init(&le[i]);
			le[i].key.data = (uint8_t *)e->key;
			le[i].key.len = e->key_len;
			le[i].timestamp = e->timestamp;
			le[i].tombstone = e->tombstone;
			le[i].value.data = (uint8_t *)e->value;
			le[i].value.len = e->value_len;
			lep[i] = &le[i];
		}
		for (size_t i = 0; i < p->n_prefixes; i++) {
			cps[i].data = (uint8_t *)p->prefixes[i].data;
			cps[i].len = p->prefixes[i].len;
		}
		m.n_listing_entries = p->n_entries;
		m.listing_entries = lep;
		m.n_common_prefixes = p->n_prefixes;
		m.common_prefixes = cps;
		m.is_truncated = p->is_truncated;
		m.next_marker.data = (uint8_t *)p->next_marker.data;
		m.next_marker.len = p->next_marker.len;
	}
	reply(l->r.c, &m);
	free(le);
	free(lep);
	free(cps);
	lst_req_free(l);
}

static void lst_stated(void *arg, int status, const struct sto_listing_stat *st)
{
	struct lst_req *l = arg;
	StoListingStat ls = STO_LISTING_STAT__INIT;
	StoResponse m;

	resp_init(&m, l->r.id, status);
	if (status == 0) {
		ls.entries = st->entries;
		ls.tombstones = st->tombstones;
		ls.bytes = st->bytes;
		ls.first_key.data = (uint8_t *)st->first_key.data;
		ls.first_key.len = st->first_key.len;
		ls.last_key.data = (uint8_t *)st->last_key.data;
		ls.last_key.len = st->last_key.len;
		m.listing_stat = &ls;
	}
	reply(l->r.c, &m);
	lst_req_free(l);
}

static struct sto_bytes pb_bytes(ProtobufCBinaryData b)
{
	return (struct sto_bytes){ b.data, (uint32_t)b.len };
}

/* Listing ops; false when q is not one (the caller handles and frees it).
 * Otherwise q belongs to the request from here on. */
static bool handle_listing(struct conn *c, StoRequest *q)
{
	struct sto_engine *e = c->s->e;
	struct sto_listing_id id;
	struct lst_req *l;
	int ret;

	if (q->op != STO_OP__STO_OP_LISTING_PUT && q->op != STO_OP__STO_OP_LISTING_QUERY &&
	    q->op != STO_OP__STO_OP_LISTING_STAT &&
	    q->op != STO_OP__STO_OP_LISTING_DELETE_RANGE)
		return false;
	id.part = q->partition;
	memcpy(id.id, q->listing_id.data, STO_LISTING_ID_LEN);	/* validated */
	l = (struct lst_req *)req_new(c, q, sizeof(*l));
	if (!l) {
		reply_status(c, q->id, -ENOMEM, NULL);
		sto_req_free(q);
		return true;
	}
	l->q = q;
	l->op.id = id;
	switch (q->op) {
	case STO_OP__STO_OP_LISTING_PUT:
		l->ents = calloc(q->n_listing_entries, sizeof(*l->ents));
		if (!l->ents) {
			ret = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < q->n_listing_entries; i++) {
			const StoListingEntry *pe = q->listing_entries[i];

			l->ents[i].key = pe->key.data;
			l->ents[i].key_len = (uint32_t)pe->key.len;
			l->ents[i].timestamp = pe->timestamp;
			l->ents[i].tombstone = pe->tombstone;
			l->ents[i].value = pe->value.data;
			l->ents[i].value_len = (uint32_t)pe->value.len;
		}
		l->op.ents = l->ents;
		l->op.n = q->n_listing_entries;
		ret = sto_lst_put(e, &l->op, lst_written, l);
		break;
	case STO_OP__STO_OP_LISTING_DELETE_RANGE:
		l->op.start = pb_bytes(q->start_after);
		l->op.end = pb_bytes(q->end);
		l->op.max = q->limit;
		ret = sto_lst_delete(e, &l->op, lst_written, l);
		break;
	case STO_OP__STO_OP_LISTING_QUERY: {
		struct sto_listing_query lq = {
			.start_after = pb_bytes(q->start_after),
			.prefix = pb_bytes(q->prefix),
			.delimiter = pb_bytes(q->delimiter),
			.limit = q->limit,
			.include_tombstones = q->include_tombstones,
		};

		ret = sto_lst_query(e, &id, &lq, c->s->cfg.listing_max_limit, lst_queried, l);
		break;
	}
	default:
		ret = sto_lst_stat(e, &id, lst_stated, l);
		break;
	}
	if (ret < 0) {
		reply_status(c, q->id, ret, ret == -ENAMETOOLONG
			     ? "listing key longer than this node stores" : NULL);
		/* Not started: undo req_new without re-entering conn_process. */
		sto_req_free(l->q);
		free(l->ents);
		free(l);
		c->inflight--;
		c->refs--;
	}
	return true;
}

/* -------------------------------------------------------------- parsing */

/* Handles one decoded request; may switch the connection to PAYLOAD. */
static void handle_request(struct conn *c, const StoRequest *q)
{
	struct sto_engine *e = c->s->e;
	struct req *r;
	int ret;

	switch (q->op) {
	case STO_OP__STO_OP_PUT:
		r = req_new(c, q, sizeof(*r));
		if (!r) {
			ret = -ENOMEM;
			goto out_drain;
		}
		ret = sto_put_begin_ex(e, &r->key, q->timestamp, q->meta.data,
				       (uint32_t)q->meta.len, q->payload_len, q->crc32c,
				       (uint8_t)q->tier_class, q->cold_after,
				       put_done, put_resume, r, &r->put);
		if (ret < 0) {
			req_free_unstarted(c, r);
			goto out_drain;
		}
		if (q->payload_len) {
			c->state = C_PAYLOAD;
			c->remaining = q->payload_len;
			c->put_req = r;
		}
		return;
	case STO_OP__STO_OP_GET:
	case STO_OP__STO_OP_HEAD:
		handle_get(c, q, q->op == STO_OP__STO_OP_HEAD);
		return;
	case STO_OP__STO_OP_DELETE:
		r = req_new(c, q, sizeof(*r));
		ret = r ? sto_del(e, &r->key, q->timestamp, del_done, r) : -ENOMEM;
		break;
	case STO_OP__STO_OP_PURGE:
		r = req_new(c, q, sizeof(*r));
		ret = r ? sto_purge_entry(e, &r->key, q->timestamp, put_done, r) : -ENOMEM;
		break;
	case STO_OP__STO_OP_LISTING_IDS:
		r = req_new(c, q, sizeof(*r));
		ret = r ? sto_lst_ids(e, q->partition, q->start_after.len ?
				      q->start_after.data : NULL, lst_ids_done, r) : -ENOMEM;
		break;
	case STO_OP__STO_OP_LIST:
		r = req_new(c, q, sizeof(*r));
		ret = r ? sto_list(e, q->partition, q->list_objects, q->suffix,
				   list_done, r) : -ENOMEM;
		break;
	case STO_OP__STO_OP_SET_TIER:
		r = req_new(c, q, sizeof(*r));
		ret = r ? sto_engine_set_tier(e, &r->key, q->timestamp, (uint8_t)q->tier_class,
					      q->cold_after, set_tier_done, r) : -ENOMEM;
		break;
	case STO_OP__STO_OP_STAT:
		handle_stat(c, q);
		return;
	default:
		reply_status(c, q->id, STO_EPROTO, "unknown operation");
		return;
	}
	/* The requests without a payload: a refusal is answered at once. */
	if (ret < 0) {
		if (r)
			req_free_unstarted(c, r);
		reply_status(c, q->id, ret, NULL);
	}
	return;

out_drain:
	/* Refused before any byte was stored; skip the payload to stay in
	 * sync with the stream. */
	reply_status(c, q->id, ret, NULL);
	if (q->payload_len) {
		c->state = C_DRAIN;
		c->remaining = q->payload_len;
	}
}

static void conn_fatal(struct conn *c, uint64_t id, int err, const char *why)
{
	char peer[64] = "?";
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
		uv_ip_name((struct sockaddr *)&ss, peer, sizeof(peer));
	log_warn("client %s: %s (%s), closing", peer, why, sto_strerror(err));
	reply_status(c, id, err, why);
	c->fatal = c->closing = true;
	conn_update_reading(c);
	conn_maybe_close(c);
}

/* Feeds buffered payload bytes to the PUT; false when it can't take more. */
static bool conn_feed_put(struct conn *c)
{
	struct sto_put *p = c->put_req->put;

	while (c->in_off < c->in_len && c->remaining) {
		size_t avail = c->in_len - c->in_off, n;
		void *buf;
		size_t cap;
		int ret = sto_put_buf(p, &buf, &cap);

		if (ret == -EAGAIN) {
			c->put_blocked = true;
			return false;
		}
		if (ret < 0) {
			conn_fatal(c, c->put_req->id, ret, "PUT buffer");
			return false;
		}
		n = avail < cap ? avail : cap;
		if (n > c->remaining)
			n = c->remaining;
		memcpy(buf, c->in + c->in_off, n);
		c->in_off += n;
		c->remaining -= n;
		sto_put_fill(p, n);
	}
	if (c->remaining == 0) {
		c->state = C_HDR;
		c->put_req = NULL;
	}
	return true;
}

static void conn_process(struct conn *c)
{
	while (!c->fatal && !c->closed) {
		size_t avail = c->in_len - c->in_off;

		if (c->state == C_PAYLOAD) {
			if (!conn_feed_put(c) || c->state == C_PAYLOAD)
				break;
			continue;
		}
		if (c->state == C_DRAIN) {
			size_t n = avail < c->remaining ? avail : c->remaining;

			c->in_off += n;
			c->remaining -= n;
			if (c->remaining)
				break;
			c->state = C_HDR;
			continue;
		}
		if (c->inflight >= c->s->cfg.max_inflight || c->s->stopping)
			break;
		{
			const uint8_t *b = c->in + c->in_off;
			const char *why = NULL;
			StoRequest *q;
			uint32_t hl;
			int ret = sto_frame_prefix(b, avail, STO_MAX_REQ_HDR, &hl);

			if (ret < 0) {
				conn_fatal(c, 0, ret, "bad frame prefix");
				break;
			}
			if (ret == 0 || avail < STO_FRAME_PREFIX + (size_t)hl)
				break;
			ret = sto_req_decode(b + STO_FRAME_PREFIX, hl, &q, &why);
			if (ret < 0) {
				conn_fatal(c, 0, ret, why);
				break;
			}
			c->in_off += STO_FRAME_PREFIX + hl;
			if (!handle_listing(c, q)) {
				handle_request(c, q);
				sto_req_free(q);
			}
		}
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
	conn_update_reading(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	if (c->state == C_PAYLOAD && c->in_off == c->in_len) {
		void *b;
		size_t n;

		/* Payload lands directly in the engine's write buffer. */
		if (sto_put_buf(c->put_req->put, &b, &n) == 0) {
			if (n > c->remaining)
				n = c->remaining;
			*buf = uv_buf_init(b, n);
			return;
		}
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	if (c->in_off) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	*buf = uv_buf_init((char *)c->in + c->in_len, IN_CAP - c->in_len);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = st->data;

	if (nread == UV_ENOBUFS) {
		c->put_blocked = true;
		conn_update_reading(c);
		return;
	}
	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("read: %s", uv_strerror((int)nread));
		conn_shutdown(c);
		return;
	}
	if (nread == 0)
		return;
	if ((uint8_t *)buf->base >= c->in && (uint8_t *)buf->base < c->in + IN_CAP) {
		c->in_len += nread;
	} else {
		/* Straight into the PUT's buffer (see on_alloc). */
		c->remaining -= nread;
		sto_put_fill(c->put_req->put, nread);
		if (c->remaining == 0) {
			c->state = C_HDR;
			c->put_req = NULL;
		}
	}
	conn_process(c);
}

static void conn_update_reading(struct conn *c)
{
	bool want = !c->closing && !c->closed && !c->s->stopping &&
		    !(c->state == C_PAYLOAD && c->put_blocked) &&
		    (c->state != C_HDR || c->inflight < c->s->cfg.max_inflight);

	if (want == c->reading || c->closed)
		return;
	c->reading = want;
	if (want)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	else
		uv_read_stop((uv_stream_t *)&c->tcp);
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct sto_server *s = ls->data;
	struct conn *c;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->in = malloc(IN_CAP);
	if (!c->in) {
		free(c);
		return;
	}
	c->s = s;
	c->refs = 1;
	c->outq_tail = &c->outq;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	s->open++;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
		c->closed = true;
		uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	conn_update_reading(c);
}

int sto_server_start(uv_loop_t *loop, struct sto_engine *e,
		     const struct sto_server_cfg *cfg, struct sto_server **out)
{
	struct sto_server *s = calloc(1, sizeof(*s));
	struct sockaddr_storage ss;
	int len = sizeof(ss), ret;

	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->e = e;
	s->cfg = *cfg;
	if (!s->cfg.max_inflight)
		s->cfg.max_inflight = 256;
	if (!s->cfg.listing_max_limit)
		s->cfg.listing_max_limit = STO_LISTING_DEFAULT_LIMIT;
	if (s->cfg.listing_max_limit > STO_LISTING_MAX_LIMIT)
		s->cfg.listing_max_limit = STO_LISTING_MAX_LIMIT;
	if (uv_ip6_addr(cfg->addr, cfg->port, (struct sockaddr_in6 *)&ss) &&
	    (ret = uv_ip4_addr(cfg->addr, cfg->port, (struct sockaddr_in *)&ss)) < 0) {
		log_err("bad listen address %s", cfg->addr);
		free(s);
		return ret;
	}
	uv_tcp_init(loop, &s->listener);
	s->listener.data = s;
	s->open = 1;
	ret = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
	if (ret == 0)
		ret = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
	if (ret < 0) {
		log_err("listen on %s:%u: %s", cfg->addr, cfg->port, uv_strerror(ret));
		s->stopping = true;
		uv_close((uv_handle_t *)&s->listener, NULL);
		/* freed by the caller's loop run: keep it simple, leak-free */
		s->open = 0;
		*out = NULL;
		uv_run(loop, UV_RUN_NOWAIT);
		free(s);
		return ret;
	}
	uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
	s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	*out = s;
	return 0;
}

uint16_t sto_server_port(struct sto_server *s)
{
	return s->port;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct sto_server *s = h->data;

	s->open--;
	server_maybe_stopped(s);
}

void sto_server_stop(struct sto_server *s, void (*cb)(void *arg), void *arg)
{
	struct conn *c, *next;

	s->stopping = true;
	s->stop_cb = cb;
	s->stop_arg = arg;
	for (c = s->conns; c; c = next) {
		next = c->next;
		conn_shutdown(c);
	}
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
