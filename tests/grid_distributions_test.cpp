// SPDX-License-Identifier: Apache-2.0
// Quadrature against the normal closed form, and the Laplace, Student-t and
// logistic distributions against closed forms derived by hand.
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "blockq/grid.hpp"

namespace {

using boost::math::normal;

TEST(grid_quadrature, AgreesWithClosedFormOnNormal) {
  struct named_grid {
    const char* name;
    std::vector<double> grid;
  };
  const named_grid grids[] = {
      {"uniform 2", blockq::uniform_grid(2)},   {"uniform 3", blockq::uniform_grid(3)},
      {"uniform 16", blockq::uniform_grid(16)}, {"uniform 256", blockq::uniform_grid(256)},
      {"fp4 seed", blockq::fp4_seed_grid()},     {"nf4", blockq::nf4_grid()},
      {"e2m3", blockq::e2m3_grid()},             {"e4m3", blockq::e4m3_grid()},
      {"int4", blockq::int_grid(4)},
  };
  const normal dists[] = {normal(), normal(0.3, 2.0)};
  for (const named_grid& g : grids) {
    for (const normal& d : dists) {
      // At the optimal scale and away from it on both sides.
      const double a_opt = blockq::optimal_scale(g.grid, d).scale;
      for (double a : {a_opt, 0.5 * a_opt, 3.0 * a_opt}) {
        const double closed = blockq::expected_mse(g.grid, d, a);
        const double quad = blockq::expected_mse_quadrature(g.grid, d, a);
        EXPECT_NEAR(quad / closed, 1.0, 1e-12) << g.name << " mean " << d.mean() << " a " << a;
      }
    }
  }
}

TEST(grid_quadrature, AnyDistributionDispatches) {
  const std::vector<double> g = blockq::fp4_grid();
  EXPECT_EQ(blockq::expected_mse(g, blockq::parse_distribution("normal"), 0.5), blockq::expected_mse(g, normal(), 0.5));
  const boost::math::laplace_distribution<double, blockq::detail::fast_policy> lap(0.0, 1.0);
  EXPECT_EQ(blockq::expected_mse(g, blockq::parse_distribution("laplace"), 0.5), blockq::expected_mse(g, lap, 0.5));
}

// For a symmetric distribution and the grid {-a, a}: nearest(X) = a sign(X),
// so MSE(a) = E[X^2] - 2 a E|X| + a^2, minimal at a* = E|X| with
// MSE* = Var X - (E|X|)^2.
struct symmetric_case {
  std::string text;
  double second_moment;
  double mean_abs;
};

std::vector<symmetric_case> symmetric_cases() {
  const auto t_mean_abs = [](double nu) {
    return 2.0 * std::sqrt(nu) * std::tgamma((nu + 1.0) / 2.0) / (std::sqrt(M_PI) * (nu - 1.0) * std::tgamma(nu / 2.0));
  };
  return {
      {"laplace", 2.0, 1.0},                              // Laplace(b): Var 2b^2, E|X| = b
      {"laplace:0.5", 0.5, 0.5},
      {"logistic", M_PI * M_PI / 3.0, 2.0 * std::log(2.0)},  // logistic(s): Var pi^2 s^2 / 3, E|X| = 2 s ln 2
      {"logistic:2", 4.0 * M_PI * M_PI / 3.0, 4.0 * std::log(2.0)},
      {"student_t:3", 3.0, 2.0 * std::sqrt(3.0) / M_PI},   // t(nu): Var nu/(nu-2)
      {"student_t:5", 5.0 / 3.0, t_mean_abs(5.0)},
      {"student_t:2.5", 5.0, t_mean_abs(2.5)},
      {"normal:2", 4.0, 2.0 * std::sqrt(2.0 / M_PI)},
  };
}

TEST(grid_distributions, TwoPointGridClosedForm) {
  const std::vector<double> g = {-1.0, 1.0};
  for (const symmetric_case& c : symmetric_cases()) {
    const blockq::any_distribution d = blockq::parse_distribution(c.text);
    for (double a : {0.1, 0.7, 1.0, 2.5, 10.0}) {
      const double expected = c.second_moment - 2.0 * a * c.mean_abs + a * a;
      EXPECT_NEAR(blockq::expected_mse(g, d, a) / expected, 1.0, 1e-12) << c.text << " a " << a;
    }
  }
}

TEST(grid_distributions, OneBitOptimumIsMeanAbsoluteValue) {
  for (const symmetric_case& c : symmetric_cases()) {
    const blockq::any_distribution d = blockq::parse_distribution(c.text);
    const double mse = c.second_moment - c.mean_abs * c.mean_abs;
    const blockq::optimal_scale_result r = blockq::optimal_scale(blockq::uniform_grid(2), d);
    EXPECT_NEAR(r.scale / c.mean_abs, 1.0, 1e-12) << c.text;
    EXPECT_NEAR(r.mse / mse, 1.0, 1e-12) << c.text;
    // Lloyd–Max with two levels: ±E|X| as well.
    const blockq::lloyd_max_result lm = blockq::lloyd_max(2, d);
    EXPECT_TRUE(lm.converged) << c.text;
    EXPECT_NEAR(lm.grid[1] / c.mean_abs, 1.0, 1e-12) << c.text;
    EXPECT_NEAR(lm.mse / mse, 1.0, 1e-12) << c.text;
  }
}

TEST(grid_distributions, LaplaceThreeLevelClosedForm) {
  // Laplace(0, 1) and {-a, 0, a}: the cells split at ±a/2 and
  //   MSE(a) = 2 - 2 a e^(-a/2),
  // minimal at a* = 2 with MSE* = 2 - 4/e; a* is also the Lloyd–Max grid
  // (the centroid of [h, inf) is h + 1 for an exponential tail).
  const blockq::any_distribution d = blockq::parse_distribution("laplace");
  const std::vector<double> g = {-1.0, 0.0, 1.0};
  for (double a : {0.3, 1.0, 2.0, 4.0, 9.0})
    EXPECT_NEAR(blockq::expected_mse(g, d, a) / (2.0 - 2.0 * a * std::exp(-a / 2.0)), 1.0, 1e-12) << a;
  const blockq::optimal_scale_result r = blockq::optimal_scale(g, d);
  EXPECT_NEAR(r.scale, 2.0, 1e-12);
  EXPECT_NEAR(r.mse, 2.0 - 4.0 / M_E, 1e-14);
  const blockq::lloyd_max_result lm = blockq::lloyd_max(3, d);
  EXPECT_NEAR(lm.grid[0], -2.0, 1e-12);
  EXPECT_NEAR(lm.grid[1], 0.0, 1e-15);
  EXPECT_NEAR(lm.grid[2], 2.0, 1e-12);
}

TEST(grid_distributions, LaplaceLloydMaxFourLevels) {
  // Laplace(0, 1), 4 levels ±p, ±q with the middle boundary at 0 and the
  // outer ones at ±t, t = (p + q) / 2. Centroids: q = t + 1 (exponential
  // tail), p = 1 - t e^(-t) / (1 - e^(-t)) (the mean of an exponential
  // truncated to [0, t]). So t solves t = (1 - t e^(-t)/(1 - e^(-t)) + t + 1) / 2.
  double t = 2.0;
  for (int i = 0; i < 200; ++i) t = 2.0 - t * std::exp(-t) / (1.0 - std::exp(-t));
  const double p = 1.0 - t * std::exp(-t) / (1.0 - std::exp(-t)), q = t + 1.0;
  const blockq::lloyd_max_result lm = blockq::lloyd_max(4, blockq::parse_distribution("laplace"));
  ASSERT_TRUE(lm.converged);
  EXPECT_NEAR(lm.grid[2], p, 1e-12);
  EXPECT_NEAR(lm.grid[3], q, 1e-12);
}

TEST(grid_distributions, OptimalScaleBeatsADenseScan) {
  // Property: no scale on a dense log grid does better than the optimum.
  for (const char* text : {"laplace", "student_t:3", "logistic"}) {
    const blockq::any_distribution d = blockq::parse_distribution(text);
    for (const std::vector<double>& g : {blockq::fp4_grid(), blockq::uniform_grid(8), blockq::nf4_grid()}) {
      const blockq::optimal_scale_result r = blockq::optimal_scale(g, d);
      for (int k = -300; k <= 300; ++k) {
        const double a = r.scale * std::exp2(k / 100.0);
        EXPECT_GE(blockq::expected_mse(g, d, a), r.mse * (1.0 - 1e-13)) << text << " a " << a;
      }
    }
  }
}

TEST(grid_distributions, NamesRoundTrip) {
  for (const char* text : {"normal", "normal:2", "laplace", "laplace:0.5", "logistic", "logistic:3", "student_t:3",
                           "student_t:2.5"}) {
    const blockq::any_distribution d = blockq::parse_distribution(text);
    EXPECT_EQ(d.name(), text);
    EXPECT_EQ(blockq::parse_distribution(d.name()).name(), text);
  }
  EXPECT_EQ(blockq::parse_distribution("gaussian").name(), "normal");
  EXPECT_EQ(blockq::parse_distribution("t:4").name(), "student_t:4");
  // Converting from a Boost.Math distribution with the default policy.
  EXPECT_EQ(blockq::any_distribution(boost::math::students_t(7.0)).name(), "student_t:7");
  EXPECT_EQ(blockq::any_distribution(boost::math::normal(1.0, 2.0)).name(), "normal:2@1");
}

}  // namespace
