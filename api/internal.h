/* api/internal.h: shared between the gateway's own files; not for other folders.
 *
 * Grouped by file. The HTTP/1.1 server layer (http_util.c, http_rx.c,
 * http.c) knows nothing about S3: it parses requests, streams bodies with
 * backpressure and writes responses; the S3 layer sits on its callbacks.
 */
#ifndef STRATA_API_INTERNAL_H
#define STRATA_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <http_parser.h>
#include <uv.h>

/* ---------------------------------------------------------- http_util.c */

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 7231 IMF-fixdate) is 29 bytes. */
#define HTTP_DATE_LEN	29

/* Formats t as an IMF-fixdate into out[HTTP_DATE_LEN + 1], NUL-terminated.
 * Returns 0, or -EOVERFLOW for a year outside 0..9999. */
int http_date_format(time_t t, char out[HTTP_DATE_LEN + 1]);

/* Percent-decodes in[0..len) into out (at least len bytes; may be in
 * itself), sets *out_len. plus_is_space: '+' decodes to ' ' (form and query
 * encoding); otherwise '+' stays. A '%' not followed by two hex digits is
 * -EINVAL; a decoded NUL is -EINVAL too (no object name holds one). */
int http_url_decode(const char *in, size_t len, char *out, size_t *out_len,
		    bool plus_is_space);

/* Is s[0..len) a valid header field name (an RFC 7230 token)? */
bool http_is_token(const char *s, size_t len);
/* Is s[0..len) a header value we may send (no CR, LF or NUL)? */
bool http_is_field_value(const char *s, size_t len);

/* Reason phrase for status ("OK", "Not Found"); "Unknown" for others. */
const char *http_reason(int status);

/* Case-insensitive comparison of a[0..alen) with NUL-terminated b. */
bool http_name_eq(const char *a, size_t alen, const char *b);

/* ------------------------------------------------------------ http_rx.c */

/* Request receiver: http_parser plus the limits, the copied request line
 * and header table, and a pull interface with one event per call. Pure (no
 * sockets, no loop): the connection code and the unit tests drive it. */

struct http_rx_limits {
	uint32_t max_url;		/* request target bytes, else 414 */
	uint32_t max_header_bytes;	/* target + names + values, else 431 */
	uint32_t max_headers;		/* header fields, else 431 */
	uint64_t max_body;		/* decoded body bytes, else 413 */
};

enum http_rx_event {
	HTTP_RX_MORE = 0,	/* every byte given was consumed: need more */
	HTTP_RX_HEAD,		/* request line and headers complete */
	HTTP_RX_BODY,		/* rx->body[0..body_len): a piece of the decoded body */
	HTTP_RX_END,		/* request complete, body included */
};

/* One header field: offsets into rx->buf, each string NUL-terminated
 * there; values have leading and trailing blanks removed. */
struct http_hdr {
	uint32_t name, name_len;
	uint32_t value, value_len;
};

struct http_rx {
	http_parser p;
	const struct http_rx_limits *lim;	/* borrowed, outlives rx */
	int ev;				/* event the last callback raised */
	int status;			/* on error: the HTTP status to answer */
	const char *err;		/* on error: why, for the log */
	bool in_message;		/* a request has begun and not ended */
	bool head_done;			/* HTTP_RX_HEAD raised for this request */
	uint8_t last;			/* RX_URL / RX_FIELD / RX_VALUE: last piece */
	const char *body;		/* HTTP_RX_BODY: borrowed from the fed bytes */
	size_t body_len;
	uint64_t body_total;		/* decoded body bytes so far */
	uint64_t trailer_bytes;		/* chunked trailers: counted, dropped */
	char *buf;			/* target\0 name\0 value\0 ... */
	uint32_t len, cap;		/* cap grows up to max_header_bytes + slack */
	uint32_t url_len;		/* target at buf[0..url_len) */
	struct http_hdr *hdr;		/* nhdr used, hdr_cap allocated */
	uint32_t nhdr, hdr_cap;
};

/* rx is zeroed or was freed; lim must outlive rx. Returns 0 or -ENOMEM. */
int http_rx_init(struct http_rx *rx, const struct http_rx_limits *lim);
void http_rx_free(struct http_rx *rx);

/* Feeds data[0..len) and stops at the first event; *used is how many bytes
 * were consumed (the rest must be fed again, unchanged, with the next call).
 * Returns an enum http_rx_event, or on error -EPROTO (400), -EMSGSIZE (a
 * limit: 413, 414, 431), -EPROTONOSUPPORT (505) or -ENOMEM (503), with
 * rx->status and rx->err set; the receiver stays failed until
 * http_rx_init again. HTTP_RX_BODY's rx->body points into
 * data: valid while the caller keeps those bytes. */
