// SPDX-License-Identifier: Apache-2.0
// Finite inputs anywhere in float32's range, for every format and rule: the scales (and
// mins) are finite (or, for MX and NVFP4, a non-NaN code) and every dequantized value is
// finite. Inputs: ±FLT_MAX, mixed signs, ranges wider than FLT_MAX, subnormals, tiny ranges
// around huge values, random magnitudes. Before the scale arithmetic was made overflow-safe
// (uniform.hpp, search/), (max - min) / (2^b - 1) and q * scale + min overflowed to Inf/NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blockq/blockq.hpp"

namespace {

constexpr float kMax = std::numeric_limits<float>::max();
constexpr float kDenorm = std::numeric_limits<float>::denorm_min();

struct named_input {
  std::string name;
  std::vector<float> x;
};

// Blocks of 32 of extreme but finite values (the last block partial).
std::vector<named_input> extreme_inputs() {
  std::vector<named_input> in;
  const auto fill = [](std::size_t n, auto f) {
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = f(i);
    return x;
  };
  in.push_back({"all FLT_MAX", std::vector<float>(40, kMax)});
  in.push_back({"all -FLT_MAX", std::vector<float>(40, -kMax)});
  in.push_back({"alternating ±FLT_MAX", fill(70, [](std::size_t i) { return i % 2 ? kMax : -kMax; })});
  in.push_back({"ramp -FLT_MAX..FLT_MAX", fill(64, [](std::size_t i) {
                  return static_cast<float>(-static_cast<double>(kMax) + 2.0 * static_cast<double>(kMax) * i / 63.0);
                })});
  in.push_back({"FLT_MAX, -FLT_MAX and zeros", fill(33, [](std::size_t i) {
                  return i == 3 ? kMax : i == 17 ? -kMax : 0.0f;
                })});
  in.push_back({"huge and subnormal", fill(48, [](std::size_t i) { return i % 3 == 0 ? kMax * 0.75f : (i % 3 == 1 ? -kDenorm : 3e38f); })});
  in.push_back({"tiny range at FLT_MAX", fill(40, [](std::size_t i) {
                  float v = kMax;
                  for (std::size_t k = 0; k < i % 5; ++k) v = std::nextafter(v, 0.0f);
                  return v;
                })});
  in.push_back({"tiny range at -3e38", fill(40, [](std::size_t i) { return -3e38f + static_cast<float>(i % 4) * 2e31f; })});
  in.push_back({"subnormals", fill(40, [](std::size_t i) { return static_cast<float>(i % 7) * kDenorm * (i % 2 ? -1.0f : 1.0f); })});
  in.push_back({"smallest normal and subnormal", fill(32, [](std::size_t i) {
                  return i % 2 ? std::numeric_limits<float>::min() : -kDenorm;
                })});
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-149, 127);
  in.push_back({"random magnitudes", fill(256, [&](std::size_t) {
                  return std::ldexp(u(gen), e(gen));
                })});
  in.push_back({"random ±FLT_MAX range", fill(256, [&](std::size_t) { return u(gen) * kMax; })});
  in.push_back({"half FLT_MAX positive", fill(40, [&](std::size_t i) { return kMax * (0.5f + 0.5f * static_cast<float>(i) / 39.0f); })});
  return in;
}

void expect_finite(const std::vector<float>& v, const std::string& what) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) {
      ADD_FAILURE() << what << ": element " << i << " is " << v[i];
      return;
    }
}

TEST(Extreme, UniformEveryBitWidthAndRule) {
  using blockq::scale_rule;
  for (const auto& in : extreme_inputs())
    for (int bits = 1; bits <= 8; ++bits)
      for (const bool symmetric : {true, false})
        for (const scale_rule rule : {scale_rule::absmax, scale_rule::signed_max, scale_rule::minmax, scale_rule::lsq,
                                      scale_rule::mse})
          for (const std::size_t block : {std::size_t{32}, std::size_t{0}}) {
            if (symmetric && rule == scale_rule::minmax) continue;
            if (!symmetric && (rule == scale_rule::absmax || rule == scale_rule::signed_max)) continue;
            if (rule == scale_rule::absmax && bits < 2) continue;
            const blockq::uniform_quantizer<> q({bits, symmetric, block, rule});
            const std::string what = in.name + ", " + (symmetric ? "int" : "uint") + std::to_string(bits) + " " +
                                     std::string(blockq::to_string(rule)) + " block " + std::to_string(block);
            const blockq::uniform_tensor t = q.quantize(in.x);
            expect_finite(t.scales, what + ", scales");
            expect_finite(t.mins, what + ", mins");
            expect_finite(q.dequantize(t), what + ", dequantized");
          }
}

