// SPDX-License-Identifier: Apache-2.0
// AVX2 kernels of ggml's Q4_0, Q4_1 and Q8_0 blocks, bit for bit the bytes of
// arch/ggml_scalar.hpp (tests/ggml_test.cpp). Eight blocks at a time:
// - Q4_1's block maxima and minima by vmaxps(x, acc) / vminps(x, acc), which return acc when
//   x is NaN: NaN elements drop out exactly as in ggml's `if (v < min)` comparisons (a NaN
//   among the first eight elements is caught after the code pass, q4_1_part); Q4_0's from
//   integer maxima of the bits (vpmaxsd / vpmaxud, cheaper ports), NaN blocks to scalar;
// - the eight scales, reciprocals and fp16 fields in one vector each (vdivps, vcvtps2ph round
//   to nearest even as GGML_FP32_TO_FP16 does for finite values);
// - codes by vcvttps2dq (truncation, as C's float-to-int cast) of x * id + 8.5 or
//   (x - min) * id + 0.5, the additions on the FMA pipes (add_on_fma), clamped to [0, 15] in 16-bit
//   lanes: NaN products become 0x80000000 and so code 0, the x86 result blockq defines; two
//   blocks share one byte pack, and no branch: slow blocks are redone after the vector pass.
// A block whose result hinges on what the vector order cannot reproduce (an Inf, a
// reciprocal that overflows, a NaN in Q8_0's MAX chain, the sign of a zero extreme, Q4_0's
// +a / -a tie for the first largest magnitude) goes through the scalar kernel instead.
#pragma once

