/* storage/listing.c: listings, ordered key -> entry stores in the index's
 * LMDB environment (see internal.h, "listing.c", and docs/storage.md).
 *
 * An LMDB key is head (partition BE32 · listing id) · user key, so a listing
 * is one contiguous key range in memcmp order of the user keys, and a query
 * is a cursor walk from MDB_SET_RANGE. A delimiter query never walks a common
 * prefix: on the first live key under it, it emits the prefix and seeks to
 * the prefix's successor (the smallest string above every string starting
 * with it), one seek per common prefix.
 *
 * Keys longer than LMDB allows (its key limit less the head: P = 491 bytes
 * with Debian's LMDB; S3 keys go to 1,024): every key of P bytes or more is
 * a member of a *group* record at head · key[0..P), whose value holds all
 * such keys with those first P bytes, sorted by the rest. Shorter keys are
 * plain records. memcmp order is kept: a plain key shorter than P sorts
 * against Q · s exactly as against Q (it differs from Q within its own
 * length, or is a prefix of both), and groups sort by Q. A group is one
 * record, so writing one of its keys rewrites the group: cheap unless very
 * many keys share 491 bytes (XXX a deeper level then). A plain record at
 * the group length (from before groups) reads as a group of one.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <lmdb.h>

#include "internal.h"

#define VAL_HDR		9		/* timestamp LE64, flags */
#define VAL_TOMBSTONE	0x1
#define VAL_GROUP	0x2		/* a group: members follow the header */
/* A group member: suffix length LE16, suffix, value length LE32, then the
 * member's own value as a plain record's (timestamp, flags, bytes). */
#define MEMBER_HDR	(2 + 4)
#define META_LEN_V1	24		/* entries, tombstones, bytes (u64 each) */
#define META_LEN	32		/* ... and the XOR of the entries' hashes
					 * (replication compares listings by it) */
/* Tombstones a query may step over (outside common prefixes) before it
 * returns a short page with a marker: bounded work per call. */
#define SCAN_BUDGET(limit)	(10000u + 10u * (limit))

static void head_encode(uint8_t *out, const struct sto_listing_id *id)
{
	out[0] = id->part >> 24;
	out[1] = id->part >> 16;
	out[2] = id->part >> 8;
	out[3] = id->part;
	memcpy(out + 4, id->id, STO_LISTING_ID_LEN);
}

/* The smallest string above every string starting with p[0..*len): drop
 * trailing 0xff bytes, increment the last. false when there is none (p is
 * all 0xff: nothing sorts after its extensions). */
static bool successor(uint8_t *p, uint32_t *len)
{
	while (*len && p[*len - 1] == 0xff)
		(*len)--;
	if (*len == 0)
		return false;
	p[*len - 1]++;
	return true;
}

/* Key bytes in an LMDB key (P): user keys of this length or longer live in
 * groups. */
static uint32_t group_len(MDB_env *env)
{
	return (uint32_t)mdb_env_get_maxkeysize(env) - STO_LST_HEAD;
}

static bool is_group_rec(const MDB_val *v)
{
	return v->mv_size >= VAL_HDR && (((const uint8_t *)v->mv_data)[8] & VAL_GROUP);
}

struct member {
	const uint8_t *suf;
	uint32_t slen;
	MDB_val val;			/* as a plain record's value */
};

/* The member at *off of the group record rec (a record at the group length
 * without VAL_GROUP: one member, the whole value, empty suffix). 1 and
 * *off advanced, 0 at the end, -EIO when the record is malformed. */
static int member_next(const MDB_val *rec, size_t *off, struct member *m)
{
	const uint8_t *b = rec->mv_data;
	uint16_t sl;
	uint32_t vl;

	if (!is_group_rec(rec)) {
		if (*off)
			return 0;
		*off = rec->mv_size;
		*m = (struct member){ b, 0, *rec };
		return 1;
	}
	if (*off == 0)
		*off = VAL_HDR;
	if (*off == rec->mv_size)
		return 0;
	if (rec->mv_size - *off < MEMBER_HDR)
		return -EIO;
	memcpy(&sl, b + *off, 2);
	sl = le16toh(sl);
	if (rec->mv_size - *off - 2 < sl + 4u)
		return -EIO;
	memcpy(&vl, b + *off + 2 + sl, 4);
	vl = le32toh(vl);
	if (vl < VAL_HDR || rec->mv_size - *off - MEMBER_HDR - sl < vl)
		return -EIO;
	m->suf = b + *off + 2;
	m->slen = sl;
	m->val = (MDB_val){ vl, (void *)(b + *off + MEMBER_HDR + sl) };
	*off += MEMBER_HDR + sl + vl;
	return 1;
}

