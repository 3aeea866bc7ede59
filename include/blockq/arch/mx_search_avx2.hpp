// SPDX-License-Identifier: Apache-2.0
// MXFP4 rule mse (E2M1 elements, UE8M0 scales, blocks of 32) fused over groups of 8
// blocks, tag arch::avx2 (arch::avx512 inherits it): kernels::mxfp4_mse_blocks.
//
// The per-block path (mx_quantizer::block_scale, search::discrete_mse_index) makes an amax
// pass, one call of block_window_estimates, a scalar decision in double and an encode call
// for every block. Here one group of 8 blocks (1 KiB, in L1 after the first pass) takes:
// - the 8 amaxes at once (avx2_detail::block_maxima8) and from their exponents the ocp
//   start s = 2^k of each block (amax / s in [4, 8)) and its reciprocal 2^-k, exact;
// - per block, three float sums in units of s^2: the estimates at s and 2s and the
//   clipping part at s / 2 of search::detail::ue8m0_window_index, with the residuals of
//   avx2_detail::e2m1_window_estimates, then the 8 blocks' sums transposed so that lane j
//   holds block j's (each term through at most 4 fused multiply-adds and 3 additions:
//   7 <= n / 8 + 4 roundings, the estimates' contract);
// - the certificate below for the 8 blocks side by side, in float;
// - the winner's codes by the shift plan of mx_group32 (no multiplication: the key offset
//   e2m1_offset + 4k' for the winner's scale 2^k'), in layout L.
// A block declines, and rest(b, begin, 32, declined) runs the per-block path on it, when its
// amax is outside [2^-40, 2^40] (zero, subnormal-only, NaN, Inf, extreme exponents: the
// estimates' range) or when its certificate fails (near-ties, an optimum that may be below
// s); a group may mix both.
//
// The certificate. Each candidate's exact block_sse lies in [lo, hi], lo = v (1 - rel) - abs,
// hi = v (1 + rel) + abs (rel = estimate_relative_error(32) = 3 * 2^-19, abs =
// estimate_absolute_error(32) = 2^-144, the estimates' contract). The candidate w of least hi
// (s or 2s) is the exhaustive result when it is the only one of the two whose lo is <= that
// hi and the clipping part's lo is above it:
// - below: every scale <= s / 2 clips each |x| > 3s to at most 3s, so its SSE is at least
//   the clipping part (as in ue8m0_window_search), strictly above SSE(w);
// - above: no scale 2^j s with j >= 2 is ever the result. Every |x| is below 8s, and the
//   E2M1 grid at 2^j s has no point in [0, 8s] that is not on the grid at 2s: at 4s those
//   points are 0, 2s, 4s, 6s, 8s, at 8s 0, 4s, 8s, beyond 0 and 2^(j-1) s <= 8s or none,
//   and the grid at 2s holds 0, s, 2s, 3s, 4s, 6s, 8s (it does not saturate below 12s; with
//   8s on it, a point beyond 8s is never the nearer).
//   So each element's distance to the grid at 2s is at most that to the grid at 2^j s.
//   block_sse rounds x / scale to the nearest grid value (any tie rule: both neighbours of
//   a tie are at the same distance), and the float residual is that distance exactly (the
//   element itself where it rounds to 0, Sterbenz otherwise; a quotient that underflows is
//   far below the first threshold and rounds to 0 at both scales), its square in double and
//   the sum in a fixed order are monotone in it, so block_sse(2s) <= block_sse(2^j s). 2s
//   comes earlier in the exhaustive order (start, then increasing), so a larger scale never
//   replaces the best: neither 4s (the estimate ue8m0_window_index scores) nor the zero
//   part at 8s (which bounds the scales from 8s up there) is needed here.
// Every sum is in units of s^2 (the residual at 2s is formed in units of s, twice the one
// in units of 2s, exactly): the relative error is the contract's (the same roundings
// of the same terms), and the absolute one, at most 2^-150 per rounding of the 39 a lane's
// sum goes through, stays below abs in these units too. The test runs in float on
// lo' = fl(fl(v (1 - rel')) - abs') and hi' = fl(fl(v (1 + rel')) + abs') with
// rel' = rel + 2^-20 and abs' = 2^-140: two roundings (relative 2^-24 each, or absolute
// 2^-150 below FLT_MIN) move a value by far less than the extra v 2^-20 + 2^-140 - 2^-144, so
// lo' <= lo and hi' >= hi as real numbers; min and the comparisons are exact. Wider bounds
// only certify fewer blocks: a certified winner is still the exhaustive result.
#pragma once

