// SPDX-License-Identifier: Apache-2.0
// Exact MSE-optimal scale search over a discrete sorted set of scales (SPEC §6):
// the `mse` rule of the MX formats (UE8M0 scales) and of NVFP4 (E4M3 block
// scales times the tensor scale), or any sorted table.
//
// API
//   const std::array<float, 255>& ue8m0_scales();      // 2^(e - 127), index = code e
//   void e4m3_scales(float s_t, std::span<float, 126>); // fl(E4M3(c) * s_t), index = code c - 1
//   discrete_result discrete_mse<Element>(Arch, span<const float> x, span<const float> set,
//                                         size_t start, tie_mode ties);
//   discrete_result e4m3_mse(Arch, x, set, start, ties);  // discrete_mse<e2m1>, NVFP4's windows
//   size_t e4m3_mse_index(Arch, x, set, start, ties[, amax]); // its index, decided in float where it can
//   void e4m3_mse_indices<K>(Arch, x[K], set, start[K], ties, amax[K], index[K]);  // K blocks' indices at once
//     x:       a block of finite floats.
//     set:     candidate scales, finite, positive and sorted (non-decreasing).
//     start:   index of the rule's scale in set, or search::zero_start for a
//              start whose divisor is zero (all codes zero, error Σx²).
//     Returns {index, error, evaluations}: index is `start` unless a scale is
//     strictly better; among equally good scales the first in increasing
//     set order wins. error is block_sse (or Σx² for zero_start) there.
//     The result equals an exhaustive search (start first, then every index
//     in increasing order, replacing on strict improvement only) on every
//     block, because only scales that provably cannot be strictly better
//     than the best so far are skipped (see the bounds below).
//   size_t discrete_mse_index<Element>(Arch, x, set, start, ties);
//     discrete_mse(...).index, without computing the error where it can
//     decide without it (the quantizers' path).
//
// Element: any element type (e2m1, e2m3, e3m2, e4m3, e5m2, int8_mx).
// q_max = Element::max_value, d_0 = half the smallest positive element value.
//
// Bounds (SPEC §6, made safe against rounding). The objective is at least
// λ times the block's SSE (λ = 1 for the SSE itself; the Hessian search
// passes a certified λ_min, search/hessian.hpp), and the budget is
// B = E(s0) / λ:
// - below lo = (amax - sqrt(B) - 2^-20 amax) / q_max a scale clips amax by
//   more than sqrt(B) even after the float rounding of fl(q_max s) and of the
//   residual, so the SSE exceeds B: the search starts at lo;
// - for each candidate s upward, one pass over the block
//   (kernels::block_bound_energies) sums the squares of the elements certain
//   to round to zero (|x| < d_0 s (1 - 2^-20), under every tie rule; their
//   residual is x itself) and of the clipping residuals of the elements
//   certain to be clipped (|x| > q_max s). When λ times the zero part alone
//   reaches the best error so far, no larger scale can do better (the part
//   only grows with s) and the search stops; this is SPEC §6's upper bound
//   s_max = y_(k+1) / d_0, applied with the best error instead of E0. When λ
//   times both parts reaches it, the candidate is skipped (the clipping
//   fast-fail).
// Every comparison allows a relative m = (n + 8) 2^-50 for the rounding of
// sums of n terms in any order; a sum of non-negative terms rounded in any
// order is monotone in each term, which makes these lower bounds of the
// kernel's value. SPEC §6 keeps s0 when Σx² <= E0; here such a block is
// searched too (it can happen only when the start rounds every element to
// zero, e.g. an NVFP4 absmax scale that underflows, and then a scale that
// keeps some element can be strictly better).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/formats/minifloat.hpp"
#include "blockq/formats/tie_mode.hpp"
#include "blockq/kernels.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace search {

inline constexpr std::size_t zero_start = static_cast<std::size_t>(-1);

struct discrete_result {
  std::size_t index = zero_start;  // into the set; zero_start: the zero-divisor start was kept
  double error = 0.0;              // the objective there
  std::size_t evaluations = 0;     // objective evaluations, the start's included
};

// d_0: values below it round to zero under every tie rule, it is itself a tie.
template <class Element>
constexpr double zero_threshold() noexcept {
  return static_cast<double>(Element::decode(1)) / 2.0;
}

