// SPDX-License-Identifier: Apache-2.0
// Least-squares refit of a block's scale (and min) for fixed codes, and the
// `lsq` rule built on it (SPEC §5).
//
// API
//   refit_result refit_symmetric(span<const T> x, span<const int> q, span<const T> w = {});
//   refit_result refit_asymmetric(span<const T> x, span<const int> q, span<const T> w = {});
//       T = float or double; sums in double. d = Σwxq / Σwq²; asymmetric:
//       D = Σw·Σwq² - (Σwq)², scale = (Σw·Σwxq - Σwx·Σwq) / D,
//       min = (Σwx·Σwq² - Σwq·Σwxq) / D. `ok` is false (and the values 0) when
//       the codes carry no information: Σwq² = 0, or all codes equal (D = 0).
//   scale_min_result lsq_int(Arch, x, w, int_format fmt, float scale0, float min0, span<uint8_t> scratch);
//       The `lsq` search for integer codes; symmetric formats ignore min.
//   scale_min_result lsq_element<Element>(Arch, x, w, float scale0, tie_mode, span<uint8_t> scratch);
//       The same for a minifloat element with a float scale (FP4 + float32).
//   w empty: unweighted; otherwise one non-negative weight per element.
//   scratch: at least lsq_scratch_bytes(x.size()) bytes.
//
// The `lsq` search: from a set of candidate scales around the start (levels
// L + 0.1 k for k = -9..9, where L is the level the element of largest
// magnitude maps to, in both sign orientations for symmetric codes; for
// asymmetric codes (max - min) / (qmax + 0.1 k) with the block min; for a
// minifloat element amax / (max (1 + k / 60)), 0.1 of a level at the top of
// E2M1), round the
// codes, refit, re-round, refit... until the codes stop changing (at most
// max_lsq_iterations refits). Every scale (and min) met on the way is scored
// with the quantizer's own error kernel at the float values it would store,
// and the best strictly better than the start is kept; so the result's
// weighted SSE is never above the start's.
//
// A descent depends on its codes alone: from the same codes with as many
// refits left it scores the same scales again. So a block's descents share a
// table of the code vectors met (up to lsq_memo_entries, in the scratch), each
// with the refits left on its furthest-reaching visit and, once refitted, the
// code vector its refit led to: every code vector is refitted once per block
// (a descent that reaches one met before with more refits left follows the
// stored successors), and the result is that of running every descent in full.
// For integer codes the table's nodes are the refit sums themselves
// (lsq_sum_nodes: a descent depends on its codes only through sq, sqq, sxq, so
// code vectors with equal sums are one node, and no codes are compared or
// stored); the sums of all starts come from one transposed pass
// (kernels::int_lsq_starts, lanes = start scales), and each refit's scale is
// scored, re-rounded and summed for the next refit in one pass
// (kernels::int_lsq_step).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/detail/blocks.hpp"
#include "blockq/formats/integer.hpp"
#include "blockq/formats/tie_mode.hpp"
#include "blockq/kernels.hpp"

