/* bench/s3.c: `strata-bench s3`, a native S3 load generator.
 *
 * One libuv loop drives --concurrency keep-alive HTTP/1.1 connections, each
 * with one request in flight (http_parser reads the responses); requests are
 * SigV4-signed with api/sigv4.c's s3_sign_authz, the same canonical request
 * the gateway verifies. Object bodies are slices of one pseudo-random pool:
 * a key's size and its slice's offset derive from the key and its version,
 * so a PUT body costs no copy and --verify checks every byte of every GET
 * against what that key must hold, without remembering anything per key.
 *
 * Phases run in order (put, get, head, list, mixed, delete by default); with
 * --compare each phase runs on endpoint A, then on B, then the next phase,
 * so both see the same machine load within a minute, and the ratios are
 * printed. Each phase is one JSON object in the shared format (report.c).
 */
#include "internal.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* api/'s SigV4 and checksum code: strata-bench links strata_s3 as the
 * gateway does, so the client signs exactly as the server verifies. */
#include "../api/internal.h"

#define S3B_RBUF	(256 * 1024)	/* per-connection receive buffer */
#define S3B_MAX_ERRKINDS 32
#define S3B_HDR_MAX	2048

enum s3b_op { OP_PUT, OP_GET, OP_HEAD, OP_DELETE, OP_LIST, OP_NONE };
static const char *const op_names[] = { "put", "get", "head", "delete", "list" };

/* One endpoint: where, who, and its connections. */
struct s3b_target {
	const char *name;		/* "a" or "b" */
	char *url;
	char host[256];			/* Host header: "127.0.0.1:8480" */
	struct sockaddr_storage addr;
	char *access_key, *secret, *region, *bucket;
	char key_date[9];		/* date of key[] */
	uint8_t key[32];		/* signing key for key_date */
	struct s3b_conn *conns;
	unsigned nconns;
	uint64_t nkeys;			/* keys the put phase wrote */
	uint64_t extra_keys;		/* mixed phase's new keys, after nkeys */
};

struct s3b_errkind {
	char name[64];
	uint64_t n;
};

/* One phase on one target: counters the callbacks update. */
struct s3b_phase {
	const char *name;
	enum s3b_op op;			/* OP_NONE: mixed */
	struct s3b_target *t;
	uint64_t next;			/* next operation index to hand out */
	uint64_t limit;			/* operations to issue (UINT64_MAX: by time) */
	uint64_t t0, deadline;		/* uv_hrtime; deadline 0 = none */
	bool stopping;
	unsigned busy;
	uint64_t ops, errors, bytes;
	uint64_t verified_bytes, verify_failures;
	uint64_t last_ops, last_report;
	struct bench_hist hist;
	struct s3b_errkind errs[S3B_MAX_ERRKINDS];
	unsigned nerrs;
	double cpu0;
	uint64_t ops_by[5];
};

struct s3b_conn {
	uv_tcp_t tcp;
	struct s3b_target *t;
	bool open, connecting, closing;
	uv_write_t wreq;
	uv_connect_t creq;
	char hdr[S3B_HDR_MAX];
	char *rbuf;
	/* The request in flight. */
	bool busy;
	enum s3b_op op;
	uint64_t key;			/* key index */
	uint64_t size;			/* expected or sent body size */
	bool verify;			/* GET body checked against the pool */
	uint64_t start;			/* uv_hrtime at send */
	/* wreq is reused per request: the next request waits for both the
	 * response and this write's callback (a server may answer before
	 * the body is all written). */
	bool writing, next_after_write;
	struct s3b_resp resp;
};

static struct s3b_opts {
	struct s3b_sizes sizes;
	unsigned conc;
	double duration;
	uint64_t count;
	unsigned prefixes;
	const char *key_prefix;
	bool verify, signed_payload, keep;
	double timeout_s;
	double progress_s;
	uint64_t run;			/* run id: part of every key name */
	uint64_t version;		/* content version PUT writes, GET expects */
	uint64_t keys;			/* --keys: written by an earlier run */
	char *phases;
	unsigned mix[5];		/* mixed: percent per op */
} O;

static uv_loop_t *loop;
static struct s3b_phase *cur;		/* the phase running, or NULL */
static struct s3b_pool pool;
static volatile bool interrupted;

/* ------------------------------------------------------------- helpers */

static void key_name(char *out, size_t cap, uint64_t i)
{
	snprintf(out, cap, "%s%04x/%08" PRIx64 "-%09" PRIu64, O.key_prefix,
		 (unsigned)(s3b_mix64(i) % O.prefixes), O.run, i);
}

static void err_add(struct s3b_phase *p, const char *name)
{
	unsigned i;

	p->errors++;
	for (i = 0; i < p->nerrs; i++)
		if (!strcmp(p->errs[i].name, name)) {
			p->errs[i].n++;
			return;
		}
	if (p->nerrs == S3B_MAX_ERRKINDS)
		name = "other", i = S3B_MAX_ERRKINDS - 1;
	else
		i = p->nerrs++;
	snprintf(p->errs[i].name, sizeof(p->errs[i].name), "%s", name);
	p->errs[i].n++;
}

