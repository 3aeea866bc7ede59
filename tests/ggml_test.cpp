// SPDX-License-Identifier: Apache-2.0
// ggml block types (include/blockq/ggml.hpp) against
// - blocks computed by hand, and blocks that ggml 0.21's own reference quantizers
//   (quantize_row_*_ref, built with GCC 12 -O3 for x86-64) wrote for the same inputs;
// - ggml's formulas transcribed here a second time, written straight from ggml-quants.c's
//   description (float32 arithmetic, the compiler's binary16 for the fp16 scale), over 5 x 2^18 values of
//   several distributions and magnitudes from 1e-30 to 1e30, NaN and Inf included;
// - ggml's dequantization formulas; every arch tag bit for bit against scalar.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blockq/arch/signed_max.hpp"
#include "blockq/ggml.hpp"
#include "test_util.hpp"

namespace {

using blockq::ggml_type;
using blockq::scale_rule;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr ggml_type kTypes[] = {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0, ggml_type::mxfp4};

// ---------------------------------------------------------------- the transcription
// GGML_FP32_TO_FP16 by the compiler's own binary16 conversion (round to nearest even; the
// hardware's on AArch64 and with F16C); ggml writes every NaN as 0x7E00 with its sign.
#if defined(__aarch64__)
using half_t = __fp16;
#else
using half_t = _Float16;
#endif
std::uint16_t fp16_of(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return static_cast<std::uint16_t>(((u >> 31) << 15) | 0x7E00u);
  const half_t h = static_cast<half_t>(f);
  std::uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
float fp32_of(std::uint16_t b) {
  half_t h;
  std::memcpy(&h, &b, 2);
  return static_cast<float>(h);
}
// C's (int8_t)float as x86-64 runs it: cvttss2si, 0x80000000 for NaN and out of range.
std::int8_t to_i8(float v) {
  const std::int32_t i = (std::isfinite(v) && std::fabs(v) < 2147483648.0f) ? static_cast<std::int32_t>(v)
                                                                              : std::numeric_limits<std::int32_t>::min();
  return static_cast<std::int8_t>(i & 0xFF);
}
std::uint8_t nib(float v) {  // MIN(15, (int8_t)v) into a uint8_t
  const int t = to_i8(v);
  return static_cast<std::uint8_t>(std::min(15, t));
}
// Volatile stores make every product a rounded float even if the compiler could fuse.
float mul(float a, float b) {
  volatile float p = a * b;
  return p;
}
void put16(std::vector<std::uint8_t>& o, std::uint16_t h) {
  o.push_back(static_cast<std::uint8_t>(h));
  o.push_back(static_cast<std::uint8_t>(h >> 8));
}

std::vector<std::uint8_t> ref_block(ggml_type t, const float* x) {
  std::vector<std::uint8_t> o;
  if (t == ggml_type::q4_0) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; ++j)
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]), max = x[j];
    const float d = max / -8, id = d ? 1.0f / d : 0.0f;
    put16(o, fp16_of(d));
    for (int j = 0; j < 16; ++j)
      o.push_back(static_cast<std::uint8_t>(nib(mul(x[j], id) + 8.5f) | nib(mul(x[j + 16], id) + 8.5f) << 4));
  } else if (t == ggml_type::q4_1) {
    float mn = std::numeric_limits<float>::max(), mx = -mn;
    for (int j = 0; j < 32; ++j) mn = x[j] < mn ? x[j] : mn, mx = x[j] > mx ? x[j] : mx;
    const float d = (mx - mn) / 15, id = d ? 1.0f / d : 0.0f;
    put16(o, fp16_of(d));
    put16(o, fp16_of(mn));
    for (int j = 0; j < 16; ++j)
      o.push_back(static_cast<std::uint8_t>(nib(mul(x[j] - mn, id) + 0.5f) | nib(mul(x[j + 16] - mn, id) + 0.5f) << 4));
  } else if (t == ggml_type::q8_0) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);  // MAX(a, b)
    const float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    put16(o, fp16_of(d));
    for (int j = 0; j < 32; ++j) o.push_back(static_cast<std::uint8_t>(to_i8(std::round(x[j] * id))));
  } else {
    float amax = 0;
    for (int j = 0; j < 32; ++j)
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]);
    // The exact exponent (frexp: amax = m 2^k, m in [0.5, 1)); 0 where ggml's wraps or is Inf.
    int k = 0;
    std::frexp(amax, &k);
    const int e = (amax > 0 && std::isfinite(amax)) ? std::max(0, (k - 1) - 2 + 127) : 0;
    const float d = std::ldexp(1.0f, e - 128);  // GGML_E8M0_TO_FP32_HALF
    static const int kv[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    auto best = [&](float v) {
      int bi = 0;
      float be = std::fabs(kv[0] * d - v);
      for (int i = 1; i < 16; ++i)
        if (std::fabs(kv[i] * d - v) < be) be = std::fabs(kv[i] * d - v), bi = i;
      return bi;
    };
    o.push_back(static_cast<std::uint8_t>(e));
    for (int j = 0; j < 16; ++j) o.push_back(static_cast<std::uint8_t>(best(x[j]) | best(x[j + 16]) << 4));
  }
  return o;
}

