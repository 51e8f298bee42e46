/* libFuzzer target: the records the gateway reads back from storage nodes
 * (api/gw_meta.c head records, api/gw_mpu.c multipart manifests). The
 * first byte picks the decoder. Errors are fine; a record that decodes must
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
	if (data[0] & 1) {
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
