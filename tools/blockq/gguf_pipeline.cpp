// SPDX-License-Identifier: Apache-2.0
#include "gguf_pipeline.hpp"

#include <array>
#include <cstring>

#include "blockq/mx.hpp"
#include "blockq/pack.hpp"
#include "blockq/search/hessian.hpp"
#include "blockq/version.hpp"
#include "parallel.hpp"

namespace blockq_tool {
namespace {

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

// gguf::parse reads through the pipeline's input_file (positional reads).
class input_file_bytes final : public gguf::byte_source {
 public:
  explicit input_file_bytes(const input_file& f) : f_(f) {}
  std::uint64_t size() const override { return f_.size(); }
  void read(std::uint64_t offset, void* dst, std::size_t n) const override {
    f_.read(offset, {static_cast<std::uint8_t*>(dst), n});
  }

 private:
  const input_file& f_;
};

// The safetensors dtype a ggml type is read as; block types are bytes.
std::optional<dtype> dtype_of_ggml(std::uint32_t t) {
  switch (t) {
    case 0: return dtype::F32;
    case 1: return dtype::F16;
    case 30: return dtype::BF16;
    case 24: return dtype::I8;
    case 25: return dtype::I16;
    case 26: return dtype::I32;
    case 27: return dtype::I64;
    case 28: return dtype::F64;
    default: return std::nullopt;
  }
}

class gguf_source final : public source {
 public:
  gguf_source(const std::string& path, std::unique_ptr<input_file> f) : source(path), file_(std::move(f)) {
    header_ = gguf::parse(input_file_bytes(*file_));
    for (const gguf::tensor_info& g : header_.tensors) {
      tensor_info t;
      t.name = g.name;
      t.shape = g.shape();
      t.offset = header_.data_offset + g.offset;
      t.size = g.nbytes();
      if (const auto d = dtype_of_ggml(g.type)) {
        t.type = *d;
      } else {  // a block type: U8 rows of its bytes
        const auto info = gguf::find_type(g.type);
        t.type = dtype::U8;
        t.shape.back() = g.ne[0] / info->block * info->type_size;
      }
      tensors_.push_back(std::move(t));
    }
    for (const gguf::kv& p : header_.kvs)
      metadata_.emplace_back(p.key, p.value.type == gguf::value_type::string ? std::string(p.value.as_string()) : gguf::describe(p.value));
    files_ = {file_->id()};
    index();
    for (const gguf::tensor_info& g : header_.tensors)
      if (g.name == "output.weight") has_output_ = true;
  }

  void read(const tensor_info& t, std::uint64_t offset, std::span<std::uint8_t> out) const override {
    file_->read(t.offset + offset, out);
  }

  bool default_selected(const tensor_info& t) const override {
    const gguf::tensor_info& g = ggml(t);
    return llama_quantize_selects(g.name, g.ne.size(), is_output(g.name), false);
  }

  bool is_output(const std::string& name) const {
    return name == "output.weight" || (!has_output_ && name == "token_embd.weight");
  }
  const gguf::file& header() const noexcept { return header_; }
  const gguf::tensor_info& ggml(const tensor_info& t) const {
    return header_.tensors[static_cast<std::size_t>(&t - tensors().data())];
  }

