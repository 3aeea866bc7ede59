// SPDX-License-Identifier: Apache-2.0
// MX block quantization (SPEC §3): one UE8M0 scale per block of 32 (or 16)
// elements of an MX element format. mx_quantizer<e2m1> is MXFP4; MXFP6,
// MXFP8 and MXINT8 are the same class with e2m3/e3m2, e4m3/e5m2 and int8_mx.
//
// Rules: ocp (default), ceil, floor; mse (the UE8M0 scale with the least
// block SSE, exactly: search/discrete.hpp) and hessian (the least r^T H_j r,
// exactly: search/hessian.hpp). Both searches start from ocp and keep it
// unless a scale is strictly better. Rule hessian needs the Hessians:
//   auto h = blockq::block_hessians::from_activations(acts, K, q.block());  // acts [T, K]
//   blockq::mx_tensor t = q.quantize(weight, h);                            // weight [rows, K]
// Block b of the weight uses H_(b mod K/block). Other rules ignore h.
#pragma once

#include <cstddef>
#include <cstdint>
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
#include "blockq/formats/ue8m0.hpp"
#include "blockq/kernels.hpp"
#include "blockq/pack.hpp"
#include "blockq/scale_rule.hpp"
#include "blockq/search/discrete.hpp"
#include "blockq/search/hessian.hpp"

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
  // ceil does not step past 2^(127 - emax): there the element's largest value times the
  // scale would overflow float32, so blocks with amax >= 2^127 keep the ocp exponent and
  // their largest elements saturate to the element's max (finite) instead.
  if (rule == scale_rule::ceil && y > static_cast<double>(Element::max_value) && k + Element::emax < 127) ++k;
  if (rule == scale_rule::floor && y < static_cast<double>(Element::max_value)) --k;
  return ue8m0::from_exponent(k);
}

// The scale function of the rules ocp, ceil and floor for the fused block loops
// (kernels::amax_blocks): mx_scale_code, with the facts an architecture needs to evaluate it
// for several blocks at once (the element's emax and largest value, the rule).
template <class Element>
struct mx_block_scale {
  static constexpr bool ue8m0_amax_rule = true;
  static constexpr int emax = Element::emax;
  static constexpr float max_value = Element::max_value;
  scale_rule rule = scale_rule::ocp;
  std::uint8_t operator()(float amax) const noexcept { return mx_scale_code<Element>(amax, rule); }
};

