// SPDX-License-Identifier: Apache-2.0
// NEON block kernels (AArch64); anything not overloaded here falls back to arch/scalar.hpp.
//
// Every kernel returns the bits its arch/scalar.hpp oracle returns (tests/arch_test.cpp, run
// under qemu-aarch64 by .ci/aarch64.sh). The tricks are those of arch/avx2.hpp where the
// instructions allow, and NEON's own where they help:
// - maxima of |x| as unsigned maxima of the absolute bits (NaN bits sort above +Inf);
// - x / s as x * (1 / s) only for a power-of-two s with a float reciprocal (exact), else vdivq;
// - E2M1 codes as a 32-byte table lookup (vqtbl2q) on the top bits of |x / s| with the tie
//   rule folded into an integer addend (see e2m1_key), E2M1 values as exact sums of steps;
// - integer rounding by vcvtnq_s32_f32, which rounds to nearest even whatever FPCR says, as
//   round_half_even does in the default mode, and converts NaN to 0 as int_format does;
// - sums of squares in eight double lanes s[i % 8] (four float64x2), reduced in the scalar tree.
// 32-bit Arm with NEON keeps the scalar kernels (the arch::neon tag still compiles there).
#pragma once

#include "blockq/arch/scalar.hpp"

#if BLOCKQ_WITH_NEON && defined(__aarch64__)
#include <arm_neon.h>

#include <bit>
#include <cstring>
#include <limits>
#include <type_traits>

#include "blockq/formats/half.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace neon_detail {

using blockq::detail::exact_reciprocal;  // (detail/bits.hpp)

// x / s for four lanes, exactly as the scalar division.
struct divider {
  float32x4_t v;
  bool mul;
  explicit divider(float s) noexcept {
    const float r = exact_reciprocal(s);
    mul = r != 0.0f;
    v = vdupq_n_f32(mul ? r : s);
  }
  BLOCKQ_ALWAYS_INLINE float32x4_t operator()(float32x4_t x) const noexcept {
    return mul ? vmulq_f32(x, v) : vdivq_f32(x, v);
  }
};

// The E2M1 key of |y| (see arch/avx2.hpp, e2m1_key_bits): the top bits of |y| plus an
// addend that makes the comparisons with the rounding thresholds inclusive or exclusive.
BLOCKQ_ALWAYS_INLINE uint32x4_t e2m1_key(float32x4_t y, tie_mode t) noexcept {
  const uint32x4_t a = vandq_u32(vreinterpretq_u32_f32(y), vdupq_n_u32(0x7FFFFFFFu));
  if (t == tie_mode::away) return vshrq_n_u32(a, 21);
  if (t == tie_mode::toward_zero) return vshrq_n_u32(vaddq_u32(a, vdupq_n_u32(0x1FFFFFu)), 21);
  const uint32x4_t bit22 = vandq_u32(vshrq_n_u32(a, 22), vdupq_n_u32(1));
  return vshrq_n_u32(vaddq_u32(vaddq_u32(a, vdupq_n_u32(0x1FFFFFu)), bit22), 21);
}

