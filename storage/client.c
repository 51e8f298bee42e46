/* storage/client.c: the asynchronous client library (see storage.h). */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>

#define CIN_CAP		(STO_FRAME_PREFIX + STO_MAX_RESP_HDR)

struct creq {
	struct creq *prev, *next;	/* pending list */
	struct sto_client *c;
	uint64_t id;
	StoOp op;
	uv_write_t w;
	uint8_t *hdr;
	uv_buf_t *bufs;			/* PUT with a long iovec */
	bool writing;			/* uv_write not completed yet */
	bool queued;			/* ... and waited for the peer to read */
	bool answered;			/* reply (or failure) in */
	StoResponse *resp;		/* reply that arrived while writing */
	int status;			/* final status when resp is NULL */
	sto_done_fn done;
	sto_chunk_fn chunk;
	sto_suffixes_fn suffixes;
	sto_entries_fn entries;
	sto_stat_fn stat;
	sto_listing_put_fn lput;
	sto_listing_page_fn lpage;
	sto_listing_stat_fn lstat;
	sto_listing_deleted_fn ldel;
	sto_listing_ids_fn lids;
	void *arg;
	uint8_t *dst;			/* sto_get_into: payload lands here */
	size_t dst_cap, dst_got;
	bool discard;			/* payload dropped (unbound, or > dst_cap) */
};

struct sto_client {
	uv_tcp_t tcp;
	uv_connect_t creq;
	sto_connect_fn connect_cb;
	void *connect_arg;
	uint8_t *in;
	size_t in_len, in_off;
	uint64_t next_id;
	struct creq *pending;
	unsigned npending;
	struct creq *cur;		/* GET whose payload is arriving */
	StoResponse *cur_resp;
	uint64_t cur_left;
	bool direct;			/* the pending read goes into cur->dst */
	bool connected, broken, closing;
	uint64_t last_progress;		/* monotonic ns: bytes received, or a
					 * write the peer had to drain done */
	uint64_t busy_since;		/* monotonic ns: npending went 0 -> 1 */
};

static void info_from(struct sto_info *i, const StoResponse *m)
{
	memset(i, 0, sizeof(*i));
	i->timestamp = m->timestamp;
	i->size = m->size;
	i->crc32c = m->crc32c;
	i->tombstone = m->tombstone;
	i->meta = m->meta.data;
	i->meta_len = (uint32_t)m->meta.len;
	i->medium = m->medium ? STO_MEDIUM_COLD : STO_MEDIUM_HOT;
	i->atime = m->atime;
	i->tier = m->tier_class <= STO_TIER_PIN_COLD ? (enum sto_tier_class)m->tier_class
						   : STO_TIER_STANDARD;
	i->cold_after = m->cold_after;
	i->offset = m->offset;
	i->length = m->payload_len;
	i->error = m->error && *m->error ? m->error : NULL;
}

static void copy_u64s(uint64_t *dst, size_t cap, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n && i < cap; i++)
		dst[i] = src[i];
}

static void tier_stat_from(struct sto_tier_stat *t, const StoTierStat *s)
{
	copy_u64s(t->objects, 2, s->objects, s->n_objects);
	copy_u64s(t->bytes, 2, s->bytes, s->n_bytes);
	copy_u64s(t->dead_bytes, 2, s->dead_bytes, s->n_dead_bytes);
	copy_u64s(t->reads, 2, s->reads, s->n_reads);
	copy_u64s(t->writes, 2, s->writes, s->n_writes);
	t->moved_down_objects = s->moved_down_objects;
	t->moved_down_bytes = s->moved_down_bytes;
	t->moved_up_objects = s->moved_up_objects;
	t->moved_up_bytes = s->moved_up_bytes;
	t->move_failures = s->move_failures;
	t->scans = s->scans;
	t->last_scan_age = s->last_scan_age;
	t->pending_promotions = s->pending_promotions;
	t->pending_moves = s->pending_moves;
	copy_u64s(t->hist[0], STO_TIER_HIST, s->hist_hot, s->n_hist_hot);
	copy_u64s(t->hist[1], STO_TIER_HIST, s->hist_cold, s->n_hist_cold);
	copy_u64s(t->hist_bounds, STO_TIER_HIST, s->hist_bounds, s->n_hist_bounds);
	copy_u64s(t->heat, STO_TIER_HEAT, s->heat, s->n_heat);
}

