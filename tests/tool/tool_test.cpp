// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of the blockq tool: it runs on files written here, and
// its outputs are read back and compared with the library's own results.
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "blockq/blockq.hpp"
#include "blockq/search/hessian.hpp"
#include "blockq/version.hpp"
#include "files.hpp"
#include "safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tool_test;
using blockq_tool::dtype;
using blockq_tool::shape_t;

// ------------------------------------------------------------------ helpers

std::vector<float> normal_floats(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> x(n);
  for (float& v : x) v = d(g);
  return x;
}

// The floats a 16-bit input holds, and its bytes.
std::vector<std::uint8_t> to_half_bytes(const std::vector<float>& x, bool bf16, std::vector<float>& rounded) {
  std::vector<std::uint8_t> b(x.size() * 2);
  rounded.resize(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::uint16_t bits = bf16 ? blockq::bfloat16::from_float(x[i]).bits : blockq::float16::from_float(x[i]).bits;
    std::memcpy(b.data() + 2 * i, &bits, 2);
    rounded[i] = bf16 ? blockq::bfloat16::from_bits(bits).to_float() : blockq::float16::from_bits(bits).to_float();
  }
  return b;
}

// A whole output file, read back.
struct output {
  std::string bytes;
  blockq_tool::safetensors_contents c;

  explicit output(const fs::path& p) : bytes(read_bytes(p)) {
    c = blockq_tool::parse_safetensors({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
  }
  output(const output&) = delete;
  const blockq_tool::tensor_view& at(const std::string& name) const {
    for (const auto& t : c.tensors)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }
  bool has(const std::string& name) const {
    for (const auto& t : c.tensors)
      if (t.name == name) return true;
    return false;
  }
  std::string meta(const std::string& k) const {
    for (const auto& [key, v] : c.metadata)
      if (key == k) return v;
    return "";
  }
  std::vector<std::uint8_t> u8(const std::string& name) const {
    const auto& t = at(name);
    return {t.bytes.begin(), t.bytes.end()};
  }
  std::vector<float> f32(const std::string& name) const {
    const auto& t = at(name);
    EXPECT_EQ(t.type, dtype::F32) << name;
    std::vector<float> v(t.bytes.size() / 4);
    std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
    return v;
  }
};

void expect_same_floats(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &want[i], 4) != 0 && !(std::isnan(got[i]) && std::isnan(want[i])))
      FAIL() << what << ": element " << i << " is " << got[i] << ", expected " << want[i];
}

// The bytes of a tensor's parts and its dequantized values as the library
// computes them; x is [rows, k] row-major.
struct expected {
  std::map<std::string, std::vector<std::uint8_t>> parts;  // by suffix ("_blocks", "" ...)
  std::map<std::string, shape_t> shapes;
  std::map<std::string, dtype> types;
  std::vector<float> dequantized;
};

template <class T>
std::vector<std::uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<std::uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Per-row nibble packing (rows of k codes), as SPEC §8 lays out _codes.
std::vector<std::uint8_t> pack_rows(const std::vector<std::uint8_t>& codes, std::size_t k, int bits) {
  if (bits > 4) return codes;
  const std::size_t rows = codes.size() / k, rb = (k + 1) / 2;
  std::vector<std::uint8_t> out(rows * rb);
  for (std::size_t r = 0; r < rows; ++r)
    blockq::pack_nibbles(std::span<const std::uint8_t>(codes).subspan(r * k, k), std::span<std::uint8_t>(out).subspan(r * rb, rb));
  return out;
}

shape_t lead(const shape_t& s, std::initializer_list<std::uint64_t> tail) {
  shape_t o(s.begin(), s.end() - 1);
  o.insert(o.end(), tail);
  return o;
}

template <class Element>
expected expect_mx(const std::vector<float>& x, const shape_t& shape, std::size_t block, bool ggml = false,
                   blockq::tie_mode ties = blockq::tie_mode::even) {
  const blockq::mx_quantizer<Element> q({block, blockq::scale_rule::ocp, ties});
  const auto t = q.quantize(x);
  expected e;
  const std::uint64_t k = shape.back();
  e.dequantized = q.dequantize(t);
  if (ggml) {
    std::vector<std::uint8_t> g(x.size() / 32 * 17);
    blockq::pack_ggml_mxfp4(t.codes, t.scales, g);
    // What the file holds decodes: the ggml layout stores zero as code 0 (never -0, SPEC §8).
    std::vector<std::uint8_t> codes(x.size()), scales(x.size() / 32);
    blockq::unpack_ggml_mxfp4(g, codes, scales);
    e.dequantized.resize(x.size());
    q.dequantize(codes, scales, e.dequantized);
    e.parts[""] = g;
    e.shapes[""] = lead(shape, {k / 32, 17});
    e.types[""] = dtype::U8;
    return e;
  }
  e.parts["_blocks"] = Element::bits <= 4 ? blockq::pack_nibbles(t.codes) : t.codes;
  e.shapes["_blocks"] = lead(shape, {k / block, Element::bits <= 4 ? block / 2 : block});
  e.parts["_scales"] = t.scales;
  e.shapes["_scales"] = lead(shape, {k / block});
  e.types["_blocks"] = e.types["_scales"] = dtype::U8;
  return e;
}

expected expect_nvfp4(const std::vector<float>& x, const shape_t& shape) {
  const blockq::nvfp4_quantizer<> q;
  const auto t = q.quantize(x);
  expected e;
  const std::uint64_t k = shape.back();
  e.parts[""] = blockq::pack_nibbles(t.codes);
  e.shapes[""] = lead(shape, {k / 2});
  e.types[""] = dtype::U8;
  e.parts["_scale"] = t.scales;
  e.shapes["_scale"] = lead(shape, {k / 16});
  e.types["_scale"] = dtype::F8_E4M3;
  e.parts["_scale_2"] = as_bytes(std::vector<float>{t.tensor_scale});
  e.shapes["_scale_2"] = {};
  e.types["_scale_2"] = dtype::F32;
  e.dequantized = q.dequantize(t);
  return e;
}

