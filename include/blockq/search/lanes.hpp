// SPDX-License-Identifier: Apache-2.0
// The continuous sweep of rule `mse` (FP4 with a float32 scale; symmetric
// integer codes of 2 to 4 bits) for several blocks at once: each block is a
// lane of a vector of doubles, and every lane walks its own breakpoints in
// step with the others.
//
// API
//   void continuous_element_mse_lanes<Element>(Arch, span<const lane_block> blocks, tie_mode ties,
//                                              scale_min_result* out);
//     blocks: any number, each of at most lane_block_max elements, all
//     weighted or all unweighted; they are searched in groups of the tier's
//     width (8 lanes with AVX-512, 4 with AVX2, 2 otherwise). out[l] is what
//     continuous_element_mse defines for block l: the best float scale, never
//     worse than the block's start under the quantizer's kernel. Blocks the
//     search leaves alone (empty, a start that is not finite, a zero error)
//     keep their start. A lane's result does not depend on the other lanes
//     (a lane that has stopped is masked out of every later step), so the
//     width does not change it either.
//   bool int_lanes_take(int_format fmt, size_t block);
//   void continuous_int_mse_lanes(Arch, span<const lane_block> blocks, int_format fmt,
//                                 scale_min_result* out);
//     Symmetric integer codes of 2 to 4 bits, blocks of at most lane_block_max
//     (int_lanes_take): continuous_int_mse's result for each block (both signs
//     of the scale, start_min 0), two lanes a block.
//
// Method (the sweep of continuous.hpp, reorganised for lanes). Each lane
// sorts its |x| in descending order (a bitonic network across the lanes), so
// for each threshold t_k the elements cross it, as the scale falls, in that
// order: level k's next breakpoint (its head) is |x|_(c_k) / t_k, c_k the
// count of elements already past it, and the lane's next breakpoint is the
// largest of the L heads. No breakpoint is gathered or sorted. The lanes
// step together, each from its own breakpoint to its own next one, with
// running sums A = Σ w |x| g and B = Σ w g² of the codes between them; each
// lane stops below its own bound, the vector when every lane has. The only
// branches on the data are the loop's end and the rare new minimum. The
// breakpoint after each head is loaded a step ahead, so that the next
// maximum never waits on a gather; with AVX-512 the walk runs in mask
// registers with the L counts as bytes of one vector (walk8 below).
//
// Integer codes (int_grid): levels 1..qmax are every element's and walk the
// sorted |x|; level -qmin = qmax + 1 only the elements of one sign reach
// (the negative ones under a positive scale), so it walks its own sorted list
// of that side's |x| (the other elements there at -1, below every
// breakpoint). Each sign of the scale is a lane of its own.
//
// Which intervals count. E(s) is continuous with concave kinks (see
// continuous.hpp), so every local minimum is a stationary point A / B inside
// its interval, and only those are kept: the best four below the budget (the
// start's kernel error, raised by 1e-5 of it), which are then scored in float
// as in continuous_element_mse. The walk is bounded as the single sweep's:
// above hi = |x|_(p) / t_1 the elements from p on (the least ones, whose
// energy exceeds the budget) all round to zero; below lo = max (|x| -
// sqrt(budget / w)) / g_top (weighted) an element's clipping alone exceeds
// the budget, and a lane also stops as soon as its largest element's clipping
// w_0 (|x|_0 - g_top s)² exceeds its best minimum so far. Breakpoints are
// computed as |x| · (1 / t_k) (one rounding off the exact quotient): at a
// breakpoint the element is equally far from both levels, so codes that
// differ only there give the same error.
//
// Floating point. Every tier runs the same IEEE operations in the same order
// on each lane (the project builds with -ffp-contract=off), so every tier
// gives the same bits; arch_test checks them. Compilers without GNU vector
// extensions take continuous_element_mse block by block.
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
#include <vector>

#include "blockq/arch.hpp"
#include "blockq/config.hpp"
#include "blockq/detail/bits.hpp"
#include "blockq/formats/integer.hpp"
#include "blockq/formats/tie_mode.hpp"
#include "blockq/kernels.hpp"
#include "blockq/search/continuous.hpp"
#include "blockq/search/refit.hpp"

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

