// SPDX-License-Identifier: Apache-2.0
// IEEE binary16 and bfloat16 storage types with exact conversions, for
// quantizing tensors that arrive in 16-bit floats.
#pragma once

#include <bit>
#include <cstdint>

#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE

// IEEE 754 binary16, stored as its bits.
struct float16 {
  std::uint16_t bits = 0;

  static constexpr float16 from_bits(std::uint16_t b) noexcept { return float16{b}; }

  // Exact: every binary16 value is a float.
  constexpr float to_float() const noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
    const std::uint32_t exp = (bits >> 10) & 0x1Fu;
    const std::uint32_t man = bits & 0x3FFu;
    if (exp == 0x1Fu) return std::bit_cast<float>(sign | 0x7F800000u | (man << 13));  // Inf, NaN
    if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));
    // Subnormal: man * 2^-24, exact in float.
    const float v = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }

  // Round to nearest even; overflow gives Inf, NaN stays NaN (quiet).
  static constexpr float16 from_float(float f) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
    const std::uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return {static_cast<std::uint16_t>(sign | 0x7E00u | ((a >> 13) & 0x3FFu))};
    if (a >= 0x477FF000u) return {static_cast<std::uint16_t>(sign | 0x7C00u)};  // rounds past 65504
    if (a < 0x38800000u) {
      // Below the smallest normal (2^-14): round a / 2^-24 to an integer.
      if (a < 0x33000000u) return {sign};  // below half the smallest subnormal (2^-25), ties included
      const std::uint32_t e = a >> 23;                 // 102..112
      const std::uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
      const std::uint32_t shift = 126u - e;            // 14..24
      std::uint32_t r = m >> shift;
      const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
      if (rem > half || (rem == half && (r & 1u))) ++r;
      return {static_cast<std::uint16_t>(sign | r)};
    }
    // Normal: rebias the exponent and round the 13 dropped mantissa bits; a
    // carry propagates into the exponent by itself.
    std::uint32_t r = ((a - 0x38000000u) >> 13);
    const std::uint32_t rem = a & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
    return {static_cast<std::uint16_t>(sign | r)};
  }
};

// bfloat16: the top half of a float32, stored as its bits.
struct bfloat16 {
  std::uint16_t bits = 0;

  static constexpr bfloat16 from_bits(std::uint16_t b) noexcept { return bfloat16{b}; }
  constexpr float to_float() const noexcept {
    return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
  }
  // Round to nearest even; NaN stays NaN (quiet).
  static constexpr bfloat16 from_float(float f) noexcept {
    const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return {static_cast<std::uint16_t>((u >> 16) | 0x40u)};
    const std::uint32_t r = u + 0x7FFFu + ((u >> 16) & 1u);
    return {static_cast<std::uint16_t>(r >> 16)};
  }
};

static_assert(sizeof(float16) == 2 && sizeof(bfloat16) == 2, "16-bit storage types");

BLOCKQ_END_NAMESPACE
