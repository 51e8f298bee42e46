# Helpers shared by every folder's CMakeLists.txt.

# strata_protobuf(<target> <file.proto>...): runs protoc-c and builds the
# generated .pb-c.c files into an object library <target>; consumers include
# ${CMAKE_CURRENT_BINARY_DIR} through the target's interface.
function(strata_protobuf target)
	set(srcs)
	foreach(proto ${ARGN})
		get_filename_component(abs ${proto} ABSOLUTE)
		get_filename_component(dir ${abs} DIRECTORY)
		get_filename_component(name ${proto} NAME_WE)
		set(out_c ${CMAKE_CURRENT_BINARY_DIR}/${name}.pb-c.c)
		set(out_h ${CMAKE_CURRENT_BINARY_DIR}/${name}.pb-c.h)
		add_custom_command(
			OUTPUT ${out_c} ${out_h}
			COMMAND ${PROTOC_C} --proto_path=${dir}
				--c_out=${CMAKE_CURRENT_BINARY_DIR} ${abs}
			DEPENDS ${abs}
			COMMENT "protoc-c ${proto}")
		list(APPEND srcs ${out_c})
	endforeach()
	add_library(${target} STATIC ${srcs})
	target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_BINARY_DIR})
	target_link_libraries(${target} PUBLIC PkgConfig::PROTOBUFC)
	set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
	# Generated code is not ours to warn about.
	target_compile_options(${target} PRIVATE -Wno-error -Wno-missing-prototypes)
endfunction()

# strata_unit_test(<name> SOURCES ... LIBS ...): a cmocka test binary run by
# ctest; exit code 77 means skipped (shown as such in the summary).
function(strata_unit_test name)
	cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
	add_executable(${name} ${T_SOURCES})
	target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
	add_test(NAME ${name} COMMAND ${name})
	if(NOT T_TIMEOUT)
		set(T_TIMEOUT 300)
	endif()
	if(NOT T_LABELS)
		set(T_LABELS unit)
	endif()
	set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77
			     TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()

# libFuzzer needs clang; with gcc the fuzz targets are not built (and say so).
include(CheckCSourceCompiles)
set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
check_c_source_compiles("
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }"
	STRATA_HAVE_LIBFUZZER)
unset(CMAKE_REQUIRED_FLAGS)
# Coverage feedback needs the code under test instrumented, not just the
# fuzz harness: in the sanitizer build every library gets the counters.
if(STRATA_HAVE_LIBFUZZER AND CMAKE_BUILD_TYPE STREQUAL "Asan")
	add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# strata_fuzzer(<name> SOURCES ... LIBS ... [SEEDS_FROM <cmd>]): a libFuzzer
# target plus a short ctest run (STRATA_FUZZ_SECONDS, default 20) over a
# corpus directory in the build tree.
set(STRATA_FUZZ_SECONDS 20 CACHE STRING "seconds each fuzz target runs under ctest")
function(strata_fuzzer name)
	cmake_parse_arguments(F "" "" "SOURCES;LIBS;SEED_CMD" ${ARGN})
	if(NOT STRATA_HAVE_LIBFUZZER)
		message(STATUS "strata: ${name} not built (compiler lacks -fsanitize=fuzzer)")
		return()
	endif()
	add_executable(${name} ${F_SOURCES})
	target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
	target_link_libraries(${name} PRIVATE ${F_LIBS})
	target_link_options(${name} PRIVATE -fsanitize=fuzzer)
	set(corpus ${CMAKE_CURRENT_BINARY_DIR}/corpus-${name})
	add_test(NAME ${name}
		 COMMAND ${CMAKE_SOURCE_DIR}/tests/fuzz/run-fuzzer
			 $<TARGET_FILE:${name}> ${corpus} ${STRATA_FUZZ_SECONDS}
			 ${F_SEED_CMD})
	math(EXPR t "${STRATA_FUZZ_SECONDS} + 120")
	set_tests_properties(${name} PROPERTIES TIMEOUT ${t} LABELS fuzz)
endfunction()
