// The exact optimum for a continuous (float) scale: the breakpoint sweep
// against a dense scan of the exact objective, and the quantizers' `mse`
// rule against a dense scan of the kernel error and against the
// least-squares refit at the scan's best codes.
#include "blockq/search/continuous.hpp"
#include "blockq/search/lanes.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "blockq/fp4.hpp"
#include "blockq/metrics.hpp"
#include "blockq/uniform.hpp"
#include "search_oracle.hpp"

namespace {

using blockq::int_format;
using blockq::scale_rule;
using blockq::tie_mode;
namespace search = blockq::search;
namespace kernels = blockq::kernels;
using scalar = blockq::arch::scalar;

// The exact objective in double: each element at its nearest level (clipped
// at the top level of its sign), E = Σ w (|x| - s g)².
double exact_error(std::span<const float> x, std::span<const float> w, std::span<const double> levels,
                   std::size_t top_pos, std::size_t top_neg, double s) {
  double e = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double y = std::fabs(static_cast<double>(x[i]));
    const std::size_t top = std::signbit(x[i]) ? top_neg : top_pos;
    double best = y * y;
    for (std::size_t k = 1; k <= top; ++k) best = std::min(best, (y - s * levels[k]) * (y - s * levels[k]));
    e += (w.empty() ? 1.0 : w[i]) * best;
  }
  return e;
}

// An independent exact oracle: every interval between consecutive
// breakpoints |x_i| / t_k (all of them, sorted), its codes recomputed from
// scratch at the interval's midpoint, its least-squares scale clamped to the
// interval. O(n^2 L) per block.
double interval_oracle(std::span<const float> x, std::span<const float> w, std::span<const double> levels,
                       std::size_t top_pos, std::size_t top_neg) {
  std::vector<double> bp = {0.0};
  for (std::size_t i = 0; i < x.size(); ++i) {
    const std::size_t top = std::signbit(x[i]) ? top_neg : top_pos;
    for (std::size_t k = 1; k <= top; ++k) bp.push_back(std::fabs(static_cast<double>(x[i])) / ((levels[k - 1] + levels[k]) / 2));
  }
  std::sort(bp.begin(), bp.end());
  bp.push_back(bp.back() * 2 + 1);
  double best = std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j + 1 < bp.size(); ++j) {
    const double lo = bp[j], hi = bp[j + 1];
    if (!(hi > lo)) continue;
    const double mid = (lo + hi) / 2;
    double a = 0, b = 0, c = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double wi = w.empty() ? 1.0 : w[i], y = std::fabs(static_cast<double>(x[i]));
      const std::size_t top = std::signbit(x[i]) ? top_neg : top_pos;
      std::size_t k = 0;
      while (k < top && y / mid > (levels[k] + levels[k + 1]) / 2) ++k;
      a += wi * y * levels[k];
      b += wi * levels[k] * levels[k];
      c += wi * y * y;
    }
    if (b == 0) continue;
    const double s = std::clamp(a / b, lo, hi);
    best = std::min(best, c - 2 * s * a + s * s * b);
  }
  return best;
}

// Geometric scan of n scales over [lo, hi].
template <class F>
std::pair<double, double> scan(double lo, double hi, int n, F&& f) {
  double best = std::numeric_limits<double>::infinity(), at = lo;
  for (int i = 0; i <= n; ++i) {
    const double s = lo * std::pow(hi / lo, static_cast<double>(i) / n);
    const double e = f(s);
    if (e < best) best = e, at = s;
  }
  return {best, at};
}

std::vector<float> weights_for(int rep, std::size_t n, std::mt19937_64& g) {
  std::vector<float> w;
  if (rep % 2) {
    std::uniform_real_distribution<float> u(0.0f, 3.0f);
    w.resize(n);
    for (auto& v : w) v = u(g);
  }
  return w;
}

// A block on the lattice of E2M1 midpoints: many breakpoints coincide and
// many elements sit exactly on rounding ties.
std::vector<float> lattice_block(std::size_t n, std::mt19937_64& g) {
  std::vector<float> x(n);
  for (auto& v : x) v = 0.25f * static_cast<float>(static_cast<int>(g() % 49) - 24);
  return x;
}

TEST(SearchSweep, FindsTheExactMinimumOfTheContinuousObjective) {
  std::mt19937_64 g(31);
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(32));
  const auto& lv = search::element_levels<blockq::e2m1>();
  for (int rep = 0; rep < 200; ++rep) {
    const auto x = rep % 5 == 4 ? lattice_block(32, g) : search_test::make_block(search_test::all_kinds[rep % 3], 32, g);
    const auto w = weights_for(rep, 32, g);
    std::array<search::scale_candidate, 4> c{};
    const std::size_t got = search::sweep_scales(x, w.empty() ? nullptr : w.data(), lv, 7, 7, heap, c);
    ASSERT_GT(got, 0u);
    const double want = interval_oracle(x, w, lv, 7, 7);
    EXPECT_NEAR(c[0].error, want, 1e-12 * want + 1e-300) << rep;
    // The reported minimum is attained at the reported scale, and no scale of a dense scan is below it.
    EXPECT_NEAR(exact_error(x, w, lv, 7, 7, c[0].scale), c[0].error, 1e-12 * want + 1e-300) << rep;
    const double amax = kernels::block_amax(scalar{}, x.data(), 32);
    const double smin = scan(amax / 60, amax / 0.25, 2000, [&](double s) { return exact_error(x, w, lv, 7, 7, s); }).first;
    EXPECT_LE(c[0].error, smin * (1 + 1e-12) + 1e-300) << rep;
    // With a budget (the absmax scale's error) the restricted sweep finds the same minimum.
    std::array<search::scale_candidate, 4> cb{};
    const double budget = exact_error(x, w, lv, 7, 7, amax / 6);
    ASSERT_GT(search::sweep_scales(x, w.empty() ? nullptr : w.data(), lv, 7, 7, heap, cb, budget), 0u);
    EXPECT_NEAR(cb[0].error, want, 1e-12 * want + 1e-300) << rep;
  }
}

