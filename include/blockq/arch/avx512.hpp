// SPDX-License-Identifier: Apache-2.0
// AVX-512 (F, BW, VL, DQ) block kernels, tag arch::avx512 (derived from arch::avx2):
// a kernel not overloaded here is AVX2's (arch/avx2.hpp), which inherits the scalar ones.
//
// Same contract as arch/avx2.hpp: every kernel returns the bits of its arch/scalar.hpp
// oracle (tests/arch_avx512_test, built from tests/arch_test.cpp with the AVX-512 flags).
// Overloaded here: the searches' E2M1 kernels (block_sse and the one-pass estimates of
// search/discrete.hpp). The tier's other kernels have their own headers: the E2M1
// dequantization (arch/avx512_decode.hpp) and the fused MXFP4 loop (arch/avx512_e2m1.hpp),
// both faster than AVX2's on Zen 4 (README, SIMD), and the NVFP4 window's bounds
// (arch/nvfp4_search_avx512.hpp: 16 scales in one zmm; bounds, not bits, as AVX2's), and the
// integer encoders (arch/avx512_int.hpp: the int absmax and signed_max loops, chosen at run
// time: slower than AVX2's on Zen 4, 1.6x faster in cache on Zen 5). The other fused amax
// loops and integer decoding stay AVX2's (a 16-lane int decoder measured 4-10 % slower on
// Zen 4 and no steadier win on Zen 5; README, SIMD).
#pragma once

#include "blockq/arch/avx2.hpp"

#if BLOCKQ_WITH_AVX512
#include <immintrin.h>

#include <cstddef>
#include <type_traits>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace avx512_detail {

BLOCKQ_ALWAYS_INLINE __m512i splat(std::uint32_t v) noexcept { return _mm512_set1_epi32(static_cast<int>(v)); }

// The 16-lane float vector of the code written once for every width (avx2_detail::f32x8).
struct f32x16 {
  using type = __m512;
  BLOCKQ_ALWAYS_INLINE static type set1(float v) noexcept { return _mm512_set1_ps(v); }
  BLOCKQ_ALWAYS_INLINE static type mul(type a, type b) noexcept { return _mm512_mul_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type div(type a, type b) noexcept { return _mm512_div_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type sub(type a, type b) noexcept { return _mm512_sub_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type min(type a, type b) noexcept { return _mm512_min_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type max(type a, type b) noexcept { return _mm512_max_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type bit_and(type a, type b) noexcept { return _mm512_and_ps(a, b); }
  BLOCKQ_ALWAYS_INLINE static type fmadd(type a, type b, type c) noexcept { return _mm512_fmadd_ps(a, b, c); }
  BLOCKQ_ALWAYS_INLINE static type fnmadd(type a, type b, type c) noexcept { return _mm512_fnmadd_ps(a, b, c); }
};

// Calls f(x_vector, offset, lanes) over n elements in groups of 16; the last group is
// loaded masked (zeros in the unused lanes).
template <class F>
BLOCKQ_ALWAYS_INLINE void for_each16(const float* x, std::size_t n, F&& f) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) f(_mm512_loadu_ps(x + i), i, static_cast<__mmask16>(0xFFFF));
  if (i < n) {
    const auto m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    f(_mm512_maskz_loadu_ps(m, x + i), i, m);
  }
}

// The E2M1 value (with the sign of y, none for a NaN) of y, as avx2_detail::e2m1_round:
// magic-number rounding for ties to even, counted thresholds otherwise.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m512 e2m1_round(__m512 y) noexcept {
  const __mmask16 ordered = _mm512_cmp_ps_mask(y, y, _CMP_ORD_Q);
  const __m512i sign = _mm512_maskz_and_epi32(ordered, _mm512_castps_si512(y), splat(0x80000000u));
  const __m512 a = _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(y), splat(0x7FFFFFFFu)));
  __m512 v;
  if constexpr (T == tie_mode::even) {
    const __m512 a8 = _mm512_min_ps(_mm512_max_ps(a, _mm512_setzero_ps()), _mm512_set1_ps(8.0f));
    const __m512i e = _mm512_max_epi32(_mm512_and_epi32(_mm512_castps_si512(a8), splat(0x7F800000u)), splat(0x3F800000u));
    const __m512 m = _mm512_castsi512_ps(_mm512_add_epi32(e, splat(22u << 23)));
    v = _mm512_min_ps(_mm512_sub_ps(_mm512_add_ps(a8, m), m), _mm512_set1_ps(6.0f));
  } else {
    constexpr int gt = _CMP_GT_OQ, ge = _CMP_GE_OQ;
    constexpr int p_even_lo = T == tie_mode::away ? ge : gt;         // 0.25, 1.25, 2.5, 5
    constexpr int p_even_hi = T == tie_mode::toward_zero ? gt : ge;  // 0.75, 1.75, 3.5
    const __m512i one = splat(1u);
    __m512i c = _mm512_setzero_si512();
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.25f), p_even_lo), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(0.75f), p_even_hi), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(1.25f), p_even_lo), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(1.75f), p_even_hi), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(2.5f), p_even_lo), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(3.5f), p_even_hi), c, one);
    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(a, _mm512_set1_ps(5.0f), p_even_lo), c, one);
    const __m512 grid = _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, 0, 0, 0, 0, 0, 0, 0, 0);
    v = _mm512_permutexvar_ps(c, grid);
  }
  return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(v), sign));
}