BLOCKQ_BEGIN_NAMESPACE
namespace search {

struct refit_result {
  double scale = 0.0;
  double min = 0.0;
  bool ok = false;
};

// A block's chosen scale and min (0 for symmetric codes) and its weighted SSE
// as the quantizer's kernel computes it.
struct scale_min_result {
  float scale = 0.0f;
  float min = 0.0f;
  double error = 0.0;
};

inline constexpr int max_lsq_iterations = 8;
inline constexpr int lsq_steps = 9;  // candidates L + 0.1 k, k = -lsq_steps..lsq_steps

// Code vectors the lsq descents of a block remember (each n bytes of scratch); beyond
// that many, descents refit as they go.
inline constexpr std::size_t lsq_memo_entries = 64;

constexpr std::size_t lsq_scratch_bytes(std::size_t n) noexcept { return (2 + lsq_memo_entries) * n; }

// Weights, when given, are one finite non-negative value per element.
inline void check_weights(std::span<const float> w, std::size_t n) {
  if (w.empty()) return;
  blockq::detail::check_size(w.size(), n, "weights", "one per element of the input's " + std::to_string(n));
  for (std::size_t i = 0; i < w.size(); ++i)
    if (!(blockq::detail::is_finite(w[i]) && w[i] >= 0.0f))  // (the message is built only on failure)
      blockq::detail::require(false, "weight " + std::to_string(i) + " must be finite and non-negative, got " +
                                         std::to_string(w[i]));
}

// d = sxq / sqq.
inline refit_result solve_symmetric(const kernels::refit_sums& s) noexcept {
  if (!(s.sqq > 0.0)) return {};
  return {s.sxq / s.sqq, 0.0, true};
}

// The two-parameter solution; D is treated as zero when it is below 1e-12 of
// sw * sqq (all codes equal up to rounding in the sums).
inline refit_result solve_asymmetric(const kernels::refit_sums& s) noexcept {
  const double d = s.sw * s.sqq - s.sq * s.sq;
  if (!(d > 1e-12 * s.sw * s.sqq)) return {};
  return {(s.sw * s.sxq - s.sx * s.sq) / d, (s.sx * s.sqq - s.sq * s.sxq) / d, true};
}

namespace detail {
template <class T>
kernels::refit_sums refit_sums_of(std::span<const T> x, std::span<const int> q, std::span<const T> w) {
  blockq::detail::check_size(q.size(), x.size(), "codes", "one per element of x");
  if (!w.empty()) blockq::detail::check_size(w.size(), x.size(), "weights", "one per element of x");
  kernels::sum8 sw, sq, sqq, sx, sxq;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double wi = w.empty() ? 1.0 : static_cast<double>(w[i]);
    const double qi = q[i], xi = static_cast<double>(x[i]);
    sw.add(i, wi);
    sq.add(i, wi * qi);
    sqq.add(i, (wi * qi) * qi);
    sx.add(i, wi * xi);
    sxq.add(i, (wi * xi) * qi);
  }
  return {sw.total(), sq.total(), sqq.total(), sx.total(), sxq.total()};
}
}  // namespace detail

template <class T>
refit_result refit_symmetric(std::span<const T> x, std::span<const int> q, std::span<const T> w = {}) {
  return solve_symmetric(detail::refit_sums_of(x, q, w));
}

template <class T>
refit_result refit_asymmetric(std::span<const T> x, std::span<const int> q, std::span<const T> w = {}) {
  const auto s = detail::refit_sums_of(x, q, w);
  bool distinct = false;
  for (std::size_t i = 1; i < q.size() && !distinct; ++i) distinct = q[i] != q[0];
  if (!distinct) return {};
  return solve_asymmetric(s);
}

