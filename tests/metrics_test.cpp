#include "blockq/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

namespace {

TEST(Metrics, HandComputedValues) {
  const std::vector<float> ref = {1, 2, 3, 4}, test = {1, 2.5f, 2, 4};
  const auto s = blockq::compare(ref, test);
  EXPECT_DOUBLE_EQ(s.mse, (0.25 + 1.0) / 4);
  EXPECT_DOUBLE_EQ(s.max_abs, 1.0);
  EXPECT_DOUBLE_EQ(s.sqnr_db, 10 * std::log10(30.0 / 1.25));
  EXPECT_TRUE(std::isinf(blockq::sqnr_db(ref, ref)));
  EXPECT_THROW(blockq::mse(ref, std::vector<float>(3)), std::invalid_argument);
}

}  // namespace
