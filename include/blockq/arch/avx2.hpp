// SPDX-License-Identifier: Apache-2.0
// AVX2 (+FMA, F16C) block kernels; anything not overloaded here falls back to arch/scalar.hpp.
//
// Every kernel returns the bits its arch/scalar.hpp oracle returns, for every input, block
// length and tie mode (tests/arch_test.cpp). The numeric tricks, each explained where used:
// - maxima of |x| as integer maxima of the absolute bits (NaN bits sort above +Inf);
// - x / s as x * (1 / s) only when s is a power of two whose reciprocal is a float: both
//   are the one correctly rounded value of the same real number (any other s divides);
// - E2M1 rounding as a table lookup on the float's top bits, with the tie rule folded into
//   an integer addend (e2m1_index);
// - integer rounding by vcvtps2dq (round to nearest even, as detail::round_half_even) after
//   clamping in float;
// - sums of squares in eight double lanes s[i % 8], reduced in the scalar tree.
#pragma once

#include "blockq/arch/scalar.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

#include <bit>
#include <cstring>
#include <limits>
#include <type_traits>

#include "blockq/formats/half.hpp"
#include "blockq/scale_rule.hpp"

// The kernels dispatch on the tie rule and on the kind of divisor once per call, through
// generic lambdas; they are forced inline so that each variant is one straight loop.
#define BLOCKQ_LAMBDA_INLINE __attribute__((always_inline))

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace avx2_detail {

BLOCKQ_ALWAYS_INLINE __m256i splat(std::uint32_t v) noexcept {
  return _mm256_set1_epi32(static_cast<int>(v));
}

// Lanes 0..n-1 all ones (0 <= n <= 8), for masked loads of a block's tail.
BLOCKQ_ALWAYS_INLINE __m256i first_lanes(std::size_t n) noexcept {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

BLOCKQ_ALWAYS_INLINE std::uint32_t hmax_epu32(__m256i v) noexcept {
  __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4E));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xB1));
  return static_cast<std::uint32_t>(_mm_cvtsi128_si32(m));
}

// 1 / s when s is a power of two whose reciprocal is a float (normal s, or the subnormal
// 2^-127): then x * (1 / s) and x / s are both the correctly rounded x * 2^-k, the same bits
// (subnormal results included). 0 otherwise: the caller divides.
BLOCKQ_ALWAYS_INLINE float exact_reciprocal(float s) noexcept {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(s) & 0x7FFFFFFFu;
  const bool normal_pow2 = (u & 0x7FFFFFu) == 0 && u >= 0x00800000u && u < 0x7F800000u;
  if (normal_pow2 || u == 0x00400000u) return 1.0f / s;
  return 0.0f;
}

// y = x / s, as a multiplication when exact_reciprocal allows it.
struct divide_by {
  __m256 s;
  BLOCKQ_ALWAYS_INLINE __m256 operator()(__m256 x) const noexcept { return _mm256_div_ps(x, s); }
};
struct multiply_by {
  __m256 r;
  BLOCKQ_ALWAYS_INLINE __m256 operator()(__m256 x) const noexcept { return _mm256_mul_ps(x, r); }
};

// Calls f(divider) with the cheapest exact way of computing x / scale.
template <class F>
BLOCKQ_ALWAYS_INLINE void with_divider(float scale, F&& f) {
  const float r = exact_reciprocal(scale);
  if (r != 0.0f)
    f(multiply_by{_mm256_set1_ps(r)});
  else
    f(divide_by{_mm256_set1_ps(scale)});
}

// Calls f(std::integral_constant<tie_mode, t>) so that the tie rule is a compile-time constant.
template <class F>
BLOCKQ_ALWAYS_INLINE void with_ties(tie_mode t, F&& f) {
  switch (t) {
    case tie_mode::toward_zero: f(std::integral_constant<tie_mode, tie_mode::toward_zero>{}); break;
    case tie_mode::away: f(std::integral_constant<tie_mode, tie_mode::away>{}); break;
    default: f(std::integral_constant<tie_mode, tie_mode::even>{}); break;
  }
}

// ---------------------------------------------------------------------------- E2M1
//
// The E2M1 magnitude code of a = |y| is the number of rounding thresholds a passes:
// 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5 (the midpoints of 0, 0.5, 1, 1.5, 2, 3, 4, 6). Each
// threshold has at most two significant bits, so its bits are K_t * 2^21 with
// K_t = bits >> 21 (500, 506, 509, 511, 513, 515, 517): "a >= t" is exactly
// "(bits(a) >> 21) >= K_t" and "a > t" is "((bits(a) - 1) >> 21) >= K_t". The tie rule
// decides which side is inclusive:
// - away (all >=):        key = bits >> 21;
// - toward_zero (all >):  key = (bits + 0x1FFFFF) >> 21, which is ((bits - 1) >> 21) + 1;
// - even: > at the thresholds whose lower neighbour has the even code (0.25, 1.25, 2.5, 5:
//   bit 22 clear) and >= at the others (0.75, 1.75, 3.5: bit 22 set), so
//   key = (bits + 0x1FFFFF + bit22) >> 21 (inclusive ones get the +1 that "> t - 1" needs).
// The code is then a table entry at index key - offset (offset 499 for away, 500 for the
// others: the +1 above), clamped to 0..18 (18 and up: code 7, which also saturates Inf).
// Keys are formed from |y| (so no addend can carry into the sign) and packed to 16 bits,
// where the offset is subtracted and the index saturates to a byte. A NaN saturates the
// byte index at 255 like |y| >= 2^61 does; the stand-alone kernels then hand the whole
// call to the scalar oracle, the block loops never see a NaN (they check amax).
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256i e2m1_key_bits(__m256i a) noexcept {  // a: the bits of |y|
  if constexpr (T == tie_mode::away) {
    return _mm256_srli_epi32(a, 21);
  } else if constexpr (T == tie_mode::toward_zero) {
    return _mm256_srli_epi32(_mm256_add_epi32(a, splat(0x1FFFFFu)), 21);
  } else {
    const __m256i bit22 = _mm256_and_si256(_mm256_srli_epi32(a, 22), splat(1));
    return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(a, splat(0x1FFFFFu)), bit22), 21);
  }
}

template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256i e2m1_key(__m256 y) noexcept {
  return e2m1_key_bits<T>(_mm256_and_si256(_mm256_castps_si256(y), splat(0x7FFFFFFFu)));
}

template <tie_mode T>
inline constexpr int e2m1_offset = T == tie_mode::away ? 499 : 500;

// 32 E2M1 codes, one a byte, from the keys of 32 elements packed to 16 bits (k01 holds
// elements 0..15, k23 16..31, as packs_epi32 leaves them), their index offsets (one per
// half, so that two blocks of 16 can share a call) and the raw bits of the elements (signs).
// The bytes come out in the order packus leaves them: dword j holds elements
// 4 * perm[j] .. 4 * perm[j] + 3 with perm = {0, 2, 4, 6, 1, 3, 5, 7}. `guard`, when
// given, accumulates the byte maximum of the indices (255: an element needs the scalar path).
BLOCKQ_ALWAYS_INLINE __m256i e2m1_codes_from_keys(__m256i k01, __m256i k23, __m256i off01, __m256i off23,
                                                  __m256i b0, __m256i b1, __m256i b2, __m256i b3,
                                                  __m256i* guard) noexcept {
  __m256i idx = _mm256_packus_epi16(_mm256_sub_epi16(k01, off01), _mm256_sub_epi16(k23, off23));  // 0..255
  if (guard) *guard = _mm256_max_epu8(*guard, idx);
  idx = _mm256_min_epu8(idx, _mm256_set1_epi8(18));
  // A 19-entry table from two 16-entry shuffles: hi[i & 15] xor (lo ^ hi)[i], the second
  // shuffle zeroed for i >= 16 (i + 0x70 has bit 7 set exactly then).
  const __m256i hi = _mm256_setr_epi8(6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,  //
                                      6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7);
  const __m256i lo_xor_hi = _mm256_setr_epi8(0 ^ 6, 1 ^ 6, 1 ^ 7, 1 ^ 7, 1 ^ 7, 1 ^ 7, 1 ^ 7, 0x2 ^ 7, 0x2 ^ 7,
                                             0x2 ^ 7, 3 ^ 7, 3 ^ 7, 4 ^ 7, 4 ^ 7, 5 ^ 7, 5 ^ 7,  //
                                             0 ^ 6, 1 ^ 6, 1 ^ 7, 1 ^ 7, 1 ^ 7, 1 ^ 7, 1 ^ 7, 0x2 ^ 7, 0x2 ^ 7,
                                             0x2 ^ 7, 3 ^ 7, 3 ^ 7, 4 ^ 7, 4 ^ 7, 5 ^ 7, 5 ^ 7);
  const __m256i mag = _mm256_xor_si256(
      _mm256_shuffle_epi8(hi, idx),
      _mm256_shuffle_epi8(lo_xor_hi, _mm256_adds_epu8(idx, _mm256_set1_epi8(0x70))));
  // Signs: packs saturates every negative int32 (sign bit set, -0 included) to a negative
  // byte and every other to a non-negative one, so bit 7 of the byte is the sign, which is
  // what blendv reads.
  const __m256i s = _mm256_packs_epi16(_mm256_packs_epi32(b0, b1), _mm256_packs_epi32(b2, b3));
  return _mm256_blendv_epi8(mag, _mm256_or_si256(mag, _mm256_set1_epi8(8)), s);
}

// The codes of y0..y3 (8 elements each), with the ordering and guard of e2m1_codes_from_keys.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256i e2m1_codes32(__m256 y0, __m256 y1, __m256 y2, __m256 y3,
                                          __m256i& guard) noexcept {
  const __m256i off = _mm256_set1_epi16(static_cast<short>(e2m1_offset<T>));
  const __m256i k01 = _mm256_packs_epi32(e2m1_key<T>(y0), e2m1_key<T>(y1));  // keys <= 1024: exact
  const __m256i k23 = _mm256_packs_epi32(e2m1_key<T>(y2), e2m1_key<T>(y3));
  return e2m1_codes_from_keys(k01, k23, off, off, _mm256_castps_si256(y0), _mm256_castps_si256(y1),
                              _mm256_castps_si256(y2), _mm256_castps_si256(y3), &guard);
}

// The codes of e2m1_codes32 in element order.
BLOCKQ_ALWAYS_INLINE __m256i e2m1_unscramble(__m256i c) noexcept {
  return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// The 16 bytes of nibble-packed codes (element 2i low, 2i+1 high) of e2m1_codes32's output.
BLOCKQ_ALWAYS_INLINE __m128i e2m1_pack_nibbles(__m256i c) noexcept {
  // maddubs: c[2i] * 1 + c[2i+1] * 16 in 16 bits; dword j of c holds elements of group
  // perm[j], so after packus lane 0 has the byte pairs of groups 0, 2, 4, 6 and lane 1 those
  // of 1, 3, 5, 7, and interleaving their 16-bit pairs restores the order.
  const __m256i m = _mm256_maddubs_epi16(c, _mm256_set1_epi16(0x1001));
  const __m256i p = _mm256_packus_epi16(m, m);
  return _mm_unpacklo_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
}

// The 32 bytes of nibble-packed codes of two e2m1_codes_from_keys outputs (a: elements
// 0..31, b: 32..63). After packus, qword 0 holds a's byte pairs of groups 0, 2, 4, 6,
// qword 2 those of groups 1, 3, 5, 7 (qwords 1 and 3 the same for b); vpermq puts each
// operand's two qwords in one 128-bit lane and vpshufb interleaves their byte pairs.
BLOCKQ_ALWAYS_INLINE __m256i e2m1_pack_nibbles2(__m256i a, __m256i b) noexcept {
  const __m256i k = _mm256_set1_epi16(0x1001);
  const __m256i t = _mm256_packus_epi16(_mm256_maddubs_epi16(a, k), _mm256_maddubs_epi16(b, k));
  const __m256i q = _mm256_permute4x64_epi64(t, 0xD8);
  return _mm256_shuffle_epi8(q, _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15,  //
                                                 0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15));
}

// Encodes n elements (any n) of x at divider `div`, writing one code a byte (Packed false)
// or two (Packed true, low nibble first; (n + 1) / 2 bytes). Returns false when an element
// needs the scalar path (see e2m1_key); the output is then incomplete.
template <bool Packed, tie_mode T, class Div>
BLOCKQ_ALWAYS_INLINE bool e2m1_encode(const float* x, std::size_t n, Div div, std::uint8_t* out) noexcept {
  __m256i guard = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i c = e2m1_codes32<T>(div(_mm256_loadu_ps(x + i)), div(_mm256_loadu_ps(x + i + 8)),
                                      div(_mm256_loadu_ps(x + i + 16)), div(_mm256_loadu_ps(x + i + 24)), guard);
    if constexpr (Packed)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i / 2), e2m1_pack_nibbles(c));
    else
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), e2m1_unscramble(c));
  }
  if (i + 16 <= n) {
    // Half a group: the second half repeats the first (the duplicated work is cheaper than
    // a separate narrowing path) and only the first 16 codes are stored.
    const __m256 y0 = div(_mm256_loadu_ps(x + i)), y1 = div(_mm256_loadu_ps(x + i + 8));
    const __m256i c = e2m1_codes32<T>(y0, y1, y0, y1, guard);
    if constexpr (Packed)
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i / 2), e2m1_pack_nibbles(c));
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(e2m1_unscramble(c)));
    i += 16;
  }
  if (i < n) {
    // The tail, its quotients padded with +0 (code 0, so an odd last high nibble stays 0;
    // the padding is applied after the division, which would turn 0 / -s into -0).
    const std::size_t m = n - i;
    const __m256i l0 = first_lanes(m), l1 = first_lanes(m > 8 ? m - 8 : 0);
    const __m256 y0 = _mm256_and_ps(div(_mm256_maskload_ps(x + i, l0)), _mm256_castsi256_ps(l0));
    const __m256 y1 = _mm256_and_ps(div(_mm256_maskload_ps(x + i + 8, l1)), _mm256_castsi256_ps(l1));
    alignas(32) std::uint8_t buf[32];
    const __m256i c = e2m1_codes32<T>(y0, y1, y0, y1, guard);
    if constexpr (Packed) {
      _mm_store_si128(reinterpret_cast<__m128i*>(buf), e2m1_pack_nibbles(c));
      std::memcpy(out + i / 2, buf, (m + 1) / 2);
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(buf), e2m1_unscramble(c));
      std::memcpy(out + i, buf, m);
    }
  }
  return _mm256_movemask_epi8(_mm256_cmpeq_epi8(guard, _mm256_set1_epi8(-1))) == 0;
}

