// SPDX-License-Identifier: Apache-2.0
// Moments of one quantization cell: for a cell [l, r] with centre c and a
// density f, p = ∫ f, m1 = ∫ (x - c) f, m2 = ∫ (x - c)^2 f over the cell.
// expected_mse is Σ m2; Lloyd–Max and the Newton polish of optimal_scale use
// p and m1 as well.
//
// The normal distribution has closed forms (cell_moments_std_normal); any
// other Boost.Math distribution goes through quadrature (cell_moments_quadrature):
// Gauss–Kronrod on finite cells, exp_sinh on the two infinite tails.
//
// Effort is bounded by a count, never by the clock: every density evaluation
// of the quadrature (and every closed-form cell) counts against the
// evaluator's budget (default_max_evaluations per call of a public function),
// and a cell that takes the count past it ends the call with
// std::invalid_argument naming the distribution and the limit. Each cell's
// own effort is bounded too (Gauss–Kronrod depth, exp_sinh refinements), so
// a call overshoots its budget by at most one cell. Heavy tails are what
// exhaust it: a Student-t close to nu = 2 (the tail of x^2 f decays like
// x^(1 - nu), so quadrature converges ever more slowly) or thousands of
// levels on a Student-t.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include <boost/math/distributions/complement.hpp>
#include <boost/math/policies/policy.hpp>
#include <boost/math/quadrature/exp_sinh.hpp>
#include <boost/math/quadrature/gauss_kronrod.hpp>
#include <boost/math/special_functions/erf.hpp>

#include "blockq/config.hpp"
#include "blockq/grid/distribution.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace detail {

inline constexpr double grid_inf = std::numeric_limits<double>::infinity();

// Density evaluations (closed-form cells count one each) one call of expected_mse,
// optimal_scale or lloyd_max may spend by default: 2^24, about a second of quadrature
// on one core of the development machine, eight times what any row of the Student-t
// (nu = 3) table up to 8 bits needs.
inline constexpr std::uintmax_t default_max_evaluations = std::uintmax_t{1} << 24;

// The name of a distribution for messages ("student_t:2.01"), or a generic one.
template <class Dist>
std::string distribution_name(const Dist& d) {
  if constexpr (std::is_constructible_v<any_distribution, const Dist&>)
    return any_distribution(d).name();
  else
    return (void)d, std::string("the distribution");
}

struct cell_moments {
  double p = 0.0;   // ∫ f over the cell
  double m1 = 0.0;  // ∫ (x - c) f
  double m2 = 0.0;  // ∫ (x - c)^2 f
};

// Which moments a caller needs: the quadrature path skips the others.
enum class moments : unsigned { m2 = 1u, p_m1 = 2u, all = 3u };
constexpr bool wants(moments have, moments bit) noexcept {
  return (static_cast<unsigned>(have) & static_cast<unsigned>(bit)) != 0u;
}

// ------------------------------------------------------------------ checks

inline void check_grid(std::span<const double> grid) {
  require(!grid.empty(), "the grid is empty");
  for (std::size_t i = 0; i < grid.size(); ++i) {
    require(std::isfinite(grid[i]),
            "grid[" + std::to_string(i) + "] = " + format_number(grid[i]) + " is not finite");
    if (i > 0)
      require(grid[i - 1] <= grid[i], "the grid is not sorted: grid[" + std::to_string(i - 1) + "] = " +
                                          format_number(grid[i - 1]) + " > grid[" + std::to_string(i) +
                                          "] = " + format_number(grid[i]));
  }
}

inline void check_scale(double scale) {
  require(std::isfinite(scale) && scale > 0.0,
          "the scale must be finite and > 0, got " + format_number(scale));
}

// Calls cell(l, c, r) for every cell of the grid scale·g (cells bounded by
// the midpoints of neighbouring points, the outer ones by ±inf) and sums.
// Equal neighbours (+0 and -0) give an empty cell, which contributes nothing.
template <class Cell>
double sum_cells(std::span<const double> grid, double scale, Cell&& cell) {
  double total = 0.0;
  double l = -grid_inf;
  for (std::size_t i = 0; i < grid.size(); ++i) {
    const double c = scale * grid[i];
    const double r = i + 1 < grid.size() ? 0.5 * (c + scale * grid[i + 1]) : grid_inf;
    total += cell(l, c, r);
    l = r;
  }
  return total;
}

// --------------------------------------------------- standard normal, closed form

