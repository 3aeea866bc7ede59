// SPDX-License-Identifier: Apache-2.0
#include "tensor.hpp"

#include <array>
#include <bit>
#include <cstring>
#include <utility>

#include "blockq/formats/half.hpp"

static_assert(std::endian::native == std::endian::little,
              "the blockq tool reads and writes little-endian files in place");

namespace blockq_tool {
namespace {

struct dtype_entry {
  dtype type;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<dtype_entry, 16> dtypes{{
    {dtype::BOOL, "BOOL", 1},    {dtype::U8, "U8", 1},   {dtype::I8, "I8", 1},
    {dtype::F8_E4M3, "F8_E4M3", 1}, {dtype::F8_E5M2, "F8_E5M2", 1}, {dtype::F8_E8M0, "F8_E8M0", 1},
    {dtype::I16, "I16", 2},      {dtype::U16, "U16", 2}, {dtype::F16, "F16", 2},
    {dtype::BF16, "BF16", 2},    {dtype::I32, "I32", 4}, {dtype::U32, "U32", 4},
    {dtype::F32, "F32", 4},      {dtype::I64, "I64", 8}, {dtype::U64, "U64", 8},
    {dtype::F64, "F64", 8},
}};

}  // namespace

std::string_view to_string(dtype t) noexcept {
  for (const auto& e : dtypes)
    if (e.type == t) return e.name;
  return "?";
}

std::optional<dtype> parse_dtype(std::string_view s) noexcept {
  for (const auto& e : dtypes)
    if (e.name == s) return e.type;
  return std::nullopt;
}

std::size_t dtype_size(dtype t) noexcept {
  for (const auto& e : dtypes)
    if (e.type == t) return e.size;
  return 0;
}

std::string shape_string(const shape_t& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b, std::string_view what) {
  std::uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) throw error(std::string(what) + " overflows 64 bits");
  return r;
}

std::uint64_t checked_numel(const shape_t& shape) {
  std::uint64_t n = 1;
  for (std::uint64_t d : shape) n = checked_mul(n, d, "the element count of shape " + shape_string(shape));
  return n;
}

std::size_t to_float(dtype t, const std::uint8_t* bytes, std::size_t n, float* out) {
  switch (t) {
    case dtype::F32:
      if (n && static_cast<const void*>(bytes) != static_cast<const void*>(out)) std::memcpy(out, bytes, n * sizeof(float));
      break;
    case dtype::F16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t b;
        std::memcpy(&b, bytes + 2 * i, 2);
        out[i] = blockq::float16::from_bits(b).to_float();
      }
      break;
    case dtype::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t b;
        std::memcpy(&b, bytes + 2 * i, 2);
        out[i] = blockq::bfloat16::from_bits(b).to_float();
      }
      break;
    default:
      throw error("cannot convert dtype " + std::string(to_string(t)) + " to float");
  }
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += (std::bit_cast<std::uint32_t>(out[i]) & 0x7F800000u) == 0x7F800000u;
  return bad;
}

}  // namespace blockq_tool