/* Appends a member to out (room checked by the caller). */
static size_t member_put(uint8_t *out, const void *suf, uint32_t slen,
			 const void *val, uint32_t vlen)
{
	uint16_t sl = htole16((uint16_t)slen);
	uint32_t vl = htole32(vlen);

	memcpy(out, &sl, 2);
	if (slen)
		memcpy(out + 2, suf, slen);
	memcpy(out + 2 + slen, &vl, 4);
	memcpy(out + MEMBER_HDR + slen, val, vlen);
	return MEMBER_HDR + slen + vlen;
}

static void group_header(uint8_t *out)
{
	memset(out, 0, VAL_HDR);
	out[8] = VAL_GROUP;
}

/* ------------------------------------------------------------- writes */

struct meta_counts {
	int64_t entries, tombstones, bytes;
	uint64_t hash;			/* XOR in and out: order-independent */
};

/* What one stored entry contributes to its listing's hash. */
static uint64_t entry_hash(const uint8_t *key, size_t klen, const MDB_val *v)
{
	uint64_t h = 0xcbf29ce484222325ull, ts = 0;

	for (size_t i = 0; i < klen; i++)
		h = (h ^ key[i]) * 0x100000001b3ull;
	if (v->mv_size >= VAL_HDR) {
		memcpy(&ts, v->mv_data, 8);
		h ^= le64toh(ts) * 0x9e3779b97f4a7c15ull;
		h ^= ((uint8_t *)v->mv_data)[8] & VAL_TOMBSTONE;
	}
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 29);
}

static int meta_add(MDB_txn *txn, MDB_dbi lstm, const uint8_t *head,
		    const struct meta_counts *d)
{
	MDB_val key = { STO_LST_HEAD, (void *)head }, v;
	uint64_t m[4] = { 0, 0, 0, 0 };
	int rc;

	if (!d->entries && !d->tombstones && !d->bytes && !d->hash)
		return 0;
	rc = mdb_get(txn, lstm, &key, &v);
	if (rc == 0 && (v.mv_size == META_LEN || v.mv_size == META_LEN_V1))
		memcpy(m, v.mv_data, v.mv_size);
	else if (rc && rc != MDB_NOTFOUND)
		return sto_mdb_err(rc);
	m[0] += (uint64_t)d->entries;
	m[1] += (uint64_t)d->tombstones;
	m[2] += (uint64_t)d->bytes;
	m[3] ^= d->hash;
	if (!m[0] && !m[1]) {
		rc = mdb_del(txn, lstm, &key, NULL);
		return rc == MDB_NOTFOUND ? 0 : sto_mdb_err(rc);
	}
	v.mv_size = META_LEN;
	v.mv_data = m;
	return sto_mdb_err(mdb_put(txn, lstm, &key, &v, 0));
}

/* What an existing value counts for. */
static void counts_of(struct meta_counts *c, int sign, const uint8_t *key, size_t klen,
		      const MDB_val *v)
{
	c->hash ^= entry_hash(key, klen, v);
	bool tomb = v->mv_size >= VAL_HDR && (((uint8_t *)v->mv_data)[8] & VAL_TOMBSTONE);

	if (tomb)
		c->tombstones += sign;
	else
		c->entries += sign;
	c->bytes += sign * (int64_t)(klen + (v->mv_size > VAL_HDR ? v->mv_size - VAL_HDR : 0));
}

/* Puts e (key of glen bytes or more) into its group at kb (head · key):
 * the group is rewritten with e in its place. 1 applied, 0 older than what
 * is there, < 0 error. */
static int put_member(MDB_txn *txn, MDB_dbi lst, uint8_t *kb, uint32_t glen,
		      const struct sto_listing_entry *e, struct meta_counts *d)
{
	MDB_val key = { STO_LST_HEAD + glen, kb }, old = { 0, NULL }, nv;
	const uint8_t *suf = (const uint8_t *)e->key + glen;
	uint32_t slen = e->key_len - glen, vlen = e->tombstone ? 0 : e->value_len;
	uint8_t val[VAL_HDR + STO_LISTING_MAX_VALUE];
	struct member m;
	size_t off = 0, len = VAL_HDR;
	uint64_t ts = htole64(e->timestamp);
	bool done = false;
	uint8_t *nb;
	int rc, more;

	rc = mdb_get(txn, lst, &key, &old);
	if (rc && rc != MDB_NOTFOUND)
		return sto_mdb_err(rc);
	memcpy(val, &ts, 8);
	val[8] = e->tombstone ? VAL_TOMBSTONE : 0;
	if (vlen)
		memcpy(val + VAL_HDR, e->value, vlen);
	nb = malloc(old.mv_size + VAL_HDR + MEMBER_HDR + slen + VAL_HDR + vlen);
	if (!nb)
		return -ENOMEM;
	group_header(nb);
	while (rc == 0 && (more = member_next(&old, &off, &m)) != 0) {
		int c;

		if (more < 0) {
			free(nb);
			return more;
		}
		c = strata_bytes_cmp(m.suf, m.slen, suf, slen);
		if (c == 0) {
			uint64_t have;

			memcpy(&have, m.val.mv_data, 8);
			if (le64toh(have) >= e->timestamp) {
				free(nb);
				return 0;	/* newest wins */
			}
			counts_of(d, -1, (const uint8_t *)e->key, e->key_len, &m.val);	/* same key */
			continue;		/* replaced below */
		}
		if (c > 0 && !done) {
			len += member_put(nb + len, suf, slen, val, VAL_HDR + vlen);
			done = true;
		}
		len += member_put(nb + len, m.suf, m.slen, m.val.mv_data,
				  (uint32_t)m.val.mv_size);
	}
	if (!done)
		len += member_put(nb + len, suf, slen, val, VAL_HDR + vlen);
	nv = (MDB_val){ VAL_HDR + vlen, val };
	counts_of(d, 1, (const uint8_t *)e->key, e->key_len, &nv);
	nv = (MDB_val){ len, nb };
	rc = mdb_put(txn, lst, &key, &nv, 0);
	free(nb);
	return rc ? sto_mdb_err(rc) : 1;
}