inline constexpr double inv_sqrt_2pi = 0.398942280401432677939946059934381868;
inline constexpr double inv_sqrt_2 = 0.707106781186547524400844362104849039;

// φ(z), 0 at ±inf.
inline double std_normal_pdf(double z) {
  return std::isinf(z) ? 0.0 : inv_sqrt_2pi * std::exp(-0.5 * z * z);
}

// Q(z) = P(Z > z) = erfc(z / √2) / 2, accurate (relatively) deep in the upper tail.
inline double std_normal_upper(double z) {
  if (z == grid_inf) return 0.0;
  if (z == -grid_inf) return 1.0;
  return 0.5 * boost::math::erfc(z * inv_sqrt_2, fast_policy());
}

// P(l < Z < r) as a difference of tail probabilities on the side where both
// are small, so that a cell far in a tail keeps its relative accuracy.
inline double std_normal_mass(double l, double r) {
  if (l >= 0.0) return std_normal_upper(l) - std_normal_upper(r);
  if (r <= 0.0) return std_normal_upper(-r) - std_normal_upper(-l);
  return 1.0 - std_normal_upper(-l) - std_normal_upper(r);
}

// ∫_0^b u^k φ(c + u) du for k = 0, 1, 2 by the Hermite series
//   φ(c + u) = φ(c) Σ_n He_n(c) (-u)^n / n!,
// so that ∫_0^b u^k φ(c + u) du = φ(c) b^(k+1) Σ_n s_n / (n + k + 1) with
// s_n = He_n(c) (-b)^n / n!, computed by the three-term recurrence
// s_(n+1) = (-b c s_n - b^2 s_(n-1)) / (n + 1). Each sum equals
// ∫_0^1 t^k exp(-c b t - b^2 t^2 / 2) dt > 0. Used for |b|(|c| + 1) <= 1,
// where the terms shrink fast and cancel by at most a factor e^3; there the
// antiderivative form below would lose digits to cancellation (its terms are
// of order (1 + c^2) p while m2 is of order p·width^2).
inline cell_moments std_normal_half_cell_series(double c, double b) {
  double s_prev = 0.0, s = 1.0;
  double t0 = 0.0, t1 = 0.0, t2 = 0.0;
  for (int n = 0; n < 200; ++n) {
    t0 += s / (n + 1);
    t1 += s / (n + 2);
    t2 += s / (n + 3);
    const double next = (-b * c * s - b * b * s_prev) / (n + 1);
    s_prev = s;
    s = next;
    if (std::fabs(s) + std::fabs(s_prev) <= 0x1p-64 * t2) break;
  }
  const double phi = std_normal_pdf(c);
  return {phi * b * t0, phi * b * b * t1, phi * b * b * b * t2};
}

// Moments of the cell [l, r] with centre c (l <= c <= r) under N(0, 1).
inline cell_moments std_normal_cell(double l, double c, double r) {
  const double a = l - c, b = r - c;  // a <= 0 <= b
  const double half_width = std::max(-a, b);
  if (half_width * (std::fabs(c) + 1.0) <= 1.0) {
    // Narrow cell: the series on both halves; both halves of p and m2 are
    // positive, so nothing cancels.
    const cell_moments hi = std_normal_half_cell_series(c, b);
    const cell_moments lo = std_normal_half_cell_series(c, a);
    return {hi.p - lo.p, hi.m1 - lo.m1, hi.m2 - lo.m2};
  }
  // Wide cell: with ∫ x φ = -φ and ∫ x^2 φ = Φ - x φ,
  //   m1 = φ(l) - φ(r) - c p,
  //   m2 = (1 + c^2) p - (r - 2c) φ(r) + (l - 2c) φ(l),
  // with the terms at infinite ends dropped. The cancellation is bounded by
  // about 3 (1 + c^2)(1 + |c|)^2 here, and is largest only in the far tails
  // where the cell weighs little.
  const double p = std_normal_mass(l, r);
  const double phi_l = std_normal_pdf(l), phi_r = std_normal_pdf(r);
  const double xphi_l = std::isinf(l) ? 0.0 : (l - 2.0 * c) * phi_l;
  const double xphi_r = std::isinf(r) ? 0.0 : (r - 2.0 * c) * phi_r;
  return {p, phi_l - phi_r - c * p, (1.0 + c * c) * p - xphi_r + xphi_l};
}

