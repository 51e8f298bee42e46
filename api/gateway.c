/* gateway.c: the S3 daemon's request handling. Every request: route
 * (path-style or virtual host), verify SigV4, find the bucket record, then
 * the operation on gw_store.c's fragment sets. Data model: docs/gateway.md.
 *
 * Object records (this implementation's choice within that design):
 *  - the *head* is always 3 replicas on the rep3 ring at name
 *    SHA-256("/owner/bucket/key"), fragment 0, timestamp = version; it holds
 *    the metadata (gw_meta.c) and, for objects up to small_max, the data;
 *  - larger objects are EC segments on the EC ring, every segment (head one
 *    included) keyed by SHA-256(path, version, segment), so a read can never
 *    mix two versions; the head replicas are written only after every
 *    fragment of every segment is durable, after the body was verified.
 */
#include "gateway.h"
#include "internal.h"

#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Errors the S3 building blocks do not know. */
enum {
	GWE_BASE = -3000,
	GWE_NO_SUCH_BUCKET = GWE_BASE,
	GWE_NO_SUCH_KEY,
	GWE_BUCKET_EXISTS,
	GWE_BUCKET_OWNED,
	GWE_INVALID_BUCKET,
	GWE_NOT_IMPLEMENTED,
	GWE_INVALID_RANGE,
	GWE_PRECONDITION,
	GWE_SLOW_DOWN,
	GWE_TOO_LARGE,
	GWE_BAD_REQUEST,
	GWE_METHOD,
	GWE_NOT_EMPTY,
	GWE_INVALID_ARGUMENT,
	GWE_CORS_NO_ORIGIN,
	GWE_CORS_FORBIDDEN,
	GWE_ACL_NOT_SUPPORTED,
	GWE_SSE_NOT_IMPLEMENTED,
	GWE_BUCKET_ACL_OWNERSHIP,
	GWE_KEY_TOO_LONG,
	GWE_NO_SUCH_POLICY,
	GWE_NO_SUCH_POLICY_LOC,
	GWE_POLICY_CONFLICT,
	GWE_POLICY_UNAVAILABLE,
};

static const struct {
	int err, status;
	const char *code, *msg;
} gw_errs[] = {
	{ GWE_NO_SUCH_BUCKET, 404, "NoSuchBucket", "The specified bucket does not exist" },
	{ GWE_NO_SUCH_KEY, 404, "NoSuchKey", "The specified key does not exist." },
	{ GWE_BUCKET_EXISTS, 409, "BucketAlreadyExists", "The requested bucket name is not available." },
	{ GWE_BUCKET_OWNED, 409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it." },
	{ GWE_INVALID_BUCKET, 400, "InvalidBucketName", "The specified bucket is not valid." },
	{ GWE_NOT_IMPLEMENTED, 501, "NotImplemented", "A header or operation you provided implies functionality that is not implemented" },
	{ GWE_INVALID_RANGE, 416, "InvalidRange", "The requested range is not satisfiable" },
	{ GWE_PRECONDITION, 412, "PreconditionFailed", "At least one of the preconditions you specified did not hold" },
	{ GWE_SLOW_DOWN, 503, "SlowDown", "Not enough healthy storage devices; please retry" },
	{ GWE_TOO_LARGE, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size." },
	{ GWE_BAD_REQUEST, 400, "InvalidRequest", "Invalid request" },
	{ GWE_METHOD, 405, "MethodNotAllowed", "The specified method is not allowed against this resource." },
	{ GWE_NOT_EMPTY, 409, "BucketNotEmpty", "The bucket you tried to delete is not empty" },
	{ GWE_INVALID_ARGUMENT, 400, "InvalidArgument", "Invalid argument" },
	/* OPTIONS (CORS preflight) as S3 answers it for a bucket without a
	 * CORS configuration, which every bucket is. */
	{ GWE_SSE_NOT_IMPLEMENTED, 501, "NotImplemented", "Server-side encryption is not implemented: objects are stored as sent, so a request for it is refused rather than stored unencrypted" },
	{ GWE_CORS_NO_ORIGIN, 400, "BadRequest", "Insufficient information. Origin request header needed." },
	{ GWE_CORS_FORBIDDEN, 403, "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket." },
	/* ACLs as S3 with Object Ownership "bucket owner enforced" (its
	 * default since 2023): the owner has FULL_CONTROL, nothing else. */
	{ GWE_ACL_NOT_SUPPORTED, 400, "AccessControlListNotSupported", "The bucket does not allow ACLs" },
	{ GWE_KEY_TOO_LONG, 400, "KeyTooLongError", "Your key is too long" },
	{ GWE_BUCKET_ACL_OWNERSHIP, 400, "InvalidBucketAclWithObjectOwnership", "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting" },
	/* Storage policies (docs/gateway.md, "Storage policies"). */
	{ GWE_NO_SUCH_POLICY, 400, "InvalidArgument", "x-strata-storage-policy names no storage policy of this cluster" },
	{ GWE_NO_SUCH_POLICY_LOC, 400, "InvalidLocationConstraint", "The storage policy in the LocationConstraint (REGION:POLICY) is not one of this cluster's" },
	{ GWE_POLICY_CONFLICT, 400, "InvalidArgument", "x-strata-storage-policy and the LocationConstraint name different storage policies" },
	{ GWE_POLICY_UNAVAILABLE, 503, "ServiceUnavailable", "The data's storage policy has no ring on this gateway" },
};

static void gw_err_info(int err, int *status, const char **code, const char **msg)
{
	for (size_t i = 0; i < ARRAY_SIZE(gw_errs); i++)
		if (gw_errs[i].err == err) {
			*status = gw_errs[i].status;
			*code = gw_errs[i].code;
			*msg = gw_errs[i].msg;
			return;
		}
	if (err == -EHOSTUNREACH || err == -ETIMEDOUT || err == -EIO) {
		gw_err_info(GWE_SLOW_DOWN, status, code, msg);
		return;
	}
	if (gw_mpu_err_info(err, status, code, msg) ||
	    gw_tier_err_info(err, status, code, msg))
		return;
	*status = s3_err_http_status(err);
	*code = s3_err_code(err);
	*msg = s3_err_message(err);
}

/* ---------------------------------------------------------------- config */

void gw_config_init(struct gw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:8480";
	cfg->region = "us-east-1";
	cfg->domain = "localhost";
	cfg->policy = "ec42";
	cfg->small_max = 64 << 10;
	cfg->unit = 1 << 20;
	cfg->read_deadline_ms = 1000;
	cfg->write_deadline_ms = 10000;
	cfg->down_ms = 2000;
	cfg->node_conns = 2;
	cfg->hung_ms = 3000;
	cfg->grace_ms = 10000;
	cfg->max_object = 5ull << 30;
	cfg->shard_max = GW_LIST_DEFAULT_SHARD_MAX;
	cfg->admin_user = "default";
	cfg->lifecycle_day_s = 86400;
	cfg->tier_pass_rate = 1000;
	cfg->tier_pass_check_ms = 10000;
}

const char gw_config_help[] =
"  --listen HOST:PORT       S3 endpoint (default 127.0.0.1:8480; port 0 = any)\n"
"  --rings DIR              folder with rep3.ring and the EC rings, one per\n"
"                           storage policy: NAME.ring (required)\n"
"  --credentials FILE       AWS shared-credentials file: every profile is a user (required)\n"
"  --region NAME            region in signatures (default us-east-1)\n"
"  --domain NAME            virtual-host style: BUCKET.NAME (default localhost)\n"
"  --policy NAME            storage policy of buckets created without one\n"
"                           (x-strata-storage-policy; default ec42)\n"
"  --small-max N            objects up to N bytes are 3 replicas (default 64K)\n"
"  --unit N                 EC bytes per fragment per segment (default 1M)\n"
"  --read-deadline-ms N     fragment read deadline before parity (default 1000)\n"
"  --write-deadline-ms N    fragment write deadline before a handoff (default 10000)\n"
"  --down-ms N              a failed node is skipped this long (default 2000)\n"
"  --node-conns N           connections per storage node for reads, and as many\n"
"                           for writes: 1-4 (default 2)\n"
"  --hung-ms N              a node silent this long while a read waits is hung:\n"
"                           marked down (default 3000)\n"
"  --grace-ms N             SIGTERM: in-flight requests get this long (default 10000)\n"
"  --max-object N           largest object (default 5G)\n"
"  --shard-max N            listing entries per shard before a split (default 1000000)\n"
"  --split-wait-ms N        shard split wait for other gateways' map caches\n"
"                           (default 2000 + write deadline)\n"
"  --admin-user NAME        credentials profile allowed GET /_strata/tiers (default default)\n"
"  --lifecycle-day-seconds N  length of a lifecycle rule's day (default 86400;\n"
"                           tests shorten it)\n"
"  --tier-pass-rate N       objects/s a policy pass (lifecycle or pin change\n"
"                           reaching stored objects) sets (default 1000)\n"
"  --tier-pass-check-ms N   how often unfinished passes (another gateway's,\n"
"                           a crash) are looked for (default 10000)\n";

int gw_config_set(struct gw_config *cfg, const char *key, const char *value)
{
	uint64_t v;

	if (!strcmp(key, "listen")) { cfg->listen = value; return 0; }
	if (!strcmp(key, "rings")) { cfg->rings = value; return 0; }
	if (!strcmp(key, "credentials")) { cfg->credentials = value; return 0; }
	if (!strcmp(key, "region")) { cfg->region = value; return 0; }
	if (!strcmp(key, "domain")) { cfg->domain = value; return 0; }
	if (!strcmp(key, "policy")) { cfg->policy = value; return 0; }
	if (!strcmp(key, "admin-user")) { cfg->admin_user = value; return 0; }
	if (strata_parse_size(value, &v) < 0)
		return strstr(gw_config_help, key) ? -EINVAL : -ENOENT;
	if (!strcmp(key, "small-max")) cfg->small_max = v;
	else if (!strcmp(key, "shard-max")) cfg->shard_max = v ? v : 1;
	else if (!strcmp(key, "max-object")) cfg->max_object = v;
	else if (v > UINT32_MAX) return -EINVAL;
	else if (!strcmp(key, "unit")) cfg->unit = (uint32_t)v;
	else if (!strcmp(key, "read-deadline-ms")) cfg->read_deadline_ms = (uint32_t)v;
	else if (!strcmp(key, "write-deadline-ms")) cfg->write_deadline_ms = (uint32_t)v;
	else if (!strcmp(key, "down-ms")) cfg->down_ms = (uint32_t)v;
	else if (!strcmp(key, "hung-ms")) cfg->hung_ms = (uint32_t)v;
	else if (!strcmp(key, "node-conns")) {
		if (v < 1 || v > GW_POOL_MAX_CONNS / 2)
			return -EINVAL;
		cfg->node_conns = (uint32_t)v;
	}
	else if (!strcmp(key, "grace-ms")) cfg->grace_ms = (uint32_t)v;
	else if (!strcmp(key, "split-wait-ms")) cfg->split_wait_ms = (uint32_t)v;
	else if (!strcmp(key, "lifecycle-day-seconds") && v) cfg->lifecycle_day_s = (uint32_t)v;
	else if (!strcmp(key, "tier-pass-rate") && v) cfg->tier_pass_rate = (uint32_t)v;
	else if (!strcmp(key, "tier-pass-check-ms") && v) cfg->tier_pass_check_ms = (uint32_t)v;
	else return -ENOENT;
	return 0;
}

int gw_config_complete(const struct gw_config *cfg)
{
	if (!cfg->rings || !cfg->credentials) {
		log_err("--rings and --credentials are required");
		return -EINVAL;
	}
	if (cfg->unit < (64u << 10) || cfg->unit % GW_EC_ALIGN || cfg->unit > (64u << 20)) {
		log_err("--unit must be a multiple of %u from 64K to 64M", GW_EC_ALIGN);
		return -EINVAL;
	}
	if (cfg->small_max > (1u << 20)) {
		log_err("--small-max is at most 1M (one replicated fragment)");
		return -EINVAL;
	}
	if (!cfg->read_deadline_ms) {
		log_err("--read-deadline-ms must be > 0");
		return -EINVAL;
	}
	return 0;
}

/* --------------------------------------------------------------- gateway */

static struct gw_req *req_get(struct gw_req *r)
{
	r->refs++;
	return r;
}

static void req_put(struct gw_req *r)
{
	if (--r->refs)
		return;
	if (r->dg_init)
		s3_body_digest_free(&r->dg);
	s3_chunked_free(r->chunked);
	s3_buf_free(&r->small);
	s3_buf_free(&r->metabuf);
	gw_meta_free(&r->meta);
	gw_meta_free(&r->gm);
	for (int i = 0; i < 2; i++) {
		gw_buf_free(&r->gw->st, r->seg[i].buf);
		gw_buf_free(&r->gw->st, r->slots[i].buf);
	}
	free(r->inline_buf);
	free(r->h);
	free(r->bucket);
	free(r->key);
	free(r->path);
	memset(&r->auth, 0, sizeof(r->auth));
	gw_mpu_req_free(r);
	gw_tier_req_free(r);
	for (size_t i = 0; i < ARRAY_SIZE(r->pin); i++)
		ring_put(r->pin[i]);
	gw_tagging_req_free(r);
	free(r);
}

static void get_pump(struct gw_req *r);

static void resp_common(struct gw_req *r)
{
	http_resp_header(r->hr, "x-amz-request-id", r->id);
	http_resp_header(r->hr, "Server", "Strata");
}

static void send_error(struct gw_req *r, int err)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;
	const char *code, *msg;
	int status;
	char res[1200];

	if (!r->hr || r->responded)
		return;
	gw_err_info(err, &status, &code, &msg);
	snprintf(res, sizeof(res), "/%s%s%s", r->bucket ? r->bucket : "",
		 r->key ? "/" : "", r->key ? r->key : "");
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "Error", false);
	s3_xml_elem(&x, "Code", code);
	s3_xml_elem(&x, "Message", msg);
	if (r->bucket)
		s3_xml_elem(&x, "BucketName", r->bucket);
	if (r->key)
		s3_xml_elem(&x, "Key", r->key);
	s3_xml_elem(&x, "Resource", res);
	s3_xml_elem(&x, "RequestId", r->id);
	s3_xml_end(&x);
	if (status >= 500 || err == GWE_NOT_IMPLEMENTED)
		log_info("%s %s: %d %s", http_req_method_str(r->hr), res, status, code);
	if (gw_copy_stream_error(r, &b)) {	/* 200 is out: the error is the body */
		s3_buf_free(&b);
		return;
	}
	r->responded = true;
	resp_common(r);
	if (http_req_method(r->hr) == HTTP_HEAD)
		http_resp_simple(r->hr, status, NULL, NULL, 0);
	else
		http_resp_simple(r->hr, status, "application/xml", b.p, b.len);
	s3_buf_free(&b);
}

static void send_empty(struct gw_req *r, int status)
{
	if (!r->hr || r->responded)
		return;
	r->responded = true;
	resp_common(r);
	http_resp_simple(r->hr, status, NULL, NULL, 0);
}

/* -------------------------------------------------------------- routing */

static bool bucket_name_valid(const char *b)
{
	size_t n = strlen(b);
	bool digits_dots = true;

	if (n < 3 || n > 63)
		return false;
	if (!isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];

		if (!(islower((unsigned char)c) || isdigit((unsigned char)c) ||
		      c == '.' || c == '-'))
			return false;
		if (c == '.' && (b[i + 1] == '.' || b[i + 1] == '-' ||
				 (i && b[i - 1] == '-')))
			return false;
		if (!isdigit((unsigned char)c) && c != '.')
			digits_dots = false;
	}
	return !digits_dots;	/* not an IP address */
}

/* Is name a query parameter of q (raw query)? value set when it has one. */
static bool query_has(const char *q, size_t qn, const char *name,
		      const char **value, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *p, *end;

	if (!q)
		return false;
	p = q;
	end = q + qn;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;

		if ((size_t)(e - p) >= nl && !memcmp(p, name, nl) &&
		    (p + nl == e || p[nl] == '=')) {
			if (value) {
				*value = p + nl == e ? p + nl : p + nl + 1;
				*vlen = (size_t)(e - *value);
			}
			return true;
		}
		p = e + 1;
	}
	return false;
}

static const char *const unsupported_sub[] = {
	"acl", "tagging", "versioning", "policy", "cors",
	"lifecycle", "website", "versions", "delete", "logging", "notification",
	"replication", "encryption", "object-lock", "retention", "legal-hold",
	"torrent", "restore", "select", "attributes", "ownershipControls",
	"publicAccessBlock", "accelerate", "requestPayment", "inventory",
	"analytics", "metrics", "intelligent-tiering",
};

