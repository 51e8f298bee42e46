/* api/gateway.h: strata-gateway, the S3 daemon; the only header other folders
 * include.
 *
 * A gateway serves S3 (path-style and virtual-host style) over HTTP/1.1 on a
 * libuv loop and keeps objects on storage nodes placed by the rings in
 * --rings (rep3.ring and an EC ring per storage policy: ec42.ring, ...),
 * as docs/gateway.md describes. Errors are 0
 * or a negative errno.
 */
#ifndef STRATA_GATEWAY_H
#define STRATA_GATEWAY_H

#include <stdint.h>
#include <uv.h>

struct gw_config {
	const char *listen;		/* "127.0.0.1:8480" */
	const char *rings;		/* folder with rep3.ring and EC NAME.ring files */
	const char *credentials;	/* AWS shared-credentials file */
	const char *region;		/* "us-east-1" */
	const char *domain;		/* virtual hosts: BUCKET.domain ("localhost") */
	const char *policy;		/* default storage policy (EC ring): "ec42" */
	uint64_t small_max;		/* objects up to this are replicated (64 KiB) */
	uint32_t unit;			/* EC bytes per fragment per segment (1 MiB) */
	uint32_t read_deadline_ms;	/* a fragment slower than this: use parity */
	uint32_t write_deadline_ms;	/* a fragment PUT slower than this: handoff */
	uint32_t down_ms;		/* a failed node is skipped this long */
	uint32_t node_conns;		/* connections per node for reads, and as
					 * many for writes (2) */
	uint32_t hung_ms;		/* silent this long under a read: hung (3 s) */
	uint32_t grace_ms;		/* SIGTERM: in-flight requests get this long */
	uint64_t max_object;		/* largest PUT (5 GiB) */
	uint64_t shard_max;		/* listing entries per shard before a split (1M) */
	uint32_t split_wait_ms;		/* split protocol wait (0: 2 s + write deadline) */
	const char *admin_user;		/* may GET /_strata/tiers ("default") */
	uint32_t lifecycle_day_s;	/* a lifecycle "day" (86400; tests scale it) */
	uint32_t tier_pass_rate;	/* policy passes: objects/s per pass (1000) */
	uint32_t tier_pass_check_ms;	/* unfinished passes looked for (10000) */
};

/* Defaults as in the comments above. */
void gw_config_init(struct gw_config *cfg);
/* Sets one key ("listen", "small-max", ...; gw_config_help) from text; the
 * string is borrowed. 0, -ENOENT (unknown key) or -EINVAL (bad value). */
int gw_config_set(struct gw_config *cfg, const char *key, const char *value);
/* Checks the whole: 0 or -EINVAL (a message is logged). */
int gw_config_complete(const struct gw_config *cfg);
extern const char gw_config_help[];

struct gateway;

/* Loads the rings and credentials, listens. 0 or -errno (logged). */
int gw_start(uv_loop_t *loop, const struct gw_config *cfg, struct gateway **out);
/* The bound port (listen with port 0 picks one). */
int gw_port(const struct gateway *gw);
/* Graceful stop: no new requests, in-flight ones get grace_ms, storage
 * connections close; done(arg) runs after everything is released and gw is
 * freed. */
void gw_stop(struct gateway *gw, void (*done)(void *arg), void *arg);

#endif
