// SPDX-License-Identifier: Apache-2.0
#include "export.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>

#include "blockq/formats/half.hpp"
#include "blockq/uniform.hpp"
#include "blockq/version.hpp"
#include "parallel.hpp"

namespace blockq_tool {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string q(std::string_view s) { return "'" + std::string(s) + "'"; }

bool ends_with(std::string_view s, std::string_view t) { return s.size() >= t.size() && s.substr(s.size() - t.size()) == t; }

// The last dotted component of a module name.
std::string_view leaf(std::string_view module) {
  const auto dot = module.rfind('.');
  return dot == std::string_view::npos ? module : module.substr(dot + 1);
}

constexpr float e2m1_max = 6.0f, e4m3_max = 448.0f;

// A float rounded to the nearest value of t (F16, BF16; F32 unchanged); a
// positive value that would round to zero becomes the smallest positive one,
// so that a scale never vanishes.
float round_to(dtype t, float v) {
  float r = v;
  if (t == dtype::BF16) r = blockq::bfloat16::from_float(v).to_float();
  if (t == dtype::F16) r = blockq::float16::from_float(v).to_float();
  if (r == 0.0f && v > 0.0f) r = t == dtype::BF16 ? blockq::bfloat16::from_bits(1).to_float() : blockq::float16::from_bits(1).to_float();
  return r;
}

// The other value of t next to v (the one round_to does not give); v itself
// when t holds v exactly or is F32.
float other_neighbour(dtype t, float v) {
  if (t != dtype::BF16 && t != dtype::F16) return v;
  const std::uint16_t b = t == dtype::BF16 ? blockq::bfloat16::from_float(v).bits : blockq::float16::from_float(v).bits;
  const float r = round_to(t, v);
  if (r == v || !std::isfinite(r) || (b & 0x7FFF) == 0) return r;
  // Sign and magnitude: one step of the bits moves the magnitude.
  const std::uint16_t o = static_cast<std::uint16_t>(std::fabs(r) > std::fabs(v) ? b - 1 : b + 1);
  return t == dtype::BF16 ? blockq::bfloat16::from_bits(o).to_float() : blockq::float16::from_bits(o).to_float();
}

void put_scale(dtype t, float v, std::uint8_t* dst) {
  if (t == dtype::F32) {
    std::memcpy(dst, &v, 4);
    return;
  }
  const std::uint16_t b = t == dtype::BF16 ? blockq::bfloat16::from_float(v).bits : blockq::float16::from_float(v).bits;
  std::memcpy(dst, &b, 2);
}

// ------------------------------------------------------------------ compressed-tensors integers

// Uniform integer codes computed with the scale as stored (rounded to the
// scale's dtype before the codes) and, for asymmetric codes, an integer zero
// point m (the min becomes -m * scale). Parts: codes U8 [rows, K] (signed codes
// as b-bit two's complement), scales F32 [rows, K/g] (values of the stored
// dtype), zero points U8 [rows, K/g] (asymmetric).
class ct_int_codec final : public codec {
 public:
  ct_int_codec(const quant_config& cfg, dtype scale_type)
      : codec(cfg), sym_(cfg.format->fam == family::sint), st_(scale_type),
        q_(blockq::uniform_options{cfg.format->bits, sym_, cfg.block, cfg.rule}) {}

  std::vector<tensor_spec> outputs(const std::string& name, const shape_t& shape) const override {
    shape_t codes = shape, per_block(shape.begin(), shape.end() - 1);
    per_block.push_back(shape.back() / cfg_.block);
    std::vector<tensor_spec> out{{name + "_codes", dtype::U8, codes}, {name + "_scales", dtype::F32, per_block}};
    if (!sym_) out.push_back({name + "_zero", dtype::U8, per_block});
    return out;
  }

