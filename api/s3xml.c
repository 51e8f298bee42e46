/* s3xml.c: the S3 XML request bodies (expat) and a response writer.
 *
 * Parsing: the bodies are small and already bounded in memory, so each is
 * parsed in one XML_Parse() call. Any DOCTYPE is refused (S3 never sends
 * one), which rules out external entities and entity-expansion bombs; expat's
 * own amplification limit stays on as a second line. Elements are matched by
 * their path from the root; unknown elements are ignored (S3 adds fields
 * such as ChecksumType to Part; a part's Checksum<ALG> is kept), text is
 * kept only for the current element and bounded.
 */
#include "internal.h"

#include <errno.h>
#include <expat.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S3_XML_TEXT_MAX	(S3_MAX_KEY_LEN * 2)
#define S3_XMLNS	"http://s3.amazonaws.com/doc/2006-03-01/"

/* ------------------------------------------------------------- walk */

static const char *s3_xml_intern(const struct s3_xml_walk *w, const char *name)
{
	/* Strip a namespace prefix ("s3:Part"). */
	const char *colon = strrchr(name, ':');

	if (colon)
		name = colon + 1;
	for (size_t i = 0; i < w->n_names; i++)
		if (!strcmp(name, w->names[i]))
			return w->names[i];
	return "";
}

void s3_xml_fail(struct s3_xml_walk *w, int err)
{
	if (!w->err)
		w->err = err;
	XML_StopParser(w->p, XML_FALSE);
}

bool s3_xml_at(const struct s3_xml_walk *w, unsigned depth, ...)
{
	va_list ap;
	bool ok = w->depth == depth;

	va_start(ap, depth);
	for (unsigned i = 0; ok && i < depth; i++)
		ok = !strcmp(w->path[i], va_arg(ap, const char *));
	va_end(ap);
	return ok;
}

const char *s3_xml_trimmed(const struct s3_xml_walk *w, size_t *n)
{
	const char *s = w->text.p ? w->text.p : "";
	size_t len = w->text.len;

	while (len && strchr(" \t\r\n", *s)) {
		s++;
		len--;
	}
	while (len && strchr(" \t\r\n", s[len - 1]))
		len--;
	*n = len;
	return s;
}

static void XMLCALL s3_xml_on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct s3_xml_walk *w = ud;

	if (w->err)
		return;
	if (w->depth == S3_XML_DEPTH) {
		s3_xml_fail(w, S3E_MALFORMED_XML);
		return;
	}
	w->path[w->depth++] = s3_xml_intern(w, name);
	s3_buf_reset(&w->text);
	if (w->depth == 1 && strcmp(w->path[0], w->root)) {
		s3_xml_fail(w, S3E_MALFORMED_XML);
		return;
	}
	if (w->on_start)
		w->on_start(w);
}

static void XMLCALL s3_xml_chars(void *ud, const XML_Char *s, int len)
{
	struct s3_xml_walk *w = ud;

	if (w->err)
		return;
	if (s3_buf_add(&w->text, s, (size_t)len) < 0)
		s3_xml_fail(w, S3E_MALFORMED_XML);
}

static void XMLCALL s3_xml_on_end(void *ud, const XML_Char *name)
{
	struct s3_xml_walk *w = ud;
	int ret;

	if (w->err)
		return;
	ret = w->on_end(w);
	if (ret) {
		s3_xml_fail(w, ret);
		return;
	}
	w->depth--;
	s3_buf_reset(&w->text);
}

static void XMLCALL s3_xml_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
				   const XML_Char *pubid, int has_internal_subset)
{
	s3_xml_fail(ud, S3E_MALFORMED_XML);
}

static void XMLCALL s3_xml_entity(void *ud, const XML_Char *name, int is_param,
				  const XML_Char *value, int value_length,
				  const XML_Char *base, const XML_Char *sysid,
				  const XML_Char *pubid, const XML_Char *notation)
{
	s3_xml_fail(ud, S3E_MALFORMED_XML);
}