// The E2M1 value of each lane's code, with its sign (decode(encode(y)) without the scale).
// Ties to even: magic-number rounding. |y| (clamped to 8) plus M = 2^(e + 22), e the
// exponent of |y| but at least 0, lands in a binade whose spacing is E2M1's spacing there
// (0.5 below 2, 1 in [2, 4), 2 in [4, 8)), so the addition rounds |y| to the E2M1 grid with
// the FPU's round-to-nearest-even, which picks the even multiple of the spacing, i.e. the
// even code; subtracting M is exact, and min(., 6) saturates (a rounded 8 included). A NaN
// lane becomes +0 as the scalar code 0 does (max_ps returns its second operand, 0, for a
// NaN; the sign is dropped). The other rules count the thresholds passed with ordered
// compares (a NaN passes none: code 0).
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256 e2m1_round(__m256 y) noexcept {
  // The sign of y, none for a NaN (code 0 is +0).
  const __m256 sign = _mm256_and_ps(_mm256_and_ps(y, _mm256_castsi256_ps(splat(0x80000000u))), _mm256_cmp_ps(y, y, _CMP_ORD_Q));
  const __m256 a = _mm256_andnot_ps(_mm256_castsi256_ps(splat(0x80000000u)), y);
  if constexpr (T == tie_mode::even) {
    const __m256 a8 = _mm256_min_ps(_mm256_max_ps(a, _mm256_setzero_ps()), _mm256_set1_ps(8.0f));
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(_mm256_castps_si256(a8), splat(0x7F800000u)), splat(0x3F800000u));
    const __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(e, splat(22u << 23)));
    const __m256 v = _mm256_min_ps(_mm256_sub_ps(_mm256_add_ps(a8, m), m), _mm256_set1_ps(6.0f));
    return _mm256_or_ps(v, sign);
  }
  constexpr int gt = _CMP_GT_OQ, ge = _CMP_GE_OQ;
  constexpr int p_even_lo = T == tie_mode::away ? ge : gt;  // 0.25, 1.25, 2.5, 5
  constexpr int p_even_hi = T == tie_mode::toward_zero ? gt : ge;  // 0.75, 1.75, 3.5
  __m256i c = _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(0.25f), p_even_lo));
  c = _mm256_add_epi32(c, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(0.75f), p_even_hi)));
  __m256i d = _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(1.25f), p_even_lo));
  d = _mm256_add_epi32(d, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(1.75f), p_even_hi)));
  __m256i e = _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(2.5f), p_even_lo));
  e = _mm256_add_epi32(e, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(3.5f), p_even_hi)));
  const __m256i f = _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(5.0f), p_even_lo));
  const __m256i neg = _mm256_add_epi32(_mm256_add_epi32(c, d), _mm256_add_epi32(e, f));  // -code
  const __m256i code = _mm256_sub_epi32(_mm256_setzero_si256(), neg);
  const __m256 grid = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
  return _mm256_or_ps(_mm256_permutevar8x32_ps(grid, code), sign);
}

// Eight double lanes s[i % 8]: add the squares (or weighted squares) of 8 float residuals.
struct sum8x {
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  BLOCKQ_ALWAYS_INLINE void add_sq(__m256 r) noexcept {
    const __m256d r0 = _mm256_cvtps_pd(_mm256_castps256_ps128(r));
    const __m256d r1 = _mm256_cvtps_pd(_mm256_extractf128_ps(r, 1));
    lo = _mm256_add_pd(lo, _mm256_mul_pd(r0, r0));
    hi = _mm256_add_pd(hi, _mm256_mul_pd(r1, r1));
  }
  // (w * r) * r, as the scalar kernel rounds it.
  BLOCKQ_ALWAYS_INLINE void add_wsq(__m256 w, __m256 r) noexcept {
    const __m256d r0 = _mm256_cvtps_pd(_mm256_castps256_ps128(r));
    const __m256d r1 = _mm256_cvtps_pd(_mm256_extractf128_ps(r, 1));
    const __m256d w0 = _mm256_cvtps_pd(_mm256_castps256_ps128(w));
    const __m256d w1 = _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1));
    lo = _mm256_add_pd(lo, _mm256_mul_pd(_mm256_mul_pd(w0, r0), r0));
    hi = _mm256_add_pd(hi, _mm256_mul_pd(_mm256_mul_pd(w1, r1), r1));
  }
  // ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)), the tree of kernels::sum8.
  BLOCKQ_ALWAYS_INLINE double total() const noexcept {
    const __m256d t = _mm256_add_pd(lo, hi);  // s0+s4, s1+s5, s2+s6, s3+s7
    const __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));  // (s0+s4)+(s2+s6), ...
    return _mm_cvtsd_f64(_mm_add_sd(u, _mm_unpackhi_pd(u, u)));
  }
};

// Calls f(x_vector, lane_mask_or_null, offset) over n elements in groups of 8; the last
// group is loaded masked (zeros in the unused lanes) and `full` is false for it.
template <class F>
BLOCKQ_ALWAYS_INLINE void for_each8(const float* x, std::size_t n, F&& f) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) f(_mm256_loadu_ps(x + i), i, true);
  if (i < n) f(_mm256_maskload_ps(x + i, first_lanes(n - i)), i, false);
}

// ------------------------------------------------------------------------ integers

// q = clamp(round_half_even(y), qmin, qmax) as int32 lanes; clamping first in float gives the
// same q (qmin, qmax are integers and rounding is monotone) and keeps vcvtps2dq in range.
// NaN: max_ps / min_ps return their second operand when either is NaN, so NaN reaches the
// conversion, which gives 0x80000000; `nan_to_zero` replaces those lanes by 0 (as
// int_format::quantize does); encoders skip it since 0x80000000 & mask is the code of 0.
template <bool NanToZero>
BLOCKQ_ALWAYS_INLINE __m256i int_round(__m256 y, __m256 qmin, __m256 qmax) noexcept {
  const __m256 c = _mm256_min_ps(qmax, _mm256_max_ps(qmin, y));
  const __m256i q = _mm256_cvtps_epi32(c);
  if constexpr (NanToZero) return _mm256_andnot_si256(_mm256_castps_si256(_mm256_cmp_ps(y, y, _CMP_UNORD_Q)), q);
  return q;
}

// Sign-extends the low `bits` bits of each lane (signed formats) or masks them (unsigned).
BLOCKQ_ALWAYS_INLINE __m256i int_from_code(__m256i c, int_format fmt) noexcept {
  if (fmt.is_signed) {
    const __m128i sh = _mm_cvtsi32_si128(32 - fmt.bits);
    return _mm256_sra_epi32(_mm256_sll_epi32(c, sh), sh);
  }
  return _mm256_and_si256(c, _mm256_set1_epi32(fmt.mask()));
}

// 16-bit float inputs.
// F16C's vcvtph2ps is exact but quiets signalling NaNs; float16::to_float keeps the payload
// as it is, so NaN lanes get the quiet bit back from the half's own bit 9.
BLOCKQ_ALWAYS_INLINE __m256 f16_to_f32(__m128i h) noexcept {
  const __m256 f = _mm256_cvtph_ps(h);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(f, f, _CMP_UNORD_Q));
  const __m256i quiet_in = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 13);  // half bit 9 -> float bit 22
  const __m256i clear = _mm256_andnot_si256(quiet_in, _mm256_and_si256(nan, splat(0x00400000u)));
  return _mm256_andnot_ps(_mm256_castsi256_ps(clear), f);
}
BLOCKQ_ALWAYS_INLINE __m256 bf16_to_f32(__m128i h) noexcept {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

}  // namespace avx2_detail

// ------------------------------------------------------------------- block maxima

// The absolute bits as integers order like the values, and every NaN's bits exceed +Inf's:
// one unsigned integer maximum gives amax and whether a NaN is present.
inline float block_amax(arch::avx2, const float* x, std::size_t n) noexcept {
  using namespace avx2_detail;
  const __m256i abs = splat(0x7FFFFFFFu);
  __m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_epu32(m0, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs));
    m1 = _mm256_max_epu32(m1, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8)), abs));
  }
  for (; i + 8 <= n; i += 8)
    m0 = _mm256_max_epu32(m0, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs));
  if (i < n)  // masked lanes load as 0, which never raises the maximum
    m1 = _mm256_max_epu32(m1, _mm256_and_si256(_mm256_castps_si256(_mm256_maskload_ps(x + i, first_lanes(n - i))), abs));
  const std::uint32_t m = hmax_epu32(_mm256_max_epu32(m0, m1));
  return m > 0x7F800000u ? std::numeric_limits<float>::quiet_NaN() : std::bit_cast<float>(m);
}

// min_ps/max_ps on the values, NaN tracked separately. Equal values have equal bits except
// +0 and -0; the scalar loop keeps the first of equal values, so a zero result takes the
// bits of the first zero in x.
inline void block_min_max(arch::avx2, const float* x, std::size_t n, float& lo, float& hi) noexcept {
  using namespace avx2_detail;
  if (n < 8) return block_min_max(arch::scalar{}, x, n, lo, hi);
  __m256 a = _mm256_loadu_ps(x), b = a, nan = _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
  std::size_t i = 8;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    a = _mm256_min_ps(a, v);
    b = _mm256_max_ps(b, v);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (i < n) {  // the last 8, overlapping: min and max do not mind repeats
    const __m256 v = _mm256_loadu_ps(x + n - 8);
    a = _mm256_min_ps(a, v);
    b = _mm256_max_ps(b, v);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  if (_mm256_movemask_ps(nan) != 0) {
    lo = hi = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  __m128 a4 = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  __m128 b4 = _mm_max_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
  a4 = _mm_min_ps(a4, _mm_movehl_ps(a4, a4));
  b4 = _mm_max_ps(b4, _mm_movehl_ps(b4, b4));
  a4 = _mm_min_ss(a4, _mm_shuffle_ps(a4, a4, 1));
  b4 = _mm_max_ss(b4, _mm_shuffle_ps(b4, b4, 1));
  lo = _mm_cvtss_f32(a4);
  hi = _mm_cvtss_f32(b4);
  if (lo == 0.0f || hi == 0.0f) {
    float z = 0.0f;
    for (std::size_t j = 0; j < n; ++j)
      if (x[j] == 0.0f) {
        z = x[j];
        break;
      }
    if (lo == 0.0f) lo = z;
    if (hi == 0.0f) hi = z;
  }
}

// ------------------------------------------------------------ small-float elements

// E2M1 codes in either layout (Packed: two a byte) by the vector kernel; what it declines
// (a scale whose quotients it cannot bound) and the other elements go to the oracle.
template <class Element, bool Packed>
void encode_codes(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties,
                  std::uint8_t* out) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    bool ok = true;
    avx2_detail::with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
      avx2_detail::with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE { ok = avx2_detail::e2m1_encode<Packed, decltype(t)::value>(x, n, div, out); });
    });
    if (ok) return;
  }
  encode_codes<Element, Packed>(arch::scalar{}, x, n, scale, ties, out);
}

template <class Element>
void encode(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties, std::uint8_t* codes) noexcept {
  encode_codes<Element, false>(arch::avx2{}, x, n, scale, ties, codes);
}
template <class Element>
void encode_packed(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties, std::uint8_t* packed) noexcept {
  encode_codes<Element, true>(arch::avx2{}, x, n, scale, ties, packed);
}

namespace avx2_detail {
// E2M1 values of codes 0..15 (8 elements of 32-bit codes; bits above 3 are ignored): the
// magnitude from an 8-entry vpermps table (which reads the low 3 bits), the sign from bit 3.
BLOCKQ_ALWAYS_INLINE __m256 e2m1_decode8(__m256i c) noexcept {
  const __m256 grid = _mm256_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f);
  const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(c, 28), splat(0x80000000u));
  return _mm256_or_ps(_mm256_permutevar8x32_ps(grid, c), _mm256_castsi256_ps(sign));
}
}  // namespace avx2_detail

template <class Element>
void decode(arch::avx2, const std::uint8_t* codes, std::size_t n, float scale, float* out) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace avx2_detail;
    const __m256 s = _mm256_set1_ps(scale);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
      _mm256_storeu_ps(out + i, _mm256_mul_ps(e2m1_decode8(c), s));
    }
    if (i < n) decode<Element>(arch::scalar{}, codes + i, n - i, scale, out + i);
  } else {
    decode<Element>(arch::scalar{}, codes, n, scale, out);
  }
}

template <class Element>
void decode_packed(arch::avx2, const std::uint8_t* packed, std::size_t n, float scale, float* out) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace avx2_detail;
    const __m256 s = _mm256_set1_ps(scale);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + i / 2));
      const __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
      const __m128i c0 = _mm_unpacklo_epi8(lo, hi), c1 = _mm_unpackhi_epi8(lo, hi);  // codes in order
      _mm256_storeu_ps(out + i, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(c0)), s));
      _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(_mm_srli_si128(c0, 8))), s));
      _mm256_storeu_ps(out + i + 16, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(c1)), s));
      _mm256_storeu_ps(out + i + 24, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(_mm_srli_si128(c1, 8))), s));
    }
    for (; i + 8 <= n; i += 8) {
      // 4 bytes -> 8 codes: the low nibble of byte j in lane 2j, the high one in 2j + 1.
      std::uint32_t w;
      std::memcpy(&w, packed + i / 2, 4);
      const __m256i b = _mm256_cvtepu8_epi32(_mm_cvtsi32_si128(static_cast<int>(w)));
      const __m256i spread = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
      const __m256i c = _mm256_srlv_epi32(spread, _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4));
      _mm256_storeu_ps(out + i, _mm256_mul_ps(e2m1_decode8(c), s));
    }
    if (i < n) decode_packed<Element>(arch::scalar{}, packed + i / 2, n - i, scale, out + i);
  } else {
    decode_packed<Element>(arch::scalar{}, packed, n, scale, out);
  }
}

