// SPDX-License-Identifier: Apache-2.0
// `blockq quantize` and `blockq dequantize`.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

namespace blockq_tool {

// A uint64 written in decimal, all of the text (no sign, no space, no wrap-around: CLI11 and
// strtoull would take -1 as 2^64 - 1), or nothing; u64_range names the accepted range in messages.
inline std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}
inline constexpr const char* u64_range = "an integer from 0 to 2^64 - 1";

struct quantize_options {
  std::string input, output;
  std::string format = "mxfp4";
  std::string rule;  // empty: the format's default
  std::size_t block = 0;  // 0: the format's default
  std::string ties = "even";
  bool ties_given = false;  // --ties given (a .gguf output then leaves ggml's own ties)
  std::string layout = "ocp";
  std::string hessian;  // activations file for rule hessian and method gptq
  std::string hessian_kind = "activations";  // or "matrix": NAME holds H [K, K]
  std::string hessian_map;                   // JSON file: weight name -> activation name
  std::string method = "rtn";                // or "gptq"
  double damp = 0.01;
  bool damp_given = false;
  bool act_order = false;
  std::string rotate = "none";               // or "hadamard" (size: the block)
  std::optional<std::uint64_t> rotate_seed;  // --rotate hadamard: random signs from this seed
  std::string imatrix;  // llama.cpp importance matrix (.gguf or .dat) for rules hessian (and mse, .gguf outputs)
  bool quantize_output = false;  // .gguf: also quantize the output tensor (output.weight or tied token_embd.weight)
  std::string tensors;  // regex; empty: the default selection
  bool tensors_given = false;
  std::string exclude;      // regex; matching tensors are not quantized
  std::string export_name;  // empty: blockq for a file, compressed-tensors for a model folder
  std::string shards;       // model folder: the shards to quantize (then blockq finalize)
  std::string act_amax;     // --export modelopt: JSON of activation amax per module
  bool no_fuse = false;     // NVFP4 exports: no shared tensor scale for q/k/v and gate/up
  unsigned threads = 0;  // 0: all cores
};

struct dequantize_options {
  std::string input, output;
  unsigned threads = 0;
};

// --hessian-map FILE: a JSON object from weight names to activation names
// (empty path: empty map). Throws error naming the file.
std::unordered_map<std::string, std::string> read_hessian_map(const std::string& path);

// Both write OUTPUT atomically and throw error on any problem.
void run_quantize(const quantize_options& opt);
void run_dequantize(const dequantize_options& opt);

// Metadata keys written by quantize (the prefix keeps clear of the
// framework's "format": "pt" that Hugging Face checkpoints carry).
inline constexpr const char* meta_prefix = "blockq.";
inline constexpr const char* meta_tensors = "blockq.tensors";

}  // namespace blockq_tool
