/* storage/frame.c: the RPC frame codec and request validation (the protocol
 * edge: everything past sto_req_decode() may assume a well-formed request). */
#include "internal.h"

#include <errno.h>
#include <string.h>

#include <isa-l.h>

const char *sto_strerror(int err)
{
	switch (err) {
	case STO_EPROTO:	return "malformed or oversized frame";
	case STO_EVERSION:	return "unsupported protocol version";
	case STO_ECRC:		return "CRC-32C mismatch";
	case STO_ECONFLICT:	return "an equal or newer version exists";
	case STO_ECLOSED:	return "connection closed";
	default:		return strerror(-err);
	}
}

uint32_t sto_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	/* ISA-L keeps the register non-inverted and takes an int length. */
	crc = ~crc;
	while (len) {
		size_t n = len > (1u << 30) ? (1u << 30) : len;

		crc = crc32_iscsi((unsigned char *)p, (int)n, crc);
		p += n;
		len -= n;
	}
	return ~crc;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

int sto_frame_prefix(const uint8_t *buf, size_t len, size_t max_hdr,
		     uint32_t *hdr_len)
{
	uint32_t n;

	if (len < STO_FRAME_PREFIX) {
		/* Reject a wrong magic as soon as its bytes are in. */
		for (size_t i = 0; i < len && i < 4; i++)
			if (buf[i] != (uint8_t)(STO_FRAME_MAGIC >> (24 - 8 * i)))
				return STO_EPROTO;
		return 0;
	}
	if (get_be32(buf) != STO_FRAME_MAGIC)
		return STO_EPROTO;
	n = get_be32(buf + 4);
	if (n == 0 || n > max_hdr)
		return STO_EPROTO;
	*hdr_len = n;
	return 1;
}

void sto_frame_put_prefix(uint8_t *buf, uint32_t hdr_len)
{
	put_be32(buf, STO_FRAME_MAGIC);
	put_be32(buf + 4, hdr_len);
}

static bool op_has_key(StoOp op)
{
	return op == STO_OP__STO_OP_PUT || op == STO_OP__STO_OP_GET ||
	       op == STO_OP__STO_OP_HEAD || op == STO_OP__STO_OP_DELETE ||
	       op == STO_OP__STO_OP_PURGE || op == STO_OP__STO_OP_SET_TIER;
}

static bool op_is_listing(StoOp op)
{
	return op == STO_OP__STO_OP_LISTING_PUT || op == STO_OP__STO_OP_LISTING_QUERY ||
	       op == STO_OP__STO_OP_LISTING_STAT ||
	       op == STO_OP__STO_OP_LISTING_DELETE_RANGE;
}

