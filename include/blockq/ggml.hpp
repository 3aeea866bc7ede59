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
#include "blockq/arch/ggml_scalar.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/detail/codec.hpp"
#include "blockq/formats/half.hpp"
#include "blockq/kernels.hpp"
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
  // Unset: ggml_default_rule(type), ggml's own bytes.
  std::optional<scale_rule> rule{};
};

namespace detail {
inline void check_ggml_row(std::size_t n) {
  require(n % ggml_block_elements == 0,
          "ggml blocks need a multiple of 32 elements, got " + std::to_string(n));
}
}  // namespace detail

template <class Arch = default_arch>
class ggml_quantizer {
 public:
  using arch_type = Arch;

  explicit ggml_quantizer(ggml_type type, ggml_options opt = {}) : type_(type), opt_(opt) {
    detail::require(ggml_block_bytes(type) != 0,
                    "unknown ggml type id " + std::to_string(static_cast<std::uint32_t>(type)));
    if (!opt_.rule) opt_.rule = ggml_default_rule(type);
    detail::require(*opt_.rule == ggml_default_rule(type),
                    detail::rule_error(*opt_.rule, "ggml " + std::string(to_string(type)) + " (use " +
                                                       std::string(to_string(ggml_default_rule(type))) + ")"));
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
  void quantize(std::span<const float> x, std::span<std::uint8_t> out) const { quantize_impl(x, out); }
  // float16 / bfloat16 inputs, converted to float32 exactly (as ggml does) and quantized as above.
  void quantize(std::span<const float16> x, std::span<std::uint8_t> out) const { quantize_impl(x, out); }
  void quantize(std::span<const bfloat16> x, std::span<std::uint8_t> out) const { quantize_impl(x, out); }

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
    detail::require(x.size() % ggml_block_elements == 0,
                    "the input has " + std::to_string(x.size()) + " elements, ggml blocks need a multiple of 32");
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

  ggml_type type_;
  ggml_options opt_;
};

BLOCKQ_END_NAMESPACE