// 16 E2M1 codes (one a byte, in element order) of y0..y3; guard accumulates the byte
// maximum of the table indices (255: NaN or |y| >= 2^61, which the scalar path handles).
BLOCKQ_ALWAYS_INLINE uint8x16_t e2m1_codes16(float32x4_t y0, float32x4_t y1, float32x4_t y2, float32x4_t y3,
                                            tie_mode t, uint8x16_t& guard) noexcept {
  static constexpr std::uint8_t lut[32] = {0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5,
                                           6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
  const uint16x8_t off = vdupq_n_u16(t == tie_mode::away ? 499 : 500);
  const uint16x8_t k01 = vmovn_high_u32(vmovn_u32(e2m1_key(y0, t)), e2m1_key(y1, t));  // keys <= 1024
  const uint16x8_t k23 = vmovn_high_u32(vmovn_u32(e2m1_key(y2, t)), e2m1_key(y3, t));
  // Saturating: keys below the offset give index 0, the byte narrowing caps at 255.
  const uint8x16_t idx = vqmovn_high_u16(vqmovn_u16(vqsubq_u16(k01, off)), vqsubq_u16(k23, off));
  guard = vmaxq_u8(guard, idx);
  const uint8x16x2_t table = {{vld1q_u8(lut), vld1q_u8(lut + 16)}};
  const uint8x16_t mag = vqtbl2q_u8(table, vminq_u8(idx, vdupq_n_u8(18)));
  // Sign bits to bit 3 of each byte.
  const uint16x8_t s01 = vmovn_high_u32(vmovn_u32(vshrq_n_u32(vreinterpretq_u32_f32(y0), 31)),
                                        vshrq_n_u32(vreinterpretq_u32_f32(y1), 31));
  const uint16x8_t s23 = vmovn_high_u32(vmovn_u32(vshrq_n_u32(vreinterpretq_u32_f32(y2), 31)),
                                        vshrq_n_u32(vreinterpretq_u32_f32(y3), 31));
  const uint8x16_t s = vmovn_high_u16(vmovn_u16(s01), s23);
  return vorrq_u8(mag, vshlq_n_u8(s, 3));
}

// Codes of n elements, one a byte or two (low nibble first); false: use the scalar path.
template <bool Packed>
bool e2m1_encode(const float* x, std::size_t n, float scale, tie_mode t, std::uint8_t* out) noexcept {
  const divider div(scale);
  uint8x16_t guard = vdupq_n_u8(0);
  // m < 16: the quotients of lanes m.. are replaced by +0 (code 0, so an odd last high
  // nibble stays 0; zero inputs would not do, 0 / -s is -0, code 8).
  auto chunk = [&](const float* p, std::uint8_t* o, std::size_t m) {
    float32x4_t y[4];
    for (int j = 0; j < 4; ++j) {
      y[j] = div(vld1q_f32(p + 4 * j));
      if (m < 16) {
        static constexpr std::uint32_t lane[4] = {0, 1, 2, 3};
        const uint32x4_t keep = vcltq_u32(vaddq_u32(vld1q_u32(lane), vdupq_n_u32(4u * j)), vdupq_n_u32(static_cast<std::uint32_t>(m)));
        y[j] = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(y[j]), keep));
      }
    }
    const uint8x16_t c = e2m1_codes16(y[0], y[1], y[2], y[3], t, guard);
    if constexpr (Packed) {
      // even | odd << 4 from the de-interleaved halves.
      const uint8x16_t packed = vsliq_n_u8(vuzp1q_u8(c, c), vuzp2q_u8(c, c), 4);
      if (m == 16)
        vst1_u8(o, vget_low_u8(packed));
      else {
        std::uint8_t buf[16];
        vst1q_u8(buf, packed);
        std::memcpy(o, buf, (m + 1) / 2);
      }
    } else {
      if (m == 16)
        vst1q_u8(o, c);
      else {
        std::uint8_t buf[16];
        vst1q_u8(buf, c);
        std::memcpy(o, buf, m);
      }
    }
  };
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) chunk(x + i, out + (Packed ? i / 2 : i), 16);
  if (i < n) {
    float buf[16] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    chunk(buf, out + (Packed ? i / 2 : i), n - i);
  }
  return vmaxvq_u8(guard) != 255;
}

// decode(encode(y)) for four lanes: the magnitude as a sum of the steps between E2M1 values
// (each sum is exact), one per threshold passed (ordered compares: NaN passes none).
BLOCKQ_ALWAYS_INLINE float32x4_t e2m1_round(float32x4_t y, tie_mode t) noexcept {
  const float32x4_t a = vabsq_f32(y);
  auto pass = [&](float th, bool inclusive) {
    return inclusive ? vcgeq_f32(a, vdupq_n_f32(th)) : vcgtq_f32(a, vdupq_n_f32(th));
  };
  const bool lo_inc = t == tie_mode::away;          // 0.25, 1.25, 2.5, 5
  const bool hi_inc = t != tie_mode::toward_zero;   // 0.75, 1.75, 3.5
  auto step = [&](uint32x4_t m, float v) { return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(vdupq_n_f32(v)))); };
  float32x4_t v = vaddq_f32(step(pass(0.25f, lo_inc), 0.5f), step(pass(0.75f, hi_inc), 0.5f));
  v = vaddq_f32(v, vaddq_f32(step(pass(1.25f, lo_inc), 0.5f), step(pass(1.75f, hi_inc), 0.5f)));
  v = vaddq_f32(v, vaddq_f32(step(pass(2.5f, lo_inc), 1.0f), step(pass(3.5f, hi_inc), 1.0f)));
  v = vaddq_f32(v, step(pass(5.0f, lo_inc), 2.0f));
  // The sign of y, none for a NaN (code 0 is +0).
  const uint32x4_t sign = vandq_u32(vandq_u32(vreinterpretq_u32_f32(y), vdupq_n_u32(0x80000000u)), vceqq_f32(y, y));
  return vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(v), sign));
}

