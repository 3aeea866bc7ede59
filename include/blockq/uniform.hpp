// SPDX-License-Identifier: Apache-2.0
// Uniform integer quantization of 1 to 8 bits (SPEC §5): symmetric codes with
// a scale (rules absmax, signed_max), or asymmetric codes with a scale and a
// min (rule minmax), per block or for the whole tensor.
//
// Search rules (both kinds of codes): lsq (candidate scales with
// least-squares refits, never worse than the start: search/refit.hpp) and
// mse (symmetric: the float scale, of either sign, with the least SSE,
// exactly up to float rounding; asymmetric: lsq improved by exact scale
// steps and joint refits: search/continuous.hpp; symmetric codes of 2 to 4
// bits in blocks of up to 32, eight blocks at a time: search/lanes.hpp).
// Their start is minmax for asymmetric codes and, for symmetric codes, the
// better of absmax and signed_max (absmax on a tie; signed_max alone at 1 bit).
// quantize_weighted takes one non-negative weight per element and makes lsq
// and mse minimise the weighted SSE (the other rules ignore the weights).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/arch/int_decode.hpp"
#include "blockq/arch/signed_max.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/detail/codec.hpp"
#include "blockq/formats/half.hpp"
#include "blockq/formats/integer.hpp"
#include "blockq/kernels.hpp"
#include "blockq/scale_rule.hpp"
#include "blockq/scale_storage.hpp"
#include "blockq/search/continuous.hpp"
#include "blockq/search/lanes.hpp"
#include "blockq/search/refit.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct uniform_options {
  int bits = 4;
  bool symmetric = true;
  std::size_t block = 32;  // 0: one scale (and min) for the whole input
  // Unset: absmax for symmetric codes, minmax for asymmetric ones.
  std::optional<scale_rule> rule{};
  // The type the scales (and mins) are stored in: float16 / bfloat16 round them (to nearest
  // even) before the codes are computed, and lsq / mse pick the best stored values around
  // their result (scale_storage.hpp). float32 leaves every byte as it was.
  scale_storage storage = scale_storage::float32;
};

struct uniform_tensor {
  std::vector<std::uint8_t> codes;  // one code a byte (signed codes as b-bit two's complement)
  std::vector<float> scales;        // one a block
  std::vector<float> mins;          // one a block when asymmetric, else empty
};

// The scale (and min) of one block.
struct uniform_params {
  float scale = 0.0f;
  float min = 0.0f;
};

template <class Arch = default_arch>
class uniform_quantizer {
 public:
  using arch_type = Arch;

  explicit uniform_quantizer(uniform_options opt = {}) : opt_(opt) {
    detail::check_int_bits(opt_.bits);
    fmt_ = int_format{opt_.bits, opt_.symmetric};
    if (!opt_.rule) opt_.rule = opt_.symmetric ? scale_rule::absmax : scale_rule::minmax;
    const scale_rule r = *opt_.rule;
    const bool search_rule = r == scale_rule::lsq || r == scale_rule::mse;
    if (opt_.symmetric) {
      detail::require(r == scale_rule::absmax || r == scale_rule::signed_max || search_rule,
                      detail::rule_error(r, "symmetric integer codes (use absmax, signed_max, lsq, mse)"));
      detail::require(r != scale_rule::absmax || opt_.bits >= 2,
                      "rule absmax needs at least 2 bits (qmax = 0 at 1 bit), got bits = " +
                          std::to_string(opt_.bits));
    } else {
      detail::require(r == scale_rule::minmax || search_rule,
                      detail::rule_error(r, "asymmetric integer codes (use minmax, lsq, mse)"));
    }
  }

  const uniform_options& options() const noexcept { return opt_; }
  scale_rule rule() const noexcept { return *opt_.rule; }
  const int_format& format() const noexcept { return fmt_; }
  std::size_t block_size(std::size_t n) const noexcept { return opt_.block == 0 ? (n ? n : 1) : opt_.block; }
  std::size_t num_blocks(std::size_t n) const noexcept { return detail::ceil_div(n, block_size(n)); }

