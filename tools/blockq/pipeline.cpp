// SPDX-License-Identifier: Apache-2.0
// The sources, selection, method and sink of today's tool (see pipeline.hpp).
#include "pipeline.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "blockq/gptq.hpp"
#include "blockq/version.hpp"
#include "convert.hpp"
#include "gguf_pipeline.hpp"
#include "npy.hpp"
#include "parallel.hpp"

namespace blockq_tool {
namespace {

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// ------------------------------------------------------------------ sources

// A .safetensors file: the header is read and validated at open, the tensors'
// bytes only when asked for.
class safetensors_source final : public source {
 public:
  explicit safetensors_source(const std::string& path, std::unique_ptr<input_file> f) : source(path), file_(std::move(f)) {
    std::array<std::uint8_t, 8> first{};
    const std::uint64_t size = file_->size();
    if (size >= 8) file_->read(0, first);
    const std::uint64_t n = safetensors_header_length(std::span<const std::uint8_t>(first).first(size >= 8 ? 8 : 0), size);
    std::string text(static_cast<std::size_t>(n), '\0');
    file_->read(8, {reinterpret_cast<std::uint8_t*>(text.data()), text.size()});
    auto layout = parse_safetensors_header(text, size);
    tensors_ = std::move(layout.tensors);
    metadata_ = std::move(layout.metadata);
    files_ = {file_->id()};
    index();
  }

  void read(const tensor_info& t, std::uint64_t offset, std::span<std::uint8_t> out) const override {
    file_->read(t.offset + offset, out);
  }

 private:
  std::unique_ptr<input_file> file_;
};

// A .npy file: one tensor named after the file's stem, converted to
// little-endian C order when read (so held in memory).
class npy_source final : public source {
 public:
  npy_source(const std::string& path, const input_file& f) : source(path) {
    array_ = parse_npy(f.read_all());
    tensors_.push_back({std::filesystem::path(path).stem().string(), array_.type, array_.shape, 0, 0, array_.bytes.size()});
    files_ = {f.id()};
    index();
  }

  void read(const tensor_info&, std::uint64_t offset, std::span<std::uint8_t> out) const override {
    if (!out.empty()) std::memcpy(out.data(), array_.bytes.data() + offset, out.size());
  }

 private:
  npy_array array_;
};

}  // namespace

void source::index() {
  by_name_.clear();
  by_key_.clear();
  by_name_.reserve(tensors_.size());
  for (std::size_t i = 0; i < tensors_.size(); ++i)
    if (!by_name_.emplace(tensors_[i].name, i).second)
      throw error(path_ + ": tensor " + in_quotes(tensors_[i].name) + " is given twice");
  for (std::size_t i = 0; i < metadata_.size(); ++i) by_key_.emplace(metadata_[i].first, i);
}

const tensor_info* source::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const std::string* source::meta(std::string_view key) const {
  const auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : &metadata_[it->second].second;
}

std::vector<std::uint8_t> source::read_all(const tensor_info& t) const {
  std::vector<std::uint8_t> b(static_cast<std::size_t>(t.size));
  read(t, 0, b);
  return b;
}

std::unique_ptr<source> open_source(const std::string& path) {
  auto f = std::make_unique<input_file>(path);
  try {
    std::array<std::uint8_t, 6> magic{};
    const bool long_enough = f->size() >= magic.size();
    if (long_enough) f->read(0, magic);
    if (is_gguf(*f)) return open_gguf_source(path, std::move(f));
    if ((long_enough && is_npy(magic)) || std::filesystem::path(path).extension() == ".npy")
      return std::make_unique<npy_source>(path, *f);
    return std::make_unique<safetensors_source>(path, std::move(f));
  } catch (const error& e) {
    throw error(path + ": " + e.what());
  }
}

// ------------------------------------------------------------------ selection

std::vector<bool> select_tensors(const source& src, const sink& dst, const selection& sel, const quant_config& cfg) {
  const bool given = sel.include.has_value();
  std::vector<bool> out(src.tensors().size(), false);
  bool matched_any = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const tensor_info& t = src.tensors()[i];
    if (given && !sel.include->matches(t.name)) continue;
    if (!given && !dst.default_selected(t).value_or(src.default_selected(t))) continue;
    matched_any = true;
    const std::string who = "tensor " + in_quotes(t.name) + " " + shape_string(t.shape) + " " + std::string(to_string(t.type));
    if (!is_quantizable(t.type)) {
      if (given) warn(who + " is not F32, F16 or BF16; copied unchanged");
      continue;
    }
    if (t.shape.empty()) {
      if (given) warn(who + " has no last axis to quantize along; copied unchanged");
      continue;
    }
    const std::uint64_t k = t.shape.back();
    if (t.numel() == 0) {
      if (given) warn(who + " is empty; copied unchanged");
      continue;
    }
    if (k % cfg.block != 0) {
      warn(who + ": the last dimension " + std::to_string(k) + " is not a multiple of the block (" +
           std::to_string(cfg.block) + "); copied unchanged");
      continue;
    }
    out[i] = true;
  }
  if (given && !matched_any) warn("--tensors '" + sel.include->pattern() + "' matches no tensor");
  return out;
}

