// SPDX-License-Identifier: Apache-2.0
// Signed (two's complement) and unsigned integer codes of 1 to 8 bits. A code
// is stored in the low bits of a byte: a signed code keeps its b-bit two's
// complement pattern (-1 in 4 bits is 0x0F), which is what nibble packing stores.
#pragma once

#include <bit>
#include <cstdint>
#include <string>

#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct int_format {
  int bits = 4;
  bool is_signed = true;

  constexpr int qmin() const noexcept { return is_signed ? -(1 << (bits - 1)) : 0; }
  constexpr int qmax() const noexcept { return is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }
  constexpr std::uint8_t mask() const noexcept { return static_cast<std::uint8_t>((1u << bits) - 1u); }

  // The stored byte of the integer q (qmin <= q <= qmax).
  constexpr std::uint8_t to_code(int q) const noexcept {
    return static_cast<std::uint8_t>(static_cast<unsigned>(q) & mask());
  }
  // The integer a stored byte holds (bits above b are ignored; signed codes sign-extend).
  constexpr int to_int(std::uint8_t code) const noexcept {
    const int v = code & mask();
    if (is_signed && (v >> (bits - 1)) != 0) return v - (1 << bits);
    return v;
  }
  // round-half-even(y) clamped to [qmin, qmax]; NaN gives 0.
  constexpr std::uint8_t encode(float y) const noexcept { return to_code(quantize(y)); }
  constexpr int quantize(float y) const noexcept {
    if (detail::is_nan(y)) return 0;
    const float r = detail::round_half_even(y);
    if (r <= static_cast<float>(qmin())) return qmin();
    if (r >= static_cast<float>(qmax())) return qmax();
    return static_cast<int>(r);
  }
};

namespace detail {
inline void check_int_bits(int bits) {
  require(bits >= 1 && bits <= 8, "integer bits must be 1..8, got " + std::to_string(bits));
}
}  // namespace detail

BLOCKQ_END_NAMESPACE