TEST(SearchSweep, IntegerLevelsWithAsymmetricTops) {
  std::mt19937_64 g(32);
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(40));
  const auto& lv = search::integer_levels();
  for (int bits : {1, 2, 3, 4, 8}) {
    const int_format f{bits, true};
    const std::size_t qmax = static_cast<std::size_t>(f.qmax()), qneg = static_cast<std::size_t>(-f.qmin());
    for (int rep = 0; rep < 40; ++rep) {
      const auto x = search_test::make_block(search_test::all_kinds[rep % 3], 40, g);
      const auto w = weights_for(rep, 40, g);
      std::array<search::scale_candidate, 4> c{};
      const std::size_t got = search::sweep_scales(x, w.empty() ? nullptr : w.data(), lv, qmax, qneg, heap, c);
      ASSERT_GT(got, 0u);
      const double want = interval_oracle(x, w, lv, qmax, qneg);
      // E = C - 2 s A + s^2 B cancels: the rounding is relative to C = Σ w x^2.
      const double tol = 1e-12 * want + 1e-14 * kernels::block_energy(scalar{}, x.data(), w.empty() ? nullptr : w.data(), 40);
      EXPECT_NEAR(c[0].error, want, tol) << bits << " " << rep;
      EXPECT_NEAR(exact_error(x, w, lv, qmax, qneg, c[0].scale), c[0].error, tol) << bits << " " << rep;
      std::array<search::scale_candidate, 4> cb{};
      const double budget = exact_error(x, w, lv, qmax, qneg, kernels::block_amax(scalar{}, x.data(), 40) / std::max<double>(1, static_cast<double>(qmax)));
      ASSERT_GT(search::sweep_scales(x, w.empty() ? nullptr : w.data(), lv, qmax, qneg, heap, cb, budget), 0u);
      EXPECT_NEAR(cb[0].error, want, tol) << bits << " " << rep;
    }
  }
}

// Both merges of the sweep (sorted batches up to 16 levels, the heap of
// level heads beyond) and both element sorts (ranks up to 64 elements,
// std::sort beyond), on blocks with many equal magnitudes: 4-bit and 6-bit
// symmetric codes (8 and 32 levels at most) and E2M1, 24 and 96 elements.
TEST(SearchSweep, BatchAndHeapMergesOnRepeatedMagnitudes) {
  std::mt19937_64 g(33);
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(96));
  for (std::size_t n : {24u, 96u}) {
    for (int rep = 0; rep < 12; ++rep) {
      std::vector<float> x = rep % 2 ? lattice_block(n, g) : search_test::make_block(search_test::kind::student3, n, g);
      for (std::size_t i = 0; i + 1 < n; i += 3) x[i + 1] = -x[i];  // equal magnitudes of both signs
      const auto w = weights_for(rep / 2, n, g);
      const float* wp = w.empty() ? nullptr : w.data();
      const double tol = 1e-12 * kernels::block_energy(scalar{}, x.data(), wp, n);
      for (int bits : {4, 6}) {
        const int_format f{bits, true};
        const std::size_t qmax = static_cast<std::size_t>(f.qmax()), qneg = static_cast<std::size_t>(-f.qmin());
        const auto& lv = search::integer_levels();
        std::array<search::scale_candidate, 4> c{};
        ASSERT_GT(search::sweep_scales(x, wp, lv, qmax, qneg, heap, c), 0u);
        EXPECT_NEAR(c[0].error, interval_oracle(x, w, lv, qmax, qneg), tol) << n << " " << bits << " " << rep;
      }
      const auto& ev = search::element_levels<blockq::e2m1>();
      std::array<search::scale_candidate, 4> c{};
      ASSERT_GT(search::sweep_scales(x, wp, ev, 7, 7, heap, c), 0u);
      EXPECT_NEAR(c[0].error, interval_oracle(x, w, ev, 7, 7), tol) << n << " e2m1 " << rep;
    }
  }
}

// The batch sweep's order: sort_breakpoints must leave the breakpoints by
// s descending and keep the order of its input on equal s (the gathered
// lists, level by level; equal breakpoints then move the same elements in the
// same order, so A and B round the same). The quantizers' bytes rarely
// depend on that order (a reversed order of equal keys changed none of
// ~3e5 tie-rich blocks), so it is pinned here, entry for entry, against
// std::stable_sort: runs of equal keys, neighbours one double apart (the
// same float key: one bucket, sorted by the insertion), a few keys over a
// range of 2^±60 (wide buckets), a single key, and sizes from 0 to past the
// 512-bucket cap.
TEST(SearchSweep, BreakpointSortIsStableByScaleDescending) {
  std::mt19937_64 g(71);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t m : {0u, 1u, 2u, 3u, 7u, 16u, 17u, 57u, 64u, 65u, 130u, 200u, 511u, 700u}) {
    for (int shape = 0; shape < 5; ++shape) {
      std::vector<search::sweep_entry> src(m), got(m), want;
      for (std::size_t j = 0; j < m; ++j) {
        double s = 0.0;
        switch (shape) {
          case 0: s = u(g) * 8.0; break;                                           // distinct
          case 1: s = 0.25 * static_cast<double>(g() % 9 + 1); break;              // runs of equal keys
          case 2:  // 3 keys one double apart: one float key
            s = 1.5;
            for (auto up = g() % 3; up > 0; --up) s = std::nextafter(s, 2.0);
            break;
          case 3: s = std::ldexp(1.0 + 0.5 * static_cast<double>(g() % 2), static_cast<int>(g() % 121) - 60); break;
          default: s = 3.0; break;                                                 // one key
        }
        src[j] = {s, static_cast<std::uint32_t>(j), static_cast<std::uint32_t>(g() % 16 + 1)};
      }
      want = src;
      std::stable_sort(want.begin(), want.end(), [](const auto& p, const auto& q) { return p.s > q.s; });
      search::detail::sort_breakpoints(src.data(), m, got.data());
      for (std::size_t j = 0; j < m; ++j) {
        ASSERT_EQ(std::bit_cast<std::uint64_t>(got[j].s), std::bit_cast<std::uint64_t>(want[j].s)) << m << " " << shape << " " << j;
        ASSERT_EQ(got[j].i, want[j].i) << m << " " << shape << " " << j;
        ASSERT_EQ(got[j].k, want[j].k) << m << " " << shape << " " << j;
      }
    }
  }
}

