// SPDX-License-Identifier: Apache-2.0
// Model folders in, engine-ready folders out: a small Llama-style folder
// (two shards, index, tokenizer files, config.json, generation_config.json)
// is written here, the built tool exports it, and the output is read back
// with readers written from the engines' documented conventions (not from
// blockq's code): compressed-tensors (pack-quantized int32 words,
// nvfp4-pack-quantized, mxfp4-pack-quantized, config.json's
// quantization_config) and ModelOpt (weight / weight_scale / weight_scale_2 /
// input_scale, hf_quant_config.json). The dequantized weights are compared
// with blockq's own dequantize; malformed folders must fail with nothing written.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "blockq/blockq.hpp"
#include "files.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace tool_test;

// ------------------------------------------------------------------ independent decoders

float bf16_value(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t{b} << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// OCP FP8 E4M3 (bias 7, no infinities, S.1111.111 is NaN).
float e4m3_value(std::uint8_t b) {
  const int s = b >> 7, e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7) return NAN;
  const float v = e == 0 ? std::ldexp(m / 8.0f, -6) : std::ldexp(1.0f + m / 8.0f, e - 7);
  return s ? -v : v;
}

// E2M1 nibble: bit 3 the sign, bits 0-2 index {0, .5, 1, 1.5, 2, 3, 4, 6}.
float e2m1_value(unsigned nib) {
  static const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  return (nib & 8) ? -mag[nib & 7] : mag[nib & 7];
}

// ------------------------------------------------------------------ reading a safetensors file

struct st_tensor {
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::string bytes;
};

struct st_file {
  json metadata;
  std::map<std::string, st_tensor> tensors;
};

st_file read_st(const fs::path& p) {
  const std::string b = read_bytes(p);
  EXPECT_GE(b.size(), 8u) << p;
  std::uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  const json h = json::parse(b.substr(8, n));
  st_file f;
  for (const auto& [k, v] : h.items()) {
    if (k == "__metadata__") {
      f.metadata = v;
      continue;
    }
    const std::uint64_t a = v["data_offsets"][0], e = v["data_offsets"][1];
    f.tensors[k] = {v["dtype"], v["shape"].get<std::vector<std::uint64_t>>(), b.substr(8 + n + a, e - a)};
  }
  return f;
}

template <class T>
std::vector<T> values(const st_tensor& t) {
  std::vector<T> v(t.bytes.size() / sizeof(T));
  std::memcpy(v.data(), t.bytes.data(), v.size() * sizeof(T));
  return v;
}

json read_json(const fs::path& p) { return json::parse(read_bytes(p)); }

// ------------------------------------------------------------------ the model folder

struct weight {
  std::string name;
  std::uint64_t n, k;
  std::vector<float> x;  // the BF16 values as floats
  int shard;
};

// Two layers of a Llama (hidden 64, MLP 128, 4 heads, 2 KV heads), BF16,
// over two shards; layer 1's q_proj sits in shard 1 and its k/v in shard 2.
struct model {
  std::vector<weight> ws;
  std::map<std::string, std::string> other_files;

  const weight& w(const std::string& name) const {
    for (const auto& x : ws)
      if (x.name == name) return x;
    throw std::runtime_error("no weight " + name);
  }

  model() {
    std::mt19937_64 g(7);
    auto add = [&](const std::string& name, std::uint64_t n, std::uint64_t k, int shard, float sd) {
      std::normal_distribution<float> d(0.0f, sd);
      weight w{name, n, k, std::vector<float>(n * (k ? k : 1)), shard};
      for (auto& v : w.x) v = blockq::bfloat16::from_float(d(g)).to_float();
      ws.push_back(std::move(w));
    };
    add("model.embed_tokens.weight", 32, 64, 1, 1.0f);
    for (int l = 0; l < 2; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      const int s = l == 0 ? 1 : 2;
      add(p + "input_layernorm.weight", 64, 0, s, 1.0f);
      add(p + "self_attn.q_proj.weight", 64, 64, 1, 0.02f);
      add(p + "self_attn.k_proj.weight", 32, 64, s, 0.05f);  // larger amax than q: the shared scale is k's
      add(p + "self_attn.v_proj.weight", 32, 64, s, 0.01f);
      add(p + "self_attn.o_proj.weight", 64, 64, s, 0.02f);
      add(p + "post_attention_layernorm.weight", 64, 0, s, 1.0f);
      add(p + "mlp.gate_proj.weight", 128, 64, s, 0.03f);
      add(p + "mlp.up_proj.weight", 128, 64, s, 0.02f);
      add(p + "mlp.down_proj.weight", 64, 128, s, 0.02f);
    }
    add("model.norm.weight", 64, 0, 2, 1.0f);
    add("lm_head.weight", 32, 64, 2, 0.02f);
    other_files = {{"tokenizer.json", R"({"version":"1.0","model":{"type":"BPE"}})"},
                   {"tokenizer_config.json", R"({"bos_token":"<s>"})"},
                   {"special_tokens_map.json", R"({"bos_token":"<s>"})"},
                   {"generation_config.json", R"({"bos_token_id":1,"eos_token_id":2})"}};
  }

