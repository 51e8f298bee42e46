/* libFuzzer target: the storage node's frame and header decoding, driven the
 * way a connection drives it (prefix, header, skip payload, next frame), plus
 * the response decoder the client uses and the volume record decoder. */
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	struct sto_rec rec;

	(void)sto_rec_decode(data, size, &rec);
	while (off < size) {
		const char *why = NULL;
		StoRequest *q = NULL;
		StoResponse *m = NULL;
		uint32_t hl;
		int ret = sto_frame_prefix(data + off, size - off, STO_MAX_REQ_HDR, &hl);

		if (ret <= 0 || size - off < STO_FRAME_PREFIX + (size_t)hl)
			break;
		off += STO_FRAME_PREFIX;
		if (sto_resp_decode(data + off, hl, &m) == 0)
			sto_resp_free(m);
		ret = sto_req_decode(data + off, hl, &q, &why);
		off += hl;
		if (ret < 0) {
			if (!why)
				__builtin_trap();	/* every rejection says why */
			break;
		}
		{
			struct sto_key k;

			sto_req_key(q, &k);
			if (q->op == STO_OP__STO_OP_PUT &&
			    (q->payload_len > STO_MAX_FRAGMENT || q->meta.len > STO_MAX_META))
				__builtin_trap();	/* validation let it through */
			if (q->tier_class > STO_TIER_PIN_COLD ||
			    (q->op != STO_OP__STO_OP_PUT && q->op != STO_OP__STO_OP_SET_TIER &&
			     (q->tier_class || q->cold_after)))
				__builtin_trap();
			if (q->n_listing_entries > STO_LISTING_MAX_BATCH ||
			    q->start_after.len > STO_LISTING_MAX_KEY ||
			    q->prefix.len > STO_LISTING_MAX_KEY ||
			    q->delimiter.len > STO_LISTING_MAX_DELIM ||
			    q->limit > STO_LISTING_MAX_DELETE)
				__builtin_trap();
			if ((q->op == STO_OP__STO_OP_PURGE || q->op == STO_OP__STO_OP_DELETE ||
			     q->op == STO_OP__STO_OP_SET_TIER) &&
			    (q->name_hash.len != STO_NAME_HASH_LEN || !q->timestamp))
				__builtin_trap();
			if (q->op == STO_OP__STO_OP_LISTING_IDS &&
			    ((q->start_after.len && q->start_after.len != STO_LISTING_ID_LEN) ||
			     q->listing_id.len || q->name_hash.len || q->n_listing_entries))
				__builtin_trap();
			for (size_t i = 0; i < q->n_listing_entries; i++) {
				const StoListingEntry *e = q->listing_entries[i];

				if (!e->key.len || e->key.len > STO_LISTING_MAX_KEY ||
				    e->value.len > STO_LISTING_MAX_VALUE || !e->timestamp ||
				    (e->tombstone && e->value.len))
					__builtin_trap();
			}
			if (q->payload_len > size - off) {
				sto_req_free(q);
				break;
			}
			off += q->payload_len;
		}
		sto_req_free(q);
	}
	return 0;
}