BLOCKQ_BEGIN_NAMESPACE
namespace search {

// The blocks a quantizer hands to one call (a multiple of every tier's width), and the
// largest block the lane sweep takes.
inline constexpr std::size_t sweep_lanes = 8;
inline constexpr std::size_t lane_block_max = 32;

// One block of a lane sweep: n elements at x (and weights at w, or null), and its start.
struct lane_block {
  const float* x = nullptr;
  const float* w = nullptr;
  std::size_t n = 0;
  float start = 0.0f;
};

#if defined(__GNUC__) || defined(__clang__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // the vectors never cross a call: every helper is inlined
#endif

namespace lanes {

// W lanes of doubles and their masks (all bits set: true). (typedef: GCC 12 drops the
// attribute of a dependent alias declaration.)
template <std::size_t W>
struct of {
  typedef double vd __attribute__((vector_size(W * sizeof(double))));
  typedef std::int64_t vi __attribute__((vector_size(W * sizeof(std::int64_t))));
};

// The lanes of a tier: one vector register of doubles (two for the scalar reference).
template <class Arch>
constexpr std::size_t width() noexcept {
  if constexpr (std::is_base_of_v<arch::avx512, Arch>) return 8;
  else if constexpr (std::is_base_of_v<arch::avx2, Arch>) return 4;
  else return 2;
}

template <class VI>
BLOCKQ_ALWAYS_INLINE bool any(const VI& m) noexcept {
#if defined(__AVX512F__)
  if constexpr (sizeof(VI) == 64) return _mm512_test_epi64_mask((__m512i)m, (__m512i)m) != 0;
#endif
#if defined(__AVX__)
  if constexpr (sizeof(VI) == 32) return !_mm256_testz_si256((__m256i)m, (__m256i)m);
#endif
  std::int64_t r = 0;
  for (std::size_t l = 0; l < sizeof(VI) / sizeof(std::int64_t); ++l) r |= m[l];
  return r != 0;
}

// rows[idx[l]][l] for each lane l.
template <class VD, class VI>
BLOCKQ_ALWAYS_INLINE void gather(VD& out, const VD* rows, const VI& idx) noexcept {
  constexpr std::size_t W = sizeof(VD) / sizeof(double);
#if defined(__AVX512F__)
  if constexpr (W == 8) {
    const VI at = idx * 8 + VI{0, 1, 2, 3, 4, 5, 6, 7};
    out = (VD)_mm512_i64gather_pd((__m512i)at, reinterpret_cast<const double*>(rows), 8);
    return;
  }
#endif
#if defined(__AVX2__)
  if constexpr (W == 4) {
    const VI at = idx * 4 + VI{0, 1, 2, 3};
    out = (VD)_mm256_i64gather_pd(reinterpret_cast<const double*>(rows), (__m256i)at, 8);
    return;
  }
#endif
  for (std::size_t l = 0; l < W; ++l) out[l] = rows[idx[l]][l];
}

// f(integral_constant<size_t, k>) for k = 0 .. N-1, unrolled (arrays indexed by it stay in registers).
template <std::size_t N, class F>
BLOCKQ_ALWAYS_INLINE void unrolled(F&& f) {
  [&]<std::size_t... K>(std::index_sequence<K...>) BLOCKQ_LAMBDA_INLINE { (f(std::integral_constant<std::size_t, K>{}), ...); }
  (std::make_index_sequence<N>{});
}

// A grid of levels g_0 = 0 < g_1 < ... < g_L. Levels 1..Lc are every element's; level L
// (L = Lc + 1) only the long side's elements' (two's-complement integers: one level more for
// the elements of one sign, which depends on the sign of the scale).
template <class Element>
struct element_grid {
  static constexpr std::size_t L = Element::max_code, Lc = L;
  static double level(std::size_t k) noexcept { return element_levels<Element>()[k]; }
};
template <std::size_t Q>
struct int_grid {
  static constexpr std::size_t L = Q + 1, Lc = Q;
  static double level(std::size_t k) noexcept { return static_cast<double>(k); }
};

#if defined(__AVX512F__)
// The walk of sweep below for 8 lanes in AVX-512 registers, its operations one for one
// (the masks in mask registers; each level's count a byte of one vector, so the chosen
// level's count, step and constants are a shift and a permutation away).
template <std::size_t L, bool Weighted, class VD, class VI>
BLOCKQ_ALWAYS_INLINE void walk8(const double* y, const double* w, const double* r, const double* dg, const double* dg2,
                                const VD& top_, const VD& c_, const VD& lo_, const VD& y0_, const VD& w0_, const VI& act_,
                                const VI* cnt, const VD* ev_, const VD& a_, const VD& b_, const VD& upper_,
                                VD (&es_)[4], VD (&ss_)[4]) noexcept {
  auto pd = [](const VD& v) BLOCKQ_LAMBDA_INLINE { return (__m512d)v; };
  const __m512d c = pd(c_), lo = pd(lo_), y0 = pd(y0_), w0 = pd(w0_), zero = _mm512_setzero_pd();
  __m512d a = pd(a_), b = pd(b_), upper = pd(upper_), es[4], ss[4], ev[L], evn[L];
  for (std::size_t j = 0; j < 4; ++j) es[j] = pd(es_[j]), ss[j] = pd(ss_[j]);
  __mmask8 act = _mm512_test_epi64_mask((__m512i)act_, (__m512i)act_);
  alignas(64) double rt[8] = {}, dgt[8] = {}, dg2t[8] = {};
  __m512i packed = _mm512_setzero_si512();  // level k's count in byte k - 1
  for (std::size_t k = 1; k <= L; ++k) {
    rt[k - 1] = r[k], dgt[k - 1] = dg[k], dg2t[k - 1] = dg2[k];
    ev[k - 1] = pd(ev_[k]);
    packed = _mm512_or_si512(packed, _mm512_slli_epi64((__m512i)cnt[k], static_cast<unsigned>(8 * (k - 1))));
  }
  const __m512d rtab = _mm512_load_pd(rt), dgtab = _mm512_load_pd(dgt), dg2tab = _mm512_load_pd(dg2t);
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), byte = _mm512_set1_epi64(0xff),
                one = _mm512_set1_epi64(1), two_rows = _mm512_set1_epi64(16);
  // The breakpoint after each head, gathered a step ahead so that the walk's next maximum
  // never waits on a gather.
  unrolled<L>([&](auto k) BLOCKQ_LAMBDA_INLINE {
    const __m512i row = _mm512_add_epi64(_mm512_slli_epi64((__m512i)cnt[k + 1], 3), lane);
    evn[k] = _mm512_mul_pd(_mm512_i64gather_pd(_mm512_add_epi64(row, _mm512_set1_epi64(8)), y, 8), _mm512_set1_pd(r[k + 1]));
  });
  const __m512d two = _mm512_set1_pd(2.0), top = pd(top_), slack = _mm512_set1_pd(1.0 + 1e-12);
  for (;;) {
    __m512d m;  // the largest head, by a tree
    if constexpr (L == 7) {
      m = _mm512_max_pd(_mm512_max_pd(_mm512_max_pd(ev[0], ev[1]), _mm512_max_pd(ev[2], ev[3])),
                        _mm512_max_pd(_mm512_max_pd(ev[4], ev[5]), ev[6]));
    } else {
      m = ev[0];
      unrolled<L - 1>([&](auto k) BLOCKQ_LAMBDA_INLINE { m = _mm512_max_pd(ev[k + 1], m); });
    }
    __mmask8 pre = _mm512_mask_cmp_pd_mask(act, a, _mm512_mul_pd(m, b), _CMP_GE_OQ);
    pre = _mm512_mask_cmp_pd_mask(pre, a, _mm512_mul_pd(upper, b), _CMP_LE_OQ);
    pre = _mm512_mask_cmp_pd_mask(pre, _mm512_sub_pd(_mm512_mul_pd(c, b), _mm512_mul_pd(a, a)),
                                  _mm512_mul_pd(es[3], b), _CMP_LT_OQ);
    if (pre) [[unlikely]] {
      const __m512d s = _mm512_div_pd(a, b);
      const __m512d e = _mm512_add_pd(_mm512_sub_pd(c, _mm512_mul_pd(_mm512_mul_pd(two, s), a)),
                                      _mm512_mul_pd(_mm512_mul_pd(s, s), b));
      const __mmask8 in = _mm512_mask_cmp_pd_mask(pre, e, es[3], _CMP_LT_OQ);
#pragma GCC unroll 4
      for (std::size_t j = 3; j > 0; --j) {
        const __mmask8 up = _mm512_mask_cmp_pd_mask(in, e, es[j - 1], _CMP_LT_OQ);
        const __mmask8 here = _mm512_mask_cmp_pd_mask(in & ~up, e, es[j], _CMP_LT_OQ);
        es[j] = _mm512_mask_mov_pd(_mm512_mask_mov_pd(es[j], here, e), up, es[j - 1]);
        ss[j] = _mm512_mask_mov_pd(_mm512_mask_mov_pd(ss[j], here, s), up, ss[j - 1]);
      }
      const __mmask8 first = _mm512_mask_cmp_pd_mask(in, e, es[0], _CMP_LT_OQ);
      es[0] = _mm512_mask_mov_pd(es[0], first, e);
      ss[0] = _mm512_mask_mov_pd(ss[0], first, s);
    }
    const __m512d clip = _mm512_sub_pd(y0, _mm512_mul_pd(top, m));
    const __mmask8 clipped =
        _mm512_mask_cmp_pd_mask(_mm512_cmp_pd_mask(clip, zero, _CMP_GT_OQ), _mm512_mul_pd(_mm512_mul_pd(clip, clip), w0),
                                _mm512_mul_pd(es[0], slack), _CMP_GT_OQ);
    act = _mm512_mask_cmp_pd_mask(act, m, lo, _CMP_GE_OQ) & _mm512_cmp_pd_mask(m, zero, _CMP_GT_OQ) &
          static_cast<__mmask8>(~clipped);
    if (!act) break;
    __m512i kid = _mm512_setzero_si512();  // the first level whose head is at m, less one
    unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE {
      constexpr std::size_t k = L - 1 - j;  // from the last level down: the first one wins
      kid = _mm512_mask_mov_epi64(kid, _mm512_cmp_pd_mask(ev[k], m, _CMP_EQ_OQ),
                                  _mm512_set1_epi64(static_cast<long long>(k)));
    });
    const __m512i sh = _mm512_slli_epi64(kid, 3);
    const __m512i at = _mm512_and_si512(_mm512_srlv_epi64(packed, sh), byte);
    packed = _mm512_mask_add_epi64(packed, act, packed, _mm512_sllv_epi64(one, sh));
    const __m512i row = _mm512_add_epi64(_mm512_slli_epi64(at, 3), lane);
    const __m512d yc = _mm512_mask_i64gather_pd(zero, act, row, y, 8);
    const __m512d dgs = _mm512_permutexvar_pd(kid, dgtab), dg2s = _mm512_permutexvar_pd(kid, dg2tab);
    if constexpr (Weighted) {
      const __m512d wc = _mm512_mask_i64gather_pd(zero, act, row, w, 8);
      a = _mm512_mask_add_pd(a, act, a, _mm512_mul_pd(_mm512_mul_pd(wc, yc), dgs));
      b = _mm512_mask_add_pd(b, act, b, _mm512_mul_pd(wc, dg2s));
    } else {
      a = _mm512_mask_add_pd(a, act, a, _mm512_mul_pd(yc, dgs));
      b = _mm512_mask_add_pd(b, act, b, dg2s);
    }
    upper = _mm512_mask_mov_pd(upper, act, m);
    // The chosen head moves on to the breakpoint after it, and that one to the next element's.
    const __m512d after = _mm512_mul_pd(_mm512_mask_i64gather_pd(zero, act, _mm512_add_epi64(row, two_rows), y, 8),
                                        _mm512_permutexvar_pd(kid, rtab));
    unrolled<L>([&](auto k) BLOCKQ_LAMBDA_INLINE {
      const __mmask8 sel = act & _mm512_cmpeq_epi64_mask(kid, _mm512_set1_epi64(static_cast<long long>(k())));
      ev[k] = _mm512_mask_mov_pd(ev[k], sel, evn[k]);
      evn[k] = _mm512_mask_mov_pd(evn[k], sel, after);
    });
  }
  for (std::size_t j = 0; j < 4; ++j) es_[j] = (VD)es[j], ss_[j] = (VD)ss[j];
}
#endif