namespace avx2_detail {
// The E2M1 search kernels of the x86 tiers, block_sse and block_sse_estimates, are written
// once over a vector tier V: tier8 here (AVX2), avx512_detail::tier16 (arch/avx512.hpp).
// V gives the loop over a block, whose callback gets a residual function (a - b, +0 in the
// lanes past the block's end, so that they add nothing), the double sums in the scalar
// order, the E2M1 rounding and the one-pass estimates kernel. The division and the product
// by the scale are the vector operators (GCC / Clang, a float operand broadcast; the
// project builds with -ffp-contract=off, so nothing is fused). Other elements take the
// scalar kernels (neither tier has its own).
struct tier8 {
  template <class F>
  BLOCKQ_ALWAYS_INLINE static void for_each(const float* x, std::size_t n, F&& f) {
    for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
      f(v, [&](__m256 a, __m256 b) BLOCKQ_LAMBDA_INLINE {
        const __m256 r = _mm256_sub_ps(a, b);
        return full ? r : _mm256_and_ps(r, _mm256_castsi256_ps(first_lanes(n - i)));
      });
    });
  }
  using sum = sum8x;
  template <tie_mode T>
  BLOCKQ_ALWAYS_INLINE static __m256 round(__m256 y) noexcept {
    return e2m1_round<T>(y);
  }
  template <tie_mode T, std::size_t K, bool Exact>  // defined after e2m1_estimates below
  static void estimates(const float* x, std::size_t n, const float* rcp, const float* scales, float zero_below,
                        float* est, float& zero) noexcept;
};

template <class Element, class V>
double tier_block_sse(const float* x, std::size_t n, float scale, tie_mode ties) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    typename V::sum acc;
    const float r = exact_reciprocal(scale);  // x * r is x / scale where r is not 0
    with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
      auto run = [&](auto div) BLOCKQ_LAMBDA_INLINE {
        V::for_each(x, n, [&](auto v, auto residual) BLOCKQ_LAMBDA_INLINE {
          acc.add_sq(residual(v, V::template round<decltype(t)::value>(div(v)) * scale));
        });
      };
      if (r != 0.0f)
        run([r](auto v) BLOCKQ_LAMBDA_INLINE { return v * r; });
      else
        run([scale](auto v) BLOCKQ_LAMBDA_INLINE { return v / scale; });
    });
    return acc.total();
  } else {
    return block_sse<Element>(arch::scalar{}, x, n, scale, ties);
  }
}
}  // namespace avx2_detail

template <class Element>
double block_sse(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties) noexcept {
  return avx2_detail::tier_block_sse<Element, avx2_detail::tier8>(x, n, scale, ties);
}

template <class Element>
double block_wsse(arch::avx2, const float* x, const float* w, std::size_t n, float scale,
                  tie_mode ties) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace avx2_detail;
    sum8x acc;
    const __m256 s = _mm256_set1_ps(scale);
    with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
      with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
        for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
          const __m256 wv = full ? _mm256_loadu_ps(w + i) : _mm256_maskload_ps(w + i, first_lanes(n - i));
          const __m256 d = _mm256_mul_ps(e2m1_round<decltype(t)::value>(div(v)), s);
          const __m256 r = _mm256_sub_ps(v, d);
          acc.add_wsq(wv, full ? r : _mm256_and_ps(r, _mm256_castsi256_ps(first_lanes(n - i))));
        });
      });
    });
    return acc.total();
  } else {
    return block_wsse<Element>(arch::scalar{}, x, w, n, scale, ties);
  }
}

// ----------------------------------------------------------------------- integers

namespace avx2_detail {
// Whether a lane is +-Inf.
BLOCKQ_ALWAYS_INLINE bool any_inf(__m256 v) noexcept {
  const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
  return _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(std::numeric_limits<float>::infinity()), _CMP_EQ_OQ)) != 0;
}

// The residuals x - (q * s + min) of 8 elements as block_sse_int computes them; where x - min
// or the level overflowed, the scalar int_residual of all 8 (the same bits elsewhere).
template <class Div>
BLOCKQ_ALWAYS_INLINE __m256 int_residual8(__m256 v, Div div, __m256 s, __m256 mn, __m256 qmin, __m256 qmax, float scale,
                                          float min, int_format fmt) noexcept {
  const __m256 d = _mm256_sub_ps(v, mn);
  const __m256 q = _mm256_cvtepi32_ps(int_round<true>(div(d), qmin, qmax));
  const __m256 level = _mm256_add_ps(_mm256_mul_ps(q, s), mn);
  if (any_inf(d) || any_inf(level)) [[unlikely]] {
    alignas(32) float xs[8], r[8];
    _mm256_store_ps(xs, v);
    for (int j = 0; j < 8; ++j) r[j] = int_residual(xs[j], scale, min, fmt);
    return _mm256_load_ps(r);
  }
  return _mm256_sub_ps(v, level);
}
}  // namespace avx2_detail

inline void encode_int(arch::avx2, const float* x, std::size_t n, float scale, float min, int_format fmt,
                       std::uint8_t* codes) noexcept {
  using namespace avx2_detail;
  if (scale == 0.0f || n < 8) return encode_int(arch::scalar{}, x, n, scale, min, fmt, codes);
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  const __m256 mn = _mm256_set1_ps(min);
  const __m256i mask = _mm256_set1_epi32(fmt.mask());
  with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
    auto codes8 = [&](const float* p) BLOCKQ_LAMBDA_INLINE {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(p), mn);
      if (any_inf(d)) [[unlikely]] {  // x - min overflowed: the scalar int_quotient for these 8
        alignas(32) std::int32_t c[8];
        for (int j = 0; j < 8; ++j) c[j] = fmt.encode(int_quotient(p[j], min, scale));
        return _mm256_load_si256(reinterpret_cast<const __m256i*>(c));
      }
      return _mm256_and_si256(int_round<false>(div(d), qmin, qmax), mask);
    };
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
      const __m256i a = _mm256_packus_epi32(codes8(x + i), codes8(x + i + 8));  // codes 0..255
      const __m256i b = _mm256_packus_epi32(codes8(x + i + 16), codes8(x + i + 24));
      const __m256i c = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i), c);
    }
    for (; i + 8 <= n; i += 8) {
      const __m256i a = codes8(x + i);
      const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(w, w));
    }
    if (i < n) {  // the last 8, overlapping: the same elements give the same codes
      const std::size_t j = n - 8;
      const __m256i a = codes8(x + j);
      const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + j), _mm_packus_epi16(w, w));
    }
  });
}

inline void decode_int(arch::avx2, const std::uint8_t* codes, std::size_t n, float scale, float min,
                       int_format fmt, float* out) noexcept {
  using namespace avx2_detail;
  const __m256 s = _mm256_set1_ps(scale), mn = _mm256_set1_ps(min);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
    const __m256 q = _mm256_cvtepi32_ps(int_from_code(c, fmt));
    const __m256 v = _mm256_add_ps(_mm256_mul_ps(q, s), mn);  // q * s + min, two roundings
    if (any_inf(v)) [[unlikely]] {  // overflow: the scalar int_level for these 8
      decode_int(arch::scalar{}, codes + i, 8, scale, min, fmt, out + i);
      continue;
    }
    _mm256_storeu_ps(out + i, v);
  }
  if (i < n) decode_int(arch::scalar{}, codes + i, n - i, scale, min, fmt, out + i);
}

inline double block_sse_int(arch::avx2, const float* x, std::size_t n, float scale, float min,
                            int_format fmt) noexcept {
  using namespace avx2_detail;
  if (scale == 0.0f) return block_sse_int(arch::scalar{}, x, n, scale, min, fmt);
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  const __m256 s = _mm256_set1_ps(scale), mn = _mm256_set1_ps(min);
  sum8x acc;
  with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
    for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
      const __m256 r = int_residual8(v, div, s, mn, qmin, qmax, scale, min, fmt);
      // Masked lanes: r = 0 - (q * s + min) need not be 0, so they are cleared.
      acc.add_sq(full ? r : _mm256_and_ps(r, _mm256_castsi256_ps(first_lanes(n - i))));
    });
  });
  return acc.total();
}

// ------------------------------------------------------------------ search kernels

template <class Element>
void block_residual(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties, float* r) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace avx2_detail;
    const __m256 s = _mm256_set1_ps(scale);
    std::size_t done = 0;
    with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
      with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8) {
          const __m256 v = _mm256_loadu_ps(x + i);
          _mm256_storeu_ps(r + i, _mm256_sub_ps(v, _mm256_mul_ps(e2m1_round<decltype(t)::value>(div(v)), s)));
        }
        done = i;
      });
    });
    if (done < n) block_residual<Element>(arch::scalar{}, x + done, n - done, scale, ties, r + done);
  } else {
    block_residual<Element>(arch::scalar{}, x, n, scale, ties, r);
  }
}

// Sums in the scalar order (lane i % 8 of sum8x); masked lanes load 0 and add +0.
inline double block_energy(arch::avx2, const float* x, const float* w, std::size_t n) noexcept {
  using namespace avx2_detail;
  sum8x acc;
  for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
    if (!w)
      acc.add_sq(v);
    else
      acc.add_wsq(full ? _mm256_loadu_ps(w + i) : _mm256_maskload_ps(w + i, first_lanes(n - i)), v);
  });
  return acc.total();
}

namespace avx2_detail {
// quad_form for n a multiple of 8 up to 64 (the Hessian searches' blocks), four rows at a
// time: r converted to double once, the rows' sum8x lanes reduced together (a 4 x 4
// transpose gives each row's ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)) in one lane),
// and r[i] times the row total added to lane i % 8 of the outer sum, as the scalar kernel
// orders every operation.
inline double quad_form_rows4(const float* r, const double* h, std::size_t n) noexcept {
  alignas(32) double rd[64];
  for (std::size_t k = 0; k < n; k += 4) _mm256_store_pd(rd + k, _mm256_cvtps_pd(_mm_loadu_ps(r + k)));
  sum8x outer;
  for (std::size_t i = 0; i < n; i += 4) {
    __m256d t[4];
    for (std::size_t j = 0; j < 4; ++j) {
      const double* row = h + (i + j) * n;
      __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
      for (std::size_t k = 0; k < n; k += 8) {
        lo = _mm256_add_pd(lo, _mm256_mul_pd(_mm256_loadu_pd(row + k), _mm256_load_pd(rd + k)));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(_mm256_loadu_pd(row + k + 4), _mm256_load_pd(rd + k + 4)));
      }
      t[j] = _mm256_add_pd(lo, hi);  // s0+s4, s1+s5, s2+s6, s3+s7
    }
    const __m256d a01 = _mm256_unpacklo_pd(t[0], t[1]), b01 = _mm256_unpackhi_pd(t[0], t[1]);
    const __m256d a23 = _mm256_unpacklo_pd(t[2], t[3]), b23 = _mm256_unpackhi_pd(t[2], t[3]);
    const __m256d c0 = _mm256_permute2f128_pd(a01, a23, 0x20), c2 = _mm256_permute2f128_pd(a01, a23, 0x31);
    const __m256d c1 = _mm256_permute2f128_pd(b01, b23, 0x20), c3 = _mm256_permute2f128_pd(b01, b23, 0x31);
    const __m256d total = _mm256_add_pd(_mm256_add_pd(c0, c2), _mm256_add_pd(c1, c3));
    const __m256d p = _mm256_mul_pd(_mm256_load_pd(rd + i), total);
    if (i % 8 == 0)
      outer.lo = _mm256_add_pd(outer.lo, p);
    else
      outer.hi = _mm256_add_pd(outer.hi, p);
  }
  return outer.total();
}
}  // namespace avx2_detail

// Each row's inner sum in eight double lanes (k % 8, sum8x), the outer one in kernels::sum8.
inline double quad_form(arch::avx2, const float* r, const double* h, std::size_t n) noexcept {
  using namespace avx2_detail;
  if (n % 8 == 0 && n <= 64) return quad_form_rows4(r, h, n);
  sum8 outer;
  for (std::size_t i = 0; i < n; ++i) {
    const double* row = h + i * n;
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    std::size_t k = 0;
    for (; k + 8 <= n; k += 8) {
      const __m256 v = _mm256_loadu_ps(r + k);
      lo = _mm256_add_pd(lo, _mm256_mul_pd(_mm256_loadu_pd(row + k), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
      hi = _mm256_add_pd(hi, _mm256_mul_pd(_mm256_loadu_pd(row + k + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
    }
    if (k < n) {  // masked lanes: 0 * 0 = +0
      const std::size_t m = n - k;
      const __m256i l = first_lanes(m);
      const __m256 v = _mm256_maskload_ps(r + k, l);
      const __m256i l0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(l)), l1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(l, 1));
      lo = _mm256_add_pd(lo, _mm256_mul_pd(_mm256_maskload_pd(row + k, l0), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
      hi = _mm256_add_pd(hi, _mm256_mul_pd(_mm256_maskload_pd(row + k + 4, l1), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
    }
    sum8x inner;
    inner.lo = lo;
    inner.hi = hi;
    outer.add(i, static_cast<double>(r[i]) * inner.total());
  }
  return outer.total();
}

inline double block_wsse_int(arch::avx2, const float* x, const float* w, std::size_t n, float scale, float min,
                             int_format fmt) noexcept {
  using namespace avx2_detail;
  if (scale == 0.0f) return block_wsse_int(arch::scalar{}, x, w, n, scale, min, fmt);
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  const __m256 s = _mm256_set1_ps(scale), mn = _mm256_set1_ps(min);
  sum8x acc;
  with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
    for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
      const __m256 r = int_residual8(v, div, s, mn, qmin, qmax, scale, min, fmt);
      if (full)
        acc.add_wsq(_mm256_loadu_ps(w + i), r);
      else {
        const __m256i l = first_lanes(n - i);
        acc.add_wsq(_mm256_maskload_ps(w + i, l), _mm256_and_ps(r, _mm256_castsi256_ps(l)));
      }
    });
  });
  return acc.total();
}

namespace avx2_detail {
// The five refit sums, each in eight double lanes; level(i, full) gives the 8 levels q of
// elements i..i+7 as floats (exact in double). Masked lanes have w = 0, x = 0, q = 0.
template <class Level>
BLOCKQ_ALWAYS_INLINE refit_sums refit_sums8(const float* x, const float* w, std::size_t n, Level&& level) noexcept {
  sum8x sw, sq, sqq, sx, sxq;
  auto add = [](sum8x& acc, __m256d a, __m256d b) BLOCKQ_LAMBDA_INLINE {
    acc.lo = _mm256_add_pd(acc.lo, a);
    acc.hi = _mm256_add_pd(acc.hi, b);
  };
  for_each8(x, n, [&](__m256 v, std::size_t i, bool full) BLOCKQ_LAMBDA_INLINE {
    const __m256i lanes = full ? splat(0xFFFFFFFFu) : first_lanes(n - i);
    const __m256 wf = w ? (full ? _mm256_loadu_ps(w + i) : _mm256_maskload_ps(w + i, lanes))
                        : _mm256_and_ps(_mm256_set1_ps(1.0f), _mm256_castsi256_ps(lanes));
    const __m256 qf = level(i, lanes);
    const __m256d w0 = _mm256_cvtps_pd(_mm256_castps256_ps128(wf)), w1 = _mm256_cvtps_pd(_mm256_extractf128_ps(wf, 1));
    const __m256d q0 = _mm256_cvtps_pd(_mm256_castps256_ps128(qf)), q1 = _mm256_cvtps_pd(_mm256_extractf128_ps(qf, 1));
    const __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    const __m256d wq0 = _mm256_mul_pd(w0, q0), wq1 = _mm256_mul_pd(w1, q1);
    const __m256d wx0 = _mm256_mul_pd(w0, x0), wx1 = _mm256_mul_pd(w1, x1);
    add(sw, w0, w1);
    add(sq, wq0, wq1);
    add(sqq, _mm256_mul_pd(wq0, q0), _mm256_mul_pd(wq1, q1));
    add(sx, wx0, wx1);
    add(sxq, _mm256_mul_pd(wx0, q0), _mm256_mul_pd(wx1, q1));
  });
  return {sw.total(), sq.total(), sqq.total(), sx.total(), sxq.total()};
}

// 8 code bytes at c (masked: the lanes of `lanes`, the others 0) as 32-bit lanes.
BLOCKQ_ALWAYS_INLINE __m256i load_codes8(const std::uint8_t* c, __m256i lanes, bool full) noexcept {
  if (full) return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c)));
  alignas(16) std::uint8_t buf[16] = {};
  const int m = _mm256_movemask_ps(_mm256_castsi256_ps(lanes));
  for (int j = 0; j < 8; ++j)
    if (m & (1 << j)) buf[j] = c[j];
  return _mm256_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(buf)));
}
}  // namespace avx2_detail

