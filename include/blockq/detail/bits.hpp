// SPDX-License-Identifier: Apache-2.0
// Exact exponent arithmetic on the bits of a float (never log2f, which is
// inexact just below powers of two).
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

#include "blockq/config.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

// floor(log2(a)) for a finite a > 0, subnormals included.
constexpr int floor_log2(float a) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(a) & 0x7FFFFFFFu;
  const int field = static_cast<int>(u >> 23);
  if (field != 0) return field - 127;
  // Subnormal: value = mantissa * 2^-149, so the exponent is that of the top set bit.
  return (31 - std::countl_zero(u)) - 149;
}

// 2^k as a float, exact for -149 <= k <= 127 (subnormal powers included).
constexpr float exp2i(int k) noexcept {
  if (k >= -126) return std::bit_cast<float>(static_cast<std::uint32_t>(k + 127) << 23);
  return std::bit_cast<float>(std::uint32_t{1} << (k + 149));
}

// a * 2^k in double, exact for the ranges used here (|k| < 1000).
constexpr double ldexp_exact(double a, int k) noexcept {
  double p = 1.0;
  const double f = k >= 0 ? 2.0 : 0.5;
  for (int i = 0; i < (k >= 0 ? k : -k); ++i) p *= f;
  return a * p;
}

// 1 / s when s is a power of two whose reciprocal is a float (normal s, or the
// subnormal 2^-127): then x * (1 / s) and x / s are both the correctly rounded
// x * 2^-k, the same bits (subnormal results included), so a vector kernel may
// multiply instead of dividing. 0 otherwise: the caller divides.
BLOCKQ_ALWAYS_INLINE float exact_reciprocal(float s) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(s) & 0x7FFFFFFFu;
  const bool normal_pow2 = (u & 0x7FFFFFu) == 0 && u >= 0x00800000u && u < 0x7F800000u;
  if (normal_pow2 || u == 0x00400000u) return 1.0f / s;
  return 0.0f;
}

constexpr bool is_finite(float v) noexcept {
  return (std::bit_cast<std::uint32_t>(v) & 0x7F800000u) != 0x7F800000u;
}
constexpr bool is_nan(float v) noexcept {
  return (std::bit_cast<std::uint32_t>(v) & 0x7FFFFFFFu) > 0x7F800000u;
}
// The next float toward zero of a finite positive v > 0 (the bits minus one).
constexpr float next_down(float v) noexcept { return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) - 1u); }
constexpr bool is_inf(float v) noexcept {
  return (std::bit_cast<std::uint32_t>(v) & 0x7FFFFFFFu) == 0x7F800000u;
}
constexpr bool sign_bit(float v) noexcept { return (std::bit_cast<std::uint32_t>(v) >> 31) != 0; }
constexpr float abs_bits(float v) noexcept {
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(v) & 0x7FFFFFFFu);
}

}  // namespace detail
BLOCKQ_END_NAMESPACE

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

// Round half to even without <cfenv>: adding and subtracting 2^23 leaves a
// float of magnitude below 2^23 rounded to an integer by the FPU's default
// round-to-nearest-even; larger floats are integers already.
constexpr float round_half_even(float y) noexcept {
  const float a = abs_bits(y);
  if (!(a < 8388608.0f)) return y;
  const float r = (a + 8388608.0f) - 8388608.0f;
  return sign_bit(y) ? -r : r;
}

}  // namespace detail
BLOCKQ_END_NAMESPACE
