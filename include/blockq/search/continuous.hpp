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
//     smallest elements all round to zero and carry more than B. An interval
//     whose lower bound C - A²/B exceeds the budget is not scored either, so
//     the list holds every minimum below the budget, in the order of the
//     unbounded sweep, and possibly minima above it after them (an interval
//     clamped to its end can sit above its bound); a minimum above the budget
//     never beats the quantizer's start, which the budget is taken from.
//   pair<size_t, size_t> sweep_both_signs(span<const float> x, const float* w, span<const double> levels,
//                                         size_t top_pos, size_t top_neg, span<sweep_entry> heap,
//                                         span<scale_candidate> out_pos, span<scale_candidate> out_neg,
//                                         double budget);
//     The sweeps of tops (top_pos, top_neg) and (top_neg, top_pos) in one pass
//     (both tops non-zero): out_pos and out_neg hold, bit for bit, the lists
//     of the two sweep_scales calls with this budget; returns their counts.
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
// (in practice only the intervals between the bounds above). The tops take
// two values (one a sign), so the elements reaching level k are all of them
// up to the lower top and those of the higher top above it: each list's next
// element is found in O(1).
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
// ggml's Q4_0 does). Both signs walk the same elements in the same |x|
// order and share every breakpoint but each element's top one (its top is
// qmax under one sign, -qmin under the other), so one sweep serves both:
// the breakpoints are gathered, sorted and walked once, each sign keeping
// its own sums, bounds and minima (about half the work of two sweeps).
// Asymmetric codes (scale and min): exact optimisation of
// the scale for a fixed min alternates with the joint least-squares refit of
// scale and min, starting from the `lsq` result, until a refit no longer
// improves (the next round would repeat the last one); this never increases the
// error and never returns more than `lsq`, but the joint (scale, min)
// optimum is not guaranteed.
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
#include <utility>

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

// A breakpoint source during the sweep: scale s, position i, level k (and,
// in the sorted element list, |x| in s, the element in i, its top level in k).
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

// The most levels above zero a sweep handles (8-bit codes: 255).
inline constexpr std::size_t max_sweep_levels = 256;

// Up to this many levels the sweep gathers and sorts its breakpoints at once.
inline constexpr std::size_t batch_levels = 16;

// Scratch of sweep_scales: the elements sorted, their unsorted copy, one head
// per level, and the breakpoints of a batch sweep gathered and sorted.
constexpr std::size_t continuous_heap_entries(std::size_t n) noexcept {
  return 2 * n + max_sweep_levels + 2 * batch_levels * n;
}

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

// Keeps the best out.size() candidates sorted by error (count of them kept,
// returns the new count); an exact repeat of a scale keeps the smaller error.
// (The count by value: a sweep's state never has its address taken.)
inline std::size_t offer(std::span<scale_candidate> out, std::size_t count, scale_candidate c) noexcept {
  // Full and worse than the last: no entry is replaced, and an equal scale
  // already kept has a smaller error.
  if (count == out.size() && count > 0 && c.error > out[count - 1].error) return count;
  for (std::size_t j = 0; j < count; ++j)
    if (out[j].scale == c.scale) {
      if (c.error < out[j].error) {
        out[j].error = c.error;
        while (j > 0 && out[j].error < out[j - 1].error) {
          std::swap(out[j], out[j - 1]);
          --j;
        }
      }
      return count;
    }
  if (count < out.size()) {
    out[count++] = c;
  } else if (count > 0 && c.error < out[count - 1].error) {
    out[count - 1] = c;
  } else {
    return count;
  }
  for (std::size_t j = count - 1; j > 0 && out[j].error < out[j - 1].error; --j) std::swap(out[j], out[j - 1]);
  return count;
}

// Restores a max-heap on s below position j (the heads of the level lists).
// Equal keys leave in an order fixed by the data, so the sweep is
// deterministic; their order does not change E (continuity).
inline void sift_down(sweep_entry* h, std::size_t size, std::size_t j) noexcept {
  const sweep_entry v = h[j];
  for (;;) {
    std::size_t c = 2 * j + 1;
    if (c >= size) break;
    if (c + 1 < size && h[c + 1].s > h[c].s) ++c;
    if (!(h[c].s > v.s)) break;
    h[j] = h[c];
    j = c;
  }
  h[j] = v;
}