#include "blockq/arch/avx2.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

#include <bit>
#include <cstddef>
#include <cstdint>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace avx2_detail {

// The window sums of one block of 32 at reciprocal r = 2^-k (see the header), all in units
// of s (residuals) and s^2 (sums): e[0..1] the estimates at s and 2s, e[2] the clipping
// part, 8 lanes each. q = |x| / s (exact) is below 8. The residual at 2s in units of s is
// twice the one in units of 2s (exact), so its square is the candidate's term in units of
// s^2 and the two sums compare without scaling.
// Ties to even: magic-number rounding (e2m1_round_magnitude) at each candidate's spacing in
// units of s. At s, M = 2^(max(e, 0) + 22) (e the exponent of q) rounds q to the E2M1 grid
// 0, 0.5, .., 4, 6, 8 with the FPU's ties to even (the even code), min(., 6) saturates; at
// 2s the grid is twice as coarse, M' = 2 M(q / 2) = max(M, 2^23), and q / 2 < 4 needs no
// saturation. The other tie rules round q / 2 as e2m1_window_estimates does and double the
// residual.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE void mx_mse_block_sums(const float* x, __m256 r, __m256 (&e)[3]) noexcept {
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu));
  const __m256 ca = _mm256_set1_ps(3.0f);  // 6 (s / 2) in units of s
  for (int j = 0; j < 3; ++j) e[j] = _mm256_setzero_ps();
  for (int i = 0; i < 32; i += 8) {
    const __m256 y = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
    const __m256 q0 = _mm256_mul_ps(y, r);
    // (q0 - 3 is exact for q0 in [3, 8); max(., 0) is e2m1_window_estimates' masked difference)
    const __m256 yc = _mm256_max_ps(_mm256_sub_ps(q0, ca), _mm256_setzero_ps());
    __m256 d0, d1;
    if constexpr (T == tie_mode::even) {
      const __m256i ex = _mm256_and_si256(_mm256_castps_si256(q0), splat(0x7F800000u));
      const __m256 m0 = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_max_epi32(ex, splat(0x3F800000u)), splat(22u << 23)));
      const __m256 m1 = _mm256_max_ps(m0, _mm256_set1_ps(0x1p23f));
      d0 = _mm256_sub_ps(q0, _mm256_min_ps(_mm256_sub_ps(_mm256_add_ps(q0, m0), m0), _mm256_set1_ps(6.0f)));
      d1 = _mm256_sub_ps(q0, _mm256_sub_ps(_mm256_add_ps(q0, m1), m1));
    } else {
      const __m256 q1 = _mm256_mul_ps(q0, _mm256_set1_ps(0.5f));
      d0 = _mm256_sub_ps(q0, e2m1_round_magnitude<T>(q0));
      const __m256 t1 = _mm256_sub_ps(q1, e2m1_round_magnitude<T>(q1));
      d1 = _mm256_add_ps(t1, t1);
    }
    e[0] = _mm256_fmadd_ps(d0, d0, e[0]);
    e[1] = _mm256_fmadd_ps(d1, d1, e[1]);
    e[2] = _mm256_fmadd_ps(yc, yc, e[2]);
  }
}

// The codes of 8 blocks of 32 at x (block b, element i of the output) at the UE8M0 scale
// codes in code's lanes, each in [3, 254] (the shift plan of mx_group32: key offsets
// e2m1_offset + 4 k', k' = code - 127, no multiplication); a loop without calls, so that
// the table constants stay in registers. Returns the group's largest absolute bits
// (lane-wise), which a caller that does not need them lets the compiler drop.
template <code_layout L, tie_mode T>
BLOCKQ_ALWAYS_INLINE __m256i e2m1_encode_group8(const float* x, __m256i code, std::uint8_t* out, std::size_t b,
                                                std::size_t i) noexcept {
  const __m256i off32 = _mm256_add_epi32(_mm256_slli_epi32(code, 2), _mm256_set1_epi32(e2m1_offset<T> - 4 * 127));
  alignas(16) std::int16_t off[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(off),
                  _mm_packs_epi32(_mm256_castsi256_si128(off32), _mm256_extracti128_si256(off32, 1)));
  const __m256i abs = splat(0x7FFFFFFFu);
  __m256i top = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    const float* p = x + 32 * j;
    const __m256i b0 = load8i(p), b1 = load8i(p + 8), b2 = load8i(p + 16), b3 = load8i(p + 24);
    const __m256i a0 = _mm256_and_si256(b0, abs), a1 = _mm256_and_si256(b1, abs), a2 = _mm256_and_si256(b2, abs),
                  a3 = _mm256_and_si256(b3, abs);
    top = _mm256_max_epu32(top, _mm256_max_epu32(_mm256_max_epu32(a0, a1), _mm256_max_epu32(a2, a3)));
    const __m256i k01 = _mm256_packs_epi32(e2m1_key_bits<T>(a0), e2m1_key_bits<T>(a1));
    const __m256i k23 = _mm256_packs_epi32(e2m1_key_bits<T>(a2), e2m1_key_bits<T>(a3));
    const __m256i ov = _mm256_set1_epi16(off[j]);
    e2m1_store32<L>(e2m1_codes_from_keys(k01, k23, ov, ov, b0, b1, b2, b3, nullptr), e2m1_block_out<L>(out, b + j, i + 32 * j));
  }
  return top;
}

