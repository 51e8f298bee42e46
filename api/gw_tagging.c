/* gw_tagging.c: object tagging (docs/gateway.md, "Tagging").
 *
 * An object's tag set is a stored header of its head, GW_TAGS_HDR in the
 * canonical query form of s3tags.c, written with the head by PUT, Complete
 * (from the upload record) and CopyObject, and gone with the object.
 * PutObjectTagging and DeleteObjectTagging rewrite the head: the same
 * metadata and payload (an inline object's data, a multipart object's
 * manifest; an EC head has none) with the new tags, at the timestamp of
 * the head read + 1 ns. That is newer than the head it replaces and older
 * than any PUT that started after that head, which wins as it would have;
 * the object's version (its segments' names, Last-Modified, the listing)
 * stays. */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int gw_tagging_route(struct gw_req *r, const char *q, size_t qn)
{
	enum http_method m = http_req_method(r->hr);

	if (!r->key || !gw_query_has(q, qn, "tagging", NULL, NULL))
		return 0;
	switch (m) {
	case HTTP_GET:		r->op = OP_GET_OBJ_TAGGING; return 1;
	case HTTP_PUT:		r->op = OP_PUT_OBJ_TAGGING; return 1;
	case HTTP_DELETE:	r->op = OP_DELETE_OBJ_TAGGING; return 1;
	default:		return 0;
	}
}

void gw_tagging_req_free(struct gw_req *r)
{
	if (r->tags) {
		s3_tagset_free(r->tags);
		free(r->tags);
		r->tags = NULL;
	}
}

/* The head lookup (gw_tagging_head answers). */
static int tagging_lookup(struct gw_req *r)
{
	int ret = gw_object_path(r);

	return ret ?: gw_object_lookup(r);
}

int gw_tagging_dispatch(struct gw_req *r)
{
	if (r->op == OP_PUT_OBJ_TAGGING) {
		http_req_resume(r->hr);		/* the body: <Tagging> */
		return 0;
	}
	http_req_resume(r->hr);			/* no body */
	return tagging_lookup(r);
}

void gw_tagging_body_end(struct gw_req *r)
{
	int ret;

	r->tags = calloc(1, sizeof(*r->tags));
	ret = r->tags ? s3_xml_parse_tagging(r->small.p ? r->small.p : "", r->small.len,
					     r->tags) : -ENOMEM;
	if (ret == 0)
		ret = tagging_lookup(r);
	if (ret < 0)
		gw_send_error(r, ret);
}

/* The stored form of t in m (none: no header). */
static int tags_store(struct gw_meta *m, const struct s3_tagset *t)
{
	struct s3_buf b = { 0 };
	int ret;

	gw_meta_del_hdr(m, GW_TAGS_HDR);
	if (!t || !t->n)
		return 0;
	ret = s3_tagset_encode(t, &b) ?:
	      gw_meta_add_hdr(m, GW_TAGS_HDR, strlen(GW_TAGS_HDR), b.p, b.len);
	s3_buf_free(&b);
	return ret;
}

int gw_tagging_collect(struct gw_req *r, struct gw_meta *m)
{
	size_t n;
	const char *v = r->hr ? http_req_header(r->hr, "x-amz-tagging", &n) : NULL;
	struct s3_tagset t;
	int ret;

	if (!v)
		return 0;
	ret = s3_tagset_parse_query(v, n, &t) ?: tags_store(m, &t);
	s3_tagset_free(&t);
	return ret;
}

/* The stored form of the query or XML tag set t into *out (malloc'd;
 * NULL for no tags). */
static int tags_encode(const struct s3_tagset *t, char **out)
{
	struct s3_buf b = { 0 };
	int ret;

	*out = NULL;
	if (!t->n)
		return 0;
	ret = s3_tagset_encode(t, &b);
	if (!ret)
		*out = s3_strndup(b.p, b.len);
	s3_buf_free(&b);
	return ret ?: (*out ? 0 : -ENOMEM);
}

int gw_tagging_parse_body(struct gw_req *r, char **out)
{
	struct s3_tagset t;
	int ret = s3_xml_parse_tagging(r->small.p ? r->small.p : "", r->small.len, &t);

	ret = ret ?: tags_encode(&t, out);
	s3_tagset_free(&t);
	return ret;
}

int gw_tagging_copy(struct gw_req *r)
{
	size_t n;
	const char *d = http_req_header(r->hr, "x-amz-tagging-directive", &n);
	const char *src = gw_meta_hdr_get(&r->gm, GW_TAGS_HDR);

	if (d && n == 7 && !strncasecmp(d, "REPLACE", 7)) {
		gw_meta_del_hdr(&r->meta, GW_TAGS_HDR);
		return gw_tagging_collect(r, &r->meta);
	}
	if (d && !(n == 4 && !strncasecmp(d, "COPY", 4)))
		return GWE_MPU_INVALID_ARG;
	/* COPY (the default), whatever the metadata directive did */
	gw_meta_del_hdr(&r->meta, GW_TAGS_HDR);
	return src ? gw_meta_add_hdr(&r->meta, GW_TAGS_HDR, strlen(GW_TAGS_HDR), src,
				     strlen(src)) : 0;
}