static void amz_now(char date[17])
{
	time_t now = time(NULL);
	struct tm tm;

	strftime(date, 17, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
}

/* Builds and signs the request head for op on key into c->hdr. */
static int build_request(struct s3b_conn *c, const char *method, const char *path,
			 const char *query, uint64_t body_len, const uint8_t *body)
{
	struct s3b_target *t = c->t;
	char date[17], scope[128], payload[65], clen[24];
	struct s3_header h[4];
	struct s3_sig_req r = { 0 };
	struct s3_buf authz = { 0 };
	size_t nh = 0;
	int n, ret;

	amz_now(date);
	if (memcmp(t->key_date, date, 8)) {
		memcpy(t->key_date, date, 8);
		t->key_date[8] = '\0';
		s3_signing_key(t->secret, t->key_date, t->region, "s3", t->key);
	}
	snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", t->key_date, t->region);
	if (O.signed_payload && body) {
		uint8_t d[32];

		s3_cksum_buf(S3_CKSUM_SHA256, body, body_len, d);
		s3_hex(d, 32, payload);
	} else if (O.signed_payload || !body_len) {
		snprintf(payload, sizeof(payload), "%s", s3_sha256_empty_hex());
	} else {
		snprintf(payload, sizeof(payload), "UNSIGNED-PAYLOAD");
	}
	snprintf(clen, sizeof(clen), "%" PRIu64, body_len);
	h[nh++] = (struct s3_header){ "host", 4, t->host, strlen(t->host) };
	h[nh++] = (struct s3_header){ "x-amz-content-sha256", 20, payload, strlen(payload) };
	h[nh++] = (struct s3_header){ "x-amz-date", 10, date, 16 };
	r.method = method;
	r.path = path;
	r.path_len = strlen(path);
	r.query = query;
	r.query_len = query ? strlen(query) : 0;
	r.headers = h;
	r.n_headers = nh;
	ret = s3_sign_authz(&authz, &r, "host;x-amz-content-sha256;x-amz-date", payload,
			    t->access_key, scope, date, t->key);
	if (ret)
		return ret;
	n = snprintf(c->hdr, sizeof(c->hdr),
		     "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nx-amz-date: %s\r\n"
		     "x-amz-content-sha256: %s\r\nAuthorization: %s\r\n"
		     "Content-Length: %s\r\nUser-Agent: strata-bench\r\n\r\n",
		     method, path, query ? "?" : "", query ? query : "", t->host, date,
		     payload, authz.p, clen);
	s3_buf_free(&authz);
	return n < 0 || (size_t)n >= sizeof(c->hdr) ? -ENAMETOOLONG : n;
}

/* ---------------------------------------------------------- connections */

static void conn_issue(struct s3b_conn *c);
static void conn_connect(struct s3b_conn *c);
static void phase_check_done(void);

static void on_close(uv_handle_t *h)
{
	struct s3b_conn *c = h->data;

	c->open = c->closing = false;
	if (cur && cur->t == c->t && !cur->stopping)
		conn_connect(c);		/* replace it and carry on */
}

static void conn_close(struct s3b_conn *c)
{
	if (c->closing || (!c->open && !c->connecting))
		return;
	c->closing = true;
	c->connecting = false;
	uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* The request in flight ends: counted in the phase, as success or error. */
static void op_done(struct s3b_conn *c, const char *err)
{
	struct s3b_phase *p = cur;
	uint64_t now = uv_hrtime();

	if (!c->busy)
		return;
	c->busy = false;
	if (!p)
		return;
	p->busy--;
	if (err) {
		err_add(p, err);
	} else {
		p->ops++;
		p->ops_by[c->op]++;
		p->bytes += c->op == OP_PUT ? c->size : c->resp.got;
		if (c->verify)
			p->verified_bytes += c->resp.got;
		bench_hist_add(&p->hist, now - c->start);
	}
}

static void conn_fail(struct s3b_conn *c, const char *why)
{
	char e[64];

	snprintf(e, sizeof(e), "conn:%s", why);
	if (c->busy) {
		op_done(c, e);
	} else if (cur && cur->t == c->t && c->connecting) {
		/* A connect that failed uses up an operation, so a --count
		 * phase against a dead endpoint ends too. */
		err_add(cur, e);
		if (cur->next < cur->limit)
			cur->next++;
	}
	conn_close(c);
	phase_check_done();
}

/* The response is in: classify it, start the next request. */
static void response_done(struct s3b_conn *c)
{
	struct s3b_resp *r = &c->resp;
	char e[96], code[48];

	if (r->status < 200 || r->status >= 300) {
		s3b_resp_code(r, code, sizeof(code));
		snprintf(e, sizeof(e), "http:%d%s%s", r->status, code[0] ? " " : "", code);
		op_done(c, e);
	} else if (r->mismatch) {
		if (cur)
			cur->verify_failures++;
		op_done(c, "verify:content");
	} else {
		op_done(c, NULL);
	}
	if (!r->keep_alive) {
		conn_close(c);
		phase_check_done();
		return;
	}
	conn_issue(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct s3b_conn *c = h->data;

	(void)hint;
	buf->base = c->rbuf;
	buf->len = S3B_RBUF;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct s3b_conn *c = s->data;
	int ret;

	if (nread == 0)
		return;
	if (nread < 0) {
		if (!c->busy && nread == UV_EOF) {
			conn_close(c);		/* server closed an idle keep-alive */
			return;
		}
		conn_fail(c, uv_err_name((int)nread));
		return;
	}
	if (!c->busy) {
		conn_fail(c, "unexpected-data");
		return;
	}
	ret = s3b_resp_feed(&c->resp, buf->base, (size_t)nread);
	if (ret < 0)
		conn_fail(c, "bad-response");
	else if (ret == 1)
		response_done(c);
}

static void on_write(uv_write_t *w, int status)
{
	struct s3b_conn *c = w->data;
	bool next = c->next_after_write;

	c->writing = c->next_after_write = false;
	if (status < 0 && status != UV_ECANCELED && c->busy)
		conn_fail(c, uv_err_name(status));
	else if (next && status == 0 && c->open && !c->closing)
		conn_issue(c);
}

static void on_connect(uv_connect_t *cr, int status)
{
	struct s3b_conn *c = cr->data;

	if (status == UV_ECANCELED)
		return;
	if (status < 0) {
		conn_fail(c, uv_err_name(status));
		return;
	}
	c->connecting = false;
	c->open = true;
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	conn_issue(c);
}

static void conn_connect(struct s3b_conn *c)
{
	int ret;

	if (c->open || c->connecting || c->closing)
		return;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	c->creq.data = c;
	c->connecting = true;
	ret = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&c->t->addr,
			     on_connect);
	if (ret < 0) {
		c->connecting = false;
		c->open = true;		/* the handle is initialized: close it */
		if (cur)
			err_add(cur, "conn:connect");
		conn_close(c);
	}
}

static enum s3b_op pick_mixed(uint64_t i)
{
	unsigned r = (unsigned)(s3b_mix64(i ^ 0x6d69786564ULL) % 100), acc = 0;

	for (int op = 0; op < 5; op++) {
		acc += O.mix[op];
		if (r < acc)
			return (enum s3b_op)op;
	}
	return OP_GET;
}

/* Hands the connection its next operation of the phase, or lets it idle. */
static void conn_issue(struct s3b_conn *c)
{
	struct s3b_phase *p = cur;
	struct s3b_target *t = c->t;
	char key[256], path[512], query[160];
	const char *method = "GET", *q = NULL;
	const uint8_t *body = NULL, *expect = NULL;
	uint64_t i, len = 0;
	uv_buf_t bufs[2];
	int n;

	if (!p || p->t != t || !c->open || c->busy)
		return;
	if (c->writing) {
		c->next_after_write = true;	/* on_write issues it */
		return;
	}
	if (p->stopping || interrupted || p->next >= p->limit ||
	    (p->deadline && uv_hrtime() >= p->deadline)) {
		p->stopping = true;
		phase_check_done();
		return;
	}
	i = p->next++;
	c->op = p->op == OP_NONE ? pick_mixed(i) : p->op;
	if ((c->op == OP_GET || c->op == OP_HEAD || c->op == OP_DELETE) && !t->nkeys)
		c->op = OP_PUT;			/* nothing written yet: write */
	switch (c->op) {
	case OP_PUT:
		/* put: keys 0..; mixed: new keys after the put phase's */
		c->key = p->op == OP_PUT ? i : t->nkeys + t->extra_keys++;
		method = "PUT";
		break;
	case OP_GET:
	case OP_HEAD:
		c->key = p->op == OP_NONE ? s3b_mix64(i) % t->nkeys : i % t->nkeys;
		method = c->op == OP_GET ? "GET" : "HEAD";
		break;
	case OP_DELETE:
		c->key = i;
		method = "DELETE";
		break;
	case OP_LIST:
		snprintf(query, sizeof(query), "list-type=2&max-keys=1000&prefix=%s%04x%%2F",
			 O.key_prefix, (unsigned)(i % O.prefixes));
		q = query;
		break;
	default:
		break;
	}
	c->size = 0;
	c->verify = false;
	if (c->op == OP_LIST) {
		snprintf(path, sizeof(path), "/%s", t->bucket);
	} else {
		key_name(key, sizeof(key), c->key);
		snprintf(path, sizeof(path), "/%s/%s", t->bucket, key);
		c->size = s3b_sizes_pick(&O.sizes, key);
		if (c->op == OP_PUT) {
			body = s3b_pool_slice(&pool, key, O.version, c->size);
			len = c->size;
		} else if (c->op == OP_GET && O.verify) {
			expect = s3b_pool_slice(&pool, key, O.version, c->size);
			c->verify = true;
		}
	}
	n = build_request(c, method, path, q, len, body);
	if (n < 0) {
		err_add(p, "client:request-too-long");
		p->stopping = true;
		phase_check_done();
		return;
	}
	s3b_resp_init(&c->resp, c->op == OP_HEAD, expect, c->size);
	c->busy = true;
	p->busy++;
	c->start = uv_hrtime();
	bufs[0] = uv_buf_init(c->hdr, (unsigned)n);
	/* The pool slice goes out as is: libuv only reads it. */
	bufs[1] = uv_buf_init((char *)(uintptr_t)body, (unsigned)len);
	c->wreq.data = c;
	c->writing = true;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, len ? 2 : 1, on_write) < 0) {
		c->writing = false;
		conn_fail(c, "write");
	}
}