static int route(struct gw_req *r)
{
	struct http_req *hr = r->hr;
	size_t plen, qlen, hlen, dlen;
	const char *path = http_req_path(hr, &plen);
	const char *q = http_req_query(hr, &qlen);
	const char *host = http_req_header(hr, "host", &hlen);
	const char *dom = r->gw->cfg.domain;
	char *dec;
	size_t declen;
	enum http_method m = http_req_method(hr);
	char *vbucket = NULL;

	/* Virtual host: BUCKET.domain[:port]. */
	if (host && dom && *dom) {
		const char *colon = memchr(host, ':', hlen);
		size_t hn = colon ? (size_t)(colon - host) : hlen;

		dlen = strlen(dom);
		if (hn > dlen + 1 && host[hn - dlen - 1] == '.' &&
		    !strncasecmp(host + hn - dlen, dom, dlen)) {
			vbucket = s3_strndup(host, hn - dlen - 1);
			if (!vbucket)
				return -ENOMEM;
		}
	}
	dec = malloc(plen + 1);
	if (!dec) {
		free(vbucket);
		return -ENOMEM;
	}
	if (plen == 0 || path[0] != '/' ||
	    http_url_decode(path, plen, dec, &declen, false) < 0) {
		free(dec);
		free(vbucket);
		return GWE_BAD_REQUEST;
	}
	dec[declen] = '\0';
	if (vbucket) {
		r->bucket = vbucket;
		if (declen > 1)
			r->key = strdup(dec + 1);
	} else if (declen > 1) {
		char *slash = strchr(dec + 1, '/');

		if (slash) {
			r->bucket = s3_strndup(dec + 1, (size_t)(slash - dec - 1));
			if (slash[1])
				r->key = strdup(slash + 1);
		} else {
			r->bucket = strdup(dec + 1);
		}
	}
	free(dec);
	if (r->key && strlen(r->key) > S3_MAX_KEY_LEN)
		return GWE_KEY_TOO_LONG;

	if (m == HTTP_OPTIONS) {
		r->op = OP_OPTIONS;
		return 0;
	}
	if (gw_tier_route(r, q, qlen))
		return 0;
	if (r->bucket) {
		int mr = gw_mpu_route(r, q, qlen);

		if (mr)
			return mr < 0 ? mr : 0;
		if (gw_tagging_route(r, q, qlen))
			return 0;
	}
	/* Read-only answers that are true of every bucket here: versioning
	 * never enabled (no Status), no tags (PUT ?tagging stays 501). */
	if (r->bucket && !r->key && m == HTTP_GET &&
	    query_has(q, qlen, "versioning", NULL, NULL)) {
		r->op = OP_BUCKET_VERSIONING;
		return 0;
	}
	if (r->key && m == HTTP_GET && query_has(q, qlen, "attributes", NULL, NULL)) {
		r->op = OP_GET_ATTRIBUTES;
		return 0;
	}
	if (r->bucket && (m == HTTP_GET || m == HTTP_PUT) &&
	    query_has(q, qlen, "acl", NULL, NULL) &&
	    !query_has(q, qlen, "versionId", NULL, NULL)) {
		r->op = m == HTTP_GET ? OP_GET_ACL : OP_PUT_ACL;
		return 0;
	}
	/* ListObjectVersions: the listing, every object as its one version
	 * (gw_list.c); ?versions with any other method stays refused below. */
	if (r->bucket && !r->key && m == HTTP_GET && query_has(q, qlen, "versions", NULL, NULL)) {
		r->op = OP_LIST_OBJECTS;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(unsupported_sub); i++)
		if (query_has(q, qlen, unsupported_sub[i], NULL, NULL)) {
			r->op = OP_UNSUPPORTED;
			if (!strcmp(unsupported_sub[i], "delete") && m == HTTP_POST &&
			    r->bucket && !r->key)
				r->op = OP_DELETE_OBJECTS;
			return 0;
		}
	if (!r->bucket) {
		r->op = m == HTTP_GET ? OP_LIST_BUCKETS : OP_NONE;
	} else if (!r->key) {
		if (m == HTTP_PUT)
			r->op = OP_CREATE_BUCKET;
		else if (m == HTTP_HEAD)
			r->op = OP_HEAD_BUCKET;
		else if (m == HTTP_DELETE)
			r->op = OP_DELETE_BUCKET;
		else if (m == HTTP_GET && query_has(q, qlen, "location", NULL, NULL))
			r->op = OP_BUCKET_LOCATION;
		else if (m == HTTP_GET)
			r->op = OP_LIST_OBJECTS;
		else if (m == HTTP_POST)
			r->op = OP_UNSUPPORTED;
	} else {
		if (m == HTTP_PUT)
			r->op = http_req_header(hr, "x-amz-copy-source", NULL) ?
				OP_COPY_OBJECT : OP_PUT_OBJECT;
		else if (m == HTTP_GET)
			r->op = OP_GET_OBJECT;
		else if (m == HTTP_HEAD)
			r->op = OP_HEAD_OBJECT;
		else if (m == HTTP_DELETE)
			r->op = OP_DELETE_OBJECT;
		else if (m == HTTP_POST)
			r->op = OP_UNSUPPORTED;
	}
	if (r->op == OP_NONE)
		return GWE_METHOD;
	return 0;
}

static int authenticate(struct gw_req *r)
{
	struct http_req *hr = r->hr;
	struct s3_sig_req sr = { 0 };
	uint32_t n = http_req_header_count(hr);
	const char *acct;
	int ret;

	r->h = calloc(n ? n : 1, sizeof(*r->h));
	if (!r->h)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const char *name, *value;

		http_req_header_at(hr, i, &name, &value);
		r->h[i] = (struct s3_header){ name, strlen(name), value, strlen(value) };
	}
	r->nh = n;
	sr.method = http_req_method_str(hr);
	sr.path = http_req_path(hr, &sr.path_len);
	sr.query = http_req_query(hr, &sr.query_len);
	sr.headers = r->h;
	sr.n_headers = n;
	ret = s3_auth_verify(r->gw->auth, &sr, (int64_t)time(NULL), &r->auth);
	if (ret == 1) {
		/* Anonymous: no public ACLs yet, so AccessDenied, but only
		 * once the bucket is known to exist (NoSuchBucket first, as
		 * S3 answers). */
		r->anonymous = true;
		return 0;
	}
	if (ret < 0)
		return ret;
	acct = s3_creds_key_profile(r->gw->creds, r->auth.access_key);
	snprintf(r->account, sizeof(r->account), "%s", acct ? acct : r->auth.access_key);
	return 0;
}

/* ----------------------------------------------------------------- body */

/* Decoded body bytes go to sink; the digest sees them first. */
typedef int (*gw_sink_fn)(struct gw_req *r, const uint8_t *p, size_t n);

static int body_begin(struct gw_req *r)
{
	struct s3_header *h = r->h, *own = NULL;
	size_t nh = r->nh;
	int ret;

	/* CompleteMultipartUpload's x-amz-checksum-* is the object's
	 * checksum (gw_mpu.c), not its XML body's. */
	if (r->op == OP_COMPLETE_MPU) {
		h = own = calloc(r->nh ? r->nh : 1, sizeof(*own));
		if (!own)
			return -ENOMEM;
		nh = 0;
		for (size_t i = 0; i < r->nh; i++)
			if (s3_cksum_alg_from_header(r->h[i].name, r->h[i].name_len) ==
			    S3_CKSUM_NONE)
				own[nh++] = r->h[i];
	}
	ret = s3_body_digest_init(&r->dg, &r->auth, h, nh);
	if (ret < 0)
		goto out_free_own;
	r->dg_init = true;
	if (r->auth.payload >= S3_PAYLOAD_STREAMING) {
		struct s3_chunked_config cc;

		/* cc borrows the header values, not the table */
		ret = s3_chunked_config_init(&cc, &r->auth, h, nh) ?:
		      s3_chunked_new(&cc, &r->chunked);
	}
out_free_own:
	free(own);
	return ret;
}

static int body_feed(struct gw_req *r, const uint8_t *p, size_t n, gw_sink_fn sink)
{
	if (!r->chunked) {
		s3_body_digest_update(&r->dg, p, n);
		r->received += n;
		return sink(r, p, n);
	}
	while (n) {
		size_t used = 0, dlen = 0;
		const uint8_t *d = NULL;
		int ret = s3_chunked_decode(r->chunked, p, n, &used, &d, &dlen);

		if (ret < 0)
			return ret;
		if (dlen) {
			s3_body_digest_update(&r->dg, d, dlen);
			r->received += dlen;
			ret = sink(r, d, dlen);
			if (ret < 0)
				return ret;
		}
		if (ret == 1) {
			r->chunked_done = true;
			return 0;	/* trailing bytes after the body: ignored */
		}
		if (used == 0 && dlen == 0)
			return S3E_CHUNK_MALFORMED;
		p += used;
		n -= used;
	}
	return 0;
}

/* At the body's end: every check passed? Fills the meta's md5/cksum. */
static int body_finish(struct gw_req *r)
{
	enum s3_cksum_alg alg = S3_CKSUM_NONE;
	uint8_t ck[S3_CKSUM_MAX_LEN] = { 0 };
	int ret;

	if (r->chunked) {
		if (!r->chunked_done)
			return S3E_INCOMPLETE_BODY;
	}
	ret = s3_body_digest_final(&r->dg, r->meta.md5, &alg, ck);
	if (ret < 0)
		return ret;
	if (r->chunked) {
		uint8_t tck[S3_CKSUM_MAX_LEN];
		enum s3_cksum_alg talg = s3_chunked_trailer_checksum(r->chunked, tck);

		if (talg != S3_CKSUM_NONE) {
			alg = talg;
			memcpy(ck, tck, sizeof(ck));
		}
	}
	if (r->length >= 0 && r->received != (uint64_t)r->length)
		return S3E_INCOMPLETE_BODY;
	r->meta.cksum_alg = (uint8_t)alg;
	memcpy(r->meta.cksum, ck, sizeof(r->meta.cksum));
	return 0;
}

/* -------------------------------------------------------------- buckets */

void gw_bucket_path(const char *bucket, char *out, size_t cap, size_t *len)
{
	int n = snprintf(out, cap, "/.buckets/%s", bucket);

	*len = (size_t)n;
}

static struct gw_bcache *bcache_find(struct gateway *gw, const char *name)
{
	for (unsigned i = 0; i < GW_BUCKET_CACHE; i++)
		if (!strcmp(gw->bcache[i].name, name) &&
		    gw->bcache[i].expires > strata_now_ns())
			return &gw->bcache[i];
	return NULL;
}

static void bcache_set(struct gateway *gw, const char *name, const char *owner,
		       const char *location, uint32_t policy, uint64_t created)
{
	struct gw_bcache *e = &gw->bcache[gw->seq % GW_BUCKET_CACHE];

	for (unsigned i = 0; i < GW_BUCKET_CACHE; i++)
		if (!strcmp(gw->bcache[i].name, name))
			e = &gw->bcache[i];
	snprintf(e->name, sizeof(e->name), "%s", name);
	snprintf(e->owner, sizeof(e->owner), "%s", owner);
	snprintf(e->location, sizeof(e->location), "%s", location);
	e->policy = policy;
	e->created = created;
	e->expires = owner ? strata_now_ns() + GW_BUCKET_TTL_NS : 0;
}

static void bcache_drop(struct gateway *gw, const char *name)
{
	for (unsigned i = 0; i < GW_BUCKET_CACHE; i++)
		if (!strcmp(gw->bcache[i].name, name))
			gw->bcache[i].expires = 0;
}

const struct gw_policy *gw_policy_by_index(const struct gateway *gw, uint32_t index)
{
	for (unsigned i = 0; i < gw->npol; i++)
		if (gw->pol[i].index == index)
			return &gw->pol[i];
	return NULL;
}

static const struct gw_policy *policy_by_name(const struct gateway *gw, const char *name,
					      size_t len)
{
	for (unsigned i = 0; i < gw->npol; i++)
		if (strlen(gw->pol[i].name) == len && !memcmp(gw->pol[i].name, name, len))
			return &gw->pol[i];
	return NULL;
}

static void dispatch(struct gw_req *r);

/* The bucket's policy for its writes: r->wpol, NULL when this gateway has
 * no ring of that index (its EC writes then fail with 503). */
static void bucket_policy_set(struct gw_req *r)
{
	r->wpol = gw_policy_by_index(r->gw, r->bucket_policy);
	if (!r->wpol)	/* (its writes and reads say so, this each request) */
		log_debug("bucket %s: storage policy index %u has no ring here", r->bucket,
			  r->bucket_policy);
}

/* Bucket record lookup, then dispatch (or NoSuchBucket / AccessDenied). */
static void on_bucket_record(const struct gw_hlook_result *res, void *arg)
{
	struct gw_req *r = arg;
	struct gw_meta m;

	log_debug("bucket %s: status %d ts %llu", r->bucket, res->status,
		  (unsigned long long)res->ts);
	if (!r->hr)
		goto out;
	if (res->status == -ENOENT) {
		if (r->op == OP_CREATE_BUCKET) {
			r->owner[0] = '\0';
			dispatch(r);
		} else {
			send_error(r, GWE_NO_SUCH_BUCKET);
		}
		goto out;
	}
	if (res->status < 0) {
		send_error(r, GWE_SLOW_DOWN);
		goto out;
	}
	if (gw_meta_decode(res->meta, res->meta_len, &m) < 0 ||
	    m.kind != GW_META_BUCKET || !m.owner) {
		gw_meta_free(&m);
		log_err("bucket %s: undecodable record", r->bucket);
		send_error(r, -EIO);
		goto out;
	}
	snprintf(r->owner, sizeof(r->owner), "%s", m.owner);
	{
		const char *loc = gw_meta_hdr_get(&m, "location");
		const char *pol = gw_meta_hdr_get(&m, "policy");

		snprintf(r->location, sizeof(r->location), "%s", loc ? loc : "");
		/* none recorded: a bucket from before policies, on index 0 */
		r->bucket_policy = pol ? (uint32_t)strtoul(pol, NULL, 10) : 0;
	}
	r->bucket_created = m.version;
	gw_meta_free(&m);
	bcache_set(r->gw, r->bucket, r->owner, r->location, r->bucket_policy,
		   r->bucket_created);
	bucket_policy_set(r);
	dispatch(r);
out:
	req_put(r);
}

static int bucket_lookup(struct gw_req *r, bool use_cache)
{
	struct gateway *gw = r->gw;
	char path[128];
	size_t len;
	uint8_t name[STO_NAME_HASH_LEN];
	struct gw_bcache *c = use_cache ? bcache_find(gw, r->bucket) : NULL;
	int ret;

	if (c) {
		snprintf(r->owner, sizeof(r->owner), "%s", c->owner);
		snprintf(r->location, sizeof(r->location), "%s", c->location);
		r->bucket_policy = c->policy;
		r->bucket_created = c->created;
		bucket_policy_set(r);
		dispatch(r);
		return 0;
	}
	gw_bucket_path(r->bucket, path, sizeof(path), &len);
	gw_name_hash(path, len, name);
	req_get(r);
	log_debug("bucket %s: lookup", r->bucket);
	ret = gw_hlook_start(&gw->st, gw->rep, ring_part_of_path(gw->rep, path, len),
			     name, 0, on_bucket_record, r);
	if (ret < 0)
		req_put(r);
	return ret;
}

static void bucket_created_answer(struct gw_req *r)
{
	char loc[80];

	snprintf(loc, sizeof(loc), "/%s", r->bucket);
	if (r->hr)
		http_resp_header(r->hr, "Location", loc);
	send_empty(r, 200);
}

static void on_bucket_listed(void *arg, int err)
{
	struct gw_req *r = arg;

	if (err)
		send_error(r, err == -EHOSTUNREACH ? GWE_SLOW_DOWN : err);
	else if (r->op == OP_CREATE_BUCKET) {
		/* x-strata-tier-* headers: the bucket's policy first */
		if (!gw_tier_bucket_created(r, bucket_created_answer))
			bucket_created_answer(r);
	} else {
		send_empty(r, 204);
	}
	req_put(r);
}

static void on_bucket_written(struct gw_wset *w, int err, void *arg)
{
	struct gw_req *r = arg;

	(void)w;
	if (r->op == OP_CREATE_BUCKET && !err)
		bcache_set(r->gw, r->bucket, r->account, r->location, r->wpol->index,
			   r->meta.version);
	/* The bucket record is durable: the account's bucket list follows. */
	if (!err) {
		bool del = r->op == OP_DELETE_BUCKET;

		if (del)
			gw_list_bucket_drop(r->gw->lst, r->bucket);
		err = gw_list_account_update(r->gw->lst, r->owner[0] ? r->owner : r->account,
					     r->bucket, del ? w->ts : r->meta.version, del,
					     on_bucket_listed, req_get(r));
		if (err == 0) {
			req_put(r);
			return;
		}
		req_put(r);
	}
	if (err)
		send_error(r, err == -EHOSTUNREACH ? GWE_SLOW_DOWN : err);
	else if (r->op == OP_CREATE_BUCKET) {
		char loc[80];

		snprintf(loc, sizeof(loc), "/%s", r->bucket);
		if (r->hr)
			http_resp_header(r->hr, "Location", loc);
		send_empty(r, 200);
	} else {
		send_empty(r, 204);
	}
	req_put(r);
}

