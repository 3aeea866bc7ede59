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
#include "blockq/formats/half.hpp"
#include "blockq/formats/integer.hpp"
#include "blockq/formats/minifloat.hpp"
#include "blockq/pack.hpp"

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

// For the vector block_min_max kernels: their min / max reductions treat -0 and +0 as equal, so
// a zero extreme takes the sign of the block's first zero, as the scalar loop above (which keeps
// the first of equal values) does.
inline void zero_extremes_signed(const float* x, std::size_t n, float& lo, float& hi) noexcept {
  if (lo != 0.0f && hi != 0.0f) return;
  float z = 0.0f;
  for (std::size_t j = 0; j < n; ++j)
    if (x[j] == 0.0f) {
      z = x[j];
      break;
    }
  if (lo == 0.0f) lo = z;
  if (hi == 0.0f) hi = z;
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

// encode (Packed false: one code a byte) or encode_packed (Packed true): the vector tiers
// write their E2M1 kernels once over both layouts as encode_codes and fall back to this.
template <class Element, bool Packed>
void encode_codes(arch::scalar, const float* x, std::size_t n, float scale, tie_mode ties,
                  std::uint8_t* out) noexcept {
  if constexpr (Packed)
    encode_packed<Element>(arch::scalar{}, x, n, scale, ties, out);
  else
    encode<Element>(arch::scalar{}, x, n, scale, ties, out);
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

// Integer arithmetic that cannot overflow for finite inputs. With a block range wider than
// FLT_MAX (min near -FLT_MAX, x near +FLT_MAX), x - min and q * scale + min overflow
// float32; these two give the finite answer instead, and the plain expression's bits
// whenever that is not infinite (every block of range below FLT_MAX), so that ordinary
// results do not change. SIMD kernels compute the plain expressions and take these only
// for a group of lanes where one came out infinite (bit for bit the same).
//
// (x - min) / scale; when x - min is infinite, ((x / 2 - min / 2) / scale) * 2.
BLOCKQ_ALWAYS_INLINE float int_quotient(float x, float min, float scale) noexcept {
  const float d = x - min;
  if (!detail::is_inf(d)) return d / scale;
  return ((x * 0.5f - min * 0.5f) / scale) * 2.0f;
}

// q * scale + min; when that is infinite for finite scale and min,
// (q * (scale / 2) + min / 2) * 2, saturated to +-FLT_MAX when even that is out of range
// (a level the format cannot represent: the documented saturating result).
BLOCKQ_ALWAYS_INLINE float int_level(float q, float scale, float min) noexcept {
  const float v = q * scale + min;
  if (!detail::is_inf(v) || !detail::is_finite(scale) || !detail::is_finite(min)) return v;
  const float h = (q * (scale * 0.5f) + min * 0.5f) * 2.0f;
  if (detail::is_finite(h)) return h;
  return detail::sign_bit(h) ? -std::numeric_limits<float>::max() : std::numeric_limits<float>::max();
}

// x - level(q(x)) for a non-zero scale, q = fmt.quantize(int_quotient(x, min, scale)).
BLOCKQ_ALWAYS_INLINE float int_residual(float x, float scale, float min, int_format fmt) noexcept {
  return x - int_level(static_cast<float>(fmt.quantize(int_quotient(x, min, scale))), scale, min);
}

// Integer codes: q = clamp(round_half_even((x - min) / scale)) (int_quotient); the stored
// byte is fmt.to_code(q). scale == 0 gives code 0 (q = 0 for symmetric).
inline void encode_int(arch::scalar, const float* x, std::size_t n, float scale, float min,
                       int_format fmt, std::uint8_t* codes) noexcept {
  if (scale == 0.0f) {
    for (std::size_t i = 0; i < n; ++i) codes[i] = fmt.to_code(fmt.is_signed ? 0 : fmt.qmin());
    return;
  }
  for (std::size_t i = 0; i < n; ++i) codes[i] = fmt.encode(int_quotient(x[i], min, scale));
}

// out[i] = q * scale + min (int_level; min is 0 for symmetric formats).
inline void decode_int(arch::scalar, const std::uint8_t* codes, std::size_t n, float scale, float min,
                       int_format fmt, float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = int_level(static_cast<float>(fmt.to_int(codes[i])), scale, min);
}

// Sum of (x - (q * scale + min))^2 over the block, q re-rounded at this scale and min.
inline double block_sse_int(arch::scalar, const float* x, std::size_t n, float scale, float min,
                            int_format fmt) noexcept {
  sum8 acc;
  for (std::size_t i = 0; i < n; ++i) {
    const double r = static_cast<double>(
        scale == 0.0f ? x[i] - (static_cast<float>(fmt.is_signed ? 0 : fmt.qmin()) * scale + min)
                      : int_residual(x[i], scale, min, fmt));
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
    const double r = static_cast<double>(
        scale == 0.0f ? x[i] - (static_cast<float>(fmt.is_signed ? 0 : fmt.qmin()) * scale + min)
                      : int_residual(x[i], scale, min, fmt));
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

// One step of the lsq descents as the composition of encode_int, int_refit_sums (sq, sqq and
// sxq written; sw and sx left as they are: they do not depend on the codes) and block_sse_int /
// block_wsse_int (w given) at (scale, min), with Arch's kernels: the reference that the fused
// int_lsq_step kernels equal. Defined in arch/generic.hpp, where every tier's kernels are seen.
template <class Arch>
double int_lsq_step_of_kernels(Arch, const float* x, const float* w, std::size_t n, float scale, float min,
                               int_format fmt, std::uint8_t* codes, refit_sums& sums) noexcept;

// Refit sums for element codes (q = Element::decode(code), a float level).
template <class Element>
refit_sums element_refit_sums(arch::scalar, const float* x, const float* w, const std::uint8_t* codes,
                              std::size_t n) noexcept {
  return accumulate_refit_sums(x, w, n, [&](std::size_t i) { return static_cast<double>(Element::decode(codes[i])); });
}

// Lower bounds of a block's squared residuals at one scale, for the discrete
// searches' pruning (search/discrete.hpp):
//   zero = sum of x[i]^2 over |x[i]| < zero_below (elements certain to round to zero),
//   clip = sum of max(0, (|x[i]| - clip_above) - 2^-22 |x[i]| - 2^-148)^2 over
//          |x[i]| > clip_above (elements certain to be clipped to the top code;
//          the slack covers the float rounding of the kernel's residual).
// Only bounds: any summation order is valid (the searches allow for it), so a
// SIMD version need not match these bits.
struct bound_energies {
  double zero = 0, clip = 0;
};

inline bound_energies block_bound_energies(arch::scalar, const float* x, std::size_t n, double zero_below,
                                           double clip_above) noexcept {
  bound_energies e;
  for (std::size_t i = 0; i < n; ++i) {
    const double y = static_cast<double>(detail::abs_bits(x[i]));
    if (y < zero_below) e.zero += y * y;
    const double r = (y - clip_above) - y * 0x1p-22 - 0x1p-148;
    if (y > clip_above && r > 0.0) e.clip += r * r;
  }
  return e;
}

// Estimates for the one-pass discrete search (search/discrete.hpp), k <= 4 scales:
//   est[j]  ~ block_sse<Element>(x, n, scales[j], ties), or -1 when not known;
//   zero    ~ sum of x[i]^2 over |x[i]| < zero_below.
// Each known value v (for the true value t) satisfies |v - t| <= estimate_error(n, t):
// a relative (n + 16) 2^-23 plus an absolute n 2^-149, which covers float squares summed
// in any order of up to n / 8 + 4 roundings (and, here, one rounding of the exact value to
// float), as long as |x| <= 2^40 (the search checks it). Bounds only: they need not match
// across architectures, the search evaluates every candidate they cannot rule out exactly.
inline constexpr std::size_t max_estimates = 4;
constexpr double estimate_relative_error(std::size_t n) noexcept { return static_cast<double>(n + 16) * 0x1p-23; }
constexpr double estimate_absolute_error(std::size_t n) noexcept { return static_cast<double>(n) * 0x1p-149; }

template <class Element>
void block_sse_estimates(arch::scalar, const float* x, std::size_t n, const float* scales, std::size_t k,
                         tie_mode ties, float zero_below, float* est, float& zero) noexcept {
  for (std::size_t j = 0; j < k; ++j)
    est[j] = static_cast<float>(block_sse<Element>(arch::scalar{}, x, n, scales[j], ties));
  double z = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double y = static_cast<double>(detail::abs_bits(x[i]));
    if (y < zero_below) z += y * y;
  }
  zero = static_cast<float>(z);
}

// The MXFP4 window search (search/discrete.hpp) in one call, for scales s0 < s1 < s2:
//   sse[j] = block_sse<Element>(x, n, scales[j], ties), bit for bit, j = 0, 1;
//   est    ~ block_sse<Element>(x, n, scales[2], ties);
//   zero   ~ sum of x[i]^2 over |x[i]| < zero_below;
//   clip   ~ sum of fl(|x[i]| - clip_above)^2 over |x[i]| > clip_above (the float
//            difference, as block_sse forms the residual of an element clipped to
//            clip_above); est, zero and clip with the error of block_sse_estimates;
//   amax   = block_amax(x, n).
struct window_sums {
  std::array<double, 2> sse{};
  float est = 0.0f, zero = 0.0f, clip = 0.0f, amax = 0.0f;
};

// The window's two parts in double: z = sum of x^2 over |x| < zero_below, c = sum of
// fl(|x| - clip_above)^2 over |x| > clip_above.
inline void window_parts(const float* x, std::size_t n, float zero_below, float clip_above, double& z,
                         double& c) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const float y = detail::abs_bits(x[i]);
    if (y < zero_below) z += static_cast<double>(y) * y;
    const double r = static_cast<double>(y - clip_above);
    if (y > clip_above) c += r * r;
  }
}

template <class Element>
window_sums block_sse_window(arch::scalar, const float* x, std::size_t n, const float* scales, tie_mode ties,
                             float zero_below, float clip_above) noexcept {
  window_sums w;
  for (std::size_t j = 0; j < 2; ++j) w.sse[j] = block_sse<Element>(arch::scalar{}, x, n, scales[j], ties);
  w.est = static_cast<float>(block_sse<Element>(arch::scalar{}, x, n, scales[2], ties));
  double z = 0.0, c = 0.0;
  window_parts(x, n, zero_below, clip_above, z, c);
  w.zero = static_cast<float>(z);
  w.clip = static_cast<float>(c);
  w.amax = block_amax(arch::scalar{}, x, n);
  return w;
}

// The MXFP4 window in one float pass (search/discrete.hpp, ue8m0_window_index), for a
// power-of-two scale s (with s and 4 s normal floats), in units where s_j = 2^j s is 1:
//   est[j] ~ block_sse<Element>(x, n, 2^j s, ties) / (2^j s)^2, j = 0, 1, 2 (est[2] may be
//            -1, unknown, when amax >= 8 s);
//   zero   ~ sum of x[i]^2 / s^2 over |x[i]| < zero_below s;
//   clip   ~ sum of fl(|x[i]| - clip_above s)^2 / s^2 over |x[i]| > clip_above s;
//   amax   = block_amax(x, n).
// Dividing by a power of two is exact, so each value is the sum block_sse would form,
// scaled; known to the error of block_sse_estimates (relative estimate_relative_error(n),
// absolute estimate_absolute_error(n) in these units) while |x| stays within [2^-40, 2^40]
// (the search checks amax). Bounds only: need not match across architectures.
struct window_estimates {
  std::array<float, 3> est{};
  float zero = 0.0f, clip = 0.0f, amax = 0.0f;
};

template <class Element>
window_estimates block_window_estimates(arch::scalar, const float* x, std::size_t n, float scale, tie_mode ties,
                                        float zero_below, float clip_above) noexcept {
  window_estimates w;
  const double s = scale;
  for (std::size_t j = 0; j < 3; ++j) {
    const double sj = s * static_cast<double>(1u << j);
    w.est[j] = static_cast<float>(block_sse<Element>(arch::scalar{}, x, n, static_cast<float>(sj), ties) / (sj * sj));
  }
  const float zb = zero_below * scale, ca = clip_above * scale;  // exact: powers of two times small floats
  double z = 0.0, c = 0.0;
  window_parts(x, n, zb, ca, z, c);
  w.zero = static_cast<float>(z / (s * s));
  w.clip = static_cast<float>(c / (s * s));
  w.amax = block_amax(arch::scalar{}, x, n);
  return w;
}

// As above for a caller that already has amax = block_amax(x, n) (the MX searches derive
// the start scale from it): kernels that can then skip finding it again.
template <class Element>
window_estimates block_window_estimates(arch::scalar, const float* x, std::size_t n, float scale, tie_mode ties,
                                        float zero_below, float clip_above, float amax) noexcept {
  window_estimates w = block_window_estimates<Element>(arch::scalar{}, x, n, scale, ties, zero_below, clip_above);
  w.amax = amax;
  return w;
}

// ---------------------------------------------------------------------------
// The NVFP4 window search (search/discrete.hpp, e4m3_window_search): up to
// max_window_estimates scales in one call, with the error contract of
// block_sse_estimates (est[j] ~ block_sse, -1 when not known; each known value within
// estimate_relative_error / estimate_absolute_error of the exact one), and
//   tail ~ the sum over the block of min(|x|, max(0, fl(half - |x|)))^2,
// a lower bound of block_sse at every scale s >= 2 half (with half a float, 2 half exact):
// each element's residual there is |x| (code 0) or at least fl(fl(g s) - |x|) with
// fl(g s) >= half (g >= 1/2), at least fl(half - |x|) where that is positive.
// Bounds only: the vector tiers score the scales side by side in their lanes
// (arch/avx2.hpp) and need not match these bits. Here: the exact kernel, rounded to float.
inline constexpr std::size_t max_window_estimates = 16;

template <class Element>
void window_sse_estimates(arch::scalar, const float* x, std::size_t n, const float* scales, std::size_t k,
                          tie_mode ties, float half, float* est, float& tail) noexcept {
  float zero;  // (unused)
  block_sse_estimates<Element>(arch::scalar{}, x, n, scales, k, ties, 0.0f, est, zero);
  double z = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const float y = detail::abs_bits(x[i]), d = half - y;
    const double t = d > 0.0f && d < y ? d : (d > 0.0f ? y : 0.0f);
    z += t * t;
  }
  tail = static_cast<float>(z);
}

