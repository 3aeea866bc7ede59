// SPDX-License-Identifier: Apache-2.0
// AVX2 fused loops over whole tensors: the MXFP4/NVFP4/FP4 amax rules and the integer absmax
// rule (scales and codes of groups of 8 blocks in one pass, non-temporal stores from 32 MiB),
// and the whole-tensor E2M1 dequantization; blocks a group cannot decide go the per-block way
// of arch/avx2_codec.hpp. Same contract: the bits of the scalar loops.
#pragma once

#include "blockq/arch/avx2_search.hpp"

#if BLOCKQ_WITH_AVX2
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

// ------------------------------------------------------------------- block loops

namespace avx2_detail {

// How the elements of one block become E2M1 keys, chosen once per block from its divisor d.
struct e2m1_divisor {
  enum kind_t { zero, shift, multiply, divide } kind;
  __m256 v;     // 1 / d (multiply) or d (divide)
  __m256i off;  // the 16-bit index offset
};

// shift: d = 2^k, a normal power of two with k >= -124. Then x / d is x with its exponent
// lowered by k, and its key (e2m1_key_bits) is key(x) - 4k: exactly for normal quotients,
// and for the others (below 2^-126, so below the first threshold 0.25) the shifted key
// stays below the offset and indexes code 0, as the quotient does; subnormal x (< 2^-126)
// give quotients below 2^-126 * 2^124 = 0.25 and keys <= 3 - 4k, code 0 again. Quotients
// that would overflow get keys past 18 from the offset: code 7, as Inf gets. So no
// multiplication at all (the usual MX case).
template <tie_mode T>
BLOCKQ_ALWAYS_INLINE e2m1_divisor e2m1_plan(float d) noexcept {
  if (!(d > 0.0f) || !detail::is_finite(d)) return {e2m1_divisor::zero, _mm256_setzero_ps(), _mm256_setzero_si256()};
  const std::uint32_t u = std::bit_cast<std::uint32_t>(d);
  if ((u & 0x7FFFFFu) == 0 && u >= (3u << 23)) {
    const int k = static_cast<int>(u >> 23) - 127;
    return {e2m1_divisor::shift, _mm256_setzero_ps(), _mm256_set1_epi16(static_cast<short>(e2m1_offset<T> + 4 * k))};
  }
  const __m256i off = _mm256_set1_epi16(static_cast<short>(e2m1_offset<T>));
  const float r = exact_reciprocal(d);
  if (r != 0.0f) return {e2m1_divisor::multiply, _mm256_set1_ps(r), off};
  return {e2m1_divisor::divide, _mm256_set1_ps(d), off};
}

// The keys of |x| / d for the absolute bits a of 8 elements (d > 0, so |x / d| = |x| / d).
template <tie_mode T, e2m1_divisor::kind_t K>
BLOCKQ_ALWAYS_INLINE __m256i e2m1_keys(__m256i a, const e2m1_divisor& p) noexcept {
  if constexpr (K == e2m1_divisor::shift) return e2m1_key_bits<T>(a);
  if constexpr (K == e2m1_divisor::multiply)
    return e2m1_key_bits<T>(_mm256_castps_si256(_mm256_mul_ps(_mm256_castsi256_ps(a), p.v)));
  return e2m1_key_bits<T>(_mm256_castps_si256(_mm256_div_ps(_mm256_castsi256_ps(a), p.v)));
}

// Stores the 32 codes of e2m1_codes_from_keys in layout L at out (ggml_mxfp4: the 16 code
// bytes of a block, after its scale byte).
// Stream: non-temporal stores (16-byte aligned out), for outputs far larger than the caches.
template <code_layout L, bool Stream = false>
BLOCKQ_ALWAYS_INLINE void e2m1_store32(__m256i c, std::uint8_t* out) noexcept {
  if constexpr (L == code_layout::nibbles) {
    if constexpr (Stream)
      _mm_stream_si128(reinterpret_cast<__m128i*>(out), e2m1_pack_nibbles(c));
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), e2m1_pack_nibbles(c));
  } else if constexpr (L == code_layout::bytes) {
    if constexpr (Stream) {
      const __m256i o = e2m1_unscramble(c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(o));
      _mm_stream_si128(reinterpret_cast<__m128i*>(out + 16), _mm256_extracti128_si256(o, 1));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), e2m1_unscramble(c));
    }
  } else {  // qs[j] = c[j] | c[j + 16] << 4 (codes < 16, so the 16-bit shift stays in its byte);
             // ggml writes zero as code 0, never 8 (-0)
    __m256i o = e2m1_unscramble(c);
    o = _mm256_andnot_si256(_mm256_cmpeq_epi8(o, _mm256_set1_epi8(8)), o);
    const __m128i lo = _mm256_castsi256_si128(o), hi = _mm256_extracti128_si256(o, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_or_si128(lo, _mm_slli_epi16(hi, 4)));
  }
}

