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

// ---------------------------------------------------------------------------
// Kernels of the scale searches (include/blockq/search/). Same conventions as
// above: residuals are rounded to float exactly as the quantizers produce
// them, then squared / multiplied in double and summed with sum8.

// Sum of x[i]^2 (the error of an all-zero block), sum8 order; w == nullptr
// means unit weights, otherwise each square is (w[i] * x[i]) * x[i].
inline double block_energy(arch::scalar, const float* x, const float* w, std::size_t n) noexcept {
  sum8 acc;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    acc.add(i, w ? static_cast<double>(w[i]) * v * v : v * v);
  }
  return acc.total();
}

// r[i] = x[i] - decode(encode(x[i] / scale)) * scale, in float (the residual
// whose squares block_sse sums).
template <class Element>
void block_residual(arch::scalar, const float* x, std::size_t n, float scale, tie_mode ties,
                    float* r) noexcept {
  for (std::size_t i = 0; i < n; ++i) r[i] = x[i] - Element::decode(Element::encode(x[i] / scale, ties)) * scale;
}

// r^T H r for an n x n row-major matrix H (double) and float residuals r.
// Order: for each row i, h_i = sum over k of H[i n + k] * r[k] with sum8 over
// k; then the result is the sum over i of r[i] * h_i with sum8 over i. Every
// product is a double product (the float r converted exactly).
inline double quad_form(arch::scalar, const float* r, const double* h, std::size_t n) noexcept {
  sum8 outer;
  for (std::size_t i = 0; i < n; ++i) {
    sum8 inner;
    const double* row = h + i * n;
    for (std::size_t k = 0; k < n; ++k) inner.add(k, row[k] * static_cast<double>(r[k]));
    outer.add(i, static_cast<double>(r[i]) * inner.total());
  }
  return outer.total();
}

// As block_sse_int with each square weighted by w[i] (product (w * r) * r in double).
inline double block_wsse_int(arch::scalar, const float* x, const float* w, std::size_t n, float scale,
                             float min, int_format fmt) noexcept {
  sum8 acc;
  for (std::size_t i = 0; i < n; ++i) {
    const int q = scale == 0.0f ? (fmt.is_signed ? 0 : fmt.qmin()) : fmt.quantize((x[i] - min) / scale);
    const float d = static_cast<float>(q) * scale + min;
    const double r = static_cast<double>(x[i] - d);
    acc.add(i, static_cast<double>(w[i]) * r * r);
  }
  return acc.total();
}

// The five sums of a weighted least-squares refit (SPEC §5) for levels q[i]:
// sw = sum w, sq = sum w q, sqq = sum w q^2, sx = sum w x, sxq = sum w x q,
// each in double with its own sum8 in increasing i (w == nullptr: w = 1).
struct refit_sums {
  double sw = 0, sq = 0, sqq = 0, sx = 0, sxq = 0;
};

// The shared loop of the two refit kernels below; level_of(i) gives q[i].
template <class LevelOf>
BLOCKQ_ALWAYS_INLINE refit_sums accumulate_refit_sums(const float* x, const float* w, std::size_t n,
                                                      LevelOf&& level_of) noexcept {
  sum8 sw, sq, sqq, sx, sxq;
  for (std::size_t i = 0; i < n; ++i) {
    const double wi = w ? static_cast<double>(w[i]) : 1.0;
    const double q = level_of(i);
    const double xi = static_cast<double>(x[i]);
    sw.add(i, wi);
    sq.add(i, wi * q);
    sqq.add(i, (wi * q) * q);
    sx.add(i, wi * xi);
    sxq.add(i, (wi * xi) * q);
  }
  return {sw.total(), sq.total(), sqq.total(), sx.total(), sxq.total()};
}

// Refit sums for integer codes (q = fmt.to_int(code)).
inline refit_sums int_refit_sums(arch::scalar, const float* x, const float* w, const std::uint8_t* codes,
                                 std::size_t n, int_format fmt) noexcept {
  return accumulate_refit_sums(x, w, n, [&](std::size_t i) { return static_cast<double>(fmt.to_int(codes[i])); });
}

// Refit sums for element codes (q = Element::decode(code), a float level).
template <class Element>
refit_sums element_refit_sums(arch::scalar, const float* x, const float* w, const std::uint8_t* codes,
                              std::size_t n) noexcept {
  return accumulate_refit_sums(x, w, n, [&](std::size_t i) { return static_cast<double>(Element::decode(codes[i])); });
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