  void quantize_rows(std::span<const float> x, std::size_t k, std::size_t r0, std::size_t r1, const tensor_state&,
                     std::span<const std::span<std::uint8_t>> parts) const override {
    const std::size_t g = cfg_.block, nb = k / g;
    const bool search = cfg_.rule == blockq::scale_rule::lsq || cfg_.rule == blockq::scale_rule::mse;
    std::vector<std::uint8_t> codes(g);
    std::vector<float> back(g);
    for (std::size_t r = r0; r < r1; ++r)
      for (std::size_t b = 0; b < nb; ++b) {
        const std::size_t at = r * k + b * g, bi = r * nb + b;
        const auto blk = x.subspan(at, g);
        const blockq::uniform_params p = q_.block_params(blk);
        // The nearest stored scale; the search rules also score the stored
        // value on the other side of their scale and keep the better one.
        const float near = round_to(st_, p.scale), other = other_neighbour(st_, p.scale);
        const int candidates = search && other != near && std::isfinite(p.scale) ? 2 : 1;
        double best = std::numeric_limits<double>::infinity();
        for (int c = 0; c < candidates; ++c) {
          blockq::uniform_params pc = p;
          pc.scale = c == 0 ? near : other;
          float m = 0.0f;
          if (!sym_) {
            if (pc.scale > 0.0f && std::isfinite(pc.scale)) m = std::clamp(std::nearbyint(-p.min / pc.scale), 0.0f, float(levels()));
            pc.min = -m * pc.scale;
          }
          q_.encode_block(blk, pc, codes.data());
          double sse = 0.0;
          if (candidates > 1) {
            const float mins[1] = {pc.min};
            q_.dequantize(codes, std::span<const float>(&pc.scale, 1), std::span<const float>(mins, sym_ ? 0 : 1), back);
            for (std::size_t i = 0; i < g; ++i) sse += double(blk[i] - back[i]) * double(blk[i] - back[i]);
          }
          if (c > 0 && !(sse < best)) continue;
          best = sse;
          std::memcpy(parts[0].data() + at, codes.data(), g);
          std::memcpy(parts[1].data() + bi * 4, &pc.scale, 4);
          if (!sym_) parts[2][bi] = static_cast<std::uint8_t>(m);
        }
      }
  }

  void dequantize_rows(std::span<const std::span<const std::uint8_t>> parts, std::size_t k, std::size_t r0,
                       std::size_t r1, std::span<float> out) const override {
    const std::size_t nb = k / cfg_.block, n = (r1 - r0) * k;
    std::vector<float> scales((r1 - r0) * nb), mins(sym_ ? 0 : scales.size());
    std::memcpy(scales.data(), parts[1].data() + r0 * nb * 4, scales.size() * 4);
    for (std::size_t i = 0; i < mins.size(); ++i) mins[i] = -float(parts[2][r0 * nb + i]) * scales[i];
    q_.dequantize(parts[0].subspan(r0 * k, n), scales, mins, out.subspan(r0 * k, n));
  }

  double bits_per_element(std::size_t) const override {
    const double b = cfg_.format->bits, g = static_cast<double>(cfg_.block);
    return b + 8.0 * static_cast<double>(dtype_size(st_)) / g + (sym_ ? 0.0 : b / g);
  }

 private:
  int levels() const noexcept { return (1 << cfg_.format->bits) - 1; }

  bool sym_;
  dtype st_;
  blockq::uniform_quantizer<> q_;
};

// Codes (one a byte) of a [rows, cols] matrix packed into little-endian
// int32 words of 32/b values v + 2^(b-1) (signed) or v (unsigned), lowest
// index in the lowest bits: along a row (along_rows false) or down a column.
std::vector<std::uint8_t> pack_int32(std::span<const std::uint8_t> codes, std::size_t rows, std::size_t cols, int bits,
                                     bool signed_codes, bool along_rows) {
  const std::size_t per = 32 / static_cast<std::size_t>(bits);
  const std::uint32_t mask = (1u << bits) - 1, flip = signed_codes ? 1u << (bits - 1) : 0u;
  const std::size_t out_rows = along_rows ? (rows + per - 1) / per : rows, out_cols = along_rows ? cols : (cols + per - 1) / per;
  std::vector<std::uint32_t> words(out_rows * out_cols, 0);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const std::uint32_t v = ((codes[r * cols + c] & mask) ^ flip) & mask;
      const std::size_t wr = along_rows ? r / per : r, wc = along_rows ? c : c / per, slot = along_rows ? r % per : c % per;
      words[wr * out_cols + wc] |= v << (bits * slot);
    }
  std::vector<std::uint8_t> b(words.size() * 4);
  for (std::size_t i = 0; i < words.size(); ++i)
    for (int j = 0; j < 4; ++j) b[i * 4 + j] = static_cast<std::uint8_t>(words[i] >> (8 * j));
  return b;
}

