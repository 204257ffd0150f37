# The git commit (and its date: the man page's, so two builds of one commit write the same page) in
# `gradfeat --version`, results.json and reports, taken when the library is BUILT, not
# when it is configured: a commit made after `cmake -S . -B build` shows after the next `cmake --build`.
# Every build runs `git rev-parse` (a few ms) and rewrites the one-line source OUT only when the hash
# changed, so an unchanged hash recompiles nothing and a new one recompiles that file alone (then the
# libraries and programs relink). Not a git checkout, or no git: "unknown".
#   include(cmake/GitHash.cmake)                  then
#   gf_git_hash_source(TARGET OUT)                defines custom target TARGET writing OUT (a .c file that
#                                                 defines const char gf_git_hash_generated[] and
#                                                 gf_git_date_generated[], YYYY-MM-DD or ""); add OUT to a
#                                                 library's sources and add_dependencies(lib TARGET)
# Script mode (what TARGET runs): cmake -DGIT=git -DSRC=<source dir> -DOUT=<file.c> -P GitHash.cmake
if(CMAKE_SCRIPT_MODE_FILE)
  cmake_minimum_required(VERSION 3.18)
  set(hash "")
  if(GIT)
    execute_process(COMMAND ${GIT} rev-parse --short=12 HEAD WORKING_DIRECTORY ${SRC} RESULT_VARIABLE rc
                    OUTPUT_VARIABLE hash OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(NOT rc EQUAL 0)
      set(hash "")
    endif()
  endif()
  set(date "")
  if(GIT AND hash MATCHES "^[0-9a-f]+$")
    execute_process(COMMAND ${GIT} log -1 --format=%cs HEAD WORKING_DIRECTORY ${SRC} RESULT_VARIABLE rc
                    OUTPUT_VARIABLE date OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(NOT rc EQUAL 0 OR NOT date MATCHES "^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$")
      set(date "")
    endif()
  endif()
  if(NOT hash MATCHES "^[0-9a-f]+$")
    set(hash "unknown")
  endif()
  set(text "/* written at build time by cmake/GitHash.cmake: the commit this build is of, and its date */\nconst char gf_git_hash_generated[] = \"${hash}\";\nconst char gf_git_date_generated[] = \"${date}\";\n")
  set(old "")
  if(EXISTS ${OUT})
    file(READ ${OUT} old)
  endif()
  if(NOT old STREQUAL text)
    file(WRITE ${OUT} "${text}")
  endif()
  return()
endif()

set(GF_GIT_HASH_SCRIPT ${CMAKE_CURRENT_LIST_FILE})
function(gf_git_hash_source target out)
  find_package(Git QUIET)
  add_custom_target(${target} BYPRODUCTS ${out}
    COMMAND ${CMAKE_COMMAND} -DGIT=${GIT_EXECUTABLE} -DSRC=${CMAKE_CURRENT_SOURCE_DIR} -DOUT=${out}
            -P ${GF_GIT_HASH_SCRIPT}
    COMMENT "Checking the git commit" VERBATIM)
endfunction()
