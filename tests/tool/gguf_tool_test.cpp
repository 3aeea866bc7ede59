// SPDX-License-Identifier: Apache-2.0
// End-to-end runs of `blockq quantize / dequantize` on GGUF files: the bytes
// of every quantized tensor against ggml's reference quantizers transcribed
// here from their documented formulas (quantize_row_q4_0_ref & co.), what is
// kept (keys, order, alignment, the tensors llama-quantize leaves alone),
// importance matrices, and malformed inputs.
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "blockq/formats/half.hpp"
#include "gguf.hpp"

#include "files.hpp"

namespace {

using namespace blockq_tool;
using tool_test::run_tool;
using tool_test::temp_dir;

float f16(std::uint16_t b) { return blockq::float16::from_bits(b).to_float(); }
std::uint16_t to_f16(float x) { return blockq::float16::from_float(x).bits; }

struct model_tensor {
  std::string name;
  std::uint32_t type;
  std::vector<std::uint64_t> ne;
  std::vector<float> x;  // the values (exact in the tensor's type)
};

// Values that exercise ggml's arithmetic: normal rows, a zero block, a -0
// block, ties of x/d + 8.5, fp16 subnormals, the largest fp16.
std::vector<float> test_values(std::size_t n, std::uint32_t type, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 0.04f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  if (n >= 256) {
    for (std::size_t i = 32; i < 64; ++i) x[i] = 0.0f;
    for (std::size_t i = 64; i < 96; ++i) x[i] = -0.0f;
    for (std::size_t i = 96; i < 128; ++i) x[i] = static_cast<float>(static_cast<int>(i % 17) - 8) * 0.125f;  // ties
    for (std::size_t i = 128; i < 160; ++i) x[i] = static_cast<float>(static_cast<int>(i) - 140) * 5.9604644775390625e-8f;  // subnormals
    x[170] = 65504.0f;
    x[200] = -65504.0f;
  }
  for (float& v : x) {  // exact in the stored type
    if (type == gguf::type_f16) v = f16(to_f16(v));
    if (type == gguf::type_bf16) v = blockq::bfloat16::from_float(v).to_float();
  }
  return x;
}

std::string encode(const model_tensor& t) {
  std::string b;
  for (float v : t.x) {
    if (t.type == gguf::type_f32) {
      b.append(reinterpret_cast<const char*>(&v), 4);
    } else {
      const std::uint16_t h = t.type == gguf::type_f16 ? to_f16(v) : blockq::bfloat16::from_float(v).bits;
      b.append(reinterpret_cast<const char*>(&h), 2);
    }
  }
  return b;
}

struct model {
  gguf::file header;
  std::vector<model_tensor> tensors;
};

model make_model(bool with_output = true, std::uint32_t alignment = 32) {
  std::mt19937 rng(7);
  model m;
  m.header.alignment = alignment;
  m.header.kvs.push_back({"general.architecture", gguf::value::of_string("llama")});
  m.header.kvs.push_back({"general.file_type", gguf::value::of_u32(1)});
  m.header.kvs.push_back({"llama.rope.freq_base", gguf::value::of_f32(10000.0f)});
  const std::vector<std::string> tokens{"<s>", "</s>", "x"};
  m.header.kvs.push_back({"tokenizer.ggml.tokens", gguf::value::of_strings(tokens)});
  auto add = [&](std::string name, std::uint32_t type, std::vector<std::uint64_t> ne) {
    std::uint64_t n = 1;
    for (auto d : ne) n *= d;
    m.tensors.push_back({std::move(name), type, std::move(ne), test_values(n, type, rng)});
  };
  add("token_embd.weight", gguf::type_f16, {64, 8});
  add("blk.0.attn_norm.weight", gguf::type_f32, {64});
  add("blk.0.attn_q.weight", gguf::type_f16, {64, 16});
  add("blk.0.attn_k.weight", gguf::type_bf16, {64, 4});
  add("blk.0.attn_v.weight", gguf::type_f32, {64, 4});
  add("blk.0.ffn_gate_inp.weight", gguf::type_f32, {64, 2});
  add("blk.0.ffn_up_exps.weight", gguf::type_f16, {64, 4, 2});
  add("blk.0.odd.weight", gguf::type_f16, {40, 2});
  add("output_norm.weight", gguf::type_f32, {64});
  if (with_output) add("output.weight", gguf::type_f16, {64, 8});
  for (const model_tensor& t : m.tensors) m.header.tensors.push_back({t.name, t.type, t.ne, 0});
  return m;
}

void write_model(const std::filesystem::path& p, model m) {
  std::string file = gguf::header_bytes(m.header);
  for (const model_tensor& t : m.tensors) {
    file += encode(t);
    file.resize(gguf::padded(file.size(), m.header.alignment), '\0');
  }
  tool_test::write_bytes(p, file);
}

struct read_back {
  std::string bytes;
  gguf::file f;
  std::string tensor(const std::string& name) const {
    for (const auto& t : f.tensors)
      if (t.name == name) return bytes.substr(f.data_offset + t.offset, t.nbytes());
    ADD_FAILURE() << "no tensor " << name;
    return {};
  }
  const gguf::tensor_info* info(const std::string& name) const {
    for (const auto& t : f.tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
};

read_back read_gguf(const std::filesystem::path& p) {
  read_back r;
  r.bytes = tool_test::read_bytes(p);
  r.f = gguf::parse(gguf::buffer_source({reinterpret_cast<const std::uint8_t*>(r.bytes.data()), r.bytes.size()}));
  return r;
}

// ggml's reference quantizers (ggml-quants.c), transcribed from their formulas.
std::string ggml_q4_0(const std::vector<float>& x) {
  std::string out;
  for (std::size_t b = 0; b < x.size(); b += 32) {
    float amax = 0.0f, max = 0.0f;
    for (std::size_t j = 0; j < 32; ++j)
      if (amax < std::fabs(x[b + j])) amax = std::fabs(x[b + j]), max = x[b + j];
    const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    const std::uint16_t dh = to_f16(d);
    out.append(reinterpret_cast<const char*>(&dh), 2);
    for (std::size_t j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<std::int8_t>(x[b + j] * id + 8.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<std::int8_t>(x[b + 16 + j] * id + 8.5f)));
      out += static_cast<char>(q0 | (q1 << 4));
    }
  }
  return out;
}

std::string ggml_q4_1(const std::vector<float>& x) {
  std::string out;
  for (std::size_t b = 0; b < x.size(); b += 32) {
    float min = x[b], max = x[b];
    for (std::size_t j = 1; j < 32; ++j) min = std::min(min, x[b + j]), max = std::max(max, x[b + j]);
    const float d = (max - min) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    const std::uint16_t dh = to_f16(d), mh = to_f16(min);
    out.append(reinterpret_cast<const char*>(&dh), 2);
    out.append(reinterpret_cast<const char*>(&mh), 2);
    for (std::size_t j = 0; j < 16; ++j) {
      const int q0 = std::min(15, static_cast<int>(static_cast<std::int8_t>((x[b + j] - min) * id + 0.5f)));
      const int q1 = std::min(15, static_cast<int>(static_cast<std::int8_t>((x[b + 16 + j] - min) * id + 0.5f)));
      out += static_cast<char>(q0 | (q1 << 4));
    }
  }
  return out;
}

std::string ggml_q8_0(const std::vector<float>& x) {
  std::string out;
  for (std::size_t b = 0; b < x.size(); b += 32) {
    float amax = 0.0f;
    for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    const std::uint16_t dh = to_f16(d);
    out.append(reinterpret_cast<const char*>(&dh), 2);
    for (std::size_t j = 0; j < 32; ++j) out += static_cast<char>(static_cast<std::int8_t>(std::round(x[b + j] * id)));
  }
  return out;
}

// ggml's MXFP4 decoding: kvalues {0, 1, 2, 3, 4, 6, 8, 12} (sign in bit 3) x 2^(e - 128);
// low nibbles hold elements 0-15, high nibbles 16-31.
std::vector<float> ggml_mxfp4_decode(const std::string& b) {
  static const int kv[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  std::vector<float> y;
  for (std::size_t at = 0; at < b.size(); at += 17) {
    const float d = std::ldexp(1.0f, static_cast<int>(static_cast<std::uint8_t>(b[at])) - 128);
    std::vector<float> blk(32);
    for (std::size_t j = 0; j < 16; ++j) {
      const auto q = static_cast<std::uint8_t>(b[at + 1 + j]);
      blk[j] = kv[q & 15] * d;
      blk[j + 16] = kv[q >> 4] * d;
    }
    y.insert(y.end(), blk.begin(), blk.end());
  }
  return y;
}

const std::vector<std::string> quantized_names{"token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                               "blk.0.attn_v.weight", "blk.0.ffn_up_exps.weight"};

TEST(GgufTool, QuantizesLikeLlamaQuantizeByteForByte) {
  temp_dir dir;
  const model m = make_model();
  write_model(dir / "m.gguf", m);
  const struct {
    const char* fmt;
    std::uint32_t type, ftype;
    std::string (*ref)(const std::vector<float>&);
  } cases[] = {{"q4_0", gguf::type_q4_0, 2, ggml_q4_0}, {"q4_1", gguf::type_q4_1, 3, ggml_q4_1}, {"q8_0", gguf::type_q8_0, 7, ggml_q8_0}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.fmt);
    const auto r = run_tool(dir, std::string("quantize m.gguf -o q.gguf --format ") + c.fmt);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("'blk.0.odd.weight' [2, 40] F16: the last dimension 40 is not a multiple of the block (32)"), std::string::npos)
        << r.err;
    const read_back q = read_gguf(dir / "q.gguf");
    // Every input key, in order, then the new ones.
    ASSERT_GE(q.f.kvs.size(), m.header.kvs.size() + 2);
    for (std::size_t i = 0; i < m.header.kvs.size(); ++i) {
      EXPECT_EQ(q.f.kvs[i].key, m.header.kvs[i].key);
      if (q.f.kvs[i].key != "general.file_type") {
        EXPECT_EQ(q.f.kvs[i].value, m.header.kvs[i].value) << q.f.kvs[i].key;
      }
    }
    EXPECT_EQ(q.f.find("general.file_type")->value, gguf::value::of_u32(c.ftype));
    EXPECT_EQ(q.f.find("general.quantization_version")->value, gguf::value::of_u32(2));
    EXPECT_EQ(q.f.find("blockq.format")->value.as_string(), c.fmt);
    EXPECT_EQ(q.f.find("blockq.ties")->value.as_string(), "ggml");
    // The tensors in order; the quantized ones ggml's bytes, the others unchanged.
    ASSERT_EQ(q.f.tensors.size(), m.tensors.size());
    std::uint64_t at = 0;
    for (std::size_t i = 0; i < m.tensors.size(); ++i) {
      const model_tensor& t = m.tensors[i];
      const gguf::tensor_info& o = q.f.tensors[i];
      EXPECT_EQ(o.name, t.name);
      EXPECT_EQ(o.ne, t.ne);
      EXPECT_EQ(o.offset, at) << t.name;
      at = gguf::padded(at + o.nbytes(), 32);
      const bool quantized = std::find(quantized_names.begin(), quantized_names.end(), t.name) != quantized_names.end();
      EXPECT_EQ(o.type, quantized ? c.type : t.type) << t.name;
      EXPECT_EQ(q.tensor(t.name), quantized ? c.ref(t.x) : encode(t)) << t.name;
    }
    EXPECT_EQ(q.bytes.size(), q.f.data_offset + at);
  }
}

TEST(GgufTool, Mxfp4DecodesToTheNearestCodesOfItsExactScale) {
  temp_dir dir;
  const model m = make_model();
  write_model(dir / "m.gguf", m);
  ASSERT_EQ(run_tool(dir, "quantize m.gguf -o q.gguf --format mxfp4").code, 0);
  const read_back q = read_gguf(dir / "q.gguf");
  EXPECT_EQ(q.f.find("general.file_type")->value, gguf::value::of_u32(38));
  for (const model_tensor& t : m.tensors) {
    if (std::find(quantized_names.begin(), quantized_names.end(), t.name) == quantized_names.end()) continue;
    SCOPED_TRACE(t.name);
    EXPECT_EQ(q.info(t.name)->type, gguf::type_mxfp4);
    const std::string b = q.tensor(t.name);
    const std::vector<float> y = ggml_mxfp4_decode(b);
    ASSERT_EQ(y.size(), t.x.size());
    for (std::size_t blk = 0; blk < y.size() / 32; ++blk) {
      // The OCP scale: 2^(floor(log2 amax) - 2), exactly; every code the nearest value on that grid.
      float amax = 0.0f;
      for (std::size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(t.x[blk * 32 + j]));
      if (amax == 0.0f) {
        EXPECT_EQ(static_cast<unsigned char>(b[blk * 17]), 0u);
        for (std::size_t j = 1; j < 17; ++j) EXPECT_EQ(b[blk * 17 + j], 0) << "zero is code 0 in ggml's layout";
        continue;
      }
      const float s = std::ldexp(1.0f, std::ilogb(amax) - 2);
      for (std::size_t j = 0; j < 32; ++j) {
        const float x = t.x[blk * 32 + j], got = y[blk * 32 + j];
        for (float g : {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f})
          EXPECT_LE(std::fabs(std::fabs(x) - std::fabs(got)), std::fabs(std::fabs(x) - g * s) * (1 + 1e-6f)) << blk << " " << j;
      }
    }
  }
}

TEST(GgufTool, OutputTensorIsKeptUnlessAskedAndTiedEmbeddingsAreTheOutput) {
  temp_dir dir;
  write_model(dir / "m.gguf", make_model(true));
  ASSERT_EQ(run_tool(dir, "quantize m.gguf -o q.gguf --format q8_0 --quantize-output").code, 0);
  EXPECT_EQ(read_gguf(dir / "q.gguf").info("output.weight")->type, gguf::type_q8_0);
  write_model(dir / "tied.gguf", make_model(false));
  ASSERT_EQ(run_tool(dir, "quantize tied.gguf -o t.gguf --format q8_0").code, 0);
  EXPECT_EQ(read_gguf(dir / "t.gguf").info("token_embd.weight")->type, gguf::type_f16);
  ASSERT_EQ(run_tool(dir, "quantize tied.gguf -o t2.gguf --format q8_0 --quantize-output").code, 0);
  EXPECT_EQ(read_gguf(dir / "t2.gguf").info("token_embd.weight")->type, gguf::type_q8_0);
}

TEST(GgufTool, KeepsANonDefaultAlignment) {
  temp_dir dir;
  write_model(dir / "m.gguf", make_model(true, 64));
  ASSERT_EQ(run_tool(dir, "quantize m.gguf -o q.gguf --format q4_0").code, 0);
  const read_back q = read_gguf(dir / "q.gguf");
  EXPECT_EQ(q.f.alignment, 64u);
  EXPECT_EQ(q.f.data_offset % 64, 0u);
  for (const auto& t : q.f.tensors) EXPECT_EQ(t.offset % 64, 0u) << t.name;
}

TEST(GgufTool, DequantizeRestoresGgmlValuesAsF32) {
  temp_dir dir;
  const model m = make_model();
  write_model(dir / "m.gguf", m);
  ASSERT_EQ(run_tool(dir, "quantize m.gguf -o q.gguf --format q8_0").code, 0);
  const auto r = run_tool(dir, "dequantize q.gguf -o d.gguf");
  ASSERT_EQ(r.code, 0) << r.err;
  const read_back q = read_gguf(dir / "q.gguf"), d = read_gguf(dir / "d.gguf");
  EXPECT_EQ(d.f.find("general.file_type")->value, gguf::value::of_u32(0));
  EXPECT_EQ(d.f.find("general.quantization_version"), nullptr);
  const std::string b = q.tensor("blk.0.attn_q.weight"), y = d.tensor("blk.0.attn_q.weight");
  EXPECT_EQ(d.info("blk.0.attn_q.weight")->type, gguf::type_f32);
  ASSERT_EQ(y.size(), 64u * 16u * 4u);
  for (std::size_t i = 0; i < 64 * 16; ++i) {  // d x q, d the stored fp16
    std::uint16_t dh;
    std::memcpy(&dh, b.data() + i / 32 * 34, 2);
    const float want = f16(dh) * static_cast<float>(static_cast<std::int8_t>(b[i / 32 * 34 + 2 + i % 32]));
    float got;
    std::memcpy(&got, y.data() + 4 * i, 4);
    EXPECT_EQ(got, want) << i;
  }
  EXPECT_EQ(d.tensor("blk.0.attn_norm.weight"), q.tensor("blk.0.attn_norm.weight"));
  EXPECT_EQ(d.f.find("blockq.format"), nullptr);
  // A quantized file is not quantized again; its dequantized F32 file is.
  const auto again = run_tool(dir, "quantize q.gguf -o qq.gguf --format q4_0");
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.err.find("already quantized by blockq"), std::string::npos) << again.err;
  EXPECT_EQ(run_tool(dir, "quantize d.gguf -o dq.gguf --format q4_0").code, 0);
}

// --- importance matrices ------------------------------------------------------

// A GGUF imatrix of one entry of n_mat rows (experts): in_sum2 = w x count.
void write_imatrix(const std::filesystem::path& p, const std::string& name, const std::vector<float>& w, float count = 4.0f,
                   std::uint64_t n_mat = 1) {
  gguf::file f;
  f.kvs.push_back({"general.type", gguf::value::of_string("imatrix")});
  std::vector<float> sums;
  for (float v : w) sums.push_back(v * count);
  const std::vector<float> counts(n_mat, count);
  f.tensors.push_back({name + ".in_sum2", gguf::type_f32, {w.size() / n_mat, n_mat}, 0});
  f.tensors.push_back({name + ".counts", gguf::type_f32, {1, n_mat}, 0});
  std::string file = gguf::header_bytes(f);
  file.append(reinterpret_cast<const char*>(sums.data()), sums.size() * 4);
  file.resize(gguf::padded(file.size(), 32), '\0');
  file.append(reinterpret_cast<const char*>(counts.data()), counts.size() * 4);
  file.resize(gguf::padded(file.size(), 32), '\0');
  tool_test::write_bytes(p, file);
}

double weighted_sse(const std::vector<float>& x, const std::vector<float>& y, const std::vector<float>& w, std::size_t blk) {
  double e = 0;
  for (std::size_t j = 0; j < 32; ++j) {
    const double r = static_cast<double>(x[blk * 32 + j]) - y[blk * 32 + j];
    e += w[(blk * 32 + j) % w.size()] * r * r;
  }
  return e;
}

TEST(GgufTool, ImatrixWeightsTheMseSearch) {
  temp_dir dir;
  const model m = make_model();
  write_model(dir / "m.gguf", m);
  std::vector<float> w(64);
  for (std::size_t i = 0; i < 64; ++i) w[i] = i % 7 == 0 ? 50.0f : 0.02f * static_cast<float>(i % 5 + 1);
  write_imatrix(dir / "im.gguf", "blk.0.attn_q.weight", w);
  auto r = run_tool(dir, "quantize m.gguf -o w.gguf --format mxfp4 --rule mse --imatrix im.gguf");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("--imatrix has no entry for tensor 'blk.0.attn_k.weight'; it is quantized unweighted"), std::string::npos) << r.err;
  ASSERT_EQ(run_tool(dir, "quantize m.gguf -o u.gguf --format mxfp4 --rule mse").code, 0);
  const read_back qw = read_gguf(dir / "w.gguf"), qu = read_gguf(dir / "u.gguf");
  EXPECT_EQ(qw.f.find("blockq.imatrix")->value.as_string(), "im.gguf");
  EXPECT_EQ(qw.f.find("blockq.rule")->value.as_string(), "mse");
  const model_tensor& t = m.tensors[2];
  ASSERT_EQ(t.name, "blk.0.attn_q.weight");
  const auto yw = ggml_mxfp4_decode(qw.tensor(t.name)), yu = ggml_mxfp4_decode(qu.tensor(t.name));
  // Per block the weighted search is exact: it never loses to the unweighted one on the weighted error.
  std::size_t better = 0;
  for (std::size_t blk = 0; blk < t.x.size() / 32; ++blk) {
    const double ew = weighted_sse(t.x, yw, w, blk), eu = weighted_sse(t.x, yu, w, blk);
    EXPECT_LE(ew, eu * (1 + 1e-9)) << blk;
    better += ew < eu * (1 - 1e-9);
  }
  EXPECT_GT(better, 0u);
  // Tensors the matrix does not cover: the unweighted rule's bytes.
  EXPECT_EQ(qw.tensor("blk.0.attn_k.weight"), qu.tensor("blk.0.attn_k.weight"));

