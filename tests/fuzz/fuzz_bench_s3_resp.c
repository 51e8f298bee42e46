/* libFuzzer target: strata-bench s3's response reader (bench/s3util.c) and
 * its size-distribution parser.
 *
 * The first byte picks the mode (HEAD or not, verify or not) and the chunk
 * size the bytes arrive in, as a socket would split them; the rest is what
 * a server sent. Any bytes must give 1, 0 or -EPROTO and a sane state,
 * never a crash or an out-of-bounds compare; the same bytes, split
 * differently, must give the same verdict. The input is also tried as a
 * --sizes argument.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int feed(struct s3b_resp *r, const uint8_t *d, size_t n, size_t step)
{
	int ret = 0;

	for (size_t i = 0; i < n && ret == 0; i += step)
		ret = s3b_resp_feed(r, (const char *)d + i, n - i < step ? n - i : step);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t expect[64] = "0123456789abcdef0123456789abcdef"
					  "0123456789abcdef0123456789abcde";
	struct s3b_resp *a, *b;
	struct s3b_sizes sz;
	char spec[160], code[64];
	unsigned mode;
	int ra, rb;

	if (size < 1)
		return 0;
	mode = data[0];
	data++, size--;
	a = malloc(sizeof(*a));
	b = malloc(sizeof(*b));
	if (!a || !b)
		goto out;
	s3b_resp_init(a, mode & 1, mode & 2 ? expect : NULL, (mode >> 2) & 63);
	s3b_resp_init(b, mode & 1, mode & 2 ? expect : NULL, (mode >> 2) & 63);
	ra = feed(a, data, size, size ? size : 1);
	rb = feed(b, data, size, 1 + (mode >> 5));
	assert(ra == 1 || ra == 0 || ra == -EPROTO);
	/* One chunk or many: the same verdict on a complete response. */
	if (ra == 1 && rb == 1) {
		assert(a->status == b->status && a->got == b->got);
		assert(a->mismatch == b->mismatch);
	}
	assert(a->errlen <= S3B_ERRBODY);
	s3b_resp_code(a, code, sizeof(code));
	assert(strlen(code) < sizeof(code));

	if (size < sizeof(spec)) {
		memcpy(spec, data, size);
		spec[size] = '\0';
		if (s3b_sizes_parse(&sz, spec) == 0) {
			assert(sz.n > 0 && sz.total > 0 && sz.max <= S3B_MAX_OBJECT);
			assert(s3b_sizes_pick(&sz, "k") <= sz.max);
		}
	}
out:
	free(a);
	free(b);
	return 0;
}