#include "blockq/arch.hpp"
#include "blockq/arch/ggml_scalar.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {
namespace ggml_avx2 {

// r[b] = op over the 8 lanes of m[b] (op: vmaxps, vminps or the unsigned integer maximum;
// the float ops see no NaN). Each of the first two levels pairs a blend (any of the four
// vector pipes) with one shuffle (two pipes) instead of two shuffles: level 1 folds the
// 128-bit halves of blocks b and b + 4 (lanes 0-3: block b, 4-7: block b + 4), level 2 the
// lane pairs (0, 2) and (1, 3) of two such vectors, level 3 the remaining pairs.
template <class Op>
BLOCKQ_ALWAYS_INLINE __m256 reduce8(const __m256* m, Op op) noexcept {
  __m256 t[4];
  for (int b = 0; b < 4; ++b)
    t[b] = op(_mm256_blend_ps(m[b], m[b + 4], 0xF0), _mm256_permute2f128_ps(m[b], m[b + 4], 0x21));
  // u0: blocks 0, 0, 1, 1 | 4, 4, 5, 5; u1: 2, 2, 3, 3 | 6, 6, 7, 7.
  const __m256 u0 = op(_mm256_blend_ps(t[0], t[1], 0xCC), _mm256_shuffle_ps(t[0], t[1], 0x4E));
  const __m256 u1 = op(_mm256_blend_ps(t[2], t[3], 0xCC), _mm256_shuffle_ps(t[2], t[3], 0x4E));
  return op(_mm256_shuffle_ps(u0, u1, 0x88), _mm256_shuffle_ps(u0, u1, 0xDD));
}
inline constexpr auto max_ps = [](__m256 a, __m256 b) { return _mm256_max_ps(a, b); };
inline constexpr auto min_ps = [](__m256 a, __m256 b) { return _mm256_min_ps(a, b); };
inline constexpr auto max_epu32 = [](__m256 a, __m256 b) {
  return _mm256_castsi256_ps(_mm256_max_epu32(_mm256_castps_si256(a), _mm256_castps_si256(b)));
};
inline constexpr auto max_epi32 = [](__m256 a, __m256 b) {
  return _mm256_castsi256_ps(_mm256_max_epi32(_mm256_castps_si256(a), _mm256_castps_si256(b)));
};

// The per-block partial results of a group's scale pass, one vector per block each (Q4_1:
// lane-wise maxima and minima; Q4_0: signed and unsigned integer maxima; Q8_0: unsigned
// maxima of the magnitudes), which a group's finisher folds across lanes with reduce8.
struct partials {
  __m256 a[8], z[8];
};

// The 32 truncated codes c0..c3 (elements 0..31, int32; 0x80000000 from NaN products) as
// ggml's nibbles MIN(15, c[j]) | MIN(15, c[j + 16]) << 4 (NaN as 0) in 16-bit lanes, in the
// order vpackusdw leaves them: elements 0-3, 8-11 | 4-7, 12-15 (128-bit lanes). vpackusdw
// saturates 0x80000000 to 0, and element j and j + 16 share a lane. Clamp false: the codes
// are known to be at most 15 (Q4_1's, whose x·id + 0.5 stays below 15.5).
template <bool Clamp>
BLOCKQ_ALWAYS_INLINE __m256i nibble_words(__m256i c0, __m256i c1, __m256i c2, __m256i c3) noexcept {
  __m256i lo = _mm256_packus_epi32(c0, c1), hi = _mm256_packus_epi32(c2, c3);
  if constexpr (Clamp) {
    lo = _mm256_min_epi16(lo, _mm256_set1_epi16(15));
    hi = _mm256_min_epi16(hi, _mm256_set1_epi16(15));
  }
  return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

// Two blocks' nibble words as their 16 bytes qs[0..15] each, at a and b: one byte pack for
// both, whose dwords (a 0-3, a 8-11, b 0-3, b 8-11 | a 4-7, a 12-15, b 4-7, b 12-15) one
// vpermd puts in order.
BLOCKQ_ALWAYS_INLINE void store_nibbles2(__m256i qa, __m256i qb, std::uint8_t* a, std::uint8_t* b) noexcept {
  const __m256i v =
      _mm256_permutevar8x32_epi32(_mm256_packus_epi16(qa, qb), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(a), _mm256_castsi256_si128(v));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(b), _mm256_extracti128_si256(v, 1));
}

// a + b and a - b, each rounded once as vaddps / vsubps round them, but on the FMA pipes
// (Zen 4: FP0/FP1) instead of the adder's (FP2/FP3, shared with vmaxps, vminps, vcmpps and
// vcvttps2dq): a * 1 is exact, so fma(a, 1, b) rounds the exact sum once. Nothing is fused:
// a is a rounded value already (the product in the code kernels passes detail::rounded).
BLOCKQ_ALWAYS_INLINE __m256 add_on_fma(__m256 a, __m256 one, __m256 b) noexcept { return _mm256_fmadd_ps(a, one, b); }
BLOCKQ_ALWAYS_INLINE __m256 sub_on_fma(__m256 a, __m256 one, __m256 b) noexcept { return _mm256_fmsub_ps(a, one, b); }

BLOCKQ_ALWAYS_INLINE void store16(std::uint8_t* p, std::uint16_t h) noexcept { std::memcpy(p, &h, 2); }

}  // namespace ggml_avx2