static void creq_unlink(struct sto_client *c, struct creq *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->pending = r->next;
	if (r->next)
		r->next->prev = r->prev;
	c->npending--;
}

/* A query reply into a struct sto_listing_page borrowing from m. */
static void listing_page_complete(struct creq *r, const StoResponse *m, int status)
{
	struct sto_listing_page pg = { 0 };
	struct sto_listing_entry *ev = NULL;
	struct sto_bytes *pv = NULL;

	if (status == 0 && m) {
		pg.n_entries = m->n_listing_entries;
		pg.n_prefixes = m->n_common_prefixes;
		ev = calloc(pg.n_entries + 1, sizeof(*ev));
		pv = calloc(pg.n_prefixes + 1, sizeof(*pv));
		if (!ev || !pv)
			status = -ENOMEM;
	}
	if (status == 0 && m) {
		for (size_t i = 0; i < pg.n_entries; i++) {
			const StoListingEntry *e = m->listing_entries[i];

			ev[i].key = e->key.data;
			ev[i].key_len = (uint32_t)e->key.len;
			ev[i].timestamp = e->timestamp;
			ev[i].tombstone = e->tombstone;
			ev[i].value = e->value.data;
			ev[i].value_len = (uint32_t)e->value.len;
		}
		for (size_t i = 0; i < pg.n_prefixes; i++)
			pv[i] = (struct sto_bytes){ m->common_prefixes[i].data,
						    (uint32_t)m->common_prefixes[i].len };
		pg.entries = ev;
		pg.prefixes = pv;
		pg.is_truncated = m->is_truncated;
		pg.next_marker = (struct sto_bytes){ m->next_marker.data,
						     (uint32_t)m->next_marker.len };
	}
	r->lpage(r->arg, status, status == 0 && m ? &pg : NULL);
	free(ev);
	free(pv);
}