// The 255 finite UE8M0 scales 2^-127 .. 2^127; the index is the UE8M0 code.
inline const std::array<float, 255>& ue8m0_scales() noexcept {
  static constexpr std::array<float, 255> table = [] {
    std::array<float, 255> t{};
    for (int e = 0; e < 255; ++e) t[static_cast<std::size_t>(e)] = blockq::detail::exp2i(e - 127);
    return t;
  }();
  return table;
}

// NVFP4 block divisors: out[c - 1] = fl(E4M3(c) * s_t) for the positive
// finite E4M3 codes c = 1..126 (non-decreasing because rounding is monotone).
inline void e4m3_scales(float s_t, std::span<float, 126> out) noexcept {
  for (std::size_t c = 1; c <= 126; ++c) out[c - 1] = e4m3::decode(static_cast<std::uint8_t>(c)) * s_t;
}

// A relative margin that covers the rounding of a sum of n non-negative
// doubles in any order (n + 8 units of 2^-50, far above n * 2^-53).
constexpr double sum_margin(std::size_t n) noexcept { return static_cast<double>(n + 8) * 0x1p-50; }

// The smallest scale that can have a block SSE of at most `budget`.
template <class Element>
double lowest_useful_scale(double amax, double budget, std::size_t n) noexcept {
  const double r = std::sqrt(budget * (1.0 + sum_margin(n))) + amax * 0x1p-20;
  return amax > r ? (amax - r) / static_cast<double>(Element::max_value) : 0.0;
}

