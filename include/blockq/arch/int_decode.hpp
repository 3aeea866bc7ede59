// SPDX-License-Identifier: Apache-2.0
// int_decode_blocks: the whole-tensor dequantization of integer codes (uniform_quantizer's
// dequantize), out[i] = q * scales[b] + mins[b] (min 0 without mins), as decode_int per
// block. Every tag has it: the generic loop calls the tag's decode_int block by block; AVX2
// (and AVX-512, which inherits it: a 16-lane loop measured 4-10 % slower on Zen 4 and no
// steadier win on Zen 5, see arch/avx512_int.hpp) runs one
// loop over the tensor, inlined, with the scale and min broadcast once a block (10-18 % more
// elements/s than the per-block decode_int calls at 64 KiB and 8 MiB).
// Non-temporal stores from 32 MiB of output on did not pay at 256 MiB (A/B within the noise,
// either way), so the output is written as usual.
//
// Same bits as decode_int: q * scale + min with two roundings (the project builds with
// -ffp-contract=off), and the 8 lanes where a level overflows take the scalar
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
inline void int_decode_blocks(arch::avx2, const std::uint8_t* codes, const float* scales, const float* mins,
                              std::size_t n, std::size_t block, int_format fmt, float* out) noexcept {
  using namespace avx2_detail;
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
      if (any_inf(v)) [[unlikely]]
        decode_int(arch::scalar{}, c + i, 8, scale, min, fmt, o + i);
      else
        _mm256_storeu_ps(o + i, v);
    }
    if (i < len) decode_int(arch::scalar{}, c + i, len - i, scale, min, fmt, o + i);
  }
}
#endif


}  // namespace kernels
BLOCKQ_END_NAMESPACE
