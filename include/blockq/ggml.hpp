// SPDX-License-Identifier: Apache-2.0
// ggml's block types (SPEC §8), byte for byte: Q4_0 (GGUF type 2), Q4_1 (3), Q8_0 (8) and
// MXFP4 (39), 32 elements a block.
//
//   blockq::ggml_quantizer q(blockq::ggml_type::q4_0);   // ggml's own rule: llama-quantize's bytes
//   std::vector<std::uint8_t> row(q.row_bytes(x.size()));
//   q.quantize(x, row);                                  // x.size() a multiple of 32
//   q.dequantize(row, y);                                // ggml's dequantize_row_q4_0
//
// The default rule of each type is ggml's reference quantizer (arch/ggml_scalar.hpp says
// exactly which arithmetic, and where blockq defines what C leaves undefined). MXFP4 keeps
// blockq's exact exponent: its bytes differ from ggml's only for blocks whose largest
// magnitude lies a few ulps below a power of two (ggml's floorf(log2f(amax)) is one too
// high there) or below 2^-125 (ggml's exponent byte wraps around).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/arch/ggml_avx2.hpp"
#include "blockq/arch/ggml_neon.hpp"
#include "blockq/arch/ggml_scalar.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/detail/codec.hpp"
#include "blockq/formats/half.hpp"
#include "blockq/ggml_search.hpp"
#include "blockq/kernels.hpp"
#include "blockq/mx.hpp"
#include "blockq/scale_rule.hpp"

BLOCKQ_BEGIN_NAMESPACE

// The GGUF / ggml type ids.
enum class ggml_type : std::uint32_t { q4_0 = 2, q4_1 = 3, q8_0 = 8, mxfp4 = 39 };

inline constexpr std::size_t ggml_block_elements = 32;

// The block layouts of ggml-common.h (fp16 fields little-endian, as on every host ggml runs on).
struct block_q4_0 {
  float16 d;
  std::uint8_t qs[16];  // qs[j] = q(x[j]) | q(x[j + 16]) << 4
};
struct block_q4_1 {
  float16 d;
  float16 m;
  std::uint8_t qs[16];
};
struct block_q8_0 {
  float16 d;
  std::int8_t qs[32];
};
struct block_mxfp4 {
  std::uint8_t e;  // UE8M0 exponent, 2^(e - 127) times the E2M1 value
  std::uint8_t qs[16];
};
static_assert(sizeof(block_q4_0) == 18 && sizeof(block_q4_1) == 20 && sizeof(block_q8_0) == 34 &&
                  sizeof(block_mxfp4) == 17,
              "ggml block sizes");

constexpr std::size_t ggml_block_bytes(ggml_type t) noexcept {
  switch (t) {
    case ggml_type::q4_0: return sizeof(block_q4_0);
    case ggml_type::q4_1: return sizeof(block_q4_1);
    case ggml_type::q8_0: return sizeof(block_q8_0);
    case ggml_type::mxfp4: return sizeof(block_mxfp4);
  }
  return 0;
}

constexpr std::string_view to_string(ggml_type t) noexcept {
  switch (t) {
    case ggml_type::q4_0: return "q4_0";
    case ggml_type::q4_1: return "q4_1";
    case ggml_type::q8_0: return "q8_0";
    case ggml_type::mxfp4: return "mxfp4";
  }
  return "?";
}

// "q4_0", "q4_1", "q8_0", "mxfp4".
constexpr std::optional<ggml_type> parse_ggml_type(std::string_view s) noexcept {
  for (auto t : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0, ggml_type::mxfp4})
    if (to_string(t) == s) return t;
  return std::nullopt;
}

// A GGUF type id, if it is one of the four.
constexpr std::optional<ggml_type> ggml_type_from_id(std::uint32_t id) noexcept {
  for (auto t : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0, ggml_type::mxfp4})
    if (static_cast<std::uint32_t>(t) == id) return t;
  return std::nullopt;
}

// The rule ggml's reference quantizer applies: signed_max (q4_0), minmax (q4_1), absmax
// (q8_0), ocp (mxfp4, with the exact exponent).
constexpr scale_rule ggml_default_rule(ggml_type t) noexcept {
  switch (t) {
    case ggml_type::q4_0: return scale_rule::signed_max;
    case ggml_type::q4_1: return scale_rule::minmax;
    case ggml_type::q8_0: return scale_rule::absmax;
    case ggml_type::mxfp4: return scale_rule::ocp;
  }
  return scale_rule::ocp;
}

struct ggml_options {
  // Unset: ggml_default_rule(type), ggml's own bytes. Search rules (ggml_search.hpp): mse
  // (all four types), lsq (q4_0, q4_1, q8_0), hessian (all four; needs the weights of
  // quantize_weighted, the diagonal of the Hessian, e.g. an importance matrix).
  std::optional<scale_rule> rule{};
};

