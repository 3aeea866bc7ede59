# cmake -DREADME=... -DWORK=... -DBLOCKQ_SOURCE_DIR=... -DGENERATOR=... -DCXX_COMPILER=... -P readme_snippets.cmake
# Compiles and runs the README's C++ snippets as written, so that the README cannot drift
# from code that compiles. Every ```cpp fence after a `<!-- snippet: NAME -->` line becomes
# the body of a function snippet_NAME::run() (its #include lines go to the top of the
# file); main() runs them in README order. A snippet that includes <blockq/grid.hpp> is
# compiled only when Boost.Math is found (blockq::grid exists). The program is built
# against blockq by add_subdirectory, in a clean folder.
cmake_minimum_required(VERSION 3.21)
file(REMOVE_RECURSE "${WORK}")
file(READ "${README}" text)
set(marker "\n<!-- snippet: ")  # at the start of a line
set(includes "")
set(bodies "")
set(calls "")
set(count 0)
while(TRUE)
  string(FIND "${text}" "${marker}" at)
  if(at EQUAL -1)
    break()
  endif()
  string(LENGTH "${marker}" mlen)
  math(EXPR at "${at} + ${mlen}")
  string(SUBSTRING "${text}" ${at} -1 text)
  string(FIND "${text}" " -->" end)
  string(SUBSTRING "${text}" 0 ${end} name)
  if(NOT name MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
    message(FATAL_ERROR "README snippet name '${name}' is not an identifier")
  endif()
  string(FIND "${text}" "\n" eol)
  math(EXPR eol "${eol} + 1")
  string(SUBSTRING "${text}" ${eol} -1 text)
  # The fence must follow the marker directly.
  string(FIND "${text}" "```cpp\n" fence)
  if(NOT fence EQUAL 0)
    message(FATAL_ERROR "README snippet '${name}': the marker is not followed by a ```cpp fence")
  endif()
  string(SUBSTRING "${text}" 7 -1 text)
  string(FIND "${text}" "\n```" close)
  if(close EQUAL -1)
    message(FATAL_ERROR "README snippet '${name}': no closing fence")
  endif()
  string(SUBSTRING "${text}" 0 ${close} body)
  string(SUBSTRING "${text}" ${close} -1 text)
  string(REGEX MATCHALL "#include <[^>\n]+>" incs "${body}")
  string(REGEX REPLACE "#include <[^>\n]+>" "" body "${body}")
  set(grid FALSE)
  foreach(inc IN LISTS incs)
    if(inc MATCHES "blockq/grid")
      set(grid TRUE)
    endif()
  endforeach()
  set(guard_open "")
  set(guard_close "")
  if(grid)
    set(guard_open "#if BLOCKQ_SNIPPETS_GRID\n")
    set(guard_close "#endif\n")
  endif()
  foreach(inc IN LISTS incs)
    string(APPEND includes "${guard_open}${inc}\n${guard_close}")
  endforeach()
  string(APPEND bodies "${guard_open}namespace snippet_${name} {\n// README.md, snippet '${name}'\nvoid run() {\n${body}\n}\n}  // namespace snippet_${name}\n${guard_close}\n")
  string(APPEND calls "${guard_open}  run(\"${name}\", snippet_${name}::run);\n${guard_close}")
  math(EXPR count "${count} + 1")
endwhile()
if(count EQUAL 0)
  message(FATAL_ERROR "no <!-- snippet: NAME --> markers in ${README}")
endif()

file(MAKE_DIRECTORY "${WORK}/src")
file(WRITE "${WORK}/src/snippets.cpp"
"// Generated from README.md by tests/consumers/readme_snippets.cmake: do not edit.
#include <cstdio>
#include <exception>
${includes}
${bodies}
static int failures = 0;
static void run(const char* name, void (*f)()) {
  try {
    f();
    std::printf(\"README snippet %s: ok\\n\", name);
  } catch (const std::exception& e) {
    std::printf(\"README snippet %s: %s\\n\", name, e.what());
    ++failures;
  }
}

int main() {
${calls}  return failures == 0 ? 0 : 1;
}
")
file(WRITE "${WORK}/src/CMakeLists.txt"
"cmake_minimum_required(VERSION 3.21)
project(blockq_readme_snippets LANGUAGES CXX)
add_subdirectory(\"${BLOCKQ_SOURCE_DIR}\" blockq)
add_executable(snippets snippets.cpp)
target_link_libraries(snippets PRIVATE blockq::blockq)
if(TARGET blockq::grid)
  target_link_libraries(snippets PRIVATE blockq::grid)
  target_compile_definitions(snippets PRIVATE BLOCKQ_SNIPPETS_GRID=1)
endif()
")
message(STATUS "${count} README snippets in ${WORK}/src/snippets.cpp")
execute_process(COMMAND ${CMAKE_COMMAND} -S "${WORK}/src" -B "${WORK}/build" -G "${GENERATOR}"
                        -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
                OUTPUT_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "README snippets: configure failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK}/build" --target snippets RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "README snippets: build failed (${WORK}/src/snippets.cpp): ${rc}")
endif()
execute_process(COMMAND "${WORK}/build/snippets" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "README snippets: run failed: ${rc}")
endif()
