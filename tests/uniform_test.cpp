// Uniform integer quantization (SPEC §5) and seed 001's worked example.
#include "blockq/uniform.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "blockq/metrics.hpp"

#include "test_util.hpp"

namespace {

using blockq::scale_rule;
using blockq::uniform_options;

// Seed 001, n_bits = 4, use_min: the numbers printed in the notebook.
TEST(Uniform, Seed001AsymmetricExample) {
  const std::vector<float> x = {5.63109251f, -0.66333746f, -3.7742885f, -5.53918171f,
                                -8.02601077f, 3.97313181f, 0.47977315f, 3.40512398f};
  const blockq::uniform_quantizer<> q({4, false, 0, {}});  // one block for the whole vector
  const auto t = q.quantize(x);
  const std::vector<std::uint8_t> want_codes = {15, 8, 5, 3, 0, 13, 9, 13};
  EXPECT_EQ(t.codes, want_codes);
  ASSERT_EQ(t.scales.size(), 1u);
  // The seed works in float64 on inputs printed to 8 decimals; blockq in float32.
  EXPECT_NEAR(t.scales[0], 0.910473552006432, 0.910473552006432 * 1e-6);
  EXPECT_NEAR(t.mins[0], -8.026010772858172, 8.026010772858172 * 1e-7);
  const auto y = q.dequantize(t);
  EXPECT_NEAR(blockq::mse(x, y), 0.05551108470975463, 1e-6);
  // dq0 as printed by the seed.
  const std::vector<float> dq0 = {5.631092f, -0.7422223f, -3.4736428f, -5.29459f,
                                  -8.0260105f, 3.8101454f, 0.16825104f, 3.8101454f};
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], dq0[i], 2e-6f) << i;
}

TEST(Uniform, SymmetricAbsmaxUsesPlusMinusQmax) {
  const std::vector<float> x = {-1.0f, 0.5f, 0.25f, 7.0f, -7.0f, 3.5f, 0.0f, 1.5f};
  const blockq::uniform_quantizer<> q({4, true, 8, {}});
  const auto t = q.quantize(x);
  EXPECT_EQ(t.scales[0], 1.0f);  // 7 / 7
  const blockq::int_format f{4, true};
  const std::vector<int> want = {-1, 0, 0, 7, -7, 4, 0, 2};  // 0.5, 3.5 and 1.5 round half to even
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(f.to_int(t.codes[i]), want[i]) << i;
  EXPECT_TRUE(t.mins.empty());
}

TEST(Uniform, SignedMaxIsTheGgmlQ4_0Convention) {
  // d = m / -8 with m the element of largest magnitude, sign kept: m maps to -8.
  const std::vector<float> x = {1.0f, -2.0f, 4.0f, 0.5f, -4.0f, 3.0f, 2.0f, -1.0f};
  const blockq::uniform_quantizer<> q({4, true, 8, scale_rule::signed_max});
  const auto t = q.quantize(x);
  EXPECT_EQ(t.scales[0], -0.5f);  // first largest |x| is +4
  const blockq::int_format f{4, true};
  const std::vector<int> want = {-2, 4, -8, -1, 7, -6, -4, 2};  // -4 / -0.5 = 8 clamps to 7
  for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(f.to_int(t.codes[i]), want[i]) << i;
  const auto y = q.dequantize(t);
  EXPECT_EQ(y[2], 4.0f);
  EXPECT_EQ(y[4], -3.5f);
}

TEST(Uniform, ErrorFallsFourfoldPerBitAndAsymmetricHandlesOffsets) {
  std::mt19937_64 gen(11);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(1 << 16), shifted(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = d(gen);
    shifted[i] = x[i] + 5.0f;
  }
  // The step is amax / qmax, so the MSE falls as (qmax_b / qmax_{b-1})^2: 9, 5.4, 4.6, ... -> 4.
  double prev = 0;
  for (int bits = 2; bits <= 8; ++bits) {
    const blockq::uniform_quantizer<> q({bits, true, 32, {}});
    const double m = blockq::mse(x, q.dequantize(q.quantize(x)));
    if (bits > 2) {
      const double r = static_cast<double>(q.format().qmax()) / ((1 << (bits - 2)) - 1);
      EXPECT_NEAR(prev / m, r * r, 0.1 * r * r) << bits;
    }
    prev = m;
  }
  const blockq::uniform_quantizer<> sym({4, true, 32, {}}), asym({4, false, 32, {}});
  EXPECT_LT(blockq::mse(shifted, asym.dequantize(asym.quantize(shifted))),
            blockq::mse(shifted, sym.dequantize(sym.quantize(shifted))) / 3);
}

TEST(Uniform, ConstantZeroAndNanBlocks) {
  std::vector<float> x(24, 2.5f);
  std::fill(x.begin() + 8, x.begin() + 16, 0.0f);
  x[20] = std::numeric_limits<float>::quiet_NaN();
  for (bool sym : {true, false}) {
    const blockq::uniform_quantizer<> q({3, sym, 8, {}});
    const auto y = q.dequantize(q.quantize(x));
    for (int i = 0; i < 8; ++i) EXPECT_EQ(y[i], 2.5f) << sym;  // a constant block is exact
    for (int i = 8; i < 16; ++i) EXPECT_EQ(y[i], 0.0f) << sym;
    for (int i = 16; i < 24; ++i) EXPECT_TRUE(std::isnan(y[i])) << sym << i;
  }
}

TEST(Uniform, OneBitAsymmetricAndAllWidthsRoundTripTheirOwnGrid) {
  for (int bits = 1; bits <= 8; ++bits) {
    const blockq::uniform_quantizer<> q({bits, false, 0, {}});
    const int levels = 1 << bits;
    std::vector<float> x(static_cast<std::size_t>(levels));
    for (int i = 0; i < levels; ++i) x[static_cast<std::size_t>(i)] = -1.0f + 0.25f * static_cast<float>(i);
    const auto t = q.quantize(x);
    for (int i = 0; i < levels; ++i) EXPECT_EQ(t.codes[static_cast<std::size_t>(i)], i) << bits;
    EXPECT_EQ(q.dequantize(t), x) << bits;
  }
}

TEST(Uniform, InvalidArgumentsNameTheValue) {
  const auto message = [](auto&& f) { return blockq_test::invalid_argument_message(f); };
  EXPECT_NE(message([] { blockq::uniform_quantizer<>({0, true, 32, {}}); }).find("0"), std::string::npos);
  EXPECT_NE(message([] { blockq::uniform_quantizer<>({9, true, 32, {}}); }).find("9"), std::string::npos);
  EXPECT_NE(message([] { blockq::uniform_quantizer<>({1, true, 32, {}}); }).find("bits = 1"), std::string::npos);
  EXPECT_NE(message([] { blockq::uniform_quantizer<>({4, false, 32, scale_rule::absmax}); }).find("absmax"), std::string::npos);
  EXPECT_NE(message([] { blockq::uniform_quantizer<>({4, true, 32, scale_rule::ocp}); }).find("ocp"), std::string::npos);
  const blockq::uniform_quantizer<> q({4, false, 32, {}});
  std::vector<float> x(64), scales(2), mins(1);
  std::vector<std::uint8_t> codes(64);
  EXPECT_NE(message([&] { q.quantize(x, codes, scales, mins); }).find("mins has 1"), std::string::npos);
}

}  // namespace
