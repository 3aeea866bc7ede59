// SPDX-License-Identifier: Apache-2.0
// The block loops of arch/scalar.hpp (namespace loops) over any tag's own kernels: one
// template serves arch::scalar and arch::neon (and any tag without fused loops of its own);
// AVX2 and AVX-512 fuse theirs and overload these names in arch/avx2.hpp.
//
// This header comes after every architecture header (kernels.hpp includes it last): the
// kernels are called unqualified with a dependent tag, and since the tags live in
// blockq::arch, argument-dependent lookup does not reach blockq::kernels; only the
// overloads declared before this point are candidates, so all of them must be.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "blockq/arch.hpp"
#include "blockq/arch/scalar.hpp"
#include "blockq/arch/signed_max.hpp"
#if BLOCKQ_WITH_AVX2
#include "blockq/arch/avx2.hpp"
#include "blockq/arch/mx_search_avx2.hpp"
#include "blockq/arch/nvfp4_search_avx2.hpp"
#include "blockq/arch/lsq_avx2.hpp"
#endif
#if BLOCKQ_WITH_AVX512
#include "blockq/arch/avx512.hpp"
#include "blockq/arch/avx512_decode.hpp"
#include "blockq/arch/avx512_e2m1.hpp"
#include "blockq/arch/avx512_int.hpp"
#include "blockq/arch/nvfp4_search_avx512.hpp"
#endif
#if BLOCKQ_WITH_NEON
#include "blockq/arch/neon.hpp"
#endif

