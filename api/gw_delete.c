/* gw_delete.c: DeleteObjects (POST /bucket?delete). Each key goes through
 * gw_obj_delete, the same path as DELETE Object, at most DEL_PARALLEL at
 * once so 1000 keys do not flood the nodes; the answer lists every key in
 * request order (Quiet: only the errors). Versioned deletes are not
 * supported: a VersionId gets a per-key NotImplemented error. */
#include "internal.h"

#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DEL_PARALLEL	16

struct mdel;

struct mdel_key {
	struct mdel *md;
	int err;
	bool done;
};

struct mdel {
	struct gateway *gw;
	char *owner, *bucket;
	struct s3_delete_req req;
	struct mdel_key *k;
	size_t next, done;
	gw_list_xml_fn cb;
	void *arg;
};

static void mdel_free(struct mdel *md)
{
	s3_delete_req_free(&md->req);
	free(md->k);
	free(md->owner);
	free(md->bucket);
	free(md);
}

static void key_error(int err, const char **code, const char **msg)
{
	switch (err) {
	case -EHOSTUNREACH: case -ETIMEDOUT: case -EIO:
		*code = "SlowDown";
		*msg = "Not enough healthy storage devices; please retry";
		return;
	case -ENOTSUP:
		*code = "NotImplemented";
		*msg = "Versioned deletes are not implemented";
		return;
	case S3E_TOO_LARGE: case -ENAMETOOLONG:
		*code = "KeyTooLongError";
		*msg = "Your key is too long";
		return;
	default: {
		int status;

		gw_err_describe(err, &status, code, msg);	/* PreconditionFailed... */
	}
	}
}

static void mdel_finish(struct mdel *md)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;
	int err;

	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "DeleteResult", true);
	for (size_t i = 0; i < md->req.n_objs; i++) {
		const char *key = md->req.objs[i].key;

		if (!md->k[i].err) {
			if (md->req.quiet)
				continue;
			s3_xml_open(&x, "Deleted", false);
			s3_xml_elem(&x, "Key", key);
			s3_xml_close(&x);
		} else {
			const char *code, *msg;

			key_error(md->k[i].err, &code, &msg);
			s3_xml_open(&x, "Error", false);
			s3_xml_elem(&x, "Key", key);
			if (md->req.objs[i].version_id)
				s3_xml_elem(&x, "VersionId", md->req.objs[i].version_id);
			s3_xml_elem(&x, "Code", code);
			s3_xml_elem(&x, "Message", msg);
			s3_xml_close(&x);
		}
	}
	err = s3_xml_end(&x);
	md->cb(md->arg, err, err ? NULL : &b);
	s3_buf_free(&b);
	mdel_free(md);
}

static void mdel_pump(struct mdel *md);

static void on_key_deleted(void *arg, int err)
{
	struct mdel_key *k = arg;
	struct mdel *md = k->md;

	k->err = err;
	k->done = true;
	md->done++;
	if (md->done == md->req.n_objs) {
		mdel_finish(md);
		return;
	}
	mdel_pump(md);
}

/* One key's delete with its conditions (as DELETE Object's headers; an
 * ISO 8601 LastModifiedTime becomes an HTTP date, the RFC 822 one botocore
 * sends is one already). */
static int mdel_one(struct mdel *md, const struct s3_delete_obj *o, struct mdel_key *k)
{
	struct gw_del_cond c = { o->etag, NULL, o->size };
	char date[HTTP_DATE_LEN + 1];

	if (o->mtime && strlen(o->mtime) > 10 && o->mtime[10] == 'T') {
		time_t t;

		if (iso8601_parse(o->mtime, &t) < 0 || http_date_format(t, date) < 0)
			return S3E_MALFORMED_XML;
		c.if_mtime = date;
	} else if (o->mtime) {
		c.if_mtime = o->mtime;
	}
	return gw_obj_delete(md->gw, md->owner, md->bucket, o->key,
			     c.if_match || c.if_mtime || c.if_size ? &c : NULL,
			     on_key_deleted, k);
}

static void mdel_pump(struct mdel *md)
{
	/* Keys in flight: started and not done. */
	while (md->next < md->req.n_objs && md->next - md->done < DEL_PARALLEL) {
		size_t i = md->next++;
		struct mdel_key *k = &md->k[i];
		const struct s3_delete_obj *o = &md->req.objs[i];
		int ret;

		k->md = md;
		if (o->version_id && strcmp(o->version_id, "null"))
			ret = -ENOTSUP;
		else if (!*o->key || strlen(o->key) > S3_MAX_KEY_LEN)
			ret = S3E_TOO_LARGE;
		else
			ret = mdel_one(md, o, k);
		if (ret < 0) {
			/* Counted as done right away; the last one finishes. */
			k->err = ret;
			k->done = true;
			if (++md->done == md->req.n_objs) {
				mdel_finish(md);
				return;
			}
		}
	}
}

int gw_delete_objects(struct gateway *gw, const char *owner, const char *bucket,
		      const char *body, size_t len, gw_list_xml_fn cb, void *arg)
{
	struct mdel *md = calloc(1, sizeof(*md));
	int ret;

	if (!md)
		return -ENOMEM;
	ret = s3_xml_parse_delete(body ? body : "", len, &md->req);
	if (ret < 0) {
		free(md);
		return ret;
	}
	md->gw = gw;
	md->cb = cb;
	md->arg = arg;
	md->owner = strdup(owner);
	md->bucket = strdup(bucket);
	md->k = calloc(md->req.n_objs, sizeof(*md->k));
	if (!md->owner || !md->bucket || !md->k) {
		mdel_free(md);
		return -ENOMEM;
	}
	mdel_pump(md);
	return 0;
}
