// SPDX-License-Identifier: Apache-2.0
// AVX2 bounds of the NVFP4 window (tag arch::avx2; arch::avx512 has its own, arch/nvfp4_search_avx512.hpp):
// window_sse_bounds, the estimates behind search::e4m3_mse_index (search/discrete.hpp),
// for blocks of at most 16 elements (NVFP4's block); larger blocks take
// window_sse_estimates, which meets the tighter contract.
//
// Contract (arch/generic.hpp, window_sse_bounds): each known est[j] lies within
// window_bounds_relative_error(n) t + window_bounds_absolute_error(n) of
// t = block_sse<e2m1>(x, n, scales[j], ties) under EVERY tie rule; tail as
// window_sse_estimates; least the least known est[j]. Bounds only, not bits: they need not
// match other tiers.
//
// Why it is cheaper than window_sse_estimates (arch/avx2.hpp): the same layout (the scales
// in the lanes of two vectors, one broadcast element a step), but 9 instructions a step
// instead of about 15, because no lane is tested for lying near a rounding threshold and
// the rounding has no integer detour:
// - c = min(fl(|x| fl(1 / s)), 6), rounded to E2M1 by adding and subtracting
//   M = max(2^floor(log2 c), 1) 2^22 (one fused multiply-add each way: the sum is rounded
//   once to a multiple of max(2^floor(log2 c), 1) / 2, the difference is exact), which is
//   E2M1's grid on [0, 8) (avx2_detail::e2m1_round_clamped's magic number); away from the
//   thresholds (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5) that is the rounding of c and of
//   |x| / s whenever no threshold separates the two (ties round to even here);
// - where a threshold t separates fl(|x| fl(1 / s)) from |x| / s (or one of them is t),
//   the value is one of t's two neighbours g1 < t < g2 (t is their midpoint, g2 - g1 = D),
//   maybe not block_sse's. Then | |x| / s - t | <= 2^-23 t (1 + 2^-23) (two roundings of
//   2^-24), so the two exact residuals |x| - g s differ by at most 2^-22 t s (1 + 2^-23)
//   while each is at least s (D / 2 - 2^-23 t); with t / D <= 3.5 their ratio is at most
//   1 + 2^-18.1, and the float roundings of fl(g s) and of the difference (at most
//   9 2^-24 relative to either residual: g s <= 8 (D / 2) s) leave the squared term within
//   a relative 2^-16 of block_sse's. Every other term is block_sse's term exactly (the
//   same code, fl(g s) and float difference, up to the sign);
// - the squares are summed in float by fused multiply-adds in two chains a vector, each
//   term through at most n / 2 + 1 roundings: relative (n / 2 + 1) 2^-24, absolute
//   n 2^-150 below FLT_MIN (inside estimate_relative_error / estimate_absolute_error);
// - a lane whose fl(1 / s) exceeds 2^126 (s below about 2^-126) is unknown (-1); a larger
//   s is harmless (a subnormal fl(1 / s) only meets quotients that round to 0 anyway).
// window_bounds_relative_error = estimate_relative_error + 2^-14 covers all of it.
#pragma once

#include "blockq/arch/avx2.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace avx2_detail {

// One element step of the window over the scales s in a vector of F (f32x8 here, f32x16 on
// AVX-512), r = fl(1 / s): acc + (y - q s)^2, q the E2M1 rounding of min(fl(y r), 6) by the
// magic number M = max(2^floor(log2 c), 1) 2^22 (see the header).
template <class F>
BLOCKQ_ALWAYS_INLINE typename F::type e2m1_window_step(typename F::type y, typename F::type r, typename F::type s,
                                                       typename F::type acc) noexcept {
  const auto exp_mask = F::set1(std::bit_cast<float>(0x7F800000u));
  const auto c = F::min(F::mul(y, r), F::set1(6.0f));
  const auto e = F::max(F::bit_and(c, exp_mask), F::set1(1.0f));
  const auto magic = F::set1(0x1p22f);
  const auto q = F::fnmadd(e, magic, F::fmadd(e, magic, c));
  const auto res = F::sub(y, F::mul(q, s));
  return F::fmadd(res, res, acc);
}