std::vector<std::uint8_t> f32_bytes(float v) {
  std::vector<std::uint8_t> b(4);
  std::memcpy(b.data(), &v, 4);
  return b;
}

// ------------------------------------------------------------------ finishing a folder

// Where finish() puts each file: a path to open with output_file.
using place_fn = std::function<std::string(const std::string&)>;

void copy_file(const fs::path& from, const std::string& to, std::span<const file_id> inputs) {
  const input_file in(from.string());
  output_file out(to, inputs);
  std::vector<std::uint8_t> buf;
  constexpr std::uint64_t step = std::uint64_t{16} << 20;
  for (std::uint64_t at = 0; at < in.size(); at += step) {
    buf.resize(static_cast<std::size_t>(std::min(step, in.size() - at)));
    in.read(at, buf);
    out.write(buf);
  }
  out.commit();
}

void write_text(const std::string& path, const std::string& text, std::span<const file_id> inputs) {
  output_file out(path, inputs);
  out.write(text.data(), text.size());
  out.commit();
}

// The index, config.json, hf_quant_config.json and the copied files.
void finish(const folder_source& in, const json& weight_map, std::uint64_t total_size, const json& qconfig,
            const json& hfq, const place_fn& place) {
  if (in.indexed()) {
    json idx = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
    write_text(place(index_file_name), idx.dump(2) + "\n", in.files());
  }
  json config = in.config();
  config["quantization_config"] = qconfig;
  write_text(place("config.json"), config.dump(2) + "\n", in.files());
  if (!hfq.is_null()) write_text(place("hf_quant_config.json"), hfq.dump(2) + "\n", in.files());
  for (const std::string& f : in.other_files()) {
    if (f == "hf_quant_config.json" && !hfq.is_null()) continue;
    copy_file(fs::path(in.dir()) / f, place(f), in.files());
  }
}

constexpr const char* records_dir = ".blockq-shards";

// ------------------------------------------------------------------ the sink

class folder_sink final : public sink {
 public:
  folder_sink(const std::string& out_dir, const folder_source& in, export_settings s, bool partial)
      : out_dir_(out_dir), in_(in), s_(std::move(s)), partial_(partial) {
    if (out_dir_.empty()) throw error("no output folder (-o OUT_DIR)");
    std::error_code ec;
    if (partial_ && fs::exists(out_dir_, ec) && fs::equivalent(out_dir_, in.dir(), ec))
      throw error("the output folder is the model folder; write elsewhere");
  }

  std::optional<bool> default_selected(const tensor_info& t) const override { return is_linear_weight(t.name, t.shape); }

  std::optional<float> shared_amax(const tensor_info& t) const override {
    const auto it = s_.shared_amax.find(t.name);
    if (it == s_.shared_amax.end()) return std::nullopt;
    return it->second;
  }

  std::vector<tensor_spec> outputs(const tensor_info& t, const codec* c) const override {
    if (!c) return {{t.name, t.type, t.shape}};
    const std::string m = module_of(t.name);
    const std::uint64_t n = t.shape[0], k = t.shape[1];
    const family fam = s_.cfg.format->fam;
    if (s_.kind == export_kind::modelopt)
      return {{m + ".weight", dtype::U8, {n, k / 2}},
              {m + ".weight_scale", dtype::F8_E4M3, {n, k / 16}},
              {m + ".weight_scale_2", dtype::F32, {}},
              {m + ".input_scale", dtype::F32, {}}};
    if (fam == family::nvfp4)
      return {{m + ".weight_packed", dtype::U8, {n, k / 2}},
              {m + ".weight_scale", dtype::F8_E4M3, {n, k / 16}},
              {m + ".weight_global_scale", dtype::F32, {1}}};
    if (fam == family::mx)
      return {{m + ".weight_packed", dtype::U8, {n, k / 2}}, {m + ".weight_scale", dtype::U8, {n, k / s_.cfg.block}}};
    const std::uint64_t bits = static_cast<std::uint64_t>(s_.cfg.format->bits), per = 32 / bits;
    std::vector<tensor_spec> out{{m + ".weight_packed", dtype::I32, {n, k / per}},
                                 {m + ".weight_scale", s_.scale_type, {n, k / s_.cfg.block}},
                                 {m + ".weight_shape", dtype::I64, {2}}};
    if (fam == family::uint) out.push_back({m + ".weight_zero_point", dtype::I32, {(n + per - 1) / per, k / s_.cfg.block}});
    return out;
  }