std::vector<std::uint8_t> ref_row(ggml_type t, const std::vector<float>& x) {
  std::vector<std::uint8_t> out;
  for (std::size_t b = 0; b < x.size(); b += 32) {
    const auto blk = ref_block(t, x.data() + b);
    out.insert(out.end(), blk.begin(), blk.end());
  }
  return out;
}

template <class Arch = blockq::default_arch>
std::vector<std::uint8_t> quantize(ggml_type t, const std::vector<float>& x) {
  return blockq::ggml_quantizer<Arch>(t).quantize(x);
}

std::string hex(const std::vector<std::uint8_t>& b, std::size_t from, std::size_t n) {
  std::string s;
  char buf[4];
  for (std::size_t i = from; i < from + n && i < b.size(); ++i) std::snprintf(buf, sizeof buf, "%02x ", b[i]), s += buf;
  return s;
}

// The first block where a and b differ, with its input, or "".
std::string first_difference(ggml_type t, const std::vector<float>& x, const std::vector<std::uint8_t>& a,
                             const std::vector<std::uint8_t>& b) {
  const std::size_t bb = blockq::ggml_block_bytes(t);
  if (a.size() != b.size()) return "sizes differ";
  for (std::size_t blk = 0; blk * bb < a.size(); ++blk)
    if (!std::equal(a.begin() + blk * bb, a.begin() + (blk + 1) * bb, b.begin() + blk * bb)) {
      std::string in;
      for (int j = 0; j < 32; ++j) in += std::to_string(x[blk * 32 + j]) + " ";
      return std::string(to_string(t)) + " block " + std::to_string(blk) + ": " + hex(a, blk * bb, bb) + "vs " +
             hex(b, blk * bb, bb) + "input " + in;
    }
  return "";
}

// ---------------------------------------------------------------- hand-computed blocks
TEST(GgmlTypes, IdsSizesNames) {
  EXPECT_EQ(static_cast<int>(ggml_type::q4_0), 2);
  EXPECT_EQ(static_cast<int>(ggml_type::mxfp4), 39);
  EXPECT_EQ(blockq::ggml_block_bytes(ggml_type::q4_1), 20u);
  EXPECT_EQ(blockq::parse_ggml_type("q8_0"), ggml_type::q8_0);
  EXPECT_EQ(blockq::ggml_type_from_id(3), ggml_type::q4_1);
  EXPECT_FALSE(blockq::ggml_type_from_id(1).has_value());
  EXPECT_EQ(blockq::ggml_quantizer<>(ggml_type::q4_0).row_bytes(64), 36u);
  EXPECT_NE(blockq_test::invalid_argument_message([] { (void)blockq::ggml_quantizer<>(ggml_type::q4_0).row_bytes(48); })
                .find("48"),
            std::string::npos);
  EXPECT_NE(blockq_test::invalid_argument_message([] {
              blockq::ggml_quantizer<>(ggml_type::q4_1, {blockq::scale_rule::ocp});
            }).find("ocp"),
            std::string::npos);
}

std::vector<std::uint8_t> bytes_of(const char* h) {
  std::vector<std::uint8_t> b;
  for (std::size_t i = 0; h[i] && h[i + 1]; i += 2) b.push_back(static_cast<std::uint8_t>(std::stoi(std::string(h + i, 2), nullptr, 16)));
  return b;
}

