// SPDX-License-Identifier: Apache-2.0
// block_signed_max: the first element of largest magnitude of a block, with its sign (the
// rule signed_max of uniform_quantizer, ggml Q4_0's max); +0 for a block of zeros (of
// either sign) and NaN for a block with NaN or Inf. Scalar oracle and AVX2 kernel.
//
// int_signed_max_blocks (AVX2 here, every other tag in arch/generic.hpp): the whole rule
// over a tensor, scales[b] = m / qmin and the integer codes at that scale, as
// loops::int_amax_blocks computes them per block from block_signed_max.
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

#include "blockq/arch/avx2.hpp"
#include "blockq/arch/ggml_avx2.hpp"
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
namespace avx2_detail {
// The signed maxima m of the eight blocks of `block` (16 or 32) elements at x as float
// bits, from integer maxima of the raw bits as ggml_avx2::q4_0_scales: the signed maximum
// P holds the largest positive element (negative when there is none), the unsigned maximum
// N the negative element of largest magnitude (sign bit clear when there is none). Lanes
// that the vector order cannot decide are set in `slow`: NaN or Inf (magnitudes from
// 0x7F800000 up) and +a beside -a for the largest magnitude a (which came first decides).
// A block of zeros of either sign gives +0, as the scalar loop.
BLOCKQ_ALWAYS_INLINE __m256i signed_maxima8(const float* x, std::size_t block, int& slow) noexcept {
  __m256 ps[8], ns[8];
  for (std::size_t b = 0; b < 8; ++b) {
    const __m256i* p = reinterpret_cast<const __m256i*>(x + b * block);
    __m256i sp = _mm256_max_epi32(_mm256_loadu_si256(p), _mm256_loadu_si256(p + 1));
    __m256i up = _mm256_max_epu32(_mm256_loadu_si256(p), _mm256_loadu_si256(p + 1));
    if (block == 32) {
      const __m256i v2 = _mm256_loadu_si256(p + 2), v3 = _mm256_loadu_si256(p + 3);
      sp = _mm256_max_epi32(sp, _mm256_max_epi32(v2, v3));
      up = _mm256_max_epu32(up, _mm256_max_epu32(v2, v3));
    }
    ps[b] = _mm256_castsi256_ps(sp);
    ns[b] = _mm256_castsi256_ps(up);
  }
  const __m256i pos = _mm256_castps_si256(ggml_avx2::reduce8(ps, ggml_avx2::max_epi32));
  const __m256i neg_bits = _mm256_castps_si256(ggml_avx2::reduce8(ns, ggml_avx2::max_epu32));
  const __m256i neg = _mm256_or_si256(_mm256_and_si256(neg_bits, splat(0x7FFFFFFFu)),
                                      _mm256_cmpgt_epi32(_mm256_setzero_si256(), ~neg_bits));
  const __m256i amax = _mm256_max_epi32(pos, neg);
  const __m256i zero_block = _mm256_cmpeq_epi32(amax, _mm256_setzero_si256());
  const __m256i tie = _mm256_andnot_si256(zero_block, _mm256_cmpeq_epi32(pos, neg));
  slow = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_or_si256(_mm256_cmpgt_epi32(amax, splat(0x7F7FFFFFu)), tie)));
  return _mm256_andnot_si256(zero_block, _mm256_blendv_epi8(neg_bits, pos, _mm256_cmpgt_epi32(pos, neg)));
}
}  // namespace avx2_detail

// Fused over groups of 8 blocks of 16 or 32: the signed maxima and the eight divisions at
// once, the codes by the int absmax loop's int_codes (clamped: the other sign of the
// largest magnitude goes one past qmax); the blocks the vector pass cannot decide, zero
// scales and the tail go the per-block way.
namespace avx2_detail {
template <bool Stream>
void int_signed_max_blocks8(const float* x, std::size_t n, std::size_t block, int_format fmt, std::uint8_t* codes,
                            float* scales) noexcept {
  const signed_quotient_scale scale_of{static_cast<float>(fmt.qmin())};
  const auto rest = int_blocks_rest(x, block, fmt, scale_of, codes, scales,
                                    [](const float* p, std::size_t m) { return block_signed_max(arch::avx2{}, p, m); });
  const __m256 vqmin = _mm256_set1_ps(scale_of.qmin), vqmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  int_block_groups<8, Stream>(x, n, block, [&](std::size_t i, std::size_t b) BLOCKQ_LAMBDA_INLINE {
    int slow = 0;
    const __m256i m = signed_maxima8(x + i, block, slow);
    alignas(32) float s[8];
    _mm256_store_ps(s, _mm256_div_ps(_mm256_castsi256_ps(m), vqmin));
    std::memcpy(scales + b, s, sizeof s);
    for (std::size_t j = 0; j < 8; ++j) {
      if (((slow >> j) & 1) != 0 || !(s[j] != 0.0f)) {
        rest(b + j, i + j * block, block);
        continue;
      }
      with_divider(s[j], [&](auto div) BLOCKQ_LAMBDA_INLINE {
        int_codes<true, Stream>(x + i + j * block, block, div, vqmin, vqmax, fmt, codes + i + j * block);
      });
    }
  }, rest);
}
}  // namespace avx2_detail

inline void int_signed_max_blocks(arch::avx2, const float* x, std::size_t n, std::size_t block, int_format fmt,
                                  std::uint8_t* codes, float* scales) noexcept {
  avx2_detail::stream_dispatch(n, codes, [&](auto stream) {
    avx2_detail::int_signed_max_blocks8<decltype(stream)::value>(x, n, block, fmt, codes, scales);
  });
}
#endif

}  // namespace kernels
BLOCKQ_END_NAMESPACE
