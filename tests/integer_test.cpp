#include "blockq/formats/integer.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace {

using blockq::int_format;

TEST(IntFormat, EveryCodeRoundTripsForEveryWidth) {
  for (int bits = 1; bits <= 8; ++bits) {
    for (bool is_signed : {true, false}) {
      const int_format f{bits, is_signed};
      EXPECT_EQ(f.qmax() - f.qmin() + 1, 1 << bits);
      for (int q = f.qmin(); q <= f.qmax(); ++q) {
        const std::uint8_t code = f.to_code(q);
        EXPECT_LT(code, 1 << bits);
        EXPECT_EQ(f.to_int(code), q) << bits << (is_signed ? " signed" : " unsigned");
        EXPECT_EQ(f.encode(static_cast<float>(q)), code);
      }
    }
  }
  EXPECT_EQ((int_format{4, true}.to_code(-1)), 0x0F);  // b-bit two's complement
  EXPECT_EQ((int_format{4, true}.to_int(0xF8)), -8);   // bits above b are ignored
}

TEST(IntFormat, RoundsHalfToEvenAndClamps) {
  const int_format s4{4, true};
  EXPECT_EQ(s4.quantize(0.5f), 0);
  EXPECT_EQ(s4.quantize(1.5f), 2);
  EXPECT_EQ(s4.quantize(2.5f), 2);
  EXPECT_EQ(s4.quantize(-2.5f), -2);
  EXPECT_EQ(s4.quantize(std::nextafter(2.5f, 3.0f)), 3);
  EXPECT_EQ(s4.quantize(7.4f), 7);
  EXPECT_EQ(s4.quantize(100.0f), 7);
  EXPECT_EQ(s4.quantize(-100.0f), -8);
  EXPECT_EQ(s4.quantize(std::numeric_limits<float>::infinity()), 7);
  EXPECT_EQ(s4.quantize(std::numeric_limits<float>::quiet_NaN()), 0);
  EXPECT_EQ(s4.quantize(-0.0f), 0);
  const int_format u8{8, false};
  EXPECT_EQ(u8.quantize(254.5f), 254);
  EXPECT_EQ(u8.quantize(-3.0f), 0);
  EXPECT_EQ(u8.quantize(1e20f), 255);
  for (float y = -300.0f; y <= 300.0f; y += 0.125f)
    EXPECT_EQ(u8.quantize(y), static_cast<int>(std::clamp(std::nearbyint(y), 0.0f, 255.0f))) << y;
}

TEST(IntFormat, BitsOutsideOneToEightThrowNamingTheValue) {
  for (int bits : {0, 9, -1}) {
    try {
      blockq::detail::check_int_bits(bits);
      FAIL() << bits;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(bits)), std::string::npos) << e.what();
    }
  }
}

}  // namespace
