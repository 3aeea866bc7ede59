// SPDX-License-Identifier: Apache-2.0
// The type a file stores a float scale in: float32 (as computed), float16 or bfloat16
// (rounded to nearest even). Quantizers that know the storage type encode with the scale as
// stored, and their searches score stored scales, since that is what a reader decodes with.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <string_view>

#include "blockq/config.hpp"
#include "blockq/formats/half.hpp"

BLOCKQ_BEGIN_NAMESPACE

enum class scale_storage : std::uint8_t { float32, float16, bfloat16 };

constexpr std::string_view to_string(scale_storage s) noexcept {
  switch (s) {
    case scale_storage::float32: return "float32";
    case scale_storage::float16: return "float16";
    case scale_storage::bfloat16: return "bfloat16";
  }
  return "?";
}

constexpr std::optional<scale_storage> parse_scale_storage(std::string_view s) noexcept {
  for (auto v : {scale_storage::float32, scale_storage::float16, scale_storage::bfloat16})
    if (to_string(v) == s) return v;
  return std::nullopt;
}

// v as stored (float16 / bfloat16: round to nearest even, exactly representable as a float).
constexpr float stored_scale(float v, scale_storage s) noexcept {
  switch (s) {
    case scale_storage::float32: return v;
    case scale_storage::float16: return float16::from_float(v).to_float();
    case scale_storage::bfloat16: return bfloat16::from_float(v).to_float();
  }
  return v;
}

// The stored value n steps from the stored (finite) value v in value order, staying finite
// (+0 and -0 count as one step apart).
constexpr float step_stored_scale(float v, int n, scale_storage s) noexcept {
  const int bits = s == scale_storage::float32 ? 32 : 16;
  std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  if (bits == 16) u = s == scale_storage::float16 ? float16::from_float(v).bits : bfloat16::from_float(v).bits;
  const std::uint32_t sign = bits == 32 ? 0x80000000u : 0x8000u;
  const std::int64_t max_mag = bits == 32 ? 0x7F7FFFFF : s == scale_storage::float16 ? 0x7BFF : 0x7F7F;
  std::int64_t ord = (u & sign) ? -std::int64_t(u & ~sign) - 1 : std::int64_t(u);
  ord += n;
  if (ord > max_mag) ord = max_mag;
  if (ord < -max_mag - 1) ord = -max_mag - 1;
  const std::uint32_t r = ord < 0 ? static_cast<std::uint32_t>(sign | static_cast<std::uint32_t>(-ord - 1))
                                  : static_cast<std::uint32_t>(ord);
  if (bits == 32) return std::bit_cast<float>(r);
  return s == scale_storage::float16 ? float16::from_bits(static_cast<std::uint16_t>(r)).to_float()
                                     : bfloat16::from_bits(static_cast<std::uint16_t>(r)).to_float();
}

BLOCKQ_END_NAMESPACE