  void begin(std::span<const planned_output> plan, std::span<const planned_tensor>, const metadata_t&,
             const quant_config*) override {
    plan_.assign(plan.begin(), plan.end());
    shard_of_.clear();
    for (const planned_output& p : plan_) {
      const std::size_t s = p.from->part;
      if (!shard_of_.empty() && s < shard_of_.back()) throw error("internal: outputs not in shard order");
      shard_of_.push_back(s);
    }
    for (const tensor_info& t : in_.tensors()) wanted_.insert(t.part);
    if (partial_) {
      std::error_code ec;
      fs::create_directories(out_dir_, ec);
      if (ec) throw error("cannot create the folder '" + out_dir_ + "': " + ec.message());
    } else {
      folder_ = std::make_unique<output_folder>(out_dir_, in_.files());
    }
  }

  void write(std::size_t index, std::span<const std::uint8_t> bytes) override {
    open_through(shard_of_.at(index));
    cur_->write(bytes);
  }

  void write_quantized(const planned_tensor& t, std::span<const std::vector<std::uint8_t>> parts) override {
    const std::uint64_t n = t.in->shape[0], k = t.in->shape[1];
    const family fam = s_.cfg.format->fam;
    if (s_.kind == export_kind::modelopt) {
      write(t.first, parts[0]);
      write(t.first + 1, parts[1]);
      write(t.first + 2, parts[2]);
      const auto it = s_.input_amax.find(t.in->name);
      if (it == s_.input_amax.end()) throw error("no activation amax for " + q(t.in->name));
      write(t.first + 3, f32_bytes(it->second / (e2m1_max * e4m3_max)));
      return;
    }
    if (fam == family::nvfp4) {
      float ts = 0.0f;
      std::memcpy(&ts, parts[2].data(), 4);
      write(t.first, parts[0]);
      write(t.first + 1, parts[1]);
      write(t.first + 2, f32_bytes(1.0f / ts));
      return;
    }
    if (fam == family::mx) {
      write(t.first, parts[0]);
      write(t.first + 1, parts[1]);
      return;
    }
    const int bits = s_.cfg.format->bits;
    const bool sym = fam == family::sint;
    const std::size_t nb = static_cast<std::size_t>(k / s_.cfg.block);
    write(t.first, pack_int32(parts[0], n, k, bits, sym, false));
    std::vector<std::uint8_t> sc(n * nb * dtype_size(s_.scale_type));
    for (std::size_t i = 0; i < n * nb; ++i) {
      float v = 0.0f;
      std::memcpy(&v, parts[1].data() + 4 * i, 4);
      put_scale(s_.scale_type, v, sc.data() + i * dtype_size(s_.scale_type));
    }
    write(t.first + 1, sc);
    std::vector<std::uint8_t> shape(16);
    const std::int64_t dims[2] = {static_cast<std::int64_t>(n), static_cast<std::int64_t>(k)};
    std::memcpy(shape.data(), dims, 16);
    write(t.first + 2, shape);
    if (!sym) write(t.first + 3, pack_int32(parts[2], n, nb, bits, false, true));
  }