BLOCKQ_ALWAYS_INLINE __m256i load8i(const float* p) noexcept {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// 32 elements at p, all at divisor plan p (one block, or part of one).
template <code_layout L, tie_mode T, e2m1_divisor::kind_t K, bool Stream = false>
BLOCKQ_ALWAYS_INLINE void e2m1_chunk32(const float* x, const e2m1_divisor& p, std::uint8_t* out) noexcept {
  const __m256i abs = splat(0x7FFFFFFFu);
  const __m256i b0 = load8i(x), b1 = load8i(x + 8), b2 = load8i(x + 16), b3 = load8i(x + 24);
  const __m256i k01 = _mm256_packs_epi32(e2m1_keys<T, K>(_mm256_and_si256(b0, abs), p),
                                         e2m1_keys<T, K>(_mm256_and_si256(b1, abs), p));
  const __m256i k23 = _mm256_packs_epi32(e2m1_keys<T, K>(_mm256_and_si256(b2, abs), p),
                                         e2m1_keys<T, K>(_mm256_and_si256(b3, abs), p));
  e2m1_store32<L, Stream>(e2m1_codes_from_keys(k01, k23, p.off, p.off, b0, b1, b2, b3, nullptr), out);
}

// Two blocks of 16 at x, with plans pa and pb of the same kind.
template <code_layout L, tie_mode T, e2m1_divisor::kind_t K, bool Stream = false>
BLOCKQ_ALWAYS_INLINE void e2m1_pair16(const float* x, const e2m1_divisor& pa, const e2m1_divisor& pb,
                                      std::uint8_t* out) noexcept {
  const __m256i abs = splat(0x7FFFFFFFu);
  const __m256i b0 = load8i(x), b1 = load8i(x + 8), b2 = load8i(x + 16), b3 = load8i(x + 24);
  const __m256i k01 = _mm256_packs_epi32(e2m1_keys<T, K>(_mm256_and_si256(b0, abs), pa),
                                         e2m1_keys<T, K>(_mm256_and_si256(b1, abs), pa));
  const __m256i k23 = _mm256_packs_epi32(e2m1_keys<T, K>(_mm256_and_si256(b2, abs), pb),
                                         e2m1_keys<T, K>(_mm256_and_si256(b3, abs), pb));
  e2m1_store32<L, Stream>(e2m1_codes_from_keys(k01, k23, pa.off, pb.off, b0, b1, b2, b3, nullptr), out);
}

template <code_layout L>
BLOCKQ_ALWAYS_INLINE std::uint8_t* e2m1_block_out(std::uint8_t* out, std::size_t b, std::size_t begin) noexcept {
  if constexpr (L == code_layout::nibbles) return out + begin / 2;
  if constexpr (L == code_layout::bytes) return out + begin;
  return out + b * 17 + 1;
}

// Maxima of the absolute bits of 8 blocks of 16 or 32 elements (m[j] for block j), as
// unsigned integers (block_amax's order: NaN bits above +Inf).
BLOCKQ_ALWAYS_INLINE __m256i block_maxima8(const float* x, std::size_t block) noexcept {
  const __m256i abs = splat(0x7FFFFFFFu);
  auto m8 = [&](const float* p) BLOCKQ_LAMBDA_INLINE { return _mm256_and_si256(load8i(p), abs); };
  __m256i v[8];
  for (int j = 0; j < 8; ++j) {
    const float* p = x + j * block;
    v[j] = block == 16 ? _mm256_max_epu32(m8(p), m8(p + 8))
                       : _mm256_max_epu32(_mm256_max_epu32(m8(p), m8(p + 8)), _mm256_max_epu32(m8(p + 16), m8(p + 24)));
  }
  // Transposing reduction: after three rounds lane j holds the maximum of v[j].
  auto fold = [](__m256i a, __m256i b, int imm) BLOCKQ_LAMBDA_INLINE {
    (void)imm;
    return _mm256_max_epu32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
  };
  const __m256i a01 = fold(v[0], v[1], 0), a23 = fold(v[2], v[3], 0), a45 = fold(v[4], v[5], 0), a67 = fold(v[6], v[7], 0);
  // a01 lanes: (0,1,0,1 | 0,1,0,1) partial maxima of v0 and v1 per 128-bit lane.
  const __m256i b0 = _mm256_max_epu32(_mm256_unpacklo_epi64(a01, a23), _mm256_unpackhi_epi64(a01, a23));  // 0 1 2 3 | 0 1 2 3
  const __m256i b1 = _mm256_max_epu32(_mm256_unpacklo_epi64(a45, a67), _mm256_unpackhi_epi64(a45, a67));  // 4 5 6 7 | 4 5 6 7
  return _mm256_max_epu32(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31));
}

// The low bytes of 8 32-bit lanes (values 0..255) to s[0..7].
BLOCKQ_ALWAYS_INLINE void store_bytes8(__m256i v, void* s) noexcept {
  const __m128i c16 = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(s), _mm_packus_epi16(c16, c16));
}

// NVFP4's absmax scale codes e4m3_block_scale{s_t} of 8 finite amaxes (lanes of amax):
// y = amax / fl(6 s_t) (the scalar expression), then e4m3::encode(y) for y >= 0:
// - normal y (>= 2^-6): round the float's bits to 3 mantissa bits, ties to even, by adding
//   0x7FFFF plus bit 20 (a carry moves into the exponent by itself); the code is the rounded
//   (exponent, mantissa) minus the bias difference (127 - 7) << 3;
// - below 2^-6 the code is y / 2^-9 rounded to nearest even: y * 512 is exact, and
//   vcvtps2dq rounds that way;
// - y >= 448 rounds to code 0x7E or above (Inf included), and min() saturates it there.
BLOCKQ_ALWAYS_INLINE __m256i e4m3_absmax_codes8(__m256 amax, float s_t) noexcept {
  const __m256 y = _mm256_div_ps(amax, _mm256_set1_ps(e2m1::max_value * s_t));
  const __m256i b = _mm256_castps_si256(y);
  const __m256i bit20 = _mm256_and_si256(_mm256_srli_epi32(b, 20), splat(1));
  const __m256i normal =
      _mm256_sub_epi32(_mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, splat(0x7FFFFu)), bit20), 20), splat(120u << 3));
  const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(y, _mm256_set1_ps(512.0f)));
  const __m256i is_normal = _mm256_cmpgt_epi32(b, splat(0x3C7FFFFFu));  // y >= 2^-6 (y has no sign)
  return _mm256_min_epi32(_mm256_blendv_epi8(sub, normal, is_normal), splat(0x7E));
}

// e4m3_block_divisor{s_t} of 8 codes in 0..126: e4m3::decode(code) * s_t, where the normal
// codes decode to the float with their bits moved back, the subnormal ones to code * 2^-9.
BLOCKQ_ALWAYS_INLINE __m256 e4m3_divisors8(__m256i code, float s_t) noexcept {
  const __m256 dn = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(code, splat(120u << 3)), 20));
  const __m256 ds = _mm256_mul_ps(_mm256_cvtepi32_ps(code), _mm256_set1_ps(0x1p-9f));
  const __m256 dec = _mm256_blendv_ps(ds, dn, _mm256_castsi256_ps(_mm256_cmpgt_epi32(code, splat(7))));
  return _mm256_mul_ps(dec, _mm256_set1_ps(s_t));
}

