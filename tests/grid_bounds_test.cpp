// SPDX-License-Identifier: Apache-2.0
// The grid optimizer's effort is bounded by counts, not by the clock: heavy tails (a
// Student-t just above nu = 2) and many levels either give a result or end with a clear
// std::invalid_argument, within a bounded number of density evaluations. These cases ran
// for minutes before the bound (Lloyd–Max at 2048 levels of a Student-t with 3 degrees of
// freedom never converged; nu = 2.01 spent seconds per cell); CTest's TIMEOUT on this
// binary (tests/CMakeLists.txt) is what fails without the bound. No timing assertion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "blockq/grid.hpp"
#include "test_util.hpp"

namespace {

using blockq_test::invalid_argument_message;

// A table is either complete with finite, positive errors, or an "out of reach" error
// that names the distribution.
void expect_rows_or_clear_error(const std::string& text, int lo, int hi, const blockq::table_options& opt) {
  const blockq::any_distribution d = blockq::parse_distribution(text);
  std::vector<blockq::grid_row> rows;
  const std::string msg = invalid_argument_message([&] { rows = blockq::standard_table(d, lo, hi, opt); });
  if (msg == "no exception") {
    ASSERT_FALSE(rows.empty()) << text;
    for (const auto& r : rows) {
      EXPECT_TRUE(std::isfinite(r.mse) && r.mse > 0.0) << text << " " << r.name << " " << r.mse;
      EXPECT_TRUE(std::isfinite(r.scale) && r.scale > 0.0) << text << " " << r.name;
    }
  } else {
    EXPECT_NE(msg.find("out of reach"), std::string::npos) << msg;
    EXPECT_NE(msg.find(text), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;  // one line, as the tool prints it
  }
}

TEST(grid_bounds, NuAtMostTwoHasNoFiniteVariance) {
  for (const char* text : {"student_t:2", "student_t:1.5", "t:0.5"}) {
    const std::string msg = invalid_argument_message([&] { (void)blockq::parse_distribution(text); });
    EXPECT_NE(msg.find("Student-t with ν ≤ 2 has no finite variance"), std::string::npos) << msg;
  }
  const std::string msg =
      invalid_argument_message([] { (void)blockq::lloyd_max(4, boost::math::students_t(1.999)); });
  EXPECT_NE(msg.find("student_t:1.999"), std::string::npos) << msg;
}

// `blockq grid --dist student_t:2.01` with the tool's default bits and the table's default limit.
TEST(grid_bounds, NuJustAboveTwoDefaultTable) {
  expect_rows_or_clear_error("student_t:2.01", 1, 8, {});
}

TEST(grid_bounds, HeavyTailsWithASmallerLimit) {
  blockq::table_options opt;
  opt.max_evaluations = std::uintmax_t{1} << 22;
  for (const char* text : {"student_t:2.0001", "student_t:2.5", "student_t:3"}) expect_rows_or_clear_error(text, 1, 8, opt);
  expect_rows_or_clear_error("student_t:3", 11, 12, opt);  // 2048 and 4096 levels
  expect_rows_or_clear_error("laplace", 10, 12, opt);
}

TEST(grid_bounds, LimitIsACountAndIsHonoured) {
  const boost::math::students_t t3(3.0);
  // A budget the ordinary case fits in: the count is reported and within it.
  blockq::lloyd_max_params p;
  const blockq::lloyd_max_result ok = blockq::lloyd_max(16, t3, p);
  EXPECT_TRUE(ok.converged);
  EXPECT_GT(ok.evaluations, 0u);
  EXPECT_LE(ok.evaluations, p.max_evaluations);
  // The same call with less than it needs: a clear error naming the call and the limit.
  p.max_evaluations = ok.evaluations / 2;
  const std::string msg = invalid_argument_message([&] { (void)blockq::lloyd_max(16, t3, p); });
  EXPECT_NE(msg.find("lloyd_max with 16 levels for student_t:3 is out of reach"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(p.max_evaluations)), std::string::npos) << msg;
  // Deterministic: the same count twice.
  EXPECT_EQ(blockq::lloyd_max(16, t3).evaluations, ok.evaluations);
  blockq::optimal_scale_params q;
  q.max_evaluations = 1000;
  EXPECT_NE(invalid_argument_message([&] { (void)blockq::optimal_scale(blockq::uniform_grid_bits(4), t3, q); })
                .find("optimal_scale of a 16-point grid for student_t:3 is out of reach"),
            std::string::npos);
}

// The normal distribution's closed form counts one evaluation a cell: 4096 levels stay cheap.
TEST(grid_bounds, NormalManyLevels) {
  const blockq::lloyd_max_result r = blockq::lloyd_max(4096, boost::math::normal());
  EXPECT_TRUE(r.converged);
  EXPECT_LE(r.evaluations, blockq::detail::default_max_evaluations);
}

}  // namespace