BLOCKQ_BEGIN_NAMESPACE
namespace kernels {

// The NVFP4 window's bounds (search::e4m3_mse_index, search/discrete.hpp): as
// window_sse_estimates<e2m1> (est[j] ~ block_sse<e2m1>(x, n, scales[j], ties) for k <= 16
// scales, -1 when unknown; tail its lower bound of every scale >= 2 half), with a looser
// error: each known est[j] within window_bounds_relative_error(n) t +
// window_bounds_absolute_error(n) of the exact t under every tie rule, so that a tier may
// round a quotient near an E2M1 threshold either way (arch/nvfp4_search_avx2.hpp says why
// that costs at most a relative 2^-16 a term). Scalar and NEON give window_sse_estimates'
// values, which meet it; AVX2 and AVX-512 their own kernels (arch/nvfp4_search_avx2.hpp,
// arch/nvfp4_search_avx512.hpp). least: the least known est[j] (+inf when none is known).
constexpr double window_bounds_relative_error(std::size_t n) noexcept { return estimate_relative_error(n) + 0x1p-14; }
constexpr double window_bounds_absolute_error(std::size_t n) noexcept { return 2.0 * estimate_absolute_error(n); }

inline float least_known(const float* est, std::size_t k) noexcept {
  float least = std::numeric_limits<float>::infinity();
  for (std::size_t j = 0; j < k; ++j) least = est[j] >= 0.0f && est[j] < least ? est[j] : least;
  return least;
}
inline void window_sse_bounds(arch::scalar, const float* x, std::size_t n, const float* scales, std::size_t k,
                              tie_mode ties, float half, float* est, float& tail, float& least) noexcept {
  window_sse_estimates<e2m1>(arch::scalar{}, x, n, scales, k, ties, half, est, tail);
  least = least_known(est, k);
}
inline void window_sse_bounds(arch::neon, const float* x, std::size_t n, const float* scales, std::size_t k,
                              tie_mode ties, float half, float* est, float& tail, float& least) noexcept {
  window_sse_estimates<e2m1>(arch::neon{}, x, n, scales, k, ties, half, est, tail);
  least = least_known(est, k);
}

// The tags that use these loops: all but those whose fused loops arch/avx2.hpp provides
// (without that header, arch::avx2 falls back here like any other tag).
template <class Arch>
concept generic_block_loops = std::derived_from<Arch, arch::scalar> &&
                              !(BLOCKQ_WITH_AVX2 && std::derived_from<Arch, arch::avx2>);

template <class Element, code_layout L, generic_block_loops Arch, class Scale, class CodeOf, class DivisorOf>
void amax_blocks(Arch, const float* x, std::size_t n, std::size_t block, tie_mode ties, CodeOf&& code_of,
                 DivisorOf&& divisor_of, std::uint8_t* out, Scale* scales) noexcept {
  loops::amax_blocks<Element, L>(
      x, n, block, ties, code_of, divisor_of, out, scales,
      [](const float* p, std::size_t m) { return block_amax(Arch{}, p, m); },
      [](const float* p, std::size_t m, float d, tie_mode t, std::uint8_t* o) { encode<Element>(Arch{}, p, m, d, t, o); },
      [](const float* p, std::size_t m, float d, tie_mode t, std::uint8_t* o) {
        if constexpr (Element::bits <= 4) encode_packed<Element>(Arch{}, p, m, d, t, o);
      });
}

// MXFP4 rule mse over whole tensors (mx_quantizer; the fused version and its contract are in
// arch/mx_search_avx2.hpp): here every block takes the per-block path, rest(b, begin, len, false).
template <code_layout L, generic_block_loops Arch, class Rest>
void mxfp4_mse_blocks(Arch, const float*, std::size_t n, tie_mode, std::uint8_t*, std::uint8_t*, Rest&& rest) {
  rest(std::size_t{0}, std::size_t{0}, n, false);
}

// MXFP4 codes at given UE8M0 scales (the fused version is in arch/mx_search_avx2.hpp): here
// every block takes the per-block encode, rest(b, begin, len).
template <code_layout L, generic_block_loops Arch, class Rest>
void mxfp4_scaled_blocks(Arch, const float*, std::size_t n, tie_mode, const std::uint8_t*, std::uint8_t*,
                         Rest&& rest) {
  rest(std::size_t{0}, std::size_t{0}, n);
}

// The amaxes (block_amax) of the 8 blocks of 16 at x and NVFP4's absmax scale codes of them
// (e4m3_block_scale{s_t}: the NaN code for a NaN or Inf block), for rule mse's starts; AVX2
// computes the 8 at once (arch/nvfp4_search_avx2.hpp).
template <generic_block_loops Arch>
void nvfp4_absmax_blocks8(Arch, const float* x, float s_t, float* amax, std::uint8_t* codes) noexcept {
  for (std::size_t j = 0; j < 8; ++j) {
    amax[j] = block_amax(Arch{}, x + 16 * j, 16);
    codes[j] = e4m3_block_scale{s_t}(amax[j]);
  }
}

// NVFP4 codes at given E4M3 scales (rule mse's encode, after its search; the fused version
// is in arch/nvfp4_search_avx2.hpp): here every block takes the per-block encode,
// rest(b, begin, len).
template <code_layout L, generic_block_loops Arch, class Rest>
void nvfp4_scaled_blocks(Arch, const float*, std::size_t n, tie_mode, float, const std::uint8_t*, std::uint8_t*,
                         Rest&& rest) {
  rest(std::size_t{0}, std::size_t{0}, n);
}

template <generic_block_loops Arch, class ScaleOf>
void int_amax_blocks(Arch, const float* x, std::size_t n, std::size_t block, int_format fmt, ScaleOf&& scale_of,
                     std::uint8_t* codes, float* scales) noexcept {
  loops::int_amax_blocks(
      x, n, block, fmt, scale_of, codes, scales, [](const float* p, std::size_t m) { return block_amax(Arch{}, p, m); },
      [](const float* p, std::size_t m, float s, float mn, int_format f, std::uint8_t* o) {
        encode_int(Arch{}, p, m, s, mn, f, o);
      });
}

// Rule signed_max over a tensor: scales[b] = m / qmin for the block's block_signed_max m, the
// codes at that scale (the AVX2 loop is in arch/signed_max.hpp).
template <generic_block_loops Arch>
void int_signed_max_blocks(Arch, const float* x, std::size_t n, std::size_t block, int_format fmt, std::uint8_t* codes,
                           float* scales) noexcept {
  const signed_quotient_scale scale_of{static_cast<float>(fmt.qmin())};
  loops::int_amax_blocks(
      x, n, block, fmt, scale_of, codes, scales,
      [](const float* p, std::size_t m) { return block_signed_max(Arch{}, p, m); },
      [](const float* p, std::size_t m, float s, float mn, int_format f, std::uint8_t* o) {
        encode_int(Arch{}, p, m, s, mn, f, o);
      });
}

template <class Element, bool Packed, generic_block_loops Arch, class Scale, class DivisorOf>
void decode_blocks(Arch, const std::uint8_t* codes, const Scale* scales, std::size_t n, std::size_t block,
                   DivisorOf&& divisor_of, float* out) noexcept {
  loops::decode_blocks<Element, Packed>(
      codes, scales, n, block, divisor_of, out,
      [](const std::uint8_t* c, std::size_t m, float d, float* o) { decode<Element>(Arch{}, c, m, d, o); },
      [](const std::uint8_t* c, std::size_t m, float d, float* o) {
        if constexpr (Element::bits <= 4) decode_packed<Element>(Arch{}, c, m, d, o);
      });
}

template <class Arch>
double int_lsq_step_of_kernels(Arch, const float* x, const float* w, std::size_t n, float scale, float min,
                               int_format fmt, std::uint8_t* codes, refit_sums& sums) noexcept {
  encode_int(Arch{}, x, n, scale, min, fmt, codes);
  const refit_sums r = int_refit_sums(Arch{}, x, w, codes, n, fmt);
  sums.sq = r.sq;
  sums.sqq = r.sqq;
  sums.sxq = r.sxq;
  return w ? block_wsse_int(Arch{}, x, w, n, scale, min, fmt) : block_sse_int(Arch{}, x, n, scale, min, fmt);
}

// The lsq step where no tier has a fused kernel (arch/avx2.hpp has one).
template <generic_block_loops Arch>
double int_lsq_step(Arch, const float* x, const float* w, std::size_t n, float scale, float min, int_format fmt,
                    std::uint8_t* codes, refit_sums& sums) noexcept {
  return int_lsq_step_of_kernels(Arch{}, x, w, n, scale, min, fmt, codes, sums);
}

// The codes and sums of int_lsq_step without its error (an lsq start, which is not scored):
// encode_int and int_refit_sums (arch/lsq_avx2.hpp fuses them).
template <generic_block_loops Arch>
void int_lsq_start(Arch, const float* x, const float* w, std::size_t n, float scale, float min, int_format fmt,
                   std::uint8_t* codes, refit_sums& sums) noexcept {
  encode_int(Arch{}, x, n, scale, min, fmt, codes);
  const refit_sums r = int_refit_sums(Arch{}, x, w, codes, n, fmt);
  sums.sq = r.sq;
  sums.sqq = r.sqq;
  sums.sxq = r.sxq;
}

// int_lsq_start at each of k scales (the same min): sums[j] gets the sq, sqq, sxq of the codes
// at scales[j] (its sw and sx left as they are); codes: n bytes of scratch. AVX2 overloads
// it with transposed passes (arch/lsq_avx2.hpp), which AVX-512 inherits: like every generic
// loop here it is constrained to generic_block_loops, since an unconstrained template is an
// exact match for arch::avx512 and so beats the arch::avx2 overload (tests/arch_test.cpp).
template <generic_block_loops Arch>
void int_lsq_starts(Arch, const float* x, const float* w, std::size_t n, const float* scales, std::size_t k, float min,
                    int_format fmt, std::uint8_t* codes, refit_sums* sums) noexcept {
  for (std::size_t j = 0; j < k; ++j) int_lsq_start(Arch{}, x, w, n, scales[j], min, fmt, codes, sums[j]);
}

}  // namespace kernels
BLOCKQ_END_NAMESPACE