  std::uint64_t commit() override {
    if (!wanted_.empty()) open_through(*wanted_.rbegin());
    close_current();
    json weight_map = json::object();
    std::uint64_t total = 0;
    for (const planned_output& p : plan_) {
      weight_map[p.spec.name] = in_.shards()[p.from->part];
      total += p.spec.bytes();
    }
    const json qc = quantization_config(s_), hfq = hf_quant_config(s_);
    if (partial_) {
      // One record per shard written, read by blockq finalize.
      const fs::path rec = fs::path(out_dir_) / records_dir;
      std::error_code ec;
      fs::create_directories(rec, ec);
      if (ec) throw error("cannot create the folder '" + rec.string() + "': " + ec.message());
      for (std::size_t s : wanted_) {
        json tensors = json::object();
        for (std::size_t i = 0; i < plan_.size(); ++i)
          if (shard_of_[i] == s) tensors[plan_[i].spec.name] = plan_[i].spec.bytes();
        const json r = {{"model_dir", fs::canonical(in_.dir()).string()},
                        {"shards", in_.shards()},
                        {"shard", in_.shards()[s]},
                        {"tensors", tensors},
                        {"quantization_config", qc},
                        {"hf_quant_config", hfq}};
        write_text((rec / (in_.shards()[s] + ".json")).string(), r.dump(1) + "\n", in_.files());
      }
      return total;
    }
    finish(in_, weight_map, total, qc, hfq, [&](const std::string& name) { return folder_->file(name); });
    folder_->commit();
    return total;
  }

 private:
  void close_current() {
    if (cur_) cur_->commit();
    cur_.reset();
  }

  // Opens the output of shard s (writing its header), closing the one before;
  // a wanted shard skipped on the way (no outputs) still gets its file.
  void open_through(std::size_t s) {
    if (cur_ && cur_shard_ == s) return;
    close_current();
    for (; next_shard_ <= s; ++next_shard_) {
      if (!wanted_.count(next_shard_)) continue;
      open(next_shard_);
      if (next_shard_ != s) close_current();
    }
    if (!cur_) throw error("internal: outputs not in shard order");
  }

  void open(std::size_t shard) {
    const std::string& name = in_.shards()[shard];
    std::vector<tensor_spec> specs;
    for (std::size_t i = 0; i < plan_.size(); ++i)
      if (shard_of_[i] == shard) specs.push_back(plan_[i].spec);
    const std::string path = partial_ ? (fs::path(out_dir_) / name).string() : folder_->file(name);
    cur_ = std::make_unique<output_file>(path, in_.files());
    cur_shard_ = shard;
    const std::string header = safetensors_header(specs, {{"format", "pt"}});
    cur_->write(header.data(), header.size());
  }

  std::string out_dir_;
  const folder_source& in_;
  export_settings s_;
  bool partial_;
  std::vector<planned_output> plan_;
  std::vector<std::size_t> shard_of_;
  std::set<std::size_t> wanted_;
  std::unique_ptr<output_folder> folder_;
  std::unique_ptr<output_file> cur_;
  std::size_t cur_shard_ = 0, next_shard_ = 0;
};

}  // namespace

std::optional<export_kind> parse_export(std::string_view s) noexcept {
  if (s == "blockq") return export_kind::blockq;
  if (s == "compressed-tensors") return export_kind::compressed_tensors;
  if (s == "modelopt") return export_kind::modelopt;
  return std::nullopt;
}

std::string_view to_string(export_kind e) noexcept {
  switch (e) {
    case export_kind::blockq: return "blockq";
    case export_kind::compressed_tensors: return "compressed-tensors";
    case export_kind::modelopt: return "modelopt";
  }
  return "?";
}

std::string module_of(std::string_view weight_name) {
  return std::string(ends_with(weight_name, ".weight") ? weight_name.substr(0, weight_name.size() - 7) : weight_name);
}

namespace {

// What a 2-D "*.weight" belongs to, by its module's name.
enum class weight_kind : std::uint8_t { linear, lm_head, router, other };

weight_kind kind_of(std::string_view name, const shape_t& shape) {
  if (shape.size() != 2 || !ends_with(name, ".weight")) return weight_kind::other;
  const std::string m = module_of(name);
  const std::string_view l = leaf(m);
  if (l == "lm_head" || l == "output") return weight_kind::lm_head;  // output: Meta's own naming
  if (m.find("embed") != std::string::npos || l == "wte" || l == "wpe" || l == "tok_embeddings") return weight_kind::other;
  if (l.find("norm") != std::string::npos || l.rfind("ln_", 0) == 0 || l == "ln") return weight_kind::other;
  if (l == "gate" || l == "router" || l == "gating" || l == "shared_expert_gate") return weight_kind::router;
  return weight_kind::linear;
}

}  // namespace