int http_rx_feed(struct http_rx *rx, const char *data, size_t len, size_t *used);

/* Between HTTP_RX_HEAD and the next request's first byte: */
static inline const char *http_rx_target(const struct http_rx *rx, size_t *len)
{
	*len = rx->url_len;
	return rx->buf;
}
/* Index of the first header named name (any case) at or after from, or -1. */
int http_rx_header_find(const struct http_rx *rx, const char *name, uint32_t from);
/* Value of the first header named name, NUL-terminated, or NULL. */
const char *http_rx_header(const struct http_rx *rx, const char *name, size_t *len);

/* --------------------------------------------------------------- http.c */

/* The server: one libuv loop owns it and all its connections. A request's
 * life, seen from the handler (struct http_handler):
 *
 *   on_request(req)        headers complete. Inspect, then do one of:
 *                            - answer at once (http_resp_send/_simple): the
 *                              body, if any, is not delivered; an unanswered
 *                              Expect: 100-continue, or over 1 MiB of body
 *                              left, means the connection closes after it;
 *                            - return: the body streams to on_body, after a
 *                              100 Continue if the client asked for one;
 *                            - http_req_pause(): decide later; the body and
 *                              any 100 Continue wait for http_req_resume();
 *                            - http_resp_start(): answer while the body
 *                              still streams in (a 100 Continue goes first).
 *                          Requests the server refuses by itself (limits:
 *                          413/414/431, malformed: 400, HTTP/1.1 without
 *                          exactly one Host: 400, 417, 505) never get here.
 *   on_body(req, d, n)     a piece of the decoded body. d is valid until
 *                          on_body returns, or, if the handler paused the
 *                          request inside on_body, until http_req_resume()
 *                          (zero-copy: hand d downstream, resume on flush),
 *                          even if the connection dies meanwhile: then
 *                          on_done comes after that resume.
 *   on_body_end(req)       the whole body arrived (also for bodiless requests).
 *   on_done(req, err)      the request is over: its response fully written
 *                          (err 0) or abandoned (-ECONNRESET, -ETIMEDOUT,
 *                          -EPROTO for a broken body...). Free per-request
 *                          state; req is invalid once on_done returns.
 *
 * After a response that ends the connection the server half-closes and
 * reads on briefly before closing (so no TCP reset destroys the answer).
 *
 * No callback is ever invoked from inside an http_* call: an http_* call made
 * from anywhere (a storage completion, a timer) only queues work, so a
 * handler never sees its request end under its feet. Memory per connection
 * is bounded: one read buffer, the header table, the response head. */

struct http_server;
struct http_req;

struct http_config {
	size_t read_buf;		/* bytes; also the most ever lent to on_body */
	struct http_rx_limits lim;
	uint32_t max_resp_header_bytes;	/* headers added by http_resp_header */
	uint32_t max_conns;		/* beyond this, new connections are closed */
	uint32_t header_timeout_ms;	/* first byte to end of headers (408) */
	uint32_t idle_timeout_ms;	/* keep-alive wait for the next request */
	uint32_t body_timeout_ms;	/* no body bytes for this long (408) */
	uint32_t send_timeout_ms;	/* a write pending this long: close */
	int backlog;
};

/* Defaults: 64 KiB read buffer, 8 KiB target, 32 KiB of headers, 100
 * headers, 5 GiB body, 1024 connections; timeouts 30 s headers, 60 s idle,
 * 60 s body, 60 s send. */
void http_config_init(struct http_config *cfg);
/* Sets one key (see http_config_help) from text, e.g. ("max_body", "1G").
 * Returns 0, -ENOENT (unknown key) or -EINVAL (bad value). */
int http_config_set(struct http_config *cfg, const char *key, const char *value);
extern const char http_config_help[];

/* Completion of a write: status 0, or -errno (-ECANCELED when the connection
 * closed first). Called exactly once for every http_resp_* call that
 * returned 0 with a callback; the caller's buffers are released then. */
typedef void (*http_write_cb)(struct http_req *req, int status, void *arg);

struct http_handler {
	void (*on_request)(struct http_req *req);		/* required */
	int (*on_body)(struct http_req *req, const void *data, size_t len);
								/* 0 or -errno: 500 */
	void (*on_body_end)(struct http_req *req);
	void (*on_done)(struct http_req *req, int err);
	void *opaque;						/* http_req_server_data */
};

/* Creates a server on loop; cfg and handler are copied. 0 or -errno. */
int http_server_new(uv_loop_t *loop, const struct http_config *cfg,
		    const struct http_handler *handler, struct http_server **out);
