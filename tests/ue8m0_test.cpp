#include "blockq/formats/ue8m0.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace {

using blockq::ue8m0;

TEST(Ue8m0, EveryCodeDecodesToItsPowerOfTwo) {
  for (int c = 0; c < 255; ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    EXPECT_EQ(ue8m0::decode(code), std::ldexp(1.0f, c - 127)) << c;
    EXPECT_EQ(ue8m0::encode(ue8m0::decode(code)), code) << c;
    EXPECT_EQ(ue8m0::from_exponent(c - 127), code);
  }
  EXPECT_TRUE(std::isnan(ue8m0::decode(0xFF)));
}

TEST(Ue8m0, RoundsToTheNearestPowerOfTwoTiesToEvenCode) {
  EXPECT_EQ(ue8m0::encode(1.4999999f), 127);
  EXPECT_EQ(ue8m0::encode(1.5000001f), 128);
  EXPECT_EQ(ue8m0::encode(1.5f), 128);  // tie between codes 127 and 128: the even one
  EXPECT_EQ(ue8m0::encode(3.0f), 128);  // tie between codes 128 and 129
  EXPECT_EQ(ue8m0::encode(std::nextafter(2.0f, 0.0f)), 128);
}

TEST(Ue8m0, SaturatesAndClamps) {
  EXPECT_EQ(ue8m0::from_exponent(-500), 0);
  EXPECT_EQ(ue8m0::from_exponent(500), 254);
  EXPECT_EQ(ue8m0::encode(std::numeric_limits<float>::infinity()), 254);
  EXPECT_EQ(ue8m0::encode(std::numeric_limits<float>::quiet_NaN()), 0xFF);
  EXPECT_EQ(ue8m0::encode(0.0f), 0);
  EXPECT_EQ(ue8m0::encode(std::numeric_limits<float>::denorm_min()), 0);
  EXPECT_EQ(ue8m0::encode(std::numeric_limits<float>::max()), 254);
}

}  // namespace