  static std::vector<std::uint64_t> shape_of(const weight& w) {
    return w.k ? std::vector<std::uint64_t>{w.n, w.k} : std::vector<std::uint64_t>{w.n};
  }
  static std::vector<std::uint8_t> bf16_bytes(const weight& w) {
    std::vector<std::uint8_t> b(w.x.size() * 2);
    for (std::size_t i = 0; i < w.x.size(); ++i) {
      const std::uint16_t u = blockq::bfloat16::from_float(w.x[i]).bits;
      std::memcpy(b.data() + 2 * i, &u, 2);
    }
    return b;
  }
  static std::string shard_name(int s) { return "model-0000" + std::to_string(s) + "-of-00002.safetensors"; }

  std::vector<raw_tensor> shard(int s) const {
    std::vector<raw_tensor> r;
    for (const auto& w : ws)
      if (w.shard == s) r.push_back({w.name, "BF16", shape_of(w), bf16_bytes(w)});
    return r;
  }

  json index() const {
    json wm = json::object();
    for (const auto& w : ws) wm[w.name] = shard_name(w.shard);
    return {{"metadata", {{"total_size", 0}}}, {"weight_map", wm}};
  }

  void write(const fs::path& dir) const {
    fs::create_directories(dir);
    write_safetensors(dir / shard_name(1), shard(1), R"({"format":"pt"})");
    write_safetensors(dir / shard_name(2), shard(2), R"({"format":"pt"})");
    write_bytes(dir / "model.safetensors.index.json", index().dump(2));
    write_bytes(dir / "config.json", R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"torch_dtype":"bfloat16"})");
    for (const auto& [n, t] : other_files) write_bytes(dir / n, t);
  }
};

const model& the_model() {
  static const model m;
  return m;
}

std::vector<std::string> quantized_modules() {
  std::vector<std::string> m;
  for (int l = 0; l < 2; ++l)
    for (const char* s : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                          "mlp.up_proj", "mlp.down_proj"})
      m.push_back("model.layers." + std::to_string(l) + "." + s);
  return m;
}

float amax_of(const std::vector<float>& x) {
  float a = 0.0f;
  for (float v : x) a = std::max(a, std::fabs(v));
  return a;
}

// All output tensors of a folder by name, checked against the index: every
// tensor named once, in the shard the index says.
std::map<std::string, st_tensor> read_folder(const fs::path& dir) {
  const json idx = read_json(dir / "model.safetensors.index.json");
  std::map<std::string, st_tensor> all;
  std::uint64_t total = 0;
  for (int s = 1; s <= 2; ++s) {
    const st_file f = read_st(dir / model::shard_name(s));
    EXPECT_EQ(f.metadata, json({{"format", "pt"}}));
    for (const auto& [n, t] : f.tensors) {
      EXPECT_EQ(idx["weight_map"].value(n, ""), model::shard_name(s)) << n;
      EXPECT_TRUE(all.emplace(n, t).second) << n;
      total += t.bytes.size();
    }
  }
  EXPECT_EQ(idx["weight_map"].size(), all.size());
  EXPECT_EQ(idx["metadata"]["total_size"].get<std::uint64_t>(), total);
  return all;
}

// What every export shares: the copied tensors and files, config.json's
// other keys, nothing else in the folder.
void check_common(const fs::path& out, const std::map<std::string, st_tensor>& all, const std::set<std::string>& extra_files = {}) {
  const model& m = the_model();
  for (const auto& w : m.ws) {
    const bool quantized = w.k && w.name != "model.embed_tokens.weight" && w.name != "lm_head.weight";
    if (quantized) continue;
    ASSERT_TRUE(all.count(w.name)) << w.name;
    EXPECT_EQ(all.at(w.name).dtype, "BF16");
    EXPECT_EQ(all.at(w.name).shape, model::shape_of(w));
    const auto b = model::bf16_bytes(w);
    EXPECT_EQ(all.at(w.name).bytes, std::string(b.begin(), b.end())) << w.name;
  }
  for (const auto& [n, t] : m.other_files) EXPECT_EQ(read_bytes(out / n), t) << n;
  const json cfg = read_json(out / "config.json");
  EXPECT_EQ(cfg["architectures"], json({"LlamaForCausalLM"}));
  EXPECT_EQ(cfg["hidden_size"], 64);
  EXPECT_EQ(cfg["torch_dtype"], "bfloat16");
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(out)) files.insert(e.path().filename().string());
  std::set<std::string> want{"config.json", "model.safetensors.index.json", model::shard_name(1), model::shard_name(2)};
  for (const auto& [n, t] : m.other_files) want.insert(n);
  want.insert(extra_files.begin(), extra_files.end());
  EXPECT_EQ(files, want);
}