/* Listens on "host:port" ("127.0.0.1:8480", "[::1]:0"; port 0 picks one). */
int http_server_listen(struct http_server *srv, const char *addr);
/* The bound port, after http_server_listen. */
int http_server_port(const struct http_server *srv);
/* Serves an already connected stream socket (TCP or AF_UNIX) as one
 * connection; the server owns fd from here, even on error. */
int http_server_adopt_fd(struct http_server *srv, int fd);
/* Open connections. */
unsigned http_server_conns(const struct http_server *srv);
/* Graceful stop: closes the listener and idle keep-alive connections at
 * once, lets in-flight requests finish (each connection then closes) and
 * closes what is left after grace_ms. done(srv, arg) runs once every handle
 * is closed; then http_server_free(srv). Calling it twice is -EALREADY. */
int http_server_shutdown(struct http_server *srv, uint32_t grace_ms,
			 void (*done)(struct http_server *srv, void *arg), void *arg);
/* Frees a server whose shutdown is done (or that never listened nor had a
 * connection). */
void http_server_free(struct http_server *srv);

/* Request, valid from on_request until on_done returns. Strings point into
 * the connection's header table and are NUL-terminated. */
enum http_method http_req_method(const struct http_req *req);
const char *http_req_method_str(const struct http_req *req);
/* The request target exactly as sent ("/b/k%2Fx?uploads&x=1"). */
const char *http_req_target(const struct http_req *req, size_t *len);
/* Raw path: the target up to '?' (not decoded, not NUL-terminated). */
const char *http_req_path(const struct http_req *req, size_t *len);
/* Raw query after '?' (not decoded, not NUL-terminated); NULL if no '?'. */
const char *http_req_query(const struct http_req *req, size_t *len);
/* First value of header name (any case), or NULL. */
const char *http_req_header(const struct http_req *req, const char *name, size_t *len);
/* Header fields in arrival order, duplicates kept: index i < count. */
uint32_t http_req_header_count(const struct http_req *req);
void http_req_header_at(const struct http_req *req, uint32_t i,
			const char **name, const char **value);
/* Index of the next header named name at or after from, or -1. */
int http_req_header_find(const struct http_req *req, const char *name, uint32_t from);
/* Content-Length, or -1 (chunked body or none given: then 0 bytes unless
 * chunked). */
int64_t http_req_content_length(const struct http_req *req);
bool http_req_is_chunked(const struct http_req *req);
bool http_req_expects_continue(const struct http_req *req);
void http_req_version(const struct http_req *req, unsigned *major, unsigned *minor);
void http_req_set_data(struct http_req *req, void *data);
void *http_req_data(const struct http_req *req);
void *http_req_server_data(const struct http_req *req);
/* Stops body delivery (and the 100 Continue, before the body) until resume. */
void http_req_pause(struct http_req *req);
void http_req_resume(struct http_req *req);
/* The connection closes after this response. */
void http_req_set_close(struct http_req *req);

/* Responses. One response per request; every call returns 0 or -errno:
 * -EALREADY (wrong order), -EINVAL (bad header, bad length), -ENOSPC
 * (headers over max_resp_header_bytes), -ECANCELED (the connection is
 * closing). Date, Content-Length / Transfer-Encoding and Connection are
 * added by the server. HEAD requests and 1xx/204/304 answers get no body:
 * body writes then complete without being sent. */
int http_resp_header(struct http_req *req, const char *name, const char *value);
/* Whole response; Content-Length = the buffers' total. The buffers are
 * borrowed (no copy) until cb (may be NULL if they are static). */
int http_resp_send(struct http_req *req, int status, const uv_buf_t *bufs,
		   unsigned nbufs, http_write_cb cb, void *arg);
/* Whole response from a small body, copied (error documents, XML). */
int http_resp_simple(struct http_req *req, int status, const char *content_type,
		     const void *body, size_t len);
/* Streamed response: content_length >= 0 is announced, -1 means chunked
 * (HTTP/1.1) or until-close (HTTP/1.0). Then http_resp_write() pieces,
 * each borrowed until its cb, and http_resp_end(). */
int http_resp_start(struct http_req *req, int status, int64_t content_length);
int http_resp_write(struct http_req *req, const uv_buf_t *bufs, unsigned nbufs,
		    http_write_cb cb, void *arg);
/* Ends a streamed response; with a Content-Length not fully written the
 * connection is closed (the client sees a short body) and -EPROTO returned. */
int http_resp_end(struct http_req *req);
/* Bytes queued on the socket and not yet written (for backpressure). */
size_t http_resp_queued(const struct http_req *req);

#endif