// mx_scale_code of 8 normal or zero amaxes (false when one is subnormal: the caller then goes
// the scalar way): k = exponent(amax) - emax; amax / 2^k = 1.m * 2^emax exceeds the element's
// largest value 1.M * 2^emax exactly when the mantissa bits m > M (rule ceil: k + 1), falls
// short when m < M (rule floor: k - 1); k clamps to [-127, 127], code = k + 127, and amax = 0
// gives code 0.
template <class C>
BLOCKQ_ALWAYS_INLINE bool ue8m0_codes8(__m256i maxima, const C& code_of, __m256i& code) noexcept {
  const __m256i zero = _mm256_cmpeq_epi32(maxima, _mm256_setzero_si256());
  const __m256i subnormal = _mm256_andnot_si256(zero, _mm256_cmpgt_epi32(splat(0x00800000u), maxima));
  if (!_mm256_testz_si256(subnormal, subnormal)) return false;
  const __m256i mant = _mm256_and_si256(maxima, splat(0x7FFFFFu));
  const __m256i top = splat(std::bit_cast<std::uint32_t>(C::max_value) & 0x7FFFFFu);
  __m256i k = _mm256_sub_epi32(_mm256_srli_epi32(maxima, 23), _mm256_set1_epi32(127 + C::emax));
  // ceil: one step up, except for amax >= 2^127 (mx_scale_code: the scale would overflow).
  if (code_of.rule == scale_rule::ceil)
    k = _mm256_sub_epi32(k, _mm256_and_si256(_mm256_cmpgt_epi32(mant, top), _mm256_cmpgt_epi32(splat(0x7F000000u), maxima)));
  if (code_of.rule == scale_rule::floor) k = _mm256_add_epi32(k, _mm256_cmpgt_epi32(top, mant));
  k = _mm256_min_epi32(_mm256_max_epi32(k, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
  code = _mm256_andnot_si256(zero, _mm256_add_epi32(k, _mm256_set1_epi32(127)));
  return true;
}

// The scales (stored to s[0..7]) and divisors of 8 blocks from their amaxes: vectorised for
// the scale functions of arch/scalar.hpp that allow it, one block at a time otherwise.
template <class Scale, class CodeOf, class DivisorOf>
BLOCKQ_ALWAYS_INLINE __m256 block_scales8(__m256i maxima, CodeOf& code_of, DivisorOf& divisor_of, Scale* s) noexcept {
  using C = std::decay_t<CodeOf>;
  using D = std::decay_t<DivisorOf>;
  const __m256 amax = _mm256_castsi256_ps(maxima);  // all finite here
  if constexpr (std::is_same_v<C, quotient_block_scale> && std::is_same_v<D, identity_divisor>) {
    // amax / q per lane: the scalar division, eight at a time; a lane where v * q overflows
    // (amax near FLT_MAX, which quotient_block_scale steps down) takes the generic path.
    const __m256 q = _mm256_set1_ps(code_of.q);
    const __m256 v = _mm256_div_ps(amax, q);
    if (!any_inf(_mm256_mul_ps(v, q))) {
      _mm256_storeu_ps(s, v);
      return v;
    }
  } else if constexpr (std::is_same_v<C, e4m3_block_scale> && std::is_same_v<D, e4m3_block_divisor>) {
    const __m256i code = e4m3_absmax_codes8(amax, code_of.s_t);
    store_bytes8(code, s);
    return e4m3_divisors8(code, code_of.s_t);
  } else if constexpr (requires { C::ue8m0_amax_rule; }) {
    // The divisor 2^(code - 127) has the bits code << 23 (2^-127, code 0, is the subnormal
    // 0x00400000).
    __m256i code;
    if (ue8m0_codes8(maxima, code_of, code)) {
      store_bytes8(code, s);
      const __m256i d = _mm256_blendv_epi8(_mm256_slli_epi32(code, 23), splat(0x00400000u),
                                           _mm256_cmpeq_epi32(code, _mm256_setzero_si256()));
      return _mm256_castsi256_ps(d);
    }
  }
  if constexpr (true) {
    alignas(32) std::uint32_t m[8];
    alignas(32) float d[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(m), maxima);
    for (int j = 0; j < 8; ++j) {
      s[j] = code_of(std::bit_cast<float>(m[j]));
      d[j] = divisor_of(s[j]);
    }
    return _mm256_load_ps(d);
  }
}

// MX, OCP nibbles, blocks of 32: a group of 8 blocks whose UE8M0 scales are all normal
// powers of two 2^k with k >= -124 (codes >= 3; e2m1_plan's shift case) takes this path:
// the 8 codes and key offsets e2m1_offset + 4k as vectors, then two blocks at a time with
// their nibbles packed together. False (nothing written): the generic group path.
template <tie_mode T, bool Stream, class C>
BLOCKQ_ALWAYS_INLINE bool mx_group32(const float* x, __m256i maxima, const C& code_of, std::uint8_t* out,
                                     std::uint8_t* scales) noexcept {
  __m256i code;
  if (!ue8m0_codes8(maxima, code_of, code)) return false;
  if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(splat(3), code))) != 0) return false;
  store_bytes8(code, scales);
  const __m256i off32 = _mm256_add_epi32(_mm256_slli_epi32(code, 2), _mm256_set1_epi32(e2m1_offset<T> - 4 * 127));
  alignas(16) std::int16_t off[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(off),
                  _mm_packs_epi32(_mm256_castsi256_si128(off32), _mm256_extracti128_si256(off32, 1)));
  const __m256i abs = splat(0x7FFFFFFFu);
  auto codes = [&](const float* p, std::int16_t o) BLOCKQ_LAMBDA_INLINE {
    const __m256i b0 = load8i(p), b1 = load8i(p + 8), b2 = load8i(p + 16), b3 = load8i(p + 24);
    const __m256i k01 = _mm256_packs_epi32(e2m1_key_bits<T>(_mm256_and_si256(b0, abs)), e2m1_key_bits<T>(_mm256_and_si256(b1, abs)));
    const __m256i k23 = _mm256_packs_epi32(e2m1_key_bits<T>(_mm256_and_si256(b2, abs)), e2m1_key_bits<T>(_mm256_and_si256(b3, abs)));
    const __m256i ov = _mm256_set1_epi16(o);
    return e2m1_codes_from_keys(k01, k23, ov, ov, b0, b1, b2, b3, nullptr);
  };
  for (int j = 0; j < 8; j += 2) {
    const __m256i v = e2m1_pack_nibbles2(codes(x + 32 * j, off[j]), codes(x + 32 * (j + 1), off[j + 1]));
    std::uint8_t* o = out + 16 * j;
    if constexpr (Stream) {
      _mm_stream_si128(reinterpret_cast<__m128i*>(o), _mm256_castsi256_si128(v));
      _mm_stream_si128(reinterpret_cast<__m128i*>(o + 16), _mm256_extracti128_si256(v, 1));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v);
    }
  }
  return true;
}