int s3_xml_walk(struct s3_xml_walk *w, const char *body, size_t len)
{
	if (len > S3_XML_MAX_BODY)
		return S3E_TOO_LARGE;
	w->text.max = S3_XML_TEXT_MAX;
	w->p = XML_ParserCreate("UTF-8");
	if (!w->p)
		return -ENOMEM;
	XML_SetUserData(w->p, w);
	XML_SetElementHandler(w->p, s3_xml_on_start, s3_xml_on_end);
	XML_SetCharacterDataHandler(w->p, s3_xml_chars);
	XML_SetStartDoctypeDeclHandler(w->p, s3_xml_doctype);
	XML_SetEntityDeclHandler(w->p, s3_xml_entity);
	XML_SetParamEntityParsing(w->p, XML_PARAM_ENTITY_PARSING_NEVER);
	/* Only declared when the headers are configured with XML_DTD; the
	 * DOCTYPE refusal above already keeps every entity out. */
#if defined(XML_DTD) && (XML_MAJOR_VERSION > 2 || \
	(XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 4))
	XML_SetBillionLaughsAttackProtectionMaximumAmplification(w->p, 20.0f);
	XML_SetBillionLaughsAttackProtectionActivationThreshold(w->p, 1u << 20);
#endif
	if (XML_Parse(w->p, body, (int)len, XML_TRUE) != XML_STATUS_OK && !w->err)
		w->err = S3E_MALFORMED_XML;
	XML_ParserFree(w->p);
	w->p = NULL;
	s3_buf_free(&w->text);
	return w->err;
}

/* ------------------------------------------------- S3 request bodies */

enum s3_xml_doc { DOC_COMPLETE, DOC_DELETE, DOC_CREATE, DOC_TAGGING };

struct s3_xml_parse {
	struct s3_xml_walk w;		/* first: the callbacks cast back */
	enum s3_xml_doc doc;

	/* CompleteMultipartUpload */
	struct s3_complete_mpu *mpu;
	size_t parts_cap;
	int64_t part_number;		/* -1: not seen in this Part */
	char *etag;
	enum s3_cksum_alg part_alg;	/* its Checksum<ALG>, if any */
	char *part_cksum;

	/* Delete */
	struct s3_delete_req *del;
	size_t objs_cap;
	char *key, *version_id, *size, *mtime;	/* and etag */

	/* CreateBucketConfiguration */
	char *location;
	bool have_location;

	/* Tagging: the set, and the Tag being read */
	struct s3_tagset *tags;
	char *tag_key, *tag_value;
};

static const char *const s3_xml_names[] = {
	"CompleteMultipartUpload", "Part", "PartNumber", "ETag",
	"ChecksumCRC32", "ChecksumCRC32C", "ChecksumCRC64NVME", "ChecksumSHA1",
	"ChecksumSHA256",
	"Delete", "Quiet", "Object", "Key", "VersionId", "Size", "LastModifiedTime",
	"CreateBucketConfiguration", "LocationConstraint",
	"Tagging", "TagSet", "Tag", "Value",
};

static const char *s3_doc_root(enum s3_xml_doc doc)
{
	switch (doc) {
	case DOC_COMPLETE:	return "CompleteMultipartUpload";
	case DOC_DELETE:	return "Delete";
	case DOC_TAGGING:	return "Tagging";
	default:		return "CreateBucketConfiguration";
	}
}

static void s3_req_on_start(struct s3_xml_walk *w)
{
	struct s3_xml_parse *x = (struct s3_xml_parse *)w;

	if (s3_xml_at(w, 2, "CompleteMultipartUpload", "Part")) {
		x->part_number = -1;
		free(x->etag);
		free(x->part_cksum);
		x->etag = x->part_cksum = NULL;
		x->part_alg = S3_CKSUM_NONE;
	} else if (s3_xml_at(w, 3, "Tagging", "TagSet", "Tag")) {
		free(x->tag_key);
		free(x->tag_value);
		x->tag_key = x->tag_value = NULL;
	} else if (s3_xml_at(w, 2, "Delete", "Object")) {
		free(x->key);
		free(x->version_id);
		free(x->etag);
		free(x->size);
		free(x->mtime);
		x->key = x->version_id = x->etag = x->size = x->mtime = NULL;
	}
}

