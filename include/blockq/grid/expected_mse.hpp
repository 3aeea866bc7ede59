// SPDX-License-Identifier: Apache-2.0
// Expected squared error of rounding X ~ dist to the nearest point of a grid
// (SPEC §9, seed 000):
//
//   template <class Dist>
//   double expected_mse(std::span<const double> grid, const Dist& dist, double scale = 1);
//   template <class Dist>
//   double expected_mse_quadrature(std::span<const double> grid, const Dist& dist, double scale = 1);
//
// E[(X - nearest(X))^2] for the grid scale·g, the cells bounded by the
// midpoints of neighbouring points. `grid` is sorted ascending; equal points
// are allowed (the seed's FP4 grid holds +0 and -0). Dist is any Boost.Math
// distribution of double, or an any_distribution. For the normal distribution
// expected_mse uses closed-form cell moments; for the others, and always for
// expected_mse_quadrature, Gauss–Kronrod quadrature on the finite cells and
// exp_sinh on the two infinite tails.
//
// Throws std::invalid_argument for an empty, unsorted or non-finite grid, a
// scale that is not finite and > 0, or a distribution without a finite
// second moment (Student-t with nu <= 2), or when the quadrature needs more
// than detail::default_max_evaluations density evaluations (cells.hpp).
#pragma once

#include <span>
#include <type_traits>

#include "blockq/config.hpp"
#include "blockq/grid/detail/cells.hpp"
#include "blockq/grid/distribution.hpp"

BLOCKQ_BEGIN_NAMESPACE

namespace detail {

template <class Dist>
double expected_mse_impl(std::span<const double> grid, const Dist& dist, double scale, bool force_quadrature) {
  if constexpr (std::is_same_v<Dist, any_distribution>) {
    return dist.visit([&](const auto& d) { return expected_mse_impl(grid, d, scale, force_quadrature); });
  } else {
    check_grid(grid);
    check_scale(scale);
    require_finite_second_moment(dist);
    const cell_evaluator<Dist> cells(dist, force_quadrature, default_max_evaluations,
                                     "expected_mse of a " + std::to_string(grid.size()) + "-point grid");
    return mse_unchecked(cells, grid, scale);
  }
}

}  // namespace detail

template <class Dist>
double expected_mse(std::span<const double> grid, const Dist& dist, double scale = 1.0) {
  return detail::expected_mse_impl(grid, dist, scale, false);
}

template <class Dist>
double expected_mse_quadrature(std::span<const double> grid, const Dist& dist, double scale = 1.0) {
  return detail::expected_mse_impl(grid, dist, scale, true);
}

BLOCKQ_END_NAMESPACE
