// Element formats (SPEC §1) against a brute-force oracle: for any y, the
// nearest of all the format's finite values, ties broken by the tie mode.
#include "blockq/formats/minifloat.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace {

using blockq::tie_mode;

// The oracle: enumerate every finite non-negative code, pick the nearest
// magnitude; on an exact tie: even -> the code with an even last bit,
// toward_zero -> the smaller magnitude, away -> the larger. Saturates.
template <class F>
std::uint8_t oracle_encode(float y, tie_mode ties) {
  if (std::isnan(y)) return F::nan_code;
  const std::uint8_t sign = std::signbit(y) ? F::sign_mask : 0;
  const double a = std::fabs(static_cast<double>(y));
  int best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (int c = 0; c <= F::max_code; ++c) {
    const double v = F::decode(static_cast<std::uint8_t>(c));
    const double d = std::fabs(a - v);
    if (d < best_d) {
      best_d = d;
      best = c;
    } else if (d == best_d) {  // c is the larger magnitude of a tie
      if (ties == tie_mode::away || (ties == tie_mode::even && (c & 1) == 0)) best = c;
    }
  }
  return static_cast<std::uint8_t>(sign | best);
}

template <class F>
class MinifloatTest : public ::testing::Test {};
using Formats = ::testing::Types<blockq::e2m1, blockq::e2m3, blockq::e3m2, blockq::e4m3, blockq::e5m2>;
TYPED_TEST_SUITE(MinifloatTest, Formats);

TYPED_TEST(MinifloatTest, EveryCodeRoundTrips) {
  using F = TypeParam;
  for (int c = 0; c < (1 << F::bits); ++c) {
    const auto code = static_cast<std::uint8_t>(c);
    const float v = F::decode(code);
    if (std::isnan(v)) {
      EXPECT_TRUE(F::has_nan) << "code " << c;
      EXPECT_EQ(F::encode(v) & F::magnitude_mask, F::nan_code) << "code " << c;
      continue;
    }
    if (std::isinf(v)) continue;  // E5M2 Inf: conversion saturates (SPEC §1)
    for (auto t : {tie_mode::even, tie_mode::toward_zero, tie_mode::away})
      EXPECT_EQ(F::encode(v, t), code) << F::name << " code " << c << " value " << v;
  }
}

TYPED_TEST(MinifloatTest, MidpointsAndTheirNeighboursMatchTheOracle) {
  using F = TypeParam;
  int checked = 0;
  for (int c = 0; c < F::max_code; ++c) {
    const float lo = F::decode(static_cast<std::uint8_t>(c));
    const float hi = F::decode(static_cast<std::uint8_t>(c + 1));
    const float mid = (lo + hi) / 2;  // exact: both are short binary fractions
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2);
    for (float s : {1.0f, -1.0f}) {
      for (float y : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
        for (auto t : {tie_mode::even, tie_mode::toward_zero, tie_mode::away}) {
          ASSERT_EQ(F::encode(s * y, t), oracle_encode<F>(s * y, t))
              << F::name << " y=" << s * y << " tie=" << blockq::to_string(t);
          ++checked;
        }
      }
    }
    // The tie rules really differ on the midpoint itself.
    EXPECT_EQ(F::encode(mid, tie_mode::toward_zero), c);
    EXPECT_EQ(F::encode(mid, tie_mode::away), c + 1);
    EXPECT_EQ(F::encode(mid, tie_mode::even), (c & 1) ? c + 1 : c);
  }
  EXPECT_GT(checked, 0);
}

TYPED_TEST(MinifloatTest, RandomValuesMatchTheOracle) {
  using F = TypeParam;
  std::mt19937 gen(20261122);
  std::uniform_real_distribution<float> u(-1.2f * F::max_value, 1.2f * F::max_value);
  std::uniform_int_distribution<int> e(-30, 2);
  for (int i = 0; i < 20000; ++i) {
    const float y = u(gen) * std::ldexp(1.0f, e(gen));
    for (auto t : {tie_mode::even, tie_mode::toward_zero, tie_mode::away})
      ASSERT_EQ(F::encode(y, t), oracle_encode<F>(y, t)) << F::name << " y=" << y << " seed 20261122";
  }
}

