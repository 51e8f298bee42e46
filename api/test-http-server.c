/* test-http-server: the HTTP layer with demo handlers, for the integration
 * test (tests/http_server_test.py), the fuzzer's seeds and wrk. Not part of
 * the gateway.
 *
 *   GET  /hello                 "hello world\n" (small fixed response)
 *   *    /echo                  the request body back, streamed zero-copy:
 *                               each piece is written from the read buffer,
 *                               the request paused until the write is done
 *   GET  /large?size=N          N bytes, one fixed response from iovecs
 *   GET  /stream?chunks=N&size=M  chunked, next chunk on the last's completion
 *   PUT  /slow?delay_ms=D&every=B  slow consumer: pauses D ms after each B
 *                               bytes; checks the body is the test pattern
 *                               (byte i == i % 251); "bytes=N ok=1"
 *   PUT  /late?delay_ms=D       like /slow, but each piece stays lent and is
 *                               checked D ms later, when the request resumes
 *                               (as a downstream write from it would)
 *   PUT  /reject                403 at the headers (refuses 100-continue)
 *   PUT  /defer?ms=D&accept=1   decides after D ms: accept (100 Continue,
 *                               count the body) or 403
 *   GET  /sleep?ms=D            answers after D ms
 *   *    /headers               the raw target, path, query and headers
 *
 * Options: --listen HOST:PORT (127.0.0.1:0), --port-file FILE, --grace-ms MS
 * (graceful shutdown on SIGTERM, 10000), --set KEY=VALUE (http_config_set),
 * -v. Exits 0 after a graceful shutdown.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "internal.h"

#define PATTERN_LEN	(1u << 20)
static char pattern[PATTERN_LEN];	/* byte i == i % 251 */
static uint64_t nrequests;

enum route { R_ECHO, R_SLOW, R_LATE, R_STREAM, R_DEFER, R_SLEEP, R_OTHER };

struct treq {
	struct http_req *req;
	enum route route;
	uv_timer_t timer;
	bool timer_open;
	uint64_t bytes, every, next_pause, delay_ms;
	uint64_t chunks, chunk_size, sent;
	bool bad;			/* body differs from the pattern */
	const void *lent;		/* R_LATE: the piece being held */
	size_t lent_len;
	bool accept;
	bool done;			/* on_done ran; free when the timer is closed */
};

static uint64_t qparam(struct http_req *req, const char *name, uint64_t def)
{
	size_t qlen, nlen = strlen(name);
	const char *q = http_req_query(req, &qlen), *end;

	if (!q)
		return def;
	end = q + qlen;
	while (q < end) {
		const char *amp = memchr(q, '&', (size_t)(end - q));
		const char *stop = amp ? amp : end;

		if ((size_t)(stop - q) > nlen && !memcmp(q, name, nlen) && q[nlen] == '=')
			return strtoull(q + nlen + 1, NULL, 10);
		q = stop + 1;
	}
	return def;
}

static bool path_is(struct http_req *req, const char *p)
{
	size_t len;
	const char *path = http_req_path(req, &len);

	return len == strlen(p) && !memcmp(path, p, len);
}

