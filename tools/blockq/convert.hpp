// SPDX-License-Identifier: Apache-2.0
// `blockq quantize` and `blockq dequantize`.
#pragma once

#include <cstddef>
#include <string>

namespace blockq_tool {

struct quantize_options {
  std::string input, output;
  std::string format = "mxfp4";
  std::string rule;  // empty: the format's default
  std::size_t block = 0;  // 0: the format's default
  std::string ties = "even";
  std::string layout = "ocp";
  std::string hessian;  // activations file for rule hessian
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

// Both write OUTPUT atomically and throw error on any problem.
void run_quantize(const quantize_options& opt);
void run_dequantize(const dequantize_options& opt);

// Metadata keys written by quantize (the prefix keeps clear of the
// framework's "format": "pt" that Hugging Face checkpoints carry).
inline constexpr const char* meta_prefix = "blockq.";
inline constexpr const char* meta_tensors = "blockq.tensors";

}  // namespace blockq_tool