/* --------------------------------------------------------------- phases */

static void phase_check_done(void)
{
	if (cur && cur->busy == 0 && (cur->stopping || interrupted))
		uv_stop(loop);
}

static void on_tick(uv_timer_t *tm)
{
	struct s3b_phase *p = cur;
	uint64_t now = uv_hrtime();
	double el;

	(void)tm;
	if (!p)
		return;
	if (interrupted || (p->deadline && now >= p->deadline))
		p->stopping = true;
	/* A request over --timeout: its connection is dropped, the op an error. */
	for (unsigned i = 0; i < p->t->nconns; i++) {
		struct s3b_conn *c = &p->t->conns[i];

		if (c->busy && (double)(now - c->start) / 1e9 > O.timeout_s)
			conn_fail(c, "timeout");
	}
	if (O.progress_s > 0 && (double)(now - p->last_report) / 1e9 >= O.progress_s) {
		el = (double)(now - p->t0) / 1e9;
		fprintf(stderr, "s3 %s[%s]: %.1f s, %" PRIu64 " ops, %.0f ops/s now, %.1f MB/s avg, %" PRIu64 " errors\n",
			p->name, p->t->name, el, p->ops,
			(double)(p->ops - p->last_ops) / ((double)(now - p->last_report) / 1e9),
			(double)p->bytes / el / 1e6, p->errors);
		p->last_ops = p->ops;
		p->last_report = now;
	}
	phase_check_done();
}