// Eight double partial sums s[i % 8] as four float64x2 (s0 s1 | s2 s3 | s4 s5 | s6 s7).
struct sum8x {
  float64x2_t s01 = vdupq_n_f64(0.0), s23 = vdupq_n_f64(0.0), s45 = vdupq_n_f64(0.0), s67 = vdupq_n_f64(0.0);
  // Squares of residuals r0 (elements 8j .. 8j+3) and r1 (8j+4 .. 8j+7).
  BLOCKQ_ALWAYS_INLINE void add_sq(float32x4_t r0, float32x4_t r1) noexcept {
    const float64x2_t a = vcvt_f64_f32(vget_low_f32(r0)), b = vcvt_high_f64_f32(r0);
    const float64x2_t c = vcvt_f64_f32(vget_low_f32(r1)), d = vcvt_high_f64_f32(r1);
    s01 = vaddq_f64(s01, vmulq_f64(a, a));
    s23 = vaddq_f64(s23, vmulq_f64(b, b));
    s45 = vaddq_f64(s45, vmulq_f64(c, c));
    s67 = vaddq_f64(s67, vmulq_f64(d, d));
  }
  // (w * r) * r.
  BLOCKQ_ALWAYS_INLINE void add_wsq(float32x4_t w0, float32x4_t w1, float32x4_t r0, float32x4_t r1) noexcept {
    const float64x2_t a = vcvt_f64_f32(vget_low_f32(r0)), b = vcvt_high_f64_f32(r0);
    const float64x2_t c = vcvt_f64_f32(vget_low_f32(r1)), d = vcvt_high_f64_f32(r1);
    s01 = vaddq_f64(s01, vmulq_f64(vmulq_f64(vcvt_f64_f32(vget_low_f32(w0)), a), a));
    s23 = vaddq_f64(s23, vmulq_f64(vmulq_f64(vcvt_high_f64_f32(w0), b), b));
    s45 = vaddq_f64(s45, vmulq_f64(vmulq_f64(vcvt_f64_f32(vget_low_f32(w1)), c), c));
    s67 = vaddq_f64(s67, vmulq_f64(vmulq_f64(vcvt_high_f64_f32(w1), d), d));
  }
  // ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)).
  BLOCKQ_ALWAYS_INLINE double total() const noexcept {
    const float64x2_t u = vaddq_f64(vaddq_f64(s01, s45), vaddq_f64(s23, s67));
    return vgetq_lane_f64(u, 0) + vgetq_lane_f64(u, 1);
  }
};

// Calls f(x0, x1, i, m) for groups of 8 elements (x0: i..i+3, x1: i+4..i+7); the last
// group is zero-padded and m < 8 says how many of its lanes are real.
template <class F>
BLOCKQ_ALWAYS_INLINE void for_each8(const float* x, std::size_t n, F&& f) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) f(vld1q_f32(x + i), vld1q_f32(x + i + 4), i, std::size_t{8});
  if (i < n) {
    float buf[8] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    f(vld1q_f32(buf), vld1q_f32(buf + 4), i, n - i);
  }
}

// Lanes below m (of 0..7) kept, the others cleared: padded lanes add +0 to their sums.
BLOCKQ_ALWAYS_INLINE void keep_lanes(float32x4_t& r0, float32x4_t& r1, std::size_t m) noexcept {
  if (m >= 8) return;
  static constexpr std::uint32_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const uint32x4_t lim = vdupq_n_u32(static_cast<std::uint32_t>(m));
  r0 = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(r0), vcltq_u32(vld1q_u32(idx), lim)));
  r1 = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(r1), vcltq_u32(vld1q_u32(idx + 4), lim)));
}

// q = clamp(round_half_even(y)) as int32 lanes: vmaxq/vminq propagate NaN and vcvtnq turns
// it into 0, which is int_format::quantize's answer for NaN.
BLOCKQ_ALWAYS_INLINE int32x4_t int_round(float32x4_t y, float32x4_t qmin, float32x4_t qmax) noexcept {
  return vcvtnq_s32_f32(vminq_f32(vmaxq_f32(y, qmin), qmax));
}

BLOCKQ_ALWAYS_INLINE int32x4_t int_from_code(uint32x4_t c, int_format fmt) noexcept {
  if (fmt.is_signed) {
    const int32x4_t up = vdupq_n_s32(32 - fmt.bits), down = vdupq_n_s32(fmt.bits - 32);
    return vshlq_s32(vshlq_s32(vreinterpretq_s32_u32(c), up), down);  // negative count: arithmetic right
  }
  return vreinterpretq_s32_u32(vandq_u32(c, vdupq_n_u32(fmt.mask())));
}

// vcvt_f32_f16 is exact but quiets signalling NaNs, which float16::to_float keeps: NaN lanes
// take back the half's own quiet bit (bit 9, float bit 22).
BLOCKQ_ALWAYS_INLINE float32x4_t f16_to_f32(uint16x4_t h) noexcept {
  const float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
  const uint32x4_t nan = vmvnq_u32(vceqq_f32(f, f));
  const uint32x4_t quiet_in = vshlq_n_u32(vmovl_u16(h), 13);
  const uint32x4_t clear = vbicq_u32(vandq_u32(nan, vdupq_n_u32(0x00400000u)), quiet_in);
  return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(f), clear));
}

}  // namespace neon_detail

// ------------------------------------------------------------------- block maxima