  // The scale (and min) of one block under the rule (w: one weight per
  // element, or empty). A block with NaN or Inf gets a NaN scale (and min),
  // which quantizes to code 0 and dequantizes to NaN.
  uniform_params block_params(std::span<const float> blk, std::span<const float> w = {}) const {
    workspace ws(*opt_.rule, fmt_, blk.size());
    return block_params(blk, w, ws);
  }

  // The scale (and min) of one block under a non-search rule (absmax,
  // signed_max, minmax): the start of the search rules.
  uniform_params rule_params(std::span<const float> blk, scale_rule rule) const noexcept {
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    if (!opt_.symmetric) {
      float lo = 0.0f, hi = 0.0f;
      kernels::block_min_max(Arch{}, blk.data(), blk.size(), lo, hi);
      if (!detail::is_finite(lo) || !detail::is_finite(hi)) return {nan, nan};
      return {minmax_scale(lo, hi, fmt_.qmax()), lo};
    }
    if (rule == scale_rule::signed_max) {
      // The first element of largest magnitude, with its sign, maps to qmin (NaN: NaN or Inf).
      const kernels::signed_quotient_scale scale_of{static_cast<float>(fmt_.qmin())};
      return {scale_of(kernels::block_signed_max(Arch{}, blk.data(), blk.size())), 0.0f};
    }
    const float amax = kernels::block_amax(Arch{}, blk.data(), blk.size());
    if (!detail::is_finite(amax)) return {nan, 0.0f};
    return {kernels::quotient_block_scale{static_cast<float>(fmt_.qmax())}(amax), 0.0f};
  }

  // The minmax scale (hi - lo) / qmax of finite lo <= hi. A range wider than FLT_MAX
  // (hi - lo overflows) gives hi / qmax - lo / qmax instead, and with qmax = 1 (1 bit),
  // where even that overflows, FLT_MAX: the format cannot span the range, and its two
  // levels lo and lo + FLT_MAX saturate (dequantized values stay finite: int_level).
  // Ranges below FLT_MAX give the plain quotient's bits.
  static float minmax_scale(float lo, float hi, int qmax) noexcept {
    const float q = static_cast<float>(qmax);
    const float range = hi - lo;
    if (detail::is_finite(range)) return range / q;
    const float s = hi / q - lo / q;
    return detail::is_finite(s) ? s : std::numeric_limits<float>::max();
  }

  // Whether every finite block of x quantizes without saturating: the uniform formats
  // saturate only a 1-bit asymmetric block whose range max - min exceeds FLT_MAX (see
  // minmax_scale); the other formats and widths represent any finite range. A tool can
  // warn when this is false.
  bool represents_range(std::span<const float> x) const noexcept {
    if (opt_.symmetric || fmt_.qmax() > 1) return true;
    bool ok = true;
    detail::for_each_block(x.size(), block_size(x.size()), [&](std::size_t, std::size_t begin, std::size_t len) {
      float lo = 0.0f, hi = 0.0f;
      kernels::block_min_max(Arch{}, x.data() + begin, len, lo, hi);
      if (detail::is_finite(lo) && detail::is_finite(hi) && !detail::is_finite(hi - lo)) ok = false;
    });
    return ok;
  }

  // codes: x.size() bytes; scales (and mins when asymmetric; empty otherwise):
  // num_blocks(x.size()) each. x holds float, float16 or bfloat16 (16-bit inputs: each block
  // is converted to float32, exactly, and quantized as float).
  template <detail::input_range R>
  void quantize(R&& x, std::span<std::uint8_t> codes, std::span<float> scales, std::span<float> mins = {}) const {
    quantize_impl(detail::input_span(x), {}, codes, scales, mins);
  }

  // As quantize with one non-negative weight per element (empty: unweighted).
  void quantize_weighted(std::span<const float> x, std::span<const float> w, std::span<std::uint8_t> codes,
                         std::span<float> scales, std::span<float> mins = {}) const {
    quantize_impl(x, w, codes, scales, mins);
  }

  // Codes of one block at the given scale and min.
  void encode_block(std::span<const float> blk, uniform_params p, std::uint8_t* codes) const noexcept {
    if (!detail::is_finite(p.scale) || !detail::is_finite(p.min))
      kernels::encode_int(Arch{}, blk.data(), blk.size(), 0.0f, 0.0f, fmt_, codes);
    else
      kernels::encode_int(Arch{}, blk.data(), blk.size(), p.scale, p.min, fmt_, codes);
  }

