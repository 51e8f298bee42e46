/* storage/index.c: the LMDB index.
 *
 * Databases in one environment (<first hot dir>/index/):
 *   obj   key (partition BE32, name hash, fragment BE32) -> struct idx_val + meta
 *   quar  same key -> the entry as it was when its bytes failed a CRC check
 *   vols  (medium, dir, volume BE32) -> committed tail, dead bytes (u64 each)
 * Big-endian key fields make one partition, and one suffix within it, a
 * contiguous key range (LIST is a cursor walk).
 */
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <lmdb.h>

#include "internal.h"

#define IDX_KEY_LEN	(8 + STO_NAME_HASH_LEN)

struct idx_val {
	uint8_t version;
	uint8_t medium;
	uint8_t dir;
	uint8_t tier;		/* enum sto_tier_class (was padding: 0 = STANDARD) */
	uint16_t flags;
	uint16_t pad1;
	uint32_t vol;
	uint32_t crc;
	uint64_t off;
	uint64_t size;
	uint64_t ts;
	uint64_t atime;
	uint32_t meta_len;
	uint32_t cold_after;	/* seconds, 0 = node default (was padding) */
};
_Static_assert(sizeof(struct idx_val) == 56, "index value layout");

struct sto_idx {
	MDB_env *env;
	MDB_dbi obj, quar, vols;
	MDB_dbi lst, lstm;	/* listings (listing.c) */
	MDB_txn *rtxn;		/* loop thread's reusable read transaction */
	uint8_t *scratch;	/* apply(): one value, copied out of the map */
};

int sto_mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:	return 0;
	case MDB_NOTFOUND:	return -ENOENT;
	case MDB_MAP_FULL:	return -ENOSPC;
	default:		return rc > 0 ? -rc : -EIO;
	}
}

static void key_encode(uint8_t *out, const struct sto_key *k)
{
	out[0] = k->part >> 24; out[1] = k->part >> 16; out[2] = k->part >> 8; out[3] = k->part;
	memcpy(out + 4, k->name, STO_NAME_HASH_LEN);
	out[20] = k->frag >> 24; out[21] = k->frag >> 16; out[22] = k->frag >> 8; out[23] = k->frag;
}

static void key_decode(const uint8_t *in, struct sto_key *k)
{
	k->part = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
	memcpy(k->name, in + 4, STO_NAME_HASH_LEN);
	k->frag = (uint32_t)in[20] << 24 | (uint32_t)in[21] << 16 | (uint32_t)in[22] << 8 | in[23];
}

static void val_from_loc(struct idx_val *v, const struct sto_loc *l)
{
	memset(v, 0, sizeof(*v));
	v->version = 1;
	v->medium = l->medium;
	v->dir = l->dir;
	v->flags = l->flags;
	v->vol = l->vol;
	v->crc = l->crc;
	v->off = l->off;
	v->size = l->size;
	v->ts = l->ts;
	v->atime = l->atime;
	v->meta_len = l->meta_len;
	v->tier = l->tier;
	v->cold_after = l->cold_after;
}

/* 0, or STO_EPROTO for a damaged value. */
static int val_to_loc(const MDB_val *d, struct sto_loc *l)
{
	struct idx_val v;

	if (d->mv_size < sizeof(v))
		return STO_EPROTO;
	memcpy(&v, d->mv_data, sizeof(v));
	if (v.version != 1 || d->mv_size != sizeof(v) + v.meta_len)
		return STO_EPROTO;
	memset(l, 0, sizeof(*l));
	l->medium = v.medium;
	l->dir = v.dir;
	l->flags = v.flags;
	l->vol = v.vol;
	l->crc = v.crc;
	l->off = v.off;
	l->size = v.size;
	l->ts = v.ts;
	l->atime = v.atime;
	l->meta_len = v.meta_len;
	l->tier = v.tier;
	l->cold_after = v.cold_after;
	return 0;
}

/* Allocates the data file ahead (up to 256 MiB, at most 1/64 of the
 * filesystem and the map size): LMDB grows the file by writing past its end,
 * and a sync after such appends also commits new blocks and size through the
 * filesystem journal, ~1.5x the cost of one for overwrites (ext4). Best
 * effort: LMDB neither needs nor minds the room. */