inline refit_sums int_refit_sums(arch::avx2, const float* x, const float* w, const std::uint8_t* codes, std::size_t n,
                                 int_format fmt) noexcept {
  using namespace avx2_detail;
  return refit_sums8(x, w, n, [&](std::size_t i, __m256i lanes) BLOCKQ_LAMBDA_INLINE {
    // Masked lanes read code 0, whose level is 0 in every format.
    const __m256i c = load_codes8(codes + i, lanes, i + 8 <= n);
    return _mm256_cvtepi32_ps(int_from_code(c, fmt));
  });
}

template <class Element>
refit_sums element_refit_sums(arch::avx2, const float* x, const float* w, const std::uint8_t* codes,
                              std::size_t n) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    using namespace avx2_detail;
    return refit_sums8(x, w, n, [&](std::size_t i, __m256i lanes) BLOCKQ_LAMBDA_INLINE {
      return e2m1_decode8(load_codes8(codes + i, lanes, i + 8 <= n));  // code 0 is +0
    });
  } else {
    return element_refit_sums<Element>(arch::scalar{}, x, w, codes, n);
  }
}

// Bounds only: the same terms as the scalar kernel, summed in four double lanes (the
// searches allow any order, see arch/scalar.hpp).
inline bound_energies block_bound_energies(arch::avx2, const float* x, std::size_t n, double zero_below,
                                           double clip_above) noexcept {
  using namespace avx2_detail;
  const __m256d zb = _mm256_set1_pd(zero_below), ca = _mm256_set1_pd(clip_above);
  const __m256d eps = _mm256_set1_pd(0x1p-22), tiny = _mm256_set1_pd(0x1p-148), zero = _mm256_setzero_pd();
  __m256d z = zero, c = zero;
  auto add4 = [&](__m128 v) BLOCKQ_LAMBDA_INLINE {
    const __m256d y = _mm256_cvtps_pd(_mm_andnot_ps(_mm_set1_ps(-0.0f), v));
    z = _mm256_add_pd(z, _mm256_and_pd(_mm256_mul_pd(y, y), _mm256_cmp_pd(y, zb, _CMP_LT_OQ)));
    const __m256d r = _mm256_sub_pd(_mm256_sub_pd(_mm256_sub_pd(y, ca), _mm256_mul_pd(y, eps)), tiny);
    const __m256d keep = _mm256_and_pd(_mm256_cmp_pd(y, ca, _CMP_GT_OQ), _mm256_cmp_pd(r, zero, _CMP_GT_OQ));
    c = _mm256_add_pd(c, _mm256_and_pd(_mm256_mul_pd(r, r), keep));
  };
  for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, no term
    add4(_mm256_castps256_ps128(v));
    add4(_mm256_extractf128_ps(v, 1));
  });
  const __m128d z2 = _mm_add_pd(_mm256_castpd256_pd128(z), _mm256_extractf128_pd(z, 1));
  const __m128d c2 = _mm_add_pd(_mm256_castpd256_pd128(c), _mm256_extractf128_pd(c, 1));
  return {_mm_cvtsd_f64(_mm_add_sd(z2, _mm_unpackhi_pd(z2, z2))), _mm_cvtsd_f64(_mm_add_sd(c2, _mm_unpackhi_pd(c2, c2)))};
}

namespace avx2_detail {
BLOCKQ_ALWAYS_INLINE float hsum_ps(__m256 v) noexcept {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// e2m1_round for y >= 0 (not NaN): the magnitude alone.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256 e2m1_round_magnitude(__m256 a) noexcept {
  if constexpr (T == tie_mode::even) {
    const __m256 a8 = _mm256_min_ps(a, _mm256_set1_ps(8.0f));
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(_mm256_castps_si256(a8), splat(0x7F800000u)), splat(0x3F800000u));
    const __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(e, splat(22u << 23)));
    return _mm256_min_ps(_mm256_sub_ps(_mm256_add_ps(a8, m), m), _mm256_set1_ps(6.0f));
  } else {
    return e2m1_round<T>(a);
  }
}

// K candidates in one pass over the block (see block_sse_estimates below).
template <tie_mode T, std::size_t K, bool Exact>
BLOCKQ_ALWAYS_INLINE void e2m1_estimates(const float* x, std::size_t n, const float* rcp, const float* scales,
                                         float zero_below, float* est, float& zero) noexcept {
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu)), zb = _mm256_set1_ps(zero_below);
  __m256 z = _mm256_setzero_ps(), acc[K + 1], r[K + 1], s[K + 1];  // (+1: no empty arrays)
  __m256i near[K + 1];
  for (std::size_t j = 0; j < K; ++j) {
    acc[j] = _mm256_setzero_ps();
    near[j] = _mm256_setzero_si256();
    r[j] = _mm256_set1_ps(rcp[j]);
    s[j] = _mm256_set1_ps(scales[j]);
  }
  for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, no term
    const __m256 y = _mm256_and_ps(v, abs_mask);
    const __m256 y0 = _mm256_and_ps(y, _mm256_cmp_ps(y, zb, _CMP_LT_OQ));
    z = _mm256_fmadd_ps(y0, y0, z);
    for (std::size_t j = 0; j < K; ++j) {
      const __m256 q = _mm256_mul_ps(y, r[j]);
      if constexpr (!Exact) {
        const __m256i b = _mm256_castps_si256(q);
        const __m256i in = _mm256_and_si256(_mm256_cmpgt_epi32(b, splat(0x3DFFFFFFu)), _mm256_cmpgt_epi32(splat(0x40E00001u), b));
        const __m256i low = _mm256_and_si256(_mm256_add_epi32(b, splat(8u)), splat(0x1FFFFFu));
        near[j] = _mm256_or_si256(near[j], _mm256_and_si256(in, _mm256_cmpgt_epi32(splat(16u), low)));
      }
      const __m256 res = _mm256_sub_ps(y, _mm256_mul_ps(e2m1_round_magnitude<T>(q), s[j]));
      acc[j] = _mm256_fmadd_ps(res, res, acc[j]);
    }
  });
  zero = hsum_ps(z);
  for (std::size_t j = 0; j < K; ++j) est[j] = Exact || _mm256_testz_si256(near[j], near[j]) ? hsum_ps(acc[j]) : -1.0f;
}
}  // namespace avx2_detail

// E2M1: the residuals are the kernel's own (up to the sign), squared and summed in float.
// A scale without an exact reciprocal multiplies by fl(1 / s) instead of dividing: the
// product is within 5 float steps of fl(|x| / s), so it gives the same code unless it lies
// within 8 steps of a multiple of 2^21 in the bits (where every E2M1 threshold lies, see
// e2m1_key_bits) in [0.125, 7]; such a candidate is reported unknown (-1), and so is a
// scale whose reciprocal is not a normal float.
namespace avx2_detail {
// The per-call part of block_sse_estimates shared by the x86 tiers: the reciprocals
// (unknown, -1, where fl(1 / s) is not a normal float), then
// f(tie constant, K constant, exact constant, rcp, scales, out) on the K usable scales.
template <class F>
BLOCKQ_ALWAYS_INLINE void run_estimates(const float* scales, std::size_t k, tie_mode ties, float* est, F&& f) {
  float rcp[max_estimates], sc[max_estimates], out[max_estimates];
  std::size_t idx[max_estimates], m = 0;
  bool exact = true;
  for (std::size_t j = 0; j < k; ++j) {
    float r = exact_reciprocal(scales[j]);
    if (r == 0.0f) {
      exact = false;
      r = 1.0f / scales[j];
      if (!(r >= 0x1p-126f && r <= 0x1p126f)) {
        est[j] = -1.0f;
        continue;
      }
    }
    rcp[m] = r;
    sc[m] = scales[j];
    idx[m++] = j;
  }
  with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
    auto run = [&](auto kk) BLOCKQ_LAMBDA_INLINE {
      if (exact)
        f(t, kk, std::true_type{}, rcp, sc, out);
      else
        f(t, kk, std::false_type{}, rcp, sc, out);
    };
    switch (m) {
      case 0: run(std::integral_constant<std::size_t, 0>{}); break;
      case 1: run(std::integral_constant<std::size_t, 1>{}); break;
      case 2: run(std::integral_constant<std::size_t, 2>{}); break;
      case 3: run(std::integral_constant<std::size_t, 3>{}); break;
      default: run(std::integral_constant<std::size_t, 4>{}); break;
    }
  });
  for (std::size_t j = 0; j < m; ++j) est[idx[j]] = out[j];
}
}  // namespace avx2_detail

namespace avx2_detail {
template <tie_mode T, std::size_t K, bool Exact>
void tier8::estimates(const float* x, std::size_t n, const float* rcp, const float* scales, float zero_below,
                      float* est, float& zero) noexcept {
  e2m1_estimates<T, K, Exact>(x, n, rcp, scales, zero_below, est, zero);
}

template <class Element, class V>
void tier_block_sse_estimates(const float* x, std::size_t n, const float* scales, std::size_t k, tie_mode ties,
                              float zero_below, float* est, float& zero) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    run_estimates(scales, k, ties, est, [&](auto t, auto kk, auto ex, const float* rcp, const float* sc,
                                            float* out) BLOCKQ_LAMBDA_INLINE {
      V::template estimates<decltype(t)::value, decltype(kk)::value, decltype(ex)::value>(x, n, rcp, sc, zero_below,
                                                                                           out, zero);
    });
  } else {
    block_sse_estimates<Element>(arch::scalar{}, x, n, scales, k, ties, zero_below, est, zero);
  }
}
}  // namespace avx2_detail

template <class Element>
void block_sse_estimates(arch::avx2, const float* x, std::size_t n, const float* scales, std::size_t k,
                         tie_mode ties, float zero_below, float* est, float& zero) noexcept {
  avx2_detail::tier_block_sse_estimates<Element, avx2_detail::tier8>(x, n, scales, k, ties, zero_below, est, zero);
}

// ----------------------------------------------------------- NVFP4 window estimates
// window_sse_estimates (arch/scalar.hpp) with the scales in the lanes: two vectors of 8
// candidates, one broadcast element at a time, so that a block of 16 scores 16 E4M3
// scales in 32 vector steps and no horizontal sums. Each lane multiplies by fl(1 / s)
// (within 3 float steps of fl(|x| / s)) and is reported unknown (-1) when a product lies
// within 8 steps of a multiple of 2^21 in the bits (where every E2M1 threshold lies) in
// [0.2, 5.5] (below 0.2 and above 5.5 both quotients round to 0 and to 6 under every tie
// rule), or when fl(1 / s) is not a normal float; elsewhere the code, the product by s and
// the residual |x| - d are block_sse's (up to the sign). The squares are summed in float
// by fused multiply-adds, each term through at most n roundings: relative n 2^-24 plus
// n 2^-150 below FLT_MIN, inside estimate_relative_error / estimate_absolute_error; the
// tail bound likewise, 8 lanes of float fused multiply-adds.
namespace avx2_detail {
// E2M1 rounding of a quotient clamped to [0.2, 5.5] (the same codes as the quotient's:
// below 0.25 zero, above 5 six), round to nearest even: the magic-number rounding of
// e2m1_round_magnitude without its clamps.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256 e2m1_round_clamped(__m256 c) noexcept {
  if constexpr (T == tie_mode::even) {
    const __m256i e = _mm256_max_epi32(_mm256_and_si256(_mm256_castps_si256(c), splat(0x7F800000u)), splat(0x3F800000u));
    const __m256 m = _mm256_castsi256_ps(_mm256_add_epi32(e, splat(22u << 23)));
    return _mm256_sub_ps(_mm256_add_ps(c, m), m);
  } else {
    return e2m1_round<T>(c);
  }
}

// One vector of 8 candidates (s, r = fl(1 / s)) over m magnitudes y: the float sums of
// squares (two partial sums, even and odd elements, so that the fused multiply-adds'
// latency overlaps; each term still goes through at most n roundings) and the unsigned
// minimum of (bits + 8) & 0x1FFFF0 of the clamped products (0 exactly where one lies
// within 8 steps of a multiple of 2^21), carried over the block's chunks.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE void e2m1_window8(const float* y, std::size_t m, __m256 s, __m256 r, __m256 (&a)[2],
                                       __m256i& l) noexcept {
  const __m256 lo_clamp = _mm256_set1_ps(0.2f), hi_clamp = _mm256_set1_ps(5.5f);
  auto step = [&](std::size_t i, std::size_t p) BLOCKQ_LAMBDA_INLINE {
    const __m256 yi = _mm256_broadcast_ss(y + i);
    const __m256 c = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(yi, r), lo_clamp), hi_clamp);
    l = _mm256_min_epu32(l, _mm256_and_si256(_mm256_add_epi32(_mm256_castps_si256(c), splat(8u)), splat(0x1FFFF0u)));
    const __m256 res = _mm256_sub_ps(yi, _mm256_mul_ps(e2m1_round_clamped<T>(c), s));
    a[p] = _mm256_fmadd_ps(res, res, a[p]);
  };
  std::size_t i = 0;
  for (; i + 2 <= m; i += 2) {
    step(i, 0);
    step(i + 1, 1);
  }
  if (i < m) step(i, 0);
}

