// SPDX-License-Identifier: Apache-2.0
// The exact MSE-optimal continuous (float) scale of a block whose elements
// round to a fixed grid: the `mse` rule of FP4 with a float32 scale and of
// the uniform integer quantizer.
//
// API
//   scale_min_result continuous_element_mse<Element>(Arch, span<const float> x, span<const float> w,
//                                                    float start, tie_mode ties, span<sweep_entry> heap);
//   scale_min_result continuous_int_mse(Arch, span<const float> x, span<const float> w, int_format fmt,
//                                       float start_scale, float start_min, span<sweep_entry> heap,
//                                       span<float> shifted, span<uint8_t> codes);
//     w empty: unweighted, else one non-negative weight per element.
//     heap: at least x.size() entries; shifted: x.size() floats and codes:
//     lsq_scratch_bytes(n) bytes (asymmetric formats only, may be empty otherwise).
//     Never returns an error above the start's (the start is kept unless a
//     scale is strictly better under the quantizer's own error kernel).
//   size_t sweep_scales(span<const float> x, const float* w, span<const double> levels,
//                       size_t top_pos, size_t top_neg, span<sweep_entry> heap,
//                       span<scale_candidate> out, double budget = inf);
//     The sweep itself, in exact (double) arithmetic: writes the best local
//     minima of E(s) over s > 0 below `budget`, best first, and returns how
//     many. With a finite budget only the scales that can reach it are swept:
//     below (y - sqrt(B / w)) / g_top an element alone is clipped by more than
//     B (the bound tightens as minima are found), and above y_(k) / t_1 the k
//     smallest elements all round to zero and carry more than B.
//
// Method. For a positive scale s, element i rounds |x_i| / s to the nearest
// level g_0 = 0 < g_1 < ... < g_top (top depends on the sign of x_i for
// two's-complement integers); the level changes from g_(k-1) to g_k at the
// breakpoint s = |x_i| / t_k, t_k = (g_(k-1) + g_k) / 2. Between consecutive
// breakpoints the codes are fixed and E(s) = C - 2 s A + s² B with
// A = Σ w |x| g, B = Σ w g², C = Σ w x², minimised by the least-squares
// refit s = A / B clamped to the interval. Sweeping the breakpoints from the
// largest down (a heap holding each element's next breakpoint) with running
// A and B visits every interval: O(n·L log n) for L levels, O(n) memory
// (in practice only the intervals between the bounds above).
// At a breakpoint the element's two levels are equally far, so E(s) is
// continuous and the tie rule does not change the minimum; past the top
// threshold the element stays at the top level (clipping). E is a sum of
// pointwise minima of quadratics, so its kinks are concave and every local
// minimum is a stationary point A / B inside an interval.
//
// Floating point. The sweep's minima are real numbers; the quantizer stores
// a float scale and rounds the elements in float. The best few minima are
// rounded to float and scored (the best one with its two float neighbours
// too) by the quantizer's kernel (block_sse / block_wsse / block_sse_int ...), and the
// start competes with them on equal terms (kept unless strictly beaten). The
// result's error is therefore within float rounding (~1e-7 relative) of the
// true continuous optimum, and never above the start's.
//
// Symmetric integer codes are searched for both signs of the scale (a
// negative scale maps the largest negative element to qmin = -2^(b-1), as
// ggml's Q4_0 does). Asymmetric codes (scale and min): exact optimisation of
// the scale for a fixed min alternates with the joint least-squares refit of
// scale and min, starting from the `lsq` result; this never increases the
// error and never returns more than `lsq`, but the joint (scale, min)
// optimum is not guaranteed.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/formats/integer.hpp"
#include "blockq/formats/minifloat.hpp"
#include "blockq/formats/tie_mode.hpp"
#include "blockq/kernels.hpp"
#include "blockq/search/refit.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace search {

// An element's next breakpoint during the sweep: scale s, element i, level k.
struct sweep_entry {
  double s;
  std::uint32_t i;
  std::uint32_t k;
};

// A local minimum of E(s): the scale and E there (exact arithmetic).
struct scale_candidate {
  double scale = 0.0;
  double error = 0.0;
};

// How many minima of the sweep are scored by the kernel.
inline constexpr std::size_t scored_candidates = 4;

constexpr std::size_t continuous_heap_entries(std::size_t n) noexcept { return n; }