// The sweep of the lanes whose mask is set: y (sorted |x|, descending) and
// w (their weights, Weighted only) in rows 0..rows-1, rows `rows` and `rows` + 1 the
// sentinels (y = -1); c = Σ w y²; bud the budget. es / ss: the best four minima a lane
// (errors ascending, scales; unfilled: error bud, scale 0).
template <class Grid, bool Weighted, class VD, class VI>
void sweep(const VD* y, const VD* w, std::size_t rows, std::size_t long_rows, const VD& c, const VD& bud, VI act,
           VD (&es)[4], VD (&ss)[4]) noexcept {
  using vd = VD;
  using vi = VI;
  constexpr std::size_t W = sizeof(VD) / sizeof(double);
  constexpr std::size_t L = Grid::L, Lc = Grid::Lc;  // levels above zero: all, every element's
  double r[L + 1], dg[L + 1], dg2[L + 1];  // 1 / t_k, Δg, Δ(g²) of level k
  for (std::size_t k = 1; k <= L; ++k) {
    const double g0 = Grid::level(k - 1), g1 = Grid::level(k);
    r[k] = 1.0 / (0.5 * (g0 + g1));
    dg[k] = g1 - g0;
    dg2[k] = g1 * g1 - g0 * g0;
  }
  const double g_top = Grid::level(L);
  // The top level of the largest element (of an equal one on the long side, whose bound is weaker).
  vd top0 = vd{} + g_top;
  if constexpr (L > Lc) top0 = y[long_rows] == y[0] ? top0 : vd{} + Grid::level(Lc);

  // lo: below it some element's clipping alone exceeds the budget (weighted: any element;
  // the largest one's bound, the only one without weights, is tested as the walk goes).
  vd lo = vd{};
  if constexpr (Weighted && L == Lc) {
    for (std::size_t j = 0; j < rows; ++j) {
      vd q = bud / w[j];
      for (std::size_t l = 0; l < W; ++l) q[l] = std::sqrt(q[l]);
      const vd v = (y[j] - q) / g_top;
      lo = ((w[j] > 0.0) & (v > lo)) ? v : lo;
    }
  }
  // hi: above |y_p| / t_1 the elements p.. round to zero, and carry more than the budget.
  vd hi = y[0] * r[1];
  {
    vd tail = vd{};
    vi found = vi{};
    for (std::size_t j = rows; j-- > 0;) {
      if constexpr (Weighted)
        tail += w[j] * y[j] * y[j];
      else
        tail += y[j] * y[j];
      const vi hit = (tail > bud) & ~found;
      hi = hit ? y[j] * r[1] : hi;
      found |= hit;
    }
  }
  // The codes just below hi: element j is past level k when y_j / t_k > hi.
  vd a = vd{}, b = vd{};
  vi cnt[L + 1];  // each level's head: a row of y (the long side's level: of its own rows)
  for (std::size_t k = 1; k <= L; ++k) cnt[k] = vi{};
  for (std::size_t j = 0; j < rows; ++j) {
    vd gj = vd{};
    for (std::size_t k = 1; k <= Lc; ++k) {
      const vi past = y[j] * r[k] > hi;
      gj = past ? gj + dg[k] : gj;
      cnt[k] -= past;
    }
    if constexpr (Weighted) {
      a += w[j] * y[j] * gj;
      b += w[j] * gj * gj;
    } else {
      a += y[j] * gj;
      b += gj * gj;
    }
  }
  if constexpr (L > Lc) {  // the long side's elements past its extra level
    cnt[L] = vi{} + static_cast<std::int64_t>(long_rows);
    for (std::size_t j = long_rows; j < long_rows + rows; ++j) {
      const vi past = y[j] * r[L] > hi;
      const vd one = past ? vd{} + 1.0 : vd{};
      if constexpr (Weighted) {
        a += w[j] * y[j] * dg[L] * one;
        b += w[j] * dg2[L] * one;
      } else {
        a += y[j] * dg[L] * one;
        b += dg2[L] * one;
      }
      cnt[L] -= past;
    }
  }
  // Each level's next breakpoint: the element at cnt[k].
  vd ev[L + 1];
#pragma GCC unroll 16
  for (std::size_t k = 1; k <= L; ++k) {
    vd yk;
    gather(yk, y, cnt[k]);
    ev[k] = yk * r[k];
  }
  const vd y0 = y[0], w0 = Weighted ? w[0] : vd{} + 1.0;
  vd upper = hi;
#if defined(__AVX512F__)
  if constexpr (W == 8 && L <= 8) {
    walk8<L, Weighted>(reinterpret_cast<const double*>(y), reinterpret_cast<const double*>(w), r, dg, dg2, top0,
                       c, lo, y0, w0, act, cnt, ev, a, b, upper, es, ss);
    return;
  }
#endif
  vd evn[L + 1];  // the breakpoint after each head (so the next maximum never waits on a gather)
  unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE {
    constexpr std::size_t k = j + 1;
    vd yk;
    gather(yk, y, cnt[k] + 1);
    evn[k] = yk * r[k];
  });
  for (;;) {
    vd m = ev[1];
    unrolled<L - 1>([&](auto j) BLOCKQ_LAMBDA_INLINE { m = ev[j + 2] > m ? ev[j + 2] : m; });
    // The interval [m, upper] of the current codes: its stationary point A / B when inside
    // and below the fourth best (C - A²/B < e3, without the division; B = 0 fails it).
    const vi pre = act & (a >= m * b) & (a <= upper * b) & (c * b - a * a < es[3] * b);
    if (any(pre)) [[unlikely]] {
      const vd s = a / b;
      const vd e = c - 2.0 * s * a + s * s * b;
      const vi in = pre & (e < es[3]);
      for (std::size_t j = 3; j > 0; --j) {
        const vi up = in & (e < es[j - 1]);  // the entry above moves down
        const vi here = in & ~up & (e < es[j]);
        es[j] = up ? es[j - 1] : (here ? e : es[j]);
        ss[j] = up ? ss[j - 1] : (here ? s : ss[j]);
      }
      const vi top = in & (e < es[0]);
      es[0] = top ? e : es[0];
      ss[0] = top ? s : ss[0];
    }
    // Below m the largest element alone is clipped by more than the best minimum when
    // w_0 (y_0 - g_top m)² exceeds it: the walk of the lane ends.
    const vd clip = y0 - top0 * m;
    act &= (m >= lo) & (m > 0.0) & ~((clip > 0.0) & (clip * clip * w0 > es[0] * (1.0 + 1e-12)));
    if (!any(act)) break;
    // Step: the first level whose head is at m moves its element up, and its head on to
    // the breakpoint after it.
    vi taken = vi{}, sel[L + 1], at = vi{};
    vd dgs = vd{}, dg2s = vd{}, rs = vd{};
    unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE {
      constexpr std::size_t k = j + 1;
      sel[k] = act & (ev[k] == m) & ~taken;
      taken |= sel[k];
      at = sel[k] ? cnt[k] : at;
      dgs = sel[k] ? vd{} + dg[k] : dgs;
      dg2s = sel[k] ? vd{} + dg2[k] : dg2s;
      rs = sel[k] ? vd{} + r[k] : rs;
      cnt[k] -= sel[k];
    });
    vd yc, ya;
    gather(yc, y, at);
    if constexpr (Weighted) {
      vd wc;
      gather(wc, w, at);
      a += wc * yc * dgs;
      b += wc * dg2s;
    } else {
      a += yc * dgs;
      b += dg2s;
    }
    upper = act ? m : upper;
    gather(ya, y, at + 2);
    const vd after = ya * rs;
    unrolled<L>([&](auto j) BLOCKQ_LAMBDA_INLINE {
      constexpr std::size_t k = j + 1;
      ev[k] = sel[k] ? evn[k] : ev[k];
      evn[k] = sel[k] ? after : evn[k];
    });
  }
}

