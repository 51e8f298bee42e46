/* api/ec.h: the erasure coder (api/ec.c) for code outside api/.
 *
 * The repair daemon (storage/repair.c) rebuilds fragments with the same ISA-L
 * coder the gateway encodes them with; this header gives it the coder and
 * nothing else of the gateway. The declarations are the same as in
 * api/internal.h (which api/ files keep using); a file includes one or the
 * other. Link strata_s3.
 */
#ifndef STRATA_API_EC_H
#define STRATA_API_EC_H

#include <stddef.h>
#include <stdint.h>

#ifndef GW_EC_MAX_K
#define GW_EC_MAX_K		16
#define GW_EC_MAX_M		8
#define GW_EC_MAX_FRAGS		(GW_EC_MAX_K + GW_EC_MAX_M)
#endif

struct gw_ec;

/* The process-wide coder for (k,m): 0, -EINVAL, -ENOMEM. Pair with
 * gw_ec_put(). Thread-safe. */
int gw_ec_get(unsigned k, unsigned m, struct gw_ec **out);
void gw_ec_put(struct gw_ec *ec);

/* m parity fragments from k data fragments of len bytes each. */
int gw_ec_encode(const struct gw_ec *ec, size_t len, uint8_t *const *data,
		 uint8_t *const *parity);

/* frags[0..k+m) of len bytes; present: valid ones; want: rebuilt into their
 * buffers. 0, -EIO (fewer than k present), -EINVAL, -ENOMEM. */
int gw_ec_decode(struct gw_ec *ec, size_t len, uint8_t *const *frags,
		 uint32_t present, uint32_t want);

#endif
