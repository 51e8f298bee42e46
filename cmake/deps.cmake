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

# http_parser (Debian: libhttp-parser-dev) ships no pkg-config file: found by
# header and library, imported as HttpParser::HttpParser. Debian 12 packages
# llhttp only as JavaScript (node-llhttp), so the C parser is http_parser 2.9.
pkg_check_modules(HTTP_PARSER QUIET IMPORTED_TARGET http-parser)
if(HTTP_PARSER_FOUND)
	add_library(HttpParser::HttpParser ALIAS PkgConfig::HTTP_PARSER)
else()
	find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h)
	find_library(HTTP_PARSER_LIBRARY NAMES http_parser)
	if(NOT HTTP_PARSER_INCLUDE_DIR OR NOT HTTP_PARSER_LIBRARY)
		message(FATAL_ERROR "http_parser not found: install the Debian package libhttp-parser-dev (tools/dev install)")
	endif()
	file(STRINGS ${HTTP_PARSER_INCLUDE_DIR}/http_parser.h _hp_ver
	     REGEX "^#define HTTP_PARSER_VERSION_(MAJOR|MINOR) [0-9]+")
	string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*" "\\1.\\2"
	       HTTP_PARSER_VERSION "${_hp_ver}")
	if(HTTP_PARSER_VERSION VERSION_LESS 2.9)
		message(FATAL_ERROR "http_parser ${HTTP_PARSER_VERSION} is too old (2.9 needed): install libhttp-parser-dev from Debian 12")
	endif()
	add_library(HttpParser::HttpParser UNKNOWN IMPORTED)
	set_target_properties(HttpParser::HttpParser PROPERTIES
		IMPORTED_LOCATION ${HTTP_PARSER_LIBRARY}
		INTERFACE_INCLUDE_DIRECTORIES ${HTTP_PARSER_INCLUDE_DIR})
endif()
message(STATUS "strata: HTTP_PARSER ${HTTP_PARSER_VERSION}")

# S3 request bodies (api/s3xml.c): libexpat1-dev.
pkg_check_modules(EXPAT    REQUIRED IMPORTED_TARGET expat)