// Bitonic sort, descending, of each lane's N rows (weights alongside when Weighted), every
// compare-exchange unrolled: no branch, no loop.
template <std::size_t N, bool Weighted, class VD>
BLOCKQ_ALWAYS_INLINE void bitonic(VD* y, VD* w) noexcept {
  constexpr std::size_t stages = std::bit_width(N) - 1;
  unrolled<stages>([&](auto st) BLOCKQ_LAMBDA_INLINE {
    constexpr std::size_t k = std::size_t{2} << st;
    unrolled<st + 1>([&](auto sj) BLOCKQ_LAMBDA_INLINE {
      constexpr std::size_t j = k >> (sj + 1);
      unrolled<N / 2>([&](auto t) BLOCKQ_LAMBDA_INLINE {
        constexpr std::size_t i = ((t & ~(j - 1)) << 1) | (t & (j - 1)), p = i | j;
        const VD a = y[i], b = y[p];
        const auto swap = (i & k) == 0 ? a < b : a > b;  // descending within blocks of k that start at a multiple of 2k
        y[i] = swap ? b : a;
        y[p] = swap ? a : b;
        if constexpr (Weighted) {
          const VD wa = w[i], wb = w[p];
          w[i] = swap ? wb : wa;
          w[p] = swap ? wa : wb;
        }
      });
    });
  });
}