template <class Element>
void check_mx(const named_input& in) {
  using blockq::scale_rule;
  for (const scale_rule rule : {scale_rule::ocp, scale_rule::ceil, scale_rule::floor, scale_rule::mse}) {
    const blockq::mx_quantizer<Element> q({32, rule, blockq::tie_mode::even});
    const blockq::mx_tensor t = q.quantize(in.x);
    const std::string what = in.name + ", MX " + std::string(blockq::to_string(rule));
    for (auto s : t.scales) EXPECT_NE(s, blockq::ue8m0::nan_code) << what;
    expect_finite(q.dequantize(t), what + ", dequantized");
  }
}

TEST(Extreme, MxEveryElementAndRule) {
  for (const auto& in : extreme_inputs()) {
    check_mx<blockq::e2m1>(in);
    check_mx<blockq::e2m3>(in);
    check_mx<blockq::e3m2>(in);
    check_mx<blockq::e4m3>(in);
    check_mx<blockq::e5m2>(in);
    check_mx<blockq::int8_mx>(in);
  }
}

TEST(Extreme, Nvfp4AndFp4EveryRule) {
  using blockq::scale_rule;
  for (const auto& in : extreme_inputs()) {
    for (const scale_rule rule : {scale_rule::absmax, scale_rule::mse}) {
      const blockq::nvfp4_quantizer<> q({rule});
      const blockq::nvfp4_tensor t = q.quantize(in.x);
      const std::string what = in.name + ", NVFP4 " + std::string(blockq::to_string(rule));
      EXPECT_TRUE(std::isfinite(t.tensor_scale) && t.tensor_scale > 0.0f) << what;
      for (auto s : t.scales) EXPECT_NE(s, blockq::e4m3::nan_code) << what;
      expect_finite(q.dequantize(t), what + ", dequantized");
    }
    for (const scale_rule rule : {scale_rule::absmax, scale_rule::lsq, scale_rule::mse}) {
      const blockq::fp4_quantizer<> q({32, rule});
      const blockq::fp4_tensor t = q.quantize(in.x);
      const std::string what = in.name + ", FP4 " + std::string(blockq::to_string(rule));
      expect_finite(t.scales, what + ", scales");
      expect_finite(q.dequantize(t), what + ", dequantized");
    }
  }
}

}  // namespace

namespace {

// The one case a uniform format cannot represent: 1-bit asymmetric codes over a range
// wider than FLT_MAX. Its documented saturating result: scale FLT_MAX, min the block's
// min, levels min and min + FLT_MAX (here -FLT_MAX and 0); represents_range says so.
TEST(Extreme, OneBitAsymmetricSaturatesAndSaysSo) {
  const blockq::uniform_quantizer<> q({1, false, 32, blockq::scale_rule::minmax});
  const std::vector<float> x{-kMax, kMax, 0.0f, 1e38f};
  EXPECT_FALSE(q.represents_range(x));
  const blockq::uniform_tensor t = q.quantize(x);
  EXPECT_EQ(t.scales[0], kMax);
  EXPECT_EQ(t.mins[0], -kMax);
  const std::vector<float> y = q.dequantize(t);
  EXPECT_EQ(y, (std::vector<float>{-kMax, 0.0f, 0.0f, 0.0f}));
  // A narrower range, or two bits, or symmetric codes: representable.
  EXPECT_TRUE(q.represents_range(std::vector<float>{-kMax / 2, kMax / 2}));
  EXPECT_TRUE(blockq::uniform_quantizer<>({2, false, 32, {}}).represents_range(x));
  EXPECT_TRUE(blockq::uniform_quantizer<>({1, true, 32, blockq::scale_rule::signed_max}).represents_range(x));
  // Two bits span it: levels -FLT_MAX + k * (2 FLT_MAX / 3), the top one within rounding of FLT_MAX.
  const blockq::uniform_quantizer<> q2({2, false, 32, {}});
  const std::vector<float> y2 = q2.dequantize(q2.quantize(x));
  EXPECT_EQ(y2[0], -kMax);
  EXPECT_NEAR(y2[1] / kMax, 1.0, 1e-6);
}

// Ordinary ranges keep the plain expressions' bits: (hi - lo) / qmax and q * scale + min.
TEST(Extreme, OrdinaryRangesUnchanged) {
  const blockq::uniform_quantizer<> q({4, false, 32, blockq::scale_rule::minmax});
  std::vector<float> x(32);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::ldexp(static_cast<float>(i) - 13.3f, 120);
  const blockq::uniform_tensor t = q.quantize(x);
  const float lo = x.front(), hi = x.back();
  EXPECT_EQ(t.scales[0], (hi - lo) / 15.0f);
  EXPECT_EQ(t.mins[0], lo);
  const std::vector<float> y = q.dequantize(t);
  for (std::size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(y[i], static_cast<float>(t.codes[i]) * t.scales[0] + t.mins[0]) << i;
}

}  // namespace