namespace detail {

// How for_each_bounded_candidate prunes against its bar: at_bar drops a candidate whose
// bound reaches the bar (a search that replaces only on strict improvement, the bar its
// best objective so far); above_bar keeps one whose bound equals the bar (the bar is an
// upper bound of another candidate's objective, which this one may tie and precede).
enum class prune { at_bar, above_bar };

// The candidate walk of the bounded searches (bounded_search below, screened_search in
// search/hessian.hpp), with the bounds of the header: the indices of set upward from the
// first scale >= lowest_useful_scale(amax, bar / lambda), the start skipped, one pass of
// kernels::block_bound_energies each. The walk stops at the first candidate where lambda
// times its zero part reaches the bar (the part only grows with the scale) and passes over
// one where lambda times its zero and clipping parts does; visit(i) is called for every
// other candidate and returns the new bar (at most the old one; -inf stops the walk).
// amax is the block's (kernels::block_amax), which the callers already have; lambda > 0.
template <class Element, class Arch, prune P, class Visit>
void for_each_bounded_candidate(std::span<const float> x, std::span<const float> set, std::size_t start,
                                double amax, double lambda, double bar, Visit&& visit) noexcept {
  const std::size_t n = x.size();
  const double keep = 1.0 - sum_margin(n);
  const double lo = lowest_useful_scale<Element>(amax, bar / lambda, n);
  const double zero_factor = zero_threshold<Element>() * (1.0 - 0x1p-20);
  const double top = Element::max_value;
  auto reaches = [&](double energy) {
    const double v = lambda * energy * keep;
    return P == prune::at_bar ? v >= bar : v > bar;
  };
  for (auto i = static_cast<std::size_t>(std::lower_bound(set.begin(), set.end(), lo) - set.begin());
       i < set.size(); ++i) {
    if (i == start) continue;
    const double s = set[i];
    const kernels::bound_energies b = kernels::block_bound_energies(Arch{}, x.data(), n, zero_factor * s, top * s);
    if (reaches(b.zero)) break;
    if (reaches(b.zero + b.clip)) continue;
    bar = visit(i);
    if (bar == -std::numeric_limits<double>::infinity()) return;
  }
}

// The bounded search shared by the MSE and Hessian objectives. f(s, best) is
// the objective at scale s, or any value >= best when it can prove the
// objective is at least best; its values are at least lambda times the block
// SSE (lambda = 1 for the SSE itself; 0: no bound, every candidate is evaluated).
template <class Element, class Arch, class Objective>
discrete_result bounded_search(std::span<const float> x, std::span<const float> set, std::size_t start,
                               double start_error, double lambda, Objective&& f) noexcept {
  discrete_result best{start, start_error, 1};
  // With lambda > 0 the objective is non-negative: nothing is strictly below a start of 0.
  if (set.empty() || (lambda > 0.0 && start_error <= 0.0)) return best;
  auto consider = [&](std::size_t i) {
    const double e = f(set[i], best.error);
    ++best.evaluations;
    if (e < best.error) {
      best.index = i;
      best.error = e;
    }
    return best.error;
  };
  if (!(lambda > 0.0)) {
    for (std::size_t i = 0; i < set.size(); ++i)
      if (i != start) consider(i);
    return best;
  }
  const double amax = kernels::block_amax(Arch{}, x.data(), x.size());
  for_each_bounded_candidate<Element, Arch, prune::at_bar>(x, set, start, amax, lambda, start_error, consider);
  return best;
}

// The SSE search in chunks of kernels::max_estimates candidates (E2M1 elements): one
// pass of kernels::block_sse_estimates scores a chunk in float, with a certified error
// e(t) (kernels::estimate_relative_error / estimate_absolute_error), and sums the zero
// part at the first scale after the chunk. A candidate is evaluated exactly (block_sse),
// in increasing set order as the exhaustive search does, only when its lower bound
// v (1 - rel) - abs is below the best error so far and not above the least upper bound
// v (1 + rel) + abs of the candidates seen (which is at least the final best error: a
// candidate above it is strictly worse than some candidate). The chunks stop when the
// zero part's lower bound reaches that upper bound (no larger scale can be strictly
// better, as in bounded_search), or at the first scale that rounds every element to zero
// (|x| <= amax < d_0 s (1 - 2^-20)): it and every larger scale give exactly Σx², so only
// the first can be strictly better. The estimates need |x| within [2^-40, 2^40] (no
// float overflow, a negligible absolute error); other blocks use bounded_search.
inline constexpr std::size_t first_chunk = 2;

template <class Element, class Arch>
discrete_result chunked_search(std::span<const float> x, std::span<const float> set, std::size_t start,
                               double start_error, tie_mode ties) noexcept {
  const std::size_t n = x.size();
  auto sse = [&](float s) { return kernels::block_sse<Element>(Arch{}, x.data(), n, s, ties); };
  discrete_result best{start, start_error, 1};
  if (set.empty() || !(start_error > 0.0)) return best;
  const double amax = kernels::block_amax(Arch{}, x.data(), n);
  if (!(amax >= 0x1p-40 && amax <= 0x1p40))
    return bounded_search<Element, Arch>(x, set, start, start_error, 1.0, [&](float s, double) { return sse(s); });
  const double lo = lowest_useful_scale<Element>(amax, start_error, n);
  std::size_t i = start;
  if (start == zero_start)
    i = static_cast<std::size_t>(std::lower_bound(set.begin(), set.end(), lo) - set.begin());
  else
    while (i > 0 && set[i - 1] >= lo) --i;  // the start itself is a scale of error <= the budget
  const double zero_factor = zero_threshold<Element>() * (1.0 - 0x1p-20);
  const double rel = kernels::estimate_relative_error(n), abs = kernels::estimate_absolute_error(n);
  double upper = start_error;  // the least upper bound of a candidate's error so far
  bool first = true;
  while (i < set.size()) {
    std::array<std::size_t, kernels::max_estimates> idx{};
    std::array<float, kernels::max_estimates> scales{}, est{};
    std::size_t k = 0;
    bool last = false;
    // The first chunk is short: the best scale is usually the start or the next one up.
    const std::size_t chunk = first ? first_chunk : idx.size();
    first = false;
    for (; i < set.size() && k < chunk && !last; ++i) {
      if (i == start) continue;
      idx[k] = i;
      scales[k++] = set[i];
      last = zero_factor * set[i] > amax;  // (exact product) every element rounds to zero
    }
    while (i < set.size() && i == start) ++i;
    if (k == 0) break;
    // The zero part at the next scale, its float threshold rounded down.
    float zb = 0.0f;
    if (i < set.size() && !last) {
      const double t = zero_factor * set[i];
      zb = static_cast<float>(t);
      if (static_cast<double>(zb) > t) zb = std::nextafter(zb, 0.0f);
    }
    float zero = 0.0f;
    kernels::block_sse_estimates<Element>(Arch{}, x.data(), n, scales.data(), k, ties, zb, est.data(), zero);
    std::array<double, kernels::max_estimates> lower{};
    for (std::size_t j = 0; j < k; ++j) {
      const double v = est[j];
      lower[j] = v < 0.0 ? 0.0 : v * (1.0 - rel) - abs;
      if (v >= 0.0) upper = std::min(upper, v * (1.0 + rel) + abs);
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (!(lower[j] < best.error && lower[j] <= upper)) continue;
      const double e = sse(scales[j]);
      ++best.evaluations;
      if (e < best.error) {
        best.index = idx[j];
        best.error = e;
      }
    }
    if (last || static_cast<double>(zero) * (1.0 - rel) - abs >= std::min(upper, best.error)) break;
  }
  return best;
}

// NVFP4 over the 126 E4M3 scales (any sorted set works), in windows of
// kernels::max_window_estimates consecutive scales scored by one pass of
// kernels::window_sse_estimates. The first window starts window_below scales under the
// start (the optimum lies 3 codes below to 6 above it on N(0, 1) blocks); the start's
// exact error is computed first, and only when its lower bound allows it to be the
// result, so that the exhaustive order (start first, then increasing) is kept. A candidate
// is evaluated exactly only when its lower bound v (1 - rel) - abs is below the best error
// so far and not above the least upper bound v (1 + rel) + abs seen (as in
// chunked_search). The scales below the first window are ruled out with
// lowest_useful_scale at that upper bound (else the block takes chunked_search); those
// from the next window on by the kernel's tail bound at its first scale S (each element
// contributes min(|x|, max(0, S / 2 - |x|))^2 at every scale >= S, a part that, unlike
// chunked_search's zero part, also counts the elements that round up to S / 2), or by
// the first scale that rounds every element to zero. Blocks outside the estimates' range
// (|x| within [2^-40, 2^40]) or with the zero start take chunked_search.
inline constexpr std::size_t window_below = 3;

template <class Arch>
discrete_result e4m3_window_search(std::span<const float> x, std::span<const float> set, std::size_t start,
                                   tie_mode ties) noexcept {
  const std::size_t n = x.size();
  auto sse = [&](float s) { return kernels::block_sse<e2m1>(Arch{}, x.data(), n, s, ties); };
  const double zero_factor = zero_threshold<e2m1>() * (1.0 - 0x1p-20);
  auto fallback = [&] {
    const double e0 = start == zero_start ? kernels::block_energy(Arch{}, x.data(), nullptr, n) : sse(set[start]);
    return chunked_search<e2m1, Arch>(x, set, start, e0, ties);
  };
  if (start == zero_start || start >= set.size()) return fallback();
  const double amax = kernels::block_amax(Arch{}, x.data(), n);
  // (the last: a start that rounds every element to zero, not an absmax start)
  if (!(amax >= 0x1p-40 && amax <= 0x1p40) || zero_factor * set[start] > amax) return fallback();
  const double rel = kernels::estimate_relative_error(n), abs = kernels::estimate_absolute_error(n);
  constexpr std::size_t w = kernels::max_window_estimates;
  discrete_result best{start, std::numeric_limits<double>::infinity(), 0};
  double upper = std::numeric_limits<double>::infinity();  // the least upper bound of a candidate's error
  std::size_t i = start > window_below ? start - window_below : 0;
  const std::size_t first = i;
  while (i < set.size()) {
    std::size_t k = std::min(w, set.size() - i);
    // (exact products) every element rounds to zero from the first such scale on
    const bool last = zero_factor * set[i + k - 1] > amax;
    if (last)
      for (std::size_t j = 0; j < k; ++j)
        if (zero_factor * set[i + j] > amax) {
          k = j + 1;
          break;
        }
    // The tail bound of every scale from the next one on (0, no bound, where half of it is
    // not exact).
    float half = 0.0f;
    if (i + k < set.size() && !last && 2.0f * (0.5f * set[i + k]) == set[i + k]) half = 0.5f * set[i + k];
    std::array<float, w> est;  // (written for j < k)
    float tail = 0.0f;
    kernels::window_sse_estimates<e2m1>(Arch{}, x.data(), n, set.data() + i, k, ties, half, est.data(), tail);
    // The least upper bound v (1 + rel) + abs is that of the least known v (rounding is monotone).
    float least = std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < k; ++j) least = est[j] >= 0.0f && est[j] < least ? est[j] : least;
    if (least != std::numeric_limits<float>::infinity())
      upper = std::min(upper, static_cast<double>(least) * (1.0 + rel) + abs);
    auto lower = [&](std::size_t j) {  // unknown (-1): no bound
      const double v = est[j];
      return v < 0.0 ? 0.0 : v * (1.0 - rel) - abs;
    };
    if (i == first) {
      if (lower(start - i) <= upper) {
        best.error = sse(set[start]);
        best.evaluations = 1;
      }
      if (i > 0 && set[i - 1] >= lowest_useful_scale<e2m1>(amax, std::min(upper, best.error), n)) return fallback();
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (i + j == start) continue;
      const double lo = lower(j);
      if (!(lo < best.error && lo <= upper)) continue;
      const double e = sse(set[i + j]);
      ++best.evaluations;
      if (e < best.error) {
        best.index = i + j;
        best.error = e;
      }
    }
    i += k;
    if (last || static_cast<double>(tail) * (1.0 - rel) - abs >= std::min(upper, best.error)) break;
  }
  return best;
}