static int bucket_write(struct gw_req *r, bool is_delete)
{
	struct gateway *gw = r->gw;
	char path[128];
	size_t len;
	uint8_t name[STO_NAME_HASH_LEN];
	struct gw_wset *w;
	uint64_t now = strata_wall_ns();
	int ret;

	gw_bucket_path(r->bucket, path, sizeof(path), &len);
	gw_name_hash(path, len, name);
	if (!is_delete) {
		memset(&r->meta, 0, sizeof(r->meta));
		r->meta.kind = GW_META_BUCKET;
		r->meta.version = now;
		r->meta.owner = strdup(r->account);
		if (!r->meta.owner)
			return -ENOMEM;
		if (r->location[0]) {
			ret = gw_meta_add_hdr(&r->meta, "location", 8, r->location,
					      strlen(r->location));
			if (ret < 0)
				return ret;
		}
		/* The storage policy, for good: its index (what heads record)
		 * and its name then (shown, and for the operator). */
		{
			char idx[12];
			int n = snprintf(idx, sizeof(idx), "%u", r->wpol->index);

			ret = gw_meta_add_hdr(&r->meta, "policy", 6, idx, (size_t)n) ?:
			      gw_meta_add_hdr(&r->meta, "policy-name", 11, r->wpol->name,
					      strlen(r->wpol->name));
			if (ret < 0)
				return ret;
		}
		ret = gw_meta_encode(&r->meta, &r->metabuf);
		if (ret < 0)
			return ret;
	}
	w = gw_wset_new(&gw->st, gw->rep, ring_part_of_path(gw->rep, path, len), name,
			0, is_delete, now, on_bucket_written, req_get(r));
	if (!w) {
		req_put(r);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].frag = 0;	/* replicas: any holder answers for frag 0 */
		w->f[i].iov = (struct iovec){ NULL, 0 };
	}
	w->meta = r->metabuf.p;
	w->meta_len = (uint32_t)r->metabuf.len;
	if (is_delete)
		bcache_drop(gw, r->bucket);
	gw_wset_start(w);
	return 0;
}

/* 200 with an empty <name xmlns=.../> document. */
static void send_xml_empty(struct gw_req *r, const char *name)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;

	s3_xml_begin(&x, &b);
	s3_xml_open(&x, name, true);
	s3_xml_end(&x);
	r->responded = true;
	resp_common(r);
	http_resp_simple(r->hr, 200, "application/xml", b.p, b.len);
	s3_buf_free(&b);
}

static void send_location(struct gw_req *r)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;
	/* The constraint the bucket was created with; none: the region,
	 * except us-east-1, which S3 reports as an empty constraint. */
	const char *loc = r->location[0] ? r->location :
			  strcmp(r->gw->cfg.region, "us-east-1") ? r->gw->cfg.region : "";

	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "LocationConstraint", true);
	if (*loc)
		s3_xml_text(&x, loc, strlen(loc));
	s3_xml_end(&x);
	r->responded = true;
	resp_common(r);
	http_resp_simple(r->hr, 200, "application/xml", b.p, b.len);
	s3_buf_free(&b);
}

/* -------------------------------------------------------------- objects */

static int object_path(struct gw_req *r)
{
	size_t n = strlen(r->owner) + strlen(r->bucket) + strlen(r->key) + 3;

	if (n > RING_PATH_MAX)
		return S3E_TOO_LARGE;
	r->path = malloc(n + 1);
	if (!r->path)
		return -ENOMEM;
	r->path_len = (size_t)snprintf(r->path, n + 1, "/%s/%s/%s", r->owner,
				       r->bucket, r->key);
	if (ring_part_of(r->gw->rep, r->owner, r->bucket, r->key, &r->part_rep) < 0)
		return S3E_TOO_LARGE;
	/* EC data goes on the bucket's policy; read data on its head's
	 * (gw_req_read_policy), which is the bucket's unless a head says
	 * otherwise */
	if (r->wpol)
		r->part_ec = ring_part_of_path(r->wpol->ring, r->path, r->path_len);
	r->rpath = r->path;
	r->rpath_len = r->path_len;
	r->rpol = r->wpol;
	r->rpart_ec = r->part_ec;
	r->rpart_rep = r->part_rep;
	return 0;
}

int gw_policy_unavailable(void)
{
	return GWE_POLICY_UNAVAILABLE;
}

const struct gw_policy *gw_meta_policy(const struct gateway *gw, const struct gw_meta *m,
				       const char *what, const char *path)
{
	const struct gw_policy *p = gw_policy_by_index(gw, m->policy);

	if (!p) {
		log_err("%s %s: its data is on storage policy index %u, which has no ring "
			"here (add its ring to --rings)", what, path, m->policy);
		return NULL;
	}
	if (m->k && (m->k != p->k || m->m != p->m)) {
		/* a ring file replaced by one of another geometry */
		log_err("%s %s: its data is EC %u+%u, policy %s (index %u) is %u+%u", what,
			path, m->k, m->m, p->name, p->index, p->k, p->m);
		return NULL;
	}
	return p;
}

int gw_req_read_policy(struct gw_req *r, const struct gw_meta *m)
{
	const struct gw_policy *p = gw_meta_policy(r->gw, m, "read", r->rpath);

	if (!p)
		return GWE_POLICY_UNAVAILABLE;
	r->rpol = p;
	r->rpart_ec = ring_part_of_path(p->ring, r->rpath, r->rpath_len);
	return 0;
}

int gw_req_write_policy(struct gw_req *r)
{
	if (r->wpol)
		return 0;
	log_err("write %s: bucket %s's storage policy index %u has no ring here", r->path,
		r->bucket, r->bucket_policy);
	return GWE_POLICY_UNAVAILABLE;
}

static const char *const stored_headers[] = {
	"content-type", "content-encoding", "content-disposition",
	"content-language", "cache-control", "expires", "x-amz-storage-class",
};

/* Content-Encoding without its aws-chunked tokens into out: 0 (out, *olen
 * set), 1 when there was none (keep the value as it is), S3E_TOO_LARGE. */
static int strip_aws_chunked(const char *v, size_t vl, char *out, size_t cap,
			     size_t *olen)
{
	const char *p = v, *end = v + vl;
	size_t n = 0;
	bool found = false;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *e = c ? c : end, *a = p, *b = e;

		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b - a == 11 && !strncasecmp(a, "aws-chunked", 11)) {
			found = true;
		} else if (b > a) {
			if (n + (size_t)(b - a) + 2 >= cap)
				return S3E_TOO_LARGE;
			if (n) {
				out[n++] = ',';
				out[n++] = ' ';
			}
			memcpy(out + n, a, (size_t)(b - a));
			n += (size_t)(b - a);
		}
		p = e + 1;
	}
	*olen = n;
	return found ? 0 : 1;
}

static int put_collect_meta(struct gw_req *r, struct gw_meta *m)
{
	size_t metabytes = 0;

	for (size_t i = 0; i < r->nh; i++) {
		const struct s3_header *h = &r->h[i];
		bool keep = h->name_len > 11 && !strncasecmp(h->name, "x-amz-meta-", 11);
		int ret;

		for (size_t j = 0; !keep && j < ARRAY_SIZE(stored_headers); j++)
			keep = http_name_eq(h->name, h->name_len, stored_headers[j]);
		if (!keep)
			continue;
		/* aws-chunked is the transfer's encoding, not the object's:
		 * dropped wherever it is in the list ("gzip, aws-chunked"). */
		if (http_name_eq(h->name, h->name_len, "content-encoding")) {
			char v[512];
			size_t vl;

			ret = strip_aws_chunked(h->value, h->value_len, v, sizeof(v), &vl);
			if (ret < 0)
				return ret;
			if (ret == 0) {
				if (!vl)
					continue;
				ret = gw_meta_add_hdr(m, h->name, h->name_len, v, vl);
				if (ret < 0)
					return ret;
				continue;
			}
		}
		metabytes += h->name_len + h->value_len;
		if (metabytes > 2048 + 8192)
			return S3E_TOO_LARGE;	/* XXX MetadataTooLarge */
		ret = gw_meta_add_hdr(m, h->name, h->name_len, h->value,
				      h->value_len);
		if (ret < 0)
			return ret;
	}
	return gw_tagging_collect(r, m);
}

static bool put_is_small(const struct gw_req *r)
{
	return r->meta.layout == GW_LAYOUT_INLINE;
}

static void put_set_ec(struct gw_req *r)
{
	r->meta.layout = GW_LAYOUT_EC;
	r->meta.k = (uint8_t)r->wpol->k;
	r->meta.m = (uint8_t)r->wpol->m;
	r->meta.policy = (uint8_t)r->wpol->index;
	r->meta.seg_size = (uint32_t)((uint64_t)r->gw->cfg.unit * r->wpol->k);
}

static void put_fail(struct gw_req *r, int err);
static void put_maybe_head(struct gw_req *r);
static bool etag_matches(const char *list, const char *etag);
static int parse_http_date(const char *s, time_t *out);

static size_t seg_bytes(const struct gw_req *r)
{
	return (size_t)r->gw->cfg.unit * (r->wpol->k + r->wpol->m);
}

static uint64_t seg_cap(const struct gw_req *r)
{
	return (uint64_t)r->gw->cfg.unit * r->wpol->k;
}

static void tail_gc(struct gateway *gw, const struct gw_policy *pol, const char *path,
		    size_t plen, uint32_t part, uint64_t version, uint64_t nsegs, uint64_t ts);

static void on_seg_written(struct gw_wset *w, int err, void *arg)
{
	struct gw_seg *s = arg;
	struct gw_req *r = s->r;

	/* Handoffs used: recorded in the head so reads find them. */
	for (unsigned i = 0; !err && i < w->n; i++) {
		struct gw_override *o;

		if (w->f[i].dev == w->prim[i])
			continue;
		if (r->meta.nover >= GW_META_MAX_OVERRIDES) {
			err = -E2BIG;
			break;
		}
		o = realloc(r->meta.over, (r->meta.nover + 1) * sizeof(*o));
		if (!o) {
			err = -ENOMEM;
			break;
		}
		r->meta.over = o;
		o[r->meta.nover++] = (struct gw_override){ s->idx, (uint8_t)i,
							   w->f[i].dev->id };
	}
	s->busy = false;
	s->fill = 0;
	r->nsegs_done++;
	if (err && !r->put_err) {
		log_warn("PUT %s segment %u: %s", r->path, s->idx, sto_strerror(err));
		put_fail(r, err == -EHOSTUNREACH ? GWE_SLOW_DOWN : err);
	}
	if (r->paused && r->hr && !r->seg[r->cur ^ 1].busy) {
		r->paused = false;
		http_req_resume(r->hr);
	}
	if (r->copy && r->slot_gen && !r->put_err)
		get_pump(r);		/* the source may feed the freed buffer */
	put_maybe_head(r);
	req_put(r);
}

static int seg_send(struct gw_req *r, struct gw_seg *s)
{
	struct gateway *gw = r->gw;
	const struct gw_policy *pol = r->wpol;
	uint64_t seg_len;
	uint32_t flen;
	uint8_t *data[GW_EC_MAX_K], *par[GW_EC_MAX_M];
	uint8_t name[STO_NAME_HASH_LEN];
	struct gw_wset *w;
	int ret;

	/* Length still unknown: only full segments go out before the end. */
	gw_seg_geometry(r->length >= 0 ? (uint64_t)r->length : (uint64_t)(s->idx + 1) * seg_cap(r),
			(uint32_t)seg_cap(r), pol->k, s->idx, &seg_len, &flen);
	if (seg_len != s->fill)
		return S3E_INCOMPLETE_BODY;
	/* k fragments of flen (the last segment's are shorter), zero-padded. */
	memset(s->buf + s->fill, 0, (size_t)flen * pol->k - s->fill);
	for (unsigned i = 0; i < pol->k; i++)
		data[i] = s->buf + (size_t)i * flen;
	for (unsigned i = 0; i < pol->m; i++)
		par[i] = s->buf + (size_t)(pol->k + i) * flen;
	ret = gw_ec_encode(pol->ecc, flen, data, par);
	if (ret < 0)
		return ret;
	gw_seg_hash(r->path, r->path_len, r->version, s->idx, name);
	w = gw_wset_new(&gw->st, pol->ring, r->part_ec, name, 0, false, r->version,
			on_seg_written, s);
	if (!w)
		return -ENOMEM;
	gw_tier_opts(r, &w->topts);
	for (unsigned i = 0; i < w->n; i++)
		w->f[i].iov = (struct iovec){ s->buf + (size_t)i * flen, flen };
	s->busy = true;
	r->nsegs_sent++;
	req_get(r);
	gw_wset_start(w);
	return 0;
}

/* Object bytes into segments; a full segment goes out. At most two segment
 * buffers: while one is in flight, the request pauses before the other can
 * fill (a piece is at most the HTTP read buffer, below GW_PAUSE_ROOM), so a
 * piece never finds both busy. */
#define GW_PAUSE_ROOM	(256u << 10)

static int put_sink(struct gw_req *r, const uint8_t *p, size_t n)
{
	uint64_t cap = seg_cap(r);

	if (r->put_err)
		return 0;
	if (r->length >= 0 ? r->received > (uint64_t)r->length :
			     r->received > r->gw->cfg.max_object)
		return r->length >= 0 ? S3E_TOO_LARGE : GWE_TOO_LARGE;
	if (r->length < 0 && put_is_small(r) &&
	    r->small.len + n > r->gw->cfg.small_max) {
		/* A chunked body outgrew the inline layout: what was buffered
		 * becomes the first segment's start. */
		struct s3_buf b = r->small;
		int ret;

		r->small = (struct s3_buf){ 0 };
		put_set_ec(r);
		ret = b.len ? put_sink(r, (const uint8_t *)b.p, b.len) : 0;
		s3_buf_free(&b);
		if (ret < 0)
			return ret;
	}
	if (put_is_small(r))
		return s3_buf_add(&r->small, p, n);
	while (n) {
		struct gw_seg *s = &r->seg[r->cur];
		uint64_t room;
		size_t take;
		int ret;

		if (s->busy)
			return -EIO;	/* the invariant above broke: a bug */
		/* Its segment number is set when the buffer starts filling:
		 * while its write is in flight it names the handoffs that
		 * write records (on_seg_written). */
		if (!s->fill)
			s->idx = r->nsegs_sent;
		if (!s->buf) {
			s->buf = gw_buf_alloc(&r->gw->st, seg_bytes(r));
			if (!s->buf)
				return -ENOMEM;
			s->r = r;
		}
		room = cap - s->fill;
		take = n < room ? n : (size_t)room;
		memcpy(s->buf + s->fill, p, take);
		s->fill += take;
		p += take;
		n -= take;
		if (s->fill == cap ||
		    (r->length >= 0 &&
		     (uint64_t)s->idx * cap + s->fill == (uint64_t)r->length)) {
			ret = seg_send(r, s);
			if (ret < 0)
				return ret;
			r->cur ^= 1;
		}
	}
	if (r->seg[r->cur ^ 1].busy && cap - r->seg[r->cur].fill < GW_PAUSE_ROOM &&
	    r->hr && !r->paused && !r->copy) {
		r->paused = true;
		http_req_pause(r->hr);
	}
	return 0;
}

static void put_listed(void *arg, int err)
{
	struct gw_req *r = arg;
	char etag[S3_ETAG_MAX];

	if (err) {
		put_fail(r, err == -EHOSTUNREACH ? GWE_SLOW_DOWN : err);
	} else if (r->op == OP_COMPLETE_MPU) {
		gw_mpu_completed(r);
	} else if (r->op == OP_COPY_OBJECT) {
		gw_meta_etag(&r->meta, etag);
		gw_copy_answer(r, etag);
	} else if (r->hr && !r->responded) {
		gw_meta_etag(&r->meta, etag);
		r->responded = true;
		resp_common(r);
		http_resp_header(r->hr, "ETag", etag);
		if (r->meta.cksum_alg != S3_CKSUM_NONE) {
			char b64[S3_CKSUM_B64_MAX];

			s3_base64_encode(r->meta.cksum, s3_cksum_len(r->meta.cksum_alg),
					 b64, sizeof(b64));
			http_resp_header(r->hr, s3_cksum_header(r->meta.cksum_alg), b64);
			http_resp_header(r->hr, "x-amz-checksum-type", "FULL_OBJECT");
		}
		http_resp_simple(r->hr, 200, NULL, NULL, 0);
	}
	req_put(r);
}