inline float block_amax(arch::neon, const float* x, std::size_t n) noexcept {
  const uint32x4_t abs = vdupq_n_u32(0x7FFFFFFFu);
  uint32x4_t m0 = vdupq_n_u32(0), m1 = vdupq_n_u32(0);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    m0 = vmaxq_u32(m0, vandq_u32(vld1q_u32(reinterpret_cast<const std::uint32_t*>(x + i)), abs));
    m1 = vmaxq_u32(m1, vandq_u32(vld1q_u32(reinterpret_cast<const std::uint32_t*>(x + i + 4)), abs));
  }
  std::uint32_t m = vmaxvq_u32(vmaxq_u32(m0, m1));
  for (; i < n; ++i) {
    const std::uint32_t a = std::bit_cast<std::uint32_t>(x[i]) & 0x7FFFFFFFu;
    m = a > m ? a : m;
  }
  return m > 0x7F800000u ? std::numeric_limits<float>::quiet_NaN() : std::bit_cast<float>(m);
}

// As arch/avx2.hpp: minima and maxima of the values, NaN tracked apart, a zero result takes
// the bits of the first zero in x (the scalar loop keeps the first of equal values).
inline void block_min_max(arch::neon, const float* x, std::size_t n, float& lo, float& hi) noexcept {
  if (n < 4) return block_min_max(arch::scalar{}, x, n, lo, hi);
  float32x4_t a = vld1q_f32(x), b = a;
  uint32x4_t ok = vceqq_f32(a, a);
  std::size_t i = 4;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    a = vminq_f32(a, v);
    b = vmaxq_f32(b, v);
    ok = vandq_u32(ok, vceqq_f32(v, v));
  }
  if (i < n) {  // the last 4, overlapping
    const float32x4_t v = vld1q_f32(x + n - 4);
    a = vminq_f32(a, v);
    b = vmaxq_f32(b, v);
    ok = vandq_u32(ok, vceqq_f32(v, v));
  }
  if (vminvq_u32(ok) == 0) {
    lo = hi = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  lo = vminvq_f32(a);
  hi = vmaxvq_f32(b);
  zero_extremes_signed(x, n, lo, hi);
}

inline float finite_amax(arch::neon, const float* x, std::size_t n) noexcept {
  const uint32x4_t abs = vdupq_n_u32(0x7FFFFFFFu), inf = vdupq_n_u32(0x7F800000u);
  uint32x4_t m = vdupq_n_u32(0);
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint32x4_t a = vandq_u32(vld1q_u32(reinterpret_cast<const std::uint32_t*>(x + i)), abs);
    m = vmaxq_u32(m, vandq_u32(a, vcltq_u32(a, inf)));
  }
  float r = std::bit_cast<float>(vmaxvq_u32(m));
  for (; i < n; ++i) {
    const float a = detail::abs_bits(x[i]);
    if (detail::is_finite(a) && a > r) r = a;
  }
  return r;
}

// ------------------------------------------------------------ small-float elements

// E2M1 codes in either layout (Packed: two a byte) by the vector kernel; what it declines
// and the other elements go to the oracle.
template <class Element, bool Packed>
void encode_codes(arch::neon, const float* x, std::size_t n, float scale, tie_mode ties,
                  std::uint8_t* out) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (neon_detail::e2m1_encode<Packed>(x, n, scale, ties, out)) return;
  }
  encode_codes<Element, Packed>(arch::scalar{}, x, n, scale, ties, out);
}

namespace neon_detail {
// E2M1 values of 16 codes (bits above 3 ignored), times s, to out. The values are bfloat16
// numbers, so two byte lookups give their top 16 bits.
BLOCKQ_ALWAYS_INLINE void e2m1_decode16(uint8x16_t c, float32x4_t s, float* out) noexcept {
  static constexpr std::uint8_t hi[16] = {0x00, 0x3F, 0x3F, 0x3F, 0x40, 0x40, 0x40, 0x40,
                                          0x80, 0xBF, 0xBF, 0xBF, 0xC0, 0xC0, 0xC0, 0xC0};
  static constexpr std::uint8_t lo[16] = {0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0,
                                          0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0};
  const uint8x16_t k = vandq_u8(c, vdupq_n_u8(0x0F));
  const uint8x16_t h = vqtbl1q_u8(vld1q_u8(hi), k), l = vqtbl1q_u8(vld1q_u8(lo), k);
  const uint16x8_t w0 = vreinterpretq_u16_u8(vzip1q_u8(l, h)), w1 = vreinterpretq_u16_u8(vzip2q_u8(l, h));
  vst1q_f32(out, vmulq_f32(vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(w0), 16)), s));
  vst1q_f32(out + 4, vmulq_f32(vreinterpretq_f32_u32(vshll_high_n_u16(w0, 16)), s));
  vst1q_f32(out + 8, vmulq_f32(vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(w1), 16)), s));
  vst1q_f32(out + 12, vmulq_f32(vreinterpretq_f32_u32(vshll_high_n_u16(w1, 16)), s));
}
}  // namespace neon_detail

template <class Element>
void decode(arch::neon, const std::uint8_t* codes, std::size_t n, float scale, float* out) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    const float32x4_t s = vdupq_n_f32(scale);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) neon_detail::e2m1_decode16(vld1q_u8(codes + i), s, out + i);
    if (i < n) decode<Element>(arch::scalar{}, codes + i, n - i, scale, out + i);
  } else {
    decode<Element>(arch::scalar{}, codes, n, scale, out);
  }
}

