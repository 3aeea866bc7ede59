// SPDX-License-Identifier: Apache-2.0
// AVX-512 (F, BW, VL, DQ) integer encoders, tag arch::avx512, chosen at run time by the CPU:
// int_amax_blocks (rule absmax: scale fl(amax / q), codes at that scale) and
// int_signed_max_blocks (rule signed_max: scale m / qmin) fused over groups of 16 blocks of
// 16 or 32 elements: the 16 block maxima by one transposing reduction (lane j for block j),
// the 16 scales by one division, then each block's codes from one or two vectors of 16
// (x / s rounded by vcvtps2dq, narrowed by vpmovdb).
// Which loops run: these 16-lane ones where avx512_detail::wide_int_loops (decided once a
// process by cpuid), AVX2's otherwise. On AMD family 19h (Zen 4), which executes a 512-bit
// operation as two 256-bit halves, they ran slower than AVX2's (absmax 11 % slower in cache,
// 19 % at 256 MiB); on Zen 5 (family 1Ah, full-width units) int4 absmax runs 10.3-10.7 G/s
// at 64 KiB against AVX2's 6.3-6.5, and streamed (32 MiB on, with the frame's run-time
// software prefetch) 0.87-1.05 of the read roofline at 256 MiB (README, Benchmarks). The 16-lane decode_int of the same round (16 lanes a step) measured no
// steadier win on Zen 5 (+2 to +25 % at 64 KiB from one build to the next, half the
// roofline at 256 MiB), so integer decoding stays AVX2's. Both ways give the same bits (the
// scalar oracle's); tests/arch_avx512_test.cpp checks the 16-lane loops directly, whatever
// the CPU chooses, and the choice against /proc/cpuinfo.
// Everything these decline goes the AVX2 way, which goes on to the per-block path exactly
// where the AVX2 loops do: a group with a NaN or Inf is handed whole to the AVX2 loop (its
// groups of 8 find the same blocks); a block whose scale is zero, subnormal-overflowing or
// not finite, and a signed_max block whose largest magnitude comes with both signs, runs
// avx2_detail::int_blocks_rest; other block sizes and the last n % (16 block) elements run
// the AVX2 loop. The loops' frame (groups, non-temporal stores: avx2_detail::int_block_groups),
// the per-block way (int_blocks_rest) and the dividers (with_divider over f32x16) are the
// AVX2 loops' own, written once for both group widths.
//
// Why the codes are the same bits as encode_int's (arch/scalar.hpp, the oracle): x / s is
// the same correctly rounded quotient (a multiplication only where exact_reciprocal says it
// is exact), vcvtps2dq rounds half to even as round_half_even does, and the clamp to
// [qmin, qmax] happens before the conversion (absmax with a normal scale needs none: see
// the AVX2 int_amax_blocks). A clamped q fits a byte (-128..255), so vpmovdb's truncation
// keeps its low 8 bits, which the mask then cuts to the format's b bits (to_code).
// Contract as everywhere: the bits of the arch/scalar.hpp oracle (tests/arch_avx512_test).
#pragma once

#include "blockq/arch/avx2.hpp"
#include "blockq/arch/avx512.hpp"
#include "blockq/arch/avx512_e2m1.hpp"
#include "blockq/arch/signed_max.hpp"

#if BLOCKQ_WITH_AVX512
#include <cpuid.h>
#include <immintrin.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace avx512_detail {

// Whether this CPU runs the 16-lane integer loops below (see the header comment): every
// AVX-512 CPU but AMD's family 19h (Zen 4). Read once (cpuid), then a load.
inline bool wide_int_loops() noexcept {
  static const bool wide = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(0, &a, &b, &c, &d) == 0) return true;
    const bool amd = b == 0x68747541u && d == 0x69746E65u && c == 0x444D4163u;  // "AuthenticAMD"
    if (!amd || __get_cpuid(1, &a, &b, &c, &d) == 0) return true;
    const unsigned base = (a >> 8) & 0xFu;
    const unsigned family = base == 0xFu ? base + ((a >> 20) & 0xFFu) : base;
    return family != 0x19u;
  }();
  return wide;
}

