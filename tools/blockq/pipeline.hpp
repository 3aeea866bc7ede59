// SPDX-License-Identifier: Apache-2.0
// The tool's pipeline: a SOURCE yields tensors (names, dtypes, shapes, where
// their bytes are) and metadata -> SELECTION decides which are quantized ->
// a METHOD quantizes each selected tensor with a codec (codec.hpp: the
// format's bytes) -> a SINK names, types and writes the outputs. `blockq
// quantize` is run_quantize (convert.cpp) over these interfaces; `blockq
// dequantize` reads a source, finds the quantized tensors by blockq's names
// and writes F32 through the same sink; `blockq report` reads a source.
//
// The orchestration (convert.cpp) owns what every format shares: batches of
// about 32 M elements held in memory, rows split into chunks run on the
// threads, the progress bar, the warnings, and the atomic output (the sink
// writes a temporary file or folder renamed at commit(); an error or a
// signal removes it).
//
// How to add a SOURCE (e.g. GGUF, a model folder of shards):
//   1. Derive from `source`; in the constructor open every file with
//      input_file (file.hpp: regular files only, positional reads, never a
//      mapping), fill tensors_ (in the order their data is best read; `part`
//      = index of the file in files_, `offset`/`size` = where the bytes are),
//      metadata_ and files_ (every file read, and a folder source's folder,
//      so that no output can replace them), then call index() (hash lookups
//      by name; it refuses a name given twice, e.g. a tensor in two shards).
//   2. Implement read(): bytes [offset, offset + out.size()) of one tensor,
//      from any thread. F32/F16/BF16 tensors are quantizable; a source of
//      other element types (a GGUF's F16 is fine, its Q4_0 is not) yields
//      them as dtypes the sink can copy, or refuses them.
//   3. Recognise it in open_source() (by content, then by extension/folder).
//   4. Override default_selected() if the format has its own default rule
//      (llama-quantize's for GGUF); a sink's rule, if any, wins (below).
//
// How to add a SINK (e.g. GGUF with ggml block types, compressed-tensors or
// ModelOpt folders):
//   1. Derive from `sink`. outputs() says what is written for one input
//      tensor: for a copied one usually the tensor itself; for a quantized
//      one its names, dtypes and shapes (the codec's `outputs()` gives
//      blockq's names and layout; another sink renames them and, if its
//      bytes differ from the codec's parts, overrides write_quantized() to
//      repack them).
//   2. begin() receives the whole plan (every output tensor in order, with
//      the input part it came from, so a sink can shard like its input) and
//      the input metadata; write() appends bytes to output tensor `index`
//      (tensors come in plan order, each complete before the next); commit()
//      makes everything visible at once. Use output_file (one file) or
//      output_folder (file.hpp: several files under a temporary folder
//      renamed at commit) and pass source::files() so an output can never
//      replace an input.
//   3. Create it in the command's code (run_quantize) from an option such as
//      --export.
//
// How to add a METHOD (e.g. GPTQ):
//   Derive from `method`. prepare() sees the whole tensor (as floats, rows
//   of k) and its calibration data once and returns per-tensor state (a
//   Hessian's factor, the NVFP4 tensor scale); quantize_rows() then fills
//   rows [r0, r1) of the codec's parts and runs on several threads at once
//   for disjoint row ranges (GPTQ's error feedback runs along a row, so rows
//   stay independent). It may read only rows [r0, r1) of x: once a range is
//   done the tool may reuse those rows (to check the result's finiteness).
//   Register its name in make_method().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "codec.hpp"
#include "file.hpp"
#include "safetensors.hpp"
#include "select.hpp"
#include "tensor.hpp"

namespace blockq_tool {

// ------------------------------------------------------------------ sources

class source {
 public:
  virtual ~source() = default;
  source(const source&) = delete;
  source& operator=(const source&) = delete;

  // The path given by the user (messages name it).
  const std::string& path() const noexcept { return path_; }
  std::span<const tensor_info> tensors() const noexcept { return tensors_; }
  const metadata_t& metadata() const noexcept { return metadata_; }
  // The files read, for the "the output is an input" check.
  std::span<const file_id> files() const noexcept { return files_; }

  // Constant-time lookups; null when absent.
  const tensor_info* find(std::string_view name) const;
  const std::string* meta(std::string_view key) const;

  // Bytes [offset, offset + out.size()) of tensor t (one of tensors()) into
  // out. Thread-safe. Throws error naming the file when it cannot be read or
  // has shrunk since it was opened.
  virtual void read(const tensor_info& t, std::uint64_t offset, std::span<std::uint8_t> out) const = 0;
  // The whole tensor.
  std::vector<std::uint8_t> read_all(const tensor_info& t) const;