// ------------------------------------------------------------------ methods

namespace {

class rtn_method final : public method {
 public:
  std::string_view name() const noexcept override { return "rtn"; }
  tensor_state prepare(const codec& c, std::span<const float> x, std::size_t k, const hessian_input* h) const override {
    return c.prepare(x, k, h);
  }
  void quantize_rows(const codec& c, std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1,
                     const tensor_state& st, std::span<const std::span<std::uint8_t>> parts) const override {
    c.quantize_rows(x, k, r0, r1, st, parts);
  }
};

// "gptq": error feedback (blockq/gptq.hpp) over the whole tensor in prepare()
// (tensors run in parallel there), with H = X^T X from the activations or H as
// given; quantize_rows() writes rows of the result.
class gptq_method final : public method {
 public:
  std::string_view name() const noexcept override { return "gptq"; }
  tensor_state prepare(const codec& c, std::span<const float> x, std::size_t k, const hessian_input* h) const override {
    if (!h || (h->activations.empty() && h->matrix.empty()))
      throw error("--method gptq needs calibration activations or a Hessian (--hessian ACTS)");
    if (!h->matrix.empty()) return c.prepare_gptq(x, k, h->matrix);
    const std::vector<double> hm = blockq::hessian_from_activations(h->activations, k);
    return c.prepare_gptq(x, k, hm);
  }
  void quantize_rows(const codec& c, std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1,
                     const tensor_state& st, std::span<const std::span<std::uint8_t>> parts) const override {
    c.quantize_rows(x, k, r0, r1, st, parts);
  }
};

}  // namespace

std::unique_ptr<method> make_method(std::string_view name) {
  if (name == "rtn") return std::make_unique<rtn_method>();
  if (name == "gptq") return std::make_unique<gptq_method>();
  throw error("unknown method '" + std::string(name) + "' (methods: rtn, gptq)");
}

// ------------------------------------------------------------------ sinks

void sink::write_quantized(const planned_tensor& t, std::span<const std::vector<std::uint8_t>> parts) {
  if (parts.size() != t.count) throw error("internal: " + std::to_string(parts.size()) + " parts for " + std::to_string(t.count) + " outputs");
  for (std::size_t i = 0; i < parts.size(); ++i) write(t.first + i, parts[i]);
}

void check_safetensors_output(const std::string& path) {
  if (path.empty()) throw error("no output file (-o OUTPUT)");
  const std::string ext = ".safetensors";
  if (path.size() < ext.size() || path.compare(path.size() - ext.size(), ext.size(), ext) != 0)
    throw error("the output must be a .safetensors file, got '" + path + "'");
}