struct ue8m0_block_divisor {
  float operator()(std::uint8_t code) const noexcept { return ue8m0::decode(code); }
};

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
                        opt_.rule == scale_rule::floor || opt_.rule == scale_rule::mse ||
                        opt_.rule == scale_rule::hessian,
                    detail::rule_error(opt_.rule, "MX formats (use ocp, ceil, floor, mse, hessian)"));
  }

  const mx_options& options() const noexcept { return opt_; }
  std::size_t block() const noexcept { return opt_.block; }
  // Blocks for n elements; a trailing partial block counts as one.
  std::size_t num_blocks(std::size_t n) const noexcept { return detail::ceil_div(n, opt_.block); }

  // The scale code the rule gives one block. Rule hessian needs the block's
  // Hessian: use the overload below.
  std::uint8_t block_scale(std::span<const float> block) const {
    if (opt_.rule == scale_rule::hessian)
      detail::require(false, "rule hessian needs block Hessians: call quantize(w, hessians, ...) or block_scale(block, scratch, h)");
    if (opt_.rule != scale_rule::mse) return start_scale(block);
    return block_scale(block, {}, nullptr);
  }

  // As above without allocating: scratch holds at least block.size() floats
  // (rule hessian); h is the block's Hessian (rule hessian only; null: rule mse).
  std::uint8_t block_scale(std::span<const float> block, std::span<float> scratch,
                           const search::hessian_block* h) const noexcept {
    const float amax = kernels::block_amax(Arch{}, block.data(), block.size());
    const std::uint8_t start = start_scale(amax);
    const bool search_rule = opt_.rule == scale_rule::mse || opt_.rule == scale_rule::hessian;
    if (!search_rule || start == ue8m0::nan_code) return start;
    const std::span<const float> set = search::ue8m0_scales();
    const std::size_t r = opt_.rule == scale_rule::hessian && h
                       ? search::discrete_hessian_index<Element>(Arch{}, block, set, start, opt_.ties, *h, scratch, amax)
                       : search::discrete_mse_index<Element>(Arch{}, block, set, start, opt_.ties);
    return static_cast<std::uint8_t>(r);
  }

  // codes: x.size() bytes, one code each; scales: num_blocks(x.size()) UE8M0 codes. x holds
  // float, float16 or bfloat16 (16-bit inputs: each block is converted to float32, exactly,
  // and quantized as float).
  template <detail::input_range R>
  void quantize(R&& x, std::span<std::uint8_t> codes, std::span<std::uint8_t> scales) const {
    quantize_impl<false>(detail::input_span(x), codes, scales);
  }

  // As quantize, with 4-bit codes packed two a byte, low nibble first (the
  // OCP / Hugging Face layout): packed has (x.size() + 1) / 2 bytes. The block
  // size must be even (so that blocks start on a byte).
  template <detail::input_range R>
  void quantize_packed(R&& x, std::span<std::uint8_t> packed, std::span<std::uint8_t> scales) const
    requires(Element::bits <= 4)
  {
    quantize_impl<true>(detail::input_span(x), packed, scales);
  }

  // MXFP4 straight into ggml's block_mxfp4 layout (SPEC §8): out has x.size() / 32 * 17
  // bytes, {e, qs[16]} per block with qs[j] = code(x[j]) | code(x[j + 16]) << 4. Blocks of
  // 32 and x.size() a multiple of 32. Use tie_mode::toward_zero to match ggml's quantizer.
  void quantize_ggml(std::span<const float> x, std::span<std::uint8_t> out) const
    requires(std::is_same_v<Element, e2m1>)
  {
    detail::require(opt_.block == ggml_mxfp4_block_elements,
                    "ggml block_mxfp4 needs blocks of 32, got " + std::to_string(opt_.block));
    detail::check_ggml_mxfp4(x.size(), "the input");
    detail::check_size(out.size(), x.size() / ggml_mxfp4_block_elements * ggml_mxfp4_block_bytes, "ggml output",
                       "17 bytes per block of 32 for the input's " + std::to_string(x.size()) + " elements");
    if (opt_.rule == scale_rule::ocp || opt_.rule == scale_rule::ceil || opt_.rule == scale_rule::floor) {
      quantize_amax<kernels::code_layout::ggml_mxfp4>(x, out, std::span<std::uint8_t>{});
      return;
    }
    std::vector<std::uint8_t> codes(x.size()), scales(num_blocks(x.size()));
    quantize(x, codes, scales);
    pack_ggml_mxfp4(codes, scales, out);
  }

  // out[i] = decode(codes[i]) * 2^(e - 127); a NaN scale gives NaN.
  void dequantize(std::span<const std::uint8_t> codes, std::span<const std::uint8_t> scales,
                  std::span<float> out) const {
    detail::dequantize_blocks<Element, Arch, false>(codes, scales, opt_.block, out, ue8m0_block_divisor{});
  }

  void dequantize_packed(std::span<const std::uint8_t> packed, std::span<const std::uint8_t> scales,
                         std::span<float> out) const
    requires(Element::bits <= 4)
  {
    detail::dequantize_blocks<Element, Arch, true>(packed, scales, opt_.block, out, ue8m0_block_divisor{});
  }

  mx_tensor quantize(std::span<const float> x) const {
    mx_tensor t{std::vector<std::uint8_t>(x.size()), std::vector<std::uint8_t>(num_blocks(x.size()))};
    quantize(x, t.codes, t.scales);
    return t;
  }

  // A weight w [rows, K] row-major (whole rows; K = h.columns(), blocks along
  // K, h.block() == block()) with the Hessians of its column blocks. Rule
  // hessian uses them; the other rules quantize as quantize(w, codes, scales).
  void quantize(std::span<const float> w, const block_hessians& h, std::span<std::uint8_t> codes,
                std::span<std::uint8_t> scales) const {
    check_hessians(w.size(), h);
    quantize_impl<false>(w, codes, scales, &h);
  }

  void quantize_packed(std::span<const float> w, const block_hessians& h, std::span<std::uint8_t> packed,
                       std::span<std::uint8_t> scales) const
    requires(Element::bits <= 4)
  {
    check_hessians(w.size(), h);
    quantize_impl<true>(w, packed, scales, &h);
  }

  mx_tensor quantize(std::span<const float> w, const block_hessians& h) const {
    mx_tensor t{std::vector<std::uint8_t>(w.size()), std::vector<std::uint8_t>(num_blocks(w.size()))};
    quantize(w, h, t.codes, t.scales);
    return t;
  }

  std::vector<float> dequantize(const mx_tensor& t) const {
    std::vector<float> out(t.codes.size());
    dequantize(t.codes, t.scales, out);
    return out;
  }

 private:
  // ocp for the search rules (their start), else the rule itself.
  std::uint8_t start_scale(std::span<const float> block) const noexcept {
    return start_scale(kernels::block_amax(Arch{}, block.data(), block.size()));
  }
  std::uint8_t start_scale(float amax) const noexcept {
    const bool search_rule = opt_.rule == scale_rule::mse || opt_.rule == scale_rule::hessian;
    return mx_scale_code<Element>(amax, search_rule ? scale_rule::ocp : opt_.rule);
  }

  void check_hessians(std::size_t n, const block_hessians& h) const {
    detail::require(h.block() == opt_.block, "the Hessians have block size " + std::to_string(h.block()) +
                                                 ", the quantizer " + std::to_string(opt_.block));
    detail::require(n % h.columns() == 0, "the weight has " + std::to_string(n) +
                                              " elements, not a multiple of K = " + std::to_string(h.columns()));
  }

  // The amax rules (ocp, ceil, floor) in one pass: kernels::amax_blocks, fused per architecture.
  template <kernels::code_layout L, class T>
  void quantize_amax(std::span<const T> x, std::span<std::uint8_t> codes, std::span<std::uint8_t> scales) const {
    detail::quantize_amax_blocks<Element, Arch, L>(x, opt_.block, opt_.ties, codes, scales,
                                                   mx_block_scale<Element>{opt_.rule}, ue8m0_block_divisor{});
  }

  template <bool Packed, class T = float>
  void quantize_impl(std::span<const T> x, std::span<std::uint8_t> codes, std::span<std::uint8_t> scales,
                     const block_hessians* h = nullptr) const {
    detail::require(opt_.rule != scale_rule::hessian || h,
                    "rule hessian needs block Hessians: call quantize(w, hessians, ...)");
    const bool search_rule = opt_.rule == scale_rule::mse || opt_.rule == scale_rule::hessian;
    if (!search_rule) {
      quantize_amax<Packed ? kernels::code_layout::nibbles : kernels::code_layout::bytes>(x, codes, scales);
      return;
    }
    if constexpr (std::is_same_v<Element, e2m1>) {
      if (opt_.rule == scale_rule::mse && opt_.block == 32) {
        quantize_mse32<Packed>(x, codes, scales);
        return;
      }
    }
    std::vector<float> scratch(h ? search::hessian_scratch_floats(opt_.block) : 0);
    const std::size_t col_blocks = h ? h->num_blocks() : 1;
    if constexpr (std::is_same_v<T, float>) {
      if (opt_.rule == scale_rule::hessian && !h->is_diagonal() && x.size() > h->columns()) {
        // Rule hessian on a weight of several rows: the scales first, one column block at a
        // time down the rows, so that H_j (B * B doubles, 8 KiB for B = 32) is read from
        // memory once rather than once per row (the searches read it for every candidate);
        // then the codes at those scales. Every block's scale is the same function of the
        // block and H_j as in the row order.
        detail::check_codec_args<Packed>(x.size(), opt_.block, codes.size(), scales.size());
        const std::size_t rows = x.size() / h->columns();
        for (std::size_t j = 0; j < col_blocks; ++j) {
          const search::hessian_block hb = (*h)[j];
          for (std::size_t row = 0; row < rows; ++row) {
            const std::size_t b = row * col_blocks + j;
            scales[b] = block_scale(x.subspan(b * opt_.block, opt_.block), scratch, &hb);
          }
        }
        if constexpr (std::is_same_v<Element, e2m1>) {
          if (opt_.block == 32) {  // (the codes by kernels::mxfp4_scaled_blocks, fused where it can)
            auto rest = [&](std::size_t b, std::size_t begin, std::size_t len) {
              encode_blocks32<Packed>(x.data(), b, begin, len, codes.data(),
                                      [&](std::size_t k, std::span<const float>) { return scales[k]; });
            };
            kernels::mxfp4_scaled_blocks<Packed ? kernels::code_layout::nibbles : kernels::code_layout::bytes>(
                Arch{}, x.data(), x.size(), opt_.ties, scales.data(), codes.data(), rest);
            return;
          }
        }
        detail::quantize_blocks<Element, Arch, Packed>(
            x, opt_.block, opt_.ties, codes, scales, [&](std::size_t b, std::span<const float>) { return scales[b]; },
            ue8m0_block_divisor{});
        return;
      }
    }
    detail::quantize_blocks<Element, Arch, Packed>(
        x, opt_.block, opt_.ties, codes, scales,
        [&](std::size_t b, std::span<const float> blk) {
          if (!search_rule) return start_scale(blk);
          if (opt_.rule == scale_rule::hessian) {
            const search::hessian_block hb = (*h)[b % col_blocks];
            return block_scale(blk, scratch, &hb);
          }
          return block_scale(blk, scratch, nullptr);
        },
        ue8m0_block_divisor{});
  }

  // MXFP4 rule mse, blocks of 32: fused over groups of blocks where the architecture has it
  // (kernels::mxfp4_mse_blocks; 16-bit inputs converted a chunk of whole groups at a time).
  // rest is the per-block path (then quantize_blocks' encode). Blocks the fused loop could
  // not certify in float (declined: ue8m0_window_index would not either, their optimum may
  // lie outside the window or candidates nearly tie) skip the window searches and run the
  // chunked search at once; every path of discrete_mse returns the exhaustive index.
  template <bool Packed, class T>
  void quantize_mse32(std::span<const T> x, std::span<std::uint8_t> codes, std::span<std::uint8_t> scales) const {
    detail::check_codec_args<Packed>(x.size(), opt_.block, codes.size(), scales.size());
    const std::span<const float> set = search::ue8m0_scales();
    auto run = [&](const float* xs, std::size_t first, std::size_t n) {  // elements [first, first + n)
      std::uint8_t* const c = codes.data() + detail::code_bytes<Packed>(first);
      std::uint8_t* const sc = scales.data() + first / 32;
      auto rest = [&](std::size_t b, std::size_t begin, std::size_t len, bool declined) {
        encode_blocks32<Packed>(xs, b, begin, len, c, [&](std::size_t k, std::span<const float> blk) {
          // block_scale finds its own start scale (an amax pass); a declined block starts
          // the chunked search from start_scale.
          std::uint8_t s = declined ? start_scale(blk) : block_scale(blk, {}, nullptr);
          if (declined && s != ue8m0::nan_code) {
            const double e0 = kernels::block_sse<Element>(Arch{}, blk.data(), blk.size(), set[s], opt_.ties);
            s = static_cast<std::uint8_t>(search::detail::chunked_search<Element, Arch>(blk, set, s, e0, opt_.ties).index);
          }
          return sc[k] = s;
        });
      };
      kernels::mxfp4_mse_blocks<Packed ? kernels::code_layout::nibbles : kernels::code_layout::bytes>(
          Arch{}, xs, n, opt_.ties, c, sc, rest);
    };
    if constexpr (std::is_same_v<T, float>) {
      run(x.data(), 0, x.size());
    } else {
      const std::size_t chunk = detail::chunk_elements(32);  // whole groups of 8 blocks
      detail::float_buffer<T> buf(chunk);
      for (std::size_t begin = 0; begin < x.size(); begin += chunk) {
        const std::size_t len = x.size() - begin < chunk ? x.size() - begin : chunk;
        kernels::to_float(Arch{}, x.data() + begin, len, buf.data());
        run(buf.data(), begin, len);
      }
    }
  }

  // The per-block path of the fused MXFP4 loops (their rest): the blocks of 32 in
  // [begin, begin + len) of xs, the first one block b, each with the scale code
  // scale_of(b, block) (which also stores it where the caller keeps scales), then its codes
  // at out (offsets relative to xs).
  template <bool Packed, class ScaleOf>
  void encode_blocks32(const float* xs, std::size_t b, std::size_t begin, std::size_t len, std::uint8_t* out,
                       ScaleOf&& scale_of) const {
    for (const std::size_t end = begin + len; begin < end; begin += 32, ++b) {
      const std::size_t m = end - begin < 32 ? end - begin : 32;
      const std::uint8_t s = scale_of(b, std::span<const float>(xs + begin, m));
      detail::encode_block<Element, Arch, Packed>(xs + begin, m, ue8m0_block_divisor{}(s), opt_.ties,
                                                  out + detail::code_bytes<Packed>(begin));
    }
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