namespace ggml_avx2 {

// The per-group facts the code pass needs: reciprocals (and Q4_1's minima), the fp16 fields,
// and which blocks go through the scalar kernel.
struct group_scales {
  alignas(32) float id[8];
  alignas(32) float min[8];
  alignas(16) std::uint16_t d[8];
  alignas(16) std::uint32_t dm[8];  // Q4_1: d | m << 16, the first four bytes of each block
  int slow;
};

BLOCKQ_ALWAYS_INLINE void store_fp16x8(std::uint16_t* p, __m256 v) noexcept {
  _mm_store_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
BLOCKQ_ALWAYS_INLINE __m256 abs_ps(__m256 v) noexcept { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
BLOCKQ_ALWAYS_INLINE __m256 finite_ps(__m256 v) noexcept {
  return _mm256_cmp_ps(abs_ps(v), _mm256_set1_ps(__builtin_inff()), _CMP_LT_OQ);
}
// id = d ? 1/d : 0.
BLOCKQ_ALWAYS_INLINE __m256 reciprocal_or_zero(__m256 d) noexcept {
  return _mm256_andnot_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ), _mm256_div_ps(_mm256_set1_ps(1.0f), d));
}

// Q4_0 scales of a group's eight blocks (q4_0_part per block, q4_0_finish), from integer
// maxima of the raw bits (vpmaxsd and vpmaxud run on all four vector pipes, vmaxps / vminps
// on two): the signed maximum P is
// the largest positive element's bits (negative when there is none), the unsigned maximum N
// is the bits of the negative element of largest magnitude (sign bit clear when there is
// none). NaN and Inf come out as magnitudes from 0x7F800000 up: those blocks go to the
// scalar kernel.
BLOCKQ_ALWAYS_INLINE void q4_0_part(const float* x, partials& r, int b) noexcept {
  const __m256i* p = reinterpret_cast<const __m256i*>(x);
  const __m256i v0 = _mm256_loadu_si256(p), v1 = _mm256_loadu_si256(p + 1);
  const __m256i v2 = _mm256_loadu_si256(p + 2), v3 = _mm256_loadu_si256(p + 3);
  r.a[b] = _mm256_castsi256_ps(_mm256_max_epi32(_mm256_max_epi32(v0, v1), _mm256_max_epi32(v2, v3)));
  r.z[b] = _mm256_castsi256_ps(_mm256_max_epu32(_mm256_max_epu32(v0, v1), _mm256_max_epu32(v2, v3)));
}
BLOCKQ_ALWAYS_INLINE void q4_0_finish(const partials& r, group_scales& g) noexcept {
  const __m256i pos = _mm256_castps_si256(reduce8(r.a, max_epi32));
  const __m256i neg_bits = _mm256_castps_si256(reduce8(r.z, max_epu32));
  // Magnitudes as non-negative ints, -1 for "no such element".
  const __m256i neg = _mm256_or_si256(_mm256_and_si256(neg_bits, _mm256_set1_epi32(0x7FFFFFFF)),
                                      _mm256_cmpgt_epi32(_mm256_setzero_si256(), ~neg_bits));
  const __m256i amax = _mm256_max_epi32(pos, neg);
  // The first element of largest magnitude is +pos or -neg; when both have it (+a and -a)
  // only the scalar kernel knows which came first. All zero (of either sign): +0.
  const __m256i zero_block = _mm256_cmpeq_epi32(amax, _mm256_setzero_si256());
  const __m256i m = _mm256_andnot_si256(zero_block, _mm256_blendv_epi8(neg_bits, pos, _mm256_cmpgt_epi32(pos, neg)));
  // m / -8 as m * -0.125: the same correctly rounded value of the same real number.
  const __m256 d = _mm256_mul_ps(_mm256_castsi256_ps(m), _mm256_set1_ps(-0.125f));
  const __m256 id = reciprocal_or_zero(d);
  // Scalar blocks: NaN or Inf, id overflowing, the +a / -a tie.
  const __m256i tie = _mm256_andnot_si256(zero_block, _mm256_cmpeq_epi32(pos, neg));
  const __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi32(amax, _mm256_set1_epi32(0x7F7FFFFF)), tie);
  g.slow = (_mm256_movemask_ps(_mm256_castsi256_ps(bad)) | (~_mm256_movemask_ps(finite_ps(id)) & 0xFF));
  _mm256_store_ps(g.id, id);
  store_fp16x8(g.d, d);
}

