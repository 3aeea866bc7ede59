// SPDX-License-Identifier: Apache-2.0
// MX block quantization (SPEC §3): one UE8M0 scale per block of 32 (or 16)
// elements of an MX element format. mx_quantizer<e2m1> is MXFP4; MXFP6,
// MXFP8 and MXINT8 are the same class with e2m3/e3m2, e4m3/e5m2 and int8_mx.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/detail/codec.hpp"
#include "blockq/formats/minifloat.hpp"
#include "blockq/formats/ue8m0.hpp"
#include "blockq/kernels.hpp"
#include "blockq/scale_rule.hpp"

BLOCKQ_BEGIN_NAMESPACE

// The UE8M0 code of a block with the given amax under the rules ocp, ceil and
// floor. Exponents come from the bits of amax; amax = 0 gives code 0 (2^-127),
// a non-finite amax the NaN code 0xFF.
template <class Element>
constexpr std::uint8_t mx_scale_code(float amax, scale_rule rule) noexcept {
  if (!detail::is_finite(amax)) return ue8m0::nan_code;
  if (amax == 0.0f) return 0;
  int k = detail::floor_log2(amax) - Element::emax;
  // amax / 2^k lies in [2^emax, 2^(emax+1)), as does the element's max, so the
  // other two rules are at most one step away. The division is exact in double.
  const double y = detail::ldexp_exact(static_cast<double>(amax), -k);
  if (rule == scale_rule::ceil && y > static_cast<double>(Element::max_value)) ++k;
  if (rule == scale_rule::floor && y < static_cast<double>(Element::max_value)) --k;
  return ue8m0::from_exponent(k);
}

struct mx_options {
  std::size_t block = 32;
  scale_rule rule = scale_rule::ocp;
  tie_mode ties = tie_mode::even;
};

// The owning result of mx_quantizer::quantize: one code a byte, one scale a block.
struct mx_tensor {
  std::vector<std::uint8_t> codes;
  std::vector<std::uint8_t> scales;
};

template <class Element = e2m1, class Arch = default_arch>
class mx_quantizer {
 public:
  using element_type = Element;
  using arch_type = Arch;

  explicit mx_quantizer(mx_options opt = {}) : opt_(opt) {
    detail::check_block(opt_.block);
    detail::require(opt_.rule == scale_rule::ocp || opt_.rule == scale_rule::ceil ||
                        opt_.rule == scale_rule::floor,
                    detail::rule_error(opt_.rule, "MX formats (use ocp, ceil, floor)"));
  }

  const mx_options& options() const noexcept { return opt_; }
  std::size_t block() const noexcept { return opt_.block; }
  // Blocks for n elements; a trailing partial block counts as one.
  std::size_t num_blocks(std::size_t n) const noexcept { return detail::ceil_div(n, opt_.block); }

  // The scale code the rule gives one block.
  std::uint8_t block_scale(std::span<const float> block) const noexcept {
    return mx_scale_code<Element>(kernels::block_amax(Arch{}, block.data(), block.size()), opt_.rule);
  }

  // codes: x.size() bytes, one code each; scales: num_blocks(x.size()) UE8M0 codes.
  void quantize(std::span<const float> x, std::span<std::uint8_t> codes,
                std::span<std::uint8_t> scales) const {
    quantize_impl<false>(x, codes, scales);
  }

  // As quantize, with 4-bit codes packed two a byte, low nibble first (the
  // OCP / Hugging Face layout): packed has (x.size() + 1) / 2 bytes. The block
  // size must be even (so that blocks start on a byte).
  void quantize_packed(std::span<const float> x, std::span<std::uint8_t> packed,
                       std::span<std::uint8_t> scales) const
    requires(Element::bits <= 4)
  {
    quantize_impl<true>(x, packed, scales);
  }

  // out[i] = decode(codes[i]) * 2^(e - 127); a NaN scale gives NaN.
  void dequantize(std::span<const std::uint8_t> codes, std::span<const std::uint8_t> scales,
                  std::span<float> out) const {
    detail::dequantize_blocks<Element, Arch, false>(codes, scales, opt_.block, out, &ue8m0::decode);
  }

  void dequantize_packed(std::span<const std::uint8_t> packed, std::span<const std::uint8_t> scales,
                         std::span<float> out) const
    requires(Element::bits <= 4)
  {
    detail::dequantize_blocks<Element, Arch, true>(packed, scales, opt_.block, out, &ue8m0::decode);
  }

  mx_tensor quantize(std::span<const float> x) const {
    mx_tensor t{std::vector<std::uint8_t>(x.size()), std::vector<std::uint8_t>(num_blocks(x.size()))};
    quantize(x, t.codes, t.scales);
    return t;
  }

  std::vector<float> dequantize(const mx_tensor& t) const {
    std::vector<float> out(t.codes.size());
    dequantize(t.codes, t.scales, out);
    return out;
  }

 private:
  template <bool Packed>
  void quantize_impl(std::span<const float> x, std::span<std::uint8_t> codes,
                     std::span<std::uint8_t> scales) const {
    detail::quantize_blocks<Element, Arch, Packed>(
        x, opt_.block, opt_.ties, codes, scales,
        [&](std::size_t, std::span<const float> blk) { return block_scale(blk); }, &ue8m0::decode);
  }

  mx_options opt_;
};

using mxfp4_quantizer = mx_quantizer<e2m1>;
using mxfp6_e2m3_quantizer = mx_quantizer<e2m3>;
using mxfp6_e3m2_quantizer = mx_quantizer<e3m2>;
using mxfp8_e4m3_quantizer = mx_quantizer<e4m3>;
using mxfp8_e5m2_quantizer = mx_quantizer<e5m2>;
using mxint8_quantizer = mx_quantizer<int8_mx>;

BLOCKQ_END_NAMESPACE