// By hand: Q4_0 and Q4_1 ties round up (truncation of + 8.5 / + 0.5), Q8_0's roundf ties away
// from zero, MXFP4 ties toward zero and writes zero (also -0 and negative values that round
// to zero) as code 0.
TEST(GgmlBlocks, HandComputed) {
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);  // max = -16: d = 2, x/d = -8 ... 7.5
  const char* q4 = "8091 91a2 a2b3 b3c4 c4d5 d5e6 e6f7 f7f8";
  auto strip = [](std::string s) { s.erase(std::remove(s.begin(), s.end(), ' '), s.end()); return s; };
  EXPECT_EQ(quantize(ggml_type::q4_0, x), bytes_of(("0040" + strip(q4)).c_str()));
  for (int j = 0; j < 32; ++j) x[j] = -1.0f + 0.5f * static_cast<float>(std::min(j, 30));  // d = 1, m = -1
  EXPECT_EQ(quantize(ggml_type::q4_1, x), bytes_of(("003c00bc" + strip(q4)).c_str()));

  std::fill(x.begin(), x.end(), 0.0f);
  const float q8in[] = {127.0f, -2.5f, 2.5f, -0.5f, 0.5f, 1.5f, -0.0f, 126.49f};
  std::copy(std::begin(q8in), std::end(q8in), x.begin());
  std::vector<std::uint8_t> q8 = {0x00, 0x3c, 0x7f, 0xfd, 0x03, 0xff, 0x01, 0x02, 0x00, 0x7e};
  q8.resize(34, 0);
  EXPECT_EQ(quantize(ggml_type::q8_0, x), q8);

  std::fill(x.begin(), x.end(), 0.0f);  // amax 6: e = 127, d = 0.5 on the doubled values
  const float mxin[] = {6.0f, -0.25f, 0.25f, -0.0f, -0.1f, 2.5f, -5.0f, 0.75f, -1e-30f, 5.1f};
  std::copy(std::begin(mxin), std::end(mxin), x.begin());
  x[16] = -6.0f;
  x[17] = -0.3f;
  // -5 lies between -4 (code 14) and -6 (code 15): code 14.
  std::vector<std::uint8_t> mx = {0x7f, 0xf7, 0x90, 0, 0, 0, 0x04, 0x0e, 0x01, 0, 0x07};
  mx.resize(17, 0);
  EXPECT_EQ(quantize(ggml_type::mxfp4, x), mx);
}