  // out[i] = q * scale + min.
  void dequantize(std::span<const std::uint8_t> codes, std::span<const float> scales,
                  std::span<const float> mins, std::span<float> out) const {
    check_args(out.size(), codes.size(), scales.size(), mins.size(), true);
    kernels::int_decode_blocks(Arch{}, codes.data(), scales.data(), opt_.symmetric ? nullptr : mins.data(), out.size(),
                               block_size(out.size()), fmt_, out.data());
  }

  uniform_tensor quantize(std::span<const float> x) const { return quantize_weighted(x, {}); }

  uniform_tensor quantize_weighted(std::span<const float> x, std::span<const float> w) const {
    const std::size_t nb = num_blocks(x.size());
    uniform_tensor t{std::vector<std::uint8_t>(x.size()), std::vector<float>(nb),
                     std::vector<float>(opt_.symmetric ? 0 : nb)};
    quantize_weighted(x, w, t.codes, t.scales, t.mins);
    return t;
  }

  std::vector<float> dequantize(const uniform_tensor& t) const {
    std::vector<float> out(t.codes.size());
    dequantize(t.codes, t.scales, t.mins, out);
    return out;
  }

 private:
  template <class T>
  void quantize_impl(std::span<const T> x, std::span<const float> w, std::span<std::uint8_t> codes,
                     std::span<float> scales, std::span<float> mins) const {
    check_args(x.size(), codes.size(), scales.size(), mins.size());
    search::check_weights(w, x.size());
    const std::size_t block = block_size(x.size());
    const scale_rule rule = *opt_.rule;
    if (opt_.symmetric && (rule == scale_rule::absmax || rule == scale_rule::signed_max) &&
        opt_.storage == scale_storage::float32) {
      // One pass (kernels::int_amax_blocks / int_signed_max_blocks, fused per architecture):
      // scale = amax / qmax or m / qmin, NaN for a block with NaN or Inf, codes at that scale
      // (block_params and encode_block).
      const kernels::quotient_block_scale scale_of{static_cast<float>(fmt_.qmax())};
      auto blocks = [&](const float* p, std::size_t n, std::uint8_t* c, float* s) {
        if (rule == scale_rule::absmax)
          kernels::int_amax_blocks(Arch{}, p, n, block, fmt_, scale_of, c, s);
        else
          kernels::int_signed_max_blocks(Arch{}, p, n, block, fmt_, c, s);
      };
      if constexpr (std::is_same_v<T, float>) {
        blocks(x.data(), x.size(), codes.data(), scales.data());
      } else {
        const std::size_t chunk = detail::chunk_elements(block);
        detail::float_buffer<T> buf(chunk);
        for (std::size_t i = 0; i < x.size(); i += chunk) {
          const std::size_t n = x.size() - i < chunk ? x.size() - i : chunk;
          kernels::to_float(Arch{}, x.data() + i, n, buf.data());
          blocks(buf.data(), n, codes.data() + i, scales.data() + i / block);
        }
      }
      return;
    }
    if (rule == scale_rule::mse && opt_.symmetric && search::int_lanes_take(fmt_, block)) {
      quantize_mse_lanes(x, w, codes, scales, block);
      return;
    }
    workspace ws(*opt_.rule, fmt_, block);
    [[maybe_unused]] detail::float_buffer<T> buf(block);
    detail::for_each_block(x.size(), block, [&](std::size_t b, std::size_t begin, std::size_t len) {
      std::span<const float> blk;
      if constexpr (std::is_same_v<T, float>) {
        blk = x.subspan(begin, len);
      } else {
        kernels::to_float(Arch{}, x.data() + begin, len, buf.data());
        blk = std::span<const float>(buf.data(), len);
      }
      const uniform_params p = block_params(blk, w.empty() ? w : w.subspan(begin, len), ws);
      scales[b] = p.scale;
      if (!opt_.symmetric) mins[b] = p.min;
      encode_block(blk, p, codes.data() + begin);
    });
  }