  // The legacy .dat with the same weights (stored as weight x ncall) gives the same bytes.
  std::string dat;
  auto i32 = [&dat](std::int32_t v) { dat.append(reinterpret_cast<const char*>(&v), 4); };
  i32(1);
  const std::string name = "blk.0.attn_q.weight";
  i32(static_cast<std::int32_t>(name.size()));
  dat += name;
  i32(2);
  i32(64);
  for (float v : w) {
    const float s = v * 2.0f;
    dat.append(reinterpret_cast<const char*>(&s), 4);
  }
  tool_test::write_bytes(dir / "im.dat", dat);
  ASSERT_EQ(run_tool(dir, "quantize m.gguf -o d.gguf --format mxfp4 --rule hessian --imatrix im.dat").code, 0);
  EXPECT_EQ(read_gguf(dir / "d.gguf").tensor(name), qw.tensor(name));
}

// A 3-D expert tensor [2 experts, 4 rows, 64]: each expert's rows use its own row of weights.
TEST(GgufTool, ImatrixRowsPerExpert) {
  temp_dir dir;
  const model m = make_model();
  write_model(dir / "m.gguf", m);
  const std::string name = "blk.0.ffn_up_exps.weight";
  std::vector<float> w(128);
  for (std::size_t i = 0; i < 128; ++i) w[i] = (i < 64 ? i % 9 == 0 : i % 4 == 1) ? 30.0f : 0.05f;
  write_imatrix(dir / "im.gguf", name, w, 4.0f, 2);
  ASSERT_EQ(run_tool(dir, "quantize m.gguf -o w.gguf --format mxfp4 --rule hessian --imatrix im.gguf").code, 0);
  // The same, one expert's weights for both: expert 0's bytes agree, expert 1's need not.
  std::vector<float> w0(w.begin(), w.begin() + 64);
  write_imatrix(dir / "im0.gguf", name, w0);
  ASSERT_EQ(run_tool(dir, "quantize m.gguf -o w0.gguf --format mxfp4 --rule hessian --imatrix im0.gguf").code, 0);
  const std::string a = read_gguf(dir / "w.gguf").tensor(name), b = read_gguf(dir / "w0.gguf").tensor(name);
  const std::size_t half = a.size() / 2;
  EXPECT_EQ(a.substr(0, half), b.substr(0, half));
  EXPECT_NE(a.substr(half), b.substr(half));
  const model_tensor& t = m.tensors[6];
  ASSERT_EQ(t.name, name);
  const auto y = ggml_mxfp4_decode(a), y0 = ggml_mxfp4_decode(b);
  for (std::size_t blk = 8; blk < 16; ++blk) {  // expert 1: its own weights never lose to expert 0's
    const std::vector<float> w1(w.begin() + 64, w.end());
    EXPECT_LE(weighted_sse(t.x, y, w1, blk), weighted_sse(t.x, y0, w1, blk) * (1 + 1e-9)) << blk;
  }
}

