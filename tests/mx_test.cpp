// MX quantization (SPEC §3): scale rules, seeds 002 and 003, edge semantics.
#include "blockq/mx.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "blockq/metrics.hpp"

#include "test_util.hpp"

namespace {

using blockq::e2m1;
using blockq::mx_options;
using blockq::scale_rule;
using blockq::tie_mode;
using blockq::ue8m0;

// Oracle for the exponent of each rule, by exact comparisons with ldexp in
// double (no bit tricks, no log2): ocp: largest j with 2^j <= amax, minus emax;
// ceil: smallest j with amax <= max * 2^j; floor: largest j with max * 2^j <= amax.
int oracle_exponent(double amax, scale_rule rule, double max, int emax) {
  auto largest = [](auto pred) {
    int j = 300;
    while (!pred(j)) --j;
    return j;
  };
  int j = 0;
  if (rule == scale_rule::ocp) j = largest([&](int k) { return std::ldexp(1.0, k) <= amax; }) - emax;
  if (rule == scale_rule::floor) j = largest([&](int k) { return max * std::ldexp(1.0, k) <= amax; });
  if (rule == scale_rule::ceil) j = largest([&](int k) { return !(amax <= max * std::ldexp(1.0, k - 1)); });
  return std::clamp(j, -127, 127);
}

TEST(MxScale, ExponentsComeFromTheBitsJustBelowPowersOfTwo) {
  for (int k = -148; k <= 127; ++k) {
    for (float amax : {std::ldexp(1.0f, k), std::nextafter(std::ldexp(1.0f, k), 0.0f),
                       std::nextafter(std::ldexp(1.0f, k), 1e38f), 6.0f * std::ldexp(1.0f, k - 3),
                       std::nextafter(6.0f * std::ldexp(1.0f, k - 3), 0.0f)}) {
      if (!(amax > 0.0f) || std::isinf(amax)) continue;
      for (auto rule : {scale_rule::ocp, scale_rule::ceil, scale_rule::floor}) {
        const int want = oracle_exponent(amax, rule, 6.0, 2);
        ASSERT_EQ(ue8m0::exponent(blockq::mx_scale_code<e2m1>(amax, rule)), want)
            << "amax=" << amax << " k=" << k << " rule=" << blockq::to_string(rule);
      }
    }
  }
}

TEST(MxScale, CeilNeverClipsAndFloorIsTheLargestThatFits) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(0.5f, 1000.0f);
  for (int i = 0; i < 10000; ++i) {
    const float amax = u(gen);
    const float c = ue8m0::decode(blockq::mx_scale_code<e2m1>(amax, scale_rule::ceil));
    const float f = ue8m0::decode(blockq::mx_scale_code<e2m1>(amax, scale_rule::floor));
    EXPECT_LE(amax / c, 6.0f);
    EXPECT_GT(amax / (c / 2), 6.0f);
    EXPECT_GE(amax / f, 6.0f);
    EXPECT_LT(amax / (f * 2), 6.0f);
  }
}

