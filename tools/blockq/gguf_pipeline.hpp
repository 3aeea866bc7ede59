// SPDX-License-Identifier: Apache-2.0
// GGUF in the tool's pipeline (pipeline.hpp): a source that reads a GGUF
// file's tensors (F32, F16 and BF16 are quantizable; every other ggml type is
// copied as bytes), a codec that writes ggml's block types (Q4_0, Q4_1, Q8_0,
// MXFP4) with the library's ggml-exact quantizers, and a sink that writes a
// GGUF file: every key/value pair kept in order, general.file_type and
// general.quantization_version updated, blockq.* provenance keys added, the
// tensors in their order with their alignment.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "blockq/ggml.hpp"
#include "codec.hpp"
#include "file.hpp"
#include "gguf.hpp"
#include "imatrix.hpp"
#include "pipeline.hpp"

namespace blockq_tool {

// True when the file starts with the GGUF magic.
bool is_gguf(const input_file& f);
// The source of a GGUF file (errors name nothing; open_source adds the path).
std::unique_ptr<source> open_gguf_source(const std::string& path, std::unique_ptr<input_file> f);
// The parsed header of a GGUF source, or null for another source.
const gguf::file* gguf_header_of(const source& s);
// The ggml tensor of a GGUF source's tensor t (same index).
const gguf::tensor_info& gguf_tensor_of(const source& s, const tensor_info& t);

// What llama-quantize quantizes by default (src/llama-quant.cpp): names
// ending in "weight", of 2 or more dimensions, except norms, ffn_gate_inp,
// position embeddings, token types, Mamba's ssm_conv1d, RWKV's time_mix_*
// and T5's attn_rel_b; and, unless quantize_output, the output tensor
// (output.weight, or token_embd.weight when the model has no output.weight),
// which llama-quantize writes as Q6_K (Q8_0 for q8_0 and mxfp4) where blockq
// has no such type.
bool llama_quantize_selects(const std::string& name, std::size_t n_dims, bool output_tensor, bool quantize_output);

// A ggml block type as a tool format: q4_0, q4_1, q8_0 or mxfp4.
const format_info* find_ggml_format(std::string_view name) noexcept;
// llama.h's llama_ftype for a file mostly of this type: MOSTLY_Q4_0 = 2,
// MOSTLY_Q4_1 = 3, MOSTLY_Q8_0 = 7, MOSTLY_MXFP4_MOE = 38.
std::uint32_t llama_ftype_of(blockq::ggml_type t) noexcept;

// The configuration of a .gguf output: format mxfp4, q4_0, q4_1 or q8_0,
// blocks of 32; `exact` (the returned bool) when the rule is the type's
// default (ggml's) and --ties was not given.
std::pair<quant_config, bool> make_ggml_config(std::string_view format, std::string_view rule, std::size_t block,
                                               std::string_view ties, bool ties_given);
// The ggml type of a configuration from make_ggml_config.
blockq::ggml_type find_ggml_type(const quant_config& cfg);

struct ggml_target {
  blockq::ggml_type type = blockq::ggml_type::q4_0;
  bool exact = true;  // the default rule and ties: ggml's own bytes (blockq's exact MXFP4 exponent)
  const importance_matrix* imatrix = nullptr;
};

// A codec writing one U8 tensor of ggml blocks per tensor (rows of k
// elements -> k / 32 blocks). Non-default rules (mxfp4 only: ceil, floor,
// mse, hessian, --ties) go through the MX quantizer; with an importance
// matrix, mse and hessian minimise sum_k w_k r_k^2 (a diagonal Hessian).
std::unique_ptr<codec> make_ggml_codec(const quant_config& cfg, const ggml_target& target);
// The ggml type of a codec made by make_ggml_codec, else nullopt.
std::optional<blockq::ggml_type> ggml_type_of(const codec& c);

struct gguf_sink_options {
  bool quantize_output = false;
  std::string imatrix_path;  // recorded in blockq.imatrix
};

// Writes a GGUF file from a GGUF source (refuses another source).
std::unique_ptr<sink> make_gguf_sink(const std::string& path, const source& in, const gguf_sink_options& opt);

// `blockq dequantize` of a GGUF source into a GGUF file: Q4_0, Q4_1, Q8_0
// and MXFP4 tensors become F32 (ggml's dequantization), every other tensor
// and every key/value pair is kept; general.file_type becomes 0 (ALL_F32).
void dequantize_gguf(const source& in, const std::string& output, unsigned threads);

}  // namespace blockq_tool