inline constexpr auto max_epi32 = [](__m512i a, __m512i b) BLOCKQ_LAMBDA_INLINE { return _mm512_max_epi32(a, b); };

// The signed maxima m of the 16 blocks of `block` (16 or 32) at x as float bits, as
// avx2_detail::signed_maxima8 (the reasoning is there): P, the signed maximum of the raw
// bits, holds the largest positive element; N, the unsigned maximum, the negative element
// of largest magnitude. Lanes set in `slow`: NaN or Inf, and +a beside -a for the largest
// magnitude a. A block of zeros of either sign gives +0.
BLOCKQ_ALWAYS_INLINE __m512i signed_maxima16(const float* x, std::size_t block, __mmask16& slow) noexcept {
  __m512i ps[16], ns[16];
  for (std::size_t j = 0; j < 16; ++j) {
    const float* p = x + j * block;
    const __m512i a = _mm512_loadu_si512(p);
    if (block == 32) {
      const __m512i b = _mm512_loadu_si512(p + 16);
      ps[j] = _mm512_max_epi32(a, b);
      ns[j] = _mm512_max_epu32(a, b);
    } else {
      ps[j] = ns[j] = a;
    }
  }
  const __m512i pos = reduce16(ps, max_epi32);
  const __m512i neg_bits = reduce16(ns, max_epu32);
  // The magnitude of N, or -1 where N has no sign (no negative element: it cannot win).
  const __m512i neg = _mm512_mask_mov_epi32(_mm512_and_si512(neg_bits, splat(0x7FFFFFFFu)),
                                            _mm512_cmpgt_epi32_mask(neg_bits, splat(0xFFFFFFFFu)), splat(0xFFFFFFFFu));
  const __m512i amax = _mm512_max_epi32(pos, neg);
  const __mmask16 nonzero = _mm512_test_epi32_mask(amax, amax);
  slow = _mm512_cmpgt_epi32_mask(amax, splat(0x7F7FFFFFu)) | (nonzero & _mm512_cmpeq_epi32_mask(pos, neg));
  return _mm512_maskz_mov_epi32(nonzero, _mm512_mask_mov_epi32(neg_bits, _mm512_cmpgt_epi32_mask(pos, neg), pos));
}

// The integer codes of the block of `len` (16 or 32) elements at x with divider div, min 0,
// as encode_int computes them (see the header comment). Clamp false: the caller knows
// |x / d| rounds within [qmin, qmax]. Stream: non-temporal stores (16-byte aligned out).
template <bool Clamp, bool Stream, class Div>
BLOCKQ_ALWAYS_INLINE void int_codes16(const float* x, std::size_t len, Div div, __m512 qmin, __m512 qmax, int_format fmt,
                                      std::uint8_t* out) noexcept {
  const __m128i mask = _mm_set1_epi8(static_cast<char>(fmt.mask()));
  auto codes = [&](const float* p) BLOCKQ_LAMBDA_INLINE {
    const __m512 y = div(_mm512_loadu_ps(p));
    const __m128i c = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(Clamp ? _mm512_min_ps(qmax, _mm512_max_ps(qmin, y)) : y));
    return fmt.is_signed ? _mm_and_si128(c, mask) : c;  // unsigned q <= qmax: its b bits already
  };
  auto store = [&](std::uint8_t* o, __m128i c) BLOCKQ_LAMBDA_INLINE {
    if constexpr (Stream)
      _mm_stream_si128(reinterpret_cast<__m128i*>(o), c);
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), c);
  };
  store(out, codes(x));
  if (len == 32) store(out + 16, codes(x + 16));
}