// The non-negative levels of an element format as doubles, code 0..max_code.
template <class Element>
const std::array<double, Element::max_code + 1u>& element_levels() noexcept {
  static constexpr std::array<double, Element::max_code + 1u> table = [] {
    std::array<double, Element::max_code + 1u> t{};
    for (unsigned c = 0; c <= Element::max_code; ++c) t[c] = Element::decode(static_cast<std::uint8_t>(c));
    return t;
  }();
  return table;
}

// 0, 1, ..., 256: the levels of integer codes.
inline const std::array<double, 257>& integer_levels() noexcept {
  static constexpr std::array<double, 257> table = [] {
    std::array<double, 257> t{};
    for (int k = 0; k <= 256; ++k) t[static_cast<std::size_t>(k)] = k;
    return t;
  }();
  return table;
}

namespace detail {

// Keeps the best out.size() candidates sorted by error; an exact repeat of a
// scale keeps the smaller error.
inline void offer(std::span<scale_candidate> out, std::size_t& count, scale_candidate c) noexcept {
  for (std::size_t j = 0; j < count; ++j)
    if (out[j].scale == c.scale) {
      if (c.error < out[j].error) {
        out[j].error = c.error;
        while (j > 0 && out[j].error < out[j - 1].error) {
          std::swap(out[j], out[j - 1]);
          --j;
        }
      }
      return;
    }
  if (count < out.size()) {
    out[count++] = c;
  } else if (count > 0 && c.error < out[count - 1].error) {
    out[count - 1] = c;
  } else {
    return;
  }
  for (std::size_t j = count - 1; j > 0 && out[j].error < out[j - 1].error; --j) std::swap(out[j], out[j - 1]);
}

// A max-heap on s. Equal keys pop in an order fixed by the heap algorithm,
// so the sweep is deterministic; their order does not change E (continuity).
inline bool heap_less(const sweep_entry& a, const sweep_entry& b) noexcept { return a.s < b.s; }

}  // namespace detail

