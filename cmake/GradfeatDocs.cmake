# Run by the build (cmake -P): the man page and the bash completion, written by the built CLI from its
# option tables (`gradfeat help --man`, `gradfeat help --bash-completion`, host/cli/gendoc.c), so they
# follow every change to an option. Args: EXE (the CLI), DIR (the build folder).
# Writes DIR/gradfeat.1, DIR/gradfeat.1.gz (installed: gzip -n, no time stamp) and DIR/gradfeat.bash-completion.
set(ENV{ASAN_OPTIONS} "detect_leaks=0")   # a GF_SANITIZE build runs it too; leaks are cli_leaks' business
foreach(what man bash-completion)
  set(out ${DIR}/gradfeat.${what}.tmp)
  execute_process(COMMAND ${EXE} help --${what} OUTPUT_FILE ${out} RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    file(REMOVE ${out})
    message(FATAL_ERROR "${EXE} help --${what} failed (${rc}): ${err}")
  endif()
endforeach()
file(RENAME ${DIR}/gradfeat.bash-completion.tmp ${DIR}/gradfeat.bash-completion)
file(RENAME ${DIR}/gradfeat.man.tmp ${DIR}/gradfeat.1)
execute_process(COMMAND gzip -9 -n -c ${DIR}/gradfeat.1 OUTPUT_FILE ${DIR}/gradfeat.1.gz RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip of gradfeat.1 failed (${rc})")
endif()