template <class Element>
void decode_packed(arch::neon, const std::uint8_t* packed, std::size_t n, float scale, float* out) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    const float32x4_t s = vdupq_n_f32(scale);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const uint8x8_t b = vld1_u8(packed + i / 2);
      const uint8x8_t lo = vand_u8(b, vdup_n_u8(0x0F)), hi = vshr_n_u8(b, 4);
      neon_detail::e2m1_decode16(vcombine_u8(vzip1_u8(lo, hi), vzip2_u8(lo, hi)), s, out + i);
    }
    if (i < n) decode_packed<Element>(arch::scalar{}, packed + i / 2, n - i, scale, out + i);
  } else {
    decode_packed<Element>(arch::scalar{}, packed, n, scale, out);
  }
}

template <class Element>
double block_sse(arch::neon, const float* x, std::size_t n, float scale, tie_mode ties) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace neon_detail;
    const divider div(scale);
    const float32x4_t s = vdupq_n_f32(scale);
    sum8x acc;
    for_each8(x, n, [&](float32x4_t x0, float32x4_t x1, std::size_t, std::size_t m) {
      float32x4_t r0 = vsubq_f32(x0, vmulq_f32(e2m1_round(div(x0), ties), s));
      float32x4_t r1 = vsubq_f32(x1, vmulq_f32(e2m1_round(div(x1), ties), s));
      keep_lanes(r0, r1, m);
      acc.add_sq(r0, r1);
    });
    return acc.total();
  } else {
    return block_sse<Element>(arch::scalar{}, x, n, scale, ties);
  }
}

template <class Element>
double block_wsse(arch::neon, const float* x, const float* w, std::size_t n, float scale, tie_mode ties) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace neon_detail;
    const divider div(scale);
    const float32x4_t s = vdupq_n_f32(scale);
    sum8x acc;
    for_each8(x, n, [&](float32x4_t x0, float32x4_t x1, std::size_t i, std::size_t m) {
      float wb[8] = {};
      std::memcpy(wb, w + i, m * sizeof(float));
      float32x4_t r0 = vsubq_f32(x0, vmulq_f32(e2m1_round(div(x0), ties), s));
      float32x4_t r1 = vsubq_f32(x1, vmulq_f32(e2m1_round(div(x1), ties), s));
      keep_lanes(r0, r1, m);
      acc.add_wsq(vld1q_f32(wb), vld1q_f32(wb + 4), r0, r1);
    });
    return acc.total();
  } else {
    return block_wsse<Element>(arch::scalar{}, x, w, n, scale, ties);
  }
}

// ----------------------------------------------------------------------- integers

namespace neon_detail {
// Whether a lane is +-Inf.
BLOCKQ_ALWAYS_INLINE bool any_inf(float32x4_t v) noexcept {
  return vmaxvq_u32(vceqq_f32(vabsq_f32(v), vdupq_n_f32(std::numeric_limits<float>::infinity()))) != 0;
}
}  // namespace neon_detail

inline void encode_int(arch::neon, const float* x, std::size_t n, float scale, float min, int_format fmt,
                       std::uint8_t* codes) noexcept {
  using namespace neon_detail;
  if (scale == 0.0f || n < 8) return encode_int(arch::scalar{}, x, n, scale, min, fmt, codes);
  const divider div(scale);
  const float32x4_t qmin = vdupq_n_f32(static_cast<float>(fmt.qmin())), qmax = vdupq_n_f32(static_cast<float>(fmt.qmax()));
  const float32x4_t mn = vdupq_n_f32(min);
  const uint32x4_t mask = vdupq_n_u32(fmt.mask());
  auto codes8 = [&](const float* p) {
    const float32x4_t d0 = vsubq_f32(vld1q_f32(p), mn), d1 = vsubq_f32(vld1q_f32(p + 4), mn);
    if (any_inf(d0) || any_inf(d1)) [[unlikely]] {  // x - min overflowed: the scalar int_quotient for these 8
      std::uint8_t c[8];
      for (int j = 0; j < 8; ++j) c[j] = fmt.encode(int_quotient(p[j], min, scale));
      return vld1_u8(c);
    }
    const uint32x4_t a = vandq_u32(vreinterpretq_u32_s32(int_round(div(d0), qmin, qmax)), mask);
    const uint32x4_t b = vandq_u32(vreinterpretq_u32_s32(int_round(div(d1), qmin, qmax)), mask);
    return vmovn_u16(vmovn_high_u32(vmovn_u32(a), b));
  };
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) vst1_u8(codes + i, codes8(x + i));
  if (i < n) vst1_u8(codes + n - 8, codes8(x + n - 8));  // the last 8, overlapping
}

