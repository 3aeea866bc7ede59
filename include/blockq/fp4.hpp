// SPDX-License-Identifier: Apache-2.0
// FP4 E2M1 elements with a free float32 scale per block (no scale rounding):
// the accuracy ceiling of the 4-bit float grid, and the `fp4` format of the tool.
//
// Rules: absmax (default, amax / 6); lsq (candidate scales around absmax
// with least-squares refits, never worse than absmax: search/refit.hpp);
// mse (the float scale with the least block SSE, exactly up to float
// rounding: search/continuous.hpp; blocks of up to 32 elements eight at a
// time, search/lanes.hpp). quantize_weighted takes one weight per
// element and makes lsq and mse minimise the weighted SSE.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
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
#include "blockq/search/continuous.hpp"
#include "blockq/search/lanes.hpp"
#include "blockq/search/refit.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct fp4_options {
  std::size_t block = 32;
  scale_rule rule = scale_rule::absmax;
  tie_mode ties = tie_mode::even;
};

struct fp4_tensor {
  std::vector<std::uint8_t> codes;  // one E2M1 code a byte
  std::vector<float> scales;        // one float a block
};

template <class Arch = default_arch>
class fp4_quantizer {
 public:
  using element_type = e2m1;
  using arch_type = Arch;

  explicit fp4_quantizer(fp4_options opt = {}) : opt_(opt) {
    detail::check_block(opt_.block);
    detail::require(opt_.rule == scale_rule::absmax || opt_.rule == scale_rule::lsq || opt_.rule == scale_rule::mse,
                    detail::rule_error(opt_.rule, "fp4 (use absmax, lsq, mse)"));
  }

  const fp4_options& options() const noexcept { return opt_; }
  std::size_t num_blocks(std::size_t n) const noexcept { return detail::ceil_div(n, opt_.block); }

  // absmax: amax / 6 in float; 0 for an all-zero block, NaN for a block with NaN or Inf.
  float absmax_scale(std::span<const float> blk) const noexcept {
    const float amax = kernels::block_amax(Arch{}, blk.data(), blk.size());
    if (!detail::is_finite(amax)) return std::numeric_limits<float>::quiet_NaN();
    return kernels::quotient_block_scale{e2m1::max_value}(amax);
  }

  // The scale the rule gives one block (w: its weights, or empty).
  float block_scale(std::span<const float> blk, std::span<const float> w = {}) const {
    workspace ws(opt_.rule, blk.size());
    return block_scale(blk, w, ws);
  }

  // codes: x.size() bytes; scales: num_blocks(x.size()). x holds float, float16 or bfloat16
  // (16-bit inputs: each block is converted to float32, exactly, and quantized as float).
  template <detail::input_range R>
  void quantize(R&& x, std::span<std::uint8_t> codes, std::span<float> scales) const {
    quantize_impl(detail::input_span(x), {}, codes, scales);
  }

  // As quantize with one non-negative weight per element (empty: unweighted).
  void quantize_weighted(std::span<const float> x, std::span<const float> w, std::span<std::uint8_t> codes,
                         std::span<float> scales) const {
    quantize_impl(x, w, codes, scales);
  }

  fp4_tensor quantize_weighted(std::span<const float> x, std::span<const float> w) const {
    fp4_tensor t{std::vector<std::uint8_t>(x.size()), std::vector<float>(num_blocks(x.size()))};
    quantize_weighted(x, w, t.codes, t.scales);
    return t;
  }

  // out[i] = decode(codes[i]) * scales[b].
  void dequantize(std::span<const std::uint8_t> codes, std::span<const float> scales,
                  std::span<float> out) const {
    detail::dequantize_blocks<e2m1, Arch, false>(codes, scales, opt_.block, out, kernels::identity_divisor{});
  }

  fp4_tensor quantize(std::span<const float> x) const {
    fp4_tensor t{std::vector<std::uint8_t>(x.size()), std::vector<float>(num_blocks(x.size()))};
    quantize(x, t.codes, t.scales);
    return t;
  }

  std::vector<float> dequantize(const fp4_tensor& t) const {
    std::vector<float> out(t.codes.size());
    dequantize(t.codes, t.scales, out);
    return out;
  }

 private:
  static float identity(float s) noexcept { return s; }