static void on_sigint(uv_signal_t *s, int sig)
{
	(void)sig;
	if (interrupted) {
		fprintf(stderr, "strata-bench s3: second interrupt, exiting\n");
		exit(130);
	}
	interrupted = true;
	fprintf(stderr, "strata-bench s3: interrupted, finishing requests in flight and reporting\n");
	(void)s;
	phase_check_done();
}

static json_t *phase_json(struct s3b_phase *p, double secs)
{
	json_t *j = bench_phase_new("s3", p->name);
	json_t *par = bench_phase_params(j), *res = bench_phase_results(j), *e;
	double cpu = bench_cpu_seconds() - p->cpu0;

	json_object_set_new(par, "target", json_string(p->t->name));
	json_object_set_new(par, "endpoint", json_string(p->t->url));
	json_object_set_new(par, "bucket", json_string(p->t->bucket));
	json_object_set_new(par, "sizes", json_string(O.sizes.spec));
	json_object_set_new(par, "size_mean", json_real(O.sizes.mean));
	json_object_set_new(par, "concurrency", json_integer(O.conc));
	json_object_set_new(par, "duration_s", json_real(O.duration));
	json_object_set_new(par, "count", json_integer((json_int_t)O.count));
	json_object_set_new(par, "prefixes", json_integer(O.prefixes));
	json_object_set_new(par, "verify", json_boolean(O.verify));
	json_object_set_new(par, "run_id", json_sprintf("%08" PRIx64, O.run));
	json_object_set_new(par, "payload", json_string(O.signed_payload ? "signed" : "UNSIGNED-PAYLOAD"));
	bench_rates_to_json(res, p->ops, p->bytes, secs);
	for (int i = 0; i < 5; i++)
		if (p->op == OP_NONE && p->ops_by[i])
			json_object_set_new(res, op_names[i], json_integer((json_int_t)p->ops_by[i]));
	bench_hist_to_json(&p->hist, res);
	json_object_set_new(res, "errors", json_integer((json_int_t)p->errors));
	e = json_object();
	for (unsigned i = 0; i < p->nerrs; i++)
		json_object_set_new(e, p->errs[i].name, json_integer((json_int_t)p->errs[i].n));
	json_object_set_new(res, "errors_by_type", e);
	if (O.verify)
		json_object_set_new(res, "verify",
				    json_string(p->verify_failures ? "failed" :
						p->verified_bytes ? "passed" : "none"));
	json_object_set_new(res, "verified_bytes", json_integer((json_int_t)p->verified_bytes));
	json_object_set_new(res, "client_cpu_s", json_real(cpu));
	json_object_set_new(res, "client_cpu_pct", json_real(secs > 0 ? 100.0 * cpu / secs : 0));
	if (interrupted)
		json_object_set_new(res, "interrupted", json_true());
	return j;
}