namespace {

// The metadata keys quantize writes: they describe one quantization.
constexpr std::array<std::string_view, 7> own_keys{"blockq.format", "blockq.rule",    "blockq.block",  "blockq.ties",
                                                   "blockq.layout", "blockq.version", "blockq.tensors"};

bool is_own_key(std::string_view k) { return std::find(own_keys.begin(), own_keys.end(), k) != own_keys.end(); }

// Input metadata carried to the output: every key but those the tool writes
// itself, which describe a quantization (dequantize drops them: they no
// longer apply; quantize replaces them, with a warning naming them). Other
// keys, "blockq."-prefixed or not, are kept as they are.
metadata_t kept_metadata(const metadata_t& in, bool quantizing) {
  metadata_t out;
  std::string replaced;
  for (const auto& kv : in) {
    if (!is_own_key(kv.first)) {
      out.push_back(kv);
    } else if (quantizing) {
      replaced += (replaced.empty() ? "" : ", ") + kv.first;
    }
  }
  if (!replaced.empty()) warn("the input's metadata " + replaced + " replaced by this quantization's");
  return out;
}

class safetensors_sink final : public sink {
 public:
  safetensors_sink(const std::string& path, std::span<const file_id> inputs) : path_(path), inputs_(inputs.begin(), inputs.end()) {
    check_safetensors_output(path);
  }

  std::vector<tensor_spec> outputs(const tensor_info& t, const codec* c) const override {
    if (c) return c->outputs(t.name, t.shape);
    return {{t.name, t.type, t.shape}};
  }

  void begin(std::span<const planned_output> plan, std::span<const planned_tensor> tensors, const metadata_t& input_metadata,
             const quant_config* cfg) override {
    std::vector<tensor_spec> specs;
    specs.reserve(plan.size());
    for (const planned_output& p : plan) specs.push_back(p.spec);
    metadata_t meta = kept_metadata(input_metadata, cfg != nullptr);
    if (cfg) {
      // What dequantize needs: the format and, per quantized tensor, its dtype and shape.
      nlohmann::json record = nlohmann::json::object();
      for (const planned_tensor& t : tensors)
        if (t.quantized_with) record[t.in->name] = {{"dtype", std::string(to_string(t.in->type))}, {"shape", t.in->shape}};
      const std::vector<std::pair<std::string, std::string>> ours{
          {"blockq.format", std::string(cfg->format->name)},
          {"blockq.rule", std::string(blockq::to_string(cfg->rule))},
          {"blockq.block", std::to_string(cfg->block)},
          {"blockq.ties", std::string(blockq::to_string(cfg->ties))},
          {"blockq.layout", std::string(to_string(cfg->lay))},
          {"blockq.version", BLOCKQ_VERSION_STRING},
          {meta_tensors, record.dump()}};
      meta.insert(meta.end(), ours.begin(), ours.end());
      // The method and rotation when not the defaults (absent: rtn, none).
      if (cfg->method != "rtn" || cfg->rotate) {
        meta.emplace_back("blockq.method", std::string(cfg->method));
        meta.emplace_back("blockq.rotation", cfg->rotate ? "hadamard" : "none");
      }
      if (cfg->rotate_seed) meta.emplace_back("blockq.rotation_seed", std::to_string(*cfg->rotate_seed));
      if (cfg->method == "gptq") {
        char damp[32];
        std::snprintf(damp, sizeof damp, "%.17g", cfg->damp);
        meta.emplace_back("blockq.damp", damp);
        meta.emplace_back("blockq.act_order", cfg->act_order ? "true" : "false");
      }
    }
    const std::string header = safetensors_header(specs, meta);
    total_ = header.size();
    for (const tensor_spec& s : specs) total_ += s.bytes();
    out_ = std::make_unique<output_file>(path_, inputs_);
    out_->write(header.data(), header.size());
  }

  void write(std::size_t index, std::span<const std::uint8_t> bytes) override {
    if (index < next_) throw error("internal: output tensors written out of order");
    next_ = index;
    out_->write(bytes);
  }

  std::uint64_t commit() override {
    out_->commit();
    return total_;
  }

 private:
  std::string path_;
  std::vector<file_id> inputs_;
  std::unique_ptr<output_file> out_;
  std::uint64_t total_ = 0;
  std::size_t next_ = 0;
};

}  // namespace

std::unique_ptr<sink> make_safetensors_sink(const std::string& path, const source& in) {
  return std::make_unique<safetensors_sink>(path, in.files());
}

std::unique_ptr<sink> make_safetensors_sink(const std::string& path, std::span<const file_id> inputs) {
  return std::make_unique<safetensors_sink>(path, inputs);
}

}  // namespace blockq_tool