namespace detail {

// True when a double fits a finite float and is not zero.
inline bool usable_scale(double v) noexcept {
  return v == v && v != 0.0 && v < 3.4e38 && v > -3.4e38;
}

// Whether n code bytes at a and b are equal: 8-byte words, then single bytes (inline; the
// descents compare a code vector with its successor at every refit).
inline bool same_codes(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t u, v;
    std::memcpy(&u, a + i, 8);
    std::memcpy(&v, b + i, 8);
    if (u != v) return false;
  }
  for (; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// The code vectors met by the lsq descents of one block (the nodes of the
// descent graph): for each, the refits left on its furthest-reaching visit and,
// once evaluated, what its refit led to. A 128-slot open-addressing table over
// a 64-bit hash finds a vector; its bytes confirm it.
struct lsq_nodes {
  static constexpr int unevaluated = -1, terminal = -2, not_stored = -3;
  static constexpr std::size_t slots = 2 * lsq_memo_entries;  // a power of two
  std::uint8_t* codes;  // lsq_memo_entries * n bytes
  std::size_t n;
  std::size_t size = 0;
  std::array<std::uint64_t, lsq_memo_entries> hash;
  std::array<int, lsq_memo_entries> left;  // refits left on the furthest-reaching visit
  std::array<int, lsq_memo_entries> next;  // node after the refit, or unevaluated / terminal / not_stored
  std::array<kernels::refit_sums, lsq_memo_entries> sums;  // the refit sums of the codes, once known
  std::array<bool, lsq_memo_entries> has_sums;
  std::array<std::uint8_t, slots> slot{};  // node index + 1; 0 empty

  // (The per-node arrays are written as nodes are added: left uninitialised, not cleared per block.)
  lsq_nodes(std::uint8_t* c, std::size_t len) noexcept : codes(c), n(len) {}

  // Independent products of the 8-byte words (no chain of multiplies: a descent hashes every
  // code vector it meets); collisions only cost a comparison.
  static std::uint64_t hash_of(const std::uint8_t* c, std::size_t n) noexcept {
    std::uint64_t h = n;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t v;
      std::memcpy(&v, c + i, 8);
      h += (v + i) * (0x9E3779B97F4A7C15ull + 2 * i);
    }
    for (; i < n; ++i) h += (c[i] + 1ull) * (0xC2B2AE3D27D4EB4Full + 2 * i);
    h ^= h >> 31;
    return h * 0x9E3779B97F4A7C15ull;
  }

  // The index of c, added (never visited, unevaluated) when new; -1 when new and the table is full.
  int find_or_add(const std::uint8_t* c) noexcept {
    const std::uint64_t h = hash_of(c, n);
    for (std::size_t k = h >> 57;; k = (k + 1) & (slots - 1)) {
      const int j = slot[k] - 1;
      if (j < 0) {
        if (size == lsq_memo_entries) return -1;
        std::memcpy(codes + size * n, c, n);
        hash[size] = h;
        left[size] = -1;
        next[size] = unevaluated;
        has_sums[size] = false;
        slot[k] = static_cast<std::uint8_t>(size + 1);
        return static_cast<int>(size++);
      }
      if (hash[j] == h && same_codes(codes + static_cast<std::size_t>(j) * n, c, n)) return j;
    }
  }
};

// Whether a refit gives a scale (and min) that a float can store.
inline bool usable_refit(const refit_result& r) noexcept {
  return r.ok && usable_scale(r.scale) && r.min == r.min && r.min < 3.4e38 && r.min > -3.4e38;
}

// The refit loop shared by every lsq search, from the start (s, m):
// start(s, m, codes, sums) writes the codes of a scale and min and returns
// true when it also wrote their refit sums; sums(codes) gives the refit sums
// of codes; step(in, out, out_sums) refits from the sums `in`, scores the
// refit's scale and min (keeping strict improvements of the best) and writes
// their codes to out, returning 0 when the refit is unusable, 1, or 2 when it
// also wrote the refit sums of out to out_sums (which holds a copy of `in`
// before: sw and sx do not depend on the codes). Each code vector is refitted
// once per block: a descent reaching codes met before with at least as many
// refits left stops (the rest would repeat), one with more refits left
// follows the stored successors to where the earlier visit stopped, and one
// whose codes stop changing ends. Only beyond lsq_memo_entries code vectors
// do descents refit as they go.
template <class Start, class Sums, class Step>
void lsq_descend(float s, float m, std::uint8_t* cur, std::uint8_t* out, lsq_nodes& nodes, std::size_t n,
                 Start&& start, Sums&& sums, Step&& step) noexcept {
  kernels::refit_sums cur_sums;  // the sums of cur, where have_sums
  bool have_sums = start(s, m, cur, cur_sums);
  int left = max_lsq_iterations;
  int j = nodes.find_or_add(cur);
  if (j >= 0 && have_sums && !nodes.has_sums[j]) nodes.sums[j] = cur_sums, nodes.has_sums[j] = true;
  while (j >= 0) {
    if (nodes.left[j] >= left) return;  // met with as many refits left: the rest repeats
    nodes.left[j] = left;
    if (left == 0) return;
    int& next = nodes.next[j];
    if (next == lsq_nodes::terminal) return;
    --left;
    if (next >= 0) {
      j = next;
      continue;
    }
    const std::uint8_t* c = nodes.codes + static_cast<std::size_t>(j) * n;
    if (!nodes.has_sums[j]) nodes.sums[j] = sums(c), nodes.has_sums[j] = true;
    kernels::refit_sums out_sums = nodes.sums[j];
    const int done = step(nodes.sums[j], out, out_sums);
    if (done == 0 || same_codes(out, c, n)) {  // unusable, or the codes stopped changing
      next = lsq_nodes::terminal;
      return;
    }
    const int k = nodes.find_or_add(out);
    next = k >= 0 ? k : lsq_nodes::not_stored;
    if (k >= 0 && done == 2 && !nodes.has_sums[k]) nodes.sums[k] = out_sums, nodes.has_sums[k] = true;
    if (k < 0) std::swap(cur, out), cur_sums = out_sums, have_sums = done == 2;
    j = k;
  }
  // The table is full: the rest of this descent refits as it goes.
  for (; left > 0; --left) {
    if (!have_sums) cur_sums = sums(cur);
    kernels::refit_sums out_sums = cur_sums;
    const int done = step(cur_sums, out, out_sums);
    if (done == 0 || same_codes(out, cur, n)) return;
    std::swap(cur, out);
    cur_sums = out_sums;
    have_sums = done == 2;
  }
}

// The integer descents' nodes, keyed by the bits of their refit sums sq, sqq, sxq instead of
// their codes (sw and sx are the block's): a descent's scales depend on its codes only through
// these sums (every refit solves from them; the refit's codes come from its scale), so code
// vectors with the same sums have the same successors and are one node here. A successor with
// its node's sums refits to the same scale again, a repeat that cannot change the best
// (strictly better), so the descent ends there, as it ends where the codes stop changing.
// Hence the same scales are scored, first met in the same order, as by lsq_descend's table.
// A node keeps only its three sums (its refit sums are the block's sw, sx with them): nothing
// per node is initialised per block but the slots (a refit_sums array would be zeroed).
struct lsq_sum_nodes {
  static constexpr std::int8_t unevaluated = -1, terminal = -2, not_stored = -3;
  static constexpr std::size_t slots = 2 * lsq_memo_entries;  // a power of two
  struct node {
    double sq, sqq, sxq;
    std::int8_t left;  // refits left on the furthest-reaching visit (-1: none yet)
    std::int8_t next;  // node after the refit, or unevaluated / terminal / not_stored
  };
  std::size_t size = 0;
  std::array<node, lsq_memo_entries> nodes;  // (written as nodes are added)
  std::array<std::uint8_t, slots> slot{};    // node index + 1; 0 empty

