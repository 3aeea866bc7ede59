// SPDX-License-Identifier: Apache-2.0
// The scalar block kernels: the oracle every other architecture is tested
// against bit for bit. Every quantizer spends its time in these functions;
// an architecture overloads the ones it accelerates (arch/avx2.hpp,
// arch/neon.hpp) and inherits the rest through its tag's base class.
//
// Conventions shared by all architectures, so that results are identical:
// - elements are x[i] / scale (a true division; for a power-of-two scale a
//   multiplication by the exact reciprocal gives the same bits);
// - dequantized values are decode(code) * scale (for integers q * scale + min);
// - block_sse sums (x[i] - dequantized[i])^2, the difference rounded to float and
//   squared in double, into eight double partial sums s[i % 8] in increasing i, then
//   ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/formats/integer.hpp"
#include "blockq/formats/minifloat.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

// Eight interleaved double partial sums reduced in a fixed tree (see above).
struct sum8 {
  std::array<double, 8> s{};
  BLOCKQ_ALWAYS_INLINE void add(std::size_t i, double v) noexcept { s[i & 7u] += v; }
  BLOCKQ_ALWAYS_INLINE double total() const noexcept {
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
  }
};

// max |x[i]|; a NaN or Inf anywhere makes the result non-finite (NaN if any NaN).
inline float block_amax(arch::scalar, const float* x, std::size_t n) noexcept {
  float m = 0.0f;
  bool nan = false;
  for (std::size_t i = 0; i < n; ++i) {
    const float a = detail::abs_bits(x[i]);
    nan |= detail::is_nan(a);
    m = a > m ? a : m;
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

// min and max of x (both NaN if any x is NaN).
inline void block_min_max(arch::scalar, const float* x, std::size_t n, float& lo, float& hi) noexcept {
  float a = x[0], b = x[0];
  bool nan = false;
  for (std::size_t i = 0; i < n; ++i) {
    nan |= detail::is_nan(x[i]);
    a = x[i] < a ? x[i] : a;
    b = x[i] > b ? x[i] : b;
  }
  lo = nan ? std::numeric_limits<float>::quiet_NaN() : a;
  hi = nan ? std::numeric_limits<float>::quiet_NaN() : b;
}

// codes[i] = Element::encode(x[i] / scale, ties), one code a byte.
template <class Element>
void encode(arch::scalar, const float* x, std::size_t n, float scale, tie_mode ties,
            std::uint8_t* codes) noexcept {
  for (std::size_t i = 0; i < n; ++i) codes[i] = Element::encode(x[i] / scale, ties);
}

// As encode, two 4-bit codes a byte, element 2i in the low nibble of byte i;
// an odd n leaves the last high nibble zero. Writes (n + 1) / 2 bytes.
template <class Element>
void encode_packed(arch::scalar, const float* x, std::size_t n, float scale, tie_mode ties,
                   std::uint8_t* packed) noexcept {
  static_assert(Element::bits <= 4, "nibble packing holds codes of at most 4 bits");
  for (std::size_t i = 0; i + 1 < n; i += 2) {
    const auto lo = Element::encode(x[i] / scale, ties);
    const auto hi = Element::encode(x[i + 1] / scale, ties);
    packed[i / 2] = static_cast<std::uint8_t>(lo | (hi << 4));
  }
  if (n & 1u) packed[n / 2] = Element::encode(x[n - 1] / scale, ties);
}

// out[i] = Element::decode(codes[i]) * scale.
template <class Element>
void decode(arch::scalar, const std::uint8_t* codes, std::size_t n, float scale, float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = Element::decode(codes[i]) * scale;
}

// decode from nibble-packed codes (the layout of encode_packed).
template <class Element>
void decode_packed(arch::scalar, const std::uint8_t* packed, std::size_t n, float scale,
                   float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t b = packed[i / 2];
    out[i] = Element::decode(static_cast<std::uint8_t>((i & 1u) ? b >> 4 : b & 0x0Fu)) * scale;
  }
}

// Sum over the block of (x[i] - decode(encode(x[i] / scale)) * scale)^2.
template <class Element>
double block_sse(arch::scalar, const float* x, std::size_t n, float scale, tie_mode ties) noexcept {
  sum8 acc;
  for (std::size_t i = 0; i < n; ++i) {
    const float d = Element::decode(Element::encode(x[i] / scale, ties)) * scale;
    const double r = static_cast<double>(x[i] - d);
    acc.add(i, r * r);
  }
  return acc.total();
}

// As block_sse, each square weighted by w[i] (product in double: (w * r) * r).
template <class Element>
double block_wsse(arch::scalar, const float* x, const float* w, std::size_t n, float scale,
                  tie_mode ties) noexcept {
  sum8 acc;
  for (std::size_t i = 0; i < n; ++i) {
    const float d = Element::decode(Element::encode(x[i] / scale, ties)) * scale;
    const double r = static_cast<double>(x[i] - d);
    acc.add(i, static_cast<double>(w[i]) * r * r);
  }
  return acc.total();
}

// Integer codes: q = clamp(round_half_even((x - min) / scale)); the stored
// byte is fmt.to_code(q). scale == 0 gives code 0 (q = 0 for symmetric).
inline void encode_int(arch::scalar, const float* x, std::size_t n, float scale, float min,
                       int_format fmt, std::uint8_t* codes) noexcept {
  if (scale == 0.0f) {
    for (std::size_t i = 0; i < n; ++i) codes[i] = fmt.to_code(fmt.is_signed ? 0 : fmt.qmin());
    return;
  }
  for (std::size_t i = 0; i < n; ++i) codes[i] = fmt.encode((x[i] - min) / scale);
}

// out[i] = q * scale + min (min is 0 for symmetric formats).
inline void decode_int(arch::scalar, const std::uint8_t* codes, std::size_t n, float scale, float min,
                       int_format fmt, float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(fmt.to_int(codes[i])) * scale + min;
}

// Sum of (x - (q * scale + min))^2 over the block, q re-rounded at this scale and min.
inline double block_sse_int(arch::scalar, const float* x, std::size_t n, float scale, float min,
                            int_format fmt) noexcept {
  sum8 acc;
  for (std::size_t i = 0; i < n; ++i) {
    const int q = scale == 0.0f ? (fmt.is_signed ? 0 : fmt.qmin()) : fmt.quantize((x[i] - min) / scale);
    const float d = static_cast<float>(q) * scale + min;
    const double r = static_cast<double>(x[i] - d);
    acc.add(i, r * r);
  }
  return acc.total();
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
