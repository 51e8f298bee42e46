/* Unit tests for the request receiver: parsing, header table, limits
 * (cmocka). Every request is also fed in 1-, 2-, 3-, 7- and 64-byte reads
 * and must give the same events. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const struct http_rx_limits lim = {
	.max_url = 64,
	.max_header_bytes = 512,
	.max_headers = 8,
	.max_body = 100,
};

struct run {
	char log[1024];		/* "HEAD GET /x 2;BODY;END;" */
	char body[4096];
	size_t body_len;
	int err;		/* 0 or the failing return */
	int status;
};

static void log_event(struct run *r, const char *fmt, ...)
{
	size_t n = strlen(r->log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->log + n, sizeof(r->log) - n, fmt, ap);
	va_end(ap);
}

/* Feeds in[0..len) step bytes at a time, as reads would arrive: the
 * unconsumed part stays and more is appended. */
static void run_steps(const struct http_rx_limits *l, const char *in, size_t len,
		      size_t step, struct run *r)
{
	struct http_rx rx = { 0 };
	size_t off = 0, avail = 0, used;

	memset(r, 0, sizeof(*r));
	assert_int_equal(http_rx_init(&rx, l), 0);
	for (;;) {
		int ev = http_rx_feed(&rx, in + off, avail - off, &used);

		off += used;
		assert_true(off <= avail);
		if (ev < 0) {
			r->err = ev;
			r->status = rx.status;
			log_event(r, "ERR %d;", rx.status);
			break;
		}
		if (ev == HTTP_RX_MORE) {
			assert_int_equal(off, avail);
			if (avail == len)
				break;
			avail = avail + step < len ? avail + step : len;
			continue;
		}
		if (ev == HTTP_RX_HEAD) {
			size_t tl;
			const char *t = http_rx_target(&rx, &tl);

			assert_int_equal(strlen(t), tl);
			log_event(r, "HEAD %s %s %u;", http_method_str(rx.p.method), t, rx.nhdr);
		} else if (ev == HTTP_RX_BODY) {
			assert_true(r->body_len + rx.body_len <= sizeof(r->body));
			memcpy(r->body + r->body_len, rx.body, rx.body_len);
			r->body_len += rx.body_len;
		} else if (ev == HTTP_RX_END) {
			log_event(r, "END %zu;", r->body_len);
		}
	}
	http_rx_free(&rx);
}

/* Runs in every read size; all must agree; returns the whole-buffer run. */
static void run_all(const struct http_rx_limits *l, const char *in, struct run *r)
{
	static const size_t steps[] = { 1, 2, 3, 7, 64 };
	struct run other;

	run_steps(l, in, strlen(in), strlen(in) ? strlen(in) : 1, r);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		run_steps(l, in, strlen(in), steps[i], &other);
		assert_string_equal(other.log, r->log);
		if (r->err)
			continue;	/* how much body precedes a failure varies */
		assert_int_equal(other.body_len, r->body_len);
		assert_memory_equal(other.body, r->body, r->body_len);
	}
}

static void test_simple_get(void **state)
{
	struct run r;

	run_all(&lim, "GET /b/k%2Fx?uploads&x=1 HTTP/1.1\r\nHost: a\r\n\r\n", &r);
	assert_string_equal(r.log, "HEAD GET /b/k%2Fx?uploads&x=1 1;END 0;");
	assert_int_equal(r.err, 0);
}

static void test_header_table(void **state)
{
	static const char req[] =
		"PUT /o HTTP/1.1\r\n"
		"Host: example\r\n"
		"X-Amz-Meta-A:   one  \r\n"
		"x-amz-meta-a: two\t\r\n"
		"Empty:\r\n"
		"CONTENT-LENGTH: 0\r\n\r\n";
	struct http_rx rx = { 0 };
	size_t used, len;
	const char *v;
	int i;

	assert_int_equal(http_rx_init(&rx, &lim), 0);
	/* Fed in two reads split inside a name and inside a value. */
	assert_int_equal(http_rx_feed(&rx, req, 40, &used), HTTP_RX_MORE);
	assert_int_equal(used, 40);
	assert_int_equal(http_rx_feed(&rx, req + 40, sizeof(req) - 41, &used), HTTP_RX_HEAD);
	assert_int_equal(rx.nhdr, 5);
	v = http_rx_header(&rx, "host", &len);
	assert_string_equal(v, "example");
	assert_int_equal(len, 7);
	/* Duplicates in order, either case; blanks trimmed. */
	i = http_rx_header_find(&rx, "X-AMZ-META-A", 0);
	assert_int_equal(i, 1);
	assert_string_equal(rx.buf + rx.hdr[i].value, "one");
	i = http_rx_header_find(&rx, "x-amz-meta-a", (uint32_t)i + 1);
	assert_int_equal(i, 2);
	assert_string_equal(rx.buf + rx.hdr[i].name, "x-amz-meta-a");
	assert_string_equal(rx.buf + rx.hdr[i].value, "two");
	assert_int_equal(http_rx_header_find(&rx, "x-amz-meta-a", 3), -1);
	v = http_rx_header(&rx, "empty", &len);
	assert_non_null(v);
	assert_string_equal(v, "");
	assert_int_equal(len, 0);
	assert_null(http_rx_header(&rx, "missing", &len));
	assert_null(http_rx_header(&rx, "hos", &len));
	http_rx_free(&rx);
}