/* The head (of a PUT, a Complete or a CopyObject) is durable: the replaced
 * object's segments (and parts) go, the listing entry follows, then the
 * answer. */
static void on_head_written(struct gw_wset *w, int err, void *arg)
{
	struct gw_req *r = arg;
	char etag[S3_ETAG_MAX];

	(void)w;
	if (!err && r->old_segs && r->old_version < r->version)
		/* The replaced version's segments: no head names them now. */
		tail_gc(r->gw, r->old_pol, r->path, r->path_len,
			ring_part_of_path(r->old_pol->ring, r->path, r->path_len),
			r->old_version, r->old_segs, r->version);
	if (!err && r->old_man.n)
		gw_mpu_gc_old(r, r->version);
	if (!err) {
		struct gw_list_obj o = { .key = r->key, .version = r->version,
					 .size = r->meta.size, .etag = etag };

		gw_meta_etag(&r->meta, etag);
		o.storage_class = gw_meta_hdr_get(&r->meta, "x-amz-storage-class");
		err = gw_list_update(r->gw->lst, r->bucket, &o, put_listed, r);
		if (err == 0)
			return;
	}
	put_listed(r, err);
}

/* Every segment durable and the body verified: the head replicas go out. */
static void put_maybe_head(struct gw_req *r)
{
	struct gateway *gw = r->gw;
	uint8_t name[STO_NAME_HASH_LEN];
	struct gw_wset *w;
	int ret;

	if (r->head_written || r->put_err || !r->body_ended || !r->old_known ||
	    r->nsegs_done != r->nsegs_sent)
		return;
	if (r->op == OP_UPLOAD_PART || r->op == OP_UPLOAD_PART_COPY) {
		ret = gw_mpu_part_check(r);
		if (ret < 0) {
			put_fail(r, ret);	/* its segments go */
			return;
		}
		r->head_written = true;
		gw_mpu_part_commit(r);	/* a part's "head" is its listing entry */
		return;
	}
	r->head_written = true;
	ret = gw_meta_encode(&r->meta, &r->metabuf);
	if (ret < 0) {
		put_fail(r, ret == -E2BIG ? GWE_TOO_LARGE : ret);
		return;
	}
	gw_name_hash(r->path, r->path_len, name);
	w = gw_wset_new(&gw->st, gw->rep, r->part_rep, name, 0, false, r->version,
			on_head_written, req_get(r));
	if (!w) {
		req_put(r);
		put_fail(r, -ENOMEM);
		return;
	}
	for (unsigned i = 0; i < w->n; i++) {
		w->f[i].frag = 0;
		/* inline data, or a multipart object's manifest */
		if (r->meta.layout == GW_LAYOUT_INLINE ||
		    r->meta.layout == GW_LAYOUT_MULTIPART)
			w->f[i].iov = (struct iovec){ r->small.p, r->small.len };
	}
	w->meta = r->metabuf.p;
	w->meta_len = (uint32_t)r->metabuf.len;
	gw_tier_opts(r, &w->topts);	/* an inline object's data is its head */
	gw_wset_start(w);
}

static void put_fail(struct gw_req *r, int err)
{
	if (r->put_err)
		return;
	r->put_err = err;
	send_error(r, err);
	/* Segments already written are unreferenced: tombstone them. */
	if (r->meta.layout == GW_LAYOUT_EC && r->nsegs_sent && !r->head_written)
		tail_gc(r->gw, r->wpol, r->path, r->path_len, r->part_ec, r->version,
			r->nsegs_sent, strata_wall_ns());
}

static void put_old_known(struct gw_req *r)
{
	r->old_known = true;
	put_maybe_head(r);
}

/* Conditional PUT (If-Match / If-None-Match) against the object it would
 * replace: 0, GWE_PRECONDITION, or NoSuchKey for If-Match on no object.
 * XXX checked against the head read at the PUT's start: two conditional
 * PUTs racing through different gateways can both pass. Also
 * CompleteMultipartUpload's conditions (gw_mpu.c). */
int gw_put_check_conditions(struct gw_req *r, const struct gw_meta *old)
{
	const char *im = http_req_header(r->hr, "if-match", NULL);
	const char *inm = http_req_header(r->hr, "if-none-match", NULL);
	char etag[S3_ETAG_MAX];

	if (!im && !inm)
		return 0;
	if (!old)
		return im ? GWE_NO_SUCH_KEY : 0;
	gw_meta_etag(old, etag);	/* a multipart object's too */
	if (im && !etag_matches(im, etag))
		return GWE_PRECONDITION;
	if (inm && etag_matches(inm, etag))
		return GWE_PRECONDITION;
	return 0;
}

void gw_put_old_head(struct gw_req *r, const struct gw_meta *m)
{
	/* (no ring for its policy: its data stays, logged) */
	if (m->layout == GW_LAYOUT_INLINE ||
	    !(r->old_pol = gw_meta_policy(r->gw, m, "replaced", r->path)))
		return;
	if (m->layout == GW_LAYOUT_EC) {
		r->old_version = m->version;
		r->old_segs = gw_meta_segments(m);
	}
}

static void on_put_old_head(const struct gw_hlook_result *res, void *arg)
{
	struct gw_req *r = arg;
	struct gw_meta m = { 0 };
	bool have = false;
	int ret = 0;

	if (res->status == 0 && gw_meta_decode(res->meta, res->meta_len, &m) == 0 &&
	    m.kind == GW_META_OBJECT) {
		have = true;
		gw_put_old_head(r, &m);
	}
	if (r->hr) {
		if (res->status < 0 && res->status != -ENOENT &&
		    (http_req_header(r->hr, "if-match", NULL) ||
		     http_req_header(r->hr, "if-none-match", NULL)))
			ret = GWE_SLOW_DOWN;	/* the condition cannot be decided */
		else
			ret = gw_put_check_conditions(r, have ? &m : NULL);
	}
	/* A replaced multipart object: its manifest must be read now, before
	 * the new head replaces it, to delete its parts after. */
	if (ret == 0 && res->status == 0 && m.kind == GW_META_OBJECT &&
	    m.layout == GW_LAYOUT_MULTIPART &&
	    gw_mpu_old_manifest(r, res, &m, put_old_known) == 0) {
		gw_meta_free(&m);
		req_put(r);
		return;
	}
	gw_meta_free(&m);
	r->old_known = true;
	if (ret < 0)
		put_fail(r, ret);
	else
		put_maybe_head(r);
	req_put(r);
}

static int put_begin(struct gw_req *r)
{
	struct gateway *gw = r->gw;
	int64_t len = r->copy ? r->length : http_req_content_length(r->hr);
	int ret;

	if (r->auth.payload >= S3_PAYLOAD_STREAMING && !r->copy) {
		size_t dl;
		const char *d = http_req_header(r->hr, "x-amz-decoded-content-length", &dl);

		if (!d)
			return S3E_MISSING_LENGTH;
		len = strtoll(d, NULL, 10);
	}
	/* A plain chunked body (Transfer-Encoding: chunked, no length):
	 * its length is known at its end. */
	if (len < 0 && !(r->auth.payload < S3_PAYLOAD_STREAMING &&
			 http_req_is_chunked(r->hr)))
		return S3E_MISSING_LENGTH;
	if (len > 0 && (uint64_t)len > gw->cfg.max_object)
		return GWE_TOO_LARGE;
	r->length = len;
	ret = gw_req_write_policy(r);
	if (ret < 0)
		return ret;
	if (!r->path) {
		ret = object_path(r);
		if (ret < 0)
			return ret;
	}
	if (!r->copy) {		/* a copy's body is its source: no digest */
		ret = body_begin(r);
		if (ret < 0)
			return ret;
	}
	r->version = strata_wall_ns();
	r->meta.kind = GW_META_OBJECT;
	r->meta.version = r->version;
	r->meta.size = len < 0 ? 0 : (uint64_t)len;
	r->meta.owner = strdup(r->owner);
	if (!r->meta.owner)
		return -ENOMEM;
	if (!r->copy && !r->upload_id) {
		ret = put_collect_meta(r, &r->meta);
		if (ret < 0)
			return ret;
	}
	if (r->upload_id)
		return gw_mpu_part_prepare(r);
	{
		uint8_t name[STO_NAME_HASH_LEN];

		gw_name_hash(r->path, r->path_len, name);
		req_get(r);
		ret = gw_hlook_start(&gw->st, gw->rep, r->part_rep, name, 0,
				     on_put_old_head, r);
		if (ret < 0) {
			req_put(r);
			return ret;
		}
	}
	if (r->length < 0 || (uint64_t)r->length <= gw->cfg.small_max) {
		/* chunked (length unknown): inline until it outgrows small_max */
		r->meta.layout = GW_LAYOUT_INLINE;
		r->small.max = (size_t)gw->cfg.small_max + 1;
	} else {
		put_set_ec(r);
	}
	return 0;
}

static void put_body_end(struct gw_req *r)
{
	int ret;

	if (r->put_err)
		return;
	ret = body_finish(r);
	if (ret < 0) {
		put_fail(r, ret);
		return;
	}
	/* A 0-byte EC object cannot happen (small_max >= 0); a partly filled
	 * last segment was sent by put_sink when the length was reached,
	 * unless the length was unknown (chunked): then it goes now. */
	if (r->length < 0) {
		r->length = (int64_t)r->received;
		r->meta.size = r->received;
		if (r->meta.layout == GW_LAYOUT_EC && r->seg[r->cur].fill) {
			ret = seg_send(r, &r->seg[r->cur]);
			if (ret < 0) {
				put_fail(r, ret);
				return;
			}
		}
	}
	r->body_ended = true;
	put_maybe_head(r);
}

/* Tombstones for an EC version's segments (best effort, no answer). */
static void on_gc_done(struct gw_wset *w, int err, void *arg)
{
	(void)w; (void)err; (void)arg;
}

static void tail_gc(struct gateway *gw, const struct gw_policy *pol, const char *path,
		    size_t plen, uint32_t part, uint64_t version, uint64_t nsegs, uint64_t ts)
{
	if (!pol)	/* no ring for their policy here: left (logged when found) */
		return;
	for (uint64_t s = 0; s < nsegs; s++) {
		uint8_t name[STO_NAME_HASH_LEN];
		struct gw_wset *w;

		gw_seg_hash(path, plen, version, (uint32_t)s, name);
		w = gw_wset_new(&gw->st, pol->ring, part, name, 0, true, ts, on_gc_done, NULL);
		if (w)
			gw_wset_start(w);
	}
}

/* ------------------------------------------------------------------ ACL */

/* The ACL headers of a PUT (object, bucket or ?acl): 0 when they ask for
 * nothing but the owner's FULL_CONTROL (no header, private,
 * bucket-owner-full-control), else bad (the caller's error). */
/* Whether r asks for server-side encryption (SSE-S3, SSE-KMS, SSE-C, or a
 * copy source's SSE-C key). Strata does not encrypt at rest: storing such
 * an object as sent would tell the client its data is encrypted (and an
 * SSE-C object readable without its key), so these are refused. */
static bool sse_requested(const struct gw_req *r)
{
	static const char *const prefixes[] = {
		"x-amz-server-side-encryption",
		"x-amz-copy-source-server-side-encryption",
	};

	for (size_t i = 0; i < r->nh; i++)
		for (size_t j = 0; j < ARRAY_SIZE(prefixes); j++) {
			size_t n = strlen(prefixes[j]);

			if (r->h[i].name_len >= n && !strncasecmp(r->h[i].name, prefixes[j], n))
				return true;
		}
	return false;
}

static int acl_headers_check(struct gw_req *r, int bad)
{
	const char *v = http_req_header(r->hr, "x-amz-acl", NULL);

	for (size_t i = 0; i < r->nh; i++)
		if (r->h[i].name_len > 12 && !strncasecmp(r->h[i].name, "x-amz-grant-", 12))
			return bad;
	if (v && strcmp(v, "private") && strcmp(v, "bucket-owner-full-control"))
		return bad;
	return 0;
}

/* GetBucketAcl / GetObjectAcl: the owner's FULL_CONTROL. An account's
 * canonical ID and display name are its name. */
static void send_acl(struct gw_req *r)
{
	struct s3_buf b = { 0 };
	struct s3_xml x;

	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "AccessControlPolicy", true);
	s3_xml_open(&x, "Owner", false);
	s3_xml_elem(&x, "ID", r->owner);
	s3_xml_elem(&x, "DisplayName", r->owner);
	s3_xml_close(&x);
	s3_xml_open(&x, "AccessControlList", false);
	s3_xml_open(&x, "Grant", false);
	s3_xml_open_attrs(&x, "Grantee", "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
			  "xsi:type=\"CanonicalUser\"");
	s3_xml_elem(&x, "ID", r->owner);
	s3_xml_elem(&x, "DisplayName", r->owner);
	s3_xml_close(&x);
	s3_xml_elem(&x, "Permission", "FULL_CONTROL");
	s3_xml_end(&x);
	r->responded = true;
	resp_common(r);
	http_resp_simple(r->hr, 200, "application/xml", b.p, b.len);
	s3_buf_free(&b);
}

/* PutBucketAcl / PutObjectAcl, once the bucket (and object) is known: only
 * what the ACL already is can be set. XXX an XML AccessControlPolicy body
 * is not parsed: 501, even when it grants only the owner's FULL_CONTROL. */
static void put_acl(struct gw_req *r)
{
	int ret = acl_headers_check(r, GWE_ACL_NOT_SUPPORTED);

	if (!ret && http_req_content_length(r->hr) > 0)
		ret = GWE_NOT_IMPLEMENTED;
	if (ret)
		send_error(r, ret);
	else
		send_empty(r, 200);
}

/* ------------------------------------------------------------ GET, HEAD */

static int parse_http_date(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);

	if (!end || *end)
		return -EINVAL;
	*out = timegm(&tm);
	return 0;
}

static bool etag_matches(const char *list, const char *etag)
{
	/* etag is quoted; list: "a", "b" or * */
	const char *p = list;
	size_t el = strlen(etag);

	while (*p) {
		const char *e;

		while (*p == ' ' || *p == ',')
			p++;
		if (!*p)
			break;
		e = strchr(p, ',');
		if (!e)
			e = p + strlen(p);
		{
			const char *a = p, *b = e;

			while (b > a && b[-1] == ' ')
				b--;
			if (b - a == 1 && *a == '*')
				return true;
			if (b - a > 2 && a[0] == 'W' && a[1] == '/')
				a += 2;
			if ((size_t)(b - a) == el && !memcmp(a, etag, el))
				return true;
			if ((size_t)(b - a) == el - 2 && !memcmp(a, etag + 1, el - 2))
				return true;
		}
		p = e;
	}
	return false;
}

/* 0, or 304 / 412 as GWE_PRECONDITION or 304. prefix: "" for GET/HEAD,
 * "x-amz-copy-source-" for a copy's source. */
int gw_check_conditions(struct gw_req *r, const char *prefix, const char *etag,
			time_t mtime)
{
	char n[4][48];
	const char *im, *inm, *ims, *ius;
	time_t t;

	snprintf(n[0], sizeof(n[0]), "%sif-match", prefix);
	snprintf(n[1], sizeof(n[1]), "%sif-none-match", prefix);
	snprintf(n[2], sizeof(n[2]), "%sif-modified-since", prefix);
	snprintf(n[3], sizeof(n[3]), "%sif-unmodified-since", prefix);
	im = http_req_header(r->hr, n[0], NULL);
	inm = http_req_header(r->hr, n[1], NULL);
	ims = http_req_header(r->hr, n[2], NULL);
	ius = http_req_header(r->hr, n[3], NULL);

	if (im && !etag_matches(im, etag))
		return GWE_PRECONDITION;
	if (!im && ius && !parse_http_date(ius, &t) && mtime > t)
		return GWE_PRECONDITION;
	if (inm && etag_matches(inm, etag))
		return 304;
	if (!inm && ims && !parse_http_date(ims, &t) && mtime <= t)
		return 304;
	return 0;
}

/* Range header: 0 no range, 1 range set, GWE_INVALID_RANGE. */
static int parse_range(struct gw_req *r, uint64_t size)
{
	const char *h = http_req_header(r->hr, "range", NULL);
	const char *p;
	char *end;
	unsigned long long a, b;

	r->range_start = 0;
	r->range_end = size ? size - 1 : 0;
	if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
		return 0;	/* unknown units and multiple ranges: whole */
	p = h + 6;
	if (*p == '-') {
		b = strtoull(p + 1, &end, 10);
		if (end == p + 1 || *end)
			return 0;
		if (b == 0 || size == 0)
			return GWE_INVALID_RANGE;
		r->range_start = b >= size ? 0 : size - b;
		return 1;
	}
	a = strtoull(p, &end, 10);
	if (end == p || *end != '-')
		return 0;
	p = end + 1;
	if (*p) {
		b = strtoull(p, &end, 10);
		if (*end || b < a)
			return 0;
	} else {
		b = size ? size - 1 : 0;
	}
	if (a >= size)
		return GWE_INVALID_RANGE;
	if (b >= size)
		b = size - 1;
	r->range_start = a;
	r->range_end = b;
	return 1;
}