// The codes of a group's eight blocks (Bytes each, the nibbles after Header bytes of
// scales), two blocks at a time with no branch: step(j) runs the next group's scale part for
// blocks j, j + 1 (groups), words(p, j) gives block j's nibble words and header(j, o) stores
// its fp16 fields. The slow blocks, and all eight when redo() says so, get vector bytes too
// (from a meaningless scale), which their scalar kernel then overwrites.
template <std::size_t Bytes, std::size_t Header, class Words, class Head, class Block, class Step, class Redo>
BLOCKQ_ALWAYS_INLINE void nibble_codes8(const float* x, const group_scales& g, std::uint8_t* out, Words words,
                                        Head header, Block block, Step step, Redo redo) noexcept {
  // Unrolled: the four pairs' loads, broadcasts and stores at fixed offsets (measured ~4 %).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#elif defined(__clang__)
#pragma clang loop unroll(full)
#endif
  for (int j = 0; j < 8; j += 2) {
    step(j);
    header(j, out + j * Bytes);
    header(j + 1, out + (j + 1) * Bytes);
    store_nibbles2(words(x + j * 32, j), words(x + (j + 1) * 32, j + 1), out + j * Bytes + Header,
                   out + (j + 1) * Bytes + Header);
  }
  for (int s = g.slow | redo(); s != 0; s &= s - 1) {
    const int j = __builtin_ctz(static_cast<unsigned>(s));
    block(arch::scalar{}, x + j * 32, out + j * Bytes);
  }
}

template <class Step>
BLOCKQ_ALWAYS_INLINE void q4_0_codes(const float* x, const group_scales& g, std::uint8_t* out, Step step) noexcept {
  const __m256 half8 = _mm256_set1_ps(8.5f), one = _mm256_set1_ps(1.0f);
  nibble_codes8<18, 2>(
      x, g, out,
      [&](const float* p, int j) {
        const __m256 s = _mm256_broadcast_ss(g.id + j);
        __m256i c[4];
        for (int k = 0; k < 4; ++k)
          c[k] = _mm256_cvttps_epi32(add_on_fma(detail::rounded(_mm256_mul_ps(_mm256_loadu_ps(p + k * 8), s)), one, half8));
        return nibble_words<true>(c[0], c[1], c[2], c[3]);
      },
      [&](int j, std::uint8_t* o) { store16(o, g.d[j]); },
      [](auto a, const float* p, std::uint8_t* o) { ggml_q4_0_block(a, p, o); }, step, [] { return 0; });
}

