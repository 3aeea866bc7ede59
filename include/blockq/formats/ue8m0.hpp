// SPDX-License-Identifier: Apache-2.0
// UE8M0, the MX block scale: 2^(e - 127) for e in 0..254, 0xFF is NaN, no zero.
#pragma once

#include <cstdint>
#include <limits>

#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct ue8m0 {
  static constexpr int bias = 127;
  static constexpr std::uint8_t nan_code = 0xFF;
  static constexpr int min_exponent = -127;
  static constexpr int max_exponent = 127;

  static constexpr float decode(std::uint8_t code) noexcept {
    if (code == nan_code) return std::numeric_limits<float>::quiet_NaN();
    return detail::exp2i(static_cast<int>(code) - bias);
  }
  // The code of 2^k, with k clamped to [-127, 127] (SPEC §3).
  static constexpr std::uint8_t from_exponent(int k) noexcept {
    if (k < min_exponent) k = min_exponent;
    if (k > max_exponent) k = max_exponent;
    return static_cast<std::uint8_t>(k + bias);
  }
  static constexpr int exponent(std::uint8_t code) noexcept { return static_cast<int>(code) - bias; }

  // Nearest power of two to v > 0: 1.m * 2^k goes up when m > 0.5 and on the
  // tie m == 0.5 goes to the even code; saturates at 2^-127 and 2^127. NaN
  // gives the NaN code, +Inf saturates, v <= 0 gives the smallest scale.
  static constexpr std::uint8_t encode(float v) noexcept {
    if (detail::is_nan(v)) return nan_code;
    if (!(v > 0.0f)) return 0;
    if (!detail::is_finite(v)) return from_exponent(max_exponent);
    const int k = detail::floor_log2(v);
    const double m = detail::ldexp_exact(static_cast<double>(v), -k);  // in [1, 2), exact
    int e = k;
    if (m > 1.5 || (m == 1.5 && ((k + bias) & 1) != 0)) ++e;
    return from_exponent(e);
  }
};

BLOCKQ_END_NAMESPACE
