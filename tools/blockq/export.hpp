// SPDX-License-Identifier: Apache-2.0
// Engine-ready exports of a model folder (folder.hpp): the tensors' names,
// dtypes, shapes and packing, and the configs, as the engines' loaders read
// them (README "Model folders" cites the sources).
//
//  compressed-tensors (llm-compressor's format; vLLM, SGLang, transformers):
//   int4/int8 (sym)    pack-quantized:  W.weight_packed I32 [N, K*b/32] (32/b codes q + 2^(b-1) a
//                      word, lowest index in the lowest bits), W.weight_scale [N, K/g] in the
//                      weight's dtype, W.weight_shape I64 [2];
//   uint4/uint8 (asym) also W.weight_zero_point I32 [ceil(N*b/32), K/g] (zero points z + 2^(b-1),
//                      packed along N), dequantized as (q - z) * scale;
//   nvfp4              nvfp4-pack-quantized: W.weight_packed U8 [N, K/2] (even element in the low
//                      nibble), W.weight_scale F8_E4M3 [N, K/16], W.weight_global_scale F32 [1] =
//                      1 / (amax / (6 * 448)); w = e2m1 * weight_scale / weight_global_scale;
//   mxfp4              mxfp4-pack-quantized: W.weight_packed U8 [N, K/2], W.weight_scale U8 (E8M0) [N, K/32].
//  modelopt (NVIDIA ModelOpt's unified HF checkpoint; vLLM, SGLang, TensorRT-LLM):
//   nvfp4              W.weight U8 [N, K/2], W.weight_scale F8_E4M3 [N, K/16], W.weight_scale_2 F32 []
//                      = amax / (6 * 448), W.input_scale F32 [] = activation amax / (6 * 448).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec.hpp"
#include "folder.hpp"
#include "pipeline.hpp"

namespace blockq_tool {

enum class export_kind : std::uint8_t { blockq, compressed_tensors, modelopt };
std::optional<export_kind> parse_export(std::string_view s) noexcept;
std::string_view to_string(export_kind e) noexcept;

// The default selection of a model folder: the 2-D weights ("*.weight") of
// linear layers; never embeddings, lm_head (unless include_lm_head), norms,
// MoE routers (a module named gate or router).
bool is_linear_weight(std::string_view name, const shape_t& shape, bool include_lm_head = false);
// Whether a weight left unquantized is named in the export's ignore list: a
// linear layer, lm_head or a router (not an embedding or a norm).
bool is_ignored_linear(std::string_view name, const shape_t& shape);

// The fused group of a weight ("P.q_proj.weight" -> "P.qkv", "P.up_proj.weight"
// -> "P.gate_up"; Llama, Mistral, Qwen, Gemma, gpt-oss, Mixtral and Meta's
// own wq/wk/wv, w1/w3 names), or empty.
std::string fused_group(std::string_view weight_name);

// The module of a weight: its name without ".weight".
std::string module_of(std::string_view weight_name);

// Checks that the export can store cfg's format (throws error naming both).
void check_export_format(export_kind e, const quant_config& cfg);

// The codec whose parts an export repacks: make_codec(cfg) except for the
// compressed-tensors integers, whose codes are computed with the scale rounded
// to `scale_type` (F16, BF16 or F32: the dtype it is stored in) and, when
// asymmetric, an integer zero point.
std::unique_ptr<codec> make_export_codec(export_kind e, const quant_config& cfg, dtype scale_type);

// What an export writes besides the tensors.
struct export_settings {
  export_kind kind = export_kind::compressed_tensors;
  quant_config cfg;
  dtype scale_type = dtype::BF16;             // compressed-tensors integer scales
  std::vector<std::string> ignore;            // modules left unquantized, sorted
  std::map<std::string, float> shared_amax;   // NVFP4: weight name -> amax its tensor scale is computed from
  std::map<std::string, float> input_amax;    // modelopt: weight name -> activation amax
};

// config.json's quantization_config, and hf_quant_config.json (modelopt; null otherwise).
nlohmann::json quantization_config(const export_settings& s);
nlohmann::json hf_quant_config(const export_settings& s);

// Writes a model folder: the shards of `in` (or, with `partial`, only the
// shards of in.tensors(), straight into an existing or new OUT_DIR, each with
// a record for `blockq finalize`); otherwise the whole folder, index, configs
// and copied files, under a temporary name renamed at commit.
std::unique_ptr<sink> make_folder_sink(const std::string& out_dir, const folder_source& in, export_settings s,
                                       bool partial);

// `blockq finalize OUT_DIR`: once every shard's record is there, writes the
// index, config.json (and hf_quant_config.json) and copies the model's other files.
void run_finalize(const std::string& out_dir);

}  // namespace blockq_tool