namespace detail {
// The checks of the hot calls build their messages only on failure: a quantize call over a
// row that fits in cache takes a few microseconds, and a few string allocations per call
// showed up in the benchmark as several percent.
inline void check_ggml_row(std::size_t n) {
  if (n % ggml_block_elements != 0)
    require(false, "ggml blocks need a multiple of 32 elements, got " + std::to_string(n));
}
}  // namespace detail

namespace kernels {
// MXFP4 on the vector architectures: the fused MX loop (kernels::amax_blocks, rule ocp, ties
// toward zero, ggml layout with zero as code 0) gives ggml's bytes for every block whose
// elements are all finite: its exponent is the exact one and, at that scale, the first code
// of least |kv * d - x| in float32 is the nearest value with ties toward zero. A block with
// NaN or Inf, which the MX loop marks with the NaN scale 0xFF (never the exponent of a finite
// block, at most 252), is redone by the scalar kernel.
template <class Arch>
  requires(!std::is_same_v<Arch, arch::scalar>)
void ggml_mxfp4(Arch, const float* x, std::size_t nb, std::uint8_t* out) noexcept {
  amax_blocks<e2m1, code_layout::ggml_mxfp4>(Arch{}, x, nb * 32, 32, tie_mode::toward_zero,
                                             mx_block_scale<e2m1>{scale_rule::ocp}, ue8m0_block_divisor{}, out,
                                             static_cast<std::uint8_t*>(nullptr));
  for (std::size_t b = 0; b < nb; ++b)
    if (out[b * 17] == ue8m0::nan_code) ggml_mxfp4_block(arch::scalar{}, x + b * 32, out + b * 17);
}
}  // namespace kernels

template <class Arch = default_arch>
class ggml_quantizer {
 public:
  using arch_type = Arch;

  explicit ggml_quantizer(ggml_type type, ggml_options opt = {}) : type_(type), opt_(opt) {
    detail::require(ggml_block_bytes(type) != 0,
                    "unknown ggml type id " + std::to_string(static_cast<std::uint32_t>(type)));
    if (!opt_.rule) opt_.rule = ggml_default_rule(type);
    const scale_rule r = *opt_.rule;
    const bool ok = r == ggml_default_rule(type) || r == scale_rule::mse || r == scale_rule::hessian ||
                    (r == scale_rule::lsq && type != ggml_type::mxfp4);
    detail::require(ok, detail::rule_error(r, "ggml " + std::string(to_string(type)) + " (use " +
                                                  std::string(to_string(ggml_default_rule(type))) +
                                                  (type == ggml_type::mxfp4 ? ", mse, hessian)" : ", mse, lsq, hessian)")));
  }

  ggml_type type() const noexcept { return type_; }
  scale_rule rule() const noexcept { return *opt_.rule; }
  std::size_t block_bytes() const noexcept { return ggml_block_bytes(type_); }
  // Bytes of a row of n elements (n a multiple of 32).
  std::size_t row_bytes(std::size_t n) const {
    detail::check_ggml_row(n);
    return n / ggml_block_elements * block_bytes();
  }

  // x.size() a multiple of 32; out: row_bytes(x.size()) bytes.
  void quantize(std::span<const float> x, std::span<std::uint8_t> out) const { quantize_weighted(x, {}, out); }
  // float16 / bfloat16 inputs, converted to float32 exactly (as ggml does) and quantized as above.
  void quantize(std::span<const float16> x, std::span<std::uint8_t> out) const { quantize16(x, out); }
  void quantize(std::span<const bfloat16> x, std::span<std::uint8_t> out) const { quantize16(x, out); }

  // With one non-negative weight per element (w.size() == x.size()) or per column (w.size() a
  // multiple of 32 that divides x.size(): row r, column c has weight w[c]); empty: unweighted.
  // Rules mse and lsq minimise the weighted error, hessian is the same with the weights
  // required; ggml's default rule ignores them.
  void quantize_weighted(std::span<const float> x, std::span<const float> w, std::span<std::uint8_t> out) const {
    if (!(w.empty() || w.size() == x.size() || (w.size() % ggml_block_elements == 0 && x.size() % w.size() == 0)))
      detail::require(false, "weights: " + std::to_string(w.size()) + " for " + std::to_string(x.size()) +
                                 " elements (one per element, or per column: a multiple of 32 dividing the size)");
    for (float v : w)
      if (!(v >= 0.0f && detail::is_finite(v))) detail::require(false, "weights must be finite and non-negative");
    if (*opt_.rule == scale_rule::hessian && w.empty())
      detail::require(false, "rule hessian needs weights (the Hessian's diagonal): call quantize_weighted");
    quantize_impl(x, out);
    search(x, w, out);
  }

  std::vector<std::uint8_t> quantize(std::span<const float> x) const {
    std::vector<std::uint8_t> out(row_bytes(x.size()));
    quantize(x, out);
    return out;
  }