inline void decode_int(arch::neon, const std::uint8_t* codes, std::size_t n, float scale, float min,
                       int_format fmt, float* out) noexcept {
  using namespace neon_detail;
  const float32x4_t s = vdupq_n_f32(scale), mn = vdupq_n_f32(min);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint16x8_t c = vmovl_u8(vld1_u8(codes + i));
    const float32x4_t q0 = vcvtq_f32_s32(int_from_code(vmovl_u16(vget_low_u16(c)), fmt));
    const float32x4_t q1 = vcvtq_f32_s32(int_from_code(vmovl_high_u16(c), fmt));
    const float32x4_t v0 = vaddq_f32(vmulq_f32(q0, s), mn), v1 = vaddq_f32(vmulq_f32(q1, s), mn);  // two roundings
    if (any_inf(v0) || any_inf(v1)) [[unlikely]] {  // overflow: the scalar int_level for these 8
      decode_int(arch::scalar{}, codes + i, 8, scale, min, fmt, out + i);
      continue;
    }
    vst1q_f32(out + i, v0);
    vst1q_f32(out + i + 4, v1);
  }
  if (i < n) decode_int(arch::scalar{}, codes + i, n - i, scale, min, fmt, out + i);
}

namespace neon_detail {
// The residuals x - (q * s + min) of 4 elements as block_sse_int computes them; where x - min
// or the level overflowed, the scalar int_residual of all 4 (the same bits elsewhere).
template <class Div>
BLOCKQ_ALWAYS_INLINE float32x4_t int_residual4(float32x4_t v, const Div& div, float32x4_t s, float32x4_t mn,
                                               float32x4_t qmin, float32x4_t qmax, float scale, float min,
                                               int_format fmt) noexcept {
  const float32x4_t d = vsubq_f32(v, mn);
  const float32x4_t q = vcvtq_f32_s32(int_round(div(d), qmin, qmax));
  const float32x4_t level = vaddq_f32(vmulq_f32(q, s), mn);
  if (any_inf(d) || any_inf(level)) [[unlikely]] {
    float xs[4], r[4];
    vst1q_f32(xs, v);
    for (int j = 0; j < 4; ++j) r[j] = int_residual(xs[j], scale, min, fmt);
    return vld1q_f32(r);
  }
  return vsubq_f32(v, level);
}
}  // namespace neon_detail

inline double block_sse_int(arch::neon, const float* x, std::size_t n, float scale, float min,
                            int_format fmt) noexcept {
  using namespace neon_detail;
  if (scale == 0.0f) return block_sse_int(arch::scalar{}, x, n, scale, min, fmt);
  const divider div(scale);
  const float32x4_t qmin = vdupq_n_f32(static_cast<float>(fmt.qmin())), qmax = vdupq_n_f32(static_cast<float>(fmt.qmax()));
  const float32x4_t s = vdupq_n_f32(scale), mn = vdupq_n_f32(min);
  sum8x acc;
  auto resid = [&](float32x4_t v) { return int_residual4(v, div, s, mn, qmin, qmax, scale, min, fmt); };
  for_each8(x, n, [&](float32x4_t x0, float32x4_t x1, std::size_t, std::size_t m) {
    float32x4_t r0 = resid(x0), r1 = resid(x1);
    keep_lanes(r0, r1, m);
    acc.add_sq(r0, r1);
  });
  return acc.total();
}

// ------------------------------------------------------------------ search kernels

namespace neon_detail {
// The 8 weights of group i (m real lanes, the others 0).
BLOCKQ_ALWAYS_INLINE void load8_padded(const float* w, std::size_t m, float32x4_t& w0, float32x4_t& w1) noexcept {
  if (m == 8) {
    w0 = vld1q_f32(w);
    w1 = vld1q_f32(w + 4);
    return;
  }
  float b[8] = {};
  std::memcpy(b, w, m * sizeof(float));
  w0 = vld1q_f32(b);
  w1 = vld1q_f32(b + 4);
}
}  // namespace neon_detail

template <class Element>
void block_residual(arch::neon, const float* x, std::size_t n, float scale, tie_mode ties, float* r) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    const neon_detail::divider div(scale);
    const float32x4_t s = vdupq_n_f32(scale);
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
      const float32x4_t v = vld1q_f32(x + i);
      vst1q_f32(r + i, vsubq_f32(v, vmulq_f32(neon_detail::e2m1_round(div(v), ties), s)));
    }
    if (i < n) block_residual<Element>(arch::scalar{}, x + i, n - i, scale, ties, r + i);
  } else {
    block_residual<Element>(arch::scalar{}, x, n, scale, ties, r);
  }
}

inline double block_energy(arch::neon, const float* x, const float* w, std::size_t n) noexcept {
  using namespace neon_detail;
  sum8x acc;
  for_each8(x, n, [&](float32x4_t x0, float32x4_t x1, std::size_t i, std::size_t m) {
    if (!w) {
      acc.add_sq(x0, x1);  // padded lanes are 0
    } else {
      float32x4_t w0, w1;
      load8_padded(w + i, m, w0, w1);
      acc.add_wsq(w0, w1, x0, x1);
    }
  });
  return acc.total();
}

