/* gw_copy.c: CopyObject and UploadPartCopy.
 *
 * A copy is a GET of the source feeding a PUT of the destination inside one
 * request: the GET pipeline reads the source's segments (2 ahead, hedged and
 * decoded as for a client GET; whole parts of a multipart source in order)
 * and hands each ready slice to the PUT's segment buffers, which encode and
 * write them as any PUT does; a slice waits while both buffers are busy. So
 * a copy holds at most 4 segments whatever the object's size, and its head
 * goes out through the PUT's commit (gw_put_maybe_head), after every byte
 * was read and rewritten. An inline source is one read of its head's
 * payload.
 *
 * A large copy answers 200 at once and sends a space every few seconds
 * until the result (or an error) document follows, as S3 does, so clients'
 * read timeouts do not cut long copies; the XML declaration goes first so
 * the whitespace is legal XML. */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define COPY_KEEPALIVE_MIN	(32ull << 20)	/* copies this large stream */
#define COPY_KEEPALIVE_MS	5000
static const char xml_decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/* The keepalive timer: its own allocation, closed asynchronously. */
struct copy_ka {
	uv_timer_t t;
	struct gw_req *r;
};

struct gw_copy {
	char *bucket, *key;		/* the source */
	char *path;			/* "/owner/bucket/key" */
	bool replace;			/* x-amz-metadata-directive: REPLACE */
	bool has_range;			/* x-amz-copy-source-range */
	uint64_t ra, rb;
	struct s3_cksum md5;
	bool md5_init, done;
	/* UploadPartCopy into an upload with a checksum algorithm: the
	 * part's checksum, computed as it streams (ck.alg NONE: none) */
	struct s3_cksum ck;
	struct copy_ka *ka;		/* streaming answer: 200 is out */
	bool streaming;
};

static void ka_closed(uv_handle_t *h)
{
	struct copy_ka *ka = h->data;

	gw_req_put(ka->r);
	free(ka);
}

static void ka_stop(struct gw_copy *c)
{
	if (!c->ka)
		return;
	uv_timer_stop(&c->ka->t);
	uv_close((uv_handle_t *)&c->ka->t, ka_closed);
	c->ka = NULL;
}

static void ka_tick(uv_timer_t *t)
{
	struct copy_ka *ka = t->data;
	static const char space[] = " ";
	uv_buf_t b = uv_buf_init((char *)space, 1);

	if (ka->r->hr)
		http_resp_write(ka->r->hr, &b, 1, NULL, NULL);
	else
		ka_stop(ka->r->copy);	/* the client is gone */
}

/* 200 with the XML declaration now, the document at the end. */
static void stream_start(struct gw_req *r)
{
	struct gw_copy *c = r->copy;
	uv_buf_t b = uv_buf_init((char *)xml_decl, sizeof(xml_decl) - 1);

	c->ka = calloc(1, sizeof(*c->ka));
	if (!c->ka)
		return;		/* then no keepalive: answer at the end */
	gw_resp_common(r);
	http_resp_header(r->hr, "Content-Type", "application/xml");
	if (http_resp_start(r->hr, 200, -1) < 0 ||
	    http_resp_write(r->hr, &b, 1, NULL, NULL) < 0) {
		free(c->ka);
		c->ka = NULL;
		return;
	}
	c->streaming = true;
	c->ka->r = gw_req_get(r);
	uv_timer_init(r->gw->loop, &c->ka->t);
	c->ka->t.data = c->ka;
	uv_timer_start(&c->ka->t, ka_tick, COPY_KEEPALIVE_MS, COPY_KEEPALIVE_MS);
}

static void on_doc_written(struct http_req *hr, int status, void *arg)
{
	(void)hr; (void)status;
	free(arg);
}

/* Streaming: the document b (its declaration already sent) ends the
 * answer. */
