/* api/internal.h: shared by the files of api/ (the S3 gateway).
 *
 * Nothing outside api/ includes this; the gateway's public contract is
 * api/gateway.h. Grouped by one section per
 * source file. The S3 building blocks
 * below (issue 5: errors, buffers, checksums, SigV4, aws-chunked, XML, erasure
 * coding) are pure: no sockets, no event loop, no HTTP types. They take plain
 * byte ranges and structs so that the HTTP layer, tests and fuzzers can drive
 * them the same way; they are built into the static library strata_s3.
 *
 * The HTTP/1.1 server layer (http_util.c, http_rx.c, http.c; static library
 * strata_http) knows nothing about S3: it parses requests, streams bodies
 * with backpressure and writes responses; the S3 layer sits on its
 * callbacks.
 */
#ifndef STRATA_API_INTERNAL_H
#define STRATA_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include <http_parser.h>
#include <uv.h>

/* ============== HTTP/1.1 server layer (issue 5, strata_http) ============== */

/* ---------------------------------------------------------- http_util.c */

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 7231 IMF-fixdate) is 29 bytes. */
#define HTTP_DATE_LEN	29

/* Formats t as an IMF-fixdate into out[HTTP_DATE_LEN + 1], NUL-terminated.
 * Returns 0, or -EOVERFLOW for a year outside 0..9999. */
int http_date_format(time_t t, char out[HTTP_DATE_LEN + 1]);

/* An ISO 8601 UTC time as S3 XML carries it ("2026-12-08T00:00:00Z",
 * optional fractions, "Z" or "+00:00") into *out. 0, or -EINVAL. */
int iso8601_parse(const char *s, time_t *out);

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

/* ================= S3 building blocks (issue 5, strata_s3) ================ */
/* Independent of the HTTP layer's sections: none uses the other.
 *
 * A PUT through the S3 layer, in order:
 *  head:  struct s3_header[] over the received header table (pointers, no
 *         copies) and a struct s3_sig_req (request target split at '?');
 *         s3_auth_verify(auth, &req, time(NULL), &res): 1 = anonymous,
 *         < 0 = answer s3_err_http_status(err) with s3_xml_error();
 *         s3_body_digest_init(&dg, &res, h, n); for a streaming payload
 *         (res.payload >= S3_PAYLOAD_STREAMING) also
 *         s3_chunked_config_init() + s3_chunked_new().
 *  body:  streaming: s3_chunked_decode() until the piece is used up, each
 *         data span to s3_body_digest_update() and into EC stripes
 *         (gw_ec_encode); otherwise the piece itself.
 *  end:   the decoder must have returned 1 (still 0: S3E_INCOMPLETE_BODY);
 *         s3_body_digest_final() == 0; only then commit the object, with
 *         s3_etag_from_md5() as its ETag. Any error: discard what was
 *         staged. */

/* --------------------------------------------------------------- s3err.c */
/* S3 protocol errors, a reserved negative range next to -errno. Every S3
 * building block returns 0 (or a count), a -errno for local failures (-ENOMEM,
 * -EIO) or one of these; s3_err_code()/s3_err_http_status() turn either kind
 * into the S3 <Code> and HTTP status, in this one place. */
enum s3_err {
	S3E_BASE = -4000,
	S3E_ACCESS_DENIED = S3E_BASE,	/* AccessDenied 403 */
	S3E_EXPIRED,			/* AccessDenied 403 "Request has expired" */
	S3E_NOT_YET_VALID,		/* AccessDenied 403 "Request is not valid yet" */
	S3E_UNSIGNED_HEADERS,		/* AccessDenied 403: x-amz-* header not signed */
	S3E_MISSING_DATE,		/* AccessDenied 403: no x-amz-date */
	S3E_HEADER_MALFORMED,		/* AuthorizationHeaderMalformed 400 */
	S3E_QUERY_MALFORMED,		/* AuthorizationQueryParametersError 400 */
	S3E_INVALID_ACCESS_KEY,		/* InvalidAccessKeyId 403 */
	S3E_SIGNATURE,			/* SignatureDoesNotMatch 403 */
	S3E_TIME_SKEWED,		/* RequestTimeTooSkewed 403 */
	S3E_UNSUPPORTED_ALG,		/* InvalidArgument 400: not AWS4-HMAC-SHA256 */
	S3E_MISSING_CONTENT_SHA256,	/* InvalidRequest 400: no x-amz-content-sha256 */
	S3E_BAD_CONTENT_SHA256,		/* InvalidArgument 400: x-amz-content-sha256 value */
	S3E_CONTENT_SHA256_MISMATCH,	/* XAmzContentSHA256Mismatch 400 */
	S3E_BAD_DIGEST,			/* BadDigest 400: Content-MD5 / checksum mismatch */
	S3E_INVALID_DIGEST,		/* InvalidDigest 400: undecodable digest value */
	S3E_INCOMPLETE_BODY,		/* IncompleteBody 400: fewer bytes than declared */
	S3E_CHUNK_MALFORMED,		/* InvalidRequest 400: bad aws-chunked framing */
	S3E_CHUNK_SIGNATURE,		/* SignatureDoesNotMatch 403: a chunk's signature */
	S3E_MALFORMED_XML,		/* MalformedXML 400 */
	S3E_INVALID_PART_ORDER,		/* InvalidPartOrder 400 */
	S3E_INVALID_PART,		/* InvalidPart 400 (part number out of range) */
	S3E_TOO_LARGE,			/* MaxMessageLengthExceeded 400: body over its cap */
	S3E_INVALID_LOCATION,		/* InvalidLocationConstraint 400 */
	S3E_MISSING_LENGTH,		/* MissingContentLength 411: no decoded length */
	S3E_BAD_TRAILER,		/* InvalidRequest 400: x-amz-trailer value */
	S3E_INVALID_TAG,		/* InvalidTag 400: a tag set beyond the limits */
	S3E_LC_LONG_ID,			/* InvalidArgument 400: a lifecycle rule ID over 255 */
	S3E_LC_DUP_ID,			/* InvalidArgument 400: two lifecycle rules, one ID */
	S3E_LC_DATE,			/* InvalidArgument 400: a lifecycle Date not at midnight */
	S3E_END
};

/* "SignatureDoesNotMatch", ...; "InternalError" for -errno and unknowns. */
const char *s3_err_code(int err);
/* A human message for <Message>, e.g. "Request has expired". */
const char *s3_err_message(int err);
/* 400, 403, ...; 500 for -errno (503 for -EAGAIN/-ENOMEM). */
int s3_err_http_status(int err);
/* s3_err_message for S3 codes, strerror(-err) otherwise. */
const char *s3_strerror(int err);

/* --------------------------------------------------------------- s3buf.c */
/* A growable byte buffer with a hard cap: zeroed = empty, unlimited cap
 * (max 0 means S3_BUF_DEFAULT_MAX). Appends fail with -E2BIG past the cap and
 * leave the buffer unchanged; it stays NUL-terminated when p != NULL. */
