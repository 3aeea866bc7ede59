// SPDX-License-Identifier: Apache-2.0
// End-to-end tests of `blockq quantize --method gptq` and `--rotate hadamard`: the tool's
// bytes equal the library's own GPTQ (blockq/gptq.hpp) and rotation (blockq/hadamard.hpp)
// for activations, a given Hessian and a name map; the bytes do not depend on --threads;
// dequantize returns the weight in its own basis; bad input fails with one line and no file.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "blockq/gptq.hpp"
#include "blockq/hadamard.hpp"
#include "blockq/pack.hpp"
#include "files.hpp"
#include "safetensors.hpp"

namespace {

using namespace tool_test;

std::vector<float> normal(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> x(n);
  for (float& v : x) v = d(g);
  return x;
}

// Correlated activations [t, k]: each channel mixes its neighbours.
std::vector<float> activations(std::size_t t, std::size_t k, std::uint64_t seed) {
  const auto z = normal(t * k, seed);
  std::vector<float> x(t * k);
  for (std::size_t r = 0; r < t; ++r)
    for (std::size_t c = 0; c < k; ++c)
      x[r * k + c] = z[r * k + c] + 0.8f * z[r * k + (c + 1) % k] + 0.5f * z[r * k + (c + 7) % k];
  return x;
}

struct file {
  std::string bytes;
  blockq_tool::safetensors_contents c;
  explicit file(const fs::path& p) : bytes(read_bytes(p)) {
    c = blockq_tool::parse_safetensors({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
  }
  std::vector<std::uint8_t> u8(const std::string& name) const {
    for (const auto& t : c.tensors)
      if (t.name == name) return {t.bytes.begin(), t.bytes.end()};
    ADD_FAILURE() << "no tensor " << name;
    return {};
  }
  std::vector<float> f32(const std::string& name) const {
    const auto b = u8(name);
    std::vector<float> v(b.size() / 4);
    std::memcpy(v.data(), b.data(), b.size());
    return v;
  }
  std::string meta(const std::string& k) const {
    for (const auto& [key, v] : c.metadata)
      if (key == k) return v;
    return "";
  }
};

constexpr std::size_t rows = 12, k = 64, tokens = 48;

class ToolGptq : public ::testing::Test {
 protected:
  temp_dir dir;
  std::vector<float> w = normal(rows * k, 1), u = normal(rows * k, 2), x = activations(tokens, k, 3);
  void SetUp() override {
    write_safetensors(dir / "in.safetensors", {{"w", "F32", {rows, k}, float_bytes(w)}, {"u", "F32", {rows, k}, float_bytes(u)}});
    write_safetensors(dir / "acts.safetensors", {{"w", "F32", {tokens, k}, float_bytes(x)}, {"u", "F32", {tokens, k}, float_bytes(x)}});
  }
  void run_ok(const std::string& args) {
    const auto r = run_tool(dir, args);
    ASSERT_EQ(r.code, 0) << args << "\n" << r.err;
  }
};

TEST_F(ToolGptq, Mxfp4EqualsTheLibrary) {
  run_ok("quantize in.safetensors -o q.safetensors --format mxfp4 --method gptq --hessian acts.safetensors --act-order --damp 0.05");
  const file o(dir / "q.safetensors");
  blockq::gptq_options opt;
  opt.act_order = true;
  opt.damp = 0.05;
  const blockq::mxfp4_quantizer q;
  for (const auto& [name, data] : {std::pair{"w", &w}, std::pair{"u", &u}}) {
    const auto g = blockq::gptq_quantize_activations(q, *data, k, x, opt);
    EXPECT_EQ(o.u8(std::string(name) + "_blocks"), blockq::pack_nibbles(g.tensor.codes)) << name;
    EXPECT_EQ(o.u8(std::string(name) + "_scales"), g.tensor.scales) << name;
  }
  EXPECT_EQ(o.meta("blockq.method"), "gptq");
  EXPECT_EQ(o.meta("blockq.act_order"), "true");
  EXPECT_EQ(std::stod(o.meta("blockq.damp")), 0.05);
  EXPECT_EQ(o.meta("blockq.rotation"), "none");
  // ggml's layout holds the same codes and scales.
  run_ok("quantize in.safetensors -o g.safetensors --format mxfp4 --layout ggml --method gptq --hessian acts.safetensors");
  const auto g = blockq::gptq_quantize_activations(q, w, k, x);
  std::vector<std::uint8_t> ggml(rows * k / 32 * 17);
  blockq::pack_ggml_mxfp4(g.tensor.codes, g.tensor.scales, ggml);
  EXPECT_EQ(file(dir / "g.safetensors").u8("w"), ggml);
}

TEST_F(ToolGptq, Nvfp4IntegersAndFp4EqualTheLibrary) {
  run_ok("quantize in.safetensors -o n.safetensors --format nvfp4 --rule hessian --method gptq --hessian acts.safetensors");
  {
    const file o(dir / "n.safetensors");
    const blockq::nvfp4_quantizer<> q({blockq::scale_rule::hessian, blockq::tie_mode::even, true});
    const auto g = blockq::gptq_quantize_activations(q, w, k, x);
    EXPECT_EQ(o.u8("w"), blockq::pack_nibbles(g.tensor.codes));
    EXPECT_EQ(o.u8("w_scale"), g.tensor.scales);
    EXPECT_EQ(o.f32("w_scale_2"), std::vector<float>{g.tensor.tensor_scale});
  }
  run_ok("quantize in.safetensors -o i.safetensors --format uint4 --rule lsq --method gptq --hessian acts.safetensors");
  {
    const file o(dir / "i.safetensors");
    const blockq::uniform_quantizer<> q({4, false, 32, blockq::scale_rule::lsq});
    const auto g = blockq::gptq_quantize_activations(q, w, k, x);
    EXPECT_EQ(o.u8("w_codes"), blockq::pack_nibbles(g.tensor.codes));
    EXPECT_EQ(o.f32("w_scales"), g.tensor.scales);
    EXPECT_EQ(o.f32("w_mins"), g.tensor.mins);
  }
  run_ok("quantize in.safetensors -o f.safetensors --format fp4 --method gptq --hessian acts.safetensors");
  {
    const file o(dir / "f.safetensors");
    const blockq::fp4_quantizer<> q;
    const auto g = blockq::gptq_quantize_activations(q, w, k, x);
    EXPECT_EQ(o.u8("w_codes"), blockq::pack_nibbles(g.tensor.codes));
    EXPECT_EQ(o.f32("w_scales"), g.tensor.scales);
  }
  run_ok("quantize in.safetensors -o e.safetensors --format mxfp8_e4m3 --method gptq --hessian acts.safetensors");
  {
    const blockq::mxfp8_e4m3_quantizer q;
    const auto g = blockq::gptq_quantize_activations(q, w, k, x);
    EXPECT_EQ(file(dir / "e.safetensors").u8("w_blocks"), g.tensor.codes);
  }
}

TEST_F(ToolGptq, BytesDoNotDependOnThreads) {
  std::vector<raw_tensor> many, acts;
  for (int i = 0; i < 6; ++i) {
    const std::string n = "t" + std::to_string(i);
    many.push_back({n, "F32", {rows, k}, float_bytes(normal(rows * k, 10 + i))});
    acts.push_back({n, "F32", {tokens, k}, float_bytes(activations(tokens, k, 20 + i))});
  }
  write_safetensors(dir / "many.safetensors", many);
  write_safetensors(dir / "many_acts.safetensors", acts);
  const std::string q = "quantize many.safetensors --format nvfp4 --method gptq --hessian many_acts.safetensors --rotate hadamard ";
  run_ok(q + "-o one.safetensors --threads 1");
  run_ok(q + "-o three.safetensors --threads 3");
  EXPECT_EQ(read_bytes(dir / "one.safetensors"), read_bytes(dir / "three.safetensors"));
}

TEST_F(ToolGptq, RotationQuantizesWRAndDequantizeReturnsWsBasis) {
  const blockq::block_rotation r(32);
  const blockq::mxfp4_quantizer q;
  // rtn: q.quantize(W R); dequantize: Q R^T.
  run_ok("quantize in.safetensors -o r.safetensors --format mxfp4 --rotate hadamard");
  {
    const file o(dir / "r.safetensors");
    const auto t = blockq::rotated_quantize(q, w, r);
    EXPECT_EQ(o.u8("w_blocks"), blockq::pack_nibbles(t.codes));
    EXPECT_EQ(o.u8("w_scales"), t.scales);
    EXPECT_EQ(o.meta("blockq.rotation"), "hadamard");
    EXPECT_EQ(o.meta("blockq.method"), "rtn");
    run_ok("dequantize r.safetensors -o rd.safetensors");
    EXPECT_EQ(file(dir / "rd.safetensors").f32("w"), blockq::rotated_dequantize(q, t, r));
  }
  // gptq: the library with options.rotation; the dequantized weight is closer to W in the
  // output-error sense than plain rounding.
  run_ok("quantize in.safetensors -o g.safetensors --format mxfp4 --rotate hadamard --method gptq --hessian acts.safetensors");
  blockq::gptq_options opt;
  opt.rotation = &r;
  const auto g = blockq::gptq_quantize_activations(q, w, k, x, opt);
  const file o(dir / "g.safetensors");
  EXPECT_EQ(o.u8("w_blocks"), blockq::pack_nibbles(g.tensor.codes));
  EXPECT_EQ(o.u8("w_scales"), g.tensor.scales);
  run_ok("dequantize g.safetensors -o gd.safetensors");
  const auto back = file(dir / "gd.safetensors").f32("w");
  EXPECT_EQ(back, blockq::rotated_dequantize(q, g.tensor, r));
  auto out_err = [&](const std::vector<float>& wq) {
    double s = 0;
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t i = 0; i < rows; ++i) {
        double o2 = 0;
        for (std::size_t c = 0; c < k; ++c) o2 += double(x[t * k + c]) * (double(w[i * k + c]) - wq[i * k + c]);
        s += o2 * o2;
      }
    return std::sqrt(s);
  };
  EXPECT_NEAR(out_err(back), g.result.output_error, 1e-6 * g.result.output_error);
  EXPECT_LT(out_err(back), out_err(q.dequantize(q.quantize(std::span<const float>(w)))));
}

TEST_F(ToolGptq, HessianMatrixAndNameMap) {
  // H given as a matrix [K, K] (F32) for "w"; "u" shares the activations of "w" through a map.
  const std::vector<double> hd = blockq::hessian_from_activations(x, k);
  const std::vector<float> hf(hd.begin(), hd.end());
  write_safetensors(dir / "h.safetensors", {{"w", "F32", {k, k}, float_bytes(hf)}, {"u", "F32", {k, k}, float_bytes(hf)}});
  run_ok("quantize in.safetensors -o m.safetensors --format int4 --method gptq --hessian h.safetensors --hessian-kind matrix");
  const blockq::uniform_quantizer<> q;
  const std::vector<double> hfd(hf.begin(), hf.end());
  const auto g = blockq::gptq_quantize(q, w, k, hfd);
  EXPECT_EQ(file(dir / "m.safetensors").u8("w_codes"), blockq::pack_nibbles(g.tensor.codes));
  EXPECT_EQ(file(dir / "m.safetensors").f32("w_scales"), g.tensor.scales);

  // rtn with rule hessian takes the diagonal blocks of a given H.
  run_ok("quantize in.safetensors -o rh.safetensors --format mxfp4 --rule hessian --hessian h.safetensors --hessian-kind matrix");
  {
    std::vector<double> blocks;
    for (std::size_t j = 0; j < k / 32; ++j)
      for (std::size_t p = 0; p < 32; ++p)
        for (std::size_t c = 0; c < 32; ++c) blocks.push_back(hf[(j * 32 + p) * k + j * 32 + c]);
    const blockq::mxfp4_quantizer qh({32, blockq::scale_rule::hessian, blockq::tie_mode::even});
    const auto t = qh.quantize(w, blockq::block_hessians::from_matrices(std::span<const double>(blocks), k, 32));
    EXPECT_EQ(file(dir / "rh.safetensors").u8("w_scales"), t.scales);
    EXPECT_EQ(file(dir / "rh.safetensors").u8("w_blocks"), blockq::pack_nibbles(t.codes));
  }
  write_safetensors(dir / "x.safetensors", {{"input", "F32", {tokens, k}, float_bytes(x)}});
  write_bytes(dir / "map.json", R"({"w": "input", "u": "input"})");
  run_ok("quantize in.safetensors -o p.safetensors --format int4 --method gptq --hessian x.safetensors --hessian-map map.json");
  const auto gu = blockq::gptq_quantize_activations(q, u, k, x);
  EXPECT_EQ(file(dir / "p.safetensors").u8("u_codes"), blockq::pack_nibbles(gu.tensor.codes));
}

// The report's output-error view: ||X (W - Q)^T||^2 / ||X W^T||^2 for rtn and gptq,
// against the library's quantizers and the test's own products.
TEST_F(ToolGptq, ReportOutputErrorView) {
  const auto r = run_tool(dir, "report in.safetensors --hessian acts.safetensors --formats mxfp4,int4 --csv");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto at = r.out.find("tensor,shape,format,rule,relative_output_error_rtn,relative_output_error_gptq\n");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::map<std::string, std::pair<double, double>> got;  // "tensor format rule" -> (rtn, gptq)
  std::istringstream in(r.out.substr(at));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line) && !line.empty()) {
    std::vector<std::string> f;
    std::stringstream ls(line);
    for (std::string c; std::getline(ls, c, ',');) f.push_back(c);
    ASSERT_EQ(f.size(), 6u) << line;
    got[f[0] + " " + f[2] + " " + f[3]] = {std::stod(f[4]), std::stod(f[5])};
  }
  auto energy = [&](const std::vector<float>& a, const std::vector<float>* b) {
    long double s = 0;
    for (std::size_t t = 0; t < tokens; ++t)
      for (std::size_t i = 0; i < rows; ++i) {
        long double o = 0;
        for (std::size_t c = 0; c < k; ++c) o += (long double)x[t * k + c] * (a[i * k + c] - (b ? (*b)[i * k + c] : 0.0f));
        s += o * o;
      }
    return static_cast<double>(s);
  };
  double num_rtn = 0, num_gptq = 0, den = 0;
  for (const auto& [name, data] : {std::pair{"w", &w}, std::pair{"u", &u}}) {
    const blockq::mxfp4_quantizer q;
    const auto rq = q.dequantize(q.quantize(std::span<const float>(*data)));
    const auto gq = q.dequantize(blockq::gptq_quantize_activations(q, *data, k, x).tensor);
    const double e = energy(*data, nullptr), er = energy(*data, &rq), eg = energy(*data, &gq);
    const auto v = got.at(std::string(name) + " mxfp4 ocp");
    EXPECT_NEAR(v.first, er / e, 1e-6 * er / e) << name;
    EXPECT_NEAR(v.second, eg / e, 1e-6 * eg / e) << name;
    EXPECT_LT(v.second, v.first) << name;
    num_rtn += er, num_gptq += eg, den += e;
  }
  const auto all = got.at("(all) mxfp4 ocp");
  EXPECT_NEAR(all.first, num_rtn / den, 1e-6 * num_rtn / den);
  EXPECT_NEAR(all.second, num_gptq / den, 1e-6 * num_gptq / den);
  EXPECT_TRUE(got.count("w mxfp4 hessian")) << "rule hessian is measured when activations are given";
  EXPECT_TRUE(got.count("u int4 absmax"));
}

