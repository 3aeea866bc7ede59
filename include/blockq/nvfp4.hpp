// SPDX-License-Identifier: Apache-2.0
// NVFP4 (SPEC §4): E2M1 elements in blocks of 16, an E4M3 scale per block and
// one FP32 scale per tensor, as NVIDIA ModelOpt stores them.
//
// Rules: absmax (default); mse (the E4M3 block scale with the least block SSE
// among all 126 positive finite E4M3 values times the tensor scale, exactly:
// search/discrete.hpp) and hessian (the least r^T H_j r: search/hessian.hpp).
// Both start from absmax and keep it unless a scale is strictly better; the
// tensor scale is the absmax one in every rule. Rule hessian needs Hessians
// of block 16:
//   auto h = blockq::block_hessians::from_activations(acts, K, 16);  // acts [T, K]
//   blockq::nvfp4_tensor t = q.quantize(weight, h);                  // weight [rows, K]
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/detail/codec.hpp"
#include "blockq/formats/half.hpp"
#include "blockq/formats/minifloat.hpp"
#include "blockq/kernels.hpp"
#include "blockq/scale_rule.hpp"
#include "blockq/search/discrete.hpp"
#include "blockq/search/hessian.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct nvfp4_options {
  scale_rule rule = scale_rule::absmax;
  tie_mode ties = tie_mode::even;
  // false: the tensor scale is 1 (the block scales alone carry the range).
  bool use_tensor_scale = true;
  // "4 over 6": s_t = amax / (6 * 256) instead of amax / (6 * 448), so that the block
  // scales keep room above the largest block's absmax scale (448 / 256 > 6 / 4): rule mse
  // can then map any block's amax to 4 instead of 6 (its search covers every E4M3 scale).
  bool four_over_six = false;
};

struct nvfp4_tensor {
  std::vector<std::uint8_t> codes;   // one E2M1 code a byte
  std::vector<std::uint8_t> scales;  // one E4M3 code a block
  float tensor_scale = 1.0f;
};

namespace detail {
inline void check_tensor_scale(float s) {
  require(is_finite(s) && s > 0.0f, "tensor scale must be finite and positive, got " + std::to_string(s));
}
}  // namespace detail

template <class Arch = default_arch>
class nvfp4_quantizer {
 public:
  using arch_type = Arch;
  static constexpr std::size_t block = 16;
  static constexpr float e2m1_max = e2m1::max_value;  // 6
  static constexpr float e4m3_max = e4m3::max_value;  // 448

  explicit nvfp4_quantizer(nvfp4_options opt = {}) : opt_(opt) {
    detail::require(opt_.rule == scale_rule::absmax || opt_.rule == scale_rule::mse ||
                        opt_.rule == scale_rule::hessian,
                    detail::rule_error(opt_.rule, "NVFP4 (use absmax, mse, hessian)"));
  }

  const nvfp4_options& options() const noexcept { return opt_; }
  static constexpr std::size_t num_blocks(std::size_t n) noexcept { return detail::ceil_div(n, block); }

  // s_t = amax / (6 * 448) over the finite elements (ModelOpt's convention), so that the
  // largest block scale is E4M3's 448 (four_over_six: amax / (6 * 256), largest 256);
  // 1 when that amax is 0 or the tensor scale is switched off. Two deviations keep every
  // block scale representable where that quotient cannot (SPEC §4 does not cover these
  // ranges; tensor_scale_of):
  // - tiny tensors, amax / 2688 below FLT_MIN (amax < 3.2e-35): s_t = 2^(e - 10) with
  //   e = floor(log2 amax) (at least 2^-149), a power of two that puts the largest block
  //   scale in [170, 342) instead of flushing every block to zero (four_over_six:
  //   2^(e - 9), [85, 171));
  // - huge tensors, 6 * fl(448 * s_t) overflowing float32 (amax within an ulp or so of
  //   FLT_MAX): s_t is stepped down an ulp at a time until the largest dequantized value
  //   is finite.
  // x holds float, float16 or bfloat16 (16-bit inputs converted exactly, in chunks on the stack).
  template <detail::input_range R>
  float tensor_scale(R&& x) const noexcept {
    if (!opt_.use_tensor_scale) return 1.0f;
    const auto xs = detail::input_span(x);
    using T = typename decltype(xs)::value_type;
    if constexpr (std::is_same_v<T, float>) {
      return tensor_scale_of(kernels::finite_amax(Arch{}, xs.data(), xs.size()));
    } else {
      constexpr std::size_t chunk = detail::float_buffer<T>::kStackFloats;
      detail::float_buffer<T> buf(chunk);  // chunk floats fit the stack: no allocation
      float amax = 0.0f;
      for (std::size_t i = 0; i < xs.size(); i += chunk) {
        const std::size_t n = xs.size() - i < chunk ? xs.size() - i : chunk;
        kernels::to_float(Arch{}, xs.data() + i, n, buf.data());
        const float a = kernels::finite_amax(Arch{}, buf.data(), n);
        amax = a > amax ? a : amax;
      }
      return tensor_scale_of(amax);
    }
  }

