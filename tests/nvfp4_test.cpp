// NVFP4 (SPEC §4): FP32 tensor scale, E4M3 block scales, E2M1 elements.
#include "blockq/nvfp4.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "blockq/fp4.hpp"
#include "blockq/metrics.hpp"
#include "blockq/mx.hpp"
#include "blockq/pack.hpp"

#include "test_util.hpp"

namespace {

using blockq::e2m1;
using blockq::e4m3;

using blockq_test::normal_floats;

TEST(Nvfp4, FollowsTheModelOptDefinitionElementByElement) {
  const auto x = normal_floats(4096 + 7, 2);  // a partial last block too
  const blockq::nvfp4_quantizer<> q;
  const auto t = q.quantize(x);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const float s_t = amax / (6.0f * 448.0f);
  EXPECT_EQ(t.tensor_scale, s_t);
  ASSERT_EQ(t.scales.size(), (x.size() + 15) / 16);
  const auto y = q.dequantize(t);
  for (std::size_t b = 0; b < t.scales.size(); ++b) {
    float bmax = 0;
    for (std::size_t i = b * 16; i < std::min(x.size(), b * 16 + 16); ++i) bmax = std::max(bmax, std::fabs(x[i]));
    EXPECT_EQ(t.scales[b], e4m3::encode(bmax / (6.0f * s_t)));
    const float d = e4m3::decode(t.scales[b]) * s_t;
    for (std::size_t i = b * 16; i < std::min(x.size(), b * 16 + 16); ++i) {
      ASSERT_EQ(t.codes[i], e2m1::encode(x[i] / d)) << i;
      ASSERT_EQ(y[i], e2m1::decode(t.codes[i]) * d) << i;
    }
  }
}

TEST(Nvfp4, MillionNormals) {
  const auto x = normal_floats(1 << 20, 1);
  const blockq::nvfp4_quantizer<> q;
  const double m = blockq::mse(x, q.dequantize(q.quantize(x)));
  // The figure in the README (mt19937_64 seed 1, libstdc++): 0.009047
  EXPECT_NEAR(m, 0.009047, 0.00005) << m;
}

TEST(Nvfp4, ZeroTinyNanBlocksAndTheTensorScaleSwitch) {
  std::vector<float> x(64, 0.0f);
  x[0] = 2688.0f;     // s_t = 1
  x[16] = 1e-4f;      // block 1: amax / 6 = 1.7e-5 < 2^-10, the E4M3 scale rounds to 0
  x[40] = std::numeric_limits<float>::quiet_NaN();  // block 2
  const blockq::nvfp4_quantizer<> q;
  const auto t = q.quantize(x);
  EXPECT_EQ(t.tensor_scale, 1.0f);  // NaN does not poison the tensor scale
  EXPECT_EQ(t.scales[0], 0x7E);     // 448
  EXPECT_EQ(t.scales[1], 0);
  EXPECT_EQ(t.scales[2], e4m3::nan_code);
  EXPECT_EQ(t.scales[3], 0);  // all zero
  for (std::size_t i = 16; i < 64; ++i) EXPECT_EQ(t.codes[i], 0) << i;
  const auto y = q.dequantize(t);
  EXPECT_EQ(y[0], 2688.0f);
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_TRUE(std::isnan(y[33]));
  EXPECT_EQ(y[63], 0.0f);
  EXPECT_EQ(q.tensor_scale(std::vector<float>(16, 0.0f)), 1.0f);
  const blockq::nvfp4_quantizer<> off({blockq::scale_rule::absmax, blockq::tie_mode::even, false});
  EXPECT_EQ(off.tensor_scale(x), 1.0f);
}

TEST(Nvfp4, PackedIsTheOcpNibbleLayout) {
  const auto x = normal_floats(333, 8);
  const blockq::nvfp4_quantizer<> q;
  const auto t = q.quantize(x);
  std::vector<std::uint8_t> packed((x.size() + 1) / 2), scales(t.scales.size());
  q.quantize_packed(x, t.tensor_scale, packed, scales);
  EXPECT_EQ(packed, blockq::pack_nibbles(t.codes));
  EXPECT_EQ(scales, t.scales);
  std::vector<float> y(x.size());
  q.dequantize_packed(packed, scales, t.tensor_scale, y);
  EXPECT_EQ(y, q.dequantize(t));
}

// sqrt(sum (x - y)^2 / sum x^2) in double (no overflow for values near FLT_MAX); 1 when
// y is all zero, NaN when y holds a non-finite value.
double relative_error(const std::vector<float>& x, const std::vector<float>& y) {
  double se = 0.0, energy = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(y[i])) return std::numeric_limits<double>::quiet_NaN();
    const double d = static_cast<double>(x[i]) - static_cast<double>(y[i]);
    se += d * d;
    energy += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  }
  return std::sqrt(se / energy);
}