// Blocks at the edges of what a restricted sweep must survive, with and
// without a budget, the budget also equal to the minimum itself: one large
// element over small ones (E is flat in the small ones: several equal
// minima, one per level of the large element), magnitudes near 2^±100
// (squares far outside float's range), all magnitudes equal (both signs),
// half zeros, and weights from 0 to 1e6. E2M1 and int4 levels.
TEST(SearchSweep, EdgeMagnitudesAndPlateausAgainstTheOracle) {
  std::mt19937_64 g(36);
  std::normal_distribution<float> nd;
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(32));
  const auto& ev = search::element_levels<blockq::e2m1>();
  const auto& iv = search::integer_levels();
  for (int rep = 0; rep < 60; ++rep) {
    std::vector<float> x(32);
    for (auto& v : x) v = nd(g);
    switch (rep % 6) {
      case 0: x[rep % 32] = 80.0f; for (auto& v : x) if (std::fabs(v) < 60.0f) v *= 0.05f; break;  // plateau
      case 1: for (auto& v : x) v = std::ldexp(v, 100); break;
      case 2: for (auto& v : x) v = std::ldexp(v, -100); break;
      case 3: for (std::size_t i = 0; i < 32; ++i) x[i] = i % 3 ? 1.75f : -1.75f; break;
      case 4: for (std::size_t i = 0; i < 32; i += 2) x[i] = 0.0f; break;
      default: break;
    }
    std::vector<float> w;
    if (rep % 2) {
      w.resize(32);
      for (std::size_t i = 0; i < 32; ++i) w[i] = i % 7 == 0 ? 0.0f : std::ldexp(1.0f, static_cast<int>(g() % 40) - 20);
    }
    const float* wp = w.empty() ? nullptr : w.data();
    const double energy = kernels::block_energy(scalar{}, x.data(), wp, 32);
    const double amax = kernels::block_amax(scalar{}, x.data(), 32);
    struct grid {
      std::span<const double> levels;
      std::size_t top_pos, top_neg;
      double start;  // a scale for the budget
    };
    for (const grid& gr : {grid{ev, 7, 7, amax / 6}, grid{iv, 7, 8, amax / 7}, grid{iv, 8, 7, amax / 8}}) {
      const double want = interval_oracle(x, w, gr.levels, gr.top_pos, gr.top_neg);
      const double tol = 1e-12 * want + 1e-14 * energy;
      // The budget equal to the minimum up to the oracle's rounding (E = C - 2 s A + s² B: ~1e-16 C).
      for (double budget : {std::numeric_limits<double>::infinity(),
                            exact_error(x, w, gr.levels, gr.top_pos, gr.top_neg, gr.start), want + tol}) {
        std::array<search::scale_candidate, 4> c{};
        const std::size_t got = search::sweep_scales(x, wp, gr.levels, gr.top_pos, gr.top_neg, heap, c, budget);
        if (!(want > 0.0)) continue;  // an exact fit: E = 0 at some scale
        ASSERT_GT(got, 0u) << rep << " " << budget;
        EXPECT_NEAR(c[0].error, want, tol) << rep << " " << gr.top_pos << " " << gr.top_neg << " " << gr.levels.size() << " " << budget;
        EXPECT_NEAR(exact_error(x, w, gr.levels, gr.top_pos, gr.top_neg, c[0].scale), c[0].error, tol) << rep;
      }
    }
  }
}

// A budget B drops only minima above it: the list under B begins with every
// minimum of the unbounded list up to B, in the same order, scale and error
// bit for bit (unweighted normals: their sums are exact in any order). What
// follows them is above B and never beats the quantizer's start. Budgets at
// the first, second and third minimum and at the absmax scale's error; E2M1
// and int4 levels of either sign.
TEST(SearchSweep, BudgetKeepsTheMinimaBelowIt) {
  std::mt19937_64 g(37);
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(32));
  const auto& ev = search::element_levels<blockq::e2m1>();
  const auto& iv = search::integer_levels();
  for (int rep = 0; rep < 300; ++rep) {
    const auto x = search_test::make_block(search_test::kind::normal, 32, g);
    const double amax = kernels::block_amax(scalar{}, x.data(), 32);
    struct grid {
      std::span<const double> levels;
      std::size_t top_pos, top_neg;
      double start;
    };
    for (const grid& gr : {grid{ev, 7, 7, amax / 6}, grid{iv, 7, 8, amax / 7}, grid{iv, 8, 7, amax / 8}}) {
      std::array<search::scale_candidate, 4> full{};
      const std::size_t nfull = search::sweep_scales(x, nullptr, gr.levels, gr.top_pos, gr.top_neg, heap, full);
      ASSERT_EQ(nfull, 4u) << rep;
      for (double budget : {full[0].error, full[1].error, full[2].error,
                            exact_error(x, {}, gr.levels, gr.top_pos, gr.top_neg, gr.start)}) {
        std::array<search::scale_candidate, 4> c{};
        const std::size_t got = search::sweep_scales(x, nullptr, gr.levels, gr.top_pos, gr.top_neg, heap, c, budget);
        std::size_t within = 0;
        while (within < nfull && full[within].error <= budget) ++within;
        ASSERT_GE(got, within) << rep << " " << budget;
        for (std::size_t j = 0; j < within; ++j) {
          EXPECT_EQ(c[j].scale, full[j].scale) << rep << " " << j << " " << budget;
          EXPECT_EQ(c[j].error, full[j].error) << rep << " " << j << " " << budget;
        }
        for (std::size_t j = within; j < got; ++j) EXPECT_GT(c[j].error, budget) << rep << " " << j;
      }
    }
  }
}

