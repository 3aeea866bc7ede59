// SPDX-License-Identifier: Apache-2.0
// Lloyd–Max grids: the N-point grid with the least expected squared error
// for a distribution (every point the centroid of its cell, every cell
// boundary the midpoint of its two points).
//
//   template <class Dist>
//   lloyd_max_result lloyd_max(std::size_t levels, const Dist& dist, const lloyd_max_params& params = {});
//   template <class Dist>
//   std::vector<double> lloyd_max_grid(std::size_t levels, const Dist& dist, const lloyd_max_params& params = {});
//
// Lloyd's iteration with exact centroids (closed form for the normal
// distribution, quadrature for the others), started from the quantiles
// F^-1((i + 1/2) / N). Lloyd's iteration converges linearly and slowly for
// many levels, so once its steps are small (below newton_after relative)
// Newton steps on the centroid conditions take over: the conditions
// F_i(c) = ∫_cell_i (x - c_i) f(x) dx = 0 have a symmetric tridiagonal
// Jacobian,
//   dF_i/dc_i     = -P_i + (d_(i-1) f(b_(i-1)) + d_i f(b_i)) / 4,
//   dF_i/dc_(i+1) =  d_i f(b_i) / 4,
// (b_i the boundary between points i and i + 1, d_i = c_(i+1) - c_i), solved
// by the Thomas algorithm. A Newton step that leaves the points unsorted or
// raises the error is replaced by a Lloyd step (which never raises it). For
// the normal, Laplace, Student-t and logistic laws the iterates are kept
// symmetric about the median.
// Stops when no point moves by more than tolerance · max|c|, or when Newton
// steps below 1e-6 · max|c| stop shrinking (the rounding floor, reached
// before the tolerance with more than about a thousand levels).
//
// Effort: at most max_iterations steps and max_evaluations density
// evaluations (cells.hpp); a grid that needs more throws std::invalid_argument
// saying the distribution is out of reach at this many levels.
//
// Throws std::invalid_argument for levels < 2 or a distribution without a
// finite second moment.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "blockq/config.hpp"
#include "blockq/grid/detail/cells.hpp"
#include "blockq/grid/distribution.hpp"

BLOCKQ_BEGIN_NAMESPACE

struct lloyd_max_params {
  double tolerance = 0x1p-46;            // relative step at which the grid counts as converged (~1.4e-14)
  std::uintmax_t max_iterations = 10000;
  double newton_after = 3e-2;            // relative Lloyd step below which Newton steps are tried
  std::uintmax_t max_evaluations = detail::default_max_evaluations;  // the effort limit (cells.hpp)
};

struct lloyd_max_result {
  std::vector<double> grid;       // sorted ascending
  double mse = 0.0;               // expected_mse(grid, dist)
  std::uintmax_t iterations = 0;  // Lloyd and Newton steps taken
  bool converged = false;         // stopped by the tolerance or at the rounding floor, not by max_iterations
  std::uintmax_t evaluations = 0; // density evaluations spent (closed-form cells count one each)
};

namespace detail {

// Cell moments of every cell of the grid c (about its own point), plus the
// density at the boundaries; the sum of m2 is the expected squared error.
struct grid_moments {
  std::vector<cell_moments> cells;
  std::vector<double> boundary_pdf;  // f(b_i), i = 0 .. N-2
  double mse = 0.0;
};

template <class Dist>
void compute_grid_moments(const cell_evaluator<Dist>& eval, const std::vector<double>& c, grid_moments& out) {
  const std::size_t n = c.size();
  out.cells.resize(n);
  out.boundary_pdf.resize(n - 1);
  out.mse = 0.0;
  double l = -grid_inf;
  for (std::size_t i = 0; i < n; ++i) {
    double r = grid_inf;
    if (i + 1 < n) {
      r = 0.5 * (c[i] + c[i + 1]);
      out.boundary_pdf[i] = eval.pdf(r);
    }
    out.cells[i] = eval(l, c[i], r, moments::all);
    out.mse += out.cells[i].m2;
    l = r;
  }
}

// The four distributions of any_distribution are symmetric about their
// median, and so is their Lloyd–Max grid; keeping the iterates symmetric
// removes the translation mode, which for the Laplace distribution with an
// even number of levels (a boundary on the density's kink) has no curvature
// at all and would leave Lloyd's and Newton's steps adrift.
template <class Dist>
struct is_symmetric : std::false_type {};
template <class Policy>
struct is_symmetric<boost::math::normal_distribution<double, Policy>> : std::true_type {};
template <class Policy>
struct is_symmetric<boost::math::laplace_distribution<double, Policy>> : std::true_type {};
template <class Policy>
struct is_symmetric<boost::math::students_t_distribution<double, Policy>> : std::true_type {};
template <class Policy>
struct is_symmetric<boost::math::logistic_distribution<double, Policy>> : std::true_type {};

// c_i <- center + ((c_i - center) - (c_(n-1-i) - center)) / 2.
inline void symmetrize(std::vector<double>& c, double center) {
  const std::size_t n = c.size();
  for (std::size_t i = 0; i < n / 2; ++i) {
    const double half = 0.5 * ((c[n - 1 - i] - center) - (c[i] - center));
    c[i] = center - half;
    c[n - 1 - i] = center + half;
  }
  if (n % 2 == 1) c[n / 2] = center;
}

// Newton step for the centroid conditions: solves J delta = -F (J symmetric
// tridiagonal, see the header comment). Returns false if a pivot vanishes.
inline bool newton_step(const std::vector<double>& c, const grid_moments& gm, std::vector<double>& next) {
  const std::size_t n = c.size();
  std::vector<double> diag(n), off(n > 1 ? n - 1 : 0), rhs(n);
  for (std::size_t i = 0; i + 1 < n; ++i) off[i] = (c[i + 1] - c[i]) * gm.boundary_pdf[i] / 4.0;
  for (std::size_t i = 0; i < n; ++i) {
    diag[i] = -gm.cells[i].p + (i > 0 ? off[i - 1] : 0.0) + (i + 1 < n ? off[i] : 0.0);
    rhs[i] = -gm.cells[i].m1;
  }
  // Thomas algorithm (forward elimination, back substitution).
  for (std::size_t i = 1; i < n; ++i) {
    if (diag[i - 1] == 0.0) return false;
    const double w = off[i - 1] / diag[i - 1];
    diag[i] -= w * off[i - 1];
    rhs[i] -= w * rhs[i - 1];
  }
  if (diag[n - 1] == 0.0) return false;
  next.resize(n);
  double x = rhs[n - 1] / diag[n - 1];
  next[n - 1] = c[n - 1] + x;
  for (std::size_t i = n - 1; i-- > 0;) {
    x = (rhs[i] - off[i] * x) / diag[i];
    next[i] = c[i] + x;
  }
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(next[i]) || (i > 0 && !(next[i - 1] < next[i]))) return false;
  return true;
}