bool is_linear_weight(std::string_view name, const shape_t& shape, bool include_lm_head) {
  const weight_kind k = kind_of(name, shape);
  return k == weight_kind::linear || (include_lm_head && k == weight_kind::lm_head);
}

bool is_ignored_linear(std::string_view name, const shape_t& shape) { return kind_of(name, shape) != weight_kind::other; }

std::string fused_group(std::string_view weight_name) {
  if (!ends_with(weight_name, ".weight")) return {};
  const std::string m = module_of(weight_name);
  const auto dot = m.rfind('.');
  const std::string parent = dot == std::string::npos ? "" : m.substr(0, dot + 1);
  const std::string_view l = leaf(m);
  static const std::set<std::string_view> qkv{"q_proj", "k_proj", "v_proj", "wq", "wk", "wv"};
  static const std::set<std::string_view> gate_up{"gate_proj", "up_proj", "w1", "w3"};
  if (qkv.count(l)) return parent + "qkv";
  if (gate_up.count(l)) return parent + "gate_up";
  return {};
}

void check_export_format(export_kind e, const quant_config& cfg) {
  const format_info& f = *cfg.format;
  const std::string name(f.name);
  if (e == export_kind::modelopt) {
    if (f.fam != family::nvfp4) throw error("--export modelopt stores nvfp4 only, not " + name);
    return;
  }
  if (e != export_kind::compressed_tensors) return;
  if (f.fam == family::nvfp4) return;
  if (name == "mxfp4") {
    if (cfg.block != 32) throw error("compressed-tensors mxfp4 uses blocks of 32, got --block " + std::to_string(cfg.block));
    if (cfg.lay != layout::ocp) throw error("compressed-tensors mxfp4 needs --layout ocp");
    return;
  }
  if ((f.fam == family::sint || f.fam == family::uint) && (f.bits == 4 || f.bits == 8)) {
    const std::size_t per = 32 / static_cast<std::size_t>(f.bits);
    if (cfg.block % per != 0)
      throw error("compressed-tensors packs " + std::to_string(per) + " codes a word: --block must be a multiple of " +
                  std::to_string(per) + ", got " + std::to_string(cfg.block));
    if (cfg.rule == blockq::scale_rule::hessian) throw error("--rule hessian does not apply to integer codes");
    return;
  }
  throw error("--export compressed-tensors stores int4, int8 (symmetric), uint4, uint8 (asymmetric), nvfp4 and mxfp4; not " + name);
}

std::unique_ptr<codec> make_export_codec(export_kind e, const quant_config& cfg, dtype scale_type) {
  if (e == export_kind::compressed_tensors && (cfg.format->fam == family::sint || cfg.format->fam == family::uint)) {
    try {
      return std::make_unique<ct_int_codec>(cfg, scale_type);
    } catch (const std::invalid_argument& x) {
      throw error(library_message(x));
    }
  }
  return make_codec(cfg);
}