  // The E4M3 code of one block under rule absmax: E4M3(amax / (6 * s_t));
  // 0x7F (NaN) for a block holding NaN or Inf. The search rules start from it.
  std::uint8_t absmax_scale(std::span<const float> blk, float s_t) const noexcept {
    return kernels::e4m3_block_scale{s_t}(kernels::block_amax(Arch{}, blk.data(), blk.size()));
  }

  // The E4M3 code the rule gives one block (rule hessian: use the overload below).
  std::uint8_t block_scale(std::span<const float> blk, float s_t) const {
    if (opt_.rule == scale_rule::hessian)
      detail::require(false, "rule hessian needs block Hessians: call quantize(w, hessians, ...) or block_scale(blk, s_t, set, scratch, h)");
    if (opt_.rule == scale_rule::absmax) return absmax_scale(blk, s_t);
    std::array<float, 126> set;
    search::e4m3_scales(s_t, set);
    return block_scale(blk, s_t, set, {}, nullptr);
  }

  // As above without allocating: set = search::e4m3_scales(s_t), scratch at
  // least blk.size() floats and h the block's Hessian (rule hessian only).
  std::uint8_t block_scale(std::span<const float> blk, float s_t, std::span<const float, 126> set,
                           std::span<float> scratch, const search::hessian_block* h) const noexcept {
    const float amax = kernels::block_amax(Arch{}, blk.data(), blk.size());
    const std::uint8_t start = kernels::e4m3_block_scale{s_t}(amax);
    if (opt_.rule == scale_rule::absmax || start == e4m3::nan_code) return start;
    const std::size_t first = set_index(start);
    const std::size_t i = opt_.rule == scale_rule::hessian && h
                              ? search::discrete_hessian_index<e2m1>(Arch{}, blk, set, first, opt_.ties, *h, scratch, amax)
                              : search::e4m3_mse_index(Arch{}, blk, set, first, opt_.ties, amax);
    return code_at(i, start);
  }

  // The divisor of a block's elements, fl(b * s_t) (kernels::e4m3_block_divisor, as every
  // encode and decode path of this class takes it).
  static float effective_scale(std::uint8_t scale_code, float s_t) noexcept {
    return kernels::e4m3_block_divisor{s_t}(scale_code);
  }

  // x holds float, float16 or bfloat16 (16-bit inputs: each block is converted to float32,
  // exactly, and quantized as float).
  template <detail::input_range R>
  void quantize(R&& x, float s_t, std::span<std::uint8_t> codes, std::span<std::uint8_t> scales) const {
    quantize_impl<false>(detail::input_span(x), s_t, codes, scales);
  }

  // As quantize with codes packed two a byte, low nibble first (ModelOpt's
  // `weight`): packed has (x.size() + 1) / 2 bytes.
  template <detail::input_range R>
  void quantize_packed(R&& x, float s_t, std::span<std::uint8_t> packed, std::span<std::uint8_t> scales) const {
    quantize_impl<true>(detail::input_span(x), s_t, packed, scales);
  }

  // out[i] = decode(codes[i]) * fl(b * s_t).
  void dequantize(std::span<const std::uint8_t> codes, std::span<const std::uint8_t> scales, float s_t,
                  std::span<float> out) const {
    dequantize_impl<false>(codes, scales, s_t, out);
  }

  void dequantize_packed(std::span<const std::uint8_t> packed, std::span<const std::uint8_t> scales,
                         float s_t, std::span<float> out) const {
    dequantize_impl<true>(packed, scales, s_t, out);
  }

  nvfp4_tensor quantize(std::span<const float> x) const {
    nvfp4_tensor t{std::vector<std::uint8_t>(x.size()), std::vector<std::uint8_t>(num_blocks(x.size())),
                   tensor_scale(x)};
    quantize(x, t.tensor_scale, t.codes, t.scales);
    return t;
  }