inline std::size_t sweep_scales(std::span<const float> x, const float* w, std::span<const double> levels,
                                std::size_t top_pos, std::size_t top_neg, std::span<sweep_entry> heap,
                                std::span<scale_candidate> out,
                                double budget = std::numeric_limits<double>::infinity()) noexcept {
  const std::size_t n = x.size();
  auto weight = [&](std::size_t i) { return w ? static_cast<double>(w[i]) : 1.0; };
  auto top_of = [&](std::size_t i) { return blockq::detail::sign_bit(x[i]) ? top_neg : top_pos; };
  auto threshold = [&](std::size_t k) { return (levels[k - 1] + levels[k]) / 2; };  // between levels k-1 and k
  const double cap = budget * (1.0 + 1e-12);

  // C, and the smallest scale worth sweeping: below (y - sqrt(B / w)) / g_top
  // an element alone is clipped by more than the budget allows. The element
  // with the largest y / g_top keeps that bound up to date as minima are found.
  double c = 0.0, lo = 0.0, y_star = 0.0, w_star = 0.0, g_star = 1.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double wi = weight(i), y = std::fabs(static_cast<double>(x[i]));
    c += wi * y * y;
    const std::size_t top = top_of(i);
    if (wi == 0.0 || top == 0 || y == 0.0) continue;
    const double g = levels[top];
    if (y / g > y_star / g_star) y_star = y, w_star = wi, g_star = g;
    if (cap < std::numeric_limits<double>::infinity()) lo = std::max(lo, (y - std::sqrt(cap / wi)) / g);
  }
  auto clip_bound = [&](double e) {
    return w_star > 0.0 ? (y_star - std::sqrt(e * (1.0 + 1e-12) / w_star)) / g_star : 0.0;
  };

  // The largest scale worth sweeping: above y / t_1 an element rounds to
  // zero; once the smallest of them carry more than the budget, stop.
  double hi = std::numeric_limits<double>::infinity();
  std::size_t h = 0;
  if (cap < std::numeric_limits<double>::infinity()) {
    for (std::size_t i = 0; i < n; ++i)
      if (top_of(i) > 0 && weight(i) > 0.0 && x[i] != 0.0f)
        heap[h++] = {std::fabs(static_cast<double>(x[i])), static_cast<std::uint32_t>(i), 0u};
    std::sort(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(h),
              [](const sweep_entry& p, const sweep_entry& q) { return p.s < q.s; });
    double zero = c;  // elements that never leave level 0 stay at error w y^2 at every scale
    for (std::size_t j = 0; j < h; ++j) zero -= weight(heap[j].i) * heap[j].s * heap[j].s;
    for (std::size_t j = 0; j < h; ++j) {
      zero += weight(heap[j].i) * heap[j].s * heap[j].s;
      if (zero > cap) {
        hi = heap[j].s / threshold(1);
        break;
      }
    }
  }

  // Codes at hi (all zero when hi is infinite), each element's next breakpoint below it.
  // A is summed with a compensation term (Neumaier): its terms w |x| Δg are
  // exact products, and E = C - 2 s A + s² B cancels heavily for fine grids
  // (8-bit codes). B's terms w Δ(g²) are exact and so is their sum for unit weights.
  double a = 0.0, a_lo = 0.0, b = 0.0;
  auto add_a = [&](double da) {
    const double t = a + da;
    a_lo += std::fabs(a) >= std::fabs(da) ? (a - t) + da : (da - t) + a;
    a = t;
  };
  h = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double wi = weight(i), y = std::fabs(static_cast<double>(x[i]));
    const std::size_t top = top_of(i);
    if (y == 0.0 || wi == 0.0 || top == 0) continue;
    std::size_t k = 0;
    if (hi < std::numeric_limits<double>::infinity())
      while (k < top && y > hi * threshold(k + 1)) ++k;
    if (k > 0) {
      add_a(wi * y * levels[k]);
      b += wi * levels[k] * levels[k];
    }
    if (k < top) heap[h++] = {y / threshold(k + 1), static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(k + 1)};
  }
  std::make_heap(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(h), detail::heap_less);

  std::size_t count = 0;
  // The interval [lower, upper] with the current codes: its least-squares scale.
  auto interval = [&](double lower, double upper) {
    if (!(b > 0.0)) return;
    const double am = a + a_lo;
    double s = am / b;
    s = s < lower ? lower : (s > upper ? upper : s);
    if (!(s > 0.0)) return;
    const double e = c - 2.0 * s * am + s * s * b;
    detail::offer(out, count, {s, e});
    if (count > 0) lo = std::max(lo, clip_bound(out[0].error));
  };
  interval(h > 0 ? heap[0].s : 0.0, hi);
  while (h > 0 && heap[0].s >= lo) {
    std::pop_heap(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(h), detail::heap_less);
    const sweep_entry e = heap[h - 1];
    const std::size_t i = e.i, k = e.k;
    const double wi = weight(i), yi = std::fabs(static_cast<double>(x[i]));
    const double g0 = levels[k - 1], g1 = levels[k];
    add_a(wi * yi * (g1 - g0));
    b += wi * (g1 * g1 - g0 * g0);
    if (k < top_of(i)) {
      heap[h - 1] = {yi / threshold(k + 1), e.i, e.k + 1};
      std::push_heap(heap.begin(), heap.begin() + static_cast<std::ptrdiff_t>(h), detail::heap_less);
    } else {
      --h;
    }
    interval(h > 0 ? heap[0].s : 0.0, e.s);  // the codes are now fixed below e.s
  }
  return count;
}

namespace detail {

// The sweep's budget from a kernel error: the real objective's minimum is
// below it, with room for the kernel's float rounding (~1e-7 relative).
inline double budget(double kernel_error) noexcept { return kernel_error * (1.0 + 1e-5) + 1e-300; }

// Scores each candidate (best first) at its float rounding, the best one
// also at that float's two neighbours; keeps strict improvements over best
// (which holds the start). sign = -1
// negates the candidates (the negative-scale sweep of symmetric integers).
template <class Score>
void score_candidates(std::span<const scale_candidate> cands, double sign, float min, Score&& score,
                      scale_min_result& best) noexcept {
  for (std::size_t j = 0; j < cands.size(); ++j) {
    const float f = static_cast<float>(sign * cands[j].scale);
    if (!blockq::detail::is_finite(f) || f == 0.0f) continue;
    const float near[3] = {f, std::nextafter(f, 0.0f), std::nextafter(f, sign > 0 ? 3.4e38f : -3.4e38f)};
    for (std::size_t m = 0; m < (j == 0 ? 3u : 1u); ++m) {  // the best minimum's float neighbours too
      const float s = near[m];
      if (!blockq::detail::is_finite(s) || s == 0.0f) continue;
      const double e = score(s, min);
      if (e < best.error) best = {s, min, e};
    }
  }
}

}  // namespace detail