template <tie_mode T, bool Two>
BLOCKQ_ALWAYS_INLINE void e2m1_window_estimates(const float* x, std::size_t n, const float* scales, float half,
                                                float* est, float& tail) noexcept {
  constexpr std::size_t V = Two ? 2 : 1, chunk = 64;
  __m256 s[V], r[V], acc[V][2];
  __m256i low[V];
  for (std::size_t v = 0; v < V; ++v) {
    s[v] = _mm256_loadu_ps(scales + 8 * v);
    r[v] = _mm256_div_ps(_mm256_set1_ps(1.0f), s[v]);
    acc[v][0] = acc[v][1] = _mm256_setzero_ps();
    low[v] = splat(0xFFFFFFFFu);
  }
  // The magnitudes a chunk at a time on the stack (broadcast from memory in the loops
  // over the candidates), and the tail bound on the way.
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu)), h = _mm256_set1_ps(half);
  __m256 z = _mm256_setzero_ps();
  alignas(32) float y[chunk];
  for (std::size_t c0 = 0; c0 < n; c0 += chunk) {
    const std::size_t m = n - c0 < chunk ? n - c0 : chunk;
    for_each8(x + c0, m, [&](__m256 v, std::size_t i, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: 0, no term
      const __m256 a = _mm256_and_ps(v, abs_mask);
      _mm256_store_ps(y + i, a);
      const __m256 t = _mm256_min_ps(a, _mm256_max_ps(_mm256_sub_ps(h, a), _mm256_setzero_ps()));
      z = _mm256_fmadd_ps(t, t, z);
    });
    for (std::size_t v = 0; v < V; ++v) e2m1_window8<T>(y, m, s[v], r[v], acc[v], low[v]);  // (no spills)
  }
  tail = hsum_ps(z);
  for (std::size_t v = 0; v < V; ++v) {
    // not (r >= 2^-126 and r <= 2^126): NaN-safe, true where the lane is unusable
    const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(r[v], _mm256_set1_ps(0x1p-126f), _CMP_GE_OQ),
                                    _mm256_cmp_ps(r[v], _mm256_set1_ps(0x1p126f), _CMP_LE_OQ));
    const __m256 unknown =
        _mm256_or_ps(_mm256_xor_ps(ok, _mm256_castsi256_ps(splat(0xFFFFFFFFu))),
                     _mm256_castsi256_ps(_mm256_cmpeq_epi32(low[v], _mm256_setzero_si256())));
    _mm256_storeu_ps(est + 8 * v,
                     _mm256_blendv_ps(_mm256_add_ps(acc[v][0], acc[v][1]), _mm256_set1_ps(-1.0f), unknown));
  }
}
}  // namespace avx2_detail

template <class Element>
void window_sse_estimates(arch::avx2, const float* x, std::size_t n, const float* scales, std::size_t k,
                          tie_mode ties, float half, float* est, float& tail) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (k == 0 || k > max_window_estimates) {
      window_sse_estimates<Element>(arch::scalar{}, x, n, scales, k, ties, half, est, tail);
      return;
    }
    float sc[max_window_estimates], out[max_window_estimates];
    for (std::size_t j = 0; j < max_window_estimates; ++j) sc[j] = scales[j < k ? j : k - 1];
    avx2_detail::with_ties(ties, [&](auto t) BLOCKQ_LAMBDA_INLINE {
      if (k > 8)
        avx2_detail::e2m1_window_estimates<decltype(t)::value, true>(x, n, sc, half, out, tail);
      else
        avx2_detail::e2m1_window_estimates<decltype(t)::value, false>(x, n, sc, half, out, tail);
    });
    for (std::size_t j = 0; j < k; ++j) est[j] = out[j];
  } else {
    window_sse_estimates<Element>(arch::scalar{}, x, n, scales, k, ties, half, est, tail);
  }
}

namespace avx2_detail {
// The scales of block_sse_window in one pass; they have exact reciprocals. The residual
// |x| - round(|x| r) s is the kernel's x - d up to the sign (E2M1 rounding is odd under
// every tie rule), and sum8x adds its square in block_sse's lanes and order.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE window_sums e2m1_window(const float* x, std::size_t n, const float* rcp, const float* scales,
                                             float zero_below, float clip_above) noexcept {
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu));
  window_sums w;
  {  // The float sums (and amax) in one pass, as e2m1_estimates.
    const __m256 zb = _mm256_set1_ps(zero_below), ca = _mm256_set1_ps(clip_above);
    const __m256 r = _mm256_set1_ps(rcp[2]), s = _mm256_set1_ps(scales[2]);
    __m256 z = _mm256_setzero_ps(), c = _mm256_setzero_ps(), e = _mm256_setzero_ps(), m = _mm256_setzero_ps();
    for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, no term
      const __m256 y = _mm256_and_ps(v, abs_mask);
      m = _mm256_max_ps(m, y);
      const __m256 y0 = _mm256_and_ps(y, _mm256_cmp_ps(y, zb, _CMP_LT_OQ));
      z = _mm256_fmadd_ps(y0, y0, z);
      const __m256 yc = _mm256_and_ps(_mm256_sub_ps(y, ca), _mm256_cmp_ps(y, ca, _CMP_GT_OQ));
      c = _mm256_fmadd_ps(yc, yc, c);
      const __m256 res = _mm256_sub_ps(y, _mm256_mul_ps(e2m1_round_magnitude<T>(_mm256_mul_ps(y, r)), s));
      e = _mm256_fmadd_ps(res, res, e);
    });
    w.zero = hsum_ps(z);
    w.clip = hsum_ps(c);
    w.est = hsum_ps(e);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    w.amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
  }
  // The exact pair in a second pass (with the float sums too, the accumulators would spill).
  const __m256 r0 = _mm256_set1_ps(rcp[0]), s0 = _mm256_set1_ps(scales[0]);
  const __m256 r1 = _mm256_set1_ps(rcp[1]), s1 = _mm256_set1_ps(scales[1]);
  sum8x a0, a1;
  for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, adds +0
    const __m256 y = _mm256_and_ps(v, abs_mask);
    a0.add_sq(_mm256_sub_ps(y, _mm256_mul_ps(e2m1_round_magnitude<T>(_mm256_mul_ps(y, r0)), s0)));
    a1.add_sq(_mm256_sub_ps(y, _mm256_mul_ps(e2m1_round_magnitude<T>(_mm256_mul_ps(y, r1)), s1)));
  });
  w.sse = {a0.total(), a1.total()};
  return w;
}
}  // namespace avx2_detail

template <class Element>
window_sums block_sse_window(arch::avx2, const float* x, std::size_t n, const float* scales, tie_mode ties,
                             float zero_below, float clip_above) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    const float rcp[] = {avx2_detail::exact_reciprocal(scales[0]), avx2_detail::exact_reciprocal(scales[1]),
                         avx2_detail::exact_reciprocal(scales[2])};
    if (rcp[0] != 0.0f && rcp[1] != 0.0f && rcp[2] != 0.0f) {
      switch (ties) {
        case tie_mode::toward_zero:
          return avx2_detail::e2m1_window<tie_mode::toward_zero>(x, n, rcp, scales, zero_below, clip_above);
        case tie_mode::away: return avx2_detail::e2m1_window<tie_mode::away>(x, n, rcp, scales, zero_below, clip_above);
        default: return avx2_detail::e2m1_window<tie_mode::even>(x, n, rcp, scales, zero_below, clip_above);
      }
    }
  }
  return block_sse_window<Element>(arch::scalar{}, x, n, scales, ties, zero_below, clip_above);
}

namespace avx2_detail {
// block_window_estimates in one pass, in the units of the scale: q = |x| / s (an exact
// product), q / 2 the quotient at 2 s (exact too), and q_j - round(q_j) the kernel's residual
// at 2^j s divided by 2^j s. At 4 s the quotient q / 4 is below 2 when q < 8, where the E2M1
// values are the multiples of 1/2 and even codes are even multiples: the residual in units
// of 2 s (its square a quarter in units of 4 s) is q / 2 - rint(q / 2) (ties to even; toward zero ceil(q / 2 - 1/2), exact there);
// ties away take the general rounding. A block with amax >= 8 s reports 4 s unknown (-1).
// The four sums reduce together, pairwise (n / 8 + 3 roundings).
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE window_estimates e2m1_window_estimates(const float* x, std::size_t n, float rcp, float zero_below,
                                                            float clip_above) noexcept {
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu)), r = _mm256_set1_ps(rcp);
  const __m256 zb = _mm256_set1_ps(zero_below), ca = _mm256_set1_ps(clip_above), half = _mm256_set1_ps(0.5f);
  __m256 e0 = _mm256_setzero_ps(), e1 = e0, e2 = e0, z = e0, c = e0, m = e0;
  for_each8(x, n, [&](__m256 v, std::size_t, bool) BLOCKQ_LAMBDA_INLINE {  // masked lanes: q = 0, no term
    const __m256 y = _mm256_and_ps(v, abs_mask);
    m = _mm256_max_ps(m, y);
    const __m256 q0 = _mm256_mul_ps(y, r), q1 = _mm256_mul_ps(q0, half);
    const __m256 y0 = _mm256_and_ps(q0, _mm256_cmp_ps(q0, zb, _CMP_LT_OQ));
    z = _mm256_fmadd_ps(y0, y0, z);
    const __m256 yc = _mm256_and_ps(_mm256_sub_ps(q0, ca), _mm256_cmp_ps(q0, ca, _CMP_GT_OQ));
    c = _mm256_fmadd_ps(yc, yc, c);
    const __m256 d0 = _mm256_sub_ps(q0, e2m1_round_magnitude<T>(q0));
    const __m256 d1 = _mm256_sub_ps(q1, e2m1_round_magnitude<T>(q1));
    __m256 d2;
    if constexpr (T == tie_mode::even)
      d2 = _mm256_sub_ps(q1, _mm256_round_ps(q1, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    else if constexpr (T == tie_mode::toward_zero)
      d2 = _mm256_sub_ps(q1, _mm256_round_ps(_mm256_sub_ps(q1, half), _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC));
    else {  // 2 (q / 4 - round(q / 4)), exact
      const __m256 q2 = _mm256_mul_ps(q1, half);
      d2 = _mm256_add_ps(_mm256_sub_ps(q2, e2m1_round_magnitude<T>(q2)), _mm256_sub_ps(q2, e2m1_round_magnitude<T>(q2)));
    }
    e0 = _mm256_fmadd_ps(d0, d0, e0);
    e1 = _mm256_fmadd_ps(d1, d1, e1);
    e2 = _mm256_fmadd_ps(d2, d2, e2);
  });
  // Lanes pairwise (hadd), then the halves: {e0, e1, e2, z} in one vector.
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(e0, e1), _mm256_hadd_ps(e2, z));
  const __m128 t = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  window_estimates w;
  w.amax = _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
  const __m128 t2 = _mm_movehl_ps(t, t);
  // (4 s's residuals are in units of 2 s: a quarter in units of 4 s, exactly.)
  w.est = {_mm_cvtss_f32(t), _mm_cvtss_f32(_mm_movehdup_ps(t)), w.amax * rcp < 8.0f ? _mm_cvtss_f32(t2) * 0.25f : -1.0f};
  w.zero = _mm_cvtss_f32(_mm_movehdup_ps(t2));
  w.clip = hsum_ps(c);
  return w;
}
}  // namespace avx2_detail

template <class Element>
window_estimates block_window_estimates(arch::avx2, const float* x, std::size_t n, float scale, tie_mode ties,
                                        float zero_below, float clip_above) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    // 1 / 2^k from the bits (no division): exponent field e becomes 254 - e, for e in 1..253.
    const std::uint32_t u = std::bit_cast<std::uint32_t>(scale);
    if ((u & 0x807FFFFFu) == 0 && u - 0x00800000u < 0x7F000000u - 0x00800000u) {
      const float rcp = std::bit_cast<float>(0x7F000000u - u);
      switch (ties) {
        case tie_mode::toward_zero:
          return avx2_detail::e2m1_window_estimates<tie_mode::toward_zero>(x, n, rcp, zero_below, clip_above);
        case tie_mode::away:
          return avx2_detail::e2m1_window_estimates<tie_mode::away>(x, n, rcp, zero_below, clip_above);
        default: return avx2_detail::e2m1_window_estimates<tie_mode::even>(x, n, rcp, zero_below, clip_above);
      }
    }
  }
  return block_window_estimates<Element>(arch::scalar{}, x, n, scale, ties, zero_below, clip_above);
}

// ------------------------------------------------------------- 16-bit float inputs

inline void to_float(arch::avx2, const float16* in, std::size_t n, float* out) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, avx2_detail::f16_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  if (i < n) to_float(arch::scalar{}, in + i, n - i, out + i);
}

inline void to_float(arch::avx2, const bfloat16* in, std::size_t n, float* out) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, avx2_detail::bf16_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
  if (i < n) to_float(arch::scalar{}, in + i, n - i, out + i);
}