// NVFP4's window decided in float, without any exact sum when it can be (the index alone,
// for the quantizer). Calls of kernels::window_sse_bounds score the window of
// e4m3_window_search (max_window_estimates scales from window_below under the start) and,
// while the tail bound does not close, up to window_runs - 1 windows after it, each
// candidate to a certified error (relative rel, absolute abs). Each candidate's exact
// block_sse lies in [lo_j, hi_j]; with h the least hi, the candidate with hi = h is the
// exhaustive result, whatever the tie order, when every other scored candidate has lo > h,
// the tail bound at the first scale after the last window exceeds h (every scale from it
// on has a block SSE above h) and the scale under the first window is below
// lowest_useful_scale(amax, h) (it and every smaller scale clip amax by more than
// sqrt(h)): every other scale of the set is then strictly worse. Otherwise (near-ties,
// unknown estimates, the zero start, blocks outside |x| within [2^-40, 2^40]) returns
// false and the caller searches exactly.
// The test lo_j <= h is est_j <= (h + abs) / (1 - rel), against a float threshold rounded
// up: it may count a candidate more (then no decision), never one less.
inline constexpr std::size_t window_runs = 3;

// One block's decision as a state: begin() scores the first window, finish() the further
// windows and the decision. Several blocks' begin() calls back to back (e4m3_mse_indices)
// let the core overlap their kernels: each block's chain waits on its own divisions and
// sums, and one block's work (about 600 instructions with its encoding) fills the reorder
// buffer alone.
struct window_decision {
  static constexpr std::size_t w = kernels::max_window_estimates;
  std::span<const float> x, set;
  tie_mode ties = tie_mode::even;
  double amax = 0.0, rel = 0.0, abs = 0.0, h = std::numeric_limits<double>::infinity();
  // The threshold's factor, one division a block off the decision's chain: (h + abs) up is
  // above (h + abs) / (1 - rel), as the four roundings (the sum, 1 - rel, this quotient, the
  // product; 2^-53 each at most) take less than the 2^-50 it adds (3-4 % of the rule's time).
  double up = 1.0;
  std::size_t first = 0, total = 0, run = 0;
  int state = 0;                           // 0: more windows to score, 1: the tail bound closed, -1: no decision
  std::array<float, w * window_runs> est;  // (written for j < total)