// Each row's inner sum in eight double lanes (k % 8), the outer one in kernels::sum8.
inline double quad_form(arch::neon, const float* r, const double* h, std::size_t n) noexcept {
  sum8 outer;
  for (std::size_t i = 0; i < n; ++i) {
    const double* row = h + i * n;
    neon_detail::sum8x inner;
    auto add8 = [&](const double* hp, const float* rp) {
      const float32x4_t r0 = vld1q_f32(rp), r1 = vld1q_f32(rp + 4);
      inner.s01 = vaddq_f64(inner.s01, vmulq_f64(vld1q_f64(hp), vcvt_f64_f32(vget_low_f32(r0))));
      inner.s23 = vaddq_f64(inner.s23, vmulq_f64(vld1q_f64(hp + 2), vcvt_high_f64_f32(r0)));
      inner.s45 = vaddq_f64(inner.s45, vmulq_f64(vld1q_f64(hp + 4), vcvt_f64_f32(vget_low_f32(r1))));
      inner.s67 = vaddq_f64(inner.s67, vmulq_f64(vld1q_f64(hp + 6), vcvt_high_f64_f32(r1)));
    };
    std::size_t k = 0;
    for (; k + 8 <= n; k += 8) add8(row + k, r + k);
    if (k < n) {  // padded with zeros: 0 * 0 = +0 leaves the lanes as they are
      double hb[8] = {};
      float rb[8] = {};
      std::memcpy(hb, row + k, (n - k) * sizeof(double));
      std::memcpy(rb, r + k, (n - k) * sizeof(float));
      add8(hb, rb);
    }
    outer.add(i, static_cast<double>(r[i]) * inner.total());
  }
  return outer.total();
}

inline double block_wsse_int(arch::neon, const float* x, const float* w, std::size_t n, float scale, float min,
                             int_format fmt) noexcept {
  using namespace neon_detail;
  if (scale == 0.0f) return block_wsse_int(arch::scalar{}, x, w, n, scale, min, fmt);
  const divider div(scale);
  const float32x4_t qmin = vdupq_n_f32(static_cast<float>(fmt.qmin())), qmax = vdupq_n_f32(static_cast<float>(fmt.qmax()));
  const float32x4_t s = vdupq_n_f32(scale), mn = vdupq_n_f32(min);
  sum8x acc;
  auto resid = [&](float32x4_t v) { return int_residual4(v, div, s, mn, qmin, qmax, scale, min, fmt); };
  for_each8(x, n, [&](float32x4_t x0, float32x4_t x1, std::size_t i, std::size_t m) {
    float32x4_t r0 = resid(x0), r1 = resid(x1), w0, w1;
    keep_lanes(r0, r1, m);
    load8_padded(w + i, m, w0, w1);
    acc.add_wsq(w0, w1, r0, r1);
  });
  return acc.total();
}

namespace neon_detail {
// The five refit sums in eight double lanes each; level(codes of the group, m) gives the 8
// levels as two float32x4 (padded lanes: w = 0, x = 0, code 0 whose level is 0).
template <class Level>
refit_sums refit_sums8(const float* x, const float* w, const std::uint8_t* codes, std::size_t n, Level&& level) noexcept {
  sum8x sw, sq, sqq, sx, sxq;
  for_each8(x, n, [&](float32x4_t x0, float32x4_t x1, std::size_t i, std::size_t m) {
    float32x4_t w0, w1, q0, q1;
    if (w) {
      load8_padded(w + i, m, w0, w1);
    } else {
      float b[8] = {};
      for (std::size_t j = 0; j < m; ++j) b[j] = 1.0f;
      w0 = vld1q_f32(b);
      w1 = vld1q_f32(b + 4);
    }
    std::uint8_t c[8] = {};
    std::memcpy(c, codes + i, m);
    level(c, q0, q1);
    const float32x4_t ws[2] = {w0, w1}, qs[2] = {q0, q1}, xs[2] = {x0, x1};
    float64x2_t* lanes[5][4] = {{&sw.s01, &sw.s23, &sw.s45, &sw.s67},
                                {&sq.s01, &sq.s23, &sq.s45, &sq.s67},
                                {&sqq.s01, &sqq.s23, &sqq.s45, &sqq.s67},
                                {&sx.s01, &sx.s23, &sx.s45, &sx.s67},
                                {&sxq.s01, &sxq.s23, &sxq.s45, &sxq.s67}};
    for (int h = 0; h < 2; ++h)
      for (int part = 0; part < 2; ++part) {
        const float64x2_t wd = part ? vcvt_high_f64_f32(ws[h]) : vcvt_f64_f32(vget_low_f32(ws[h]));
        const float64x2_t qd = part ? vcvt_high_f64_f32(qs[h]) : vcvt_f64_f32(vget_low_f32(qs[h]));
        const float64x2_t xd = part ? vcvt_high_f64_f32(xs[h]) : vcvt_f64_f32(vget_low_f32(xs[h]));
        const int l = 2 * h + part;
        const float64x2_t wq = vmulq_f64(wd, qd), wx = vmulq_f64(wd, xd);
        *lanes[0][l] = vaddq_f64(*lanes[0][l], wd);
        *lanes[1][l] = vaddq_f64(*lanes[1][l], wq);
        *lanes[2][l] = vaddq_f64(*lanes[2][l], vmulq_f64(wq, qd));
        *lanes[3][l] = vaddq_f64(*lanes[3][l], wx);
        *lanes[4][l] = vaddq_f64(*lanes[4][l], vmulq_f64(wx, qd));
      }
  });
  return {sw.total(), sq.total(), sqq.total(), sx.total(), sxq.total()};
}
}  // namespace neon_detail