// Rule absmax (or another scale_of) over a tensor: groups of 16 blocks of 16 or 32 here,
// the rest as AVX2 (see the header comment).
template <bool Stream, class ScaleOf>
void int_amax_blocks16_loop(const float* x, std::size_t n, std::size_t block, int_format fmt, ScaleOf& scale_of,
                            std::uint8_t* codes, float* scales) noexcept {
  const auto rest = avx2_detail::int_blocks_rest(x, block, fmt, scale_of, codes, scales,
                                                 [](const float* p, std::size_t m) { return block_amax(arch::avx2{}, p, m); });
  auto avx2 = [&](std::size_t b, std::size_t i, std::size_t len) {
    int_amax_blocks(arch::avx2{}, x + i, len, block, fmt, scale_of, codes + i, scales + b);
  };
  const __m512 qmin = _mm512_set1_ps(static_cast<float>(fmt.qmin()));
  const __m512 qmax = _mm512_set1_ps(static_cast<float>(fmt.qmax()));
  // As the AVX2 loop: symmetric absmax with a normal scale needs no clamp.
  bool quotient = false;
  if constexpr (std::is_same_v<std::decay_t<ScaleOf>, quotient_block_scale>)
    quotient = fmt.is_signed && scale_of.q == static_cast<float>(fmt.qmax());
  avx2_detail::int_block_groups<16, Stream>(x, n, block, [&](std::size_t i, std::size_t b) BLOCKQ_LAMBDA_INLINE {
    const __m512i maxima = block_maxima16(x + i, block);
    if (_mm512_cmpgt_epu32_mask(maxima, splat(0x7F7FFFFFu)) != 0) {
      avx2(b, i, 16 * block);  // a NaN or Inf in the group
      return;
    }
    alignas(64) float s[16];
    bool done = false;
    if constexpr (std::is_same_v<std::decay_t<ScaleOf>, quotient_block_scale>) {
      // amax / q per lane, the scalar division; where v * q overflows (amax near FLT_MAX,
      // which quotient_block_scale steps down), the scalar scale_of for all 16.
      const __m512 q = _mm512_set1_ps(scale_of.q);
      const __m512 v = _mm512_div_ps(_mm512_castsi512_ps(maxima), q);
      const __m512i vq = _mm512_castps_si512(_mm512_mul_ps(v, q));
      if (_mm512_cmpeq_epi32_mask(_mm512_and_si512(vq, splat(0x7FFFFFFFu)), splat(0x7F800000u)) == 0) {
        _mm512_store_ps(s, v);
        done = true;
      }
    }
    if (!done) {
      alignas(64) std::uint32_t m[16];
      _mm512_store_si512(m, maxima);
      for (int j = 0; j < 16; ++j) s[j] = scale_of(std::bit_cast<float>(m[j]));
    }
    std::memcpy(scales + b, s, sizeof s);
    // The usual group, as AVX2's: sixteen normal finite scales, each block by the true
    // division, no per-block tests.
    const __m512 mag = _mm512_abs_ps(_mm512_load_ps(s));
    const __mmask16 normal = _mm512_cmp_ps_mask(mag, _mm512_set1_ps(std::numeric_limits<float>::min()), _CMP_GE_OQ) &
                             _mm512_cmp_ps_mask(mag, _mm512_set1_ps(std::numeric_limits<float>::max()), _CMP_LE_OQ);
    if (normal == 0xFFFF) {
      auto all = [&](auto clamp) BLOCKQ_LAMBDA_INLINE {
        for (std::size_t j = 0; j < 16; ++j)
          int_codes16<decltype(clamp)::value, Stream>(x + i + j * block, block,
                                                       avx2_detail::divide_by<f32x16>{_mm512_set1_ps(s[j])}, qmin, qmax,
                                                       fmt, codes + i + j * block);
      };
      if (quotient)
        all(std::false_type{});
      else
        all(std::true_type{});
      return;
    }
    for (std::size_t j = 0; j < 16; ++j) {
      if (!(s[j] != 0.0f) || !detail::is_finite(s[j])) {
        rest(b + j, i + j * block, block);  // zero (or odd) scales: the scalar sequence
        continue;
      }
      const float* xb = x + i + j * block;
      std::uint8_t* o = codes + i + j * block;
      avx2_detail::with_divider<f32x16>(s[j], [&](auto div) BLOCKQ_LAMBDA_INLINE {
        if (quotient && s[j] >= std::numeric_limits<float>::min())
          int_codes16<false, Stream>(xb, block, div, qmin, qmax, fmt, o);
        else
          int_codes16<true, Stream>(xb, block, div, qmin, qmax, fmt, o);
      });
    }
  }, avx2);
}