// compressed-tensors' QuantizationArgs for the weights, key by key.
json ct_weights(int bits, const char* type, const char* strategy, int group, bool symmetric) {
  return {{"actorder", nullptr},  {"block_structure", nullptr}, {"dynamic", false},   {"group_size", group},
          {"num_bits", bits},     {"observer", "minmax"},       {"observer_kwargs", json::object()},
          {"strategy", strategy}, {"symmetric", symmetric},     {"type", type}};
}

json ct_config(const char* format, const json& weights, const json& ignore) {
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

class folder_test : public ::testing::Test {
 protected:
  void SetUp() override { the_model().write(dir_ / "in"); }
  temp_dir dir_;
};

// ------------------------------------------------------------------ compressed-tensors INT4

TEST_F(folder_test, compressed_tensors_int4_symmetric) {
  const std::string before1 = read_bytes(dir_ / "in" / model::shard_name(1));
  const auto r = run_tool(dir_, "quantize in -o out --format int4 --block 32 --export compressed-tensors");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_bytes(dir_ / "in" / model::shard_name(1)), before1);  // the input is never modified
  const auto all = read_folder(dir_ / "out");
  check_common(dir_ / "out", all);
  EXPECT_EQ(read_json(dir_ / "out" / "config.json")["quantization_config"],
            ct_config("pack-quantized", ct_weights(4, "int", "group", 32, true), json({"lm_head"})));

  const blockq::uniform_quantizer<> lib(blockq::uniform_options{4, true, 32});
  for (const std::string& mod : quantized_modules()) {
    const weight& w = the_model().w(mod + ".weight");
    EXPECT_FALSE(all.count(mod + ".weight"));
    const st_tensor& p = all.at(mod + ".weight_packed");
    const st_tensor& s = all.at(mod + ".weight_scale");
    const st_tensor& shp = all.at(mod + ".weight_shape");
    ASSERT_EQ(p.dtype, "I32");
    ASSERT_EQ(p.shape, (std::vector<std::uint64_t>{w.n, w.k / 8}));
    ASSERT_EQ(s.dtype, "BF16");  // the model's dtype
    ASSERT_EQ(s.shape, (std::vector<std::uint64_t>{w.n, w.k / 32}));
    ASSERT_EQ(shp.dtype, "I64");
    EXPECT_EQ(values<std::int64_t>(shp), (std::vector<std::int64_t>{std::int64_t(w.n), std::int64_t(w.k)}));
    const auto words = values<std::uint32_t>(p);
    const auto sc = values<std::uint16_t>(s);
    std::vector<std::uint8_t> codes(w.n * w.k);  // two's complement, for blockq's dequantize
    std::vector<float> scales(sc.size()), deq(w.n * w.k), lib_deq(w.n * w.k);
    for (std::size_t i = 0; i < sc.size(); ++i) scales[i] = bf16_value(sc[i]);
    for (std::size_t row = 0; row < w.n; ++row)
      for (std::size_t c = 0; c < w.k; ++c) {
        const int q = int((words[row * (w.k / 8) + c / 8] >> (4 * (c % 8))) & 15) - 8;  // q + 8, lowest index lowest
        const float sv = scales[row * (w.k / 32) + c / 32];
        deq[row * w.k + c] = float(q) * sv;
        codes[row * w.k + c] = std::uint8_t(q) & 15;
        // Codes are computed with the scale as stored (BF16): within half a step of it.
        EXPECT_LE(std::fabs(w.x[row * w.k + c] - deq[row * w.k + c]), sv * 0.5f * (1 + 1e-6f)) << mod << " " << row << "," << c;
      }
    lib.dequantize(codes, scales, {}, lib_deq);
    EXPECT_EQ(deq, lib_deq) << mod;
  }
}