/* Runs the callback of r with resp (or r->status) and frees r. */
static void creq_complete(struct creq *r)
{
	const StoResponse *m = r->resp;
	int status = m ? m->status : r->status;
	struct sto_info info;

	if (m)
		info_from(&info, m);
	switch (r->op) {
	case STO_OP__STO_OP_LIST:
		if (r->suffixes) {
			struct sto_suffix_hash *v = NULL;
			size_t n = m && status == 0 ? m->n_suffixes : 0;

			if (n && !(v = calloc(n, sizeof(*v)))) {
				status = -ENOMEM;
				n = 0;
			}
			for (size_t i = 0; i < n; i++) {
				v[i].suffix = m->suffixes[i]->suffix;
				v[i].hash = m->suffixes[i]->hash;
				v[i].count = m->suffixes[i]->count;
			}
			r->suffixes(r->arg, status, v, n);
			free(v);
		} else {
			struct sto_list_entry *v = NULL;
			size_t n = m && status == 0 ? m->n_entries : 0;

			if (n && !(v = calloc(n, sizeof(*v)))) {
				status = -ENOMEM;
				n = 0;
			}
			for (size_t i = 0; i < n; i++) {
				const StoListEntry *e = m->entries[i];

				if (e->name_hash.len == STO_NAME_HASH_LEN)
					memcpy(v[i].name, e->name_hash.data, STO_NAME_HASH_LEN);
				v[i].frag = e->frag_index;
				v[i].timestamp = e->timestamp;
				v[i].tombstone = e->tombstone;
				v[i].size = e->size;
			}
			r->entries(r->arg, status, v, n);
			free(v);
		}
		break;
	case STO_OP__STO_OP_STAT: {
		struct sto_stat st;
		const StoStat *s = m ? m->stat : NULL;

		memset(&st, 0, sizeof(st));
		if (status == 0 && !s)
			status = STO_EPROTO;
		if (status == 0) {
			for (size_t i = 0; i < s->n_media && i < 2; i++) {
				const StoMediumStat *ms = s->media[i];

				st.media[i].medium = i;
				st.media[i].dirs = ms->dirs;
				st.media[i].volumes = ms->volumes;
				st.media[i].capacity_bytes = ms->capacity_bytes;
				st.media[i].free_bytes = ms->free_bytes;
				st.media[i].used_bytes = ms->used_bytes;
				st.media[i].reserve_bytes = ms->reserve_bytes;
			}
			st.objects = s->objects;
			st.quarantined = s->quarantined;
			st.puts = s->puts;
			st.gets = s->gets;
			st.deletes = s->deletes;
			st.crc_errors = s->crc_errors;
			st.bytes_in = s->bytes_in;
			st.bytes_out = s->bytes_out;
			st.group_commits = s->group_commits;
			st.fsyncs = s->fsyncs;
			st.nospace = s->nospace;
			st.conflicts = s->conflicts;
			st.fsync_us = s->fsync_us;
			st.commit_us = s->commit_us;
			if (s->tier)
				tier_stat_from(&st.tier, s->tier);
			st.purged = s->purged;
			st.misses = s->misses;
			st.audit.last_pass_age = UINT64_MAX;
			if (s->audit) {
				st.audit.passes = s->audit->passes;
				st.audit.checked = s->audit->checked;
				st.audit.bytes = s->audit->bytes;
				st.audit.corrupt = s->audit->corrupt;
				st.audit.pass_done = s->audit->pass_done;
				st.audit.pass_total = s->audit->pass_total;
				st.audit.last_pass_age = s->audit->passes ?
							 s->audit->last_pass_age : UINT64_MAX;
				st.audit.last_pass_seconds = s->audit->last_pass_seconds;
			}
		}
		r->stat(r->arg, status, status == 0 ? &st : NULL);
		break;
	}
	case STO_OP__STO_OP_LISTING_PUT:
		r->lput(r->arg, status, m && status == 0 ? m->count : 0);
		break;
	case STO_OP__STO_OP_LISTING_DELETE_RANGE: {
		struct sto_bytes next = { NULL, 0 };
		bool more = m && status == 0 && m->is_truncated;

		if (more)
			next = (struct sto_bytes){ m->next_marker.data,
						   (uint32_t)m->next_marker.len };
		r->ldel(r->arg, status, m && status == 0 ? m->count : 0, more, next);
		break;
	}
	case STO_OP__STO_OP_LISTING_QUERY:
		listing_page_complete(r, m, status);
		break;
	case STO_OP__STO_OP_LISTING_IDS: {
		struct sto_listing_info *v = NULL;
		size_t n = m && status == 0 ? m->n_listings : 0;

		if (n && !(v = calloc(n, sizeof(*v)))) {
			status = -ENOMEM;
			n = 0;
		}
		for (size_t i = 0; i < n; i++) {
			const StoListingInfo *li = m->listings[i];

			if (li->listing_id.len != STO_LISTING_ID_LEN) {
				status = STO_EPROTO;
				n = 0;
				break;
			}
			memcpy(v[i].id, li->listing_id.data, STO_LISTING_ID_LEN);
			v[i].entries = li->entries;
			v[i].tombstones = li->tombstones;
			v[i].bytes = li->bytes;
			v[i].hash = li->hash;
		}
		r->lids(r->arg, status, v, n, m && status == 0 && m->is_truncated);
		free(v);
		break;
	}
	case STO_OP__STO_OP_LISTING_STAT: {
		struct sto_listing_stat st;
		const StoListingStat *s = m ? m->listing_stat : NULL;

		memset(&st, 0, sizeof(st));
		if (status == 0 && !s)
			status = STO_EPROTO;
		if (status == 0) {
			st.entries = s->entries;
			st.tombstones = s->tombstones;
			st.bytes = s->bytes;
			st.first_key = (struct sto_bytes){ s->first_key.data,
							   (uint32_t)s->first_key.len };
			st.last_key = (struct sto_bytes){ s->last_key.data,
							  (uint32_t)s->last_key.len };
		}
		r->lstat(r->arg, status, status == 0 ? &st : NULL);
		break;
	}
	default:
		r->done(r->arg, status, m ? &info : NULL);
		break;
	}
	sto_resp_free(r->resp);
	free(r->hdr);
	free(r->bufs);
	free(r);
}