static void stream_end(struct gw_req *r, const struct s3_buf *b)
{
	size_t skip = sizeof(xml_decl) - 1;
	char *p;
	uv_buf_t u;

	ka_stop(r->copy);
	r->responded = true;
	if (!r->hr)
		return;
	if (b->len < skip || memcmp(b->p, xml_decl, skip))
		skip = 0;
	p = malloc(b->len - skip + 1);
	if (!p) {
		http_req_set_close(r->hr);
		http_resp_end(r->hr);
		return;
	}
	memcpy(p, b->p + skip, b->len - skip);
	u = uv_buf_init(p, (unsigned)(b->len - skip));
	if (http_resp_write(r->hr, &u, 1, on_doc_written, p) < 0)
		free(p);
	http_resp_end(r->hr);
}

bool gw_copy_stream_error(struct gw_req *r, const struct s3_buf *doc)
{
	if (!r->copy || !r->copy->streaming || r->responded)
		return false;
	stream_end(r, doc);
	return true;
}

void gw_copy_free(struct gw_req *r)
{
	struct gw_copy *c = r->copy;

	if (!c)
		return;
	if (c->md5_init)
		s3_cksum_free(&c->md5);
	s3_cksum_free(&c->ck);
	ka_stop(c);
	free(c->bucket);
	free(c->key);
	free(c->path);
	free(c);
	r->copy = NULL;
}

/* "bytes=a-b" (both required, as S3 wants for UploadPartCopy). */
static int parse_copy_range(const char *s, uint64_t *a, uint64_t *b)
{
	char *end;

	if (strncmp(s, "bytes=", 6) || s[6] < '0' || s[6] > '9')
		return -EINVAL;
	*a = strtoull(s + 6, &end, 10);
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return -EINVAL;
	*b = strtoull(end + 1, &end, 10);
	if (*end || *b < *a)
		return -EINVAL;
	return 0;
}

/* x-amz-copy-source: "[/]bucket/key[?versionId=v]", %-encoded. */
static int parse_source(struct gw_req *r, struct gw_copy *c)
{
	size_t n, dl;
	const char *v = http_req_header(r->hr, "x-amz-copy-source", &n);
	const char *q;
	char *dec, *slash;

	if (!v)
		return GWE_INVALID_COPY_SOURCE;
	if (n && *v == '/') {
		v++;
		n--;
	}
	q = memchr(v, '?', n);
	if (q)		/* XXX versionId: no versioning yet, the current one */
		n = (size_t)(q - v);
	dec = malloc(n + 1);
	if (!dec)
		return -ENOMEM;
	if (http_url_decode(v, n, dec, &dl, false) < 0) {
		free(dec);
		return GWE_INVALID_COPY_SOURCE;
	}
	dec[dl] = '\0';
	slash = strchr(dec, '/');
	if (!slash || slash == dec || !slash[1] || strlen(slash + 1) > S3_MAX_KEY_LEN) {
		free(dec);
		return GWE_INVALID_COPY_SOURCE;
	}
	*slash = '\0';
	c->bucket = strdup(dec);
	c->key = strdup(slash + 1);
	free(dec);
	return c->bucket && c->key ? 0 : -ENOMEM;
}

static int source_lookup(struct gw_req *r, const char *owner)
{
	struct gw_copy *c = r->copy;
	size_t n = strlen(owner) + strlen(c->bucket) + strlen(c->key) + 3;

	if (n > RING_PATH_MAX)
		return S3E_TOO_LARGE;
	c->path = malloc(n + 1);
	if (!c->path)
		return -ENOMEM;
	r->rpath_len = (size_t)snprintf(c->path, n + 1, "/%s/%s/%s", owner, c->bucket,
					c->key);
	r->rpath = c->path;
	/* (rpart_ec: once its head names its policy, gw_req_read_policy) */
	if (ring_part_of(r->gw->rep, owner, c->bucket, c->key, &r->rpart_rep) < 0)
		return S3E_TOO_LARGE;
	r->rpol = NULL;
	return gw_object_lookup(r);
}