TYPED_TEST(MinifloatTest, EdgeValues) {
  using F = TypeParam;
  EXPECT_EQ(F::encode(0.0f), 0);
  EXPECT_EQ(F::encode(-0.0f), F::sign_mask);  // the sign of y is kept: -0 is its own code
  EXPECT_EQ(F::encode(std::numeric_limits<float>::denorm_min()), 0);
  EXPECT_EQ(F::encode(-std::numeric_limits<float>::denorm_min()), F::sign_mask);
  EXPECT_EQ(F::encode(1e30f), F::max_code);
  EXPECT_EQ(F::encode(-1e30f), F::sign_mask | F::max_code);
  EXPECT_EQ(F::encode(std::numeric_limits<float>::infinity()), F::max_code);
  EXPECT_EQ(F::encode(-std::numeric_limits<float>::infinity()), F::sign_mask | F::max_code);
  EXPECT_EQ(F::encode(std::numeric_limits<float>::max()), F::max_code);
  EXPECT_EQ(F::encode(std::nextafter(F::max_value, 0.0f)), F::max_code);
  EXPECT_EQ(F::encode(std::numeric_limits<float>::quiet_NaN()), F::nan_code);
}

TEST(Minifloat, PublishedConstants) {
  // SPEC §1 table.
  const float e2m1_values[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int c = 0; c < 8; ++c) {
    EXPECT_EQ(blockq::e2m1::decode(static_cast<std::uint8_t>(c)), e2m1_values[c]);
    EXPECT_EQ(blockq::e2m1::decode(static_cast<std::uint8_t>(c | 8)), -e2m1_values[c]);
  }
  EXPECT_EQ(blockq::e2m1::max_value, 6.0f);
  EXPECT_EQ(blockq::e2m1::emax, 2);
  EXPECT_EQ(blockq::e4m3::max_value, 448.0f);
  EXPECT_EQ(blockq::e4m3::emax, 8);
  EXPECT_EQ(blockq::e4m3::decode(1), std::ldexp(1.0f, -9));  // smallest subnormal 2^-9
  EXPECT_TRUE(std::isnan(blockq::e4m3::decode(0x7F)));
  EXPECT_TRUE(std::isnan(blockq::e4m3::decode(0xFF)));
  EXPECT_EQ(blockq::e5m2::max_value, 57344.0f);
  EXPECT_TRUE(std::isinf(blockq::e5m2::decode(0x7C)));
  EXPECT_TRUE(std::isnan(blockq::e5m2::decode(0x7D)));
  EXPECT_EQ(blockq::e3m2::max_value, 28.0f);
  EXPECT_EQ(blockq::e2m3::max_value, 7.5f);
  // E4M3 rounding near the top: 464 is the tie between 448 and (NaN-coded) 480: stays 448.
  EXPECT_EQ(blockq::e4m3::encode(464.0f), 0x7E);
  EXPECT_EQ(blockq::e4m3::encode(std::nextafter(464.0f, 1e9f)), 0x7E);  // saturates, never NaN
  // E4M3 subnormal tie: 1.5 * 2^-9 goes to the even code 2 (2^-8).
  EXPECT_EQ(blockq::e4m3::encode(1.5f * std::ldexp(1.0f, -9)), 2);
}

TEST(Int8Mx, MatchesItsDefinition) {
  using blockq::int8_mx;
  for (int q = -127; q <= 127; ++q) {
    const float v = static_cast<float>(q) / 64.0f;
    EXPECT_EQ(int8_mx::decode(int8_mx::encode(v)), v);
  }
  EXPECT_EQ(int8_mx::encode(0.5f / 64.0f, tie_mode::even), 0);
  EXPECT_EQ(int8_mx::encode(1.5f / 64.0f, tie_mode::even), 2);
  EXPECT_EQ(int8_mx::encode(1.5f / 64.0f, tie_mode::toward_zero), 1);
  EXPECT_EQ(int8_mx::encode(-1.5f / 64.0f, tie_mode::away), static_cast<std::uint8_t>(-2));
  EXPECT_EQ(int8_mx::encode(5.0f), 127);
  EXPECT_EQ(int8_mx::encode(-5.0f), static_cast<std::uint8_t>(-127));
}

}  // namespace