// Non-finite lanes (absolute bits >= 0x7F800000) count as 0; the rest as in block_amax.
inline float finite_amax(arch::avx2, const float* x, std::size_t n) noexcept {
  using namespace avx2_detail;
  const __m256i abs = splat(0x7FFFFFFFu), inf = splat(0x7F800000u);
  auto finite_abs = [&](__m256i v) BLOCKQ_LAMBDA_INLINE {
    const __m256i a = _mm256_and_si256(v, abs);
    return _mm256_and_si256(a, _mm256_cmpgt_epi32(inf, a));  // a < Inf as signed: a has no sign bit
  };
  __m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_epu32(m0, finite_abs(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
    m1 = _mm256_max_epu32(m1, finite_abs(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8))));
  }
  for (; i + 8 <= n; i += 8)
    m0 = _mm256_max_epu32(m0, finite_abs(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  if (i < n)
    m1 = _mm256_max_epu32(m1, finite_abs(_mm256_castps_si256(_mm256_maskload_ps(x + i, first_lanes(n - i)))));
  return std::bit_cast<float>(hmax_epu32(_mm256_max_epu32(m0, m1)));
}

// ------------------------------------------------------------------- block loops

namespace avx2_detail {

// How the elements of one block become E2M1 keys, chosen once per block from its divisor d.
struct e2m1_divisor {
  enum kind_t { zero, shift, multiply, divide } kind;
  __m256 v;     // 1 / d (multiply) or d (divide)
  __m256i off;  // the 16-bit index offset
};

// shift: d = 2^k, a normal power of two with k >= -124. Then x / d is x with its exponent
// lowered by k, and its key (e2m1_key_bits) is key(x) - 4k: exactly for normal quotients,
// and for the others (below 2^-126, so below the first threshold 0.25) the shifted key
// stays below the offset and indexes code 0, as the quotient does; subnormal x (< 2^-126)
// give quotients below 2^-126 * 2^124 = 0.25 and keys <= 3 - 4k, code 0 again. Quotients
// that would overflow get keys past 18 from the offset: code 7, as Inf gets. So no
// multiplication at all (the usual MX case).
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE e2m1_divisor e2m1_plan(float d) noexcept {
  if (!(d > 0.0f) || !detail::is_finite(d)) return {e2m1_divisor::zero, _mm256_setzero_ps(), _mm256_setzero_si256()};
  const std::uint32_t u = std::bit_cast<std::uint32_t>(d);
  if ((u & 0x7FFFFFu) == 0 && u >= (3u << 23)) {
    const int k = static_cast<int>(u >> 23) - 127;
    return {e2m1_divisor::shift, _mm256_setzero_ps(), _mm256_set1_epi16(static_cast<short>(e2m1_offset<T> + 4 * k))};
  }
  const __m256i off = _mm256_set1_epi16(static_cast<short>(e2m1_offset<T>));
  const float r = exact_reciprocal(d);
  if (r != 0.0f) return {e2m1_divisor::multiply, _mm256_set1_ps(r), off};
  return {e2m1_divisor::divide, _mm256_set1_ps(d), off};
}

// The keys of |x| / d for the absolute bits a of 8 elements (d > 0, so |x / d| = |x| / d).
template <tie_mode T, e2m1_divisor::kind_t K>
BLOCKQ_ALWAYS_INLINE __m256i e2m1_keys(__m256i a, const e2m1_divisor& p) noexcept {
  if constexpr (K == e2m1_divisor::shift) return e2m1_key_bits<T>(a);
  if constexpr (K == e2m1_divisor::multiply)
    return e2m1_key_bits<T>(_mm256_castps_si256(_mm256_mul_ps(_mm256_castsi256_ps(a), p.v)));
  return e2m1_key_bits<T>(_mm256_castps_si256(_mm256_div_ps(_mm256_castsi256_ps(a), p.v)));
}

// Stores the 32 codes of e2m1_codes_from_keys in layout L at out (ggml_mxfp4: the 16 code
// bytes of a block, after its scale byte).
// Stream: non-temporal stores (16-byte aligned out), for outputs far larger than the caches.
template <code_layout L, bool Stream = false>
BLOCKQ_ALWAYS_INLINE void e2m1_store32(__m256i c, std::uint8_t* out) noexcept {
  if constexpr (L == code_layout::nibbles) {
    if constexpr (Stream)
      _mm_stream_si128(reinterpret_cast<__m128i*>(out), e2m1_pack_nibbles(c));
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), e2m1_pack_nibbles(c));
  } else if constexpr (L == code_layout::bytes) {
    if constexpr (Stream) {
      const __m256i o = e2m1_unscramble(c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(o));
      _mm_stream_si128(reinterpret_cast<__m128i*>(out + 16), _mm256_extracti128_si256(o, 1));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), e2m1_unscramble(c));
    }
  } else {  // qs[j] = c[j] | c[j + 16] << 4 (codes < 16, so the 16-bit shift stays in its byte);
             // ggml writes zero as code 0, never 8 (-0)
    __m256i o = e2m1_unscramble(c);
    o = _mm256_andnot_si256(_mm256_cmpeq_epi8(o, _mm256_set1_epi8(8)), o);
    const __m128i lo = _mm256_castsi256_si128(o), hi = _mm256_extracti128_si256(o, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
  }
}

BLOCKQ_ALWAYS_INLINE __m256i load8i(const float* p) noexcept {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// 32 elements at p, all at divisor plan p (one block, or part of one).
template <code_layout L, tie_mode T, e2m1_divisor::kind_t K, bool Stream = false>
BLOCKQ_ALWAYS_INLINE void e2m1_chunk32(const float* x, const e2m1_divisor& p, std::uint8_t* out) noexcept {
  const __m256i abs = splat(0x7FFFFFFFu);
  const __m256i b0 = load8i(x), b1 = load8i(x + 8), b2 = load8i(x + 16), b3 = load8i(x + 24);
  const __m256i k01 = _mm256_packs_epi32(e2m1_keys<T, K>(_mm256_and_si256(b0, abs), p),
                                         e2m1_keys<T, K>(_mm256_and_si256(b1, abs), p));
  const __m256i k23 = _mm256_packs_epi32(e2m1_keys<T, K>(_mm256_and_si256(b2, abs), p),
                                         e2m1_keys<T, K>(_mm256_and_si256(b3, abs), p));
  e2m1_store32<L, Stream>(e2m1_codes_from_keys(k01, k23, p.off, p.off, b0, b1, b2, b3, nullptr), out);
}

// Two blocks of 16 at x, with plans pa and pb of the same kind.
template <code_layout L, tie_mode T, e2m1_divisor::kind_t K, bool Stream = false>
BLOCKQ_ALWAYS_INLINE void e2m1_pair16(const float* x, const e2m1_divisor& pa, const e2m1_divisor& pb,
                                      std::uint8_t* out) noexcept {
  const __m256i abs = splat(0x7FFFFFFFu);
  const __m256i b0 = load8i(x), b1 = load8i(x + 8), b2 = load8i(x + 16), b3 = load8i(x + 24);
  const __m256i k01 = _mm256_packs_epi32(e2m1_keys<T, K>(_mm256_and_si256(b0, abs), pa),
                                         e2m1_keys<T, K>(_mm256_and_si256(b1, abs), pa));
  const __m256i k23 = _mm256_packs_epi32(e2m1_keys<T, K>(_mm256_and_si256(b2, abs), pb),
                                         e2m1_keys<T, K>(_mm256_and_si256(b3, abs), pb));
  e2m1_store32<L, Stream>(e2m1_codes_from_keys(k01, k23, pa.off, pb.off, b0, b1, b2, b3, nullptr), out);
}

template <code_layout L>
BLOCKQ_ALWAYS_INLINE std::uint8_t* e2m1_block_out(std::uint8_t* out, std::size_t b, std::size_t begin) noexcept {
  if constexpr (L == code_layout::nibbles) return out + begin / 2;
  if constexpr (L == code_layout::bytes) return out + begin;
  return out + b * 17 + 1;
}

// Maxima of the absolute bits of 8 blocks of 16 or 32 elements (m[j] for block j), as
// unsigned integers (block_amax's order: NaN bits above +Inf).
BLOCKQ_ALWAYS_INLINE __m256i block_maxima8(const float* x, std::size_t block) noexcept {
  const __m256i abs = splat(0x7FFFFFFFu);
  auto m8 = [&](const float* p) BLOCKQ_LAMBDA_INLINE { return _mm256_and_si256(load8i(p), abs); };
  __m256i v[8];
  for (int j = 0; j < 8; ++j) {
    const float* p = x + j * block;
    v[j] = block == 16 ? _mm256_max_epu32(m8(p), m8(p + 8))
                       : _mm256_max_epu32(_mm256_max_epu32(m8(p), m8(p + 8)), _mm256_max_epu32(m8(p + 16), m8(p + 24)));
  }
  // Transposing reduction: after three rounds lane j holds the maximum of v[j].
  auto fold = [](__m256i a, __m256i b, int imm) BLOCKQ_LAMBDA_INLINE {
    (void)imm;
    return _mm256_max_epu32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
  };
  const __m256i a01 = fold(v[0], v[1], 0), a23 = fold(v[2], v[3], 0), a45 = fold(v[4], v[5], 0), a67 = fold(v[6], v[7], 0);
  // a01 lanes: (0,1,0,1 | 0,1,0,1) partial maxima of v0 and v1 per 128-bit lane.
  const __m256i b0 = _mm256_max_epu32(_mm256_unpacklo_epi64(a01, a23), _mm256_unpackhi_epi64(a01, a23));  // 0 1 2 3 | 0 1 2 3
  const __m256i b1 = _mm256_max_epu32(_mm256_unpacklo_epi64(a45, a67), _mm256_unpackhi_epi64(a45, a67));  // 4 5 6 7 | 4 5 6 7
  return _mm256_max_epu32(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31));
}

// The low bytes of 8 32-bit lanes (values 0..255) to s[0..7].
BLOCKQ_ALWAYS_INLINE void store_bytes8(__m256i v, void* s) noexcept {
  const __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(s), _mm_packus_epi16(c16, c16));
}

// mx_scale_code of 8 normal or zero amaxes (false when one is subnormal: the caller then goes
// the scalar way): k = exponent(amax) - emax; amax / 2^k = 1.m * 2^emax exceeds the element's
// largest value 1.M * 2^emax exactly when the mantissa bits m > M (rule ceil: k + 1), falls
// short when m < M (rule floor: k - 1); k clamps to [-127, 127], code = k + 127, and amax = 0
// gives code 0.
template <class C>
BLOCKQ_ALWAYS_INLINE bool ue8m0_codes8(__m256i maxima, const C& code_of, __m256i& code) noexcept {
  const __m256i zero = _mm256_cmpeq_epi32(maxima, _mm256_setzero_si256());
  const __m256i subnormal = _mm256_andnot_si256(zero, _mm256_cmpgt_epi32(splat(0x00800000u), maxima));
  if (!_mm256_testz_si256(subnormal, subnormal)) return false;
  const __m256i mant = _mm256_and_si256(maxima, splat(0x7FFFFFu));
  const __m256i top = splat(std::bit_cast<std::uint32_t>(C::max_value) & 0x7FFFFFu);
  __m256i k = _mm256_sub_epi32(_mm256_srli_epi32(maxima, 23), _mm256_set1_epi32(127 + C::emax));
  // ceil: one step up, except for amax >= 2^127 (mx_scale_code: the scale would overflow).
  if (code_of.rule == scale_rule::ceil)
    k = _mm256_sub_epi32(k, _mm256_and_si256(_mm256_cmpgt_epi32(mant, top), _mm256_cmpgt_epi32(splat(0x7F000000u), maxima)));
  if (code_of.rule == scale_rule::floor) k = _mm256_add_epi32(k, _mm256_cmpgt_epi32(top, mant));
  k = _mm256_min_epi32(_mm256_max_epi32(k, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
  code = _mm256_andnot_si256(zero, _mm256_add_epi32(k, _mm256_set1_epi32(127)));
  return true;
}

// The scales (stored to s[0..7]) and divisors of 8 blocks from their amaxes: vectorised for
// the scale functions of arch/scalar.hpp that allow it, one block at a time otherwise.
template <class Scale, class CodeOf, class DivisorOf>
BLOCKQ_ALWAYS_INLINE __m256 block_scales8(__m256i maxima, CodeOf& code_of, DivisorOf& divisor_of, Scale* s) noexcept {
  using C = std::decay_t<CodeOf>;
  using D = std::decay_t<DivisorOf>;
  const __m256 amax = _mm256_castsi256_ps(maxima);  // all finite here
  if constexpr (std::is_same_v<C, quotient_block_scale> && std::is_same_v<D, identity_divisor>) {
    // amax / q per lane: the scalar division, eight at a time; a lane where v * q overflows
    // (amax near FLT_MAX, which quotient_block_scale steps down) takes the generic path.
    const __m256 q = _mm256_set1_ps(code_of.q);
    const __m256 v = _mm256_div_ps(amax, q);
    if (!any_inf(_mm256_mul_ps(v, q))) {
      _mm256_storeu_ps(s, v);
      return v;
    }
  } else if constexpr (std::is_same_v<C, e4m3_block_scale> && std::is_same_v<D, e4m3_block_divisor>) {
    // y = amax / fl(6 s_t) (the scalar expression), then e4m3::encode(y) for y >= 0:
    // - normal y (>= 2^-6): round the float's bits to 3 mantissa bits, ties to even, by
    //   adding 0x7FFFF plus bit 20 (a carry moves into the exponent by itself); the code is
    //   the rounded (exponent, mantissa) minus the bias difference (127 - 7) << 3;
    // - below 2^-6 the code is y / 2^-9 rounded to nearest even: y * 512 is exact, and
    //   vcvtps2dq rounds that way;
    // - y >= 448 rounds to code 0x7E or above (Inf included), and min() saturates it there.
    const __m256 y = _mm256_div_ps(amax, _mm256_set1_ps(e2m1::max_value * code_of.s_t));
    const __m256i b = _mm256_castps_si256(y);
    const __m256i bit20 = _mm256_and_si256(_mm256_srli_epi32(b, 20), splat(1));
    const __m256i normal = _mm256_sub_epi32(_mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, splat(0x7FFFFu)), bit20), 20),
                                            splat(120u << 3));
    const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(y, _mm256_set1_ps(512.0f)));
    const __m256i is_normal = _mm256_cmpgt_epi32(b, splat(0x3C7FFFFFu));  // y >= 2^-6 (y has no sign)
    const __m256i code = _mm256_min_epi32(_mm256_blendv_epi8(sub, normal, is_normal), splat(0x7E));
    // e4m3::decode of codes 0..126 times s_t: normal codes are the float with those bits
    // moved back, subnormal ones code * 2^-9.
    const __m256 dn = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(code, splat(120u << 3)), 20));
    const __m256 ds = _mm256_mul_ps(_mm256_cvtepi32_ps(code), _mm256_set1_ps(0x1p-9f));
    const __m256 dec = _mm256_blendv_ps(ds, dn, _mm256_castsi256_ps(_mm256_cmpgt_epi32(code, splat(7))));
    const __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(s), _mm_packus_epi16(c16, c16));
    return _mm256_mul_ps(dec, _mm256_set1_ps(code_of.s_t));
  } else if constexpr (requires { C::ue8m0_amax_rule; }) {
    // The divisor 2^(code - 127) has the bits code << 23 (2^-127, code 0, is the subnormal
    // 0x00400000).
    __m256i code;
    if (ue8m0_codes8(maxima, code_of, code)) {
      store_bytes8(code, s);
      const __m256i d = _mm256_blendv_epi8(_mm256_slli_epi32(code, 23), splat(0x00400000u),
                                           _mm256_cmpeq_epi32(code, _mm256_setzero_si256()));
      return _mm256_castsi256_ps(d);
    }
  }
  if constexpr (true) {
    alignas(32) std::uint32_t m[8];
    alignas(32) float d[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(m), maxima);
    for (int j = 0; j < 8; ++j) {
      s[j] = code_of(std::bit_cast<float>(m[j]));
      d[j] = divisor_of(s[j]);
    }
    return _mm256_load_ps(d);
  }
}

