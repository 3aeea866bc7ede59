// SPDX-License-Identifier: Apache-2.0
// AVX-512 (F, BW, VL, DQ) fused MXFP4 loop, tag arch::avx512: amax_blocks for E2M1 codes
// with UE8M0 scales (rules ocp, ceil, floor), blocks of 32, OCP nibble layout and ggml's
// block_mxfp4 (kernels::ggml_mxfp4). Everything else (other layouts, block sizes, elements,
// the groups this loop declines) is AVX2's.
//
// Why 16 lanes pay here (README, SIMD: the MXFP4 ocp row) although Zen 4 splits 512-bit
// operations: the AVX2 loop spends most of its instructions working around the lack of masks
// and word permutes (keys through an add chain, a 19-entry table as two byte shuffles, the
// signs through a second pack chain and a blend); here a block of 32 is two vectors and
// about 20 instructions:
// - key = (|x| bits >> 21) + 1 where the bits below the tie's inclusive threshold bit are
//   not all zero (none for away; one vptestmd and a masked add; see avx2_detail::e2m1_key_bits for why
//   this key counts the thresholds passed), computed on the signed bits so that the sign
//   lands in bit 10 of the key (keys of finite |x| are at most 1020);
// - the two key vectors narrowed to 32 words in element order by one vpermt2w;
// - index = min(max(key - offset, 0), 18) (the offset is e2m1_offset + 4k for the block's
//   scale 2^k, as in avx2_detail::mx_group32), the magnitude code by vpermw from a 32-word
//   table, the sign or'ed in as bit 3;
// - the nibble pairs formed inside each dword (c0 | c1 << 4) and narrowed by vpmovdb (ggml:
//   the two halves or'ed, c[j] | c[j + 16] << 4, and narrowed by vpmovwb).
// Contract as everywhere: the bits of the arch/scalar.hpp oracle (tests/arch_avx512_test).
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