static void add_override(struct gw_req *r, const char *param, const char *header,
			 const char *fallback)
{
	size_t qn, vl;
	const char *q = http_req_query(r->hr, &qn);
	const char *v;

	if (query_has(q, qn, param, &v, &vl)) {
		char *dec = malloc(vl + 1);
		size_t dl;

		if (dec && http_url_decode(v, vl, dec, &dl, true) == 0) {
			dec[dl] = '\0';
			if (http_is_field_value(dec, dl))
				http_resp_header(r->hr, header, dec);
		}
		free(dec);
		return;
	}
	if (fallback)
		http_resp_header(r->hr, header, fallback);
}

static void obj_headers(struct gw_req *r, const struct gw_meta *m)
{
	char etag[S3_ETAG_MAX], date[HTTP_DATE_LEN + 1];
	const char *sc;
	static const struct { const char *param, *header, *stored; } ov[] = {
		{ "response-content-type", "Content-Type", "content-type" },
		{ "response-content-language", "Content-Language", "content-language" },
		{ "response-expires", "Expires", "expires" },
		{ "response-cache-control", "Cache-Control", "cache-control" },
		{ "response-content-disposition", "Content-Disposition", "content-disposition" },
		{ "response-content-encoding", "Content-Encoding", "content-encoding" },
	};

	resp_common(r);
	gw_meta_etag(m, etag);
	http_resp_header(r->hr, "ETag", etag);
	if (http_date_format((time_t)(m->version / 1000000000), date) == 0)
		http_resp_header(r->hr, "Last-Modified", date);
	http_resp_header(r->hr, "Accept-Ranges", "bytes");
	for (size_t i = 0; i < ARRAY_SIZE(ov); i++) {
		const char *st = gw_meta_hdr_get(m, ov[i].stored);

		if (!st && i == 0)
			st = "binary/octet-stream";
		add_override(r, ov[i].param, ov[i].header, st);
	}
	for (uint32_t i = 0; i < m->nhdr; i++)
		if (!strncmp(m->hdr[i].name, "x-amz-meta-", 11))
			http_resp_header(r->hr, m->hdr[i].name, m->hdr[i].value);
	sc = gw_tier_class_shown(r, m);
	if (sc)
		http_resp_header(r->hr, "x-amz-storage-class", sc);
	gw_tagging_count_header(r, m);
}

static void get_pump(struct gw_req *r);
static uint64_t gw_max_seg_size(const struct gw_req *r);

static void on_get_written(struct http_req *hr, int status, void *arg)
{
	struct gw_slot *s = arg;
	struct gw_req *r = s->r;

	(void)hr;
	s->state = SLOT_FREE;
	if (status < 0)
		r->failed = true;
	else
		r->next_write++;
	get_pump(r);
	req_put(r);
}

static void slot_read_more(struct gw_slot *s);
static bool slot_try_prev(struct gw_slot *s, unsigned frag);

static void on_frag_read(void *arg, int status, uint64_t ts, size_t got)
{
	struct gw_frag_read *fr = arg;
	struct gw_slot *s = fr->s;
	struct gw_req *r = s->r;

	if (status == GW_READ_SLOW) {
		/* Hedge: ask one more fragment, keep waiting for this one. */
		s->slow |= 1u << fr->frag;
		if (s->state == SLOT_READING)
			slot_read_more(s);
		return;
	}
	s->fr[fr->frag] = NULL;
	s->outstanding--;
	s->slow &= ~(1u << fr->frag);
	if (status == 0 && ts == s->ref.version && got == s->flen) {
		s->present |= 1u << fr->frag;
	} else if (status < 0 && slot_try_prev(s, fr->frag)) {
		log_debug("GET %s seg %" PRIu64 " frag %u: %s; asking it elsewhere",
			  r->path, fr->seg, fr->frag, sto_strerror(status));
	} else {
		log_warn("GET %s seg %" PRIu64 " frag %u: %s", r->path, fr->seg,
			 fr->frag, status ? sto_strerror(status) : "stale or short");
		s->failed |= 1u << fr->frag;
	}
	free(fr);
	if (s->state == SLOT_READING && r->hr)
		slot_read_more(s);
	req_put(r);
}

/* The slot no longer needs its reads in flight (done, or the request
 * ended): their buffers are let go of. */
static void slot_abandon(struct gw_slot *s)
{
	for (unsigned i = 0; i < GW_EC_MAX_FRAGS; i++) {
		struct gw_frag_read *fr = s->fr[i];

		if (!fr)
			continue;
		s->fr[i] = NULL;
		gw_read_abandon(fr->rd);
		s->outstanding--;
		free(fr);
		req_put(s->r);
	}
	s->slow = 0;
}

/* Where fragment frag of the slot's segment is under ring: the handoff the
 * head recorded (with over), else the ring's placement. A device the ring no
 * longer has (removed by a rebalance) is looked up in the previous ring,
 * which still places data on it until the move is done. */
static const struct ring_dev *slot_frag_dev(const struct gw_slot *s, unsigned frag,
					    const struct ring *ring, bool over)
{
	const struct gw_policy *pol = s->r->rpol;
	const struct ring_dev *prim[RING_MAX_PLACEMENTS], *dev;
	uint32_t id = UINT32_MAX;

	for (uint32_t i = 0; over && i < s->ref.nover && id == UINT32_MAX; i++)
		if (s->ref.over[i].seg == s->ref.lseg && s->ref.over[i].frag == frag)
			id = s->ref.over[i].dev;
	if (id == UINT32_MAX) {
		ring_primaries(ring, s->r->rpart_ec, prim, ring_placements(ring));
		id = prim[frag]->id;
	}
	dev = ring_dev_by_id(ring, id);
	if (!dev && pol->prev)
		dev = ring_dev_by_id(pol->prev, id);
	return dev;
}

/* Where fragment frag is asked first. The head records the handoff a
 * fragment went to while its placement was down, and is never rewritten;
 * the repair daemons push the fragment home and drop the handoff's copy,
 * after which asking the handoff first would cost every read of it one
 * wasted request, for good. So the ring placement is asked first while its
 * node is not marked down (the handoff second: the window before the push),
 * and the handoff first only while it is. Decided once per fragment and
 * segment (s->home), so the second ask is the other one. */
static const struct ring_dev *slot_first_dev(struct gw_slot *s, unsigned frag)
{
	struct gateway *gw = s->r->gw;
	const struct ring *ring = s->r->rpol->ring;
	const struct ring_dev *over = slot_frag_dev(s, frag, ring, true);
	const struct ring_dev *home = slot_frag_dev(s, frag, ring, false);

	if (over && home && over->id != home->id && !gw_store_dev_down(&gw->st, home)) {
		s->home |= 1u << frag;
		return home;
	}
	return over;
}

/* A fragment missing where it was asked first may be elsewhere: at the
 * handoff the head recorded when its ring placement was asked first; at
 * its ring placement when the handoff was (its node was down); else at the
 * previous ring's device (a rebalance under way, not moved yet). NULL:
 * nowhere else. */
static const struct ring_dev *slot_second_dev(const struct gw_slot *s, unsigned frag)
{
	const struct gw_policy *pol = s->r->rpol;
	const struct ring_dev *first = slot_frag_dev(s, frag, pol->ring, true), *d;

	if (s->home & (1u << frag))
		return first;
	d = slot_frag_dev(s, frag, pol->ring, false);
	if (d && (!first || d->id != first->id))
		return d;
	d = pol->prev ? slot_frag_dev(s, frag, pol->prev, false) : NULL;
	if (d && (!first || d->id != first->id))
		return d;
	return NULL;
}

/* Asks fragment frag once more, at slot_second_dev. */
static bool slot_try_prev(struct gw_slot *s, unsigned frag)
{
	if ((s->moved & (1u << frag)) || !slot_second_dev(s, frag))
		return false;
	s->moved |= 1u << frag;
	s->asked &= ~(1u << frag);
	return true;
}

static int slot_ask(struct gw_slot *s, unsigned frag)
{
	struct gw_req *r = s->r;
	struct gateway *gw = r->gw;
	const struct ring_dev *dev;
	struct gw_frag_read *fr;
	struct sto_key k = { .part = r->rpart_ec,
			     .frag = ring_frag_id(ring_policy(r->rpol->ring), frag) };
	int ret;

	dev = s->moved & (1u << frag) ? slot_second_dev(s, frag) : slot_first_dev(s, frag);
	if (!dev)
		return -ENOENT;
	fr = calloc(1, sizeof(*fr));
	if (!fr)
		return -ENOMEM;
	fr->s = s;
	fr->frag = frag;
	fr->seg = s->seg;
	fr->gen = r->slot_gen;
	memcpy(k.name, s->ref.name, STO_NAME_HASH_LEN);
	s->asked |= 1u << frag;
	s->outstanding++;
	req_get(r);
	s->fr[frag] = fr;
	ret = gw_read_start(&gw->st, dev, &k, 0, 0, s->buf + (size_t)frag * s->flen,
			    s->flen, on_frag_read, fr, &fr->rd);
	if (ret < 0) {
		s->fr[frag] = NULL;
		s->outstanding--;
		s->asked &= ~(1u << frag);
		free(fr);
		req_put(r);
	}
	return ret;
}

/* Enough fragments? Decode if needed, else ask more (parity first). */
static void slot_read_more(struct gw_slot *s)
{
	struct gw_req *r = s->r;
	unsigned k = r->gm.k, n = r->gm.k + r->gm.m;
	uint32_t missing_wanted = s->want & ~s->present;
	unsigned have = (unsigned)__builtin_popcount(s->present);

	if (!missing_wanted) {
		s->state = SLOT_READY;
		slot_abandon(s);
		get_pump(r);
		return;
	}
	if (k == 1 && have) {
		/* 1+m: every fragment is a copy of the segment (api/ec.c), so
		 * the one that came is sent from where it landed: no decode. */
		s->out_off += (uint64_t)__builtin_ctz(s->present) * s->flen;
		s->present |= missing_wanted;
		s->state = SLOT_READY;
		slot_abandon(s);
		get_pump(r);
		return;
	}
	if (have >= k) {
		uint8_t *frags[GW_EC_MAX_FRAGS];

		for (unsigned i = 0; i < n; i++)
			frags[i] = s->buf + (size_t)i * s->flen;
		/* Decode wants exactly k present: use the first k. */
		uint32_t pres = 0;
		unsigned c = 0;

		for (unsigned i = 0; i < n && c < k; i++)
			if (s->present & (1u << i)) {
				pres |= 1u << i;
				c++;
			}
		if (gw_ec_decode(r->rpol->ecc, s->flen, frags, pres, missing_wanted) < 0) {
			r->failed = true;
			get_pump(r);
			return;
		}
		s->present |= missing_wanted;
		s->state = SLOT_READY;
		slot_abandon(s);
		get_pump(r);
		return;
	}
	/* Need k - have more, from fragments not yet asked. */
	{
		unsigned need = k - have;
		unsigned pending = s->outstanding - (unsigned)__builtin_popcount(s->slow);

		for (unsigned i = 0; i < n && pending < need; i++) {
			if (s->asked & (1u << i))
				continue;
			if (slot_ask(s, i) == 0)
				pending++;
		}
		if (pending < need && s->outstanding == 0 && r->hr) {
			log_err("GET %s seg %" PRIu64 ": fewer than %u fragments", r->rpath,
				s->seg, k);
			r->failed = true;
			get_pump(r);
		}
	}
}

static void slot_start(struct gw_req *r, struct gw_slot *s, uint64_t seg)
{
	uint64_t seg_len, a, b;
	uint32_t flen;
	unsigned k = r->gm.k, n = r->gm.k + r->gm.m;

	gw_seg_ref(r, seg, &s->ref);
	seg_len = s->ref.len;
	flen = s->ref.flen;
	s->r = r;
	s->seg = seg;
	s->flen = flen;
	s->seg_len = seg_len;
	s->present = s->asked = s->failed = s->moved = s->home = 0;
	s->outstanding = 0;
	s->state = SLOT_READING;
	/* Parts may have their own segment size: size for the largest. */
	if (!s->buf)
		s->buf = gw_buf_alloc(&r->gw->st, (size_t)gw_max_seg_size(r) / k * n);
	if (!s->buf) {
		r->failed = true;
		return;
	}
	a = s->ref.obj_off;
	b = a + seg_len - 1;
	if (r->range_start > a)
		a = r->range_start;
	if (r->range_end < b)
		b = r->range_end;
	s->out_off = a - s->ref.obj_off;
	s->out_len = b - a + 1;
	s->want = 0;
	for (uint64_t i = s->out_off / flen; i <= (s->out_off + s->out_len - 1) / flen; i++)
		s->want |= 1u << i;
	if (k == 1)
		/* 1+m: any copy will do; segments and requests take turns, so
		 * an object's segments and concurrent GETs spread over every
		 * copy's node instead of all reading placement 0. */
		slot_ask(s, (unsigned)((seg + r->read_turn) % n));
	else
		for (unsigned i = 0; i < k; i++)
			if (s->want & (1u << i))
				slot_ask(s, i);
	if (s->outstanding == 0)
		slot_read_more(s);
}

static void get_finish(struct gw_req *r)
{
	if (r->copy) {
		gw_copy_source_done(r, 0);
		return;
	}
	if (r->hr && !r->responded) {
		r->responded = true;
		http_resp_end(r->hr);
	}
}

static void get_pump(struct gw_req *r)
{
	if (!r->hr)
		return;
	if (r->failed && r->copy) {
		gw_copy_source_done(r, -EIO);
		return;
	}
	if (r->failed) {
		/* Headers are out: a short body tells the client. */
		if (!r->responded) {
			r->responded = true;
			http_req_set_close(r->hr);
			http_resp_end(r->hr);
		}
		return;
	}
	for (int i = 0; i < 2; i++) {
		struct gw_slot *s = &r->slots[i];

		if (s->state == SLOT_FREE && r->next_read <= r->seg_last) {
			slot_start(r, s, r->next_read++);
			if (r->failed)
				return;
		}
	}
	for (int i = 0; i < 2; i++) {
		struct gw_slot *s = &r->slots[i];

		if (s->state == SLOT_READY && s->seg == r->next_write && r->copy) {
			/* A copy: the slice goes into the PUT's segment buffers
			 * (copied there), as far as they have room; the rest
			 * once a segment write is done (on_seg_written pumps). */
			uint64_t take = gw_copy_room(r);

			if (!take)
				return;
			if (take > s->out_len)
				take = s->out_len;
			if (gw_copy_feed(r, s->buf + s->out_off, (size_t)take) < 0) {
				gw_copy_source_done(r, -EIO);
				return;
			}
			s->out_off += take;
			s->out_len -= take;
			if (s->out_len)
				return;
			s->state = SLOT_FREE;
			r->next_write++;
			get_pump(r);
			return;
		}
		if (s->state == SLOT_READY && s->seg == r->next_write) {
			uv_buf_t b = uv_buf_init((char *)s->buf + s->out_off,
						 (unsigned)s->out_len);

			s->state = SLOT_WRITING;
			req_get(r);
			if (http_resp_write(r->hr, &b, 1, on_get_written, s) < 0) {
				s->state = SLOT_FREE;
				r->failed = true;
				req_put(r);
			}
			return;
		}
	}
	if (r->next_write > r->seg_last)
		get_finish(r);
}

static void on_inline_read(void *arg, int status, uint64_t ts, size_t got)
{
	struct gw_req *r = arg;
	uv_buf_t b;

	if (status == GW_READ_SLOW)
		return;		/* XXX no hedging for replicas: wait */
	if (!r->hr || r->responded)
		goto out;
	if (status < 0 || ts != r->head_ts || got != r->gm.size) {
		if (++r->holder_try < r->nholders &&
		    gw_head_read(r, r->gm.size, on_inline_read) == 0)
			goto out;
		if (r->copy)
			gw_copy_source_done(r, GWE_SLOW_DOWN);
		else
			send_error(r, GWE_SLOW_DOWN);
		goto out;
	}
	if (r->copy) {
		int ret = gw_copy_feed(r, r->inline_buf + r->range_start,
				       r->range_end - r->range_start + 1);

		gw_copy_source_done(r, ret);
		goto out;
	}
	r->responded = true;
	b = uv_buf_init((char *)r->inline_buf + r->range_start,
			(unsigned)(r->range_end - r->range_start + 1));
	http_resp_send(r->hr, r->resp_status, &b, 1, NULL, NULL);
out:
	req_put(r);
}