// ---------------------------------------------------------------------------
// Inputs in 16-bit floats, and the block loops of the amax rules, whole tensors at a
// time so that an architecture can fuse them (one pass, no call per block). The
// versions here, built from the kernels above, are their oracles.

// out[i] = in[i].to_float(), exact.
inline void to_float(arch::scalar, const float16* in, std::size_t n, float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = in[i].to_float();
}
inline void to_float(arch::scalar, const bfloat16* in, std::size_t n, float* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = in[i].to_float();
}

// max |x[i]| over the finite x[i]; 0 when there is none (the NVFP4 tensor amax).
inline float finite_amax(arch::scalar, const float* x, std::size_t n) noexcept {
  float m = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float a = detail::abs_bits(x[i]);
    if (detail::is_finite(a) && a > m) m = a;
  }
  return m;
}

// Scale functions of the amax rules that the fused block loops know, so that an
// architecture can evaluate them for several blocks at once (any other callable works
// too, one block at a time). Each gives the scale of a block from its amax:
// - e4m3_block_scale: NVFP4 absmax, E4M3(amax / (6 s_t)) (round to nearest even,
//   saturating), the NaN code for a non-finite amax; its divisor fl(decode(code) * s_t);
// - quotient_block_scale: amax / q in float (FP4 absmax q = 6, integers q = qmax), NaN for
//   a non-finite amax; its divisor the scale itself.
struct e4m3_block_scale {
  float s_t = 1.0f;
  std::uint8_t operator()(float amax) const noexcept {
    return detail::is_finite(amax) ? e4m3::encode(amax / (e2m1::max_value * s_t)) : e4m3::nan_code;
  }
};
struct e4m3_block_divisor {
  float s_t = 1.0f;
  float operator()(std::uint8_t code) const noexcept { return e4m3::decode(code) * s_t; }
};
struct quotient_block_scale {
  float q = 1.0f;
  float operator()(float amax) const noexcept {
    if (!detail::is_finite(amax)) return std::numeric_limits<float>::quiet_NaN();
    float s = amax / q;
    // amax within an ulp or two of FLT_MAX: fl(amax / q) * q can round up past it, and the
    // largest level would dequantize to Inf; one ulp down keeps it finite.
    while (!detail::is_finite(s * q)) s = detail::next_down(s);
    return s;
  }
};
// Rule signed_max's scale: the block's signed maximum m (block_signed_max) over qmin = -2^(b-1),
// so that m maps to qmin (ggml Q4_0: d = max / -8). NaN stays NaN (a block with NaN or Inf).
struct signed_quotient_scale {
  float qmin = -1.0f;
  float operator()(float m) const noexcept { return m / qmin; }
};
struct identity_divisor {
  float operator()(float s) const noexcept { return s; }
};

