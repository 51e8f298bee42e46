/* libFuzzer target: bytes from a client into the real HTTP connection code.
 *
 * Each input is written into one end of a socketpair whose other end the
 * server adopts as a connection (http_server_adopt_fd), then the client
 * half-closes and the loop runs until the server has closed the connection.
 * The handlers use every path a real one would: echo with the body lent
 * zero-copy and the request paused until the write completes, answers
 * deferred to a later loop turn, early rejections of bodies and of
 * 100-continue, a streamed answer before the body is read, chunked and
 * HEAD responses, every header accessor. Small
 * limits and a 1 KiB read buffer make the limit and buffer-moving paths
 * common. A connection still open after the client is gone and the loop
 * has nothing left to do is a hang: the target aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

static uv_loop_t loop;
static struct http_server *srv;
static uv_idle_t later;			/* answers deferred a loop turn */
static struct http_req *deferred[4];
static unsigned ndeferred;
static char filler[3000];

static void on_later(uv_idle_t *h)
{
	unsigned n = ndeferred;

	ndeferred = 0;
	for (unsigned i = 0; i < n; i++) {
		struct http_req *req = deferred[i];
		size_t len;

		const char *q = http_req_query(req, &len);

		/* "?n": refuse, unless already answering (then read on). */
		if (!q || !len || q[0] != 'n' ||
		    http_resp_simple(req, 403, "text/plain", "no\n", 3) < 0)
			http_req_resume(req);
	}
	uv_idle_stop(h);
}

static void defer(struct http_req *req)
{
	if (ndeferred == 4) {
		http_resp_simple(req, 503, NULL, NULL, 0);
		return;
	}
	http_req_pause(req);
	deferred[ndeferred++] = req;
	http_req_set_data(req, &deferred);	/* marks "in deferred[]" */
	uv_idle_start(&later, on_later);
}

static void undefer(struct http_req *req)
{
	for (unsigned i = 0; i < ndeferred; i++) {
		if (deferred[i] == req) {
			deferred[i] = deferred[--ndeferred];
			return;
		}
	}
}

static void resumed(struct http_req *req, int status, void *arg)
{
	http_req_resume(req);
}

static void touch_headers(struct http_req *req)
{
	char buf[256];
	size_t len, out;
	const char *p = http_req_path(req, &len), *name, *value;
	unsigned major, minor;

	if (len <= sizeof(buf))
		http_url_decode(p, len, buf, &out, false);
	p = http_req_query(req, &len);
	if (p && len <= sizeof(buf))
		http_url_decode(p, len, buf, &out, true);
	for (uint32_t i = 0; i < http_req_header_count(req); i++) {
		http_req_header_at(req, i, &name, &value);
		if (http_req_header_find(req, name, i) != (int)i)
			abort();
		if (strlen(value) > 1000000)
			abort();
	}
	http_req_header(req, "host", &len);
	http_req_version(req, &major, &minor);
	(void)http_req_method_str(req);
	(void)http_req_content_length(req);
	(void)http_req_is_chunked(req);
	(void)http_req_expects_continue(req);
}

static void on_request(struct http_req *req)
{
	size_t len;
	const char *path = http_req_path(req, &len);
	char c = len > 1 ? path[1] : '\0';
	uv_buf_t b[2] = { uv_buf_init(filler, 100), uv_buf_init(filler, 2000) };

	touch_headers(req);
	http_req_set_data(req, NULL);
	switch (c) {
	case 'e':			/* echo, streamed as it comes */
		http_resp_header(req, "X-Echo", "1");
		http_resp_start(req, 200, http_req_content_length(req));
		break;
	case 'r':			/* reject before the body */
		http_resp_simple(req, 403, "text/plain", "rejected\n", 9);
		break;
	case 'd':			/* decide on a later turn */
		defer(req);
		break;
	case 's':			/* answer at once, read the body later */
		http_resp_start(req, 200, -1);
		defer(req);
		break;
	case 'f':			/* fixed, two iovecs */
		http_resp_send(req, 200, b, 2, NULL, NULL);
		break;
	case 'c':			/* chunked, three pieces, ended at body end */
		http_resp_start(req, 200, -1);
		http_resp_write(req, b, 1, NULL, NULL);
		http_resp_write(req, b + 1, 1, NULL, NULL);
		break;
	case 'n':			/* no content */
		http_resp_send(req, 204, NULL, 0, NULL, NULL);
		break;
	default:
		break;			/* answered at body end */
	}
}

static int on_body(struct http_req *req, const void *data, size_t len)
{
	size_t plen;
	const char *path = http_req_path(req, &plen);
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);

	if (plen > 1 && path[1] == 'e') {
		http_req_pause(req);
		if (http_resp_write(req, &b, 1, resumed, NULL) < 0)
			http_req_resume(req);
	} else if (plen > 1 && path[1] == 'x') {
		return -EIO;		/* a failing handler: 500 */
	}
	return 0;
}

static void on_body_end(struct http_req *req)
{
	size_t plen;
	const char *path = http_req_path(req, &plen);
	char c = plen > 1 ? path[1] : '\0';

	if (c == 'e' || c == 'c' || c == 's') {
		http_resp_write(req, NULL, 0, NULL, NULL);
		http_resp_end(req);
	} else if (c != 'r' && c != 'f' && c != 'n') {
		http_resp_header(req, "Content-Type", "text/plain");
		http_resp_simple(req, 200, "text/plain", "ok\n", 3);
	}
}

static void on_done(struct http_req *req, int err)
{
	if (http_req_data(req) == &deferred)
		undefer(req);
}

static void setup(void)
{
	struct http_config cfg;
	struct http_handler h = {
		.on_request = on_request,
		.on_body = on_body,
		.on_body_end = on_body_end,
		.on_done = on_done,
	};

	signal(SIGPIPE, SIG_IGN);
	memset(filler, 'x', sizeof(filler));
	uv_loop_init(&loop);
	uv_idle_init(&loop, &later);
	http_config_init(&cfg);
	cfg.read_buf = 1024;
	cfg.lim.max_url = 200;
	cfg.lim.max_header_bytes = 600;
	cfg.lim.max_headers = 12;
	cfg.lim.max_body = 3000;
	cfg.max_resp_header_bytes = 64;
	if (http_server_new(&loop, &cfg, &h, &srv) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	size_t off = 0;
	unsigned idle_turns = 0;
	bool shut = false;
	char sink[4096];

	if (!srv)
		setup();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	if (http_server_adopt_fd(srv, sv[0]) < 0)
		abort();
	/* Feed the input as the loop turns (the socket buffer may not take it
	 * all at once), read what the server answers, then half-close. */
	while (http_server_conns(srv) > 0) {
		ssize_t n;
		bool progress = false;

		if (off < size) {
			n = write(sv[1], data + off, size - off);
			if (n > 0) {
				off += (size_t)n;
				progress = true;
			} else if (n < 0 && errno != EAGAIN) {
				off = size;	/* the server closed: stop sending */
			}
		}
		if (off == size && !shut) {
			shutdown(sv[1], SHUT_WR);
			shut = true;
		}
		while ((n = read(sv[1], sink, sizeof(sink))) > 0)
			progress = true;
		uv_run(&loop, UV_RUN_NOWAIT);
		/* Every handler here answers within a turn or two of its
		 * input: many turns with no byte moving either way and the
		 * connection still open is a hang. */
		idle_turns = progress ? 0 : idle_turns + 1;
		if (idle_turns > 10000)
			abort();
	}
	close(sv[1]);
	return 0;
}