// Q4_1's lane-wise maxima and minima of the block at x, three vmaxps and three vminps: each
// lane folds its four elements v0..v3 as op(v3, op(v2, op(v1, v0))). vmaxps(v, acc) returns
// acc when either is NaN, so a NaN among v1..v3 drops out exactly as in ggml's `if (v > max)`
// comparisons, and a NaN in v0 (elements 0-7) makes its lane NaN. reduce8 may keep that
// lane (the block's d is NaN: a slow block) or drop it (its first operand); then the block's
// extremes miss the lane's other elements, but its code c0 for the NaN element is
// 0x80000000, which q4_1_codes sees and redoes the group in the scalar kernel. ggml's start
// values -FLT_MAX / FLT_MAX only matter in blocks whose extremes are not finite, slow blocks.
// (Integer extremes as in q4_0_part need three per element here, signed maximum, unsigned
// maximum and minimum, and measured slower; a 4-deep fold from -FLT_MAX / FLT_MAX, eight
// comparisons a block on the adder's two pipes, measured a few per cent slower.)
BLOCKQ_ALWAYS_INLINE void q4_1_part(const float* x, partials& r, int b) noexcept {
  const __m256 v0 = _mm256_loadu_ps(x);
  __m256 a = v0, z = v0;
  for (int k = 1; k < 4; ++k) {
    const __m256 v = _mm256_loadu_ps(x + k * 8);
    a = _mm256_max_ps(v, a);
    z = _mm256_min_ps(v, z);
  }
  r.a[b] = a;
  r.z[b] = z;
}
BLOCKQ_ALWAYS_INLINE void q4_1_finish(const partials& r, group_scales& g) noexcept {
  const __m256 mx = reduce8(r.a, max_ps), mn = reduce8(r.z, min_ps);
  const __m256 d = _mm256_div_ps(_mm256_sub_ps(mx, mn), _mm256_set1_ps(15.0f));
  const __m256 id = reciprocal_or_zero(d);
  // Scalar blocks: d or id not finite (Inf, max - min overflowing, all NaN), and an
  // extreme equal to zero (whose sign depends on which zero came first).
  const __m256 zero = _mm256_setzero_ps();
  const __m256 ok = _mm256_and_ps(_mm256_and_ps(finite_ps(d), finite_ps(id)),
                                  _mm256_and_ps(_mm256_cmp_ps(mx, zero, _CMP_NEQ_UQ), _mm256_cmp_ps(mn, zero, _CMP_NEQ_UQ)));
  g.slow = ~_mm256_movemask_ps(ok) & 0xFF;
  _mm256_store_ps(g.id, id);
  _mm256_store_ps(g.min, mn);
  // d and m side by side, one 32-bit store per block.
  const __m128i ph = _mm256_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m128i pm = _mm256_cvtps_ph(mn, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  _mm_store_si128(reinterpret_cast<__m128i*>(g.dm), _mm_unpacklo_epi16(ph, pm));
  _mm_store_si128(reinterpret_cast<__m128i*>(g.dm + 4), _mm_unpackhi_epi16(ph, pm));
}

template <class Step>
BLOCKQ_ALWAYS_INLINE void q4_1_codes(const float* x, const group_scales& g, std::uint8_t* out, Step step) noexcept {
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  __m256i nan0 = _mm256_setzero_si256();  // the sign bits of every block's c0 (q4_1_part)
  nibble_codes8<20, 4>(
      x, g, out,
      [&](const float* p, int j) {
        const __m256 s = _mm256_broadcast_ss(g.id + j), m = _mm256_broadcast_ss(g.min + j);
        __m256i c[4];
        for (int k = 0; k < 4; ++k)
          c[k] = _mm256_cvttps_epi32(
              add_on_fma(detail::rounded(_mm256_mul_ps(sub_on_fma(_mm256_loadu_ps(p + k * 8), one, m), s)), one, half));
        nan0 = _mm256_or_si256(nan0, c[0]);
        return nibble_words<false>(c[0], c[1], c[2], c[3]);
      },
      [&](int j, std::uint8_t* o) { std::memcpy(o, g.dm + j, 4); },
      [](auto a, const float* p, std::uint8_t* o) { ggml_q4_1_block(a, p, o); }, step,
      // A NaN among a block's elements 0-7 (or a slow block's meaningless codes): the group
      // goes through the scalar kernel. One test a group, not one per block.
      [&] { return _mm256_movemask_ps(_mm256_castsi256_ps(nan0)) != 0 ? 0xFF : 0; });
}

// Q8_0 scales of a group's eight blocks (q8_0_part per block, q8_0_finish). amax is the integer maximum of the absolute bits:
// NaN sorts above Inf, so one test finds the blocks with NaN or Inf (ggml's MAX chain keeps
// a NaN only when no element follows it, which the scalar kernel reproduces).
BLOCKQ_ALWAYS_INLINE void q8_0_part(const float* x, partials& r, int b) noexcept {
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
  __m256i a = _mm256_setzero_si256();
  for (int k = 0; k < 4; ++k)
    a = _mm256_max_epu32(a, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k * 8)), abs_mask));
  r.a[b] = _mm256_castsi256_ps(a);
}
BLOCKQ_ALWAYS_INLINE void q8_0_finish(const partials& r, group_scales& g) noexcept {
  const __m256 amax = reduce8(r.a, max_epu32);
  const __m256 finite = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(0x7F800000), _mm256_castps_si256(amax)));
  const __m256 d = _mm256_div_ps(amax, _mm256_set1_ps(127.0f));
  const __m256 id = reciprocal_or_zero(d);
  g.slow = ~_mm256_movemask_ps(_mm256_and_ps(finite, finite_ps(id))) & 0xFF;
  _mm256_store_ps(g.id, id);
  store_fp16x8(g.d, d);
}