/* Runs one phase on t; returns its JSON (not yet emitted). */
static json_t *phase_run(struct s3b_target *t, const char *name, enum s3b_op op)
{
	struct s3b_phase *p = calloc(1, sizeof(*p));
	double secs;
	json_t *j;

	if (!p)
		return NULL;
	p->name = name;
	p->op = op;
	p->t = t;
	p->limit = O.count ? O.count : UINT64_MAX;
	/* Each key written, once; like every phase, at most --duration (a
	 * slow store's deletes must not stretch a timed suite). */
	if (op == OP_DELETE && p->limit > t->nkeys)
		p->limit = t->nkeys;
	p->cpu0 = bench_cpu_seconds();
	p->t0 = p->last_report = uv_hrtime();
	if (!O.count)
		p->deadline = p->t0 + (uint64_t)(O.duration * 1e9);
	cur = p;
	for (unsigned i = 0; i < t->nconns; i++) {
		if (t->conns[i].open)
			conn_issue(&t->conns[i]);
		else
			conn_connect(&t->conns[i]);
	}
	phase_check_done();
	if (!(p->busy == 0 && (p->stopping || interrupted)))
		uv_run(loop, UV_RUN_DEFAULT);
	secs = (double)(uv_hrtime() - p->t0) / 1e9;
	cur = NULL;
	if (op == OP_PUT)
		t->nkeys = p->next;
	if (op == OP_DELETE)
		t->nkeys = 0;
	j = phase_json(p, secs);
	bench_hist_free(&p->hist);
	free(p);
	return j;
}

static double res_num(json_t *j, const char *k)
{
	return json_number_value(json_object_get(bench_phase_results(j), k));
}

static void print_line(json_t *j)
{
	json_t *r = bench_phase_results(j);
	const char *v = json_string_value(json_object_get(r, "verify"));

	fprintf(stderr, "%-6s [%s] %8.0f ops/s %9.2f MB/s  p50 %8.0f us  p99 %8.0f us  "
		"p99.9 %8.0f us  max %8.0f us  errors %" JSON_INTEGER_FORMAT "  cpu %.0f%%%s%s\n",
		json_string_value(json_object_get(j, "phase")),
		json_string_value(json_object_get(bench_phase_params(j), "target")),
		res_num(j, "ops_per_s"), res_num(j, "mb_per_s"), res_num(j, "p50_us"),
		res_num(j, "p99_us"), res_num(j, "p999_us"), res_num(j, "max_us"),
		json_integer_value(json_object_get(r, "errors")), res_num(j, "client_cpu_pct"),
		v ? "  verify " : "", v ? v : "");
}

/* Ratios of A to B for one phase, as a phase object of its own. */
static json_t *compare_json(json_t *a, json_t *b)
{
	static const char *const keys[] = { "ops_per_s", "mb_per_s", "p50_us", "p99_us", "p999_us" };
	json_t *j = bench_phase_new("s3", json_string_value(json_object_get(a, "phase")));
	json_t *res = bench_phase_results(j);

	json_object_set_new(bench_phase_params(j), "compare", json_pack("[s,s]",
		json_string_value(json_object_get(bench_phase_params(a), "endpoint")),
		json_string_value(json_object_get(bench_phase_params(b), "endpoint"))));
	json_object_set_new(bench_phase_params(j), "sizes", json_string(O.sizes.spec));
	json_object_set_new(bench_phase_params(j), "concurrency", json_integer(O.conc));
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char k[32];
		double x = res_num(a, keys[i]), y = res_num(b, keys[i]);

		snprintf(k, sizeof(k), "ratio_%s", keys[i]);
		json_object_set_new(res, k, y > 0 ? json_real(x / y) : json_null());
	}
	fprintf(stderr, "%-6s a/b: ops/s x%.2f  p50 x%.2f  p99 x%.2f\n",
		json_string_value(json_object_get(a, "phase")),
		res_num(j, "ratio_ops_per_s"), res_num(j, "ratio_p50_us"), res_num(j, "ratio_p99_us"));
	return j;
}

/* Synchronous-looking request outside a phase (bucket create): one
 * connection, one PUT, its status. */
