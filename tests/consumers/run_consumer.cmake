# cmake -DMODE=... -DWORK=... -DBLOCKQ_SOURCE_DIR=... -DCONSUMER_SOURCE=... -P run_consumer.cmake
# Configures the consumer project in a clean folder, builds it and runs it.
file(REMOVE_RECURSE "${WORK}")
set(_args -S "${CONSUMER_SOURCE}/project" -B "${WORK}" -G "${GENERATOR}"
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
    -DCONSUMER_MODE=${MODE} -DBLOCKQ_SOURCE_DIR=${BLOCKQ_SOURCE_DIR})
if(PREFIX)
  list(APPEND _args -DCMAKE_PREFIX_PATH=${PREFIX})
endif()
foreach(_step IN ITEMS configure build run)
  if(_step STREQUAL "configure")
    execute_process(COMMAND ${CMAKE_COMMAND} ${_args} RESULT_VARIABLE _rc)
  elseif(_step STREQUAL "build")
    execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK}" RESULT_VARIABLE _rc)
  else()
    execute_process(COMMAND "${WORK}/consumer" RESULT_VARIABLE _rc)
  endif()
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "consumer (${MODE}): ${_step} failed: ${_rc}")
  endif()
endforeach()