// Seed 002's mxfp4_naive (the OCP rule, ties toward zero through bucketize),
// recomputed for three blocks by an independent pure-Python script outside
// the repository (float32-exact inputs); expected UE8M0 bytes and E2M1 codes
// (a zero keeps the sign of x) written here.
TEST(Mxfp4, OcpRuleWithTiesTowardZeroMatchesSeed002Naive) {
  const std::vector<float> x = {
      // block A: ties at every rounding threshold, amax 5 -> e = 127
      0.25f, -0.75f, 1.25f, -1.75f, 2.5f, -3.5f, 5.0f, -5.0f, 0.0f, -0.0f, 0.5f, 1.0f, 3.0f, 4.0f, -4.0f,
      0.125f, 2.25f, -2.75f, 4.5f, -4.75f, 0.3125f, 1.5f, -1.5f, 2.0f, 3.25f, -3.75f, 0.625f, -0.875f,
      1.125f, 4.0f, -0.25f, 0.75f,
      // block B: k/64
      -0.5625f, 0.59375f, -2.078125f, 1.5f, -2.5625f, 2.375f, -0.703125f, -2.40625f, 2.703125f, -1.25f,
      0.734375f, 2.421875f, 0.9375f, 0.296875f, 1.890625f, -0.421875f, 2.484375f, -1.796875f, 0.359375f,
      0.140625f, 2.03125f, 1.765625f, 0.890625f, -2.71875f, -0.578125f, 0.546875f, 0.53125f, -1.59375f,
      2.921875f, 1.765625f, -2.53125f, 0.09375f,
      // block C: k/65536
      -0.01318359375f, 0.0104827880859375f, 0.020294189453125f, -0.01202392578125f, 0.0083465576171875f,
      -0.0119171142578125f, 0.02685546875f, 0.020294189453125f, 0.0013427734375f, -0.0132293701171875f,
      0.001708984375f, 0.0071868896484375f, -0.0037841796875f, 0.0052032470703125f, -0.018890380859375f,
      0.016815185546875f, 0.02947998046875f, 0.022552490234375f, 0.0005340576171875f, -0.01519775390625f,
      0.02069091796875f, 0.0301666259765625f, -0.0278167724609375f, -0.002288818359375f,
      -0.0301513671875f, 0.00274658203125f, 0.0174713134765625f, -0.0257415771484375f,
      -0.0149078369140625f, 0.026336669921875f, 0.0058441162109375f, 0.0257720947265625f};
  const std::vector<std::uint8_t> want_scales = {127, 126, 119};
  const std::vector<std::uint8_t> want_codes = {
      0, 9, 2, 11, 4, 13, 6, 14, 0, 8, 1, 2, 5, 6, 14, 0, 4, 13, 6, 14, 1, 3, 11, 4, 5, 14, 1, 10, 2, 6, 8, 1,
      10, 2, 14, 5, 15, 6, 11, 14, 7, 12, 3, 6, 4, 1, 6, 10, 6, 14, 1, 1, 6, 6, 4, 15, 10, 2, 2, 13, 7, 6, 15, 0,
      13, 5, 7, 13, 4, 13, 7, 7, 1, 13, 1, 4, 10, 3, 14, 6, 7, 7, 0, 14, 7, 7, 15, 9, 15, 1, 6, 15, 14, 7, 3, 7};
  const blockq::mxfp4_quantizer q({32, scale_rule::ocp, tie_mode::toward_zero});
  const auto t = q.quantize(x);
  EXPECT_EQ(t.scales, want_scales);
  EXPECT_EQ(t.codes, want_codes);
  // With ties to even the tie-free block B is unchanged and block A differs on its ties.
  const auto even = blockq::mxfp4_quantizer({32, scale_rule::ocp, tie_mode::even}).quantize(x);
  EXPECT_TRUE(std::equal(even.codes.begin() + 32, even.codes.begin() + 64, want_codes.begin() + 32));
  EXPECT_EQ(even.codes[0], 0);   // 0.25: tie 0 | 0.5 -> even code 0
  EXPECT_EQ(even.codes[1], 10);  // -0.75: tie 0.5 | 1 -> even code 2 (1.0)
  EXPECT_EQ(even.codes[4], 4);   // 2.5: tie 2 | 3 -> even code 4 (2.0)
  EXPECT_EQ(even.codes[6], 6);   // 5: tie 4 | 6 -> even code 6 (4.0)
  EXPECT_EQ(even.codes[5], 14);  // -3.5: tie 3 | 4 -> even code 6 (4.0)
}

