#include "blockq/formats/half.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>

namespace {

using blockq::bfloat16;
using blockq::float16;

TEST(Float16, EveryValueRoundTrips) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = float16::from_bits(static_cast<std::uint16_t>(b)).to_float();
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(float16::from_float(f).to_float()));
      continue;
    }
    EXPECT_EQ(float16::from_float(f).bits, b) << std::hex << b;
  }
  EXPECT_EQ(float16::from_bits(0x3C00).to_float(), 1.0f);
  EXPECT_EQ(float16::from_bits(0x7BFF).to_float(), 65504.0f);
  EXPECT_EQ(float16::from_bits(0x0001).to_float(), std::ldexp(1.0f, -24));
}

TEST(Float16, RoundsToNearestEven) {
  // Midpoints between neighbouring halfs, and their float neighbours.
  std::mt19937 gen(7);
  for (int i = 0; i < 200000; ++i) {
    const auto b = static_cast<std::uint16_t>(gen() & 0x7BFE);
    const double lo = float16::from_bits(b).to_float(), hi = float16::from_bits(static_cast<std::uint16_t>(b + 1)).to_float();
    const auto mid = static_cast<float>((lo + hi) / 2);  // exact in float
    const std::uint16_t even = (b & 1) ? static_cast<std::uint16_t>(b + 1) : b;
    ASSERT_EQ(float16::from_float(mid).bits, even) << mid;
    ASSERT_EQ(float16::from_float(std::nextafter(mid, 0.0f)).bits, b) << mid;
    ASSERT_EQ(float16::from_float(std::nextafter(mid, 1e9f)).bits, b + 1) << mid;
  }
  EXPECT_EQ(float16::from_float(65520.0f).bits, 0x7C00);  // the tie above 65504 overflows
  EXPECT_EQ(float16::from_float(std::nextafter(65520.0f, 0.0f)).bits, 0x7BFF);
  EXPECT_EQ(float16::from_float(std::ldexp(1.0f, -25)).bits, 0);  // tie to even 0
  EXPECT_EQ(float16::from_float(std::nextafter(std::ldexp(1.0f, -25), 1.0f)).bits, 1);
  EXPECT_EQ(float16::from_float(-0.0f).bits, 0x8000);
}

// _Float16 in C++: GCC 12 on x86-64, GCC 13+ and Clang elsewhere (GCC 12 defines
// __FLT16_MAX__ on AArch64 for C only).
#if defined(__FLT16_MAX__) && (defined(__x86_64__) || defined(__clang__) || __GNUC__ >= 13)
TEST(Float16, MatchesTheCompilersConversion) {
  std::mt19937 gen(11);
  for (int i = 0; i < 1000000; ++i) {
    const std::uint32_t u = gen();
    const float f = std::bit_cast<float>(u);
    if (std::isnan(f)) continue;
    const auto h = static_cast<_Float16>(f);
    std::uint16_t hb;
    std::memcpy(&hb, &h, 2);
    ASSERT_EQ(float16::from_float(f).bits, hb) << std::hex << u;
  }
}
#endif

TEST(Bfloat16, RoundTripsAndRoundsToNearestEven) {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float f = bfloat16::from_bits(static_cast<std::uint16_t>(b)).to_float();
    if (std::isnan(f)) continue;
    EXPECT_EQ(bfloat16::from_float(f).bits, b);
  }
  EXPECT_EQ(bfloat16::from_float(std::bit_cast<float>(0x3F808000u)).bits, 0x3F80);  // tie, even stays
  EXPECT_EQ(bfloat16::from_float(std::bit_cast<float>(0x3F818000u)).bits, 0x3F82);  // tie, odd goes up
  EXPECT_EQ(bfloat16::from_float(std::bit_cast<float>(0x3F808001u)).bits, 0x3F81);
  EXPECT_TRUE(std::isnan(bfloat16::from_float(std::bit_cast<float>(0x7F800001u)).to_float()));
}

}  // namespace