inline refit_sums int_refit_sums(arch::neon, const float* x, const float* w, const std::uint8_t* codes, std::size_t n,
                                 int_format fmt) noexcept {
  return neon_detail::refit_sums8(x, w, codes, n, [&](const std::uint8_t* c, float32x4_t& q0, float32x4_t& q1) {
    const uint16x8_t c16 = vmovl_u8(vld1_u8(c));
    q0 = vcvtq_f32_s32(neon_detail::int_from_code(vmovl_u16(vget_low_u16(c16)), fmt));
    q1 = vcvtq_f32_s32(neon_detail::int_from_code(vmovl_high_u16(c16), fmt));
  });
}

template <class Element>
refit_sums element_refit_sums(arch::neon, const float* x, const float* w, const std::uint8_t* codes,
                              std::size_t n) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    return neon_detail::refit_sums8(x, w, codes, n, [](const std::uint8_t* c, float32x4_t& q0, float32x4_t& q1) {
      std::uint8_t b[16] = {};
      std::memcpy(b, c, 8);
      float v[16];
      neon_detail::e2m1_decode16(vld1q_u8(b), vdupq_n_f32(1.0f), v);  // exact: decode * 1
      q0 = vld1q_f32(v);
      q1 = vld1q_f32(v + 4);
    });
  } else {
    return element_refit_sums<Element>(arch::scalar{}, x, w, codes, n);
  }
}

// Bounds only: the scalar kernel's terms summed in two double lanes (any order is allowed).
inline bound_energies block_bound_energies(arch::neon, const float* x, std::size_t n, double zero_below,
                                           double clip_above) noexcept {
  const float64x2_t zb = vdupq_n_f64(zero_below), ca = vdupq_n_f64(clip_above);
  const float64x2_t eps = vdupq_n_f64(0x1p-22), tiny = vdupq_n_f64(0x1p-148), zero = vdupq_n_f64(0.0);
  float64x2_t z = zero, c = zero;
  auto add2 = [&](float64x2_t y) {
    z = vaddq_f64(z, vreinterpretq_f64_u64(vandq_u64(vreinterpretq_u64_f64(vmulq_f64(y, y)), vcltq_f64(y, zb))));
    const float64x2_t r = vsubq_f64(vsubq_f64(vsubq_f64(y, ca), vmulq_f64(y, eps)), tiny);
    const uint64x2_t keep = vandq_u64(vcgtq_f64(y, ca), vcgtq_f64(r, zero));
    c = vaddq_f64(c, vreinterpretq_f64_u64(vandq_u64(vreinterpretq_u64_f64(vmulq_f64(r, r)), keep)));
  };
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t a = vabsq_f32(vld1q_f32(x + i));
    add2(vcvt_f64_f32(vget_low_f32(a)));
    add2(vcvt_high_f64_f32(a));
  }
  bound_energies e{vgetq_lane_f64(z, 0) + vgetq_lane_f64(z, 1), vgetq_lane_f64(c, 0) + vgetq_lane_f64(c, 1)};
  if (i < n) {
    const bound_energies t = block_bound_energies(arch::scalar{}, x + i, n - i, zero_below, clip_above);
    e.zero += t.zero;
    e.clip += t.clip;
  }
  return e;
}

// ------------------------------------------------------------- 16-bit float inputs

inline void to_float(arch::neon, const float16* in, std::size_t n, float* out) noexcept {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, neon_detail::f16_to_f32(vld1_u16(reinterpret_cast<const std::uint16_t*>(in + i))));
  if (i < n) to_float(arch::scalar{}, in + i, n - i, out + i);
}

inline void to_float(arch::neon, const bfloat16* in, std::size_t n, float* out) noexcept {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4)
    vst1q_f32(out + i, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const std::uint16_t*>(in + i)), 16)));
  if (i < n) to_float(arch::scalar{}, in + i, n - i, out + i);
}

// The block loops (amax_blocks, int_amax_blocks, decode_blocks) over these kernels are the
// tag-generic ones of arch/generic.hpp.

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#include "blockq/arch/vector_encode.hpp"  // encode / encode_packed: after encode_codes

#endif  // BLOCKQ_WITH_NEON && __aarch64__