// A tensor of any magnitude keeps NVFP4's relative error: below amax ~ 3e-35 the ModelOpt
// tensor scale amax / 2688 is not a normal float (it was replaced by 1, which flushed
// every block to zero: relative error 1), and near FLT_MAX 6 * 448 * s_t can overflow.
// MXFP4 and FP4 on the same data are the yardstick.
TEST(Nvfp4, TinyAndHugeTensorsKeepTheirRelativeError) {
  const std::vector<float> base = normal_floats(4096, 7);
  float base_amax = 0.0f;
  for (float v : base) base_amax = std::max(base_amax, std::fabs(v));
  const blockq::mxfp4_quantizer mx;
  const blockq::fp4_quantizer<> fp4;
  for (const blockq::scale_rule rule : {blockq::scale_rule::absmax, blockq::scale_rule::mse}) {
    const blockq::nvfp4_quantizer<> nv({rule});
    double normal_error = 0.0;
    // amax: a normal tensor, tiny ones (the last two with subnormal elements) and huge ones.
    for (const float amax : {4.0f, 1e-30f, 3e-35f, 1e-36f, 1e-38f, 1e-41f, 1e30f, 1e38f,
                             std::numeric_limits<float>::max()}) {
      std::vector<float> x(base.size());
      for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>(static_cast<double>(base[i]) / base_amax * amax);
      const blockq::nvfp4_tensor t = nv.quantize(x);
      EXPECT_GT(t.tensor_scale, 0.0f) << amax;
      const double e_nv = relative_error(x, nv.dequantize(t));
      const double e_mx = relative_error(x, mx.dequantize(mx.quantize(x)));
      const double e_fp4 = relative_error(x, fp4.dequantize(fp4.quantize(x)));
      if (amax == 4.0f) normal_error = e_nv;
      ASSERT_TRUE(std::isfinite(e_nv)) << "amax " << amax;
      if (amax >= 1e-38f) {
        // Normal elements: the same quality as at unit scale, better than MXFP4 and FP4.
        EXPECT_NEAR(e_nv, normal_error, 0.01) << "amax " << amax << " mx " << e_mx << " fp4 " << e_fp4;
        EXPECT_LT(e_nv, e_mx) << "amax " << amax;
        EXPECT_LT(e_nv, e_fp4 * 1.02) << "amax " << amax;
      } else {
        // Subnormal elements carry few bits themselves: no worse than the other two.
        EXPECT_LE(e_nv, std::max(e_mx, e_fp4) * 1.05) << "amax " << amax << " mx " << e_mx << " fp4 " << e_fp4;
        EXPECT_LT(e_nv, 0.5) << "amax " << amax;
      }
    }
  }
}

TEST(Nvfp4, TensorScaleConvention) {
  const blockq::nvfp4_quantizer<> q;
  // ModelOpt: amax / (6 * 448) in float, whenever that is a normal float.
  for (const float amax : {1.0f, 2688.0f, 1e-30f, 3.2e-35f, 1e30f, 3e38f}) {
    const std::vector<float> x{amax, -0.5f * amax};
    EXPECT_EQ(q.tensor_scale(x), amax / (6.0f * 448.0f)) << amax;
  }
  // Below: a power of two 2^(floor(log2 amax) - 10), at least 2^-149.
  EXPECT_EQ(q.tensor_scale(std::vector<float>{0x1.8p-120f}), 0x1p-130f);
  EXPECT_EQ(q.tensor_scale(std::vector<float>{-0x1p-140f}), 0x1p-149f);
  EXPECT_EQ(q.tensor_scale(std::vector<float>{0x1p-149f}), 0x1p-149f);
  // At FLT_MAX: the largest dequantized value 6 * fl(448 * s_t) stays finite.
  const float s = q.tensor_scale(std::vector<float>{std::numeric_limits<float>::max()});
  EXPECT_TRUE(std::isfinite(6.0f * (448.0f * s)));
  EXPECT_LE(s, std::numeric_limits<float>::max() / 2688.0f);
}

TEST(Nvfp4, InvalidArgumentsNameTheValue) {
  const blockq::nvfp4_quantizer<> q;
  std::vector<float> x(32);
  std::vector<std::uint8_t> codes(32), scales(2);
  for (float s : {0.0f, -1.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    try {
      q.quantize(x, s, codes, scales);
      FAIL() << s;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("tensor scale"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(blockq::nvfp4_quantizer<>({blockq::scale_rule::ocp}), std::invalid_argument);
  scales.resize(3);
  EXPECT_THROW(q.quantize(x, 1.0f, codes, scales), std::invalid_argument);
}

}  // namespace