// The search rules score the scale as stored: the file's BF16 scale is one
// of the two BF16 values around the library's mse scale, and its codes do
// no worse than either with codes round(x / s) clamped to [-8, 7].
TEST_F(folder_test, compressed_tensors_mse_scores_the_stored_scale) {
  const auto r = run_tool(dir_, "quantize in -o out --format int4 --block 32 --rule mse");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto all = read_folder(dir_ / "out");
  const blockq::uniform_quantizer<> lib(blockq::uniform_options{4, true, 32, blockq::scale_rule::mse});
  auto sse_at = [](std::span<const float> blk, float s) {
    double e = 0.0;
    for (float v : blk) {
      const float q = std::clamp(std::nearbyint(v / s), -8.0f, 7.0f);
      e += double(v - q * s) * double(v - q * s);
    }
    return e;
  };
  int other_side = 0;
  for (const std::string& mod : quantized_modules()) {
    const weight& w = the_model().w(mod + ".weight");
    const auto words = values<std::uint32_t>(all.at(mod + ".weight_packed"));
    const auto sc = values<std::uint16_t>(all.at(mod + ".weight_scale"));
    for (std::size_t b = 0; b < w.x.size() / 32; ++b) {
      const std::span<const float> blk(w.x.data() + 32 * b, 32);
      const float sf = lib.block_params(blk).scale;
      std::uint32_t u;
      std::memcpy(&u, &sf, 4);
      const float lo = bf16_value(std::uint16_t(u >> 16)), hi = bf16_value(std::uint16_t((u >> 16) + 1));  // around |sf|
      const float got = bf16_value(sc[b]);
      ASSERT_TRUE(got == lo || got == hi) << mod << " block " << b << ": " << got << " not next to " << sf;
      double e = 0.0;
      for (std::size_t i = 0; i < 32; ++i) {
        const std::size_t at = 32 * b + i;
        const int q = int((words[at / 8] >> (4 * (at % 8))) & 15) - 8;
        e += double(blk[i] - float(q) * got) * double(blk[i] - float(q) * got);
      }
      EXPECT_LE(e, std::min(sse_at(blk, lo), sse_at(blk, hi)) * (1 + 1e-6) + 1e-30) << mod << " block " << b;
      const float nearest = std::fabs(sf - lo) <= std::fabs(hi - sf) ? lo : hi;
      other_side += got != nearest;
    }
  }
  EXPECT_GT(other_side, 0);  // the rounding direction matters for some blocks
}