// Blocks that ggml 0.21's quantize_row_*_ref wrote (x86-64, GCC 12 -O3) for the same inputs:
// ramps with NaN or Inf, zeros, -0, subnormals, huge values, max - min overflowing to Inf.
TEST(GgmlBlocks, WhatGgmlWrote) {
  struct row {
    const char* input;
    ggml_type type;
    const char* bytes;
  };
  const row rows[] = {
      {"nan at 3", ggml_type::q4_0, "c03f809191a0a2b3b3c4c4d5d5e6e6f7f7f8"},
      {"nan at 3", ggml_type::q4_1, "2240c0cb80809190a2a2b3b3c4c4d5d5e6e6f7f7"},
      {"nan at 3", ggml_type::q8_0, "d02f81899100a2aab2bac3cbd3dbe3ecf4fc040c141d252d353d464e565e666f777f"},
      {"nan at 3", ggml_type::mxfp4, "800f1f2f304f5f5e6e6e6d7d7c7b7a7970"},
      {"nan at 31", ggml_type::q4_0, "c03f809191a2a2b3b3c4c4d5d5e6e6f7f708"},
      {"nan at 31", ggml_type::q4_1, "0040c0cb809191a2a2b3b3c4c4d5d5e6e6f7f708"},
      {"nan at 31", ggml_type::q8_0, "007e0000000000000000000000000000000000000000000000000000000000000000"},
      {"nan at 31", ggml_type::mxfp4, "800f1f2f3f4f5f5e6e6e6d7d7c7b7a7900"},
      {"inf at 3", ggml_type::q4_0, "00fc88888880888888888888888888888888"},
      {"inf at 3", ggml_type::q4_1, "007cc0cb00000000000000000000000000000000"},
      {"inf at 3", ggml_type::q8_0, "007c0000000000000000000000000000000000000000000000000000000000000000"},
      {"inf at 3", ggml_type::mxfp4, "0000000000000000000000000000000000"},
      {"-inf at 3", ggml_type::q4_0, "007c88888880888888888888888888888888"},
      {"-inf at 3", ggml_type::q4_1, "007c00fc00000000000000000000000000000000"},
      {"-inf at 3", ggml_type::q8_0, "007c0000000000000000000000000000000000000000000000000000000000000000"},
      {"-inf at 3", ggml_type::mxfp4, "0000000000000000000000000000000000"},
      {"all nan", ggml_type::q4_0, "008000000000000000000000000000000000"},
      {"all nan", ggml_type::q4_1, "00fc007c00000000000000000000000000000000"},
      {"all nan", ggml_type::q8_0, "007e0000000000000000000000000000000000000000000000000000000000000000"},
      {"all nan", ggml_type::mxfp4, "0000000000000000000000000000000000"},
      {"zeros", ggml_type::q4_0, "008088888888888888888888888888888888"},
      {"zeros", ggml_type::q4_1, "0000000000000000000000000000000000000000"},
      {"zeros", ggml_type::q8_0, "00000000000000000000000000000000000000000000000000000000000000000000"},
      {"zeros", ggml_type::mxfp4, "0000000000000000000000000000000000"},
      {"-zeros", ggml_type::q4_0, "008088888888888888888888888888888888"},
      {"-zeros", ggml_type::q4_1, "0000008000000000000000000000000000000000"},
      {"-zeros", ggml_type::q8_0, "00000000000000000000000000000000000000000000000000000000000000000000"},
      {"-zeros", ggml_type::mxfp4, "0000000000000000000000000000000000"},
      {"tiny subnormal", ggml_type::q4_0, "000000000000000000000000000000000000"},
      {"tiny subnormal", ggml_type::q4_1, "0000008000000000000000000000000000000000"},
      {"tiny subnormal", ggml_type::q8_0, "00000000000000000000000000000000000000000000000000000000000000000000"},
      {"tiny subnormal", ggml_type::mxfp4, "ee00000000000000000000000000000000"},
      {"subnormal 1e-39", ggml_type::q4_0, "000000000000000000000000000000000000"},
      {"subnormal 1e-39", ggml_type::q4_1, "0000008000000000000000000000000000000000"},
      {"subnormal 1e-39", ggml_type::q8_0, "00000000000000000000000000000000000000000000000000000000000000000000"},
      {"subnormal 1e-39", ggml_type::mxfp4, "ff00000000000000000000000000000000"},
      {"huge", ggml_type::q4_0, "007c809191a2a2b3b3c4c4d5d5e6e6f7f7f8"},
      {"huge", ggml_type::q4_1, "007c00fc80809191a2a2b3b3c4c4d5d5e6e6f7f7"},
      {"huge", ggml_type::q8_0, "007c8189919aa2aab2bac3cbd3dbe3ecf4fc040c141d252d353d464e565e666f777f"},
      {"huge", ggml_type::mxfp4, "fb0f1f2f3f4f5e5e6e6e6d6d7c7b7a7970"},
      {"max-min overflow", ggml_type::q4_0, "00fc00ff00ff00ff00ff00ff00ff00ff00ff"},
      {"max-min overflow", ggml_type::q4_1, "007c00fc00000000000000000000000000000000"},
      {"max-min overflow", ggml_type::q8_0, "007c7f817f817f817f817f817f817f817f817f817f817f817f817f817f817f817f81"},
      {"max-min overflow", ggml_type::mxfp4, "fc77ff77ff77ff77ff77ff77ff77ff77ff"},
  };
  auto input = [](const std::string& name) {
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i) - 15.5f;
    if (name == "nan at 3") x[3] = kNaN;
    if (name == "nan at 31") x[31] = kNaN;
    if (name == "inf at 3") x[3] = kInf;
    if (name == "-inf at 3") x[3] = -kInf;
    for (int i = 0; i < 32; ++i) {
      const float r = static_cast<float>(i) - 15.5f;
      if (name == "all nan") x[i] = kNaN;
      if (name == "zeros") x[i] = 0.0f;
      if (name == "-zeros") x[i] = -0.0f;
      if (name == "tiny subnormal") x[i] = r * 1e-44f;
      if (name == "subnormal 1e-39") x[i] = r * 1e-39f;
      if (name == "huge") x[i] = r * 1e37f;
      if (name == "max-min overflow") x[i] = (i & 1 ? -1.0f : 1.0f) * 3.0e38f;
    }
    return x;
  };
  for (const row& r : rows) {
    const std::string name = r.input;
    std::vector<std::uint8_t> want = bytes_of(r.bytes);
    const auto x = input(name);
    // MXFP4 with amax below 2^-125: ggml's exponent byte wraps around (a negative float
    // converted to uint8_t, undefined in C; 0xee, 0xff here) and its codes are all 0 at that
    // huge scale. blockq writes exponent 0 (2^-127) and the codes at that scale.
    if (r.type == ggml_type::mxfp4 && (name == "tiny subnormal" || name == "subnormal 1e-39")) {
      const auto got = quantize(r.type, x);
      EXPECT_EQ(got[0], 0);
      EXPECT_NE(got, want);
      EXPECT_EQ(got, ref_row(r.type, x)) << name;
      continue;
    }
    EXPECT_EQ(quantize(r.type, x), want) << name << " " << to_string(r.type);
    EXPECT_EQ(ref_row(r.type, x), want) << "the test's transcription, " << name << " " << to_string(r.type);
  }
}


