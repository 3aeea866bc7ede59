// SPDX-License-Identifier: Apache-2.0
// AVX-512 bounds of the NVFP4 window (tag arch::avx512): window_sse_bounds, the estimates
// behind search::e4m3_mse_index (search/discrete.hpp), for blocks of at most 16 elements
// and at most 16 scales; anything else falls back to the AVX2 overload, as AVX2 itself
// does (to window_sse_estimates).
//
// Contract (arch/generic.hpp, window_sse_bounds): bounds, not bits, as the AVX2 kernel's
// (arch/nvfp4_search_avx2.hpp): each known est[j] within window_bounds_relative_error(n) t +
// window_bounds_absolute_error(n) of t = block_sse<e2m1>(x, n, scales[j], ties) under every
// tie rule; tail as window_sse_estimates; least the least known est[j] (+inf when none).
//
// Why a tier of its own: the window has 16 scales, which on AVX2 fill two vectors, so every
// element step costs two times the 9 instructions of the rounding and the sum; here the 16
// scales fill one zmm and a step costs them once. The arithmetic is the AVX2 kernel's lane
// for lane, so its proof (the header comment of arch/nvfp4_search_avx2.hpp) holds unchanged:
// - c = min(fl(|x| fl(1 / s)), 6), rounded to E2M1 by adding and subtracting
//   M = max(2^floor(log2 c), 1) 2^22 with fused multiply-adds: exact E2M1 rounding of c,
//   which differs from block_sse's rounding of |x| / s only where a threshold separates c
//   from |x| / s, and there costs at most a relative 2^-16 on that term;
// - the squared residuals are summed by fused multiply-adds in TWO chains (even and odd
//   elements), each term through at most n / 2 + 1 roundings, then the chains added once;
// - a lane whose fl(1 / s) exceeds 2^126 (or is NaN) is unknown (-1).
// The tail bound sums min(|x|, max(half - |x|, 0))^2 in one multiply and a 16-lane
// reduction (5 roundings for 16 terms, inside estimate_relative_error); least is a masked
// 16-lane minimum over the known lanes below k.
#pragma once

#include "blockq/arch/avx512.hpp"
#include "blockq/arch/nvfp4_search_avx2.hpp"

#if BLOCKQ_WITH_AVX512
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <limits>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace avx512_detail {

// k in [1, 16] scales, n <= 16 elements; Steps (8 or 16) element steps, zeros past n.
template <std::size_t Steps>
BLOCKQ_ALWAYS_INLINE void e2m1_window_bounds(const float* x, std::size_t n, const float* scales, std::size_t k,
                                             float half, float* est, float& tail, float& least) noexcept {
  // Lanes past k hold scale 0: fl(1 / 0) = inf, min(NaN or inf, 6) = 6, a finite residual
  // |x|; never stored, never in least.
  const auto lanes = static_cast<__mmask16>(k >= 16 ? 0xFFFFu : (1u << k) - 1u);
  const __m512 s = _mm512_maskz_loadu_ps(lanes, scales);
  const __m512 r = _mm512_div_ps(_mm512_set1_ps(1.0f), s);
  // The magnitudes on the stack (broadcast from memory in the steps; zeros past n add 0)
  // and the tail bound on the way.
  const auto elems = static_cast<__mmask16>(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
  const __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(elems, x));
  alignas(64) float y[16];
  _mm512_store_ps(y, a);
  const __m512 t = _mm512_min_ps(a, _mm512_max_ps(_mm512_sub_ps(_mm512_set1_ps(half), a), _mm512_setzero_ps()));
  tail = _mm512_reduce_add_ps(_mm512_mul_ps(t, t));
  auto step = [&](std::size_t i, __m512& acc) BLOCKQ_LAMBDA_INLINE {
    acc = avx2_detail::e2m1_window_step<f32x16>(_mm512_set1_ps(y[i]), r, s, acc);
  };
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (std::size_t i = 0; i < Steps; i += 2) step(i, acc0), step(i + 1, acc1);
  const __m512 sum = _mm512_add_ps(acc0, acc1);
  // not (r <= 2^126): NaN-safe, set where the lane is unusable
  const __mmask16 unknown = _mm512_cmp_ps_mask(r, _mm512_set1_ps(0x1p126f), _CMP_NLE_UQ);
  _mm512_mask_storeu_ps(est, lanes, _mm512_mask_blend_ps(unknown, sum, _mm512_set1_ps(-1.0f)));
  // The least known lane: +inf elsewhere (and when none is), then halves.
  const __m512 known = _mm512_mask_mov_ps(_mm512_set1_ps(std::numeric_limits<float>::infinity()),
                                          static_cast<__mmask16>(lanes & ~unknown), sum);
  const __m256 l8 = _mm256_min_ps(_mm512_castps512_ps256(known), _mm512_extractf32x8_ps(known, 1));
  __m128 l = _mm_min_ps(_mm256_castps256_ps128(l8), _mm256_extractf128_ps(l8, 1));
  l = _mm_min_ps(l, _mm_movehl_ps(l, l));
  least = _mm_cvtss_f32(_mm_min_ss(l, _mm_movehdup_ps(l)));
}

}  // namespace avx512_detail

inline void window_sse_bounds(arch::avx512, const float* x, std::size_t n, const float* scales, std::size_t k,
                              tie_mode ties, float half, float* est, float& tail, float& least) noexcept {
  if (n > 16 || k == 0 || k > max_window_estimates) {
    window_sse_bounds(arch::avx2{}, x, n, scales, k, ties, half, est, tail, least);
    return;
  }
  if (n > 8)
    avx512_detail::e2m1_window_bounds<16>(x, n, scales, k, half, est, tail, least);
  else
    avx512_detail::e2m1_window_bounds<8>(x, n, scales, k, half, est, tail, least);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX512