// The sweep stops at lo, below which one element alone is clipped by more than
// the best error found so far (search/continuous.hpp raises it lazily, when a
// breakpoint is tested against it). Blocks that put the optimum right at that
// bound, where a lo raised by a relative 1e-4 too far cuts it off (int3 and
// int4; 1e-3 for int8, whose larger elements leave less room in float): integer
// levels with an odd top g, a heavy cluster at 2 s0 and 4 s0 (below g; exact at s0 and
// at 2 s0), y = (g + 1/2 - e) s0 above it (e = 2^-20, int8 2^-16; clipped by R = y - g s0
// at s0; at 2 s0 it rounds up to (g + 1) s0, an error (s0 - R)^2 just above
// R^2, found first), and a light element whose breakpoint sits 2^-20 s0 above
// s0, the top of the optimum's interval. Against the interval oracle, with and
// without a budget; the heap merge too (g = 127).
TEST(SearchSweep, OptimumAtTheClipBound) {
  std::mt19937_64 g(38);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(32));
  const auto& iv = search::integer_levels();
  for (int rep = 0; rep < 64; ++rep) {
    const std::size_t odd = rep % 4 == 3 ? 127 : rep % 4 == 2 ? 3 : 7;  // the clipped element's top
    const bool neg = rep % 2;
    const std::size_t top_pos = neg ? odd + 1 : odd, top_neg = neg ? odd : odd + 1;
    const float s0 = std::ldexp(1.0f, static_cast<int>(g() % 41) - 20);
    std::vector<float> x(32), w(32);
    for (std::size_t i = 2; i < 32; ++i) {
      x[i] = s0 * (g() & 1 || odd < 5 ? 2.0f : 4.0f) * (g() & 1 ? -1.0f : 1.0f);
      w[i] = std::ldexp(1.0f + u(g), 22);
    }
    const float r = s0 * (0.5f - (odd > 7 ? 0x1p-16f : 0x1p-20f));  // y exact in float
    x[0] = (neg ? -1.0f : 1.0f) * (s0 * static_cast<float>(odd) + r);
    w[0] = 1.0f;
    const float k = static_cast<float>(1 + g() % std::min<std::size_t>(odd - 1, 5));  // its breakpoint (k + 1/2) s0 (1 + 2^-20) / (k + 1/2)
    x[1] = (k + 0.5f) * (1.0f + 0x1p-20f) * s0;
    w[1] = 0x1p-20f;
    const double want = interval_oracle(x, w, iv, top_pos, top_neg);
    // E = C - 2 s A + s^2 B cancels: rounding ~1e-16 C, C ~ 2^31 s0^2, far below the 1e-4 R^2 at stake.
    const double tol = 1e-15 * kernels::block_energy(scalar{}, x.data(), w.data(), 32);
    ASSERT_NEAR(want, static_cast<double>(r) * r, 1e-5 * want) << rep;  // the premise: the clipping is the error
    for (double budget : {std::numeric_limits<double>::infinity(),
                          exact_error(x, w, iv, top_pos, top_neg, static_cast<double>(x[0]) / (neg ? -1.0 : 1.0) / static_cast<double>(odd)),
                          want + tol}) {
      std::array<search::scale_candidate, 4> c{};
      ASSERT_GT(search::sweep_scales(x, w.data(), iv, top_pos, top_neg, heap, c, budget), 0u) << rep;
      EXPECT_NEAR(c[0].error, want, tol) << rep << " " << budget;
      EXPECT_GE(c[0].scale, static_cast<double>(s0)) << rep;
      EXPECT_LE(c[0].scale, static_cast<double>(s0) * (1 + 0x1p-20)) << rep;
    }
  }
}

// fp4 + float scale, rule mse: the kernel error is at most a dense scan's
// (up to float rounding, 1e-7 relative) and at most the refit at the scan's
// best codes; and never above absmax or lsq.
TEST(SearchFp4Mse, BeatsDenseScanAndTheRefitAtItsCodes) {
  std::mt19937_64 g(33);
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(32));
  std::vector<std::uint8_t> codes(32), scratch(search::lsq_scratch_bytes(32));
  double worst = 0.0;
  for (tie_mode ties : {tie_mode::even, tie_mode::toward_zero, tie_mode::away}) {
    for (int rep = 0; rep < 60; ++rep) {
      const auto x = rep % 6 == 5 ? lattice_block(32, g) : search_test::make_block(search_test::all_kinds[rep % 5], 32, g);
      const auto w = weights_for(rep, 32, g);
      auto err = [&](float s) {
        return w.empty() ? kernels::block_sse<blockq::e2m1>(scalar{}, x.data(), 32, s, ties)
                         : kernels::block_wsse<blockq::e2m1>(scalar{}, x.data(), w.data(), 32, s, ties);
      };
      const float amax = kernels::block_amax(scalar{}, x.data(), 32);
      const float start = amax / 6.0f;
      const auto r = search::continuous_element_mse<blockq::e2m1>(scalar{}, x, w, start, ties, heap);
      ASSERT_EQ(r.error, err(r.scale));
      EXPECT_LE(r.error, err(start));
      const auto [smin, sat] = scan(amax / 60.0, amax / 0.25, 20000, [&](double s) { return err(static_cast<float>(s)); });
      EXPECT_LE(r.error, smin * (1 + 1e-7)) << rep;
      worst = std::max(worst, r.error / smin - 1);
      // The refit at the scan's best codes.
      kernels::encode<blockq::e2m1>(scalar{}, x.data(), 32, static_cast<float>(sat), ties, codes.data());
      const auto sums = kernels::element_refit_sums<blockq::e2m1>(scalar{}, x.data(), w.empty() ? nullptr : w.data(), codes.data(), 32);
      const auto refit = search::solve_symmetric(sums);
      if (refit.ok && refit.scale > 0) {
        EXPECT_LE(r.error, err(static_cast<float>(refit.scale)) * (1 + 1e-7)) << rep;
      }
      const auto l = search::lsq_element<blockq::e2m1>(scalar{}, x, w, start, ties, scratch);
      EXPECT_LE(r.error, l.error * (1 + 2e-6)) << rep;
    }
  }
  std::printf("largest (mse / dense-scan min - 1): %.3g\n", worst);
}

// The blocks of one call of a lane sweep: count blocks of 1..32 elements (32 but for every fourth
// lane), x from make(n), weights in [0, 3) with zeros among them when weighted, starts from
// start_of(x).
struct lane_group {
  std::vector<std::vector<float>> xs, ws;
  std::vector<search::lane_block> lane;
  template <class Make, class Start>
  lane_group(std::size_t count, bool weighted, int group, std::mt19937_64& g, Make&& make, Start&& start_of)
      : xs(count), ws(count), lane(count) {
    for (std::size_t l = 0; l < count; ++l) {
      const std::size_t n = (static_cast<std::size_t>(group) + l) % 4 == 0 ? 1 + g() % 32 : 32;
      xs[l] = make(n);
      if (weighted) {
        std::uniform_real_distribution<float> u(0.0f, 3.0f);
        ws[l].resize(n);
        for (auto& v : ws[l]) v = g() % 7 == 0 ? 0.0f : u(g);
      }
      lane[l] = {xs[l].data(), weighted ? ws[l].data() : nullptr, n, start_of(xs[l])};
    }
  }
};