  // A weight w [rows, K] row-major (whole rows; K = h.columns(), h.block()
  // == 16) with the Hessians of its column blocks. Rule hessian uses them;
  // the other rules quantize as quantize(w, s_t, codes, scales).
  void quantize(std::span<const float> w, float s_t, const block_hessians& h, std::span<std::uint8_t> codes,
                std::span<std::uint8_t> scales) const {
    check_hessians(w.size(), h);
    quantize_impl<false>(w, s_t, codes, scales, &h);
  }

  void quantize_packed(std::span<const float> w, float s_t, const block_hessians& h,
                       std::span<std::uint8_t> packed, std::span<std::uint8_t> scales) const {
    check_hessians(w.size(), h);
    quantize_impl<true>(w, s_t, packed, scales, &h);
  }

  nvfp4_tensor quantize(std::span<const float> w, const block_hessians& h) const {
    nvfp4_tensor t{std::vector<std::uint8_t>(w.size()), std::vector<std::uint8_t>(num_blocks(w.size())),
                   tensor_scale(w)};
    quantize(w, t.tensor_scale, h, t.codes, t.scales);
    return t;
  }

  std::vector<float> dequantize(const nvfp4_tensor& t) const {
    std::vector<float> out(t.codes.size());
    dequantize(t.codes, t.scales, t.tensor_scale, out);
    return out;
  }

 private:
  // Index i of the set is code i + 1; code 0 (a zero divisor) is the zero start.
  static std::size_t set_index(std::uint8_t code) noexcept {
    return code == 0 ? search::zero_start : std::size_t{code} - 1u;
  }
  // The code of a search's result i from that start.
  static std::uint8_t code_at(std::size_t i, std::uint8_t start) noexcept {
    return i == search::zero_start ? start : static_cast<std::uint8_t>(i + 1u);
  }

  float tensor_scale_of(float amax) const noexcept {
    if (!(amax > 0.0f)) return 1.0f;
    float s = amax / (e2m1_max * (opt_.four_over_six ? 256.0f : e4m3_max));
    if (s >= std::numeric_limits<float>::min()) {
      while (!detail::is_finite(e2m1_max * (e4m3_max * s))) s = std::nextafter(s, 0.0f);
      return s;
    }
    const int e = detail::floor_log2(amax) - (opt_.four_over_six ? 9 : 10);
    return detail::exp2i(e > -149 ? e : -149);
  }

  void check_hessians(std::size_t n, const block_hessians& h) const {
    detail::require(h.block() == block,
                    "the Hessians have block size " + std::to_string(h.block()) + ", NVFP4 uses 16");
    detail::require(n % h.columns() == 0, "the weight has " + std::to_string(n) +
                                              " elements, not a multiple of K = " + std::to_string(h.columns()));
  }

  template <bool Packed, class T = float>
  void quantize_impl(std::span<const T> x, float s_t, std::span<std::uint8_t> codes,
                     std::span<std::uint8_t> scales, const block_hessians* h = nullptr) const {
    detail::check_tensor_scale(s_t);
    detail::require(opt_.rule != scale_rule::hessian || h,
                    "rule hessian needs block Hessians: call quantize(w, s_t, hessians, ...)");
    if (opt_.rule == scale_rule::absmax) {  // rule absmax in one pass: kernels::amax_blocks, fused per architecture
      detail::quantize_amax_blocks<e2m1, Arch, Packed ? kernels::code_layout::nibbles : kernels::code_layout::bytes>(
          x, block, opt_.ties, codes, scales, kernels::e4m3_block_scale{s_t}, kernels::e4m3_block_divisor{s_t});
      return;
    }
    std::array<float, 126> set{};
    search::e4m3_scales(s_t, set);
    detail::check_codec_args<Packed>(x.size(), block, codes.size(), scales.size());
    if (opt_.rule == scale_rule::mse) {
      searched_blocks<Packed>(x, s_t, codes, scales, [&](std::size_t, const float* xc, std::size_t n, std::uint8_t* sc) {
        std::size_t j = 0;
        for (; j + mse_group * block <= n; j += mse_group * block) mse_scales(xc + j, s_t, set, sc + j / block);
        for (; j < n; j += block)
          sc[j / block] = block_scale(std::span<const float>(xc + j, std::min(block, n - j)), s_t, set, {}, nullptr);
      });
      return;
    }
    std::vector<float> scratch(search::hessian_scratch_floats(block));
    const std::size_t col_blocks = h->num_blocks();
    searched_blocks<Packed>(x, s_t, codes, scales, [&](std::size_t b0, const float* xc, std::size_t n, std::uint8_t* sc) {
      for (std::size_t j = 0; j < n; j += block) {
        const search::hessian_block hb = (*h)[(b0 + j / block) % col_blocks];
        sc[j / block] = block_scale(std::span<const float>(xc + j, std::min(block, n - j)), s_t, set, scratch, &hb);
      }
    });
  }