template <bool Weighted, class VD>
void sort_rows(VD* y, VD* w, std::size_t rows) noexcept {
  switch (rows) {
    case 1: return;
    case 2: return bitonic<2, Weighted>(y, w);
    case 4: return bitonic<4, Weighted>(y, w);
    case 8: return bitonic<8, Weighted>(y, w);
    case 16: return bitonic<16, Weighted>(y, w);
    default: return bitonic<32, Weighted>(y, w);
  }
}

// Loads count blocks into lanes, K lanes a block (lane K i + k: x itself, the sign kept),
// each block's error at its start in out[i] (error_at(block)) and its budget; returns the rows
// to sort (0: no block to search).
template <std::size_t K, class VD, class VI, class ErrorAt>
std::size_t load_lanes(const lane_block* blocks, std::size_t count, ErrorAt error_at, VD* y, VD* w, VD& bud, VI& act,
                       scale_min_result* out) noexcept {
  std::size_t n_max = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const lane_block& bl = blocks[i];
    out[i] = {bl.start, 0.0f, 0.0};
    if (bl.n == 0 || bl.n > lane_block_max || !blockq::detail::is_finite(bl.start)) continue;
    out[i].error = error_at(bl);
    if (!(out[i].error > 0.0)) continue;
    n_max = std::max(n_max, bl.n);
    for (std::size_t k = 0; k < K; ++k) {
      const std::size_t l = K * i + k;
      act[l] = -1;
      bud[l] = detail::budget(out[i].error);
      for (std::size_t j = 0; j < bl.n; ++j) {
        y[j][l] = static_cast<double>(bl.x[j]);
        if (bl.w) w[j][l] = static_cast<double>(bl.w[j]);
      }
    }
  }
  return n_max ? std::bit_ceil(n_max) : 0;
}