static void test_body_content_length(void **state)
{
	struct run r;

	run_all(&lim, "PUT /o HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world", &r);
	assert_string_equal(r.log, "HEAD PUT /o 2;END 11;");
	assert_memory_equal(r.body, "hello world", 11);
}

static void test_body_chunked(void **state)
{
	struct run r;

	run_all(&lim, "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n", &r);
	assert_string_equal(r.log, "HEAD POST /c 2;END 11;");
	assert_memory_equal(r.body, "hello world", 11);
}

static void test_pipelined(void **state)
{
	struct run r;

	run_all(&lim, "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
		"PUT /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
		"HEAD /3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
	assert_string_equal(r.log, "HEAD GET /1 1;END 0;HEAD PUT /2 2;END 3;"
			    "HEAD HEAD /3 1;END 3;");
	assert_int_equal(r.err, 0);
}

static void test_limits(void **state)
{
	char big[2048];
	struct run r;

	/* Target over max_url: 414 (exactly max_url is fine). */
	snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\nHost: h\r\n\r\n", 63, 0);
	run_all(&lim, big, &r);
	assert_string_equal(r.log, "HEAD GET /000000000000000000000000000000000000000000000000000000000000000 1;END 0;");
	snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\nHost: h\r\n\r\n", 64, 0);
	run_all(&lim, big, &r);
	assert_int_equal(r.status, 414);
	assert_int_equal(r.err, -EMSGSIZE);

	/* Too many header fields: 431. */
	run_all(&lim, "GET / HTTP/1.1\r\nHost: h\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\n"
		"f: 6\r\ng: 7\r\n\r\n", &r);
	assert_int_equal(r.err, 0);
	run_all(&lim, "GET / HTTP/1.1\r\nHost: h\r\na: 1\r\nb: 2\r\nc: 3\r\nd: 4\r\ne: 5\r\n"
		"f: 6\r\ng: 7\r\nh: 8\r\ni: 9\r\n\r\n", &r);
	assert_int_equal(r.status, 431);

	/* Too many header bytes: 431. */
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX: %0*d\r\n\r\n", 600, 0);
	run_all(&lim, big, &r);
	assert_int_equal(r.status, 431);
	assert_int_equal(r.err, -EMSGSIZE);

	/* Content-Length over max_body: 413 at the head, before any body. */
	run_all(&lim, "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n", &r);
	assert_string_equal(r.log, "ERR 413;");
	run_all(&lim, "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", &r);
	assert_string_equal(r.log, "HEAD PUT / 2;");

	/* A chunked body growing over max_body: 413 once it does. */
	run_all(&lim, "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
		"40\r\n0000000000000000000000000000000000000000000000000000000000000000\r\n"
		"40\r\n0000000000000000000000000000000000000000000000000000000000000000\r\n"
		"0\r\n\r\n", &r);
	assert_int_equal(r.status, 413);
	assert_true(r.body_len <= 100);
}

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",	/* TLS hello */
		"GET / HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
		"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\x0b\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",				/* no Host */
		"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",	/* two */
		"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
	};
	struct run r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_all(&lim, bad[i], &r);
		if (r.status != 400)
			fail_msg("request %zu: log '%s'", i, r.log);
		assert_int_equal(r.err, -EPROTO);
	}
	run_all(&lim, "GET / HTTP/9.9\r\n\r\n", &r);
	assert_int_equal(r.status, 505);
	assert_int_equal(r.err, -EPROTONOSUPPORT);
	run_all(&lim, "GET / HTTP/1.0\r\n\r\n", &r);
	assert_int_equal(r.err, 0);
}

static void test_reinit_keeps_buffers(void **state)
{
	static const char get_a[] = "GET /a HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n";
	static const char get[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	struct http_rx rx = { 0 };
	size_t used;

	assert_int_equal(http_rx_init(&rx, &lim), 0);
	assert_int_equal(http_rx_feed(&rx, get_a, strlen(get_a), &used), HTTP_RX_HEAD);
	assert_non_null(rx.buf);
	/* After an error the receiver stays failed... */
	http_rx_init(&rx, &lim);
	assert_true(http_rx_feed(&rx, "XX\r\n", 4, &used) < 0);
	assert_true(http_rx_feed(&rx, get, strlen(get), &used) < 0);
	/* ...until initialised again. */
	http_rx_init(&rx, &lim);
	assert_int_equal(http_rx_feed(&rx, get, strlen(get), &used), HTTP_RX_HEAD);
	http_rx_free(&rx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_header_table),
		cmocka_unit_test(test_body_content_length),
		cmocka_unit_test(test_body_chunked),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_reinit_keeps_buffers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
