// SPDX-License-Identifier: Apache-2.0
// The formats of the blockq tool and how each is stored in safetensors
// (SPEC §8). A codec turns rows of floats into the bytes of its output
// tensors and back, with the library's quantizers and packers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blockq/formats/tie_mode.hpp"
#include "blockq/scale_rule.hpp"
#include "safetensors.hpp"
#include "tensor.hpp"

namespace blockq_tool {

enum class family : std::uint8_t { mx, nvfp4, fp4, sint, uint };

struct format_info {
  std::string_view name;
  family fam;
  int bits;  // bits of one element
  std::size_t default_block;
  blockq::scale_rule default_rule;
  std::string_view summary;
};

// Every format, in the order of `blockq quantize --help`.
std::span<const format_info> all_formats() noexcept;
const format_info* find_format(std::string_view name) noexcept;
// "mxfp4, nvfp4, ...".
std::string format_list();

enum class layout : std::uint8_t { ocp, ggml };
std::string_view to_string(layout l) noexcept;

struct quant_config {
  const format_info* format = nullptr;
  blockq::scale_rule rule = blockq::scale_rule::ocp;
  std::size_t block = 32;
  blockq::tie_mode ties = blockq::tie_mode::even;
  layout lay = layout::ocp;
  // The quantization method (pipeline.hpp) and its settings, recorded in the metadata:
  // "rtn" or "gptq" (damp, act_order); rotate: a block Hadamard rotation of the block size.
  std::string_view method = "rtn";
  double damp = 0.01;
  bool act_order = false;
  bool rotate = false;
  std::optional<std::uint64_t> rotate_seed;  // the rotation's random signs (none: all +1)
};

// Checks and fills a configuration from command-line strings (empty: the
// format's default). Throws error with a one-line reason, including the
// library's own message for a rule that does not apply.
quant_config make_config(std::string_view format, std::string_view rule, std::size_t block,
                         std::string_view ties, std::string_view layout_name);

// Inputs of the Hessian-aware rule and of GPTQ for one tensor: calibration
// activations [T, K] (row-major), or the Hessian H = X^T X [K, K] itself, viewed.
struct hessian_input {
  std::span<const float> activations;
  // Or an importance matrix's column weights (imatrix.hpp): K values, or
  // K x M for a tensor of M matrices (experts), matrix after matrix.
  std::span<const float> importance;
  std::span<const double> matrix;
};

// Per-tensor values computed from the whole tensor before its rows.
struct tensor_state {
  float tensor_scale = 1.0f;  // NVFP4
  std::shared_ptr<const void> extra;  // rule-specific (e.g. block Hessians)
  int extra_kind = 0;                 // what extra holds (codec.cpp: 1 block Hessians, 2 a GPTQ result)
};

class codec {
 public:
  virtual ~codec() = default;
  const quant_config& config() const noexcept { return cfg_; }

  // The tensors written for a tensor NAME of this shape (last dimension a multiple of the block).
  virtual std::vector<tensor_spec> outputs(const std::string& name, const shape_t& shape) const = 0;
  // Called once per tensor with all its elements; h is set for rule hessian.
  virtual tensor_state prepare(std::span<const float> x, std::size_t row_length, const hessian_input* h) const;
  // Rows [r0, r1) of x (rows of `row_length` elements) into parts, one span
  // per output tensor (whole-tensor size).
  virtual void quantize_rows(std::span<const float> x, std::size_t row_length, std::size_t r0, std::size_t r1,
                             const tensor_state& st, std::span<const std::span<std::uint8_t>> parts) const = 0;
  // The inverse: rows [r0, r1) of out from the parts' bytes (any alignment).
  virtual void dequantize_rows(std::span<const std::span<const std::uint8_t>> parts, std::size_t row_length,
                               std::size_t r0, std::size_t r1, std::span<float> out) const = 0;
  // Bits per element, scales included, for a tensor of n elements.
  virtual double bits_per_element(std::size_t n) const = 0;
  // Error feedback: GPTQ (blockq/gptq.hpp) of all of x with H [K, K] and the
  // configuration's damp and act_order, kept in the state; quantize_rows then
  // writes rows of that result. By default (a codec without it): an error.
  virtual tensor_state prepare_gptq(std::span<const float> x, std::size_t row_length, std::span<const double> h) const;

 protected:
  explicit codec(const quant_config& cfg) : cfg_(cfg) {}
  quant_config cfg_;
};

// Throws error when the configuration is invalid.
std::unique_ptr<codec> make_codec(const quant_config& cfg);

// The message of the library's std::invalid_argument without its "blockq: " prefix.
std::string library_message(const std::exception& e);

}  // namespace blockq_tool
