/* storage/repair.h: the repair engine behind strata-repaird (one per storage
 * node) and `strata-bench repair`. Not part of the client API (storage.h):
 * only the daemon, the bench and tests include it.
 *
 * The engine makes its own node's placements whole (a pull model): per
 * partition it compares the LIST suffix hashes of every node placing the
 * partition in any ring, lists the suffixes that changed, and for each name
 *  - replicated (a rep3 record: a name with only fragment 0): copies the
 *    newest version, or tombstone, from a peer when the local copy is older
 *    or missing;
 *  - erasure-coded (a name with fragments >= 1 among its placements):
 *    rebuilds each missing local fragment from k survivors of the newest
 *    version with ISA-L, checked against a (k+1)-th survivor when there is
 *    one, or writes the newest tombstone. Several EC rings (policies) share
 *    the nodes' key space: a fragment's number says its policy
 *    (ring_frag_policy), and a name is planned against that policy's ring
 *    only; a policy with no ring here is left alone (counted: no_ring);
 *  - handoff data (a name the local node holds for a partition placement
 *    it is not: written there while a primary was down, or a placement a
 *    rebalance moved away): pushes it to the primaries that lack it, and
 *    once they hold it drops it here with a PURGE conditional on its
 *    timestamp.
 *  - listings (rep3 primaries): pulls the entries of every listing a peer
 *    primary (or, during a rebalance, a previous holder) holds differently
 *    (LISTING_IDS counts and hash), newest wins; a node that holds listings
 *    of a partition it no longer places pushes them to the primaries and
 *    then drops them.
 * It only ever writes versions at their original timestamp, so a node's
 * newest-wins rule keeps anything newer (a live newer version is never
 * deleted, a deleted object never comes back).
 *
 * Everything runs on the caller's libuv loop; repair_* must be called there.
 */
#ifndef STRATA_STORAGE_REPAIR_H
#define STRATA_STORAGE_REPAIR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct ring;

#define REPAIR_MAX_RINGS	8

struct repair_cfg {
	const char *node_id;		/* "host:port" as the rings name it */
	/* At most one replica ring and any number of EC rings, each EC ring
	 * with its own policy index; borrowed, they outlive the engine. */
	struct ring *rings[REPAIR_MAX_RINGS];
	unsigned nrings;
	/* The placement before rings[g] (a rebalance under way), or NULL;
	 * borrowed. Its holders are asked too, and a placement that moved is
	 * left to the old holder's push (see repair_set_ring). */
	struct ring *prev[REPAIR_MAX_RINGS];
	double max_mbps;		/* repair bytes (read + written) per s; 0 = no cap */
	double max_ops;			/* repair requests per s; 0 = no cap */
	unsigned parallel;		/* partitions compared at once (default 4) */
	unsigned inflight;		/* repairs running at once (default 16) */
	uint64_t max_fragment;		/* bigger fragments are skipped (default 256 MiB) */
	unsigned interval_s;		/* pause between passes (default 30) */
	bool once;			/* one pass, then done_cb */
	bool dry_run;			/* plan only: count what would be repaired */
	const char *status_path;	/* JSON progress file (NULL: none) */
};

/* Progress of the current pass and totals. */
struct repair_stats {
	uint64_t pass;			/* passes started */
	bool running;			/* a pass is under way */
	uint32_t parts_total, parts_done;
	uint64_t queued, inflight;	/* repairs waiting, running */
	uint64_t queued_bytes;
	/* this pass so far */
	uint64_t suffixes_listed, suffixes_skipped;
	uint64_t planned;		/* repairs found (queued, or counted: dry_run) */
	uint64_t repaired, rebuilt, copied, tombstones, pushed;
	uint64_t purged;		/* copies dropped once their placement had them */
	uint64_t handoffs;		/* entries held here for other nodes' placements */
	uint64_t listings;		/* listings found behind a peer's here (pulled,
					 * or in a dry run: missing or fewer keys) */
	uint64_t listings_pulled;	/* (listing, peer) pairs that differed: pulled */
	uint64_t listing_entries;	/* listing entries applied here */
	uint64_t listings_pushed;	/* (listing, primary) pairs pushed from here
					 * (a listing this node no longer places) */
	uint64_t listings_dropped;	/* such listings dropped once pushed */
	uint64_t failed, unrecoverable, unreachable, skipped;
	uint64_t no_ring;		/* names of an EC policy with no ring here:
					 * left alone (logged once per pass) */
	uint64_t awaiting;		/* moved placements left to the old holder's push */
	uint64_t push_planned;		/* pushes found (data here another node places) */
	uint64_t bytes_read, bytes_written;
	uint64_t pass_start_ns;		/* strata_now_ns() */
	/* the last finished pass */
	uint64_t last_pass_wall_start, last_pass_wall_end;	/* ns since the epoch */
	uint64_t last_planned, last_repaired, last_failed, last_unrecoverable;
	uint64_t last_unreachable, last_awaiting, last_push_planned;
	uint64_t last_bytes_written;
	uint64_t last_handoffs, last_purged, last_listings, last_no_ring;
	double last_seconds;
	bool last_clean;		/* nothing to repair, no listing behind, every
					 * peer answered */
	/* since start */
	uint64_t total_repaired, total_bytes_written;
	uint64_t total_rebuilt, total_copied, total_tombstones, total_pushed;
	uint64_t total_pushed_bytes;	/* data pushed to primaries: handoffs, rebalance */
	uint64_t total_purged, total_listing_entries, total_listings_dropped;
	uint64_t ring_changes;		/* rings switched by repair_set_ring */
	uint64_t ring_pass;		/* the first pass on the rings in use now */
};

struct repair;

/* 0, -EINVAL (node_id in no ring, no ring, two replica rings, two EC rings
 * of the same policy index), -ENOMEM. (An EC 1+m ring of index 0, whose
 * last surviving fragment 0 could not be told from a replica, is no valid
 * ring: ring_load and the builder refuse it.) */
int repair_new(uv_loop_t *loop, const struct repair_cfg *cfg, struct repair **out);
/* Starts the first pass now; with cfg->once, done runs when it ends. */
void repair_start(struct repair *r, void (*done)(void *arg), void *arg);
/* Stops: no new work; running requests finish or fail; then done(arg) and
 * the engine may be freed with repair_free. */
void repair_stop(struct repair *r, void (*done)(void *arg), void *arg);
void repair_free(struct repair *r);
void repair_get_stats(const struct repair *r, struct repair_stats *st);

/* A new version of one of the rings (same policy type, checked with
 * ring_check_successor against the newest the engine has). It takes effect
 * when the next pass begins (at once when idle between passes); the ring it
 * replaces becomes the previous placement: its holders are asked as sources,
 * a node that held a placement that moved pushes it to the new holder (the
 * handoff rule: it no longer places it), and the new holder waits for that
 * push instead of copying or rebuilding the same bytes (counted as awaiting,
 * so the pass is not clean until it arrived). The engine owns next from a
 * 0 return on (frees it when replaced and in repair_free); on an error the
 * caller still does: RING_ESTALE, RING_EMISMATCH, -ENOENT (no ring of its
 * policy: type, and index for EC). */
int repair_set_ring(struct repair *r, struct ring *next);
/* Versions of ring g in use (0 = none) and of its previous placement. */
void repair_ring_versions(const struct repair *r, unsigned g, uint64_t *cur,
			  uint64_t *prev);
/* Writes the status JSON now (also done every second while running). */
int repair_write_status(struct repair *r);

#endif