// Encodes `len` (32 * k) elements of one block at plan p.
template <code_layout L, tie_mode T>
BLOCKQ_ALWAYS_INLINE void e2m1_block(const float* x, std::size_t len, const e2m1_divisor& p, std::uint8_t* o) noexcept {
  constexpr std::size_t step = L == code_layout::bytes ? 32 : 16;  // output bytes per 32 elements
  switch (p.kind) {
    case e2m1_divisor::shift:
      for (std::size_t j = 0; j < len; j += 32) e2m1_chunk32<L, T, e2m1_divisor::shift>(x + j, p, o + j / 32 * step);
      break;
    case e2m1_divisor::multiply:
      for (std::size_t j = 0; j < len; j += 32) e2m1_chunk32<L, T, e2m1_divisor::multiply>(x + j, p, o + j / 32 * step);
      break;
    default:
      for (std::size_t j = 0; j < len; j += 32) e2m1_chunk32<L, T, e2m1_divisor::divide>(x + j, p, o + j / 32 * step);
      break;
  }
}

// Two choices of streamed calls depend on the core, and are measured at run time:
// - software prefetch of streamed inputs: on the Zen 3 VM it lifts MXFP4 ocp at 256 MiB from
//   ~0.69 to ~0.82 of the plain read's element rate (the in-cache compute rate, ~4.5 G
//   elements/s, is close to the read's ~4.7 G floats/s, and the hardware prefetchers alone,
//   which stop at 4 KiB page boundaries, leave the loads of each group waiting), while on
//   Zen 4 the same T0 prefetch 3 to 24 groups ahead cost 25-45 % of the throughput;
// - non-temporal or ordinary stores of dequantized outputs of 32 MiB and more: on Zen 4 the
//   non-temporal ones held 1.03-1.27 of the roofline at 256 MiB, on the Zen 5 VM they ranged
//   from 0.55 to 1.1 where ordinary stores held 0.9-1.2 (README, Benchmarks).
// So a streamed call measures both ways: its first kTrialChunks chunks run alternately one
// way and the other (order 0 1 1 0 0 1 1 0, so that a drift of the machine's load weighs on
// both), each timed on the steady clock, and the rest of the call takes the one whose fastest
// chunk was faster. Only the speed depends on the choice: both ways compute the same bits.
inline constexpr std::size_t kPrefetchAhead = 4096;    // bytes ahead of the group (one 4 KiB page)
inline constexpr std::size_t kTrialChunkBytes = 256 << 10;  // input bytes of a timed chunk
inline constexpr int kTrialChunks = 8;