template <class VD>
BLOCKQ_ALWAYS_INLINE VD magnitude(const VD& v) noexcept {
  using VI = decltype(v < v);
  return (VD)((VI)v & std::numeric_limits<std::int64_t>::max());
}

// Sorts the row sets (at 0 and, when long_rows, at long_rows), ends each with its sentinels
// (below every breakpoint) and runs the sweep: the lanes' four best minima in es / ss (es
// starting at the budget). Returns the lanes' energy C = sum w y².
template <class Grid, class VD, class VI>
VD sort_and_sweep(VD* y, VD* w, std::size_t rows, std::size_t long_rows, bool weighted, const VD& bud, const VI& act,
                  VD (&es)[4], VD (&ss)[4]) noexcept {
  for (std::size_t set = 0; set < (long_rows ? 2 : 1); ++set) {
    VD* ys = y + set * long_rows;
    VD* ws = w + set * long_rows;
    if (weighted)
      sort_rows<true>(ys, ws, rows);
    else
      sort_rows<false>(ys, ws, rows);
    ys[rows] = ys[rows + 1] = VD{} - 1.0;
    ws[rows] = ws[rows + 1] = VD{};
  }
  VD c = VD{};
  for (std::size_t j = 0; j < rows; ++j) c += weighted ? w[j] * y[j] * y[j] : y[j] * y[j];
  for (std::size_t j = 0; j < 4; ++j) es[j] = bud, ss[j] = VD{};
  if (weighted)
    sweep<Grid, true>(y, w, rows, long_rows, c, bud, act, es, ss);
  else
    sweep<Grid, false>(y, w, rows, long_rows, c, bud, act, es, ss);
  return c;
}