static char *s3_xml_take_text(struct s3_xml_parse *x)
{
	char *s = s3_strndup(x->w.text.p ? x->w.text.p : "", x->w.text.len);

	if (!s)
		s3_xml_fail(&x->w, -ENOMEM);
	return s;
}

static int s3_xml_end_complete(struct s3_xml_parse *x)
{
	struct s3_complete_mpu *c = x->mpu;

	if (s3_xml_at(&x->w, 3, "CompleteMultipartUpload", "Part", "PartNumber")) {
		size_t n;
		const char *s = s3_xml_trimmed(&x->w, &n);
		int64_t v = 0;

		if (n == 0 || n > 6 || x->part_number >= 0)
			return S3E_MALFORMED_XML;
		for (size_t i = 0; i < n; i++) {
			if (s[i] < '0' || s[i] > '9')
				return S3E_MALFORMED_XML;
			v = v * 10 + (s[i] - '0');
		}
		if (v < 1 || v > S3_MAX_PARTS)
			return S3E_INVALID_PART;
		x->part_number = v;
	} else if (s3_xml_at(&x->w, 3, "CompleteMultipartUpload", "Part", "ETag")) {
		if (x->etag)
			return S3E_MALFORMED_XML;
		x->etag = s3_xml_take_text(x);
	} else if (x->w.depth == 3 && !strncmp(x->w.path[2], "Checksum", 8) &&
		   s3_xml_at(&x->w, 3, "CompleteMultipartUpload", "Part", x->w.path[2])) {
		size_t n;
		const char *s = s3_xml_trimmed(&x->w, &n);

		/* one checksum per part */
		if (x->part_cksum)
			return S3E_MALFORMED_XML;
		x->part_alg = s3_cksum_alg_from_name(x->w.path[2] + 8, strlen(x->w.path[2] + 8));
		x->part_cksum = s3_strndup(s, n);
		if (!x->part_cksum)
			return -ENOMEM;
	} else if (s3_xml_at(&x->w, 2, "CompleteMultipartUpload", "Part")) {
		if (x->part_number < 0 || !x->etag)
			return S3E_MALFORMED_XML;
		if (c->n_parts == S3_MAX_PARTS)
			return S3E_MALFORMED_XML;
		if (c->n_parts && c->parts[c->n_parts - 1].number >= x->part_number)
			return S3E_INVALID_PART_ORDER;
		if (c->n_parts == x->parts_cap) {
			size_t cap = x->parts_cap ? x->parts_cap * 2 : 16;
			struct s3_part *p = realloc(c->parts, cap * sizeof(*p));

			if (!p)
				return -ENOMEM;
			c->parts = p;
			x->parts_cap = cap;
		}
		c->parts[c->n_parts] = (struct s3_part){ (uint32_t)x->part_number, x->etag,
							 x->part_alg, x->part_cksum };
		c->n_parts++;
		x->etag = x->part_cksum = NULL;
	}
	return 0;
}