static int apply_put(MDB_txn *txn, MDB_dbi lst, MDB_dbi lstm, struct sto_lst_op *op)
{
	uint8_t kb[STO_LST_HEAD + STO_LISTING_MAX_KEY];
	struct meta_counts d = { 0 };
	uint32_t glen = group_len(mdb_txn_env(txn));
	int rc;

	head_encode(kb, &op->id);
	op->count = 0;
	for (size_t i = 0; i < op->n; i++) {
		const struct sto_listing_entry *e = &op->ents[i];
		MDB_val key = { STO_LST_HEAD + e->key_len, kb }, v;
		uint32_t vlen = e->tombstone ? 0 : e->value_len;
		uint64_t ts;

		memcpy(kb + STO_LST_HEAD, e->key, e->key_len);
		if (e->key_len >= glen) {
			rc = put_member(txn, lst, kb, glen, e, &d);
			if (rc < 0)
				return rc;
			op->count += (uint64_t)rc;
			continue;
		}
		rc = mdb_get(txn, lst, &key, &v);
		if (rc == 0 && v.mv_size >= VAL_HDR) {
			memcpy(&ts, v.mv_data, 8);
			ts = le64toh(ts);
			if (ts >= e->timestamp)
				continue;	/* newest wins; equal: already there */
			counts_of(&d, -1, e->key, e->key_len, &v);
		} else if (rc && rc != MDB_NOTFOUND) {
			return sto_mdb_err(rc);
		}
		v.mv_size = VAL_HDR + vlen;
		rc = mdb_put(txn, lst, &key, &v, MDB_RESERVE);
		if (rc)
			return sto_mdb_err(rc);
		ts = htole64(e->timestamp);
		memcpy(v.mv_data, &ts, 8);
		((uint8_t *)v.mv_data)[8] = e->tombstone ? VAL_TOMBSTONE : 0;
		if (vlen)
			memcpy((uint8_t *)v.mv_data + VAL_HDR, e->value, vlen);
		counts_of(&d, 1, e->key, e->key_len, &v);
		op->count++;
	}
	return meta_add(txn, lstm, kb, &d);
}

/* A tombstone older than before (the reaper's filter). */
static bool old_tomb(const MDB_val *v, uint64_t before)
{
	uint64_t ts;

	if (v->mv_size < VAL_HDR || !(((uint8_t *)v->mv_data)[8] & VAL_TOMBSTONE))
		return false;
	memcpy(&ts, v->mv_data, 8);
	return le64toh(ts) < before;
}

/* apply_del over one group record (cur on it, its user key Q = k[0..glen)):
 * drops the members in [start, end) up to op->max, rewrites or deletes the
 * record. *stop: the range (or max) ends in this group. */