expected expect_fp4(const std::vector<float>& x, const shape_t& shape, std::size_t block) {
  const blockq::fp4_quantizer<> q({block, blockq::scale_rule::absmax, blockq::tie_mode::even});
  const auto t = q.quantize(x);
  expected e;
  const std::uint64_t k = shape.back();
  e.parts["_codes"] = pack_rows(t.codes, k, 4);
  e.shapes["_codes"] = lead(shape, {(k + 1) / 2});
  e.types["_codes"] = dtype::U8;
  e.parts["_scales"] = as_bytes(t.scales);
  e.shapes["_scales"] = lead(shape, {k / block});
  e.types["_scales"] = dtype::F32;
  e.dequantized = q.dequantize(t);
  return e;
}

expected expect_int(const std::vector<float>& x, const shape_t& shape, int bits, bool symmetric, std::size_t block,
                    std::optional<blockq::scale_rule> rule = {}) {
  const blockq::uniform_quantizer<> q({bits, symmetric, block, rule});
  const auto t = q.quantize(x);
  expected e;
  const std::uint64_t k = shape.back();
  e.parts["_codes"] = pack_rows(t.codes, k, bits);
  e.shapes["_codes"] = lead(shape, {bits <= 4 ? (k + 1) / 2 : k});
  e.types["_codes"] = dtype::U8;
  e.parts["_scales"] = as_bytes(t.scales);
  e.shapes["_scales"] = lead(shape, {k / block});
  e.types["_scales"] = dtype::F32;
  if (!symmetric) {
    e.parts["_mins"] = as_bytes(t.mins);
    e.shapes["_mins"] = lead(shape, {k / block});
    e.types["_mins"] = dtype::F32;
  }
  e.dequantized = q.dequantize(t);
  return e;
}

expected expect_format(const std::string& f, const std::vector<float>& x, const shape_t& shape) {
  if (f == "mxfp4") return expect_mx<blockq::e2m1>(x, shape, 32);
  if (f == "mxfp6_e2m3") return expect_mx<blockq::e2m3>(x, shape, 32);
  if (f == "mxfp6_e3m2") return expect_mx<blockq::e3m2>(x, shape, 32);
  if (f == "mxfp8_e4m3") return expect_mx<blockq::e4m3>(x, shape, 32);
  if (f == "mxfp8_e5m2") return expect_mx<blockq::e5m2>(x, shape, 32);
  if (f == "mxint8") return expect_mx<blockq::int8_mx>(x, shape, 32);
  if (f == "nvfp4") return expect_nvfp4(x, shape);
  if (f == "fp4") return expect_fp4(x, shape, 32);
  if (f.rfind("uint", 0) == 0) return expect_int(x, shape, std::stoi(f.substr(4)), false, 32);
  return expect_int(x, shape, std::stoi(f.substr(3)), true, 32);
}

void check_parts(const output& o, const std::string& name, const expected& e) {
  for (const auto& [suffix, bytes] : e.parts) {
    const std::string n = name + suffix;
    ASSERT_TRUE(o.has(n)) << n;
    const auto& t = o.at(n);
    EXPECT_EQ(t.type, e.types.at(suffix)) << n;
    EXPECT_EQ(t.shape, e.shapes.at(suffix)) << n;
    EXPECT_TRUE(o.u8(n) == bytes) << n << " differs from the library's bytes";
  }
}

const std::vector<std::string> all_formats{"mxfp4", "nvfp4", "fp4", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp8_e4m3", "mxfp8_e5m2",
                                           "mxint8", "int2", "int3", "int4", "int5", "int6", "int7", "int8",
                                           "uint2", "uint3", "uint4", "uint5", "uint6", "uint7", "uint8"};

// ------------------------------------------------------------------ every format, every input dtype

struct input_case {
  std::string dtype;  // F32, F16, BF16
};

class EveryFormat : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(EveryFormat, CodesScalesAndDequantizedValuesAreTheLibrarys) {
  const auto& [format, dt] = GetParam();
  temp_dir dir;
  // A rank-3 weight, a rank-2 weight, a bias (rank 1: copied), an integer
  // tensor (copied) and a weight whose last dimension is not a multiple of the
  // block (copied with a warning).
  const shape_t s3{3, 2, 64}, s2{8, 96}, sb{64}, sodd{4, 48};
  std::vector<float> x3 = normal_floats(3 * 2 * 64, 11, 0.5f), x2 = normal_floats(8 * 96, 12, 3.0f),
                     xb = normal_floats(64, 13), xodd = normal_floats(4 * 48, 14);
  x2[5] = 0.0f;
  x2[6] = -0.0f;
  auto encode = [&](std::vector<float>& x) {
    if (dt == "F32") return float_bytes(x);
    std::vector<float> rounded;
    auto b = to_half_bytes(x, dt == "BF16", rounded);
    x = rounded;
    return b;
  };
  std::vector<raw_tensor> in{{"layer.w3", dt, s3, encode(x3)},
                             {"layer.bias", dt, sb, encode(xb)},
                             {"layer.w2", dt, s2, encode(x2)},
                             {"ids", "I64", {3}, std::vector<std::uint8_t>(24, 7)},
                             {"odd", dt, sodd, encode(xodd)}};
  write_safetensors(dir / "in.safetensors", in, R"({"format":"pt"})");