/* The reply (or failure) is in; complete now unless the request's bytes
 * are still being written (the caller's buffers must outlive that). */
static void creq_answered(struct sto_client *c, struct creq *r, StoResponse *m,
			  int status)
{
	creq_unlink(c, r);
	r->answered = true;
	r->resp = m;
	r->status = status;
	if (!r->writing)
		creq_complete(r);
}

static void on_req_written(uv_write_t *w, int status)
{
	struct creq *r = w->data;

	/* Only a write that waited for the peer proves it reads: one the
	 * kernel took at once may sit in the buffers of a hung node. */
	if (status == 0 && r->queued)
		r->c->last_progress = strata_now_ns();
	r->writing = false;
	if (r->answered)
		creq_complete(r);	/* already answered (or failed) */
}

/* The connection is unusable: every pending request fails. */
static void client_break(struct sto_client *c, int err)
{
	if (!c->broken && !c->closing)
		log_debug("storage connection lost: %s", sto_strerror(err));
	c->broken = true;
	if (c->connected)
		uv_read_stop((uv_stream_t *)&c->tcp);
	if (c->cur) {
		sto_resp_free(c->cur_resp);
		c->cur_resp = NULL;
		c->cur = NULL;
	}
	while (c->pending)
		creq_answered(c, c->pending, NULL, STO_ECLOSED);
}

/* The streamed payload of c->cur is complete. */
static void payload_done(struct sto_client *c)
{
	struct creq *r = c->cur;

	c->cur = NULL;
	r->dst = NULL;
	creq_answered(c, r, c->cur_resp, 0);
	c->cur_resp = NULL;
}

static void client_process(struct sto_client *c)
{
	while (!c->broken) {
		size_t avail = c->in_len - c->in_off;
		const uint8_t *b = c->in + c->in_off;
		StoResponse *m;
		struct creq *r;
		uint32_t hl;
		int ret;

		if (c->cur) {
			size_t n = avail < c->cur_left ? avail : c->cur_left;
			struct sto_info info;

			if (n == 0)
				break;
			if (c->cur->dst) {
				memcpy(c->cur->dst + c->cur->dst_got, b, n);
				c->cur->dst_got += n;
			} else if (c->cur->chunk && !c->cur->discard) {
				info_from(&info, c->cur_resp);
				c->cur->chunk(c->cur->arg, &info, b, n);
			}
			c->in_off += n;
			c->cur_left -= n;
			if (c->cur_left == 0)
				payload_done(c);
			continue;
		}
		ret = sto_frame_prefix(b, avail, STO_MAX_RESP_HDR, &hl);
		if (ret < 0) {
			client_break(c, ret);
			break;
		}
		if (ret == 0 || avail < STO_FRAME_PREFIX + (size_t)hl)
			break;
		ret = sto_resp_decode(b + STO_FRAME_PREFIX, hl, &m);
		if (ret < 0) {
			client_break(c, ret);
			break;
		}
		c->in_off += STO_FRAME_PREFIX + hl;
		for (r = c->pending; r && r->id != m->id; r = r->next)
			;
		if (!r) {
			/* A connection-level error (id 0) or a stray reply. */
			log_debug("reply to unknown request %llu: %s",
				  (unsigned long long)m->id, sto_strerror(m->status));
			sto_resp_free(m);
			client_break(c, STO_EPROTO);
			break;
		}
		if (m->payload_len) {
			if (r->op != STO_OP__STO_OP_GET) {
				sto_resp_free(m);
				client_break(c, STO_EPROTO);
				break;
			}
			c->cur = r;
			c->cur_resp = m;
			c->cur_left = m->payload_len;
			if (r->dst && m->payload_len > r->dst_cap) {
				r->dst = NULL;		/* dropped: the caller's
							 * buffer is too small */
				r->discard = true;
				m->status = -EMSGSIZE;
			}
			continue;
		}
		creq_answered(c, r, m, 0);
	}
	if (c->in_off == c->in_len)
		c->in_off = c->in_len = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct sto_client *c = h->data;

	(void)suggested;
	/* Nothing buffered and a payload with a destination arriving: the
	 * kernel copies it straight there (no bounce through c->in). */
	c->direct = c->cur && c->cur->dst && c->in_off == c->in_len;
	if (c->direct) {
		size_t n = c->cur_left < (1u << 30) ? c->cur_left : (1u << 30);

		c->in_off = c->in_len = 0;
		*buf = uv_buf_init((char *)c->cur->dst + c->cur->dst_got, n);
		return;
	}
	if (c->in_off) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	*buf = uv_buf_init((char *)c->in + c->in_len, CIN_CAP - c->in_len);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct sto_client *c = s->data;

	bool direct = c->direct;

	(void)buf;
	c->direct = false;
	if (nread < 0) {
		client_break(c, nread == UV_EOF ? STO_ECLOSED : (int)nread);
		return;
	}
	if (nread > 0)
		c->last_progress = strata_now_ns();
	if (direct) {
		/* The payload went to cur->dst (sto_get_unbind cannot run
		 * between on_alloc and here: both are one libuv read). */
		if (c->cur && c->cur->dst) {
			c->cur->dst_got += (size_t)nread;
			c->cur_left -= (uint64_t)nread;
			if (c->cur_left == 0)
				payload_done(c);
		}
		return;
	}
	c->in_len += nread;
	client_process(c);
}