template <class Step>
BLOCKQ_ALWAYS_INLINE void q8_0_codes(const float* x, const group_scales& g, std::uint8_t* out, Step step) noexcept {
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int j = 0; j < 8; ++j) {
    if (j % 2 == 0) step(j);
    if (g.slow >> j & 1) {
      ggml_q8_0_block(arch::scalar{}, x + j * 32, out + j * 34);
      continue;
    }
    const __m256 s = _mm256_broadcast_ss(g.id + j);
    __m256i c[4];
    for (int k = 0; k < 4; ++k) {
      // roundf: truncate, then step away from zero when the dropped part is >= 1/2 (both
      // exact for |y| <= 127.00002).
      const __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + j * 32 + k * 8), s);
      const __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(y, t));
      const __m256 away = _mm256_and_ps(_mm256_cmp_ps(frac, half, _CMP_GE_OQ), _mm256_or_ps(one, _mm256_and_ps(sign, y)));
      c[k] = _mm256_cvttps_epi32(_mm256_add_ps(t, away));
    }
    const __m256i q = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3])), order);
    store16(out + j * 34, g.d[j]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j * 34 + 2), q);
  }
}

// Groups of eight blocks, software-pipelined: the scales of group i + 1 (two divisions deep)
// are ready before the codes of group i + 1. The per-block part of group i + 1's scale pass
// (part: loads, maxima, minima) is interleaved with the codes of group i, two blocks at a
// time (codes calls step(j) before blocks j, j + 1), so that the comparisons (Zen 4: FP2/FP3)
// and the code arithmetic (FP0/FP1) share the scheduler rather than queueing in two long
// runs; finish folds the parts across lanes. Interleave false: the whole part before the
// codes (Q8_0, whose code pass has no FMA-pipe additions to pair with).
template <std::size_t Bytes, bool Interleave, class Part, class Finish, class Codes, class Block>
BLOCKQ_ALWAYS_INLINE void groups(const float* x, std::size_t nb, std::uint8_t* out, Part part, Finish finish,
                                 Codes codes, Block block) noexcept {
  const std::size_t ng = nb / 8;
  group_scales g[2];
  partials r;
  if (ng > 0) {
    for (int b = 0; b < 8; ++b) part(x + b * 32, r, b);
    finish(r, g[0]);
  }
  for (std::size_t i = 0; i < ng; ++i) {
    const float* next = x + (i + 1) * 256;
    if (i + 1 < ng && !Interleave) {
      for (int b = 0; b < 8; ++b) part(next + b * 32, r, b);
      finish(r, g[(i + 1) & 1]);
      codes(x + i * 256, g[i & 1], out + i * 8 * Bytes, [](int) {});
    } else if (i + 1 < ng) {
      codes(x + i * 256, g[i & 1], out + i * 8 * Bytes, [&](int j) {
        part(next + j * 32, r, j);
        part(next + (j + 1) * 32, r, j + 1);
      });
      finish(r, g[(i + 1) & 1]);
    } else {
      codes(x + i * 256, g[i & 1], out + i * 8 * Bytes, [](int) {});
    }
  }
  for (std::size_t b = ng * 8; b < nb; ++b) block(arch::scalar{}, x + b * 32, out + b * Bytes);
}

}  // namespace ggml_avx2

inline void ggml_q4_0(arch::avx2, const float* x, std::size_t nb, std::uint8_t* out) noexcept {
  using namespace ggml_avx2;
  groups<18, true>(
      x, nb, out, [](auto&&... a) { q4_0_part(a...); }, [](auto&&... a) { q4_0_finish(a...); },
      [](auto&&... a) { q4_0_codes(a...); }, [](auto a, const float* p, std::uint8_t* o) { ggml_q4_0_block(a, p, o); });
}
inline void ggml_q4_1(arch::avx2, const float* x, std::size_t nb, std::uint8_t* out) noexcept {
  using namespace ggml_avx2;
  groups<20, true>(
      x, nb, out, [](auto&&... a) { q4_1_part(a...); }, [](auto&&... a) { q4_1_finish(a...); },
      [](auto&&... a) { q4_1_codes(a...); }, [](auto a, const float* p, std::uint8_t* o) { ggml_q4_1_block(a, p, o); });
}
inline void ggml_q8_0(arch::avx2, const float* x, std::size_t nb, std::uint8_t* out) noexcept {
  using namespace ggml_avx2;
  groups<34, false>(
      x, nb, out, [](auto&&... a) { q8_0_part(a...); }, [](auto&&... a) { q8_0_finish(a...); },
      [](auto&&... a) { q8_0_codes(a...); }, [](auto a, const float* p, std::uint8_t* o) { ggml_q8_0_block(a, p, o); });
}