// One group of 8 blocks of 32 at x (block b, element i): the blocks it certifies get their
// scale and codes; the others go to rest.
template <code_layout L, tie_mode T, class Rest>
BLOCKQ_ALWAYS_INLINE void mx_mse_group8(const float* x, std::size_t b, std::size_t i, std::uint8_t* out,
                                        std::uint8_t* scales, Rest& rest) noexcept {
  const __m256i maxima = block_maxima8(x, 32);
  // amax in [2^-40, 2^40] (as unsigned bits: NaN and Inf above, zero and subnormals below).
  const __m256i lo_bits = splat(std::bit_cast<std::uint32_t>(0x1p-40f)), hi_bits = splat(std::bit_cast<std::uint32_t>(0x1p40f));
  const __m256i in_range = _mm256_cmpeq_epi32(_mm256_min_epu32(_mm256_max_epu32(maxima, lo_bits), hi_bits), maxima);
  // The ocp code E - 2 (E the amax's exponent field: k = E - 127 - emax) and 2^-k, whose
  // exponent field is 127 - k = 256 - E; out-of-range lanes get E = 127 (r = 2), harmless.
  const __m256i ex = _mm256_blendv_epi8(splat(127u), _mm256_srli_epi32(maxima, 23), in_range);
  alignas(32) float rcp[8];
  _mm256_store_ps(rcp, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_sub_epi32(splat(256u), ex), 23)));
  // Lane j of each sum: the sum of block j's 8 lanes, the pairs added (hadd) as they come
  // rather than from 24 accumulators kept live (spilled: 32 ymm registers would be needed).
  __m256 pair[3][4];
  for (int j = 0; j < 8; j += 2) {
    __m256 e[3], f[3];
    mx_mse_block_sums<T>(x + 32 * j, _mm256_broadcast_ss(rcp + j), e);
    mx_mse_block_sums<T>(x + 32 * (j + 1), _mm256_broadcast_ss(rcp + j + 1), f);
    for (int q = 0; q < 3; ++q) pair[q][j / 2] = _mm256_hadd_ps(e[q], f[q]);
  }
  auto lanes = [&](const __m256 (&p)[4]) BLOCKQ_LAMBDA_INLINE {
    const __m256 lo = _mm256_hadd_ps(p[0], p[1]), hi = _mm256_hadd_ps(p[2], p[3]);
    return _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
  };
  const __m256 e0 = lanes(pair[0]), e1 = lanes(pair[1]), clip = lanes(pair[2]);
  // The certificate (see the header), in units of s^2.
  const __m256 down = _mm256_set1_ps(1.0f - 0x7p-20f), up = _mm256_set1_ps(1.0f + 0x7p-20f);
  const __m256 slack = _mm256_set1_ps(0x1p-140f);
  auto lower = [&](__m256 v) BLOCKQ_LAMBDA_INLINE { return _mm256_sub_ps(_mm256_mul_ps(v, down), slack); };
  auto upper = [&](__m256 v) BLOCKQ_LAMBDA_INLINE { return _mm256_add_ps(_mm256_mul_ps(v, up), slack); };
  const __m256 h = _mm256_min_ps(upper(e0), upper(e1));
  const __m256 c0 = _mm256_cmp_ps(lower(e0), h, _CMP_LE_OQ);
  const __m256 c1 = _mm256_cmp_ps(lower(e1), h, _CMP_LE_OQ);
  // exactly one of c0, c1 (each -1 or 0: their xor is -1) and the clipping part above h
  const __m256 parts = _mm256_cmp_ps(lower(clip), h, _CMP_GT_OQ);
  const __m256i ok = _mm256_and_si256(_mm256_and_si256(_mm256_castps_si256(_mm256_xor_ps(c0, c1)), in_range),
                                      _mm256_castps_si256(parts));
  // The winner's code: the start's plus 1 (c1).
  const __m256i code = _mm256_sub_epi32(_mm256_sub_epi32(ex, splat(2u)), _mm256_castps_si256(c1));
  const unsigned good = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(ok)));
  const unsigned in = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(in_range)));
  store_bytes8(code, scales + b);
  // Every block's codes at its lane's code, then the declined blocks again through rest,
  // which rewrites their scale and codes.
  e2m1_encode_group8<L, T>(x, code, out, b, i);
  for (unsigned bad = ~good & 0xFFu; bad != 0; bad &= bad - 1) {
    const unsigned j = static_cast<unsigned>(std::countr_zero(bad));
    rest(b + j, i + 32 * j, std::size_t{32}, (in >> j & 1u) != 0);  // (in range: the certificate failed)
  }
}

}  // namespace avx2_detail