// The transposing reduction of 16 vectors of 16 lanes: lane j of the result is
// max(v[j] lanes) (Max: an unsigned or signed 32-bit maximum).
template <class Max>
BLOCKQ_ALWAYS_INLINE __m512i reduce16(const __m512i* v, Max max) noexcept {
  // Rounds 1 and 2 within 128-bit lanes: w[q] holds, in each of its four 128-bit lanes,
  // partial maxima of vectors 4q..4q+3.
  __m512i w[4];
  for (int q = 0; q < 4; ++q) {
    const __m512i* p = v + 4 * q;
    const __m512i a = max(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
    const __m512i b = max(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
    w[q] = max(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
  }
  // Rounds 3 and 4 across the 128-bit lanes: (lanes 0, 2) against (1, 3), twice.
  auto fold = [&](__m512i a, __m512i b) BLOCKQ_LAMBDA_INLINE {
    return max(_mm512_shuffle_i32x4(a, b, 0x88), _mm512_shuffle_i32x4(a, b, 0xDD));
  };
  return fold(fold(w[0], w[1]), fold(w[2], w[3]));
}

inline constexpr auto max_epu32 = [](__m512i a, __m512i b) BLOCKQ_LAMBDA_INLINE { return _mm512_max_epu32(a, b); };

// Maxima of the absolute bits of the 16 blocks of `block` (16 or 32) elements at x, lane j
// for block j, as unsigned integers (block_amax's order: NaN bits above +Inf).
BLOCKQ_ALWAYS_INLINE __m512i block_maxima16(const float* x, std::size_t block) noexcept {
  const __m512i abs = splat(0x7FFFFFFFu);
  __m512i v[16];
  for (std::size_t j = 0; j < 16; ++j) {
    const float* p = x + j * block;
    v[j] = _mm512_and_si512(_mm512_loadu_si512(p), abs);
    if (block == 32) v[j] = _mm512_max_epu32(v[j], _mm512_and_si512(_mm512_loadu_si512(p + 16), abs));
  }
  return reduce16(v, max_epu32);
}

// The bits below which a key counts a threshold that |x| only reaches (the ">" side of
// avx2_detail::e2m1_key_bits): none for away, the 21 low bits for toward_zero, and for even
// also bit 22 (set at the thresholds 0.75, 1.75, 3.5, whose lower neighbour has the odd code).
template <tie_mode T>
inline constexpr std::uint32_t e2m1_strict_bits = T == tie_mode::even ? 0x5FFFFFu : 0x1FFFFFu;

// Keys (avx2_detail::e2m1_key_bits of |x|, offset by e2m1_offset<T>'s convention) of 16
// finite floats with their sign in bit 10.
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m512i e2m1_signed_keys(__m512i b) noexcept {
  const __m512i k = _mm512_srli_epi32(b, 21);
  if constexpr (T == tie_mode::away) return k;
  return _mm512_mask_add_epi32(k, _mm512_test_epi32_mask(b, splat(e2m1_strict_bits<T>)), k, splat(1u));
}

// The 32 codes (one a word, in element order) of the 32 finite elements at x, whose block
// divides by 2^k, off = e2m1_offset<T> + 4k (off >= e2m1_offset<T> - 4 * 124 > 0: the shift
// case of avx2_detail::e2m1_plan).
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE __m512i e2m1_block32_codes(const float* x, __m512i off) noexcept {
  const __m512i b0 = _mm512_loadu_si512(x), b1 = _mm512_loadu_si512(x + 16);
  // The low words of the 32 dwords (b0's then b1's), in element order.
  alignas(64) static constexpr std::int16_t even[32] = {0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                                                        32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62};
  const __m512i even_words = _mm512_load_si512(even);
  const __m512i k = _mm512_permutex2var_epi16(e2m1_signed_keys<T>(b0), even_words, e2m1_signed_keys<T>(b1));
  // key - off saturates at 0 (below the first threshold: code 0) and min() at 18 (code 7,
  // which also takes the quotients that would overflow).
  const __m512i idx = _mm512_min_epu16(_mm512_subs_epu16(_mm512_and_si512(k, _mm512_set1_epi16(0x3FF)), off),
                                       _mm512_set1_epi16(18));
  alignas(64) static constexpr std::int16_t codes[32] = {0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5,
                                                         6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
  const __m512i table = _mm512_load_si512(codes);
  // code = magnitude | (sign bit 10 moved to bit 3); -0 and negative values below the first
  // threshold keep code 8, as the scalar encoder gives them.
  return _mm512_ternarylogic_epi32(_mm512_permutexvar_epi16(idx, table), _mm512_srli_epi16(k, 7),
                                   _mm512_set1_epi16(8), 0xF8);  // a | (b & c)
}

// The 16 bytes of a block's codes c (e2m1_block32_codes) in layout L: nibbles (element 2j
// low, 2j + 1 high) or ggml_mxfp4's qs (qs[j] = c[j] | c[j + 16] << 4, zero as code 0).
template <code_layout L>
BLOCKQ_ALWAYS_INLINE __m128i e2m1_block32_bytes(__m512i c) noexcept {
  if constexpr (L == code_layout::nibbles) {
    // Dword j holds c[2j] | c[2j+1] << 16; its low byte becomes c[2j] | c[2j+1] << 4.
    return _mm512_cvtepi32_epi8(_mm512_or_si512(c, _mm512_srli_epi32(c, 12)));
  } else {
    c = _mm512_maskz_mov_epi16(_mm512_cmpneq_epi16_mask(c, _mm512_set1_epi16(8)), c);
    const __m256i lo = _mm512_castsi512_si256(c), hi = _mm512_extracti64x4_epi64(c, 1);
    return _mm256_cvtepi16_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
  }
}

// One group of 16 blocks of 32 (512 elements) when all its UE8M0 scales are 2^k with
// k >= -124 (codes >= 3) and no element is NaN or Inf; false (nothing written) otherwise.
// Layout nibbles: codes to out, scales to scales; ggml_mxfp4: 17 bytes a block at out.
template <code_layout L, tie_mode T, bool Stream, class C>
BLOCKQ_ALWAYS_INLINE bool mx_group512(const float* x, const C& code_of, std::uint8_t* out,
                                      std::uint8_t* scales) noexcept {
  const __m512i maxima = block_maxima16(x, 32);
  if (_mm512_cmpgt_epu32_mask(maxima, splat(0x7F7FFFFFu)) != 0) return false;
  __m256i lo, hi;  // the codes of blocks 0..7 and 8..15, through the AVX2 scale rule
  if (!avx2_detail::ue8m0_codes8(_mm512_castsi512_si256(maxima), code_of, lo) ||
      !avx2_detail::ue8m0_codes8(_mm512_extracti64x4_epi64(maxima, 1), code_of, hi))
    return false;
  const __m512i code = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  if (_mm512_cmplt_epi32_mask(code, splat(3u)) != 0) return false;
  alignas(16) std::uint8_t sc[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(L == code_layout::nibbles ? scales : sc), _mm512_cvtepi32_epi8(code));
  alignas(32) std::int16_t off[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(off),
                     _mm512_cvtepi32_epi16(_mm512_add_epi32(_mm512_slli_epi32(code, 2),
                                                            _mm512_set1_epi32(avx2_detail::e2m1_offset<T> - 4 * 127))));
  for (int j = 0; j < 16; ++j) {
    const __m128i v = e2m1_block32_bytes<L>(e2m1_block32_codes<T>(x + 32 * j, _mm512_set1_epi16(off[j])));
    if constexpr (L == code_layout::ggml_mxfp4) {
      out[17 * j] = sc[j];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 17 * j + 1), v);
    } else if constexpr (Stream)
      _mm_stream_si128(reinterpret_cast<__m128i*>(out + 16 * j), v);
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * j), v);
  }
  return true;
}

}  // namespace avx512_detail