/* The listing fields: only on listing ops, every length bounded. */
static int listing_validate(const StoRequest *r, const char **why)
{
	bool lst = op_is_listing(r->op);

	if (r->op == STO_OP__STO_OP_LISTING_IDS) {
		/* partition, and where to go on: start_after is an id */
		if (r->listing_id.len || r->n_listing_entries || r->prefix.len ||
		    r->delimiter.len || r->limit || r->include_tombstones || r->end.len ||
		    r->name_hash.len) {
			*why = "fields LISTING_IDS does not take";
			return STO_EPROTO;
		}
		if (r->start_after.len && r->start_after.len != STO_LISTING_ID_LEN) {
			*why = "LISTING_IDS start_after must be a 16-byte id";
			return STO_EPROTO;
		}
		return 0;
	}
	if (!lst) {
		if (r->listing_id.len || r->n_listing_entries || r->start_after.len ||
		    r->prefix.len || r->delimiter.len || r->limit ||
		    r->include_tombstones || r->end.len) {
			*why = "listing fields on a request that takes none";
			return STO_EPROTO;
		}
		return 0;
	}
	if (r->listing_id.len != STO_LISTING_ID_LEN) {
		*why = "listing_id must be 16 bytes";
		return STO_EPROTO;
	}
	if (r->name_hash.len) {
		*why = "name_hash on a listing request";
		return STO_EPROTO;
	}
	if ((r->op == STO_OP__STO_OP_LISTING_PUT) != (r->n_listing_entries > 0)) {
		*why = r->n_listing_entries ? "listing entries on a request that takes none"
					    : "LISTING_PUT without entries";
		return STO_EPROTO;
	}
	if (r->n_listing_entries > STO_LISTING_MAX_BATCH) {
		*why = "too many listing entries";
		return STO_EPROTO;
	}
	for (size_t i = 0; i < r->n_listing_entries; i++) {
		const StoListingEntry *e = r->listing_entries[i];

		if (e->key.len == 0 || e->key.len > STO_LISTING_MAX_KEY) {
			*why = "listing key must be 1..1024 bytes";
			return STO_EPROTO;
		}
		if (e->value.len > STO_LISTING_MAX_VALUE) {
			*why = "listing value too large";
			return STO_EPROTO;
		}
		if (e->tombstone && e->value.len) {
			*why = "listing tombstone with a value";
			return STO_EPROTO;
		}
		if (e->timestamp == 0) {
			*why = "listing entry without a timestamp";
			return STO_EPROTO;
		}
	}
	if (r->start_after.len > STO_LISTING_MAX_KEY || r->prefix.len > STO_LISTING_MAX_KEY ||
	    r->end.len > STO_LISTING_MAX_KEY) {
		*why = "listing start_after, prefix or end too long";
		return STO_EPROTO;
	}
	if (r->delimiter.len > STO_LISTING_MAX_DELIM) {
		*why = "listing delimiter too long";
		return STO_EPROTO;
	}
	if (r->op != STO_OP__STO_OP_LISTING_QUERY &&
	    (r->prefix.len || r->delimiter.len || r->include_tombstones)) {
		*why = "query fields on a listing request that takes none";
		return STO_EPROTO;
	}
	if (r->op == STO_OP__STO_OP_LISTING_QUERY && r->limit > STO_LISTING_MAX_LIMIT) {
		*why = "listing limit too large";
		return STO_EPROTO;
	}
	if (r->op == STO_OP__STO_OP_LISTING_DELETE_RANGE && r->limit > STO_LISTING_MAX_DELETE) {
		*why = "listing delete limit too large";
		return STO_EPROTO;
	}
	if (r->op != STO_OP__STO_OP_LISTING_DELETE_RANGE && r->end.len) {
		*why = "end on a request that takes none";
		return STO_EPROTO;
	}
	if ((r->op == STO_OP__STO_OP_LISTING_PUT || r->op == STO_OP__STO_OP_LISTING_STAT) &&
	    (r->start_after.len || r->limit)) {
		*why = "range fields on a request that takes none";
		return STO_EPROTO;
	}
	return 0;
}

static int req_validate(const StoRequest *r, const char **why)
{
	if (r->version != STO_PROTO_VERSION) {
		*why = "unsupported protocol version";
		return STO_EVERSION;
	}
	switch (r->op) {
	case STO_OP__STO_OP_PUT:
	case STO_OP__STO_OP_GET:
	case STO_OP__STO_OP_HEAD:
	case STO_OP__STO_OP_DELETE:
	case STO_OP__STO_OP_LIST:
	case STO_OP__STO_OP_STAT:
	case STO_OP__STO_OP_LISTING_PUT:
	case STO_OP__STO_OP_LISTING_QUERY:
	case STO_OP__STO_OP_LISTING_STAT:
	case STO_OP__STO_OP_LISTING_DELETE_RANGE:
	case STO_OP__STO_OP_PURGE:
	case STO_OP__STO_OP_LISTING_IDS:
	case STO_OP__STO_OP_SET_TIER:
		break;
	default:
		*why = "unknown operation";
		return STO_EPROTO;
	}
	if (op_has_key(r->op) && r->name_hash.len != STO_NAME_HASH_LEN) {
		*why = "name_hash must be 16 bytes";
		return STO_EPROTO;
	}
	if (r->meta.len > STO_MAX_META) {
		*why = "metadata too large";
		return STO_EPROTO;
	}
	if (r->op != STO_OP__STO_OP_PUT && (r->payload_len || r->meta.len)) {
		*why = "payload or metadata on a request that takes none";
		return STO_EPROTO;
	}
	if (r->op != STO_OP__STO_OP_PUT && r->op != STO_OP__STO_OP_SET_TIER &&
	    (r->tier_class || r->cold_after)) {
		*why = "tiering fields on a request that takes none";
		return STO_EPROTO;
	}
	if (r->tier_class > STO_TIER_PIN_COLD) {
		*why = "unknown tier class";
		return STO_EPROTO;
	}
	if (r->payload_len > STO_MAX_FRAGMENT) {
		*why = "fragment too large";
		return STO_EPROTO;
	}
	if ((r->op == STO_OP__STO_OP_PUT || r->op == STO_OP__STO_OP_DELETE ||
	     r->op == STO_OP__STO_OP_PURGE || r->op == STO_OP__STO_OP_SET_TIER) &&
	    r->timestamp == 0) {
		*why = "timestamp required";
		return STO_EPROTO;
	}
	if (r->op == STO_OP__STO_OP_GET && r->offset + r->length < r->offset) {
		*why = "range overflows";
		return STO_EPROTO;
	}
	if (r->op == STO_OP__STO_OP_LIST && r->suffix >= (1u << STO_SUFFIX_BITS)) {
		*why = "suffix out of range";
		return STO_EPROTO;
	}
	return listing_validate(r, why);
}