template <class Dist>
lloyd_max_result lloyd_max_impl(std::size_t levels, const Dist& dist, const lloyd_max_params& params) {
  require(levels >= 2, "lloyd_max: levels must be >= 2, got " + std::to_string(levels));
  require(params.tolerance > 0.0, "lloyd_max: tolerance must be > 0, got " + format_number(params.tolerance));
  require_finite_second_moment(dist);
  const cell_evaluator<Dist> eval(dist, false, params.max_evaluations,
                                   "lloyd_max with " + std::to_string(levels) + " levels");

  std::vector<double> c(levels), lloyd(levels), newton;
  for (std::size_t i = 0; i < levels; ++i)
    c[i] = boost::math::quantile(dist, (static_cast<double>(i) + 0.5) / static_cast<double>(levels));
  const bool symmetric = is_symmetric<Dist>::value;
  const double center = boost::math::median(dist);
  if (symmetric) symmetrize(c, center);

  grid_moments gm;
  compute_grid_moments(eval, c, gm);
  lloyd_max_result result;
  bool newton_ok = false;
  int stalled = 0;
  double last_newton_move = grid_inf;
  for (std::uintmax_t it = 0; it < params.max_iterations; ++it) {
    double spread = 0.0;
    for (double v : c) spread = std::max(spread, std::fabs(v));
    // Lloyd: every point to the centroid of its cell, c + m1 / p.
    double lloyd_move = 0.0;
    for (std::size_t i = 0; i < levels; ++i) {
      const cell_moments& m = gm.cells[i];
      lloyd[i] = m.p > 0.0 ? c[i] + m.m1 / m.p : c[i];
      lloyd_move = std::max(lloyd_move, std::fabs(lloyd[i] - c[i]));
    }
    if (symmetric) symmetrize(lloyd, center);
    const std::vector<double>* step = &lloyd;
    grid_moments trial;
    if (newton_ok && newton_step(c, gm, newton)) {
      if (symmetric) symmetrize(newton, center);
      compute_grid_moments(eval, newton, trial);
      // The error is flat at the optimum: allow its rounding (1e-12 relative).
      if (trial.mse <= gm.mse * (1.0 + 1e-12)) step = &newton;
    }
    if (step == &lloyd) compute_grid_moments(eval, lloyd, trial);
    double move = 0.0;
    for (std::size_t i = 0; i < levels; ++i) move = std::max(move, std::fabs((*step)[i] - c[i]));
    c = *step;
    gm = std::move(trial);
    result.iterations = it + 1;
    newton_ok = lloyd_move <= params.newton_after * spread;
    if (move <= params.tolerance * spread) {
      result.converged = true;
      break;
    }
    // With thousands of levels the Jacobian's condition number (of order N^2)
    // puts the rounding floor of a Newton step above the tolerance: Newton
    // steps below 1e-6 relative that stop shrinking have reached it.
    if (step == &newton && move <= 1e-6 * spread) {
      stalled = move >= 0.5 * last_newton_move ? stalled + 1 : 0;
      last_newton_move = move;
      if (stalled >= 3) {
        result.converged = true;
        break;
      }
    }
  }
  result.grid = std::move(c);
  result.mse = gm.mse;
  result.evaluations = eval.evaluations();
  return result;
}

}  // namespace detail

template <class Dist>
lloyd_max_result lloyd_max(std::size_t levels, const Dist& dist, const lloyd_max_params& params = {}) {
  if constexpr (std::is_same_v<Dist, any_distribution>) {
    return dist.visit([&](const auto& d) { return detail::lloyd_max_impl(levels, d, params); });
  } else {
    return detail::lloyd_max_impl(levels, dist, params);
  }
}

template <class Dist>
std::vector<double> lloyd_max_grid(std::size_t levels, const Dist& dist, const lloyd_max_params& params = {}) {
  return lloyd_max(levels, dist, params).grid;
}

BLOCKQ_END_NAMESPACE