namespace avx512_detail {
// The MXFP4 loop over a tensor (see amax_blocks below), streamed or not: the groups of 512
// elements through mx_group512, what it declines and the last n % 512 through the AVX2 loop.
template <code_layout L, tie_mode T, bool Stream, class CodeOf, class DivisorOf, class Scale>
void mx_loop512(const float* x, std::size_t n, CodeOf& code_of, DivisorOf& divisor_of, std::uint8_t* out,
                Scale* scales) noexcept {
  constexpr bool ggml = L == code_layout::ggml_mxfp4;
  // Where group i / 512 writes (ggml: no separate scales).
  auto out_of = [&](std::size_t i) { return ggml ? out + i / 32 * 17 : out + i / 2; };
  auto scales_of = [&](std::size_t i) { return ggml ? scales : scales + i / 32; };
  auto avx2 = [&](std::size_t i, std::size_t len) {
    amax_blocks<e2m1, L>(arch::avx2{}, x + i, len, 32, T, code_of, divisor_of, out_of(i), scales_of(i));
  };
  std::size_t i = 0;
  // The groups up to `end`, with the software prefetch of the AVX2 loop where `prefetch`
  // holds (streamed inputs choose it at run time, as AVX2's do: on Zen 5 this loop held 0.52
  // of the read roofline at 256 MiB without it).
  auto groups = [&](std::size_t end, auto prefetch) BLOCKQ_LAMBDA_INLINE {
    for (; i + 512 <= end; i += 512) {
      if constexpr (decltype(prefetch)::value) avx2_detail::prefetch_ahead(x + i, 512);
      if (!mx_group512<L, T, Stream>(x + i, code_of, out_of(i), scales_of(i))) avx2(i, 512);
    }
  };
  avx2_detail::run_groups<Stream>(i, n, 512, groups);
  if (i < n) avx2(i, n - i);
}
}  // namespace avx512_detail

// MXFP4 (E2M1, UE8M0 rules ocp / ceil / floor), blocks of 32, nibbles or ggml: groups of 16 blocks
// through avx512_detail::mx_group512; the groups it declines and the last n % 512 elements
// through the AVX2 loop (which has the NaN, Inf, subnormal-scale and zero-block paths).
// Non-temporal stores from 32 MiB of input on, as the AVX2 loop decides; that instantiation
// runs out of line (avx2_detail::stream_dispatch says why).
template <class Element, code_layout L, class Scale, class CodeOf, class DivisorOf>
void amax_blocks(arch::avx512, const float* x, std::size_t n, std::size_t block, tie_mode ties, CodeOf&& code_of,
                 DivisorOf&& divisor_of, std::uint8_t* out, Scale* scales) noexcept {
  constexpr bool ggml = L == code_layout::ggml_mxfp4;
  if constexpr (std::is_same_v<Element, e2m1> && (L == code_layout::nibbles || ggml) &&
                requires { std::decay_t<CodeOf>::ue8m0_amax_rule; }) {
    if (block == 32) {
      avx2_detail::with_ties(ties, [&](auto t) {
        auto run = [&](auto stream) {
          avx512_detail::mx_loop512<L, decltype(t)::value, decltype(stream)::value>(x, n, code_of, divisor_of, out, scales);
        };
        if (ggml)  // (ggml's 17-byte blocks are not 16-byte aligned: never streamed)
          run(std::false_type{});
        else
          avx2_detail::stream_dispatch(n, out, run);
      });
      return;
    }
  }
  amax_blocks<Element, L>(arch::avx2{}, x, n, block, ties, code_of, divisor_of, out, scales);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX512