// MX, OCP nibbles, blocks of 32: a group of 8 blocks whose UE8M0 scales are all normal
// powers of two 2^k with k >= -124 (codes >= 3; e2m1_plan's shift case) takes this path:
// the 8 codes and key offsets e2m1_offset + 4k as vectors, then two blocks at a time with
// their nibbles packed together. False (nothing written): the generic group path.
template <tie_mode T, bool Stream, class C>
BLOCKQ_ALWAYS_INLINE bool mx_group32(const float* x, __m256i maxima, const C& code_of, std::uint8_t* out,
                                     std::uint8_t* scales) noexcept {
  __m256i code;
  if (!ue8m0_codes8(maxima, code_of, code)) return false;
  if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(splat(3), code))) != 0) return false;
  store_bytes8(code, scales);
  const __m256i off32 = _mm256_add_epi32(_mm256_slli_epi32(code, 2), _mm256_set1_epi32(e2m1_offset<T> - 4 * 127));
  alignas(16) std::int16_t off[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(off),
                  _mm_packs_epi32(_mm256_castsi256_si128(off32), _mm256_extracti128_si256(off32, 1)));
  const __m256i abs = splat(0x7FFFFFFFu);
  auto codes = [&](const float* p, std::int16_t o) BLOCKQ_LAMBDA_INLINE {
    const __m256i b0 = load8i(p), b1 = load8i(p + 8), b2 = load8i(p + 16), b3 = load8i(p + 24);
    const __m256i k01 = _mm256_packs_epi32(e2m1_key_bits<T>(_mm256_and_si256(b0, abs)), e2m1_key_bits<T>(_mm256_and_si256(b1, abs)));
    const __m256i k23 = _mm256_packs_epi32(e2m1_key_bits<T>(_mm256_and_si256(b2, abs)), e2m1_key_bits<T>(_mm256_and_si256(b3, abs)));
    const __m256i ov = _mm256_set1_epi16(o);
    return e2m1_codes_from_keys(k01, k23, ov, ov, b0, b1, b2, b3, nullptr);
  };
  for (int j = 0; j < 8; j += 2) {
    const __m256i v = e2m1_pack_nibbles2(codes(x + 32 * j, off[j]), codes(x + 32 * (j + 1), off[j + 1]));
    std::uint8_t* o = out + 16 * j;
    if constexpr (Stream) {
      _mm_stream_si128(reinterpret_cast<__m128i*>(o), _mm256_castsi256_si128(v));
      _mm_stream_si128(reinterpret_cast<__m128i*>(o + 16), _mm256_extracti128_si256(v, 1));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v);
    }
  }
  return true;
}

// Encodes `len` (32 * k) elements of one block at plan p.
template <code_layout L, tie_mode T>
BLOCKQ_ALWAYS_INLINE void e2m1_block(const float* x, std::size_t len, const e2m1_divisor& p, std::uint8_t* o) noexcept {
  constexpr std::size_t step = L == code_layout::bytes ? 32 : 16;  // output bytes per 32 elements
  switch (p.kind) {
    case e2m1_divisor::shift:
      for (std::size_t j = 0; j < len; j += 32) e2m1_chunk32<L, T, e2m1_divisor::shift>(x + j, p, o + j / 32 * step);
      break;
    case e2m1_divisor::multiply:
      for (std::size_t j = 0; j < len; j += 32) e2m1_chunk32<L, T, e2m1_divisor::multiply>(x + j, p, o + j / 32 * step);
      break;
    default:
      for (std::size_t j = 0; j < len; j += 32) e2m1_chunk32<L, T, e2m1_divisor::divide>(x + j, p, o + j / 32 * step);
      break;
  }
}

// The fused MXFP4 / NVFP4 / FP4 loop over groups of 8 blocks of 16 or 32 elements: the 8
// amaxes (block_maxima8), their scales and divisors (block_scales8), then each block's codes
// by e2m1_plan (blocks of 16 two at a time through one 32-element core). Groups holding a
// NaN or Inf, pairs whose plans differ in kind, zero divisors, other block sizes and the
// last blocks run the per-block loop with the AVX2 kernels (rest).
// No software prefetch: the loop reads its input strictly in order, which the hardware
// prefetchers follow on their own; _mm_prefetch of the group 3 to 24 groups ahead (16
// lines a group) cost 25-45 % of the 256 MiB throughput on Zen 4 (README, Benchmarks),
// most likely because the demand loads then hit L1 and the L2 stream
// prefetcher loses the misses it trains on.
template <code_layout L, tie_mode T, bool Stream, class Scale, class CodeOf, class DivisorOf, class Rest>
void e2m1_amax_blocks(const float* x, std::size_t n, std::size_t block, CodeOf& code_of, DivisorOf& divisor_of,
                      std::uint8_t* out, Scale* scales, Rest&& rest) noexcept {
  using kind = e2m1_divisor;
  std::size_t b = 0, i = 0;
  if (block == 16 || block == 32) {
    const std::size_t group = 8 * block;
    for (; i + group <= n; i += group, b += 8) {
      const __m256i maxima = block_maxima8(x + i, block);
      if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(maxima, splat(0x7F7FFFFFu)))) != 0) {
        rest(b, i, group);  // a NaN or Inf in the group
        continue;
      }
      if constexpr (requires { std::decay_t<CodeOf>::ue8m0_amax_rule; } && L == code_layout::nibbles) {
        if (block == 32 && mx_group32<T, Stream>(x + i, maxima, code_of, out + i / 2, scales + b)) continue;
      }
      alignas(32) Scale s[8];
      alignas(32) float d[8];
      _mm256_store_ps(d, block_scales8(maxima, code_of, divisor_of, s));
      for (int j = 0; j < 8; ++j) {
        if constexpr (L == code_layout::ggml_mxfp4)
          out[(b + j) * 17] = static_cast<std::uint8_t>(s[j]);
        else
          scales[b + j] = s[j];
      }
      e2m1_divisor p[8];
      bool uniform = true;
      for (int j = 0; j < 8; ++j) {
        p[j] = e2m1_plan<T>(d[j]);
        uniform &= p[j].kind == p[0].kind;
      }
      // The usual case, all 8 blocks of one kind (and not zero): a loop without calls, so
      // that the table constants stay in registers.
      if (uniform && p[0].kind != kind::zero) {
        auto run = [&](auto k) BLOCKQ_LAMBDA_INLINE {
          constexpr kind::kind_t K = decltype(k)::value;
          if (block == 32) {
            for (std::size_t j = 0; j < 8; ++j)
              e2m1_chunk32<L, T, K, Stream>(x + i + 32 * j, p[j], e2m1_block_out<L>(out, b + j, i + 32 * j));
          } else {
            for (std::size_t j = 0; j < 8; j += 2)
              e2m1_pair16<L, T, K, Stream>(x + i + 16 * j, p[j], p[j + 1], e2m1_block_out<L>(out, b + j, i + 16 * j));
          }
        };
        if (p[0].kind == kind::shift)
          run(std::integral_constant<kind::kind_t, kind::shift>{});
        else if (p[0].kind == kind::multiply)
          run(std::integral_constant<kind::kind_t, kind::multiply>{});
        else
          run(std::integral_constant<kind::kind_t, kind::divide>{});
        continue;
      }
      if (block == 32) {
        for (std::size_t j = 0; j < 8; ++j) {
          if (p[j].kind == kind::zero)
            rest(b + j, i + 32 * j, 32);
          else
            e2m1_block<L, T>(x + i + 32 * j, 32, p[j], e2m1_block_out<L>(out, b + j, i + 32 * j));
        }
      } else {
        for (std::size_t j = 0; j < 8; j += 2) {
          const e2m1_divisor& pa = p[j];
          const e2m1_divisor& pb = p[j + 1];
          const float* xp = x + i + 16 * j;
          std::uint8_t* o = e2m1_block_out<L>(out, b + j, i + 16 * j);
          if (pa.kind != pb.kind || pa.kind == kind::zero)
            rest(b + j, i + 16 * j, 32);
          else if (pa.kind == kind::shift)
            e2m1_pair16<L, T, kind::shift>(xp, pa, pb, o);
          else if (pa.kind == kind::multiply)
            e2m1_pair16<L, T, kind::multiply>(xp, pa, pb, o);
          else
            e2m1_pair16<L, T, kind::divide>(xp, pa, pb, o);
        }
      }
    }
  } else if (block % 32 == 0) {
    for (; i + block <= n; i += block, ++b) {
      const __m256i abs = splat(0x7FFFFFFFu);
      __m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
      for (std::size_t j = i; j < i + block; j += 16) {
        m0 = _mm256_max_epu32(m0, _mm256_and_si256(load8i(x + j), abs));
        m1 = _mm256_max_epu32(m1, _mm256_and_si256(load8i(x + j + 8), abs));
      }
      const std::uint32_t m = hmax_epu32(_mm256_max_epu32(m0, m1));
      if (m >= 0x7F800000u) {
        rest(b, i, block);
        continue;
      }
      const Scale s = code_of(std::bit_cast<float>(m));
      scales[b] = s;
      const e2m1_divisor p = e2m1_plan<T>(divisor_of(s));
      if (p.kind == kind::zero)
        rest(b, i, block);
      else
        e2m1_block<L, T>(x + i, block, p, e2m1_block_out<L>(out, b, i));
    }
  }
  if constexpr (Stream) _mm_sfence();
  if (i < n) rest(b, i, n - i);
}

}  // namespace avx2_detail

template <class Element, code_layout L, class Scale, class CodeOf, class DivisorOf>
void amax_blocks(arch::avx2, const float* x, std::size_t n, std::size_t block, tie_mode ties, CodeOf&& code_of,
                 DivisorOf&& divisor_of, std::uint8_t* out, Scale* scales) noexcept {
  // The per-block loop over the AVX2 kernels, for whatever the fused loop leaves: the
  // elements [begin, begin + len) starting at block b.
  auto rest = [&](std::size_t b, std::size_t begin, std::size_t len) {
    std::uint8_t* o = L == code_layout::ggml_mxfp4 ? out + b * 17
                      : L == code_layout::nibbles  ? out + begin / 2
                                                   : out + begin;
    loops::amax_blocks<Element, L>(
        x + begin, len, block, ties, code_of, divisor_of, o, L == code_layout::ggml_mxfp4 ? scales : scales + b,
        [](const float* p, std::size_t m) { return block_amax(arch::avx2{}, p, m); },
        [](const float* p, std::size_t m, float d, tie_mode t, std::uint8_t* c) {
          encode<Element>(arch::avx2{}, p, m, d, t, c);
        },
        [](const float* p, std::size_t m, float d, tie_mode t, std::uint8_t* c) {
          if constexpr (Element::bits <= 4) encode_packed<Element>(arch::avx2{}, p, m, d, t, c);
        });
  };
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (block == 16 || block % 32 == 0) {
      // Inputs of 32 MiB and more write their codes with non-temporal stores (no read for
      // ownership of output lines that will not be read again soon); they need 16-byte
      // alignment, which byte buffers from the usual allocators have.
      const bool stream = L != code_layout::ggml_mxfp4 && n * sizeof(float) >= (std::size_t{32} << 20) &&
                          reinterpret_cast<std::uintptr_t>(out) % 16 == 0;
      avx2_detail::with_ties(ties, [&](auto t) {
        if (stream)
          avx2_detail::e2m1_amax_blocks<L, decltype(t)::value, true>(x, n, block, code_of, divisor_of, out, scales, rest);
        else
          avx2_detail::e2m1_amax_blocks<L, decltype(t)::value, false>(x, n, block, code_of, divisor_of, out, scales, rest);
      });
      return;
    }
  }
  rest(0, 0, n);
}

namespace avx2_detail {
// Stores 8 floats, non-temporally (16-byte aligned halves) when Stream.
template <bool Stream>
BLOCKQ_ALWAYS_INLINE void store8(float* p, __m256 v) noexcept {
  if constexpr (Stream) {
    _mm_stream_ps(p, _mm256_castps256_ps128(v));
    _mm_stream_ps(p + 4, _mm256_extractf128_ps(v, 1));
  } else {
    _mm256_storeu_ps(p, v);
  }
}

// Fused E2M1 dequantization of whole blocks of 32 * m (or pairs of 16) elements.
template <bool Packed, bool Stream, class Scale, class DivisorOf>
std::size_t e2m1_decode_blocks(const std::uint8_t* codes, const Scale* scales, std::size_t n, std::size_t block,
                               DivisorOf& divisor_of, float* out) noexcept {
  std::size_t i = 0;
  auto decode32 = [&](const std::uint8_t* c, __m256 s0, __m256 s1, float* o) BLOCKQ_LAMBDA_INLINE {
    __m128i c0, c1;
    if constexpr (Packed) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
      const __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
      c0 = _mm_unpacklo_epi8(lo, hi);
      c1 = _mm_unpackhi_epi8(lo, hi);
    } else {
      c0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
      c1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16));
    }
    store8<Stream>(o, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(c0)), s0));
    store8<Stream>(o + 8, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(_mm_srli_si128(c0, 8))), s0));
    store8<Stream>(o + 16, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(c1)), s1));
    store8<Stream>(o + 24, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(_mm_srli_si128(c1, 8))), s1));
  };
  constexpr std::size_t per = Packed ? 2 : 1;  // elements a code byte
  if (block == 16) {
    for (std::size_t b = 0; i + 32 <= n; i += 32, b += 2)
      decode32(codes + i / per, _mm256_set1_ps(divisor_of(scales[b])), _mm256_set1_ps(divisor_of(scales[b + 1])), out + i);
  } else {
    for (std::size_t b = 0; i + block <= n; i += block, ++b) {
      const __m256 s = _mm256_set1_ps(divisor_of(scales[b]));
      for (std::size_t j = i; j < i + block; j += 32) decode32(codes + j / per, s, s, out + j);
    }
  }
  if constexpr (Stream) _mm_sfence();
  return i;
}
}  // namespace avx2_detail