// Moments under N(mu, sigma^2), by standardizing.
template <class Policy>
cell_moments normal_cell(const boost::math::normal_distribution<double, Policy>& d, double l, double c,
                         double r) {
  const double mu = d.mean(), sigma = d.standard_deviation();
  const auto z = [&](double x) { return std::isinf(x) ? x : (x - mu) / sigma; };
  cell_moments m = std_normal_cell(z(l), z(c), z(r));
  m.m1 *= sigma;
  m.m2 *= sigma * sigma;
  return m;
}

// ------------------------------------------------------- any distribution, quadrature

// Gauss–Kronrod 31 (Gauss 15 for the error estimate). With 21 points, Boost
// 1.74's recursion stalls at this tolerance on a piece whose density peaks at
// one end (a Student-t cell of width 20 ending at the mode: 86000 calls and
// the depth limit, against 280 with 31 points).
inline constexpr double gauss_kronrod_tolerance = 1e-14;  // relative, per piece
inline constexpr unsigned gauss_kronrod_max_depth = 15;
// exp_sinh's error estimate is the change between refinement levels, which
// roughly squares the error each level; eps^(2/3) leaves a wide margin.
inline constexpr double exp_sinh_tolerance = 4e-11;

// Boost 1.74 declares exp_sinh::integrate(f, a, b, ...) const but defines it
// non-const, so the integrator is held as a mutable member of one evaluator
// (one per call of a public function, hence never shared between threads).
using tail_integrator = boost::math::quadrature::exp_sinh<double>;

// ∫_lo^hi g over a piece with no kink inside; at most one end infinite.
template <class G>
double integrate_piece(tail_integrator& tails, const G& g, double lo, double hi) {
  if (!(lo < hi)) return 0.0;
  if (std::isinf(lo) || std::isinf(hi)) return tails.integrate(g, lo, hi, exp_sinh_tolerance);
  // Boost 1.74's adaptive Gauss–Kronrod compares an error estimate taken on
  // [-1, 1] with a tolerance relative to the integral over [lo, hi], so a
  // narrow cell would recurse to the depth limit; mapping the cell onto
  // [-1, 1] here keeps the two on the same footing.
  const double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
  const auto unit = [&](double t) { return g(mid + half * t); };
  return half * boost::math::quadrature::gauss_kronrod<double, 31>::integrate(
                    unit, -1.0, 1.0, gauss_kronrod_max_depth, gauss_kronrod_tolerance);
}

// ∫_lo^hi g(u) du in the offset u = x - c from the cell's centre, split at
// u = 0 and at the distribution's mode (the kink of the Laplace density, and
// the point that keeps a doubly infinite cell two half-lines). Working in u
// keeps u^k exact where the cell is narrow (x - c would lose the digits that
// x and c share, and that noise alone would make Gauss–Kronrod recurse to
// its depth limit). Splitting at u = 0 gives pieces of one sign, so that the
// relative tolerance stays meaningful for m1, which is near zero once c is
// the centroid.
template <class G>
double integrate_cell(tail_integrator& tails, const G& g, double lo, double hi, double mode) {
  const double cuts[2] = {std::min(mode, 0.0), std::max(mode, 0.0)};
  double total = 0.0, from = lo;
  for (double cut : cuts) {
    if (from < cut && cut < hi) {
      total += integrate_piece(tails, g, from, cut);
      from = cut;
    }
  }
  return total + integrate_piece(tails, g, from, hi);
}

// P(l < X < r) from the CDF, through the complement on the upper side.
template <class Dist>
double mass(const Dist& d, double l, double r, double median) {
  const auto lower = [&](double x) {
    return std::isinf(x) ? (x < 0 ? 0.0 : 1.0) : boost::math::cdf(d, x);
  };
  const auto upper = [&](double x) {
    return std::isinf(x) ? (x < 0 ? 1.0 : 0.0) : boost::math::cdf(boost::math::complement(d, x));
  };
  if (l >= median) return upper(l) - upper(r);
  return lower(r) - lower(l);
}

// What the quadrature needs to know about the distribution once per call.
struct support_info {
  double lo, hi, mode, median;
  double negligible;  // a cell moment below this cannot change any sum in double
};