// ---------------------------------------------------------------- random rows
// Blocks of a distribution, each block scaled by 10^u, u uniform in [-30, 30]; kind
// "grid" draws halves of integers in [-8, 8] times a power of two (exact ties everywhere),
// "special" sprinkles NaN, ±Inf, ±0 and subnormals into normal data.
std::vector<float> random_row(const std::string& kind, std::uint64_t seed, std::size_t n = std::size_t{1} << 20) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal;
  std::exponential_distribution<float> expo;
  std::student_t_distribution<float> student(3.0f);
  std::uniform_real_distribution<float> u(-30.0f, 30.0f);
  std::uniform_int_distribution<int> half(-16, 16), pow2(-140, 120), pick(0, 999);
  std::vector<float> x(n);
  float scale = 1.0f;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 32 == 0) scale = kind == "grid" ? std::ldexp(1.0f, pow2(gen)) : std::pow(10.0f, u(gen));
    float v;
    if (kind == "normal" || kind == "special") v = normal(gen);
    else if (kind == "laplace") v = (gen() & 1 ? 1.0f : -1.0f) * expo(gen);
    else if (kind == "student_t3") v = student(gen);
    else v = 0.5f * static_cast<float>(half(gen));
    x[i] = v * scale;
    if (kind == "special") {
      const int p = pick(gen);
      const float specials[] = {kNaN, kInf, -kInf, 0.0f, -0.0f, 1e-45f, -3e-39f, 65504.0f, 65520.0f};
      if (p < 9) x[i] = specials[p];
    }
  }
  return x;
}

TEST(GgmlBlocks, RandomRowsMatchTheTranscription) {
  std::uint64_t seed = 13;
  for (const std::string kind : {"normal", "laplace", "student_t3", "grid", "special"}) {
    const auto x = random_row(kind, seed++, std::size_t{1} << 18);  // 5 x 2^18 values in all
    for (ggml_type t : kTypes) {
      const auto got = quantize(t, x);
      EXPECT_EQ(first_difference(t, x, got, ref_row(t, x)), "") << kind << " seed " << seed - 1;
      EXPECT_EQ(first_difference(t, x, blockq::ggml_quantizer<blockq::arch::scalar>(t).quantize(x), got), "")
          << "scalar vs " << blockq::default_arch::name << ", " << kind;
    }
  }
}

// ggml's exponent, floorf(log2f(amax)) - 2 + 127, differs from blockq's exact one only for
// amax a few ulps below a power of two (and where it wraps below 2^-125).
TEST(GgmlBlocks, Mxfp4ExponentDiffersFromLog2fOnlyJustBelowPowersOfTwo) {
  const blockq::ggml_quantizer<> q(ggml_type::mxfp4);
  std::vector<float> x(32, 0.0f);
  int differ = 0;
  for (int k = -124; k <= 127; ++k) {
    for (int steps = 0; steps <= 8; ++steps) {
      float a = std::ldexp(1.0f, k);
      for (int s = 0; s < steps; ++s) a = std::nextafter(a, 0.0f);
      x[5] = -a;
      const std::uint8_t mine = q.quantize(x)[0];
      const int ggml = static_cast<int>(std::floor(std::log2(a))) - 2 + 127;
      EXPECT_EQ(mine, static_cast<std::uint8_t>((steps == 0 ? k : k - 1) + 125)) << a;
      if (mine != ggml) {
        ++differ;
        EXPECT_EQ(ggml, mine + 1) << a;
        EXPECT_GT(steps, 0) << a;
      }
    }
  }
  EXPECT_GT(differ, 0);  // the log2f error this exponent avoids exists on this libm
}