  const auto r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format " + format + " --threads 2");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::size_t block = format == "nvfp4" ? 16 : 32;
  if (block == 32) {
    EXPECT_NE(r.err.find("'odd' [4, 48]"), std::string::npos) << r.err;
  }
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"in.safetensors", "q.safetensors"}));
  {
    const output q(dir / "q.safetensors");
    EXPECT_EQ(q.meta("format"), "pt");
    EXPECT_EQ(q.meta("blockq.format"), format);
    EXPECT_EQ(q.meta("blockq.block"), std::to_string(block));
    EXPECT_EQ(q.meta("blockq.version"), BLOCKQ_VERSION_STRING);
    check_parts(q, "layer.w3", expect_format(format, x3, s3));
    check_parts(q, "layer.w2", expect_format(format, x2, s2));
    // Copies are byte for byte.
    for (const auto& t : in) {
      if (t.name == "layer.w3" || t.name == "layer.w2" || (t.name == "odd" && block == 16)) continue;
      ASSERT_TRUE(q.has(t.name)) << t.name;
      EXPECT_EQ(q.at(t.name).shape, t.shape);
      EXPECT_EQ(q.u8(t.name), t.bytes) << t.name;
    }
  }

  const auto d = run_tool(dir, "dequantize q.safetensors -o d.safetensors");
  ASSERT_EQ(d.code, 0) << d.err;
  const output o(dir / "d.safetensors");
  EXPECT_EQ(o.c.tensors.size(), in.size());
  EXPECT_EQ(o.meta("format"), "pt");
  EXPECT_EQ(o.meta("blockq.format"), "");
  EXPECT_EQ(o.at("layer.w3").shape, s3);
  EXPECT_EQ(o.at("layer.w2").shape, s2);
  expect_same_floats(o.f32("layer.w3"), expect_format(format, x3, s3).dequantized, "layer.w3");
  expect_same_floats(o.f32("layer.w2"), expect_format(format, x2, s2).dequantized, "layer.w2");
  if (block == 16) {
    expect_same_floats(o.f32("odd"), expect_format(format, xodd, sodd).dequantized, "odd");
  } else {
    EXPECT_EQ(o.u8("odd"), in[4].bytes);
  }
  EXPECT_EQ(o.u8("ids"), in[3].bytes);
  EXPECT_EQ(o.u8("layer.bias"), in[1].bytes);
}

INSTANTIATE_TEST_SUITE_P(Tool, EveryFormat,
                         ::testing::Combine(::testing::ValuesIn(all_formats), ::testing::Values("F32", "F16", "BF16")),
                         [](const auto& p) { return std::get<0>(p.param) + "_" + std::get<1>(p.param); });

// ------------------------------------------------------------------ npy inputs

TEST(Npy, Float32AndFloat16TensorsAreNamedAfterTheStem) {
  temp_dir dir;
  std::vector<float> x = normal_floats(4 * 64, 21);
  write_npy(dir / "weight.npy", "<f4", {4, 64}, float_bytes(x));
  auto r = run_tool(dir, "quantize weight.npy -o q.safetensors --format nvfp4");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    const output q(dir / "q.safetensors");
    check_parts(q, "weight", expect_nvfp4(x, {4, 64}));
  }
  ASSERT_EQ(run_tool(dir, "dequantize q.safetensors -o d.safetensors").code, 0);
  expect_same_floats(output(dir / "d.safetensors").f32("weight"), expect_nvfp4(x, {4, 64}).dequantized, "weight");

  std::vector<float> h;
  const auto hb = to_half_bytes(normal_floats(2 * 32, 22), false, h);
  write_npy(dir / "act.npy", "<f2", {2, 32}, hb);
  r = run_tool(dir, "quantize act.npy -o q2.safetensors --format int4");
  ASSERT_EQ(r.code, 0) << r.err;
  check_parts(output(dir / "q2.safetensors"), "act", expect_int(h, {2, 32}, 4, true, 32));
}

// ------------------------------------------------------------------ options