static void on_object_head(const struct gw_hlook_result *res, void *arg)
{
	struct gw_req *r = arg;
	int ret;

	if (!r->hr || r->responded)
		goto out;
	if (res->status == -ENOENT) {
		send_error(r, GWE_NO_SUCH_KEY);
		goto out;
	}
	if (res->status < 0) {
		send_error(r, GWE_SLOW_DOWN);
		goto out;
	}
	ret = gw_meta_decode(res->meta, res->meta_len, &r->gm);
	if (ret < 0 || r->gm.kind != GW_META_OBJECT) {
		log_err("GET %s: undecodable head (%d)", r->rpath, ret);
		send_error(r, -EIO);
		goto out;
	}
	r->have_gm = true;
	if (r->gm.layout != GW_LAYOUT_INLINE) {
		ret = gw_req_read_policy(r, &r->gm);
		if (ret < 0) {
			send_error(r, ret);
			goto out;
		}
	}
	r->head_ts = res->ts;
	if (r->op == OP_GET_ACL) {
		send_acl(r);
		goto out;
	}
	if (r->op == OP_PUT_ACL) {
		put_acl(r);
		goto out;
	}
	memcpy(r->holders, res->holders, res->nholders * sizeof(res->holders[0]));
	r->nholders = res->nholders;
	r->holder_try = 0;
	if (r->op == OP_GET_OBJ_TAGGING || r->op == OP_PUT_OBJ_TAGGING ||
	    r->op == OP_DELETE_OBJ_TAGGING) {
		gw_tagging_head(r);
		goto out;
	}
	/* A multipart object's data is named by its manifest, the head's
	 * payload: read it first (a plain HEAD needs only the metadata). */
	if (r->gm.layout == GW_LAYOUT_MULTIPART &&
	    (r->op != OP_HEAD_OBJECT || r->part_num)) {
		ret = gw_mpu_load_manifest(r);
		if (ret < 0)
			send_error(r, ret);
		goto out;
	}
	gw_object_answer(r);
out:
	req_put(r);
}

/* ?partNumber=N: 0 (whole object: N = 1 of a simple object), 1 (the
 * part's range is set) or an error. */
static int part_range(struct gw_req *r)
{
	const struct gw_mpart *p;
	char v[16];

	if (!r->have_man)
		return r->part_num == 1 ? 0 : GWE_INVALID_PART_NUMBER;
	if (r->part_num > r->man.n)
		return GWE_INVALID_PART_NUMBER;
	p = &r->man.parts[r->part_num - 1];
	snprintf(v, sizeof(v), "%u", r->man.n);
	http_resp_header(r->hr, "x-amz-mp-parts-count", v);
	if (!p->size)
		return GWE_INVALID_PART_NUMBER;
	r->range_start = p->off;
	r->range_end = p->off + p->size - 1;
	return 1;
}

/* A header's decimal value in [0, max] (absent: dflt); -1 if malformed. */
static int64_t header_u32(struct gw_req *r, const char *name, int64_t dflt, int64_t max)
{
	const char *v = http_req_header(r->hr, name, NULL);
	char *end;
	long long n;

	if (!v)
		return dflt;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < 0)
		return -1;
	return n > max ? max : n;
}

/* GetObjectAttributes: what x-amz-object-attributes asks for, from the head
 * (and a multipart object's manifest: its parts, paged by x-amz-max-parts
 * and x-amz-part-number-marker, each with its checksum if it has one). */
static void send_attributes(struct gw_req *r)
{
	const char *want = http_req_header(r->hr, "x-amz-object-attributes", NULL);
	int64_t max_parts = header_u32(r, "x-amz-max-parts", 1000, 1000);
	int64_t marker = header_u32(r, "x-amz-part-number-marker", 0, S3_MAX_PARTS);
	const char *sc = gw_tier_class_shown(r, &r->gm);
	char etag[S3_ETAG_MAX], date[HTTP_DATE_LEN + 1];
	struct s3_buf b = { 0 };
	struct s3_xml x;
	bool any = false;

	if (!want || max_parts < 0 || marker < 0) {
		send_error(r, GWE_INVALID_ARGUMENT);
		return;
	}
	s3_xml_begin(&x, &b);
	s3_xml_open(&x, "GetObjectAttributesResponse", true);
	for (const char *p = want; *p;) {
		size_t n = strcspn(p, ",");
		const char *t = p;

		p += n + (p[n] == ',');
		while (n && (*t == ' ' || *t == '\t'))
			t++, n--;
		while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
			n--;
		if (n == 4 && !memcmp(t, "ETag", 4)) {
			gw_meta_etag(&r->gm, etag);
			s3_xml_elemn(&x, "ETag", etag + 1, strlen(etag) - 2);
		} else if (n == 8 && !memcmp(t, "Checksum", 8)) {
			char v[GW_CKSUM_SHOW_MAX];

			if (!gw_meta_cksum_show(&r->gm, v))
				continue;
			s3_xml_open(&x, "Checksum", false);
			gw_xml_object_cksum(&x, &r->gm);
			s3_xml_close(&x);
		} else if (n == 11 && !memcmp(t, "ObjectParts", 11)) {
			uint32_t shown = 0, i;

			if (!r->have_man)
				continue;	/* a simple object has no parts */
			s3_xml_open(&x, "ObjectParts", false);
			s3_xml_elem_u64(&x, "PartsCount", r->man.n);
			s3_xml_elem_u64(&x, "PartNumberMarker", (uint64_t)marker);
			s3_xml_elem_u64(&x, "MaxParts", (uint64_t)max_parts);
			for (i = 0; i < r->man.n; i++) {
				const struct gw_mpart *mp = &r->man.parts[i];

				if (mp->number <= (uint64_t)marker)
					continue;
				if (shown == max_parts)
					break;
				s3_xml_open(&x, "Part", false);
				s3_xml_elem_u64(&x, "PartNumber", mp->number);
				s3_xml_elem_u64(&x, "Size", mp->size);
				gw_xml_part_cksum(&x, mp->cksum_alg, mp->cksum);
				s3_xml_close(&x);
				shown++;
				if (shown == max_parts)
					marker = mp->number;
			}
			/* Truncated: a part beyond the ones shown. */
			for (; i < r->man.n && r->man.parts[i].number <= (uint64_t)marker; i++)
				;
			s3_xml_elem_bool(&x, "IsTruncated", i < r->man.n);
			if (i < r->man.n)
				s3_xml_elem_u64(&x, "NextPartNumberMarker", (uint64_t)marker);
			s3_xml_close(&x);
		} else if (n == 12 && !memcmp(t, "StorageClass", 12)) {
			s3_xml_elem(&x, "StorageClass", sc ? sc : "STANDARD");
		} else if (n == 10 && !memcmp(t, "ObjectSize", 10)) {
			s3_xml_elem_u64(&x, "ObjectSize", r->gm.size);
		} else {
			s3_buf_free(&b);
			send_error(r, GWE_INVALID_ARGUMENT);
			return;
		}
		any = true;
	}
	if (!any || s3_xml_end(&x) < 0) {
		s3_buf_free(&b);
		send_error(r, any ? -ENOMEM : GWE_INVALID_ARGUMENT);
		return;
	}
	if (http_date_format((time_t)(r->gm.version / 1000000000), date) == 0)
		http_resp_header(r->hr, "Last-Modified", date);
	gw_send_xml(r, 200, &b);
	s3_buf_free(&b);
}

/* GET/HEAD with x-amz-checksum-mode: ENABLED: the object's checksum and
 * its type, or with ?partNumber a multipart object's part's; none for a
 * range (ranged, without a part number). */
static void resp_checksum(struct gw_req *r, bool ranged)
{
	const char *mode = http_req_header(r->hr, "x-amz-checksum-mode", NULL);
	char v[GW_CKSUM_SHOW_MAX];
	enum s3_cksum_alg alg = r->gm.cksum_alg;

	if (!mode || strcasecmp(mode, "ENABLED") || alg == S3_CKSUM_NONE)
		return;
	if (r->part_num && r->have_man) {
		const struct gw_mpart *p = &r->man.parts[r->part_num - 1];

		alg = p->cksum_alg;
		if (alg == S3_CKSUM_NONE ||
		    s3_base64_encode(p->cksum, s3_cksum_len(alg), v, sizeof(v)) < 0)
			return;
	} else if (ranged || !gw_meta_cksum_show(&r->gm, v)) {
		return;
	}
	http_resp_header(r->hr, s3_cksum_header(alg), v);
	http_resp_header(r->hr, "x-amz-checksum-type", gw_meta_cksum_type(&r->gm));
}

void gw_object_answer(struct gw_req *r)
{
	char etag[S3_ETAG_MAX], cr[96];
	bool head = r->op == OP_HEAD_OBJECT;
	int ret, status = 200;

	if (!r->hr || r->responded)
		return;
	if (r->copy) {
		gw_copy_source_ready(r);
		return;
	}
	if (r->op == OP_GET_ATTRIBUTES) {
		send_attributes(r);
		return;
	}
	gw_meta_etag(&r->gm, etag);
	ret = gw_check_conditions(r, "", etag, (time_t)(r->gm.version / 1000000000));
	if (ret == 304) {
		r->responded = true;
		obj_headers(r, &r->gm);
		http_resp_simple(r->hr, 304, NULL, NULL, 0);
		return;
	}
	if (ret < 0) {
		send_error(r, ret);
		return;
	}
	ret = r->part_num ? part_range(r) : parse_range(r, r->gm.size);
	if (r->part_num && ret == 0) {
		r->range_start = 0;
		r->range_end = r->gm.size ? r->gm.size - 1 : 0;
	}
	if (ret < 0) {
		char v[48];

		snprintf(v, sizeof(v), "bytes */%" PRIu64, r->gm.size);
		http_resp_header(r->hr, "Content-Range", v);
		send_error(r, ret);
		return;
	}
	obj_headers(r, &r->gm);
	resp_checksum(r, ret == 1);
	if (ret == 1) {
		status = 206;
		snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
			 r->range_start, r->range_end, r->gm.size);
		http_resp_header(r->hr, "Content-Range", cr);
	}
	if (head || r->gm.size == 0) {
		r->responded = true;
		if (head) {
			/* HEAD: the length the GET would have. */
			http_resp_start(r->hr, status, (int64_t)(r->gm.size ?
					r->range_end - r->range_start + 1 : 0));
			http_resp_end(r->hr);
		} else {
			http_resp_simple(r->hr, status, NULL, NULL, 0);
		}
		return;
	}
	if (r->gm.layout == GW_LAYOUT_INLINE) {
		r->resp_status = status;
		ret = gw_inline_read(r);
		if (ret < 0)
			send_error(r, ret);
		return;
	}
	/* EC or multipart: stream the covered segments, two in flight. */
	if (http_resp_start(r->hr, status,
			    (int64_t)(r->range_end - r->range_start + 1)) < 0) {
		r->responded = true;
		return;
	}
	gw_get_start(r);
}

/* Inline object: its bytes from the head's holders, one after another. */
int gw_head_read(struct gw_req *r, size_t len, gw_read_fn cb)
{
	struct sto_key k = { .part = r->rpart_rep };
	int ret;

	gw_name_hash(r->rpath, r->rpath_len, k.name);
	req_get(r);
	ret = gw_read_start(&r->gw->st, r->holders[r->holder_try], &k, 0, 0,
			    r->inline_buf, len + 1, cb, r, NULL);
	if (ret < 0)
		req_put(r);
	return ret;
}

int gw_inline_read(struct gw_req *r)
{
	r->inline_buf = malloc(r->gm.size + 1);
	if (!r->inline_buf)
		return -ENOMEM;
	if (!r->nholders)
		return GWE_SLOW_DOWN;
	r->holder_try = 0;
	return gw_head_read(r, r->gm.size, on_inline_read);
}

/* The slots' pipeline over [range_start, range_end]. */
void gw_get_start(struct gw_req *r)
{
	r->seg_first = gw_seg_at(r, r->range_start);
	r->seg_last = gw_seg_at(r, r->range_end);
	r->next_read = r->next_write = r->seg_first;
	r->slots[0].r = r->slots[1].r = r;
	r->slot_gen = 1;
	get_pump(r);
}

/* Where segment seg of r->gm lives: the object's own segments, or the
 * parts' one after another (gw_mpu.c keeps the manifest). */
void gw_seg_ref(const struct gw_req *r, uint64_t seg, struct gw_segref *out)
{
	const struct gw_meta *m = &r->gm;

	if (r->have_man) {
		gw_mpu_seg_ref(r, seg, out);
		return;
	}
	gw_seg_geometry(m->size, m->seg_size, m->k, seg, &out->len, &out->flen);
	out->obj_off = seg * m->seg_size;
	out->lseg = (uint32_t)seg;
	out->version = m->version;
	out->over = m->over;
	out->nover = m->nover;
	gw_seg_hash(r->rpath, r->rpath_len, m->version, (uint32_t)seg, out->name);
}

uint64_t gw_seg_at(const struct gw_req *r, uint64_t off)
{
	if (r->have_man)
		return gw_mpu_seg_at(r, off);
	return off / r->gm.seg_size;
}

static uint64_t gw_max_seg_size(const struct gw_req *r)
{
	uint64_t max = r->gm.seg_size;

	for (uint32_t i = 0; r->have_man && i < r->man.n; i++)
		if (r->man.parts[i].seg_size > max)
			max = r->man.parts[i].seg_size;
	return max;
}

/* The object a GET or a copy reads: its head lookup, then on_object_head. */
int gw_object_lookup(struct gw_req *r)
{
	uint8_t name[STO_NAME_HASH_LEN];
	int ret;

	gw_name_hash(r->rpath, r->rpath_len, name);
	req_get(r);
	ret = gw_hlook_start(&r->gw->st, r->gw->rep, r->rpart_rep, name, 0,
			     on_object_head, r);
	if (ret < 0)
		req_put(r);
	return ret;
}

static int get_begin(struct gw_req *r)
{
	int ret = object_path(r);

	if (ret < 0)
		return ret;
	ret = gw_mpu_part_number(r);
	if (ret < 0)
		return ret;
	return gw_object_lookup(r);
}

/* --------------------------------------------------------------- DELETE */

/* One object's delete, for DELETE Object and each key of DeleteObjects:
 * the head's tombstone on its replicas (after a lookup of the version it
 * replaces), the EC segments' tombstones (best effort), then the listing's
 * tombstone. */
struct gw_odel {
	struct gateway *gw;
	char *bucket, *key, *path;
	size_t path_len;
	uint32_t part_rep, part_ec;		/* part_ec: on pol's ring */
	struct gw_meta gm;
	bool have_gm;
	const struct gw_policy *pol;		/* the head's EC policy */
	struct gw_manifest old_man;		/* a multipart object's parts */
	struct gw_del_cond cond;		/* strdup'd */
	gw_list_done_fn cb;
	void *arg;
};

static void odel_free(struct gw_odel *d)
{
	gw_meta_free(&d->gm);
	gw_manifest_free(&d->old_man);
	free((char *)d->cond.if_match);
	free((char *)d->cond.if_mtime);
	free((char *)d->cond.if_size);
	free(d->bucket);
	free(d->key);
	free(d->path);
	free(d);
}

/* Conditional DELETE (If-Match, x-amz-if-match-last-modified-time,
 * x-amz-if-match-size): checked only when the object exists; a missing
 * object is a 204 whatever they say, as S3 answers. */
static int delete_check_conditions(const struct gw_del_cond *c, const struct gw_meta *m)
{
	char etag[S3_ETAG_MAX], *end;
	time_t t;

	gw_meta_etag(m, etag);	/* a multipart object's too */
	if (c->if_match && !etag_matches(c->if_match, etag))
		return GWE_PRECONDITION;
	if (c->if_mtime && (parse_http_date(c->if_mtime, &t) < 0 ||
			    (uint64_t)t != m->version / 1000000000))
		return GWE_PRECONDITION;
	if (c->if_size && (strtoull(c->if_size, &end, 10) != m->size ||
			   end == c->if_size || *end))
		return GWE_PRECONDITION;
	return 0;
}

static void odel_listed(void *arg, int err)
{
	struct gw_odel *d = arg;

	d->cb(d->arg, err);
	odel_free(d);
}

static void odel_on_deleted(struct gw_wset *w, int err, void *arg)
{
	struct gw_odel *d = arg;

	if (!err) {
		struct gw_list_obj o = { .key = d->key, .version = w->ts,
					 .tombstone = true };

		if (d->have_gm && d->gm.layout == GW_LAYOUT_EC)
			tail_gc(d->gw, d->pol, d->path, d->path_len, d->part_ec, d->gm.version,
				gw_meta_segments(&d->gm), strata_wall_ns());
		/* A multipart object: its parts' segments. */
		if (d->old_man.n)
			gw_manifest_gc(d->gw, d->pol, d->path, d->path_len, d->part_ec,
				       &d->old_man, strata_wall_ns());
		/* The head's tombstone is durable: the listing's follows. */
		err = gw_list_update(d->gw->lst, d->bucket, &o, odel_listed, d);
		if (err == 0)
			return;
	}
	odel_listed(d, err);
}