// Lane l's minima to score: the best, and the others whose error is below cut.
template <class VD>
std::size_t lane_minima(const VD* es, const VD* ss, std::size_t l, double cut, std::array<scale_candidate, 4>& cands) noexcept {
  std::size_t got = 0;
  for (std::size_t j = 0; j < 4; ++j)
    if (ss[j][l] > 0.0 && (j == 0 || es[j][l] < cut)) cands[got++] = {ss[j][l], es[j][l]};
  return got;
}

// The lane sweep of W blocks (count of them real).
template <class Element, class Arch, std::size_t W>
void search_group(const lane_block* blocks, std::size_t count, tie_mode ties, scale_min_result* out) noexcept {
  using vd = typename of<W>::vd;
  using vi = typename of<W>::vi;
  auto score = [&](const lane_block& bl, float s) {
    return bl.w ? kernels::block_wsse<Element>(Arch{}, bl.x, bl.w, bl.n, s, ties)
                : kernels::block_sse<Element>(Arch{}, bl.x, bl.n, s, ties);
  };
  vd y[lane_block_max + 2] = {}, w[lane_block_max + 2] = {}, bud = vd{};
  vi act = vi{};
  const std::size_t rows = load_lanes<1>(blocks, count, [&](const lane_block& bl) {
    return bl.start > 0.0f ? score(bl, bl.start) : kernels::block_energy(Arch{}, bl.x, bl.w, bl.n);
  }, y, w, bud, act, out);
  if (rows == 0) return;
  for (std::size_t j = 0; j < rows; ++j) y[j] = magnitude(y[j]);
  vd es[4], ss[4];
  const vd c = sort_and_sweep<element_grid<Element>>(y, w, rows, 0, blocks[0].w != nullptr, bud, act, es, ss);
  for (std::size_t l = 0; l < count; ++l) {
    if (!act[l]) continue;
    // The best minimum is scored (with its float neighbours); another one only when it could
    // beat it in float: the kernel's error at fl(s) is within 2^-22 of E there, E moves by at
    // most 2^-22 C over one float step (|E'| <= 2 sqrt(B E) and s² B <= 4 C), and the kernel's
    // codes differ from the nearest levels only at ties worth 2^-21 C: a minimum above
    // e_0 (1 + 2^-20) + 2^-18 C scores above e_0's own float.
    const float f0 = static_cast<float>(ss[0][l]);
    const double cut = blockq::detail::is_finite(f0) && f0 != 0.0f ? es[0][l] * (1.0 + 0x1p-20) + 0x1p-18 * c[l]
                                                                   : std::numeric_limits<double>::infinity();
    std::array<scale_candidate, 4> cands{};
    const std::size_t got = lane_minima(es, ss, l, cut, cands);
    const lane_block& bl = blocks[l];
    detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), 1.0, 0.0f,
                             [&](float s, float) { return score(bl, s); }, out[l]);
  }
}