static int s3_xml_end_delete(struct s3_xml_parse *x)
{
	struct s3_delete_req *d = x->del;

	if (s3_xml_at(&x->w, 2, "Delete", "Quiet")) {
		size_t n;
		const char *s = s3_xml_trimmed(&x->w, &n);

		if (n == 4 && !memcmp(s, "true", 4))
			d->quiet = true;
		else if (n == 5 && !memcmp(s, "false", 5))
			d->quiet = false;
		else
			return S3E_MALFORMED_XML;
	} else if (s3_xml_at(&x->w, 3, "Delete", "Object", "Key")) {
		if (x->key || x->w.text.len == 0 || x->w.text.len > S3_MAX_KEY_LEN)
			return S3E_MALFORMED_XML;
		x->key = s3_xml_take_text(x);
	} else if (s3_xml_at(&x->w, 3, "Delete", "Object", "VersionId")) {
		if (x->version_id)
			return S3E_MALFORMED_XML;
		x->version_id = s3_xml_take_text(x);
	} else if (s3_xml_at(&x->w, 3, "Delete", "Object", "ETag")) {
		if (x->etag)
			return S3E_MALFORMED_XML;
		x->etag = s3_xml_take_text(x);
	} else if (s3_xml_at(&x->w, 3, "Delete", "Object", "Size")) {
		if (x->size)
			return S3E_MALFORMED_XML;
		x->size = s3_xml_take_text(x);
	} else if (s3_xml_at(&x->w, 3, "Delete", "Object", "LastModifiedTime")) {
		if (x->mtime)
			return S3E_MALFORMED_XML;
		x->mtime = s3_xml_take_text(x);
	} else if (s3_xml_at(&x->w, 2, "Delete", "Object")) {
		if (!x->key || d->n_objs == S3_MAX_DELETE_KEYS)
			return S3E_MALFORMED_XML;
		if (d->n_objs == x->objs_cap) {
			size_t cap = x->objs_cap ? x->objs_cap * 2 : 16;
			struct s3_delete_obj *o = realloc(d->objs, cap * sizeof(*o));

			if (!o)
				return -ENOMEM;
			d->objs = o;
			x->objs_cap = cap;
		}
		d->objs[d->n_objs] = (struct s3_delete_obj){ x->key, x->version_id,
							     x->etag, x->size, x->mtime };
		d->n_objs++;
		x->key = x->version_id = x->etag = x->size = x->mtime = NULL;
	}
	return 0;
}

static int s3_xml_end_tagging(struct s3_xml_parse *x)
{
	char **slot = NULL;

	if (s3_xml_at(&x->w, 4, "Tagging", "TagSet", "Tag", "Key"))
		slot = &x->tag_key;
	else if (s3_xml_at(&x->w, 4, "Tagging", "TagSet", "Tag", "Value"))
		slot = &x->tag_value;
	if (slot) {
		if (*slot)
			return S3E_MALFORMED_XML;
		*slot = s3_xml_take_text(x);
		return *slot ? 0 : -ENOMEM;
	}
	if (s3_xml_at(&x->w, 3, "Tagging", "TagSet", "Tag")) {
		int ret;

		if (!x->tag_key)
			return S3E_MALFORMED_XML;
		ret = s3_tagset_add(x->tags, x->tag_key, strlen(x->tag_key),
				    x->tag_value ? x->tag_value : "",
				    x->tag_value ? strlen(x->tag_value) : 0);
		free(x->tag_key);
		free(x->tag_value);
		x->tag_key = x->tag_value = NULL;
		return ret;
	}
	return 0;
}

static int s3_req_on_end(struct s3_xml_walk *w)
{
	struct s3_xml_parse *x = (struct s3_xml_parse *)w;
	size_t n;
	const char *s;

	switch (x->doc) {
	case DOC_COMPLETE:
		return s3_xml_end_complete(x);
	case DOC_DELETE:
		return s3_xml_end_delete(x);
	case DOC_TAGGING:
		return s3_xml_end_tagging(x);
	case DOC_CREATE:
		if (!s3_xml_at(w, 2, "CreateBucketConfiguration", "LocationConstraint"))
			return 0;
		if (x->have_location)
			return S3E_MALFORMED_XML;
		s = s3_xml_trimmed(w, &n);
		x->location = s3_strndup(s, n);
		if (!x->location)
			return -ENOMEM;
		x->have_location = true;
		return 0;
	}
	return 0;
}

static int s3_xml_run(struct s3_xml_parse *x, const char *body, size_t len)
{
	int ret;

	x->w.names = s3_xml_names;
	x->w.n_names = sizeof(s3_xml_names) / sizeof(s3_xml_names[0]);
	x->w.root = s3_doc_root(x->doc);
	x->w.on_start = s3_req_on_start;
	x->w.on_end = s3_req_on_end;
	ret = s3_xml_walk(&x->w, body, len);
	free(x->etag);
	free(x->part_cksum);
	free(x->key);
	free(x->version_id);
	free(x->size);
	free(x->mtime);
	free(x->tag_key);
	free(x->tag_value);
	return ret;
}