  // (amax_of_x: kernels::block_amax(x))
  template <class Arch>
  void begin(std::span<const float> x_, std::span<const float> set_, std::size_t start, tie_mode ties_,
             float amax_of_x) noexcept {
    x = x_, set = set_, ties = ties_, amax = amax_of_x;
    if (start == zero_start || start >= set.size() || !(amax >= 0x1p-40 && amax <= 0x1p40)) {
      state = -1;
      return;
    }
    rel = kernels::window_bounds_relative_error(x.size()), abs = kernels::window_bounds_absolute_error(x.size());
    up = (1.0 + 0x1p-50) / (1.0 - rel);
    // A full window where the set allows: near its top the window reaches further down
    // rather than holding fewer scales (the blocks' starts there vary, and so would every
    // loop over the window and the branch on a next window: mispredicted a block).
    first = start > window_below ? start - window_below : 0;
    if (set.size() >= w && first > set.size() - w) first = set.size() - w;
    score<Arch>();
  }

  // The next window.
  template <class Arch>
  void score() noexcept {
    const std::size_t i = first + total;
    const std::size_t k = std::min(w, set.size() - i);
    const bool more = i + k < set.size();
    float half = 0.0f;  // (0: no tail bound, where half of the next scale is not exact)
    if (more && 2.0f * (0.5f * set[i + k]) == set[i + k]) half = 0.5f * set[i + k];
    if (more && !(half > 0.0f)) {
      state = -1;
      return;
    }
    float tail = 0.0f, least = 0.0f;  // (the least known estimate gives the least hi)
    kernels::window_sse_bounds(Arch{}, x.data(), x.size(), set.data() + i, k, ties, half, est.data() + total, tail, least);
    total += k;
    h = std::min(h, static_cast<double>(least) * (1.0 + rel) + abs);
    if (!more || static_cast<double>(tail) * (1.0 - rel) - abs > h)
      state = 1;
    else if (++run == window_runs)
      state = -1;
  }