TEST(Options, RulesTiesBlocksAndLayouts) {
  temp_dir dir;
  const shape_t s{4, 96};
  std::vector<float> x = normal_floats(4 * 96, 31);
  // Exact ties: 0.25 at scale 1 sits between E2M1 0 and 0.5... make a block of such values.
  for (std::size_t i = 0; i < 32; ++i) x[i] = (i % 2 ? 1.25f : 2.5f) * (i % 3 ? 1.0f : -1.0f);
  x[7] = 6.0f;
  write_safetensors(dir / "in.safetensors", {{"w", "F32", s, float_bytes(x)}});

  struct mx_case {
    std::string args;
    blockq::scale_rule rule;
    blockq::tie_mode ties;
    std::size_t block;
  };
  for (const mx_case& c : {mx_case{"--rule ceil", blockq::scale_rule::ceil, blockq::tie_mode::even, 32},
                           mx_case{"--rule floor --ties toward_zero", blockq::scale_rule::floor, blockq::tie_mode::toward_zero, 32},
                           mx_case{"--ties away --block 16", blockq::scale_rule::ocp, blockq::tie_mode::away, 16}}) {
    const auto r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format mxfp4 " + c.args);
    ASSERT_EQ(r.code, 0) << c.args << ": " << r.err;
    const blockq::mxfp4_quantizer q({c.block, c.rule, c.ties});
    const auto t = q.quantize(x);
    const output o(dir / "q.safetensors");
    EXPECT_EQ(o.u8("w_blocks"), blockq::pack_nibbles(t.codes)) << c.args;
    EXPECT_EQ(o.u8("w_scales"), t.scales) << c.args;
    EXPECT_EQ(o.at("w_blocks").shape, (shape_t{4, 96 / c.block, c.block / 2}));
    EXPECT_EQ(o.meta("blockq.rule"), blockq::to_string(c.rule));
    EXPECT_EQ(o.meta("blockq.ties"), blockq::to_string(c.ties));
  }

  // ggml layout: one U8 tensor [4, 3, 17] under the weight's own name.
  auto r = run_tool(dir, "quantize in.safetensors -o g.safetensors --format mxfp4 --layout ggml --ties toward_zero");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    const output o(dir / "g.safetensors");
    check_parts(o, "w", expect_mx<blockq::e2m1>(x, s, 32, true, blockq::tie_mode::toward_zero));
    EXPECT_EQ(o.meta("blockq.layout"), "ggml");
  }
  ASSERT_EQ(run_tool(dir, "dequantize g.safetensors -o gd.safetensors").code, 0);
  expect_same_floats(output(dir / "gd.safetensors").f32("w"),
                     expect_mx<blockq::e2m1>(x, s, 32, true, blockq::tie_mode::toward_zero).dequantized, "ggml");

  // Integer rules and an odd block with an odd row length (nibbles packed per row).
  r = run_tool(dir, "quantize in.safetensors -o s.safetensors --format int4 --rule signed_max");
  ASSERT_EQ(r.code, 0) << r.err;
  check_parts(output(dir / "s.safetensors"), "w", expect_int(x, s, 4, true, 32, blockq::scale_rule::signed_max));
  std::vector<float> y = normal_floats(3 * 9, 32);
  write_safetensors(dir / "odd.safetensors", {{"v", "F32", {3, 9}, float_bytes(y)}});
  r = run_tool(dir, "quantize odd.safetensors -o o.safetensors --format uint3 --block 3");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    const output o(dir / "o.safetensors");
    const auto e = expect_int(y, {3, 9}, 3, false, 3);
    check_parts(o, "v", e);
    EXPECT_EQ(o.at("v_codes").shape, (shape_t{3, 5}));
  }
  ASSERT_EQ(run_tool(dir, "dequantize o.safetensors -o od.safetensors").code, 0);
  expect_same_floats(output(dir / "od.safetensors").f32("v"), expect_int(y, {3, 9}, 3, false, 3).dequantized, "uint3");
}

TEST(Options, TensorsRegexSelects) {
  temp_dir dir;
  const auto a = normal_floats(64, 41), b = normal_floats(2 * 32, 42);
  write_safetensors(dir / "in.safetensors", {{"norm.weight", "F32", {64}, float_bytes(a)},
                                             {"mlp.weight", "F32", {2, 32}, float_bytes(b)}});
  // Default: the rank-1 tensor is left alone.
  auto r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format int8");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    const output o(dir / "q.safetensors");
    EXPECT_TRUE(o.has("norm.weight"));
    EXPECT_TRUE(o.has("mlp.weight_codes"));
  }
  // A regex selects by search, rank 1 included.
  r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format int8 --tensors 'norm'");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    const output o(dir / "q.safetensors");
    EXPECT_TRUE(o.has("norm.weight_codes"));
    EXPECT_EQ(o.at("norm.weight_codes").shape, (shape_t{64}));
    EXPECT_TRUE(o.has("mlp.weight"));
    check_parts(o, "norm.weight", expect_int(a, {64}, 8, true, 32));
  }
  r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format int8 --tensors 'nothing'");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.err.find("matches no tensor"), std::string::npos) << r.err;
}

TEST(Options, ThreadCountDoesNotChangeTheBytes) {
  temp_dir dir;
  std::vector<raw_tensor> in;
  for (int i = 0; i < 5; ++i) in.push_back({"t" + std::to_string(i), "F32", {37, 256}, float_bytes(normal_floats(37 * 256, 50 + i))});
  write_safetensors(dir / "in.safetensors", in);
  for (const std::string f : {"mxfp4", "nvfp4", "uint4"}) {
    ASSERT_EQ(run_tool(dir, "quantize in.safetensors -o a.safetensors --threads 1 --format " + f).code, 0);
    ASSERT_EQ(run_tool(dir, "quantize in.safetensors -o b.safetensors --threads 2 --format " + f).code, 0);
    ASSERT_EQ(run_tool(dir, "quantize in.safetensors -o c.safetensors --threads 7 --format " + f).code, 0);
    EXPECT_EQ(read_bytes(dir / "a.safetensors"), read_bytes(dir / "b.safetensors")) << f;
    EXPECT_EQ(read_bytes(dir / "a.safetensors"), read_bytes(dir / "c.safetensors")) << f;
  }
}

// ------------------------------------------------------------------ search rules

