// SPDX-License-Identifier: Apache-2.0
// scale_storage.hpp and uniform_options::storage: scales rounded to float16 / bfloat16 before
// the codes, searches scoring the stored scale.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "blockq/scale_storage.hpp"
#include "blockq/uniform.hpp"
#include "test_util.hpp"

namespace {

using blockq::scale_rule;
using blockq::scale_storage;

TEST(ScaleStorage, RoundingAndSteps) {
  EXPECT_EQ(blockq::stored_scale(1.0f + 0x1p-11f, scale_storage::float16), 1.0f);  // tie to even
  EXPECT_EQ(blockq::stored_scale(1.0f + 0x1p-11f + 0x1p-20f, scale_storage::float16), 1.0f + 0x1p-10f);
  EXPECT_EQ(blockq::stored_scale(1.0f + 0x1p-8f, scale_storage::bfloat16), 1.0f);
  EXPECT_EQ(blockq::stored_scale(0.1f, scale_storage::float32), 0.1f);
  EXPECT_EQ(blockq::step_stored_scale(1.0f, 1, scale_storage::float16), 1.0f + 0x1p-10f);
  EXPECT_EQ(blockq::step_stored_scale(1.0f, -1, scale_storage::float16), 1.0f - 0x1p-11f);
  EXPECT_EQ(blockq::step_stored_scale(1.0f, 1, scale_storage::bfloat16), 1.0f + 0x1p-7f);
  EXPECT_EQ(blockq::step_stored_scale(-1.0f, 1, scale_storage::float16), -(1.0f - 0x1p-11f));
  EXPECT_EQ(blockq::step_stored_scale(0x1p-24f, -2, scale_storage::float16), -0.0f);
  EXPECT_TRUE(std::signbit(blockq::step_stored_scale(0.0f, -1, scale_storage::float16)));
  EXPECT_EQ(blockq::step_stored_scale(65504.0f, 1, scale_storage::float16), 65504.0f);  // stays finite
  EXPECT_EQ(blockq::parse_scale_storage("bfloat16"), scale_storage::bfloat16);
}

double sse(const std::vector<float>& x, const std::vector<float>& y) {
  double s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  return s;
}

TEST(ScaleStorage, UniformEncodesWithTheStoredScale) {
  const auto x = blockq_test::normal_floats(32 * 512, 17, 3.0f);
  for (scale_storage st : {scale_storage::float16, scale_storage::bfloat16}) {
    for (bool sym : {true, false}) {
      for (scale_rule r : {sym ? scale_rule::absmax : scale_rule::minmax, scale_rule::lsq, scale_rule::mse}) {
        blockq::uniform_options o{4, sym, 32, r};
        const blockq::uniform_quantizer<> plain(o);
        o.storage = st;
        const blockq::uniform_quantizer<> stored(o);
        const auto t = stored.quantize(x);
        const auto f = plain.quantize(x);
        for (std::size_t b = 0; b < t.scales.size(); ++b) {
          ASSERT_EQ(blockq::stored_scale(t.scales[b], st), t.scales[b]) << b;
          if (!sym) {
            ASSERT_EQ(blockq::stored_scale(t.mins[b], st), t.mins[b]) << b;
          }
          // The codes are those of the stored values.
          std::vector<std::uint8_t> c(32);
          stored.encode_block(std::span<const float>(x.data() + b * 32, 32), {t.scales[b], sym ? 0.0f : t.mins[b]}, c.data());
          ASSERT_TRUE(std::equal(c.begin(), c.end(), t.codes.begin() + b * 32)) << b;
        }
        const std::vector<float> xs(x), ys = stored.dequantize(t);
        // The float32 result rounded afterwards (the naive way): codes at the unrounded scale,
        // decoded with the rounded one. Searching the stored scale is never worse.
        blockq::uniform_tensor naive = f;
        for (auto& s : naive.scales) s = blockq::stored_scale(s, st);
        for (auto& m : naive.mins) m = blockq::stored_scale(m, st);
        const double e_stored = sse(xs, ys), e_naive = sse(xs, plain.dequantize(naive));
        if (r == scale_rule::lsq || r == scale_rule::mse) {
          EXPECT_LE(e_stored, e_naive) << to_string(r);
        } else {
          EXPECT_LE(e_stored, e_naive * 1.0001) << to_string(r);
        }
      }
    }
  }
}

}  // namespace
