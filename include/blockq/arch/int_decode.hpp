// SPDX-License-Identifier: Apache-2.0
// int_decode_blocks: the whole-tensor dequantization of integer codes (uniform_quantizer's
// dequantize), out[i] = q * scales[b] + mins[b] (min 0 without mins), as decode_int per
// block. Every tag has it: the generic loop calls the tag's decode_int block by block; AVX2
// and AVX-512 run one loop over the tensor (no per-block call and tail handling for blocks
// whose length is a multiple of the vector) and, from 32 MiB of output on, write it with
// non-temporal stores, which skip reading the output's cache lines before writing them
// (the fused quantize loops do the same with their codes).
//
// Same bits as decode_int: q * scale + min with two roundings (the project builds with
// -ffp-contract=off), and the 8 or 16 lanes where a level overflows take the scalar
// int_level.
#pragma once

#include <cstddef>
#include <cstdint>

#include "blockq/arch.hpp"
#include "blockq/arch/generic.hpp"
#include "blockq/formats/integer.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>
#endif

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

// mins: one per block, or nullptr for min 0 (symmetric codes).
template <generic_block_loops Arch>
void int_decode_blocks(Arch, const std::uint8_t* codes, const float* scales, const float* mins, std::size_t n,
                       std::size_t block, int_format fmt, float* out) noexcept {
  for (std::size_t b = 0, begin = 0; begin < n; ++b, begin += block)
    decode_int(Arch{}, codes + begin, n - begin < block ? n - begin : block, scales[b], mins ? mins[b] : 0.0f, fmt,
               out + begin);
}

#if BLOCKQ_WITH_AVX2
namespace avx2_detail {
// Output of 32 MiB and more, 32-byte aligned, blocks of whole vectors of 8 (so that every
// vector store is aligned): non-temporal stores.
inline bool stream_output(std::size_t n, std::size_t block, const float* out, std::size_t lanes) noexcept {
  return n * sizeof(float) >= (std::size_t{32} << 20) && block % lanes == 0 &&
         reinterpret_cast<std::uintptr_t>(out) % (lanes * sizeof(float)) == 0;
}
}  // namespace avx2_detail

inline void int_decode_blocks(arch::avx2, const std::uint8_t* codes, const float* scales, const float* mins,
                              std::size_t n, std::size_t block, int_format fmt, float* out) noexcept {
  using namespace avx2_detail;
  auto run = [&](auto stream) BLOCKQ_LAMBDA_INLINE {
    for (std::size_t b = 0, begin = 0; begin < n; ++b, begin += block) {
      const std::size_t len = n - begin < block ? n - begin : block;
      const float scale = scales[b], min = mins ? mins[b] : 0.0f;
      const __m256 s = _mm256_set1_ps(scale), mn = _mm256_set1_ps(min);
      const std::uint8_t* c = codes + begin;
      float* o = out + begin;
      std::size_t i = 0;
      for (; i + 8 <= len; i += 8) {
        const __m256i q = int_from_code(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + i))), fmt);
        const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q), s), mn);  // two roundings
        if (any_inf(v)) [[unlikely]] {
          decode_int(arch::scalar{}, c + i, 8, scale, min, fmt, o + i);
        } else if constexpr (decltype(stream)::value) {
          _mm256_stream_ps(o + i, v);
        } else {
          _mm256_storeu_ps(o + i, v);
        }
      }
      if (i < len) decode_int(arch::scalar{}, c + i, len - i, scale, min, fmt, o + i);
    }
    if constexpr (decltype(stream)::value) _mm_sfence();
  };
  if (stream_output(n, block, out, 8))
    run(std::true_type{});
  else
    run(std::false_type{});
}
#endif

#if BLOCKQ_WITH_AVX512
// 16 lanes (avx512_detail::decode_int16), the lanes past a block's end masked.
inline void int_decode_blocks(arch::avx512, const std::uint8_t* codes, const float* scales, const float* mins,
                              std::size_t n, std::size_t block, int_format fmt, float* out) noexcept {
  auto run = [&](auto stream) BLOCKQ_LAMBDA_INLINE {
    for (std::size_t b = 0, begin = 0; begin < n; ++b, begin += block) {
      const std::size_t len = n - begin < block ? n - begin : block;
      avx512_detail::decode_int16<decltype(stream)::value>(codes + begin, len, scales[b], mins ? mins[b] : 0.0f, fmt,
                                                           out + begin);
    }
    if constexpr (decltype(stream)::value) _mm_sfence();
  };
  if (avx2_detail::stream_output(n, block, out, 16))
    run(std::true_type{});
  else
    run(std::false_type{});
}
#endif

}  // namespace kernels
BLOCKQ_END_NAMESPACE