#define S3_BUF_DEFAULT_MAX	(64u << 20)
struct s3_buf {
	char *p;
	size_t len, cap;
	size_t max;		/* hard cap on len; 0 = S3_BUF_DEFAULT_MAX */
};
int s3_buf_add(struct s3_buf *b, const void *p, size_t n);
int s3_buf_adds(struct s3_buf *b, const char *s);
int s3_buf_addc(struct s3_buf *b, char c);
int s3_buf_printf(struct s3_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void s3_buf_reset(struct s3_buf *b);	/* len = 0, keeps memory */
void s3_buf_free(struct s3_buf *b);	/* frees the memory, keeps max */
/* n bytes of p as a malloc'd NUL-terminated string (p need not be
 * terminated, unlike strndup's contract under strict sanitizers). */
char *s3_strndup(const char *p, size_t n);

/* ------------------------------------------------------------ checksum.c */
/* The object checksums S3 knows (x-amz-checksum-*, Content-MD5, ETag). */
enum s3_cksum_alg {
	S3_CKSUM_NONE = 0,
	S3_CKSUM_CRC32,		/* IEEE, reflected (ISA-L crc32_gzip_refl) */
	S3_CKSUM_CRC32C,	/* Castagnoli (ISA-L crc32_iscsi) */
	S3_CKSUM_SHA1,
	S3_CKSUM_SHA256,
	S3_CKSUM_MD5,		/* Content-MD5 and ETag only, no x-amz-checksum */
	S3_CKSUM_CRC64NVME,	/* CRC-64/NVME (Rocksoft), reflected; after MD5:
				 * the values are stored in object metadata */
	S3_CKSUM_END
};
#define S3_CKSUM_MAX_LEN	32	/* SHA-256 */
#define S3_CKSUM_B64_MAX	45	/* base64 of 32 bytes + NUL */

/* Streaming state; zeroed = S3_CKSUM_NONE. CRCs are plain arithmetic, the
 * hashes hold an EVP_MD_CTX: always s3_cksum_free(), even after final. */
struct s3_cksum {
	enum s3_cksum_alg alg;
	uint32_t crc;
	uint64_t crc64;
	void *md;		/* EVP_MD_CTX * */
};
int s3_cksum_init(struct s3_cksum *c, enum s3_cksum_alg alg);	/* 0, -ENOMEM */
void s3_cksum_update(struct s3_cksum *c, const void *p, size_t n);
/* Writes the digest, s3_cksum_len(alg) bytes (at most S3_CKSUM_MAX_LEN;
 * big-endian for the CRCs, as S3 sends them), and returns its length. The
 * state must be initialized again before reuse. */
size_t s3_cksum_final(struct s3_cksum *c, uint8_t *out);
void s3_cksum_free(struct s3_cksum *c);
/* One-shot helpers. */
size_t s3_cksum_buf(enum s3_cksum_alg alg, const void *p, size_t n,
		    uint8_t *out);
size_t s3_cksum_len(enum s3_cksum_alg alg);
/* "CRC32", "CRC32C", "SHA1", "SHA256", "MD5". */
const char *s3_cksum_name(enum s3_cksum_alg alg);
/* "x-amz-checksum-crc32", ...; NULL for MD5 and NONE. */
const char *s3_cksum_header(enum s3_cksum_alg alg);
/* x-amz-sdk-checksum-algorithm / x-amz-checksum-algorithm values, case-
 * insensitive: "CRC32" → S3_CKSUM_CRC32. S3_CKSUM_NONE when unknown. */
enum s3_cksum_alg s3_cksum_alg_from_name(const char *s, size_t n);
/* A header or trailer name, case-insensitive: "x-amz-checksum-crc32c" →
 * S3_CKSUM_CRC32C; S3_CKSUM_NONE when it is not a checksum header. */
enum s3_cksum_alg s3_cksum_alg_from_header(const char *s, size_t n);
/* Checks a base64 header value against a computed digest: 0, S3E_BAD_DIGEST
 * (mismatch) or S3E_INVALID_DIGEST (not base64 of the right length). */
int s3_cksum_check_b64(enum s3_cksum_alg alg, const uint8_t *digest,
		       const char *b64, size_t b64_len);

/* Multipart object checksums (CreateMultipartUpload's x-amz-checksum-type):
 * COMPOSITE is the algorithm over the parts' binary digests, shown as
 * "<base64>-<parts>"; FULL_OBJECT (the CRCs only) is the CRC of the whole
 * object, combined from the parts' CRCs without reading the data again. */
bool s3_cksum_is_crc(enum s3_cksum_alg alg);
/* a (a digest of s3_cksum_len(alg) bytes, big-endian, of some bytes A)
 * becomes the digest of A || B, given b, the digest of B, and B's length.
 * zlib's crc32_combine() for any of the three reflected CRCs (all start
 * and end with all ones): crc(A||B) = crc(A) * x^(8 len B) mod P ^ crc(B).
 * 0, or -EINVAL when alg is not a CRC. */
int s3_cksum_combine(enum s3_cksum_alg alg, uint8_t *a, const uint8_t *b,
		     uint64_t len_b);

/* ETags: "<md5 hex>" for a simple object, "<md5 of the parts' binary
 * MD5s>-<parts>" for a multipart one; quotes included. */
#define S3_ETAG_MAX		48
void s3_etag_from_md5(const uint8_t md5[16], char out[S3_ETAG_MAX]);
int s3_etag_multipart(const uint8_t (*part_md5)[16], size_t n,
		      char out[S3_ETAG_MAX]);		/* 0, -EINVAL (n 0) */
/* A part's ETag as clients echo it in CompleteMultipartUpload, quoted or
 * not, back to its MD5: 0 or -EINVAL. */
int s3_etag_parse(const char *s, size_t n, uint8_t md5[16]);

/* Base64 (RFC 4648 with padding). encode writes 4*ceil(n/3) chars + NUL into
 * out (out_cap must hold them) and returns the length; decode returns the
 * decoded length or -EINVAL (bad alphabet, bad padding, length not a
 * multiple of 4) / -ENOSPC. */
int s3_base64_encode(const void *in, size_t n, char *out, size_t out_cap);
int s3_base64_decode(const char *in, size_t n, uint8_t *out, size_t out_cap);
/* Lowercase hex: writes 2n chars + NUL. */
void s3_hex(const uint8_t *in, size_t n, char *out);
/* Parses exactly 2*n hex chars (either case): 0 or -EINVAL. */
int s3_unhex(const char *in, size_t in_len, uint8_t *out, size_t n);

/* --------------------------------------------------------------- sigv4.c */
/* One request header as the HTTP layer saw it: name and value borrowed,
 * value untrimmed. Names compare case-insensitively; repeated names are
 * joined with ',' in the order given (as AWS does). */
struct s3_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* The request, as SigV4 needs it; everything borrowed for the call. */
struct s3_sig_req {
	const char *method;		/* "GET" (NUL-terminated) */
	const char *path;		/* raw request-target path, still %-encoded */
	size_t path_len;
	const char *query;		/* raw query after '?', or NULL */
	size_t query_len;
	const struct s3_header *headers;
	size_t n_headers;
	/* Hex SHA-256 of the body when the caller knows it and there is no
	 * x-amz-content-sha256 header (non-S3 test vectors); else NULL. */
	const char *payload_hash;
};

/* How the body is protected, from x-amz-content-sha256. */
enum s3_payload_mode {
	S3_PAYLOAD_SHA256 = 0,		/* hex digest: the caller must hash the body
					 * and compare (s3_auth_result.payload_sha256) */
	S3_PAYLOAD_UNSIGNED,		/* UNSIGNED-PAYLOAD (and presigned URLs) */
	S3_PAYLOAD_STREAMING,		/* STREAMING-AWS4-HMAC-SHA256-PAYLOAD */
	S3_PAYLOAD_STREAMING_TRAILER,	/* STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER */
	S3_PAYLOAD_STREAMING_UNSIGNED_TRAILER, /* STREAMING-UNSIGNED-PAYLOAD-TRAILER */
};

/* The first header called name (case-insensitive), or NULL. */
const struct s3_header *s3_header_find(const struct s3_header *h, size_t n,
				       const char *name);

/* Looks up the secret of an access key: writes it (NUL-terminated) into
 * secret and returns its length, -ENOENT when the key is unknown, or another
 * -errno. Called once per verified request. */
typedef int (*s3_secret_fn)(void *arg, const char *access_key, char *secret,
			    size_t secret_cap);

#define S3_ACCESS_KEY_MAX	128
#define S3_SECRET_MAX		128
#define S3_SCOPE_MAX		160
#define S3_MAX_EXPIRES		604800	/* 7 days, presigned X-Amz-Expires */
#define S3_MAX_SKEW		900	/* 15 minutes */

struct s3_auth_config {
	/* Region the scope must name; NULL accepts any (MinIO-like). */
	const char *region;
	/* Service in the scope; NULL = "s3". ("service" for AWS's generic
	 * test suite.) */
	const char *service;
	s3_secret_fn lookup;
	void *lookup_arg;
	/* Allowed clock skew in seconds; 0 = S3_MAX_SKEW. */
	int64_t max_skew;
};

/* What a verified request carries on: who signed it, and what the body
 * decoder needs to check chunk signatures (aws-chunked). */
struct s3_auth_result {
	char access_key[S3_ACCESS_KEY_MAX + 1];
	bool presigned;
	enum s3_payload_mode payload;
	uint8_t payload_sha256[32];	/* S3_PAYLOAD_SHA256 only */
	int64_t request_time;		/* unix seconds of X-Amz-Date */
	char amz_date[17];		/* "20130524T000000Z" */
	char scope[S3_SCOPE_MAX];	/* "20130524/us-east-1/s3/aws4_request" */
	uint8_t signing_key[32];	/* secret material: wipe when done */
	char seed_signature[65];	/* the request's signature, lowercase hex */
};

struct s3_auth;

/* A verifier: configuration plus a cache of derived signing keys (per
 * access key, date, region and service; safe for concurrent use). Copies
 * what it needs from cfg. 0 or -ENOMEM/-EINVAL. */
int s3_auth_new(const struct s3_auth_config *cfg, struct s3_auth **out);
void s3_auth_free(struct s3_auth *a);

/* Verifies a request signed with an Authorization header or as a presigned
 * URL (X-Amz-Algorithm in the query). now is the server's unix time.
 * Returns 0 and fills *out; 1 when the request carries no SigV4 at all
 * (anonymous: the caller decides); or an S3E_* code / -errno. On error *out
 * is wiped. A 0 return with S3_PAYLOAD_SHA256 is not the end: the body must
 * still hash to out->payload_sha256 (S3E_CONTENT_SHA256_MISMATCH if not); a
 * streaming mode hands out to s3_chunked_config_init()/s3_chunked_new().
 * Header auth takes the time from x-amz-date, else from Date (IMF-fixdate),
 * else S3E_MISSING_DATE; every x-amz-* header must be signed. */
int s3_auth_verify(struct s3_auth *a, const struct s3_sig_req *req, int64_t now,
		   struct s3_auth_result *out);
/* For S3_PAYLOAD_SHA256: the body's SHA-256 (an s3_cksum run over it) against
 * the signed one: 0 or S3E_CONTENT_SHA256_MISMATCH. 0 for other modes. */
int s3_auth_check_payload(const struct s3_auth_result *res,
			  const uint8_t sha256[32]);

/* Building blocks, exposed for tests and fuzzers. */
/* AWS URI-encoding of bytes: unreserved (A-Za-z0-9-._~) kept, every other
 * byte %XX (uppercase); '/' kept when keep_slash. Appends to b. */
int s3_uri_encode(struct s3_buf *b, const char *s, size_t n, bool keep_slash);
/* The canonical URI of a raw S3 path: percent-decoded once, then encoded
 * once (no dot-segment or slash normalization: S3 keys are literal). */
int s3_canonical_uri(struct s3_buf *b, const char *path, size_t n);
/* The canonical query string of a raw query: pairs decoded then re-encoded,
 * sorted by name then value, X-Amz-Signature left out when skip_signature. */
int s3_canonical_query(struct s3_buf *b, const char *query, size_t n,
		       bool skip_signature);
/* The canonical request for signed_headers (";"-separated lowercase list)
 * and payload_hash. A signed header the request lacks canonicalizes as
 * "name:" (the signature then fails); an empty name is
 * S3E_HEADER_MALFORMED. */
int s3_canonical_request(struct s3_buf *b, const struct s3_sig_req *req,
			 const char *signed_headers, size_t sh_len,
			 const char *payload_hash, bool presigned);
/* kSigning = HMAC chain over "AWS4"+secret, date, region, service. */
void s3_signing_key(const char *secret, const char *date8, const char *region,
		    const char *service, uint8_t key[32]);
/* HMAC-SHA256(key, msg) as 64 lowercase hex chars + NUL. */
void s3_hmac_hex(const uint8_t key[32], const void *msg, size_t n, char out[65]);
/* SHA-256 of no bytes, lowercase hex (chunk strings to sign). */
const char *s3_sha256_empty_hex(void);
/* "YYYYMMDDTHHMMSSZ" → unix seconds; -EINVAL if not exactly that. */
int s3_parse_amz_date(const char *s, size_t n, int64_t *out);

/* Client side: appends the Authorization header value for req to out
 * ("AWS4-HMAC-SHA256 Credential=AK/scope, SignedHeaders=..., Signature=...").
 * signed_headers: ";"-separated, lowercase, sorted names, each present in
 * req (host and x-amz-date at least); payload_hash: the hex SHA-256 of the
 * body or "UNSIGNED-PAYLOAD"; scope "20130524/us-east-1/s3/aws4_request" and
 * key = s3_signing_key() of the same date, region and service; amz_date
 * "20130524T000000Z". 0 or -ENOMEM / S3E_HEADER_MALFORMED. */
int s3_sign_authz(struct s3_buf *out, const struct s3_sig_req *req,
		  const char *signed_headers, const char *payload_hash,
		  const char *access_key, const char *scope, const char *amz_date,
		  const uint8_t key[32]);

/* ---------------------------------------------------------------- body.c */
/* Everything the gateway computes over an object body in one pass over
 * the (decoded) data: the MD5 for the ETag, the SHA-256 a signed payload
 * must match, and the checks of Content-MD5 and an up-front
 * x-amz-checksum-* header. In the aws-chunked modes the chunk decoder owns
 * the signature and x-amz-checksum checks; only MD5 and Content-MD5 remain
 * here. Zeroed = unused; always s3_body_digest_free(). */
struct s3_body_digest {
	struct s3_cksum md5, sha256, extra;
	uint8_t want_sha256[32];
	bool check_sha256;
	bool have_md5_header;
	uint8_t want_md5[16];
	const char *extra_b64;		/* borrowed from the request headers */
	size_t extra_b64_len;
};
/* res: the verified request (NULL: anonymous). h: the request headers.
 * 0, S3E_INVALID_DIGEST (undecodable Content-MD5, two checksum headers,
 * x-amz-sdk-checksum-algorithm naming another than the one sent) or
 * -ENOMEM. XXX x-amz-checksum-crc64nvme is not known, hence not checked. */
int s3_body_digest_init(struct s3_body_digest *d, const struct s3_auth_result *res,
			const struct s3_header *h, size_t n);
void s3_body_digest_update(struct s3_body_digest *d, const void *p, size_t n);
/* At the body's end: md5 (the ETag) always; the checksum that was checked
 * in *alg/cksum (S3_CKSUM_NONE if none). Returns 0,
 * S3E_CONTENT_SHA256_MISMATCH or S3E_BAD_DIGEST. */
int s3_body_digest_final(struct s3_body_digest *d, uint8_t md5[16],
			 enum s3_cksum_alg *alg, uint8_t cksum[S3_CKSUM_MAX_LEN]);
void s3_body_digest_free(struct s3_body_digest *d);

/* --------------------------------------------------------------- creds.c */
/* AWS shared-credentials files ("[profile]" sections with
 * aws_access_key_id / aws_secret_access_key; '#' and ';' comments). Every
 * profile's key pair is loaded; duplicate access keys: the first wins. */
struct s3_creds;
#define S3_CREDS_MAX_FILE	(1u << 20)
int s3_creds_parse(const char *text, size_t len, struct s3_creds **out);
int s3_creds_load(const char *path, struct s3_creds **out);	/* 0 / -errno */
void s3_creds_free(struct s3_creds *c);
size_t s3_creds_count(const struct s3_creds *c);
/* The access key of a profile ("default"), or NULL. Borrowed from c. */
const char *s3_creds_profile_key(const struct s3_creds *c, const char *profile);
/* The profile of an access key (the gateway's account id), or NULL. */
const char *s3_creds_key_profile(const struct s3_creds *c, const char *access_key);
/* An s3_secret_fn: arg is the struct s3_creds *. */
int s3_creds_lookup(void *arg, const char *access_key, char *secret,
		    size_t secret_cap);

/* ------------------------------------------------------------- chunked.c */
/* A resumable decoder for Content-Encoding: aws-chunked bodies
 * ("hex;chunk-signature=sig\r\n data \r\n ... 0;chunk-signature=sig\r\n",
 * then trailers and "\r\n"). Data is handed out as it arrives, pointing into
 * the caller's input (no copies); each chunk's signature is checked at the
 * chunk's end, and trailer checksums at the body's end.
 *
 * CONTRACT: data handed out is UNVERIFIED until s3_chunked_decode() returns
 * 1. The consumer may stage it (write fragments) but must not commit the
 * object, nor make it visible, until then; any error means discard. */
struct s3_chunked;

struct s3_chunked_config {
	enum s3_payload_mode mode;	/* one of the three STREAMING modes */
	const struct s3_auth_result *auth; /* signed modes: key, scope, seed */
	/* x-amz-decoded-content-length; -1 when absent (then not checked). */
	int64_t decoded_length;
	/* From x-amz-trailer: the checksum trailer expected (S3_CKSUM_NONE:
	 * none announced; a checksum trailer then is an error). */
	enum s3_cksum_alg trailer_alg;
	/* Checksum of the decoded data to compute and check against a header
	 * value instead (x-amz-checksum-* sent up front), or NONE. */
	enum s3_cksum_alg header_alg;
	const char *header_b64;
	size_t header_b64_len;
};

#define S3_CHUNK_LINE_MAX	4096	/* chunk header or trailer line */
#define S3_CHUNK_MAX_SIZE	(1ull << 40)

/* Fills cfg for a request that s3_auth_verify() accepted with a streaming
 * payload mode, from its headers: x-amz-decoded-content-length (required:
 * S3E_MISSING_LENGTH), x-amz-trailer (a checksum header name, else
 * S3E_BAD_TRAILER) and an up-front x-amz-checksum-* header. cfg borrows
 * from auth and the header values until s3_chunked_new() (which copies). */
int s3_chunked_config_init(struct s3_chunked_config *cfg,
			   const struct s3_auth_result *auth,
			   const struct s3_header *h, size_t n);
int s3_chunked_new(const struct s3_chunked_config *cfg, struct s3_chunked **out);
void s3_chunked_free(struct s3_chunked *d);
/* Feeds in[0..len). Sets *consumed to the bytes used and *data and *data_len to
 * decoded payload inside in (data_len 0: none this call). Returns 0 when it
 * needs more input (call again with in + *consumed, or with the next read
 * once everything was consumed), 1 when the body is complete and every
 * signature, checksum and length checked out (*consumed then stops at the
 * body's end), or an S3E_* / -errno code; after an error or 1 it only
 * repeats that result. A body that ends (Content-Length reached, or the
 * HTTP chunked body finished) while this still returns 0 is incomplete:
 * S3E_INCOMPLETE_BODY. */
int s3_chunked_decode(struct s3_chunked *d, const uint8_t *in, size_t len,
		      size_t *consumed, const uint8_t **data, size_t *data_len);
/* Decoded bytes so far. */
uint64_t s3_chunked_decoded(const struct s3_chunked *d);
/* After 1: the verified trailer checksum (alg NONE when there was none). */
enum s3_cksum_alg s3_chunked_trailer_checksum(const struct s3_chunked *d,
					      uint8_t out[S3_CKSUM_MAX_LEN]);

/* --------------------------------------------------------------- s3xml.c */
/* Parsers for the small XML request bodies (expat; no DTDs, no entities:
 * a DOCTYPE is refused, which also stops entity-expansion bombs). Strings in
 * results are malloc'd and owned by the result; the *_free functions take
 * zeroed or partly filled results. Errors: S3E_MALFORMED_XML, S3E_TOO_LARGE
 * (body over its cap), S3E_INVALID_PART_ORDER, S3E_INVALID_PART, -ENOMEM. */
#define S3_XML_MAX_BODY		(2u << 20)	/* 2 MiB */
#define S3_MAX_PARTS		10000
#define S3_MAX_DELETE_KEYS	1000
#define S3_MAX_KEY_LEN		1024

struct s3_part {
	uint32_t number;	/* 1..10000 */
	char *etag;		/* as sent, quotes included */
	enum s3_cksum_alg cksum_alg;	/* a Checksum<ALG> element, or NONE */
	char *cksum;		/* its text (base64), NULL when none */
};
struct s3_complete_mpu {
	struct s3_part *parts;	/* ascending part numbers */
	size_t n_parts;
};
int s3_xml_parse_complete_mpu(const char *body, size_t len,
			      struct s3_complete_mpu *out);
void s3_complete_mpu_free(struct s3_complete_mpu *c);

struct s3_delete_obj {
	char *key;
	char *version_id;	/* NULL when absent, as the rest */
	/* conditions: ETag, Size (decimal), LastModifiedTime (ISO 8601) */
	char *etag, *size, *mtime;
};
struct s3_delete_req {
	bool quiet;
	struct s3_delete_obj *objs;
	size_t n_objs;		/* 1..1000 */
};
int s3_xml_parse_delete(const char *body, size_t len, struct s3_delete_req *out);
void s3_delete_req_free(struct s3_delete_req *d);

/* An empty body is valid (no constraint): *location = NULL. Else the
 * LocationConstraint text (malloc'd, may be ""). */
int s3_xml_parse_create_bucket(const char *body, size_t len, char **location);

/* The expat walk under those parsers and s3lifecycle.c's: one XML_Parse()
 * over a body of at most S3_XML_MAX_BODY, any DOCTYPE refused, each element
 * named by its path from the root (names outside names[] as ""), its text
 * (bounded) kept until it closes. The parser embeds the walk as the first
 * member of its state, so its callbacks can cast w back to it. */
#define S3_XML_DEPTH		8
struct XML_ParserStruct;
struct s3_xml_walk {
	/* Set by the parser. */
	const char *const *names;	/* element names it matches */
	size_t n_names;
	const char *root;		/* the only document element accepted */
	void (*on_start)(struct s3_xml_walk *w);	/* path[depth - 1] opened; may be NULL */
	int (*on_end)(struct s3_xml_walk *w);	/* it closes: 0, or an error that stops the walk */

	struct XML_ParserStruct *p;
	int err;			/* the first error */
	unsigned depth;
	const char *path[S3_XML_DEPTH];	/* interned names[] entries, or "" */
	struct s3_buf text;		/* of path[depth - 1] */
};
/* 0, S3E_TOO_LARGE, S3E_MALFORMED_XML, -ENOMEM or on_end's error. */
int s3_xml_walk(struct s3_xml_walk *w, const char *body, size_t len);
/* Records err (the first one wins) and stops the walk. */
void s3_xml_fail(struct s3_xml_walk *w, int err);
/* Whether the path is exactly the depth names given. */
bool s3_xml_at(const struct s3_xml_walk *w, unsigned depth, ...);
/* The current text without surrounding whitespace; *n its length. */
const char *s3_xml_trimmed(const struct s3_xml_walk *w, size_t *n);

/* s3tags.c: an object's tag set (PutObjectTagging's <Tagging>, the
 * x-amz-tagging header) within S3's limits: at most 10 tags, keys of 1 to
 * 128 and values of up to 256 Unicode characters (valid UTF-8), keys
 * unique; anything else is S3E_INVALID_TAG. The query form
 * ("k1=v1&k2=v2", %-encoded; a tag without '=' has the empty value) is
 * both the header's and the stored one (s3_tagset_encode, one encoding). */
#define S3_MAX_TAGS		10
#define S3_TAG_KEY_MAX		128
#define S3_TAG_VALUE_MAX	256
struct s3_tag {
	char *key, *value;		/* malloc'd, NUL-terminated */
};
struct s3_tagset {
	struct s3_tag tags[S3_MAX_TAGS];
	size_t n;
};
/* Appends a tag (copied): 0, S3E_INVALID_TAG, -ENOMEM. */
int s3_tagset_add(struct s3_tagset *t, const char *k, size_t kl, const char *v,
		  size_t vl);
/* Tags in key order (bytewise), as S3 (RGW) lists them; both parsers
 * return sorted sets. */
void s3_tagset_sort(struct s3_tagset *t);
/* s[0..n) in the query form into *out (zeroed first; "" is no tags):
 * 0, S3E_INVALID_TAG (also for undecodable %-escapes), -ENOMEM. */
int s3_tagset_parse_query(const char *s, size_t n, struct s3_tagset *out);
/* The canonical query form of t (AWS URI-encoding), appended to b. */
int s3_tagset_encode(const struct s3_tagset *t, struct s3_buf *b);
void s3_tagset_free(struct s3_tagset *t);
/* PutObjectTagging's <Tagging><TagSet><Tag><Key/><Value/></Tag>...: 0,
 * S3E_MALFORMED_XML, S3E_INVALID_TAG, S3E_TOO_LARGE, -ENOMEM. */
int s3_xml_parse_tagging(const char *body, size_t len, struct s3_tagset *out);

/* s3lifecycle.c: PutBucketLifecycleConfiguration bodies. The parse checks
 * structure only (MalformedXML: no Rule, a Rule without Status or action,
 * Prefix beside Filter, Days not a number, a Date not ISO 8601;
 * InvalidArgument as S3: an ID over 255 bytes, duplicate IDs, a Date not at
 * midnight UTC) and records what it met, so the gateway can refuse what it
 * does not do (docs/tiering.md). */
#define S3_LC_MAX_RULES		1000
struct s3_lc_rule {
	char *id;			/* NULL when absent */
	char *prefix;			/* Filter/Prefix or legacy Prefix; "" all */
	bool enabled;			/* Status */
	bool legacy_prefix;		/* <Prefix> directly in the Rule */
	bool has_filter;
	bool other_filter;		/* Filter/And, Tag, ObjectSize*: unsupported */
	bool has_transition;		/* Transition with Days */
	uint32_t transition_days;	/* the earliest Days of the rule's */
	char *transition_class;		/* its StorageClass, as sent */
	bool transition_date;		/* a Transition by Date: unsupported */
	bool has_expiration;
	uint32_t expiration_days;
	bool other_action;		/* Noncurrent*, AbortIncomplete*: unsupported */
};
struct s3_lifecycle {
	struct s3_lc_rule *rules;
	size_t n;			/* 1..S3_LC_MAX_RULES */
};
int s3_lifecycle_parse(const char *body, size_t len, struct s3_lifecycle *out);
void s3_lifecycle_free(struct s3_lifecycle *lc);
/* The canonical LifecycleConfiguration document of lc, appended to b. */
int s3_lifecycle_xml(const struct s3_lifecycle *lc, struct s3_buf *b);

/* XML writer for responses: appends to an s3_buf. Element and attribute
 * names are trusted literals; text is escaped (&<>"' as entities; control bytes other
 * than tab, LF and CR cannot appear in XML 1.0 at all and become U+FFFD). Errors stick: once an append
 * fails every later call is a no-op and s3_xml_end() returns the error. */
struct s3_xml {
	struct s3_buf *b;
	int err;
	unsigned depth;
	const char *stack[16];	/* open element names (borrowed literals) */
};
void s3_xml_begin(struct s3_xml *x, struct s3_buf *b);	/* writes the XML decl */
/* xmlns: the S3 namespace attribute is added when ns is true. */
void s3_xml_open(struct s3_xml *x, const char *name, bool ns);
/* <name attrs>: attrs a trusted literal ('a="v" b="w"'), NULL for none. */
void s3_xml_open_attrs(struct s3_xml *x, const char *name, const char *attrs);
void s3_xml_close(struct s3_xml *x);
void s3_xml_text(struct s3_xml *x, const char *s, size_t n);
/* <name>escaped text</name> */
void s3_xml_elem(struct s3_xml *x, const char *name, const char *s);
void s3_xml_elemn(struct s3_xml *x, const char *name, const char *s, size_t n);
void s3_xml_elem_u64(struct s3_xml *x, const char *name, uint64_t v);
void s3_xml_elem_bool(struct s3_xml *x, const char *name, bool v);
int s3_xml_end(struct s3_xml *x);	/* closes what is open; 0 or error */
/* A complete <Error> document for err (s3_err_code/s3_err_message). */
int s3_xml_error(struct s3_buf *b, int err, const char *resource,
		 const char *request_id);
/* "2009-10-12T17:50:30.000Z" for LastModified/CreationDate. */
#define S3_XML_TIME_LEN		24
void s3_xml_time(int64_t unix_ms, char out[S3_XML_TIME_LEN + 1]);

/* ListBuckets (ListAllMyBucketsResult). */
struct s3_list_bucket {
	const char *name;
	int64_t created_ms;		/* unix milliseconds */
};
/* prefix: echoed when not NULL; next_token: the ContinuationToken of the
 * next page (NULL: the last page). */
int s3_xml_list_buckets(struct s3_buf *b, const char *owner_id,
			const char *owner_name, const struct s3_list_bucket *v,
			size_t n, const char *prefix, const char *next_token);

/* ListObjects (version 1) and ListObjectsV2 (ListBucketResult). Optional
 * strings are NULL when absent. With url_encode (the request said
 * encoding-type=url, as the AWS CLI and boto3 do by default) keys,
 * prefixes, the delimiter, markers and StartAfter are %-encoded, which
 * also carries keys that XML 1.0 cannot (control characters). */
struct s3_list_object {
	const char *key;
	int64_t mtime_ms;
	const char *etag;		/* quoted */
	uint64_t size;
	const char *storage_class;	/* NULL: "STANDARD" */
};
#define S3_LIST_VERSIONS	3	/* ListObjectVersions (ListVersionsResult) */
struct s3_list_result {
	int version;			/* 1, 2 or S3_LIST_VERSIONS: buckets are
					 * never versioned here, so every object
					 * is its one version, "null", latest */
	const char *bucket, *prefix, *delimiter;
	const char *marker, *next_marker;	/* v1; versions: Key/NextKeyMarker */
	const char *start_after, *continuation_token,
		   *next_continuation_token;	/* v2 */
	unsigned max_keys;
	bool truncated;
	bool url_encode;
	const struct s3_list_object *objs;
	size_t n_objs;
	const char *const *prefixes;	/* CommonPrefixes */
	size_t n_prefixes;
	const char *owner_id;		/* non-NULL: <Owner> in every <Contents>
					 * (v1 always, v2 with fetch-owner) */
};
int s3_xml_list_objects(struct s3_buf *b, const struct s3_list_result *r);

/* ------------------------------------------------------------------ ec.c */
/* k+m Reed-Solomon erasure coding over GF(2^8) with ISA-L (Cauchy matrix:
 * every k-subset of fragments decodes). A policy holds the encode tables
 * (ec_init_tables once per (k,m)) and a small LRU of decode tables per
 * erasure pattern; it is shared and thread-safe. */
#define GW_EC_MAX_K		16
#define GW_EC_MAX_M		8
#define GW_EC_MAX_FRAGS		(GW_EC_MAX_K + GW_EC_MAX_M)
#define GW_EC_DEFAULT_UNIT	(64u << 10)	/* stripe unit per fragment */
#define GW_EC_ALIGN		64		/* stripe units are multiples */

struct gw_ec;

/* The process-wide policy for (k,m), created on first use; 0, -EINVAL
 * (k < 1, m < 1, beyond the maxima), -ENOMEM. Pair with gw_ec_put(). */
int gw_ec_get(unsigned k, unsigned m, struct gw_ec **out);
void gw_ec_put(struct gw_ec *ec);
unsigned gw_ec_k(const struct gw_ec *ec);
unsigned gw_ec_m(const struct gw_ec *ec);

/* Computes m parity fragments from k data fragments, each len bytes
 * (len ≤ INT_MAX), in place through the pointers (no copies). */
int gw_ec_encode(const struct gw_ec *ec, size_t len, uint8_t *const *data,
		 uint8_t *const *parity);

/* frags[0..k+m): data then parity fragments, each a len-byte buffer;
 * present: bit i set when frags[i] holds valid content; want: the fragments
 * to rebuild (bits of missing fragments; present ones are left alone).
 * Rebuilds into the buffers of the wanted missing fragments. Returns 0, or
 * -EIO when fewer than k fragments are present (the object is lost at this
 * stripe), -EINVAL on bad masks, -ENOMEM. */
int gw_ec_decode(struct gw_ec *ec, size_t len, uint8_t *const *frags,
		 uint32_t present, uint32_t want);

/* Decode-table cache statistics (tests, metrics). */
void gw_ec_cache_stats(const struct gw_ec *ec, uint64_t *hits, uint64_t *misses);

/* Where an object's bytes go: stripes of k stripe units, one unit per data
 * fragment; the last stripe zero-padded. The object length is recorded in
 * metadata; fragment files are n_stripes * unit bytes. */
struct gw_ec_layout {
	unsigned k, m;
	uint32_t unit;		/* bytes per fragment per stripe */
	uint64_t object_len;
	uint64_t stripe_size;	/* k * unit */
	uint64_t n_stripes;	/* ceil(object_len / stripe_size) */
	uint64_t frag_len;	/* n_stripes * unit, per fragment */
	uint64_t last_stripe_len; /* data bytes in the last stripe (0 if none) */
};
/* unit 0 = GW_EC_DEFAULT_UNIT; must be a multiple of GW_EC_ALIGN. */
int gw_ec_layout(unsigned k, unsigned m, uint32_t unit, uint64_t object_len,
		 struct gw_ec_layout *out);
/* Object offset → stripe, data fragment index and offset in that fragment. */
void gw_ec_locate(const struct gw_ec_layout *l, uint64_t off, uint64_t *stripe,
		  unsigned *frag, uint64_t *frag_off);

/* ================== the gateway daemon (issue 5, strata-gateway) ========== */
/* gateway.c (S3: routing, auth, buckets, objects) on gw_store.c (writes and
 * reads of fragment sets with handoffs and deadlines) on gw_pool.c (one
 * storage client per node); gw_meta.c encodes what the fragments carry. */

/* Only the gateway's own files see these (strata_gateway defines
 * STRATA_GW_INTERNAL): the HTTP and S3 layers, their tests and fuzzers do not
 * link the ring or the storage client. */
#ifdef STRATA_GW_INTERNAL
#include "gateway.h"
#include "ring.h"
#include "storage.h"

/* ------------------------------------------------------------- gw_meta.c */
/* The metadata record every head fragment (and bucket record) carries, in
 * the fragments' opaque meta bytes. A compact versioned encoding:
 *   u8 format (GW_META_FORMAT), u8 kind, u8 layout, u8 k, u8 m,
 *   u8 cksum alg (| GW_META_CKSUM_COMPOSITE),
 *   u16 header count, u64 version (ns), u64 size, u32 segment size,
 *   md5[16], cksum[32], u32 override count, u16 owner length + owner,
 *   headers (u16 name length, name, u16 value length, value)...,
 *   overrides (u32 segment, u8 fragment, u32 device id)...
 * all integers big-endian; format 2 (multipart objects) appends
 *   u32 part count, u32 manifest length;
 * format 3 (EC data on a storage policy other than index 0) appends those
 *   two (0, 0 for a simple object) and u8 policy index.
 * Decoding validates every length. Format 1 is written whenever it can say
 * everything (no parts, policy 0), so older gateways read what they can;
 * they refuse a format 3 head (-EPROTO), whose fragments they could not
 * find anyway. Heads without a policy are on policy index 0. */
#define GW_META_FORMAT		1
#define GW_META_FORMAT_MPU	2
#define GW_META_FORMAT_POLICY	3
#define GW_META_MAX_HDRS	128
#define GW_META_MAX_OVERRIDES	8192
/* In the cksum alg byte: a multipart object's (or upload's) checksum is
 * COMPOSITE (shown "<base64>-<parts>"), else FULL_OBJECT. */
#define GW_META_CKSUM_COMPOSITE	0x80

enum gw_meta_kind {
	GW_META_OBJECT = 1,
	GW_META_BUCKET = 2,
	GW_META_UPLOAD = 3,	/* a multipart upload in progress (gw_mpu.c) */
};
enum gw_layout {
	GW_LAYOUT_INLINE = 1,	/* the data is the head fragment's payload (rep3) */
	GW_LAYOUT_EC = 2,	/* segments of k+m fragments on the EC ring */
	GW_LAYOUT_MULTIPART = 3, /* parts (EC) listed by a manifest, the head's
				  * payload (struct gw_manifest) */
};

/* Fragment frag of segment seg went to device dev instead of its primary. */
struct gw_override {
	uint32_t seg;
	uint8_t frag;
	uint32_t dev;
};

struct gw_meta_hdr {
	char *name;		/* lowercase: "content-type", "x-amz-meta-color" */
	char *value;
};

struct gw_meta {
	uint8_t kind, layout, k, m, cksum_alg;
	bool cksum_composite;	/* GW_META_CKSUM_COMPOSITE */
	uint64_t version;	/* wall clock ns of the PUT's start */
	uint64_t size;
	uint32_t seg_size;	/* EC: object bytes per segment (k * unit) */
	uint8_t md5[16];
	uint8_t cksum[32];	/* s3_cksum_len(cksum_alg) bytes used */
	char *owner;
	struct gw_meta_hdr *hdr;
	uint32_t nhdr;
	struct gw_override *over;
	uint32_t nover;
	/* format 2: multipart objects. nparts > 0: the ETag is md5 "-" nparts;
	 * manifest_len: bytes of the manifest in the head's payload. */
	uint32_t nparts;
	uint32_t manifest_len;
	/* EC data (layout EC, MULTIPART; an upload record's parts): the
	 * storage policy's index (struct ring_policy.index); 0 by default. */
	uint8_t policy;
};

/* Appends the encoding of m to b: 0, -E2BIG (over STO_MAX_META), -ENOMEM. */
int gw_meta_encode(const struct gw_meta *m, struct s3_buf *b);
/* Decodes p[0..n) into *m (zeroed first; free with gw_meta_free even on
 * error): 0, -EINVAL (malformed), -EPROTO (unknown format), -ENOMEM. */
int gw_meta_decode(const void *p, size_t n, struct gw_meta *m);
void gw_meta_free(struct gw_meta *m);
/* Adds a header (copied): 0, -E2BIG, -ENOMEM. */
int gw_meta_add_hdr(struct gw_meta *m, const char *name, size_t nlen,
		    const char *value, size_t vlen);
/* Removes every header named name (lowercase). */
void gw_meta_del_hdr(struct gw_meta *m, const char *name);
const char *gw_meta_hdr_get(const struct gw_meta *m, const char *name);
/* The object's quoted ETag: MD5, or for multipart the MD5 of the parts'
 * MD5s "-" parts. */
void gw_meta_etag(const struct gw_meta *m, char out[S3_ETAG_MAX]);
/* The object's checksum as x-amz-checksum-* shows it (COMPOSITE:
 * "<base64>-<parts>") into out: false when it has none. */
#define GW_CKSUM_SHOW_MAX	(S3_CKSUM_B64_MAX + 8)
bool gw_meta_cksum_show(const struct gw_meta *m, char out[GW_CKSUM_SHOW_MAX]);
/* "COMPOSITE" or "FULL_OBJECT" (x-amz-checksum-type). */
const char *gw_meta_cksum_type(const struct gw_meta *m);
/* Device of fragment frag of segment seg: the override, else prim. */
uint32_t gw_meta_dev(const struct gw_meta *m, uint32_t seg, unsigned frag,
		     uint32_t prim);
/* EC: fragment length of segment seg (seg_len / k rounded up to
 * GW_EC_ALIGN) and the segment's object bytes. */
uint64_t gw_meta_segments(const struct gw_meta *m);
void gw_seg_geometry(uint64_t size, uint32_t seg_size, unsigned k, uint64_t seg,
		     uint64_t *seg_len, uint32_t *frag_len);

/* ------------------------------------------------------------- gw_pool.c */
/* Up to conns_per_node storage clients per node address for reads, and as
 * many for the rest, connected lazily (another one whenever all are busy);
 * a request goes to the one of its class with the fewest pending. A node whose connect fails or times out, whose connection
 * breaks, that misses a write deadline or shows no sign of life for
 * hung_ms while a read waits is "down" for down_ms (doubling per
 * consecutive failure, up to 4x): its connections close and requests for it
 * fail at once, so callers go to parity or handoffs. */
struct gw_node;
struct gw_pool;

#define GW_POOL_MAX_CONNS	8

struct gw_pool_config {
	uint32_t down_ms;		/* skip a failed node this long (2000) */
	uint32_t deadline_ms;		/* how long a node back from down may
					 * stay silent; 0: hung_ms */
	uint32_t hung_ms;		/* silent this long with reads waiting:
					 * hung; also the connect deadline */
	unsigned conns_per_node;	/* for writes, and as many for reads:
					 * 1..GW_POOL_MAX_CONNS / 2 */
};

/* cb(arg, client, 0) with a connected client, or cb(arg, NULL, -errno)
 * (-EHOSTDOWN when the node is marked down). May run before this returns. */
typedef void (*gw_node_fn)(void *arg, sto_client *c, int err);

int gw_pool_new(uv_loop_t *loop, const struct gw_pool_config *cfg,
		struct gw_pool **out);
/* Stopping: closes every client (pending requests fail with STO_ECLOSED);
 * from now on acquires fail with -ECANCELED. */
void gw_pool_close(struct gw_pool *p);
/* Closes what is open and frees (no store operation may be live). */
void gw_pool_free(struct gw_pool *p);
/* The node for "host:port" (added on first use), or NULL (-ENOMEM/-EINVAL). */
struct gw_node *gw_pool_node(struct gw_pool *p, const char *addr);
void gw_node_acquire(struct gw_node *n, gw_node_fn cb, void *arg);
/* The same for a read (GET, HEAD, queries) that is answered without a flush
 * on the node: reads have connections of their own. */
void gw_node_acquire_read(struct gw_node *n, gw_node_fn cb, void *arg);
/* A request to n failed with err: connection errors and timeouts mark it
 * down (and drop its connections); answers such as -ENOENT do not. */
void gw_node_failed(struct gw_node *n, int err);
/* A request to n is past its deadline (deadline_ms): is the node moving
 * (it answered, or drained a write, within the deadline: busy, not hung;
 * hedging would add load, not speed), silent (requests waiting for longer
 * than the deadline without a sign of life, but not hung_ms yet) or hung
 * (silent for hung_ms, or for one deadline when it was down just before:
 * SIGSTOP, a dead link)? A hung node is marked down and its connections
 * dropped (their pending requests fail now); gw_node_acquire() makes the
 * same check. */
enum { GW_NODE_MOVING, GW_NODE_SILENT, GW_NODE_HUNG };
int gw_node_check(struct gw_node *n, uint32_t deadline_ms);
void gw_node_ok(struct gw_node *n);
bool gw_node_is_down(const struct gw_node *n);

/* ------------------------------------------------------------ gw_store.c */
/* Fragment sets: n placements of one partition written (PUT or DELETE) in
 * parallel, each retried on the partition's next unused handoff when its
 * device is down, refuses or misses the write deadline. Done once every
 * placement is durable (0) or one ran out of devices (-EHOSTUNREACH, or the
 * last error). STO_ECONFLICT (something newer is there) counts as done. */
struct gw_buf_hdr;

/* The gateway's EC storage policies (one ring each, every *.ring of --rings
 * but rep3.ring) and rep3: the rings a store consults. */
#define GW_MAX_POLICIES		8
#define GW_STORE_RINGS		(1 + GW_MAX_POLICIES)

struct gw_store {
	uv_loop_t *loop;
	struct gw_pool *pool;
	uint32_t read_deadline_ms, write_deadline_ms;
	unsigned live;		/* write sets, lookups and reads not yet freed */
	/* A rebalance under way: prev[i] is the placement before cur[i] (the
	 * gateway's rings; reads consult it too), NULL when none. */
	const struct ring *cur[GW_STORE_RINGS], *prev[GW_STORE_RINGS];
	struct gw_buf_hdr *idle_bufs;	/* gw_buf_free'd, for reuse */
	size_t idle_bytes;
};

/* The previous placement of ring (one of st->cur), or NULL. */
const struct ring *gw_store_prev(const struct gw_store *st, const struct ring *ring);
/* Whether d's node is marked down (gw_node_is_down). */
bool gw_store_dev_down(struct gw_store *st, const struct ring_dev *d);

/* Segment buffers (GW_EC_ALIGN-aligned like malloc's), reused by size class
 * so that requests do not page-fault fresh megabytes each time; at most
 * GW_BUF_CACHE_MAX idle bytes are kept. gw_buf_free(st, NULL) is a no-op;
 * gw_buf_cache_free() frees the idle ones (at exit). */
#define GW_BUF_CACHE_MAX	(64u << 20)
void *gw_buf_alloc(struct gw_store *st, size_t size);
void gw_buf_free(struct gw_store *st, void *p);
void gw_buf_cache_free(struct gw_store *st);

#define GW_MAX_HANDOFFS		8

struct gw_wset;
typedef void (*gw_wset_fn)(struct gw_wset *w, int err, void *arg);

struct gw_wfrag {
	struct gw_wset *w;
	unsigned idx;			/* placement */
	uint32_t frag;			/* fragment index in the key */
	struct iovec iov;
	uint32_t crc;
	const struct ring_dev *dev;	/* where it is going / went */
	unsigned gen;			/* attempt; stale answers are ignored */
	bool done;
	uv_timer_t timer;
};

struct gw_wset {
	struct gw_store *st;
	const struct ring *ring;
	uint32_t part;
	uint8_t name[STO_NAME_HASH_LEN];
	bool is_delete;
	uint64_t ts;
	const void *meta;
	uint32_t meta_len;
	const struct ring_dev *prim[RING_MAX_PLACEMENTS];
	const struct ring_dev *hand[GW_MAX_HANDOFFS];
	unsigned n, nhand, next_hand;
	unsigned pending;		/* placements not yet done */
	unsigned refs;			/* outstanding callbacks and timers + 1 */
	int err;
	bool finished;
	gw_wset_fn done;
	void *arg;
	struct sto_put_opts topts;	/* tiering of the PUT (zeroed: defaults) */
	uv_timer_t fin;			/* delivers done from the loop */
	struct gw_wfrag f[RING_MAX_PLACEMENTS];
};

/* A new set of ring_placements(ring) fragments (or n_override when > 0)
 * for part/name. Fill f[i].iov (and frag) for a PUT, then gw_wset_start().
 * done runs once, never inside gw_wset_start; the set frees itself after. */
struct gw_wset *gw_wset_new(struct gw_store *st, const struct ring *ring,
			    uint32_t part, const uint8_t name[STO_NAME_HASH_LEN],
			    unsigned n_override, bool is_delete, uint64_t ts,
			    gw_wset_fn done, void *arg);
void gw_wset_start(struct gw_wset *w);

/* SET_TIER (a stored fragment's tiering policy, docs/tiering.md) of k at
 * version ts on dev: cb(arg, status) once, with the node's answer (0,
 * -ENOENT: not there, STO_ECONFLICT: another version), or -ETIMEDOUT past
 * the write deadline, or a connection error. 0, or -EHOSTDOWN (the node is
 * marked down) / -ENOMEM without cb. */
typedef void (*gw_tierset_fn)(void *arg, int status);
int gw_tierset_start(struct gw_store *st, const struct ring_dev *dev,
		     const struct sto_key *k, uint64_t ts, const struct sto_put_opts *o,
		     gw_tierset_fn cb, void *arg);

/* Head lookup: HEAD of fragment frag on a partition's primaries and first
 * handoffs; the newest answer wins (a tombstone included). Done when all
 * answered, or at the read deadline once a live copy or a majority of the
 * primaries answered (slow nodes are not marked down: only broken
 * connections and write timeouts do that). */
struct gw_hlook;
struct gw_hlook_result {
	int status;			/* 0 live, -ENOENT none/deleted, other: failure */
	uint64_t ts;
	bool tombstone;
	uint8_t *meta;			/* malloc'd copy, freed with the lookup */
	uint32_t meta_len;
	const struct ring_dev *holders[RING_MAX_PLACEMENTS + GW_MAX_HANDOFFS];
	unsigned nholders;		/* devices that hold the newest, live */
};
typedef void (*gw_hlook_fn)(const struct gw_hlook_result *res, void *arg);
/* res is valid during cb only. 0 or -ENOMEM. */
int gw_hlook_start(struct gw_store *st, const struct ring *ring, uint32_t part,
		   const uint8_t name[STO_NAME_HASH_LEN], uint32_t frag,
		   gw_hlook_fn cb, void *arg);

/* Reads one whole fragment (or [off, off+len)) from dev into buf (at most cap
 * bytes; the node client receives straight into it): cb(arg, status,
 * timestamp, bytes) once, with 0 or an error (-EMSGSIZE past cap). At each
 * read deadline while unanswered, the node is checked (gw_node_check_stall):
 * hung, it is marked down and the read fails now; silent, or past
 * GW_READ_MAX_WAITS deadlines, cb(arg, GW_READ_SLOW, 0, 0) comes (once; a
 * hint: ask elsewhere too) and the read goes on; moving (busy, not hung),
 * it just waits another deadline. gw_read_abandon() stops
 * using buf at once; cb never runs again. *out (may be NULL) names the read
 * until its final cb or abandon. */
#define GW_READ_SLOW	1
#define GW_READ_MAX_WAITS	4
struct gw_read;
typedef void (*gw_read_fn)(void *arg, int status, uint64_t ts, size_t got);
int gw_read_start(struct gw_store *st, const struct ring_dev *dev,
		  const struct sto_key *k, uint64_t off, uint64_t len,
		  uint8_t *buf, size_t cap, gw_read_fn cb, void *arg,
		  struct gw_read **out);
void gw_read_abandon(struct gw_read *r);

/* Name hashes: SHA-256(path)[0..16); EC segment seg of version v:
 * SHA-256(path "\0" v (BE64) seg (BE32))[0..16). */
void gw_name_hash(const char *path, size_t len, uint8_t out[STO_NAME_HASH_LEN]);
void gw_seg_hash(const char *path, size_t len, uint64_t version, uint32_t seg,
		 uint8_t out[STO_NAME_HASH_LEN]);
/* ------------------------------------------------------------- gateway.c */
/* "/.buckets/<bucket>": the bucket record's path on the rep3 ring. */
void gw_bucket_path(const char *bucket, char *out, size_t cap, size_t *len);
struct gateway;
typedef void (*gw_list_done_fn)(void *arg, int err);
/* Deletes owner's bucket/key as DELETE Object does (head tombstone, EC
 * segments' tombstones, listing tombstone): cb(arg, 0) once durable, or an
 * error (-EHOSTUNREACH: not enough replicas). 0 or an error (no cb). */
struct gw_del_cond {			/* NULL: no such condition */
	const char *if_match, *if_mtime, *if_size;
};
int gw_obj_delete(struct gateway *gw, const char *owner, const char *bucket,
		  const char *key, const struct gw_del_cond *cond,
		  gw_list_done_fn cb, void *arg);

/* ----------------------------------------------------------- gw_delete.c */
/* DeleteObjects: body[0..len) is the <Delete> document (checked by the
 * caller: Content-MD5 / x-amz-checksum-*). Deletes up to 1000 keys, 16 at a
 * time, then cb(arg, 0, DeleteResult XML) (Quiet: errors only), or
 * cb(arg, err, NULL). 0, or S3E_MALFORMED_XML / -ENOMEM (no cb). */
typedef void (*gw_list_xml_fn)(void *arg, int err, struct s3_buf *xml);
int gw_delete_objects(struct gateway *gw, const char *owner, const char *bucket,
		      const char *body, size_t len, gw_list_xml_fn cb, void *arg);

/* ------------------------------------------------------------- gw_list.c */
/* Bucket listings (docs/gateway.md "Listings"): shards by key range on the
 * rep3 ring, the shard map in the bucket record, updates acknowledged by 2
 * of a shard's 3 replicas, splits past shard_max entries. Every callback
 * runs on the loop; those of gw_list_* may run before the call returns (a
 * cached shard map), never after it returned an error. */
#define GW_LIST_DEFAULT_SHARD_MAX	1000000

struct gw_listing;
struct gw_list_config {
	uint64_t shard_max;		/* entries (tombstones too) before a split */
	uint32_t split_wait_ms;		/* >= map cache TTL + write deadline */
};

int gw_listing_new(struct gw_store *st, const struct ring *rep,
		   const struct gw_list_config *cfg, struct gw_listing **out);
/* Stopping: no new splits, a waiting split ends. */
void gw_listing_close(struct gw_listing *L);
/* A new rep ring (a rebalance): listings use it from now on. */
void gw_listing_set_ring(struct gw_listing *L, const struct ring *rep);
/* Once no store operation is live. */
void gw_listing_free(struct gw_listing *L);
/* Drops the cached shard map (the bucket was created or deleted here). */
void gw_list_forget(struct gw_listing *L, const char *bucket);

/* gw_list_xml_fn (above): xml is the response body, borrowed during the
 * callback; NULL on error. */

struct gw_list_obj {
	const char *key;		/* NUL-terminated */
	uint64_t version;		/* timestamp: newest wins per key */
	bool tombstone;
	uint64_t size;
	const char *etag;		/* quoted */
	const char *storage_class;	/* NULL: STANDARD */
};
/* The object's entry in its bucket's listing (the shard covering the key;
 * during a split also the new shard). cb: 0 once 2 of 3 replicas of each
 * hold it; -EHOSTUNREACH, -ENOENT (no bucket), -ENAMETOOLONG (the nodes
 * cannot store a key that long). */
int gw_list_update(struct gw_listing *L, const char *bucket,
		   const struct gw_list_obj *o, gw_list_done_fn cb, void *arg);
/* ListObjects (v1) or ListObjectsV2 (list-type=2) from the raw query;
 * each object's class as gw_tier_class_at shows it under the bucket's
 * tier policy pol (NULL: none; a reference is kept while it runs).
 * -EINVAL: an invalid argument (max-keys, encoding-type, a token). */
struct gw_tier_pol;
int gw_list_objects(struct gw_listing *L, const char *bucket, const char *owner,
		    const char *query, size_t qlen, struct gw_tier_pol *pol,
		    gw_list_xml_fn cb, void *arg);
/* One page of the bucket's live keys under prefix after `after` (NULL or
 * "": from the first), at most max (0 or above 1000: 1000), in key order
 * across its shards (a fresh shard map): cb(arg, 0, items, n, more), items
 * borrowed during cb; or cb(arg, err, NULL, 0, false). The gateway's own
 * walks (gw_tier.c's policy passes), no XML. */
struct gw_list_item {
	const char *key;
	uint64_t version;
	uint64_t size;
	const char *storage_class;	/* "" for STANDARD */
};
typedef void (*gw_list_page_fn)(void *arg, int err, const struct gw_list_item *v,
				size_t n, bool more);
int gw_list_page(struct gw_listing *L, const char *bucket, const char *prefix,
		 const char *after, unsigned max, gw_list_page_fn cb, void *arg);
/* The account's bucket list (ListAllMyBucketsResult), with the raw query's
 * max-buckets, continuation-token and prefix; -EINVAL for a bad one. */
int gw_list_buckets(struct gw_listing *L, const char *account, const char *query,
		    size_t qlen, gw_list_xml_fn cb, void *arg);
/* A bucket created (deleted: a tombstone) at ts in the account's list. */
int gw_list_account_update(struct gw_listing *L, const char *account,
			   const char *bucket, uint64_t ts, bool deleted,
			   gw_list_done_fn cb, void *arg);
/* The first page (up to 1,000) of an account's list as names and entry
 * timestamps, v borrowed during cb (gw_tier.c keeps its pending policy
 * passes in such a list). */
struct gw_list_name {
	char name[64];
	uint64_t ts;
};
typedef void (*gw_list_names_fn)(void *arg, int err, const struct gw_list_name *v,
				 size_t n);
int gw_list_account_names(struct gw_listing *L, const char *account,
			  gw_list_names_fn cb, void *arg);
/* cb: 0 when no shard of the bucket lists a live key, -ENOTEMPTY, or an
 * error. Loads the current shard map (kept for gw_list_bucket_drop). */
int gw_list_bucket_empty(struct gw_listing *L, const char *bucket,
			 gw_list_done_fn cb, void *arg);
/* The bucket record is deleted: drop its shards (background, best effort). */
void gw_list_bucket_drop(struct gw_listing *L, const char *bucket);
/* The fuzz target's entry: gw_list.c's parsers (a bucket record's shard map,
 * a listing value, a ListObjects query) on p[0..n); aborts on a broken
 * invariant. */
int gw_list_fuzz_one(const uint8_t *p, size_t n);

/* A multipart object's part, as its manifest lists it. */
struct gw_mpart {
	uint32_t number;
	uint64_t size, version;
	uint32_t seg_size;
	struct gw_override *over;	/* handoffs its segments used */
	uint32_t nover;
	uint8_t cksum_alg;		/* the part's checksum (S3_CKSUM_NONE: none) */
	uint8_t cksum[S3_CKSUM_MAX_LEN];
	uint64_t off, seg0;		/* derived: object offset, first segment */
};
/* The payload of a multipart object's head (format GW_MANIFEST_FORMAT):
 *   u8 format, u16 uploadId length + uploadId, u32 parts, then per part
 *   u32 number, u64 size, u64 version, u32 segment size, u16 overrides,
 *   overrides (u32 segment, u8 fragment, u32 device)..., big-endian.
 * Format GW_MANIFEST_FORMAT_CKSUM (written when a part has a checksum)
 * adds to each part u8 cksum alg + its digest (s3_cksum_len bytes). */
#define GW_MANIFEST_FORMAT	1
#define GW_MANIFEST_FORMAT_CKSUM	2
struct gw_manifest {
	char *upload_id;
	struct gw_mpart *parts;
	uint32_t n;
	uint64_t nsegs;			/* derived: total segments */
};

/* Where segment seg of the object being read lives (gw_seg_ref). */
struct gw_segref {
	uint64_t obj_off;		/* object offset of its first byte */
	uint64_t len;			/* object bytes in it */
	uint32_t flen;			/* fragment length */
	uint32_t lseg;			/* index within its part (or object) */
	uint64_t version;		/* timestamp its fragments carry */
	uint8_t name[STO_NAME_HASH_LEN];
	const struct gw_override *over;	/* handoffs (keyed by lseg) */
	uint32_t nover;
};

struct gw_mpu;
struct gw_copy;

/* ------------------------------------------------------------- gateway.c */
/* The daemon and one S3 request's state, shared by gateway.c (routing,
 * auth, buckets, PUT/GET/DELETE), gw_mpu.c (multipart) and gw_copy.c. */
#define GW_BUCKET_CACHE		256
#define GW_BUCKET_TTL_NS	(2ull * 1000000000)

struct gw_bcache {
	char name[64];
	char owner[S3_ACCESS_KEY_MAX + 1];
	char location[32];
	uint32_t policy;		/* the bucket's storage policy index */
	uint64_t created;		/* the record's version */
	uint64_t expires;
};

/* An EC storage policy: NAME.ring in --rings (docs/gateway.md,
 * "Storage policies"). ring and prev change on a reload (a rebalance); a
 * policy itself lives as long as the gateway. */
struct gw_policy {
	char name[64];			/* the ring file's base name: "ec42" */
	uint32_t index;			/* struct ring_policy.index */
	struct ring *ring, *prev;	/* prev: the placement before, or NULL */
	unsigned k, m;
	struct gw_ec *ecc;
};

struct gateway {
	uv_loop_t *loop;
	struct gw_config cfg;
	struct http_server *srv;
	struct ring *rep;
	struct ring *rep_prev;		/* the placement before (rebalance), or NULL */
	struct gw_policy pol[GW_MAX_POLICIES];	/* by name */
	unsigned npol;
	const struct gw_policy *def_pol;	/* --policy: buckets made without a choice */
	uv_timer_t ring_watch;			/* reloads changed ring files */
	struct gw_ring_files *rfiles;
	struct s3_creds *creds;
	struct s3_auth *auth;
	struct gw_pool *pool;
	struct gw_store st;
	struct gw_listing *lst;		/* bucket listings (gw_list.c) */
	struct gw_tier *tier;		/* tiering policies' cache (gw_tier.c) */
	uint64_t seq;
	struct gw_bcache bcache[GW_BUCKET_CACHE];
	void (*stop_done)(void *);
	void *stop_arg;
	uv_timer_t drain;	/* stopping: waits for store operations */
	unsigned drain_ticks;
};

enum gw_op {
	OP_NONE,
	OP_LIST_BUCKETS, OP_CREATE_BUCKET, OP_HEAD_BUCKET, OP_DELETE_BUCKET,
	OP_BUCKET_LOCATION, OP_LIST_OBJECTS,
	OP_PUT_OBJECT, OP_GET_OBJECT, OP_HEAD_OBJECT, OP_DELETE_OBJECT,
	OP_OPTIONS, OP_BUCKET_VERSIONING,
	OP_GET_ACL, OP_PUT_ACL, OP_DELETE_OBJECTS, OP_GET_ATTRIBUTES,
	OP_UNSUPPORTED,
	/* gw_mpu.c */
	OP_CREATE_MPU, OP_UPLOAD_PART, OP_UPLOAD_PART_COPY, OP_COMPLETE_MPU,
	OP_ABORT_MPU, OP_LIST_PARTS, OP_LIST_MPU,
	/* gw_copy.c */
	OP_COPY_OBJECT,
	/* gw_tier.c */
	OP_GET_LIFECYCLE, OP_PUT_LIFECYCLE, OP_DELETE_LIFECYCLE,
	OP_GET_TIER_POLICY, OP_PUT_TIER_POLICY, OP_TIER_ADMIN,
	OP_GET_BUCKET_TAGGING, OP_PUT_BUCKET_TAGGING, OP_DELETE_BUCKET_TAGGING,
	/* gw_tagging.c */
	OP_GET_OBJ_TAGGING, OP_PUT_OBJ_TAGGING, OP_DELETE_OBJ_TAGGING,
};

struct gw_req;

/* A PUT's segment buffer: data k * unit then parity m * unit. */
struct gw_seg {
	struct gw_req *r;
	uint8_t *buf;
	uint64_t fill;		/* object bytes in it */
	uint32_t idx;
	bool busy;		/* fragments in flight */
};

/* A GET's read slot: one segment being read or written out. */
enum { SLOT_FREE, SLOT_READING, SLOT_READY, SLOT_WRITING };
struct gw_slot {
	struct gw_req *r;
	int state;
	uint64_t seg;
	struct gw_segref ref;	/* where seg lives */
	uint8_t *buf;		/* (k + m) * frag_len */
	uint32_t flen;
	uint64_t seg_len;
	uint32_t present, asked, failed, want, slow;
	uint32_t moved;		/* missing where asked first: asked at a second device */
	uint32_t home;		/* a recorded handoff's fragment asked at its ring
				 * placement first (slot_first_dev) */
	unsigned outstanding;
	struct gw_frag_read *fr[GW_EC_MAX_FRAGS];	/* reads in flight */
	uint64_t out_off, out_len;	/* slice of the segment to send */
};

struct gw_frag_read {
	struct gw_slot *s;
	unsigned frag;
	uint64_t seg;
	unsigned gen;
	struct gw_read *rd;
};

struct gw_req {
	struct gateway *gw;
	struct http_req *hr;		/* NULL once the HTTP request is over */
	unsigned refs;
	/* The rings in use when the request began (EC, rep3 and their previous
	 * placements), referenced until it ends: devices it borrowed from them,
	 * or from rings that replaced them since (each ring keeps its successor
	 * alive), stay valid however long it runs. */
	struct ring *pin[2 * GW_STORE_RINGS];
	char id[24];
	enum gw_op op;
	char *bucket, *key;
	char account[S3_ACCESS_KEY_MAX + 1];	/* requester */
	char owner[S3_ACCESS_KEY_MAX + 1];	/* bucket owner */
	char location[32];		/* bucket's LocationConstraint */
	/* EC policies: wpol the bucket's (its writes: part_ec is on its
	 * ring), rpol the object's being read (its head's; rpart_ec). */
	const struct gw_policy *wpol, *rpol;
	uint32_t bucket_policy;		/* the bucket's policy index */
	char *path;			/* /owner/bucket/key */
	size_t path_len;
	struct s3_header *h;
	size_t nh;
	struct s3_auth_result auth;
	bool anonymous, responded, failed;
	int body_err;
	/* body */
	struct s3_body_digest dg;
	bool dg_init;
	struct s3_chunked *chunked;
	bool chunked_done;
	struct s3_buf small;		/* small bodies: bucket XML, small objects */
	int64_t length;			/* declared object length, -1 while a
					 * chunked body's is not known yet */
	uint64_t received;
	/* PUT */
	struct gw_meta meta;
	uint64_t version;
	struct gw_seg seg[2];
	unsigned cur;			/* segment being filled */
	uint32_t nsegs_sent, nsegs_done;
	bool body_ended, head_written, paused;
	int put_err;
	uint32_t part_ec, part_rep;
	struct s3_buf metabuf;
	/* the version this PUT replaces, from a head lookup made at its start */
	uint64_t old_version, old_segs;
	const struct gw_policy *old_pol;	/* its policy (old_segs' ring) */
	bool old_known;
	/* GET */
	struct gw_meta gm;
	bool have_gm;
	uint64_t range_start, range_end;	/* inclusive */
	uint64_t seg_first, seg_last, next_read, next_write;
	struct gw_slot slots[2];
	unsigned read_turn;		/* 1+m: which copy segment 0 reads first */
	uint8_t *inline_buf;
	const struct ring_dev *holders[RING_MAX_PLACEMENTS + GW_MAX_HANDOFFS];
	unsigned nholders, holder_try;
	unsigned slot_gen;
	int resp_status;
	/* The object a GET (or a copy, its source) reads: r->path, or the
	 * copy source; not owned. */
	const char *rpath;
	size_t rpath_len;
	uint32_t rpart_ec, rpart_rep;
	/* the timestamp of the head read (gm): its payload (inline data, a
	 * manifest) carries it; a tagging rewrite makes it newer than
	 * gm.version, the object's version */
	uint64_t head_ts;
	/* multipart (gw_mpu.c) */
	struct gw_manifest man;		/* GET of a multipart object */
	bool have_man;
	char *upload_id;		/* UploadPart(Copy), Complete, Abort, ListParts */
	uint32_t part_num;		/* UploadPart(Copy); GET/HEAD ?partNumber */
	struct gw_mpu *mpu;		/* the operation's state, gw_mpu.c's */
	struct gw_manifest old_man;	/* the multipart object replaced/deleted */
	int recomplete_err;		/* a Complete's answer unless it is a retry */
	/* copy (gw_copy.c): the source streams into the PUT path */
	struct gw_copy *copy;
	/* tiering (gw_tier.c) */
	uint64_t bucket_created;	/* the bucket record's version */
	struct gw_tier_pol *tier_pol;	/* the bucket's policy (a reference) */
	bool tier_ready;		/* tier_pol (and tier_class) loaded */
	char tier_class[32];		/* UploadPart: the upload's storage class */
	/* tagging (gw_tagging.c): PutObjectTagging's set */
	struct s3_tagset *tags;
};

/* CreateBucket's choice of storage policy, HeadBucket's answer. */
#define GW_POLICY_HDR		"x-strata-storage-policy"
/* The policy of that index (struct ring_policy.index), or NULL: no ring. */
const struct gw_policy *gw_policy_by_index(const struct gateway *gw, uint32_t index);
/* The policy of the EC data m (a head, an upload record) describes: p, or
 * NULL, and the reason logged (what names path) when this gateway has no
 * ring for it; the caller answers GWE 503 (gw_policy_unavailable()). */
const struct gw_policy *gw_meta_policy(const struct gateway *gw, const struct gw_meta *m,
				       const char *what, const char *path);
/* r reads the EC data of m (r->rpath's): r->rpol and r->rpart_ec. 0, or
 * the 503 to send (no ring for m's policy, logged). */
int gw_req_read_policy(struct gw_req *r, const struct gw_meta *m);
/* r writes EC data on its bucket's policy: 0, or the 503 to send. */
int gw_req_write_policy(struct gw_req *r);
/* The error of data on a policy this gateway has no ring for (503). */
int gw_policy_unavailable(void);

struct gw_req *gw_req_get(struct gw_req *r);
void gw_req_put(struct gw_req *r);
/* Answers an error document (once; nothing if already answered). */
void gw_send_error(struct gw_req *r, int err);
/* Status, S3 code and message of any error the gateway answers with. */
void gw_err_describe(int err, int *status, const char **code, const char **msg);
void gw_send_empty(struct gw_req *r, int status);
/* A small XML (or empty) answer with the common headers. */
void gw_send_xml(struct gw_req *r, int status, const struct s3_buf *b);
void gw_resp_common(struct gw_req *r);
/* Raw query parameter lookup (value not decoded). */
bool gw_query_has(const char *q, size_t qn, const char *name, const char **value,
		  size_t *vlen);
/* r->path ("/owner/bucket/key") and its partitions, from r->owner/bucket/key. */
int gw_object_path(struct gw_req *r);
/* PUT: sets up the write (length, body digest, metadata from headers). */
int gw_put_begin(struct gw_req *r);
/* Feeds object bytes to the segment writer (copies them). */
int gw_put_sink(struct gw_req *r, const uint8_t *p, size_t n);
/* The shared commit: once every segment is durable, the body verified and
 * the replaced head known, writes the head (or, for a part, its entry) and
 * answers. Complete and CopyObject end here too, so the head write has one
 * home. */
void gw_put_maybe_head(struct gw_req *r);
/* If-Match / If-None-Match of r's request against old, the head r would
 * replace (NULL: none): 0, or the error to send (412 PreconditionFailed,
 * 404 NoSuchKey for If-Match on no object). */
int gw_put_check_conditions(struct gw_req *r, const struct gw_meta *old);
void gw_put_fail(struct gw_req *r, int err);
/* The object head m that r replaces: r->old_pol, and for an EC object
 * old_version and old_segs (its segments go once r's head is durable). */
void gw_put_old_head(struct gw_req *r, const struct gw_meta *m);
/* Tombstones segments 0..nsegs of (path, version) on the EC ring. */
void gw_tail_gc(struct gateway *gw, const struct gw_policy *pol, const char *path,
		size_t plen, uint32_t part, uint64_t version, uint64_t nsegs, uint64_t ts);
/* The GET pipeline (slots) over [range_start, range_end] of r->gm. */
void gw_get_pump(struct gw_req *r);
/* GET/HEAD after the head (and manifest) are known: conditions, range,
 * headers, body; a copy goes on with gw_copy_source_ready() instead. */
void gw_object_answer(struct gw_req *r);
/* Head lookup of r->rpath, then r->gm (and the manifest) and
 * gw_object_answer(). 0 or an error to send. */
int gw_object_lookup(struct gw_req *r);
/* Reads the payload (len bytes) of the head looked up from
 * r->holders[r->holder_try] into r->inline_buf (len + 1 bytes): cb(r, ...)
 * once, with a reference to r held for it. 0 or an error (no cb). */
int gw_head_read(struct gw_req *r, size_t len, gw_read_fn cb);
/* Reads an inline object from r->holders (on_inline_read answers). */
int gw_inline_read(struct gw_req *r);
/* Starts the segment pipeline over [range_start, range_end]. */
void gw_get_start(struct gw_req *r);
/* 0, or GWE precondition: 304 / 412; prefix "" or "x-amz-copy-source-". */
int gw_check_conditions(struct gw_req *r, const char *prefix, const char *etag,
			time_t mtime);
/* Stored headers and x-amz-meta-* of a PUT request into m. */
int gw_collect_meta(struct gw_req *r, struct gw_meta *m);
void gw_seg_ref(const struct gw_req *r, uint64_t seg, struct gw_segref *out);
/* The segment holding object byte off (off < r->gm.size). */
uint64_t gw_seg_at(const struct gw_req *r, uint64_t off);

/* -------------------------------------------------------------- gw_mpu.c */
/* Multipart uploads (docs/gateway.md, "Multipart"). Each upload has:
 *  - an upload record: 3 replicas on rep3 at SHA-256(path "\0" uploadId),
 *    carrying the final object's stored headers (gw_meta, GW_META_UPLOAD);
 *  - a parts listing on the node listing service (id: the same hash),
 *    key = part number (BE32), value = the part's size, MD5, version,
 *    segment size and handoffs; written on all 3 replicas;
 *  - the parts' EC segments, named from uploadId "/" number "/" path;
 *  - an entry in the bucket's uploads listing (key "\0" uploadId).
 * Complete writes one head whose payload is the manifest (the parts'
 * names and sizes); parts are never copied. */
enum {
	GWE_MPU_BASE = -3100,
	GWE_NO_SUCH_UPLOAD = GWE_MPU_BASE,	/* NoSuchUpload 404 */
	GWE_ENTITY_TOO_SMALL,			/* EntityTooSmall 400 */
	GWE_INVALID_PART_NUMBER,		/* InvalidPartNumber 416 */
	GWE_INVALID_COPY_SOURCE,		/* InvalidArgument 400 */
	GWE_INVALID_REQUEST_COPY,		/* InvalidRequest 400: copy onto itself */
	GWE_MPU_TOO_LARGE,			/* EntityTooLarge 400 */
	GWE_MPU_INVALID_ARG,			/* InvalidArgument 400 */
	GWE_COPY_NO_SUCH_BUCKET,		/* NoSuchBucket 404: the source's */
	GWE_COPY_PRECONDITION,			/* PreconditionFailed 412 */
	GWE_COPY_INVALID_RANGE,			/* InvalidRange 416 */
	GWE_MPU_CKSUM_TYPE,			/* InvalidRequest 400: checksum
						 * algorithm or type unfit */
	GWE_MPU_END
};
/* Status, code and message of a GWE_MPU_* error: true if it is one. */
bool gw_mpu_err_info(int err, int *status, const char **code, const char **msg);
/* Route: sets r->op for the multipart sub-resources. 1 routed, 0 not
 * multipart, < 0 error. */
int gw_mpu_route(struct gw_req *r, const char *q, size_t qn);
/* After the bucket lookup: starts the operation (0 or an error to send). */
int gw_mpu_dispatch(struct gw_req *r);
/* Complete: the XML body arrived in r->small. */
void gw_mpu_complete_body(struct gw_req *r);
/* UploadPart(Copy) in gw_put_begin: r->path becomes the part's name. */
int gw_mpu_part_prepare(struct gw_req *r);
/* UploadPart(Copy), before the part entry is written: does the part's
 * checksum suit the upload's algorithm? 0 or the error to fail with. */
int gw_mpu_part_check(struct gw_req *r);
/* UploadPart(Copy): segments durable, write the part entry, answer. */
void gw_mpu_part_commit(struct gw_req *r);
/* Complete: the head is durable. Answer, then drop the upload. */
void gw_mpu_completed(struct gw_req *r);
/* GET/HEAD of a multipart object: loads the manifest from r->holders, then
 * gw_object_answer(). 0 or an error to send. */
int gw_mpu_load_manifest(struct gw_req *r);
/* ?partNumber on GET/HEAD into r->part_num: 0 or InvalidArgument. */
int gw_mpu_part_number(struct gw_req *r);
void gw_mpu_seg_ref(const struct gw_req *r, uint64_t seg, struct gw_segref *out);
uint64_t gw_mpu_seg_at(const struct gw_req *r, uint64_t off);
/* The head res (decoded in m) that r replaces or deletes is a multipart
 * object: reads its manifest into r->old_man (before the new head or the
 * tombstone replaces it), then done(r) (also when the read fails: the parts
 * are then garbage). 0, or an error and done is not called. */
int gw_mpu_old_manifest(struct gw_req *r, const struct gw_hlook_result *res,
			const struct gw_meta *m, void (*done)(struct gw_req *r));
/* Tombstones the segments of every part of r->old_man at ts. */
void gw_mpu_gc_old(struct gw_req *r, uint64_t ts);
/* The same without a request (gw_obj_delete): reads the manifest of the
 * head res / m of path into *out, then done(arg) (also when the read
 * fails: out stays empty). path must live until done. 0, or an error and
 * done is not called. */
int gw_manifest_read_old(struct gateway *gw, const char *path, size_t plen,
			 uint32_t part_rep, const struct gw_hlook_result *res,
			 const struct gw_meta *m, struct gw_manifest *out,
			 void (*done)(void *arg), void *arg);
/* Tombstones the segments of every part of m (the object at path) at ts. */
void gw_manifest_gc(struct gateway *gw, const struct gw_policy *pol, const char *path,
		    size_t plen, uint32_t part_ec, const struct gw_manifest *m, uint64_t ts);
/* Frees what gw_mpu.c and gw_copy.c hung on r. */
void gw_mpu_req_free(struct gw_req *r);
/* Manifest encoding (payload of a multipart head). */
int gw_manifest_encode(const struct gw_manifest *m, struct s3_buf *b);
int gw_manifest_decode(const void *p, size_t n, struct gw_manifest *m);
void gw_manifest_free(struct gw_manifest *m);
/* A part as the parts listing holds it: key = number (BE32), value =
 * u64 version, u64 size, md5[16], u32 segment size, u16 overrides,
 * overrides (u32 segment, u8 fragment, u32 device), big-endian; then,
 * when the part came with a checksum, u8 alg + its digest. */
struct gw_part_entry {
	uint32_t number;
	uint64_t version, size;
	uint8_t md5[16];
	uint32_t seg_size;
	struct gw_override *over;
	uint32_t nover;
	uint8_t cksum_alg;
	uint8_t cksum[S3_CKSUM_MAX_LEN];
};
/* The value of a part (r->meta: version, size, MD5, segment size,
 * handoffs, checksum). 0 or -ENOMEM/-E2BIG. */
int gw_part_entry_encode(const struct gw_meta *m, struct s3_buf *b);
/* 0, -EINVAL (malformed), -ENOMEM; free with gw_part_entry_free. */
int gw_part_entry_decode(const struct sto_listing_entry *e, struct gw_part_entry *p);
void gw_part_entry_free(struct gw_part_entry *p);
/* <Checksum<ALG>>base64</...> of a part (ListParts, GetObjectAttributes);
 * nothing for S3_CKSUM_NONE. */
void gw_xml_part_cksum(struct s3_xml *x, unsigned alg, const uint8_t *cksum);
/* The object's <Checksum<ALG>> and <ChecksumType> (Complete's answer,
 * GetObjectAttributes): false, and nothing, when it has none. */
bool gw_xml_object_cksum(struct s3_xml *x, const struct gw_meta *m);
/* Part naming: uploadId "/" number "/" path (uploadId first: the segment
 * hash truncates long paths at their end). */
int gw_part_path(const char *path, size_t plen, const char *upload_id,
		 uint32_t number, struct s3_buf *out);

/* ------------------------------------------------------------- gw_copy.c */
/* CopyObject and UploadPartCopy: the source is read by the GET pipeline
 * (2 segments ahead) and fed to the PUT pipeline (2 segment buffers), so a
 * copy holds at most 4 segments whatever the size. */
/* Parses x-amz-copy-source and starts the source lookup. 0 or error. */
int gw_copy_begin(struct gw_req *r);
/* The GET pipeline has a ready slice: how many of its bytes may be fed
 * now (0: wait for a segment write to finish)? */
uint64_t gw_copy_room(struct gw_req *r);
int gw_copy_feed(struct gw_req *r, const uint8_t *p, size_t n);
/* The source's head (and manifest) are known in r->gm: conditions, then
 * the destination's PUT starts and the source streams. */
void gw_copy_source_ready(struct gw_req *r);
/* UploadPartCopy: the upload record is known; the copy streams now,
 * computing the upload's checksum algorithm alg (NONE: none) for the
 * part. 0 or -ENOMEM. */
int gw_copy_upload_known(struct gw_req *r, enum s3_cksum_alg alg);
/* The source was read to the end (err 0) or failed. */
void gw_copy_source_done(struct gw_req *r, int err);
void gw_copy_free(struct gw_req *r);
/* A streaming copy answer (200 already sent): doc, an error document, ends
 * it. False when the copy is not streaming (send the error normally). */
bool gw_copy_stream_error(struct gw_req *r, const struct s3_buf *doc);
/* The answer of a committed copy (CopyObjectResult / CopyPartResult). */
void gw_copy_answer(struct gw_req *r, const char *etag);

/* ------------------------------------------------------------- gw_tier.c */
/* Tiering seen from S3 (docs/tiering.md, "Gateway"): x-amz-storage-class,
 * a bucket's tier policy (pin, cold_after: the x-strata-tier-* extension),
 * lifecycle Transition rules, and GET /_strata/tiers. A bucket's policy is a
 * record of its own (3 replicas on rep3 at "/.tiercfg/<bucket>", tied to the
 * bucket's creation), cached 2 s per gateway. */
enum {
	GWE_TIER_BASE = -3200,
	GWE_INVALID_STORAGE_CLASS = GWE_TIER_BASE,	/* InvalidStorageClass 400 */
	GWE_NO_SUCH_LIFECYCLE,		/* NoSuchLifecycleConfiguration 404 */
	GWE_LC_NOT_IMPLEMENTED,		/* NotImplemented 501: a lifecycle part */
	GWE_TIER_INVALID_ARG,		/* InvalidArgument 400 */
	GWE_LC_TOO_LARGE,		/* InvalidArgument 400: too many rules */
	GWE_NO_SUCH_TAG_SET,		/* NoSuchTagSet 404: a bucket without tags */
	GWE_TIER_END
};
struct gw_tier;
struct gw_tier_pol;
bool gw_tier_err_info(int err, int *status, const char **code, const char **msg);
int gw_tier_new(struct gateway *gw, struct gw_tier **out);
/* Serving: looks for unfinished policy passes every tier_pass_check_ms. */
void gw_tier_start(struct gw_tier *t);
/* Stopping: no new policy passes; those running end once answered. */
void gw_tier_close(struct gw_tier *t);
void gw_tier_free(struct gw_tier *t);
/* Route: ?lifecycle, ?strata-tier, a bucket's ?tagging, /_strata/tiers.
 * 1 routed, 0 not. */
int gw_tier_route(struct gw_req *r, const char *q, size_t qn);
/* In dispatch, after the bucket and its owner are known: true when
 * gw_tier.c took the request over (its own operations; or the bucket's
 * policy is being loaded, dispatch runs again once it is). */
bool gw_tier_dispatch(struct gw_req *r, void (*again)(struct gw_req *r));
/* GET /_strata/tiers (authenticated, any bucket-less request). */
void gw_tier_admin(struct gw_req *r);
/* The storage class HEAD, GET and ListObjects show for an object written
 * with class `stored` (NULL or "": STANDARD) at version_ns (wall clock,
 * its Last-Modified), at now_ns, under its bucket's policy p (NULL: none):
 * the stored class, or for a STANDARD one the class of the latest matching
 * lifecycle Transition whose Days its age since creation has reached (as
 * S3 transitions), else STANDARD_IA in a bucket pinned cold; STANDARD in a
 * bucket pinned hot. By age, not by the medium the nodes hold it on (one
 * read recently stays hot longer): every listing answers it without asking
 * the nodes, and HEAD answers the same. NULL: STANDARD. */
const char *gw_tier_class_at(const struct gw_tier_pol *p, const char *stored, const char *key,
			     uint64_t version_ns, uint64_t now_ns);
/* gw_tier_class_at for r's object m now (HEAD, GET, GetObjectAttributes). */
const char *gw_tier_class_shown(const struct gw_req *r, const struct gw_meta *m);
/* PutBucketLifecycleConfiguration, PutBucketTagging: the body arrived in
 * r->small. */
void gw_tier_body_end(struct gw_req *r);
/* CreateBucket with x-strata-tier-* headers: the bucket record is durable;
 * writes its policy, then answer(r). False when there is nothing to write
 * (answer yourself). */
bool gw_tier_bucket_created(struct gw_req *r, void (*answer)(struct gw_req *r));
/* Checks x-amz-storage-class on a PUT/CopyObject/CreateMultipartUpload/
 * CreateBucket's x-strata-tier-* headers: 0 or an error to send. */
int gw_tier_check_headers(struct gw_req *r);
/* CopyObject: the request's x-amz-storage-class replaces the copied one. */
int gw_tier_copy_class(struct gw_req *r);
/* The node-side tiering of r's fragments (segments and head). */
void gw_tier_opts(const struct gw_req *r, struct sto_put_opts *o);
void gw_tier_req_free(struct gw_req *r);
/* A reference to a bucket's policy (r->tier_pol), for a listing. */
struct gw_tier_pol *gw_tier_pol_ref(struct gw_tier_pol *p);
void gw_tier_pol_unref(struct gw_tier_pol *p);

/* ---------------------------------------------------------- gw_tagging.c */
/* Object tagging (docs/gateway.md, "Tagging"): the tag set is a stored
 * header of the head ("x-amz-tagging", s3tags.c's query form), so it lives
 * and goes with the object; PutObjectTagging / DeleteObjectTagging rewrite
 * the head. */
#define GW_TAGS_HDR		"x-amz-tagging"
/* Route: ?tagging on a key. 1 routed, 0 not. */
int gw_tagging_route(struct gw_req *r, const char *q, size_t qn);
/* Dispatch of the three operations (the bucket is known): 0 or an error. */
int gw_tagging_dispatch(struct gw_req *r);
/* PutObjectTagging: the XML body arrived in r->small. */
void gw_tagging_body_end(struct gw_req *r);
/* The head was looked up (r->gm, r->holders, r->head_ts): answer. */
void gw_tagging_head(struct gw_req *r);
/* A PUT's, CreateMultipartUpload's or a REPLACE copy's x-amz-tagging
 * header into m: 0, S3E_INVALID_TAG, -ENOMEM. */
int gw_tagging_collect(struct gw_req *r, struct gw_meta *m);
/* CopyObject: x-amz-tagging-directive COPY (the source's tags, r->gm) or
 * REPLACE (the request's) in r->meta: 0 or an error. */
int gw_tagging_copy(struct gw_req *r);
/* PutBucketTagging's body (r->small) in the stored form: *out malloc'd,
 * NULL for an empty set. 0, S3E_MALFORMED_XML, S3E_INVALID_TAG, -ENOMEM. */
int gw_tagging_parse_body(struct gw_req *r, char **out);
/* A <Tagging> answer of stored (the query form; NULL: no tags). */
void gw_tagging_send(struct gw_req *r, const char *stored);
/* x-amz-tagging-count of a GET/HEAD of m. */
void gw_tagging_count_header(struct gw_req *r, const struct gw_meta *m);
void gw_tagging_req_free(struct gw_req *r);

#endif /* STRATA_GW_INTERNAL */

#endif