static int simple_put_bucket(struct s3b_target *t)
{
	struct s3b_phase *p = calloc(1, sizeof(*p));
	struct s3b_conn *c = &t->conns[0];
	int ret = 0;

	if (!p)
		return -ENOMEM;
	/* A 1-op phase of its own: PUT /bucket. */
	p->name = "create-bucket";
	p->op = OP_PUT;
	p->t = t;
	p->limit = 0;		/* conn_issue hands out nothing: built below */
	p->stopping = true;	/* one try: no reconnecting */
	cur = p;
	conn_connect(c);
	uv_run(loop, UV_RUN_DEFAULT);	/* until connected and idle: stops in issue */
	if (c->open) {
		char path[300];
		uv_buf_t b;
		int n;

		snprintf(path, sizeof(path), "/%s", t->bucket);
		n = build_request(c, "PUT", path, NULL, 0, NULL);
		s3b_resp_init(&c->resp, false, NULL, 0);
		c->op = OP_PUT;
		c->verify = false;
		c->size = 0;
		c->busy = true;
		c->start = uv_hrtime();
		p->busy = 1;
		p->stopping = true;
		b = uv_buf_init(c->hdr, (unsigned)n);
		c->wreq.data = c;
		c->writing = true;
		if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0)
			c->writing = false;
		uv_run(loop, UV_RUN_DEFAULT);
		if (p->errors && !(p->nerrs && strstr(p->errs[0].name, "BucketAlreadyOwnedByYou"))) {
			fprintf(stderr, "strata-bench s3: %s: create bucket %s: %s\n", t->url,
				t->bucket, p->errs[0].name);
			ret = -EIO;
		}
	} else {
		fprintf(stderr, "strata-bench s3: %s: cannot connect (%s)\n", t->url,
			p->nerrs ? p->errs[0].name : "?");
		ret = -ECONNREFUSED;
	}
	cur = NULL;
	bench_hist_free(&p->hist);
	free(p);
	return ret;
}

/* ---------------------------------------------------------------- setup */

static int target_init(struct s3b_target *t, const char *name, const char *url)
{
	char host[256];
	unsigned port = 80;
	const char *h = url, *end;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	char portstr[8];

	t->name = name;
	if (!strncmp(h, "http://", 7))
		h += 7;
	else if (strstr(h, "://")) {
		fprintf(stderr, "strata-bench s3: %s: only http:// endpoints\n", url);
		return -EINVAL;
	}
	end = h + strcspn(h, "/");
	snprintf(t->host, sizeof(t->host), "%.*s", (int)(end - h), h);
	if (t->host[0] == '[') {
		char *rb = strchr(t->host, ']');

		if (!rb)
			return -EINVAL;
		snprintf(host, sizeof(host), "%.*s", (int)(rb - t->host - 1), t->host + 1);
		if (rb[1] == ':')
			port = (unsigned)atoi(rb + 2);
	} else {
		char *colon = strchr(t->host, ':');

		snprintf(host, sizeof(host), "%.*s",
			 (int)(colon ? (size_t)(colon - t->host) : strlen(t->host)), t->host);
		if (colon)
			port = (unsigned)atoi(colon + 1);
	}
	snprintf(portstr, sizeof(portstr), "%u", port);
	if (getaddrinfo(host, portstr, &hints, &ai) || !ai) {
		fprintf(stderr, "strata-bench s3: %s: cannot resolve %s\n", url, host);
		return -EINVAL;
	}
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	t->url = strdup(url);
	t->nconns = O.conc;
	t->conns = calloc(O.conc, sizeof(*t->conns));
	if (!t->url || !t->conns)
		return -ENOMEM;
	for (unsigned i = 0; i < O.conc; i++) {
		t->conns[i].t = t;
		t->conns[i].rbuf = malloc(S3B_RBUF);
		if (!t->conns[i].rbuf)
			return -ENOMEM;
	}
	return 0;
}

/* Closes t's connections; their close callbacks run on the next uv_run. */
static void target_close(struct s3b_target *t)
{
	for (unsigned i = 0; t->conns && i < t->nconns; i++)
		conn_close(&t->conns[i]);
}

/* After every target is closed and the loop has run the callbacks. */
static void target_free(struct s3b_target *t)
{
	for (unsigned i = 0; t->conns && i < t->nconns; i++)
		free(t->conns[i].rbuf);
	free(t->conns);
	free(t->url);
	memset(t->key, 0, sizeof(t->key));
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: strata-bench s3 --endpoint URL --access-key K --secret-key S [options]\n"
"  --region R            SigV4 region (us-east-1)\n"
"  --bucket B            bucket, created if missing (strata-bench)\n"
"  --phases LIST         put,get,head,list,mixed,delete (that order by default)\n"
"  --size SIZE           fixed object size (4K, 1M, 16MiB)\n"
"  --sizes DIST          'photo' (4 KiB..4 MiB mix) or '4K:50,64K:30,1M:15,4M:5'\n"
"  --concurrency N       connections, one request in flight each (16)\n"
"  --duration S          seconds per phase (10), or\n"
"  --count N             operations per phase (delete: at most the keys written)\n"
"  --prefixes N          spread keys over N prefixes (16)\n"
"  --key-prefix P        key names start with P (bench/)\n"
"  --mix P,G,H,D,L       mixed phase: percent put,get,head,delete,list (20,60,15,0,5)\n"
"  --verify              check every byte of every GET (content from key+version)\n"
"  --signed-payload      sign the body's SHA-256 (default UNSIGNED-PAYLOAD)\n"
"  --timeout S           a request slower than S seconds is an error (60)\n"
"  --progress S          progress line on stderr every S seconds (2; 0 = none)\n"
"  --compare URL2        run every phase on URL2 too, alternating; print ratios\n"
"  --access-key2 K --secret-key2 S --region2 R --bucket2 B   URL2's (default: A's)\n"
"  --out FILE            append the JSON phases to FILE (default stdout)\n"
"  --run-id HEX          key names' run id (default: new each run), to read or\n"
"                        delete another run's keys (with --keys)\n"
"  --keys N              keys 0..N-1 of --run-id exist already (no put phase)\n"
"  --content-version N   content version PUT writes and GET expects (1)\n"
"Sizes are binary (4K = 4096). MB/s is 10^6 bytes, MiB/s 2^20. Ctrl-C reports the\n"
"partial phase and stops.\n");
}