// What the lane-sweep tests check of one lane's result `got`: bit for bit that of its block
// searched alone; a block left alone (a NaN start) keeps its start; else an error that is the
// kernel's at its scale (err), never above the start's, at most `bound` (the oracle's minimum
// and its rounding), and at most the single-block sweep's but for float rounding.
struct lane_tally {
  std::size_t searched = 0, equal_to_single = 0;
  template <class Err>
  void check(const search::scale_min_result& got, const search::scale_min_result& alone, float start,
             double start_error, const search::scale_min_result& single, Err&& err, double bound, const std::string& at) {
    ASSERT_EQ(std::bit_cast<std::uint32_t>(got.scale), std::bit_cast<std::uint32_t>(alone.scale)) << at;
    ASSERT_EQ(got.error, alone.error) << at;
    if (!std::isfinite(start)) {
      EXPECT_TRUE(std::isnan(got.scale)) << at;
      return;
    }
    if (start_error == 0.0) {
      EXPECT_EQ(got.error, 0.0) << at;
      return;
    }
    ++searched;
    ASSERT_EQ(got.error, err(got.scale)) << at;
    EXPECT_LE(got.error, start_error) << at;
    EXPECT_LE(got.error, bound) << at;
    EXPECT_LE(got.error, single.error * (1 + 1e-6)) << at;
    equal_to_single += got.error == single.error;
  }
  void expect_searched(std::size_t at_least, const char* what) const {
    EXPECT_GT(searched, at_least);
    EXPECT_GT(equal_to_single * 1000, searched * 995) << equal_to_single << " of " << searched;
    std::printf("%s lane results equal to the single sweep's: %zu of %zu\n", what, equal_to_single, searched);
  }
};

