/* api/http_rx.c: the request receiver.
 *
 * http_parser is push-style: it calls back for every piece of the request.
 * The receiver turns that into one event per http_rx_feed() call by pausing
 * the parser in the callbacks that matter (headers complete, body piece,
 * message complete), so the caller can act on each (run the handler, lend
 * the body piece, wait for the response) before feeding the rest. The
 * request target and header fields are copied into one bounded buffer,
 * because http_parser hands them out in pieces that may straddle reads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { RX_NONE, RX_URL, RX_FIELD, RX_VALUE };

/* The NULs after the target and each name and value, and the header table
 * entries themselves, are ours: allow them beyond max_header_bytes. */
#define RX_INITIAL_BUF	1024u
#define RX_INITIAL_HDRS	16u

static int rx_fail(struct http_rx *rx, int status, const char *why)
{
	rx->status = status;
	rx->err = why;
	return -1;			/* makes http_parser stop with HPE_CB_* */
}

/* Appends data[0..len) to rx->buf, growing it up to the limit. */
static int rx_append(struct http_rx *rx, const char *data, size_t len)
{
	/* Room for the data plus its NUL, per field: at most 2 per header. */
	uint64_t limit = (uint64_t)rx->lim->max_header_bytes + 2ull * (rx->nhdr + 1);
	uint64_t need = (uint64_t)rx->len + len + 1;

	if (need > limit)
		return rx_fail(rx, 431, "request header fields too large");
	if (need > rx->cap) {
		uint64_t cap = rx->cap ? rx->cap : RX_INITIAL_BUF;
		char *p;

		while (cap < need)
			cap *= 2;
		if (cap > limit)
			cap = limit;
		p = realloc(rx->buf, cap);
		if (!p)
			return rx_fail(rx, 503, "out of memory for request headers");
		rx->buf = p;
		rx->cap = (uint32_t)cap;
	}
	memcpy(rx->buf + rx->len, data, len);
	rx->len += (uint32_t)len;
	return 0;
}

/* Ends the current target, name or value: trims a value, adds the NUL. */
static void rx_terminate(struct http_rx *rx)
{
	if (rx->last == RX_VALUE) {
		struct http_hdr *h = &rx->hdr[rx->nhdr - 1];

		h->value_len = rx->len - h->value;
		while (h->value_len > 0 && (rx->buf[h->value + h->value_len - 1] == ' ' ||
					    rx->buf[h->value + h->value_len - 1] == '\t'))
			h->value_len--;
		rx->len = h->value + h->value_len;
	} else if (rx->last == RX_FIELD) {
		struct http_hdr *h = &rx->hdr[rx->nhdr - 1];

		h->name_len = rx->len - h->name;
		h->value = rx->len;	/* "" until a value arrives */
	} else if (rx->last == RX_URL) {
		rx->url_len = rx->len;
	} else {
		return;
	}
	rx->buf[rx->len++] = '\0';	/* rx_append left room for it */
}

static struct http_rx *rx_of(http_parser *p)
{
	return p->data;
}

static int on_message_begin(http_parser *p)
{
	struct http_rx *rx = rx_of(p);

	rx->in_message = true;
	rx->head_done = false;
	rx->last = RX_NONE;
	rx->len = 0;
	rx->url_len = 0;
	rx->nhdr = 0;
	rx->body_total = 0;
	rx->trailer_bytes = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_rx *rx = rx_of(p);

	if ((uint64_t)rx->len + len > rx->lim->max_url)
		return rx_fail(rx, 414, "request target too long");
	rx->last = RX_URL;
	return rx_append(rx, at, len);
}

/* Chunked trailers arrive as header callbacks after the head: count them
 * against the header limit and drop them. */