 private:
  std::unique_ptr<input_file> file_;
  gguf::file header_;
  bool has_output_ = false;
};

const gguf_source& as_gguf(const source& s) {
  const auto* g = dynamic_cast<const gguf_source*>(&s);
  if (!g) throw error(s.path() + " is not a GGUF file");
  return *g;
}

// ------------------------------------------------------------------ ggml codec

constexpr std::array<format_info, 4> ggml_formats{{
    {"q4_0", family::sint, 4, 32, blockq::scale_rule::signed_max, "ggml block_q4_0: 4-bit codes, fp16 scale"},
    {"q4_1", family::uint, 4, 32, blockq::scale_rule::minmax, "ggml block_q4_1: 4-bit codes, fp16 scale and minimum"},
    {"q8_0", family::sint, 8, 32, blockq::scale_rule::absmax, "ggml block_q8_0: 8-bit codes, fp16 scale"},
    {"mxfp4", family::mx, 4, 32, blockq::scale_rule::ocp, "ggml block_mxfp4: E2M1 codes, E8M0 scale"},
}};

// Per-tensor state of a weighted search: the column weights of each matrix
// (expert) of the tensor, or (MX path) its block Hessians.
struct ggml_state {
  std::vector<std::span<const float>> w;
  std::vector<blockq::block_hessians> h;
  std::size_t rows_per_matrix = 0;
};

// Three ways to write ggml blocks: ggml's own rule (exact: llama-quantize's
// bytes); the library's ggml searches (mse, lsq, hessian; ggml_search.hpp),
// which score the scale as stored and start from ggml's block; and for
// mxfp4 with --ties or rule ceil/floor, the MX quantizer in ggml's layout.
class ggml_codec final : public codec {
 public:
  ggml_codec(const quant_config& cfg, const ggml_target& t)
      : codec(cfg), target_(t), exact_(t.type), mx_path_(t.type == blockq::ggml_type::mxfp4 && cfg.lay != layout::ggml) {
    if (t.exact) return;
    if (mx_path_) {
      mx_.emplace(blockq::mx_options{32, cfg.rule == blockq::scale_rule::hessian ? blockq::scale_rule::mse : cfg.rule, cfg.ties});
      mx_h_.emplace(blockq::mx_options{32, blockq::scale_rule::hessian, cfg.ties});
    } else {
      // Rule hessian on a tensor without weights (not in the importance matrix) falls back to mse.
      search_.emplace(t.type, blockq::ggml_options{cfg.rule});
      unweighted_.emplace(t.type, blockq::ggml_options{cfg.rule == blockq::scale_rule::hessian ? blockq::scale_rule::mse : cfg.rule});
    }
  }

  blockq::ggml_type type() const noexcept { return target_.type; }

  std::vector<tensor_spec> outputs(const std::string& name, const shape_t& shape) const override {
    shape_t s = shape;
    s.back() = s.back() / 32 * blockq::ggml_block_bytes(target_.type);
    return {{name, dtype::U8, s}};
  }

  tensor_state prepare(std::span<const float> x, std::size_t k, const hessian_input* h) const override {
    tensor_state st;
    if (target_.exact || !h || h->importance.empty()) return st;
    auto s = std::make_shared<ggml_state>();
    const std::size_t rows = x.size() / k, n_mat = h->importance.size() / k;
    if (n_mat == 0 || rows % n_mat != 0)
      throw error("an importance matrix of " + std::to_string(n_mat) + " matrices for " + std::to_string(rows) + " rows");
    for (std::size_t m = 0; m < n_mat; ++m) {
      const auto w = h->importance.subspan(m * k, k);
      if (mx_path_) {
        s->h.push_back(blockq::block_hessians::from_diagonal(w, 32));
      } else {
        s->w.push_back(w);
      }
    }
    s->rows_per_matrix = rows / n_mat;
    st.extra = std::move(s);
    return st;
  }

  void quantize_rows(std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1, const tensor_state& st,
                     std::span<const std::span<std::uint8_t>> parts) const override {
    const std::size_t rb = k / 32 * blockq::ggml_block_bytes(target_.type);
    const auto rows = [&](std::size_t a, std::size_t b) { return x.subspan(a * k, (b - a) * k); };
    const auto out = [&](std::size_t a, std::size_t b) { return parts[0].subspan(a * rb, (b - a) * rb); };
    const auto* s = static_cast<const ggml_state*>(st.extra.get());
    if (target_.exact) {
      exact_.quantize(rows(r0, r1), out(r0, r1));
    } else if (!s) {
      if (mx_path_) {
        mx_->quantize_ggml(rows(r0, r1), out(r0, r1));
      } else {
        unweighted_->quantize(rows(r0, r1), out(r0, r1));
      }
    } else {
      // Row ranges within one matrix: each has its own weights.
      for (std::size_t r = r0; r < r1;) {
        const std::size_t m = r / s->rows_per_matrix, end = std::min(r1, (m + 1) * s->rows_per_matrix);
        if (mx_path_) {
          const std::size_t n = (end - r) * k;
          std::vector<std::uint8_t> codes(n), scales(n / 32);
          mx_h_->quantize(rows(r, end), s->h[m], codes, scales);
          blockq::pack_ggml_mxfp4(codes, scales, out(r, end));
        } else {
          search_->quantize_weighted(rows(r, end), s->w[m], out(r, end));
        }
        r = end;
      }
    }
  }