TEST(SearchRules, MseAndLsqAreTheLibrarys) {
  temp_dir dir;
  const shape_t s{6, 64};
  const std::vector<float> x = normal_floats(6 * 64, 91);
  write_safetensors(dir / "in.safetensors", {{"w", "F32", s, float_bytes(x)}});
  using blockq::scale_rule;
  auto run = [&](const std::string& args) {
    const auto r = run_tool(dir, "quantize in.safetensors -o q.safetensors " + args);
    EXPECT_EQ(r.code, 0) << args << ": " << r.err;
    return r.code == 0;
  };
  if (run("--format mxfp4 --rule mse")) {
    const blockq::mxfp4_quantizer q({32, scale_rule::mse, blockq::tie_mode::even});
    const auto t = q.quantize(x);
    const output o(dir / "q.safetensors");
    EXPECT_EQ(o.u8("w_blocks"), blockq::pack_nibbles(t.codes));
    EXPECT_EQ(o.u8("w_scales"), t.scales);
    EXPECT_EQ(o.meta("blockq.rule"), "mse");
  }
  if (run("--format nvfp4 --rule mse")) {
    const blockq::nvfp4_quantizer<> q({scale_rule::mse, blockq::tie_mode::even, true});
    const auto t = q.quantize(x);
    const output o(dir / "q.safetensors");
    EXPECT_EQ(o.u8("w"), blockq::pack_nibbles(t.codes));
    EXPECT_EQ(o.u8("w_scale"), t.scales);
  }
  for (const auto& [args, rule] : {std::pair<std::string, scale_rule>{"--format fp4 --rule lsq", scale_rule::lsq},
                                   {"--format fp4 --rule mse", scale_rule::mse}})
    if (run(args)) {
      const blockq::fp4_quantizer<> q({32, rule, blockq::tie_mode::even});
      const auto t = q.quantize(x);
      const output o(dir / "q.safetensors");
      EXPECT_EQ(o.u8("w_codes"), pack_rows(t.codes, 64, 4)) << args;
      EXPECT_EQ(o.u8("w_scales"), as_bytes(t.scales)) << args;
    }
  struct int_case {
    std::string args;
    int bits;
    bool symmetric;
    scale_rule rule;
  };
  for (const int_case& c : {int_case{"--format int4 --rule mse", 4, true, scale_rule::mse},
                            int_case{"--format int3 --rule lsq", 3, true, scale_rule::lsq},
                            int_case{"--format uint4 --rule lsq", 4, false, scale_rule::lsq},
                            int_case{"--format uint6 --rule mse", 6, false, scale_rule::mse}})
    if (run(c.args)) check_parts(output(dir / "q.safetensors"), "w", expect_int(x, s, c.bits, c.symmetric, 32, c.rule));
  // Dequantization does not depend on the rule.
  ASSERT_EQ(run_tool(dir, "dequantize q.safetensors -o d.safetensors").code, 0);
  expect_same_floats(output(dir / "d.safetensors").f32("w"), expect_int(x, s, 6, false, 32, scale_rule::mse).dequantized,
                     "uint6 mse");
}

TEST(SearchRules, HessianUsesTheActivations) {
  temp_dir dir;
  const shape_t s{8, 64};
  const std::vector<float> w = normal_floats(8 * 64, 101), u = normal_floats(8 * 32, 102);
  // Correlated activations [T = 24, K = 64]: a few shared directions plus noise.
  std::vector<float> acts = normal_floats(24 * 64, 103, 0.1f);
  const std::vector<float> dirs = normal_floats(3 * 64, 104);
  const std::vector<float> mix = normal_floats(24 * 3, 105);
  for (std::size_t t = 0; t < 24; ++t)
    for (std::size_t k = 0; k < 64; ++k)
      for (std::size_t d = 0; d < 3; ++d) acts[t * 64 + k] += mix[t * 3 + d] * dirs[d * 64 + k];
  write_safetensors(dir / "in.safetensors", {{"w", "F32", s, float_bytes(w)}, {"u", "F32", {8, 32}, float_bytes(u)}});
  // Activations in BF16 (converted exactly), one tensor per weight.
  std::vector<float> acts_bf16, u_acts_bf16;
  const auto ab = to_half_bytes(acts, true, acts_bf16);
  const auto ub = to_half_bytes(normal_floats(5 * 32, 106), true, u_acts_bf16);
  write_safetensors(dir / "acts.safetensors", {{"w", "BF16", {24, 64}, ab}, {"u", "BF16", {5, 32}, ub}});

  auto r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format mxfp4 --rule hessian --hessian acts.safetensors");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    const blockq::mxfp4_quantizer q({32, blockq::scale_rule::hessian, blockq::tie_mode::even});
    const auto t = q.quantize(w, blockq::block_hessians::from_activations(acts_bf16, 64, 32));
    const auto tu = q.quantize(u, blockq::block_hessians::from_activations(u_acts_bf16, 32, 32));
    const output o(dir / "q.safetensors");
    EXPECT_EQ(o.u8("w_blocks"), blockq::pack_nibbles(t.codes));
    EXPECT_EQ(o.u8("w_scales"), t.scales);
    EXPECT_EQ(o.u8("u_scales"), tu.scales);
    EXPECT_EQ(o.meta("blockq.rule"), "hessian");
    // The Hessian rule differs from plain ocp somewhere (else this test shows nothing).
    EXPECT_NE(t.scales, blockq::mxfp4_quantizer().quantize(w).scales);
  }
  r = run_tool(dir, "quantize in.safetensors -o g.safetensors --format mxfp4 --layout ggml --rule hessian --hessian acts.safetensors");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    const blockq::mxfp4_quantizer q({32, blockq::scale_rule::hessian, blockq::tie_mode::even});
    const auto t = q.quantize(w, blockq::block_hessians::from_activations(acts_bf16, 64, 32));
    std::vector<std::uint8_t> g(8 * 64 / 32 * 17);
    blockq::pack_ggml_mxfp4(t.codes, t.scales, g);
    EXPECT_EQ(output(dir / "g.safetensors").u8("w"), g);
  }
  r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format nvfp4 --rule hessian --hessian acts.safetensors");
  ASSERT_EQ(r.code, 0) << r.err;
  {
    const blockq::nvfp4_quantizer<> q({blockq::scale_rule::hessian, blockq::tie_mode::even, true});
    const auto t = q.quantize(w, blockq::block_hessians::from_activations(acts_bf16, 64, 16));
    const output o(dir / "q.safetensors");
    EXPECT_EQ(o.u8("w"), blockq::pack_nibbles(t.codes));
    EXPECT_EQ(o.u8("w_scale"), t.scales);
  }
}

// ------------------------------------------------------------------ exact header bytes