// Eight double lanes s[i % 8] (kernels::sum8's order): adds the squares of 16 residuals,
// elements i..i+7 then i+8..i+15.
struct sum8z {
  __m512d s = _mm512_setzero_pd();
  BLOCKQ_ALWAYS_INLINE void add_sq(__m512 r) noexcept {
    const __m512d r0 = _mm512_cvtps_pd(_mm512_castps512_ps256(r));
    const __m512d r1 = _mm512_cvtps_pd(_mm512_extractf32x8_ps(r, 1));
    s = _mm512_add_pd(s, _mm512_mul_pd(r0, r0));
    s = _mm512_add_pd(s, _mm512_mul_pd(r1, r1));
  }
  BLOCKQ_ALWAYS_INLINE double total() const noexcept {
    const __m256d t = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));  // s0+s4, ...
    const __m128d u = _mm_add_pd(_mm256_castpd256_pd128(t), _mm256_extractf128_pd(t, 1));
    return _mm_cvtsd_f64(_mm_add_sd(u, _mm_unpackhi_pd(u, u)));
  }
};

// K candidates of block_sse_estimates in one pass (see avx2_detail::e2m1_estimates).
template <tie_mode T, std::size_t K, bool Exact>
BLOCKQ_ALWAYS_INLINE void e2m1_estimates(const float* x, std::size_t n, const float* rcp, const float* scales,
                                         float zero_below, float* est, float& zero) noexcept {
  const __m512 zb = _mm512_set1_ps(zero_below);
  __m512 z = _mm512_setzero_ps(), acc[K + 1];
  __mmask16 near[K + 1];
  for (std::size_t j = 0; j < K; ++j) {
    acc[j] = _mm512_setzero_ps();
    near[j] = 0;
  }
  for_each16(x, n, [&](__m512 v, std::size_t, __mmask16) BLOCKQ_LAMBDA_INLINE {  // masked lanes: y = 0, no term
    const __m512 y = _mm512_abs_ps(v);
    const __m512 y0 = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, zb, _CMP_LT_OQ), y);
    z = _mm512_fmadd_ps(y0, y0, z);
    for (std::size_t j = 0; j < K; ++j) {
      const __m512 q = _mm512_mul_ps(y, _mm512_set1_ps(rcp[j]));
      if constexpr (!Exact) {
        const __m512i b = _mm512_castps_si512(q);
        const __mmask16 in = _mm512_cmpgt_epi32_mask(b, splat(0x3DFFFFFFu)) & _mm512_cmpgt_epi32_mask(splat(0x40E00001u), b);
        const __m512i low = _mm512_and_epi32(_mm512_add_epi32(b, splat(8u)), splat(0x1FFFFFu));
        near[j] |= _mm512_mask_cmpgt_epi32_mask(in, splat(16u), low);
      }
      const __m512 res = _mm512_sub_ps(y, _mm512_mul_ps(e2m1_round<T>(q), _mm512_set1_ps(scales[j])));
      acc[j] = _mm512_fmadd_ps(res, res, acc[j]);
    }
  });
  zero = _mm512_reduce_add_ps(z);
  for (std::size_t j = 0; j < K; ++j) est[j] = Exact || near[j] == 0 ? _mm512_reduce_add_ps(acc[j]) : -1.0f;
}

}  // namespace avx512_detail

namespace avx512_detail {
// The tier of avx2_detail::tier_block_sse and tier_block_sse_estimates: 16 lanes, the
// lanes past a block's end cleared by a masked subtraction.
struct tier16 {
  template <class F>
  BLOCKQ_ALWAYS_INLINE static void for_each(const float* x, std::size_t n, F&& f) {
    for_each16(x, n, [&](__m512 v, std::size_t, __mmask16 m) BLOCKQ_LAMBDA_INLINE {
      f(v, [m](__m512 a, __m512 b) BLOCKQ_LAMBDA_INLINE { return _mm512_maskz_sub_ps(m, a, b); });
    });
  }
  using sum = sum8z;
  template <tie_mode T>
  BLOCKQ_ALWAYS_INLINE static __m512 round(__m512 y) noexcept {
    return e2m1_round<T>(y);
  }
  template <tie_mode T, std::size_t K, bool Exact>
  BLOCKQ_ALWAYS_INLINE static void estimates(const float* x, std::size_t n, const float* rcp, const float* scales,
                                             float zero_below, float* est, float& zero) noexcept {
    e2m1_estimates<T, K, Exact>(x, n, rcp, scales, zero_below, est, zero);
  }
};
}  // namespace avx512_detail

// E2M1 over 16 lanes, the other elements as AVX2 (the scalar kernels).
template <class Element>
double block_sse(arch::avx512, const float* x, std::size_t n, float scale, tie_mode ties) noexcept {
  return avx2_detail::tier_block_sse<Element, avx512_detail::tier16>(x, n, scale, ties);
}
template <class Element>
void block_sse_estimates(arch::avx512, const float* x, std::size_t n, const float* scales, std::size_t k,
                         tie_mode ties, float zero_below, float* est, float& zero) noexcept {
  avx2_detail::tier_block_sse_estimates<Element, avx512_detail::tier16>(x, n, scales, k, ties, zero_below, est, zero);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX512