// Requests the lines of the `len` floats kPrefetchAhead bytes past x (past the end of the
// input they do not fault).
BLOCKQ_ALWAYS_INLINE void prefetch_ahead(const float* x, std::size_t len) noexcept {
  const char* p = reinterpret_cast<const char*>(x) + kPrefetchAhead;
  for (std::size_t off = 0; off < len * sizeof(float); off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
}

// Runs groups(end, choice) (which advances i by whole groups of `group` elements up to end;
// choice std::false_type or std::true_type) over [i, n): the trial chunks, then the rest with
// the faster choice (see above).
template <class Groups>
void tuned_choice(std::size_t& i, std::size_t n, std::size_t group, Groups& groups) {
  const std::size_t chunk = kTrialChunkBytes / sizeof(float) / group * group;
  using clock = std::chrono::steady_clock;
  clock::duration best[2] = {clock::duration::max(), clock::duration::max()};
  for (int t = 0; t < kTrialChunks && n - i >= chunk; ++t) {
    const bool with = ((t + 1) >> 1) & 1;
    const auto t0 = clock::now();
    if (with)
      groups(i + chunk, std::true_type{});
    else
      groups(i + chunk, std::false_type{});
    best[with] = std::min(best[with], clock::now() - t0);
  }
  if (best[1] < best[0])
    groups(n, std::true_type{});
  else
    groups(n, std::false_type{});
}

// Whether a loop streams: n floats of 32 MiB and more (a fused loop's input, a
// dequantization's output), with `stored`, the buffer it stores to non-temporally (codes,
// or the output floats), 16-byte aligned as those stores need (buffers from the usual
// allocators are).
inline bool streams(std::size_t n, const void* stored) noexcept {
  return n * sizeof(float) >= (std::size_t{32} << 20) && reinterpret_cast<std::uintptr_t>(stored) % 16 == 0;
}

template <class Loop>
BLOCKQ_NOINLINE void run_streamed(Loop& loop) {
  loop(std::true_type{});
}

// loop(std::true_type) when the loop streams (streams(n, codes)), else loop(std::false_type).
// The streamed instantiation runs out of line: its closures escape into tuned_choice, and
// inlined beside the in-cache loop that kept the in-cache loop's state in memory (reloaded
// after every code store; int4 absmax of the AVX-512 tier 10.4 -> 7.9 G/s at 64 KiB on Zen
// 5). So loop should hand its arguments by value to the function that runs the groups.
template <class Loop>
BLOCKQ_ALWAYS_INLINE void stream_dispatch(std::size_t n, const std::uint8_t* codes, Loop&& loop) {
  if (streams(n, codes))
    run_streamed(loop);
  else
    loop(std::false_type{});
}

// groups(end, prefetch) over [i, n) (each call advances i by whole groups up to end):
// streamed, with the prefetch tuned_choice chooses and a closing sfence; else without.
template <bool Stream, class Groups>
BLOCKQ_ALWAYS_INLINE void run_groups(std::size_t& i, std::size_t n, std::size_t group, Groups& groups) {
  if constexpr (Stream) {
    tuned_choice(i, n, group, groups);
    _mm_sfence();
  } else {
    groups(n, std::false_type{});
  }
}

// The codes of the 8 blocks of kBlock (16 or 32) elements at x + i (blocks b to b + 7; out
// and the positions are the whole call's) at divisors d[0..7], each block by its e2m1_plan
// (blocks of 16 two at a time through one 32-element core). All 8 of one kind, the usual
// case, run a loop without calls, so that the table constants stay in registers; zero
// divisors and pairs of 16 whose plans differ in kind go to rest(b', begin, len).
template <code_layout L, tie_mode T, bool Stream, std::size_t kBlock, class Rest>
BLOCKQ_ALWAYS_INLINE void e2m1_group8(const float* x, const float* d, std::uint8_t* out, std::size_t b, std::size_t i,
                                      Rest& rest) noexcept {
  static_assert(kBlock == 16 || kBlock == 32);
  using kind = e2m1_divisor;
  e2m1_divisor p[8];
  bool uniform = true;
  for (int j = 0; j < 8; ++j) {
    p[j] = e2m1_plan<T>(d[j]);
    uniform &= p[j].kind == p[0].kind;
  }
  if (uniform && p[0].kind != kind::zero) {
    auto run = [&](auto k) BLOCKQ_LAMBDA_INLINE {
      constexpr kind::kind_t K = decltype(k)::value;
      if constexpr (kBlock == 32) {
        for (std::size_t j = 0; j < 8; ++j)
          e2m1_chunk32<L, T, K, Stream>(x + i + 32 * j, p[j], e2m1_block_out<L>(out, b + j, i + 32 * j));
      } else {
        for (std::size_t j = 0; j < 8; j += 2)
          e2m1_pair16<L, T, K, Stream>(x + i + 16 * j, p[j], p[j + 1], e2m1_block_out<L>(out, b + j, i + 16 * j));
      }
    };
    if (p[0].kind == kind::shift)
      run(std::integral_constant<kind::kind_t, kind::shift>{});
    else if (p[0].kind == kind::multiply)
      run(std::integral_constant<kind::kind_t, kind::multiply>{});
    else
      run(std::integral_constant<kind::kind_t, kind::divide>{});
    return;
  }
  if constexpr (kBlock == 32) {
    for (std::size_t j = 0; j < 8; ++j) {
      if (p[j].kind == kind::zero)
        rest(b + j, i + 32 * j, 32);
      else
        e2m1_block<L, T>(x + i + 32 * j, 32, p[j], e2m1_block_out<L>(out, b + j, i + 32 * j));
    }
  } else {
    for (std::size_t j = 0; j < 8; j += 2) {
      const e2m1_divisor& pa = p[j];
      const e2m1_divisor& pb = p[j + 1];
      const float* xp = x + i + 16 * j;
      std::uint8_t* o = e2m1_block_out<L>(out, b + j, i + 16 * j);
      if (pa.kind != pb.kind || pa.kind == kind::zero)
        rest(b + j, i + 16 * j, 32);
      else if (pa.kind == kind::shift)
        e2m1_pair16<L, T, kind::shift>(xp, pa, pb, o);
      else if (pa.kind == kind::multiply)
        e2m1_pair16<L, T, kind::multiply>(xp, pa, pb, o);
      else
        e2m1_pair16<L, T, kind::divide>(xp, pa, pb, o);
    }
  }
}

// The fused MXFP4 / NVFP4 / FP4 loop over groups of 8 blocks of 16 or 32 elements: the 8
// amaxes (block_maxima8), their scales and divisors (block_scales8), then each block's codes
// by e2m1_plan (blocks of 16 two at a time through one 32-element core). Groups holding a
// NaN or Inf, pairs whose plans differ in kind, zero divisors, other block sizes and the
// last blocks run the per-block loop with the AVX2 kernels (rest). Streamed inputs (Stream)
// choose the software prefetch at run time (tuned_choice).
template <code_layout L, tie_mode T, bool Stream, class Scale, class CodeOf, class DivisorOf, class Rest>
void e2m1_amax_blocks(const float* x, std::size_t n, std::size_t block, CodeOf& code_of, DivisorOf& divisor_of,
                      std::uint8_t* out, Scale* scales, Rest&& rest) noexcept {
  using kind = e2m1_divisor;
  std::size_t b = 0, i = 0;
  if (block == 16 || block == 32) {
    const std::size_t group = 8 * block;
    // The groups from i up to `end` (whole groups only), with prefetch_ahead when `prefetch`
    // holds true (streamed inputs; see tuned_choice). The block size is a constant (blk,
    // 16 or 32) so that the addressing of the group folds: 69 instead of 72 instructions a
    // block of 32 at 64 KiB (callgrind).
    auto groups_of = [&](std::size_t end, auto prefetch, auto blk) {
      constexpr std::size_t kBlock = decltype(blk)::value;
      constexpr std::size_t kGroup = 8 * kBlock;
      for (; i + kGroup <= end; i += kGroup, b += 8) {
        if constexpr (decltype(prefetch)::value) prefetch_ahead(x + i, kGroup);
        const __m256i maxima = block_maxima8(x + i, kBlock);
        if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(maxima, splat(0x7F7FFFFFu)))) != 0) {
          rest(b, i, kGroup);  // a NaN or Inf in the group
          continue;
        }
        if constexpr (requires { std::decay_t<CodeOf>::ue8m0_amax_rule; } && L == code_layout::nibbles) {
          if (kBlock == 32 && mx_group32<T, Stream>(x + i, maxima, code_of, out + i / 2, scales + b)) continue;
        }
        alignas(32) Scale s[8];
        alignas(32) float d[8];
        _mm256_store_ps(d, block_scales8(maxima, code_of, divisor_of, s));
        for (int j = 0; j < 8; ++j) {
          if constexpr (L == code_layout::ggml_mxfp4)
            out[(b + j) * 17] = static_cast<std::uint8_t>(s[j]);
          else
            scales[b + j] = s[j];
        }
        e2m1_group8<L, T, Stream, kBlock>(x, d, out, b, i, rest);
      }
    };
    auto by_block = [&](auto blk) {
      auto groups = [&](std::size_t end, auto prefetch) { groups_of(end, prefetch, blk); };
      if constexpr (Stream)
        tuned_choice(i, n, group, groups);
      else
        groups(n, std::false_type{});
    };
    if (block == 32)
      by_block(std::integral_constant<std::size_t, 32>{});
    else
      by_block(std::integral_constant<std::size_t, 16>{});
  } else if (block % 32 == 0) {
    for (; i + block <= n; i += block, ++b) {
      const __m256i abs = splat(0x7FFFFFFFu);
      __m256i m0 = _mm256_setzero_si256(), m1 = _mm256_setzero_si256();
      for (std::size_t j = i; j < i + block; j += 16) {
        m0 = _mm256_max_epu32(m0, _mm256_and_si256(load8i(x + j), abs));
        m1 = _mm256_max_epu32(m1, _mm256_and_si256(load8i(x + j + 8), abs));
      }
      const std::uint32_t m = hmax_epu32(_mm256_max_epu32(m0, m1));
      if (m >= 0x7F800000u) {
        rest(b, i, block);
        continue;
      }
      const Scale s = code_of(std::bit_cast<float>(m));
      scales[b] = s;
      const e2m1_divisor p = e2m1_plan<T>(divisor_of(s));
      if (p.kind == kind::zero)
        rest(b, i, block);
      else
        e2m1_block<L, T>(x + i, block, p, e2m1_block_out<L>(out, b, i));
    }
  }
  if constexpr (Stream) _mm_sfence();
  if (i < n) rest(b, i, n - i);
}

}  // namespace avx2_detail

