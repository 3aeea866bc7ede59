// SPDX-License-Identifier: Apache-2.0
// The MSE-optimal scale of a grid (SPEC §9):
//
//   template <class Dist>
//   optimal_scale_result optimal_scale(std::span<const double> grid, const Dist& dist,
//                                      const optimal_scale_params& params = {});
//
// returns {scale, mse, iterations}: the a > 0 that minimises
// expected_mse(grid, dist, a), found in three steps:
//   1. a log-spaced scan of [lower, upper] (points_per_octave points per factor
//      of two); each local minimum of the scan within basin_window (relative)
//      of the lowest brackets a basin. Floating-point grids have one basin per
//      octave, since scaling E4M3 by 2 maps most of it onto itself, and their
//      minima differ by as little as 1e-6 relative, so all of them are refined;
//   2. boost::math::tools::brent_find_minima inside each bracket;
//   3. Newton steps on dE/da = 0 with the derivatives in closed form,
//        E'(a)  = -2 Σ_i g_i ∫_cell_i (x - a g_i) f(x) dx,
//        E''(a) =  2 Σ_i g_i^2 P(cell_i) - (2/a) Σ_boundaries f(m) m^2 (g_(i+1) - g_i),
//      (m = a (g_i + g_(i+1)) / 2) because Brent's minimum is only located to
//      about sqrt(epsilon) relative: the MSE is flat there. A Newton result is
//      kept only inside the bracket and when its MSE is not above Brent's
//      (beyond rounding). The lowest basin minimum wins.
// Default scan range: [rms / (16 max|g|), 16 rms / min{|g| : g != 0}] with
// rms = sqrt(E[X^2]).
//
// Effort: at most max_evaluations density evaluations (cells.hpp), beyond which
// it throws std::invalid_argument saying the distribution is out of reach.
//
// Throws std::invalid_argument for an invalid grid (see expected_mse.hpp), a
// grid without a non-zero point, lower/upper not finite and > 0, lower >= upper,
// points_per_octave < 1.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/math/tools/minima.hpp>

#include "blockq/config.hpp"
#include "blockq/grid/detail/cells.hpp"
#include "blockq/grid/distribution.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct optimal_scale_params {
  std::optional<double> lower;  // scan range, default from the distribution and the grid (above)
  std::optional<double> upper;
  int points_per_octave = 8;                        // density of the bracketing scan
  int bits = std::numeric_limits<double>::digits;   // Brent's precision (Boost caps it at digits / 2)
  std::uintmax_t max_iterations = 200;              // Brent's iteration limit
  int newton_steps = 4;                             // polishing steps per basin; 0 turns the polish off
  double basin_window = 1e-3;  // refine every scan minimum within this relative distance of the best
  std::size_t max_basins = 64; // at most this many, the lowest first
  std::uintmax_t max_evaluations = detail::default_max_evaluations;  // the effort limit (cells.hpp)
};

struct optimal_scale_result {
  double scale = 0.0;            // a*
  double mse = 0.0;              // expected_mse(grid, dist, a*)
  std::uintmax_t iterations = 0; // Brent iterations plus Newton steps, over all basins refined
  std::uintmax_t evaluations = 0; // density evaluations spent (closed-form cells count one each)
};

namespace detail {

// (E'(a), E''(a)) for E(a) = expected_mse(grid, dist, a); see the header comment.
template <class Dist>
std::pair<double, double> scale_derivatives(const cell_evaluator<Dist>& cells, std::span<const double> grid,
                                            double a) {
  double d1 = 0.0, curvature = 0.0, boundary = 0.0;
  double l = -grid_inf;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double c = a * grid[i];
    double r = grid_inf;
    if (i + 1 < grid.size()) {
      r = 0.5 * (c + a * grid[i + 1]);
      boundary += cells.pdf(r) * r * r * (grid[i + 1] - grid[i]);
    }
    const cell_moments m = cells(l, c, r, moments::p_m1);
    d1 += grid[i] * m.m1;
    curvature += grid[i] * grid[i] * m.p;
    l = r;
  }
  return {-2.0 * d1, 2.0 * curvature - 2.0 * boundary / a};
}