static void reply(struct http_req *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply(struct http_req *req, int status, const char *fmt, ...)
{
	char body[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (http_resp_simple(req, status, "text/plain", body, (size_t)n) < 0)
		log_debug("reply %d: too late", status);
}

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void treq_free(struct treq *t)
{
	if (t->timer_open)
		uv_close((uv_handle_t *)&t->timer, timer_closed);
	else
		free(t);
}

static void start_timer(struct treq *t, uint64_t ms, uv_timer_cb cb)
{
	if (!t->timer_open) {
		uv_timer_init(uv_default_loop(), &t->timer);
		t->timer.data = t;
		t->timer_open = true;
	}
	uv_timer_start(&t->timer, cb, ms, 0);
}

static void check_pattern(struct treq *t, const unsigned char *d, size_t len)
{
	uint64_t off = t->bytes;

	for (size_t i = 0; i < len && !t->bad; i++)
		if (d[i] != (unsigned char)((off + i) % 251))
			t->bad = true;
	t->bytes += len;
}

/* ------------------------------------------------------------ handlers */

static void echo_written(struct http_req *req, int status, void *arg)
{
	http_req_resume(req);	/* the lent body piece is free again */
}

static void stream_next(struct http_req *req, int status, void *arg)
{
	struct treq *t = http_req_data(req);
	uint64_t n = t->chunk_size < PATTERN_LEN ? t->chunk_size : PATTERN_LEN;
	uv_buf_t b = uv_buf_init(pattern, (unsigned)n);

	if (status < 0)
		return;
	if (t->sent++ == t->chunks) {
		http_resp_end(req);
		return;
	}
	if (http_resp_write(req, &b, 1, stream_next, NULL) < 0)
		http_resp_end(req);
}

static void slow_resume(uv_timer_t *tm)
{
	struct treq *t = tm->data;

	if (t->lent) {
		check_pattern(t, t->lent, t->lent_len);
		t->lent = NULL;
	}
	if (t->done)
		treq_free(t);	/* the request ended while we held the piece */
	else
		http_req_resume(t->req);
}

static void defer_decide(uv_timer_t *tm)
{
	struct treq *t = tm->data;

	if (t->accept)
		http_req_resume(t->req);
	else
		reply(t->req, 403, "refused after a while\n");
}

static void sleep_done(uv_timer_t *tm)
{
	struct treq *t = tm->data;

	reply(t->req, 200, "slept\n");
}

static void dump_headers(struct http_req *req)
{
	char body[4096];
	size_t n = 0, len, qlen;
	const char *target = http_req_target(req, &len);
	const char *path, *q;
	const char *name, *value;

	n += (size_t)snprintf(body + n, sizeof(body) - n, "target=%s\n", target);
	path = http_req_path(req, &len);
	n += (size_t)snprintf(body + n, sizeof(body) - n, "path=%.*s\n", (int)len, path);
	q = http_req_query(req, &qlen);
	n += (size_t)snprintf(body + n, sizeof(body) - n, "query=%.*s\n",
			      q ? (int)qlen : 6, q ? q : "(none)");
	for (uint32_t i = 0; i < http_req_header_count(req) && n < sizeof(body); i++) {
		http_req_header_at(req, i, &name, &value);
		n += (size_t)snprintf(body + n, sizeof(body) - n, "%s: %s\n", name, value);
	}
	if (n > sizeof(body))
		n = sizeof(body);
	http_resp_header(req, "X-Header-Count", http_req_header(req, "host", NULL) ? "has-host" : "no-host");
	http_resp_simple(req, 200, "text/plain", body, n);
}

static void on_request(struct http_req *req)
{
	struct treq *t = calloc(1, sizeof(*t));

	nrequests++;
	if (!t) {
		reply(req, 503, "out of memory\n");
		return;
	}
	t->req = req;
	t->route = R_OTHER;
	http_req_set_data(req, t);

	if (path_is(req, "/hello")) {
		static char hello[] = "hello world\n";
		uv_buf_t b = uv_buf_init(hello, sizeof(hello) - 1);

		http_resp_send(req, 200, &b, 1, NULL, NULL);
	} else if (path_is(req, "/echo")) {
		t->route = R_ECHO;
		http_resp_header(req, "Content-Type", "application/octet-stream");
		http_resp_start(req, 200, http_req_content_length(req));
	} else if (path_is(req, "/large")) {
		uint64_t size = qparam(req, "size", PATTERN_LEN), left = size;
		uv_buf_t b[64];
		unsigned n = 0;

		if (size > 64ull * PATTERN_LEN) {
			reply(req, 400, "size too large\n");
			return;
		}
		while (left) {
			uint64_t piece = left < PATTERN_LEN ? left : PATTERN_LEN;

			b[n++] = uv_buf_init(pattern, (unsigned)piece);
			left -= piece;
		}
		http_resp_send(req, 200, b, n, NULL, NULL);
	} else if (path_is(req, "/stream")) {
		t->route = R_STREAM;
		t->chunks = qparam(req, "chunks", 10);
		t->chunk_size = qparam(req, "size", 1000);
		if (http_resp_start(req, 200, -1) == 0)
			stream_next(req, 0, NULL);
	} else if (path_is(req, "/slow")) {
		t->route = R_SLOW;
		t->delay_ms = qparam(req, "delay_ms", 0);
		t->every = qparam(req, "every", 1u << 20);
		t->next_pause = t->every;
	} else if (path_is(req, "/late")) {
		t->route = R_LATE;
		t->delay_ms = qparam(req, "delay_ms", 10);
	} else if (path_is(req, "/reject")) {
		reply(req, 403, "rejected\n");
	} else if (path_is(req, "/defer")) {
		t->route = R_DEFER;
		t->accept = qparam(req, "accept", 1) != 0;
		http_req_pause(req);
		start_timer(t, qparam(req, "ms", 100), defer_decide);
	} else if (path_is(req, "/sleep")) {
		t->route = R_SLEEP;
		start_timer(t, qparam(req, "ms", 100), sleep_done);
	} else if (path_is(req, "/headers")) {
		dump_headers(req);
	} else {
		reply(req, 404, "no such thing\n");
	}
}

static int on_body(struct http_req *req, const void *data, size_t len)
{
	struct treq *t = http_req_data(req);
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);

	switch (t->route) {
	case R_ECHO:
		/* Zero copy: the piece goes out from the read buffer, which
		 * stays lent to us until echo_written resumes the request. */
		http_req_pause(req);
		if (http_resp_write(req, &b, 1, echo_written, NULL) < 0)
			http_req_resume(req);
		break;
	case R_SLOW:
	case R_DEFER:
		check_pattern(t, data, len);
		if (t->route == R_SLOW && t->bytes >= t->next_pause && t->delay_ms) {
			while (t->next_pause <= t->bytes)
				t->next_pause += t->every;
			http_req_pause(req);
			start_timer(t, t->delay_ms, slow_resume);
		}
		break;
	case R_LATE:
		t->lent = data;
		t->lent_len = len;
		http_req_pause(req);
		start_timer(t, t->delay_ms, slow_resume);
		break;
	default:
		t->bytes += len;
		break;
	}
	return 0;
}

static void on_body_end(struct http_req *req)
{
	struct treq *t = http_req_data(req);

	switch (t->route) {
	case R_ECHO:
		http_resp_end(req);
		break;
	case R_SLOW:
	case R_LATE:
	case R_DEFER:
		reply(req, 200, "bytes=%" PRIu64 " ok=%d\n", t->bytes, !t->bad);
		break;
	default:
		break;
	}
}

static void on_done(struct http_req *req, int err)
{
	struct treq *t = http_req_data(req);

	if (err)
		log_debug("request ended: %s", strerror(-err));
	if (t && t->lent) {
		/* Like a downstream write in flight: it can't be called
		 * back, it completes later (slow_resume frees). */
		t->done = true;
		return;
	}
	if (t)
		treq_free(t);
}

/* ---------------------------------------------------------------- main */

static uv_signal_t sigterm, sigint;
static struct http_server *server;
static uint32_t grace_ms = 10000;

static void shutdown_done(struct http_server *srv, void *arg)
{
	log_info("shutdown complete after %" PRIu64 " requests", nrequests);
	uv_close((uv_handle_t *)&sigterm, NULL);
	uv_close((uv_handle_t *)&sigint, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	log_info("signal %d: graceful shutdown, %u connection(s) open, grace %u ms",
		 signum, http_server_conns(server), grace_ms);
	http_server_shutdown(server, grace_ms, shutdown_done, NULL);
}

static int write_port_file(const char *path, int port)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d\n", port);

	return strata_write_file_atomic(path, buf, (size_t)n);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "grace-ms", required_argument, NULL, 'g' },
		{ "set", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	const char *listen = "127.0.0.1:0", *port_file = NULL;
	struct http_config cfg;
	struct http_handler h = {
		.on_request = on_request,
		.on_body = on_body,
		.on_body_end = on_body_end,
		.on_done = on_done,
	};
	uv_loop_t *loop = uv_default_loop();
	int c, r;

	strata_log_init("test-http-server");
	http_config_init(&cfg);
	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		char *eq;

		switch (c) {
		case 'l': listen = optarg; break;
		case 'p': port_file = optarg; break;
		case 'g': grace_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'v': strata_log_verbose = true; break;
		case 's':
			eq = strchr(optarg, '=');
			if (!eq) {
				fprintf(stderr, "--set wants KEY=VALUE\n%s", http_config_help);
				return 2;
			}
			*eq = '\0';
			if (http_config_set(&cfg, optarg, eq + 1) < 0) {
				fprintf(stderr, "bad setting %s=%s; settings:\n%s", optarg,
					eq + 1, http_config_help);
				return 2;
			}
			break;
		default:
			fprintf(stderr, "usage: %s [--listen H:P] [--port-file F] [--grace-ms MS] "
				"[--set KEY=VALUE]... [-v]\n", argv[0]);
			return 2;
		}
	}
	for (size_t i = 0; i < PATTERN_LEN; i++)
		pattern[i] = (char)(i % 251);
	signal(SIGPIPE, SIG_IGN);

	r = http_server_new(loop, &cfg, &h, &server);
	if (r == 0)
		r = http_server_listen(server, listen);
	if (r < 0) {
		log_err("listen on %s: %s", listen, uv_strerror(r));
		return 1;
	}
	if (port_file && (r = write_port_file(port_file, http_server_port(server))) < 0) {
		log_err("port file %s: %s", port_file, strerror(-r));
		return 1;
	}
	log_info("listening on %s (port %d)", listen, http_server_port(server));
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigint, on_signal, SIGINT);

	uv_run(loop, UV_RUN_DEFAULT);
	http_server_free(server);
	r = uv_loop_close(loop);
	if (r < 0)
		log_warn("loop close: %s", uv_strerror(r));
	return 0;
}