  // Rule mse searches this many whole blocks' scales together (mse_scales).
  static constexpr std::size_t mse_group = 8;

  // The mse rule's codes of mse_group whole blocks at x, as block_scale gives them: their
  // absmax starts at once (kernels::nvfp4_absmax_blocks8), their windows scored back to back
  // (search::e4m3_mse_indices); a group with a NaN or Inf block by block_scale, one by one.
  void mse_scales(const float* x, float s_t, std::span<const float, 126> set, std::uint8_t* out) const noexcept {
    constexpr std::size_t K = mse_group;
    std::array<std::span<const float>, K> blk;
    std::array<float, K> amax;
    std::array<std::size_t, K> first, index;
    kernels::nvfp4_absmax_blocks8(Arch{}, x, s_t, amax.data(), out);
    for (std::size_t k = 0; k < K; ++k) blk[k] = std::span<const float>(x + k * block, block);
    for (std::size_t k = 0; k < K; ++k) {
      if (out[k] == e4m3::nan_code) {
        for (std::size_t j = 0; j < K; ++j) out[j] = block_scale(blk[j], s_t, set, {}, nullptr);
        return;
      }
      first[k] = set_index(out[k]);
    }
    search::e4m3_mse_indices<K>(Arch{}, blk.data(), set, first.data(), opt_.ties, amax.data(), index.data());
    for (std::size_t k = 0; k < K; ++k) out[k] = code_at(index[k], out[k]);
  }

  // Rules mse and hessian over a tensor, in chunks of 32 blocks: the chunk's scale codes
  // first (scales_of(its first block, its floats, their count, their codes); rule mse eight
  // blocks at a time, mse_scales), then its codes (kernels::nvfp4_scaled_blocks, fused where
  // the architecture has it). The same bytes as the block loop (detail::quantize_blocks with
  // block_scale) in about 2/3 of the time for rule mse on Zen 5 (README, Benchmarks): each
  // block's search is a chain of divisions and sums, and one block's search and encoding
  // alone fill the core's reorder buffer, so one block at a time overlapped little of the next
  // block's chain with its own.
  template <bool Packed, class T, class ScalesOf>
  void searched_blocks(std::span<const T> x, float s_t, std::span<std::uint8_t> codes, std::span<std::uint8_t> scales,
                       ScalesOf&& scales_of) const {
    constexpr std::size_t chunk = 32 * block;
    [[maybe_unused]] detail::float_buffer<T> buf(chunk);
    for (std::size_t i = 0; i < x.size(); i += chunk) {
      const std::size_t n = x.size() - i < chunk ? x.size() - i : chunk;
      const float* xc = detail::floats_of<Arch>(x, i, n, buf);
      std::uint8_t* sc = scales.data() + i / block;
      scales_of(i / block, xc, n, sc);
      std::uint8_t* out = codes.data() + detail::code_bytes<Packed>(i);
      kernels::nvfp4_scaled_blocks<Packed ? kernels::code_layout::nibbles : kernels::code_layout::bytes>(
          Arch{}, xc, n, opt_.ties, s_t, sc, out, [&](std::size_t b, std::size_t begin, std::size_t len) {
            for (const std::size_t end = begin + len; begin < end; begin += block, ++b)
              detail::encode_block<e2m1, Arch, Packed>(xc + begin, std::min(block, end - begin),
                                                       effective_scale(sc[b], s_t), opt_.ties,
                                                       out + detail::code_bytes<Packed>(begin));
          });
    }
  }

  template <bool Packed>
  void dequantize_impl(std::span<const std::uint8_t> codes, std::span<const std::uint8_t> scales,
                       float s_t, std::span<float> out) const {
    detail::check_tensor_scale(s_t);
    detail::dequantize_blocks<e2m1, Arch, Packed>(codes, scales, block, out, kernels::e4m3_block_divisor{s_t});
  }

  nvfp4_options opt_;
};

BLOCKQ_END_NAMESPACE
