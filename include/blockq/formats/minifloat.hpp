// SPDX-License-Identifier: Apache-2.0
// Small floating-point element formats (SPEC §1): E2M1 (FP4), E2M3 and E3M2
// (FP6), E4M3 and E5M2 (FP8). One exact implementation serves all of them.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <string_view>

#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/formats/tie_mode.hpp"

BLOCKQ_BEGIN_NAMESPACE

// Which codes of a format are NaN / Inf.
enum class nan_style : std::uint8_t {
  none,  // every code is finite (E2M1, E2M3, E3M2)
  fn,    // only S.1111.111 is NaN, no Inf (OCP E4M3)
  ieee,  // exponent all ones is Inf (mantissa 0) or NaN (E5M2)
};

namespace detail {

// Rounds m >= 0 (m < 2^31) to an integer with the given tie rule; the parity
// of the result is the parity of the element code it becomes.
constexpr std::uint32_t round_magnitude(float m, tie_mode ties) noexcept {
  auto r = static_cast<std::uint32_t>(m);  // truncation == floor for m >= 0
  const float frac = m - static_cast<float>(r);  // exact: m and r share the binade
  // Without branches: which way a scale rounds is as good as random, and NVFP4 `mse` (an E4M3
  // start a block) ran 10-15 % slower on tensors the branch predictor had not seen (Zen 5).
  const bool tie_up = ties == tie_mode::away || (ties == tie_mode::even && (r & 1u) != 0);
  return r + static_cast<std::uint32_t>((frac > 0.5f) | ((frac == 0.5f) & tie_up));
}

}  // namespace detail

// A sign + E exponent bits + M mantissa bits format with the given bias.
// Conversion from float is exact round-to-nearest with the chosen tie rule
// and always saturates (SPEC §1): |y| above the largest finite value, Inf
// included, becomes ±max. NaN becomes the NaN code where the format has one
// and +0 otherwise (block quantizers handle NaN before the elements).
template <int E, int M, int Bias, nan_style NS>
struct minifloat {
  static_assert(E >= 1 && M >= 0 && 1 + E + M <= 8, "a minifloat fits in one byte");

  static constexpr int exponent_bits = E;
  static constexpr int mantissa_bits = M;
  static constexpr int bias = Bias;
  static constexpr int bits = 1 + E + M;
  static constexpr nan_style nans = NS;
  static constexpr bool has_nan = NS != nan_style::none;
  static constexpr bool is_integer = false;
  static constexpr std::uint8_t sign_mask = static_cast<std::uint8_t>(1u << (E + M));
  static constexpr std::uint8_t magnitude_mask = static_cast<std::uint8_t>(sign_mask - 1u);

  // Largest finite code (positive).
  static constexpr std::uint8_t max_code = NS == nan_style::none ? magnitude_mask
                                           : NS == nan_style::fn
                                               ? static_cast<std::uint8_t>(magnitude_mask - 1u)
                                               : static_cast<std::uint8_t>((((1u << E) - 2u) << M) |
                                                                           ((1u << M) - 1u));
  static constexpr std::uint8_t nan_code = NS == nan_style::none ? 0 : magnitude_mask;

  static constexpr float decode(std::uint8_t code) noexcept {
    const bool neg = (code & sign_mask) != 0;
    const unsigned field = (code >> M) & ((1u << E) - 1u);
    const unsigned mant = code & ((1u << M) - 1u);
    float v = 0.0f;
    if constexpr (NS == nan_style::fn) {
      if (field == (1u << E) - 1u && mant == (1u << M) - 1u)
        return std::numeric_limits<float>::quiet_NaN();
    } else if constexpr (NS == nan_style::ieee) {
      if (field == (1u << E) - 1u) {
        if (mant != 0) return std::numeric_limits<float>::quiet_NaN();
        return neg ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
      }
    }
    if (field == 0)
      v = static_cast<float>(mant) * detail::exp2i(1 - Bias - M);
    else
      v = static_cast<float>((1u << M) + mant) * detail::exp2i(static_cast<int>(field) - Bias - M);
    return neg ? -v : v;
  }