// Decoding: the products (and Q4_1's separate addition) of the scalar kernels, 8 lanes at a time.
namespace ggml_avx2 {
// The 32 nibbles of qs as int32 lanes: elements 0..7, 8..15 (low nibbles), 16..23, 24..31.
BLOCKQ_ALWAYS_INLINE void nibbles32(const std::uint8_t* qs, __m256i* c) noexcept {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F)), hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
  c[0] = _mm256_cvtepu8_epi32(lo);
  c[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8));
  c[2] = _mm256_cvtepu8_epi32(hi);
  c[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8));
}
BLOCKQ_ALWAYS_INLINE float fp16_at(const std::uint8_t* p) noexcept {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return float16::from_bits(h).to_float();
}
}  // namespace ggml_avx2

inline void ggml_q4_0_dequantize(arch::avx2, const std::uint8_t* in, std::size_t nb, float* out) noexcept {
  using namespace ggml_avx2;
  for (std::size_t b = 0; b < nb; ++b) {
    const std::uint8_t* p = in + b * 18;
    const __m256 d = _mm256_set1_ps(fp16_at(p));
    __m256i c[4];
    nibbles32(p + 2, c);
    for (int k = 0; k < 4; ++k)
      _mm256_storeu_ps(out + b * 32 + k * 8,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(c[k], _mm256_set1_epi32(8))), d));
  }
}

inline void ggml_q4_1_dequantize(arch::avx2, const std::uint8_t* in, std::size_t nb, float* out) noexcept {
  using namespace ggml_avx2;
  for (std::size_t b = 0; b < nb; ++b) {
    const std::uint8_t* p = in + b * 20;
    const __m256 d = _mm256_set1_ps(fp16_at(p)), m = _mm256_set1_ps(fp16_at(p + 2));
    __m256i c[4];
    nibbles32(p + 4, c);
    for (int k = 0; k < 4; ++k)
      _mm256_storeu_ps(out + b * 32 + k * 8, _mm256_add_ps(detail::rounded(_mm256_mul_ps(_mm256_cvtepi32_ps(c[k]), d)), m));
  }
}

inline void ggml_q8_0_dequantize(arch::avx2, const std::uint8_t* in, std::size_t nb, float* out) noexcept {
  using namespace ggml_avx2;
  for (std::size_t b = 0; b < nb; ++b) {
    const std::uint8_t* p = in + b * 34;
    const __m256 d = _mm256_set1_ps(fp16_at(p));
    for (int k = 0; k < 4; ++k) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + k * 8));
      _mm256_storeu_ps(out + b * 32 + k * 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
    }
  }
}

inline void ggml_mxfp4_dequantize(arch::avx2, const std::uint8_t* in, std::size_t nb, float* out) noexcept {
  using namespace ggml_avx2;
  // kvalues_mxfp4: codes 0..7 from kpos, 8..15 from kneg (whose code 8 is +0, as ggml's int 0).
  const __m256 kpos = _mm256_setr_ps(0, 1, 2, 3, 4, 6, 8, 12), kneg = _mm256_setr_ps(0, -1, -2, -3, -4, -6, -8, -12);
  for (std::size_t b = 0; b < nb; ++b) {
    const std::uint8_t* p = in + b * 17;
    const __m256 d = _mm256_set1_ps(detail::ggml_e8m0_half(p[0]));
    __m256i c[4];
    nibbles32(p + 1, c);
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(kpos, c[k]), _mm256_permutevar8x32_ps(kneg, c[k]),
                                        _mm256_castsi256_ps(_mm256_slli_epi32(c[k], 28)));
      _mm256_storeu_ps(out + b * 32 + k * 8, _mm256_mul_ps(v, d));
    }
  }
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
#endif
