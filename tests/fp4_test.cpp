#include "blockq/fp4.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "blockq/metrics.hpp"

namespace {

TEST(Fp4, FloatScaleIsAmaxOverSixAndElementsRoundToNearest) {
  std::mt19937_64 gen(3);
  std::normal_distribution<float> d;
  std::vector<float> x(1000);
  for (auto& v : x) v = d(gen);
  const blockq::fp4_quantizer<> q;
  const auto t = q.quantize(x);
  const auto y = q.dequantize(t);
  for (std::size_t b = 0; b < t.scales.size(); ++b) {
    float amax = 0;
    for (std::size_t i = b * 32; i < std::min(x.size(), b * 32 + 32); ++i) amax = std::max(amax, std::fabs(x[i]));
    EXPECT_EQ(t.scales[b], amax / 6.0f);
    for (std::size_t i = b * 32; i < std::min(x.size(), b * 32 + 32); ++i) {
      // The nearest grid value: no other E2M1 value times the scale is closer.
      for (int c = 0; c < 16; ++c)
        ASSERT_LE(std::fabs(x[i] - y[i]), std::fabs(x[i] - blockq::e2m1::decode(static_cast<std::uint8_t>(c)) * t.scales[b]) * (1 + 1e-6f));
    }
  }
  // The block's amax is represented exactly (up to the rounding of amax / 6 * 6).
  EXPECT_NEAR(std::fabs(y[0] - x[0]) <= std::fabs(x[0]), true, 0);
}

TEST(Fp4, MillionNormalsBeatMxfp4) {
  std::mt19937_64 gen(1);
  std::normal_distribution<float> d;
  std::vector<float> x(1 << 20);
  for (auto& v : x) v = d(gen);
  const blockq::fp4_quantizer<> q;
  const double m = blockq::mse(x, q.dequantize(q.quantize(x)));
  EXPECT_NEAR(m, 0.01021, 0.0001) << m;  // README figure; MXFP4 ocp gives 0.01322
}

TEST(Fp4, ZeroAndNanBlocks) {
  std::vector<float> x(64, 0.0f);
  x[40] = std::numeric_limits<float>::infinity();
  const blockq::fp4_quantizer<> q;
  const auto t = q.quantize(x);
  EXPECT_EQ(t.scales[0], 0.0f);
  EXPECT_TRUE(std::isnan(t.scales[1]));
  for (auto c : t.codes) EXPECT_EQ(c, 0);
  const auto y = q.dequantize(t);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_TRUE(std::isnan(y[40]));
}

}  // namespace