// ggml's dequantization of Q4_0 / Q4_1 / Q8_0 blocks, transcribed: d (q - 8), d q + m, d q.
std::vector<float> ggml_decode(const std::string& b, std::uint32_t type) {
  std::vector<float> y;
  const std::size_t bs = type == gguf::type_q4_0 ? 18 : type == gguf::type_q4_1 ? 20 : 34;
  for (std::size_t at = 0; at < b.size(); at += bs) {
    std::uint16_t dh, mh = 0;
    std::memcpy(&dh, b.data() + at, 2);
    if (type == gguf::type_q4_1) std::memcpy(&mh, b.data() + at + 2, 2);
    const float d = f16(dh), m = f16(mh);
    std::vector<float> blk(32);
    for (std::size_t j = 0; j < 32; ++j) {
      if (type == gguf::type_q8_0) {
        blk[j] = d * static_cast<float>(static_cast<std::int8_t>(b[at + 2 + j]));
      } else {
        const auto q = static_cast<std::uint8_t>(b[at + (type == gguf::type_q4_1 ? 4 : 2) + j % 16]);
        const int c = j < 16 ? (q & 15) : (q >> 4);
        blk[j] = type == gguf::type_q4_1 ? d * static_cast<float>(c) + m : d * static_cast<float>(c - 8);
      }
    }
    y.insert(y.end(), blk.begin(), blk.end());
  }
  return y;
}