void gw_tagging_count_header(struct gw_req *r, const struct gw_meta *m)
{
	const char *v = gw_meta_hdr_get(m, GW_TAGS_HDR);
	unsigned n = 1;
	char b[16];

	if (!v || !*v)
		return;
	for (const char *p = v; *p; p++)
		n += *p == '&';		/* the stored form escapes every other '&' */
	snprintf(b, sizeof(b), "%u", n);
	http_resp_header(r->hr, "x-amz-tagging-count", b);
}

void gw_tagging_send(struct gw_req *r, const char *v)
{
	struct s3_tagset t;
	struct s3_buf b = { 0 };
	struct s3_xml x;
	int ret = s3_tagset_parse_query(v ? v : "", v ? strlen(v) : 0, &t);

	if (ret < 0) {
		log_err("GET ?tagging %s/%s: stored tags undecodable (%d)", r->bucket,
			r->key ? r->key : "", ret);
		gw_send_error(r, -EIO);
		return;
	}
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "Tagging", true);
	s3_xml_open(&x, "TagSet", false);
	for (size_t i = 0; i < t.n; i++) {
		s3_xml_open(&x, "Tag", false);
		s3_xml_elem(&x, "Key", t.tags[i].key);
		s3_xml_elem(&x, "Value", t.tags[i].value);
		s3_xml_close(&x);
	}
	if (s3_xml_end(&x) < 0)
		gw_send_error(r, -ENOMEM);
	else
		gw_send_xml(r, 200, &b);
	s3_buf_free(&b);
	s3_tagset_free(&t);
}

static void on_tagging_written(struct gw_wset *w, int err, void *arg)
{
	struct gw_req *r = arg;

	(void)w;
	if (err)
		gw_send_error(r, -EHOSTUNREACH);
	else
		gw_send_empty(r, r->op == OP_PUT_OBJ_TAGGING ? 200 : 204);
	gw_req_put(r);
}

/* The head again, r->meta (r->gm with the new tags) and payload bytes of
 * r->inline_buf, on the rep ring at r->head_ts + 1. */
static void tagging_write(struct gw_req *r, size_t payload)
{
	struct gateway *gw = r->gw;
	uint8_t name[STO_NAME_HASH_LEN];
	struct gw_wset *w;
	int ret = gw_meta_encode(&r->meta, &r->metabuf);

	if (ret < 0) {
		gw_send_error(r, ret == -E2BIG ? S3E_TOO_LARGE : ret);
		return;
	}
	gw_name_hash(r->path, r->path_len, name);
	w = gw_wset_new(&gw->st, gw->rep, r->part_rep, name, 0, false, r->head_ts + 1,
			on_tagging_written, gw_req_get(r));
	if (!w) {
		gw_req_put(r);
		gw_send_error(r, -ENOMEM);
		return;
	}
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].frag = 0;
		w->f[i].iov = (struct iovec){ payload ? r->inline_buf : NULL, payload };
	}
	w->meta = r->metabuf.p;
	w->meta_len = (uint32_t)r->metabuf.len;
	gw_tier_opts(r, &w->topts);	/* as the PUT placed it */
	gw_wset_start(w);
}

static size_t head_payload_len(const struct gw_meta *m)
{
	if (m->layout == GW_LAYOUT_INLINE)
		return (size_t)m->size;
	return m->layout == GW_LAYOUT_MULTIPART ? m->manifest_len : 0;
}

static void payload_read_next(struct gw_req *r);

/* The head's payload from its holders, one after another; the copy read
 * must be the head looked up (its timestamp and length). */
static void on_payload_read(void *arg, int status, uint64_t ts, size_t got)
{
	struct gw_req *r = arg;
	size_t len = head_payload_len(&r->meta);

	if (status == GW_READ_SLOW)
		return;		/* XXX no hedging for replicas: wait */
	if (!r->hr || r->responded)
		goto out;
	if (status < 0 || ts != r->head_ts || got != len) {
		if (++r->holder_try < r->nholders)
			payload_read_next(r);
		else
			gw_send_error(r, -EHOSTUNREACH);
		goto out;
	}
	tagging_write(r, len);
out:
	gw_req_put(r);
}

static void payload_read_next(struct gw_req *r)
{
	if (gw_head_read(r, head_payload_len(&r->meta), on_payload_read) < 0)
		gw_send_error(r, -ENOMEM);
}

void gw_tagging_head(struct gw_req *r)
{
	size_t len;
	int ret;

	if (r->op == OP_GET_OBJ_TAGGING) {
		gw_tagging_send(r, gw_meta_hdr_get(&r->gm, GW_TAGS_HDR));
		return;
	}
	/* The head as it was, with the new tags (none: DeleteObjectTagging). */
	gw_meta_free(&r->meta);
	r->meta = r->gm;
	memset(&r->gm, 0, sizeof(r->gm));
	r->have_gm = false;
	ret = tags_store(&r->meta, r->op == OP_PUT_OBJ_TAGGING ? r->tags : NULL);
	if (ret < 0) {
		gw_send_error(r, ret);
		return;
	}
	len = head_payload_len(&r->meta);
	if (!len) {
		tagging_write(r, 0);
		return;
	}
	if (!r->nholders) {
		gw_send_error(r, -EHOSTUNREACH);
		return;
	}
	free(r->inline_buf);
	r->inline_buf = malloc(len + 1);
	if (!r->inline_buf) {
		gw_send_error(r, -ENOMEM);
		return;
	}
	r->holder_try = 0;
	payload_read_next(r);
}