static void on_connect(uv_connect_t *cr, int status)
{
	struct sto_client *c = cr->data;

	if (status == 0 && !c->closing) {
		c->connected = true;
		uv_tcp_nodelay(&c->tcp, 1);
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	} else {
		c->broken = true;
	}
	if (c->connect_cb)
		c->connect_cb(c, c->closing ? STO_ECLOSED : status, c->connect_arg);
}

int sto_client_connect(uv_loop_t *loop, const char *host, uint16_t port,
		       sto_connect_fn cb, void *arg, sto_client **out)
{
	struct sockaddr_storage ss;
	struct sto_client *c;
	int ret;

	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->in = malloc(CIN_CAP);
	if (!c->in) {
		free(c);
		return -ENOMEM;
	}
	c->next_id = 1;
	c->connect_cb = cb;
	c->connect_arg = arg;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	c->creq.data = c;
	ret = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&ss, on_connect);
	if (ret < 0) {
		c->broken = true;
		c->connect_cb = NULL;
		sto_client_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

static void on_client_closed(uv_handle_t *h)
{
	struct sto_client *c = h->data;

	client_break(c, STO_ECLOSED);
	free(c->in);
	free(c);
}

void sto_client_close(sto_client *c)
{
	if (!c || c->closing)
		return;
	c->closing = true;
	client_break(c, STO_ECLOSED);
	uv_close((uv_handle_t *)&c->tcp, on_client_closed);
}

unsigned sto_client_pending(const sto_client *c)
{
	return c->npending;
}

uint64_t sto_client_last_progress(const sto_client *c)
{
	return c->last_progress;
}

uint64_t sto_client_busy_since(const sto_client *c)
{
	return c->npending ? c->busy_since : 0;
}

bool sto_client_peer_ready(const sto_client *c)
{
	struct pollfd p = { .events = POLLIN | POLLOUT };
	uv_os_fd_t fd;
	int n = 0;

	if (c->closing || uv_fileno((const uv_handle_t *)&c->tcp, &fd) < 0)
		return false;
	if (c->connected)
		return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
	p.fd = fd;
	return poll(&p, 1, 0) == 1 && !(p.revents & (POLLERR | POLLHUP));
}

/* Sends q (and the PUT payload iov) as one frame; r is filled and linked. */
static int client_send(sto_client *c, StoRequest *q, struct creq *r,
		       const struct iovec *iov, unsigned iovcnt)
{
	uv_buf_t small[9], *b = small;
	size_t len;
	int ret;

	if (c->broken || c->closing || !c->connected) {
		free(r);
		return c->connected || c->broken ? -ENOTCONN : -EAGAIN;
	}
	q->version = STO_PROTO_VERSION;
	q->id = r->id = c->next_id++;
	r->op = q->op;
	r->c = c;
	ret = sto_req_encode(q, &r->hdr, &len);
	if (ret < 0) {
		free(r);
		return ret;
	}
	if (iovcnt + 1 > ARRAY_SIZE(small)) {
		b = r->bufs = malloc((iovcnt + 1) * sizeof(*b));
		if (!b) {
			free(r->hdr);
			free(r);
			return -ENOMEM;
		}
	}
	b[0] = uv_buf_init((char *)r->hdr, len);
	for (unsigned i = 0; i < iovcnt; i++)
		b[i + 1] = uv_buf_init(iov[i].iov_base, iov[i].iov_len);
	r->w.data = r;
	ret = uv_write(&r->w, (uv_stream_t *)&c->tcp, b, iovcnt + 1, on_req_written);
	if (ret < 0) {
		free(r->hdr);
		free(r->bufs);
		free(r);
		return ret;
	}
	r->writing = true;
	r->queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0;
	if (!c->npending)
		c->busy_since = strata_now_ns();
	r->next = c->pending;
	if (c->pending)
		c->pending->prev = r;
	c->pending = r;
	c->npending++;
	return 0;
}

static void req_key(StoRequest *q, const struct sto_key *k)
{
	q->partition = k->part;
	q->name_hash.data = (uint8_t *)k->name;
	q->name_hash.len = STO_NAME_HASH_LEN;
	q->frag_index = k->frag;
}

int sto_put(sto_client *c, const struct sto_key *k, uint64_t timestamp,
	    const void *meta, uint32_t meta_len, const struct iovec *iov,
	    unsigned iovcnt, uint32_t crc, sto_done_fn cb, void *arg)
{
	return sto_put_ex(c, k, timestamp, meta, meta_len, iov, iovcnt, crc, NULL,
			  cb, arg);
}

int sto_put_ex(sto_client *c, const struct sto_key *k, uint64_t timestamp,
	       const void *meta, uint32_t meta_len, const struct iovec *iov,
	       unsigned iovcnt, uint32_t crc, const struct sto_put_opts *o,
	       sto_done_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r;
	uint64_t len = 0;

	if (meta_len > STO_MAX_META)
		return -EMSGSIZE;
	for (unsigned i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	if (len > STO_MAX_FRAGMENT)
		return -EFBIG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->done = cb;
	r->arg = arg;
	q.op = STO_OP__STO_OP_PUT;
	req_key(&q, k);
	q.timestamp = timestamp;
	q.payload_len = len;
	q.crc32c = crc;
	q.meta.data = (uint8_t *)meta;
	q.meta.len = meta_len;
	if (o) {
		if ((unsigned)o->tier > STO_TIER_PIN_COLD) {
			free(r);
			return -EINVAL;
		}
		q.tier_class = o->tier;
		q.cold_after = o->cold_after;
	}
	return client_send(c, &q, r, iov, iovcnt);
}

/* Sends GET [offset, offset+length) of k for r (filled by the caller). */
static int get_send(sto_client *c, struct creq *r, const struct sto_key *k,
		    uint64_t offset, uint64_t length, uint64_t *id)
{
	StoRequest q = STO_REQUEST__INIT;
	int ret;

	q.op = STO_OP__STO_OP_GET;
	req_key(&q, k);
	q.offset = offset;
	q.length = length;
	ret = client_send(c, &q, r, NULL, 0);
	if (ret == 0 && id)
		*id = q.id;
	return ret;
}

int sto_get(sto_client *c, const struct sto_key *k, uint64_t offset,
	    uint64_t length, sto_chunk_fn chunk, sto_done_fn done, void *arg)
{
	struct creq *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->chunk = chunk;
	r->done = done;
	r->arg = arg;
	return get_send(c, r, k, offset, length, NULL);
}

int sto_get_into(sto_client *c, const struct sto_key *k, uint64_t offset,
		 uint64_t length, void *buf, size_t cap, sto_done_fn done, void *arg,
		 uint64_t *id)
{
	struct creq *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->done = done;
	r->arg = arg;
	r->dst = buf;
	r->dst_cap = cap;
	return get_send(c, r, k, offset, length, id);
}

void sto_get_unbind(sto_client *c, uint64_t id)
{
	struct creq *r;

	for (r = c->pending; r && r->id != id; r = r->next)
		;
	if (r && r->op == STO_OP__STO_OP_GET) {
		r->dst = NULL;
		r->discard = true;
	}
}

/* HEAD, DELETE and PURGE: a key (and a timestamp), an info reply. */
static int key_send(sto_client *c, StoOp op, const struct sto_key *k,
		    uint64_t timestamp, sto_done_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->done = cb;
	r->arg = arg;
	q.op = op;
	req_key(&q, k);
	q.timestamp = timestamp;
	return client_send(c, &q, r, NULL, 0);
}

int sto_head(sto_client *c, const struct sto_key *k, sto_done_fn cb, void *arg)
{
	return key_send(c, STO_OP__STO_OP_HEAD, k, 0, cb, arg);
}

int sto_delete(sto_client *c, const struct sto_key *k, uint64_t timestamp,
	       sto_done_fn cb, void *arg)
{
	return key_send(c, STO_OP__STO_OP_DELETE, k, timestamp, cb, arg);
}

int sto_purge(sto_client *c, const struct sto_key *k, uint64_t timestamp,
	      sto_done_fn cb, void *arg)
{
	return key_send(c, STO_OP__STO_OP_PURGE, k, timestamp, cb, arg);
}

int sto_set_tier(sto_client *c, const struct sto_key *k, uint64_t timestamp,
		 const struct sto_put_opts *o, sto_done_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r;

	if (!timestamp || o->tier > STO_TIER_PIN_COLD)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->done = cb;
	r->arg = arg;
	q.op = STO_OP__STO_OP_SET_TIER;
	req_key(&q, k);
	q.timestamp = timestamp;
	q.tier_class = o->tier;
	q.cold_after = o->cold_after;
	return client_send(c, &q, r, NULL, 0);
}

int sto_listing_ids(sto_client *c, uint32_t part, const uint8_t *after,
		    sto_listing_ids_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->lids = cb;
	r->arg = arg;
	q.op = STO_OP__STO_OP_LISTING_IDS;
	q.partition = part;
	if (after) {
		q.start_after.data = (uint8_t *)after;
		q.start_after.len = STO_LISTING_ID_LEN;
	}
	return client_send(c, &q, r, NULL, 0);
}

int sto_list_suffixes(sto_client *c, uint32_t part, sto_suffixes_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->suffixes = cb;
	r->arg = arg;
	q.op = STO_OP__STO_OP_LIST;
	q.partition = part;
	return client_send(c, &q, r, NULL, 0);
}

int sto_list_objects(sto_client *c, uint32_t part, uint32_t suffix,
		     sto_entries_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r;

	if (suffix >= (1u << STO_SUFFIX_BITS))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->entries = cb;
	r->arg = arg;
	q.op = STO_OP__STO_OP_LIST;
	q.partition = part;
	q.list_objects = true;
	q.suffix = suffix;
	return client_send(c, &q, r, NULL, 0);
}

int sto_stat(sto_client *c, sto_stat_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->stat = cb;
	r->arg = arg;
	q.op = STO_OP__STO_OP_STAT;
	return client_send(c, &q, r, NULL, 0);
}

/* ------------------------------------------------------------- listings */

static void req_listing(StoRequest *q, StoOp op, const struct sto_listing_id *id)
{
	q->op = op;
	q->partition = id->part;
	q->listing_id.data = (uint8_t *)id->id;
	q->listing_id.len = STO_LISTING_ID_LEN;
}

static bool bytes_ok(struct sto_bytes b, uint32_t max)
{
	return b.len <= max && (b.len == 0 || b.data);
}

int sto_listing_put(sto_client *c, const struct sto_listing_id *id,
		    const struct sto_listing_entry *v, size_t n,
		    sto_listing_put_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	StoListingEntry *pe;
	StoListingEntry **pp;
	struct creq *r;
	int ret;

	if (n == 0 || n > STO_LISTING_MAX_BATCH)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (v[i].key_len == 0 || v[i].key_len > STO_LISTING_MAX_KEY ||
		    v[i].value_len > STO_LISTING_MAX_VALUE || v[i].timestamp == 0 ||
		    (v[i].tombstone && v[i].value_len))
			return -EINVAL;
	r = calloc(1, sizeof(*r));
	pe = calloc(n, sizeof(*pe));
	pp = calloc(n, sizeof(*pp));
	if (!r || !pe || !pp) {
		free(r);
		free(pe);
		free(pp);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		sto_listing_entry__init(&pe[i]);
		pe[i].key.data = (uint8_t *)v[i].key;
		pe[i].key.len = v[i].key_len;
		pe[i].timestamp = v[i].timestamp;
		pe[i].tombstone = v[i].tombstone;
		pe[i].value.data = (uint8_t *)v[i].value;
		pe[i].value.len = v[i].value_len;
		pp[i] = &pe[i];
	}
	r->lput = cb;
	r->arg = arg;
	req_listing(&q, STO_OP__STO_OP_LISTING_PUT, id);
	q.n_listing_entries = n;
	q.listing_entries = pp;
	ret = client_send(c, &q, r, NULL, 0);	/* encodes (copies) q */
	free(pe);
	free(pp);
	return ret;
}

int sto_listing_query(sto_client *c, const struct sto_listing_id *id,
		      const struct sto_listing_query *lq, sto_listing_page_fn cb,
		      void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r;

	if (!bytes_ok(lq->start_after, STO_LISTING_MAX_KEY) ||
	    !bytes_ok(lq->prefix, STO_LISTING_MAX_KEY) ||
	    !bytes_ok(lq->delimiter, STO_LISTING_MAX_DELIM) ||
	    lq->limit > STO_LISTING_MAX_LIMIT)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->lpage = cb;
	r->arg = arg;
	req_listing(&q, STO_OP__STO_OP_LISTING_QUERY, id);
	q.start_after.data = (uint8_t *)lq->start_after.data;
	q.start_after.len = lq->start_after.len;
	q.prefix.data = (uint8_t *)lq->prefix.data;
	q.prefix.len = lq->prefix.len;
	q.delimiter.data = (uint8_t *)lq->delimiter.data;
	q.delimiter.len = lq->delimiter.len;
	q.limit = lq->limit;
	q.include_tombstones = lq->include_tombstones;
	return client_send(c, &q, r, NULL, 0);
}

int sto_listing_stat(sto_client *c, const struct sto_listing_id *id,
		     sto_listing_stat_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->lstat = cb;
	r->arg = arg;
	req_listing(&q, STO_OP__STO_OP_LISTING_STAT, id);
	return client_send(c, &q, r, NULL, 0);
}

int sto_listing_delete_range(sto_client *c, const struct sto_listing_id *id,
			     struct sto_bytes start, struct sto_bytes end,
			     uint32_t max, sto_listing_deleted_fn cb, void *arg)
{
	StoRequest q = STO_REQUEST__INIT;
	struct creq *r;

	if (!bytes_ok(start, STO_LISTING_MAX_KEY) || !bytes_ok(end, STO_LISTING_MAX_KEY))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->ldel = cb;
	r->arg = arg;
	req_listing(&q, STO_OP__STO_OP_LISTING_DELETE_RANGE, id);
	q.start_after.data = (uint8_t *)start.data;
	q.start_after.len = start.len;
	q.end.data = (uint8_t *)end.data;
	q.end.len = end.len;
	q.limit = max > STO_LISTING_MAX_DELETE ? STO_LISTING_MAX_DELETE : max;
	return client_send(c, &q, r, NULL, 0);
}