  // (One test of the three differences' bits, not three branches: whether sums repeat is
  // data-dependent, and each branch would be mispredicted on its own.)
  static bool same(const kernels::refit_sums& a, const kernels::refit_sums& b) noexcept {
    return ((std::bit_cast<std::uint64_t>(a.sq) ^ std::bit_cast<std::uint64_t>(b.sq)) |
            (std::bit_cast<std::uint64_t>(a.sqq) ^ std::bit_cast<std::uint64_t>(b.sqq)) |
            (std::bit_cast<std::uint64_t>(a.sxq) ^ std::bit_cast<std::uint64_t>(b.sxq))) == 0;
  }

  // The index of the node of t, added (never visited, unevaluated) when new; -1 when new and full.
  // The slot: the top bits of one product of the three sums' bits, mixed by rotations
  // (collisions only cost a comparison).
  int find_or_add(const kernels::refit_sums& t) noexcept {
    const std::uint64_t a = std::bit_cast<std::uint64_t>(t.sq), b = std::bit_cast<std::uint64_t>(t.sqq),
                        c = std::bit_cast<std::uint64_t>(t.sxq);
    const std::uint64_t h = (c ^ std::rotl(a, 21) ^ std::rotl(b, 42)) * 0x9E3779B97F4A7C15ull;
    for (std::size_t k = h >> 57;; k = (k + 1) & (slots - 1)) {
      const int j = slot[k] - 1;
      if (j < 0) {
        if (size == lsq_memo_entries) return -1;
        nodes[size] = {t.sq, t.sqq, t.sxq, -1, unevaluated};
        slot[k] = static_cast<std::uint8_t>(size + 1);
        return static_cast<int>(size++);
      }
      const node& e = nodes[static_cast<std::size_t>(j)];
      if (((std::bit_cast<std::uint64_t>(e.sq) ^ a) | (std::bit_cast<std::uint64_t>(e.sqq) ^ b) |
           (std::bit_cast<std::uint64_t>(e.sxq) ^ c)) == 0)
        return j;
    }
  }
};

// lsq_descend over lsq_sum_nodes from a start's refit sums (whose sw and sx are the block's):
// step(in, out) refits from `in`, scores the refit (keeping strict improvements of the best)
// and writes the refit sums of its codes to out (a copy of `in` before), returning false when
// the refit is unusable.
template <class Step>
BLOCKQ_ALWAYS_INLINE void lsq_descend_sums(const kernels::refit_sums& start, lsq_sum_nodes& nodes, Step&& step) noexcept {
  int left = max_lsq_iterations;
  int j = nodes.find_or_add(start);
  kernels::refit_sums cur = start;  // sw, sx: the block's; sq, sqq, sxq: node j's (or the current codes')
  while (j >= 0) {
    lsq_sum_nodes::node& nd = nodes.nodes[static_cast<std::size_t>(j)];
    if (nd.left >= left) return;  // met with as many refits left: the rest repeats
    nd.left = static_cast<std::int8_t>(left);
    if (left == 0) return;
    if (nd.next == lsq_sum_nodes::terminal) return;
    --left;
    if (nd.next >= 0) {
      j = nd.next;
      continue;
    }
    cur.sq = nd.sq, cur.sqq = nd.sqq, cur.sxq = nd.sxq;
    kernels::refit_sums out = cur;
    if (!step(cur, out) || lsq_sum_nodes::same(out, cur)) {  // unusable, or a repeat
      nd.next = lsq_sum_nodes::terminal;
      return;
    }
    const int k = nodes.find_or_add(out);
    nd.next = static_cast<std::int8_t>(k >= 0 ? k : lsq_sum_nodes::not_stored);
    if (k < 0) cur = out;
    j = k;
  }
  // The table is full: the rest of this descent refits as it goes.
  for (; left > 0; --left) {
    kernels::refit_sums out = cur;
    if (!step(cur, out) || lsq_sum_nodes::same(out, cur)) return;
    cur = out;
  }
}

}  // namespace detail

