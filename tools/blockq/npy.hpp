// SPDX-License-Identifier: Apache-2.0
// NumPy .npy files (format versions 1, 2 and 3) holding float32 or float16.
// The reader is bounded and validated (it is fuzzed): every problem is an
// `error` naming it. Big-endian and Fortran-order arrays are converted to
// little-endian C order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tensor.hpp"

namespace blockq_tool {

// Headers longer than this are rejected (NumPy itself refuses more than 10000 bytes by default).
inline constexpr std::uint64_t max_npy_header_bytes = std::uint64_t{1} << 20;

struct npy_array {
  dtype type = dtype::F32;  // F32 or F16
  shape_t shape;            // () is a scalar
  std::vector<std::uint8_t> bytes;  // little-endian, C order
};

npy_array parse_npy(std::span<const std::uint8_t> file);

// Whether the bytes start with the .npy magic string.
bool is_npy(std::span<const std::uint8_t> file) noexcept;

}  // namespace blockq_tool