  // Rule mse, symmetric codes of 2 to 4 bits, blocks of up to 32: the searches of
  // search::sweep_lanes blocks at once (search/lanes.hpp), as block_params gives them.
  template <class T>
  void quantize_mse_lanes(std::span<const T> x, std::span<const float> w, std::span<std::uint8_t> codes,
                          std::span<float> scales, std::size_t block) const {
    const std::size_t group = search::sweep_lanes * block;
    [[maybe_unused]] detail::float_buffer<T> buf(group);
    for (std::size_t begin = 0; begin < x.size(); begin += group) {
      const std::size_t len = std::min(group, x.size() - begin);
      const float* xs = detail::floats_of<Arch>(x, begin, len, buf);
      auto blk_of = [&](std::size_t off) { return std::span<const float>(xs + off, std::min(block, len - off)); };
      auto w_of = [&](std::size_t off) { return w.empty() ? w : w.subspan(begin + off, std::min(block, len - off)); };
      std::array<uniform_params, search::sweep_lanes> p;
      std::array<search::lane_block, search::sweep_lanes> lane;
      std::array<std::size_t, search::sweep_lanes> at;  // the lanes' blocks, 0.. in the group
      std::size_t count = 0, nb = 0;
      for (std::size_t off = 0; off < len; off += block, ++nb) {
        double e = -1.0;
        p[nb] = symmetric_start(blk_of(off), w_of(off), &e);
        if (detail::is_finite(p[nb].scale))
          lane[count] = {xs + off, w.empty() ? nullptr : w.data() + begin + off, blk_of(off).size(), p[nb].scale, e},
          at[count++] = nb;
      }
      std::array<search::scale_min_result, search::sweep_lanes> r;
      search::continuous_int_mse_lanes(Arch{}, std::span<const search::lane_block>(lane.data(), count), fmt_, r.data());
      for (std::size_t j = 0; j < count; ++j) p[at[j]] = {r[j].scale, 0.0f};
      for (std::size_t i = 0, off = 0; i < nb; ++i, off += block) {
        const uniform_params q = opt_.storage == scale_storage::float32 ? p[i] : stored_params(blk_of(off), w_of(off), p[i]);
        scales[(begin + off) / block] = q.scale;
        encode_block(blk_of(off), q, codes.data() + begin + off);
      }
    }
  }

  // The start of the symmetric search rules: the better of absmax and signed_max (absmax on
  // a tie; signed_max alone for 1 bit), and in *start_error its error when that was computed
  // (2 bits and more).
  uniform_params symmetric_start(std::span<const float> blk, std::span<const float> w,
                                 double* start_error = nullptr) const noexcept {
    uniform_params start = rule_params(blk, scale_rule::signed_max);
    if (opt_.bits >= 2) {
      const uniform_params a = rule_params(blk, scale_rule::absmax);
      const double e_signed = error(blk, w, start), e_abs = error(blk, w, a);
      if (!(e_signed < e_abs)) start = a;
      if (start_error) *start_error = e_signed < e_abs ? e_signed : e_abs;
    }
    return start;
  }

  // Scratch of the search rules, allocated once per call.
  struct workspace {
    std::vector<std::uint8_t> codes;
    std::vector<search::sweep_entry> heap;
    std::vector<float> shifted;
    workspace(scale_rule r, int_format fmt, std::size_t block)
        : codes(r == scale_rule::lsq || (r == scale_rule::mse && !fmt.is_signed) ? search::lsq_scratch_bytes(block) : 0),
          heap(r == scale_rule::mse && !search::int_lanes_take(fmt, block) ? search::continuous_heap_entries(block) : 0),
          shifted(r == scale_rule::mse && !fmt.is_signed ? block : 0) {}
  };

  uniform_params block_params(std::span<const float> blk, std::span<const float> w, workspace& ws) const noexcept {
    const uniform_params p = computed_params(blk, w, ws);
    return opt_.storage == scale_storage::float32 ? p : stored_params(blk, w, p);
  }

