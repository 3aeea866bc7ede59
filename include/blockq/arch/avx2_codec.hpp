// SPDX-License-Identifier: Apache-2.0
// AVX2 (+FMA, F16C) codec kernels: E2M1 and integer encode/decode, block maxima, block_sse,
// 16-bit inputs (the search kernels are in arch/avx2_search.hpp, the fused loops over whole
// tensors in arch/avx2_loops.hpp; arch/avx2.hpp includes all three). Anything not overloaded
// here falls back to arch/scalar.hpp.
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

using blockq::detail::exact_reciprocal;  // (detail/bits.hpp)

// The float vector of a tier, for the code written once for every vector width (the
// dividers below; avx512_detail::f32x16 is the 16-lane one): its type and the operations
// that code uses.
struct f32x8 {
  using type = __m256;
  BLOCKQ_ALWAYS_INLINE static type set1(float v) noexcept { return _mm256_set1_ps(v); }
  BLOCKQ_ALWAYS_INLINE static type mul(type a, type b) noexcept { return _mm256_mul_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type div(type a, type b) noexcept { return _mm256_div_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type sub(type a, type b) noexcept { return _mm256_sub_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type min(type a, type b) noexcept { return _mm256_min_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type max(type a, type b) noexcept { return _mm256_max_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type bit_and(type a, type b) noexcept { return _mm256_and_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type fmadd(type a, type b, type c) noexcept { return _mm256_fmadd_ps(a, b, c); }
  BLOCKQ_ALWAYS_INLINE static type fnmadd(type a, type b, type c) noexcept { return _mm256_fnmadd_ps(a, b, c); }
};

// y = x / s, as a multiplication when exact_reciprocal allows it, over the lanes of V.
template <class V = f32x8>
struct divide_by {
  typename V::type s;
  BLOCKQ_ALWAYS_INLINE typename V::type operator()(typename V::type x) const noexcept { return V::div(x, s); }
};
template <class V = f32x8>
struct multiply_by {
  typename V::type r;
  BLOCKQ_ALWAYS_INLINE typename V::type operator()(typename V::type x) const noexcept { return V::mul(x, r); }
};

// Calls f(divider) with the cheapest exact way of computing x / scale over the lanes of V.
template <class V = f32x8, class F>
BLOCKQ_ALWAYS_INLINE void with_divider(float scale, F&& f) {
  const float r = exact_reciprocal(scale);
  if (r != 0.0f)
    f(multiply_by<V>{V::set1(r)});
  else
    f(divide_by<V>{V::set1(scale)});
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
  zero_extremes_signed(x, n, lo, hi);
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


}  // namespace kernels
BLOCKQ_END_NAMESPACE

#include "blockq/arch/vector_encode.hpp"  // encode / encode_packed: after encode_codes

#endif  // BLOCKQ_WITH_AVX2