/* The head's tombstone (after the lookup, and for a multipart object the
 * manifest read). */
static void odel_go(void *arg)
{
	struct gw_odel *d = arg;
	uint8_t name[STO_NAME_HASH_LEN];
	struct gw_wset *w;

	gw_name_hash(d->path, d->path_len, name);
	w = gw_wset_new(&d->gw->st, d->gw->rep, d->part_rep, name, 0, true,
			strata_wall_ns(), odel_on_deleted, d);
	if (!w) {
		odel_listed(d, -ENOMEM);
		return;
	}
	for (unsigned i = 0; i < w->n; i++)
		w->f[i].frag = 0;
	gw_wset_start(w);
}

static void odel_on_head(const struct gw_hlook_result *res, void *arg)
{
	struct gw_odel *d = arg;
	int ret;

	if (res->status == 0 && gw_meta_decode(res->meta, res->meta_len, &d->gm) == 0)
		d->have_gm = true;
	if (d->have_gm && d->gm.kind == GW_META_OBJECT &&
	    (ret = delete_check_conditions(&d->cond, &d->gm)) < 0) {
		odel_listed(d, ret);
		return;
	}
	/* Its data's policy: without its ring the segments could not go, so
	 * the object stays (503) rather than leave them unreferenced. */
	if (d->have_gm && d->gm.kind == GW_META_OBJECT && d->gm.layout != GW_LAYOUT_INLINE) {
		d->pol = gw_meta_policy(d->gw, &d->gm, "delete", d->path);
		if (!d->pol) {
			odel_listed(d, GWE_POLICY_UNAVAILABLE);
			return;
		}
		d->part_ec = ring_part_of_path(d->pol->ring, d->path, d->path_len);
	}
	/* A multipart object's parts are named by its manifest: read it
	 * before the tombstone replaces it. */
	if (d->have_gm && d->gm.kind == GW_META_OBJECT &&
	    d->gm.layout == GW_LAYOUT_MULTIPART &&
	    gw_manifest_read_old(d->gw, d->path, d->path_len, d->part_rep, res,
				 &d->gm, &d->old_man, odel_go, d) == 0)
		return;
	odel_go(d);
}

int gw_obj_delete(struct gateway *gw, const char *owner, const char *bucket,
		  const char *key, const struct gw_del_cond *cond,
		  gw_list_done_fn cb, void *arg)
{
	struct gw_odel *d;
	size_t n = strlen(owner) + strlen(bucket) + strlen(key) + 3;
	uint8_t name[STO_NAME_HASH_LEN];
	int ret;

	if (n > RING_PATH_MAX || !*key)
		return S3E_TOO_LARGE;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->gw = gw;
	d->cb = cb;
	d->arg = arg;
	d->bucket = strdup(bucket);
	d->key = strdup(key);
	d->path = malloc(n + 1);
	if (cond) {
		d->cond.if_match = cond->if_match ? strdup(cond->if_match) : NULL;
		d->cond.if_mtime = cond->if_mtime ? strdup(cond->if_mtime) : NULL;
		d->cond.if_size = cond->if_size ? strdup(cond->if_size) : NULL;
	}
	if (!d->bucket || !d->key || !d->path ||
	    (cond && ((cond->if_match && !d->cond.if_match) ||
		      (cond->if_mtime && !d->cond.if_mtime) ||
		      (cond->if_size && !d->cond.if_size)))) {
		odel_free(d);
		return -ENOMEM;
	}
	d->path_len = (size_t)snprintf(d->path, n + 1, "/%s/%s/%s", owner, bucket, key);
	if (ring_part_of(gw->rep, owner, bucket, key, &d->part_rep) < 0) {
		odel_free(d);
		return S3E_TOO_LARGE;
	}
	gw_name_hash(d->path, d->path_len, name);
	ret = gw_hlook_start(&gw->st, gw->rep, d->part_rep, name, 0, odel_on_head, d);
	if (ret < 0)
		odel_free(d);
	return ret;
}

static void on_object_deleted(void *arg, int err)
{
	struct gw_req *r = arg;

	if (err)
		send_error(r, err == -EHOSTUNREACH ? GWE_SLOW_DOWN : err);
	else
		send_empty(r, 204);
	req_put(r);
}

static int delete_begin(struct gw_req *r)
{
	const struct gw_del_cond cond = {
		.if_match = http_req_header(r->hr, "if-match", NULL),
		.if_mtime = http_req_header(r->hr, "x-amz-if-match-last-modified-time", NULL),
		.if_size = http_req_header(r->hr, "x-amz-if-match-size", NULL),
	};
	int ret = gw_obj_delete(r->gw, r->owner, r->bucket, r->key, &cond,
				on_object_deleted, req_get(r));

	if (ret < 0)
		req_put(r);
	return ret;
}

/* ------------------------------------------------------------- dispatch */

/* A listing's XML (ListObjects, ListBuckets) or its error. */
static void on_listing(void *arg, int err, struct s3_buf *xml)
{
	struct gw_req *r = arg;

	if (err)
		send_error(r, err == -EINVAL ? GWE_INVALID_ARGUMENT :
			   err == -ENOENT ? GWE_NO_SUCH_BUCKET : err);
	else if (r->hr && !r->responded) {
		r->responded = true;
		resp_common(r);
		http_resp_simple(r->hr, 200, "application/xml", xml->p, xml->len);
	}
	req_put(r);
}

static void on_bucket_emptiness(void *arg, int err)
{
	struct gw_req *r = arg;

	if (!err)
		err = bucket_write(r, true);
	if (err)
		send_error(r, err == -ENOTEMPTY ? GWE_NOT_EMPTY : err);
	req_put(r);
}

/* CreateBucket's x-strata-storage-policy (else the default policy) into
 * r->wpol: 0 or GWE_NO_SUCH_POLICY. */
static int create_bucket_policy(struct gw_req *r)
{
	size_t n;
	const char *v = http_req_header(r->hr, GW_POLICY_HDR, &n);

	r->wpol = v ? policy_by_name(r->gw, v, n) : r->gw->def_pol;
	if (!r->wpol) {
		log_info("CreateBucket %s: no storage policy %.*s", r->bucket, (int)n, v);
		return GWE_NO_SUCH_POLICY;
	}
	return 0;
}

/* CreateBucket's LocationConstraint: REGION, or REGION:POLICY as Ceph RGW
 * names a placement (REGION may be empty). Sets r->location (the region
 * part) and, with a policy, r->wpol: 0, S3E_INVALID_LOCATION,
 * GWE_NO_SUCH_POLICY_LOC or GWE_POLICY_CONFLICT (the header named
 * another). */
static int create_bucket_location(struct gw_req *r, const char *loc)
{
	const char *colon = strchr(loc, ':');
	size_t rlen = colon ? (size_t)(colon - loc) : strlen(loc);

	if (rlen && (strlen(r->gw->cfg.region) != rlen || memcmp(loc, r->gw->cfg.region, rlen)))
		return S3E_INVALID_LOCATION;
	if (colon) {
		const struct gw_policy *p = policy_by_name(r->gw, colon + 1, strlen(colon + 1));

		if (!p) {
			log_info("CreateBucket %s: no storage policy %s", r->bucket, colon + 1);
			return GWE_NO_SUCH_POLICY_LOC;
		}
		if (http_req_header(r->hr, GW_POLICY_HDR, NULL) && p != r->wpol)
			return GWE_POLICY_CONFLICT;
		r->wpol = p;
	}
	snprintf(r->location, sizeof(r->location), "%.*s", (int)rlen, loc);
	return 0;
}

/* Called once the bucket is known (r->owner set, "" when it does not exist
 * and the operation creates it). */
static void dispatch(struct gw_req *r)
{
	int ret = 0;

	if (!r->hr)
		return;
	if (r->anonymous) {
		send_error(r, S3E_ACCESS_DENIED);
		return;
	}
	if (r->op != OP_CREATE_BUCKET && strcmp(r->owner, r->account)) {
		send_error(r, S3E_ACCESS_DENIED);
		return;
	}
	if (gw_tier_dispatch(r, dispatch))
		return;
	switch (r->op) {
	case OP_CREATE_BUCKET:
		if (r->owner[0]) {
			/* us-east-1 answers its owner's re-create with 200
			 * (the bucket is left as it is); other regions 409. */
			if (!strcmp(r->owner, r->account) &&
			    !strcmp(r->gw->cfg.region, "us-east-1")) {
				send_empty(r, 200);
				return;
			}
			send_error(r, strcmp(r->owner, r->account) ? GWE_BUCKET_EXISTS :
				   GWE_BUCKET_OWNED);
			return;
		}
		ret = acl_headers_check(r, GWE_BUCKET_ACL_OWNERSHIP);
		if (ret < 0)
			break;
		ret = create_bucket_policy(r);
		if (ret < 0)
			break;
		http_req_resume(r->hr);		/* the body: CreateBucketConfiguration */
		return;
	case OP_HEAD_BUCKET:
		if (r->wpol)
			http_resp_header(r->hr, GW_POLICY_HDR, r->wpol->name);
		send_empty(r, 200);
		return;
	case OP_DELETE_BUCKET:
		http_req_resume(r->hr);		/* no body (see OP_LIST_OBJECTS) */
		ret = gw_list_bucket_empty(r->gw->lst, r->bucket, on_bucket_emptiness,
					   req_get(r));
		if (ret < 0)
			req_put(r);
		break;
	case OP_BUCKET_LOCATION:
		send_location(r);
		return;
	case OP_BUCKET_VERSIONING:
		send_xml_empty(r, "VersioningConfiguration");
		return;
	case OP_GET_ACL:
	case OP_PUT_ACL:
		if (r->key) {
			ret = get_begin(r);
			break;
		}
		if (r->op == OP_GET_ACL)
			send_acl(r);
		else
			put_acl(r);
		return;
	case OP_DELETE_OBJECTS:
		http_req_resume(r->hr);		/* the body: the keys */
		return;
	case OP_LIST_OBJECTS: {
		size_t qn;
		const char *q = http_req_query(r->hr, &qn);

		/* No body: let the parser see the request's end, or answering
		 * a paused request closes the keep-alive connection. */
		http_req_resume(r->hr);

		ret = gw_list_objects(r->gw->lst, r->bucket, r->owner, q, q ? qn : 0,
				      r->tier_pol, on_listing, req_get(r));
		if (ret < 0)
			req_put(r);
		if (ret == -EINVAL)
			ret = GWE_INVALID_ARGUMENT;
		break;
	}
	case OP_PUT_OBJECT:
		ret = acl_headers_check(r, GWE_ACL_NOT_SUPPORTED);
		if (ret == 0)
			ret = put_begin(r);
		if (ret == 0) {
			http_req_resume(r->hr);
			return;
		}
		break;
	case OP_GET_OBJECT:
	case OP_HEAD_OBJECT:
	case OP_GET_ATTRIBUTES:
		ret = get_begin(r);
		break;
	case OP_DELETE_OBJECT:
		ret = delete_begin(r);
		break;
	case OP_COPY_OBJECT:
		/* ACL headers as on a PUT (the new object's ACL) */
		ret = acl_headers_check(r, GWE_ACL_NOT_SUPPORTED);
		if (ret == 0)
			ret = gw_copy_begin(r);
		break;
	case OP_CREATE_MPU:
		ret = acl_headers_check(r, GWE_ACL_NOT_SUPPORTED);
		if (ret == 0)
			ret = gw_mpu_dispatch(r);
		break;
	case OP_UPLOAD_PART: case OP_UPLOAD_PART_COPY:
	case OP_COMPLETE_MPU: case OP_ABORT_MPU: case OP_LIST_PARTS: case OP_LIST_MPU:
		ret = gw_mpu_dispatch(r);
		break;
	case OP_GET_OBJ_TAGGING: case OP_PUT_OBJ_TAGGING: case OP_DELETE_OBJ_TAGGING:
		ret = gw_tagging_dispatch(r);
		break;
	default:
		ret = GWE_NOT_IMPLEMENTED;
		break;
	}
	if (ret < 0)
		send_error(r, ret);
}

static void on_request(struct http_req *hr)
{
	struct gateway *gw = http_req_server_data(hr);
	struct gw_req *r = calloc(1, sizeof(*r));
	int ret;

	if (!r) {
		http_resp_simple(hr, 503, NULL, NULL, 0);
		return;
	}
	r->gw = gw;
	r->hr = hr;
	r->refs = 1;
	for (unsigned i = 0; i < GW_STORE_RINGS; i++) {
		r->pin[2 * i] = ring_get(gw->st.cur[i]);
		r->pin[2 * i + 1] = ring_get(gw->st.prev[i]);
	}
	r->length = -1;
	snprintf(r->id, sizeof(r->id), "%016" PRIX64, ++gw->seq ^ strata_wall_ns() << 20);
	r->read_turn = (unsigned)gw->seq;
	http_req_set_data(hr, r);
	ret = route(r);
	if (ret == 0 && r->op == OP_OPTIONS)
		ret = http_req_header(hr, "origin", NULL) ? GWE_CORS_FORBIDDEN :
		      GWE_CORS_NO_ORIGIN;
	if (ret == 0)
		ret = authenticate(r);
	if (ret < 0) {
		send_error(r, ret);
		return;
	}
	if (r->anonymous && !r->bucket) {
		send_error(r, S3E_ACCESS_DENIED);
		return;
	}
	if (r->op == OP_TIER_ADMIN) {
		gw_tier_admin(r);
		return;
	}
	if (r->op == OP_LIST_BUCKETS) {
		size_t qn;
		const char *q = http_req_query(hr, &qn);

		ret = gw_list_buckets(gw->lst, r->account, q, q ? qn : 0, on_listing,
				      req_get(r));
		if (ret < 0) {
			req_put(r);
			send_error(r, ret == -EINVAL ? GWE_INVALID_ARGUMENT : ret);
		}
		return;
	}
	if (r->op == OP_UNSUPPORTED) {
		send_error(r, GWE_NOT_IMPLEMENTED);
		return;
	}
	if (sse_requested(r)) {
		send_error(r, GWE_SSE_NOT_IMPLEMENTED);
		return;
	}
	if (!bucket_name_valid(r->bucket)) {
		send_error(r, r->op == OP_CREATE_BUCKET ? GWE_INVALID_BUCKET :
			   GWE_NO_SUCH_BUCKET);
		return;
	}
	/* The body waits until the bucket is known. */
	http_req_pause(hr);
	ret = bucket_lookup(r, r->op != OP_CREATE_BUCKET && r->op != OP_DELETE_BUCKET);
	if (ret < 0)
		send_error(r, ret);
}

static int small_sink(struct gw_req *r, const uint8_t *p, size_t n)
{
	return s3_buf_add(&r->small, p, n);
}

static int on_body(struct http_req *hr, const void *data, size_t len)
{
	struct gw_req *r = http_req_data(hr);
	int ret;

	if (!r || r->responded || r->body_err)
		return 0;
	if (r->op == OP_PUT_OBJECT || r->op == OP_UPLOAD_PART) {
		ret = body_feed(r, data, len, put_sink);
		if (ret < 0) {
			r->body_err = ret;
			put_fail(r, ret == -E2BIG ? S3E_TOO_LARGE : ret);
		}
		return 0;
	}
	if (r->op == OP_CREATE_BUCKET || r->op == OP_COMPLETE_MPU ||
	    r->op == OP_DELETE_OBJECTS || r->op == OP_PUT_LIFECYCLE ||
	    r->op == OP_PUT_OBJ_TAGGING || r->op == OP_PUT_BUCKET_TAGGING) {
		if (!r->dg_init && (ret = body_begin(r)) < 0) {
			r->body_err = ret;
			return 0;
		}
		r->small.max = S3_XML_MAX_BODY;
		ret = body_feed(r, data, len, small_sink);
		if (ret < 0)
			r->body_err = ret == -E2BIG ? S3E_TOO_LARGE : ret;
	}
	return 0;
}