  // The scale (and min) as stored. Search rules: the stored values within two steps of the
  // result (and of the start rule's), whichever has the least error.
  uniform_params stored_params(std::span<const float> blk, std::span<const float> w, uniform_params p) const noexcept {
    const scale_storage st = opt_.storage;
    uniform_params best{stored_scale(p.scale, st), stored_scale(p.min, st)};
    const scale_rule r = *opt_.rule;
    if ((r != scale_rule::lsq && r != scale_rule::mse) || !detail::is_finite(best.scale) || !detail::is_finite(best.min))
      return best;
    double best_error = error(blk, w, best);
    const uniform_params start = rule_params(blk, opt_.symmetric ? (opt_.bits >= 2 ? scale_rule::absmax : scale_rule::signed_max) : scale_rule::minmax);
    for (const uniform_params& c : {p, start}) {
      if (!detail::is_finite(c.scale) || !detail::is_finite(c.min)) continue;
      const float s0 = stored_scale(c.scale, st), m0 = stored_scale(c.min, st);
      for (int i = -2; i <= 2; ++i)
        for (int j = opt_.symmetric ? 0 : -2; j <= (opt_.symmetric ? 0 : 2); ++j) {
          const uniform_params q{step_stored_scale(s0, i, st), opt_.symmetric ? 0.0f : step_stored_scale(m0, j, st)};
          const double e = error(blk, w, q);
          if (e < best_error) best_error = e, best = q;
        }
    }
    return best;
  }

  uniform_params computed_params(std::span<const float> blk, std::span<const float> w, workspace& ws) const noexcept {
    const scale_rule r = *opt_.rule;
    if (r != scale_rule::lsq && r != scale_rule::mse) return rule_params(blk, r);
    double start_error = -1.0;
    const uniform_params start =
        opt_.symmetric ? symmetric_start(blk, w, &start_error) : rule_params(blk, scale_rule::minmax);
    if (!detail::is_finite(start.scale) || !detail::is_finite(start.min)) return start;
    if (r == scale_rule::mse && opt_.symmetric && search::int_lanes_take(fmt_, blk.size())) {  // as quantize takes it
      const search::lane_block lane{blk.data(), w.empty() ? nullptr : w.data(), blk.size(), start.scale, start_error};
      search::scale_min_result res;
      search::continuous_int_mse_lanes(Arch{}, std::span<const search::lane_block>(&lane, 1), fmt_, &res);
      return {res.scale, 0.0f};
    }
    const search::scale_min_result res =
        r == scale_rule::lsq
            ? search::lsq_int(Arch{}, blk, w, fmt_, start.scale, start.min, ws.codes)
            : search::continuous_int_mse(Arch{}, blk, w, fmt_, start.scale, start.min, ws.heap, ws.shifted, ws.codes);
    return {res.scale, opt_.symmetric ? 0.0f : res.min};
  }

  // The (weighted) SSE of a block at p, as quantize produces it.
  double error(std::span<const float> blk, std::span<const float> w, uniform_params p) const noexcept {
    const float s = detail::is_finite(p.scale) && detail::is_finite(p.min) ? p.scale : 0.0f;
    const float m = s == 0.0f ? 0.0f : p.min;
    return w.empty() ? kernels::block_sse_int(Arch{}, blk.data(), blk.size(), s, m, fmt_)
                     : kernels::block_wsse_int(Arch{}, blk.data(), w.data(), blk.size(), s, m, fmt_);
  }

  // As detail::check_codec_args: quantizing, x sizes the rest; dequantizing, the codes size
  // the output and the output the scales and mins.
  void check_args(std::size_t n, std::size_t ncodes, std::size_t nscales, std::size_t nmins,
                  bool dequantizing = false) const {
    const char* side = dequantizing ? "output" : "input";
    if (dequantizing)
      detail::check_output_for_codes(n, ncodes, false);
    else
      detail::check_size(ncodes, n, "codes", "one per element for the input's " + std::to_string(n) + " elements");
    const std::string why = opt_.block == 0 ? std::string("one for the whole tensor")
                                            : detail::per_block(n, opt_.block, side);
    detail::check_size(nscales, num_blocks(n), "scales", why);
    detail::check_size(nmins, opt_.symmetric ? 0 : num_blocks(n), "mins",
                       opt_.symmetric ? std::string("symmetric codes have no mins") : why);
  }

  uniform_options opt_;
  int_format fmt_{};
};

BLOCKQ_END_NAMESPACE