TEST(Header, HandCheckableBytes) {
  temp_dir dir;
  // Row 0 holds the E2M1 values 0, 0.5, ..., 6 (amax 6: scale 2^0, code 127);
  // row 1 the same times 4 (scale 2^2, code 129). Codes 0..7 in order, so the
  // packed bytes are 0x10 0x32 0x54 0x76, four times per row.
  const float v[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  std::vector<float> w(64);
  for (std::size_t i = 0; i < 32; ++i) {
    w[i] = v[i % 8];
    w[32 + i] = 4 * v[i % 8];
  }
  write_safetensors(dir / "in.safetensors", {{"w", "F32", {2, 32}, float_bytes(w)}, {"b", "F32", {2}, float_bytes({1.0f, -1.0f})}});
  const auto r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format mxfp4");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string f = read_bytes(dir / "q.safetensors");
  const std::string json =
      std::string(R"({"__metadata__":{"blockq.format":"mxfp4","blockq.rule":"ocp","blockq.block":"32",)") +
      R"("blockq.ties":"even","blockq.layout":"ocp","blockq.version":")" BLOCKQ_VERSION_STRING R"(",)" +
      R"("blockq.tensors":"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,32]}}"},)" +
      R"("w_blocks":{"dtype":"U8","shape":[2,1,16],"data_offsets":[0,32]},)" +
      R"("w_scales":{"dtype":"U8","shape":[2,1],"data_offsets":[32,34]},)" +
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[34,42]}})";
  const std::size_t padded = (json.size() + 7) / 8 * 8;
  ASSERT_EQ(f.size(), 8 + padded + 42);
  std::uint64_t n = 0;
  std::memcpy(&n, f.data(), 8);
  EXPECT_EQ(n, padded);
  EXPECT_EQ(f.substr(8, json.size()), json);
  EXPECT_EQ(f.substr(8 + json.size(), padded - json.size()), std::string(padded - json.size(), ' '));
  std::string data;
  for (int row = 0; row < 2; ++row)
    for (int i = 0; i < 4; ++i) data += "\x10\x32\x54\x76";
  data += "\x7F\x81";
  data.append("\x00\x00\x80\x3F\x00\x00\x80\xBF", 8);
  EXPECT_EQ(f.substr(8 + padded), data);
}

// ------------------------------------------------------------------ NaN and Inf

TEST(NonFinite, QuantizedPerSpecWithAWarning) {
  temp_dir dir;
  std::vector<float> x = normal_floats(2 * 32, 61);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[40] = std::numeric_limits<float>::infinity();
  write_safetensors(dir / "in.safetensors", {{"w", "F32", {2, 32}, float_bytes(x)}});
  const auto r = run_tool(dir, "quantize in.safetensors -o q.safetensors --format mxfp4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: tensor 'w' has 2 NaN/Inf values"), std::string::npos) << r.err;
  const output o(dir / "q.safetensors");
  EXPECT_EQ(o.u8("w_scales"), (std::vector<std::uint8_t>{0xFF, 0xFF}));
  EXPECT_EQ(o.u8("w_blocks"), std::vector<std::uint8_t>(32, 0));
  ASSERT_EQ(run_tool(dir, "dequantize q.safetensors -o d.safetensors").code, 0);
  for (float v : output(dir / "d.safetensors").f32("w")) EXPECT_TRUE(std::isnan(v));
}

// ------------------------------------------------------------------ errors

// Runs the tool, expects failure with `message` in a one-line error, and no output or temporary file.
void expect_failure(const temp_dir& dir, const std::string& args, const std::string& message, int code = 1) {
  const auto before = dir.entries();
  const auto r = run_tool(dir, args);
  EXPECT_EQ(r.code, code) << args << "\n" << r.err;
  EXPECT_EQ(r.err.rfind("blockq: error: ", 0), 0u) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
  EXPECT_EQ(dir.entries(), before) << args;
}

class Errors : public ::testing::Test {
 protected:
  void write_raw(const std::string& name, std::uint64_t len, const std::string& header, const std::string& data) {
    write_bytes(dir / name, raw_file(len, header, data));
  }
  void write_header(const std::string& name, const std::string& header, const std::string& data) {
    write_raw(name, header.size(), header, data);
  }
  void quantize_fails(const std::string& file, const std::string& message) {
    expect_failure(dir, "quantize " + file + " -o out.safetensors --format mxfp4", message);
  }
  temp_dir dir;
};

TEST_F(Errors, MissingAndUnreadableFiles) {
  quantize_fails("missing.safetensors", "cannot open 'missing.safetensors'");
  fs::create_directory(dir / "folder.safetensors");
  quantize_fails("folder.safetensors", "is not a regular file");
}

TEST_F(Errors, TruncatedFileAndHeaderLengths) {
  write_bytes(dir / "short.safetensors", "abc");
  quantize_fails("short.safetensors", "too short");
  const std::string h = R"({"w":{"dtype":"F32","shape":[1,32],"data_offsets":[0,128]}})";
  write_raw("long.safetensors", 4096, h, std::string(128, '\0'));
  quantize_fails("long.safetensors", "runs past the end of the file");
  write_raw("huge.safetensors", std::uint64_t{1} << 62, h, std::string(128, '\0'));
  quantize_fails("huge.safetensors", "exceeds the limit");
  write_header("cut.safetensors", h, std::string(100, '\0'));
  quantize_fails("cut.safetensors", "run past the end of the data");
}