// Sorts the m entries of src (in element order) by |x| (in s) descending,
// ties by element, into dst. Small blocks by counting ranks on the float
// bits of |x| (ordered as integers; branch-free, vectorisable).
inline void sort_descending(const sweep_entry* src, std::size_t m, sweep_entry* dst) noexcept {
  constexpr std::size_t small = 64;
  if (m > small) {
    std::copy(src, src + m, dst);
    std::sort(dst, dst + m, [](const sweep_entry& p, const sweep_entry& q) { return p.s > q.s || (p.s == q.s && p.i < q.i); });
    return;
  }
  std::array<std::int32_t, small> key;
  key.fill(-1);  // below every |x|: the padding counts for nothing
  for (std::size_t a = 0; a < m; ++a) key[a] = std::bit_cast<std::int32_t>(static_cast<float>(src[a].s));
  auto rank = [&]<std::size_t W>(std::integral_constant<std::size_t, W>) {
    for (std::size_t a = 0; a < m; ++a) {
      const std::int32_t ka = key[a];
      std::int32_t r = 0;
      for (std::size_t b = 0; b < W; ++b)
        r += static_cast<std::int32_t>(key[b] > ka) | (static_cast<std::int32_t>(key[b] == ka) & static_cast<std::int32_t>(b < a));
      dst[r] = src[a];
    }
  };
  if (m <= 16)
    rank(std::integral_constant<std::size_t, 16>{});
  else if (m <= 32)
    rank(std::integral_constant<std::size_t, 32>{});
  else
    rank(std::integral_constant<std::size_t, small>{});
}

// Sorts m breakpoints by s descending into dst: a counting sort on the top
// bits of their float rounding (monotone in s), then insertion within the
// buckets (stable, so equal breakpoints keep the order of src). About four
// buckets a breakpoint, of which the keys' range reaches half to all: only
// those are cleared and summed. Fewer buckets save instructions (1 a
// breakpoint: -1k a block of int4) but lose more time to the insertion's
// mispredicted branches; the cap of 512 suits the 16 levels of uint4
// (+12 % uint4, +3 % fp4 over 256; 1024 slows fp4 and int4).
// The gathered lists are each sorted already, but merging them is slower
// (measured, Zen 3): a winner tree over the list heads (-14..-18 %), pairwise
// merges of neighbouring lists, branching (-10..-38 %) or branch-free (-18..
// -32 %), even with 5-11 % fewer instructions for the branching one. A merge
// chains every step (load, compare, advance) and mispredicts or waits on it;
// the passes here are independent over the breakpoints.
inline void sort_breakpoints(const sweep_entry* src, std::size_t m, sweep_entry* dst) noexcept {
  if (m == 0) return;
  constexpr std::size_t max_buckets = 512;
  auto key = [](double s) { return std::bit_cast<std::uint32_t>(static_cast<float>(s)); };  // s >= 0
  double smin = src[0].s, smax = src[0].s;
  for (std::size_t j = 1; j < m; ++j) {
    smin = std::min(smin, src[j].s);
    smax = std::max(smax, src[j].s);
  }
  std::size_t buckets = 16;
  while (buckets < max_buckets && buckets < 4 * m) buckets *= 2;
  const std::uint32_t kmax = key(smax), range = kmax - key(smin);
  int shift = 0;
  while ((range >> shift) >= buckets) ++shift;
  const std::size_t used = (range >> shift) + 1;  // the buckets the keys reach
  std::array<std::uint32_t, max_buckets + 1> start;
  std::fill(start.begin(), start.begin() + static_cast<std::ptrdiff_t>(used) + 1, 0u);
  for (std::size_t j = 0; j < m; ++j) ++start[((kmax - key(src[j].s)) >> shift) + 1];
  for (std::size_t j = 1; j <= used; ++j) start[j] += start[j - 1];
  for (std::size_t j = 0; j < m; ++j) dst[start[(kmax - key(src[j].s)) >> shift]++] = src[j];
  for (std::size_t j = 1; j < m; ++j) {
    const sweep_entry v = dst[j];
    std::size_t i = j;
    for (; i > 0 && dst[i - 1].s < v.s; --i) dst[i] = dst[i - 1];
    dst[i] = v;
  }
}