  void dequantize_rows(std::span<const std::span<const std::uint8_t>> parts, std::size_t k, std::size_t r0, std::size_t r1,
                       std::span<float> out) const override {
    const std::size_t rb = k / 32 * blockq::ggml_block_bytes(target_.type);
    exact_.dequantize(parts[0].subspan(r0 * rb, (r1 - r0) * rb), out.subspan(r0 * k, (r1 - r0) * k));
  }

  double bits_per_element(std::size_t) const override { return 8.0 * blockq::ggml_block_bytes(target_.type) / 32.0; }

 private:
  ggml_target target_;
  blockq::ggml_quantizer<> exact_;
  bool mx_path_;
  std::optional<blockq::ggml_quantizer<>> search_, unweighted_;     // the library's ggml searches
  std::optional<blockq::mx_quantizer<blockq::e2m1>> mx_, mx_h_;     // mxfp4 with --ties, ceil or floor
};

// ------------------------------------------------------------------ GGUF sink

class gguf_sink final : public sink {
 public:
  gguf_sink(const std::string& path, const source& in, const gguf_sink_options& opt)
      : path_(path), in_(as_gguf(in)), opt_(opt), inputs_(in.files().begin(), in.files().end()) {}

  std::optional<bool> default_selected(const tensor_info& t) const override {
    const gguf::tensor_info& g = in_.ggml(t);
    return llama_quantize_selects(g.name, g.ne.size(), in_.is_output(g.name), opt_.quantize_output);
  }

  std::vector<tensor_spec> outputs(const tensor_info& t, const codec* c) const override {
    if (c) return c->outputs(t.name, t.shape);
    return {{t.name, t.type, t.shape}};
  }

  void begin(std::span<const planned_output> plan, std::span<const planned_tensor> tensors, const metadata_t&,
             const quant_config* cfg) override {
    out_ = in_.header();
    out_.tensors.clear();
    std::optional<blockq::ggml_type> type;
    for (const planned_tensor& t : tensors) {
      if (t.count != 1) throw error("internal: a GGUF tensor must map to one output");
      gguf::tensor_info g = in_.ggml(*t.in);
      if (t.quantized_with) {
        type = ggml_type_of(*t.quantized_with);
        if (!type) throw error("internal: a GGUF output needs a ggml codec");
        g.type = static_cast<std::uint32_t>(*type);
      }
      out_.tensors.push_back(std::move(g));
    }
    if (cfg && type) {
      out_.set("general.file_type", gguf::value::of_u32(llama_ftype_of(*type)));
      out_.set("general.quantization_version", gguf::value::of_u32(2));  // GGML_QNT_VERSION
    }
    if (cfg) {
      out_.erase("blockq.imatrix");
      out_.set("blockq.version", gguf::value::of_string(BLOCKQ_VERSION_STRING));
      out_.set("blockq.format", gguf::value::of_string(cfg->format->name));
      out_.set("blockq.rule", gguf::value::of_string(blockq::to_string(cfg->rule)));
      out_.set("blockq.ties", gguf::value::of_string(cfg->lay == layout::ggml ? "ggml" : std::string(blockq::to_string(cfg->ties))));
      if (!opt_.imatrix_path.empty()) out_.set("blockq.imatrix", gguf::value::of_string(opt_.imatrix_path));
    }
    (void)plan;
    const std::string header = gguf::header_bytes(out_);
    file_ = std::make_unique<output_file>(path_, inputs_);
    file_->write(header.data(), header.size());
    total_ = header.size();
  }

  void write(std::size_t index, std::span<const std::uint8_t> bytes) override {
    if (index < cur_) throw error("internal: output tensors written out of order");
    while (cur_ < index) finish_tensor();
    file_->write(bytes);
    written_ += bytes.size();
    total_ += bytes.size();
  }

  std::uint64_t commit() override {
    while (cur_ < out_.tensors.size()) finish_tensor();
    file_->commit();
    return total_;
  }