TEST_F(folder_test, compressed_tensors_uint4_zero_points_packed_along_n) {
  const auto r = run_tool(dir_, "quantize in -o out --format uint4 --block 32 --exclude 'layers\\.1\\.mlp\\.down_proj'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto all = read_folder(dir_ / "out");
  EXPECT_EQ(read_json(dir_ / "out" / "config.json")["quantization_config"],
            ct_config("pack-quantized", ct_weights(4, "int", "group", 32, false),
                      json({"lm_head", "model.layers.1.mlp.down_proj"})));
  EXPECT_EQ(all.at("model.layers.1.mlp.down_proj.weight").dtype, "BF16");  // excluded: copied
  for (const std::string& mod : quantized_modules()) {
    if (mod == "model.layers.1.mlp.down_proj") continue;
    const weight& w = the_model().w(mod + ".weight");
    const st_tensor& z = all.at(mod + ".weight_zero_point");
    ASSERT_EQ(z.dtype, "I32");
    ASSERT_EQ(z.shape, (std::vector<std::uint64_t>{(w.n + 7) / 8, w.k / 32}));
    const auto zw = values<std::uint32_t>(z);
    const auto words = values<std::uint32_t>(all.at(mod + ".weight_packed"));
    const auto sc = values<std::uint16_t>(all.at(mod + ".weight_scale"));
    for (std::size_t row = 0; row < w.n; ++row)
      for (std::size_t c = 0; c < w.k; ++c) {
        const std::size_t g = c / 32, ng = w.k / 32;
        const int q = int((words[row * (w.k / 8) + c / 8] >> (4 * (c % 8))) & 15) - 8;
        const int zp = int((zw[(row / 8) * ng + g] >> (4 * (row % 8))) & 15) - 8;  // packed along N
        const float sv = bf16_value(sc[row * ng + g]);
        const float deq = float(q - zp) * sv;
        EXPECT_LE(std::fabs(w.x[row * w.k + c] - deq), sv * 0.6f) << mod << " " << row << "," << c;
      }
  }
}

// ------------------------------------------------------------------ compressed-tensors NVFP4

// Rows of E2M1 codes and E4M3 scales as blockq's library computes them
// with tensor scale ts, and its dequantized values.
struct lib_nvfp4 {
  std::vector<std::uint8_t> codes, scales;
  std::vector<float> deq;
  lib_nvfp4(const weight& w, float ts) : codes(w.x.size()), scales(w.x.size() / 16), deq(w.x.size()) {
    const blockq::nvfp4_quantizer<> q;
    q.quantize(w.x, ts, codes, scales);
    q.dequantize(codes, scales, ts, deq);
  }
};

void check_nvfp4_layout(const weight& w, const st_tensor& packed, const st_tensor& scale, const lib_nvfp4& lib) {
  ASSERT_EQ(packed.dtype, "U8");
  ASSERT_EQ(packed.shape, (std::vector<std::uint64_t>{w.n, w.k / 2}));
  ASSERT_EQ(scale.dtype, "F8_E4M3");
  ASSERT_EQ(scale.shape, (std::vector<std::uint64_t>{w.n, w.k / 16}));
  for (std::size_t i = 0; i < w.x.size(); ++i) {
    const unsigned nib = (std::uint8_t(packed.bytes[i / 2]) >> (i % 2 ? 4 : 0)) & 15;  // even element low
    ASSERT_EQ(nib, lib.codes[i]) << w.name << " " << i;
  }
  EXPECT_EQ(scale.bytes, std::string(lib.scales.begin(), lib.scales.end())) << w.name;
}

TEST_F(folder_test, compressed_tensors_nvfp4_fused_global_scales) {
  const auto r = run_tool(dir_, "quantize in -o out --format nvfp4 --export compressed-tensors");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto all = read_folder(dir_ / "out");
  check_common(dir_ / "out", all);
  EXPECT_EQ(read_json(dir_ / "out" / "config.json")["quantization_config"],
            ct_config("nvfp4-pack-quantized", ct_weights(4, "float", "tensor_group", 16, true), json({"lm_head"})));
  const model& m = the_model();
  for (const std::string& mod : quantized_modules()) {
    const weight& w = m.w(mod + ".weight");
    // The group's amax: q/k/v and gate/up share one.
    float amax = amax_of(w.x);
    const std::string parent = mod.substr(0, mod.rfind('.') + 1), leaf = mod.substr(mod.rfind('.') + 1);
    std::vector<std::string> group;
    if (leaf == "q_proj" || leaf == "k_proj" || leaf == "v_proj") group = {"q_proj", "k_proj", "v_proj"};
    if (leaf == "gate_proj" || leaf == "up_proj") group = {"gate_proj", "up_proj"};
    for (const auto& g : group) amax = std::max(amax, amax_of(m.w(parent + g + ".weight").x));
    const st_tensor& gs = all.at(mod + ".weight_global_scale");
    ASSERT_EQ(gs.dtype, "F32");
    ASSERT_EQ(gs.shape, (std::vector<std::uint64_t>{1}));
    const float global = values<float>(gs)[0];
    EXPECT_NEAR(global, 6.0f * 448.0f / amax, 1e-6f * global) << mod;  // the reciprocal of ModelOpt's weight_scale_2
    for (const auto& g : group) EXPECT_EQ(gs.bytes, all.at(parent + g + ".weight_global_scale").bytes) << mod << " vs " << g;
    const lib_nvfp4 lib(w, amax / (6.0f * 448.0f));
    const st_tensor& packed = all.at(mod + ".weight_packed");
    const st_tensor& scale = all.at(mod + ".weight_scale");
    check_nvfp4_layout(w, packed, scale, lib);
    for (std::size_t i = 0; i < w.x.size(); ++i) {
      const unsigned nib = (std::uint8_t(packed.bytes[i / 2]) >> (i % 2 ? 4 : 0)) & 15;
      const float deq = e2m1_value(nib) * e4m3_value(std::uint8_t(scale.bytes[i / 16])) / global;
      ASSERT_NEAR(deq, lib.deq[i], 2e-6f * std::fabs(lib.deq[i])) << mod << " " << i;
    }
  }
  // Layer 1's q_proj (shard 1) and k_proj (shard 2) still share the scale.
  EXPECT_EQ(all.at("model.layers.1.self_attn.q_proj.weight_global_scale").bytes,
            all.at("model.layers.1.self_attn.k_proj.weight_global_scale").bytes);
}

TEST_F(folder_test, no_fuse_gives_each_layer_its_own_scale) {
  const auto r = run_tool(dir_, "quantize in -o out --format nvfp4 --no-fuse");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto all = read_folder(dir_ / "out");
  for (const char* mod : {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.up_proj"}) {
    const float global = values<float>(all.at(std::string(mod) + ".weight_global_scale"))[0];
    EXPECT_NEAR(global, 6.0f * 448.0f / amax_of(the_model().w(std::string(mod) + ".weight").x), 1e-6f * global) << mod;
  }
}

// ------------------------------------------------------------------ compressed-tensors MXFP4

TEST_F(folder_test, compressed_tensors_mxfp4) {
  const auto r = run_tool(dir_, "quantize in -o out --format mxfp4");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto all = read_folder(dir_ / "out");
  check_common(dir_ / "out", all);
  EXPECT_EQ(read_json(dir_ / "out" / "config.json")["quantization_config"],
            ct_config("mxfp4-pack-quantized", ct_weights(4, "float", "group", 32, true), json({"lm_head"})));
  const blockq::mx_quantizer<blockq::e2m1> q;
  for (const std::string& mod : quantized_modules()) {
    const weight& w = the_model().w(mod + ".weight");
    const st_tensor& p = all.at(mod + ".weight_packed");
    const st_tensor& s = all.at(mod + ".weight_scale");
    ASSERT_EQ(p.dtype, "U8");
    ASSERT_EQ(p.shape, (std::vector<std::uint64_t>{w.n, w.k / 2}));
    ASSERT_EQ(s.dtype, "U8");
    ASSERT_EQ(s.shape, (std::vector<std::uint64_t>{w.n, w.k / 32}));
    std::vector<std::uint8_t> codes(w.x.size()), scales(w.x.size() / 32);
    std::vector<float> lib(w.x.size());
    q.quantize(w.x, codes, scales);
    q.dequantize(codes, scales, lib);
    for (std::size_t i = 0; i < w.x.size(); ++i) {
      const unsigned nib = (std::uint8_t(p.bytes[i / 2]) >> (i % 2 ? 4 : 0)) & 15;
      const float deq = e2m1_value(nib) * std::ldexp(1.0f, int(std::uint8_t(s.bytes[i / 32])) - 127);  // E8M0
      ASSERT_EQ(deq, lib[i]) << mod << " " << i;
    }
  }
}

// ------------------------------------------------------------------ ModelOpt NVFP4

TEST_F(folder_test, modelopt_without_activation_statistics_is_refused) {
  const auto r = run_tool(dir_, "quantize in -o out --format nvfp4 --export modelopt");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("blockq: error: --export modelopt needs activation statistics"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--export compressed-tensors --format nvfp4"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(folder_test, modelopt_nvfp4) {
  json amax = json::object();
  float a = 1.0f;
  for (const std::string& mod : quantized_modules()) amax[mod] = a += 0.5f;
  write_bytes(dir_ / "amax.json", amax.dump());
  const auto r = run_tool(dir_, "quantize in -o out --format nvfp4 --export modelopt --act-amax amax.json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto all = read_folder(dir_ / "out");
  check_common(dir_ / "out", all, {"hf_quant_config.json"});
  const json hfq = read_json(dir_ / "out" / "hf_quant_config.json");
  EXPECT_EQ(hfq["producer"]["name"], "blockq");
  EXPECT_EQ(hfq["quantization"], json({{"quant_algo", "NVFP4"}, {"kv_cache_quant_algo", nullptr}, {"group_size", 16},
                                       {"exclude_modules", {"lm_head"}}}));
  const json args = {{"dynamic", false}, {"num_bits", 4}, {"type", "float"}, {"group_size", 16}};
  EXPECT_EQ(read_json(dir_ / "out" / "config.json")["quantization_config"],
            json({{"config_groups", {{"group_0", {{"input_activations", args}, {"weights", args}, {"targets", {"Linear"}}}}}},
                  {"ignore", {"lm_head"}},
                  {"quant_algo", "NVFP4"},
                  {"producer", hfq["producer"]},
                  {"quant_method", "modelopt"}}));
  const model& m = the_model();
  for (const std::string& mod : quantized_modules()) {
    const weight& w = m.w(mod + ".weight");
    const st_tensor& ws2 = all.at(mod + ".weight_scale_2");
    const st_tensor& is = all.at(mod + ".input_scale");
    ASSERT_EQ(ws2.dtype, "F32");
    ASSERT_TRUE(ws2.shape.empty());  // a scalar
    ASSERT_EQ(is.dtype, "F32");
    ASSERT_TRUE(is.shape.empty());
    EXPECT_FLOAT_EQ(values<float>(is)[0], amax[mod].get<float>() / (6.0f * 448.0f)) << mod;
    const float s2 = values<float>(ws2)[0];
    const std::string parent = mod.substr(0, mod.rfind('.') + 1);
    if (mod.find("q_proj") != std::string::npos || mod.find("v_proj") != std::string::npos) {
      EXPECT_EQ(ws2.bytes, all.at(parent + "k_proj.weight_scale_2").bytes) << mod;
    }
    const lib_nvfp4 lib(w, s2);
    const st_tensor& packed = all.at(mod + ".weight");
    const st_tensor& scale = all.at(mod + ".weight_scale");
    check_nvfp4_layout(w, packed, scale, lib);
    for (std::size_t i = 0; i < w.x.size(); ++i) {
      const unsigned nib = (std::uint8_t(packed.bytes[i / 2]) >> (i % 2 ? 4 : 0)) & 15;
      // Equal up to the order of the two products (one rounding).
      const float deq = e2m1_value(nib) * e4m3_value(std::uint8_t(scale.bytes[i / 16])) * s2;
      ASSERT_NEAR(deq, lib.deq[i], 1.2e-7f * std::fabs(lib.deq[i])) << mod << " " << i;
    }
  }
  const float k0 = amax_of(m.w("model.layers.0.self_attn.k_proj.weight").x);
  EXPECT_FLOAT_EQ(values<float>(all.at("model.layers.0.self_attn.q_proj.weight_scale_2"))[0], k0 / (6.0f * 448.0f));
}

TEST_F(folder_test, modelopt_input_scale_from_calibration_activations) {
  std::vector<raw_tensor> acts;
  std::map<std::string, float> amax;
  float a = 0.25f;
  for (const std::string& mod : quantized_modules()) {
    const weight& w = the_model().w(mod + ".weight");
    std::vector<float> x(3 * w.k, 0.125f);
    x[w.k + 5] = -(a += 0.75f);  // the largest magnitude, negative
    amax[mod] = a;
    acts.push_back({mod + ".weight", "F32", {3, w.k}, float_bytes(x)});
  }
  write_safetensors(dir_ / "acts.safetensors", acts);
  const auto r = run_tool(dir_, "quantize in -o out --format nvfp4 --export modelopt --hessian acts.safetensors");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto all = read_folder(dir_ / "out");
  for (const std::string& mod : quantized_modules())
    EXPECT_FLOAT_EQ(values<float>(all.at(mod + ".input_scale"))[0], amax[mod] / (6.0f * 448.0f)) << mod;
}

// One model.safetensors (no index), int8 (four codes a word) and a MoE
// router, which stays BF16 and is named in ignore.
TEST_F(folder_test, single_file_int8_and_router) {
  const model& m = the_model();
  auto ts = m.shard(1);
  for (auto& t : m.shard(2)) ts.push_back(t);
  weight router{"model.layers.0.mlp.gate.weight", 4, 64, std::vector<float>(256, 0.5f), 1};
  ts.push_back({router.name, "BF16", {4, 64}, model::bf16_bytes(router)});
  fs::create_directories(dir_ / "one");
  write_safetensors(dir_ / "one" / "model.safetensors", ts, R"({"format":"pt"})");
  write_bytes(dir_ / "one" / "config.json", R"({"model_type":"llama"})");
  const auto r = run_tool(dir_, "quantize one -o out --format int8 --block 32");
  ASSERT_EQ(r.code, 0) << r.err;
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir_ / "out")) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"config.json", "model.safetensors"}));
  EXPECT_EQ(read_json(dir_ / "out" / "config.json")["quantization_config"],
            ct_config("pack-quantized", ct_weights(8, "int", "group", 32, true), json({"lm_head", "model.layers.0.mlp.gate"})));
  const st_file f = read_st(dir_ / "out" / "model.safetensors");
  EXPECT_EQ(f.tensors.at(router.name).dtype, "BF16");
  for (const std::string& mod : quantized_modules()) {
    const weight& w = m.w(mod + ".weight");
    const st_tensor& p = f.tensors.at(mod + ".weight_packed");
    ASSERT_EQ(p.shape, (std::vector<std::uint64_t>{w.n, w.k / 4}));
    const auto words = values<std::uint32_t>(p);
    const auto sc = values<std::uint16_t>(f.tensors.at(mod + ".weight_scale"));
    for (std::size_t row = 0; row < w.n; ++row)
      for (std::size_t c = 0; c < w.k; ++c) {
        const int q = int((words[row * (w.k / 4) + c / 4] >> (8 * (c % 4))) & 255) - 128;
        const float sv = bf16_value(sc[row * (w.k / 32) + c / 32]);
        ASSERT_LE(std::fabs(w.x[row * w.k + c] - float(q) * sv), sv * 0.5f * (1 + 1e-6f)) << mod;
      }
  }
}