// V vectors of 8 scales (k of them, k > 8 (V - 1)), n <= 16 elements.
template <std::size_t V>
BLOCKQ_ALWAYS_INLINE void e2m1_window_bounds(const float* x, std::size_t n, const float* scales, std::size_t k,
                                             float half, float* est, float& tail, float& least) noexcept {
  // Lanes past k hold scale 0: fl(1 / 0) = inf, min(NaN or inf, 6) = 6, a finite residual
  // |x|; never stored.
  __m256 s[V], r[V], acc0[V], acc1[V];
  for (std::size_t v = 0; v < V; ++v) {
    s[v] = k >= 8 * (v + 1) ? _mm256_loadu_ps(scales + 8 * v) : _mm256_maskload_ps(scales + 8 * v, first_lanes(k - 8 * v));
    r[v] = _mm256_div_ps(_mm256_set1_ps(1.0f), s[v]);
    acc0[v] = acc1[v] = _mm256_setzero_ps();
  }
  // The magnitudes on the stack (broadcast from memory in the steps; zeros past n add 0)
  // and the tail bound on the way.
  const __m256 abs_mask = _mm256_castsi256_ps(splat(0x7FFFFFFFu)), h = _mm256_set1_ps(half);
  alignas(32) float y[16];
  __m256 z = _mm256_setzero_ps();
  for (std::size_t i = 0; i < 16; i += 8) {
    const __m256 a = i + 8 <= n ? _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask)
                     : i < n    ? _mm256_and_ps(_mm256_maskload_ps(x + i, first_lanes(n - i)), abs_mask)
                                : _mm256_setzero_ps();
    _mm256_store_ps(y + i, a);
    const __m256 t = _mm256_min_ps(a, _mm256_max_ps(_mm256_sub_ps(h, a), _mm256_setzero_ps()));
    z = _mm256_fmadd_ps(t, t, z);
  }
  tail = hsum_ps(z);
  auto step = [&](std::size_t i, __m256(&acc)[V]) BLOCKQ_LAMBDA_INLINE {
    const __m256 yi = _mm256_broadcast_ss(y + i);
    for (std::size_t v = 0; v < V; ++v) acc[v] = e2m1_window_step<f32x8>(yi, r[v], s[v], acc[v]);
  };
  if (n <= 8) {
    for (std::size_t i = 0; i < 8; i += 2) step(i, acc0), step(i + 1, acc1);
  } else {
    for (std::size_t i = 0; i < 16; i += 2) step(i, acc0), step(i + 1, acc1);
  }
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 low = inf;
  for (std::size_t v = 0; v < V; ++v) {
    // not (r <= 2^126): NaN-safe, true where the lane is unusable
    const __m256 unknown = _mm256_cmp_ps(r[v], _mm256_set1_ps(0x1p126f), _CMP_NLE_UQ);
    const __m256 sum = _mm256_add_ps(acc0[v], acc1[v]);
    const __m256 e = _mm256_blendv_ps(sum, _mm256_set1_ps(-1.0f), unknown);
    if (k >= 8 * (v + 1)) {
      _mm256_storeu_ps(est + 8 * v, e);
      low = _mm256_min_ps(low, _mm256_blendv_ps(sum, inf, unknown));
    } else {
      const __m256i lanes = first_lanes(k - 8 * v);
      _mm256_maskstore_ps(est + 8 * v, lanes, e);
      low = _mm256_min_ps(low, _mm256_blendv_ps(inf, _mm256_blendv_ps(sum, inf, unknown), _mm256_castsi256_ps(lanes)));
    }
  }
  __m128 l = _mm_min_ps(_mm256_castps256_ps128(low), _mm256_extractf128_ps(low, 1));
  l = _mm_min_ps(l, _mm_movehl_ps(l, l));
  least = _mm_cvtss_f32(_mm_min_ss(l, _mm_movehdup_ps(l)));
}

}  // namespace avx2_detail

inline void window_sse_bounds(arch::avx2, const float* x, std::size_t n, const float* scales, std::size_t k,
                              tie_mode ties, float half, float* est, float& tail, float& least) noexcept {
  if (n > 16 || k == 0 || k > max_window_estimates) {
    window_sse_estimates<e2m1>(arch::avx2{}, x, n, scales, k, ties, half, est, tail);
    least = std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < k; ++j) least = est[j] >= 0.0f && est[j] < least ? est[j] : least;
    return;
  }
  if (k > 8)
    avx2_detail::e2m1_window_bounds<2>(x, n, scales, k, half, est, tail, least);
  else
    avx2_detail::e2m1_window_bounds<1>(x, n, scales, k, half, est, tail, least);
}