static int rx_trailer(struct http_rx *rx, size_t len)
{
	rx->trailer_bytes += len;
	if (rx->trailer_bytes > rx->lim->max_header_bytes)
		return rx_fail(rx, 431, "chunked trailers too large");
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_rx *rx = rx_of(p);

	if (rx->head_done)
		return rx_trailer(rx, len);
	if (rx->last != RX_FIELD) {
		rx_terminate(rx);
		if (rx->nhdr >= rx->lim->max_headers)
			return rx_fail(rx, 431, "too many header fields");
		if (rx->nhdr == rx->hdr_cap) {
			uint32_t cap = rx->hdr_cap ? rx->hdr_cap * 2 : RX_INITIAL_HDRS;
			struct http_hdr *h;

			if (cap > rx->lim->max_headers)
				cap = rx->lim->max_headers;
			h = realloc(rx->hdr, cap * sizeof(*h));
			if (!h)
				return rx_fail(rx, 503, "out of memory for request headers");
			rx->hdr = h;
			rx->hdr_cap = cap;
		}
		rx->hdr[rx->nhdr++] = (struct http_hdr){ .name = rx->len };
		rx->last = RX_FIELD;
	}
	return rx_append(rx, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_rx *rx = rx_of(p);

	if (rx->head_done)
		return rx_trailer(rx, len);
	if (rx->last != RX_VALUE) {
		rx_terminate(rx);	/* the name */
		rx->hdr[rx->nhdr - 1].value = rx->len;
		rx->last = RX_VALUE;
	}
	return rx_append(rx, at, len);
}

static int on_headers_complete(http_parser *p)
{
	struct http_rx *rx = rx_of(p);

	if (rx->last == RX_NONE) {
		/* No target seen (http_parser requires one): an empty string. */
		if (rx_append(rx, "", 0) < 0)
			return -1;
		rx->last = RX_URL;
	}
	rx_terminate(rx);
	rx->last = RX_NONE;
	/* http_parser, built lenient, lets blanks into names: "Transfer-
	 * Encoding : chunked" must not mean two things to two parsers. */
	for (uint32_t i = 0; i < rx->nhdr; i++) {
		const struct http_hdr *h = &rx->hdr[i];

		if (!http_is_token(rx->buf + h->name, h->name_len))
			return rx_fail(rx, 400, "invalid header field name");
		for (uint32_t j = 0; j < h->value_len; j++) {
			unsigned char ch = (unsigned char)rx->buf[h->value + j];

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return rx_fail(rx, 400, "control character in a header value");
		}
	}
	if (p->http_major != 1)
		return rx_fail(rx, 505, "HTTP version not supported");
	/* RFC 7230 5.4: exactly one Host in HTTP/1.1 (routing by Host, as
	 * virtual-hosted S3 buckets do, must not have two answers). */
	if (p->http_minor >= 1 || http_rx_header_find(rx, "host", 0) >= 0) {
		int h = http_rx_header_find(rx, "host", 0);

		if (h < 0 || http_rx_header_find(rx, "host", (uint32_t)h + 1) >= 0)
			return rx_fail(rx, 400, "HTTP/1.1 needs exactly one Host header");
	}
	if (p->upgrade && p->method == HTTP_CONNECT)
		return rx_fail(rx, 400, "CONNECT is not served");
	if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
	    p->content_length > rx->lim->max_body)
		return rx_fail(rx, 413, "Content-Length over the body limit");
	rx->head_done = true;
	rx->ev = HTTP_RX_HEAD;
	http_parser_pause(p, 1);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_rx *rx = rx_of(p);

	rx->body_total += len;
	if (rx->body_total > rx->lim->max_body)
		return rx_fail(rx, 413, "body over the limit");
	rx->body = at;
	rx->body_len = len;
	rx->ev = HTTP_RX_BODY;
	http_parser_pause(p, 1);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_rx *rx = rx_of(p);

	rx->in_message = false;
	rx->ev = HTTP_RX_END;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings rx_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

int http_rx_init(struct http_rx *rx, const struct http_rx_limits *lim)
{
	char *buf = rx->buf;
	struct http_hdr *hdr = rx->hdr;
	uint32_t cap = rx->cap, hdr_cap = rx->hdr_cap;

	/* Keep the buffers of a receiver being reset. */
	memset(rx, 0, sizeof(*rx));
	rx->buf = buf;
	rx->cap = cap;
	rx->hdr = hdr;
	rx->hdr_cap = hdr_cap;
	rx->lim = lim;
	http_parser_init(&rx->p, HTTP_REQUEST);
	rx->p.data = rx;
	return 0;
}

void http_rx_free(struct http_rx *rx)
{
	free(rx->buf);
	free(rx->hdr);
	memset(rx, 0, sizeof(*rx));
}

static int rx_errno(const struct http_rx *rx)
{
	switch (rx->status) {
	case 413: case 414: case 431:	return -EMSGSIZE;
	case 503:			return -ENOMEM;
	case 505:			return -EPROTONOSUPPORT;
	default:			return -EPROTO;
	}
}

int http_rx_feed(struct http_rx *rx, const char *data, size_t len, size_t *used)
{
	enum http_errno e;
	size_t n;

	*used = 0;
	if (rx->status)
		return rx_errno(rx);
	if (len == 0)
		return HTTP_RX_MORE;
	rx->ev = HTTP_RX_MORE;
	http_parser_pause(&rx->p, 0);
	n = http_parser_execute(&rx->p, &rx_settings, data, len);
	e = HTTP_PARSER_ERRNO(&rx->p);
	if (e == HPE_OK || e == HPE_PAUSED) {
		*used = n;
		/* An upgrade stops the parser for good after this request:
		 * the server will close after answering it. */
		if (rx->ev == HTTP_RX_MORE && n < len && rx->p.upgrade) {
			rx_fail(rx, 400, "protocol upgrade is not served");
			return rx_errno(rx);
		}
		return rx->ev;
	}
	if (!rx->status) {
		if (e == HPE_HEADER_OVERFLOW)
			rx_fail(rx, 431, "request header section too large");
		else
			rx_fail(rx, 400, http_errno_description(e));
	}
	*used = n;
	return rx_errno(rx);
}

int http_rx_header_find(const struct http_rx *rx, const char *name, uint32_t from)
{
	for (uint32_t i = from; i < rx->nhdr; i++)
		if (http_name_eq(rx->buf + rx->hdr[i].name, rx->hdr[i].name_len, name))
			return (int)i;
	return -1;
}

const char *http_rx_header(const struct http_rx *rx, const char *name, size_t *len)
{
	int i = http_rx_header_find(rx, name, 0);

	if (i < 0)
		return NULL;
	if (len)
		*len = rx->hdr[i].value_len;
	return rx->buf + rx->hdr[i].value;
}
