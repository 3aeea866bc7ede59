// SPDX-License-Identifier: Apache-2.0
// AVX2 block Walsh–Hadamard kernel (float; double and blocks below 8 use the scalar oracle).
// The stages h = 1, 2, 4 run inside one register: the partner of every lane comes from a
// permute, and a blend keeps the sum on the low lane of a pair (self + partner =
// x[j] + x[j + h]) and the difference on the high lane (partner - self = x[j] - x[j + h]):
// the oracle's operations with its operands in its order, so every lane holds its bits.
// The stages h >= 8 are plain vector butterflies between registers.
#pragma once

#include "blockq/arch/hadamard_scalar.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

inline void hadamard_blocks(arch::avx2, float* x, std::size_t len, std::size_t n, const float* signs, float scale,
                            bool inverse) noexcept {
  if (n < 8) {
    hadamard_blocks(arch::scalar{}, x, len, n, signs, scale, inverse);
    return;
  }
  const __m256 vs = _mm256_set1_ps(scale);
  for (std::size_t b = 0; b + n <= len; b += n) {
    float* p = x + b;
    for (std::size_t i = 0; i < n; i += 8) {
      __m256 v = _mm256_loadu_ps(p + i);
      if (signs && !inverse) v = _mm256_mul_ps(v, _mm256_loadu_ps(signs + i));
      __m256 w = _mm256_permute_ps(v, 0xB1);  // h = 1: lanes swapped in pairs
      v = _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xAA);
      w = _mm256_permute_ps(v, 0x4E);  // h = 2: pairs of lanes swapped
      v = _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xCC);
      w = _mm256_permute2f128_ps(v, v, 0x01);  // h = 4: the 128-bit halves swapped
      v = _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xF0);
      _mm256_storeu_ps(p + i, v);
    }
    for (std::size_t h = 8; h < n; h <<= 1)
      for (std::size_t i = 0; i < n; i += 2 * h)
        for (std::size_t j = i; j < i + h; j += 8) {
          const __m256 a = _mm256_loadu_ps(p + j), c = _mm256_loadu_ps(p + j + h);
          _mm256_storeu_ps(p + j, _mm256_add_ps(a, c));
          _mm256_storeu_ps(p + j + h, _mm256_sub_ps(a, c));
        }
    for (std::size_t i = 0; i < n; i += 8) {
      __m256 v = _mm256_mul_ps(_mm256_loadu_ps(p + i), vs);
      if (signs && inverse) v = _mm256_mul_ps(v, _mm256_loadu_ps(signs + i));
      _mm256_storeu_ps(p + i, v);
    }
  }
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
#endif