int bench_s3_main(int argc, char **argv)
{
	enum { O_EP = 256, O_AK, O_SK, O_REG, O_BUCKET, O_PHASES, O_SIZE, O_SIZES,
	       O_CONC, O_DUR, O_COUNT, O_PREF, O_KPREF, O_MIX, O_VERIFY, O_SIGNED,
	       O_TIMEOUT, O_PROGRESS, O_CMP, O_AK2, O_SK2, O_REG2, O_BUCKET2, O_OUT,
	       O_RUN, O_VERSION, O_KEYS };
	static const struct option opts[] = {
		{ "endpoint", 1, NULL, O_EP }, { "access-key", 1, NULL, O_AK },
		{ "secret-key", 1, NULL, O_SK }, { "region", 1, NULL, O_REG },
		{ "bucket", 1, NULL, O_BUCKET }, { "phases", 1, NULL, O_PHASES },
		{ "size", 1, NULL, O_SIZE }, { "sizes", 1, NULL, O_SIZES },
		{ "concurrency", 1, NULL, O_CONC }, { "duration", 1, NULL, O_DUR },
		{ "count", 1, NULL, O_COUNT }, { "prefixes", 1, NULL, O_PREF },
		{ "key-prefix", 1, NULL, O_KPREF }, { "mix", 1, NULL, O_MIX },
		{ "verify", 0, NULL, O_VERIFY }, { "signed-payload", 0, NULL, O_SIGNED },
		{ "timeout", 1, NULL, O_TIMEOUT }, { "progress", 1, NULL, O_PROGRESS },
		{ "compare", 1, NULL, O_CMP }, { "access-key2", 1, NULL, O_AK2 },
		{ "secret-key2", 1, NULL, O_SK2 }, { "region2", 1, NULL, O_REG2 },
		{ "bucket2", 1, NULL, O_BUCKET2 }, { "out", 1, NULL, O_OUT },
		{ "run-id", 1, NULL, O_RUN }, { "content-version", 1, NULL, O_VERSION },
		{ "keys", 1, NULL, O_KEYS }, { "help", 0, NULL, 'h' }, { 0 },
	};
	struct s3b_target ta = { 0 }, tb = { 0 };
	const char *ep = NULL, *ep2 = NULL, *sizes = "4K";
	char *ak = NULL, *sk = NULL, *region = "us-east-1", *bucket = "strata-bench";
	char *ak2 = NULL, *sk2 = NULL, *region2 = NULL, *bucket2 = NULL;
	uv_timer_t tick;
	uv_signal_t sig;
	int opt, ret = 1;
	bool any_error = false;

	memset(&O, 0, sizeof(O));
	O.conc = 16;
	O.duration = 10;
	O.prefixes = 16;
	O.key_prefix = "bench/";
	O.timeout_s = 60;
	O.progress_s = 2;
	O.run = ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
	O.run &= 0xffffffffu;
	O.version = 1;
	O.mix[OP_PUT] = 20, O.mix[OP_GET] = 60, O.mix[OP_HEAD] = 15, O.mix[OP_LIST] = 5;
	O.phases = "put,get,head,list,mixed,delete";
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case O_EP: ep = optarg; break;
		case O_AK: ak = optarg; break;
		case O_SK: sk = optarg; break;
		case O_REG: region = optarg; break;
		case O_BUCKET: bucket = optarg; break;
		case O_PHASES: O.phases = optarg; break;
		case O_SIZE: case O_SIZES: sizes = optarg; break;
		case O_CONC: O.conc = (unsigned)strtoul(optarg, NULL, 10); break;
		case O_DUR: O.duration = strtod(optarg, NULL); break;
		case O_COUNT: O.count = strtoull(optarg, NULL, 10); break;
		case O_PREF: O.prefixes = (unsigned)strtoul(optarg, NULL, 10); break;
		case O_KPREF: O.key_prefix = optarg; break;
		case O_MIX:
			if (sscanf(optarg, "%u,%u,%u,%u,%u", &O.mix[0], &O.mix[1], &O.mix[2],
				   &O.mix[3], &O.mix[4]) != 5 ||
			    O.mix[0] + O.mix[1] + O.mix[2] + O.mix[3] + O.mix[4] != 100) {
				fprintf(stderr, "strata-bench s3: --mix: five percentages summing to 100\n");
				return 2;
			}
			break;
		case O_VERIFY: O.verify = true; break;
		case O_SIGNED: O.signed_payload = true; break;
		case O_TIMEOUT: O.timeout_s = strtod(optarg, NULL); break;
		case O_PROGRESS: O.progress_s = strtod(optarg, NULL); break;
		case O_CMP: ep2 = optarg; break;
		case O_AK2: ak2 = optarg; break;
		case O_SK2: sk2 = optarg; break;
		case O_REG2: region2 = optarg; break;
		case O_BUCKET2: bucket2 = optarg; break;
		case O_OUT:
			if (bench_set_output(optarg) < 0) {
				fprintf(stderr, "strata-bench s3: cannot open %s\n", optarg);
				return 2;
			}
			break;
		case O_RUN: O.run = strtoull(optarg, NULL, 16) & 0xffffffffu; break;
		case O_VERSION: O.version = strtoull(optarg, NULL, 10); break;
		case O_KEYS: O.keys = strtoull(optarg, NULL, 10); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!ep || !ak || !sk || optind != argc || O.conc == 0 || O.conc > 4096 ||
	    O.prefixes == 0 || (O.duration <= 0 && !O.count) || O.timeout_s <= 0) {
		usage(stderr);
		return 2;
	}
	if (s3b_sizes_parse(&O.sizes, sizes) < 0) {
		fprintf(stderr, "strata-bench s3: bad --sizes '%s'\n", sizes);
		return 2;
	}
	if (s3b_pool_init(&pool, O.sizes.max) < 0) {
		fprintf(stderr, "strata-bench s3: no memory for the data pool\n");
		return 1;
	}
	if (strlen(O.key_prefix) > 128 || strpbrk(O.key_prefix, "?#% ")) {
		fprintf(stderr, "strata-bench s3: --key-prefix: up to 128 URL-safe characters\n");
		goto out_pool;
	}

	loop = uv_default_loop();
	ta.access_key = ak, ta.secret = sk, ta.region = region, ta.bucket = bucket;
	tb.access_key = ak2 ? ak2 : ak, tb.secret = sk2 ? sk2 : sk;
	tb.region = region2 ? region2 : region, tb.bucket = bucket2 ? bucket2 : bucket;
	if (target_init(&ta, "a", ep) < 0 || (ep2 && target_init(&tb, "b", ep2) < 0))
		goto out_targets;
	uv_timer_init(loop, &tick);
	uv_signal_init(loop, &sig);
	uv_signal_start(&sig, on_sigint, SIGINT);
	uv_unref((uv_handle_t *)&sig);
	uv_timer_start(&tick, on_tick, 250, 250);
	uv_unref((uv_handle_t *)&tick);

	ta.nkeys = tb.nkeys = O.keys;
	if (simple_put_bucket(&ta) < 0 || (ep2 && simple_put_bucket(&tb) < 0))
		goto out_handles;

	{
		char *list = strdup(O.phases), *save = NULL;

		for (char *ph = strtok_r(list, ",", &save); ph && !interrupted;
		     ph = strtok_r(NULL, ",", &save)) {
			enum s3b_op op = OP_NONE;
			json_t *ja, *jb = NULL;
			int k;

			for (k = 0; k < 5; k++)
				if (!strcmp(ph, op_names[k]))
					op = (enum s3b_op)k;
			if (op == OP_NONE && strcmp(ph, "mixed")) {
				fprintf(stderr, "strata-bench s3: unknown phase '%s'\n", ph);
				any_error = true;
				break;
			}
			ja = phase_run(&ta, ph, op);
			if (ep2 && !interrupted)
				jb = phase_run(&tb, ph, op);
			print_line(ja);
			if (res_num(ja, "errors") > 0)
				any_error = true;
			if (jb) {
				print_line(jb);
				if (res_num(jb, "errors") > 0)
					any_error = true;
				bench_phase_emit(compare_json(ja, jb));
			}
			bench_phase_emit(ja);
			if (jb)
				bench_phase_emit(jb);
		}
		free(list);
	}
	ret = interrupted ? 130 : any_error ? 3 : 0;

out_handles:
	uv_close((uv_handle_t *)&tick, NULL);
	uv_close((uv_handle_t *)&sig, NULL);
out_targets:
	/* Both targets' connections close before the loop runs: an open idle
	 * one would keep it waiting for the server's keep-alive timeout. */
	target_close(&ta);
	target_close(&tb);
	uv_run(loop, UV_RUN_DEFAULT);
	target_free(&ta);
	target_free(&tb);
	uv_loop_close(loop);
out_pool:
	s3b_pool_free(&pool);
	return ret;
}