void expect_failure(const temp_dir& dir, const std::string& args, const std::string& message, int code = 1) {
  const auto before = dir.entries();
  const auto r = run_tool(dir, args);
  EXPECT_EQ(r.code, code) << args << "\n" << r.err;
  EXPECT_EQ(r.err.rfind("blockq: error: ", 0), 0u) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\n" << r.err;
  EXPECT_EQ(dir.entries(), before) << args;
}

TEST_F(ToolGptq, BadInputFailsWithOneLineAndNoFile) {
  const std::string q = "quantize in.safetensors -o out.safetensors --format mxfp4 ";
  expect_failure(dir, q + "--method gptq", "--method gptq needs calibration activations or a Hessian (--hessian ACTS)");
  expect_failure(dir, q + "--act-order", "--act-order and --damp apply to --method gptq");
  expect_failure(dir, q + "--damp 0.1", "--act-order and --damp apply to --method gptq");
  expect_failure(dir, q + "--method gptq --hessian acts.safetensors --damp -1", "--damp must be finite and non-negative");
  expect_failure(dir, q + "--method gptq --hessian acts.safetensors --hessian-kind matrix",
                 "Hessian 'w' in acts.safetensors has shape [48, 64] F32; expected floats of shape [64, 64]");
  write_bytes(dir / "bad.json", "{\"w\": 3}");
  expect_failure(dir, q + "--method gptq --hessian acts.safetensors --hessian-map bad.json",
                 "bad.json: the value of 'w' is not a string");
  write_bytes(dir / "worse.json", "[1,");
  expect_failure(dir, q + "--method gptq --hessian acts.safetensors --hessian-map worse.json", "worse.json: not valid JSON");
  write_bytes(dir / "other.json", R"({"w": "nothere"})");
  expect_failure(dir, q + "--method gptq --hessian acts.safetensors --hessian-map other.json",
                 "acts.safetensors has no activations for tensor 'w' (mapped to 'nothere')");
  std::vector<float> hn(k * k, 0.0f);
  for (std::size_t i = 0; i < k; ++i) hn[i * k + i] = 1.0f;
  hn[5] = -2.0f;  // not symmetric is fine; a negative diagonal is not
  hn[3 * k + 3] = -1.0f;
  write_safetensors(dir / "neg.safetensors", {{"w", "F32", {k, k}, float_bytes(hn)}, {"u", "F32", {k, k}, float_bytes(hn)}});
  expect_failure(dir, q + "--method gptq --hessian neg.safetensors --hessian-kind matrix",
                 "Hessian diagonal entry 3 is negative");
  expect_failure(dir, q + "--hessian-map map.json", "--hessian-kind and --hessian-map need --hessian");
}