static int del_members(MDB_cursor *cur, const MDB_val *key, const MDB_val *rec,
		       uint32_t glen, struct sto_lst_op *op, struct meta_counts *d,
		       bool *stop)
{
	uint8_t full[STO_LISTING_MAX_KEY], kb[STO_LST_HEAD + STO_LISTING_MAX_KEY];
	MDB_val k = { key->mv_size, kb }, nv;
	struct member m;
	size_t off = 0, len = VAL_HDR;
	bool dropped = false;
	uint8_t *nb = malloc(rec->mv_size + VAL_HDR);
	int more, rc;

	if (!nb)
		return -ENOMEM;
	memcpy(kb, key->mv_data, key->mv_size);
	memcpy(full, kb + STO_LST_HEAD, glen);
	group_header(nb);
	while ((more = member_next(rec, &off, &m)) > 0) {
		size_t flen = glen + m.slen;
		bool keep = false;

		if (m.slen)
			memcpy(full + glen, m.suf, m.slen);
		if (*stop || strata_bytes_cmp(full, flen, op->start.data, op->start.len) < 0) {
			keep = true;
		} else if (op->end.len &&
			   strata_bytes_cmp(full, flen, op->end.data, op->end.len) >= 0) {
			keep = *stop = true;
		} else if (op->reap_before && !old_tomb(&m.val, op->reap_before)) {
			keep = true;
		} else if (op->count == op->max) {
			keep = *stop = op->more = true;
			op->next_len = (uint32_t)flen;
			memcpy(op->next, full, flen);
		}
		if (keep) {
			len += member_put(nb + len, m.suf, m.slen, m.val.mv_data,
					  (uint32_t)m.val.mv_size);
			continue;
		}
		counts_of(d, -1, full, flen, &m.val);
		op->count++;
		dropped = true;
	}
	rc = 0;
	if (more < 0)
		rc = more;
	else if (dropped && len == VAL_HDR)
		rc = sto_mdb_err(mdb_cursor_del(cur, 0));
	else if (dropped) {
		nv = (MDB_val){ len, nb };
		rc = sto_mdb_err(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT));
	}
	free(nb);
	return rc < 0 ? rc : dropped && len == VAL_HDR;	/* 1: record deleted */
}

static int apply_del(MDB_txn *txn, MDB_dbi lst, MDB_dbi lstm, struct sto_lst_op *op)
{
	uint8_t kb[STO_LST_HEAD + STO_LISTING_MAX_KEY];
	uint32_t glen = group_len(mdb_txn_env(txn));
	uint32_t slen = op->start.len < glen ? op->start.len : glen;
	MDB_val key = { STO_LST_HEAD + slen, kb }, v;
	struct meta_counts d = { 0 };
	MDB_cursor *cur;
	uint32_t visited = 0;
	int rc, ret = 0;

	head_encode(kb, &op->id);
	if (slen)
		memcpy(kb + STO_LST_HEAD, op->start.data, slen);
	op->count = 0;
	op->more = false;
	rc = mdb_cursor_open(txn, lst, &cur);
	if (rc)
		return sto_mdb_err(rc);
	for (rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
		const uint8_t *k = key.mv_data;
		size_t ulen = key.mv_size - STO_LST_HEAD;
		bool stop = false;

		if (key.mv_size < STO_LST_HEAD || memcmp(k, kb, STO_LST_HEAD))
			break;
		if (op->end.len && strata_bytes_cmp(k + STO_LST_HEAD, ulen, op->end.data,
					     op->end.len) >= 0)
			break;
		if (ulen == glen) {
			/* A group (its members may start before start). */
			ret = del_members(cur, &key, &v, glen, op, &d, &stop);
			if (ret < 0 || stop)
				break;
			continue;
		}
		if (op->count == op->max || (op->reap_before && visited == op->max)) {
			op->more = true;
			op->next_len = (uint32_t)ulen;
			memcpy(op->next, k + STO_LST_HEAD, ulen);
			break;
		}
		visited++;
		if (op->reap_before && !old_tomb(&v, op->reap_before))
			continue;
		counts_of(&d, -1, k + STO_LST_HEAD, ulen, &v);
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			break;
		op->count++;
	}
	/* (After mdb_cursor_del, MDB_NEXT yields the entry that followed.) */
	mdb_cursor_close(cur);
	if (ret < 0)
		return ret;
	if (rc && rc != MDB_NOTFOUND)
		return sto_mdb_err(rc);
	return meta_add(txn, lstm, kb, &d);
}

int sto_lst_apply(MDB_txn *txn, MDB_dbi lst, MDB_dbi lstm, struct sto_idx_op *op)
{
	op->result = 0;
	if (op->type == STO_IDX_LST_PUT)
		return apply_put(txn, lst, lstm, op->lst);
	return apply_del(txn, lst, lstm, op->lst);
}

/* -------------------------------------------------------------- query */

struct walk {
	MDB_cursor *cur;
	uint8_t head[STO_LST_HEAD];
	uint8_t kb[STO_LST_HEAD + STO_LISTING_MAX_KEY + 1];
	uint32_t glen;			/* key bytes of a group record */
	MDB_val key, val;		/* val: the entry's (a member's) value */
	MDB_val rec;			/* the record the cursor is on */
	size_t goff;			/* in a group: offset of the next member */
	const uint8_t *uk;		/* user key of the current entry */
	size_t ulen;
	uint8_t full[STO_LISTING_MAX_KEY];	/* a member's whole key */
};

/* Enters the record under the cursor (rc: the cursor call's result) at
 * its first entry >= k[0..len) (k NULL: its first). 1 = on one, 0 = not in
 * this record, 2 = past the listing, < 0 = error. */