  // The decision: true with the index, or false (the caller searches exactly).
  template <class Arch>
  bool finish(std::size_t& index) noexcept {
    while (state == 0) score<Arch>();
    if (state < 0 || !(h < std::numeric_limits<double>::infinity())) return false;
    // (set[first - 1] < lowest_useful_scale(amax, h, n) without the square root: the scale under
    // the window clips amax by D = amax (1 - 2^-20) - 6 s > sqrt(h (1 + sum_margin)), squared
    // with 2^-40 to spare for the rounding of these doubles)
    if (first > 0) {
      const double d = amax * (1.0 - 0x1p-20) - static_cast<double>(e2m1::max_value) * set[first - 1];
      if (!(d > 0.0 && h * (1.0 + sum_margin(x.size())) * (1.0 + 0x1p-40) < d * d * (1.0 - 0x1p-40))) return false;
    }
    const double t = (h + abs) * up;  // above (h + abs) / (1 - rel): see up
    float thr = static_cast<float>(t);  // (t is positive, far below FLT_MAX: |x| <= 2^40)
    if (static_cast<double>(thr) < t) thr = std::bit_cast<float>(std::bit_cast<std::uint32_t>(thr) + 1u);
    std::size_t close = 0, best = 0;  // (unknown estimates, -1, count as close)
    for (std::size_t j = 0; j < total; ++j) {
      const bool c = est[j] <= thr;
      close += c;
      best += c ? j : 0;
    }
    if (close != 1) return false;
    index = first + best;
    return true;
  }
};

// (amax_of_x: kernels::block_amax(x), which the caller may already have)
template <class Arch>
bool e4m3_window_index(std::span<const float> x, std::span<const float> set, std::size_t start, tie_mode ties,
                       float amax_of_x, std::size_t& index) noexcept {
  window_decision d;
  d.begin<Arch>(x, set, start, ties, amax_of_x);
  return d.finish<Arch>(index);
}

template <class Arch>
bool e4m3_window_index(std::span<const float> x, std::span<const float> set, std::size_t start, tie_mode ties,
                       std::size_t& index) noexcept {
  return e4m3_window_index<Arch>(x, set, start, ties, kernels::block_amax(Arch{}, x.data(), x.size()), index);
}

