// SPDX-License-Identifier: Apache-2.0
// AVX2 quad_form_estimate (arch/hessian_scalar.hpp has the packed layout and the
// contract; only bounds, so the bits need not match the scalar kernel's). For n = 8, 16,
// 24, 32 (the MX blocks): y = Σ_k column_k r[k], column k's 8 (k / 8 + 1) rows times
// broadcast r[k] by fused multiply-adds, fully unrolled; the register of rows 8v..8v+7
// takes 32 - 8v updates, spread over 4, 3, 2, 2 accumulators (v = 0, 1, 2, 3) so that no
// dependency chain is longer than 8 (the 80 multiply-adds of n = 32 are then bound by
// throughput, not latency). Then q = r . y and Σ r^2 in eight lanes each. Other n take the
// scalar kernel.
#pragma once

#include "blockq/arch/avx2.hpp"
#include "blockq/arch/hessian_scalar.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

#include <type_traits>
#include <utility>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

namespace avx2_detail {
constexpr std::size_t quad_sets(std::size_t v) noexcept { return v == 0 ? 4 : v == 1 ? 3 : 2; }

template <std::size_t V>
BLOCKQ_ALWAYS_INLINE quad_estimate quad_form_estimate_v(const float* r, const float* p) noexcept {
  constexpr std::size_t n = 8 * V;
  __m256 acc[V][4];
  for (std::size_t v = 0; v < V; ++v)
    for (std::size_t s = 0; s < 4; ++s) acc[v][s] = _mm256_setzero_ps();
  auto column = [&]<std::size_t K>(std::integral_constant<std::size_t, K>) BLOCKQ_LAMBDA_INLINE {
    const __m256 rk = _mm256_broadcast_ss(r + K);
    const float* col = p + quad_packed_offset(K);
    [&]<std::size_t... Vs>(std::index_sequence<Vs...>) BLOCKQ_LAMBDA_INLINE {
      ((acc[Vs][K % quad_sets(Vs)] =
            _mm256_fmadd_ps(_mm256_loadu_ps(col + 8 * Vs), rk, acc[Vs][K % quad_sets(Vs)])),
       ...);
    }(std::make_index_sequence<K / 8 + 1>{});
  };
  [&]<std::size_t... Ks>(std::index_sequence<Ks...>) BLOCKQ_LAMBDA_INLINE {
    (column(std::integral_constant<std::size_t, Ks>{}), ...);
  }(std::make_index_sequence<n>{});
  __m256 q = _mm256_setzero_ps(), s = _mm256_setzero_ps();
  for (std::size_t v = 0; v < V; ++v) {
    __m256 y = acc[v][0];
    for (std::size_t j = 1; j < quad_sets(v); ++j) y = _mm256_add_ps(y, acc[v][j]);
    const __m256 rv = _mm256_loadu_ps(r + 8 * v);
    q = _mm256_fmadd_ps(rv, y, q);
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

inline quad_estimate quad_form_estimate(arch::avx2, const float* r, const float* p, std::size_t n) noexcept {
  switch (n) {
    case 8: return avx2_detail::quad_form_estimate_v<1>(r, p);
    case 16: return avx2_detail::quad_form_estimate_v<2>(r, p);
    case 24: return avx2_detail::quad_form_estimate_v<3>(r, p);
    case 32: return avx2_detail::quad_form_estimate_v<4>(r, p);
    default: return quad_form_estimate(arch::scalar{}, r, p, n);
  }
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
#endif