TEST_F(folder_test, bad_options_write_nothing) {
  for (const char* args : {"quantize in -o out --format int4 --block 32 --shards 3",
                           "quantize in -o out --format int4 --block 32 --shards model-7.safetensors",
                           "quantize in -o out --format int4 --export modelopt --act-amax x.json",
                           "quantize in -o out --format uint3 --block 32",
                           "quantize in -o out --format int4 --block 4",
                           "quantize in -o out --format mxfp4 --block 64",
                           "quantize in -o out --format nvfp4 --export blockq",
                           "quantize in -o in/q --format int4 --block 32",
                           "finalize in"}) {
    const auto r = run_tool(dir_, args);
    EXPECT_EQ(r.code, 1) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("blockq: error: ", 0), 0u) << args << "\n" << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out")) << args;
    EXPECT_FALSE(fs::exists(dir_ / "in" / "q")) << args;
  }
  write_safetensors(dir_ / "w.safetensors", the_model().shard(1));
  const auto r = run_tool(dir_, "quantize w.safetensors -o out.safetensors --format nvfp4 --export modelopt");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("writes a model folder"), std::string::npos) << r.err;
}

// ------------------------------------------------------------------ --shards and finalize

TEST_F(folder_test, shards_then_finalize_equal_one_run) {
  ASSERT_EQ(run_tool(dir_, "quantize in -o whole --format nvfp4").code, 0);
  auto r = run_tool(dir_, "quantize in -o parts --format nvfp4 --shards 2");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run_tool(dir_, "finalize parts");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("missing " + model::shard_name(1)), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "parts" / "config.json"));
  r = run_tool(dir_, "quantize in -o parts --format nvfp4 --shards " + model::shard_name(1));
  ASSERT_EQ(r.code, 0) << r.err;
  r = run_tool(dir_, "finalize parts");
  ASSERT_EQ(r.code, 0) << r.err;
  std::set<std::string> a, b;
  for (const auto& e : fs::directory_iterator(dir_ / "whole")) a.insert(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(dir_ / "parts")) b.insert(e.path().filename().string());
  EXPECT_EQ(a, b);
  for (const std::string& f : a) EXPECT_EQ(read_bytes(dir_ / "whole" / f), read_bytes(dir_ / "parts" / f)) << f;
}