// MXFP4 over the UE8M0 scales, the common case in one pass. From the start s = 2^k (the
// ocp scale, amax / s in [4, 8)), kernels::block_sse_window gives the exact errors at s
// and 2s (powers of two: the divisions are exact multiplications), an estimate at 4s
// (evaluated exactly only when its lower bound is below the best), the zero part at 8s
// and the clipping part at s / 2. The best of the three is the exhaustive result when
// bounds close the window on both sides:
// - below: every scale s' <= s / 2 clips each |x| > 3s to 6s' <= 3s, so its SSE is at
//   least the clipping part (fl(|x| - 6s') >= fl(|x| - 3s), rounding is monotone); or,
//   with lowest_useful_scale, amax alone is clipped by more than the budget;
// - above: no scale from 8s up can beat the zero part at 8s (as in chunked_search).
// Both parts are float sums with the estimates' certified error. A block where either
// bound does not close (the optimum may be s / 2 or 8s), or outside the estimates' range
// (|x| within [2^-40, 2^40]), returns false and takes chunked_search.
template <class Arch>
bool ue8m0_window_search(std::span<const float> x, std::size_t start, tie_mode ties, discrete_result& out) noexcept {
  const auto& set = ue8m0_scales();
  if (start == zero_start || start == 0 || start + 3 >= set.size()) return false;
  const std::size_t n = x.size();
  const double t = zero_threshold<e2m1>() * (1.0 - 0x1p-20) * set[start + 3];
  float zb = static_cast<float>(t);
  if (static_cast<double>(zb) > t) zb = std::nextafter(zb, 0.0f);
  const float top = static_cast<float>(e2m1::max_value) * set[start - 1];  // exact: a power of two times 6
  const kernels::window_sums w = kernels::block_sse_window<e2m1>(Arch{}, x.data(), n, set.data() + start, ties, zb, top);
  const double amax = w.amax;
  if (!(amax >= 0x1p-40 && amax <= 0x1p40)) return false;  // outside the estimates' range
  out = {start, w.sse[0], 2};
  if (w.sse[1] < out.error) out = {start + 1, w.sse[1], 2};
  if (!(out.error > 0.0)) return true;  // nothing is strictly below 0
  const double rel = kernels::estimate_relative_error(n), abs = kernels::estimate_absolute_error(n);
  if (static_cast<double>(w.est) * (1.0 - rel) - abs < out.error) {  // 4s may be better: exactly
    const double e = kernels::block_sse<e2m1>(Arch{}, x.data(), n, set[start + 2], ties);
    ++out.evaluations;
    if (e < out.error) out = {start + 2, e, out.evaluations};
  }
  const bool below = static_cast<double>(w.clip) * (1.0 - rel) - abs >= out.error ||
                     set[start - 1] < lowest_useful_scale<e2m1>(amax, out.error, n);
  return below && static_cast<double>(w.zero) * (1.0 - rel) - abs >= out.error;
}

// MXFP4 over the UE8M0 scales, decided in float without any exact sum when it can be.
// One pass (kernels::block_window_estimates) scores s (the start), 2s and 4s, the clipping
// part at s / 2 and the zero part at 8s, each known to a certified error (relative rel,
// absolute abs in units of the candidate's squared scale, see kernels.hpp). Each candidate's
// exact block_sse lies in [lo_j, hi_j]; when one candidate's hi is strictly below the
// others' lo, below the clipping part's lower bound (every scale <= s / 2 clips each
// |x| > 3s to at most 3s, see ue8m0_window_search) and below the zero part's lower bound
// (every scale >= 8s rounds each |x| < 2s (1 - 2^-20) to zero), every other scale of the
// set has a strictly larger SSE than it, so it is the exhaustive result whatever the tie
// order. Otherwise (near-ties, a block whose optimum may lie outside the window, 4s
// unknown, blocks outside |x| within [2^-40, 2^40]) returns false and the caller decides
// exactly.
template <class Arch>
bool ue8m0_window_index(std::span<const float> x, std::size_t start, tie_mode ties, std::size_t& index) noexcept {
  const auto& set = ue8m0_scales();
  if (start == zero_start || start == 0 || start + 3 >= set.size()) return false;
  const std::size_t n = x.size();
  // The zero threshold at 8s in units of s: 8 d_0 (1 - 2^-20) = 2 - 2^-19, exact in float.
  constexpr float zero_below = static_cast<float>(8.0 * zero_threshold<e2m1>() * (1.0 - 0x1p-20));
  constexpr float clip_above = static_cast<float>(e2m1::max_value) / 2.0f;  // 6 (s / 2) = 3 s
  const kernels::window_estimates w =
      kernels::block_window_estimates<e2m1>(Arch{}, x.data(), n, set[start], ties, zero_below, clip_above);
  const double amax = w.amax;
  if (!(amax >= 0x1p-40 && amax <= 0x1p40) || w.est[2] < 0.0f) return false;
  // In units of s^2 (2^j s's values times 4^j, exact). With h the least hi, the winner is
  // certain when only one candidate (the one with hi = h, as lo <= hi) has lo <= h; no
  // branches on the data but the last (which candidate wins varies from block to block).
  const double rel = kernels::estimate_relative_error(n), abs = kernels::estimate_absolute_error(n);
  auto lower = [&](double v) { return v * (1.0 - rel) - abs; };
  auto upper = [&](double v) { return v * (1.0 + rel) + abs; };
  const double hi0 = upper(w.est[0]), hi1 = upper(w.est[1]) * 4.0, hi2 = upper(w.est[2]) * 16.0;
  const double h = std::min(std::min(hi0, hi1), hi2);
  const int close = (lower(w.est[0]) <= h) + (lower(w.est[1]) * 4.0 <= h) + (lower(w.est[2]) * 16.0 <= h);
  if (!(close == 1 && lower(w.clip) > h && lower(w.zero) > h)) return false;
  const std::size_t best = hi0 == h ? 0 : hi1 == h ? 1 : 2;
  index = start + best;
  return true;
}

}  // namespace detail