static int walk_enter(struct walk *w, int rc, const uint8_t *k, size_t len)
{
	struct member m;
	int more;

	if (rc == MDB_NOTFOUND)
		return 2;
	if (rc)
		return sto_mdb_err(rc);
	if (w->key.mv_size < STO_LST_HEAD || memcmp(w->key.mv_data, w->head, STO_LST_HEAD))
		return 2;
	w->rec = w->val;
	w->goff = 0;
	if (w->key.mv_size - STO_LST_HEAD != w->glen) {
		w->uk = (const uint8_t *)w->key.mv_data + STO_LST_HEAD;
		w->ulen = w->key.mv_size - STO_LST_HEAD;
		return 1;
	}
	memcpy(w->full, (const uint8_t *)w->key.mv_data + STO_LST_HEAD, w->glen);
	w->uk = w->full;
	while ((more = member_next(&w->rec, &w->goff, &m)) > 0) {
		if (m.slen)
			memcpy(w->full + w->glen, m.suf, m.slen);
		w->ulen = w->glen + m.slen;
		w->val = m.val;
		if (!k || strata_bytes_cmp(w->full, w->ulen, k, len) >= 0)
			return 1;
	}
	return more;
}

/* Positions on the first entry >= head · k[0..len) of this listing.
 * 1 = on one, 0 = past the listing, < 0 = error. A target of the group
 * length or longer is sought by its group. */
static int walk_seek(struct walk *w, const uint8_t *k, size_t len)
{
	size_t tl = len < w->glen ? len : w->glen;
	int rc;

	memcpy(w->kb, w->head, STO_LST_HEAD);
	if (tl)
		memmove(w->kb + STO_LST_HEAD, k, tl);
	w->key.mv_data = w->kb;
	w->key.mv_size = STO_LST_HEAD + tl;
	rc = walk_enter(w, mdb_cursor_get(w->cur, &w->key, &w->val, MDB_SET_RANGE), k, len);
	while (rc == 0)
		rc = walk_enter(w, mdb_cursor_get(w->cur, &w->key, &w->val, MDB_NEXT), NULL, 0);
	return rc == 2 ? 0 : rc;
}

static int walk_next(struct walk *w)
{
	struct member m;
	int rc;

	if (w->uk == w->full) {
		rc = member_next(&w->rec, &w->goff, &m);
		if (rc < 0)
			return rc;
		if (rc) {
			if (m.slen)
				memcpy(w->full + w->glen, m.suf, m.slen);
			w->ulen = w->glen + m.slen;
			w->val = m.val;
			return 1;
		}
	}
	do
		rc = walk_enter(w, mdb_cursor_get(w->cur, &w->key, &w->val, MDB_NEXT), NULL, 0);
	while (rc == 0);
	return rc == 2 ? 0 : rc;
}

static uint8_t *arena_copy(struct sto_lst_page *p, const void *src, size_t len)
{
	/* Offsets, not pointers, until the end: the arena may move. */
	if (p->arena_len + len > p->arena_cap) {
		size_t cap = p->arena_cap ? p->arena_cap : 64 * 1024;
		uint8_t *a;

		while (cap < p->arena_len + len)
			cap *= 2;
		a = realloc(p->arena, cap);
		if (!a)
			return NULL;
		p->arena = a;
		p->arena_cap = cap;
	}
	if (len)
		memcpy(p->arena + p->arena_len, src, len);
	p->arena_len += len;
	return p->arena + p->arena_len - len;
}

/* Items are recorded with arena offsets in the pointer fields, fixed up at
 * the end. */