template <class Element, code_layout L, class Scale, class CodeOf, class DivisorOf>
void amax_blocks(arch::avx2, const float* x, std::size_t n, std::size_t block, tie_mode ties, CodeOf&& code_of,
                 DivisorOf&& divisor_of, std::uint8_t* out, Scale* scales) noexcept {
  // The per-block loop over the AVX2 kernels, for whatever the fused loop leaves: the
  // elements [begin, begin + len) starting at block b.
  auto rest = [&](std::size_t b, std::size_t begin, std::size_t len) {
    std::uint8_t* o = L == code_layout::ggml_mxfp4 ? out + b * 17
                      : L == code_layout::nibbles  ? out + begin / 2
                                                   : out + begin;
    loops::amax_blocks<Element, L>(
        x + begin, len, block, ties, code_of, divisor_of, o, L == code_layout::ggml_mxfp4 ? scales : scales + b,
        [](const float* p, std::size_t m) { return block_amax(arch::avx2{}, p, m); },
        [](const float* p, std::size_t m, float d, tie_mode t, std::uint8_t* c) {
          encode<Element>(arch::avx2{}, p, m, d, t, c);
        },
        [](const float* p, std::size_t m, float d, tie_mode t, std::uint8_t* c) {
          if constexpr (Element::bits <= 4) encode_packed<Element>(arch::avx2{}, p, m, d, t, c);
        });
  };
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (block == 16 || block % 32 == 0) {
      // Inputs of 32 MiB and more write their codes with non-temporal stores (no read for
      // ownership of output lines that will not be read again soon; see streams), out of
      // line (stream_dispatch); ggml's 17-byte blocks never.
      avx2_detail::with_ties(ties, [&](auto t) {
        auto run = [&](auto stream) {
          avx2_detail::e2m1_amax_blocks<L, decltype(t)::value, decltype(stream)::value>(x, n, block, code_of, divisor_of,
                                                                                        out, scales, rest);
        };
        if constexpr (L == code_layout::ggml_mxfp4)
          run(std::false_type{});
        else
          avx2_detail::stream_dispatch(n, out, run);
      });
      return;
    }
  }
  rest(0, 0, n);
}

namespace avx2_detail {
// Stores 8 floats, non-temporally (16-byte aligned halves) when Stream.
template <bool Stream>
BLOCKQ_ALWAYS_INLINE void store8(float* p, __m256 v) noexcept {
  if constexpr (Stream) {
    _mm_stream_ps(p, _mm256_castps256_ps128(v));
    _mm_stream_ps(p + 4, _mm256_extractf128_ps(v, 1));
  } else {
    _mm256_storeu_ps(p, v);
  }
}

// Fused E2M1 dequantization of whole blocks of 32 * m (or pairs of 16) elements.
template <bool Packed, bool Stream, class Scale, class DivisorOf>
std::size_t e2m1_decode_blocks(const std::uint8_t* codes, const Scale* scales, std::size_t n, std::size_t block,
                               DivisorOf& divisor_of, float* out) noexcept {
  std::size_t i = 0;
  auto decode32 = [&](const std::uint8_t* c, __m256 s0, __m256 s1, float* o) BLOCKQ_LAMBDA_INLINE {
    __m128i c0, c1;
    if constexpr (Packed) {
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
      const __m128i lo = _mm_and_si128(b, _mm_set1_epi8(0x0F));
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(0x0F));
      c0 = _mm_unpacklo_epi8(lo, hi);
      c1 = _mm_unpackhi_epi8(lo, hi);
    } else {
      c0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
      c1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16));
    }
    store8<Stream>(o, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(c0)), s0));
    store8<Stream>(o + 8, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(_mm_srli_si128(c0, 8))), s0));
    store8<Stream>(o + 16, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(c1)), s1));
    store8<Stream>(o + 24, _mm256_mul_ps(e2m1_decode8(_mm256_cvtepu8_epi32(_mm_srli_si128(c1, 8))), s1));
  };
  constexpr std::size_t per = Packed ? 2 : 1;  // elements a code byte
  if (block == 16) {
    for (std::size_t b = 0; i + 32 <= n; i += 32, b += 2)
      decode32(codes + i / per, _mm256_set1_ps(divisor_of(scales[b])), _mm256_set1_ps(divisor_of(scales[b + 1])), out + i);
  } else {
    for (std::size_t b = 0; i + block <= n; i += block, ++b) {
      const __m256 s = _mm256_set1_ps(divisor_of(scales[b]));
      for (std::size_t j = i; j < i + block; j += 32) decode32(codes + j / per, s, s, out + j);
    }
  }
  if constexpr (Stream) _mm_sfence();
  return i;
}