// One sign of the scale in a sweep: the top level of a non-negative and of a
// negative element under it, and that sign's bounds, running sums and minima.
struct sweep_side {
  std::size_t top_pos = 0, top_neg = 0;
  std::span<scale_candidate> out;
  std::size_t count = 0;  // minima in out
  double lo = 0.0;        // the smallest scale worth sweeping (raised as minima are found)
  double lo_error = std::numeric_limits<double>::infinity();  // the best error lo was last raised for
  double y_star = 0.0, w_star = 0.0, g_star = 1.0;  // the element of largest |x| / g_top
  double clip_top = 0.0;                            // y_star / g_star (0: no such element)
  double a = 0.0, a_lo = 0.0, b = 0.0;  // A (with its compensation) and B of the current codes
  double upper = 0.0;  // the current codes hold from the next breakpoint of this sign up to here
  double below = 0.0;  // the largest breakpoint of this sign below the gathered ones
  bool active = true;
  // A mask, not a branch: the element's sign picks it, at random.
  std::size_t top(bool neg) const noexcept {
    const std::size_t mask = std::size_t{0} - static_cast<std::size_t>(neg);
    return (top_neg & mask) | (top_pos & ~mask);
  }
};

// The sweep of one sign (Sides = 1) or of both signs of a symmetric integer
// grid at once (Sides = 2: tops (qmax, qneg) and (qneg, qmax), all non-zero).
// Both signs share the elements, their order, every breakpoint of the levels
// up to the lower top and the bound hi; each element's one level above it
// belongs to the sign under which its top is the higher. So the breakpoints
// are gathered and sorted once, each carries the signs it moves, and each
// sign steps, bounds and scores its own subsequence: for each sign the calls
// are those of a sweep of that sign alone, in the same order, on the same
// numbers (its lists are the same, bit for bit).
template <std::size_t Sides>
void sweep(std::span<const float> x, const float* w, std::span<const double> levels, std::span<sweep_side, Sides> result,
           std::span<sweep_entry> heap, double budget) noexcept {
  static_assert(Sides == 1 || Sides == 2);
  // Each side a local copy of its own, f(side, its index) called on each by
  // name, and every lambda that takes one forced inline: nothing takes their
  // address, so their sums live in registers (measured: FP4 -12 % time when a
  // side stayed in memory). The counts go back on every return.
  sweep_side side0 = result[0], side1 = result[Sides - 1];
  auto each = [&](auto&& f) {
    f(side0, std::size_t{0});
    if constexpr (Sides == 2) f(side1, std::size_t{1});
  };
  auto done = [&] { each([&](const sweep_side& sd, std::size_t s) { result[s].count = sd.count; }); };
  const std::size_t n = x.size();
  auto weight = [&](std::size_t i) { return w ? static_cast<double>(w[i]) : 1.0; };
  auto threshold = [&](std::size_t k) { return (levels[k - 1] + levels[k]) / 2; };  // between levels k-1 and k
  const double cap = budget * (1.0 + 1e-12);
  constexpr double inf = std::numeric_limits<double>::infinity();

  // C; the elements that ever leave level 0 (the active ones); and the
  // smallest scale worth sweeping: below (y - sqrt(B / w)) / g_top an element
  // alone is clipped by more than the budget allows. The element with the
  // largest y / g_top keeps that bound up to date as minima are found; it is
  // the first of the largest y of one sign (division rounds monotonically, and
  // distinct floats stay distinct divided by a level).
  sweep_entry* el = heap.data();             // active elements by |x| descending
  sweep_entry* tmp = heap.data() + n;        // active elements in order
  sweep_entry* heads = heap.data() + 2 * n;  // each level's next breakpoint
  double c = 0.0, idle = 0.0;
  double y_max[2] = {0.0, 0.0}, w_max[2] = {0.0, 0.0};  // by sign of x: the first largest active |x|, its weight
  std::size_t i_max[2] = {0, 0};
  std::size_t m = 0, levels_used = 0, top_all = max_sweep_levels;  // top_all: the lowest active top
  for (std::size_t i = 0; i < n; ++i) {
    const double wi = weight(i), y = std::fabs(static_cast<double>(x[i]));
    c += wi * y * y;
    const bool neg = blockq::detail::sign_bit(x[i]);
    std::size_t top = 0;  // the highest level any sign reaches
    each([&](const sweep_side& sd, std::size_t) { top = std::max(top, sd.top(neg)); });
    if (wi == 0.0 || top == 0 || y == 0.0) {
      idle += wi * y * y;
      continue;
    }
    if (y > y_max[neg]) y_max[neg] = y, w_max[neg] = wi, i_max[neg] = i;
    if (w && cap < inf) {
      const double r = std::sqrt(cap / wi);
      each([&](sweep_side& sd, std::size_t) { sd.lo = std::max(sd.lo, (y - r) / levels[sd.top(neg)]); });
    }
    tmp[m] = {y, static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(top)};
    ++m;
    levels_used = std::max(levels_used, top);
    top_all = std::min(top_all, top);
  }
  const double root_cap = std::sqrt(cap);
  each([&](sweep_side& sd, std::size_t) {
    // Unweighted, (y - sqrt(cap)) / g rises with y: the largest y of each top
    // gives lo (the same double: subtraction and division round monotonically).
    if (!w && cap < inf)
      for (int s = 0; s < 2; ++s)
        if (y_max[s] > 0.0) sd.lo = std::max(sd.lo, (y_max[s] - root_cap) / levels[sd.top(s != 0)]);
    // The element of largest y / g_top (the first in x of equal ones).
    double q_star = 0.0;
    std::size_t i_star = n;
    for (int s = 0; s < 2; ++s) {
      if (!(y_max[s] > 0.0)) continue;
      const double g = levels[sd.top(s != 0)], q = y_max[s] / g;
      if (q > q_star || (q == q_star && i_max[s] < i_star))
        q_star = q, i_star = i_max[s], sd.y_star = y_max[s], sd.w_star = w_max[s], sd.g_star = g;
    }
    sd.clip_top = sd.w_star > 0.0 ? sd.y_star / sd.g_star : 0.0;
  });
  sort_descending(tmp, m, el);
  // The signs a breakpoint of level k of element p moves.
  auto signs_of = [&](std::size_t k, std::size_t p) {
    if constexpr (Sides == 1) {
      return 1u;
    } else {
      const bool neg = blockq::detail::sign_bit(x[el[p].i]);
      unsigned mask = 0;
      each([&](const sweep_side& sd, std::size_t s) { mask |= static_cast<unsigned>(k <= sd.top(neg)) << s; });
      return mask;
    }
  };

  // The largest scale worth sweeping: above y / t_1 an element rounds to
  // zero; once the smallest of them carry more than the budget, stop.
  double hi = inf;
  if (cap < inf) {
    // Elements that never leave level 0 stay at error w y^2 at every scale.
    // Summed on their own, not as C minus the others: with one element far
    // above the rest that difference loses ~1e-16 C, more than the budget's
    // slack when C is ~1e11 times the budget (and cut off the true minimum).
    double zero = idle;
    for (std::size_t j = m; j-- > 0;) {
      zero += weight(el[j].i) * el[j].s * el[j].s;
      if (zero > cap) {
        hi = el[j].s / threshold(1);
        break;
      }
    }
  }

  // The breakpoints |x_i| / t_k of level k, over the elements by |x|
  // descending (those whose top reaches k), fall: one sorted list per level,
  // merged through the lists' heads above 16 levels (a max-heap), else
  // gathered and sorted at once. Each list starts below hi: the codes at hi.
  // The tops take two values (one by sign): every element reaches the levels
  // up to the lower one, and above it the elements of the higher top, whose
  // next position from p is kept in tmp[p].i (tmp is free once sorted).
  if (top_all < levels_used) {
    std::uint32_t up = static_cast<std::uint32_t>(m);
    for (std::size_t p = m; p-- > 0;) {
      // A mask, not a branch: the sign decides it, at random (int4: +6 % time).
      const std::uint32_t mask = 0u - static_cast<std::uint32_t>(el[p].k == levels_used);
      up = (static_cast<std::uint32_t>(p) & mask) | (up & ~mask);
      tmp[p].i = up;
    }
  }
  auto next_in = [&](std::size_t k, std::size_t p) { return k <= top_all || p >= m ? p : std::size_t{tmp[p].i}; };
  // Batch (at most 16 levels): the breakpoints from hi down to lo are
  // gathered and sorted once (buckets on their float bits, then insertion
  // within a bucket). Heap (more levels): the live heads, the largest first.
  const bool batch = levels_used <= batch_levels;
  // The first breakpoint at or below hi: |x| / t falls along el (division
  // rounds monotonically), so a binary search finds the first element below
  // hi, and it moves up as t rises with k.
  std::size_t h = 0, below_hi = m;
  for (std::size_t k = 1; k <= levels_used; ++k) {
    const double t = threshold(k);
    if (hi < inf)
      below_hi = static_cast<std::size_t>(
          std::partition_point(el, el + below_hi, [&](const sweep_entry& e) { return e.s / t > hi; }) - el);
    else
      below_hi = 0;
    const std::size_t p = next_in(k, below_hi);
    if (batch || p < m)
      heads[h++] = {p < m ? el[p].s / threshold(k) : -1.0, static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(k)};
  }
  if (!batch)
    for (std::size_t j = h / 2; j-- > 0;) detail::sift_down(heads, h, j);

  // A is summed with a compensation term (Neumaier): its terms w |x| Δg are
  // exact products, and E = C - 2 s A + s² B cancels heavily for fine grids
  // (8-bit codes). B's terms w Δ(g²) are exact and so is their sum for unit weights.
  auto add_a = [](sweep_side& sd, double da) BLOCKQ_LAMBDA_INLINE {
    const double sum = sd.a + da;
    sd.a_lo += std::fabs(sd.a) >= std::fabs(da) ? (sd.a - sum) + da : (da - sum) + sd.a;
    sd.a = sum;
  };
  if (hi < inf) {  // element j has crossed level k at hi when j is before level k's head
    std::array<std::size_t, max_sweep_levels + 1> head_of;  // m: the whole list is above hi
    std::fill(head_of.begin(), head_of.begin() + static_cast<std::ptrdiff_t>(levels_used) + 1, m);
    for (std::size_t j = 0; j < h; ++j) head_of[heads[j].k] = heads[j].i;
    for (std::size_t j = 0; j < m; ++j) {
      std::size_t k = 0;
      while (k < el[j].k && j < head_of[k + 1]) ++k;
      if (k == 0) continue;
      const double wi = weight(el[j].i);
      each([&](sweep_side& sd, std::size_t) {
        std::size_t ks = k;  // this sign's level: the crossings up to its top
        if constexpr (Sides > 1) ks = std::min(k, sd.top(blockq::detail::sign_bit(x[el[j].i])));
        add_a(sd, wi * el[j].s * levels[ks]);
        sd.b += wi * levels[ks] * levels[ks];
      });
    }
  }

  // Below 1e-9 C above the worst kept minimum an interval is not scored:
  // far above the rounding of E (~1e-16 C), so the kept minima are those of
  // scoring every interval.
  const double slack = 1e-9 * c;
  // The interval [lower, upper] with a sign's current codes: its least-squares scale.
  auto interval = [&](sweep_side& sd, double lower, double upper) BLOCKQ_LAMBDA_INLINE {
    if (!(sd.b > 0.0)) return;
    const double am = sd.a + sd.a_lo;
    // C - A²/B bounds E on the whole interval from below. An interval above
    // the budget is not scored either: the minima above it never beat the
    // quantizer's start, so the ones kept below it decide the result, and
    // they are the first entries of the list without the bar.
    const double bar = sd.count == sd.out.size() ? std::min(sd.out[sd.count - 1].error, cap) : cap;
    if (c * sd.b - am * am > (bar + slack) * sd.b) return;
    double s = am / sd.b;
    s = s < lower ? lower : (s > upper ? upper : s);
    if (!(s > 0.0)) return;
    const double e = c - 2.0 * s * am + s * s * sd.b;
    sd.count = detail::offer(sd.out, sd.count, {s, e});
  };
  // A sign sweeps on while its breakpoints reach lo = max(lo, clip_bound(best)).
  // clip_bound falls as the best error rises, in floating point too, so raising
  // lo only when a breakpoint is tested against it gives the lo of raising it at
  // every new best; above y* / g*, which bounds clip_bound, no test is needed.
  // (Above the best minimum nearly every interval is a new best: a square root
  // and a division each on the sweep's critical path.)
  auto reaches_lo = [&](sweep_side& sd, double s) BLOCKQ_LAMBDA_INLINE {
    if (!(s >= sd.lo)) return false;
    if (sd.count == 0 || !(sd.out[0].error < sd.lo_error) || s >= sd.clip_top) return true;
    sd.lo_error = sd.out[0].error;
    if (sd.w_star > 0.0) sd.lo = std::max(sd.lo, (sd.y_star - std::sqrt(sd.lo_error * (1.0 + 1e-12) / sd.w_star)) / sd.g_star);
    return s >= sd.lo;
  };
  // Breakpoint t (scale t.s, element el[t.i] moving up to level k) of the
  // signs in mask: each of them scores its interval above t, stops below its
  // lo, or steps. False once every sign has stopped.
  auto visit = [&](const sweep_entry& t, std::size_t k, unsigned mask) BLOCKQ_LAMBDA_INLINE {
    const sweep_entry& e = el[t.i];
    const double wi = weight(e.i), g0 = levels[k - 1], g1 = levels[k];
    const double da = wi * e.s * (g1 - g0), db = wi * (g1 * g1 - g0 * g0);
    bool any = false;
    each([&](sweep_side& sd, std::size_t s) {
      if (!sd.active) return;
      if (Sides == 1 || (mask >> s & 1u)) {
        interval(sd, t.s, sd.upper);  // its codes hold down to t
        if (!reaches_lo(sd, t.s)) {
          sd.active = false;
          return;
        }
        add_a(sd, da);
        sd.b += db;
        sd.upper = t.s;
      }
      any = true;
    });
    return any;
  };
  each([&](sweep_side& sd, std::size_t) { sd.upper = hi; });
  if (batch) {
    sweep_entry* got = heads + max_sweep_levels;  // gathered, then sorted
    sweep_entry* sorted = got + batch_levels * n;
    double cut = inf;  // the lowest lo: each sign stops at its own
    each([&](const sweep_side& sd, std::size_t) { cut = std::min(cut, sd.lo); });
    constexpr unsigned all = (1u << Sides) - 1u;
    std::size_t total = 0;
    for (std::size_t j = 0; j < h; ++j) {
      const std::size_t k = heads[j].k;
      const double t = threshold(k);
      unsigned open = all;  // the signs whose largest breakpoint below cut in this list is still to find
      for (std::size_t p = heads[j].i; p < m; p = next_in(k, p + 1)) {
        const double v = el[p].s / t;
        const unsigned mask = signs_of(k, p);
        if (v < cut) {
          each([&](sweep_side& sd, std::size_t s) {
            if (open & mask >> s & 1u) sd.below = std::max(sd.below, v);
          });
          open &= ~mask;
          if (open == 0) break;
          continue;
        }
        got[total++] = {v, static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(k | mask << 16)};
      }
    }
    detail::sort_breakpoints(got, total, sorted);
    std::size_t j = 0;
    while (j < total && visit(sorted[j], sorted[j].k & 0xFFFFu, sorted[j].k >> 16)) ++j;
    if (j == total)
      each([&](sweep_side& sd, std::size_t) {
        if (sd.active) interval(sd, sd.below, sd.upper);
      });
    return done();
  }
  while (h > 0) {
    const sweep_entry t = heads[0];
    if (!visit(t, t.k, signs_of(t.k, t.i))) return done();
    const std::size_t p = next_in(t.k, t.i + 1u);
    if (p < m)
      heads[0] = {el[p].s / threshold(t.k), static_cast<std::uint32_t>(p), t.k};
    else
      heads[0] = heads[--h];
    detail::sift_down(heads, h, 0);
  }
  each([&](sweep_side& sd, std::size_t) {
    if (sd.active) interval(sd, 0.0, sd.upper);
  });
  done();
}


}  // namespace detail

