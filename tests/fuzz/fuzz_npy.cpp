// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the tool's .npy reader. Any input must either parse or
// raise blockq_tool::error; a parsed array holds exactly numel x itemsize bytes.
#include <cstdint>
#include <cstdlib>

#include "npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace blockq_tool;
  try {
    const npy_array a = parse_npy({data, size});
    if (a.type != dtype::F32 && a.type != dtype::F16) std::abort();
    if (a.bytes.size() != checked_numel(a.shape) * dtype_size(a.type)) std::abort();
  } catch (const error&) {
  }
  return 0;
}