// NVFP4's rule mse: discrete_mse<e2m1> over a sorted set of E4M3 scales (e4m3_scales),
// the same result in fewer passes (detail::e4m3_window_search).
template <class Arch>
discrete_result e4m3_mse(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                         tie_mode ties) noexcept {
  return detail::e4m3_window_search<Arch>(x, set, start, ties);
}

// e4m3_mse(...).index of K blocks x[k] from starts start[k] (amax[k] their block_amax),
// without any exact sum where the window decides in float (detail::window_decision); every
// other block takes e4m3_mse. The blocks' first windows are scored back to back.
template <std::size_t K, class Arch>
void e4m3_mse_indices(Arch, const std::span<const float>* x, std::span<const float> set, const std::size_t* start,
                      tie_mode ties, const float* amax, std::size_t* index) noexcept {
  std::array<detail::window_decision, K> d;
  for (std::size_t k = 0; k < K; ++k) d[k].template begin<Arch>(x[k], set, start[k], ties, amax[k]);
  for (std::size_t k = 0; k < K; ++k)
    if (!d[k].template finish<Arch>(index[k])) index[k] = e4m3_mse(Arch{}, x[k], set, start[k], ties).index;
}

// One block (amax: kernels::block_amax(Arch{}, x), when the caller has it).
template <class Arch>
std::size_t e4m3_mse_index(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                           tie_mode ties, float amax) noexcept {
  std::size_t i = 0;
  e4m3_mse_indices<1>(Arch{}, &x, set, &start, ties, &amax, &i);
  return i;
}
template <class Arch>
std::size_t e4m3_mse_index(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                           tie_mode ties) noexcept {
  return e4m3_mse_index(Arch{}, x, set, start, ties, kernels::block_amax(Arch{}, x.data(), x.size()));
}

// The scale of `set` with the least block SSE (see the header for the contract).
template <class Element, class Arch>
discrete_result discrete_mse(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                             tie_mode ties) noexcept {
  const std::size_t n = x.size();
  if constexpr (std::is_same_v<Element, e2m1>) {
    if (set.data() == ue8m0_scales().data() && set.size() == ue8m0_scales().size()) {
      std::size_t i = 0;
      if (detail::ue8m0_window_index<Arch>(x, start, ties, i))
        return {i, kernels::block_sse<Element>(Arch{}, x.data(), n, set[i], ties), 1};
      discrete_result r;
      if (detail::ue8m0_window_search<Arch>(x, start, ties, r)) return r;
    }
  }
  const double e0 = start == zero_start ? kernels::block_energy(Arch{}, x.data(), nullptr, n)
                                        : kernels::block_sse<Element>(Arch{}, x.data(), n, set[start], ties);
  if constexpr (std::is_same_v<Element, e2m1>) {
    return detail::chunked_search<Element, Arch>(x, set, start, e0, ties);
  } else {
    return detail::bounded_search<Element, Arch>(
        x, set, start, e0, 1.0, [&](float s, double) { return kernels::block_sse<Element>(Arch{}, x.data(), n, s, ties); });
  }
}

// discrete_mse(...).index without the error: the MXFP4 / UE8M0 window decided in float
// (detail::ue8m0_window_index) needs no exact sum at all; every other block takes discrete_mse.
template <class Element, class Arch>
std::size_t discrete_mse_index(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                               tie_mode ties) noexcept {
  if constexpr (std::is_same_v<Element, e2m1>) {
    std::size_t i = 0;
    if (set.data() == ue8m0_scales().data() && set.size() == ue8m0_scales().size() &&
        detail::ue8m0_window_index<Arch>(x, start, ties, i))
      return i;
  }
  return discrete_mse<Element>(Arch{}, x, set, start, ties).index;
}

}  // namespace search
BLOCKQ_END_NAMESPACE
