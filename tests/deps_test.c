/* deps_test: every library Strata depends on links and answers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <isa-l.h>
#include <liburing.h>
#include <libvirt/libvirt.h>
#include <lmdb.h>
#include <openssl/crypto.h>
#include <protobuf-c/protobuf-c.h>
#include <sodium.h>
#include <uv.h>

static void test_versions(void **state)
{
	unsigned long virt = 0;

	assert_true(uv_version() > 0);
	assert_non_null(protobuf_c_version());
	assert_non_null(mdb_version(NULL, NULL, NULL));
	assert_non_null(OpenSSL_version(OPENSSL_VERSION));
	assert_int_equal(virGetVersion(&virt, NULL, NULL), 0);
	assert_true(virt > 0);
	assert_true(sodium_init() >= 0);
}

static void test_isal_crc32c(void **state)
{
	/* CRC-32C check value of "123456789" (RFC 3720 B.4). ISA-L's
	 * crc32_iscsi takes and returns the non-inverted register. */
	const char *s = "123456789";

	assert_int_equal(~crc32_iscsi((unsigned char *)s, 9, 0xffffffff), 0xe3069283);
}

static void test_io_uring_nop(void **state)
{
	struct io_uring ring;
	struct io_uring_cqe *cqe;

	assert_int_equal(io_uring_queue_init(4, &ring, 0), 0);
	io_uring_prep_nop(io_uring_get_sqe(&ring));
	assert_int_equal(io_uring_submit(&ring), 1);
	assert_int_equal(io_uring_wait_cqe(&ring, &cqe), 0);
	assert_int_equal(cqe->res, 0);
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_isal_crc32c),
		cmocka_unit_test(test_io_uring_nop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