  template <class T>
  void quantize_impl(std::span<const T> x, std::span<const float> w, std::span<std::uint8_t> codes,
                     std::span<float> scales) const {
    search::check_weights(w, x.size());
    if (opt_.rule == scale_rule::absmax) {  // one pass: kernels::amax_blocks, fused per architecture
      detail::quantize_amax_blocks<e2m1, Arch, kernels::code_layout::bytes>(
          x, opt_.block, opt_.ties, codes, scales, kernels::quotient_block_scale{e2m1::max_value},
          kernels::identity_divisor{});
      return;
    }
    if (opt_.rule == scale_rule::mse && opt_.block <= search::lane_block_max) {
      quantize_mse_lanes(x, w, codes, scales);
      return;
    }
    workspace ws(opt_.rule, opt_.block);
    detail::quantize_blocks<e2m1, Arch, false>(
        x, opt_.block, opt_.ties, codes, scales,
        [&](std::size_t b, std::span<const float> blk) {
          return block_scale(blk, w.empty() ? w : w.subspan(b * opt_.block, blk.size()), ws);
        },
        identity);
  }

  // Rule mse for blocks of up to 32: the searches of search::sweep_lanes blocks at once.
  template <class T>
  void quantize_mse_lanes(std::span<const T> x, std::span<const float> w, std::span<std::uint8_t> codes,
                          std::span<float> scales) const {
    detail::check_codec_args<false>(x.size(), opt_.block, codes.size(), scales.size());
    const std::size_t group = search::sweep_lanes * opt_.block;
    [[maybe_unused]] detail::float_buffer<T> buf(group);
    for (std::size_t begin = 0; begin < x.size(); begin += group) {
      const std::size_t len = std::min(group, x.size() - begin);
      const float* xs = detail::floats_of<Arch>(x, begin, len, buf);
      std::array<search::lane_block, search::sweep_lanes> lane;
      std::array<std::size_t, search::sweep_lanes> at;  // the block offsets of the lanes
      std::array<search::scale_min_result, search::sweep_lanes> r;
      std::size_t count = 0;
      for (std::size_t off = 0, b = begin / opt_.block; off < len; off += opt_.block, ++b) {
        const std::size_t n = std::min(opt_.block, len - off);
        const float start = absmax_scale(std::span<const float>(xs + off, n));
        scales[b] = start;
        if (detail::is_finite(start) && start > 0.0f)
          lane[count] = {xs + off, w.empty() ? nullptr : w.data() + begin + off, n, start}, at[count++] = off;
      }
      search::continuous_element_mse_lanes<e2m1>(Arch{}, std::span<const search::lane_block>(lane.data(), count),
                                                 opt_.ties, r.data());
      for (std::size_t j = 0; j < count; ++j) scales[(begin + at[j]) / opt_.block] = r[j].scale;
      for (std::size_t off = 0; off < len; off += opt_.block)
        detail::encode_block<e2m1, Arch, false>(xs + off, std::min(opt_.block, len - off),
                                                scales[(begin + off) / opt_.block], opt_.ties,
                                                codes.data() + begin + off);
    }
  }

  // Scratch of the search rules, allocated once per call.
  struct workspace {
    std::vector<search::sweep_entry> heap;
    std::vector<std::uint8_t> codes;
    workspace(scale_rule r, std::size_t block)
        : heap(r == scale_rule::mse && block > search::lane_block_max ? search::continuous_heap_entries(block) : 0),
          codes(r == scale_rule::lsq ? search::lsq_scratch_bytes(block) : 0) {}
  };

  float block_scale(std::span<const float> blk, std::span<const float> w, workspace& ws) const noexcept {
    const float start = absmax_scale(blk);
    if (opt_.rule == scale_rule::absmax || !detail::is_finite(start) || !(start > 0.0f)) return start;
    if (opt_.rule == scale_rule::lsq) return search::lsq_element<e2m1>(Arch{}, blk, w, start, opt_.ties, ws.codes).scale;
    if (blk.size() <= search::lane_block_max) {  // as quantize takes it
      const search::lane_block lane{blk.data(), w.empty() ? nullptr : w.data(), blk.size(), start};
      search::scale_min_result r;
      search::continuous_element_mse_lanes<e2m1>(Arch{}, std::span<const search::lane_block>(&lane, 1), opt_.ties, &r);
      return r.scale;
    }
    return search::continuous_element_mse<e2m1>(Arch{}, blk, w, start, opt_.ties, ws.heap).scale;
  }

  fp4_options opt_;
};

BLOCKQ_END_NAMESPACE