// Where amax_blocks writes the codes.
enum class code_layout : std::uint8_t {
  bytes,       // one code a byte
  nibbles,     // two 4-bit codes a byte, element 2i in the low nibble of byte i (OCP); even blocks
  ggml_mxfp4,  // ggml block_mxfp4, blocks of 32: {scale byte, qs[16]}, qs[j] = c[j] | c[j + 16] << 4
};

namespace loops {

// For each block of `block` elements (the last may be shorter): s = code_of(amax of the
// block), scales[b] = s (ggml_mxfp4: the block's first byte), then the codes at the
// divisor d = divisor_of(s), all zero when d is 0 or not finite. The per-block kernels
// come in as callables (amax(p, n), encode(p, n, d, ties, out), encode_packed(...)) so
// that every architecture reuses this loop with its own kernels.
template <class Element, code_layout L, class Scale, class CodeOf, class DivisorOf, class Amax, class Encode,
          class EncodePacked>
void amax_blocks(const float* x, std::size_t n, std::size_t block, tie_mode ties, CodeOf& code_of,
                 DivisorOf& divisor_of, std::uint8_t* out, Scale* scales, Amax&& amax, Encode&& encode,
                 EncodePacked&& encode_packed) noexcept {
  for (std::size_t b = 0, begin = 0; begin < n; ++b, begin += block) {
    const std::size_t len = n - begin < block ? n - begin : block;
    const Scale s = code_of(amax(x + begin, len));
    const float d = divisor_of(s);
    const bool zero = !(d > 0.0f) || !detail::is_finite(d);
    if constexpr (L == code_layout::ggml_mxfp4) {
      std::uint8_t c[32] = {};
      if (!zero) encode(x + begin, len, d, ties, c);
      std::uint8_t* o = out + b * 17;
      o[0] = static_cast<std::uint8_t>(s);
      for (std::size_t j = 0; j < 16; ++j) o[1 + j] = ggml_mxfp4_byte(c[j], c[j + 16]);
    } else {
      scales[b] = s;
      constexpr bool packed = L == code_layout::nibbles;
      std::uint8_t* o = out + (packed ? begin / 2 : begin);
      if (zero)
        for (std::size_t i = 0; i < (packed ? (len + 1) / 2 : len); ++i) o[i] = 0;
      else if constexpr (packed)
        encode_packed(x + begin, len, d, ties, o);
      else
        encode(x + begin, len, d, ties, o);
    }
  }
}

// Integer codes per block from the block's amax: s = scale_of(amax), scales[b] = s, codes
// at s with min 0; a scale that is not finite gives the codes of scale 0 (all code 0).
template <class ScaleOf, class Amax, class EncodeInt>
void int_amax_blocks(const float* x, std::size_t n, std::size_t block, int_format fmt, ScaleOf& scale_of,
                     std::uint8_t* codes, float* scales, Amax&& amax, EncodeInt&& encode_int) noexcept {
  for (std::size_t b = 0, begin = 0; begin < n; ++b, begin += block) {
    const std::size_t len = n - begin < block ? n - begin : block;
    const float s = scale_of(amax(x + begin, len));
    scales[b] = s;
    encode_int(x + begin, len, detail::is_finite(s) ? s : 0.0f, 0.0f, fmt, codes + begin);
  }
}

// out = decode(codes) * divisor_of(scales[b]) per block (Packed: nibble codes).
template <class Element, bool Packed, class Scale, class DivisorOf, class Decode, class DecodePacked>
void decode_blocks(const std::uint8_t* codes, const Scale* scales, std::size_t n, std::size_t block,
                   DivisorOf& divisor_of, float* out, Decode&& decode, DecodePacked&& decode_packed) noexcept {
  for (std::size_t b = 0, begin = 0; begin < n; ++b, begin += block) {
    const std::size_t len = n - begin < block ? n - begin : block;
    if constexpr (Packed)
      decode_packed(codes + begin / 2, len, divisor_of(scales[b]), out + begin);
    else
      decode(codes + begin, len, divisor_of(scales[b]), out + begin);
  }
}

}  // namespace loops

// The per-tag entry points over these loops are in arch/generic.hpp.

}  // namespace kernels
BLOCKQ_END_NAMESPACE