TEST_F(Errors, MalformedHeaders) {
  write_header("json.safetensors", R"({"w":{"dtype":"F32",)", "");
  quantize_fails("json.safetensors", "malformed JSON header");
  write_header("overlap.safetensors",
               R"({"a":{"dtype":"F32","shape":[1,32],"data_offsets":[0,128]},"b":{"dtype":"F32","shape":[1,32],"data_offsets":[64,192]}})",
               std::string(192, '\0'));
  quantize_fails("overlap.safetensors", "tensors 'a' and 'b' overlap");
  write_header("dtype.safetensors", R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", std::string(16, '\0'));
  quantize_fails("dtype.safetensors", "unknown dtype 'F128'");
  write_header("size.safetensors", R"({"w":{"dtype":"F32","shape":[2,32],"data_offsets":[0,128]}})", std::string(128, '\0'));
  quantize_fails("size.safetensors", "needs 256 bytes");
  write_header("overflow.safetensors", R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,128]}})",
               std::string(128, '\0'));
  quantize_fails("overflow.safetensors", "overflows");
  write_header("gap.safetensors", R"({"w":{"dtype":"F32","shape":[1,32],"data_offsets":[8,136]}})", std::string(136, '\0'));
  quantize_fails("gap.safetensors", "gap");
  // Binary junk in the header is shown without control characters.
  write_header("junk.safetensors", std::string("{\"\n\x01\x02", 5), "");
  quantize_fails("junk.safetensors", "malformed JSON header");
}

TEST_F(Errors, MalformedNpy) {
  write_bytes(dir / "bad.npy", std::string("\x93NUMPY\x01\x00\x40\x00{'descr': '<f4'", 25));
  quantize_fails("bad.npy", "runs past the end");
  write_npy(dir / "f8.npy", "<f8", {1, 32}, std::vector<std::uint8_t>(256));
  quantize_fails("f8.npy", "'<f8' is not supported");
  write_npy(dir / "trunc.npy", "<f4", {2, 32}, std::vector<std::uint8_t>(200));
  quantize_fails("trunc.npy", "truncated");
}

TEST_F(Errors, BadOptions) {
  write_safetensors(dir / "in.safetensors", {{"w", "F32", {1, 32}, float_bytes(normal_floats(32, 1))}});
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format mxfp3", "unknown format 'mxfp3'");
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format mxfp4 --rule best", "unknown rule 'best'");
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format mxfp4 --rule absmax",
                 "scale rule 'absmax' does not apply to MX formats");
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format int4 --rule ocp",
                 "scale rule 'ocp' does not apply to symmetric integer codes");
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format nvfp4 --block 32", "nvfp4 blocks are 16");
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format int4 --layout ggml", "applies to mxfp4 only");
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format mxfp4 --tensors '('", "invalid --tensors regex");
  expect_failure(dir, "quantize in.safetensors -o out.npy --format mxfp4", "must be a .safetensors file");
  expect_failure(dir, "quantize in.safetensors -o nowhere/out.safetensors --format mxfp4", "cannot create a file in 'nowhere'");
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format mxfp4 --ties up", "--ties", 2);
  expect_failure(dir, "quantize in.safetensors --format mxfp4", "--output is required", 2);
  expect_failure(dir, "frobnicate", "unknown command 'frobnicate'", 2);
  expect_failure(dir, "dequantize in.safetensors -o out.safetensors", "not written by blockq quantize");
  expect_failure(dir, "report --formats mxfp4,what", "unknown format 'what'");
}

TEST_F(Errors, DequantizeChecksTheParts) {
  std::vector<float> x = normal_floats(2 * 32, 71);
  write_safetensors(dir / "in.safetensors", {{"w", "F32", {2, 32}, float_bytes(x)}});
  ASSERT_EQ(run_tool(dir, "quantize in.safetensors -o q.safetensors --format fp4").code, 0);
  fs::remove(dir / "in.safetensors");
  // Rewrite q with w_scales dropped / reshaped, keeping the metadata.
  const output q(dir / "q.safetensors");
  std::string meta = "{";
  for (const auto& [k, v] : q.c.metadata) {
    std::string esc;
    for (char c : v) esc += c == '"' ? std::string("\\\"") : std::string(1, c);
    meta += (meta.size() > 1 ? "," : "") + ("\"" + k + "\":\"" + esc + "\"");
  }
  meta += "}";
  const auto codes = q.u8("w_codes");
  write_safetensors(dir / "missing.safetensors", {{"w_codes", "U8", {2, 16}, codes}}, meta);
  expect_failure(dir, "dequantize missing.safetensors -o out.safetensors", "part 'w_scales' is missing");
  write_safetensors(dir / "shape.safetensors", {{"w_codes", "U8", {2, 16}, codes}, {"w_scales", "F32", {1, 2}, q.u8("w_scales")}},
                    meta);
  expect_failure(dir, "dequantize shape.safetensors -o out.safetensors", "is F32 [1, 2], expected F32 [2, 1]");
}

TEST_F(Errors, AlreadyQuantizedInput) {
  write_safetensors(dir / "in.safetensors", {{"w", "F32", {1, 32}, float_bytes(normal_floats(32, 1))}});
  ASSERT_EQ(run_tool(dir, "quantize in.safetensors -o q.safetensors --format int4").code, 0);
  expect_failure(dir, "quantize q.safetensors -o out.safetensors --format int4", "already quantized");
}

