// SPDX-License-Identifier: Apache-2.0
// NVFP4 (SPEC §4): E2M1 elements in blocks of 16, an E4M3 scale per block and
// one FP32 scale per tensor, as NVIDIA ModelOpt stores them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/detail/codec.hpp"
#include "blockq/formats/minifloat.hpp"
#include "blockq/kernels.hpp"
#include "blockq/scale_rule.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct nvfp4_options {
  scale_rule rule = scale_rule::absmax;
  tie_mode ties = tie_mode::even;
  // false: the tensor scale is 1 (the block scales alone carry the range).
  bool use_tensor_scale = true;
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
    detail::require(opt_.rule == scale_rule::absmax, detail::rule_error(opt_.rule, "NVFP4 (use absmax)"));
  }

  const nvfp4_options& options() const noexcept { return opt_; }
  static constexpr std::size_t num_blocks(std::size_t n) noexcept { return detail::ceil_div(n, block); }

  // s_t = amax / (6 * 448) over the finite elements; 1 when that amax is 0,
  // when it is not a normal float, or when the tensor scale is switched off.
  float tensor_scale(std::span<const float> x) const noexcept {
    if (!opt_.use_tensor_scale) return 1.0f;
    float amax = 0.0f;
    for (float v : x) {
      const float a = detail::abs_bits(v);
      if (detail::is_finite(a) && a > amax) amax = a;
    }
    const float s = amax / (e2m1_max * e4m3_max);
    return s >= std::numeric_limits<float>::min() ? s : 1.0f;
  }

  // The E4M3 code of one block: E4M3(amax / (6 * s_t)); 0x7F (NaN) for a
  // block holding NaN or Inf.
  std::uint8_t block_scale(std::span<const float> blk, float s_t) const noexcept {
    const float amax = kernels::block_amax(Arch{}, blk.data(), blk.size());
    if (!detail::is_finite(amax)) return e4m3::nan_code;
    return e4m3::encode(amax / (e2m1_max * s_t));
  }

  // The divisor of a block's elements, fl(b * s_t).
  static float effective_scale(std::uint8_t scale_code, float s_t) noexcept {
    return e4m3::decode(scale_code) * s_t;
  }

  void quantize(std::span<const float> x, float s_t, std::span<std::uint8_t> codes,
                std::span<std::uint8_t> scales) const {
    quantize_impl<false>(x, s_t, codes, scales);
  }

  // As quantize with codes packed two a byte, low nibble first (ModelOpt's
  // `weight`): packed has (x.size() + 1) / 2 bytes.
  void quantize_packed(std::span<const float> x, float s_t, std::span<std::uint8_t> packed,
                       std::span<std::uint8_t> scales) const {
    quantize_impl<true>(x, s_t, packed, scales);
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

  std::vector<float> dequantize(const nvfp4_tensor& t) const {
    std::vector<float> out(t.codes.size());
    dequantize(t.codes, t.scales, t.tensor_scale, out);
    return out;
  }

 private:
  template <bool Packed>
  void quantize_impl(std::span<const float> x, float s_t, std::span<std::uint8_t> codes,
                     std::span<std::uint8_t> scales) const {
    detail::check_tensor_scale(s_t);
    detail::quantize_blocks<e2m1, Arch, Packed>(
        x, block, opt_.ties, codes, scales,
        [&](std::size_t, std::span<const float> blk) { return block_scale(blk, s_t); },
        [&](std::uint8_t code) { return effective_scale(code, s_t); });
  }

  template <bool Packed>
  void dequantize_impl(std::span<const std::uint8_t> codes, std::span<const std::uint8_t> scales,
                       float s_t, std::span<float> out) const {
    detail::check_tensor_scale(s_t);
    detail::dequantize_blocks<e2m1, Arch, Packed>(
        codes, scales, block, out, [&](std::uint8_t code) { return effective_scale(code, s_t); });
  }

  nvfp4_options opt_;
};

BLOCKQ_END_NAMESPACE