// The searches (ggml_search.hpp) start from ggml's block and keep it unless they find a
// better one: per block never worse than the default, on the (weighted) error.
TEST(GgufTool, SearchRulesNeverLoseToGgmlsBlocks) {
  temp_dir dir;
  const model m = make_model();
  write_model(dir / "m.gguf", m);
  const model_tensor& t = m.tensors[2];
  std::vector<float> w(64);
  for (std::size_t i = 0; i < 64; ++i) w[i] = i % 5 == 0 ? 20.0f : 0.1f;
  write_imatrix(dir / "im.gguf", t.name, w);
  const std::vector<float> ones(64, 1.0f);
  for (const auto& [fmt, type] : {std::pair{"q4_0", gguf::type_q4_0}, {"q4_1", gguf::type_q4_1}, {"q8_0", gguf::type_q8_0}}) {
    SCOPED_TRACE(fmt);
    ASSERT_EQ(run_tool(dir, std::string("quantize m.gguf -o d.gguf --format ") + fmt).code, 0);
    ASSERT_EQ(run_tool(dir, std::string("quantize m.gguf -o s.gguf --format ") + fmt + " --rule mse").code, 0);
    const auto r = run_tool(dir, std::string("quantize m.gguf -o h.gguf --format ") + fmt + " --rule hessian --imatrix im.gguf");
    ASSERT_EQ(r.code, 0) << r.err;
    const read_back d = read_gguf(dir / "d.gguf"), s = read_gguf(dir / "s.gguf"), h = read_gguf(dir / "h.gguf");
    EXPECT_EQ(s.f.find("blockq.rule")->value.as_string(), "mse");
    EXPECT_EQ(s.f.find("blockq.ties")->value.as_string(), "ggml");
    EXPECT_EQ(s.info(t.name)->type, type);
    const auto yd = ggml_decode(d.tensor(t.name), type), ys = ggml_decode(s.tensor(t.name), type), yh = ggml_decode(h.tensor(t.name), type);
    std::size_t better = 0;
    for (std::size_t blk = 0; blk < t.x.size() / 32; ++blk) {
      if (!std::isfinite(weighted_sse(t.x, yd, ones, blk))) continue;  // (no such block here: a guard)
      EXPECT_LE(weighted_sse(t.x, ys, ones, blk), weighted_sse(t.x, yd, ones, blk) * (1 + 1e-12)) << blk;
      EXPECT_LE(weighted_sse(t.x, yh, w, blk), weighted_sse(t.x, yd, w, blk) * (1 + 1e-12)) << blk;
      better += weighted_sse(t.x, ys, ones, blk) < weighted_sse(t.x, yd, ones, blk);
    }
    EXPECT_GT(better, 0u);
  }
}