  static constexpr float max_value = decode(max_code);
  static constexpr float min_normal = detail::exp2i(1 - Bias);
  // Exponent of the largest normal value: 2 for E2M1 (6 = 1.5 * 2^2), 8 for E4M3.
  static constexpr int emax = detail::floor_log2(decode(max_code));

  static constexpr std::uint8_t encode(float y, tie_mode ties = tie_mode::even) noexcept {
    if (detail::is_nan(y)) return nan_code;
    const std::uint8_t sign = detail::sign_bit(y) ? sign_mask : std::uint8_t{0};
    const float a = detail::abs_bits(y);
    if (!(a < max_value)) return static_cast<std::uint8_t>(sign | max_code);
    // Quantum of a's binade (the subnormal quantum below min_normal); a / q is
    // exact because q is a power of two, and it is below 2^(M+1).
    const int e = a >= min_normal ? detail::floor_log2(a) : 1 - Bias;
    const float q = detail::exp2i(e - M);
    const std::uint32_t r = detail::round_magnitude(a / q, ties);
    // Normal binade: code = (field - 1) << M plus r (which carries the
    // implicit bit); subnormal: code = r. A carry into the next binade falls
    // out of the same sum.
    const std::uint32_t field = a >= min_normal ? static_cast<std::uint32_t>(e + Bias) : 1u;
    std::uint32_t code = ((field - 1u) << M) + r;
    if (code > max_code) code = max_code;
    return static_cast<std::uint8_t>(sign | code);
  }

  // The value y rounds to (decode(encode(y))), a convenience for tests and searches.
  static constexpr float round(float y, tie_mode ties = tie_mode::even) noexcept {
    return decode(encode(y, ties));
  }
};

// E2M1, the FP4 element of MXFP4 and NVFP4: 0, 0.5, 1, 1.5, 2, 3, 4, 6.
struct e2m1 : minifloat<2, 1, 1, nan_style::none> {
  static constexpr std::string_view name = "e2m1";
};
// FP6 elements of MXFP6.
struct e2m3 : minifloat<2, 3, 1, nan_style::none> {
  static constexpr std::string_view name = "e2m3";
};
struct e3m2 : minifloat<3, 2, 3, nan_style::none> {
  static constexpr std::string_view name = "e3m2";
};
// FP8: E4M3 (NVFP4 block scales, MXFP8 elements; max 448, NaN = S.1111.111).
struct e4m3 : minifloat<4, 3, 7, nan_style::fn> {
  static constexpr std::string_view name = "e4m3";
};
struct e5m2 : minifloat<5, 2, 15, nan_style::ieee> {
  static constexpr std::string_view name = "e5m2";
};

// The MXINT8 element: two's-complement int8 with an implicit scale of 2^-6,
// saturating symmetrically at ±127 (±1.984375).
struct int8_mx {
  static constexpr std::string_view name = "int8";
  static constexpr int bits = 8;
  static constexpr bool has_nan = false;
  static constexpr bool is_integer = true;
  static constexpr std::uint8_t nan_code = 0;
  static constexpr std::uint8_t max_code = 127;
  static constexpr float max_value = 127.0f / 64.0f;
  static constexpr int emax = 0;

  static constexpr float decode(std::uint8_t code) noexcept {
    return static_cast<float>(static_cast<std::int8_t>(code)) * (1.0f / 64.0f);
  }
  static constexpr std::uint8_t encode(float y, tie_mode ties = tie_mode::even) noexcept {
    if (detail::is_nan(y)) return 0;
    const float a = detail::abs_bits(y);
    std::uint32_t r = a < max_value ? detail::round_magnitude(a * 64.0f, ties) : 127u;  // a*64 exact
    if (r > 127u) r = 127u;
    const auto v = static_cast<std::int32_t>(r);
    return static_cast<std::uint8_t>(static_cast<std::int8_t>(detail::sign_bit(y) ? -v : v));
  }
  static constexpr float round(float y, tie_mode ties = tie_mode::even) noexcept {
    return decode(encode(y, ties));
  }
};

BLOCKQ_END_NAMESPACE