/* The source bucket's record (another bucket than the destination's). */
static void on_source_bucket(const struct gw_hlook_result *res, void *arg)
{
	struct gw_req *r = arg;
	struct gw_meta m;
	int ret;

	if (!r->hr || r->responded)
		goto out;
	if (res->status == -ENOENT) {
		gw_send_error(r, GWE_COPY_NO_SUCH_BUCKET);
		goto out;
	}
	if (res->status < 0 || gw_meta_decode(res->meta, res->meta_len, &m) < 0 ||
	    m.kind != GW_META_BUCKET || !m.owner) {
		if (res->status >= 0)
			gw_meta_free(&m);
		gw_send_error(r, -EHOSTUNREACH);
		goto out;
	}
	/* No ACLs yet: only the owner reads a bucket. */
	ret = strcmp(m.owner, r->account) ? S3E_ACCESS_DENIED : source_lookup(r, m.owner);
	gw_meta_free(&m);
	if (ret < 0)
		gw_send_error(r, ret);
out:
	gw_req_put(r);
}

int gw_copy_begin(struct gw_req *r)
{
	struct gw_copy *c;
	const char *d, *rng;
	int ret;

	if (!r->path && (ret = gw_object_path(r)) < 0)
		return ret;
	c = r->copy = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = parse_source(r, c);
	if (ret < 0)
		return ret;
	d = http_req_header(r->hr, "x-amz-metadata-directive", NULL);
	if (d && strcasecmp(d, "COPY") && strcasecmp(d, "REPLACE"))
		return GWE_MPU_INVALID_ARG;
	c->replace = d && !strcasecmp(d, "REPLACE");
	/* Onto itself: allowed when something changes (metadata, or the
	 * storage class). */
	if (r->op == OP_COPY_OBJECT && !c->replace && !strcmp(c->bucket, r->bucket) &&
	    !strcmp(c->key, r->key) && !http_req_header(r->hr, "x-amz-storage-class", NULL))
		return GWE_INVALID_REQUEST_COPY;
	rng = http_req_header(r->hr, "x-amz-copy-source-range", NULL);
	if (rng) {
		if (r->op != OP_UPLOAD_PART_COPY ||
		    parse_copy_range(rng, &c->ra, &c->rb) < 0)
			return GWE_MPU_INVALID_ARG;
		c->has_range = true;
	}
	if (!strcmp(c->bucket, r->bucket))
		return source_lookup(r, r->owner);
	{
		char path[128];
		uint8_t name[STO_NAME_HASH_LEN];
		int n = snprintf(path, sizeof(path), "/.buckets/%s", c->bucket);

		if (n < 0 || (size_t)n >= sizeof(path))
			return GWE_COPY_NO_SUCH_BUCKET;
		gw_name_hash(path, (size_t)n, name);
		gw_req_get(r);
		ret = gw_hlook_start(&r->gw->st, r->gw->rep,
				     ring_part_of_path(r->gw->rep, path, (size_t)n), name, 0,
				     on_source_bucket, r);
		if (ret < 0)
			gw_req_put(r);
		return ret;
	}
}

static void copy_stream(struct gw_req *r);

void gw_copy_source_ready(struct gw_req *r)
{
	struct gw_copy *c = r->copy;
	char etag[S3_ETAG_MAX];
	uint64_t size = r->gm.size;
	int ret;

	gw_meta_etag(&r->gm, etag);
	ret = gw_check_conditions(r, "x-amz-copy-source-", etag,
				  (time_t)(r->gm.version / 1000000000));
	if (ret) {
		gw_send_error(r, GWE_COPY_PRECONDITION);
		return;
	}
	if (c->has_range) {
		if (c->rb >= size) {
			gw_send_error(r, GWE_COPY_INVALID_RANGE);
			return;
		}
		r->range_start = c->ra;
		r->range_end = c->rb;
	} else {
		r->range_start = 0;
		r->range_end = size ? size - 1 : 0;
	}
	r->length = size ? (int64_t)(r->range_end - r->range_start + 1) : 0;
	if (r->op == OP_COPY_OBJECT) {
		if (c->replace)
			ret = gw_collect_meta(r, &r->meta);
		for (uint32_t i = 0; !c->replace && !ret && i < r->gm.nhdr; i++)
			ret = gw_meta_add_hdr(&r->meta, r->gm.hdr[i].name,
					      strlen(r->gm.hdr[i].name), r->gm.hdr[i].value,
					      strlen(r->gm.hdr[i].value));
		if (!ret)
			ret = gw_tier_copy_class(r) ?: gw_tagging_copy(r);
		if (ret < 0) {
			gw_send_error(r, ret);
			return;
		}
	}
	ret = s3_cksum_init(&c->md5, S3_CKSUM_MD5);
	if (ret == 0) {
		c->md5_init = true;
		ret = gw_put_begin(r);
	}
	if (ret < 0) {
		gw_send_error(r, ret);
		return;
	}
	/* A part streams once its upload is known (gw_copy_upload_known):
	 * the upload's checksum algorithm is the part's. */
	if (r->op != OP_UPLOAD_PART_COPY)
		copy_stream(r);
}