TEST(GgufTool, ImatrixOfAnotherModelIsAnError) {
  temp_dir dir;
  write_model(dir / "m.gguf", make_model());
  write_imatrix(dir / "im.gguf", "blk.0.attn_q.weight", std::vector<float>(96, 1.0f));
  const auto r = run_tool(dir, "quantize m.gguf -o w.gguf --format mxfp4 --rule mse --imatrix im.gguf");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("has 96 weights but the tensor has rows of 64"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "w.gguf"));
}

// --- bad input --------------------------------------------------------------------

TEST(GgufTool, MalformedInputsAreOneLineErrorsAndNoOutput) {
  temp_dir dir;
  write_model(dir / "m.gguf", make_model());
  const std::string good = tool_test::read_bytes(dir / "m.gguf");
  std::string dup_key = good;  // the second key renamed to the first ("general.architecture")
  {
    const std::string a = "general.architecture", b = "general.file_type";
    const auto at = dup_key.find(b);
    ASSERT_NE(at, std::string::npos);
    // Same length needed: rewrite the length field and the key.
    std::uint64_t n = a.size();
    std::string rebuilt = dup_key.substr(0, at - 8);
    rebuilt.append(reinterpret_cast<const char*>(&n), 8);
    rebuilt += a;
    rebuilt += dup_key.substr(at + b.size());
    dup_key = rebuilt;
  }
  std::string bad_type = good;
  {
    const auto at = bad_type.find("blk.0.attn_q.weight");
    // name, n_dims (4), ne (2 x 8), then the type
    const std::uint32_t t = 77;
    std::memcpy(bad_type.data() + at + 19 + 4 + 16, &t, 4);
  }
  const struct {
    std::string name, bytes, message;
  } cases[] = {
      {"truncated", good.substr(0, good.size() - 100), "past the end"},
      {"header_only", good.substr(0, 40), "more than the file can hold"},
      {"dup_key", dup_key, "duplicate key 'general.architecture'"},
      {"bad_type", bad_type, "unknown ggml type 77"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    tool_test::write_bytes(dir / (c.name + ".gguf"), c.bytes);
    for (const std::string& cmd : {"quantize " + c.name + ".gguf -o out.gguf --format q4_0", "dequantize " + c.name + ".gguf -o out.gguf",
                                  "report " + c.name + ".gguf"}) {
      const auto r = run_tool(dir, cmd);
      EXPECT_EQ(r.code, 1) << cmd;
      EXPECT_EQ(r.err.rfind("blockq: error: ", 0), 0u) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
      EXPECT_FALSE(std::filesystem::exists(dir / "out.gguf"));
    }
  }
  // Options a GGUF output refuses.
  for (const std::string cmd : {"quantize m.gguf -o out.gguf --format nvfp4", "quantize m.gguf -o out.gguf --format q4_0 --ties even",
                                "quantize m.gguf -o out.gguf --format q4_0 --rule absmax", "quantize m.gguf -o out.gguf --format mxfp4 --rule lsq",
                                "quantize m.gguf -o out.gguf --format q8_0 --rule hessian --hessian m.gguf",
                                "quantize m.gguf -o out.gguf --format q8_0 --block 16", "quantize m.gguf -o out.gguf --format mxfp4 --rule hessian"}) {
    const auto r = run_tool(dir, cmd);
    EXPECT_EQ(r.code, 1) << cmd << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "out.gguf"));
  }
}

}  // namespace