// lsq for integer codes. (scale0, min0) is the start (the rule's values); a
// non-finite or zero start scale is returned as is.
template <class Arch>
scale_min_result lsq_int(Arch, std::span<const float> x, std::span<const float> w, int_format fmt, float scale0,
                         float min0, std::span<std::uint8_t> scratch) noexcept {
  const std::size_t n = x.size();
  const float* wp = w.empty() ? nullptr : w.data();
  if (fmt.is_signed) min0 = 0.0f;
  auto score = [&](float s, float m) {
    return wp ? kernels::block_wsse_int(Arch{}, x.data(), wp, n, s, m, fmt)
              : kernels::block_sse_int(Arch{}, x.data(), n, s, m, fmt);
  };
  scale_min_result best{scale0, min0, 0.0};
  if (n == 0 || !blockq::detail::is_finite(scale0) || !blockq::detail::is_finite(min0) || scale0 == 0.0f) {
    best.error = n && blockq::detail::is_finite(scale0) && blockq::detail::is_finite(min0) ? score(scale0, min0) : 0.0;
    return best;
  }
  best.error = score(scale0, min0);
  // sw and sx do not depend on the codes: once per block (any codes); each start's sq, sqq, sxq
  // from kernels::int_lsq_starts, each refit's codes, error and next sums in one
  // kernels::int_lsq_step pass (its codes, written to the scratch, are not needed: the
  // descents' nodes are their sums, lsq_sum_nodes).
  std::uint8_t* codes = scratch.data();
  kernels::encode_int(Arch{}, x.data(), n, scale0, min0, fmt, codes);
  const kernels::refit_sums block_sums = kernels::int_refit_sums(Arch{}, x.data(), wp, codes, n, fmt);
  detail::lsq_sum_nodes nodes;
  auto step_with = [&](auto solve) {
    // (The kernel's arguments by value: by reference each step would load them through the
    // captured addresses.)
    return [&best, solve, xp = x.data(), wp, n, fmt, codes](const kernels::refit_sums& in, kernels::refit_sums& out) {
      const refit_result r = solve(in);
      if (!detail::usable_refit(r)) return false;
      const float s = static_cast<float>(r.scale), m = static_cast<float>(r.min);
      const double e = kernels::int_lsq_step(Arch{}, xp, wp, n, s, m, fmt, codes, out);
      if (e < best.error) best = {s, m, e};
      return true;
    };
  };
  // The starts (up to 2 lsq_steps + 1 scales an orientation, all with min m), in order.
  constexpr std::size_t max_starts = 2 * (2 * lsq_steps + 1);
  std::array<float, max_starts> scales;
  // (In bytes: an array of refit_sums would be zeroed, its members having initialisers, before
  // every start is written here.)
  alignas(kernels::refit_sums) std::byte start_bytes[sizeof(kernels::refit_sums) * max_starts];
  std::size_t count = 0;
  auto descend_from = [&](float m, auto&& step) {
    kernels::refit_sums* const starts =
        std::uninitialized_fill_n(reinterpret_cast<kernels::refit_sums*>(start_bytes), count, block_sums) - count;
    kernels::int_lsq_starts(Arch{}, x.data(), wp, n, scales.data(), count, m, fmt, codes, starts);
    // A start with the sums of the one before it would end at once (its node was met with all
    // refits left, or, past the table, repeat that start's scales): skipped, with no probe.
    for (std::size_t k = 0; k < count; ++k)
      if (k == 0 || !detail::lsq_sum_nodes::same(starts[k], starts[k - 1])) detail::lsq_descend_sums(starts[k], nodes, step);
  };

  // The start scales sign * (a / t), t = level + 0.1 k for k = -lsq_steps..lsq_steps, a > 0,
  // in order, those with t > 0 that are finite and non-zero. t rises with k and a / t (rounded)
  // falls with t, so when the first is finite and the last non-zero (t > 0) all are, unchecked.
  // (sign is 1 or -1: the product is exact.)
  auto add_starts = [&](float a, float level, float sign) {
    const float t_first = level + 0.1f * static_cast<float>(-lsq_steps), t_last = level + 0.1f * static_cast<float>(lsq_steps);
    if (t_first > 0.0f && blockq::detail::is_finite(a / t_first) && a / t_last != 0.0f) {
      for (int k = -lsq_steps; k <= lsq_steps; ++k) scales[count++] = sign * (a / (level + 0.1f * static_cast<float>(k)));
      return;
    }
    for (int k = -lsq_steps; k <= lsq_steps; ++k) {
      const float t = level + 0.1f * static_cast<float>(k);
      if (!(t > 0.0f)) continue;
      const float s = sign * (a / t);
      if (!blockq::detail::is_finite(s) || s == 0.0f) continue;
      scales[count++] = s;
    }
  };

  if (fmt.is_signed) {
    auto step_symmetric = step_with([](const kernels::refit_sums& t) { return solve_symmetric(t); });
    // m: the first element of largest magnitude.
    float m = 0.0f;
    for (float v : x)
      if (blockq::detail::abs_bits(v) > blockq::detail::abs_bits(m)) m = v;
    const float amax = blockq::detail::abs_bits(m);
    if (amax == 0.0f) return best;
    for (int orientation : {1, -1}) {
      // The level m reaches at a scale of this sign: qmax on the positive side, |qmin| on the negative.
      const bool positive_side = (m > 0.0f) == (orientation > 0);
      const float level = static_cast<float>(positive_side ? fmt.qmax() : -fmt.qmin());
      add_starts(amax, level, static_cast<float>(orientation));
    }
    descend_from(0.0f, step_symmetric);
  } else {
    auto step_asymmetric = step_with([](const kernels::refit_sums& t) { return solve_asymmetric(t); });
    float lo = 0.0f, hi = 0.0f;
    kernels::block_min_max(Arch{}, x.data(), n, lo, hi);
    const float range = hi - lo;
    if (!(range > 0.0f)) return best;
    add_starts(range, static_cast<float>(fmt.qmax()), 1.0f);
    descend_from(lo, step_asymmetric);
  }
  return best;
}