// A dequantization of 32 MiB and more (streams; blocks of 16 or of a multiple of 32):
// ordinary stores by `ordinary` (AVX-512's loop, called with e2m1_decode_blocks's arguments,
// the divisor as an lvalue) or this loop's non-temporal ones, whichever is faster here
// (tuned_choice; trial chunks of whole pairs of 16). Returns the elements done (whole
// blocks). Out of line, its arguments by value: inlined beside the in-cache loop, its
// closures escaped and that loop slowed (AVX-512 NVFP4 dequantize at 64 KiB 12.6 -> 9.0 G/s).
// The divisor goes through a wrapper of its own type, so that the loops here are other
// instantiations than the in-cache call's: sharing one, that call lost the copy GCC
// specialises to its constant arguments (AVX-512 MXFP4 dequantize at 64 KiB -5 %).
template <bool Packed, class Scale, class DivisorOf, class Ordinary>
BLOCKQ_NOINLINE std::size_t e2m1_decode_tuned(const std::uint8_t* codes, const Scale* scales, std::size_t n,
                                              std::size_t block, DivisorOf divisor, float* out,
                                              Ordinary ordinary) noexcept {
  auto divisor_of = [&divisor](auto s) { return divisor(s); };
  std::size_t done = 0;
  auto run = [&](std::size_t end, auto nt) {
    const std::uint8_t* c = codes + (Packed ? done / 2 : done);
    if constexpr (decltype(nt)::value)
      done += e2m1_decode_blocks<Packed, true>(c, scales + done / block, end - done, block, divisor_of, out + done);
    else
      done += ordinary(c, scales + done / block, end - done, block, divisor_of, out + done);
  };
  tuned_choice(done, n, block < 32 ? 32 : block, run);
  return done;
}
}  // namespace avx2_detail

template <class Element, bool Packed, class Scale, class DivisorOf>
void decode_blocks(arch::avx2, const std::uint8_t* codes, const Scale* scales, std::size_t n, std::size_t block,
                   DivisorOf&& divisor_of, float* out) noexcept {
  std::size_t done = 0;
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (block == 16 || block % 32 == 0) {
      // Outputs well past the last-level cache are written with non-temporal stores (no
      // read for ownership; streams). AVX-512 chooses between them and ordinary stores
      // at run time (arch/avx512_decode.hpp); here the same choice (e2m1_decode_tuned) cost
      // the in-cache loop 5-10 % at 64 KiB on Zen 5 (not understood: that loop's code is
      // the same), so AVX2 keeps them (README, Benchmarks).
      done = avx2_detail::streams(n, out)
                 ? avx2_detail::e2m1_decode_blocks<Packed, true>(codes, scales, n, block, divisor_of, out)
                 : avx2_detail::e2m1_decode_blocks<Packed, false>(codes, scales, n, block, divisor_of, out);
    }
  }
  if (done < n)
    loops::decode_blocks<Element, Packed>(
        codes + (Packed ? done / 2 : done), scales + done / block, n - done, block, divisor_of, out + done,
        [](const std::uint8_t* c, std::size_t m, float d, float* o) { decode<Element>(arch::avx2{}, c, m, d, o); },
        [](const std::uint8_t* c, std::size_t m, float d, float* o) {
          if constexpr (Element::bits <= 4) decode_packed<Element>(arch::avx2{}, c, m, d, o);
        });
}

namespace avx2_detail {
// Integer codes of 16 or 32 elements at divider div, min 0 (x - 0 is x, so the subtraction
// of the scalar kernel is left out), as encode_int computes them. Signed codes fit a signed
// byte, so they are narrowed with signed saturation (which leaves them as they are) and
// masked to b bits once per byte; unsigned ones (0..255) narrow unsigned and need no mask.
// Clamp false: the caller knows |x / d| cannot round past qmax (see int_amax_blocks).
// Stream: non-temporal stores (16-byte aligned out).
template <bool Clamp, bool Stream, class Div>
BLOCKQ_ALWAYS_INLINE void int_codes(const float* x, std::size_t len, Div div, __m256 qmin, __m256 qmax, int_format fmt,
                                    std::uint8_t* out) noexcept {
  auto q8 = [&](const float* p) BLOCKQ_LAMBDA_INLINE {
    const __m256 y = div(_mm256_loadu_ps(p));
    return _mm256_cvtps_epi32(Clamp ? _mm256_min_ps(qmax, _mm256_max_ps(qmin, y)) : y);
  };
  // packs leave dword j holding elements 4 * {0, 2, 4, 6, 1, 3, 5, 7}[j] onwards.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i mask = _mm256_set1_epi8(static_cast<char>(fmt.mask()));
  auto narrow = [&](__m256i a, __m256i b) BLOCKQ_LAMBDA_INLINE {
    return fmt.is_signed ? _mm256_and_si256(_mm256_packs_epi16(a, b), mask) : _mm256_packus_epi16(a, b);
  };
  auto narrow32 = [&](__m256i a, __m256i b) BLOCKQ_LAMBDA_INLINE {
    return fmt.is_signed ? _mm256_packs_epi32(a, b) : _mm256_packus_epi32(a, b);
  };
  const __m256i a = narrow32(q8(x), q8(x + 8));
  if (len == 16) {
    const __m256i p = _mm256_permutevar8x32_epi32(narrow(a, a), order);
    if constexpr (Stream)
      _mm_stream_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(p));
    else
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(p));
    return;
  }
  const __m256i b = narrow32(q8(x + 16), q8(x + 24));
  const __m256i p = _mm256_permutevar8x32_epi32(narrow(a, b), order);
  if constexpr (Stream) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(p));
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 16), _mm256_extracti128_si256(p, 1));
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), p);
  }
}
}  // namespace avx2_detail