// --rotate-seed: R = diag(signs) H / sqrt(n) with the library's splitmix64 signs at that seed,
// recorded as blockq.rotation_seed, which dequantize reads back (a bad value is an error).
TEST_F(ToolGptq, RotationSeedGivesTheLibrarysSignedRotation) {
  const blockq::uniform_quantizer<> q({4, true, 32, blockq::scale_rule::absmax});
  const blockq::block_rotation seeded(32, 42), plain(32);
  run_ok("quantize in.safetensors -o s.safetensors --format int4 --rotate hadamard --rotate-seed 42");
  const file o(dir / "s.safetensors");
  const auto t = blockq::rotated_quantize(q, w, seeded);
  EXPECT_EQ(o.u8("w_codes"), blockq::pack_nibbles(t.codes));
  EXPECT_EQ(o.f32("w_scales"), t.scales);
  EXPECT_EQ(o.meta("blockq.rotation_seed"), "42");
  EXPECT_NE(blockq::rotated_quantize(q, w, plain).codes, t.codes);  // the signs change the codes
  run_ok("dequantize s.safetensors -o sd.safetensors");
  EXPECT_EQ(file(dir / "sd.safetensors").f32("w"), blockq::rotated_dequantize(q, t, seeded));
  // The largest seed is a seed; a seed without the rotation, or a tampered record, is not.
  run_ok("quantize in.safetensors -o m.safetensors --format int4 --rotate hadamard --rotate-seed 18446744073709551615");
  EXPECT_EQ(file(dir / "m.safetensors").meta("blockq.rotation_seed"), "18446744073709551615");
  expect_failure(dir, "quantize in.safetensors -o x.safetensors --format int4 --rotate-seed 7",
                 "--rotate-seed applies to --rotate hadamard");
  for (const std::string bad : {"-1", "18446744073709551616", "1.5", "0x10"})
    expect_failure(dir, "quantize in.safetensors -o x.safetensors --format int4 --rotate hadamard --rotate-seed " + bad,
                   "'" + bad + "' is not an integer from 0 to 2^64 - 1", 2);  // a usage error
  std::string bytes = read_bytes(dir / "s.safetensors");
  const std::string rec = "\"blockq.rotation_seed\":\"42\"";
  const std::size_t at = bytes.find(rec);
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at + rec.size() - 3, 2, "4x");
  write_bytes(dir / "bad.safetensors", bytes);
  expect_failure(dir, "dequantize bad.safetensors -o bd.safetensors",
                 "bad.safetensors: metadata blockq.rotation_seed '4x' is not an integer from 0 to 2^64 - 1");
}

TEST_F(ToolGptq, RotationSizeMustBeAPowerOfTwo) {
  std::vector<float> w48 = normal(4 * 48, 9);
  write_safetensors(dir / "w48.safetensors", {{"w", "F32", {4, 48}, float_bytes(w48)}});
  expect_failure(dir, "quantize w48.safetensors -o out.safetensors --format int4 --block 24 --rotate hadamard",
                 "--rotate hadamard rotates blocks of the block size: rotation size must be a power of two of at least 2, got 24");
}

}  // namespace