// The amaxes and absmax scale codes of 8 blocks of 16 (the generic version's contract, in
// arch/generic.hpp): block_maxima8 and e4m3_absmax_codes8, the fused absmax loop's; a group
// holding a NaN or Inf goes block by block.
inline void nvfp4_absmax_blocks8(arch::avx2, const float* x, float s_t, float* amax, std::uint8_t* codes) noexcept {
  const __m256i maxima = avx2_detail::block_maxima8(x, 16);
  if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(maxima, avx2_detail::splat(0x7F7FFFFFu)))) != 0) {
    for (std::size_t j = 0; j < 8; ++j) {
      amax[j] = block_amax(arch::avx2{}, x + 16 * j, 16);
      codes[j] = e4m3_block_scale{s_t}(amax[j]);
    }
    return;
  }
  _mm256_storeu_ps(amax, _mm256_castsi256_ps(maxima));
  avx2_detail::store_bytes8(avx2_detail::e4m3_absmax_codes8(_mm256_castsi256_ps(maxima), s_t), codes);
}

// NVFP4 codes at given E4M3 scales (rule mse's encode, after its search): n floats in
// blocks of 16, scale code scales[b] for block b under the tensor scale s_t (divisor
// e4m3_block_divisor{s_t}, as the quantizer's), codes in layout L (bytes or nibbles) at out.
// Groups of 8 blocks go through the fused absmax loop's encode, a pair of blocks in one
// 32-element core (e2m1_pair16). The usual group, 8 codes in 1..126 and 8 positive finite
// divisors, takes the division plan for all 8 (whatever e2m1_plan would choose: each plan
// gives the keys of the true quotient, and the decodes, the divisors and the test are then 8
// at once, no per-block branches); any other group takes avx2_detail::e2m1_group8 (each
// block its plan). A group holding a NaN or Inf element (whose key the fused core does not
// see as the division would), the blocks e2m1_group8 declines (zero or NaN divisors, a pair
// whose plans differ in kind) and the blocks after the last whole group go to
// rest(b, begin, len) (the per-block encode), as in the generic version.
template <code_layout L, class Rest>
void nvfp4_scaled_blocks(arch::avx2, const float* x, std::size_t n, tie_mode ties, float s_t,
                         const std::uint8_t* scales, std::uint8_t* out, Rest&& rest) {
  static_assert(L == code_layout::bytes || L == code_layout::nibbles);
  using avx2_detail::e2m1_divisor;
  using avx2_detail::splat;
  const e4m3_block_divisor divisor_of{s_t};
  std::size_t i = 0, b = 0;
  avx2_detail::with_ties(ties, [&](auto t) {
    constexpr tie_mode T = decltype(t)::value;
    for (; i + 128 <= n; i += 128, b += 8) {
      const __m256i maxima = avx2_detail::block_maxima8(x + i, 16);
      if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(maxima, splat(0x7F7FFFFFu)))) != 0) {
        rest(b, i, std::size_t{128});
        continue;
      }
      const __m256i code = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales + b)));
      const __m256 dv = avx2_detail::e4m3_divisors8(code, s_t);
      alignas(32) float d[8];
      _mm256_store_ps(d, dv);
      const __m256 usual = _mm256_and_ps(
          _mm256_and_ps(_mm256_cmp_ps(dv, _mm256_setzero_ps(), _CMP_GT_OQ),
                        _mm256_cmp_ps(dv, _mm256_set1_ps(std::numeric_limits<float>::infinity()), _CMP_LT_OQ)),
          _mm256_castsi256_ps(_mm256_cmpgt_epi32(splat(127u), code)));
      if (_mm256_movemask_ps(usual) != 0xFF) {
        for (std::size_t j = 0; j < 8; ++j) d[j] = divisor_of(scales[b + j]);
        avx2_detail::e2m1_group8<L, T, false, 16>(x, d, out, b, i, rest);
        continue;
      }
      const __m256i off = _mm256_set1_epi16(static_cast<short>(avx2_detail::e2m1_offset<T>));
      for (std::size_t j = 0; j < 8; j += 2)
        avx2_detail::e2m1_pair16<L, T, e2m1_divisor::divide>(
            x + i + 16 * j, e2m1_divisor{e2m1_divisor::divide, _mm256_set1_ps(d[j]), off},
            e2m1_divisor{e2m1_divisor::divide, _mm256_set1_ps(d[j + 1]), off},
            avx2_detail::e2m1_block_out<L>(out, b + j, i + 16 * j));
    }
  });
  if (i < n) rest(b, i, n - i);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX2