namespace avx2_detail {
// The per-block way of the integer block loops: loops::int_amax_blocks over the AVX2
// kernels, with the block maximum amax(p, m) (block_amax, or block_signed_max).
template <class ScaleOf, class Amax>
BLOCKQ_ALWAYS_INLINE auto int_blocks_rest(const float* x, std::size_t block, int_format fmt, ScaleOf& scale_of,
                                          std::uint8_t* codes, float* scales, Amax amax) noexcept {
  return [=, &scale_of](std::size_t b, std::size_t begin, std::size_t len) {
    loops::int_amax_blocks(x + begin, len, block, fmt, scale_of, codes + begin, scales + b, amax,
                           [](const float* p, std::size_t m, float s, float mn, int_format f, std::uint8_t* o) {
                             encode_int(arch::avx2{}, p, m, s, mn, f, o);
                           });
  };
}

// The frame of the fused integer block loops of every vector tier: group(i, b) does
// the W blocks (8 here, 16 for AVX-512) of 16 or 32 from element i (block b) of x on,
// rest(b, begin, len) the other block sizes and the tail. Streamed (Stream, see
// streams), the groups store their codes non-temporally (they see Stream too) and
// the input's software prefetch is chosen at run time (tuned_choice), as amax_blocks does.
template <std::size_t W, bool Stream, class Group, class Rest>
BLOCKQ_ALWAYS_INLINE void int_block_groups(const float* x, std::size_t n, std::size_t block, Group&& group, Rest&& rest) {
  std::size_t b = 0, i = 0;
  if (block == 16 || block == 32) {
    const std::size_t size = W * block;
    auto groups = [&](std::size_t end, auto prefetch) BLOCKQ_LAMBDA_INLINE {
      for (; i + size <= end; i += size, b += W) {
        if constexpr (decltype(prefetch)::value) prefetch_ahead(x + i, size);
        group(i, b);
      }
    };
    run_groups<Stream>(i, n, size, groups);
  }
  if (i < n) rest(b, i, n - i);
}

// Fused over groups of 8 blocks of 16 or 32 (block_maxima8, the 8 scales at once for
// quotient_block_scale), the rest per block with the AVX2 kernels.
template <bool Stream, class ScaleOf>
void int_amax_blocks8(const float* x, std::size_t n, std::size_t block, int_format fmt, ScaleOf& scale_of,
                      std::uint8_t* codes, float* scales) noexcept {
  const auto rest = int_blocks_rest(x, block, fmt, scale_of, codes, scales,
                                    [](const float* p, std::size_t m) { return block_amax(arch::avx2{}, p, m); });
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(fmt.qmin()));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(fmt.qmax()));
  // Symmetric absmax (scale fl(amax / qmax)): with a normal scale d, |x| <= amax gives
  // |x / d| <= qmax (1 + 2^-23) < qmax + 1/2, so rounding stays within +-qmax and the
  // clamp of encode_int never acts; a subnormal d has no such bound and clamps.
  bool quotient = false;
  if constexpr (std::is_same_v<std::decay_t<ScaleOf>, quotient_block_scale>)
    quotient = fmt.is_signed && scale_of.q == static_cast<float>(fmt.qmax());
  int_block_groups<8, Stream>(x, n, block, [&](std::size_t i, std::size_t b) BLOCKQ_LAMBDA_INLINE {
    const __m256i maxima = block_maxima8(x + i, block);
    if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(maxima, splat(0x7F7FFFFFu)))) != 0) {
      rest(b, i, 8 * block);
      return;
    }
    alignas(32) float s[8];
    identity_divisor same;
    block_scales8(maxima, scale_of, same, s);
    std::memcpy(scales + b, s, sizeof s);
    // The usual group: eight normal finite scales, each block by the true division (a
    // power-of-two scale too: x * (1 / s) is x / s exactly there), no per-block tests
    // (+4-5 % at 64 KiB on Zen 4 against testing each block; README, Benchmarks).
    const __m256 sv = _mm256_load_ps(s);
    const __m256 mag = _mm256_and_ps(sv, _mm256_castsi256_ps(splat(0x7FFFFFFFu)));
    const __m256 normal = _mm256_and_ps(_mm256_cmp_ps(mag, _mm256_set1_ps(std::numeric_limits<float>::min()), _CMP_GE_OQ),
                                        _mm256_cmp_ps(mag, _mm256_set1_ps(std::numeric_limits<float>::max()), _CMP_LE_OQ));
    if (_mm256_movemask_ps(normal) == 0xFF) {
      auto all = [&](auto clamp) BLOCKQ_LAMBDA_INLINE {
        for (std::size_t j = 0; j < 8; ++j)
          int_codes<decltype(clamp)::value, Stream>(x + i + j * block, block, divide_by<f32x8>{_mm256_set1_ps(s[j])}, qmin,
                                                    qmax, fmt, codes + i + j * block);
      };
      if (quotient)
        all(std::false_type{});
      else
        all(std::true_type{});
      return;
    }
    for (std::size_t j = 0; j < 8; ++j) {
      std::uint8_t* o = codes + i + j * block;
      if (!(s[j] != 0.0f) || !detail::is_finite(s[j])) {
        rest(b + j, i + j * block, block);  // zero (or odd) scales: the scalar sequence
        continue;
      }
      const float* xb = x + i + j * block;
      with_divider(s[j], [&](auto div) BLOCKQ_LAMBDA_INLINE {
        if (quotient && s[j] >= std::numeric_limits<float>::min())
          int_codes<false, Stream>(xb, block, div, qmin, qmax, fmt, o);
        else
          int_codes<true, Stream>(xb, block, div, qmin, qmax, fmt, o);
      });
    }
  }, rest);
}
}  // namespace avx2_detail

template <class ScaleOf>
void int_amax_blocks(arch::avx2, const float* x, std::size_t n, std::size_t block, int_format fmt,
                     ScaleOf&& scale_of, std::uint8_t* codes, float* scales) noexcept {
  avx2_detail::stream_dispatch(n, codes, [&](auto stream) {
    avx2_detail::int_amax_blocks8<decltype(stream)::value>(x, n, block, fmt, scale_of, codes, scales);
  });
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE

#endif  // BLOCKQ_WITH_AVX2