static int add_entry(struct sto_lst_page *p, const struct walk *w)
{
	struct sto_listing_entry *e;
	const uint8_t *v = w->val.mv_data;
	size_t koff = p->arena_len, vlen = w->val.mv_size - VAL_HDR;
	uint64_t ts;

	if (p->page.n_entries == p->cap_ents) {
		size_t cap = p->cap_ents ? p->cap_ents * 2 : 64;

		e = realloc(p->ents, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		p->ents = e;
		p->cap_ents = cap;
	}
	if (!arena_copy(p, w->uk, w->ulen) || !arena_copy(p, v + VAL_HDR, vlen))
		return -ENOMEM;
	e = &p->ents[p->page.n_entries++];
	memcpy(&ts, v, 8);
	e->timestamp = le64toh(ts);
	e->tombstone = v[8] & VAL_TOMBSTONE;
	e->key = (const void *)(uintptr_t)koff;
	e->key_len = (uint32_t)w->ulen;
	e->value = (const void *)(uintptr_t)(koff + w->ulen);
	e->value_len = (uint32_t)vlen;
	return 0;
}

static int add_prefix(struct sto_lst_page *p, const uint8_t *cp, size_t len)
{
	size_t off = p->arena_len;

	if (p->page.n_prefixes == p->cap_pfx) {
		size_t cap = p->cap_pfx ? p->cap_pfx * 2 : 64;
		struct sto_bytes *b = realloc(p->pfx, cap * sizeof(*b));

		if (!b)
			return -ENOMEM;
		p->pfx = b;
		p->cap_pfx = cap;
	}
	if (!arena_copy(p, cp, len))
		return -ENOMEM;
	p->pfx[p->page.n_prefixes].data = (const void *)(uintptr_t)off;
	p->pfx[p->page.n_prefixes++].len = (uint32_t)len;
	return 0;
}

static int set_marker(struct sto_lst_page *p, const void *m, size_t len)
{
	size_t off = p->arena_len;

	if (!arena_copy(p, m, len))
		return -ENOMEM;
	p->page.next_marker.data = (const void *)(uintptr_t)off;
	p->page.next_marker.len = (uint32_t)len;
	return 0;
}

static void page_fixup(struct sto_lst_page *p)
{
	uint8_t *a = p->arena;

	for (size_t i = 0; i < p->page.n_entries; i++) {
		p->ents[i].key = a + (uintptr_t)p->ents[i].key;
		p->ents[i].value = a + (uintptr_t)p->ents[i].value;
	}
	for (size_t i = 0; i < p->page.n_prefixes; i++)
		p->pfx[i].data = a + (uintptr_t)p->pfx[i].data;
	p->page.next_marker.data = p->page.next_marker.len
		? a + (uintptr_t)p->page.next_marker.data : NULL;
	p->page.entries = p->ents;
	p->page.prefixes = p->pfx;
}

/* Where the delimiter first occurs in k at or after from; 0 if nowhere. */
static size_t delim_end(const uint8_t *k, size_t klen, size_t from,
			const uint8_t *d, size_t dlen)
{
	for (size_t i = from; i + dlen <= klen; i++)
		if (k[i] == d[0] && memcmp(k + i, d, dlen) == 0)
			return i + dlen;
	return 0;
}

static int query(struct walk *w, const struct sto_listing_query *q, uint32_t limit,
		 struct sto_lst_page *p)
{
	const uint8_t *pfx = q->prefix.data, *sa = q->start_after.data;
	const uint8_t *dl = q->delimiter.data;
	size_t plen = q->prefix.len, salen = q->start_after.len, dlen = q->delimiter.len;
	uint8_t cp[STO_LISTING_MAX_KEY];
	uint64_t budget = SCAN_BUDGET(limit), bytes = 0, items = 0;
	/* Last item emitted, for the marker: in the arena (offset) or none. */
	bool last_is_pfx = false;
	int on, ret;

	/* Start at the first key > start_after, or at the prefix. */
	if (salen && strata_bytes_cmp(sa, salen, pfx, plen) >= 0) {
		uint8_t next[STO_LISTING_MAX_KEY + 1];

		memcpy(next, sa, salen);
		next[salen] = 0;		/* the least string above sa */
		on = walk_seek(w, next, salen + 1);
	} else {
		on = walk_seek(w, pfx, plen);
	}
	while (on > 0) {
		const uint8_t *k = w->uk;
		size_t klen = w->ulen, end;
		bool tomb;

		if (!strata_has_prefix(k, klen, pfx, plen))
			break;
		p->scanned++;
		tomb = w->val.mv_size < VAL_HDR ||
		       (((const uint8_t *)w->val.mv_data)[8] & VAL_TOMBSTONE);
		end = dlen ? delim_end(k, klen, plen, dl, dlen) : 0;
		if (end) {
			uint32_t clen = (uint32_t)end;

			/* Under a common prefix: the prefix is the item.
			 * Not after start_after: skip it whole. */
			if (salen && strata_bytes_cmp(k, end, sa, salen) <= 0) {
				memcpy(cp, k, end);
				if (!successor(cp, &clen))
					break;
				p->seeks++;
				on = walk_seek(w, cp, clen);
				continue;
			}
			/* No live key under it seen yet: go on. */
			if (tomb && !q->include_tombstones) {
				on = walk_next(w);
				continue;
			}
			if (items == limit || (bytes + end > STO_LST_PAGE_BYTES && items)) {
				p->page.is_truncated = true;
				break;
			}
			memcpy(cp, k, end);
			if ((ret = add_prefix(p, cp, end)) < 0)
				return ret;
			items++;
			bytes += end;
			last_is_pfx = true;
			if (!successor(cp, &clen))
				break;
			p->seeks++;
			on = walk_seek(w, cp, clen);
			continue;
		}
		if (tomb && !q->include_tombstones) {
			if (p->scanned >= budget) {
				/* Bounded work: a short page, resume here. */
				p->page.is_truncated = true;
				return set_marker(p, k, klen);
			}
			on = walk_next(w);
			continue;
		}
		if (items == limit ||
		    (bytes + klen + w->val.mv_size > STO_LST_PAGE_BYTES && items)) {
			p->page.is_truncated = true;
			break;
		}
		if ((ret = add_entry(p, w)) < 0)
			return ret;
		items++;
		bytes += klen + w->val.mv_size;
		last_is_pfx = false;
		on = walk_next(w);
	}
	if (on < 0)
		return on;
	if (p->page.is_truncated) {
		/* The marker is the last item returned. */
		if (last_is_pfx) {
			const struct sto_bytes *b = &p->pfx[p->page.n_prefixes - 1];
			size_t off = (uintptr_t)b->data;

			p->page.next_marker.data = (const void *)(uintptr_t)off;
			p->page.next_marker.len = b->len;
		} else if (p->page.n_entries) {
			const struct sto_listing_entry *e = &p->ents[p->page.n_entries - 1];

			p->page.next_marker.data = e->key;
			p->page.next_marker.len = e->key_len;
		}
	}
	return 0;
}

int sto_idx_lst_query(struct sto_idx *x, const struct sto_listing_id *id,
		      const struct sto_listing_query *q, uint32_t cap,
		      struct sto_lst_page *out)
{
	struct walk *w;
	MDB_env *env;
	MDB_dbi lst, lstm;
	MDB_txn *txn;
	uint32_t limit = q->limit && q->limit < cap ? q->limit : cap;
	int rc, ret;

	memset(out, 0, sizeof(*out));
	if (limit == 0)
		limit = 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	sto_idx_lst_handles(x, &env, &lst, &lstm);
	head_encode(w->head, id);
	w->glen = group_len(env);
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		free(w);
		return sto_mdb_err(rc);
	}
	rc = mdb_cursor_open(txn, lst, &w->cur);
	if (rc) {
		ret = sto_mdb_err(rc);
		goto out_txn;
	}
	ret = query(w, q, limit, out);
	mdb_cursor_close(w->cur);
out_txn:
	mdb_txn_abort(txn);
	free(w);
	if (ret == 0)
		page_fixup(out);
	return ret;
}