template <class Dist>
support_info describe(const Dist& d) {
  const auto s = boost::math::support(d);
  const double big = std::numeric_limits<double>::max();
  // The error of any grid of up to ~1e15 points exceeds 1e-30 E[X^2] by far;
  // cells whose moments are bounded below that (far out in a light tail,
  // where the density falls by many orders across the cell and quadrature
  // would work hard for nothing) are skipped.
  return {s.first <= -big ? -grid_inf : s.first, s.second >= big ? grid_inf : s.second, boost::math::mode(d),
          boost::math::median(d), 1e-30 * second_moment(d)};
}

template <class Dist>
cell_moments quadrature_cell(const Dist& d, const support_info& s, tail_integrator& tails, double l, double c,
                             double r, moments which, std::uintmax_t& evaluations) {
  cell_moments m;
  const double lo = std::max(l, s.lo), hi = std::min(r, s.hi);
  if (!(lo < hi)) return m;
  m.p = mass(d, lo, hi, s.median);
  // |x - c| <= reach on the cell, so |m1| <= p reach and m2 <= p reach^2.
  const double reach = std::max(c - lo, hi - c);
  if (m.p * std::max(reach, 1.0) * std::max(reach, 1.0) <= s.negligible) return m;
  const double ulo = lo - c, uhi = hi - c, umode = s.mode - c;
  if (wants(which, moments::m2)) {
    m.m2 = integrate_cell(
        tails,
        [&](double u) {
          ++evaluations;
          const double f = boost::math::pdf(d, c + u);
          return f == 0.0 ? 0.0 : u * u * f;
        },
        ulo, uhi, umode);
  }
  if (wants(which, moments::p_m1)) {
    m.m1 = integrate_cell(
        tails,
        [&](double u) {
          ++evaluations;
          const double f = boost::math::pdf(d, c + u);
          return f == 0.0 ? 0.0 : u * f;
        },
        ulo, uhi, umode);
  }
  return m;
}

// ------------------------------------------------------------- dispatch

// Cell moments for any distribution: closed form for the normal unless
// force_quadrature, quadrature otherwise. `task` names the call in the message
// of an exhausted budget ("lloyd_max with 2048 levels").
template <class Dist>
class cell_evaluator {
 public:
  cell_evaluator(const Dist& d, bool force_quadrature, std::uintmax_t max_evaluations = default_max_evaluations,
                 std::string task = "the grid optimizer")
      : d_(d), quad_(force_quadrature || !is_normal<Dist>::value), budget_(max_evaluations), task_(std::move(task)) {
    require(max_evaluations > 0, task_ + ": max_evaluations must be > 0");
    if (quad_) {
      info_ = describe(d);
      tails_.emplace();
    }
  }

  cell_moments operator()(double l, double c, double r, moments which) const {
    if constexpr (is_normal<Dist>::value) {
      if (!quad_) {
        ++used_;
        check_budget();
        return normal_cell(d_, l, c, r);
      }
    }
    const cell_moments m = quadrature_cell(d_, info_, *tails_, l, c, r, which, used_);
    check_budget();
    return m;
  }

  // Density evaluations spent so far (closed-form cells count one each).
  std::uintmax_t evaluations() const noexcept { return used_; }

  double pdf(double x) const {
    if (std::isinf(x)) return 0.0;
    if constexpr (is_normal<Dist>::value) {
      const double sigma = d_.standard_deviation();
      return std_normal_pdf((x - d_.mean()) / sigma) / sigma;
    } else {
      if (x < info_.lo || x > info_.hi) return 0.0;
      return boost::math::pdf(d_, x);
    }
  }

 private:
  void check_budget() const {
    if (used_ > budget_)
      require(false, task_ + " for " + distribution_name(d_) + " is out of reach: it needs more than " +
                         std::to_string(budget_) +
                         " density evaluations (the effort limit, max_evaluations); heavy tails (Student-t near "
                         "nu = 2) and many levels cost most: use fewer bits or a larger nu");
  }

  const Dist& d_;
  bool quad_;
  std::uintmax_t budget_;
  std::string task_;
  mutable std::uintmax_t used_ = 0;
  support_info info_{};
  mutable std::optional<tail_integrator> tails_;
};

// E[(X - nearest(X))^2] for the grid scale·g, without argument checks.
template <class Dist>
double mse_unchecked(const cell_evaluator<Dist>& cells, std::span<const double> grid, double scale) {
  return sum_cells(grid, scale, [&](double l, double c, double r) { return cells(l, c, r, moments::m2).m2; });
}

}  // namespace detail
BLOCKQ_END_NAMESPACE
