// SPDX-License-Identifier: Apache-2.0
// Exact MSE-optimal scale search over a discrete sorted set of scales (SPEC §6):
// the `mse` rule of the MX formats (UE8M0 scales) and of NVFP4 (E4M3 block
// scales times the tensor scale), or any sorted table.
//
// API
//   const std::array<float, 255>& ue8m0_scales();      // 2^(e - 127), index = code e
//   void e4m3_scales(float s_t, std::span<float, 126>); // fl(E4M3(c) * s_t), index = code c - 1
//   discrete_result discrete_mse<Element>(Arch, span<const float> x, span<const float> set,
//                                         size_t start, tie_mode ties, span<float> scratch);
//     set:     candidate scales, finite, positive and sorted (non-decreasing).
//     start:   index of the rule's scale in set, or search::zero_start for a
//              start whose divisor is zero (all codes zero, error Σx²).
//     scratch: at least x.size() floats (discrete_scratch_floats(n)).
//     Returns {index, error, evaluations}: index is `start` unless a scale is
//     strictly better; among equally good scales the first in increasing
//     set order wins. error is block_sse (or Σx² for zero_start) there.
//     The result equals an exhaustive search (start first, then every index
//     in increasing order, replacing on strict improvement only) on every
//     block, because only scales that provably cannot be strictly better than
//     the start are skipped (see the bounds below).
//
// Element: any element type (e2m1, e2m3, e3m2, e4m3, e5m2, int8_mx).
// q_max = Element::max_value, d_0 = half the smallest positive element value.
//
// Bounds (SPEC §6, made safe against rounding). With y = |x| sorted ascending
// and a budget B (the start's SSE; for the Hessian search E_H(s0) / λ_min):
// - s < lo = (amax - sqrt(B) - 2^-20 amax) / q_max clips amax by more than
//   sqrt(B) even after float rounding of fl(q_max s) and of the residual, so
//   the block's SSE exceeds B;
// - s > hi = y_k / d_0 * (1 + 2^-20), k the number of leading y whose squares
//   sum to at most B (1 + m), rounds y_0..y_k to zero under every tie
//   rule, and their squares (exact in double) already exceed B. When all
//   squares fit (k = n) there is no upper bound.
// - inside [lo, hi] a candidate is skipped when its clipping error alone,
//   computed exactly as the kernel computes those residuals, is at least the
//   best error so far (times 1 - m).
// m = (n + 8) 2^-50 covers the rounding of sums of n terms in any order.
// A sum of non-negative terms rounded in any order is monotone in each term,
// which is what makes these lower bounds of the kernel's value.
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

constexpr std::size_t discrete_scratch_floats(std::size_t n) noexcept { return n; }

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

// The interval of scales that can have a block SSE at most `budget` (see the header).
struct scale_interval {
  double lo = 0.0;
  double hi = std::numeric_limits<double>::infinity();
};

// A relative margin that covers the rounding of a sum of n non-negative
// doubles in any order (n + 8 units of 2^-50, far above n * 2^-53).
constexpr double sum_margin(std::size_t n) noexcept { return static_cast<double>(n + 8) * 0x1p-50; }

template <class Element>
scale_interval sse_interval(std::span<const float> y_sorted, double budget) noexcept {
  scale_interval iv;
  if (y_sorted.empty() || !(budget == budget)) return iv;
  const double amax = y_sorted.back();
  const double qmax = Element::max_value;
  const double cap = budget * (1.0 + sum_margin(y_sorted.size()));
  const double r = std::sqrt(cap) + amax * 0x1p-20;
  iv.lo = amax > r ? (amax - r) / qmax : 0.0;
  double acc = 0.0;
  for (float v : y_sorted) {
    const double y = v;
    acc += y * y;
    if (acc > cap) {
      iv.hi = y / zero_threshold<Element>() * (1.0 + 0x1p-20);
      break;
    }
  }
  return iv;
}

// The SSE of the elements the kernel certainly clips at scale s (those with
// fl(|x| / s) >= q_max), computed as the kernel computes their residuals;
// y sorted ascending.
template <class Element>
double clipping_sse(std::span<const float> y_sorted, float s) noexcept {
  const float top = Element::decode(Element::max_code) * s;
  double acc = 0.0;
  for (std::size_t i = y_sorted.size(); i-- > 0;) {
    if (!(y_sorted[i] / s >= Element::max_value)) break;
    const double r = static_cast<double>(y_sorted[i] - top);
    acc += r * r;
  }
  return acc;
}

namespace detail {

// |x| into y, sorted ascending.
inline void sorted_magnitudes(std::span<const float> x, float* y) noexcept {
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = blockq::detail::abs_bits(x[i]);
  std::sort(y, y + x.size());
}

// The bounded search shared by the MSE and Hessian objectives. f(s) is the
// objective at scale s; its values are at least lambda times the block SSE
// (lambda = 1 for the SSE itself, 0: no bound, every candidate is evaluated).
template <class Element, class Objective>
discrete_result bounded_search(std::span<const float> y_sorted, std::span<const float> set, std::size_t start,
                               double start_error, double lambda, Objective&& f) noexcept {
  discrete_result best{start, start_error, 1};
  // With lambda > 0 the objective is non-negative: nothing is strictly below a start of 0.
  if (set.empty() || (lambda > 0.0 && start_error <= 0.0)) return best;
  std::size_t i = 0, end = set.size();
  const double keep = 1.0 - sum_margin(y_sorted.size());
  if (lambda > 0.0) {
    const scale_interval iv = sse_interval<Element>(y_sorted, start_error / lambda);
    i = static_cast<std::size_t>(std::lower_bound(set.begin(), set.end(), iv.lo) - set.begin());
    end = static_cast<std::size_t>(std::upper_bound(set.begin(), set.end(), iv.hi) - set.begin());
  }
  for (; i < end; ++i) {
    if (i == start) continue;
    const float s = set[i];
    if (lambda > 0.0 && lambda * clipping_sse<Element>(y_sorted, s) * keep >= best.error) continue;
    const double e = f(s);
    ++best.evaluations;
    if (e < best.error) {
      best.index = i;
      best.error = e;
    }
  }
  return best;
}

}  // namespace detail

// The scale of `set` with the least block SSE (see the header for the contract).
template <class Element, class Arch>
discrete_result discrete_mse(Arch, std::span<const float> x, std::span<const float> set, std::size_t start,
                             tie_mode ties, std::span<float> scratch) noexcept {
  const std::size_t n = x.size();
  const double e0 = start == zero_start ? kernels::block_energy(Arch{}, x.data(), nullptr, n)
                                        : kernels::block_sse<Element>(Arch{}, x.data(), n, set[start], ties);
  detail::sorted_magnitudes(x, scratch.data());
  return detail::bounded_search<Element>(
      std::span<const float>(scratch.data(), n), set, start, e0, 1.0,
      [&](float s) { return kernels::block_sse<Element>(Arch{}, x.data(), n, s, ties); });
}

}  // namespace search
BLOCKQ_END_NAMESPACE
