# ctest `no_alloc_in_core`: the objects of native/src/*.c (the members of the
# harmonies_core archive) must reference no allocator and no stdio output.
# Tables are built at init into caller-owned memory; status codes, not prints.
#
#   cmake -DNM=<nm> -DLIB=<libharmonies_core.a> -P cmake/check_no_alloc.cmake
if(NOT NM OR NOT LIB)
  message(FATAL_ERROR "usage: cmake -DNM=<nm> -DLIB=<archive> -P check_no_alloc.cmake")
endif()

set(forbidden
  # allocation
  malloc calloc realloc free reallocarray aligned_alloc posix_memalign memalign valloc strdup strndup
  # printing (plus glibc's _FORTIFY_SOURCE variants)
  printf fprintf vprintf vfprintf puts fputs putchar fputc putc fwrite perror
  __printf_chk __fprintf_chk __vprintf_chk __vfprintf_chk
  stdout stderr)

# -A: prefix every line with archive:member so the culprit object is named.
execute_process(
  COMMAND ${NM} -A -u ${LIB}
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -u ${LIB} failed (${rc}): ${err}")
endif()

# Guard against a vacuous pass: the archive must actually hold objects.
execute_process(COMMAND ${NM} -A ${LIB} OUTPUT_VARIABLE all RESULT_VARIABLE rc)
string(REGEX MATCHALL "[^:\n]+\\.o(bj)?:" members "${all}")
list(REMOVE_DUPLICATES members)
list(LENGTH members n_members)
if(n_members EQUAL 0)
  message(FATAL_ERROR "no object files found in ${LIB}")
endif()

string(REPLACE "\n" ";" lines "${out}")
set(bad "")
foreach(line IN LISTS lines)
  # "<archive>:<member.o>:                 U <symbol>" (symbol may carry @GLIBC_x.y)
  if(line MATCHES "^(.*):([^:]+):[ \t]+U[ \t]+([A-Za-z0-9_.$]+)")
    set(member "${CMAKE_MATCH_2}")
    set(sym "${CMAKE_MATCH_3}")
    string(REGEX REPLACE "@.*$" "" sym "${sym}")
    if(sym IN_LIST forbidden)
      list(APPEND bad "${member}: ${sym}")
    endif()
  endif()
endforeach()

if(bad)
  string(REPLACE ";" "\n  " bad_text "${bad}")
  message(FATAL_ERROR "the core references allocation/print symbols:\n  ${bad_text}")
endif()
message(STATUS "no_alloc_in_core: ${n_members} objects checked, no allocation or print symbols")