template <class Dist>
optimal_scale_result optimal_scale_impl(std::span<const double> grid, const Dist& dist,
                                        const optimal_scale_params& params) {
  check_grid(grid);
  require(params.points_per_octave >= 1,
          "optimal_scale: points_per_octave must be >= 1, got " + std::to_string(params.points_per_octave));
  double gmax = 0.0, gmin = grid_inf;
  for (double g : grid) {
    gmax = std::max(gmax, std::fabs(g));
    if (g != 0.0) gmin = std::min(gmin, std::fabs(g));
  }
  require(gmax > 0.0, "optimal_scale: the grid has no non-zero point, so every scale gives the same error");
  const double rms = std::sqrt(second_moment(dist));
  const double lower = params.lower.value_or(rms / (16.0 * gmax));
  const double upper = params.upper.value_or(16.0 * rms / gmin);
  require(std::isfinite(lower) && lower > 0.0,
          "optimal_scale: the lower scale bound must be finite and > 0, got " + format_number(lower));
  require(std::isfinite(upper) && upper > 0.0,
          "optimal_scale: the upper scale bound must be finite and > 0, got " + format_number(upper));
  require(lower < upper, "optimal_scale: the lower scale bound " + format_number(lower) +
                             " is not below the upper bound " + format_number(upper));

  const cell_evaluator<Dist> cells(dist, false, params.max_evaluations,
                                   "optimal_scale of a " + std::to_string(grid.size()) + "-point grid");
  const auto mse = [&](double a) { return mse_unchecked(cells, grid, a); };

  // 1. Log-spaced scan.
  const double octaves = std::log2(upper / lower);
  const int n = std::max(3, static_cast<int>(std::ceil(octaves * params.points_per_octave)) + 1);
  std::vector<double> xs(static_cast<std::size_t>(n)), es(static_cast<std::size_t>(n));
  double best_scan = grid_inf;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    xs[k] = k == 0 ? lower : k + 1 == xs.size() ? upper : lower * std::exp2(octaves * static_cast<double>(k) / (n - 1));
    es[k] = mse(xs[k]);
    best_scan = std::min(best_scan, es[k]);
  }
  // Every local minimum of the scan within basin_window of the best one
  // brackets a basin to refine: floating-point grids are nearly invariant
  // under scaling by 2, so their basins, one per octave, differ only by the
  // end effects (subnormals, the largest value), by as little as 1e-6.
  std::vector<std::size_t> basins;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    const bool left_ok = k == 0 || es[k] <= es[k - 1];
    const bool right_ok = k + 1 == xs.size() || es[k] <= es[k + 1];
    if (left_ok && right_ok && es[k] <= best_scan * (1.0 + params.basin_window)) basins.push_back(k);
  }
  std::sort(basins.begin(), basins.end(), [&](std::size_t i, std::size_t j) { return es[i] < es[j]; });
  if (basins.size() > params.max_basins) basins.resize(params.max_basins);

  optimal_scale_result result{0.0, grid_inf, 0};
  std::uintmax_t total_iterations = 0;
  for (std::size_t k : basins) {
    const double lo = xs[k == 0 ? 0 : k - 1];
    const double hi = xs[std::min(k + 1, xs.size() - 1)];
    // 2. Brent inside the bracket.
    std::uintmax_t iterations = params.max_iterations;
    const auto [a_brent, e_brent] = boost::math::tools::brent_find_minima(mse, lo, hi, params.bits, iterations);
    total_iterations += iterations;
    double a_best = a_brent, e_best = e_brent;
    if (es[k] < e_best) {
      a_best = xs[k];
      e_best = es[k];
    }
    // 3. Newton polish of the stationary point.
    double a = a_best;
    int steps = 0;
    for (; steps < params.newton_steps; ++steps) {
      const auto [d1, d2] = scale_derivatives(cells, grid, a);
      if (!(d2 > 0.0)) break;
      const double next = a - d1 / d2;
      if (!(next >= lo && next <= hi)) break;
      const double moved = std::fabs(next - a);
      a = next;
      if (moved <= 4.0 * std::numeric_limits<double>::epsilon() * a) {
        ++steps;
        break;
      }
    }
    total_iterations += static_cast<std::uintmax_t>(steps);
    if (steps > 0 && a != a_best) {
      // Near the minimum the MSE is flat to within its own rounding (about
      // 1e-14 relative), so Brent's point and the stationary point Newton
      // finds cannot be told apart by their MSE; the check only catches a
      // step that went astray.
      const double e = mse(a);
      if (e <= e_best * (1.0 + 1e-10)) {
        a_best = a;
        e_best = e;
      }
    }
    if (e_best < result.mse) result = {a_best, e_best, 0};
  }
  result.iterations = total_iterations;
  result.evaluations = cells.evaluations();
  return result;
}

}  // namespace detail

template <class Dist>
optimal_scale_result optimal_scale(std::span<const double> grid, const Dist& dist,
                                   const optimal_scale_params& params = {}) {
  if constexpr (std::is_same_v<Dist, any_distribution>) {
    return dist.visit([&](const auto& d) { return detail::optimal_scale_impl(grid, d, params); });
  } else {
    return detail::optimal_scale_impl(grid, dist, params);
  }
}

BLOCKQ_END_NAMESPACE