// The lane sweep of symmetric integer codes with qmax = Q: two lanes a block, the two signs of
// the scale (lane 2i positive: the negative elements reach -qmin = Q + 1; lane 2i + 1 negative:
// the non-negative ones do), count blocks (W / 2 at most). The long side's |x| in rows from
// lane_block_max + 2 on, the other elements there at -1 (never a breakpoint).
template <class Arch, std::size_t W, std::size_t Q>
void search_group_int(const lane_block* blocks, std::size_t count, int_format fmt, scale_min_result* out) noexcept {
  using vd = typename of<W>::vd;
  using vi = typename of<W>::vi;
  constexpr std::size_t R = lane_block_max + 2;
  const bool weighted = blocks[0].w != nullptr;
  auto score = [&](const lane_block& bl, float s) {
    return bl.w ? kernels::block_wsse_int(Arch{}, bl.x, bl.w, bl.n, s, 0.0f, fmt)
                : kernels::block_sse_int(Arch{}, bl.x, bl.n, s, 0.0f, fmt);
  };
  vd y[2 * R] = {}, w[2 * R] = {}, bud = vd{};
  vi act = vi{};
  const std::size_t rows =
      load_lanes<2>(blocks, count, [&](const lane_block& bl) { return score(bl, bl.start); }, y, w, bud, act, out);
  if (rows == 0) return;
  vi odd = vi{};  // the lanes of negative scales
  for (std::size_t l = 1; l < W; l += 2) odd[l] = -1;
  for (std::size_t j = 0; j < rows; ++j) {
    const vi long_side = ((vi)y[j] < 0) ^ odd;  // the sign bit, -0 included
    y[j] = magnitude(y[j]);
    y[R + j] = long_side ? y[j] : vd{} - 1.0;
    if (weighted) w[R + j] = long_side ? w[j] : vd{};
  }
  vd es[4], ss[4];
  sort_and_sweep<int_grid<Q>>(y, w, rows, R, weighted, bud, act, es, ss);
  for (std::size_t i = 0; i < count; ++i) {
    if (!act[2 * i]) continue;
    const lane_block& bl = blocks[i];
    for (std::size_t side = 0; side < 2; ++side) {  // the positive scales' minima first, as continuous_int_mse
      std::array<scale_candidate, 4> cands{};
      const std::size_t got = lane_minima(es, ss, 2 * i + side, std::numeric_limits<double>::infinity(), cands);
      detail::score_candidates(std::span<const scale_candidate>(cands.data(), got), side ? -1.0 : 1.0, 0.0f,
                               [&](float s, float) { return score(bl, s); }, out[i]);
    }
  }
}

}  // namespace lanes

template <class Element, class Arch>
void continuous_element_mse_lanes(Arch, std::span<const lane_block> blocks, tie_mode ties,
                                  scale_min_result* out) noexcept {
  constexpr std::size_t W = lanes::width<Arch>();
  for (std::size_t b = 0; b < blocks.size(); b += W)
    lanes::search_group<Element, Arch, W>(blocks.data() + b, std::min(W, blocks.size() - b), ties, out + b);
}

// Whether continuous_int_mse_lanes takes blocks of this format and size.
constexpr bool int_lanes_take(int_format fmt, std::size_t block) noexcept {
  return fmt.is_signed && fmt.bits >= 2 && fmt.bits <= 4 && block <= lane_block_max;
}

// Symmetric integer codes of 2 to 4 bits, blocks of at most lane_block_max elements (all
// weighted or none): for each block, continuous_int_mse's result (both signs of the scale, the
// start kept unless strictly beaten; start_min 0), two lanes a block.
template <class Arch>
void continuous_int_mse_lanes(Arch, std::span<const lane_block> blocks, int_format fmt, scale_min_result* out) noexcept {
  constexpr std::size_t per = lanes::width<Arch>() / 2;
  auto run = [&]<std::size_t Q>(std::integral_constant<std::size_t, Q>) {
    for (std::size_t b = 0; b < blocks.size(); b += per)
      lanes::search_group_int<Arch, 2 * per, Q>(blocks.data() + b, std::min(per, blocks.size() - b), fmt, out + b);
  };
  if (fmt.bits == 2)
    run(std::integral_constant<std::size_t, 1>{});
  else if (fmt.bits == 3)
    run(std::integral_constant<std::size_t, 3>{});
  else
    run(std::integral_constant<std::size_t, 7>{});
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#else
template <class Element, class Arch>
void continuous_element_mse_lanes(Arch, std::span<const lane_block> blocks, tie_mode ties,
                                  scale_min_result* out) {
  std::vector<sweep_entry> heap(continuous_heap_entries(lane_block_max));
  for (std::size_t l = 0; l < blocks.size(); ++l) {
    const lane_block& bl = blocks[l];
    out[l] = continuous_element_mse<Element>(Arch{}, std::span<const float>(bl.x, bl.n),
                                             std::span<const float>(bl.w, bl.w ? bl.n : 0), bl.start, ties, heap);
  }
}

constexpr bool int_lanes_take(int_format, std::size_t) noexcept { return false; }

template <class Arch>
void continuous_int_mse_lanes(Arch, std::span<const lane_block> blocks, int_format fmt, scale_min_result* out) {
  std::vector<sweep_entry> heap(continuous_heap_entries(lane_block_max));
  for (std::size_t l = 0; l < blocks.size(); ++l) {
    const lane_block& bl = blocks[l];
    out[l] = continuous_int_mse(Arch{}, std::span<const float>(bl.x, bl.n), std::span<const float>(bl.w, bl.w ? bl.n : 0),
                                fmt, bl.start, 0.0f, heap, {}, {});
  }
}
#endif

}  // namespace search
BLOCKQ_END_NAMESPACE