static void idx_prealloc(struct sto_idx *x, uint64_t map_size)
{
	uint64_t want = 256ull << 20;
	struct statvfs sv;
	struct stat st;
	mdb_filehandle_t fd;

	if (mdb_env_get_fd(x->env, &fd) || fstat(fd, &st) || fstatvfs(fd, &sv))
		return;
	if (want > (uint64_t)sv.f_blocks * sv.f_frsize / 64)
		want = (uint64_t)sv.f_blocks * sv.f_frsize / 64;
	if (want > map_size)
		want = map_size;
	if ((uint64_t)st.st_size < want && fallocate(fd, 0, 0, (off_t)want) < 0)
		log_debug("index preallocation: %s", strerror(errno));
}

int sto_idx_open(const char *dir, uint64_t map_size, struct sto_idx **out)
{
	struct sto_idx *x = calloc(1, sizeof(*x));
	MDB_txn *txn;
	int rc;

	if (!x)
		return -ENOMEM;
	x->scratch = malloc(sizeof(struct idx_val) + STO_MAX_META);
	if (!x->scratch) {
		rc = ENOMEM;
		goto out_free;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = errno;
		goto out_free;
	}
	rc = mdb_env_create(&x->env);
	if (rc)
		goto out_free;
	mdb_env_set_maxdbs(x->env, 8);
	mdb_env_set_mapsize(x->env, map_size);
	mdb_env_set_maxreaders(x->env, 256);
	/* MDB_NOTLS: read transactions belong to their handle, not the thread
	 * (the loop reuses one; LIST workers open their own).
	 * MDB_NOMETASYNC: a commit syncs its data pages, then writes its meta
	 * page unsynced; the next commit's sync (or sto_idx_sync) makes it
	 * durable. The engine acknowledges a batch only after that (one
	 * device flush per commit instead of two; see docs/storage.md). */
	rc = mdb_env_open(x->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0644);
	if (rc)
		goto out_env;
	idx_prealloc(x, map_size);
	rc = mdb_txn_begin(x->env, NULL, 0, &txn);
	if (rc)
		goto out_env;
	if ((rc = mdb_dbi_open(txn, "obj", MDB_CREATE, &x->obj)) ||
	    (rc = mdb_dbi_open(txn, "quar", MDB_CREATE, &x->quar)) ||
	    (rc = mdb_dbi_open(txn, "vols", MDB_CREATE, &x->vols)) ||
	    (rc = mdb_dbi_open(txn, "lst", MDB_CREATE, &x->lst)) ||
	    (rc = mdb_dbi_open(txn, "lstm", MDB_CREATE, &x->lstm))) {
		mdb_txn_abort(txn);
		goto out_env;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto out_env;
	*out = x;
	return 0;

out_env:
	log_err("index %s: %s", dir, mdb_strerror(rc));
	mdb_env_close(x->env);
out_free:
	free(x->scratch);
	free(x);
	return sto_mdb_err(rc);
}

void sto_idx_close(struct sto_idx *x)
{
	if (!x)
		return;
	if (x->rtxn)
		mdb_txn_abort(x->rtxn);
	mdb_env_sync(x->env, 1);
	mdb_env_close(x->env);
	free(x->scratch);
	free(x);
}

int sto_idx_get(struct sto_idx *x, const struct sto_key *k, struct sto_loc *loc,
		void *meta_buf)
{
	uint8_t kb[IDX_KEY_LEN];
	MDB_val key = { sizeof(kb), kb }, d;
	int rc;

	key_encode(kb, k);
	rc = x->rtxn ? mdb_txn_renew(x->rtxn)
		     : mdb_txn_begin(x->env, NULL, MDB_RDONLY, &x->rtxn);
	if (rc)
		return sto_mdb_err(rc);
	rc = mdb_get(x->rtxn, x->obj, &key, &d);
	if (rc == 0) {
		rc = val_to_loc(&d, loc);
		if (rc == 0 && meta_buf)
			memcpy(meta_buf, (uint8_t *)d.mv_data + sizeof(struct idx_val),
			       loc->meta_len);
	} else {
		rc = sto_mdb_err(rc);
	}
	mdb_txn_reset(x->rtxn);
	return rc;
}

static bool same_place(const struct sto_loc *a, const struct sto_loc *b)
{
	return a->medium == b->medium && a->dir == b->dir && a->vol == b->vol &&
	       a->off == b->off && a->ts == b->ts;
}

static void vol_key(uint8_t *kb, uint8_t medium, uint8_t dir, uint32_t vol)
{
	kb[0] = medium;
	kb[1] = dir;
	kb[2] = vol >> 24; kb[3] = vol >> 16; kb[4] = vol >> 8; kb[5] = vol;
}

/* Moves a volume's tail forward (never back) and adds dead bytes. */
static int vol_update(struct sto_idx *x, MDB_txn *txn, uint8_t medium,
		      uint8_t dir, uint32_t vol, uint64_t tail, uint64_t dead)
{
	uint8_t kb[6];
	MDB_val key = { sizeof(kb), kb }, d;
	uint64_t v[2] = { 0, 0 };

	vol_key(kb, medium, dir, vol);
	if (mdb_get(txn, x->vols, &key, &d) == 0 && d.mv_size >= 8)
		memcpy(v, d.mv_data, d.mv_size >= 16 ? 16 : 8);
	if (tail <= v[0] && dead == 0)
		return 0;
	if (tail > v[0])
		v[0] = tail;
	v[1] += dead;
	d.mv_size = sizeof(v);
	d.mv_data = v;
	return sto_mdb_err(mdb_put(txn, x->vols, &key, &d, 0));
}

/* The record ex points at becomes dead space in its volume. */
static int vol_dead(struct sto_idx *x, MDB_txn *txn, const struct sto_loc *ex)
{
	if (ex->flags & STO_LOC_TOMBSTONE)
		return 0;
	return vol_update(x, txn, ex->medium, ex->dir, ex->vol, 0,
			  sto_rec_len(ex->meta_len, ex->size));
}

/* Stores op->loc and its metadata as the value of key. */
static int obj_put(struct sto_idx *x, MDB_txn *txn, MDB_val *key,
		   const struct sto_idx_op *op)
{
	struct idx_val v;
	MDB_val d;
	int rc;

	val_from_loc(&v, &op->loc);
	d.mv_size = sizeof(v) + op->loc.meta_len;
	rc = mdb_put(txn, x->obj, key, &d, MDB_RESERVE);
	if (rc)
		return sto_mdb_err(rc);
	memcpy(d.mv_data, &v, sizeof(v));
	if (op->loc.meta_len)
		memcpy((uint8_t *)d.mv_data + sizeof(v), op->meta, op->loc.meta_len);
	return 0;
}

static int apply_one(struct sto_idx *x, MDB_txn *txn, struct sto_idx_op *op)
{
	uint8_t kb[IDX_KEY_LEN];
	MDB_val key = { sizeof(kb), kb }, d;
	struct sto_loc ex;
	bool have;
	int rc;

	if (op->type == STO_IDX_LST_PUT || op->type == STO_IDX_LST_DEL)
		return sto_lst_apply(txn, x->lst, x->lstm, op);
	key_encode(kb, &op->key);
	rc = mdb_get(txn, x->obj, &key, &d);
	if (rc && rc != MDB_NOTFOUND)
		return sto_mdb_err(rc);
	have = rc == 0 && val_to_loc(&d, &ex) == 0;

	switch (op->type) {
	case STO_IDX_PUT:
	case STO_IDX_DEL:
		if (have && ex.ts >= op->loc.ts) {
			op->result = STO_ECONFLICT;
			/* A replayed mover/compaction copy the index does not
			 * point at: its move never committed, so its bytes are
			 * dead (the original is still the live one). */
			if (op->copy && !same_place(&ex, &op->loc))
				return vol_dead(x, txn, &op->loc);
			return 0;
		}
		if (op->type == STO_IDX_DEL) {
			op->result = have && !(ex.flags & STO_LOC_TOMBSTONE) ? 0 : -ENOENT;
			op->loc.flags |= STO_LOC_TOMBSTONE;
			op->loc.meta_len = 0;
		} else {
			op->result = 0;
		}
		if (have && (rc = vol_dead(x, txn, &ex)) < 0)
			return rc;
		return obj_put(x, txn, &key, op);
	case STO_IDX_ATIME:
		if (!have || !same_place(&ex, &op->loc) || ex.atime >= op->loc.atime) {
			op->result = -ENOENT;
			return 0;
		}
		memcpy(x->scratch, d.mv_data, d.mv_size);
		((struct idx_val *)x->scratch)->atime = op->loc.atime;
		d.mv_data = x->scratch;
		op->result = 0;
		return sto_mdb_err(mdb_put(txn, x->obj, &key, &d, 0));
	case STO_IDX_SET_TIER:
		if (!have || (ex.flags & STO_LOC_TOMBSTONE) || ex.ts != op->loc.ts) {
			op->result = have && !(ex.flags & STO_LOC_TOMBSTONE) ? STO_ECONFLICT
									  : -ENOENT;
			return 0;
		}
		op->result = 0;
		op->loc = ex;		/* the answer: where it is, its policy */
		op->loc.tier = op->tier;
		op->loc.cold_after = op->cold_after;
		if (ex.tier == op->tier && ex.cold_after == op->cold_after)
			return 0;	/* a pass run again: nothing to write */
		memcpy(x->scratch, d.mv_data, d.mv_size);
		((struct idx_val *)x->scratch)->tier = op->tier;
		((struct idx_val *)x->scratch)->cold_after = op->cold_after;
		d.mv_data = x->scratch;
		return sto_mdb_err(mdb_put(txn, x->obj, &key, &d, 0));
	case STO_IDX_QUARANTINE:
		if (!have || !same_place(&ex, &op->loc)) {
			op->result = -ENOENT;
			return 0;
		}
		memcpy(x->scratch, d.mv_data, d.mv_size);
		d.mv_data = x->scratch;
		rc = mdb_put(txn, x->quar, &key, &d, 0);
		if (rc == 0)
			rc = mdb_del(txn, x->obj, &key, NULL);
		op->result = 0;
		return rc ? sto_mdb_err(rc) : vol_dead(x, txn, &ex);
	case STO_IDX_REAP:
		if (!have || !(ex.flags & STO_LOC_TOMBSTONE) || !same_place(&ex, &op->loc) ||
		    ex.ts != op->loc.ts) {
			op->result = -ENOENT;	/* replaced meanwhile */
			return 0;
		}
		op->result = 0;
		return sto_mdb_err(mdb_del(txn, x->obj, &key, NULL));
	case STO_IDX_PURGE:
		/* The purge's own record is dead at once (its replay is all it
		 * is for). */
		rc = vol_update(x, txn, op->loc.medium, op->loc.dir, op->loc.vol, 0,
				sto_rec_len(op->loc.meta_len, 0));
		if (rc < 0)
			return rc;
		if (!have || !same_place(&ex, &op->old)) {
			op->result = -ENOENT;	/* replaced meanwhile: kept */
			return 0;
		}
		op->result = 0;
		rc = mdb_del(txn, x->obj, &key, NULL);
		return rc ? sto_mdb_err(rc) : vol_dead(x, txn, &ex);
	case STO_IDX_LST_PUT:
	case STO_IDX_LST_DEL:
		break;		/* above */
	case STO_IDX_MOVE:
		if (!have || (ex.flags & STO_LOC_TOMBSTONE) || !same_place(&ex, &op->old)) {
			op->result = -ENOENT;	/* changed meanwhile: copy is garbage */
			return vol_dead(x, txn, &op->loc);
		}
		/* Keeps the access time, unless the mover promoting it says
		 * it was just read. The policy goes with the fragment. */
		if (op->loc.atime < ex.atime)
			op->loc.atime = ex.atime;
		op->loc.tier = ex.tier;
		op->loc.cold_after = ex.cold_after;
		rc = obj_put(x, txn, &key, op);
		if (rc < 0)
			return rc;
		op->result = 0;
		return vol_dead(x, txn, &ex);
	}
	return -EINVAL;
}

int sto_idx_apply(struct sto_idx *x, struct sto_idx_op *ops, size_t n,
		  const struct sto_vol_tail *tails, size_t ntails)
{
	MDB_txn *txn;
	int rc, ret = 0;

	rc = mdb_txn_begin(x->env, NULL, 0, &txn);
	if (rc)
		return sto_mdb_err(rc);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = apply_one(x, txn, &ops[i]);
	for (size_t i = 0; i < ntails && ret == 0; i++)
		ret = vol_update(x, txn, tails[i].medium, tails[i].dir, tails[i].vol,
				 tails[i].tail, tails[i].dead);
	if (ret == 0) {
		/* Every transaction writes, so every commit syncs: that sync is
		 * what makes the previous commit's meta page durable. */
		MDB_val key = { 3, "seq" }, d;
		uint64_t seq = 0;

		if (mdb_get(txn, x->vols, &key, &d) == 0 && d.mv_size == 8)
			memcpy(&seq, d.mv_data, 8);
		seq++;
		d.mv_size = 8;
		d.mv_data = &seq;
		ret = sto_mdb_err(mdb_put(txn, x->vols, &key, &d, 0));
	}
	if (ret) {
		mdb_txn_abort(txn);
		return ret;
	}
	return sto_mdb_err(mdb_txn_commit(txn));	/* synced: durable on return */
}

int sto_idx_vol_info(struct sto_idx *x, uint8_t medium, uint8_t dir,
		     uint32_t vol, uint64_t *tail, uint64_t *dead)
{
	uint8_t kb[6];
	MDB_val key = { sizeof(kb), kb }, d;
	uint64_t v[2] = { 0, 0 };
	MDB_txn *txn;
	int rc;

	vol_key(kb, medium, dir, vol);
	rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return sto_mdb_err(rc);
	rc = mdb_get(txn, x->vols, &key, &d);
	if (rc == 0 && d.mv_size >= 8)
		memcpy(v, d.mv_data, d.mv_size >= 16 ? 16 : 8);
	else if (rc == 0)
		rc = MDB_CORRUPTED;
	mdb_txn_abort(txn);
	*tail = v[0];
	*dead = v[1];
	return sto_mdb_err(rc);
}

int sto_idx_sync(struct sto_idx *x)
{
	return sto_mdb_err(mdb_env_sync(x->env, 1));
}

int sto_idx_vol_tail(struct sto_idx *x, uint8_t medium, uint8_t dir,
		     uint32_t vol, uint64_t *tail)
{
	uint64_t dead;

	return sto_idx_vol_info(x, medium, dir, vol, tail, &dead);
}

int sto_idx_vol_drop(struct sto_idx *x, uint8_t medium, uint8_t dir, uint32_t vol)
{
	uint8_t kb[6];
	MDB_val key = { sizeof(kb), kb };
	MDB_txn *txn;
	int rc;

	vol_key(kb, medium, dir, vol);
	rc = mdb_txn_begin(x->env, NULL, 0, &txn);
	if (rc)
		return sto_mdb_err(rc);
	rc = mdb_del(txn, x->vols, &key, NULL);
	if (rc && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return sto_mdb_err(rc);
	}
	return sto_mdb_err(mdb_txn_commit(txn));
}

uint64_t sto_idx_entry_hash(const uint8_t name[STO_NAME_HASH_LEN], uint32_t frag,
			    uint64_t ts, bool tombstone)
{
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a, then a mixer */
	uint8_t b[STO_NAME_HASH_LEN + 13];

	memcpy(b, name, STO_NAME_HASH_LEN);
	memcpy(b + 16, &frag, 4);
	memcpy(b + 20, &ts, 8);
	b[28] = tombstone;
	for (size_t i = 0; i < sizeof(b); i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

/* Walks the entries of part whose suffix is >= from (and == from when one),
 * calling fn for each. */
static int idx_walk(struct sto_idx *x, uint32_t part, uint32_t from, bool one,
		    void (*fn)(void *arg, const struct sto_key *k,
			       const struct sto_loc *l),
		    void *arg, size_t max)
{
	uint8_t kb[IDX_KEY_LEN] = { 0 };
	struct sto_key k = { .part = part };
	MDB_val key = { sizeof(kb), kb }, d;
	MDB_cursor *cur;
	MDB_txn *txn;
	size_t n = 0;
	int rc;

	k.name[0] = from >> 4;
	k.name[1] = (from & 0xf) << 4;
	key_encode(kb, &k);
	rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return sto_mdb_err(rc);
	rc = mdb_cursor_open(txn, x->obj, &cur);
	if (rc)
		goto out_txn;
	for (rc = mdb_cursor_get(cur, &key, &d, MDB_SET_RANGE); rc == 0 && n < max;
	     rc = mdb_cursor_get(cur, &key, &d, MDB_NEXT)) {
		struct sto_loc l;

		if (key.mv_size != IDX_KEY_LEN)
			continue;
		key_decode(key.mv_data, &k);
		if (k.part != part || (one && sto_suffix_of(k.name) != from))
			break;
		if (val_to_loc(&d, &l) < 0)
			continue;
		fn(arg, &k, &l);
		n++;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	mdb_cursor_close(cur);
out_txn:
	mdb_txn_abort(txn);
	return sto_mdb_err(rc);
}

struct sfx_acc {
	struct sto_suffix_hash *out;
	size_t n;
};

static void sfx_add(void *arg, const struct sto_key *k, const struct sto_loc *l)
{
	struct sfx_acc *a = arg;
	uint32_t s = sto_suffix_of(k->name);

	if (a->n == 0 || a->out[a->n - 1].suffix != s) {
		a->out[a->n].suffix = s;
		a->out[a->n].hash = 0;
		a->out[a->n].count = 0;
		a->n++;
	}
	a->out[a->n - 1].hash ^= sto_idx_entry_hash(k->name, k->frag, l->ts,
						    l->flags & STO_LOC_TOMBSTONE);
	a->out[a->n - 1].count++;
}

int sto_idx_list_suffixes(struct sto_idx *x, uint32_t part,
			  struct sto_suffix_hash *out, size_t *n)
{
	struct sfx_acc a = { out, 0 };
	int ret = idx_walk(x, part, 0, false, sfx_add, &a, SIZE_MAX);

	*n = a.n;
	return ret;
}

struct ent_acc {
	struct sto_list_entry *out;
	size_t n;
};

static void ent_add(void *arg, const struct sto_key *k, const struct sto_loc *l)
{
	struct ent_acc *a = arg;
	struct sto_list_entry *e = &a->out[a->n++];

	memcpy(e->name, k->name, STO_NAME_HASH_LEN);
	e->frag = k->frag;
	e->timestamp = l->ts;
	e->tombstone = l->flags & STO_LOC_TOMBSTONE;
	e->size = l->size;
}

int sto_idx_list_objects(struct sto_idx *x, uint32_t part, uint32_t suffix,
			 struct sto_list_entry *out, size_t max, size_t *n)
{
	struct ent_acc a = { out, 0 };
	int ret = idx_walk(x, part, suffix, true, ent_add, &a, max);

	*n = a.n;
	return ret;
}

int sto_idx_walk(struct sto_idx *x,
		 int (*fn)(void *arg, const struct sto_key *k, const struct sto_loc *l),
		 void *arg)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val key, d;
	int rc, ret = 0;

	rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return sto_mdb_err(rc);
	rc = mdb_cursor_open(txn, x->obj, &cur);
	if (rc) {
		mdb_txn_abort(txn);
		return sto_mdb_err(rc);
	}
	for (rc = mdb_cursor_get(cur, &key, &d, MDB_FIRST); rc == 0 && ret == 0;
	     rc = mdb_cursor_get(cur, &key, &d, MDB_NEXT)) {
		struct sto_key k;
		struct sto_loc l;

		if (key.mv_size != IDX_KEY_LEN || val_to_loc(&d, &l) < 0)
			continue;	/* not ours to judge here */
		key_decode(key.mv_data, &k);
		ret = fn(arg, &k, &l);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (ret)
		return ret;
	return rc == MDB_NOTFOUND ? 0 : sto_mdb_err(rc);
}

int sto_idx_counts(struct sto_idx *x, uint64_t *objects, uint64_t *quarantined)
{
	MDB_txn *txn;
	MDB_stat st;
	int rc;

	rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return sto_mdb_err(rc);
	rc = mdb_stat(txn, x->obj, &st);
	if (rc == 0) {
		*objects = st.ms_entries;
		rc = mdb_stat(txn, x->quar, &st);
		if (rc == 0)
			*quarantined = st.ms_entries;
	}
	mdb_txn_abort(txn);
	return sto_mdb_err(rc);
}

void sto_idx_lst_handles(struct sto_idx *x, MDB_env **env, MDB_dbi *lst,
			 MDB_dbi *lstm)
{
	*env = x->env;
	*lst = x->lst;
	*lstm = x->lstm;
}

uint32_t sto_idx_lst_max_key(struct sto_idx *x)
{
	/* Keys past LMDB's limit live in groups (listing.c). */
	(void)x;
	return STO_LISTING_MAX_KEY;
}