// Seed 003 (deep-ml's MXFP4 exercise): scale 2^floor(log2(amax / 6)), block
// 32, a partial last block, ties to the smaller magnitude. Expected values
// from an independent pure-Python run of the seed's algorithm (outside the
// repository) on these k/64 inputs: scales [1, 0.125], MSE 1.4083740234375.
TEST(Mxfp4, FloorRuleReproducesSeed003WithAPartialBlock) {
  const int ks[40] = {37, -120, 5,   64,  -64, 300, -720, 16, -3, 88,  250, -47, 0,  1,  -1, 96, 160, -200, 32, -32,
                      48, -48,  720, -15, 7,   100, -100, 8,  -8, 24,  40,  -56, 12, -40, 20, -6, 48,  -4,   2,  16};
  std::vector<float> x;
  for (int k : ks) x.push_back(static_cast<float>(k) / 64.0f);
  const std::vector<float> want = {
      0.5f, -2.0f, 0.0f, 1.0f, -1.0f, 4.0f, -6.0f, 0.0f, -0.0f, 1.5f, 4.0f, -0.5f, 0.0f, 0.0f,
      -0.0f, 1.5f, 2.0f, -3.0f, 0.5f, -0.5f, 0.5f, -0.5f, 6.0f, -0.0f, 0.0f, 1.5f, -1.5f, 0.0f,
      -0.0f, 0.5f, 0.5f, -1.0f, 0.1875f, -0.5f, 0.25f, -0.0625f, 0.75f, -0.0625f, 0.0f, 0.25f};
  const blockq::mxfp4_quantizer q({32, scale_rule::floor, tie_mode::toward_zero});
  const auto t = q.quantize(x);
  ASSERT_EQ(t.scales.size(), 2u);
  EXPECT_EQ(ue8m0::decode(t.scales[0]), 1.0f);
  EXPECT_EQ(ue8m0::decode(t.scales[1]), 0.125f);
  const auto y = q.dequantize(t);
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], want[i]) << "i=" << i << " x=" << x[i];
  EXPECT_DOUBLE_EQ(blockq::mse(x, y), 1.4083740234375);
  // The seed prints the MSE rounded to 8 decimals.
  EXPECT_EQ(std::round(blockq::mse(x, y) * 1e8) / 1e8, 1.40837402);
}

using blockq_test::normal_floats;

TEST(Mxfp4, MillionNormalsMatchTheSeedMse) {
  const auto x = normal_floats(1 << 20, 1);
  const blockq::mxfp4_quantizer q;  // ocp, ties to even, block 32
  const auto y = q.dequantize(q.quantize(x));
  const double m = blockq::mse(x, y);
  EXPECT_NEAR(m, 0.01322, 0.01322 * 0.01) << m;
  // Packed output holds the same codes.
  std::vector<std::uint8_t> packed((x.size() + 1) / 2), scales(q.num_blocks(x.size()));
  q.quantize_packed(x, packed, scales);
  std::vector<float> y2(x.size());
  q.dequantize_packed(packed, scales, y2);
  EXPECT_EQ(y, y2);
}

TEST(Mxfp4, ZeroNanAndInfBlocks) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> x(96, 0.0f);
  x[40] = 1.0f;
  x[41] = nan;   // block 1 has NaN
  x[70] = -inf;  // block 2 has Inf
  x[71] = 3.0f;
  const blockq::mxfp4_quantizer q;
  const auto t = q.quantize(x);
  EXPECT_EQ(t.scales[0], 0);  // amax = 0 -> e = 0
  EXPECT_EQ(t.scales[1], 0xFF);
  EXPECT_EQ(t.scales[2], 0xFF);
  for (std::size_t i = 0; i < 32; ++i) EXPECT_EQ(t.codes[i], 0);
  for (std::size_t i = 32; i < 96; ++i) EXPECT_EQ(t.codes[i], 0) << i;
  const auto y = q.dequantize(t);
  for (std::size_t i = 0; i < 32; ++i) EXPECT_EQ(y[i], 0.0f);
  for (std::size_t i = 32; i < 96; ++i) EXPECT_TRUE(std::isnan(y[i])) << i;
}

TEST(Mxfp4, ExtremeMagnitudesClampTheExponent) {
  const blockq::mxfp4_quantizer q;
  std::vector<float> big(32, std::numeric_limits<float>::max());
  const auto tb = q.quantize(big);
  EXPECT_EQ(tb.scales[0], ue8m0::from_exponent(127 - 2));
  EXPECT_EQ(q.dequantize(tb)[0], 6.0f * std::ldexp(1.0f, 125));
  std::vector<float> tiny(32, std::numeric_limits<float>::denorm_min());
  const auto tt = q.quantize(tiny);
  EXPECT_EQ(tt.scales[0], 0);  // 2^-151 clamps to 2^-127
  EXPECT_EQ(tt.codes[0], 0);
}