// The best float scale for a minifloat element grid (symmetric, positive scales).
template <class Element, class Arch>
scale_min_result continuous_element_mse(Arch, std::span<const float> x, std::span<const float> w, float start,
                                        tie_mode ties, std::span<sweep_entry> heap) noexcept {
  const std::size_t n = x.size();
  const float* wp = w.empty() ? nullptr : w.data();
  scale_min_result best{start, 0.0f, 0.0};
  if (n == 0 || !blockq::detail::is_finite(start)) return best;
  auto score = [&](float s, float) {
    return wp ? kernels::block_wsse<Element>(Arch{}, x.data(), wp, n, s, ties)
              : kernels::block_sse<Element>(Arch{}, x.data(), n, s, ties);
  };
  best.error = start > 0.0f ? score(start, 0.0f) : kernels::block_energy(Arch{}, x.data(), wp, n);
  if (!(best.error > 0.0)) return best;
  std::array<scale_candidate, scored_candidates> cands{};
  const auto& lv = element_levels<Element>();
  const std::size_t got = sweep_scales(x, wp, lv, Element::max_code, Element::max_code, heap, cands, detail::budget(best.error));
  detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), 1.0, 0.0f, score, best);
  return best;
}

// The best float scale (symmetric codes) or scale and min (asymmetric, see the header).
template <class Arch>
scale_min_result continuous_int_mse(Arch, std::span<const float> x, std::span<const float> w, int_format fmt,
                                    float start_scale, float start_min, std::span<sweep_entry> heap,
                                    std::span<float> shifted, std::span<std::uint8_t> codes) noexcept {
  const std::size_t n = x.size();
  const float* wp = w.empty() ? nullptr : w.data();
  if (fmt.is_signed) start_min = 0.0f;
  scale_min_result best{start_scale, start_min, 0.0};
  if (n == 0 || !blockq::detail::is_finite(start_scale) || !blockq::detail::is_finite(start_min)) return best;
  auto score = [&](float s, float m) {
    return wp ? kernels::block_wsse_int(Arch{}, x.data(), wp, n, s, m, fmt)
              : kernels::block_sse_int(Arch{}, x.data(), n, s, m, fmt);
  };
  best.error = score(start_scale, start_min);
  if (!(best.error > 0.0)) return best;
  const auto& lv = integer_levels();
  std::array<scale_candidate, scored_candidates> cands{};
  if (fmt.is_signed) {
    const auto qmax = static_cast<std::size_t>(fmt.qmax()), qneg = static_cast<std::size_t>(-fmt.qmin());
    std::size_t got = sweep_scales(x, wp, lv, qmax, qneg, heap, cands, detail::budget(best.error));
    detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), 1.0, 0.0f, score, best);
    got = sweep_scales(x, wp, lv, qneg, qmax, heap, cands, detail::budget(best.error));
    detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), -1.0, 0.0f, score, best);
    return best;
  }
  // Asymmetric: start from lsq, then alternate the exact scale for the
  // current min with the joint refit at the codes that scale gives.
  const scale_min_result l = lsq_int(Arch{}, x, w, fmt, start_scale, start_min, codes);
  if (l.error < best.error) best = l;
  const auto qmax = static_cast<std::size_t>(fmt.qmax());
  for (int it = 0; it < max_lsq_iterations; ++it) {
    const double before = best.error;
    const float m = best.min;
    for (std::size_t i = 0; i < n; ++i) shifted[i] = x[i] - m;
    const std::size_t got =
        sweep_scales(std::span<const float>(shifted.data(), n), wp, lv, qmax, 0, heap, cands, detail::budget(best.error));
    detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), 1.0, m, score, best);
    kernels::encode_int(Arch{}, x.data(), n, best.scale, best.min, fmt, codes.data());
    const refit_result r = solve_asymmetric(kernels::int_refit_sums(Arch{}, x.data(), wp, codes.data(), n, fmt));
    if (r.ok && detail::usable_scale(r.scale) && std::fabs(r.min) < 3.4e38) {
      const auto s = static_cast<float>(r.scale), mn = static_cast<float>(r.min);
      const double e = score(s, mn);
      if (e < best.error) best = {s, mn, e};
    }
    if (!(best.error < before)) break;
  }
  return best;
}

}  // namespace search
BLOCKQ_END_NAMESPACE