 private:
  // Checks the current tensor is complete and pads it to the alignment.
  void finish_tensor() {
    const gguf::tensor_info& t = out_.tensors[cur_];
    if (written_ != t.nbytes())
      throw error("internal: tensor " + in_quotes(t.name) + " got " + std::to_string(written_) + " of " + std::to_string(t.nbytes()) + " bytes");
    static const std::array<std::uint8_t, gguf::max_alignment> zeros{};
    const std::uint64_t pad = gguf::padded(written_, out_.alignment) - written_;
    file_->write(zeros.data(), static_cast<std::size_t>(pad));
    total_ += pad;
    written_ = 0;
    ++cur_;
  }

  std::string path_;
  const gguf_source& in_;
  gguf_sink_options opt_;
  std::vector<file_id> inputs_;
  gguf::file out_;
  std::unique_ptr<output_file> file_;
  std::size_t cur_ = 0;
  std::uint64_t written_ = 0, total_ = 0;
};

}  // namespace

bool is_gguf(const input_file& f) {
  std::array<std::uint8_t, 4> m{};
  if (f.size() < 4) return false;
  f.read(0, m);
  return gguf::has_magic(m);
}

std::unique_ptr<source> open_gguf_source(const std::string& path, std::unique_ptr<input_file> f) {
  return std::make_unique<gguf_source>(path, std::move(f));
}

const gguf::file* gguf_header_of(const source& s) {
  const auto* g = dynamic_cast<const gguf_source*>(&s);
  return g ? &g->header() : nullptr;
}

const gguf::tensor_info& gguf_tensor_of(const source& s, const tensor_info& t) { return as_gguf(s).ggml(t); }

bool llama_quantize_selects(const std::string& name, std::size_t n_dims, bool output_tensor, bool quantize_output) {
  auto has = [&](std::string_view part) { return name.find(part) != std::string::npos; };
  if (!name.ends_with("weight") || n_dims < 2) return false;
  if (has("_norm.weight") || has("ffn_gate_inp.weight") || name == "position_embd.weight" || name == "token_types.weight" ||
      has("ssm_conv1d.weight") || has("shortconv.conv.weight") || has("time_mix_first.weight") || has("time_mix_w1.weight") ||
      has("time_mix_w2.weight") || has("time_mix_decay_w1.weight") || has("time_mix_decay_w2.weight") ||
      has("time_mix_lerp_fused.weight") || has("attn_rel_b.weight"))
    return false;
  return quantize_output || !output_tensor;
}

const format_info* find_ggml_format(std::string_view name) noexcept {
  for (const format_info& f : ggml_formats)
    if (f.name == name) return &f;
  return nullptr;
}

std::uint32_t llama_ftype_of(blockq::ggml_type t) noexcept {
  switch (t) {
    case blockq::ggml_type::q4_0: return 2;
    case blockq::ggml_type::q4_1: return 3;
    case blockq::ggml_type::q8_0: return 7;
    case blockq::ggml_type::mxfp4: return 38;
  }
  return 0;
}

std::pair<quant_config, bool> make_ggml_config(std::string_view format, std::string_view rule, std::size_t block,
                                               std::string_view ties, bool ties_given) {
  const format_info* f = find_ggml_format(format);
  if (!f) throw error("unknown format '" + std::string(format) + "' for a .gguf output (mxfp4, q4_0, q4_1, q8_0)");
  if (block != 0 && block != 32) throw error("ggml blocks hold 32 elements, got --block " + std::to_string(block));
  quant_config cfg;
  if (f->name == "mxfp4") {
    cfg = make_config("mxfp4", rule, 32, ties, "ggml");
  } else {
    cfg.rule = f->default_rule;
    if (!rule.empty()) {
      const auto r = blockq::parse_scale_rule(rule);
      if (!r) throw error("unknown --rule '" + std::string(rule) + "'");
      cfg.rule = *r;
    }
    const auto t = blockq::parse_tie_mode(ties);
    if (!t) throw error("unknown --ties '" + std::string(ties) + "'");
    cfg.ties = *t;
  }
  cfg.format = f;
  cfg.block = 32;
  cfg.lay = layout::ggml;
  const bool exact = cfg.rule == f->default_rule && !ties_given;
  const bool search = cfg.rule == blockq::scale_rule::mse || cfg.rule == blockq::scale_rule::lsq || cfg.rule == blockq::scale_rule::hessian;
  if (f->name != "mxfp4" && !exact && (ties_given || !search))
    throw error(std::string(f->name) + " takes ggml's own rule (" + std::string(blockq::to_string(f->default_rule)) +
                ") or the searches mse, lsq, hessian, with ggml's rounding (no --ties)");
  if (f->name == "mxfp4" && cfg.rule == blockq::scale_rule::lsq) throw error("mxfp4 takes the rules ocp, ceil, floor, mse, hessian");
  // blockq.ties records the rounding: ggml's own, or (mxfp4 through the MX quantizer) the one given.
  if (f->name == "mxfp4" && (ties_given || !(exact || search))) cfg.lay = layout::ocp;
  return {cfg, exact};
}

blockq::ggml_type find_ggml_type(const quant_config& cfg) {
  const auto t = blockq::parse_ggml_type(cfg.format->name);
  if (!t) throw error("internal: not a ggml format");
  return *t;
}

std::unique_ptr<codec> make_ggml_codec(const quant_config& cfg, const ggml_target& target) {
  return std::make_unique<ggml_codec>(cfg, target);
}

std::optional<blockq::ggml_type> ggml_type_of(const codec& c) {
  const auto* g = dynamic_cast<const ggml_codec*>(&c);
  if (!g) return std::nullopt;
  return g->type();
}

std::unique_ptr<sink> make_gguf_sink(const std::string& path, const source& in, const gguf_sink_options& opt) {
  return std::make_unique<gguf_sink>(path, in, opt);
}

void dequantize_gguf(const source& in, const std::string& output, unsigned threads) {
  const gguf_source& src = as_gguf(in);
  gguf::file out = src.header();
  std::vector<std::optional<blockq::ggml_type>> types;
  for (gguf::tensor_info& t : out.tensors) {
    types.push_back(blockq::ggml_type_from_id(t.type));
    if (types.back()) t.type = gguf::type_f32;
  }
  out.set("general.file_type", gguf::value::of_u32(0));  // LLAMA_FTYPE_ALL_F32
  out.erase("general.quantization_version");
  // blockq's keys describe a quantization the file no longer has (and would stop a new one).
  std::erase_if(out.kvs, [](const gguf::kv& p) { return p.key.starts_with("blockq."); });
  const std::string header = gguf::header_bytes(out);
  output_file f(output, in.files());
  f.write(header.data(), header.size());
  static const std::array<std::uint8_t, gguf::max_alignment> zeros{};
  std::size_t restored = 0;
  for (std::size_t i = 0; i < out.tensors.size(); ++i) {
    const tensor_info& t = in.tensors()[i];
    const std::vector<std::uint8_t> raw = in.read_all(t);
    std::uint64_t n = raw.size();
    if (types[i]) {
      const blockq::ggml_quantizer<> q(*types[i]);
      const std::size_t k = static_cast<std::size_t>(out.tensors[i].ne[0]), rows = static_cast<std::size_t>(out.tensors[i].numel() / std::max<std::uint64_t>(1, k));
      const std::size_t rb = q.row_bytes(k), step = std::max<std::size_t>(1, (std::size_t{1} << 16) / std::max<std::size_t>(1, k));
      std::vector<float> x(rows * k);
      parallel_for((rows + step - 1) / step, threads, [&](std::size_t c) {
        const std::size_t r0 = c * step, r1 = std::min(rows, r0 + step);
        q.dequantize(std::span<const std::uint8_t>(raw).subspan(r0 * rb, (r1 - r0) * rb), std::span<float>(x).subspan(r0 * k, (r1 - r0) * k));
      });
      f.write(x.data(), x.size() * sizeof(float));
      n = x.size() * sizeof(float);
      ++restored;
    } else {
      f.write(raw);
    }
    f.write(zeros.data(), static_cast<std::size_t>(gguf::padded(n, out.alignment) - n));
  }
  f.commit();
  std::fprintf(stderr, "blockq: %s: %zu tensor%s restored as F32, %zu copied\n", output.c_str(), restored, restored == 1 ? "" : "s",
               out.tensors.size() - restored);
}

}  // namespace blockq_tool