// MXFP4 rule mse over n floats in blocks of 32, codes in layout L (bytes or nibbles) at
// out and UE8M0 scales at scales: whole groups of 8 blocks fused (see the header), every
// block they decline and the blocks after the last whole group through
// rest(b, begin, len, declined) (the per-block path, which writes the scales of the blocks
// from b on and the codes of [begin, begin + len)); declined: a block of 32 with amax in
// [2^-40, 2^40] whose certificate failed (the float window cannot decide it).
template <code_layout L, class Rest>
void mxfp4_mse_blocks(arch::avx2, const float* x, std::size_t n, tie_mode ties, std::uint8_t* out,
                      std::uint8_t* scales, Rest&& rest) {
  static_assert(L == code_layout::bytes || L == code_layout::nibbles);
  std::size_t i = 0, b = 0;
  avx2_detail::with_ties(ties, [&](auto t) {
    for (; i + 256 <= n; i += 256, b += 8) avx2_detail::mx_mse_group8<L, decltype(t)::value>(x + i, b, i, out, scales, rest);
  });
  if (i < n) rest(b, i, n - i, false);
}

// MXFP4 codes at given UE8M0 scales (rule hessian's encode, after its search): n floats in
// blocks of 32, scales[b] for block b, codes in layout L (bytes or nibbles) at out. A group
// of 8 blocks whose codes are all in [3, 254] (normal powers of two 2^k, k >= -124: the
// shift case of e2m1_plan, whose keys equal the division's) is encoded by the shift plan of
// mx_group32, no multiplication; every other group, a group holding a NaN or Inf element,
// and the blocks after the last whole group go to rest(b, begin, len) (the per-block
// encode), as in the generic version.
template <code_layout L, class Rest>
void mxfp4_scaled_blocks(arch::avx2, const float* x, std::size_t n, tie_mode ties, const std::uint8_t* scales,
                         std::uint8_t* out, Rest&& rest) {
  static_assert(L == code_layout::bytes || L == code_layout::nibbles);
  std::size_t i = 0, b = 0;
  avx2_detail::with_ties(ties, [&](auto t) {
    constexpr tie_mode T = decltype(t)::value;
    for (; i + 256 <= n; i += 256, b += 8) {
      const __m256i code = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales + b)));
      const __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi32(avx2_detail::splat(3u), code),
                                          _mm256_cmpgt_epi32(code, avx2_detail::splat(254u)));
      if (!_mm256_testz_si256(bad, bad)) {
        rest(b, i, std::size_t{256});
        continue;
      }
      const __m256i top = avx2_detail::e2m1_encode_group8<L, T>(x + i, code, out, b, i);
      // A NaN or Inf element (bits above 0x7F7FFFFF): the keys do not see it as the division
      // would, so the group is encoded again by rest, which rewrites its codes. (The
      // quantizers never get here: such a block's scale is the NaN code.)
      const __m256i nonfinite = _mm256_cmpgt_epi32(top, avx2_detail::splat(0x7F7FFFFFu));
      if (!_mm256_testz_si256(nonfinite, nonfinite)) rest(b, i, std::size_t{256});
    }
  });
  if (i < n) rest(b, i, n - i);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX2