void sto_lst_page_free(struct sto_lst_page *p)
{
	free(p->ents);
	free(p->pfx);
	free(p->arena);
	memset(p, 0, sizeof(*p));
}

/* The user key of the record (key, v) into out (its first or last member's
 * for a group); its length. */
static uint32_t rec_key(const MDB_val *key, const MDB_val *v, uint32_t glen,
			bool first, uint8_t *out)
{
	uint32_t n = (uint32_t)(key->mv_size - STO_LST_HEAD);
	struct member m, last = { 0 };
	size_t off = 0;
	bool any = false;

	memcpy(out, (const uint8_t *)key->mv_data + STO_LST_HEAD, n);
	if (n != glen)
		return n;
	while (member_next(v, &off, &m) > 0) {
		last = m;
		any = true;
		if (first)
			break;
	}
	if (any && last.slen)
		memcpy(out + n, last.suf, last.slen);
	return n + (any ? last.slen : 0);
}

int sto_idx_lst_stat(struct sto_idx *x, const struct sto_listing_id *id,
		     struct sto_lst_stat_buf *out)
{
	uint8_t head[STO_LST_HEAD], kb[STO_LST_HEAD];
	MDB_val key = { STO_LST_HEAD, head }, v;
	MDB_env *env;
	MDB_dbi lst, lstm;
	MDB_cursor *cur;
	MDB_txn *txn;
	uint32_t hlen = STO_LST_HEAD, glen;
	int rc;

	memset(out, 0, sizeof(*out));
	head_encode(head, id);
	sto_idx_lst_handles(x, &env, &lst, &lstm);
	glen = group_len(env);
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return sto_mdb_err(rc);
	rc = mdb_get(txn, lstm, &key, &v);
	if (rc == MDB_NOTFOUND) {
		rc = 0;
		goto out_txn;		/* empty */
	}
	if (rc)
		goto out_txn;
	if (v.mv_size == META_LEN || v.mv_size == META_LEN_V1) {
		uint64_t m[3];

		memcpy(m, v.mv_data, sizeof(m));
		out->st.entries = m[0];
		out->st.tombstones = m[1];
		out->st.bytes = m[2];
	}
	rc = mdb_cursor_open(txn, lst, &cur);
	if (rc)
		goto out_txn;
	key.mv_size = STO_LST_HEAD;
	key.mv_data = head;
	rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
	if (rc == 0 && key.mv_size > STO_LST_HEAD && !memcmp(key.mv_data, head, STO_LST_HEAD))
		out->st.first_key.len = rec_key(&key, &v, glen, true, out->first);
	/* The last: step back from the first key past this listing. */
	memcpy(kb, head, STO_LST_HEAD);
	if (successor(kb, &hlen)) {
		key.mv_size = hlen;
		key.mv_data = kb;
		rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
		rc = mdb_cursor_get(cur, &key, &v, rc == 0 ? MDB_PREV : MDB_LAST);
	} else {
		rc = mdb_cursor_get(cur, &key, &v, MDB_LAST);
	}
	if (rc == 0 && key.mv_size > STO_LST_HEAD && !memcmp(key.mv_data, head, STO_LST_HEAD))
		out->st.last_key.len = rec_key(&key, &v, glen, false, out->last);
	rc = 0;
	mdb_cursor_close(cur);
out_txn:
	mdb_txn_abort(txn);
	out->st.first_key.data = out->first;
	out->st.last_key.data = out->last;
	return sto_mdb_err(rc);
}

