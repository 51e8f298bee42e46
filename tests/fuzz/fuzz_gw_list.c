/* libFuzzer target: the gateway's listing parsers (api/gw_list.c): the
 * shard map a bucket record carries (base64 of a binary encoding), listing
 * entry values and ListObjects query strings. Errors are fine; crashes,
 * leaks, hangs and broken invariants (gw_list_fuzz_one aborts) are not. */
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gw_list_fuzz_one(data, size);
	return 0;
}