// ---------------------------------------------------------------- dequantization
TEST(GgmlBlocks, DequantizeFollowsGgmlsFormulas) {
  std::mt19937_64 gen(7);
  const std::size_t nb = 4096;
  for (ggml_type t : kTypes) {
    const std::size_t bb = blockq::ggml_block_bytes(t);
    std::vector<std::uint8_t> in(nb * bb);
    for (auto& b : in) b = static_cast<std::uint8_t>(gen());
    std::vector<float> got(nb * 32), scalar(nb * 32);
    blockq::ggml_quantizer<>(t).dequantize(in, got);
    blockq::ggml_quantizer<blockq::arch::scalar>(t).dequantize(in, scalar);
    for (std::size_t b = 0; b < nb; ++b) {
      const std::uint8_t* p = in.data() + b * bb;
      for (int j = 0; j < 32; ++j) {
        const int nibble = j < 16 ? (p[bb - 16 + j] & 15) : (p[bb - 16 + j - 16] >> 4);
        float want;
        if (t == ggml_type::q4_0) want = static_cast<float>(nibble - 8) * fp32_of(static_cast<std::uint16_t>(p[0] | p[1] << 8));
        else if (t == ggml_type::q4_1)
          want = mul(static_cast<float>(nibble), fp32_of(static_cast<std::uint16_t>(p[0] | p[1] << 8))) +
                 fp32_of(static_cast<std::uint16_t>(p[2] | p[3] << 8));
        else if (t == ggml_type::q8_0)
          want = static_cast<float>(static_cast<std::int8_t>(p[2 + j])) * fp32_of(static_cast<std::uint16_t>(p[0] | p[1] << 8));
        else {
          static const int kv[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
          want = static_cast<float>(kv[nibble]) * std::ldexp(1.0f, p[0] - 128);
        }
        const float g = got[b * 32 + j];
        const bool same = std::bit_cast<std::uint32_t>(g) == std::bit_cast<std::uint32_t>(want) ||
                          (std::isnan(g) && std::isnan(want));
        ASSERT_TRUE(same) << to_string(t) << " block " << b << " element " << j << ": " << g << " vs " << want;
        // (NaN payloads are not compared: which of two NaN operands an addition passes on is the
        // compiler's choice.)
        ASSERT_TRUE(std::bit_cast<std::uint32_t>(g) == std::bit_cast<std::uint32_t>(scalar[b * 32 + j]) ||
                    (std::isnan(g) && std::isnan(scalar[b * 32 + j])))
            << "scalar vs " << blockq::default_arch::name << ", " << to_string(t) << " block " << b;
      }
    }
  }
}

// Quantize then dequantize: within half a step of the stored scale for normal-size data.
TEST(GgmlBlocks, RoundTripError) {
  const auto x = blockq_test::normal_floats(1 << 14, 3);
  for (ggml_type t : kTypes) {
    const blockq::ggml_quantizer<> q(t);
    std::vector<float> y(x.size());
    q.dequantize(q.quantize(x), y);
    double se = 0;
    for (std::size_t i = 0; i < x.size(); ++i) se += (x[i] - y[i]) * double(x[i] - y[i]);
    const double mse = se / double(x.size());
    // Uniform rounding of N(0,1) blocks: q8_0 ~ (amax/127)^2/12, 4-bit ~ (amax/7.5)^2/12.
    EXPECT_LT(mse, t == ggml_type::q8_0 ? 1e-4 : 0.02) << to_string(t);
    EXPECT_GT(mse, t == ggml_type::q8_0 ? 1e-6 : 1e-3) << to_string(t);
  }
}

// float16 / bfloat16 inputs give the bytes of their float32 values.
TEST(GgmlBlocks, SixteenBitInputs) {
  const auto x = blockq_test::normal_floats(32 * 100, 5);
  std::vector<blockq::float16> h(x.size());
  std::vector<blockq::bfloat16> bf(x.size());
  std::vector<float> xh(x.size()), xb(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    h[i] = blockq::float16::from_float(x[i]);
    bf[i] = blockq::bfloat16::from_float(x[i]);
    xh[i] = h[i].to_float();
    xb[i] = bf[i].to_float();
  }
  for (ggml_type t : kTypes) {
    const blockq::ggml_quantizer<> q(t);
    std::vector<std::uint8_t> a(q.row_bytes(x.size())), b(a.size());
    q.quantize(std::span<const blockq::float16>(h), a);
    EXPECT_EQ(a, q.quantize(xh));
    q.quantize(std::span<const blockq::bfloat16>(bf), b);
    EXPECT_EQ(b, q.quantize(xb));
  }
}

// Rows of 1 to 19 blocks (the vector kernels work eight blocks at a time) drawn from edge
// blocks: zeros of both signs, extremes equal to zero, +a and -a in either order, subnormal
// and overflowing scales, NaN of either sign or Inf at every position, exact ties. Every arch
// tag gives the scalar bytes, and the transcription's.
TEST(GgmlBlocks, EdgeBlocksOnEveryArch) {
  std::mt19937_64 gen(99);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> kind_of(0, 14), pos(0, 31), half(-16, 16);
  auto edge_block = [&](float* b) {
    const int kind = kind_of(gen);
    for (int j = 0; j < 32; ++j) b[j] = normal(gen);
    switch (kind) {
      case 0: for (int j = 0; j < 32; ++j) b[j] = (gen() & 1) ? 0.0f : -0.0f; break;
      case 1: for (int j = 0; j < 32; ++j) b[j] = -std::fabs(b[j]); b[pos(gen)] = (gen() & 1) ? 0.0f : -0.0f; break;
      case 2: for (int j = 0; j < 32; ++j) b[j] = std::fabs(b[j]); b[pos(gen)] = (gen() & 1) ? 0.0f : -0.0f; break;
      case 3: b[pos(gen)] = 9.0f; b[pos(gen)] = -9.0f; break;  // +a and -a, either first
      case 4: for (int j = 0; j < 32; ++j) b[j] *= 1e-39f; break;
      case 5: for (int j = 0; j < 32; ++j) b[j] *= 1e-44f; break;
      case 6: for (int j = 0; j < 32; ++j) b[j] *= 1e38f; break;
      case 7: b[pos(gen)] = kNaN; break;
      case 8: b[pos(gen)] = (gen() & 1) ? kInf : -kInf; break;
      case 9: for (int j = 0; j < 32; ++j) b[j] = kNaN; b[pos(gen)] = 1.0f; break;
      case 10: for (int j = 0; j < 32; ++j) b[j] = 0.5f * static_cast<float>(half(gen)); break;
      case 11: for (int j = 0; j < 32; ++j) b[j] = 0.25f * static_cast<float>(half(gen)) * 1e-3f; break;
      case 12: b[31] = kNaN; break;
      case 13: b[pos(gen)] = -kNaN; break;  // a NaN with the sign bit (the unsigned maximum's)
      default: break;
    }
  };
  for (int trial = 0; trial < 400; ++trial) {
    const std::size_t nb = 1 + static_cast<std::size_t>(trial % 19);
    std::vector<float> x(nb * 32);
    for (std::size_t b = 0; b < nb; ++b) edge_block(x.data() + b * 32);
    for (ggml_type t : kTypes) {
      const auto got = quantize(t, x);
      ASSERT_EQ(first_difference(t, x, blockq::ggml_quantizer<blockq::arch::scalar>(t).quantize(x), got), "")
          << "scalar vs " << blockq::default_arch::name << ", trial " << trial;
      ASSERT_EQ(first_difference(t, x, got, ref_row(t, x)), "") << "trial " << trial;
    }
  }
}

}  // namespace