static void on_body_end(struct http_req *hr)
{
	struct gw_req *r = http_req_data(hr);
	char *loc = NULL;
	int ret;

	if (!r || r->responded)
		return;
	if (r->op == OP_PUT_OBJECT || r->op == OP_UPLOAD_PART) {
		put_body_end(r);
		return;
	}
	if (r->op != OP_CREATE_BUCKET && r->op != OP_COMPLETE_MPU &&
	    r->op != OP_DELETE_OBJECTS && r->op != OP_PUT_LIFECYCLE &&
	    r->op != OP_PUT_OBJ_TAGGING && r->op != OP_PUT_BUCKET_TAGGING)
		return;
	ret = r->body_err;
	if (!ret && !r->dg_init)
		ret = body_begin(r);
	if (!ret)
		ret = body_finish(r);
	if (!ret && r->op == OP_COMPLETE_MPU) {
		gw_mpu_complete_body(r);
		return;
	}
	if (r->op == OP_PUT_LIFECYCLE || r->op == OP_PUT_BUCKET_TAGGING ||
	    r->op == OP_PUT_OBJ_TAGGING) {
		if (ret < 0)
			send_error(r, ret);
		else if (r->op != OP_PUT_OBJ_TAGGING)
			gw_tier_body_end(r);
		else
			gw_tagging_body_end(r);
		return;
	}
	if (r->op == OP_DELETE_OBJECTS) {
		if (!ret) {
			ret = gw_delete_objects(r->gw, r->owner, r->bucket, r->small.p,
						r->small.len, on_listing, req_get(r));
			if (ret < 0)
				req_put(r);
		}
		if (ret < 0)
			send_error(r, ret);
		return;
	}
	if (!ret && r->small.len) {
		ret = s3_xml_parse_create_bucket(r->small.p, r->small.len, &loc);
		if (!ret && loc)
			ret = create_bucket_location(r, loc);
		free(loc);
	}
	if (!ret)
		ret = bucket_write(r, false);
	if (ret < 0)
		send_error(r, ret);
}

static void on_done(struct http_req *hr, int err)
{
	struct gw_req *r = http_req_data(hr);

	(void)err;
	if (!r)
		return;
	r->hr = NULL;
	for (int i = 0; i < 2; i++)
		if (r->slots[i].r)
			slot_abandon(&r->slots[i]);
	req_put(r);
}

/* ---------------------------------------------- for gw_mpu.c, gw_copy.c */

struct gw_req *gw_req_get(struct gw_req *r) { return req_get(r); }
void gw_req_put(struct gw_req *r) { req_put(r); }
void gw_send_error(struct gw_req *r, int err) { send_error(r, err); }
void gw_err_describe(int err, int *status, const char **code, const char **msg)
{
	gw_err_info(err, status, code, msg);
}
void gw_send_empty(struct gw_req *r, int status) { send_empty(r, status); }
void gw_resp_common(struct gw_req *r) { resp_common(r); }
int gw_object_path(struct gw_req *r) { return object_path(r); }
int gw_put_begin(struct gw_req *r) { return put_begin(r); }
int gw_put_sink(struct gw_req *r, const uint8_t *p, size_t n) { return put_sink(r, p, n); }
void gw_put_maybe_head(struct gw_req *r) { put_maybe_head(r); }
void gw_put_fail(struct gw_req *r, int err) { put_fail(r, err); }
void gw_get_pump(struct gw_req *r) { get_pump(r); }

bool gw_query_has(const char *q, size_t qn, const char *name, const char **value,
		  size_t *vlen)
{
	return query_has(q, qn, name, value, vlen);
}

int gw_collect_meta(struct gw_req *r, struct gw_meta *m)
{
	return put_collect_meta(r, m);
}

void gw_tail_gc(struct gateway *gw, const struct gw_policy *pol, const char *path,
		size_t plen, uint32_t part, uint64_t version, uint64_t nsegs, uint64_t ts)
{
	tail_gc(gw, pol, path, plen, part, version, nsegs, ts);
}

void gw_send_xml(struct gw_req *r, int status, const struct s3_buf *b)
{
	if (!r->hr || r->responded)
		return;
	r->responded = true;
	resp_common(r);
	http_resp_simple(r->hr, status, b ? "application/xml" : NULL,
			 b ? b->p : NULL, b ? b->len : 0);
}

/* ------------------------------------------------------------ lifecycle */

/* Ring files and their reloading (a rebalance: `strata-admin ring push`
 * installs a newer ring, keeping the one it replaces as FILE.prev). Checked
 * once a second; a newer ring of the same cluster takes over for new
 * requests at once, the one it replaces stays the previous placement that
 * reads consult until FILE.prev is removed. A replaced ring is let go of
 * (ring_put) when it stops being the previous placement; requests in flight
 * hold references to the rings they began with (gw_req.pin), and a ring
 * keeps the one that replaced it alive (ring_set_successor), so a request
 * of any length never borrows devices from a freed ring. */
#define GW_RING_WATCH_MS	1000

struct gw_ring_file {
	char path[4096];
	struct stat st;
};

struct gw_ring_files {
	struct gw_ring_file rep;		/* rep3.ring */
	struct gw_ring_file pol[GW_MAX_POLICIES];	/* gw->pol[i]'s */
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The store's rings: [0] rep3, [1 + i] policy i's. */
static void rings_publish(struct gateway *gw)
{
	memset(gw->st.cur, 0, sizeof(gw->st.cur));
	memset(gw->st.prev, 0, sizeof(gw->st.prev));
	gw->st.cur[0] = gw->rep;
	gw->st.prev[0] = gw->rep_prev;
	for (unsigned i = 0; i < gw->npol; i++) {
		gw->st.cur[1 + i] = gw->pol[i].ring;
		gw->st.prev[1 + i] = gw->pol[i].prev;
	}
	if (gw->lst)
		gw_listing_set_ring(gw->lst, gw->rep);
}

/* FILE.prev, when it is the placement just before cur (a rebalance the
 * gateway starts in the middle of), else NULL. */
static struct ring *load_prev(const char *path, const struct ring *cur)
{
	char prev[4200];
	struct ring *p;

	snprintf(prev, sizeof(prev), "%s.prev", path);
	if (access(prev, F_OK) < 0 || ring_load(prev, &p) < 0)
		return NULL;
	if (ring_check_successor(p, cur) < 0) {
		ring_free(p);
		return NULL;
	}
	log_info("ring %s: v%llu, the placement before v%llu: reads consult it", prev,
		 (unsigned long long)ring_version(p), (unsigned long long)ring_version(cur));
	return p;
}

static void ring_check_file(struct gateway *gw, struct gw_ring_file *f, struct ring **cur,
			    struct ring **prev)
{
	char pp[4200];
	struct stat st;
	struct ring *next;
	int ret;

	snprintf(pp, sizeof(pp), "%s.prev", f->path);
	if (*prev && access(pp, F_OK) < 0 && errno == ENOENT) {
		/* the operator settled the rebalance: one placement again */
		log_info("ring %s: previous placement v%llu dropped", f->path,
			 (unsigned long long)ring_version(*prev));
		ring_put(*prev);
		*prev = NULL;
		rings_publish(gw);
	}
	if (stat(f->path, &st) < 0 || same_file(&st, &f->st))
		return;
	f->st = st;		/* logged once per change of the file */
	ret = ring_load(f->path, &next);
	if (ret < 0) {
		log_warn("ring %s changed but does not load: %s (keeping the ring in use)",
			 f->path, ring_strerror(ret));
		return;
	}
	/* (the successor check keeps an EC ring's policy, k+m and index) */
	ret = ring_check_successor(*cur, next);
	if (ret < 0) {
		log_err("ring %s v%llu refused (v%llu in use): %s", f->path,
			(unsigned long long)ring_version(next),
			(unsigned long long)ring_version(*cur), ring_strerror(ret));
		ring_free(next);
		return;
	}
	log_info("ring %s: v%llu in use (was v%llu): writes go to the new placement, "
		 "reads consult the previous one too", f->path,
		 (unsigned long long)ring_version(next), (unsigned long long)ring_version(*cur));
	ring_put(*prev);
	ring_set_successor(*cur, next);	/* (a ring is replaced once) */
	*prev = *cur;
	*cur = next;
	rings_publish(gw);
}

static void on_ring_watch(uv_timer_t *t)
{
	struct gateway *gw = t->data;

	ring_check_file(gw, &gw->rfiles->rep, &gw->rep, &gw->rep_prev);
	for (unsigned i = 0; i < gw->npol; i++)
		ring_check_file(gw, &gw->rfiles->pol[i], &gw->pol[i].ring, &gw->pol[i].prev);
}

static int load_ring(struct gw_ring_file *f, const char *dir, const char *name,
		     struct ring **out, struct ring **prev)
{
	int ret;

	snprintf(f->path, sizeof(f->path), "%s/%s.ring", dir, name);
	if (stat(f->path, &f->st) < 0)
		memset(&f->st, 0, sizeof(f->st));
	ret = ring_load(f->path, out);
	if (ret < 0) {
		log_err("ring %s: %s", f->path, ring_strerror(ret));
		return ret;
	}
	*prev = load_prev(f->path, *out);
	return 0;
}

static int ring_file_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return n > 5 && n - 5 < sizeof(((struct gw_policy *)0)->name) &&
	       !strcmp(d->d_name + n - 5, ".ring") && strcmp(d->d_name, "rep3.ring");
}

/* Every EC ring of dir (NAME.ring but rep3.ring) is a storage policy;
 * replica rings other than rep3 are not the gateway's. Two EC rings with
 * one index would name each other's fragments: refused. */
static int policies_load(struct gateway *gw, const char *dir)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, ring_file_filter, alphasort), ret = 0;

	if (n < 0) {
		log_err("rings %s: %s", dir, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < n && !ret; i++) {
		struct gw_policy *p = &gw->pol[gw->npol];
		const struct gw_policy *dup;
		const struct ring_policy *rp;
		size_t len = strlen(ents[i]->d_name) - 5;

		if (gw->npol == GW_MAX_POLICIES) {
			log_err("rings %s: more than %u EC rings", dir, GW_MAX_POLICIES);
			ret = -E2BIG;
			break;
		}
		memcpy(p->name, ents[i]->d_name, len);
		p->name[len] = '\0';
		ret = load_ring(&gw->rfiles->pol[gw->npol], dir, p->name, &p->ring, &p->prev);
		if (ret < 0)
			break;
		rp = ring_policy(p->ring);
		if (rp->type != RING_POLICY_EC) {
			log_info("ring %s: not EC, not a storage policy", ents[i]->d_name);
			ring_free(p->prev);
			ring_free(p->ring);
			memset(p, 0, sizeof(*p));
			continue;
		}
		p->index = rp->index;
		p->k = rp->ec_k;
		p->m = rp->ec_m;
		dup = gw_policy_by_index(gw, p->index);	/* among those before */
		if (dup) {
			log_err("rings %s: %s.ring and %s.ring both have policy index %u",
				dir, dup->name, p->name, p->index);
			ret = -EINVAL;
		}
		gw->npol++;	/* (freed with the others) */
		ret = ret ?: gw_ec_get(p->k, p->m, &p->ecc);
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return ret;
}

static void rings_free(struct gateway *gw)
{
	free(gw->rfiles);
	ring_free(gw->rep_prev);
	ring_free(gw->rep);
	for (unsigned i = 0; i < gw->npol; i++) {
		if (gw->pol[i].ecc)
			gw_ec_put(gw->pol[i].ecc);
		ring_free(gw->pol[i].prev);
		ring_free(gw->pol[i].ring);
	}
}

int gw_start(uv_loop_t *loop, const struct gw_config *cfg, struct gateway **out)
{
	struct gateway *gw = calloc(1, sizeof(*gw));
	struct http_config hc;
	struct http_handler h = { on_request, on_body, on_body_end, on_done, NULL };
	struct s3_auth_config ac = { 0 };
	int ret;

	if (!gw)
		return -ENOMEM;
	gw->loop = loop;
	gw->cfg = *cfg;
	gw->rfiles = calloc(1, sizeof(*gw->rfiles));
	if (!gw->rfiles) {
		ret = -ENOMEM;
		goto out_free;
	}
	ret = load_ring(&gw->rfiles->rep, cfg->rings, "rep3", &gw->rep, &gw->rep_prev);
	if (ret < 0)
		goto out_free;
	if (ring_policy(gw->rep)->type != RING_POLICY_REPLICA) {
		log_err("rep3.ring must be replicated");
		ret = -EINVAL;
		goto out_free;
	}
	ret = policies_load(gw, cfg->rings);
	if (ret < 0)
		goto out_free;
	gw->def_pol = policy_by_name(gw, cfg->policy, strlen(cfg->policy));
	if (!gw->def_pol) {
		log_err("%s/%s.ring: no such EC ring (--policy)", cfg->rings, cfg->policy);
		ret = -EINVAL;
		goto out_free;
	}
	ret = s3_creds_load(cfg->credentials, &gw->creds);
	if (ret < 0) {
		log_err("credentials %s: %s", cfg->credentials, strerror(-ret));
		goto out_free;
	}
	ac.region = cfg->region;
	ac.lookup = s3_creds_lookup;
	ac.lookup_arg = gw->creds;
	ret = s3_auth_new(&ac, &gw->auth);
	if (ret < 0)
		goto out_free;
	{
		/* A connect is a round trip: as long as a read may take. */
		struct gw_pool_config pc = { cfg->down_ms, cfg->read_deadline_ms,
					     cfg->hung_ms, cfg->node_conns };

		ret = gw_pool_new(loop, &pc, &gw->pool);
	}
	if (ret < 0)
		goto out_free;
	gw->st = (struct gw_store){ .loop = loop, .pool = gw->pool,
				    .read_deadline_ms = cfg->read_deadline_ms,
				    .write_deadline_ms = cfg->write_deadline_ms };
	rings_publish(gw);
	{
		struct gw_list_config lc = {
			.shard_max = cfg->shard_max,
			.split_wait_ms = cfg->split_wait_ms ? cfg->split_wait_ms :
					 2000 + cfg->write_deadline_ms,
		};

		ret = gw_listing_new(&gw->st, gw->rep, &lc, &gw->lst);
		if (ret < 0)
			goto out_free;
	}
	ret = gw_tier_new(gw, &gw->tier);
	if (ret < 0)
		goto out_free;
	http_config_init(&hc);
	hc.lim.max_body = cfg->max_object + (cfg->max_object >> 4) + (1 << 20);
	h.opaque = gw;
	ret = http_server_new(loop, &hc, &h, &gw->srv);
	if (ret < 0)
		goto out_free;
	ret = http_server_listen(gw->srv, cfg->listen);
	if (ret < 0) {
		log_err("listen %s: %s", cfg->listen, strerror(-ret));
		http_server_free(gw->srv);
		gw->srv = NULL;
		goto out_free;
	}
	log_info("S3 on %s (port %d), rep3.ring, %u storage policies (default %s: EC %u+%u, "
		 "index %u), %zu users", cfg->listen, http_server_port(gw->srv), gw->npol,
		 gw->def_pol->name, gw->def_pol->k, gw->def_pol->m, gw->def_pol->index,
		 s3_creds_count(gw->creds));
	for (unsigned i = 0; i < gw->npol; i++)
		log_info("storage policy %s: index %u, EC %u+%u", gw->pol[i].name,
			 gw->pol[i].index, gw->pol[i].k, gw->pol[i].m);
	uv_timer_init(loop, &gw->ring_watch);
	gw->ring_watch.data = gw;
	uv_timer_start(&gw->ring_watch, on_ring_watch, GW_RING_WATCH_MS, GW_RING_WATCH_MS);
	gw_tier_start(gw->tier);
	*out = gw;
	return 0;

out_free:
	gw_tier_free(gw->tier);
	gw_listing_free(gw->lst);
	if (gw->pool)
		gw_pool_free(gw->pool);
	s3_auth_free(gw->auth);
	if (gw->creds)
		s3_creds_free(gw->creds);
	rings_free(gw);
	free(gw);
	return ret;
}

int gw_port(const struct gateway *gw)
{
	return http_server_port(gw->srv);
}

static void on_drained(uv_handle_t *h)
{
	struct gateway *gw = h->data;

	gw_tier_free(gw->tier);
	gw_listing_free(gw->lst);
	gw_pool_free(gw->pool);
	gw_buf_cache_free(&gw->st);
	s3_auth_free(gw->auth);
	s3_creds_free(gw->creds);
	rings_free(gw);
	if (gw->stop_done)
		gw->stop_done(gw->stop_arg);
	free(gw);
}

/* Write sets, lookups and reads still live (tail deletes, hedged reads on a
 * slow node) finish or fail fast (the pool refuses new work); then free. */
static void on_drain_tick(uv_timer_t *t)
{
	struct gateway *gw = t->data;

	if (gw->st.live && ++gw->drain_ticks < 500)
		return;
	if (gw->st.live)
		log_warn("%u storage operations still pending at exit", gw->st.live);
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, on_drained);
}

static void on_server_down(struct http_server *srv, void *arg)
{
	struct gateway *gw = arg;

	http_server_free(srv);
	uv_close((uv_handle_t *)&gw->ring_watch, NULL);
	gw_tier_close(gw->tier);
	gw_listing_close(gw->lst);
	gw_pool_close(gw->pool);
	uv_timer_init(gw->loop, &gw->drain);
	gw->drain.data = gw;
	uv_timer_start(&gw->drain, on_drain_tick, 0, 10);
}

void gw_stop(struct gateway *gw, void (*done)(void *arg), void *arg)
{
	gw->stop_done = done;
	gw->stop_arg = arg;
	if (http_server_shutdown(gw->srv, gw->cfg.grace_ms, on_server_down, gw) < 0)
		log_warn("already stopping");
}