int s3_xml_parse_complete_mpu(const char *body, size_t len,
			      struct s3_complete_mpu *out)
{
	struct s3_xml_parse x = { .doc = DOC_COMPLETE, .mpu = out };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = s3_xml_run(&x, body, len);
	if (!ret && out->n_parts == 0)
		ret = S3E_MALFORMED_XML;
	if (ret)
		s3_complete_mpu_free(out);
	return ret;
}

void s3_complete_mpu_free(struct s3_complete_mpu *c)
{
	for (size_t i = 0; i < c->n_parts; i++) {
		free(c->parts[i].etag);
		free(c->parts[i].cksum);
	}
	free(c->parts);
	memset(c, 0, sizeof(*c));
}

int s3_xml_parse_delete(const char *body, size_t len, struct s3_delete_req *out)
{
	struct s3_xml_parse x = { .doc = DOC_DELETE, .del = out };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = s3_xml_run(&x, body, len);
	if (!ret && out->n_objs == 0)
		ret = S3E_MALFORMED_XML;
	if (ret)
		s3_delete_req_free(out);
	return ret;
}

void s3_delete_req_free(struct s3_delete_req *d)
{
	for (size_t i = 0; i < d->n_objs; i++) {
		free(d->objs[i].key);
		free(d->objs[i].version_id);
		free(d->objs[i].etag);
		free(d->objs[i].size);
		free(d->objs[i].mtime);
	}
	free(d->objs);
	memset(d, 0, sizeof(*d));
}

int s3_xml_parse_tagging(const char *body, size_t len, struct s3_tagset *out)
{
	struct s3_xml_parse x = { .doc = DOC_TAGGING, .tags = out };
	int ret;

	memset(out, 0, sizeof(*out));
	ret = s3_xml_run(&x, body, len);
	if (ret)
		s3_tagset_free(out);
	else
		s3_tagset_sort(out);
	return ret;
}

int s3_xml_parse_create_bucket(const char *body, size_t len, char **location)
{
	struct s3_xml_parse x = { .doc = DOC_CREATE };
	size_t i = 0;
	int ret;

	*location = NULL;
	while (i < len && strchr(" \t\r\n", body[i]))
		i++;
	if (i == len)
		return 0;
	ret = s3_xml_run(&x, body, len);
	if (ret) {
		free(x.location);
		return ret;
	}
	*location = x.location ? x.location : strdup("");
	return *location ? 0 : -ENOMEM;
}

/* ------------------------------------------------------------ writer */

static void s3_xml_put(struct s3_xml *x, const char *s, size_t n)
{
	if (!x->err)
		x->err = s3_buf_add(x->b, s, n);
}

static void s3_xml_puts(struct s3_xml *x, const char *s)
{
	s3_xml_put(x, s, strlen(s));
}

