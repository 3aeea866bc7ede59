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

namespace avx2_detail {
// The in-register stages of hadamard_blocks_vector, 8 floats a register.
struct hadamard_avx2 {
  using vec = __m256;
  static __m256 low_stages(__m256 v) noexcept {
    __m256 w = _mm256_permute_ps(v, 0xB1);  // h = 1: lanes swapped in pairs
    v = _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xAA);
    w = _mm256_permute_ps(v, 0x4E);  // h = 2: pairs of lanes swapped
    v = _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xCC);
    w = _mm256_permute2f128_ps(v, v, 0x01);  // h = 4: the 128-bit halves swapped
    return _mm256_blend_ps(_mm256_add_ps(v, w), _mm256_sub_ps(w, v), 0xF0);
  }
};
}  // namespace avx2_detail

inline void hadamard_blocks(arch::avx2, float* x, std::size_t len, std::size_t n, const float* signs, float scale,
                            bool inverse) noexcept {
  hadamard_blocks_vector<avx2_detail::hadamard_avx2>(x, len, n, signs, scale, inverse);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
#endif
