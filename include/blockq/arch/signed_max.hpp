// SPDX-License-Identifier: Apache-2.0
// block_signed_max: the first element of largest magnitude of a block, with its sign (the
// rule signed_max of uniform_quantizer, ggml Q4_0's max); +0 for a block of zeros (of
// either sign) and NaN for a block with NaN or Inf. Scalar oracle and AVX2 kernel.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>
#endif

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

inline float block_signed_max(arch::scalar, const float* x, std::size_t n) noexcept {
  float m = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    if (!detail::is_finite(x[i])) return std::numeric_limits<float>::quiet_NaN();
    if (detail::abs_bits(x[i]) > detail::abs_bits(m)) m = x[i];
  }
  return m;
}

#if BLOCKQ_WITH_AVX2
// The largest absolute bits first (an unsigned integer maximum, NaN and Inf from 0x7F800000
// up), then the first lane that holds them.
inline float block_signed_max(arch::avx2, const float* x, std::size_t n) noexcept {
  const std::size_t n8 = n / 8 * 8;
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
  __m256i a = _mm256_setzero_si256();
  for (std::size_t i = 0; i < n8; i += 8)
    a = _mm256_max_epu32(a, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs_mask));
  __m128i h = _mm_max_epu32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0x4E));
  h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0xB1));
  std::uint32_t amax = static_cast<std::uint32_t>(_mm_cvtsi128_si32(h));
  for (std::size_t i = n8; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, x + i, 4);
    if ((u & 0x7FFFFFFFu) > amax) amax = u & 0x7FFFFFFFu;
  }
  if (amax >= 0x7F800000u) return std::numeric_limits<float>::quiet_NaN();
  if (amax == 0) return 0.0f;
  const __m256i want = _mm256_set1_epi32(static_cast<int>(amax));
  for (std::size_t i = 0; i < n8; i += 8) {
    const __m256i v = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs_mask);
    const int hit = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, want)));
    if (hit) return x[i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(hit)))];
  }
  for (std::size_t i = n8; i < n; ++i)
    if (detail::abs_bits(x[i]) == std::bit_cast<float>(amax)) return x[i];
  return 0.0f;  // not reached: some element holds amax
}
#endif

}  // namespace kernels
BLOCKQ_END_NAMESPACE