json quantization_config(const export_settings& s) {
  const format_info& f = *s.cfg.format;
  const json ignore = s.ignore;
  if (s.kind == export_kind::modelopt) {
    // As ModelOpt's convert_hf_quant_config_format writes it into config.json.
    const json args = {{"dynamic", false}, {"num_bits", 4}, {"type", "float"}, {"group_size", 16}};
    return {{"config_groups", {{"group_0", {{"input_activations", args}, {"weights", args}, {"targets", {"Linear"}}}}}},
            {"ignore", ignore},
            {"quant_algo", "NVFP4"},
            {"producer", {{"name", "blockq"}, {"version", BLOCKQ_VERSION_STRING}}},
            {"quant_method", "modelopt"}};
  }
  std::string format, strategy = "group", type = "int";
  bool symmetric = true;
  if (f.fam == family::nvfp4) {
    format = "nvfp4-pack-quantized", strategy = "tensor_group", type = "float";
  } else if (f.fam == family::mx) {
    format = "mxfp4-pack-quantized", type = "float";
  } else {
    format = "pack-quantized", symmetric = f.fam == family::sint;
  }
  // QuantizationArgs forbids unknown keys; scale_dtype / zp_dtype are left
  // out (added in late 2025: older parsers would reject them, newer ones
  // default them from the format).
  const json weights = {{"actorder", nullptr},       {"block_structure", nullptr}, {"dynamic", false},
                        {"group_size", s.cfg.block}, {"num_bits", f.bits},         {"observer", "minmax"},
                        {"observer_kwargs", json::object()}, {"strategy", strategy}, {"symmetric", symmetric},
                        {"type", type}};
  return {{"config_groups",
           {{"group_0",
             {{"format", format},
              {"input_activations", nullptr},
              {"output_activations", nullptr},
              {"targets", {"Linear"}},
              {"weights", weights}}}}},
          {"format", format},
          {"global_compression_ratio", nullptr},
          {"ignore", ignore},
          {"kv_cache_scheme", nullptr},
          {"quant_method", "compressed-tensors"},
          {"quantization_status", "compressed"},
          {"sparsity_config", json::object()},
          {"transform_config", json::object()}};
}

json hf_quant_config(const export_settings& s) {
  if (s.kind != export_kind::modelopt) return nullptr;
  return {{"producer", {{"name", "blockq"}, {"version", BLOCKQ_VERSION_STRING}}},
          {"quantization",
           {{"quant_algo", "NVFP4"}, {"kv_cache_quant_algo", nullptr}, {"group_size", 16}, {"exclude_modules", s.ignore}}}};
}

std::unique_ptr<sink> make_folder_sink(const std::string& out_dir, const folder_source& in, export_settings s,
                                       bool partial) {
  return std::make_unique<folder_sink>(out_dir, in, std::move(s), partial);
}

void run_finalize(const std::string& out_dir) {
  const fs::path rec = fs::path(out_dir) / records_dir;
  std::error_code ec;
  if (!fs::is_directory(rec, ec))
    throw error(out_dir + " holds no shard records (" + records_dir + "); run blockq quantize --shards into it first");
  std::vector<json> records;
  for (const auto& e : fs::directory_iterator(rec, ec)) {
    if (e.path().extension() != ".json") continue;
    const input_file f(e.path().string());
    const auto b = f.read_all();
    try {
      records.push_back(json::parse(b.begin(), b.end()));
    } catch (const json::exception&) {
      throw error(e.path().string() + " is not valid JSON");
    }
  }
  if (records.empty()) throw error(rec.string() + " holds no shard record");
  const json& first = records.front();
  for (const json& r : records)
    for (const char* key : {"model_dir", "shards", "quantization_config", "hf_quant_config"})
      if (!r.contains(key) || r[key] != first[key])
        throw error(out_dir + ": the shard records disagree on " + key + " (shards quantized with different options?)");
  const folder_source in(first["model_dir"].get<std::string>());
  json weight_map = json::object();
  std::uint64_t total = 0;
  std::set<std::string> have;
  for (const json& r : records) {
    const std::string shard = r["shard"].get<std::string>();
    have.insert(shard);
    if (!fs::exists(fs::path(out_dir) / shard, ec)) throw error(out_dir + ": the shard " + shard + " is missing");
    for (const auto& [name, bytes] : r["tensors"].items()) {
      weight_map[name] = shard;
      total += bytes.get<std::uint64_t>();
    }
  }
  std::string missing;
  for (const std::string& s : in.shards())
    if (!have.count(s)) missing += (missing.empty() ? "" : ", ") + s;
  if (!missing.empty()) throw error(out_dir + ": not every shard is quantized yet; missing " + missing);
  finish(in, weight_map, total, first["quantization_config"], first["hf_quant_config"],
         [&](const std::string& name) {
           const fs::path p = fs::path(out_dir) / name;
           fs::create_directories(p.parent_path(), ec);
           return p.string();
         });
  fs::remove_all(rec, ec);
  std::fprintf(stderr, "blockq: %s: finalized %zu shards (%zu tensors)\n", out_dir.c_str(), have.size(), weight_map.size());
}

}  // namespace blockq_tool