// ------------------------------------------------------------------ malformed folders

class malformed_test : public folder_test {
 protected:
  // Runs quantize and expects one error line with `what`, and nothing written.
  void expect_refused(const std::string& what) {
    const auto before = dir_.entries();
    const auto r = run_tool(dir_, "quantize in -o out --format int4 --block 32");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err.rfind("blockq: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(dir_.entries(), before);  // no output, no temporary folder
  }
  void write_index(const json& idx) { write_bytes(dir_ / "in" / "model.safetensors.index.json", idx.dump()); }
};

TEST_F(malformed_test, index_entry_missing_from_its_shard) {
  json idx = the_model().index();
  idx["weight_map"]["model.layers.9.mlp.up_proj.weight"] = model::shard_name(1);
  write_index(idx);
  expect_refused("puts tensor 'model.layers.9.mlp.up_proj.weight' in " + model::shard_name(1) + ", which does not hold it");
}

TEST_F(malformed_test, tensor_missing_from_the_index) {
  json idx = the_model().index();
  idx["weight_map"].erase("model.norm.weight");
  write_index(idx);
  expect_refused("tensor 'model.norm.weight' of " + model::shard_name(2) + " is missing from model.safetensors.index.json");
}

TEST_F(malformed_test, shard_missing) {
  fs::remove(dir_ / "in" / model::shard_name(2));
  expect_refused("the shard '" + model::shard_name(2) + "' named by model.safetensors.index.json is missing");
}

TEST_F(malformed_test, tensor_in_two_shards) {
  auto s2 = the_model().shard(2);
  s2.push_back(the_model().shard(1).front());
  write_safetensors(dir_ / "in" / model::shard_name(2), s2);
  expect_refused("tensor 'model.embed_tokens.weight' is in two shards");
}

TEST_F(malformed_test, config_not_json) {
  write_bytes(dir_ / "in" / "config.json", "{\"architectures\": [");
  expect_refused("config.json is not valid JSON");
}

TEST_F(malformed_test, index_pointing_outside_the_folder) {
  write_safetensors(dir_ / "outside.safetensors", the_model().shard(2));
  json idx = the_model().index();
  for (auto& v : idx["weight_map"]) {
    if (v == model::shard_name(2)) v = "../outside.safetensors";
  }
  write_index(idx);
  expect_refused("points outside the folder");
  for (auto& v : idx["weight_map"]) {
    if (v == "../outside.safetensors") v = (dir_ / "outside.safetensors").string();
  }
  write_index(idx);
  expect_refused("not a file name inside the folder");
}

TEST_F(malformed_test, shard_link_escaping_the_folder) {
  fs::rename(dir_ / "in" / model::shard_name(2), dir_ / "elsewhere.safetensors");
  fs::create_symlink(dir_ / "elsewhere.safetensors", dir_ / "in" / model::shard_name(2));
  expect_refused("outside the model folder");
}

}  // namespace