inline std::size_t sweep_scales(std::span<const float> x, const float* w, std::span<const double> levels,
                                std::size_t top_pos, std::size_t top_neg, std::span<sweep_entry> heap,
                                std::span<scale_candidate> out,
                                double budget = std::numeric_limits<double>::infinity()) noexcept {
  std::array<detail::sweep_side, 1> side{};
  side[0].top_pos = top_pos;
  side[0].top_neg = top_neg;
  side[0].out = out;
  detail::sweep<1>(x, w, levels, std::span<detail::sweep_side, 1>(side), heap, budget);
  return side[0].count;
}

inline std::pair<std::size_t, std::size_t> sweep_both_signs(std::span<const float> x, const float* w,
                                                            std::span<const double> levels, std::size_t top_pos,
                                                            std::size_t top_neg, std::span<sweep_entry> heap,
                                                            std::span<scale_candidate> out_pos,
                                                            std::span<scale_candidate> out_neg, double budget) noexcept {
  std::array<detail::sweep_side, 2> side{};
  side[0].top_pos = side[1].top_neg = top_pos;
  side[0].top_neg = side[1].top_pos = top_neg;
  side[0].out = out_pos;
  side[1].out = out_neg;
  detail::sweep<2>(x, w, levels, std::span<detail::sweep_side, 2>(side), heap, budget);
  return {side[0].count, side[1].count};
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
    if (qmax > 0) {  // both tops non-zero (2 bits and more): both signs in one sweep
      std::array<scale_candidate, scored_candidates> neg{};
      const auto [got, got_neg] = sweep_both_signs(x, wp, lv, qmax, qneg, heap, cands, neg, detail::budget(best.error));
      detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), 1.0, 0.0f, score, best);
      detail::score_candidates(std::span<const scale_candidate>(neg.data(), got_neg), -1.0, 0.0f, score, best);
      return best;
    }
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
    const float m = best.min;
    for (std::size_t i = 0; i < n; ++i) shifted[i] = x[i] - m;
    const std::size_t got =
        sweep_scales(std::span<const float>(shifted.data(), n), wp, lv, qmax, 0, heap, cands, detail::budget(best.error));
    detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), 1.0, m, score, best);
    kernels::encode_int(Arch{}, x.data(), n, best.scale, best.min, fmt, codes.data());
    const refit_result r = solve_asymmetric(kernels::int_refit_sums(Arch{}, x.data(), wp, codes.data(), n, fmt));
    bool moved = false;  // the refit improved: the next round starts from it
    if (r.ok && detail::usable_scale(r.scale) && std::fabs(r.min) < 3.4e38) {
      const auto s = static_cast<float>(r.scale), mn = static_cast<float>(r.min);
      const double e = score(s, mn);
      if (e < best.error) best = {s, mn, e}, moved = true;
    }
    // Without a better refit the best keeps this sweep's min, so the next round would sweep
    // the same shifted block (its minima below the smaller budget are this sweep's, already
    // scored, up to the rounding of weighted sums along a shorter walk) and refit the same
    // codes: nothing new (uint4: 1.80 -> 1.09 sweeps a block). (A round that improved nothing
    // had no better refit either, so it ends here too.)
    if (!moved) break;
  }
  return best;
}

}  // namespace search
BLOCKQ_END_NAMESPACE
