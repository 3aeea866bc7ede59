// SPDX-License-Identifier: Apache-2.0
// AVX-512 (F, BW, VL, DQ) E2M1 dequantization, tag arch::avx512: decode_blocks for E2M1
// codes (MXFP4, NVFP4, FP4), one code a byte or nibble-packed, blocks of a multiple of 16.
// Other elements and block sizes and the last n % block elements are AVX2's. Outputs of
// 32 MiB and more (16-byte aligned, blocks of 16 or of a multiple of 32) choose at run time
// between these ordinary stores and AVX2's non-temporal loop (avx2_detail::tuned_choice; a
// 512-bit non-temporal store would need 64-byte alignment).
//
// Why 16 lanes pay here although Zen 4 splits 512-bit operations: a 16-entry vpermps table
// holds all sixteen codes, sign included, so a block's table is the sixteen E2M1 values
// times the block's scale (one multiply a block) and 16 elements are a zero extension, one
// vpermps and one store; AVX2's 8-entry table needs the sign as a shift, an and and an or,
// and a multiply per 8 elements (about three times the instructions).
// Bit identity: table[c] = decode(c) * scale is the scalar kernel's product for code c.
#pragma once

#include "blockq/arch/avx512.hpp"

#if BLOCKQ_WITH_AVX512
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace avx512_detail {

// decode(c) * scale for the codes c = 0..15 (8..15: the negatives, 8 is -0).
BLOCKQ_ALWAYS_INLINE __m512 e2m1_table(float scale) noexcept {
  const __m512 grid = _mm512_setr_ps(0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,  //
                                     -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f);
  return _mm512_mul_ps(grid, _mm512_set1_ps(scale));
}

// 16 bytes whose low nibbles are the codes of 16 elements in order. Packed: 8 bytes, the
// low nibble of byte j element 2j, the high one 2j + 1; interleaving byte j with byte j of
// the 16-bit shift right by 4 puts each in a low nibble (vpermps reads only the low 4 bits
// of an index, so the bits above need no mask).
template <bool Packed>
BLOCKQ_ALWAYS_INLINE __m128i e2m1_codes16(const std::uint8_t* c) noexcept {
  if constexpr (Packed) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(c));
    return _mm_unpacklo_epi8(b, _mm_srli_epi16(b, 4));
  } else {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
  }
}

BLOCKQ_ALWAYS_INLINE void e2m1_store16(__m128i codes, __m512 table, float* o) noexcept {
  _mm512_storeu_ps(o, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(codes), table));
}

// The whole blocks of n (block a multiple of 16); returns how many elements they hold.
template <bool Packed, class Scale, class DivisorOf>
std::size_t e2m1_decode_blocks(const std::uint8_t* codes, const Scale* scales, std::size_t n, std::size_t block,
                               DivisorOf& divisor_of, float* out) noexcept {
  constexpr std::size_t per = Packed ? 2 : 1;  // elements a code byte
  std::size_t i = 0;
  if (block == 16) {
    for (std::size_t b = 0; i + 16 <= n; i += 16, ++b)
      e2m1_store16(e2m1_codes16<Packed>(codes + i / per), e2m1_table(divisor_of(scales[b])), out + i);
    return i;
  }
  for (std::size_t b = 0; i + block <= n; i += block, ++b) {
    const __m512 t = e2m1_table(divisor_of(scales[b]));
    std::size_t j = i;
    if constexpr (Packed) {
      // 32 elements from one 16-byte load.
      for (; j + 32 <= i + block; j += 32) {
        const __m128i p = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + j / 2));
        const __m128i h = _mm_srli_epi16(p, 4);
        e2m1_store16(_mm_unpacklo_epi8(p, h), t, out + j);
        e2m1_store16(_mm_unpackhi_epi8(p, h), t, out + j + 16);
      }
    }
    for (; j < i + block; j += 16) e2m1_store16(e2m1_codes16<Packed>(codes + j / per), t, out + j);
  }
  return i;
}

}  // namespace avx512_detail

template <class Element, bool Packed, class Scale, class DivisorOf>
void decode_blocks(arch::avx512, const std::uint8_t* codes, const Scale* scales, std::size_t n, std::size_t block,
                   DivisorOf&& divisor_of, float* out) noexcept {
  std::size_t done = 0;
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (block != 0 && block % 16 == 0) {
      const bool tuned = avx2_detail::streams(n, out) && (block == 16 || block % 32 == 0);
      auto decode_tuned = [&](auto& divisor) {
        return avx2_detail::e2m1_decode_tuned<Packed>(
            codes, scales, n, block, divisor, out, [](auto... a) { return avx512_detail::e2m1_decode_blocks<Packed>(a...); });
      };
      bool tabled = false;
      if constexpr (std::is_same_v<Scale, std::uint8_t>) {
        // Byte scales (UE8M0, E4M3): the divisors of all 256 bytes first where there are many
        // more blocks than that, so that a block's divisor is one load (NVFP4's E4M3 decode
        // times the tensor scale costs about as much as decoding its 16 elements).
        if (n / block >= 1024) {
          alignas(64) float lut[256];
          for (unsigned c = 0; c < 256; ++c) lut[c] = divisor_of(static_cast<std::uint8_t>(c));
          auto looked_up = [&lut](std::uint8_t c) { return lut[c]; };
          done = tuned ? decode_tuned(looked_up)
                       : avx512_detail::e2m1_decode_blocks<Packed>(codes, scales, n, block, looked_up, out);
          tabled = true;
        }
      }
      if (!tabled)
        done = tuned ? decode_tuned(divisor_of)
                     : avx512_detail::e2m1_decode_blocks<Packed>(codes, scales, n, block, divisor_of, out);
    }
  }
  if (done < n)
    decode_blocks<Element, Packed>(arch::avx2{}, codes + (Packed ? done / 2 : done), scales + done / block, n - done,
                                   block, divisor_of, out + done);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX512
