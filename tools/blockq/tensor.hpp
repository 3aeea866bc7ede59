// SPDX-License-Identifier: Apache-2.0
// Tensors as the blockq tool reads and writes them: a name, a safetensors
// dtype, a shape and a view of little-endian bytes; and the tool's error type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace blockq_tool {

// A problem with the input or the command line, reported as one line
// "blockq: error: <what>" and a non-zero exit.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The byte-sized safetensors dtypes.
enum class dtype : std::uint8_t { BOOL, U8, I8, F8_E4M3, F8_E5M2, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64 };

std::string_view to_string(dtype t) noexcept;
std::optional<dtype> parse_dtype(std::string_view s) noexcept;
std::size_t dtype_size(dtype t) noexcept;
// F32, F16 and BF16: the tensors the tool quantizes.
constexpr bool is_quantizable(dtype t) noexcept { return t == dtype::F32 || t == dtype::F16 || t == dtype::BF16; }

using shape_t = std::vector<std::uint64_t>;

// "[2, 3, 4]".
std::string shape_string(const shape_t& shape);
// The number of elements; throws error when the product overflows 64 bits.
std::uint64_t checked_numel(const shape_t& shape);
// a * b, throwing error (naming `what`) on overflow.
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what);

// A tensor whose bytes live elsewhere (a mapped file, a buffer).
struct tensor_view {
  std::string name;
  dtype type = dtype::F32;
  shape_t shape;
  std::span<const std::uint8_t> bytes;

  std::uint64_t numel() const { return checked_numel(shape); }
};

// A tensor stored in a file of a source (see pipeline.hpp): where its bytes are.
struct tensor_info {
  std::string name;
  dtype type = dtype::F32;
  shape_t shape;
  std::size_t part = 0;      // which file, for a source of several (shards)
  std::uint64_t offset = 0;  // of its first byte in that file
  std::uint64_t size = 0;    // bytes: numel x dtype size

  std::uint64_t numel() const { return checked_numel(shape); }
};

// Converts n elements of an F32, F16 or BF16 tensor (little-endian bytes,
// any alignment; bytes may be out itself for F32) to float, exactly. Returns the number of NaN and Inf values.
std::size_t to_float(dtype t, const std::uint8_t* bytes, std::size_t n, float* out);

}  // namespace blockq_tool
