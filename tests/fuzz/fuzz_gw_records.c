/* libFuzzer target: the records the gateway reads back from storage nodes
 * (api/gw_meta.c head records, api/gw_mpu.c multipart manifests and part
 * entries of the parts listing, with or without checksums). The first byte picks the decoder. Errors are fine; a record that decodes must
 * encode back to the same bytes (the formats have one encoding each) and
 * respect its limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3_buf b = { 0 };

	if (size < 1)
		return 0;
	if (data[0] % 3 == 2) {
		/* A part entry: 4 key bytes, then the value. */
		struct gw_part_entry p;
		struct sto_listing_entry e = { data + 1, size > 5 ? 4 : (uint32_t)(size - 1),
					       1, false, data + 5,
					       size > 5 ? (uint32_t)(size - 5) : 0 };

		if (gw_part_entry_decode(&e, &p) == 0) {
			struct gw_meta m = { .version = p.version, .size = p.size,
					     .seg_size = p.seg_size, .over = p.over,
					     .nover = p.nover, .cksum_alg = p.cksum_alg };

			memcpy(m.md5, p.md5, 16);
			memcpy(m.cksum, p.cksum, sizeof(m.cksum));
			if (!p.seg_size || gw_part_entry_encode(&m, &b) < 0 ||
			    b.len != e.value_len || memcmp(b.p, e.value, b.len))
				abort();
		}
		gw_part_entry_free(&p);
	} else if (data[0] % 3 == 1) {
		struct gw_manifest m;

		if (gw_manifest_decode(data + 1, size - 1, &m) == 0) {
			if (m.n < 1 || m.n > S3_MAX_PARTS)
				abort();
			for (uint32_t i = 0; i < m.n; i++)
				if (!m.parts[i].seg_size ||
				    (i && m.parts[i].off != m.parts[i - 1].off +
							    m.parts[i - 1].size))
					abort();
			if (gw_manifest_encode(&m, &b) < 0 || b.len != size - 1 ||
			    memcmp(b.p, data + 1, b.len))
				abort();
		}
		gw_manifest_free(&m);
	} else {
		struct gw_meta m;

		if (gw_meta_decode(data + 1, size - 1, &m) == 0) {
			char etag[S3_ETAG_MAX];

			if (m.nhdr > GW_META_MAX_HDRS || m.nover > GW_META_MAX_OVERRIDES)
				abort();
			gw_meta_etag(&m, etag);
			if (gw_meta_encode(&m, &b) < 0 || b.len != size - 1 ||
			    memcmp(b.p, data + 1, b.len))
				abort();
		}
		gw_meta_free(&m);
	}
	s3_buf_free(&b);
	return 0;
}