TEST_F(Errors, HessianInputs) {
  write_safetensors(dir / "in.safetensors", {{"w", "F32", {8, 64}, float_bytes(normal_floats(8 * 64, 1))}});
  write_safetensors(dir / "narrow.safetensors", {{"w", "F32", {16, 32}, float_bytes(normal_floats(16 * 32, 2))}});
  write_safetensors(dir / "other.safetensors", {{"v", "F32", {16, 64}, float_bytes(normal_floats(16 * 64, 3))}});
  std::vector<float> bad = normal_floats(4 * 64, 4);
  bad[9] = std::numeric_limits<float>::quiet_NaN();
  write_safetensors(dir / "nan.safetensors", {{"w", "F32", {4, 64}, float_bytes(bad)}});
  const std::string q = "quantize in.safetensors -o out.safetensors --format mxfp4 ";
  expect_failure(dir, q + "--rule hessian --hessian narrow.safetensors",
                 "activations 'w' in narrow.safetensors have shape [16, 32] F32; expected floats of shape [T, 64] for the weight [8, 64]");
  expect_failure(dir, q + "--rule hessian --hessian other.safetensors", "other.safetensors has no activations for tensor 'w'");
  expect_failure(dir, q + "--rule hessian --hessian nan.safetensors", "activations 'w' in nan.safetensors have 1 NaN/Inf values");
  expect_failure(dir, q + "--rule hessian --hessian missing.safetensors", "cannot open 'missing.safetensors'");
  expect_failure(dir, q + "--rule hessian", "--rule hessian needs calibration activations");
  expect_failure(dir, q + "--hessian narrow.safetensors", "--hessian is used by --rule hessian only");
  expect_failure(dir, "quantize in.safetensors -o out.safetensors --format fp4 --rule hessian --hessian narrow.safetensors",
                 "scale rule 'hessian' does not apply to fp4");
}

// ------------------------------------------------------------------ report

TEST(Report, BuiltInSuiteIsQuickAndComplete) {
  temp_dir dir;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_tool(dir, "report");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT(secs, 30.0);  // a few seconds in a release build; sanitizer builds are slower
  for (const std::string s : {"normal", "laplace", "student_t3", "weights", "all 4 tensors together", "mxfp4", "nvfp4",
                              "fp4", "int4", "uint4", "int8", "SQNR dB"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  const auto c = run_tool(dir, "report --csv --formats mxfp4,int8 --rules default");
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(c.out.rfind("tensor,shape,format,rule,block,bits_per_element,mse,sqnr_db,max_abs_error,elements_per_second\n", 0), 0u);
  EXPECT_EQ(std::count(c.out.begin(), c.out.end(), '\n'), 1 + 5 * 2);
  EXPECT_NE(c.out.find("normal,128x1024,mxfp4,ocp,32,4.25,"), std::string::npos) << c.out;
}

TEST(Report, OnAFileMatchesTheLibrarysError) {
  temp_dir dir;
  const std::vector<float> x = normal_floats(4 * 64, 81);
  write_safetensors(dir / "in.safetensors", {{"w", "F32", {4, 64}, float_bytes(x)}});
  const auto r = run_tool(dir, "report in.safetensors --csv --formats nvfp4");
  ASSERT_EQ(r.code, 0) << r.err;
  const blockq::nvfp4_quantizer<> q;
  const auto e = blockq::compare(x, q.dequantize(q.quantize(x)));
  char want[128];
  std::snprintf(want, sizeof want, "w,4x64,nvfp4,absmax,16,%.6g,%.6e,%.4f,%.6e,", 4.5 + 32.0 / 256, e.mse, e.sqnr_db, e.max_abs);
  EXPECT_NE(r.out.find(want), std::string::npos) << r.out << "\nwant " << want;
}

// ------------------------------------------------------------------ grid

#if BLOCKQ_TOOL_WITH_GRID
TEST(Grid, NormalTableHasSpecValues) {
  temp_dir dir;
  const auto r = run_tool(dir, "grid --dist normal --bits 1-4 --csv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("grid,levels,scale,clip,mse,sqnr_db,iterations\n", 0), 0u) << r.out;
  // name -> (levels, scale, mse)
  std::map<std::string, std::tuple<int, double, double>> rows;
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    // CSV with quoted fields (a name may hold a comma).
    std::vector<std::string> f(1);
    bool quoted = false;
    for (char c : line) {
      if (c == '"')
        quoted = !quoted;
      else if (c == ',' && !quoted)
        f.emplace_back();
      else
        f.back() += c;
    }
    ASSERT_EQ(f.size(), 7u) << line;
    rows[f[0]] = {std::stoi(f[1]), std::stod(f[2]), std::stod(f[4])};
  }
  // SPEC §9's optima: the scale to 1e-7 relative (the MSE is flat there), the MSE to its printed digits.
  const std::vector<std::tuple<std::string, int, double, double>> spec{
      {"uniform 1-bit", 2, 0.7978845608, 0.3633802276},   {"uniform 2-bit", 4, 1.4935300123, 0.1188460504},
      {"uniform 3-bit", 8, 2.0510680733, 0.0374396594},   {"uniform 4-bit", 16, 2.5140046233, 0.0115428844},
      {"uniform 3-level", 3, 1.2240063779, 0.1901740392}, {"fp4 e2m1 (seed, ±0)", 16, 0.4870792262, 0.0126849041}};
  for (const auto& [name, levels, scale, mse] : spec) {
    ASSERT_TRUE(rows.count(name)) << name << "\n" << r.out;
    const auto& [l, a, e] = rows[name];
    EXPECT_EQ(l, levels) << name;
    EXPECT_NEAR(a, scale, 1e-7 * scale) << name;
    EXPECT_NEAR(e, mse, 1e-9 * mse + 6e-11) << name;  // SPEC rounds to 1e-10
  }
  const auto t = run_tool(dir, "grid --dist student_t:3 --bits 4");
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("uniform 4-bit"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("student_t:3"), std::string::npos) << t.out;
}

TEST_F(Errors, GridOptions) {
  expect_failure(dir, "grid --dist cauchy", "unknown distribution");
  expect_failure(dir, "grid --dist student_t:2", "student_t");
  expect_failure(dir, "grid --bits 9-2", "--bits must be A-B");
  expect_failure(dir, "grid --bits x", "--bits must be A-B");
}
#else
TEST_F(Errors, GridWithoutBoost) { expect_failure(dir, "grid", "built without Boost.Math"); }
#endif

}  // namespace