  // ggml's dequantize_row_*: out.size() a multiple of 32, in: row_bytes(out.size()) bytes.
  void dequantize(std::span<const std::uint8_t> in, std::span<float> out) const {
    // The input fixes the output's size (as detail::check_codec_args does for the other formats).
    const std::size_t bb = block_bytes();
    detail::require(in.size() % bb == 0, "ggml input has " + std::to_string(in.size()) + " bytes, not a multiple of " +
                                             std::to_string(bb) + " (ggml " + std::string(to_string(type_)) + " blocks)");
    detail::check_size(out.size(), in.size() / bb * ggml_block_elements, "output",
                       "32 per block of the ggml input's " + std::to_string(in.size() / bb) + " blocks");
    const std::size_t nb = out.size() / ggml_block_elements;
    switch (type_) {
      case ggml_type::q4_0: kernels::ggml_q4_0_dequantize(Arch{}, in.data(), nb, out.data()); break;
      case ggml_type::q4_1: kernels::ggml_q4_1_dequantize(Arch{}, in.data(), nb, out.data()); break;
      case ggml_type::q8_0: kernels::ggml_q8_0_dequantize(Arch{}, in.data(), nb, out.data()); break;
      case ggml_type::mxfp4: kernels::ggml_mxfp4_dequantize(Arch{}, in.data(), nb, out.data()); break;
    }
  }

 private:
  void quantize_blocks(const float* x, std::size_t nb, std::uint8_t* out) const noexcept {
    switch (type_) {
      case ggml_type::q4_0: kernels::ggml_q4_0(Arch{}, x, nb, out); break;
      case ggml_type::q4_1: kernels::ggml_q4_1(Arch{}, x, nb, out); break;
      case ggml_type::q8_0: kernels::ggml_q8_0(Arch{}, x, nb, out); break;
      case ggml_type::mxfp4: kernels::ggml_mxfp4(Arch{}, x, nb, out); break;
    }
  }

  template <class T>
  void quantize_impl(std::span<const T> x, std::span<std::uint8_t> out) const {
    if (x.size() % ggml_block_elements != 0)
      detail::require(false, "the input has " + std::to_string(x.size()) +
                                 " elements, ggml blocks need a multiple of 32");
    if (out.size() != row_bytes(x.size()))
      detail::check_size(out.size(), row_bytes(x.size()), "ggml output",
                         std::to_string(block_bytes()) + " bytes per block of 32 for the input's " +
                             std::to_string(x.size()) + " elements");
    const std::size_t bb = block_bytes();
    if constexpr (std::is_same_v<T, float>) {
      quantize_blocks(x.data(), x.size() / ggml_block_elements, out.data());
    } else {
      const std::size_t chunk = detail::chunk_elements(ggml_block_elements);
      detail::float_buffer<T> buf(chunk);
      for (std::size_t i = 0; i < x.size(); i += chunk) {
        const std::size_t n = x.size() - i < chunk ? x.size() - i : chunk;
        kernels::to_float(Arch{}, x.data() + i, n, buf.data());
        quantize_blocks(buf.data(), n / ggml_block_elements, out.data() + i / ggml_block_elements * bb);
      }
    }
  }

  bool search_rule() const noexcept { return *opt_.rule != ggml_default_rule(type_); }

  // The search rules, block by block over ggml's bytes in out.
  void search(std::span<const float> x, std::span<const float> w, std::span<std::uint8_t> out) const {
    if (!search_rule()) return;
    const scale_rule r = *opt_.rule;
    const std::size_t bb = block_bytes(), nb = x.size() / ggml_block_elements;
    std::vector<std::pair<double, int>> events;
    for (std::size_t b = 0; b < nb; ++b) {
      const float* xb = x.data() + b * ggml_block_elements;
      std::span<const float> wb;
      if (!w.empty()) wb = w.subspan((b * ggml_block_elements) % w.size(), ggml_block_elements);
      std::uint8_t* ob = out.data() + b * bb;
      switch (type_) {
        case ggml_type::q4_0:
        case ggml_type::q8_0:
          detail::ggml_search_symmetric(xb, wb, type_ == ggml_type::q8_0, r != scale_rule::lsq, ob, events);
          break;
        case ggml_type::q4_1: detail::ggml_search_q4_1(xb, wb, r != scale_rule::lsq, ob); break;
        case ggml_type::mxfp4: detail::ggml_search_mxfp4(xb, wb, ob); break;
      }
    }
  }

  template <class T>
  void quantize16(std::span<const T> x, std::span<std::uint8_t> out) const {
    if (!search_rule()) return quantize_impl(x, out);
    detail::require(*opt_.rule != scale_rule::hessian, "rule hessian needs weights: call quantize_weighted");
    std::vector<float> xf(x.size());
    kernels::to_float(Arch{}, x.data(), x.size(), xf.data());
    quantize_weighted(xf, {}, out);
  }

  ggml_type type_;
  ggml_options opt_;
};

BLOCKQ_END_NAMESPACE