namespace {

// A safetensors model takes the importance matrix too (rule hessian, the diagonal
// of llama.cpp's imatrix): with all weights equal it is the plain mse search.
TEST(GgufTool, ImatrixForASafetensorsInput) {
  temp_dir dir;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(8 * 64);
  for (float& v : x) v = normal(rng);
  tool_test::write_safetensors(dir / "m.safetensors", {{"w", "F32", {8, 64}, tool_test::float_bytes(x)}});
  write_imatrix(dir / "ones.gguf", "w", std::vector<float>(64, 1.0f));
  std::vector<float> w(64);
  for (std::size_t i = 0; i < 64; ++i) w[i] = i < 8 ? 100.0f : 0.01f;
  write_imatrix(dir / "skew.gguf", "w", w);
  ASSERT_EQ(run_tool(dir, "quantize m.safetensors -o mse.safetensors --format mxfp4 --rule mse").code, 0);
  auto r = run_tool(dir, "quantize m.safetensors -o ones.safetensors --format mxfp4 --rule hessian --imatrix ones.gguf");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(run_tool(dir, "quantize m.safetensors -o skew.safetensors --format mxfp4 --rule hessian --imatrix skew.gguf").code, 0);
  const std::string mse = tool_test::read_bytes(dir / "mse.safetensors"), ones = tool_test::read_bytes(dir / "ones.safetensors"),
                    skew = tool_test::read_bytes(dir / "skew.safetensors");
  // The data sections (the metadata names the rule).
  EXPECT_EQ(mse.substr(mse.size() - 8 * 64 / 2 - 8 * 2), ones.substr(ones.size() - 8 * 64 / 2 - 8 * 2));
  EXPECT_NE(skew.substr(skew.size() - 8 * 64 / 2 - 8 * 2), ones.substr(ones.size() - 8 * 64 / 2 - 8 * 2));
  // A tensor the matrix does not cover cannot take rule hessian.
  write_imatrix(dir / "other.gguf", "v", std::vector<float>(64, 1.0f));
  r = run_tool(dir, "quantize m.safetensors -o o.safetensors --format mxfp4 --rule hessian --imatrix other.gguf");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no entry for tensor 'w'"), std::string::npos) << r.err;
  r = run_tool(dir, "quantize m.safetensors -o o.safetensors --format mxfp4 --imatrix ones.gguf");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--imatrix is used by --rule hessian"), std::string::npos) << r.err;
}

}  // namespace