namespace {
// uniform_quantizer's rule signed_max uses kernels::block_signed_max: the first element of
// largest magnitude with its sign, +0 for zeros, NaN with NaN or Inf; every arch as scalar,
// and as a plain loop written here.
TEST(BlockSignedMax, EveryArchMatchesAPlainLoop) {
  std::mt19937_64 gen(5);
  std::uniform_int_distribution<int> small(-3, 3), pick(0, 40);
  for (int trial = 0; trial < 3000; ++trial) {
    const std::size_t n = 1 + static_cast<std::size_t>(trial % 40);
    std::vector<float> x(n);
    for (auto& v : x) {
      const int p = pick(gen);
      v = p == 0 ? -0.0f : p == 1 ? kNaN : p == 2 ? -kInf : static_cast<float>(small(gen));  // many +a / -a ties
      if (trial % 7 == 0) v = (gen() & 1) ? 0.0f : -0.0f;
    }
    float want = 0.0f, amax = 0.0f;
    bool bad = false;
    for (float v : x) {
      if (!std::isfinite(v)) bad = true;
      if (std::fabs(v) > amax) amax = std::fabs(v), want = v;
    }
    const float got = blockq::kernels::block_signed_max(blockq::default_arch{}, x.data(), n);
    const float ref = blockq::kernels::block_signed_max(blockq::arch::scalar{}, x.data(), n);
    if (bad) {
      EXPECT_TRUE(std::isnan(got) && std::isnan(ref)) << trial;
    } else {
      EXPECT_EQ(std::bit_cast<std::uint32_t>(got), std::bit_cast<std::uint32_t>(want)) << "trial " << trial;
      EXPECT_EQ(std::bit_cast<std::uint32_t>(ref), std::bit_cast<std::uint32_t>(want)) << "trial " << trial;
    }
  }
}
}  // namespace