// Rule signed_max over a tensor (scales m / qmin): groups of 16 blocks of 16 or 32 here,
// the rest as AVX2 (arch/signed_max.hpp).
template <bool Stream>
void int_signed_max_blocks16_loop(const float* x, std::size_t n, std::size_t block, int_format fmt,
                                  std::uint8_t* codes, float* scales) noexcept {
  const float fqmin = static_cast<float>(fmt.qmin());
  auto scale_of = [fqmin](float m) { return m / fqmin; };
  const auto rest = avx2_detail::int_blocks_rest(
      x, block, fmt, scale_of, codes, scales, [](const float* p, std::size_t m) { return block_signed_max(arch::avx2{}, p, m); });
  const __m512 qmin = _mm512_set1_ps(fqmin), qmax = _mm512_set1_ps(static_cast<float>(fmt.qmax()));
  avx2_detail::int_block_groups<16, Stream>(x, n, block, [&](std::size_t i, std::size_t b) BLOCKQ_LAMBDA_INLINE {
    __mmask16 slow = 0;
    const __m512i m = signed_maxima16(x + i, block, slow);
    alignas(64) float s[16];
    _mm512_store_ps(s, _mm512_div_ps(_mm512_castsi512_ps(m), qmin));
    std::memcpy(scales + b, s, sizeof s);
    for (std::size_t j = 0; j < 16; ++j) {
      if (((slow >> j) & 1) != 0 || !(s[j] != 0.0f)) {
        rest(b + j, i + j * block, block);
        continue;
      }
      avx2_detail::with_divider<f32x16>(s[j], [&](auto div) BLOCKQ_LAMBDA_INLINE {
        int_codes16<true, Stream>(x + i + j * block, block, div, qmin, qmax, fmt, codes + i + j * block);
      });
    }
  }, [&](std::size_t b, std::size_t i, std::size_t len) {
    int_signed_max_blocks(arch::avx2{}, x + i, len, block, fmt, codes + i, scales + b);
  });
}

// The two loops over a tensor, streamed or not (avx2_detail::stream_dispatch).
template <class ScaleOf>
void int_amax_blocks16(const float* x, std::size_t n, std::size_t block, int_format fmt, ScaleOf&& scale_of,
                       std::uint8_t* codes, float* scales) noexcept {
  avx2_detail::stream_dispatch(n, codes, [&](auto stream) {
    int_amax_blocks16_loop<decltype(stream)::value>(x, n, block, fmt, scale_of, codes, scales);
  });
}

inline void int_signed_max_blocks16(const float* x, std::size_t n, std::size_t block, int_format fmt,
                                    std::uint8_t* codes, float* scales) noexcept {
  avx2_detail::stream_dispatch(n, codes, [&](auto stream) {
    int_signed_max_blocks16_loop<decltype(stream)::value>(x, n, block, fmt, codes, scales);
  });
}

}  // namespace avx512_detail

// The tag's entry points: the 16-lane loops where wide_int_loops(), else AVX2's.
template <class ScaleOf>
void int_amax_blocks(arch::avx512, const float* x, std::size_t n, std::size_t block, int_format fmt,
                     ScaleOf&& scale_of, std::uint8_t* codes, float* scales) noexcept {
  if (avx512_detail::wide_int_loops())
    avx512_detail::int_amax_blocks16(x, n, block, fmt, scale_of, codes, scales);
  else
    int_amax_blocks(arch::avx2{}, x, n, block, fmt, scale_of, codes, scales);
}

inline void int_signed_max_blocks(arch::avx512, const float* x, std::size_t n, std::size_t block, int_format fmt,
                                  std::uint8_t* codes, float* scales) noexcept {
  if (avx512_detail::wide_int_loops())
    avx512_detail::int_signed_max_blocks16(x, n, block, fmt, codes, scales);
  else
    int_signed_max_blocks(arch::avx2{}, x, n, block, fmt, codes, scales);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX512