// lsq for a minifloat element with a free float scale (symmetric grid).
template <class Element, class Arch>
scale_min_result lsq_element(Arch, std::span<const float> x, std::span<const float> w, float scale0, tie_mode ties,
                             std::span<std::uint8_t> scratch) noexcept {
  const std::size_t n = x.size();
  const float* wp = w.empty() ? nullptr : w.data();
  auto score = [&](float s, float) {
    return wp ? kernels::block_wsse<Element>(Arch{}, x.data(), wp, n, s, ties)
              : kernels::block_sse<Element>(Arch{}, x.data(), n, s, ties);
  };
  scale_min_result best{scale0, 0.0f, 0.0};
  if (n == 0 || !blockq::detail::is_finite(scale0) || !(scale0 > 0.0f)) return best;
  best.error = score(scale0, 0.0f);
  const float amax = kernels::block_amax(Arch{}, x.data(), n);
  if (!(amax > 0.0f) || !blockq::detail::is_finite(amax)) return best;
  std::uint8_t* cur = scratch.data();
  std::uint8_t* prev = scratch.data() + n;
  detail::lsq_nodes nodes(scratch.data() + 2 * n, n);
  auto encode = [&](float s, float, std::uint8_t* out) { kernels::encode<Element>(Arch{}, x.data(), n, s, ties, out); };
  auto start = [&](float s, float m, std::uint8_t* out, kernels::refit_sums&) {
    encode(s, m, out);
    return false;
  };
  auto sums = [&](const std::uint8_t* codes) {
    return kernels::element_refit_sums<Element>(Arch{}, x.data(), wp, codes, n);
  };
  auto step = [&](const kernels::refit_sums& in, std::uint8_t* out, kernels::refit_sums&) {
    const refit_result r = solve_symmetric(in);
    if (!(r.scale > 0.0) || !detail::usable_refit(r)) return 0;  // element grids are symmetric: keep scales positive
    const float s = static_cast<float>(r.scale);
    const double e = score(s, 0.0f);
    if (e < best.error) best = {s, 0.0f, e};
    encode(s, 0.0f, out);
    return 1;
  };
  for (int k = -lsq_steps; k <= lsq_steps; ++k) {
    // The element of largest magnitude maps to max * (1 + k / 60): steps of
    // 0.1 of a level at the top of E2M1 (max 6), the same relative steps elsewhere.
    const float t = Element::max_value * (1.0f + static_cast<float>(k) / 60.0f);
    const float s = amax / t;
    if (!blockq::detail::is_finite(s) || !(s > 0.0f)) continue;
    detail::lsq_descend(s, 0.0f, cur, prev, nodes, n, start, sums, step);
  }
  return best;
}

}  // namespace search
BLOCKQ_END_NAMESPACE