  // Whether t is quantized when neither --tensors nor the sink says
  // otherwise: floating tensors of rank >= 2.
  virtual bool default_selected(const tensor_info& t) const { return t.shape.size() >= 2; }

 protected:
  explicit source(std::string path) : path_(std::move(path)) {}
  // Builds the lookups; call once tensors_ and metadata_ are filled. Throws
  // error on a tensor name given twice.
  void index();

  std::string path_;
  std::vector<tensor_info> tensors_;
  metadata_t metadata_;
  std::vector<file_id> files_;

 private:
  std::unordered_map<std::string_view, std::size_t> by_name_, by_key_;
};

// Opens a .safetensors file or a .npy file (one tensor named after the
// file's stem). Errors name the path.
std::unique_ptr<source> open_source(const std::string& path);

// ------------------------------------------------------------------ selection

struct selection {
  std::optional<name_filter> include;  // --tensors: only names it matches
};

// Decides for every tensor of `src` (in order) whether it is quantized with
// cfg: matched by the selection (or, without --tensors, by the sink's or else
// the source's default rule), floating, non-empty, and with a last dimension
// that is a multiple of the block. Warns about each tensor the user asked for
// that is copied instead, and when --tensors matches nothing.
class sink;
std::vector<bool> select_tensors(const source& src, const sink& dst, const selection& sel, const quant_config& cfg);

// ------------------------------------------------------------------ methods

class method {
 public:
  virtual ~method() = default;
  virtual std::string_view name() const noexcept = 0;
  // Per-tensor state from all of x (rows of k); h is set for rule hessian.
  virtual tensor_state prepare(const codec& c, std::span<const float> x, std::size_t k, const hessian_input* h) const = 0;
  // Rows [r0, r1) of x into the codec's parts (whole-tensor spans).
  virtual void quantize_rows(const codec& c, std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1,
                             const tensor_state& st, std::span<const std::span<std::uint8_t>> parts) const = 0;
};

// "rtn": round to nearest with the codec's scale rule, row by row; "gptq":
// error feedback with the tensor's Hessian (codec::prepare_gptq). Throws
// error for an unknown name.
std::unique_ptr<method> make_method(std::string_view name);

// ------------------------------------------------------------------ sinks

// One output tensor, in the order of the file(s) written.
struct planned_output {
  tensor_spec spec;
  const tensor_info* from = nullptr;  // the input tensor it comes from (its part)
};

// One input tensor and what the sink writes for it.
struct planned_tensor {
  const tensor_info* in = nullptr;
  const codec* quantized_with = nullptr;  // null: copied (or, in dequantize, restored)
  std::size_t first = 0, count = 0;      // its outputs: plan[first, first + count)
};

class sink {
 public:
  virtual ~sink() = default;

  // Overrides the source's default selection when set.
  virtual std::optional<bool> default_selected(const tensor_info&) const { return std::nullopt; }
  // NVFP4: the amax the tensor scale of t is computed from when it is not
  // t's own (fused layers sharing one tensor scale).
  virtual std::optional<float> shared_amax(const tensor_info&) const { return std::nullopt; }
  // The tensors written for input t: quantized with c, or copied (c null).
  virtual std::vector<tensor_spec> outputs(const tensor_info& t, const codec* c) const = 0;
  // Before any data: every output in order, the input tensors they come from
  // and the input's metadata (cfg: the quantization; null in dequantize).
  virtual void begin(std::span<const planned_output> plan, std::span<const planned_tensor> tensors,
                     const metadata_t& input_metadata, const quant_config* cfg) = 0;
  // Appends bytes to output plan[index]; outputs come in plan order.
  virtual void write(std::size_t index, std::span<const std::uint8_t> bytes) = 0;
  // A quantized tensor's outputs from the codec's parts (in the order of
  // codec::outputs). By default each part is one output, unchanged.
  virtual void write_quantized(const planned_tensor& t, std::span<const std::vector<std::uint8_t>> parts);
  // Makes the output visible (rename); returns the bytes written.
  virtual std::uint64_t commit() = 0;
};

// Checks the -o path of the blockq safetensors sink (before any input is read).
void check_safetensors_output(const std::string& path);

// One .safetensors file: blockq's names (SPEC §8) for quantized tensors and
// its metadata (blockq.format, ..., blockq.tensors); copied tensors and
// metadata keep their names. Refuses to write over a file of `in`.
std::unique_ptr<sink> make_safetensors_sink(const std::string& path, const source& in);
// The same, refusing to write over any of `inputs` (the input and, say, calibration files).
std::unique_ptr<sink> make_safetensors_sink(const std::string& path, std::span<const file_id> inputs);

}  // namespace blockq_tool