void s3_xml_begin(struct s3_xml *x, struct s3_buf *b)
{
	memset(x, 0, sizeof(*x));
	x->b = b;
	s3_xml_puts(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

void s3_xml_open_attrs(struct s3_xml *x, const char *name, const char *attrs)
{
	if (x->depth == sizeof(x->stack) / sizeof(x->stack[0])) {
		if (!x->err)
			x->err = -E2BIG;
		return;
	}
	x->stack[x->depth++] = name;
	s3_xml_puts(x, "<");
	s3_xml_puts(x, name);
	if (attrs) {
		s3_xml_puts(x, " ");
		s3_xml_puts(x, attrs);
	}
	s3_xml_puts(x, ">");
}

void s3_xml_open(struct s3_xml *x, const char *name, bool ns)
{
	s3_xml_open_attrs(x, name, ns ? "xmlns=\"" S3_XMLNS "\"" : NULL);
}

void s3_xml_close(struct s3_xml *x)
{
	if (!x->depth)
		return;
	x->depth--;
	s3_xml_puts(x, "</");
	s3_xml_puts(x, x->stack[x->depth]);
	s3_xml_puts(x, ">");
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t s3_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return len;
}

void s3_xml_text(struct s3_xml *x, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run = 0;

	while (i < n) {
		const char *rep = NULL;
		size_t l = 1;

		switch (u[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '"': rep = "&quot;"; break;
		case '\'': rep = "&apos;"; break;
		case '\r': rep = "&#13;"; break;	/* kept through parsers */
		default:
			if (u[i] < 0x20 && u[i] != '\t' && u[i] != '\n')
				rep = "\xef\xbf\xbd";	/* not representable */
			else if (u[i] >= 0x80 && !(l = s3_utf8_len(u + i, n - i)))
				rep = "\xef\xbf\xbd", l = 1;
		}
		if (rep) {
			s3_xml_put(x, s + run, i - run);
			s3_xml_puts(x, rep);
			i += l;
			run = i;
		} else {
			i += l;
		}
	}
	s3_xml_put(x, s + run, n - run);
}

void s3_xml_elemn(struct s3_xml *x, const char *name, const char *s, size_t n)
{
	s3_xml_open(x, name, false);
	s3_xml_text(x, s, n);
	s3_xml_close(x);
}

void s3_xml_elem(struct s3_xml *x, const char *name, const char *s)
{
	s3_xml_elemn(x, name, s ? s : "", s ? strlen(s) : 0);
}

void s3_xml_elem_u64(struct s3_xml *x, const char *name, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%" PRIu64, v);
	s3_xml_elem(x, name, num);
}

void s3_xml_elem_bool(struct s3_xml *x, const char *name, bool v)
{
	s3_xml_elem(x, name, v ? "true" : "false");
}

int s3_xml_end(struct s3_xml *x)
{
	while (x->depth)
		s3_xml_close(x);
	return x->err;
}

int s3_xml_error(struct s3_buf *b, int err, const char *resource,
		 const char *request_id)
{
	struct s3_xml x;

	s3_xml_begin(&x, b);
	s3_xml_open(&x, "Error", false);
	s3_xml_elem(&x, "Code", s3_err_code(err));
	s3_xml_elem(&x, "Message", s3_err_message(err));
	if (resource)
		s3_xml_elem(&x, "Resource", resource);
	if (request_id)
		s3_xml_elem(&x, "RequestId", request_id);
	return s3_xml_end(&x);
}

void s3_xml_time(int64_t unix_ms, char out[S3_XML_TIME_LEN + 1])
{
	time_t t = (time_t)(unix_ms / 1000);
	struct tm tm;

	if (unix_ms < 0 || !gmtime_r(&t, &tm) || tm.tm_year > 9999 - 1900) {
		snprintf(out, S3_XML_TIME_LEN + 1, "1970-01-01T00:00:00.000Z");
		return;
	}
	strftime(out, S3_XML_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + 19, S3_XML_TIME_LEN + 1 - 19, ".%03dZ", (int)(unix_ms % 1000));
}

static void s3_xml_elem_time(struct s3_xml *x, const char *name, int64_t ms)
{
	char t[S3_XML_TIME_LEN + 1];

	s3_xml_time(ms, t);
	s3_xml_elem(x, name, t);
}

int s3_xml_list_buckets(struct s3_buf *b, const char *owner_id,
			const char *owner_name, const struct s3_list_bucket *v,
			size_t n, const char *prefix, const char *next_token)
{
	struct s3_xml x;

	s3_xml_begin(&x, b);
	s3_xml_open(&x, "ListAllMyBucketsResult", true);
	s3_xml_open(&x, "Owner", false);
	s3_xml_elem(&x, "ID", owner_id);
	s3_xml_elem(&x, "DisplayName", owner_name ? owner_name : owner_id);
	s3_xml_close(&x);
	s3_xml_open(&x, "Buckets", false);
	for (size_t i = 0; i < n; i++) {
		s3_xml_open(&x, "Bucket", false);
		s3_xml_elem(&x, "Name", v[i].name);
		s3_xml_elem_time(&x, "CreationDate", v[i].created_ms);
		s3_xml_close(&x);
	}
	s3_xml_close(&x);
	if (next_token)
		s3_xml_elem(&x, "ContinuationToken", next_token);
	if (prefix)
		s3_xml_elem(&x, "Prefix", prefix);
	return s3_xml_end(&x);
}

/* An element whose text is a key or prefix: %-encoded when asked. */
static void s3_xml_key(struct s3_xml *x, const char *name, const char *s, bool enc)
{
	struct s3_buf e = { 0 };

	if (!s)
		s = "";
	if (!enc) {
		s3_xml_elem(x, name, s);
		return;
	}
	if (!x->err)
		x->err = s3_uri_encode(&e, s, strlen(s), true);
	s3_xml_elemn(x, name, e.p ? e.p : "", e.len);
	s3_buf_free(&e);
}

int s3_xml_list_objects(struct s3_buf *b, const struct s3_list_result *r)
{
	struct s3_xml x;
	bool enc = r->url_encode;

	bool versions = r->version == S3_LIST_VERSIONS;

	if (r->version != 1 && r->version != 2 && !versions)
		return -EINVAL;
	s3_xml_begin(&x, b);
	s3_xml_open(&x, versions ? "ListVersionsResult" : "ListBucketResult", true);
	s3_xml_elem(&x, "Name", r->bucket);
	/* v1 answers its Prefix as given even with encoding-type=url, as S3
	 * does (botocore decodes only v2's and ListObjectVersions'). */
	s3_xml_key(&x, "Prefix", r->prefix, enc && r->version != 1);
	if (versions) {
		s3_xml_key(&x, "KeyMarker", r->marker, enc);
		s3_xml_elem(&x, "VersionIdMarker", "");
		if (r->next_marker) {
			s3_xml_key(&x, "NextKeyMarker", r->next_marker, enc);
			s3_xml_elem(&x, "NextVersionIdMarker", "null");
		}
	} else if (r->version == 1) {
		s3_xml_key(&x, "Marker", r->marker, enc);
		if (r->next_marker)
			s3_xml_key(&x, "NextMarker", r->next_marker, enc);
	} else {
		if (r->start_after)
			s3_xml_key(&x, "StartAfter", r->start_after, enc);
		if (r->continuation_token)
			s3_xml_elem(&x, "ContinuationToken", r->continuation_token);
		if (r->next_continuation_token)
			s3_xml_elem(&x, "NextContinuationToken", r->next_continuation_token);
		s3_xml_elem_u64(&x, "KeyCount", r->n_objs + r->n_prefixes);
	}
	s3_xml_elem_u64(&x, "MaxKeys", r->max_keys);
	if (r->delimiter)
		s3_xml_key(&x, "Delimiter", r->delimiter, enc);
	s3_xml_elem_bool(&x, "IsTruncated", r->truncated);
	if (enc)
		s3_xml_elem(&x, "EncodingType", "url");
	for (size_t i = 0; i < r->n_objs; i++) {
		const struct s3_list_object *o = &r->objs[i];

		s3_xml_open(&x, versions ? "Version" : "Contents", false);
		s3_xml_key(&x, "Key", o->key, enc);
		if (versions) {
			s3_xml_elem(&x, "VersionId", "null");
			s3_xml_elem_bool(&x, "IsLatest", true);
		}
		s3_xml_elem_time(&x, "LastModified", o->mtime_ms);
		s3_xml_elem(&x, "ETag", o->etag);
		s3_xml_elem_u64(&x, "Size", o->size);
		s3_xml_elem(&x, "StorageClass", o->storage_class ? o->storage_class : "STANDARD");
		if (r->owner_id) {
			s3_xml_open(&x, "Owner", false);
			s3_xml_elem(&x, "ID", r->owner_id);
			s3_xml_elem(&x, "DisplayName", r->owner_id);
			s3_xml_close(&x);
		}
		s3_xml_close(&x);
	}
	for (size_t i = 0; i < r->n_prefixes; i++) {
		s3_xml_open(&x, "CommonPrefixes", false);
		s3_xml_key(&x, "Prefix", r->prefixes[i], enc);
		s3_xml_close(&x);
	}
	return s3_xml_end(&x);
}
