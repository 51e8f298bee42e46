# Dependencies: one pkg-config module each, imported as PkgConfig::<NAME>.
# The Debian package that provides each is in tools/dev (DEB_PACKAGES).
pkg_check_modules(URING    REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(ISAL     REQUIRED IMPORTED_TARGET libisal)
pkg_check_modules(UV       REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(VIRT     REQUIRED IMPORTED_TARGET libvirt)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(LMDB     REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(CRYPTO   REQUIRED IMPORTED_TARGET libcrypto)
pkg_check_modules(SODIUM   REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(CMOCKA   REQUIRED IMPORTED_TARGET cmocka)
find_package(Threads REQUIRED)

find_program(PROTOC_C NAMES protoc-c REQUIRED)

foreach(dep URING ISAL UV VIRT PROTOBUFC LMDB CRYPTO SODIUM CMOCKA)
	message(STATUS "strata: ${dep} ${${dep}_VERSION}")
endforeach()

pkg_check_modules(JANSSON  REQUIRED IMPORTED_TARGET jansson)

# S3 request bodies (api/s3xml.c): libexpat1-dev.
pkg_check_modules(EXPAT    REQUIRED IMPORTED_TARGET expat)