template <class Element, bool Packed, class Scale, class DivisorOf>
void decode_blocks(arch::avx2, const std::uint8_t* codes, const Scale* scales, std::size_t n, std::size_t block,
                   DivisorOf&& divisor_of, float* out) noexcept {
  std::size_t done = 0;
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (block == 16 || block % 32 == 0) {
      // Outputs well past the last-level cache are written with non-temporal stores (no
      // read for ownership); they need 16-byte alignment, which float buffers from the
      // usual allocators have.
      const bool stream = n * sizeof(float) >= (std::size_t{32} << 20) && reinterpret_cast<std::uintptr_t>(out) % 16 == 0;
      done = stream ? avx2_detail::e2m1_decode_blocks<Packed, true>(codes, scales, n, block, divisor_of, out)
                    : avx2_detail::e2m1_decode_blocks<Packed, false>(codes, scales, n, block, divisor_of, out);
    }
  }
  if (done < n)
    loops::decode_blocks<Element, Packed>(
        codes + (Packed ? done / 2 : done), scales + done / block, n - done, block, divisor_of, out + done,
        [](const std::uint8_t* c, std::size_t m, float d, float* o) { decode<Element>(arch::avx2{}, c, m, d, o); },
        [](const std::uint8_t* c, std::size_t m, float d, float* o) {
          if constexpr (Element::bits <= 4) decode_packed<Element>(arch::avx2{}, c, m, d, o);
        });
}

namespace avx2_detail {
// Integer codes of 16 or 32 elements at divider div, min 0 (x - 0 is x, so the subtraction
// of the scalar kernel is left out), as encode_int computes them. Signed codes fit a signed
// byte, so they are narrowed with signed saturation (which leaves them as they are) and
// masked to b bits once per byte; unsigned ones (0..255) narrow unsigned and need no mask.
// Clamp false: the caller knows |x / d| cannot round past qmax (see int_amax_blocks).
// Stream: non-temporal stores (16-byte aligned out).
template <bool Clamp, bool Stream, class Div>
BLOCKQ_ALWAYS_INLINE void int_codes(const float* x, std::size_t len, Div div, __m256 qmin, __m256 qmax, int_format fmt,
                                    std::uint8_t* out) noexcept {
  auto q8 = [&](const float* p) BLOCKQ_LAMBDA_INLINE {
    const __m256 y = div(_mm256_loadu_ps(p));
    return _mm256_cvtps_epi32(Clamp ? _mm256_min_ps(qmax, _mm256_max_ps(qmin, y)) : y);
  };
  // packs leave dword j holding elements 4 * {0, 2, 4, 6, 1, 3, 5, 7}[j] onwards.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i mask = _mm256_set1_epi8(static_cast<char>(fmt.mask()));
  auto narrow = [&](__m256i a, __m256i b) BLOCKQ_LAMBDA_INLINE {
    return fmt.is_signed ? _mm256_and_si256(_mm256_packs_epi16(a, b), mask) : _mm256_packus_epi16(a, b);
  };
  auto narrow32 = [&](__m256i a, __m256i b) BLOCKQ_LAMBDA_INLINE {
    return fmt.is_signed ? _mm256_packs_epi32(a, b) : _mm256_packus_epi32(a, b);
  };
  const __m256i a = narrow32(q8(x), q8(x + 8));
  if (len == 16) {
    const __m256i p = _mm256_permutevar8x32_epi32(narrow(a, a), order);
    if constexpr (Stream)
      _mm_stream_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(p));
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(p));
    return;
  }
  const __m256i b = narrow32(q8(x + 16), q8(x + 24));
  const __m256i p = _mm256_permutevar8x32_epi32(narrow(a, b), order);
  if constexpr (Stream) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(p));
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 16), _mm256_extracti128_si256(p, 1));
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), p);
  }
}
}  // namespace avx2_detail

namespace avx2_detail {
// The per-block way of the integer block loops: loops::int_amax_blocks over the AVX2
// kernels, with the block maximum amax(p, m) (block_amax, or block_signed_max).
template <class ScaleOf, class Amax>
BLOCKQ_ALWAYS_INLINE auto int_blocks_rest(const float* x, std::size_t block, int_format fmt, ScaleOf& scale_of,
                                          std::uint8_t* codes, float* scales, Amax amax) noexcept {
  return [=, &scale_of](std::size_t b, std::size_t begin, std::size_t len) {
    loops::int_amax_blocks(x + begin, len, block, fmt, scale_of, codes + begin, scales + b, amax,
                           [](const float* p, std::size_t m, float s, float mn, int_format f, std::uint8_t* o) {
                             encode_int(arch::avx2{}, p, m, s, mn, f, o);
                           });
  };
}

// The frame of the fused integer block loops: group(i, b, stream) does the 8 blocks of 16 or
// 32 from element i (block b) on, rest(b, begin, len) the other block sizes and the tail.
// Inputs of 32 MiB and more write their codes with non-temporal stores (stream is
// std::true_type; 16-byte aligned codes, and every block of a group starts 16 bytes after
// the last), as amax_blocks does.
template <class Group, class Rest>
BLOCKQ_ALWAYS_INLINE void int_block_groups(std::size_t n, std::size_t block, const std::uint8_t* codes, Group&& group,
                                           Rest&& rest) {
  std::size_t b = 0, i = 0;
  if (block == 16 || block == 32) {
    const std::size_t size = 8 * block;
    auto groups = [&](auto stream) BLOCKQ_LAMBDA_INLINE {
      for (; i + size <= n; i += size, b += 8) group(i, b, stream);
      if constexpr (decltype(stream)::value) _mm_sfence();
    };
    if (n * sizeof(float) >= (std::size_t{32} << 20) && reinterpret_cast<std::uintptr_t>(codes) % 16 == 0)
      groups(std::true_type{});
    else
      groups(std::false_type{});
  }
  if (i < n) rest(b, i, n - i);
}
}  // namespace avx2_detail

// Fused over groups of 8 blocks of 16 or 32 (block_maxima8, the 8 scales at once for
// quotient_block_scale), the rest per block with the AVX2 kernels.
template <class ScaleOf>
void int_amax_blocks(arch::avx2, const float* x, std::size_t n, std::size_t block, int_format fmt,
                     ScaleOf&& scale_of, std::uint8_t* codes, float* scales) noexcept {
  using namespace avx2_detail;
  const auto rest = int_blocks_rest(x, block, fmt, scale_of, codes, scales,
                                    [](const float* p, std::size_t m) { return block_amax(arch::avx2{}, p, m); });
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  // Symmetric absmax (scale fl(amax / qmax)): with a normal scale d, |x| <= amax gives
  // |x / d| <= qmax (1 + 2^-23) < qmax + 1/2, so rounding stays within +-qmax and the
  // clamp of encode_int never acts; a subnormal d has no such bound and clamps.
  bool quotient = false;
  if constexpr (std::is_same_v<std::decay_t<ScaleOf>, quotient_block_scale>)
    quotient = fmt.is_signed && scale_of.q == static_cast<float>(fmt.qmax());
  int_block_groups(n, block, codes, [&](std::size_t i, std::size_t b, auto stream) BLOCKQ_LAMBDA_INLINE {
    constexpr bool Stream = decltype(stream)::value;
    const __m256i maxima = block_maxima8(x + i, block);
    if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(maxima, splat(0x7F7FFFFFu)))) != 0) {
      rest(b, i, 8 * block);
      return;
    }
    alignas(32) float s[8];
    identity_divisor same;
    block_scales8(maxima, scale_of, same, s);
    std::memcpy(scales + b, s, sizeof s);
    for (std::size_t j = 0; j < 8; ++j) {
      std::uint8_t* o = codes + i + j * block;
      if (!(s[j] != 0.0f) || !detail::is_finite(s[j])) {
        rest(b + j, i + j * block, block);  // zero (or odd) scales: the scalar sequence
        continue;
      }
      const float* xb = x + i + j * block;
      with_divider(s[j], [&](auto div) BLOCKQ_LAMBDA_INLINE {
        if (quotient && s[j] >= std::numeric_limits<float>::min())
          int_codes<false, Stream>(xb, block, div, qmin, qmax, fmt, o);
        else
          int_codes<true, Stream>(xb, block, div, qmin, qmax, fmt, o);
      });
    }
  }, rest);
}

// ------------------------------------------------------------ lsq search step

// One step of the lsq descents (search/refit.hpp) at (scale, min) in one pass: the codes
// (encode_int), the kernel error (block_sse_int, or block_wsse_int when w is given) and the
// refit sums sq, sqq, sxq of those codes (int_refit_sums; sums.sw and sums.sx, which do not
// depend on the codes, are left as they are), each with the arithmetic and lane order of its
// own kernel. Blocks whose length is not a multiple of 8, a zero scale, and any overflow of
// x - min or of a level fall back to the three kernels.
namespace avx2_detail {
// Error false: the codes and sums only (error left as it is), for the lsq starts, which are not scored.
template <bool Weighted, bool Error = true>
BLOCKQ_ALWAYS_INLINE bool int_lsq_step8(const float* x, const float* w, std::size_t n, float scale, float min,
                                        int_format fmt, std::uint8_t* codes, refit_sums& sums, double& error) noexcept {
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  [[maybe_unused]] const __m256 s = _mm256_set1_ps(scale), mn = _mm256_set1_ps(min);
  const __m256i mask = _mm256_set1_epi32(fmt.mask());
  sum8x acc, sq, sqq, sxq;
  // Unweighted, every partial sum of q and of q^2 is an integer below 2^53, so the double sums
  // are exact in any order: lane sums in int32 (n <= max_int_sums_n keeps them below 2^31).
  __m256i iq = _mm256_setzero_si256(), iqq = _mm256_setzero_si256();
  // Lanes where x - min or a level is +-Inf, gathered over the block and tested once.
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 overflow = _mm256_setzero_ps();
  auto note_inf = [&](__m256 v) BLOCKQ_LAMBDA_INLINE {
    overflow = _mm256_or_ps(overflow, _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), inf, _CMP_EQ_OQ));
  };
  auto add = [](sum8x& a, __m256d lo, __m256d hi) BLOCKQ_LAMBDA_INLINE {
    a.lo = _mm256_add_pd(a.lo, lo);
    a.hi = _mm256_add_pd(a.hi, hi);
  };
  with_divider(scale, [&](auto div) BLOCKQ_LAMBDA_INLINE {
    for (std::size_t i = 0; i < n; i += 8) {
      const __m256 v = _mm256_loadu_ps(x + i);
      const __m256 d = _mm256_sub_ps(v, mn);
      const __m256i qi = int_round<true>(div(d), qmin, qmax);  // NaN: q 0, whose code is 0 & mask as encode_int's
      const __m256 q = _mm256_cvtepi32_ps(qi);
      if constexpr (Error) {
        const __m256 level = _mm256_add_ps(_mm256_mul_ps(q, s), mn);
        note_inf(d);
        note_inf(level);
        const __m256 r = _mm256_sub_ps(v, level);
        if constexpr (Weighted)
          acc.add_wsq(_mm256_loadu_ps(w + i), r);
        else
          acc.add_sq(r);
      } else {
        note_inf(d);
      }
      const __m256i c = _mm256_and_si256(qi, mask);
      const __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(codes + i), _mm_packus_epi16(c16, c16));
      const __m256d q0 = _mm256_cvtps_pd(_mm256_castps256_ps128(q)), q1 = _mm256_cvtps_pd(_mm256_extractf128_ps(q, 1));
      const __m256d x0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), x1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      if constexpr (Weighted) {
        const __m256 wf = _mm256_loadu_ps(w + i);
        const __m256d w0 = _mm256_cvtps_pd(_mm256_castps256_ps128(wf)), w1 = _mm256_cvtps_pd(_mm256_extractf128_ps(wf, 1));
        const __m256d wq0 = _mm256_mul_pd(w0, q0), wq1 = _mm256_mul_pd(w1, q1);
        const __m256d wx0 = _mm256_mul_pd(w0, x0), wx1 = _mm256_mul_pd(w1, x1);
        add(sq, wq0, wq1);
        add(sqq, _mm256_mul_pd(wq0, q0), _mm256_mul_pd(wq1, q1));
        add(sxq, _mm256_mul_pd(wx0, q0), _mm256_mul_pd(wx1, q1));
      } else {  // w = 1: the products by w are exact and left out; sq, sqq in integers (below)
        iq = _mm256_add_epi32(iq, qi);
        iqq = _mm256_add_epi32(iqq, _mm256_mullo_epi32(qi, qi));
        add(sxq, _mm256_mul_pd(x0, q0), _mm256_mul_pd(x1, q1));
      }
    }
  });
  if (!_mm256_testz_ps(overflow, overflow)) [[unlikely]] return false;
  if constexpr (Weighted) {
    sums.sq = sq.total();
    sums.sqq = sqq.total();
  } else {
    // The eight int32 lanes summed in int64 (exact; their total may pass 2^31).
    auto total64 = [](__m256i v) BLOCKQ_LAMBDA_INLINE {
      const __m256i t = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
                                         _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
      const __m128i u = _mm_add_epi64(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
      return _mm_cvtsi128_si64(_mm_add_epi64(u, _mm_unpackhi_epi64(u, u)));
    };
    sums.sq = static_cast<double>(total64(iq));
    sums.sqq = static_cast<double>(total64(iqq));
  }
  sums.sxq = sxq.total();
  if constexpr (Error) error = acc.total();
  return true;
}
}  // namespace avx2_detail

inline double int_lsq_step(arch::avx2, const float* x, const float* w, std::size_t n, float scale, float min,
                           int_format fmt, std::uint8_t* codes, refit_sums& sums) noexcept {
  double error = 0.0;
  constexpr std::size_t max_int_sums_n = std::size_t{1} << 16;  // a lane: 2^13 elements * 255^2 < 2^31
  if (scale != 0.0f && n % 8 == 0 && (w || n <= max_int_sums_n) &&
      (w ? avx2_detail::int_lsq_step8<true>(x, w, n, scale, min, fmt, codes, sums, error)
         : avx2_detail::int_lsq_step8<false>(x, w, n, scale, min, fmt, codes, sums, error)))
    return error;
  return int_lsq_step_of_kernels(arch::avx2{}, x, w, n, scale, min, fmt, codes, sums);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX2