int sto_req_decode(const uint8_t *buf, size_t len, StoRequest **out,
		   const char **why)
{
	StoRequest *r;
	int ret;

	if (len > STO_MAX_REQ_HDR) {
		*why = "request header too large";
		return STO_EPROTO;
	}
	r = sto_request__unpack(NULL, len, buf);
	if (!r) {
		*why = "request header does not decode";
		return STO_EPROTO;
	}
	ret = req_validate(r, why);
	if (ret < 0) {
		sto_request__free_unpacked(r, NULL);
		return ret;
	}
	*out = r;
	return 0;
}

void sto_req_free(StoRequest *r)
{
	if (r)
		sto_request__free_unpacked(r, NULL);
}

int sto_resp_decode(const uint8_t *buf, size_t len, StoResponse **out)
{
	StoResponse *r;

	if (len > STO_MAX_RESP_HDR)
		return STO_EPROTO;
	r = sto_response__unpack(NULL, len, buf);
	if (!r)
		return STO_EPROTO;
	*out = r;
	return 0;
}

void sto_resp_free(StoResponse *r)
{
	if (r)
		sto_response__free_unpacked(r, NULL);
}

void sto_req_key(const StoRequest *r, struct sto_key *k)
{
	memset(k, 0, sizeof(*k));
	k->part = r->partition;
	if (r->name_hash.len == STO_NAME_HASH_LEN)
		memcpy(k->name, r->name_hash.data, STO_NAME_HASH_LEN);
	k->frag = r->frag_index;
}

int sto_req_encode(const StoRequest *r, uint8_t **buf, size_t *len)
{
	size_t n = sto_request__get_packed_size(r);
	uint8_t *b;

	if (n > STO_MAX_REQ_HDR)
		return -EMSGSIZE;
	b = malloc(STO_FRAME_PREFIX + n);
	if (!b)
		return -ENOMEM;
	sto_frame_put_prefix(b, (uint32_t)n);
	sto_request__pack(r, b + STO_FRAME_PREFIX);
	*buf = b;
	*len = STO_FRAME_PREFIX + n;
	return 0;
}

int sto_resp_encode(const StoResponse *r, uint8_t **buf, size_t *len)
{
	size_t n = sto_response__get_packed_size(r);
	uint8_t *b;

	if (n > STO_MAX_RESP_HDR)
		return -EMSGSIZE;
	b = malloc(STO_FRAME_PREFIX + n);
	if (!b)
		return -ENOMEM;
	sto_frame_put_prefix(b, (uint32_t)n);
	sto_response__pack(r, b + STO_FRAME_PREFIX);
	*buf = b;
	*len = STO_FRAME_PREFIX + n;
	return 0;
}