TEST(Mxfp4, PartialBlocksAndBlock16) {
  const auto x = normal_floats(1000, 5);  // 31 full blocks + 8
  for (std::size_t block : {std::size_t{16}, std::size_t{32}}) {
    const blockq::mxfp4_quantizer q({block, scale_rule::ocp, tie_mode::even});
    const auto t = q.quantize(x);
    ASSERT_EQ(t.scales.size(), (1000 + block - 1) / block);
    // Each block equals the same block quantized alone.
    for (std::size_t b = 0; b < t.scales.size(); ++b) {
      const std::size_t len = std::min(block, x.size() - b * block);
      const auto tb = q.quantize(std::span<const float>(x).subspan(b * block, len));
      EXPECT_EQ(tb.scales[0], t.scales[b]);
      EXPECT_TRUE(std::equal(tb.codes.begin(), tb.codes.end(), t.codes.begin() + b * block));
    }
    // Every dequantized element is the E2M1 value nearest x / scale, times scale.
    const auto y = q.dequantize(t);
    for (std::size_t i = 0; i < x.size(); ++i) {
      const float s = ue8m0::decode(t.scales[i / block]);
      EXPECT_EQ(y[i], e2m1::round(x[i] / s) * s);
    }
  }
}

template <class E>
class MxElementTest : public ::testing::Test {};
using MxElements = ::testing::Types<blockq::e2m1, blockq::e2m3, blockq::e3m2, blockq::e4m3, blockq::e5m2, blockq::int8_mx>;
TYPED_TEST_SUITE(MxElementTest, MxElements);

TYPED_TEST(MxElementTest, OcpScaleAndElementsFollowTheDefinition) {
  using E = TypeParam;
  const auto x = normal_floats(4096, 9);
  const blockq::mx_quantizer<E> q;
  const auto t = q.quantize(x);
  const auto y = q.dequantize(t);
  for (std::size_t b = 0; b < t.scales.size(); ++b) {
    float amax = 0;
    for (std::size_t i = b * 32; i < b * 32 + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    EXPECT_EQ(ue8m0::exponent(t.scales[b]), oracle_exponent(amax, scale_rule::ocp, E::max_value, E::emax));
    const float s = ue8m0::decode(t.scales[b]);
    for (std::size_t i = b * 32; i < b * 32 + 32; ++i) {
      ASSERT_EQ(t.codes[i], E::encode(x[i] / s, tie_mode::even));
      ASSERT_EQ(y[i], E::decode(t.codes[i]) * s);
    }
  }
  // More element bits, less error.
  EXPECT_LT(blockq::mse(x, y), 0.015);
}

TEST(MxElements, ErrorShrinksWithElementPrecision) {
  const auto x = normal_floats(1 << 16, 4);
  auto err = [&](auto q) { return blockq::mse(x, q.dequantize(q.quantize(x))); };
  const double fp4 = err(blockq::mxfp4_quantizer{}), fp6 = err(blockq::mxfp6_e2m3_quantizer{}),
               fp8 = err(blockq::mxfp8_e4m3_quantizer{}), i8 = err(blockq::mxint8_quantizer{});
  // E2M3 and E4M3 both carry 3 mantissa bits: far below E2M1, close to each other.
  EXPECT_LT(fp6, fp4 / 10);
  EXPECT_LT(fp8, fp4 / 10);
  EXPECT_NEAR(fp8 / fp6, 1.0, 0.2);
  EXPECT_LT(i8, fp8 / 4) << i8;
}

TEST(Mxfp4, InvalidArgumentsNameTheValue) {
  const auto message = [](auto&& f) { return blockq_test::invalid_argument_message(f); };
  EXPECT_NE(message([] { blockq::mxfp4_quantizer({0, scale_rule::ocp, tie_mode::even}); }).find("got 0"), std::string::npos);
  EXPECT_NE(message([] { blockq::mxfp4_quantizer({32, scale_rule::minmax, tie_mode::even}); }).find("minmax"), std::string::npos);
  const blockq::mxfp4_quantizer q;
  std::vector<float> x(64);
  std::vector<std::uint8_t> codes(63), scales(2), packed(31);
  EXPECT_NE(message([&] { q.quantize(x, codes, scales); }).find("63"), std::string::npos);
  codes.resize(64);
  scales.resize(3);
  EXPECT_NE(message([&] { q.quantize(x, codes, scales); }).find("3"), std::string::npos);
  scales.resize(2);
  EXPECT_NE(message([&] { q.quantize_packed(x, packed, scales); }).find("31"), std::string::npos);
  const blockq::mxfp4_quantizer odd({15, scale_rule::ocp, tie_mode::even});
  EXPECT_NE(message([&] { odd.quantize_packed(x, packed, scales); }).find("15"), std::string::npos);
}

}  // namespace