// The lane sweep (search/lanes.hpp), which rule mse of fp4 runs: groups of 1..11 blocks of
// every kind (lattice blocks with coinciding breakpoints among them), weighted or not, with
// lanes the search leaves alone (zeros, a NaN, a zero start) — lane_tally's checks, against the
// interval oracle and continuous_element_mse (the single-block sweep, which keeps more
// candidates). Each lane's result equal to its block's alone means the lane count of a tier
// cannot change it.
TEST(SearchLanes, ExactAndIndependentOfTheOtherLanes) {
  std::mt19937_64 g(35);
  const auto& ev = search::element_levels<blockq::e2m1>();
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(32));
  lane_tally tally;
  for (int group = 0; group < 300; ++group) {
    const std::size_t count = 1 + static_cast<std::size_t>(group % 11);
    const tie_mode ties = group % 2 ? tie_mode::even : (group % 4 ? tie_mode::away : tie_mode::toward_zero);
    const lane_group gr(
        count, group % 3 == 1, group, g,
        [&](std::size_t n) {
          const int kind = static_cast<int>(g() % 9);
          if (kind == 8) return std::vector<float>(n, 0.0f);
          return kind >= 5 ? lattice_block(n, g) : search_test::make_block(search_test::all_kinds[kind], n, g);
        },
        [&](const std::vector<float>& x) {
          if (g() % 13 == 0) return 0.0f;
          if (g() % 17 == 0) return std::numeric_limits<float>::quiet_NaN();
          return kernels::block_amax(scalar{}, x.data(), x.size()) / 6.0f;
        });
    std::vector<search::scale_min_result> got(count);
    search::continuous_element_mse_lanes<blockq::e2m1>(scalar{}, gr.lane, ties, got.data());
    for (std::size_t l = 0; l < count; ++l) {
      const search::lane_block& bl = gr.lane[l];
      const std::span<const float> x(gr.xs[l]), w(gr.ws[l]);
      const float* wp = w.empty() ? nullptr : w.data();
      search::scale_min_result alone;
      search::continuous_element_mse_lanes<blockq::e2m1>(scalar{}, std::span<const search::lane_block>(&bl, 1), ties, &alone);
      auto err = [&](float s) {
        return wp ? kernels::block_wsse<blockq::e2m1>(scalar{}, x.data(), wp, x.size(), s, ties)
                  : kernels::block_sse<blockq::e2m1>(scalar{}, x.data(), x.size(), s, ties);
      };
      const double energy = kernels::block_energy(scalar{}, x.data(), wp, x.size());
      const double start_error = bl.start > 0.0f ? err(bl.start) : energy;
      const double want = interval_oracle(x, w, ev, 7, 7);  // E = C - 2 s A + s² B: rounding ~1e-16 C
      tally.check(got[l], alone, bl.start, start_error,
                  search::continuous_element_mse<blockq::e2m1>(scalar{}, x, w, bl.start, ties, heap), err,
                  want * (1 + 1e-6) + 1e-14 * energy, "group " + std::to_string(group) + ", lane " + std::to_string(l));
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  tally.expect_searched(1000, "fp4");
}

// The lane sweep of symmetric integer codes (2 to 4 bits; a lane a block, which sweeps both
// signs of the scale), which rule mse of uniform_quantizer runs: groups of 1..9 blocks of every kind and on
// the integer lattice (coinciding breakpoints, ties), zero blocks, weighted or not, starts of
// either sign and NaN ones — lane_tally's checks, against the interval oracle's minimum over
// both signs and continuous_int_mse (the single-block sweep of both signs).
TEST(SearchLanes, IntegerCodesOfBothSigns) {
  std::mt19937_64 g(36);
  const auto& lv = search::integer_levels();
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(32));
  lane_tally tally;
  for (int group = 0; group < 240; ++group) {
    const int_format f{2 + group % 3, true};
    ASSERT_TRUE(search::int_lanes_take(f, 32));
    const std::size_t count = 1 + static_cast<std::size_t>(group % 9);
    const lane_group gr(
        count, group % 4 == 1, group, g,
        [&](std::size_t n) {
          const int kind = static_cast<int>(g() % 7);
          if (kind == 5) return std::vector<float>(n, 0.0f);
          std::vector<float> x = search_test::make_block(search_test::all_kinds[kind % 5], n, g);
          if (kind == 6)
            for (auto& v : x) v = 0.5f * static_cast<float>(static_cast<int>(g() % 33) - 16);
          return x;
        },
        [&](const std::vector<float>& x) {
          const float amax = kernels::block_amax(scalar{}, x.data(), x.size());
          if (g() % 17 == 0) return std::numeric_limits<float>::quiet_NaN();
          return g() % 3 == 0 ? -amax / static_cast<float>(-f.qmin()) : amax / static_cast<float>(f.qmax());
        });
    std::vector<search::scale_min_result> got(count);
    search::continuous_int_mse_lanes(scalar{}, gr.lane, f, got.data());
    for (std::size_t l = 0; l < count; ++l) {
      const search::lane_block& bl = gr.lane[l];
      const std::span<const float> x(gr.xs[l]), w(gr.ws[l]);
      const float* wp = w.empty() ? nullptr : w.data();
      search::scale_min_result alone;
      search::continuous_int_mse_lanes(scalar{}, std::span<const search::lane_block>(&bl, 1), f, &alone);
      auto err = [&](float s) {
        return wp ? kernels::block_wsse_int(scalar{}, x.data(), wp, x.size(), s, 0.0f, f)
                  : kernels::block_sse_int(scalar{}, x.data(), x.size(), s, 0.0f, f);
      };
      const auto qmax = static_cast<std::size_t>(f.qmax()), qneg = static_cast<std::size_t>(-f.qmin());
      const double want = std::min(interval_oracle(x, w, lv, qmax, qneg), interval_oracle(x, w, lv, qneg, qmax));
      const double energy = kernels::block_energy(scalar{}, x.data(), wp, x.size());
      // (q s rounded in float: a residual's error is relative to the dequantized value, not to itself)
      tally.check(got[l], alone, bl.start, std::isfinite(bl.start) ? err(bl.start) : 0.0,
                  search::continuous_int_mse(scalar{}, x, w, f, bl.start, 0.0f, heap, {}, {}), err,
                  want * (1 + 1e-6) + 1e-6 * std::sqrt(std::max(want, 0.0) * energy) + 1e-14 * energy,
                  "group " + std::to_string(group) + ", lane " + std::to_string(l));
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
  tally.expect_searched(800, "integer");
}

TEST(SearchIntMse, SymmetricBeatsDenseScanOfBothSigns) {
  std::mt19937_64 g(34);
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(32));
  std::vector<std::uint8_t> scratch(search::lsq_scratch_bytes(32));
  for (int bits : {1, 2, 3, 4, 8}) {
    const int_format f{bits, true};
    for (int rep = 0; rep < 30; ++rep) {
      const auto x = search_test::make_block(search_test::all_kinds[rep % 5], 32, g);
      const auto w = weights_for(rep, 32, g);
      auto err = [&](float s) {
        return w.empty() ? kernels::block_sse_int(scalar{}, x.data(), 32, s, 0.0f, f)
                         : kernels::block_wsse_int(scalar{}, x.data(), w.data(), 32, s, 0.0f, f);
      };
      const float amax = kernels::block_amax(scalar{}, x.data(), 32);
      const float start = amax / static_cast<float>(std::max(1, f.qmax()));
      const auto r = search::continuous_int_mse(scalar{}, x, w, f, start, 0.0f, heap, {}, {});
      ASSERT_EQ(r.error, err(r.scale));
      const double lo = amax / (4.0 * -f.qmin()), hi = amax / 0.5;
      const auto [pos, spos] = scan(lo, hi, 10000, [&](double s) { return err(static_cast<float>(s)); });
      const auto [neg, sneg] = scan(lo, hi, 10000, [&](double s) { return err(static_cast<float>(-s)); });
      EXPECT_LE(r.error, std::min(pos, neg) * (1 + 1e-7)) << bits << " " << rep;
      // The refit at the scan's best codes.
      const float sbest = pos <= neg ? static_cast<float>(spos) : -static_cast<float>(sneg);
      std::vector<std::uint8_t> codes(32);
      kernels::encode_int(scalar{}, x.data(), 32, sbest, 0.0f, f, codes.data());
      const auto refit = search::solve_symmetric(
          kernels::int_refit_sums(scalar{}, x.data(), w.empty() ? nullptr : w.data(), codes.data(), 32, f));
      if (refit.ok) {
        EXPECT_LE(r.error, err(static_cast<float>(refit.scale)) * (1 + 1e-7)) << bits << " " << rep;
      }
      const auto l = search::lsq_int(scalar{}, x, w, f, start, 0.0f, scratch);
      EXPECT_LE(r.error, l.error * (1 + 2e-6)) << bits << " " << rep;
    }
  }
}

// A block for the tests of both signs: plateau, magnitudes step * 0..top of
// random sign (ties in the |x| order between and within signs); else a
// make_block kind with about one zero in zero_one_in. weighted: weights in
// [0, 3) with the same share of zeros (inactive elements), else none.
struct two_sign_case {
  std::vector<float> x, w;
};
two_sign_case two_sign_block(std::size_t n, int rep, bool plateau, float step, int top, int zero_one_in, bool weighted,
                             std::mt19937_64& g) {
  std::uniform_int_distribution<int> mag(0, top), sign(0, 1), pick(0, zero_one_in - 1);
  std::uniform_real_distribution<float> u(0.0f, 3.0f);
  two_sign_case c{std::vector<float>(n), {}};
  if (plateau) {
    for (auto& v : c.x) v = (sign(g) ? -step : step) * static_cast<float>(mag(g));
  } else {
    c.x = search_test::make_block(search_test::all_kinds[rep % 5], n, g);
    for (auto& v : c.x)
      if (pick(g) == 0) v = 0.0f;
  }
  if (weighted) {
    c.w.resize(n);
    for (auto& v : c.w) v = pick(g) == 0 ? 0.0f : u(g);
  }
  return c;
}

// Symmetric codes sweep both signs of the scale in one pass; the result must
// be bit for bit that of two independent public sweeps with the start's
// budget, each on a heap of garbage, scored positive first. Blocks with
// repeated magnitudes of both signs (ties in the order), zeros and zero
// weights (inactive elements), 1 to 8 bits (1 bit: no positive level, two
// sweeps), 8 to 40 elements.
TEST(SearchIntMse, BothSignsInOneSweepMatchTwoFreshSweeps) {
  std::mt19937_64 g(36);
  for (int bits = 1; bits <= 8; ++bits) {
    const int_format f{bits, true};
    for (int rep = 0; rep < 300; ++rep) {
      const std::size_t n = 8 + static_cast<std::size_t>(rep % 33);
      const auto [x, w] = two_sign_block(n, rep, rep % 3 == 0, 0.25f, 6, 10, rep % 2 != 0, g);
      const float* wp = w.empty() ? nullptr : w.data();
      auto err = [&](float s, float) {
        return wp ? kernels::block_wsse_int(scalar{}, x.data(), wp, n, s, 0.0f, f)
                  : kernels::block_sse_int(scalar{}, x.data(), n, s, 0.0f, f);
      };
      const float amax = kernels::block_amax(scalar{}, x.data(), n);
      const float start = amax / static_cast<float>(std::max(1, f.qmax()));
      std::vector<search::sweep_entry> heap(search::continuous_heap_entries(n));
      const auto r = search::continuous_int_mse(scalar{}, x, w, f, start, 0.0f, heap, {}, {});

      search::scale_min_result ref{start, 0.0f, err(start, 0.0f)};
      if (ref.error > 0.0) {
        const auto qmax = static_cast<std::size_t>(f.qmax()), qneg = static_cast<std::size_t>(-f.qmin());
        // 1 bit sweeps the negative sign with the budget of the positive one's best.
        const double budget = search::detail::budget(ref.error);
        for (int side = 0; side < 2; ++side) {
          std::vector<search::sweep_entry> fresh(search::continuous_heap_entries(n), {-7.0, 12345u, 99u});
          std::array<search::scale_candidate, search::scored_candidates> c{};
          const std::size_t got = search::sweep_scales(x, wp, search::integer_levels(), side ? qneg : qmax,
                                                       side ? qmax : qneg, fresh, c,
                                                       bits == 1 ? search::detail::budget(ref.error) : budget);
          search::detail::score_candidates(std::span<const search::scale_candidate>(c.data(), got), side ? -1.0 : 1.0,
                                           0.0f, err, ref);
        }
      }
      ASSERT_EQ(std::bit_cast<std::uint32_t>(r.scale), std::bit_cast<std::uint32_t>(ref.scale)) << bits << " " << rep;
      ASSERT_EQ(r.error, ref.error) << bits << " " << rep;
    }
  }
}

// sweep_both_signs against two public sweeps, list for list, bit for bit:
// 2 to 8 bits (batch up to 16 levels, heap beyond), 8 to 80 elements (rank
// sort and std::sort of the elements), repeated magnitudes of both signs,
// zeros, zero weights, an element far above the rest, no budget and budgets
// from the absmax scale down to just above the optimum (both signs stop at
// their own lo, hi cuts the lists).
TEST(SearchSweep, BothSignsListsEqualTwoSweeps) {
  std::mt19937_64 g(37);
  const auto& lv = search::integer_levels();
  auto bits_of = [](double v) { return std::bit_cast<std::uint64_t>(v); };
  for (int bits = 2; bits <= 8; ++bits) {
    const int_format f{bits, true};
    const auto qmax = static_cast<std::size_t>(f.qmax()), qneg = static_cast<std::size_t>(-f.qmin());
    for (int rep = 0; rep < 120; ++rep) {
      const std::size_t n = 8 + static_cast<std::size_t>((rep * 7) % 73);
      auto [x, w] = two_sign_block(n, rep, rep % 4 == 0, 0.5f, 9, 8, rep % 2 != 0, g);
      if (rep % 4 != 0 && rep % 7 == 3) x[static_cast<std::size_t>(rep) % n] = -1e4f;  // one far above the rest
      const float* wp = w.empty() ? nullptr : w.data();
      const double amax = kernels::block_amax(scalar{}, x.data(), n);
      const double full = exact_error(x, w, lv, qmax, qneg, amax / static_cast<double>(qmax));
      double best = std::numeric_limits<double>::infinity();  // from the unbounded sweeps, the first pass
      for (int pass = 0; pass < 3; ++pass) {
        const double budget = pass == 0 ? std::numeric_limits<double>::infinity() : pass == 1 ? full : best * 1.001 + 1e-300;
        std::vector<search::sweep_entry> heap(search::continuous_heap_entries(n), {-7.0, 12345u, 99u});
        std::array<search::scale_candidate, search::scored_candidates> pos{}, neg{}, want_pos{}, want_neg{};
        const auto [got_pos, got_neg] = search::sweep_both_signs(x, wp, lv, qmax, qneg, heap, pos, neg, budget);
        const std::size_t want_p = search::sweep_scales(x, wp, lv, qmax, qneg, heap, want_pos, budget);
        const std::size_t want_n = search::sweep_scales(x, wp, lv, qneg, qmax, heap, want_neg, budget);
        if (pass == 0 && got_pos > 0) best = std::min(best, want_pos[0].error);
        if (pass == 0 && got_neg > 0) best = std::min(best, want_neg[0].error);
        ASSERT_EQ(got_pos, want_p) << bits << " " << rep << " " << budget;
        ASSERT_EQ(got_neg, want_n) << bits << " " << rep << " " << budget;
        for (std::size_t j = 0; j < got_pos; ++j) {
          ASSERT_EQ(bits_of(pos[j].scale), bits_of(want_pos[j].scale)) << bits << " " << rep << " " << j;
          ASSERT_EQ(bits_of(pos[j].error), bits_of(want_pos[j].error)) << bits << " " << rep << " " << j;
        }
        for (std::size_t j = 0; j < got_neg; ++j) {
          ASSERT_EQ(bits_of(neg[j].scale), bits_of(want_neg[j].scale)) << bits << " " << rep << " " << j;
          ASSERT_EQ(bits_of(neg[j].error), bits_of(want_neg[j].error)) << bits << " " << rep << " " << j;
        }
      }
    }
  }
}

TEST(SearchIntMse, AsymmetricNeverWorseThanLsqOrMinmax) {
  std::mt19937_64 g(35);
  for (int bits : {2, 4, 8}) {
    const blockq::uniform_quantizer<> mse({bits, false, 32, scale_rule::mse}), lsq({bits, false, 32, scale_rule::lsq}),
        mm({bits, false, 32, scale_rule::minmax});
    std::vector<float> x(32 * 64);
    std::student_t_distribution<float> td(3.0f);
    for (auto& v : x) v = td(g) + 0.5f;
    const auto ym = mse.dequantize(mse.quantize(x)), yl = lsq.dequantize(lsq.quantize(x)), yo = mm.dequantize(mm.quantize(x));
    for (std::size_t b = 0; b < 64; ++b) {
      const auto xb = std::span<const float>(x).subspan(b * 32, 32);
      const double em = blockq::mse(xb, std::span<const float>(ym).subspan(b * 32, 32));
      const double el = blockq::mse(xb, std::span<const float>(yl).subspan(b * 32, 32));
      const double eo = blockq::mse(xb, std::span<const float>(yo).subspan(b * 32, 32));
      EXPECT_LE(em, el * (1 + 1e-12)) << bits << " " << b;
      EXPECT_LE(el, eo * (1 + 1e-12)) << bits << " " << b;
    }
  }
}

// The asymmetric search stops as soon as a refit fails to improve (the next round would
// sweep the same min and refit the same codes). Against the rounds run until one improves
// nothing at all (the loop as it was, written out here from the public pieces), bit for bit:
// uint2/3/4/8, normal, heavy-tailed and offset blocks, unweighted and weighted.
TEST(SearchIntMse, AsymmetricStopsWhenTheRefitStops) {
  std::mt19937_64 g(39);
  std::student_t_distribution<float> td(3.0f);
  std::uniform_real_distribution<float> u(0.0f, 3.0f);
  const std::size_t n = 32;
  std::vector<search::sweep_entry> heap(search::continuous_heap_entries(n));
  std::vector<float> shifted(n);
  std::vector<std::uint8_t> codes(search::lsq_scratch_bytes(n));
  std::size_t several_rounds = 0;  // blocks where the loop written out ran more than one round
  for (int bits : {2, 3, 4, 8}) {
    const int_format f{bits, false};
    for (int rep = 0; rep < 150; ++rep) {
      std::vector<float> x = search_test::make_block(search_test::all_kinds[rep % 5], n, g), w;
      if (rep % 3 == 1) for (auto& v : x) v = std::fabs(v) + 0.25f * td(g);
      if (rep % 2) {
        w.resize(n);
        for (auto& v : w) v = u(g) * u(g);
      }
      const float* wp = w.empty() ? nullptr : w.data();
      float lo = x[0], hi = x[0];
      for (float v : x) lo = std::min(lo, v), hi = std::max(hi, v);
      const float start_scale = (hi - lo) / static_cast<float>(f.qmax()), start_min = lo;
      auto score = [&](float s, float m) {
        return wp ? kernels::block_wsse_int(scalar{}, x.data(), wp, n, s, m, f) : kernels::block_sse_int(scalar{}, x.data(), n, s, m, f);
      };
      // The loop until a round improves nothing.
      search::scale_min_result want{start_scale, start_min, score(start_scale, start_min)};
      const auto l = search::lsq_int(scalar{}, x, w, f, start_scale, start_min, codes);
      if (l.error < want.error) want = l;
      int rounds = 0;
      for (int it = 0; it < search::max_lsq_iterations && want.error > 0.0; ++it) {
        ++rounds;
        const double before = want.error;
        const float m = want.min;
        for (std::size_t i = 0; i < n; ++i) shifted[i] = x[i] - m;
        std::array<search::scale_candidate, search::scored_candidates> c{};
        const std::size_t got = search::sweep_scales(shifted, wp, search::integer_levels(), static_cast<std::size_t>(f.qmax()), 0,
                                                     heap, c, search::detail::budget(want.error));
        search::detail::score_candidates(std::span<const search::scale_candidate>(c.data(), got), 1.0, m, score, want);
        kernels::encode_int(scalar{}, x.data(), n, want.scale, want.min, f, codes.data());
        const auto r = search::solve_asymmetric(kernels::int_refit_sums(scalar{}, x.data(), wp, codes.data(), n, f));
        if (r.ok && search::detail::usable_scale(r.scale) && std::fabs(r.min) < 3.4e38) {
          const auto s = static_cast<float>(r.scale), mn = static_cast<float>(r.min);
          if (const double e = score(s, mn); e < want.error) want = {s, mn, e};
        }
        if (!(want.error < before)) break;
      }
      const auto got = search::continuous_int_mse(scalar{}, x, w, f, start_scale, start_min, heap, shifted, codes);
      ASSERT_EQ(std::bit_cast<std::uint32_t>(got.scale), std::bit_cast<std::uint32_t>(want.scale)) << bits << " " << rep;
      ASSERT_EQ(std::bit_cast<std::uint32_t>(got.min), std::bit_cast<std::uint32_t>(want.min)) << bits << " " << rep;
      ASSERT_EQ(got.error, want.error) << bits << " " << rep;
      several_rounds += rounds > 1;
    }
  }
  EXPECT_GT(several_rounds, 100u);
}

// Acceptance figures on 2^20 N(0,1) floats (mt19937_64 seed 1, blocks of 32).
TEST(SearchContinuous, OneMillionNormals) {
  std::mt19937_64 g(1);
  std::normal_distribution<float> nd;
  std::vector<float> x(std::size_t{1} << 20);
  for (auto& v : x) v = nd(g);
  auto run = [&](const auto& q) { return blockq::mse(x, q.dequantize(q.quantize(x))); };
  const double fa = run(blockq::fp4_quantizer<>({32, scale_rule::absmax})),
               fl = run(blockq::fp4_quantizer<>({32, scale_rule::lsq})),
               fm = run(blockq::fp4_quantizer<>({32, scale_rule::mse}));
  const double ia = run(blockq::uniform_quantizer<>({4, true, 32, scale_rule::absmax})),
               il = run(blockq::uniform_quantizer<>({4, true, 32, scale_rule::lsq})),
               im = run(blockq::uniform_quantizer<>({4, true, 32, scale_rule::mse}));
  const double ua = run(blockq::uniform_quantizer<>({4, false, 32, scale_rule::minmax})),
               ul = run(blockq::uniform_quantizer<>({4, false, 32, scale_rule::lsq})),
               um = run(blockq::uniform_quantizer<>({4, false, 32, scale_rule::mse}));
  std::printf("fp4+f32 absmax %.7f lsq %.7f mse %.7f\nint4 absmax %.7f lsq %.7f mse %.7f\n"
              "uint4 minmax %.7f lsq %.7f mse %.7f\n",
              fa, fl, fm, ia, il, im, ua, ul, um);
  EXPECT_LE(um, ul);
  EXPECT_LT(ul, ua);
  EXPECT_NEAR(um, 0.0047257, 1e-7);
  EXPECT_LT(fm, fl);
  EXPECT_LT(fl, fa);
  EXPECT_LE(im, il);
  EXPECT_LT(il, ia);
  EXPECT_NEAR(fa, 0.0101976, 1e-7);
  EXPECT_NEAR(fm, 0.0078277, 1e-7);
  EXPECT_NEAR(im, 0.0065383, 1e-7);
}

TEST(SearchContinuous, EdgeBlocks) {
  const blockq::fp4_quantizer<> fq({32, scale_rule::mse});
  const blockq::uniform_quantizer<> iq({4, true, 32, scale_rule::mse});
  std::vector<float> zeros(32, 0.0f);
  EXPECT_EQ(fq.block_scale(zeros), 0.0f);
  EXPECT_EQ(iq.block_params(zeros).scale, 0.0f);
  std::vector<float> nan(32, 1.0f);
  nan[2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(fq.block_scale(nan)));
  EXPECT_TRUE(std::isnan(iq.block_params(nan).scale));
  std::vector<float> same(32, -1.5f);  // one level fits exactly: error 0
  const auto t = iq.quantize(same);
  EXPECT_EQ(blockq::mse(same, iq.dequantize(t)), 0.0);
}

}  // namespace