int gw_copy_upload_known(struct gw_req *r, enum s3_cksum_alg alg)
{
	int ret = alg == S3_CKSUM_NONE ? 0 : s3_cksum_init(&r->copy->ck, alg);

	if (ret == 0)
		copy_stream(r);
	return ret;
}

/* The source's bytes start to flow into the destination's PUT. */
static void copy_stream(struct gw_req *r)
{
	int ret;

	if (r->length == 0) {
		gw_copy_source_done(r, 0);
		return;
	}
	if ((uint64_t)r->length >= COPY_KEEPALIVE_MIN)
		stream_start(r);
	if (r->gm.layout == GW_LAYOUT_INLINE) {
		ret = gw_inline_read(r);
		if (ret < 0)
			gw_copy_source_done(r, ret);
		return;
	}
	gw_get_start(r);
}

uint64_t gw_copy_room(struct gw_req *r)
{
	const struct gw_seg *cur = &r->seg[r->cur], *other = &r->seg[r->cur ^ 1];

	if (r->put_err)
		return 0;
	if (r->meta.layout != GW_LAYOUT_EC)
		return UINT64_MAX;
	/* What fills the current buffer and the other one, when free: a
	 * source segment may be larger than a destination one (policies of
	 * other k), so a slice may go in several pieces. */
	if (cur->busy)
		return 0;
	return r->meta.seg_size - cur->fill + (other->busy ? 0 : r->meta.seg_size);
}

int gw_copy_feed(struct gw_req *r, const uint8_t *p, size_t n)
{
	s3_cksum_update(&r->copy->md5, p, n);
	s3_cksum_update(&r->copy->ck, p, n);
	return gw_put_sink(r, p, n);
}

void gw_copy_source_done(struct gw_req *r, int err)
{
	struct gw_copy *c = r->copy;

	if (c->done)
		return;
	c->done = true;
	if (err) {
		gw_put_fail(r, err == -EIO ? -EHOSTUNREACH : err);
		return;
	}
	s3_cksum_final(&c->md5, r->meta.md5);
	if (c->ck.alg != S3_CKSUM_NONE) {
		r->meta.cksum_alg = (uint8_t)c->ck.alg;
		s3_cksum_final(&c->ck, r->meta.cksum);
	}
	r->body_ended = true;
	gw_put_maybe_head(r);
}

void gw_copy_answer(struct gw_req *r, const char *etag)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;
	char t[S3_XML_TIME_LEN + 1];

	s3_xml_time((int64_t)(r->meta.version / 1000000), t);
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, r->op == OP_UPLOAD_PART_COPY ? "CopyPartResult" :
		    "CopyObjectResult", true);
	s3_xml_elem(&x, "LastModified", t);
	s3_xml_elem(&x, "ETag", etag);
	if (r->op == OP_UPLOAD_PART_COPY)
		gw_xml_part_cksum(&x, r->meta.cksum_alg, r->meta.cksum);
	if (s3_xml_end(&x) < 0)
		gw_send_error(r, -ENOMEM);
	else if (r->copy && r->copy->streaming)
		stream_end(r, &b);
	else
		gw_send_xml(r, 200, &b);
	s3_buf_free(&b);
}