namespace {
// ---------------------------------------------------------------- search rules
// The weighted error of a row of blocks, decoded with the transcription of ggml's formulas.
double row_error(ggml_type t, const std::vector<float>& x, const std::vector<std::uint8_t>& q, const std::vector<float>& w,
                 std::size_t b) {
  const std::size_t bb = blockq::ggml_block_bytes(t);
  std::vector<float> y(32);
  blockq::ggml_quantizer<blockq::arch::scalar>(t).dequantize(std::span<const std::uint8_t>(q.data() + b * bb, bb), y);
  double e = 0;
  for (int j = 0; j < 32; ++j) {
    const double r = double(x[b * 32 + j]) - y[j];
    e += (w.empty() ? 1.0 : w[(b * 32 + j) % w.size()]) * r * r;
  }
  return e;
}

// The least error over every fp16 d (both signs) with |d| / (amax / kneg) in [lo, hi],
// nearest levels, by brute force.
double brute_symmetric(const float* x, const std::vector<float>& w, int kneg, int kpos, double lo, double hi) {
  float amax = 0;
  for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
  const double a0 = double(amax) / kneg;
  double best = 1e300;
  for (std::uint32_t h = 1; h < 0x7C00; ++h) {
    const double a = blockq::float16::from_bits(static_cast<std::uint16_t>(h)).to_float();
    if (a < a0 * lo || a > a0 * hi) continue;
    for (double d : {a, -a}) {
      double e = 0;
      for (int i = 0; i < 32; ++i) {
        const double k = std::clamp(std::round(x[i] / d), double(-kneg), double(kpos));
        e += (w.empty() ? 1.0 : w[i]) * (x[i] - k * d) * (x[i] - k * d);
      }
      best = std::min(best, e);
    }
  }
  return best;
}

TEST(GgmlSearch, NeverWorseThanDefaultAndExactWhereExhaustive) {
  std::mt19937_64 gen(21);
  std::exponential_distribution<float> expo;
  for (const std::string kind : {"normal", "student_t3", "special"}) {
    // Unit-scale blocks (the fp16 scale holds them), and the wide-range special rows.
    std::vector<float> x = random_row(kind, 31, 32 * 128);
    if (kind != "special") {
      std::student_t_distribution<float> st(3.0f);
      std::normal_distribution<float> nd;
      for (auto& v : x) v = kind == "normal" ? nd(gen) : st(gen);
    }
    for (bool weighted : {false, true}) {
      std::vector<float> w;
      if (weighted) {
        w.resize(weighted && kind == "normal" ? 32 * 4 : x.size());  // per column, or per element
        for (auto& v : w) v = expo(gen);
      }
      for (ggml_type t : kTypes) {
        const auto def = quantize(t, x);
        for (scale_rule r : {scale_rule::mse, scale_rule::lsq, scale_rule::hessian}) {
          if (t == ggml_type::mxfp4 && r == scale_rule::lsq) continue;
          if (r == scale_rule::hessian && !weighted) continue;
          const blockq::ggml_quantizer<> q(t, {r});
          std::vector<std::uint8_t> got(def.size());
          q.quantize_weighted(x, w, got);
          double sum_def = 0, sum_got = 0;
          for (std::size_t b = 0; b < x.size() / 32; ++b) {
            const double ed = row_error(t, x, def, w, b), eg = row_error(t, x, got, w, b);
            if (std::isnan(ed)) continue;
            ASSERT_LE(eg, ed) << to_string(t) << " " << to_string(r) << " " << kind << " block " << b;
            if (std::isfinite(ed)) sum_def += ed, sum_got += eg;
          }
          if (kind != "special") {
            EXPECT_LT(sum_got, sum_def) << to_string(t) << " " << to_string(r) << " " << kind;
          }
          // Exhaustive checks on the first blocks: Q4_0 / Q8_0 rule mse against every fp16
          // d of the window, MXFP4 against every exponent.
          if (r != scale_rule::mse || kind == "special") continue;
          for (std::size_t b = 0; b < 3; ++b) {
            std::vector<float> wb;
            if (weighted) for (int j = 0; j < 32; ++j) wb.push_back(w[(b * 32 + j) % w.size()]);
            const double eg = row_error(t, x, got, w, b), ed = row_error(t, x, def, w, b);
            double oracle = ed;
            if (t == ggml_type::q4_0) oracle = std::min(ed, brute_symmetric(x.data() + b * 32, wb, 8, 7, 0.5, 2.0));
            if (t == ggml_type::q8_0) oracle = std::min(ed, brute_symmetric(x.data() + b * 32, wb, 127, 127, 0.875, 1.125));
            if (t == ggml_type::mxfp4) {
              float amax = 0;
              for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
              int k0;
              std::frexp(amax, &k0);
              const int e0 = k0 - 1 + 125;
              for (int e = std::max(0, e0 - 4); e <= std::min(254, e0 + 3); ++e) {
                std::vector<float> blk(x.begin() + b * 32, x.begin() + (b + 1) * 32);
                // the codes ggml picks at exponent e: the reference's search at d = 2^(e - 128)
                std::vector<std::uint8_t> one = ref_block(ggml_type::mxfp4, blk.data());
                one[0] = static_cast<std::uint8_t>(e);
                const float d = std::ldexp(1.0f, e - 128);
                static const int kv[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
                double err = 0;
                for (int j = 0; j < 32; ++j) {
                  int bi = 0;
                  for (int i = 1; i < 16; ++i)
                    if (std::fabs(kv[i] * d - blk[j]) < std::fabs(kv[bi] * d - blk[j])) bi = i;
                  const double r2 = blk[j] - double(kv[bi]) * d;
                  err += (wb.empty() ? 1.0 : wb[j]) * r2 * r2;
                }
                oracle = std::min(oracle, err);
              }
            }
            if (t == ggml_type::q4_1) continue;
            // At least the exhaustive optimum (the refits may find a better d outside the window).
            EXPECT_LE(eg, oracle * (1 + 1e-9)) << to_string(t) << " " << kind << " block " << b;
          }
        }
      }
    }
  }
}
}  // namespace
