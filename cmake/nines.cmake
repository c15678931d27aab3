# SPDX-License-Identifier: Apache-2.0
# Shared build settings: warnings, sanitizers, dependency discovery, and nn_module(),
# which turns one folder into one static library.
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(H2O REQUIRED IMPORTED_TARGET libh2o)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(SSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(SNAPPY REQUIRED IMPORTED_TARGET snappy)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
find_package(Threads REQUIRED)
find_program(PROTOC_C protoc-c REQUIRED)

set(NN_WARNINGS -Wall -Wextra -Wstrict-prototypes -Wmissing-prototypes -Wshadow
    -Wformat=2 -Wvla -Wno-unused-parameter)
if(NN_WERROR)
  list(APPEND NN_WARNINGS -Werror)
endif()

if(NN_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(NN_FUZZ)
  # Coverage instrumentation for every library, so fuzzers see into them.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

add_compile_definitions(NN_VERSION="${PROJECT_VERSION}" _GNU_SOURCE)

# Every module library, so tests can link against the whole project.
set_property(GLOBAL PROPERTY NN_ALL_MODULES "")

# nn_module(<name> [DEPS <targets>...]): the *.c files of the current folder become
# static library <name>. Includes are spelled from the repository root.
function(nn_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  list(FILTER srcs EXCLUDE REGEX "/main\\.c$")
  if(NOT srcs)
    message(STATUS "nn_module(${name}): no sources yet, skipped")
    return()
  endif()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_compile_options(${name} PRIVATE ${NN_WARNINGS})
  target_link_libraries(${name} PUBLIC ${M_DEPS})
  set_property(GLOBAL APPEND PROPERTY NN_ALL_MODULES ${name})
endfunction()

# Adds every subfolder of the current folder that has a CMakeLists.txt.
function(nn_add_subfolders)
  file(GLOB children LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT children)
  foreach(child ${children})
    if(IS_DIRECTORY ${child} AND EXISTS ${child}/CMakeLists.txt)
      add_subdirectory(${child})
    endif()
  endforeach()
endfunction()
