// SPDX-License-Identifier: Apache-2.0
// AVX2 quad_form_estimate (arch/hessian_scalar.hpp has the contract; only bounds, so the
// bits need not match the scalar kernel's). For n a multiple of 8 up to 64 (the MX
// blocks): y = h r as a sum of columns (h is symmetric, so column k is row k,
// contiguous) times broadcast r[k], fused multiply-adds into two sets of n / 8 registers
// (even and odd k, to halve the dependency chains), then q = r . y and Σ r^2 in eight
// lanes each. Other n take the scalar kernel.
#pragma once

#include "blockq/arch/hessian_scalar.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

namespace avx2_detail {
template <std::size_t V>
BLOCKQ_ALWAYS_INLINE quad_estimate quad_form_estimate_v(const float* r, const float* h) noexcept {
  constexpr std::size_t n = 8 * V;
  __m256 ya[V], yb[V];
  for (std::size_t v = 0; v < V; ++v) ya[v] = yb[v] = _mm256_setzero_ps();
  for (std::size_t k = 0; k < n; k += 2) {
    const __m256 ra = _mm256_broadcast_ss(r + k), rb = _mm256_broadcast_ss(r + k + 1);
    const float* row = h + k * n;
    for (std::size_t v = 0; v < V; ++v) {
      ya[v] = _mm256_fmadd_ps(_mm256_loadu_ps(row + 8 * v), ra, ya[v]);
      yb[v] = _mm256_fmadd_ps(_mm256_loadu_ps(row + n + 8 * v), rb, yb[v]);
    }
  }
  __m256 q = _mm256_setzero_ps(), s = _mm256_setzero_ps();
  for (std::size_t v = 0; v < V; ++v) {
    const __m256 rv = _mm256_loadu_ps(r + 8 * v);
    q = _mm256_fmadd_ps(rv, _mm256_add_ps(ya[v], yb[v]), q);
    s = _mm256_fmadd_ps(rv, rv, s);
  }
  auto hsum = [](__m256 x) {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
  };
  return {hsum(q), hsum(s)};
}
}  // namespace avx2_detail

inline quad_estimate quad_form_estimate(arch::avx2, const float* r, const float* h, std::size_t n) noexcept {
  switch (n) {
    case 8: return avx2_detail::quad_form_estimate_v<1>(r, h);
    case 16: return avx2_detail::quad_form_estimate_v<2>(r, h);
    case 24: return avx2_detail::quad_form_estimate_v<3>(r, h);
    case 32: return avx2_detail::quad_form_estimate_v<4>(r, h);
    case 40: return avx2_detail::quad_form_estimate_v<5>(r, h);
    case 48: return avx2_detail::quad_form_estimate_v<6>(r, h);
    case 56: return avx2_detail::quad_form_estimate_v<7>(r, h);
    case 64: return avx2_detail::quad_form_estimate_v<8>(r, h);
    default: return quad_form_estimate(arch::scalar{}, r, h, n);
  }
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
#endif