/* A read transaction and a cursor on lstm at the first listing head >=
 * key's (> it when after: "after" is exclusive, and the all-zero id is a
 * real id when there is none). Returns the positioning's LMDB code; *txn
 * NULL when none could be opened, else the caller closes the cursor (when
 * *cur) and aborts *txn. */
static int lstm_seek(struct sto_idx *x, bool after, MDB_txn **txn, MDB_cursor **cur,
		     MDB_val *key, MDB_val *v)
{
	const uint8_t *kb = key->mv_data;
	MDB_env *env;
	MDB_dbi lst, lstm;
	int rc;

	*cur = NULL;
	sto_idx_lst_handles(x, &env, &lst, &lstm);
	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn);
	if (rc) {
		*txn = NULL;
		return rc;
	}
	rc = mdb_cursor_open(*txn, lstm, cur);
	if (rc) {
		*cur = NULL;
		return rc;
	}
	rc = mdb_cursor_get(*cur, key, v, MDB_SET_RANGE);
	if (rc == 0 && after && key->mv_size == STO_LST_HEAD &&
	    !memcmp(key->mv_data, kb, STO_LST_HEAD))
		rc = mdb_cursor_get(*cur, key, v, MDB_NEXT);
	return rc;
}

int sto_idx_lst_ids(struct sto_idx *x, uint32_t part, const uint8_t *after,
		    struct sto_listing_info *out, size_t max, size_t *n, bool *more)
{
	uint8_t kb[STO_LST_HEAD];
	MDB_val key = { STO_LST_HEAD, kb }, v;
	MDB_cursor *cur;
	MDB_txn *txn;
	int rc;

	*n = 0;
	*more = false;
	kb[0] = part >> 24; kb[1] = part >> 16; kb[2] = part >> 8; kb[3] = part;
	if (after)
		memcpy(kb + 4, after, STO_LISTING_ID_LEN);
	else
		memset(kb + 4, 0, STO_LISTING_ID_LEN);
	rc = lstm_seek(x, after != NULL, &txn, &cur, &key, &v);
	if (!txn)
		return sto_mdb_err(rc);
	for (; rc == 0; rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
		const uint8_t *k = key.mv_data;
		struct sto_listing_info *o;

		if (key.mv_size != STO_LST_HEAD || memcmp(k, kb, 4))
			break;		/* past the partition */
		if (*n == max) {
			*more = true;
			break;
		}
		o = &out[(*n)++];
		memset(o, 0, sizeof(*o));
		memcpy(o->id, k + 4, STO_LISTING_ID_LEN);
		if (v.mv_size == META_LEN || v.mv_size == META_LEN_V1) {
			uint64_t m[4] = { 0, 0, 0, 0 };

			memcpy(m, v.mv_data, v.mv_size);
			o->entries = m[0];
			o->tombstones = m[1];
			o->bytes = m[2];
			/* a listing last written before the hash: unlike any */
			o->hash = v.mv_size == META_LEN ? m[3] : UINT64_MAX;
		}
	}
	rc = rc == MDB_NOTFOUND ? 0 : rc;
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return sto_mdb_err(rc);
}

int sto_idx_lst_tombstoned(struct sto_idx *x, const struct sto_listing_id *after,
			   struct sto_listing_id *out, size_t max, size_t *n)
{
	uint8_t kb[STO_LST_HEAD] = { 0 };
	MDB_val key = { STO_LST_HEAD, kb }, v;
	MDB_cursor *cur;
	MDB_txn *txn;
	int rc;

	*n = 0;
	if (after)
		head_encode(kb, after);
	rc = lstm_seek(x, after != NULL, &txn, &cur, &key, &v);
	if (!txn)
		return sto_mdb_err(rc);
	for (; rc == 0 && *n < max; rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT)) {
		const uint8_t *k = key.mv_data;
		uint64_t m[4] = { 0, 0, 0, 0 };

		if (key.mv_size != STO_LST_HEAD ||
		    (v.mv_size != META_LEN && v.mv_size != META_LEN_V1))
			continue;
		memcpy(m, v.mv_data, v.mv_size);
		if (!m[1])
			continue;
		out[*n].part = (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
		memcpy(out[*n].id, k + 4, STO_LISTING_ID_LEN);
		(*n)++;
	}
	rc = rc == MDB_NOTFOUND ? 0 : rc;
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return sto_mdb_err(rc);
}
