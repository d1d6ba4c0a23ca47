# One call per test, per plugin and per benchmark (STYLE.md: one helper call each).

# Properties every registered test has: exit code 77 means "skipped"; TIMEOUT (or the
# default) in seconds; LABELS when given.
function(shmring__test_properties name timeout default_timeout labels)
  if(NOT timeout)
    set(timeout ${default_timeout})
  endif()
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT ${timeout})
  if(labels)
    set_tests_properties(${name} PROPERTIES LABELS "${labels}")
  endif()
endfunction()

# shmring_add_test(NAME SOURCES a.c b.c [LIBS ...] [LABELS ...] [ARGS ...] [TIMEOUT s])
# Builds a test program and registers it with CTest. Exit code 77 means "skipped".
function(shmring_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
  shmring__test_properties(${name} "${T_TIMEOUT}" 300 "${T_LABELS}")
endfunction()

# Script tests (Lua, Python) are registered with one helper, always: where the interpreter is
# missing the test still runs and says so, exiting 77 ("skipped"), so the suite never shrinks
# silently.
find_program(SHMRING_LUAJIT luajit)
find_program(SHMRING_PYTHON3 python3)

# shmring_add_script_test(NAME RUNNER luajit|python3 SCRIPT path [ARGS ...] [LABELS ...]
#                         [TIMEOUT s] [SERIAL])
# SERIAL: the test starts its own nginx/shmringd stack, which must not share the cores with
# another test. Exit code 77 means "skipped".
function(shmring_add_script_test name)
  cmake_parse_arguments(T "SERIAL" "RUNNER;SCRIPT;TIMEOUT" "ARGS;LABELS" ${ARGN})
  if(T_RUNNER STREQUAL "luajit")
    set(runner ${SHMRING_LUAJIT})
  elseif(T_RUNNER STREQUAL "python3")
    set(runner ${SHMRING_PYTHON3})
  else()
    message(FATAL_ERROR "shmring_add_script_test(${name}): RUNNER must be luajit or python3")
  endif()
  if(runner)
    add_test(NAME ${name} COMMAND ${runner} ${T_SCRIPT} ${T_ARGS})
  else()
    add_test(NAME ${name}
             COMMAND sh -c "echo '${name}: SKIPPED: ${T_RUNNER} is not installed (scripts/deps.sh test)' >&2; exit 77")
  endif()
  shmring__test_properties(${name} "${T_TIMEOUT}" 180 "${T_LABELS}")
  if(T_SERIAL)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()

# shmring_add_plugin(NAME SOURCES a.c [LIBS ...])
# Builds plugins/<name> as <name>.so (no "lib" prefix) into build/plugins and installs it.
function(shmring_add_plugin name)
  cmake_parse_arguments(P "" "" "SOURCES;LIBS" ${ARGN})
  add_library(shmring_plugin_${name} MODULE ${P_SOURCES})
  set_target_properties(shmring_plugin_${name} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
                        LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/plugins)
  target_include_directories(shmring_plugin_${name} PRIVATE ${PROJECT_SOURCE_DIR}/plugins)
  target_link_libraries(shmring_plugin_${name} PRIVATE ${P_LIBS})
  install(TARGETS shmring_plugin_${name} LIBRARY DESTINATION ${SHMRING_INSTALL_PLUGINDIR})
endfunction()

# shmring_add_bench(NAME SOURCES a.c [LIBS ...]): built by default, never a test.
function(shmring_add_bench name)
  cmake_parse_arguments(B "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${B_SOURCES})
  target_link_libraries(${name} PRIVATE ${B_LIBS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
endfunction()

# shmring_add_fuzzer(NAME SOURCES a.c [LIBS ...]): a libFuzzer target (clang, SHMRING_FUZZ=ON),
# registered with CTest to run for SHMRING_FUZZ_SECONDS from seed SHMRING_FUZZ_SEED with
# label "fuzz".
function(shmring_add_fuzzer name)
  if(NOT SHMRING_FUZZ)
    return()
  endif()
  cmake_parse_arguments(F "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${F_SOURCES})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(${name} PRIVATE ${F_LIBS})
  set(corpus ${PROJECT_BINARY_DIR}/fuzz-corpus/${name})
  file(MAKE_DIRECTORY ${corpus})
  add_test(NAME ${name}
           COMMAND ${name} -max_total_time=${SHMRING_FUZZ_SECONDS} -seed=${SHMRING_FUZZ_SEED}
                   -timeout=10 -print_final_stats=1 ${corpus})
  math(EXPR fuzz_timeout "${SHMRING_FUZZ_SECONDS} + 120")
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT ${fuzz_timeout})
endfunction()
